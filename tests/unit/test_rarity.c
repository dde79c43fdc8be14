/* Unit tests for lib/rarity.c (OpenRarity scores and ranks).
 *
 * Expected scores are computed by hand in the comments from the value counts; an attribute
 * with count c among N tokens contributes log2(N / c) bits, H = -sum p log2 p over every
 * (type, value) pair including nulls and meta_trait:trait_count, score = bits / H. Where
 * OpenRarity's own test suite publishes numbers (tests/test_rarity_ranker.py) they are used
 * as an oracle too. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/plan.h"
#include "util/alloc.h"

#define N_ 0 /* missing value, for readability in tables */
#define TOL 1e-9

/* -p log2 p summed over counts c of n tokens */
static double ent(size_t n, const unsigned *counts, size_t k)
{
	double h = 0;
	size_t i;
	for (i = 0; i < k; i++) {
		double p = (double)counts[i] / (double)n;
		if (counts[i])
			h -= p * log2(p);
	}
	return h;
}

static void compute(size_t ntok, size_t ntypes, const char *const *types,
		    const char *const *values, const unsigned char *numeric, double *scores,
		    uint64_t *ranks)
{
	struct kiln_rarity_input in = {ntok, ntypes, types, values, numeric};
	struct kiln_error e;
	int rc;
	kiln_error_clear(&e);
	rc = kiln_rarity_compute(&in, scores, ranks, &e);
	if (rc)
		fail_msg("kiln_rarity_compute: %s: %s", e.where, e.msg);
}

static void assert_close(double got, double want)
{
	if (!(fabs(got - want) <= TOL))
		fail_msg("score %.17g, expected %.17g", got, want);
}

/* ---- a small collection with a missing trait and a tie ---------------------------------
 *        Hat     Eyes    Ring
 *   T0   Cap     Blue    Gold
 *   T1   Cap     Blue    -
 *   T2   Beanie  Green   -
 *   T3   Cap     Green   -
 *   T4   Beanie  Blue    -
 * N = 5. hat: cap 3, beanie 2. eyes: blue 3, green 2. ring: gold 1, null 4.
 * meta_trait:trait_count: "3" 1 (T0), "2" 4.
 * H = 2 * H(3/5, 2/5) + 2 * H(1/5, 4/5)                      (hat, eyes; ring, meta)
 *   = 2 * 0.97095059445 + 2 * 0.72192809489 = 3.38575737868
 * bits: T0 = log2(5/3) + log2(5/3) + log2(5) + log2(5)        = 6.11779 -> 1.80692
 *       T1 = log2(5/3) + log2(5/3) + log2(5/4) + log2(5/4)    = 2.11779 -> 0.62550
 *       T2 = log2(5/2) + log2(5/2) + log2(5/4) + log2(5/4)    = 3.28771 -> 0.97104
 *       T3 = log2(5/3) + log2(5/2) + log2(5/4) + log2(5/4)    = 2.70275 -> 0.79827
 *       T4 = log2(5/2) + log2(5/3) + 2 log2(5/4)              = T3 (tie)
 * unique values: T0 has gold and trait count "3" (2); nobody else (0).
 * order: T0 (2 unique) 1; T2 2; T3, T4 tie 3, 3; T1 5. */
static const char *const small_types[] = {"Hat", "Eyes", "Ring"};
static const char *const small_values[] = {
	"Cap", "Blue", "Gold",
	"Cap", "Blue", N_,
	"Beanie", "Green", N_,
	"Cap", "Green", N_,
	"Beanie", "Blue", N_,
};

static double small_expected(int t)
{
	unsigned hc[] = {3, 2}, rc[] = {1, 4};
	double h = 2 * ent(5, hc, 2) + 2 * ent(5, rc, 2);
	double bits[] = {
		log2(5.0 / 3) + log2(5.0 / 3) + log2(5.0) + log2(5.0),
		log2(5.0 / 3) + log2(5.0 / 3) + log2(5.0 / 4) + log2(5.0 / 4),
		log2(5.0 / 2) + log2(5.0 / 2) + log2(5.0 / 4) + log2(5.0 / 4),
		log2(5.0 / 3) + log2(5.0 / 2) + log2(5.0 / 4) + log2(5.0 / 4),
		log2(5.0 / 2) + log2(5.0 / 3) + log2(5.0 / 4) + log2(5.0 / 4),
	};
	return bits[t] / h;
}

