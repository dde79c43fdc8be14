# Cloud endpoints' job lifetimes and S3 addressing: `execution_timeout` and `ttl` reach RunPod's
# policy and SageMaker's InvokeEndpointAsync headers (and --dry-run and the catalog say the
# same), their bounds are the platforms' (exit 2 naming the line), and virtual-hosted S3 URLs
# (BUCKET.HOST/KEY, AWS's default) are signed and sent as the SageMaker/S3 test server checks
# them: it serves them as an HTTP proxy would pass them on (http_proxy), Host naming the bucket.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ai_common.inc"
. "$(dirname "$0")/cloud_common.inc"
P=$T/p
db() { sqlite3 "$P/.kiln/catalog.db" "$1"; }

# --- RunPod: policy from the spec --------------------------------------------------------
start_runpod --worker a1111 --workers 4 --job-seconds 0.05
rp_owls "$P" a1111 4 ", execution_timeout: 120, ttl: 900"
"$KILN" -C "$P" plan -q || fail plan
"$KILN" -C "$P" render --dry-run 5 >"$T/dry" 2>&1
expect_contains "dry-run: the spec's policy" "$T/dry" '"policy":{"executionTimeout":120000,"ttl":900000}'
"$KILN" -C "$P" render -q 2>"$T/err"
expect_eq "runpod render exit" $? 0
curl -s "$RU/__test__/jobs" | $PY -c '
import sys, json
pol = {json.dumps(j["policy"], sort_keys=True) for j in json.load(sys.stdin)}
print(sorted(pol))' >"$T/pol"
expect_eq "every job sent with the policy" "$(cat "$T/pol")" "['{\"executionTimeout\": 120000, \"ttl\": 900000}']"
expect_eq "the catalog records the request sent" \
	"$(db "select count(*) from renders where engine = 'runpod' and request like '%\"policy\":{\"executionTimeout\":120000,\"ttl\":900000}%'")" 59
# without the keys: RunPod's default run time, an hour of queue beyond it (unchanged)
rp_owls "$T/d" a1111 4
"$KILN" -C "$T/d" plan -q && "$KILN" -C "$T/d" render --dry-run 5 >"$T/dry" 2>&1
expect_contains "default policy" "$T/dry" '"policy":{"executionTimeout":600000,"ttl":4200000}'

# --- bounds: RunPod's and SageMaker's, exit 2 at the key's line --------------------------
bad() { # name extra-keys expected-text [platform]
	if [ "${4:-runpod}" = runpod ]; then rp_owls "$T/b" a1111 1 "$2"; else sm_owls "$T/b" "$2"; fi
	"$KILN" -C "$T/b" plan -q >"$T/out" 2>&1
	expect_eq "$1: exit" $? 2
	expect_contains "$1: message" "$T/out" "$3"
	expect_contains "$1: file:line:col" "$T/out" "kiln.yaml:"
}
bad "runpod ttl under 10 s" ", ttl: 5" "RunPod ttl (seconds) must be"
bad "runpod execution_timeout under 5 s" ", execution_timeout: 2" "RunPod execution_timeout (seconds) must be"
bad "runpod ttl under the run" ", execution_timeout: 3600, ttl: 600" "ttl (600 s) is shorter than execution_timeout (3600 s)"
stop_all

