# kiln review's decisions end to end through the JSON API: approve, reject, note, undo (one
# decision, then a whole bulk group), filters, two reviewers disagreeing (a conflict in
# /api/conflicts and `kiln status`), the log (`kiln review --log --json`), `kiln ls --json`'s
# review object, `kiln show`; the gate (review.required, approvals: 2) in `kiln release`, and
# --allow-unreviewed recorded; kill -9 mid-session loses nothing that was answered.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/review_common.inc"
owls "$T/p"
printf 'review: {required: true, approvals: 2}\n' >>"$T/p/kiln.yaml"
"$KILN" -C "$T/p" plan -q >/dev/null && "$KILN" -C "$T/p" render -q >/dev/null 2>&1
expect_eq "owls rendered" $? 0
"$KILN" -C "$T/p" review --add-reviewer ana --listen 127.0.0.1:0 >"$T/ana.out" 2>/dev/null
expect_eq "--add-reviewer" $? 0
ANA=$(sed -n 's/^ana: .*token=//p' "$T/ana.out")
expect_eq "ana's token" "$(printf %s "$ANA" | wc -c)" 64
"$KILN" -C "$T/p" review --add-reviewer ana >/dev/null 2>"$T/dup.err"
expect_eq "a reviewer's name is taken once" $? 1
expect_contains "the name is named" "$T/dup.err" "reviewer 'ana' already exists"
# the release is gated before anything is reviewed
"$KILN" -C "$T/p" release -q >/dev/null 2>"$T/gate.err"
expect_eq "release refused while tokens are pending" $? 1
expect_contains "the gate names pending tokens" "$T/gate.err" "60 pending (1, 2, 3"
expect_contains "the gate's hint" "$T/gate.err" "kiln review"
start_review "$T/p"
py_check decisions "$KILN_SRC/tests/cli" "$ANA" <<'PY'
import sys
sys.path.insert(0, sys.argv[3])
from review_client import Client
port, token, ana_token = int(sys.argv[1]), sys.argv[2], sys.argv[4]
o = Client(port, token); o.login()
a = Client(port, ana_token); a.login()
assert a.get("/api/session")["reviewer"] == "ana"
s = o.get("/api/session")
assert s["review_required"] is True and s["approvals"] == 2, s
# one decision: state, log row with the image it was about
t2 = o.get("/api/tokens/2")
r = o.post("/api/tokens/2/decision", {"action": "approve", "note": "crisp"})
assert r["review"]["status"] == "approved" and r["review"]["reviewers"] == ["owner"], r
d = o.get("/api/tokens/2")["decisions"]
assert len(d) == 1 and d[0]["image"] == t2["image"] and d[0]["note"] == "crisp", d
# undo: back to pending, the log keeps both rows
u = o.post("/api/undo", {})
assert u["undone"] == [r["decision"]], u
t = o.get("/api/tokens/2")
assert t["status"] == "pending" and t["decisions"][0]["undone"] is True, t
assert len(t["decisions"]) == 2 and t["decisions"][1]["action"] == "undo", t["decisions"]
# filters: trait (OR within a layer, AND across), status, rank range, offset/limit
all_ = o.get("/api/tokens?limit=10000")
assert all_["total"] == 60 and [x["id"] for x in all_["tokens"]] == sorted(x["id"] for x in all_["tokens"])
dusk = o.get("/api/tokens?trait=Background:Dusk")["total"]
dawn = o.get("/api/tokens?trait=Background:Dawn")["total"]
both = o.get("/api/tokens?trait=Background:Dusk&trait=Background:Dawn")["total"]
assert both == dusk + dawn and dusk and dawn, (dusk, dawn, both)
manual = [x for x in all_["tokens"] if x["traits"].get("Background") == "Dusk" and x["traits"].get("Hat") == "Cap"]
f = o.get("/api/tokens?trait=Background:Dusk&trait=Hat:Cap&limit=10000")
assert [x["id"] for x in f["tokens"]] == [x["id"] for x in manual], f
page = o.get("/api/tokens?offset=10&limit=5")
assert page["total"] == 60 and [x["id"] for x in page["tokens"]] == [x["id"] for x in all_["tokens"][10:15]]
ranks = o.get("/api/tokens?rank_min=5&rank_max=9&limit=10000")["tokens"]
assert all(5 <= x["rank"] <= 9 for x in ranks) and ranks
# a bulk decision: every Dusk token rejected in one group, undone at once
b = o.post("/api/bulk", {"filter": {"trait": "Background:Dusk"}, "action": "reject", "note": "dull"})
assert b["decided"] == dusk and b["group"], b
assert o.get("/api/tokens?status=rejected")["total"] == dusk
rar = {l["layer"]: {v["value"]: v for v in l["values"]} for l in o.get("/api/rarity")["layers"]}
assert rar["Background"]["Dusk"]["rejected"] == dusk == rar["Background"]["Dusk"]["planned"], rar
u = o.post("/api/undo", {})
assert len(u["undone"]) == dusk, u
assert o.get("/api/tokens?status=rejected")["total"] == 0
# two reviewers disagree on token 5: a conflict
o.post("/api/tokens/5/decision", {"action": "approve"})
a.post("/api/tokens/5/decision", {"action": "reject", "note": "eyes off"})
c = o.get("/api/conflicts")["tokens"]
assert [x["id"] for x in c] == [5] and len(c[0]["decisions"]) == 2, c
assert o.get("/api/tokens?status=conflict")["total"] == 1
assert o.get("/api/tokens?reviewer=ana")["total"] == 1
# ana changes her mind: two approvals, no conflict; ana's undo touches only hers
a.post("/api/tokens/5/decision", {"action": "approve"})
t = o.get("/api/tokens/5")
assert t["review"]["approvals"] == 2 and not t["review"]["conflict"], t["review"]
# both approve everything: bulk by each (the gate wants 2 approvals)
o.post("/api/bulk", {"filter": {}, "action": "approve"})
a.post("/api/bulk", {"filter": {"status": "approved"}, "action": "approve"})
assert o.get("/api/tokens?status=approved")["total"] == 60
# a note on its own: the status, the votes and the approvals stay; it needs a text
n = a.post("/api/tokens/5/decision", {"action": "note", "note": "check the beak"})
assert n["review"]["status"] == "approved" and n["review"]["approvals"] == 2, n
assert n["review"]["note"] == "check the beak" and sorted(n["review"]["reviewers"]) == ["ana", "owner"], n
assert o.get("/api/tokens/5")["decisions"][-1]["action"] == "note"
a.post("/api/tokens/5/decision", {"action": "note"}, want=400)
a.post("/api/tokens/5/decision", {"action": "note", "note": "x", "candidate": 1}, want=400)
assert o.get("/api/tokens?status=approved")["total"] == 60
print("ok")
PY
# kill -9 mid-session: every decision that was answered is in the log and the state
kill_review
"$KILN" -C "$T/p" review --log --json >"$T/log.json"
expect_eq "log lines" "$(wc -l <"$T/log.json")" "$(
	$PY -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from review_log").fetchone()[0])' "$T/p/.kiln/catalog.db")"
