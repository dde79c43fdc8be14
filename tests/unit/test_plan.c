/* Tests of the Attribute Controller (lib/plan*.c): exact targets, property tests over random
 * specs (quotas exact, rules kept, unique, min_distance, deterministic), infeasibility
 * messages, re-planning, replacing, allocation failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "plan_testutil.h"

/* ---------------------------------------------------------------------------------------- */

static uint64_t **targets_of(struct kiln_spec *s)
{
	uint64_t **t = NULL;
	struct kiln_error e;
	int rc = kiln_plan_targets(s, &t, &e);
	if (rc)
		print_message("targets: %s: %s\n", e.where, e.msg);
	assert_int_equal(rc, 0);
	return t;
}

static void test_targets_largest_remainder(void **state)
{
	struct kiln_spec *s = ts_new(10, 1);
	size_t l = ts_layer(s, "Hat", 0, 3);
	ts_trait(s, l, "A", KILN_QUOTA_WEIGHT, 1, 4);
	ts_trait(s, l, "B", KILN_QUOTA_WEIGHT, 1, 5);
	ts_trait(s, l, "C", KILN_QUOTA_WEIGHT, 1, 6);
	uint64_t **t = targets_of(s);
	/* 3.33 each: the one seat left goes to the first written */
	assert_int_equal(t[0][0], 4);
	assert_int_equal(t[0][1], 3);
	assert_int_equal(t[0][2], 3);
	kiln_plan_targets_free(t, s->nlayers);
	ts_free(s);
	(void)state;
}

static void test_targets_mixed(void **state)
{
	/* 10001 tokens, 1 legendary: 10000 generated */
	struct kiln_spec *s = ts_new(10001, 1);
	ts_legendary(s, "Founder");
	size_t l = ts_layer(s, "Background", 0, 3);
	ts_trait(s, l, "Dusk", KILN_QUOTA_WEIGHT, 20, 4);
	ts_trait(s, l, "Gold", KILN_QUOTA_PERCENT, 1.5, 5);
	ts_trait(s, l, "Void", KILN_QUOTA_COUNT, 25, 6);
	ts_trait(s, l, "Sky", KILN_QUOTA_WEIGHT, 60, 7);
	ts_none(s, l, KILN_QUOTA_WEIGHT, 20);
	uint64_t **t = targets_of(s);
	/* Void 25, Gold 150, the 9825 left shared 20:60:20 */
	assert_int_equal(t[0][2], 25);
	assert_int_equal(t[0][1], 150);
	assert_int_equal(t[0][0], 1965);
	assert_int_equal(t[0][3], 5895);
	assert_int_equal(t[0][4], 1965);
	kiln_plan_targets_free(t, s->nlayers);
	ts_free(s);
	(void)state;
}

static void test_targets_percent_only(void **state)
{
	struct kiln_spec *s = ts_new(1000, 1);
	size_t l = ts_layer(s, "Eyes", 0, 3);
	ts_trait(s, l, "A", KILN_QUOTA_PERCENT, 33.3, 4);
	ts_trait(s, l, "B", KILN_QUOTA_PERCENT, 33.3, 5);
	ts_trait(s, l, "C", KILN_QUOTA_PERCENT, 33.4, 6);
	uint64_t **t = targets_of(s);
	assert_int_equal(t[0][0], 333);
	assert_int_equal(t[0][1], 333);
	assert_int_equal(t[0][2], 334);
	kiln_plan_targets_free(t, s->nlayers);
	/* 99%: ten tokens would have no value */
	s->layers[0].traits[2].amount = 32.4;
	struct kiln_error e;
	t = NULL;
	assert_int_equal(kiln_plan_targets(s, &t, &e), KILN_E_INFEASIBLE);
	assert_null(t);
	assert_string_equal(e.where, "kiln.yaml:3:5");
	assert_non_null(strstr(e.msg, "Eyes"));
	assert_non_null(strstr(e.msg, "leaving 10 of the 1000"));
	/* over 100% */
	s->layers[0].traits[2].amount = 40;
	assert_int_equal(kiln_plan_targets(s, &t, &e), KILN_E_INFEASIBLE);
	assert_non_null(strstr(e.msg, "106.6%"));
	assert_non_null(strstr(e.msg, "lower them by 6.6%"));
	ts_free(s);
	(void)state;
}

