/* Unit tests for the compose engine (lib/engine_compose.c). Fixture layers are written with
 * libvips into a mkdtemp folder under /tmp; specs are built in memory. Expected pixels are
 * worked out by hand for simple colours (±1 for libvips' float rounding) and whole images
 * are compared byte for byte against vips_composite of the same layers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>
#include <cmocka.h>
#include <vips/vips.h>

#include "render/compose.h"
#include "kiln/recipe.h"
#include "util/alloc.h"
#include "util/fs.h"

enum { W = 64, H = 64 };

static char tdir[64];

/* ---- fixtures ---- */

static char *tpath(const char *rel)
{
	char *p = kiln_fs_join(tdir, rel);
	assert_non_null(p);
	return p;
}

static void save_px(const char *rel, const uint8_t *px, int w, int h, int bands)
{
	VipsImage *raw = vips_image_new_from_memory_copy(px, (size_t)w * h * bands, w, h, bands,
							 VIPS_FORMAT_UCHAR);
	VipsImage *im = NULL;
	char *p = tpath(rel);
	assert_non_null(raw);
	assert_int_equal(vips_copy(raw, &im, "interpretation",
				   bands <= 2 ? VIPS_INTERPRETATION_B_W : VIPS_INTERPRETATION_sRGB,
				   NULL), 0);
	assert_int_equal(vips_pngsave(im, p, "compression", 6, NULL), 0);
	g_object_unref(im);
	g_object_unref(raw);
	free(p);
}

/* A w x h RGBA layer: bg everywhere, fg in [x0,x1) x [y0,y1). */
static void rect_layer(const char *rel, int w, int h, const uint8_t bg[4], int x0, int y0, int x1,
		       int y1, const uint8_t fg[4])
{
	uint8_t *px = malloc((size_t)w * h * 4);
	assert_non_null(px);
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++)
			memcpy(px + ((size_t)y * w + x) * 4,
			       x >= x0 && x < x1 && y >= y0 && y < y1 ? fg : bg, 4);
	save_px(rel, px, w, h, 4);
	free(px);
}

/* A noisy RGBA layer (incompressible, so a cut file really cuts pixel data). */
static void noise_layer(const char *rel, uint32_t seed)
{
	uint8_t *px = malloc(W * H * 4);
	assert_non_null(px);
	for (size_t i = 0; i < W * H * 4; i++) {
		seed = seed * 1664525u + 1013904223u;
		px[i] = (uint8_t)(seed >> 24);
	}
	save_px(rel, px, W, H, 4);
	free(px);
}

/* A layer like an NFT trait, at its worst: rows of random runs (1..40 pixels) that are
 * transparent (with random colour bytes), opaque, or partial (random alpha 1..254), so the
 * engine's run index and every blend path meet every neighbour. */
static void sprite_layer(const char *rel, uint32_t seed)
{
	uint8_t *px = malloc(W * H * 4);
	assert_non_null(px);
	for (int y = 0; y < H; y++) {
		int x = 0;
		while (x < W) {
			int len, kind;
			seed = seed * 1664525u + 1013904223u;
			len = 1 + (int)((seed >> 8) % 40);
			kind = (int)((seed >> 20) % 3);
			for (int i = 0; i < len && x < W; i++, x++) {
				uint8_t *p = px + ((size_t)y * W + x) * 4;
				seed = seed * 1664525u + 1013904223u;
				p[0] = (uint8_t)(seed >> 24);
				p[1] = (uint8_t)(seed >> 16);
				p[2] = (uint8_t)(seed >> 8);
				p[3] = kind == 0 ? 0 : kind == 1 ? 255 : (uint8_t)(1 + (seed >> 4) % 254);
			}
		}
	}
	save_px(rel, px, W, H, 4);
	free(px);
}

static void write_bytes(const char *rel, const void *p, size_t n)
{
	struct kiln_error e;
	char *path = tpath(rel);
	assert_int_equal(kiln_fs_write_atomic(path, p, n, &e), 0);
	free(path);
}

static void read_bytes(const char *rel, struct kiln_buf *b)
{
	struct kiln_error e;
	char *path = tpath(rel);
	assert_int_equal(kiln_fs_read(path, b, &e), 0);
	free(path);
}

static const uint8_t CLEAR[4] = { 0, 0, 0, 0 };
static const uint8_t RED[4] = { 255, 0, 0, 255 };
static const uint8_t BLUE_HALF[4] = { 0, 0, 255, 128 };
static const uint8_t BLUE[4] = { 0, 0, 255, 255 };
static const uint8_t GREEN[4] = { 0, 255, 0, 255 };
static const uint8_t BASE_M[4] = { 200, 100, 50, 255 };
static const uint8_t TOP_M[4] = { 128, 255, 0, 255 };

static int group_setup(void **state)
{
	uint8_t *px;
	struct kiln_buf b = KILN_BUF_INIT;
	(void)state;
	snprintf(tdir, sizeof tdir, "/tmp/kiln-compose-XXXXXX");
	if (!mkdtemp(tdir))
		return -1;
	rect_layer("red.png", W, H, RED, 0, 0, 0, 0, RED);
	rect_layer("bluehalf.png", W, H, CLEAR, 16, 16, 48, 48, BLUE_HALF);
	rect_layer("blue.png", W, H, CLEAR, 16, 16, 48, 48, BLUE);
	rect_layer("green.png", W, H, CLEAR, 0, 0, 8, 8, GREEN);
	rect_layer("base_m.png", W, H, BASE_M, 0, 0, 0, 0, BASE_M);
	rect_layer("top_m.png", W, H, TOP_M, 0, 0, 0, 0, TOP_M);
	rect_layer("small.png", 32, 32, RED, 0, 0, 0, 0, RED);
	noise_layer("noise.png", 1);
	noise_layer("noise2.png", 2);
	for (uint32_t k = 0; k < 5; k++) {
		char nm[32];
		snprintf(nm, sizeof nm, "sprite%u.png", (unsigned)k);
		sprite_layer(nm, 100 + k);
	}
	/* RGB without alpha, and grey+alpha */
	px = malloc(W * H * 4);
	assert_non_null(px);
	memset(px, 90, W * H * 3);
	save_px("rgb.png", px, W, H, 3);
	for (size_t i = 0; i < W * H; i++) {
		px[2 * i] = 77;
		px[2 * i + 1] = 200;
	}
	save_px("greya.png", px, W, H, 2);
	for (size_t i = 0; i < W * H; i++)
		memcpy(px + 4 * i, (uint8_t[4]){ 77, 77, 77, 200 }, 4);
	save_px("greya_as_rgba.png", px, W, H, 4);
	free(px);
	{ /* a 16-bit RGBA PNG */
		char *p = tpath("deep.png");
		VipsImage *i8 = NULL, *i16 = NULL, *tagged = NULL;
		char *src = tpath("red.png");
		i8 = vips_image_new_from_file(src, NULL);
		assert_non_null(i8);
		assert_int_equal(vips_cast(i8, &i16, VIPS_FORMAT_USHORT, NULL), 0);
		assert_int_equal(vips_copy(i16, &tagged, "interpretation",
					   VIPS_INTERPRETATION_RGB16, NULL), 0);
		assert_int_equal(vips_pngsave(tagged, p, NULL), 0);
		g_object_unref(tagged);
		g_object_unref(i16);
		g_object_unref(i8);
		free(src);
		free(p);
	}
	/* corrupt: not an image at all; truncated: a valid PNG cut in half */
	write_bytes("corrupt.png", "this is not a png, it is a text file\n", 37);
	read_bytes("noise.png", &b);
	write_bytes("truncated.png", b.data, b.len / 2);
	kiln_buf_release(&b);
	return 0;
}

