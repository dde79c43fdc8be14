/* kiln/plan.h: the Attribute Controller. Assigns every token its traits so that every value's
 * count equals its target exactly, no rule is broken, every two tokens differ in at least
 * spec->min_distance non-bypass layers, legendaries take ids of their own, ids are shuffled,
 * and every token gets a render seed. Deterministic: the same spec (and previous plan) gives
 * the same plan, byte for byte, on any machine (xoshiro256** seeded by splitmix64 from the
 * collection seed; no rand(), no floating point in decisions that could differ by platform).
 *
 * Sizes: up to millions of tokens, tens of layers; the trait matrix is nitems*nlayers uint32.
 */
#ifndef KILN_PLAN_H
#define KILN_PLAN_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/error.h"
#include "kiln/spec.h"

#define KILN_PLAN_UNSET UINT32_MAX

struct kiln_plan_item {
	uint64_t id;       /* token id, spec->start_id .. start_id+size-1 */
	uint64_t seed;     /* render seed: kiln_plan_seed(spec->seed, id) */
	long legendary;    /* index into spec->legendaries, or -1 for a generated token */
	uint32_t *traits;  /* points into plan->matrix: nlayers trait indexes; all KILN_PLAN_UNSET
	                      for a legendary */
};

struct kiln_plan {
	size_t nitems;                 /* == spec->size */
	size_t nlayers;                /* == spec->nlayers */
	struct kiln_plan_item *items;  /* owned; sorted by id */
	uint32_t *matrix;              /* owned; nitems * nlayers */
	uint64_t **targets;            /* owned; targets[l][t]: the exact count of layer l's value t
	                                  among generated tokens */
	uint64_t **actual;             /* owned; actual[l][t]: counted from the plan (== targets) */
	size_t changed;                /* with a previous plan: items whose traits differ from it */
};

/* A previous plan, mapped onto the current spec by the caller (catalog): for each old item its
 * id and its trait indexes in the *current* spec (KILN_PLAN_UNSET where the old value no longer
 * exists), or its legendary index in the current spec (-1: none or gone). */
struct kiln_plan_prev {
	size_t nitems;
	const uint64_t *ids;       /* nitems */
	const uint32_t *matrix;    /* nitems * spec->nlayers */
	const long *legendary;     /* nitems */
};

/* Exact per-value targets for the generated tokens: counts as given; percent and weight
 * apportioned by the largest-remainder method. targets[l] is allocated with layers[l].ntraits
 * entries. Fails (KILN_E_INFEASIBLE) naming the layer when counts cannot add up to the size. */
int kiln_plan_targets(const struct kiln_spec *s, uint64_t ***targets, struct kiln_error *e)
	KILN_MUST_CHECK;
void kiln_plan_targets_free(uint64_t **targets, size_t nlayers);

/* How hard to try. effort 1 (0 means 1) is the default; each search limit and solver
 * budget is multiplied by it. Budgets are counts of work (repair steps, branch-and-bound
 * nodes), never time, so a plan does not depend on the machine. */
struct kiln_plan_opts {
	unsigned effort;
};

/* Make a plan. prev and o may be NULL. Fails with:
 *  KILN_E_INFEASIBLE  proven impossible: e holds the proof in the spec's words (a bad spec);
 *  KILN_E_NOTFOUND    not found within the effort (no cause claimed; more effort may find it). */
int kiln_plan_make_opts(struct kiln_plan **out, const struct kiln_spec *s,
			const struct kiln_plan_prev *prev, const struct kiln_plan_opts *o,
			struct kiln_error *e) KILN_MUST_CHECK;
/* kiln_plan_make_opts with default options. */
int kiln_plan_make(struct kiln_plan **out, const struct kiln_spec *s,
		   const struct kiln_plan_prev *prev, struct kiln_error *e) KILN_MUST_CHECK;

/* Give token `id` a different trait set while every quota stays exact and every rule and the
 * uniqueness still hold (by swapping layer values with as few other tokens as possible). The ids
 * of every token that changed, `id` first, are written to changed[] (room for `cap`), their
 * number to *nchanged. */
