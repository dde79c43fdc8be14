/* qa/neardup.c: every pair of 64-bit hashes within a Hamming threshold, without comparing
 * every pair (kiln_neardup_pairs in qa/phash.h).
 *
 * Near duplicates (multi-index hashing, Norouzi et al.): m substrings with radii r_k and
 * sum(r_k + 1) > t; a pair within t is within r_k on some substring k. Per substring the
 * hashes are counting-sorted by the substring's value into 2^b buckets (b <= 22 so the offset
 * table stays <= 16 MiB); each nonempty bucket u meets the buckets u ^ mask for every mask of
 * weight 1..r_k whose top bit is clear in u (each unordered bucket pair once), plus itself.
 * A candidate is verified on all 64 bits, and kept only at the first substring that finds it
 * (no earlier substring within its radius), so no pair is reported twice. Blocks of buckets
 * are dealt round-robin to threads; pairs are sorted at the end, so the output does not
 * depend on the thread count. For N = 10^6, t = 8: m = 3 (21/21/22 bits), r = 2, 231 masks
 * per substring, ~1e8 pairs of nonempty buckets and ~1.7e8 candidate pairs. Probing runs a
 * 64-bucket word at a time (occupancy bitmaps, see mih_work_body), blocks keep the two bucket
 * ranges in cache, and a bucket pair with one hash each is compared straight from fst[] (78%
 * of nonempty buckets hold one hash).
 * Memory: 4 + 8 bytes per bucket and 12 bytes per hash (~40 MB at N = 10^6).
 * Invariants: the pairs come sorted (i < j, by i then j) whatever the thread count; a pair is
 * reported once. kiln_neardup_pairs_brute is the O(n^2) oracle for the tests.
 */
#include "qa/phash.h"
#include "util/alloc.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WHERE "neardup"

/* ---------------------------------------------------------------------------------------
 * Near duplicates: multi-index hashing.
 */

#define MAX_SUBS 16
#define MAX_TABLE_BITS 22
#define DEFAULT_MAX_PAIRS 10000000u
#define MAX_THREADS 16

struct sub {
	int shift, bits, radius;
	uint64_t mask; /* (1 << bits) - 1 */
};

struct pairvec {
	struct kiln_neardup_pair *p;
	size_t n, cap;
	int oom, over;
};

/* Cache blocking: buckets are cut into blocks of 2^block_bits keys (about 128 KiB of offsets
 * and hashes). Masks are grouped by their bits above the block ("high part"): all masks of a
 * group send a block's buckets to one partner block, so each worker walks its blocks and, per
 * block, runs every group while the two blocks are in cache. Without this, each of the 231
 * masks streams the whole 20 MB table (about 3x slower). */
struct mgroup {
	uint32_t high;
	size_t start, end;
};

struct mih_shared {
	const struct sub *subs;
	int k;                  /* current substring */
	int t;                  /* threshold */
	const uint32_t *off;    /* 2^bits + 1 bucket offsets */
	const uint64_t *occ;    /* 2^bits bits: bucket nonempty */
	const uint64_t *multi;  /* 2^bits bits: bucket holds two hashes or more */
	const uint64_t *fst;    /* 2^bits: the first hash of each nonempty bucket */
	const uint64_t *sh;     /* hashes in bucket order */
	const uint32_t *sidx;   /* their input indices */
	const uint32_t *masks;  /* by (high part, value); 0 = the bucket itself */
	size_t nmasks;
	const struct mgroup *groups; /* runs of masks with the same high part */
	size_t ngroups;
	uint32_t block_bits;    /* a block = 2^block_bits buckets, sized to stay in cache */
	size_t nblocks;
	size_t max_pairs;
	size_t total;           /* atomic: pairs found by all threads */
	int nthreads;
};

struct mih_worker {
	struct mih_shared *s;
	int tid;
	struct pairvec out;
};

