/* plan.c: the Attribute Controller. Gives every generated token one value per layer so that
 * each value's count equals its target exactly, no rule is broken and every two tokens differ
 * in at least min_distance layers that count for uniqueness; gives legendaries ids of their
 * own; shuffles ids; seeds.
 *
 * How. Targets come from kiln_plan_targets() (plan_targets.c). Every rule is compiled into
 * forbidden patterns: a set of allowed values per layer whose conjunction no token may match
 * (EXCLUDE: one pattern; IF: one per `then` clause, when ∧ ¬then; WITH: one per ordered pair of
 * clauses, a ∧ ¬b). Cheap exact necessary conditions are checked first so that most
 * infeasible specs are explained precisely (see check_*). Then each layer's column is filled
 * with exactly its target multiset, shuffled (or, when re-planning, kept from the previous
 * plan where the quotas still have room), and a local search repairs the violations: its only
 * move is swapping one layer's values between two tokens, which keeps every quota exact by
 * construction. The objective F = (forbidden patterns matched) + (pairs of tokens closer than
 * min_distance, counted once per hash table they collide in). A move's effect on F is exactly
 * the change of the two tokens' own costs, because two tokens that swap a layer's values differ
 * in that layer before and after, so their mutual collisions cannot change.
 *
 * Invariants of the search: the columns are permutations of the target multisets; lst/pos keep,
 * per layer, the tokens grouped by value (so "a random token holding one of these values" is
 * O(values)); every violated pattern's token and at least one token of every colliding pair is
 * in the work queue. min_distance k uses C(L', k-1) open-addressing tables, each keyed on the
 * non-bypass DNA with k-1 layers left out: two tokens closer than k share a key in at least one
 * of them. All work is bounded by counters (pops, stall), never by time, so results do not
 * depend on the machine and an infeasible spec ends with an explanation, never a hang.
 *
 * Sizes: up to ~4e9 tokens in theory (uint32 token indexes), millions in practice: memory is
 * about 16 bytes per (token, layer) plus 16 bytes per token per table.
 */
#include "kiln/plan.h"
#include "plan/code.h"
#include "plan/exact.h"
#include "plan/lp.h"
#include "plan/subset.h"
#include "util/alloc.h"
#include "util/text.h"
#include "util/prng.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONE32 UINT32_MAX
#define NCAND 6 /* partners tried per move */
#define NTRY 24 /* (layer, value) changes weighed per move against a collision */

/* RNG streams: one per purpose, so that changing one use does not shift the others */
#define CODE_TRIES 40 /* labelings of a code tried (code.c), times the effort */
#define CODE_FIRST 8 /* of them, tried before the search when the spec is tight */
#define JOINT_ROUNDS 6 /* rounds of the code's joint program after the search, times the effort */
enum { STREAM_COLUMNS = 1, STREAM_SEARCH = 2, STREAM_IDS = 3, STREAM_REPLACE = 4,
       STREAM_RESTART = 5 };

struct pat {
	uint32_t nl;    /* layers constrained, >= 1 */
	uint32_t first; /* index of its first patl */
	uint32_t rule;  /* index in spec->rules */
	int32_t a, b;   /* IF: then clause a; WITH: clause a held without clause b */
};

struct patl {
	uint32_t layer;
	size_t set;     /* offset in pool of the layer's ntraits flags: 1 = value in the set */
	uint64_t comp;  /* tokens holding a value outside the set */
};

struct ent {
	uint32_t tok;
	uint32_t tag;
};

struct tab {
	struct ent *e;
	size_t mask;
};

struct ctx {
	const struct kiln_spec *s;
	size_t L, G;
	/* what the failed attempts tried, for the "not found" message: */
	struct kiln_plan_code_report crep; /* the code constructions, summed */
	int code_ran;                      /* code_plan was called */
	int exact_st;                      /* -1 not run, -2 too many trait sets, else the
	                                      integer program's KILN_EXACT_* */
	size_t exact_n;                    /* its allowed trait sets */
	size_t *vbase; /* flat value index of (l, v) = vbase[l] + v */
	size_t V;
	uint64_t *cnt; /* per flat value: tokens holding it (targets) */

	struct pat *pats;
	size_t npats, cappats;
	struct patl *pl;
	size_t npl, cappl;
	unsigned char *pool;
	size_t npool, cappool;
	uint32_t *anc_off; /* V+1: patterns anchored (first layer) on each value, CSR */
	uint32_t *anc;

	uint32_t *m;   /* G * L */
	uint32_t *lst; /* L * G: per layer, tokens grouped by value */
	uint32_t *pos; /* L * G: position of token in lst */
	uint64_t *goff; /* per flat value: start of its group in lst */

	unsigned k;
	size_t nnb;
	uint32_t *nb;  /* non-bypass layers */
	size_t ntab, ninc;
	struct tab *tabs;
	uint32_t *tinc;       /* ntab * ninc: layers in each table's key */
	unsigned char *inc;   /* ntab * L */

	unsigned char *intact; /* G or NULL: row still equals the previous plan's */
	uint32_t *queue;
	unsigned char *inq;
	size_t qh, qn;
	uint64_t F;
	uint64_t pops;
	struct kiln_rng rng;
};

/* ---------------------------------------------------------------------------------------- */
/* messages */

static unsigned long long ull(uint64_t x)
{
	return (unsigned long long)x;
}

/* "Hat: Crown" or "Hat: [Gold, Silver]" */
static void clause_text(char *buf, size_t n, const struct kiln_spec *s,
			const struct kiln_clause *c)
{
	const struct kiln_layer *ly = &s->layers[c->layer];
	kiln_text_append(buf, n, "%s: ", ly->name);
	if (c->ntraits == 1) {
		kiln_text_append(buf, n, "%s", ly->traits[c->traits[0]].name);
		return;
	}
	kiln_text_append(buf, n, "[");
	for (size_t i = 0; i < c->ntraits; i++) {
		if (i == 8) {
			kiln_text_append(buf, n, ", ... %zu in all", c->ntraits);
			break;
		}
		kiln_text_append(buf, n, "%s%s", i ? ", " : "", ly->traits[c->traits[i]].name);
	}
	kiln_text_append(buf, n, "]");
}

static void clauses_text(char *buf, size_t n, const struct kiln_spec *s,
			 const struct kiln_clause *c, size_t nc)
{
	kiln_text_append(buf, n, "{");
	for (size_t i = 0; i < nc; i++) {
		if (i)
			kiln_text_append(buf, n, ", ");
		clause_text(buf, n, s, &c[i]);
	}
	kiln_text_append(buf, n, "}");
}

/* "if {Hat: Crown} then {Body: [Gold, Silver]}" */
static void rule_text(char *buf, size_t n, const struct kiln_spec *s, const struct kiln_rule *r)
{
	buf[0] = 0;
	switch (r->kind) {
	case KILN_RULE_EXCLUDE:
		kiln_text_append(buf, n, "exclude ");
		clauses_text(buf, n, s, r->when, r->nwhen);
		break;
	case KILN_RULE_IF:
		kiln_text_append(buf, n, "if ");
		clauses_text(buf, n, s, r->when, r->nwhen);
		kiln_text_append(buf, n, " then ");
		clauses_text(buf, n, s, r->then, r->nthen);
		break;
	case KILN_RULE_WITH:
		kiln_text_append(buf, n, "with ");
		clauses_text(buf, n, s, r->when, r->nwhen);
		break;
	}
}

/* "Hat=Crown", "Hat=[Gold, Silver]" from flags over layer l's values */
static void set_text(char *buf, size_t n, const struct kiln_spec *s, size_t l,
		     const unsigned char *flags)
{
	const struct kiln_layer *ly = &s->layers[l];
	size_t k = 0, tot = 0;
	for (size_t v = 0; v < ly->ntraits; v++)
		tot += flags[v] != 0;
	kiln_text_append(buf, n, "%s=%s", ly->name, tot == 1 ? "" : "[");
	for (size_t v = 0; v < ly->ntraits; v++) {
		if (!flags[v])
			continue;
		if (k == 8) {
			kiln_text_append(buf, n, ", ... %zu in all", tot);
			break;
		}
		kiln_text_append(buf, n, "%s%s", k ? ", " : "", ly->traits[v].name);
		k++;
	}
	if (tot != 1)
		kiln_text_append(buf, n, "]");
}

static uint64_t clause_count(const struct ctx *c, const struct kiln_clause *cl)
{
	uint64_t n = 0;
	for (size_t i = 0; i < cl->ntraits; i++)
		n += c->cnt[c->vbase[cl->layer] + cl->traits[i]];
	return n;
}

static int infeasible_rule(const struct ctx *c, struct kiln_error *e, size_t ri, const char *fmt,
			   ...) KILN_PRINTF(4, 5);
static int infeasible_rule(const struct ctx *c, struct kiln_error *e, size_t ri, const char *fmt,
			   ...)
{
	char where[600];
	va_list ap;
	kiln_spec_where(c->s, c->s->rules[ri].loc, where, sizeof where);
	kiln_error_set(e, KILN_E_INFEASIBLE, where, "%s", "");
	if (e) {
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof e->msg, fmt, ap);
		va_end(ap);
	}
	return KILN_E_INFEASIBLE;
}

/* ---------------------------------------------------------------------------------------- */
/* patterns */

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
	size_t nc;
	void *q;
	if (need <= *cap)
		return 0;
	nc = *cap ? *cap * 2 : 16;
	while (nc < need)
		nc *= 2;
	q = kiln_reallocarray(*p, nc, size);
	if (!q)
		return KILN_E_NOMEM;
	*p = q;
	*cap = nc;
	return 0;
}

/* scratch for building one pattern: per layer, constrained flag, and per flat value a flag */
struct pbuild {
	unsigned char *cons; /* L */
	unsigned char *in;   /* V */
};

static void pb_clear(struct ctx *c, struct pbuild *b)
{
	memset(b->cons, 0, c->L);
}

/* intersect layer `l`'s set with the clause (or its complement) */
static void pb_add(struct ctx *c, struct pbuild *b, const struct kiln_clause *cl, int negate)
{
	size_t l = cl->layer, nt = c->s->layers[l].ntraits;
	unsigned char *in = b->in + c->vbase[l];
	unsigned char tmp[1];
	(void)tmp;
	if (!b->cons[l]) {
		memset(in, 1, nt);
		b->cons[l] = 1;
	}
	/* mark clause members with bit 2, then keep (member XOR negate) */
	for (size_t i = 0; i < cl->ntraits; i++)
		if (cl->traits[i] < nt)
			in[cl->traits[i]] |= 2;
	for (size_t v = 0; v < nt; v++) {
		int mem = (in[v] & 2) != 0;
		in[v] = (in[v] & 1) && (mem != negate);
	}
}

static int pb_emit(struct ctx *c, struct pbuild *b, size_t rule, int a, int bb)
{
	uint32_t nl = 0;
	int rc;
	/* a layer whose set holds no value with tokens makes the pattern unmatchable */
	for (size_t l = 0; l < c->L; l++) {
		if (!b->cons[l])
			continue;
		size_t nt = c->s->layers[l].ntraits, live = 0;
		unsigned char *in = b->in + c->vbase[l];
		for (size_t v = 0; v < nt; v++) {
			if (in[v] && !c->cnt[c->vbase[l] + v])
				in[v] = 0;
			live += in[v];
		}
		if (!live)
			return 0;
		nl++;
	}
	if (!nl)
		return 0;
	if ((rc = grow((void **)&c->pats, &c->cappats, c->npats + 1, sizeof *c->pats)) ||
	    (rc = grow((void **)&c->pl, &c->cappl, c->npl + nl, sizeof *c->pl)))
		return rc;
	struct pat *p = &c->pats[c->npats++];
	p->nl = nl;
	p->first = (uint32_t)c->npl;
	p->rule = (uint32_t)rule;
	p->a = a;
	p->b = bb;
	for (size_t l = 0; l < c->L; l++) {
		if (!b->cons[l])
			continue;
		size_t nt = c->s->layers[l].ntraits;
		if ((rc = grow((void **)&c->pool, &c->cappool, c->npool + nt, 1)))
			return rc;
		memcpy(c->pool + c->npool, b->in + c->vbase[l], nt);
		struct patl *q = &c->pl[c->npl++];
		q->layer = (uint32_t)l;
		q->set = c->npool;
		q->comp = 0;
		c->npool += nt;
	}
	return 0;
}

static int compile_patterns(struct ctx *c)
{
	const struct kiln_spec *s = c->s;
	struct pbuild b = {0};
	int rc = 0;

	b.cons = kiln_calloc(c->L ? c->L : 1, 1);
	b.in = kiln_calloc(c->V ? c->V : 1, 1);
	if (!b.cons || !b.in) {
		rc = KILN_E_NOMEM;
		goto out;
	}
	for (size_t ri = 0; ri < s->nrules && !rc; ri++) {
		const struct kiln_rule *r = &s->rules[ri];
		switch (r->kind) {
		case KILN_RULE_EXCLUDE:
			pb_clear(c, &b);
			for (size_t i = 0; i < r->nwhen; i++)
				pb_add(c, &b, &r->when[i], 0);
			rc = pb_emit(c, &b, ri, -1, -1);
			break;
		case KILN_RULE_IF:
			for (size_t j = 0; j < r->nthen && !rc; j++) {
				pb_clear(c, &b);
				for (size_t i = 0; i < r->nwhen; i++)
					pb_add(c, &b, &r->when[i], 0);
				pb_add(c, &b, &r->then[j], 1);
				rc = pb_emit(c, &b, ri, (int)j, -1);
			}
			break;
		case KILN_RULE_WITH:
			for (size_t i = 0; i < r->nwhen && !rc; i++)
				for (size_t j = 0; j < r->nwhen && !rc; j++) {
					if (i == j)
						continue;
					pb_clear(c, &b);
					pb_add(c, &b, &r->when[i], 0);
					pb_add(c, &b, &r->when[j], 1);
					rc = pb_emit(c, &b, ri, (int)i, (int)j);
				}
			break;
		}
	}
	if (rc)
		goto out;
	/* anchor index: pattern p is listed under every value of its first layer's set */
	c->anc_off = kiln_calloc(c->V + 1, sizeof *c->anc_off);
	if (!c->anc_off) {
		rc = KILN_E_NOMEM;
		goto out;
	}
	size_t tot = 0;
	for (size_t p = 0; p < c->npats; p++) {
		const struct patl *q = &c->pl[c->pats[p].first];
		size_t nt = s->layers[q->layer].ntraits;
		for (size_t v = 0; v < nt; v++)
			if (c->pool[q->set + v]) {
				c->anc_off[c->vbase[q->layer] + v + 1]++;
				tot++;
			}
	}
	for (size_t i = 0; i < c->V; i++)
		c->anc_off[i + 1] += c->anc_off[i];
	c->anc = kiln_calloc(tot ? tot : 1, sizeof *c->anc);
	if (!c->anc) {
		rc = KILN_E_NOMEM;
		goto out;
	}
	{
		uint32_t *fill = kiln_calloc(c->V ? c->V : 1, sizeof *fill);
		if (!fill) {
			rc = KILN_E_NOMEM;
			goto out;
		}
		for (size_t p = 0; p < c->npats; p++) {
			const struct patl *q = &c->pl[c->pats[p].first];
			size_t nt = s->layers[q->layer].ntraits;
			for (size_t v = 0; v < nt; v++)
				if (c->pool[q->set + v]) {
					size_t fv = c->vbase[q->layer] + v;
					c->anc[c->anc_off[fv] + fill[fv]++] = (uint32_t)p;
				}
		}
		free(fill);
	}
	/* tokens outside each set, for choosing partners */
	for (size_t i = 0; i < c->npl; i++) {
		struct patl *q = &c->pl[i];
		uint64_t in = 0;
		for (size_t v = 0; v < s->layers[q->layer].ntraits; v++)
			if (c->pool[q->set + v])
				in += c->cnt[c->vbase[q->layer] + v];
		q->comp = c->G - in;
	}
out:
	free(b.cons);
	free(b.in);
	return rc;
}

