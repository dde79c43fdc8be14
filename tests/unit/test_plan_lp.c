/* Tests of the exact planner for min_distance <= 1 (lib/plan/lp.c) and of the proofs the
 * planner gives when it refuses: skewed rarity tables built from a witness (a plan known in
 * advance), a near-full table, min_distance 0, bypass layers, re-planning, and the infeasible
 * classes of issue 20 (counting argument, 3-layer quota conflict, Latin square, rule chain).
 * Every plan is checked by kiln_plan_verify. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "plan_testutil.h"
#include "plan/lp.h"

static void check_plan(const struct kiln_plan *p, const struct kiln_spec *s)
{
	struct kiln_error e;
	int rc = kiln_plan_verify(p, s, &e);
	if (rc)
		print_message("verify: %s: %s\n", e.where, e.msg);
	assert_int_equal(rc, 0);
}

/* A spec whose counts are those of a witness: n distinct trait sets drawn with per-layer
 * weights (each layer's values weighted w[v % nw]), counted per value. */
static struct kiln_spec *witness_spec(uint64_t seed, size_t nl, size_t nv, uint64_t n,
				      const double *w, size_t nw, int bypass_last)
{
	struct kiln_rng r;
	uint64_t space = 1, *cnt;
	unsigned char *used;
	struct kiln_spec *s = ts_new(n, seed);
	char nm[32];
	kiln_rng_seed(&r, seed, 77);
	for (size_t l = 0; l < nl; l++)
		space *= nv;
	cnt = calloc(nl * nv, sizeof *cnt);
	used = calloc(space, 1);
	assert_non_null(cnt);
	assert_non_null(used);
	/* per layer a random permutation of the weights */
	double *lw = calloc(nl * nv, sizeof *lw);
	assert_non_null(lw);
	for (size_t l = 0; l < nl; l++) {
		for (size_t v = 0; v < nv; v++)
			lw[l * nv + v] = w[(v + l) % nw];
		kiln_rng_shuffle(&r, lw + l * nv, nv, sizeof *lw);
	}
	for (uint64_t got = 0; got < n;) {
		uint64_t idx = 0;
		size_t pick[16];
		for (size_t l = 0; l < nl; l++) {
			double tot = 0, x;
			for (size_t v = 0; v < nv; v++)
				tot += lw[l * nv + v];
			x = (double)kiln_rng_below(&r, 1000000) / 1e6 * tot;
			size_t v = 0;
			while (v + 1 < nv && x >= lw[l * nv + v]) {
				x -= lw[l * nv + v];
				v++;
			}
			pick[l] = v;
			if (!(bypass_last && l == nl - 1))
				idx = idx * nv + v;
		}
		if (used[idx])
			continue;
		used[idx] = 1;
		for (size_t l = 0; l < nl; l++)
			cnt[l * nv + pick[l]]++;
		got++;
	}
	for (size_t l = 0; l < nl; l++) {
		snprintf(nm, sizeof nm, "L%zu", l);
		ts_layer(s, nm, bypass_last && l == nl - 1, 3 + (int)l);
		for (size_t v = 0; v < nv; v++) {
			snprintf(nm, sizeof nm, "v%zu", v);
			ts_trait(s, l, nm, KILN_QUOTA_COUNT, (double)cnt[l * nv + v], 3 + (int)l);
		}
	}
	free(cnt);
	free(used);
	free(lw);
	return s;
}

static const double SKEW[] = {0.5, 1, 2, 2.5, 3, 5, 8, 13, 21};

static void plan_ok(struct kiln_spec *s)
{
	struct kiln_plan *p = NULL, *p2 = NULL;
	struct kiln_error e;
	int rc = kiln_plan_make(&p, s, NULL, &e);
	if (rc)
		print_message("%s: %s\n", e.where, e.msg);
	assert_int_equal(rc, 0);
	check_plan(p, s);
	assert_int_equal(kiln_plan_make(&p2, s, NULL, &e), 0);
	assert_memory_equal(p->matrix, p2->matrix, p->nitems * p->nlayers * sizeof *p->matrix);
	kiln_plan_free(p);
	kiln_plan_free(p2);
}

static void test_skewed_tables(void **state)
{
	/* 6 layers of 9 values, skewed weights, 5,000-12,000 tokens: each has a plan */
	static const uint64_t sizes[] = {5000, 8000, 12000};
	int nrounds = getenv("KILN_VALGRIND") ? 1 : 3;
	for (int i = 0; i < nrounds; i++) {
		struct kiln_spec *s = witness_spec(100 + (uint64_t)i, 6, 9, sizes[i], SKEW, 9, 0);
		plan_ok(s);
		ts_free(s);
	}
	(void)state;
}

