# Review on an AI project rendered against the SD test server: picking a candidate sets the
# token's image (what the release ships); regenerate with a note added to the prompt sends a
# token back, the next `kiln render` renders only it, with new seeds past the first round's and
# the note in the prompt, traits kept; the new candidates come back pending beside the old
# ones (the log has the reset), the old images stay in the store; undoing a pick restores the
# image. "seed": "same" (token 7) renders again with the same seeds and the note at the end of
# the prompt. The legendary (a supplied file) is refused regeneration (409, hint artist_edit),
# and skipped by a bulk regenerate, which says how many.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ai_common.inc"
. "$(dirname "$0")/review_common.inc"
trap 'kill_review; stop_server' EXIT
start_server
P=$T/p
ai_owls "$P" a1111 's/candidates: 1 .*/candidates: 2/'
export KILN_GPU_AUTH=user:pass
"$KILN" -C "$P" plan -q >/dev/null && "$KILN" -C "$P" render -q 2>"$T/render.err"
expect_eq "first render" $? 0
n0=$(requests /sdapi/v1/txt2img | $PY -c 'import sys, json; print(len(json.load(sys.stdin)))')
start_review "$P"
py_check pick "$KILN_SRC/tests/cli" <<'PY'
import sys
sys.path.insert(0, sys.argv[3])
from review_client import Client
o = Client(int(sys.argv[1]), sys.argv[2]); o.login()
t = o.get("/api/tokens/3")
c = t["candidates"]
assert len(c) == 2 and c[0]["seed"] + 1 == c[1]["seed"], c
assert t["ai"]["prompt"].startswith("pixel art owl") and t["ai"]["sampler"] == "Euler a", t["ai"]
assert [x["regeneration"] for x in c] == [0, 0], c
r = o.post("/api/tokens/3/decision", {"action": "pick", "candidate": 2})
assert r["review"]["status"] == "approved" and r["review"]["candidate"] == 2, r
t = o.get("/api/tokens/3")
assert t["image"] == c[1]["image"] and t["candidates"][1]["picked"], t
assert t["ai"]["seed"] == c[1]["seed"], t["ai"]
# a thumbnail of each candidate
for x in c:
    st, h, _ = o.raw("GET", "/thumb/" + x["image"])
    assert st == 200 and h["content-type"] == "image/webp", st
print(c[1]["image"])
PY
PICK=$(tail -1 "$T/pick.log")
py_check regen "$KILN_SRC/tests/cli" <<'PY'
import sys
sys.path.insert(0, sys.argv[3])
from review_client import Client
o = Client(int(sys.argv[1]), sys.argv[2]); o.login()
r = o.post("/api/tokens/5/decision", {"action": "regenerate", "note": "wearing a scarf", "prompt_add": True})
assert r["review"]["status"] == "regenerate" and r["review"]["regeneration"] == 1, r
# the same seed: needs a note; "seed" is same or new
o.post("/api/tokens/7/decision", {"action": "regenerate", "seed": "same"}, want=400)
o.post("/api/tokens/7/decision", {"action": "regenerate", "seed": "old", "note": "x"}, want=400)
o.post("/api/tokens/7/decision", {"action": "approve", "seed": "same", "note": "x"}, want=400)
r = o.post("/api/tokens/7/decision", {"action": "regenerate", "seed": "same", "note": "with golden eyes"})
assert r["review"]["status"] == "regenerate", r
# the legendary: its image is the studio's file, rendering cannot change it
rows = o.get("/api/tokens?limit=10000")["tokens"]
leg = [x["id"] for x in rows if not x["regenerate"]]
assert len(leg) == 1, leg
assert o.get("/api/tokens/%d" % leg[0])["kind"] == "legendary"
assert "legendary" in o.get("/api/tokens/%d" % leg[0])["no_regenerate"]
assert o.get("/api/tokens/5")["no_regenerate"] is None
e = o.post("/api/tokens/%d/decision" % leg[0], {"action": "regenerate"}, want=409)
assert e["hint"] == "artist_edit" and "legendary" in e["error"] and "reject" in e["error"], e
assert "kiln" not in e["error"], e
pending = len([x for x in rows if x["status"] == "pending"])
b = o.post("/api/bulk", {"action": "regenerate", "filter": {"status": "pending"}, "note": "x"})
assert b["skipped"] == 1 and b["decided"] == pending - 1 and "legendar" in b["skipped_why"], b
o.post("/api/undo", {})
assert o.get("/api/tokens/%d" % leg[0])["status"] == "pending"
PY
stop_review
expect_eq "the picked image is the item's" "$(sqlite3 "$P/.kiln/catalog.db" "select image from items where id = 3")" "$PICK"
old5=$(sqlite3 "$P/.kiln/catalog.db" "select group_concat(image) from renders where item_id = 5 and status = 'ok'")
"$KILN" -C "$P" render -q 2>"$T/render2.err"
expect_eq "the regeneration render" $? 0
requests /sdapi/v1/txt2img >"$T/sent.json"
$PY - "$T/sent.json" "$n0" "$P/.kiln/catalog.db" <<'PY' >"$T/regen.check" 2>&1
import json, sqlite3, sys
sent, n0 = json.load(open(sys.argv[1])), int(sys.argv[2])
db = sqlite3.connect(sys.argv[3])
new = sent[n0:]
assert len(new) == 4, len(new)           # tokens 5 and 7 only, two candidates each
seed5 = db.execute("select seed from items where id = 5").fetchone()[0] & 0xffffffff
seed7 = db.execute("select seed from items where id = 7").fetchone()[0] & 0xffffffff
new5 = [r for r in new if r["json"]["seed"] in ((seed5 + 2) & 0xffffffff, (seed5 + 3) & 0xffffffff)]
assert len(new5) == 2, ([r["json"]["seed"] for r in new], seed5, seed7)
old = [r for r in sent[:n0] if r["json"]["seed"] == seed5][0]["json"]["prompt"]
for r in new5:   # the same traits' prompt, the note added
    p = r["json"]["prompt"]
    assert ", wearing a scarf" in p and p.replace(", wearing a scarf", "") == old, (p, old)
