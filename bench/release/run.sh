#!/bin/sh
# 1. The hashing of `kiln release` (provenance SHA-256 + IPFS CIDs of the images folder, then
#    of the metadata folder) on N 1024x1024 PNGs, against `sha256sum` over the same files in the
#    same run (the target: at least half its speed) and against the npm importer
#    (tests/ipfs/oracle.mjs, whose CIDs must also be equal).
# 2. The whole `kiln release --force` of a project of those N images (each a 1/1 legendary, so
#    the render stores them as they are; targets erc721, erc1155 and metaplex: N images, N
#    metaplex copies, 3N JSON), against its limit on this file system: `cp -r` of the dist/ it
#    wrote and one `sync`, in the same run.
# Prints ratios; not a timed test.
#
# usage: bench/release/run.sh [BUILD_DIR]        (default: build)
#   N=10000 (images), BENCH_DIR=/tmp/kiln-bench-release (images are made once and kept there:
#   about 1 MB each; the project of part 2 too), ORACLE=0 to skip node, WRITE=0 to skip part 2.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${1:-$src/build}
N=${N:-10000}
B=${BENCH_DIR:-/tmp/kiln-bench-release}
[ -f "$build/libkiln.a" ] || { echo "bench_release: no $build/libkiln.a; build kiln first" >&2; exit 2; }
mkdir -p "$B/images"
bin=$B/bench_release
deps=$(pkg-config --cflags --libs vips libfyaml jansson sqlite3 libcurl libmicrohttpd libcrypto imagequant libdeflate zlib libxxhash libpng16 clp cbc 2>/dev/null || true)
${CC:-cc} -std=gnu11 -O2 -D_GNU_SOURCE -I"$src/include" -I"$src/lib" \
  "$here/bench_release.c" "$build/libkiln.a" $deps -lpthread -lm -o "$bin"

have=$(ls "$B/images" | wc -l)
if [ "$have" -lt "$N" ]; then
	echo "making $N 1024x1024 PNGs in $B/images (once)..."
	half=$(( (N + 1) / 2 ))
	"$bin" gen "$B/images" 1 "$half" &
	"$bin" gen "$B/images" $((half + 1)) $((N - half))
	wait
fi
files() { i=1; while [ $i -le "$N" ]; do echo "$B/images/$i.png"; i=$((i + 1)); done; }
files >"$B/list"
bytes=$(xargs -a "$B/list" stat -c %s | awk '{ s += $1 } END { printf "%.0f\n", s }')
echo "$N images, $((bytes / 1048576)) MiB; warming the page cache"
xargs -a "$B/list" cat >/dev/null

t() { date +%s.%N; }
best_sha=999999 best_kiln=999999
for round in 1 2; do
	a=$(t); xargs -a "$B/list" sha256sum >"$B/sha.txt"; b=$(t)
	s=$(python3 -c "print(round($b - $a, 3))")
	"$bin" cids "$B/images" "$N" "$B/metadata" >"$B/kiln.txt"
	k=$(sed 's/.*wall=\([^ ]*\).*/\1/' "$B/kiln.txt")
	echo "round $round: sha256sum ${s} s, kiln CIDs+provenance+metadata ${k} s ($(sed 's/.*cpu=\([^ ]*\).*/\1/' "$B/kiln.txt") s CPU)"
	best_sha=$(python3 -c "print(min($best_sha, $s))")
	best_kiln=$(python3 -c "print(min($best_kiln, $k))")
done
cat "$B/kiln.txt"
# provenance cross-check: sha256sum's hashes, concatenated in id order, hashed
prov=$(cut -d' ' -f1 "$B/sha.txt" | tr -d '\n' | sha256sum | cut -d' ' -f1)
grep -q "provenance=$prov" "$B/kiln.txt" && echo "provenance hash equals sha256sum's: ok" ||
	{ echo "provenance MISMATCH ($prov)"; exit 1; }
