# Shared helpers for the command-line tests (sourced). Each test gets a scratch folder $T.
set -u
: "${KILN:?set KILN to the kiln binary}"
: "${KILN_SRC:?set KILN_SRC to the source tree}"
PY=/usr/bin/python3
T=${KILN_TMP:-/tmp}/cli.$(basename "$0" .sh).$$
rm -rf "$T"
mkdir -p "$T"
failures=0
checks=0
ok() { checks=$((checks + 1)); }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); checks=$((checks + 1)); }
expect_eq() { # what got want
	if [ "$2" = "$3" ]; then ok; else fail "$1: got '$2', expected '$3'"; fi
}
expect_contains() { # what file text
	if grep -qF -- "$3" "$2"; then ok; else fail "$1: '$3' not in $(head -c 1500 "$2")"; fi
}
finish() {
	echo "$((checks - failures)) passed, $failures failed"
	[ $failures = 0 ] && rm -rf "$T"
	[ $failures = 0 ]
	exit $?
}
# a copy of the owls example
owls() {
	rm -rf "$1"
	mkdir -p "$1"
	cp -r "$KILN_SRC/examples/owls/kiln.yaml" "$KILN_SRC/examples/owls/layers" \
		"$KILN_SRC/examples/owls/legendaries" "$1/"
}
# JSON field of every `kiln ls --json` line: jq-like with python
ls_field() { # dir field
	"$KILN" -C "$1" ls --json | $PY -c "import sys, json
for l in sys.stdin: print(json.loads(l)['$2'])"
}
# replace the example's one-line metadata: block with the YAML on stdin
set_metadata() { # dir
	$PY -c 'import sys
p = sys.argv[1]
lines = [l for l in open(p) if not l.startswith("metadata:")]
open(p, "w").writelines(lines + [sys.stdin.read()])' "$1/kiln.yaml"
}
