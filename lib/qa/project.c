/* qa/project.c: QA of a kiln project, and its verdicts recorded in the catalog
 * (kiln_project_qa in kiln/qa.h).
 *
 * One run judges the catalog's current images (the spec's size and format, the qa: block's
 * thresholds), the plan (trait counts, uniqueness, ids) and, when dist/ exists, the previous
 * release's outputs. Findings keep that order: [0, ncatalog) judge the catalog and gate the
 * next release; the rest judge dist/, which the next release rewrites, and are recorded only.
 * Each token finding is saved with the SHA-256 of the image the token held when judged, so a
 * re-render makes the verdict stale instead of wrong (kiln/catalog.h).
 * Invariants: the library decides what is saved; the caller only formats the result.
 * Sizes: one kiln_qa_token and one 65-byte hash per token.
 */
#include "qa/run.h"
#include "kiln/catalog.h"
#include "util/alloc.h"
#include "util/fs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kiln_qa_run_opts_init(struct kiln_qa_run_opts *o)
{
	memset(o, 0, sizeof *o);
	o->near_threshold = KILN_QA_UNSET;
	o->near_dhash_threshold = KILN_QA_UNSET;
	o->near_measure = KILN_QA_UNSET;
}

void kiln_qa_result_release(struct kiln_qa_result *r)
{
	if (!r)
		return;
	kiln_findings_release(&r->findings);
	kiln_qa_image_result_release(&r->images);
	for (size_t i = 0; i < r->nowned; i++)
		free(r->owned[i]);
	free(r->owned);
	free(r->tokens);
	memset(r, 0, sizeof *r);
}

static int cmp_tok_id(const void *key, const void *elem)
{
	uint64_t id = *(const uint64_t *)key;
	const struct kiln_qa_token *t = elem;
	return id < t->id ? -1 : id > t->id;
}

/* Each finding with its token and the SHA-256 of the image that token held when judged. */
static int save(struct kiln_project *p, const struct kiln_qa_result *r, char (*sha)[65],
		struct kiln_error *e)
{
	const struct kiln_findings *f = &r->findings;
	struct kiln_qa_row *rows = kiln_calloc(f->n + 1, sizeof *rows);
	struct kiln_qa_judged *judged = kiln_calloc(r->ntokens + 1, sizeof *judged);
	size_t njudged = 0;
	char detail[128];
	int rc;
	if (!rows || !judged) {
		free(rows);
		free(judged);
		return kiln_error_set(e, KILN_E_NOMEM, "qa", "out of memory");
	}
	/* every token judged (the collection image is no token), with the image it held */
	for (size_t i = 0; i < r->ntokens; i++)
		if (!r->tokens[i].extra) {
			judged[njudged].item_id = r->tokens[i].id;
			judged[njudged++].image = sha[i][0] ? sha[i] : NULL;
		}
	for (size_t i = 0; i < f->n; i++) {
		rows[i].check = f->v[i].check;
		rows[i].severity = kiln_severity_name(f->v[i].severity);
		rows[i].file = f->v[i].file;
		rows[i].path = f->v[i].path;
		rows[i].message = f->v[i].message;
		rows[i].origin = i < r->ncatalog ? KILN_QA_ORIGIN_CATALOG : KILN_QA_ORIGIN_DIST;
		rows[i].has_item = f->v[i].has_item;
		rows[i].item_id = f->v[i].item;
		if (rows[i].has_item) {
			const struct kiln_qa_token *k = bsearch(&rows[i].item_id, r->tokens,
								r->ntokens, sizeof *r->tokens,
								cmp_tok_id);
			rows[i].image = k && sha[k - r->tokens][0] ? sha[k - r->tokens] : NULL;
		}
	}
	snprintf(detail, sizeof detail, "{\"errors\":%zu,\"warnings\":%zu}",
		 kiln_findings_count(f, KILN_SEV_ERROR), kiln_findings_count(f, KILN_SEV_WARNING));
	rc = kiln_catalog_save_qa(p->catalog, rows, f->n, judged, njudged, detail, e);
	free(rows);
	free(judged);
	return rc;
}

