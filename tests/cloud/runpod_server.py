#!/usr/bin/python3
"""runpod_server: a stand-in for RunPod serverless endpoints, for kiln's tests and bench.

The queue API as RunPod serves it at https://api.runpod.ai/v2/{endpoint_id} (docs.runpod.io
"Send requests" / "Job states"; the runpod-python SDK's runpod/endpoint/runner.py; the npm
runpod-sdk's src/index.ts, which tests/cloud/sdk_check.mjs runs against this server):

  POST /v2/{id}/run      {input, policy?: {executionTimeout, ttl, lowPriority}, webhook?}
                         -> 200 {id, status: IN_QUEUE}; 429 past the rate limit (Retry-After)
  GET  /v2/{id}/status/{job}
                         -> {id, status} IN_QUEUE; {id, status, delayTime, workerId}
                         IN_PROGRESS; {id, status, delayTime, executionTime, output, workerId}
                         COMPLETED; {.., error} FAILED; CANCELLED; TIMED_OUT. 404 for a job it
                         does not know, or whose result expired (30 minutes after the end)
  POST /v2/{id}/cancel/{job}  -> {id, status: CANCELLED}
  GET  /v2/{id}/health   -> {jobs: {completed, failed, inProgress, inQueue, retried},
                             workers: {idle, initializing, ready, running, throttled,
                             unhealthy}}
  POST /v2/{id}/purge-queue -> {removed, status: completed}
  every route: Authorization: Bearer KEY, else 401

Workers (--worker) answer as the official worker images do:
  comfyui  runpod-workers/worker-comfyui handler.py: input {workflow, images?: [{name, image}]}
           -> output {images: [{filename, type: base64, data}]} (--s3: type s3_url, data a URL
           this server serves; --old-output: the pre-2025-05 {status: success, message}); a
           missing workflow or a bad images list is a FAILED job with the handler's message
  a1111    runpod-workers/worker-a1111 src/handler.py: input is the txt2img body, output
           A1111's answer {images: [base64], parameters, info: JSON text}
  trainer  kiln's own training contract (docs/training.md "Running"; RunPod publishes no official
           kohya serverless worker, and no community one was copied): input {kiln: train,
           name, workdir, script, args, output, and the dataset: dataset_tar, base64 of a
           tar of .kiln/train/NAME/ as NAME/, or dataset_url (fetched, an S3 presigned URL)
           with dataset_sha256 (checked)}; the worker unpacks it in a scratch folder and
           runs tests/train/kohya_standin.py SCRIPT ARGS in its workdir; while it runs,
           /status carries output {progress: the last kohya progress line}; output {lora:
           base64 of OUTPUT, log}, or with config lora_url {lora_url: a URL this server
           serves (/__s3__/lora-JOB.safetensors), lora_sha256, log} (lora_sha256_wrong: a
           wrong hash). A job without a dataset, or whose trainer fails, is FAILED with the
           log's last line

Images are the SD test server's deterministic pictures (tests/sdserver/sd_test_server.py,
imported), drawn from the parameters a job asked for.

Faults and timing: --job-seconds, --jitter, --workers N (jobs in progress at once; the rest
wait IN_QUEUE), --cold-start S (a worker's first job waits S more), --queue-delay S (every job
waits S more in the queue: a slow queue), --fail-rate, --lose-rate (the job vanishes: its
status becomes 404), --timeout-rate (TIMED_OUT), --rate-limit N (/run requests per second,
then 429 with Retry-After: 1), --run-delay S (the /run answer comes S late, the job queued
at once), --status-fail-rate (a /status answers 502), --expire S (results kept S seconds after the end, default
1800), --max-body (bytes; 10 MB as RunPod), config status_delay S (every /status answers S late). All settable at runtime: POST /__test__/config
{...}. GET /__test__/stats and /__test__/jobs report what happened; /__test__/runs is the
list of accepted /run submissions.

Only the Python 3 standard library is used.
"""

import argparse
import base64
import io
import subprocess
import tarfile
import tempfile
import hashlib
import http.server
import json
import os
import random
import re
import socketserver
import sys
import threading
import time
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "sdserver"))
import sd_test_server as sd  # noqa: E402  (the deterministic pictures)

FINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT")


class Job:
    def __init__(self, jid, endpoint, body, now):
        self.id = jid
        self.endpoint = endpoint
        self.body = body
        self.status = "IN_QUEUE"
        self.submitted = now
        self.started = None
        self.ended = None
        self.worker = None
        self.output = None
        self.error = None
        self.execution_ms = None
        self.delay_ms = None
        self.polls = 0
        self.lost = False
        self.fate = None
        self.progress = None