static int group_teardown(void **state)
{
	struct kiln_error e;
	(void)state;
	return kiln_fs_remove_tree(tdir, &e) ? -1 : 0;
}

/* ---- specs in memory, as kiln_spec_load() would make them (freed by kiln_spec_free) ---- */

struct tlayer {
	enum kiln_blend blend;
	double opacity;
	const char *files[6]; /* NULL entries: a trait without a file */
	size_t nfiles;
	int has_none;
};

static struct kiln_spec *mkspec(enum kiln_format fmt, const struct tlayer *tl, size_t n)
{
	struct kiln_spec *s = kiln_calloc(1, sizeof *s);
	assert_non_null(s);
	s->path = kiln_strdup("kiln.yaml");
	s->dir = kiln_strdup(tdir);
	s->name = kiln_strdup("Test");
	s->width = W;
	s->height = H;
	s->format = fmt;
	s->png_compression = 6;
	s->quality = 90;
	s->lossless = 1;
	s->layers = kiln_calloc(n + 1, sizeof *s->layers);
	assert_non_null(s->layers);
	s->nlayers = n;
	for (size_t l = 0; l < n; l++) {
		struct kiln_layer *ly = &s->layers[l];
		char nm[32];
		snprintf(nm, sizeof nm, "L%zu", l);
		ly->name = kiln_strdup(nm);
		ly->blend = tl[l].blend;
		ly->opacity = tl[l].opacity;
		ly->ntraits = tl[l].nfiles + (tl[l].has_none ? 1 : 0);
		ly->has_none = tl[l].has_none;
		ly->traits = kiln_calloc(ly->ntraits + 1, sizeof *ly->traits);
		assert_non_null(ly->traits);
		for (size_t t = 0; t < ly->ntraits; t++) {
			struct kiln_trait *tr = &ly->traits[t];
			if (t < tl[l].nfiles) {
				snprintf(nm, sizeof nm, "T%zu", t);
				tr->name = kiln_strdup(nm);
				tr->file = kiln_strdup(tl[l].files[t]);
			} else {
				tr->name = kiln_strdup("None");
				tr->is_none = 1;
			}
			tr->amount = 1;
		}
	}
	return s;
}

static void add_legendary(struct kiln_spec *s, const char *file)
{
	struct kiln_legendary *lg;
	s->legendaries = kiln_reallocarray(s->legendaries, s->nlegendaries + 1, sizeof *lg);
	assert_non_null(s->legendaries);
	lg = &s->legendaries[s->nlegendaries++];
	memset(lg, 0, sizeof *lg);
	lg->name = kiln_strdup("Legend");
	lg->file = kiln_strdup(file);
}

/* ---- helpers on results ---- */

/* An engine and the recipe module it takes its hashes from, paired as render pairs them. */
static struct {
	struct kiln_compose *c;
	struct kiln_recipe *r;
} pairs[16];

static struct kiln_compose *engine(const struct kiln_spec *s)
{
	struct kiln_compose *c = NULL;
	struct kiln_recipe *r = NULL;
	struct kiln_error e;
	int rc = kiln_recipe_new(&r, s, 0, &e);
	if (!rc)
		rc = kiln_compose_new(&c, s, r, &e);
	if (rc)
		fail_msg("kiln_compose_new: %s: %s", e.where, e.msg);
	for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
		if (!pairs[i].c) {
			pairs[i].c = c;
			pairs[i].r = r;
			return c;
		}
	fail_msg("too many engines at once");
	return NULL;
}

static struct kiln_recipe *recipe_for(struct kiln_compose *c)
{
	for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
		if (pairs[i].c == c)
			return pairs[i].r;
	fail_msg("no recipe for the engine");
	return NULL;
}

static void engine_free(struct kiln_compose *c)
{
	for (size_t i = 0; c && i < sizeof pairs / sizeof pairs[0]; i++)
		if (pairs[i].c == c) {
			kiln_recipe_free(pairs[i].r);
			pairs[i].c = NULL;
			pairs[i].r = NULL;
		}
	kiln_compose_free(c);
}

static int recipe_of(struct kiln_compose *c, const uint32_t *traits, char hex[65],
		     struct kiln_error *e)
{
	return kiln_recipe_compose(recipe_for(c), traits, hex, e);
}

static int legendary_recipe_of(struct kiln_compose *c, size_t legendary, char hex[65],
			       struct kiln_error *e)
{
	return kiln_recipe_compose_legendary(recipe_for(c), legendary, hex, e);
}

static void render(struct kiln_compose *c, const uint32_t *traits, struct kiln_buf *out)
{
	struct kiln_error e;
	int rc = kiln_compose_item(c, traits, out, &e);
	if (rc)
		fail_msg("kiln_compose_item: %s: %s", e.where, e.msg);
}

/* Decoded pixels of an encoded image (caller frees), with its band count. PNGs are always
 * given as RGBA: the engine writes an opaque image as RGB (image.alpha: auto), which is the
 * same picture. */
static uint8_t *pixels(const void *data, size_t len, int *bands)
{
	VipsImage *im = vips_image_new_from_buffer(data, len, "", NULL);
	uint8_t *px;
	size_t n;
	assert_non_null(im);
	if (len > 8 && !memcmp(data, "\x89PNG", 4) && vips_image_get_bands(im) == 3) {
		VipsImage *t = NULL;
		assert_int_equal(vips_bandjoin_const1(im, &t, 255.0, NULL), 0);
		g_object_unref(im);
		im = t;
	}
	assert_int_equal(vips_image_get_width(im), W);
	assert_int_equal(vips_image_get_height(im), H);
	assert_int_equal(vips_image_get_format(im), VIPS_FORMAT_UCHAR);
	*bands = vips_image_get_bands(im);
	px = vips_image_write_to_memory(im, &n);
	assert_non_null(px);
	assert_int_equal(n, (size_t)W * H * *bands);
	g_object_unref(im);
	return px;
}

static void assert_px(const uint8_t *px, int bands, int x, int y, int r, int g, int b, int a,
		      int tol)
{
	const uint8_t *p = px + ((size_t)y * W + x) * bands;
	int want[4] = { r, g, b, a };
	for (int i = 0; i < bands; i++)
		if (abs(p[i] - want[i]) > tol)
			fail_msg("pixel (%d,%d) band %d: got %d, want %d±%d", x, y, i, p[i],
				 want[i], tol);
}

/* The same layers composited directly with vips_composite: the reference. */
static uint8_t *reference(const char *const *files, const VipsBlendMode *modes, int n)
{
	VipsImage *in[8], *out = NULL;
	uint8_t *px;
	size_t len;
	for (int i = 0; i < n; i++) {
		char *p = tpath(files[i]);
		in[i] = vips_image_new_from_file(p, NULL);
		assert_non_null(in[i]);
		free(p);
	}
	assert_int_equal(vips_composite(in, &out, n, (int *)modes + 1, NULL), 0);
	px = vips_image_write_to_memory(out, &len);
	assert_int_equal(len, (size_t)W * H * 4);
	g_object_unref(out);
	for (int i = 0; i < n; i++)
		g_object_unref(in[i]);
	return px;
}

