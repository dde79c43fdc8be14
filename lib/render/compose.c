/* engine_compose: the compose engine. An item is its layers' trait files composited bottom to
 * top with libvips (vips_composite, the layer's blend mode, alpha multiplied by the layer's
 * opacity), then encoded in the spec's format into a caller's buffer.
 *
 * Invariants:
 * - Every distinct layer file (by path as written in kiln.yaml) is one struct cfile. It is
 *   hashed in kiln_compose_new() (recipes need the hash before any pixel is decoded) and
 *   decoded at most once, by the first item that needs it, under the file's own mutex. The
 *   result, good (an 8-bit sRGB RGBA memory image of exactly spec width x height) or bad (the
 *   error naming the file), is then immutable and read without locks by every thread, so a
 *   bad file gives every item that uses it the same message. Only out-of-memory is not cached.
 * - The bytes decoded are the bytes hashed: decoding re-reads the file and checks its SHA-256
 *   against the one taken at kiln_compose_new(), so a recipe always describes its output.
 * - Output depends only on the recipe's inputs: metadata is stripped, the resolution is fixed
 *   (PNG pHYs = 72 dpi), every encoder option that changes bytes is set explicitly and is
 *   written into the recipe text.
 * - libvips is initialised once per process with concurrency 1 (callers parallelise across
 *   items) and its operation cache off (nothing here repeats an operation, and a cached
 *   composite would pin decoded layers after kiln_compose_free()).
 *
 * Sizes: tens to hundreds of layer files; decoded, each is width x height x 4 bytes (4 MiB at
 * 1024x1024) and stays for the engine's life: 100 files = 400 MiB, only files some item used.
 * Per item in flight: a few MiB (libvips strips, the encoded output). Legendaries are decoded
 * per call and not kept.
 */
#include "render/compose.h"
#include "kiln/recipe.h"
#include "util/alloc.h"
#include "util/image.h"
#include "util/fs.h"
/* xxHash (Debian libxxhash-dev) compiled in from its header: no library to link */
#define XXH_INLINE_ALL
#include <xxhash.h>
#include "util/png.h"
#include "util/sha.h"

#include <dlfcn.h>
#include <libimagequant.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

/* The engine's version and the encoder settings its recipes name are kiln/recipe.h's
 * (KILN_RECIPE_COMPOSE_VERSION): bump it there when anything below changes the pixels or bytes
 * for the same inputs. */
/* Shorter opaque stretches inside a run of visible pixels stay in a partial run: below this a
 * memcpy costs more than the per-pixel test. */
#define MIN_OPAQUE 16
#define NO_FILE ((size_t)-1)

enum { F_PENDING, F_READY, F_FAILED };

/* A run of visible (alpha > 0) pixels in one row of a layer: [x0, x1). Opaque runs are all
 * alpha 255 and are copied; partial runs are blended pixel by pixel. */
struct run {
	uint16_t x0, x1;
	uint8_t opaque;
};

struct cfile {
	const char *rel;       /* as written in kiln.yaml (owned by the spec); errors' where */
	char *path;            /* rel joined with spec->dir, for opening */
	char sha[65];          /* SHA-256 of the file's bytes at kiln_compose_new() */
	pthread_mutex_t mu;    /* held while decoding */
	int state;             /* F_*; read with acquire, written with release under mu */
	VipsImage *img;        /* F_READY: W x H x 4 uchar sRGB memory image (layers only) */
	const uint8_t *px;     /* F_READY: img's pixels, rows of W * 4 bytes */
	uint32_t *row_run;     /* F_READY: row y's runs are runs[row_run[y] .. row_run[y+1]) */
	struct run *runs;
	int opaque;            /* F_READY: every pixel's alpha is 255 */
	struct kiln_error err; /* F_FAILED: why (hash failures are F_FAILED from the start) */
};

struct kiln_compose {
	const struct kiln_spec *s;
	struct cfile *files;   /* distinct layer files, sorted by rel */
	size_t nfiles;
	struct cfile *legs;    /* one per legendary, never cached (each is rendered once) */
	size_t nlegs;          /* legs set up so far (== spec->nlegendaries once made) */
	size_t *toff;          /* layer l's traits map to tfile[toff[l] + trait] */
	size_t *tfile;         /* index into files, or NO_FILE (none value, no file) */
	pthread_mutex_t pool_mu;
	struct scratch *pool;  /* free per-item working memory, one per thread that rendered */
	struct kiln_png_bands *bands; /* compressed PNG bands shared by the items (png.h) */
};

/* The band cache's size cap: at 10,000 bench/compose items it holds ~44,000 bands, ~65 MiB;
 * past the cap bands are still written, only not kept. */
#define BAND_CACHE_MAX ((size_t)256 << 20)

/* Working memory of one item in flight, reused (allocating and page-faulting 4 MiB buffers
 * for every item cost more than compositing them). */
struct scratch {
	struct scratch *next;
	uint8_t *canvas;       /* W x H x 4: the composite */
	uint8_t *big;          /* scaled output (image.scale), or palette indexes */
	size_t big_cap;
	float *st;             /* one row of float blend state, W x 4 */
	uint8_t *dirty;        /* one row: st[x] holds the pixel's state (canvas[x] is stale) */
	struct kiln_png_key *keys; /* one per PNG band */
	struct kiln_png_scratch png;
};

/* ---- libvips glue ---- */

/* libvips start-up (warnings dropped, cache off, concurrency 1: parallelism comes from items)
 * is shared with the other image modules: lib/util/image.c. */

static void vips_detail(char *dst, size_t n);

/* libvips keeps one process-wide error buffer. vips_error_buffer_copy() takes and clears it
 * under libvips' own lock, so two threads never read it half-written; but when several
 * threads fail at the same moment a message may carry a neighbour's text. Our own text
 * (what, where, what to do) never depends on it: it is detail only. */
static void vips_detail(char *dst, size_t n)
{
	char *t = vips_error_buffer_copy();
	size_t len = t ? strlen(t) : 0, j = 0;
	while (len && (t[len - 1] == '\n' || t[len - 1] == ' '))
		len--;
	for (size_t i = 0; i < len && j + 2 < n; i++) {
		if (t[i] == '\n') {
			dst[j++] = ';';
			dst[j++] = ' ';
		} else {
			dst[j++] = t[i];
		}
	}
	if (n)
		dst[j < n ? j : n - 1] = 0;
	g_free(t);
}

/* "what (libvips: detail); fix" */
static int vips_fail(struct kiln_error *e, const char *where, const char *what, const char *fix)
{
	char d[768];
	vips_detail(d, sizeof d);
	return kiln_error_set(e, KILN_E_IMAGE, where, "%s%s%s%s%s%s", what, *d ? " (libvips: " : "",
			      d, *d ? ")" : "", fix ? "; " : "", fix ? fix : "");
}

static int free_cb(void *data, void *area)
{
	(void)area;
	free(data);
	return 0;
}

