/* qa/svg.c: the polish stage's SVGs judged before they are released (qa_check_svgs, run.h).
 *
 * Each token's SVG is the output of the vectorize step of its current polish chain: the
 * token's image itself (image.format svg: the step's output is the final image) or the file
 * released beside its raster image (a vectorize step made on the final image). Checks, each
 * a finding tied to the token:
 *   svg.file_size   over the qa: block's file size limit (the images' one: the SVG is a
 *                   released file too);
 *   svg.malformed   librsvg (through libvips' svgload) cannot parse it;
 *   svg.dimensions  its size, or its viewBox, is not the image size times the upscale
 *                   factors (o->width x o->height, what the raster image must be);
 *   svg.blank       rasterised at 64 px on its longest side (libvips svgload, scale), every
 *                   band nearly uniform or every colour channel black: the image checks'
 *                   thresholds (o->uniform_stddev, o->black_level).
 * An SVG that is the token's image is also judged by the image checks (decoded whole at its
 * size, blank, duplicates): here it gets only the file size and viewBox checks, so that no
 * fault is reported twice.
 * Sizes: one SVG in memory at a time, one 64 px raster.
 */
#include "qa/run.h"
#include "kiln/catalog.h"
#include "util/alloc.h"
#include "kiln/buf.h"
#include "util/fs.h"
#include "util/image.h"

#include "kiln/project.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

#define RASTER 64 /* longest side of the blank check's raster */

struct svgs {
	const struct kiln_items *items;
	char (*svg)[65];
	unsigned char *is_image;
};

static int one(void *user, const struct kiln_polish_step *st)
{
	struct svgs *s = user;
	const struct kiln_item *it;
	size_t i;
	if (strcmp(st->kind, "vectorize") || strlen(st->output) != 64 ||
	    !(it = kiln_items_find(s->items, st->item_id, &i)))
		return 0;
	if (st->image ? !strcmp(st->output, it->image) : !strcmp(st->input, it->image)) {
		memcpy(s->svg[i], st->output, 65);
		s->is_image[i] = (unsigned char)(st->image != 0);
	}
	return 0;
}

static int add(struct kiln_findings *f, uint64_t id, const char *check, const char *file,
	       struct kiln_error *e, const char *fmt, ...) KILN_PRINTF(6, 7);
static int add(struct kiln_findings *f, uint64_t id, const char *check, const char *file,
	       struct kiln_error *e, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int rc;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	kiln_findings_set_item(f, 1, id);
	rc = kiln_findings_add(f, check, KILN_SEV_ERROR, file, "", "%s", msg);
	kiln_findings_set_item(f, 0, 0);
	return rc ? kiln_error_set(e, KILN_E_NOMEM, "qa", "out of memory") : 0;
}

/* The root element's viewBox: 1 and its four numbers, 0 when it has none, -1 unreadable. */
static int view_box(const char *svg, size_t len, double v[4])
{
	const char *root = NULL, *end, *a;
	char box[128];
	size_t n;
	for (const char *p = svg; p && p < svg + len; p = memchr(p + 1, '<', len - (size_t)(p + 1 - svg)))
		if (*p == '<' && (size_t)(svg + len - p) > 5 && !strncmp(p, "<svg", 4) &&
		    (p[4] == ' ' || p[4] == '\t' || p[4] == '\n' || p[4] == '\r' || p[4] == '>')) {
			root = p;
			break;
		}
	if (!root || !(end = memchr(root, '>', len - (size_t)(root - svg))))
		return -1;
	for (a = root; a < end; a++)
		if (!strncmp(a, "viewBox=", 8) && (a[-1] == ' ' || a[-1] == '\t' || a[-1] == '\n' ||
						   a[-1] == '\r'))
			break;
	if (a >= end || (a[8] != '"' && a[8] != '\''))
		return 0;
	n = strcspn(a + 9, a[8] == '"' ? "\"" : "'");
	if (n >= sizeof box || a + 9 + n >= end)
		return -1;
	memcpy(box, a + 9, n);
	box[n] = 0;
	for (char *c = box; *c; c++)
		if (*c == ',')
			*c = ' ';
	return sscanf(box, "%lf %lf %lf %lf", &v[0], &v[1], &v[2], &v[3]) == 4 ? 1 : -1;
}

