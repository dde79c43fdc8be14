#!/bin/sh
# bench/dispatch: kiln's dispatcher against N test servers with a fixed GPU latency (issue 5).
#
#   sh bench/dispatch/run.sh [-n JOBS] [-f FAULT_RATE] [-s SERVERS] [-l LATENCY_MS]
#                            [-p a1111|comfyui|sdcpp|sagemaker] [-b BIG_JOBS] [-q] [KILN]
#
# With neither -n nor -f it runs the issue's three cases in one go: 2,000 jobs; 2,000 jobs with
# 10% of job requests failing (500, two thirds) or hanging (a third, cut by a 2 s timeout);
# and BIG_JOBS (20,000) jobs, whose peak RSS is compared with the 2,000-job run's ("flat").
# -q leaves the big run out. -n/-f run one case.
#
# Each case starts SERVERS sd_test_server.py processes (one job at a time each, --latency-ms;
# an A1111 job takes the latency from its request's arrival to its answer, the server's own
# parsing and rendering inside it), makes a project of JOBS generated items (64x64 images, so
# that image work stays small next to dispatch) with one endpoint per server, and runs
# `kiln render` under GNU time. Printed, with the load averages before and after (2 cores,
# shared: read every figure beside them):
#   wall against the ideal JOBS x LATENCY / SERVERS (every server busy all the time);
#   kiln's CPU per job (user+sys of the kiln process and its threads only) and peak RSS;
#   the servers' CPU (from /proc, before they are stopped), so the reader sees where the
#   machine's time went;
#   where each endpoint's wall time went (report.py, from the servers' request records):
#   start-up, the latency, the server's time beyond it, the turnaround from one answer to the
#   next request (kiln's work, the network, the server reading), failed requests, retry
#   waits, the tail. -p comfyui|sdcpp (polled protocols) prints kiln's view instead.
# Targets (issue 5) are printed beside the figures; nothing is asserted (design.md §6).
# KILN_BENCH_KEEP=1 keeps the scratch folder; KILN_BENCH_WRAP="perf record -g -o F" runs kiln
# under a profiler (its figures then include the profiler's cost).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
JOBS= N=8 LAT=100 FAULT= PROTO=a1111 BIG=20000 QUICK=0
while getopts n:f:s:l:p:b:qh opt; do
	case $opt in
	n) JOBS=$OPTARG ;;
	f) FAULT=$OPTARG ;;
	s) N=$OPTARG ;;
	l) LAT=$OPTARG ;;
	p) PROTO=$OPTARG ;;
	b) BIG=$OPTARG ;;
	q) QUICK=1 ;;
	*) sed -n '2,9p' "$0"; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
