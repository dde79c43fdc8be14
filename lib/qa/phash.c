/* lib/phash.c: perceptual hashes as Python's imagehash computes them, pixel-content hashes,
 * and the multi-index near-duplicate search (kiln/phash.h).
 *
 * Bit-exactness with imagehash 4.3 + Pillow 9/10 + SciPy >= 1.4 is the point, so every step
 * copies the reference's arithmetic, not just its mathematics:
 *   - grey: Pillow's rgb2l (Convert.c, L24 fixed point); alpha is dropped as convert("L") does.
 *   - resize: Pillow's ImagingResample (Resample.c) for an 8-bit "L" image with LANCZOS:
 *     precompute_coeffs (double weights from sin(), normalised per output pixel, support 3 x
 *     scale when reducing), normalize_coeffs_8bpc (22-bit fixed point, round half away from
 *     zero), the horizontal pass first (only over the rows the vertical pass reads) then the
 *     vertical pass, each rounding with 1 << 21 and clip8. A pass whose size does not change is
 *     skipped, as Pillow does; imagehash never sets reducing_gap, so Image.reduce() never runs.
 *   - DCT: scipy.fftpack.dct is pocketfft's T_dcst23 (C++ header in scipy/fft/_pocketfft):
 *     pre-twiddle, a backward real FFT (rfftp: factors 2,4,4 for N=32, radb2/radb4 passes),
 *     post-twiddle, with twiddles from sincos_2pibyn. A textbook DCT agrees only to ~1e-13,
 *     which flips "> median" on flat or symmetric images where exact-zero coefficients sit on
 *     the median, so the same operations run in the same order here. The file is compiled
 *     with floating-point contraction off so no FMA changes a rounding.
 *   - median: numpy's, the mean of the 32nd and 33rd of the 64 sorted values.
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
 */
#include "qa/phash.h"
#include "util/alloc.h"
#include "util/sha.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "util/image.h"

/* xxHash (Debian libxxhash-dev) compiled in from its header: no library to link */
#define XXH_INLINE_ALL
#include <xxhash.h>

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#define WHERE "phash"
#define MAX_PIXELS ((int64_t)1 << 30) /* 32768 x 32768 */

/* ---------------------------------------------------------------------------------------
 * Pillow's LANCZOS resampling of an 8-bit single-band image (Resample.c).
 */

#define PRECISION_BITS (32 - 8 - 2)

static double sinc_filter(double x)
{
	if (x == 0.0)
		return 1.0;
	x = x * M_PI;
	return sin(x) / x;
}

static double lanczos_filter(double x)
{
	if (-3.0 <= x && x < 3.0)
		return sinc_filter(x) * sinc_filter(x / 3);
	return 0.0;
}

