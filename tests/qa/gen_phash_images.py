#!/usr/bin/python3
"""Write a deterministic set of varied test images for compare_phash.sh.

usage: gen_phash_images.py OUT_DIR [--jpeg]

PNG (8-bit): gradients (linear, diagonal, radial), uniform and blurred noise, random shapes,
solid colours, mirror-symmetric pictures (many DCT terms are exactly zero there: the hard
case for pHash's median), stripes and checkerboards, text, photo-like mixes; modes RGB, RGBA
(with hidden colour under alpha 0), L, LA, P (palette, some with transparency) and 1; sizes
from 1x1 and 9x8 up to 1024x1024, odd and extreme aspect ratios. With --jpeg a few JPEGs too
(decoder differences between libjpeg builds are possible there, so they are counted apart).
"""
import os
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

FIXED_SIZES = [(9, 8), (8, 8), (1, 1), (2, 3), (3, 2), (10, 9), (32, 32), (33, 31), (31, 33),
               (64, 64), (100, 37), (37, 100), (1024, 1024), (1000, 1), (1, 1000), (513, 257),
               (256, 256), (300, 300), (999, 17), (18, 18), (72, 64), (640, 480), (1023, 769)]
MODES = ['RGB', 'RGBA', 'L', 'LA', 'P', 'PA', '1']


def rng_size(r):
    if r.rand() < 0.5:
        return FIXED_SIZES[r.randint(len(FIXED_SIZES))]
    w = int(np.exp(r.uniform(np.log(9), np.log(1024))))
    h = int(np.exp(r.uniform(np.log(8), np.log(1024))))
    return max(w, 1), max(h, 1)


def gradient(r, w, h):
    x = np.linspace(0, 1, w)[None, :]
    y = np.linspace(0, 1, h)[:, None]
    kind = r.randint(4)
    if kind == 0:
        t = x + 0 * y
    elif kind == 1:
        t = y + 0 * x
    elif kind == 2:
        t = (x * r.uniform(-1, 1) + y * r.uniform(-1, 1))
    else:
        cx, cy = r.uniform(0, 1, 2)
        t = np.sqrt((x - cx) ** 2 + (y - cy) ** 2)
    t = (t - t.min()) / (np.ptp(t) or 1)
    c0, c1 = r.randint(0, 256, 3), r.randint(0, 256, 3)
    a = c0[None, None, :] * (1 - t[..., None]) + c1[None, None, :] * t[..., None]
    return Image.fromarray(a.round().astype(np.uint8), 'RGB')


def noise(r, w, h):
    a = r.randint(0, 256, (h, w, 3)).astype(np.uint8)
    im = Image.fromarray(a, 'RGB')
    if r.rand() < 0.5:
        im = im.filter(ImageFilter.GaussianBlur(r.uniform(0.5, max(1, min(w, h) / 8))))
    return im


