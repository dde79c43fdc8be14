#!/usr/bin/python3
"""Oracle for kiln's perceptual hashes: imagehash 4.3's dhash and phash, line for line.

imagehash is not packaged in Debian 12, so its two functions are restated here with the
same calls (Pillow convert("L") + resize(LANCZOS), scipy.fftpack.dct, numpy.median, the
same hex formatting). Source: github.com/JohannesBuchner/imagehash, imagehash/__init__.py.

usage: imagehash_oracle.py FILE...      prints "FILE DHASH PHASH" per file
       imagehash_oracle.py -            reads file names from stdin, one a line
"""
import sys

import numpy
import scipy.fftpack
from PIL import Image

try:
    ANTIALIAS = Image.Resampling.LANCZOS
except AttributeError:  # Pillow < 9.1
    ANTIALIAS = Image.ANTIALIAS


def _binary_array_to_hex(arr):
    bit_string = ''.join(str(b) for b in 1 * arr.flatten())
    width = int(numpy.ceil(len(bit_string) / 4))
    return '{:0>{width}x}'.format(int(bit_string, 2), width=width)


def dhash(image, hash_size=8):
    image = image.convert('L').resize((hash_size + 1, hash_size), ANTIALIAS)
    pixels = numpy.asarray(image)
    diff = pixels[:, 1:] > pixels[:, :-1]
    return _binary_array_to_hex(diff)


def phash(image, hash_size=8, highfreq_factor=4):
    img_size = hash_size * highfreq_factor
    image = image.convert('L').resize((img_size, img_size), ANTIALIAS)
    pixels = numpy.asarray(image)
    dct = scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=0), axis=1)
    dctlowfreq = dct[:hash_size, :hash_size]
    med = numpy.median(dctlowfreq)
    diff = dctlowfreq > med
    return _binary_array_to_hex(diff)


def main(argv):
    names = argv[1:]
    if names == ['-']:
        names = [line.rstrip('\n') for line in sys.stdin if line.strip()]
    for name in names:
        with Image.open(name) as im:
            print(name, dhash(im), phash(im))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
