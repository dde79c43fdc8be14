#!/bin/sh
# Build bench/qa/bench_neardup.c against a built libkiln.a and run it.
# usage: bench/qa/run.sh [BUILD_DIR] [N [THRESHOLD [THREADS [SUBSET]]]]
#   (default: build, 1000000 8 0 20000). Build first in release mode, e.g.
#   cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${1:-$src/build}
[ $# -gt 0 ] && shift
[ -f "$build/libkiln.a" ] || { echo "bench_neardup: no $build/libkiln.a; build kiln first" >&2; exit 2; }
out=${TMPDIR:-/tmp}/kiln-bench-neardup.$$
trap 'rm -f "$out"' EXIT
deps=$(pkg-config --libs vips libfyaml jansson sqlite3 libcurl libmicrohttpd libcrypto imagequant libdeflate zlib libxxhash libpng16 clp cbc 2>/dev/null || true)
${CC:-cc} -std=gnu11 -O2 -D_GNU_SOURCE -I"$src/include" -I"$src/lib" "$here/bench_neardup.c" "$build/libkiln.a" $deps -lpthread -lm -o "$out"
"$out" "$@"