# token 7, "same seed": its first round's seeds again, the note at the end of the prompt
new7 = [r["json"] for r in new if r not in new5]
assert sorted(r["seed"] for r in new7) == [seed7, (seed7 + 1) & 0xffffffff], (new7, seed7)
for r in new7:
    first = [x["json"] for x in sent[:n0] if x["json"]["seed"] == r["seed"]][0]
    assert r["prompt"] == first["prompt"] + ", with golden eyes", (r["prompt"], first["prompt"])
print("ok")
PY
expect_eq "regenerated with new seeds and the note" "$(tail -1 "$T/regen.check")" ok
for img in $(echo "$old5" | tr , ' '); do
	[ -f "$P/.kiln/store/$(echo $img | cut -c1-2)/$img" ] && ok || fail "old image $img left the store"
done
start_review "$P"
py_check after "$KILN_SRC/tests/cli" <<'PY'
import sys
sys.path.insert(0, sys.argv[3])
from review_client import Client
o = Client(int(sys.argv[1]), sys.argv[2]); o.login()
t = o.get("/api/tokens/5")
assert t["status"] == "pending", t["review"]
assert [c["regeneration"] for c in t["candidates"]] == [0, 0, 1, 1], t["candidates"]
acts = [d["action"] for d in t["decisions"]]
assert acts == ["regenerate", "reset"], acts
# the token shows a new candidate, whose request has the note; the first round's has not
assert t["image"] in (t["candidates"][2]["image"], t["candidates"][3]["image"]), t["image"]
assert t["ai"]["prompt"].endswith(", wearing a scarf"), t["ai"]["prompt"]
assert t["ai"]["seed"] in (t["candidates"][2]["seed"], t["candidates"][3]["seed"]), t["ai"]
o.post("/api/tokens/5/decision", {"action": "pick", "candidate": 1})
t = o.get("/api/tokens/5")
assert "scarf" not in t["ai"]["prompt"] and t["ai"]["seed"] == t["candidates"][0]["seed"], t["ai"]
o.post("/api/undo", {})
# pick the other candidate of token 3, then undo: the earlier pick's image again
c3 = o.get("/api/tokens/3")["candidates"]
o.post("/api/tokens/3/decision", {"action": "pick", "candidate": 1})
assert o.get("/api/tokens/3")["image"] == c3[0]["image"]
u = o.post("/api/undo", {})
assert len(u["undone"]) == 1, u
t3 = o.get("/api/tokens/3")
assert t3["image"] == c3[1]["image"] and t3["review"]["candidate"] == 2, t3["review"]
print("ok")
PY
# token 5: pick a first-round candidate after the regeneration; the release ships it
py_check oldpick "$KILN_SRC/tests/cli" <<'PY'
import sys
sys.path.insert(0, sys.argv[3])
from review_client import Client
o = Client(int(sys.argv[1]), sys.argv[2]); o.login()
t = o.get("/api/tokens/5")
o.post("/api/tokens/5/decision", {"action": "pick", "candidate": 2})
print(t["candidates"][1]["image"])
PY
OLD5=$(tail -1 "$T/oldpick.log")
stop_review
"$KILN" -C "$P" render -q 2>/dev/null
"$KILN" -C "$P" release -q 2>"$T/release.err"
expect_eq "release with an earlier round's candidate picked" $? 0
expect_eq "token 5 is the picked image" "$(sqlite3 "$P/.kiln/catalog.db" "select image from items where id = 5")" "$OLD5"
n2=$(requests /sdapi/v1/txt2img | $PY -c 'import sys, json; print(len(json.load(sys.stdin)))')
expect_eq "nothing rendered again after the round" "$n2" "$((n0 + 4))"
finish
