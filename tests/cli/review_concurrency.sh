# kiln review's catalog connections (lib/review/pool.c): a decision waiting for the catalog's
# write lock (held here by another connection, as another kiln process would) does not hold up
# what other requests read: they answer from the read-only connections meanwhile, and the
# decision lands once the lock is free. After a moment without decisions the server checkpoints
# the WAL itself (its writer never checkpoints inside a request): the rows are then in the
# database file proper.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/review_common.inc"
owls "$T/p"
"$KILN" -C "$T/p" plan -q >/dev/null && "$KILN" -C "$T/p" render -q >/dev/null 2>&1
expect_eq "owls rendered" $? 0
start_review "$T/p"
py_check readers "$KILN_SRC/tests/cli" "$T/p/.kiln/catalog.db" <<'PY'
import sqlite3, sys, threading, time
sys.path.insert(0, sys.argv[3])
from review_client import Client
port, token, db = int(sys.argv[1]), sys.argv[2], sys.argv[4]
o = Client(port, token); o.login()
# a second session, made before: a login writes its session to the catalog (a write, which
# waits for the lock like a decision); the reads below use it
r = Client(port, token); r.login()
# another writer holds the catalog: the decision below waits for it (SQLite's busy timeout)
w = sqlite3.connect(db, isolation_level=None, timeout=1)
w.execute("BEGIN IMMEDIATE")
answer = {}
def decide():
    answer["r"] = o.post("/api/tokens/4/decision", {"action": "approve"})
th = threading.Thread(target=decide)
th.start()
time.sleep(0.5)
assert th.is_alive(), "the decision did not wait for the write lock"
# meanwhile the reads answer (a client with a short timeout: they must not queue behind it)
import http.client
def quick(path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
    c.request("GET", path, headers={"Host": r.host, "Cookie": r.cookie})
    resp = c.getresponse()
    body = resp.read()
    c.close()
    assert resp.status == 200, (path, resp.status, body[:200])
for path in ("/api/session", "/api/tokens/5", "/api/tokens?limit=5", "/api/rarity",
             "/api/conflicts"):
    quick(path)
assert th.is_alive(), "the decision should still wait"
w.execute("ROLLBACK")
w.close()
th.join(20)
assert not th.is_alive() and answer["r"]["review"]["status"] == "approved", answer
for k in (6, 7, 8):
    o.post("/api/tokens/%d/decision" % k, {"action": "reject"})
# idle: the server checkpoints; a reader of the main file alone (immutable: no WAL) sees them
deadline = time.time() + 15
n = -1
while time.time() < deadline:
    m = sqlite3.connect("file:%s?immutable=1" % db, uri=True)
    n = m.execute("SELECT count(*) FROM review_log").fetchone()[0]
    m.close()
    if n == 4:
        break
    time.sleep(0.3)
assert n == 4, "the WAL was not checkpointed while idle: %d rows in the file" % n
PY
stop_review
"$KILN" -C "$T/p" review --log --json >"$T/log.json"
expect_eq "the log holds the 4 decisions" "$(wc -l <"$T/log.json")" 4
finish