static inline uint8_t clip8(int in)
{
	int v = in >> PRECISION_BITS; /* arithmetic shift, as Pillow relies on */
	return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

/* precompute_coeffs + normalize_coeffs_8bpc for box (0, inSize) -> outSize. Returns ksize,
 * 0 when out of memory. */
static int precompute_coeffs(int inSize, int outSize, int **boundsp, int32_t **kkp)
{
	const double support0 = 3.0; /* LANCZOS */
	float in0 = 0.0f, in1 = (float)inSize;
	double support, scale, filterscale, center, ww, ss;
	int xx, x, ksize, xmin, xmax;
	int *bounds = NULL;
	double *kk = NULL, *k;
	int32_t *ik = NULL;

	filterscale = scale = (double)(in1 - in0) / outSize;
	if (filterscale < 1.0)
		filterscale = 1.0;
	support = support0 * filterscale;
	ksize = (int)ceil(support) * 2 + 1;

	kk = kiln_calloc((size_t)outSize * (size_t)ksize, sizeof *kk);
	ik = kiln_calloc((size_t)outSize * (size_t)ksize, sizeof *ik);
	bounds = kiln_calloc((size_t)outSize * 2, sizeof *bounds);
	if (!kk || !ik || !bounds) {
		free(kk);
		free(ik);
		free(bounds);
		return 0;
	}
	for (xx = 0; xx < outSize; xx++) {
		center = in0 + (xx + 0.5) * scale;
		ww = 0.0;
		ss = 1.0 / filterscale;
		xmin = (int)(center - support + 0.5);
		if (xmin < 0)
			xmin = 0;
		xmax = (int)(center + support + 0.5);
		if (xmax > inSize)
			xmax = inSize;
		xmax -= xmin;
		k = &kk[(size_t)xx * ksize];
		for (x = 0; x < xmax; x++) {
			double w = lanczos_filter((x + xmin - center + 0.5) * ss);
			k[x] = w;
			ww += w;
		}
		for (x = 0; x < xmax; x++)
			if (ww != 0.0)
				k[x] /= ww;
		for (; x < ksize; x++)
			k[x] = 0;
		bounds[xx * 2 + 0] = xmin;
		bounds[xx * 2 + 1] = xmax;
	}
	for (size_t i = 0; i < (size_t)outSize * (size_t)ksize; i++) {
		if (kk[i] < 0)
			ik[i] = (int32_t)(-0.5 + kk[i] * (1 << PRECISION_BITS));
		else
			ik[i] = (int32_t)(0.5 + kk[i] * (1 << PRECISION_BITS));
	}
	free(kk);
	*boundsp = bounds;
	*kkp = ik;
	return ksize;
}

/* The horizontal pass over rows of w bytes into rows of ow bytes. Each output's taps are
 * moved into a window of kn8 (ksize rounded up to 8) coefficients, zero-padded, that starts
 * inside the row, so the inner loop runs 8 taps at a time in a vector (GCC vector extensions); the integer
 * sums are the same as Pillow's in any order. bench/qa/qa_vs_decode.sh: the scalar loop
 * (193 taps per output when 1024 becomes 32) was 16% of kiln qa's CPU, this about a fifth. */
typedef uint8_t v8qu __attribute__((vector_size(8)));
typedef int32_t v8si __attribute__((vector_size(32)));

__attribute__((target_clones("avx2", "default")))
static void hpass_rows(const uint8_t *in, int w, int rows, int ow, const int *start,
		       const int32_t *kp, int kn8, uint8_t *out)
{
	for (int yy = 0; yy < rows; yy++) {
		const uint8_t *row = in + (size_t)yy * (size_t)w;
		for (int xx = 0; xx < ow; xx++) {
			const uint8_t *r = row + start[xx];
			const int32_t *k = kp + (size_t)xx * (size_t)kn8;
			v8si acc = {0};
			int ss0 = 1 << (PRECISION_BITS - 1);
			for (int x = 0; x < kn8; x += 8) {
				v8qu b;
				v8si c;
				memcpy(&b, r + x, sizeof b);
				memcpy(&c, k + x, sizeof c);
				acc += __builtin_convertvector(b, v8si) * c;
			}
			for (int j = 0; j < 8; j++)
				ss0 += acc[j];
			out[(size_t)yy * ow + xx] = clip8(ss0);
		}
	}
}

static int hpass(const uint8_t *in, int w, int rows, int ow, const int *bounds,
		 const int32_t *kk, int ksize, uint8_t *out)
{
	int kn8 = (ksize + 7) / 8 * 8;
	int *start = NULL;
	int32_t *kp = NULL;
	if (kn8 > w) { /* tiny input: Pillow's loop as it is */
		for (int yy = 0; yy < rows; yy++) {
			const uint8_t *row = in + (size_t)yy * (size_t)w;
			for (int xx = 0; xx < ow; xx++) {
				int xmin = bounds[xx * 2 + 0], xmax = bounds[xx * 2 + 1];
				const int32_t *k = &kk[(size_t)xx * ksize];
				int ss0 = 1 << (PRECISION_BITS - 1);
				for (int x = 0; x < xmax; x++)
					ss0 += row[x + xmin] * k[x];
				out[(size_t)yy * ow + xx] = clip8(ss0);
			}
		}
		return 0;
	}
	start = kiln_malloc((size_t)ow * sizeof *start);
	kp = kiln_calloc((size_t)ow * (size_t)kn8, sizeof *kp);
	if (!start || !kp) {
		free(start);
		free(kp);
		return KILN_E_NOMEM;
	}
	for (int xx = 0; xx < ow; xx++) {
		int xmin = bounds[xx * 2 + 0], xmax = bounds[xx * 2 + 1];
		int s = xmin + kn8 > w ? w - kn8 : xmin;
		start[xx] = s;
		for (int x = 0; x < xmax; x++)
			kp[(size_t)xx * kn8 + (size_t)(xmin - s + x)] = kk[(size_t)xx * ksize + x];
	}
	hpass_rows(in, w, rows, ow, start, kp, kn8, out);
	free(start);
	free(kp);
	return 0;
}

/* Coefficients of the last few (inSize, outSize) pairs, shared by all threads: a collection's
 * images have one size, and computing them (sin() for 193 x 32 taps, twice) for every image
 * was ~3 % of kiln qa's CPU. Entries are immutable once made and live as long as the process
 * (still reachable, never freed). Returns ksize (0: out of memory). */
struct coeffs {
	int in, out, ksize;
	int *bounds;
	int32_t *kk;
};
static struct coeffs coeff_cache[8];
static int coeff_n;
static pthread_mutex_t coeff_mu = PTHREAD_MUTEX_INITIALIZER;

static int coeffs_get(int inSize, int outSize, const int **bounds, const int32_t **kk)
{
	int ksize = 0, *b = NULL;
	int32_t *k = NULL;
	pthread_mutex_lock(&coeff_mu);
	for (int i = 0; i < coeff_n; i++)
		if (coeff_cache[i].in == inSize && coeff_cache[i].out == outSize) {
			*bounds = coeff_cache[i].bounds;
			*kk = coeff_cache[i].kk;
			ksize = coeff_cache[i].ksize;
			goto out;
		}
	if (!(ksize = precompute_coeffs(inSize, outSize, &b, &k)))
		goto out;
	*bounds = b;
	*kk = k;
	if (coeff_n < (int)(sizeof coeff_cache / sizeof *coeff_cache))
		coeff_cache[coeff_n++] = (struct coeffs){ inSize, outSize, ksize, b, k };
	else
		ksize = -ksize; /* not kept: the caller frees */
out:
	pthread_mutex_unlock(&coeff_mu);
	return ksize;
}

/* Image.resize((ow, oh), LANCZOS) of a grey image (rows w bytes apart) into out (ow*oh). */
static int resample_l(const uint8_t *in, int w, int h, int ow, int oh, uint8_t *out)
{
	int need_h = ow != w, need_v = oh != h;
	int ksize_v = 0, ksize_h = 0, ybox_first, ybox_last, rc = KILN_E_NOMEM;
	int *bounds_v = NULL;
	const int *cb_v = NULL, *bounds_h = NULL;
	const int32_t *kk_v = NULL, *kk_h = NULL;
	uint8_t *tmp = NULL;
	const uint8_t *src = in;
	int src_w = w;

	if (!need_h && !need_v) {
		memcpy(out, in, (size_t)w * (size_t)h);
		return 0;
	}
	ksize_v = coeffs_get(h, oh, &cb_v, &kk_v);
	ksize_h = need_h ? coeffs_get(w, ow, &bounds_h, &kk_h) : 1;
	if (!ksize_v || !ksize_h)
		goto out;
	/* bounds_v is shifted below: a copy */
	if (!(bounds_v = kiln_malloc((size_t)oh * 2 * sizeof *bounds_v)))
		goto out;
	memcpy(bounds_v, cb_v, (size_t)oh * 2 * sizeof *bounds_v);
	ybox_first = bounds_v[0];
	ybox_last = bounds_v[oh * 2 - 2] + bounds_v[oh * 2 - 1];

	if (need_h) {
		int rows = ybox_last - ybox_first;
		for (int i = 0; i < oh; i++)
			bounds_v[i * 2] -= ybox_first;
		tmp = kiln_malloc((size_t)ow * (size_t)(rows > 0 ? rows : 1));
		if (!tmp)
			goto out;
		if (hpass(in + (size_t)ybox_first * (size_t)w, w, rows, ow, bounds_h, kk_h,
			  abs(ksize_h), tmp))
			goto out;
		src = tmp;
		src_w = ow;
	}
	if (need_v) {
		for (int yy = 0; yy < oh; yy++) {
			const int32_t *k = &kk_v[(size_t)yy * abs(ksize_v)];
			int ymin = bounds_v[yy * 2 + 0], ymax = bounds_v[yy * 2 + 1];
			for (int xx = 0; xx < src_w; xx++) {
				int ss0 = 1 << (PRECISION_BITS - 1);
				for (int y = 0; y < ymax; y++)
					ss0 += src[(size_t)(y + ymin) * src_w + xx] * k[y];
				out[(size_t)yy * src_w + xx] = clip8(ss0);
			}
		}
	} else {
		memcpy(out, src, (size_t)ow * (size_t)oh);
	}
	rc = 0;
out:
	free(bounds_v);
	if (ksize_v < 0) {
		free((void *)cb_v);
		free((void *)kk_v);
	}
	if (ksize_h < 0) {
		free((void *)bounds_h);
		free((void *)kk_h);
	}
	free(tmp);
	return rc;
}

/* ---------------------------------------------------------------------------------------
 * pocketfft's DCT-II (T_dcst23, type 2, cosine, not ortho, fct 1) for N = 32.
 */

#define DCT_N 32

struct cpx {
	double r, i;
};

/* sincos_2pibyn<double>: exp(2 pi i idx / n) from two tables (v1 fine, v2 coarse). */
struct sincos {
	size_t n, mask, shift;
	struct cpx v1[64], v2[64]; /* n <= 128 here: mask + 1 <= 16, v2 <= 5 */
};

static struct cpx sc_calc(size_t x, size_t n, double ang)
{
	struct cpx c;
	x <<= 3;
	if (x < 4 * n) {
		if (x < 2 * n) {
			if (x < n) {
				c.r = cos((double)x * ang), c.i = sin((double)x * ang);
				return c;
			}
			c.r = sin((double)(2 * n - x) * ang), c.i = cos((double)(2 * n - x) * ang);
			return c;
		}
		x -= 2 * n;
		if (x < n) {
			c.r = -sin((double)x * ang), c.i = cos((double)x * ang);
			return c;
		}
		c.r = -cos((double)(2 * n - x) * ang), c.i = sin((double)(2 * n - x) * ang);
		return c;
	}
	x = 8 * n - x;
	if (x < 2 * n) {
		if (x < n) {
			c.r = cos((double)x * ang), c.i = -sin((double)x * ang);
			return c;
		}
		c.r = sin((double)(2 * n - x) * ang), c.i = -cos((double)(2 * n - x) * ang);
		return c;
	}
	x -= 2 * n;
	if (x < n) {
		c.r = -sin((double)x * ang), c.i = -cos((double)x * ang);
		return c;
	}
	c.r = -cos((double)(2 * n - x) * ang), c.i = -sin((double)(2 * n - x) * ang);
	return c;
}

static void sincos_init(struct sincos *s, size_t n)
{
	const long double pi = 3.141592653589793238462643383279502884197L;
	double ang = (double)(0.25L * pi / (long double)n);
	size_t nval = (n + 2) / 2, nv2;
	s->n = n;
	s->shift = 1;
	while (((size_t)1 << s->shift) * ((size_t)1 << s->shift) < nval)
		++s->shift;
	s->mask = ((size_t)1 << s->shift) - 1;
	s->v1[0].r = 1, s->v1[0].i = 0;
	for (size_t i = 1; i < s->mask + 1; ++i)
		s->v1[i] = sc_calc(i, n, ang);
	nv2 = (nval + s->mask) / (s->mask + 1);
	s->v2[0].r = 1, s->v2[0].i = 0;
	for (size_t i = 1; i < nv2; ++i)
		s->v2[i] = sc_calc(i * (s->mask + 1), n, ang);
}

static struct cpx sincos_at(const struct sincos *s, size_t idx)
{
	struct cpx x1, x2, c;
	if (2 * idx <= s->n) {
		x1 = s->v1[idx & s->mask], x2 = s->v2[idx >> s->shift];
		c.r = x1.r * x2.r - x1.i * x2.i;
		c.i = x1.r * x2.i + x1.i * x2.r;
		return c;
	}
	idx = s->n - idx;
	x1 = s->v1[idx & s->mask], x2 = s->v2[idx >> s->shift];
	c.r = x1.r * x2.r - x1.i * x2.i;
	c.i = -(x1.r * x2.i + x1.i * x2.r);
	return c;
}

/* The plan: rfftp(32) factors {2, 4, 4} with their twiddles, and the DCT twiddles. */
struct dct_plan {
	size_t nfct;
	size_t fct[3];
	double tw[3][64];
	double dtw[DCT_N];
};

static pthread_once_t dct_once = PTHREAD_ONCE_INIT;
static struct dct_plan dct_plan;

static void dct_plan_init(void)
{
	struct dct_plan *p = &dct_plan;
	struct sincos *sc = malloc(sizeof *sc); /* 2 KiB, once per process */
	size_t len = DCT_N, l1 = 1, nf = 0;
	struct sincos local;
	if (!sc)
		sc = &local;
	/* rfftp::factorize: 4s first, then one 2 swapped to the front */
	while (len % 4 == 0) {
		p->fct[nf++] = 4;
		len >>= 2;
	}
	if (len % 2 == 0) {
		size_t t;
		len >>= 1;
		p->fct[nf++] = 2;
		t = p->fct[0], p->fct[0] = p->fct[nf - 1], p->fct[nf - 1] = t;
	}
	p->nfct = nf;
	/* rfftp::comp_twiddle */
	sincos_init(sc, DCT_N);
	for (size_t k = 0; k < nf; ++k) {
		size_t ip = p->fct[k], ido = DCT_N / (l1 * ip);
		if (k < nf - 1)
			for (size_t j = 1; j < ip; ++j)
				for (size_t i = 1; i <= (ido - 1) / 2; ++i) {
					struct cpx c = sincos_at(sc, j * l1 * i);
					p->tw[k][(j - 1) * (ido - 1) + 2 * i - 2] = c.r;
					p->tw[k][(j - 1) * (ido - 1) + 2 * i - 1] = c.i;
				}
		l1 *= ip;
	}
	/* T_dcst23: twiddle[i] = sincos_2pibyn(4N)[i + 1].r */
	sincos_init(sc, 4 * DCT_N);
	for (size_t i = 0; i < DCT_N; ++i)
		p->dtw[i] = sincos_at(sc, i + 1).r;
	if (sc != &local)
		free(sc);
}

#define PM(a, b, c, d) do { double c_ = (c), d_ = (d); (a) = c_ + d_; (b) = c_ - d_; } while (0)
/* (a+ib) = conj(c+id) * (e+if) */
#define MULPM(a, b, c, d, e, f) do { double c_ = (c), d_ = (d), e_ = (e), f_ = (f); \
		(a) = c_ * e_ + d_ * f_; (b) = c_ * f_ - d_ * e_; } while (0)

