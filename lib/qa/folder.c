/* qa/folder.c: QA of a collection folder that is not a kiln project (kiln_qa_folder in
 * kiln/qa.h): a HashLips build/ (images/ + json/), a kiln dist/ (images/ + metadata/), or a
 * Sugar assets/ folder (or a folder of N.json + N.<image> pairs).
 *
 * The layout decides the tokens: every numbered image file is token N (N.png is token N, the
 * number the metadata file shares), a metadata file without an image is token N with its
 * image missing, and Sugar's collection.<ext> is checked as an image but is no token.
 * Invariants: nothing is written; a folder that is not a collection is KILN_E_USAGE, named.
 * Sizes: one kiln_qa_token per file; the folder is listed once.
 */
#include "qa/run.h"
#include "util/alloc.h"
#include "util/fs.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_number(const char *s, size_t n)
{
	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

/* A kiln dist/'s provenance.json extras (files shipped beside the images: the polish SVGs,
 * or with image.format svg the PNGs): their names under images/, sorted, to be no tokens. */
struct extras {
	json_t *prov;
	const char **v;
	size_t n;
};

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int dist_extras(const char *dist, struct extras *x)
{
	char *path = kiln_fs_join(dist, "provenance.json");
	json_t *arr, *it;
	size_t i;
	memset(x, 0, sizeof *x);
	if (!path)
		return -1;
	x->prov = kiln_fs_exists(path) ? json_load_file(path, 0, NULL) : NULL;
	free(path);
	arr = json_object_get(x->prov, "extras");
	if (!json_array_size(arr))
		return 0;
	if (!(x->v = kiln_calloc(json_array_size(arr), sizeof *x->v)))
		return -1;
	json_array_foreach(arr, i, it) {
		const char *f = json_string_value(json_object_get(it, "file"));
		if (f && !strncmp(f, "images/", 7))
			x->v[x->n++] = f + 7;
	}
	qsort(x->v, x->n, sizeof *x->v, cmp_name);
	return 0;
}

static int is_extra(const struct extras *x, const char *name)
{
	return x && x->n && bsearch(&name, x->v, x->n, sizeof *x->v, cmp_name);
}

/* Every numbered non-json file of dir is the image of token N (but extras). */
static int folder_tokens(const char *dir, const struct extras *extras,
			 struct kiln_qa_result *r,
			 struct kiln_error *e)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int rc = 0;
	if (!d)
		return 0; /* an unreadable folder gives no tokens; the metadata checks say why */
	while (!rc && (de = readdir(d))) {
		const char *dot = strrchr(de->d_name, '.');
		char *path;
		if (!dot || !is_number(de->d_name, (size_t)(dot - de->d_name)) ||
		    !strcmp(dot, ".json") || is_extra(extras, de->d_name))
			continue;
		if (!(path = kiln_fs_join(dir, de->d_name)))
			rc = kiln_error_set(e, KILN_E_NOMEM, dir, "out of memory");
		else
			rc = qa_token_add(r, strtoull(de->d_name, NULL, 10), de->d_name, path, 0, e);
		free(path);
	}
	closedir(d);
	qa_tokens_sort(r);
	return rc;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Tokens that have metadata (N.json or N) but no image: their image is missing. */
static int add_missing(const char *meta_dir, struct kiln_qa_result *r, struct kiln_error *e)
{
	DIR *d = opendir(meta_dir);
	struct dirent *de;
	const char *ext = "png";
	uint64_t *have = NULL;
	size_t nhave = r->ntokens;
	char *ext_own = NULL;
	int rc = 0;
	if (!d)
		return 0;
	if (r->ntokens) {
		const char *dot = strrchr(r->tokens[0].name, '.');
		if (dot && !(ext = ext_own = kiln_strdup(dot + 1)))
			rc = kiln_error_set(e, KILN_E_NOMEM, meta_dir, "out of memory");
	}
	if (!rc && !(have = kiln_calloc(nhave + 1, sizeof *have)))
		rc = kiln_error_set(e, KILN_E_NOMEM, meta_dir, "out of memory");
	for (size_t i = 0; !rc && i < nhave; i++)
		have[i] = r->tokens[i].id;
	if (!rc)
		qsort(have, nhave, sizeof *have, cmp_u64);
	while (!rc && (de = readdir(d))) {
		size_t len = strcspn(de->d_name, ".");
		uint64_t id;
		char name[64];
		if (!is_number(de->d_name, len) ||
		    (de->d_name[len] && strcmp(de->d_name + len, ".json")))
			continue;
		id = strtoull(de->d_name, NULL, 10);
		if (bsearch(&id, have, nhave, sizeof *have, cmp_u64))
			continue;
		/* "7" and "7.json" are one token */
		for (size_t k = nhave; k < r->ntokens && id != UINT64_MAX; k++)
			if (r->tokens[k].id == id)
				id = UINT64_MAX;
		if (id == UINT64_MAX)
			continue;
		snprintf(name, sizeof name, "%llu.%s", (unsigned long long)id, ext);
		rc = qa_token_add(r, id, name, NULL, 0, e);
	}
	closedir(d);
	free(have);
	free(ext_own);
	qa_tokens_sort(r);
	return rc;
}

/* Sugar's collection.<ext>: checked like a token's image, but no token. */
static int add_sugar_collection(const char *dir, struct kiln_qa_result *r, struct kiln_error *e)
{
	static const char *const ext[] = {"png", "jpg", "jpeg", "gif", "webp"};
	for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
		char name[32], *path;
		int rc = 0;
		snprintf(name, sizeof name, "collection.%s", ext[i]);
		if (!(path = kiln_fs_join(dir, name)))
			return kiln_error_set(e, KILN_E_NOMEM, dir, "out of memory");
		if (kiln_fs_exists(path))
			rc = qa_token_add(r, UINT64_MAX, name, path, 1, e);
		if (kiln_fs_exists(path) || rc) {
			free(path);
			return rc;
		}
		free(path);
	}
	return 0;
}

