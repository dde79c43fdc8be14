#!/usr/bin/env python3
"""Planner benchmark on generated specs (tests/plangen/): refusal rate per class, CPU time to
plan or give up, peak RSS, with ratios against the issue's limits.

usage: bench/plan/generated.py [--kiln build/kiln] [--many] [--seeds A..B] [--effort N]

  feasible classes, up to 5,000 tokens     refusal rate (target 0 %), max CPU / 10 s
  md1-skewed at 5,000-12,000 tokens        max CPU / 1 s (the 10,000-token rarity tables)
  infeasible classes                       proven rate (exit 2 with a proof, target 100 %) and
                                           the longest proof (certificate size, characters)
--many runs 300 seeds per class (thousands of specs) instead of 10. Times are CPU seconds
(user + system of the kiln process): on a shared machine wall time says little. The
1,000,000-token loose spec is bench/plan/run.sh's job (it prints its own ratio).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
src = os.path.dirname(os.path.dirname(here))
runner = os.path.join(src, "tests", "plangen", "run.py")
sys.path.insert(0, os.path.join(src, "tests", "plangen"))
import plangen  # noqa: E402


def run(kiln, classes, seeds, cap, effort):
	with tempfile.NamedTemporaryFile(suffix=".json") as f:
		cmd = [sys.executable, runner, "--kiln", kiln, "--class", ",".join(classes),
			"--seeds", seeds, "--cap", str(cap), "--quiet", "--json", f.name]
		if effort:
			cmd += ["--effort", str(effort)]
		subprocess.run(cmd, stdout=sys.stderr)
		return json.load(open(f.name))


def main():
	ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
	ap.add_argument("--kiln", default=os.path.join(src, "build", "kiln"))
	ap.add_argument("--many", action="store_true")
	ap.add_argument("--seeds")
	ap.add_argument("--effort", type=int, default=0)
	a = ap.parse_args()
	seeds = a.seeds or ("1..300" if a.many else "1..10")
	feas = [c for c, (f, _) in plangen.CLASSES.items() if f]
	inf = [c for c, (f, _) in plangen.CLASSES.items() if not f]
	tight = run(a.kiln, feas, seeds, 5000, a.effort)
	rarity = run(a.kiln, ["md1-skewed"], seeds, 12000, a.effort)
	proof = run(a.kiln, inf, seeds, 5000, a.effort)
	print("%-14s %6s %9s %10s %9s %9s %s" % ("class", "specs", "refused", "max cpu s",
		"limit s", "ratio", "peak MiB"))
	worst = 0
	for name, res, limit in [(c, tight[c], 10.0) for c in feas] + \
			[("md1-skewed 12k", rarity["md1-skewed"], 1.0)]:
		ratio = res["max_cpu_s"] / limit
		worst = max(worst, ratio)
		print("%-14s %6d %8.1f%% %10.3f %9.1f %8.2fx %8.1f" % (name, res["specs"],
			100.0 * res["refused"] / res["specs"], res["max_cpu_s"], limit, ratio,
			res["max_rss_mib"]))
	for c in inf:
		res = proof[c]
		print("%-14s %6d %8.1f%% %10.3f %9s %9s %8.1f   (refused = not proven; longest proof "
			"%d chars)" % (c, res["specs"], 100.0 * res["refused"] / res["specs"],
			res["max_cpu_s"], "-", "-", res["max_rss_mib"], res.get("max_cert_chars", 0)))
	nref = sum(tight[c]["refused"] for c in feas) + rarity["md1-skewed"]["refused"]
	nspec = sum(tight[c]["specs"] for c in feas) + rarity["md1-skewed"]["specs"]
	print("feasible specs refused: %d of %d (%.1f %%, target 0); worst time ratio %.2fx "
		"(target <= 1)" % (nref, nspec, 100.0 * nref / nspec, worst))
	return 0


if __name__ == "__main__":
	sys.exit(main())
