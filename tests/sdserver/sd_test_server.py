#!/usr/bin/python3
"""sd_test_server: a stand-in for Stable Diffusion servers, for kiln's tests.

It speaks three protocols the way the real servers do on the wire (see README.md for the
sources each shape was checked against):

  a1111   AUTOMATIC1111 / Forge  /sdapi/v1/*          (FastAPI: 422 {detail:[...]}, basic auth)
  comfyui ComfyUI                /prompt /history ... (aiohttp: 400 {error, node_errors})
  sdcpp   stable-diffusion.cpp   /sdcpp/v1/* and its /sdapi/v1 subset
  all     all three on one port (/sdapi/v1/* is then the A1111 flavour)

There is no model: every image is a deterministic RGB PNG computed from the render
parameters (prompt, negative prompt, seed, size, steps, cfg, sampler, checkpoint, LoRAs,
plus an 'extra' dict for scheduler, ControlNet and batch index) through SHA-256.  One
"GPU" lock per process serialises generation, as on a real single-GPU server.

Faults (fail, hang, drop, truncate, black, lose, exec_fail, fail_first, latency) are set on
the command line and at runtime through POST /__test__/config, and are chosen by a seeded
hash, so the same request gets the same fault in every run.

Only the Python 3 standard library is used.  Run: /usr/bin/python3 sd_test_server.py --help
"""

import argparse
import base64
import binascii
import collections
import hashlib
import heapq
import http.server
import itertools
import json
import math
import os
import random
import re
import secrets
import select
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
import zlib

VERSION = "1.0"

# --------------------------------------------------------------------------------------------
# PNG writing and the deterministic picture
# --------------------------------------------------------------------------------------------

PNG_SIG = b"\x89PNG\r\n\x1a\n"


def _chunk(ctype, data):
    return (struct.pack(">I", len(data)) + ctype + data
            + struct.pack(">I", zlib.crc32(ctype + data) & 0xFFFFFFFF))


def _text_chunk(key, value):
    """tEXt when the value is Latin-1, else iTXt (what PIL's PngInfo.add_text does)."""
    k = key.encode("latin-1")
    try:
        return _chunk(b"tEXt", k + b"\x00" + value.encode("latin-1"))
    except UnicodeEncodeError:
        return _chunk(b"iTXt", k + b"\x00\x00\x00" + b"\x00" + b"\x00" + value.encode("utf-8"))


def encode_png(width, height, raw_rows, texts=()):
    """raw_rows: bytes of height rows, each b'\\x00' (filter None) + width*3 RGB bytes."""
    out = [PNG_SIG, _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))]
    for k, v in texts:
        out.append(_text_chunk(k, v))
    out.append(_chunk(b"IDAT", zlib.compress(raw_rows, 3)))
    out.append(_chunk(b"IEND", b""))
    return b"".join(out)


# 16 brightness tables, applied per row with bytes.translate (C speed).
_LEVELS = 16
_TABLES = [bytes(int(v * (0.62 + 0.38 * k / (_LEVELS - 1))) for v in range(256))
           for k in range(_LEVELS)]


def canonical_key(params):
    return json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _stream(digest, n):
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(digest + i.to_bytes(4, "big")).digest()
        i += 1
    return bytes(out[:n])


_SEGMENTS = {}


def _segments(w, gx, bands):
    """Runs [start, end) of constant (cell column, gradient band) across a row of width w."""
    key = (w, gx, bands)
    seg = _SEGMENTS.get(key)
    if seg is None:
        seg, x = [], 0
        while x < w:
            cx, bx = (x * gx) // w, (x * bands) // w
            e = x + 1
            while e < w and (e * gx) // w == cx and (e * bands) // w == bx:
                e += 1
            seg.append((e - x, cx, bx))
            x = e
        if len(_SEGMENTS) < 256:
            _SEGMENTS[key] = seg
    return seg


def render_rows(params, variant=None):
    """The filtered scanlines for params; a pure function of canonical_key(params).

    An 8x8 grid of cells with colours from SHA-256 of the key, a stepped horizontal
    gradient (32 bands) and a vertical triangle wave of brightness (16 levels).  A row equal
    to the one above is stored with PNG filter Up (all zeros), so deflate is cheap."""
    w, h = int(params["width"]), int(params["height"])
    if variant == "black":
        return (b"\x00" + bytes(w * 3)) * h
    key = canonical_key(params)
    if variant:
        key += "#" + variant
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    gx = max(1, min(8, w))
    gy = max(1, min(8, h))
    bands = max(1, min(32, w))
    s = _stream(digest, gx * gy * 3 + 4)
    # cell colours in 48..255 per channel: never black, and 64 random cells are never uniform
    cols = [tuple(48 + (s[(cy * gx + cx) * 3 + c] * 207) // 255 for c in range(3))
            for cy in range(gy) for cx in range(gx)]
    if len(set(cols)) == 1:
        cols[0] = (255 - cols[0][0], cols[0][1], cols[0][2])
    phase = s[-1] % _LEVELS
    seg = _segments(w, gx, bands)
    fac = [0.80 + 0.20 * b / max(1, bands - 1) for b in range(bands)]
    base = []
    for cy in range(gy):
        parts = []
        for n, cx, bx in seg:
            r, g, b = cols[cy * gx + cx]
            f = fac[bx]
            parts.append(bytes((int(r * f), int(g * f), int(b * f))) * n)
        base.append(b"".join(parts))
    zero = b"\x02" + bytes(w * 3)
    rows, prev = [], None
    for y in range(h):
        t = (y * 2 * _LEVELS // h + phase) % (2 * _LEVELS)   # triangle wave over rows
        lvl = t if t < _LEVELS else 2 * _LEVELS - 1 - t
        ident = ((y * gy) // h, lvl)
        if ident == prev:
            rows.append(zero)
        else:
            rows.append(b"\x00" + base[ident[0]].translate(_TABLES[lvl]))
            prev = ident
    return b"".join(rows)


def render_png(params, variant=None, texts=()):
    return encode_png(int(params["width"]), int(params["height"]),
                      render_rows(params, variant), texts)


def png_size(data):
    if len(data) >= 24 and data[:8] == PNG_SIG and data[12:16] == b"IHDR":
        return struct.unpack(">II", data[16:24])
    return None


def png_texts(data):
    """tEXt/iTXt chunks of a PNG (best effort; used by png-info)."""
    out = {}
    pos = 8
    while pos + 8 <= len(data):
        ln, = struct.unpack(">I", data[pos:pos + 4])
        ct = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + ln]
        if ct == b"tEXt":
            k, _, v = body.partition(b"\x00")
            out[k.decode("latin-1")] = v.decode("latin-1")
        elif ct == b"iTXt":
            k, _, rest = body.partition(b"\x00")
            rest = rest[2:]
            _, _, rest = rest.partition(b"\x00")
            _, _, rest = rest.partition(b"\x00")
            out[k.decode("latin-1")] = rest.decode("utf-8", "replace")
        pos += 12 + ln
        if ct == b"IEND":
            break
    return out


def _unfilter(raw, w, h, bpp):
    """PNG scanlines (filter byte + w*bpp bytes each) to the raw pixel bytes."""
    stride = w * bpp
    out = bytearray(stride * h)
    prev = bytearray(stride)
    pos = 0
    for y in range(h):
        f = raw[pos]
        line = bytearray(raw[pos + 1:pos + 1 + stride])
        pos += 1 + stride
        if f == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif f == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif f == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif f == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pr) & 255
        elif f != 0:
            raise ValueError("bad PNG filter %d" % f)
        out[y * stride:(y + 1) * stride] = line
        prev = line
    return bytes(out)


def decode_png(data):
    """An 8-bit, non-interlaced PNG (grey, RGB, grey+alpha, RGBA, palette) to (w, h, RGBA
    bytes): what PIL's Image.open(...).convert("RGBA") gives for those. ValueError if not."""
    if data[:8] != PNG_SIG:
        raise ValueError("not a PNG")
    pos, idat, plte, trns, hdr = 8, [], None, None, None
    while pos + 8 <= len(data):
        ln, = struct.unpack(">I", data[pos:pos + 4])
        ct, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + ln]
        if ct == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif ct == b"IDAT":
            idat.append(body)
        elif ct == b"PLTE":
            plte = body
        elif ct == b"tRNS":
            trns = body
        elif ct == b"IEND":
            break
        pos += 12 + ln
    if not hdr:
        raise ValueError("no IHDR")
    w, h, depth, ctype, _, _, interlace = hdr
    if depth != 8 or interlace:
        raise ValueError("only 8-bit non-interlaced PNGs")
    bpp = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ctype]
    px = _unfilter(zlib.decompress(b"".join(idat)), w, h, bpp)
    if ctype == 6:
        return w, h, px
    out = bytearray(w * h * 4)
    for i in range(w * h):
        if ctype == 2:
            r, g, b, a = px[3 * i], px[3 * i + 1], px[3 * i + 2], 255
        elif ctype == 0:
            r = g = b = px[i]
            a = 255
        elif ctype == 4:
            r = g = b = px[2 * i]
            a = px[2 * i + 1]
        else:
            k = px[i]
            r, g, b = plte[3 * k:3 * k + 3]
            a = trns[k] if trns and k < len(trns) else 255
        out[4 * i:4 * i + 4] = bytes((r, g, b, a))
    return w, h, bytes(out)


