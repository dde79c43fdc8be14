#!/bin/sh
# bench/compose: kiln's compose engine against its peers and its limit, in one run.
#
# usage: bench/compose/run.sh [-n EDITIONS] [-l LEVEL] [-b BUILD_DIR] [-w WORK_DIR] [--no-peers]
#   -n  editions: 1000 (quick, default) or 10000 (the issue's target size), any size the plan allows
#   -l  kiln's PNG compression level written into kiln.yaml (default 6, kiln's own; docs/compose.md)
#   -b  a built kiln (default: build); bench_encode is compiled against its libkiln.a
#   -w  scratch folder (default ${TMPDIR:-/tmp}/kiln-bench-compose), kept for inspection
#
# Renders the layer set of ../shared/peers/make_layers.py (6 layers, 1024x1024, mostly
# transparent) three ways and prints wall time, CPU time, peak RSS and output size for each,
# and the ratios:
#   kiln   `kiln init --from-hashlips` (not timed), then `kiln plan` + `kiln render --threads 2`
#          (both timed and added up: the peers pick their traits inside their timed run)
#   sharp  ../shared/peers/sharp_compose.js (npm sharp, installed into bench/compose/node_modules)
#   pil    ../shared/peers/pil_compose.py on 2 processes (Debian python3-pil)
#   limit  bench_encode: kiln's PNG encoder alone on the same final pixels, handed over as
#          ready RGB rows, 2 threads; its wall time is the busier thread's encode CPU time
#   limit + files written: the same, each image also put into a content store as kiln does
#          (temporary name, rename, a syncfs per 64): on this VM's ext4 creating 10,000 files
#          costs 2.5-8 s of kernel time, which kiln pays and the encode-only limit does not
# The peers also write a JSON file per edition in their timed run, kiln does not (that is
# `kiln release`); at ~0.1 ms a file it does not move the ratios. Pillow's RSS is the larger
# of its two processes (/usr/bin/time reports the largest child).
# Timings come from /usr/bin/time (children's rusage). The machine may be shared: compare the
# ratios of one run, not absolute times across runs.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
peers=${KILN_PEERS:-$src/../shared/peers}
n=1000 level=6 build=$src/build work=${TMPDIR:-/tmp}/kiln-bench-compose peers_on=1
while [ $# -gt 0 ]; do
  case $1 in
    -n) n=$2; shift 2 ;;
    -l) level=$2; shift 2 ;;
    -b) build=$2; shift 2 ;;
    -w) work=$2; shift 2 ;;
    --no-peers) peers_on=0; shift ;;
    *) sed -n '2,20p' "$0" >&2; exit 2 ;;
  esac
done
kiln=$build/kiln
[ -x "$kiln" ] && [ -f "$build/libkiln.a" ] || { echo "bench/compose: no $kiln or $build/libkiln.a; build kiln first (make, or cmake --build $build)" >&2; exit 2; }
[ -d "$peers" ] || { echo "bench/compose: no peers folder $peers (set KILN_PEERS)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench/compose: needs /usr/bin/time (apt-get install time)" >&2; exit 2; }

# --- what the peers need (installed here, never in the project's build) ---
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
if ! /usr/bin/python3 -c 'import PIL' 2>/dev/null; then
  echo "bench/compose: installing python3-pil" >&2
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq python3-pil >/dev/null
fi
if [ $peers_on = 1 ] && [ ! -d "$here/node_modules/sharp" ]; then
  command -v npm >/dev/null || { echo "bench/compose: needs node and npm for the sharp peer (or --no-peers)" >&2; exit 2; }
  echo "bench/compose: npm install sharp (into bench/compose/node_modules)" >&2
  (cd "$here" && npm install --no-save --no-package-lock --no-audit --no-fund --prefix "$here" sharp >/dev/null)
fi

# --- the limit's program, against this build's libkiln ---
mkdir -p "$work"
deps=$(pkg-config --libs vips libfyaml jansson sqlite3 libcurl libmicrohttpd libcrypto imagequant libdeflate zlib libxxhash libpng16 clp cbc)
${CC:-cc} -std=gnu11 -O2 -D_GNU_SOURCE -I"$src/include" -I"$src/lib" $(pkg-config --cflags vips) \
  "$here/bench_encode.c" "$build/libkiln.a" $deps -lpthread -lm -o "$work/bench_encode"

# --- inputs: the peers' layer set, a kiln project of n editions ---
if [ ! -f "$work/layers/.done" ]; then
  /usr/bin/python3 "$peers/make_layers.py" "$work/layers" >/dev/null
  touch "$work/layers/.done"
fi
# The last run's outputs are moved aside and deleted after this run's timings: ext4 scans
# recently deleted inodes (recently_deleted(), 30 s) when it creates files, which made the
# first program to write 10,000 files after an rm -rf pay ~0.5 ms of kernel time a file.
trash=$work/trash.$$
mkdir -p "$trash"
for d in kiln out_sharp out_pil limit_store; do [ -e "$work/$d" ] && mv "$work/$d" "$trash/"; done
mkdir -p "$work/kiln"
"$kiln" -C "$work/kiln" init --from-hashlips "$work/layers" \
  --order Background,Body,Eyes,Mouth,Hat,Accessory --size "$n" --name bench >/dev/null
sed -i "s/^  format: png\$/  format: png\n  compression: $level/" "$work/kiln/kiln.yaml"
grep -q "^  compression: $level\$" "$work/kiln/kiln.yaml" ||
  { echo "bench/compose: could not set compression: $level in $work/kiln/kiln.yaml (kiln init's image block changed?)" >&2; exit 1; }

