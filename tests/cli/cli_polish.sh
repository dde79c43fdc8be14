#!/bin/sh
# issue 18 item 10: option errors are one `kiln: VERB: what` line and a hint (getopt's own line
# is gone); `kiln help VERB` names a page that exists for every verb; the release bar shows a
# real rate; the QA table cuts messages at a word; `(1 legendary)`; the starter spec's PNG
# levels are the ones the spec takes (0..12).
. "$(dirname "$0")/lib.sh"
P=$T/owls
owls "$P"
for args in "status --jsn" "build --threads" "release --force=1" "ls -Z"; do
	"$KILN" -C "$P" $args >"$T/out" 2>"$T/err"
	expect_eq "$args: exit" $? 2
	expect_eq "$args: two lines" "$(wc -l <"$T/err")" 2
	v=${args%% *}
	expect_eq "$args: the kiln: line" "$(head -1 "$T/err" | cut -c1-$((8 + ${#v})))" "kiln: $v: "
	expect_contains "$args: the hint" "$T/err" "hint: \`kiln help $v\` lists its options"
done
expect_contains "names the value it lacks" "$T/err" "unknown option '-Z'"
"$KILN" -C "$P" build --threads 2>"$T/err"
expect_contains "a missing value" "$T/err" "kiln: build: option '--threads' needs a value"
# every verb's help names its page, and the page exists
for v in init plan render qa release verify build status ls show; do
	"$KILN" help "$v" >"$T/h" 2>&1
	expect_eq "kiln help $v" $? 0
	expect_contains "kiln help $v names the page" "$T/h" "docs: docs/commands/$v.md"
	[ -f "$KILN_SRC/docs/commands/$v.md" ] && ok || fail "docs/commands/$v.md is missing"
done
"$KILN" --version >"$T/v1" && "$KILN" version >"$T/v2"
expect_eq "kiln version is kiln --version" "$(cat "$T/v2")" "$(cat "$T/v1")"
"$KILN" rendr 2>"$T/err"
expect_contains "did you mean" "$T/err" "did you mean \`kiln render\`?"
# a stage before the plan it needs: usage (2), not failed items (1)
"$KILN" -C "$P" render -q 2>/dev/null
expect_eq "render before plan" $? 2
# the release bar on a terminal: a real rate, not 0.0/s throughout
"$KILN" -C "$P" plan -q && "$KILN" -C "$P" render -q
TERM=xterm script -qc "$KILN -C $P release" /dev/null | tr '\r' '\n' >"$T/bar"
grep -a "release \[" "$T/bar" | grep -a " 60/60 " >"$T/full"
[ -s "$T/full" ] && ok || fail "no full release bar in $(head -c 600 "$T/bar")"
grep -aq " 0\.0/s ETA -" "$T/full" && fail "the full bar says 0.0/s ETA -: $(cat "$T/full")" || ok
# the plural of one legendary
"$KILN" -C "$P" status >"$T/st"
expect_contains "one legendary" "$T/st" "(1 legendary)"
# the QA table: a long message is cut at a word, with ...
"$KILN" -C "$P" qa --near-measure phash >"$T/qa" # the owls differ in colour only: pHash alone pairs them
grep -a "near_duplicate" "$T/qa" >"$T/line"
expect_contains "cut with ..." "$T/line" "..."
sqlite3 "$P/.kiln/catalog.db" "select message from qa_findings where check_id = \
	'image.near_duplicate' order by id limit 1" >"$T/full_msg"
$PY - "$T/line" "$T/full_msg" <<'PY' || fail "cut mid-word: $(cat "$T/line")"
import sys
line = open(sys.argv[1]).read().rstrip("\n")
full = open(sys.argv[2]).read().rstrip("\n")
shown = line.split(": ", 1)[1]
assert shown.endswith("..."), shown
cut = shown[:-3]
assert full.startswith(cut), (cut, full)
assert full[len(cut)] in " ,:;", (cut, full[len(cut):len(cut) + 10])
PY
# the starter spec says the levels the spec takes
S=$T/starter
mkdir -p "$S"
"$KILN" -C "$S" init >/dev/null 2>&1
expect_contains "starter: 0..12" "$S/kiln.yaml" "png deflate level 0..12"
finish
