# A fact the catalog learns after a release (a review decision, a human edit) makes the
# portfolio out of date (issue 15): `kiln release` without --force releases again and appends
# the new entries to dist/portfolio/log/ (the release is not a no-op "nothing changed"), and
# a release with nothing new is still a no-op.
. "$(dirname "$0")/lib.sh"
export KILN_KEYS_DIR=$T/keys
"$KILN" keys init --studio example.com/owls >/dev/null
P=$T/owls
owls "$P"
echo "portfolio: {enabled: true}" >>"$P/kiln.yaml"
"$KILN" -C "$P" plan -q && "$KILN" -C "$P" render -q || fail "plan/render"
rel() { "$KILN" -C "$P" release -q --allow-qa-failures --allow-unreviewed >"$T/out" 2>&1; }
rel
expect_eq "release ($(head -3 "$T/out"))" $? 0
L=$P/dist/portfolio/log/entries.jsonl
n0=$(wc -l <"$L")
expect_eq "no review entry yet" "$(grep -c '"kind":"review.decision"' "$L")" 0
db() { sqlite3 "$P/.kiln/catalog.db" "$1"; }
img1=$(db "select image from items where id = 1")
db "insert into review_log(at, reviewer, item_id, action, image, note) values
    ('2026-12-07T10:00:00Z', 'ana', 1, 'approve', '$img1', 'late')"
rel
expect_eq "release after a review decision ($(head -3 "$T/out"))" $? 0
expect_eq "its entry is published" "$(grep -c '"kind":"review.decision"' "$L")" 1
n1=$(wc -l <"$L")
[ "$n1" -gt "$n0" ] || fail "the log did not grow ($n0 -> $n1)"
"$KILN" verify "$P/dist" >"$T/v" 2>&1
expect_eq "kiln verify ($(head -3 "$T/v"))" $? 0
rel
expect_eq "release with nothing new ($(head -3 "$T/out"))" $? 0
expect_eq "nothing appended" "$(wc -l <"$L")" "$n1"
finish
