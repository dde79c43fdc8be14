/* plan_targets.c: the exact number of generated tokens that must hold each value.
 *
 * Per layer, with G = spec->size - nlegendaries generated tokens:
 *   1. `count` values take exactly their count (C in all; C > G is infeasible);
 *   2. `percent` values take p% of G;
 *   3. `weight` values share what is left, G - C - (percents), in proportion to their weights.
 * A layer without weights must be filled by its counts and percents: its percents are then
 * scaled to fill G - C exactly, which is only accepted when they already add up to it within
 * less than one token (so 33.3% + 33.3% + 33.4% works, 99% does not).
 *
 * Everything is exact integer arithmetic: percents and weights, which kiln.yaml gives as
 * decimals, are first turned into integers of millionths (llround(x * 1e6): one IEEE-754
 * multiplication and a rounding, the same on every machine), weights are divided by their
 * greatest common divisor, and each value's ideal share is a fraction num/D with a common
 * denominator, computed in 128 bits. The largest-remainder method then gives every value the
 * integer part of its share and hands the seats left over to the largest remainders; equal
 * remainders go to the value written first in kiln.yaml (so a layer's "none" value, always
 * last, loses ties).
 */
#include "kiln/plan.h"
#include "util/alloc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned __int128 u128;

#define MICRO 1000000ULL
#define HUNDRED_MICRO 100000000ULL /* 100% in millionths of a percent */

