# One run over two self-hosted A1111 servers (the SD test server) and one RunPod endpoint:
# every item once, the RunPod endpoint's images its own /run submissions, and the jobs shared
# by throughput (4 RunPod workers of 0.2 s against servers of one 0.2 s job at a time).
# Then one run over a self-hosted server, a RunPod endpoint and a SageMaker one
# (tests/cloud/sagemaker_server.py): every item once, and each cloud attempt priced at its
# platform's GPU seconds (RunPod's executionTime, SageMaker's 202-to-output time).
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
# self-hosted + RunPod + SageMaker in one run
so=$T/sm
$PY "$KILN_SRC/tests/cloud/sagemaker_server.py" --port 0 --delay-ms 200 >"$so.out" 2>"$so.err" &
RP_PIDS="$RP_PIDS $!"
for _ in $(seq 100); do grep -q LISTENING "$so.out" 2>/dev/null && break; sleep 0.1; done
SU=http://$(sed -n 's/^LISTENING //p' "$so.out")
[ "$SU" != "http://" ] || { cat "$so.err"; fail "sagemaker server did not start"; }
export KILN_AWS_KEY=AKIDKILNTEST KILN_AWS_SECRET='kiln/test+secret/key'
start_runpod --worker a1111 --workers 2 --job-seconds 0.2
P=$T/p3
DB=$P/.kiln/catalog.db
rp_owls "$P" a1111 2
$PY - "$P/kiln.yaml" "$U1" "$SU" <<'PY'
import sys
p, u1, su = sys.argv[1:]
s = open(p).read()
s = s.replace("  endpoints:\n", "  endpoints:\n    - {url: \"%s\", concurrency: 1, timeout: 5}\n"
              "    - {platform: sagemaker, region: us-east-1, endpoint_name: sd-async, "
              "input_location: \"s3://kiln-in/jobs/\", access_key_env: KILN_AWS_KEY, "
              "secret_key_env: KILN_AWS_SECRET, base_url: \"%s\", s3_base_url: \"%s\", "
              "concurrency: 2, cost_per_hour: 1.8, timeout: 30}\n" % (u1, su, su), 1)
open(p, "w").write(s)
PY
"$KILN" -C "$P" plan -q || fail plan3
"$KILN" -C "$P" render -q 2>"$T/err3"
expect_eq "three platforms: exit" $? 0
expect_eq "three platforms: rendered" "$(sqlite3 "$DB" "select count(*) from items where status='rendered'")" 60
expect_eq "three platforms: one attempt per item" "$(sqlite3 "$DB" "select count(*) from renders where engine != 'file'")" 59
sm=$(sqlite3 "$DB" "select count(*) from renders where engine='sagemaker' and status='ok'")
rp=$(sqlite3 "$DB" "select count(*) from renders where engine='runpod' and status='ok'")
a1=$(sqlite3 "$DB" "select count(*) from renders where endpoint='$U1' and status='ok'")
expect_eq "three platforms: RunPod's images are its /run jobs" "$(rp_field run)" "$rp"
curl -s "$SU/__test__/stats" | $PY -c "import json, sys
s = json.load(sys.stdin)
print('invoked', len(s['invoked']), 'twice', sum(v != 1 for v in s['invoked'].values()))" >"$T/sm3"
expect_contains "three platforms: SageMaker's images are its invocations" "$T/sm3" "invoked $sm twice 0"
$PY -c "
sm, rp, a1 = $sm, $rp, $a1
assert sm + rp + a1 == 59 and min(sm, rp, a1) >= 3, (sm, rp, a1)
print('ok')" >"$T/share3" 2>&1
expect_contains "three platforms: every endpoint took its share" "$T/share3" ok
# SageMaker: priced at its GPU seconds (the invocation's 202 to its output), each > 0 and
# inside the attempt's wall time; RunPod at its executionTime; the unpriced server at nothing
$PY - "$DB" "$U1" "$(rp_exec_ms)" >"$T/cost3" 2>&1 <<'PY'
import sqlite3, sys
db, u1, exec_ms = sys.argv[1], sys.argv[2], float(sys.argv[3])
db = sqlite3.connect(db)
rows = db.execute("select gpu_seconds, cost_usd, finished_at - started_at from renders "
                  "where engine='sagemaker'").fetchall()
assert rows
for g, c, wall in rows:
    assert g and 0.15 < g <= wall + 1e-6, (g, wall)
    assert abs(c - g * 1.8 / 3600) < 1e-12, (g, c)
g, c = db.execute("select sum(gpu_seconds), sum(cost_usd) from renders "
                  "where engine='runpod'").fetchone()
assert abs(g - exec_ms / 1000) < 1e-6 and abs(c - g * 0.36 / 3600) < 1e-9, (g, c, exec_ms)
assert db.execute("select sum(cost_usd) from renders where endpoint=?", (u1,)).fetchone()[0] is None
print("ok")
PY
expect_contains "three platforms: each priced at its GPU seconds" "$T/cost3" ok
"$KILN" -C "$P" status >"$T/status3" 2>&1
expect_contains "three platforms: status names the SageMaker endpoint" "$T/status3" "$SU/endpoints/sd-async"
finish
