/* lib/plan/exact.h: the exact integer program for small tight specs (private to lib/plan). */
#ifndef KILN_PLAN_EXACT_H
#define KILN_PLAN_EXACT_H

#include <stddef.h>
#include <stdint.h>

enum kiln_exact_status {
	KILN_EXACT_FOUND = 0,   /* sel holds G trait sets that satisfy everything */
	KILN_EXACT_NONE = 1,    /* proven: no G trait sets satisfy the quotas and min_distance */
	KILN_EXACT_UNKNOWN = 2, /* the node limit was reached first */
	KILN_EXACT_NOMEM = 3,
	KILN_EXACT_TOOBIG = 4   /* not run: the program would be too large (nothing tried) */
};

struct kiln_exact {
	size_t L;             /* layers */
	const size_t *vbase;  /* L + 1: flat index of (layer l, value v) = vbase[l] + v */
	const uint64_t *cnt;  /* per flat value: its target */
	const uint32_t *nb;   /* the layers that count for uniqueness */
	size_t nnb;
	unsigned k;           /* min_distance */
	const uint32_t *combos; /* ncombo * L: every trait set the rules allow (values with room) */
	size_t ncombo;
	size_t G;             /* tokens to choose */
	uint64_t nodes;       /* branch-and-bound node limit (never a time limit) */
};

/* Choose G of the combos (indexes into sel, ascending) so that each value is held by exactly
 * its target and every two chosen differ in at least k of the layers nb: binary x per combo,
 * one equality per value, and per key of every uniqueness table (k-1 of the nb layers left
 * out) at most one chosen combo. Solved by CBC; deterministic for the same input. */
int kiln_plan_exact(const struct kiln_exact *in, uint32_t *sel);

#endif