def resize_nearest(w, h, px, nw, nh):
    """RGBA pixels resized to nw x nh, each output pixel the input's at the same place."""
    rows = []
    for y in range(nh):
        sy = y * h // nh
        row = px[sy * w * 4:(sy + 1) * w * 4]
        rows.append(b"".join(row[(x * w // nw) * 4:(x * w // nw) * 4 + 4] for x in range(nw)))
    return b"".join(rows)


def encode_rgba_png(w, h, px, texts=()):
    """RGBA pixels as a PNG (colour type 6), filter None."""
    out = [PNG_SIG, _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))]
    for k, v in texts:
        out.append(_text_chunk(k, v))
    raw = b"".join(b"\x00" + px[y * w * 4:(y + 1) * w * 4] for y in range(h))
    out.append(_chunk(b"IDAT", zlib.compress(raw, 3)))
    out.append(_chunk(b"IEND", b""))
    return b"".join(out)


def inpaint_pixels(w, h, px, mask, params):
    """The test server's inpaint: where the mask is set (mask[i] >= 128) the pixel is the
    picture render_rows gives for params, elsewhere the input's. Deterministic, and a test can
    see exactly which pixels changed."""
    pic = _unfilter(render_rows(dict(params, width=w, height=h)), w, h, 3)
    out = bytearray(px)
    for i in range(w * h):
        if mask[i] >= 128:
            out[4 * i:4 * i + 3] = pic[3 * i:3 * i + 3]
            out[4 * i + 3] = 255
    return bytes(out)


def upscale_model_scale(name):
    """The scale of an upscale model, from its name as kiln reads it (x2/2x, x4/4x; else 4)."""
    low = name.lower().rsplit("/", 1)[-1]
    for s in (2, 4, 8):
        if "x%d" % s in low or "%dx" % s in low:
            return s
    return 4


def fake_sha256(kind, name):
    return hashlib.sha256(("sd-test-server:%s:%s" % (kind, name)).encode()).hexdigest()


def addnet_hash(path):
    """A1111's LoRA hash of a safetensors file (modules/hashes.py addnet_hash_safetensors):
    SHA-256 of the bytes after the 8-byte length and the JSON header; "Lora hashes" shows its
    first 12 hex (extensions-builtin/Lora/network.py shorthash)."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        f.seek(8 + n)
        return hashlib.sha256(f.read()).hexdigest()


class Output:
    """A produced image: its params and fault variant; bytes are rendered on demand."""

    __slots__ = ("params", "variant", "texts", "truncate", "_sha", "_key")
    _ids = itertools.count(1)

    def __init__(self, params, variant, texts, truncate):
        self.params, self.variant, self.texts, self.truncate = params, variant, texts, truncate
        self._sha = None
        self._key = next(Output._ids)

    def bytes(self, cache):
        key = self._key
        data = cache.get(key)
        if data is None:
            data = render_png(self.params, self.variant, self.texts)
            if self.truncate:
                data = data[:max(40, len(data) // 2)]
            cache.put(key, data)
        if self._sha is None:
            self._sha = hashlib.sha256(data).hexdigest()
        return data

    def describe(self, cache):
        data = self.bytes(cache)
        return {"params": self.params, "variant": self.variant, "truncated": self.truncate,
                "sha256": self._sha, "bytes": len(data)}


class LRU:
    def __init__(self, cap):
        self.cap = cap
        self.d = collections.OrderedDict()
        self.lock = threading.Lock()

    def get(self, k):
        with self.lock:
            v = self.d.get(k)
            if v is not None:
                self.d.move_to_end(k)
            return v

    def put(self, k, v):
        with self.lock:
            self.d[k] = v
            self.d.move_to_end(k)
            while len(self.d) > self.cap:
                self.d.popitem(last=False)

    def clear(self):
        with self.lock:
            self.d.clear()


# --------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------

CONFIG_DEFAULTS = {
    "latency_ms": 0.0,          # time a job holds the GPU
    "jitter_ms": 0.0,           # + deterministic 0..jitter_ms per job
    "request_latency_ms": 0.0,  # delay before answering any protocol request
    "model_switch_ms": 0.0,     # extra GPU time when a job needs another checkpoint
    "fail_rate": 0.0,           # answer 500 without doing anything
    "hang_rate": 0.0,           # read the request, never answer (until the client gives up)
    "drop_rate": 0.0,           # do the work, then close the connection mid-response
    "noreply_rate": 0.0,        # do the work, then close the connection without answering
    "truncate_rate": 0.0,       # job: the PNG is cut in half
    "black_rate": 0.0,          # job: an all-black image (safety filter)
    "lose_rate": 0.0,           # job (comfyui/sdcpp): accepted, then forgotten
    "exec_fail_rate": 0.0,      # job: accepted, then fails while executing
    "seed": 0,                  # seed of the fault hash
    "fail_first": 0,            # the first N eligible requests after this setting fail (500)
    "fault_scope": "all",       # "all" protocol endpoints, or "jobs" (job submissions only)
    "max_pending_jobs": 64,     # sdcpp: 429 past this many queued+running jobs
    "job_ttl_s": 600.0,         # sdcpp: finished jobs expire (410) after this long
    "oversize_mb": 0.0,         # answers to paths starting with oversize_path: instead of the
    "oversize_path": "",        # answer, a 200 whose body is this many MiB (a runaway server);
    "oversize_count": 0,        # only the first N such answers (0: every one); stats
                                # "oversize" counts them, "oversize_bytes_sent" what went out
                                # before the client cut the transfer
}
_RATE_KEYS = ("fail_rate", "hang_rate", "drop_rate", "truncate_rate", "black_rate",
              "lose_rate", "exec_fail_rate", "noreply_rate")


def validate_config_update(upd):
    if not isinstance(upd, dict):
        raise ValueError("config must be a JSON object")
    out = {}
    for k, v in upd.items():
        if k not in CONFIG_DEFAULTS:
            raise ValueError("unknown config key %r" % k)
        if k == "fault_scope":
            if v not in ("all", "jobs"):
                raise ValueError("fault_scope must be 'all' or 'jobs'")
            out[k] = v
            continue
        if k == "oversize_path":
            if not isinstance(v, str):
                raise ValueError("oversize_path must be a string")
            out[k] = v
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError("%s must be a number" % k)
        if k in ("seed", "fail_first", "max_pending_jobs", "oversize_count"):
            if int(v) != v or v < 0:
                raise ValueError("%s must be a non-negative integer" % k)
            out[k] = int(v)
            continue
        if v < 0 or (k in _RATE_KEYS and v > 1):
            raise ValueError("%s out of range" % k)
        out[k] = float(v)
    return out


class Fault:
    __slots__ = ("transport", "job", "rnd")

    def __init__(self, transport=None, job=None, rnd=0.0):
        self.transport, self.job, self.rnd = transport, job, rnd


# --------------------------------------------------------------------------------------------
# Shared server state
# --------------------------------------------------------------------------------------------

A1111_SAMPLERS = [
    ("DPM++ 2M", ["k_dpmpp_2m"], {"scheduler": "karras"}),
    ("DPM++ SDE", ["k_dpmpp_sde"], {"scheduler": "karras", "second_order": True, "brownian_noise": True}),
    ("DPM++ 2M SDE", ["k_dpmpp_2m_sde"], {"scheduler": "exponential", "brownian_noise": True}),
    ("DPM++ 2M SDE Heun", ["k_dpmpp_2m_sde_heun"], {"scheduler": "exponential", "brownian_noise": True, "solver_type": "heun"}),
    ("DPM++ 2S a", ["k_dpmpp_2s_a"], {"scheduler": "karras", "uses_ensd": True, "second_order": True}),
    ("DPM++ 3M SDE", ["k_dpmpp_3m_sde"], {"scheduler": "exponential", "discard_next_to_last_sigma": True, "brownian_noise": True}),
    ("Euler a", ["k_euler_a", "k_euler_ancestral"], {"uses_ensd": True}),
    ("Euler", ["k_euler"], {}),
    ("LMS", ["k_lms"], {}),
    ("Heun", ["k_heun"], {"second_order": True}),
    ("DPM2", ["k_dpm_2"], {"scheduler": "karras", "discard_next_to_last_sigma": True, "second_order": True}),
    ("DPM2 a", ["k_dpm_2_a"], {"scheduler": "karras", "discard_next_to_last_sigma": True, "uses_ensd": True, "second_order": True}),
    ("DPM fast", ["k_dpm_fast"], {"uses_ensd": True}),
    ("DPM adaptive", ["k_dpm_ad"], {"uses_ensd": True}),
    ("Restart", ["restart"], {"scheduler": "karras", "second_order": True}),
    ("DDIM", ["ddim"], {}),
    ("DDIM CFG++", ["ddim_cfgpp"], {}),
    ("PLMS", ["plms"], {}),
    ("UniPC", ["unipc"], {}),
    ("LCM", ["k_lcm"], {}),
]
A1111_SCHEDULERS = [  # (name, label, aliases)
    ("automatic", "Automatic", None), ("uniform", "Uniform", None), ("karras", "Karras", None),
    ("exponential", "Exponential", None), ("polyexponential", "Polyexponential", None),
    ("sgm_uniform", "SGM Uniform", ["SGMUniform"]), ("kl_optimal", "KL Optimal", None),
    ("align_your_steps", "Align Your Steps", None), ("simple", "Simple", None),
    ("normal", "Normal", None), ("ddim", "DDIM", None), ("beta", "Beta", None),
]
COMFY_SAMPLERS = [
    "euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2",
    "dpm_2", "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive", "dpmpp_2s_ancestral",
    "dpmpp_2s_ancestral_cfg_pp", "dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m", "dpmpp_2m_cfg_pp",
    "dpmpp_2m_sde", "dpmpp_2m_sde_gpu", "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm", "lcm",
    "ipndm", "ipndm_v", "deis", "res_multistep", "res_multistep_cfg_pp", "gradient_estimation",
    "er_sde", "ddim", "uni_pc", "uni_pc_bh2"]
COMFY_SCHEDULERS = ["simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta",
                    "normal", "linear_quadratic", "kl_optimal"]
# stable-diffusion.cpp src/stable-diffusion.cpp: sample_method_to_str and scheduler_to_str
# ("normal" is str_to_scheduler's alias of discrete, listed by the capabilities)
SDCPP_SAMPLERS = ["euler", "euler_a", "heun", "dpm2", "dpm++2s_a", "dpm++2m", "dpm++2mv2",
                  "ipndm", "ipndm_v", "lcm", "ddim_trailing", "tcd", "res_multistep", "res_2s",
                  "er_sde", "euler_cfg_pp", "euler_a_cfg_pp", "euler_ge", "dpm++2m_sde",
                  "dpm++2m_sde_bt", "lms"]
SDCPP_SCHEDULERS = ["discrete", "normal", "karras", "exponential", "ays", "gits", "sgm_uniform",
                    "simple", "smoothstep", "kl_optimal", "lcm", "bong_tangent", "ltx2",
                    "logit_normal", "flux2", "flux", "beta"]
# examples/server/runtime.cpp is_supported_model_ext: what refresh_lora_cache lists (a .ckpt
# or .bin LoRA is never listed, so get_lora_full_path finds nothing for it)
SDCPP_LORA_EXTS = (".gguf", ".pt", ".pth", ".safetensors")
SDCPP_SAPI_SAMPLER_ALIASES = {
    "euler a": "euler_a", "k_euler_a": "euler_a", "euler": "euler", "k_euler": "euler",
    "heun": "heun", "k_heun": "heun", "dpm2": "dpm2", "k_dpm_2": "dpm2", "lcm": "lcm",
    "ddim": "ddim_trailing", "dpm++ 2m": "dpm++2m", "k_dpmpp_2m": "dpm++2m",
    "res multistep": "res_multistep", "k_res_multistep": "res_multistep", "res 2s": "res_2s",
    "k_res_2s": "res_2s", "euler_cfg_pp": "euler_cfg_pp", "k_euler_cfg_pp": "euler_cfg_pp"}
LORA_EXTS = (".safetensors", ".gguf", ".pt", ".ckpt")


class State:
    def __init__(self, args):
        self.args = args
        self.protocol = args.protocol
        self.lock = threading.RLock()           # guards all mutable state below
        self.gpu = threading.Lock()             # one job at a time
        self.cache = LRU(args.image_cache)
        self.started = time.time()
        self.shutting_down = threading.Event()
        self.models = [m for m in args.models.split(",") if m]
        self.checkpoint_shas = {}
        self.loras = [m for m in args.loras.split(",") if m]
        self.controlnets = [m for m in args.controlnets.split(",") if m]
        self.upscale_models = [m for m in args.upscale_models.split(",") if m]
        self.config = dict(CONFIG_DEFAULTS)
        self.config.update({
            "latency_ms": args.latency_ms, "jitter_ms": args.jitter_ms,
            "request_latency_ms": args.request_latency_ms,
            "model_switch_ms": args.model_switch_ms, "fail_rate": args.fail_rate,
            "hang_rate": args.hang_rate, "drop_rate": args.drop_rate,
            "noreply_rate": args.noreply_rate,
            "truncate_rate": args.truncate_rate, "black_rate": args.black_rate,
            "lose_rate": args.lose_rate, "exec_fail_rate": args.exec_fail_rate,
            "seed": args.fault_seed, "fail_first": args.fail_first,
            "fault_scope": args.fault_scope, "max_pending_jobs": args.max_pending_jobs,
            "job_ttl_s": args.job_ttl_s})
        validate_config_update(self.config)
        self.comfy_cv = threading.Condition(self.lock)
        self.sdcpp_cv = threading.Condition(self.lock)
        self.reset()

    # -- state that POST /__test__/reset clears -------------------------------------------
    def reset(self):
        with self.lock:
            self.records = collections.deque(maxlen=self.args.max_records)
            self.seq = 0
            self.fault_occ = collections.Counter()
            self.fail_first_used = 0
            self.seed_rng = random.Random(self.args.random_seed)
            self.stats = collections.Counter()
            self.stats_paths = collections.Counter()
            self.faults = collections.Counter()
            self.in_flight = 0
            self.max_concurrent = 0
            self.gpu_in_use = 0
            self.gpu_max = 0
            self.gpu_free_at = 0.0              # when the GPU was last released
            self.gen_in_flight = 0
            self.max_gen_in_flight = 0
            self.max_queue_depth = 0
            self.jobs_log = collections.deque(maxlen=self.args.max_records)
            self.cache.clear()
            # a1111
            first = self.models[0] if self.models else ""
            self.opts_checkpoint = first
            self.loaded_checkpoint = first
            self.a1111_job = None               # dict while a txt2img holds the GPU
            self.a1111_waiting = 0
            # comfyui
            self.comfy_number = 0
            self.comfy_queue = []               # heap of (number, seq, item)
            self.comfy_qseq = 0
            self.comfy_running = None
            self.comfy_history = collections.OrderedDict()
            self.comfy_files = {}               # (type, subfolder, filename) -> Output or bytes
            self.comfy_counters = {}
            self.comfy_last_sigs = {}           # node id -> signature, for execution_cached
            self.comfy_last_outputs = {}
            self.comfy_executions = collections.Counter()   # prompt_id -> times executed
            # sdcpp
            self.sdcpp_jobs = {}
            self.sdcpp_queue = collections.deque()
            self.sdcpp_next = 0
            self.sdcpp_expired = {}

    # -- helpers ------------------------------------------------------------------------------
    def model_info(self, name):
        stem = name.rsplit(".", 1)[0] if "." in name else name
        sha = self.checkpoint_sha256(name)
        return {"title": "%s [%s]" % (name, sha[:10]), "model_name": stem, "hash": sha[:10],
                "sha256": sha, "filename": "/models/Stable-diffusion/" + name, "config": None}

    def checkpoint_sha256(self, name):
        """A checkpoint's SHA-256: the real file's under --checkpoint-dir, else a made-up one.
        A1111 reports its first 10 hex as sd_model_hash: modules/sd_models.py (commit 5929ece1)
        load_model_weights sets model.sd_model_hash = checkpoint_info.calculate_shorthash(),
        which is hashes.sha256(filename, "checkpoint/" + name)[0:10], the SHA-256 of the whole
        file (not the legacy model_hash, 8 hex of 64 KiB at 1 MiB)."""
        d = self.args.checkpoint_dir
        path = os.path.join(d, name) if d else None
        if path and os.path.isfile(path):
            with self.lock:
                got = self.checkpoint_shas.get(path)
            if got is None:
                h = hashlib.sha256()
                with open(path, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
                got = h.hexdigest()
                with self.lock:
                    self.checkpoint_shas[path] = got
            return got
        return fake_sha256("checkpoint", name)

    def find_checkpoint(self, alias):
        """A1111 checkpoint_aliases: title, filename, model name, short hash, sha256."""
        if not isinstance(alias, str):
            return None
        for m in self.models:
            i = self.model_info(m)
            if alias in (m, i["title"], i["model_name"], i["hash"], i["sha256"],
                         i["model_name"] + " [" + i["hash"] + "]"):
                return m
        return None

    def lora_hash(self, stem):
        """The 12-hex hash "Lora hashes" shows: the real file's under --lora-dir."""
        d = self.args.lora_dir
        if d and os.path.isfile(os.path.join(d, stem + ".safetensors")):
            return addnet_hash(os.path.join(d, stem + ".safetensors"))[:12]
        return fake_sha256("lora", stem)[:12]

    def lora_stem(self, name):
        for ext in LORA_EXTS:
            if name.endswith(ext):
                return name[:-len(ext)]
        return name

    def find_lora(self, ref):
        """Resolve a LoRA by file name, stem, or path with/without extension."""
        if not isinstance(ref, str) or not ref:
            return None
        base = ref.replace("\\", "/").rsplit("/", 1)[-1]
        for l in self.loras:
            if ref in (l, self.lora_stem(l)) or base in (l, self.lora_stem(l)):
                return l
        return None

    def job_latency(self, key):
        cfg = self.config
        lat = cfg["latency_ms"]
        if cfg["jitter_ms"]:
            h = int.from_bytes(hashlib.sha256(("jit|%s" % key).encode()).digest()[:4], "big")
            lat += cfg["jitter_ms"] * (h / 0xFFFFFFFF)
        return lat / 1000.0

    def gpu_enter(self):
        self.gpu.acquire()
        with self.lock:
            self.gpu_in_use += 1
            self.gpu_max = max(self.gpu_max, self.gpu_in_use)

    def gpu_exit(self):
        with self.lock:
            self.gpu_in_use -= 1
            self.gpu_free_at = time.time()
        self.gpu.release()

    def note_queue_depth(self, depth):
        if depth > self.max_queue_depth:
            self.max_queue_depth = depth

    def log_job(self, protocol, job_id, outputs, status, extra=None):
        with self.lock:
            entry = {"protocol": protocol, "id": job_id, "status": status, "time": time.time(),
                     "outputs": outputs}
            if extra:
                entry.update(extra)
            self.jobs_log.append(entry)
            if status == "completed":
                self.stats["jobs_done"] += 1
                self.stats["images_done"] += len(outputs)
            elif status == "interrupted":
                self.stats["jobs_interrupted"] += 1
            else:
                self.stats["jobs_failed"] += 1

    def decide_fault(self, method, target, body, eligible, is_job):
        """Deterministic fault for one request: hash(seed, request, occurrence)."""
        cfg = self.config
        if not eligible:
            return Fault()
        with self.lock:
            base = "%s|%s|%s" % (method, target, hashlib.sha256(body).hexdigest())
            occ = self.fault_occ[base]
            self.fault_occ[base] = occ + 1
            if self.fail_first_used < cfg["fail_first"]:
                self.fail_first_used += 1
                self.faults["fail_first"] += 1
                return Fault("fail")
        h = hashlib.sha256(("%d|%s|%d" % (cfg["seed"], base, occ)).encode()).digest()
        r1 = int.from_bytes(h[0:8], "big") / 2.0 ** 64
        r2 = int.from_bytes(h[8:16], "big") / 2.0 ** 64
        f = Fault(rnd=int.from_bytes(h[16:24], "big") / 2.0 ** 64)
        acc = 0.0
        for name in ("fail", "hang", "drop", "noreply"):
            acc += cfg[name + "_rate"]
            if r1 < acc:
                f.transport = name
                break
        if is_job:
            acc = 0.0
            for name in ("lose", "exec_fail", "black", "truncate"):
                acc += cfg[name + "_rate"]
                if r2 < acc:
                    f.job = name
                    break
        return f

    def count_fault(self, name):
        with self.lock:
            self.faults[name] += 1


# --------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------

class HTTPError(Exception):
    def __init__(self, status, body, ctype="application/json", headers=None):
        super().__init__(status)
        self.status, self.body, self.ctype, self.headers = status, body, ctype, headers or []


def jdump_compact(obj):          # Starlette JSONResponse / nlohmann::json::dump()
    return json.dumps(obj, ensure_ascii=False, allow_nan=False,
                      separators=(",", ":")).encode("utf-8")


def jdump_aiohttp(obj):          # aiohttp web.json_response (json.dumps defaults)
    return json.dumps(obj).encode("utf-8")


class Response:
    __slots__ = ("status", "body", "ctype", "headers", "server")

    def __init__(self, status, body, ctype="application/json", headers=None, server=None):
        self.status, self.body, self.ctype = status, body, ctype
        self.headers = headers or []
        self.server = server


def a1111_json(obj, status=200, headers=None):
    return Response(status, jdump_compact(obj), "application/json", headers, "uvicorn")


def a1111_exc(status, detail, errors, error="HTTPException"):
    """modules/api/api.py handle_exception(): {error, detail, body, errors}."""
    return a1111_json({"error": error, "detail": detail, "body": "", "errors": errors}, status)


def comfy_json(obj, status=200):
    return Response(status, jdump_aiohttp(obj), "application/json; charset=utf-8", None,
                    "Python/3.11 aiohttp/3.11.11")


def comfy_text(status, text):
    return Response(status, text.encode(), "text/plain; charset=utf-8", None,
                    "Python/3.11 aiohttp/3.11.11")


def sdcpp_json(obj, status=200):
    return Response(status, jdump_compact(obj), "application/json", None, "")


def _fail_response(proto):
    if proto == "a1111":
        return a1111_exc(500, "", "test server: injected failure", "RuntimeError")
    if proto == "comfyui":
        return comfy_text(500, "500 Internal Server Error\n\nServer got itself in trouble")
    return sdcpp_json({"error": "server_error", "message": "test server: injected failure"}, 500)


def _not_found(proto, method_not_allowed=False):
    if proto == "a1111":
        if method_not_allowed:
            return a1111_json({"detail": "Method Not Allowed"}, 405)
        return a1111_json({"detail": "Not Found"}, 404)
    if proto == "comfyui":
        if method_not_allowed:
            return comfy_text(405, "405: Method Not Allowed")
        return comfy_text(404, "404: Not Found")
    return Response(404, b"", "text/plain", None, "")


def parse_multipart(body, ctype):
    m = re.search(r'boundary=(?:"([^"]+)"|([^;\s]+))', ctype or "")
    if not m:
        raise ValueError("no boundary")
    delim = b"--" + (m.group(1) or m.group(2)).encode("latin-1")
    fields = {}
    for part in body.split(delim)[1:]:
        if part.startswith(b"--"):
            break
        if part.startswith(b"\r\n"):
            part = part[2:]
        head, sep, data = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        if data.endswith(b"\r\n"):
            data = data[:-2]
        disp = ""
        for line in head.decode("utf-8", "replace").split("\r\n"):
            if line.lower().startswith("content-disposition:"):
                disp = line
        name = re.search(r'\bname="([^"]*)"', disp)
        fname = re.search(r'\bfilename="([^"]*)"', disp)
        if not name:
            continue
        fields[name.group(1)] = {"filename": fname.group(1) if fname else None, "data": data}
    return fields


# --------------------------------------------------------------------------------------------
# AUTOMATIC1111 / Forge
# --------------------------------------------------------------------------------------------

# StableDiffusionTxt2ImgProcessingAPI fields (pydantic v1 model built from
# StableDiffusionProcessingTxt2Img.__init__ plus the API extras), with their defaults.
A1111_TXT2IMG_FIELDS = collections.OrderedDict([
    ("prompt", ("str", "")), ("styles", ("list_str", None)), ("seed", ("int", -1)),
    ("subseed", ("int", -1)), ("subseed_strength", ("float", 0)),
    ("seed_resize_from_h", ("int", -1)), ("seed_resize_from_w", ("int", -1)),
    ("sampler_name", ("str", None)), ("scheduler", ("str", None)), ("batch_size", ("int", 1)),
    ("n_iter", ("int", 1)), ("steps", ("int", 50)), ("cfg_scale", ("float", 7.0)),
    ("width", ("int", 512)), ("height", ("int", 512)), ("restore_faces", ("bool", None)),
    ("tiling", ("bool", None)), ("do_not_save_samples", ("bool", False)),
    ("do_not_save_grid", ("bool", False)), ("negative_prompt", ("str", None)),
    ("eta", ("float", None)), ("denoising_strength", ("float", None)),
    ("s_min_uncond", ("float", None)), ("s_churn", ("float", None)),
    ("s_tmax", ("float", None)), ("s_tmin", ("float", None)), ("s_noise", ("float", None)),
    ("override_settings", ("dict", None)),
    ("override_settings_restore_afterwards", ("bool", True)),
    ("refiner_checkpoint", ("str", None)), ("refiner_switch_at", ("float", None)),
    ("disable_extra_networks", ("bool", False)), ("firstpass_image", ("str", None)),
    ("comments", ("dict", None)), ("enable_hr", ("bool", False)),
    ("firstphase_width", ("int", 0)), ("firstphase_height", ("int", 0)),
    ("hr_scale", ("float", 2.0)), ("hr_upscaler", ("str", None)),
    ("hr_second_pass_steps", ("int", 0)), ("hr_resize_x", ("int", 0)),
    ("hr_resize_y", ("int", 0)), ("hr_checkpoint_name", ("str", None)),
    ("hr_sampler_name", ("str", None)), ("hr_scheduler", ("str", None)),
    ("hr_prompt", ("str", "")), ("hr_negative_prompt", ("str", "")),
    ("force_task_id", ("str", None)), ("sampler_index", ("str", "Euler")),
    ("script_name", ("str", None)), ("script_args", ("list", [])),
    ("send_images", ("bool", True)), ("save_images", ("bool", False)),
    ("alwayson_scripts", ("dict", {})), ("infotext", ("str", None)),
])
A1111_IMG2IMG_EXTRA = collections.OrderedDict([
    ("init_images", ("list", None)), ("resize_mode", ("int", 0)),
    ("image_cfg_scale", ("float", None)), ("mask", ("str", None)),
    ("mask_blur", ("int", None)), ("inpainting_fill", ("int", 0)),
    ("inpaint_full_res", ("bool", True)), ("inpaint_full_res_padding", ("int", 0)),
    ("inpainting_mask_invert", ("int", 0)), ("include_init_images", ("bool", False)),
])
_V1_ERR = {
    "int": ("value is not a valid integer", "type_error.integer"),
    "float": ("value is not a valid float", "type_error.float"),
    "str": ("str type expected", "type_error.str"),
    "bool": ("value could not be parsed to a boolean", "type_error.bool"),
    "dict": ("value is not a valid dict", "type_error.dict"),
    "list": ("value is not a valid list", "type_error.list"),
}
_BOOL_STR = {"0": False, "off": False, "f": False, "false": False, "n": False, "no": False,
             "1": True, "on": True, "t": True, "true": True, "y": True, "yes": True}


def _v1_coerce(kind, v):
    """pydantic v1 lenient coercion; raises (msg, type) on failure."""
    if v is None:
        return None
    if kind == "int":
        if isinstance(v, int):
            return int(v)
        if isinstance(v, float):
            if math.isnan(v) or math.isinf(v):
                raise ValueError(_V1_ERR["int"])
            return int(v)
        if isinstance(v, str):
            try:
                return int(v.strip())
            except ValueError:
                raise ValueError(_V1_ERR["int"])
        raise ValueError(_V1_ERR["int"])
    if kind == "float":
        if isinstance(v, (int, float)):
            return float(v)
        if isinstance(v, str):
            try:
                return float(v.strip())
            except ValueError:
                raise ValueError(_V1_ERR["float"])
        raise ValueError(_V1_ERR["float"])
    if kind == "str":
        if isinstance(v, str):
            return v
        if isinstance(v, (int, float)):
            return str(v)
        raise ValueError(_V1_ERR["str"])
    if kind == "bool":
        if isinstance(v, bool):
            return v
        if isinstance(v, int) and v in (0, 1):
            return bool(v)
        if isinstance(v, str) and v.lower() in _BOOL_STR:
            return _BOOL_STR[v.lower()]
        raise ValueError(_V1_ERR["bool"])
    if kind == "dict":
        if isinstance(v, dict):
            return v
        raise ValueError(_V1_ERR["dict"])
    if kind == "list":
        if isinstance(v, list):
            return v
        raise ValueError(_V1_ERR["list"])
    raise AssertionError(kind)


def a1111_validate(body, fields):
    """FastAPI/pydantic v1 request validation: (values, None) or (None, 422 Response)."""
    try:
        data = json.loads(body.decode("utf-8")) if body else None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        pos = getattr(e, "pos", 0)
        msg = getattr(e, "msg", str(e))
        return None, a1111_json({"detail": [{
            "loc": ["body", pos], "msg": "%s: line %d column %d (char %d)" % (
                msg, getattr(e, "lineno", 1), getattr(e, "colno", 1), pos),
            "type": "value_error.jsondecode",
            "ctx": {"msg": msg, "doc": body.decode("utf-8", "replace"), "pos": pos,
                    "lineno": getattr(e, "lineno", 1), "colno": getattr(e, "colno", 1)}}]}, 422)
    if data is None:
        return None, a1111_json({"detail": [{"loc": ["body"], "msg": "field required",
                                             "type": "value_error.missing"}]}, 422)
    if not isinstance(data, dict):
        return None, a1111_json({"detail": [{"loc": ["body"], "msg": "value is not a valid dict",
                                             "type": "type_error.dict"}]}, 422)
    errors, values = [], collections.OrderedDict()
    for name, (kind, default) in fields.items():
        if name not in data:
            values[name] = json.loads(json.dumps(default))
            continue
        v = data[name]
        if kind == "list_str":
            try:
                lst = _v1_coerce("list", v)
            except ValueError as e:
                errors.append({"loc": ["body", name], "msg": e.args[0][0], "type": e.args[0][1]})
                continue
            if lst is not None:
                out = []
                for i, item in enumerate(lst):
                    try:
                        out.append(_v1_coerce("str", item))
                    except ValueError as e:
                        errors.append({"loc": ["body", name, i], "msg": e.args[0][0],
                                       "type": e.args[0][1]})
                lst = out
            values[name] = lst
            continue
        try:
            values[name] = _v1_coerce(kind, v)
        except ValueError as e:
            errors.append({"loc": ["body", name], "msg": e.args[0][0], "type": e.args[0][1]})
    if errors:
        return None, a1111_json({"detail": errors}, 422)
    return values, None


_LORA_TAG = re.compile(r"<lora:([^:>]+)(?::([^:>]*))?(?::[^>]*)?>")


def a1111_quote(text):
    """modules/infotext_utils.quote()."""
    text = str(text)
    if "," not in text and "\n" not in text and ":" not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def a1111_sampler_and_scheduler(sampler_name, scheduler_name):
    """sd_samplers.get_sampler_and_scheduler(): unknown names fall back silently."""
    sched_map = {}
    for name, label, aliases in A1111_SCHEDULERS:
        sched_map[name] = sched_map[label] = (name, label)
    found = sched_map.get(scheduler_name, A1111_SCHEDULERS[0][:2])
    name = sampler_name or A1111_SAMPLERS[0][0]
    for sname, label, aliases in A1111_SCHEDULERS:
        done = False
        for opt in [label] + (aliases or []):
            if name.endswith(" " + opt):
                found = (sname, label)
                name = name[:-(len(opt) + 1)]
                done = True
                break
        if done:
            break
    sampler = None
    for s in A1111_SAMPLERS:
        if name == s[0] or name in s[1] or name.lower() == s[0].lower():
            sampler = s
            break
    if sampler is None:
        sampler = A1111_SAMPLERS[0]
    if sampler[2].get("scheduler") == found[0]:
        found = A1111_SCHEDULERS[0][:2]
    return sampler[0], found[1]


# GET /sdapi/v1/upscalers of a stock A1111 1.10 with the ESRGAN/RealESRGAN/LDSR/ScuNET/SwinIR
# built-ins: name, model_name (None for the PIL resizers), scale (UpscalerItem,
# modules/api/models.py)
A1111_UPSCALERS = [
    ("None", None, 4), ("Lanczos", None, 4), ("Nearest", None, 4),
    ("ESRGAN_4x", "ESRGAN_4x", 4), ("LDSR", "LDSR", 4), ("R-ESRGAN 4x+", "R-ESRGAN 4x+", 4),
    ("R-ESRGAN 4x+ Anime6B", "R-ESRGAN 4x+ Anime6B", 4), ("ScuNET", "ScuNET GAN", 4),
    ("SwinIR 4x", "SwinIR 4x", 4)]
# ExtrasSingleImageRequest (modules/api/models.py, AUTOMATIC1111/stable-diffusion-webui@f4f5bcac):
# pydantic checks the types and the ge/le bounds (422); other keys are ignored
A1111_EXTRAS_FIELDS = collections.OrderedDict([
    ("resize_mode", ("int", 0)), ("show_extras_results", ("bool", True)),
    ("gfpgan_visibility", ("float", 0.0)), ("codeformer_visibility", ("float", 0.0)),
    ("codeformer_weight", ("float", 0.0)), ("upscaling_resize", ("float", 2.0)),
    ("upscaling_resize_w", ("int", 512)), ("upscaling_resize_h", ("int", 512)),
    ("upscaling_crop", ("bool", True)), ("upscaler_1", ("str", "None")),
    ("upscaler_2", ("str", "None")), ("extras_upscaler_2_visibility", ("float", 0.0)),
    ("upscale_first", ("bool", False)), ("image", ("str", "")),
])


class A1111:
    def __init__(self, st):
        self.st = st

    def routes(self):
        r = {
            ("POST", "/sdapi/v1/txt2img"): self.txt2img,
            ("POST", "/sdapi/v1/img2img"): self.img2img,
            ("GET", "/sdapi/v1/options"): self.get_options,
            ("POST", "/sdapi/v1/options"): self.set_options,
            ("GET", "/sdapi/v1/sd-models"): self.sd_models,
            ("POST", "/sdapi/v1/refresh-checkpoints"): lambda r: a1111_json(None),
            ("GET", "/sdapi/v1/samplers"): self.samplers,
            ("GET", "/sdapi/v1/schedulers"): self.schedulers,
            ("GET", "/sdapi/v1/loras"): self.list_loras,
            ("POST", "/sdapi/v1/refresh-loras"): lambda r: a1111_json(None),
            ("GET", "/sdapi/v1/progress"): self.progress,
            ("POST", "/sdapi/v1/interrupt"): self.interrupt,
            ("POST", "/sdapi/v1/skip"): self.skip,
            ("POST", "/sdapi/v1/png-info"): self.png_info,
            ("GET", "/sdapi/v1/sd-vae"): lambda r: a1111_json([]),
            ("GET", "/sdapi/v1/upscalers"): lambda r: a1111_json([
                {"name": n, "model_name": m, "model_path": None, "model_url": None,
                 "scale": sc} for n, m, sc in A1111_UPSCALERS]),
            ("POST", "/sdapi/v1/extra-single-image"): self.extra_single_image,
            ("GET", "/sdapi/v1/scripts"): lambda r: a1111_json(
                {"txt2img": ["controlnet"] if not self.st.args.no_controlnet else [],
                 "img2img": []}),
        }
        if not self.st.args.no_controlnet:
            r.update({
                ("GET", "/controlnet/model_list"): self.cn_models,
                ("GET", "/controlnet/module_list"): lambda r: a1111_json(
                    {"module_list": self.cn_modules()}),
                ("GET", "/controlnet/version"): lambda r: a1111_json({"version": 2}),
            })
        if self.st.args.forge:
            # Forge adds /sdapi/v1/sd-modules (VAEs and text encoders) beside A1111's routes:
            # lllyasviel/stable-diffusion-webui-forge modules/api/api.py
            r[("GET", "/sdapi/v1/sd-modules")] = lambda r: a1111_json([])
        return r

    def cn_modules(self):
        """The preprocessor keys. sd-webui-controlnet lists its own names with "none" first
        (Mikubill/sd-webui-controlnet internal_controlnet/external_code.py get_modules);
        Forge's lib_controlnet lists "None" first and has no "none"
        (stable-diffusion-webui-forge extensions-builtin/sd_forge_controlnet/lib_controlnet/
        global_state.py get_sorted_preprocessors)."""
        rest = ["canny", "depth", "openpose", "lineart", "scribble"]
        return (["None"] if self.st.args.forge else ["none"]) + rest

    # -- listing endpoints ----------------------------------------------------------------------
    def sd_models(self, req):
        return a1111_json([self.st.model_info(m) for m in self.st.models])

    def samplers(self, req):
        return a1111_json([{"name": n, "aliases": a, "options": o} for n, a, o in A1111_SAMPLERS])

    def schedulers(self, req):
        return a1111_json([{"name": n, "label": l, "aliases": a, "default_rho": -1,
                            "need_inner_model": False} for n, l, a in A1111_SCHEDULERS])

    def list_loras(self, req):
        out = []
        for l in self.st.loras:
            stem = self.st.lora_stem(l)
            out.append({"name": stem, "alias": stem, "path": "/models/Lora/" + l,
                        "metadata": {"sshs_model_hash": fake_sha256("lora", stem)}})
        return a1111_json(out)

    def cn_title(self, name):
        # "stem [hash]": the file name without folder and extension, and its old 8-digit hash
        # (sd-webui-controlnet scripts/global_state.py get_all_models; Forge
        # lib_controlnet/global_state.py get_all_models)
        stem = name.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
        return "%s [%s]" % (stem, fake_sha256("controlnet", name)[:8])

    def cn_models(self, req):
        # sd-webui-controlnet: the "name [hash]" titles (internal_controlnet/external_code.py
        # get_models); Forge: "None" first, then the titles (lib_controlnet/global_state.py
        # controlnet_names)
        titles = [self.cn_title(c) for c in self.st.controlnets]
        return a1111_json({"model_list": (["None"] if self.st.args.forge else []) + titles})

    def a1111_lora(self, name):
        """The built-in Lora extension looks a <lora:NAME:w> up in available_network_aliases,
        whose keys are each file's name without folder or extension and its alias; a name
        written with an extension or a folder is not found (AUTOMATIC1111
        extensions-builtin/Lora/networks.py load_networks, list_available_networks; Forge:
        extensions-builtin/sd_forge_lora/networks.py)."""
        for l in self.st.loras:
            stem = self.st.lora_stem(l.replace("\\", "/").rsplit("/", 1)[-1])
            if name == stem:
                # a listed file that fails to load is logged and skipped, as a missing one
                # (networks.py load_networks: errors.display, continue)
                if stem in self.st.args.unloadable_loras.split(","):
                    return None
                return stem
        return None

    def cn_find_model(self, model):
        """Which listed ControlNet a unit's model names, or None. Forge: only the exact title
        (lib_controlnet/global_state.py get_controlnet_filename is a dict lookup).
        sd-webui-controlnet: the title, else find_closest_lora_model_name: the lower-case file
        stem, else the shortest stem containing it (scripts/controlnet.py)."""
        for c in self.st.controlnets:
            if model == self.cn_title(c):
                return c
        if self.st.args.forge or not model:
            return None
        stems = {c.rsplit(".", 1)[0].lower(): c for c in self.st.controlnets}
        low = model.lower()
        if low in stems:
            return stems[low]
        hits = sorted((k for k in stems if low in k), key=len)
        return stems[hits[0]] if hits else None

    def get_options(self, req):
        st = self.st
        with st.lock:
            ck = st.opts_checkpoint
        info = st.model_info(ck) if ck else None
        return a1111_json({
            "sd_model_checkpoint": info["title"] if info else None,
            "sd_checkpoint_hash": info["sha256"] if info else None,
            "sd_vae": "Automatic", "samples_format": "png", "CLIP_stop_at_last_layers": 1,
            "eta_noise_seed_delta": 0, "add_model_hash_to_info": True,
            "add_model_name_to_info": True, "add_version_to_infotext": True,
            "enable_pnginfo": True, "return_grid": True, "sd_checkpoints_limit": 1,
            "lora_add_hashes_to_infotext": True,
            # Forge registers its hidden options beside A1111's, so they are in every
            # GET /sdapi/v1/options answer (modules_forge/shared_options.py register,
            # modules/sysinfo.py get_config returns opts.data)
            **({"forge_preset": "sd", "forge_unet_storage_dtype": "Automatic",
                "forge_additional_modules": [], "forge_inference_memory": 1024,
                "forge_async_loading": "Queue", "forge_pin_shared_memory": "CPU"}
               if st.args.forge else {}),
        })

    def set_options(self, req):
        try:
            data = json.loads(req.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            data = None
        if not isinstance(data, dict):
            return a1111_json({"detail": [{"loc": ["body"], "msg": "value is not a valid dict",
                                           "type": "type_error.dict"}]}, 422)
        ck = data.get("sd_model_checkpoint")
        if ck is not None:
            m = self.st.find_checkpoint(ck)
            if m is None:
                return a1111_exc(500, "", "model %r not found" % (ck,), "RuntimeError")
            with self.st.lock:
                self.st.opts_checkpoint = m
            # A1111 reloads weights when the option changes (under no queue lock).
            self.switch_model(m, under_gpu=False)
        return a1111_json(None)

    def switch_model(self, target, under_gpu=True):
        st = self.st
        if not under_gpu:
            st.gpu_enter()
        try:
            with st.lock:
                need = st.loaded_checkpoint != target
                if need:
                    st.loaded_checkpoint = target
                    st.stats["model_switches"] += 1
            if need and st.config["model_switch_ms"] > 0:
                time.sleep(st.config["model_switch_ms"] / 1000.0)
        finally:
            if not under_gpu:
                st.gpu_exit()

    def progress(self, req):
        st = self.st
        with st.lock:
            job = st.a1111_job
            if job is None:
                return a1111_json({"progress": 0.0, "eta_relative": 0.0, "state": {
                    "skipped": False, "interrupted": False, "stopping_generation": False,
                    "job": "", "job_count": 0, "job_timestamp": "0", "job_no": 0,
                    "sampling_step": 0, "sampling_steps": 0}, "current_image": None,
                    "textinfo": None, "current_task": None})
            elapsed = time.time() - job["start"]
            frac = min(1.0, elapsed / job["duration"]) if job["duration"] > 0 else 1.0
            step = int(frac * job["steps"])
            progress = min(1.0, 0.01 + frac)
            eta = elapsed / progress - elapsed if progress > 0 else 0.0
            return a1111_json({"progress": progress, "eta_relative": eta, "state": {
                "skipped": False, "interrupted": job["interrupt"].is_set(),
                "stopping_generation": False, "job": "scripts_txt2img", "job_count": 1,
                "job_timestamp": job["timestamp"], "job_no": 0, "sampling_step": step,
                "sampling_steps": job["steps"]}, "current_image": None, "textinfo": None,
                "current_task": job["task_id"]})

    def interrupt(self, req):
        with self.st.lock:
            if self.st.a1111_job is not None:
                self.st.a1111_job["interrupt"].set()
        return a1111_json({})

    def skip(self, req):
        with self.st.lock:
            if self.st.a1111_job is not None:
                self.st.a1111_job["interrupt"].set()
        return a1111_json(None)

    def png_info(self, req):
        try:
            data = json.loads(req.body.decode("utf-8"))
            img = data["image"].strip()
            if img.startswith("data:image/"):
                img = img.split(";")[1].split(",")[1]
            raw = base64.b64decode(img)
        except Exception:
            return a1111_exc(500, "Invalid encoded image", "500: Invalid encoded image")
        texts = png_texts(raw)
        geninfo = texts.pop("parameters", "")
        params = {}
        lines = geninfo.split("\n")
        if lines and lines[-1].startswith("Steps:"):
            for m in re.finditer(r'\s*([\w ]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)', lines[-1]):
                v = m.group(2)
                if v.startswith('"'):
                    try:
                        v = json.loads(v)
                    except ValueError:
                        pass
                params[m.group(1)] = v
            body = lines[:-1]
            neg = [l for l in body if l.startswith("Negative prompt: ")]
            params["Prompt"] = "\n".join(l for l in body if not l.startswith("Negative prompt: "))
            params["Negative prompt"] = neg[0][len("Negative prompt: "):] if neg else ""
        return a1111_json({"info": geninfo, "items": texts, "parameters": params})

    # -- ControlNet -----------------------------------------------------------------------------
    def controlnet(self, cn_units):
        """(params, infotext entries) of the units the image is really made with, or a 500
        Response. Whatever goes wrong inside the extension's process() is logged and swallowed
        by A1111's script runner (modules/scripts.py ScriptRunner.process: errors.report),
        so the image is made all the same, without the units that failed."""
        st = self.st
        decoded = []
        for i, unit in cn_units:
            img = unit.get("image", unit.get("input_image"))
            if isinstance(img, dict):
                img = img.get("image")
            if not img:
                return a1111_exc(500, "", "controlnet is enabled but no input image is given",
                                 "ValueError"), None
            try:
                if isinstance(img, str) and img.startswith("data:image/"):
                    img = img.split(";")[1].split(",")[1]
                raw = base64.b64decode(img, validate=False)
            except (binascii.Error, ValueError, IndexError):
                return a1111_exc(500, "Invalid encoded image", "500: Invalid encoded image"), None
            decoded.append((i, unit, raw))

        def num(u, k, d):
            try:
                return float(u.get(k, d))
            except (TypeError, ValueError):
                return None

        def line(unit, model):
            return ("Module: %s, Model: %s, Weight: %s, Resize Mode: %s, Guidance Start: %s, "
                    "Guidance End: %s, Pixel Perfect: %s, Control Mode: %s" % (
                        unit.get("module", "none"), model, num(unit, "weight", 1.0),
                        unit.get("resize_mode", "Crop and Resize"),
                        num(unit, "guidance_start", 0.0), num(unit, "guidance_end", 1.0),
                        bool(unit.get("pixel_perfect", False)),
                        unit.get("control_mode", "Balanced")))

        modules = self.cn_modules()
        params, info, applied = [], [], []
        if st.args.forge:
            # Forge: units are plain dataclasses (no range check on weight), the infotext is
            # written for every enabled unit first (lib_controlnet/infotext.py
            # write_infotext, called at the top of scripts/controlnet.py process); then each
            # unit's preprocessor is looked up by its exact key ("None", not "none") and its
            # model by its exact title; the first unit that fails ends process(), and it and
            # the units after it are not applied (process_before_every_sampling finds no
            # parameters for them)
            for n, (i, unit, raw) in enumerate(decoded):
                info.append(("ControlNet %d" % n, line(unit, unit.get("model", "None"))))
            for n, (i, unit, raw) in enumerate(decoded):
                module = str(unit.get("module", "None"))
                found = self.cn_find_model(str(unit.get("model", "None")))
                if module not in modules or found is None:
                    break
                applied.append((unit, raw, found))
        else:
            # sd-webui-controlnet: every unit is validated first (internal_controlnet/args.py
            # ControlNetUnit: weight 0..2, guidance 0..1 and start <= end, a module it knows
            # by name); one invalid unit fails them all before any infotext is written
            # (scripts/controlnet.py get_enabled_units). Then the infotext is written for
            # every unit and each model is loaded (build_control_model: the title, else
            # find_closest_lora_model_name); a model not found raises, so no unit is applied
            # but their infotext lines stay.
            ok = True
            for i, unit, raw in decoded:
                w, gs, ge = (num(unit, "weight", 1.0), num(unit, "guidance_start", 0.0),
                             num(unit, "guidance_end", 1.0))
                if (w is None or not 0 <= w <= 2 or gs is None or ge is None or
                        not 0 <= gs <= 1 or not 0 <= ge <= 1 or gs > ge or
                        str(unit.get("module", "none")) not in modules):
                    ok = False
            if not ok:
                return [], []
            for n, (i, unit, raw) in enumerate(decoded):
                found = self.cn_find_model(str(unit.get("model", "None")))
                info.append(("ControlNet %d" % n, line(
                    unit, self.cn_title(found) if found else unit.get("model", "None"))))
                applied.append((unit, raw, found))
            if any(f is None for _, _, f in applied):
                applied = []
        for unit, raw, found in applied:
            params.append([found, str(unit.get("module")), num(unit, "weight", 1.0),
                           num(unit, "guidance_start", 0.0), num(unit, "guidance_end", 1.0),
                           str(unit.get("resize_mode", "Crop and Resize")),
                           str(unit.get("control_mode", "Balanced")),
                           hashlib.sha256(raw).hexdigest()[:16]])
        return params, info

    # -- generation -----------------------------------------------------------------------------
    def txt2img(self, req):
        return self.generate(req, img2img=False)

    def extra_single_image(self, req):
        """POST /sdapi/v1/extra-single-image: the image upscaled by upscaler_1 (the test
        server's upscale is a nearest-neighbour resize, so a test can compare pixels). As the
        real one: resize_mode 0 scales by upscaling_resize (the result is int(w * factor) x
        int(h * factor), scripts/postprocessing_upscale.py resizes the model's output to it),
        1 to upscaling_resize_w x _h; an unknown upscaler_1 is an AssertionError ("could not
        find upscaler named ...") answered 500; an image that does not decode is 500 "Invalid
        encoded image" (api.py decode_base64_to_image). Face restoration and upscaler_2 are
        accepted and ignored (the real one applies them at their visibility; kiln sends 0)."""
        v, err = a1111_validate(req.body, A1111_EXTRAS_FIELDS)
        if err:
            return err
        errors = []
        for k, lo, hi in (("gfpgan_visibility", 0, 1), ("codeformer_visibility", 0, 1),
                          ("codeformer_weight", 0, 1), ("upscaling_resize", 1, 8),
                          ("extras_upscaler_2_visibility", 0, 1)):
            if not lo <= v[k] <= hi:
                errors.append({"loc": ["body", k], "msg": "ensure this value is %s %s" % (
                    "greater than or equal to" if v[k] < lo else "less than or equal to",
                    lo if v[k] < lo else hi), "type": "value_error.number.not_%s" % (
                    "ge" if v[k] < lo else "le"), "ctx": {"limit_value": lo if v[k] < lo else hi}})
        if v["resize_mode"] not in (0, 1):
            errors.append({"loc": ["body", "resize_mode"], "msg": "unexpected value; permitted: "
                           "0, 1", "type": "value_error.const",
                           "ctx": {"given": v["resize_mode"], "permitted": [0, 1]}})
        if errors:
            return a1111_json({"detail": errors}, 422)
        names = [n for n, _, _ in A1111_UPSCALERS]
        if v["upscaler_1"] not in names:
            return a1111_exc(500, "", "could not find upscaler named %s" % v["upscaler_1"],
                             "AssertionError")
        try:
            w, h, px = decode_png(base64.b64decode(v["image"].split(",", 1)[-1], validate=True))
        except (ValueError, binascii.Error, zlib.error, KeyError, struct.error):
            return a1111_exc(500, "", "Invalid encoded image", "HTTPException")
        if v["resize_mode"] == 0:
            nw, nh = int(w * v["upscaling_resize"]), int(h * v["upscaling_resize"])
        else:
            nw, nh = v["upscaling_resize_w"], v["upscaling_resize_h"]
        if v["upscaler_1"] != "None":
            px, w, h = resize_nearest(w, h, px, nw, nh), nw, nh
        data = encode_rgba_png(w, h, px)
        st = self.st
        st.log_job("a1111", "extras-%s" % hashlib.sha256(data).hexdigest()[:12],
                   [{"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                     "upscaler": v["upscaler_1"], "size": [w, h]}], "completed")
        return a1111_json({"html_info": "<p>Postprocess upscale by: %s, Postprocess upscaler: "
                                        "%s</p>" % (v["upscaling_resize"], v["upscaler_1"]),
                           "image": base64.b64encode(data).decode("ascii")})

    def img2img(self, req):
        return self.generate(req, img2img=True)

    def generate(self, req, img2img):
        st = self.st
        fields = A1111_TXT2IMG_FIELDS
        if img2img:
            fields = collections.OrderedDict(list(fields.items()) + list(A1111_IMG2IMG_EXTRA.items()))
        v, err = a1111_validate(req.body, fields)
        if err:
            return err
        if img2img and v["init_images"] is None:
            return a1111_exc(404, "Init image not found", "404: Init image not found")
        # scripts
        if v["script_name"]:
            return a1111_exc(422, "Script '%s' not found" % v["script_name"],
                             "422: Script '%s' not found" % v["script_name"])
        cn_units = []
        for sname, sval in (v["alwayson_scripts"] or {}).items():
            lname = sname.lower()
            if lname == "controlnet" and not st.args.no_controlnet:
                args = sval.get("args", []) if isinstance(sval, dict) else []
                for i, unit in enumerate(args):
                    if not isinstance(unit, dict) or not unit.get("enabled", True):
                        continue
                    cn_units.append((i, unit))
            elif lname in ("refiner", "seed", "sampler", "extra options"):
                continue
            else:
                d = "always on script %s not found" % sname
                return a1111_exc(422, d, "422: " + d)
        cn_params, cn_info = self.controlnet(cn_units)
        if isinstance(cn_params, Response):
            return cn_params
        sampler, sched_label = a1111_sampler_and_scheduler(
            v["sampler_name"] or v["sampler_index"], v["scheduler"])
        prompt = v["prompt"] if v["prompt"] is not None else ""
        negative = v["negative_prompt"] or ""
        width, height, steps = v["width"], v["height"], v["steps"]
        if width is None or height is None or steps is None:
            return a1111_exc(500, "", "'NoneType' object cannot be interpreted as an integer",
                             "TypeError")
        n_images = max(1, v["batch_size"] or 1) * max(1, v["n_iter"] or 1)
        if not (64 <= width <= 4096 and 64 <= height <= 4096) or n_images > 64:
            return a1111_exc(500, "", "CUDA out of memory. Tried to allocate %d x %d x %d "
                             "(test server limits: 64..4096 px, 64 images)" % (
                                 n_images, width, height), "OutOfMemoryError")
        if steps < 1:
            return a1111_exc(500, "", "integer division or modulo by zero", "ZeroDivisionError")
        cfg = v["cfg_scale"] if v["cfg_scale"] is not None else 7.0
        # LoRA tags: <lora:name:w>; unknown ones are skipped, as A1111 does
        # An unknown name is skipped and the image made without it, answered 200: A1111 notes
        # "Lora not found: NAME" in the model hijack's comments (extensions-builtin/Lora/
        # networks.py load_networks), which reach the web page but not the API's info
        # (modules/processing.py Processed.js has no comments key), so the one trace in the
        # answer is a missing "Lora hashes" entry (extra_networks_lora.py activate: one
        # "name: shorthash" per loaded network, the name as written less ':' and ','). Forge
        # hands the missing entry on to load_networks, which fails on it after the lookup and
        # so applies none of the image's LoRAs and writes no hashes
        # (extensions-builtin/sd_forge_lora/networks.py load_networks, the error caught by
        # modules/extra_networks.py activate).
        loras, lora_hashes, missing = [], [], []
        if not v["disable_extra_networks"]:
            for m in _LORA_TAG.finditer(prompt):
                name = m.group(1)
                try:
                    w = float(m.group(2)) if m.group(2) not in (None, "") else 1.0
                except ValueError:
                    w = 1.0
                stem = self.a1111_lora(name)
                if stem is None:
                    missing.append(name)
                    continue
                loras.append([stem, w])
                key = name.replace(":", "").replace(",", "")
                if key not in [x.split(": ")[0] for x in lora_hashes]:
                    lora_hashes.append("%s: %s" % (key, st.lora_hash(stem)))
            if missing and st.args.forge:
                loras, lora_hashes = [], []
        render_prompt = _LORA_TAG.sub("", prompt)
        ov = v["override_settings"] or {}
        target_override = st.find_checkpoint(ov.get("sd_model_checkpoint")) \
            if "sd_model_checkpoint" in ov else None
        extra_img = None
        inpaint = None
        if img2img:
            first = v["init_images"][0] if v["init_images"] else ""
            extra_img = hashlib.sha256(str(first).encode()).hexdigest()[:16]
            if v["mask"]:
                try:
                    iw, ih, ipx = decode_png(base64.b64decode(str(first).split(",", 1)[-1]))
                    mw, mh, mpx = decode_png(base64.b64decode(v["mask"].split(",", 1)[-1]))
                except (ValueError, binascii.Error, zlib.error, KeyError, struct.error):
                    return a1111_exc(500, "", "Invalid encoded image", "HTTPException")
                # both resized to width x height; the mask binarised on its red channel
                # (create_binary_mask: an RGBA mask by its alpha, else converted to L)
                ww, hh = width // 8 * 8, height // 8 * 8
                ipx = resize_nearest(iw, ih, ipx, ww, hh)
                mpx = resize_nearest(mw, mh, mpx, ww, hh)
                if any(mpx[4 * i + 3] < 255 for i in range(ww * hh)):
                    m = bytes(mpx[4 * i + 3] for i in range(ww * hh))
                else:
                    m = bytes((299 * mpx[4 * i] + 587 * mpx[4 * i + 1] + 114 * mpx[4 * i + 2])
                              // 1000 for i in range(ww * hh))
                if v["inpainting_mask_invert"]:
                    m = bytes(255 - x for x in m)
                inpaint = (ww, hh, ipx, m)
        fault = req.fault
        job_fault = fault.job if fault.job != "lose" else None
        task_id = v["force_task_id"] or "task(%s)" % uuid.uuid4().hex[:15]

        with st.lock:
            st.a1111_waiting += 1
            st.note_queue_depth(st.a1111_waiting)
        st.gpu_enter()
        try:
            with st.lock:
                st.a1111_waiting -= 1
                target = target_override or st.opts_checkpoint
                if target_override and not v["override_settings_restore_afterwards"]:
                    st.opts_checkpoint = target_override
            # The job's latency window opens when its request arrived, or when the GPU came
            # free if it had to wait: this server's own parsing, validation and rendering
            # are inside it, so latency_ms is the whole of a job's time here (what a client's
            # ideal of jobs x latency assumes), not latency plus Python's overhead. A model
            # switch adds its own time.
            t_sw = time.time()
            self.switch_model(target)
            t0 = max(req.t_start, st.gpu_free_at) + (time.time() - t_sw)
            with st.lock:
                seed = v["seed"]
                if seed is None or seed == -1:
                    seed = st.seed_rng.randrange(4294967294)
                subseed = v["subseed"]
                if subseed is None or subseed == -1:
                    subseed = st.seed_rng.randrange(4294967294)
                job = {"start": t0, "duration": 0.0, "steps": steps, "interrupt": threading.Event(),
                       "timestamp": time.strftime("%Y%m%d%H%M%S"), "task_id": task_id}
                st.a1111_job = job
            minfo = st.model_info(target) if target else {"model_name": "", "hash": ""}
            all_seeds = [seed + i for i in range(n_images)]
            all_subseeds = [subseed + i for i in range(n_images)]
            job["duration"] = st.job_latency("a1111|%s|%d" % (render_prompt, seed))
            extra_params = collections.OrderedDict()
            if lora_hashes:
                extra_params["Lora hashes"] = ", ".join(lora_hashes)
            for k, val in cn_info:
                extra_params[k] = val
            infotexts, outputs = [], []
            for i in range(n_images):
                params = {
                    "prompt": render_prompt, "negative_prompt": negative, "seed": all_seeds[i],
                    "width": width // 8 * 8, "height": height // 8 * 8, "steps": steps,
                    "cfg": float(cfg), "sampler": sampler, "checkpoint": target,
                    "loras": sorted(loras),
                    "extra": {"scheduler": sched_label, "controlnet": cn_params,
                              "init_image": extra_img,
                              "denoising_strength": v.get("denoising_strength") if img2img else None}}
                gp = [("Steps", steps), ("Sampler", sampler), ("Schedule type", sched_label),
                      ("CFG scale", cfg), ("Seed", all_seeds[i]),
                      ("Size", "%dx%d" % (width, height)),
                      ("Model hash", minfo["hash"]), ("Model", minfo["model_name"])]
                if img2img and v.get("denoising_strength") is not None:
                    gp.append(("Denoising strength", v["denoising_strength"]))
                gp.extend(extra_params.items())
                gp.append(("Version", "v1.10.1"))
                gtext = ", ".join("%s: %s" % (k, a1111_quote(val)) for k, val in gp
                                  if val is not None)
                neg_text = "\nNegative prompt: %s" % negative if negative else ""
                infotext = ("%s%s\n%s" % (prompt, neg_text, gtext)).strip()
                infotexts.append(infotext)
                outputs.append((params, infotext))
            rendered = []
            variant = "black" if job_fault == "black" else None
            if job_fault == "exec_fail":
                rendered = None
            elif inpaint is not None:
                # img2img with a mask: the real one resizes the init image and the mask to
                # width x height (processing.py StableDiffusionProcessingImg2Img.init,
                # images.resize_image), regenerates the masked area and pastes the original
                # back outside it (apply_overlay; mask_blur softens the edge, which this
                # server does not); here the masked pixels become the render of params
                iw, ih, ipx, mpx = inpaint
                for params, infotext in outputs:
                    data = encode_rgba_png(width, height, inpaint_pixels(
                        width, height, ipx, mpx, params), (("parameters", infotext),))
                    rendered.append((None, data))
            else:
                for params, infotext in outputs:
                    o = Output(params, variant, (("parameters", infotext),), job_fault == "truncate")
                    rendered.append((o, o.bytes(st.cache)))
            def build(rendered):
                images = [base64.b64encode(b).decode("ascii") for _, b in rendered] \
                    if v["send_images"] else []
                info = collections.OrderedDict([
                    ("prompt", prompt), ("all_prompts", [prompt] * n_images),
                    ("negative_prompt", negative), ("all_negative_prompts", [negative] * n_images),
                    ("seed", seed), ("all_seeds", all_seeds), ("subseed", subseed),
                    ("all_subseeds", all_subseeds), ("subseed_strength", v["subseed_strength"]),
                    ("width", width), ("height", height), ("sampler_name", sampler),
                    ("cfg_scale", cfg), ("steps", steps), ("batch_size", v["batch_size"]),
                    ("restore_faces", v["restore_faces"]), ("face_restoration_model", None),
                    ("sd_model_name", minfo["model_name"]), ("sd_model_hash", minfo["hash"]),
                    ("sd_vae_name", None), ("sd_vae_hash", None),
                    ("seed_resize_from_w", v["seed_resize_from_w"]),
                    ("seed_resize_from_h", v["seed_resize_from_h"]),
                    ("denoising_strength", v["denoising_strength"]),
                    ("extra_generation_params", dict(extra_params, **{"Schedule type": sched_label})),
                    ("index_of_first_image", 0), ("infotexts", infotexts), ("styles", v["styles"] or []),
                    ("job_timestamp", job["timestamp"]), ("clip_skip", 1),
                    ("is_using_inpainting_conditioning", False), ("version", "v1.10.1")])
                params_echo = dict(v)
                if img2img and not v["include_init_images"]:
                    params_echo["init_images"] = None
                    params_echo["mask"] = None
                return a1111_json({"images": images, "parameters": params_echo,
                                   "info": json.dumps(info, ensure_ascii=False)})

            # the answer is built inside the GPU window; only the socket write is left after it
            resp = build(rendered) if rendered is not None else None
            remaining = job["duration"] - (time.time() - t0)
            interrupted = False
            if remaining > 0:
                interrupted = job["interrupt"].wait(remaining)
            elif job["interrupt"].is_set():
                interrupted = True
            if interrupted and rendered is not None and inpaint is None:
                rendered2 = []
                for o, _ in rendered:
                    o2 = Output(o.params, o.variant or "interrupted", o.texts, o.truncate)
                    rendered2.append((o2, o2.bytes(st.cache)))
                rendered = rendered2
                resp = build(rendered)
        finally:
            with st.lock:
                st.a1111_job = None
            st.gpu_exit()

        if rendered is None:
            st.count_fault("exec_fail")
            st.log_job("a1111", task_id, [], "failed")
            return a1111_exc(500, "", "CUDA out of memory. Tried to allocate 2.00 GiB "
                             "(injected by test server)", "OutOfMemoryError")
        if job_fault in ("black", "truncate"):
            st.count_fault(job_fault)
        st.log_job("a1111", task_id, [o.describe(st.cache) if o else {
            "sha256": hashlib.sha256(b).hexdigest(), "bytes": len(b), "inpaint": True}
            for o, b in rendered],
                   "interrupted" if interrupted else "completed")
        return resp


# --------------------------------------------------------------------------------------------
# ComfyUI
# --------------------------------------------------------------------------------------------

MAX_RESOLUTION = 16384


def comfy_node_defs(st):
    ck = list(st.models)
    lo = list(st.loras)
    cn = list(st.controlnets)
    with st.lock:
        inputs = sorted(f[2] if not f[1] else f[1] + "/" + f[2]
                        for f in st.comfy_files if f[0] == "input")
    return {
        "CheckpointLoaderSimple": {"required": collections.OrderedDict([
            ("ckpt_name", [ck])]), "return": ["MODEL", "CLIP", "VAE"], "output_node": False,
            "category": "loaders"},
        "LoraLoader": {"required": collections.OrderedDict([
            ("model", ["MODEL"]), ("clip", ["CLIP"]), ("lora_name", [lo]),
            ("strength_model", ["FLOAT", {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01}]),
            ("strength_clip", ["FLOAT", {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01}])]),
            "return": ["MODEL", "CLIP"], "output_node": False, "category": "loaders"},
        "CLIPTextEncode": {"required": collections.OrderedDict([
            ("text", ["STRING", {"multiline": True, "dynamicPrompts": True}]), ("clip", ["CLIP"])]),
            "return": ["CONDITIONING"], "output_node": False, "category": "conditioning"},
        # comfy_extras/nodes_clip_sdxl.py: no "text" input; one set anyway is ignored, as
        # execution.py reads only the declared inputs (get_input_data) and validate_inputs
        # checks only those
        "CLIPTextEncodeSDXL": {"required": collections.OrderedDict([
            ("clip", ["CLIP"]),
            ("width", ["INT", {"default": 1024, "min": 0, "max": MAX_RESOLUTION}]),
            ("height", ["INT", {"default": 1024, "min": 0, "max": MAX_RESOLUTION}]),
            ("crop_w", ["INT", {"default": 0, "min": 0, "max": MAX_RESOLUTION}]),
            ("crop_h", ["INT", {"default": 0, "min": 0, "max": MAX_RESOLUTION}]),
            ("target_width", ["INT", {"default": 1024, "min": 0, "max": MAX_RESOLUTION}]),
            ("target_height", ["INT", {"default": 1024, "min": 0, "max": MAX_RESOLUTION}]),
            ("text_g", ["STRING", {"multiline": True, "default": "CLIP_G"}]),
            ("text_l", ["STRING", {"multiline": True, "default": "CLIP_L"}])]),
            "return": ["CONDITIONING"], "output_node": False, "category": "advanced/conditioning"},
        # nodes.py ConditioningCombine: the two conditionings' lists joined
        "ConditioningCombine": {"required": collections.OrderedDict([
            ("conditioning_1", ["CONDITIONING"]), ("conditioning_2", ["CONDITIONING"])]),
            "return": ["CONDITIONING"], "output_node": False, "category": "conditioning"},
        # nodes.py ControlNetApply (deprecated, still served): one conditioning in and out
        "ControlNetApply": {"required": collections.OrderedDict([
            ("conditioning", ["CONDITIONING"]), ("control_net", ["CONTROL_NET"]),
            ("image", ["IMAGE"]),
            ("strength", ["FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.01}])]),
            "return": ["CONDITIONING"], "output_node": False,
            "category": "conditioning/controlnet"},
        "EmptyLatentImage": {"required": collections.OrderedDict([
            ("width", ["INT", {"default": 512, "min": 16, "max": MAX_RESOLUTION, "step": 8}]),
            ("height", ["INT", {"default": 512, "min": 16, "max": MAX_RESOLUTION, "step": 8}]),
            ("batch_size", ["INT", {"default": 1, "min": 1, "max": 4096}])]),
            "return": ["LATENT"], "output_node": False, "category": "latent"},
        "KSampler": {"required": collections.OrderedDict([
            ("model", ["MODEL"]),
            ("seed", ["INT", {"default": 0, "min": 0, "max": 0xffffffffffffffff, "control_after_generate": True}]),
            ("steps", ["INT", {"default": 20, "min": 1, "max": 10000}]),
            ("cfg", ["FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01}]),
            ("sampler_name", [COMFY_SAMPLERS]), ("scheduler", [COMFY_SCHEDULERS]),
            ("positive", ["CONDITIONING"]), ("negative", ["CONDITIONING"]),
            ("latent_image", ["LATENT"]),
            ("denoise", ["FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01}])]),
            "return": ["LATENT"], "output_node": False, "category": "sampling"},
        "VAEDecode": {"required": collections.OrderedDict([
            ("samples", ["LATENT"]), ("vae", ["VAE"])]),
            "return": ["IMAGE"], "output_node": False, "category": "latent"},
        "SaveImage": {"required": collections.OrderedDict([
            ("images", ["IMAGE"]), ("filename_prefix", ["STRING", {"default": "ComfyUI"}])]),
            "return": [], "output_node": True, "category": "image"},
        "PreviewImage": {"required": collections.OrderedDict([("images", ["IMAGE"])]),
                         "return": [], "output_node": True, "category": "image"},
        "ControlNetLoader": {"required": collections.OrderedDict([
            ("control_net_name", [cn])]), "return": ["CONTROL_NET"], "output_node": False,
            "category": "loaders"},
        "ControlNetApplyAdvanced": {"required": collections.OrderedDict([
            ("positive", ["CONDITIONING"]), ("negative", ["CONDITIONING"]),
            ("control_net", ["CONTROL_NET"]), ("image", ["IMAGE"]),
            ("strength", ["FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.01}]),
            ("start_percent", ["FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.001}]),
            ("end_percent", ["FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.001}])]),
            "optional": collections.OrderedDict([("vae", ["VAE"])]),
            "return": ["CONDITIONING", "CONDITIONING"], "return_names": ["positive", "negative"],
            "output_node": False, "category": "conditioning/controlnet"},
        "LoadImage": {"required": collections.OrderedDict([
            ("image", [inputs, {"image_upload": True}])]),
            "return": ["IMAGE", "MASK"], "output_node": False, "category": "image",
            "validate": True},
        # nodes.py LoadImageMask: one channel of an uploaded image as the MASK (alpha is
        # inverted, 1 - a; the colour channels are taken as they are)
        "LoadImageMask": {"required": collections.OrderedDict([
            ("image", [inputs, {"image_upload": True}]),
            ("channel", [["alpha", "red", "green", "blue"]])]),
            "return": ["MASK"], "output_node": False, "category": "mask", "validate": True},
        # comfy_extras/nodes_upscale_model.py: the models of models/upscale_models
        "UpscaleModelLoader": {"required": collections.OrderedDict([
            ("model_name", [list(st.upscale_models)])]),
            "return": ["UPSCALE_MODEL"], "output_node": False, "category": "loaders"},
        "ImageUpscaleWithModel": {"required": collections.OrderedDict([
            ("upscale_model", ["UPSCALE_MODEL"]), ("image", ["IMAGE"])]),
            "return": ["IMAGE"], "output_node": False, "category": "image/upscaling"},
        # nodes.py ImageScaleBy
        "ImageScaleBy": {"required": collections.OrderedDict([
            ("image", ["IMAGE"]),
            ("upscale_method", [["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]]),
            ("scale_by", ["FLOAT", {"default": 1.0, "min": 0.01, "max": 8.0, "step": 0.01}])]),
            "return": ["IMAGE"], "output_node": False, "category": "image/upscaling"},
        # nodes.py VAEEncodeForInpaint
        "VAEEncodeForInpaint": {"required": collections.OrderedDict([
            ("pixels", ["IMAGE"]), ("vae", ["VAE"]), ("mask", ["MASK"]),
            ("grow_mask_by", ["INT", {"default": 6, "min": 0, "max": 64, "step": 1}])]),
            "return": ["LATENT"], "output_node": False, "category": "latent/inpaint"},
    }


def _annotated(name):
    for t in ("input", "output", "temp"):
        suffix = " [%s]" % t
        if name.endswith(suffix):
            return name[:-len(suffix)], t
    return name, None


class ComfyUI:
    def __init__(self, st):
        self.st = st
        self.worker = threading.Thread(target=self.worker_loop, name="comfy-worker", daemon=True)
        self.worker.start()

    def routes(self):
        r = {
            ("POST", "/prompt"): self.post_prompt,
            ("GET", "/prompt"): self.get_prompt,
            ("GET", "/queue"): self.get_queue,
            ("POST", "/queue"): self.post_queue,
            ("GET", "/history"): self.get_history_all,
            ("POST", "/history"): self.post_history,
            ("POST", "/interrupt"): self.interrupt,
            ("POST", "/upload/image"): self.upload_image,
            ("GET", "/view"): self.view,
            ("GET", "/system_stats"): self.system_stats,
            ("GET", "/object_info"): self.object_info,
            ("GET", "/embeddings"): lambda r: comfy_json([]),
            ("GET", "/extensions"): lambda r: comfy_json([]),
            ("GET", "/models"): lambda r: comfy_json(["checkpoints", "loras", "controlnet"]),
            ("POST", "/free"): lambda r: comfy_text(200, ""),
        }
        return r

    def prefix_routes(self, method, path):
        if path.startswith("/history/") and method == "GET":
            return lambda r: self.get_history(r, urllib.parse.unquote(path[len("/history/"):]))
        if path.startswith("/object_info/") and method == "GET":
            return lambda r: self.object_info(r, urllib.parse.unquote(path[len("/object_info/"):]))
        if path.startswith("/models/") and method == "GET":
            return lambda r: self.models_folder(r, path[len("/models/"):])
        return None

    # -- listings -------------------------------------------------------------------------------
    def system_stats(self, req):
        return comfy_json({
            "system": {"os": "posix", "ram_total": 68719476736, "ram_free": 34359738368,
                       "comfyui_version": "0.3.40", "required_frontend_version": "1.21.7",
                       "python_version": sys.version, "pytorch_version": "2.7.0+cu126",
                       "embedded_python": False, "argv": ["main.py", "--listen"]},
            "devices": [{"name": "cuda:0 Test GPU (sd_test_server)", "type": "cuda", "index": 0,
                         "vram_total": 25757220864, "vram_free": 24696061952,
                         "torch_vram_total": 0, "torch_vram_free": 0}]})

    def object_info(self, req, only=None):
        defs = comfy_node_defs(self.st)
        out = {}
        for name, d in defs.items():
            if only is not None and name != only:
                continue
            inp = {"required": d["required"]}
            if "optional" in d:
                inp["optional"] = d["optional"]
            out[name] = {"input": inp,
                         "input_order": {k: list(v.keys()) for k, v in inp.items()},
                         "output": d["return"], "output_is_list": [False] * len(d["return"]),
                         "output_name": d.get("return_names", d["return"]), "name": name,
                         "display_name": name, "description": "", "python_module": "nodes",
                         "category": d["category"], "output_node": d["output_node"]}
        return comfy_json(out)

    def models_folder(self, req, folder):
        m = {"checkpoints": self.st.models, "loras": self.st.loras,
             "controlnet": self.st.controlnets, "upscale_models": self.st.upscale_models}
        if folder not in m:
            return comfy_text(404, "404: Not Found")
        return comfy_json(list(m[folder]))

    def get_prompt(self, req):
        with self.st.lock:
            n = len(self.st.comfy_queue) + (1 if self.st.comfy_running else 0)
        return comfy_json({"exec_info": {"queue_remaining": n}})

    def _qitem(self, item):
        return [item["number"], item["prompt_id"], item["prompt"], item["extra_data"],
                item["outputs_to_execute"]]

    def get_queue(self, req):
        st = self.st
        with st.lock:
            running = [self._qitem(st.comfy_running)] if st.comfy_running else []
            pending = [self._qitem(e[2]) for e in sorted(st.comfy_queue)]
        return comfy_json({"queue_running": running, "queue_pending": pending})

    def _json_body(self, req):
        try:
            return json.loads(req.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise HTTPError(500, b"500 Internal Server Error\n\nServer got itself in trouble",
                            "text/plain; charset=utf-8")

    def post_queue(self, req):
        data = self._json_body(req)
        st = self.st
        with st.lock:
            if isinstance(data, dict) and data.get("clear"):
                st.comfy_queue = []
            if isinstance(data, dict) and "delete" in data:
                for pid in data["delete"] or []:
                    st.comfy_queue = [e for e in st.comfy_queue if e[2]["prompt_id"] != pid]
                heapq.heapify(st.comfy_queue)
        return comfy_text(200, "")

    def get_history_all(self, req):
        q = urllib.parse.parse_qs(req.query)
        st = self.st
        with st.lock:
            items = list(st.comfy_history.items())
        if "max_items" in q:
            try:
                n = int(q["max_items"][0])
            except ValueError:
                return comfy_text(500, "500 Internal Server Error\n\nServer got itself in trouble")
            items = items[-n:] if n > 0 else []
        return comfy_json(collections.OrderedDict(items))

    def get_history(self, req, prompt_id):
        with self.st.lock:
            h = self.st.comfy_history.get(prompt_id)
            out = {prompt_id: json.loads(json.dumps(h))} if h is not None else {}
        return comfy_json(out)

    def post_history(self, req):
        data = self._json_body(req)
        st = self.st
        with st.lock:
            if isinstance(data, dict) and data.get("clear"):
                st.comfy_history.clear()
            if isinstance(data, dict) and "delete" in data:
                for pid in data["delete"] or []:
                    st.comfy_history.pop(pid, None)
        return comfy_text(200, "")

    def interrupt(self, req):
        data = {}
        if req.body:
            try:
                data = json.loads(req.body.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                data = {}
        st = self.st
        with st.lock:
            run = st.comfy_running
            if run is not None:
                pid = data.get("prompt_id") if isinstance(data, dict) else None
                if pid is None or pid == run["prompt_id"]:
                    run["interrupt"].set()
        return comfy_text(200, "")

    # -- files ----------------------------------------------------------------------------------
    def upload_image(self, req):
        # aiohttp's request.post() reads a form only from multipart/form-data (or urlencoded):
        # any other Content-Type (application/json; boundary=... included) gives an empty
        # form, no 'image' field, and ComfyUI answers 400
        ctype = req.headers.get("content-type", "")
        if ctype.split(";", 1)[0].strip().lower() != "multipart/form-data":
            return comfy_text(400, "")
        try:
            fields = parse_multipart(req.body, ctype)
        except ValueError:
            return comfy_text(400, "")
        img = fields.get("image")
        if not img or img["filename"] is None:
            return comfy_text(400, "")
        filename = img["filename"]
        if not filename:
            return comfy_text(400, "")
        ftype = (fields.get("type") or {}).get("data", b"input").decode("utf-8", "replace") or "input"
        if ftype not in ("input", "temp", "output"):
            ftype = "input"
        subfolder = (fields.get("subfolder") or {}).get("data", b"").decode("utf-8", "replace")
        overwrite = (fields.get("overwrite") or {}).get("data", b"").decode("utf-8", "replace")
        norm = os.path.normpath(subfolder) if subfolder else ""
        if norm == ".":
            norm = ""
        if (norm.startswith("..") or os.path.isabs(norm) or "/" in filename or "\\" in filename
                or filename in (".", "..")):
            return comfy_text(400, "")
        st = self.st
        data = img["data"]
        with st.lock:
            stem, ext = os.path.splitext(filename)
            if overwrite not in ("true", "1"):
                i = 1
                while (ftype, norm, filename) in st.comfy_files:
                    old = st.comfy_files[(ftype, norm, filename)]
                    old_bytes = old if isinstance(old, bytes) else old.bytes(st.cache)
                    if hashlib.sha256(old_bytes).digest() == hashlib.sha256(data).digest():
                        break
                    filename = "%s (%d)%s" % (stem, i, ext)
                    i += 1
            st.comfy_files[(ftype, norm, filename)] = data
            st.stats["uploads"] += 1
        return comfy_json({"name": filename, "subfolder": subfolder, "type": ftype})

    def _file(self, ftype, subfolder, filename):
        st = self.st
        with st.lock:
            f = st.comfy_files.get((ftype, subfolder, filename))
        if f is None:
            return None
        return f if isinstance(f, bytes) else f.bytes(st.cache)

    def view(self, req):
        q = urllib.parse.parse_qs(req.query, keep_blank_values=True)
        if "filename" not in q:
            return comfy_text(404, "404: Not Found")
        filename, ftype = _annotated(q["filename"][0])
        if not filename or filename[0] == "/" or ".." in filename:
            return comfy_text(400, "")
        if ftype is None:
            ftype = q.get("type", ["output"])[0]
        if ftype not in ("input", "output", "temp"):
            return comfy_text(400, "")
        sub = q.get("subfolder", [""])[0]
        norm = os.path.normpath(sub) if sub else ""
        if norm == ".":
            norm = ""
        if norm.startswith("..") or os.path.isabs(norm):
            return comfy_text(403, "")
        filename = os.path.basename(filename)
        data = self._file(ftype, norm, filename)
        if data is None:
            return comfy_text(404, "")
        ctype = "image/png" if filename.lower().endswith(".png") else "application/octet-stream"
        return Response(200, data, ctype, [("Content-Disposition", 'filename="%s"' % filename)],
                        "Python/3.11 aiohttp/3.11.11")

    # -- validation (execution.validate_prompt / validate_inputs) -------------------------------
    def validate_prompt(self, prompt):
        defs = comfy_node_defs(self.st)
        if not isinstance(prompt, dict):
            return False, {"type": "invalid_prompt", "message": "Prompt must be an object",
                           "details": "", "extra_info": {}}, [], {}
        outputs = []
        for x, node in prompt.items():
            if not isinstance(node, dict) or "class_type" not in node:
                title = node.get("_meta", {}).get("title") if isinstance(node, dict) and \
                    isinstance(node.get("_meta"), dict) else None
                return False, {
                    "type": "missing_node_type",
                    "message": "Node '%s' has no class_type. The workflow may be corrupted or a "
                               "custom node is missing." % (title or "ID #%s" % x),
                    "details": "Node ID '#%s'" % x,
                    "extra_info": {"node_id": x, "class_type": None, "node_title": title}}, [], {}
            ct = node["class_type"]
            if not isinstance(ct, str) or ct not in defs:
                meta = node.get("_meta") if isinstance(node.get("_meta"), dict) else {}
                title = meta.get("title", ct)
                return False, {
                    "type": "missing_node_type",
                    "message": "Node '%s' not found. The custom node may not be installed." % title,
                    "details": "Node ID '#%s'" % x,
                    "extra_info": {"node_id": x, "class_type": ct, "node_title": title}}, [], {}
            if defs[ct]["output_node"]:
                outputs.append(x)
        if not outputs:
            return False, {"type": "prompt_no_outputs", "message": "Prompt has no outputs",
                           "details": "", "extra_info": {}}, [], {}
        good, errors, node_errors, validated = [], [], {}, {}
        for o in outputs:
            try:
                m = self.validate_inputs(prompt, o, validated, defs)
                valid, reasons = m[0], m[1]
            except Exception as ex:
                valid = False
                reasons = [{"type": "exception_during_validation",
                            "message": "Exception when validating node", "details": str(ex),
                            "extra_info": {"exception_type": type(ex).__name__,
                                           "traceback": []}}]
                validated[o] = (False, reasons, o)
            if valid is True:
                good.append(o)
            else:
                errors.append((o, reasons))
                for node_id, result in validated.items():
                    if result[0] is not True and len(result[1]) > 0:
                        if node_id not in node_errors:
                            node_errors[node_id] = {"errors": result[1], "dependent_outputs": [],
                                                    "class_type": prompt[node_id]["class_type"]}
                        node_errors[node_id]["dependent_outputs"].append(o)
        if not good:
            lst = []
            for o, errs in errors:
                for e in errs:
                    lst.append("%s: %s" % (e["message"], e["details"]))
            return False, {"type": "prompt_outputs_failed_validation",
                           "message": "Prompt outputs failed validation",
                           "details": "\n".join(lst), "extra_info": {}}, good, node_errors
        return True, None, good, node_errors

    def validate_inputs(self, prompt, uid, validated, defs):
        if uid in validated:
            return validated[uid]
        node = prompt[uid]
        inputs = node["inputs"]                 # KeyError -> exception_* like the real one
        if not isinstance(inputs, dict):
            raise TypeError("'%s' object is not a mapping" % type(inputs).__name__)
        d = defs[node["class_type"]]
        errors, valid = [], True
        specs = list(d["required"].items()) + [(k, s) for k, s in d.get("optional", {}).items()
                                               if k in inputs]
        required = d["required"]
        for x, info in specs:
            if x not in inputs:
                errors.append({"type": "required_input_missing",
                               "message": "Required input is missing", "details": x,
                               "extra_info": {"input_name": x}})
                continue
            val = inputs[x]
            type_input = info[0]
            if isinstance(val, list):
                if len(val) != 2:
                    errors.append({"type": "bad_linked_input",
                                   "message": "Bad linked input, must be a length-2 list of "
                                              "[node_id, slot_index]", "details": x,
                                   "extra_info": {"input_name": x, "input_config": info,
                                                  "received_value": val}})
                    continue
                o_id = val[0]
                if not isinstance(o_id, str):
                    raise KeyError(o_id)
                o_class = prompt[o_id]["class_type"]           # KeyError if missing
                r = defs[o_class]["return"]
                received = r[val[1]]                           # IndexError/TypeError
                if received != type_input:
                    errors.append({"type": "return_type_mismatch",
                                   "message": "Return type mismatch between linked nodes",
                                   "details": "%s, received_type(%s) mismatch input_type(%s)" % (
                                       x, received, type_input),
                                   "extra_info": {"input_name": x, "input_config": info,
                                                  "received_type": received, "linked_node": val}})
                    continue
                try:
                    rr = self.validate_inputs(prompt, o_id, validated, defs)
                    if rr[0] is False:
                        valid = False
                        continue
                except Exception as ex:
                    valid = False
                    reasons = [{"type": "exception_during_inner_validation",
                                "message": "Exception when validating inner node",
                                "details": str(ex),
                                "extra_info": {"input_name": x, "input_config": info,
                                               "exception_message": str(ex),
                                               "exception_type": type(ex).__name__,
                                               "traceback": [], "linked_node": val}}]
                    validated[o_id] = (False, reasons, o_id)
                    continue
                continue
            # a constant
            try:
                if type_input == "INT":
                    if isinstance(val, float) and (math.isnan(val) or math.isinf(val)):
                        raise ValueError("cannot convert float %s to integer" % val)
                    val = int(val)
                    inputs[x] = val
                elif type_input == "FLOAT":
                    val = float(val)
                    inputs[x] = val
                elif type_input == "STRING":
                    val = str(val)
                    inputs[x] = val
            except (ValueError, TypeError) as ex:
                errors.append({"type": "invalid_input_type",
                               "message": "Failed to convert an input value to a %s value" % type_input,
                               "details": "%s, %s, %s" % (x, val, ex),
                               "extra_info": {"input_name": x, "input_config": info,
                                              "received_value": val, "exception_message": str(ex)}})
                continue
            if len(info) > 1 and isinstance(info[1], dict):
                lim = info[1]
                if "min" in lim and isinstance(val, (int, float)) and val < lim["min"]:
                    errors.append({"type": "value_smaller_than_min",
                                   "message": "Value %s smaller than min of %s" % (val, lim["min"]),
                                   "details": x, "extra_info": {"input_name": x,
                                                                "input_config": info,
                                                                "received_value": val}})
                    continue
                if "max" in lim and isinstance(val, (int, float)) and val > lim["max"]:
                    errors.append({"type": "value_bigger_than_max",
                                   "message": "Value %s bigger than max of %s" % (val, lim["max"]),
                                   "details": x, "extra_info": {"input_name": x,
                                                                "input_config": info,
                                                                "received_value": val}})
                    continue
            if d.get("validate") and x == "image":
                fname, ftype = _annotated(str(val))
                sub, _, base = fname.rpartition("/")
                if self._file(ftype or "input", sub, base) is None:
                    errors.append({"type": "custom_validation_failed",
                                   "message": "Custom validation failed for node",
                                   "details": "%s - Invalid image file: %s" % (x, val),
                                   "extra_info": {"input_name": x, "input_config": info,
                                                  "received_value": val}})
                continue
            if isinstance(type_input, list):
                if val not in type_input:
                    if len(type_input) > 20:
                        list_info, cfg = "(list of length %d)" % len(type_input), None
                    else:
                        list_info, cfg = str(type_input), info
                    errors.append({"type": "value_not_in_list", "message": "Value not in list",
                                   "details": "%s: '%s' not in %s" % (x, val, list_info),
                                   "extra_info": {"input_name": x, "input_config": cfg,
                                                  "received_value": val}})
                    continue
        ret = (False, errors, uid) if (errors or valid is not True) else (True, [], uid)
        validated[uid] = ret
        return ret

    # -- submission -----------------------------------------------------------------------------
    def post_prompt(self, req):
        st = self.st
        data = self._json_body(req)
        if not isinstance(data, dict):
            raise HTTPError(500, b"500 Internal Server Error\n\nServer got itself in trouble",
                            "text/plain; charset=utf-8")
        with st.lock:
            if "number" in data:
                try:
                    number = float(data["number"])
                except (TypeError, ValueError):
                    raise HTTPError(500, b"500 Internal Server Error\n\nServer got itself in trouble",
                                    "text/plain; charset=utf-8")
            else:
                number = st.comfy_number
                if data.get("front"):
                    number = -number
                st.comfy_number += 1
        if "prompt" not in data:
            return comfy_json({"error": {"type": "no_prompt", "message": "No prompt provided",
                                         "details": "No prompt provided", "extra_info": {}},
                               "node_errors": {}}, 400)
        prompt = data["prompt"]
        prompt_id = str(data.get("prompt_id", uuid.uuid4()))
        ok, error, good, node_errors = self.validate_prompt(prompt)
        if not ok:
            return comfy_json({"error": error, "node_errors": node_errors}, 400)
        extra = data.get("extra_data", {})
        extra = dict(extra) if isinstance(extra, dict) else {}
        if "client_id" in data:
            extra["client_id"] = data["client_id"]
        item = {"number": number, "prompt_id": prompt_id, "prompt": prompt, "extra_data": extra,
                "outputs_to_execute": good, "fault": req.fault.job, "interrupt": threading.Event()}
        if req.fault.job == "lose":
            st.count_fault("lose")
            with st.lock:
                st.stats["jobs_lost"] += 1
        else:
            with st.lock:
                st.comfy_qseq += 1
                heapq.heappush(st.comfy_queue, (number, st.comfy_qseq, item))
                st.note_queue_depth(len(st.comfy_queue) + (1 if st.comfy_running else 0))
                st.comfy_cv.notify()
        return comfy_json({"prompt_id": prompt_id, "number": number, "node_errors": node_errors})

    # -- execution ------------------------------------------------------------------------------
    def worker_loop(self):
        st = self.st
        while True:
            with st.lock:
                while not st.comfy_queue:
                    st.comfy_cv.wait(1.0)
                    if st.shutting_down.is_set():
                        return
                _, _, item = heapq.heappop(st.comfy_queue)
                st.comfy_running = item
            try:
                self.execute(item)
            except Exception:
                traceback.print_exc()
            finally:
                with st.lock:
                    st.comfy_running = None

    def _sig(self, prompt, nid, memo):
        if nid in memo:
            return memo[nid]
        node = prompt[nid]
        parts = [node["class_type"]]
        for k in sorted(node["inputs"]):
            v = node["inputs"][k]
            if isinstance(v, list) and len(v) == 2 and v[0] in prompt:
                parts.append([k, self._sig(prompt, v[0], memo), v[1]])
            else:
                parts.append([k, v])
        memo[nid] = canonical_key(parts)
        return memo[nid]

    def _needed(self, prompt, outputs):
        seen, stack = [], list(outputs)
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.append(n)
            for v in prompt[n]["inputs"].values():
                if isinstance(v, list) and len(v) == 2 and v[0] in prompt:
                    stack.append(v[0])
        return seen

    def eval_node(self, prompt, nid, memo):
        """Evaluate a node to its outputs (a tuple); an error names the node that raised."""
        if nid in memo:
            return memo[nid]
        try:
            return self._eval_node(prompt, nid, memo)
        except Exception as ex:
            if not hasattr(ex, "comfy_node"):
                ex.comfy_node = nid
            raise

    def _eval_node(self, prompt, nid, memo):
        node = prompt[nid]
        ct = node["class_type"]
        raw = node["inputs"]

        def inp(name, default=None):
            v = raw.get(name, default)
            if isinstance(v, list) and len(v) == 2 and v[0] in prompt:
                return self.eval_node(prompt, v[0], memo)[v[1]]
            return v

        if ct == "CheckpointLoaderSimple":
            ck = inp("ckpt_name")
            out = ({"kind": "MODEL", "ckpt": ck, "loras": []}, {"kind": "CLIP", "ckpt": ck, "loras": []},
                   {"kind": "VAE", "ckpt": ck})
        elif ct == "LoraLoader":
            m, c = inp("model"), inp("clip")
            name = self.st.lora_stem(str(inp("lora_name")))
            out = (dict(m, loras=m["loras"] + [[name, float(inp("strength_model", 1.0))]]),
                   dict(c, loras=c["loras"] + [[name, float(inp("strength_clip", 1.0))]]))
        elif ct == "CLIPTextEncode":
            out = ({"kind": "CONDITIONING", "text": str(inp("text", "")), "clip": inp("clip"),
                    "control": []},)
        elif ct == "CLIPTextEncodeSDXL":
            # text_g for CLIP-G, text_l for CLIP-L: the image shows both when they differ
            tg, tl = str(inp("text_g", "CLIP_G")), str(inp("text_l", "CLIP_L"))
            out = ({"kind": "CONDITIONING", "text": tg if tg == tl else "%s | %s" % (tg, tl),
                    "clip": inp("clip"), "control": []},)
        elif ct == "ConditioningCombine":
            c1, c2 = inp("conditioning_1"), inp("conditioning_2")
            out = ({"kind": "CONDITIONING", "text": "%s AND %s" % (c1["text"], c2["text"]),
                    "clip": c1.get("clip"), "control": c1["control"] + c2["control"]},)
        elif ct == "ControlNetApply":
            c, cn, img = inp("conditioning"), inp("control_net"), inp("image")
            ctl = [cn.get("name") if isinstance(cn, dict) else None, float(inp("strength", 1.0)),
                   0.0, 1.0, img.get("sha") if isinstance(img, dict) else None]
            out = (c if float(inp("strength", 1.0)) == 0 else
                   dict(c, control=c["control"] + [ctl]),)
        elif ct == "EmptyLatentImage":
            w, h = int(inp("width", 512)), int(inp("height", 512))
            if w > 4096 or h > 4096:
                raise RuntimeError("Allocation on device would exceed allowed memory. "
                                   "(out of memory) [test server limit 4096 px]")
            out = ({"kind": "LATENT", "width": w // 8 * 8, "height": h // 8 * 8,
                    "batch": int(inp("batch_size", 1))},)
        elif ct == "KSampler":
            lat, pos, neg, model = inp("latent_image"), inp("positive"), inp("negative"), inp("model")
            for v, t in ((lat, "LATENT"), (pos, "CONDITIONING"), (neg, "CONDITIONING"), (model, "MODEL")):
                if not isinstance(v, dict) or v.get("kind") != t:
                    raise AttributeError("'%s' object has no attribute 'shape'" % type(v).__name__)
            out = ({"kind": "LATENT", "width": lat["width"], "height": lat["height"],
                    "batch": lat["batch"], "inpaint": lat.get("inpaint"), "sampled": {
                        "seed": int(inp("seed")), "steps": int(inp("steps")),
                        "cfg": float(inp("cfg")), "sampler": inp("sampler_name"),
                        "scheduler": inp("scheduler"), "denoise": float(inp("denoise", 1.0)),
                        "positive": pos, "negative": neg, "model": model}},)
        elif ct == "VAEDecode":
            lat, vae = inp("samples"), inp("vae")
            if not isinstance(lat, dict) or lat.get("kind") != "LATENT":
                raise AttributeError("'NoneType' object has no attribute 'shape'")
            s = lat.get("sampled")
            images = []
            for b in range(lat["batch"]):
                if s is None:
                    params = {"prompt": "", "negative_prompt": "", "seed": 0,
                              "width": lat["width"], "height": lat["height"], "steps": 0,
                              "cfg": 0.0, "sampler": "", "checkpoint": (vae or {}).get("ckpt"),
                              "loras": [], "extra": {"unsampled_batch_index": b}}
                else:
                    loras = sorted(s["model"]["loras"])
                    ctl = [c for c in s["positive"]["control"]]
                    params = {"prompt": s["positive"]["text"],
                              "negative_prompt": s["negative"]["text"], "seed": s["seed"],
                              "width": lat["width"], "height": lat["height"], "steps": s["steps"],
                              "cfg": s["cfg"], "sampler": s["sampler"],
                              "checkpoint": s["model"]["ckpt"], "loras": loras,
                              "extra": {"scheduler": s["scheduler"], "denoise": s["denoise"],
                                        "batch_index": b, "controlnet": ctl}}
                if lat.get("inpaint") and s is not None:
                    # VAEEncodeForInpaint's latent: the masked area regenerated; the real
                    # decode also passes the rest through the VAE (close to the input, not
                    # equal), here it is the input's pixels
                    w, h, px, m = lat["inpaint"]
                    params = {"_pixels": (w, h, inpaint_pixels(w, h, px, m, params))}
                images.append(params)
            out = ({"kind": "IMAGE", "images": images},)
        elif ct == "ControlNetLoader":
            out = ({"kind": "CONTROL_NET", "name": inp("control_net_name")},)
        elif ct == "ControlNetApplyAdvanced":
            pos, neg = inp("positive"), inp("negative")
            cn, img = inp("control_net"), inp("image")
            ctl = [cn.get("name") if isinstance(cn, dict) else None,
                   float(inp("strength", 1.0)), float(inp("start_percent", 0.0)),
                   float(inp("end_percent", 1.0)),
                   img.get("sha") if isinstance(img, dict) else None]
            if float(inp("strength", 1.0)) == 0:
                out = (pos, neg)
            else:
                out = (dict(pos, control=pos["control"] + [ctl]),
                       dict(neg, control=neg["control"] + [ctl]))
        elif ct in ("LoadImage", "LoadImageMask"):
            fname, ftype = _annotated(str(inp("image")))
            sub, _, base = fname.rpartition("/")
            data = self._file(ftype or "input", sub, base)
            if data is None:
                raise FileNotFoundError("[Errno 2] No such file or directory: '%s'" % fname)
            sha = hashlib.sha256(data).hexdigest()[:16]

            def pixels(data=data):
                return decode_png(data)
            if ct == "LoadImage":
                out = ({"kind": "IMAGE", "sha": sha, "images": [], "pixels": pixels},
                       {"kind": "MASK", "sha": sha})
            else:
                w, h, px = pixels()
                c = {"red": 0, "green": 1, "blue": 2, "alpha": 3}[inp("channel")]
                m = bytes(px[4 * i + c] if c < 3 else 255 - px[4 * i + 3] for i in range(w * h))
                out = ({"kind": "MASK", "sha": sha, "size": (w, h), "mask": m},)
        elif ct == "UpscaleModelLoader":
            name = inp("model_name")
            out = ({"kind": "UPSCALE_MODEL", "name": name, "scale": upscale_model_scale(name)},)
        elif ct in ("ImageUpscaleWithModel", "ImageScaleBy"):
            # the test server's "model" is a nearest-neighbour resize by the model's scale;
            # ImageScaleBy resizes by scale_by (round(w * scale_by), as nodes.py ImageScale)
            img = inp("image")
            if not isinstance(img, dict) or img.get("kind") != "IMAGE":
                raise AttributeError("'%s' object has no attribute 'shape'" % type(img).__name__)
            w, h, px = img["pixels"]() if "pixels" in img else img["images"][0]["_pixels"]
            if ct == "ImageUpscaleWithModel":
                f = inp("upscale_model")["scale"]
                nw, nh = w * f, h * f
            else:
                f = float(inp("scale_by"))
                nw, nh = round(w * f), round(h * f)
            out = ({"kind": "IMAGE", "images": [{"_pixels": (nw, nh, resize_nearest(
                w, h, px, nw, nh))}]},)
        elif ct == "VAEEncodeForInpaint":
            img, mask = inp("pixels"), inp("mask")
            if not isinstance(img, dict) or "pixels" not in img:
                raise AttributeError("'NoneType' object has no attribute 'shape'")
            w, h, px = img["pixels"]()
            mw, mh = mask["size"]
            m = mask["mask"]
            if (mw, mh) != (w, h):
                # the real node interpolates the mask to the image's size (bilinear)
                m = resize_nearest(mw, mh, bytes(b for x in m for b in (x, x, x, x)), w, h)[::4]
            out = ({"kind": "LATENT", "width": w // 8 * 8, "height": h // 8 * 8, "batch": 1,
                    "inpaint": (w, h, px, m)},)
        elif ct in ("SaveImage", "PreviewImage"):
            out = ()
        else:
            raise RuntimeError("unsupported node " + ct)
        memo[nid] = out
        return out

    def execute(self, item):
        st = self.st
        prompt, pid = item["prompt"], item["prompt_id"]
        msgs = []

        def ts():
            return int(time.time() * 1000)

        needed = self._needed(prompt, item["outputs_to_execute"])
        sigs_memo = {}
        sigs = {n: self._sig(prompt, n, sigs_memo) for n in needed}
        st.gpu_enter()
        try:
            msgs.append(["execution_start", {"prompt_id": pid, "timestamp": ts()}])
            with st.lock:
                last_sigs = dict(st.comfy_last_sigs)
                last_outputs = dict(st.comfy_last_outputs)
            cached = [n for n in needed if last_sigs.get(n) == sigs[n]]
            msgs.append(["execution_cached", {"nodes": cached, "prompt_id": pid,
                                              "timestamp": ts()}])
            fault = item["fault"]
            t0 = time.time()
            outputs, meta, executed, err = {}, {}, [], None
            memo = {}
            all_cached = all(n in cached for n in needed) and all(
                n in last_outputs for n in item["outputs_to_execute"])
            if all_cached:
                for o in item["outputs_to_execute"]:
                    outputs[o] = last_outputs[o]
                duration = 0.0
            else:
                duration = st.job_latency("comfy|" + canonical_key(prompt))
                with st.lock:
                    ck_needed = set()
                    for n in needed:
                        if prompt[n]["class_type"] == "CheckpointLoaderSimple":
                            ck_needed.add(prompt[n]["inputs"].get("ckpt_name"))
                    for ck in ck_needed:
                        if ck != st.loaded_checkpoint:
                            st.loaded_checkpoint = ck
                            st.stats["model_switches"] += 1
                            duration += st.config["model_switch_ms"] / 1000.0
                try:
                    if fault == "exec_fail":
                        ks = [n for n in needed if prompt[n]["class_type"] == "KSampler"]
                        err = (ks[0] if ks else needed[-1],
                               "CUDA out of memory. Tried to allocate 2.00 GiB "
                               "(injected by test server)", "torch.OutOfMemoryError")
                        raise _ExecAbort()
                    for o in sorted(item["outputs_to_execute"], key=lambda n: str(n)):
                        node = prompt[o]
                        try:
                            imgs = self.eval_node(prompt, node["inputs"]["images"][0], memo)[
                                node["inputs"]["images"][1]] \
                                if isinstance(node["inputs"].get("images"), list) else None
                            if not isinstance(imgs, dict) or imgs.get("kind") != "IMAGE":
                                raise AttributeError("'%s' object has no attribute 'cpu'" %
                                                     type(imgs).__name__)
                            if not imgs["images"]:
                                raise RuntimeError("SaveImage got a loaded image, not a render "
                                                   "(test server renders sampled latents only)")
                        except _ExecAbort:
                            raise
                        except Exception as ex:
                            executed.extend([n for n in needed if n in memo and n not in executed])
                            err = (getattr(ex, "comfy_node", o), str(ex), type(ex).__name__)
                            raise _ExecAbort()
                        executed.extend([n for n in needed if n in memo and n not in executed])
                        # PreviewImage: a scratch file of type temp, as nodes.PreviewImage
                        preview = node["class_type"] == "PreviewImage"
                        ftype = "temp" if preview else "output"
                        prefix = "ComfyUI_temp_kiln" if preview else \
                            str(node["inputs"].get("filename_prefix", "ComfyUI"))
                        sub, _, base = prefix.rpartition("/")
                        sub = os.path.normpath(sub) if sub else ""
                        if sub.startswith(".."):
                            err = (o, "**** ERROR: Saving image outside the output folder is not "
                                      "allowed.", "Exception")
                            raise _ExecAbort()
                        saved = []
                        texts = [("prompt", json.dumps(prompt))]
                        ep = item["extra_data"].get("extra_pnginfo")
                        if isinstance(ep, dict):
                            texts += [(k, json.dumps(v)) for k, v in ep.items()]
                        with st.lock:
                            counter = st.comfy_counters.get((sub, base), 0) + 1
                            for bi, params in enumerate(imgs["images"]):
                                fname = "%s_%05d_.png" % (base.replace("%batch_num%", str(bi)),
                                                          counter)
                                counter += 1
                                if "_pixels" in params:
                                    out = encode_rgba_png(*params["_pixels"], texts=tuple(texts))
                                else:
                                    out = Output(params, "black" if fault == "black" else None,
                                                 tuple(texts), fault == "truncate")
                                st.comfy_files[(ftype, sub, fname)] = out
                                saved.append({"filename": fname, "subfolder": sub,
                                              "type": ftype})
                            st.comfy_counters[(sub, base)] = counter - 1
                        outputs[o] = {"images": saved}
                        meta[o] = {"node_id": o, "display_node": o, "parent_node": None,
                                   "real_node_id": o}
                        executed.append(o)
                    # render now, under the GPU, so the cost is part of the job's time
                    for o in outputs:
                        for im in outputs[o]["images"]:
                            f = st.comfy_files[(im["type"], im["subfolder"], im["filename"])]
                            if isinstance(f, Output):
                                f.bytes(st.cache)
                except _ExecAbort:
                    pass
            remaining = duration - (time.time() - t0)
            interrupted = False
            if remaining > 0:
                interrupted = item["interrupt"].wait(remaining)
            elif item["interrupt"].is_set():
                interrupted = True
        finally:
            st.gpu_exit()

        with st.lock:
            st.comfy_executions[pid] += 1
            if err is not None:
                node_id, emsg, etype = err
                msgs.append(["execution_error", {
                    "prompt_id": pid, "node_id": node_id,
                    "node_type": prompt[node_id]["class_type"], "executed": executed,
                    "exception_message": emsg, "exception_type": etype, "traceback": [],
                    "current_inputs": {}, "current_outputs": {}, "timestamp": ts()}])
                status = {"status_str": "error", "completed": False, "messages": msgs}
                outputs, meta = {}, {}
                if fault == "exec_fail":
                    st.faults["exec_fail"] += 1
                st.comfy_last_sigs = {}
                st.comfy_last_outputs = {}
                result = "failed"
            elif interrupted:
                msgs.append(["execution_interrupted", {
                    "prompt_id": pid, "node_id": item["outputs_to_execute"][0],
                    "node_type": prompt[item["outputs_to_execute"][0]]["class_type"],
                    "executed": [], "timestamp": ts()}])
                status = {"status_str": "error", "completed": False, "messages": msgs}
                for o in outputs.values():
                    for im in o["images"]:
                        st.comfy_files.pop(("output", im["subfolder"], im["filename"]), None)
                outputs, meta = {}, {}
                st.comfy_last_sigs = {}
                st.comfy_last_outputs = {}
                result = "interrupted"
            else:
                msgs.append(["execution_success", {"prompt_id": pid, "timestamp": ts()}])
                status = {"status_str": "success", "completed": True, "messages": msgs}
                st.comfy_last_sigs = sigs
                st.comfy_last_outputs = dict(outputs)
                if fault in ("black", "truncate") and not all_cached:
                    st.faults[fault] += 1
                result = "completed"
            st.comfy_history.pop(pid, None)
            st.comfy_history[pid] = {
                "prompt": [item["number"], pid, prompt, item["extra_data"],
                           item["outputs_to_execute"]],
                "outputs": outputs, "status": status, "meta": meta}
            while len(st.comfy_history) > 10000:
                st.comfy_history.popitem(last=False)
        descs = []
        for o in outputs.values():
            for im in o["images"]:
                f = st.comfy_files.get(("output", im["subfolder"], im["filename"]))
                if isinstance(f, Output):
                    d = f.describe(st.cache)
                    d.update(im)
                    descs.append(d)
        st.log_job("comfyui", pid, descs, result)


class _ExecAbort(Exception):
    pass


# --------------------------------------------------------------------------------------------
# stable-diffusion.cpp server
# --------------------------------------------------------------------------------------------

def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class SdCpp:
    def __init__(self, st):
        self.st = st
        self.worker = threading.Thread(target=self.worker_loop, name="sdcpp-worker", daemon=True)
        self.worker.start()

    @property
    def model(self):
        return self.st.models[0] if self.st.models else "model.safetensors"

    def routes(self, with_sdapi):
        r = {
            ("GET", "/sdcpp/v1/capabilities"): self.capabilities,
            ("POST", "/sdcpp/v1/img_gen"): self.img_gen,
        }
        if with_sdapi:
            r.update({
                ("POST", "/sdapi/v1/txt2img"): self.sdapi_txt2img,
                ("GET", "/sdapi/v1/loras"): self.sdapi_loras,
                ("GET", "/sdapi/v1/samplers"): self.sdapi_samplers,
                ("GET", "/sdapi/v1/schedulers"): self.sdapi_schedulers,
                ("GET", "/sdapi/v1/sd-models"): self.sdapi_models,
                ("GET", "/sdapi/v1/options"): self.sdapi_options,
                ("GET", "/sdapi/v1/upscalers"): lambda r: sdcpp_json([
                    {"name": n, "model_name": None, "model_path": None, "model_url": None,
                     "scale": 4} for n in ("None", "Lanczos", "Nearest")]),
                ("GET", "/sdapi/v1/latent-upscale-modes"): lambda r: sdcpp_json([
                    {"name": n} for n in ("Latent", "Latent (nearest)", "Latent (nearest-exact)",
                                          "Latent (antialiased)", "Latent (bicubic)",
                                          "Latent (bicubic antialiased)")]),
            })
        return r

    def prefix_routes(self, method, path):
        m = re.fullmatch(r"/sdcpp/v1/jobs/([A-Za-z0-9_\-]+)", path)
        if m and method == "GET":
            return lambda r: self.get_job(r, m.group(1))
        m = re.fullmatch(r"/sdcpp/v1/jobs/([A-Za-z0-9_\-]+)/cancel", path)
        if m and method == "POST":
            return lambda r: self.cancel_job(r, m.group(1))
        return None

    # -- listings -------------------------------------------------------------------------------
    def listed_loras(self):
        return [l for l in self.st.loras if l.lower().endswith(SDCPP_LORA_EXTS)]

    def sdapi_loras(self, req):
        return sdcpp_json([{"name": self.st.lora_stem(l), "path": l} for l in self.st.loras])

    def sdapi_samplers(self, req):
        return sdcpp_json([{"name": n, "aliases": [n], "options": {}}
                           for n in ["default"] + SDCPP_SAMPLERS])

    def sdapi_schedulers(self, req):
        return sdcpp_json([{"name": n, "label": n} for n in ["default"] + SDCPP_SCHEDULERS])

    def sdapi_models(self, req):
        stem = self.model.rsplit(".", 1)[0]
        return sdcpp_json([{"title": stem, "model_name": stem, "filename": self.model,
                            "hash": "8888888888", "sha256": "8" * 64, "config": None}])

    def sdapi_options(self, req):
        return sdcpp_json({"samples_format": "png",
                           "sd_model_checkpoint": self.model.rsplit(".", 1)[0]})

    def capabilities(self, req):
        st = self.st
        defaults = {"prompt": "", "negative_prompt": "", "clip_skip": -1, "width": 512,
                    "height": 512, "strength": 0.75, "seed": 42, "batch_count": 1,
                    "sample_params": {"scheduler": "default", "sample_method": "default",
                                      "sample_steps": 20, "eta": None, "shifted_timestep": 0,
                                      "flow_shift": None,
                                      "guidance": {"txt_cfg": 7.0, "img_cfg": None,
                                                   "distilled_guidance": 3.5,
                                                   "slg": {"layers": [7, 8, 9],
                                                           "layer_start": 0.01,
                                                           "layer_end": 0.2, "scale": 0.0}}},
                    "output_format": "png", "output_compression": 100}
        features = {"init_image": True, "mask_image": True, "control_image": True,
                    "ip_adapter_image": True, "ref_images": True, "lora": True,
                    "vae_tiling": True, "hires": True, "cache": True, "cancel_queued": True,
                    "cancel_generating": False, "preview": True}
        return sdcpp_json({
            "model": {"name": self.model, "stem": self.model.rsplit(".", 1)[0],
                      "path": "/models/" + self.model},
            "current_mode": "img_gen", "supported_modes": ["img_gen"], "defaults": defaults,
            "defaults_by_mode": {"img_gen": defaults},
            "limits": {"min_width": 64, "max_width": 4096, "min_height": 64, "max_height": 4096,
                       "max_batch_count": 8, "max_queue_size": st.config["max_pending_jobs"],
                       "max_upscale_width": 8192, "max_upscale_height": 8192},
            "samplers": SDCPP_SAMPLERS, "schedulers": SDCPP_SCHEDULERS,
            "output_formats": ["png"], "output_formats_by_mode": {"img_gen": ["png"]},
            "features": features, "features_by_mode": {"img_gen": features},
            "loras": [{"name": st.lora_stem(l).rsplit("/", 1)[-1], "path": l}
                      for l in self.listed_loras()],
            "upscalers": [{"name": n, "model": False, "image_upscale": False}
                          for n in ("None", "Lanczos", "Nearest", "Latent")],
            "upscale": False, "preview_modes": ["none", "proj", "tae", "vae"]})

    # -- parameters -----------------------------------------------------------------------------
    def base_gen(self):
        return {"prompt": "", "negative_prompt": "", "clip_skip": -1, "width": -1, "height": -1,
                "strength": 0.75, "seed": 42, "batch_count": 1, "sample_method": None,
                "scheduler": None, "steps": 20, "cfg": 7.0, "distilled_guidance": 3.5,
                "eta": 0.0, "loras": [], "control_image": None, "control_strength": 0.9,
                "embed_image_metadata": True, "output_format": "png"}

    def parse_native(self, body):
        """from_json_str + resolve_and_validate(strict): params dict or error string."""
        g = self.base_gen()
        bad = "invalid generation parameters"
        for k, check in (("prompt", lambda v: isinstance(v, str)),
                         ("negative_prompt", lambda v: isinstance(v, str)),
                         ("clip_skip", _is_int), ("width", _is_int), ("height", _is_int),
                         ("strength", _is_num), ("seed", _is_int), ("batch_count", _is_int),
                         ("control_strength", _is_num),
                         ("embed_image_metadata", lambda v: isinstance(v, bool))):
            if k in body:
                if not check(body[k]):
                    return None, bad
                g[k] = body[k]
        sp = body.get("sample_params", {})
        if not isinstance(sp, dict):
            return None, bad
        # common.cpp SDGenerationParams::from_json_str: a sample_method or scheduler name
        # str_to_sample_method / str_to_scheduler do not know keeps the default, silently
        if isinstance(sp.get("sample_method"), str) and sp["sample_method"] in SDCPP_SAMPLERS:
            g["sample_method"] = sp["sample_method"]
        if isinstance(sp.get("scheduler"), str) and sp["scheduler"] in SDCPP_SCHEDULERS:
            g["scheduler"] = "discrete" if sp["scheduler"] == "normal" else sp["scheduler"]
        if "sample_steps" in sp:
            if not _is_int(sp["sample_steps"]):
                return None, bad
            g["steps"] = sp["sample_steps"]
        if "eta" in sp and sp["eta"] is not None:
            if not _is_num(sp["eta"]):
                return None, bad
            g["eta"] = float(sp["eta"])
        gd = sp.get("guidance", {})
        if not isinstance(gd, dict):
            return None, bad
        if "txt_cfg" in gd:
            if not _is_num(gd["txt_cfg"]):
                return None, bad
            g["cfg"] = float(gd["txt_cfg"])
        if "distilled_guidance" in gd:
            if not _is_num(gd["distilled_guidance"]):
                return None, bad
            g["distilled_guidance"] = float(gd["distilled_guidance"])
        if "lora" in body:
            if not isinstance(body["lora"], list):
                return None, bad
            for item in body["lora"]:
                if not isinstance(item, dict) or not isinstance(item.get("path", ""), str):
                    return None, bad
                path = item.get("path", "")
                # sd-server matches the file path under --lora-model-dir exactly, extension
                # included: "crown_v2" is not "crown_v2.safetensors"; and only the files it
                # lists (runtime.cpp get_lora_full_path over refresh_lora_cache): a .ckpt or
                # .bin LoRA is "invalid generation parameters"
                l = path if path in self.listed_loras() else None
                if not path or l is None:
                    return None, bad
                mul = item.get("multiplier", 1.0)
                if not _is_num(mul):
                    return None, bad
                g["loras"].append([self.st.lora_stem(l), float(mul)])
        ci = body.get("control_image")
        if ci is not None:
            if not isinstance(ci, str):
                return None, bad
            try:
                raw = base64.b64decode(ci.split(",", 1)[1] if ci.startswith("data:") else ci,
                                       validate=True)
            except (binascii.Error, ValueError):
                return None, bad
            # media_io.cpp load_image_common: stb_image asked for 3 channels, and an image
            # of fewer (grey, grey+alpha) refused, which from_json_str turns into "invalid
            # generation parameters"
            if raw[:8] == PNG_SIG and len(raw) > 25 and raw[25] in (0, 4):
                return None, bad
            # started without --control-net (the test server's --no-controlnet) the image is
            # ignored: generate_image runs without a control net (src/stable-diffusion.cpp)
            if not self.st.args.no_controlnet:
                g["control_image"] = hashlib.sha256(raw).hexdigest()[:16]
        of = body.get("output_format", "png")
        if of not in ("png", "jpeg", "webp"):
            return None, "invalid output_format"
        if of != "png":
            return None, "output_format %s is not supported by the test server" % of
        g["output_format"] = of
        return self.resolve(g)

    def resolve(self, g):
        if g["seed"] < 0:
            with self.st.lock:
                g["seed"] = self.st.seed_rng.randrange(2147483648)
        # common.cpp resolve_and_validate (strict, as the server calls it): clamped silently
        g["batch_count"] = min(8, max(1, g["batch_count"]))
        g["steps"] = min(100, max(1, g["steps"]))
        if g["strength"] < 0 or g["strength"] > 1 or g["cfg"] < 0:
            return None, "invalid generation parameters"
        return g, None

    def render_specs(self, g):
        w = g["width"] if g["width"] > 0 else 512
        h = g["height"] if g["height"] > 0 else 512
        sampler = g["sample_method"] or "euler_a"
        specs = []
        for i in range(g["batch_count"]):
            seed = g["seed"] + i
            params = {"prompt": g["prompt"], "negative_prompt": g["negative_prompt"],
                      "seed": seed, "width": w, "height": h, "steps": g["steps"],
                      "cfg": float(g["cfg"]), "sampler": sampler, "checkpoint": self.model,
                      "loras": sorted(g["loras"]),
                      "extra": {"scheduler": g["scheduler"], "control": g["control_image"],
                                "control_strength": g["control_strength"]
                                if g["control_image"] else None,
                                "clip_skip": g["clip_skip"]}}
            # common.cpp get_image_params()
            s = g["prompt"] + "\n"
            if g["negative_prompt"]:
                s += "Negative prompt: " + g["negative_prompt"] + "\n"
            s += "Steps: %d, " % g["steps"]
            s += "CFG scale: %f, " % g["cfg"]
            s += "Guidance: %f, " % g["distilled_guidance"]
            s += "Eta: %f, " % g["eta"]
            s += "Seed: %d, " % seed
            s += "Size: %dx%d, " % (w, h)
            s += "Model: %s, " % self.model
            s += "RNG: cuda, "
            s += "Sampler: %s" % sampler
            if g["scheduler"]:
                s += " " + g["scheduler"]
            s += ", "
            if g["clip_skip"] != -1:
                s += "Clip skip: %d, " % g["clip_skip"]
            s += "Version: stable-diffusion.cpp"
            specs.append((params, s))
        return specs

    def generate(self, g, fault, key, interrupt=None):
        """Run under the GPU; returns list of Output or None (generation failed)."""
        st = self.st
        w = g["width"] if g["width"] > 0 else 512
        h = g["height"] if g["height"] > 0 else 512
        st.gpu_enter()
        try:
            t0 = time.time()
            duration = st.job_latency(key)
            outs = None
            if fault != "exec_fail" and 64 <= w <= 4096 and 64 <= h <= 4096 \
                    and w % 8 == 0 and h % 8 == 0:
                outs = []
                for params, text in self.render_specs(g):
                    texts = (("parameters", text),) if g["embed_image_metadata"] else ()
                    o = Output(params, "black" if fault == "black" else None, texts,
                               fault == "truncate")
                    o.bytes(st.cache)
                    outs.append(o)
            remaining = duration - (time.time() - t0)
            if remaining > 0:
                time.sleep(remaining)
            return outs
        finally:
            st.gpu_exit()

    # -- sdapi subset ---------------------------------------------------------------------------
    def sdapi_txt2img(self, req):
        st = self.st
        if not req.body:
            return sdcpp_json({"error": "empty body"}, 400)
        try:
            j = json.loads(req.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            return sdcpp_json({"error": "server_error", "message": "[json.exception.parse_error.101] "
                               "parse error: %s" % e}, 500)
        if not isinstance(j, dict):
            return sdcpp_json({"error": "server_error", "message": "[json.exception.type_error.306] "
                               "cannot use value() with " + type(j).__name__}, 500)
        tmap = {"prompt": str, "negative_prompt": str, "sampler_name": str, "scheduler": str}
        for k, t in tmap.items():
            if k in j and not isinstance(j[k], t):
                return sdcpp_json({"error": "server_error", "message": "[json.exception.type_error.302] "
                                   "type must be string, but is " + type(j[k]).__name__}, 500)
        for k in ("width", "height", "steps", "seed", "batch_size", "clip_skip"):
            if k in j and not _is_num(j[k]):
                return sdcpp_json({"error": "server_error", "message": "[json.exception.type_error.302] "
                                   "type must be number, but is " + type(j[k]).__name__}, 500)
        if "cfg_scale" in j and not _is_num(j["cfg_scale"]):
            return sdcpp_json({"error": "server_error", "message": "[json.exception.type_error.302] "
                               "type must be number, but is " + type(j["cfg_scale"]).__name__}, 500)
        width, height = int(j.get("width", 512)), int(j.get("height", 512))
        if width <= 0 or height <= 0:
            return sdcpp_json({"error": "width and height must be positive"}, 400)
        prompt = j.get("prompt", "")
        if not prompt:
            return sdcpp_json({"error": "prompt required"}, 400)
        g = self.base_gen()
        g.update({"prompt": prompt, "negative_prompt": j.get("negative_prompt", ""),
                  "seed": int(j.get("seed", -1)), "steps": int(j.get("steps", 20)),
                  "batch_count": int(j.get("batch_size", 1)),
                  "cfg": float(j.get("cfg_scale", 7.0)), "width": int(j.get("width", -1)),
                  "height": int(j.get("height", -1))})
        cs = int(j.get("clip_skip", -1))
        if cs > 0:
            g["clip_skip"] = cs
        sname = j.get("sampler_name", "")
        sm = sname if sname in SDCPP_SAMPLERS else SDCPP_SAPI_SAMPLER_ALIASES.get(sname.lower())
        if sm:
            g["sample_method"] = sm
        if j.get("scheduler", "") in SDCPP_SCHEDULERS:
            g["scheduler"] = j["scheduler"]
        if isinstance(j.get("lora"), list):
            for item in j["lora"]:
                if not isinstance(item, dict):
                    continue
                path = item.get("path", "")
                if not path:
                    return sdcpp_json({"error": "lora.path required"}, 400)
                l = st.find_lora(path)
                if l is None:
                    return sdcpp_json({"error": "invalid lora path: " + str(path)}, 400)
                g["loras"].append([st.lora_stem(l), float(item.get("multiplier", 1.0))])
        g, err = self.resolve(g)
        if err:
            return sdcpp_json({"error": "invalid params"}, 400)
        job_fault = req.fault.job if req.fault.job != "lose" else None
        outs = self.generate(g, job_fault, "sdapi|%s|%d" % (g["prompt"], g["seed"]))
        jid = "sdapi-%d" % int(time.time() * 1000)
        if outs is None:
            if job_fault == "exec_fail":
                st.count_fault("exec_fail")
            st.log_job("sdcpp", jid, [], "failed")
            return sdcpp_json({"error": "generate_image returned no results"}, 500)
        if job_fault in ("black", "truncate"):
            st.count_fault(job_fault)
        st.log_job("sdcpp", jid, [o.describe(st.cache) for o in outs], "completed")
        specs = self.render_specs(g)
        info = collections.OrderedDict([("prompt", g["prompt"])])
        if g["negative_prompt"]:
            info["negative_prompt"] = g["negative_prompt"]
        info.update([("seed", g["seed"]), ("cfg_scale", g["cfg"]),
                     ("width", g["width"] if g["width"] > 0 else 512),
                     ("height", g["height"] if g["height"] > 0 else 512),
                     ("steps", g["steps"]), ("sampler_name", g["sample_method"] or "euler_a")])
        if g["clip_skip"] != -1:
            info["clip_skip"] = g["clip_skip"]
        if g["scheduler"]:
            info["extra_generation_params"] = {"Schedule type": g["scheduler"]}
        info["sd_model_name"] = self.model
        info["version"] = "stable-diffusion.cpp"
        info["infotexts"] = [s for _, s in specs]
        info["all_prompts"] = [g["prompt"]] * len(outs)
        info["all_negative_prompts"] = [g["negative_prompt"]] * len(outs)
        info["all_seeds"] = [g["seed"] + i for i in range(len(outs))]
        return sdcpp_json({"images": [base64.b64encode(o.bytes(st.cache)).decode("ascii")
                                      for o in outs],
                           "parameters": j, "info": jdump_compact(info).decode("utf-8")})

    # -- async jobs -----------------------------------------------------------------------------
    def _purge(self, now):
        st = self.st
        ttl = st.config["job_ttl_s"]
        for jid in [k for k, t in st.sdcpp_expired.items() if t <= now]:
            del st.sdcpp_expired[jid]
        for jid, job in list(st.sdcpp_jobs.items()):
            if job["completed"] and now - job["completed"] >= ttl:
                st.sdcpp_expired[jid] = now + max(ttl, 60)
                del st.sdcpp_jobs[jid]

    def img_gen(self, req):
        st = self.st
        if not req.body:
            return sdcpp_json({"error": "empty body"}, 400)
        try:
            body = json.loads(req.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            return sdcpp_json({"error": "invalid json", "message": "[json.exception.parse_error.101] "
                               "parse error: %s" % e}, 400)
        if not isinstance(body, dict):
            return sdcpp_json({"error": "invalid generation parameters"}, 400)
        g, err = self.parse_native(body)
        if err:
            return sdcpp_json({"error": err}, 400)
        now = int(time.time())
        with st.lock:
            self._purge(time.time())
            pending = sum(1 for j in st.sdcpp_jobs.values()
                          if j["status"] in ("queued", "generating"))
            if pending >= st.config["max_pending_jobs"]:
                return sdcpp_json({"error": "job queue is full"}, 429)
            jid = "job_%x_%08x" % (now, st.sdcpp_next)
            st.sdcpp_next += 1
            job = {"id": jid, "kind": "img_gen", "status": "queued", "created": now,
                   "started": None, "completed": None, "gen": g, "fault": req.fault.job,
                   "outputs": None, "error": None}
            if req.fault.job == "lose":
                st.faults["lose"] += 1
                st.stats["jobs_lost"] += 1
            else:
                st.sdcpp_jobs[jid] = job
                st.sdcpp_queue.append(jid)
                st.note_queue_depth(pending + 1)
                st.sdcpp_cv.notify()
        return sdcpp_json({"id": jid, "kind": "img_gen", "status": "queued", "created": now,
                           "poll_url": "/sdcpp/v1/jobs/" + jid}, 202)

    def job_json(self, job):
        st = self.st
        r = collections.OrderedDict([
            ("id", job["id"]), ("kind", job["kind"]), ("status", job["status"]),
            ("created", job["created"]), ("started", job["started"]),
            ("completed", job["completed"]), ("queue_position", 0)])
        if job["status"] == "queued":
            try:
                r["queue_position"] = list(st.sdcpp_queue).index(job["id"]) + 1
            except ValueError:
                pass
        if job["status"] == "completed":
            r["result"] = {"output_format": job["gen"]["output_format"], "images": [
                {"index": i, "b64_json": base64.b64encode(o.bytes(st.cache)).decode("ascii")}
                for i, o in enumerate(job["outputs"])]}
            r["error"] = None
        elif job["status"] in ("failed", "cancelled"):
            r["result"] = None
            r["error"] = job["error"]
        else:
            r["result"] = None
            r["error"] = None
        return r

    def get_job(self, req, jid):
        st = self.st
        with st.lock:
            self._purge(time.time())
            job = st.sdcpp_jobs.get(jid)
            if job is None:
                if jid in st.sdcpp_expired:
                    return sdcpp_json({"error": "job expired"}, 410)
                return sdcpp_json({"error": "job not found"}, 404)
            snap = dict(job)
        return sdcpp_json(self.job_json(snap))

    def cancel_job(self, req, jid):
        st = self.st
        with st.lock:
            self._purge(time.time())
            job = st.sdcpp_jobs.get(jid)
            if job is None:
                if jid in st.sdcpp_expired:
                    return sdcpp_json({"error": "job expired"}, 410)
                return sdcpp_json({"error": "job not found"}, 404)
            if job["status"] == "queued":
                if jid not in st.sdcpp_queue:
                    return sdcpp_json({"error": "job queue state changed before cancellation"}, 409)
                st.sdcpp_queue.remove(jid)
                job["status"] = "cancelled"
                job["completed"] = int(time.time())
                job["error"] = {"code": "cancelled", "message": "job cancelled by client"}
                st.stats["jobs_cancelled"] += 1
                return sdcpp_json(self.job_json(dict(job)))
            if job["status"] == "generating":
                return sdcpp_json({"error": "job is currently generating and cannot be "
                                            "interrupted yet"}, 409)
            return sdcpp_json(self.job_json(dict(job)))

    def worker_loop(self):
        st = self.st
        while True:
            with st.lock:
                while not st.sdcpp_queue:
                    st.sdcpp_cv.wait(1.0)
                    if st.shutting_down.is_set():
                        return
                jid = st.sdcpp_queue.popleft()
                job = st.sdcpp_jobs.get(jid)
                if job is None:
                    continue
                job["status"] = "generating"
                job["started"] = int(time.time())
            try:
                outs = self.generate(job["gen"], job["fault"],
                                     "sdcpp|%s|%d" % (job["gen"]["prompt"], job["gen"]["seed"]))
            except Exception:
                traceback.print_exc()
                outs = None
            with st.lock:
                job["completed"] = int(time.time())
                if outs:
                    job["status"] = "completed"
                    job["outputs"] = outs
                    if job["fault"] in ("black", "truncate"):
                        st.faults[job["fault"]] += 1
                else:
                    job["status"] = "failed"
                    job["error"] = {"code": "generation_failed",
                                    "message": "generate_image returned no results"}
                    if job["fault"] == "exec_fail":
                        st.faults["exec_fail"] += 1
            st.log_job("sdcpp", jid, [o.describe(st.cache) for o in outs] if outs else [],
                       "completed" if outs else "failed")


# --------------------------------------------------------------------------------------------
# The request handler
# --------------------------------------------------------------------------------------------

class Request:
    __slots__ = ("method", "path", "query", "headers", "body", "fault", "record", "t_start")

    def __init__(self, method, path, query, headers, body):
        self.method, self.path, self.query, self.headers, self.body = method, path, query, headers, body
        self.fault = Fault()
        self.record = None
        self.t_start = time.time()   # the request's arrival (its headers and body read)


# POSTs whose body is JSON: sent under another Content-Type they are refused (FastAPI reads
# a body it cannot take as JSON as no object: 422; ComfyUI and sd-server: 400). The real
# aiohttp and httplib servers are laxer; the strictness here catches a client that labels
# its bodies wrongly (a multipart upload sent as application/json is the mirror case).
JSON_ROUTES = {("POST", "/sdapi/v1/txt2img"), ("POST", "/sdapi/v1/img2img"), ("POST", "/prompt"),
               ("POST", "/sdcpp/v1/img_gen"), ("POST", "/sdapi/v1/options"),
               ("POST", "/sdapi/v1/extra-single-image")}


def _require_json(proto, handler):
    def checked(req):
        ctype = req.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if ctype == "application/json":
            return handler(req)
        if proto == "a1111":
            return a1111_json({"detail": [{"loc": ["body"], "msg": "value is not a valid dict",
                                           "type": "type_error.dict"}]}, 422)
        if proto == "comfyui":
            return comfy_text(400, "Content-Type must be application/json, got '%s'" % ctype)
        return sdcpp_json({"error": "invalid request",
                           "message": "Content-Type must be application/json"}, 400)
    return checked


JOB_ROUTES = {("POST", "/sdapi/v1/txt2img"), ("POST", "/sdapi/v1/img2img"), ("POST", "/prompt"),
              ("POST", "/api/prompt"), ("POST", "/sdcpp/v1/img_gen"),
              ("POST", "/sdapi/v1/extra-single-image")}


class App:
    def __init__(self, st):
        self.st = st
        p = st.protocol
        self.tables = []     # (protocol name, exact routes, prefix resolver)
        if p in ("a1111", "all"):
            self.a1111 = A1111(st)
            self.tables.append(("a1111", self.a1111.routes(), None))
        if p in ("comfyui", "all"):
            self.comfy = ComfyUI(st)
            self.tables.append(("comfyui", self.comfy.routes(), self.comfy.prefix_routes))
        if p in ("sdcpp", "all"):
            self.sdcpp = SdCpp(st)
            self.tables.append(("sdcpp", self.sdcpp.routes(with_sdapi=(p == "sdcpp")),
                                self.sdcpp.prefix_routes))

    def resolve(self, method, path):
        """(protocol, handler) or (protocol, None) with a 404/405 decision."""
        known_path_proto = None
        for proto, exact, prefix in self.tables:
            paths = [path]
            if proto == "comfyui" and path.startswith("/api/"):
                paths.append(path[4:])
            for pth in paths:
                h = exact.get((method, pth))
                if h is None and prefix is not None:
                    h = prefix(method, pth)
                if h is not None:
                    return proto, h
                if any(k[1] == pth for k in exact):
                    known_path_proto = known_path_proto or proto
        if known_path_proto:
            return known_path_proto, "405"
        # a 404 in the voice of the protocol the path belongs to
        if path.startswith("/sdapi/") or path.startswith("/controlnet/"):
            proto = "a1111" if self.st.protocol in ("a1111", "all") else "sdcpp"
        elif path.startswith("/sdcpp/"):
            proto = "sdcpp"
        else:
            proto = {"a1111": "a1111", "comfyui": "comfyui", "sdcpp": "sdcpp",
                     "all": "comfyui"}[self.st.protocol]
        return proto, None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "sd_test_server/" + VERSION
    sys_version = ""

    def setup(self):
        super().setup()
        st = self.server.st
        with st.lock:
            st.stats["connections"] += 1

    def log_message(self, fmt, *args):
        if self.server.st.args.verbose:
            sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % args))

    def do_GET(self):
        self.handle_any()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = do_GET

    # -- I/O ------------------------------------------------------------------------------------
    def read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    break
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while True:                       # trailers
                        t = self.rfile.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def write_response(self, resp, drop=False):
        reason = http.server.BaseHTTPRequestHandler.responses.get(resp.status, ("",))[0]
        body = resp.body if self.command != "HEAD" else b""
        lines = ["HTTP/1.1 %d %s" % (resp.status, reason)]
        if resp.server:
            lines.append("Server: " + resp.server)
        lines.append("Date: " + self.date_time_string())
        lines.append("Content-Type: " + resp.ctype)
        lines.append("Content-Length: %d" % len(resp.body))
        for k, v in resp.headers:
            lines.append("%s: %s" % (k, v))
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        try:
            if drop:
                cut = max(1, len(body) // 2)
                self.wfile.write(head + body[:cut])
                self.wfile.flush()
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            else:
                self.wfile.write(head + body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def write_oversize(self, size):
        """A 200 with a JSON-looking body of `size` bytes, streamed in 1 MiB pieces, until the
        client hangs up; counts the bytes that went out."""
        st = self.server.st
        head = ("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                "Content-Length: %d\r\nConnection: close\r\n\r\n" % size).encode()
        piece = b"A" * (1 << 20)
        sent = 0
        self.close_connection = True
        try:
            self.wfile.write(head + b'{"images": ["')
            sent = 13
            while sent < size:
                n = min(len(piece), size - sent)
                self.wfile.write(piece[:n])
                sent += n
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
        with st.lock:
            st.stats["oversize_bytes_sent"] += sent

    def hang(self):
        """Never answer: wait until the client closes the connection or we shut down."""
        st = self.server.st
        conn = self.connection
        while not st.shutting_down.is_set():
            try:
                r, _, _ = select.select([conn], [], [], 0.25)
            except (OSError, ValueError):
                break
            if r:
                try:
                    if conn.recv(1, socket.MSG_PEEK) == b"":
                        break
                except OSError:
                    break
                time.sleep(0.05)
        self.close_connection = True

    # -- the request ----------------------------------------------------------------------------
    def handle_any(self):
        st = self.server.st
        app = self.server.app
        t_start = time.time()
        split = urllib.parse.urlsplit(self.path)
        path, query = split.path or "/", split.query
        try:
            body = self.read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        req = Request(self.command, path, query, headers, body)
        if path.startswith("/__test__/"):
            resp = self.test_endpoint(req)
            self.write_response(resp)
            return
        proto, handler = app.resolve(self.command, path)
        if callable(handler) and body and (self.command, path) in JSON_ROUTES:
            handler = _require_json(proto, handler)
        rec = self.record(req, proto, t_start)
        with st.lock:
            st.in_flight += 1
            st.max_concurrent = max(st.max_concurrent, st.in_flight)
            st.stats["requests"] += 1
            st.stats_paths["%s %s" % (self.command, path)] += 1
        is_job = (self.command, path) in JOB_ROUTES and callable(handler)
        if is_job:
            with st.lock:
                st.gen_in_flight += 1
                st.max_gen_in_flight = max(st.max_gen_in_flight, st.gen_in_flight)
        try:
            if st.config["request_latency_ms"] > 0:
                time.sleep(st.config["request_latency_ms"] / 1000.0)
                req.t_start = time.time()   # network-like: the request arrives only now
            resp = self.check_auth(req, proto)
            if resp is None:
                eligible = callable(handler) and (st.config["fault_scope"] == "all" or is_job)
                req.fault = st.decide_fault(self.command, self.path, body, eligible, is_job)
                rec["fault"] = req.fault.transport
                rec["job_fault"] = req.fault.job
                if req.fault.transport == "fail":
                    st.count_fault("fail")
                    resp = _fail_response(proto)
                elif req.fault.transport == "hang":
                    st.count_fault("hang")
                    rec["status"] = None
                    self.hang()
                    return
                elif handler is None:
                    resp = _not_found(proto)
                elif handler == "405":
                    resp = _not_found(proto, method_not_allowed=True)
                else:
                    try:
                        resp = handler(req)
                    except HTTPError as e:
                        resp = Response(e.status, e.body, e.ctype, e.headers)
                    except Exception:
                        traceback.print_exc()
                        resp = _fail_response(proto)
            if proto == "a1111":
                resp.headers = list(resp.headers) + [
                    ("X-Process-Time", str(round(time.time() - t_start, 4)))]
            if req.fault.transport == "noreply":
                # the work is done (a /prompt is queued), but not a byte of answer goes back
                st.count_fault("noreply")
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            drop = req.fault.transport == "drop"
            if drop:
                st.count_fault("drop")
            rec["status"] = resp.status
            rec["t_end"] = time.time()
            opath = st.config["oversize_path"]
            with st.lock:
                ocount = st.config["oversize_count"]
                oversize = (st.config["oversize_mb"] > 0 and opath and
                            self.path.startswith(opath) and
                            (not ocount or st.stats["oversize"] < ocount))
                if oversize:
                    st.stats["oversize"] += 1
            if oversize:
                self.write_oversize(int(st.config["oversize_mb"] * (1 << 20)))
                return
            self.write_response(resp, drop=drop)
        finally:
            with st.lock:
                st.in_flight -= 1
                if is_job:
                    st.gen_in_flight -= 1

    def record(self, req, proto, t_start):
        st = self.server.st
        limit = st.args.max_record_body
        rec = {"method": req.method, "path": req.path, "query": req.query,
               "target": self.path, "protocol": proto, "http_version": self.request_version,
               "headers": req.headers, "client_port": self.client_address[1],
               "body_len": len(req.body), "body_sha256": hashlib.sha256(req.body).hexdigest(),
               "t_start": t_start, "status": None}
        ctype = req.headers.get("content-type", "")
        if req.body and "multipart/" not in ctype:
            try:
                text = req.body.decode("utf-8")
                rec["body"] = text if len(text) <= limit else text[:limit]
                rec["body_truncated"] = len(text) > limit
                if len(text) <= limit:
                    try:
                        rec["json"] = json.loads(text)
                    except ValueError:
                        pass
            except UnicodeDecodeError:
                pass
        elif "multipart/" in ctype:
            try:
                fields = parse_multipart(req.body, ctype)
                rec["form"] = {k: ({"filename": v["filename"], "len": len(v["data"]),
                                    "sha256": hashlib.sha256(v["data"]).hexdigest()}
                                   if v["filename"] is not None
                                   else v["data"].decode("utf-8", "replace"))
                               for k, v in fields.items()}
            except ValueError:
                pass
        with st.lock:
            st.seq += 1
            rec["seq"] = st.seq
            st.records.append(rec)
        return rec

    def check_auth(self, req, proto):
        args = self.server.st.args
        if not args.auth and not args.token:
            return None
        h = req.headers.get("authorization", "")
        scheme, _, cred = h.partition(" ")
        ok = False
        if args.token and scheme.lower() == "bearer":
            ok = secrets.compare_digest(cred.strip().encode(), args.token.encode())
        if args.auth and scheme.lower() == "basic":
            try:
                dec = base64.b64decode(cred.strip(), validate=True).decode("utf-8")
                ok = ok or secrets.compare_digest(dec.encode(), args.auth.encode())
            except (binascii.Error, UnicodeDecodeError, ValueError):
                pass
        if ok:
            return None
        with self.server.st.lock:
            self.server.st.stats["auth_failures"] += 1
        www = "Basic" if args.auth else 'Bearer realm="sd_test_server"'
        detail = "Not authenticated" if not h else (
            "Incorrect username or password" if scheme.lower() == "basic" else "Invalid token")
        if proto == "a1111":
            return a1111_json({"detail": detail}, 401, [("WWW-Authenticate", www)])
        if proto == "comfyui":
            return Response(401, b"401: Unauthorized", "text/plain; charset=utf-8",
                            [("WWW-Authenticate", www)], "Python/3.11 aiohttp/3.11.11")
        return Response(401, jdump_compact({"error": "unauthorized"}), "application/json",
                        [("WWW-Authenticate", www)], "")

    # -- /__test__ ------------------------------------------------------------------------------
    def test_endpoint(self, req):
        st = self.server.st
        m, p = req.method, req.path

        def js(obj, status=200):
            return Response(status, json.dumps(obj, indent=None).encode(), "application/json")

        if m == "GET" and p == "/__test__/requests":
            q = urllib.parse.parse_qs(req.query)
            since = int(q.get("since", ["0"])[0])
            pfx = q.get("path", [None])[0]
            meth = q.get("method", [None])[0]
            bodies = q.get("bodies", ["1"])[0] != "0"
            with st.lock:
                recs = [r for r in st.records if r["seq"] > since
                        and (pfx is None or r["path"].startswith(pfx))
                        and (meth is None or r["method"] == meth)]
                recs = [dict(r) for r in recs]
            if not bodies:
                for r in recs:
                    r.pop("body", None)
                    r.pop("json", None)
            return js(recs)
        if m == "POST" and p == "/__test__/reset":
            st.reset()
            return js({"ok": True})
        if p == "/__test__/config":
            if m == "POST":
                try:
                    upd = validate_config_update(json.loads(req.body.decode("utf-8") or "{}"))
                except (ValueError, UnicodeDecodeError) as e:
                    return js({"error": str(e)}, 400)
                with st.lock:
                    st.config.update(upd)
                    if "fail_first" in upd:
                        st.fail_first_used = 0
            with st.lock:
                return js(dict(st.config))
        if m == "GET" and p == "/__test__/stats":
            with st.lock:
                s = dict(st.stats)
                for k in ("requests", "jobs_done", "images_done", "jobs_failed", "jobs_lost",
                          "jobs_interrupted", "jobs_cancelled", "connections", "model_switches",
                          "uploads", "auth_failures"):
                    s.setdefault(k, 0)
                s.update({"max_concurrent": st.max_concurrent, "in_flight": st.in_flight,
                          "max_concurrent_jobs": st.max_gen_in_flight,
                          "gpu_max_concurrent": st.gpu_max, "max_queue_depth": st.max_queue_depth,
                          "faults": dict(st.faults), "paths": dict(st.stats_paths),
                          "loaded_checkpoint": st.loaded_checkpoint,
                          "options_checkpoint": st.opts_checkpoint,
                          "comfy_executions": dict(st.comfy_executions),
                          "protocol": st.protocol, "uptime_s": time.time() - st.started})
            return js(s)
        if m == "GET" and p == "/__test__/jobs":
            with st.lock:
                return js(list(st.jobs_log))
        if m == "GET" and p == "/__test__/health":
            return js({"ok": True, "protocol": st.protocol, "version": VERSION})
        if m == "POST" and p == "/__test__/render":
            try:
                params = json.loads(req.body.decode("utf-8"))
                full = {"prompt": "", "negative_prompt": "", "seed": 0, "width": 512,
                        "height": 512, "steps": 20, "cfg": 7.0, "sampler": "",
                        "checkpoint": "", "loras": [], "extra": {}}
                variant = params.pop("variant", None) if isinstance(params, dict) else None
                texts = params.pop("texts", []) if isinstance(params, dict) else []
                full.update(params)
                data = render_png(full, variant, [tuple(t) for t in texts])
            except Exception as e:
                return js({"error": str(e)}, 400)
            return Response(200, data, "image/png",
                            [("X-Render-Key", hashlib.sha256(
                                canonical_key(full).encode()).hexdigest())])
        return js({"error": "unknown test endpoint"}, 404)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024
    block_on_close = False


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(description="Deterministic Stable Diffusion test server "
                                "(A1111, ComfyUI, stable-diffusion.cpp protocols).")
    p.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free)")
    p.add_argument("--port-file", help="write the bound port number to this file")
    p.add_argument("--protocol", choices=["a1111", "comfyui", "sdcpp", "all"], default="all")
    p.add_argument("--auth", help="user:pass; require HTTP basic auth")
    p.add_argument("--token", help="require 'Authorization: Bearer TOKEN'")
    p.add_argument("--models", default="sd_xl_base_1.0.safetensors,v1-5-pruned-emaonly.safetensors",
                   help="comma-separated checkpoint file names (first is loaded at start)")
    p.add_argument("--lora-dir", default=None,
                   help="real LoRA files: a listed LoRA whose NAME.safetensors is here reports "
                   "its real A1111 hash (else a made-up one)")
    p.add_argument("--checkpoint-dir", default=None,
                   help="real checkpoint files: a listed checkpoint found here reports the "
                   "real A1111 short hash (first 10 hex of its SHA-256) as sd_model_hash")
    p.add_argument("--loras", default="crown_v2.safetensors,laser_eyes.safetensors,"
                   "pixel_art_xl.safetensors", help="comma-separated LoRA file names")
    p.add_argument("--controlnets", default="control_v11p_sd15_canny.pth,"
                   "control_v11f1p_sd15_depth.pth", help="comma-separated ControlNet model names")
    p.add_argument("--upscale-models", default="RealESRGAN_x4plus.pth,RealESRGAN_x2plus.pth,"
                   "4x-UltraSharp.pth", help="ComfyUI: comma-separated upscale model files")
    p.add_argument("--no-controlnet", action="store_true",
                   help="A1111: behave as if the ControlNet extension is not installed")
    p.add_argument("--unloadable-loras", default="",
                   help="A1111: comma-separated LoRA names that are listed but fail to load "
                   "(a file cut short): the image is made without them, answered 200")
    p.add_argument("--forge", action="store_true",
                   help="A1111 protocol as stable-diffusion-webui-forge serves it: forge_* "
                   "options, ControlNet module 'None' and exact model titles only, an "
                   "unknown LoRA drops every LoRA of the image")
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--jitter-ms", type=float, default=0.0)
    p.add_argument("--request-latency-ms", type=float, default=0.0)
    p.add_argument("--model-switch-ms", type=float, default=0.0)
    p.add_argument("--fail-rate", type=float, default=0.0)
    p.add_argument("--hang-rate", type=float, default=0.0)
    p.add_argument("--drop-rate", type=float, default=0.0)
    p.add_argument("--noreply-rate", type=float, default=0.0)
    p.add_argument("--truncate-rate", type=float, default=0.0)
    p.add_argument("--black-rate", type=float, default=0.0)
    p.add_argument("--lose-rate", type=float, default=0.0)
    p.add_argument("--exec-fail-rate", type=float, default=0.0)
    p.add_argument("--fault-seed", "--seed", dest="fault_seed", type=int, default=0)
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--fault-scope", choices=["all", "jobs"], default="all")
    p.add_argument("--max-pending-jobs", type=int, default=64)
    p.add_argument("--job-ttl-s", type=float, default=600.0)
    p.add_argument("--random-seed", type=int, default=1234,
                   help="seeds the RNG that replaces seed -1 (reset re-seeds it)")
    p.add_argument("--max-records", type=int, default=100000)
    p.add_argument("--max-record-body", type=int, default=1 << 20)
    p.add_argument("--image-cache", type=int, default=256, help="rendered PNGs kept in memory")
    p.add_argument("--verbose", action="store_true")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.auth and ":" not in args.auth:
        sys.exit("--auth must be user:pass")
    try:
        st = State(args)
    except ValueError as e:
        sys.exit("bad fault settings: %s" % e)
    server = Server(("127.0.0.1", args.port), Handler)
    server.st = st
    server.app = App(st)
    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                         name="serve", daemon=True)
    t.start()
    sys.stdout.write("LISTENING 127.0.0.1:%d\n" % port)
    sys.stdout.flush()
    while not stop.wait(0.5):
        pass
    st.shutting_down.set()
    with st.lock:
        st.comfy_cv.notify_all()
        st.sdcpp_cv.notify_all()
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
