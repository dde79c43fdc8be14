/* Unit tests for lib/phash.c: perceptual hashes against imagehash, pixel-content hashes, the
 * multi-index near-duplicate search against a brute-force scan, decoding errors, and
 * allocation failure.
 *
 * The expected hashes were computed by tests/qa/imagehash_oracle.py (imagehash's dhash and
 * phash with Pillow 9.4, SciPy 1.10) on the same formula images, built with numpy as
 * a[y, x] = f(x, y) (see the comment at each vector). tests/qa/compare_phash.sh checks 250+
 * generated image files the same way. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <vips/vips.h>

#include "qa/phash.h"
#include "util/alloc.h"

typedef void (*pixfn)(int x, int y, uint8_t out[4]);

static void f1(int x, int y, uint8_t o[4])
{
	o[0] = (uint8_t)((x * 7 + y * 3) % 256), o[1] = (uint8_t)((x * y) % 256);
	o[2] = (uint8_t)(((255 - x * 5) % 256 + 256) % 256), o[3] = (uint8_t)((x * 13 + y * 17) % 256);
}

static void f2(int x, int y, uint8_t o[4])
{
	o[0] = o[1] = o[2] = o[3] = (uint8_t)((x * x + y * 5) % 256);
}

static void f3(int x, int y, uint8_t o[4])
{
	(void)x, (void)y;
	o[0] = 200, o[1] = 100, o[2] = 50, o[3] = 9;
}

static void f4(int x, int y, uint8_t o[4])
{
	o[0] = (uint8_t)((x * 31 + y * 7) % 256), o[1] = (uint8_t)((x ^ y) & 255);
	o[2] = (uint8_t)((x * y * 3) % 256), o[3] = 255;
}

/* width x height x bands, rows `stride` bytes apart (padding filled with junk) */
static uint8_t *make(int w, int h, int bands, size_t stride, pixfn fn)
{
	uint8_t *p = malloc(stride * (size_t)h), px[4];
	assert_non_null(p);
	memset(p, 0xA5, stride * (size_t)h);
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			fn(x, y, px);
			memcpy(p + (size_t)y * stride + (size_t)x * bands, px, (size_t)bands);
		}
	return p;
}

static void check_vector(const char *name, int w, int h, int bands, pixfn fn, const char *dh,
			 const char *ph)
{
	struct kiln_error e;
	uint64_t d = 0, p = 0, d2 = 0, p2 = 0;
	char hd[17], hp[17];
	size_t stride = (size_t)w * bands;
	uint8_t *px = make(w, h, bands, stride, fn), *padded = make(w, h, bands, stride + 13, fn);
	kiln_error_clear(&e);
	if (kiln_phash_from_pixels(px, w, h, bands, 0, &d, &p, &e))
		fail_msg("%s: %s", name, e.msg);
	kiln_phash_hex(d, hd);
	kiln_phash_hex(p, hp);
	if (strcmp(hd, dh) || strcmp(hp, ph))
		fail_msg("%s: kiln dhash %s phash %s, imagehash %s %s", name, hd, hp, dh, ph);
	/* a padded stride changes nothing */
	assert_int_equal(kiln_phash_from_pixels(padded, w, h, bands, stride + 13, &d2, &p2, &e), 0);
	assert_true(d2 == d && p2 == p);
	free(px);
	free(padded);
}

static void test_imagehash_vectors(void **state)
{
	(void)state;
	/* numpy: a[y,x] = f(x,y)[:bands]; modes L, LA, RGB, RGBA */
	check_vector("grad37x23 RGB", 37, 23, 3, f1, "fffefef8f2e4cdd9", "833d7b664952a5aa");
	check_vector("grad37x23 RGBA (alpha ignored)", 37, 23, 4, f1, "fffefef8f2e4cdd9",
		     "833d7b664952a5aa");
	check_vector("grey 9x8 (dHash without resize)", 9, 8, 1, f2, "ffffffffffffffff",
		     "aa78f878f870f070");
	check_vector("grey 32x32 (pHash without resize)", 32, 32, 1, f2, "e5ebe9eaeac9dada",
		     "830e381755376a7d");
	check_vector("1x1", 1, 1, 3, f3, "0000000000000000", "8000000000000000");
	check_vector("solid 100x100 (exact-zero DCT terms)", 100, 100, 3, f3, "0000000000000000",
		     "8000000000000000");
	check_vector("1000x3", 1000, 3, 3, f4, "b5b5b5b5b5b5b5b5", "803f7ea0a17e0e6e");
	check_vector("LA 64x48", 64, 48, 2, f2, "c892adb122384753", "ea000f554fba9277");
	check_vector("640x480", 640, 480, 3, f4, "cccc3333cdcc3333", "d6565656f8e8a2a8");
}

