# kiln review's sessions outlive the server: a reviewer's cookie (and its CSRF token) keeps
# working after `kiln review` restarts, after SIGTERM and after kill -9; the catalog keeps only
# the cookie's SHA-256; an expired session is refused (401) and purged from the catalog.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/review_common.inc"
owls "$T/p"
"$KILN" -C "$T/p" plan -q >/dev/null && "$KILN" -C "$T/p" render -q >/dev/null 2>&1
expect_eq "owls rendered" $? 0
DB="$T/p/.kiln/catalog.db"
start_review "$T/p"
py_check login "$KILN_SRC/tests/cli" "$T/session" <<'PY'
import sys
sys.path.insert(0, sys.argv[3])
from review_client import Client
o = Client(int(sys.argv[1]), sys.argv[2]); h = o.login()
assert "Max-Age=" in h["set-cookie"] and "HttpOnly" in h["set-cookie"], h["set-cookie"]
o.post("/api/tokens/1/decision", {"action": "approve"})
open(sys.argv[4], "w").write(o.cookie + "\n" + o.csrf + "\n")
PY
stop_review
# only the cookie's hash is in the catalog
$PY - "$T/session" "$DB" <<'PY' >"$T/hash.out" 2>&1
import hashlib, sqlite3, sys
cookie, csrf = open(sys.argv[1]).read().split()
value = cookie.split("=", 1)[1]
db = sqlite3.connect(sys.argv[2])
rows = db.execute("select id_sha256, reviewer, csrf from review_sessions").fetchall()
assert rows == [(hashlib.sha256(value.encode()).hexdigest(), "owner", csrf)], rows
dump = "\n".join(db.iterdump())
assert value not in dump, "the cookie itself is in the catalog"
print("ok")
PY
expect_eq "the catalog holds the session's hash, not the cookie" "$(tail -1 "$T/hash.out")" ok
# the same cookie after a restart (SIGTERM), then after kill -9: decisions answered 200
check_cookie() { # name token-id action
	py_check "$1" "$KILN_SRC/tests/cli" "$T/session" "$2" "$3" <<'PY'
import sys
sys.path.insert(0, sys.argv[3])
from review_client import Client
c = Client(int(sys.argv[1]))
c.cookie, c.csrf = open(sys.argv[4]).read().split()
assert c.get("/api/session")["reviewer"] == "owner"
r = c.post("/api/tokens/%s/decision" % sys.argv[5], {"action": sys.argv[6]})
assert r["review"]["status"] == {"approve": "approved", "reject": "rejected"}[sys.argv[6]], r
# a cookie the server never made: 401
bad = Client(int(sys.argv[1])); bad.cookie = "kiln_session=" + "0" * 64
bad.get("/api/session", want=401)
PY
}
start_review "$T/p"
check_cookie after_restart 2 reject
kill_review
start_review "$T/p"
check_cookie after_kill9 3 approve
stop_review
# an expired session: refused, and purged from the catalog
$PY -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1]); db.execute("update review_sessions set expires = 1000"); db.commit()' "$DB"
start_review "$T/p"
py_check expired "$KILN_SRC/tests/cli" "$T/session" <<'PY'
import sys
sys.path.insert(0, sys.argv[3])
from review_client import Client
c = Client(int(sys.argv[1]))
c.cookie, c.csrf = open(sys.argv[4]).read().split()
c.get("/api/session", want=401)
PY
expect_eq "expired sessions purged" "$($PY -c 'import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("select count(*) from review_sessions").fetchone()[0])' "$DB")" 0
stop_review
"$KILN" -C "$T/p" review --log --json >"$T/log.json"
expect_eq "the three decisions are in the log" "$(wc -l <"$T/log.json")" 3
finish
