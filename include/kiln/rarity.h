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
#ifndef KILN_RARITY_H
#define KILN_RARITY_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/error.h"

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
