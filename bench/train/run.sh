#!/bin/sh
# bench/train: `kiln train prepare` against a Pillow script doing the same work.
#
# usage: bench/train/run.sh [-n IMAGES] [-s] [-j THREADS] [-b BUILD_DIR] [-w WORK_DIR]
#   -n  images (default 2000, the issue's size); -s quick: 50
#   -j  kiln's -j (default 2); the peer is one process
#   -b  a built kiln (default: build)   -w  scratch folder (default ${TMPDIR:-/tmp}/kiln-bench-train)
#
# The dataset: N 2048x2048 photo-like JPEGs (quality 90) drawn by make_photos.py (octave
# noise over colour gradients: soft shapes, detail, grain; 1.2-1.8 MB each). Both sides do
# the same work per image: SHA-256 of the source, decode (JPEG shrink-on-load: Pillow's
# draft(), libjpeg's DCT scaling in kiln), kohya's bucket (every image lands in 1024x1024),
# resize/centre crop, QA's pHash of the prepared pixels, the JPEG (quality 95), its SHA-256
# and the caption file; kiln also writes the manifest, dataset.toml and command.json and
# checks duplicates. Prints wall, CPU (user + sys) and peak RSS (/usr/bin/time) of each, the
# ratios peer / kiln (target: 3x wall; RSS under 500 MiB) and the load average before and
# after: the machine may be shared, so compare the ratios of one run, and CPU as well as wall.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
n=2000 jobs=2 quick=50 build=$src/build work=${TMPDIR:-/tmp}/kiln-bench-train usage_lines=7
. "$here/../options.sh"
/usr/bin/python3 -c 'import PIL' || { echo "bench/train: needs python3-pil" >&2; exit 2; }

p=$work/p
# the dataset (kept between runs of the same N; drawing 2,000 takes a few minutes)
/usr/bin/python3 "$here/make_photos.py" "$p/photos" "$n"
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
[ -f "$p/plain.png" ] || /usr/bin/python3 -c 'import sys; from PIL import Image
Image.new("RGBA", (64, 64)).save(sys.argv[1])' "$p/plain.png"
rm -rf "$p/.kiln/train" "$work/peer-out"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
/usr/bin/time -f '%e %M %U %S' -o "$work/kiln.time" "$kiln" -C "$p" train prepare bench -j "$jobs" -q
/usr/bin/time -f '%e %M %U %S' -o "$work/peer.time" /usr/bin/python3 "$here/peer.py" "$p/photos" "$work/peer-out" 1024
load1=$(cut -d' ' -f1-3 /proc/loadavg)
read kt km ku ks <"$work/kiln.time"
read pt pm pu ps <"$work/peer.time"
awk -v l0="$load0" -v l1="$load1" -v n="$n" -v j="$jobs" -v kt="$kt" -v km="$km" -v kc="$ku $ks" -v pt="$pt" -v pm="$pm" -v pc="$pu $ps" 'BEGIN {
  split(kc, a, " "); split(pc, b, " "); kcpu = a[1] + a[2]; pcpu = b[1] + b[2]
  printf "bench/train: %d photos 2048² -> 1024² buckets (load average %s before, %s after)\n", n, l0, l1
  printf "  kiln -j %d  %8.2f s wall  %8.2f s CPU (%5.1f ms an image)  peak RSS %6.1f MiB\n", j, kt, kcpu, kcpu * 1000 / n, km / 1024
  printf "  Pillow      %8.2f s wall  %8.2f s CPU (%5.1f ms an image)  peak RSS %6.1f MiB\n", pt, pcpu, pcpu * 1000 / n, pm / 1024
  printf "  ratio (Pillow / kiln): %.2fx wall, %.2fx CPU (target 3x); kiln RSS %s 500 MiB\n", pt / kt, pcpu / kcpu, km / 1024 < 500 ? "under" : "OVER"
}'
