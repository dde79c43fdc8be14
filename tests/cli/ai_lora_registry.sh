# A LoRA the spec names and the model registry holds (kiln models add, kiln train run) is the
# file the server ran: A1111's "Lora hashes" (the addnet hash's first 12 hex) must be a
# registered file's under that name, and the render's record names that file (ran.loras[].
# model_sha256), which the portfolio's log keeps. Another file under the same name on the
# server fails the attempt naming both hashes. The SD test server reports the real A1111 hash
# of the files in --lora-dir.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ai_common.inc"
# two different LoRA files called crown_v2: the server's (A) and another (B)
mkdir -p "$T/server" "$T/other"
$PY - "$T/server/crown_v2.safetensors" "$T/other/crown_v2.safetensors" <<'PY'
import json, struct, sys
for path, fill in zip(sys.argv[1:], (1, 2)):
    data = bytes([fill]) * 64
    hdr = json.dumps({"__metadata__": {"ss_network_module": "networks.lora"},
                      "lora_unet_down.lora_down.weight": {"dtype": "F32", "shape": [4, 4],
                                                           "data_offsets": [0, 64]}}).encode()
    open(path, "wb").write(struct.pack("<Q", len(hdr)) + hdr + data)
PY
start_server --protocol a1111 --lora-dir "$T/server"
db() { sqlite3 "$1/.kiln/catalog.db" "$2"; }
crowns() { db "$1" "select count(*) from items where json_extract(traits, '\$.Hat') = 'Crown'"; }
export KILN_GPU_AUTH=owl:s3cret-hoot

# --- the registered crown_v2 is not the server's: the crown tokens fail, both hashes named ---
P=$T/bad
ai_owls "$P" a1111
"$KILN" -C "$P" plan -q || fail plan
"$KILN" -C "$P" models add "$T/other/crown_v2.safetensors" --json >"$T/add.json" || fail "models add"
want=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["a1111"]["lora_hash"])' "$T/add.json")
got=$($PY -c 'import sys; sys.path.insert(0, sys.argv[1]); import sd_test_server as s; print(s.addnet_hash(sys.argv[2])[:12])' \
	"$KILN_SRC/tests/sdserver" "$T/server/crown_v2.safetensors")
[ -n "$want" ] && [ "$want" != "$got" ] && ok || fail "the two files' hashes: '$want' '$got'"
"$KILN" -C "$P" render -q >"$T/out" 2>&1
expect_eq "render with another crown_v2 on the server: exit" $? 1
db "$P" "select error from items where status = 'failed' limit 1" >"$T/why"
expect_contains "both hashes named" "$T/why" "the server ran LoRA crown_v2 with hash $got, but the LoRA registered as crown_v2 has hash $want"
n=$(crowns "$P")
[ "$n" -gt 0 ] && ok || fail "no crown tokens in the plan"
expect_eq "every crown token failed" "$(db "$P" "select count(*) from items where status = 'failed'")" "$n"
expect_eq "no accepted render ran the wrong file" \
	"$(db "$P" "select count(*) from renders where status = 'ok' and ran like '%crown_v2%'")" 0

# --- the server's file registered: rendered, the record names it -------------------------
P=$T/good
ai_owls "$P" a1111
"$KILN" -C "$P" plan -q || fail plan
"$KILN" -C "$P" models add "$T/server/crown_v2.safetensors" -q 2>/dev/null ||
	"$KILN" -C "$P" models add "$T/server/crown_v2.safetensors" >/dev/null || fail "models add"
sha=$(sha256sum "$T/server/crown_v2.safetensors" | cut -d' ' -f1)
"$KILN" -C "$P" render -q >"$T/out" 2>&1
expect_eq "render with the registered crown_v2: exit" $? 0
expect_eq "each crown render names the registered file" \
	"$(db "$P" "select count(*) from renders where status = 'ok' and ran like '%\"model_sha256\":\"$sha\"%'")" "$(crowns "$P")"
# an unregistered LoRA (laser_eyes) is rendered as before, without a registry link
expect_eq "unregistered LoRAs: no link" \
	"$(db "$P" "select count(*) from renders where ran like '%laser_eyes%' and ran like '%laser_eyes\",\"model_sha256%'")" 0
finish
