/* vector.c: SVGs of a token's image.
 *
 * pixels: exact, for pixel art. Each row is cut into runs of one colour; a run with the same
 * x, width and colour as a rectangle open from the row above extends it; each colour is one
 * <path> of rectangles ("M x y h w v h h -w z"), colours in order of their first pixel. On
 * integer coordinates at the image's size a rasteriser (librsvg/cairo) covers every pixel
 * wholly or not at all, so the raster back is the PNG (tests/unit/test_polish.c, with
 * rsvg-convert).
 *
 * trace: libimagequant quantises to N colours (no dithering); colours are drawn largest
 * first, and the mask traced for a colour (potrace) holds its pixels and those of every
 * colour drawn after it, so the layers stack without gaps between them. The path data is
 * written small (struct pen below): relative, tenths of a pixel, straight runs merged.
 */
#include "polish/ops.h"
#include "kiln/render.h"
#include "util/alloc.h"
#include "util/image.h"

#include <potracelib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int kiln_polish_load_rgba(const char *path, uint64_t max_pixels, struct kiln_rgba *out,
			  struct kiln_error *e)
{
	struct kiln_image8 im;
	size_t n;
	int rc;
	memset(out, 0, sizeof *out);
	if ((rc = kiln_vips_init(e)) ||
	    (rc = kiln_image_check_pixels(path, max_pixels ? max_pixels : KILN_IMAGE_MAX_PIXELS,
					  NULL, NULL, e)) ||
	    (rc = kiln_image_decode8(path, &im, e)))
		return rc;
	n = (size_t)im.width * (size_t)im.height;
	if (!(out->px = kiln_malloc(n * 4 + 1))) {
		kiln_image8_release(&im);
		return kiln_error_set(e, KILN_E_NOMEM, path, "out of memory");
	}
	out->w = im.width;
	out->h = im.height;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *s = im.pixels + i * (size_t)im.bands;
		uint8_t *d = out->px + i * 4;
		switch (im.bands) {
		case 1: d[0] = d[1] = d[2] = s[0]; d[3] = 255; break;
		case 2: d[0] = d[1] = d[2] = s[0]; d[3] = s[1]; break;
		case 3: memcpy(d, s, 3); d[3] = 255; break;
		default: memcpy(d, s, 4); break;
		}
	}
	kiln_image8_release(&im);
	return 0;
}

static int header(struct kiln_buf *out, int w, int h, const char *extra)
{
	char t[512];
	int n = snprintf(t, sizeof t, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\""
			 "http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" height=\"%d\" "
			 "viewBox=\"0 0 %d %d\"%s>\n", w, h, w, h, extra);
	return kiln_buf_add(out, t, (size_t)n);
}

static int fill_attr(struct kiln_buf *out, const uint8_t *c, const char *rule)
{
	char t[128];
	int n;
	if (c[3] == 255)
		n = snprintf(t, sizeof t, "<path fill=\"#%02x%02x%02x\"%s d=\"", c[0], c[1], c[2],
			     rule);
	else
		n = snprintf(t, sizeof t, "<path fill=\"#%02x%02x%02x\" fill-opacity=\"%.6g\"%s "
			     "d=\"", c[0], c[1], c[2], c[3] / 255.0, rule);
	return kiln_buf_add(out, t, (size_t)n);
}

/* ---- pixels ---- */

struct rect {
	uint32_t color;           /* RGBA as bytes in memory order */
	int x, y, w, h;
	size_t first;             /* order of the colour's first pixel (for the output order) */
};

static int cmp_rect(const void *a, const void *b)
{
	const struct rect *p = a, *q = b;
	if (p->first != q->first)
		return p->first < q->first ? -1 : 1;
	if (p->y != q->y)
		return p->y < q->y ? -1 : 1;
	return p->x < q->x ? -1 : p->x > q->x;
}

static uint32_t px_at(const struct kiln_rgba *im, int x, int y)
{
	uint32_t v;
	memcpy(&v, im->px + ((size_t)y * (size_t)im->w + (size_t)x) * 4, 4);
	return v;
}