static void test_hex_and_distance(void **state)
{
	uint64_t h = 0;
	char s[17];
	(void)state;
	kiln_phash_hex(0x833d7b664952a5aaull, s);
	assert_string_equal(s, "833d7b664952a5aa");
	assert_int_equal(kiln_phash_parse_hex("833D7B664952A5AA", &h), 0);
	assert_true(h == 0x833d7b664952a5aaull);
	assert_int_not_equal(kiln_phash_parse_hex("833d7b664952a5a", &h), 0);
	assert_int_not_equal(kiln_phash_parse_hex("833d7b664952a5aa0", &h), 0);
	assert_int_not_equal(kiln_phash_parse_hex("833d7b664952a5ag", &h), 0);
	assert_int_equal(kiln_phash_distance(0, ~(uint64_t)0), 64);
	assert_int_equal(kiln_phash_distance(0xF0, 0x0F), 8);
}

static void test_bad_args(void **state)
{
	struct kiln_error e;
	uint8_t px[16] = {0};
	uint64_t d;
	char hex[65];
	(void)state;
	assert_int_equal(kiln_phash_from_pixels(px, 0, 1, 1, 0, &d, NULL, &e), KILN_E_USAGE);
	assert_int_equal(kiln_phash_from_pixels(px, 2, 2, 5, 0, &d, NULL, &e), KILN_E_USAGE);
	assert_int_equal(kiln_phash_from_pixels(px, 4, 1, 3, 5, &d, NULL, &e), KILN_E_USAGE);
	assert_int_equal(kiln_phash_from_pixels(NULL, 1, 1, 1, 0, &d, NULL, &e), KILN_E_USAGE);
	assert_int_equal(kiln_pixel_sha256(px, 1, 1, 0, 0, hex, &e), KILN_E_USAGE);
}

/* The key groups alike what the SHA-256 groups alike, on rows wide enough for the vector
 * loops (67 px: full vectors and a tail), and any one byte change separates them. */
static void test_pixel_key(void **state)
{
	enum { W = 67, H = 5 };
	struct kiln_error e;
	static uint8_t rgb[W * H * 3], rgba[W * H * 4], grey[W * H], la[W * H * 2];
	char k1[33], k2[33], k3[33], k4[33], s1[65], s2[65];
	uint32_t x = 12345;
	(void)state;
	for (int i = 0; i < W * H; i++) {
		x = x * 1103515245u + 12345u;
		grey[i] = (uint8_t)(x >> 24);
		for (int b = 0; b < 3; b++)
			rgb[3 * i + b] = (uint8_t)(x >> (8 * b)), rgba[4 * i + b] = rgb[3 * i + b];
		rgba[4 * i + 3] = 255;
		la[2 * i] = grey[i], la[2 * i + 1] = 255;
	}
	assert_int_equal(kiln_pixel_key(rgb, W, H, 3, 0, k1, &e), 0);
	assert_int_equal(kiln_pixel_key(rgba, W, H, 4, 0, k2, &e), 0);
	assert_string_equal(k1, k2);
	assert_int_equal((int)strlen(k1), 32);
	assert_int_equal(kiln_pixel_sha256(rgb, W, H, 3, 0, s1, &e), 0);
	assert_int_equal(kiln_pixel_sha256(rgba, W, H, 4, 0, s2, &e), 0);
	assert_string_equal(s1, s2);
	assert_int_equal(kiln_pixel_key(grey, W, H, 1, 0, k3, &e), 0);
	assert_int_equal(kiln_pixel_key(la, W, H, 2, 0, k4, &e), 0);
	assert_string_equal(k3, k4);
	assert_string_not_equal(k1, k3);
	/* not opaque: RGBA and grey+alpha of the same pixels alike, apart from the opaque form */
	rgba[3] = 254;
	assert_int_equal(kiln_pixel_key(rgba, W, H, 4, 0, k2, &e), 0);
	assert_string_not_equal(k1, k2);
	for (int i = 0; i < W * H; i++)
		for (int b = 0; b < 3; b++)
			rgba[4 * i + b] = grey[i];
	la[1] = 254;
	assert_int_equal(kiln_pixel_key(rgba, W, H, 4, 0, k2, &e), 0);
	assert_int_equal(kiln_pixel_key(la, W, H, 2, 0, k4, &e), 0);
	assert_string_equal(k2, k4);
	assert_string_not_equal(k2, k3);
	rgb[3 * (W * H - 1) + 2] ^= 1; /* the last byte of the last row's tail */
	assert_int_equal(kiln_pixel_key(rgb, W, H, 3, 0, k3, &e), 0);
	assert_string_not_equal(k1, k3);
	assert_int_equal(kiln_pixel_key(rgb, 0, H, 3, 0, k3, &e), KILN_E_USAGE);
}

