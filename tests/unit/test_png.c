/* Unit tests for the PNG writer (lib/util/png.c): every filter, level and colour type decodes
 * with libvips (libpng checks every CRC) to exactly the pixels given; the chunk layout; RGB
 * for opaque images only; palettes with and without tRNS; odd sizes; errors and allocation
 * failure. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <vips/vips.h>

#include "util/alloc.h"
#include "util/png.h"

static uint32_t rnd(uint32_t *s)
{
	*s = *s * 1664525u + 1013904223u;
	return *s >> 8;
}

/* w x h RGBA: smooth gradient, flat areas and noise; alpha all 255 when opaque */
static uint8_t *image(int w, int h, int opaque, uint32_t seed)
{
	uint8_t *px = malloc((size_t)w * h * 4);
	assert_non_null(px);
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			uint8_t *p = px + ((size_t)y * w + x) * 4;
			int zone = (x * 3) / (w ? w : 1);
			p[0] = (uint8_t)(zone == 0 ? x * 7 : zone == 1 ? 40 : (int)rnd(&seed));
			p[1] = (uint8_t)(zone == 0 ? y * 5 : zone == 1 ? 200 : (int)rnd(&seed));
			p[2] = (uint8_t)(x + y);
			p[3] = opaque ? 255 : (uint8_t)(zone == 1 ? 0 : rnd(&seed));
		}
	return px;
}

static uint32_t be32(const char *p)
{
	const uint8_t *u = (const uint8_t *)p;
	return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

/* decode with libvips; returns RGBA pixels (alpha 255 added to RGB) and the file's bands */
static uint8_t *decode(const struct kiln_buf *b, int w, int h, int *bands)
{
	VipsImage *im = vips_image_new_from_buffer(b->data, b->len, "", "fail_on",
						   VIPS_FAIL_ON_WARNING, NULL);
	VipsImage *t = NULL;
	uint8_t *px;
	size_t n;
	assert_non_null(im);
	assert_int_equal(vips_image_get_width(im), w);
	assert_int_equal(vips_image_get_height(im), h);
	*bands = vips_image_get_bands(im);
	if (*bands == 3) {
		assert_int_equal(vips_bandjoin_const1(im, &t, 255.0, NULL), 0);
		g_object_unref(im);
		im = t;
	}
	px = vips_image_write_to_memory(im, &n);
	assert_non_null(px);
	assert_int_equal(n, (size_t)w * h * 4);
	g_object_unref(im);
	return px;
}

/* Chunk types in order, as "IHDR,pHYs,IDAT,IEND" */
static void chunks(const struct kiln_buf *b, char *out, size_t cap)
{
	size_t off = 8, len = 0;
	assert_memory_equal(b->data, "\x89PNG\r\n\x1a\n", 8);
	out[0] = 0;
	while (off + 12 <= b->len) {
		uint32_t n = be32(b->data + off);
		len += (size_t)snprintf(out + len, cap - len, "%s%.4s", len ? "," : "",
					b->data + off + 4);
		off += 12 + (size_t)n;
	}
	assert_int_equal(off, b->len);
}

static void test_every_filter_and_level(void **state)
{
	static const int sizes[][2] = { { 1, 1 }, { 2, 3 }, { 37, 11 }, { 64, 64 } };
	char layout[128];
	(void)state;
	for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
		int w = sizes[si][0], h = sizes[si][1];
		for (int opaque = 0; opaque <= 1; opaque++) {
			uint8_t *px = image(w, h, opaque, (uint32_t)(si * 2 + opaque));
			for (int f = KILN_PNG_FILTER_NONE; f <= KILN_PNG_FILTER_ADAPTIVE; f++)
				for (int level = 0; level <= 12; level += (level < 2 ? 1 : 5)) {
					for (int rgb = 0; rgb <= 1; rgb++) {
						struct kiln_png_opts o = { level, (enum kiln_png_filter)f,
									   rgb };
						struct kiln_buf b = KILN_BUF_INIT;
						struct kiln_error e;
						uint8_t *got;
						int bands;
						assert_int_equal(kiln_png_encode_rgba(px, w, h,
										      (size_t)w * 4, &o,
										      NULL, &b, &e), 0);
						chunks(&b, layout, sizeof layout);
						assert_string_equal(layout, "IHDR,pHYs,IDAT,IEND");
						assert_int_equal(be32(b.data + 16), (uint32_t)w);
						assert_int_equal(be32(b.data + 20), (uint32_t)h);
						assert_int_equal((uint8_t)b.data[25],
								 rgb && opaque ? 2 : 6);
						got = decode(&b, w, h, &bands);
						assert_int_equal(bands, rgb && opaque ? 3 : 4);
						assert_memory_equal(got, px, (size_t)w * h * 4);
						g_free(got);
						kiln_buf_release(&b);
					}
				}
			free(px);
		}
	}
}

