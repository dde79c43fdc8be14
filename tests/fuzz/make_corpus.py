#!/usr/bin/env python3
"""Seed corpus for the fuzz targets, drawn from the project's own tests and examples.

usage: make_corpus.py SRC OUT   (SRC: the source tree; writes OUT/<target>/...)

spec      every kiln.yaml of tests/cases and examples
png       PNGs of the owls example and a few made here (tiny, with text chunks)
metadata  token JSON in the shapes kiln writes (ERC-721, Metaplex) and common mistakes
record    release records (provenance.json, ipfs.json, manifest.sha256 split by 00 01) in the
          shapes kiln writes them, with paths out of the folder among them
catalog   an item's traits JSON and a render's request JSON (split by 00 01), as a catalog
          holds them
safetensors  model files: 8-byte header length, JSON header, tensor data
engine    reply sequences as the test server (tests/sdserver) sends them: byte 0 the engine
          (0 a1111, 1 comfyui, 2 sdcpp), byte 1 the first status, bodies split by 00 01
"""
import base64, glob, json, os, struct, sys, zlib

src, out = sys.argv[1], sys.argv[2]


def put(target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def png(w, h, texts=()):
    def chunk(t, b):
        return struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b))
    raw = b"".join(b"\0" + bytes([(x * 40) % 256, 0, 0, 255]) * w for x in range(h))
    body = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))
    for k, v in texts:
        body += chunk(b"tEXt", k.encode() + b"\0" + v.encode())
    body += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


n = 0
for p in sorted(glob.glob(os.path.join(src, "tests/cases/*/*/kiln.yaml")) +
                glob.glob(os.path.join(src, "examples/*/kiln.yaml"))):
    with open(p, "rb") as f:
        put("spec", "%03d.yaml" % n, f.read())
    n += 1

for i, p in enumerate(sorted(glob.glob(os.path.join(src, "examples/owls/layers/*/*.png")))[:4]):
    with open(p, "rb") as f:
        put("png", "owl%d.png" % i, f.read())
put("png", "tiny.png", png(2, 2))
put("png", "text.png", png(3, 1, [("parameters", "owl\nSteps: 20, Seed: 1"), ("Comment", "x")]))

tok = {"name": "Owl #1", "description": "an owl", "image": "ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi/1.png",
       "external_url": "https://example.org/1", "background_color": "a0b0c0",
       "attributes": [{"trait_type": "Hat", "value": "Crown"},
                      {"trait_type": "Level", "value": 3, "display_type": "number", "max_value": 10},
                      {"trait_type": "Born", "value": 1700000000, "display_type": "date"}]}
put("metadata", "erc721.json", json.dumps(tok))
mpl = {"name": "Owl #1", "symbol": "OWLS", "description": "an owl", "seller_fee_basis_points": 500,
       "image": "0.png", "attributes": [{"trait_type": "Hat", "value": "Crown"}],
       "properties": {"files": [{"uri": "0.png", "type": "image/png"}], "category": "image",
                      "creators": [{"address": "11111111111111111111111111111111", "share": 100}]}}
put("metadata", "metaplex.json", json.dumps(mpl))
put("metadata", "broken.json", '{"name": "x", "attributes": [{"trait_type": 1}]')
put("metadata", "deep.json", "[" * 64 + "]" * 64)
put("metadata", "utf8.json", json.dumps({"name": "Eule \u00e9\u4e2d", "attributes": []}, ensure_ascii=False))

img = base64.b64encode(png(2, 2)).decode()
info = json.dumps({"seed": 42, "all_seeds": [42], "infotexts": ["owl\nSteps: 20, Seed: 42"]})
put("engine", "a1111_ok", b"\x00\x00" + json.dumps({"images": [img], "parameters": {}, "info": info}).encode())
put("engine", "a1111_500", b"\x00\x06" + b'{"error": "OutOfMemoryError", "detail": "CUDA"}')
put("engine", "a1111_badb64", b"\x00\x00" + json.dumps({"images": ["!!!"], "info": "{"}).encode())
pid = "kiln-7-0-1"
hist = {pid: {"outputs": {"9": {"images": [{"filename": "k_00001_.png", "subfolder": "", "type": "output"}]}},
              "status": {"status_str": "success", "completed": True, "messages": []}}}
put("engine", "comfyui_ok", b"\x01\x00" + b"\x00\x01".join([
    json.dumps({"prompt_id": pid, "number": 1, "node_errors": {}}).encode(),
    b"{}", json.dumps(hist).encode(), png(64, 64)]))
put("engine", "comfyui_400", b"\x01\x04" + json.dumps({"error": {"type": "prompt_outputs_failed_validation"},
    "node_errors": {"4": {"class_type": "CheckpointLoaderSimple", "errors": [{"message": "Value not in list"}]}}}).encode())
put("engine", "sdcpp_async", b"\x02\x03" + b"\x00\x01".join([
    json.dumps({"id": "job1", "status": "queued"}).encode(),
    json.dumps({"id": "job1", "status": "generating"}).encode(),
    json.dumps({"id": "job1", "status": "completed", "result": {"images": [{"b64_json": img, "seed": 42}]}}).encode()]))
put("engine", "sdcpp_sync", b"\x02\x00" + json.dumps({"images": [img], "info": info}).encode())

import hashlib
h = hashlib.sha256(b"\x89PNG\r\n\x1a\n").hexdigest()
prov = {"method": "BAYC", "provenance_hash": hashlib.sha256(h.encode()).hexdigest(), "count": 1,
        "starting_index": None, "reveal": "done",
        "images": [{"token_id": 1, "file": "images/1.png", "sha256": h}]}
ipfs = {"import": "ipfs add -r --cid-version=1", "entries": [
    {"name": "images", "path": "images", "cid": "bafybeiaxneok2sxelcwh4nic2z2lkrizfyum3adnwjyaoikhcabbznxvbq"},
    {"name": "metadata", "path": "metadata", "cid": "bafybeidj6tc5op7dy7eoil4i7wbmd3oqg7nfnju3ue2ejbhglkketnvo4y"}]}
man = "%s  images/1.png\n" % h
put("record", "release", b"\x00\x01".join([json.dumps(prov).encode(), json.dumps(ipfs).encode(), man.encode()]))
prov_out = dict(prov, images=[{"token_id": 1, "file": "../../../../etc/hostname", "sha256": h}])
put("record", "outside", b"\x00\x01".join([json.dumps(prov_out).encode(), json.dumps(ipfs).encode(), b""]))
put("record", "broken", b'{"provenance_hash": 5, "images": [{}]}\x00\x01{"entries": [1]}\x00\x01zz  ../x\n')

put("catalog", "plain", b'{"Body": "Plain"}\x00\x01{"prompt": "an owl", "seed": 1}')
put("catalog", "odd", b'{"Body": 5, "Hat": "Crown"}\x00\x01[1, {"x": null}]')
put("catalog", "broken", b'{"Body": "Pl\x00\x01{')

# safetensors: whole files (8-byte LE header length, JSON header, tensor bytes)
def st(header, data=b"", claim=None):
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h) if claim is None else claim) + h + data
put("safetensors", "lora", st({"__metadata__": {"ss_network_dim": "8", "ss_tag_frequency": "{\"owl\": 3}"},
                               "lora_up.weight": {"dtype": "F16", "shape": [2, 2], "data_offsets": [0, 8]}}, b"\x01" * 8))
put("safetensors", "empty", st({}))
put("safetensors", "long", st({"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}, b"x", claim=1 << 40))
put("safetensors", "badmeta", st({"__metadata__": {"a": 1}}))
