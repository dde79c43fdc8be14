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
 * lp.c solves exactly.
 *
 * How. What is free is the labeling, which symbol a value stands for (any one-to-one map of
 * a layer's values into the symbols keeps the distance). The words are enumerated directly
 * (the free layers' values, the rest computed; times the values of the layers that do not
 * count for uniqueness), so a try costs the code's size, not the product of the layers. The
 * first labeling matches the values' counts to the symbols' frequencies; then a local search
 * over labelings: the linear program's shortfall (lp.c: how many tokens its best leaves each
 * value short of its target) picks a short value, whose symbol is swapped with another of its
 * layer's symbols (used or not); the swap is kept when the total shortfall does not grow,
 * and after a run of swaps that do not lower it the search restarts from a random labeling.
 * And one integer program (CBC) chooses the labeling and the words together
 * (joint_labeling(): the tokens on a symbol are the count of the value standing for it, a
 * linear row), in a few node-limited rounds. Everything is drawn from the spec's seed: same spec, same labelings, same plan.
 *
 * Invariants. Nothing here is a proof: a failure is "not found" (the code is this module's
 * choice, not the spec's). Every plan is checked by the caller like any other.
 * Sizes: layers up to a few dozen values, nnb up to 64, primes below 2^16, at most
 * KILN_PLAN_LP_MAX_SETS words.
 */
#include "plan/code.h"
#include "util/alloc.h"
#include "util/prng.h"

#include <coin/Cbc_C_Interface.h>
#include <float.h>
#include <stdlib.h>
#include <string.h>

#define STREAM_CODE 6
#define STALL 12 /* steps without a lower shortfall before a restart */
#define NEIGH 12 /* swaps tried per step, at most */
#define WORK_PER_TRY 4000 /* words per try on average: large codes get fewer tries */
#define JOINT_MAX_COLS 5000 /* the joint program's words (times other values), at most */
#define JOINT_MAX_NZ 2000000 /* and its non-zeros */
#define JOINT_FIRST 50 /* its branch-and-bound nodes before the labeling search */
#define JOINT_NODES 300 /* and after it, per round (rounds: the caller's) */

struct code {
	const struct kiln_plan_code *in;
	size_t L;
	unsigned mod;      /* k = 2: the largest layer's size; k >= 3: the prime p */
	size_t check;      /* k = 2: the index (in nb) of the layer holding the sum */
	size_t kd;         /* k >= 3: the code's dimension, nnb - k + 1 */
	uint32_t **sym;    /* per nb layer, per value: its symbol (UINT32_MAX: no tokens) */
	uint32_t **val;    /* per nb layer, per symbol: its value (UINT32_MAX: none) */
	size_t *eff;       /* per nb layer: values with tokens */
	uint32_t **vals;   /* per nb layer: those values, busiest first */
	uint32_t *lag;     /* k >= 3: (nnb - kd) x kd Lagrange weights mod p */
	uint32_t *other;   /* the layers not in nb */
	size_t nother;
	uint32_t **ovals;  /* per other layer: its values with tokens */
	size_t *neff;      /* per other layer: how many */
	uint32_t *rows;    /* the words, times the other layers' values */
	size_t nrows, cap;
	size_t relax;      /* SIZE_MAX, or an nb layer left free: every symbol, its value
	                      written as the busiest one, its symbol kept in rsym */
	uint32_t *rsym;    /* per row (relax): the relaxed layer's symbol */
	uint64_t work;     /* words handed to the LP so far */
	uint64_t budget;   /* at most this many (tries times WORK_PER_TRY) */
	struct kiln_plan_code_report rep; /* what was tried (in->rep) */
};

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

/* the values of a layer with tokens, by count, most first (ties: value order) */
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
static int residue_freq(const struct code *cd, double *f)
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
			for (size_t s = 0; s < cd->eff[i]; s++)
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

/* layer i's value v stands for symbol r (and the value that had r takes v's old symbol) */
static void swap_sym(struct code *cd, size_t i, uint32_t v, uint32_t r)
{
	uint32_t old = cd->sym[i][v], w = cd->val[i][r];
	cd->sym[i][v] = r;
	cd->val[i][r] = v;
	cd->val[i][old] = w;
	if (w != UINT32_MAX)
		cd->sym[i][w] = old;
}

static void set_labeling(struct code *cd, size_t i, const uint32_t *perm)
{
	for (uint32_t r = 0; r < cd->mod; r++)
		cd->val[i][r] = UINT32_MAX;
	for (size_t q = 0; q < cd->eff[i]; q++) {
		cd->sym[i][cd->vals[i][q]] = perm[q];
		cd->val[i][perm[q]] = cd->vals[i][q];
	}
}

/* the number of words (times the other layers' values), saturating at UINT64_MAX */
static uint64_t code_size(const struct code *cd)
{
	const struct kiln_plan_code *in = cd->in;
	uint64_t n = 1;
	for (size_t i = 0; i < in->nnb; i++) {
		int free_ = in->k == 2 ? i != cd->check : i < cd->kd;
		if (!free_)
			continue;
		if (n > UINT64_MAX / cd->eff[i])
			return UINT64_MAX;
		n *= cd->eff[i];
	}
	for (size_t j = 0; j < cd->nother; j++) {
		if (n > UINT64_MAX / cd->neff[j])
			return UINT64_MAX;
		n *= cd->neff[j];
	}
	return n;
}

/* every word of the code under the current labeling into cd->rows (values, L per row) */
static int enumerate(struct code *cd)
{
	const struct kiln_plan_code *in = cd->in;
	size_t nnb = in->nnb, L = cd->L;
	size_t dig[64] = {0}, odig[64] = {0}, fidx[64], nf = 0;
	uint32_t row[256], symv[64];
	cd->nrows = 0;
	for (size_t i = 0; i < nnb; i++)
		if (in->k == 2 ? i != cd->check : i < cd->kd)
			fidx[nf++] = i;
	for (;;) {
		int ok = 1;
		uint32_t rs = 0;
		for (size_t f = 0; f < nf; f++) {
			size_t i = fidx[f];
			if (i == cd->relax) {
				symv[i] = rs = (uint32_t)dig[f];
				row[in->nb[i]] = cd->vals[i][0];
				continue;
			}
			uint32_t v = cd->vals[i][dig[f]];
			symv[i] = cd->sym[i][v];
			row[in->nb[i]] = v;
		}
		if (in->k == 2) {
			uint64_t sum = 0;
			for (size_t f = 0; f < nf; f++)
				sum += symv[fidx[f]];
			uint32_t v = cd->val[cd->check][sum % cd->mod];
			if (cd->check == cd->relax) {
				rs = (uint32_t)(sum % cd->mod);
				v = cd->vals[cd->check][0];
			}
			ok = v != UINT32_MAX;
			row[in->nb[cd->check]] = v;
		} else {
			for (size_t j = cd->kd; j < nnb && ok; j++) {
				uint64_t s = 0;
				for (size_t i = 0; i < cd->kd; i++)
					s += (uint64_t)cd->lag[(j - cd->kd) * cd->kd + i] * symv[i];
				uint32_t v = cd->val[j][s % cd->mod];
				if (j == cd->relax) {
					rs = (uint32_t)(s % cd->mod);
					v = cd->vals[j][0];
				}
				ok = v != UINT32_MAX;
				row[in->nb[j]] = v;
			}
		}
		if (ok) {
			/* times every choice of the other layers' values */
			memset(odig, 0, cd->nother * sizeof *odig);
			for (;;) {
				for (size_t o = 0; o < cd->nother; o++)
					row[cd->other[o]] = cd->ovals[o][odig[o]];
				if (cd->nrows == cd->cap) {
					size_t nc = cd->cap ? cd->cap * 2 : 1024;
					uint32_t *q = kiln_reallocarray(cd->rows, nc, L * sizeof *q);
					if (!q)
						return KILN_E_NOMEM;
					cd->rows = q;
					q = kiln_reallocarray(cd->rsym, nc, sizeof *q);
					if (!q)
						return KILN_E_NOMEM;
					cd->rsym = q;
					cd->cap = nc;
				}
				memcpy(cd->rows + cd->nrows * L, row, L * sizeof *row);
				cd->rsym[cd->nrows] = rs;
				cd->nrows++;
				size_t o = cd->nother;
				while (o > 0) {
					if (++odig[o - 1] < cd->neff[o - 1])
						break;
					odig[o - 1] = 0;
					o--;
				}
				if (o == 0)
					break;
			}
		}
		size_t f = nf;
		while (f > 0) {
			size_t i = fidx[f - 1];
			if (++dig[f - 1] < (i == cd->relax ? cd->mod : cd->eff[i]))
				break;
			dig[f - 1] = 0;
			f--;
		}
		if (f == 0)
			break;
	}
	return 0;
}

/* the min_distance-1 planner's input over the words in cd->rows: the caller's (counts, rules,
 * previous plan), restricted to those words, quick (an infeasible LP proves nothing: the code
 * is this module's choice), with the shortfall and per-word values written where asked */
static struct kiln_plan_lp code_lp(const struct code *cd, double *shortfall, double *setx)
{
	struct kiln_plan_lp lp = cd->in->lp;
	lp.sets = cd->rows;
	lp.nsets = cd->nrows;
	lp.quick = 1;
	lp.init = NULL;
	lp.ninit = 0;
	lp.shortfall = shortfall;
	lp.setx = setx;
	return lp;
}

/* one labeling: the words, then the min_distance-1 planner over them. 0 (m holds a plan),
 * KILN_E_NOTFOUND with *score the LP's total shortfall, KILN_E_NOMEM */
static int try_labeling(struct code *cd, double *short_, uint32_t *m, double *score,
			struct kiln_error *e)
{
	const struct kiln_plan_code *in = cd->in;
	struct kiln_plan_lp lp;
	int rc;
	if (enumerate(cd))
		return KILN_E_NOMEM;
	cd->rep.labelings++;
	cd->work += cd->nrows;
	lp = code_lp(cd, short_, NULL);
	rc = kiln_plan_lp_solve(&lp, m, e);
	if (rc != KILN_E_NOTFOUND)
		return rc;
	*score = 0;
	for (size_t fv = 0; fv < in->lp.vbase[cd->L]; fv++)
		*score += short_[fv];
	return KILN_E_NOTFOUND;
}

/* a triplet of the joint program's matrix */
struct trip {
	int row, col;
	double v;
};

static int trip_cmp(const void *a, const void *b)
{
	const struct trip *x = a, *y = b;
	if (x->col != y->col)
		return x->col < y->col ? -1 : 1;
	return x->row < y->row ? -1 : x->row > y->row;
}

struct jp {
	struct trip *t;
	size_t n, cap;
};

static int jp_add(struct jp *j, size_t row, size_t col, double v)
{
	if (j->n == j->cap) {
		size_t nc = j->cap ? j->cap * 2 : 4096;
		struct trip *q;
		if (nc > JOINT_MAX_NZ)
			return KILN_E_NOTFOUND;
		q = kiln_reallocarray(j->t, nc, sizeof *q);
		if (!q)
			return KILN_E_NOMEM;
		j->t = q;
		j->cap = nc;
	}
	j->t[j->n++] = (struct trip){(int)row, (int)col, v};
	return 0;
}

/* the symbols a free layer i takes in the joint program: all of them, except for k = 2,
 * where a layer with fewer values than the check layer takes its first eff[i] residues (the
 * words are then the parity code of the box of the layers' sizes, which meets the Singleton
 * bound; every residue would multiply the words by (mod / eff) per layer) */
static size_t joint_syms(const struct code *cd, size_t i)
{
	return cd->in->k == 2 ? cd->eff[i] : cd->mod;
}

/* the symbols of word number w of the code in symbol space (every free layer over all mod
 * symbols), into sy (per nb layer); its other layers' value digits into od */
static void joint_word(const struct code *cd, size_t w, const size_t *fidx, size_t nf,
		       uint32_t *sy, size_t *od)
{
	const struct kiln_plan_code *in = cd->in;
	for (size_t o = cd->nother; o > 0; o--) {
		od[o - 1] = w % cd->neff[o - 1];
		w /= cd->neff[o - 1];
	}
	for (size_t f = nf; f > 0; f--) {
		size_t ns = joint_syms(cd, fidx[f - 1]);
		sy[fidx[f - 1]] = (uint32_t)(w % ns);
		w /= ns;
	}
	if (in->k == 2) {
		uint64_t sum = 0;
		for (size_t f = 0; f < nf; f++)
			sum += sy[fidx[f]];
		sy[cd->check] = (uint32_t)(sum % cd->mod);
	} else {
		for (size_t j = cd->kd; j < in->nnb; j++) {
			uint64_t t = 0;
			for (size_t i = 0; i < cd->kd; i++)
				t += (uint64_t)cd->lag[(j - cd->kd) * cd->kd + i] * sy[i];
			sy[j] = (uint32_t)(t % cd->mod);
		}
	}
}

/* The labeling and the words chosen together, by one integer program (CBC, node-limited):
 * binary x per word of the code in symbol space (times the other layers' values), binary
 * z(i, q, r) when layer i's q-th value stands for symbol r. A labeling is one-to-one, so the
 * tokens on symbol r of layer i are the count of the value standing for it: per (i, r),
 * sum of x over the words with r at i = sum_q count(q) z(i, q, r), linear. A rule's pattern
 * is broken by word w when x(w) = 1 and, in each of its layers, w's symbol stands for a value
 * of the pattern: x(w) + sum over its layers of those z <= the number of its layers. The code
 * is invariant under adding a code word, so each free layer's busiest value is put on symbol
 * 0 (and for k >= 3, under scaling: layer 0's second value on symbol 1). On success the
 * labeling is set (the caller hands it to the LP planner) and the program's own G words,
 * in their values, written to jm (G * L): 2 (1 when they do not check out: cannot happen);
 * 0 when no labeling was found (too large, node limit, or proven none: nothing about the spec,
 * only about this code), KILN_E_NOMEM as a negative. */
static int joint_labeling(struct code *cd, uint64_t nodes, uint64_t round, uint32_t *jm)
{
	const struct kiln_plan_code *in = cd->in;
	size_t nnb = in->nnb, L = cd->L, fidx[64], nf = 0, ncol = 1, nrow, nvar;
	size_t r_oth, r_sym, r_asg, r_cap, r_word, r_pat, nothc = 1, *zb = NULL, *nbi = NULL, *oi = NULL;
	size_t *qcl = NULL, *cmul = NULL, *cb = NULL, *qv = NULL, *zcl = NULL;
	uint64_t *ccnt = NULL;
	size_t od[64];
	uint32_t sy[64];
	struct jp j = {0}, pb = {0}; /* the matrix; the pattern rows' bounds */
	Cbc_Model *mdl = NULL;
	int *start = NULL, *index = NULL, ret = 0, rc;
	double *val = NULL, *clb = NULL, *cub = NULL, *obj = NULL, *rlb = NULL, *rub = NULL;

	for (size_t i = 0; i < nnb; i++)
		if (in->k == 2 ? i != cd->check : i < cd->kd)
			fidx[nf++] = i;
	for (size_t f = 0; f < nf; f++) {
		if (ncol > JOINT_MAX_COLS / joint_syms(cd, fidx[f])) {
			cd->rep.joint_big++;
			return 0;
		}
		ncol *= joint_syms(cd, fidx[f]);
	}
	for (size_t o = 0; o < cd->nother; o++) {
		if (ncol > JOINT_MAX_COLS / cd->neff[o]) {
			cd->rep.joint_big++;
			return 0;
		}
		ncol *= cd->neff[o];
		nothc *= cd->neff[o];
	}
	cd->rep.joint_rounds++;
	zb = kiln_malloc((nnb + 1) * sizeof *zb);
	nbi = kiln_malloc((L + 1) * sizeof *nbi);
	oi = kiln_malloc((L + 1) * sizeof *oi);
	if (!zb || !nbi || !oi) {
		ret = -KILN_E_NOMEM;
		goto out;
	}
	for (size_t l = 0; l < L; l++)
		nbi[l] = oi[l] = SIZE_MAX;
	for (size_t i = 0; i < nnb; i++)
		nbi[in->nb[i]] = i;
	for (size_t o = 0; o < cd->nother; o++)
		oi[cd->other[o]] = o;
	/* classes of values: a layer's values with the same count and in the same sets of every
	 * pattern are interchangeable (one integer variable per class and symbol, not per value:
	 * far fewer symmetric branches) */
	{
		size_t tot = 0;
		for (size_t i = 0; i < nnb; i++)
			tot += cd->eff[i];
		qcl = kiln_malloc((tot + 1) * sizeof *qcl);
		ccnt = kiln_malloc((tot + 1) * sizeof *ccnt);
		cmul = kiln_malloc((tot + 1) * sizeof *cmul);
		cb = kiln_malloc((nnb + 1) * sizeof *cb);
		qv = kiln_malloc((nnb + 1) * sizeof *qv);
		zcl = kiln_malloc((nnb + 1) * sizeof *zcl);
		if (!qcl || !ccnt || !cmul || !cb || !qv || !zcl) {
			ret = -KILN_E_NOMEM;
			goto out;
		}
	}
	for (size_t i = 0, qb = 0, nc = 0; i < nnb; qb += cd->eff[i], i++) {
		cb[i] = nc;
		qv[i] = qb;
		for (size_t q = 0; q < cd->eff[i]; q++) {
			uint32_t v = cd->vals[i][q];
			uint64_t cnt = in->lp.cnt[in->lp.vbase[in->nb[i]] + v];
			size_t c = cb[i];
			for (; c < nc; c++) {
				uint32_t w = UINT32_MAX; /* a member of class c */
				int same = ccnt[c] == cnt;
				for (size_t q2 = 0; q2 < q && w == UINT32_MAX; q2++)
					if (qcl[qb + q2] == c)
						w = cd->vals[i][q2];
				for (size_t t = 0; same && in->npats && t < in->pfirst[in->npats]; t++)
					if (in->pl[t].layer == in->nb[i] &&
					    in->pl[t].in[v] != in->pl[t].in[w])
						same = 0;
				if (same)
					break;
			}
			if (c == nc) {
				ccnt[nc] = cnt;
				cmul[nc++] = 0;
			}
			qcl[qb + q] = c;
			cmul[c]++;
		}
		zcl[i] = nc - cb[i];
	}
	/* columns: x (ncol), then z(i, class, r) from zb[i] */
	nvar = ncol;
	for (size_t i = 0; i < nnb; i++) {
		zb[i] = nvar;
		nvar += zcl[i] * cd->mod;
	}
	/* rows: the other layers' values, (i, r) counts, (i, q) assignments, (i, r) at most one
	 * value, then the patterns */
	r_oth = 0;
	nrow = 0;
	for (size_t o = 0; o < cd->nother; o++)
		nrow += cd->neff[o];
	r_sym = nrow;
	nrow += nnb * cd->mod;
	r_asg = nrow;
	for (size_t i = 0; i < nnb; i++)
		nrow += zcl[i];
	r_cap = nrow;
	nrow += nnb * cd->mod;
	r_word = nrow; /* with other layers: each word at most once, whatever their values */
	if (cd->nother)
		nrow += ncol / nothc;
	r_pat = nrow;
	clb = kiln_calloc(nvar + 1, sizeof *clb);
	cub = kiln_malloc((nvar + 1) * sizeof *cub);
	obj = kiln_calloc(nvar + 1, sizeof *obj);
	if (!clb || !cub || !obj) {
		ret = -KILN_E_NOMEM;
		goto out;
	}
	for (size_t c = 0; c < nvar; c++)
		cub[c] = 1;
	/* round > 0: a small cost per word drawn from the seed and the round, so that each round
	 * explores another part of the tree (feasibility has no objective of its own) */
	if (round) {
		struct kiln_rng orng;
		kiln_rng_seed(&orng, in->seed ^ (0x9e3779b97f4a7c15ULL * round), STREAM_CODE);
		for (size_t c = 0; c < ncol; c++)
			obj[c] = (double)(kiln_rng_next(&orng) >> 11) * 0x1.0p-53;
	}
	for (size_t c = 0; c < ncol; c++) {
		joint_word(cd, c, fidx, nf, sy, od);
		for (size_t o = 0, base = r_oth; o < cd->nother; base += cd->neff[o], o++)
			if ((rc = jp_add(&j, base + od[o], c, 1)))
				goto fail;
		for (size_t i = 0; i < nnb; i++)
			if ((rc = jp_add(&j, r_sym + i * cd->mod + sy[i], c, 1)))
				goto fail;
		if (cd->nother && (rc = jp_add(&j, r_word + c / nothc, c, 1)))
			goto fail;
		for (size_t p = 0; p < in->npats; p++) {
			size_t mnb = 0, q;
			for (q = in->pfirst[p]; q < in->pfirst[p + 1]; q++) {
				const struct kiln_plan_code_patl *pl = &in->pl[q];
				if (nbi[pl->layer] != SIZE_MAX)
					mnb++;
				else if (!pl->in[cd->ovals[oi[pl->layer]][od[oi[pl->layer]]]])
					break; /* an other layer's value outside the set: never broken */
			}
			if (q < in->pfirst[p + 1])
				continue;
			if (!mnb) {
				cub[c] = 0;
				continue;
			}
			if ((rc = jp_add(&j, nrow, c, 1)) ||
			    (rc = jp_add(&pb, nrow, 0, (double)mnb)))
				goto fail;
			for (q = in->pfirst[p]; q < in->pfirst[p + 1]; q++) {
				const struct kiln_plan_code_patl *pl = &in->pl[q];
				size_t i = nbi[pl->layer];
				if (i == SIZE_MAX)
					continue;
				for (size_t u = 0; u < cd->eff[i]; u++) {
					size_t cl = qcl[qv[i] + u];
					int first = 1; /* the class's first member */
					for (size_t u2 = 0; u2 < u && first; u2++)
						first = qcl[qv[i] + u2] != cl;
					if (first && pl->in[cd->vals[i][u]] &&
					    (rc = jp_add(&j, nrow,
							 zb[i] + (cl - cb[i]) * cd->mod + sy[i], 1)))
						goto fail;
				}
			}
			nrow++;
			if (nrow > (size_t)INT32_MAX / 2) {
				rc = KILN_E_NOTFOUND;
				goto fail;
			}
		}
	}
	for (size_t i = 0; i < nnb; i++)
		for (size_t c = 0; c < zcl[i]; c++)
			for (uint32_t r = 0; r < cd->mod; r++) {
				size_t z = zb[i] + c * cd->mod + r;
				double cnt = (double)ccnt[cb[i] + c];
				if ((rc = jp_add(&j, r_sym + i * cd->mod + r, z, -cnt)) ||
				    (rc = jp_add(&j, r_asg + cb[i] + c, z, 1)) ||
				    (rc = jp_add(&j, r_cap + i * cd->mod + r, z, 1)))
					goto fail;
			}
	/* symmetry: code words added (every free layer's busiest value on 0; for k = 2 when the
	 * layer takes every residue, its shift moving the check layer's), scaling (k >= 3:
	 * layer 0's second value on 1) */
	for (size_t f = 0; f < nf; f++) /* k = 2: a layer over fewer residues is not shifted */
		if (joint_syms(cd, fidx[f]) == cd->mod)
			clb[zb[fidx[f]] + (qcl[qv[fidx[f]]] - cb[fidx[f]]) * cd->mod] = 1;
	if (in->k >= 3 && cd->eff[0] >= 2 && fidx[0] == 0)
		clb[zb[0] + (qcl[qv[0] + 1] - cb[0]) * cd->mod + 1] = 1;
	qsort(j.t, j.n, sizeof *j.t, trip_cmp);
	start = kiln_malloc((nvar + 1) * sizeof *start);
	index = kiln_malloc((j.n + 1) * sizeof *index);
	val = kiln_malloc((j.n + 1) * sizeof *val);
	rlb = kiln_malloc((nrow + 1) * sizeof *rlb);
	rub = kiln_malloc((nrow + 1) * sizeof *rub);
	if (!start || !index || !val || !rlb || !rub) {
		ret = -KILN_E_NOMEM;
		goto out;
	}
	for (size_t c = 0, t = 0; c < nvar; c++) {
		start[c] = (int)t;
		while (t < j.n && (size_t)j.t[t].col == c) {
			index[t] = j.t[t].row;
			val[t] = j.t[t].v;
			t++;
		}
	}
	start[nvar] = (int)j.n;
	for (size_t o = 0, base = r_oth; o < cd->nother; base += cd->neff[o], o++)
		for (size_t q = 0; q < cd->neff[o]; q++)
			rlb[base + q] = rub[base + q] =
			    (double)in->lp.cnt[in->lp.vbase[cd->other[o]] + cd->ovals[o][q]];
	for (size_t r = r_sym; r < r_asg; r++)
		rlb[r] = rub[r] = 0;
	for (size_t r = r_asg; r < r_cap; r++)
		rlb[r] = rub[r] = (double)cmul[r - r_asg];
	for (size_t r = r_cap; r < r_pat; r++) {
		rlb[r] = 0;
		rub[r] = 1;
	}
	for (size_t r = r_word; r < r_pat; r++) {
		rlb[r] = 0;
		rub[r] = 1;
	}
	for (size_t r = r_pat; r < nrow; r++) {
		rlb[r] = -DBL_MAX;
		rub[r] = (double)pb.t[r - r_pat].v;
	}
	mdl = Cbc_newModel();
	if (!mdl) {
		ret = -KILN_E_NOMEM;
		goto out;
	}
	Cbc_loadProblem(mdl, (int)nvar, (int)nrow, start, index, val, clb, cub, obj, rlb, rub);
	for (size_t c = 0; c < nvar; c++)
		Cbc_setInteger(mdl, (int)c);
	Cbc_setLogLevel(mdl, 0);
	Cbc_setParameter(mdl, "threads", "1");
	{
		Cbc_setMaximumNodes(mdl, nodes > INT32_MAX ? INT32_MAX : (int)nodes);
	}
	Cbc_setMaximumSolutions(mdl, 1);
	Cbc_solve(mdl);
	if (!Cbc_isProvenInfeasible(mdl) && Cbc_bestSolution(mdl)) {
		const double *x = Cbc_bestSolution(mdl);
		ret = 1;
		for (size_t i = 0; i < nnb && ret; i++) {
			/* each class's symbols, lowest first, to its values in order */
			for (uint32_t r = 0; r < cd->mod; r++)
				cd->val[i][r] = UINT32_MAX;
			for (size_t q = 0; q < cd->eff[i]; q++) {
				size_t c = qcl[qv[i] + q], z = zb[i] + (c - cb[i]) * cd->mod;
				uint32_t got = UINT32_MAX;
				for (uint32_t r = 0; r < cd->mod && got == UINT32_MAX; r++)
					if (x[z + r] > 0.5 && cd->val[i][r] == UINT32_MAX)
						got = r;
				if (got == UINT32_MAX) {
					ret = 0; /* not a labeling: cannot happen */
					break;
				}
				cd->val[i][got] = cd->vals[i][q];
				cd->sym[i][cd->vals[i][q]] = got;
			}
		}
		/* the words chosen, in values; counted against the targets */
		size_t g = 0;
		for (size_t c = 0; c < ncol; c++)
			g += x[c] > 0.5;
		if (ret && g == in->lp.G) {
			ret = 2;
			g = 0;
			for (size_t c = 0; c < ncol; c++) {
				if (x[c] <= 0.5)
					continue;
				joint_word(cd, c, fidx, nf, sy, od);
				for (size_t i = 0; i < nnb; i++) {
					jm[g * L + in->nb[i]] = cd->val[i][sy[i]];
					if (cd->val[i][sy[i]] == UINT32_MAX)
						ret = 1;
				}
				for (size_t o = 0; o < cd->nother; o++)
					jm[g * L + cd->other[o]] = cd->ovals[o][od[o]];
				g++;
			}
		}
		if (ret == 2) {
			uint64_t *held = kiln_calloc(in->lp.vbase[L] + 1, sizeof *held);
			if (!held) {
				ret = -KILN_E_NOMEM;
				goto out;
			}
			for (size_t t = 0; t < in->lp.G; t++)
				for (size_t l = 0; l < L; l++)
					held[in->lp.vbase[l] + jm[t * L + l]]++;
			for (size_t v = 0; v < in->lp.vbase[L]; v++)
				if (held[v] != in->lp.cnt[v])
					ret = 1;
			free(held);
		}
	}
	goto out;
fail:
	ret = rc == KILN_E_NOMEM ? -KILN_E_NOMEM : 0;
out:
	if (mdl)
		Cbc_deleteModel(mdl);
	free(j.t);
	free(pb.t);
	free(qcl);
	free(ccnt);
	free(cmul);
	free(cb);
	free(qv);
	free(zcl);
	free(zb);
	free(nbi);
	free(oi);
	free(start);
	free(index);
	free(val);
	free(clb);
	free(cub);
	free(obj);
	free(rlb);
	free(rub);
	return ret;
}

/* a short value (drawn by its shortfall; any value when none is short): layer *li, value *v */
static void pick_short(struct code *cd, const double *short_, struct kiln_rng *rng, size_t *li,
		       uint32_t *v)
{
	const struct kiln_plan_code *in = cd->in;
	double tot = 0, x;
	for (size_t i = 0; i < in->nnb; i++)
		for (size_t q = 0; q < cd->eff[i]; q++)
			tot += short_[in->lp.vbase[in->nb[i]] + cd->vals[i][q]];
	if (tot <= 1e-9) {
		size_t n = 0, t;
		for (size_t i = 0; i < in->nnb; i++)
			n += cd->eff[i];
		t = (size_t)kiln_rng_below(rng, n);
		for (size_t i = 0; i < in->nnb; i++) {
			if (t < cd->eff[i]) {
				*li = i;
				*v = cd->vals[i][t];
				return;
			}
			t -= cd->eff[i];
		}
	}
	x = (double)(kiln_rng_next(rng) >> 11) * 0x1.0p-53 * tot;
	for (size_t i = 0; i < in->nnb; i++)
		for (size_t q = 0; q < cd->eff[i]; q++) {
			double sv = short_[in->lp.vbase[in->nb[i]] + cd->vals[i][q]];
			*li = i;
			*v = cd->vals[i][q];
			if (x < sv)
				return;
			x -= sv;
		}
}

/* Layer i relabeled from the others: the LP over the words with layer i left free (its
 * counts and the rules dropped) gives each symbol of i a mass (the LP's tokens on it); the
 * busiest values take the heaviest symbols (ties in a random order). 0, KILN_E_NOMEM. */
static int reassign(struct code *cd, size_t i, double *rcnt_x, uint64_t *rcnt, uint32_t *perm,
		    struct rfq *rf, struct kiln_rng *rng, struct kiln_error *e)
{
	const struct kiln_plan_code *in = cd->in;
	struct kiln_plan_lp lp;
	size_t l = in->nb[i], V = in->lp.vbase[cd->L];
	double *x;
	int rc;
	cd->relax = i;
	rc = enumerate(cd);
	cd->relax = SIZE_MAX;
	if (rc)
		return KILN_E_NOMEM;
	cd->work += cd->nrows;
	x = kiln_malloc((cd->nrows + 1) * sizeof *x);
	if (!x)
		return KILN_E_NOMEM;
	memcpy(rcnt, in->lp.cnt, V * sizeof *rcnt);
	for (size_t v = 0; v < cd->in->lp.s->layers[l].ntraits; v++)
		rcnt[in->lp.vbase[l] + v] = 0;
	rcnt[in->lp.vbase[l] + cd->vals[i][0]] = in->lp.G;
	lp = code_lp(cd, NULL, x);
	lp.cnt = rcnt;
	lp.forbidden = NULL;
	lp.prefer = NULL;
	lp.nprefer = 0;
	rc = kiln_plan_lp_solve(&lp, NULL, e);
	if (rc == KILN_E_NOMEM) {
		free(x);
		return rc;
	}
	for (uint32_t r = 0; r < cd->mod; r++)
		rcnt_x[r] = 0;
	for (size_t w = 0; w < cd->nrows; w++)
		rcnt_x[cd->rsym[w]] += x[w];
	free(x);
	for (uint32_t r = 0; r < cd->mod; r++)
		perm[r] = r;
	kiln_rng_shuffle(rng, perm, cd->mod, sizeof *perm);
	for (uint32_t q = 0; q < cd->mod; q++)
		rf[q] = (struct rfq){rcnt_x[perm[q]], q};
	qsort(rf, cd->mod, sizeof *rf, rfq_cmp);
	for (uint32_t q = 0; q < cd->mod; q++)
		rf[q].r = perm[rf[q].r];
	for (uint32_t q = 0; q < cd->mod; q++)
		perm[q] = rf[q].r;
	set_labeling(cd, i, perm);
	return 0;
}

/* jm's G rows into m, each previous plan's row (lp.prefer, row i for output row i) kept on
 * its row when jm holds it; the rest in jm's order */
static void prefer_order(const struct kiln_plan_code *in, const uint32_t *jm, uint32_t *m)
{
	size_t G = in->lp.G, L = in->lp.L, np = in->lp.nprefer < G ? in->lp.nprefer : G;
	unsigned char *used = kiln_calloc(G + 1, 1), *done = kiln_calloc(G + 1, 1);
	if (!used || !done) { /* no memory to keep rows: jm's order (still a plan) */
		memcpy(m, jm, G * L * sizeof *m);
		free(used);
		free(done);
		return;
	}
	for (size_t r = 0; r < np; r++) {
		const uint32_t *pr = in->lp.prefer + r * L;
		for (size_t g = 0; g < G; g++)
			if (!used[g] && !memcmp(jm + g * L, pr, L * sizeof *pr)) {
				memcpy(m + r * L, jm + g * L, L * sizeof *m);
				used[g] = done[r] = 1;
				break;
			}
	}
	for (size_t r = 0, g = 0; r < G; r++) {
		if (done[r])
			continue;
		while (used[g])
			g++;
		memcpy(m + r * L, jm + g * L, L * sizeof *m);
		used[g] = 1;
	}
	free(used);
	free(done);
}

/* the joint program, `rounds` times within `nodes` (each round another small random cost per
 * word: the time CBC takes to find a feasible point varies a lot with it, so several short
 * rounds find more than one long one); its labeling handed to the LP planner (which keeps the
 * previous plan's rows where it can), else its own words. 0 (m holds a plan),
 * KILN_E_NOTFOUND, KILN_E_NOMEM */
static int joint(struct code *cd, unsigned rounds, uint64_t nodes, double *short_, uint32_t *m,
		 double *score, struct kiln_error *e)
{
	const struct kiln_plan_code *in = cd->in;
	size_t G = in->lp.G, L = cd->L;
	uint32_t *jm = kiln_malloc((G * L + 1) * sizeof *jm);
	int jl, rc = KILN_E_NOTFOUND;
	if (!jm)
		return KILN_E_NOMEM;
	jl = 0;
	for (unsigned rd = 0; rd < rounds && !jl; rd++)
		jl = joint_labeling(cd, nodes, rd, jm);
	if (jl < 0)
		rc = KILN_E_NOMEM;
	else if (jl)
		rc = try_labeling(cd, short_, m, score, e);
	if (rc == KILN_E_NOTFOUND && jl == 2) {
		prefer_order(in, jm, m);
		rc = 0;
	}
	free(jm);
	return rc;
}

int kiln_plan_code_solve(const struct kiln_plan_code *in, uint32_t *m, struct kiln_error *e)
{
	const struct kiln_spec *s = in->lp.s;
	size_t nnb = in->nnb, L = in->lp.L, maxeff = 0, V = in->lp.vbase[L];
	struct code cd;
	struct byc *order = NULL;
	uint32_t *perm = NULL;
	struct rfq *rf = NULL;
	double *freq = NULL, *short_ = NULL, *bshort = NULL, *nshort = NULL, best = 0, score = 0;
	uint32_t tabu_v = 0, tabu_s = 0;
	size_t tabu_l = SIZE_MAX;
	uint32_t *order_l = NULL;
	uint64_t *rcnt = NULL;
	double rbest = DBL_MAX;
	struct kiln_rng rng;
	int rc = KILN_E_NOMEM;
	unsigned stall = 0;

	memset(&cd, 0, sizeof cd);
	cd.in = in;
	cd.L = L;
	cd.relax = SIZE_MAX;
	if (in->rep)
		memset(in->rep, 0, sizeof *in->rep);
	if (in->k < 2 || nnb < in->k || nnb > 64 || L > 256)
		return KILN_E_NOTFOUND;
	cd.sym = kiln_calloc(nnb, sizeof *cd.sym);
	cd.val = kiln_calloc(nnb, sizeof *cd.val);
	cd.vals = kiln_calloc(nnb, sizeof *cd.vals);
	cd.eff = kiln_calloc(nnb, sizeof *cd.eff);
	cd.other = kiln_calloc(L, sizeof *cd.other);
	cd.ovals = kiln_calloc(L, sizeof *cd.ovals);
	cd.neff = kiln_calloc(L, sizeof *cd.neff);
	short_ = kiln_malloc((V + 1) * sizeof *short_);
	bshort = kiln_malloc((V + 1) * sizeof *bshort);
	nshort = kiln_malloc((V + 1) * sizeof *nshort);
	if (!cd.sym || !cd.val || !cd.vals || !cd.eff || !cd.other || !cd.ovals ||
	    !cd.neff || !short_ || !bshort || !nshort)
		goto out;
	for (size_t l = 0, i = 0; l < L; l++) {
		if (i < nnb && in->nb[i] == l) {
			i++;
			continue;
		}
		size_t o = cd.nother++, nt = s->layers[l].ntraits;
		cd.other[o] = (uint32_t)l;
		cd.ovals[o] = kiln_malloc((nt + 1) * sizeof *cd.ovals[o]);
		if (!cd.ovals[o])
			goto out;
		for (size_t v = 0; v < nt; v++)
			if (in->lp.cnt[in->lp.vbase[l] + v])
				cd.ovals[o][cd.neff[o]++] = (uint32_t)v;
		if (!cd.neff[o]) {
			rc = KILN_E_NOTFOUND;
			goto out;
		}
	}
	if (cd.nother > 64) {
		rc = KILN_E_NOTFOUND;
		goto out;
	}
	for (size_t i = 0; i < nnb; i++) {
		size_t l = in->nb[i], nt = s->layers[l].ntraits;
		free(order);
		order = kiln_malloc((nt + 1) * sizeof *order);
		cd.vals[i] = kiln_malloc((nt + 1) * sizeof *cd.vals[i]);
		cd.sym[i] = kiln_malloc((nt + 1) * sizeof *cd.sym[i]);
		if (!order || !cd.vals[i] || !cd.sym[i])
			goto out;
		for (size_t v = 0; v < nt; v++) {
			uint64_t c = in->lp.cnt[in->lp.vbase[l] + v];
			cd.sym[i][v] = UINT32_MAX;
			if (c)
				order[cd.eff[i]++] = (struct byc){c, (uint32_t)v};
		}
		if (!cd.eff[i]) {
			rc = KILN_E_NOTFOUND;
			goto out;
		}
		qsort(order, cd.eff[i], sizeof *order, byc_cmp);
		for (size_t q = 0; q < cd.eff[i]; q++)
			cd.vals[i][q] = order[q].v;
		if (cd.eff[i] > maxeff) {
			maxeff = cd.eff[i];
			cd.check = i;
		}
	}
	if (in->k == 2) {
		cd.mod = (unsigned)maxeff;
		cd.rep.code = 2;
	} else {
		unsigned p = (unsigned)(maxeff > nnb ? maxeff : nnb);
		while (!is_prime(p))
			p++;
		cd.mod = p;
		cd.rep.code = p;
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
	if (cd.mod < 2 || cd.mod > 65536 || code_size(&cd) > KILN_PLAN_LP_MAX_SETS) {
		rc = KILN_E_NOTFOUND;
		goto out;
	}
	for (size_t i = 0; i < nnb; i++) {
		cd.val[i] = kiln_malloc(cd.mod * sizeof *cd.val[i]);
		if (!cd.val[i])
			goto out;
	}
	perm = kiln_malloc((cd.mod + 1) * sizeof *perm);
	freq = kiln_malloc((cd.mod + 1) * sizeof *freq);
	rf = kiln_malloc((cd.mod + 1) * sizeof *rf);
	order_l = kiln_malloc((nnb + 1) * sizeof *order_l);
	rcnt = kiln_malloc((V + 1) * sizeof *rcnt);
	if (!perm || !freq || !rf || !order_l || !rcnt)
		goto out;
	if (in->k == 2 && residue_freq(&cd, freq))
		goto out;
	/* the first labeling: symbols by frequency in the code, busiest value first */
	for (size_t i = 0; i < nnb; i++) {
		for (uint32_t r = 0; r < cd.mod; r++)
			perm[r] = r;
		if (in->k == 2 && i == cd.check) {
			for (uint32_t r = 0; r < cd.mod; r++)
				rf[r] = (struct rfq){freq[r], r};
			qsort(rf, cd.mod, sizeof *rf, rfq_cmp);
			for (uint32_t r = 0; r < cd.mod; r++)
				perm[r] = rf[r].r;
		}
		set_labeling(&cd, i, perm);
	}
	kiln_rng_seed(&rng, in->seed ^ (0x9e3779b97f4a7c15ULL * in->skip), STREAM_CODE);
	/* a descent: per step, a short value's symbol is swapped with each of (up to NEIGH)
	 * other symbols of its layer and the best swap is taken, even when no better than the
	 * current labeling (not the one undoing the step before); STALL steps without a new
	 * best: a random labeling */
	rc = try_labeling(&cd, short_, m, &score, e);
	if (rc != KILN_E_NOTFOUND)
		goto out;
	best = score;
	memcpy(bshort, short_, V * sizeof *bshort);
	/* the labeling and the words together, by one integer program: a few nodes now */
	if (!in->skip) {
		rc = joint(&cd, 1, JOINT_FIRST, short_, m, &score, e);
		if (rc != KILN_E_NOTFOUND)
			goto out;
	}
	/* first half: rounds of relabeling each layer from the others (reassign); a round that
	 * lowers nothing: a random labeling */
	unsigned t = 1;
	cd.budget = (uint64_t)in->tries * WORK_PER_TRY;
	while (t + 2 <= in->tries / 2 && cd.work < cd.budget / 2) {
		int better = 0;
		for (uint32_t q = 0; q < nnb; q++)
			order_l[q] = q;
		kiln_rng_shuffle(&rng, order_l, nnb, sizeof *order_l);
		for (size_t q = 0; q < nnb && t + 2 <= in->tries / 2 && cd.work < cd.budget / 2;
		     q++) {
			if ((rc = reassign(&cd, order_l[q], freq, rcnt, perm, rf, &rng, e)))
				goto out;
			rc = try_labeling(&cd, short_, m, &score, e);
			t += 2;
			if (rc != KILN_E_NOTFOUND)
				goto out;
			if (score < rbest - 1e-9) {
				rbest = score;
				better = 1;
			}
		}
		if (!better) {
			for (size_t i = 0; i < nnb; i++) {
				for (uint32_t r = 0; r < cd.mod; r++)
					perm[r] = r;
				kiln_rng_shuffle(&rng, perm, cd.mod, sizeof *perm);
				set_labeling(&cd, i, perm);
			}
			rbest = DBL_MAX;
		}
	}
	rc = try_labeling(&cd, short_, m, &score, e);
	t++;
	if (rc != KILN_E_NOTFOUND)
		goto out;
	best = score;
	memcpy(bshort, short_, V * sizeof *bshort);
	while (t < in->tries && cd.work < cd.budget) {
		size_t li = 0;
		uint32_t v = 0, old, nb_r = UINT32_MAX, cand[NEIGH];
		double nb_s = 0;
		unsigned nc = 0;
		if (stall >= STALL) {
			for (size_t i = 0; i < nnb; i++) {
				for (uint32_t r = 0; r < cd.mod; r++)
					perm[r] = r;
				kiln_rng_shuffle(&rng, perm, cd.mod, sizeof *perm);
				set_labeling(&cd, i, perm);
			}
			stall = 0;
			tabu_l = SIZE_MAX;
			rc = try_labeling(&cd, short_, m, &score, e);
			t++;
			if (rc != KILN_E_NOTFOUND)
				goto out;
			memcpy(bshort, short_, V * sizeof *bshort);
			continue;
		}
		pick_short(&cd, bshort, &rng, &li, &v);
		old = cd.sym[li][v];
		if (cd.mod - 1 <= NEIGH) {
			for (uint32_t r = 0; r < cd.mod; r++)
				if (r != old)
					cand[nc++] = r;
		} else {
			while (nc < NEIGH) {
				uint32_t r = (uint32_t)kiln_rng_below(&rng, cd.mod);
				if (r != old)
					cand[nc++] = r;
			}
		}
		for (unsigned q = 0; q < nc && t < in->tries && cd.work < cd.budget; q++) {
			uint32_t r = cand[q];
			if (li == tabu_l && ((v == tabu_v && r == tabu_s) ||
					     cd.val[li][r] == tabu_v))
				continue; /* undoes the step before */
			swap_sym(&cd, li, v, r);
			rc = try_labeling(&cd, short_, m, &score, e);
			t++;
			if (rc != KILN_E_NOTFOUND)
				goto out;
			if (nb_r == UINT32_MAX || score < nb_s - 1e-9) {
				nb_r = r;
				nb_s = score;
				memcpy(nshort, short_, V * sizeof *nshort);
			}
			swap_sym(&cd, li, v, old);
		}
		if (nb_r == UINT32_MAX)
			break;
		tabu_l = li;
		tabu_v = v;
		tabu_s = old;
		swap_sym(&cd, li, v, nb_r);
		memcpy(bshort, nshort, V * sizeof *bshort);
		if (nb_s < best - 1e-9) {
			best = nb_s;
			stall = 0;
		} else {
			stall++;
		}
	}
	/* and the rounds asked for when the labelings tried found nothing */
	if (in->rounds) {
		rc = joint(&cd, in->rounds, JOINT_NODES, short_, m, &score, e);
		if (rc != KILN_E_NOTFOUND)
			goto out;
	}
	rc = KILN_E_NOTFOUND;
out:
	if (in->rep)
		*in->rep = cd.rep;
	for (size_t i = 0; i < nnb; i++) {
		if (cd.sym)
			free(cd.sym[i]);
		if (cd.val)
			free(cd.val[i]);
		if (cd.vals)
			free(cd.vals[i]);
	}
	for (size_t o = 0; cd.ovals && o < cd.nother; o++)
		free(cd.ovals[o]);
	free(cd.sym);
	free(cd.val);
	free(cd.vals);
	free(cd.eff);
	free(cd.lag);
	free(cd.other);
	free(cd.ovals);
	free(cd.neff);
	free(cd.rows);
	free(cd.rsym);
	free(order);
	free(perm);
	free(freq);
	free(rf);
	free(order_l);
	free(rcnt);
	free(short_);
	free(bshort);
	free(nshort);
	return rc;
}