int kiln_polish_svg_pixels(const struct kiln_rgba *im, struct kiln_buf *out,
			   struct kiln_error *e)
{
	/* open: rectangles still growing (indexes into rects), sorted by x; next: this row's */
	struct rect *rects = NULL;
	size_t nrects = 0, cap = 0, *open = NULL, nopen = 0, *next = NULL, nnext;
	uint32_t *seen = NULL;
	size_t nseen = 0, seencap = 0;
	int rc = 0;
	if (!(open = kiln_calloc((size_t)im->w + 1, sizeof *open)) ||
	    !(next = kiln_calloc((size_t)im->w + 1, sizeof *next)))
		goto nomem;
	for (int y = 0; y < im->h; y++) {
		size_t k = 0;
		nnext = 0;
		for (int x = 0; x < im->w;) {
			uint32_t c = px_at(im, x, y);
			int x0 = x;
			while (x < im->w && px_at(im, x, y) == c)
				x++;
			if (!((const uint8_t *)&c)[3])
				continue;
			while (k < nopen && rects[open[k]].x < x0)
				k++;
			if (k < nopen && rects[open[k]].x == x0 && rects[open[k]].w == x - x0 &&
			    rects[open[k]].color == c) {
				rects[open[k]].h++;
				next[nnext++] = open[k++];
				continue;
			}
			if (nrects == cap) {
				size_t nc = cap ? cap * 2 : 1024;
				struct rect *t = kiln_realloc(rects, nc * sizeof *t);
				if (!t)
					goto nomem;
				rects = t;
				cap = nc;
			}
			rects[nrects] = (struct rect){c, x0, y, x - x0, 1, 0};
			/* the colour's order: its first rectangle's */
			{
				size_t s = 0;
				while (s < nseen && seen[s] != c)
					s++;
				if (s == nseen) {
					if (nseen == seencap) {
						size_t nc = seencap ? seencap * 2 : 64;
						uint32_t *t = kiln_realloc(seen, nc * sizeof *t);
						if (!t)
							goto nomem;
						seen = t;
						seencap = nc;
					}
					seen[nseen++] = c;
				}
				rects[nrects].first = s;
			}
			next[nnext++] = nrects++;
		}
		memcpy(open, next, nnext * sizeof *open);
		nopen = nnext;
	}
	qsort(rects, nrects, sizeof *rects, cmp_rect);
	if ((rc = header(out, im->w, im->h, " shape-rendering=\"crispEdges\"")))
		goto out;
	for (size_t i = 0; i < nrects && !rc; i++) {
		char t[96];
		int n;
		if ((!i || rects[i].first != rects[i - 1].first) &&
		    (rc = fill_attr(out, (const uint8_t *)&rects[i].color, "")))
			break;
		n = snprintf(t, sizeof t, "M%d %dh%dv%dh-%dz", rects[i].x, rects[i].y, rects[i].w,
			     rects[i].h, rects[i].w);
		if ((rc = kiln_buf_add(out, t, (size_t)n)))
			break;
		if ((i + 1 == nrects || rects[i + 1].first != rects[i].first) &&
		    (rc = kiln_buf_add(out, "\"/>\n", 4)))
			break;
	}
	if (!rc)
		rc = kiln_buf_add(out, "</svg>\n", 7);
	if (rc)
		rc = kiln_error_set(e, KILN_E_NOMEM, "vectorize", "the SVG outgrew its buffer");
	goto out;
nomem:
	rc = kiln_error_set(e, KILN_E_NOMEM, "vectorize", "out of memory");
out:
	free(rects);
	free(open);
	free(next);
	free(seen);
	return rc;
}

/* ---- trace ---- */

/* Path data of the trace, made small: coordinates in tenths of a pixel (potrace's curves are
 * within ~0.2 px of the mask's edges, so a tenth is below what the tracing already moves),
 * relative commands (m, l, h, v, c: the numbers are short deltas), a command letter written
 * only when it changes, no separator where a '-' or the letter separates, straight segments
 * in one direction merged (potrace ends a corner's two sides at their midpoints), and the
 * line back to the start left to z. The rounding is done on absolute positions (the deltas
 * are between rounded points), so no error accumulates. */
