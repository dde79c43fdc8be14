/* manifest: .kiln/train/NAME/manifest.json, what `prepare` made of a training's datasets, in
 * and out of JSON. Everything a trainer is given (kohya's dataset TOML and argv, ai-toolkit's
 * YAML) is derived from this record alone (lib/train/inputs.c), and the model registry checks
 * a LoRA's ss_* metadata against it. The reader trusts nothing: every field is checked for its
 * type and range and named when wrong.
 */
#include "kiln/train.h"
#include "kiln/buf.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/sha.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *kiln_train_path(const char *dir, const char *name, const char *file)
{
	size_t n = strlen(dir) + strlen(KILN_TRAIN_DIR) + strlen(name) + (file ? strlen(file) : 0)
		   + 4;
	char *p = kiln_malloc(n);
	if (!p)
		return NULL;
	if (file)
		snprintf(p, n, "%s/%s/%s/%s", dir, KILN_TRAIN_DIR, name, file);
	else
		snprintf(p, n, "%s/%s/%s", dir, KILN_TRAIN_DIR, name);
	return p;
}

uint64_t kiln_train_manifest_steps_images(const struct kiln_train_manifest *m)
{
	uint64_t n = 0;
	for (size_t i = 0; i < m->ndatasets; i++)
		n += (uint64_t)m->datasets[i].images * m->datasets[i].repeats;
	return n;
}

void kiln_train_manifest_free(struct kiln_train_manifest *m)
{
	if (!m)
		return;
	for (size_t i = 0; m->datasets && i < m->ndatasets; i++) {
		struct kiln_train_mdataset *d = &m->datasets[i];
		free(d->dir);
		free(d->image_dir);
		free(d->class_tokens);
		free(d->license);
		free(d->source);
		free(d->caption_extension);
	}
	for (size_t i = 0; m->images && i < m->nimages; i++) {
		struct kiln_train_image *im = &m->images[i];
		free(im->source);
		free(im->file);
		free(im->caption);
		free(im->caption_from);
		free(im->converted);
	}
	for (size_t i = 0; m->command && i < m->ncommand; i++)
		free(m->command[i]);
	free(m->command);
	free(m->datasets);
	free(m->images);
	free(m->name);
	free(m->trainer);
	free(m->arch);
	free(m->base);
	free(m);
}

/* ---- writing ---- */

