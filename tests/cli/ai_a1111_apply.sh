# AI engine a1111: an image is accepted only when the server applied what was asked. kiln asks
# each server what it has before its first job, sends names as the server lists them, refuses
# a spec naming what no endpoint has before any job is sent, takes an endpoint that lacks a
# model out of that job's pool, verifies every answer, parks a server that drops what was asked
# for every job, and records what ran. Against the test server, which is as lenient as the
# real A1111 / Forge (it answers 200 and drops what it does not know).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ai_common.inc"
export KILN_GPU_AUTH=owl:pw
db() { sqlite3 "$P/.kiln/catalog.db" "$1"; }
txt2img_count() { curl -s "$1/__test__/stats" | $PY -c 'import sys, json
print(json.load(sys.stdin)["paths"].get("POST /sdapi/v1/txt2img", 0))'; }
# a second endpoint (url $2) after the first in project $1's kiln.yaml
add_endpoint() {
	$PY - "$1/kiln.yaml" "$2" <<'PY'
import sys
p, url = sys.argv[1], sys.argv[2]
s = open(p).read()
i = s.index("timeout: 3}") + len("timeout: 3}")
s = s[:i] + '\n    - {url: "%s", concurrency: 1, auth_env: KILN_GPU_AUTH, timeout: 3}' % url + s[i:]
open(p, "w").write(s)
PY
}

start_server --protocol a1111 --auth owl:pw
A=$U
P=$T/p

# 1. a checkpoint the server does not have: refused before any job (exit 2), naming the
#    endpoint, the checkpoint and the nearest names it has; nothing sent to txt2img
ai_owls "$P" a1111 's/checkpoint: sd_xl_base_1.0.safetensors/checkpoint: sdxl_base/'
"$KILN" -C "$P" plan -q || fail plan
"$KILN" -C "$P" render -q 2>"$T/ck.err"
expect_eq "missing checkpoint exit" $? 2
expect_contains "missing checkpoint named" "$T/ck.err" "$A has no checkpoint \`sdxl_base\`; it has: sd_xl_base_1.0"
expect_eq "no submission for a refused spec" "$(txt2img_count "$A")" 0

# 2. a ControlNet model it does not have: the same
ai_owls "$P" a1111 's/model: control_v11p_sd15_canny.pth/model: control_v11p_sd15_openpose/'
"$KILN" -C "$P" plan -q || fail plan
"$KILN" -C "$P" render -q 2>"$T/cn.err"
expect_eq "missing ControlNet model exit" $? 2
expect_contains "missing ControlNet model named" "$T/cn.err" "has no ControlNet model \`control_v11p_sd15_openpose\`; it has: control_v11p_sd15_canny ["
expect_eq "still no submission" "$(txt2img_count "$A")" 0

# 3. a ControlNet weight over 2 on an a1111 endpoint: refused when the spec is loaded
ai_owls "$P" a1111 's/weight: 0.7, guidance_end/weight: 3, guidance_end/'
"$KILN" -C "$P" plan -q 2>"$T/w.err"
expect_eq "controlnet weight 3 exit" $? 2
expect_contains "controlnet weight 3 message" "$T/w.err" "weight over 2"

# 4. LoRAs written with an extension or a folder go out as the server lists them, every answer
#    carries their hashes, and what ran is recorded beside what was asked
ai_owls "$P" a1111 's/name: crown_v2,/name: loras\/crown_v2.safetensors,/; s/name: laser_eyes,/name: laser_eyes.safetensors,/'
"$KILN" -C "$P" plan -q || fail plan
"$KILN" -C "$P" render -q 2>"$T/lora.err"
expect_eq "render with LoRA file names exit" $? 0
requests /sdapi/v1/txt2img >"$T/sent.json"
$PY - "$T/sent.json" <<'PY' >"$T/lora.check" 2>&1
import json, sys
crown = laser = 0
for r in json.load(open(sys.argv[1])):
    p = r["json"]["prompt"]
    assert ".safetensors" not in p and "loras/" not in p, p
    crown += "<lora:crown_v2:0.8>" in p
    laser += "<lora:laser_eyes:0.9>" in p
assert crown == 4 and laser > 0, (crown, laser)
print("ok")
PY
expect_contains "LoRAs sent as listed" "$T/lora.check" ok
expect_eq "every image has its LoRA hashes" "$(db "select count(*) from renders where status='ok' and request like '%crown_v2%' and ran like '%\"name\":\"crown_v2\",\"hash\":\"%'")" 4
ID=$(db "select item_id from renders where status='ok' and request like '%crown_v2%' limit 1")
"$KILN" -C "$P" show "$ID" --json >"$T/show.json"
$PY - "$T/show.json" <<'PY' >"$T/show.check" 2>&1
import json, sys
ran = json.load(open(sys.argv[1]))["renders"][0]["ran"]
assert ran["model"] == "sd_xl_base_1.0" and len(ran["model_hash"]) == 10, ran
assert "crown_v2" in [l["name"] for l in ran["loras"]], ran
assert ran["steps"] == 20 and ran["sampler"] == "Euler a", ran
print("ok")
PY
expect_contains "kiln show --json: what ran" "$T/show.check" ok

# 5. an endpoint that lacks a LoRA is taken out of the pool of the jobs that need it
start_server --protocol a1111 --auth owl:pw --loras crown_v2.safetensors,pixel_art_xl.safetensors
B=$U
ai_owls "$P" a1111 "s#$A#$A#"
sed -i "s#$A#$B#" "$P/kiln.yaml"
add_endpoint "$P" "$A"
"$KILN" -C "$P" plan -q || fail plan
"$KILN" -C "$P" render -q 2>"$T/pool.err"
expect_eq "mixed pool exit" $? 0
expect_eq "all rendered" "$(db "select count(*) from items where status='rendered'")" 60
U=$B
requests /sdapi/v1/txt2img >"$T/b.json"
expect_eq "no laser_eyes job on the endpoint without it" "$(grep -c laser_eyes "$T/b.json")" 0
U=$A

# 6. a server that lists a LoRA but drops it (a file that fails to load) fails the attempt
#    naming what was dropped, and after 5 such jobs in a row is parked for the run
start_server --protocol a1111 --auth owl:pw --unloadable-loras pixel_art_xl
C=$U
EVERY='s/prompt: "small"}/prompt: "small", lora: [{name: pixel_art_xl, weight: 0.5}]}/; s/prompt: "hooked"}/prompt: "hooked", lora: [{name: pixel_art_xl, weight: 0.5}]}/; s/prompt: "open"}/prompt: "open", lora: [{name: pixel_art_xl, weight: 0.5}]}/'
ai_owls "$P" a1111 "$EVERY"
sed -i "s#$A#$C#" "$P/kiln.yaml"
"$KILN" -C "$P" plan -q || fail plan
"$KILN" -C "$P" render 2>"$T/park.err" >/dev/null
expect_eq "dropping server exit" $? 1
expect_contains "parked, said at the end" "$T/park.err" "$C: parked for this run: it did not apply what was asked in 5 jobs in a row"
expect_contains "what was dropped" "$T/park.err" "dropped LoRA \`pixel_art_xl\`"
expect_eq "not retried forever" "$(txt2img_count "$C")" 5
expect_eq "mismatches recorded" "$(db "select count(*) from renders where endpoint is not null and error like '%dropped LoRA%'")" 5
#    beside a server that applies it: every job ends rendered there
ai_owls "$P" a1111 "$EVERY"
sed -i "s#$A#$C#" "$P/kiln.yaml"
add_endpoint "$P" "$A"
"$KILN" -C "$P" plan -q || fail plan
"$KILN" -C "$P" render --json 2>"$T/park2.err" >"$T/park2.json"
expect_eq "with a good server exit" $? 0
expect_eq "all rendered on the good one" "$(db "select count(*) from items where status='rendered'")" 60
expect_contains "the parked endpoint in the summary" "$T/park2.json" '"why":"'"$C"': parked for this run'

# 7. Forge: ControlNet "none" goes out as its "None", the model as its exact title, so the
#    unit is applied (Forge drops a unit spelled otherwise, answering 200)
start_server --protocol a1111 --auth owl:pw --forge
F=$U
ai_owls "$P" a1111 "s#$A#$F#"
"$KILN" -C "$P" plan -q || fail plan
"$KILN" -C "$P" render -q 2>"$T/forge.err"
expect_eq "forge render exit" $? 0
curl -s "$F/__test__/jobs" >"$T/jobs.json"
$PY - "$T/jobs.json" <<'PY' >"$T/forge.check" 2>&1
import json, sys
jobs = [j for j in json.load(open(sys.argv[1])) if j["protocol"] == "a1111"]
halo = [j for j in jobs if "halo" in j["outputs"][0]["params"]["prompt"]]
assert len(halo) == 3, len(halo)
for j in halo:
    cn = j["outputs"][0]["params"]["extra"]["controlnet"]
    assert len(cn) == 1 and cn[0][1] == "None", cn
print("ok")
PY
expect_contains "Forge applies every ControlNet unit" "$T/forge.check" ok
finish
