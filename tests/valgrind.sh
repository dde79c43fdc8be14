#!/bin/sh
# `make valgrind`: every unit test program, the fuzz corpora and a whole `kiln build` of the example under
# valgrind memcheck. Fails on any memory error or definite leak. (libvips and glib keep
# caches for the life of the process: those show as "still reachable" and are not errors.)
set -u
BUILD=${1:-build}
VG="valgrind --suppressions=tests/valgrind.supp --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite"
# KILN_VALGRIND=1 tells the heavier property tests to run fewer rounds (valgrind is ~50x slower)
# VIPSHOME points libvips away from its dlopen()ed modules: libhwy (via the JPEG XL module)
# runs an instruction valgrind cannot emulate at load time. kiln needs none of those modules.
export VIPS_LEAK=0 CMOCKA_MESSAGE_OUTPUT=stdout KILN_VALGRIND=1 VIPSHOME=/nonexistent
pass=0
fail=0
run() {
	name=$1
	shift
	if "$@" >"$TMP/out" 2>&1; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		echo "FAIL (valgrind): $name"
		tail -40 "$TMP/out"
	fi
}
TMP=$(mktemp -d)
for t in "$BUILD"/test_*; do
	[ -x "$t" ] || continue
	run "$(basename "$t")" $VG "$t"
done
# the fuzz targets' seed corpus and every regression input (tests/fuzz), through the plain driver
/usr/bin/python3 tests/fuzz/make_corpus.py . "$TMP/corpus"
for t in "$BUILD"/tests/fuzz/fuzz_*; do
	[ -x "$t" ] || continue
	n=$(basename "$t" | sed 's/^fuzz_//')
	run "$(basename "$t")" $VG "$t" "$TMP/corpus/$n" "tests/fuzz/regress/$n"
done
mkdir -p "$TMP/owls"
cp -r examples/owls/kiln.yaml examples/owls/layers examples/owls/legendaries "$TMP/owls/"
run "kiln build" $VG "$BUILD/kiln" -C "$TMP/owls" build -q
run "kiln build again" $VG "$BUILD/kiln" -C "$TMP/owls" build -q
run "kiln ls --json" $VG "$BUILD/kiln" -C "$TMP/owls" ls --json
run "kiln show" $VG "$BUILD/kiln" -C "$TMP/owls" show 1
run "kiln plan --report --json" $VG "$BUILD/kiln" -C "$TMP/owls" plan --report --json
rm -rf "$TMP"
echo "valgrind: $pass passed, $fail failed"
[ $fail = 0 ]