struct pen {
	struct kiln_buf *out;
	long x, y;                /* the current point, tenths */
	long lx, ly;              /* a straight segment not written yet (lines: 1) */
	int lines;
	char op;                  /* the last command written */
	int need_sep;             /* the last thing written was a number */
};

static long tenths(double v)
{
	return (long)(v * 10.0 + (v < 0 ? -0.5 : 0.5));
}

static int num(struct pen *p, long t)
{
	char s[32];
	int n = 0;
	unsigned long a = (unsigned long)(t < 0 ? -t : t);
	if (t < 0)
		s[n++] = '-';
	else if (p->need_sep)
		s[n++] = ' ';
	if (a >= 10 || a % 10 == 0)
		n += snprintf(s + n, sizeof s - (size_t)n, "%lu", a / 10);
	if (a % 10)
		n += snprintf(s + n, sizeof s - (size_t)n, ".%lu", a % 10);
	p->need_sep = 1;
	return kiln_buf_add(p->out, s, (size_t)n);
}

static int letter(struct pen *p, char op)
{
	if (op == p->op)
		return 0;
	p->op = op;
	p->need_sep = 0;
	return kiln_buf_add(p->out, &op, 1);
}

/* the straight segment waiting, as h, v or l */
static int flush_line(struct pen *p)
{
	int rc;
	if (!p->lines)
		return 0;
	p->lines = 0;
	if (!p->lx)
		return letter(p, 'v') || num(p, p->ly);
	if (!p->ly)
		return letter(p, 'h') || num(p, p->lx);
	rc = letter(p, 'l') || num(p, p->lx) || num(p, p->ly);
	return rc;
}

static int line_to(struct pen *p, potrace_dpoint_t q)
{
	long dx = tenths(q.x) - p->x, dy = tenths(q.y) - p->y;
	int rc = 0;
	if (!dx && !dy)
		return 0;
	if (p->lines && p->lx * dy == p->ly * dx && p->lx * dx + p->ly * dy > 0) {
		p->lx += dx;
		p->ly += dy;
	} else {
		rc = flush_line(p);
		p->lx = dx;
		p->ly = dy;
		p->lines = 1;
	}
	p->x += dx;
	p->y += dy;
	return rc;
}

static int curve_to(struct pen *p, const potrace_dpoint_t q[3])
{
	int rc = flush_line(p) || letter(p, 'c');
	for (int i = 0; i < 3 && !rc; i++)
		rc = num(p, tenths(q[i].x) - p->x) || num(p, tenths(q[i].y) - p->y);
	p->x = tenths(q[2].x);
	p->y = tenths(q[2].y);
	return rc;
}

/* potrace's paths of one mask as path data (even-odd: holes are the paths inside). */
static int write_paths(const potrace_path_t *pl, struct pen *pen)
{
	int rc = 0;
	for (const potrace_path_t *p = pl; p && !rc; p = p->next) {
		const potrace_curve_t *c = &p->curve;
		potrace_dpoint_t start;
		if (c->n < 1)
			continue;
		start = c->c[c->n - 1][2];
		rc = letter(pen, 'm') || num(pen, tenths(start.x) - pen->x) ||
		     num(pen, tenths(start.y) - pen->y);
		pen->x = tenths(start.x);
		pen->y = tenths(start.y);
		pen->op = 'l'; /* after m, pairs are lines */
		for (int i = 0; i < c->n && !rc; i++) {
			if (c->tag[i] == POTRACE_CORNER)
				rc = line_to(pen, c->c[i][1]) || line_to(pen, c->c[i][2]);
			else
				rc = curve_to(pen, c->c[i]);
		}
		/* the last line ends at the start: z draws it */
		pen->lines = 0;
		pen->x = tenths(start.x);
		pen->y = tenths(start.y);
		if (!rc)
			rc = kiln_buf_add(pen->out, "z", 1);
		pen->op = 'z';
		pen->need_sep = 0;
	}
	return rc;
}

