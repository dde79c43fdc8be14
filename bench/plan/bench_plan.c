/* bench_plan: the Attribute Controller against a HashLips-style sampler, on the same spec.
 *
 * For each size given (default 10000 and 1000000) it builds a spec in memory (8 layers of 10
 * values = 80 values, mixed weight/percent/count quotas, "none" values, 20 rules: 8 exclude,
 * 8 if, 4 with), then runs, each in a forked child so that peak RSS is its own:
 *   kiln      kiln_plan_make()
 *   hashlips  what HashLips art engine does: per token, each layer's value drawn at random by
 *             weight (the targets are used as weights: the best a weight-based sampler can be
 *             given), DNA rejected and redrawn when already used; as the issue asks, a draw that
 *             breaks a rule is redrawn too. Like HashLips it gives up after 10000 failures in a
 *             row (uniqueDnaTorrance). DNA is kept as a 64-bit hash in an open-addressing set,
 *             faster than HashLips's JavaScript Set of strings, so the comparison is kind to it.
 * and reports wall time, peak RSS (getrusage of the child), tokens made, the largest
 * |actual - target| over all values, rule violations and duplicate pairs, counted here
 * independently of the planner. Ratios kiln / baseline and the limits are printed.
 *
 * usage: bench_plan [SIZE...]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "plan_testutil.h"

#define NL 8
#define NV 10

struct result {
	double secs;
	long rss_kb;
	uint64_t tokens;
	uint64_t maxdev;
	uint64_t violations;
	uint64_t dups;
	int rc;
	char msg[512];
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct kiln_spec *bench_spec(uint64_t size)
{
	struct kiln_spec *s = ts_new(size, 20240601);
	struct kiln_rng r;
	char nm[32];
	uint64_t G;
	kiln_rng_seed(&r, 12345, 1);
	ts_legendary(s, "The Founder");
	ts_legendary(s, "The Ghost");
	G = size - 2;
	for (size_t l = 0; l < NL; l++) {
		snprintf(nm, sizeof nm, "Layer%zu", l);
		ts_layer(s, nm, 0, 10 + (int)l * 20);
		for (size_t v = 0; v < NV; v++) {
			snprintf(nm, sizeof nm, "L%zuV%zu", l, v);
			if (l >= 4 && v == NV - 1)
				ts_none(s, l, KILN_QUOTA_WEIGHT, 30);
			else if (l == 0 && v == 0)
				ts_trait(s, l, nm, KILN_QUOTA_PERCENT, 1.5, 11 + (int)(l * 20 + v));
			else if (l == 1 && v == 0)
				ts_trait(s, l, nm, KILN_QUOTA_COUNT, (double)(G / 200), 11 + (int)(l * 20 + v));
			else
				ts_trait(s, l, nm, KILN_QUOTA_WEIGHT, (double)(10 + kiln_rng_below(&r, 90)),
					 11 + (int)(l * 20 + v));
		}
	}
	/* 4 forced pairs of equal counts: (Layer l value 1, Layer l+4 value 1) */
	for (size_t i = 0; i < 4; i++) {
		size_t ru = ts_rule(s, KILN_RULE_WITH, 200 + (int)i);
		s->layers[i].traits[1].quota = KILN_QUOTA_COUNT;
		s->layers[i].traits[1].amount = (double)(G / 100);
		s->layers[i + 4].traits[1].quota = KILN_QUOTA_COUNT;
		s->layers[i + 4].traits[1].amount = (double)(G / 100);
		ts_clause(s, ru, 0, i, 1, (size_t)1);
		ts_clause(s, ru, 0, i + 4, 1, (size_t)1);
	}
	/* 8 ifs: a value of layer i needs one of 6 values of layer i+1 */
	for (size_t i = 0; i < 8; i++) {
		size_t ru = ts_rule(s, KILN_RULE_IF, 210 + (int)i);
		size_t a = i, b = (i + 1) % NL, tr[6];
		for (size_t k = 0; k < 6; k++)
			tr[k] = 2 + k;
		ts_clause(s, ru, 0, a, 1, (size_t)(2 + i % 3));
		ts_clause_arr(s, ru, 1, b, 6, tr);
	}
	/* 8 excludes between values of layers i and i+2 */
	for (size_t i = 0; i < 8; i++) {
		size_t ru = ts_rule(s, KILN_RULE_EXCLUDE, 220 + (int)i);
		ts_clause(s, ru, 0, i, 1, (size_t)(5 + i % 3));
		ts_clause(s, ru, 0, (i + 2) % NL, 1, (size_t)(8 - i % 3));
	}
	return s;
}

static int clause_holds(const struct kiln_clause *c, const uint32_t *row)
{
	for (size_t i = 0; i < c->ntraits; i++)
		if (row[c->layer] == c->traits[i])
			return 1;
	return 0;
}