class State:
    def __init__(self, a):
        self.cfg = {
            "api_key": a.api_key, "worker": a.worker, "job_seconds": a.job_seconds,
            "jitter": a.jitter, "workers": a.workers, "cold_start": a.cold_start,
            "queue_delay": a.queue_delay, "fail_rate": a.fail_rate, "lose_rate": a.lose_rate,
            "timeout_rate": a.timeout_rate, "rate_limit": a.rate_limit, "expire": a.expire,
            "max_body": a.max_body, "s3": a.s3, "old_output": a.old_output,
            "status_fail_rate": a.status_fail_rate, "run_delay": a.run_delay,
            "lora_url": False, "lora_sha256_wrong": False, "status_delay": 0.0,
        }
        self.rng = random.Random(a.seed)
        self.lock = threading.Condition()
        self.jobs = {}
        self.queue = []
        self.busy = 0
        self.warm = 0            # workers that have run a job (no cold start any more)
        self.runs = []           # accepted /run bodies' job ids, in order
        self.counts = {"run": 0, "run_429": 0, "run_refused": 0, "status": 0, "status_404": 0,
                       "status_5xx": 0, "cancel": 0, "health": 0, "unauthorized": 0,
                       "s3_get": 0}
        self.window = []         # /run arrival times (rate limit)
        self.s3 = {}
        self.port = 0
        self.threads = 0

    def conf(self, k):
        return self.cfg[k]


def comfy_params(inp):
    """What a ComfyUI graph asks for, as the SD test server keys its pictures."""
    wf = inp.get("workflow")
    if not isinstance(wf, dict):
        raise ValueError("Missing 'workflow' parameter")
    images = inp.get("images")
    if images is not None and (not isinstance(images, list) or not all(
            isinstance(i, dict) and "name" in i and "image" in i for i in images)):
        raise ValueError("'images' must be a list of objects with 'name' and 'image' keys")
    names = {i["name"] for i in images or []}
    ks = [n for n in wf.values() if isinstance(n, dict) and n.get("class_type") == "KSampler"]
    lat = [n for n in wf.values() if isinstance(n, dict) and
           n.get("class_type") == "EmptyLatentImage"]
    if not ks or not lat:
        raise ValueError("Workflow validation failed: no KSampler or EmptyLatentImage")
    for n in wf.values():   # a LoadImage must name an uploaded image (or ComfyUI's input dir)
        if isinstance(n, dict) and n.get("class_type") == "LoadImage":
            if n["inputs"].get("image") not in names:
                raise ValueError("Workflow validation failed: LoadImage: Invalid image file: %s"
                                 % n["inputs"].get("image"))
    texts = sorted(n["inputs"].get("text", "") for n in wf.values() if isinstance(n, dict) and
                   n.get("class_type") == "CLIPTextEncode")
    k = ks[0]["inputs"]
    return {"prompt": " | ".join(texts), "seed": k.get("seed"), "steps": k.get("steps"),
            "cfg": k.get("cfg"), "sampler": k.get("sampler_name"),
            "width": lat[0]["inputs"]["width"], "height": lat[0]["inputs"]["height"]}


LORA = re.compile(r"<lora:([^:>]+):([^>]+)>")


def a1111_output(inp):
    """A1111's txt2img answer for the body, with what kiln verifies in info."""
    w, h = int(inp.get("width", 512)), int(inp.get("height", 512))
    seed = int(inp.get("seed", -1))
    if seed < 0:
        seed = 1234
    params = {"prompt": inp.get("prompt", ""), "negative": inp.get("negative_prompt", ""),
              "seed": seed, "steps": inp.get("steps"), "cfg": inp.get("cfg_scale"),
              "sampler": inp.get("sampler_name"), "width": w, "height": h}
    ck = (inp.get("override_settings") or {}).get("sd_model_checkpoint") or "model.safetensors"
    model = os.path.splitext(os.path.basename(ck.split(" [")[0]))[0]
    egp = {}
    loras = LORA.findall(inp.get("prompt", ""))
    if loras:
        egp["Lora hashes"] = ", ".join("%s: %s" % (n.replace(":", "").replace(",", ""),
                                                   hashlib.sha256(n.encode()).hexdigest()[:12])
                                       for n, _ in loras)
    units = ((inp.get("alwayson_scripts") or {}).get("controlnet") or {}).get("args") or []
    for i, u in enumerate(units):
        egp["ControlNet %d" % i] = "Module: %s, Model: %s, Weight: %s" % (
            u.get("module"), u.get("model"), u.get("weight"))
    png = sd.render_png(params)
    infotext = "%s\nNegative prompt: %s\nSteps: %s, Sampler: %s, CFG scale: %s, Seed: %d, " \
               "Size: %dx%d, Model: %s" % (inp.get("prompt", ""), inp.get("negative_prompt", ""),
                                           inp.get("steps"), inp.get("sampler_name"),
                                           inp.get("cfg_scale"), seed, w, h, model)
    info = {"prompt": inp.get("prompt", ""), "all_prompts": [inp.get("prompt", "")],
            "seed": seed, "all_seeds": [seed], "width": w, "height": h,
            "sd_model_name": model, "extra_generation_params": egp,
            "infotexts": [infotext]}
    return {"images": [base64.b64encode(png).decode()], "parameters": inp,
            "info": json.dumps(info)}


