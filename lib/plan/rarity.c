/* lib/rarity.c: OpenRarity scores and ranks (design.md section 7), for a plan or for a folder
 * of metadata under QA.
 *
 * What OpenRarity does (github.com/OpenRarity/open-rarity, Python, 0.7 line), and where kiln
 * matches it:
 *   - StringAttribute normalises names and values with normalize_attribute_string, i.e.
 *     s.lower().strip(); TokenMetadata keys its attribute dicts by normalised name, so two
 *     names that normalise alike are one attribute (the later one wins). kiln: same normal
 *     form (Unicode white space and simple case mapping for the scripts listed in rarity.h;
 *     other code points pass through, which only matters for exotic cased scripts), same
 *     merging (the last non-NULL column in types[] order wins).
 *   - Collection._trait_countify adds the string attribute "meta_trait:trait_count" to every
 *     token: Token.trait_count() counts string values not in ("none", "") plus every numeric
 *     or date attribute; if the token already had an attribute of that name the count is
 *     decremented by one (even when that value was "none") and the attribute replaced. kiln:
 *     same, including that quirk; numeric columns are flagged by in->numeric.
 *   - Collection.attributes_frequency_counts counts string attributes only (the meta trait
 *     included). extract_null_attributes adds, per attribute name, a "Null" value with count
 *     N - sum(counts) when that is > 0. kiln: same; a type no token has contributes nothing.
 *   - InformationContentScoringHandler: per token, for the union of null attributes and its
 *     own string attributes, sorted by name, scores = N / count; IC = -sum(log2(1 / score));
 *     collection entropy H = -dot(p, log2 p) over every (name, value) pair of the frequency
 *     counts plus the null values, p = count / N; score = IC / (H if H else 1). kiln: same
 *     formula, same per-term expression, summed in the same (sorted name) order; the entropy
 *     is a plain sum where numpy uses BLAS, so scores agree to a few ulps, not bit for bit.
 *   - TokenFeatureExtractor.extract_unique_attribute_count: the token's string attributes
 *     (meta trait included, nulls not) whose collection count is 1.
 *   - RarityRanker.set_rarity_ranks: Python's stable sorted() on (unique count, score),
 *     reverse=True; rank = i + 1 unless math.isclose(score, previous score) (rel_tol 1e-9),
 *     then the previous token's rank: RANK, not DENSE_RANK (1,2,2,2,5). The tie test looks at
 *     the score only, so neighbours with different unique counts can share a rank. kiln:
 *     same; equal keys keep input order.
 *
 * Invariants: every normalised (type, value) pair is interned once in an open-addressing
 * table (linear probing, load <= 1/2) and each token row becomes S value ids, S = string
 * types; an id's count is the number of tokens whose final value it is (a value overwritten
 * by a later duplicate column keeps count 0 and is ignored).
 * Sizes: up to millions of tokens x tens of types; memory is 4*S + 20 bytes a token plus
 * the distinct values; one pass to intern, one to score, one qsort.
 */
#include "kiln/plan.h"
#include "util/alloc.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define META_NAME "meta_trait:trait_count"
#define NO_VALUE UINT32_MAX
#define ISCLOSE_REL 1e-9 /* Python math.isclose default rel_tol */
#define WHERE "rarity"
#define PCACHE 256 /* per column: recently seen value pointers (a plan shares them) */

/* ---------------------------------------------------------------------------------------
 * Normalisation: Python's s.lower().strip(). Only equality of normal forms matters to the
 * scores (plus the "none"/"" test and the name order of the IC sum), so a code point kiln
 * does not case-map changes nothing unless a collection spells one value in two cases.
 */