# run NAME CMD...: /usr/bin/time -> $work/NAME.time: wall user sys maxrss_kib cpu%
run() {
  name=$1; shift
  echo "bench/compose: $name ..." >&2
  /usr/bin/time -f "%e %U %S %M %P" -o "$work/$name.time" "$@" >"$work/$name.log" 2>&1 || {
    echo "bench/compose: $name failed:" >&2; tail -5 "$work/$name.log" >&2; exit 1; }
}
bytes() { find "$1" -type f ! -name '*.json' -printf '%s\n' | awk '{s+=$1} END {print s+0}'; }

run plan "$kiln" -C "$work/kiln" plan
run render "$kiln" -C "$work/kiln" render --threads 2 -q
# kiln's row: plan + render (wall, user, sys added; RSS and cpu% the larger / the render's)
awk '{ w += $1; u += $2; s += $3; if ($4 > m) m = $4; p = $5 } END { printf "%.2f %.2f %.2f %d %s\n", w, u, s, m, p }' \
  "$work/plan.time" "$work/render.time" >"$work/kiln.time"
if [ $peers_on = 1 ]; then
  run sharp sh -c "cd '$here' && exec node '$peers/sharp_compose.js' $n '$work/layers' '$work/out_sharp' 2"
  run pil /usr/bin/python3 "$peers/pil_compose.py" "$n" "$work/layers" "$work/out_pil" 2
fi
echo "bench/compose: limit (encode only) ..." >&2
"$work/bench_encode" "$work/kiln" 2 >"$work/limit.out"
echo "bench/compose: limit with the files written (encode + store) ..." >&2
"$work/bench_encode" "$work/kiln" 2 "$work/limit_store" >"$work/limitw.out"

kb=$(bytes "$work/kiln/.kiln/store")
set -- $(cat "$work/limit.out")
lfiles=$2 lbad=$4 lcpu=$6 lwall=$8
set -- $(cat "$work/limitw.out")
[ "$4" = 0 ] || { echo "bench/compose: the encode + store limit failed" >&2; exit 1; }
wcpu=$6 wwall=$8
[ "$lfiles" = "$n" ] || { echo "bench/compose: $lfiles images in the store, expected $n" >&2; exit 1; }
[ "$lbad" = 0 ] || { echo "bench/compose: $lbad images kiln wrote do not decode" >&2; exit 1; }
sb=0 pb=0
[ $peers_on = 1 ] && { sb=$(bytes "$work/out_sharp/images"); pb=$(bytes "$work/out_pil/images"); }

awk -v n="$n" -v level="$level" -v kb="$kb" -v sb="$sb" -v pb="$pb" -v lcpu="$lcpu" -v lwall="$lwall" -v wcpu="$wcpu" -v wwall="$wwall" \
    -v peers="$peers_on" -v kt="$(cat "$work/kiln.time")" \
    -v st="$( [ $peers_on = 1 ] && cat "$work/sharp.time" || echo '0 0 0 0 0%')" \
    -v pt="$( [ $peers_on = 1 ] && cat "$work/pil.time" || echo '0 0 0 0 0%')" '
function row(name, t, bytes,   f) {
  split(t, f, " ")
  printf "%-26s %9.2f %9.2f %8.0f %6s %10.1f %9.1f\n", name, f[1], f[2] + f[3], f[4] / 1024, f[5], bytes / 1048576, bytes / n / 1024
  return f[1]
}
BEGIN {
  printf "compose benchmark: %d editions, 1024x1024, 6 layers; kiln PNG level %d\n\n", n, level
  printf "%-26s %9s %9s %8s %6s %10s %9s\n", "", "wall s", "cpu s", "RSS MiB", "cpu%", "MiB out", "KiB/img"
  kw = row("kiln plan+render, 2 thr", kt, kb)
  if (peers) {
    sw = row("sharp (npm), 2 in flight", st, sb)
    pw = row("Pillow, 2 processes", pt, pb)
  }
  printf "%-26s %9.2f %9.2f %8s %6s\n", "limit: kiln encoder only", lwall, lcpu, "-", "-"
  printf "%-26s %9.2f %9.2f %8s %6s\n", "limit + files written", wwall, wcpu, "-", "-"
  printf "\n"
  split(kt, k, " "); kc = k[2] + k[3]
  if (peers) {
    split(st, s, " "); split(pt, p, " ")
    printf "kiln vs sharp:  %.2fx faster in wall time, %.2fx in CPU time (target >= 5)\n", sw / kw, (s[2] + s[3]) / kc
    printf "kiln vs Pillow: %.2fx faster in wall time, %.2fx in CPU time (target >= 10)\n", pw / kw, (p[2] + p[3]) / kc
    printf "kiln size / sharp size: %.3f (target <= 1.10): %.1f vs %.1f MiB\n", kb / sb, kb / 1048576, sb / 1048576
  }
  printf "kiln / limit:   %.2fx the encode-only wall time, %.2fx its CPU time (target <= 1.5)\n", kw / lwall, kc / lcpu
  printf "kiln / (limit + files written): %.2fx its wall time, %.2fx its CPU time\n", kw / wwall, kc / wcpu
  printf "kiln peak RSS:  %.0f MiB (target < 1024)\n", k[4] / 1024
  printf "(cpu%% is of one core: 200%% = both cores busy. On a shared machine the CPU ratios are the steadier ones.)\n"
}'
rm -rf "$trash"