static void test_small_missing_trait_and_tie(void **state)
{
	double scores[5];
	uint64_t ranks[5];
	const uint64_t want_ranks[] = {1, 5, 2, 3, 3};
	int t;
	(void)state;
	compute(5, 3, small_types, small_values, NULL, scores, ranks);
	for (t = 0; t < 5; t++) {
		assert_close(scores[t], small_expected(t));
		assert_int_equal(ranks[t], want_ranks[t]);
	}
	/* the hand numbers of the comment, to 5 places */
	assert_true(fabs(scores[0] - 1.80692) < 1e-5);
	assert_true(fabs(scores[1] - 0.62550) < 1e-5);
	assert_true(fabs(scores[2] - 0.97104) < 1e-5);
	assert_true(fabs(scores[3] - 0.79827) < 1e-5);
	assert_true(scores[3] == scores[4]);
}

/* ---- ranks 1,2,2,2,5: unique count sorts first ------------------------------------------
 *        a     b     c     d
 *   T0   x     y     C     D
 *   T1   p1    B     C     -
 *   T2   p2    B     C     -
 *   T3   p3    B     C     -
 *   T4   -     B     C     D
 * N = 5. a: x, p1, p2, p3 1 each, null 1. b: y 1, B 4. c: C 5. d: D 2, null 3.
 * trait count: T0 "4" (1), T1..T4 "3" (4).
 * unique: T0 x, y, "4" = 3; T1..T3 their p = 1; T4 none (a null is not an attribute) = 0.
 * H = H(1/5 x5) + H(1/5, 4/5) + 0 + H(2/5, 3/5) + H(1/5, 4/5)
 *   = log2(5) + 2 * 0.72192809489 + 0.97095059445 = 4.73673 (2.32193 + 1.44386 + 0.97095)
 * bits: T0 = log2 5 + log2 5 + 0 + log2(5/2) + log2 5             = 8.28771 -> 1.74967
 *       T1..T3 = log2 5 + log2(5/4) + 0 + log2(5/3) + log2(5/4)   = 3.70275 -> 0.78171
 *       T4 = log2 5 + log2(5/4) + 0 + log2(5/2) + log2(5/4)       = 4.28771 -> 0.90520
 * T4 scores above T1..T3 but has no unique value, so it sorts last: ranks 1,2,2,2,5. */
static void test_ranks_1_2_2_2_5(void **state)
{
	static const char *const types[] = {"a", "b", "c", "d"};
	static const char *const values[] = {
		"x", "y", "C", "D",
		"p1", "B", "C", N_,
		"p2", "B", "C", N_,
		"p3", "B", "C", N_,
		N_, "B", "C", "D",
	};
	unsigned a[] = {1, 1, 1, 1, 1}, b[] = {1, 4}, d[] = {2, 3}, m[] = {1, 4};
	double h = ent(5, a, 5) + ent(5, b, 2) + ent(5, d, 2) + ent(5, m, 2);
	double want[] = {
		(log2(5.0) + log2(5.0) + log2(5.0 / 2) + log2(5.0)) / h,
		(log2(5.0) + log2(5.0 / 4) + log2(5.0 / 3) + log2(5.0 / 4)) / h,
		(log2(5.0) + log2(5.0 / 4) + log2(5.0 / 3) + log2(5.0 / 4)) / h,
		(log2(5.0) + log2(5.0 / 4) + log2(5.0 / 3) + log2(5.0 / 4)) / h,
		(log2(5.0) + log2(5.0 / 4) + log2(5.0 / 2) + log2(5.0 / 4)) / h,
	};
	const uint64_t want_ranks[] = {1, 2, 2, 2, 5};
	double scores[5];
	uint64_t ranks[5];
	int t;
	(void)state;
	assert_true(fabs(h - 4.73673) < 1e-5);
	compute(5, 4, types, values, NULL, scores, ranks);
	for (t = 0; t < 5; t++) {
		assert_close(scores[t], want[t]);
		assert_int_equal(ranks[t], want_ranks[t]);
	}
	assert_true(scores[4] > scores[1]);
	assert_true(fabs(scores[0] - 1.74967) < 1e-5);
	assert_true(fabs(scores[1] - 0.78171) < 1e-5);
	assert_true(fabs(scores[4] - 0.90520) < 1e-5);
}

