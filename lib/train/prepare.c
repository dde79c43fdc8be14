/* prepare: kiln train prepare NAME. Every image of the training's datasets is hashed, checked
 * (its header, its size, its colour mode; a file that does not decode is reported and left
 * out), given its pHash (QA's, passed in), put into kohya's bucket for its aspect ratio,
 * resized and centre-cropped to it with libvips, and captioned (a caption file beside it, a
 * template over its file name, or a token's traits). Exact duplicates are left out, near
 * duplicates and images that are also tokens of the collection reported. Then manifest.json
 * is written and the trainer's inputs are derived from it (inputs.c); each file is written
 * (temporary name + rename) only when its bytes change, and a prepared image is reused when
 * its source and the bucket settings are what the last manifest recorded, so a rerun with
 * nothing changed rewrites nothing.
 *
 * Images are worked on by o->jobs threads; each holds one image in libvips at a time
 * (thumbnail's shrink-on-load keeps a 2048² JPEG's decode at the bucket's size).
 */
#include "kiln/train.h"
#include "kiln/buf.h"
#include "kiln/catalog.h"
#include "kiln/project.h"
#include "kiln/spec.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/image.h"
#include "util/sha.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <vips/vips.h>

/* one image to prepare */
struct job {
	size_t dataset;
	char *src;                /* absolute path read */
	char *caption_path;       /* absolute path of its caption file (caption from: file) */
	char *out_rel;            /* the prepared file, relative to the project */
	char *out_abs;
	struct kiln_train_image im; /* source, caption, caption_from filled before the run */
	int jpeg;                 /* written as JPEG (the source is one) */
	int broken;
	char why[2048];
	char colour[160];         /* what was converted ("" none) */
	int reused, written, dup; /* dup: an exact copy of an earlier image, left out */
};

struct run {
	struct kiln_project *p;
	const struct kiln_training *t;
	const struct kiln_train_prepare_opts *o;
	struct kiln_bucket *buckets;
	size_t nbuckets;
	struct kiln_train_manifest *old; /* the last manifest, if it had these settings */
	struct job *jobs;
	size_t njobs, cap;
	size_t next, done;
	pthread_mutex_t mu;
	double start;
};

static const char *const image_exts[] = {".png", ".jpg", ".jpeg", ".webp", ".bmp"};

