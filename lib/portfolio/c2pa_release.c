/* c2pa_release: what a release needs to sign each PNG it writes (release.c calls it for every
 * image, before hashing it, so the provenance hash, the CIDs and the attestations are of the
 * signed bytes).
 *
 * Each manifest tells the image's history as the portfolio log has it: the log is synced
 * (every catalog fact not yet in it is appended) and loaded once, and indexed by item, so that
 * per image the actions are c2pa.created with the digital source type (compositeSynthetic for
 * the compose engine, trainedAlgorithmicMedia for AI engines, compositeWithTrained... once a
 * person edited it), then a c2pa.edited per edit.human and polish.step entry of the item in log
 * order; dev.kiln.provenance names the entry that made these bytes (the latest of the item's
 * entries whose fact.image is the image's SHA-256: its render or polish step; with prompts
 * stripped, its prompt.redacted entry, appended before signing; else its latest entry), its
 * SHA-256, and
 * the RFC 6962 root of the log up to and including it (log_size entries). The log only grows,
 * so that prefix root never changes and anyone recomputes it from entries.jsonl; the root of
 * the whole log would change with every later entry (the release's own lists the signed
 * images, so it cannot be inside them), and with it every image's bytes. Manifests go through
 * the signing cache (c2pa.c), so the same catalog gives the same bytes.
 *
 * Sizes: the log in memory (a few MB for 10,000 tokens), an index of 16 bytes an entry.
 */
#include "kiln/catalog.h"
#include "kiln/portfolio.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/merkle.h"
#include "util/sha.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct at {
	uint64_t item;
	size_t line;
};

struct kiln_c2pa_release {
	struct kiln_c2pa_signer *signer;
	struct kiln_catalog *catalog;
	int strip_prompts;
	char *cache_dir;
	struct kiln_plog log;
	json_t **entries;         /* parsed lines (NULL for one that is not JSON) */
	struct at *idx;           /* entries with an item, by (item, line) */
	size_t nidx;
	struct kiln_merkle_tree tree;
	struct kiln_c2pa_edit *edits;
	size_t edits_cap;
	/* entries the release appended (prompt.redacted) after the log.n loaded ones, and the
	 * Merkle frontier of the whole log (peak[k]: the subtree of 2^k leaves when bit k of
	 * size is set), so that the root of the log up to a new entry costs O(log n) */
	char **added;
	size_t nadded;
	uint8_t peak[64][32];
	uint64_t size;
};

