# RunPod serverless endpoints end to end through `kiln render`, against the RunPod test server
# (tests/cloud/runpod_server.py): both official workers' payloads, the spend equal to the
# executionTime the server reported at the endpoint's price, 429 with Retry-After, failed,
# lost and timed-out jobs, the 10 MB limit, the budget, --dry-run and `kiln status`.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ai_common.inc"
. "$(dirname "$0")/cloud_common.inc"
P=$T/p
start_runpod --worker a1111 --workers 4 --job-seconds 0.1 --jitter 0.3

# --- worker-a1111: the txt2img body in input, A1111's answer in output -------------------
rp_owls "$P" a1111 4
"$KILN" -C "$P" plan -q || fail plan
"$KILN" -C "$P" render --dry-run 5 >"$T/dry" 2>&1
expect_contains "dry-run: POST /run" "$T/dry" "POST $RU/v2/ep1/run"
expect_contains "dry-run: bearer from the variable" "$T/dry" "Authorization: Bearer <token from \$RP_KEY, not shown>"
expect_contains "dry-run: policy" "$T/dry" '"policy":{"executionTimeout":600000,"ttl":4200000}'
if grep -q test-key "$T/dry"; then fail "dry-run shows the key"; else ok; fi
RP_KEY= "$KILN" -C "$P" render -q 2>"$T/err"
expect_eq "no key: usage error" $? 2
expect_contains "no key named" "$T/err" "auth_env names the environment variable RP_KEY, which is not set: set it to the RunPod API key"
"$KILN" -C "$P" render -q 2>"$T/err"
expect_eq "render exit" $? 0
expect_eq "rendered" "$(sqlite3 "$P/.kiln/catalog.db" "select count(*) from items where status='rendered'")" 60
expect_eq "one /run per job" "$(rp_field run)" 59
curl -s "$RU/__test__/runs" | $PY -c '
import sys, json
runs = json.load(sys.stdin)
for r in runs:
    i = r["input"]
    assert i["width"] == 512 and i["steps"] == 20 and i["sampler_name"] == "Euler a", i
    if "golden crown" in i["prompt"]:
        assert "<lora:crown_v2:0.8>" in i["prompt"], i["prompt"]
    if "glowing halo" in i["prompt"]:
        u = i["alwayson_scripts"]["controlnet"]["args"][0]
        assert u["model"] == "control_v11p_sd15_canny" and len(u["image"]) > 100
print("ok")' >"$T/check" 2>&1
expect_contains "worker-a1111 input" "$T/check" ok
# spend: every attempt's executionTime at $0.36 an hour, as the server reported it
$PY - "$P/.kiln/catalog.db" "$(rp_exec_ms)" >"$T/spend" 2>&1 <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
gpu, cost = db.execute("select sum(gpu_seconds), sum(cost_usd) from renders where engine = 'runpod'").fetchone()
ms = int(sys.argv[2])
assert abs(gpu - ms / 1000) < 1e-9, (gpu, ms)
assert abs(cost - ms / 1000 * 0.36 / 3600) < 1e-12, (cost, ms)
print("ok", gpu, cost)
PY
expect_contains "spend = executionTime x price" "$T/spend" ok
"$KILN" -C "$P" status >"$T/status"
expect_contains "status: spend" "$T/status" "$RU/v2/ep1 spent \$"
expect_contains "status: the endpoint's /health" "$T/status" "in queue"
"$KILN" -C "$P" status --json | $PY -c 'import sys, json
e = json.load(sys.stdin)["endpoints"][0]
assert e["engine"] == "runpod" and e["spent_usd"] > 0 and e["health"]["answer"]["workers"]
print("ok")' >"$T/sj" 2>&1
expect_contains "status --json: spend and health" "$T/sj" ok

# --- 429 with Retry-After, failed, lost and timed-out jobs: every item once ----------------
rp_config '{"rate_limit": 8, "fail_rate": 0.1, "lose_rate": 0.05, "timeout_rate": 0.05}'
before=$(rp_field run)
"$KILN" -C "$P" render --force -q 2>"$T/err"
expect_eq "faults: render exit" $? 0
expect_eq "faults: rendered" "$(sqlite3 "$P/.kiln/catalog.db" "select count(*) from items where status='rendered'")" 60
rate429=$(rp_field run_429)
[ "$rate429" -gt 0 ] && ok || fail "the rate limit never answered 429"
runs=$(( $(rp_field run) - before ))
# a job is sent again only after it failed, was lost or timed out (429s make none)
$PY -c "
import json, urllib.request
s = json.load(urllib.request.urlopen('$RU/__test__/stats'))
bad = s['by_status'].get('FAILED', 0) + s['by_status'].get('TIMED_OUT', 0)
assert $runs == 59 + bad - 0, ($runs, bad, s)
print('ok')" >"$T/runs" 2>&1
expect_contains "faults: no job sent twice but after a failure" "$T/runs" ok
sqlite3 "$P/.kiln/catalog.db" "select error from renders where status='failed' and engine='runpod'" >"$T/errs"
expect_contains "failed job's error" "$T/errs" "FAILED: handler: CUDA error"
expect_contains "timed-out job" "$T/errs" "TIMED_OUT (it ran past its executionTimeout)"
expect_contains "lost job" "$T/errs" "is not known to RunPod (HTTP 404)"
rp_config '{"rate_limit": 0, "fail_rate": 0, "lose_rate": 0, "timeout_rate": 0}'

