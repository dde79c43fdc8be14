/* release: writes dist/ from the catalog: images/<id>.<ext>, metadata/<id>.json (OpenSea /
 * ERC-721 token JSON) and _metadata.json (all tokens, HashLips' convention).
 *
 * Invariants: the new release is written whole into DIR/.dist.tmp-PID and swapped with dist/
 * by one renameat2(RENAME_EXCHANGE) (or a rename when there is no dist/ yet), so a failed or
 * killed release leaves the previous dist/ as it was. It refuses unless every item is rendered
 * from the current plan and its render is current. The meta key "release_sha" (a hash of all
 * the inputs) makes a second release with nothing changed a no-op.
 *
 * Sizes: one image copy and one small JSON per token; _metadata.json holds all of them
 * (about 300 bytes a token).
 */
#include "kiln/compose.h"
#include "kiln/project.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/sha.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* An item's URI: base_uri + "/" + id + ext (one slash). Caller frees. */
static char *image_uri(const struct kiln_spec *s, uint64_t id)
{
	size_t n = strlen(s->base_uri);
	struct kiln_buf b = KILN_BUF_INIT;
	if (kiln_buf_adds(&b, s->base_uri) ||
	    kiln_buf_addf(&b, "%s%llu.%s", n && s->base_uri[n - 1] == '/' ? "" : "/",
			  (unsigned long long)id, kiln_format_ext(s->format))) {
		kiln_buf_release(&b);
		return NULL;
	}
	return kiln_buf_detach(&b, NULL);
}

