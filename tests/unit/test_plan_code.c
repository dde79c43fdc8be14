/* lib/plan/code.c: plans inside algebraic codes (min_distance >= 2). Small full codes, so
 * that the plan is every word the code enumerates: every pair of them is checked by brute
 * force for the distance, every count for its target. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "plan_testutil.h"
#include "plan/code.h"

/* a spec of nl layers (sizes sz), value counts cnt (flat), the last layer bypass or not */
static struct kiln_spec *counted(uint64_t G, size_t nl, const size_t *sz, const uint64_t *cnt,
				 int bypass_last)
{
	struct kiln_spec *s = ts_new(G, 5);
	char nm[32];
	for (size_t l = 0, f = 0; l < nl; l++) {
		snprintf(nm, sizeof nm, "L%zu", l);
		ts_layer(s, nm, bypass_last && l == nl - 1, 3 + (int)l);
		for (size_t v = 0; v < sz[l]; v++, f++) {
			snprintf(nm, sizeof nm, "v%zu", v);
			ts_trait(s, l, nm, KILN_QUOTA_COUNT, (double)cnt[f], 3 + (int)l);
		}
	}
	return s;
}

/* plan G tokens inside the code; check counts and the distance of every pair (nb layers) */
static void code_ok_pat(struct kiln_spec *s, unsigned k, const uint64_t *cnt, int bypass_last,
			unsigned tries, const struct kiln_plan_code_patl *pl, const uint32_t *pfirst,
			size_t npats)
{
	size_t L = s->nlayers, G = (size_t)s->size, V = 0, nnb = 0;
	size_t vbase[16];
	uint32_t nb[16];
	struct kiln_error e;
	for (size_t l = 0; l < L; l++) {
		vbase[l] = V;
		V += s->layers[l].ntraits;
		if (!(bypass_last && l == L - 1))
			nb[nnb++] = (uint32_t)l;
	}
	vbase[L] = V;
	struct kiln_plan_code in = {
		.lp = {.s = s, .L = L, .G = G, .vbase = vbase, .cnt = cnt, .k = 1, .effort = 1},
		.k = k, .nb = nb, .nnb = nnb, .seed = 9, .tries = tries, .rounds = 6,
		.pl = pl, .pfirst = pfirst, .npats = npats};
	uint32_t *m = calloc(G * L + 1, sizeof *m), *m2 = calloc(G * L + 1, sizeof *m2);
	uint64_t *got = calloc(V + 1, sizeof *got);
	assert_non_null(m);
	assert_non_null(m2);
	assert_non_null(got);
	int rc = kiln_plan_code_solve(&in, m, &e);
	if (rc)
		print_message("code: %d %s\n", rc, e.msg);
	assert_int_equal(rc, 0);
	assert_int_equal(kiln_plan_code_solve(&in, m2, &e), 0);
	assert_memory_equal(m, m2, G * L * sizeof *m); /* deterministic */
	for (size_t t = 0; t < G; t++)
		for (size_t l = 0; l < L; l++)
			got[vbase[l] + m[t * L + l]]++;
	assert_memory_equal(got, cnt, V * sizeof *got);
	for (size_t t = 0; t < G; t++) /* no pattern broken */
		for (size_t p = 0; p < npats; p++) {
			size_t q = pfirst[p];
			while (q < pfirst[p + 1] && pl[q].in[m[t * L + pl[q].layer]])
				q++;
			assert_true(q < pfirst[p + 1]);
		}
	for (size_t a = 0; a < G; a++)
		for (size_t b = a + 1; b < G; b++) {
			unsigned d = 0;
			for (size_t i = 0; i < nnb; i++)
				d += m[a * L + nb[i]] != m[b * L + nb[i]];
			if (d < k)
				print_message("tokens %zu and %zu differ in %u layers\n", a, b, d);
			assert_true(d >= k);
		}
	free(m);
	free(m2);
	free(got);
}

static void code_ok(struct kiln_spec *s, unsigned k, const uint64_t *cnt, int bypass_last)
{
	code_ok_pat(s, k, cnt, bypass_last, 40, NULL, NULL, 0);
}

/* min_distance 2, layers of 3, 4 and 5 values: the parity code has 12 words (the 5-value
 * layer holds the sum mod 5; its residues 0..4 come 2, 2, 3, 3, 2 times) */
static void test_parity_full(void **state)
{
	size_t sz[] = {3, 4, 5};
	uint64_t cnt[] = {4, 4, 4, 3, 3, 3, 3, 3, 3, 2, 2, 2};
	struct kiln_spec *s = counted(12, 3, sz, cnt, 0);
	code_ok(s, 2, cnt, 0);
	ts_free(s);
	(void)state;
}

/* the same with a bypass layer of 2 values: every word twice, apart only in the bypass
 * layer (which does not count), so the 12 words times 2 are 24 tokens */
