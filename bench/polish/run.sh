#!/bin/sh
# bench/polish/run.sh: the polish stage against its peers, on the owls example.
#
# usage: bench/polish/run.sh [-b BUILD_DIR] [-w WORK_DIR] [-s SCALE] [-n COLORS]
#                            [-N TOKENS] [-T TRACE_TOKENS] [-j THREADS]
#   -s  image.scale of the renders (default 4: 1024 x 1024 images), -n trace colours (8)
#   -N  tokens of the upscale and pixels benches (default 60: the owls; the issue's scale is
#       1000: above 60 the owls get two more layers from layers.py to plan that many)
#   -T  tokens of the trace bench (default: as -N; the issue's scale is 100)
#   -j  kiln's worker threads (default 1, the peer runs one process at a time)
#   -m  the benches to run, of "upscale pixels trace" (default: all three)
#
# 1. upscale x2 lanczos: `kiln polish -j 1` against `vips resize IN OUT 2 --kernel lanczos3`
#    run once per file over the same rendered images (one process per image, as a script
#    would). The same pixels (tests/cli/polish_owls.sh checks it); kiln also writes a PNG
#    through its own encoder and records each step.
# 2. vectorize pixels (256 px owls, pixel art): `kiln polish -j 1` against the potrace CLI run
#    on one PBM mask per exact colour (the masks are made first by masks.py and not timed:
#    the peer's quantise is not counted), SVG bytes compared too.
# 3. vectorize trace (N colours): the same, the masks of the N most frequent colours.
# Prints wall and CPU seconds (user + sys), their ratio (peer / kiln: above 1, kiln is
# faster) and peak RSS (kiln's, from /usr/bin/time). Not a test: figures only.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=$src/build work=${TMPDIR:-/tmp}/kiln-bench-polish scale=4 colors=8 ntok=60 ttok= jobs=1 modes='upscale pixels trace'
while [ $# -gt 0 ]; do
  case $1 in
    -b) build=$2; shift 2 ;;
    -w) work=$2; shift 2 ;;
    -s) scale=$2; shift 2 ;;
    -n) colors=$2; shift 2 ;;
    -N) ntok=$2; shift 2 ;;
    -T) ttok=$2; shift 2 ;;
    -j) jobs=$2; shift 2 ;;
    -m) modes=$2; shift 2 ;;
    *) sed -n '2,23p' "$0" >&2; exit 2 ;;
  esac
done
kiln=$build/kiln
[ -x "$kiln" ] || { echo "run.sh: no $kiln; build kiln first" >&2; exit 2; }
T=/usr/bin/time
rm -rf "$work"
mkdir -p "$work"
# time FILE CMD...: run, append "wall cpu rss_kb" to FILE
timed() { out=$1; shift; $T -f "%e %U %S %M" -o "$out.t" "$@" >/dev/null 2>&1; awk '{printf "%s %.2f %s\n", $1, $2 + $3, $4}' "$out.t" >"$out"; }
project() { # dir scale polish-yaml tokens
  cp -r "$src/examples/owls" "$1"
  sed -i "s/^image: {width: 256, height: 256, format: png}/image: {width: 256, height: 256, format: png, scale: $2}/" "$1/kiln.yaml"
  if [ "$4" -ne 60 ]; then
    /usr/bin/python3 "$here/layers.py" "$1" >"$1/extra.yaml"
    sed -i -e "s/size: 60,/size: $4,/" -e "/^# Rules every generated token/e cat $1/extra.yaml" "$1/kiln.yaml"
  fi
  printf '%s\n' "$3" >>"$1/kiln.yaml"
  "$kiln" -C "$1" plan -q && "$kiln" -C "$1" render -q
  mkdir -p "$1/renders"
  sqlite3 "$1/.kiln/catalog.db" "select id, image from items" | while IFS='|' read -r id img; do
    cp "$1/.kiln/store/$(echo "$img" | cut -c1-2)/$img" "$1/renders/$id.png"; done
}
row() { # label kiln-file peer-file
  set -- "$1" $(cat "$2") $(cat "$3")
  awk -v l="$1" -v kw="$2" -v kc="$3" -v kr="$4" -v pw="$5" -v pc="$6" -v pr="$7" 'BEGIN {
    printf "%-22s kiln %6.2f s wall %6.2f s cpu %7.1f MiB | peer %6.2f s wall %6.2f s cpu | cpu ratio %.2f, wall ratio %.2f\n",
      l, kw, kc, kr / 1024, pw, pc, pc / (kc > 0 ? kc : 0.01), pw / (kw > 0 ? kw : 0.01) }'
}

# 1. upscale
case " $modes " in *" upscale "*)
project "$work/up" "$scale" 'polish: [{upscale: {factor: 2, method: lanczos}}]' "$ntok"
n=$(ls "$work/up/renders" | wc -l)
timed "$work/up.kiln" "$kiln" -C "$work/up" polish -q -j "$jobs"
mkdir -p "$work/up/vips"
timed "$work/up.peer" sh -c "for f in $work/up/renders/*.png; do vips resize \$f $work/up/vips/\$(basename \$f) 2 --kernel lanczos3; done"
echo "polish bench: $n owls, renders $((256 * scale)) px, kiln -j $jobs, $(nproc) cores, load $(cut -d" " -f1-3 /proc/loadavg)"
row "upscale x2 lanczos" "$work/up.kiln" "$work/up.peer" ;;
esac

# 2, 3. vectorize
for mode in pixels trace; do
  case " $modes " in *" $mode "*) ;; *) continue ;; esac
  if [ $mode = pixels ]; then y='polish: [{vectorize: {mode: pixels}}]'; nopt=; nt=$ntok; else
    y="polish: [{vectorize: {mode: trace, colors: $colors}}]"; nopt="-n $colors"; nt=${ttok:-$ntok}; fi
  project "$work/$mode" 1 "$y" "$nt"
  timed "$work/$mode.kiln" "$kiln" -C "$work/$mode" polish -q -j "$jobs"
  /usr/bin/python3 "$here/masks.py" "$work/$mode/renders" "$work/$mode/masks" $nopt
  timed "$work/$mode.peer" sh -c "for m in $work/$mode/masks/*.pbm; do potrace -s \$m -o \$m.svg; done"
  kb=$(sqlite3 "$work/$mode/.kiln/catalog.db" "select sum(bytes) from polish_steps")
  pb=$(cat "$work/$mode/masks/"*.svg | wc -c)
  row "vectorize $mode ($nt)" "$work/$mode.kiln" "$work/$mode.peer"
  echo "  SVG bytes: kiln $kb, potrace $pb (one SVG per colour; kiln one per image)"
done
