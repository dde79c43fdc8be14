#!/usr/bin/env python3
"""Run `kiln plan` on generated specs (plangen.py) and check the answers.

    run.py [--kiln build/kiln] [--seeds A..B] [--class C[,C...]|feasible|infeasible|all]
           [--cap N] [--effort N] [--keep DIR] [--quiet] [--list] [--json FILE]

Feasible specs must plan (exit 0) and the plan, read back with `kiln ls --json`, must hold
every count, rule and the min_distance; infeasible ones must exit 2 (proven impossible, a bad
spec), never 0 and not 1 ("not found within the effort" is a refusal, not a proof; so is an
exit 2 whose message says "no plan found within", as older kilns gave).
Prints per class: specs, refused (feasible not planned, or infeasible not proven), wrong
(a broken plan, or an infeasible spec planned), the median / max time of `kiln plan`, the
largest CPU time (user + system: wall time on a shared machine says little), the largest
spec and the largest peak RSS of a `kiln plan` process (wait4's rusage).
Exit status 0 when every spec got the right answer (or, with --allow-refused PCT, when no
plan was wrong and at most PCT % of the specs were refused), 1 otherwise.
"""
import argparse
import itertools
import re
from fractions import Fraction
import json
import os
import shutil
import subprocess
import sys
import tempfile
import struct
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import plangen  # noqa: E402


def seeds_of(text):
	out = []
	for part in text.split(","):
		if ".." in part:
			a, b = part.split("..")
			out.extend(range(int(a), int(b) + 1))
		else:
			out.append(int(part))
	return out


def classes_of(text):
	if text == "all":
		return list(plangen.CLASSES)
	if text == "feasible":
		return [c for c, (f, _) in plangen.CLASSES.items() if f]
	if text == "infeasible":
		return [c for c, (f, _) in plangen.CLASSES.items() if not f]
	out = []
	for c in text.split(","):
		if c not in plangen.CLASSES:
			sys.exit("run.py: unknown class %s (classes: %s)" % (c, " ".join(plangen.CLASSES)))
		out.append(c)
	return out


def read_plan(kiln, d, spec):
	"""the generated tokens of the plan as tuples of value indexes"""
	r = subprocess.run([kiln, "-C", d, "ls", "--json"], capture_output=True, text=True)
	if r.returncode != 0:
		return None, "kiln ls failed: " + r.stderr.strip()
	idx = spec.index()
	toks = []
	legs = 0
	for line in r.stdout.splitlines():
		o = json.loads(line)
		if o["legendary"] is not None:
			legs += 1
			continue
		t = [None] * len(spec.layers)
		for lname, vname in o["traits"].items():
			li, vals = idx[lname]
			t[li] = vals[vname]
		if None in t:
			return None, "token %s lacks a layer" % o["id"]
		toks.append(tuple(t))
	if legs != spec.legendaries:
		return None, "%d legendaries, expected %d" % (legs, spec.legendaries)
	return toks, None


def blank_png(w, h):
	"""A transparent RGBA PNG of w x h: the planner reads every layer file's header (its
	size must be the collection's), so the layers must be real images."""
	def chunk(kind, data):
		return (struct.pack(">I", len(data)) + kind + data +
			struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
	raw = b"".join(b"\0" + b"\0" * (4 * w) for _ in range(h))
	return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)) +
		chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


WEIGHTS = re.compile(r"give the values these weights: (.*?) \(every other value 0\).*?"
	r"weigh (-?\d+(?:/\d+)?) in all.*?weigh at most (-?\d+(?:/\d+)?) in all", re.S)


def check_weights(spec, stderr):
	"""Redo the refusal's hand check (the LP's dual weights) from the spec alone: the counts'
	total weight must be the one stated and exceed what the distinct allowed trait sets (over
	values with tokens) can weigh. None when it holds or there is none, else what is wrong."""
	m = WEIGHTS.search(stderr.replace("\n", " "))
	if not m:
		return None
	w = {}
	for part in m.group(1).split(", "):
		name, val = part.rsplit(" ", 1)
		layer, value = name.split("=", 1)
		li = [l[0] for l in spec.layers].index(layer)
		vi = [spec.value_name(li, v) for v in range(len(spec.layers[li][1]))].index(value)
		w[(li, vi)] = Fraction(val)
	A = sum(wt * spec.layers[li][2][vi] for (li, vi), wt in w.items())
	live = [[v for v in range(len(l[1])) if l[2][v] > 0] for l in spec.layers]
	B = Fraction(0)
	for t in itertools.product(*live):
		if spec.breaks(t) >= 0:
			continue
		s = sum(w.get((li, v), 0) for li, v in enumerate(t))
		if s > 0:
			B += s
	if A != Fraction(m.group(2)) or B != Fraction(m.group(3)):
		return "totals %s and %s stated, %s and %s recomputed" % (m.group(2), m.group(3), A, B)
	if A <= B:
		return "the counts weigh %s, the allowed trait sets %s: no contradiction" % (A, B)
	return None


