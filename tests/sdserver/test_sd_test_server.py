#!/usr/bin/python3
"""Self-test of sd_test_server.py: starts it on 127.0.0.1 port 0 in a subprocess and
exercises every endpoint and fault.  Run: /usr/bin/python3 test_sd_test_server.py -v"""

import base64
import hashlib
import http.client
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "sd_test_server.py")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

class PNGError(Exception):
    pass


def decode_png(data):
    """Minimal PNG decoder (8-bit RGB/RGBA, all five filters): (w, h, rows, texts)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise PNGError("signature")
    pos, idat, texts, ihdr, seen_end = 8, [], {}, None, False
    while pos < len(data):
        if pos + 8 > len(data):
            raise PNGError("truncated chunk header")
        ln, = struct.unpack(">I", data[pos:pos + 4])
        ctype = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + ln]
        if len(body) != ln or pos + 12 + ln > len(data):
            raise PNGError("truncated chunk")
        crc, = struct.unpack(">I", data[pos + 8 + ln:pos + 12 + ln])
        if zlib.crc32(ctype + body) & 0xFFFFFFFF != crc:
            raise PNGError("crc")
        if ctype == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif ctype == b"IDAT":
            idat.append(body)
        elif ctype == b"tEXt":
            k, _, v = body.partition(b"\x00")
            texts[k.decode("latin-1")] = v.decode("latin-1")
        elif ctype == b"iTXt":
            k, _, rest = body.partition(b"\x00")
            rest = rest[2:]
            _, _, rest = rest.partition(b"\x00")
            _, _, rest = rest.partition(b"\x00")
            texts[k.decode("latin-1")] = rest.decode("utf-8")
        elif ctype == b"IEND":
            seen_end = True
            break
        pos += 12 + ln
    if not seen_end or ihdr is None:
        raise PNGError("no IEND/IHDR")
    w, h, depth, ctype_, _, _, interlace = ihdr
    if depth != 8 or ctype_ not in (2, 6) or interlace:
        raise PNGError("unsupported format")
    bpp = 3 if ctype_ == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = w * bpp
    if len(raw) != h * (stride + 1):
        raise PNGError("bad data length")
    rows, prev = [], bytearray(stride)
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
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pr) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, rows, texts


def pixel_summary(rows):
    allb = b"".join(rows)
    return {"max": max(allb), "distinct_rows": len(set(rows)),
            "uniform": len(set(allb[i:i + 3] for i in range(0, len(allb), 3 * 97))) == 1}


class Server:
    def __init__(self, *args):
        self.proc = subprocess.Popen([PYTHON, SERVER, "--port", "0"] + list(args),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        r, _, _ = select.select([self.proc.stdout], [], [], 15)
        if not r:
            self.proc.kill()
            raise RuntimeError("server did not start")
        line = self.proc.stdout.readline().decode()
        if not line.startswith("LISTENING 127.0.0.1:"):
            self.proc.kill()
            raise RuntimeError("unexpected first line %r: %s" % (line, self.proc.stderr.read()))
        self.port = int(line.strip().rsplit(":", 1)[1])
        self.conn = None

    def stop(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()

    def stop_conn(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method, path, body=None, headers=None, timeout=30, fresh=False):
        """One request on a kept-alive connection: (status, headers dict, body bytes)."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = dict(headers or {}, **{"Content-Type": "application/json"})
        for attempt in (0, 1):
            if fresh or self.conn is None:
                if self.conn is not None:
                    self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            self.conn.timeout = timeout
            if self.conn.sock is not None:
                self.conn.sock.settimeout(timeout)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                r = self.conn.getresponse()
                data = r.read()
                hdrs = {k.lower(): v for k, v in r.getheaders()}
                if r.will_close:
                    self.conn.close()
                    self.conn = None
                return r.status, hdrs, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.conn.close()
                self.conn = None
                if attempt == 1 or fresh:
                    raise
        raise AssertionError("unreachable")

    def json(self, method, path, body=None, headers=None, expect=200, **kw):
        st, h, data = self.request(method, path, body, headers, **kw)
        if expect is not None and st != expect:
            raise AssertionError("%s %s: %d %s" % (method, path, st, data[:500]))
        return json.loads(data) if data else None

    def config(self, **kw):
        return self.json("POST", "/__test__/config", kw)

    def reset(self):
        self.json("POST", "/__test__/reset", {})

    def stats(self):
        return self.json("GET", "/__test__/stats")


