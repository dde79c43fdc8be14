# The RunPod test server is checked against RunPod's own npm client (runpod-sdk, its baseUrl
# option): run, status, cancel, health and a refused key through the SDK (sdk_check.mjs).
set -u
D=$(cd "$(dirname "$0")" && pwd)
T=${KILN_TMP:-/tmp}/cloud.sdk.$$
mkdir -p "$T"
/usr/bin/python3 "$D/runpod_server.py" --port 0 --workers 1 --job-seconds 0.3 >"$T/out" 2>"$T/err" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
for _ in $(seq 100); do grep -q LISTENING "$T/out" 2>/dev/null && break; sleep 0.1; done
U=http://$(sed -n 's/^LISTENING //p' "$T/out")
cd "$D" && node sdk_check.mjs "$U" test-key
rc=$?
[ $rc = 0 ] && rm -rf "$T"
exit $rc