def run_one(kiln, spec, workdir, effort):
	d = os.path.join(workdir, "%s-%d" % (spec.cls, spec.seed))
	shutil.rmtree(d, ignore_errors=True)
	os.makedirs(d)
	with open(os.path.join(d, "kiln.yaml"), "w") as f:
		f.write(spec.yaml())
	with open(os.path.join(d, "t.png"), "wb") as f:
		f.write(blank_png(8, 8))  # plangen.py writes image: {width: 8, height: 8}
	cmd = [kiln, "-C", d, "plan", "-q"]
	if effort:
		cmd += ["--effort", str(effort)]
	t0 = time.monotonic()
	with tempfile.TemporaryFile() as err:
		pr = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
		_, status, ru = os.wait4(pr.pid, 0)
		pr.returncode = os.waitstatus_to_exitcode(status)
		dt = time.monotonic() - t0
		err.seek(0)
		stderr = err.read().decode("utf-8", "replace")
	r = subprocess.CompletedProcess(cmd, pr.returncode, "", stderr)
	res = {"dir": d, "time": dt, "exit": r.returncode, "stderr": r.stderr.strip(),
		"rss_kb": ru.ru_maxrss, "cpu": ru.ru_utime + ru.ru_stime}
	if spec.feasible:
		if r.returncode != 0:
			res["verdict"] = "refused"
		else:
			toks, err = read_plan(kiln, d, spec)
			errs = [err] if err else spec.check_plan(toks)
			res["verdict"] = "wrong" if errs else "ok"
			res["why"] = "; ".join(errs)[:400]
	else:
		if r.returncode == 2 and "no plan found within" not in r.stderr:
			res["verdict"] = "ok"
			res["cert"] = len(r.stderr.strip())
			bad = check_weights(spec, r.stderr)
			if bad:
				res["verdict"] = "wrong"
				res["why"] = "the hand check does not hold: " + bad
		elif r.returncode == 0:
			res["verdict"] = "wrong"
			res["why"] = "planned an infeasible spec (%s)" % spec.proof
		else:
			res["verdict"] = "refused"
	return res


def main():
	ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
	ap.add_argument("--kiln", default=os.environ.get("KILN", "build/kiln"))
	ap.add_argument("--seeds", default="1..10")
	ap.add_argument("--class", dest="cls", default="all")
	ap.add_argument("--cap", type=int, default=20000, help="at most this many tokens")
	ap.add_argument("--effort", type=int, default=0)
	ap.add_argument("--keep", help="write the projects under DIR and keep them")
	ap.add_argument("--quiet", action="store_true", help="only the summary")
	ap.add_argument("--list", action="store_true", help="print the specs' sizes, run nothing")
	ap.add_argument("--json", help="write the per-class summary to this file")
	ap.add_argument("--allow-refused", type=float, default=0.0, metavar="PCT",
		help="exit 0 when at most PCT %% of the specs were refused (never when one is wrong)")
	a = ap.parse_args()
	kiln = os.path.abspath(a.kiln)
	classes = classes_of(a.cls)
	seeds = seeds_of(a.seeds)
	if a.list:
		for c in classes:
			for s in seeds:
				sp = plangen.generate(c, s, a.cap)
				print("%s %d: %d tokens, %d layers %s, min_distance %d, %d rules" % (c, s, sp.n,
					len(sp.layers), [len(l[1]) for l in sp.layers], sp.md, len(sp.rules)))
		return 0
	tmp = os.environ.get("KILN_TMP") or None
	if tmp:
		os.makedirs(tmp, exist_ok=True)
	workdir = a.keep or tempfile.mkdtemp(prefix="plangen.", dir=tmp)
	os.makedirs(workdir, exist_ok=True)
	bad = 0
	summary = {}
	print("%-14s %5s %8s %6s %9s %9s %9s %8s %8s" % ("class", "specs", "refused", "wrong",
		"median s", "max s", "max cpu s", "tokens", "max MiB"))
	for c in classes:
		times = []
		cpus = []
		nref = nwrong = 0
		rss = 0
		maxn = 0
		cert = 0
		slowest = None
		for s in seeds:
			sp = plangen.generate(c, s, a.cap)
			r = run_one(kiln, sp, workdir, a.effort)
			times.append(r["time"])
			cpus.append(r["cpu"])
			rss = max(rss, r["rss_kb"])
			maxn = max(maxn, sp.n)
			if slowest is None or r["cpu"] > slowest[0]:
				slowest = (r["cpu"], s, sp.n)
			cert = max(cert, r.get("cert", 0))
			if r["verdict"] != "ok":
				bad += 1
				if r["verdict"] == "refused":
					nref += 1
				else:
					nwrong += 1
				if not a.quiet:
					print("  %s %s seed %d (%d tokens, md %d): exit %d %s %s" % (
						r["verdict"].upper(), c, s, sp.n, sp.md, r["exit"],
						r.get("why", ""), r["stderr"][:300].replace("\n", " ")))
			if not a.keep:
				shutil.rmtree(r["dir"], ignore_errors=True)
		times.sort()
		cpus.sort()
		print("%-14s %5d %7.1f%% %6d %9.3f %9.3f %9.3f %8d %8.1f" % (c, len(times),
			100.0 * nref / len(times), nwrong, times[len(times) // 2], times[-1], cpus[-1],
			maxn, rss / 1024.0))
		sys.stdout.flush()
		summary[c] = {"specs": len(times), "refused": nref, "wrong": nwrong,
			"median_s": times[len(times) // 2], "max_s": times[-1], "max_cpu_s": cpus[-1],
			"max_tokens": maxn, "max_cert_chars": cert,
			"max_rss_mib": rss / 1024.0, "slowest": {"seed": slowest[1], "tokens": slowest[2],
			"s": slowest[0]}}
	if a.json:
		with open(a.json, "w") as f:
			json.dump(summary, f, indent=1)
	if not a.keep:
		shutil.rmtree(workdir, ignore_errors=True)
	total = len(classes) * len(seeds)
	nwrong_all = sum(v["wrong"] for v in summary.values())
	nref_all = sum(v["refused"] for v in summary.values())
	if nwrong_all:
		return 1
	if nref_all * 100.0 > a.allow_refused * total:
		print("refused %d of %d specs, more than the %.1f %% allowed" % (nref_all, total,
			a.allow_refused))
		return 1
	return 0


if __name__ == "__main__":
	sys.exit(main())