static json_t *token_json(const struct kiln_spec *s, const struct kiln_item *it)
{
	json_t *o = json_object(), *attrs = json_array();
	char *name = kiln_token_name(s, it->id), *uri = image_uri(s, it->id);
	const char *desc = s->meta_description;
	int bad = !o || !attrs || !name || !uri;
	if (it->legendary >= 0) {
		const struct kiln_legendary *g = &s->legendaries[it->legendary];
		if (g->description)
			desc = g->description;
		for (size_t a = 0; !bad && a < g->nattrs; a++)
			bad |= json_array_append_new(attrs, json_pack("{s:s, s:s}", "trait_type",
				g->attrs[a].trait_type, "value", g->attrs[a].value)) != 0;
		if (!bad) {
			/* a legendary is named after itself */
			free(name);
			name = kiln_strdup(g->name);
			bad = !name;
		}
	} else {
		for (size_t l = 0; !bad && l < s->nlayers; l++) {
			uint32_t t = it->traits[l];
			const struct kiln_trait *tr = &s->layers[l].traits[t];
			if (tr->is_none)
				continue;
			bad |= json_array_append_new(attrs, json_pack("{s:s, s:s}", "trait_type",
				s->layers[l].name, "value", tr->name)) != 0;
		}
	}
	if (!bad) {
		bad |= json_object_set_new(o, "name", json_string(name)) != 0;
		bad |= json_object_set_new(o, "description", json_string(desc)) != 0;
		bad |= json_object_set_new(o, "image", json_string(uri)) != 0;
		if (s->external_url)
			bad |= json_object_set_new(o, "external_url",
						   json_string(s->external_url)) != 0;
		bad |= json_object_set(o, "attributes", attrs) != 0;
	}
	free(name);
	free(uri);
	json_decref(attrs);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int write_json(const char *path, json_t *j, struct kiln_error *e)
{
	char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	size_t n;
	int rc;
	if (!text)
		return kiln_error_set(e, KILN_E_NOMEM, path, "out of memory");
	n = strlen(text);
	text[n] = 0;
	{
		char *t2 = kiln_realloc(text, n + 2);
		if (!t2) {
			free(text);
			return kiln_error_set(e, KILN_E_NOMEM, path, "out of memory");
		}
		text = t2;
		text[n++] = '\n';
		text[n] = 0;
	}
	rc = kiln_fs_write_atomic(path, text, n, e);
	free(text);
	return rc;
}

/* Hash of everything dist/ depends on. */
static void release_sha(const struct kiln_project *p, const struct kiln_items *items,
			char out[65])
{
	struct kiln_sha256 h;
	if (kiln_sha256_init(&h)) {
		out[0] = 0;
		return;
	}
	kiln_sha256_update(&h, "release/1\n", 10);
	kiln_sha256_update(&h, p->spec_sha, 64);
	for (size_t i = 0; i < items->n; i++) {
		char line[256];
		int n = snprintf(line, sizeof line, "\n%llu %s ", (unsigned long long)items->v[i].id,
				 items->v[i].image);
		kiln_sha256_update(&h, line, (size_t)n);
		kiln_sha256_update(&h, items->v[i].traits_json, strlen(items->v[i].traits_json));
	}
	kiln_sha256_final(&h, NULL, out);
}

/* Every item must hold a current render. */
static int check_items(struct kiln_project *p, const struct kiln_items *items,
		       struct kiln_error *e)
{
	struct kiln_compose *c = NULL;
	uint64_t missing = 0, first = 0;
	int rc;
	if (items->n != p->spec->size)
		return kiln_error_set(e, KILN_E_STATE, p->spec_path, "the catalog holds %zu items but "
				      "the spec asks for %llu: run `kiln plan`", items->n,
				      (unsigned long long)p->spec->size);
	if ((rc = kiln_compose_new(&c, p->spec, e)))
		return rc;
	for (size_t i = 0; i < items->n; i++) {
		const struct kiln_item *it = &items->v[i];
		char recipe[65];
		struct kiln_error re;
		int bad = it->status != KILN_ITEM_RENDERED || !kiln_store_has(p->store, it->image);
		if (!bad) {
			if (it->legendary >= 0)
				bad = kiln_compose_legendary_recipe(c, (size_t)it->legendary, recipe,
								    &re) != 0;
			else
				bad = kiln_compose_recipe(c, it->traits, recipe, &re) != 0;
			bad = bad || strcmp(recipe, it->recipe);
		}
		if (bad && !missing++)
			first = it->id;
	}
	kiln_compose_free(c);
	if (missing)
		return kiln_error_set(e, KILN_E_STATE, p->dir, "%llu of %zu items have no current "
				      "render (first: item %llu): run `kiln render` (see `kiln show "
				      "%llu` for why), or `kiln build`", (unsigned long long)missing,
				      items->n, (unsigned long long)first,
				      (unsigned long long)first);
	return 0;
}

static void remove_stale_tmp(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	if (!d)
		return;
	while ((de = readdir(d))) {
		if (!strncmp(de->d_name, ".dist.tmp-", 10) || !strncmp(de->d_name, ".dist.old-", 10)) {
			char *path = kiln_fs_join(dir, de->d_name);
			struct kiln_error e;
			if (path && kiln_fs_remove_tree(path, &e) == 0) {
			}
			free(path);
		}
	}
	closedir(d);
}

static void report(const struct kiln_release_opts *o, const char *event, uint64_t total,
		   uint64_t done)
{
	struct kiln_progress pr;
	if (!o->progress)
		return;
	memset(&pr, 0, sizeof pr);
	pr.stage = "release";
	pr.event = event;
	pr.total = total;
	pr.done = done;
	pr.ok = 1;
	o->progress(&pr, o->user);
}

int kiln_project_release(struct kiln_project *p, const struct kiln_release_opts *o,
			 struct kiln_release_result *r, struct kiln_error *e)
{
	const struct kiln_spec *s = p->spec;
	struct kiln_items items;
	char sha[65], *old = NULL, *dist = NULL, *tmp = NULL, *imgdir = NULL, *metadir = NULL;
	char *stamp = NULL;
	json_t *all = NULL;
	int rc, current;

	memset(r, 0, sizeof *r);
	memset(&items, 0, sizeof items);
	if ((rc = kiln_project_plan_current(p, &current, e)))
		return rc;
	if (!current)
		return kiln_error_set(e, KILN_E_STATE, p->spec_path, "the plan is missing or older "
				      "than kiln.yaml: run `kiln plan` and `kiln render` first (or "
				      "`kiln build`)");
	if ((rc = kiln_catalog_items(p->catalog, s, &items, e)))
		return rc;
	if ((rc = check_items(p, &items, e)))
		goto out;
	release_sha(p, &items, sha);
	dist = kiln_fs_join(p->dir, "dist");
	stamp = dist ? kiln_fs_join(dist, ".kiln-release") : NULL;
	if (!dist || !stamp)
		goto nomem;
	snprintf(r->dist, sizeof r->dist, "%s", dist);
	r->items = items.n;
	if ((rc = kiln_catalog_meta_get(p->catalog, "release_sha", &old, e)))
		goto out;
	if (!o->force && old && !strcmp(old, sha) && kiln_fs_exists(stamp)) {
		struct kiln_buf b = KILN_BUF_INIT;
		struct kiln_error se;
		int same = !kiln_fs_read(stamp, &b, &se) && b.data && !strncmp(b.data, sha, 64);
		kiln_buf_release(&b);
		if (same)
			goto out; /* up to date */
	}
	remove_stale_tmp(p->dir);
	{
		char name[64];
		snprintf(name, sizeof name, ".dist.tmp-%ld", (long)getpid());
		tmp = kiln_fs_join(p->dir, name);
	}
	if (!tmp || !(imgdir = kiln_fs_join(tmp, "images")) ||
	    !(metadir = kiln_fs_join(tmp, "metadata")))
		goto nomem;
	if ((rc = kiln_fs_mkdirs(imgdir, e)) || (rc = kiln_fs_mkdirs(metadir, e)))
		goto out;
	if (!(all = json_array()))
		goto nomem;
	report(o, "start", items.n, 0);
	for (size_t i = 0; i < items.n; i++) {
		const struct kiln_item *it = &items.v[i];
		char fname[64], *src = kiln_store_path(p->store, it->image), *dst, *mpath;
		json_t *tj;
		if (!src)
			goto nomem;
		snprintf(fname, sizeof fname, "%llu.%s", (unsigned long long)it->id,
			 kiln_format_ext(s->format));
		dst = kiln_fs_join(imgdir, fname);
		rc = dst ? kiln_fs_copy(src, dst, e) : kiln_error_set(e, KILN_E_NOMEM, p->dir, "oom");
		free(src);
		free(dst);
		if (rc)
			goto out;
		r->bytes += it->image_bytes;
		if (!(tj = token_json(s, it)))
			goto nomem;
		snprintf(fname, sizeof fname, "%llu.json", (unsigned long long)it->id);
		mpath = kiln_fs_join(metadir, fname);
		rc = mpath ? write_json(mpath, tj, e) : kiln_error_set(e, KILN_E_NOMEM, p->dir, "oom");
		free(mpath);
		if (rc || json_array_append_new(all, tj)) {
			if (!rc)
				goto nomem;
			goto out;
		}
		report(o, "item", items.n, i + 1);
	}
	{
		char *mp = kiln_fs_join(tmp, "_metadata.json"), *sp = kiln_fs_join(tmp, ".kiln-release");
		char line[80];
		rc = mp && sp ? write_json(mp, all, e) : kiln_error_set(e, KILN_E_NOMEM, p->dir, "oom");
		snprintf(line, sizeof line, "%s\n", sha);
		if (!rc)
			rc = kiln_fs_write_atomic(sp, line, strlen(line), e);
		free(mp);
		free(sp);
		if (rc)
			goto out;
	}
	kiln_fs_sync_dir(tmp);
	/* swap the new release in whole */
	if (kiln_fs_exists(dist)) {
		if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dist, RENAME_EXCHANGE) != 0) {
			rc = kiln_error_set(e, KILN_E_IO, dist, "cannot swap in the new release: %s",
					    strerror(errno));
			goto out;
		}
	} else if (rename(tmp, dist) != 0) {
		rc = kiln_error_set(e, KILN_E_IO, dist, "cannot move the release into place: %s",
				    strerror(errno));
		goto out;
	}
	kiln_fs_sync_dir(p->dir);
	if ((rc = kiln_catalog_meta_set(p->catalog, "release_sha", sha, e)))
		goto out;
	{
		json_t *d = json_pack("{s:s, s:I, s:I}", "release_sha", sha, "items",
				      (json_int_t)items.n, "bytes", (json_int_t)r->bytes);
		char *detail = d ? json_dumps(d, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
		json_decref(d);
		rc = detail ? kiln_catalog_event(p->catalog, "release", 0, detail, e)
			    : kiln_error_set(e, KILN_E_NOMEM, p->dir, "out of memory");
		free(detail);
		if (rc)
			goto out;
	}
	r->written = 1;
	report(o, "end", items.n, items.n);
	goto out;
nomem:
	rc = kiln_error_set(e, KILN_E_NOMEM, p->dir, "out of memory writing the release");
out:
	if (tmp && kiln_fs_exists(tmp)) {
		struct kiln_error ignore;
		/* after the swap tmp holds the old release; on failure, the half-written new one */
		if (kiln_fs_remove_tree(tmp, &ignore)) {
		}
	}
	json_decref(all);
	free(old);
	free(dist);
	free(tmp);
	free(imgdir);
	free(metadir);
	free(stamp);
	kiln_items_release(&items);
	return rc;
}