/* Scratch reuse across sizes and levels, a row stride wider than the row, appending to a
 * buffer that already holds bytes, byte-identical repeats. */
static void test_scratch_stride_append(void **state)
{
	struct kiln_png_scratch sc = KILN_PNG_SCRATCH_INIT;
	struct kiln_buf a = KILN_BUF_INIT, b = KILN_BUF_INIT;
	struct kiln_error e;
	uint8_t *px = image(40, 30, 0, 7), *wide = calloc(30, 50 * 4), *got;
	struct kiln_png_opts o = { 6, KILN_PNG_FILTER_PAETH, 1 };
	int bands;
	(void)state;
	assert_non_null(wide);
	for (int y = 0; y < 30; y++)
		memcpy(wide + (size_t)y * 200, px + (size_t)y * 160, 160);
	assert_int_equal(kiln_png_encode_rgba(px, 40, 30, 160, &o, &sc, &a, &e), 0);
	o.level = 1;
	assert_int_equal(kiln_png_encode_rgba(px, 10, 10, 160, &o, &sc, &b, &e), 0);
	o.level = 6;
	assert_int_equal(kiln_buf_add(&b, "xyz", 3), 0);
	kiln_buf_reset(&b);
	assert_int_equal(kiln_buf_add(&b, "xyz", 3), 0);
	assert_int_equal(kiln_png_encode_rgba(wide, 40, 30, 200, &o, &sc, &b, &e), 0);
	assert_int_equal(b.len, a.len + 3);
	assert_memory_equal(b.data + 3, a.data, a.len);
	{
		struct kiln_buf c = { b.data + 3, b.len - 3, 0, 0 };
		got = decode(&c, 40, 30, &bands);
	}
	assert_memory_equal(got, px, 40 * 30 * 4);
	g_free(got);
	kiln_png_scratch_release(&sc);
	kiln_png_scratch_release(&sc); /* twice is fine */
	kiln_buf_release(&a);
	kiln_buf_release(&b);
	free(px);
	free(wide);
}

static void test_indexed(void **state)
{
	uint8_t pal[3][4] = { { 255, 0, 0, 255 }, { 0, 0, 255, 128 }, { 1, 2, 3, 255 } };
	uint8_t idx[7 * 5], want[7 * 5 * 4], *got;
	struct kiln_png_opts o = { 9, KILN_PNG_FILTER_PAETH, 1 };
	struct kiln_buf b = KILN_BUF_INIT;
	struct kiln_error e;
	char layout[128];
	int bands;
	(void)state;
	for (int i = 0; i < 35; i++) {
		idx[i] = (uint8_t)(i % 3);
		memcpy(want + 4 * i, pal[i % 3], 4);
	}
	assert_int_equal(kiln_png_encode_indexed(idx, 7, 5, (const uint8_t(*)[4])pal, 3, &o, NULL,
						 &b, &e), 0);
	chunks(&b, layout, sizeof layout);
	/* tRNS stops at the last entry that is not opaque */
	assert_string_equal(layout, "IHDR,PLTE,tRNS,pHYs,IDAT,IEND");
	assert_int_equal((uint8_t)b.data[25], 3);
	assert_int_equal(be32(b.data + 33), 9);       /* PLTE length */
	assert_int_equal(be32(b.data + 33 + 21), 2);  /* tRNS length */
	got = decode(&b, 7, 5, &bands);
	assert_memory_equal(got, want, sizeof want);
	g_free(got);
	/* an opaque palette has no tRNS */
	pal[1][3] = 255;
	kiln_buf_reset(&b);
	assert_int_equal(kiln_png_encode_indexed(idx, 7, 5, (const uint8_t(*)[4])pal, 3, &o, NULL,
						 &b, &e), 0);
	chunks(&b, layout, sizeof layout);
	assert_string_equal(layout, "IHDR,PLTE,pHYs,IDAT,IEND");
	kiln_buf_release(&b);
}