/* ---- OpenRarity's own published numbers (tests/test_rarity_ranker.py,
 * test_rarity_ranker_same_scores). Every token has 3 traits, so the meta trait has p = 1
 * and adds nothing; the numbers are OpenRarity's output. */
static void test_openrarity_oracle_same_scores(void **state)
{
	static const char *const types[] = {"trait1", "trait2", "trait3"};
	static const char *const values[] = {
		"value1", "value1", "value1",
		"value1", "value1", "value1",
		"value2", "value1", "value3",
		"value2", "value2", "value3",
		"value3", "value3", "value3",
	};
	const double want[] = {0.8749925360622679, 0.8749925360622679, 0.7235980365241422,
			       1.1338031424711967, 1.3926137488801251};
	const uint64_t want_ranks[] = {3, 3, 5, 2, 1};
	double scores[5];
	uint64_t ranks[5];
	int t;
	(void)state;
	compute(5, 3, types, values, NULL, scores, ranks);
	for (t = 0; t < 5; t++) {
		assert_true(fabs(scores[t] - want[t]) <= 1e-12 * want[t]);
		assert_int_equal(ranks[t], want_ranks[t]);
	}
}

/* OpenRarity test_rarity_ranker_equal_score_and_unique_trait: expected order 3 (rank 1),
 * 0 and 2 (rank 2), 1 (rank 4). Hand check: trait4 is value1 for T3 only (null 3);
 * trait counts "3" x3, "4" x1; unique: T3 trait4 + "4" = 2; T0 trait2=value1; T2
 * trait3=value3; T0 and T2 have the same bits: 0 + 2 + log2(4/3) + 3 * log2(4/3). */
static void test_openrarity_oracle_unique_then_score(void **state)
{
	static const char *const types[] = {"trait1", "trait2", "trait3", "trait4"};
	static const char *const values[] = {
		"value1", "value1", "value2", N_,
		"value1", "value2", "value2", N_,
		"value1", "value2", "value3", N_,
		"value1", "value2", "value2", "value1",
	};
	const uint64_t want_ranks[] = {2, 4, 2, 1};
	double scores[4];
	uint64_t ranks[4];
	int t;
	(void)state;
	compute(4, 4, types, values, NULL, scores, ranks);
	for (t = 0; t < 4; t++)
		assert_int_equal(ranks[t], want_ranks[t]);
	assert_true(scores[0] == scores[2]);
}

/* ---- normalisation ---------------------------------------------------------------------- */
static void expect_norm(const char *in, const char *want)
{
	char *got = kiln_rarity_normalize(in);
	assert_non_null(got);
	if (strcmp(got, want) != 0)
		fail_msg("normalize(\"%s\") = \"%s\", expected \"%s\"", in, got, want);
	free(got);
}

