#!/usr/bin/env python3
"""bench/polish/masks.py: the peer's quantise for `potrace`: each PNG of a folder split into one
PBM mask per colour (black = that colour), as an ImageMagick or Pillow quantise would feed the
potrace CLI. Colours: the image's exact colours (pixel art), or with -n N its N most frequent
(every other pixel taken to the nearest of them by RGB distance). Alpha below 128 is no colour.
Writes DIR_OUT/<image>.<k>.pbm and DIR_OUT/<image>.colors (one hex colour a line, mask order).

usage: masks.py IN_DIR OUT_DIR [-n N]"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../tests/polish"))
import importlib.util
spec = importlib.util.spec_from_file_location(
    "pngcmp", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../tests/polish/pngcmp.py"))


def load_reader():
    src = open(spec.origin).read().split("def main():")[0]
    ns = {}
    exec(compile(src, spec.origin, "exec"), ns)
    return ns["read_png"]


def main():
    read_png = load_reader()
    a = sys.argv[1:]
    n = int(a[a.index("-n") + 1]) if "-n" in a else 0
    src, out = a[0], a[1]
    os.makedirs(out, exist_ok=True)
    for name in sorted(os.listdir(src)):
        if not name.endswith(".png"):
            continue
        w, h, px = read_png(os.path.join(src, name))
        count = {}
        for p in px:
            if p[3] >= 128:
                count[p[:3]] = count.get(p[:3], 0) + 1
        cols = sorted(count, key=lambda c: -count[c])
        if n:
            cols = cols[:n]
            near = {}
            def nearest(c):
                if c not in near:
                    near[c] = min(cols, key=lambda k: sum((x - y) ** 2 for x, y in zip(c, k)))
                return near[c]
            idx = [nearest(p[:3]) if p[3] >= 128 else None for p in px]
        else:
            idx = [p[:3] if p[3] >= 128 else None for p in px]
        base = os.path.join(out, name[:-4])
        with open(base + ".colors", "w") as f:
            for c in cols:
                f.write("#%02x%02x%02x\n" % c)
        for k, c in enumerate(cols):
            rows = []
            for y in range(h):
                bits = bytearray((w + 7) // 8)
                for x in range(w):
                    if idx[y * w + x] == c:
                        bits[x >> 3] |= 0x80 >> (x & 7)
                rows.append(bytes(bits))
            with open("%s.%d.pbm" % (base, k), "wb") as f:
                f.write(b"P4\n%d %d\n" % (w, h) + b"".join(rows))


main()