int kiln_project_qa(struct kiln_project *p, const struct kiln_qa_run_opts *ro,
		    struct kiln_qa_result *r, struct kiln_error *e)
{
	const struct kiln_spec *s = p->spec;
	struct kiln_qa_run_opts none;
	struct kiln_qa_opts o;
	struct kiln_items items;
	struct kiln_findings fd = KILN_FINDINGS_INIT;
	char (*sha)[65] = NULL;
	char *dist = NULL, *meta = NULL, *images = NULL, *path = NULL;
	uint64_t *ids = NULL;
	size_t nids = 0;
	int rc, k;
	memset(r, 0, sizeof *r);
	memset(&items, 0, sizeof items);
	if (!ro) {
		kiln_qa_run_opts_init(&none);
		ro = &none;
	}
	kiln_qa_opts_default(&o);
	/* the compose engine writes width*scale x height*scale (render/compose.c finish()); scale
	 * is one of its output options, the AI engines make width x height */
	k = s->scale > 1 && (!s->engine || !strcmp(s->engine, "compose")) ? s->scale : 1;
	/* the images judged are the polished ones: the polish upscales multiply the size */
	k *= kiln_spec_polish_scale(s);
	o.width = s->width * k;
	o.height = s->height * k;
	o.format = s->image_svg ? "svg" : s->format == KILN_FORMAT_PNG ? "png" :
		   s->format == KILN_FORMAT_WEBP ? "webp" : "jpeg";
	qa_opts_from_spec(&s->qa, &o);
	if ((rc = kiln_catalog_items(p->catalog, s, &items, e)))
		return rc;
	if ((rc = kiln_catalog_final_images(p->catalog, &items, e)))
		goto out;
	if (!(sha = kiln_calloc(items.n + 2, sizeof *sha)) ||
	    !(ids = kiln_calloc(items.n + 1, sizeof *ids)))
		goto nomem;
	for (size_t i = 0; i < items.n; i++) {
		char name[64];
		snprintf(name, sizeof name, "%llu.%s", (unsigned long long)items.v[i].id,
			 s->image_svg ? "svg" : kiln_format_ext(s->format));
		free(path);
		path = NULL;
		if (items.v[i].image[0] && !(path = kiln_store_path(p->store, items.v[i].image)))
			goto nomem;
		if ((rc = qa_token_add(r, items.v[i].id, name, path, 0, e)))
			goto out;
		memcpy(sha[i], items.v[i].image, sizeof sha[i]);
		ids[nids++] = items.v[i].id;
	}
	/* tokens come in id order from the catalog; a collection image sits last */
	if (s->mpl_collection_image && !strstr(s->mpl_collection_image, "://")) {
		char name[64];
		const char *dot = strrchr(s->mpl_collection_image, '.');
		free(path);
		if (!(path = kiln_fs_join(p->dir, s->mpl_collection_image)))
			goto nomem;
		snprintf(name, sizeof name, "collection%s", dot ? dot : "");
		if ((rc = qa_token_add(r, UINT64_MAX, name, path, 1, e)))
			goto out;
	}
	if ((rc = kiln_qa_collection(p, &r->findings, e)))
		goto out;
	qa_opts_override(ro, &o);
	if ((rc = kiln_qa_images(r->tokens, r->ntokens, &o, &r->findings, &r->images, e)) ||
	    (rc = qa_check_svgs(p, &items, &o, &r->findings, e)))
		goto out;
	r->checked = r->images.checked;
	/* everything after this point judges the previous release's outputs in dist/ */
	if (!(dist = kiln_fs_join(p->dir, "dist")) || !(meta = kiln_fs_join(dist, "metadata")) ||
	    !(images = kiln_fs_join(dist, "images")))
		goto nomem;
	if ((rc = qa_check_provenance(ro->provenance, ro->provenance_source, dist, r, &fd, e)) ||
	    (rc = qa_check_outputs(dist, kiln_fs_is_dir(meta) ? meta : NULL, images, ids, nids,
				   &fd, e)))
		goto out;
	qa_apply_spec_severities(&r->findings, &s->qa);
	qa_apply_spec_severities(&fd, &s->qa);
	r->ncatalog = r->findings.n;
	if ((rc = qa_append_prefixed(&r->findings, &fd, "", e)))
		goto out;
	if (!ro->no_save)
		rc = save(p, r, sha, e);
	goto out;
nomem:
	rc = kiln_error_set(e, KILN_E_NOMEM, "qa", "out of memory");
out:
	kiln_findings_release(&fd);
	kiln_items_release(&items);
	free(sha);
	free(ids);
	free(dist);
	free(meta);
	free(images);
	free(path);
	if (rc)
		kiln_qa_result_release(r);
	return rc;
}