int kiln_polish_svg_trace(const struct kiln_rgba *im, int colors, struct kiln_buf *out,
			  struct kiln_error *e)
{
	size_t n = (size_t)im->w * (size_t)im->h, count[256] = {0};
	uint8_t *idx = kiln_malloc(n + 1), pal[256][4], rank[256];
	int npal = 0, order[256], rc;
	potrace_bitmap_t bm;
	potrace_param_t *param = NULL;
	const int bpw = (int)(8 * sizeof(potrace_word));
	memset(&bm, 0, sizeof bm);
	if (!idx)
		return kiln_error_set(e, KILN_E_NOMEM, "vectorize", "out of memory");
	if ((rc = kiln_render_quantize(im->px, im->w, im->h, colors, 0, idx, pal, &npal, e)))
		goto out;
	for (size_t i = 0; i < n; i++)
		if (im->px[i * 4 + 3] >= 128)
			count[idx[i]]++;
	for (int i = 0; i < npal; i++)
		order[i] = i;
	/* largest first; ties by palette index */
	for (int i = 1; i < npal; i++)
		for (int j = i; j > 0 && count[order[j]] > count[order[j - 1]]; j--) {
			int t = order[j];
			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	for (int i = 0; i < npal; i++)
		rank[order[i]] = (uint8_t)i;
	bm.w = im->w;
	bm.h = im->h;
	bm.dy = (im->w + bpw - 1) / bpw;
	if (!(bm.map = kiln_calloc((size_t)bm.dy * (size_t)im->h + 1, sizeof(potrace_word))) ||
	    !(param = potrace_param_default())) {
		rc = kiln_error_set(e, KILN_E_NOMEM, "vectorize", "out of memory");
		goto out;
	}
	if ((rc = header(out, im->w, im->h, "")))
		goto nobuf;
	for (int r = 0; r < npal; r++) {
		int c = order[r];
		size_t set = 0;
		struct pen pen = {out, 0, 0, 0, 0, 0, 0, 0};
		potrace_state_t *st;
		if (!count[c])
			break;
		memset(bm.map, 0, (size_t)bm.dy * (size_t)im->h * sizeof(potrace_word));
		for (int y = 0; y < im->h; y++)
			for (int x = 0; x < im->w; x++) {
				size_t i = (size_t)y * (size_t)im->w + (size_t)x;
				if (im->px[i * 4 + 3] >= 128 && rank[idx[i]] >= r) {
					bm.map[(size_t)y * (size_t)bm.dy + (size_t)(x / bpw)] |=
						(potrace_word)1 << (bpw - 1 - x % bpw);
					set++;
				}
			}
		if (!set)
			continue;
		pal[c][3] = 255;
		if (set == n) {
			/* the first colour's mask is the whole image: a rectangle, nothing to trace */
			char t[160];
			int k = snprintf(t, sizeof t, "<rect width=\"%d\" height=\"%d\" fill=\""
					 "#%02x%02x%02x\"/>\n", im->w, im->h, pal[c][0], pal[c][1],
					 pal[c][2]);
			if ((rc = kiln_buf_add(out, t, (size_t)k)))
				goto nobuf;
			continue;
		}
		st = potrace_trace(param, &bm);
		if (!st || st->status != POTRACE_STATUS_OK) {
			potrace_state_free(st);
			rc = kiln_error_set(e, KILN_E_NOMEM, "vectorize", "potrace could not trace "
					    "colour %d of %d", r + 1, npal);
			goto out;
		}
		rc = fill_attr(out, pal[c], " fill-rule=\"evenodd\"") || write_paths(st->plist, &pen) ||
		     kiln_buf_add(out, "\"/>\n", 4);
		potrace_state_free(st);
		if (rc)
			goto nobuf;
	}
	if (!(rc = kiln_buf_add(out, "</svg>\n", 7)))
		goto out;
nobuf:
	rc = kiln_error_set(e, KILN_E_NOMEM, "vectorize", "the SVG outgrew its buffer");
out:
	if (param)
		potrace_param_free(param);
	free(bm.map);
	free(idx);
	return rc;
}