static void test_near_full(void **state)
{
	/* 4,491 tokens in 4,500 trait sets (9 x 10 x 50) */
	struct kiln_spec *s = ts_new(4491, 5);
	uint64_t cnt[3][50] = {{0}};
	static const size_t nv[3] = {9, 10, 50};
	char nm[16];
	/* all 4500 sets but 9: (i, i, 5i) for i < 9 */
	for (size_t a = 0; a < 9; a++)
		for (size_t b = 0; b < 10; b++)
			for (size_t c = 0; c < 50; c++) {
				if (a == b && c == 5 * a)
					continue;
				cnt[0][a]++;
				cnt[1][b]++;
				cnt[2][c]++;
			}
	for (size_t l = 0; l < 3; l++) {
		snprintf(nm, sizeof nm, "L%zu", l);
		ts_layer(s, nm, 0, 3);
		for (size_t v = 0; v < nv[l]; v++) {
			snprintf(nm, sizeof nm, "v%zu", v);
			ts_trait(s, l, nm, KILN_QUOTA_COUNT, (double)cnt[l][v], 4);
		}
	}
	plan_ok(s);
	ts_free(s);
	(void)state;
}

static void test_bypass_layer(void **state)
{
	/* the last layer bypasses uniqueness: tokens may share the other five */
	struct kiln_spec *s = witness_spec(7, 5, 4, 200, SKEW, 9, 1);
	plan_ok(s);
	ts_free(s);
	(void)state;
}

static void test_min_distance_zero(void **state)
{
	/* 160 tokens over 4 x 5 = 20 trait sets: repeats allowed */
	struct kiln_spec *s = ts_new(160, 9);
	char nm[32];
	for (size_t l = 0; l < 2; l++) {
		snprintf(nm, sizeof nm, "L%zu", l);
		ts_layer(s, nm, 0, 3);
		for (size_t v = 0; v < 4 + l; v++) {
			snprintf(nm, sizeof nm, "v%zu", v);
			ts_trait(s, l, nm, KILN_QUOTA_WEIGHT, 1 + (double)v, 4);
		}
	}
	size_t r = ts_rule(s, KILN_RULE_EXCLUDE, 20);
	ts_clause(s, r, 0, 0, 1, (size_t)0);
	ts_clause(s, r, 0, 1, 1, (size_t)4);
	s->min_distance = 0;
	plan_ok(s);
	s->min_distance = 1;
	struct kiln_plan *p = NULL;
	struct kiln_error e;
	assert_int_equal(kiln_plan_make(&p, s, NULL, &e), KILN_E_INFEASIBLE);
	ts_free(s);
	(void)state;
}

static void expect_infeasible(struct kiln_spec *s, const char *const *subs)
{
	struct kiln_plan *p = NULL;
	struct kiln_error e;
	int rc = kiln_plan_make(&p, s, NULL, &e);
	print_message("%s: %s\n", e.where, e.msg);
	assert_int_equal(rc, KILN_E_INFEASIBLE);
	assert_null(p);
	for (size_t i = 0; subs[i]; i++)
		if (!strstr(e.msg, subs[i]) && !strstr(e.where, subs[i]))
			fail_msg("missing '%s' in %s: %s", subs[i], e.where, e.msg);
	assert_null(strstr(e.msg, "rule named"));
}

static struct kiln_spec *counts_spec(size_t nl, const size_t *nv, const uint64_t *cnt, uint64_t G)
{
	struct kiln_spec *s = ts_new(G, 1);
	char nm[32];
	for (size_t l = 0, k = 0; l < nl; l++) {
		snprintf(nm, sizeof nm, "L%zu", l);
		ts_layer(s, nm, 0, 3 + (int)l);
		for (size_t v = 0; v < nv[l]; v++) {
			snprintf(nm, sizeof nm, "v%zu", v);
			ts_trait(s, l, nm, KILN_QUOTA_COUNT, (double)cnt[k++], 10 + (int)(l * 10 + v));
		}
	}
	return s;
}