static VipsBlendMode blend_mode(enum kiln_blend b)
{
	switch (b) {
	case KILN_BLEND_MULTIPLY: return VIPS_BLEND_MODE_MULTIPLY;
	case KILN_BLEND_SCREEN: return VIPS_BLEND_MODE_SCREEN;
	case KILN_BLEND_OVERLAY: return VIPS_BLEND_MODE_OVERLAY;
	case KILN_BLEND_DARKEN: return VIPS_BLEND_MODE_DARKEN;
	case KILN_BLEND_LIGHTEN: return VIPS_BLEND_MODE_LIGHTEN;
	case KILN_BLEND_ADD: return VIPS_BLEND_MODE_ADD;
	case KILN_BLEND_SOFT_LIGHT: return VIPS_BLEND_MODE_SOFT_LIGHT;
	case KILN_BLEND_HARD_LIGHT: return VIPS_BLEND_MODE_HARD_LIGHT;
	case KILN_BLEND_DIFFERENCE: return VIPS_BLEND_MODE_DIFFERENCE;
	case KILN_BLEND_OVER:
	default: return VIPS_BLEND_MODE_OVER;
	}
}

/* "512x512 RGB", "1024x1024 16-bit RGBA", "1024x1024 CMYK" */
static void describe(VipsImage *im, char *dst, size_t n)
{
	const char *kind, *depth;
	char other[32];
	int bands = vips_image_get_bands(im);
	VipsInterpretation in = vips_image_get_interpretation(im);
	if (in == VIPS_INTERPRETATION_CMYK)
		kind = bands > 4 ? "CMYK+alpha" : "CMYK";
	else if (bands == 1)
		kind = "grey";
	else if (bands == 2)
		kind = "grey+alpha";
	else if (bands == 3)
		kind = "RGB";
	else if (bands == 4)
		kind = "RGBA";
	else {
		snprintf(other, sizeof other, "%d-band", bands);
		kind = other;
	}
	switch (vips_image_get_format(im)) {
	case VIPS_FORMAT_UCHAR: depth = ""; break;
	case VIPS_FORMAT_USHORT: depth = "16-bit "; break;
	case VIPS_FORMAT_FLOAT: depth = "float "; break;
	default: depth = "unusual-depth "; break;
	}
	snprintf(dst, n, "%dx%d %s%s", vips_image_get_width(im), vips_image_get_height(im),
		 depth, kind);
}

/* Which images a file may hold. Layers must carry transparency; legendaries are whole
 * pictures and may be opaque. Grey (+alpha) is accepted and widened to sRGB exactly. */
enum use { USE_LAYER, USE_LEGENDARY };

static int check_header(const struct kiln_spec *s, VipsImage *im, enum use use, const char *rel,
			struct kiln_error *e)
{
	int w = vips_image_get_width(im), h = vips_image_get_height(im);
	int bands = vips_image_get_bands(im);
	VipsInterpretation in = vips_image_get_interpretation(im);
	int size_ok = w == s->width && h == s->height;
	int depth_ok = vips_image_get_format(im) == VIPS_FORMAT_UCHAR;
	int colour_ok, alpha_ok;
	char got[96], fix[160] = "";
	if (bands <= 2)
		colour_ok = in == VIPS_INTERPRETATION_B_W || in == VIPS_INTERPRETATION_MULTIBAND;
	else
		colour_ok = bands <= 4 && (in == VIPS_INTERPRETATION_sRGB ||
					   in == VIPS_INTERPRETATION_RGB);
	alpha_ok = bands == 2 || bands == 4 || (use == USE_LEGENDARY && (bands == 1 || bands == 3));
	if (size_ok && depth_ok && colour_ok && alpha_ok)
		return 0;
	describe(im, got, sizeof got);
	if (!size_ok)
		snprintf(fix + strlen(fix), sizeof fix - strlen(fix), "%sat the collection size",
			 *fix ? ", " : "");
	if (!alpha_ok && colour_ok)
		snprintf(fix + strlen(fix), sizeof fix - strlen(fix), "%swith an alpha channel",
			 *fix ? ", " : "");
	if (!depth_ok)
		snprintf(fix + strlen(fix), sizeof fix - strlen(fix), "%sat 8 bits per channel",
			 *fix ? ", " : "");
	if (!colour_ok)
		snprintf(fix + strlen(fix), sizeof fix - strlen(fix), "%sas sRGB%s",
			 *fix ? ", " : "", use == USE_LAYER ? " with an alpha channel" : "");
	return kiln_error_set(e, KILN_E_IMAGE, rel, "expected %dx%d %s PNG, got %s; re-export the %s %s",
			      s->width, s->height, use == USE_LAYER ? "RGBA" : "RGB or RGBA", got,
			      use == USE_LAYER ? "layer" : "legendary", fix);
}

/* Read f (checking it is still the file that was hashed), decode it fully (truncation and
 * corruption are errors, never padding) and check it. *out: a W x H x 4 uchar sRGB memory
 * image (legendaries without alpha get an opaque one). */
