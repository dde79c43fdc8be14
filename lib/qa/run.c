/* qa/run.c: what a project run and a folder run share (lib/qa/run.h).
 *
 * The token list owns its strings through the result (r->owned), so a caller gets one struct
 * to release. A release's records (provenance.json, ipfs.json) are read by the release
 * module's reader (kiln_release_record_read), never parsed here. Findings about a release's
 * outputs keep the token their folder check tied them to when their file names are prefixed
 * ("metaplex/assets/3.json").
 * Sizes: a token is ~50 bytes plus its two paths; the outputs are checked one file at a time.
 */
#include "qa/run.h"
#include "kiln/release.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/path.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int nomem(struct kiln_error *e)
{
	return kiln_error_set(e, KILN_E_NOMEM, "qa", "out of memory");
}

static char *own(struct kiln_qa_result *r, const char *s, int *bad)
{
	char **v, *d;
	if (!s)
		return NULL;
	if (!(d = kiln_strdup(s)) || !(v = kiln_reallocarray(r->owned, r->nowned + 1, sizeof *v))) {
		free(d);
		*bad = 1;
		return NULL;
	}
	r->owned = v;
	r->owned[r->nowned++] = d;
	return d;
}

int qa_token_add(struct kiln_qa_result *r, uint64_t id, const char *name, const char *path,
		 int extra, struct kiln_error *e)
{
	struct kiln_qa_token *v = kiln_reallocarray(r->tokens, r->ntokens + 1, sizeof *v);
	int bad = 0;
	if (!v)
		return nomem(e);
	r->tokens = v;
	memset(&v[r->ntokens], 0, sizeof *v);
	v[r->ntokens].id = id;
	v[r->ntokens].name = own(r, name, &bad);
	v[r->ntokens].path = own(r, path, &bad);
	v[r->ntokens].extra = extra;
	if (bad)
		return nomem(e);
	r->ntokens++;
	return 0;
}

