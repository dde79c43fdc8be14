#!/bin/sh
# Data-driven cases: each folder CASES/<suite>/<case>/ holds
#   kiln.yaml        the spec (optional: a case may make its own in make.sh)
#   make.sh          optional, run first inside a scratch copy of the folder (sh make.sh)
#   args             the kiln command-line words (default: plan); one line
#   expect-exit      the exit status (default 0)
#   expect-stderr    optional: every non-empty line must appear in stderr (as a substring)
#   expect-stdout    optional: every non-empty line must appear in stdout (as a substring)
#   expect-absent    optional: paths (one a line) that must not exist afterwards
# The case runs in the scratch copy with `kiln -C <copy> <args>`. An expected failure is a
# case like any other. Prints "N passed, N failed" and exits non-zero on any failure.
set -u
CASES=${1:?usage: run-cases.sh CASES_DIR}
KILN=${KILN:?set KILN to the kiln binary}
TMP=${KILN_TMP:-/tmp}/cases.$$
mkdir -p "$TMP"
pass=0
fail=0
for dir in "$CASES"/*/*/; do
	[ -d "$dir" ] || continue
	name=$(basename "$(dirname "$dir")")/$(basename "$dir")
	work="$TMP/$(echo "$name" | tr / _)"
	rm -rf "$work"
	cp -r "$dir" "$work"
	ok=1
	why=""
	if [ -f "$work/make.sh" ]; then
		(cd "$work" && sh make.sh) >"$work/.make.log" 2>&1 || { ok=0; why="make.sh failed: $(cat "$work/.make.log")"; }
	fi
	args="plan"
	[ -f "$work/args" ] && args=$(cat "$work/args")
	want=0
	[ -f "$work/expect-exit" ] && want=$(tr -d ' \n' <"$work/expect-exit")
	if [ $ok = 1 ]; then
		# shellcheck disable=SC2086
		"$KILN" -C "$work" $args >"$work/.stdout" 2>"$work/.stderr"
		got=$?
		if [ "$got" != "$want" ]; then
			ok=0
			why="exit $got, expected $want"
		fi
		if [ -f "$work/expect-absent" ]; then
			while IFS= read -r f; do
				[ -n "$f" ] && [ -e "$work/$f" ] && { ok=0; why="$why; $f was written"; }
			done <"$work/expect-absent"
		fi
		for stream in stderr stdout; do
			[ -f "$work/expect-$stream" ] || continue
			while IFS= read -r line; do
				[ -n "$line" ] || continue
				if ! grep -qF -- "$line" "$work/.$stream"; then
					ok=0
					why="$why; $stream lacks: $line"
				fi
			done <"$work/expect-$stream"
		done
	fi
	if [ $ok = 1 ]; then
		pass=$((pass + 1))
		rm -rf "$work"
	else
		fail=$((fail + 1))
		echo "FAIL $name: $why"
		echo "  stderr: $(head -c 2000 "$work/.stderr" 2>/dev/null)"
	fi
done
echo "$pass passed, $fail failed"
[ $fail = 0 ] && rmdir "$TMP" 2>/dev/null
[ $fail = 0 ]