static void test_counting_argument(void **state)
{
	/* 40 tokens, 3 layers of 4 values: the top two values of each layer hold 30 tokens, so
	 * at least 3*30 - 2*40 = 10 tokens hold them in all three, in only 2*2*2 = 8 sets */
	static const size_t nv[] = {4, 4, 4};
	static const uint64_t cnt[] = {15, 15, 5, 5, 15, 15, 5, 5, 15, 15, 5, 5};
	struct kiln_spec *s = counts_spec(3, nv, cnt, 40);
	expect_infeasible(s, (const char *const[]){"at least 20 tokens", "any of L0's 4 values", "only 16 distinct", NULL});
	ts_free(s);
	(void)state;
}

static void test_small_tight_feasible(void **state)
{
	/* 13 tokens over 3 layers of 3 values, 5/4/4 each: a plan exists (a Latin-square-like
	 * arrangement); the 13-token table of tests/cases/plan/latin-13 (3/3/7, 3/3/7, 3/1/9) has
	 * none and is proven so there */
	static const size_t nv[] = {3, 3, 3};
	static const uint64_t cnt[] = {5, 4, 4, 5, 4, 4, 5, 4, 4};
	struct kiln_spec *s = counts_spec(3, nv, cnt, 13);
	plan_ok(s);
	ts_free(s);
	(void)state;
}

static void test_rule_chain(void **state)
{
	/* Crown -> Gold body, Gold -> Laser eyes, exclude Crown with Laser: Crown must be 0 */
	struct kiln_spec *s = ts_new(200, 3);
	size_t hat = ts_layer(s, "Hat", 0, 3), body = ts_layer(s, "Body", 0, 8),
	       eyes = ts_layer(s, "Eyes", 0, 13);
	ts_trait(s, hat, "Crown", KILN_QUOTA_COUNT, 5, 4);
	ts_trait(s, hat, "Cap", KILN_QUOTA_WEIGHT, 1, 5);
	ts_trait(s, hat, "Top", KILN_QUOTA_WEIGHT, 1, 6);
	ts_trait(s, body, "Gold", KILN_QUOTA_COUNT, 125, 9);
	ts_trait(s, body, "Fur", KILN_QUOTA_WEIGHT, 1, 10);
	ts_trait(s, body, "Skin", KILN_QUOTA_WEIGHT, 1, 11);
	ts_trait(s, eyes, "Laser", KILN_QUOTA_COUNT, 150, 14);
	ts_trait(s, eyes, "Calm", KILN_QUOTA_WEIGHT, 1, 15);
	ts_trait(s, eyes, "Sleepy", KILN_QUOTA_WEIGHT, 1, 16);
	size_t bg = ts_layer(s, "Background", 0, 17);
	for (int i = 0; i < 20; i++) {
		char nm[16];
		snprintf(nm, sizeof nm, "B%d", i);
		ts_trait(s, bg, nm, KILN_QUOTA_WEIGHT, 1, 18);
	}
	size_t r = ts_rule(s, KILN_RULE_IF, 20);
	ts_clause(s, r, 0, hat, 1, (size_t)0);
	ts_clause(s, r, 1, body, 1, (size_t)0);
	r = ts_rule(s, KILN_RULE_IF, 21);
	ts_clause(s, r, 0, body, 1, (size_t)0);
	ts_clause(s, r, 1, eyes, 1, (size_t)0);
	r = ts_rule(s, KILN_RULE_EXCLUDE, 22);
	ts_clause(s, r, 0, hat, 1, (size_t)0);
	ts_clause(s, r, 0, eyes, 1, (size_t)0);
	expect_infeasible(s, (const char *const[]){"Hat=Crown", "0", NULL});
	struct kiln_plan *p = NULL;
	struct kiln_error e;
	assert_int_equal(kiln_plan_make(&p, s, NULL, &e), KILN_E_INFEASIBLE);
	assert_null(strstr(e.msg, "could work for Hat=Crown is 125"));
	assert_null(strstr(e.msg, "could work for {Hat: Crown} is 125"));
	ts_free(s);
	(void)state;
}

static void test_replan_keeps(void **state)
{
	/* the same tight spec planned again from its own plan keeps every token */
	struct kiln_spec *s = witness_spec(3, 4, 5, 560, SKEW, 9, 0);
	struct kiln_plan *p = NULL, *p2 = NULL;
	struct kiln_error e;
	assert_int_equal(kiln_plan_make(&p, s, NULL, &e), 0);
	check_plan(p, s);
	uint64_t *ids = calloc(p->nitems, sizeof *ids);
	long *leg = calloc(p->nitems, sizeof *leg);
	assert_non_null(ids);
	assert_non_null(leg);
	for (size_t i = 0; i < p->nitems; i++) {
		ids[i] = p->items[i].id;
		leg[i] = p->items[i].legendary;
	}
	struct kiln_plan_prev pv = {p->nitems, ids, p->matrix, leg};
	assert_int_equal(kiln_plan_make(&p2, s, &pv, &e), 0);
	check_plan(p2, s);
	assert_int_equal(p2->changed, 0);
	kiln_plan_free(p);
	kiln_plan_free(p2);
	free(ids);
	free(leg);
	ts_free(s);
	(void)state;
}