static int decode(const struct kiln_spec *s, const struct cfile *f, enum use use,
		  VipsImage **out, struct kiln_error *e)
{
	struct kiln_buf b = KILN_BUF_INIT;
	VipsBlob *blob = NULL;
	VipsSource *src = NULL;
	VipsImage *im = NULL, *t1 = NULL, *t2 = NULL, *mem = NULL;
	char sha[65], fix[96];
	size_t len;
	void *data;
	int rc;
	*out = NULL;
	rc = kiln_fs_read(f->path, &b, e);
	if (rc) {
		char why[sizeof e->msg];
		memcpy(why, e->msg, sizeof why);
		if (rc == KILN_E_NOMEM)
			rc = kiln_error_set(e, rc, f->rel, "%s", why);
		else
			rc = kiln_error_set(e, rc, f->rel, "cannot read the file: %s", why);
		goto out;
	}
	kiln_sha256_hex(b.data ? b.data : "", b.len, sha);
	if (strcmp(sha, f->sha) != 0) {
		rc = kiln_error_set(e, KILN_E_IMAGE, f->rel,
				    "the file changed while kiln was using it (its SHA-256 no longer "
				    "matches); run the command again");
		goto out;
	}
	if (b.len == 0) {
		rc = kiln_error_set(e, KILN_E_IMAGE, f->rel, "the file is empty; re-export it");
		goto out;
	}
	/* The blob owns the bytes, so nothing libvips keeps can outlive them. */
	data = kiln_buf_detach(&b, &len);
	blob = vips_blob_new(free_cb, data, len);
	src = vips_source_new_from_blob(blob);
	if (!src) {
		rc = vips_fail(e, f->rel, "cannot read the file", NULL);
		goto out;
	}
	im = vips_image_new_from_source(src, "", "access", VIPS_ACCESS_SEQUENTIAL, "fail_on",
					VIPS_FAIL_ON_ERROR, NULL);
	if (!im) {
		snprintf(fix, sizeof fix, "re-export it as a %dx%d %s PNG", s->width, s->height,
			 use == USE_LAYER ? "RGBA" : "RGB or RGBA");
		rc = vips_fail(e, f->rel, "cannot read the file as an image: it is corrupt, cut "
			       "short, or not an image", fix);
		goto out;
	}
	rc = check_header(s, im, use, f->rel, e);
	if (rc)
		goto out;
	if (vips_image_get_bands(im) <= 2) {
		if (vips_colourspace(im, &t1, VIPS_INTERPRETATION_sRGB, "source_space",
				     VIPS_INTERPRETATION_B_W, NULL)) {
			rc = vips_fail(e, f->rel, "cannot convert grey to RGB", NULL);
			goto out;
		}
	} else {
		t1 = im;
		g_object_ref(t1);
	}
	if (vips_image_get_bands(t1) == 3) {
		if (vips_bandjoin_const1(t1, &t2, 255.0, NULL)) {
			rc = vips_fail(e, f->rel, "cannot add an alpha channel", NULL);
			goto out;
		}
	} else {
		t2 = t1;
		g_object_ref(t2);
	}
	/* Pixels are decoded here: a truncated or corrupt stream fails now (fail_on). */
	mem = vips_image_copy_memory(t2);
	if (!mem) {
		snprintf(fix, sizeof fix, "re-export the %s", use == USE_LAYER ? "layer" : "legendary");
		rc = vips_fail(e, f->rel, "the image data is truncated or corrupt", fix);
		goto out;
	}
	/* Pixel values are kept as they are (no ICC conversion): tag them plain sRGB. */
	mem->Type = VIPS_INTERPRETATION_sRGB;
	*out = mem;
	mem = NULL;
out:
	VIPS_UNREF(mem);
	VIPS_UNREF(t2);
	VIPS_UNREF(t1);
	VIPS_UNREF(im);
	VIPS_UNREF(src);
	if (blob)
		vips_area_unref(VIPS_AREA(blob));
	kiln_buf_release(&b);
	return rc;
}

/* Split row y's visible pixels into runs; returns how many (written to r unless NULL). */
static size_t row_runs(const uint8_t *row, int w, struct run *r)
{
	size_t n = 0;
	int x = 0;
	while (x < w) {
		int s0, e0, i, p;
		if (!row[4 * x + 3]) {
			x++;
			continue;
		}
		s0 = x;
		while (x < w && row[4 * x + 3])
			x++;
		e0 = x;
		for (p = i = s0; i < e0;) {
			int j = i;
			while (j < e0 && row[4 * j + 3] == 255)
				j++;
			if (j - i >= MIN_OPAQUE) {
				if (p < i) {
					if (r)
						r[n] = (struct run){ (uint16_t)p, (uint16_t)i, 0 };
					n++;
				}
				if (r)
					r[n] = (struct run){ (uint16_t)i, (uint16_t)j, 1 };
				n++;
				p = j;
			}
			i = j > i ? j : i + 1;
		}
		if (p < e0) {
			if (r)
				r[n] = (struct run){ (uint16_t)p, (uint16_t)e0, 0 };
			n++;
		}
	}
	return n;
}

/* Index a decoded layer's visible pixels (once per file, a few ms at 1024x1024). */
static int index_runs(struct cfile *f, int w, int h, struct kiln_error *e)
{
	size_t n = 0;
	f->px = (const uint8_t *)VIPS_IMAGE_ADDR(f->img, 0, 0);
	for (int y = 0; y < h; y++)
		n += row_runs(f->px + (size_t)y * w * 4, w, NULL);
	f->row_run = kiln_calloc((size_t)h + 1, sizeof *f->row_run);
	f->runs = kiln_calloc(n + 1, sizeof *f->runs);
	if (!f->row_run || !f->runs) {
		free(f->row_run);
		free(f->runs);
		f->row_run = NULL;
		f->runs = NULL;
		return kiln_error_set(e, KILN_E_NOMEM, f->rel, "out of memory");
	}
	n = 0;
	for (int y = 0; y < h; y++) {
		f->row_run[y] = (uint32_t)n;
		n += row_runs(f->px + (size_t)y * w * 4, w, f->runs + n);
	}
	f->row_run[h] = (uint32_t)n;
	f->opaque = 1;
	for (int y = 0; y < h && f->opaque; y++) {
		const struct run *r = f->runs + f->row_run[y];
		f->opaque = f->row_run[y + 1] - f->row_run[y] == 1 && r->opaque && r->x0 == 0 &&
			    r->x1 == w;
	}
	return 0;
}

/* The decoded layer image of file i (borrowed: the engine owns it). */
static int layer_image(struct kiln_compose *c, size_t i, VipsImage **out, struct kiln_error *e)
{
	struct cfile *f = &c->files[i];
	int st = __atomic_load_n(&f->state, __ATOMIC_ACQUIRE), rc = 0;
	if (st == F_PENDING) {
		pthread_mutex_lock(&f->mu);
		if (f->state == F_PENDING) {
			VipsImage *im;
			rc = decode(c->s, f, USE_LAYER, &im, e);
			if (!rc) {
				f->img = im;
				rc = index_runs(f, c->s->width, c->s->height, e);
				if (rc) {
					VIPS_UNREF(f->img);
					f->px = NULL;
				}
			}
			if (!rc) {
				__atomic_store_n(&f->state, F_READY, __ATOMIC_RELEASE);
			} else if (rc != KILN_E_NOMEM) {
				f->err = *e;
				__atomic_store_n(&f->state, F_FAILED, __ATOMIC_RELEASE);
			}
		}
		st = f->state;
		pthread_mutex_unlock(&f->mu);
		if (rc)
			return rc;
	}
	if (st == F_FAILED) {
		*e = f->err;
		return f->err.code;
	}
	*out = f->img;
	return 0;
}

/* ---- per-item working memory ---- */

static void scratch_free(struct scratch *x)
{
	if (!x)
		return;
	free(x->canvas);
	free(x->big);
	free(x->st);
	free(x->dirty);
	free(x->keys);
	kiln_png_scratch_release(&x->png);
	free(x);
}

static int scratch_get(struct kiln_compose *c, struct scratch **out, struct kiln_error *e)
{
	const struct kiln_spec *s = c->s;
	struct scratch *x;
	pthread_mutex_lock(&c->pool_mu);
	x = c->pool;
	if (x)
		c->pool = x->next;
	pthread_mutex_unlock(&c->pool_mu);
	if (!x) {
		x = kiln_calloc(1, sizeof *x);
		if (x) {
			x->png = (struct kiln_png_scratch)KILN_PNG_SCRATCH_INIT;
			x->canvas = kiln_malloc((size_t)s->width * s->height * 4);
			x->st = kiln_calloc((size_t)s->width * 4, sizeof *x->st);
			x->dirty = kiln_calloc((size_t)s->width, 1);
			x->keys = kiln_calloc((size_t)s->height / KILN_PNG_BAND_ROWS + 1,
					      sizeof *x->keys);
		}
		if (!x || !x->canvas || !x->st || !x->dirty || !x->keys) {
			scratch_free(x);
			return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory for a %dx%d "
					      "image", s->width, s->height);
		}
	}
	*out = x;
	return 0;
}

