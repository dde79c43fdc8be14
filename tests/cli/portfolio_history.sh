# The portfolio log takes polish steps and review decisions from their own tables (issue 15):
# each polish step is a polish.step entry (its output as fact.image, its input as from), each
# review_log row a review.decision entry; a polished token's history, its portfolio.json
# log_index and its C2PA dev.kiln.provenance end in the polish step that made its released bytes,
# and kiln verify follows the manifest's pointer (a manifest naming another entry fails).
# Syncing again logs nothing twice; the order of a sync's entries is fixed.
. "$(dirname "$0")/lib.sh"
export KILN_KEYS_DIR=$T/keys
"$KILN" keys init --studio example.com/owls >/dev/null
P=$T/owls
owls "$P"
cat >>"$P/kiln.yaml" <<'EOF'
portfolio: {enabled: true}
polish:
  - upscale: {factor: 2, method: nearest}
EOF
"$KILN" -C "$P" plan -q && "$KILN" -C "$P" render -q || fail "plan/render"
"$KILN" -C "$P" polish -q >"$T/out" 2>&1
expect_eq "polish ($(head -2 "$T/out"))" $? 0
db() { sqlite3 "$P/.kiln/catalog.db" "$1"; }
img1=$(db "select image from items where id = 1")
db "insert into review_log(at, reviewer, item_id, action, image, note) values
    ('2026-12-07T10:00:00Z', 'ana', 1, 'approve', '$img1', 'crisp'),
    ('2026-12-07T10:01:00Z', 'bo', 2, 'reject', NULL, 'muddy')"
"$KILN" -C "$P" release -q --allow-qa-failures --allow-unreviewed >"$T/out" 2>&1
expect_eq "release ($(head -3 "$T/out"))" $? 0
L=$P/dist/portfolio/log/entries.jsonl
n=$(db "select count(*) from items")
expect_eq "a polish.step entry per token" "$(grep -c '"kind":"polish.step"' "$L")" "$n"
expect_eq "two review.decision entries" "$(grep -c '"kind":"review.decision"' "$L")" 2
$PY - "$P" <<'PY' >"$T/py" 2>&1
import json, sqlite3, sys
p = sys.argv[1]
db = sqlite3.connect(p + "/.kiln/catalog.db")
lines = open(p + "/dist/portfolio/log/entries.jsonl").read().splitlines()
ent = [json.loads(l) for l in lines]
steps = {(i, o): s for i, s, o in db.execute("select item_id, input, output from polish_steps where kind = 'upscale'")}
pj = json.load(open(p + "/dist/portfolio/portfolio.json"))
for t in pj["tokens"]:
    e = ent[t["log_index"]]
    assert e["kind"] == "polish.step" and e["item"] == t["token_id"], e
    f = e["fact"]
    assert (t["token_id"], f["image"]) in steps and steps[(t["token_id"], f["image"])] == f["from"], f
    r = [x for x in ent if x["kind"] == "render" and x.get("item") == t["token_id"] and x["fact"]["image"] == f["from"]]
    assert r and ent.index(r[-1]) < t["log_index"], "the render comes first"
rv = [x for x in ent if x["kind"] == "review.decision"]
assert rv[0]["item"] == 1 and rv[0]["fact"]["action"] == "approve" and rv[0]["fact"]["reviewer"] == "ana", rv[0]
assert rv[0]["fact"]["note"] == "crisp" and "image" not in rv[0]["fact"], rv[0]
assert rv[1]["item"] == 2 and rv[1]["fact"]["action"] == "reject", rv[1]
assert not [x for x in ent if x["kind"] == "polish.step" and "steps" in x["fact"]], "an events-sourced polish entry"
# a sync's order: renders, then polish steps, then review decisions
kinds = [x["kind"] for x in ent]
assert max(i for i, k in enumerate(kinds) if k == "render") < min(i for i, k in enumerate(kinds) if k == "polish.step")
assert max(i for i, k in enumerate(kinds) if k == "polish.step") < min(i for i, k in enumerate(kinds) if k == "review.decision")
print("ok")
PY
expect_contains "history: render, polish step, review ($(tail -2 "$T/py"))" "$T/py" "ok"
# C2PA: dev.kiln.provenance names the polish step (kiln's own reader, through kiln verify)
# (the polish chain's last output is the released PNG without its caBX chunk: a signed,
# polished image is not a mismatch of lib/polish's own check either)
"$KILN" verify "$P/dist" >"$T/v" 2>&1
expect_eq "kiln verify of a polished, signed release ($(head -3 "$T/v"))" $? 0
grep -c '^[A-Z][A-Z]* ' "$T/v" >"$T/nv"
expect_eq "kiln verify: no polish, portfolio or C2PA problem ($(head -3 "$T/v"))" "$(cat "$T/nv")" 0
before=$(sha256sum "$L")
"$KILN" -C "$P" polish -q >/dev/null 2>&1
"$KILN" -C "$P" release -q --force --allow-qa-failures --allow-unreviewed >/dev/null 2>&1
expect_eq "polish and release again: no entry twice" "$(grep -c '"kind":"polish.step"' "$L")" "$n"
# a manifest naming another entry: kiln verify follows the pointer. Image 1 signed again by
# the studio's own chain (a valid, trusted manifest, the same pixels) whose dev.kiln.provenance
# names entry 42 with another SHA-256 (kiln_c2pa_tool's fixed values)
TOOL=$(dirname "$KILN")/kiln_c2pa_tool
cp -r "$P/dist" "$T/d"
"$TOOL" sign "$P/dist/images/1.png" "$T/d/images/1.png" "$KILN_KEYS_DIR" >"$T/rs" 2>&1
expect_eq "re-signed ($(cat "$T/rs"))" $? 0
"$TOOL" verify "$T/d/images/1.png" "$P/dist/portfolio/keys/c2pa-root.pem" >"$T/rs" 2>&1
expect_eq "the forged manifest is valid C2PA ($(cat "$T/rs"))" $? 0
"$KILN" verify "$T/d" >"$T/v2" 2>&1
expect_eq "verify fails" $? 1
expect_contains "the pointer is followed" "$T/v2" "images/1.png: C2PA dev.kiln.provenance: entry 42 of entries.jsonl has SHA-256"
finish