static void test_normalize(void **state)
{
	(void)state;
	expect_norm("Gold ", "gold");
	expect_norm("  GOLD\t\n", "gold");
	expect_norm("Big  Hat", "big  hat");               /* inner spaces kept */
	expect_norm("", "");
	expect_norm("   ", "");
	expect_norm("\xc2\xa0" "Dusk" "\xe3\x80\x80", "dusk");   /* NBSP, ideographic space */
	expect_norm("\xc3\x89" "CLAIR", "\xc3\xa9" "clair");      /* ÉCLAIR -> éclair */
	expect_norm("\xc5\xbb\xc3\x93\xc5\x81W", "\xc5\xbc\xc3\xb3\xc5\x82w"); /* ŻÓŁW */
	expect_norm("\xd0\x9a\xd0\x9e\xd0\xa2", "\xd0\xba\xd0\xbe\xd1\x82");   /* КОТ -> кот */
	/* ΟΔΟΣ -> οδος with a final sigma, as Python */
	expect_norm("\xce\x9f\xce\x94\xce\x9f\xce\xa3", "\xce\xbf\xce\xb4\xce\xbf\xcf\x82");
	expect_norm("\xce\xa3\xce\x91", "\xcf\x83\xce\xb1");     /* ΣΑ -> σα */
	expect_norm("\xc4\xb0", "i\xcc\x87");                     /* İ -> i + U+0307 */
	expect_norm("\xe1\xba\xa0" "N", "\xe1\xba\xa1" "n");     /* Vietnamese Ạ */
	expect_norm("\xef\xbc\xa1", "\xef\xbd\x81");             /* fullwidth A */
	expect_norm("\xe7\x8c\xab", "\xe7\x8c\xab");             /* 猫 unchanged */
	expect_norm(" \xff" "A\xc3 ", "\xff" "a\xc3");           /* invalid bytes pass */
	expect_norm("None", "none");
	assert_null(kiln_rarity_normalize(NULL));
}

/* "Gold " and "gold" are one value, " HAT" and "hat" one type: the collection scores as if
 * spelled alike. The second spelling puts the type in two columns; a token's last non-NULL
 * column wins. */
static void test_normalisation_in_collection(void **state)
{
	static const char *const types_a[] = {"hat", "eyes"};
	static const char *const values_a[] = {
		"gold", "blue",
		"gold", "red",
		"cap", "blue",
	};
	static const char *const types_b[] = {"Hat", " EYES", " HAT "};
	static const char *const values_b[] = {
		"Gold ", "Blue", N_,
		N_, " RED", " gold",
		"ignored", "blue\t", "CAP",
	};
	double sa[3], sb[3];
	uint64_t ra[3], rb[3];
	int t;
	(void)state;
	compute(3, 2, types_a, values_a, NULL, sa, ra);
	compute(3, 3, types_b, values_b, NULL, sb, rb);
	for (t = 0; t < 3; t++) {
		assert_true(sa[t] == sb[t]);
		assert_int_equal(ra[t], rb[t]);
	}
}

/* ---- "none", "" and missing ------------------------------------------------------------
 * OpenRarity test_information_content_empty_attribute: a type present as "none" on the
 * tokens that lack it scores exactly as the type missing from them (same counts: "none" 4
 * vs null 4; trait counts alike because "none" is not counted). */
static void test_none_equals_missing(void **state)
{
	static const char *const types[] = {"bottom", "hat", "special"};
	static const char *const with_null[] = {
		"1", "1", "true",
		"1", "1", N_,
		"2", "2", N_,
		"2", "2", N_,
		"3", "2", N_,
	};
	static const char *const with_none[] = {
		"1", "1", "true",
		"1", "1", "none",
		"2", "2", " None",
		"2", "2", "NONE",
		"3", "2", "none ",
	};
	double a[5], b[5];
	uint64_t ra[5], rb[5];
	int t;
	(void)state;
	compute(5, 3, types, with_null, NULL, a, ra);
	compute(5, 3, types, with_none, NULL, b, rb);
	for (t = 0; t < 5; t++) {
		assert_true(a[t] == b[t]);
		assert_int_equal(ra[t], rb[t]);
	}
}