def raw_request(port, method, path, body=b"", headers=None, timeout=5):
    """A request on its own socket, returning (status or None, raw bytes, error)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    hdrs = {"Host": "127.0.0.1", "Content-Length": str(len(body))}
    hdrs.update(headers or {})
    req = "%s %s HTTP/1.1\r\n%s\r\n" % (method, path, "".join(
        "%s: %s\r\n" % kv for kv in hdrs.items()))
    s.sendall(req.encode() + body)
    buf, err = b"", None
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    except socket.timeout:
        err = "timeout"
    finally:
        s.close()
    status = int(buf.split(b" ", 2)[1]) if buf.startswith(b"HTTP/1.1 ") else None
    return status, buf, err


def make_png(w, h, pixel):
    """An RGB PNG, filter None: pixel(x, y) -> (r, g, b)."""
    raw = b"".join(b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(w)) for y in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def rgb_at(rows, x, y, bpp):
    return tuple(rows[y][x * bpp:x * bpp + 3])


def mask_pixel(x, y):
    return (255, 255, 255) if 8 <= x < 24 and 16 <= y < 40 else (0, 0, 0)


def txt2img_body(**kw):
    b = {"prompt": "pixel art owl, dusk background", "negative_prompt": "blurry, text",
         "seed": 42, "steps": 20, "cfg_scale": 7, "width": 64, "height": 64,
         "sampler_name": "Euler a"}
    b.update(kw)
    return b


def comfy_graph(seed=7, text="pixel art owl", neg="blurry", w=64, h=64, batch=1,
                ckpt="sd_xl_base_1.0.safetensors", lora=None, prefix="kiln/owl"):
    g = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": text, "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": neg, "clip": ["4", 1]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": w, "height": h,
                                                           "batch_size": batch}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": seed, "steps": 20, "cfg": 7.0, "sampler_name": "euler",
            "scheduler": "normal", "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0],
            "negative": ["7", 0], "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": prefix,
                                                    "images": ["8", 0]}},
    }
    if lora:
        g["10"] = {"class_type": "LoraLoader", "inputs": {
            "lora_name": lora, "strength_model": 0.8, "strength_clip": 0.8,
            "model": ["4", 0], "clip": ["4", 1]}}
        g["3"]["inputs"]["model"] = ["10", 0]
        g["6"]["inputs"]["clip"] = ["10", 1]
        g["7"]["inputs"]["clip"] = ["10", 1]
    return g


def multipart(fields, files):
    boundary = "----kilnboundary" + uuid.uuid4().hex
    out = []
    for k, v in fields.items():
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
                    % (boundary, k, v)).encode())
    for k, (fname, data) in files.items():
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                    "Content-Type: image/png\r\n\r\n" % (boundary, k, fname)).encode()
                   + data + b"\r\n")
    out.append(("--%s--\r\n" % boundary).encode())
    return b"".join(out), "multipart/form-data; boundary=" + boundary


def wait_for(cond, timeout=10, what="condition"):
    t = time.time()
    while time.time() - t < timeout:
        v = cond()
        if v:
            return v
        time.sleep(0.01)
    raise AssertionError("timed out waiting for " + what)


def wait_history(srv, pid, timeout=10, prefix=""):
    t = time.time()
    while time.time() - t < timeout:
        h = srv.json("GET", prefix + "/history/" + pid)
        if h:
            return h[pid]
        time.sleep(0.02)
    raise AssertionError("prompt %s never finished" % pid)


def wait_job(srv, jid, timeout=10):
    t = time.time()
    while time.time() - t < timeout:
        j = srv.json("GET", "/sdcpp/v1/jobs/" + jid)
        if j["status"] in ("completed", "failed", "cancelled"):
            return j
        time.sleep(0.02)
    raise AssertionError("job %s never finished" % jid)


# ---------------------------------------------------------------------------------------------
# startup, shutdown, plumbing
# ---------------------------------------------------------------------------------------------

class TestLifecycle(unittest.TestCase):
    def test_port_file_sigterm_and_bind_address(self):
        with tempfile.TemporaryDirectory() as d:
            pf = os.path.join(d, "port")
            srv = Server("--protocol", "a1111", "--port-file", pf)
            try:
                with open(pf) as f:
                    self.assertEqual(int(f.read().strip()), srv.port)
                self.assertEqual(srv.json("GET", "/__test__/health")["protocol"], "a1111")
                # bound to loopback only
                out = subprocess.run(["ss", "-ltn"], capture_output=True, text=True).stdout \
                    if os.path.exists("/usr/bin/ss") or os.path.exists("/bin/ss") else ""
                for line in out.splitlines():
                    if (":%d " % srv.port) in line:
                        self.assertIn("127.0.0.1:%d" % srv.port, line)
            finally:
                t = time.time()
                srv.proc.send_signal(signal.SIGTERM)
                rc = srv.proc.wait(10)
                self.assertEqual(rc, 0)
                self.assertLess(time.time() - t, 5)
                srv.stop()

    def test_bad_arguments(self):
        p = subprocess.run([PYTHON, SERVER, "--protocol", "nope"], capture_output=True)
        self.assertNotEqual(p.returncode, 0)
        p = subprocess.run([PYTHON, SERVER, "--fail-rate", "2"], capture_output=True)
        self.assertNotEqual(p.returncode, 0)


class TestPlumbing(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--protocol", "all")

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def setUp(self):
        self.srv.reset()

    def test_keep_alive_and_content_length(self):
        srv = self.srv
        srv.request("GET", "/sdapi/v1/sd-models", fresh=True)
        before = srv.stats()["connections"]
        for _ in range(10):
            st, h, body = srv.request("GET", "/sdapi/v1/sd-models")
            self.assertEqual(st, 200)
            self.assertEqual(int(h["content-length"]), len(body))
        self.assertEqual(srv.stats()["connections"], before)
        recs = srv.json("GET", "/__test__/requests?path=/sdapi/v1/sd-models")
        self.assertEqual(len({r["client_port"] for r in recs}), 1)

    def test_records_and_reset(self):
        srv = self.srv
        srv.request("POST", "/sdapi/v1/txt2img", txt2img_body(extra_unknown_field=1),
                    headers={"X-Kiln-Item": "token-7"})
        recs = srv.json("GET", "/__test__/requests")
        self.assertEqual(len(recs), 1)
        r = recs[0]
        self.assertEqual((r["method"], r["path"], r["status"], r["protocol"]),
                         ("POST", "/sdapi/v1/txt2img", 200, "a1111"))
        self.assertEqual(r["headers"]["x-kiln-item"], "token-7")
        self.assertEqual(r["json"]["extra_unknown_field"], 1)
        self.assertEqual(r["body_sha256"], hashlib.sha256(r["body"].encode()).hexdigest())
        s = srv.stats()
        self.assertEqual((s["requests"], s["jobs_done"], s["images_done"]), (1, 1, 1))
        jobs = srv.json("GET", "/__test__/jobs")
        self.assertEqual(len(jobs), 1)
        self.assertEqual(jobs[0]["outputs"][0]["params"]["seed"], 42)
        since = recs[-1]["seq"]
        srv.request("GET", "/sdapi/v1/options")
        self.assertEqual(len(srv.json("GET", "/__test__/requests?since=%d" % since)), 1)
        self.assertNotIn("body", srv.json("GET", "/__test__/requests?bodies=0")[0])
        srv.reset()
        self.assertEqual(srv.json("GET", "/__test__/requests"), [])
        self.assertEqual(srv.stats()["requests"], 0)

    def test_config_endpoint(self):
        srv = self.srv
        c = srv.config(latency_ms=5, fail_rate=0.25)
        self.assertEqual((c["latency_ms"], c["fail_rate"]), (5.0, 0.25))
        self.assertEqual(srv.json("GET", "/__test__/config")["fail_rate"], 0.25)
        st, _, body = srv.request("POST", "/__test__/config", {"fail_rate": 3})
        self.assertEqual(st, 400)
        st, _, body = srv.request("POST", "/__test__/config", {"nope": 1})
        self.assertEqual(st, 400)
        srv.config(latency_ms=0, fail_rate=0)

    def test_render_endpoint_matches_served_image(self):
        srv = self.srv
        d = srv.json("POST", "/sdapi/v1/txt2img", txt2img_body())
        job = srv.json("GET", "/__test__/jobs")[-1]["outputs"][0]
        info = json.loads(d["info"])
        st, h, png = srv.request("POST", "/__test__/render", dict(
            job["params"], texts=[["parameters", info["infotexts"][0]]]))
        self.assertEqual(st, 200)
        self.assertEqual(png, base64.b64decode(d["images"][0]))
        self.assertEqual(hashlib.sha256(png).hexdigest(), job["sha256"])

    def test_chunked_request_body(self):
        body = json.dumps(txt2img_body()).encode()
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=10)
        s.sendall(b"POST /sdapi/v1/txt2img HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                  b"Content-Type: application/json\r\nConnection: close\r\n\r\n" + chunked)
        buf = b""
        while True:
            c = s.recv(65536)
            if not c:
                break
            buf += c
        s.close()
        self.assertTrue(buf.startswith(b"HTTP/1.1 200"), buf[:200])

    def test_unknown_paths(self):
        st, _, body = self.srv.request("GET", "/sdapi/v1/nope")
        self.assertEqual((st, json.loads(body)), (404, {"detail": "Not Found"}))
        st, _, body = self.srv.request("GET", "/sdapi/v1/txt2img")
        self.assertEqual((st, json.loads(body)), (405, {"detail": "Method Not Allowed"}))
        st, _, body = self.srv.request("GET", "/nope")
        self.assertEqual(st, 404)
        st, _, _ = self.srv.request("GET", "/__test__/nope")
        self.assertEqual(st, 404)


# ---------------------------------------------------------------------------------------------
# A1111
# ---------------------------------------------------------------------------------------------

class TestA1111(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--protocol", "a1111")

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def setUp(self):
        self.srv.reset()
        self.srv.config(latency_ms=0)

    def gen(self, **kw):
        d = self.srv.json("POST", "/sdapi/v1/txt2img", txt2img_body(**kw))
        return d, json.loads(d["info"])

    def test_txt2img_shape_png_and_infotext(self):
        d, info = self.gen(width=96, height=64)
        self.assertEqual(set(d), {"images", "parameters", "info"})
        self.assertIsInstance(d["info"], str)
        self.assertEqual(len(d["images"]), 1)
        self.assertEqual(d["parameters"]["prompt"], "pixel art owl, dusk background")
        self.assertEqual(d["parameters"]["steps"], 20)
        self.assertEqual(d["parameters"]["cfg_scale"], 7.0)
        self.assertIn("override_settings", d["parameters"])
        for k in ("seed", "all_seeds", "subseed", "all_subseeds", "infotexts", "all_prompts",
                  "sd_model_name", "sd_model_hash", "sampler_name", "cfg_scale", "steps",
                  "width", "height", "job_timestamp"):
            self.assertIn(k, info)
        self.assertEqual((info["seed"], info["all_seeds"]), (42, [42]))
        png = base64.b64decode(d["images"][0])
        w, h, rows, texts = decode_png(png)
        self.assertEqual((w, h), (96, 64))
        s = pixel_summary(rows)
        self.assertGreater(s["max"], 0)
        self.assertFalse(s["uniform"])
        self.assertGreater(s["distinct_rows"], 4)
        self.assertEqual(texts["parameters"], info["infotexts"][0])
        self.assertEqual(
            info["infotexts"][0],
            "pixel art owl, dusk background\nNegative prompt: blurry, text\n"
            "Steps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7.0, Seed: 42, "
            "Size: 96x64, Model hash: %s, Model: sd_xl_base_1.0, Version: v1.10.1"
            % info["sd_model_hash"])

    def test_deterministic_and_sensitive(self):
        a, _ = self.gen()
        b, _ = self.gen()
        self.assertEqual(a["images"], b["images"])
        base = decode_png(base64.b64decode(a["images"][0]))[2]
        for change in ({"seed": 43}, {"prompt": "owl2"}, {"negative_prompt": "x"},
                       {"steps": 21}, {"cfg_scale": 7.5}, {"sampler_name": "Euler"},
                       {"prompt": "pixel art owl, dusk background <lora:crown_v2:1>"},
                       {"override_settings": {"sd_model_checkpoint":
                                              "v1-5-pruned-emaonly.safetensors"}}):
            c, _ = self.gen(**change)
            self.assertNotEqual(decode_png(base64.b64decode(c["images"][0]))[2], base, change)

    def test_random_seed_and_batch(self):
        d, info = self.gen(seed=-1, batch_size=2, n_iter=2)
        self.assertNotEqual(info["seed"], -1)
        self.assertEqual(info["all_seeds"], [info["seed"] + i for i in range(4)])
        self.assertEqual(len(d["images"]), 4)
        self.assertEqual(len(set(d["images"])), 4)
        for i, im in enumerate(d["images"]):
            t = decode_png(base64.b64decode(im))[3]["parameters"]
            self.assertIn("Seed: %d," % info["all_seeds"][i], t)
        d2, info2 = self.gen(seed=-1)
        self.assertNotEqual(info2["seed"], info["seed"])
        d3, _ = self.gen(send_images=False)
        self.assertEqual(d3["images"], [])

    def test_lora_tags(self):
        d, info = self.gen(prompt="owl <lora:crown_v2:0.8> <lora:laser_eyes> <lora:missing:1>")
        t = info["infotexts"][0]
        self.assertTrue(t.startswith("owl <lora:crown_v2:0.8> <lora:laser_eyes> <lora:missing:1>\n"))
        self.assertRegex(t, r'Lora hashes: "crown_v2: [0-9a-f]{12}, laser_eyes: [0-9a-f]{12}"')
        self.assertNotIn("missing", info["extra_generation_params"]["Lora hashes"])
        job = self.srv.json("GET", "/__test__/jobs")[-1]["outputs"][0]["params"]
        self.assertEqual(job["loras"], [["crown_v2", 0.8], ["laser_eyes", 1.0]])
        self.assertEqual(job["prompt"].strip(), "owl")

    def test_validation_422(self):
        st, _, body = self.srv.request("POST", "/sdapi/v1/txt2img",
                                       {"prompt": "x", "steps": "many", "cfg_scale": [],
                                        "override_settings": 5, "styles": ["a", {}]})
        self.assertEqual(st, 422)
        det = json.loads(body)["detail"]
        locs = {tuple(d["loc"]): d["type"] for d in det}
        self.assertEqual(locs, {("body", "steps"): "type_error.integer",
                                ("body", "cfg_scale"): "type_error.float",
                                ("body", "override_settings"): "type_error.dict",
                                ("body", "styles", 1): "type_error.str"})
        st, _, body = self.srv.request("POST", "/sdapi/v1/txt2img", b"{not json",
                                       headers={"Content-Type": "application/json"})
        self.assertEqual(st, 422)
        self.assertEqual(json.loads(body)["detail"][0]["type"], "value_error.jsondecode")
        st, _, body = self.srv.request("POST", "/sdapi/v1/txt2img", [1, 2])
        self.assertEqual((st, json.loads(body)["detail"][0]["type"]), (422, "type_error.dict"))
        # lenient coercion like pydantic v1: "20" -> 20, 7 -> 7.0
        d, info = self.gen(steps="20", cfg_scale=7)
        self.assertEqual((info["steps"], info["cfg_scale"]), (20, 7.0))
        self.assertEqual(self.srv.stats()["jobs_done"], 1)

    def test_script_and_size_errors(self):
        st, _, body = self.srv.request("POST", "/sdapi/v1/txt2img",
                                       txt2img_body(alwayson_scripts={"adetailer": {"args": []}}))
        self.assertEqual(st, 422)
        self.assertEqual(json.loads(body)["detail"], "always on script adetailer not found")
        st, _, body = self.srv.request("POST", "/sdapi/v1/txt2img", txt2img_body(width=8192))
        self.assertEqual(st, 500)
        self.assertEqual(json.loads(body)["error"], "OutOfMemoryError")
        # a width that is not a multiple of 8 is rounded down by the latent space
        d, info = self.gen(width=100, height=72)
        self.assertEqual(decode_png(base64.b64decode(d["images"][0]))[:2], (96, 72))
        self.assertEqual(info["width"], 100)

    def test_unknown_sampler_falls_back(self):
        _, info = self.gen(sampler_name="No Such Sampler")
        self.assertEqual(info["sampler_name"], "DPM++ 2M")
        _, info = self.gen(sampler_name="Euler Karras")
        self.assertIn("Sampler: Euler, Schedule type: Karras", info["infotexts"][0])
        # a sampler's own default scheduler is reported as Automatic (convert_automatic)
        _, info = self.gen(sampler_name="DPM++ 2M Karras")
        self.assertIn("Sampler: DPM++ 2M, Schedule type: Automatic", info["infotexts"][0])
        _, info = self.gen(sampler_name="Euler", scheduler="karras")
        self.assertIn("Sampler: Euler, Schedule type: Karras", info["infotexts"][0])
        _, info = self.gen(sampler_name=None, sampler_index=None)
        self.assertEqual(info["sampler_name"], "DPM++ 2M")
        d = self.srv.json("POST", "/sdapi/v1/txt2img", {"prompt": "x", "width": 64, "height": 64})
        self.assertEqual(json.loads(d["info"])["sampler_name"], "Euler")   # sampler_index default

    def test_checkpoints_options_and_switches(self):
        srv = self.srv
        models = srv.json("GET", "/sdapi/v1/sd-models")
        self.assertEqual([m["model_name"] for m in models], ["sd_xl_base_1.0", "v1-5-pruned-emaonly"])
        for m in models:
            self.assertEqual(m["title"], "%s [%s]" % (m["filename"].rsplit("/", 1)[1], m["hash"]))
            self.assertEqual(m["sha256"][:10], m["hash"])
        opts = srv.json("GET", "/sdapi/v1/options")
        self.assertEqual(opts["sd_model_checkpoint"], models[0]["title"])
        _, info = self.gen(override_settings={"sd_model_checkpoint": "v1-5-pruned-emaonly"})
        self.assertEqual(info["sd_model_name"], "v1-5-pruned-emaonly")
        _, info = self.gen()                       # back to the options checkpoint
        self.assertEqual(info["sd_model_name"], "sd_xl_base_1.0")
        self.assertEqual(srv.stats()["model_switches"], 2)
        # an unknown override is ignored (A1111 pops it and keeps the loaded model)
        _, info = self.gen(override_settings={"sd_model_checkpoint": "nope.safetensors"})
        self.assertEqual(info["sd_model_name"], "sd_xl_base_1.0")
        self.assertIsNone(srv.json("POST", "/sdapi/v1/options",
                                   {"sd_model_checkpoint": models[1]["title"]}))
        self.assertEqual(srv.json("GET", "/sdapi/v1/options")["sd_model_checkpoint"],
                         models[1]["title"])
        _, info = self.gen()
        self.assertEqual(info["sd_model_name"], "v1-5-pruned-emaonly")
        st, _, body = srv.request("POST", "/sdapi/v1/options", {"sd_model_checkpoint": "x"})
        self.assertEqual(st, 500)
        self.assertEqual(json.loads(body)["errors"], "model 'x' not found")
        # restore_afterwards false makes the override stick
        self.gen(override_settings={"sd_model_checkpoint": "sd_xl_base_1.0"},
                 override_settings_restore_afterwards=False)
        self.assertEqual(srv.stats()["options_checkpoint"], "sd_xl_base_1.0.safetensors")

    def test_listings(self):
        srv = self.srv
        names = [s["name"] for s in srv.json("GET", "/sdapi/v1/samplers")]
        self.assertIn("Euler a", names)
        self.assertIn("DPM++ 2M", names)
        sch = srv.json("GET", "/sdapi/v1/schedulers")
        self.assertIn({"name": "karras", "label": "Karras"},
                      [{"name": s["name"], "label": s["label"]} for s in sch])
        loras = srv.json("GET", "/sdapi/v1/loras")
        self.assertIn("crown_v2", [l["name"] for l in loras])
        self.assertTrue(srv.json("GET", "/controlnet/model_list")["model_list"])
        self.assertEqual(srv.json("GET", "/sdapi/v1/upscalers")[0]["name"], "None")

    def test_controlnet(self):
        srv = self.srv
        ctl = base64.b64encode(b"fake control image").decode()
        model = srv.json("GET", "/controlnet/model_list")["model_list"][0]
        unit = {"enabled": True, "image": ctl, "module": "canny", "model": model, "weight": 0.7,
                "resize_mode": "Crop and Resize", "control_mode": "Balanced",
                "guidance_start": 0.0, "guidance_end": 1.0, "pixel_perfect": True}
        d, info = self.gen(alwayson_scripts={"controlnet": {"args": [unit]}})
        self.assertIn('ControlNet 0: "Module: canny, Model: %s, Weight: 0.7' % model,
                      info["infotexts"][0])
        plain, _ = self.gen()
        self.assertNotEqual(plain["images"], d["images"])
        st, _, body = srv.request("POST", "/sdapi/v1/txt2img", txt2img_body(
            alwayson_scripts={"controlnet": {"args": [dict(unit, image=None)]}}))
        self.assertEqual((st, json.loads(body)["errors"]),
                         (500, "controlnet is enabled but no input image is given"))
        # lenient as sd-webui-controlnet: a unit that fails inside process() is dropped and
        # the image made without it, answered 200
        for bad, line in ((dict(unit, weight=3), False), (dict(unit, module="Canny"), False),
                          (dict(unit, model="nope"), True)):
            d2, info2 = self.gen(alwayson_scripts={"controlnet": {"args": [bad]}})
            self.assertEqual(self.last_params()["extra"]["controlnet"], [], bad)
            self.assertEqual("ControlNet 0:" in info2["infotexts"][0], line, bad)
        # the stem finds the model (find_closest_lora_model_name)
        d3, _ = self.gen(alwayson_scripts={"controlnet": {"args": [
            dict(unit, model=model.split(" [")[0])]}})
        self.assertEqual(len(self.last_params()["extra"]["controlnet"]), 1)

    def last_params(self, srv=None):
        return (srv or self.srv).json("GET", "/__test__/jobs")[-1]["outputs"][0]["params"]

    def test_lenient_checkpoint_and_lora(self):
        plain, info = self.gen()
        self.assertEqual(info["sd_model_name"], "sd_xl_base_1.0")
        d, info = self.gen(override_settings={"sd_model_checkpoint": "sdxl_base"})
        self.assertEqual(self.last_params()["checkpoint"], "sd_xl_base_1.0.safetensors")
        self.assertEqual(info["sd_model_name"], "sd_xl_base_1.0")
        d, info = self.gen(override_settings={"sd_model_checkpoint": "v1-5-pruned-emaonly"})
        self.assertEqual(info["sd_model_name"], "v1-5-pruned-emaonly")
        self.assertIn("Model: v1-5-pruned-emaonly", info["infotexts"][0])
        # a LoRA with its extension or a folder is not found: no hash, no comments in info
        d, info = self.gen(prompt="owl <lora:crown_v2.safetensors:0.8> <lora:x/laser_eyes:1> "
                           "<lora:pixel_art_xl:1>")
        self.assertEqual(info["extra_generation_params"]["Lora hashes"][:14], "pixel_art_xl: ")
        self.assertNotIn("comments", info)

    def test_unloadable_lora(self):
        srv = Server("--protocol", "a1111", "--unloadable-loras", "crown_v2")
        try:
            self.assertIn("crown_v2", [l["name"] for l in srv.json("GET", "/sdapi/v1/loras")])
            d = srv.json("POST", "/sdapi/v1/txt2img", txt2img_body(
                prompt="owl <lora:crown_v2:1> <lora:laser_eyes:1>"))
            hashes = json.loads(d["info"])["extra_generation_params"]["Lora hashes"]
            self.assertTrue(hashes.startswith("laser_eyes: ") and "crown" not in hashes, hashes)
        finally:
            srv.stop()

    def test_forge_mode(self):
        srv = Server("--protocol", "a1111", "--forge")
        try:
            self.assertEqual(srv.json("GET", "/sdapi/v1/options")["forge_preset"], "sd")
            self.assertEqual(srv.json("GET", "/sdapi/v1/sd-modules"), [])
            models = srv.json("GET", "/controlnet/model_list")["model_list"]
            self.assertEqual(models[0], "None")
            self.assertEqual(srv.json("GET", "/controlnet/module_list")["module_list"][0], "None")
            ctl = base64.b64encode(b"fake control image").decode()
            unit = {"enabled": True, "image": ctl, "module": "None", "model": models[1],
                    "weight": 3}
            def gen(**kw):
                d = srv.json("POST", "/sdapi/v1/txt2img", txt2img_body(**kw))
                return d, json.loads(d["info"])
            ok, info = gen(alwayson_scripts={"controlnet": {"args": [unit]}})
            self.assertEqual(len(self.last_params(srv)["extra"]["controlnet"]), 1)  # weight 3
            for bad in (dict(unit, module="none"), dict(unit, model=models[1].split(" [")[0])):
                d, info = gen(alwayson_scripts={"controlnet": {"args": [bad]}})
                self.assertEqual(self.last_params(srv)["extra"]["controlnet"], [])
                self.assertIn("ControlNet 0:", info["infotexts"][0])  # written all the same
            # one unknown LoRA drops them all
            d, info = gen(prompt="owl <lora:crown_v2:1> <lora:nope:1>")
            self.assertNotIn("Lora hashes", info["extra_generation_params"])
            self.assertEqual(self.last_params(srv)["loras"], [])
        finally:
            srv.stop()

    def test_without_controlnet_extension(self):
        srv = Server("--protocol", "a1111", "--no-controlnet")
        try:
            self.assertEqual(srv.request("GET", "/controlnet/model_list")[0], 404)
            st, _, body = srv.request("POST", "/sdapi/v1/txt2img", txt2img_body(
                alwayson_scripts={"controlnet": {"args": [{"image": "eA=="}]}}))
            self.assertEqual((st, json.loads(body)["detail"]),
                             (422, "always on script controlnet not found"))
        finally:
            srv.stop()

    def test_extra_single_image_upscale(self):
        srv = self.srv
        names = [u["name"] for u in srv.json("GET", "/sdapi/v1/upscalers")]
        self.assertIn("R-ESRGAN 4x+", names)
        src = make_png(16, 8, lambda x, y: (x * 15, y * 30, 100))
        b64 = base64.b64encode(src).decode()
        d = srv.json("POST", "/sdapi/v1/extra-single-image", {
            "image": b64, "resize_mode": 0, "upscaling_resize": 2, "upscaler_1": "R-ESRGAN 4x+"})
        self.assertEqual(set(d), {"html_info", "image"})
        w, h, rows, _ = decode_png(base64.b64decode(d["image"]))
        self.assertEqual((w, h), (32, 16))
        for y in range(h):
            for x in range(w):
                self.assertEqual(rgb_at(rows, x, y, 4), ((x // 2) * 15, (y // 2) * 30, 100))
        st, _, body = srv.request("POST", "/sdapi/v1/extra-single-image", {
            "image": b64, "upscaling_resize": 2, "upscaler_1": "R-ESRGAN 9x"})
        self.assertEqual(st, 500)
        self.assertIn("could not find upscaler named R-ESRGAN 9x", body.decode())
        st, _, body = srv.request("POST", "/sdapi/v1/extra-single-image", {
            "image": b64, "upscaling_resize": 9, "upscaler_1": "R-ESRGAN 4x+"})
        self.assertEqual(st, 422)
        self.assertEqual(json.loads(body)["detail"][0]["loc"], ["body", "upscaling_resize"])
        st, _, body = srv.request("POST", "/sdapi/v1/extra-single-image", {
            "image": "bm90IGEgcG5n", "upscaler_1": "R-ESRGAN 4x+"})
        self.assertEqual(st, 500)
        self.assertIn("Invalid encoded image", body.decode())

    def test_img2img_with_mask_changes_only_the_masked_pixels(self):
        srv = self.srv
        init = make_png(64, 64, lambda x, y: (x * 4, y * 4, 60))
        mask = make_png(64, 64, mask_pixel)
        d = srv.json("POST", "/sdapi/v1/img2img", txt2img_body(
            init_images=[base64.b64encode(init).decode()], mask=base64.b64encode(mask).decode(),
            inpainting_fill=1, denoising_strength=0.5))
        w, h, rows, texts = decode_png(base64.b64decode(d["images"][0]))
        self.assertEqual((w, h), (64, 64))
        self.assertIn("Denoising strength: 0.5", texts["parameters"])
        changed = 0
        for y in range(64):
            for x in range(64):
                if mask_pixel(x, y)[0]:
                    changed += rgb_at(rows, x, y, 4) != (x * 4, y * 4, 60)
                else:
                    self.assertEqual(rgb_at(rows, x, y, 4), (x * 4, y * 4, 60))
        self.assertGreater(changed, 16 * 24 // 2)
        # another seed paints the masked area otherwise
        d2 = srv.json("POST", "/sdapi/v1/img2img", txt2img_body(
            init_images=[base64.b64encode(init).decode()], mask=base64.b64encode(mask).decode(),
            seed=43))
        self.assertNotEqual(d2["images"][0], d["images"][0])

    def test_img2img_and_png_info(self):
        srv = self.srv
        init = base64.b64encode(b"init").decode()
        d = srv.json("POST", "/sdapi/v1/img2img", txt2img_body(init_images=[init],
                                                                denoising_strength=0.4))
        self.assertIsNone(d["parameters"]["init_images"])
        self.assertIn("Denoising strength: 0.4", json.loads(d["info"])["infotexts"][0])
        st, _, body = srv.request("POST", "/sdapi/v1/img2img", txt2img_body())
        self.assertEqual((st, json.loads(body)["detail"]), (404, "Init image not found"))
        pi = srv.json("POST", "/sdapi/v1/png-info", {"image": d["images"][0]})
        self.assertEqual(pi["info"], json.loads(d["info"])["infotexts"][0])
        self.assertEqual(pi["parameters"]["Seed"], "42")
        self.assertEqual(pi["parameters"]["Prompt"], "pixel art owl, dusk background")

    def test_unicode_prompt_uses_itxt(self):
        d, info = self.gen(prompt="hibou ✨ 猫頭鷹")
        texts = decode_png(base64.b64decode(d["images"][0]))[3]
        self.assertEqual(texts["parameters"], info["infotexts"][0])

    def test_one_job_at_a_time_and_progress_and_interrupt(self):
        srv = self.srv
        srv.config(latency_ms=150)
        results, errs = [], []

        def worker(i):
            try:
                s = Server.__new__(Server)
                s.port, s.conn = srv.port, None
                t = time.time()
                s.json("POST", "/sdapi/v1/txt2img", txt2img_body(seed=i))
                results.append(time.time() - t)
                s.stop_conn()
            except Exception as e:                     # pragma: no cover
                errs.append(e)

        t0 = time.time()
        ths = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        for t in ths:
            t.start()
        prog = wait_for(lambda: (lambda p: p if p["state"]["job_count"] == 1 else None)(
            srv.json("GET", "/sdapi/v1/progress?skip_current_image=true")), what="a running job")
        for t in ths:
            t.join()
        total = time.time() - t0
        self.assertFalse(errs)
        self.assertGreaterEqual(total, 0.58)            # 4 x 150 ms, serialised
        self.assertEqual(prog["state"]["job_count"], 1)
        self.assertGreater(prog["progress"], 0)
        s = srv.stats()
        self.assertEqual(s["gpu_max_concurrent"], 1)
        self.assertGreaterEqual(s["max_concurrent_jobs"], 2)
        self.assertGreaterEqual(s["max_concurrent"], 2)
        self.assertGreaterEqual(s["max_queue_depth"], 2)
        self.assertEqual(s["jobs_done"], 4)
        idle = srv.json("GET", "/sdapi/v1/progress")
        self.assertEqual((idle["progress"], idle["state"]["job_count"]), (0.0, 0))
        # interrupt cuts the running job short and still returns an image
        srv.config(latency_ms=5000)
        out = {}

        def long_job():
            s = Server.__new__(Server)
            s.port, s.conn = srv.port, None
            out["d"] = s.json("POST", "/sdapi/v1/txt2img", txt2img_body())
            s.stop_conn()

        t = threading.Thread(target=long_job)
        t0 = time.time()
        t.start()
        wait_for(lambda: srv.json("GET", "/sdapi/v1/progress")["state"]["job_count"] == 1,
                 what="the long job to start")
        self.assertEqual(srv.json("POST", "/sdapi/v1/interrupt"), {})
        t.join()
        self.assertLess(time.time() - t0, 4.0)
        self.assertEqual(len(out["d"]["images"]), 1)
        self.assertEqual(srv.stats()["jobs_interrupted"], 1)
        srv.config(latency_ms=0)


class TestAuth(unittest.TestCase):
    def test_basic_auth(self):
        srv = Server("--protocol", "a1111", "--auth", "kiln:s3cret")
        try:
            st, h, body = srv.request("GET", "/sdapi/v1/sd-models")
            self.assertEqual(st, 401)
            self.assertEqual(h["www-authenticate"], "Basic")
            self.assertEqual(json.loads(body), {"detail": "Not authenticated"})
            bad = "Basic " + base64.b64encode(b"kiln:wrong").decode()
            st, _, body = srv.request("GET", "/sdapi/v1/sd-models", headers={"Authorization": bad})
            self.assertEqual((st, json.loads(body)["detail"]),
                             (401, "Incorrect username or password"))
            good = "Basic " + base64.b64encode(b"kiln:s3cret").decode()
            st, _, _ = srv.request("POST", "/sdapi/v1/txt2img", txt2img_body(),
                                   headers={"Authorization": good})
            self.assertEqual(st, 200)
            recs = srv.json("GET", "/__test__/requests")   # /__test__ needs no auth
            self.assertEqual([r["status"] for r in recs], [401, 401, 200])
            self.assertEqual(recs[-1]["headers"]["authorization"], good)
            self.assertEqual(srv.stats()["auth_failures"], 2)
        finally:
            srv.stop()

    def test_bearer_token(self):
        srv = Server("--protocol", "all", "--token", "T0KEN")
        try:
            self.assertEqual(srv.request("GET", "/system_stats")[0], 401)
            self.assertEqual(srv.request("GET", "/sdcpp/v1/capabilities")[0], 401)
            self.assertEqual(srv.request("GET", "/system_stats",
                                         headers={"Authorization": "Bearer nope"})[0], 401)
            self.assertEqual(srv.request("GET", "/system_stats",
                                         headers={"Authorization": "Bearer T0KEN"})[0], 200)
        finally:
            srv.stop()


# ---------------------------------------------------------------------------------------------
# ComfyUI
# ---------------------------------------------------------------------------------------------

class TestComfyUI(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--protocol", "comfyui")

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def setUp(self):
        self.srv.reset()
        self.srv.config(latency_ms=0)

    def submit(self, graph, expect=200, **kw):
        body = {"prompt": graph, "client_id": "kiln-test"}
        body.update(kw)
        return self.srv.json("POST", "/prompt", body, expect=expect)

    def test_prompt_history_view(self):
        srv = self.srv
        pid = str(uuid.uuid4())
        r = self.submit(comfy_graph(lora="crown_v2.safetensors", batch=2), prompt_id=pid)
        self.assertEqual(set(r), {"prompt_id", "number", "node_errors"})
        self.assertEqual((r["prompt_id"], r["node_errors"]), (pid, {}))
        h = wait_history(srv, pid)
        self.assertEqual(set(h), {"prompt", "outputs", "status", "meta"})
        self.assertEqual(h["prompt"][1], pid)
        self.assertEqual(h["prompt"][3], {"client_id": "kiln-test"})
        self.assertEqual(h["prompt"][4], ["9"])
        self.assertEqual(h["status"]["status_str"], "success")
        self.assertTrue(h["status"]["completed"])
        self.assertEqual([m[0] for m in h["status"]["messages"]],
                         ["execution_start", "execution_cached", "execution_success"])
        imgs = h["outputs"]["9"]["images"]
        self.assertEqual(imgs, [{"filename": "owl_00001_.png", "subfolder": "kiln", "type": "output"},
                                {"filename": "owl_00002_.png", "subfolder": "kiln", "type": "output"}])
        st, hd, png = srv.request("GET", "/view?filename=owl_00001_.png&subfolder=kiln&type=output")
        self.assertEqual((st, hd["content-type"]), (200, "image/png"))
        w, hh, rows, texts = decode_png(png)
        self.assertEqual((w, hh), (64, 64))
        self.assertFalse(pixel_summary(rows)["uniform"])
        self.assertEqual(json.loads(texts["prompt"])["3"]["inputs"]["seed"], 7)
        png2 = srv.request("GET", "/view?filename=owl_00002_.png&subfolder=kiln&type=output")[2]
        self.assertNotEqual(png, png2)
        job = srv.json("GET", "/__test__/jobs")[-1]
        self.assertEqual(job["outputs"][0]["params"]["loras"], [["crown_v2", 0.8]])
        self.assertEqual(job["outputs"][0]["sha256"], hashlib.sha256(png).hexdigest())
        # the same graph again is fully cached: same files, no new render
        pid2 = self.submit(comfy_graph(lora="crown_v2.safetensors", batch=2))["prompt_id"]
        h2 = wait_history(srv, pid2)
        self.assertEqual(h2["outputs"], h["outputs"])
        self.assertEqual(sorted(h2["status"]["messages"][1][1]["nodes"]),
                         sorted(["3", "4", "5", "6", "7", "8", "9", "10"]))
        # a new seed renders a new file with the next counter
        pid3 = self.submit(comfy_graph(seed=8))["prompt_id"]
        self.assertEqual(wait_history(srv, pid3)["outputs"]["9"]["images"][0]["filename"],
                         "owl_00003_.png")
        # history listing and /api prefix
        self.assertEqual(list(srv.json("GET", "/history?max_items=2")), [pid2, pid3])
        self.assertIn(pid, srv.json("GET", "/api/history"))
        self.assertEqual(srv.request("GET", "/view?filename=nope.png")[0], 404)
        self.assertEqual(srv.request("GET", "/view?filename=../x.png")[0], 400)
        self.assertEqual(srv.request("GET", "/view?filename=a.png&subfolder=../..")[0], 403)
        self.assertEqual(srv.json("GET", "/history/unknown-id"), {})
        srv.request("POST", "/history", {"delete": [pid]})
        self.assertEqual(srv.json("GET", "/history/" + pid), {})
        srv.request("POST", "/history", {"clear": True})
        self.assertEqual(srv.json("GET", "/history"), {})

    def test_same_prompt_id_twice_is_queued_twice(self):
        pid = "kiln-item-1-cand-0"
        a = self.submit(comfy_graph(), prompt_id=pid)
        wait_history(self.srv, pid)
        b = self.submit(comfy_graph(seed=99), prompt_id=pid)
        self.assertEqual(b["prompt_id"], pid)
        self.assertEqual(b["number"], a["number"] + 1)
        t = time.time()
        while self.srv.stats()["comfy_executions"].get(pid, 0) < 2 and time.time() - t < 10:
            time.sleep(0.02)
        h = self.srv.json("GET", "/history/" + pid)[pid]
        self.assertEqual(h["prompt"][2]["3"]["inputs"]["seed"], 99)    # the later run wins
        self.assertEqual(self.srv.stats()["comfy_executions"][pid], 2)

    def test_validation_errors(self):
        g = comfy_graph()
        del g["4"]["class_type"]
        e = self.submit(g, expect=400)
        self.assertEqual(e["error"]["type"], "missing_node_type")
        self.assertEqual(e["error"]["details"], "Node ID '#4'")
        self.assertEqual(e["node_errors"], {})

        g = comfy_graph()
        g["4"]["class_type"] = "CheckpointLoaderFancy"
        e = self.submit(g, expect=400)
        self.assertEqual(e["error"]["message"],
                         "Node 'CheckpointLoaderFancy' not found. The custom node may not be installed.")

        g = comfy_graph()
        del g["9"]
        e = self.submit(g, expect=400)
        self.assertEqual(e["error"], {"type": "prompt_no_outputs", "message": "Prompt has no outputs",
                                      "details": "", "extra_info": {}})

        g = comfy_graph(ckpt="nope.safetensors")
        e = self.submit(g, expect=400)
        self.assertEqual(e["error"]["type"], "prompt_outputs_failed_validation")
        ne = e["node_errors"]["4"]
        self.assertEqual(ne["class_type"], "CheckpointLoaderSimple")
        self.assertEqual(ne["dependent_outputs"], ["9"])
        self.assertEqual(ne["errors"][0]["type"], "value_not_in_list")
        self.assertEqual(ne["errors"][0]["extra_info"]["input_name"], "ckpt_name")

        g = comfy_graph()
        g["3"]["inputs"]["model"] = ["42", 0]               # link to a missing node
        e = self.submit(g, expect=400)
        self.assertEqual(e["node_errors"]["3"]["errors"][0]["type"],
                         "exception_during_inner_validation")

        g = comfy_graph()
        g["3"]["inputs"]["positive"] = ["4", 0]             # MODEL into CONDITIONING
        e = self.submit(g, expect=400)
        self.assertEqual(e["node_errors"]["3"]["errors"][0]["type"], "return_type_mismatch")

        g = comfy_graph()
        g["3"]["inputs"]["steps"] = 0
        g["5"]["inputs"]["width"] = 8
        del g["3"]["inputs"]["cfg"]
        e = self.submit(g, expect=400)
        types = sorted(x["type"] for n in e["node_errors"].values() for x in n["errors"])
        self.assertEqual(types, ["required_input_missing", "value_smaller_than_min",
                                 "value_smaller_than_min"])

        g = comfy_graph()
        g["3"]["inputs"]["seed"] = "abc"
        e = self.submit(g, expect=400)
        self.assertEqual(e["node_errors"]["3"]["errors"][0]["type"], "invalid_input_type")

        e = self.srv.json("POST", "/prompt", {"client_id": "x"}, expect=400)
        self.assertEqual(e["error"]["type"], "no_prompt")
        st, _, _ = self.srv.request("POST", "/prompt", b"{bad", headers={"Content-Type": "application/json"})
        self.assertEqual(st, 500)
        self.assertEqual(self.srv.stats()["jobs_done"], 0)

    def upload(self, name, data):
        body, ctype = multipart({"overwrite": "true"}, {"image": (name, data)})
        return self.srv.json("POST", "/upload/image", body, headers={"Content-Type": ctype})

    def view_saved(self, pid):
        h = wait_history(self.srv, pid)
        self.assertEqual(h["status"]["status_str"], "success", h["status"])
        im = [o["images"][0] for o in h["outputs"].values()][0]
        return decode_png(self.srv.request("GET", "/view?filename=%s&subfolder=%s&type=%s" % (
            im["filename"], im["subfolder"], im["type"]))[2])

    def test_upscale_model_nodes(self):
        srv = self.srv
        info = srv.json("GET", "/object_info")
        self.assertIn("RealESRGAN_x4plus.pth",
                      info["UpscaleModelLoader"]["input"]["required"]["model_name"][0])
        for n in ("ImageUpscaleWithModel", "ImageScaleBy", "LoadImageMask", "VAEEncodeForInpaint"):
            self.assertIn(n, info)
        self.upload("in.png", make_png(16, 8, lambda x, y: (x * 15, y * 30, 100)))
        g = {"1": {"class_type": "LoadImage", "inputs": {"image": "in.png"}},
             "2": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": "RealESRGAN_x4plus.pth"}},
             "3": {"class_type": "ImageUpscaleWithModel", "inputs": {"upscale_model": ["2", 0], "image": ["1", 0]}},
             "4": {"class_type": "ImageScaleBy", "inputs": {"image": ["3", 0], "upscale_method": "lanczos", "scale_by": 0.5}},
             "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "up"}}}
        w, h, rows, _ = self.view_saved(self.submit(g)["prompt_id"])
        self.assertEqual((w, h), (32, 16))
        for y in range(h):
            for x in range(w):
                self.assertEqual(rgb_at(rows, x, y, 4), ((x // 2) * 15, (y // 2) * 30, 100))
        g["2"]["inputs"]["model_name"] = "nope.pth"
        err = self.submit(g, expect=400)["node_errors"]["2"]["errors"][0]
        self.assertEqual(err["type"], "value_not_in_list")
        g["2"]["inputs"]["model_name"] = "RealESRGAN_x4plus.pth"
        g["4"]["inputs"]["scale_by"] = 9
        err = self.submit(g, expect=400)["node_errors"]["4"]["errors"][0]
        self.assertEqual(err["type"], "value_bigger_than_max")

    def test_inpaint_nodes_change_only_the_masked_pixels(self):
        self.upload("init.png", make_png(64, 64, lambda x, y: (x * 4, y * 4, 60)))
        self.upload("mask.png", make_png(64, 64, mask_pixel))
        g = comfy_graph()
        del g["5"]
        g["20"] = {"class_type": "LoadImage", "inputs": {"image": "init.png"}}
        g["21"] = {"class_type": "LoadImageMask", "inputs": {"image": "mask.png", "channel": "red"}}
        g["22"] = {"class_type": "VAEEncodeForInpaint", "inputs": {
            "pixels": ["20", 0], "vae": ["4", 2], "mask": ["21", 0], "grow_mask_by": 6}}
        g["3"]["inputs"]["latent_image"] = ["22", 0]
        g["3"]["inputs"]["denoise"] = 0.6
        w, h, rows, _ = self.view_saved(self.submit(g)["prompt_id"])
        self.assertEqual((w, h), (64, 64))
        changed = 0
        for y in range(64):
            for x in range(64):
                if mask_pixel(x, y)[0]:
                    changed += rgb_at(rows, x, y, 4) != (x * 4, y * 4, 60)
                else:
                    self.assertEqual(rgb_at(rows, x, y, 4), (x * 4, y * 4, 60))
        self.assertGreater(changed, 16 * 24 // 2)
        g["21"]["inputs"]["channel"] = "purple"
        err = self.submit(g, expect=400)["node_errors"]["21"]["errors"][0]
        self.assertEqual(err["type"], "value_not_in_list")

    def test_upload_loadimage_controlnet(self):
        srv = self.srv
        ctl_png = srv.request("POST", "/__test__/render", {"seed": 1, "width": 16, "height": 16})[2]
        body, ctype = multipart({"overwrite": "true", "type": "input"},
                                {"image": ("pose.png", ctl_png)})
        r = srv.json("POST", "/upload/image", body, headers={"Content-Type": ctype})
        self.assertEqual(r, {"name": "pose.png", "subfolder": "", "type": "input"})
        # same name, other content, no overwrite: renamed; same content: deduplicated
        body2, ctype2 = multipart({}, {"image": ("pose.png", ctl_png + b"x")})
        self.assertEqual(srv.json("POST", "/upload/image", body2,
                                  headers={"Content-Type": ctype2})["name"], "pose (1).png")
        body3, ctype3 = multipart({}, {"image": ("pose.png", ctl_png)})
        self.assertEqual(srv.json("POST", "/upload/image", body3,
                                  headers={"Content-Type": ctype3})["name"], "pose.png")
        body4, ctype4 = multipart({"subfolder": "ctl"}, {"image": ("a.png", ctl_png)})
        self.assertEqual(srv.json("POST", "/upload/image", body4, headers={"Content-Type": ctype4}),
                         {"name": "a.png", "subfolder": "ctl", "type": "input"})
        self.assertEqual(srv.request("GET", "/view?filename=pose.png&type=input")[2], ctl_png)
        self.assertEqual(srv.request("POST", "/upload/image", b"", headers={
            "Content-Type": "multipart/form-data; boundary=x"})[0], 400)
        # a form sent under another type (a client's JSON header left on) is no form to aiohttp
        self.assertEqual(srv.request("POST", "/upload/image", body, headers={
            "Content-Type": ctype.replace("multipart/form-data", "application/json")})[0], 400)
        st, _, _ = srv.request("POST", "/prompt", json.dumps({"prompt": {}}).encode(),
                               headers={"Content-Type": "multipart/form-data; boundary=x"})
        self.assertEqual(st, 400)
        rec = srv.json("GET", "/__test__/requests?path=/upload/image")[0]
        self.assertEqual(rec["form"]["image"]["filename"], "pose.png")
        self.assertEqual(rec["form"]["overwrite"], "true")

        g = comfy_graph()
        g["11"] = {"class_type": "LoadImage", "inputs": {"image": "pose.png"}}
        g["12"] = {"class_type": "ControlNetLoader",
                   "inputs": {"control_net_name": "control_v11p_sd15_canny.pth"}}
        g["13"] = {"class_type": "ControlNetApplyAdvanced", "inputs": {
            "positive": ["6", 0], "negative": ["7", 0], "control_net": ["12", 0],
            "image": ["11", 0], "strength": 0.9, "start_percent": 0.0, "end_percent": 1.0}}
        g["3"]["inputs"]["positive"] = ["13", 0]
        g["3"]["inputs"]["negative"] = ["13", 1]
        pid = self.submit(g)["prompt_id"]
        h = wait_history(srv, pid)
        self.assertEqual(h["status"]["status_str"], "success")
        job = srv.json("GET", "/__test__/jobs")[-1]["outputs"][0]["params"]
        self.assertEqual(job["extra"]["controlnet"][0][0], "control_v11p_sd15_canny.pth")
        g["11"]["inputs"]["image"] = "ctl/a.png"
        wait_history(srv, self.submit(g)["prompt_id"])
        g["11"]["inputs"]["image"] = "missing.png"
        e = self.submit(g, expect=400)
        err = e["node_errors"]["11"]["errors"][0]
        self.assertEqual(err["type"], "custom_validation_failed")
        self.assertEqual(err["details"], "image - Invalid image file: missing.png")

    def test_queue_interrupt_and_listings(self):
        srv = self.srv
        srv.config(latency_ms=1500)
        p1 = self.submit(comfy_graph(seed=1))["prompt_id"]
        wait_for(lambda: srv.json("GET", "/queue")["queue_running"], what="p1 to run")
        p2 = self.submit(comfy_graph(seed=2))["prompt_id"]
        p3 = self.submit(comfy_graph(seed=3))["prompt_id"]
        q = srv.json("GET", "/queue")
        self.assertEqual([x[1] for x in q["queue_running"]], [p1])
        self.assertEqual([x[1] for x in q["queue_pending"]], [p2, p3])
        self.assertEqual(srv.json("GET", "/prompt"), {"exec_info": {"queue_remaining": 3}})
        srv.request("POST", "/queue", {"delete": [p3]})
        self.assertEqual([x[1] for x in srv.json("GET", "/queue")["queue_pending"]], [p2])
        srv.request("POST", "/interrupt", {})
        h1 = wait_history(srv, p1)
        self.assertEqual(h1["status"]["status_str"], "error")
        self.assertFalse(h1["status"]["completed"])
        self.assertEqual(h1["status"]["messages"][-1][0], "execution_interrupted")
        self.assertEqual(h1["outputs"], {})
        h2 = wait_history(srv, p2)
        self.assertEqual(h2["status"]["status_str"], "success")
        self.assertEqual(srv.json("GET", "/history/" + p3), {})
        self.assertEqual(srv.stats()["gpu_max_concurrent"], 1)
        srv.config(latency_ms=0)
        ss = srv.json("GET", "/system_stats")
        self.assertIn("comfyui_version", ss["system"])
        self.assertEqual(ss["devices"][0]["type"], "cuda")
        oi = srv.json("GET", "/object_info/CheckpointLoaderSimple")
        self.assertEqual(oi["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0],
                         ["sd_xl_base_1.0.safetensors", "v1-5-pruned-emaonly.safetensors"])
        self.assertEqual(len(srv.json("GET", "/object_info")), 14)
        self.assertIn("crown_v2.safetensors", srv.json("GET", "/models/loras"))
        self.assertEqual(srv.request("GET", "/models/nope")[0], 404)
        self.assertEqual(srv.request("GET", "/nope")[2], b"404: Not Found")

    def test_front_and_priority(self):
        srv = self.srv
        srv.config(latency_ms=600)
        a = self.submit(comfy_graph(seed=1))["prompt_id"]
        wait_for(lambda: srv.json("GET", "/queue")["queue_running"], what="a to run")
        b = self.submit(comfy_graph(seed=2))["prompt_id"]
        c = self.submit(comfy_graph(seed=3), front=True)
        self.assertLess(c["number"], 0)
        self.assertEqual([x[1] for x in srv.json("GET", "/queue")["queue_pending"]],
                         [c["prompt_id"], b])
        for p in (a, b, c["prompt_id"]):
            wait_history(srv, p)
        srv.config(latency_ms=0)

    def test_execution_errors(self):
        g = comfy_graph(w=8192)                  # valid (<= 16384), but "out of memory"
        pid = self.submit(g)["prompt_id"]
        h = wait_history(self.srv, pid)
        self.assertEqual(h["status"]["status_str"], "error")
        err = h["status"]["messages"][-1]
        self.assertEqual(err[0], "execution_error")
        self.assertEqual(err[1]["node_type"], "EmptyLatentImage")
        self.assertEqual(self.srv.stats()["jobs_failed"], 1)


class TestComfyUILenient(unittest.TestCase):
    """ComfyUI runs a graph with inputs its node classes do not declare: they are ignored
    (execution.py get_input_data, validate_inputs); SDXL encoders and ConditioningCombine."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--protocol", "comfyui")

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def test_sdxl_undeclared_text_ignored(self):
        srv = self.srv
        srv.reset()
        g = comfy_graph(text="", neg="blurry")
        # what kiln used to send: "text" on a CLIPTextEncodeSDXL and on ConditioningCombine
        g["6"] = {"class_type": "CLIPTextEncodeSDXL", "inputs": {
            "clip": ["4", 1], "width": 1024, "height": 1024, "crop_w": 0, "crop_h": 0,
            "target_width": 1024, "target_height": 1024, "text_g": "workflow g",
            "text_l": "workflow l", "text": "pixel art owl"}}
        g["11"] = {"class_type": "CLIPTextEncode", "inputs": {"text": "style", "clip": ["4", 1]}}
        g["12"] = {"class_type": "ConditioningCombine", "inputs": {
            "conditioning_1": ["6", 0], "conditioning_2": ["11", 0], "text": "ignored"}}
        g["3"]["inputs"]["positive"] = ["12", 0]
        pid = str(uuid.uuid4())
        r = srv.json("POST", "/prompt", {"prompt": g, "prompt_id": pid})
        self.assertEqual(r["node_errors"], {})
        h = wait_history(srv, pid)
        self.assertEqual(h["status"]["status_str"], "success")
        job = srv.json("GET", "/__test__/jobs")[-1]
        self.assertEqual(job["outputs"][0]["params"]["prompt"],
                         "workflow g | workflow l AND style")
        info = srv.json("GET", "/object_info")
        self.assertNotIn("text", info["CLIPTextEncodeSDXL"]["input"]["required"])
        self.assertIn("ControlNetApply", info)


