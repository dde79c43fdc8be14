# kill -9 of `kiln review` in the middle of a session, with decisions in flight from parallel
# clients (three reviewers, cookies and bearer tokens): every decision that was answered 200 is
# in review_log as answered (id, reviewer, token, action), nothing was half written (the catalog
# passes integrity_check, each state row agrees with the log's decisions per token), the log
# command reads it all, and a restarted server serves the same states.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/review_common.inc"
owls "$T/p"
"$KILN" -C "$T/p" plan -q >/dev/null && "$KILN" -C "$T/p" render -q >/dev/null 2>&1
expect_eq "owls rendered" $? 0
for n in ana bo; do
	"$KILN" -C "$T/p" review --add-reviewer $n >"$T/$n.out" 2>/dev/null
done
ANA=$(sed -n 's/^ana: .*token=//p' "$T/ana.out")
BO=$(sed -n 's/^bo: .*token=//p' "$T/bo.out")
start_review "$T/p"
py_check inflight "$KILN_SRC/tests/cli" "$T/answered.json" "$RPID" "$ANA" "$BO" <<'PY'
import json, os, random, signal, sys, threading, time
sys.path.insert(0, sys.argv[3])
from review_client import Client
port, token, out, pid = int(sys.argv[1]), sys.argv[2], sys.argv[4], int(sys.argv[5])
who = [("owner", token, True), ("ana", sys.argv[6], True), ("bo", sys.argv[7], False)]
answered, lock, errors = [], threading.Lock(), []
stop = threading.Event()
def worker(name, tok, cookie, seed):
    rnd = random.Random(seed)
    c = Client(port, tok)
    if cookie:
        c.login()
    else:
        c.cookie = None
    while not stop.is_set():
        item = rnd.randint(1, 60)
        act = rnd.choice(["approve", "reject", "pending", "approve", "note", "pick"])
        body = {"action": act}
        if act == "note":
            body["note"] = "n%d" % rnd.randint(0, 999)
        if act == "pick":
            body["candidate"] = 1
        h = {"Content-Type": "application/json"}
        if cookie:
            h["X-Kiln-CSRF"] = c.csrf
        else:
            h["Authorization"] = "Bearer " + tok
        try:
            st, _, data = c.raw("POST", "/api/tokens/%d/decision" % item, json.dumps(body), h)
        except Exception:
            return  # the server is gone
        if st != 200:
            errors.append((st, data[:200]))
            return
        r = json.loads(data)
        with lock:
            answered.append({"id": r["decision"], "reviewer": name, "item": item, "action": act,
                             "status": r["review"]["status"]})
threads = [threading.Thread(target=worker, args=(n, t, ck, i * 2 + k))
           for i, (n, t, ck) in enumerate(who) for k in range(2)]
for t in threads:
    t.start()
deadline = time.time() + 20
while time.time() < deadline and len(answered) < 150:
    time.sleep(0.01)
os.kill(pid, signal.SIGKILL)  # mid-session: requests in flight
for t in threads:
    t.join(30)
stop.set()
assert not errors, errors[:3]
assert len(answered) >= 150, "only %d decisions answered before the kill" % len(answered)
json.dump(answered, open(out, "w"))
PY
wait "$RPID" 2>/dev/null
RPID=
$PY - "$T/answered.json" "$T/p/.kiln/catalog.db" <<'PY' >"$T/check" 2>&1
import json, sqlite3, sys
answered = json.load(open(sys.argv[1]))
db = sqlite3.connect(sys.argv[2])
assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
log = {r[0]: r[1:] for r in db.execute("SELECT id, reviewer, item_id, action FROM review_log")}
for a in answered:
    assert log.get(a["id"]) == (a["reviewer"], a["item"], a["action"]), (a, log.get(a["id"]))
assert len(set(a["id"] for a in answered)) == len(answered), "two answers named one row"
# the state of each token is what its log says: the last decision that is not a note gives
# the status; approvals count the reviewers whose last vote approves
status_of = {"approve": "approved", "pick": "approved", "reject": "rejected", "pending": "pending"}
want = {}
for i, (who, item, act) in sorted(log.items()):
    w = want.setdefault(item, {"status": "pending", "votes": {}})
    if act == "note":
        continue
    w["status"] = status_of[act]
    w["votes"][who] = act
state = {r[0]: r[1:] for r in db.execute("SELECT item_id, status, approvals FROM review_state")}
for item, w in want.items():
    approvals = sum(1 for a in w["votes"].values() if a in ("approve", "pick"))
    assert state.get(item) == (w["status"], approvals), (item, state.get(item), w)
assert set(state) <= set(want), "a state row without a decision"
print("ok %d answered, %d rows" % (len(answered), len(log)))
PY
expect_contains "every answered decision is in the log, the state agrees with it" "$T/check" "ok "
tail -1 "$T/check"
"$KILN" -C "$T/p" review --log --json >"$T/log.json"
expect_eq "the log command reads every row" "$(wc -l <"$T/log.json")" "$($PY -c 'import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("select count(*) from review_log").fetchone()[0])' "$T/p/.kiln/catalog.db")"
# a restarted server serves the catalog's states
start_review "$T/p"
py_check restart "$KILN_SRC/tests/cli" "$T/p/.kiln/catalog.db" <<'PY'
import sqlite3, sys
sys.path.insert(0, sys.argv[3])
from review_client import Client
o = Client(int(sys.argv[1]), sys.argv[2]); o.login()
db = sqlite3.connect(sys.argv[4])
state = dict(db.execute("SELECT item_id, status FROM review_state"))
for t in o.get("/api/tokens?limit=10000")["tokens"]:
    assert t["status"] == state.get(t["id"], "pending"), (t["id"], t["status"], state.get(t["id"]))
PY
stop_review
finish
