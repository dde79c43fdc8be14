#!/usr/bin/python3
"""bench/train's dataset: N photo-like 2048x2048 JPEGs (quality 90), drawn with Pillow alone.

A photo's spectrum falls off with frequency (large soft shapes, smaller detail, fine grain),
so each of 8 bases (2560x2560) is a sum of Gaussian noise fields at 5 scales (40² to 2560²,
each upscaled bicubically, amplitude falling 3-fold per octave) over a colour gradient, the three
channels sharing most of the luminance. Image i is a 2048² window of base i % 8 at an offset
and orientation of its own (8 x 8 looks; windows of one look overlap, as burst shots do).
Pillow's noise comes from the C library's rand(), unseeded: the same N gives the same files
on one machine. A noise-only image (what the first version drew) is
no photo: its JPEG is 3-4 times as large and decoding it is all entropy decoding.
Usage: make_photos.py OUT_DIR N
"""
import os
import random
import sys

from PIL import Image, ImageChops

out, n = sys.argv[1], int(sys.argv[2])
S, W = 2560, 2048
os.makedirs(out, exist_ok=True)


def field(sigma):
    """a grey field of 128 + octave noise"""
    acc = Image.new("L", (S, S), 128)
    for size, amp in ((40, sigma), (160, sigma / 3), (640, sigma / 8), (S, sigma / 16)):
        nz = Image.effect_noise((size, size), amp)
        if size != S:
            nz = nz.resize((S, S), Image.BICUBIC)
        acc = ImageChops.add(acc, nz, 1.0, -128)
    return acc


def base(k):
    lum = field(70)
    grad = Image.linear_gradient("L").resize((S, S), Image.BICUBIC).rotate(45 * k)
    chans = []
    for c in range(3):
        own = field(25)
        ch = ImageChops.add(lum, own, 1.0, -128)
        ch = ImageChops.add(ch, grad.point(lambda v, c=c: 64 + (v * (c + 1 + k % 3)) // 12),
                            1.0, -100)
        chans.append(ch)
    return Image.merge("RGB", chans)


have = sorted(f for f in os.listdir(out) if f.endswith(".jpg"))
if len(have) != n:
    for f in have:
        os.unlink(os.path.join(out, f))
    bases = {}
    orient = [None, Image.FLIP_LEFT_RIGHT, Image.FLIP_TOP_BOTTOM, Image.ROTATE_90,
              Image.ROTATE_180, Image.ROTATE_270, Image.TRANSPOSE, Image.TRANSVERSE]
    for i in range(n):
        k = i % 8
        if k not in bases:
            bases[k] = base(k)
        rng = random.Random(1000 + i)
        x, y = rng.randrange(S - W), rng.randrange(S - W)
        im = bases[k].crop((x, y, x + W, y + W))
        o = orient[(i // 8) % 8]
        if o is not None:
            im = im.transpose(o)
        im.save(os.path.join(out, "photo_%05d.jpg" % i), quality=90)
