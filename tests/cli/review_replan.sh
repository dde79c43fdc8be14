# kiln plan while kiln review serves (it holds no project lock): removed tokens, added tokens and
# a token given new traits (--replace). The server catches up through GET /api/changes; a
# decision on a token a new plan removed, sent before the page polled (its cache still has the
# token), is refused with 409 {"hint": "replanned"} and nothing recorded, and the cache is then
# the catalog's (404 for it, gone from the grid); every decision answered 200 is in the log.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/review_common.inc"
owls "$T/p"
"$KILN" -C "$T/p" plan -q >/dev/null && "$KILN" -C "$T/p" render -q >/dev/null 2>&1
expect_eq "owls rendered" $? 0
size() { sed -i "s/size: [0-9]*,/size: $1,/" "$T/p/kiln.yaml"; }
start_review "$T/p"
fifo=$T/steps
mkfifo "$fifo" "$fifo.ack"
# the python side drives; the shell re-plans when it asks (a line on the fifo)
(
	while read -r step <"$fifo"; do
		case $step in
		shrink) size 50 && "$KILN" -C "$T/p" plan -q ;;
		grow) size 56 && "$KILN" -C "$T/p" plan -q ;;
		replace) "$KILN" -C "$T/p" plan -q --replace 3 >"$T/replace.out" ;;
		done) break ;;
		esac
		echo $? >"$fifo.ack"
	done
) &
planner=$!
py_check replan "$KILN_SRC/tests/cli" "$fifo" <<'PY'
import sys
sys.path.insert(0, sys.argv[3])
from review_client import Client
port, token, fifo = int(sys.argv[1]), sys.argv[2], sys.argv[4]
def step(s):
    open(fifo, "w").write(s + "\n")
    rc = open(fifo + ".ack").read().strip()
    assert rc == "0", (s, rc)
import atexit
atexit.register(lambda: open(fifo, "w").write("done\n"))
o = Client(port, token); o.login()
def ids():
    t = o.get("/api/tokens?limit=1000")
    assert t["total"] == len(t["tokens"]), t["total"]
    return {x["id"]: x for x in t["tokens"]}
v0 = o.get("/api/changes")["version"]
assert sorted(ids()) == list(range(1, 61))
ok = 0
for k in (3, 20, 55):
    assert o.post("/api/tokens/%d/decision" % k, {"action": "approve"})["review"]["status"] == "approved"
    ok += 1
o.get("/api/tokens/58")
# 60 -> 50 tokens while the server runs
step("shrink")
# the cache still has 51..60: a decision on one is refused, nothing recorded
st, _, body = o.raw("POST", "/api/tokens/57/decision", '{"action": "reject"}',
                    {"Content-Type": "application/json", "X-Kiln-CSRF": o.csrf})
import json
assert st == 409, (st, body)
b = json.loads(body)
assert b["hint"] == "replanned" and "57" in b["error"] and "no longer" in b["error"], b
# and the cache caught up at once: 404, not in the grid
o.get("/api/tokens/57", want=404)
o.get("/api/tokens/58", want=404)
o.post("/api/tokens/59/decision", {"action": "approve"}, want=404)
assert sorted(ids()) == list(range(1, 51))
v1 = o.get("/api/changes?since=%d" % v0)
assert v1["changed"] and v1["version"] > v0, v1
# the token kept keeps its decision
assert o.get("/api/tokens/20")["review"]["status"] == "approved"
# a bulk decision built on a stale cache: refused whole, nothing recorded
step("grow")
o.get("/api/changes")
assert sorted(ids()) == list(range(1, 57))
step("shrink")
st, _, body = o.raw("POST", "/api/bulk", '{"action": "reject", "filter": {}}',
                    {"Content-Type": "application/json", "X-Kiln-CSRF": o.csrf})
assert st in (200, 409), (st, body)
if st == 200:   # the cache had caught up before (not expected: no poll between)
    raise AssertionError("bulk on a stale cache answered 200: %s" % body[:200])
assert json.loads(body)["hint"] == "replanned"
assert sorted(ids()) == list(range(1, 51))
# 50 -> 56: the new tokens appear pending (planned, no image yet)
step("grow")
assert o.get("/api/changes?since=%d" % v1["version"])["changed"]
g = ids()
assert sorted(g) == list(range(1, 57)), sorted(g)
# 55 too: it was approved, but that decision was on the token the shrink removed
for k in (51, 52, 53, 54, 55, 56):
    d = o.get("/api/tokens/%d" % k)
    assert d["review"]["status"] == "pending" and d["image"] is None, d
# a decision on a new token lands
assert o.post("/api/tokens/53/decision", {"action": "reject"})["review"]["status"] == "rejected"
ok += 1
# --replace 3: the page shows its new traits after the poll
before = o.get("/api/tokens/3")["traits"]
step("replace")
o.get("/api/changes")
after = o.get("/api/tokens/3")
assert after["traits"] != before, after
# token 3 was approved with its old traits: pending again, the reset says why
assert after["review"]["status"] == "pending", after["review"]
assert o.post("/api/tokens/4/decision", {"action": "approve"})["review"]["status"] == "approved"
ok += 1
print(ok)
PY
wait $planner
stop_review
# every decision answered 200 is in the log (55's too: the log keeps what was decided)
"$KILN" -C "$T/p" review --log --json >"$T/log.json"
expect_eq "the log holds the 5 decisions" "$(grep -vc '"reviewer":"kiln"' "$T/log.json")" 5
# and kiln's resets: the decisions on 55 and on each token --replace changed (3 and the tokens
# it swapped traits with) were made on tokens that are gone; nothing else is reset
changed=$(sed -n 's/.*tokens changed: //p' "$T/replace.out" | tr ' ' '\n' | sort -n | tr '\n' ' ')
want="55:removed by a new plan"
for k in $changed; do
	grep -q "\"item\":$k,.*\"action\":\"approve\|\"item\":$k,.*\"action\":\"reject" "$T/log.json" &&
		want="$want $k:new traits from a new plan"
done
got=$(python3 -c '
import json, sys
print(" ".join("%d:%s" % (r["item"], r["note"]) for r in map(json.loads, open(sys.argv[1]))
               if r["reviewer"] == "kiln" and r["action"] == "reset"))' "$T/log.json")
expect_eq "a reset for each token re-planned under its decisions" "$got" "$want"
expect_eq "the refused ones are not in it" "$(grep -c '"item":5[79],' "$T/log.json")" 0
finish