/* OpenRarity test_information_content_null_value_attribute, scored by hand.
 *        bottom  hat   special   trait count
 *   T0   spec    spec  true      3
 *   T1   1       1     true      3
 *   T2   1       1     -         2
 *   T3   2       2     -         2
 *   T4   2       2     -         2
 *   T5   3       2     -         2
 * spread (N = 6): bottom {1:2, 2:2, 3:1, spec:1}, hat {1:2, 2:3, spec:1},
 * special {true:2, null:4}, meta {2:4, 3:2}.
 * bits (bottom, hat, meta, special): T0 = log2 6 + log2 6 + log2 3 + log2 3
 * T1 = log2 3 + log2 3 + log2 3 + log2 3;  T2 = log2 3 + log2 3 + log2 1.5 + log2 1.5
 * T3 = T4 = log2 3 + log2 2 + log2 1.5 + log2 1.5;  T5 = log2 6 + log2 2 + 2 log2 1.5 */
static void test_null_value_attribute(void **state)
{
	static const char *const types[] = {"bottom", "hat", "special"};
	static const char *const values[] = {
		"spec", "spec", "true",
		"1", "1", "true",
		"1", "1", N_,
		"2", "2", N_,
		"2", "2", N_,
		"3", "2", N_,
	};
	unsigned bottom[] = {2, 2, 1, 1}, hat[] = {2, 3, 1}, special[] = {2, 4}, meta[] = {4, 2};
	double h = ent(6, bottom, 4) + ent(6, hat, 3) + ent(6, special, 2) + ent(6, meta, 2);
	double want[] = {
		(log2(6.0) + log2(6.0) + log2(3.0) + log2(3.0)) / h,
		(4 * log2(3.0)) / h,
		(log2(3.0) + log2(3.0) + 2 * log2(1.5)) / h,
		(log2(3.0) + log2(2.0) + 2 * log2(1.5)) / h,
		(log2(3.0) + log2(2.0) + 2 * log2(1.5)) / h,
		(log2(6.0) + log2(2.0) + 2 * log2(1.5)) / h,
	};
	double scores[6];
	uint64_t ranks[6];
	int t;
	(void)state;
	compute(6, 3, types, values, NULL, scores, ranks);
	for (t = 0; t < 6; t++)
		assert_close(scores[t], want[t]);
	/* OpenRarity's assertions */
	assert_true(scores[0] > scores[1]);
	assert_true(scores[1] > scores[2]);
	assert_true(scores[5] > scores[2]);
	assert_true(scores[2] > scores[3]);
	assert_true(scores[3] == scores[4]);
	/* unique: T0 spec, spec (2); T5 bottom 3 (1); others 0.
	 * by score: T1 (6.34) > T2 (4.34) > T3 = T4 (3.75) */
	assert_int_equal(ranks[0], 1);
	assert_int_equal(ranks[5], 2);
	assert_int_equal(ranks[1], 3);
	assert_int_equal(ranks[2], 4);
	assert_int_equal(ranks[3], 5);
	assert_int_equal(ranks[4], 5);
}

/* ---- numeric traits count toward the trait count only ----------------------------------
 *        a   level (numeric)   trait count
 *   T0   x   1                 2
 *   T1   x   -                 1
 *   T2   y   5                 2
 * a: x 2, y 1; meta: "2" 2, "1" 1; level is not scored and has no null.
 * H = 2 * H(2/3, 1/3); bits T0 = 2 log2 1.5, T1 = T2 = log2 1.5 + log2 3.
 * unique: T1 "1", T2 y: both 1 with equal scores -> rank 1, 1; T0 3. */
static void test_numeric_traits(void **state)
{
	static const char *const types[] = {"a", "level"};
	static const char *const values[] = {
		"x", "1",
		"x", N_,
		"y", "5",
	};
	static const unsigned char numeric[] = {0, 1};
	unsigned c[] = {2, 1};
	double h = 2 * ent(3, c, 2);
	double scores[3], plain[3];
	uint64_t ranks[3], plain_ranks[3];
	(void)state;
	compute(3, 2, types, values, numeric, scores, ranks);
	assert_close(scores[0], 2 * log2(1.5) / h);
	assert_close(scores[1], (log2(1.5) + log2(3.0)) / h);
	assert_close(scores[2], (log2(1.5) + log2(3.0)) / h);
	assert_int_equal(ranks[0], 3);
	assert_int_equal(ranks[1], 1);
	assert_int_equal(ranks[2], 1);
	/* as strings, level would be scored: different numbers */
	compute(3, 2, types, values, NULL, plain, plain_ranks);
	assert_true(fabs(plain[0] - scores[0]) > 1e-3);
}

