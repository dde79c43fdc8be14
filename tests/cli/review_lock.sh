# kiln review holds no long lock: while the server serves, `kiln render`, `kiln release` and
# `kiln review --add-reviewer` run (each takes the project lock for itself), and the server's
# decisions still land (and the new reviewer's token works at once).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/review_common.inc"
owls "$T/p"
"$KILN" -C "$T/p" plan -q >/dev/null && "$KILN" -C "$T/p" render -q >/dev/null 2>&1
expect_eq "owls rendered" $? 0
start_review "$T/p"
"$KILN" -C "$T/p" render -q 2>"$T/render.err"
expect_eq "kiln render while the server runs" $? 0
"$KILN" -C "$T/p" release -q 2>"$T/release.err"
expect_eq "kiln release while the server runs" $? 0
[ -d "$T/p/dist" ] && ok || fail "no dist/ after the release: $(cat "$T/release.err")"
"$KILN" -C "$T/p" review --add-reviewer bo --listen "127.0.0.1:$PORT" >"$T/bo.out" 2>"$T/bo.err"
expect_eq "--add-reviewer while the server runs" $? 0
BO=$(sed -n 's/^bo: .*token=//p' "$T/bo.out")
py_check decide "$KILN_SRC/tests/cli" "$BO" <<'PY'
import sys
sys.path.insert(0, sys.argv[3])
from review_client import Client
port, token, bo = int(sys.argv[1]), sys.argv[2], sys.argv[4]
o = Client(port, token); o.login()
r = o.post("/api/tokens/2/decision", {"action": "approve"})
assert r["review"]["status"] == "approved", r
b = Client(port, bo); b.login()
assert b.get("/api/session")["reviewer"] == "bo"
r = b.post("/api/tokens/2/decision", {"action": "reject"})
assert r["review"]["conflict"] is True, r
PY
"$KILN" -C "$T/p" render -q 2>"$T/render2.err"
expect_eq "kiln render after decisions, the server still running" $? 0
stop_review
expect_eq "the log has both decisions" "$("$KILN" -C "$T/p" review --log --json | wc -l)" 2
finish