static void test_targets_counts(void **state)
{
	struct kiln_spec *s = ts_new(100, 1);
	size_t l = ts_layer(s, "Body", 0, 7);
	ts_trait(s, l, "A", KILN_QUOTA_COUNT, 60, 8);
	ts_trait(s, l, "B", KILN_QUOTA_COUNT, 30, 9);
	uint64_t **t = NULL;
	struct kiln_error e;
	assert_int_equal(kiln_plan_targets(s, &t, &e), KILN_E_INFEASIBLE);
	assert_string_equal(e.where, "kiln.yaml:7:5");
	assert_non_null(strstr(e.msg, "layer Body"));
	assert_non_null(strstr(e.msg, "10 short"));
	s->layers[0].traits[1].amount = 45;
	assert_int_equal(kiln_plan_targets(s, &t, &e), KILN_E_INFEASIBLE);
	assert_non_null(strstr(e.msg, "5 more than"));
	s->layers[0].traits[1].amount = 40;
	t = targets_of(s);
	assert_int_equal(t[0][0], 60);
	assert_int_equal(t[0][1], 40);
	kiln_plan_targets_free(t, 1);
	ts_free(s);
	(void)state;
}

/* ---------------------------------------------------------------------------------------- */

static int plans_equal(const struct kiln_plan *a, const struct kiln_plan *b)
{
	if (a->nitems != b->nitems || a->nlayers != b->nlayers)
		return 0;
	for (size_t i = 0; i < a->nitems; i++)
		if (a->items[i].id != b->items[i].id || a->items[i].seed != b->items[i].seed ||
		    a->items[i].legendary != b->items[i].legendary)
			return 0;
	return !memcmp(a->matrix, b->matrix, a->nitems * a->nlayers * sizeof *a->matrix);
}

static void check_plan(const struct kiln_plan *p, const struct kiln_spec *s)
{
	struct kiln_error e;
	int rc = kiln_plan_verify(p, s, &e);
	if (rc)
		print_message("verify: %s: %s\n", e.where, e.msg);
	assert_int_equal(rc, 0);
}

static void test_property_random(void **state)
{
	struct kiln_rng r;
	int ok = 0, bad = 0;
	/* under valgrind (make valgrind sets KILN_VALGRIND) a tenth of the rounds */
	int rounds = getenv("KILN_VALGRIND") ? 20 : 200;
	kiln_rng_seed(&r, 2024, 9);
	for (int i = 0; i < rounds; i++) {
		uint64_t size = 5 + kiln_rng_below(&r, i < rounds * 17 / 20 ? 400 : 5000);
		size_t nl = 2 + kiln_rng_below(&r, 6);
		struct kiln_spec *s = ts_random(&r, size, nl, 8, kiln_rng_below(&r, 8));
		struct kiln_plan *p = NULL, *p2 = NULL;
		struct kiln_error e;
		int rc = kiln_plan_make(&p, s, NULL, &e);
		if (rc == 0) {
			ok++;
			check_plan(p, s);
			assert_int_equal(p->changed, p->nitems);
			assert_int_equal(kiln_plan_make(&p2, s, NULL, &e), 0);
			assert_true(plans_equal(p, p2));
			for (size_t j = 0; j < p->nitems; j++)
				assert_true(p->items[j].legendary < 0 ||
					    p->items[j].traits[0] == KILN_PLAN_UNSET);
		} else {
			bad++;
			/* proven impossible, or (min_distance >= 2 only) not found within the effort */
			assert_true(rc == KILN_E_INFEASIBLE ||
				    (rc == KILN_E_NOTFOUND && s->min_distance >= 2));
			assert_null(p);
			assert_true(strlen(e.msg) > 20);
			assert_true(strncmp(e.where, "kiln.yaml", 9) == 0);
		}
		kiln_plan_free(p);
		kiln_plan_free(p2);
		ts_free(s);
	}
	print_message("random specs: %d planned, %d infeasible\n", ok, bad);
	assert_true(ok >= rounds * 2 / 5);
	(void)state;
}