static int pair_push(struct pairvec *v, uint32_t a, uint32_t b, uint32_t d, struct mih_shared *s)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 1024;
		struct kiln_neardup_pair *p = kiln_reallocarray(v->p, cap, sizeof *p);
		if (!p) {
			v->oom = 1;
			return -1;
		}
		v->p = p, v->cap = cap;
	}
	if (s && __atomic_add_fetch(&s->total, 1, __ATOMIC_RELAXED) > s->max_pairs) {
		v->over = 1;
		return -1;
	}
	v->p[v->n].i = a < b ? a : b;
	v->p[v->n].j = a < b ? b : a;
	v->p[v->n].dist = d;
	v->n++;
	return 0;
}

/* A pair within the threshold is kept at the first substring on which it is within radius. */
static inline __attribute__((always_inline)) int found_earlier(const struct sub *subs, int k,
								uint64_t x)
{
	for (int q = 0; q < k; q++)
		if (__builtin_popcountll((x >> subs[q].shift) & subs[q].mask) <= subs[q].radius)
			return 1;
	return 0;
}

/* The worker body is compiled twice: with the POPCNT instruction (every x86-64 CPU since
 * 2008; chosen at run time) and without, where __builtin_popcountll is a libgcc call that
 * costs a fifth of the run. */
/* Bit positions p in a 64-bit word with bit j of p clear. */
static const uint64_t LOWHALF[6] = {
	0x5555555555555555ull, 0x3333333333333333ull, 0x0F0F0F0F0F0F0F0Full,
	0x00FF00FF00FF00FFull, 0x0000FFFF0000FFFFull, 0x00000000FFFFFFFFull,
};

/* Bit p of the result = bit p ^ x6 of w (x6 < 64): the occupancy of the partner buckets. */
static inline __attribute__((always_inline)) uint64_t xor_positions(uint64_t w, uint32_t x6)
{
	for (int j = 0; j < 6; j++)
		if (x6 >> j & 1) {
			unsigned sft = 1u << j;
			w = ((w >> sft) & LOWHALF[j]) | ((w & LOWHALF[j]) << sft);
		}
	return w;
}

/* Verify every item of bucket u against every item of bucket v (u == v: pairs within it). */
static inline __attribute__((always_inline)) int meet(struct mih_worker *w, uint32_t u, uint32_t v)
{
	struct mih_shared *s = w->s;
	const uint32_t *off = s->off;
	const uint64_t *sh = s->sh;
	uint32_t a0 = off[u], a1 = off[u + 1], b0 = off[v], b1 = off[v + 1];
	for (uint32_t a = a0; a < a1; a++) {
		uint64_t ha = sh[a];
		for (uint32_t b = u == v ? a + 1 : b0; b < b1; b++) {
			uint64_t x = ha ^ sh[b];
			int d = __builtin_popcountll(x);
			if (d > s->t || (s->k && found_earlier(s->subs, s->k, x)))
				continue;
			if (pair_push(&w->out, s->sidx[a], s->sidx[b], (uint32_t)d, s))
				return -1;
		}
	}
	return 0;
}

/* The worker body is compiled twice: with the POPCNT instruction (every x86-64 CPU since
 * 2008; chosen at run time) and without, where __builtin_popcountll is a libgcc call that
 * costs a fifth of the run.
 * Probing works on whole occupancy words: for mask m, the buckets u of word i meet the
 * buckets u ^ m, whose occupancy is word i ^ (m >> 6) with bit positions XORed by m & 63;
 * AND-ing the two gives every nonempty pair at once, without a branch per bucket. */
