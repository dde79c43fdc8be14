/* release: turns the catalog's approved collection into dist/, exactly what a mint needs,
 * computed offline and verifiable by anyone.
 *
 *   dist/images/<id>.<ext>          final images, the initial sequence (token id order)
 *   dist/thumbnails/<id>.<ext>      image.thumbnail's small copies (not in the metadata)
 *   dist/metadata/<id>.json         ERC-721 / OpenSea token JSON   \  erc721 target
 *   dist/_metadata.json             all of them (HashLips' file)   /  (the default)
 *   dist/contract.json              contract-level JSON (contractURI), erc721 and erc1155
 *   dist/contract/                  its images, when the spec names project files
 *   dist/erc1155/metadata/<hex>.json  ERC-1155 token JSON, {id} = 64 lowercase hex digits
 *   dist/metaplex/assets/N.<ext>, N.json, collection.<ext>, collection.json   Sugar's layout
 *   dist/metaplex/config.json       Sugar's config: what the spec knows (no price, no guards)
 *   dist/prereveal/hidden.<ext>, prereveal/metadata/<id>.json  the pre-reveal set
 *   dist/provenance.json            image hashes, provenance hash, starting index, method
 *   dist/ipfs.json                  CIDs of every folder and file to upload; CAR hashes
 *   dist/car/<name>.car             CARv1 of each folder and file an ipfs:// URI names (--car)
 *   dist/manifest.sha256            every other file and its SHA-256 (sha256sum's format);
 *                                   its own SHA-256 is the release hash
 *
 * Order matters: the images folder's CID is computed first, so the token JSON can say
 * image: ipfs://<images CID>/<id>.<ext>; then each metadata folder's CID. Every image is read
 * once: its bytes are checked against the store's SHA-256 (the provenance hash covers exactly
 * what is uploaded), written to dist/ and fed to the IPFS importer from memory.
 *
 * Reveal: the token at position t (0-based, token id order) shows initial item
 * (t + starting_index) mod N, in every target. With metadata.reveal set and no starting index
 * known yet, only the images, the pre-reveal set and the records are written: publishing the
 * final token metadata before the index is fixed would give the order away. The starting index
 * is kept in the catalog (meta "starting_index") and in provenance.json, so later releases and
 * builds reuse it; once public, a different one is refused unless asked for (re_reveal): a
 * silent change would show every holder another token.
 *
 * The manifest is made from hashes taken as the files are written (the images' and CARs' are
 * computed anyway), so no image is read twice for it; a walk of the finished folder then
 * lists every file, and a file no writer recorded is hashed there, so the manifest is always
 * the whole folder.
 *
 * Invariants: the release is written whole into DIR/.dist.tmp-PID and swapped with dist/ by
 * one renameat2(RENAME_EXCHANGE), so a failed or killed release leaves the previous dist/ as
 * it was. Its files (up to five a token) are written without an fsync each: one syncfs()
 * makes the whole folder durable before the swap, so the swap never puts in place a dist/
 * whose files a crash could still empty. It refuses unless every item is rendered from the
 * current plan and its render is current: its recipe is what the recipe module computes now
 * (compose: the item's; AI engines: one of its candidates'), the call render makes. Nothing in dist/ depends on time, the
 * machine or the thread count: the same catalog and options give the same bytes and CIDs.
 * The meta key "release_sha" (a hash of all inputs and options) makes a second release with
 * nothing changed a no-op.
 *
 * AI disclosure (IPTC DigitalSourceType XMP and the A1111 infotext) is already in the bytes of
 * every AI-rendered PNG (lib/ai_disclosure.c, when the render stores it), so the images here,
 * their hashes and the provenance hash include it; the compose engine's images carry none.
 *
 * Sizes: one image in memory at a time; per token a small JSON per target and 65 bytes of hash.
 */
#include "kiln/portfolio.h"
#include "kiln/project.h"
#include "kiln/recipe.h"
#include "kiln/release.h"
#include "release/extras.h"
#include "release/pfiles.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/image.h"
#include "util/sha.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LEGACY_PLACEHOLDER "ipfs://REPLACE_WITH_IMAGES_CID"
#define JSON_FLAGS (JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII | \
		    JSON_REAL_PRECISION(15))

/* One release being written. */
struct rel {
	struct kiln_project *p;
	const struct kiln_spec *s;
	const struct kiln_items *items;
	const struct kiln_release_opts *o;
	struct kiln_release_result *r;
	char *tmp;                    /* the new dist/ */
	char (*sha)[65];              /* per item, initial sequence */
	char (*extra)[65];            /* per item: the file beside its image (its polish SVG, or
	                                 with image.format svg its PNG), "" none (extras.c) */
	uint64_t si;                  /* starting index (0 when none) */
	int has_si;
	char *image_base;             /* "ipfs://<cid>" or the spec's base_uri, no trailing '/' */
	char hidden_uri[KILN_IPFS_CID_MAX + 16];
	json_t *entries;              /* ipfs.json entries */
	json_t *tokens;               /* provenance.json tokens */
	struct kiln_buf img;          /* the image being copied */
	struct kiln_manifest rec;     /* hashes of the files written, by path under tmp */
	size_t rec_cap;
	struct kiln_manifest files;   /* every file of the release, hashed: the manifest's list */
};

static int nomem(struct rel *x, struct kiln_error *e)
{
	return kiln_error_set(e, KILN_E_NOMEM, x->p->dir, "out of memory writing the release");
}

/* Note the SHA-256 of a file written under tmp, for the manifest. */
static int record(struct rel *x, const char *path, const char *sha, struct kiln_error *e)
{
	size_t tl = strlen(x->tmp);
	struct kiln_manifest_file *f;
	if (strncmp(path, x->tmp, tl) || path[tl] != '/')
		return 0; /* not part of the release (the thumbnail cache) */
	if (x->rec.n == x->rec_cap) {
		size_t nc = x->rec_cap ? x->rec_cap * 2 : 1024;
		f = kiln_reallocarray(x->rec.v, nc, sizeof *f);
		if (!f)
			return nomem(x, e);
		x->rec.v = f;
		x->rec_cap = nc;
	}
	f = &x->rec.v[x->rec.n];
	memset(f, 0, sizeof *f);
	if (!(f->path = kiln_strdup(path + tl + 1)))
		return nomem(x, e);
	snprintf(f->sha256, sizeof f->sha256, "%s", sha);
	f->regular = 1;
	x->rec.n++;
	return 0;
}

/* Every file of the release: no fsync here, one syncfs before the swap (see above). sha: the
 * data's SHA-256 when the caller has it, else it is computed here. */
static int put_file(struct rel *x, const char *path, const void *data, size_t len,
		    const char *sha, struct kiln_error *e)
{
	char hex[65];
	int rc = kiln_fs_write_atomic_sync(path, data, len, 0, e);
	if (rc)
		return rc;
	if (!sha)
		kiln_sha256_hex(data ? data : "", len, hex);
	return record(x, path, sha ? sha : hex, e);
}

static int write_json(struct rel *x, const char *path, json_t *j, struct kiln_buf *out,
		      struct kiln_error *e)
{
	char *text = json_dumps(j, JSON_FLAGS);
	int rc;
	if (!text)
		return kiln_error_set(e, KILN_E_NOMEM, path, "out of memory");
	kiln_buf_reset(out);
	rc = kiln_buf_adds(out, text) || kiln_buf_add(out, "\n", 1)
		     ? kiln_error_set(e, KILN_E_NOMEM, path, "out of memory")
		     : put_file(x, path, out->data, out->len, NULL, e);
	free(text);
	return rc;
}

/* pattern with {id} and {name} expanded; caller frees */
static char *expand(const struct kiln_spec *s, const char *pat, uint64_t id)
{
	struct kiln_buf b = KILN_BUF_INIT;
	int rc = 0;
	while (*pat && !rc) {
		if (!strncmp(pat, "{id}", 4)) {
			rc = kiln_buf_addf(&b, "%" PRIu64, id);
			pat += 4;
		} else if (!strncmp(pat, "{name}", 6)) {
			rc = kiln_buf_adds(&b, s->name);
			pat += 6;
		} else {
			rc = kiln_buf_add(&b, pat++, 1);
		}
	}
	if (rc) {
		kiln_buf_release(&b);
		return NULL;
	}
	return kiln_buf_detach(&b, NULL);
}

static const char *file_ext(const char *path)
{
	const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
	return dot && (!slash || dot > slash) && dot[1] ? dot + 1 : "png";
}

static const char *ext_mime(const char *ext)
{
	if (!strcasecmp(ext, "png"))
		return "image/png";
	if (!strcasecmp(ext, "jpg") || !strcasecmp(ext, "jpeg"))
		return "image/jpeg";
	if (!strcasecmp(ext, "gif"))
		return "image/gif";
	if (!strcasecmp(ext, "webp"))
		return "image/webp";
	if (!strcasecmp(ext, "svg"))
		return "image/svg+xml";
	return "application/octet-stream";
}

/* A number as written in the spec: an integer when it is one, else a real. */
static json_t *number(const char *v)
{
	char *end;
	long long i;
	errno = 0;
	i = strtoll(v, &end, 10);
	if (!*end && !errno)
		return json_integer(i);
	return json_real(strtod(v, NULL));
}

static int add_attr(json_t *attrs, const char *type, const char *value, enum kiln_display d,
		    int has_max, double max, int plain)
{
	json_t *a = json_object();
	int bad = !a;
	if (!bad && !plain && d != KILN_DISPLAY_NONE)
		bad |= json_object_set_new(a, "display_type", json_string(kiln_display_name(d)));
	bad = bad || json_object_set_new(a, "trait_type", json_string(type)) ||
	      json_object_set_new(a, "value", plain || d == KILN_DISPLAY_NONE ? json_string(value)
									     : number(value));
	if (!bad && !plain && has_max)
		bad |= json_object_set_new(a, "max_value", json_real(max)) != 0;
	if (bad || json_array_append_new(attrs, a)) {
		json_decref(bad ? a : NULL);
		return -1;
	}
	return 0;
}

/* attributes of an item: traits in layer order (none values left out) or a legendary's own,
 * then metadata.attributes. plain: Metaplex (string values, no display types). */
