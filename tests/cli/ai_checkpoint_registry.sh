# A checkpoint the spec names and the model registry holds (kiln models add) is the file the
# server ran, as LoRAs are (ai_lora_registry.sh): A1111 reports sd_model_hash, the first 10 hex
# of the SHA-256 of the file it loaded; it must be a registered file's under that name, and the
# render's record names that file (ran.model_sha256), so the portfolio's attestations list
# exactly that file with its full digest. Another file under the same name on the server fails
# the attempt naming both hashes. ComfyUI reports no hash: the name only, as before. The SD test
# server reports the real hash of the files in --checkpoint-dir.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ai_common.inc"
# two different checkpoint files called sd_xl_base_1.0: the server's (A) and another (B)
mkdir -p "$T/server" "$T/other"
$PY - "$T/server/sd_xl_base_1.0.safetensors" "$T/other/sd_xl_base_1.0.safetensors" <<'PY'
import json, struct, sys
for path, fill in zip(sys.argv[1:], (1, 2)):
    data = bytes([fill]) * 64
    hdr = json.dumps({"__metadata__": {"modelspec.title": "SDXL base"},
                      "model.diffusion_model.out.weight": {"dtype": "F32", "shape": [4, 4],
                                                           "data_offsets": [0, 64]}}).encode()
    open(path, "wb").write(struct.pack("<Q", len(hdr)) + hdr + data)
PY
start_server --protocol a1111 --checkpoint-dir "$T/server"
A1111=$U
db() { sqlite3 "$1/.kiln/catalog.db" "$2"; }
gen() { db "$1" "select count(*) from items where kind = 'generated'"; }
export KILN_GPU_AUTH=owl:s3cret-hoot KILN_KEYS_DIR=$T/keys
sha=$(sha256sum "$T/server/sd_xl_base_1.0.safetensors" | cut -d' ' -f1)
other=$(sha256sum "$T/other/sd_xl_base_1.0.safetensors" | cut -d' ' -f1)
sha10=$(printf %.10s "$sha") other10=$(printf %.10s "$other")
got=$(curl -s "$U/sdapi/v1/sd-models" | $PY -c 'import json,sys; print([m["hash"] for m in json.load(sys.stdin) if m["model_name"] == "sd_xl_base_1.0"][0])')
expect_eq "the server reports A1111's short hash of its file" "$got" "$sha10"

# --- the registered sd_xl_base_1.0 is not the server's: the AI tokens fail, both hashes named -
P=$T/bad
ai_owls "$P" a1111
"$KILN" -C "$P" plan -q || fail plan
"$KILN" -C "$P" models add "$T/other/sd_xl_base_1.0.safetensors" >/dev/null || fail "models add"
"$KILN" -C "$P" render -q >"$T/out" 2>&1
expect_eq "render with another sd_xl_base_1.0 on the server: exit" $? 1
db "$P" "select error from items where status = 'failed' limit 1" >"$T/why"
expect_contains "both hashes named" "$T/why" "the server ran checkpoint sd_xl_base_1.0 with hash $sha10, but the checkpoint registered as sd_xl_base_1.0 has hash $other10"
expect_eq "every AI token failed" "$(db "$P" "select count(*) from items where status = 'failed'")" "$(gen "$P")"

# --- both files registered under the name: the server's is named, and only it is a dependency -
P=$T/good
ai_owls "$P" a1111
printf 'portfolio: {enabled: true, prompts: hashed}\n' >>"$P/kiln.yaml"
"$KILN" keys init --studio example.com/ai-owls >/dev/null || fail "keys init"
"$KILN" -C "$P" plan -q || fail plan
"$KILN" -C "$P" models add "$T/other/sd_xl_base_1.0.safetensors" >/dev/null || fail "models add B"
"$KILN" -C "$P" models add "$T/server/sd_xl_base_1.0.safetensors" >/dev/null || fail "models add A"
"$KILN" -C "$P" build -q --no-qa >"$T/out" 2>&1
expect_eq "build with the registered sd_xl_base_1.0: exit ($(head -3 "$T/out"))" $? 0
expect_eq "each render names the server's file" \
	"$(db "$P" "select count(*) from renders where status = 'ok' and json_extract(ran, '\$.model_sha256') = '$sha'")" "$(gen "$P")"
$PY - "$P/dist/portfolio" "$sha" "$other" <<'PY' >"$T/deps" 2>&1
import base64, json, os, sys
pf, sha, other = sys.argv[1:]
n = 0
for f in sorted(os.listdir(pf + "/attestations")):
    st = json.loads(base64.b64decode(json.load(open(pf + "/attestations/" + f))["dsseEnvelope"]["payload"]))
    bd = st["predicate"]["buildDefinition"]
    if bd["externalParameters"]["request"] is None:
        continue  # the hand-made legendary
    digests = [d["digest"]["sha256"] for d in bd["resolvedDependencies"] if d.get("name") == "sd_xl_base_1.0"]
    assert digests == [sha], (f, digests)
    n += 1
assert n == 59, n
print("ok", n)
PY
expect_contains "the attestations list the file that ran, by its full digest ($(tail -1 "$T/deps"))" "$T/deps" "ok 59"
grep -c "\"model_sha256\":\"$sha\"" "$P/dist/portfolio/log/entries.jsonl" >"$T/n"
expect_eq "the log's render entries name it" "$(cat "$T/n")" "$(gen "$P")"
"$KILN" -C "$P" verify >"$T/v" 2>&1
expect_eq "kiln verify" $? 0

# --- ComfyUI reports no hash: a registered name renders as before, the name only -------------
start_server --protocol comfyui
P=$T/comfy
ai_owls "$P" comfyui
"$KILN" -C "$P" plan -q || fail plan
"$KILN" -C "$P" models add "$T/other/sd_xl_base_1.0.safetensors" >/dev/null || fail "models add"
"$KILN" -C "$P" render -q >"$T/out" 2>&1
expect_eq "ComfyUI render (no hash to check): exit ($(head -3 "$T/out"))" $? 0
expect_eq "no registry link without a hash" \
	"$(db "$P" "select count(*) from renders where ran like '%model_sha256%'")" 0
expect_eq "the checkpoint's name recorded" \
	"$(db "$P" "select count(*) from renders where status = 'ok' and ran like '%sd_xl_base_1.0%'")" "$(gen "$P")"
finish