/* ---- tests ---- */

static void test_over_three_layers(void **state)
{
	struct tlayer tl[] = {
		{ KILN_BLEND_OVER, 1, { "red.png" }, 1, 0 },
		{ KILN_BLEND_OVER, 1, { "bluehalf.png" }, 1, 0 },
		{ KILN_BLEND_OVER, 1, { "green.png" }, 1, 0 },
	};
	static const char *const files[] = { "red.png", "bluehalf.png", "green.png" };
	static const VipsBlendMode modes[] = { VIPS_BLEND_MODE_OVER, VIPS_BLEND_MODE_OVER,
					       VIPS_BLEND_MODE_OVER };
	struct kiln_spec *s = mkspec(KILN_FORMAT_PNG, tl, 3);
	struct kiln_compose *c = engine(s);
	struct kiln_buf out = KILN_BUF_INIT;
	uint32_t traits[3] = { 0, 0, 0 };
	uint8_t *px, *ref;
	int bands;
	(void)state;
	render(c, traits, &out);
	assert_memory_equal(out.data, "\x89PNG", 4);
	px = pixels(out.data, out.len, &bands);
	assert_int_equal(bands, 4);
	assert_px(px, bands, 2, 2, 0, 255, 0, 255, 0);      /* green on top */
	assert_px(px, bands, 60, 60, 255, 0, 0, 255, 0);    /* red only */
	/* blue at alpha 128/255 over opaque red: R = 255*(127/255) = 127, B = 128 */
	assert_px(px, bands, 32, 32, 127, 0, 128, 255, 1);
	ref = reference(files, modes, 3);
	assert_memory_equal(px, ref, (size_t)W * H * 4);
	g_free(ref);
	g_free(px);
	kiln_buf_release(&out);
	engine_free(c);
	kiln_spec_free(s);
}

static void test_opacity_half(void **state)
{
	struct tlayer tl[] = {
		{ KILN_BLEND_OVER, 1, { "red.png" }, 1, 0 },
		{ KILN_BLEND_OVER, 0.5, { "blue.png" }, 1, 0 },
	};
	struct kiln_spec *s = mkspec(KILN_FORMAT_PNG, tl, 2);
	struct kiln_compose *c = engine(s);
	struct kiln_buf out = KILN_BUF_INIT;
	uint32_t traits[2] = { 0, 0 };
	uint8_t *px;
	int bands;
	(void)state;
	render(c, traits, &out);
	px = pixels(out.data, out.len, &bands);
	/* opaque blue at half opacity: half of each colour */
	assert_px(px, bands, 32, 32, 128, 0, 127, 255, 1);
	assert_px(px, bands, 2, 2, 255, 0, 0, 255, 0);
	g_free(px);
	kiln_buf_release(&out);
	engine_free(c);
	kiln_spec_free(s);
}

static void test_opacity_zero_draws_nothing(void **state)
{
	struct tlayer tl[] = {
		{ KILN_BLEND_OVER, 1, { "red.png" }, 1, 0 },
		{ KILN_BLEND_OVER, 0, { "blue.png" }, 1, 0 },
	};
	struct kiln_spec *s = mkspec(KILN_FORMAT_PNG, tl, 2);
	struct kiln_compose *c = engine(s);
	struct kiln_buf out = KILN_BUF_INIT;
	uint32_t traits[2] = { 0, 0 };
	uint8_t *px;
	int bands;
	(void)state;
	render(c, traits, &out);
	px = pixels(out.data, out.len, &bands);
	assert_px(px, bands, 32, 32, 255, 0, 0, 255, 0);
	g_free(px);
	kiln_buf_release(&out);
	engine_free(c);
	kiln_spec_free(s);
}

static void test_multiply(void **state)
{
	struct tlayer tl[] = {
		{ KILN_BLEND_OVER, 1, { "base_m.png" }, 1, 0 },
		{ KILN_BLEND_MULTIPLY, 1, { "top_m.png" }, 1, 0 },
	};
	struct kiln_spec *s = mkspec(KILN_FORMAT_PNG, tl, 2);
	struct kiln_compose *c = engine(s);
	struct kiln_buf out = KILN_BUF_INIT;
	uint32_t traits[2] = { 0, 0 };
	uint8_t *px;
	int bands;
	(void)state;
	render(c, traits, &out);
	px = pixels(out.data, out.len, &bands);
	/* (200,100,50) x (128,255,0) / 255 = (100.4, 100, 0) */
	assert_px(px, bands, 10, 10, 100, 100, 0, 255, 1);
	g_free(px);
	kiln_buf_release(&out);
	engine_free(c);
	kiln_spec_free(s);
}

/* Every kiln blend mode maps to the libvips mode of the same name. */
static void test_blend_modes_match_vips(void **state)
{
	static const VipsBlendMode want[] = {
		[KILN_BLEND_OVER] = VIPS_BLEND_MODE_OVER,
		[KILN_BLEND_MULTIPLY] = VIPS_BLEND_MODE_MULTIPLY,
		[KILN_BLEND_SCREEN] = VIPS_BLEND_MODE_SCREEN,
		[KILN_BLEND_OVERLAY] = VIPS_BLEND_MODE_OVERLAY,
		[KILN_BLEND_DARKEN] = VIPS_BLEND_MODE_DARKEN,
		[KILN_BLEND_LIGHTEN] = VIPS_BLEND_MODE_LIGHTEN,
		[KILN_BLEND_ADD] = VIPS_BLEND_MODE_ADD,
		[KILN_BLEND_SOFT_LIGHT] = VIPS_BLEND_MODE_SOFT_LIGHT,
		[KILN_BLEND_HARD_LIGHT] = VIPS_BLEND_MODE_HARD_LIGHT,
		[KILN_BLEND_DIFFERENCE] = VIPS_BLEND_MODE_DIFFERENCE,
	};
	static const char *const files[] = { "noise.png", "noise2.png" };
	(void)state;
	for (int b = KILN_BLEND_OVER; b <= KILN_BLEND_DIFFERENCE; b++) {
		struct tlayer tl[] = {
			{ KILN_BLEND_OVER, 1, { "noise.png" }, 1, 0 },
			{ (enum kiln_blend)b, 1, { "noise2.png" }, 1, 0 },
		};
		VipsBlendMode modes[2] = { VIPS_BLEND_MODE_OVER, want[b] };
		struct kiln_spec *s = mkspec(KILN_FORMAT_PNG, tl, 2);
		struct kiln_compose *c = engine(s);
		struct kiln_buf out = KILN_BUF_INIT;
		uint32_t traits[2] = { 0, 0 };
		uint8_t *px, *ref;
		int bands;
		render(c, traits, &out);
		px = pixels(out.data, out.len, &bands);
		ref = reference(files, modes, 2);
		if (memcmp(px, ref, (size_t)W * H * 4) != 0)
			fail_msg("blend mode %d differs from libvips' composite", b);
		g_free(px);
		g_free(ref);
		kiln_buf_release(&out);
		engine_free(c);
		kiln_spec_free(s);
	}
}