KILN=${1:-$SRC/build/kiln}
[ -x "$KILN" ] || { echo "bench/dispatch: no kiln at $KILN: build it first" >&2; exit 2; }
KILN=$(cd "$(dirname "$KILN")" && pwd)/$(basename "$KILN")
W=$(mktemp -d /tmp/kiln-bench-dispatch.XXXXXX)
PIDS=
stop_servers() { for p in $PIDS; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; PIDS=; }
cleanup() { stop_servers; if [ -n "${KILN_BENCH_KEEP:-}" ]; then echo "kept $W"; else rm -rf "$W"; fi; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# one case: $1 jobs, $2 fault rate, $3 label; appends a line to $W/summary
run_case() {
	jobs=$1 fault=$2 label=$3 d=$W/$3
	mkdir -p "$d"
	fail=$(python3 -c "print($fault * 2 / 3)")
	hang=$(python3 -c "print($fault / 3)")
	eps=
	for i in $(seq "$N"); do
		python3 "$SRC/tests/sdserver/sd_test_server.py" --port 0 --protocol "$PROTO" \
			--latency-ms "$LAT" --fail-rate "$fail" --hang-rate "$hang" --fault-scope jobs \
			--seed "$i" --max-records $((jobs * 6 / N + 1000)) --max-record-body 4096 \
			>"$d/s$i.out" 2>"$d/s$i.err" &
		PIDS="$PIDS $!"
		echo "$!" >"$d/s$i.pid"
	done
	for i in $(seq "$N"); do
		for _ in $(seq 300); do grep -q LISTENING "$d/s$i.out" && break; sleep 0.1; done
		grep -q LISTENING "$d/s$i.out" || { echo "server $i did not start" >&2; cat "$d/s$i.err" >&2; exit 1; }
		eps="$eps    - {url: \"http://$(sed -n 's/^LISTENING //p' "$d/s$i.out")\", timeout: 2}
"
	done
	python3 - "$d/kiln.yaml" "$jobs" "$PROTO" "$eps" <<'PY'
import sys
path, jobs, proto, eps = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
layers = "".join(
    f"  - name: L{l}\n    traits:\n" +
    "".join(f"      - {{name: T{t}, prompt: \"l{l} t{t}\"}}\n" for t in range(16))
    for l in range(4))
wf = "  workflow: workflow.json\n" if proto == "comfyui" else ""
open(path, "w").write(f"""collection: {{name: Bench, size: {jobs}, seed: 1}}
image: {{width: 64, height: 64}}
engine: {proto}
generate:
  prompt: "bench {{L0}}, {{L1}}, {{L2}}, {{L3}}"
  size: 64x64
  retries: 20
{wf}  endpoints:
{eps}layers:
{layers}""")
PY
	[ "$PROTO" = comfyui ] && cp "$SRC/examples/ai-owls/owl_workflow.json" "$d/workflow.json"
	"$KILN" -C "$d" plan -q || exit 1
	load0=$(uptime)
	t0=$(date +%s.%N)
	/usr/bin/time -f "%e %U %S %M" -o "$d/time" ${KILN_BENCH_WRAP:-} "$KILN" -C "$d" render -q
	rc=$?
	t1=$(date +%s.%N)
	load1=$(uptime)
	python3 "$HERE/report.py" --dir "$d" --servers "$N" --jobs "$jobs" --latency "$LAT" \
		--fault "$fault" --exit "$rc" --t0 "$t0" --t1 "$t1" --label "$label" \
		--proto "$PROTO" --load0 "$load0" --load1 "$load1" --summary "$W/summary"
	stop_servers
}

# SageMaker (-p sagemaker): one test SageMaker endpoint + S3 (tests/cloud/sagemaker_server.py,
# every signature checked) running each invocation LATENCY ms after it is accepted, as many at
# once as kiln keeps in flight (-s: the endpoint's concurrency, its instances); kiln uploads,
# invokes and polls S3. Ideal: JOBS x LATENCY / concurrency. Also printed: HTTP requests per
# job (upload, invocation, polls) and the GPU seconds kiln measured against the server's.
run_sm_case() {
	jobs=$1 label=$2 d=$W/$2
	mkdir -p "$d"
	python3 "$SRC/tests/cloud/sagemaker_server.py" --port 0 --delay-ms "$LAT" \
		>"$d/sm.out" 2>"$d/sm.err" &
	PIDS="$PIDS $!"
	for _ in $(seq 300); do grep -q LISTENING "$d/sm.out" && break; sleep 0.1; done
	u=http://$(sed -n 's/^LISTENING //p' "$d/sm.out")
	python3 - "$d/kiln.yaml" "$jobs" "$u" "$N" <<'PY'
import sys
path, jobs, u, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
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
    - {{platform: sagemaker, region: us-east-1, endpoint_name: sd-async,
       input_location: "s3://kiln-in/bench/", access_key_env: KILN_BENCH_AK,
       secret_key_env: KILN_BENCH_SK, base_url: "{u}", s3_base_url: "{u}",
       concurrency: {n}, timeout: 60}}
layers:
{layers}""")
PY
	"$KILN" -C "$d" plan -q || exit 1
	load0=$(uptime)
	t0=$(date +%s.%N)
	KILN_BENCH_AK=AKIDKILNTEST KILN_BENCH_SK='kiln/test+secret/key' /usr/bin/time \
		-f "%e %U %S %M" -o "$d/time" ${KILN_BENCH_WRAP:-} "$KILN" -C "$d" render -q
	rc=$?
	t1=$(date +%s.%N)
	load1=$(uptime)
	curl -s "$u/__test__/stats" >"$d/stats.json"
	python3 - "$d" "$jobs" "$LAT" "$N" "$rc" "$label" "$load0" "$load1" "$W/summary" <<'PY'
import json, re, sqlite3, sys
d, jobs, lat, n, rc, label, l0, l1, summ = sys.argv[1:10]
jobs, lat, n = int(jobs), float(lat), int(n)
wall, user, sys_, rss = open(d + "/time").read().split()[-4:]
st = json.load(open(d + "/stats.json"))
db = sqlite3.connect(d + "/.kiln/catalog.db")
done = db.execute("select count(*) from items where status='rendered'").fetchone()[0]
ideal = jobs * lat / 1000 / n
la = lambda s: re.search(r"load average: ([\d.]+)", s).group(1)
r = {"label": label, "jobs": jobs, "fault": 0.0, "ratio": float(wall) / ideal,
     "cpu_ms": (float(user) + float(sys_)) * 1000 / jobs, "rss_mib": int(rss) / 1024,
     "rendered": done, "load": f"{la(l0)}->{la(l1)}"}
print(f"sagemaker: {jobs} jobs, concurrency {n}, {lat:.0f} ms a job: wall {float(wall):.2f} s "
      f"= {r['ratio']:.3f} x ideal {ideal:.2f} s; kiln CPU {r['cpu_ms']:.2f} ms/job; peak RSS "
      f"{r['rss_mib']:.1f} MiB; {st['requests'] / jobs:.2f} requests/job (PUT "
      f"{st['puts'] / jobs:.2f}, invoke {st['invocations'] / jobs:.2f}, GET {st['gets'] / jobs:.2f}"
      f", of which 404 {st['gets_404'] / jobs:.2f}); bad signatures {st['bad_signatures']}; "
      f"done {done}/{jobs}; exit {rc}; load {r['load']}")
open(summ, "a").write(json.dumps(r) + "\n")
PY
	stop_servers
}

if [ "$PROTO" = sagemaker ]; then
	[ "$N" = 8 ] && N=50
	[ "$LAT" = 100 ] && LAT=2000
	run_sm_case "${JOBS:-1000}" sagemaker
elif [ -n "$JOBS$FAULT" ]; then
	run_case "${JOBS:-2000}" "${FAULT:-0}" custom
else
	run_case 2000 0 base
	run_case 2000 0.1 faults
	[ "$QUICK" = 1 ] || run_case "$BIG" 0 big
fi
python3 - "$W/summary" <<'PY'
import sys, json
rows = [json.loads(l) for l in open(sys.argv[1])]
print("\nsummary (issue 5 targets: wall <= 1.05 x ideal, CPU < 2 ms/job, RSS < 100 MiB and flat,")
print("every job completes with 10% faults)")
for r in rows:
    print(f"  {r['label']:7} jobs {r['jobs']:6}  faults {r['fault']:4.0%}  wall/ideal {r['ratio']:.3f}  "
          f"cpu {r['cpu_ms']:.3f} ms/job  RSS {r['rss_mib']:.1f} MiB  done {r['rendered']}/{r['jobs']}"
          f"  load {r['load']}")
by = {r["label"]: r for r in rows}
if "base" in by and "big" in by:
    print(f"  RSS at {by['big']['jobs']} jobs / at {by['base']['jobs']}: "
          f"{by['big']['rss_mib'] / by['base']['rss_mib']:.2f}")
PY
