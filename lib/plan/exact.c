/* exact.c: an integer program for small tight specs (see exact.h), solved with CBC (COIN-OR
 * branch and cut, EPL) through its C interface. Bounded by a node count, never by a clock, so
 * the answer is the same on every machine. */
#include "plan/exact.h"
#include "plan/subset.h"
#include "util/alloc.h"

#include <coin/Cbc_C_Interface.h>
#include <stdlib.h>
#include <string.h>

struct keyctx {
	const struct kiln_exact *in;
	const uint32_t *key; /* layers of the key */
	size_t nkey;
};

static int key_cmp(const void *a, const void *b, void *arg)
{
	const struct keyctx *k = arg;
	const uint32_t *ra = k->in->combos + (size_t)*(const uint32_t *)a * k->in->L;
	const uint32_t *rb = k->in->combos + (size_t)*(const uint32_t *)b * k->in->L;
	for (size_t i = 0; i < k->nkey; i++)
		if (ra[k->key[i]] != rb[k->key[i]])
			return ra[k->key[i]] < rb[k->key[i]] ? -1 : 1;
	return *(const uint32_t *)a < *(const uint32_t *)b ? -1 : *(const uint32_t *)a > *(const uint32_t *)b;
}

static int same_key(const struct keyctx *k, uint32_t a, uint32_t b)
{
	const uint32_t *ra = k->in->combos + (size_t)a * k->in->L;
	const uint32_t *rb = k->in->combos + (size_t)b * k->in->L;
	for (size_t i = 0; i < k->nkey; i++)
		if (ra[k->key[i]] != rb[k->key[i]])
			return 0;
	return 1;
}

