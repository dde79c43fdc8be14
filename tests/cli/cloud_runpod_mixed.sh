# One run over two self-hosted A1111 servers (the SD test server) and one RunPod endpoint:
# every item once, the RunPod endpoint's images its own /run submissions, and the jobs shared
# by throughput (4 RunPod workers of 0.2 s against servers of one 0.2 s job at a time).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ai_common.inc"
. "$(dirname "$0")/cloud_common.inc"
P=$T/p
DB=$P/.kiln/catalog.db
start_server --protocol a1111 --latency-ms 200
U1=$U
start_server --protocol a1111 --latency-ms 200
U2=$U
start_runpod --worker a1111 --workers 4 --job-seconds 0.2
rp_owls "$P" a1111 4
$PY - "$P/kiln.yaml" "$U1" "$U2" <<'PY'
import sys
p, u1, u2 = sys.argv[1:]
s = open(p).read()
s = s.replace("  endpoints:\n", "  endpoints:\n    - {url: \"%s\", concurrency: 1, timeout: 5}\n"
              "    - {url: \"%s\", concurrency: 1, timeout: 5, cost_per_hour: 0.5}\n" % (u1, u2), 1)
open(p, "w").write(s)
PY
"$KILN" -C "$P" plan -q || fail plan
"$KILN" -C "$P" render -q 2>"$T/err"
expect_eq "mixed: exit" $? 0
expect_eq "mixed: rendered" "$(sqlite3 "$DB" "select count(*) from items where status='rendered'")" 60
expect_eq "mixed: one attempt per item" "$(sqlite3 "$DB" "select count(*) from renders where engine != 'file'")" 59
rp=$(sqlite3 "$DB" "select count(*) from renders where engine='runpod' and status='ok'")
a1=$(sqlite3 "$DB" "select count(*) from renders where endpoint='$U1' and status='ok'")
a2=$(sqlite3 "$DB" "select count(*) from renders where endpoint='$U2' and status='ok'")
expect_eq "mixed: RunPod's images are its /run jobs" "$(rp_field run)" "$rp"
$PY -c "
rp, a1, a2 = $rp, $a1, $a2
assert rp + a1 + a2 == 59
assert a1 >= 3 and a2 >= 3, (rp, a1, a2)       # every endpoint took its share
assert rp >= 2 * max(a1, a2), (rp, a1, a2)      # 4 workers against one job at a time
print('ok', rp, a1, a2)" >"$T/share" 2>&1
expect_contains "mixed: shared by throughput" "$T/share" ok
# a priced self-hosted server is paid for its wall time; an unpriced one costs nothing
$PY - "$DB" "$U1" "$U2" >"$T/cost" 2>&1 <<'PY'
import sqlite3, sys
db, u1, u2 = sys.argv[1:]
db = sqlite3.connect(db)
c1 = db.execute("select sum(cost_usd) from renders where endpoint=?", (u1,)).fetchone()[0]
c2, wall = db.execute("select sum(cost_usd), sum(finished_at - started_at) from renders where endpoint=?", (u2,)).fetchone()
assert c1 is None, c1
assert abs(c2 - wall * 0.5 / 3600) < 1e-9, (c2, wall)
print("ok")
PY
expect_contains "mixed: self-hosted cost" "$T/cost" ok
finish