/* set key to a new value; 1 on failure (the value is freed by jansson either way) */
static int put(json_t *o, const char *key, json_t *v)
{
	return !v || json_object_set_new(o, key, v);
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *image_json(const struct kiln_train_image *im)
{
	json_t *o = json_object();
	char ph[17];
	int bad;
	if (!o)
		return NULL;
	snprintf(ph, sizeof ph, "%016llx", (unsigned long long)im->phash);
	bad = put(o, "source", json_string(im->source)) | put(o, "file", json_string(im->file)) |
	      put(o, "caption", json_string(im->caption)) |
	      put(o, "caption_from", json_string(im->caption_from)) |
	      put(o, "converted", str_or_null(im->converted)) |
	      put(o, "sha256_source", json_string(im->sha256_source)) |
	      put(o, "sha256", json_string(im->sha256)) |
	      put(o, "phash", im->has_phash ? json_string(ph) : json_null()) |
	      put(o, "source_size", json_pack("[ii]", im->src_width, im->src_height)) |
	      put(o, "crop", json_pack("[iiii]", im->crop_x, im->crop_y, im->crop_w,
					 im->crop_h)) |
	      put(o, "bucket", json_pack("[ii]", im->width, im->height)) |
	      put(o, "dataset", json_integer((json_int_t)im->dataset)) |
	      put(o, "token", im->token ? json_integer((json_int_t)im->token) : json_null());
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *dataset_json(const struct kiln_train_mdataset *d)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	if (put(o, "dir", json_string(d->dir)) | put(o, "image_dir", json_string(d->image_dir)) |
	    put(o, "class_tokens", str_or_null(d->class_tokens)) |
	    put(o, "license", str_or_null(d->license)) | put(o, "source", str_or_null(d->source)) |
	    put(o, "caption_extension", json_string(d->caption_extension)) |
	    put(o, "repeats", json_integer(d->repeats)) |
	    put(o, "images", json_integer((json_int_t)d->images))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

char *kiln_train_manifest_json(const struct kiln_train_manifest *m)
{
	json_t *o = json_object(), *ds = json_array(), *ims = json_array();
	char *out = NULL, *text = NULL;
	int bad = !o || !ds || !ims;
	for (size_t i = 0; !bad && i < m->ndatasets; i++)
		bad = json_array_append_new(ds, dataset_json(&m->datasets[i]));
	for (size_t i = 0; !bad && i < m->nimages; i++)
		bad = json_array_append_new(ims, image_json(&m->images[i]));
	if (!bad) {
		bad = put(o, "version", json_integer(m->version)) |
		      put(o, "name", json_string(m->name)) |
		      put(o, "trainer", json_string(m->trainer)) |
		      put(o, "arch", json_string(m->arch)) | put(o, "base", json_string(m->base)) |
		      put(o, "resolution", json_pack("[ii]", m->width, m->height)) |
		      put(o, "buckets", json_pack("{s:b,s:i,s:i,s:i}", "enable", m->bucket_enable,
						  "min", m->bucket_min, "max", m->bucket_max,
						  "step", m->bucket_step)) |
		      put(o, "network", json_pack("{s:i,s:f}", "dim", m->network_dim, "alpha",
						  m->network_alpha)) |
		      put(o, "unet_lr", json_real(m->unet_lr)) |
		      put(o, "text_encoder_lr", json_real(m->text_encoder_lr)) |
		      put(o, "steps", m->steps ? json_integer((json_int_t)m->steps) : json_null()) |
		      put(o, "epochs", m->epochs ? json_integer((json_int_t)m->epochs)
						 : json_null()) |
		      put(o, "seed", json_integer((json_int_t)m->seed)) |
		      put(o, "batch_size", json_integer(m->batch_size)) |
		      put(o, "datasets", ds) | put(o, "images", ims);
		ds = ims = NULL;
	}
	if (!bad && m->command) {
		json_t *a = json_array();
		bad = put(o, "command", a);
		for (size_t i = 0; !bad && i < m->ncommand; i++)
			bad = json_array_append_new(a, json_string(m->command[i]));
	} else if (!bad) {
		bad = put(o, "command", json_null());
	}
	if (!bad)
		text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
	if (text) {
		size_t n = strlen(text);
		if ((out = kiln_malloc(n + 2))) {
			memcpy(out, text, n);
			out[n] = '\n';
			out[n + 1] = 0;
		}
		free(text);
	}
	json_decref(ds);
	json_decref(ims);
	json_decref(o);
	return out;
}

/* ---- reading ---- */

struct rd {
	const char *path;
	struct kiln_error *e;
};

static int bad(struct rd *r, const char *field, const char *want)
{
	return kiln_error_set(r->e, KILN_E_IO, r->path, "not a kiln training manifest: %s must be "
			      "%s", field, want);
}

static int rd_str(struct rd *r, json_t *o, const char *key, int nullable, char **out)
{
	json_t *v = json_object_get(o, key);
	if (nullable && (!v || json_is_null(v)))
		return 0;
	if (!json_is_string(v))
		return bad(r, key, nullable ? "a string or null" : "a string");
	if (!(*out = kiln_strdup(json_string_value(v))))
		return kiln_error_set(r->e, KILN_E_NOMEM, r->path, "out of memory");
	return 0;
}

static int rd_int(struct rd *r, json_t *o, const char *key, int64_t lo, int64_t hi,
		  int nullable, int64_t *out)
{
	json_t *v = json_object_get(o, key);
	char want[96];
	if (nullable && (!v || json_is_null(v))) {
		*out = 0;
		return 0;
	}
	snprintf(want, sizeof want, "an integer from %lld to %lld", (long long)lo, (long long)hi);
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
		return bad(r, key, want);
	*out = json_integer_value(v);
	return 0;
}

static int rd_num(struct rd *r, json_t *o, const char *key, double *out)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_number(v))
		return bad(r, key, "a number");
	*out = json_number_value(v);
	return 0;
}

/* an array of n integers in [lo, hi] */
static int rd_ints(struct rd *r, json_t *o, const char *key, size_t n, int lo, int hi, int *out)
{
	json_t *a = json_object_get(o, key);
	if (!json_is_array(a) || json_array_size(a) != n)
		return bad(r, key, n == 2 ? "[width, height]" : "[x, y, width, height]");
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_array_get(a, i);
		if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
			return bad(r, key, "a list of whole pixel counts");
		out[i] = (int)json_integer_value(v);
	}
	return 0;
}

static int is_hex(const char *s, size_t n)
{
	return strlen(s) == n && strspn(s, "0123456789abcdef") == n;
}

