#!/usr/bin/env python3
"""bench/polish/layers.py: two extra pixel-art layers for the owls example, so that a bench
project can plan more tokens than the owls' 60 (the owls' layers alone give ~250 distinct
tokens). Writes PROJECT/layers/Mark/m<k>.png (16 values: a 24 px square of one colour in one
of 16 places) and PROJECT/layers/Spot/s<k>.png (8 values: a 12 px square near the bottom),
256 x 256 RGBA, and prints the YAML of the two layers (to insert before the owls' rules).

usage: layers.py PROJECT_DIR"""
import os
import struct
import sys
import zlib


def png(path, w, h, px):
    raw = b"".join(b"\0" + bytes(px[y * w * 4:(y + 1) * w * 4]) for y in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def square(path, x0, y0, size, rgb):
    px = bytearray(256 * 256 * 4)
    for y in range(y0, y0 + size):
        for x in range(x0, x0 + size):
            px[(y * 256 + x) * 4:(y * 256 + x) * 4 + 4] = bytes(rgb) + b"\xff"
    png(path, 256, 256, px)


def main():
    root = sys.argv[1]
    pal = [(230, 57, 70), (241, 250, 238), (168, 218, 220), (69, 123, 157), (29, 53, 87),
           (255, 183, 3), (251, 133, 0), (33, 158, 188)]
    yaml = ["  - name: Mark", "    traits:"]
    os.makedirs(os.path.join(root, "layers/Mark"), exist_ok=True)
    os.makedirs(os.path.join(root, "layers/Spot"), exist_ok=True)
    for k in range(16):
        square(os.path.join(root, "layers/Mark/m%d.png" % k), 8 + (k % 4) * 8, 8 + (k // 4) * 8,
               24, pal[k % 8])
        yaml.append("      - {name: M%d, weight: 1, file: layers/Mark/m%d.png}" % (k, k))
    yaml += ["  - name: Spot", "    traits:"]
    for k in range(8):
        square(os.path.join(root, "layers/Spot/s%d.png" % k), 200 + (k % 2) * 20, 220, 12,
               pal[(k + 3) % 8])
        yaml.append("      - {name: S%d, weight: 1, file: layers/Spot/s%d.png}" % (k, k))
    print("\n".join(yaml))


main()
