/* lib/plan/code.h (private to lib/plan): plans for min_distance >= 2 chosen inside an
 * algebraic code (code.c). */
#ifndef KILN_PLAN_CODE_H
#define KILN_PLAN_CODE_H

#include <stddef.h>
#include <stdint.h>
#include "plan/lp.h"

/* one layer of a rule's forbidden pattern: a token breaks the pattern when, in every layer of
 * the pattern, its value is in the set (in[value] = 1) */
struct kiln_plan_code_patl {
	uint32_t layer;
	const unsigned char *in;
};

/* what kiln_plan_code_solve tried (for the message when nothing was found) */
struct kiln_plan_code_report {
	unsigned code;          /* 0: no code fits the layers; 2: parity; q >= 3: RS over GF(q) */
	unsigned labelings;     /* labelings tried */
	unsigned joint_rounds;  /* rounds of the joint integer program run */
	unsigned joint_big;     /* rounds skipped: the joint program was too large */
};

struct kiln_plan_code {
	struct kiln_plan_lp lp; /* as for min_distance 1: the spec's rules in lp.forbidden */
	unsigned k;             /* min_distance, >= 2 */
	const uint32_t *nb;     /* the layers that count for uniqueness */
	size_t nnb;
	uint64_t seed;          /* the spec's seed: the labelings tried are drawn from it */
	unsigned tries;         /* labelings tried, at most */
	unsigned skip;          /* the first `skip` of them were tried before: start after */
	unsigned rounds;        /* rounds of the joint program after the labelings (0: none) */
	/* the spec's rules as forbidden patterns (the same as lp.forbidden): pattern p is
	 * pl[pfirst[p] .. pfirst[p + 1]); used by the joint integer program over the labeling */
	const struct kiln_plan_code_patl *pl;
	const uint32_t *pfirst;
	size_t npats;
	struct kiln_plan_code_report *rep; /* NULL or filled on return */
};

/* Find G tokens, every count exact, no rule broken, every two at least k apart in the layers
 * nb, among the words of a code whose words are k apart by construction: for k = 2 the parity
 * code (the largest layer holds the sum of the others modulo its size), for k >= 3 a shortened
 * Reed-Solomon code over the smallest prime field that fits. Which symbol each value stands
 * for is free (a code stays a code under relabeling); each labeling tried is handed to the
 * min_distance-1 planner (lp.c) restricted to the code's words. 0 with m (G*L) filled,
 * KILN_E_NOTFOUND when no labeling tried gave a plan (nothing proven), KILN_E_NOMEM. */
int kiln_plan_code_solve(const struct kiln_plan_code *in, uint32_t *m, struct kiln_error *e)
	KILN_MUST_CHECK;

#endif