static int rd_dataset(struct rd *r, json_t *o, struct kiln_train_mdataset *d)
{
	int64_t k = 0;
	int rc;
	if (!json_is_object(o))
		return bad(r, "datasets[]", "an object");
	if ((rc = rd_str(r, o, "dir", 0, &d->dir)) ||
	    (rc = rd_str(r, o, "image_dir", 0, &d->image_dir)) ||
	    (rc = rd_str(r, o, "class_tokens", 1, &d->class_tokens)) ||
	    (rc = rd_str(r, o, "license", 1, &d->license)) ||
	    (rc = rd_str(r, o, "source", 1, &d->source)) ||
	    (rc = rd_str(r, o, "caption_extension", 0, &d->caption_extension)))
		return rc;
	if ((rc = rd_int(r, o, "repeats", 1, 10000, 0, &k)))
		return rc;
	d->repeats = (unsigned)k;
	if ((rc = rd_int(r, o, "images", 0, INT64_MAX, 0, &k)))
		return rc;
	d->images = (size_t)k;
	return 0;
}

static int rd_image(struct rd *r, json_t *o, size_t ndatasets, struct kiln_train_image *im)
{
	char *s1 = NULL, *s2 = NULL, *ph = NULL;
	int box[4], rc;
	int64_t k = 0;
	if (!json_is_object(o))
		return bad(r, "images[]", "an object");
	if ((rc = rd_str(r, o, "source", 0, &im->source)) ||
	    (rc = rd_str(r, o, "file", 0, &im->file)) ||
	    (rc = rd_str(r, o, "caption", 0, &im->caption)) ||
	    (rc = rd_str(r, o, "caption_from", 0, &im->caption_from)) ||
	    (rc = rd_str(r, o, "converted", 1, &im->converted)) ||
	    (rc = rd_str(r, o, "sha256_source", 0, &s1)) || (rc = rd_str(r, o, "sha256", 0, &s2)) ||
	    (rc = rd_str(r, o, "phash", 1, &ph)))
		goto out;
	if (!is_hex(s1, 64) || !is_hex(s2, 64)) {
		rc = bad(r, "images[].sha256 and sha256_source", "64 lowercase hex digits");
		goto out;
	}
	memcpy(im->sha256_source, s1, 65);
	memcpy(im->sha256, s2, 65);
	if (ph) {
		if (!is_hex(ph, 16)) {
			rc = bad(r, "images[].phash", "16 lowercase hex digits or null");
			goto out;
		}
		im->phash = strtoull(ph, NULL, 16);
		im->has_phash = 1;
	}
	if ((rc = rd_ints(r, o, "source_size", 2, 1, 1 << 30, box)))
		goto out;
	im->src_width = box[0];
	im->src_height = box[1];
	if ((rc = rd_ints(r, o, "crop", 4, 0, 1 << 30, box)))
		goto out;
	im->crop_x = box[0];
	im->crop_y = box[1];
	im->crop_w = box[2];
	im->crop_h = box[3];
	if ((rc = rd_ints(r, o, "bucket", 2, 1, 1 << 16, box)))
		goto out;
	im->width = box[0];
	im->height = box[1];
	if ((rc = rd_int(r, o, "dataset", 0, (int64_t)ndatasets - 1, 0, &k)))
		goto out;
	im->dataset = (size_t)k;
	if ((rc = rd_int(r, o, "token", 0, INT64_MAX, 1, &k)))
		goto out;
	im->token = (uint64_t)k;
out:
	free(s1);
	free(s2);
	free(ph);
	return rc;
}

