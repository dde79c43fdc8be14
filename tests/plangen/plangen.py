#!/usr/bin/env python3
"""Spec generator for the planner (issue 20): kiln.yaml files whose answer is known.

Feasible classes draw a *witness* first (N trait sets that obey the rules and the pairwise
min_distance) and write `count:` targets equal to the witness's counts, so a plan exists by
construction. Infeasible classes come with a proof the generator checks itself (a counting
argument, exhaustion of a small space, a Latin-square projection count, a chain of rules).

Standard library only; everything is drawn from random.Random(f"{cls}:{seed}"), so the same
class and seed give the same file on every machine and Python 3 version.

    spec = generate("md2-parity", 7)      # a Spec
    text = spec.yaml()                    # kiln.yaml text
    spec.check_plan(tokens)               # [] or the list of what a plan breaks

Classes: see CLASSES below (name -> (feasible, builder)).
"""
import itertools
import math
import random

WEIGHTS = [0.5, 1, 2, 2.5, 3, 5, 8, 13, 21]


class Spec:
	"""layers: list of (name, [value names], [counts], bypass); rules: list of
	('exclude', {layer: set}) | ('if', {layer: set}, {layer: set}) | ('with', {layer: set});
	sets hold value indexes. witness: list of tuples (feasible) or None; proof: text."""

	def __init__(self, cls, seed, feasible):
		self.cls = cls
		self.seed = seed
		self.feasible = feasible
		self.layers = []
		self.rules = []
		self.md = 1
		self.n = 0
		self.legendaries = 0
		self.optional = {}  # layer index -> index of its none value (always the last)
		self.witness = None
		self.proof = ""

	# ---- writing -------------------------------------------------------------------------
	def add_layer(self, size, counts=None, bypass=False):
		i = len(self.layers)
		names = ["v%d_%d" % (i, j) for j in range(size)]
		self.layers.append(["L%d" % i, names, counts or [0] * size, bypass])
		return i

	def set_counts_from(self, tokens):
		for li, layer in enumerate(self.layers):
			c = [0] * len(layer[1])
			for t in tokens:
				c[t[li]] += 1
			layer[2] = c
		self.n = len(tokens)

	def value_name(self, li, vi):
		if self.optional.get(li) == vi:
			return "None"
		return self.layers[li][1][vi]

	def _clause(self, d):
		parts = []
		for li in sorted(d):
			vals = sorted(d[li])
			names = [self.value_name(li, v) for v in vals]
			parts.append("%s: %s" % (self.layers[li][0],
				names[0] if len(names) == 1 else "[" + ", ".join(names) + "]"))
		return "{" + ", ".join(parts) + "}"

	def yaml(self):
		out = ["# plangen class %s seed %d: %s" % (self.cls, self.seed,
			"feasible by construction" if self.feasible else "infeasible")]
		for line in self.proof.splitlines():
			out.append("# " + line)
		out.append("collection: {name: Gen, size: %d, seed: %d}" % (self.n + self.legendaries,
			self.seed))
		out.append("image: {width: 8, height: 8}")
		if self.md != 1:
			out.append("uniqueness: {min_distance: %d}" % self.md)
		out.append("layers:")
		for li, (name, vals, counts, bypass) in enumerate(self.layers):
			out.append("  - name: %s" % name)
			if bypass:
				out.append("    bypass_dna: true")
			if li in self.optional:
				out.append("    optional: {count: %d}" % counts[self.optional[li]])
			out.append("    traits:")
			for vi, (v, c) in enumerate(zip(vals, counts)):
				if self.optional.get(li) == vi:
					continue
				out.append("      - {name: %s, count: %d, file: t.png}" % (v, c))
		if self.rules:
			out.append("rules:")
			for r in self.rules:
				if r[0] == "exclude":
					out.append("  - {exclude: %s}" % self._clause(r[1]))
				elif r[0] == "if":
					out.append("  - {if: %s, then: %s}" % (self._clause(r[1]),
						self._clause(r[2])))
				else:
					out.append("  - {with: %s}" % self._clause(r[1]))
		if self.legendaries:
			out.append("legendaries:")
			for k in range(self.legendaries):
				out.append("  - {name: Leg%d, file: t.png, attributes: {Type: Legendary}}" % k)
		return "\n".join(out) + "\n"

	# ---- checking ------------------------------------------------------------------------
	def breaks(self, t):
		"""index of the first rule token t breaks, or -1"""
		for ri, r in enumerate(self.rules):
			if r[0] == "exclude":
				if all(t[li] in s for li, s in r[1].items()):
					return ri
			elif r[0] == "if":
				if all(t[li] in s for li, s in r[1].items()) and \
						not all(t[li] in s for li, s in r[2].items()):
					return ri
			else:
				m = [t[li] in s for li, s in r[1].items()]
				if any(m) and not all(m):
					return ri
		return -1

	def counted(self):
		return [li for li, l in enumerate(self.layers) if not l[3]]

	def close_pair(self, tokens):
		"""a pair (i, j) of tokens closer than md on the counted layers, or None"""
		if self.md <= 0:
			return None
		cl = self.counted()
		for drop in itertools.combinations(cl, self.md - 1):
			keep = [li for li in cl if li not in drop]
			seen = {}
			for i, t in enumerate(tokens):
				key = tuple(t[li] for li in keep)
				if key in seen:
					return (seen[key], i)
				seen[key] = i
		return None

	def check_plan(self, tokens):
		"""what the list of generated tokens (tuples of value indexes) breaks: [] if nothing"""
		errs = []
		if len(tokens) != self.n:
			errs.append("%d generated tokens, expected %d" % (len(tokens), self.n))
		for li, layer in enumerate(self.layers):
			c = [0] * len(layer[1])
			for t in tokens:
				c[t[li]] += 1
			if c != layer[2]:
				errs.append("layer %s counts %s, expected %s" % (layer[0], c, layer[2]))
		for i, t in enumerate(tokens):
			ri = self.breaks(t)
			if ri >= 0:
				errs.append("token %d %s breaks rule %d" % (i, t, ri))
				break
		p = self.close_pair(tokens)
		if p:
			errs.append("tokens %s and %s closer than %d" % (tokens[p[0]], tokens[p[1]], self.md))
		return errs

	def index(self):
		"""{layer name: (layer index, {value name: value index})} as kiln ls prints them"""
		d = {}
		for li, layer in enumerate(self.layers):
			d[layer[0]] = (li, {self.value_name(li, vi): vi for vi in range(len(layer[1]))})
		return d