static void radb2(size_t ido, size_t l1, const double *cc, double *ch, const double *wa)
{
#define CC(a, b, c) cc[(a) + ido * ((b) + 2 * (c))]
#define CH(a, b, c) ch[(a) + ido * ((b) + l1 * (c))]
#define WA(x, i) wa[(i) + (x) * (ido - 1)]
	for (size_t k = 0; k < l1; k++)
		PM(CH(0, k, 0), CH(0, k, 1), CC(0, 0, k), CC(ido - 1, 1, k));
	if ((ido & 1) == 0)
		for (size_t k = 0; k < l1; k++) {
			CH(ido - 1, k, 0) = 2 * CC(ido - 1, 0, k);
			CH(ido - 1, k, 1) = -2 * CC(0, 1, k);
		}
	if (ido <= 2)
		return;
	for (size_t k = 0; k < l1; ++k)
		for (size_t i = 2; i < ido; i += 2) {
			size_t ic = ido - i;
			double ti2, tr2;
			PM(CH(i - 1, k, 0), tr2, CC(i - 1, 0, k), CC(ic - 1, 1, k));
			PM(ti2, CH(i, k, 0), CC(i, 0, k), CC(ic, 1, k));
			MULPM(CH(i, k, 1), CH(i - 1, k, 1), WA(0, i - 2), WA(0, i - 1), ti2, tr2);
		}
#undef CC
}

