/* edit.c: what a person does to a token's polish chain: export its current image, import an
 * edit of it (checked like a render, stored by hash, recorded as an "edit" step by its
 * author), drop the edits; and the chain as JSON for `kiln show`. After an import or a
 * reset, the token's chain is walked again (kiln_project_polish on that token alone), so the
 * spec steps after the edit (a vectorize) are made from it. Calls polish.c and raster.c.
 */
#include "kiln/polish.h"
#include "polish/ops.h"
#include "kiln/catalog.h"
#include "kiln/render.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/sha.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The chain of one token, as owned JSON objects (what the catalog gives, in step order). */
static int add_json(void *user, const struct kiln_polish_step *st)
{
	json_t *arr = user, *o;
	json_t *settings = json_loads(st->settings, 0, NULL);
	o = json_pack("{s:I, s:s, s:o, s:s, s:s, s:s, s:I, s:b, s:s, s:s?, s:s?, s:s}",
		      "step", (json_int_t)st->step, "kind", st->kind,
		      "settings", settings ? settings : json_object(), "recipe", st->recipe,
		      "input", st->input, "output", st->output, "bytes", (json_int_t)st->bytes,
		      "image", st->image, "by", st->by, "tool", st->tool, "note", st->note,
		      "at", st->at);
	return !o || json_array_append_new(arr, o);
}

int kiln_polish_load_item(struct kiln_project *p, uint64_t id, struct kiln_items *it,
			  struct kiln_error *e)
{
	char ids[32];
	int rc = kiln_catalog_item(p->catalog, p->spec, id, it, e);
	if (rc)
		return rc;
	if (it->n && it->v[0].status == KILN_ITEM_RENDERED && it->v[0].image[0])
		return 0;
	snprintf(ids, sizeof ids, "item %llu", (unsigned long long)id);
	if (!it->n) {
		kiln_error_set(e, KILN_E_USAGE, ids, "no such item in the catalog");
		rc = kiln_error_hint(e, KILN_HINT_LIST_ITEMS, NULL);
	} else {
		snprintf(ids, sizeof ids, "%llu", (unsigned long long)id);
		kiln_error_set(e, KILN_E_STATE, "item", "item %llu has no rendered image yet",
			       (unsigned long long)id);
		rc = kiln_error_hint(e, KILN_HINT_RENDER, ids);
	}
	kiln_items_release(it);
	return rc;
}

int kiln_polish_chain_array(struct kiln_project *p, uint64_t id, json_t **out,
			    struct kiln_error *e)
{
	json_t *arr = json_array();
	int rc;
	*out = NULL;
	if (!arr)
		return kiln_error_set(e, KILN_E_NOMEM, "polish", "out of memory");
	if ((rc = kiln_catalog_polish_each(p->catalog, 1, id, add_json, arr, e))) {
		json_decref(arr);
		return rc;
	}
	*out = arr;
	return 0;
}

int kiln_polish_chain_json(struct kiln_project *p, uint64_t id, char **json,
			   struct kiln_error *e)
{
	struct kiln_items it;
	json_t *arr = NULL, *o = NULL, *first;
	char render[65];
	int rc;
	*json = NULL;
	if ((rc = kiln_catalog_item(p->catalog, p->spec, id, &it, e)))
		return rc;
	snprintf(render, sizeof render, "%s", it.n ? it.v[0].image : "");
	if ((rc = kiln_catalog_final_images(p->catalog, &it, e)) ||
	    (rc = kiln_polish_chain_array(p, id, &arr, e)))
		goto out;
	first = json_array_get(arr, 0);
	o = json_pack("{s:I, s:s?, s:s?, s:b, s:O}", "id", (json_int_t)id, "render",
		      render[0] ? render : NULL, "final", it.n && it.v[0].image[0] ?
		      it.v[0].image : NULL, "current", !first || !strcmp(json_string_value(
		      json_object_get(first, "input")) ? json_string_value(json_object_get(first,
		      "input")) : "", render), "steps", arr);
	if (!o || !(*json = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER)))
		rc = kiln_error_set(e, KILN_E_NOMEM, "polish", "out of memory");