/* ---- an input type named meta_trait:trait_count is replaced, with OpenRarity's quirk ----
 * Token.trait_count() counts the existing attribute (unless "none"/"") and _trait_countify
 * then subtracts one whenever the token has it:
 *        a   Meta_Trait:Trait_Count   computed
 *   T0   x   7                         (1 + 1) - 1 = 1
 *   T1   y   -                         1
 *   T2   x   none                      (1 + 0) - 1 = 0
 * a: x 2, y 1; meta: "1" 2, "0" 1. H = 2 * H(1/3, 2/3).
 * bits T0 = 2 log2 1.5, T1 = T2 = log2 3 + log2 1.5. unique: T1 y, T2 "0". */
static void test_meta_trait_input_replaced(void **state)
{
	static const char *const types[] = {"a", "Meta_Trait:Trait_Count"};
	static const char *const values[] = {
		"x", "7",
		"y", N_,
		"x", "none",
	};
	unsigned c[] = {2, 1};
	double h = 2 * ent(3, c, 2);
	double scores[3];
	uint64_t ranks[3];
	(void)state;
	compute(3, 2, types, values, NULL, scores, ranks);
	assert_close(scores[0], 2 * log2(1.5) / h);
	assert_close(scores[1], (log2(3.0) + log2(1.5)) / h);
	assert_close(scores[2], (log2(3.0) + log2(1.5)) / h);
	assert_int_equal(ranks[0], 3);
	assert_int_equal(ranks[1], 1);
	assert_int_equal(ranks[2], 1);
}

/* ---- edges -------------------------------------------------------------------------------- */
static void test_edges(void **state)
{
	static const char *const types[] = {"hat"};
	static const char *const one[] = {"cap"};
	static const char *const same[] = {"cap", "CAP", "cap "};
	static const char *const bad_types[] = {"hat", NULL};
	static const char *const bad_values[] = {"a", "b"};
	struct kiln_rarity_input in = {0};
	struct kiln_error e;
	double scores[3];
	uint64_t ranks[3];
	int t;
	(void)state;

	/* empty collection: nothing to fill */
	assert_int_equal(kiln_rarity_compute(&in, NULL, NULL, &e), 0);
	/* one token: H = 0, score 0 (OpenRarity test_rarity_ranker_one_item) */
	compute(1, 1, types, one, NULL, scores, ranks);
	assert_true(scores[0] == 0.0 && !signbit(scores[0]));
	assert_int_equal(ranks[0], 1);
	/* all alike: all 0, all rank 1 */
	compute(3, 1, types, same, NULL, scores, ranks);
	for (t = 0; t < 3; t++) {
		assert_true(scores[t] == 0.0 && !signbit(scores[t]));
		assert_int_equal(ranks[t], 1);
	}
	/* no types at all */
	compute(3, 0, NULL, NULL, NULL, scores, ranks);
	for (t = 0; t < 3; t++)
		assert_int_equal(ranks[t], 1);

	assert_int_equal(kiln_rarity_compute(NULL, scores, ranks, &e), KILN_E_USAGE);
	in = (struct kiln_rarity_input){1, 2, bad_types, bad_values, NULL};
	assert_int_equal(kiln_rarity_compute(&in, scores, ranks, &e), KILN_E_USAGE);
	assert_int_equal(e.code, KILN_E_USAGE);
	assert_non_null(strstr(e.msg, "trait type 1"));
	in = (struct kiln_rarity_input){1, 1, types, one, NULL};
	assert_int_equal(kiln_rarity_compute(&in, NULL, ranks, &e), KILN_E_USAGE);
	assert_int_equal(kiln_rarity_compute(&in, scores, ranks, NULL), 0);
}

