#!/bin/sh
# bench/compose/options.sh: what each `image:` output option costs on the benchmark set.
#
# usage: bench/compose/options.sh [-n EDITIONS] [-b BUILD_DIR] [-w WORK_DIR]
#   -n  editions (default 1000), -b a built kiln (default: build), -w scratch folder (default
#       ${TMPDIR:-/tmp}/kiln-bench-options)
#
# Draws the layer set of ../shared/peers/make_layers.py once, imports it with
# `kiln init --from-hashlips`, and for every setting below replaces the image: block's
# options, plans, and renders all editions from scratch with `kiln render --threads 2` (a new
# store each time, so nothing is reused between settings). Prints one row a setting: size an
# image, CPU an image (user + sys of the whole render divided by the editions: it includes the
# one-time decoding of the 57 layer files, ~0.6 s CPU), wall time, peak RSS.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
peers=${KILN_PEERS:-$src/../shared/peers}
n=1000 build=$src/build work=${TMPDIR:-/tmp}/kiln-bench-options usage_lines=13
. "$here/../options.sh"
mkdir -p "$work"
if [ ! -f "$work/layers/.done" ]; then
  /usr/bin/python3 "$peers/make_layers.py" "$work/layers" >/dev/null
  touch "$work/layers/.done"
fi

# one setting a line: a label, then the YAML lines of the image: block after format (';'
# between lines)
settings='png, compression 1|  compression: 1
png, compression 2|  compression: 2
png, compression 6 (default)|  compression: 6
png, compression 9|  compression: 9
png, compression 12|  compression: 12
png, filter up (6)|  filter: up
png, filter paeth (6)|  filter: paeth
png, alpha keep (6)|  alpha: keep
png, palette|  palette: true
png, palette 64 colours|  palette: {colors: 64}
png, scale 2|  scale: 2
png, pixelate 16|  pixelate: 16
webp lossless|  lossless: true
webp quality 90|  lossless: false;  quality: 90
jpeg quality 90|  quality: 90'

printf "%s editions of bench/compose's layer set, 1024x1024, kiln render --threads 2\n\n" "$n"
printf "%-30s %10s %12s %8s %8s\n" "image: setting" "KiB/img" "CPU ms/img" "wall s" "RSS MiB"
trash=$work/trash.$$
mkdir -p "$trash"
i=0
printf '%s\n' "$settings" | while IFS='|' read -r label opts; do
  i=$((i + 1))
  case $label in webp*) fmt=webp ;; jpeg*) fmt=jpeg ;; *) fmt=png ;; esac
  p=$work/p$i
  [ -e "$p" ] && mv "$p" "$trash/"
  mkdir -p "$p"
  "$kiln" -C "$p" init --from-hashlips "$work/layers" \
    --order Background,Body,Eyes,Mouth,Hat,Accessory --size "$n" --name bench >/dev/null
  # the image: block's format line, then this setting's options
  lines=$(printf '%s' "$opts" | sed 's/;/\\n/g')
  sed -i "s/^  format: png\$/  format: $fmt\n$lines/" "$p/kiln.yaml"
  "$kiln" -C "$p" plan -q >/dev/null
  /usr/bin/time -f "%e %U %S %M" -o "$p.time" "$kiln" -C "$p" render -q --threads 2
  bytes=$(find "$p/.kiln/store" -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}')
  set -- $(cat "$p.time")
  awk -v l="$label" -v b="$bytes" -v n="$n" -v w="$1" -v u="$2" -v s="$3" -v m="$4" \
    'BEGIN { printf "%-30s %10.1f %12.2f %8.2f %8.0f\n", l, b / n / 1024, (u + s) * 1000 / n, w, m / 1024 }'
  mv "$p" "$trash/"
done
rm -rf "$trash"