/* The SVGs of a released images/ folder (N.svg): the svg.* checks (svg.c). One that is an
 * extra (provenance.json) is judged whole at the size of the N.<raster> beside it; one that
 * is the token's image gets the file size and viewBox checks. */
static int folder_svgs(const char *images, const struct extras *x, const struct kiln_qa_opts *o,
		       struct kiln_findings *f, struct kiln_error *e)
{
	static const char *const raster[] = {"png", "jpg", "webp", "gif"};
	DIR *d = opendir(images);
	struct dirent *de;
	int rc = 0;
	if (!d)
		return kiln_error_set(e, KILN_E_IO, images, "cannot list: %s", strerror(errno));
	while (!rc && (de = readdir(d))) {
		const char *dot = strrchr(de->d_name, '.');
		char *path, *beside = NULL;
		int extra;
		if (!dot || strcmp(dot, ".svg") || !is_number(de->d_name, (size_t)(dot - de->d_name)))
			continue;
		extra = is_extra(x, de->d_name);
		if (!(path = kiln_fs_join(images, de->d_name))) {
			rc = kiln_error_set(e, KILN_E_NOMEM, images, "out of memory");
			break;
		}
		for (size_t k = 0; extra && !beside && k < sizeof raster / sizeof *raster; k++) {
			char name[300];
			snprintf(name, sizeof name, "%.*s.%s", (int)(dot - de->d_name), de->d_name,
				 raster[k]);
			if (!(beside = kiln_fs_join(images, name)))
				break;
			if (!kiln_fs_exists(beside)) {
				free(beside);
				beside = NULL;
			}
		}
		rc = qa_check_svg_file(path, strtoull(de->d_name, NULL, 10), !extra, beside, o, f,
				       e);
		free(beside);
		free(path);
	}
	closedir(d);
	return rc;
}