/* vips' error text, cleared, in out */
static void vips_why(char *out, size_t size)
{
	const char *t = vips_error_buffer();
	size_t n;
	snprintf(out, size, "%s", t && *t ? t : "librsvg could not read it");
	vips_error_clear();
	n = strlen(out);
	while (n && (out[n - 1] == '\n' || out[n - 1] == ' '))
		out[--n] = 0;
	for (char *c = out; *c; c++)
		if (*c == '\n')
			*c = ' ';
}

/* Rasterised small: *blank (uniform), *black, per the image checks' rule. -1: cannot. */
static int raster_stats(const struct kiln_buf *b, int w, int h, const struct kiln_qa_opts *o,
			int *blank, int *black, char *why, size_t whysize)
{
	VipsImage *im = NULL, *u = NULL, *st = NULL;
	double scale = (double)RASTER / (w > h ? w : h);
	int rc = -1;
	if (scale > 1)
		scale = 1;
	if (vips_svgload_buffer(b->data, b->len, &im, "scale", scale, NULL) ||
	    vips_cast_uchar(im, &u, NULL) || vips_stats(u, &st, NULL)) {
		vips_why(why, whysize);
		goto out;
	}
	{
		int bands = vips_image_get_bands(u), color = bands == 2 || bands == 4 ? bands - 1
										     : bands;
		double maxsd = 0, maxc = 0;
		for (int k = 0; k < bands; k++) {
			double *row = VIPS_MATRIX(st, 0, k + 1);
			if (row[5] > maxsd)
				maxsd = row[5];
			if (k < color && row[1] > maxc)
				maxc = row[1];
		}
		*black = maxc <= o->black_level;
		*blank = maxsd < o->uniform_stddev;
	}
	rc = 0;
out:
	if (st)
		g_object_unref(st);
	if (u)
		g_object_unref(u);
	if (im)
		g_object_unref(im);
	return rc;
}

/* The checks of one SVG (b, the file named file) of token id; w x h in o: the size expected. */
static int check_bytes(uint64_t id, const char *file, int is_image, const struct kiln_qa_opts *o,
		       const struct kiln_buf *b, struct kiln_findings *f, struct kiln_error *e)
{
	char why[512];
	double v[4];
	VipsImage *im = NULL;
	int vb, rc, w, h;
	if (o->max_bytes && b->len > o->max_bytes &&
	    (rc = add(f, id, "svg.file_size", file, e, "%zu bytes, over the limit of %llu: "
		      "fewer colours (trace) or no vectorize for this collection", b->len,
		      (unsigned long long)o->max_bytes)))
		return rc;
	vb = view_box((const char *)b->data, b->len, v);
	if (vb < 0)
		return add(f, id, "svg.malformed", file, e, "no readable <svg> root element "
			   "with a viewBox of four numbers");
	if (vb && o->width && o->height &&
	    (v[0] != 0 || v[1] != 0 || v[2] != o->width || v[3] != o->height) &&
	    (rc = add(f, id, "svg.dimensions", file, e, "viewBox is \"%g %g %g %g\", "
		      "expected \"0 0 %d %d\" (the image's size)", v[0], v[1], v[2], v[3],
		      o->width, o->height)))
		return rc;
	if (is_image)
		return 0; /* decoded whole and judged by the image checks */
	if (vips_svgload_buffer(b->data, b->len, &im, NULL)) {
		vips_why(why, sizeof why);
		return add(f, id, "svg.malformed", file, e, "librsvg cannot parse it: %s", why);
	}
	w = vips_image_get_width(im);
	h = vips_image_get_height(im);
	g_object_unref(im);
	if (o->width && o->height && (w != o->width || h != o->height) &&
	    (rc = add(f, id, "svg.dimensions", file, e, "%dx%d, expected %dx%d (the size of "
		      "the image it was made from)", w, h, o->width, o->height)))
		return rc;
	{
		int blank = 0, black = 0;
		if (raster_stats(b, w, h, o, &blank, &black, why, sizeof why))
			return add(f, id, "svg.malformed", file, e, "librsvg cannot draw it: %s",
				   why);
		if (black)
			return add(f, id, "svg.blank", file, e, "draws all black (no colour "
				   "channel above %d): vectorize it again", o->black_level);
		if (blank)
			return add(f, id, "svg.blank", file, e, "draws a blank or nearly uniform "
				   "picture (every band's standard deviation under %.2f at %d px): "
				   "vectorize it again", o->uniform_stddev, RASTER);
	}
	return 0;
}