static inline int pat_rest(const struct ctx *c, const struct pat *p, const uint32_t *row)
{
	for (uint32_t i = 1; i < p->nl; i++) {
		const struct patl *q = &c->pl[p->first + i];
		if (!c->pool[q->set + row[q->layer]])
			return 0;
	}
	return 1;
}

static uint32_t pcost(const struct ctx *c, uint32_t t)
{
	const uint32_t *row = c->m + (size_t)t * c->L;
	uint32_t n = 0;
	if (!c->npats)
		return 0;
	for (size_t l = 0; l < c->L; l++) {
		size_t fv = c->vbase[l] + row[l];
		for (uint32_t j = c->anc_off[fv]; j < c->anc_off[fv + 1]; j++)
			n += (uint32_t)pat_rest(c, &c->pats[c->anc[j]], row);
	}
	return n;
}

/* the idx-th pattern matched by token t */
static const struct pat *pmatched(const struct ctx *c, uint32_t t, uint32_t idx)
{
	const uint32_t *row = c->m + (size_t)t * c->L;
	for (size_t l = 0; l < c->L; l++) {
		size_t fv = c->vbase[l] + row[l];
		for (uint32_t j = c->anc_off[fv]; j < c->anc_off[fv + 1]; j++)
			if (pat_rest(c, &c->pats[c->anc[j]], row) && idx-- == 0)
				return &c->pats[c->anc[j]];
	}
	return NULL;
}

