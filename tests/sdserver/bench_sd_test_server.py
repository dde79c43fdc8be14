#!/usr/bin/python3
"""Is sd_test_server ever the bottleneck?  Starts N servers (A1111, ComfyUI, sd.cpp in turn)
with a fixed GPU latency, drives each with J 512x512 jobs from one client thread per server,
and prints wall time against the latency floor (J x latency) plus each server's own CPU cost.
Prints ratios; asserts nothing (a benchmark, not a test).

    /usr/bin/python3 bench_sd_test_server.py [--servers 8] [--jobs 2000] [--latency-ms 100]
"""

import argparse
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_sd_test_server import Server, comfy_graph, txt2img_body  # noqa: E402


def drive(srv, proto, jobs, out):
    c = Server.__new__(Server)
    c.port, c.conn = srv.port, None
    t = time.time()
    if proto == "a1111":
        for i in range(jobs):
            c.json("POST", "/sdapi/v1/txt2img", txt2img_body(seed=i, width=512, height=512))
    elif proto == "comfyui":
        pending = []
        for i in range(jobs + 2):
            if i < jobs:
                pending.append(c.json("POST", "/prompt", {
                    "prompt": comfy_graph(seed=i, w=512, h=512)})["prompt_id"])
            while pending and (len(pending) >= 2 or i >= jobs):
                h = c.json("GET", "/history/" + pending[0])
                if not h:
                    time.sleep(0.01)
                    continue
                im = h[pending[0]]["outputs"]["9"]["images"][0]
                c.request("GET", "/view?filename=%s&subfolder=%s" % (im["filename"],
                                                                      im["subfolder"]))
                pending.pop(0)
    else:
        pending = []
        for i in range(jobs + 2):
            if i < jobs:
                pending.append(c.json("POST", "/sdcpp/v1/img_gen", {
                    "prompt": "owl", "seed": i, "width": 512, "height": 512}, expect=202)["id"])
            while pending and (len(pending) >= 2 or i >= jobs):
                if c.json("GET", "/sdcpp/v1/jobs/" + pending[0])["status"] == "completed":
                    pending.pop(0)
                else:
                    time.sleep(0.01)
    out.append((proto, time.time() - t))
    c.stop_conn()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--servers", type=int, default=8)
    ap.add_argument("--jobs", type=int, default=2000)
    ap.add_argument("--latency-ms", type=float, default=100)
    a = ap.parse_args()
    kinds = ["a1111", "comfyui", "sdcpp"]
    protos = [kinds[i % 3] for i in range(a.servers)]
    servers = [Server("--protocol", p, "--latency-ms", str(a.latency_ms)) for p in protos]
    out = []
    t0 = time.time()
    ths = [threading.Thread(target=drive, args=(s, p, a.jobs, out))
           for s, p in zip(servers, protos)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    wall = time.time() - t0
    floor = a.jobs * a.latency_ms / 1000.0
    print("%d servers x %d jobs x %g ms: floor %.1f s, wall %.1f s, ratio %.3f"
          % (a.servers, a.jobs, a.latency_ms, floor, wall, wall / floor))
    tick = os.sysconf("SC_CLK_TCK")
    for s, p in zip(servers, protos):
        f = open("/proc/%d/stat" % s.proc.pid).read().rsplit(")", 1)[1].split()
        cpu = (int(f[11]) + int(f[12])) / tick
        rss = [l for l in open("/proc/%d/status" % s.proc.pid)
               if l.startswith("VmRSS")][0].split()[1]
        st = s.stats()
        print("  %-8s jobs %d  server cpu %.2f ms/job  rss %s kB  gpu_max %d  connections %d"
              % (p, st["jobs_done"], cpu / max(1, st["jobs_done"]) * 1000, rss,
                 st["gpu_max_concurrent"], st["connections"]))
        s.stop()
    for p, d in sorted(out):
        print("  %-8s client wall %.2f s  ratio to floor %.3f" % (p, d, d / floor))


if __name__ == "__main__":
    main()