static void test_pixel_sha(void **state)
{
	struct kiln_error e;
	uint8_t grey[6] = {10, 20, 30, 40, 50, 60}, rgb[18], rgba[24], la[12];
	char h1[65], h2[65], h3[65], h4[65], h5[65];
	(void)state;
	for (int i = 0; i < 6; i++) {
		memset(rgb + 3 * i, grey[i], 3);
		memset(rgba + 4 * i, grey[i], 3);
		rgba[4 * i + 3] = 255;
		la[2 * i] = grey[i], la[2 * i + 1] = 255;
	}
	assert_int_equal(kiln_pixel_sha256(grey, 3, 2, 1, 0, h1, &e), 0);
	assert_int_equal(kiln_pixel_sha256(rgb, 3, 2, 3, 0, h2, &e), 0);
	assert_int_equal(kiln_pixel_sha256(rgba, 3, 2, 4, 0, h3, &e), 0);
	assert_int_equal(kiln_pixel_sha256(la, 3, 2, 2, 0, h4, &e), 0);
	assert_string_equal(h1, h2);
	assert_string_equal(h1, h3);
	assert_string_equal(h1, h4);
	/* same bytes, other shape: different */
	assert_int_equal(kiln_pixel_sha256(grey, 2, 3, 1, 0, h5, &e), 0);
	assert_string_not_equal(h1, h5);
	/* one alpha value changes the pixels */
	rgba[7] = 254;
	assert_int_equal(kiln_pixel_sha256(rgba, 3, 2, 4, 0, h5, &e), 0);
	assert_string_not_equal(h1, h5);
	assert_int_equal((int)strlen(h1), 64);
}

/* ---- files through libvips ---- */

static char tmpdir[256];