/* whether a full trait row matches a forbidden pattern (for the exact planner) */
static int row_forbidden(const void *arg, const uint32_t *row)
{
	const struct ctx *c = arg;
	for (size_t p = 0; p < c->npats; p++) {
		const struct pat *pt = &c->pats[p];
		uint32_t i = 0;
		for (; i < pt->nl; i++) {
			const struct patl *q = &c->pl[pt->first + i];
			if (!c->pool[q->set + row[q->layer]])
				break;
		}
		if (i == pt->nl)
			return 1;
	}
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* uniqueness tables */

static uint32_t row_tag(const struct ctx *c, size_t ti, uint32_t t)
{
	const uint32_t *row = c->m + (size_t)t * c->L;
	const uint32_t *inc = c->tinc + ti * c->ninc;
	uint64_t h = 0x9e3779b97f4a7c15ULL * (ti + 1);
	for (size_t i = 0; i < c->ninc; i++) {
		h ^= row[inc[i]];
		h *= 0xbf58476d1ce4e5b9ULL;
		h ^= h >> 31;
	}
	h ^= h >> 29;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 32;
	return (uint32_t)h;
}

static int rows_eq(const struct ctx *c, size_t ti, uint32_t a, uint32_t b)
{
	const uint32_t *ra = c->m + (size_t)a * c->L, *rb = c->m + (size_t)b * c->L;
	const uint32_t *inc = c->tinc + ti * c->ninc;
	for (size_t i = 0; i < c->ninc; i++)
		if (ra[inc[i]] != rb[inc[i]])
			return 0;
	return 1;
}

static void tab_insert(struct ctx *c, size_t ti, uint32_t t)
{
	struct tab *tb = &c->tabs[ti];
	uint32_t tag = row_tag(c, ti, t);
	size_t i = tag & tb->mask;
	while (tb->e[i].tok != NONE32)
		i = (i + 1) & tb->mask;
	tb->e[i].tok = t;
	tb->e[i].tag = tag;
}

static void tab_remove(struct ctx *c, size_t ti, uint32_t t)
{
	struct tab *tb = &c->tabs[ti];
	uint32_t tag = row_tag(c, ti, t);
	size_t i = tag & tb->mask, j;
	while (tb->e[i].tok != t)
		i = (i + 1) & tb->mask;
	/* backward-shift deletion: no tombstones, clusters stay short */
	j = i;
	for (;;) {
		j = (j + 1) & tb->mask;
		if (tb->e[j].tok == NONE32)
			break;
		size_t h = tb->e[j].tag & tb->mask;
		if (((j - h) & tb->mask) >= ((j - i) & tb->mask)) {
			tb->e[i] = tb->e[j];
			i = j;
		}
	}
	tb->e[i].tok = NONE32;
}

static uint32_t tab_count(const struct ctx *c, size_t ti, uint32_t t)
{
	const struct tab *tb = &c->tabs[ti];
	uint32_t tag = row_tag(c, ti, t), n = 0;
	size_t i = tag & tb->mask;
	while (tb->e[i].tok != NONE32) {
		if (tb->e[i].tag == tag && tb->e[i].tok != t && rows_eq(c, ti, t, tb->e[i].tok))
			n++;
		i = (i + 1) & tb->mask;
	}
	return n;
}

/* a token colliding with t in table ti, or NONE32 */
static uint32_t tab_other(const struct ctx *c, size_t ti, uint32_t t)
{
	const struct tab *tb = &c->tabs[ti];
	uint32_t tag = row_tag(c, ti, t);
	size_t i = tag & tb->mask;
	while (tb->e[i].tok != NONE32) {
		if (tb->e[i].tag == tag && tb->e[i].tok != t && rows_eq(c, ti, t, tb->e[i].tok))
			return tb->e[i].tok;
		i = (i + 1) & tb->mask;
	}
	return NONE32;
}

static uint32_t dcost(const struct ctx *c, uint32_t t)
{
	uint32_t n = 0;
	for (size_t ti = 0; ti < c->ntab; ti++)
		n += tab_count(c, ti, t);
	return n;
}

static inline uint32_t cost(const struct ctx *c, uint32_t t)
{
	return pcost(c, t) + dcost(c, t);
}

static uint64_t binom(uint64_t n, uint64_t k)
{
	uint64_t r = 1;
	if (k > n)
		return 0;
	for (uint64_t i = 1; i <= k; i++) {
		if (r > UINT64_MAX / (n - k + i))
			return UINT64_MAX;
		r = r * (n - k + i) / i;
	}
	return r;
}

static void tables_fill(struct ctx *c);

/* the layers that count for uniqueness (once) */
static int nb_make(struct ctx *c)
{
	if (c->nb)
		return 0;
	c->nnb = 0;
	c->nb = kiln_calloc(c->L ? c->L : 1, sizeof *c->nb);
	if (!c->nb)
		return KILN_E_NOMEM;
	for (size_t l = 0; l < c->L; l++)
		if (!c->s->layers[l].bypass_dna)
			c->nb[c->nnb++] = (uint32_t)l;
	return 0;
}

static int tables_make(struct ctx *c, struct kiln_error *e)
{
	const struct kiln_spec *s = c->s;
	size_t cap = 2;
	uint64_t nt;

	if (nb_make(c))
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
	if (c->k == 0 || c->G < 2 || c->nnb < c->k)
		return 0; /* nothing to keep apart (or already reported infeasible) */
	c->ninc = c->nnb - (c->k - 1);
	nt = binom(c->nnb, c->k - 1);
	while (cap < 2 * c->G)
		cap *= 2;
	if (nt > ((uint64_t)1 << 27) / cap) {
		char where[600];
		kiln_spec_where(s, (struct kiln_loc){0, 0}, where, sizeof where);
		return kiln_error_set(e, KILN_E_INFEASIBLE, where,
				      "min_distance %u over %zu layers and %zu tokens needs %llu hash "
				      "tables, too many to plan in memory; lower min_distance",
				      c->k, c->nnb, c->G, ull(nt));
	}
	c->ntab = (size_t)nt;
	c->tabs = kiln_calloc(c->ntab, sizeof *c->tabs);
	c->tinc = kiln_calloc(c->ntab * c->ninc, sizeof *c->tinc);
	c->inc = kiln_calloc(c->ntab * c->L, 1);
	if (!c->tabs || !c->tinc || !c->inc)
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
	/* tables = the subsets of ninc non-bypass layers, in lexicographic order */
	{
		size_t idx[64 + 1], n = c->ninc, N = c->nnb, ti = 0;
		size_t *ix = idx;
		size_t *big = NULL;
		if (n > 64) {
			big = kiln_calloc(n, sizeof *big);
			if (!big)
				return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
			ix = big;
		}
		for (size_t i = 0; i < n; i++)
			ix[i] = i;
		for (;;) {
			for (size_t i = 0; i < n; i++) {
				c->tinc[ti * n + i] = c->nb[ix[i]];
				c->inc[ti * c->L + c->nb[ix[i]]] = 1;
			}
			ti++;
			if (!kiln_plan_next_subset(ix, n, N))
				break;
		}
		free(big);
	}
	for (size_t ti = 0; ti < c->ntab; ti++) {
		c->tabs[ti].e = kiln_malloc(cap * sizeof(struct ent));
		if (!c->tabs[ti].e)
			return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
		c->tabs[ti].mask = cap - 1;
	}
	tables_fill(c);
	return 0;
}

static void tables_fill(struct ctx *c)
{
	for (size_t ti = 0; ti < c->ntab; ti++) {
		memset(c->tabs[ti].e, 0xff, (c->tabs[ti].mask + 1) * sizeof(struct ent));
		for (size_t t = 0; t < c->G; t++)
			tab_insert(c, ti, (uint32_t)t);
	}
}

/* ---------------------------------------------------------------------------------------- */
/* the columns */

static void lists_fill(struct ctx *c);

static int lists_make(struct ctx *c)
{
	size_t G = c->G, L = c->L;
	c->goff = kiln_calloc(c->V ? c->V : 1, sizeof *c->goff);
	c->lst = kiln_malloc((G * L + 1) * sizeof *c->lst);
	c->pos = kiln_malloc((G * L + 1) * sizeof *c->pos);
	if (!c->goff || !c->lst || !c->pos)
		return KILN_E_NOMEM;
	lists_fill(c);
	return 0;
}

static void lists_fill(struct ctx *c)
{
	size_t G = c->G, L = c->L;
	for (size_t l = 0; l < L; l++) {
		size_t nt = c->s->layers[l].ntraits;
		uint64_t acc = 0;
		for (size_t v = 0; v < nt; v++) {
			c->goff[c->vbase[l] + v] = acc;
			acc += c->cnt[c->vbase[l] + v];
		}
	}
	/* counting sort; goff is used as the fill cursor and restored after */
	for (size_t l = 0; l < L; l++) {
		uint32_t *lst = c->lst + l * G, *pos = c->pos + l * G;
		for (size_t t = 0; t < G; t++) {
			size_t fv = c->vbase[l] + c->m[t * L + l];
			uint64_t p = c->goff[fv]++;
			lst[p] = (uint32_t)t;
			pos[t] = (uint32_t)p;
		}
		for (size_t v = 0; v < c->s->layers[l].ntraits; v++)
			c->goff[c->vbase[l] + v] -= c->cnt[c->vbase[l] + v];
	}
}

/* ---------------------------------------------------------------------------------------- */
/* construction: most constrained first (tight specs) */

/* counts of 64-bit key hashes, open addressing; a hash collision only biases the heuristic,
 * the search checks every key exactly */
struct kc {
	uint64_t key;
	uint32_t n;
};

struct kmap {
	struct kc *e;
	size_t mask;
};

static uint64_t kmix(uint64_t h)
{
	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 29;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 32;
	return h | 1; /* 0 marks an empty slot */
}

static struct kc *kmap_slot(struct kmap *m, uint64_t key)
{
	size_t i = (size_t)key & m->mask;
	while (m->e[i].key && m->e[i].key != key)
		i = (i + 1) & m->mask;
	return &m->e[i];
}

static uint32_t kmap_get(struct kmap *m, uint64_t key)
{
	struct kc *x = kmap_slot(m, key);
	return x->key ? x->n : 0;
}

static void kmap_add(struct kmap *m, uint64_t key)
{
	struct kc *x = kmap_slot(m, key);
	x->key = key;
	x->n++;
}

/* hash of token t's values on the layers of `key` other than `skip` */
static uint64_t sub_hash(const struct ctx *c, uint32_t t, const uint32_t *key, size_t nkey,
			 size_t skip, uint64_t salt)
{
	const uint32_t *row = c->m + (size_t)t * c->L;
	uint64_t h = 0x9e3779b97f4a7c15ULL * (salt + 1);
	for (size_t i = 0; i < nkey; i++)
		if (key[i] != skip)
			h = kmix(h ^ ((uint64_t)row[key[i]] + 1));
	return h;
}

static inline uint64_t full_hash(uint64_t sub, uint32_t v)
{
	return kmix(sub ^ (((uint64_t)v + 1) * 0xd6e8feb86659fd93ULL));
}

static int rules_tight(const struct ctx *c);

/* Expected pairs of tokens too close, if the columns were independent shuffles, times 64 / G:
 * above 1 (more than one token in 64 to repair) the construction below is worth its cost. */
static int is_tight(const struct ctx *c)
{
	double pairs = 0, G = (double)c->G;
	if (c->G < 2)
		return 0;
	if (c->k == 0 || c->nnb < c->k)
		return rules_tight(c);
	/* one term per final table; a key of nnb - (k-1) layers out of nnb */
	{
		size_t d = c->k - 1, n = c->nnb, idx[64];
		if (n > 64 || binom(n, d) > 4096)
			return 1;
		for (size_t i = 0; i < d; i++)
			idx[i] = i;
		for (;;) {
			double p = 1;
			for (size_t i = 0, j = 0; i < n; i++) {
				size_t l = c->nb[i];
				double q = 0;
				if (j < d && idx[j] == i) {
					j++;
					continue;
				}
				for (size_t v = 0; v < c->s->layers[l].ntraits; v++) {
					double f = (double)c->cnt[c->vbase[l] + v] / G;
					q += f * f;
				}
				p *= q;
			}
			pairs += p * G * G / 2;
			size_t i = d;
			while (i > 0 && idx[i - 1] == n - d + i - 1)
				i--;
			if (i == 0)
				break;
			idx[i - 1]++;
			for (size_t j = i; j < d; j++)
				idx[j] = idx[j - 1] + 1;
		}
	}
	return pairs * 64 > G || rules_tight(c);
}

/* the same for the rules: tokens expected to match a pattern, times 64 / G */
static int rules_tight(const struct ctx *c)
{
	double hits = 0, G = (double)c->G;
	for (size_t p = 0; p < c->npats; p++) {
		double f = G;
		for (uint32_t i = 0; i < c->pats[p].nl; i++) {
			const struct patl *q = &c->pl[c->pats[p].first + i];
			f *= (double)(c->G - q->comp) / G;
		}
		hits += f;
	}
	return hits * 64 > G;
}

struct corder {
	uint64_t deg;
	uint64_t tie;
	uint32_t t;
};

static int corder_cmp(const void *a, const void *b)
{
	const struct corder *x = a, *y = b;
	if (x->deg != y->deg)
		return x->deg > y->deg ? -1 : 1;
	if (x->tie != y->tie)
		return x->tie < y->tie ? -1 : 1;
	return x->t < y->t ? -1 : x->t > y->t;
}

/* The tables the construction keeps at layer l (a non-bypass layer, q-th of them counting
 * from 1): "final" keys are keys of the real uniqueness tables that layer l completes (their
 * collisions are real), "spread" keys are the prefix keys with k-1 filled layers left out
 * (fewer tokens sharing them now means fewer collisions later). Each key is a list of layers
 * holding l. Returns the number of keys written (at most cap), nfinal of them final first. */
static size_t ckeys(const struct ctx *c, size_t l, size_t q, uint32_t *keys, size_t *klen,
		    size_t cap, size_t *nfinal)
{
	size_t d = c->k - 1, nn = c->nnb, n = 0;
	uint32_t prev[64];
	size_t np = 0;
	*nfinal = 0;
	for (size_t i = 0; i < nn && c->nb[i] < l && np < 64; i++)
		prev[np++] = c->nb[i];
	for (int pass = 0; pass < 2; pass++) {
		long drop = pass == 0 ? (long)d - (long)(nn - q) : (long)d;
		if (pass == 1 && q == nn)
			break; /* the spread keys are the final ones */
		if (drop < 0 || (size_t)drop > np)
			continue;
		if (binom(np, (uint64_t)drop) > cap - n)
			continue;
		size_t idx[64];
		for (long i = 0; i < drop; i++)
			idx[i] = (size_t)i;
		for (;;) {
			size_t len = 0, j = 0;
			uint32_t *kk = keys + n * 65;
			for (size_t i = 0; i < np; i++) {
				if ((long)j < drop && idx[j] == i) {
					j++;
					continue;
				}
				kk[len++] = prev[i];
			}
			kk[len++] = (uint32_t)l;
			klen[n++] = len;
			long i = drop;
			while (i > 0 && idx[i - 1] == np - (size_t)drop + (size_t)i - 1)
				i--;
			if (i == 0)
				break;
			idx[i - 1]++;
			for (long jj = i; jj < drop; jj++)
				idx[jj] = idx[jj - 1] + 1;
		}
		if (pass == 0)
			*nfinal = n;
	}
	return n;
}

#define CKEYS 32 /* tables the construction keeps per layer */

/* Fill the cells of c->m still NONE32, layer by layer, so that each layer's column holds
 * exactly its target multiset: tokens sharing the most of their filled layers with others
 * choose first; each takes, among the values with room left, the one breaking the fewest
 * patterns and making the fewest collisions in the tables this layer completes, then the one
 * whose prefix keys are least crowded for its quota, ties at random. */
static int construct(struct ctx *c)
{
	size_t G = c->G, L = c->L, cap = 2, q = 0;
	uint32_t *keys = kiln_malloc(CKEYS * 65 * sizeof *keys);
	size_t klen[CKEYS];
	struct kmap maps[CKEYS];
	struct corder *ord = kiln_malloc((G ? G : 1) * sizeof *ord);
	uint64_t *subs = kiln_malloc(CKEYS * sizeof *subs);
	uint32_t *maxl = kiln_calloc(c->npats ? c->npats : 1, sizeof *maxl);
	uint64_t *left = NULL, *forb = NULL;
	size_t maxnt = 1;
	int rc = KILN_E_NOMEM;

	memset(maps, 0, sizeof maps);
	for (size_t l = 0; l < L; l++)
		if (c->s->layers[l].ntraits > maxnt)
			maxnt = c->s->layers[l].ntraits;
	left = kiln_malloc(maxnt * sizeof *left);
	forb = kiln_malloc(maxnt * sizeof *forb);
	if (!keys || !ord || !subs || !maxl || !left || !forb)
		goto out;
	while (cap < 2 * G)
		cap *= 2;
	/* as many tables as the busiest layer needs; big collections keep fewer (memory) */
	{
		size_t need = 1, qq = 0, nf;
		for (size_t l = 0; l < L; l++)
			if (!c->s->layers[l].bypass_dna && c->k > 0) {
				size_t nk = ckeys(c, l, ++qq, keys, klen, CKEYS, &nf);
				if (nk > need)
					need = nk;
			}
		if (G > 200000)
			need = 1;
		else if (G > 50000 && need > 4)
			need = 4;
		for (size_t i = 0; i < need; i++) {
			maps[i].e = kiln_malloc(cap * sizeof(struct kc));
			if (!maps[i].e)
				goto out;
			maps[i].mask = cap - 1;
		}
	}
	for (size_t p = 0; p < c->npats; p++)
		for (uint32_t i = 0; i < c->pats[p].nl; i++)
			if (c->pl[c->pats[p].first + i].layer > maxl[p])
				maxl[p] = c->pl[c->pats[p].first + i].layer;

	for (size_t l = 0; l < L; l++) {
		size_t nt = c->s->layers[l].ntraits, nk = 0, nfinal = 0, nord = 0;
		int counts = !c->s->layers[l].bypass_dna && c->k > 0;
		if (counts)
			q++;
		if (counts) {
			nk = ckeys(c, l, q, keys, klen, CKEYS, &nfinal);
			while (nk && !maps[nk - 1].e)
				nk--;
			if (nfinal > nk)
				nfinal = nk;
		}
		for (size_t v = 0; v < nt; v++)
			left[v] = c->cnt[c->vbase[l] + v];
		for (size_t t = 0; t < G; t++) {
			uint32_t v = c->m[t * L + l];
			if (v != NONE32)
				left[v]--;
			else
				ord[nord++].t = (uint32_t)t;
		}
		if (!nord)
			continue;
		/* degree: tokens sharing the key without this layer (most constrained first) */
		for (size_t i = 0; i < nk; i++) {
			memset(maps[i].e, 0, cap * sizeof(struct kc));
			for (size_t t = 0; t < G; t++)
				kmap_add(&maps[i], sub_hash(c, (uint32_t)t, keys + i * 65, klen[i], l, i));
		}
		for (size_t j = 0; j < nord; j++) {
			uint64_t dg = 0;
			for (size_t i = 0; i < nk; i++)
				dg += (uint64_t)kmap_get(&maps[i], sub_hash(c, ord[j].t, keys + i * 65,
									   klen[i], l, i)) << (i < nfinal ? 20 : 0);
			ord[j].deg = dg;
			ord[j].tie = kiln_rng_next(&c->rng);
		}
		qsort(ord, nord, sizeof *ord, corder_cmp);
		for (size_t i = 0; i < nk; i++) {
			memset(maps[i].e, 0, cap * sizeof(struct kc));
			for (size_t t = 0; t < G; t++)
				if (c->m[t * L + l] != NONE32)
					kmap_add(&maps[i], full_hash(sub_hash(c, (uint32_t)t, keys + i * 65,
									      klen[i], l, i),
								     c->m[t * L + l]));
		}
		for (size_t j = 0; j < nord; j++) {
			uint32_t t = ord[j].t, best = NONE32;
			uint32_t *row = c->m + (size_t)t * L;
			uint64_t b1 = 0, b2 = 0, bcnt = 1, nties = 1;
			memset(forb, 0, nt * sizeof *forb);
			for (size_t p = 0; p < c->npats; p++) {
				const struct pat *pt = &c->pats[p];
				const struct patl *ql = NULL;
				int match = 1;
				if (maxl[p] != l)
					continue;
				for (uint32_t i = 0; i < pt->nl && match; i++) {
					const struct patl *x = &c->pl[pt->first + i];
					if (x->layer == l)
						ql = x;
					else
						match = c->pool[x->set + row[x->layer]] != 0;
				}
				if (match && ql)
					for (size_t v = 0; v < nt; v++)
						forb[v] += c->pool[ql->set + v];
			}
			for (size_t i = 0; i < nk; i++)
				subs[i] = sub_hash(c, t, keys + i * 65, klen[i], l, i);
			for (uint32_t v = 0; v < nt; v++) {
				uint64_t c1 = forb[v], c2 = 0, cv = c->cnt[c->vbase[l] + v];
				int better;
				if (!left[v])
					continue;
				for (size_t i = 0; i < nk; i++) {
					uint32_t n = kmap_get(&maps[i], full_hash(subs[i], v));
					if (i < nfinal)
						c1 += n;
					else
						c2 += n;
				}
				if (best == NONE32 || c1 < b1)
					better = 1;
				else if (c1 > b1)
					better = 0;
				else if (c2 * bcnt != b2 * cv)
					better = c2 * bcnt < b2 * cv;
				else
					better = 2; /* a tie: keep one of them at random */
				if (better == 2 && kiln_rng_below(&c->rng, ++nties) != 0)
					continue;
				if (better == 1)
					nties = 1;
				if (better) {
					best = v;
					b1 = c1;
					b2 = c2;
					bcnt = cv;
				}
			}
			row[l] = best;
			left[best]--;
			for (size_t i = 0; i < nk; i++)
				kmap_add(&maps[i], full_hash(subs[i], best));
		}
	}
	rc = 0;
out:
	for (size_t i = 0; i < CKEYS; i++)
		free(maps[i].e);
	free(keys);
	free(ord);
	free(subs);
	free(maxl);
	free(left);
	free(forb);
	return rc;
}

/* Each layer's column: the previous plan's values on the rows kept from it while the value's
 * target has room, the rest dealt by construct() (tight specs) or shuffled. Sets c->intact. */
static int columns(struct ctx *c, const struct kiln_plan_prev *prev, const uint32_t *rowprev,
		   size_t npinned, int tight)
{
	size_t G = c->G, L = c->L, maxnt = 1;
	uint32_t *pool = NULL;
	uint64_t *left = NULL;
	int rc = KILN_E_NOMEM;
	for (size_t l = 0; l < L; l++)
		if (c->s->layers[l].ntraits > maxnt)
			maxnt = c->s->layers[l].ntraits;
	left = kiln_malloc(maxnt * sizeof *left);
	pool = tight ? NULL : kiln_malloc((G ? G : 1) * sizeof *pool);
	if (!left || (!tight && !pool))
		goto out;
	for (size_t l = 0; l < L; l++) {
		size_t nt = c->s->layers[l].ntraits, np = 0;
		memcpy(left, c->cnt + c->vbase[l], nt * sizeof *left);
		for (size_t r = 0; r < npinned; r++) {
			uint32_t v = prev->matrix[(size_t)rowprev[r] * L + l];
			if (v < nt && left[v]) {
				left[v]--;
				c->m[r * L + l] = v;
			} else {
				c->m[r * L + l] = NONE32;
			}
		}
		for (size_t r = npinned; r < G; r++)
			c->m[r * L + l] = NONE32;
		if (tight)
			continue; /* construct() fills the rest */
		for (size_t v = 0; v < nt; v++)
			for (uint64_t i = 0; i < left[v]; i++)
				pool[np++] = (uint32_t)v;
		kiln_rng_shuffle(&c->rng, pool, np, sizeof *pool);
		for (size_t r = 0, i = 0; r < G; r++)
			if (c->m[r * L + l] == NONE32)
				c->m[r * L + l] = pool[i++];
	}
	if (tight && construct(c))
		goto out;
	if (npinned) {
		if (!c->intact)
			c->intact = kiln_calloc(G, 1);
		if (!c->intact)
			goto out;
		for (size_t r = 0; r < npinned; r++) {
			int same = 1;
			for (size_t l = 0; l < L && same; l++)
				same = c->m[r * L + l] == prev->matrix[(size_t)rowprev[r] * L + l];
			c->intact[r] = (unsigned char)same;
		}
	}
	rc = 0;
out:
	free(pool);
	free(left);
	return rc;
}

static void do_swap(struct ctx *c, uint32_t a, uint32_t b, size_t l)
{
	size_t L = c->L, G = c->G;
	uint32_t *ma = &c->m[(size_t)a * L + l], *mb = &c->m[(size_t)b * L + l], x;
	uint32_t *lst = c->lst + l * G, *pos = c->pos + l * G;
	for (size_t ti = 0; ti < c->ntab; ti++)
		if (c->inc[ti * L + l]) {
			tab_remove(c, ti, a);
			tab_remove(c, ti, b);
		}
	x = *ma;
	*ma = *mb;
	*mb = x;
	x = pos[a];
	pos[a] = pos[b];
	pos[b] = x;
	lst[pos[a]] = a;
	lst[pos[b]] = b;
	for (size_t ti = 0; ti < c->ntab; ti++)
		if (c->inc[ti * L + l]) {
			tab_insert(c, ti, a);
			tab_insert(c, ti, b);
		}
}

static void q_push(struct ctx *c, uint32_t t)
{
	if (c->inq[t])
		return;
	c->inq[t] = 1;
	c->queue[(c->qh + c->qn) % c->G] = t;
	c->qn++;
}

static uint32_t q_pop(struct ctx *c)
{
	uint32_t t = c->queue[c->qh];
	c->qh = (c->qh + 1) % c->G;
	c->qn--;
	c->inq[t] = 0;
	return t;
}

/* a random token holding a value of layer l outside pattern layer q's set */
static uint32_t pick_outside(struct ctx *c, const struct patl *q)
{
	size_t l = q->layer, nt = c->s->layers[l].ntraits;
	uint64_t r = kiln_rng_below(&c->rng, q->comp);
	for (size_t v = 0; v < nt; v++) {
		size_t fv = c->vbase[l] + v;
		if (c->pool[q->set + v])
			continue;
		if (r < c->cnt[fv])
			return c->lst[l * c->G + c->goff[fv] + r];
		r -= c->cnt[fv];
	}
	return NONE32;
}

/* One repair step on token a (cost ca > 0). Returns 1 when a move was made. */
static int repair(struct ctx *c, uint32_t a, uint32_t pc, uint32_t dc, const uint32_t *freeze)
{
	size_t L = c->L, l = 0;
	uint32_t cand[NCAND], candl[NCAND];
	size_t ncand = 0;
	int use_pat = pc && (!dc || (kiln_rng_next(&c->rng) & 1));

	if (use_pat) {
		const struct pat *p = pmatched(c, a, (uint32_t)kiln_rng_below(&c->rng, pc));
		uint32_t st = (uint32_t)kiln_rng_below(&c->rng, p->nl);
		const struct patl *q = NULL;
		for (uint32_t i = 0; i < p->nl; i++) {
			const struct patl *qq = &c->pl[p->first + (st + i) % p->nl];
			if (qq->comp && !(freeze && qq->layer == *freeze)) {
				q = qq;
				break;
			}
		}
		if (!q)
			return 0;
		l = q->layer;
		for (int i = 0; i < NCAND; i++) {
			uint32_t b = pick_outside(c, q);
			if (b != NONE32 && b != a) {
				candl[ncand] = (uint32_t)l;
				cand[ncand++] = b;
			}
		}
	} else {
		/* too close to another token: change a layer in the key of a table it collides
		 * in, preferring a layer where the other token agrees */
		uint32_t other = NONE32;
		size_t ti0 = kiln_rng_below(&c->rng, c->ntab), ti = 0;
		for (size_t i = 0; i < c->ntab; i++) {
			ti = (ti0 + i) % c->ntab;
			other = tab_other(c, ti, a);
			if (other != NONE32)
				break;
		}
		if (other == NONE32)
			return 0;
		/* targeted: the (layer, value) changes of a that leave it with the fewest
		 * collisions and broken patterns, each with a partner holding that value */
		const uint32_t *inc = c->tinc + ti * c->ninc;
		uint32_t *ra = c->m + (size_t)a * L;
		uint32_t cc[NCAND];
		size_t nties = 0;
		(void)other;
		size_t nv = 0;
		for (size_t i = 0; i < c->ninc; i++)
			nv += c->s->layers[inc[i]].ntraits;
		for (size_t it = 0; it < (nv < NTRY ? nv : NTRY); it++) {
			/* every (layer, value) of the key when they are few, else NTRY at random */
			size_t ll = 0, pick = nv <= NTRY ? it : kiln_rng_below(&c->rng, nv);
			for (size_t i = 0; i < c->ninc; i++) {
				ll = inc[i];
				if (pick < c->s->layers[ll].ntraits)
					break;
				pick -= c->s->layers[ll].ntraits;
			}
			uint32_t cur = ra[ll], v = (uint32_t)pick;
			if (freeze && ll == *freeze)
				continue;
			{
				if (v == cur || !c->cnt[c->vbase[ll] + v])
					continue;
				ra[ll] = v;
				uint32_t cv = cost(c, a);
				ra[ll] = cur;
				/* keep the NCAND cheapest, ties at random (reservoir per cost) */
				size_t worst = 0;
				if (ncand < NCAND) {
					cand[ncand] = (uint32_t)(c->vbase[ll] + v);
					cc[ncand++] = cv;
					continue;
				}
				for (size_t j = 1; j < ncand; j++)
					if (cc[j] > cc[worst])
						worst = j;
				if (cv < cc[worst] ||
				    (cv == cc[worst] && kiln_rng_below(&c->rng, ++nties + 1) == 0)) {
					cand[worst] = (uint32_t)(c->vbase[ll] + v);
					cc[worst] = cv;
				}
			}
		}
		/* flat values -> (layer, partner) */
		for (size_t i = 0; i < ncand; i++) {
			size_t fv = cand[i], ll = 0;
			while (ll + 1 < L && c->vbase[ll + 1] <= fv)
				ll++;
			candl[i] = (uint32_t)ll;
			cand[i] = c->lst[ll * c->G + c->goff[fv] +
					 kiln_rng_below(&c->rng, c->cnt[fv])];
		}
	}
	if (!ncand)
		return 0;

	long best = 0, bestscore = 0;
	uint32_t bb = NONE32;
	long ca = (long)pc + (long)dc;
	for (size_t i = 0; i < ncand; i++) {
		uint32_t b = cand[i];
		size_t lb = candl[i];
		long cb = (long)cost(c, b);
		do_swap(c, a, b, lb);
		long d = (long)cost(c, a) + (long)cost(c, b) - ca - cb;
		do_swap(c, a, b, lb);
		long score = 2 * d + (c->intact && c->intact[b] ? 1 : 0);
		if (bb == NONE32 || score < bestscore) {
			bb = b;
			l = lb;
			best = d;
			bestscore = score;
		}
	}
	/* accept improving and sideways moves; a worsening one now and then, to leave plateaus */
	if (best > 0 && (best > 1 || kiln_rng_below(&c->rng, 32) != 0))
		return 0;
	do_swap(c, a, bb, l);
	c->F = (uint64_t)((long)c->F + best);
	if (c->intact)
		c->intact[a] = c->intact[bb] = 0;
	if (cost(c, bb))
		q_push(c, bb);
	return 1;
}

/* Repair until F == 0 or the effort bounds are reached. 0: solved. */
static int search(struct ctx *c, uint64_t max_pops, uint64_t stall, const uint32_t *freeze)
{
	uint64_t best, since = 0;
	c->qh = c->qn = 0;
	c->F = 0;
	memset(c->inq, 0, c->G);
	for (size_t t = 0; t < c->G; t++) {
		uint32_t pc = pcost(c, (uint32_t)t), dc = dcost(c, (uint32_t)t);
		c->F += pc;
		c->F += dc; /* pairs counted twice here, halved below */
		if (pc + dc)
			q_push(c, (uint32_t)t);
	}
	{
		/* F = patterns + pairs: recount pairs once */
		uint64_t pairs2 = 0, pats = 0;
		for (size_t t = 0; t < c->G && c->ntab; t++)
			pairs2 += dcost(c, (uint32_t)t);
		pats = c->F - pairs2;
		c->F = pats + pairs2 / 2;
	}
	best = c->F;
	while (c->qn && c->F > 0 && c->pops < max_pops && since < stall) {
		uint32_t a = q_pop(c);
		uint32_t pc = pcost(c, a), dc = dcost(c, a);
		if (!(pc + dc))
			continue;
		c->pops++;
		since++;
		repair(c, a, pc, dc, freeze);
		if (c->F < best) {
			best = c->F;
			since = 0;
		}
		if (cost(c, a))
			q_push(c, a);
	}
	return c->F == 0 ? 0 : 1;
}

/* ---------------------------------------------------------------------------------------- */
/* the exact integer program (exact.c) for small tight specs, when the search fails */

#define EXACT_SPACE 400000 /* trait sets enumerated at most */
#define EXACT_COLS 1000    /* allowed trait sets the integer program takes at most */
#define EXACT_NODES 300    /* branch-and-bound nodes per unit of effort */

/* patterns a row (not a token of c->m) matches */
static uint32_t row_pcost(const struct ctx *c, const uint32_t *row)
{
	uint32_t n = 0;
	for (size_t l = 0; l < c->L && c->npats; l++) {
		size_t fv = c->vbase[l] + row[l];
		for (uint32_t j = c->anc_off[fv]; j < c->anc_off[fv + 1]; j++)
			n += (uint32_t)pat_rest(c, &c->pats[c->anc[j]], row);
	}
	return n;
}

/* every trait set of values with tokens that breaks no rule: 0, 1 when there are too many
 * to enumerate or to solve exactly, KILN_E_NOMEM */
static int enum_combos(const struct ctx *c, uint32_t **out, size_t *n)
{
	size_t L = c->L, cap = 0, np = 1;
	uint32_t *row = kiln_calloc(L + 1, sizeof *row), *res = NULL;
	int rc = 0;
	*out = NULL;
	*n = 0;
	if (!row)
		return KILN_E_NOMEM;
	for (size_t l = 0; l < L; l++) {
		size_t nz = 0;
		for (size_t v = 0; v < c->s->layers[l].ntraits; v++)
			nz += c->cnt[c->vbase[l] + v] != 0;
		if (!nz || np > EXACT_SPACE / nz) {
			free(row);
			return 1;
		}
		np *= nz;
	}
	for (size_t l = 0; l < L; l++)
		while (!c->cnt[c->vbase[l] + row[l]])
			row[l]++;
	for (;;) {
		if (!row_pcost(c, row)) {
			if (*n == EXACT_COLS) {
				rc = 1;
				break;
			}
			if (grow((void **)&res, &cap, (*n + 1) * L, sizeof *res)) {
				rc = KILN_E_NOMEM;
				break;
			}
			memcpy(res + *n * L, row, L * sizeof *row);
			(*n)++;
		}
		/* next: the last layer moves fastest, values without tokens skipped */
		size_t l = L;
		while (l > 0) {
			size_t nt = c->s->layers[l - 1].ntraits;
			do
				row[l - 1]++;
			while (row[l - 1] < nt && !c->cnt[c->vbase[l - 1] + row[l - 1]]);
			if (row[l - 1] < nt)
				break;
			row[l - 1] = 0;
			while (!c->cnt[c->vbase[l - 1] + row[l - 1]])
				row[l - 1]++;
			l--;
		}
		if (l == 0)
			break;
	}
	free(row);
	if (rc) {
		free(res);
		return rc;
	}
	*out = res;
	return 0;
}

static int row_cmp(const void *a, const void *b, void *arg)
{
	size_t L = *(const size_t *)arg;
	const uint32_t *x = a, *y = b;
	/* numeric order, as the combinations are enumerated (memcmp is byte order: it differs
	 * from it on little-endian machines once a value index reaches 256) */
	for (size_t l = 0; l < L; l++)
		if (x[l] != y[l])
			return x[l] < y[l] ? -1 : 1;
	return 0;
}

/* Solve exactly when the trait sets are few. Fills c->m (rows kept from the previous plan
 * stay on their row when the solution holds them) and checks it with the search's own
 * tables. Returns a KILN_EXACT_* status; *ncombo the trait sets considered. */
static int exact_solve(struct ctx *c, unsigned effort, const struct kiln_plan_prev *prev,
		       const uint32_t *rowprev, size_t npinned, size_t *ncombo)
{
	size_t L = c->L, G = c->G, n = 0;
	uint32_t *combos = NULL, *sel = NULL;
	unsigned char *used = NULL, *done = NULL;
	int st, rc = enum_combos(c, &combos, &n);
	*ncombo = n;
	c->exact_n = n;
	if (rc == KILN_E_NOMEM)
		return KILN_EXACT_NOMEM;
	if (rc) {
		c->exact_st = -2;
		return KILN_EXACT_TOOBIG;
	}
	if (n < G) {
		free(combos);
		return KILN_EXACT_NONE; /* fewer allowed trait sets than tokens */
	}
	sel = kiln_malloc((G ? G : 1) * sizeof *sel);
	if (!sel) {
		free(combos);
		return KILN_EXACT_NOMEM;
	}
	{
		struct kiln_exact in = {
			.L = L, .vbase = c->vbase, .cnt = c->cnt, .nb = c->nb, .nnb = c->nnb,
			.k = c->k, .combos = combos, .ncombo = n, .G = G,
			.nodes = (uint64_t)EXACT_NODES * effort,
		};
		st = kiln_plan_exact(&in, sel);
		c->exact_st = st;
	}
	if (st != KILN_EXACT_FOUND)
		goto out;
	/* combos are sorted (enumeration order); rows kept from the previous plan first */
	used = kiln_calloc(n + 1, 1);
	done = kiln_calloc(G + 1, 1);
	if (!used || !done) {
		st = KILN_EXACT_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < G; i++)
		used[sel[i]] = 1;
	for (size_t r = 0; r < npinned; r++) {
		const uint32_t *pr = prev->matrix + (size_t)rowprev[r] * L;
		size_t lo = 0, hi = n;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			int cmp = row_cmp(combos + mid * L, pr, &L);
			if (cmp < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < n && used[lo] == 1 && !row_cmp(combos + lo * L, pr, &L)) {
			memcpy(c->m + r * L, combos + lo * L, L * sizeof *c->m);
			used[lo] = 2;
			done[r] = 1;
		}
	}
	for (size_t r = 0, i = 0; r < G; r++) {
		if (done[r])
			continue;
		while (used[sel[i]] != 1)
			i++;
		memcpy(c->m + r * L, combos + (size_t)sel[i] * L, L * sizeof *c->m);
		used[sel[i]] = 2;
	}
	if (c->intact)
		for (size_t r = 0; r < G; r++)
			c->intact[r] = c->intact[r] && done[r];
	lists_fill(c);
	tables_fill(c);
	if (search(c, 0, 0, NULL))
		st = KILN_EXACT_UNKNOWN; /* cannot happen: the program holds every constraint */
out:
	free(combos);
	free(sel);
	free(used);
	free(done);
	return st;
}

/* min_distance >= 2: a plan inside an algebraic code (code.c), the min_distance-1 planner
 * over its words; checked by the search's own tables. 0 (c->m holds it), KILN_E_NOTFOUND,
 * KILN_E_NOMEM. */
static int code_plan(struct ctx *c, unsigned effort, unsigned skip, unsigned tries,
		     unsigned rounds, const struct kiln_plan_prev *prev, const uint32_t *rowprev, size_t npinned,
		     uint32_t **lpprefer, struct kiln_error *e)
{
	const struct kiln_spec *s = c->s;
	size_t L = c->L;
	struct kiln_plan_code cp = {
		.lp = {.s = s, .L = L, .G = c->G, .vbase = c->vbase, .cnt = c->cnt, .k = 1,
		       .forbidden = row_forbidden, .arg = c, .effort = effort},
		.k = c->k, .nb = c->nb, .nnb = c->nnb, .seed = s->seed,
		.tries = tries, .skip = skip, .rounds = rounds};
	struct kiln_plan_code_report rep = {0};
	struct kiln_plan_code_patl *pl = NULL;
	uint32_t *pfirst = NULL;
	int rc;
	pl = kiln_malloc((c->npl + 1) * sizeof *pl);
	pfirst = kiln_malloc((c->npats + 1) * sizeof *pfirst);
	if (!pl || !pfirst) {
		free(pl);
		free(pfirst);
		return KILN_E_NOMEM;
	}
	for (size_t q = 0; q < c->npl; q++)
		pl[q] = (struct kiln_plan_code_patl){c->pl[q].layer, c->pool + c->pl[q].set};
	for (size_t p = 0; p < c->npats; p++)
		pfirst[p] = c->pats[p].first;
	pfirst[c->npats] = (uint32_t)c->npl;
	cp.pl = pl;
	cp.pfirst = pfirst;
	cp.npats = c->npats;
	if (npinned) {
		free(*lpprefer);
		*lpprefer = kiln_malloc(npinned * L * sizeof **lpprefer);
		if (!*lpprefer) {
			free(pl);
			free(pfirst);
			return KILN_E_NOMEM;
		}
		for (size_t r = 0; r < npinned; r++)
			memcpy(*lpprefer + r * L, prev->matrix + (size_t)rowprev[r] * L,
			       L * sizeof **lpprefer);
		cp.lp.prefer = *lpprefer;
		cp.lp.nprefer = npinned;
	}
	cp.rep = &rep;
	rc = kiln_plan_code_solve(&cp, c->m, e);
	c->code_ran = 1;
	c->crep.code = rep.code;
	c->crep.labelings += rep.labelings;
	c->crep.joint_rounds += rep.joint_rounds;
	c->crep.joint_big += rep.joint_big;
	free(pl);
	free(pfirst);
	if (rc)
		return rc == KILN_E_NOMEM ? rc : KILN_E_NOTFOUND;
	lists_fill(c);
	tables_fill(c);
	return search(c, 0, 0, NULL) ? KILN_E_NOTFOUND : 0; /* cannot fail: the code's distance */
}

/* the integer program proved that no plan exists */
static int exact_infeasible(struct ctx *c, size_t ncombo, struct kiln_error *e)
{
	char where[600];
	kiln_spec_where(c->s, (struct kiln_loc){0, 0}, where, sizeof where);
	return kiln_error_set(e, KILN_E_INFEASIBLE, where,
			      "no %zu generated tokens can hold these quotas%s with every two "
			      "differing in at least %u layers: an exact search over all %zu trait "
			      "sets the rules allow proves it; lower min_distance, change the "
			      "counts, or add values",
			      c->G, c->s->nrules ? " and rules" : "", c->k, ncombo);
}

/* ---------------------------------------------------------------------------------------- */
/* cheap exact necessary conditions */

static int check_patterns(struct ctx *c, struct kiln_error *e)
{
	const struct kiln_spec *s = c->s;
	char rt[700], t1[400], t2[400];
	uint64_t G = c->G;

	for (size_t p = 0; p < c->npats; p++) {
		const struct pat *pt = &c->pats[p];
		const struct kiln_rule *r = &s->rules[pt->rule];
		uint64_t sum = 0, cs[64];
		for (uint32_t i = 0; i < pt->nl; i++) {
			const struct patl *q = &c->pl[pt->first + i];
			uint64_t in = G - q->comp;
			sum += in;
			if (i < 64)
				cs[i] = in;
		}
		rule_text(rt, sizeof rt, s, r);
		if (pt->nl == 1) {
			const struct patl *q = &c->pl[pt->first];
			t1[0] = 0;
			set_text(t1, sizeof t1, s, q->layer, c->pool + q->set);
			return infeasible_rule(c, e, pt->rule,
					       "the rule `%s` can never hold for a token holding %s, "
					       "but %s has %llu tokens; it can have none",
					       rt, t1, t1, ull(G - q->comp));
		}
		if (sum <= (uint64_t)(pt->nl - 1) * G)
			continue;
		const struct patl *q0 = &c->pl[pt->first], *q1 = &c->pl[pt->first + 1];
		t1[0] = t2[0] = 0;
		if (r->kind == KILN_RULE_IF && r->nwhen == 1 && pt->nl == 2 &&
		    r->when[0].layer != r->then[pt->a].layer) {
			uint64_t cw = clause_count(c, &r->when[0]);
			uint64_t ct = clause_count(c, &r->then[pt->a]);
			clause_text(t1, sizeof t1, s, &r->when[0]);
			clause_text(t2, sizeof t2, s, &r->then[pt->a]);
			return infeasible_rule(c, e, pt->rule,
					       "the rule `%s` needs each of the %llu tokens with {%s} "
					       "to hold {%s}, which has %llu tokens in all: {%s} can "
					       "have at most %llu tokens (or give {%s} at least %llu)",
					       rt, ull(cw), t1, t2, ull(ct), t1, ull(ct), t2, ull(cw));
		}
		if (r->kind == KILN_RULE_WITH && pt->nl == 2) {
			uint64_t ca = clause_count(c, &r->when[pt->a]);
			uint64_t cb = clause_count(c, &r->when[pt->b]);
			clause_text(t1, sizeof t1, s, &r->when[pt->a]);
			clause_text(t2, sizeof t2, s, &r->when[pt->b]);
			return infeasible_rule(c, e, pt->rule,
					       "the rule `%s` makes every token with {%s} hold {%s} "
					       "and the other way round, so their counts must be "
					       "equal, but {%s} has %llu tokens and {%s} %llu: {%s} "
					       "can have at most %llu tokens",
					       rt, t1, t2, t1, ull(ca), t2, ull(cb), t1,
					       ull(ca < cb ? ca : cb));
		}
		set_text(t1, sizeof t1, s, q0->layer, c->pool + q0->set);
		set_text(t2, sizeof t2, s, q1->layer, c->pool + q1->set);
		if (pt->nl == 2)
			return infeasible_rule(c, e, pt->rule,
					       "the rule `%s` keeps %s (%llu tokens) and %s (%llu "
					       "tokens) apart, but together they have %llu, more than "
					       "the %llu generated tokens: %s can have at most %llu "
					       "tokens (or %s at most %llu)",
					       rt, t1, ull(cs[0]), t2, ull(cs[1]), ull(sum), ull(G), t1,
					       ull(G - cs[1]), t2, ull(G - cs[0]));
		return infeasible_rule(c, e, pt->rule,
				       "the rule `%s` cannot hold: its %u sets of values have %llu "
				       "tokens in all, but %llu tokens can hold at most %llu of them "
				       "without matching all %u at once; lower the counts of the "
				       "values it names by %llu in all",
				       rt, pt->nl, ull(sum), ull(G), ull((uint64_t)(pt->nl - 1) * G),
				       pt->nl, ull(sum - (uint64_t)(pt->nl - 1) * G));
	}
	return 0;
}

/* Every token holding (l, v) must hold, in every other layer, a value the rules allow next to
 * it. The allowed values are found by propagation over the two-layer patterns (arc
 * consistency): with (l, v) fixed, a layer's value is removed when every value still allowed
 * in another layer forms a forbidden pair with it; so chains (Crown -> Gold -> Laser, and
 * Crown excludes Laser) are followed. count(v) <= the tokens of the values left, per layer.
 * Every failing value is reported (one line each). */
static int check_pairs(struct ctx *c, struct kiln_error *e)
{
	const struct kiln_spec *s = c->s;
	unsigned char *dom = NULL, *allowed = NULL, *used = NULL;
	size_t nfail = 0;
	int rc = 0, any2 = 0;

	for (size_t p = 0; p < c->npats; p++)
		any2 |= c->pats[p].nl == 2;
	if (!any2)
		return 0;
	dom = kiln_calloc(c->V ? c->V : 1, 1);
	allowed = kiln_calloc(c->V ? c->V : 1, 1);
	used = kiln_calloc(s->nrules + 1, 1);
	if (!dom || !allowed || !used) {
		rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
		goto out;
	}
	for (size_t l = 0; l < c->L; l++)
		for (size_t v = 0; v < s->layers[l].ntraits; v++) {
			size_t fv = c->vbase[l] + v;
			if (!c->cnt[fv])
				continue;
			for (size_t i = 0; i < c->V; i++)
				dom[i] = c->cnt[i] != 0;
			memset(dom + c->vbase[l], 0, s->layers[l].ntraits);
			dom[fv] = 1;
			memset(used, 0, s->nrules + 1);
			int changed = 1, empty = 0;
			for (int round = 0; changed && !empty && round < 64; round++) {
				changed = 0;
				for (size_t p = 0; p < c->npats && !empty; p++) {
					const struct pat *pt = &c->pats[p];
					if (pt->nl != 2)
						continue;
					for (int side = 0; side < 2; side++) {
						const struct patl *q = &c->pl[pt->first + side];
						const struct patl *o = &c->pl[pt->first + 1 - side];
						size_t ql = q->layer, ol = o->layer, inside = 1;
						for (size_t w = 0; w < s->layers[ql].ntraits && inside; w++)
							if (dom[c->vbase[ql] + w] && !c->pool[q->set + w])
								inside = 0;
						if (!inside)
							continue;
						/* every value left in ql forbids o's set in ol */
						size_t left = 0;
						for (size_t w = 0; w < s->layers[ol].ntraits; w++) {
							size_t fw = c->vbase[ol] + w;
							if (dom[fw] && c->pool[o->set + w]) {
								dom[fw] = 0;
								changed = 1;
								used[pt->rule] = 1;
							}
							left += dom[fw];
						}
						if (!left)
							empty = 1;
					}
				}
			}
			/* the layer that leaves the fewest tokens */
			size_t worst = c->L;
			uint64_t wok = UINT64_MAX;
			for (size_t l2 = 0; l2 < c->L; l2++) {
				uint64_t ok = 0;
				if (l2 == l)
					continue;
				for (size_t w = 0; w < s->layers[l2].ntraits; w++)
					if (dom[c->vbase[l2] + w])
						ok += c->cnt[c->vbase[l2] + w];
				if (ok < wok) {
					wok = ok;
					worst = l2;
				}
			}
			for (size_t l2 = worst; l2 < c->L; l2 = c->L) {
				uint64_t ok = 0;
				for (size_t w = 0; w < s->layers[l2].ntraits; w++) {
					size_t fw = c->vbase[l2] + w;
					allowed[w] = dom[fw];
					if (dom[fw])
						ok += c->cnt[fw];
				}
				if (c->cnt[fv] <= ok)
					continue;
				char t1[300] = "", t2[500] = "", rt[900] = "", one[700];
				size_t first = SIZE_MAX, nr = 0;
				kiln_text_append(t1, sizeof t1, "%s=%s", s->layers[l].name,
				    s->layers[l].traits[v].name);
				for (size_t r = 0; r < s->nrules; r++) {
					if (!used[r])
						continue;
					if (first == SIZE_MAX)
						first = r;
					if (nr++ == 4) {
						kiln_text_append(rt, sizeof rt, "; ...");
						break;
					}
					one[0] = 0;
					rule_text(one, sizeof one, s, &s->rules[r]);
					kiln_text_append(rt, sizeof rt, "%s`%s`", nr > 1 ? "; " : "", one);
				}
				if (ok)
					set_text(t2, sizeof t2, s, l2, allowed);
				char line[sizeof e->msg], wl[600];
				kiln_spec_where(s, s->rules[first].loc, wl, sizeof wl);
				if (ok)
					snprintf(line, sizeof line,
						 "%s has %llu tokens, but the rule%s %s let those tokens "
						 "hold only %s, which has %llu tokens in all: %s can have "
						 "at most %llu tokens",
						 t1, ull(c->cnt[fv]), nr > 1 ? "s" : "", rt, t2, ull(ok), t1,
						 ull(ok));
				else
					snprintf(line, sizeof line,
						 "%s has %llu tokens, but the rule%s %s leave those tokens "
						 "no value of %s at all: %s can have none",
						 t1, ull(c->cnt[fv]), nr > 1 ? "s" : "", rt,
						 s->layers[l2].name, t1);
				if (!nfail++) {
					kiln_error_set(e, KILN_E_INFEASIBLE, wl, "%s", line);
				} else if (e) {
					size_t len = strlen(e->msg);
					snprintf(e->msg + len, sizeof e->msg - len, "\n%s: %s", wl, line);
				}
				rc = KILN_E_INFEASIBLE;
				break;
			}
		}
out:
	free(dom);
	free(allowed);
	free(used);
	return rc;
}

static uint64_t mul_sat(uint64_t a, uint64_t b)
{
	if (a && b > UINT64_MAX / a)
		return UINT64_MAX;
	return a * b;
}

static int u64cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Uniqueness bounds: N <= product of the (L'-k+1) smallest layer sizes (Singleton), per value
 * and overall; and, for small spaces, the exact number of trait sets the rules allow. */
static int check_unique(struct ctx *c, struct kiln_error *e)
{
	const struct kiln_spec *s = c->s;
	uint64_t *sz = NULL, *tmp = NULL, *with = NULL;
	size_t nnb = 0, smallest = 0;
	char where[600];
	int rc = 0;
	unsigned k = c->k;

	if (k == 0 || c->G < 2)
		return 0;
	sz = kiln_calloc(c->L + 1, sizeof *sz);
	tmp = kiln_calloc(c->L + 1, sizeof *tmp);
	if (!sz || !tmp) {
		rc = KILN_E_NOMEM;
		goto out;
	}
	for (size_t l = 0; l < c->L; l++) {
		if (s->layers[l].bypass_dna)
			continue;
		uint64_t n = 0;
		for (size_t v = 0; v < s->layers[l].ntraits; v++)
			n += c->cnt[c->vbase[l] + v] != 0;
		if (!nnb || n < sz[smallest])
			smallest = l;
		sz[l] = n;
		tmp[nnb++] = n;
	}
	if (nnb < k) {
		kiln_spec_where(s, (struct kiln_loc){0, 0}, where, sizeof where);
		rc = kiln_error_set(e, KILN_E_INFEASIBLE, where,
				    "min_distance %u needs at least %u layers that count for "
				    "uniqueness, but there %s %zu (layers with bypass_dna do not "
				    "count), and there are %zu generated tokens: at most 1 "
				    "token can work; lower min_distance to %zu or add layers",
				    k, k, nnb == 1 ? "is" : "are", nnb, c->G, nnb);
		goto out;
	}
	qsort(tmp, nnb, sizeof *tmp, u64cmp);
	{
		uint64_t bound = 1;
		char prod[300] = "";
		for (size_t i = 0; i < nnb - k + 1; i++) {
			bound = mul_sat(bound, tmp[i]);
			kiln_text_append(prod, sizeof prod, "%s%llu", i ? " x " : "", ull(tmp[i]));
		}
		if (c->G > bound) {
			kiln_spec_where(s, s->layers[smallest].loc, where, sizeof where);
			if (k == 1)
				rc = kiln_error_set(
					e, KILN_E_INFEASIBLE, where,
					"uniqueness needs %zu different trait sets, but the layers allow "
					"only %llu (%s values with tokens): at most %llu generated "
					"tokens can all differ; add values (layer %s has %llu) "
					"or lower size by %llu",
					c->G, ull(bound), prod, ull(bound), s->layers[smallest].name,
					ull(sz[smallest]), ull(c->G - bound));
			else
				rc = kiln_error_set(
					e, KILN_E_INFEASIBLE, where,
					"min_distance %u over %zu layers allows at most %llu tokens (the "
					"product of the %zu smallest layers' value counts: %s), but "
					"there are %zu generated tokens: at most %llu "
					"tokens can work; lower min_distance or size, or add values "
					"(layer %s has %llu)",
					k, nnb, ull(bound), nnb - k + 1, prod, c->G, ull(bound),
					s->layers[smallest].name, ull(sz[smallest]));
			goto out;
		}
	}
	/* per value: tokens holding v differ in >= k of the other nnb-1 layers */
	for (size_t l = 0; l < c->L; l++) {
		if (s->layers[l].bypass_dna)
			continue;
		size_t n = 0;
		for (size_t l2 = 0; l2 < c->L; l2++)
			if (l2 != l && !s->layers[l2].bypass_dna)
				tmp[n++] = sz[l2];
		qsort(tmp, n, sizeof *tmp, u64cmp);
		uint64_t bound = 1;
		for (size_t i = 0; i + k <= n; i++)
			bound = mul_sat(bound, tmp[i]);
		for (size_t v = 0; v < s->layers[l].ntraits; v++) {
			size_t fv = c->vbase[l] + v;
			if (c->cnt[fv] <= bound)
				continue;
			kiln_spec_where(s, s->layers[l].traits[v].loc, where, sizeof where);
			rc = kiln_error_set(
				e, KILN_E_INFEASIBLE, where,
				"%s=%s has %llu tokens, but tokens holding it must differ%s%u in the "
				"other layers, whose values allow only %llu such tokens: it can have "
				"at most %llu tokens; lower it or add values to the "
				"other layers",
				s->layers[l].name, s->layers[l].traits[v].name, ull(c->cnt[fv]),
				k == 1 ? " (uniqueness) " : " (min_distance) in ", k == 1 ? 0 : k,
				ull(bound), ull(bound));
			if (k == 1)
				snprintf(e ? e->msg : where, e ? sizeof e->msg : sizeof where,
					 "%s=%s has %llu tokens, but they must all differ in the other "
					 "layers, whose values allow only %llu different trait sets: it "
					 "can have at most %llu tokens; lower it or add "
					 "values to the other layers",
					 s->layers[l].name, s->layers[l].traits[v].name, ull(c->cnt[fv]),
					 ull(bound), ull(bound));
			goto out;
		}
	}
	/* small spaces: count the trait sets the rules allow, exactly */
	{
		uint64_t space = 1;
		for (size_t l = 0; l < c->L; l++)
			if (!s->layers[l].bypass_dna)
				space = mul_sat(space, sz[l]);
		if (space > ((uint64_t)1 << 18) || !c->npats)
			goto out;
		uint32_t *row = kiln_calloc(c->L + 1, sizeof *row);
		uint32_t *vals = kiln_calloc(c->V + 1, sizeof *vals); /* nonzero values per layer */
		size_t *voff = kiln_calloc(c->L + 1, sizeof *voff);
		size_t *dig = kiln_calloc(c->L + 1, sizeof *dig);
		unsigned char *usable = kiln_calloc(c->npats + 1, 1);
		with = kiln_calloc(c->V + 1, sizeof *with);
		if (!row || !vals || !voff || !dig || !usable || !with) {
			free(row);
			free(vals);
			free(voff);
			free(dig);
			free(usable);
			rc = KILN_E_NOMEM;
			goto out;
		}
		size_t nv = 0;
		for (size_t l = 0; l < c->L; l++) {
			voff[l] = nv;
			for (size_t v = 0; v < s->layers[l].ntraits; v++)
				if (c->cnt[c->vbase[l] + v])
					vals[nv++] = (uint32_t)v;
		}
		voff[c->L] = nv;
		for (size_t p = 0; p < c->npats; p++) {
			usable[p] = 1;
			for (uint32_t i = 0; i < c->pats[p].nl; i++)
				if (s->layers[c->pl[c->pats[p].first + i].layer].bypass_dna)
					usable[p] = 0;
		}
		uint64_t allowed = 0;
		long blame = -1;
		for (;;) {
			int bad = 0;
			for (size_t l = 0; l < c->L; l++)
				row[l] = s->layers[l].bypass_dna ? 0 : vals[voff[l] + dig[l]];
			for (size_t p = 0; p < c->npats && !bad; p++) {
				const struct pat *pt = &c->pats[p];
				if (!usable[p])
					continue;
				int match = 1;
				for (uint32_t i = 0; i < pt->nl && match; i++) {
					const struct patl *q = &c->pl[pt->first + i];
					match = c->pool[q->set + row[q->layer]];
				}
				if (match) {
					bad = 1;
					if (blame < 0)
						blame = pt->rule;
				}
			}
			if (!bad) {
				allowed++;
				for (size_t l = 0; l < c->L; l++)
					if (!s->layers[l].bypass_dna)
						with[c->vbase[l] + row[l]]++;
			}
			size_t l = 0;
			for (; l < c->L; l++) {
				if (s->layers[l].bypass_dna)
					continue;
				if (++dig[l] < voff[l + 1] - voff[l])
					break;
				dig[l] = 0;
			}
			if (l == c->L)
				break;
		}
		free(row);
		free(vals);
		free(voff);
		free(dig);
		free(usable);
		if (blame < 0)
			goto out;
		char rt[700] = "";
		rule_text(rt, sizeof rt, s, &s->rules[blame]);
		if (c->G > allowed) {
			rc = infeasible_rule(c, e, (size_t)blame,
					     "the rules (`%s` and the others) leave only %llu different "
					     "trait sets of the %llu the layers could make, fewer than "
					     "the %zu generated tokens, which must all differ: at "
					     "most %llu generated tokens can work",
					     rt, ull(allowed), ull(space), c->G, ull(allowed));
			goto out;
		}
		for (size_t l = 0; l < c->L; l++) {
			if (s->layers[l].bypass_dna)
				continue;
			for (size_t v = 0; v < s->layers[l].ntraits; v++) {
				size_t fv = c->vbase[l] + v;
				if (c->cnt[fv] <= with[fv])
					continue;
				rc = infeasible_rule(
					c, e, (size_t)blame,
					"%s=%s has %llu tokens, which must all differ, but the rules "
					"(`%s` and the others) allow only %llu different trait sets "
					"holding it: it can have at most %llu tokens",
					s->layers[l].name, s->layers[l].traits[v].name, ull(c->cnt[fv]),
					rt, ull(with[fv]), ull(with[fv]));
				goto out;
			}
		}
	}
out:
	if (rc == KILN_E_NOMEM)
		kiln_error_set(e, rc, NULL, "out of memory");
	free(sz);
	free(tmp);
	free(with);
	return rc;
}

/* The counting argument: choose in every layer that counts its k_l most common values. The
 * other values hold O tokens in all, so at least G - O tokens hold a chosen value in every
 * layer; they must differ, in at most prod k_l trait sets. The k_l are found by coordinate
 * ascent (any choice that fires is a proof; the search only looks for one). */
struct cnt_ord {
	const uint64_t *cnt;
};

static int cnt_desc(const void *a, const void *b, void *arg)
{
	const uint64_t *cnt = arg;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	if (cnt[x] != cnt[y])
		return cnt[x] > cnt[y] ? -1 : 1;
	return x < y ? -1 : x > y;
}

static int check_counting(struct ctx *c, struct kiln_error *e)
{
	const struct kiln_spec *s = c->s;
	size_t L = c->L, nnb = 0;
	uint32_t *ord = kiln_malloc((c->V + 1) * sizeof *ord);   /* per layer: values by count */
	uint64_t *pre = kiln_calloc(c->V + c->L + 1, sizeof *pre); /* prefix sums, per layer */
	size_t *nv = kiln_calloc(L + 1, sizeof *nv), *k = kiln_calloc(L + 1, sizeof *k);
	size_t *bestk = kiln_calloc(L + 1, sizeof *bestk);
	int rc = 0;

	if (!ord || !pre || !nv || !k || !bestk) {
		rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
		goto out;
	}
	if (c->k == 0 || c->G < 2)
		goto out;
	for (size_t l = 0; l < L; l++) {
		if (s->layers[l].bypass_dna)
			continue;
		nnb++;
		for (size_t v = 0; v < s->layers[l].ntraits; v++)
			if (c->cnt[c->vbase[l] + v])
				ord[c->vbase[l] + nv[l]++] = (uint32_t)(c->vbase[l] + v);
		qsort_r(ord + c->vbase[l], nv[l], sizeof *ord, cnt_desc, c->cnt);
		for (size_t j = 0; j < nv[l]; j++)
			pre[c->vbase[l] + l + j + 1] = pre[c->vbase[l] + l + j] + c->cnt[ord[c->vbase[l] + j]];
	}
	if (nnb < 2)
		goto out;
#define PRE(l, j) pre[c->vbase[l] + (l) + (j)]
	/* value of a choice: sum P - (nnb-1) G - prod k (as signed, saturating) */
	double bestv = 0;
	int found = 0;
	uint64_t combos = 1;
	size_t maxn = 0;
	for (size_t l = 0; l < L; l++)
		if (!s->layers[l].bypass_dna) {
			combos = mul_sat(combos, nv[l]);
			maxn = nv[l] > maxn ? nv[l] : maxn;
		}
	int exhaustive = combos <= 200000;
	for (size_t start = 1; start <= (exhaustive ? combos : maxn); start++) {
		if (exhaustive) {
			/* every choice: start - 1 in mixed radix */
			uint64_t x = start - 1;
			for (size_t l = 0; l < L; l++)
				if (!s->layers[l].bypass_dna) {
					k[l] = 1 + (size_t)(x % nv[l]);
					x /= nv[l];
				}
		} else {
			for (size_t l = 0; l < L; l++)
				k[l] = s->layers[l].bypass_dna ? 0 : (start < nv[l] ? start : nv[l]);
		}
		for (int sweep = 0; sweep < 30 && !exhaustive; sweep++) {
			int moved = 0;
			for (size_t l = 0; l < L; l++) {
				if (s->layers[l].bypass_dna)
					continue;
				double so = 0, po = 1;
				for (size_t l2 = 0; l2 < L; l2++)
					if (l2 != l && !s->layers[l2].bypass_dna) {
						so += (double)PRE(l2, k[l2]);
						po *= (double)k[l2];
					}
				size_t bj = k[l];
				double bv = so + (double)PRE(l, bj) - po * (double)bj;
				for (size_t j = 1; j <= nv[l]; j++) {
					double v = so + (double)PRE(l, j) - po * (double)j;
					if (v > bv) {
						bv = v;
						bj = j;
					}
				}
				if (bj != k[l]) {
					k[l] = bj;
					moved = 1;
				}
			}
			if (!moved)
				break;
		}
		/* exact check in integers */
		uint64_t sum = 0, prod = 1, other = 0;
		int full = 1, ok = 1;
		for (size_t l = 0; l < L; l++) {
			if (s->layers[l].bypass_dna)
				continue;
			sum += PRE(l, k[l]);
			other += c->G - PRE(l, k[l]);
			prod = mul_sat(prod, k[l]);
			full &= k[l] == nv[l];
		}
		(void)sum;
		if (other >= c->G || full)
			ok = 0;
		if (ok && c->G - other > prod && (double)(c->G - other - prod) > bestv) {
			bestv = (double)(c->G - other - prod);
			memcpy(bestk, k, L * sizeof *k);
			found = 1;
		}
	}
	if (!found)
		goto out;
	{
		char msg[sizeof e->msg], where[600];
		uint64_t other = 0, prod = 1;
		size_t first = L;
		msg[0] = 0;
		for (size_t l = 0; l < L; l++) {
			if (s->layers[l].bypass_dna)
				continue;
			other += c->G - PRE(l, bestk[l]);
			prod = mul_sat(prod, bestk[l]);
		}
		kiln_text_append(msg, sizeof msg, "at least %llu tokens need ", ull(c->G - other));
		int nshown = 0;
		for (size_t l = 0; l < L; l++) {
			if (s->layers[l].bypass_dna)
				continue;
			if (bestk[l] < nv[l] && first == L)
				first = l;
			if (bestk[l] == nv[l]) {
				kiln_text_append(msg, sizeof msg, "%sany of %s's %zu values", nshown++ ? " and " : "",
				    s->layers[l].name, nv[l]);
				continue;
			}
			kiln_text_append(msg, sizeof msg, "%s%s in {", nshown++ ? " and " : "", s->layers[l].name);
			for (size_t j = 0; j < bestk[l]; j++) {
				uint32_t fv = ord[c->vbase[l] + j];
				if (j == 6) {
					kiln_text_append(msg, sizeof msg, ", ... %zu values", bestk[l]);
					break;
				}
				kiln_text_append(msg, sizeof msg, "%s%s", j ? ", " : "",
				    s->layers[l].traits[fv - c->vbase[l]].name);
			}
			kiln_text_append(msg, sizeof msg, "}");
		}
		kiln_text_append(msg, sizeof msg,
		    " (the other values of those layers hold only %llu of the %zu generated tokens), "
		    "but those values allow only %llu distinct trait sets: lower their counts by %llu "
		    "in all, or add values",
		    ull(other), c->G, ull(prod), ull(c->G - other - prod));
		kiln_spec_where(s, s->layers[first < L ? first : 0].loc, where, sizeof where);
		rc = kiln_error_set(e, KILN_E_INFEASIBLE, where, "%s", msg);
	}
#undef PRE
out:
	free(ord);
	free(pre);
	free(nv);
	free(k);
	free(bestk);
	return rc;
}

/* After a failed search: not found within the effort. Says what was tried (each part only when
 * it ran) and what was still broken when the search stopped, as a fact about that state, never
 * as the cause (none is proven). exact: for min_distance <= 1, the exact planner (lp.c) ran. */
static int explain_failure(struct ctx *c, struct kiln_error *e, unsigned effort, int exact)
{
	const struct kiln_spec *s = c->s;
	uint64_t *per = kiln_calloc(s->nrules + 1, sizeof *per);
	uint64_t pats = 0, pairs2 = 0;
	char where[600], msg[sizeof e->msg], arg[32];

	if (!per)
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
	for (size_t t = 0; t < c->G; t++) {
		const uint32_t *row = c->m + t * c->L;
		for (size_t l = 0; l < c->L; l++) {
			size_t fv = c->vbase[l] + row[l];
			for (uint32_t j = c->anc_off ? c->anc_off[fv] : 0;
			     c->anc_off && j < c->anc_off[fv + 1]; j++)
				if (pat_rest(c, &c->pats[c->anc[j]], row)) {
					per[c->pats[c->anc[j]].rule]++;
					pats++;
				}
		}
		if (c->ntab)
			pairs2 += dcost(c, (uint32_t)t);
	}
	msg[0] = 0;
	kiln_text_append(msg, sizeof msg,
	    "no plan found within the search effort (effort %u). Tried: %llu repair steps of the "
	    "local search", effort, ull(c->pops));
	if (c->k <= 1) {
		if (exact)
			kiln_text_append(msg, sizeof msg, "; the exact planner (a linear program over "
			    "the allowed trait sets, then an integer program) up to its node limit");
		else
			kiln_text_append(msg, sizeof msg, "; not the exact planner: the layers make "
			    "more than %u trait sets", KILN_PLAN_LP_MAX_SETS);
	} else {
		if (c->exact_st == -2)
			kiln_text_append(msg, sizeof msg, "; not the exact integer program: more "
			    "than %u allowed trait sets (or %u to enumerate)", EXACT_COLS,
			    EXACT_SPACE);
		else if (c->exact_st == KILN_EXACT_TOOBIG)
			kiln_text_append(msg, sizeof msg, "; not the exact integer program: too large "
			    "for %zu allowed trait sets and min_distance %u", c->exact_n, c->k);
		else if (c->exact_st == KILN_EXACT_UNKNOWN)
			kiln_text_append(msg, sizeof msg, "; the exact integer program over %zu allowed "
			    "trait sets up to its node limit (%llu nodes)", c->exact_n,
			    ull((uint64_t)EXACT_NODES * effort));
		if (c->code_ran && !c->crep.code)
			kiln_text_append(msg, sizeof msg, "; no code construction fits these layers");
		else if (c->code_ran) {
			if (c->crep.code == 2)
				kiln_text_append(msg, sizeof msg, "; %u labelings of a parity code",
				    c->crep.labelings);
			else
				kiln_text_append(msg, sizeof msg, "; %u labelings of a Reed-Solomon code "
				    "over GF(%u)", c->crep.labelings, c->crep.code);
			if (c->crep.joint_rounds)
				kiln_text_append(msg, sizeof msg, ", %u round%s of the joint labeling "
				    "program up to its node limit", c->crep.joint_rounds,
				    c->crep.joint_rounds == 1 ? "" : "s");
			else if (c->crep.joint_big)
				kiln_text_append(msg, sizeof msg, ", not the joint labeling program (too "
				    "large)");
		}
	}
	kiln_text_append(msg, sizeof msg, ". No check proved the spec impossible either. When the "
	    "search stopped,");
	int shown = 0;
	for (size_t r = 0; r < s->nrules; r++) {
		char rt[700], wl[600];
		if (!per[r])
			continue;
		if (shown++ == 5) {
			kiln_text_append(msg, sizeof msg, " ...");
			break;
		}
		rule_text(rt, sizeof rt, s, &s->rules[r]);
		kiln_spec_where(s, s->rules[r].loc, wl, sizeof wl);
		kiln_text_append(msg, sizeof msg, " %llu token%s broke the rule `%s` (%s);", ull(per[r]),
		    per[r] == 1 ? "" : "s", rt, wl);
	}
	if (pairs2)
		kiln_text_append(msg, sizeof msg, " %llu pair%s of tokens %s %s;", ull(pairs2 / 2),
		    pairs2 / 2 == 1 ? "" : "s", pairs2 / 2 == 1 ? "was" : "were",
		    c->k <= 1 ? "alike" : "closer than min_distance");
	if (!shown && !pairs2)
		kiln_text_append(msg, sizeof msg, " nothing was left broken;");
	msg[strlen(msg) - 1] = 0;
	kiln_text_append(msg, sizeof msg, ". A larger effort multiplies every budget above and "
	    "may find a plan");
	(void)pats;
	kiln_spec_where(s, (struct kiln_loc){0, 0}, where, sizeof where);
	free(per);
	kiln_error_set(e, KILN_E_NOTFOUND, where, "%s", msg);
	snprintf(arg, sizeof arg, "%llu", ull((uint64_t)effort * 4));
	return kiln_error_hint(e, KILN_HINT_EFFORT, arg);
}

/* ---------------------------------------------------------------------------------------- */
/* context */

static void ctx_free(struct ctx *c)
{
	free(c->vbase);
	free(c->cnt);
	free(c->pats);
	free(c->pl);
	free(c->pool);
	free(c->anc_off);
	free(c->anc);
	free(c->m);
	free(c->lst);
	free(c->pos);
	free(c->goff);
	free(c->nb);
	for (size_t i = 0; c->tabs && i < c->ntab; i++)
		free(c->tabs[i].e);
	free(c->tabs);
	free(c->tinc);
	free(c->inc);
	free(c->intact);
	free(c->queue);
	free(c->inq);
	memset(c, 0, sizeof *c);
}

static void ctx_drop_search(struct ctx *c)
{
	free(c->lst);
	free(c->pos);
	for (size_t i = 0; c->tabs && i < c->ntab; i++)
		free(c->tabs[i].e);
	free(c->tabs);
	free(c->queue);
	free(c->inq);
	c->lst = c->pos = NULL;
	c->tabs = NULL;
	c->ntab = 0;
	c->queue = NULL;
	c->inq = NULL;
}

static int ctx_init(struct ctx *c, const struct kiln_spec *s, size_t G)
{
	memset(c, 0, sizeof *c);
	c->s = s;
	c->L = s->nlayers;
	c->G = G;
	c->k = s->min_distance;
	c->vbase = kiln_calloc(c->L + 1, sizeof *c->vbase);
	if (!c->vbase)
		return KILN_E_NOMEM;
	for (size_t l = 0; l < c->L; l++) {
		c->vbase[l] = c->V;
		c->V += s->layers[l].ntraits;
	}
	c->vbase[c->L] = c->V;
	c->cnt = kiln_calloc(c->V + 1, sizeof *c->cnt);
	if (!c->cnt)
		return KILN_E_NOMEM;
	return 0;
}

/* lists, tables and queue for the search over c->m */
static int ctx_search_ready(struct ctx *c, struct kiln_error *e)
{
	int rc;
	if (lists_make(c))
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
	c->queue = kiln_malloc((c->G ? c->G : 1) * sizeof *c->queue);
	c->inq = kiln_calloc(c->G ? c->G : 1, 1);
	if (!c->queue || !c->inq)
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
	rc = tables_make(c, e);
	return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* public */

uint64_t kiln_plan_seed(uint64_t collection_seed, uint64_t id)
{
	uint64_t x = collection_seed;
	uint64_t y = kiln_splitmix64(&x) ^ id;
	return kiln_splitmix64(&y) >> 1;
}

void kiln_plan_free(struct kiln_plan *p)
{
	if (!p)
		return;
	free(p->items);
	free(p->matrix);
	kiln_plan_targets_free(p->targets, p->nlayers);
	kiln_plan_targets_free(p->actual, p->nlayers);
	free(p);
}

static int cmp_prev(const void *a, const void *b, void *arg)
{
	const uint64_t *ids = arg;
	uint64_t x = ids[*(const size_t *)a], y = ids[*(const size_t *)b];
	if (x != y)
		return x < y ? -1 : 1;
	return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

int kiln_plan_make(struct kiln_plan **out, const struct kiln_spec *s,
		   const struct kiln_plan_prev *prev, struct kiln_error *e)
{
	return kiln_plan_make_opts(out, s, prev, NULL, e);
}

int kiln_plan_make_opts(struct kiln_plan **out, const struct kiln_spec *s,
			const struct kiln_plan_prev *prev, const struct kiln_plan_opts *opts,
			struct kiln_error *e)
{
	unsigned effort = opts && opts->effort ? opts->effort : 1;
	struct ctx c;
	struct kiln_plan *p = NULL;
	uint64_t **tg = NULL;
	size_t S, G, L = s->nlayers, nleg = s->nlegendaries;
	size_t *porder = NULL, npo = 0, npinned = 0;
	uint32_t *rowprev = NULL;  /* pinned row -> prev index */
	uint32_t *owner = NULL;    /* id index -> row (< G) or G + legendary, NONE32 free */
	uint32_t *idprev = NULL;   /* id index -> prev index, NONE32 */
	uint32_t *pool = NULL;
	uint64_t *freeids = NULL;
	uint32_t *lpprefer = NULL;
	int rc = 0, tight;

	*out = NULL;
	kiln_error_clear(e);
	memset(&c, 0, sizeof c);
	c.exact_st = -1;
	if (s->size > (uint64_t)NONE32 - 1 || s->size > SIZE_MAX / (L ? L : 1) / 8) {
		char where[600];
		kiln_spec_where(s, (struct kiln_loc){0, 0}, where, sizeof where);
		return kiln_error_set(e, KILN_E_INFEASIBLE, where,
				      "size %llu is more than kiln can plan (at most %u tokens)",
				      ull(s->size), NONE32 - 1);
	}
	rc = kiln_plan_targets(s, &tg, e);
	if (rc)
		return rc;
	S = (size_t)s->size;
	G = S - nleg;
	if (ctx_init(&c, s, G)) {
		rc = KILN_E_NOMEM;
		goto nomem;
	}
	for (size_t l = 0; l < L; l++)
		for (size_t v = 0; v < s->layers[l].ntraits; v++)
			c.cnt[c.vbase[l] + v] = tg[l][v];
	if ((rc = compile_patterns(&c)))
		goto nomem;
	/* every quick check runs; each one that fails adds its line (the first keeps `where`) */
	{
		int (*const checks[])(struct ctx *, struct kiln_error *) = {
			check_patterns, check_pairs, check_unique, check_counting};
		struct kiln_error one;
		int failed = 0;
		for (size_t i = 0; i < sizeof checks / sizeof *checks; i++) {
			int r = checks[i](&c, &one);
			if (r == KILN_E_NOMEM)
				goto nomem;
			if (!r)
				continue;
			if (!failed++) {
				if (e)
					*e = one;
			} else if (e) {
				size_t len = strlen(e->msg);
				snprintf(e->msg + len, sizeof e->msg - len, "\n%s: %s", one.where,
					 one.msg);
			}
			rc = r;
		}
		if (failed)
			goto out;
	}

	/* previous plan: its items in id order, the ids we can keep */
	owner = kiln_malloc((S ? S : 1) * sizeof *owner);
	idprev = kiln_malloc((S ? S : 1) * sizeof *idprev);
	rowprev = kiln_malloc((G ? G : 1) * sizeof *rowprev);
	if (!owner || !idprev || !rowprev)
		goto nomem;
	memset(owner, 0xff, (S ? S : 1) * sizeof *owner);
	memset(idprev, 0xff, (S ? S : 1) * sizeof *idprev);
	if (prev && prev->nitems && prev->ids && prev->matrix) {
		porder = kiln_malloc(prev->nitems * sizeof *porder);
		if (!porder)
			goto nomem;
		for (size_t i = 0; i < prev->nitems; i++)
			if (prev->ids[i] >= s->start_id && prev->ids[i] - s->start_id < S)
				porder[npo++] = i;
		qsort_r(porder, npo, sizeof *porder, cmp_prev, (void *)prev->ids);
		for (size_t i = 0; i < npo; i++) {
			size_t q = porder[i], idx = prev->ids[q] - s->start_id;
			if (idprev[idx] == NONE32)
				idprev[idx] = (uint32_t)q;
		}
		/* legendaries keep their ids */
		for (size_t i = 0; i < npo; i++) {
			size_t q = porder[i], idx = prev->ids[q] - s->start_id;
			long lg = prev->legendary ? prev->legendary[q] : -1;
			if (idprev[idx] != q || lg < 0 || (size_t)lg >= nleg)
				continue;
			owner[idx] = (uint32_t)(G + (size_t)lg);
		}
		/* a legendary listed twice keeps only its lowest id */
		{
			unsigned char *seen = kiln_calloc(nleg + 1, 1);
			if (!seen)
				goto nomem;
			for (size_t idx = 0; idx < S; idx++)
				if (owner[idx] != NONE32) {
					size_t j = owner[idx] - G;
					if (seen[j])
						owner[idx] = NONE32;
					seen[j] = 1;
				}
			free(seen);
		}
		/* generated items keep their ids, lowest ids first, when they keep a value */
		for (size_t i = 0; i < npo && npinned < G; i++) {
			size_t q = porder[i], idx = prev->ids[q] - s->start_id;
			long lg = prev->legendary ? prev->legendary[q] : -1;
			int any = 0;
			if (idprev[idx] != q || owner[idx] != NONE32 || (lg >= 0 && (size_t)lg < nleg))
				continue;
			for (size_t l = 0; l < L && !any; l++)
				any = prev->matrix[q * L + l] < s->layers[l].ntraits;
			if (!any && L)
				continue;
			owner[idx] = (uint32_t)npinned;
			rowprev[npinned++] = (uint32_t)q;
		}
	}

	/* the columns (previous values where the quota has room, the rest shuffled or
	 * constructed), then the search; restarts from fresh columns while the budget lasts */
	c.m = kiln_malloc((G * L + 1) * sizeof *c.m);
	if (!c.m)
		goto nomem;
	if (nb_make(&c))
		goto nomem;
	tight = is_tight(&c);
	{
		uint64_t max_pops = (24 * (uint64_t)G + 150000) * effort;
		uint64_t stall = (2 * (uint64_t)G + 30000) * effort;
		int found = 0, code_done = 0;
		for (unsigned round = 0; !found; round++) {
			if (round == 0)
				kiln_rng_seed(&c.rng, s->seed, STREAM_COLUMNS);
			if (columns(&c, prev, rowprev, npinned, tight))
				goto nomem;
			if (round == 0 && (rc = ctx_search_ready(&c, e))) {
				if (rc == KILN_E_NOMEM)
					goto nomem;
				goto out;
			}
			if (round == 0 && tight && c.k >= 2 && !npinned) {
				/* near the Singleton bound the search stalls where a code does not */
				int crc = code_plan(&c, effort, 0, CODE_FIRST, 0, prev, rowprev,
						    npinned, &lpprefer, e);
				if (crc == KILN_E_NOMEM)
					goto nomem;
				code_done = 1;
				if (!crc) {
					found = 1;
					break;
				}
				lists_fill(&c);
				tables_fill(&c);
			}
			if (round) {
				lists_fill(&c);
				tables_fill(&c);
			} else {
				kiln_rng_seed(&c.rng, s->seed, STREAM_SEARCH);
			}
			found = !search(&c, max_pops, stall, NULL);
			if (found || c.pops >= max_pops)
				break;
			/* a restart: its own stream, constructed columns */
			kiln_rng_seed(&c.rng, s->seed ^ (0x9e3779b97f4a7c15ULL * (round + 1)),
				      STREAM_RESTART);
			tight = 1;
		}
		if (!found && c.k <= 1) {
			/* min_distance <= 1: the exact planner (lp.c) over the allowed trait sets
			 * finds a plan or proves there is none */
			struct kiln_plan_lp lp = {.s = s, .L = L, .G = G, .vbase = c.vbase,
						  .cnt = c.cnt, .k = c.k, .forbidden = row_forbidden,
						  .arg = &c, .effort = effort, .init = c.m, .ninit = G};
			int exact = kiln_plan_lp_space(&lp) <= KILN_PLAN_LP_MAX_SETS, lprc;
			if (exact && npinned) {
				lpprefer = kiln_malloc(npinned * L * sizeof *lpprefer);
				if (!lpprefer)
					goto nomem;
				for (size_t r = 0; r < npinned; r++)
					memcpy(lpprefer + r * L,
					       prev->matrix + (size_t)rowprev[r] * L,
					       L * sizeof *lpprefer);
				lp.prefer = lpprefer;
				lp.nprefer = npinned;
			}
			lprc = exact ? kiln_plan_lp_solve(&lp, c.m, e) : KILN_E_NOTFOUND;
			if (lprc == KILN_E_NOMEM)
				goto nomem;
			if (lprc == KILN_E_INFEASIBLE) {
				rc = lprc;
				goto out;
			}
			if (lprc) {
				rc = explain_failure(&c, e, effort, exact);
				goto out;
			}
		} else if (!found) {
			size_t ncombo = 0;
			int ex = exact_solve(&c, effort, prev, rowprev, npinned, &ncombo);
			if (ex == KILN_EXACT_NOMEM)
				goto nomem;
			if (ex == KILN_EXACT_NONE) {
				rc = exact_infeasible(&c, ncombo, e);
				goto out;
			}
			if (ex != KILN_EXACT_FOUND) {
				int crc = code_plan(&c, effort, code_done ? CODE_FIRST : 0,
						    CODE_TRIES * effort, JOINT_ROUNDS * effort, prev,
						    rowprev, npinned,
						    &lpprefer, e);
				if (crc == KILN_E_NOMEM)
					goto nomem;
				if (crc) {
					rc = explain_failure(&c, e, effort, 1);
					goto out;
				}
			}
		}
	}
	ctx_drop_search(&c);

	/* ids: kept ones stay, the others are shuffled over legendaries and new rows */
	{
		size_t nfree = 0, k = 0;
		struct kiln_rng ir;
		unsigned char *has = kiln_calloc(nleg + 1, 1);
		freeids = kiln_malloc((S ? S : 1) * sizeof *freeids);
		if (!has || !freeids) {
			free(has);
			goto nomem;
		}
		for (size_t i = 0; i < S; i++) {
			if (owner[i] == NONE32)
				freeids[nfree++] = i;
			else if (owner[i] >= G)
				has[owner[i] - G] = 1;
		}
		kiln_rng_seed(&ir, s->seed, STREAM_IDS);
		kiln_rng_shuffle(&ir, freeids, nfree, sizeof *freeids);
		for (size_t j = 0; j < nleg; j++)
			if (!has[j])
				owner[freeids[k++]] = (uint32_t)(G + j);
		for (size_t r = npinned; r < G; r++)
			owner[freeids[k++]] = (uint32_t)r;
		free(has);
	}

	p = kiln_calloc(1, sizeof *p);
	if (!p)
		goto nomem;
	p->nitems = S;
	p->nlayers = L;
	p->items = kiln_calloc(S ? S : 1, sizeof *p->items);
	p->matrix = kiln_malloc((S * L + 1) * sizeof *p->matrix);
	if (!p->items || !p->matrix)
		goto nomem;
	for (size_t i = 0; i < S; i++) {
		struct kiln_plan_item *it = &p->items[i];
		uint32_t o = owner[i];
		it->id = s->start_id + i;
		it->seed = kiln_plan_seed(s->seed, it->id);
		it->traits = p->matrix + i * L;
		if (o >= G) {
			it->legendary = (long)(o - G);
			for (size_t l = 0; l < L; l++)
				it->traits[l] = KILN_PLAN_UNSET;
		} else {
			it->legendary = -1;
			memcpy(it->traits, c.m + (size_t)o * L, L * sizeof *it->traits);
		}
		if (prev) {
			uint32_t q = idprev[i];
			long lg = q == NONE32 ? -2 : (prev->legendary ? prev->legendary[q] : -1);
			int same = q != NONE32 && lg == it->legendary;
			for (size_t l = 0; l < L && same; l++)
				same = prev->matrix[(size_t)q * L + l] == it->traits[l];
			p->changed += !same;
		} else {
			p->changed++;
		}
	}
	p->targets = tg;
	tg = NULL;
	p->actual = kiln_calloc(L ? L : 1, sizeof *p->actual);
	if (!p->actual)
		goto nomem;
	for (size_t l = 0; l < L; l++) {
		p->actual[l] = kiln_calloc(s->layers[l].ntraits ? s->layers[l].ntraits : 1,
					   sizeof **p->actual);
		if (!p->actual[l])
			goto nomem;
	}
	for (size_t i = 0; i < S; i++)
		if (p->items[i].legendary < 0)
			for (size_t l = 0; l < L; l++)
				p->actual[l][p->items[i].traits[l]]++;
	*out = p;
	p = NULL;
	rc = 0;
	goto out;
nomem:
	rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory while planning");
out:
	kiln_plan_free(p);
	kiln_plan_targets_free(tg, L);
	ctx_free(&c);
	free(porder);
	free(rowprev);
	free(owner);
	free(idprev);
	free(pool);
	free(freeids);
	free(lpprefer);
	return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* replace */

int kiln_plan_replace(struct kiln_plan *p, const struct kiln_spec *s, uint64_t id,
		      uint64_t *changed, size_t cap, size_t *nchanged, struct kiln_error *e)
{
	struct ctx c;
	size_t L = s->nlayers, S = p->nitems, G = 0, idx, a;
	uint32_t *rowitem = NULL, *orig = NULL;
	char where[64];
	int rc = 0, done = 0;

	*nchanged = 0;
	kiln_error_clear(e);
	memset(&c, 0, sizeof c);
	snprintf(where, sizeof where, "item %llu", ull(id));
	if (p->nlayers != L || S != s->size) {
		rc = kiln_error_set(e, KILN_E_STATE, where,
				    "the stored plan does not match kiln.yaml");
		kiln_error_hint(e, KILN_HINT_PLAN, NULL);
		return rc;
	}
	if (id < s->start_id || id - s->start_id >= S) {
		rc = kiln_error_set(e, KILN_E_USAGE, where, "no such token: ids run from %llu to "
				    "%llu", ull(s->start_id), ull(s->start_id + S - 1));
		kiln_error_hint(e, KILN_HINT_LIST_ITEMS, NULL);
		return rc;
	}
	idx = id - s->start_id;
	if (p->items[idx].legendary >= 0)
		return kiln_error_set(e, KILN_E_USAGE, where,
				      "token %llu is a legendary (1/1): it has no traits to replace",
				      ull(id));
	for (size_t i = 0; i < S; i++)
		G += p->items[i].legendary < 0;
	if (ctx_init(&c, s, G))
		goto nomem;
	rowitem = kiln_malloc(G * sizeof *rowitem);
	c.m = kiln_malloc((G * L + 1) * sizeof *c.m);
	orig = kiln_malloc((G * L + 1) * sizeof *orig);
	if (!rowitem || !c.m || !orig)
		goto nomem;
	a = 0;
	for (size_t i = 0, r = 0; i < S; i++) {
		if (p->items[i].legendary >= 0)
			continue;
		if (i == idx)
			a = r;
		rowitem[r] = (uint32_t)i;
		for (size_t l = 0; l < L; l++) {
			uint32_t v = p->items[i].traits[l];
			if (v >= s->layers[l].ntraits) {
				rc = kiln_error_set(e, KILN_E_STATE, where,
						    "the stored plan does not match kiln.yaml");
				kiln_error_hint(e, KILN_HINT_PLAN, NULL);
				goto out;
			}
			c.m[r * L + l] = v;
			c.cnt[c.vbase[l] + v]++;
		}
		r++;
	}
	memcpy(orig, c.m, G * L * sizeof *orig);
	if ((rc = compile_patterns(&c)))
		goto nomem;
	if ((rc = ctx_search_ready(&c, e))) {
		if (rc == KILN_E_NOMEM)
			goto nomem;
		goto out;
	}
	kiln_rng_seed(&c.rng, s->seed ^ kiln_plan_seed(s->seed, id), STREAM_REPLACE);
	/* the plan must hold now */
	for (size_t t = 0; t < G; t++)
		if (cost(&c, (uint32_t)t)) {
			rc = kiln_error_set(e, KILN_E_STATE, where,
					    "the stored plan breaks a rule or uniqueness of kiln.yaml");
			kiln_error_hint(e, KILN_HINT_PLAN, NULL);
			goto out;
		}

	/* 1. one swap with one other token: layers in random order, partners from a random
	 * start, within a bounded number of tries */
	{
		size_t *lo = kiln_malloc((L ? L : 1) * sizeof *lo);
		uint64_t budget = 400000, per;
		if (!lo)
			goto nomem;
		for (size_t l = 0; l < L; l++)
			lo[l] = l;
		kiln_rng_shuffle(&c.rng, lo, L, sizeof *lo);
		per = L ? budget / L : 0;
		for (size_t li = 0; li < L && !done; li++) {
			size_t l = lo[li];
			uint64_t st = G ? kiln_rng_below(&c.rng, G) : 0;
			for (uint64_t i = 0; i < G && i < per && !done; i++) {
				uint32_t b = (uint32_t)((st + i) % G);
				if (c.m[(size_t)b * L + l] == c.m[a * L + l])
					continue;
				do_swap(&c, (uint32_t)a, b, l);
				if (!cost(&c, (uint32_t)a) && !cost(&c, b))
					done = 1;
				else
					do_swap(&c, (uint32_t)a, b, l);
			}
		}
		free(lo);
	}
	/* 2. a forced swap, then a bounded repair of whatever it broke */
	for (int round = 0; round < 8 && !done && G > 1 && L; round++) {
		size_t l = kiln_rng_below(&c.rng, L);
		uint32_t b = NONE32;
		for (int tries = 0; tries < 64; tries++) {
			uint32_t x = (uint32_t)kiln_rng_below(&c.rng, G);
			if (c.m[(size_t)x * L + l] != c.m[a * L + l]) {
				b = x;
				break;
			}
		}
		if (b == NONE32)
			continue;
		do_swap(&c, (uint32_t)a, b, l);
		c.pops = 0;
		if (!search(&c, 20 * (uint64_t)G + 200000, 2 * (uint64_t)G + 100000, NULL) &&
		    memcmp(c.m + a * L, orig + a * L, L * sizeof *c.m)) {
			done = 1;
			break;
		}
		/* back to the plan as it was */
		memcpy(c.m, orig, G * L * sizeof *c.m);
		lists_fill(&c);
		tables_fill(&c);
	}
	if (!done) {
		rc = kiln_error_set(e, KILN_E_INFEASIBLE, where,
				    "no other trait set for token %llu keeps every quota, rule and "
				    "uniqueness (searched within the effort bound)", ull(id));
		goto out;
	}
	{
		size_t n = 0;
		if (cap > 0)
			changed[n] = id;
		n = 1;
		for (size_t t = 0; t < G; t++) {
			if (!memcmp(c.m + t * L, orig + t * L, L * sizeof *c.m))
				continue;
			memcpy(p->items[rowitem[t]].traits, c.m + t * L, L * sizeof *c.m);
			if (t == a)
				continue;
			if (n < cap)
				changed[n] = p->items[rowitem[t]].id;
			n++;
		}
		*nchanged = n;
	}
	goto out;
nomem:
	rc = kiln_error_set(e, KILN_E_NOMEM, where, "out of memory");
out:
	ctx_free(&c);
	free(rowitem);
	free(orig);
	return rc;
}
