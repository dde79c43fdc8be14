# SageMaker asynchronous inference through `kiln render`, against tests/cloud/sagemaker_server.py
# (S3 + the runtime on one port; it checks every request's SigV4 signature and refuses a wrong
# one as AWS does): a render, --dry-run and the catalog without secrets, a wrong secret, a
# missing variable, failed jobs retried, kill -9 during the S3 uploads and during polling
# (rerun: every item once, no invocation sent twice once its output location was stored),
# a session token, a JumpStart worker.
. "$(dirname "$0")/lib.sh"
AK=AKIDKILNTEST
SK='kiln/test+secret/key'
SERVER_PIDS=
start_sm() { # args for sagemaker_server.py; sets U
	so=$T/sm$(date +%s%N)
	$PY "$KILN_SRC/tests/cloud/sagemaker_server.py" --port 0 "$@" >"$so.out" 2>"$so.err" &
	SERVER_PIDS="$SERVER_PIDS $!"
	for _ in $(seq 100); do grep -q LISTENING "$so.out" 2>/dev/null && break; sleep 0.1; done
	U=http://$(sed -n 's/^LISTENING //p' "$so.out")
	[ "$U" != "http://" ] || { echo "server did not start"; cat "$so.err"; exit 1; }
}
stop_all() { for pid in $SERVER_PIDS; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done; }
trap stop_all EXIT
stats() { curl -s "$U/__test__/stats"; }
config() { curl -s -XPOST "$U/__test__/config" -d "$1" >/dev/null; }
# a copy of examples/ai-owls whose one endpoint is the SageMaker test server
sm_owls() { # dir [extra endpoint keys]
	rm -rf "$1"
	cp -r "$KILN_SRC/examples/ai-owls" "$1"
	$PY - "$1/kiln.yaml" "$U" "${2:-}" <<'PY'
import re, sys
p, u, extra = sys.argv[1:4]
s = open(p).read()
s = re.sub(r'    - \{url: "http://127.0.0.1:7860".*?timeout: 300\}',
           '    - {platform: sagemaker, region: us-east-1, endpoint_name: sd-async, '
           'input_location: "s3://kiln-in/jobs/", access_key_env: KILN_AWS_KEY, '
           'secret_key_env: KILN_AWS_SECRET, base_url: "%s", s3_base_url: "%s", '
           'concurrency: 8, timeout: 30%s}' % (u, u, extra), s, flags=re.S)
open(p, "w").write(s)
PY
}
export KILN_AWS_KEY=$AK KILN_AWS_SECRET=$SK
db() { sqlite3 "$P/.kiln/catalog.db" "$1"; }
# every inference id invoked once, and how many
once() { stats | $PY -c '
import json, sys
s = json.load(sys.stdin)
twice = {k: v for k, v in s["invoked"].items() if v != 1}
print("invocations", len(s["invoked"]), "twice", len(twice), "bad_signatures", s["bad_signatures"])'; }

start_sm --delay-ms 150
P=$T/p
sm_owls "$P"
"$KILN" -C "$P" plan -q || fail plan
# --dry-run: the upload and the invocation, the variables' names, no secret
"$KILN" -C "$P" render --dry-run 2 >"$T/dry" 2>&1
expect_eq "dry-run exit" $? 0
expect_contains "dry-run upload" "$T/dry" "# 1. PUT $U/kiln-in/jobs/kiln-"
expect_contains "dry-run invocation" "$T/dry" "# 2. POST $U/endpoints/sd-async/async-invocations"
expect_contains "dry-run keys" "$T/dry" 'AWS keys from $KILN_AWS_KEY and $KILN_AWS_SECRET, not shown'
"$KILN" -C "$P" render >"$T/out" 2>&1
expect_eq "render exit" $? 0
expect_contains "render summary" "$T/out" "60 rendered, 0 failed"
expect_eq "rendered" "$(db "select count(*) from items where status='rendered'")" 60
once >"$T/once"
expect_contains "each job invoked once, every signature good" "$T/once" "invocations 59 twice 0 bad_signatures 0"
expect_eq "nothing in flight" "$(db "select count(*) from ai_inflight")" 0
expect_eq "engine recorded" "$(db "select distinct engine from renders where engine != 'file'")" sagemaker
# the A1111 container's answer was read and checked as A1111's (its infotext kept)
expect_eq "infotexts" "$(db "select count(*) from ai_info where info like '%Steps: 20%'")" 59
# secrets: nowhere in the project, the output or the dry run
if grep -rqF -- "$SK" "$P" "$T/out" "$T/dry"; then fail "the secret key was written"; else ok; fi

# a wrong secret: refused by S3 with SignatureDoesNotMatch, the endpoint named, exit 1
KILN_AWS_SECRET=not-the-secret "$KILN" -C "$P" render --force >"$T/out" 2>&1
expect_eq "wrong secret exit" $? 1
expect_contains "wrong secret named" "$T/out" "endpoint $U/endpoints/sd-async: AWS refused kiln's signed request (HTTP 403 SignatureDoesNotMatch: The request signature we calculated does not match the signature you provided."
expect_contains "wrong secret hint" "$T/out" "check the keys in the environment variables named by access_key_env and secret_key_env"
if grep -rqF -- "not-the-secret" "$P" "$T/out"; then fail "the wrong secret was written"; else ok; fi
# a variable not set: exit 2 before anything is sent
KILN_AWS_SECRET= "$KILN" -C "$P" render --force >"$T/out" 2>&1
expect_eq "missing secret exit" $? 2
expect_contains "missing secret" "$T/out" "secret_key_env names the environment variable KILN_AWS_SECRET, which is not set"

# failed jobs (failure objects) are retried under a new inference id
config '{"fail_rate": 0.3}'
"$KILN" -C "$P" render --force >"$T/out" 2>&1
expect_eq "render with failures exit" $? 0
expect_contains "render with failures" "$T/out" "60 rendered, 0 failed"
db "select error from renders where status='failed'" >"$T/errors"
expect_contains "failure object read" "$T/errors" "the endpoint failed the job (its failure object): {\"code\": 500, \"type\": \"InternalServerException\", \"message\": \"CUDA out of memory (test fault)\"}"
config '{"fail_rate": 0}'

# kill -9 during the S3 uploads: the rerun uploads again (same key) and invokes each job once
stop_all
start_sm --delay-ms 150 --put-delay-ms 1500
sm_owls "$P"
"$KILN" -C "$P" plan -q || fail plan
"$KILN" -C "$P" render -q >"$T/out" 2>&1 &
KP=$!
sleep 1
kill -9 $KP
wait $KP 2>/dev/null
expect_eq "no invocation before the uploads ended" "$(stats | $PY -c 'import json,sys; print(json.load(sys.stdin)["invocations"])')" 0
config '{"put_delay_ms": 0}'
"$KILN" -C "$P" render -q >"$T/out" 2>&1
expect_eq "rerun after kill during upload" $? 0
expect_eq "rendered after upload kill" "$(db "select count(*) from items where status='rendered'")" 60
once >"$T/once"
expect_contains "invoked once after upload kill" "$T/once" "invocations 59 twice 0 bad_signatures 0"

# kill -9 while jobs run: their output locations are in the catalog; the rerun polls them
stop_all
start_sm --delay-ms 4000
sm_owls "$P"
"$KILN" -C "$P" plan -q || fail plan
"$KILN" -C "$P" render -q >"$T/out" 2>&1 &
KP=$!
for _ in $(seq 100); do
	n=$(stats | $PY -c 'import json,sys; print(json.load(sys.stdin)["invocations"])')
	[ "$n" -ge 8 ] && break
	sleep 0.05
done
sleep 0.3
kill -9 $KP
wait $KP 2>/dev/null
inflight=$(db "select count(*) from ai_inflight")
[ "$inflight" -ge 8 ] && ok || fail "output locations stored: $inflight in flight"
db "select remote_id from ai_inflight limit 1" >"$T/remote"
expect_contains "the output location stored" "$T/remote" "\"out\":\"s3://kiln-out/async-output/"
config '{"delay_ms": 150}'
"$KILN" -C "$P" render -q >"$T/out" 2>&1
expect_eq "rerun after kill during polling" $? 0
expect_eq "rendered after polling kill" "$(db "select count(*) from items where status='rendered'")" 60
once >"$T/once"
expect_contains "invoked once after polling kill" "$T/once" "invocations 59 twice 0 bad_signatures 0"
if grep -rqF -- "$SK" "$P"; then fail "the secret key was written"; else ok; fi

# temporary credentials: the session token is signed and sent
stop_all
start_sm --delay-ms 100 --token 'FQoGZXIvYXdzE//test+token'
sm_owls "$P" ", session_token_env: KILN_AWS_TOKEN"
"$KILN" -C "$P" plan -q || fail plan
"$KILN" -C "$P" render -q >"$T/out" 2>&1
expect_eq "session token not set" $? 2
expect_contains "session token not set" "$T/out" "session_token_env names the environment variable KILN_AWS_TOKEN"
KILN_AWS_TOKEN=wrong "$KILN" -C "$P" render >"$T/out" 2>&1
expect_eq "wrong session token" $? 1
expect_contains "wrong session token" "$T/out" "HTTP 400 InvalidToken: The provided token is malformed or otherwise invalid."
KILN_AWS_TOKEN='FQoGZXIvYXdzE//test+token' "$KILN" -C "$P" render -q >"$T/out" 2>&1
expect_eq "with a session token" $? 0
expect_eq "rendered with a token" "$(db "select count(*) from items where status='rendered'")" 60

# a JumpStart model: its own body, generated_images[0] read back
stop_all
start_sm --delay-ms 100 --worker jumpstart --jpeg
sm_owls "$P" ", worker: jumpstart"
$PY - "$P/kiln.yaml" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p).read()
s = re.sub(r",\s*lora: \[[^]]*\]", "", s)
s = re.sub(r",\s*controlnet: \{[^}]*\}", "", s)
s = re.sub(r"\n  (checkpoint|sampler|workflow):[^\n]*", "", s)
open(p, "w").write(s)
PY
"$KILN" -C "$P" plan -q 2>"$T/err" || { fail "jumpstart plan"; cat "$T/err"; }
"$KILN" -C "$P" render --dry-run 2 >"$T/dry" 2>&1
expect_contains "jumpstart body" "$T/dry" '"num_inference_steps":20'
expect_contains "jumpstart accept" "$T/dry" "X-Amzn-SageMaker-Accept: application/json;jpeg"
"$KILN" -C "$P" render -q >"$T/out" 2>&1
expect_eq "jumpstart render" $? 0
expect_eq "jumpstart rendered" "$(db "select count(*) from items where status='rendered'")" 60
expect_eq "jumpstart engine" "$(db "select distinct engine from renders where engine != 'file'")" sagemaker-jumpstart
# its JPEG answers were kept as PNG (image.format png)
"$KILN" -C "$P" release -q 2>"$T/err" || { fail "jumpstart release"; cat "$T/err"; }
n=$(for f in "$P"/dist/images/*.png; do head -c 8 "$f" | od -An -tx1 | tr -d ' \n'; echo; done | grep -c '^89504e470d0a1a0a$')
expect_eq "jumpstart images are PNG" "$n" 60
finish
