/* code.c: plans for min_distance >= 2 inside an algebraic code.
 *
 * Why. The local search (plan.c) builds distance-k sets token by token; near the Singleton
 * bound (a collection filling half or more of what min_distance allows) it stalls, while
 * codes that meet the bound are known: for k = 2 the parity code (every layer but the largest
 * free, the largest holding the sum of the others' symbols modulo its size: two tokens that
 * differ in one free layer differ in the sum too, because that layer's symbols are distinct
 * residues), for k >= 3 Reed-Solomon (a token is a polynomial of degree < nnb - k + 1 over
 * GF(p) evaluated at nnb points; two differ in at least k of them), shortened to the values a
 * layer has. Any subset of a code keeps its distance, so a plan inside a code is the
 * min_distance-1 problem over the code's words: exact counts, rules, distinct rows, which
 * lp.c solves exactly. What is free is the labeling, which symbol a value stands for; a
 * labeling is tried per attempt (the first matches the values' counts to the symbols'
 * frequencies in the code, the others are drawn from the spec's seed) until one gives a plan.
 *
 * Invariants. Nothing here is a proof: a failure is "not found" (the code is this module's
 * choice, not the spec's). The words are only filtered (lp.c enumerates the trait sets,
 * at most KILN_PLAN_LP_MAX_SETS), so every plan is checked by the caller like any other.
 * Sizes: layers up to a few dozen values, nnb up to 64, primes below 2^16.
 */
#include "plan/code.h"
#include "util/alloc.h"
#include "util/prng.h"

#include <stdlib.h>
#include <string.h>

#define STREAM_CODE 6

struct code {
	const struct kiln_plan_code *in;
	unsigned mod;      /* k = 2: the largest layer's size; k >= 3: the prime p */
	size_t check;      /* k = 2: the index (in nb) of the layer holding the sum */
	size_t kd;         /* k >= 3: the code's dimension, nnb - k + 1 */
	uint32_t **sym;    /* per nb layer, per value: its symbol (UINT32_MAX: no tokens) */
	uint32_t *lag;     /* k >= 3: (nnb - kd) x kd Lagrange weights mod p */
};

static int forbidden(const void *arg, const uint32_t *row)
{
	const struct code *cd = arg;
	const struct kiln_plan_code *in = cd->in;
	if (in->lp.forbidden && in->lp.forbidden(in->lp.arg, row))
		return 1;
	for (size_t i = 0; i < in->nnb; i++)
		if (cd->sym[i][row[in->nb[i]]] == UINT32_MAX)
			return 1; /* a value without tokens (lp.c enumerates none) */
	if (in->k == 2) {
		uint64_t sum = 0;
		for (size_t i = 0; i < in->nnb; i++)
			if (i != cd->check)
				sum += cd->sym[i][row[in->nb[i]]];
		return sum % cd->mod != cd->sym[cd->check][row[in->nb[cd->check]]];
	}
	for (size_t j = cd->kd; j < in->nnb; j++) {
		uint64_t v = 0;
		for (size_t i = 0; i < cd->kd; i++)
			v += (uint64_t)cd->lag[(j - cd->kd) * cd->kd + i] * cd->sym[i][row[in->nb[i]]];
		if (v % cd->mod != cd->sym[j][row[in->nb[j]]])
			return 1;
	}
	return 0;
}

static uint64_t powmod(uint64_t b, uint64_t x, uint64_t p)
{
	uint64_t r = 1;
	b %= p;
	while (x) {
		if (x & 1)
			r = r * b % p;
		b = b * b % p;
		x >>= 1;
	}
	return r;
}

static int is_prime(unsigned n)
{
	if (n < 2)
		return 0;
	for (unsigned d = 2; d * d <= n; d++)
		if (n % d == 0)
			return 0;
	return 1;
}

/* the values of layer l with tokens, by count, most first (ties: value order) */
struct byc {
	uint64_t c;
	uint32_t v;
};

static int byc_cmp(const void *a, const void *b)
{
	const struct byc *x = a, *y = b;
	if (x->c != y->c)
		return x->c > y->c ? -1 : 1;
	return x->v < y->v ? -1 : x->v > y->v;
}

/* k = 2: how often each residue is the sum of the free layers' symbols 0..s_i-1 (the whole
 * box), so the check layer's busiest values get its most frequent residues */
static int residue_freq(const struct code *cd, const size_t *eff, double *f)
{
	unsigned m = cd->mod;
	double *t = kiln_malloc(m * sizeof *t);
	if (!t)
		return KILN_E_NOMEM;
	for (unsigned r = 0; r < m; r++)
		f[r] = r == 0;
	for (size_t i = 0; i < cd->in->nnb; i++) {
		if (i == cd->check)
			continue;
		double tot = 0;
		for (unsigned r = 0; r < m; r++)
			t[r] = 0;
		for (unsigned r = 0; r < m; r++)
			for (size_t s = 0; s < eff[i]; s++)
				t[(r + s) % m] += f[r];
		for (unsigned r = 0; r < m; r++)
			tot += t[r];
		for (unsigned r = 0; r < m; r++)
			f[r] = tot > 0 ? t[r] / tot : 0; /* normalised: no overflow */
	}
	free(t);
	return 0;
}

struct rfq {
	double f;
	uint32_t r;
};

static int rfq_cmp(const void *a, const void *b)
{
	const struct rfq *x = a, *y = b;
	if (x->f != y->f)
		return x->f > y->f ? -1 : 1;
	return x->r < y->r ? -1 : x->r > y->r;
}