STANDIN = os.path.join(HERE, "..", "train", "kohya_standin.py")


def trainer_output(st, job, inp):
    try:
        return train(st, job, inp)
    except ValueError:
        raise
    except Exception as ex:   # a bad archive, base64, a missing output: the handler's error
        raise ValueError("%s: %s" % (type(ex).__name__, ex))


def train(st, job, inp):
    """kiln's training contract: unpack, run the kohya stand-in, return the LoRA and the log."""
    if inp.get("kiln") != "train" or not (isinstance(inp.get("dataset_tar"), str) or
                                          isinstance(inp.get("dataset_url"), str)):
        raise ValueError("not a kiln training job: input needs kiln: train and dataset_tar "
                         "or dataset_url")
    if isinstance(inp.get("dataset_url"), str):
        with urllib.request.urlopen(inp["dataset_url"], timeout=30) as r:
            tar = r.read()
        if hashlib.sha256(tar).hexdigest() != inp.get("dataset_sha256"):
            raise ValueError("the dataset at dataset_url does not have dataset_sha256")
    else:
        tar = base64.b64decode(inp["dataset_tar"])
    args, out, wd = inp.get("args"), inp.get("output"), inp.get("workdir") or "."
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args) or \
            not all(isinstance(x, str) and not x.startswith("/") and ".." not in x.split("/")
                    for x in (out, wd)):
        raise ValueError("args must be a list of strings, output and workdir relative paths")
    with tempfile.TemporaryDirectory(prefix="rp-train-") as work:
        with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
            for m in tf.getmembers():
                if m.name.startswith("/") or ".." in m.name.split("/") or \
                        not (m.isfile() or m.isdir()):
                    raise ValueError("unsafe archive member %s" % m.name)
            tf.extractall(work)
        logf = os.path.join(work, "trainer.log")
        cwd = os.path.join(work, wd)
        with open(logf, "wb") as lf:
            p = subprocess.Popen([sys.executable, STANDIN, inp.get("script") or
                                  "train_network.py"] + args, cwd=cwd, stdout=lf,
                                 stderr=subprocess.STDOUT)
            while p.poll() is None:
                time.sleep(0.05)
                with open(logf, "rb") as rf:
                    tail = rf.read()[-400:].decode("utf-8", "replace")
                line = [x for x in tail.replace("\r", "\n").split("\n") if x.strip()]
                with st.lock:
                    if line and job.status == "IN_PROGRESS":
                        job.progress = line[-1]
                    if job.status == "CANCELLED":
                        p.kill()
        log = open(logf, "rb").read().decode("utf-8", "replace")
        if p.returncode:
            raise ValueError("trainer exited %d: %s" % (p.returncode,
                                                        log.strip().split("\n")[-1]))
        data = open(os.path.join(cwd, out), "rb").read()
    if st.conf("lora_url"):
        sha = hashlib.sha256(data).hexdigest()
        if st.conf("lora_sha256_wrong"):
            sha = hashlib.sha256(data + b"x").hexdigest()
        with st.lock:
            st.s3["lora-" + job.id] = data
        return {"lora_url": "http://127.0.0.1:%d/__s3__/lora-%s.safetensors" % (st.port, job.id),
                "lora_sha256": sha, "log": log}
    return {"lora": base64.b64encode(data).decode(), "log": log}