static int cmp_tok(const void *a, const void *b)
{
	const struct kiln_qa_token *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

void qa_tokens_sort(struct kiln_qa_result *r)
{
	if (r->ntokens > 1)
		qsort(r->tokens, r->ntokens, sizeof *r->tokens, cmp_tok);
}

void qa_opts_from_spec(const struct kiln_qa_spec *q, struct kiln_qa_opts *o)
{
	if (q->max_bytes)
		o->max_bytes = q->max_bytes;
	if (q->min_bytes)
		o->min_bytes = q->min_bytes;
	if (q->uniform_stddev > 0)
		o->uniform_stddev = q->uniform_stddev;
	if (q->black_level)
		o->black_level = q->black_level;
	if (q->near_threshold)
		o->near_threshold = q->near_threshold == -2 ? 0 : q->near_threshold;
	if (q->near_dhash_threshold)
		o->near_dhash_threshold = q->near_dhash_threshold == -2 ? 0 : q->near_dhash_threshold;
	if (q->max_pixels)
		o->max_pixels = q->max_pixels;
	if (q->near_measure)
		o->near_measure = q->near_measure == 2 ? KILN_NEAR_PHASH : KILN_NEAR_COLOR;
	if (q->near_color_distance > 0)
		o->near_color_distance = q->near_color_distance;
	o->alpha = q->alpha;
}

void qa_opts_override(const struct kiln_qa_run_opts *ro, struct kiln_qa_opts *o)
{
	if (ro->near_threshold != KILN_QA_UNSET)
		o->near_threshold = ro->near_threshold;
	if (ro->near_dhash_threshold != KILN_QA_UNSET)
		o->near_dhash_threshold = ro->near_dhash_threshold;
	if (ro->near_measure != KILN_QA_UNSET)
		o->near_measure = ro->near_measure;
	if (ro->max_bytes)
		o->max_bytes = ro->max_bytes;
	if (ro->max_pixels)
		o->max_pixels = ro->max_pixels;
	if (ro->width)
		o->width = ro->width;
	if (ro->height)
		o->height = ro->height;
	o->threads = ro->threads;
	o->progress = ro->progress;
	o->user = ro->user;
}

void qa_apply_spec_severities(struct kiln_findings *f, const struct kiln_qa_spec *q)
{
	struct kiln_qa_severity sv[256];
	size_t n = q->nchecks < 256 ? q->nchecks : 256;
	for (size_t i = 0; i < n; i++) {
		sv[i].check = q->checks[i].check;
		sv[i].severity = q->checks[i].severity;
	}
	if (n)
		kiln_qa_apply_severities(f, sv, n);
}

/* provenance.json's images[i].file resolved beneath dir (links followed) and a regular file:
 * *file is the path to hash; else a "collection.provenance_path" finding and *file NULL (never
 * read: ../../etc/passwd would be hashed and its digest printed, /dev/zero read forever). A
 * missing file keeps its joined path: the provenance check says it cannot be read. */
static int record_file(const char *dir, const char *src, size_t i, const char *rel, char **path,
		       const char **file, struct kiln_findings *f, struct kiln_error *e)
{
	struct stat st;
	int st_rc = kiln_path_beneath(dir, rel, NULL, 0, path, NULL, 0), bad = 0;
	*file = NULL;
	memset(&st, 0, sizeof st);
	if (st_rc == KILN_PATH_NOMEM)
		return nomem(e);
	if (st_rc == KILN_PATH_MISSING) {
		if (!(*path = kiln_fs_join(dir, rel)))
			return nomem(e);
		*file = *path;
		return 0;
	}
	if (st_rc == KILN_PATH_OUTSIDE)
		bad = kiln_findings_add(f, "collection.provenance_path", KILN_SEV_ERROR, rel, NULL,
					"%s images[%zu].file leaves the folder %s (links followed): "
					"not read; a provenance record names files of its release",
					src, i, dir);
	else if (stat(*path, &st) != 0 || !S_ISREG(st.st_mode))
		bad = kiln_findings_add(f, "collection.provenance_path", KILN_SEV_ERROR, rel, NULL,
					"%s images[%zu].file is %s, not a regular file: not read",
					src, i, kiln_path_kind((unsigned)st.st_mode));
	else
		*file = *path;
	return bad ? nomem(e) : 0;
}

int qa_check_provenance(const char *flag, const char *flag_name, const char *dir,
			const struct kiln_qa_result *r, struct kiln_findings *f, struct kiln_error *e)
{
	struct kiln_qa_provenance pv = {flag, flag_name ? flag_name : "the declared provenance hash",
					NULL, NULL, NULL, 0};
	struct kiln_release_record rec;
	const char **files = NULL, **names = NULL, **listed = NULL;
	char **paths = NULL, *src = NULL;
	int rc = 0;
	memset(&rec, 0, sizeof rec);
	if (!flag) {
		if ((rc = kiln_release_record_read(dir, &rec, e)) || !rec.has_provenance)
			return rc;
		if (!(src = kiln_fs_join(dir, "provenance.json"))) {
			rc = nomem(e); /* the record holds the images list: out: releases it */
			goto out;
		}
		pv.source = src;
		pv.declared = rec.provenance_hash;
		if (!rec.provenance_hash[0]) {
			if (kiln_findings_add(f, "collection.provenance", KILN_SEV_ERROR, src, NULL,
					      "%s", rec.provenance_error[0] ? rec.provenance_error :
					      "has no provenance_hash (64 hex digits) and images list: "
					      "not a kiln provenance record"))
				rc = nomem(e);
			goto out;
		}
		pv.n = rec.nimages;
	} else {
		pv.n = r->ntokens;
	}
	files = kiln_calloc(pv.n + 1, sizeof *files);
	names = kiln_calloc(pv.n + 1, sizeof *names);
	listed = kiln_calloc(pv.n + 1, sizeof *listed);
	paths = kiln_calloc(pv.n + 1, sizeof *paths);
	if (!files || !names || !listed || !paths) {
		rc = nomem(e);
		goto out;
	}
	for (size_t i = 0; i < pv.n; i++) {
		if (flag) {
			files[i] = r->tokens[i].path ? r->tokens[i].path : "";
			names[i] = r->tokens[i].name;
			continue;
		}
		listed[i] = rec.images[i].sha256;
		names[i] = rec.images[i].file ? rec.images[i].file : "(an images entry without file)";
		if (rec.images[i].file && (rc = record_file(dir, src, i, rec.images[i].file, &paths[i],
							     &files[i], f, e)))
			goto out;
		if (!rec.images[i].file)
			files[i] = "";
	}
	pv.files = files;
	pv.names = names;
	pv.listed = flag ? NULL : listed;
	rc = kiln_qa_provenance(&pv, f, e);
out:
	for (size_t i = 0; paths && i < pv.n; i++)
		free(paths[i]);
	free(paths);
	free(files);
	free(names);
	free(listed);
	free(src);
	kiln_release_record_release(&rec);
	return rc;
}

int qa_append_prefixed(struct kiln_findings *dst, struct kiln_findings *src, const char *prefix,
		       struct kiln_error *e)
{
	struct kiln_buf file = KILN_BUF_INIT;
	int rc = 0;
	for (size_t i = 0; i < src->n && !rc; i++) {
		const struct kiln_finding *x = &src->v[i];
		kiln_buf_reset(&file);
		if (x->file && *x->file && (kiln_buf_adds(&file, prefix) ||
					    kiln_buf_adds(&file, x->file))) {
			rc = nomem(e);
			break;
		}
		kiln_findings_set_item(dst, x->has_item, x->item);
		if (kiln_findings_add(dst, x->check, x->severity, file.len ? file.data : NULL, x->path,
				      "%s", x->message))
			rc = nomem(e);
		kiln_findings_set_item(dst, 0, 0);
	}
	kiln_buf_release(&file);
	kiln_findings_release(src);
	return rc;
}

int qa_check_outputs(const char *dir, const char *meta_dir, const char *images_dir,
		     const uint64_t *item_ids, size_t nitem_ids, struct kiln_findings *f,
		     struct kiln_error *e)
{
	struct kiln_metacheck_opts mo;
	struct kiln_release_record rec;
	struct kiln_findings tmp = KILN_FINDINGS_INIT;
	char *path = NULL;
	int rc;
	memset(&mo, 0, sizeof mo);
	if ((rc = kiln_release_record_read(dir, &rec, e)))
		return rc;
	mo.has_starting_index = rec.has_starting_index;
	mo.starting_index = rec.starting_index;
	mo.image_base = rec.image_base;
	mo.images_dir = images_dir && kiln_fs_is_dir(images_dir) ? images_dir : NULL;
	if (meta_dir && (rc = kiln_metacheck_folder_erc721_opts(meta_dir, &mo, f, e)))
		goto out;
	if (!(path = kiln_fs_join(dir, "erc1155/metadata"))) {
		rc = nomem(e);
		goto out;
	}
	if (kiln_fs_is_dir(path)) {
		mo.erc1155 = 1;
		if ((rc = kiln_metacheck_folder_erc721_opts(path, &mo, &tmp, e)) ||
		    (rc = qa_append_prefixed(f, &tmp, "erc1155/metadata/", e)))
			goto out;
	}
	free(path);
	if (!(path = kiln_fs_join(dir, "metaplex/assets"))) {
		rc = nomem(e);
		goto out;
	}
	if (kiln_fs_is_dir(path)) {
		struct kiln_metacheck_opts so;
		memset(&so, 0, sizeof so);
		so.item_ids = item_ids;
		so.nitem_ids = nitem_ids;
		if ((rc = kiln_metacheck_sugar_folder_opts(path, &so, &tmp, e)) ||
		    (rc = qa_append_prefixed(f, &tmp, "metaplex/assets/", e)))
			goto out;
	}
out:
	free(path);
	kiln_findings_release(&tmp);
	kiln_release_record_release(&rec);
	return rc;
}