out:
	json_decref(o);
	json_decref(arr);
	kiln_items_release(&it);
	return rc;
}

/* The token's current raster image: the output of its last image step that is not an SVG
 * (the render when none), what an artist edits. */
int kiln_polish_current_raster(struct kiln_project *p, const struct kiln_item *it,
			       json_t *steps, char out[65])
{
	size_t i;
	json_t *s;
	const char *render = it->image;
	memcpy(out, render, 65);
	s = json_array_get(steps, 0);
	if (!s || strcmp(json_string_value(json_object_get(s, "input")), render))
		return 0;
	json_array_foreach(steps, i, s) {
		if (json_is_true(json_object_get(s, "image")) &&
		    strcmp(json_string_value(json_object_get(s, "kind")), "vectorize"))
			snprintf(out, 65, "%s", json_string_value(json_object_get(s, "output")));
	}
	(void)p;
	return 0;
}

int kiln_polish_export(struct kiln_project *p, uint64_t id, const char *dir,
		       struct kiln_buf *names, struct kiln_error *e)
{
	struct kiln_items it, fin;
	json_t *steps = NULL, *renders = NULL, *r;
	char *json = NULL, raster[65], name[96];
	size_t i, k = 0;
	int rc;
	memset(&fin, 0, sizeof fin);
	if ((rc = kiln_polish_load_item(p, id, &it, e)))
		return rc;
	if ((rc = kiln_polish_chain_array(p, id, &steps, e)) || (rc = kiln_fs_mkdirs(dir, e)))
		goto out;
	kiln_polish_current_raster(p, &it.v[0], steps, raster);
	/* the image to edit, and (image.format svg) the SVG made from it */
	for (int pass = 0; pass < 2 && !rc; pass++) {
		char *src, *dst;
		if (pass == 1) {
			if ((rc = kiln_catalog_item(p->catalog, p->spec, id, &fin, e)) ||
			    (rc = kiln_catalog_final_images(p->catalog, &fin, e)))
				goto out;
			if (!strcmp(fin.v[0].image, raster))
				break;
			snprintf(name, sizeof name, "%llu.svg", (unsigned long long)id);
		} else {
			snprintf(name, sizeof name, "%llu.png", (unsigned long long)id);
		}
		src = kiln_store_path(p->store, pass ? fin.v[0].image : raster);
		dst = kiln_fs_join(dir, name);
		if (!src || !dst)
			rc = kiln_error_set(e, KILN_E_NOMEM, "polish", "out of memory");
		else if (!(rc = kiln_fs_copy(src, dst, 0, e)))
			rc = kiln_buf_addf(names, "%s\n", name) ?
				     kiln_error_set(e, KILN_E_NOMEM, "polish", "out of memory") : 0;
		free(src);
		free(dst);
	}
	/* the other candidates an AI engine made */
	if (rc || (rc = kiln_catalog_item_renders_json(p->catalog, id, &json, e)))
		goto out;
	if (!(renders = json_loads(json, 0, NULL))) {
		rc = kiln_error_set(e, KILN_E_NOMEM, "polish", "out of memory");
		goto out;
	}
	json_array_foreach(renders, i, r) {
		const char *img = json_string_value(json_object_get(r, "image"));
		char *src, *dst;
		if (!img || strcmp(json_string_value(json_object_get(r, "status")), "ok") ||
		    !strcmp(img, it.v[0].image) || kiln_store_has(p->store, img) <= 0)
			continue;
		snprintf(name, sizeof name, "%llu-candidate-%zu.png", (unsigned long long)id, ++k);
		src = kiln_store_path(p->store, img);
		dst = kiln_fs_join(dir, name);
		if (!src || !dst)
			rc = kiln_error_set(e, KILN_E_NOMEM, "polish", "out of memory");
		else if (!(rc = kiln_fs_copy(src, dst, 0, e)))
			rc = kiln_buf_addf(names, "%s\n", name) ?
				     kiln_error_set(e, KILN_E_NOMEM, "polish", "out of memory") : 0;
		free(src);
		free(dst);
		if (rc)
			break;
	}
out:
	json_decref(renders);
	json_decref(steps);
	free(json);
	kiln_items_release(&fin);
	kiln_items_release(&it);
	return rc;
}

