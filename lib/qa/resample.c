/* qa/resample.c: Pillow's LANCZOS resampling of an 8-bit single-band image (Resample.c),
 * bit for bit, for the perceptual hashes (qa/resample.h, qa/phash.c).
 *
 * Pillow's ImagingResample (Resample.c) for an 8-bit "L" image with LANCZOS:
 *     precompute_coeffs (double weights from sin(), normalised per output pixel, support 3 x
 *     scale when reducing), normalize_coeffs_8bpc (22-bit fixed point, round half away from
 *     zero), the horizontal pass first (only over the rows the vertical pass reads) then the
 *     vertical pass, each rounding with 1 << 21 and clip8. A pass whose size does not change is
 *     skipped, as Pillow does; imagehash never sets reducing_gap, so Image.reduce() never runs.
 * The coefficients for an (input size, output size) pair are computed once and cached (QA
 * hashes tens of thousands of images of one size to 9x8 and 32x32).
 * Invariants: the output depends only on the input pixels; the file is compiled with
 * floating-point contraction off so no FMA changes a rounding of the weights.
 * Sizes: two coefficient tables per cached size pair (a few KB), one temporary of ow x h.
 */
#include "qa/resample.h"
#include "kiln/error.h"
#include "util/alloc.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

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
int kiln_resample_lanczos8(const uint8_t *in, int w, int h, int ow, int oh, uint8_t *out)
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