static void test_phys_72dpi(void **state)
{
	uint8_t px[4] = { 1, 2, 3, 4 };
	struct kiln_png_opts o = { 6, KILN_PNG_FILTER_NONE, 0 };
	struct kiln_buf b = KILN_BUF_INIT;
	struct kiln_error e;
	VipsImage *im;
	(void)state;
	assert_int_equal(kiln_png_encode_rgba(px, 1, 1, 4, &o, NULL, &b, &e), 0);
	/* signature 8 + IHDR 25 = 33: pHYs */
	assert_memory_equal(b.data + 37, "pHYs", 4);
	assert_int_equal(be32(b.data + 41), 2835);
	assert_int_equal(be32(b.data + 45), 2835);
	assert_int_equal(b.data[49], 1);
	im = vips_image_new_from_buffer(b.data, b.len, "", NULL);
	assert_non_null(im);
	assert_true(vips_image_get_xres(im) > 2.83 && vips_image_get_xres(im) < 2.84);
	g_object_unref(im);
	kiln_buf_release(&b);
}

/* kiln_png_copy_text: the text chunks of one PNG copied into another, before its IDAT, in
 * order and byte for byte; a damaged source is refused and out keeps its length. */
static void test_copy_text(void **state)
{
	uint8_t px[4] = { 1, 2, 3, 255 }, q[4] = { 9, 8, 7, 255 };
	struct kiln_png_opts o = { 6, KILN_PNG_FILTER_NONE, 0 };
	struct kiln_png_text t[2] = { { "parameters", "owl, Steps: 20", 0 },
				      { "XML:com.adobe.xmp", "<x/>", 1 } };
	struct kiln_buf a = KILN_BUF_INIT, src = KILN_BUF_INIT, b = KILN_BUF_INIT;
	struct kiln_buf out = KILN_BUF_INIT;
	struct kiln_error e;
	char ch[256];
	VipsImage *im;
	(void)state;
	assert_int_equal(kiln_png_encode_rgba(px, 1, 1, 4, &o, NULL, &a, &e), 0);
	assert_int_equal(kiln_png_set_text(a.data, a.len, t, 2, &src, &e), 0);
	assert_int_equal(kiln_png_encode_rgba(q, 1, 1, 4, &o, NULL, &b, &e), 0);
	assert_int_equal(kiln_png_copy_text(src.data, src.len, b.data, b.len, &out, &e), 0);
	chunks(&out, ch, sizeof ch);
	assert_string_equal(ch, "IHDR,pHYs,tEXt,iTXt,IDAT,IEND");
	/* the chunks are src's bytes; the pixels are b's */
	assert_int_equal(out.len, b.len + (src.len - a.len));
	assert_non_null(memmem(out.data, out.len, "parameters\0owl, Steps: 20", 25));
	im = vips_image_new_from_buffer(out.data, out.len, "", NULL);
	assert_non_null(im);
	assert_int_equal(vips_image_get_width(im), 1);
	g_object_unref(im);
	/* a PNG without text: the copy is b itself */
	kiln_buf_reset(&out);
	assert_int_equal(kiln_png_copy_text(a.data, a.len, b.data, b.len, &out, &e), 0);
	assert_int_equal(out.len, b.len);
	assert_memory_equal(out.data, b.data, b.len);
	/* a bad CRC in the source: refused, out unchanged */
	src.data[src.len - 20] ^= 1;
	kiln_buf_reset(&out);
	assert_int_equal(kiln_png_copy_text(src.data, src.len, b.data, b.len, &out, &e),
			 KILN_E_IMAGE);
	assert_int_equal(out.len, 0);
	kiln_buf_release(&a);
	kiln_buf_release(&src);
	kiln_buf_release(&b);
	kiln_buf_release(&out);
}

