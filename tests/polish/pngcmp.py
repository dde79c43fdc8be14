#!/usr/bin/env python3
"""Compare two 8-bit PNGs pixel for pixel (a small decoder on zlib alone: the test machines
have no Pillow). Both are taken as RGBA; --premultiplied compares colour * alpha / 255 rounded
(what cairo, hence librsvg, stores), --tolerance reports the mean and worst channel error.

usage: pngcmp.py A.png B.png [--premultiplied] [--stats]
exit 0 when equal (or with --stats always, printing "mean MEAN max MAX over PCT% pixels >32"),
1 when they differ (the first differing pixel printed), 2 on a bad file."""
import struct
import sys
import zlib


def read_png(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(path + ": not a PNG")
    pos, idat, plte, trns = 8, b"", None, None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"PLTE":
            plte = body
        elif kind == b"tRNS":
            trns = body
        pos += 12 + n
    if depth != 8 or interlace:
        raise ValueError(path + ": only 8-bit non-interlaced PNGs")
    bpp = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ctype]
    raw = zlib.decompress(idat)
    stride = w * bpp
    prev = bytearray(stride)
    out = []
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + ((a + b) >> 1)) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        prev = line
        for x in range(w):
            px = line[x * bpp:(x + 1) * bpp]
            if ctype == 0:
                out.append((px[0], px[0], px[0], 255))
            elif ctype == 2:
                out.append((px[0], px[1], px[2], 255))
            elif ctype == 3:
                k = px[0]
                al = trns[k] if trns and k < len(trns) else 255
                out.append((plte[3 * k], plte[3 * k + 1], plte[3 * k + 2], al))
            elif ctype == 4:
                out.append((px[0], px[0], px[0], px[1]))
            else:
                out.append(tuple(px))
    return w, h, out


def premul(p):
    a = p[3]
    return tuple((c * a + 127) // 255 for c in p[:3]) + (a,)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    pm = "--premultiplied" in sys.argv
    try:
        wa, ha, a = read_png(args[0])
        wb, hb, b = read_png(args[1])
    except (ValueError, OSError, KeyError, zlib.error) as e:
        print(e)
        return 2
    if (wa, ha) != (wb, hb):
        print("sizes differ: %dx%d vs %dx%d" % (wa, ha, wb, hb))
        return 1
    if "--stats" in sys.argv:
        tot, worst, far = 0, 0, 0
        for p, q in zip(a, b):
            d = [abs(x - y) for x, y in zip(premul(p), premul(q))]
            tot += sum(d)
            worst = max(worst, max(d))
            far += max(d) > 32
        print("mean %.3f max %d over %.3f%% pixels >32" % (tot / (4.0 * len(a)), worst,
                                                          100.0 * far / len(a)))
        return 0
    for i, (p, q) in enumerate(zip(a, b)):
        if p != q and (not pm or premul(p) != premul(q)) and (p[3] or q[3]):
            print("pixel %d,%d: %s vs %s" % (i % wa, i // wa, p, q))
            return 1
    return 0


sys.exit(main())
