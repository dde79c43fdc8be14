/* lib/plan/subset.h: k-subsets in lexicographic order (private to lib/plan). The uniqueness
 * hash tables (plan.c) and the exact program's rows (exact.c) both walk the subsets of the
 * layers that count for uniqueness; inline so that neither file calls the other. */
#ifndef KILN_PLAN_SUBSET_H
#define KILN_PLAN_SUBSET_H

#include <stddef.h>

/* Start: idx[i] = i. Step idx[0..k), ascending indexes below n, to the next k-subset in
 * lexicographic order; 0 when idx held the last one (idx is then left as it was). */
static inline int kiln_plan_next_subset(size_t *idx, size_t k, size_t n)
{
	size_t i = k;
	while (i > 0 && idx[i - 1] == n - k + i - 1)
		i--;
	if (i == 0)
		return 0;
	idx[i - 1]++;
	for (size_t j = i; j < k; j++)
		idx[j] = idx[j - 1] + 1;
	return 1;
}

#endif
