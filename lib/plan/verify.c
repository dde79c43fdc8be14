/* plan/verify.c: an independent checker of a plan against its spec, for the tests (declared
 * in plan/verify.h, not in the public API). It shares nothing with the planner but
 * kiln_plan_targets() and kiln_plan_seed(): rules are evaluated from their clauses as written
 * (not from the compiled patterns), counts are recounted, and uniqueness is checked by sorting,
 * not by the planner's hash tables. min_distance k: for each of the C(L', k-1) ways to leave
 * k-1 non-bypass layers out, sort the tokens by the rest of their DNA; two tokens closer than k
 * are equal on some such key.
 */
#include "plan/verify.h"
#include "util/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vkey {
	uint64_t h;
	uint32_t row;
};

static int vkey_cmp(const void *a, const void *b)
{
	const struct vkey *x = a, *y = b;
	if (x->h != y->h)
		return x->h < y->h ? -1 : 1;
	return x->row < y->row ? -1 : x->row > y->row;
}

static int clause_holds(const struct kiln_clause *c, const uint32_t *row)
{
	for (size_t i = 0; i < c->ntraits; i++)
		if (row[c->layer] == c->traits[i])
			return 1;
	return 0;
}

/* 1 when the token breaks rule r */
static int rule_broken(const struct kiln_rule *r, const uint32_t *row)
{
	size_t held = 0;
	switch (r->kind) {
	case KILN_RULE_EXCLUDE:
		for (size_t i = 0; i < r->nwhen; i++)
			held += clause_holds(&r->when[i], row);
		return r->nwhen && held == r->nwhen;
	case KILN_RULE_IF:
		for (size_t i = 0; i < r->nwhen; i++)
			if (!clause_holds(&r->when[i], row))
				return 0;
		for (size_t i = 0; i < r->nthen; i++)
			if (!clause_holds(&r->then[i], row))
				return 1;
		return 0;
	case KILN_RULE_WITH:
		for (size_t i = 0; i < r->nwhen; i++)
			held += clause_holds(&r->when[i], row);
		return held && held != r->nwhen;
	}
	return 0;
}

static const char *kind_name(enum kiln_rule_kind k)
{
	return k == KILN_RULE_EXCLUDE ? "exclude" : k == KILN_RULE_IF ? "if" : "with";
}

