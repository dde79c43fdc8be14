/* lp.c: the exact planner for min_distance <= 1. Rules only remove trait sets, so a plan is a
 * choice of x_c tokens per allowed trait set c (one value per layer) such that every value's
 * tokens add up to its target: one equality row per value with tokens, x_c in {0, 1} when
 * tokens must differ (min_distance 1), x_c in {0 .. G} when repeats are allowed (0). Layers
 * with bypass_dna do not count for uniqueness: two tokens may share the other layers when they
 * differ in a bypass layer, so then x_c has no bound of its own but every group of trait sets
 * with the same non-bypass part gets a row "at most 1".
 *
 * How. The allowed trait sets are enumerated (at most KILN_PLAN_LP_MAX_SETS, in lexicographic
 * order of the layers' values, so that the model and the plan do not depend on anything but
 * the spec). The linear relaxation is solved with CLP (dual simplex). Infeasible: the same
 * rows as "<=" with max sum x give a bound N < G on the number of tokens the quotas allow,
 * which the LP's dual weights certify; per value short in that optimum, max x(value) gives the
 * largest count the other quotas leave it. Feasible: the vertex solution's integral part is
 * kept, its fractional rest (a few dozen trait sets) is placed by a small integer program
 * (CBC, a node limit times the effort, never a time limit), then, if that fails, the whole
 * integer program within the node limit. The result is checked in integers before use.
 *
 * Why CLP with column generation: measured on the 8,000-token 6-layer table of test_plan_lp
 * (9 values a layer, 531,441 sets), the column-generated LP (3 pricing rounds, ~39,000 sets)
 * and the rounding took a few seconds, while CLP's dual and primal simplex over all 531,441
 * columns did not finish in 5 minutes (2 shared cores, loaded). CBC is used only for the
 * small integer programs; its root LP would be the same CLP solve. See docs/planner.md.
 */
#include "plan/lp.h"
#include "kiln/plan.h"
#include "util/alloc.h"
#include "util/text.h"

#include <coin/Cbc_C_Interface.h>
#include <coin/Clp_C_Interface.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EPS 1e-6
#define IP_NODES 2000        /* node limit of an integer program, times the effort */
#define FULL_IP_MAX 20000    /* sets in an integer program, at most */
#define DIVE_MAX 400000      /* sets in a residual LP, at most */
#define DIVES 30             /* residual LPs, at most */

struct model {
	size_t n;          /* allowed trait sets */
	size_t L;
	uint32_t *sets;    /* n * L trait indexes, lexicographic */
	int *rowof;        /* per flat value: its equality row, or -1 (no tokens) */
	size_t nvrows;     /* value rows */
	size_t nrows;      /* + group rows */
	int *grp;          /* per set: its group row or -1 */
	double *obj;       /* per set: -1 for a preferred set */
};

static unsigned long long ull(uint64_t x)
{
	return (unsigned long long)x;
}

uint64_t kiln_plan_lp_space(const struct kiln_plan_lp *p)
{
	uint64_t sp = 1;
	for (size_t l = 0; l < p->L; l++) {
		uint64_t n = 0;
		for (size_t v = 0; v < p->s->layers[l].ntraits; v++)
			n += p->cnt[p->vbase[l] + v] != 0;
		if (n && sp > UINT64_MAX / n)
			return UINT64_MAX;
		sp *= n;
	}
	return sp;
}

static int nb_cmp(const void *a, const void *b, void *arg)
{
	const struct kiln_plan_lp *p = ((const void *const *)arg)[0];
	const uint32_t *sets = ((const void *const *)arg)[1];
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	for (size_t l = 0; l < p->L; l++) {
		if (p->s->layers[l].bypass_dna)
			continue;
		uint32_t u = sets[x * p->L + l], w = sets[y * p->L + l];
		if (u != w)
			return u < w ? -1 : 1;
	}
	return x < y ? -1 : x > y;
}

static int same_nb(const struct kiln_plan_lp *p, const uint32_t *sets, size_t x, size_t y)
{
	for (size_t l = 0; l < p->L; l++)
		if (!p->s->layers[l].bypass_dna && sets[x * p->L + l] != sets[y * p->L + l])
			return 0;
	return 1;
}

static int row_cmp(const uint32_t *a, const uint32_t *b, size_t L)
{
	for (size_t l = 0; l < L; l++)
		if (a[l] != b[l])
			return a[l] < b[l] ? -1 : 1;
	return 0;
}

