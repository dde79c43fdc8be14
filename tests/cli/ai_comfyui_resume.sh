# AI engine comfyui: a prompt is never submitted twice. (1) The server queues every
# POST /prompt but the connection breaks before kiln reads the answer (half an answer, or
# none at all): kiln finds each job by its own prompt_id in /history or /queue instead of
# sending it again. (2) kill -9 right after a submission; the server finishes the job while
# kiln is down; the next run collects it from /history, and sends it no second time.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ai_common.inc"
start_server --protocol comfyui --latency-ms 20 --fault-scope jobs --drop-rate 0.5 --noreply-rate 0.5
# POST /prompt count per prompt_id, and executions per prompt_id, from the server's records
posts_per_id() {
	requests /prompt | $PY -c '
import sys, json, collections
c = collections.Counter(r["json"]["prompt_id"] for r in json.load(sys.stdin) if r["method"] == "POST")
print(len(c), max(c.values()) if c else 0)'
}
executions() {
	stats | $PY -c '
import sys, json
s = json.load(sys.stdin); ex = s["comfy_executions"]
print(len(ex), max(ex.values()) if ex else 0, s["faults"].get("drop", 0), s["faults"].get("noreply", 0))'
}

# (1) every submission's answer is lost
P=$T/p
ai_owls "$P" comfyui 's/, auth_env: KILN_GPU_AUTH//'
"$KILN" -C "$P" plan -q || fail plan
"$KILN" -C "$P" render -q 2>"$T/err1"
expect_eq "render with lost answers" $? 0
expect_eq "rendered" "$(sqlite3 "$P/.kiln/catalog.db" "select count(*) from items where status='rendered'")" 60
expect_eq "each prompt_id posted once" "$(posts_per_id)" "59 1"
set -- $(executions)
expect_eq "each prompt ran once" "$1 $2" "59 1"
expect_eq "every answer lost (half or none)" "$(($3 + $4))" 59
[ "$3" -gt 0 ] && [ "$4" -gt 0 ] && ok || fail "both faults dealt: drop $3, noreply $4"
expect_eq "nothing in flight" "$(sqlite3 "$P/.kiln/catalog.db" "select count(*) from ai_inflight")" 0

# (2) a job that finished while kiln was down
curl -s -XPOST "$U/__test__/reset" >/dev/null
config '{"drop_rate": 0, "noreply_rate": 0, "latency_ms": 1500}'
Q=$T/q
ai_owls "$Q" comfyui 's/, auth_env: KILN_GPU_AUTH//'
"$KILN" -C "$Q" plan -q || fail plan
"$KILN" -C "$Q" render -q 2>/dev/null &
pid=$!
for _ in $(seq 100); do
	[ "$(posts_per_id)" = "1 1" ] && break
	sleep 0.1
done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
first=$(requests /prompt | $PY -c 'import sys, json; print([r["json"]["prompt_id"] for r in json.load(sys.stdin) if r["method"] == "POST"][0])')
expect_eq "the submitted prompt_id was recorded before the POST" \
	"$(sqlite3 "$Q/.kiln/catalog.db" "select remote_id from ai_inflight")" "$first"
for _ in $(seq 100); do
	[ "$(stats | $PY -c 'import sys, json; print(json.load(sys.stdin)["jobs_done"])')" = 1 ] && break
	sleep 0.1
done
expect_eq "the server finished it while kiln was down" \
	"$(stats | $PY -c 'import sys, json; print(json.load(sys.stdin)["jobs_done"])')" 1
config '{"latency_ms": 0}'
"$KILN" -C "$Q" render -q
expect_eq "render after kill -9" $? 0
expect_eq "all rendered" "$(sqlite3 "$Q/.kiln/catalog.db" "select count(*) from items where status='rendered'")" 60
expect_eq "each prompt_id posted once" "$(posts_per_id)" "59 1"
set -- $(executions)
expect_eq "each prompt ran once" "$1 $2" "59 1"
expect_eq "the finished job collected" \
	"$(sqlite3 "$Q/.kiln/catalog.db" "select count(*) from ai_info where remote_id='$first'")" 1
requests "/history/$first" >"$T/hist"
expect_contains "looked up by its prompt_id" "$T/hist" "\"/history/$first\""
expect_eq "nothing in flight" "$(sqlite3 "$Q/.kiln/catalog.db" "select count(*) from ai_inflight")" 0
finish