static int rd_manifest(struct rd *r, json_t *o, struct kiln_train_manifest *m)
{
	json_t *a, *b;
	int64_t k = 0;
	int res[2], rc;
	if (!json_is_object(o))
		return bad(r, "the file", "a JSON object");
	if ((rc = rd_int(r, o, "version", 1, INT64_MAX, 0, &k)))
		return rc;
	if (k != KILN_TRAIN_MANIFEST_VERSION)
		return kiln_error_set(r->e, KILN_E_IO, r->path, "a training manifest of version "
				      "%lld, which this kiln does not read (it writes version %d): "
				      "prepare the training again", (long long)k,
				      KILN_TRAIN_MANIFEST_VERSION);
	m->version = (int)k;
	if ((rc = rd_str(r, o, "name", 0, &m->name)) ||
	    (rc = rd_str(r, o, "trainer", 0, &m->trainer)) ||
	    (rc = rd_str(r, o, "arch", 0, &m->arch)) || (rc = rd_str(r, o, "base", 0, &m->base)))
		return rc;
	if ((rc = rd_ints(r, o, "resolution", 2, 64, 8192, res)))
		return rc;
	m->width = res[0];
	m->height = res[1];
	b = json_object_get(o, "buckets");
	if (!json_is_object(b) || !json_is_boolean(json_object_get(b, "enable")))
		return bad(r, "buckets", "{enable, min, max, step}");
	m->bucket_enable = json_is_true(json_object_get(b, "enable"));
	if ((rc = rd_int(r, b, "min", 64, 8192, 0, &k)))
		return rc;
	m->bucket_min = (int)k;
	if ((rc = rd_int(r, b, "max", 64, 8192, 0, &k)))
		return rc;
	m->bucket_max = (int)k;
	if ((rc = rd_int(r, b, "step", 8, 1024, 0, &k)))
		return rc;
	m->bucket_step = (int)k;
	b = json_object_get(o, "network");
	if (!json_is_object(b))
		return bad(r, "network", "{dim, alpha}");
	if ((rc = rd_int(r, b, "dim", 1, 1024, 0, &k)) ||
	    (rc = rd_num(r, b, "alpha", &m->network_alpha)))
		return rc;
	m->network_dim = (int)k;
	if ((rc = rd_num(r, o, "unet_lr", &m->unet_lr)) ||
	    (rc = rd_num(r, o, "text_encoder_lr", &m->text_encoder_lr)))
		return rc;
	if ((rc = rd_int(r, o, "steps", 1, INT64_MAX, 1, &k)))
		return rc;
	m->steps = (uint64_t)k;
	if ((rc = rd_int(r, o, "epochs", 1, INT64_MAX, 1, &k)))
		return rc;
	m->epochs = (uint64_t)k;
	if (!m->steps == !m->epochs)
		return bad(r, "steps and epochs", "one a number, the other null");
	if ((rc = rd_int(r, o, "seed", 0, 4294967295ll, 0, &k)))
		return rc;
	m->seed = (uint64_t)k;
	if ((rc = rd_int(r, o, "batch_size", 1, 256, 0, &k)))
		return rc;
	m->batch_size = (unsigned)k;
	a = json_object_get(o, "datasets");
	if (!json_is_array(a) || !json_array_size(a))
		return bad(r, "datasets", "a list of at least one dataset");
	if (!(m->datasets = kiln_calloc(json_array_size(a), sizeof *m->datasets)))
		return kiln_error_set(r->e, KILN_E_NOMEM, r->path, "out of memory");
	for (size_t i = 0; i < json_array_size(a); i++) {
		m->ndatasets = i + 1;
		if ((rc = rd_dataset(r, json_array_get(a, i), &m->datasets[i])))
			return rc;
	}
	a = json_object_get(o, "command");
	if (a && !json_is_null(a)) {
		if (!json_is_array(a) || !json_array_size(a))
			return bad(r, "command", "a list of words or null");
		if (!(m->command = kiln_calloc(json_array_size(a), sizeof *m->command)))
			return kiln_error_set(r->e, KILN_E_NOMEM, r->path, "out of memory");
		for (size_t i = 0; i < json_array_size(a); i++) {
			json_t *w = json_array_get(a, i);
			m->ncommand = i + 1;
			if (!json_is_string(w))
				return bad(r, "command[]", "a string");
			if (!(m->command[i] = kiln_strdup(json_string_value(w))))
				return kiln_error_set(r->e, KILN_E_NOMEM, r->path, "out of memory");
		}
	}
	a = json_object_get(o, "images");
	if (!json_is_array(a))
		return bad(r, "images", "a list");
	if (json_array_size(a) &&
	    !(m->images = kiln_calloc(json_array_size(a), sizeof *m->images)))
		return kiln_error_set(r->e, KILN_E_NOMEM, r->path, "out of memory");
	for (size_t i = 0; i < json_array_size(a); i++) {
		m->nimages = i + 1;
		if ((rc = rd_image(r, json_array_get(a, i), m->ndatasets, &m->images[i])))
			return rc;
	}
	return 0;
}

int kiln_train_manifest_load(const char *path, struct kiln_train_manifest **out,
			     struct kiln_error *e)
{
	struct kiln_buf b = KILN_BUF_INIT;
	struct kiln_train_manifest *m = NULL;
	struct rd r = {path, e};
	json_error_t je;
	json_t *o = NULL;
	int rc;
	*out = NULL;
	if ((rc = kiln_fs_read_limited(path, &b, (size_t)1 << 30, 0, e)))
		return rc;
	o = json_loadb((const char *)b.data, b.len, JSON_REJECT_DUPLICATES, &je);
	if (!o) {
		rc = kiln_error_set(e, KILN_E_IO, path, "not a kiln training manifest: line %d: %s",
				    je.line, je.text);
		goto out;
	}
	if (!(m = kiln_calloc(1, sizeof *m))) {
		rc = kiln_error_set(e, KILN_E_NOMEM, path, "out of memory");
		goto out;
	}
	if ((rc = rd_manifest(&r, o, m)))
		goto out;
	kiln_sha256_hex(b.data, b.len, m->sha256);
	*out = m;
	m = NULL;
out:
	kiln_train_manifest_free(m);
	json_decref(o);
	kiln_buf_release(&b);
	return rc;
}
