# kiln train run on a RunPod endpoint: the RunPod test server's trainer worker
# (tests/cloud/runpod_server.py --worker trainer, kiln's own contract) unpacks the prepared
# folder sent as base64 tar and runs the kohya stand-in; kiln follows the job's progress, is
# killed with kill -9 while polling, and the rerun polls the same job (never sent again) and
# registers the LoRA; --cancel cancels a job; a dataset over what /run carries is refused
# before anything is sent.
. "$(dirname "$0")/lib.sh"
stop_server() { :; }
. "$(dirname "$0")/cloud_common.inc"
export KOHYA_STANDIN_STEP_SECONDS=0.1
start_runpod --worker trainer --workers 1
P=$T/p
# tests/train/make_dataset.py's project, its training sent to RunPod for 30 steps
$PY "$KILN_SRC/tests/train/make_dataset.py" "$P"
$PY - "$P/kiln.yaml" "$RU" <<'PY'
import sys
p, ru = sys.argv[1:]
s = open(p).read()
s = s.replace("steps: 1500", "steps: 30", 1).replace("name: owl_style", "name: owl_cloud", 1)
s = s.replace('local: {command: ["accelerate", "launch", "sdxl_train_network.py"]}',
              'runpod: {endpoint_id: tr1, auth_env: RP_KEY, base_url: "%s"}' % ru, 1)
open(p, "w").write(s)
PY
"$KILN" -C "$P" train prepare owl_cloud -q >"$T/prep" 2>&1
expect_eq "prepare ($(tail -c 300 "$T/prep"))" $? 0
D=$P/.kiln/train/owl_cloud

"$KILN" -C "$P" train run owl_cloud --json >"$T/j1" 2>"$T/e1" &
K=$!
for i in $(seq 80); do grep -q '"event":"step"' "$T/j1" 2>/dev/null && break; sleep 0.1; done
kill -9 $K
wait $K 2>/dev/null
expect_contains "progress from the job's status" "$T/j1" '"event":"step"'
JOB=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["job_id"])' "$D/run.json")
[ -n "$JOB" ] && ok || fail "job id in run.json"
"$KILN" -C "$P" train run owl_cloud --json >"$T/j2" 2>"$T/e2"
expect_eq "rerun collects ($(cat "$T/e2"))" $? 0
expect_eq "the job was sent once" "$(rp_field run)" 1
expect_contains "done" "$T/j2" '"event":"done"'
expect_contains "the worker's log kept" "$D/log" "running training"
"$KILN" -C "$P" models ls --json >"$T/ls"
$PY - "$T/ls" "$JOB" <<'PY' >"$T/py" 2>&1
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
assert len(r) == 1 and r[0]["name"] == "owl_cloud", r
t = r[0]["training"]
assert t["where"] == "runpod" and t["job_id"] == sys.argv[2] and t["images_x_repeats"] == 222, t
assert r[0]["safetensors"]["metadata"]["ss_seed"] == "7"
PY
expect_eq "registered with its job ($(cat "$T/py"))" $? 0
# what was sent: the prepared folder as a tar, kohya's args, nothing of the run's own files
curl -s "$RU/__test__/runs" >"$T/runs"
$PY - "$T/runs" <<'PY' >"$T/py" 2>&1
import base64, io, json, sys, tarfile
inp = json.load(open(sys.argv[1]))[0]["input"]
names = tarfile.open(fileobj=io.BytesIO(base64.b64decode(inp["dataset_tar"]))).getnames()
assert "owl_cloud/dataset.toml" in names and "owl_cloud/manifest.json" in names, names
assert [n for n in names if n.startswith("owl_cloud/images/0/")], names
assert not [n for n in names if n.endswith(("/log", "/run.json"))], names
assert inp["script"] == "sdxl_train_network.py" and "--dataset_config" in inp["args"], inp["args"]
assert inp["workdir"] == "owl_cloud" and inp["output"] == "output/owl_cloud.safetensors", inp
PY
expect_eq "the job's input ($(cat "$T/py"))" $? 0

# --cancel: the job is cancelled on RunPod
rp_config '{"queue_delay": 30}'
"$KILN" -C "$P" train run owl_cloud -q >"$T/o3" 2>"$T/e3" &
K=$!
for i in $(seq 50); do [ -f "$D/run.json" ] && break; sleep 0.1; done
kill -9 $K
wait $K 2>/dev/null
"$KILN" -C "$P" train run owl_cloud --cancel >"$T/o4" 2>&1
expect_eq "cancel ($(cat "$T/o4"))" $? 0
expect_eq "cancelled on RunPod" "$(rp_field cancel)" 1
[ -f "$D/run.json" ] && fail "run.json left after cancel" || ok
rp_config '{"queue_delay": 0}'

# over 10 MB of dataset: refused before anything is sent
head -c 8000000 /dev/urandom >"$D/images/0/big.png"
N=$(rp_field run)
"$KILN" -C "$P" train run owl_cloud >"$T/o5" 2>&1
expect_eq "oversize refused" $? 2
expect_contains "oversize message" "$T/o5" "10 MB"
expect_eq "nothing sent" "$(rp_field run)" "$N"
finish