static inline __attribute__((always_inline)) void *mih_work_body(void *arg)
{
	struct mih_worker *w = arg;
	struct mih_shared *s = w->s;
	const uint64_t *occ = s->occ;
	const uint32_t kb = s->block_bits, words = (uint32_t)1 << (kb - 6);
	for (size_t blk = (size_t)w->tid; blk < s->nblocks; blk += (size_t)s->nthreads) {
		uint32_t base = (uint32_t)blk << kb, w0 = base >> 6;
		for (size_t g = 0; g < s->ngroups; g++) {
			uint32_t mh = s->groups[g].high;
			/* masks reaching another block: that block's pairs with this one are done
			 * from the lower of the two */
			if (mh && (base & ((uint32_t)1 << (31 - __builtin_clz(mh)))))
				continue;
			for (size_t mi = s->groups[g].start; mi < s->groups[g].end; mi++) {
				uint32_t m = s->masks[mi], m6 = m & 63, mw = m >> 6;
				uint32_t top = m ? 31 - (uint32_t)__builtin_clz(m) : 0;
				uint64_t allow = m && top < 6 ? LOWHALF[top] : ~(uint64_t)0;
				for (uint32_t wi = w0; wi < w0 + words; wi++) {
					uint64_t hits;
					if (top >= 6 && (wi >> (top - 6) & 1))
						continue; /* u ^ m < u: met from the other side */
					hits = occ[wi] & allow;
					if (m)
						hits &= xor_positions(occ[wi ^ mw], m6);
					if (!m) {
						hits = s->multi[wi];
					} else {
						/* both buckets hold one hash: compare the two directly */
						uint64_t one = hits & ~s->multi[wi] &
							       ~xor_positions(s->multi[wi ^ mw], m6);
						hits &= ~one;
						while (one) {
							uint32_t u = wi * 64 + (uint32_t)__builtin_ctzll(one);
							uint64_t x = s->fst[u] ^ s->fst[u ^ m];
							one &= one - 1;
							if (__builtin_popcountll(x) <= s->t && meet(w, u, u ^ m))
								return NULL;
						}
					}
					while (hits) {
						uint32_t u = wi * 64 + (uint32_t)__builtin_ctzll(hits);
						hits &= hits - 1;
						if (meet(w, u, u ^ m))
							return NULL;
					}
				}
			}
		}
	}
	return NULL;
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("popcnt"))) static void *mih_work_popcnt(void *arg)
{
	return mih_work_body(arg);
}
#endif

static void *mih_work_plain(void *arg)
{
	return mih_work_body(arg);
}

static void *(*mih_pick_worker(void))(void *)
{
#if defined(__x86_64__) && defined(__GNUC__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("popcnt"))
		return mih_work_popcnt;
#endif
	return mih_work_plain;
}

static int cmp_pair(const void *a, const void *b)
{
	const struct kiln_neardup_pair *x = a, *y = b;
	if (x->i != y->i)
		return x->i < y->i ? -1 : 1;
	return (x->j > y->j) - (x->j < y->j);
}

/* Masks by (high part above the block bits, value). qsort has no context argument: the
 * block bits are passed in a thread-local. */
static _Thread_local uint32_t mask_sort_kb;

static int cmp_mask(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	uint32_t hx = x >> mask_sort_kb, hy = y >> mask_sort_kb;
	if (hx != hy)
		return hx < hy ? -1 : 1;
	return (x > y) - (x < y);
}

/* All masks over `bits` bits of weight 1..r, in increasing weight then value. */
static int make_masks(int bits, int r, uint32_t **out, size_t *n)
{
	size_t cap = 1, cnt = 1;
	uint32_t *m;
	for (int w = 1; w <= r; w++) { /* sum of C(bits, w) */
		size_t cw = 1;
		for (int i = 0; i < w; i++)
			cw = cw * (size_t)(bits - i) / (size_t)(i + 1);
		cap += cw;
	}
	m = kiln_calloc(cap, sizeof *m);
	if (!m)
		return KILN_E_NOMEM;
	m[0] = 0;
	for (int w = 1; w <= r; w++) {
		/* Gosper's hack: next number with the same popcount */
		uint32_t v = ((uint32_t)1 << w) - 1, lim = (uint32_t)1 << bits;
		while (v < lim) {
			uint32_t c, rr;
			m[cnt++] = v;
			c = v & -v;
			rr = v + c;
			v = (((rr ^ v) >> 2) / c) | rr;
			if (rr == 0)
				break;
		}
	}
	*out = m;
	*n = cnt;
	return 0;
}