# ---- drawing helpers ---------------------------------------------------------------------
def weights(rng, size, skew=True):
	if not skew:
		return [1.0] * size
	return [rng.choice(WEIGHTS) for _ in range(size)]


def weighted_top(rng, items, wfun, n):
	"""n items drawn without replacement with probability ~ wfun(item) (Efraimidis-Spirakis)"""
	keyed = [(rng.random() ** (1.0 / wfun(it)), it) for it in items]
	keyed.sort(key=lambda x: x[0], reverse=True)
	return [it for _, it in keyed[:n]]


def space(sizes):
	return itertools.product(*[range(s) for s in sizes])


def prod(xs):
	p = 1
	for x in xs:
		p *= x
	return p


def random_rules(rng, spec, nrules, allowed_chain=True):
	"""random exclude / if / with rules over spec's layers (value indexes)"""
	L = len(spec.layers)
	sizes = [len(l[1]) for l in spec.layers]
	rules = []
	for _ in range(nrules):
		kind = rng.choice(["exclude", "exclude", "if", "if", "with"])
		a, b = rng.sample(range(L), 2)
		if kind == "exclude":
			d = {a: {rng.randrange(sizes[a])}, b: set(rng.sample(range(sizes[b]),
				rng.randint(1, max(1, sizes[b] // 2))))}
			if rng.random() < 0.3 and L >= 3:
				c = rng.choice([x for x in range(L) if x not in (a, b)])
				d[c] = {rng.randrange(sizes[c])}
			rules.append(("exclude", d))
		elif kind == "if":
			then = set(rng.sample(range(sizes[b]), rng.randint(1, max(1, sizes[b] - 1))))
			rules.append(("if", {a: {rng.randrange(sizes[a])}}, {b: then}))
		else:
			rules.append(("with", {a: {rng.randrange(sizes[a])}, b: {rng.randrange(sizes[b])}}))
	if allowed_chain and rng.random() < 0.4 and L >= 3:
		# a chain x -> y -> z that stays satisfiable (no exclude against it)
		a, b, c = rng.sample(range(L), 3)
		y = rng.randrange(sizes[b])
		rules.append(("if", {a: {rng.randrange(sizes[a])}}, {b: {y}}))
		rules.append(("if", {b: {y}}, {c: set(rng.sample(range(sizes[c]),
			rng.randint(1, max(1, sizes[c] // 2))))}))
	return rules


def derive_rules(rng, spec, tokens, nrules):
	"""rules the witness respects: excludes of value pairs that never meet, if/then from what
	the if value meets"""
	L = len(spec.layers)
	sizes = [len(l[1]) for l in spec.layers]
	rules = []
	tries = 0
	while len(rules) < nrules and tries < 50 * nrules:
		tries += 1
		a, b = rng.sample(range(L), 2)
		x = rng.randrange(sizes[a])
		meets = {t[b] for t in tokens if t[a] == x}
		if rng.random() < 0.5:
			free = [v for v in range(sizes[b]) if v not in meets]
			if free:
				rules.append(("exclude", {a: {x}, b: set(rng.sample(free,
					rng.randint(1, len(free))))}))
		elif meets and len(meets) < sizes[b]:
			extra = [v for v in range(sizes[b]) if v not in meets]
			then = set(meets) | set(rng.sample(extra, rng.randint(0, len(extra) - 1)))
			rules.append(("if", {a: {x}}, {b: then}))
	return rules


def sample_allowed(rng, spec, n, ws, allowed_cap=400000):
	"""n distinct trait sets obeying spec.rules, weighted by the product of the value weights;
	None when the allowed space is smaller than n"""
	sizes = [len(l[1]) for l in spec.layers]
	total = prod(sizes)
	if total <= allowed_cap:
		allowed = [t for t in space(sizes) if spec.breaks(t) < 0]
		if len(allowed) < n:
			return None
		return weighted_top(rng, allowed, lambda t: prod(ws[li][v] for li, v in enumerate(t)), n)
	chosen = set()
	tries = 0
	while len(chosen) < n:
		tries += 1
		if tries > 50 * n + 10000:
			return None
		t = tuple(rng.choices(range(sizes[li]), weights=ws[li])[0] for li in range(len(sizes)))
		if t not in chosen and spec.breaks(t) < 0:
			chosen.add(t)
	return sorted(chosen)


def finish_feasible(rng, spec, tokens, legend=True):
	rng.shuffle(tokens)
	spec.witness = tokens
	spec.set_counts_from(tokens)
	if legend and rng.random() < 0.25:
		spec.legendaries = rng.randint(1, 3)
	errs = spec.check_plan(tokens)
	assert not errs, (spec.cls, spec.seed, errs)
	return spec


def maybe_optional(rng, spec):
	"""make the last value of a layer or two its none value (optional)"""
	for li in range(len(spec.layers)):
		if len(spec.layers[li][1]) >= 3 and rng.random() < 0.2:
			spec.optional[li] = len(spec.layers[li][1]) - 1


# ---- feasible classes --------------------------------------------------------------------
def g_md1_loose(rng, spec, cap):
	L = rng.randint(3, 7)
	n = rng.randint(50, min(cap, 20000))
	sizes = [rng.randint(2, 12) for _ in range(L)]
	while prod(sizes) < 3 * n:
		sizes[rng.randrange(L)] += 1
	for s in sizes:
		spec.add_layer(s)
	spec.rules = random_rules(rng, spec, rng.randint(0, 4))
	ws = [weights(rng, s) for s in sizes]
	toks = sample_allowed(rng, spec, n, ws)
	if toks is None:
		spec.rules = []
		toks = sample_allowed(rng, spec, n, ws)
	maybe_optional(rng, spec)
	return finish_feasible(rng, spec, toks)


def g_md1_skewed(rng, spec, cap):
	"""6 layers, weights from WEIGHTS, 5,000-12,000 tokens (scaled down under a cap), density
	10-90% of the space: the issue's skewed rarity tables"""
	n = rng.randint(5000, 12000)
	if n > cap:
		n = rng.randint(max(50, cap // 3), cap)
	dens = rng.uniform(0.1, 0.9)
	sizes = [rng.randint(3, 8) for _ in range(6)]
	while prod(sizes) * dens < n:
		sizes[rng.randrange(6)] += 1
	while prod(sizes) * dens > 2 * n and max(sizes) > 2:
		i = max(range(6), key=lambda i: sizes[i])
		sizes[i] -= 1
		if prod(sizes) < n:
			sizes[i] += 1
			break
	for s in sizes:
		spec.add_layer(s)
	ws = [weights(rng, s) for s in sizes]
	toks = sample_allowed(rng, spec, n, ws)
	return finish_feasible(rng, spec, toks)


def g_md1_full(rng, spec, cap):
	"""near-full tables: the witness takes 90-100% of the trait sets the rules allow"""
	L = rng.randint(3, 6)
	sizes = [rng.randint(2, 9) for _ in range(L)]
	while prod(sizes) > min(cap, 20000) * 1.05:
		i = max(range(L), key=lambda i: sizes[i])
		sizes[i] -= 1
	while prod(sizes) < 50:
		sizes[rng.randrange(L)] += 1
	for s in sizes:
		spec.add_layer(s)
	spec.rules = random_rules(rng, spec, rng.randint(0, 2), allowed_chain=False)
	allowed = [t for t in space(sizes) if spec.breaks(t) < 0]
	if len(allowed) < 50:
		spec.rules = []
		allowed = list(space(sizes))
	n = max(50, int(len(allowed) * rng.choice([1.0, 0.999, 0.99, 0.97, 0.95, 0.9])))
	n = min(n, len(allowed))
	ws = [weights(rng, s) for s in sizes]
	toks = weighted_top(rng, allowed, lambda t: prod(ws[li][v] for li, v in enumerate(t)), n)
	return finish_feasible(rng, spec, toks)


def g_md1_rules(rng, spec, cap):
	"""many rules (exclude, if/then chains, with), 20-80% of the allowed trait sets"""
	L = rng.randint(3, 6)
	sizes = [rng.randint(2, 8) for _ in range(L)]
	while prod(sizes) < 150:
		sizes[rng.randrange(L)] += 1
	for s in sizes:
		spec.add_layer(s)
	spec.rules = random_rules(rng, spec, rng.randint(3, 8))
	allowed = [t for t in space(sizes) if spec.breaks(t) < 0]
	while len(allowed) < 60 and spec.rules:
		spec.rules.pop()
		allowed = [t for t in space(sizes) if spec.breaks(t) < 0]
	n = max(50, int(len(allowed) * rng.uniform(0.2, 0.8)))
	n = min(n, len(allowed), cap)
	ws = [weights(rng, s) for s in sizes]
	toks = weighted_top(rng, allowed, lambda t: prod(ws[li][v] for li, v in enumerate(t)), n)
	maybe_optional(rng, spec)
	return finish_feasible(rng, spec, toks)


def extra_bypass(rng, spec, tokens):
	"""maybe a bypass_dna layer with arbitrary values"""
	if rng.random() < 0.25:
		s = rng.randint(2, 6)
		li = spec.add_layer(s, bypass=True)
		w = weights(rng, s)
		tokens = [t + (rng.choices(range(s), weights=w)[0],) for t in tokens]
		assert li == len(tokens[0]) - 1
	return tokens


def parity_code(sizes):
	"""a distance-2 code meeting the Singleton bound: the largest layer holds the sum of the
	others mod its size (two words differing in one other layer differ there too)"""
	big = max(range(len(sizes)), key=lambda i: sizes[i])
	rest = [i for i in range(len(sizes)) if i != big]
	code = []
	for w in space([sizes[i] for i in rest]):
		t = [0] * len(sizes)
		for i, v in zip(rest, w):
			t[i] = v
		t[big] = sum(w) % sizes[big]
		code.append(tuple(t))
	return code


def relabel(rng, sizes, code):
	perms = []
	for s in sizes:
		p = list(range(s))
		rng.shuffle(p)
		perms.append(p)
	return [tuple(perms[i][v] for i, v in enumerate(t)) for t in code]


def g_md2_parity(rng, spec, cap):
	"""min_distance 2 from a parity code: 30-100% of the Singleton bound, skewed by weights"""
	spec.md = 2
	for _ in range(100):
		L = rng.randint(3, 6)
		sizes = [rng.randint(2, 10) for _ in range(L)]
		bound = prod(sorted(sizes)[:-1])
		if 50 <= bound <= min(cap, 20000) * 1.2:
			break
	else:
		sizes = [5, 5, 5]
		bound = 25
	code = relabel(rng, sizes, parity_code(sizes))
	dens = rng.choice([1.0, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3])
	n = max(min(50, len(code)), min(int(len(code) * dens), cap))
	ws = [weights(rng, s) for s in sizes]
	for s in sizes:
		spec.add_layer(s)
	toks = weighted_top(rng, code, lambda t: prod(ws[li][v] for li, v in enumerate(t)), n)
	if rng.random() < 0.5:
		spec.rules = derive_rules(rng, spec, toks, rng.randint(1, 4))
	toks = extra_bypass(rng, spec, toks)
	return finish_feasible(rng, spec, toks)


def greedy_code(rng, sizes, md, n, ws, tries_per=30):
	"""random words kept when at least md from every kept one (checked through the
	C(L, md-1) projection tables)"""
	L = len(sizes)
	drops = list(itertools.combinations(range(L), md - 1))
	tables = [set() for _ in drops]
	keeps = [[i for i in range(L) if i not in d] for d in drops]
	out = []
	fails = 0
	while len(out) < n and fails < tries_per * n + 2000:
		t = tuple(rng.choices(range(sizes[i]), weights=ws[i])[0] for i in range(L))
		keys = [tuple(t[i] for i in k) for k in keeps]
		if any(key in tab for key, tab in zip(keys, tables)):
			fails += 1
			continue
		for key, tab in zip(keys, tables):
			tab.add(key)
		out.append(t)
	return out


def g_md2_greedy(rng, spec, cap):
	"""min_distance 2 or 3 over unequal layers, a greedy random code drawn by weights"""
	spec.md = rng.choice([2, 2, 3])
	L = rng.randint(spec.md + 2, 7)
	sizes = [rng.randint(2, 9) for _ in range(L)]
	ws = [weights(rng, s) for s in sizes]
	n = rng.randint(50, min(cap, 20000))
	toks = greedy_code(rng, sizes, spec.md, n, ws)
	if len(toks) < 20:
		sizes = [s + 3 for s in sizes]
		ws = [weights(rng, s) for s in sizes]
		toks = greedy_code(rng, sizes, spec.md, n, ws)
	for s in sizes:
		spec.add_layer(s)
	if rng.random() < 0.4:
		spec.rules = derive_rules(rng, spec, toks, rng.randint(1, 3))
	toks = extra_bypass(rng, spec, toks)
	return finish_feasible(rng, spec, toks)


def rs_code(q, L, k):
	"""Reed-Solomon over GF(q), q prime: polynomials of degree < k evaluated at 0..L-1;
	distance L-k+1"""
	code = []
	for coef in space([q] * k):
		code.append(tuple(sum(c * pow(x, e, q) for e, c in enumerate(coef)) % q
			for x in range(L)))
	return code


def g_md3_rs(rng, spec, cap):
	"""min_distance 3 (or 4) from a Reed-Solomon code over a prime field: dense, near the
	Singleton bound"""
	opts = []
	for q in (5, 7, 11, 13):
		for L in range(4, q + 1):
			for md in (3, 4):
				k = L - md + 1
				if k >= 2 and 25 <= q ** k <= min(cap, 20000) * 1.2:
					opts.append((q, L, md))
	q, L, md = rng.choice(opts)
	spec.md = md
	code = relabel(rng, [q] * L, rs_code(q, L, L - md + 1))
	dens = rng.choice([1.0, 0.9, 0.75, 0.6, 0.4])
	n = max(min(25, len(code)), min(int(len(code) * dens), cap))
	ws = [weights(rng, q) for _ in range(L)]
	for _ in range(L):
		spec.add_layer(q)
	toks = weighted_top(rng, code, lambda t: prod(ws[li][v] for li, v in enumerate(t)), n)
	if rng.random() < 0.3:
		spec.rules = derive_rules(rng, spec, toks, rng.randint(1, 3))
	toks = extra_bypass(rng, spec, toks)
	return finish_feasible(rng, spec, toks)


# ---- infeasible classes ------------------------------------------------------------------
def spread(rng, total, k, cap=None, ws=None):
	"""total split into k non-negative parts by weights (each <= cap when given)"""
	ws = ws or weights(rng, k)
	parts = [0] * k
	for _ in range(total):
		choices = [i for i in range(k) if cap is None or parts[i] < cap]
		i = rng.choices(choices, weights=[ws[j] for j in choices])[0]
		parts[i] += 1
	return parts


def g_inf_counting(rng, spec, cap):
	"""top values of each layer hold so many tokens that at least X tokens hold a top value in
	every layer, but the top values make only P < X trait sets"""
	L = rng.randint(3, 6)
	for _ in range(1000):
		sizes = [rng.randint(3, 8) for _ in range(L)]
		tops = [rng.randint(1, s - 1) for s in sizes]
		n = rng.randint(50, min(cap, 12000))
		if prod(sizes) < n:
			continue
		P = prod(tops)
		# tokens outside the top values, per layer: sum must leave more than P in the box
		room = n - P - 1
		if room <= L:
			continue
		outside = spread(rng, rng.randint(L, room), L)
		# each layer's outside values can hold at most the trait sets over the other layers
		if any(o > (s - t) * prod(sizes) // s for o, s, t in zip(outside, sizes, tops)):
			continue
		break
	else:
		raise RuntimeError("no counting spec")
	for li, (s, t) in enumerate(zip(sizes, tops)):
		inside = n - outside[li]
		other = prod(sizes) // s
		if inside > t * other:
			return g_inf_counting(rng, spec, cap)
		counts = spread(rng, inside, t, cap=other) + spread(rng, outside[li], s - t, cap=other)
		spec.add_layer(s, counts)
	spec.n = n
	box = sum(n - o for o in outside) - (L - 1) * n
	assert box > P
	names = ["%s in {%s}" % (spec.layers[li][0], ", ".join(spec.layers[li][1][:tops[li]]))
		for li in range(L)]
	spec.proof = ("counting: at least %d tokens hold %s, but those values make only %d "
		"trait sets" % (box, " and ".join(names), P))
	return spec


def subsets_counts(sizes, n, allowed):
	"""every count vector a set of n distinct allowed trait sets can have"""
	got = set()
	for sub in itertools.combinations(allowed, n):
		cv = []
		for li, s in enumerate(sizes):
			c = [0] * s
			for t in sub:
				c[t[li]] += 1
			cv.append(tuple(c))
		got.add(tuple(cv))
	return got


def g_inf_quota3(rng, spec, cap):
	"""three small layers, the collection nearly fills them: count vectors that pass the
	per-value bound but that no set of distinct trait sets has (proved by exhaustion)"""
	for _ in range(200):
		sizes = [rng.randint(2, 3) for _ in range(3)]
		total = prod(sizes)
		n = total - rng.randint(1, 3)
		if n < 5:
			continue
		allowed = list(space(sizes))
		got = subsets_counts(sizes, n, allowed)
		for _ in range(200):
			cv = tuple(tuple(spread(rng, n, s, cap=total // s)) for s in sizes)
			if cv not in got:
				for li, s in enumerate(sizes):
					spec.add_layer(s, list(cv[li]))
				spec.n = n
				spec.proof = ("exhaustion: none of the %d sets of %d distinct trait sets out "
					"of %d has these counts" % (math.comb(total, n), n, total))
				return spec
	raise RuntimeError("no quota3 spec")


def g_inf_latin(rng, spec, cap):
	"""3 layers of n values, min_distance 2: any two layers' pairs are all distinct, so rows I
	and columns J hold at least R(I) + C(J) - N tokens in only |I||J| cells"""
	spec.md = 2
	for _ in range(2000):
		n = rng.randint(3, 6)
		N = rng.randint(max(5, n * n - 2 * n), n * n)
		rows = spread(rng, N, n, cap=n)
		cols = spread(rng, N, n, cap=n)
		syms = spread(rng, N, n, cap=n)
		layers = [rows, cols, syms]
		rng.shuffle(layers)
		best = None
		for a, b in ((0, 1), (0, 2), (1, 2)):
			ra = sorted(layers[a], reverse=True)
			rb = sorted(layers[b], reverse=True)
			for i in range(1, n + 1):
				for j in range(1, n + 1):
					ex = sum(ra[:i]) + sum(rb[:j]) - N - i * j
					if ex > 0 and (best is None or ex > best[0]):
						best = (ex, a, b, i, j)
		if best:
			break
	else:
		raise RuntimeError("no latin spec")
	for c in layers:
		spec.add_layer(n, c)
	spec.n = N
	ex, a, b, i, j = best
	ia = sorted(range(n), key=lambda v: -layers[a][v])[:i]
	jb = sorted(range(n), key=lambda v: -layers[b][v])[:j]
	spec.proof = ("latin: with min_distance 2 over 3 layers, no two tokens share their %s and "
		"%s values; %s in {%s} and %s in {%s} hold at least %d tokens together but make only "
		"%d pairs" % (spec.layers[a][0], spec.layers[b][0], spec.layers[a][0],
		", ".join(spec.layers[a][1][v] for v in ia), spec.layers[b][0],
		", ".join(spec.layers[b][1][v] for v in jb), i * j + ex, i * j))
	return spec


def g_inf_rulechain(rng, spec, cap):
	"""if x then y, if y then z (2 to 4 steps, or a `with` link), and exclude x with z: x must
	have no tokens, but has some"""
	L = rng.randint(3, 6)
	sizes = [rng.randint(2, 6) for _ in range(L)]
	n = rng.randint(50, min(cap, 3000))
	while prod(sizes) < 3 * n:
		sizes[rng.randrange(L)] += 1
	for s in sizes:
		spec.add_layer(s)
	steps = rng.randint(2, min(4, L - 1))
	path = rng.sample(range(L), steps + 1)
	vals = [rng.randrange(sizes[li]) for li in path]
	chain = []
	for k in range(steps):
		if rng.random() < 0.25:
			chain.append(("with", {path[k]: {vals[k]}, path[k + 1]: {vals[k + 1]}}))
		else:
			chain.append(("if", {path[k]: {vals[k]}}, {path[k + 1]: {vals[k + 1]}}))
	chain.append(("exclude", {path[0]: {vals[0]}, path[-1]: {vals[-1]}}))
	# a few unrelated rules around it
	other = random_rules(rng, spec, rng.randint(0, 2), allowed_chain=False)
	spec.rules = other + chain
	rng.shuffle(spec.rules)
	# counts: anything that passes the per-value size, x gets some tokens
	ws = [weights(rng, s) for s in sizes]
	for li, s in enumerate(sizes):
		other_sets = prod(sizes) // s
		c = spread(rng, n, s, cap=other_sets, ws=ws[li])
		if li == path[0] and c[vals[0]] == 0:
			j = max(range(s), key=lambda v: c[v])
			c[j] -= 1
			c[vals[0]] += 1
		spec.layers[li][2] = c
	spec.n = n
	x = "%s: %s" % (spec.layers[path[0]][0], spec.layers[path[0]][1][vals[0]])
	steps_txt = " -> ".join("%s: %s" % (spec.layers[li][0], spec.layers[li][1][v])
		for li, v in zip(path, vals))
	spec.proof = ("rule chain: %s, and the exclude keeps the ends apart, so {%s} can have no "
		"token, but has %d" % (steps_txt, x, spec.layers[path[0]][2][vals[0]]))
	return spec


CLASSES = {
	"md1-loose": (True, g_md1_loose),
	"md1-skewed": (True, g_md1_skewed),
	"md1-full": (True, g_md1_full),
	"md1-rules": (True, g_md1_rules),
	"md2-parity": (True, g_md2_parity),
	"md2-greedy": (True, g_md2_greedy),
	"md3-rs": (True, g_md3_rs),
	"inf-counting": (False, g_inf_counting),
	"inf-quota3": (False, g_inf_quota3),
	"inf-latin": (False, g_inf_latin),
	"inf-rulechain": (False, g_inf_rulechain),
}


def generate(cls, seed, cap=20000):
	"""the spec of class cls for seed; cap bounds the number of tokens"""
	feasible, fn = CLASSES[cls]
	rng = random.Random("%s:%d" % (cls, seed))
	spec = Spec(cls, seed, feasible)
	return fn(rng, spec, cap)


if __name__ == "__main__":
	import sys
	if len(sys.argv) < 3:
		print("usage: plangen.py CLASS SEED [CAP]   (prints kiln.yaml)\nclasses: " +
			" ".join(CLASSES), file=sys.stderr)
		sys.exit(2)
	cap = int(sys.argv[3]) if len(sys.argv) > 3 else 20000
	sys.stdout.write(generate(sys.argv[1], int(sys.argv[2]), cap).yaml())
