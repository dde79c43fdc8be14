/* qa/phash.c: perceptual hashes as Python's imagehash computes them, and pixel-content hashes
 * (qa/phash.h). The LANCZOS resize they start from is qa/resample.c; the near-duplicate index
 * over the hashes is qa/neardup.c.
 *
 * Bit-exactness with imagehash 4.3 + Pillow 9/10 + SciPy >= 1.4 is the point, so every step
 * copies the reference's arithmetic, not just its mathematics:
 *   - grey: Pillow's rgb2l (Convert.c, L24 fixed point); alpha is dropped as convert("L") does.
 *   - resize: qa/resample.c (Pillow's ImagingResample with LANCZOS).
 *   - DCT: scipy.fftpack.dct is pocketfft's T_dcst23 (C++ header in scipy/fft/_pocketfft):
 *     pre-twiddle, a backward real FFT (rfftp: factors 2,4,4 for N=32, radb2/radb4 passes),
 *     post-twiddle, with twiddles from sincos_2pibyn. A textbook DCT agrees only to ~1e-13,
 *     which flips "> median" on flat or symmetric images where exact-zero coefficients sit on
 *     the median, so the same operations run in the same order here. The file is compiled
 *     with floating-point contraction off so no FMA changes a rounding.
 *   - median: numpy's, the mean of the 32nd and 33rd of the 64 sorted values.
 *
 * Invariants: a hash depends only on the pixels (never on the thread, the file format or the
 * build's SIMD choice). Sizes: a 32x32 grey buffer per hash; images up to 2^30 pixels.
 */
