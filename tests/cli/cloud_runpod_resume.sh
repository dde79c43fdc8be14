# RunPod jobs survive kill -9 and SIGINT: a job whose id kiln stored is polled by the next
# run, never sent again (the server's /run submissions are counted); a kill during /run (the
# job queued, its answer not yet back) and an expired result are sent again; SIGINT cancels
# the jobs still IN_QUEUE (nothing spent on them) and lets the running ones finish. Every
# item ends with exactly one accepted image.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ai_common.inc"
. "$(dirname "$0")/cloud_common.inc"
P=$T/p
DB=$P/.kiln/catalog.db
start_runpod --worker a1111 --workers 4 --job-seconds 1.0
rp_owls "$P" a1111 4
"$KILN" -C "$P" plan -q || fail plan
wait_runs() { # N: until the server has N /run submissions
	for _ in $(seq 300); do [ "$(rp_field run)" -ge "$1" ] && return; sleep 0.05; done
}
once_each() { # every item rendered, one accepted render each of its current recipe
	expect_eq "$1: rendered" "$(sqlite3 "$DB" "select count(*) from items where status='rendered'")" 60
	expect_eq "$1: one accepted image per item" "$(sqlite3 "$DB" "select count(*) from (select r.item_id from renders r join items i on i.id = r.item_id and i.recipe = r.recipe where r.status='ok' group by r.item_id having count(*) > 1)")" 0
}
steps() { # a new recipe for every item: the next render has every job to do
	sed -i "s/^  steps: .*/  steps: $1/" "$P/kiln.yaml"
	"$KILN" -C "$P" plan -q || fail plan
}

# --- kill -9 while jobs are polled: the stored ids are polled again, not sent again ---------
"$KILN" -C "$P" render -q 2>"$T/err1" &
k=$!
wait_runs 10
sleep 0.3
kill -9 $k
wait $k 2>/dev/null
n1=$(rp_field run)
sqlite3 "$DB" "select seed from ai_inflight" | sort >"$T/stored"
[ -s "$T/stored" ] && ok || fail "no job id was stored before the kill"
"$KILN" -C "$P" render -q 2>"$T/err2"
expect_eq "after kill -9 while polling: exit" $? 0
once_each "kill while polling"
curl -s "$RU/__test__/runs" | $PY -c "
import sys, json
runs = json.load(sys.stdin)
stored = {int(l) for l in open('$T/stored')}
again = [r['input']['seed'] for r in runs[$n1:] if r['input']['seed'] in stored]
assert not again, again
print('ok', len(stored), len(runs) - $n1)" >"$T/check" 2>&1
expect_contains "no stored job sent twice" "$T/check" ok
expect_eq "no job left in flight" "$(sqlite3 "$DB" "select count(*) from ai_inflight")" 0

# --- kill -9 during /run: the job was queued but kiln never had its id: sent again ----------
rp_config '{"run_delay": 3}'
steps 21
before=$(rp_field run)
"$KILN" -C "$P" render -q 2>"$T/err3" &
k=$!
wait_runs $((before + 1))
sleep 0.2
kill -9 $k
wait $k 2>/dev/null
expect_eq "nothing stored during /run" "$(sqlite3 "$DB" "select count(*) from ai_inflight")" 0
rp_config '{"run_delay": 0}'
"$KILN" -C "$P" render -q 2>"$T/err4"
expect_eq "after kill -9 during /run: exit" $? 0
once_each "kill during /run"

# --- a result that expired while kiln was down: said so, and sent again --------------------
rp_config '{"job_seconds": 0.3}'
steps 22
before=$(rp_field run)
"$KILN" -C "$P" render -q 2>"$T/err5" &
k=$!
wait_runs $((before + 6))
kill -9 $k
wait $k 2>/dev/null
stored=$(sqlite3 "$DB" "select count(*) from ai_inflight")
[ "$stored" -gt 0 ] && ok || fail "no job stored before the kill"
sleep 1.5
rp_config '{"expire": 1}'
"$KILN" -C "$P" render -q 2>"$T/err6"
expect_eq "after expiry: exit" $? 0
sqlite3 "$DB" "select error from renders where status='failed'" >"$T/errs"
expect_contains "expiry said" "$T/errs" "its result expired (RunPod keeps a result 30 minutes after the job ends)"
once_each "after expiry"
rp_config '{"expire": 1800}'

# --- SIGINT: queued jobs cancelled, running ones collected, the rest left for the next run ---
rp_config '{"workers": 1, "job_seconds": 1.0}'
steps 23
before=$(rp_field run)
"$KILN" -C "$P" render -q 2>"$T/err7" &
k=$!
wait_runs $((before + 4))
sleep 0.5
kill -INT $k
wait $k
expect_eq "SIGINT: exit" $? 1
[ "$(rp_field cancel)" -ge 1 ] && ok || fail "no queued job was cancelled on SIGINT"
sqlite3 "$DB" "select error from renders where status='failed'" >"$T/errs"
expect_contains "cancel said" "$T/errs" "was cancelled while still queued: the run was stopped"
expect_eq "SIGINT: nothing left in flight" "$(sqlite3 "$DB" "select count(*) from ai_inflight")" 0
rp_config '{"workers": 4, "job_seconds": 0.1}'
"$KILN" -C "$P" render -q 2>"$T/err8"
expect_eq "after SIGINT: exit" $? 0
once_each "after SIGINT"
finish