def run_job(st, job):
    """The worker's handler: the output (or raises ValueError for the handler's error)."""
    body = job.body
    inp = body.get("input")
    if inp is None:
        raise ValueError("Please provide input")
    if st.conf("worker") == "trainer":
        return trainer_output(st, job, inp)
    if st.conf("worker") == "a1111":
        return a1111_output(inp)
    params = comfy_params(inp)
    png = sd.render_png(params)
    name = "ComfyUI_%05d_.png" % (len(st.runs) % 100000)
    if st.conf("s3"):
        st.s3[job.id] = png
        return {"images": [{"filename": name, "type": "s3_url",
                            "data": "http://127.0.0.1:%d/__s3__/%s.png" % (st.port, job.id)}]}
    data = base64.b64encode(png).decode()
    if st.conf("old_output"):
        return {"status": "success", "message": data}
    return {"images": [{"filename": name, "type": "base64", "data": data}]}


def worker_loop(st, wid):
    while True:
        with st.lock:
            while True:
                if wid >= st.conf("workers"):    # fewer workers now: this one idles
                    st.lock.wait()
                    continue
                now = time.time()
                qd = st.conf("queue_delay")
                job = next((j for j in st.queue if j.submitted + qd <= now), None)
                if job and st.busy < st.conf("workers"):
                    break
                # the next queued job's time (a slow queue), else until something changes
                st.lock.wait(max(0.001, min(j.submitted + qd for j in st.queue) - now)
                             if st.queue and qd else None)
            st.queue.remove(job)
            st.busy += 1
            cold = st.conf("cold_start") if st.warm < st.conf("workers") else 0
            st.warm += 1
        if cold:
            time.sleep(cold)
        with st.lock:
            if job.status != "IN_QUEUE":   # cancelled while the worker started
                st.busy -= 1
                st.lock.notify_all()
                continue
            job.status = "IN_PROGRESS"
            job.started = time.time()
            job.worker = "wk-%s" % uuid.uuid5(uuid.NAMESPACE_DNS, str(wid)).hex[:14]
            job.delay_ms = int((job.started - job.submitted) * 1000)
            r = st.rng.random()
            fr, lr, tr = st.conf("fail_rate"), st.conf("lose_rate"), st.conf("timeout_rate")
            job.fate = "fail" if r < fr else "lose" if r < fr + lr else \
                "timeout" if r < fr + lr + tr else "ok"
            secs = st.conf("job_seconds") * (1 + st.conf("jitter") * (2 * st.rng.random() - 1))
        limit = ((job.body.get("policy") or {}).get("executionTimeout") or 600000) / 1000.0
        t0 = time.time()
        out, err = None, None
        try:
            if job.fate == "ok":
                out = run_job(st, job)
            elif job.fate == "fail":
                err = "handler: CUDA error: an illegal memory access was encountered"
        except ValueError as ex:
            err = str(ex)
        left = secs - (time.time() - t0)
        if job.fate == "timeout" or secs > limit:
            time.sleep(min(max(0, limit - (time.time() - t0)), 30))
        elif left > 0:
            time.sleep(left)
        with st.lock:
            st.busy -= 1
            st.lock.notify_all()
            if job.status != "IN_PROGRESS":
                continue
            job.ended = time.time()
            job.execution_ms = int((job.ended - job.started) * 1000)
            if job.fate == "lose":
                job.lost = True
                job.status = "FAILED"
            elif job.fate == "timeout" or secs > limit:
                job.status = "TIMED_OUT"
            elif err is not None:
                job.status = "FAILED"
                job.error = err
            else:
                job.status = "COMPLETED"
                job.output = out


