/* plan_testutil.h: build struct kiln_spec values in memory, for the planner's tests and
 * benchmark. Strings are heap copies (kiln_strdup) and arrays plain heap blocks, so a spec built
 * here can also be freed by kiln_spec_free(); ts_free() does the same without needing it. */
#ifndef KILN_PLAN_TESTUTIL_H
#define KILN_PLAN_TESTUTIL_H

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/plan.h"
#include "kiln/spec.h"
#include "plan/verify.h"
#include "util/alloc.h"
#include "util/prng.h"

static void *ts_grow(void *p, size_t n, size_t size)
{
	void *q = realloc(p, (n ? n : 1) * size);
	if (!q)
		abort();
	return q;
}

static char *ts_str(const char *s)
{
	char *d = strdup(s);
	if (!d)
		abort();
	return d;
}

static struct kiln_spec *ts_new(uint64_t size, uint64_t seed)
{
	struct kiln_spec *s = calloc(1, sizeof *s);
	if (!s)
		abort();
	s->path = ts_str("kiln.yaml");
	s->dir = ts_str(".");
	s->name = ts_str("Test");
	s->symbol = ts_str("TEST");
	s->description = ts_str("");
	s->engine = ts_str("compose");
	s->name_pattern = ts_str("{name} #{id}");
	s->base_uri = ts_str("ipfs://REPLACE_WITH_IMAGES_CID");
	s->size = size;
	s->seed = seed;
	s->width = s->height = 64;
	s->min_distance = 1;
	s->start_id = 1;
	s->targets = KILN_TARGET_ERC721;
	return s;
}

static size_t ts_layer(struct kiln_spec *s, const char *name, int bypass, int line)
{
	struct kiln_layer *l;
	s->layers = ts_grow(s->layers, s->nlayers + 1, sizeof *s->layers);
	l = &s->layers[s->nlayers];
	memset(l, 0, sizeof *l);
	l->name = ts_str(name);
	l->opacity = 1;
	l->bypass_dna = bypass;
	l->loc.line = line;
	l->loc.col = 5;
	return s->nlayers++;
}

static size_t ts_trait(struct kiln_spec *s, size_t layer, const char *name, enum kiln_quota q,
		       double amount, int line)
{
	struct kiln_layer *l = &s->layers[layer];
	struct kiln_trait *t;
	l->traits = ts_grow(l->traits, l->ntraits + 1, sizeof *l->traits);
	t = &l->traits[l->ntraits];
	memset(t, 0, sizeof *t);
	t->name = ts_str(name);
	t->quota = q;
	t->amount = amount;
	t->loc.line = line;
	t->loc.col = 9;
	return l->ntraits++;
}

/* the layer's "none" value: must be added last */
static size_t ts_none(struct kiln_spec *s, size_t layer, enum kiln_quota q, double amount)
{
	size_t i = ts_trait(s, layer, "None", q, amount, 0);
	s->layers[layer].traits[i].is_none = 1;
	s->layers[layer].has_none = 1;
	return i;
}

static size_t ts_rule(struct kiln_spec *s, enum kiln_rule_kind kind, int line)
{
	struct kiln_rule *r;
	s->rules = ts_grow(s->rules, s->nrules + 1, sizeof *s->rules);
	r = &s->rules[s->nrules];
	memset(r, 0, sizeof *r);
	r->kind = kind;
	r->loc.line = line;
	r->loc.col = 5;
	return s->nrules++;
}

/* add a clause to rule r (to `then` when then != 0): layer and n trait indexes */
static void ts_clause(struct kiln_spec *s, size_t r, int then, size_t layer, size_t n, ...)
{
	struct kiln_rule *ru = &s->rules[r];
	struct kiln_clause **cs = then ? &ru->then : &ru->when;
	size_t *nc = then ? &ru->nthen : &ru->nwhen;
	struct kiln_clause *c;
	va_list ap;
	*cs = ts_grow(*cs, *nc + 1, sizeof **cs);
	c = &(*cs)[(*nc)++];
	c->layer = layer;
	c->ntraits = n;
	c->traits = ts_grow(NULL, n, sizeof *c->traits);
	va_start(ap, n);
	for (size_t i = 0; i < n; i++)
		c->traits[i] = va_arg(ap, size_t);
	va_end(ap);
}

static void ts_clause_arr(struct kiln_spec *s, size_t r, int then, size_t layer, size_t n,
			  const size_t *tr)
{
	struct kiln_rule *ru = &s->rules[r];
	struct kiln_clause **cs = then ? &ru->then : &ru->when;
	size_t *nc = then ? &ru->nthen : &ru->nwhen;
	struct kiln_clause *c;
	*cs = ts_grow(*cs, *nc + 1, sizeof **cs);
	c = &(*cs)[(*nc)++];
	c->layer = layer;
	c->ntraits = n;
	c->traits = ts_grow(NULL, n, sizeof *c->traits);
	memcpy(c->traits, tr, n * sizeof *tr);
}

static void ts_legendary(struct kiln_spec *s, const char *name)
{
	struct kiln_legendary *g;
	s->legendaries = ts_grow(s->legendaries, s->nlegendaries + 1, sizeof *s->legendaries);
	g = &s->legendaries[s->nlegendaries++];
	memset(g, 0, sizeof *g);
	g->name = ts_str(name);
	g->file = ts_str("legendaries/x.png");
	g->loc.line = 90;
	g->loc.col = 5;
}

