#!/bin/sh
# bench/dispatch/cloud.sh: the cloud case (issue 16): JOBS jobs over one RunPod endpoint of the
# RunPod test server (tests/cloud/runpod_server.py) with WORKERS workers and jobs of SECONDS
# (+- JITTER), kiln keeping WORKERS jobs queued (concurrency).
#
#   sh bench/dispatch/cloud.sh [-n JOBS] [-w WORKERS] [-t SECONDS] [-j JITTER] [KILN]
#
# Defaults are the issue's: 5,000 jobs, 50 workers, 2 s jobs (jitter 0.1: +-10%). Printed:
# wall against the ideal JOBS x SECONDS / WORKERS (every worker busy all the time); kiln's CPU
# per job (user+sys of the kiln process and its threads) and peak RSS; /status polls per job
# (target < 3, adaptive polling) and every other request the server saw; the server's CPU;
# the load averages before and after (2 shared cores: read the figures beside them). Nothing
# is asserted (design.md §6).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
JOBS=5000 WK=50 SECS=2 JIT=0.1
while getopts n:w:t:j:h opt; do
	case $opt in
	n) JOBS=$OPTARG ;;
	w) WK=$OPTARG ;;
	t) SECS=$OPTARG ;;
	j) JIT=$OPTARG ;;
	*) sed -n '2,12p' "$0"; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
KILN=${1:-$SRC/build/kiln}
[ -x "$KILN" ] || { echo "bench/dispatch/cloud: no kiln at $KILN: build it first" >&2; exit 2; }
W=$(mktemp -d /tmp/kiln-bench-cloud.XXXXXX)
SPID=
cleanup() { [ -n "$SPID" ] && kill "$SPID" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
python3 "$SRC/tests/cloud/runpod_server.py" --port 0 --worker a1111 --workers "$WK" \
	--job-seconds "$SECS" --jitter "$JIT" >"$W/s.out" 2>"$W/s.err" &
SPID=$!
for _ in $(seq 300); do grep -q LISTENING "$W/s.out" && break; sleep 0.1; done
U=http://$(sed -n 's/^LISTENING //p' "$W/s.out")
python3 - "$W/kiln.yaml" "$JOBS" "$U" "$WK" <<'PY'
import sys
path, jobs, u, wk = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
layers = "".join(
    f"  - name: L{l}\n    traits:\n" +
    "".join(f"      - {{name: T{t}, prompt: \"l{l} t{t}\"}}\n" for t in range(16))
    for l in range(4))
open(path, "w").write(f"""collection: {{name: Bench, size: {jobs}, seed: 1}}
image: {{width: 64, height: 64}}
engine: a1111
generate:
  prompt: "bench {{L0}}, {{L1}}, {{L2}}, {{L3}}"
  size: 64x64
  retries: 20
  endpoints:
    - {{platform: runpod, endpoint_id: bench, worker: a1111, auth_env: RP_BENCH_KEY,
       base_url: "{u}", concurrency: {wk}, cost_per_hour: 0.69, timeout: 30}}
layers:
{layers}""")
PY
"$KILN" -C "$W" plan -q || exit 1
load0=$(uptime)
cpu0=$(awk '{print $14 + $15}' /proc/$SPID/stat)
t0=$(date +%s.%N)
RP_BENCH_KEY=test-key /usr/bin/time -f "%e %U %S %M" -o "$W/time" "$KILN" -C "$W" render -q
rc=$?
t1=$(date +%s.%N)
cpu1=$(awk '{print $14 + $15}' /proc/$SPID/stat)
load1=$(uptime)
curl -s "$U/__test__/stats" >"$W/stats"
python3 - "$W/time" "$W/stats" "$JOBS" "$WK" "$SECS" "$t0" "$t1" "$rc" "$cpu0" "$cpu1" \
	"$load0" "$load1" "$W/.kiln/catalog.db" <<'PY'
import json, os, sqlite3, sys
tf, sf, jobs, wk, secs, t0, t1, rc, c0, c1, l0, l1, db = sys.argv[1:]
jobs, wk, secs = int(jobs), int(wk), float(secs)
wall, user, sys_, rss = open(tf).read().split()[-4:]
st = json.load(open(sf))
done = sqlite3.connect(db).execute("select count(*) from items where status='rendered'").fetchone()[0]
spent = sqlite3.connect(db).execute("select sum(cost_usd) from renders").fetchone()[0] or 0
ideal = jobs * secs / wk
hz = os.sysconf("SC_CLK_TCK")
print(f"cloud case: {jobs} jobs, {wk} RunPod workers, {secs:g} s jobs, kiln concurrency {wk} (exit {rc})")
print(f"  wall {float(t1) - float(t0):.1f} s, ideal {ideal:.1f} s: {(float(t1) - float(t0)) / ideal:.3f} x ideal")
print(f"  kiln CPU {(float(user) + float(sys_)) * 1000 / jobs:.2f} ms/job, peak RSS {int(rss) / 1024:.1f} MiB (target < 100)")
print(f"  /status polls {st['status'] / jobs:.2f} per job (target < 3, max {st['polls_max']}); "
      f"/run {st['run']}, /health {st['health']}, 429 {st['run_429']}")
print(f"  server CPU {(int(c1) - int(c0)) / hz * 1000 / jobs:.2f} ms/job; rendered {done}/{jobs}; "
      f"spent ${spent:.2f} at $0.69/h")
print(f"  load before: {l0.split('average:')[1].strip()}  after: {l1.split('average:')[1].strip()}")
PY