static int setup_tmp(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/kiln-test-phash.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmp(void **state)
{
	char cmd[300];
	(void)state;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void write_png(const char *path, const uint8_t *px, int w, int h, int bands)
{
	VipsImage *im = vips_image_new_from_memory(px, (size_t)w * h * bands, w, h, bands,
						   VIPS_FORMAT_UCHAR);
	assert_non_null(im);
	if (bands <= 2)
		im->Type = VIPS_INTERPRETATION_B_W;
	assert_int_equal(vips_pngsave(im, path, NULL), 0);
	g_object_unref(im);
}

static void test_files(void **state)
{
	struct kiln_error e;
	struct kiln_phash_info info;
	uint64_t d, p;
	char path[512], hex[65], cmd[1200];
	uint8_t *px = make(37, 23, 4, 37 * 4, f1);
	FILE *f;
	(void)state;
	snprintf(path, sizeof path, "%s/a.png", tmpdir);
	assert_int_equal(kiln_phash_file("/nonexistent/a.png", &d, &p, &e), KILN_E_IMAGE);
	assert_non_null(strstr(e.where, "/nonexistent/a.png"));
	write_png(path, px, 37, 23, 4);
	kiln_error_clear(&e);
	if (kiln_phash_image(path, &info, &e))
		fail_msg("%s: %s", e.where, e.msg);
	assert_int_equal(info.width, 37);
	assert_int_equal(info.height, 23);
	assert_int_equal(info.bands, 4);
	assert_true(info.dhash == 0xfffefef8f2e4cdd9ull);
	assert_true(info.phash == 0x833d7b664952a5aaull);
	assert_int_equal(kiln_pixel_sha256(px, 37, 23, 4, 0, hex, &e), 0);
	assert_string_equal(hex, info.pixel_sha256);
	/* a cut file does not decode */
	snprintf(cmd, sizeof cmd, "head -c 200 '%s' > '%s/cut.png'", path, tmpdir);
	assert_int_equal(system(cmd), 0);
	snprintf(path, sizeof path, "%s/cut.png", tmpdir);
	assert_int_equal(kiln_phash_file(path, &d, &p, &e), KILN_E_IMAGE);
	/* not an image at all */
	snprintf(path, sizeof path, "%s/x.png", tmpdir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("not a png", f);
	fclose(f);
	assert_int_equal(kiln_phash_file(path, &d, &p, &e), KILN_E_IMAGE);
	free(px);
}

/* ---- near duplicates ---- */

static uint64_t rs = 12345;
static uint64_t rnd(void)
{
	uint64_t z = (rs += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* n hashes in clusters: a fraction are near copies of earlier ones */
static uint64_t *clustered(size_t n, int spread)
{
	uint64_t *h = malloc(n * sizeof *h);
	assert_non_null(h);
	for (size_t i = 0; i < n; i++) {
		if (i && rnd() % 3 == 0) {
			uint64_t v = h[rnd() % i];
			int k = (int)(rnd() % (uint64_t)(spread + 1));
			for (int b = 0; b < k; b++)
				v ^= (uint64_t)1 << (rnd() % 64);
			h[i] = v;
		} else {
			h[i] = rnd();
		}
	}
	return h;
}

static void compare(const uint64_t *h, size_t n, int t, int threads)
{
	struct kiln_neardup_opts o = {t, threads, 0};
	struct kiln_neardup_pair *a = NULL, *b = NULL;
	size_t na = 0, nb = 0;
	struct kiln_error e;
	if (kiln_neardup_pairs(h, n, &o, &a, &na, &e))
		fail_msg("mih: %s", e.msg);
	if (kiln_neardup_pairs_brute(h, n, t, 0, &b, &nb, &e))
		fail_msg("brute: %s", e.msg);
	if (na != nb)
		fail_msg("n=%zu t=%d threads=%d: %zu pairs, brute force %zu", n, t, threads, na, nb);
	for (size_t i = 0; i < na; i++)
		if (a[i].i != b[i].i || a[i].j != b[i].j || a[i].dist != b[i].dist)
			fail_msg("n=%zu t=%d: pair %zu differs: (%u,%u,%u) vs (%u,%u,%u)", n, t, i,
				 a[i].i, a[i].j, a[i].dist, b[i].i, b[i].j, b[i].dist);
	free(a);
	free(b);
}

/* Under valgrind (KILN_VALGRIND=1, tests/valgrind.sh) the brute-force comparisons shrink. */
static int slow(void)
{
	return getenv("KILN_VALGRIND") != NULL;
}

static void test_neardup_matches_brute(void **state)
{
	(void)state;
	static const size_t sizes[] = {0, 1, 2, 3, 50, 1000, 6000};
	size_t nsizes = sizeof sizes / sizeof *sizes - (slow() ? 1 : 0);
	for (size_t s = 0; s < nsizes; s++) {
		uint64_t *h = clustered(sizes[s] ? sizes[s] : 1, 12);
		for (int t = 0; t <= 16; t += (t < 10 ? 1 : 3))
			compare(h, sizes[s], t, 1 + (int)(s % 2));
		free(h);
	}
}

static void test_neardup_large(void **state)
{
	size_t n = slow() ? 5000 : 30000;
	uint64_t *h = clustered(n, 9);
	(void)state;
	compare(h, n, 8, 2);
	compare(h, n, 8, 1);
	compare(h, n, 3, 0);
	free(h);
}

static void test_neardup_identical_and_cap(void **state)
{
	uint64_t h[200];
	struct kiln_neardup_opts o = {4, 1, 100};
	struct kiln_neardup_pair *p = NULL;
	size_t np = 99;
	struct kiln_error e;
	(void)state;
	for (int i = 0; i < 200; i++)
		h[i] = i < 100 ? 0x1234 : rnd();
	/* 100 identical hashes: 4950 pairs, over the cap of 100 */
	assert_int_equal(kiln_neardup_pairs(h, 200, &o, &p, &np, &e), KILN_E_FAILED);
	assert_null(p);
	assert_int_equal((int)np, 0);
	o.max_pairs = 0;
	assert_int_equal(kiln_neardup_pairs(h, 200, &o, &p, &np, &e), 0);
	assert_true(np >= 4950);
	assert_true(p[0].i == 0 && p[0].j == 1 && p[0].dist == 0);
	free(p);
	o.threshold = 33;
	assert_int_equal(kiln_neardup_pairs(h, 200, &o, &p, &np, &e), KILN_E_USAGE);
}

static void test_alloc_failure(void **state)
{
	uint8_t *px = make(64, 48, 3, 64 * 3, f4);
	uint64_t *h = clustered(5000, 8);
	(void)state;
	for (long n = 0;; n++) {
		struct kiln_error e;
		uint64_t d, p;
		int rc;
		kiln_alloc_fail_after(n);
		rc = kiln_phash_from_pixels(px, 64, 48, 3, 0, &d, &p, &e);
		if (!kiln_alloc_failed()) {
			kiln_alloc_fail_after(-1);
			assert_int_equal(rc, 0);
			break;
		}
		assert_int_equal(rc, KILN_E_NOMEM);
	}
	for (long n = 0;; n++) {
		struct kiln_neardup_opts o = {8, 1, 0};
		struct kiln_neardup_pair *p = NULL;
		size_t np = 0;
		struct kiln_error e;
		int rc;
		kiln_alloc_fail_after(n);
		rc = kiln_neardup_pairs(h, 5000, &o, &p, &np, &e);
		if (!kiln_alloc_failed()) {
			kiln_alloc_fail_after(-1);
			assert_int_equal(rc, 0);
			free(p);
			break;
		}
		assert_int_equal(rc, KILN_E_NOMEM);
		assert_null(p);
	}
	free(px);
	free(h);
}

/* ---- colour prints ---- */

/* w x h RGBA: a flat colour, with a square of another colour at (x0, y0) of side n */
static uint8_t *flat(int w, int h, const uint8_t c[4], int x0, int y0, int n, const uint8_t d[4])
{
	uint8_t *px = malloc((size_t)w * h * 4);
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			int in = x >= x0 && x < x0 + n && y >= y0 && y < y0 + n;
			memcpy(px + ((size_t)y * w + x) * 4, in ? d : c, 4);
		}
	return px;
}

static void test_lab_print(void **state)
{
	static const uint8_t grey[4] = {120, 120, 120, 255}, yellow[4] = {240, 210, 50, 255},
			     gold[4] = {212, 175, 55, 255}, clear[4] = {0, 0, 0, 0},
			     white[4] = {255, 255, 255, 255};
	uint8_t a[KILN_LAB_BYTES], b[KILN_LAB_BYTES], c[KILN_LAB_BYTES], small[KILN_LAB_BYTES];
	uint8_t *p1 = flat(512, 512, grey, 100, 100, 24, yellow);
	uint8_t *p2 = flat(512, 512, grey, 100, 100, 24, gold);
	uint8_t *p3 = flat(256, 256, grey, 50, 50, 12, yellow);
	struct kiln_error e;
	double d;
	(void)state;
	assert_int_equal(kiln_lab_print(p1, 512, 512, 4, 0, a, &e), 0);
	assert_int_equal(kiln_lab_print(p2, 512, 512, 4, 0, b, &e), 0);
	assert_int_equal(kiln_lab_print(p3, 256, 256, 4, 0, small, &e), 0);
	/* cells of at least 16 pixels: 32 x 32 at 512, 16 x 16 at 256 */
	assert_int_equal(a[KILN_LAB_BYTES - 1], 32);
	assert_int_equal(small[KILN_LAB_BYTES - 1], 16);
	assert_true(kiln_lab_distance(a, a, 0) == 0);
	/* a trait of a near colour (yellow and gold eyes) is a difference a person sees */
	d = kiln_lab_distance(a, b, 0);
	assert_true(d > 8);
	/* the same picture at half the size: compared on the coarser grid, nearly the same */
	assert_true(kiln_lab_distance(a, small, 0) < 3);
	/* early stop: something over the limit, no more than the whole */
	assert_true(kiln_lab_distance(a, b, 2) > 2 && kiln_lab_distance(a, b, 2) <= d);
	/* transparency is shown over white */
	free(p1);
	p1 = flat(64, 64, clear, 0, 0, 0, clear);
	p2 = (free(p2), flat(64, 64, white, 0, 0, 0, white));
	assert_int_equal(kiln_lab_print(p1, 64, 64, 4, 0, a, &e), 0);
	assert_int_equal(kiln_lab_print(p2, 64, 64, 4, 0, c, &e), 0);
	assert_int_equal(a[KILN_LAB_BYTES - 1], 8);
	assert_true(kiln_lab_distance(a, c, 0) < 0.5);
	assert_int_equal(kiln_lab_print(p1, 0, 64, 4, 0, a, &e), KILN_E_USAGE);
	free(p1);
	free(p2);
	free(p3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_imagehash_vectors),
		cmocka_unit_test(test_hex_and_distance),
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_pixel_sha),
		cmocka_unit_test(test_pixel_key),
		cmocka_unit_test_setup_teardown(test_files, setup_tmp, teardown_tmp),
		cmocka_unit_test(test_neardup_matches_brute),
		cmocka_unit_test(test_neardup_large),
		cmocka_unit_test(test_neardup_identical_and_cap),
		cmocka_unit_test(test_alloc_failure),
		cmocka_unit_test(test_lab_print),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