static void test_none_skipped(void **state)
{
	/* layer 1: [blue, (no file), None]; layer 2: [green, None] */
	struct tlayer tl[] = {
		{ KILN_BLEND_OVER, 1, { "red.png" }, 1, 0 },
		{ KILN_BLEND_OVER, 1, { "blue.png", NULL }, 2, 1 },
		{ KILN_BLEND_OVER, 1, { "green.png" }, 1, 1 },
	};
	struct tlayer only[] = { { KILN_BLEND_OVER, 1, { "red.png" }, 1, 0 } };
	struct kiln_spec *s = mkspec(KILN_FORMAT_PNG, tl, 3);
	struct kiln_spec *s1 = mkspec(KILN_FORMAT_PNG, only, 1);
	struct kiln_compose *c = engine(s), *c1 = engine(s1);
	struct kiln_buf a = KILN_BUF_INIT, b = KILN_BUF_INIT, r = KILN_BUF_INIT;
	uint32_t none[3] = { 0, 2, 1 }, nofile[3] = { 0, 1, 1 }, red[1] = { 0 };
	char h1[65], h2[65];
	struct kiln_error e;
	(void)state;
	render(c, none, &a);
	render(c, nofile, &b);
	render(c1, red, &r);
	/* nothing drawn for None or a file-less value: exactly the red layer alone */
	assert_int_equal(a.len, r.len);
	assert_memory_equal(a.data, r.data, r.len);
	assert_int_equal(b.len, r.len);
	assert_memory_equal(b.data, r.data, r.len);
	assert_int_equal(recipe_of(c, none, h1, &e), 0);
	assert_int_equal(recipe_of(c, nofile, h2, &e), 0);
	assert_string_equal(h1, h2);
	kiln_buf_release(&a);
	kiln_buf_release(&b);
	kiln_buf_release(&r);
	engine_free(c);
	engine_free(c1);
	kiln_spec_free(s);
	kiln_spec_free(s1);
}

static void test_all_none_is_transparent(void **state)
{
	struct tlayer tl[] = { { KILN_BLEND_OVER, 1, { "red.png" }, 1, 1 } };
	struct kiln_spec *s = mkspec(KILN_FORMAT_PNG, tl, 1);
	struct kiln_compose *c = engine(s);
	struct kiln_buf out = KILN_BUF_INIT;
	uint32_t traits[1] = { 1 };
	uint8_t *px;
	int bands;
	(void)state;
	render(c, traits, &out);
	px = pixels(out.data, out.len, &bands);
	assert_int_equal(bands, 4);
	assert_px(px, bands, 5, 5, 0, 0, 0, 0, 0);
	g_free(px);
	kiln_buf_release(&out);
	engine_free(c);
	kiln_spec_free(s);
}

static void test_grey_alpha_accepted(void **state)
{
	struct tlayer tl[] = { { KILN_BLEND_OVER, 1, { "greya.png", "greya_as_rgba.png" }, 2, 0 } };
	struct kiln_spec *s = mkspec(KILN_FORMAT_PNG, tl, 1);
	struct kiln_compose *c = engine(s);
	struct kiln_buf a = KILN_BUF_INIT, b = KILN_BUF_INIT;
	uint32_t t0[1] = { 0 }, t1[1] = { 1 };
	(void)state;
	render(c, t0, &a);
	render(c, t1, &b);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.data, b.data, a.len);
	kiln_buf_release(&a);
	kiln_buf_release(&b);
	engine_free(c);
	kiln_spec_free(s);
}

/* ---- determinism ---- */

static const struct tlayer det_layers[] = {
	{ KILN_BLEND_OVER, 1, { "red.png", "noise.png" }, 2, 0 },
	{ KILN_BLEND_MULTIPLY, 0.7, { "noise2.png", "bluehalf.png" }, 2, 1 },
	{ KILN_BLEND_OVER, 1, { "green.png" }, 1, 1 },
};
#define NDET 12
static const uint32_t det_items[NDET][3] = {
	{ 0, 0, 0 }, { 1, 0, 0 }, { 0, 1, 0 }, { 1, 1, 0 }, { 0, 2, 0 }, { 1, 2, 0 },
	{ 0, 0, 1 }, { 1, 0, 1 }, { 0, 1, 1 }, { 1, 1, 1 }, { 0, 2, 1 }, { 1, 2, 1 },
};

struct det_job {
	struct kiln_compose *c;
	struct kiln_buf out[NDET];
	int backwards;
	int rc;
	struct kiln_error e;
};

static void *det_thread(void *arg)
{
	struct det_job *j = arg;
	/* each thread walks the items in its own order, so decoding races happen */
	for (int k = 0; k < NDET && !j->rc; k++) {
		int i = j->backwards ? NDET - 1 - k : k;
		j->rc = kiln_compose_item(j->c, det_items[i], &j->out[i], &j->e);
	}
	return NULL;
}

static void test_byte_identical(void **state)
{
	struct kiln_spec *s = mkspec(KILN_FORMAT_PNG, det_layers, 3);
	struct kiln_compose *c1 = engine(s), *c2 = engine(s), *c3 = engine(s);
	struct det_job jobs[2];
	pthread_t th[2];
	(void)state;
	for (int t = 0; t < 2; t++) {
		memset(&jobs[t], 0, sizeof jobs[t]);
		jobs[t].c = c3;
		for (int i = 0; i < NDET; i++)
			kiln_buf_init(&jobs[t].out[i], 0);
	}
	jobs[1].backwards = 1;
	for (int t = 0; t < 2; t++)
		assert_int_equal(pthread_create(&th[t], NULL, det_thread, &jobs[t]), 0);
	for (int t = 0; t < 2; t++)
		assert_int_equal(pthread_join(th[t], NULL), 0);
	for (int t = 0; t < 2; t++)
		if (jobs[t].rc)
			fail_msg("thread %d: %s: %s", t, jobs[t].e.where, jobs[t].e.msg);
	for (int i = 0; i < NDET; i++) {
		struct kiln_buf a = KILN_BUF_INIT, b = KILN_BUF_INIT;
		render(c1, det_items[i], &a);
		render(c2, det_items[i], &b);
		assert_int_equal(a.len, b.len);
		assert_memory_equal(a.data, b.data, a.len);
		for (int t = 0; t < 2; t++) {
			assert_int_equal(jobs[t].out[i].len, a.len);
			assert_memory_equal(jobs[t].out[i].data, a.data, a.len);
		}
		/* distinct items differ */
		if (i > 0) {
			struct kiln_buf p = KILN_BUF_INIT;
			render(c1, det_items[i - 1], &p);
			assert_false(p.len == a.len && memcmp(p.data, a.data, a.len) == 0);
			kiln_buf_release(&p);
		}
		kiln_buf_release(&a);
		kiln_buf_release(&b);
	}
	for (int t = 0; t < 2; t++)
		for (int i = 0; i < NDET; i++)
			kiln_buf_release(&jobs[t].out[i]);
	engine_free(c1);
	engine_free(c2);
	engine_free(c3);
	kiln_spec_free(s);
}

/* ---- bad layer files ---- */