static void scratch_put(struct kiln_compose *c, struct scratch *x)
{
	if (!x)
		return;
	pthread_mutex_lock(&c->pool_mu);
	x->next = c->pool;
	c->pool = x;
	pthread_mutex_unlock(&c->pool_mu);
}

static int big_get(struct scratch *x, size_t n, struct kiln_error *e)
{
	if (x->big_cap >= n)
		return 0;
	free(x->big);
	x->big_cap = 0;
	x->big = kiln_malloc(n);
	if (!x->big)
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory for a %zu-byte image", n);
	x->big_cap = n;
	return 0;
}

/* ---- alpha-over, exactly as vips_composite ----
 *
 * libvips 8.14 composites RGBA uchar in float (vips_combine_pixels3, gcc vector path): each
 * pixel is scaled to 0..1 by dividing by 255, premultiplied, blended with
 * B = A + (1 - aA) * B, aR = aA + aB * (1 - aA), unpremultiplied, multiplied by 255, clipped
 * and truncated to uchar. The functions below do the same float operations in the same
 * order, so their result is bit for bit libvips' (tests/unit/test_compose.c checks whole
 * images). The speed comes from doing them only where they matter; three facts, each exact
 * in float:
 * - a pixel with alpha 0 leaves the state as it is (A = 0, 1 - aA = 1);
 * - a pixel with alpha 255 replaces it (B = A), and p / 255 * 255 truncates back to p for
 *   every p in 0..255, so the output is the layer's pixel: opaque runs are memcpy;
 * - a state that came from an opaque or transparent pixel is that pixel / 255 again, so the
 *   float state is needed only for pixels a partial (0 < alpha < 255) pixel touched since.
 * Per row: copy the base, then every layer's runs bottom to top; partial pixels keep their
 * float state in a row buffer (st, dirty) and are written back at the row's end. On the
 * benchmark set about 1-2 ms an item, against 65-80 ms for vips_composite.
 * No FMA contraction: a fused multiply-add would round differently from libvips. */
#ifdef __clang__ /* only the fuzz build: it looks for crashes, not for libvips' exact pixels */
#define NO_FMA
#else
#define NO_FMA __attribute__((optimize("fp-contract=off")))
#endif

static void copy_rgb_scalar(uint8_t *d, const uint8_t *p, int n)
{
	for (int x = 0; x + 1 < n; x++)
		memcpy(d + 3 * x, p + 4 * x, 4);
	if (n > 0)
		memcpy(d + 3 * (n - 1), p + 4 * (n - 1), 3);
}

/* The same, four pixels a byte shuffle (pshufb). Copying the opaque base row and opaque runs
 * RGBA -> RGB was ~10 % of render CPU on bench/compose with the scalar loop (perf); this does
 * it in about a third of the time. Each 16-byte store runs 4 bytes past the 4 pixels it
 * writes, into pixels written next, so it stops 6 pixels before the end. */
typedef uint8_t v16u8 __attribute__((vector_size(16)));
static __attribute__((target("ssse3"))) void copy_rgb_ssse3(uint8_t *d, const uint8_t *p, int n)
{
	const v16u8 sel = { 0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, 3, 7, 11, 15 };
	int x = 0;
	for (; x + 6 <= n; x += 4) {
		v16u8 v;
		memcpy(&v, p + 4 * x, 16);
#ifdef __clang__ /* the fuzz build (tests/fuzz) uses clang, which spells it differently */
		(void)sel;
		v = __builtin_shufflevector(v, v, 0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, 3, 7, 11, 15);
#else
		v = __builtin_shuffle(v, sel);
#endif
		memcpy(d + 3 * x, &v, 16);
	}
	copy_rgb_scalar(d + 3 * x, p + 4 * x, n - x);
}

static void (*copy_rgb)(uint8_t *d, const uint8_t *p, int n) = copy_rgb_scalar;

/* v / 255.0f for every byte v: the same floats libvips' division makes, without dividing */
static float div255[256];
static pthread_once_t div255_once = PTHREAD_ONCE_INIT;
static void div255_init(void)
{
	for (int i = 0; i < 256; i++)
		div255[i] = (float)i / 255.0f;
	__builtin_cpu_init();
	if (__builtin_cpu_supports("ssse3"))
		copy_rgb = copy_rgb_ssse3;
}

static NO_FMA void px_state(float *st, const uint8_t *p)
{
	float a = div255[p[3]];
	st[0] = div255[p[0]] * a;
	st[1] = div255[p[1]] * a;
	st[2] = div255[p[2]] * a;
	st[3] = a;
}

static NO_FMA void px_over(float *st, const uint8_t *p)
{
	float aA = div255[p[3]], aB = st[3];
	float t1 = 1.0f - aA;
	float aR = aA + aB * (1.0f - aA);
	st[0] = div255[p[0]] * aA + t1 * st[0];
	st[1] = div255[p[1]] * aA + t1 * st[1];
	st[2] = div255[p[2]] * aA + t1 * st[2];
	st[3] = aR;
}

static NO_FMA void px_store(uint8_t *q, const float *st)
{
	float b[4], aR = st[3];
	if (aR == 0) {
		b[0] = b[1] = b[2] = 0;
	} else if (aR == 1.0f) { /* x / 1 == x */
		b[0] = st[0];
		b[1] = st[1];
		b[2] = st[2];
	} else {
		b[0] = st[0] / aR;
		b[1] = st[1] / aR;
		b[2] = st[2] / aR;
	}
	b[3] = aR;
	for (int i = 0; i < 4; i++) {
		float v = b[i] * 255.0f;
		v = v > 255.0f ? 255.0f : (v < 0.0f ? 0.0f : v);
		q[i] = (uint8_t)v;
	}
}

