# AI engine a1111 against the test server: requests field by field, secrets nowhere, retries on
# 500 / hang / drop / truncated / black images, status per endpoint.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ai_common.inc"
start_server --protocol a1111 --auth owl:s3cret-hoot
P=$T/p
ai_owls "$P" a1111
export KILN_GPU_AUTH=owl:s3cret-hoot
"$KILN" -C "$P" plan -q || fail plan
"$KILN" -C "$P" render --dry-run 2 >"$T/dry" 2>&1
expect_eq "dry-run exit" $? 0
expect_contains "dry-run url" "$T/dry" "POST $U/sdapi/v1/txt2img"
expect_contains "dry-run names the variable" "$T/dry" 'from $KILN_GPU_AUTH, not shown'
grep -q s3cret "$T/dry" && fail "secret in dry-run output" || ok
expect_eq "no request sent by dry-run" "$(stats | $PY -c 'import sys,json; print(json.load(sys.stdin)["requests"])')" 0
# missing credentials: a clear error naming the variable
KILN_GPU_AUTH= "$KILN" -C "$P" render -q 2>"$T/noauth"
expect_eq "no credentials exit" $? 2
expect_contains "no credentials message" "$T/noauth" "KILN_GPU_AUTH"
"$KILN" -C "$P" render -q 2>"$T/err"
expect_eq "render exit" $? 0
# every request as A1111 expects it
requests /sdapi/v1/txt2img | $PY -c '
import sys, json, re, sqlite3
reqs = [r for r in json.load(sys.stdin) if r["status"] == 200]
db = sqlite3.connect(sys.argv[1] + "/.kiln/catalog.db")
items = {i: (s, json.loads(t)) for i, s, t in db.execute("select id, seed, traits from items where kind = \"generated\"")}
assert len(reqs) == len(items), (len(reqs), len(items))
seen = set()
for r in reqs:
    j = r["json"]
    assert r["headers"]["authorization"].startswith("Basic "), r["headers"]
    # the checkpoint by the title /sdapi/v1/sd-models lists (a key A1111 always finds)
    assert re.fullmatch(r"sd_xl_base_1\.0\.safetensors \[[0-9a-f]{10}\]",
                        j["override_settings"]["sd_model_checkpoint"]), j["override_settings"]
    assert j["sampler_name"] == "Euler a" and j["steps"] == 20 and j["cfg_scale"] == 7
    assert j["width"] == 512 and j["height"] == 512 and j["batch_size"] == 1 and j["n_iter"] == 1
    assert j["negative_prompt"].startswith("blurry, text, watermark")
    match = [i for i, (s, t) in items.items() if (s & 0xffffffff) == j["seed"]]
    assert len(match) == 1, j["seed"]
    i = match[0]; seen.add(i); t = items[i][1]
    p = j["prompt"]
    assert p.startswith("pixel art owl perched on a branch, "), p
    if t.get("Hat") == "Crown": assert "<lora:crown_v2:0.8>" in p, p
    if t.get("Eyes") == "Laser": assert "<lora:laser_eyes:0.9>" in p, p
    if t.get("Body") == "Gold": assert "<lora:pixel_art_xl:0.6>" in p, p
    if "Hat" not in t: assert "wearing" not in p and ", ," not in p, p
    if t.get("Background") == "Void": assert j["negative_prompt"].endswith(", stars")
    cn = j.get("alwayson_scripts", {}).get("controlnet", {}).get("args")
    if t.get("Hat") == "Halo":
        u = cn[0]
        # the model by its exact listed title, the module as listed
        assert re.fullmatch(r"control_v11p_sd15_canny \[[0-9a-f]{8}\]", u["model"]), u
        assert u["module"] == "none", u
        assert u["weight"] == 0.7 and u["guidance_end"] == 0.8 and u["enabled"] is True, u
        assert u["control_mode"] == "Balanced" and len(u["image"]) > 100
    else:
        assert cn is None, cn
assert seen == set(items)
# seeds and infotexts read back
n = db.execute("select count(*) from ai_info where info like \"%Seed: %\" and seed_used = seed").fetchone()[0]
assert n == len(items), n
print("ok")' "$P" >"$T/check" 2>&1
expect_contains "requests field by field" "$T/check" ok
# secrets never stored
sqlite3 "$P/.kiln/catalog.db" .dump | grep -c s3cret >"$T/grep"
expect_eq "secret not in catalog" "$(cat "$T/grep")" 0
grep -rq s3cret "$P/.kiln" && fail "secret in .kiln" || ok
# released images carry the server's infotext and the IPTC DigitalSourceType
check_disclosure "$P" /sdapi/v1/txt2img
grep -rq s3cret "$P/dist" && fail "secret in dist" || ok
# faults: every job still ends rendered, failures recorded as attempts
config '{"fail_rate": 0.15, "hang_rate": 0.05, "drop_rate": 0.05, "truncate_rate": 0.08, "black_rate": 0.08}'
"$KILN" -C "$P" render --force -q 2>"$T/err2"
expect_eq "render with faults exit" $? 0
expect_eq "all rendered" "$(sqlite3 "$P/.kiln/catalog.db" "select count(*) from items where status='rendered'")" 60
sqlite3 "$P/.kiln/catalog.db" "select error from renders where status='failed'" >"$T/errors"
expect_contains "500 retried" "$T/errors" "answered HTTP 500"
expect_contains "black retried" "$T/errors" "all black"
expect_contains "truncated retried" "$T/errors" "truncated or corrupt"
expect_contains "hang timed out" "$T/errors" "timed out"
expect_eq "http status kept" "$(sqlite3 "$P/.kiln/catalog.db" "select count(*) from renders where http_status=500")" \
	"$(curl -s "$U/__test__/requests?path=/sdapi/v1/txt2img&bodies=0" |
		$PY -c 'import sys,json; print(sum(r["status"] == 500 for r in json.load(sys.stdin)))')"
# (the 500s the server gave on its probed endpoints, /sdapi/v1/sd-models and the like, are
# not render attempts: only the submissions' 500s are attempts' statuses)
"$KILN" -C "$P" status >"$T/status"
expect_contains "status per endpoint" "$T/status" "$U"
"$KILN" -C "$P" status --json >"$T/status.json"
expect_contains "status json endpoints" "$T/status.json" '"endpoints"'
# nothing left to do
"$KILN" -C "$P" render --json | tail -1 >"$T/sum"
expect_contains "up to date" "$T/sum" '"todo":0'
finish
