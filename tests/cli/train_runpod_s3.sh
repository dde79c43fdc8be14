# kiln train run on RunPod with dataset_upload: s3: the prepared folder (with a 12 MB file,
# over what a /run body carries) packed, uploaded to the S3 test server
# (tests/cloud/sagemaker_server.py, which checks every SigV4 signature, the presigned GET's
# too) under its SHA-256, and named in the job by a presigned URL the RunPod trainer worker
# fetches; the worker answers lora_url, which kiln downloads (sha256 checked) and registers.
# A second run finds the dataset in S3 (HEAD) and uploads nothing; a wrong secret is refused
# by S3; a LoRA whose SHA-256 is not the one announced is not kept. Then Ctrl-C (SIGINT)
# while /status hangs: kiln stops at once, the job keeps running.
. "$(dirname "$0")/lib.sh"
stop_server() { :; }
. "$(dirname "$0")/cloud_common.inc"
export KOHYA_STANDIN_STEP_SECONDS=0.02
so=$T/s3
$PY "$KILN_SRC/tests/cloud/sagemaker_server.py" --port 0 --buckets kiln-data >"$so.out" \
	2>"$so.err" &
RP_PIDS="$RP_PIDS $!"
for _ in $(seq 100); do grep -q LISTENING "$so.out" 2>/dev/null && break; sleep 0.1; done
SU=http://$(sed -n 's/^LISTENING //p' "$so.out")
[ "$SU" != "http://" ] || { echo "S3 server did not start"; cat "$so.err"; exit 1; }
s3_field() { curl -s "$SU/__test__/stats" | $PY -c "import sys, json; print(json.load(sys.stdin)['$1'])"; }
export KILN_AWS_KEY=AKIDKILNTEST KILN_AWS_SECRET='kiln/test+secret/key'
start_runpod --worker trainer --workers 1
rp_config '{"lora_url": true}'
P=$T/p
$PY "$KILN_SRC/tests/train/make_dataset.py" "$P"
$PY - "$P/kiln.yaml" "$RU" "$SU" <<'PY'
import sys
p, ru, su = sys.argv[1:]
s = open(p).read()
s = s.replace("steps: 1500", "steps: 10", 1).replace("name: owl_style", "name: owl_s3", 1)
s = s.replace('local: {command: ["accelerate", "launch", "sdxl_train_network.py"]}',
              'runpod: {endpoint_id: tr1, auth_env: RP_KEY, base_url: "%s", '
              'dataset_upload: s3, s3: {bucket: kiln-data, prefix: datasets/, '
              'region: us-east-1, base_url: "%s", access_key_env: KILN_AWS_KEY, '
              'secret_key_env: KILN_AWS_SECRET}}' % (ru, su), 1)
open(p, "w").write(s)
PY
"$KILN" -C "$P" train prepare owl_s3 -q >"$T/prep" 2>&1
expect_eq "prepare ($(tail -c 300 "$T/prep"))" $? 0
D=$P/.kiln/train/owl_s3
head -c 12000000 /dev/urandom >"$D/big.bin"

"$KILN" -C "$P" train run owl_s3 --json >"$T/j1" 2>"$T/e1"
expect_eq "run with the S3 upload ($(tail -c 400 "$T/e1"))" $? 0
expect_contains "done" "$T/j1" '"event":"done"'
expect_contains "dataset event" "$T/j1" '"uploaded":true'
expect_eq "one upload" "$(s3_field puts)" 1
expect_eq "no bad signature" "$(s3_field bad_signatures)" 0
expect_eq "the worker fetched the presigned URL" "$(s3_field presigned)" 1
[ "$(s3_field put_bytes)" -gt 12000000 ] && ok || fail "the whole dataset uploaded"
expect_eq "the LoRA fetched from lora_url" "$(rp_field s3_get)" 1
curl -s "$RU/__test__/runs" >"$T/runs"
$PY - "$T/runs" "$D/output/owl_s3.safetensors" <<'PY' >"$T/py" 2>&1
import hashlib, json, sys
inp = json.load(open(sys.argv[1]))[0]["input"]
assert "dataset_tar" not in inp, inp.keys()
sha = inp["dataset_sha256"]
assert inp["dataset_s3"] == "s3://kiln-data/datasets/%s.tar" % sha, inp["dataset_s3"]
assert "/kiln-data/datasets/%s.tar?X-Amz-Algorithm=AWS4-HMAC-SHA256&" % sha in inp["dataset_url"]
assert "X-Amz-Expires=90000" in inp["dataset_url"], inp["dataset_url"]
assert inp["dataset_bytes"] > 12000000
assert len(hashlib.sha256(open(sys.argv[2], "rb").read()).hexdigest()) == 64
PY
expect_eq "the job's input ($(cat "$T/py"))" $? 0
"$KILN" -C "$P" models ls --json >"$T/ls"
expect_contains "registered" "$T/ls" '"name":"owl_s3"'

# the same dataset again: HEAD finds it, nothing uploaded
"$KILN" -C "$P" train run owl_s3 --json >"$T/j2" 2>"$T/e2"
expect_eq "second run ($(tail -c 300 "$T/e2"))" $? 0
expect_contains "not uploaded again" "$T/j2" '"uploaded":false'
expect_eq "still one upload" "$(s3_field puts)" 1

# a wrong secret: S3 refuses the signature, no job is sent
N=$(rp_field run)
KILN_AWS_SECRET=wrong "$KILN" -C "$P" train run owl_s3 >"$T/o3" 2>&1
expect_eq "wrong secret refused" $? 2
expect_contains "names the variable" "$T/o3" 'KILN_AWS_KEY'
expect_contains "S3's answer" "$T/o3" 'HTTP 403'
expect_eq "S3 saw the bad signature" "$(s3_field bad_signatures)" 1
expect_eq "no job sent" "$(rp_field run)" "$N"
[ -f "$D/run.json" ] && fail "run.json left" || ok

# a LoRA whose SHA-256 is not the one the job announced: not kept
rp_config '{"lora_sha256_wrong": true}'
rm -f "$D/output/owl_s3.safetensors"
"$KILN" -C "$P" train run owl_s3 >"$T/o4" 2>&1
expect_eq "wrong sha refused" $? 1
expect_contains "sha message" "$T/o4" "not the"
[ -f "$D/output/owl_s3.safetensors" ] && fail "a bad LoRA was kept" || ok
ls "$D/output" | grep -q tmp && fail "a temporary file left" || ok
rp_config '{"lora_sha256_wrong": false}'

# Ctrl-C while /status hangs (the endpoint's timeout is 600 s): kiln stops within a second,
# the job keeps running, run.json stays for the next run
rp_config '{"status_delay": 30}'
"$KILN" -C "$P" train run owl_s3 -q >"$T/o5" 2>"$T/e5" &
K=$!
for i in $(seq 100); do [ -f "$D/run.json" ] && break; sleep 0.1; done
sleep 0.5
t0=$(date +%s%N)
kill -INT $K
wait $K
rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect_eq "Ctrl-C exit ($(cat "$T/e5"))" $rc 130
[ "$ms" -lt 1500 ] && ok || fail "Ctrl-C took $ms ms"
expect_contains "the job keeps running" "$T/e5" "keeps running"
[ -f "$D/run.json" ] && ok || fail "run.json kept"
rp_config '{"status_delay": 0}'
"$KILN" -C "$P" train run owl_s3 -q >"$T/o6" 2>&1
expect_eq "the next run collects ($(tail -c 300 "$T/o6"))" $? 0
finish