static void test_parity_bypass(void **state)
{
	size_t sz[] = {3, 4, 5, 2};
	uint64_t cnt[] = {8, 8, 8, 6, 6, 6, 6, 6, 6, 4, 4, 4, 12, 12};
	struct kiln_spec *s = counted(24, 4, sz, cnt, 1);
	/* distinct in the non-bypass layers is required: 24 tokens over 12 words cannot be;
	 * the code must refuse (not found), never return a plan that repeats a word */
	size_t L = 4, vbase[] = {0, 3, 7, 12, 14};
	uint32_t nb[] = {0, 1, 2}, *m = calloc(24 * L, sizeof *m);
	struct kiln_error e;
	struct kiln_plan_code in = {
		.lp = {.s = s, .L = L, .G = 24, .vbase = vbase, .cnt = cnt, .k = 1, .effort = 1},
		.k = 2, .nb = nb, .nnb = 3, .seed = 9, .tries = 6};
	assert_non_null(m);
	assert_int_equal(kiln_plan_code_solve(&in, m, &e), KILN_E_NOTFOUND);
	free(m);
	ts_free(s);
	/* 12 tokens, the bypass layer split 7 / 5: a plan */
	uint64_t cnt2[] = {4, 4, 4, 3, 3, 3, 3, 3, 3, 2, 2, 2, 7, 5};
	s = counted(12, 4, sz, cnt2, 1);
	code_ok(s, 2, cnt2, 1);
	ts_free(s);
	(void)state;
}

/* Reed-Solomon: 5 layers of 5 values, min_distance 3 (125 words) and 4 (25 words): every
 * value holds 25 and 5 tokens */
static void test_rs_full(void **state)
{
	size_t sz[] = {5, 5, 5, 5, 5};
	uint64_t cnt[25];
	for (unsigned k = 3; k <= 4; k++) {
		uint64_t G = k == 3 ? 125 : 25;
		for (size_t i = 0; i < 25; i++)
			cnt[i] = G / 5;
		struct kiln_spec *s = counted(G, 5, sz, cnt, 0);
		code_ok(s, k, cnt, 0);
		ts_free(s);
	}
	/* 4 layers of 7 values, min_distance 3: 49 words of GF(7) (shortened to 4 points) */
	size_t sz7[] = {7, 7, 7, 7};
	uint64_t c7[28];
	for (size_t i = 0; i < 28; i++)
		c7[i] = 7;
	struct kiln_spec *s = counted(49, 4, sz7, c7, 0);
	code_ok(s, 3, c7, 0);
	ts_free(s);
	(void)state;
}

/* 6 layers of 11 values, min_distance 4: 1,331 words in a product of 1,771,561 trait sets
 * (more than the min_distance-1 planner enumerates): the words are enumerated directly */
static void test_rs_large_product(void **state)
{
	size_t sz[6];
	uint64_t cnt[66];
	for (size_t l = 0; l < 6; l++)
		sz[l] = 11;
	for (size_t i = 0; i < 66; i++)
		cnt[i] = 121;
	struct kiln_spec *s = counted(1331, 6, sz, cnt, 0);
	code_ok(s, 4, cnt, 0);
	ts_free(s);
	(void)state;
}

/* The joint integer program (labeling and words together), alone: one labeling tried (the
 * first, by frequency), so the plan must come from the program. The spec is a witness: the
 * Reed-Solomon code of GF(7), 4 points, min_distance 3 (49 words (a + b x) for x = 0..3),
 * each layer relabeled by a permutation that is not affine, and 30 of its words kept, the
 * ones with a small (a * 5 + b * 3 + a * b) mod 7 first: skewed counts. With a rule the
 * witness keeps (L0 = its value 0 never with L1 = a value it never meets), too. */
static void test_joint_rs(void **state)
{
	static const unsigned perm[4][7] = {{3, 0, 6, 1, 5, 2, 4}, {6, 4, 0, 2, 1, 5, 3},
					    {1, 5, 2, 6, 0, 3, 4}, {2, 6, 5, 0, 3, 4, 1}};
	size_t sz[] = {7, 7, 7, 7}, G = 0;
	uint64_t cnt[28] = {0};
	unsigned char meets[7] = {0}, never[7] = {0};
	for (unsigned key = 0; key < 7 && G < 30; key++)
		for (unsigned a = 0; a < 7 && G < 30; a++)
			for (unsigned b = 0; b < 7 && G < 30; b++) {
				if ((a * 5 + b * 3 + a * b) % 7 != key)
					continue;
				unsigned v0 = perm[0][a % 7], v1 = perm[1][(a + b) % 7];
				for (unsigned x = 0; x < 4; x++)
					cnt[x * 7 + perm[x][(a + b * x) % 7]]++;
				if (v0 == 0)
					meets[v1] = 1;
				G++;
			}
	struct kiln_spec *s = counted(G, 4, sz, cnt, 0);
	code_ok_pat(s, 3, cnt, 0, 1, NULL, NULL, 0);
	for (unsigned v = 0; v < 7; v++)
		never[v] = !meets[v];
	unsigned char zero[7] = {1, 0, 0, 0, 0, 0, 0};
	struct kiln_plan_code_patl pl[] = {{0, zero}, {1, never}};
	uint32_t pfirst[] = {0, 2};
	code_ok_pat(s, 3, cnt, 0, 1, pl, pfirst, 1);
	ts_free(s);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parity_full),
		cmocka_unit_test(test_parity_bypass),
		cmocka_unit_test(test_rs_full),
		cmocka_unit_test(test_rs_large_product),
		cmocka_unit_test(test_joint_rs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