# --- worker-comfyui: the graph and the ControlNet images in input; base64, s3_url and the ----
# --- older {status, message} outputs -------------------------------------------------------
rp_config '{"worker": "comfyui"}'
rp_owls "$P" comfyui 4
"$KILN" -C "$P" plan -q || fail plan
before=$(rp_field run)
"$KILN" -C "$P" render -q 2>"$T/err"
expect_eq "comfyui: render exit" $? 0
expect_eq "comfyui: rendered" "$(sqlite3 "$P/.kiln/catalog.db" "select count(*) from items where status='rendered'")" 60
expect_eq "comfyui: one /run per job" $(( $(rp_field run) - before )) 59
curl -s "$RU/__test__/runs" | $PY -c '
import sys, json
halo = 0
for r in json.load(sys.stdin)[-59:]:
    i = r["input"]
    nodes = i["workflow"].values()
    assert any(n["class_type"] == "KSampler" for n in nodes)
    loads = [n["inputs"]["image"] for n in nodes if n["class_type"] == "LoadImage"]
    names = [x["name"] for x in i.get("images", [])]
    assert sorted(loads) == sorted(names), (loads, names)
    halo += bool(loads)
assert halo == 3, halo
print("ok")' >"$T/check" 2>&1
expect_contains "worker-comfyui input" "$T/check" ok
rp_config '{"s3": true}'
"$KILN" -C "$P" render --force -q 2>"$T/err"
expect_eq "s3_url: render exit" $? 0
expect_eq "s3_url: images fetched" "$(rp_field s3_get)" 59
rp_config '{"s3": false, "old_output": true}'
"$KILN" -C "$P" render --force -q 2>"$T/err"
expect_eq "older worker output: render exit" $? 0
rp_config '{"old_output": false}'

# --- over 10 MB: refused before anything is sent -------------------------------------------
$PY -c "
import os, struct, zlib
w, h = 2048, 1400
raw = b''.join(b'\0' + os.urandom(w * 3) for _ in range(h))
def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))
open('$P/controlnet/halo_canny.png', 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(raw, 0)) + chunk(b'IEND', b''))"
before=$(rp_field run)
"$KILN" -C "$P" plan -q
"$KILN" -C "$P" render -q 2>"$T/err"
expect_eq "oversize: failed items" $? 1
sqlite3 "$P/.kiln/catalog.db" "select error from renders where status='failed'" >"$T/errs"
expect_contains "oversize: why" "$T/errs" "over the 10 MB RunPod takes in a /run body"
expect_eq "oversize: nothing sent" $(( $(rp_field run) - before )) 0
expect_eq "oversize: nothing refused by the server" "$(rp_field run_refused)" 0

# --- budget: submitting stops before the projection passes it; exit 1 naming the spend ------
rp_config '{"worker": "a1111", "job_seconds": 0.2, "jitter": 0}'
rp_owls "$P" a1111 2
sed -i 's/^  candidates: 1 /  budget_usd: 0.0002\n  candidates: 1 /' "$P/kiln.yaml"
"$KILN" -C "$P" plan -q || fail plan
before=$(rp_field run)
"$KILN" -C "$P" render -q 2>"$T/err"
expect_eq "budget: exit" $? 1
expect_contains "budget: the spend named" "$T/err" "kiln: the budget stopped the render: \$0.000"
sqlite3 "$P/.kiln/catalog.db" "select error from items where status='failed'" >"$T/errs"
expect_contains "budget: the items' reason" "$T/errs" "would take the spend past generate.budget_usd \$0.0002"
sent=$(( $(rp_field run) - before ))
spent=$(sqlite3 "$P/.kiln/catalog.db" "select sum(cost_usd) from renders")
$PY -c "
sent, spent = $sent, $spent
job = 0.2 * 0.36 / 3600
assert 3 <= sent < 59, sent
assert spent <= 0.0002 + 2 * job * 1.5, spent   # what ran when the budget stopped finished
print('ok')" >"$T/b" 2>&1
expect_contains "budget: stopped near it" "$T/b" ok
finish