def shapes(r, w, h):
    im = Image.new('RGB', (w, h), tuple(int(v) for v in r.randint(0, 256, 3)))
    d = ImageDraw.Draw(im)
    for _ in range(r.randint(1, 12)):
        x0, x1 = sorted(r.randint(-w // 4, w + w // 4 + 1, 2))
        y0, y1 = sorted(r.randint(-h // 4, h + h // 4 + 1, 2))
        col = tuple(int(v) for v in r.randint(0, 256, 3))
        k = r.randint(3)
        if k == 0:
            d.rectangle([x0, y0, x1, y1], fill=col)
        elif k == 1:
            d.ellipse([x0, y0, x1, y1], fill=col)
        else:
            pts = [(int(r.randint(0, w + 1)), int(r.randint(0, h + 1))) for _ in range(3 + r.randint(4))]
            d.polygon(pts, fill=col)
    return im


def solid(r, w, h):
    return Image.new('RGB', (w, h), tuple(int(v) for v in r.randint(0, 256, 3)))


def symmetric(r, w, h):
    base = [gradient, noise, shapes][r.randint(3)](r, w, h)
    a = np.asarray(base).copy()
    k = r.randint(3)
    if k in (0, 2):
        a[:, w - w // 2:] = a[:, :w // 2][:, ::-1]
    if k in (1, 2):
        a[h - h // 2:, :] = a[:h // 2, :][::-1, :]
    return Image.fromarray(a, 'RGB')


def stripes(r, w, h):
    period = r.randint(1, 17)
    x = np.arange(w)[None, :]
    y = np.arange(h)[:, None]
    k = r.randint(3)
    if k == 0:
        t = (x // period) % 2 + 0 * y
    elif k == 1:
        t = (y // period) % 2 + 0 * x
    else:
        t = ((x // period) + (y // period)) % 2
    c0, c1 = r.randint(0, 256, 3), r.randint(0, 256, 3)
    a = np.where(t[..., None] == 1, c1[None, None, :], c0[None, None, :]).astype(np.uint8)
    return Image.fromarray(a, 'RGB')


def text(r, w, h):
    im = Image.new('RGB', (w, h), tuple(int(v) for v in r.randint(0, 256, 3)))
    d = ImageDraw.Draw(im)
    for _ in range(r.randint(1, 6)):
        d.text((int(r.randint(0, w)), int(r.randint(0, h))), 'kiln %d' % r.randint(1000),
               fill=tuple(int(v) for v in r.randint(0, 256, 3)))
    return im


def photo(r, w, h):
    a = np.asarray(gradient(r, w, h)).astype(np.int32)
    b = np.asarray(shapes(r, w, h)).astype(np.int32)
    c = np.asarray(noise(r, w, h)).astype(np.int32)
    m = (a * 4 + b * 3 + c) // 8
    return Image.fromarray(m.clip(0, 255).astype(np.uint8), 'RGB')


KINDS = [gradient, noise, shapes, solid, symmetric, stripes, text, photo]


def to_mode(r, im, mode):
    w, h = im.size
    if mode == 'RGB':
        return im
    if mode == 'RGBA':
        alpha = Image.fromarray(r.randint(0, 256, (h, w)).astype(np.uint8), 'L')
        if r.rand() < 0.5:  # hard mask: colour hidden under alpha 0 must still count
            alpha = alpha.point(lambda v: 0 if v < 128 else 255)
        out = im.copy()
        out.putalpha(alpha)
        return out
    if mode == 'L':
        return im.convert('L')
    if mode == 'LA':
        out = im.convert('LA')
        out.putalpha(Image.fromarray(r.randint(0, 256, (h, w)).astype(np.uint8), 'L'))
        return out
    if mode == 'P':
        return im.quantize(colors=int(r.choice([2, 16, 64, 256])))
    if mode == 'PA':
        p = im.quantize(colors=64)
        p.info['transparency'] = 0
        return p
    if mode == '1':
        return im.convert('1')
    raise ValueError(mode)


def main(argv):
    out = argv[1]
    jpeg = '--jpeg' in argv
    os.makedirs(out, exist_ok=True)
    r = np.random.RandomState(20240607)
    n = 0
    # every kind at every fixed size in RGB is too many; cycle through them instead
    for i in range(len(FIXED_SIZES) * 4):
        w, h = FIXED_SIZES[i % len(FIXED_SIZES)]
        kind = KINDS[i % len(KINDS)]
        mode = MODES[(i // 3) % len(MODES)]
        im = to_mode(r, kind(r, w, h), mode)
        im.save(os.path.join(out, 'f%03d_%s_%s_%dx%d.png' % (n, kind.__name__, mode, w, h)))
        n += 1
    for i in range(160):
        w, h = rng_size(r)
        kind = KINDS[r.randint(len(KINDS))]
        mode = MODES[r.randint(len(MODES))] if r.rand() < 0.6 else 'RGB'
        im = to_mode(r, kind(r, w, h), mode)
        im.save(os.path.join(out, 'r%03d_%s_%s_%dx%d.png' % (n, kind.__name__, mode, w, h)))
        n += 1
    if jpeg:
        for i in range(12):
            w, h = rng_size(r)
            im = KINDS[i % len(KINDS)](r, w, h)
            if i % 3 == 2:
                im = im.convert('L')
            im.save(os.path.join(out, 'j%03d_%dx%d.jpg' % (n, w, h)), quality=int(r.randint(50, 96)))
            n += 1
    print(n)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