# ---------------------------------------------------------------------------------------------
# stable-diffusion.cpp
# ---------------------------------------------------------------------------------------------

class TestSdCpp(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--protocol", "sdcpp", "--max-pending-jobs", "3")

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def setUp(self):
        self.srv.reset()
        self.srv.config(latency_ms=0, max_pending_jobs=3, job_ttl_s=600)

    def img_gen(self, expect=202, **kw):
        b = {"prompt": "pixel art owl", "negative_prompt": "blurry", "seed": 11, "width": 64,
             "height": 64, "sample_params": {"sample_method": "euler", "sample_steps": 20,
                                             "guidance": {"txt_cfg": 7.0}}}
        b.update(kw)
        return self.srv.json("POST", "/sdcpp/v1/img_gen", b, expect=expect)

    def test_async_job(self):
        r = self.img_gen(lora=[{"path": "crown_v2.safetensors", "multiplier": 0.6}], batch_count=2)
        self.assertEqual(set(r), {"id", "kind", "status", "created", "poll_url"})
        self.assertRegex(r["id"], r"^job_[0-9a-f]+_[0-9a-f]{8}$")
        self.assertEqual((r["kind"], r["status"]), ("img_gen", "queued"))
        self.assertEqual(r["poll_url"], "/sdcpp/v1/jobs/" + r["id"])
        j = wait_job(self.srv, r["id"])
        self.assertEqual(j["status"], "completed")
        self.assertEqual(list(j), ["id", "kind", "status", "created", "started", "completed",
                                   "queue_position", "result", "error"])
        self.assertIsNone(j["error"])
        self.assertEqual(j["result"]["output_format"], "png")
        ims = j["result"]["images"]
        self.assertEqual([i["index"] for i in ims], [0, 1])
        w, h, rows, texts = decode_png(base64.b64decode(ims[0]["b64_json"]))
        self.assertEqual((w, h), (64, 64))
        self.assertEqual(texts["parameters"],
                         "pixel art owl\nNegative prompt: blurry\nSteps: 20, CFG scale: 7.000000, "
                         "Guidance: 3.500000, Eta: 0.000000, Seed: 11, Size: 64x64, "
                         "Model: sd_xl_base_1.0.safetensors, RNG: cuda, Sampler: euler, "
                         "Version: stable-diffusion.cpp")
        self.assertIn("Seed: 12,", decode_png(base64.b64decode(ims[1]["b64_json"]))[3]["parameters"])
        job = self.srv.json("GET", "/__test__/jobs")[-1]
        self.assertEqual(job["outputs"][0]["params"]["loras"], [["crown_v2", 0.6]])

    def test_errors_and_cancel(self):
        srv = self.srv
        self.assertEqual(self.img_gen(expect=400, lora=[{"path": "nope", "multiplier": 1}]),
                         {"error": "invalid generation parameters"})
        # sd-server matches the path under --lora-model-dir with its extension
        self.assertEqual(self.img_gen(expect=400, lora=[{"path": "crown_v2", "multiplier": 1}]),
                         {"error": "invalid generation parameters"})
        # a JSON body under another Content-Type is refused
        st, _, _ = srv.request("POST", "/sdcpp/v1/img_gen", json.dumps({"prompt": "x"}).encode(),
                               headers={"Content-Type": "text/plain"})
        self.assertEqual(st, 400)
        st, _, _ = srv.request("POST", "/sdapi/v1/txt2img", json.dumps(txt2img_body()).encode(),
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(st, 400)  # sd-server's /sdapi subset (A1111's own: 422)
        self.assertEqual(self.img_gen(expect=400, width="wide"),
                         {"error": "invalid generation parameters"})
        st, _, body = srv.request("POST", "/sdcpp/v1/img_gen", b"")
        self.assertEqual((st, json.loads(body)), (400, {"error": "empty body"}))
        st, _, body = srv.request("POST", "/sdcpp/v1/img_gen", b"{x",
                                  headers={"Content-Type": "application/json"})
        self.assertEqual((st, json.loads(body)["error"]), (400, "invalid json"))
        self.assertEqual(srv.request("GET", "/sdcpp/v1/jobs/job_nope")[0], 404)
        self.assertEqual(json.loads(srv.request("GET", "/sdcpp/v1/jobs/job_nope")[2]),
                         {"error": "job not found"})
        # a size the model cannot do fails in the job, not at submission
        j = wait_job(srv, self.img_gen(width=100)["id"])
        self.assertEqual(j["status"], "failed")
        self.assertEqual(j["error"]["code"], "generation_failed")
        self.assertIsNone(j["result"])
        # queue limit, queue_position, cancel
        srv.config(latency_ms=300)
        srv.config(latency_ms=800)
        ids = [self.img_gen(seed=i)["id"] for i in range(3)]
        self.assertEqual(self.img_gen(expect=429, seed=9), {"error": "job queue is full"})
        wait_for(lambda: srv.json("GET", "/sdcpp/v1/jobs/" + ids[0])["status"] == "generating",
                 what="the first job to start")
        jobs = [srv.json("GET", "/sdcpp/v1/jobs/" + i) for i in ids]
        self.assertEqual([x["status"] for x in jobs], ["generating", "queued", "queued"])
        self.assertEqual([x["queue_position"] for x in jobs], [0, 1, 2])
        c = srv.json("POST", "/sdcpp/v1/jobs/%s/cancel" % ids[2])
        self.assertEqual(c["status"], "cancelled")
        self.assertEqual(c["error"], {"code": "cancelled", "message": "job cancelled by client"})
        st, _, body = srv.request("POST", "/sdcpp/v1/jobs/%s/cancel" % ids[0])
        self.assertEqual(st, 409)
        self.assertEqual(wait_job(srv, ids[1])["status"], "completed")
        srv.config(latency_ms=0)
        # expiry: 410 Gone
        j = wait_job(srv, self.img_gen(seed=50)["id"])
        srv.config(job_ttl_s=0)
        st, _, body = srv.request("GET", "/sdcpp/v1/jobs/" + j["id"])
        self.assertEqual((st, json.loads(body)), (410, {"error": "job expired"}))

    def test_sdapi_subset(self):
        srv = self.srv
        d = srv.json("POST", "/sdapi/v1/txt2img", {
            "prompt": "owl <lora:crown_v2:1>", "seed": 5, "width": 64, "height": 64,
            "steps": 10, "cfg_scale": 6, "sampler_name": "Euler a", "batch_size": 2,
            "lora": [{"path": "laser_eyes.safetensors", "multiplier": 0.5}],
            "override_settings": {"sd_model_checkpoint": "ignored"}})
        info = json.loads(d["info"])
        self.assertEqual(info["all_seeds"], [5, 6])
        self.assertEqual(info["sampler_name"], "euler_a")
        self.assertEqual(info["version"], "stable-diffusion.cpp")
        self.assertEqual(d["parameters"]["lora"][0]["path"], "laser_eyes.safetensors")
        self.assertEqual(len(d["images"]), 2)
        job = srv.json("GET", "/__test__/jobs")[-1]["outputs"][0]["params"]
        self.assertEqual(job["loras"], [["laser_eyes", 0.5]])        # prompt tags not parsed
        self.assertIn("<lora:crown_v2:1>", job["prompt"])
        self.assertEqual(srv.json("POST", "/sdapi/v1/txt2img", {"prompt": "x", "lora": [
            {"path": "nope"}]}, expect=400), {"error": "invalid lora path: nope"})
        self.assertEqual(srv.json("POST", "/sdapi/v1/txt2img", {"prompt": ""}, expect=400),
                         {"error": "prompt required"})
        self.assertEqual(srv.json("POST", "/sdapi/v1/txt2img", {"prompt": "x", "width": 0},
                                  expect=400), {"error": "width and height must be positive"})
        d = srv.json("POST", "/sdapi/v1/txt2img", {"prompt": "x", "seed": -1})
        self.assertGreaterEqual(json.loads(d["info"])["seed"], 0)
        self.assertEqual(srv.json("GET", "/sdapi/v1/sd-models")[0]["hash"], "8888888888")
        self.assertEqual(srv.json("GET", "/sdapi/v1/options")["sd_model_checkpoint"],
                         "sd_xl_base_1.0")
        self.assertIn({"name": "crown_v2", "path": "crown_v2.safetensors"},
                      srv.json("GET", "/sdapi/v1/loras"))
        self.assertEqual(srv.json("GET", "/sdapi/v1/samplers")[0]["name"], "default")
        self.assertEqual(srv.json("GET", "/sdapi/v1/schedulers")[1]["label"], "discrete")
        cap = srv.json("GET", "/sdcpp/v1/capabilities")
        self.assertEqual(cap["limits"]["max_queue_size"], 3)
        self.assertEqual(cap["supported_modes"], ["img_gen"])
        self.assertEqual(srv.request("GET", "/sdapi/v1/progress")[0], 404)


# ---------------------------------------------------------------------------------------------
# faults
# ---------------------------------------------------------------------------------------------

class TestFaults(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--protocol", "all")

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def setUp(self):
        self.srv.reset()
        self.srv.config(latency_ms=0, fail_rate=0, hang_rate=0, drop_rate=0, truncate_rate=0,
                        black_rate=0, lose_rate=0, exec_fail_rate=0, fail_first=0, seed=0,
                        fault_scope="all", request_latency_ms=0)

    def tearDown(self):
        self.setUp()

    def test_fail_first(self):
        srv = self.srv
        srv.config(fail_first=2)
        codes = [srv.request("POST", "/sdapi/v1/txt2img", txt2img_body())[0] for _ in range(3)]
        self.assertEqual(codes, [500, 500, 200])
        self.assertEqual(srv.stats()["faults"]["fail_first"], 2)
        st, _, body = srv.request("GET", "/__test__/stats")        # never faulted
        self.assertEqual(st, 200)
        srv.config(fail_first=1)
        st, _, body = srv.request("GET", "/system_stats")
        self.assertEqual((st, body), (500, b"500 Internal Server Error\n\nServer got itself in trouble"))
        srv.config(fail_first=1)
        st, _, body = srv.request("POST", "/sdcpp/v1/img_gen", {"prompt": "x"})
        self.assertEqual((st, json.loads(body)["error"]), (500, "server_error"))

    def test_fault_scope_jobs(self):
        srv = self.srv
        srv.config(fail_rate=1.0, fault_scope="jobs")
        self.assertEqual(srv.request("GET", "/sdapi/v1/sd-models")[0], 200)
        self.assertEqual(srv.request("POST", "/sdapi/v1/txt2img", txt2img_body())[0], 500)

    def test_fail_rate_is_deterministic(self):
        srv = self.srv

        def pattern(seed):
            srv.reset()
            srv.config(fail_rate=0.5, seed=seed)
            return [srv.request("POST", "/sdapi/v1/txt2img", txt2img_body(seed=i))[0]
                    for i in range(24)]

        a, b, c = pattern(3), pattern(3), pattern(4)
        self.assertEqual(a, b)
        self.assertNotEqual(a, c)
        self.assertIn(500, a)
        self.assertIn(200, a)
        # a retry of the same request is a new draw (occurrence counted)
        srv.reset()
        srv.config(fail_rate=0.5, seed=3)
        first = [srv.request("POST", "/sdapi/v1/txt2img", txt2img_body(seed=0))[0]
                 for _ in range(12)]
        self.assertEqual(len(set(first)), 2)
        self.assertEqual(srv.stats()["faults"]["fail"], first.count(500))

    def test_hang(self):
        srv = self.srv
        srv.config(hang_rate=1.0)
        t = time.time()
        st, buf, err = raw_request(srv.port, "POST", "/sdapi/v1/txt2img",
                                   json.dumps(txt2img_body()).encode(), timeout=0.6)
        self.assertEqual((st, buf, err), (None, b"", "timeout"))
        self.assertGreaterEqual(time.time() - t, 0.5)
        srv.config(hang_rate=0)
        s = srv.stats()
        self.assertEqual(s["faults"]["hang"], 1)
        self.assertEqual(s["jobs_done"], 0)
        t = time.time()
        while srv.stats()["in_flight"] and time.time() - t < 3:     # the hung handler notices
            time.sleep(0.05)
        self.assertEqual(srv.stats()["in_flight"], 0)

    def test_drop(self):
        srv = self.srv
        srv.config(drop_rate=1.0)
        with self.assertRaises((http.client.IncompleteRead, http.client.RemoteDisconnected,
                                ConnectionResetError)):
            srv.request("POST", "/sdapi/v1/txt2img", txt2img_body(), fresh=True)
        if srv.conn is not None:
            srv.conn.close()
        srv.conn = None
        st, buf, err = raw_request(srv.port, "POST", "/sdapi/v1/txt2img",
                                   json.dumps(txt2img_body()).encode(),
                                   {"Content-Type": "application/json"})
        self.assertEqual(st, 200)
        head, _, body = buf.partition(b"\r\n\r\n")
        clen = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0]
                   .split(b":")[1])
        self.assertLess(len(body), clen)
        # the work was done before the connection dropped
        self.assertEqual(srv.stats()["jobs_done"], 2)
        # comfy: the prompt is queued although the client never saw the answer
        srv.config(drop_rate=1.0)
        pid = "dropped-1"
        raw_request(srv.port, "POST", "/prompt", json.dumps({"prompt": comfy_graph(),
                                                             "prompt_id": pid}).encode(),
                    {"Content-Type": "application/json"})
        srv.config(drop_rate=0)
        self.assertEqual(wait_history(srv, pid)["status"]["status_str"], "success")

    def test_truncate_and_black(self):
        srv = self.srv
        srv.config(truncate_rate=1.0)
        d = srv.json("POST", "/sdapi/v1/txt2img", txt2img_body())
        png = base64.b64decode(d["images"][0])
        self.assertEqual(png[:8], b"\x89PNG\r\n\x1a\n")
        with self.assertRaises((PNGError, zlib.error)):
            decode_png(png)
        pid = srv.json("POST", "/prompt", {"prompt": comfy_graph()})["prompt_id"]
        im = wait_history(srv, pid)["outputs"]["9"]["images"][0]
        png = srv.request("GET", "/view?filename=%s&subfolder=%s" % (im["filename"], im["subfolder"]))[2]
        with self.assertRaises((PNGError, zlib.error)):
            decode_png(png)
        srv.config(truncate_rate=0, black_rate=1.0)
        d = srv.json("POST", "/sdapi/v1/txt2img", txt2img_body())
        w, h, rows, texts = decode_png(base64.b64decode(d["images"][0]))
        self.assertEqual(pixel_summary(rows)["max"], 0)
        self.assertIn("parameters", texts)
        j = wait_job(srv, srv.json("POST", "/sdcpp/v1/img_gen", {"prompt": "x", "width": 64,
                                                                 "height": 64}, expect=202)["id"])
        self.assertEqual(pixel_summary(decode_png(base64.b64decode(
            j["result"]["images"][0]["b64_json"]))[2])["max"], 0)
        f = srv.stats()["faults"]
        self.assertEqual((f["truncate"], f["black"]), (2, 2))

    def test_lose(self):
        srv = self.srv
        srv.config(lose_rate=1.0, latency_ms=0)
        r = srv.json("POST", "/prompt", {"prompt": comfy_graph(), "prompt_id": "lost-1"})
        self.assertEqual(r["prompt_id"], "lost-1")
        jid = srv.json("POST", "/sdcpp/v1/img_gen", {"prompt": "x"}, expect=202)["id"]
        time.sleep(0.3)
        self.assertEqual(srv.json("GET", "/history/lost-1"), {})
        q = srv.json("GET", "/queue")
        self.assertEqual((q["queue_running"], q["queue_pending"]), ([], []))
        self.assertEqual(srv.request("GET", "/sdcpp/v1/jobs/" + jid)[0], 404)
        self.assertEqual(srv.stats()["jobs_lost"], 2)
        # A1111 has no job to lose: the request simply succeeds
        self.assertEqual(srv.request("POST", "/sdapi/v1/txt2img", txt2img_body())[0], 200)

    def test_exec_fail(self):
        srv = self.srv
        srv.config(exec_fail_rate=1.0)
        st, _, body = srv.request("POST", "/sdapi/v1/txt2img", txt2img_body())
        self.assertEqual((st, json.loads(body)["error"]), (500, "OutOfMemoryError"))
        pid = srv.json("POST", "/prompt", {"prompt": comfy_graph()})["prompt_id"]
        h = wait_history(srv, pid)
        self.assertEqual(h["status"]["status_str"], "error")
        self.assertEqual(h["status"]["messages"][-1][1]["node_type"], "KSampler")
        j = wait_job(srv, srv.json("POST", "/sdcpp/v1/img_gen", {"prompt": "x"}, expect=202)["id"])
        self.assertEqual(j["status"], "failed")
        self.assertEqual(srv.stats()["faults"]["exec_fail"], 3)

    def test_latency(self):
        srv = self.srv
        srv.config(latency_ms=200, request_latency_ms=50)
        t = time.time()
        srv.request("POST", "/sdapi/v1/txt2img", txt2img_body())
        self.assertGreaterEqual(time.time() - t, 0.25)
        t = time.time()
        srv.request("GET", "/sdapi/v1/sd-models")
        self.assertGreaterEqual(time.time() - t, 0.05)

    def test_command_line_faults(self):
        srv = Server("--protocol", "a1111", "--fail-first", "1", "--latency-ms", "50",
                     "--fault-seed", "9", "--black-rate", "1")
        try:
            c = srv.json("GET", "/__test__/config")
            self.assertEqual((c["fail_first"], c["latency_ms"], c["seed"], c["black_rate"]),
                             (1, 50.0, 9, 1.0))
            self.assertEqual(srv.request("GET", "/sdapi/v1/options")[0], 500)
            d = srv.json("POST", "/sdapi/v1/txt2img", txt2img_body())
            self.assertEqual(pixel_summary(decode_png(base64.b64decode(d["images"][0]))[2])["max"], 0)
        finally:
            srv.stop()


# ---------------------------------------------------------------------------------------------
# throughput: the server must not be the bottleneck
# ---------------------------------------------------------------------------------------------

class TestManyJobs(unittest.TestCase):
    """Many 512x512 jobs on all three protocols at once: all done, one at a time.
    Timing is measured by bench_sd_test_server.py, not asserted here."""

    def test_many_jobs(self):
        srv = Server("--protocol", "all", "--latency-ms", "5")
        try:
            c2 = Server.__new__(Server)
            c2.port, c2.conn = srv.port, None
            ids, jids = [], []
            for i in range(15):
                ids.append(srv.json("POST", "/prompt", {"prompt": comfy_graph(
                    seed=i, w=512, h=512)})["prompt_id"])
                jids.append(srv.json("POST", "/sdcpp/v1/img_gen", {
                    "prompt": "owl", "seed": i, "width": 512, "height": 512}, expect=202)["id"])
                c2.json("POST", "/sdapi/v1/txt2img", txt2img_body(seed=i, width=512, height=512))
            for pid in ids:
                wait_history(srv, pid, timeout=60)
            for jid in jids:
                self.assertEqual(wait_job(srv, jid, timeout=60)["status"], "completed")
            c2.stop_conn()
            s = srv.stats()
            self.assertEqual(s["jobs_done"], 45)
            self.assertEqual(s["gpu_max_concurrent"], 1)
            shas = [o["sha256"] for j in srv.json("GET", "/__test__/jobs") for o in j["outputs"]]
            self.assertEqual(len(set(shas)), 45)
        finally:
            srv.stop()



class TestSdCppLenient(unittest.TestCase):
    """What the real sd-server accepts and does silently (examples/common/common.cpp,
    examples/server/runtime.cpp, media_io.cpp), and what it refuses."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--protocol", "sdcpp", "--no-controlnet", "--loras",
                         "crown_v2.safetensors,old_style.ckpt,styles/halo.bin,styles/eyes.pt")

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def gen(self, expect=202, **kw):
        b = {"prompt": "owl", "seed": 3, "width": 64, "height": 64,
             "sample_params": {"sample_method": "euler", "sample_steps": 20}}
        b.update(kw)
        return self.srv.json("POST", "/sdcpp/v1/img_gen", b, expect=expect)

    def params(self, r):
        j = wait_job(self.srv, r["id"])
        self.assertEqual(j["status"], "completed")
        return decode_png(base64.b64decode(j["result"]["images"][0]["b64_json"]))[3]["parameters"]

    def test_lenient(self):
        srv = self.srv
        srv.reset()
        # steps over 100: clamped, no error
        self.assertIn("Steps: 100,", self.params(self.gen(sample_params={"sample_steps": 120})))
        # a sampler or scheduler it does not know: its default, no error
        t = self.params(self.gen(sample_params={"sample_method": "DPM++ 2M", "scheduler": "x"}))
        self.assertIn("Sampler: euler_a,", t)
        t = self.params(self.gen(sample_params={"sample_method": "lms", "scheduler": "beta"}))
        self.assertIn("Sampler: lms beta,", t)
        # only .safetensors/.pt/.pth/.gguf LoRAs are listed and found
        caps = srv.json("GET", "/sdcpp/v1/capabilities")
        self.assertEqual([l["path"] for l in caps["loras"]],
                         ["crown_v2.safetensors", "styles/eyes.pt"])
        self.assertEqual(caps["loras"][1]["name"], "eyes")
        for path in ("old_style.ckpt", "styles/halo.bin"):
            self.assertEqual(self.gen(expect=400, lora=[{"path": path}]),
                             {"error": "invalid generation parameters"})
        self.gen(lora=[{"path": "styles/eyes.pt", "multiplier": 0.5}])
        # a grey control image: 400; an RGB one is ignored without --control-net
        grey = base64.b64encode(png_bytes(1, 1, [b"\x00\x80"], colour=0)).decode()
        self.assertEqual(self.gen(expect=400, control_image=grey),
                         {"error": "invalid generation parameters"})
        rgb = base64.b64encode(png_bytes(1, 1, [b"\x00\x10\x20\x30"], colour=2)).decode()
        wait_job(srv, self.gen(control_image=rgb)["id"])
        job = srv.json("GET", "/__test__/jobs")[-1]
        self.assertIsNone(job["outputs"][0]["params"]["extra"]["control"])


def png_bytes(w, h, rows, colour):
    """A PNG of raw filtered rows (each starting with its filter byte)."""
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b""))

if __name__ == "__main__":
    unittest.main()
