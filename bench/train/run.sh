#!/bin/sh
# bench/train: `kiln train prepare` against a Pillow script doing the same work.
#
# usage: bench/train/run.sh [-n IMAGES] [-s] [-j THREADS] [-b BUILD_DIR] [-w WORK_DIR]
#   -n  images (default 2000, the issue's size); -s quick: 50
#   -j  kiln's -j (default 2); the peer is one process
#   -b  a built kiln (default: build)   -w  scratch folder (default ${TMPDIR:-/tmp}/kiln-bench-train)
#
# The dataset: N 2048x2048 photo-like JPEGs (quality 90), drawn with the vips command: four
# 2560² bases of Gaussian noise over colour gradients, each image a different 2048² window of
# one (so no two are the same). Both sides prepare them to 1024² buckets (kohya's rules:
# every image lands in the 1024x1024 bucket), write a JPEG and a caption per image and hash
# input and output; kiln also computes QA's pHash of every prepared image (a decode) and writes
# the manifest, dataset.toml and command.json. Prints wall time and peak RSS of each (from
# /usr/bin/time) and the ratio peer / kiln (target: 3x, RSS under 500 MiB). The machine may
# be shared: compare the ratio of one run, not times across runs.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
n=2000 jobs=2 build=$src/build work=${TMPDIR:-/tmp}/kiln-bench-train
while [ $# -gt 0 ]; do
  case $1 in
    -n) n=$2; shift 2 ;;
    -s) n=50; shift ;;
    -j) jobs=$2; shift 2 ;;
    -b) build=$2; shift 2 ;;
    -w) work=$2; shift 2 ;;
    *) sed -n '2,18p' "$0" >&2; exit 2 ;;
  esac
done
kiln=$build/kiln
[ -x "$kiln" ] || { echo "bench/train: no $kiln; build kiln first" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench/train: needs /usr/bin/time" >&2; exit 2; }
command -v vips >/dev/null || { echo "bench/train: needs the vips command (libvips-tools)" >&2; exit 2; }
/usr/bin/python3 -c 'import PIL' || { echo "bench/train: needs python3-pil" >&2; exit 2; }

p=$work/p
mkdir -p "$p/photos" "$work/bases"
# --- the dataset (kept between runs of the same N) ---
have=$(ls "$p/photos" | wc -l)
if [ "$have" != "$n" ]; then
  rm -rf "$p/photos"; mkdir -p "$p/photos"
  echo "bench/train: drawing $n 2048² photos with vips" >&2
  for k in 0 1 2 3; do
    b=$work/bases
    vips xyz "$b/xy.v" 2560 2560
    vips extract_band "$b/xy.v" "$b/x.v" 0
    vips extract_band "$b/xy.v" "$b/y.v" 1
    vips linear "$b/x.v" "$b/gx.v" "0.0$((3 + k))" 20
    vips linear "$b/y.v" "$b/gy.v" 0.05 "$((10 * k))"
    vips gaussnoise "$b/n.v" 2560 2560 --mean 60 --sigma 35
    vips add "$b/gx.v" "$b/n.v" "$b/r.v"
    vips add "$b/gy.v" "$b/n.v" "$b/g.v"
    vips linear "$b/n.v" "$b/bl.v" 1.5 "$((40 * k))"
    vips bandjoin "$b/r.v $b/g.v $b/bl.v" "$b/rgb.v"
    vips cast "$b/rgb.v" "$b/base$k.v" uchar
  done
  i=0
  while [ $i -lt "$n" ]; do
    k=$((i % 4)); x=$(( (i / 4) % 23 * 22 )); y=$(( (i / 92) % 23 * 22 ))
    vips crop "$work/bases/base$k.v" "$p/photos/photo_$(printf %05d $i).jpg[Q=90]" $x $y 2048 2048
    i=$((i + 1))
  done
fi
cat >"$p/kiln.yaml" <<YAML
collection: {name: Bench, symbol: B, size: 1, seed: 1}
image: {width: 64, height: 64}
layers:
  - name: Body
    traits: [{name: Plain, file: plain.png}]
training:
  - name: bench
    base: sd_xl_base_1.0.safetensors
    trainer: kohya
    datasets: [{dir: photos, class_tokens: photo, license: CC0-1.0,
                caption: {from: template, template: "{class_tokens}, {name}"}}]
    resolution: 1024
    steps: 1000
    local: {command: [accelerate, launch, sdxl_train_network.py]}
YAML
[ -f "$p/plain.png" ] || vips black "$p/plain.png" 64 64 --bands 4
rm -rf "$p/.kiln/train" "$work/peer-out"
/usr/bin/time -f '%e %M %U %S' -o "$work/kiln.time" "$kiln" -C "$p" train prepare bench -j "$jobs" -q
/usr/bin/time -f '%e %M %U %S' -o "$work/peer.time" /usr/bin/python3 "$here/peer.py" "$p/photos" "$work/peer-out" 1024
read kt km ku ks <"$work/kiln.time"
read pt pm pu ps <"$work/peer.time"
awk -v n="$n" -v j="$jobs" -v kt="$kt" -v km="$km" -v kc="$ku $ks" -v pt="$pt" -v pm="$pm" -v pc="$pu $ps" 'BEGIN {
  split(kc, a, " "); split(pc, b, " "); kcpu = a[1] + a[2]; pcpu = b[1] + b[2]
  printf "bench/train: %d photos 2048² -> 1024² buckets\n", n
  printf "  kiln -j %d  %8.2f s wall  %8.2f s CPU  peak RSS %6.1f MiB\n", j, kt, kcpu, km / 1024
  printf "  Pillow      %8.2f s wall  %8.2f s CPU  peak RSS %6.1f MiB\n", pt, pcpu, pm / 1024
  printf "  ratio (Pillow / kiln): %.2fx wall, %.2fx CPU (target 3x); kiln RSS %s 500 MiB\n", pt / kt, pcpu / kcpu, km / 1024 < 500 ? "under" : "OVER"
}'