# --- SageMaker: virtual-hosted S3, the TTL and invocation timeout ------------------------
AK=AKIDKILNTEST
SK='kiln/test+secret/key'
export KILN_AWS_KEY=$AK KILN_AWS_SECRET=$SK
SO=$T/sm
$PY "$KILN_SRC/tests/cloud/sagemaker_server.py" --port 0 --delay-ms 100 >"$SO.out" 2>"$SO.err" &
SMPID=$!
trap 'kill $SMPID 2>/dev/null; stop_all' EXIT
for _ in $(seq 100); do grep -q LISTENING "$SO.out" 2>/dev/null && break; sleep 0.1; done
HP=$(sed -n 's/^LISTENING //p' "$SO.out")
U=http://$HP
PORT=${HP##*:}
sm_owls() { # dir [extra endpoint keys]: the AI owls on the SageMaker test server
	rm -rf "$1"
	cp -r "$KILN_SRC/examples/ai-owls" "$1"
	$PY - "$1/kiln.yaml" "$U" "$PORT" "${2:-}" <<'PY'
import re, sys
p, u, port, extra = sys.argv[1:5]
s = open(p).read()
s, n = re.subn(r'    - \{url: "http://127.0.0.1:7860".*?timeout: 300\}',
               '    - {platform: sagemaker, region: us-east-1, endpoint_name: sd-async, '
               'input_location: "s3://kiln-in/jobs/", access_key_env: KILN_AWS_KEY, '
               'secret_key_env: KILN_AWS_SECRET, base_url: "%s", '
               's3_base_url: "http://s3.test.invalid:%s", concurrency: 8, timeout: 30%s}'
               % (u, port, extra), s, flags=re.S)
assert n == 1
open(p, "w").write(s)
PY
}
bad "sagemaker ttl over 6 h" ", ttl: 30000" "sagemaker ttl (seconds) must be" sagemaker
bad "sagemaker timeout over 1 h" ", execution_timeout: 4000" "sagemaker execution_timeout (seconds) must be" sagemaker
bad "s3_addressing" ", s3_addressing: vhost" "sagemaker s3_addressing must be virtual" sagemaker

P=$T/sm1
sm_owls "$P" ", s3_addressing: virtual, ttl: 3600, execution_timeout: 120"
"$KILN" -C "$P" plan -q || fail plan
"$KILN" -C "$P" render --dry-run 2 >"$T/dry" 2>&1
expect_contains "dry-run: virtual-hosted upload" "$T/dry" "# 1. PUT http://kiln-in.s3.test.invalid:$PORT/jobs/kiln-"
expect_contains "dry-run: TTL" "$T/dry" "X-Amzn-SageMaker-RequestTTLSeconds: 3600"
expect_contains "dry-run: invocation timeout" "$T/dry" "X-Amzn-SageMaker-InvocationTimeoutSeconds: 120"
# kiln status lists the endpoint before its first render
"$KILN" -C "$P" status >"$T/status"
expect_contains "status before any render: the endpoint" "$T/status" "$U/endpoints/sd-async sagemaker no attempts yet"
"$KILN" -C "$P" status --json | $PY -c 'import sys, json
e = json.load(sys.stdin)["endpoints"]
print([(x["endpoint"].split("/")[-1], x["engine"], x["attempts"]) for x in e])' >"$T/sj"
expect_eq "status --json before any render" "$(cat "$T/sj")" "[('sd-async', 'sagemaker', 0)]"
# S3 through the server as a proxy (the name s3.test.invalid resolves nowhere); the runtime
# at 127.0.0.1 directly
http_proxy=$U no_proxy=127.0.0.1 "$KILN" -C "$P" render -q 2>"$T/err"
expect_eq "virtual-hosted render exit" $? 0
expect_eq "rendered" "$(db "select count(*) from items where status='rendered'")" 60
curl -s "$U/__test__/stats" | $PY -c '
import sys, json
s = json.load(sys.stdin)
s3 = s["puts"] + s["gets"] + s["lists"]
print("bad", s["bad_signatures"], "all_virtual", s["virtual_hosted"] == s3 and s3 >= 59 * 2,
      "lifetimes", sorted({tuple(v) for v in s["lifetimes"].values()}), "invocations",
      s["invocations"])' >"$T/st"
expect_eq "signed, virtual-hosted, lifetimes sent" "$(cat "$T/st")" "bad 0 all_virtual True lifetimes [(3600, 120)] invocations 59"
"$KILN" -C "$P" status --json | $PY -c 'import sys, json
e = json.load(sys.stdin)["endpoints"]
print([(x["endpoint"].split("/")[-1], x["attempts"]) for x in e])' >"$T/sj"
expect_eq "status --json after the render: one row" "$(cat "$T/sj")" "[('sd-async', 59)]"
# the same spec with path-style S3 sends no virtual-hosted request
P=$T/sm2
sm_owls "$P" ", s3_addressing: path"
"$KILN" -C "$P" render --dry-run 2 >/dev/null 2>&1
"$KILN" -C "$P" plan -q && "$KILN" -C "$P" render --dry-run 2 >"$T/dry" 2>&1
expect_contains "path-style upload" "$T/dry" "# 1. PUT http://s3.test.invalid:$PORT/kiln-in/jobs/kiln-"
expect_contains "default TTL: SageMaker's longest" "$T/dry" "X-Amzn-SageMaker-RequestTTLSeconds: 21600"
finish