python3 - "$best_sha" "$best_kiln" "$bytes" <<'PY'
import sys
s, k, n = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
print(f"sha256sum {n / s / 1e6:.0f} MB/s, kiln {n / k / 1e6:.0f} MB/s (best of 2)")
print(f"ratio kiln speed / sha256sum speed = {s / k:.2f}  (target >= 0.5: {'PASS' if s / k >= 0.5 else 'FAIL'})")
PY
if [ "${ORACLE:-1}" = 1 ] && command -v node >/dev/null && [ -d "$src/tests/ipfs/node_modules" ]; then
	a=$(t)
	oi=$(node "$src/tests/ipfs/oracle.mjs" "$B/images" | tail -1 | cut -d' ' -f1)
	b=$(t)
	om=$(node "$src/tests/ipfs/oracle.mjs" "$B/metadata" | tail -1 | cut -d' ' -f1)
	c=$(t)
	grep -q "images=$oi metadata=$om " "$B/kiln.txt" && echo "CIDs equal the npm importer's: ok" ||
		{ echo "CID MISMATCH: npm images=$oi metadata=$om"; exit 1; }
	python3 - "$a" "$b" "$c" "$best_kiln" <<'PY'
import sys
a, b, c, k = map(float, sys.argv[1:])
print(f"npm ipfs-unixfs-importer: images {b - a:.2f} s + metadata {c - b:.2f} s = {c - a:.2f} s; "
      f"ratio npm time / kiln time = {(c - a) / k:.1f}")
PY
else
	[ "${ORACLE:-1}" = 1 ] && echo "SKIP: npm importer comparison (no node or tests/ipfs/node_modules: npm ci there)" ||
		echo "npm importer comparison skipped (ORACLE=0)"
fi

[ "${WRITE:-1}" = 1 ] || exit 0
# --- 2. the release as a whole: files written, synced, swapped in ---
P=$B/project-$N
if [ ! -f "$P/.kiln/catalog.db" ]; then
	echo "making a project of $N legendaries in $P (once)..."
	rm -rf "$P"
	mkdir -p "$P/art"
	python3 - "$P" "$B/images" "$N" <<'PY'
import os, sys
p, img, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(1, n + 1):
    os.symlink(f"{img}/{i}.png", f"{p}/art/{i}.png")
legs = "".join(f'  - {{name: "Piece {i}", file: art/{i}.png}}\n' for i in range(1, n + 1))
open(f"{p}/kiln.yaml", "w").write(f"""collection: {{name: Bench, symbol: BNCH, size: {n}, seed: 1}}
image: {{width: 1024, height: 1024, format: png}}
layers:
  - name: Art
    traits:
      - {{name: unused, file: art/1.png, count: 0}}
legendaries:
{legs}metadata:
  targets: [erc721, erc1155, metaplex]
  metaplex: {{creators: [{{address: "11111111111111111111111111111111", share: 100}}]}}
""")
PY
	"$build/kiln" -C "$P" plan -q && "$build/kiln" -C "$P" render -q ||
		{ echo "bench_release: could not make the project" >&2; exit 1; }
fi
best_rel=999999 best_cp=999999
for round in 1 2; do
	a=$(t); "$build/kiln" -C "$P" release --force -q; b=$(t)
	r=$(python3 -c "print(round($b - $a, 3))")
	rm -rf "$B/copy"; sync
	a=$(t); cp -r "$P/dist" "$B/copy" && sync; b=$(t)
	c=$(python3 -c "print(round($b - $a, 3))")
	echo "round $round: kiln release --force ${r} s, cp -r dist + sync ${c} s"
	best_rel=$(python3 -c "print(min($best_rel, $r))")
	best_cp=$(python3 -c "print(min($best_cp, $c))")
done
rm -rf "$B/copy"
files=$(find "$P/dist" -type f | wc -l)
mib=$(du -sm "$P/dist" | cut -f1)
python3 - "$best_rel" "$best_cp" "$files" "$mib" <<'PY'
import sys
r, c, f, m = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
print(f"release: {f} files, {m} MiB in dist/; kiln release {r:.2f} s, cp -r + sync {c:.2f} s (best of 2)")
print(f"ratio kiln release time / (cp -r + sync) time = {r / c:.2f}")
PY