static json_t *attributes(const struct kiln_spec *s, const struct kiln_item *it, int plain)
{
	json_t *attrs = json_array();
	int bad = !attrs;
	if (!bad && it->legendary >= 0) {
		const struct kiln_legendary *g = &s->legendaries[it->legendary];
		for (size_t a = 0; !bad && a < g->nattrs; a++)
			bad |= add_attr(attrs, g->attrs[a].trait_type, g->attrs[a].value,
					KILN_DISPLAY_NONE, 0, 0, 1);
	} else {
		for (size_t l = 0; !bad && l < s->nlayers; l++) {
			const struct kiln_trait *tr = &s->layers[l].traits[it->traits[l]];
			const struct kiln_layer_display *d = s->layer_display ? &s->layer_display[l]
									      : NULL;
			if (tr->is_none)
				continue;
			bad |= add_attr(attrs, s->layers[l].name, tr->name,
					d ? d->type : KILN_DISPLAY_NONE, d && d->has_max,
					d ? d->max_value : 0, plain);
		}
	}
	for (size_t a = 0; !bad && a < s->nmeta_attrs; a++) {
		const struct kiln_meta_attr *m = &s->meta_attrs[a];
		bad |= add_attr(attrs, m->trait_type, m->value, m->display, m->has_max,
				m->max_value, plain);
	}
	if (bad) {
		json_decref(attrs);
		return NULL;
	}
	return attrs;
}

/* name and description of token `id` showing item `it` */
static int token_text(const struct kiln_spec *s, const struct kiln_item *it, uint64_t id,
		      char **name, const char **desc)
{
	*desc = s->meta_description;
	if (it->legendary >= 0) {
		const struct kiln_legendary *g = &s->legendaries[it->legendary];
		if (g->description)
			*desc = g->description;
		*name = kiln_strdup(g->name); /* a legendary is named after itself */
	} else {
		*name = kiln_token_name(s, id);
	}
	return *name ? 0 : -1;
}