/* Save the chain in arr (JSON steps) with `extra` appended (may be NULL), then walk the
 * token again. */
int kiln_polish_save_and_walk(struct kiln_project *p, uint64_t id, json_t *arr,
			      const struct kiln_polish_step *extra, struct kiln_error *e)
{
	size_t n = json_array_size(arr), i;
	struct kiln_polish_step *v = kiln_calloc(n + 2, sizeof *v);
	struct kiln_polish_opts o;
	struct kiln_polish_result res;
	json_t *s;
	char **settings = kiln_calloc(n + 1, sizeof *settings);
	size_t k = 0;
	int rc = 0;
	if (!v || !settings) {
		rc = kiln_error_set(e, KILN_E_NOMEM, "polish", "out of memory");
		goto out;
	}
	json_array_foreach(arr, i, s) {
		struct kiln_polish_step *d = &v[k];
		if (!(settings[k] = json_dumps(json_object_get(s, "settings"), JSON_COMPACT |
					       JSON_SORT_KEYS))) {
			rc = kiln_error_set(e, KILN_E_NOMEM, "polish", "out of memory");
			goto out;
		}
		d->item_id = id;
		d->step = (unsigned)k;
		d->kind = json_string_value(json_object_get(s, "kind"));
		d->settings = settings[k];
		d->recipe = json_string_value(json_object_get(s, "recipe"));
		d->input = json_string_value(json_object_get(s, "input"));
		d->output = json_string_value(json_object_get(s, "output"));
		d->bytes = (uint64_t)json_integer_value(json_object_get(s, "bytes"));
		d->image = json_is_true(json_object_get(s, "image"));
		d->by = json_string_value(json_object_get(s, "by"));
		d->tool = json_string_value(json_object_get(s, "tool"));
		d->note = json_string_value(json_object_get(s, "note"));
		d->at = json_string_value(json_object_get(s, "at"));
		k++;
	}
	if (extra) {
		v[k] = *extra;
		v[k].step = (unsigned)k;
		k++;
	}
	if ((rc = kiln_catalog_polish_save(p->catalog, &id, 1, v, k, e)))
		goto out;
	memset(&o, 0, sizeof o);
	o.threads = 1;
	o.ids = &id;
	o.nids = 1;
	if (!(rc = kiln_project_polish(p, &o, &res, e)) && res.failed)
		rc = kiln_error_set(e, KILN_E_FAILED, "polish", "item %llu could not be polished "
				    "after the change", (unsigned long long)id);
out:
	for (size_t j = 0; settings && j < n; j++)
		free(settings[j]);
	free(settings);
	free(v);
	return rc;
}

