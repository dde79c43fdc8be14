#!/usr/bin/env python3
"""Draw a small RGBA PNG with an XMP packet (IPTC DigitalSourceType) in an iTXt chunk, as a
released AI image carries it, with the standard library only (zlib).

  draw_png.py OUT.png [WIDTH HEIGHT]
"""
import struct
import sys
import zlib

XMP = ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
       '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
       'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       '<rdf:Description rdf:about="" '
       'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/">'
       '<Iptc4xmpExt:DigitalSourceType>'
       'http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia'
       '</Iptc4xmpExt:DigitalSourceType></rdf:Description></rdf:RDF></x:xmpmeta>'
       '<?xpacket end="w"?>')


def chunk(kind, data):
    return (struct.pack('>I', len(data)) + kind + data
            + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))


def main():
    out = sys.argv[1]
    w, h = (int(sys.argv[2]), int(sys.argv[3])) if len(sys.argv) > 3 else (48, 32)
    rows = bytearray()
    for y in range(h):
        rows.append(0)
        for x in range(w):
            rows += bytes(((x * 255) // max(w - 1, 1), (y * 255) // max(h - 1, 1),
                           (x * y) & 255, 255))
    png = b'\x89PNG\r\n\x1a\n'
    png += chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 6, 0, 0, 0))
    png += chunk(b'iTXt', b'XML:com.adobe.xmp\x00\x00\x00\x00\x00' + XMP.encode('utf-8'))
    # two IDAT chunks: the manifest goes before the first
    z = zlib.compress(bytes(rows), 9)
    half = len(z) // 2
    png += chunk(b'IDAT', z[:half]) + chunk(b'IDAT', z[half:])
    png += chunk(b'IEND', b'')
    with open(out, 'wb') as f:
        f.write(png)


main()