/* OpenSea token JSON (ERC-721 and ERC-1155) for token `id` showing item `it`. */
static json_t *token_json(struct rel *x, const struct kiln_item *it, uint64_t id)
{
	const struct kiln_spec *s = x->s;
	json_t *o = json_object(), *attrs = attributes(s, it, 0);
	const char *desc;
	char *name = NULL, uri[4096];
	int bad = !o || !attrs || token_text(s, it, id, &name, &desc);
	snprintf(uri, sizeof uri, "%s/%" PRIu64 ".%s", x->image_base, it->id,
		 kiln_release_image_ext(s));
	bad = bad || json_object_set_new(o, "name", json_string(name)) ||
	      json_object_set_new(o, "description", json_string(desc)) ||
	      json_object_set_new(o, "image", json_string(uri)) ||
	      (s->external_url && json_object_set_new(o, "external_url",
						       json_string(s->external_url))) ||
	      json_object_set(o, "attributes", attrs);
	if (!bad && x->extra[it - x->items->v][0]) {
		/* the file beside the image (the polish SVG; with image.format svg, the PNG it
		 * was made from): properties.files as Metaplex lists files */
		char more[4096];
		snprintf(more, sizeof more, "%s/%" PRIu64 ".%s", x->image_base, it->id,
			 kiln_release_extra_ext(s));
		bad = json_object_set_new(o, "properties", json_pack("{s:[{s:s, s:s}, {s:s, s:s}]}",
			"files", "uri", uri, "type", kiln_release_image_mime(s), "uri", more,
			"type", kiln_release_extra_mime(s))) != 0;
	}
	free(name);
	json_decref(attrs);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Sugar's asset JSON for asset index i (image "i.<ext>"). */
static json_t *metaplex_json(struct rel *x, const struct kiln_item *it, uint64_t id,
			     uint64_t i)
{
	const struct kiln_spec *s = x->s;
	json_t *o = json_object(), *attrs = attributes(s, it, 1), *files = NULL, *props = NULL;
	const char *desc, *ext = kiln_format_ext(s->format);
	char *name = NULL, file[64];
	int bad = !o || !attrs || token_text(s, it, id, &name, &desc);
	snprintf(file, sizeof file, "%" PRIu64 ".%s", i, ext);
	bad = bad || !(files = json_pack("[{s:s, s:s}]", "uri", file, "type",
					 kiln_format_mime(s->format)));
	if (!bad && x->extra[it - x->items->v][0]) {
		/* the polish SVG, by its URI in the images folder: Sugar uploads only N.png
		 * (and an animation) from assets/, and properties.files may list any URI. With
		 * image.format svg too: Metaplex's image is a PNG, GIF or JPEG, so the asset is
		 * the PNG the SVG was made from (write_metaplex) and the SVG is listed here */
		char svg[4096];
		snprintf(svg, sizeof svg, "%s/%" PRIu64 ".svg", x->image_base, it->id);
		bad = json_array_append_new(files, json_pack("{s:s, s:s}", "uri", svg, "type",
							     "image/svg+xml")) != 0;
	}
	bad = bad ||
	      !(props = json_pack("{s:O, s:s}", "files", files, "category", "image"));
	if (!bad && s->ncreators) {
		json_t *cr = json_array();
		bad = !cr || json_object_set_new(props, "creators", cr);
		for (size_t c = 0; !bad && c < s->ncreators; c++)
			bad |= json_array_append_new(cr, json_pack("{s:s, s:i}", "address",
				s->creators[c].address, "share", (int)s->creators[c].share)) != 0;
	}
	bad = bad || json_object_set_new(o, "name", json_string(name)) ||
	      json_object_set_new(o, "symbol", json_string(s->symbol)) ||
	      json_object_set_new(o, "description", json_string(desc)) ||
	      json_object_set_new(o, "seller_fee_basis_points",
				  json_integer((json_int_t)s->seller_fee_bps)) ||
	      json_object_set_new(o, "image", json_string(file)) ||
	      (s->external_url && json_object_set_new(o, "external_url",
						       json_string(s->external_url))) ||
	      json_object_set(o, "attributes", attrs) || json_object_set(o, "properties", props);
	free(name);
	json_decref(attrs);
	json_decref(files);
	json_decref(props);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Hash of everything dist/ depends on: spec, items, options, files the spec names. */
static int release_sha(struct rel *x, char out[65], struct kiln_error *e)
{
	const struct kiln_spec *s = x->s;
	const char *files[] = {s->reveal_image, s->mpl_collection_image, s->contract.image,
			       s->contract.banner_image, s->contract.featured_image};
	struct kiln_sha256 h;
	char line[256];
	int n;
	if (kiln_sha256_init(&h))
		return kiln_error_set(e, KILN_E_NOMEM, x->p->dir, "cannot start SHA-256");
	n = snprintf(line, sizeof line, "release/3\n%s\ncar %d\nsi %d %" PRIu64 "\n", x->p->spec_sha,
		     x->o->car, x->has_si, x->si);
	kiln_sha256_update(&h, line, (size_t)n);
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		char hex[65] = "-", *path;
		struct kiln_error fe;
		if (files[i] && !strstr(files[i], "://")) {
			if (!(path = kiln_fs_join(x->p->dir, files[i]))) {
				kiln_sha256_abort(&h);
				return nomem(x, e);
			}
			if (kiln_sha256_file(path, hex, &fe))
				snprintf(hex, sizeof hex, "missing");
			free(path);
		}
		kiln_sha256_update(&h, hex, strlen(hex));
	}
	if (s->portfolio) {
		char ps[65];
		int rc = kiln_portfolio_state(x->p->catalog, x->o->keys_dir, ps, e);
		if (rc) {
			kiln_sha256_abort(&h);
			return rc;
		}
		n = snprintf(line, sizeof line, "portfolio %d %s\n", s->portfolio_prompts_hashed, ps);
		kiln_sha256_update(&h, line, (size_t)n);
	}
	for (size_t i = 0; i < x->items->n; i++) {
		const struct kiln_item *it = &x->items->v[i];
		n = snprintf(line, sizeof line, "\n%" PRIu64 " %s ", it->id, it->image);
		kiln_sha256_update(&h, line, (size_t)n);
		kiln_sha256_update(&h, it->traits_json, strlen(it->traits_json));
		/* a polished token's chain goes to polish/<id>.json */
		{
			char *chain = NULL;
			int rc = kiln_catalog_polish_json(x->p->catalog, it->id, &chain, e);
			if (rc) {
				kiln_sha256_abort(&h);
				return rc;
			}
			if (chain)
				kiln_sha256_update(&h, chain, strlen(chain));
			free(chain);
		}
	}
	kiln_sha256_final(&h, NULL, out);
	return 0;
}

/* Every item must hold a current render. */
/* Tokens with an error-level finding in the last `kiln qa` run are not released. */
static int check_qa(struct kiln_project *p, struct kiln_error *e)
{
	uint64_t *ids = NULL;
	size_t n = 0;
	int ran = 0, rc = kiln_catalog_qa_failed(p->catalog, &ids, &n, &ran, e);
	if (!rc && n) {
		char list[256] = "";
		size_t len = 0;
		for (size_t i = 0; i < n && i < 8 && len < sizeof list - 32; i++)
			len += (size_t)snprintf(list + len, sizeof list - len, "%s%" PRIu64,
						i ? ", " : "", ids[i]);
		kiln_error_set(e, KILN_E_FAILED, p->dir, "%zu tokens failed QA (%s%s)", n, list,
			       n > 8 ? ", ..." : "");
		rc = kiln_error_hint(e, KILN_HINT_QA_FAILED, NULL);
	}
	free(ids);
	return rc;
}

/* An item's render is current when its recipe is what the recipe module computes now (what
 * render compares): for AI engines, one of its candidates' (a request that cannot be built,
 * say the plan lacks a layer, is not current); a legendary's, its file's. Out of memory is an
 * error, never "not current". */
static int item_current(struct kiln_recipe *r, const struct kiln_spec *s,
			const struct kiln_item *it, int *current, struct kiln_error *e)
{
	unsigned n = strcmp(s->engine, "compose") && it->legendary < 0 ? s->generate->candidates
								       : 1;
	int rc = 0;
	*current = 0;
	/* review: a token regenerated n times has candidates from every round, any of them may be
	 * the one picked (each round: its seeds, the notes added to the prompt by then; a "same
	 * seed" round kept the seeds, so round g's are any seed round up to g's) */
	for (unsigned g = 0; !*current && g <= it->regeneration; g++)
	for (unsigned sr = 0; !*current && sr <= g && sr <= it->seed_round; sr++) {
		struct kiln_item one = *it;
		one.regeneration = g;
		one.seed_round = sr;
		if (kiln_catalog_prompt_add(it->prompt_adds, g, &one.prompt_add))
			return kiln_error_set(e, KILN_E_NOMEM, s->path, "out of memory");
		for (unsigned c = 0; !*current && c < n; c++) {
			char hex[65];
			struct kiln_error re;
			kiln_error_clear(&re);
			rc = kiln_recipe_item(r, &one, c, hex, &re);
			if (rc == KILN_E_NOMEM) {
				free(one.prompt_add);
				*e = re;
				return rc;
			}
			*current = !rc && !strcmp(hex, it->recipe);
		}
		free(one.prompt_add);
	}
	return 0;
}

static int check_items(struct kiln_project *p, const struct kiln_items *items,
		       struct kiln_error *e)
{
	struct kiln_recipe *r = NULL;
	uint64_t missing = 0, first = 0;
	int rc;
	if (items->n != p->spec->size) {
		kiln_error_set(e, KILN_E_STATE, p->spec_path, "the catalog holds %zu items but the "
			       "spec asks for %llu", items->n, (unsigned long long)p->spec->size);
		return kiln_error_hint(e, KILN_HINT_PLAN, NULL);
	}
	if (strcmp(p->spec->engine, "compose") && !p->spec->generate)
		return kiln_error_set(e, KILN_E_SPEC, p->spec_path, "engine '%s' needs a generate: "
				      "block", p->spec->engine);
	if ((rc = kiln_recipe_new(&r, p->spec, 0, e)))
		goto out;
	for (size_t i = 0; i < items->n; i++) {
		const struct kiln_item *it = &items->v[i];
		int current = 0, has = it->status == KILN_ITEM_RENDERED ?
					   kiln_store_has(p->store, it->image) : 0;
		if (has < 0) {
			rc = kiln_error_set(e, KILN_E_NOMEM, p->dir, "out of memory");
			goto out;
		}
		if (has && (rc = item_current(r, p->spec, it, &current, e)))
			goto out;
		if (!current && !missing++)
			first = it->id;
	}
out:
	kiln_recipe_free(r);
	if (rc)
		return rc;
	if (missing) {
		char id[32];
		snprintf(id, sizeof id, "%llu", (unsigned long long)first);
		kiln_error_set(e, KILN_E_STATE, p->dir, "%llu of %zu items have no current render "
			       "(first: item %llu)", (unsigned long long)missing, items->n,
			       (unsigned long long)first);
		return kiln_error_hint(e, KILN_HINT_RENDER, id);
	}
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

/* ipfs.json entry: a folder or file and its CID, or a CAR and its SHA-256 */
static int entry(struct rel *x, const char *name, const char *path, const char *cid,
		 const char *sha)
{
	json_t *o = json_pack("{s:s, s:s}", "name", name, "path", path);
	if (!o || (cid && json_object_set_new(o, "cid", json_string(cid))) ||
	    (sha && json_object_set_new(o, "sha256", json_string(sha))) ||
	    json_array_append_new(x->entries, o)) {
		json_decref(o);
		return -1;
	}
	return 0;
}

/* Open dist/car/<name>.car when --car. */
static int car_open(struct rel *x, const char *name, struct kiln_ipfs_car **car,
		    struct kiln_error *e)
{
	char rel[128], *path;
	int rc;
	*car = NULL;
	if (!x->o->car)
		return 0;
	snprintf(rel, sizeof rel, "car/%s.car", name);
	if (!(path = kiln_fs_join(x->tmp, rel)))
		return nomem(x, e);
	*strrchr(path, '/') = 0;
	rc = kiln_fs_mkdirs(path, e);
	path[strlen(path)] = '/';
	if (!rc && !(rc = kiln_ipfs_car_open(car, path, e)))
		kiln_ipfs_car_set_sync(*car, 0); /* the release's one syncfs covers it */
	free(path);
	return rc;
}

/* Finish the CAR of entry `name` (when one is open) with root cid: its hash in ipfs.json. */
static int car_done(struct rel *x, struct kiln_ipfs_car **car, const char *name,
		    const char *cid, struct kiln_error *e)
{
	char rel[128], *full, hex[65];
	int rc;
	if (!*car)
		return 0;
	snprintf(rel, sizeof rel, "car/%s.car", name);
	rc = kiln_ipfs_car_finish(*car, cid, e);
	kiln_ipfs_car_free(*car);
	*car = NULL;
	if (rc)
		return rc;
	if (!(full = kiln_fs_join(x->tmp, rel)))
		return nomem(x, e);
	rc = kiln_sha256_file(full, hex, e);
	if (!rc)
		rc = record(x, full, hex, e);
	free(full);
	if (rc)
		return rc;
	return entry(x, rel, rel, NULL, hex) ? nomem(x, e) : 0;
}

/* Finish a folder: its CID, the CAR (when one is open) and their ipfs.json entries. */
static int dir_done(struct rel *x, struct kiln_ipfs_dir **d, struct kiln_ipfs_car **car,
		    const char *name, const char *path, char cid[KILN_IPFS_CID_MAX],
		    struct kiln_error *e)
{
	int rc = kiln_ipfs_dir_finish(*d, cid, NULL, e);
	kiln_ipfs_dir_free(*d);
	*d = NULL;
	if (rc)
		return rc;
	if (entry(x, name, path, cid, NULL))
		return nomem(x, e);
	return car_done(x, car, name, cid, e);
}

/* A file of the release that an ipfs:// URI names (the hidden image, contract.json): its
 * CAR with --car, so that everything the release points at can be pinned. */
static int file_car(struct rel *x, const char *name, const char *rel, struct kiln_error *e)
{
	struct kiln_ipfs_car *car = NULL;
	char cid[KILN_IPFS_CID_MAX], *full = NULL;
	int rc;
	if (!x->o->car)
		return 0;
	if (!(full = kiln_fs_join(x->tmp, rel)))
		return nomem(x, e);
	if (!(rc = car_open(x, name, &car, e)) &&
	    !(rc = kiln_ipfs_import_path(full, car, cid, NULL, e)))
		rc = car_done(x, &car, name, cid, e);
	kiln_ipfs_car_free(car);
	free(full);
	return rc;
}

/* Item indexes in the bytewise order of their decimal ids ("10" before "2"): files are added
 * to a folder in the order `ipfs add -r` and the npm importer read them, so the CAR's blocks
 * come in the same order and the CAR is byte-identical to theirs. Caller frees. */
struct named {
	char name[24];
	size_t i;
};

static int cmp_named(const void *a, const void *b)
{
	return strcmp(((const struct named *)a)->name, ((const struct named *)b)->name);
}

static size_t *name_order(const struct kiln_items *items)
{
	struct named *v = kiln_calloc(items->n + 1, sizeof *v);
	size_t *out = kiln_calloc(items->n + 1, sizeof *out);
	if (v && out) {
		for (size_t i = 0; i < items->n; i++) {
			snprintf(v[i].name, sizeof v[i].name, "%" PRIu64, items->v[i].id);
			v[i].i = i;
		}
		qsort(v, items->n, sizeof *v, cmp_named);
		for (size_t i = 0; i < items->n; i++)
			out[i] = v[i].i;
	} else {
		free(out);
		out = NULL;
	}
	free(v);
	return out;
}

/* images/<id>.<ext>: the file beside the token's image (extras.c), checked against its hash. */
static int write_extra(struct rel *x, struct kiln_ipfs_dir *d, const char *dir,
		     const struct kiln_item *it, const char *sha, struct kiln_error *e)
{
	char name[64], hex[65], *src = kiln_store_path(x->p->store, sha), *dst;
	int rc;
	if (!src)
		return nomem(x, e);
	kiln_buf_reset(&x->img);
	rc = kiln_fs_read(src, &x->img, e);
	free(src);
	if (rc)
		return rc;
	kiln_sha256_hex(x->img.data, x->img.len, hex);
	if (strcmp(hex, sha)) {
		char where[48];
		snprintf(where, sizeof where, "item %" PRIu64, it->id);
		return kiln_error_set(e, KILN_E_IO, where, "the store file %.12s... (the token's "
				      "%s) no longer has the bytes it was stored with (its SHA-256 "
				      "is %.12s...): make the polish steps again", sha,
				      x->s->image_svg ? "PNG" : "SVG", hex);
	}
	snprintf(name, sizeof name, "%" PRIu64 ".%s", it->id, kiln_release_extra_ext(x->s));
	if (!(dst = kiln_fs_join(dir, name)))
		return nomem(x, e);
	rc = put_file(x, dst, x->img.data, x->img.len, sha, e);
	free(dst);
	if (!rc)
		rc = kiln_ipfs_dir_add_buf(d, name, x->img.data, x->img.len, NULL, e);
	if (!rc)
		x->r->bytes += x->img.len;
	return rc;
}

/* images/: each store file read once, checked against its hash, written and imported. */
static int write_images(struct rel *x, struct kiln_error *e)
{
	const struct kiln_items *items = x->items;
	struct kiln_ipfs_car *car = NULL;
	struct kiln_ipfs_dir *d = NULL;
	char *dir = kiln_fs_join(x->tmp, "images");
	size_t *order = name_order(items);
	struct kiln_c2pa_release *c2pa = NULL; /* portfolio PNGs: signed before hashed */
	int rc;
	if (!dir || !order) {
		rc = nomem(x, e);
		goto out;
	}
	if (x->s->portfolio && x->s->format == KILN_FORMAT_PNG && !x->s->image_svg) {
		char *cache = kiln_fs_join(x->p->dir, ".kiln/c2pa");
		rc = cache ? kiln_portfolio_c2pa_release_new(&c2pa, x->p->catalog, x->o->keys_dir,
							     cache, x->s->portfolio_prompts_hashed,
							     e)
			   : nomem(x, e);
		free(cache);
		if (rc)
			goto out;
	}
	if ((rc = kiln_fs_mkdirs(dir, e)) || (rc = car_open(x, "images", &car, e)) ||
	    (rc = kiln_ipfs_dir_new(&d, car, e)))
		goto out;
	for (size_t k = 0; k < items->n; k++) {
		size_t i = order[k];
		const struct kiln_item *it = &items->v[i];
		char name[64], *src = kiln_store_path(x->p->store, it->image), *dst;
		if (!src) {
			rc = nomem(x, e);
			goto out;
		}
		kiln_buf_reset(&x->img);
		rc = kiln_fs_read(src, &x->img, e);
		free(src);
		if (rc)
			goto out;
		kiln_sha256_hex(x->img.data, x->img.len, x->sha[i]);
		if (strcmp(x->sha[i], it->image)) {
			char id[32], where[48];
			snprintf(id, sizeof id, "%" PRIu64, it->id);
			snprintf(where, sizeof where, "item %" PRIu64, it->id);
			kiln_error_set(e, KILN_E_IO, where, "the store file %.12s... no longer has "
				       "the bytes it was stored with (its SHA-256 is %.12s...)",
				       it->image, x->sha[i]);
			rc = kiln_error_hint(e, KILN_HINT_RENDER_FORCE, id);
			goto out;
		}
		if (c2pa) {
			char title[160];
			snprintf(title, sizeof title, "%.120s #%" PRIu64,
				 x->s->name ? x->s->name : "token", it->id);
			if ((rc = kiln_portfolio_c2pa_release_sign(c2pa, it->id, it->image, title,
								   &x->img, e)))
				goto out;
			kiln_sha256_hex(x->img.data, x->img.len, x->sha[i]);
		}
		snprintf(name, sizeof name, "%" PRIu64 ".%s", it->id, kiln_release_image_ext(x->s));
		if (!(dst = kiln_fs_join(dir, name))) {
			rc = nomem(x, e);
			goto out;
		}
		rc = put_file(x, dst, x->img.data, x->img.len, x->sha[i], e);
		free(dst);
		if (rc || (rc = kiln_ipfs_dir_add_buf(d, name, x->img.data, x->img.len, NULL, e)))
			goto out;
		x->r->bytes += x->img.len;
		if (x->extra[i][0] && (rc = write_extra(x, d, dir, it, x->extra[i], e)))
			goto out;
		report(x->o, "item", items->n, k + 1);
	}
	rc = dir_done(x, &d, &car, "images", "images", x->r->images_cid, e);
out:
	kiln_portfolio_c2pa_release_free(c2pa);
	kiln_ipfs_dir_free(d);
	kiln_ipfs_car_free(car);
	free(order);
	free(dir);
	return rc;
}

/* thumbnails/: image.thumbnail's small copies, named as images/ (not in the metadata, not
 * hashed: for the studio's site and reviews). Each is made once with libvips from the store
 * file and kept in .kiln/thumbs/<image SHA-256>-<size>.<ext>, so a release after a change
 * makes only the thumbnails of changed images. */
static int write_thumbnails(struct rel *x, struct kiln_error *e)
{
	const struct kiln_spec *s = x->s;
	const char *ext = kiln_format_ext(s->thumb_format);
	const char *fmt = s->thumb_format == KILN_FORMAT_PNG ? "png" :
			  s->thumb_format == KILN_FORMAT_WEBP ? "webp" : "jpeg";
	char *dir = kiln_fs_join(x->tmp, "thumbnails"), *cache = kiln_fs_join(x->p->dir,
									     ".kiln/thumbs");
	struct kiln_buf b = KILN_BUF_INIT;
	int rc = 0;
	if (!dir || !cache) {
		rc = nomem(x, e);
		goto out;
	}
	if ((rc = kiln_fs_mkdirs(dir, e)) || (rc = kiln_fs_mkdirs(cache, e)))
		goto out;
	for (size_t i = 0; i < x->items->n && !rc; i++) {
		const struct kiln_item *it = &x->items->v[i];
		char name[96], *cached, *dst = NULL, *src = NULL;
		snprintf(name, sizeof name, "%s-%d.%s", it->image, s->thumb_size, ext);
		if (!(cached = kiln_fs_join(cache, name))) {
			rc = nomem(x, e);
			break;
		}
		kiln_buf_reset(&b);
		/* the cache is made durable by the release's syncfs; one a crash emptied is
		 * made again */
		if (kiln_fs_exists(cached))
			rc = kiln_fs_read(cached, &b, e);
		if (!rc && !b.len) {
			if (!(src = kiln_store_path(x->p->store, it->image)))
				rc = nomem(x, e);
			else if (!(rc = kiln_image_thumbnail(src, s->thumb_size, fmt, s->quality,
							     &b, e)))
				rc = put_file(x, cached, b.data, b.len, NULL, e);
		}
		snprintf(name, sizeof name, "%" PRIu64 ".%s", it->id, ext);
		if (!rc && !(dst = kiln_fs_join(dir, name)))
			rc = nomem(x, e);
		if (!rc)
			rc = put_file(x, dst, b.data, b.len, NULL, e);
		free(cached);
		free(src);
		free(dst);
	}
out:
	kiln_buf_release(&b);
	free(dir);
	free(cache);
	return rc;
}

/* polish/<id>.json: each polished token's chain (lib/polish), render to final image, each
 * step with its input and output SHA-256, for `kiln verify` (tokens without one: none). */
static int write_polish(struct rel *x, struct kiln_error *e)
{
	struct kiln_buf b = KILN_BUF_INIT;
	char *dir = kiln_fs_join(x->tmp, "polish");
	int rc = dir ? 0 : nomem(x, e), made = 0;
	for (size_t i = 0; i < x->items->n && !rc; i++) {
		const struct kiln_item *it = &x->items->v[i];
		char *chain = NULL, *path = NULL, name[48];
		json_t *steps, *j = NULL, *last = NULL, *s;
		size_t k;
		if ((rc = kiln_catalog_polish_json(x->p->catalog, it->id, &chain, e)) || !chain)
			break;
		steps = json_loads(chain, 0, NULL);
		json_array_foreach(steps, k, s)
			if (json_is_true(json_object_get(s, "image")))
				last = s;
		/* portfolio.prompts: hashed: an inpaint's prompt texts as their commitments, the
		 * portfolio log's form (the texts stay in the catalog) */
		if (steps && x->s->portfolio_prompts_hashed)
			json_array_foreach(steps, k, s) {
				json_t *set = json_object_get(s, "settings");
				static const char *const keys[] = {"prompt", "negative"};
				for (size_t q = 0; q < 2; q++) {
					const char *t = json_string_value(json_object_get(set,
											  keys[q]));
					char h[72];
					if (!t)
						continue;
					kiln_prompt_hash(t, h);
					if (json_object_set_new(set, keys[q], json_string(h)))
						rc = nomem(x, e);
				}
			}
		/* a chain made on an earlier render is not the token's: its image is the render */
		if (steps && last && !strcmp(json_string_value(json_object_get(last, "output")),
					     it->image)) {
			j = json_pack("{s:I, s:s, s:O, s:O}", "id", (json_int_t)it->id, "image",
				      it->image, "render", json_object_get(json_array_get(steps, 0),
									   "input"), "steps", steps);
			snprintf(name, sizeof name, "%" PRIu64 ".json", it->id);
			if (!j || !(path = kiln_fs_join(dir, name)))
				rc = nomem(x, e);
			else if (!made++ && (rc = kiln_fs_mkdirs(dir, e)))
				;
			else
				rc = write_json(x, path, j, &b, e);
		} else if (!steps) {
			rc = nomem(x, e);
		}
		json_decref(j);
		json_decref(steps);
		free(path);
		free(chain);
	}
	kiln_buf_release(&b);
	free(dir);
	return rc;
}

/* A folder of token JSON: for each token position t, the JSON of initial item
 * (t + si) mod N, named by `naming`. erc721 also gathers _metadata.json. */
enum set_kind { SET_ERC721, SET_ERC1155, SET_PREREVEAL };

static int write_set(struct rel *x, enum set_kind kind, struct kiln_error *e)
{
	static const char *const rel[] = {"metadata", "erc1155/metadata", "prereveal/metadata"};
	static const char *const names[] = {"metadata", "erc1155-metadata", "prereveal-metadata"};
	static const char *const prov_key[] = {"metadata", "erc1155_metadata", "prereveal"};
	char *cids[] = {x->r->metadata_cid, x->r->erc1155_cid, x->r->prereveal_cid};
	const struct kiln_items *items = x->items;
	const struct kiln_spec *s = x->s;
	struct kiln_ipfs_car *car = NULL;
	struct kiln_ipfs_dir *d = NULL;
	struct kiln_buf text = KILN_BUF_INIT;
	json_t *all = kind == SET_ERC721 ? json_array() : NULL, *j = NULL;
	char *dir = kiln_fs_join(x->tmp, rel[kind]);
	/* ERC-1155 names are zero-padded hex: id order is already bytewise order */
	size_t *order = kind == SET_ERC1155 ? NULL : name_order(items);
	int rc;
	if (!dir || (kind == SET_ERC721 && !all) || (kind != SET_ERC1155 && !order)) {
		rc = nomem(x, e);
		goto out;
	}
	if ((rc = kiln_fs_mkdirs(dir, e)) || (rc = car_open(x, names[kind], &car, e)) ||
	    (rc = kiln_ipfs_dir_new(&d, car, e)))
		goto out;
	if (all) /* _metadata.json is in token id order: fill it as the loop goes */
		for (size_t t = 0; t < items->n; t++)
			if (json_array_append_new(all, json_null())) {
				rc = nomem(x, e);
				goto out;
			}
	for (size_t k = 0; k < items->n; k++) {
		size_t t = order ? order[k] : k;
		const struct kiln_item *tok = &items->v[t];
		const struct kiln_item *it = &items->v[kiln_reveal_item(t, x->si, items->n)];
		char name[96], stem[65], *path, *nm;
		if (kind == SET_PREREVEAL) {
			nm = expand(s, s->reveal_name ? s->reveal_name : s->name_pattern, tok->id);
			j = nm ? json_pack("{s:s, s:s, s:s}", "name", nm, "description",
					   s->reveal_description ? s->reveal_description
								 : s->meta_description,
					   "image", x->hidden_uri) : NULL;
			free(nm);
		} else {
			j = token_json(x, it, tok->id);
		}
		if (!j) {
			rc = nomem(x, e);
			goto out;
		}
		if (kind == SET_ERC1155) {
			kiln_erc1155_name(tok->id, stem);
			snprintf(name, sizeof name, "%s.json", stem);
		} else {
			snprintf(name, sizeof name, "%" PRIu64 ".json", tok->id);
		}
		if (!(path = kiln_fs_join(dir, name))) {
			rc = nomem(x, e);
			goto out;
		}
		rc = write_json(x, path, j, &text, e);
		free(path);
		if (rc || (rc = kiln_ipfs_dir_add_buf(d, name, text.data, text.len, NULL, e)))
			goto out;
		if (all) {
			if (json_array_set_new(all, t, j)) {
				j = NULL;
				rc = nomem(x, e);
				goto out;
			}
		} else {
			json_decref(j);
		}
		j = NULL;
		if (kind != SET_PREREVEAL) {
			char relname[160];
			snprintf(relname, sizeof relname, "%s/%s", rel[kind], name);
			if (json_object_set_new(json_array_get(x->tokens, t), prov_key[kind],
						json_string(relname))) {
				rc = nomem(x, e);
				goto out;
			}
		}
	}
	if ((rc = dir_done(x, &d, &car, names[kind], rel[kind], cids[kind], e)))
		goto out;
	if (all) {
		char *path = kiln_fs_join(x->tmp, "_metadata.json");
		rc = path ? write_json(x, path, all, &text, e) : nomem(x, e);
		free(path);
	}
out:
	json_decref(j);
	json_decref(all);
	kiln_buf_release(&text);
	kiln_ipfs_dir_free(d);
	kiln_ipfs_car_free(car);
	free(order);
	free(dir);
	return rc;
}

/* Copy a project file to dist (rel), giving its file CID when cid is not NULL. */
static int copy_in(struct rel *x, const char *file, const char *rel, char *cid,
		   struct kiln_error *e)
{
	char *src = kiln_fs_join(x->p->dir, file), *dst = kiln_fs_join(x->tmp, rel);
	/* every file copied in is an image the spec names: checked as one before it is released */
	int rc = !src || !dst ? nomem(x, e) : kiln_image_check_input(src, file, x->s->qa.max_pixels, e);
	if (!rc)
		rc = kiln_fs_copy(src, dst, 0, e);
	if (!rc && cid)
		rc = kiln_ipfs_file_cid(dst, cid, e);
	free(src);
	free(dst);
	return rc;
}

/* prereveal/hidden.<ext> and its CID, then prereveal/metadata/ */
static int write_prereveal(struct rel *x, struct kiln_error *e)
{
	char rel[64], cid[KILN_IPFS_CID_MAX], *dir = kiln_fs_join(x->tmp, "prereveal");
	int rc;
	if (!dir)
		return nomem(x, e);
	rc = kiln_fs_mkdirs(dir, e);
	free(dir);
	if (rc)
		return rc;
	snprintf(rel, sizeof rel, "prereveal/hidden.%s", file_ext(x->s->reveal_image));
	if ((rc = copy_in(x, x->s->reveal_image, rel, cid, e)))
		return rc;
	snprintf(x->hidden_uri, sizeof x->hidden_uri, "ipfs://%s", cid);
	if (entry(x, "hidden_image", rel, cid, NULL))
		return nomem(x, e);
	if ((rc = file_car(x, "hidden_image", rel, e)))
		return rc;
	return write_set(x, SET_PREREVEAL, e);
}

/* contract.json (and contract/ for images given as project files) */
static int write_contract(struct rel *x, struct kiln_error *e)
{
	const struct kiln_spec *s = x->s;
	const struct kiln_contract_meta *m = &s->contract;
	const char *keys[] = {"image", "banner_image", "featured_image"};
	const char *vals[] = {m->image, m->banner_image, m->featured_image};
	struct kiln_ipfs_car *car = NULL;
	struct kiln_ipfs_dir *d = NULL;
	struct kiln_buf text = KILN_BUF_INIT;
	json_t *o = json_object();
	char dcid[KILN_IPFS_CID_MAX], cid[KILN_IPFS_CID_MAX], *path = NULL;
	int rc = 0, files = 0;
	const char *link = m->external_link ? m->external_link : s->external_url;
	if (!o || json_object_set_new(o, "name", json_string(m->name ? m->name : s->name)) ||
	    json_object_set_new(o, "description",
				json_string(m->description ? m->description : s->description)))
		goto nomem;
	for (int i = 0; i < 3; i++)
		files += vals[i] && !strstr(vals[i], "://");
	if (files) {
		char *dir = kiln_fs_join(x->tmp, "contract");
		rc = dir ? kiln_fs_mkdirs(dir, e) : nomem(x, e);
		free(dir);
		if (rc || (rc = car_open(x, "contract_images", &car, e)) ||
		    (rc = kiln_ipfs_dir_new(&d, car, e)))
			goto out;
		/* in bytewise name order (banner_image, featured_image, image), as the importer
		 * adds them, so the CAR is byte-identical to its */
		for (int k = 0; k < 3; k++) {
			int i = (k + 1) % 3;
			char rel[96], *full;
			if (!vals[i] || strstr(vals[i], "://"))
				continue;
			snprintf(rel, sizeof rel, "contract/%s.%s", keys[i], file_ext(vals[i]));
			if ((rc = copy_in(x, vals[i], rel, NULL, e)))
				goto out;
			if (!(full = kiln_fs_join(x->tmp, rel)))
				goto nomem;
			rc = kiln_ipfs_dir_add_file(d, rel + 9, full, NULL, e);
			free(full);
			if (rc)
				goto out;
		}
		if ((rc = dir_done(x, &d, &car, "contract_images", "contract", dcid, e)))
			goto out;
	}
	for (int i = 0; i < 3; i++) {
		char uri[512];
		if (!vals[i])
			continue;
		if (strstr(vals[i], "://"))
			snprintf(uri, sizeof uri, "%s", vals[i]);
		else
			snprintf(uri, sizeof uri, "ipfs://%s/%s.%s", dcid, keys[i], file_ext(vals[i]));
		if (json_object_set_new(o, keys[i], json_string(uri)))
			goto nomem;
	}
	if (link && json_object_set_new(o, "external_link", json_string(link)))
		goto nomem;
	if (m->ncollaborators) {
		json_t *c = json_array();
		if (!c || json_object_set_new(o, "collaborators", c))
			goto nomem;
		for (size_t i = 0; i < m->ncollaborators; i++)
			if (json_array_append_new(c, json_string(m->collaborators[i])))
				goto nomem;
	}
	if (!(path = kiln_fs_join(x->tmp, "contract.json")))
		goto nomem;
	if ((rc = write_json(x, path, o, &text, e)) ||
	    (rc = kiln_ipfs_buf_cid(text.data, text.len, cid, e)))
		goto out;
	snprintf(x->r->contract_cid, sizeof x->r->contract_cid, "%s", cid);
	if (entry(x, "contract", "contract.json", cid, NULL))
		goto nomem;
	rc = file_car(x, "contract", "contract.json", e);
	goto out;
nomem:
	rc = nomem(x, e);
out:
	kiln_ipfs_dir_free(d);
	kiln_ipfs_car_free(car);
	kiln_buf_release(&text);
	json_decref(o);
	free(path);
	return rc;
}

/* Sugar's hiddenSettings from metadata.reveal: the name pattern with {id} as Sugar's mint
 * number ($ID$ counts from 0, $ID+1$ from 1: Sugar has no other start), the first token's
 * pre-reveal JSON as the placeholder every mint points at until `sugar reveal`, and as the
 * 32-character hash the provenance hash's first half (`sugar deploy` replaces it with its
 * cache file's hash). */
static int hidden_settings(struct rel *x, json_t **out, struct kiln_error *e)
{
	const struct kiln_spec *s = x->s;
	const char *pat = s->reveal_name ? s->reveal_name : s->name_pattern;
	struct kiln_buf name = KILN_BUF_INIT;
	char prov[65], uri[256];
	int bad = 0, rc;
	if ((rc = kiln_provenance_hash((const char(*)[65])x->sha, x->items->n, prov, e)))
		return rc;
	while (*pat && !bad) {
		if (!strncmp(pat, "{id}", 4)) {
			bad = kiln_buf_adds(&name, s->start_id ? "$ID+1$" : "$ID$");
			pat += 4;
		} else if (!strncmp(pat, "{name}", 6)) {
			bad = kiln_buf_adds(&name, s->name);
			pat += 6;
		} else {
			bad = kiln_buf_add(&name, pat++, 1);
		}
	}
	snprintf(uri, sizeof uri, "ipfs://%s/%" PRIu64 ".json", x->r->prereveal_cid,
		 x->items->v[0].id);
	prov[32] = 0;
	if (bad || !(*out = json_pack("{s:s, s:s, s:s}", "name", name.data ? name.data : "",
				      "uri", uri, "hash", prov)))
		rc = nomem(x, e);
	kiln_buf_release(&name);
	return rc;
}

/* metaplex/config.json, beside assets/: Sugar's config (sugar src/config/data.rs, ConfigData
 * in camelCase) with what the spec knows, so `sugar launch` runs in dist/metaplex/. Price and
 * guards are the mint's business: guards null (add them before `sugar deploy`). */
static int write_sugar_config(struct rel *x, struct kiln_buf *text, struct kiln_error *e)
{
	const struct kiln_spec *s = x->s;
	json_t *cr = json_array(), *hs = NULL, *o = NULL;
	char *path = NULL;
	int rc;
	for (size_t c = 0; cr && c < s->ncreators; c++)
		if (json_array_append_new(cr, json_pack("{s:s, s:i}", "address",
							s->creators[c].address, "share",
							(int)s->creators[c].share)))
			goto nomem;
	if (s->reveal_image && (rc = hidden_settings(x, &hs, e)))
		goto out;
	o = json_pack("{s:s, s:I, s:s, s:i, s:b, s:b, s:O, s:s, s:n, s:n, s:n, s:n, s:O, s:n, s:n}",
		      "tokenStandard", "nft", "number", (json_int_t)x->items->n, "symbol",
		      s->symbol, "sellerFeeBasisPoints", (int)s->seller_fee_bps, "isMutable", 1,
		      "isSequential", 0, "creators", cr, "uploadMethod", "bundlr", "ruleSet",
		      "awsConfig", "sdriveApiKey", "pinataConfig", "hiddenSettings",
		      hs ? hs : json_null(), "guards", "maxEditionSupply");
	if (!cr || !o || !(path = kiln_fs_join(x->tmp, "metaplex/config.json")))
		goto nomem;
	rc = write_json(x, path, o, text, e);
	goto out;
nomem:
	rc = nomem(x, e);
out:
	free(path);
	json_decref(o);
	json_decref(hs);
	json_decref(cr);
	return rc;
}

/* metaplex/assets/: Sugar's layout, asset i = token position i, 0..N-1; metaplex/config.json */
static int write_metaplex(struct rel *x, struct kiln_error *e)
{
	const struct kiln_spec *s = x->s;
	const struct kiln_items *items = x->items;
	const char *ext = kiln_format_ext(s->format);
	struct kiln_buf text = KILN_BUF_INIT;
	char *dir = kiln_fs_join(x->tmp, "metaplex/assets");
	json_t *j = NULL;
	int rc;
	if (!dir)
		return nomem(x, e);
	if ((rc = kiln_fs_mkdirs(dir, e)))
		goto out;
	for (size_t t = 0; t < items->n; t++) {
		const struct kiln_item *it = &items->v[kiln_reveal_item(t, x->si, items->n)];
		char rel[96], src[96], *path;
		snprintf(rel, sizeof rel, "metaplex/assets/%zu.%s", t, ext);
		snprintf(src, sizeof src, "images/%" PRIu64 ".%s", it->id, ext);
		{
			char *a = kiln_fs_join(x->tmp, src), *b = kiln_fs_join(x->tmp, rel);
			size_t k = kiln_reveal_item(t, x->si, items->n);
			rc = a && b ? kiln_fs_copy(a, b, 0, e) : nomem(x, e);
			/* image.format svg: the asset is the PNG beside the SVG (its extra) */
			if (!rc)
				rc = record(x, b, s->image_svg ? x->extra[k] : x->sha[k], e);
			free(a);
			free(b);
			if (rc)
				goto out;
		}
		if (json_object_set_new(json_array_get(x->tokens, t), "metaplex_image",
					json_string(rel)))
			goto nomem;
		if (!(j = metaplex_json(x, it, items->v[t].id, t)))
			goto nomem;
		snprintf(rel, sizeof rel, "metaplex/assets/%zu.json", t);
		if (!(path = kiln_fs_join(x->tmp, rel)))
			goto nomem;
		rc = write_json(x, path, j, &text, e);
		free(path);
		json_decref(j);
		j = NULL;
		if (rc)
			goto out;
	}
	if (s->mpl_collection_name) {
		const char *cext = file_ext(s->mpl_collection_image);
		char rel[96], file[64], *path;
		snprintf(file, sizeof file, "collection.%s", cext);
		snprintf(rel, sizeof rel, "metaplex/assets/%s", file);
		if ((rc = copy_in(x, s->mpl_collection_image, rel, NULL, e)))
			goto out;
		j = json_pack("{s:s, s:s, s:s, s:s, s:{s:[{s:s, s:s}], s:s}}", "name",
			      s->mpl_collection_name, "symbol", s->symbol, "description",
			      s->mpl_collection_description ? s->mpl_collection_description
							    : s->meta_description,
			      "image", file, "properties", "files", "uri", file, "type",
			      ext_mime(cext), "category", "image");
		if (!j || !(path = kiln_fs_join(x->tmp, "metaplex/assets/collection.json")))
			goto nomem;
		rc = write_json(x, path, j, &text, e);
		free(path);
		if (rc)
			goto out;
	}
	rc = write_sugar_config(x, &text, e);
	goto out;
nomem:
	rc = nomem(x, e);
out:
	json_decref(j);
	kiln_buf_release(&text);
	free(dir);
	return rc;
}

/* provenance.json's extras: [{token_id, file, sha256}] of the files beside the images
 * (NULL: none) */
static int svg_extras(struct rel *x, json_t **out, struct kiln_error *e)
{
	*out = NULL;
	for (size_t i = 0; i < x->items->n; i++) {
		char file[96];
		if (!x->extra[i][0])
			continue;
		snprintf(file, sizeof file, "images/%" PRIu64 ".%s", x->items->v[i].id,
			 kiln_release_extra_ext(x->s));
		if ((!*out && !(*out = json_array())) ||
		    json_array_append_new(*out, json_pack("{s:I, s:s, s:s}", "token_id",
					  (json_int_t)x->items->v[i].id, "file", file, "sha256",
					  x->extra[i])))
			return nomem(x, e);
	}
	return 0;
}

static int write_records(struct rel *x, struct kiln_error *e)
{
	const struct kiln_items *items = x->items;
	json_t *prov = NULL, *imgs = json_array(), *ipfs = NULL, *extras = NULL;
	struct kiln_buf text = KILN_BUF_INIT;
	char *path = NULL;
	int rc;
	if (!imgs)
		goto nomem;
	for (size_t i = 0; i < items->n; i++) {
		char file[96];
		snprintf(file, sizeof file, "images/%" PRIu64 ".%s", items->v[i].id,
			 kiln_release_image_ext(x->s));
		if (json_array_append_new(imgs, json_pack("{s:I, s:s, s:s}", "token_id",
							  (json_int_t)items->v[i].id, "file", file,
							  "sha256", x->sha[i])))
			goto nomem;
	}
	if ((rc = kiln_provenance_hash((const char(*)[65])x->sha, items->n, x->r->provenance, e)))
		goto out;
	if ((rc = svg_extras(x, &extras, e)))
		goto out;
	prov = json_pack("{s:s, s:s, s:I, s:o, s:s, s:O, s:O}", "method", KILN_PROVENANCE_METHOD,
			 "provenance_hash", x->r->provenance, "count", (json_int_t)items->n,
			 "starting_index", x->has_si ? json_integer((json_int_t)x->si) : json_null(),
			 "reveal", x->r->reveal_pending ? "pending: kiln release --starting-index N"
							: "done",
			 "images", imgs, "tokens", x->tokens);
	if (prov && extras && json_object_set(prov, "extras", extras))
		goto nomem;
	if (!prov || !(path = kiln_fs_join(x->tmp, "provenance.json")))
		goto nomem;
	if ((rc = write_json(x, path, prov, &text, e)))
		goto out;
	free(path);
	ipfs = json_pack("{s:s, s:O}", "import", "ipfs add -r --cid-version=1 (kubo defaults: "
			 "256 KiB chunks, raw leaves, balanced DAG of 174 links, HAMT past 256 KiB "
			 "of links)", "entries", x->entries);
	if (!ipfs || !(path = kiln_fs_join(x->tmp, "ipfs.json")))
		goto nomem;
	if (x->r->images_cid[0] &&
	    json_object_set_new(ipfs, "image_uri", json_string(x->image_base)))
		goto nomem;
	if (x->r->metadata_cid[0]) {
		char b[256];
		snprintf(b, sizeof b, "ipfs://%s/", x->r->metadata_cid);
		if (json_object_set_new(ipfs, "base_uri", json_string(b)))
			goto nomem;
	}
	if (x->r->erc1155_cid[0]) {
		char b[256];
		snprintf(b, sizeof b, "ipfs://%s/{id}.json", x->r->erc1155_cid);
		if (json_object_set_new(ipfs, "erc1155_uri", json_string(b)))
			goto nomem;
	}
	if (x->r->prereveal_cid[0]) {
		char b[256];
		snprintf(b, sizeof b, "ipfs://%s/", x->r->prereveal_cid);
		if (json_object_set_new(ipfs, "prereveal_base_uri", json_string(b)))
			goto nomem;
	}
	if (x->r->contract_cid[0]) {
		char b[256];
		snprintf(b, sizeof b, "ipfs://%s", x->r->contract_cid);
		if (json_object_set_new(ipfs, "contract_uri", json_string(b)))
			goto nomem;
	}
	rc = write_json(x, path, ipfs, &text, e);
	goto out;
nomem:
	rc = nomem(x, e);
out:
	json_decref(imgs);
	json_decref(extras);
	json_decref(prov);
	json_decref(ipfs);
	kiln_buf_release(&text);
	free(path);
	return rc;
}

/* dist/portfolio/ (spec portfolio: {enabled: true}): the portfolio module writes it from
 * what this release wrote; its folder gets a CID like the others. Each image's attestation
 * names it and the metadata file that shows it after the reveal. */
struct pwrote {
	struct rel *x;
	struct kiln_pfiles *f;
};

static int portfolio_wrote(void *ctx, const char *path, const void *data, size_t len,
			   struct kiln_error *e)
{
	struct pwrote *w = ctx;
	char hex[65];
	kiln_sha256_hex(data ? data : "", len, hex);
	return record(w->x, path, hex, e) || kiln_pfiles_add(w->f, path, data, len, e) ? e->code
										     : 0;
}

static int write_portfolio(struct rel *x, struct kiln_error *e)
{
	struct pwrote pw = { 0 };
	const struct kiln_spec *s = x->s;
	size_t n = x->items->n;
	struct kiln_portfolio_token *t = kiln_calloc(n + 1, sizeof *t);
	char (*names)[3][96] = kiln_calloc(n + 1, sizeof *names), cid[KILN_IPFS_CID_MAX], *dir;
	struct kiln_portfolio_in in = {x->p->catalog, s, x->o->keys_dir, x->tmp, s->name, s->symbol,
				       s->description, s->engine, s->portfolio_prompts_hashed,
				       x->r->provenance, x->r->images_cid, x->r->metadata_cid, t,
				       n};
	int rc;
	if (!x->o->keys_dir) {
		kiln_error_set(e, KILN_E_STATE, s->path, "portfolio: enabled, but no studio keys "
			       "folder was given");
		rc = kiln_error_hint(e, KILN_HINT_KEYS_INIT, NULL);
		goto out;
	}
	if (!t || !names || (rc = kiln_provenance_hash((const char(*)[65])x->sha, n,
							x->r->provenance, e)) != 0) {
		rc = t && names ? rc : nomem(x, e);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const struct kiln_item *it = &x->items->v[i];
		size_t tok = (i + n - (size_t)(x->si % n)) % n; /* the token that shows item i */
		t[i] = (struct kiln_portfolio_token){it->id, it->traits_json, it->image, names[i][0],
						     x->sha[i], NULL, NULL, it->traits,
						     it->legendary};
		snprintf(names[i][0], 96, "images/%" PRIu64 ".%s", it->id,
			 kiln_release_image_ext(s));
		snprintf(names[i][1], 96, "thumbnails/%" PRIu64 ".%s", it->id,
			 kiln_format_ext(s->thumb_format));
		snprintf(names[i][2], 96, "metadata/%" PRIu64 ".json", x->items->v[tok].id);
		t[i].thumb_file = s->thumb_size ? names[i][1] : NULL;
		t[i].meta_file = !x->r->reveal_pending && (s->targets & KILN_TARGET_ERC721)
					 ? names[i][2] : NULL;
	}
	if (!(dir = kiln_fs_join(x->tmp, "portfolio"))) {
		rc = nomem(x, e);
		goto out;
	}
	/* each file hashed and imported from the bytes written (pfiles.c), not read back */
	pw.x = x;
	in.wrote = portfolio_wrote;
	in.wrote_ctx = &pw;
	if (!(rc = kiln_pfiles_new(&pw.f, dir, e)) && !(rc = kiln_portfolio_write(&in, e)) &&
	    (rc = kiln_pfiles_finish(pw.f, cid, e)) < 0)
		rc = kiln_ipfs_import_tree(dir, NULL, 0, cid, NULL, e);
	kiln_pfiles_free(pw.f);
	free(dir);
	if (!rc && entry(x, "portfolio", "portfolio", cid, NULL))
		rc = nomem(x, e);
out:
	free(t);
	free(names);
	return rc;
}

/* image.format svg: every token's image must be the SVG its vectorize step made (a token whose
 * chain was not made yet still has its render, a PNG, as its image) */
static int check_svg_images(struct rel *x, struct kiln_error *e)
{
	for (size_t i = 0; x->s->image_svg && i < x->items->n; i++)
		if (!x->extra[i][0]) {
			char where[48];
			snprintf(where, sizeof where, "item %" PRIu64, x->items->v[i].id);
			kiln_error_set(e, KILN_E_STATE, where, "image.format is svg, but the token's "
				       "image %.12s... is not the SVG of its polish chain's vectorize "
				       "step (the chain was not made from its current image)",
				       x->items->v[i].image);
			return kiln_error_hint(e, KILN_HINT_POLISH, NULL);
		}
	return 0;
}

/* The whole new dist/ in x->tmp. */
static int write_release(struct rel *x, struct kiln_error *e)
{
	const struct kiln_spec *s = x->s;
	size_t n = x->items->n;
	int rc;
	if (!(x->sha = kiln_calloc(n + 1, sizeof *x->sha)) ||
	    !(x->extra = kiln_calloc(n + 1, sizeof *x->extra)) || !(x->entries = json_array()) ||
	    !(x->tokens = json_array()))
		return nomem(x, e);
	if ((rc = kiln_release_extras(x->p->catalog, s, x->items, x->extra, e)) ||
	    (rc = check_svg_images(x, e)))
		return rc;
	for (size_t t = 0; t < n; t++)
		if (json_array_append_new(x->tokens, json_pack("{s:I}", "token_id",
							       (json_int_t)x->items->v[t].id)))
			return nomem(x, e);
	report(x->o, "start", n, 0);
	if ((rc = write_images(x, e)))
		return rc;
	if (s->thumb_size && (rc = write_thumbnails(x, e)))
		return rc;
	if ((rc = write_polish(x, e)))
		return rc;
	/* the image URI prefix: the real images CID unless the spec names another place */
	{
		struct kiln_buf b = KILN_BUF_INIT;
		const char *u = s->base_uri, *ph = strstr(u, "{images_cid}");
		size_t len;
		int bad;
		if (!strcmp(u, LEGACY_PLACEHOLDER))
			bad = kiln_buf_addf(&b, "ipfs://%s", x->r->images_cid);
		else if (ph)
			bad = kiln_buf_add(&b, u, (size_t)(ph - u)) ||
			      kiln_buf_adds(&b, x->r->images_cid) || kiln_buf_adds(&b, ph + 12);
		else
			bad = kiln_buf_adds(&b, u);
		if (bad) {
			kiln_buf_release(&b);
			return nomem(x, e);
		}
		x->image_base = kiln_buf_detach(&b, &len);
		while (len > 0 && x->image_base[len - 1] == '/')
			x->image_base[--len] = 0;
	}
	if ((s->targets & (KILN_TARGET_ERC721 | KILN_TARGET_ERC1155)) &&
	    (rc = write_contract(x, e)))
		return rc;
	if (s->reveal_image && (rc = write_prereveal(x, e)))
		return rc;
	if (!x->r->reveal_pending) {
		/* erc721's layout is the default one and the pre-reveal set points there too */
		if ((s->targets & KILN_TARGET_ERC721) && (rc = write_set(x, SET_ERC721, e)))
			return rc;
		if ((s->targets & KILN_TARGET_ERC1155) && (rc = write_set(x, SET_ERC1155, e)))
			return rc;
		if ((s->targets & KILN_TARGET_METAPLEX) && (rc = write_metaplex(x, e)))
			return rc;
	}
	if (s->portfolio && (rc = write_portfolio(x, e)))
		return rc;
	return write_records(x, e);
}

static int cmp_rec(const void *a, const void *b)
{
	return strcmp(((const struct kiln_manifest_file *)a)->path,
		      ((const struct kiln_manifest_file *)b)->path);
}

/* manifest.sha256, last: every file in tmp with the hash noted when it was written, or read
 * now for a file no writer noted (small: project files copied in). A path written twice is
 * hashed again rather than trusting either note. Its SHA-256 is the release hash. */
static int write_manifest(struct rel *x, struct kiln_error *e)
{
	struct kiln_manifest m;
	struct kiln_buf text = KILN_BUF_INIT;
	char *path = NULL;
	int rc;
	if (x->rec.n)
		qsort(x->rec.v, x->rec.n, sizeof *x->rec.v, cmp_rec);
	for (size_t i = 1; i < x->rec.n; i++)
		if (!strcmp(x->rec.v[i].path, x->rec.v[i - 1].path))
			x->rec.v[i].sha256[0] = x->rec.v[i - 1].sha256[0] = 0;
	if ((rc = kiln_manifest_list(x->tmp, &m, e)))
		return rc;
	for (size_t i = 0; i < m.n && !rc; i++) {
		struct kiln_manifest_file *f = &m.v[i];
		const struct kiln_manifest_file *k = kiln_manifest_find(&x->rec, f->path);
		if (!f->regular) {
			rc = kiln_error_set(e, KILN_E_IO, f->path, "not a regular file in the release");
		} else if (k && k->sha256[0]) {
			memcpy(f->sha256, k->sha256, sizeof f->sha256);
		} else {
			char *full = kiln_fs_join(x->tmp, f->path);
			rc = full ? kiln_sha256_file(full, f->sha256, e) : nomem(x, e);
			free(full);
		}
	}
	if (!rc && !(rc = kiln_manifest_text(&m, &text, e))) {
		kiln_sha256_hex(text.data ? text.data : "", text.len, x->r->manifest);
		if (!(path = kiln_fs_join(x->tmp, KILN_MANIFEST_FILE)))
			rc = nomem(x, e);
		else
			rc = kiln_fs_write_atomic_sync(path, text.data ? text.data : "", text.len, 0,
						       e);
	}
	free(path);
	kiln_buf_release(&text);
	if (rc)
		kiln_manifest_release(&m);
	else
		x->files = m; /* recorded in the catalog once swapped in (record_dist) */
	return rc;
}

/* The starting index the released provenance.json records (has = 0: none, or no release). */
static void released_index(const char *dist, int *has, uint64_t *si)
{
	char *path = kiln_fs_join(dist, "provenance.json");
	json_t *j = path ? json_load_file(path, 0, NULL) : NULL;
	json_t *v = json_object_get(j, "starting_index");
	*has = json_is_integer(v) && json_integer_value(v) >= 0;
	*si = *has ? (uint64_t)json_integer_value(v) : 0;
	json_decref(j);
	free(path);
}

/* When nothing changed: the summary from the records in dist/. */
static void read_back(const char *dist, struct kiln_release_result *r)
{
	char *path = kiln_fs_join(dist, "ipfs.json");
	json_t *j = path ? json_load_file(path, 0, NULL) : NULL, *x;
	size_t i;
	struct {
		const char *name;
		char *out;
	} map[] = {{"images", r->images_cid}, {"metadata", r->metadata_cid},
		   {"erc1155-metadata", r->erc1155_cid}, {"prereveal-metadata", r->prereveal_cid},
		   {"contract", r->contract_cid}};
	json_array_foreach(json_object_get(j, "entries"), i, x) {
		const char *n = json_string_value(json_object_get(x, "name"));
		const char *c = json_string_value(json_object_get(x, "cid"));
		for (size_t k = 0; n && c && k < sizeof map / sizeof map[0]; k++)
			if (!strcmp(n, map[k].name))
				snprintf(map[k].out, 128, "%s", c);
	}
	json_decref(j);
	free(path);
	path = kiln_fs_join(dist, "provenance.json");
	j = path ? json_load_file(path, 0, NULL) : NULL;
	x = json_object_get(j, "provenance_hash");
	if (json_is_string(x))
		snprintf(r->provenance, sizeof r->provenance, "%s", json_string_value(x));
	json_decref(j);
	free(path);
	path = kiln_fs_join(dist, KILN_MANIFEST_FILE);
	if (path) {
		struct kiln_error ignore;
		if (kiln_sha256_file(path, r->manifest, &ignore))
			r->manifest[0] = 0;
	}
	free(path);
}

/* --- is dist/ what the last release wrote? ----------------------------------------------------
 * At release, every file of dist/ is recorded in the catalog with its size, mtime and SHA-256
 * (dist_files). A later check stats every file and hashes again only those whose size or
 * mtime changed: a file gone, added, or with other bytes is damage, and the release is written
 * again instead of being called up to date. The items' images and traits and kiln.yaml are
 * hashed too (meta release_inputs), so `kiln status` can tell a release that is behind the
 * catalog without the release's options. */

static int64_t mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/* What dist/ depends on in the catalog and the spec, for status. */
static void inputs_sha(struct kiln_project *p, const struct kiln_items *items, char out[65])
{
	struct kiln_sha256 h;
	char line[128];
	int n;
	if (kiln_sha256_init(&h)) {
		out[0] = 0;
		return;
	}
	n = snprintf(line, sizeof line, "inputs/1\n%s", p->spec_sha);
	kiln_sha256_update(&h, line, (size_t)n);
	for (size_t i = 0; i < items->n; i++) {
		const struct kiln_item *it = &items->v[i];
		n = snprintf(line, sizeof line, "\n%" PRIu64 " %s ", it->id, it->image);
		kiln_sha256_update(&h, line, (size_t)n);
		kiln_sha256_update(&h, it->traits_json, strlen(it->traits_json));
	}
	kiln_sha256_final(&h, NULL, out);
}

static int cmp_dist_file(const void *key, const void *elem)
{
	return strcmp(key, ((const struct kiln_dist_file *)elem)->path);
}

static void damage(struct kiln_dist_state *s, uint64_t *count, const char *fmt, const char *path,
		   uint64_t a, uint64_t b)
{
	if (!s->changed && !s->missing && !s->extra)
		snprintf(s->first, sizeof s->first, fmt, path, a, b);
	(*count)++;
}

/* dist/ against the recorded files (s->recorded 0: none were recorded, nothing is known). */
static int dist_damage(struct kiln_project *p, const char *dist, struct kiln_dist_state *s,
		       struct kiln_error *e)
{
	struct kiln_dist_file *rec = NULL;
	struct kiln_manifest m;
	size_t nrec = 0;
	char *path = NULL;
	int rc;
	memset(&m, 0, sizeof m);
	if ((rc = kiln_catalog_dist_files(p->catalog, &rec, &nrec, e)) || !nrec)
		goto out;
	s->recorded = 1;
	if (!kiln_fs_is_dir(dist)) {
		damage(s, &s->missing, "%s is missing", "dist/", 0, 0);
		s->missing = nrec;
		goto out;
	}
	if ((rc = kiln_manifest_list(dist, &m, e)))
		goto out;
	/* the listing stat()ed every file once: sizes and mtimes come from it (the manifest
	 * itself, which the listing leaves out, is stat()ed alone) */
	for (size_t i = 0; i < nrec; i++) {
		const struct kiln_manifest_file *f = kiln_manifest_find(&m, rec[i].path);
		struct stat st;
		struct kiln_manifest_file mf;
		char hex[65];
		struct kiln_error he;
		free(path);
		if (!(path = kiln_fs_join(dist, rec[i].path))) {
			rc = kiln_error_set(e, KILN_E_NOMEM, dist, "out of memory");
			goto out;
		}
		if (!f && !strcmp(rec[i].path, KILN_MANIFEST_FILE) && lstat(path, &st) == 0) {
			memset(&mf, 0, sizeof mf);
			mf.size = (uint64_t)st.st_size;
			mf.mtime_ns = mtime_ns(&st);
			mf.regular = S_ISREG(st.st_mode);
			f = &mf;
		}
		if (!f || !f->regular) {
			damage(s, &s->missing, "%s is missing", rec[i].path, 0, 0);
			continue;
		}
		if (f->size == rec[i].size && f->mtime_ns == rec[i].mtime_ns)
			continue;
		s->hashed++;
		if (kiln_sha256_file(path, hex, &he) || strcmp(hex, rec[i].sha256))
			damage(s, &s->changed, "%s changed since the release (%" PRIu64 " bytes, "
			       "written with %" PRIu64 ")", rec[i].path, f->size, rec[i].size);
	}
	for (size_t i = 0; i < m.n; i++)
		if (!bsearch(m.v[i].path, rec, nrec, sizeof *rec, cmp_dist_file))
			damage(s, &s->extra, "%s is not part of the release", m.v[i].path, 0, 0);
out:
	free(path);
	kiln_manifest_release(&m);
	kiln_dist_files_free(rec, nrec);
	return rc;
}

/* After the swap: every file of the new dist/ (and the manifest) with its size and mtime. */
static int record_dist(struct rel *x, const char *dist, const char *inputs, const char *sha,
		       struct kiln_error *e)
{
	struct kiln_dist_file *v = kiln_calloc(x->files.n + 1, sizeof *v);
	char *path = NULL;
	size_t n = 0;
	int rc = 0;
	if (!v)
		return nomem(x, e);
	for (size_t i = 0; i <= x->files.n && !rc; i++) {
		const char *rel = i < x->files.n ? x->files.v[i].path : KILN_MANIFEST_FILE;
		struct stat st;
		free(path);
		if (!(path = kiln_fs_join(dist, rel))) {
			rc = nomem(x, e);
			break;
		}
		if (stat(path, &st) != 0) {
			rc = kiln_error_set(e, KILN_E_IO, path, "cannot stat the file just released: "
					    "%s", strerror(errno));
			break;
		}
		v[n].path = (char *)rel;
		v[n].size = (uint64_t)st.st_size;
		v[n].mtime_ns = mtime_ns(&st);
		memcpy(v[n].sha256, i < x->files.n ? x->files.v[i].sha256 : x->r->manifest, 65);
		n++;
	}
	if (!rc)
		rc = kiln_catalog_dist_files_save(x->p->catalog, v, n, inputs, sha, e);
	free(path);
	free(v); /* the paths are x->files' */
	return rc;
}

int kiln_release_dist_state(struct kiln_project *p, struct kiln_dist_state *s,
			    struct kiln_error *e)
{
	struct kiln_items items;
	char *sha = NULL, *inputs = NULL, *dist = NULL, now[65];
	int rc;
	memset(s, 0, sizeof *s);
	memset(&items, 0, sizeof items);
	if ((rc = kiln_catalog_meta_get(p->catalog, "release_sha", &sha, e)) || !sha)
		goto out;
	s->released = 1;
	if ((rc = kiln_catalog_meta_get(p->catalog, "release_inputs", &inputs, e)) ||
	    (rc = kiln_catalog_items(p->catalog, p->spec, &items, e)) ||
	    (rc = kiln_catalog_final_images(p->catalog, &items, e)))
		goto out;
	inputs_sha(p, &items, now);
	s->inputs_changed = inputs && strcmp(inputs, now);
	if (!(dist = kiln_fs_join(p->dir, "dist"))) {
		rc = kiln_error_set(e, KILN_E_NOMEM, p->dir, "out of memory");
		goto out;
	}
	rc = dist_damage(p, dist, s, e);
out:
	kiln_items_release(&items);
	free(sha);
	free(inputs);
	free(dist);
	return rc;
}

int kiln_project_release(struct kiln_project *p, const struct kiln_release_opts *o,
			 struct kiln_release_result *r, struct kiln_error *e)
{
	const struct kiln_spec *s = p->spec;
	struct kiln_items items;
	struct rel x;
	char sha[65], inputs[65], *old = NULL, *dist = NULL, *stamp = NULL, *si_text = NULL;
	const char *where_rec = NULL;
	uint64_t rec_si = 0;
	int rc, current, has_rec = 0;

	memset(r, 0, sizeof *r);
	memset(&items, 0, sizeof items);
	memset(&x, 0, sizeof x);
	kiln_buf_init(&x.img, (size_t)1 << 31);
	if ((rc = kiln_project_plan_current(p, &current, e)))
		return rc;
	if (!current) {
		kiln_error_set(e, KILN_E_STATE, p->spec_path, "the plan is missing or older than "
			       "kiln.yaml");
		return kiln_error_hint(e, KILN_HINT_PLAN, NULL);
	}
	/* the size is kiln.yaml's: the error names it */
	if (o->has_starting_index && o->starting_index >= s->size)
		return kiln_error_set(e, KILN_E_USAGE, p->spec_path, "the starting index must be "
				      "below the collection size (0..%" PRIu64 "), got %" PRIu64
				      ": take it mod %" PRIu64, s->size - 1, o->starting_index,
				      s->size);
	if ((rc = kiln_catalog_items(p->catalog, s, &items, e)))
		return rc;
	if ((rc = kiln_catalog_final_images(p->catalog, &items, e)) ||
	    (rc = check_items(p, &items, e)))
		goto out;
	if (!o->allow_qa_failures && (rc = check_qa(p, e)))
		goto out;
	x.p = p;
	x.s = s;
	x.items = &items;
	x.o = o;
	x.r = r;
	dist = kiln_fs_join(p->dir, "dist");
	stamp = dist ? kiln_fs_join(dist, ".kiln-release") : NULL;
	if (!dist || !stamp) {
		rc = nomem(&x, e);
		goto out;
	}
	/* the recorded starting index: the catalog's, else the released provenance.json's (a
	 * catalog made again must not undo a public reveal) */
	if ((rc = kiln_catalog_meta_get(p->catalog, "starting_index", &si_text, e)))
		goto out;
	if (si_text && *si_text) {
		rec_si = strtoull(si_text, NULL, 10);
		has_rec = 1;
		where_rec = "the catalog";
	} else {
		released_index(dist, &has_rec, &rec_si);
		where_rec = "dist/provenance.json";
	}
	if (o->has_starting_index && has_rec && rec_si != o->starting_index && !o->re_reveal) {
		char rec[32];
		snprintf(rec, sizeof rec, "%" PRIu64, rec_si);
		kiln_error_set(e, KILN_E_USAGE, dist, "the starting index is already %" PRIu64
			       " (recorded in %s), not %" PRIu64 ": the reveal may be public, and "
			       "another index shows every holder another token", rec_si, where_rec,
			       o->starting_index);
		rc = kiln_error_hint(e, KILN_HINT_RE_REVEAL, rec);
		goto out;
	}
	if (o->has_starting_index) {
		x.has_si = 1;
		x.si = o->starting_index;
	} else if (has_rec) {
		x.si = rec_si;
		x.has_si = x.si < s->size;
	}
	if (!x.has_si)
		x.si = 0;
	r->has_starting_index = x.has_si;
	r->starting_index = x.si;
	r->reveal_pending = s->reveal_image && !x.has_si;
	if ((rc = release_sha(&x, sha, e)))
		goto out;
	snprintf(r->dist, sizeof r->dist, "%s", dist);
	r->items = items.n;
	if ((rc = kiln_catalog_meta_get(p->catalog, "release_sha", &old, e)))
		goto out;
	if (!o->force && old && !strcmp(old, sha) && kiln_fs_exists(stamp)) {
		struct kiln_buf b = KILN_BUF_INIT;
		struct kiln_error se;
		int same = !kiln_fs_read(stamp, &b, &se) && b.data && !strncmp(b.data, sha, 64);
		struct kiln_dist_state ds;
		kiln_buf_release(&b);
		memset(&ds, 0, sizeof ds);
		/* the stamp matches: up to date unless a file of dist/ was damaged since */
		if (same && (rc = dist_damage(p, dist, &ds, e)))
			goto out;
		if (same && !ds.changed && !ds.missing && !ds.extra) {
			read_back(dist, r);
			goto out; /* up to date */
		}
		if (same) {
			r->repaired = ds.changed + ds.missing + ds.extra;
			snprintf(r->damage, sizeof r->damage, "%s", ds.first);
		}
	}
	remove_stale_tmp(p->dir);
	{
		char name[64];
		snprintf(name, sizeof name, ".dist.tmp-%ld", (long)getpid());
		if (!(x.tmp = kiln_fs_join(p->dir, name))) {
			rc = nomem(&x, e);
			goto out;
		}
	}
	if ((rc = kiln_fs_mkdirs(x.tmp, e)) || (rc = write_release(&x, e)))
		goto out;
	{
		char *sp = kiln_fs_join(x.tmp, ".kiln-release"), line[80];
		snprintf(line, sizeof line, "%s\n", sha);
		rc = sp ? put_file(&x, sp, line, strlen(line), NULL, e) : nomem(&x, e);
		free(sp);
		if (rc || (rc = write_manifest(&x, e)))
			goto out;
	}
	/* one sync for every file of the release, before it can be swapped in */
	if ((rc = kiln_fs_sync_fs(x.tmp, e)))
		goto out;
	/* swap the new release in whole */
	if (kiln_fs_exists(dist)) {
		if (renameat2(AT_FDCWD, x.tmp, AT_FDCWD, dist, RENAME_EXCHANGE) != 0) {
			rc = kiln_error_set(e, KILN_E_IO, dist, "cannot swap in the new release: %s",
					    strerror(errno));
			goto out;
		}
	} else if (rename(x.tmp, dist) != 0) {
		rc = kiln_error_set(e, KILN_E_IO, dist, "cannot move the release into place: %s",
				    strerror(errno));
		goto out;
	}
	kiln_fs_sync_dir(p->dir);
	inputs_sha(p, &items, inputs);
	if ((rc = record_dist(&x, dist, inputs, sha, e)))
		goto out;
	if (x.has_si && (o->has_starting_index || !si_text || !*si_text)) {
		char t[32];
		snprintf(t, sizeof t, "%" PRIu64, x.si);
		if ((rc = kiln_catalog_meta_set(p->catalog, "starting_index", t, e)))
			goto out;
	}
	{
		json_t *d = json_pack("{s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:b, "
				      "s:b}", "release_sha", sha, "release_hash", r->manifest,
				      "items", (json_int_t)items.n, "bytes",
				      (json_int_t)r->bytes, "provenance_hash", r->provenance,
				      "images_cid", r->images_cid, "metadata_cid", r->metadata_cid,
				      "erc1155_cid", r->erc1155_cid, "prereveal_cid",
				      r->prereveal_cid, "contract_cid", r->contract_cid,
				      "starting_index", x.has_si ? json_integer((json_int_t)x.si)
								 : json_null(),
				      "reveal_pending", r->reveal_pending, "car", o->car);
		char *detail = d ? json_dumps(d, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
		json_decref(d);
		rc = detail ? kiln_catalog_event(p->catalog, "release", 0, 0, detail, e) : nomem(&x, e);
		free(detail);
		if (rc)
			goto out;
	}
	r->written = 1;
	report(o, "end", items.n, items.n);
out:
	if (x.tmp && kiln_fs_exists(x.tmp)) {
		struct kiln_error ignore;
		/* after the swap tmp holds the old release; on failure, the half-written new one */
		if (kiln_fs_remove_tree(x.tmp, &ignore)) {
		}
	}
	free(x.tmp);
	free(x.sha);
	free(x.extra);
	free(x.image_base);
	json_decref(x.entries);
	json_decref(x.tokens);
	kiln_buf_release(&x.img);
	kiln_manifest_release(&x.rec);
	kiln_manifest_release(&x.files);
	free(old);
	free(dist);
	free(stamp);
	free(si_text);
	kiln_items_release(&items);
	return rc;
}