static int ceil_log2(size_t n)
{
	int b = 0;
	while (((size_t)1 << b) < n && b < 63)
		b++;
	return b;
}

static int plan_subs(size_t n, int t, struct sub *subs)
{
	int target = ceil_log2(n) + 1, m, need, shift = 0;
	if (target < 8)
		target = 8;
	m = 64 / target;
	if (m < 3)
		m = 3;
	if (m > MAX_SUBS)
		m = MAX_SUBS;
	if (m > t + 1)
		m = t + 1;
	need = t - m + 1; /* sum of radii */
	for (int k = 0; k < m; k++) {
		int bits = 64 / m + (k >= m - 64 % m ? 1 : 0);
		subs[k].shift = shift;
		subs[k].bits = bits;
		subs[k].mask = bits >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << bits) - 1;
		subs[k].radius = need / m + (k < need % m ? 1 : 0);
		shift += bits;
	}
	return m;
}

struct keyed {
	uint64_t key;
	uint32_t idx;
};

static int cmp_keyed(const void *a, const void *b)
{
	const struct keyed *x = a, *y = b;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return (x->idx > y->idx) - (x->idx < y->idx);
}

/* Radius 0 on a wide substring (t <= 1: m <= 2 substrings of 32 or 64 bits): sort by key and
 * pair up equal runs. */
static int exact_sub(const uint64_t *h, size_t n, const struct sub *subs, int k, int t,
		     struct pairvec *v, size_t max_pairs)
{
	struct keyed *a = kiln_calloc(n ? n : 1, sizeof *a);
	if (!a)
		return KILN_E_NOMEM;
	for (size_t i = 0; i < n; i++)
		a[i].key = (h[i] >> subs[k].shift) & subs[k].mask, a[i].idx = (uint32_t)i;
	qsort(a, n, sizeof *a, cmp_keyed);
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n && a[j].key == a[i].key; j++) {
			uint64_t x = h[a[i].idx] ^ h[a[j].idx];
			int d = __builtin_popcountll(x);
			if (d > t || found_earlier(subs, k, x))
				continue;
			if (v->n >= max_pairs) {
				v->over = 1;
				free(a);
				return KILN_E_FAILED;
			}
			if (pair_push(v, a[i].idx, a[j].idx, (uint32_t)d, NULL)) {
				free(a);
				return KILN_E_NOMEM;
			}
		}
	free(a);
	return 0;
}

int kiln_neardup_pairs(const uint64_t *hashes, size_t n, const struct kiln_neardup_opts *opts,
		       struct kiln_neardup_pair **pairs, size_t *npairs, struct kiln_error *e)
{
	struct sub subs[MAX_SUBS];
	struct mih_shared sh;
	struct mih_worker wk[MAX_THREADS];
	pthread_t th[MAX_THREADS];
	struct pairvec all = {0};
	uint32_t *off = NULL, *sidx = NULL, *masks = NULL;
	uint64_t *shs = NULL, *occ = NULL, *multi = NULL, *fst = NULL;
	struct mgroup *groups = NULL;
	size_t nbmax = 0;
	void *(*work)(void *) = mih_pick_worker();
	int t = opts ? opts->threshold : -1, m, nthreads, rc = 0;
	size_t max_pairs;