/* Rows handed over one at a time give the same bytes as the whole image, for every filter,
 * RGB (opaque, alpha dropped) and RGBA. */
struct src {
	const uint8_t *px;
	int w, next;
};

static void row_from(void *user, int y, uint8_t *row, int bpp)
{
	struct src *s = user;
	const uint8_t *p = s->px + (size_t)y * s->w * 4;
	assert_int_equal(y, s->next++);
	for (int x = 0; x < s->w; x++)
		memcpy(row + (size_t)x * bpp, p + 4 * x, (size_t)bpp);
}

static void test_rows_match_whole(void **state)
{
	struct kiln_error e;
	(void)state;
	for (int opaque = 0; opaque <= 1; opaque++) {
		uint8_t *px = image(37, 19, opaque, 7u + (uint32_t)opaque);
		for (int f = KILN_PNG_FILTER_NONE; f <= KILN_PNG_FILTER_ADAPTIVE; f++) {
			struct kiln_png_opts o = { 6, (enum kiln_png_filter)f, 1 };
			struct kiln_buf a = KILN_BUF_INIT, b = KILN_BUF_INIT;
			struct src s = { px, 37, 0 };
			assert_int_equal(kiln_png_encode_rgba(px, 37, 19, 37 * 4, &o, NULL, &a, &e), 0);
			assert_int_equal(kiln_png_encode_rows(row_from, &s, 37, 19, opaque, &o, NULL,
							      &b, &e), 0);
			assert_int_equal(s.next, 19);
			assert_int_equal(a.len, b.len);
			assert_memory_equal(a.data, b.data, a.len);
			kiln_buf_release(&a);
			kiln_buf_release(&b);
		}
		free(px);
	}
}

/* rows of an RGBA image in any order, counting the calls */
struct any_src {
	const uint8_t *px;
	int w, calls;
};

static void row_any(void *user, int y, uint8_t *row, int bpp)
{
	struct any_src *s = user;
	const uint8_t *p = s->px + (size_t)y * s->w * 4;
	s->calls++;
	for (int x = 0; x < s->w; x++)
		memcpy(row + (size_t)x * bpp, p + 4 * x, (size_t)bpp);
}

/* Banded PNGs: decode to the pixels; the same bytes with or without the cache, hit or miss,
 * keyed by the caller or by content; a hit does not ask for the band's rows. */