def start_workers(st):
    """A thread per worker (more when --workers grows at runtime)."""
    while st.threads < st.conf("workers"):
        threading.Thread(target=worker_loop, args=(st, st.threads), daemon=True).start()
        st.threads += 1


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    st = None

    def log_message(self, *a):
        pass

    def reply(self, code, obj, headers=()):
        data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json" if not isinstance(obj, bytes)
                         else "image/png")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def authorized(self):
        key = self.st.conf("api_key")
        if not key or self.headers.get("Authorization") == "Bearer " + key:
            return True
        with self.st.lock:
            self.st.counts["unauthorized"] += 1
        self.reply(401, {"error": "Unauthorized"})
        return False

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def route(self, method):
        st = self.st
        path = self.path.split("?")[0]
        raw = self.body() if method == "POST" else b""
        if path.startswith("/__test__/"):
            return self.test_route(method, path, raw)
        if path.startswith("/__s3__/") and method == "GET":
            jid = path[8:].rsplit(".", 1)[0]
            with st.lock:
                st.counts["s3_get"] += 1
                png = st.s3.get(jid)
            return self.reply(200, png) if png else self.reply(404, {"error": "NoSuchKey"})
        m = re.fullmatch(r"/v2/([A-Za-z0-9_-]+)/(run|runsync|health|purge-queue|"
                         r"status|cancel)(?:/([A-Za-z0-9_-]+))?", path)
        if not m:
            return self.reply(404, {"error": "not found"})
        if not self.authorized():
            return
        endpoint, verb, jid = m.groups()
        if verb == "run" and method == "POST":
            return self.run(endpoint, raw)
        if verb == "status" and method == "GET" and jid:
            return self.status(jid)
        if verb == "cancel" and method == "POST" and jid:
            return self.cancel(jid)
        if verb == "health" and method == "GET":
            return self.health()
        if verb == "purge-queue" and method == "POST":
            with st.lock:
                n = len(st.queue)
                for j in st.queue:
                    j.status = "CANCELLED"
                st.queue = []
            return self.reply(200, {"removed": n, "status": "completed"})
        return self.reply(405, {"error": "method not allowed"})

    def run(self, endpoint, raw):
        st = self.st
        now = time.time()
        with st.lock:
            rl = st.conf("rate_limit")
            st.window = [t for t in st.window if t > now - 1]
            if rl and len(st.window) >= rl:
                st.counts["run_429"] += 1
                return self.reply(429, {"error": "Too many requests"}, [("Retry-After", "1")])
            st.window.append(now)
        if len(raw) > st.conf("max_body"):
            with st.lock:
                st.counts["run_refused"] += 1
            return self.reply(413, {"error": "request body too large: %d bytes, the most is %d"
                                    % (len(raw), st.conf("max_body"))})
        try:
            body = json.loads(raw)
            if not isinstance(body, dict) or "input" not in body:
                raise ValueError("no input")
            pol = body.get("policy") or {}
            # RunPod's bounds (docs.runpod.io serverless/endpoints/send-requests, "Execution
            # policies"; runpod/docs PR 525 cites ai-api pkg/job/job.go's validation):
            # executionTimeout at least 5 s, ttl at least 10 s, both at most 7 days, in ms
            for k, lo in (("executionTimeout", 5000), ("ttl", 10000)):
                if k in pol and (not isinstance(pol[k], int) or isinstance(pol[k], bool) or
                                 not lo <= pol[k] <= 7 * 86400 * 1000):
                    raise ValueError("policy.%s must be an integer of ms in %d..%d"
                                     % (k, lo, 7 * 86400 * 1000))
        except ValueError as ex:
            with st.lock:
                st.counts["run_refused"] += 1
            return self.reply(400, {"error": "invalid request: %s" % ex})
        jid = "%s-u1" % uuid.uuid4()
        job = Job(jid, endpoint, body, now)
        with st.lock:
            st.counts["run"] += 1
            st.jobs[jid] = job
            st.queue.append(job)
            st.runs.append(jid)
            st.lock.notify_all()
        if st.conf("run_delay"):   # the job is queued; its answer is late (kill -9 here)
            time.sleep(st.conf("run_delay"))
        self.reply(200, {"id": jid, "status": "IN_QUEUE"})

    def status(self, jid):
        st = self.st
        if st.conf("status_delay"):     # a /status that hangs (kiln's timeouts and Ctrl-C)
            time.sleep(st.conf("status_delay"))
        now = time.time()
        with st.lock:
            st.counts["status"] += 1
            job = st.jobs.get(jid)
            if job:
                job.polls += 1
            if job and st.conf("status_fail_rate") and st.rng.random() < \
                    st.conf("status_fail_rate"):
                st.counts["status_5xx"] += 1
                return self.reply(502, {"error": "bad gateway"})
            ttl = (job.body.get("policy") or {}).get("ttl") if job else None
            gone = job is None or job.lost or \
                (job.ended is not None and now - job.ended > st.conf("expire")) or \
                (ttl and now - job.submitted > ttl / 1000.0)   # the ttl covers queue and run
            if gone:
                st.counts["status_404"] += 1
                return self.reply(404, {"error": "request does not exist"})
            r = {"id": jid, "status": job.status}
            if job.delay_ms is not None:
                r["delayTime"] = job.delay_ms
            if job.worker:
                r["workerId"] = job.worker
            if job.status in FINAL and job.execution_ms is not None:
                r["executionTime"] = job.execution_ms
            if job.status == "IN_PROGRESS" and job.progress:
                r["output"] = {"progress": job.progress}
            if job.status == "COMPLETED":
                r["output"] = job.output
            if job.status == "FAILED":
                r["error"] = job.error or "job failed"
        self.reply(200, r)

    def cancel(self, jid):
        st = self.st
        with st.lock:
            st.counts["cancel"] += 1
            job = st.jobs.get(jid)
            if not job or job.lost:
                return self.reply(404, {"error": "request does not exist"})
            if job.status in ("IN_QUEUE", "IN_PROGRESS"):
                if job in st.queue:
                    st.queue.remove(job)
                if job.status == "IN_PROGRESS":
                    job.execution_ms = int((time.time() - job.started) * 1000)
                job.status = "CANCELLED"
                job.ended = time.time()
            r = {"id": jid, "status": job.status}
            if job.delay_ms is not None:
                r["delayTime"] = job.delay_ms
            if job.execution_ms is not None:
                r["executionTime"] = job.execution_ms
        self.reply(200, r)

    def health(self):
        st = self.st
        with st.lock:
            st.counts["health"] += 1
            n = {s: 0 for s in ("COMPLETED", "FAILED", "IN_PROGRESS", "IN_QUEUE")}
            for j in st.jobs.values():
                if j.status in n:
                    n[j.status] += 1
            w = st.conf("workers")
            self.reply(200, {"jobs": {"completed": n["COMPLETED"], "failed": n["FAILED"],
                                      "inProgress": n["IN_PROGRESS"], "inQueue": n["IN_QUEUE"],
                                      "retried": 0},
                             "workers": {"idle": max(0, w - st.busy), "initializing": 0,
                                         "ready": max(0, w - st.busy), "running": st.busy,
                                         "throttled": 0, "unhealthy": 0}})

    def test_route(self, method, path, raw):
        st = self.st
        if path == "/__test__/config" and method == "POST":
            upd = json.loads(raw or b"{}")
            with st.lock:
                for k, v in upd.items():
                    if k not in st.cfg:
                        return self.reply(400, {"error": "unknown setting %s" % k})
                    st.cfg[k] = v
                start_workers(st)
                st.lock.notify_all()
            return self.reply(200, st.cfg)
        with st.lock:
            if path == "/__test__/stats":
                polls = [j.polls for j in st.jobs.values()]
                by = {}
                for j in st.jobs.values():
                    by[j.status] = by.get(j.status, 0) + 1
                return self.reply(200, dict(st.counts, jobs=len(st.jobs), by_status=by,
                                            polls_max=max(polls or [0]),
                                            execution_ms=sum(j.execution_ms or 0
                                                             for j in st.jobs.values())))
            if path == "/__test__/jobs":
                return self.reply(200, [{"id": j.id, "status": j.status,
                                         "executionTime": j.execution_ms,
                                         "delayTime": j.delay_ms, "polls": j.polls,
                                         "lost": j.lost, "endpoint": j.endpoint,
                                         "policy": j.body.get("policy")}
                                        for j in st.jobs.values()])
            if path == "/__test__/runs":
                return self.reply(200, [{"id": jid, "input": st.jobs[jid].body.get("input")}
                                        for jid in st.runs])
        return self.reply(404, {"error": "not found"})


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--api-key", default="test-key")
    ap.add_argument("--worker", choices=("comfyui", "a1111", "trainer"), default="a1111")
    ap.add_argument("--job-seconds", type=float, default=0.2)
    ap.add_argument("--jitter", type=float, default=0.0, help="job time +- this fraction")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cold-start", type=float, default=0.0)
    ap.add_argument("--queue-delay", type=float, default=0.0)
    ap.add_argument("--fail-rate", type=float, default=0.0)
    ap.add_argument("--lose-rate", type=float, default=0.0)
    ap.add_argument("--timeout-rate", type=float, default=0.0)
    ap.add_argument("--status-fail-rate", type=float, default=0.0)
    ap.add_argument("--rate-limit", type=int, default=0)
    ap.add_argument("--run-delay", type=float, default=0.0,
                    help="answer /run this late (the job is queued at once)")
    ap.add_argument("--expire", type=float, default=1800.0)
    ap.add_argument("--max-body", type=int, default=10 * 1000 * 1000)
    ap.add_argument("--s3", action="store_true")
    ap.add_argument("--old-output", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    st = State(a)
    Handler.st = st
    srv = Server(("127.0.0.1", a.port), Handler)
    st.port = srv.server_address[1]
    start_workers(st)
    print("LISTENING 127.0.0.1:%d" % st.port, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