int kiln_plan_verify(const struct kiln_plan *p, const struct kiln_spec *s, struct kiln_error *e)
{
	size_t L = s->nlayers, S, G = 0, nnb = 0, k = s->min_distance;
	uint64_t **tg = NULL, **cnt = NULL;
	unsigned char *legseen = NULL;
	size_t *nb = NULL, *ix = NULL;
	uint32_t *rows = NULL;
	struct vkey *keys = NULL;
	char where[64];
	int rc = 0;

	kiln_error_clear(e);
	if (p->nitems != s->size || p->nlayers != L)
		return kiln_error_set(e, KILN_E_FAILED, NULL,
				      "the plan has %zu items and %zu layers, the spec %llu and %zu",
				      p->nitems, p->nlayers, (unsigned long long)s->size, L);
	S = p->nitems;
	rc = kiln_plan_targets(s, &tg, e);
	if (rc)
		return rc;
	cnt = kiln_calloc(L ? L : 1, sizeof *cnt);
	legseen = kiln_calloc(s->nlegendaries + 1, 1);
	rows = kiln_malloc((S ? S : 1) * sizeof *rows);
	if (!cnt || !legseen || !rows)
		goto nomem;
	for (size_t l = 0; l < L; l++)
		if (!(cnt[l] = kiln_calloc(s->layers[l].ntraits + 1, sizeof **cnt)))
			goto nomem;

	for (size_t i = 0; i < S; i++) {
		const struct kiln_plan_item *it = &p->items[i];
		snprintf(where, sizeof where, "item %llu", (unsigned long long)it->id);
		if (it->id != s->start_id + i) {
			rc = kiln_error_set(e, KILN_E_FAILED, where,
					    "items are not sorted by id from %llu without gaps",
					    (unsigned long long)s->start_id);
			goto out;
		}
		if (it->seed != kiln_plan_seed(s->seed, it->id)) {
			rc = kiln_error_set(e, KILN_E_FAILED, where, "wrong render seed");
			goto out;
		}
		if (it->traits != p->matrix + i * L) {
			rc = kiln_error_set(e, KILN_E_FAILED, where, "traits do not point into matrix");
			goto out;
		}
		if (it->legendary >= 0) {
			if ((size_t)it->legendary >= s->nlegendaries || legseen[it->legendary]) {
				rc = kiln_error_set(e, KILN_E_FAILED, where,
						    "legendary %ld is out of range or planned twice",
						    it->legendary);
				goto out;
			}
			legseen[it->legendary] = 1;
			for (size_t l = 0; l < L; l++)
				if (it->traits[l] != KILN_PLAN_UNSET) {
					rc = kiln_error_set(e, KILN_E_FAILED, where,
							    "a legendary has a trait set");
					goto out;
				}
			continue;
		}
		for (size_t l = 0; l < L; l++) {
			if (it->traits[l] >= s->layers[l].ntraits) {
				rc = kiln_error_set(e, KILN_E_FAILED, where,
						    "layer %s has no value %u", s->layers[l].name,
						    it->traits[l]);
				goto out;
			}
			cnt[l][it->traits[l]]++;
		}
		for (size_t r = 0; r < s->nrules; r++)
			if (rule_broken(&s->rules[r], it->traits)) {
				rc = kiln_error_set(e, KILN_E_FAILED, where,
						    "breaks rule %zu (%s, line %d)", r,
						    kind_name(s->rules[r].kind), s->rules[r].loc.line);
				goto out;
			}
		rows[G++] = (uint32_t)i;
	}
	for (size_t j = 0; j < s->nlegendaries; j++)
		if (!legseen[j]) {
			rc = kiln_error_set(e, KILN_E_FAILED, NULL, "legendary %s has no token",
					    s->legendaries[j].name);
			goto out;
		}
	for (size_t l = 0; l < L; l++)
		for (size_t v = 0; v < s->layers[l].ntraits; v++)
			if (cnt[l][v] != tg[l][v] ||
			    (p->targets && p->targets[l][v] != tg[l][v]) ||
			    (p->actual && p->actual[l][v] != cnt[l][v])) {
				rc = kiln_error_set(
					e, KILN_E_FAILED, NULL,
					"%s=%s: %llu tokens hold it, its target is %llu",
					s->layers[l].name, s->layers[l].traits[v].name,
					(unsigned long long)cnt[l][v], (unsigned long long)tg[l][v]);
				goto out;
			}

	/* uniqueness */
	nb = kiln_calloc(L + 1, sizeof *nb);
	if (!nb)
		goto nomem;
	for (size_t l = 0; l < L; l++)
		if (!s->layers[l].bypass_dna)
			nb[nnb++] = l;
	if (k == 0 || G < 2)
		goto out;
	if (nnb < k) {
		rc = kiln_error_set(e, KILN_E_FAILED, NULL,
				    "%zu tokens cannot differ in %zu of %zu layers", G, k, nnb);
		goto out;
	}
	{
		size_t n = nnb - (k - 1); /* layers in each key */
		keys = kiln_malloc(G * sizeof *keys);
		ix = kiln_calloc(n + 1, sizeof *ix);
		if (!keys || !ix)
			goto nomem;
		for (size_t i = 0; i < n; i++)
			ix[i] = i;
		for (;;) {
			for (size_t g = 0; g < G; g++) {
				const uint32_t *row = p->items[rows[g]].traits;
				uint64_t h = 1469598103934665603ULL;
				for (size_t i = 0; i < n; i++) {
					h = (h ^ row[nb[ix[i]]]) * 1099511628211ULL;
					h ^= h >> 32;
				}
				keys[g].h = h;
				keys[g].row = rows[g];
			}
			qsort(keys, G, sizeof *keys, vkey_cmp);
			for (size_t g = 0; g < G; g++)
				for (size_t g2 = g + 1; g2 < G && keys[g2].h == keys[g].h; g2++) {
					const uint32_t *ra = p->items[keys[g].row].traits;
					const uint32_t *rb = p->items[keys[g2].row].traits;
					size_t diff = 0;
					for (size_t i = 0; i < nnb; i++)
						diff += ra[nb[i]] != rb[nb[i]];
					if (diff < k) {
						snprintf(where, sizeof where, "item %llu",
							 (unsigned long long)p->items[keys[g].row].id);
						rc = kiln_error_set(
							e, KILN_E_FAILED, where,
							"differs from item %llu in %zu layer%s, fewer "
							"than min_distance %zu",
							(unsigned long long)p->items[keys[g2].row].id,
							diff, diff == 1 ? "" : "s", k);
						goto out;
					}
				}
			size_t i = n;
			while (i > 0 && ix[i - 1] == nnb - n + i - 1)
				i--;
			if (i == 0)
				break;
			ix[i - 1]++;
			for (size_t j = i; j < n; j++)
				ix[j] = ix[j - 1] + 1;
		}
	}
	goto out;
nomem:
	rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
out:
	kiln_plan_targets_free(tg, L);
	kiln_plan_targets_free(cnt, L);
	free(legseen);
	free(rows);
	free(nb);
	free(ix);
	free(keys);
	return rc;
}