static int cmp_at(const void *a, const void *b)
{
	const struct at *x = a, *y = b;
	if (x->item != y->item)
		return x->item < y->item ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

void kiln_portfolio_c2pa_release_free(struct kiln_c2pa_release *cr)
{
	if (!cr)
		return;
	kiln_portfolio_c2pa_signer_free(cr->signer);
	for (size_t i = 0; cr->entries && i < cr->log.n; i++)
		json_decref(cr->entries[i]);
	free(cr->entries);
	kiln_merkle_tree_release(&cr->tree);
	kiln_plog_release(&cr->log);
	free(cr->idx);
	free(cr->edits);
	for (size_t i = 0; i < cr->nadded; i++)
		free(cr->added[i]);
	free(cr->added);
	free(cr->cache_dir);
	free(cr);
}

int kiln_portfolio_c2pa_release_new(struct kiln_c2pa_release **crp, struct kiln_catalog *c,
				    const char *keys_dir, const char *cache_dir, int strip_prompts,
				    struct kiln_error *e)
{
	struct kiln_c2pa_release *cr;
	int rc;
	*crp = NULL;
	if (!keys_dir) {
		kiln_error_set(e, KILN_E_STATE, "portfolio", "the release signs its PNGs for C2PA, "
			       "but no studio keys folder was given");
		return kiln_error_hint(e, KILN_HINT_KEYS_INIT, NULL);
	}
	if (!(cr = kiln_calloc(1, sizeof *cr)))
		return kiln_error_set(e, KILN_E_NOMEM, "portfolio", "out of memory");
	cr->catalog = c;
	cr->strip_prompts = strip_prompts;
	if ((rc = kiln_portfolio_c2pa_signer_new(&cr->signer, keys_dir, e))) {
		if (rc == KILN_E_IO)
			kiln_error_hint(e, KILN_HINT_KEYS_INIT, NULL);
		goto out;
	}
	if (!(cr->cache_dir = kiln_strdup(cache_dir))) {
		rc = kiln_error_set(e, KILN_E_NOMEM, cache_dir, "out of memory");
		goto out;
	}
	if ((rc = kiln_fs_mkdirs(cache_dir, e)) || (rc = kiln_portfolio_log_sync(c, NULL, e)) ||
	    (rc = kiln_portfolio_log_load(c, &cr->log, e)))
		goto out;
	if (kiln_merkle_tree_build(&cr->tree, (const uint8_t(*)[32])cr->log.leaves, cr->log.n)) {
		rc = kiln_error_set(e, KILN_E_NOMEM, "portfolio log", "out of memory");
		goto out;
	}
	cr->entries = kiln_calloc(cr->log.n + 1, sizeof *cr->entries);
	cr->idx = kiln_calloc(cr->log.n + 1, sizeof *cr->idx);
	if (!cr->entries || !cr->idx) {
		rc = kiln_error_set(e, KILN_E_NOMEM, "portfolio log", "out of memory");
		goto out;
	}
	for (size_t i = 0; i < cr->log.n; i++) {
		json_t *item;
		cr->entries[i] = json_loads(cr->log.lines[i], 0, NULL);
		item = json_object_get(cr->entries[i], "item");
		if (json_is_integer(item) && json_integer_value(item) >= 0)
			cr->idx[cr->nidx++] = (struct at){ (uint64_t)json_integer_value(item), i };
	}
	qsort(cr->idx, cr->nidx, sizeof *cr->idx, cmp_at);
	{
		size_t off = 0;
		for (int k = 63; k >= 0; k--)
			if ((uint64_t)cr->log.n >> k & 1) {
				memcpy(cr->peak[k], cr->tree.lv[k][off >> k], 32);
				off += (size_t)1 << k;
			}
		cr->size = cr->log.n;
	}
	*crp = cr;
	cr = NULL;
out:
	kiln_portfolio_c2pa_release_free(cr);
	return rc;
}

/* the frontier after appending leaf */
static void frontier_add(struct kiln_c2pa_release *cr, const uint8_t leaf[32])
{
	uint8_t h[32], r[32];
	int k = 0;
	memcpy(h, leaf, 32);
	for (; cr->size >> k & 1; k++) {
		kiln_merkle_node(cr->peak[k], h, r);
		memcpy(h, r, 32);
	}
	memcpy(cr->peak[k], h, 32);
	cr->size++;
}

/* the RFC 6962 root of the whole log (size > 0): the peaks joined from the smallest */
static void frontier_root(const struct kiln_c2pa_release *cr, uint8_t out[32])
{
	uint8_t r[32];
	int k = 0, have = 0;
	for (; k < 64; k++)
		if (cr->size >> k & 1) {
			if (have) {
				kiln_merkle_node(cr->peak[k], out, r);
				memcpy(out, r, 32);
			} else {
				memcpy(out, cr->peak[k], 32);
				have = 1;
			}
		}
}

static const char *str(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* What an edit or polish entry says was done: its fact's description (or step, note,
 * operation), else what its kind means. */
static const char *edit_text(json_t *l, int human)
{
	static const char *const keys[] = { "description", "step", "note", "operation", "op" };
	json_t *f = json_object_get(l, "fact");
	for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
		const char *v = str(f, keys[i]);
		if (v && *v)
			return v;
	}
	return human ? "edited by hand" : "polish step";
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int kiln_portfolio_strip_prompt_text(struct kiln_buf *png)
{
	static const char *const keys[] = { "parameters", "prompt", "workflow" };
	uint8_t *p = (uint8_t *)png->data;
	size_t n = png->len, at = 8, to = 8;
	int removed = 0;
	if (n < 8 || memcmp(p, "\x89PNG\r\n\x1a\n", 8))
		return -1;
	/* checked first, so that a malformed PNG is left whole */
	while (at + 12 <= n && be32(p + at) <= n - at - 12)
		at += (size_t)be32(p + at) + 12;
	if (at != n)
		return -1;
	for (at = 8; at < n;) {
		size_t len = be32(p + at), total = len + 12, k;
		int drop = 0;
		if (!memcmp(p + at + 4, "tEXt", 4) || !memcmp(p + at + 4, "zTXt", 4) ||
		    !memcmp(p + at + 4, "iTXt", 4))
			for (k = 0; k < sizeof keys / sizeof *keys; k++) {
				size_t kl = strlen(keys[k]);
				drop |= len > kl && !memcmp(p + at + 8, keys[k], kl) &&
					p[at + 8 + kl] == 0;
			}
		if (drop)
			removed++;
		else if (to != at)
			memmove(p + to, p + at, total);
		to += drop ? 0 : total;
		at += total;
	}
	png->len = to;
	if (png->data)
		png->data[to] = 0;
	return removed;
}

/* the index of an item's "prompt.redacted" entry for these released bytes in the log as
 * loaded, or -1 */
static int64_t redacted(const struct kiln_c2pa_release *cr, size_t lo, size_t hi,
			const char *sha)
{
	int64_t at = -1;
	for (size_t k = lo; k < hi; k++) {
		json_t *l = cr->entries[cr->idx[k].line];
		if (!strcmp(str(l, "kind") ?: "", "prompt.redacted") &&
		    !strcmp(str(json_object_get(l, "fact"), "image") ?: "", sha))
			at = (int64_t)cr->idx[k].line;
	}
	return at;
}

/* Append the item's prompt.redacted entry (image: sha, from: the store image): its index. */
static int add_redacted(struct kiln_c2pa_release *cr, uint64_t item, const char *sha,
			const char *from, int chunks, int64_t *index, struct kiln_error *e)
{
	uint64_t seq = cr->log.n + cr->nadded;
	const char *prev = cr->nadded ? cr->added[cr->nadded - 1]
				      : cr->log.n ? cr->log.lines[cr->log.n - 1] : NULL;
	json_t *f = json_pack("{s:s, s:s, s:s, s:i}", "image", sha, "from", from ? from : "",
			      "step", "prompt text chunks removed (portfolio.prompts: hashed)",
			      "chunks", chunks);
	char *text = f ? json_dumps(f, JSON_COMPACT | JSON_SORT_KEYS) : NULL, *line = NULL, **v;
	uint8_t leaf[32];
	int rc;
	json_decref(f);
	v = text ? kiln_reallocarray(cr->added, cr->nadded + 1, sizeof *v) : NULL;
	if (!v) {
		free(text);
		return kiln_error_set(e, KILN_E_NOMEM, "portfolio", "out of memory");
	}
	cr->added = v;
	rc = kiln_portfolio_log_append(cr->catalog, "redact", seq, prev, "prompt.redacted", item,
				       text, &line, e);
	free(text);
	if (rc)
		return rc;
	cr->added[cr->nadded++] = line;
	kiln_merkle_leaf(line, strlen(line), leaf);
	frontier_add(cr, leaf);
	*index = (int64_t)seq;
	return 0;
}

/* the SHA-256 of png without its caBX chunks (the bytes before C2PA signed them) */
static void sha_without_cabx(const struct kiln_buf *png, char hex[65])
{
	const uint8_t *p = (const uint8_t *)png->data;
	struct kiln_sha256 h;
	size_t at = 8;
	if (kiln_sha256_init(&h)) {
		hex[0] = 0;
		return;
	}
	kiln_sha256_update(&h, p, 8);
	while (at + 12 <= png->len) {
		size_t total = (size_t)be32(p + at) + 12;
		if (memcmp(p + at + 4, "caBX", 4))
			kiln_sha256_update(&h, p + at, total);
		at += total;
	}
	kiln_sha256_final(&h, NULL, hex);
}

int kiln_portfolio_c2pa_release_sign(struct kiln_c2pa_release *cr, uint64_t item,
				     const char *image_sha, const char *title,
				     struct kiln_buf *img, struct kiln_error *e)
{
	struct kiln_c2pa_in in = { 0 };
	struct kiln_buf out = KILN_BUF_INIT;
	size_t lo = 0, hi = cr->nidx, n = 0;
	char entry_sha[65], root[65];
	int64_t made = -1, last = -1, human = 0, compose = 0;
	int rc, stripped = 0;
	char out_sha[65];
	/* the item's entries: [lo, hi) of the index */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (cr->idx[mid].item < item)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (hi = lo; hi < cr->nidx && cr->idx[hi].item == item; hi++)
		;
	if (hi - lo > cr->edits_cap) {
		struct kiln_c2pa_edit *v = kiln_reallocarray(cr->edits, hi - lo, sizeof *v);
		if (!v)
			return kiln_error_set(e, KILN_E_NOMEM, "portfolio", "out of memory");
		cr->edits = v;
		cr->edits_cap = hi - lo;
	}
	for (size_t k = lo; k < hi; k++) {
		size_t i = cr->idx[k].line;
		json_t *l = cr->entries[i];
		const char *kind = str(l, "kind");
		const char *made_img = str(json_object_get(l, "fact"), "image");
		if (!l || !kind)
			continue;
		last = (int64_t)i;
		if (made_img && image_sha && !strcmp(made_img, image_sha))
			made = (int64_t)i;
		if (!strcmp(kind, "render"))
			compose = !strcmp(str(json_object_get(l, "fact"), "engine") ?: "",
					  "compose");
	}
	/* the chain that made these bytes: from the entry that made them back through each
	 * step's input (fact.from) to the step that made it; a polish step of a chain that was
	 * replaced (re-polished) made another image, and is not this image's history. Without
	 * such an entry (an image no entry names), every step of the item is listed. */
	{
		const char *want = NULL;
		size_t top = hi;
		if (made >= 0) {
			json_t *f = json_object_get(cr->entries[made], "fact");
			want = str(f, "image");
			for (top = lo; top < hi && cr->idx[top].line != (size_t)made; top++)
				;
			top = top < hi ? top + 1 : hi;
		}
		for (size_t k = top; k-- > lo;) {
			json_t *l = cr->entries[cr->idx[k].line];
			json_t *f = json_object_get(l, "fact");
			const char *kind = str(l, "kind");
			int h, step;
			if (!l || !kind)
				continue;
			h = !strcmp(kind, "edit.human");
			step = h || !strcmp(kind, "polish.step");
			if (!step)
				continue;
			if (made >= 0 && !h) {
				if (!want || strcmp(str(f, "image") ?: "", want))
					continue; /* not a step of the chain */
				want = str(f, "from");
			} else if (h && want && !strcmp(str(f, "image") ?: "", want) &&
				   str(f, "from")) {
				want = str(f, "from"); /* an edit in the chain: on through its input */
			}
			human |= h;
			cr->edits[n++] = (struct kiln_c2pa_edit){ edit_text(l, h),
								  h ? NULL : "kiln polish",
								  str(l, "at") };
		}
		/* found newest first: log order */
		for (size_t a = 0, b = n; b > a + 1; a++, b--) {
			struct kiln_c2pa_edit t = cr->edits[a];
			cr->edits[a] = cr->edits[b - 1];
			cr->edits[b - 1] = t;
		}
	}
	if (made < 0)
		made = last;
	/* prompts: hashed: the prompt's text chunks go before signing (the XMP stays), and the
	 * history's last step is these bytes, from the store image: its entry, appended now
	 * (once: a release made again finds it), is the one dev.kiln.provenance names */
	if (cr->strip_prompts && (stripped = kiln_portfolio_strip_prompt_text(img)) < 0)
		stripped = 0;
	if (stripped) {
		int64_t k;
		sha_without_cabx(img, out_sha);
		if ((k = redacted(cr, lo, hi, out_sha)) < 0 &&
		    (rc = add_redacted(cr, item, out_sha, image_sha, stripped, &k, e)))
			return rc;
		made = k;
	}
	in.title = title;
	in.format = "image/png";
	in.source_type = compose ? KILN_C2PA_COMPOSITE_SYNTHETIC
			 : human ? KILN_C2PA_COMPOSITE_TRAINED : KILN_C2PA_TRAINED;
	in.edits = cr->edits;
	in.n_edits = n;
	in.token_id = (int64_t)item;
	in.log_index = made;
	if (made >= 0) {
		uint8_t r[32];
		const char *line = (size_t)made < cr->log.n ? cr->log.lines[made]
							     : cr->added[(size_t)made - cr->log.n];
		kiln_sha256_hex(line, strlen(line), entry_sha);
		if ((size_t)made < cr->log.n)
			kiln_merkle_tree_prefix_root(&cr->tree, (size_t)made + 1, r);
		else /* just appended: the last entry */
			frontier_root(cr, r);
		kiln_hex(r, 32, root);
		in.log_entry_sha256 = entry_sha;
		in.log_root = root;
		in.log_size = made + 1;
	}
	kiln_buf_init(&out, img->max);
	rc = kiln_portfolio_c2pa_sign_png_cached(cr->signer, cr->cache_dir, img->data, img->len,
						 stripped ? NULL : image_sha, &in, &out, e);
	if (rc) {
		char where[48];
		snprintf(where, sizeof where, "item %" PRIu64, item);
		kiln_error_prefix(e, "signing the C2PA manifest of %s", where);
		kiln_buf_release(&out);
		return rc;
	}
	kiln_buf_release(img);
	*img = out;
	return 0;
}