static void test_min_distance(void **state)
{
	for (unsigned k = 2; k <= 3; k++) {
		struct kiln_spec *s = ts_new(600, 7 + k);
		char nm[16];
		for (size_t l = 0; l < 8; l++) {
			snprintf(nm, sizeof nm, "L%zu", l);
			ts_layer(s, nm, 0, 3 + (int)l);
			for (size_t v = 0; v < 8; v++) {
				snprintf(nm, sizeof nm, "v%zu", v);
				ts_trait(s, l, nm, KILN_QUOTA_WEIGHT, 1 + (double)v, 3);
			}
		}
		s->min_distance = k;
		struct kiln_plan *p = NULL;
		struct kiln_error e;
		int rc = kiln_plan_make(&p, s, NULL, &e);
		if (rc)
			print_message("%s: %s\n", e.where, e.msg);
		assert_int_equal(rc, 0);
		check_plan(p, s);
		kiln_plan_free(p);
		ts_free(s);
	}
	(void)state;
}

static void test_tight_full_space(void **state)
{
	/* every one of the 4*4*4 trait sets exactly once */
	struct kiln_spec *s = ts_new(64, 3);
	char nm[16];
	for (size_t l = 0; l < 3; l++) {
		snprintf(nm, sizeof nm, "L%zu", l);
		ts_layer(s, nm, 0, 3);
		for (size_t v = 0; v < 4; v++) {
			snprintf(nm, sizeof nm, "v%zu", v);
			ts_trait(s, l, nm, KILN_QUOTA_WEIGHT, 1, 3);
		}
	}
	struct kiln_plan *p = NULL;
	struct kiln_error e;
	int rc = kiln_plan_make(&p, s, NULL, &e);
	if (rc)
		print_message("%s: %s\n", e.where, e.msg);
	assert_int_equal(rc, 0);
	check_plan(p, s);
	kiln_plan_free(p);
	ts_free(s);
	(void)state;
}

/* Crown must wear Gold; WITH pairs; exclusions near the limit */
static struct kiln_spec *owl_spec(uint64_t size)
{
	struct kiln_spec *s = ts_new(size, 42);
	size_t bg = ts_layer(s, "Background", 0, 10);
	ts_trait(s, bg, "Dusk", KILN_QUOTA_WEIGHT, 20, 11);
	ts_trait(s, bg, "Gold", KILN_QUOTA_PERCENT, 1.5, 12);
	ts_trait(s, bg, "Void", KILN_QUOTA_COUNT, 25, 13);
	ts_trait(s, bg, "Sky", KILN_QUOTA_WEIGHT, 40, 14);
	size_t body = ts_layer(s, "Body", 0, 20);
	ts_trait(s, body, "Gold", KILN_QUOTA_COUNT, 30, 21);
	ts_trait(s, body, "Silver", KILN_QUOTA_COUNT, 30, 22);
	ts_trait(s, body, "Brown", KILN_QUOTA_WEIGHT, 50, 23);
	ts_trait(s, body, "Grey", KILN_QUOTA_WEIGHT, 50, 24);
	size_t hat = ts_layer(s, "Hat", 0, 30);
	ts_trait(s, hat, "Crown", KILN_QUOTA_COUNT, 50, 31);
	ts_trait(s, hat, "Cap", KILN_QUOTA_WEIGHT, 30, 32);
	ts_trait(s, hat, "Beanie", KILN_QUOTA_WEIGHT, 30, 33);
	ts_none(s, hat, KILN_QUOTA_WEIGHT, 40);
	size_t eyes = ts_layer(s, "Eyes", 0, 40);
	ts_trait(s, eyes, "Laser", KILN_QUOTA_PERCENT, 5, 41);
	ts_trait(s, eyes, "Round", KILN_QUOTA_WEIGHT, 50, 42);
	ts_trait(s, eyes, "Sleepy", KILN_QUOTA_WEIGHT, 50, 43);
	size_t beak = ts_layer(s, "Beak", 0, 50);
	char nm[16];
	for (int v = 0; v < 12; v++) {
		snprintf(nm, sizeof nm, "Beak%d", v);
		ts_trait(s, beak, nm, KILN_QUOTA_WEIGHT, 1 + v % 3, 51 + v);
	}
	size_t wings = ts_layer(s, "Wings", 0, 70);
	for (int v = 0; v < 10; v++) {
		snprintf(nm, sizeof nm, "Wings%d", v);
		ts_trait(s, wings, nm, KILN_QUOTA_WEIGHT, 1, 71 + v);
	}
	size_t tail = ts_layer(s, "Tail", 0, 85);
	for (int v = 0; v < 8; v++) {
		snprintf(nm, sizeof nm, "Tail%d", v);
		ts_trait(s, tail, nm, KILN_QUOTA_WEIGHT, 1, 86 + v);
	}
	size_t r = ts_rule(s, KILN_RULE_IF, 60);
	ts_clause(s, r, 0, hat, 1, (size_t)0);
	ts_clause(s, r, 1, body, 2, (size_t)0, (size_t)1);
	r = ts_rule(s, KILN_RULE_EXCLUDE, 61);
	ts_clause(s, r, 0, hat, 1, (size_t)0);
	ts_clause(s, r, 0, eyes, 1, (size_t)0);
	r = ts_rule(s, KILN_RULE_WITH, 62);
	ts_clause(s, r, 0, bg, 1, (size_t)2);
	ts_clause(s, r, 0, body, 1, (size_t)1);
	return s;
}

