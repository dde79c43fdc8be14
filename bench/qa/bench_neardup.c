/* bench_neardup: multi-index near-duplicate search (kiln_neardup_pairs) against a brute-force
 * scan of every pair, on random 64-bit hashes with planted near-duplicate pairs.
 *
 * The brute force runs on a subset (default 20,000 hashes: 2e8 pairs) and is extrapolated to
 * N by N^2: that is the peer's cost at N, measured in the same run. Both must agree on the
 * subset pair for pair; every planted pair must be found at full size.
 *
 * usage: bench_neardup [N [THRESHOLD [THREADS [SUBSET]]]]   (default 1000000 8 0 20000)
 * Run through bench/qa/run.sh, which builds this against a built libkiln.a. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qa/phash.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void) /* splitmix64 */
{
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static double clk(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double now(void)
{
	return clk(CLOCK_MONOTONIC);
}

static uint64_t flip(uint64_t h, int d) /* flip d distinct random bits */
{
	uint64_t mask = 0;
	while (__builtin_popcountll(mask) < d)
		mask |= (uint64_t)1 << (rnd() % 64);
	return h ^ mask;
}

static int has_pair(const struct kiln_neardup_pair *p, size_t n, uint32_t i, uint32_t j)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (p[mid].i < i || (p[mid].i == i && p[mid].j < j))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && p[lo].i == i && p[lo].j == j;
}

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
	int t = argc > 2 ? atoi(argv[2]) : 8;
	int threads = argc > 3 ? atoi(argv[3]) : 0;
	size_t sub = argc > 4 ? strtoul(argv[4], NULL, 10) : 20000;
	size_t nplant = n / 1000, missing = 0;
	uint64_t *h = malloc(n * sizeof *h);
	uint32_t (*plant)[2] = malloc((nplant + 1) * sizeof *plant);
	struct kiln_neardup_opts o = {t, threads, 0};
	struct kiln_neardup_pair *p = NULL, *q = NULL;
	size_t np = 0, nq = 0;
	struct kiln_error e;
	double t0, c0, t_mih, c_mih, t_brute, t_mih_sub;

	if (!h || !plant)
		return 1;
	if (sub > n)
		sub = n;
	for (size_t i = 0; i < n; i++)
		h[i] = rnd();
	/* planted pairs: i and a later j at distance 0..t (spread over the whole array) */
	for (size_t k = 0; k < nplant; k++) {
		/* half the pairs far apart, half close (so the brute-force subset has some) */
		uint32_t i = (uint32_t)(rnd() % n), j = k % 2 ? (uint32_t)(rnd() % n) :
						   (uint32_t)((i + 1 + rnd() % 64) % n);
		if (i == j)
			continue;
		h[j] = flip(h[i], (int)(k % (size_t)(t + 1)));
		plant[k][0] = i < j ? i : j;
		plant[k][1] = i < j ? j : i;
	}
	kiln_error_clear(&e);

	t0 = now();
	c0 = clk(CLOCK_PROCESS_CPUTIME_ID);
	if (kiln_neardup_pairs(h, n, &o, &p, &np, &e)) {
		fprintf(stderr, "bench_neardup: %s\n", e.msg);
		return 1;
	}
	t_mih = now() - t0;
	c_mih = clk(CLOCK_PROCESS_CPUTIME_ID) - c0;
	for (size_t k = 0; k < nplant; k++) {
		if (plant[k][0] == plant[k][1])
			continue;
		/* a later plant may have overwritten one side; only check pairs still within t */
		if (kiln_phash_distance(h[plant[k][0]], h[plant[k][1]]) <= t &&
		    !has_pair(p, np, plant[k][0], plant[k][1]))
			missing++;
	}

	/* subset: brute force vs MIH, pair for pair */
	t0 = now();
	if (kiln_neardup_pairs_brute(h, sub, t, 0, &q, &nq, &e)) {
		fprintf(stderr, "bench_neardup: %s\n", e.msg);
		return 1;
	}
	t_brute = now() - t0;
	free(p);
	p = NULL;
	t0 = now();
	{
		size_t np2;
		if (kiln_neardup_pairs(h, sub, &o, &p, &np2, &e)) {
			fprintf(stderr, "bench_neardup: %s\n", e.msg);
			return 1;
		}
		t_mih_sub = now() - t0;
		if (np2 != nq || (nq && memcmp(p, q, nq * sizeof *q))) {
			fprintf(stderr, "bench_neardup: MIH and brute force disagree on the subset "
				"(%zu vs %zu pairs)\n", np2, nq);
			return 1;
		}
	}
	{
		double scale = ((double)n * (double)(n - 1)) / ((double)sub * (double)(sub - 1));
		double brute_full = t_brute * scale;
		printf("near-duplicates: N=%zu threshold=%d threads=%d\n", n, t, threads);
		printf("  multi-index:   %.3f s wall, %.3f s CPU, %zu pairs, planted pairs missing: "
		       "%zu of %zu\n", t_mih, c_mih, np, missing, nplant);
		printf("  subset N=%zu: brute force %.3f s, multi-index %.4f s, %zu pairs, same result\n",
		       sub, t_brute, t_mih_sub, nq);
		printf("  brute force extrapolated to N: %.0f s; multi-index is %.0fx faster\n",
		       brute_full, brute_full / t_mih);
		printf("  target: < 2 s at N=1,000,000, t=8: %s\n",
		       n == 1000000 && t == 8 ? (t_mih < 2.0 ? "met" : "MISSED") : "n/a");
	}
	free(p);
	free(q);
	free(h);
	free(plant);
	return missing ? 1 : 0;
}