int kiln_qa_folder(const char *dir, const struct kiln_qa_run_opts *ro, struct kiln_qa_result *r,
		   struct kiln_error *e)
{
	struct extras x;
	struct kiln_qa_run_opts none;
	struct kiln_qa_opts o;
	struct kiln_findings fd = KILN_FINDINGS_INIT;
	const struct kiln_qa_spec *q = NULL;
	char *assets = NULL, *zero = NULL, *images = NULL, *meta = NULL;
	const char *sugar = NULL, *meta_dir = NULL, *out_dir = NULL, *images_dir = NULL;
	int rc = 0;
	memset(r, 0, sizeof *r);
	memset(&x, 0, sizeof x);
	if (!ro) {
		kiln_qa_run_opts_init(&none);
		ro = &none;
	}
	kiln_qa_opts_default(&o);
	if (ro->config) {
		q = &ro->config->qa;
		qa_opts_from_spec(q, &o);
	}
	if (!kiln_fs_is_dir(dir))
		return kiln_error_set(e, KILN_E_USAGE, dir, "no such folder");
	if (!(assets = kiln_fs_join(dir, "assets")) || !(zero = kiln_fs_join(dir, "0.json")) ||
	    !(images = kiln_fs_join(dir, "images")))
		goto nomem;
	if ((ro->standard && !strcmp(ro->standard, "metaplex")) || kiln_fs_is_dir(assets) ||
	    kiln_fs_exists(zero)) {
		sugar = kiln_fs_is_dir(assets) ? assets : dir;
		if ((rc = folder_tokens(sugar, NULL, r, e)) ||
		    (rc = add_sugar_collection(sugar, r, e)))
			goto out;
	} else {
		if (!kiln_fs_is_dir(images)) {
			rc = kiln_error_set(e, KILN_E_USAGE, dir, "not a collection folder: expected "
					    "images/ with json/ or metadata/ (HashLips build/, kiln "
					    "dist/), or a Sugar assets/ folder");
			goto out;
		}
		rc = dist_extras(dir, &x) ? kiln_error_set(e, KILN_E_NOMEM, dir, "out of memory")
					  : folder_tokens(images, &x, r, e);
		if (rc)
			goto out;
		images_dir = images;
		if (!(meta = kiln_fs_join(dir, "json")))
			goto nomem;
		if (!kiln_fs_is_dir(meta)) {
			free(meta);
			if (!(meta = kiln_fs_join(dir, "metadata")))
				goto nomem;
		}
		if (kiln_fs_is_dir(meta)) {
			meta_dir = meta;
			if ((rc = add_missing(meta, r, e)))
				goto out;
		}
		out_dir = dir;
	}
	qa_opts_override(ro, &o);
	if ((rc = kiln_qa_images(r->tokens, r->ntokens, &o, &r->findings, &r->images, e)))
		goto out;
	r->checked = r->images.checked;
	if (images_dir && (rc = folder_svgs(images_dir, &x, &o, &r->findings, e)))
		goto out;
	/* everything after this point judges the folder's metadata and records */
	if ((rc = qa_check_provenance(ro->provenance, ro->provenance_source, dir, r, &fd, e)))
		goto out;
	if (sugar && (rc = kiln_metacheck_sugar_folder(sugar, &fd, e)))
		goto out;
	if (out_dir && (rc = qa_check_outputs(out_dir, meta_dir, images_dir, NULL, 0, &fd, e)))
		goto out;
	if (q) {
		qa_apply_spec_severities(&r->findings, q);
		qa_apply_spec_severities(&fd, q);
	}
	r->ncatalog = r->findings.n;
	rc = qa_append_prefixed(&r->findings, &fd, "", e);
	goto out;
nomem:
	rc = kiln_error_set(e, KILN_E_NOMEM, dir, "out of memory");
out:
	free(x.v);
	json_decref(x.prov);
	kiln_findings_release(&fd);
	free(assets);
	free(zero);
	free(images);
	free(meta);
	if (rc)
		kiln_qa_result_release(r);
	return rc;
}