static void radb4(size_t ido, size_t l1, const double *cc, double *ch, const double *wa)
{
	const double sqrt2 = (double)1.414213562373095048801688724209698L;
#define CC(a, b, c) cc[(a) + ido * ((b) + 4 * (c))]
	for (size_t k = 0; k < l1; k++) {
		double tr1, tr2, tr3, tr4;
		PM(tr2, tr1, CC(0, 0, k), CC(ido - 1, 3, k));
		tr3 = 2 * CC(ido - 1, 1, k);
		tr4 = 2 * CC(0, 2, k);
		PM(CH(0, k, 0), CH(0, k, 2), tr2, tr3);
		PM(CH(0, k, 3), CH(0, k, 1), tr1, tr4);
	}
	if ((ido & 1) == 0)
		for (size_t k = 0; k < l1; k++) {
			double tr1, tr2, ti1, ti2;
			PM(ti1, ti2, CC(0, 3, k), CC(0, 1, k));
			PM(tr2, tr1, CC(ido - 1, 0, k), CC(ido - 1, 2, k));
			CH(ido - 1, k, 0) = tr2 + tr2;
			CH(ido - 1, k, 1) = sqrt2 * (tr1 - ti1);
			CH(ido - 1, k, 2) = ti2 + ti2;
			CH(ido - 1, k, 3) = -sqrt2 * (tr1 + ti1);
		}
	if (ido <= 2)
		return;
	for (size_t k = 0; k < l1; ++k)
		for (size_t i = 2; i < ido; i += 2) {
			double ci2, ci3, ci4, cr2, cr3, cr4, ti1, ti2, ti3, ti4, tr1, tr2, tr3, tr4;
			size_t ic = ido - i;
			PM(tr2, tr1, CC(i - 1, 0, k), CC(ic - 1, 3, k));
			PM(ti1, ti2, CC(i, 0, k), CC(ic, 3, k));
			PM(tr4, ti3, CC(i, 2, k), CC(ic, 1, k));
			PM(tr3, ti4, CC(i - 1, 2, k), CC(ic - 1, 1, k));
			PM(CH(i - 1, k, 0), cr3, tr2, tr3);
			PM(CH(i, k, 0), ci3, ti2, ti3);
			PM(cr4, cr2, tr1, tr4);
			PM(ci2, ci4, ti1, ti4);
			MULPM(CH(i, k, 1), CH(i - 1, k, 1), WA(0, i - 2), WA(0, i - 1), ci2, cr2);
			MULPM(CH(i, k, 2), CH(i - 1, k, 2), WA(1, i - 2), WA(1, i - 1), ci3, cr3);
			MULPM(CH(i, k, 3), CH(i - 1, k, 3), WA(2, i - 2), WA(2, i - 1), ci4, cr4);
		}
#undef CC
#undef CH
#undef WA
}