static int is_image_name(const char *n)
{
	const char *dot = strrchr(n, '.');
	for (size_t i = 0; dot && i < sizeof image_exts / sizeof image_exts[0]; i++)
		if (!strcasecmp(dot, image_exts[i]))
			return 1;
	return 0;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int nomem(struct kiln_error *e)
{
	return kiln_error_set(e, KILN_E_NOMEM, "train", "out of memory");
}

static char *joinf(const char *fmt, const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + strlen(fmt) + 1;
	char *s = kiln_malloc(n);
	if (s)
		snprintf(s, n, fmt, a, b);
	return s;
}

/* ---- collecting the images ---- */

static struct job *new_job(struct run *R, size_t dataset)
{
	if (R->njobs == R->cap) {
		size_t cap = R->cap ? R->cap * 2 : 64;
		struct job *v = kiln_reallocarray(R->jobs, cap, sizeof *v);
		if (!v)
			return NULL;
		R->jobs = v;
		R->cap = cap;
	}
	memset(&R->jobs[R->njobs], 0, sizeof R->jobs[0]);
	R->jobs[R->njobs].dataset = dataset;
	return &R->jobs[R->njobs++];
}

struct names {
	char **v;
	size_t n, cap;
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* image files beneath root/rel, relative to root, hidden names skipped */
static int walk(const char *root, const char *rel, struct names *out, struct kiln_error *e)
{
	char *dir = rel[0] ? kiln_fs_join(root, rel) : kiln_strdup(root);
	DIR *d = dir ? opendir(dir) : NULL;
	struct dirent *de;
	int rc = 0;
	if (!dir)
		return nomem(e);
	if (!d) {
		rc = kiln_error_set(e, KILN_E_IO, dir, "cannot read the dataset folder: %s",
				    strerror(errno));
		free(dir);
		return rc;
	}
	while (!rc && (de = readdir(d))) {
		char *r, *full;
		struct stat st;
		if (de->d_name[0] == '.')
			continue;
		r = rel[0] ? joinf("%s/%s", rel, de->d_name) : kiln_strdup(de->d_name);
		full = r ? kiln_fs_join(root, r) : NULL;
		if (!full) {
			free(r);
			rc = nomem(e);
			break;
		}
		if (lstat(full, &st)) {
			rc = kiln_error_set(e, KILN_E_IO, full, "cannot read: %s", strerror(errno));
		} else if (S_ISDIR(st.st_mode)) {
			rc = walk(root, r, out, e);
		} else if (S_ISREG(st.st_mode) && is_image_name(de->d_name)) {
			if (out->n == out->cap) {
				size_t cap = out->cap ? out->cap * 2 : 64;
				char **v = kiln_reallocarray(out->v, cap, sizeof *v);
				if (!v) {
					rc = nomem(e);
				} else {
					out->v = v;
					out->cap = cap;
				}
			}
			if (!rc) {
				out->v[out->n++] = r;
				r = NULL;
			}
		}
		free(r);
		free(full);
	}
	closedir(d);
	free(dir);
	return rc;
}

static int caption_dup(struct job *j, const char *text, const char *from)
{
	free(j->im.caption);
	free(j->im.caption_from);
	j->im.caption = kiln_strdup(text ? text : "");
	j->im.caption_from = kiln_strdup(from);
	return j->im.caption && j->im.caption_from ? 0 : -1;
}

/* output names: the path's stem with '/' as '_', unique in its dataset ("-2", "-3"...) */
static int set_output(struct run *R, struct job *j, const char *stem_in, size_t first)
{
	char stem[1024], name[1100], rel[4096];
	const char *dot = strrchr(j->src, '.');
	int n = 1, clash;
	snprintf(stem, sizeof stem, "%s", stem_in);
	for (char *s = stem; *s; s++)
		if (*s == '/')
			*s = '_';
	j->jpeg = dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
	do {
		clash = 0;
		if (n == 1)
			snprintf(name, sizeof name, "%s.%s", stem, j->jpeg ? "jpg" : "png");
		else
			snprintf(name, sizeof name, "%s-%d.%s", stem, n, j->jpeg ? "jpg" : "png");
		snprintf(rel, sizeof rel, "%s/%s/images/%zu/%s", KILN_TRAIN_DIR, R->t->name,
			 j->dataset, name);
		/* a caption file is stem.ext: a.png and a.jpg would share one */
		for (size_t i = first; i + 1 < R->njobs && !clash; i++) {
			const char *o = R->jobs[i].out_rel, *od = strrchr(o, '.');
			const char *rd = strrchr(rel, '.');
			clash = od - o == rd - rel && !strncmp(o, rel, (size_t)(rd - rel));
		}
		n++;
	} while (clash);
	j->out_rel = kiln_strdup(rel);
	j->out_abs = j->out_rel ? kiln_fs_join(R->p->dir, rel) : NULL;
	j->im.file = kiln_strdup(rel);
	return j->out_rel && j->out_abs && j->im.file ? 0 : -1;
}

static int collect_folder(struct run *R, size_t di, struct kiln_error *e)
{
	const struct kiln_train_dataset *d = &R->t->datasets[di];
	struct names nm = {NULL, 0, 0};
	char *root = kiln_fs_join(R->p->dir, d->dir);
	size_t first = R->njobs;
	const char *base = strrchr(d->dir, '/') ? strrchr(d->dir, '/') + 1 : d->dir;
	int rc = root ? walk(root, "", &nm, e) : nomem(e);
	if (!rc)
		qsort(nm.v, nm.n, sizeof *nm.v, cmp_str);
	for (size_t i = 0; !rc && i < nm.n; i++) {
		struct job *j = new_job(R, di);
		char stem[1024], *dot;
		if (!j) {
			rc = nomem(e);
			break;
		}
		snprintf(stem, sizeof stem, "%s", nm.v[i]);
		if ((dot = strrchr(stem, '.')))
			*dot = 0;
		j->src = kiln_fs_join(root, nm.v[i]);
		j->im.source = joinf("%s/%s", d->dir, nm.v[i]);
		if (!j->src || !j->im.source || set_output(R, j, stem, first)) {
			rc = nomem(e);
			break;
		}
		if (d->caption_from == KILN_CAPTION_TEMPLATE) {
			const char *leaf = strrchr(stem, '/') ? strrchr(stem, '/') + 1 : stem;
			char *c = kiln_train_caption(d->caption_template, leaf, d->class_tokens, base);
			if (!c || caption_dup(j, c, "template"))
				rc = nomem(e);
			free(c);
		} else {
			char *c = kiln_malloc(strlen(root) + strlen(stem) + strlen(d->caption_extension)
					      + 2);
			if (!c) {
				rc = nomem(e);
				break;
			}
			sprintf(c, "%s/%s%s", root, stem, d->caption_extension);
			j->caption_path = c;
		}
	}
	for (size_t i = 0; i < nm.n; i++)
		free(nm.v[i]);
	free(nm.v);
	free(root);
	return rc;
}

/* a caption over a token's traits: the template's {Layer}, {id}, {name}, {class_tokens}; by
 * default "class_tokens, value, value, ..." (none values left out) */
static char *traits_caption(const struct kiln_spec *s, const struct kiln_train_dataset *d,
			    const struct kiln_item *it)
{
	struct kiln_buf b = KILN_BUF_INIT;
	int rc = 0;
	if (!d->caption_template) {
		int any = 0;
		if (d->class_tokens) {
			rc = kiln_buf_adds(&b, d->class_tokens);
			any = 1;
		}
		if (it->legendary_name && !rc) {
			rc = kiln_buf_addf(&b, "%s%s", any ? ", " : "", it->legendary_name);
			any = 1;
		}
		for (size_t l = 0; !it->legendary_name && l < s->nlayers && !rc; l++) {
			uint32_t v = it->traits ? it->traits[l] : KILN_PLAN_UNSET;
			if (v == KILN_PLAN_UNSET || v >= s->layers[l].ntraits ||
			    s->layers[l].traits[v].is_none)
				continue;
			rc = kiln_buf_addf(&b, "%s%s", any ? ", " : "", s->layers[l].traits[v].name);
			any = 1;
		}
	} else {
		for (const char *p = d->caption_template; *p && !rc;) {
			const char *q = *p == '{' ? strchr(p, '}') : NULL;
			char w[256];
			long li;
			if (!q || (size_t)(q - p - 1) >= sizeof w) {
				rc = kiln_buf_add(&b, p, 1);
				p++;
				continue;
			}
			memcpy(w, p + 1, (size_t)(q - p - 1));
			w[q - p - 1] = 0;
			if (!strcmp(w, "id"))
				rc = kiln_buf_addf(&b, "%llu", (unsigned long long)it->id);
			else if (!strcmp(w, "name"))
				rc = kiln_buf_adds(&b, s->name);
			else if (!strcmp(w, "class_tokens"))
				rc = kiln_buf_adds(&b, d->class_tokens ? d->class_tokens : "");
			else if ((li = kiln_spec_layer_index(s, w)) >= 0) {
				uint32_t v = it->traits ? it->traits[li] : KILN_PLAN_UNSET;
				if (v != KILN_PLAN_UNSET && v < s->layers[li].ntraits &&
				    !s->layers[li].traits[v].is_none)
					rc = kiln_buf_adds(&b, s->layers[li].traits[v].name);
			} else {
				rc = kiln_buf_add(&b, p, (size_t)(q - p + 1));
			}
			p = q + 1;
		}
	}
	if (rc) {
		kiln_buf_release(&b);
		return NULL;
	}
	return kiln_buf_detach(&b, NULL);
}

static int collect_tokens(struct run *R, size_t di, struct kiln_error *e)
{
	const struct kiln_train_dataset *d = &R->t->datasets[di];
	struct kiln_items items = {0};
	struct kiln_review_state *st = NULL;
	size_t nst = 0, k = 0, first = R->njobs;
	size_t dlen = strlen(R->p->dir);
	int rc = kiln_catalog_items(R->p->catalog, R->p->spec, &items, e);
	if (!rc)
		rc = kiln_catalog_final_images(R->p->catalog, &items, e);
	if (!rc)
		rc = kiln_catalog_review_states(R->p->catalog, &st, &nst, e);
	for (size_t i = 0; !rc && i < items.n; i++) {
		const struct kiln_item *it = &items.v[i];
		struct job *j;
		char stem[64], *path, *cap;
		while (k < nst && st[k].item_id < it->id)
			k++;
		if (k >= nst || st[k].item_id != it->id || strcmp(st[k].status, "approved") ||
		    !it->image[0])
			continue;
		if (!(j = new_job(R, di)) || !(path = kiln_store_path(R->p->store, it->image))) {
			rc = nomem(e);
			break;
		}
		j->src = path;
		j->im.token = it->id;
		/* the store is addressed by SHA-256: the catalog's is the file's */
		memcpy(j->im.sha256_source, it->image, sizeof j->im.sha256_source);
		j->im.source = kiln_strdup(!strncmp(path, R->p->dir, dlen) && path[dlen] == '/'
					   ? path + dlen + 1 : path);
		snprintf(stem, sizeof stem, "token-%llu", (unsigned long long)it->id);
		cap = traits_caption(R->p->spec, d, it);
		if (!j->im.source || !cap || set_output(R, j, stem, first) ||
		    caption_dup(j, cap, "traits"))
			rc = nomem(e);
		free(cap);
	}
	kiln_review_states_free(st, nst);
	kiln_items_release(&items);
	return rc;
}

/* ---- one image ---- */

static const struct kiln_train_image *old_image(struct run *R, const struct job *j)
{
	for (size_t i = 0; R->old && i < R->old->nimages; i++) {
		const struct kiln_train_image *o = &R->old->images[i];
		if (!strcmp(o->source, j->im.source) && !strcmp(o->file, j->out_rel) &&
		    !strcmp(o->sha256_source, j->im.sha256_source))
			return o;
	}
	return NULL;
}

static int read_caption(struct job *j)
{
	struct kiln_buf b = KILN_BUF_INIT;
	struct kiln_error ce;
	size_t n;
	int rc;
	if (!kiln_fs_exists(j->caption_path))
		return caption_dup(j, "", "missing");
	kiln_error_clear(&ce);
	if (kiln_fs_read_limited(j->caption_path, &b, 1 << 20, 0, &ce)) {
		snprintf(j->why, sizeof j->why, "its caption file cannot be read: %s", ce.msg);
		return caption_dup(j, "", "missing");
	}
	/* kohya strips the caption (read_caption: strip()) */
	n = b.len;
	while (n && strchr(" \t\r\n", b.data[n - 1]))
		n--;
	{
		size_t s = 0;
		char *c;
		while (s < n && strchr(" \t\r\n", b.data[s]))
			s++;
		c = kiln_strndup(b.data + s, n - s);
		for (char *q = c; q && *q; q++)
			if (*q == '\n' || *q == '\r')
				*q = ' ';
		rc = c ? caption_dup(j, c, "file") : -1;
		free(c);
	}
	kiln_buf_release(&b);
	return rc;
}

static const char *mode_name(VipsImage *im)
{
	switch (vips_image_get_interpretation(im)) {
	case VIPS_INTERPRETATION_B_W: return "greyscale";
	case VIPS_INTERPRETATION_GREY16: return "16-bit greyscale";
	case VIPS_INTERPRETATION_CMYK: return "CMYK";
	case VIPS_INTERPRETATION_RGB16: return "16-bit RGB";
	case VIPS_INTERPRETATION_MULTIBAND: return "multiband";
	default: return vips_image_get_format(im) == VIPS_FORMAT_UCHAR ? "RGB" : "non-8-bit";
	}
}

static int broken(struct job *j, const char *fmt, const char *detail)
{
	char msg[1600];
	size_t n;
	snprintf(msg, sizeof msg, "%s", detail ? detail : "");
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = 0;
	for (char *q = msg; *q; q++)
		if (*q == '\n')
			*q = ' ';
	snprintf(j->why, sizeof j->why, fmt, msg);
	j->broken = 1;
	return 0;
}

/* resize, crop, convert and encode the image of j; 0, or -1 out of memory (a bad image sets
 * j->broken) */
static int process(struct run *R, struct job *j)
{
	VipsImage *in = NULL, *t[8] = {NULL};
	const char *loader = NULL;
	int jpeg = 0;
	const struct kiln_train_image *old;
	struct kiln_error pe;
	struct kiln_bucket b;
	void *buf = NULL, *px = NULL;
	size_t len = 0, pxlen = 0;
	int rw, rh, w, h, n = 0, rc = 0;
	if (j->caption_path && read_caption(j))
		return -1;
	kiln_error_clear(&pe);
	if (!j->im.token && kiln_sha256_file(j->src, j->im.sha256_source, &pe))
		return broken(j, "cannot be read: %s", pe.msg);
	if ((old = old_image(R, j))) {
		char now_sha[65];
		if (!kiln_sha256_file(j->out_abs, now_sha, &pe) && !strcmp(now_sha, old->sha256)) {
			memcpy(j->im.sha256, old->sha256, 65);
			j->im.phash = old->phash;
			j->im.has_phash = old->has_phash;
			j->im.src_width = old->src_width;
			j->im.src_height = old->src_height;
			j->im.crop_x = old->crop_x;
			j->im.crop_y = old->crop_y;
			j->im.crop_w = old->crop_w;
			j->im.crop_h = old->crop_h;
			j->im.width = old->width;
			j->im.height = old->height;
			if (old->converted)
				snprintf(j->colour, sizeof j->colour, "%s", old->converted);
			j->reused = 1;
			return 0;
		}
		kiln_error_clear(&pe);
	}
	if (kiln_image_check_pixels(j->src, KILN_IMAGE_MAX_PIXELS, &w, &h, &pe))
		return broken(j, "is not an image kiln can use: %s", pe.msg);
	if (!(in = vips_image_new_from_file(j->src, "access", VIPS_ACCESS_SEQUENTIAL, NULL))) {
		broken(j, "does not decode: %s", vips_error_buffer());
		vips_error_clear();
		return 0;
	}
	if (vips_image_get_interpretation(in) != VIPS_INTERPRETATION_sRGB ||
	    vips_image_get_format(in) != VIPS_FORMAT_UCHAR || in->Bands != 3)
		snprintf(j->colour, sizeof j->colour, "%s%s, %d band%s: converted to 8-bit sRGB%s",
			 mode_name(in), vips_image_hasalpha(in) ? " with alpha" : "", in->Bands,
			 in->Bands == 1 ? "" : "s",
			 vips_image_hasalpha(in) ? ", alpha flattened on white" : "");
	if (vips_image_get_typeof(in, "vips-loader") &&
	    !vips_image_get_string(in, "vips-loader", &loader))
		jpeg = !strcmp(loader, "jpegload");
	g_object_unref(in);
	kiln_train_select_bucket(R->buckets, R->nbuckets, w, h, &b, &rw, &rh);
	/* A JPEG is decoded at 1/2, 1/4 or 1/8 of its size (libjpeg's DCT scaling), the largest
	 * that stays at least the resized size, as Pillow's draft() does; libvips' thumbnail
	 * keeps a factor of 2 for its own resize, so a 2048² photo to 1024² would be decoded
	 * whole and halved with lanczos3 (twice the CPU). Then resized to the exact size. */
	if (jpeg) {
		int s = 1;
		while (s < 8 && w / (2 * s) >= rw && h / (2 * s) >= rh)
			s *= 2;
		if (!(t[n] = vips_image_new_from_file(j->src, "access", VIPS_ACCESS_SEQUENTIAL,
						      "shrink", s, "fail_on", VIPS_FAIL_ON_ERROR,
						      NULL)))
			goto vips_bad;
		n++;
		/* the rest as thumbnail does it (colour, alpha, the exact size): nothing to
		 * resize when the scaled decode is the size already */
		if (vips_thumbnail_image(t[n - 1], &t[n], rw, "height", rh, "size",
					 VIPS_SIZE_FORCE, "no_rotate", TRUE, NULL))
			goto vips_bad;
		n++;
	} else {
		if (vips_thumbnail(j->src, &t[n], rw, "height", rh, "size", VIPS_SIZE_FORCE,
				   "no_rotate", TRUE, "fail_on", VIPS_FAIL_ON_ERROR, NULL))
			goto vips_bad;
		n++;
	}
	if (vips_extract_area(t[n - 1], &t[n], (rw - b.w) / 2, (rh - b.h) / 2, b.w, b.h, NULL))
		goto vips_bad;
	n++;
	if (vips_image_get_interpretation(t[n - 1]) != VIPS_INTERPRETATION_sRGB ||
	    t[n - 1]->Bands < 3) {
		if (vips_colourspace(t[n - 1], &t[n], VIPS_INTERPRETATION_sRGB, NULL))
			goto vips_bad;
		n++;
	}
	if (vips_image_hasalpha(t[n - 1])) {
		double white[3] = {255, 255, 255};
		VipsArrayDouble *bg = vips_array_double_new(white, 3);
		int f = vips_flatten(t[n - 1], &t[n], "background", bg, NULL);
		vips_area_unref(VIPS_AREA(bg));
		if (f)
			goto vips_bad;
		n++;
	}
	if (vips_image_get_format(t[n - 1]) != VIPS_FORMAT_UCHAR) {
		if (vips_cast_uchar(t[n - 1], &t[n], NULL))
			goto vips_bad;
		n++;
	}
	/* decode, resize and crop once into memory: the pHash is taken from these pixels and
	 * they are encoded, so the prepared image is never decoded again */
	if (!(px = vips_image_write_to_memory(t[n - 1], &pxlen)))
		goto vips_bad;
	if (!(t[n] = vips_image_new_from_memory(px, pxlen, b.w, b.h, t[n - 1]->Bands,
						VIPS_FORMAT_UCHAR)))
		goto vips_bad;
	n++;
	if (R->o->phash) {
		if (R->o->phash(px, b.w, b.h, t[n - 1]->Bands, 0, &j->im.phash, R->o->phash_user,
				&pe)) {
			rc = pe.code == KILN_E_NOMEM ? -1 : 0;
			if (!rc)
				broken(j, "has no pHash: %s", pe.msg);
			goto out;
		}
		j->im.has_phash = 1;
	}
	if (j->jpeg ? vips_jpegsave_buffer(t[n - 1], &buf, &len, "Q", 95, "strip", TRUE, NULL)
		    : vips_pngsave_buffer(t[n - 1], &buf, &len, "compression", 1, "strip", TRUE,
					  NULL))
		goto vips_bad;
	kiln_sha256_hex(buf, len, j->im.sha256);
	j->im.src_width = w;
	j->im.src_height = h;
	{
		double sx = (double)w / rw, sy = (double)h / rh;
		j->im.crop_x = (int)((rw - b.w) / 2 * sx + 0.5);
		j->im.crop_y = (int)((rh - b.h) / 2 * sy + 0.5);
		j->im.crop_w = (int)(b.w * sx + 0.5);
		j->im.crop_h = (int)(b.h * sy + 0.5);
	}
	j->im.width = b.w;
	j->im.height = b.h;
	if (kiln_fs_write_atomic_sync(j->out_abs, buf, len, 0, &pe)) {
		snprintf(j->why, sizeof j->why, "%s", pe.msg);
		rc = pe.code == KILN_E_NOMEM ? -1 : -2;
		goto out;
	}
	j->written = 1;
	goto out;
vips_bad:
	broken(j, "does not decode: %s", vips_error_buffer());
	vips_error_clear();
out:
	g_free(buf);
	while (n > 0)
		g_object_unref(t[--n]);
	g_free(px); /* after the image made over it */
	return rc;
}

static void *worker(void *arg)
{
	struct run *R = arg;
	for (;;) {
		size_t i;
		int rc;
		pthread_mutex_lock(&R->mu);
		i = R->next++;
		pthread_mutex_unlock(&R->mu);
		if (i >= R->njobs)
			break;
		rc = process(R, &R->jobs[i]);
		if (rc == -1)
			R->jobs[i].broken = 3; /* out of memory: fails the run (not left out) */
		else if (rc == -2)
			R->jobs[i].broken = 2; /* a write failure: fails the run */
		pthread_mutex_lock(&R->mu);
		R->done++;
		if (R->o->progress) {
			struct kiln_progress pr = {0};
			pr.stage = "train";
			pr.event = "item";
			pr.total = R->njobs;
			pr.done = R->done;
			pr.item_id = i + 1;
			pr.ok = !R->jobs[i].broken;
			pr.elapsed = now() - R->start;
			R->o->progress(&pr, R->o->user);
		}
		pthread_mutex_unlock(&R->mu);
		vips_thread_shutdown();
	}
	return NULL;
}

/* ---- findings ---- */

static int finding(struct kiln_train_report *r, const char *kind, const char *path,
		   const char *other, const char *fmt, ...) KILN_PRINTF(5, 6);
static int finding(struct kiln_train_report *r, const char *kind, const char *path,
		   const char *other, const char *fmt, ...)
{
	struct kiln_train_finding *f, *v;
	char msg[1024];
	va_list ap;
	v = kiln_reallocarray(r->v, r->n + 1, sizeof *v);
	if (!v)
		return -1;
	r->v = v;
	f = &v[r->n];
	memset(f, 0, sizeof *f);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(f->kind, sizeof f->kind, "%s", kind);
	f->path = kiln_strdup(path);
	f->other = other ? kiln_strdup(other) : NULL;
	f->message = kiln_strdup(msg);
	r->n++;
	return f->path && f->message && (!other || f->other) ? 0 : -1;
}

void kiln_train_report_release(struct kiln_train_report *r)
{
	for (size_t i = 0; r->v && i < r->n; i++) {
		free(r->v[i].path);
		free(r->v[i].other);
		free(r->v[i].message);
	}
	free(r->v);
	r->v = NULL;
	r->n = 0;
}

static int hamming(uint64_t a, uint64_t b)
{
	return __builtin_popcountll(a ^ b);
}

static int cmp_sha_item(const void *a, const void *b)
{
	return strcmp((*(const struct kiln_item *const *)a)->image,
		      (*(const struct kiln_item *const *)b)->image);
}

/* images that are also tokens of the collection: the same bytes as a token's final image. The
 * catalog holds each final image's SHA-256 (the store is addressed by it), so no token image
 * is read: only the dataset's files were hashed. */
static int check_tokens(struct run *R, struct kiln_train_report *r, struct kiln_error *e)
{
	struct kiln_items items = {0};
	const struct kiln_item **by = NULL;
	size_t nby = 0;
	int rc, any = 0;
	for (size_t i = 0; i < R->njobs; i++)
		any |= !R->jobs[i].broken && !R->jobs[i].dup && !R->jobs[i].im.token;
	if (!any)
		return 0;
	if ((rc = kiln_catalog_items(R->p->catalog, R->p->spec, &items, e)) ||
	    (rc = kiln_catalog_final_images(R->p->catalog, &items, e)))
		goto out;
	if (items.n && !(by = kiln_calloc(items.n, sizeof *by))) {
		rc = nomem(e);
		goto out;
	}
	for (size_t t = 0; t < items.n; t++)
		if (items.v[t].image[0])
			by[nby++] = &items.v[t];
	if (nby)
		qsort(by, nby, sizeof *by, cmp_sha_item);
	for (size_t i = 0; nby && i < R->njobs; i++) {
		struct job *j = &R->jobs[i];
		struct kiln_item key;
		const struct kiln_item *kp = &key, **hit;
		char other[32];
		if (j->broken || j->dup || j->im.token)
			continue;
		memcpy(key.image, j->im.sha256_source, sizeof key.image);
		if (!(hit = bsearch(&kp, by, nby, sizeof *by, cmp_sha_item)))
			continue;
		while (hit > by && !strcmp(hit[-1]->image, key.image))
			hit--; /* the lowest id of the tokens sharing the image */
		snprintf(other, sizeof other, "#%llu", (unsigned long long)(*hit)->id);
		if (finding(r, "token", j->im.source, other, "is token %s's image (the same bytes)",
			    other)) {
			rc = nomem(e);
			goto out;
		}
	}
out:
	free(by);
	kiln_items_release(&items);
	return rc;
}

static int report(struct run *R, struct kiln_train_report *r, struct kiln_error *e)
{
	const struct kiln_training *t = R->t;
	for (size_t i = 0; i < t->ndatasets; i++)
		if (!t->datasets[i].license &&
		    finding(r, "license-missing", t->datasets[i].dir, NULL, "dataset %s has no "
			    "license: the portfolio will show it as unlicensed",
			    t->datasets[i].dir))
			return nomem(e);
	for (size_t i = 0; i < R->njobs; i++) {
		struct job *j = &R->jobs[i];
		if (j->broken) {
			if (finding(r, "broken", j->im.source, NULL, "%s", j->why))
				return nomem(e);
			continue;
		}
		/* exact duplicates: the first one is kept */
		for (size_t k = 0; k < i && !j->dup; k++) {
			struct job *o = &R->jobs[k];
			if (o->broken || o->dup || strcmp(o->im.sha256_source, j->im.sha256_source))
				continue;
			j->dup = 1;
			if (finding(r, "duplicate", j->im.source, o->im.source, "is an exact copy "
				    "of %s%s: left out", o->im.source, o->dataset != j->dataset ?
				    " (another dataset)" : ""))
				return nomem(e);
		}
		if (j->dup)
			continue;
		if (j->colour[0] && finding(r, "colour", j->im.source, NULL, "%s", j->colour))
			return nomem(e);
		if (!strcmp(j->im.caption_from, "missing") &&
		    finding(r, "caption-missing", j->im.source, NULL, "has no caption file (%s "
			    "beside it)%s", t->datasets[j->dataset].caption_extension,
			    t->datasets[j->dataset].class_tokens ? ": its class_tokens are its "
			    "caption" : ": it is trained without a caption"))
			return nomem(e);
	}
	for (size_t i = 0; R->o->near_threshold >= 0 && i < R->njobs; i++) {
		struct job *j = &R->jobs[i];
		if (j->broken || j->dup || !j->im.has_phash)
			continue;
		for (size_t k = 0; k < i; k++) {
			struct job *o = &R->jobs[k];
			int d;
			if (o->broken || o->dup || !o->im.has_phash ||
			    (d = hamming(o->im.phash, j->im.phash)) > R->o->near_threshold)
				continue;
			if (finding(r, "near-duplicate", j->im.source, o->im.source, "looks like %s "
				    "(pHash distance %d%s): kept, check it is meant", o->im.source,
				    d, o->dataset != j->dataset ? ", another dataset" : ""))
				return nomem(e);
			break;
		}
	}
	return check_tokens(R, r, e);
}

/* ---- writing ---- */

/* write path when its bytes differ (sync: fsync it and its folder); *changed += 1 when
 * written */
static int write_if_changed(const char *path, const char *text, size_t len, int sync,
			    size_t *changed, struct kiln_error *e)
{
	struct kiln_buf b = KILN_BUF_INIT;
	int same = 0, rc;
	if (kiln_fs_exists(path) && !kiln_fs_read_limited(path, &b, len + 1, 0, e))
		same = b.len == len && !memcmp(b.data, text, len);
	kiln_buf_release(&b);
	kiln_error_clear(e);
	if (same)
		return 0;
	if ((rc = kiln_fs_write_atomic_sync(path, text, len, sync, e)))
		return rc;
	(*changed)++;
	return 0;
}

/* the caption file beside the prepared image (stem + the dataset's extension) */
static int write_caption(struct run *R, struct job *j, size_t *changed, struct kiln_error *e)
{
	const char *ext = R->t->datasets[j->dataset].caption_extension;
	char *dot = strrchr(j->out_abs, '.'), *path;
	size_t stem = (size_t)(dot - j->out_abs);
	const char *text = j->im.caption;
	int rc;
	/* a missing caption: kohya falls back to class_tokens; the file says the same */
	if (!text[0] && R->t->datasets[j->dataset].class_tokens)
		text = R->t->datasets[j->dataset].class_tokens;
	if (!(path = kiln_malloc(stem + strlen(ext) + 1)))
		return nomem(e);
	memcpy(path, j->out_abs, stem);
	strcpy(path + stem, ext);
	rc = write_if_changed(path, text, strlen(text), 0, changed, e);
	free(path);
	return rc;
}

/* remove from images/N what this manifest does not hold (earlier runs' images) */
static int prune(struct run *R, const char *trdir, struct kiln_error *e)
{
	char *imgs = kiln_fs_join(trdir, "images");
	DIR *d = imgs ? opendir(imgs) : NULL;
	struct dirent *de;
	if (!imgs)
		return nomem(e);
	while (d && (de = readdir(d))) {
		char *sub;
		DIR *s;
		struct dirent *f;
		if (de->d_name[0] == '.')
			continue;
		if (!(sub = kiln_fs_join(imgs, de->d_name)))
			break;
		s = opendir(sub);
		while (s && (f = readdir(s))) {
			char *full, rel[4096], *dot;
			int keep = 0;
			if (f->d_name[0] == '.')
				continue;
			snprintf(rel, sizeof rel, "%s/%s/images/%s/%s", KILN_TRAIN_DIR, R->t->name,
				 de->d_name, f->d_name);
			dot = strrchr(rel, '.');
			for (size_t i = 0; i < R->njobs && !keep; i++) {
				const char *o = R->jobs[i].out_rel, *od = strrchr(o, '.');
				if (R->jobs[i].broken || R->jobs[i].dup)
					continue;
				/* the image itself, or its caption file (same stem) */
				keep = !strcmp(o, rel) ||
				       (dot && od - o == dot - rel && !strncmp(o, rel,
									      (size_t)(od - o)) &&
					!strcmp(dot, R->t->datasets[R->jobs[i].dataset]
							     .caption_extension));
			}
			if (!keep && (full = kiln_fs_join(sub, f->d_name))) {
				unlink(full);
				free(full);
			}
		}
		if (s)
			closedir(s);
		free(sub);
	}
	if (d)
		closedir(d);
	free(imgs);
	return 0;
}

static int build_manifest(struct run *R, struct kiln_train_manifest *m, struct kiln_error *e)
{
	const struct kiln_training *t = R->t;
	static const char *const trainers[] = {"kohya", "ai-toolkit"};
	static const char *const archs[] = {"sdxl", "sd15", "flux"};
	m->version = KILN_TRAIN_MANIFEST_VERSION;
	m->name = kiln_strdup(t->name);
	m->trainer = kiln_strdup(trainers[t->trainer]);
	m->arch = kiln_strdup(archs[t->arch]);
	m->base = kiln_strdup(t->base);
	if (!m->name || !m->trainer || !m->arch || !m->base)
		return nomem(e);
	m->width = t->width;
	m->height = t->height;
	m->bucket_enable = t->bucket_enable;
	m->bucket_min = t->bucket_min;
	m->bucket_max = t->bucket_max;
	m->bucket_step = t->bucket_step;
	m->network_dim = t->network_dim;
	m->network_alpha = t->network_alpha;
	m->unet_lr = t->unet_lr;
	m->text_encoder_lr = t->text_encoder_lr;
	m->steps = t->steps;
	m->epochs = t->epochs;
	m->seed = t->seed;
	m->batch_size = t->batch_size;
	if (t->command) {
		if (!(m->command = kiln_calloc(t->ncommand, sizeof *m->command)))
			return nomem(e);
		for (size_t i = 0; i < t->ncommand; i++, m->ncommand++)
			if (!(m->command[i] = kiln_strdup(t->command[i])))
				return nomem(e);
	}
	if (!(m->datasets = kiln_calloc(t->ndatasets, sizeof *m->datasets)))
		return nomem(e);
	for (size_t i = 0; i < t->ndatasets; i++) {
		const struct kiln_train_dataset *d = &t->datasets[i];
		struct kiln_train_mdataset *md = &m->datasets[m->ndatasets++];
		char img[4096];
		/* counted before its strings, so a failure below frees the ones made */
		snprintf(img, sizeof img, "%s/%s/images/%zu", KILN_TRAIN_DIR, t->name, i);
		md->repeats = d->repeats;
		if (!(md->dir = kiln_strdup(d->dir)) || !(md->image_dir = kiln_strdup(img)) ||
		    !(md->caption_extension = kiln_strdup(d->caption_extension)) ||
		    (d->class_tokens && !(md->class_tokens = kiln_strdup(d->class_tokens))) ||
		    (d->license && !(md->license = kiln_strdup(d->license))) ||
		    (d->source && !(md->source = kiln_strdup(d->source))))
			return nomem(e);
	}
	if (R->njobs && !(m->images = kiln_calloc(R->njobs, sizeof *m->images)))
		return nomem(e);
	for (size_t i = 0; i < R->njobs; i++) {
		struct job *j = &R->jobs[i];
		if (j->broken || j->dup)
			continue;
		if (j->colour[0] && !(j->im.converted = kiln_strdup(j->colour)))
			return nomem(e);
		j->im.dataset = j->dataset;
		m->images[m->nimages++] = j->im;
		memset(&j->im, 0, sizeof j->im); /* the manifest owns its strings now */
		m->datasets[j->dataset].images++;
	}
	return 0;
}

static int settings_match(const struct kiln_train_manifest *o, const struct kiln_training *t)
{
	return o->width == t->width && o->height == t->height &&
	       o->bucket_enable == t->bucket_enable && o->bucket_min == t->bucket_min &&
	       o->bucket_max == t->bucket_max && o->bucket_step == t->bucket_step;
}

static void free_jobs(struct run *R)
{
	for (size_t i = 0; i < R->njobs; i++) {
		struct job *j = &R->jobs[i];
		free(j->src);
		free(j->caption_path);
		free(j->out_rel);
		free(j->out_abs);
		free(j->im.source);
		free(j->im.file);
		free(j->im.caption);
		free(j->im.caption_from);
		free(j->im.converted);
	}
	free(R->jobs);
}

/* Never under a run of this training: its trainer reads images/ and what it wrote is checked
 * against the manifest when it is collected. A run is under way from run.json's writing to
 * its collection or cancellation (run.c: the supervisor found by pid AND start time). */
static int run_under_way(const char *trdir, const char *name, struct kiln_error *e)
{
	struct kiln_train_state s;
	char *path = kiln_fs_join(trdir, "run.json"), rel[512], when[32] = "?";
	time_t t;
	struct tm tm;
	int rc;
	if (!path)
		return nomem(e);
	memset(&s, 0, sizeof s);
	rc = kiln_train_state_read(path, &s, e);
	free(path);
	if (rc) {
		kiln_train_state_release(&s);
		if (rc == KILN_E_NOTFOUND)
			kiln_error_clear(e);
		return rc == KILN_E_NOTFOUND ? 0 : rc;
	}
	snprintf(rel, sizeof rel, "%s/%s/run.json", KILN_TRAIN_DIR, name);
	t = (time_t)s.started;
	if (gmtime_r(&t, &tm))
		strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
	if (!strcmp(s.where, "runpod"))
		rc = kiln_error_set(e, KILN_E_STATE, rel, "a run of training '%s' is under way "
				    "(RunPod job %s, started %s): preparing again now would change "
				    "the dataset its LoRA is checked against", name,
				    s.job_id[0] ? s.job_id : "not yet answered", when);
	else if (kiln_train_alive(s.pid, s.pid_start))
		rc = kiln_error_set(e, KILN_E_STATE, rel, "a run of training '%s' is under way "
				    "(trainer process %lld, started %s): preparing again now would "
				    "rewrite the images it reads", name, (long long)s.pid, when);
	else
		rc = kiln_error_set(e, KILN_E_STATE, rel, "a run of training '%s' (process %lld, "
				    "started %s) has ended but its LoRA is not collected: preparing "
				    "again now would change the manifest it is checked against", name,
				    (long long)s.pid, when);
	kiln_train_state_release(&s);
	return kiln_error_hint(e, KILN_HINT_TRAIN_RUNNING, name);
}

int kiln_train_prepare(struct kiln_project *p, const struct kiln_train_prepare_opts *o,
		       struct kiln_train_report *r, struct kiln_error *e)
{
	static const char *const inputs[] = {"dataset.toml", "command.json", "config.yaml"};
	struct run R;
	struct kiln_train_manifest *m = NULL, *back = NULL;
	char *trdir = NULL, *mpath = NULL, *json = NULL;
	pthread_t *th = NULL;
	unsigned nth = o->jobs ? o->jobs : 1, started = 0;
	size_t nbroken = 0;
	int rc;
	memset(&R, 0, sizeof R);
	memset(r, 0, sizeof *r);
	R.p = p;
	R.o = o;
	pthread_mutex_init(&R.mu, NULL);
	if (!(R.t = kiln_spec_training(p->spec, o->name))) {
		char names[512] = "";
		for (size_t i = 0; i < p->spec->ntraining; i++)
			snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s",
				 i ? ", " : "", p->spec->training[i].name);
		rc = kiln_error_set(e, KILN_E_USAGE, p->spec_path, "no training named '%s' in the "
				    "spec (%s%s)", o->name, p->spec->ntraining ? "trainings: " :
				    "it has no training: block", names);
		goto out;
	}
	if ((rc = kiln_vips_init(e)))
		goto out;
	if (!(trdir = kiln_train_path(p->dir, R.t->name, NULL)) ||
	    !(mpath = kiln_fs_join(trdir, KILN_TRAIN_MANIFEST))) {
		rc = nomem(e);
		goto out;
	}
	snprintf(r->manifest, sizeof r->manifest, "%s/%s/%s", KILN_TRAIN_DIR, R.t->name,
		 KILN_TRAIN_MANIFEST);
	if ((rc = run_under_way(trdir, R.t->name, e)))
		goto out;
	if (R.t->bucket_enable) {
		if (kiln_train_buckets(R.t->width, R.t->height, R.t->bucket_min, R.t->bucket_max,
				       R.t->bucket_step, &R.buckets, &R.nbuckets)) {
			rc = nomem(e);
			goto out;
		}
	} else {
		if (!(R.buckets = kiln_calloc(1, sizeof *R.buckets))) {
			rc = nomem(e);
			goto out;
		}
		R.buckets[0].w = R.t->width;
		R.buckets[0].h = R.t->height;
		R.nbuckets = 1;
	}
	if (kiln_fs_exists(mpath)) {
		struct kiln_error le;
		kiln_error_clear(&le);
		if (!kiln_train_manifest_load(mpath, &R.old, &le) && !settings_match(R.old, R.t)) {
			kiln_train_manifest_free(R.old);
			R.old = NULL;
		}
	}
	for (size_t i = 0; i < R.t->ndatasets; i++) {
		char img[64], *dir;
		snprintf(img, sizeof img, "images/%zu", i);
		if (!(dir = kiln_fs_join(trdir, img))) {
			rc = nomem(e);
			goto out;
		}
		rc = kiln_fs_mkdirs(dir, e);
		free(dir);
		if (rc || (rc = R.t->datasets[i].tokens ? collect_tokens(&R, i, e)
							: collect_folder(&R, i, e)))
			goto out;
	}
	R.start = now();
	if (o->progress) {
		struct kiln_progress pr = {0};
		pr.stage = "train";
		pr.event = "start";
		pr.total = R.njobs;
		o->progress(&pr, o->user);
	}
	if (nth > R.njobs)
		nth = R.njobs ? (unsigned)R.njobs : 1;
	if (!(th = kiln_calloc(nth, sizeof *th))) {
		rc = nomem(e);
		goto out;
	}
	for (; started < nth; started++)
		if (pthread_create(&th[started], NULL, worker, &R))
			break;
	if (!started)
		worker(&R);
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	if (o->progress) {
		struct kiln_progress pr = {0};
		pr.stage = "train";
		pr.event = "end";
		pr.total = pr.done = R.njobs;
		pr.elapsed = now() - R.start;
		o->progress(&pr, o->user);
	}
	for (size_t i = 0; i < R.njobs; i++) {
		if (R.jobs[i].broken == 3) {
			rc = kiln_error_set(e, KILN_E_NOMEM, R.jobs[i].im.source, "out of memory "
					    "while preparing it");
			goto out;
		}
		if (R.jobs[i].broken == 2) {
			rc = kiln_error_set(e, KILN_E_IO, R.jobs[i].out_rel, "cannot be written: %s",
					    R.jobs[i].why);
			goto out;
		}
		nbroken += R.jobs[i].broken != 0;
	}
	if ((rc = report(&R, r, e)))
		goto out;
	if (nbroken && o->strict) {
		rc = kiln_error_set(e, KILN_E_IMAGE, r->manifest, "%zu image%s cannot be used (the "
				    "findings name them): no manifest written", nbroken,
				    nbroken == 1 ? "" : "s");
		goto out;
	}
	for (size_t i = 0; i < R.njobs; i++) {
		struct job *j = &R.jobs[i];
		if (j->broken || j->dup)
			continue;
		r->written += (size_t)j->written;
		r->reused += (size_t)j->reused;
		if ((rc = write_caption(&R, j, &r->files_changed, e)))
			goto out;
	}
	if ((rc = prune(&R, trdir, e)))
		goto out;
	if (!(m = kiln_calloc(1, sizeof *m))) {
		rc = nomem(e);
		goto out;
	}
	if ((rc = build_manifest(&R, m, e)))
		goto out;
	r->images = m->nimages;
	for (size_t i = 0; i < m->ndatasets; i++)
		if (!m->datasets[i].images && finding(r, "empty", m->datasets[i].dir, NULL,
						      "dataset %s has no usable image",
						      m->datasets[i].dir)) {
			rc = nomem(e);
			goto out;
		}
	if (!m->nimages) {
		rc = kiln_error_set(e, KILN_E_IMAGE, p->spec_path, "training '%s' has no usable "
				    "image: no manifest written", R.t->name);
		goto out;
	}
	/* the images and captions written without fsync, made durable at once before the
	 * manifest that names them */
	if ((r->written || r->files_changed) && (rc = kiln_fs_sync_fs(trdir, e)))
		goto out;
	if (!(json = kiln_train_manifest_json(m))) {
		rc = nomem(e);
		goto out;
	}
	if ((rc = write_if_changed(mpath, json, strlen(json), 1, &r->files_changed, e)))
		goto out;
	/* the trainer's inputs come from the manifest as written, read back */
	if ((rc = kiln_train_manifest_load(mpath, &back, e)))
		goto out;
	memcpy(r->sha256, back->sha256, 65);
	for (size_t i = 0; i < 3; i++) {
		char *text = NULL, *path;
		if (kiln_train_input(back, inputs[i], &text)) {
			rc = nomem(e);
			goto out;
		}
		if (!(path = kiln_fs_join(trdir, inputs[i]))) {
			free(text);
			rc = nomem(e);
			goto out;
		}
		if (text)
			rc = write_if_changed(path, text, strlen(text), 1, &r->files_changed, e);
		else if (kiln_fs_exists(path))
			unlink(path); /* the other trainer's file from an earlier spec */
		free(text);
		free(path);
		if (rc)
			goto out;
	}
	{
		char *out = kiln_fs_join(trdir, "output");
		if (!out) {
			rc = nomem(e);
			goto out;
		}
		rc = kiln_fs_mkdirs(out, e);
		free(out);
		if (rc)
			goto out;
	}
	rc = kiln_catalog_train_record(p->catalog, R.t->name, back->sha256, back->nimages,
				       &r->recorded, e);
out:
	if (th)
		free(th);
	free(json);
	kiln_train_manifest_free(back);
	kiln_train_manifest_free(m);
	kiln_train_manifest_free(R.old);
	free_jobs(&R);
	free(R.buckets);
	free(trdir);
	free(mpath);
	pthread_mutex_destroy(&R.mu);
	return rc;
}