static void expect_bad_layer(const char *file, int code, const char *needle)
{
	struct tlayer tl[] = {
		{ KILN_BLEND_OVER, 1, { "red.png" }, 1, 0 },
		{ KILN_BLEND_OVER, 1, { "green.png", file }, 2, 0 },
	};
	struct kiln_spec *s = mkspec(KILN_FORMAT_PNG, tl, 2);
	struct kiln_compose *c = engine(s);
	struct kiln_buf out = KILN_BUF_INIT;
	struct kiln_error e, e2;
	uint32_t bad[2] = { 0, 1 }, good[2] = { 0, 0 };
	int rc;
	kiln_error_clear(&e);
	rc = kiln_compose_item(c, bad, &out, &e);
	assert_int_equal(rc, code);
	assert_int_equal(e.code, code);
	assert_string_equal(e.where, file);
	if (!strstr(e.msg, needle))
		fail_msg("%s: message \"%s\" lacks \"%s\"", file, e.msg, needle);
	/* every item using it fails with the same message; the others render */
	rc = kiln_compose_item(c, bad, &out, &e2);
	assert_int_equal(rc, code);
	assert_string_equal(e2.where, e.where);
	assert_string_equal(e2.msg, e.msg);
	render(c, good, &out);
	assert_true(out.len > 0);
	kiln_buf_release(&out);
	engine_free(c);
	kiln_spec_free(s);
}

static void test_corrupt(void **state)
{
	(void)state;
	expect_bad_layer("corrupt.png", KILN_E_IMAGE, "cannot read the file as an image");
}

static void test_truncated(void **state)
{
	(void)state;
	expect_bad_layer("truncated.png", KILN_E_IMAGE, "truncated or corrupt");
}

static void test_wrong_size(void **state)
{
	(void)state;
	expect_bad_layer("small.png", KILN_E_IMAGE,
			 "expected 64x64 RGBA PNG, got 32x32 RGBA; re-export the layer at the "
			 "collection size");
}

static void test_rgb_without_alpha(void **state)
{
	(void)state;
	expect_bad_layer("rgb.png", KILN_E_IMAGE,
			 "expected 64x64 RGBA PNG, got 64x64 RGB; re-export the layer with an "
			 "alpha channel");
}

static void test_sixteen_bit(void **state)
{
	(void)state;
	expect_bad_layer("deep.png", KILN_E_IMAGE,
			 "expected 64x64 RGBA PNG, got 64x64 16-bit RGBA; re-export the layer at 8 "
			 "bits per channel");
}

static void test_missing(void **state)
{
	struct tlayer tl[] = { { KILN_BLEND_OVER, 1, { "red.png", "nope/missing.png" }, 2, 0 } };
	struct kiln_spec *s = mkspec(KILN_FORMAT_PNG, tl, 1);
	struct kiln_compose *c = engine(s);
	struct kiln_error e;
	uint32_t bad[1] = { 1 }, good[1] = { 0 };
	char hex[65];
	(void)state;
	expect_bad_layer("nope/missing.png", KILN_E_IO, "cannot read the layer file");
	assert_int_equal(recipe_of(c, bad, hex, &e), KILN_E_IO);
	assert_string_equal(e.where, "nope/missing.png");
	assert_int_equal(recipe_of(c, good, hex, &e), 0);
	engine_free(c);
	kiln_spec_free(s);
}

/* A file is decoded once per engine: its result (good or bad) does not change afterwards. */
static void test_decoded_once(void **state)
{
	struct tlayer tl[] = { { KILN_BLEND_OVER, 1, { "once.png", "oncebad.png" }, 2, 0 } };
	struct kiln_spec *s;
	struct kiln_compose *c;
	struct kiln_buf a = KILN_BUF_INIT, b = KILN_BUF_INIT, bytes = KILN_BUF_INIT;
	struct kiln_error e, e2;
	uint32_t good[1] = { 0 }, bad[1] = { 1 };
	char *p;
	(void)state;
	read_bytes("red.png", &bytes);
	write_bytes("once.png", bytes.data, bytes.len);
	write_bytes("oncebad.png", bytes.data, bytes.len / 2);
	s = mkspec(KILN_FORMAT_PNG, tl, 1);
	c = engine(s);
	render(c, good, &a);
	assert_int_equal(kiln_compose_item(c, bad, &b, &e), KILN_E_IMAGE);
	p = tpath("once.png");
	assert_int_equal(unlink(p), 0); /* gone from disk: the decoded pixels are still used */
	free(p);
	kiln_buf_reset(&b);
	render(c, good, &b);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.data, b.data, a.len);
	write_bytes("oncebad.png", bytes.data, bytes.len); /* fixed on disk: still the old error */
	assert_int_equal(kiln_compose_item(c, bad, &b, &e2), KILN_E_IMAGE);
	assert_string_equal(e.msg, e2.msg);
	engine_free(c);
	/* a new engine sees the files as they are now */
	write_bytes("once.png", bytes.data, bytes.len);
	c = engine(s);
	render(c, bad, &b);
	engine_free(c);
	kiln_spec_free(s);
	kiln_buf_release(&a);
	kiln_buf_release(&b);
	kiln_buf_release(&bytes);
}

/* The file must still be the one that was hashed when it is decoded. */
static void test_changed_after_hash(void **state)
{
	struct tlayer tl[] = { { KILN_BLEND_OVER, 1, { "chg.png" }, 1, 0 } };
	struct kiln_spec *s;
	struct kiln_compose *c;
	struct kiln_buf b = KILN_BUF_INIT, out = KILN_BUF_INIT;
	struct kiln_error e;
	uint32_t t[1] = { 0 };
	(void)state;
	read_bytes("red.png", &b);
	write_bytes("chg.png", b.data, b.len);
	s = mkspec(KILN_FORMAT_PNG, tl, 1);
	c = engine(s);
	kiln_buf_reset(&b);
	read_bytes("green.png", &b);
	write_bytes("chg.png", b.data, b.len);
	assert_int_equal(kiln_compose_item(c, t, &out, &e), KILN_E_IMAGE);
	assert_string_equal(e.where, "chg.png");
	assert_non_null(strstr(e.msg, "changed"));
	engine_free(c);
	kiln_spec_free(s);
	kiln_buf_release(&b);
	kiln_buf_release(&out);
}

/* ---- recipes ---- */

static void recipe(struct kiln_compose *c, const uint32_t *t, char hex[65])
{
	struct kiln_error e;
	int rc = recipe_of(c, t, hex, &e);
	if (rc)
		fail_msg("recipe: %s: %s", e.where, e.msg);
	assert_int_equal(strlen(hex), 64);
}