/* One UTF-8 code point at s (n > 0 bytes): its length; *cp = UINT32_MAX for an invalid byte,
 * which then stands for itself. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char c = s[0];
	size_t len, i;
	uint32_t v, min;
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2, v = c & 0x1F, min = 0x80;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3, v = c & 0x0F, min = 0x800;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4, v = c & 0x07, min = 0x10000;
	} else {
		goto bad;
	}
	if (n < len)
		goto bad;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			goto bad;
		v = (v << 6) | (s[i] & 0x3F);
	}
	if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
		goto bad;
	*cp = v;
	return len;
bad:
	*cp = UINT32_MAX;
	return 1;
}

static size_t utf8_encode(uint32_t cp, unsigned char *o)
{
	if (cp < 0x80) {
		o[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (unsigned char)(0xC0 | (cp >> 6));
		o[1] = (unsigned char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (unsigned char)(0xE0 | (cp >> 12));
		o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (unsigned char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (unsigned char)(0xF0 | (cp >> 18));
	o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (unsigned char)(0x80 | (cp & 0x3F));
	return 4;
}

/* Python str.isspace(): bidi class WS, B or S, or category Zs. */
static bool is_space(uint32_t c)
{
	return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
	       c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
	       c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Cased letters of the scripts below (for the final-sigma rule). */
static bool is_cased(uint32_t c)
{
	if (c < 0x80)
		return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
	return c == 0xAA || c == 0xB5 || c == 0xBA || (c >= 0xC0 && c <= 0x24F && c != 0xD7 &&
	       c != 0xF7) || (c >= 0x370 && c <= 0x3FF && c != 0x374 && c != 0x375 &&
	       c != 0x37E && c != 0x384 && c != 0x385 && c != 0x387) ||
	       (c >= 0x400 && c <= 0x52F && (c < 0x482 || c > 0x489)) ||
	       (c >= 0x531 && c <= 0x556) || (c >= 0x561 && c <= 0x587) ||
	       (c >= 0x1E00 && c <= 0x1FFF) || (c >= 0xFF21 && c <= 0xFF3A) ||
	       (c >= 0xFF41 && c <= 0xFF5A);
}

/* Unicode simple lower-case mapping for Latin-1, Latin Extended-A and Additional, Greek,
 * Cyrillic, Armenian and fullwidth Latin (U+0130 and final sigma are the caller's). */
static uint32_t lower_cp(uint32_t c)
{
	if (c < 0x80)
		return (c >= 'A' && c <= 'Z') ? c + 32 : c;
	if (c >= 0xC0 && c <= 0xDE)
		return c == 0xD7 ? c : c + 32;
	if (c >= 0x100 && c <= 0x17F) {
		if (c == 0x130 || c == 0x131 || c == 0x138 || c == 0x149 || c == 0x17F)
			return c;
		if (c == 0x178)
			return 0xFF;
		if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
			return (c & 1) ? c + 1 : c;
		return (c & 1) ? c : c + 1;
	}
	if (c >= 0x370 && c <= 0x3FF) {
		if (c == 0x370 || c == 0x372 || c == 0x376 || c == 0x3F7 || c == 0x3FA)
			return c + 1;
		if (c == 0x37F)
			return 0x3F3;
		if (c == 0x386)
			return 0x3AC;
		if (c >= 0x388 && c <= 0x38A)
			return c + 37;
		if (c == 0x38C)
			return 0x3CC;
		if (c == 0x38E || c == 0x38F)
			return c + 63;
		if (c >= 0x391 && c <= 0x3AB && c != 0x3A2)
			return c + 32;
		if (c == 0x3CF)
			return 0x3D7;
		if (c >= 0x3D8 && c <= 0x3EF)
			return (c & 1) ? c : c + 1;
		if (c == 0x3F4)
			return 0x3B8;
		if (c == 0x3F9)
			return 0x3F2;
		if (c >= 0x3FD)
			return c - 130;
		return c;
	}
	if (c >= 0x400 && c <= 0x52F) {
		if (c <= 0x40F)
			return c + 0x50;
		if (c <= 0x42F)
			return c + 0x20;
		if ((c >= 0x460 && c <= 0x481) || (c >= 0x48A && c <= 0x4BF) || c >= 0x4D0)
			return (c & 1) ? c : c + 1;
		if (c == 0x4C0)
			return 0x4CF;
		if (c >= 0x4C1 && c <= 0x4CE)
			return (c & 1) ? c + 1 : c;
		return c;
	}
	if (c >= 0x531 && c <= 0x556)
		return c + 0x30;
	if (c >= 0x1E00 && c <= 0x1EFF) {
		if (c == 0x1E9E)
			return 0xDF;
		if (c <= 0x1E95 || c >= 0x1EA0)
			return (c & 1) ? c : c + 1;
		return c;
	}
	if (c >= 0xFF21 && c <= 0xFF3A)
		return c + 0x20;
	return c;
}

/* Writes the normal form of s[0..n) to out, which holds at least 2*n + 1 bytes (a mapping
 * grows a code point by at most half: U+0130 -> "i" U+0307); returns its length. */
static size_t normalize_into(const char *str, size_t n, char *outc)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned char *out = (unsigned char *)outc;
	size_t b = 0, e = n, i, o = 0, len;
	uint32_t cp, next;
	bool prev_cased = false;

	while (b < n) {
		len = utf8_decode(s + b, n - b, &cp);
		if (!is_space(cp))
			break;
		b += len;
	}
	while (e > b) {
		size_t k = e - 1;
		while (k > b && e - k < 4 && (s[k] & 0xC0) == 0x80)
			k--;
		len = utf8_decode(s + k, e - k, &cp);
		if (k + len != e || !is_space(cp))
			break;
		e = k;
	}
	for (i = b; i < e; i += len) {
		if (s[i] < 0x80) {
			unsigned char c = s[i];
			out[o++] = (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
			prev_cased = is_cased(c);
			len = 1;
			continue;
		}
		len = utf8_decode(s + i, e - i, &cp);
		if (cp == UINT32_MAX) {
			out[o++] = s[i];
			prev_cased = false;
			continue;
		}
		if (cp == 0x130) { /* İ -> i + combining dot above, as Python */
			out[o++] = 'i';
			o += utf8_encode(0x307, out + o);
		} else if (cp == 0x3A3) { /* Σ: final sigma after a cased letter, not before one */
			bool final = prev_cased;
			if (final && i + len < e) {
				utf8_decode(s + i + len, e - i - len, &next);
				final = !is_cased(next);
			}
			o += utf8_encode(final ? 0x3C2 : 0x3C3, out + o);
		} else {
			o += utf8_encode(lower_cp(cp), out + o);
		}
		prev_cased = is_cased(cp);
	}
	out[o] = 0;
	return o;
}

char *kiln_rarity_normalize(const char *s)
{
	size_t n;
	char *out;
	if (!s)
		return NULL;
	n = strlen(s);
	if (n > (SIZE_MAX - 1) / 2)
		return NULL;
	out = kiln_malloc(2 * n + 1);
	if (out)
		normalize_into(s, n, out);
	return out;
}

/* ---------------------------------------------------------------------------------------
 * Interning: (group, normalised bytes) -> dense id.
 */

struct entry {
	uint64_t hash;
	size_t off, len;        /* normalised bytes in the arena */
	uint32_t group;
	uint32_t count;         /* tokens whose final value this is */
	double lg;              /* log2(1 / (N / count)) */
	unsigned char counted;  /* not "none" or "": counts toward the meta trait */
};

struct table {
	uint32_t *slot;   /* 0 = empty, else entry index + 1 */
	size_t nslot;     /* a power of two, or 0 */
	struct entry *ent;
	size_t nent, capent;
	char *arena;
	size_t alen, acap;
};

static void table_free(struct table *t)
{
	free(t->slot);
	free(t->ent);
	free(t->arena);
}

static uint64_t hash_bytes(uint32_t group, const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ ((uint64_t)group * 0x9E3779B97F4A7C15ULL);
	size_t i;
	for (i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

static int table_grow_slots(struct table *t)
{
	size_t n = t->nslot ? t->nslot * 2 : 64, i, j;
	uint32_t *slot;
	if (n > SIZE_MAX / 2 / sizeof *slot)
		return -1;
	slot = kiln_calloc(n, sizeof *slot);
	if (!slot)
		return -1;
	for (i = 0; i < t->nent; i++) {
		j = (size_t)t->ent[i].hash & (n - 1);
		while (slot[j])
			j = (j + 1) & (n - 1);
		slot[j] = (uint32_t)(i + 1);
	}
	free(t->slot);
	t->slot = slot;
	t->nslot = n;
	return 0;
}

/* The id of (group, s[0..n)), added when new. 0, or -1 when out of memory or ids. */
static int table_intern(struct table *t, uint32_t group, const char *s, size_t n, uint32_t *id)
{
	uint64_t h = hash_bytes(group, s, n);
	size_t j;
	struct entry *en;

	if (t->nslot) {
		for (j = (size_t)h & (t->nslot - 1); t->slot[j]; j = (j + 1) & (t->nslot - 1)) {
			en = &t->ent[t->slot[j] - 1];
			if (en->hash == h && en->group == group && en->len == n &&
			    memcmp(t->arena + en->off, s, n) == 0) {
				*id = t->slot[j] - 1;
				return 0;
			}
		}
	}
	if (t->nent >= UINT32_MAX - 1)
		return -1;
	if ((t->nent + 1) * 2 > t->nslot && table_grow_slots(t))
		return -1;
	if (t->nent == t->capent) {
		size_t cap = t->capent ? t->capent * 2 : 64;
		struct entry *ne = kiln_reallocarray(t->ent, cap, sizeof *ne);
		if (!ne)
			return -1;
		t->ent = ne;
		t->capent = cap;
	}
	if (n + 1 > t->acap - t->alen) {
		size_t cap = t->acap ? t->acap : 4096;
		char *na;
		while (n + 1 > cap - t->alen) {
			if (cap > SIZE_MAX / 2)
				return -1;
			cap *= 2;
		}
		na = kiln_realloc(t->arena, cap);
		if (!na)
			return -1;
		t->arena = na;
		t->acap = cap;
	}
	en = &t->ent[t->nent];
	memset(en, 0, sizeof *en);
	en->hash = h;
	en->off = t->alen;
	en->len = n;
	en->group = group;
	en->counted = !(n == 0 || (n == 4 && memcmp(s, "none", 4) == 0));
	memcpy(t->arena + t->alen, s, n);
	t->arena[t->alen + n] = 0;
	t->alen += n + 1;
	for (j = (size_t)h & (t->nslot - 1); t->slot[j]; j = (j + 1) & (t->nslot - 1))
		;
	t->slot[j] = (uint32_t)(t->nent + 1);
	*id = (uint32_t)t->nent++;
	return 0;
}

/* ---------------------------------------------------------------------------------------
 * The computation.
 */

enum { KIND_STRING = 0, KIND_NUMERIC = 1 };

struct term {          /* one term of a token's IC sum, in name order */
	const char *name;
	size_t len;
	uint32_t slot;     /* string slot, or NO_VALUE for the meta trait */
};

struct pcache {         /* value pointer -> id: the same pointer is the same string */
	const char *p;
	uint32_t id;
};

struct ranked {
	double score;
	uint32_t unique;
	uint32_t idx;
};

struct ctx {
	const struct kiln_rarity_input *in;
	size_t n;              /* tokens */
	struct table names;    /* (kind, normalised type name) -> group */
	struct table vals;     /* (slot, normalised value) -> value id */
	char *scratch;
	size_t scratch_cap;
	uint32_t *col_group;   /* ntypes */
	uint32_t *group_slot;  /* per group: string slot, or NO_VALUE for a numeric group */
	uint32_t *num_stamp;   /* per group: last token that had it (numeric groups) */
	unsigned char *group_meta; /* per group: its name is META_NAME */
	size_t nslots;         /* S: string groups */
	uint32_t *slot_group;  /* S */
	uint32_t *nulls;       /* S: tokens without the type */
	double *null_lg;       /* S */
	uint32_t *row;         /* S: the current token's values */
	uint32_t *tokval;      /* n * S value ids, NO_VALUE = null */
	uint32_t *meta;        /* n: trait count + 1 (the quirk can make the count -1) */
	size_t nmeta;
	uint32_t *meta_count;  /* nmeta */
	double *meta_lg;       /* nmeta */
	struct term *terms;
	size_t nterms;
	struct ranked *order;  /* n */
	struct pcache *cache;  /* ntypes * PCACHE */
	uint32_t *by_slot;     /* value ids grouped by slot, first-seen order within a slot */
	size_t *slot_start;    /* S + 1 */
};

static void ctx_free(struct ctx *c)
{
	table_free(&c->names);
	table_free(&c->vals);
	free(c->scratch);
	free(c->col_group);
	free(c->group_slot);
	free(c->num_stamp);
	free(c->group_meta);
	free(c->slot_group);
	free(c->nulls);
	free(c->null_lg);
	free(c->row);
	free(c->tokval);
	free(c->meta);
	free(c->meta_count);
	free(c->meta_lg);
	free(c->terms);
	free(c->order);
	free(c->by_slot);
	free(c->slot_start);
	free(c->cache);
}

/* Normalise s into c->scratch; returns its length, or SIZE_MAX when out of memory. */
static size_t ctx_normalize(struct ctx *c, const char *s)
{
	size_t n = strlen(s);
	if (n > (SIZE_MAX - 1) / 2 - 1)
		return SIZE_MAX;
	if (2 * n + 1 > c->scratch_cap) {
		size_t cap = 2 * n + 1 < 256 ? 256 : 2 * n + 1;
		char *p = kiln_realloc(c->scratch, cap);
		if (!p)
			return SIZE_MAX;
		c->scratch = p;
		c->scratch_cap = cap;
	}
	return normalize_into(s, n, c->scratch);
}

/* Types -> groups (one per normalised name and kind) -> string slots. */
static int build_groups(struct ctx *c, struct kiln_error *e)
{
	const struct kiln_rarity_input *in = c->in;
	size_t t, g, ngroups;
	int rc = KILN_E_NOMEM; /* until the end */

	c->col_group = kiln_calloc(in->ntypes, sizeof *c->col_group);
	if (!c->col_group)
		goto out;
	for (t = 0; t < in->ntypes; t++) {
		uint32_t kind = in->numeric && in->numeric[t] ? KIND_NUMERIC : KIND_STRING;
		size_t len = ctx_normalize(c, in->types[t]);
		if (len == SIZE_MAX || table_intern(&c->names, kind, c->scratch, len, &c->col_group[t]))
			goto out;
	}
	ngroups = c->names.nent;
	c->group_slot = kiln_calloc(ngroups, sizeof *c->group_slot);
	c->num_stamp = kiln_calloc(ngroups, sizeof *c->num_stamp);
	c->group_meta = kiln_calloc(ngroups, 1);
	c->slot_group = kiln_calloc(ngroups, sizeof *c->slot_group);
	if (!c->group_slot || !c->num_stamp || !c->group_meta || !c->slot_group)
		goto out;
	for (g = 0; g < ngroups; g++) {
		const struct entry *en = &c->names.ent[g];
		c->group_meta[g] = en->len == strlen(META_NAME) &&
				   memcmp(c->names.arena + en->off, META_NAME, en->len) == 0;
		c->num_stamp[g] = UINT32_MAX;
		if (en->group == KIND_NUMERIC) {
			c->group_slot[g] = NO_VALUE;
		} else {
			c->slot_group[c->nslots] = (uint32_t)g;
			c->group_slot[g] = (uint32_t)c->nslots++;
		}
	}
	rc = 0;
out:
	if (rc)
		kiln_error_set(e, rc, WHERE, "out of memory indexing %zu trait types", in->ntypes);
	return rc;
}

/* One pass over the tokens: intern values, count them, count nulls and the meta trait. */
static int collect(struct ctx *c, struct kiln_error *e)
{
	const struct kiln_rarity_input *in = c->in;
	size_t S = c->nslots, T = in->ntypes, t, k, s;
	int rc = KILN_E_NOMEM; /* until the end */

	c->nmeta = S + (c->names.nent - S) + 2; /* trait count -1 .. S + numeric groups */
	c->nulls = kiln_calloc(S, sizeof *c->nulls);
	c->null_lg = kiln_calloc(S, sizeof *c->null_lg);
	c->row = kiln_calloc(S, sizeof *c->row);
	c->tokval = kiln_reallocarray(NULL, c->n, (S ? S : 1) * sizeof *c->tokval);
	c->meta = kiln_reallocarray(NULL, c->n, sizeof *c->meta);
	c->meta_count = kiln_calloc(c->nmeta, sizeof *c->meta_count);
	c->meta_lg = kiln_calloc(c->nmeta, sizeof *c->meta_lg);
	c->cache = kiln_calloc(T ? T * PCACHE : 1, sizeof *c->cache);
	if (!c->nulls || !c->null_lg || !c->row || !c->tokval || !c->meta || !c->meta_count ||
	    !c->meta_lg || !c->cache)
		goto out;

	for (t = 0; t < c->n; t++) {
		const char *const *vals = T ? in->values + t * T : NULL;
		uint32_t *out = c->tokval + t * S;
		long count = 0;
		bool has_meta = false;

		for (s = 0; s < S; s++)
			c->row[s] = NO_VALUE;
		for (k = 0; k < T; k++) {
			uint32_t g = c->col_group[k], slot = c->group_slot[g];
			struct pcache *pc;
			size_t len;
			if (!vals[k])
				continue;
			if (c->group_meta[g])
				has_meta = true;
			if (slot == NO_VALUE) { /* numeric: counts once per token, never scored */
				if (c->num_stamp[g] != (uint32_t)t) {
					c->num_stamp[g] = (uint32_t)t;
					count++;
				}
				continue;
			}
			pc = &c->cache[k * PCACHE + ((((uintptr_t)vals[k] >> 4) ^
						      ((uintptr_t)vals[k] >> 12)) & (PCACHE - 1))];
			if (pc->p == vals[k]) {
				c->row[slot] = pc->id;
				continue;
			}
			len = ctx_normalize(c, vals[k]);
			if (len == SIZE_MAX ||
			    table_intern(&c->vals, slot, c->scratch, len, &c->row[slot]))
				goto out;
			pc->p = vals[k];
			pc->id = c->row[slot];
		}
		for (s = 0; s < S; s++) {
			uint32_t id = c->row[s];
			out[s] = id;
			if (id == NO_VALUE) {
				c->nulls[s]++;
			} else {
				c->vals.ent[id].count++;
				count += c->vals.ent[id].counted;
			}
		}
		if (has_meta) /* OpenRarity: trait_count() - 1 when the token had the attribute */
			count--;
		c->meta[t] = (uint32_t)(count + 1);
		c->meta_count[count + 1]++;
	}
	rc = 0;
out:
	if (rc)
		kiln_error_set(e, rc, WHERE,
			       "out of memory indexing the values of %zu tokens x %zu trait types",
			       c->n, in->ntypes);
	return rc;
}

static int term_cmp(const void *pa, const void *pb)
{
	const struct term *a = pa, *b = pb;
	size_t n = a->len < b->len ? a->len : b->len;
	int r = memcmp(a->name, b->name, n);
	if (r)
		return r;
	return (a->len > b->len) - (a->len < b->len);
}

static int ranked_cmp(const void *pa, const void *pb)
{
	const struct ranked *a = pa, *b = pb;
	if (a->unique != b->unique)
		return a->unique > b->unique ? -1 : 1;
	if (a->score != b->score)
		return a->score > b->score ? -1 : 1;
	return (a->idx > b->idx) - (a->idx < b->idx);
}

/* OpenRarity's per-term value: np.log2(np.reciprocal(N / count)). */
static double term_lg(size_t n, uint32_t count)
{
	return log2(1.0 / ((double)n / (double)count));
}

static double plogp(size_t n, uint32_t count)
{
	double p = (double)count / (double)n;
	return p * log2(p);
}

/* Python math.isclose(a, b) with its defaults. */
static bool isclose(double a, double b)
{
	double d;
	if (a == b)
		return true;
	d = fabs(a - b);
	return d <= fabs(ISCLOSE_REL * b) || d <= fabs(ISCLOSE_REL * a);
}

static int score_and_rank(struct ctx *c, double *scores, uint64_t *ranks,
			  struct kiln_error *e)
{
	size_t S = c->nslots, s, i, t, k;
	double h = 0.0, norm;
	int rc = 0;

	c->terms = kiln_reallocarray(NULL, S + 1, sizeof *c->terms);
	c->order = kiln_reallocarray(NULL, c->n, sizeof *c->order);
	c->by_slot = kiln_reallocarray(NULL, c->vals.nent ? c->vals.nent : 1, sizeof *c->by_slot);
	c->slot_start = kiln_calloc(S + 1, sizeof *c->slot_start);
	if (!c->terms || !c->order || !c->by_slot || !c->slot_start) {
		rc = kiln_error_set(e, KILN_E_NOMEM, WHERE, "out of memory ranking %zu tokens",
				    c->n);
		goto out;
	}

	/* The entropy in OpenRarity's order: type by type, its values in first-seen order and
	 * then its null, the meta trait last; so "none" on the tokens that lack a type scores
	 * exactly as the type missing from them. (A stable counting sort of the value ids.) */
	for (i = 0; i < c->vals.nent; i++)
		c->slot_start[c->vals.ent[i].group + 1]++;
	for (s = 0; s < S; s++)
		c->slot_start[s + 1] += c->slot_start[s];
	for (i = 0; i < c->vals.nent; i++)
		c->by_slot[c->slot_start[c->vals.ent[i].group]++] = (uint32_t)i;
	for (i = 0, s = 0; s < S; s++) {
		bool skip = c->group_meta[c->slot_group[s]];
		for (; i < c->slot_start[s]; i++) { /* slot_start[s] is now the end of slot s */
			struct entry *en = &c->vals.ent[c->by_slot[i]];
			if (!en->count || skip)
				continue;
			en->lg = term_lg(c->n, en->count);
			h -= plogp(c->n, en->count);
		}
		if (!c->nulls[s] || skip)
			continue;
		c->null_lg[s] = term_lg(c->n, c->nulls[s]);
		h -= plogp(c->n, c->nulls[s]);
	}
	for (i = 0; i < c->nmeta; i++) {
		if (!c->meta_count[i])
			continue;
		c->meta_lg[i] = term_lg(c->n, c->meta_count[i]);
		h -= plogp(c->n, c->meta_count[i]);
	}
	norm = h != 0.0 ? h : 1.0; /* one token, or every token alike */

	/* The IC sum runs over attribute names in sorted order, as OpenRarity's. */
	for (s = 0; s < S; s++) {
		const struct entry *name = &c->names.ent[c->slot_group[s]];
		if (c->group_meta[c->slot_group[s]])
			continue; /* replaced by the computed meta trait */
		c->terms[c->nterms].name = c->names.arena + name->off;
		c->terms[c->nterms].len = name->len;
		c->terms[c->nterms++].slot = (uint32_t)s;
	}
	c->terms[c->nterms].name = META_NAME;
	c->terms[c->nterms].len = strlen(META_NAME);
	c->terms[c->nterms++].slot = NO_VALUE;
	qsort(c->terms, c->nterms, sizeof *c->terms, term_cmp);

	for (t = 0; t < c->n; t++) {
		const uint32_t *row = c->tokval + t * S;
		double sum = 0.0;
		uint32_t unique = 0;
		for (k = 0; k < c->nterms; k++) {
			uint32_t slot = c->terms[k].slot, id;
			if (slot == NO_VALUE) {
				sum += c->meta_lg[c->meta[t]];
				unique += c->meta_count[c->meta[t]] == 1;
				continue;
			}
			id = row[slot];
			if (id == NO_VALUE) {
				sum += c->null_lg[slot];
			} else {
				sum += c->vals.ent[id].lg;
				unique += c->vals.ent[id].count == 1;
			}
		}
		/* + 0.0: no "-0" for a collection whose tokens are all alike */
		c->order[t].score = -sum / norm + 0.0;
		c->order[t].unique = unique;
		c->order[t].idx = (uint32_t)t;
	}
	qsort(c->order, c->n, sizeof *c->order, ranked_cmp);
	for (i = 0; i < c->n; i++) {
		uint64_t rank = i + 1;
		if (i > 0 && isclose(c->order[i].score, c->order[i - 1].score))
			rank = ranks[c->order[i - 1].idx];
		scores[c->order[i].idx] = c->order[i].score;
		ranks[c->order[i].idx] = rank;
	}
out:
	return rc;
}

int kiln_rarity_compute(const struct kiln_rarity_input *in, double *scores, uint64_t *ranks,
			struct kiln_error *e)
{
	struct ctx c;
	size_t t;
	int rc = 0;

	memset(&c, 0, sizeof c);
	if (!in) {
		rc = kiln_error_set(e, KILN_E_USAGE, WHERE, "no collection given");
		goto out;
	}
	if (in->ntokens == 0)
		goto out;
	if (!scores || !ranks || (in->ntypes && (!in->types || !in->values))) {
		rc = kiln_error_set(e, KILN_E_USAGE, WHERE,
				    "missing %s for %zu tokens x %zu trait types",
				    !scores ? "scores array" : !ranks ? "ranks array" :
				    !in->types ? "trait type names" : "values", in->ntokens,
				    in->ntypes);
		goto out;
	}
	if (in->ntokens >= UINT32_MAX || (in->ntypes && in->ntokens > SIZE_MAX / in->ntypes) ||
	    in->ntypes >= UINT32_MAX / 2) {
		rc = kiln_error_set(e, KILN_E_USAGE, WHERE,
				    "%zu tokens x %zu trait types is too large to rank; the limit "
				    "is 4294967294 tokens", in->ntokens, in->ntypes);
		goto out;
	}
	for (t = 0; t < in->ntypes; t++) {
		if (!in->types[t]) {
			rc = kiln_error_set(e, KILN_E_USAGE, WHERE,
					    "trait type %zu has no name", t);
			goto out;
		}
	}
	c.in = in;
	c.n = in->ntokens;
	rc = build_groups(&c, e);
	if (rc)
		goto out;
	rc = collect(&c, e);
	if (rc)
		goto out;
	rc = score_and_rank(&c, scores, ranks, e);
out:
	ctx_free(&c);
	return rc;
}