static uint64_t gcd64(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

struct rem {
	u128 r;
	size_t i;
};

static int rem_cmp(const void *pa, const void *pb)
{
	const struct rem *a = pa, *b = pb;
	if (a->r != b->r)
		return a->r > b->r ? -1 : 1;
	return a->i < b->i ? -1 : a->i > b->i;
}

/* Largest remainder: t[i] = floor(num[i]/D) for every i with take[i], then the rest of total to
 * the largest remainders. sum(num[i]) == total * D must hold. */
static int apportion(uint64_t *t, const u128 *num, const unsigned char *take, size_t n, u128 D,
		     uint64_t total)
{
	struct rem *r;
	size_t nr = 0;
	uint64_t sum = 0;
	r = kiln_calloc(n ? n : 1, sizeof *r);
	if (!r)
		return KILN_E_NOMEM;
	for (size_t i = 0; i < n; i++) {
		if (!take[i])
			continue;
		t[i] = (uint64_t)(num[i] / D);
		sum += t[i];
		r[nr].r = num[i] % D;
		r[nr].i = i;
		nr++;
	}
	qsort(r, nr, sizeof *r, rem_cmp);
	for (size_t k = 0; k < nr && sum < total; k++, sum++)
		t[r[k].i]++;
	free(r);
	return 0;
}

static void fmt_percent(char *buf, size_t n, u128 micro)
{
	/* millionths of a percent, shown with the digits that matter */
	uint64_t ip = (uint64_t)(micro / MICRO), fp = (uint64_t)(micro % MICRO);
	if (!fp) {
		snprintf(buf, n, "%llu%%", (unsigned long long)ip);
		return;
	}
	char f[8];
	snprintf(f, sizeof f, "%06llu", (unsigned long long)fp);
	for (int k = 5; k > 0 && f[k] == '0'; k--)
		f[k] = 0;
	snprintf(buf, n, "%llu.%s%%", (unsigned long long)ip, f);
}

static int layer_targets(const struct kiln_spec *s, size_t li, uint64_t G, uint64_t *t,
			 struct kiln_error *e)
{
	const struct kiln_layer *ly = &s->layers[li];
	size_t n = ly->ntraits;
	char where[600], pbuf[64];
	u128 *num = NULL;
	uint64_t *wm = NULL, *pm = NULL;
	unsigned char *take = NULL;
	u128 C = 0, PM = 0, W = 0;
	size_t nw = 0, np = 0;
	int rc = 0;

	kiln_spec_where(s, ly->loc, where, sizeof where);
	num = kiln_calloc(n ? n : 1, sizeof *num);
	wm = kiln_calloc(n ? n : 1, sizeof *wm);
	pm = kiln_calloc(n ? n : 1, sizeof *pm);
	take = kiln_calloc(n ? n : 1, 1);
	if (!num || !wm || !pm || !take) {
		rc = kiln_error_set(e, KILN_E_NOMEM, where, "out of memory");
		goto out;
	}
	if (n == 0 && G > 0) {
		rc = kiln_error_set(e, KILN_E_INFEASIBLE, where,
				    "layer %s has no values for its %llu generated tokens: add traits",
				    ly->name, (unsigned long long)G);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const struct kiln_trait *tr = &ly->traits[i];
		double a = tr->amount;
		char tw[600];
		kiln_spec_where(s, tr->loc, tw, sizeof tw);
		switch (tr->quota) {
		case KILN_QUOTA_COUNT:
			if (!(a >= 0) || a > 1e15 || a != floor(a)) {
				rc = kiln_error_set(e, KILN_E_SPEC, tw,
						    "%s %s: count must be a whole number >= 0",
						    ly->name, tr->name);
				goto out;
			}
			t[i] = (uint64_t)a;
			C += t[i];
			break;
		case KILN_QUOTA_PERCENT:
			if (!(a > 0) || a > 100) {
				rc = kiln_error_set(e, KILN_E_SPEC, tw,
						    "%s %s: percent must be above 0 and at most 100",
						    ly->name, tr->name);
				goto out;
			}
			pm[i] = (uint64_t)llround(a * 1e6);
			PM += pm[i];
			take[i] = 1;
			np++;
			break;
		case KILN_QUOTA_WEIGHT:
		default:
			if (!(a > 0) || a > 1e12) {
				rc = kiln_error_set(e, KILN_E_SPEC, tw,
						    "%s %s: weight must be above 0 and at most 1e12",
						    ly->name, tr->name);
				goto out;
			}
			wm[i] = (uint64_t)llround(a * 1e6);
			take[i] = 1;
			nw++;
			break;
		}
	}
	if (C > G) {
		rc = kiln_error_set(e, KILN_E_INFEASIBLE, where,
				    "layer %s: the counts add up to %llu, %llu more than the %llu "
				    "generated tokens; lower them by %llu",
				    ly->name, (unsigned long long)C, (unsigned long long)(C - G),
				    (unsigned long long)G, (unsigned long long)(C - G));
		goto out;
	}
	if (PM * G > (u128)(G - C) * HUNDRED_MICRO + (nw ? 0 : HUNDRED_MICRO - 1)) {
		char rbuf[64];
		fmt_percent(pbuf, sizeof pbuf, PM);
		if (PM > HUNDRED_MICRO) {
			fmt_percent(rbuf, sizeof rbuf, PM - HUNDRED_MICRO);
			rc = kiln_error_set(e, KILN_E_INFEASIBLE, where,
					    "layer %s: the percents add up to %s, more than 100%%; "
					    "lower them by %s", ly->name, pbuf, rbuf);
		} else {
			fmt_percent(rbuf, sizeof rbuf, (u128)(G - C) * HUNDRED_MICRO / G);
			rc = kiln_error_set(e, KILN_E_INFEASIBLE, where,
					    "layer %s: the counts take %llu tokens and the percents "
					    "%s (%llu tokens), more than the %llu generated tokens; "
					    "the percents can take at most %s",
					    ly->name, (unsigned long long)C, pbuf,
					    (unsigned long long)(PM * G / HUNDRED_MICRO),
					    (unsigned long long)G, rbuf);
		}
		goto out;
	}
	if (nw) {
		uint64_t g = 0;
		for (size_t i = 0; i < n; i++)
			if (wm[i])
				g = gcd64(g, wm[i]);
		for (size_t i = 0; i < n; i++) {
			if (g)
				wm[i] /= g;
			W += wm[i];
		}
		if (W >> 64) {
			rc = kiln_error_set(e, KILN_E_SPEC, where,
					    "layer %s: the weights are too large to apportion exactly; "
					    "scale them down", ly->name);
			goto out;
		}
		if (W == 0) {
			/* every weight rounds to 0 millionths: they share the rest equally */
			for (size_t i = 0; i < n; i++)
				if (ly->traits[i].quota == KILN_QUOTA_WEIGHT)
					wm[i] = 1, W++;
		}
		u128 R = (u128)(G - C) * HUNDRED_MICRO - PM * G; /* weights' share, over 1e8 */
		u128 D = W * HUNDRED_MICRO;
		for (size_t i = 0; i < n; i++) {
			if (pm[i])
				num[i] = (u128)pm[i] * G * W;
			else if (take[i])
				num[i] = (u128)wm[i] * R;
		}
		rc = apportion(t, num, take, n, D, G - C);
	} else if (np) {
		/* percents alone fill the rest; they are within one token of it (checked above,
		 * and below for the short side) */
		if (PM * G + HUNDRED_MICRO <= (u128)(G - C) * HUNDRED_MICRO) {
			u128 left = ((u128)(G - C) * HUNDRED_MICRO - PM * G) / HUNDRED_MICRO;
			char need[64];
			fmt_percent(pbuf, sizeof pbuf, PM);
			fmt_percent(need, sizeof need,
				    ((u128)(G - C) * HUNDRED_MICRO - PM * G) / G);
			rc = kiln_error_set(e, KILN_E_INFEASIBLE, where,
					    "layer %s: the percents add up to %s%s, leaving %llu of the "
					    "%llu generated tokens without a value; raise the percents by "
					    "about %s, or add a weighted value or `optional` to take the "
					    "rest",
					    ly->name, pbuf, C ? " besides the counts" : "",
					    (unsigned long long)left, (unsigned long long)G, need);
			goto out;
		}
		for (size_t i = 0; i < n; i++)
			if (take[i])
				num[i] = (u128)pm[i] * (G - C);
		rc = apportion(t, num, take, n, PM, G - C);
	} else if (C < G) {
		rc = kiln_error_set(e, KILN_E_INFEASIBLE, where,
				    "layer %s: the counts add up to %llu, %llu short of the %llu "
				    "generated tokens; raise them by %llu, or give a value a weight to "
				    "take the rest",
				    ly->name, (unsigned long long)C, (unsigned long long)(G - C),
				    (unsigned long long)G, (unsigned long long)(G - C));
		goto out;
	}
	if (rc == KILN_E_NOMEM)
		kiln_error_set(e, rc, where, "out of memory");
out:
	free(num);
	free(wm);
	free(pm);
	free(take);
	return rc;
}

int kiln_plan_targets(const struct kiln_spec *s, uint64_t ***targets, struct kiln_error *e)
{
	uint64_t **t;
	uint64_t G;
	int rc = 0;

	*targets = NULL;
	if (s->nlegendaries > s->size) {
		char where[600];
		kiln_spec_where(s, s->legendaries[s->size].loc, where, sizeof where);
		return kiln_error_set(e, KILN_E_INFEASIBLE, where,
				      "%zu legendaries do not fit in a collection of size %llu; "
				      "raise size to at least %zu",
				      s->nlegendaries, (unsigned long long)s->size, s->nlegendaries);
	}
	G = s->size - s->nlegendaries;
	t = kiln_calloc(s->nlayers ? s->nlayers : 1, sizeof *t);
	if (!t)
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
	for (size_t l = 0; l < s->nlayers; l++) {
		t[l] = kiln_calloc(s->layers[l].ntraits ? s->layers[l].ntraits : 1, sizeof **t);
		if (!t[l]) {
			rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
			goto out;
		}
		/* every layer is checked; each one that fails adds its line (the first keeps
		 * `where` and the code), so a spec with several wrong layers is fixed in one run */
		struct kiln_error one;
		kiln_error_clear(&one);
		int r = layer_targets(s, l, G, t[l], &one);
		if (r == KILN_E_NOMEM) {
			if (e)
				*e = one;
			rc = r;
			goto out;
		}
		if (!r)
			continue;
		if (!rc) {
			rc = r;
			if (e)
				*e = one;
		} else if (e) {
			size_t len = strlen(e->msg);
			snprintf(e->msg + len, sizeof e->msg - len, "\n%s: %s", one.where, one.msg);
		}
	}
out:
	if (rc) {
		kiln_plan_targets_free(t, s->nlayers);
		return rc;
	}
	*targets = t;
	return 0;
}

void kiln_plan_targets_free(uint64_t **targets, size_t nlayers)
{
	if (!targets)
		return;
	for (size_t l = 0; l < nlayers; l++)
		free(targets[l]);
	free(targets);
}