int kiln_polish_import(struct kiln_project *p, const struct kiln_polish_import *im,
		       struct kiln_error *e)
{
	struct kiln_items it;
	struct kiln_buf b = KILN_BUF_INIT;
	struct kiln_polish_step st;
	struct kiln_sha256 h;
	json_t *steps = NULL, *settings = NULL;
	char raster[65], out[65], raw[65], recipe[65], *src = NULL, *set = NULL;
	const char *base = strrchr(im->file, '/');
	int rc, w = 0, hh = 0;
	if (!im->by || !*im->by)
		return kiln_error_set(e, KILN_E_USAGE, im->file, "an edit needs its author's name");
	if ((rc = kiln_polish_load_item(p, im->id, &it, e)))
		return rc;
	if ((rc = kiln_polish_chain_array(p, im->id, &steps, e)))
		goto out;
	kiln_polish_current_raster(p, &it.v[0], steps, raster);
	if (!(src = kiln_store_path(p->store, raster))) {
		rc = kiln_error_set(e, KILN_E_NOMEM, "polish", "out of memory");
		goto out;
	}
	if ((rc = kiln_polish_size(src, &w, &hh, e)) ||
	    (rc = kiln_polish_check_png(im->file, w, hh, e)) ||
	    (rc = kiln_fs_read(im->file, &b, e)))
		goto out;
	kiln_sha256_hex(b.data, b.len, raw);
	/* an edited AI image says so: XMP compositeWithTrainedAlgorithmicMedia */
	if (strcmp(p->spec->engine, "compose") && it.v[0].legendary < 0) {
		struct kiln_buf d = KILN_BUF_INIT;
		if ((rc = kiln_render_disclose_png(b.data, b.len, 1, &d, e))) {
			kiln_buf_release(&d);
			kiln_error_prefix(e, "%s", im->file);
			goto out;
		}
		kiln_buf_release(&b);
		b = d;
	}
	if ((rc = kiln_store_put(p->store, b.data, b.len, out, e)) ||
	    (rc = kiln_store_sync(p->store, e)))
		goto out;
	if (!strcmp(out, raster)) {
		rc = kiln_error_set(e, KILN_E_USAGE, im->file, "the file is the token's current "
				    "image, unchanged: nothing to import");
		goto out;
	}
	if (kiln_sha256_init(&h)) {
		rc = kiln_error_set(e, KILN_E_NOMEM, "polish", "out of memory");
		goto out;
	}
	kiln_sha256_update(&h, "kiln-polish/1\nedit\n", 19);
	kiln_sha256_update(&h, raster, 64);
	kiln_sha256_update(&h, out, 64);
	kiln_sha256_final(&h, NULL, recipe);
	settings = json_pack("{s:s, s:s}", "file", base ? base + 1 : im->file, "sha256", raw);
	if (!settings || !(set = json_dumps(settings, JSON_COMPACT | JSON_SORT_KEYS))) {
		rc = kiln_error_set(e, KILN_E_NOMEM, "polish", "out of memory");
		goto out;
	}
	memset(&st, 0, sizeof st);
	st.item_id = im->id;
	st.kind = "edit";
	st.settings = set;
	st.recipe = recipe;
	st.input = raster;
	st.output = out;
	st.bytes = b.len;
	st.image = 1;
	st.by = im->by;
	st.tool = im->tool;
	st.note = im->note;
	rc = kiln_polish_save_and_walk(p, im->id, steps, &st, e);
out:
	json_decref(settings);
	json_decref(steps);
	free(set);
	free(src);
	kiln_buf_release(&b);
	kiln_items_release(&it);
	return rc;
}

int kiln_polish_reset(struct kiln_project *p, uint64_t id, struct kiln_error *e)
{
	struct kiln_items it;
	json_t *steps = NULL, *keep = json_array(), *s;
	size_t i;
	int rc;
	if (!keep)
		return kiln_error_set(e, KILN_E_NOMEM, "polish", "out of memory");
	if ((rc = kiln_polish_load_item(p, id, &it, e))) {
		json_decref(keep);
		return rc;
	}
	if ((rc = kiln_polish_chain_array(p, id, &steps, e)))
		goto out;
	json_array_foreach(steps, i, s) {
		const char *k = json_string_value(json_object_get(s, "kind"));
		if (strcmp(k, "edit") && strcmp(k, "inpaint") && json_array_append(keep, s)) {
			rc = kiln_error_set(e, KILN_E_NOMEM, "polish", "out of memory");
			goto out;
		}
	}
	rc = kiln_polish_save_and_walk(p, id, keep, NULL, e);
out:
	json_decref(steps);
	json_decref(keep);
	kiln_items_release(&it);
	return rc;
}
