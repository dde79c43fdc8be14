#!/usr/bin/python3
"""bench/dispatch/report.py: the figures of one bench/dispatch case (run.sh calls it).

Reads GNU time's line (wall, user, sys, max RSS of the kiln process), the catalog (every
attempt with its endpoint, start and end), each test server's request records and stats, and
the servers' CPU from /proc (they are still running). Prints wall against the ideal and where
each endpoint's wall time went, and appends a JSON summary line. Asserts nothing.
"""

import argparse
import json
import os
import sqlite3
import statistics
import urllib.request


def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.load(r)


def proc_cpu(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return float("nan")


def main():
    ap = argparse.ArgumentParser()
    for k in ("dir", "label", "proto", "load0", "load1", "summary"):
        ap.add_argument("--" + k, required=True)
    for k in ("servers", "jobs", "exit"):
        ap.add_argument("--" + k, type=int, required=True)
    for k in ("latency", "fault", "t0", "t1"):
        ap.add_argument("--" + k, type=float, required=True)
    a = ap.parse_args()
    wall, user, sysc, rss = map(float, open(os.path.join(a.dir, "time")).read().split()[-4:])
    lat = a.latency / 1000
    ideal = a.jobs * lat / a.servers
    db = sqlite3.connect(os.path.join(a.dir, ".kiln", "catalog.db"))
    rendered = db.execute("select count(*) from items where status = 'rendered'").fetchone()[0]
    attempts = db.execute("select count(*) from renders").fetchone()[0]
    rows = db.execute("select endpoint, status, started_at, finished_at from renders "
                      "where endpoint is not null order by endpoint, started_at").fetchall()
    per = {}
    for ep, status, s, f in rows:
        per.setdefault(ep, []).append((status, s, f))

    urls, pids = [], []
    for i in range(1, a.servers + 1):
        urls.append("http://" + open(os.path.join(a.dir, "s%d.out" % i)).read().split()[1])
        pids.append(int(open(os.path.join(a.dir, "s%d.pid" % i)).read()))
    server_cpu = sum(proc_cpu(p) for p in pids)
    job_path = {"a1111": "/sdapi/v1/txt2img", "comfyui": "/prompt",
                "sdcpp": "/sdcpp/v1/img_gen"}[a.proto]

    # Where each endpoint's wall time went. a1111 (synchronous): from the server's own records
    # of its job requests, which tile the endpoint's time exactly: start-up (kiln start ->
    # first request), each request's time in the server (the latency, and the server's own
    # time beyond it), the turnaround between one answer and the next request (kiln's work,
    # the network, the server reading the request), waits (retry backoff), the tail. Other
    # protocols (async, polled): kiln's view, each accepted attempt's time beyond the latency.
    acc = dict(startup=0.0, ok_n=0, ok_time=0.0, fail_n=0, fail_time=0.0, busy=0.0, busy_n=0,
               turn=[], idle=0.0, idle_n=0, tail=0.0, requests=0)
    sync = a.proto == "a1111"
    for url in urls:
        acc["requests"] += get(url + "/__test__/stats")["requests"]
        if os.environ.get("KILN_BENCH_KEEP"):  # every request, for a closer look
            with open(os.path.join(a.dir, "all-%s.json" % url.rsplit(":", 1)[1]), "w") as f:
                json.dump(get(url + "/__test__/requests?bodies=0"), f)
        att = per.get(url, [])
        for status, s, f in att:
            acc["ok_n" if status == "ok" else "fail_n"] += 1
            acc["ok_time" if status == "ok" else "fail_time"] += f - s
        if not sync:
            continue
        recs = [r for r in get(url + "/__test__/requests?bodies=0&path=" + job_path)
                if r["method"] == "POST"]
        recs.sort(key=lambda r: r["t_start"])
        if not recs:
            continue
        acc["startup"] += recs[0]["t_start"] - a.t0
        end = recs[0]["t_start"]
        for r in recs:
            gap = r["t_start"] - end
            if gap < 0.05:
                acc["turn"].append(gap)
            else:
                acc["idle"] += gap
                acc["idle_n"] += 1
            # a hung request has no end: kiln gave up on it at its timeout
            stop = r.get("t_end") or r["t_start"] + 2.0
            if r.get("status") == 200:
                acc["busy"] += stop - r["t_start"]
                acc["busy_n"] += 1
            else:
                acc["fail_time_srv"] = acc.get("fail_time_srv", 0.0) + stop - r["t_start"]
            end = max(end, stop)
        acc["tail"] += a.t1 - end
    n = a.servers
    print(f"\n== {a.label}: {a.jobs} jobs, {a.servers} {a.proto} servers, {a.latency:.0f} ms, "
          f"faults {a.fault:.0%}, kiln exit {a.exit}")
    print(f"   load before: {a.load0.split('load average:')[-1].strip()}   "
          f"after: {a.load1.split('load average:')[-1].strip()}   (2 cores)")
    print(f"   wall       {wall:8.2f} s    ideal {ideal:.2f} s    ratio {wall / ideal:.3f}"
          f"   (target <= 1.05)")
    print(f"   kiln CPU   {(user + sysc) * 1000 / a.jobs:8.3f} ms/job (user {user:.2f} s, "
          f"sys {sysc:.2f} s)   (target < 2)")
    print(f"   peak RSS   {rss / 1024:8.1f} MiB   (target < 100, flat in jobs)")
    print(f"   servers' CPU {server_cpu:6.2f} s = {server_cpu * 1000 / a.jobs:.2f} ms/job "
          f"(Python; {acc['requests'] / max(a.jobs, 1):.2f} HTTP requests/job)")
    print(f"   rendered   {rendered}/{a.jobs}   attempts {attempts} "
          f"({acc['fail_n']} failed)")
    line = "     {:<50} {:8.3f} s  {}"
    if sync and acc["busy_n"]:
        over = acc["busy"] / acc["busy_n"] - lat
        turn = acc["turn"]
        print("   where an endpoint's wall time went (mean over endpoints; server's clock):")
        print(line.format("start-up (kiln start -> first job request)", acc["startup"] / n, ""))
        print(line.format(f"GPU latency ({acc['busy_n']} answered jobs x {a.latency:.0f} ms)",
                          acc["busy_n"] * lat / n, "<- the ideal"))
        print(line.format("server time beyond the latency", over * acc["busy_n"] / n,
                          f"{over * 1000:.2f} ms/job"))
        if acc.get("fail_time_srv"):
            print(line.format("failed requests (500s; hangs until kiln's 2 s timeout)",
                              acc["fail_time_srv"] / n, ""))
        print(line.format("turnaround (answer written -> next request read)", sum(turn) / n,
                          f"{statistics.mean(turn) * 1000 if turn else 0:.2f} ms/job, "
                          f"median {statistics.median(turn) * 1000 if turn else 0:.2f}"))
        if acc["idle_n"]:
            print(line.format(f"idle > 50 ms (retry backoff; {acc['idle_n']} times)",
                              acc["idle"] / n, ""))
        print(line.format("tail (last answer -> kiln exit)", acc["tail"] / n, ""))
    elif acc["ok_n"]:
        over = acc["ok_time"] / acc["ok_n"] - lat
        print(line.format("kiln: accepted attempt's time beyond the latency",
                          over * acc["ok_n"] / n, f"{over * 1000:.2f} ms/job (server queue, "
                          "polls, fetch, check)"))
    with open(a.summary, "a") as f:
        f.write(json.dumps({
            "label": a.label, "jobs": a.jobs, "fault": a.fault, "ratio": wall / ideal,
            "cpu_ms": (user + sysc) * 1000 / a.jobs, "rss_mib": rss / 1024,
            "rendered": rendered, "exit": a.exit,
            "load": a.load1.split("load average:")[-1].strip()}) + "\n")


if __name__ == "__main__":
    main()