static int broken(const struct kiln_rule *r, const uint32_t *row)
{
	size_t held = 0;
	switch (r->kind) {
	case KILN_RULE_EXCLUDE:
		for (size_t i = 0; i < r->nwhen; i++)
			held += clause_holds(&r->when[i], row);
		return held == r->nwhen;
	case KILN_RULE_IF:
		for (size_t i = 0; i < r->nwhen; i++)
			if (!clause_holds(&r->when[i], row))
				return 0;
		for (size_t i = 0; i < r->nthen; i++)
			if (!clause_holds(&r->then[i], row))
				return 1;
		return 0;
	case KILN_RULE_WITH:
		for (size_t i = 0; i < r->nwhen; i++)
			held += clause_holds(&r->when[i], row);
		return held && held != r->nwhen;
	}
	return 0;
}

static uint64_t dna_hash(const uint32_t *row, size_t L)
{
	uint64_t h = 0x9e3779b97f4a7c15ULL;
	for (size_t l = 0; l < L; l++) {
		h ^= row[l] + 1;
		h *= 0xbf58476d1ce4e5b9ULL;
		h ^= h >> 31;
	}
	return h | 1; /* 0 marks an empty slot */
}

static int u64cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* quality of n rows (row-major), counted independently */
static void measure(struct result *res, const struct kiln_spec *s, uint64_t **tg,
		    const uint32_t *rows, size_t n)
{
	size_t L = s->nlayers;
	uint64_t *h = malloc((n ? n : 1) * sizeof *h);
	res->tokens = n;
	res->maxdev = res->violations = res->dups = 0;
	for (size_t l = 0; l < L; l++) {
		uint64_t cnt[64] = {0};
		for (size_t i = 0; i < n; i++)
			cnt[rows[i * L + l]]++;
		for (size_t v = 0; v < s->layers[l].ntraits; v++) {
			uint64_t d = cnt[v] > tg[l][v] ? cnt[v] - tg[l][v] : tg[l][v] - cnt[v];
			if (d > res->maxdev)
				res->maxdev = d;
		}
	}
	for (size_t i = 0; i < n; i++) {
		for (size_t r = 0; r < s->nrules; r++)
			res->violations += (uint64_t)broken(&s->rules[r], rows + i * L);
		h[i] = dna_hash(rows + i * L, L);
	}
	qsort(h, n, sizeof *h, u64cmp);
	for (size_t i = 1; i < n; i++)
		res->dups += h[i] == h[i - 1];
	free(h);
}

static void run_kiln(struct result *res, const struct kiln_spec *s, uint64_t **tg)
{
	struct kiln_plan *p = NULL;
	struct kiln_error e;
	double t0 = now();
	res->rc = kiln_plan_make(&p, s, NULL, &e);
	res->secs = now() - t0;
	if (res->rc) {
		snprintf(res->msg, sizeof res->msg, "%s: %s", e.where, e.msg);
		return;
	}
	size_t L = s->nlayers, n = 0;
	uint32_t *rows = malloc(p->nitems * L * sizeof *rows);
	for (size_t i = 0; i < p->nitems; i++)
		if (p->items[i].legendary < 0)
			memcpy(rows + n++ * L, p->items[i].traits, L * sizeof *rows);
	measure(res, s, tg, rows, n);
	free(rows);
	kiln_plan_free(p);
}

static void run_hashlips(struct result *res, const struct kiln_spec *s, uint64_t **tg)
{
	size_t L = s->nlayers;
	uint64_t G = s->size - s->nlegendaries, made = 0, fails = 0;
	size_t cap = 1;
	while (cap < 2 * G)
		cap *= 2;
	uint64_t *set = calloc(cap, sizeof *set);
	uint32_t *rows = malloc((G ? G : 1) * L * sizeof *rows);
	uint64_t tot[NL];
	struct kiln_rng r;
	double t0 = now();
	kiln_rng_seed(&r, s->seed, 99);
	for (size_t l = 0; l < L; l++) {
		tot[l] = 0;
		for (size_t v = 0; v < s->layers[l].ntraits; v++)
			tot[l] += tg[l][v];
	}
	while (made < G && fails < 10000) {
		uint32_t *row = rows + made * L;
		for (size_t l = 0; l < L; l++) {
			uint64_t x = kiln_rng_below(&r, tot[l]);
			uint32_t v = 0;
			while (x >= tg[l][v])
				x -= tg[l][v++];
			row[l] = v;
		}
		int bad = 0;
		for (size_t q = 0; q < s->nrules && !bad; q++)
			bad = broken(&s->rules[q], row);
		if (bad) {
			fails++;
			continue;
		}
		uint64_t h = dna_hash(row, L);
		size_t i = h & (cap - 1);
		while (set[i] && set[i] != h)
			i = (i + 1) & (cap - 1);
		if (set[i]) {
			fails++;
			continue;
		}
		set[i] = h;
		made++;
		fails = 0;
	}
	res->secs = now() - t0;
	res->rc = 0;
	measure(res, s, tg, rows, made);
	free(set);
	free(rows);
}

