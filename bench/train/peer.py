#!/usr/bin/python3
"""bench/train's peer: what `kiln train prepare` does to a dataset, in Pillow, one process:
for each image (sorted), SHA-256 of the file, decode (JPEG draft: Pillow's shrink-on-load, the
counterpart of libvips' thumbnail), kohya's bucket (model_util.make_bucket_resolutions and
train_util.select_bucket, restated), resize (LANCZOS, as libvips' thumbnail uses lanczos3) and
centre crop, write the JPEG (quality 95) and its caption from the template "{class_tokens},
{name}", SHA-256 of the output. It does not compute a pHash (kiln does, for duplicates).
Usage: peer.py SRC_DIR OUT_DIR RESOLUTION
"""
import hashlib
import math
import os
import sys

from PIL import Image

src, out, reso = sys.argv[1], sys.argv[2], int(sys.argv[3])
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
    stem = os.path.splitext(name)[0]
    dst = os.path.join(out, stem + ".jpg")
    im.save(dst, quality=95)
    hashlib.sha256(open(dst, "rb").read()).hexdigest()
    with open(os.path.join(out, stem + ".txt"), "w") as f:
        f.write("photo, " + stem.replace("_", " ").replace("-", " "))