static void ts_free(struct kiln_spec *s)
{
	if (!s)
		return;
	for (size_t l = 0; l < s->nlayers; l++) {
		for (size_t t = 0; t < s->layers[l].ntraits; t++) {
			free(s->layers[l].traits[t].name);
			free(s->layers[l].traits[t].file);
		}
		free(s->layers[l].traits);
		free(s->layers[l].name);
	}
	free(s->layers);
	for (size_t r = 0; r < s->nrules; r++) {
		for (size_t i = 0; i < s->rules[r].nwhen; i++)
			free(s->rules[r].when[i].traits);
		for (size_t i = 0; i < s->rules[r].nthen; i++)
			free(s->rules[r].then[i].traits);
		free(s->rules[r].when);
		free(s->rules[r].then);
	}
	free(s->rules);
	for (size_t i = 0; i < s->nlegendaries; i++) {
		free(s->legendaries[i].name);
		free(s->legendaries[i].file);
		free(s->legendaries[i].description);
		for (size_t a = 0; a < s->legendaries[i].nattrs; a++) {
			free(s->legendaries[i].attrs[a].trait_type);
			free(s->legendaries[i].attrs[a].value);
		}
		free(s->legendaries[i].attrs);
	}
	free(s->legendaries);
	free(s->path);
	free(s->dir);
	free(s->name);
	free(s->symbol);
	free(s->description);
	free(s->external_url);
	free(s->engine);
	free(s->name_pattern);
	free(s->base_uri);
	free(s->meta_description);
	free(s);
}

/* A random spec that is usually feasible: nl layers of 2..nv values with mixed quotas, a few
 * rules of every kind, min_distance 1 or 2, a legendary or two. */
static __attribute__((unused)) struct kiln_spec *ts_random(struct kiln_rng *r, uint64_t size, size_t nl, size_t nv,
				   size_t nrules)
{
	struct kiln_spec *s = ts_new(size, kiln_rng_next(r));
	char name[32];
	size_t nleg = kiln_rng_below(r, 3);
	for (size_t i = 0; i < nleg; i++) {
		snprintf(name, sizeof name, "Legend %zu", i);
		ts_legendary(s, name);
	}
	/* value counts first, so that the size can be kept well inside the space of trait sets */
	size_t nvals[64];
	int bypass[64];
	uint64_t space = 1;
	if (nl > 64)
		nl = 64;
	for (size_t l = 0; l < nl; l++) {
		nvals[l] = 3 + kiln_rng_below(r, nv - 2);
		bypass[l] = l == nl - 1 && nl > 3 && kiln_rng_below(r, 2);
		if (!bypass[l] && space < ((uint64_t)1 << 40))
			space *= nvals[l];
	}
	if (size > space / 4 + nleg + 2)
		size = space / 4 + nleg + 2;
	s->size = size;
	for (size_t l = 0; l < nl; l++) {
		size_t n = nvals[l];
		snprintf(name, sizeof name, "L%zu", l);
		ts_layer(s, name, bypass[l], 10 + (int)l * 20);
		for (size_t v = 0; v < n; v++) {
			snprintf(name, sizeof name, "v%zu_%zu", l, v);
			unsigned k = (unsigned)kiln_rng_below(r, 10);
			if (k == 0 && v == 0)
				ts_trait(s, l, name, KILN_QUOTA_COUNT,
					 (double)kiln_rng_below(r, size / (n + 2) + 1), 11 + (int)(l * 20 + v));
			else if (k == 1)
				ts_trait(s, l, name, KILN_QUOTA_PERCENT,
					 (double)(1 + kiln_rng_below(r, 200)) / 20.0, 11 + (int)(l * 20 + v));
			else
				ts_trait(s, l, name, KILN_QUOTA_WEIGHT,
					 (double)(1 + kiln_rng_below(r, 50)), 11 + (int)(l * 20 + v));
		}
		if (kiln_rng_below(r, 3) == 0)
			ts_none(s, l, KILN_QUOTA_WEIGHT, (double)(1 + kiln_rng_below(r, 50)));
	}
	for (size_t i = 0; i < nrules; i++) {
		size_t l1 = kiln_rng_below(r, nl), l2 = kiln_rng_below(r, nl - 1);
		if (l2 >= l1)
			l2++;
		size_t n2 = s->layers[l2].ntraits;
		size_t v1 = kiln_rng_below(r, s->layers[l1].ntraits);
		size_t v2 = kiln_rng_below(r, n2);
		switch (kiln_rng_below(r, 3)) {
		case 0: {
			size_t ru = ts_rule(s, KILN_RULE_EXCLUDE, 200 + (int)i);
			ts_clause(s, ru, 0, l1, 1, v1);
			ts_clause(s, ru, 0, l2, 1, v2);
			break;
		}
		case 1: {
			size_t ru = ts_rule(s, KILN_RULE_IF, 200 + (int)i), tr[64], k = 0;
			for (size_t v = 0; v < n2 && k < 64; v++)
				if (v == v2 || kiln_rng_below(r, 4))
					tr[k++] = v;
			ts_clause(s, ru, 0, l1, 1, v1);
			ts_clause_arr(s, ru, 1, l2, k, tr);
			break;
		}
		default: {
			/* forced pair with equal counts */
			size_t ru = ts_rule(s, KILN_RULE_WITH, 200 + (int)i);
			uint64_t gsz = size - s->nlegendaries;
			double cnt = (double)kiln_rng_below(r, gsz / 20 + 1);
			s->layers[l1].traits[v1].quota = KILN_QUOTA_COUNT;
			s->layers[l1].traits[v1].amount = cnt;
			s->layers[l2].traits[v2].quota = KILN_QUOTA_COUNT;
			s->layers[l2].traits[v2].amount = cnt;
			ts_clause(s, ru, 0, l1, 1, v1);
			ts_clause(s, ru, 0, l2, 1, v2);
			break;
		}
		}
	}
	s->min_distance = 1 + (unsigned)(kiln_rng_below(r, 4) == 0);
	return s;
}

#endif