static void test_lp_alloc_failures(void **state)
{
	struct kiln_spec *s = witness_spec(11, 3, 4, 60, SKEW, 9, 0);
	for (long n = 0;; n++) {
		struct kiln_plan *p = NULL;
		struct kiln_error e;
		kiln_alloc_fail_after(n);
		int rc = kiln_plan_make(&p, s, NULL, &e);
		long failed = kiln_alloc_failed();
		kiln_alloc_fail_after(-1);
		if (!failed) {
			assert_int_equal(rc, 0);
			check_plan(p, s);
			kiln_plan_free(p);
			break;
		}
		assert_int_equal(rc, KILN_E_NOMEM);
		assert_null(p);
	}
	ts_free(s);
	(void)state;
}

/* the exact planner alone (no search before it): counts exact, rows distinct, deterministic */
static void lp_direct(struct kiln_spec *s, unsigned k)
{
	uint64_t **tg = NULL;
	struct kiln_error e;
	size_t L = s->nlayers, V = 0, G = (size_t)s->size;
	assert_int_equal(kiln_plan_targets(s, &tg, &e), 0);
	size_t *vbase = calloc(L + 1, sizeof *vbase);
	assert_non_null(vbase);
	for (size_t l = 0; l < L; l++) {
		vbase[l] = V;
		V += s->layers[l].ntraits;
	}
	vbase[L] = V;
	uint64_t *cnt = calloc(V + 1, sizeof *cnt);
	assert_non_null(cnt);
	for (size_t l = 0; l < L; l++)
		for (size_t v = 0; v < s->layers[l].ntraits; v++)
			cnt[vbase[l] + v] = tg[l][v];
	struct kiln_plan_lp lp = {.s = s, .L = L, .G = G, .vbase = vbase, .cnt = cnt, .k = k,
				  .effort = 1};
	uint32_t *m = calloc(G * L + 1, sizeof *m), *m2 = calloc(G * L + 1, sizeof *m2);
	assert_non_null(m);
	assert_non_null(m2);
	int rc = kiln_plan_lp_solve(&lp, m, &e);
	if (rc)
		print_message("%s: %s\n", e.where, e.msg);
	assert_int_equal(rc, 0);
	assert_int_equal(kiln_plan_lp_solve(&lp, m2, &e), 0);
	assert_memory_equal(m, m2, G * L * sizeof *m);
	uint64_t *got = calloc(V + 1, sizeof *got);
	assert_non_null(got);
	for (size_t t = 0; t < G; t++)
		for (size_t l = 0; l < L; l++)
			got[vbase[l] + m[t * L + l]]++;
	assert_memory_equal(got, cnt, V * sizeof *got);
	for (size_t t = 1; t < G && k; t++) /* rows come in set order: distinct = no equal pair */
		assert_true(memcmp(m + (t - 1) * L, m + t * L, L * sizeof *m) != 0);
	free(got);
	free(m);
	free(m2);
	free(cnt);
	free(vbase);
	kiln_plan_targets_free(tg, L);
}

static void test_lp_direct(void **state)
{
	/* under valgrind (KILN_VALGRIND, tests/valgrind.sh) a smaller table: the LP of 8,000
	 * tokens took most of the valgrind run */
	struct kiln_spec *s = witness_spec(21, 6, 9, getenv("KILN_VALGRIND") ? 2000 : 8000, SKEW,
					   9, 0);
	lp_direct(s, 1);
	ts_free(s);
	s = witness_spec(22, 4, 6, 1200, SKEW, 9, 0);
	lp_direct(s, 1);
	lp_direct(s, 0);
	ts_free(s);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lp_direct),
		cmocka_unit_test(test_skewed_tables),
		cmocka_unit_test(test_near_full),
		cmocka_unit_test(test_bypass_layer),
		cmocka_unit_test(test_min_distance_zero),
		cmocka_unit_test(test_counting_argument),
		cmocka_unit_test(test_small_tight_feasible),
		cmocka_unit_test(test_rule_chain),
		cmocka_unit_test(test_replan_keeps),
		cmocka_unit_test(test_lp_alloc_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
