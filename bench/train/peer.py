#!/usr/bin/python3
"""bench/train's peer: what `kiln train prepare` does to a dataset, in Pillow, one process:
for each image (sorted), SHA-256 of the file, decode (JPEG draft: Pillow's shrink-on-load, the
counterpart of libvips' thumbnail), kohya's bucket (model_util.make_bucket_resolutions and
train_util.select_bucket, restated), resize (LANCZOS, as libvips' thumbnail uses lanczos3) and
centre crop, the pHash of the cropped pixels (as kiln takes it, for near duplicates: Python
imagehash's phash restated without NumPy/SciPy, which are not installed: grey, LANCZOS to
32x32, SciPy's unnormalised DCT-II down the columns then along the rows, the top-left 8x8
against their median), write the JPEG (quality 95) and its caption from the template
"{class_tokens}, {name}", SHA-256 of the output. Prints "file phash" lines when -v is given
(to check them against kiln's manifest).
Usage: peer.py [-v] SRC_DIR OUT_DIR RESOLUTION
"""
import hashlib
import math
import os
import sys

from PIL import Image

verbose = sys.argv[1] == "-v"
if verbose:
    del sys.argv[1]
src, out, reso = sys.argv[1], sys.argv[2], int(sys.argv[3])
COS = [[math.cos(math.pi * k * (2 * n + 1) / 64) for n in range(32)] for k in range(8)]


def phash(im):
    g = im.convert("L").resize((32, 32), Image.LANCZOS)
    px = list(g.getdata())
    rows = [px[r * 32:(r + 1) * 32] for r in range(32)]
    # axis 0 (down each column), the 8 lowest frequencies
    d0 = [[2 * sum(COS[k][n] * rows[n][c] for n in range(32)) for c in range(32)]
          for k in range(8)]
    low = [2 * sum(COS[l][m] * d0[k][m] for m in range(32)) for k in range(8) for l in range(8)]
    srt = sorted(low)
    med = (srt[31] + srt[32]) / 2
    h = 0
    for v in low:
        h = (h << 1) | (v > med)
    return h


os.makedirs(out, exist_ok=True)
area = reso * reso
resos = {(int(math.sqrt(area) // 64) * 64,) * 2}
w = 256
while w <= 2048:
    h = min(2048, int((area // w) // 64) * 64)
    if h >= 256:
        resos |= {(w, h), (h, w)}
    w += 64
resos = sorted(resos)
ratios = [a / b for a, b in resos]
for name in sorted(os.listdir(src)):
    path = os.path.join(src, name)
    data = open(path, "rb").read()
    src_sha = hashlib.sha256(data).hexdigest()
    im = Image.open(path)
    sw, sh = im.size
    ar = sw / sh
    if (sw, sh) in resos:
        bw, bh = sw, sh
    else:
        errs = [abs(r - ar) for r in ratios]
        bw, bh = resos[errs.index(min(errs))]
    scale = bh / sh if ar > bw / bh else bw / sw
    rw, rh = int(sw * scale + 0.5), int(sh * scale + 0.5)
    im.draft("RGB", (rw, rh))
    im = im.convert("RGB").resize((rw, rh), Image.LANCZOS)
    left, top = (rw - bw) // 2, (rh - bh) // 2
    im = im.crop((left, top, left + bw, top + bh))
    ph = phash(im)
    if verbose:
        print(name, "%016x" % ph)
    stem = os.path.splitext(name)[0]
    dst = os.path.join(out, stem + ".jpg")
    im.save(dst, quality=95)
    hashlib.sha256(open(dst, "rb").read()).hexdigest()
    with open(os.path.join(out, stem + ".txt"), "w") as f:
        f.write("photo, " + stem.replace("_", " ").replace("-", " "))