static void test_bands(void **state)
{
	enum { BW = 37, BH = 50 }; /* 4 bands, the last one 2 rows */
	int nb = (BH + KILN_PNG_BAND_ROWS - 1) / KILN_PNG_BAND_ROWS;
	struct kiln_error e;
	(void)state;
	for (int opaque = 0; opaque <= 1; opaque++)
		for (int f = KILN_PNG_FILTER_NONE; f <= KILN_PNG_FILTER_SUB; f++)
			for (int level = 0; level <= 12; level += 6) {
				struct kiln_png_opts o = { level, (enum kiln_png_filter)f, 1 };
				uint8_t *a = image(BW, BH, opaque, 11u), *b = image(BW, BH, opaque, 99u);
				struct kiln_png_key ka[4], kb[4];
				struct kiln_png_bands *cache = NULL;
				struct kiln_buf x = KILN_BUF_INIT, y = KILN_BUF_INIT, t = KILN_BUF_INIT;
				struct any_src sa = { a, BW, 0 }, sb = { b, BW, 0 };
				uint64_t hits, misses;
				size_t bytes;
				uint8_t *px;
				int bands;
				/* b shares a's bands 0 and 2 */
				memcpy(b, a, (size_t)BW * 4 * 16);
				memcpy(b + (size_t)BW * 4 * 32, a + (size_t)BW * 4 * 32, (size_t)BW * 4 * 16);
				for (int i = 0; i < nb; i++) {
					ka[i] = (struct kiln_png_key){ (uint64_t)i + 1, 7 };
					kb[i] = (struct kiln_png_key){ (uint64_t)i + 1, i % 2 ? 8 : 7 };
				}
				/* no cache: every band compressed; decodes to the pixels */
				assert_int_equal(kiln_png_encode_bands(row_any, &sa, NULL, BW, BH, opaque,
								       &o, NULL, NULL, &x, &e), 0);
				assert_int_equal(sa.calls, BH);
				px = decode(&x, BW, BH, &bands);
				assert_int_equal(bands, opaque ? 3 : 4);
				assert_memory_equal(px, a, (size_t)BW * BH * 4);
				g_free(px);
				/* caller's keys: a miss then a hit give the same bytes */
				assert_int_equal(kiln_png_bands_new(&cache, 1 << 20, &e), 0);
				for (int k = 0; k < 2; k++) {
					sa.calls = 0;
					kiln_buf_reset(&t);
					assert_int_equal(kiln_png_encode_bands(row_any, &sa, ka, BW, BH,
									       opaque, &o, cache, NULL,
									       &t, &e), 0);
					assert_int_equal(sa.calls, k ? 0 : BH);
					assert_int_equal(t.len, x.len);
					assert_memory_equal(t.data, x.data, x.len);
				}
				/* b: bands 0 and 2 come from a's; the bytes are b's own */
				assert_int_equal(kiln_png_encode_bands(row_any, &sb, NULL, BW, BH, opaque,
								       &o, NULL, NULL, &y, &e), 0);
				sb.calls = 0;
				kiln_buf_reset(&t);
				assert_int_equal(kiln_png_encode_bands(row_any, &sb, kb, BW, BH, opaque,
								       &o, cache, NULL, &t, &e), 0);
				assert_int_equal(sb.calls, 16 + 2);
				assert_int_equal(t.len, y.len);
				assert_memory_equal(t.data, y.data, y.len);
				kiln_png_bands_stats(cache, &hits, &misses, &bytes);
				assert_int_equal(hits, (uint64_t)nb + 2);
				assert_int_equal(misses, (uint64_t)nb + 2);
				kiln_png_bands_free(cache);
				/* keyed by content: a's bands found again when b is written */
				assert_int_equal(kiln_png_bands_new(&cache, 1 << 20, &e), 0);
				kiln_buf_reset(&t);
				assert_int_equal(kiln_png_encode_bands(row_any, &sa, NULL, BW, BH, opaque,
								       &o, cache, NULL, &t, &e), 0);
				assert_memory_equal(t.data, x.data, x.len);
				kiln_buf_reset(&t);
				assert_int_equal(kiln_png_encode_bands(row_any, &sb, NULL, BW, BH, opaque,
								       &o, cache, NULL, &t, &e), 0);
				assert_int_equal(t.len, y.len);
				assert_memory_equal(t.data, y.data, y.len);
				kiln_png_bands_stats(cache, &hits, &misses, &bytes);
				assert_int_equal(hits, 2);
				kiln_png_bands_free(cache);
				/* a full cache keeps nothing more and still writes the same bytes */
				assert_int_equal(kiln_png_bands_new(&cache, 0, &e), 0);
				kiln_buf_reset(&t);
				assert_int_equal(kiln_png_encode_bands(row_any, &sa, ka, BW, BH, opaque,
								       &o, cache, NULL, &t, &e), 0);
				assert_memory_equal(t.data, x.data, x.len);
				kiln_png_bands_stats(cache, &hits, &misses, &bytes);
				assert_int_equal(bytes, 0);
				kiln_png_bands_free(cache);
				kiln_buf_release(&x);
				kiln_buf_release(&y);
				kiln_buf_release(&t);
				free(a);
				free(b);
			}
	/* filters that look at the row above are refused; allocation failure leaves out as it was */
	{
		uint8_t *px = image(16, 40, 1, 5);
		struct kiln_png_opts o = { 6, KILN_PNG_FILTER_UP, 1 };
		struct kiln_buf b = KILN_BUF_INIT;
		struct any_src s = { px, 16, 0 };
		int ok = 0;
		assert_int_equal(kiln_png_encode_bands(row_any, &s, NULL, 16, 40, 1, &o, NULL, NULL,
						       &b, &e), KILN_E_IMAGE);
		o.filter = KILN_PNG_FILTER_NONE;
		assert_int_equal(kiln_buf_add(&b, "keep", 4), 0);
		for (long n = 0; n < 40 && !ok; n++) {
			struct kiln_png_scratch sc = KILN_PNG_SCRATCH_INIT;
			struct kiln_png_bands *cache = NULL;
			int rc;
			kiln_alloc_fail_after(n);
			rc = kiln_png_bands_new(&cache, 1 << 20, &e);
			if (!rc)
				rc = kiln_png_encode_bands(row_any, &s, NULL, 16, 40, 1, &o, cache,
							   &sc, &b, &e);
			kiln_alloc_fail_after(-1);
			kiln_png_scratch_release(&sc);
			kiln_png_bands_free(cache);
			if (rc == 0) {
				ok = 1;
				break;
			}
			assert_int_equal(rc, KILN_E_NOMEM);
			assert_int_equal(b.len, 4);
		}
		assert_true(ok);
		kiln_buf_release(&b);
		free(px);
	}
}