int kiln_plan_code_solve(const struct kiln_plan_code *in, uint32_t *m, struct kiln_error *e)
{
	const struct kiln_spec *s = in->lp.s;
	size_t nnb = in->nnb, maxeff = 0;
	struct code cd = {in, 0, 0, 0, NULL, NULL};
	size_t *eff = kiln_calloc(nnb + 1, sizeof *eff);
	struct byc **order = kiln_calloc(nnb + 1, sizeof *order);
	uint32_t *perm = NULL;
	struct rfq *rf = NULL;
	double *freq = NULL;
	struct kiln_rng rng;
	int rc = KILN_E_NOMEM;

	cd.sym = kiln_calloc(nnb + 1, sizeof *cd.sym);
	if (!eff || !order || !cd.sym)
		goto out;
	if (in->k < 2 || nnb < in->k || nnb > 64 || kiln_plan_lp_space(&in->lp) >
	    KILN_PLAN_LP_MAX_SETS) {
		rc = KILN_E_NOTFOUND;
		goto out;
	}
	for (size_t i = 0; i < nnb; i++) {
		size_t l = in->nb[i], nt = s->layers[l].ntraits;
		order[i] = kiln_malloc((nt + 1) * sizeof *order[i]);
		cd.sym[i] = kiln_malloc((nt + 1) * sizeof *cd.sym[i]);
		if (!order[i] || !cd.sym[i])
			goto out;
		for (size_t v = 0; v < nt; v++) {
			uint64_t c = in->lp.cnt[in->lp.vbase[l] + v];
			if (c)
				order[i][eff[i]++] = (struct byc){c, (uint32_t)v};
		}
		qsort(order[i], eff[i], sizeof *order[i], byc_cmp);
		if (eff[i] > maxeff) {
			maxeff = eff[i];
			cd.check = i;
		}
	}
	if (in->k == 2) {
		cd.mod = (unsigned)maxeff;
	} else {
		unsigned p = (unsigned)(maxeff > nnb ? maxeff : nnb);
		while (!is_prime(p))
			p++;
		cd.mod = p;
		cd.kd = nnb - in->k + 1;
		cd.lag = kiln_malloc(((nnb - cd.kd) * cd.kd + 1) * sizeof *cd.lag);
		if (!cd.lag)
			goto out;
		/* the value at point j of the polynomial through (i, y_i), i < kd:
		 * sum_i y_i prod_{t != i} (j - t) / (i - t), all mod p */
		for (size_t j = cd.kd; j < nnb; j++)
			for (size_t i = 0; i < cd.kd; i++) {
				uint64_t num = 1, den = 1;
				for (size_t t = 0; t < cd.kd; t++) {
					if (t == i)
						continue;
					num = num * ((j + p - t) % p) % p;
					den = den * ((i + p - t) % p) % p;
				}
				cd.lag[(j - cd.kd) * cd.kd + i] =
				    (uint32_t)(num * powmod(den, p - 2, p) % p);
			}
	}
	if (!cd.mod) {
		rc = KILN_E_NOTFOUND;
		goto out;
	}
	perm = kiln_malloc((cd.mod + 1) * sizeof *perm);
	freq = kiln_malloc((cd.mod + 1) * sizeof *freq);
	rf = kiln_malloc((cd.mod + 1) * sizeof *rf);
	if (!perm || !freq || !rf)
		goto out;
	if (in->k == 2 && residue_freq(&cd, eff, freq))
		goto out;
	kiln_rng_seed(&rng, in->seed, STREAM_CODE);
	for (unsigned t = 0; t < in->tries; t++) {
		struct kiln_plan_lp lp = in->lp;
		for (size_t i = 0; i < nnb; i++) {
			size_t l = in->nb[i], nsym = in->k == 2 && i != cd.check ? eff[i] : cd.mod;
			for (size_t v = 0; v < s->layers[l].ntraits; v++)
				cd.sym[i][v] = UINT32_MAX;
			/* the symbols this layer's values stand for, busiest value first */
			for (uint32_t r = 0; r < nsym; r++)
				perm[r] = r;
			if (t == 0 && in->k == 2 && i == cd.check) {
				for (uint32_t r = 0; r < nsym; r++)
					rf[r] = (struct rfq){freq[r], r};
				qsort(rf, nsym, sizeof *rf, rfq_cmp);
				for (uint32_t r = 0; r < nsym; r++)
					perm[r] = rf[r].r;
			} else if (t > 0) {
				kiln_rng_shuffle(&rng, perm, nsym, sizeof *perm);
			}
			for (size_t q = 0; q < eff[i]; q++)
				cd.sym[i][order[i][q].v] = perm[q];
		}
		if (t < in->skip)
			continue; /* tried by an earlier call (the draws above keep the sequence) */
		lp.forbidden = forbidden;
		lp.arg = &cd;
		lp.quick = 1;
		lp.init = NULL;
		lp.ninit = 0;
		rc = kiln_plan_lp_solve(&lp, m, e);
		if (rc != KILN_E_NOTFOUND)
			goto out;
	}
	rc = KILN_E_NOTFOUND;
out:
	for (size_t i = 0; cd.sym && i < nnb; i++)
		free(cd.sym[i]);
	for (size_t i = 0; order && i < nnb; i++)
		free(order[i]);
	free(cd.sym);
	free(order);
	free(cd.lag);
	free(eff);
	free(perm);
	free(freq);
	free(rf);
	return rc;
}
