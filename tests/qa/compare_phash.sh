#!/bin/sh
# Compare kiln's dHash/pHash with imagehash's (tests/qa/imagehash_oracle.py) bit for bit on
# a generated set of 250+ varied images (tests/qa/gen_phash_images.py).
# usage: tests/qa/compare_phash.sh [BUILD_DIR]      (default: build; needs libkiln.a built)
# Needs /usr/bin/python3 with PIL, numpy, scipy (Debian: python3-pil python3-numpy python3-scipy).
# Prints per-hash mismatch counts; exit 1 when any PNG hash differs. JPEG files are reported
# apart (Pillow's and libvips' JPEG decoders may differ, which is not a hashing difference).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${1:-$src/build}
[ -f "$build/libkiln.a" ] || { echo "compare_phash: no $build/libkiln.a; build kiln first" >&2; exit 2; }
tmp=${TMPDIR:-/tmp}/kiln-compare-phash.$$
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/img"
deps=$(pkg-config --cflags --libs vips libfyaml jansson sqlite3 libcurl libmicrohttpd libcrypto imagequant libdeflate zlib libpng16)
${CC:-cc} -std=gnu11 -O2 -I"$src/include" -I"$src/lib" "$here/phash_tool.c" "$build/libkiln.a" $deps -lpthread -lm -o "$tmp/phash_tool"
n=$(/usr/bin/python3 "$here/gen_phash_images.py" "$tmp/img" --jpeg)
ls "$tmp/img" | sed "s|^|$tmp/img/|" > "$tmp/list"
/usr/bin/python3 "$here/imagehash_oracle.py" - < "$tmp/list" | sort > "$tmp/oracle"
"$tmp/phash_tool" - < "$tmp/list" | sort > "$tmp/kiln" || true
awk -v n="$n" '
  function bits(a, b,   i, x, y, c) {
    c = 0
    for (i = 1; i <= 16; i++) {
      x = index("0123456789abcdef", substr(a, i, 1)) - 1
      y = index("0123456789abcdef", substr(b, i, 1)) - 1
      while (x > 0 || y > 0) { if (x % 2 != y % 2) c++; x = int(x / 2); y = int(y / 2) }
    }
    return c
  }
  NR == FNR { od[$1] = $2; op[$1] = $3; next }
  {
    f = $1; jpg = (f ~ /\.jpg$/)
    if ($2 == "ERROR") { err++; print "ERROR " f; next }
    if (jpg) { nj++ } else { np++ }
    bd = bits($2, od[f]); bp = bits($3, op[f])
    if (bd) { if (jpg) jd++; else md++; mbd += bd; print "dhash differs: " f " kiln " $2 " imagehash " od[f] " (" bd " bits)" }
    if (bp) { if (jpg) jp++; else mp++; mbp += bp; print "phash differs: " f " kiln " $3 " imagehash " op[f] " (" bp " bits)" }
  }
  END {
    printf "PNG:  %d images, dhash mismatches %d, phash mismatches %d (%d + %d differing bits)\n", np, md, mp, mbd + 0, mbp + 0
    printf "JPEG: %d images, dhash mismatches %d, phash mismatches %d\n", nj, jd, jp
    if (err) printf "errors: %d\n", err
    if (np < 200) printf "only %d PNG images compared: the generator or the oracle failed (python3-numpy, python3-scipy?)\n", np
    exit (md || mp || err || np < 200) ? 1 : 0
  }' "$tmp/oracle" "$tmp/kiln"
