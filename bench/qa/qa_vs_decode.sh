#!/bin/sh
# bench/qa: `kiln qa` on N 1024x1024 tokens with metadata against the limit measured in the
# same run: decoding the same images completely with libvips on the same number of threads.
# Target (issue 6): kiln qa total time <= 2x decode-only. Also reports peak RSS.
# usage: bench/qa/qa_vs_decode.sh [BUILD_DIR] [N]     (default build, 1000)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
N=${2:-1000}
work=${TMPDIR:-/tmp}/kiln-bench-qa-$N
mkdir -p "$work"
if [ ! -f "$work/proj/dist/images/1.png" ]; then
	echo "making $N tokens (once; kept in $work)..."
	/usr/bin/python3 "$src/../shared/peers/make_layers.py" "$work/layers" >/dev/null
	mkdir -p "$work/proj"
	"$build/kiln" -C "$work/proj" init --force --from-hashlips "$work/layers" \
		--order Background,Body,Eyes,Mouth,Hat,Accessory --size "$N" >/dev/null
	"$build/kiln" -C "$work/proj" build -q
fi
cc -O2 -o "$work/decode_only" "$here/decode_only.c" $(pkg-config --cflags --libs vips) -lpthread
# warm the page cache, then measure each twice and keep the better
cat "$work/proj/dist/images/"* >/dev/null
best() { sort -n | head -1; }
dec=$(for i in 1 2; do "$work/decode_only" "$work/proj/dist/images" | awk '{print $2}'; done | best)
qa=$(for i in 1 2; do
	/usr/bin/time -f "%e %M" -o "$work/time" "$build/kiln" qa "$work/proj/dist" -q --json >/dev/null || true
	cat "$work/time"
done | sort -n | head -1)
qa_s=${qa% *}
qa_kb=${qa#* }
echo "images: $N (1024x1024 PNG, with metadata)"
echo "decode only (libvips, all cores): ${dec} s"
echo "kiln qa (images + metadata):      ${qa_s} s, peak RSS $((qa_kb / 1024)) MiB"
awk -v q="$qa_s" -v d="$dec" 'BEGIN { r = q / d; printf "ratio kiln qa / decode-only: %.2fx (target <= 2x): %s\n", r, r <= 2 ? "met" : "NOT met" }'
echo "near-duplicate search over 1,000,000 hashes: bench/qa/run.sh"
