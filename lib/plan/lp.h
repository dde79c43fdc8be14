/* lp.h (private to lib/plan): the exact planner for min_distance <= 1, by linear and integer
 * programming over the allowed trait sets (lp.c). */
#ifndef KILN_PLAN_LP_H
#define KILN_PLAN_LP_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/error.h"
#include "kiln/spec.h"

/* Trait sets enumerated at most (beyond: the caller keeps its search's verdict). */
#define KILN_PLAN_LP_MAX_SETS 1000000u

struct kiln_plan_lp {
	const struct kiln_spec *s;
	size_t L, G;
	const size_t *vbase;  /* flat index of (layer l, value v) = vbase[l] + v */
	const uint64_t *cnt;  /* per flat value: its exact target */
	unsigned k;           /* min_distance: 0 (repeats allowed) or 1 */
	/* 1 when a rule forbids the full trait row (L values) */
	int (*forbidden)(const void *arg, const uint32_t *row);
	const void *arg;
	const uint32_t *prefer; /* nprefer rows of L values (KILN_PLAN_UNSET allowed): keep them
	                           where possible, prefer[i] for output row i */
	size_t nprefer;
	const uint32_t *init;   /* ninit rows of L values: sets to start the column generation
	                           from (a near plan), or NULL */
	size_t ninit;
	unsigned effort;        /* multiplies the integer program's node limit */
	const uint32_t *sets;   /* nsets rows of L values (any order, repeats allowed): the only
	                           trait sets considered, instead of every one; or NULL */
	size_t nsets;
	double *shortfall;      /* NULL, or per flat value (vbase[L]): after a failed quick
	                           solve, how many tokens the LP's best left the value short of its
	                           target (all 0 when the LP was feasible but no integer plan was
	                           found); its sum is the LP's distance to a plan */
	double *setx;           /* NULL, or per given set (sets, nsets): only the first LP is
	                           solved (least total shortfall, every set within [0, 1]) and its
	                           value for each set written here (0: a set left out), then
	                           KILN_E_NOTFOUND; needs `sets` and `quick` */
	int quick;              /* 1: `forbidden` is the caller's own restriction, not only the
	                           spec's, so an infeasible LP proves nothing about the spec: fail
	                           with KILN_E_NOTFOUND at once, no proof; and give up the
	                           rounding sooner (a tenth of the nodes, no whole program) */
};

/* The number of trait sets to enumerate (the product of the layers' values with tokens,
 * saturating at UINT64_MAX). */
uint64_t kiln_plan_lp_space(const struct kiln_plan_lp *p);

/* Solve exactly when kiln_plan_lp_space() <= KILN_PLAN_LP_MAX_SETS. On success m (G*L) holds
 * a plan: every count exact, no forbidden row, rows distinct in the non-bypass layers when
 * k >= 1. Fails with KILN_E_INFEASIBLE and a proof in e (the linear program's bound on the
 * number of distinct tokens, and per value the largest count the others leave it), with
 * KILN_E_NOTFOUND when the integer program ran out of nodes (no cause claimed), KILN_E_NOMEM. */
int kiln_plan_lp_solve(const struct kiln_plan_lp *p, uint32_t *m, struct kiln_error *e)
	KILN_MUST_CHECK;

#endif
