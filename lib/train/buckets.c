/* buckets: kohya's aspect-ratio buckets and the caption templates, as pure functions.
 *
 * The buckets follow kohya-ss/sd-scripts at 48d368fa557731ad0488c07304dfeba8c07910eb:
 * library/model_util.py make_bucket_resolutions() (the list) and library/train_util.py
 * BucketManager.select_bucket() with no_upscale False (which bucket an image goes to and the
 * size it is resized to before the centre crop of trim_and_resize_if_required()). An image
 * prepared here is exactly its bucket's size, which kohya then uses as it is (a size found in
 * the predefined set is kept).
 */
#include "kiln/train.h"
#include "kiln/buf.h"
#include "util/alloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_bucket(const void *a, const void *b)
{
	const struct kiln_bucket *x = a, *y = b;
	if (x->w != y->w)
		return x->w < y->w ? -1 : 1;
	return x->h < y->h ? -1 : x->h > y->h;
}

static int add(struct kiln_bucket *v, size_t *n, int w, int h)
{
	for (size_t i = 0; i < *n; i++)
		if (v[i].w == w && v[i].h == h)
			return 0;
	v[*n].w = w;
	v[(*n)++].h = h;
	return 0;
}

int kiln_train_buckets(int max_w, int max_h, int min_size, int max_size, int step,
		       struct kiln_bucket **out, size_t *n)
{
	long area = (long)max_w * max_h;
	size_t cap = 1, k = 0;
	struct kiln_bucket *v;
	int w;
	*out = NULL;
	*n = 0;
	if (step <= 0 || min_size <= 0 || max_size < min_size)
		return -1;
	cap += 2 * (size_t)((max_size - min_size) / step + 1);
	if (!(v = kiln_calloc(cap, sizeof *v)))
		return -1;
	/* width = int(math.sqrt(max_area) // divisible) * divisible */
	w = (int)floor(sqrt((double)area) / step) * step;
	add(v, &k, w, w);
	for (w = min_size; w <= max_size; w += step) {
		long h = (area / w) / step * step;
		if (h > max_size)
			h = max_size;
		if (h >= min_size) {
			add(v, &k, w, (int)h);
			add(v, &k, (int)h, w);
		}
	}
	qsort(v, k, sizeof *v, cmp_bucket);
	*out = v;
	*n = k;
	return 0;
}

void kiln_train_select_bucket(const struct kiln_bucket *v, size_t n, int w, int h,
			      struct kiln_bucket *bucket, int *rw, int *rh)
{
	double ar = (double)w / h, best = INFINITY, ar_reso, scale;
	size_t pick = 0;
	int exact = 0;
	for (size_t i = 0; i < n && !exact; i++)
		if (v[i].w == w && v[i].h == h) {
			pick = i;
			exact = 1;
		}
	/* numpy argmin of |ratio - ar|: the first of the smallest */
	for (size_t i = 0; i < n && !exact; i++) {
		double err = fabs((double)v[i].w / v[i].h - ar);
		if (err < best) {
			best = err;
			pick = i;
		}
	}
	*bucket = v[pick];
	ar_reso = (double)bucket->w / bucket->h;
	scale = ar > ar_reso ? (double)bucket->h / h : (double)bucket->w / w;
	*rw = (int)(w * scale + 0.5);
	*rh = (int)(h * scale + 0.5);
	/* never below the bucket (a rounding down by one pixel would leave nothing to crop) */
	if (*rw < bucket->w)
		*rw = bucket->w;
	if (*rh < bucket->h)
		*rh = bucket->h;
}

/* {name} is the stem with '_' and '-' as spaces, {stem} as written */
char *kiln_train_caption(const char *tmpl, const char *stem, const char *class_tokens,
			 const char *dataset)
{
	struct kiln_buf b = KILN_BUF_INIT;
	int rc = 0;
	for (const char *p = tmpl; *p && !rc;) {
		const char *q = *p == '{' ? strchr(p, '}') : NULL;
		size_t len = q ? (size_t)(q - p - 1) : 0;
		if (q && len == 4 && !strncmp(p + 1, "name", 4)) {
			for (const char *s = stem; *s && !rc; s++)
				rc = kiln_buf_add(&b, *s == '_' || *s == '-' ? " " : s, 1);
		} else if (q && len == 4 && !strncmp(p + 1, "stem", 4)) {
			rc = kiln_buf_adds(&b, stem);
		} else if (q && len == 12 && !strncmp(p + 1, "class_tokens", 12)) {
			rc = kiln_buf_adds(&b, class_tokens ? class_tokens : "");
		} else if (q && len == 7 && !strncmp(p + 1, "dataset", 7)) {
			rc = kiln_buf_adds(&b, dataset ? dataset : "");
		} else {
			rc = kiln_buf_add(&b, p, q ? len + 2 : 1);
		}
		p += q ? len + 2 : 1;
	}
	if (rc) {
		kiln_buf_release(&b);
		return NULL;
	}
	return kiln_buf_detach(&b, NULL);
}