static void test_owls(void **state)
{
	struct kiln_spec *s = owl_spec(2000);
	/* Void (25) goes with Silver: make Silver 25 too */
	s->layers[1].traits[1].amount = 25;
	struct kiln_plan *p = NULL;
	struct kiln_error e;
	int rc = kiln_plan_make(&p, s, NULL, &e);
	if (rc)
		print_message("%s: %s\n", e.where, e.msg);
	assert_int_equal(rc, 0);
	check_plan(p, s);
	assert_int_equal(p->actual[2][0], 50);
	assert_int_equal(p->actual[1][0] + p->actual[1][1], 55);
	ts_free(s);
	kiln_plan_free(p);
	(void)state;
}

static void expect_infeasible(struct kiln_spec *s, const char *where, const char *const *subs)
{
	struct kiln_plan *p = NULL;
	struct kiln_error e;
	int rc = kiln_plan_make(&p, s, NULL, &e);
	print_message("  -> %s: %s\n", e.where, e.msg);
	assert_int_equal(rc, KILN_E_INFEASIBLE);
	assert_null(p);
	if (where)
		assert_string_equal(e.where, where);
	for (; *subs; subs++) {
		if (!strstr(e.msg, *subs))
			print_message("missing: %s\n", *subs);
		assert_non_null(strstr(e.msg, *subs));
	}
}

static void test_infeasible_if(void **state)
{
	/* Crown has 50, requires Gold (30 in all) */
	struct kiln_spec *s = owl_spec(2000);
	s->layers[1].traits[1].amount = 25;
	s->rules[0].then[0].ntraits = 1;
	expect_infeasible(s, "kiln.yaml:60:5",
			  (const char *const[]){"if {Hat: Crown} then {Body: Gold}",
						"each of the 50 tokens", "30 tokens",
						"{Hat: Crown} can have at most 30 tokens",
						NULL});
	ts_free(s);
	(void)state;
}

static void test_infeasible_with(void **state)
{
	struct kiln_spec *s = owl_spec(2000);
	expect_infeasible(s, "kiln.yaml:62:5",
			  (const char *const[]){"counts must be equal", "Background: Void",
						"25", "30", NULL});
	ts_free(s);
	(void)state;
}