/* rfftp::exec(c, 1.0, r2hc = false): halfcomplex -> real. */
static void rfft_backward(const struct dct_plan *p, double *c)
{
	double ch[DCT_N], *p1 = c, *p2 = ch, *t;
	size_t l1 = 1;
	for (size_t k = 0; k < p->nfct; k++) {
		size_t ip = p->fct[k], ido = DCT_N / (ip * l1);
		if (ip == 4)
			radb4(ido, l1, p1, p2, p->tw[k]);
		else
			radb2(ido, l1, p1, p2, p->tw[k]);
		t = p1, p1 = p2, p2 = t;
		l1 *= ip;
	}
	if (p1 != c)
		memcpy(c, p1, sizeof ch);
}

static void dct2(const struct dct_plan *p, double *c)
{
	const size_t N = DCT_N, NS2 = (N + 1) / 2;
	c[0] *= 2;
	if ((N & 1) == 0)
		c[N - 1] *= 2;
	for (size_t k = 1; k < N - 1; k += 2) { /* MPINPLACE(c[k+1], c[k]) */
		double t = c[k + 1];
		c[k + 1] -= c[k];
		c[k] = t + c[k];
	}
	rfft_backward(p, c);
	for (size_t k = 1, kc = N - 1; k < NS2; ++k, --kc) {
		double t1 = p->dtw[k - 1] * c[kc] + p->dtw[kc - 1] * c[k];
		double t2 = p->dtw[k - 1] * c[k] - p->dtw[kc - 1] * c[kc];
		c[k] = 0.5 * (t1 + t2);
		c[kc] = 0.5 * (t1 - t2);
	}
	if ((N & 1) == 0)
		c[NS2] *= p->dtw[NS2 - 1];
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static uint64_t phash_of(const uint8_t px[DCT_N * DCT_N])
{
	double a[DCT_N][DCT_N], col[DCT_N], low[64], sorted[64], med;
	uint64_t h = 0;
	pthread_once(&dct_once, dct_plan_init);
	for (int x = 0; x < DCT_N; x++) { /* axis 0 */
		for (int y = 0; y < DCT_N; y++)
			col[y] = px[y * DCT_N + x];
		dct2(&dct_plan, col);
		for (int y = 0; y < DCT_N; y++)
			a[y][x] = col[y];
	}
	for (int y = 0; y < 8; y++) { /* axis 1; only the rows the hash reads */
		dct2(&dct_plan, a[y]);
		for (int x = 0; x < 8; x++)
			low[y * 8 + x] = a[y][x];
	}
	memcpy(sorted, low, sizeof low);
	qsort(sorted, 64, sizeof *sorted, cmp_double);
	med = (sorted[31] + sorted[32]) / 2;
	for (int i = 0; i < 64; i++)
		h = (h << 1) | (low[i] > med);
	return h;
}

static uint64_t dhash_of(const uint8_t px[9 * 8])
{
	uint64_t h = 0;
	for (int y = 0; y < 8; y++)
		for (int x = 0; x < 8; x++)
			h = (h << 1) | (px[y * 9 + x + 1] > px[y * 9 + x]);
	return h;
}

static int check_args(const uint8_t *pixels, int width, int height, int bands, size_t *stride,
		      struct kiln_error *e)
{
	if (!pixels || width <= 0 || height <= 0 || bands < 1 || bands > 4 ||
	    (int64_t)width * height > MAX_PIXELS)
		return kiln_error_set(e, KILN_E_USAGE, WHERE,
				      "bad image: %dx%d pixels of %d bands (need 1..4 bands, at most "
				      "2^30 pixels)", width, height, bands);
	if (*stride == 0)
		*stride = (size_t)width * (size_t)bands;
	if (*stride < (size_t)width * (size_t)bands)
		return kiln_error_set(e, KILN_E_USAGE, WHERE, "row stride %zu is shorter than a row",
				      *stride);
	return 0;
}

/* Row conversions, one loop per band count so each vectorises (the dynamic cost model and
 * an AVX2 clone): as per-pixel switches they were a tenth of kiln qa's CPU. */
#define VEC_CLONES __attribute__((target_clones("avx2", "default"), \
				  optimize("tree-vectorize", "vect-cost-model=dynamic")))

