#!/bin/sh
# Build bench/plan/bench_plan.c against a built libkiln.a and run it.
# usage: bench/plan/run.sh [BUILD_DIR] [SIZE...]     (default: build, sizes 10000 1000000)
# Build first, e.g.: cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${1:-$src/build}
[ $# -gt 0 ] && shift
[ -f "$build/libkiln.a" ] || { echo "bench_plan: no $build/libkiln.a; build kiln first" >&2; exit 2; }
out=${TMPDIR:-/tmp}/kiln-bench-plan.$$
trap 'rm -f "$out"' EXIT
deps=$(pkg-config --libs vips libfyaml jansson sqlite3 libcurl libmicrohttpd libcrypto imagequant libdeflate zlib libpng16 cbc clp 2>/dev/null || true)
${CC:-cc} -std=gnu11 -O2 -D_GNU_SOURCE -I"$src/include" -I"$src/lib" -I"$src/tests/unit" \
  "$here/bench_plan.c" "$build/libkiln.a" $deps -lpthread -lm -o "$out"
"$out" "$@"