static void test_recipe(void **state)
{
	struct tlayer tl[] = {
		{ KILN_BLEND_OVER, 1, { "rcp_a.png", "rcp_b.png" }, 2, 0 },
		{ KILN_BLEND_OVER, 1, { "rcp_c.png" }, 1, 1 },
	};
	struct kiln_spec *s;
	struct kiln_compose *c;
	struct kiln_buf b = KILN_BUF_INIT;
	uint32_t t00[2] = { 0, 0 }, t10[2] = { 1, 0 }, t01[2] = { 0, 1 };
	char h00[65], h10[65], h01[65], x[65];
	(void)state;
	read_bytes("red.png", &b);
	write_bytes("rcp_a.png", b.data, b.len);
	write_bytes("rcp_c.png", b.data, b.len);
	kiln_buf_reset(&b);
	read_bytes("green.png", &b);
	write_bytes("rcp_b.png", b.data, b.len);
	s = mkspec(KILN_FORMAT_PNG, tl, 2);
	c = engine(s);
	recipe(c, t00, h00);
	recipe(c, t10, h10);
	recipe(c, t01, h01);
	assert_string_not_equal(h00, h10);
	assert_string_not_equal(h00, h01);
	recipe(c, t00, x);
	assert_string_equal(x, h00);
	engine_free(c);

	/* same files, new engine: same recipes */
	c = engine(s);
	recipe(c, t00, x);
	assert_string_equal(x, h00);
	engine_free(c);

	/* rcp_b's bytes change: only items using it change */
	kiln_buf_reset(&b);
	read_bytes("blue.png", &b);
	write_bytes("rcp_b.png", b.data, b.len);
	c = engine(s);
	recipe(c, t00, x);
	assert_string_equal(x, h00);
	recipe(c, t01, x);
	assert_string_equal(x, h01);
	recipe(c, t10, x);
	assert_string_not_equal(x, h10);
	engine_free(c);

	/* settings that change bytes change the recipe */
	s->png_compression = 9;
	c = engine(s);
	recipe(c, t00, x);
	assert_string_not_equal(x, h00);
	engine_free(c);
	s->png_compression = 6;
	s->layers[1].opacity = 0.5;
	c = engine(s);
	recipe(c, t01, x);
	assert_string_equal(x, h01); /* layer 1 is None here */
	recipe(c, t00, x);
	assert_string_not_equal(x, h00);
	engine_free(c);
	s->layers[1].opacity = 1;
	s->layers[1].blend = KILN_BLEND_SCREEN;
	c = engine(s);
	recipe(c, t00, x);
	assert_string_not_equal(x, h00);
	engine_free(c);

	kiln_spec_free(s);
	kiln_buf_release(&b);
}

static void test_trait_out_of_range(void **state)
{
	struct tlayer tl[] = { { KILN_BLEND_OVER, 1, { "red.png" }, 1, 0 } };
	struct kiln_spec *s = mkspec(KILN_FORMAT_PNG, tl, 1);
	struct kiln_compose *c = engine(s);
	struct kiln_buf out = KILN_BUF_INIT;
	struct kiln_error e;
	uint32_t t[1] = { 5 };
	char hex[65];
	(void)state;
	assert_int_equal(kiln_compose_item(c, t, &out, &e), KILN_E_STATE);
	assert_string_equal(e.where, "L0");
	assert_int_equal(recipe_of(c, t, hex, &e), KILN_E_STATE);
	engine_free(c);
	kiln_spec_free(s);
}

/* ---- formats ---- */

static void test_webp_lossless_and_jpeg(void **state)
{
	struct tlayer tl[] = {
		{ KILN_BLEND_OVER, 1, { "red.png" }, 1, 1 },
		{ KILN_BLEND_OVER, 1, { "bluehalf.png" }, 1, 0 },
	};
	struct kiln_spec *s = mkspec(KILN_FORMAT_PNG, tl, 2);
	struct kiln_compose *c;
	struct kiln_buf png = KILN_BUF_INIT, webp = KILN_BUF_INIT, jpg = KILN_BUF_INIT;
	uint32_t t[2] = { 0, 0 }, clear[2] = { 1, 0 };
	char hpng[65], hwebp[65], hjpg[65];
	uint8_t *a, *b;
	int ba, bb;
	(void)state;
	c = engine(s);
	render(c, t, &png);
	recipe(c, t, hpng);
	engine_free(c);
	s->format = KILN_FORMAT_WEBP;
	c = engine(s);
	render(c, t, &webp);
	recipe(c, t, hwebp);
	engine_free(c);
	assert_memory_equal(webp.data, "RIFF", 4);
	a = pixels(png.data, png.len, &ba);
	b = pixels(webp.data, webp.len, &bb);
	/* lossless; libwebp leaves out an alpha plane that is opaque everywhere */
	assert_true(bb == 3 || bb == 4);
	for (size_t i = 0; i < (size_t)W * H; i++)
		assert_memory_equal(a + i * 4, b + i * bb, (size_t)bb);
	g_free(a);
	g_free(b);

	/* JPEG: flattened on white; transparent areas come out white */
	s->format = KILN_FORMAT_JPEG;
	c = engine(s);
	render(c, clear, &jpg);
	recipe(c, t, hjpg);
	engine_free(c);
	assert_memory_equal(jpg.data, "\xff\xd8\xff", 3);
	a = pixels(jpg.data, jpg.len, &ba);
	assert_int_equal(ba, 3);
	assert_px(a, ba, 2, 2, 255, 255, 255, 0, 3);
	/* half blue on white: (127, 127, 255) */
	assert_px(a, ba, 32, 32, 127, 127, 255, 0, 4);
	g_free(a);
	assert_string_not_equal(hpng, hwebp);
	assert_string_not_equal(hpng, hjpg);
	kiln_buf_release(&png);
	kiln_buf_release(&webp);
	kiln_buf_release(&jpg);
	kiln_spec_free(s);
}


/* ---- the integer-free fast path against vips_composite, and the output options ---- */

static void check_over_exact(const char *const *files, int n)
{
	struct tlayer tl[6];
	VipsBlendMode modes[6];
	struct kiln_spec *s;
	struct kiln_compose *c;
	struct kiln_buf out = KILN_BUF_INIT;
	uint32_t traits[6] = { 0 };
	uint8_t *px, *ref;
	int bands;
	memset(tl, 0, sizeof tl);
	for (int i = 0; i < n; i++) {
		tl[i].blend = KILN_BLEND_OVER;
		tl[i].opacity = 1;
		tl[i].files[0] = files[i];
		tl[i].nfiles = 1;
		modes[i] = VIPS_BLEND_MODE_OVER;
	}
	s = mkspec(KILN_FORMAT_PNG, tl, (size_t)n);
	s->png_keep_alpha = 1;
	c = engine(s);
	render(c, traits, &out);
	px = pixels(out.data, out.len, &bands);
	assert_int_equal(bands, 4);
	ref = reference(files, modes, n);
	/* exact: the engine does libvips' float arithmetic, only where it matters */
	for (size_t i = 0; i < (size_t)W * H * 4; i++)
		if (px[i] != ref[i])
			fail_msg("%s...: pixel %zu band %zu: engine %d, vips_composite %d", files[0],
				 i / 4, i % 4, px[i], ref[i]);
	g_free(ref);
	g_free(px);
	kiln_buf_release(&out);
	engine_free(c);
	kiln_spec_free(s);
}

static void test_over_exact_sprites(void **state)
{
	static const char *const opaque_base[] = { "red.png", "sprite0.png", "sprite1.png",
						   "sprite2.png", "sprite3.png", "sprite4.png" };
	static const char *const sprite_base[] = { "sprite4.png", "sprite2.png", "sprite0.png" };
	static const char *const two[] = { "sprite1.png", "sprite3.png" };
	static const char *const noise[] = { "noise.png", "noise2.png", "bluehalf.png" };
	(void)state;
	check_over_exact(opaque_base, 6);
	check_over_exact(sprite_base, 3); /* a partly transparent base */
	check_over_exact(two, 2);
	check_over_exact(noise, 3);
}

/* Decode any image to RGBA (caller frees); *w, *h, *bands as in the file. */
static uint8_t *decode_any(const void *data, size_t len, int *w, int *h, int *bands)
{
	VipsImage *im = vips_image_new_from_buffer(data, len, "", NULL), *t = NULL;
	uint8_t *px;
	size_t n;
	assert_non_null(im);
	*w = vips_image_get_width(im);
	*h = vips_image_get_height(im);
	*bands = vips_image_get_bands(im);
	if (*bands == 3) {
		assert_int_equal(vips_bandjoin_const1(im, &t, 255.0, NULL), 0);
		g_object_unref(im);
		im = t;
	}
	px = vips_image_write_to_memory(im, &n);
	assert_int_equal(n, (size_t)*w * *h * 4);
	g_object_unref(im);
	return px;
}