int kiln_plan_replace(struct kiln_plan *p, const struct kiln_spec *s, uint64_t id,
		      uint64_t *changed, size_t cap, size_t *nchanged, struct kiln_error *e)
	KILN_MUST_CHECK;

/* Render seed of a token: splitmix64 of the collection seed and the id, 63 bits (fits every
 * engine's and SQLite's signed 64-bit integers). */
uint64_t kiln_plan_seed(uint64_t collection_seed, uint64_t id);

/* The versions of the linear and integer programming libraries the planner runs, CLP and CBC
 * (COIN-OR), as linked at run time ("1.17.6"): "same spec and seed, same plan" holds for the
 * same versions (another CLP may pick another vertex of the same LP). */
const char *kiln_plan_clp_version(void);
const char *kiln_plan_cbc_version(void);

void kiln_plan_free(struct kiln_plan *p);

/* ---- rarity.h (merged) ---- */
/* kiln/rarity.h: OpenRarity scores and ranks for any collection (a plan, or a folder of
 * metadata files under QA).
 *
 * Algorithm (OpenRarity, design.md section 7; docs/rarity.md has the details and a worked
 * example):
 *   - trait type names and values are normalised as Python's s.lower().strip(); types whose
 *     names normalise alike are one type (a token's last non-NULL column wins);
 *   - every token gets the string trait "meta_trait:trait_count" = the number of its values
 *     that are not "none" or "" after normalisation, numeric columns included (an input type
 *     named "meta_trait:trait_count" is replaced by the computed one, as OpenRarity does);
 *   - a type missing from a token (NULL) counts as a "null" value with count N - sum of the
 *     type's value counts (only when that is > 0);
 *   - IC(token) = sum over every string type (meta trait and nulls included) of -log2(p),
 *     p = count / N; H = -sum over every (type, value) pair, null values and the meta trait
 *     included, of p*log2(p); score = IC / H (IC / 1 when H == 0, e.g. one token);
 *   - numeric columns only count toward the meta trait; they are never scored (OpenRarity
 *     scores string attributes only);
 *   - rank: sort by (number of the token's string values, meta trait included, held by no
 *     other token; score) descending, then input order; a score within relative 1e-9 of the
 *     previous token's score (Python math.isclose) takes its rank, else rank = position + 1
 *     (1,2,2,2,5).
 *
 * Sizes: millions of tokens, tens of types; memory is about 4*ntypes + 20 bytes a token plus
 * about 70 bytes and the text of each distinct value; 1,000,000 tokens x 10 types take well
 * under a second when tokens share value pointers (as a plan's trait names do: a pointer seen
 * again in a column is not normalised again), about a second with a string per value.
 */

struct kiln_rarity_input {
	size_t ntokens;
	size_t ntypes;
	const char *const *types;   /* ntypes trait type names (UTF-8) */
	const char *const *values;  /* ntokens * ntypes (row-major by token); NULL = missing */
	/* Optional, may be NULL (= every type is a string trait): ntypes flags; nonzero marks a
	 * numeric or date trait (OpenSea display_type number, boost_*, date; a JSON number). Such a
	 * value, when not NULL, counts toward meta_trait:trait_count and is otherwise ignored. */
	const unsigned char *numeric;
};

/* scores[ntokens] and ranks[ntokens] (1-based) are filled, in input order; the caller owns
 * both arrays. ntokens == 0 is valid and fills nothing. On failure (KILN_E_USAGE for a NULL
 * pointer or a collection too large to index, KILN_E_NOMEM) their contents are unspecified. */
int kiln_rarity_compute(const struct kiln_rarity_input *in, double *scores, uint64_t *ranks,
			struct kiln_error *e) KILN_MUST_CHECK;

/* The OpenRarity normal form of s (Python s.lower().strip()): leading and trailing Unicode
 * white space removed, letters lower-cased (ASCII, Latin-1, Latin Extended-A and Additional,
 * Greek with final sigma, Cyrillic, Armenian, fullwidth Latin; other bytes unchanged).
 * Returns a new string the caller frees with free(), or NULL when out of memory. */
char *kiln_rarity_normalize(const char *s);

#endif
