#!/bin/sh
# The Provenance Portfolio's cost (issue 15), measured against peers in the same run:
#  1. `kiln release --force` of N tokens with portfolio: {enabled: true} against the same
#     release without it: wall time and peak RSS (target: under 1.5x);
#  2. `kiln verify` of that release (manifest, images, CIDs and the portfolio: chain, root,
#     checkpoint, every proof and bundle) against `sha256sum` of the same files (target: 2x).
# A generated compose project: 4 layers x 10 traits of SIZExSIZE PNGs (10,000 distinct tokens).
# SIZE=64 (default) is the small case, where per-file costs dominate; SIZE=1024 is a realistic
# one: the first layer is noise, so each token is a ~1.1 MB PNG and hashing dominates.
# Prints ratios; not a timed test.
#
# usage: bench/portfolio/run.sh [BUILD_DIR]   N=2000 (tokens, at most 10000), SIZE=64,
#        BENCH_DIR=/tmp/kiln-bench-portfolio (the project is kept there between runs)
#   e.g. N=1000 SIZE=1024 bench/portfolio/run.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${1:-$src/build}
kiln=$build/kiln
N=${N:-2000}
SIZE=${SIZE:-64}
B=${BENCH_DIR:-/tmp/kiln-bench-portfolio}
[ -x "$kiln" ] || { echo "bench_portfolio: no $kiln; build kiln first" >&2; exit 2; }
P=$B/p$N
[ "$SIZE" = 64 ] || P=$B/p${N}s$SIZE
export KILN_KEYS_DIR=$B/keys
[ -f "$KILN_KEYS_DIR/signing-ed25519.key" ] || "$kiln" keys init --studio bench.example >/dev/null
if [ ! -f "$P/.kiln/catalog.db" ]; then
	rm -rf "$P"
	mkdir -p "$P"
	python3 - "$P" "$N" "$SIZE" <<'PY'
import os, random, struct, sys, zlib
p, n, z = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def png(path, rgba, noise):
    if noise:  # opaque, 3 random low bits per colour channel: ~1.1 MB a token at 1024x1024
        rnd = random.Random(path).randbytes(z * z * 4)
        px = bytearray(z * z * 4)
        for c in range(4):
            px[c::4] = rnd[c::4].translate(bytes(rgba[c] ^ (v & 7 if c < 3 else 0) for v in range(256)))
        raw = b"".join(b"\0" + px[r * z * 4:(r + 1) * z * 4] for r in range(z))
    else:
        raw = b"".join(b"\0" + bytes(rgba) * z for _ in range(z))
    def chunk(t, b): return struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b))
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", z, z, 8, 6, 0, 0, 0))
                           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
y = ["collection: {name: Bench, symbol: BNCH, size: %d, seed: 7}" % n,
     "image: {width: %d, height: %d, format: png}" % (z, z), "layers:"]
for l in range(4):
    os.makedirs("%s/layers/L%d" % (p, l), exist_ok=True)
    y.append("  - name: L%d" % l)
    y.append("    traits:")
    for t in range(10):
        rgba = (l * 60, t * 25, 255 - t * 20, 255 if z > 64 and l == 0 else 64 + l * 40)
        png("%s/layers/L%d/t%d.png" % (p, l, t), rgba, z > 64 and l == 0)
        y.append("      - {name: T%d, weight: 1, file: layers/L%d/t%d.png}" % (t, l, t))
y.append("qa: {gate: false}")
open(p + "/kiln.yaml", "w").write("\n".join(y) + "\n")
PY
	echo "rendering $N tokens (once)..."
	"$kiln" -C "$P" build -q --no-qa >/dev/null || true
fi
spec=$P/kiln.yaml
sed -i '/^portfolio:/d' "$spec"
"$kiln" -C "$P" plan -q >/dev/null
run() { # label -> prints "wall rss"
	/usr/bin/time -f "%e %M" -o "$B/time" "$kiln" -C "$P" release --force --allow-qa-failures -q >/dev/null 2>&1
	cat "$B/time"
}
best() { # label
	b=""; for i in 1 2 3; do r=$(run); w=${r% *}
		if [ -z "$b" ] || python3 -c "import sys; sys.exit(0 if $w < ${b% *} else 1)"; then b=$r; fi
	done; echo "$b"; }
plain=$(best)
echo "portfolio: {enabled: true, prompts: hashed}" >>"$spec"
"$kiln" -C "$P" plan -q >/dev/null   # kiln.yaml changed: the same plan again
with=$(best)
"$kiln" verify "$P/dist" >/dev/null || { echo "verify FAILED"; exit 1; }
find "$P/dist" -type f >"$B/files"
bytes=$(xargs -a "$B/files" cat | wc -c)
xargs -a "$B/files" cat >/dev/null
t() { date +%s.%N; }
bv=999999 bs=999999
for i in 1 2 3; do
	a=$(t); "$kiln" verify "$P/dist" >/dev/null; b=$(t)
	xargs -a "$B/files" sha256sum >/dev/null; c=$(t)
	bv=$(python3 -c "print(min($bv, $b - $a))"); bs=$(python3 -c "print(min($bs, $c - $b))")
done
python3 - "$N" "$plain" "$with" "$bv" "$bs" "$(wc -l <"$B/files")" "$bytes" <<'PY'
import sys
n = int(sys.argv[1]); pw, pr = map(float, sys.argv[2].split()); ww, wr = map(float, sys.argv[3].split())
v, s, files, b = float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
print(f"{n} tokens of {b / 1048576 / max(files, 1):.2f} MiB a file on average; release without portfolio {pw:.2f} s, {pr / 1024:.0f} MiB peak RSS; "
      f"with {ww:.2f} s, {wr / 1024:.0f} MiB (best of 3)")
print(f"ratio release with/without: time {ww / pw:.2f}, peak RSS {wr / pr:.2f}  "
      f"(target < 1.5: {'PASS' if ww / pw < 1.5 and wr / pr < 1.5 else 'FAIL'})")
print(f"kiln verify {v:.2f} s vs sha256sum of the same {files} files ({b / 1048576:.1f} MiB) {s:.2f} s: "
      f"ratio {v / s:.2f}  (target <= 2: {'PASS' if v / s <= 2 else 'FAIL'})")
PY