/* item {base, top} with spec tweaks; returns the encoded bytes in out */
static void render_with(struct kiln_spec *s, struct kiln_buf *out, char hex[65])
{
	struct kiln_compose *c = engine(s);
	uint32_t t[2] = { 0, 0 };
	struct kiln_error e;
	kiln_buf_reset(out);
	render(c, t, out);
	assert_int_equal(recipe_of(c, t, hex, &e), 0);
	engine_free(c);
}

static void test_output_options(void **state)
{
	struct tlayer tl[] = {
		{ KILN_BLEND_OVER, 1, { "red.png" }, 1, 0 },
		{ KILN_BLEND_OVER, 1, { "sprite0.png" }, 1, 0 },
	};
	struct tlayer few[] = {
		{ KILN_BLEND_OVER, 1, { "red.png" }, 1, 0 },
		{ KILN_BLEND_OVER, 1, { "bluehalf.png" }, 1, 0 },
	};
	struct kiln_spec *s = mkspec(KILN_FORMAT_PNG, tl, 2);
	struct kiln_spec *s2 = mkspec(KILN_FORMAT_PNG, few, 2);
	struct kiln_buf a = KILN_BUF_INIT, b = KILN_BUF_INIT;
	char ha[65], hb[65];
	uint8_t *pa, *pb;
	int w, h, bands, w2, h2, b2;
	(void)state;
	/* default: opaque result written as RGB (IHDR colour type 2) */
	render_with(s, &a, ha);
	assert_int_equal((uint8_t)a.data[25], 2);
	pa = decode_any(a.data, a.len, &w, &h, &bands);
	assert_int_equal(bands, 3);
	/* every filter and level gives the same pixels, its own recipe */
	for (int f = 0; f <= 5; f++) {
		s->png_filter = f;
		s->png_compression = f * 2;
		s->png_keep_alpha = f & 1;
		render_with(s, &b, hb);
		assert_int_equal((uint8_t)b.data[25], (f & 1) ? 6 : 2);
		pb = decode_any(b.data, b.len, &w2, &h2, &b2);
		assert_memory_equal(pa, pb, (size_t)W * H * 4);
		if (f)
			assert_string_not_equal(ha, hb);
		g_free(pb);
	}
	s->png_filter = 0;
	s->png_compression = 6;
	s->png_keep_alpha = 0;
	/* nearest scale: every source pixel becomes a k x k block */
	s->scale = 3;
	render_with(s, &b, hb);
	assert_string_not_equal(ha, hb);
	pb = decode_any(b.data, b.len, &w2, &h2, &b2);
	assert_int_equal(w2, 3 * W);
	assert_int_equal(h2, 3 * H);
	for (int y = 0; y < h2; y++)
		for (int x = 0; x < w2; x++)
			assert_memory_equal(pb + ((size_t)y * w2 + x) * 4,
					    pa + ((size_t)(y / 3) * W + x / 3) * 4, 4);
	g_free(pb);
	s->scale = 0;
	/* pixelate 5 (not a divisor of the size: the last blocks are narrower): every block is
	 * its centre pixel of the plain composite; with scale 2 after it */
	s->pixelate = 5;
	render_with(s, &b, hb);
	assert_string_not_equal(ha, hb);
	pb = decode_any(b.data, b.len, &w2, &h2, &b2);
	assert_int_equal(w2, W);
	for (int y = 0; y < H; y++)
		for (int x = 0; x < W; x++) {
			int by = y / 5 * 5, bx = x / 5 * 5;
			int cy = by + (by + 5 <= H ? 5 : H - by) / 2;
			int cx = bx + (bx + 5 <= W ? 5 : W - bx) / 2;
			assert_memory_equal(pb + ((size_t)y * W + x) * 4,
					    pa + ((size_t)cy * W + cx) * 4, 4);
		}
	g_free(pb);
	s->scale = 2;
	render_with(s, &b, hb);
	pb = decode_any(b.data, b.len, &w2, &h2, &b2);
	assert_int_equal(w2, 2 * W);
	for (int y = 0; y < h2; y++)
		for (int x = 0; x < w2; x++) {
			int by = y / 2 / 5 * 5, bx = x / 2 / 5 * 5;
			int cy = by + (by + 5 <= H ? 5 : H - by) / 2;
			int cx = bx + (bx + 5 <= W ? 5 : W - bx) / 2;
			assert_memory_equal(pb + ((size_t)y * w2 + x) * 4,
					    pa + ((size_t)cy * W + cx) * 4, 4);
		}
	g_free(pb);
	s->scale = 0;
	s->pixelate = 0;
	g_free(pa);

	/* exact palette: few colours, lossless, colour type 3 with tRNS for the half blue */
	render_with(s2, &a, ha);
	pa = decode_any(a.data, a.len, &w, &h, &bands);
	s2->png_palette = 1;
	render_with(s2, &b, hb);
	assert_int_equal((uint8_t)b.data[25], 3);
	assert_string_not_equal(ha, hb);
	pb = decode_any(b.data, b.len, &w2, &h2, &b2);
	assert_memory_equal(pa, pb, (size_t)W * H * 4);
	g_free(pb);
	/* palette and scale together */
	s2->scale = 2;
	render_with(s2, &b, hb);
	pb = decode_any(b.data, b.len, &w2, &h2, &b2);
	assert_int_equal(w2, 2 * W);
	for (int y = 0; y < h2; y++)
		for (int x = 0; x < w2; x++)
			assert_memory_equal(pb + ((size_t)y * w2 + x) * 4,
					    pa + ((size_t)(y / 2) * W + x / 2) * 4, 4);
	g_free(pb);
	g_free(pa);

	/* libimagequant: more colours than the palette; stable bytes, at most 16 colours */
	s->png_palette = 1;
	s->png_colors = 16;
	s->png_dither = 1;
	render_with(s, &a, ha);
	render_with(s, &b, hb);
	assert_int_equal((uint8_t)a.data[25], 3);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.data, b.data, a.len);
	assert_int_equal(((uint8_t)a.data[33 + 0] << 24 | (uint8_t)a.data[34] << 16 |
			  (uint8_t)a.data[35] << 8 | (uint8_t)a.data[36]) <= 16 * 3, 1);
	pa = decode_any(a.data, a.len, &w, &h, &bands);
	assert_int_equal(w, W);
	g_free(pa);
	s->png_dither = 0;
	render_with(s, &b, hb);
	assert_string_not_equal(ha, hb);

	kiln_buf_release(&a);
	kiln_buf_release(&b);
	kiln_spec_free(s);
	kiln_spec_free(s2);
}

