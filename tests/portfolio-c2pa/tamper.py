#!/usr/bin/env python3
"""Change a PNG the way a forger would, keeping it a well-formed PNG (chunk CRCs recomputed),
so that only the C2PA checks can catch it.

  tamper.py IN.png OUT.png idat          one byte of the first IDAT's data
  tamper.py IN.png OUT.png text BYTES    inside the caBX chunk, the first occurrence of BYTES
                                         (ASCII) gets its first character changed
  tamper.py IN.png OUT.png signature     the last byte of the manifest store (the last byte
                                         of the COSE signature)
"""
import struct
import sys
import zlib


def chunks(png):
    off = 8
    while off < len(png):
        n = struct.unpack('>I', png[off:off + 4])[0]
        yield off, n, png[off + 4:off + 8]
        off += n + 12


def fix_crc(png, off, n):
    crc = zlib.crc32(bytes(png[off + 4:off + 8 + n])) & 0xffffffff
    png[off + 8 + n:off + 12 + n] = struct.pack('>I', crc)


def main():
    src, dst, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    png = bytearray(open(src, 'rb').read())
    want = b'IDAT' if mode == 'idat' else b'caBX'
    for off, n, kind in chunks(png):
        if kind != want:
            continue
        data = off + 8
        if mode == 'idat':
            png[data + n // 2] ^= 0x01
        elif mode == 'text':
            needle = sys.argv[4].encode()
            at = bytes(png[data:data + n]).find(needle)
            if at < 0:
                sys.exit('tamper.py: %r not in the caBX chunk' % needle)
            png[data + at] = ord('2') if png[data + at] != ord('2') else ord('3')
        elif mode == 'signature':
            png[data + n - 1] ^= 0x01
        else:
            sys.exit('tamper.py: unknown mode ' + mode)
        fix_crc(png, off, n)
        break
    else:
        sys.exit('tamper.py: no %s chunk' % want.decode())
    open(dst, 'wb').write(png)


main()