static int check_one(struct kiln_project *p, const struct kiln_item *it, const char *sha,
		     int is_image, const struct kiln_qa_opts *o, struct kiln_buf *b,
		     struct kiln_findings *f, struct kiln_error *e)
{
	char file[48], *path;
	int rc;
	struct kiln_error re;
	snprintf(file, sizeof file, "%llu.svg", (unsigned long long)it->id);
	if (!(path = kiln_store_path(p->store, sha)))
		return kiln_error_set(e, KILN_E_NOMEM, "qa", "out of memory");
	kiln_buf_reset(b);
	rc = kiln_fs_read(path, b, &re);
	free(path);
	if (rc)
		return add(f, it->id, "svg.malformed", file, e, "token %llu's SVG %.12s... cannot "
			   "be read from the store: %s", (unsigned long long)it->id, sha, re.msg);
	return check_bytes(it->id, file, is_image, o, b, f, e);
}

int qa_check_svg_file(const char *path, uint64_t id, int is_image, const char *beside,
		      const struct kiln_qa_opts *o, struct kiln_findings *f, struct kiln_error *e)
{
	struct kiln_buf b = KILN_BUF_INIT;
	struct kiln_qa_opts oo = *o;
	struct kiln_error re;
	const char *file = strrchr(path, '/');
	int rc, w, h;
	file = file ? file + 1 : path;
	if ((rc = kiln_vips_init(e)))
		return rc;
	/* an SVG beside a raster image: the raster's size is the one expected */
	if (beside && !kiln_image_check_pixels(beside, KILN_IMAGE_MAX_PIXELS, &w, &h, &re)) {
		oo.width = w;
		oo.height = h;
	}
	if (kiln_fs_read(path, &b, &re))
		rc = add(f, id, "svg.malformed", file, e, "cannot be read: %s", re.msg);
	else
		rc = check_bytes(id, file, is_image, &oo, &b, f, e);
	kiln_buf_release(&b);
	return rc;
}

int qa_check_svgs(struct kiln_project *p, const struct kiln_items *items,
		  const struct kiln_qa_opts *o, struct kiln_findings *f, struct kiln_error *e)
{
	struct svgs s = {items, NULL, NULL};
	struct kiln_buf b = KILN_BUF_INIT;
	int rc;
	if (!(s.svg = kiln_calloc(items->n + 1, sizeof *s.svg)) ||
	    !(s.is_image = kiln_calloc(items->n + 1, 1))) {
		rc = kiln_error_set(e, KILN_E_NOMEM, "qa", "out of memory");
		goto out;
	}
	if ((rc = kiln_vips_init(e)) ||
	    (rc = kiln_catalog_polish_each(p->catalog, 0, 0, one, &s, e)))
		goto out;
	for (size_t i = 0; i < items->n && !rc; i++)
		if (s.svg[i][0])
			rc = check_one(p, &items->v[i], s.svg[i], s.is_image[i], o, &b, f, e);
out:
	kiln_buf_release(&b);
	free(s.svg);
	free(s.is_image);
	return rc;
}