/* run fn in a child; its result through a pipe, its peak RSS from wait4 */
static void in_child(struct result *res, void (*fn)(struct result *, const struct kiln_spec *,
						    uint64_t **),
		     const struct kiln_spec *s, uint64_t **tg)
{
	int fd[2];
	struct rusage ru;
	int status;
	memset(res, 0, sizeof *res);
	if (pipe(fd)) {
		perror("pipe");
		exit(1);
	}
	pid_t pid = fork();
	if (pid == 0) {
		struct result r;
		memset(&r, 0, sizeof r);
		close(fd[0]);
		fn(&r, s, tg);
		if (write(fd[1], &r, sizeof r) != (ssize_t)sizeof r)
			_exit(1);
		_exit(0);
	}
	close(fd[1]);
	if (read(fd[0], res, sizeof *res) != (ssize_t)sizeof *res)
		res->rc = -1;
	close(fd[0]);
	if (wait4(pid, &status, 0, &ru) < 0)
		perror("wait4");
	res->rss_kb = ru.ru_maxrss;
}

static void row(const char *name, const struct result *r)
{
	if (r->rc) {
		printf("%-9s failed: %s\n", name, r->msg);
		return;
	}
	printf("%-9s %9.3f %10.1f %9llu %9llu %11llu %9llu\n", name, r->secs, r->rss_kb / 1024.0,
	       (unsigned long long)r->tokens, (unsigned long long)r->maxdev,
	       (unsigned long long)r->violations, (unsigned long long)r->dups);
}

int main(int argc, char **argv)
{
	uint64_t sizes[16] = {10000, 1000000};
	int nsizes = 2, fail = 0;
	if (argc > 1) {
		nsizes = 0;
		for (int i = 1; i < argc && nsizes < 16; i++)
			sizes[nsizes++] = strtoull(argv[i], NULL, 10);
	}
	for (int i = 0; i < nsizes; i++) {
		struct kiln_spec *s = bench_spec(sizes[i]);
		uint64_t **tg = NULL;
		struct kiln_error e;
		struct result k, h;
		if (kiln_plan_targets(s, &tg, &e)) {
			fprintf(stderr, "targets: %s: %s\n", e.where, e.msg);
			return 1;
		}
		printf("\nspec: %llu tokens (%zu legendaries), %zu layers, 80 values, %zu rules, "
		       "min_distance %u\n",
		       (unsigned long long)s->size, s->nlegendaries, s->nlayers, s->nrules,
		       s->min_distance);
		printf("%-9s %9s %10s %9s %9s %11s %9s\n", "method", "time_s", "peak_MiB", "tokens",
		       "max_dev", "violations", "dup_pairs");
		in_child(&k, run_kiln, s, tg);
		in_child(&h, run_hashlips, s, tg);
		row("kiln", &k);
		row("hashlips", &h);
		if (!k.rc && !h.rc)
			printf("ratio kiln/hashlips: time %.2fx, peak RSS %.2fx; deviation %llu vs "
			       "%llu, violations %llu vs %llu, duplicates %llu vs %llu, tokens %llu "
			       "vs %llu\n",
			       k.secs / (h.secs > 0 ? h.secs : 1e-9),
			       (double)k.rss_kb / (double)(h.rss_kb ? h.rss_kb : 1),
			       (unsigned long long)k.maxdev, (unsigned long long)h.maxdev,
			       (unsigned long long)k.violations, (unsigned long long)h.violations,
			       (unsigned long long)k.dups, (unsigned long long)h.dups,
			       (unsigned long long)k.tokens, (unsigned long long)h.tokens);
		int ok = !k.rc && k.maxdev == 0 && k.violations == 0 && k.dups == 0 &&
			 k.tokens == s->size - s->nlegendaries;
		if (sizes[i] <= 10000) {
			ok = ok && k.secs < 0.2;
			printf("target (10,000 tokens: < 0.2 s, 0 deviation): %s\n", ok ? "met" : "MISSED");
		} else if (sizes[i] >= 1000000) {
			ok = ok && k.secs < 15 && k.rss_kb < 2L * 1024 * 1024;
			printf("target (1,000,000 tokens: < 15 s, < 2 GiB, 0 deviation): %s\n",
			       ok ? "met" : "MISSED");
		}
		fail |= !ok;
		kiln_plan_targets_free(tg, s->nlayers);
		ts_free(s);
	}
	return fail;
}