static void test_errors_and_alloc_failure(void **state)
{
	uint8_t *px = image(16, 16, 1, 3);
	uint8_t pal[1][4] = { { 0, 0, 0, 0 } };
	struct kiln_png_opts o = { 6, KILN_PNG_FILTER_UP, 1 };
	struct kiln_buf b = KILN_BUF_INIT;
	struct kiln_error e;
	int ok = 0;
	(void)state;
	assert_int_equal(kiln_png_encode_rgba(px, 0, 16, 64, &o, NULL, &b, &e), KILN_E_IMAGE);
	o.level = 13;
	assert_int_equal(kiln_png_encode_rgba(px, 16, 16, 64, &o, NULL, &b, &e), KILN_E_IMAGE);
	o.level = 6;
	assert_int_equal(kiln_png_encode_indexed(px, 4, 4, (const uint8_t(*)[4])pal, 0, &o, NULL,
						 &b, &e), KILN_E_IMAGE);
	assert_int_equal(b.len, 0);
	assert_string_equal(kiln_png_filter_name(KILN_PNG_FILTER_ADAPTIVE), "adaptive");
	/* the Nth allocation fails: NOMEM, nothing appended, nothing leaked (ASan) */
	assert_int_equal(kiln_buf_add(&b, "keep", 4), 0);
	for (long n = 0; n < 20 && !ok; n++) {
		struct kiln_png_scratch sc = KILN_PNG_SCRATCH_INIT;
		int rc;
		kiln_alloc_fail_after(n);
		rc = kiln_png_encode_rgba(px, 16, 16, 64, &o, &sc, &b, &e);
		kiln_alloc_fail_after(-1);
		kiln_png_scratch_release(&sc);
		if (rc == 0) {
			ok = 1;
			break;
		}
		assert_int_equal(rc, KILN_E_NOMEM);
		assert_int_equal(b.len, 4);
		assert_memory_equal(b.data, "keep", 5);
	}
	assert_true(ok);
	kiln_buf_release(&b);
	free(px);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_filter_and_level),
		cmocka_unit_test(test_scratch_stride_append),
		cmocka_unit_test(test_indexed),
		cmocka_unit_test(test_phys_72dpi),
		cmocka_unit_test(test_copy_text),
		cmocka_unit_test(test_rows_match_whole),
		cmocka_unit_test(test_bands),
		cmocka_unit_test(test_errors_and_alloc_failure),
	};
	if (VIPS_INIT("test_png"))
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