static void test_infeasible_exclude(void **state)
{
	struct kiln_spec *s = owl_spec(2000);
	s->layers[1].traits[1].amount = 25;
	s->layers[2].traits[0].amount = 1950; /* Crown */
	s->layers[3].traits[0].amount = 10;   /* Laser 10% = 200 */
	expect_infeasible(s, NULL, (const char *const[]){"Crown", NULL});
	ts_free(s);
	/* exclusion alone */
	s = ts_new(100, 1);
	size_t a = ts_layer(s, "Hat", 0, 3), b = ts_layer(s, "Eyes", 0, 8);
	ts_trait(s, a, "Crown", KILN_QUOTA_COUNT, 60, 4);
	ts_trait(s, a, "Cap", KILN_QUOTA_WEIGHT, 1, 5);
	ts_trait(s, b, "Laser", KILN_QUOTA_COUNT, 50, 9);
	ts_trait(s, b, "Round", KILN_QUOTA_WEIGHT, 1, 10);
	size_t r = ts_rule(s, KILN_RULE_EXCLUDE, 20);
	ts_clause(s, r, 0, a, 1, (size_t)0);
	ts_clause(s, r, 0, b, 1, (size_t)0);
	s->min_distance = 0;
	expect_infeasible(s, "kiln.yaml:20:5",
			  (const char *const[]){"exclude {Hat: Crown, Eyes: Laser}",
						"Hat=Crown (60 tokens)", "Eyes=Laser (50 tokens)",
						"Hat=Crown can have at most 50",
						NULL});
	ts_free(s);
	(void)state;
}

static void test_infeasible_combinations(void **state)
{
	/* 9 combinations for 10 tokens */
	struct kiln_spec *s = ts_new(10, 1);
	for (int l = 0; l < 2; l++) {
		size_t x = ts_layer(s, l ? "Eyes" : "Hat", 0, 3 + l * 10);
		ts_trait(s, x, "A", KILN_QUOTA_WEIGHT, 1, 4);
		ts_trait(s, x, "B", KILN_QUOTA_WEIGHT, 1, 5);
		ts_trait(s, x, "C", KILN_QUOTA_WEIGHT, 1, 6);
	}
	expect_infeasible(s, NULL,
			  (const char *const[]){"only 9", "3 x 3", "at most 9 generated tokens can all differ",
						NULL});
	/* min_distance 2 over 2 layers of 3: at most 3 */
	s->size = 5;
	s->min_distance = 2;
	expect_infeasible(s, NULL, (const char *const[]){"min_distance 2", "at most 3", NULL});
	s->min_distance = 3;
	expect_infeasible(s, NULL, (const char *const[]){"min_distance 3 needs at least 3", NULL});
	/* rules leave 8 of 9 */
	s->min_distance = 1;
	s->size = 9;
	size_t r = ts_rule(s, KILN_RULE_EXCLUDE, 30);
	ts_clause(s, r, 0, 0, 1, (size_t)0);
	ts_clause(s, r, 0, 1, 1, (size_t)0);
	expect_infeasible(s, "kiln.yaml:30:5", (const char *const[]){"only 8", NULL});
	ts_free(s);
	(void)state;
}

static void test_infeasible_value_unique(void **state)
{
	/* Hat A has 5 tokens, but the other layer has 3 values */
	struct kiln_spec *s = ts_new(9, 1);
	size_t h = ts_layer(s, "Hat", 0, 3), y = ts_layer(s, "Eyes", 0, 13);
	ts_trait(s, h, "A", KILN_QUOTA_COUNT, 5, 4);
	ts_trait(s, h, "B", KILN_QUOTA_WEIGHT, 1, 5);
	ts_trait(s, h, "C", KILN_QUOTA_WEIGHT, 1, 6);
	for (int v = 0; v < 3; v++)
		ts_trait(s, y, v == 0 ? "X" : v == 1 ? "Y" : "Z", KILN_QUOTA_WEIGHT, 1, 14 + v);
	expect_infeasible(s, "kiln.yaml:4:9",
			  (const char *const[]){"Hat=A has 5 tokens", "at most 3 tokens", NULL});
	ts_free(s);
	(void)state;
}