/* Row y of n >= 2 layers (L[0] at the bottom), all blend over at opacity 1, into o. */
static void composite_row(uint8_t *o, struct cfile *const *L, size_t n, int w, int y,
			  float *st, uint8_t *dirty)
{
	size_t rowb = (size_t)w * 4;
	int d0 = w, d1 = 0;
	for (size_t i = 0; i < n; i++) {
		const struct cfile *f = L[i];
		const uint8_t *p = f->px + (size_t)y * rowb;
		const struct run *r = f->runs + f->row_run[y], *re = f->runs + f->row_run[y + 1];
		if (i == 0) {
			if (re - r == 1 && r->opaque && r->x0 == 0 && r->x1 == w) {
				memcpy(o, p, rowb);
				continue;
			}
			memset(o, 0, rowb);
		}
		for (; r < re; r++) {
			int x0 = r->x0, x1 = r->x1;
			if (r->opaque) {
				memcpy(o + 4 * x0, p + 4 * x0, 4 * (size_t)(x1 - x0));
				if (x0 < d1 && x1 > d0)
					memset(dirty + x0, 0, (size_t)(x1 - x0));
				continue;
			}
			for (int x = x0; x < x1; x++) {
				const uint8_t *q = p + 4 * x;
				if (q[3] == 255) {
					memcpy(o + 4 * x, q, 4);
					dirty[x] = 0;
					continue;
				}
				if (i == 0) {
					px_state(st + 4 * x, q);
				} else {
					if (!dirty[x])
						px_state(st + 4 * x, o + 4 * x);
					px_over(st + 4 * x, q);
				}
				dirty[x] = 1;
			}
			if (x0 < d0)
				d0 = x0;
			if (x1 > d1)
				d1 = x1;
		}
	}
	for (int x = d0; x < d1; x++)
		if (dirty[x]) {
			px_store(o + 4 * x, st + 4 * x);
			dirty[x] = 0;
		}
}

/* Composite n >= 2 layers (L[0] at the bottom), all blend over at opacity 1, into out. */
static void composite_over(uint8_t *out, struct cfile *const *L, size_t n, int w, int h,
			   float *st, uint8_t *dirty)
{
	pthread_once(&div255_once, div255_init);
	for (int y = 0; y < h; y++)
		composite_row(out + (size_t)y * w * 4, L, n, w, y, st, dirty);
}

/* n RGBA pixels as RGB: 4-byte stores 3 bytes apart, the last pixel by itself (the 4th byte
 * of a store is the next pixel's first, written again by the next store) */

/* composite_row over a fully opaque bottom layer, written as RGB: every output alpha is
 * exactly 1.0 (aR = aA + 1.0f * (1.0f - aA) is 1.0f for every aA = k / 255.0f, checked for all
 * 256), so a pixel's state is its RGB with alpha 255 and px_store's alpha byte is 255. */
static void composite_row_rgb(uint8_t *o, struct cfile *const *L, size_t n, int w, int y,
			      float *st, uint8_t *dirty)
{
	size_t rowb = (size_t)w * 4;
	int d0 = w, d1 = 0;
	copy_rgb(o, L[0]->px + (size_t)y * rowb, w);
	for (size_t i = 1; i < n; i++) {
		const struct cfile *f = L[i];
		const uint8_t *p = f->px + (size_t)y * rowb;
		const struct run *r = f->runs + f->row_run[y], *re = f->runs + f->row_run[y + 1];
		for (; r < re; r++) {
			int x0 = r->x0, x1 = r->x1;
			if (r->opaque) {
				copy_rgb(o + 3 * x0, p + 4 * x0, x1 - x0);
				if (x0 < d1 && x1 > d0)
					memset(dirty + x0, 0, (size_t)(x1 - x0));
				continue;
			}
			for (int x = x0; x < x1; x++) {
				const uint8_t *q = p + 4 * x;
				if (q[3] == 255) {
					memcpy(o + 3 * x, q, 3);
					dirty[x] = 0;
					continue;
				}
				if (!dirty[x]) {
					uint8_t px[4] = { o[3 * x], o[3 * x + 1], o[3 * x + 2], 255 };
					px_state(st + 4 * x, px);
				}
				px_over(st + 4 * x, q);
				dirty[x] = 1;
			}
			if (x0 < d0)
				d0 = x0;
			if (x1 > d1)
				d1 = x1;
		}
	}
	for (int x = d0; x < d1; x++)
		if (dirty[x]) {
			uint8_t px[4];
			px_store(px, st + 4 * x);
			memcpy(o + 3 * x, px, 3);
			dirty[x] = 0;
		}
}

/* kiln_png_encode_rows' row source: the composite, a row at a time */
struct rows {
	struct cfile *const *L;
	size_t n;
	int w;
	float *st;
	uint8_t *dirty;
};

static void composite_row_fn(void *user, int y, uint8_t *row, int bpp)
{
	struct rows *r = user;
	if (bpp == 3)
		composite_row_rgb(row, r->L, r->n, r->w, y, r->st, r->dirty);
	else
		composite_row(row, r->L, r->n, r->w, y, r->st, r->dirty);
}

/* The key of each PNG band of an item drawn by alpha-over of L[0..n): the files with visible
 * pixels in the band's rows, bottom to top (the base always: it fills the canvas). A band's
 * pixels are a function of exactly these (a pixel of alpha 0 leaves the composite as it is),
 * so equal keys are equal bytes. */
static void band_keys(const struct kiln_compose *c, struct cfile *const *L, size_t n,
		      struct kiln_png_key *keys)
{
	int h = c->s->height;
	for (int y0 = 0, b = 0; y0 < h; y0 += KILN_PNG_BAND_ROWS, b++) {
		int y1 = y0 + KILN_PNG_BAND_ROWS < h ? y0 + KILN_PNG_BAND_ROWS : h;
		uint64_t ids[16];
		size_t k = 0;
		XXH3_state_t st;
		XXH128_hash_t x;
		XXH3_128bits_reset(&st);
		for (size_t i = 0; i < n; i++) {
			if (i && L[i]->row_run[y1] == L[i]->row_run[y0])
				continue; /* no visible pixel in the band */
			ids[k++] = (uint64_t)(L[i] - c->files);
			if (k == 16) {
				XXH3_128bits_update(&st, ids, sizeof ids);
				k = 0;
			}
		}
		XXH3_128bits_update(&st, ids, k * sizeof *ids);
		x = XXH3_128bits_digest(&st);
		keys[b].lo = x.low64;
		keys[b].hi = x.high64;
	}
}

/* ---- output: scale, palette, encode ---- */

/* Nearest-neighbour enlargement by k of a w x h image of bpp-byte pixels into dst. */
static void scale_nearest(uint8_t *dst, const uint8_t *src, int w, int h, int bpp, int k)
{
	size_t srow = (size_t)w * bpp, drow = srow * (size_t)k;
	for (int y = 0; y < h; y++) {
		uint8_t *d = dst + (size_t)y * k * drow;
		const uint8_t *sp = src + (size_t)y * srow;
		for (int x = 0; x < w; x++)
			for (int j = 0; j < k; j++)
				memcpy(d + ((size_t)x * k + j) * bpp, sp + (size_t)x * bpp, (size_t)bpp);
		for (int j = 1; j < k; j++)
			memcpy(d + (size_t)j * drow, d, drow);
	}
}

/* An exact palette when the image has at most `max` colours (first-seen order, so the bytes
 * are stable; every fully transparent pixel counts as 0,0,0,0): 1 with idx and pal filled, 0
 * when there are more colours. */