/* ---- allocation failure: every allocation in turn fails; KILN_E_NOMEM each time, and
 * the sanitizer / valgrind runs check nothing leaks. Then the same answer as without. */
static long fail_every_allocation(const struct kiln_rarity_input *in)
{
	struct kiln_error e;
	double *base = calloc(in->ntokens, sizeof *base);
	double *scores = calloc(in->ntokens, sizeof *scores);
	uint64_t *base_ranks = calloc(in->ntokens, sizeof *base_ranks);
	uint64_t *ranks = calloc(in->ntokens, sizeof *ranks);
	long n, failures = 0;
	size_t t;
	int rc;
	assert_true(base && scores && base_ranks && ranks);
	compute(in->ntokens, in->ntypes, in->types, in->values, in->numeric, base, base_ranks);
	for (n = 0; n < 100000; n++) {
		kiln_error_clear(&e);
		kiln_alloc_fail_after(n);
		rc = kiln_rarity_compute(in, scores, ranks, &e);
		if (kiln_alloc_failed() == 0) {
			kiln_alloc_fail_after(-1);
			assert_int_equal(rc, 0);
			break;
		}
		kiln_alloc_fail_after(-1);
		failures++;
		assert_int_equal(rc, KILN_E_NOMEM);
		assert_int_equal(e.code, KILN_E_NOMEM);
		assert_string_equal(e.where, "rarity");
	}
	for (t = 0; t < in->ntokens; t++) {
		assert_true(scores[t] == base[t]);
		assert_int_equal(ranks[t], base_ranks[t]);
	}
	free(base);
	free(scores);
	free(base_ranks);
	free(ranks);
	return failures;
}

static void test_alloc_failure(void **state)
{
	/* the small collection: the first allocation of everything */
	struct kiln_rarity_input small = {5, 3, small_types, small_values, NULL};
	/* 600 tokens, a long distinct value each: the hash table, its entries and its string
	 * arena all grow several times, so each growth step fails once too */
	static const char *const types[] = {"Serial", "Hat"};
	static char text[600][80];
	static const char *values[600 * 2];
	struct kiln_rarity_input big = {600, 2, types, values, NULL};
	size_t t;
	(void)state;
	assert_true(fail_every_allocation(&small) >= 10);
	for (t = 0; t < 600; t++) {
		snprintf(text[t], sizeof text[t], "serial number %zu of a long and distinct value", t);
		values[2 * t] = text[t];
		values[2 * t + 1] = t % 3 ? "cap" : NULL;
	}
	assert_true(fail_every_allocation(&big) >= 20);
	kiln_alloc_fail_after(0);
	assert_null(kiln_rarity_normalize("x"));
	kiln_alloc_fail_after(-1);
}

/* ---- a larger random collection against a brute-force count ----------------------------
 * 20000 tokens, 6 types, values drawn from small alphabets, spelled with random case and
 * padding, about 1 in 7 missing: exercises table growth and probing. The expected scores
 * come from counting canonical ids directly (no hashing, no normalisation). */
#define BIG_N 20000
#define BIG_T 6
static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)((rng_state >> 11) % n);
}

