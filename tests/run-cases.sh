#!/bin/sh
# Data-driven cases (tests/README.md): each folder <suite>/<case>/ holds
#   kiln.yaml        the spec (optional)
#   args             the kiln command-line words (default: plan); one line, split by the shell;
#                    an empty file means no words at all
#   expect-exit      the exit status (default 0)
#   expect-stderr    optional: every non-empty line must appear in stderr (as a substring)
#   expect-stdout    optional: every non-empty line must appear in stdout (as a substring)
#   expect-absent    optional: paths (one a line) that must not exist afterwards
#   missing          optional: input paths kiln.yaml names that the runner must not draw (the
#                    case is about their absence)
#   make.sh          optional, for what the runner cannot do: run (sh make.sh) inside the
#                    scratch copy after the inputs are drawn
# Inputs: the runner draws every input file kiln.yaml names (`file:` of traits and legendaries,
# `image:` of controlnet) as a transparent RGBA PNG of the spec's image size (the first
# `width:` and `height:` in kiln.yaml, else 1024): plan reads each layer file's header (size)
# but no pixel. A case that renders needs real images: make.sh.
# The case runs in a scratch copy, as `cd <copy> && kiln -C <copy> <args>`, so a relative path
# in args names a file of the case. An expected failure is a case like any other.
# Usage: run-cases.sh PATH...   each PATH a case folder, a suite (folder of cases) or a folder
# of suites. Prints "FAIL <case>: why" per failure and "N passed, N failed"; non-zero exit on
# any failure.
set -u
[ $# -gt 0 ] || { echo "usage: run-cases.sh CASE_OR_SUITE_DIR..." >&2; exit 2; }
KILN=${KILN:?set KILN to the kiln binary}
TMP=${KILN_TMP:-/tmp}/cases.$$
mkdir -p "$TMP"
pass=0
fail=0

is_case() {
	for f in "$1"/kiln.yaml "$1"/args "$1"/expect-*; do
		[ -e "$f" ] && return 0
	done
	return 1
}

# The input files kiln.yaml names, one a line: values of `file:` and of a scalar `image:`
# (not the image: {width..} block), unquoted, relative, inside the case.
named_inputs() {
	grep -oE '(^|[[:space:]{,])(file|image): *("[^"]*"|[^[:space:]{,}"][^,}]*)' "$1" |
		sed -E 's/^[[:space:]{,]*(file|image): *//; s/^"(.*)"$/\1/; s/[[:space:]]+$//' |
		grep -vE '^/|(^|/)\.\.(/|$)' | sort -u
}

draw_inputs() { # work
	[ -f "$1/kiln.yaml" ] || return 0
	w=$(grep -oE 'width: *[0-9]+' "$1/kiln.yaml" | head -1 | grep -oE '[0-9]+$')
	h=$(grep -oE 'height: *[0-9]+' "$1/kiln.yaml" | head -1 | grep -oE '[0-9]+$')
	named_inputs "$1/kiln.yaml" | while IFS= read -r f; do
		if [ -f "$1/missing" ] && grep -qxF -- "$f" "$1/missing"; then
			continue
		fi
		[ -e "$1/$f" ] && continue
		mkdir -p "$1/$(dirname "$f")" && printf '%s\n' "$1/$f" || return 1
	done | /usr/bin/python3 -c '
import struct, sys, zlib
w, h = int(sys.argv[1] or 1024), int(sys.argv[2] or 1024)
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))
       + chunk(b"IDAT", zlib.compress(b"\0" * ((w * 4 + 1) * h), 9)) + chunk(b"IEND", b""))
for line in sys.stdin:
    open(line.rstrip("\n"), "wb").write(png)
' "${w:-}" "${h:-}"
}

run_case() { # dir
	dir=${1%/}
	name=$(basename "$(dirname "$dir")")/$(basename "$dir")
	work="$TMP/$(echo "$name" | tr / _)"
	rm -rf "$work"
	cp -r "$dir" "$work"
	ok=1
	why=""
	draw_inputs "$work" || { ok=0; why="could not draw the inputs kiln.yaml names"; }
	if [ $ok = 1 ] && [ -f "$work/make.sh" ]; then
		(cd "$work" && sh make.sh) >"$work/.make.log" 2>&1 || { ok=0; why="make.sh failed: $(cat "$work/.make.log")"; }
	fi
	args="plan"
	[ -f "$work/args" ] && args=$(cat "$work/args")
	want=0
	[ -f "$work/expect-exit" ] && want=$(tr -d ' \n' <"$work/expect-exit")
	if [ $ok = 1 ]; then
		# shellcheck disable=SC2086
		(cd "$work" && exec "$KILN" -C "$work" $args) >"$work/.stdout" 2>"$work/.stderr"
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
		echo "  stdout: $(head -c 2000 "$work/.stdout" 2>/dev/null)"
		echo "  stderr: $(head -c 2000 "$work/.stderr" 2>/dev/null)"
	fi
}

for top in "$@"; do
	top=${top%/}
	if is_case "$top"; then
		run_case "$top"
		continue
	fi
	for d in "$top"/*/ "$top"/*/*/; do
		d=${d%/}
		[ -d "$d" ] && is_case "$d" && run_case "$d"
	done
done
echo "$pass passed, $fail failed"
[ $fail = 0 ] && rmdir "$TMP" 2>/dev/null
[ $fail = 0 ] && [ $pass -gt 0 ]