static int exact_palette(const uint8_t *px, size_t npx, int max, uint8_t *idx,
			 uint8_t (*pal)[4], int *npal)
{
	uint32_t key[1024];
	uint16_t val[1024]; /* palette index + 1; 0: empty slot */
	int n = 0;
	memset(val, 0, sizeof val);
	for (size_t i = 0; i < npx; i++) {
		uint32_t c = 0, hsh;
		if (px[4 * i + 3])
			memcpy(&c, px + 4 * i, 4);
		hsh = (c * 2654435761u) >> 22;
		while (val[hsh] && key[hsh] != c)
			hsh = (hsh + 1) & 1023;
		if (!val[hsh]) {
			if (n == max)
				return 0;
			key[hsh] = c;
			val[hsh] = (uint16_t)(++n);
			memcpy(pal[n - 1], &c, 4);
		}
		idx[i] = (uint8_t)(val[hsh] - 1);
	}
	*npal = n;
	return 1;
}
/* libimagequant runs its k-means under OpenMP, with one thread per core by default: the
 * palette (so the bytes) would then depend on the machine, and the item threads already
 * use every core. It is asked for one thread in the calling thread (libgomp keeps that
 * setting per thread). Looked up at run time: kiln does not link libgomp itself. */
static void (*omp_set_threads)(int);
static pthread_once_t omp_once = PTHREAD_ONCE_INIT;
static void omp_lookup(void)
{
	*(void **)&omp_set_threads = dlsym(RTLD_DEFAULT, "omp_set_num_threads");
}

int kiln_render_quantize(const uint8_t *px, int w, int h, int colors, int dither,
			 uint8_t *idx, uint8_t (*pal)[4], int *npal, struct kiln_error *e)
{
	liq_attr *attr = NULL;
	liq_image *im = NULL;
	liq_result *res = NULL;
	const liq_palette *lp;
	int rc = 0;
	pthread_once(&omp_once, omp_lookup);
	if (omp_set_threads)
		omp_set_threads(1);
	attr = liq_attr_create();
	if (!attr) {
		rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory for the palette");
		goto out;
	}
	if (liq_set_max_colors(attr, colors) != LIQ_OK || liq_set_speed(attr, KILN_RECIPE_LIQ_SPEED) != LIQ_OK) {
		rc = kiln_error_set(e, KILN_E_IMAGE, NULL, "cannot set up libimagequant");
		goto out;
	}
	im = liq_image_create_rgba(attr, px, w, h, 0);
	if (!im || liq_image_quantize(im, attr, &res) != LIQ_OK) {
		rc = kiln_error_set(e, KILN_E_IMAGE, NULL, "cannot make a %d-colour palette of the "
				    "image (libimagequant)", colors);
		goto out;
	}
	liq_set_dithering_level(res, dither ? 1.0f : 0.0f);
	if (liq_write_remapped_image(res, im, idx, (size_t)w * h) != LIQ_OK) {
		rc = kiln_error_set(e, KILN_E_IMAGE, NULL, "cannot remap the image to its palette");
		goto out;
	}
	lp = liq_get_palette(res);
	*npal = (int)lp->count;
	for (unsigned i = 0; i < lp->count; i++) {
		pal[i][0] = lp->entries[i].r;
		pal[i][1] = lp->entries[i].g;
		pal[i][2] = lp->entries[i].b;
		pal[i][3] = lp->entries[i].a;
	}
out:
	if (res)
		liq_result_destroy(res);
	if (im)
		liq_image_destroy(im);
	if (attr)
		liq_attr_destroy(attr);
	return rc;
}

/* HashLips' pixelFormat without its canvas round trip: every k x k block of src (from the top
 * left; the last ones may be narrower) takes the colour of its centre pixel, in dst. dst may
 * be src: each block's centre is read before the block is filled. */
static void pixelate(uint8_t *dst, const uint8_t *src, int w, int h, int k)
{
	for (int by = 0; by < h; by += k) {
		int bh = by + k <= h ? k : h - by;
		for (int bx = 0; bx < w; bx += k) {
			int bw = bx + k <= w ? k : w - bx;
			uint8_t c[4];
			memcpy(c, src + ((size_t)(by + bh / 2) * w + (size_t)(bx + bw / 2)) * 4, 4);
			for (int y = by; y < by + bh; y++)
				for (int x = bx; x < bx + bw; x++)
					memcpy(dst + ((size_t)y * w + (size_t)x) * 4, c, 4);
		}
	}
}

/* The spec's output of a W x H x 4 image px: pixelated, scaled, quantized, encoded, appended
 * to out. */
static int finish(struct kiln_compose *c, struct scratch *x, const uint8_t *px,
		  struct kiln_buf *out, struct kiln_error *e)
{
	const struct kiln_spec *s = c->s;
	int w = s->width, h = s->height, k = s->scale > 1 ? s->scale : 1, rc;
	size_t npx = (size_t)w * h, kk = (size_t)k * k;
	VipsImage *im = NULL;
	if (s->pixelate > 1) { /* px may be a decoded layer (one drawn layer): never write it */
		pixelate(x->canvas, px, w, h, s->pixelate);
		px = x->canvas;
	}
	if (s->format == KILN_FORMAT_PNG && s->png_palette) {
		struct kiln_png_opts o = { s->png_compression, KILN_PNG_FILTER_NONE, 0 };
		uint8_t pal[256][4];
		int npal = 0, colors = s->png_colors ? s->png_colors : 256;
		const uint8_t *img;
		/* quantize at the layers' size, then enlarge the indexes: k*k times less work */
		if ((rc = big_get(x, npx * (1 + (k > 1 ? kk : 0)), e)))
			return rc;
		if (!exact_palette(px, npx, colors, x->big, pal, &npal) &&
		    (rc = kiln_render_quantize(px, w, h, colors, s->png_dither, x->big, pal,
						  &npal, e)))
			return rc;
		img = x->big;
		if (k > 1) {
			scale_nearest(x->big + npx, x->big, w, h, 1, k);
			img = x->big + npx;
		}
		return kiln_png_encode_indexed(img, w * k, h * k, (const uint8_t(*)[4])pal, npal,
					       &o, &x->png, out, e);
	}
	if (k > 1) {
		if ((rc = big_get(x, npx * 4 * kk, e)))
			return rc;
		scale_nearest(x->big, px, w, h, 4, k);
		px = x->big;
		w *= k;
		h *= k;
	}
	if (s->format == KILN_FORMAT_PNG) {
		struct kiln_png_opts o = { s->png_compression, (enum kiln_png_filter)s->png_filter,
					   !s->png_keep_alpha };
		return kiln_png_encode_rgba(px, w, h, (size_t)w * 4, &o, &x->png, out, e);
	}
	im = vips_image_new_from_memory(px, (size_t)w * h * 4, w, h, 4, VIPS_FORMAT_UCHAR);
	if (!im)
		return vips_fail(e, NULL, "cannot wrap the image for encoding", NULL);
	struct kiln_image_enc enc = {s->format == KILN_FORMAT_JPEG, s->quality, s->lossless};
	rc = kiln_image_encode(&enc, im, NULL, 0, out, e);
	g_object_unref(im);
	return rc;
}

/* ---- the engine ---- */