$PY - "$T/log.json" "$T/p/.kiln/catalog.db" <<'PY' >"$T/logcheck" 2>&1
import json, sqlite3, sys
log = [json.loads(l) for l in open(sys.argv[1])]
db = sqlite3.connect(sys.argv[2])
assert any(d["action"] == "undo" and d["undoes"] for d in log)
assert any(d["reviewer"] == "ana" and d["note"] == "eyes off" for d in log)
# the state agrees with the log: every token approved by owner and ana
rows = db.execute("select status, approvals from review_state").fetchall()
assert len(rows) == 60 and all(r == ("approved", 2) for r in rows), rows[:3]
# append-only: the triggers refuse an update and a delete
for sql in ["update review_log set note = 'x'", "delete from review_log"]:
    try:
        db.execute(sql)
        raise SystemExit("the log changed: " + sql)
    except sqlite3.DatabaseError as e:
        assert "append-only" in str(e), e
print("ok")
PY
expect_eq "log and catalog agree after kill -9" "$(tail -1 "$T/logcheck")" ok
"$KILN" -C "$T/p" ls --json | $PY -c 'import sys, json
r = [json.loads(l)["review"] for l in sys.stdin]
assert all(x["status"] == "approved" and sorted(x["reviewers"]) == ["ana", "owner"] for x in r), r[0]
print("ok")' >"$T/ls" 2>&1
expect_eq "ls --json review" "$(cat "$T/ls")" ok
"$KILN" -C "$T/p" show 5 >"$T/show"
expect_contains "show lists decisions" "$T/show" "ana reject: eyes off"
expect_contains "show lists a note" "$T/show" "ana note: check the beak"
"$KILN" -C "$T/p" review --log >"$T/log.txt"
expect_contains "the log prints a note" "$T/log.txt" "note       image"
"$KILN" -C "$T/p" status >"$T/status"
expect_contains "status counts" "$T/status" "review     60 approved, 0 rejected, 0 pending"
"$KILN" -C "$T/p" release -q >/dev/null 2>"$T/rel.err"
expect_eq "release once every token has 2 approvals" $? 0
# a token rejected again: the gate names it; --allow-unreviewed is recorded
start_review "$T/p"
py_check reject7 "$KILN_SRC/tests/cli" <<'PY'
import sys
sys.path.insert(0, sys.argv[3])
from review_client import Client
o = Client(int(sys.argv[1]), sys.argv[2]); o.login()
o.post("/api/tokens/7/decision", {"action": "reject"})
PY
stop_review
"$KILN" -C "$T/p" release -q --force >/dev/null 2>"$T/gate2.err"
expect_eq "release refused with a rejected token" $? 1
expect_contains "the rejected token is named" "$T/gate2.err" "1 rejected (7)"
"$KILN" -C "$T/p" release -q --force --allow-unreviewed >/dev/null 2>&1
expect_eq "--allow-unreviewed releases" $? 0
n=$($PY -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from events where kind = '"'review_override'"'").fetchone()[0])' "$T/p/.kiln/catalog.db")
expect_eq "the override is an event" "$n" 1
finish