static void test_infeasible_forbidden_value(void **state)
{
	struct kiln_spec *s = owl_spec(500);
	s->layers[1].traits[1].amount = 25;
	size_t r = ts_rule(s, KILN_RULE_IF, 70);
	ts_clause(s, r, 0, 2, 1, (size_t)1); /* if Hat Cap then Hat Beanie */
	ts_clause(s, r, 1, 2, 1, (size_t)2);
	expect_infeasible(s, "kiln.yaml:70:5",
			  (const char *const[]){"can never hold", "Hat=Cap", "it can have none", NULL});
	ts_free(s);
	(void)state;
}

static void test_legendaries_and_ids(void **state)
{
	struct kiln_spec *s = owl_spec(300);
	s->layers[1].traits[1].amount = 25;
	ts_legendary(s, "Founder");
	ts_legendary(s, "Ghost");
	s->start_id = 0;
	struct kiln_plan *p = NULL;
	struct kiln_error e;
	assert_int_equal(kiln_plan_make(&p, s, NULL, &e), 0);
	check_plan(p, s);
	size_t nleg = 0, last = 0;
	for (size_t i = 0; i < p->nitems; i++) {
		assert_int_equal(p->items[i].id, i);
		assert_int_equal(p->items[i].seed, kiln_plan_seed(42, i));
		assert_true(p->items[i].seed < ((uint64_t)1 << 63));
		if (p->items[i].legendary >= 0) {
			nleg++;
			last = i;
		}
	}
	assert_int_equal(nleg, 2);
	(void)last;
	/* generated counts: 298 */
	uint64_t sum = 0;
	for (size_t v = 0; v < s->layers[0].ntraits; v++)
		sum += p->actual[0][v];
	assert_int_equal(sum, 298);
	kiln_plan_free(p);
	ts_free(s);
	(void)state;
}

static void test_seed(void **state)
{
	assert_int_equal(kiln_plan_seed(1, 1), kiln_plan_seed(1, 1));
	assert_int_not_equal(kiln_plan_seed(1, 1), kiln_plan_seed(1, 2));
	assert_int_not_equal(kiln_plan_seed(1, 1), kiln_plan_seed(2, 1));
	for (uint64_t i = 0; i < 1000; i++)
		assert_true(kiln_plan_seed(42, i) >> 63 == 0);
	(void)state;
}

/* ---------------------------------------------------------------------------------------- */

struct prevbuf {
	struct kiln_plan_prev prev;
	uint64_t *ids;
	uint32_t *matrix;
	long *leg;
};

static void prev_from(struct prevbuf *b, const struct kiln_plan *p)
{
	b->ids = malloc(p->nitems * sizeof *b->ids);
	b->matrix = malloc((p->nitems * p->nlayers + 1) * sizeof *b->matrix);
	b->leg = malloc(p->nitems * sizeof *b->leg);
	for (size_t i = 0; i < p->nitems; i++) {
		b->ids[i] = p->items[i].id;
		b->leg[i] = p->items[i].legendary;
	}
	memcpy(b->matrix, p->matrix, p->nitems * p->nlayers * sizeof *b->matrix);
	b->prev.nitems = p->nitems;
	b->prev.ids = b->ids;
	b->prev.matrix = b->matrix;
	b->prev.legendary = b->leg;
}

static void prev_free(struct prevbuf *b)
{
	free(b->ids);
	free(b->matrix);
	free(b->leg);
}