	*pairs = NULL;
	*npairs = 0;
	memset(wk, 0, sizeof wk);
	if (!opts || t < 0 || t > 32)
		return kiln_error_set(e, KILN_E_USAGE, WHERE, "near-duplicate threshold %d is not in "
				      "0..32", t);
	if (n >= UINT32_MAX || (n && !hashes))
		return kiln_error_set(e, KILN_E_USAGE, WHERE, "cannot index %zu hashes", n);
	if (n < 2)
		return 0;
	max_pairs = opts->max_pairs ? opts->max_pairs : DEFAULT_MAX_PAIRS;
	nthreads = opts->threads;
	if (nthreads <= 0) {
		long c = sysconf(_SC_NPROCESSORS_ONLN);
		nthreads = c > 0 ? (int)c : 1;
	}
	if (nthreads > MAX_THREADS)
		nthreads = MAX_THREADS;
	if (n < 4096)
		nthreads = 1;
	m = plan_subs(n, t, subs);

	memset(&sh, 0, sizeof sh);
	sh.subs = subs;
	sh.t = t;
	sh.max_pairs = max_pairs;
	sh.nthreads = nthreads;
	for (int i = 0; i < nthreads; i++)
		wk[i].s = &sh, wk[i].tid = i;

	for (int k = 0; k < m; k++) {
		size_t nb, ng = 0;
		int started = 0;
		uint32_t kb;
		double bpb;
		if (subs[k].bits > MAX_TABLE_BITS) { /* only when t <= 1, radius 0 */
			rc = exact_sub(hashes, n, subs, k, t, &wk[0].out, max_pairs);
			if (rc == KILN_E_NOMEM)
				goto nomem;
			if (rc)
				goto over;
			continue;
		}
		nb = (size_t)1 << subs[k].bits;
		free(masks), free(groups);
		masks = NULL, groups = NULL;
		if (nb > nbmax) { /* the largest table so far; substrings differ by a bit at most */
			free(off), free(occ), free(multi), free(fst);
			off = kiln_malloc((nb + 2) * sizeof *off);
			occ = kiln_malloc((nb / 64 + 1) * sizeof *occ);
			multi = kiln_malloc((nb / 64 + 1) * sizeof *multi);
			fst = kiln_malloc(nb * sizeof *fst);
			nbmax = nb;
		}
		if (!shs)
			shs = kiln_calloc(n, sizeof *shs);
		if (!sidx)
			sidx = kiln_calloc(n, sizeof *sidx);
		if (!off || !occ || !multi || !fst || !shs || !sidx)
			goto nomem;
		if (make_masks(subs[k].bits, subs[k].radius, &masks, &sh.nmasks))
			goto nomem;
		/* blocks of about 128 KiB: 4 bytes of offset + 8 bytes a hash per bucket */
		bpb = 4.0 + 8.0 * (double)n / (double)nb;
		for (kb = 7; kb < (uint32_t)subs[k].bits && ((double)((size_t)2 << kb)) * bpb <= 131072.0;)
			kb++;
		sh.block_bits = kb;
		sh.nblocks = nb >> kb;
		mask_sort_kb = kb;
		qsort(masks, sh.nmasks, sizeof *masks, cmp_mask);
		groups = kiln_calloc(sh.nmasks, sizeof *groups);
		if (!groups)
			goto nomem;
		for (size_t i = 0; i < sh.nmasks; i++) {
			uint32_t high = masks[i] >> kb << kb;
			if (!ng || groups[ng - 1].high != high) {
				groups[ng].high = high;
				groups[ng].start = i;
				ng++;
			}
			groups[ng - 1].end = i + 1;
		}
		sh.groups = groups;
		sh.ngroups = ng;
		/* counting sort by the substring's value, input order within a bucket: counts at
		 * off[key + 2], starts at off[key + 1], and after the scatter off[key] = start */
		memset(off, 0, (nb + 2) * sizeof *off);
		memset(occ, 0, (nb / 64 + 1) * sizeof *occ);
		memset(multi, 0, (nb / 64 + 1) * sizeof *multi);
		for (size_t i = 0; i < n; i++)
			off[((hashes[i] >> subs[k].shift) & subs[k].mask) + 2]++;
		for (size_t b = 0; b < nb; b++) {
			uint32_t c = off[b + 2];
			if (c)
				occ[b >> 6] |= (uint64_t)1 << (b & 63);
			if (c > 1)
				multi[b >> 6] |= (uint64_t)1 << (b & 63);
			off[b + 2] += off[b + 1];
		}
		for (size_t i = 0; i < n; i++) {
			uint64_t key = (hashes[i] >> subs[k].shift) & subs[k].mask;
			uint32_t at = off[key + 1]++;
			shs[at] = hashes[i];
			sidx[at] = (uint32_t)i;
		}
		for (size_t b = 0; b < nb; b++)
			if (off[b + 1] > off[b])
				fst[b] = shs[off[b]];
		sh.k = k;
		sh.off = off, sh.occ = occ, sh.multi = multi, sh.fst = fst, sh.sh = shs, sh.sidx = sidx;
		sh.masks = masks;
		for (int i = 1; i < nthreads; i++) {
			if (pthread_create(&th[i], NULL, work, &wk[i]))
				break;
			started = i;
		}
		/* threads that could not start: do their share here */
		for (int i = started + 1; i < nthreads; i++)
			work(&wk[i]);
		work(&wk[0]);
		for (int i = 1; i <= started; i++)
			pthread_join(th[i], NULL);
		for (int i = 0; i < nthreads; i++) {
			if (wk[i].out.oom)
				goto nomem;
			if (wk[i].out.over)
				goto over;
		}
	}
	/* merge and sort */
	for (int i = 0; i < nthreads; i++)
		all.n += wk[i].out.n;
	if (all.n) {
		size_t at = 0;
		all.p = kiln_calloc(all.n, sizeof *all.p);
		if (!all.p)
			goto nomem;
		for (int i = 0; i < nthreads; i++) {
			if (wk[i].out.n)
				memcpy(all.p + at, wk[i].out.p, wk[i].out.n * sizeof *all.p);
			at += wk[i].out.n;
		}
		qsort(all.p, all.n, sizeof *all.p, cmp_pair);
	}
	*pairs = all.p;
	*npairs = all.n;
	all.p = NULL;
	goto out;
nomem:
	rc = kiln_error_set(e, KILN_E_NOMEM, WHERE, "out of memory indexing %zu hashes", n);
	goto out;
over:
	rc = kiln_error_set(e, KILN_E_FAILED, WHERE, "more than %zu image pairs are within distance "
			    "%d of each other; group exact duplicates first or lower the threshold",
			    max_pairs, t);
out:
	for (int i = 0; i < nthreads; i++)
		free(wk[i].out.p);
	free(all.p);
	free(off);
	free(occ);
	free(multi);
	free(fst);
	free(shs);
	free(sidx);
	free(groups);
	free(masks);
	return rc;
}

int kiln_neardup_pairs_brute(const uint64_t *hashes, size_t n, int threshold,
			     size_t max_pairs, struct kiln_neardup_pair **pairs, size_t *npairs,
			     struct kiln_error *e)
{
	struct pairvec v = {0};
	*pairs = NULL;
	*npairs = 0;
	if (threshold < 0 || threshold > 64 || n >= UINT32_MAX)
		return kiln_error_set(e, KILN_E_USAGE, WHERE, "bad threshold %d or size %zu",
				      threshold, n);
	if (!max_pairs)
		max_pairs = DEFAULT_MAX_PAIRS;
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++) {
			int d = __builtin_popcountll(hashes[i] ^ hashes[j]);
			if (d > threshold)
				continue;
			if (v.n >= max_pairs) {
				free(v.p);
				return kiln_error_set(e, KILN_E_FAILED, WHERE, "more than %zu pairs",
						      max_pairs);
			}
			if (pair_push(&v, (uint32_t)i, (uint32_t)j, (uint32_t)d, NULL)) {
				free(v.p);
				return kiln_error_set(e, KILN_E_NOMEM, WHERE, "out of memory");
			}
		}
	*pairs = v.p;
	*npairs = v.n;
	return 0;
}
