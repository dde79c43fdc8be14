#!/bin/sh
# Fuzz every target with libFuzzer for SECONDS each (default 600): `make fuzz`, or
# `sh tests/fuzz/run.sh 10` for a short run (CTest runs one of 8 s per target).
#   usage: run.sh [SECONDS] [BUILD_DIR]   (BUILD_DIR default: build-fuzz beside the source tree)
# Builds libkiln and the targets with clang, -fsanitize=fuzzer-no-link plus ASan and UBSan, in
# BUILD_DIR; seeds each target's working corpus from make_corpus.py; runs each target with
# -max_total_time. A crash is copied to tests/fuzz/regress/<target>/ (replayed by every later
# test run) and the script fails naming it: fix the bug, keep the file.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
secs=${1:-600}
build=${2:-$src/build-fuzz}
command -v clang >/dev/null || { echo "fuzz: clang is not installed (scripts/deps.sh --test installs it)" >&2; exit 2; }
CC=clang cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_FUZZ=ON >/dev/null
cmake --build "$build" -j "$(nproc)" --target fuzz_spec fuzz_png fuzz_metadata fuzz_engine fuzz_record \
	fuzz_catalog fuzz_c2pa >"$build/fuzz-build.log" 2>&1 || { tail -30 "$build/fuzz-build.log" >&2; exit 1; }
python3 "$here/make_corpus.py" "$src" "$build/fuzz-seed"
mkdir -p "$build/fuzz-tmp"
status=0
for t in spec png metadata engine record catalog c2pa; do
	work=$build/fuzz-work/$t
	mkdir -p "$work" "$build/fuzz-crash/$t"
	cp -n "$build/fuzz-seed/$t/"* "$work/" 2>/dev/null || true
	[ -d "$here/regress/$t" ] && cp -n "$here/regress/$t/"* "$work/" 2>/dev/null || true
	log=$build/fuzz-$t.log
	if TMPDIR=$build/fuzz-tmp ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
	   LSAN_OPTIONS=suppressions=$here/lsan.supp:fast_unwind_on_malloc=0 \
	   "$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
	   -artifact_prefix="$build/fuzz-crash/$t/" -print_final_stats=1 "$work" >"$log" 2>&1; then
		echo "fuzz $t: $(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$') runs in ${secs} s, no crash"
	else
		status=1
		mkdir -p "$here/regress/$t"
		for c in "$build/fuzz-crash/$t/"*; do
			[ -f "$c" ] || continue
			cp "$c" "$here/regress/$t/"
			echo "fuzz $t: CRASH, input kept as tests/fuzz/regress/$t/$(basename "$c")" >&2
		done
		grep -m1 -A12 'ERROR: \|==ERROR\|runtime error' "$log" >&2 || tail -20 "$log" >&2
	fi
done
exit $status