static void test_replan(void **state)
{
	struct kiln_spec *s = owl_spec(3000);
	s->layers[1].traits[1].amount = 25;
	ts_legendary(s, "Founder");
	struct kiln_plan *p = NULL, *q = NULL;
	struct kiln_error e;
	struct prevbuf b;
	int rc = kiln_plan_make(&p, s, NULL, &e);
	if (rc)
		print_message("%s: %s\n", e.where, e.msg);
	assert_int_equal(rc, 0);
	prev_from(&b, p);

	/* same spec: nothing changes */
	assert_int_equal(kiln_plan_make(&q, s, &b.prev, &e), 0);
	check_plan(q, s);
	assert_int_equal(q->changed, 0);
	assert_true(plans_equal(p, q));
	kiln_plan_free(q);

	/* one line changes: Cap weight 30 -> 33; Hat's other targets move by tens */
	s->layers[2].traits[1].amount = 33;
	assert_int_equal(kiln_plan_make(&q, s, &b.prev, &e), 0);
	check_plan(q, s);
	uint64_t moved = 0;
	for (size_t v = 0; v < s->layers[2].ntraits; v++)
		moved += p->actual[2][v] > q->actual[2][v] ? p->actual[2][v] - q->actual[2][v] : 0;
	print_message("replan: %llu Hat values had to move, %zu items changed of %zu\n",
		      (unsigned long long)moved, q->changed, q->nitems);
	assert_true(q->changed >= moved);
	assert_true(q->changed <= 3 * moved + 20);
	/* the legendary keeps its id */
	for (size_t i = 0; i < p->nitems; i++)
		assert_int_equal(p->items[i].legendary >= 0, q->items[i].legendary >= 0);
	kiln_plan_free(q);

	/* a bigger collection keeps the old ids' traits for the most part */
	s->size = 3500;
	assert_int_equal(kiln_plan_make(&q, s, &b.prev, &e), 0);
	check_plan(q, s);
	print_message("grow: %zu items changed of %zu\n", q->changed, q->nitems);
	assert_true(q->changed < 2000);
	kiln_plan_free(q);

	prev_free(&b);
	kiln_plan_free(p);
	ts_free(s);
	(void)state;
}

static void test_replace(void **state)
{
	struct kiln_spec *s = owl_spec(1000);
	s->layers[1].traits[1].amount = 25;
	s->min_distance = 2;
	ts_legendary(s, "Founder");
	struct kiln_plan *p = NULL;
	struct kiln_error e;
	assert_int_equal(kiln_plan_make(&p, s, NULL, &e), 0);
	for (uint64_t id = 1; id <= 1000; id += 37) {
		uint64_t ch[16];
		size_t n = 0;
		uint32_t before[8];
		size_t idx = id - s->start_id;
		if (p->items[idx].legendary >= 0) {
			assert_int_equal(kiln_plan_replace(p, s, id, ch, 16, &n, &e), KILN_E_USAGE);
			continue;
		}
		memcpy(before, p->items[idx].traits, p->nlayers * sizeof *before);
		int rc = kiln_plan_replace(p, s, id, ch, 16, &n, &e);
		if (rc)
			print_message("%s: %s\n", e.where, e.msg);
		assert_int_equal(rc, 0);
		assert_true(n >= 2);
		assert_int_equal(ch[0], id);
		assert_memory_not_equal(before, p->items[idx].traits,
					p->nlayers * sizeof *before);
		check_plan(p, s);
	}
	kiln_plan_free(p);
	ts_free(s);
	(void)state;
}

/* ---------------------------------------------------------------------------------------- */

static void test_alloc_failures(void **state)
{
	struct kiln_spec *s = owl_spec(200);
	s->layers[1].traits[1].amount = 25;
	s->min_distance = 2;
	ts_legendary(s, "Founder");
	struct kiln_plan *ref = NULL;
	struct kiln_error e;
	assert_int_equal(kiln_plan_make(&ref, s, NULL, &e), 0);
	struct prevbuf b;
	prev_from(&b, ref);
	int done = 0;
	for (long n = 0; !done && n < 10000; n++) {
		struct kiln_plan *p = NULL;
		kiln_alloc_fail_after(n);
		int rc = kiln_plan_make(&p, s, n & 1 ? &b.prev : NULL, &e);
		long failed = kiln_alloc_failed();
		kiln_alloc_fail_after(-1);
		if (failed) {
			assert_int_equal(rc, KILN_E_NOMEM);
			assert_null(p);
		} else {
			assert_int_equal(rc, 0);
			check_plan(p, s);
			done = n > 2;
		}
		kiln_plan_free(p);
	}
	assert_true(done);
	/* replace and verify too */
	done = 0;
	for (long n = 0; !done && n < 10000; n++) {
		uint64_t ch[4];
		size_t nc;
		uint64_t id = ref->items[5].legendary < 0 ? ref->items[5].id : ref->items[6].id;
		kiln_alloc_fail_after(n);
		int rc = kiln_plan_replace(ref, s, id, ch, 4, &nc, &e);
		long failed = kiln_alloc_failed();
		kiln_alloc_fail_after(-1);
		if (failed) {
			assert_int_equal(rc, KILN_E_NOMEM);
		} else {
			assert_int_equal(rc, 0);
			done = 1;
		}
		check_plan(ref, s);
	}
	assert_true(done);
	done = 0;
	for (long n = 0; !done && n < 1000; n++) {
		kiln_alloc_fail_after(n);
		int rc = kiln_plan_verify(ref, s, &e);
		long failed = kiln_alloc_failed();
		kiln_alloc_fail_after(-1);
		assert_int_equal(rc, failed ? KILN_E_NOMEM : 0);
		done = !failed;
	}
	prev_free(&b);
	kiln_plan_free(ref);
	ts_free(s);
	(void)state;
}