static void test_spec_image_options(void **state)
{
	static const char ok[] =
		"collection: {name: T, size: 1}\n"
		"image: {width: 8, height: 8, format: png, compression: 11, filter: paeth,\n"
		"        alpha: keep, palette: {colors: 16, dither: true},\n"
		"        scale: {factor: 4, filter: nearest}}\n"
		"layers:\n  - name: A\n    traits:\n      - {name: x, file: a.png}\n";
	static const char *const bad[][2] = {
		{ "filter: fast", "image.filter" },
		{ "scale: {factor: 2, filter: bilinear}", "image.scale.filter must be nearest" },
		{ "scale: 0", "image.scale" },
		{ "palette: {colors: 300}", "image.palette.colors" },
		{ "alpha: drop", "image.alpha must be auto" },
		{ "format: webp, palette: true", "PNG options" },
		{ "scale: 64", "more than 16384" }, /* 1024 x 64 */
	};
	struct kiln_spec *s = NULL;
	struct kiln_error e;
	(void)state;
	assert_int_equal(kiln_spec_parse(&s, ok, strlen(ok), "kiln.yaml", NULL, &e), 0);
	assert_int_equal(s->png_compression, 11);
	assert_int_equal(s->png_filter, 4);
	assert_int_equal(s->png_keep_alpha, 1);
	assert_int_equal(s->png_palette, 1);
	assert_int_equal(s->png_colors, 16);
	assert_int_equal(s->png_dither, 1);
	assert_int_equal(s->scale, 4);
	kiln_spec_free(s);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char y[512];
		snprintf(y, sizeof y, "collection: {name: T, size: 1}\n"
			 "image: {%s}\n"
			 "layers:\n  - name: A\n    traits:\n      - {name: x, file: a.png}\n",
			 bad[i][0]);
		s = NULL;
		assert_int_equal(kiln_spec_parse(&s, y, strlen(y), "kiln.yaml", NULL, &e),
				 KILN_E_SPEC);
		if (!strstr(e.msg, bad[i][1]))
			fail_msg("%s: got '%s'", bad[i][0], e.msg);
		assert_null(s);
	}
}

/* ---- legendaries ---- */

static void test_legendary(void **state)
{
	struct tlayer tl[] = { { KILN_BLEND_OVER, 1, { "red.png" }, 1, 0 } };
	struct kiln_spec *s = mkspec(KILN_FORMAT_PNG, tl, 1);
	struct kiln_compose *c;
	struct kiln_buf out = KILN_BUF_INIT;
	struct kiln_error e;
	char h0[65], h1[65];
	uint8_t *px;
	int bands;
	(void)state;
	add_legendary(s, "rgb.png");      /* opaque RGB is fine for a legendary */
	add_legendary(s, "small.png");    /* wrong size */
	add_legendary(s, "truncated.png");
	add_legendary(s, "gone.png");
	c = engine(s);
	assert_int_equal(kiln_compose_legendary(c, 0, &out, &e), 0);
	px = pixels(out.data, out.len, &bands);
	assert_int_equal(bands, 4);
	assert_px(px, bands, 10, 10, 90, 90, 90, 255, 0);
	g_free(px);
	assert_int_equal(legendary_recipe_of(c, 0, h0, &e), 0);
	assert_int_equal(legendary_recipe_of(c, 1, h1, &e), 0);
	assert_string_not_equal(h0, h1);
	assert_int_equal(kiln_compose_legendary(c, 1, &out, &e), KILN_E_IMAGE);
	assert_string_equal(e.where, "small.png");
	assert_non_null(strstr(e.msg, "got 32x32 RGBA; re-export the legendary at the collection"));
	assert_int_equal(kiln_compose_legendary(c, 2, &out, &e), KILN_E_IMAGE);
	assert_string_equal(e.where, "truncated.png");
	assert_int_equal(kiln_compose_legendary(c, 3, &out, &e), KILN_E_IO);
	assert_string_equal(e.where, "gone.png");
	assert_int_equal(legendary_recipe_of(c, 3, h1, &e), KILN_E_IO);
	assert_string_equal(e.where, "gone.png");
	assert_int_equal(kiln_compose_legendary(c, 4, &out, &e), KILN_E_STATE);
	engine_free(c);
	kiln_buf_release(&out);
	kiln_spec_free(s);
}

/* ---- allocation failure ---- */

static void test_alloc_failure(void **state)
{
	struct kiln_spec *s = mkspec(KILN_FORMAT_PNG, det_layers, 3);
	struct kiln_buf ref = KILN_BUF_INIT;
	struct kiln_compose *c = engine(s);
	uint32_t t[3] = { 1, 1, 0 };
	long n;
	(void)state;
	add_legendary(s, "rgb.png");
	render(c, t, &ref);
	engine_free(c);
	for (n = 0; n < 1000; n++) {
		struct kiln_buf out = KILN_BUF_INIT;
		struct kiln_error e;
		char hex[65];
		int rc;
		struct kiln_recipe *r = NULL;
		c = NULL;
		kiln_alloc_fail_after(n);
		rc = kiln_recipe_new(&r, s, 0, &e);
		if (!rc)
			rc = kiln_compose_new(&c, s, r, &e);
		if (!rc)
			rc = kiln_recipe_compose(r, t, hex, &e);
		if (!rc)
			rc = kiln_compose_item(c, t, &out, &e);
		if (!rc)
			rc = kiln_compose_legendary(c, 0, &out, &e);
		kiln_alloc_fail_after(-1);
		if (rc) {
			if (rc != KILN_E_NOMEM)
				fail_msg("injected failure %ld: got %s: %s: %s", n,
					 kiln_error_name(rc), e.where, e.msg);
			/* a failed allocation is not cached: the same engine works now */
			if (c) {
				kiln_buf_reset(&out);
				render(c, t, &out);
				assert_int_equal(out.len, ref.len);
				assert_memory_equal(out.data, ref.data, ref.len);
			}
		} else {
			assert_memory_equal(out.data, ref.data, ref.len);
		}
		kiln_compose_free(c);
		kiln_recipe_free(r);
		kiln_buf_release(&out);
		if (!rc && kiln_alloc_failed() == 0)
			break;
	}
	assert_true(n > 3 && n < 1000);
	kiln_buf_release(&ref);
	kiln_spec_free(s);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_over_three_layers),
		cmocka_unit_test(test_opacity_half),
		cmocka_unit_test(test_opacity_zero_draws_nothing),
		cmocka_unit_test(test_multiply),
		cmocka_unit_test(test_blend_modes_match_vips),
		cmocka_unit_test(test_none_skipped),
		cmocka_unit_test(test_all_none_is_transparent),
		cmocka_unit_test(test_grey_alpha_accepted),
		cmocka_unit_test(test_byte_identical),
		cmocka_unit_test(test_corrupt),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_wrong_size),
		cmocka_unit_test(test_rgb_without_alpha),
		cmocka_unit_test(test_sixteen_bit),
		cmocka_unit_test(test_missing),
		cmocka_unit_test(test_decoded_once),
		cmocka_unit_test(test_changed_after_hash),
		cmocka_unit_test(test_recipe),
		cmocka_unit_test(test_trait_out_of_range),
		cmocka_unit_test(test_webp_lossless_and_jpeg),
		cmocka_unit_test(test_over_exact_sprites),
		cmocka_unit_test(test_output_options),
		cmocka_unit_test(test_spec_image_options),
		cmocka_unit_test(test_legendary),
		cmocka_unit_test(test_alloc_failure),
	};
	int rc;
	(void)argc;
	if (VIPS_INIT(argv[0]))
		return 1;
	/* as the engine does: no operation cache, so fixtures rewritten on disk are re-read */
	vips_cache_set_max(0);
	rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
	vips_shutdown();
	return rc;
}