int kiln_plan_exact(const struct kiln_exact *in, uint32_t *sel)
{
	size_t n = in->ncombo, L = in->L, V = in->vbase[L], ntab = 0, nrows = V;
	size_t d = in->k ? in->k - 1 : 0, nkey = in->nnb - d;
	uint32_t *order = NULL, *crow = NULL, key[64];
	int *start = NULL, *index = NULL;
	double *val = NULL, *clb = NULL, *cub = NULL, *obj = NULL, *rlb = NULL, *rub = NULL;
	size_t idx[64];
	int st = KILN_EXACT_NOMEM;
	Cbc_Model *m = NULL;

	if (in->k && (in->nnb < in->k || in->nnb > 64))
		return KILN_EXACT_TOOBIG;
	/* tables: every choice of d layers of nb left out */
	if (in->k) {
		uint64_t t = 1;
		for (size_t i = 1; i <= d && t <= 64; i++) /* C(nnb-d+i, i) grows with i: stop
							       * before the product can overflow */
			t = t * (in->nnb - d + i) / i;
		if (t > 64)
			return KILN_EXACT_TOOBIG;
		ntab = (size_t)t;
	}
	order = kiln_malloc((n ? n : 1) * sizeof *order);
	crow = kiln_malloc((n * (ntab ? ntab : 1) + 1) * sizeof *crow);
	if (!order || !crow)
		goto out;
	for (size_t i = 0; i < d; i++)
		idx[i] = i;
	for (size_t ti = 0; ti < ntab; ti++) {
		struct keyctx kc = {in, key, 0};
		for (size_t i = 0, j = 0; i < in->nnb; i++) {
			if (j < d && idx[j] == i) {
				j++;
				continue;
			}
			key[kc.nkey++] = in->nb[i];
		}
		for (size_t c = 0; c < n; c++)
			order[c] = (uint32_t)c;
		qsort_r(order, n, sizeof *order, key_cmp, &kc);
		for (size_t a = 0; a < n;) {
			size_t b = a + 1;
			while (b < n && same_key(&kc, order[a], order[b]))
				b++;
			for (size_t c = a; c < b; c++)
				crow[(size_t)order[c] * ntab + ti] = b - a > 1 ? (uint32_t)nrows : UINT32_MAX;
			nrows += b - a > 1;
			a = b;
		}
		if (!kiln_plan_next_subset(idx, d, in->nnb))
			break;
	}
	(void)nkey;
	if (nrows > (size_t)INT32_MAX / 2 || n * (L + ntab) > (size_t)INT32_MAX / 2) {
		st = KILN_EXACT_TOOBIG;
		goto out;
	}
	start = kiln_malloc((n + 1) * sizeof *start);
	index = kiln_malloc((n * (L + ntab) + 1) * sizeof *index);
	val = kiln_malloc((n * (L + ntab) + 1) * sizeof *val);
	clb = kiln_calloc(n + 1, sizeof *clb);
	cub = kiln_malloc((n + 1) * sizeof *cub);
	obj = kiln_calloc(n + 1, sizeof *obj);
	rlb = kiln_malloc((nrows + 1) * sizeof *rlb);
	rub = kiln_malloc((nrows + 1) * sizeof *rub);
	if (!start || !index || !val || !clb || !cub || !obj || !rlb || !rub)
		goto out;
	{
		size_t nz = 0;
		for (size_t c = 0; c < n; c++) {
			const uint32_t *row = in->combos + c * L;
			start[c] = (int)nz;
			cub[c] = 1;
			for (size_t l = 0; l < L; l++) {
				index[nz] = (int)(in->vbase[l] + row[l]);
				val[nz++] = 1;
			}
			for (size_t ti = 0; ti < ntab; ti++)
				if (crow[c * ntab + ti] != UINT32_MAX) {
					index[nz] = (int)crow[c * ntab + ti];
					val[nz++] = 1;
				}
		}
		start[n] = (int)nz;
	}
	for (size_t r = 0; r < V; r++)
		rlb[r] = rub[r] = (double)in->cnt[r];
	for (size_t r = V; r < nrows; r++) {
		rlb[r] = 0;
		rub[r] = 1;
	}
	m = Cbc_newModel();
	if (!m)
		goto out;
	Cbc_loadProblem(m, (int)n, (int)nrows, start, index, val, clb, cub, obj, rlb, rub);
	for (size_t c = 0; c < n; c++)
		Cbc_setInteger(m, (int)c);
	Cbc_setLogLevel(m, 0);
	Cbc_setParameter(m, "threads", "1"); /* one thread: the first solution must not depend on
					       * scheduling */
	Cbc_setMaximumNodes(m, in->nodes > INT32_MAX ? INT32_MAX : (int)in->nodes);
	Cbc_setMaximumSolutions(m, 1);
	Cbc_solve(m);
	st = KILN_EXACT_UNKNOWN;
	if (Cbc_isProvenInfeasible(m)) {
		st = KILN_EXACT_NONE;
	} else if (Cbc_bestSolution(m)) {
		const double *x = Cbc_bestSolution(m);
		size_t got = 0;
		uint64_t *held = kiln_calloc(V + 1, sizeof *held);
		if (!held) {
			st = KILN_EXACT_NOMEM;
			goto out;
		}
		for (size_t c = 0; c < n; c++)
			if (x[c] > 0.5) {
				if (got < in->G)
					sel[got] = (uint32_t)c;
				got++;
				for (size_t l = 0; l < L; l++)
					held[in->vbase[l] + in->combos[c * L + l]]++;
			}
		st = got == in->G ? KILN_EXACT_FOUND : KILN_EXACT_UNKNOWN;
		for (size_t r = 0; r < V && st == KILN_EXACT_FOUND; r++)
			if (held[r] != in->cnt[r])
				st = KILN_EXACT_UNKNOWN;
		free(held);
	}
out:
	if (m)
		Cbc_deleteModel(m);
	free(order);
	free(crow);
	free(start);
	free(index);
	free(val);
	free(clb);
	free(cub);
	free(obj);
	free(rlb);
	free(rub);
	return st;
}