static void test_verify_catches(void **state)
{
	struct kiln_spec *s = owl_spec(500);
	s->layers[1].traits[1].amount = 25;
	struct kiln_plan *p = NULL;
	struct kiln_error e;
	assert_int_equal(kiln_plan_make(&p, s, NULL, &e), 0);
	check_plan(p, s);
	/* make two tokens equal */
	size_t a = 0, b = 1;
	while (p->items[a].legendary >= 0)
		a++;
	b = a + 1;
	uint32_t save[8];
	memcpy(save, p->items[b].traits, p->nlayers * sizeof *save);
	memcpy(p->items[b].traits, p->items[a].traits, p->nlayers * sizeof *save);
	assert_int_equal(kiln_plan_verify(p, s, &e), KILN_E_FAILED);
	memcpy(p->items[b].traits, save, p->nlayers * sizeof *save);
	check_plan(p, s);
	/* Crown without Gold/Silver */
	for (size_t i = 0; i < p->nitems; i++)
		if (p->items[i].traits[2] == 0) {
			uint32_t old = p->items[i].traits[1];
			p->items[i].traits[1] = 2;
			assert_int_equal(kiln_plan_verify(p, s, &e), KILN_E_FAILED);
			p->items[i].traits[1] = old;
			break;
		}
	kiln_plan_free(p);
	ts_free(s);
	(void)state;
}

static void test_medium_size(void **state)
{
	struct kiln_rng r;
	kiln_rng_seed(&r, 77, 1);
	struct kiln_spec *s = ts_random(&r, 20000, 8, 10, 12);
	struct kiln_plan *p = NULL;
	struct kiln_error e;
	int rc = kiln_plan_make(&p, s, NULL, &e);
	if (rc)
		print_message("%s: %s\n", e.where, e.msg);
	else
		check_plan(p, s);
	assert_true(rc == 0 || rc == KILN_E_INFEASIBLE);
	kiln_plan_free(p);
	ts_free(s);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_targets_largest_remainder),
		cmocka_unit_test(test_targets_mixed),
		cmocka_unit_test(test_targets_percent_only),
		cmocka_unit_test(test_targets_counts),
		cmocka_unit_test(test_seed),
		cmocka_unit_test(test_owls),
		cmocka_unit_test(test_tight_full_space),
		cmocka_unit_test(test_min_distance),
		cmocka_unit_test(test_property_random),
		cmocka_unit_test(test_infeasible_if),
		cmocka_unit_test(test_infeasible_with),
		cmocka_unit_test(test_infeasible_exclude),
		cmocka_unit_test(test_infeasible_combinations),
		cmocka_unit_test(test_infeasible_value_unique),
		cmocka_unit_test(test_infeasible_forbidden_value),
		cmocka_unit_test(test_legendaries_and_ids),
		cmocka_unit_test(test_replan),
		cmocka_unit_test(test_replace),
		cmocka_unit_test(test_verify_catches),
		cmocka_unit_test(test_alloc_failures),
		cmocka_unit_test(test_medium_size),
	};
	if (getenv("PLAN_TEST"))
		cmocka_set_test_filter(getenv("PLAN_TEST"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