/* index of a full row among the sets, or -1 */
static long find_set(const struct model *md, const uint32_t *row)
{
	size_t lo = 0, hi = md->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = row_cmp(md->sets + mid * md->L, row, md->L);
		if (!c)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static void model_free(struct model *md)
{
	free(md->sets);
	free(md->rowof);
	free(md->grp);
	free(md->obj);
	memset(md, 0, sizeof *md);
}

static int set_cmp(const void *a, const void *b, void *arg)
{
	return row_cmp(a, b, *(const size_t *)arg);
}

/* the caller's sets (p->sets) whose values all have tokens and that no rule forbids, sorted
 * and without repeats (md->rowof is set) */
static int given_sets(const struct kiln_plan_lp *p, struct model *md)
{
	size_t L = p->L, n = 0;
	md->sets = kiln_malloc((p->nsets ? p->nsets : 1) * (L ? L : 1) * sizeof *md->sets);
	if (!md->sets)
		return KILN_E_NOMEM;
	for (size_t i = 0; i < p->nsets; i++) {
		const uint32_t *row = p->sets + i * L;
		int ok = 1;
		for (size_t l = 0; l < L && ok; l++)
			ok = row[l] < p->s->layers[l].ntraits && md->rowof[p->vbase[l] + row[l]] >= 0;
		if (!ok || (p->forbidden && p->forbidden(p->arg, row)))
			continue;
		memcpy(md->sets + n * L, row, L * sizeof *row);
		n++;
	}
	if (n > 1) {
		size_t w = 1;
		qsort_r(md->sets, n, L * sizeof *md->sets, set_cmp, &L);
		for (size_t i = 1; i < n; i++)
			if (row_cmp(md->sets + i * L, md->sets + (w - 1) * L, L))
				memmove(md->sets + w++ * L, md->sets + i * L, L * sizeof *md->sets);
		n = w;
	}
	md->n = n;
	return 0;
}

/* enumerate the allowed sets, number the rows */
static int model_make(const struct kiln_plan_lp *p, struct model *md)
{
	size_t L = p->L, V = p->vbase[L], cap = 0;
	uint32_t **vals = NULL;
	size_t *nv = NULL, *dig = NULL;
	uint32_t *row = NULL;
	int rc = KILN_E_NOMEM, bypass = 0;

	memset(md, 0, sizeof *md);
	md->L = L;
	md->rowof = kiln_malloc((V ? V : 1) * sizeof *md->rowof);
	vals = kiln_calloc(L ? L : 1, sizeof *vals);
	nv = kiln_calloc(L ? L : 1, sizeof *nv);
	dig = kiln_calloc(L ? L : 1, sizeof *dig);
	row = kiln_calloc(L ? L : 1, sizeof *row);
	if (!md->rowof || !vals || !nv || !dig || !row)
		goto out;
	for (size_t fv = 0; fv < V; fv++)
		md->rowof[fv] = -1;
	for (size_t l = 0; l < L; l++) {
		size_t nt = p->s->layers[l].ntraits;
		bypass |= p->s->layers[l].bypass_dna;
		vals[l] = kiln_malloc((nt ? nt : 1) * sizeof **vals);
		if (!vals[l])
			goto out;
		for (size_t v = 0; v < nt; v++) {
			size_t fv = p->vbase[l] + v;
			md->rowof[fv] = -1;
			if (p->cnt[fv]) {
				md->rowof[fv] = (int)md->nvrows++;
				vals[l][nv[l]++] = (uint32_t)v;
			}
		}
		if (!nv[l]) {
			rc = 0; /* no tokens at all */
			goto out;
		}
	}
	if (p->sets) {
		rc = given_sets(p, md);
		if (rc)
			goto out;
		goto numbered;
	}
	for (;;) {
		for (size_t l = 0; l < L; l++)
			row[l] = vals[l][dig[l]];
		if (!p->forbidden || !p->forbidden(p->arg, row)) {
			if (md->n == cap) {
				size_t nc = cap ? cap * 2 : 1024;
				uint32_t *q = kiln_reallocarray(md->sets, nc, L * sizeof *q);
				if (!q)
					goto out;
				md->sets = q;
				cap = nc;
			}
			memcpy(md->sets + md->n * L, row, L * sizeof *row);
			md->n++;
		}
		size_t l = L;
		while (l > 0) {
			if (++dig[l - 1] < nv[l - 1])
				break;
			dig[l - 1] = 0;
			l--;
		}
		if (l == 0)
			break;
	}
numbered:
	rc = KILN_E_NOMEM;
	md->nrows = md->nvrows;
	md->grp = kiln_malloc((md->n ? md->n : 1) * sizeof *md->grp);
	md->obj = kiln_calloc(md->n ? md->n : 1, sizeof *md->obj);
	if (!md->grp || !md->obj)
		goto out;
	for (size_t c = 0; c < md->n; c++)
		md->grp[c] = -1;
	if (p->k >= 1 && bypass && md->n) {
		/* sets sharing their non-bypass part: one row "at most 1" per group of 2 or more */
		size_t *ord = kiln_malloc(md->n * sizeof *ord);
		const void *arg[2] = {p, md->sets};
		if (!ord)
			goto out;
		for (size_t c = 0; c < md->n; c++)
			ord[c] = c;
		qsort_r(ord, md->n, sizeof *ord, nb_cmp, (void *)arg);
		for (size_t i = 0; i < md->n;) {
			size_t j = i + 1;
			while (j < md->n && same_nb(p, md->sets, ord[i], ord[j]))
				j++;
			if (j - i >= 2) {
				for (size_t q = i; q < j; q++)
					md->grp[ord[q]] = (int)md->nrows;
				md->nrows++;
			}
			i = j;
		}
		free(ord);
	}
	for (size_t i = 0; i < p->nprefer; i++) {
		long c = find_set(md, p->prefer + i * L);
		if (c >= 0)
			md->obj[c] = -1.0;
	}
	rc = 0;
out:
	for (size_t l = 0; vals && l < L; l++)
		free(vals[l]);
	free(vals);
	free(nv);
	free(dig);
	free(row);
	return rc;
}

/* the constraint matrix over the columns cols[0..nc) (all when cols is NULL) */
struct csc {
	int *start, *index;
	double *value;
};

static void csc_free(struct csc *a)
{
	free(a->start);
	free(a->index);
	free(a->value);
	a->start = a->index = NULL;
	a->value = NULL;
}

static int csc_make(const struct kiln_plan_lp *p, const struct model *md, const size_t *cols,
		    size_t nc, struct csc *a)
{
	size_t L = md->L, nnz = 0;
	a->start = kiln_malloc((nc + 1) * sizeof *a->start);
	a->index = kiln_malloc((nc * (L + 1) + 1) * sizeof *a->index);
	a->value = kiln_malloc((nc * (L + 1) + 1) * sizeof *a->value);
	if (!a->start || !a->index || !a->value) {
		csc_free(a);
		return KILN_E_NOMEM;
	}
	for (size_t i = 0; i < nc; i++) {
		size_t c = cols ? cols[i] : i;
		a->start[i] = (int)nnz;
		for (size_t l = 0; l < L; l++) {
			a->index[nnz] = md->rowof[p->vbase[l] + md->sets[c * L + l]];
			a->value[nnz++] = 1.0;
		}
		if (md->grp[c] >= 0) {
			a->index[nnz] = md->grp[c];
			a->value[nnz++] = 1.0;
		}
	}
	a->start[nc] = (int)nnz;
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* column generation: the LP over every allowed set, solved over a growing subset of them */

#define CG_ADD 2000   /* sets added per pricing round, at most */
#define CG_ROUNDS 400 /* pricing rounds, at most (then: not found) */

struct cand {
	double d;
	size_t c;
};

struct cg {
	Clp_Simplex *lp;
	size_t nfix;          /* LP columns before the sets: a dummy, then artificials */
	size_t *col;          /* LP column nfix + i -> set */
	size_t ncol, cap;
	unsigned char *in;    /* per set: in the LP */
	struct cand *cand;    /* per set: scratch */
};

static void cg_free(struct cg *g)
{
	if (g->lp)
		Clp_deleteModel(g->lp);
	free(g->col);
	free(g->in);
	free(g->cand);
	memset(g, 0, sizeof *g);
}

/* ties (frequent: the duals take few values) broken by a hash of the set, so that the sets
 * added are spread over the space rather than its lexicographic start */
static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	uint64_t hx, hy;
	if (x->d != y->d)
		return x->d < y->d ? -1 : 1;
	hx = mix(x->c);
	hy = mix(y->c);
	if (hx != hy)
		return hx < hy ? -1 : 1;
	return x->c < y->c ? -1 : x->c > y->c;
}

/* rows [rlo, rup]; art: one artificial column (cost 1) per value row */
static int cg_init(const struct kiln_plan_lp *p, const struct model *md, struct cg *g,
		   const double *rlo, const double *rup, int art)
{
	size_t na = art ? md->nvrows : 0, nc = 1 + na;
	int *start = kiln_malloc((nc + 1) * sizeof *start);
	int *index = kiln_malloc((na + 1) * sizeof *index);
	double *value = kiln_malloc((na + 1) * sizeof *value);
	double *lo = kiln_calloc(nc, sizeof *lo);
	double *up = kiln_malloc(nc * sizeof *up);
	double *obj = kiln_malloc(nc * sizeof *obj);
	int rc = KILN_E_NOMEM;

	(void)p;
	memset(g, 0, sizeof *g);
	g->in = kiln_calloc(md->n + 1, 1);
	g->cand = kiln_malloc((md->n + 1) * sizeof *g->cand);
	if (!start || !index || !value || !lo || !up || !obj || !g->in || !g->cand)
		goto out;
	start[0] = 0;
	start[1] = 0;
	up[0] = 0.0;
	obj[0] = 0.0;
	for (size_t r = 0; r < na; r++) {
		index[r] = (int)r;
		value[r] = 1.0;
		start[r + 2] = (int)r + 1;
		up[r + 1] = DBL_MAX;
		obj[r + 1] = 1.0;
	}
	g->lp = Clp_newModel();
	if (!g->lp)
		goto out;
	Clp_setLogLevel(g->lp, 0);
	Clp_loadProblem(g->lp, (int)nc, (int)md->nrows, start, index, value, lo, up, obj, rlo,
			rup);
	g->nfix = nc;
	rc = 0;
out:
	free(start);
	free(index);
	free(value);
	free(lo);
	free(up);
	free(obj);
	return rc;
}

/* add the sets cand[0..n) to the LP */
static int cg_add(const struct kiln_plan_lp *p, const struct model *md, struct cg *g, size_t n,
		  const double *cost, double ub)
{
	struct csc a = {0};
	size_t *sets = kiln_malloc((n + 1) * sizeof *sets);
	double *lo = kiln_calloc(n + 1, sizeof *lo), *up = kiln_malloc((n + 1) * sizeof *up);
	double *obj = kiln_malloc((n + 1) * sizeof *obj);
	int rc = KILN_E_NOMEM;
	if (!sets || !lo || !up || !obj)
		goto out;
	if (g->ncol + n > g->cap) {
		size_t nc = (g->ncol + n) * 2;
		size_t *q = kiln_reallocarray(g->col, nc, sizeof *q);
		if (!q)
			goto out;
		g->col = q;
		g->cap = nc;
	}
	for (size_t i = 0; i < n; i++) {
		sets[i] = g->cand[i].c;
		up[i] = ub;
		obj[i] = cost[sets[i]];
	}
	if (csc_make(p, md, sets, n, &a))
		goto out;
	Clp_addColumns(g->lp, (int)n, lo, up, obj, a.start, a.index, a.value);
	for (size_t i = 0; i < n; i++) {
		g->col[g->ncol++] = sets[i];
		g->in[sets[i]] = 1;
	}
	rc = 0;
out:
	csc_free(&a);
	free(sets);
	free(lo);
	free(up);
	free(obj);
	return rc;
}

/* Solve the LP over every set with objective cost[] (per set), adding the sets whose reduced
 * cost is negative until none is. 0, KILN_E_NOTFOUND (the solver stopped), KILN_E_NOMEM. */
static int cg_run(const struct kiln_plan_lp *p, const struct model *md, struct cg *g,
		  const double *cost, double ub)
{
	size_t L = md->L;
	for (int round = 0; round <= CG_ROUNDS; round++) {
		const double *y;
		size_t nc = 0;
		Clp_primal(g->lp, 0);
		if (Clp_status(g->lp) != 0)
			return KILN_E_NOTFOUND;
		y = Clp_dualRowSolution(g->lp);
		for (size_t c = 0; c < md->n; c++) {
			if (g->in[c])
				continue;
			double d = cost[c];
			for (size_t l = 0; l < L; l++)
				d -= y[md->rowof[p->vbase[l] + md->sets[c * L + l]]];
			if (md->grp[c] >= 0)
				d -= y[md->grp[c]];
			if (d < -1e-9)
				g->cand[nc++] = (struct cand){d, c};
		}
		if (!nc)
			return 0;
		if (round == CG_ROUNDS)
			return KILN_E_NOTFOUND;
		size_t add = CG_ADD > 2 * p->G ? CG_ADD : 2 * p->G;
		if (nc > add) {
			qsort(g->cand, nc, sizeof *g->cand, cand_cmp);
			nc = add;
		}
		if (cg_add(p, md, g, nc, cost, ub))
			return KILN_E_NOMEM;
	}
	return KILN_E_NOTFOUND;
}

/* ---------------------------------------------------------------------------------------- */
/* the proof */

struct deficit {
	size_t fv, l, v;
	double d;
};

static int def_cmp(const void *a, const void *b)
{
	const struct deficit *x = a, *y = b;
	if (x->d != y->d)
		return x->d > y->d ? -1 : 1;
	return x->fv < y->fv ? -1 : x->fv > y->fv;
}

/* The bound's dual weights as a check a person can redo: weigh each value; a token weighs the
 * sum of its values' weights; the counts fix the tokens' total weight, but distinct allowed
 * trait sets, each taken at most once, weigh at most the sum of the positive ones. Stated only
 * when that holds in exact integers for the weights as printed (the duals of the phase-1 LP,
 * y <= 1, made integral by a small denominator), with at most HAND_MAX weights, distinct
 * tokens (ub 1) and no bypass groups; otherwise the bound above stands alone. */
#define HAND_MAX 12

static void fraction(char *out, size_t n, long long num, long long den)
{
	if (num % den == 0)
		snprintf(out, n, "%lld", num / den);
	else
		snprintf(out, n, "%lld/%lld", num, den);
}

static void hand_check(const struct kiln_plan_lp *p, const struct model *md, struct cg *g,
		       double ub, char *msg, size_t cap)
{
	static const long long dens[] = {1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 24, 30, 60};
	const double *y = Clp_dualRowSolution(g->lp);
	size_t L = md->L, nz = 0;
	long long D = 0, A = 0, B = 0;
	long long *Y;
	char part[160], f[48];

	if (ub != 1.0 || md->nrows != md->nvrows || !md->nvrows)
		return;
	for (size_t i = 0; i < sizeof dens / sizeof dens[0] && !D; i++) {
		size_t r = 0;
		for (; r < md->nvrows; r++) {
			double t = y[r] * (double)dens[i];
			if (fabs(t - nearbyint(t)) > 1e-7 || fabs(t) > 1e6)
				break;
		}
		if (r == md->nvrows)
			D = dens[i];
	}
	if (!D)
		return;
	Y = kiln_calloc(md->nvrows, sizeof *Y);
	if (!Y)
		return;
	for (size_t r = 0; r < md->nvrows; r++) {
		Y[r] = (long long)nearbyint(y[r] * (double)D);
		nz += Y[r] != 0;
	}
	for (size_t l = 0; l < L; l++)
		for (size_t v = 0; v < p->s->layers[l].ntraits; v++) {
			int r = md->rowof[p->vbase[l] + v];
			if (r >= 0)
				A += Y[r] * (long long)p->cnt[p->vbase[l] + v];
		}
	for (size_t c = 0; c < md->n; c++) {
		long long w = 0;
		for (size_t l = 0; l < L; l++)
			w += Y[md->rowof[p->vbase[l] + md->sets[c * L + l]]];
		if (w > 0)
			B += w;
	}
	if (nz == 0 || nz > HAND_MAX || A <= B)
		goto out;
	kiln_text_append(msg, cap, "; to check it by hand, give the values these weights: ");
	for (size_t l = 0, k = 0; l < L; l++)
		for (size_t v = 0; v < p->s->layers[l].ntraits; v++) {
			int r = md->rowof[p->vbase[l] + v];
			if (r < 0 || !Y[r])
				continue;
			fraction(f, sizeof f, Y[r], D);
			snprintf(part, sizeof part, "%s%s=%s %s", k++ ? ", " : "",
				 p->s->layers[l].name, p->s->layers[l].traits[v].name, f);
			kiln_text_append(msg, cap, "%s", part);
		}
	fraction(f, sizeof f, A, D);
	kiln_text_append(msg, cap, " (every other value 0), and each token the sum of its "
	    "values' weights: the counts make the tokens weigh %s in all", f);
	fraction(f, sizeof f, B, D);
	kiln_text_append(msg, cap, ", but the distinct trait sets the rules allow over the values "
	    "with tokens, each taken at most once, weigh at most %s in all (the sum of the "
	    "positive ones)", f);
out:
	free(Y);
}

/* The equality LP is infeasible: its phase 1 (g) minimised the artificials, whose sum is
 * L * (G - the most tokens the quotas allow). State that bound and, per value short in that
 * optimum, the most it can have with the other counts. */
static int prove(const struct kiln_plan_lp *p, const struct model *md, struct cg *g,
		 const double *rup, double ub, struct kiln_error *e)
{
	size_t n = md->n, L = md->L;
	double *cost = kiln_malloc((n + 1) * sizeof *cost);
	double *rlo = kiln_calloc(md->nrows + 1, sizeof *rlo);
	struct deficit *df = kiln_calloc(md->nvrows + 1, sizeof *df);
	char msg[sizeof e->msg], where[600];
	size_t ndf = 0;
	int rc;

	if (!cost || !rlo || !df) {
		rc = KILN_E_NOMEM;
		goto out;
	}
	double best = (double)p->G - Clp_objectiveValue(g->lp) / (double)L;
	uint64_t N = best < 0 ? 0 : (uint64_t)floor(best + EPS);
	if (N >= p->G) {
		rc = KILN_E_NOTFOUND; /* numerically too close to call */
		goto out;
	}
	const double *x = Clp_getColSolution(g->lp);
	for (size_t l = 0; l < L; l++)
		for (size_t v = 0; v < p->s->layers[l].ntraits; v++) {
			size_t fv = p->vbase[l] + v;
			int r = md->rowof[fv];
			if (r < 0 || x[1 + (size_t)r] < 0.5)
				continue;
			df[ndf++] = (struct deficit){fv, l, v, x[1 + (size_t)r]};
		}
	qsort(df, ndf, sizeof *df, def_cmp);
	msg[0] = 0;
	kiln_text_append(msg, sizeof msg,
	    "the counts cannot all be met%s: a linear-programming bound (the rules and every "
	    "value's count, weighed by the bound's dual weights) shows that they allow at most "
	    "%llu %stokens, but there are %llu generated tokens",
	    p->k ? " with every token different" : "", ull(N), p->k ? "distinct " : "",
	    ull(p->G));
	kiln_spec_where(p->s, (struct kiln_loc){0, 0}, where, sizeof where);
	hand_check(p, md, g, ub, msg, sizeof msg);
	/* per value short in that optimum: the most it can have with the others' counts */
	size_t shown = 0;
	for (size_t i = 0; i < ndf && i < 6 && shown < 3; i++) {
		struct cg g2;
		size_t fv = df[i].fv;
		const struct kiln_layer *ly = &p->s->layers[df[i].l];
		for (size_t c = 0; c < n; c++)
			cost[c] = md->sets[c * L + df[i].l] == df[i].v ? -1.0 : 0.0;
		if (cg_init(p, md, &g2, rlo, rup, 0)) {
			cg_free(&g2);
			rc = KILN_E_NOMEM;
			goto out;
		}
		rc = cg_run(p, md, &g2, cost, ub);
		double got = -Clp_objectiveValue(g2.lp);
		cg_free(&g2);
		if (rc == KILN_E_NOMEM)
			goto out;
		if (rc)
			continue;
		uint64_t M = (uint64_t)floor(got + EPS);
		if (M >= p->cnt[fv])
			continue;
		if (!shown++)
			kiln_spec_where(p->s, ly->traits[df[i].v].loc, where, sizeof where);
		kiln_text_append(msg, sizeof msg,
		    "; %s=%s can have at most %llu tokens, not %llu: the rules and the other values' "
		    "counts leave only %llu %strait sets for it",
		    ly->name, ly->traits[df[i].v].name, ull(M), ull(p->cnt[fv]), ull(M),
		    p->k ? "distinct " : "");
	}
	if (!shown)
		kiln_text_append(msg, sizeof msg, "; lower size to %llu or loosen the counts and rules", ull(N));
	else
		kiln_text_append(msg, sizeof msg, "; lower those counts, add values or loosen the rules");
	rc = kiln_error_set(e, KILN_E_INFEASIBLE, where, "%s", msg);
out:
	free(cost);
	free(rlo);
	free(df);
	return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* integer program over cols[0..nc) with residual rows; adds its solution to mult */

static int ip_solve(const struct kiln_plan_lp *p, const struct model *md, const size_t *cols,
		    size_t nc, const double *ub, const double *rlo, const double *rup,
		    uint64_t *mult)
{
	struct csc a = {0};
	double *clo = kiln_calloc(nc ? nc : 1, sizeof *clo);
	double *cub = kiln_malloc((nc ? nc : 1) * sizeof *cub);
	double *obj = kiln_malloc((nc ? nc : 1) * sizeof *obj);
	Cbc_Model *ip = NULL;
	int rc = KILN_E_NOMEM;

	if (!clo || !cub || !obj || csc_make(p, md, cols, nc, &a))
		goto out;
	for (size_t i = 0; i < nc; i++) {
		cub[i] = ub[i];
		obj[i] = md->obj[cols[i]];
	}
	ip = Cbc_newModel();
	if (!ip)
		goto out;
	Cbc_setLogLevel(ip, 0);
	Cbc_loadProblem(ip, (int)nc, (int)md->nrows, a.start, a.index, a.value, clo, cub, obj,
			rlo, rup);
	for (size_t i = 0; i < nc; i++)
		Cbc_setInteger(ip, (int)i);
	/* quick (a restriction of the caller's, one of several it tries): a tenth of the nodes */
	Cbc_setMaximumNodes(ip, (int)(IP_NODES / (p->quick ? 10 : 1) * (p->effort ? p->effort : 1)));
	Cbc_setParameter(ip, "threads", "1");
	Cbc_solve(ip);
	const double *x = Cbc_bestSolution(ip);
	rc = KILN_E_NOTFOUND;
	if (!x)
		goto out;
	for (size_t i = 0; i < nc; i++)
		mult[cols[i]] += (uint64_t)llround(x[i] > 0 ? x[i] : 0);
	rc = 0;
out:
	if (ip)
		Cbc_deleteModel(ip);
	csc_free(&a);
	free(clo);
	free(cub);
	free(obj);
	return rc;
}

/* take a set into mult[] and out of the residual rows */
static void take(const struct kiln_plan_lp *p, const struct model *md, size_t c, uint64_t k,
		 uint64_t *mult, double *rl, double *ru)
{
	mult[c] += k;
	for (size_t l = 0; l < md->L; l++) {
		int r = md->rowof[p->vbase[l] + md->sets[c * md->L + l]];
		rl[r] -= (double)k;
		ru[r] -= (double)k;
	}
	if (md->grp[c] >= 0)
		ru[md->grp[c]] -= (double)k;
}

/* one step of the dive: the LP over cols with the residual rows; its integral part (or, when
 * there is none, its largest value rounded up) is taken */
static int dive_step(const struct kiln_plan_lp *p, const struct model *md, const size_t *cols,
		     size_t nc, const double *ub, double *rl, double *ru, uint64_t *mult)
{
	struct csc a = {0};
	double *clo = kiln_calloc(nc + 1, sizeof *clo), *obj = kiln_malloc((nc + 1) * sizeof *obj);
	Clp_Simplex *lp = NULL;
	int rc = KILN_E_NOMEM;
	if (!clo || !obj || csc_make(p, md, cols, nc, &a))
		goto out;
	for (size_t i = 0; i < nc; i++)
		obj[i] = md->obj[cols[i]];
	lp = Clp_newModel();
	if (!lp)
		goto out;
	Clp_setLogLevel(lp, 0);
	Clp_loadProblem(lp, (int)nc, (int)md->nrows, a.start, a.index, a.value, clo, ub, obj, rl,
			ru);
	Clp_primal(lp, 0);
	rc = KILN_E_NOTFOUND;
	if (Clp_status(lp) != 0)
		goto out;
	const double *x = Clp_getColSolution(lp);
	size_t took = 0, big = 0;
	for (size_t i = 0; i < nc; i++) {
		uint64_t k = (uint64_t)floor((x[i] > 0 ? x[i] : 0) + EPS);
		if (k) {
			take(p, md, cols[i], k, mult, rl, ru);
			took++;
		}
		if (x[i] > x[big])
			big = i;
	}
	if (!took) {
		if (x[big] <= EPS)
			goto out;
		take(p, md, cols[big], 1, mult, rl, ru);
	}
	rc = 0;
out:
	if (lp)
		Clp_deleteModel(lp);
	csc_free(&a);
	free(clo);
	free(obj);
	return rc;
}

/* every count exact, every group at most 1: checked in integers */
static int check_mult(const struct kiln_plan_lp *p, const struct model *md, const uint64_t *mult)
{
	uint64_t *got = kiln_calloc(md->nrows ? md->nrows : 1, sizeof *got);
	int ok = 1;
	if (!got)
		return -1;
	for (size_t c = 0; c < md->n; c++) {
		if (!mult[c])
			continue;
		if (p->k >= 1 && mult[c] > 1)
			ok = 0;
		for (size_t l = 0; l < md->L; l++)
			got[md->rowof[p->vbase[l] + md->sets[c * md->L + l]]] += mult[c];
		if (md->grp[c] >= 0)
			got[md->grp[c]] += mult[c];
	}
	for (size_t l = 0; l < md->L && ok; l++)
		for (size_t v = 0; v < p->s->layers[l].ntraits && ok; v++) {
			int r = md->rowof[p->vbase[l] + v];
			if (r >= 0 && got[r] != p->cnt[p->vbase[l] + v])
				ok = 0;
		}
	for (size_t r = md->nvrows; r < md->nrows && ok; r++)
		ok = got[r] <= 1;
	free(got);
	return ok;
}

/* p->setx: the LP's value of each given set. KILN_E_NOTFOUND, KILN_E_NOMEM */
static int given_values(const struct kiln_plan_lp *p, const struct model *md, const struct cg *g)
{
	const double *x = Clp_getColSolution(g->lp);
	double *xs = kiln_calloc(md->n + 1, sizeof *xs);
	if (!xs)
		return KILN_E_NOMEM;
	for (size_t j = 0; j < g->ncol; j++)
		xs[g->col[j]] = x[g->nfix + j] > 0 ? x[g->nfix + j] : 0.0;
	for (size_t i = 0; i < p->nsets; i++) {
		long c = find_set(md, p->sets + i * p->L);
		p->setx[i] = c >= 0 ? xs[c] : 0.0;
	}
	free(xs);
	return KILN_E_NOTFOUND;
}

int kiln_plan_lp_solve(const struct kiln_plan_lp *p, uint32_t *m, struct kiln_error *e)
{
	struct model md;
	struct cg g = {0};
	size_t n, R, L = p->L;
	double *rlo = NULL, *rup = NULL, *zero = NULL, ub;
	uint64_t *mult = NULL;
	size_t *cols = NULL;
	unsigned char *done = NULL;
	int rc;

	memset(&md, 0, sizeof md);
	if (p->shortfall)
		for (size_t fv = 0; fv < p->vbase[L]; fv++)
			p->shortfall[fv] = 0.0;
	for (size_t i = 0; p->setx && i < p->nsets; i++)
		p->setx[i] = 0.0;
	if (!p->G || !L)
		return 0;
	if ((rc = model_make(p, &md)))
		goto nomem;
	n = md.n;
	R = md.nrows;
	if (!n) { /* a layer without tokens, or no given set left: nothing to place */
		for (size_t fv = 0; p->shortfall && fv < p->vbase[L]; fv++)
			p->shortfall[fv] = (double)p->cnt[fv];
		rc = KILN_E_NOTFOUND;
		goto out;
	}
	ub = p->k >= 1 ? 1.0 : (double)p->G;
	rlo = kiln_calloc(R + 1, sizeof *rlo);
	rup = kiln_malloc((R + 1) * sizeof *rup);
	zero = kiln_calloc(n + 1, sizeof *zero);
	mult = kiln_calloc(n + 1, sizeof *mult);
	cols = kiln_malloc((n + 1) * sizeof *cols);
	if (!rlo || !rup || !zero || !mult || !cols)
		goto nomem;
	for (size_t l = 0; l < L; l++)
		for (size_t v = 0; v < p->s->layers[l].ntraits; v++) {
			int r = md.rowof[p->vbase[l] + v];
			if (r >= 0)
				rlo[r] = rup[r] = (double)p->cnt[p->vbase[l] + v];
		}
	for (size_t r = md.nvrows; r < R; r++) {
		rlo[r] = 0.0;
		rup[r] = 1.0;
	}
	/* phase 1: the artificials' sum down to 0, or a proof */
	if (cg_init(p, &md, &g, rlo, rup, 1))
		goto nomem;
	if (p->init) {
		/* start from the given rows' sets (a near plan: the search's last state) */
		size_t nc = 0;
		for (size_t i = 0; i < p->ninit; i++) {
			long c = find_set(&md, p->init + i * L);
			if (c < 0 || g.in[c])
				continue;
			g.in[c] = 1;
			g.cand[nc++] = (struct cand){0.0, (size_t)c};
		}
		if (nc && cg_add(p, &md, &g, nc, zero, ub))
			goto nomem;
	}
	rc = cg_run(p, &md, &g, zero, ub);
	if (rc == KILN_E_NOMEM)
		goto nomem;
	if (rc)
		goto out;
	if (p->setx && p->sets && p->quick) {
		rc = given_values(p, &md, &g);
		goto out;
	}
	if (Clp_objectiveValue(g.lp) > 1e-7) {
		if (p->quick && p->shortfall) {
			const double *x = Clp_getColSolution(g.lp);
			for (size_t fv = 0; fv < p->vbase[L]; fv++) {
				int r = md.rowof[fv];
				p->shortfall[fv] = r >= 0 && x[1 + r] > 0 ? x[1 + r] : 0.0;
			}
		}
		if (p->quick) {
			rc = KILN_E_NOTFOUND;
			goto out;
		}
		rc = prove(p, &md, &g, rup, ub, e);
		if (rc == KILN_E_NOMEM)
			goto nomem;
		goto out;
	}
	/* phase 2: artificials out; prefer the previous plan's sets */
	{
		size_t nc = g.nfix + g.ncol;
		double *up = kiln_malloc(nc * sizeof *up), *obj = kiln_calloc(nc, sizeof *obj);
		if (!up || !obj) {
			free(up);
			free(obj);
			goto nomem;
		}
		for (size_t j = 0; j < nc; j++) {
			up[j] = j < g.nfix ? 0.0 : ub;
			obj[j] = j < g.nfix ? 0.0 : md.obj[g.col[j - g.nfix]];
		}
		Clp_chgColumnUpper(g.lp, up);
		Clp_chgObjCoefficients(g.lp, obj);
		free(up);
		free(obj);
		rc = cg_run(p, &md, &g, md.obj, ub);
		if (rc == KILN_E_NOMEM)
			goto nomem;
		if (rc)
			goto out;
	}
	{
		/* keep the integral part of the vertex, place the fractional rest exactly */
		const double *x = Clp_getColSolution(g.lp);
		size_t nf = 0;
		double *rl2 = kiln_malloc((R + 1) * sizeof *rl2);
		double *ru2 = kiln_malloc((R + 1) * sizeof *ru2);
		double *ub2 = kiln_malloc((n + 1) * sizeof *ub2);
		if (!rl2 || !ru2 || !ub2) {
			free(rl2);
			free(ru2);
			free(ub2);
			goto nomem;
		}
		memcpy(rl2, rlo, R * sizeof *rl2);
		memcpy(ru2, rup, R * sizeof *ru2);
		for (size_t j = 0; j < g.ncol; j++) {
			size_t c = g.col[j];
			double xc = x[g.nfix + j] > 0 ? x[g.nfix + j] : 0;
			uint64_t base = (uint64_t)floor(xc + EPS);
			mult[c] = base;
			if (base) {
				for (size_t l = 0; l < L; l++) {
					int r = md.rowof[p->vbase[l] + md.sets[c * L + l]];
					rl2[r] -= (double)base;
					ru2[r] -= (double)base;
				}
				if (md.grp[c] >= 0)
					ru2[md.grp[c]] -= (double)base;
			}
		}
		/* the rest: the residual counts over the sets not used yet whose values all still
		 * need tokens. Few of them: an integer program; else dive: solve the residual LP,
		 * keep its integral part (or its largest value), again */
		rc = 0;
		for (int dive = 0; dive < DIVES; dive++) {
			nf = 0;
			for (size_t c = 0; c < n && nf <= DIVE_MAX; c++) {
				int ok = p->k == 0 || !mult[c];
				for (size_t l = 0; l < L && ok; l++)
					ok = rl2[md.rowof[p->vbase[l] + md.sets[c * L + l]]] > 0.5;
				if (ok && md.grp[c] >= 0)
					ok = ru2[md.grp[c]] > 0.5;
				if (!ok)
					continue;
				ub2[nf] = ub;
				cols[nf++] = c;
			}
			if (!nf)
				break;
			if (nf > DIVE_MAX) {
				rc = KILN_E_NOTFOUND;
				break;
			}
			if (nf <= FULL_IP_MAX) {
				rc = ip_solve(p, &md, cols, nf, ub2, rl2, ru2, mult);
				break;
			}
			rc = dive_step(p, &md, cols, nf, ub2, rl2, ru2, mult);
			if (rc)
				break;
		}
		free(rl2);
		free(ru2);
		if (!rc && check_mult(p, &md, mult) != 1)
			rc = KILN_E_NOTFOUND;
		if (rc == KILN_E_NOTFOUND && g.ncol <= FULL_IP_MAX && !p->quick) {
			/* the residual had no solution: the whole integer program over the sets
			 * the LP priced in */
			memset(mult, 0, n * sizeof *mult);
			for (size_t j = 0; j < g.ncol; j++) {
				cols[j] = g.col[j];
				ub2[j] = ub;
			}
			rc = ip_solve(p, &md, cols, g.ncol, ub2, rlo, rup, mult);
			if (!rc && check_mult(p, &md, mult) != 1)
				rc = KILN_E_NOTFOUND;
		}
		free(ub2);
		if (rc == KILN_E_NOMEM)
			goto nomem;
	}
	if (rc)
		goto out;
	/* rows: the preferred sets first, where they were chosen; the rest in set order */
	done = kiln_calloc(p->G, 1);
	if (!done)
		goto nomem;
	for (size_t i = 0; i < p->nprefer && i < p->G; i++) {
		long c = find_set(&md, p->prefer + i * L);
		if (c < 0 || !mult[c])
			continue;
		mult[c]--;
		memcpy(m + i * L, md.sets + (size_t)c * L, L * sizeof *m);
		done[i] = 1;
	}
	{
		size_t c = 0;
		for (size_t i = 0; i < p->G; i++) {
			if (done[i])
				continue;
			while (c < n && !mult[c])
				c++;
			if (c == n) {
				rc = KILN_E_NOTFOUND; /* cannot happen: check_mult counted G rows */
				goto out;
			}
			mult[c]--;
			memcpy(m + i * L, md.sets + c * L, L * sizeof *m);
		}
	}
	rc = 0;
	goto out;
nomem:
	rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory while planning");
out:
	cg_free(&g);
	model_free(&md);
	free(rlo);
	free(rup);
	free(zero);
	free(mult);
	free(cols);
	free(done);
	return rc;
}

const char *kiln_plan_clp_version(void)
{
	return Clp_Version();
}

const char *kiln_plan_cbc_version(void)
{
	return Cbc_getVersion();
}