#include "kiln/qa.h"
#include "qa/phash.h"
#include "qa/resample.h"
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
		if (kiln_resample_lanczos8(grey, width, height, 9, 8, small)) {
			rc = kiln_error_set(e, KILN_E_NOMEM, WHERE, "out of memory");
			goto out;
		}
		*dhash = dhash_of(small);
	}
	if (phash) {
		if (kiln_resample_lanczos8(grey, width, height, DCT_N, DCT_N, small)) {
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

/* ---- colour prints ---------------------------------------------------------------------- */

static double srgb_to_linear(double c)
{
	c /= 255.0;
	return c <= 0.04045 ? c / 12.92 : pow((c + 0.055) / 1.055, 2.4);
}

static double lab_f(double t)
{
	return t > 216.0 / 24389.0 ? cbrt(t) : (24389.0 / 27.0 * t + 16.0) / 116.0;
}

static uint8_t clamp8(double v)
{
	return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : lround(v));
}

/* Column sums of one row, added into per-column accumulators (planar r, g, b): how far each
 * channel is below white, weighted by alpha (x 255), so that the colour composited over
 * white is 255 - sum / (255 n). One loop per band count over the whole row so each
 * vectorises (bench/qa/qa_vs_decode.sh: summing cell by cell in short runs, with a switch
 * per pixel, made the colour print a quarter of kiln qa's CPU). */
VEC_CLONES static void print_row(const uint8_t *restrict s, int w, int bands,
				 uint32_t *restrict r, uint32_t *restrict g, uint32_t *restrict b)
{
	if (bands == 4)
		for (int x = 0; x < w; x++) {
			uint32_t al = s[4 * x + 3];
			r[x] += al * (255u - s[4 * x]);
			g[x] += al * (255u - s[4 * x + 1]);
			b[x] += al * (255u - s[4 * x + 2]);
		}
	else if (bands == 3)
		for (int x = 0; x < w; x++) {
			r[x] += 255u * (255u - s[3 * x]);
			g[x] += 255u * (255u - s[3 * x + 1]);
			b[x] += 255u * (255u - s[3 * x + 2]);
		}
	else if (bands == 2)
		for (int x = 0; x < w; x++)
			r[x] += (uint32_t)s[2 * x + 1] * (255u - s[2 * x]);
	else
		for (int x = 0; x < w; x++)
			r[x] += 255u * (255u - s[x]);
}

/* sRGB to linear light for a mean channel value v in 0..255: a 4096-step table (v x 16),
 * interpolated; made once. */
#define LIN_STEPS 4096
static double lin_table[LIN_STEPS + 2];
static pthread_once_t lin_once = PTHREAD_ONCE_INIT;

static void lin_init(void)
{
	for (int i = 0; i <= LIN_STEPS + 1; i++)
		lin_table[i] = srgb_to_linear(255.0 * (double)i / LIN_STEPS);
}

static double lin(double v)
{
	double f = v / 255.0 * LIN_STEPS;
	int i = (int)f;
	if (i < 0)
		return 0;
	if (i >= LIN_STEPS)
		return lin_table[LIN_STEPS];
	return lin_table[i] + (lin_table[i + 1] - lin_table[i]) * (f - (double)i);
}

/* Fold the column sums into the cells of cell row a, and clear them. */
static void print_flush(uint64_t (*a)[4], const int *x0, int g, uint32_t *col, int w,
			uint64_t rows)
{
	for (int c = 0; c < g; c++) {
		for (int x = x0[c]; x < x0[c + 1]; x++) {
			a[c][0] += col[x];
			a[c][1] += col[w + x];
			a[c][2] += col[2 * w + x];
		}
		a[c][3] += rows * (uint64_t)(x0[c + 1] - x0[c]);
	}
	memset(col, 0, (size_t)w * 3 * sizeof *col);
}

int kiln_lab_print(const uint8_t *pixels, int width, int height, int bands, size_t stride,
		   uint8_t out[KILN_LAB_BYTES], struct kiln_error *e)
{
	uint64_t (*acc)[4];
	uint32_t *col;
	uint64_t rows = 0;
	int x0[KILN_LAB_CELLS + 1], cur = 0, C = KILN_LAB_CELLS, step;
	int rc = check_args(pixels, width, height, bands, &stride, e);
	if (rc)
		return rc;
	/* cells of at least 16 pixels: smaller ones see JPEG's 8x8 blocks and edge ringing */
	while (C > 8 && (width < 16 * C || height < 16 * C))
		C /= 2;
	memset(out, 0, KILN_LAB_BYTES);
	out[KILN_LAB_BYTES - 1] = (uint8_t)C;
	pthread_once(&lin_once, lin_init);
	acc = kiln_calloc(C * C, sizeof *acc);
	col = kiln_calloc((size_t)width * 3, sizeof *col);
	if (!acc || !col) {
		free(acc);
		free(col);
		return kiln_error_set(e, KILN_E_NOMEM, WHERE, "out of memory");
	}
	for (int c = 0; c <= C; c++) /* cell c covers columns [x0[c], x0[c + 1]) */
		x0[c] = (int)(((int64_t)c * width + C - 1) / C);
	/* large images: every step-th row, at least 16 rows a cell (area means need no more,
	 * and the pass reads every pixel of a 1024x1024 image otherwise) */
	step = height / C / 16 > 1 ? height / C / 16 : 1;
	for (int y = 0; y < height; y += step) {
		int cy = (int)((int64_t)y * C / height);
		/* a column sum holds at most 65536 rows of 255 x 255: no overflow */
		if (cy != cur || rows == 65536) {
			print_flush(acc + (size_t)cur * C, x0, C, col, width, rows);
			cur = cy;
			rows = 0;
		}
		print_row(pixels + (size_t)y * stride, width, bands, col, col + width,
			  col + 2 * (size_t)width);
		rows++;
	}
	print_flush(acc + (size_t)cur * C, x0, C, col, width, rows);
	free(col);
	for (int k = 0; k < C * C; k++) {
		double rgb[3], X, Y, Z, fx, fy, fz;
		for (int c = 0; c < 3; c++)
			rgb[c] = acc[k][3] ? lin(255.0 - (double)acc[k][bands <= 2 ? 0 : c] / 255.0 /
						 (double)acc[k][3]) : 1.0;
		/* sRGB (D65) to XYZ, normalised by the D65 white */
		X = (0.4124564 * rgb[0] + 0.3575761 * rgb[1] + 0.1804375 * rgb[2]) / 0.95047;
		Y = 0.2126729 * rgb[0] + 0.7151522 * rgb[1] + 0.0721750 * rgb[2];
		Z = (0.0193339 * rgb[0] + 0.1191920 * rgb[1] + 0.9503041 * rgb[2]) / 1.08883;
		fx = lab_f(X), fy = lab_f(Y), fz = lab_f(Z);
		out[3 * k] = clamp8((116.0 * fy - 16.0) * 2.55);
		out[3 * k + 1] = clamp8(500.0 * (fx - fy) + 128.0);
		out[3 * k + 2] = clamp8(200.0 * (fy - fz) + 128.0);
	}
	free(acc);
	return 0;
}

/* Cell (x, y) of a print pooled to a g x g grid: the mean of the cells it covers. */
static void lab_cell(const uint8_t *p, int g, int x, int y, double v[3])
{
	int G = p[KILN_LAB_BYTES - 1], f = G / g;
	v[0] = v[1] = v[2] = 0;
	for (int j = 0; j < f; j++)
		for (int i = 0; i < f; i++) {
			const uint8_t *c = p + 3 * ((size_t)(y * f + j) * G + (size_t)(x * f + i));
			v[0] += c[0], v[1] += c[1], v[2] += c[2];
		}
	v[0] /= f * f * 2.55, v[1] /= f * f, v[2] /= f * f;
}

double kiln_lab_distance(const uint8_t a[KILN_LAB_BYTES], const uint8_t b[KILN_LAB_BYTES],
			 double stop)
{
	double worst = 0, stop2 = stop > 0 ? stop * stop : INFINITY;
	int ga = a[KILN_LAB_BYTES - 1], gb = b[KILN_LAB_BYTES - 1], g = ga < gb ? ga : gb;
	if (!g)
		return 0;
	for (int y = 0; y < g; y++)
		for (int x = 0; x < g; x++) {
			double u[3], v[3], d;
			lab_cell(a, g, x, y, u);
			lab_cell(b, g, x, y, v);
			d = (u[0] - v[0]) * (u[0] - v[0]) + (u[1] - v[1]) * (u[1] - v[1]) +
			    (u[2] - v[2]) * (u[2] - v[2]);
			if (d > worst) {
				worst = d;
				if (worst > stop2)
					return sqrt(worst);
			}
		}
	return sqrt(worst);
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

int kiln_qa_phash(const char *path, uint64_t *phash, struct kiln_error *e)
{
	int rc = kiln_vips_init(e);
	return rc ? rc : kiln_phash_file(path, NULL, phash, e);
}

int kiln_qa_phash_pixels(const uint8_t *pixels, int width, int height, int bands, size_t stride,
			 uint64_t *phash, struct kiln_error *e)
{
	return kiln_phash_from_pixels(pixels, width, height, bands, stride, NULL, phash, e);
}