/* Pillow's convert("L"): L24 fixed point; alpha dropped; grey images keep their first band. */
VEC_CLONES static void grey_row(const uint8_t *restrict s, uint8_t *restrict d, int width,
				int bands)
{
	if (bands == 1)
		memcpy(d, s, (size_t)width);
	else if (bands == 2)
		for (int x = 0; x < width; x++)
			d[x] = s[2 * x];
	else if (bands == 3)
		for (int x = 0; x < width; x++)
			d[x] = (uint8_t)(((uint32_t)s[3 * x] * 19595 + (uint32_t)s[3 * x + 1] * 38470 +
					  (uint32_t)s[3 * x + 2] * 7471 + 0x8000) >> 16);
	else
		for (int x = 0; x < width; x++)
			d[x] = (uint8_t)(((uint32_t)s[4 * x] * 19595 + (uint32_t)s[4 * x + 1] * 38470 +
					  (uint32_t)s[4 * x + 2] * 7471 + 0x8000) >> 16);
}

/* The canonical RGBA row of a 1..3-band row (grey spread to RGB, alpha 255 when absent). */
VEC_CLONES static void rgba_row(const uint8_t *restrict s, uint8_t *restrict d, int width,
				int bands)
{
	if (bands == 1)
		for (int x = 0; x < width; x++) {
			d[4 * x] = d[4 * x + 1] = d[4 * x + 2] = s[x];
			d[4 * x + 3] = 255;
		}
	else if (bands == 2)
		for (int x = 0; x < width; x++) {
			d[4 * x] = d[4 * x + 1] = d[4 * x + 2] = s[2 * x];
			d[4 * x + 3] = s[2 * x + 1];
		}
	else
		for (int x = 0; x < width; x++) {
			d[4 * x] = s[3 * x];
			d[4 * x + 1] = s[3 * x + 1];
			d[4 * x + 2] = s[3 * x + 2];
			d[4 * x + 3] = 255;
		}
}