static void test_random_against_brute_force(void **state)
{
	static const char *const types[BIG_T] = {"Background", "Body", "Eyes", "Hat", "Mouth",
						  "Serial"};
	static const uint32_t nvals[BIG_T] = {5, 12, 40, 3, 200, BIG_N};
	int *canon = calloc((size_t)BIG_N * BIG_T, sizeof *canon); /* -1 = missing */
	char **text = calloc((size_t)BIG_N * BIG_T, sizeof *text);
	unsigned *cnt[BIG_T], nulls[BIG_T] = {0}, meta_cnt[BIG_T + 2] = {0};
	double *scores = calloc(BIG_N, sizeof *scores), *want = calloc(BIG_N, sizeof *want);
	uint64_t *ranks = calloc(BIG_N, sizeof *ranks);
	unsigned *uniq = calloc(BIG_N, sizeof *uniq);
	double h = 0;
	size_t t, k, i;
	(void)state;
	assert_true(canon && text && scores && want && ranks && uniq);
	for (k = 0; k < BIG_T; k++) {
		cnt[k] = calloc(nvals[k], sizeof *cnt[k]);
		assert_non_null(cnt[k]);
	}
	for (t = 0; t < BIG_N; t++) {
		for (k = 0; k < BIG_T; k++) {
			int v = k == BIG_T - 1 ? (int)(t % nvals[k])
					       : (rnd(7) == 0 ? -1 : (int)rnd(nvals[k]));
			char buf[64];
			canon[t * BIG_T + k] = v;
			if (v < 0)
				continue;
			snprintf(buf, sizeof buf, "%s%s-%d%s", rnd(2) ? " " : "",
				 rnd(2) ? "VALUE" : "value", v, rnd(3) ? "" : "\t ");
			text[t * BIG_T + k] = strdup(buf);
			assert_non_null(text[t * BIG_T + k]);
		}
	}
	compute(BIG_N, BIG_T, types, (const char *const *)text, NULL, scores, ranks);

	for (t = 0; t < BIG_N; t++) {
		unsigned m = 0;
		for (k = 0; k < BIG_T; k++) {
			int v = canon[t * BIG_T + k];
			if (v < 0) {
				nulls[k]++;
			} else {
				cnt[k][v]++;
				m++;
			}
		}
		meta_cnt[m]++;
	}
	for (k = 0; k < BIG_T; k++) {
		h += ent(BIG_N, cnt[k], nvals[k]);
		h += ent(BIG_N, &nulls[k], 1);
	}
	h += ent(BIG_N, meta_cnt, BIG_T + 2);
	for (t = 0; t < BIG_N; t++) {
		double bits = 0;
		unsigned m = 0;
		for (k = 0; k < BIG_T; k++) {
			int v = canon[t * BIG_T + k];
			unsigned c = v < 0 ? nulls[k] : cnt[k][v];
			bits += log2((double)BIG_N / c);
			if (v >= 0) {
				m++;
				uniq[t] += c == 1;
			}
		}
		bits += log2((double)BIG_N / meta_cnt[m]);
		uniq[t] += meta_cnt[m] == 1;
		want[t] = bits / h;
	}
	for (t = 0; t < BIG_N; t++) {
		assert_true(fabs(scores[t] - want[t]) <= 1e-9 * want[t]);
		assert_true(ranks[t] >= 1 && ranks[t] <= BIG_N);
	}
	/* rank order: a better key never ranks below a worse one; rank r has < r better keys */
	for (t = 0; t < BIG_N; t += 97) {
		uint64_t better = 0;
		for (i = 0; i < BIG_N; i++) {
			int b = uniq[i] > uniq[t] || (uniq[i] == uniq[t] && scores[i] > scores[t]);
			better += b;
			if (b)
				assert_true(ranks[i] <= ranks[t]);
		}
		assert_true(ranks[t] <= better + 1);
	}

	for (t = 0; t < (size_t)BIG_N * BIG_T; t++)
		free(text[t]);
	for (k = 0; k < BIG_T; k++)
		free(cnt[k]);
	free(canon);
	free(text);
	free(scores);
	free(want);
	free(ranks);
	free(uniq);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_missing_trait_and_tie),
		cmocka_unit_test(test_ranks_1_2_2_2_5),
		cmocka_unit_test(test_openrarity_oracle_same_scores),
		cmocka_unit_test(test_openrarity_oracle_unique_then_score),
		cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_normalisation_in_collection),
		cmocka_unit_test(test_none_equals_missing),
		cmocka_unit_test(test_null_value_attribute),
		cmocka_unit_test(test_numeric_traits),
		cmocka_unit_test(test_meta_trait_input_replaced),
		cmocka_unit_test(test_edges),
		cmocka_unit_test(test_alloc_failure),
		cmocka_unit_test(test_random_against_brute_force),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