static int cmp_rel(const void *a, const void *b)
{
	const char *const *x = a, *const *y = b;
	return strcmp(*x, *y);
}

static long find_file(const struct kiln_compose *c, const char *rel)
{
	size_t lo = 0, hi = c->nfiles;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int d = strcmp(c->files[mid].rel, rel);
		if (d == 0)
			return (long)mid;
		if (d < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* Path and hash (the recipe module's, taken when it read the file). A file that could not be
 * hashed is not fatal here: it becomes F_FAILED and everything that uses it fails with the
 * recipe module's message. Only out-of-memory fails the engine. */
static int file_init(struct cfile *f, const struct kiln_recipe *r, const char *dir,
		     const char *rel, int legendary, struct kiln_error *e)
{
	const struct kiln_error *err;
	const char *sha = kiln_recipe_file_sha(r, legendary, rel, &err);
	f->rel = rel;
	f->state = F_PENDING;
	f->path = kiln_fs_join(dir, rel);
	if (!f->path)
		return kiln_error_set(e, KILN_E_NOMEM, rel, "out of memory");
	if (sha) {
		memcpy(f->sha, sha, 65);
	} else {
		f->err = *err;
		f->state = F_FAILED;
	}
	return 0;
}

static void files_free(struct cfile *f, size_t n)
{
	if (!f)
		return;
	for (size_t i = 0; i < n; i++) {
		free(f[i].path);
		VIPS_UNREF(f[i].img);
		free(f[i].row_run);
		free(f[i].runs);
		pthread_mutex_destroy(&f[i].mu);
	}
	free(f);
}

void kiln_compose_free(struct kiln_compose *c)
{
	if (!c)
		return;
	while (c->pool) {
		struct scratch *x = c->pool;
		c->pool = x->next;
		scratch_free(x);
	}
	pthread_mutex_destroy(&c->pool_mu);
	kiln_png_bands_free(c->bands);
	files_free(c->files, c->nfiles);
	files_free(c->legs, c->nlegs);
	free(c->toff);
	free(c->tfile);
	free(c);
}

int kiln_compose_new(struct kiln_compose **out, const struct kiln_spec *s,
		     const struct kiln_recipe *r, struct kiln_error *e)
{
	struct kiln_compose *c = NULL;
	const char **rels = NULL;
	size_t ntraits = 0, nrels = 0;
	int rc = 0;
	*out = NULL;
	if ((rc = kiln_vips_init(e)))
		return rc;
	if (s->width <= 0 || s->height <= 0)
		return kiln_error_set(e, KILN_E_SPEC, s->path, "image size %dx%d is not positive",
				      s->width, s->height);
	for (size_t l = 0; l < s->nlayers; l++)
		ntraits += s->layers[l].ntraits;
	c = kiln_calloc(1, sizeof *c);
	if (!c)
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
	c->s = s;
	pthread_mutex_init(&c->pool_mu, NULL);
	c->toff = kiln_calloc(s->nlayers + 1, sizeof *c->toff);
	c->tfile = kiln_calloc(ntraits + 1, sizeof *c->tfile);
	rels = kiln_calloc(ntraits + 1, sizeof *rels);
	c->legs = kiln_calloc(s->nlegendaries + 1, sizeof *c->legs);
	if ((rc = kiln_png_bands_new(&c->bands, BAND_CACHE_MAX, e)))
		goto out;
	if (!c->toff || !c->tfile || !rels || !c->legs) {
		rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
		goto out;
	}
	for (size_t l = 0; l < s->nlayers; l++)
		for (size_t t = 0; t < s->layers[l].ntraits; t++) {
			const struct kiln_trait *tr = &s->layers[l].traits[t];
			if (!tr->is_none && tr->file)
				rels[nrels++] = tr->file;
		}
	qsort(rels, nrels, sizeof *rels, cmp_rel);
	c->files = kiln_calloc(nrels + 1, sizeof *c->files);
	if (!c->files) {
		rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nrels; i++) {
		if (c->nfiles && strcmp(c->files[c->nfiles - 1].rel, rels[i]) == 0)
			continue;
		pthread_mutex_init(&c->files[c->nfiles].mu, NULL);
		c->nfiles++;
		rc = file_init(&c->files[c->nfiles - 1], r, s->dir, rels[i], 0, e);
		if (rc)
			goto out;
	}
	for (size_t l = 0, k = 0; l < s->nlayers; l++) {
		c->toff[l] = k;
		for (size_t t = 0; t < s->layers[l].ntraits; t++, k++) {
			const struct kiln_trait *tr = &s->layers[l].traits[t];
			c->tfile[k] = NO_FILE;
			if (!tr->is_none && tr->file)
				c->tfile[k] = (size_t)find_file(c, tr->file);
		}
	}
	for (size_t i = 0; i < s->nlegendaries; i++) {
		const struct kiln_legendary *lg = &s->legendaries[i];
		pthread_mutex_init(&c->legs[i].mu, NULL);
		c->nlegs++;
		if (!lg->file) {
			kiln_error_set(&c->legs[i].err, KILN_E_SPEC, lg->name,
				       "the legendary has no file; add file: to it in kiln.yaml");
			c->legs[i].state = F_FAILED;
			continue;
		}
		rc = file_init(&c->legs[i], r, s->dir, lg->file, 1, e);
		if (rc)
			goto out;
	}
	*out = c;
	c = NULL;
out:
	free(rels);
	kiln_compose_free(c);
	return rc;
}

int kiln_compose_check(struct kiln_compose *c, const uint32_t *const *traits, size_t n,
		       struct kiln_error *e)
{
	const struct kiln_spec *s = c->s;
	unsigned char *used = kiln_calloc(c->nfiles + 1, 1);
	const char **names = kiln_calloc(c->nfiles + 1, sizeof *names);
	const char **whys = kiln_calloc(c->nfiles + 1, sizeof *whys);
	size_t nbad = 0;
	int rc = 0;
	if (!used || !names || !whys) {
		rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		for (size_t l = 0; traits[i] && l < s->nlayers; l++)
			if (traits[i][l] < s->layers[l].ntraits) {
				size_t f = c->tfile[c->toff[l] + traits[i][l]];
				if (f != NO_FILE && s->layers[l].opacity > 0)
					used[f] = 1;
			}
	for (size_t f = 0; f < c->nfiles; f++) {
		VipsImage *im;
		struct kiln_error fe;
		if (!used[f])
			continue;
		kiln_error_clear(&fe);
		if (!(rc = layer_image(c, f, &im, &fe)))
			continue;
		if (rc == KILN_E_NOMEM) {
			*e = fe;
			goto out;
		}
		rc = 0;
		names[nbad] = c->files[f].rel;
		whys[nbad++] = c->files[f].err.msg;
	}
	if (nbad)
		rc = kiln_spec_files_report(e, KILN_E_SPEC, s->path, "layer files", names, whys,
					    nbad);
out:
	free(used);
	free(names);
	free(whys);
	return rc;
}

/* The file drawn for layer l, or NO_FILE when the layer draws nothing. */
static int pick(const struct kiln_compose *c, size_t l, const uint32_t *traits, size_t *file,
		struct kiln_error *e)
{
	const struct kiln_layer *ly = &c->s->layers[l];
	if (traits[l] >= ly->ntraits) {
		kiln_error_set(e, KILN_E_STATE, ly->name, "trait index %u is out of range (the "
			       "layer has %zu values); the plan does not match kiln.yaml",
			       (unsigned)traits[l], ly->ntraits);
		return kiln_error_hint(e, KILN_HINT_PLAN, NULL);
	}
	*file = c->tfile[c->toff[l] + traits[l]];
	if (!(ly->opacity > 0))
		*file = NO_FILE;
	return 0;
}

int kiln_compose_item(struct kiln_compose *c, const uint32_t *traits, struct kiln_buf *out,
		      struct kiln_error *e)
{
	const struct kiln_spec *s = c->s;
	VipsImage **in = NULL, *result = NULL;
	struct cfile **L = NULL;
	struct scratch *x = NULL;
	void *vpx = NULL;
	const uint8_t *px;
	int *modes = NULL, rc = 0, fast = 1;
	size_t n = 0, len;
	in = kiln_calloc(s->nlayers + 1, sizeof *in);
	L = kiln_calloc(s->nlayers + 1, sizeof *L);
	modes = kiln_calloc(s->nlayers + 1, sizeof *modes);
	if (!in || !L || !modes) {
		rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
		goto out;
	}
	for (size_t l = 0; l < s->nlayers; l++) {
		const struct kiln_layer *ly = &s->layers[l];
		VipsImage *im = NULL;
		size_t fi;
		rc = pick(c, l, traits, &fi, e);
		if (rc)
			goto out;
		if (fi == NO_FILE)
			continue;
		rc = layer_image(c, fi, &im, e);
		if (rc)
			goto out;
		/* the bottom drawn layer's blend mode has no effect (see below) */
		if (ly->opacity < 1 || (n > 0 && ly->blend != KILN_BLEND_OVER))
			fast = 0;
		L[n] = &c->files[fi];
		modes[n++] = blend_mode(ly->blend);
	}
	if ((rc = scratch_get(c, &x, e)))
		goto out;
	if (fast) {
		/* nothing drawn: transparent; one layer: itself; else alpha-over */
		if (n == 0) {
			memset(x->canvas, 0, (size_t)s->width * s->height * 4);
			px = x->canvas;
		} else if (n == 1) {
			px = L[0]->px;
		} else if (s->format == KILN_FORMAT_PNG && !s->png_palette && s->scale <= 1 &&
			   s->pixelate <= 1 &&
			   (L[0]->opaque || s->png_keep_alpha)) {
			/* straight into the PNG filter, a row at a time: no canvas. Over an opaque
			 * bottom layer the result is opaque (aR = aA + 1 * (1 - aA) = 1), so alpha
			 * auto needs no scan; otherwise only keep_alpha knows its colour type. */
			struct kiln_png_opts o = { s->png_compression,
						   (enum kiln_png_filter)s->png_filter,
						   !s->png_keep_alpha };
			struct rows rw = { L, n, s->width, x->st, x->dirty };
			pthread_once(&div255_once, div255_init);
			if (o.filter == KILN_PNG_FILTER_NONE || o.filter == KILN_PNG_FILTER_SUB) {
				band_keys(c, L, n, x->keys);
				rc = kiln_png_encode_bands(composite_row_fn, &rw, x->keys, s->width,
							   s->height, L[0]->opaque, &o, c->bands,
							   &x->png, out, e);
			} else {
				rc = kiln_png_encode_rows(composite_row_fn, &rw, s->width,
							  s->height, L[0]->opaque, &o, &x->png,
							  out, e);
			}
			goto out;
		} else {
			composite_over(x->canvas, L, n, s->width, s->height, x->st, x->dirty);
			px = x->canvas;
		}
		rc = finish(c, x, px, out, e);
		goto out;
	}
	/* Other blend modes and opacity: vips_composite. The bottom drawn layer is the base: on
	 * a transparent canvas every blend mode gives the layer itself, so its mode is not
	 * needed and the canvas is skipped. */
	for (size_t i = 0; i < n; i++) {
		const struct kiln_layer *ly = NULL;
		for (size_t l = 0, k = 0; l < s->nlayers; l++) {
			size_t fi;
			if (pick(c, l, traits, &fi, e) || fi == NO_FILE)
				continue;
			if (k++ == i) {
				ly = &s->layers[l];
				break;
			}
		}
		if (ly && ly->opacity < 1) {
			double a[4] = { 1, 1, 1, ly->opacity }, b[4] = { 0, 0, 0, 0 };
			if (vips_linear(L[i]->img, &in[i], a, b, 4, "uchar", TRUE, NULL)) {
				rc = vips_fail(e, L[i]->rel, "cannot apply the layer's opacity", NULL);
				goto out;
			}
		} else {
			in[i] = L[i]->img;
			g_object_ref(in[i]);
		}
	}
	if (n == 1) {
		result = in[0];
		g_object_ref(result);
	} else if (vips_composite(in, &result, (int)n, modes + 1, NULL)) {
		rc = vips_fail(e, NULL, "cannot composite the layers", NULL);
		goto out;
	}
	vpx = vips_image_write_to_memory(result, &len);
	if (!vpx) {
		rc = vips_fail(e, NULL, "cannot composite the layers", NULL);
		goto out;
	}
	rc = finish(c, x, vpx, out, e);
out:
	g_free(vpx);
	scratch_put(c, x);
	VIPS_UNREF(result);
	for (size_t i = 0; in && i < n; i++)
		VIPS_UNREF(in[i]);
	free(in);
	free(L);
	free(modes);
	return rc;
}

int kiln_compose_legendary(struct kiln_compose *c, size_t legendary, struct kiln_buf *out,
			   struct kiln_error *e)
{
	const struct cfile *f;
	struct scratch *x = NULL;
	VipsImage *im = NULL;
	int rc;
	if (legendary >= c->s->nlegendaries) {
		kiln_error_set(e, KILN_E_STATE, NULL, "legendary %zu does not exist (%zu in "
			       "kiln.yaml)", legendary, c->s->nlegendaries);
		return kiln_error_hint(e, KILN_HINT_PLAN, NULL);
	}
	f = &c->legs[legendary];
	if (f->state == F_FAILED) {
		*e = f->err;
		return f->err.code;
	}
	rc = decode(c->s, f, USE_LEGENDARY, &im, e);
	if (rc)
		goto out;
	if ((rc = scratch_get(c, &x, e)))
		goto out;
	rc = finish(c, x, (const uint8_t *)VIPS_IMAGE_ADDR(im, 0, 0), out, e);
out:
	scratch_put(c, x);
	VIPS_UNREF(im);
	return rc;
}
