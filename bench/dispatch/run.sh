#!/bin/sh
# bench/dispatch: kiln's dispatcher against N test servers with a fixed GPU latency.
#
#   sh bench/dispatch/run.sh [KILN] [JOBS] [SERVERS] [LATENCY_MS] [FAULT_RATE]
#
# Starts SERVERS sd_test_server.py processes (A1111 protocol, --latency-ms LATENCY_MS), makes a
# project of JOBS generated items (64x64 images, so that image checking stays small next to
# dispatch) with one endpoint per server, and times `kiln render`. Prints wall time against the
# ideal (JOBS x LATENCY / SERVERS: every server busy all the time), kiln's CPU time per job and
# peak RSS (GNU time). FAULT_RATE > 0 makes that share of requests fail (500) or hang (a third
# of it), with a 2 s request timeout; every job must still complete. Asserts nothing.
set -u
KILN=${1:-build/kiln}
JOBS=${2:-2000}
N=${3:-8}
LAT=${4:-100}
FAULT=${5:-0}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
KILN=$(cd "$(dirname "$KILN")" && pwd)/$(basename "$KILN")
W=$(mktemp -d /tmp/kiln-bench-dispatch.XXXXXX)
PIDS=
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT INT TERM
FAIL=$(python3 -c "print($FAULT * 2 / 3)")
HANG=$(python3 -c "print($FAULT / 3)")
EPS=
for i in $(seq "$N"); do
	python3 "$SRC/tests/sdserver/sd_test_server.py" --port 0 --protocol a1111 --latency-ms "$LAT" \
		--fail-rate "$FAIL" --hang-rate "$HANG" --fault-scope jobs --seed "$i" \
		--max-records 1000 >"$W/s$i.out" 2>/dev/null &
	PIDS="$PIDS $!"
done
for i in $(seq "$N"); do
	for _ in $(seq 100); do grep -q LISTENING "$W/s$i.out" && break; sleep 0.1; done
	EPS="$EPS    - {url: \"http://$(sed -n 's/^LISTENING //p' "$W/s$i.out")\", timeout: 2}
"
done
python3 - "$W/kiln.yaml" "$JOBS" <<'PY'
import sys
path, jobs = sys.argv[1], int(sys.argv[2])
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
ENDPOINTS
layers:
{layers}""")
PY
python3 - "$W/kiln.yaml" "$EPS" <<'PY'
import sys
p = sys.argv[1]; s = open(p).read().replace("ENDPOINTS\n", sys.argv[2]); open(p, "w").write(s)
PY
"$KILN" -C "$W" plan -q || exit 1
/usr/bin/time -f "%e %U %S %M" -o "$W/time" "$KILN" -C "$W" render -q
rc=$?
read -r wall user sys rss <"$W/time"
python3 - "$wall" "$user" "$sys" "$rss" "$JOBS" "$N" "$LAT" "$FAULT" "$rc" "$W/.kiln/catalog.db" <<'PY'
import sys, sqlite3
wall, user, sysc, rss = map(float, sys.argv[1:5])
jobs, n, lat, fault, rc = int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7]), float(sys.argv[8]), int(sys.argv[9])
db = sqlite3.connect(sys.argv[10])
ok = db.execute("select count(*) from items where status = 'rendered'").fetchone()[0]
att = db.execute("select count(*) from renders").fetchone()[0]
ideal = jobs * lat / 1000 / n
print(f"jobs {jobs}  servers {n}  latency {lat:.0f} ms  faults {fault:.0%}  exit {rc}")
print(f"  wall      {wall:8.2f} s   ideal {ideal:.2f} s   ratio {wall / ideal:.3f}")
print(f"  cpu/job   {(user + sysc) * 1000 / jobs:8.3f} ms (user {user:.2f} s, sys {sysc:.2f} s)")
print(f"  peak RSS  {rss / 1024:8.1f} MiB")
print(f"  rendered  {ok}/{jobs}   attempts {att}")
PY