int kiln_phash_from_pixels(const uint8_t *pixels, int width, int height, int bands,
			   size_t stride, uint64_t *dhash, uint64_t *phash, struct kiln_error *e)
{
	uint8_t *grey = NULL, small[DCT_N * DCT_N];
	int rc = check_args(pixels, width, height, bands, &stride, e);
	if (rc)
		return rc;
	grey = kiln_malloc((size_t)width * (size_t)height);
	if (!grey)
		return kiln_error_set(e, KILN_E_NOMEM, WHERE, "out of memory for a %dx%d image",
				      width, height);
	for (int y = 0; y < height; y++)
		grey_row(pixels + (size_t)y * stride, grey + (size_t)y * width, width, bands);
	if (dhash) {
		if (resample_l(grey, width, height, 9, 8, small)) {
			rc = kiln_error_set(e, KILN_E_NOMEM, WHERE, "out of memory");
			goto out;
		}
		*dhash = dhash_of(small);
	}
	if (phash) {
		if (resample_l(grey, width, height, DCT_N, DCT_N, small)) {
			rc = kiln_error_set(e, KILN_E_NOMEM, WHERE, "out of memory");
			goto out;
		}
		*phash = phash_of(small);
	}
out:
	free(grey);
	return rc;
}

/* The canonical form (kiln/phash.h) fed to a hash's update function a row at a time. */
static int canonical_rows(const uint8_t *pixels, int width, int height, int bands, size_t stride,
			  void (*update)(void *, const void *, size_t), void *h, struct kiln_error *e)
{
	uint8_t head[12] = {'K', 'P', 'X', '1'}, *row = NULL;
	int rc = check_args(pixels, width, height, bands, &stride, e);
	if (rc)
		return rc;
	if (bands != 4 && !(row = kiln_malloc((size_t)width * 4)))
		return kiln_error_set(e, KILN_E_NOMEM, WHERE, "out of memory");
	for (int i = 0; i < 4; i++) {
		head[4 + i] = (uint8_t)((uint32_t)width >> (24 - 8 * i));
		head[8 + i] = (uint8_t)((uint32_t)height >> (24 - 8 * i));
	}
	update(h, head, sizeof head);
	for (int y = 0; y < height; y++) {
		const uint8_t *s = pixels + (size_t)y * stride;
		if (bands == 4) { /* already canonical: no copy */
			update(h, s, (size_t)width * 4);
			continue;
		}
		rgba_row(s, row, width, bands);
		update(h, row, (size_t)width * 4);
	}
	free(row);
	return 0;
}

static void sha_update(void *h, const void *p, size_t n)
{
	kiln_sha256_update(h, p, n);
}

int kiln_pixel_sha256(const uint8_t *pixels, int width, int height, int bands, size_t stride,
		      char hex[65], struct kiln_error *e)
{
	struct kiln_sha256 h;
	int rc;
	if (kiln_sha256_init(&h))
		return kiln_error_set(e, KILN_E_NOMEM, WHERE, "out of memory");
	if ((rc = canonical_rows(pixels, width, height, bands, stride, sha_update, &h, e))) {
		kiln_sha256_abort(&h);
		return rc;
	}
	kiln_sha256_final(&h, NULL, hex);
	return 0;
}

/* The RGB row of a 1, 2 or 4-band row (grey spread, alpha dropped). */
VEC_CLONES static void rgb_row(const uint8_t *restrict s, uint8_t *restrict d, int width,
			       int bands)
{
	if (bands == 1 || bands == 2)
		for (int x = 0; x < width; x++)
			d[3 * x] = d[3 * x + 1] = d[3 * x + 2] = s[bands * x];
	else
		for (int x = 0; x < width; x++) {
			d[3 * x] = s[4 * x];
			d[3 * x + 1] = s[4 * x + 1];
			d[3 * x + 2] = s[4 * x + 2];
		}
}

/* 1 when every alpha byte (the last band of 2 or 4) is 255 */
VEC_CLONES static int row_opaque(const uint8_t *s, int width, int bands)
{
	uint8_t all = 255;
	for (int x = 0; x < width; x++)
		all &= s[bands * x + bands - 1];
	return all == 255;
}

/* Its own canonical form, cheaper than kiln_pixel_sha256's: an image opaque everywhere is
 * hashed as RGB rows ("KPX2", width, height, 'C'), RGB input straight from the decoder with
 * no copy; any other as RGBA rows ('A'). The same pixels give the same form whatever the
 * input's bands, so the key groups exactly what the SHA-256 groups. Widening every row to
 * RGBA and hashing 4 bytes a pixel was ~12 % of kiln qa's CPU (bench/qa/qa_vs_decode.sh). */
int kiln_pixel_key(const uint8_t *pixels, int width, int height, int bands, size_t stride,
		   char hex[33], struct kiln_error *e)
{
	uint8_t head[13] = {'K', 'P', 'X', '2'}, *row = NULL;
	XXH3_state_t st;
	XXH128_hash_t d;
	int rc = check_args(pixels, width, height, bands, &stride, e), opaque = 1;
	if (rc)
		return rc;
	if (bands == 2 || bands == 4)
		for (int y = 0; y < height && opaque; y++)
			opaque = row_opaque(pixels + (size_t)y * stride, width, bands);
	if (!(bands == 3 || (bands == 4 && !opaque)) &&
	    !(row = kiln_malloc((size_t)width * 4)))
		return kiln_error_set(e, KILN_E_NOMEM, WHERE, "out of memory");
	for (int i = 0; i < 4; i++) {
		head[4 + i] = (uint8_t)((uint32_t)width >> (24 - 8 * i));
		head[8 + i] = (uint8_t)((uint32_t)height >> (24 - 8 * i));
	}
	head[12] = opaque ? 'C' : 'A';
	(void)XXH3_128bits_reset(&st);
	(void)XXH3_128bits_update(&st, head, sizeof head);
	for (int y = 0; y < height; y++) {
		const uint8_t *s = pixels + (size_t)y * stride;
		size_t n = (size_t)width * (opaque ? 3 : 4);
		if (bands == 3 || (bands == 4 && !opaque)) {
			(void)XXH3_128bits_update(&st, s, n);
			continue;
		}
		if (opaque)
			rgb_row(s, row, width, bands);
		else
			rgba_row(s, row, width, bands);
		(void)XXH3_128bits_update(&st, row, n);
	}
	free(row);
	d = XXH3_128bits_digest(&st);
	snprintf(hex, 33, "%016llx%016llx", (unsigned long long)d.high64,
		 (unsigned long long)d.low64);
	return 0;
}

void kiln_phash_hex(uint64_t h, char out[17])
{
	static const char d[] = "0123456789abcdef";
	for (int i = 0; i < 16; i++)
		out[i] = d[(h >> (60 - 4 * i)) & 15];
	out[16] = 0;
}

int kiln_phash_parse_hex(const char *s, uint64_t *h)
{
	uint64_t v = 0;
	for (int i = 0; i < 16; i++) {
		char c = s[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
			c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (d < 0)
			return KILN_E_USAGE;
		v = v << 4 | (uint64_t)d;
	}
	if (s[16])
		return KILN_E_USAGE;
	*h = v;
	return 0;
}

/* ---------------------------------------------------------------------------------------
 * Decoding with libvips.
 */

int kiln_phash_image(const char *path, struct kiln_phash_info *out, struct kiln_error *e)
{
	struct kiln_image8 im;
	int rc;
	memset(out, 0, sizeof *out);
	/* one decode, shared with kiln qa: lib/util/image.c */
	if ((rc = kiln_image_decode8(path, &im, e)))
		return rc;
	out->bands = im.orig_bands;
	out->width = im.width;
	out->height = im.height;
	rc = kiln_phash_from_pixels(im.pixels, im.width, im.height, im.bands, 0, &out->dhash,
				    &out->phash, e);
	if (!rc)
		rc = kiln_pixel_sha256(im.pixels, im.width, im.height, im.bands, 0, out->pixel_sha256,
				       e);
	if (rc && e && !e->where[0])
		snprintf(e->where, sizeof e->where, "%s", path);
	kiln_image8_release(&im);
	return rc;
}

int kiln_phash_file(const char *path, uint64_t *dhash, uint64_t *phash, struct kiln_error *e)
{
	struct kiln_phash_info info;
	int rc = kiln_phash_image(path, &info, e);
	if (rc)
		return rc;
	if (dhash)
		*dhash = info.dhash;
	if (phash)
		*phash = info.phash;
	return 0;
}

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
