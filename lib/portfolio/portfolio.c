/* portfolio: writes dist/portfolio/, the release's Provenance Portfolio (docs/portfolio.md):
 * the log and its signed checkpoint, an inclusion proof and a signed in-toto attestation per
 * token, the model and dataset records, an SPDX 3.0.1 document, the public keys, and a page a
 * collector reads without JavaScript.
 *
 * Invariants: only public key material is written (the keys folder's public key and, when the
 * studio has one, its C2PA root certificate); nothing here reads the clock except the release
 * entry's time, logged once per distinct release, so the same catalog gives the same bytes.
 * Prompts appear as text only with portfolio.prompts: public; the log itself holds only their
 * hashes. Sizes: per token a proof (~1 KB), a bundle (~3 KB), a table row; the log in memory. */
#include "kiln/catalog.h"
#include "kiln/plan.h"
#include "kiln/portfolio.h"
#include "kiln/recipe.h"
#include "kiln/spec.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/merkle.h"
#include "util/sha.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PRETTY (JSON_INDENT(2) | JSON_SORT_KEYS)

/* an index entry: a log line or a render fact, by item */
struct ix {
	uint64_t item;
	size_t i;                /* log seq, or index into pf.renders */
	json_t *j;               /* the parsed fact (raw renders: owned) */
};

static int cmp_ix(const void *a, const void *b)
{
	const struct ix *x = a, *y = b;
	if (x->item != y->item)
		return x->item < y->item ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

/* the first entry of item in v (sorted), or v + n */
static const struct ix *ix_first(const struct ix *v, size_t n, uint64_t item)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid].item < item)
			lo = mid + 1;
		else
			hi = mid;
	}
	return v + lo;
}

struct pf {
	const struct kiln_portfolio_in *in;
	struct kiln_keys keys;
	struct kiln_plog log;
	struct kiln_merkle_tree tree;
	json_t **entries;        /* parsed log lines */
	struct kiln_fact *renders, *models, *datasets;
	size_t nrenders, nmodels, ndatasets;
	json_t *model_recs;      /* [record] */
	struct kiln_recipe *recipe; /* the artist files' hashes (compose), or NULL */
	struct ix *by_item;      /* log entries with an item, by (item, seq) */
	size_t nby_item;
	struct ix *raw;          /* accepted renders (raw facts), by (item, id order) */
	size_t nraw;
	char *dir;               /* dist/portfolio */
	char *made[16];          /* the folders put() made */
	size_t nmade;
	char origin[400];
	char created[32];        /* the newest log entry's time: the documents' date */
	struct kiln_buf b;
};

static int nomem(struct kiln_error *e)
{
	return kiln_error_set(e, KILN_E_NOMEM, "portfolio", "out of memory");
}

static int put(struct pf *x, const char *rel, const void *data, size_t len, struct kiln_error *e)
{
	char *path = kiln_fs_join(x->dir, rel), *slash;
	size_t k;
	int rc = 0;
	if (!path)
		return nomem(e);
	slash = strrchr(path, '/');
	*slash = 0;
	/* a folder made for a file before is not made again (the few folders, each made once) */
	for (k = 0; k < x->nmade && strcmp(x->made[k], path); k++)
		;
	if (k == x->nmade && !(rc = kiln_fs_mkdirs(path, e)) &&
	    x->nmade < sizeof x->made / sizeof *x->made)
		if ((x->made[x->nmade] = kiln_strdup(path))) /* NULL: made again next time */
			x->nmade++;
	*slash = '/';
	if (!rc)
		rc = kiln_fs_write_atomic_sync(path, data, len, 0, e);
	if (!rc && x->in->wrote)
		rc = x->in->wrote(x->in->wrote_ctx, path, data, len, e);
	free(path);
	return rc;
}

static int put_json(struct pf *x, const char *rel, json_t *j, struct kiln_error *e)
{
	char *t = j ? json_dumps(j, PRETTY) : NULL;
	int rc;
	if (!t)
		return nomem(e);
	kiln_buf_reset(&x->b);
	rc = kiln_buf_adds(&x->b, t) || kiln_buf_add(&x->b, "\n", 1) ? nomem(e)
		: put(x, rel, x->b.data, x->b.len, e);
	free(t);
	return rc;
}

/* file name stem from a free-form name: [A-Za-z0-9._-], others '_' */
static void stem(const char *s, char *out, size_t cap)
{
	size_t i = 0;
	for (; *s && i + 1 < cap; s++)
		out[i++] = (char)((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
				  (*s >= '0' && *s <= '9') || *s == '.' || *s == '-' ? *s : '_');
	out[i] = 0;
	if (!i || out[0] == '.')
		snprintf(out, cap, "_%s", s);
}

/* The token's history: *seq its latest log entry that made image (a render, or a polish step
 * or human edit whose fact.image it is; with prompts: hashed, the prompt.redacted entry made
 * from it after that), or -1; and the accepted render its polish chain started from (the raw
 * catalog fact, a new reference), or NULL. */
static json_t *render_of(struct pf *x, uint64_t item, const char *image, int64_t *seq)
{
	const struct ix *first = ix_first(x->by_item, x->nby_item, item), *p;
	const struct ix *end = x->by_item + x->nby_item, *at = end;
	const char *img = image;
	json_t *best = NULL;
	size_t guard;
	*seq = -1;
	for (p = first; p < end && p->item == item; p++) {
		json_t *l = x->entries[p->i];
		const char *kind = json_string_value(json_object_get(l, "kind")) ?: "";
		json_t *f = json_object_get(l, "fact");
		if ((!strcmp(kind, "render") || !strcmp(kind, "polish.step") ||
		     !strcmp(kind, "edit.human")) &&
		    !strcmp(json_string_value(json_object_get(f, "image")) ?: "", image)) {
			*seq = (int64_t)p->i;
			at = p;
		/* prompts: hashed: the release removed the prompt's text from these bytes;
		 * the history ends in that entry (c2pa_release.c) */
		} else if (*seq >= 0 && x->in->prompts_hashed && !strcmp(kind, "prompt.redacted") &&
			   !strcmp(json_string_value(json_object_get(f, "from")) ?: "", image)) {
			*seq = (int64_t)p->i;
		}
	}
	/* back along the polish chain (each step's "from") to the render it started from */
	for (guard = 0; at < end && guard < x->nby_item; guard++) {
		json_t *f = json_object_get(x->entries[at->i], "fact");
		const char *kind = json_string_value(json_object_get(x->entries[at->i], "kind"));
		const char *from = json_string_value(json_object_get(f, "from"));
		if (!strcmp(kind ?: "", "render") || !from)
			break;
		img = from;
		for (p = at, at = end; p-- > first;)
			if (!strcmp(json_string_value(json_object_get(json_object_get(
					    x->entries[p->i], "fact"), "image")) ?: "", from)) {
				at = p;
				break;
			}
	}
	end = x->raw + x->nraw;
	for (p = ix_first(x->raw, x->nraw, item); p < end && p->item == item; p++)
		if (!strcmp(json_string_value(json_object_get(p->j, "image")) ?: "", img))
			best = p->j;
	return json_incref(best);
}

/* every string in v, into out */
static void strings(json_t *v, json_t *out)
{
	const char *k;
	json_t *x;
	size_t i;
	if (json_is_string(v))
		json_array_append(out, v);
	else if (json_is_object(v))
		json_object_foreach(v, k, x)
			strings(x, out);
	else if (json_is_array(v))
		json_array_foreach(v, i, x)
			strings(x, out);
}

/* does a model record match what a request or the server named? */
static int model_used(json_t *rec, json_t *strs)
{
	const char *name = json_string_value(json_object_get(rec, "name")) ?: "";
	const char *file = json_string_value(json_object_get(rec, "file")) ?: "";
	json_t *a = json_object_get(rec, "a1111");
	const char *h10 = json_string_value(json_object_get(a, "model_hash")) ?: "-";
	const char *h12 = json_string_value(json_object_get(a, "lora_hash")) ?: "-";
	size_t i, nl = strlen(name);
	json_t *s;
	char tag[300];
	snprintf(tag, sizeof tag, "<lora:%s:", name);
	json_array_foreach(strs, i, s) {
		const char *t = json_string_value(s);
		if (!strcmp(t, name) || !strcmp(t, file) || !strcmp(t, h10) || !strcmp(t, h12) ||
		    strstr(t, tag) || (!strncmp(t, name, nl) && (!strncmp(t + nl, " [", 2) ||
								 !strncmp(t + nl, ".", 1))))
			return 1;
	}
	return 0;
}

/* the registered files the render resolved by hash (ran.model_sha256 for the checkpoint,
 * ran.loras[].model_sha256), into out */
static void resolved_shas(json_t *ran, json_t *out)
{
	json_t *l, *h;
	size_t i;
	if (json_is_string(h = json_object_get(ran, "model_sha256")))
		json_array_append(out, h);
	json_array_foreach(json_object_get(ran, "loras"), i, l)
		if (json_is_string(h = json_object_get(l, "model_sha256")))
			json_array_append(out, h);
}

static int has_string(json_t *arr, const char *s)
{
	json_t *v;
	size_t i;
	json_array_foreach(arr, i, v)
		if (!strcmp(json_string_value(v), s))
			return 1;
	return 0;
}

/* Was rec a dependency of the render? The file the render resolved by hash is; another file
 * of the same name and kind is not (the server ran the one resolved); else what the request
 * or the server named (model_used). */
static int model_dep(json_t *recs, json_t *rec, json_t *resolved, json_t *strs)
{
	const char *name = json_string_value(json_object_get(rec, "name")) ?: "";
	const char *kind = json_string_value(json_object_get(rec, "kind")) ?: "";
	json_t *o;
	size_t i;
	if (has_string(resolved, json_string_value(json_object_get(rec, "sha256")) ?: ""))
		return 1;
	json_array_foreach(recs, i, o)
		if (o != rec &&
		    !strcmp(json_string_value(json_object_get(o, "name")) ?: "", name) &&
		    !strcmp(json_string_value(json_object_get(o, "kind")) ?: "", kind) &&
		    has_string(resolved, json_string_value(json_object_get(o, "sha256")) ?: ""))
			return 0;
	return model_used(rec, strs);
}

/* the token's in-toto Statement (SLSA provenance v1) as canonical JSON; caller frees */
static char *statement(struct pf *x, const struct kiln_portfolio_token *t, json_t *render,
		       int64_t seq, const char *meta_sha, struct kiln_error *e)
{
	json_t *st = NULL, *subj, *deps = json_array(), *ext, *req, *strs = json_array();
	json_t *resolved = json_array();
	char *out = NULL, nm[64], leaf[65];
	size_t i;
	json_t *rec;
	if (!deps || !strs || !resolved)
		goto out;
	subj = json_pack("[{s:s, s:{s:s}}]", "name", t->image_file, "digest", "sha256",
			 t->image_sha);
	if (subj && t->meta_file && meta_sha &&
	    json_array_append_new(subj, json_pack("{s:s, s:{s:s}}", "name", t->meta_file,
						  "digest", "sha256", meta_sha)))
		goto out;
	req = json_deep_copy(json_object_get(render, "request"));
	if (x->in->prompts_hashed && req) {
		/* the same commitments as the log's */
		json_t *tmp = json_pack("{s:O}", "request", req);
		json_decref(req);
		req = NULL;
		if (tmp) {
			const char *k;
			json_t *v;
			json_t *r = json_object_get(tmp, "request");
			json_object_foreach(r, k, v)
				if (json_is_string(v) && (!strcmp(k, "prompt") ||
							 !strcmp(k, "negative_prompt") ||
							 !strcmp(k, "negative"))) {
					char h[72];
					kiln_prompt_hash(json_string_value(v), h);
					json_object_set_new(r, k, json_string(h));
				}
			req = json_incref(r);
			json_decref(tmp);
		}
	}
	ext = json_pack("{s:I, s:o?, s:s, s:o, s:O?, s:I}", "token_id", (json_int_t)t->id, "traits",
			t->traits_json ? json_loads(t->traits_json, 0, NULL) : NULL, "engine",
			json_string_value(json_object_get(render, "engine")) ?: x->in->engine,
			"request", req ? req : json_null(), "endpoint",
			json_object_get(render, "endpoint"), "seed",
			(json_int_t)json_integer_value(json_object_get(render, "seed")));
	/* what it depended on: registered models the request or server named, ControlNet and
	 * other input files the request names by hash */
	strings(json_object_get(render, "request"), strs);
	strings(json_object_get(render, "ran"), strs);
	resolved_shas(json_object_get(render, "ran"), resolved);
	json_array_foreach(x->model_recs, i, rec)
		if (model_dep(x->model_recs, rec, resolved, strs)) {
			char uri[400];
			snprintf(uri, sizeof uri, "kiln:model/%s",
				 json_string_value(json_object_get(rec, "file")));
			if (json_array_append_new(deps, json_pack("{s:s, s:s, s:{s:s}}", "uri", uri,
								  "name", json_string_value(
									  json_object_get(rec, "name")),
								  "digest", "sha256",
								  json_string_value(json_object_get(
									  rec, "sha256")))))
				goto out;
		}
	{
		json_t *s;
		size_t n = 0;
		json_array_foreach(strs, i, s) {
			const char *v = json_string_value(s);
			if (!strncmp(v, "sha256:", 7) && strlen(v) == 71) {
				char uri[64];
				snprintf(uri, sizeof uri, "kiln:input/%zu", n++);
				json_array_append_new(deps, json_pack("{s:s, s:{s:s}}", "uri", uri,
								      "digest", "sha256", v + 7));
			}
		}
	}
	/* the artist files it was composited from (compose), as the recipe hashed them */
	if (x->recipe) {
		const struct kiln_spec *sp = x->in->spec;
		const struct kiln_error *fe;
		if (t->legendary >= 0 && (size_t)t->legendary < sp->nlegendaries) {
			const char *f = sp->legendaries[t->legendary].file;
			const char *h = f ? kiln_recipe_file_sha(x->recipe, 1, f, &fe) : NULL;
			if (h && json_array_append_new(deps, json_pack(
					 "{s:s, s:s, s:{s:s}}", "uri", f, "name",
					 sp->legendaries[t->legendary].name, "digest", "sha256", h)))
				goto out;
		} else if (t->traits) {
			for (size_t l = 0; l < sp->nlayers; l++) {
				const struct kiln_trait *tr;
				const char *h;
				char label[300];
				if (t->traits[l] == KILN_PLAN_UNSET ||
				    t->traits[l] >= sp->layers[l].ntraits)
					continue;
				tr = &sp->layers[l].traits[t->traits[l]];
				if (!tr->file || !(h = kiln_recipe_file_sha(x->recipe, 0, tr->file, &fe)))
					continue;
				snprintf(label, sizeof label, "%s: %s", sp->layers[l].name, tr->name);
				if (json_array_append_new(deps, json_pack("{s:s, s:s, s:{s:s}}", "uri",
									  tr->file, "name", label,
									  "digest", "sha256", h)))
					goto out;
			}
		}
	}
	kiln_hex(seq >= 0 ? x->log.leaves[seq] : (const uint8_t *)"", seq >= 0 ? 32 : 0, leaf);
	snprintf(nm, sizeof nm, "log/entries.jsonl#%" PRId64, seq);
	st = json_pack("{s:s, s:o, s:s, s:{s:{s:s, s:o, s:{s:s?}, s:o}, s:{s:{s:s}, s:{s:s, "
		       "s:s?, s:s?}, s:[{s:s, s:{s:s}}]}}}",
		       "_type", "https://in-toto.io/Statement/v1", "subject", subj, "predicateType",
		       "https://slsa.dev/provenance/v1", "predicate", "buildDefinition",
		       "buildType", "https://kiln.dev/portfolio/render/v1", "externalParameters",
		       ext, "internalParameters", "recipe",
		       json_string_value(json_object_get(render, "recipe")),
		       "resolvedDependencies", json_incref(deps), "runDetails", "builder", "id",
		       "https://kiln.dev/kiln@" KILN_VERSION, "metadata", "invocationId", nm,
		       "startedOn", NULL, "finishedOn", NULL, "byproducts", "name", nm, "digest",
		       "sha256", leaf);
	if (st)
		out = json_dumps(st, JSON_COMPACT | JSON_SORT_KEYS);
out:
	if (!out)
		nomem(e);
	json_decref(st);
	json_decref(deps);
	json_decref(strs);
	json_decref(resolved);
	return out;
}

static int html_esc(struct kiln_buf *b, const char *s)
{
	int rc = 0;
	for (; s && *s && !rc; s++) {
		switch (*s) {
		case '<': rc = kiln_buf_adds(b, "&lt;"); break;
		case '>': rc = kiln_buf_adds(b, "&gt;"); break;
		case '&': rc = kiln_buf_adds(b, "&amp;"); break;
		case '"': rc = kiln_buf_adds(b, "&quot;"); break;
		case '\'': rc = kiln_buf_adds(b, "&#39;"); break;
		default: rc = kiln_buf_add(b, s, 1);
		}
	}
	return rc;
}

#define H(s) (rc = rc || kiln_buf_adds(h, (s)))
#define E(s) (rc = rc || html_esc(h, (s)))

static int html_head(struct pf *x, struct kiln_buf *h, json_t *datasets)
{
	const struct kiln_portfolio_in *in = x->in;
	char n[64];
	int rc = 0;
	size_t i;
	json_t *r;
	H("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>");
	E(in->name);
	H(" \xe2\x80\x94 Provenance Portfolio</title>\n<style>body{font:15px/1.45 system-ui,"
	  "sans-serif;margin:2em auto;max-width:75em;padding:0 1em}table{border-collapse:collapse;"
	  "width:100%}td,th{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left;"
	  "vertical-align:top}code{font-size:85%;word-break:break-all}img{image-rendering:"
	  "pixelated}</style></head><body>\n<h1>");
	E(in->name);
	H(" \xe2\x80\x94 Provenance Portfolio</h1>\n<p>");
	E(in->description);
	H("</p>\n<h2>Methodology</h2>\n<p>Every token was planned by kiln from a declared "
	  "specification, rendered by the <code>");
	E(in->engine);
	H("</code> engine, checked by automated QA gates and released by the studio <b>");
	E(x->keys.studio);
	H("</b>. Each fact kiln recorded (datasets, models, renders with their parameters, QA, "
	  "human review and edits, the release) is an entry of an append-only log (<a href=\"log/"
	  "entries.jsonl\">entries.jsonl</a>), each line holding the SHA-256 of the one before. "
	  "The log is an RFC 6962 Merkle tree whose head is signed by the studio "
	  "(<a href=\"log/checkpoint\">checkpoint</a>); every token has an inclusion proof and a "
	  "signed in-toto/SLSA attestation (a Sigstore bundle) binding its image and metadata "
	  "bytes to how they were made. Prompts are ");
	H(in->prompts_hashed ? "published as SHA-256 commitments only (the studio can reveal a "
			       "prompt later: its hash is in the log)."
			     : "published in full; the log holds their SHA-256.");
	H("</p>\n<p>Provenance hash <code>");
	E(in->provenance_hash);
	H("</code>; log size ");
	snprintf(n, sizeof n, "%zu", x->log.n);
	H(n);
	H("; studio key: <a href=\"keys/signing-ed25519.pub\">Ed25519 public key</a>. How to "
	  "check all of it with openssl and npm tools: <code>docs/portfolio.md</code> of kiln."
	  "</p>\n<h2>Models</h2>\n<table><tr><th>name</th><th>kind</th><th>model hash</th>"
	  "<th>LoRA hash</th><th>licence</th><th>trained on</th></tr>\n");
	json_array_foreach(x->model_recs, i, r) {
		json_t *a = json_object_get(r, "a1111"), *t;
		size_t j;
		char st[200];
		stem(json_string_value(json_object_get(r, "name")) ?: "model", st, sizeof st);
		H("<tr><td><a href=\"models/");
		E(st);
		H(".json\">");
		E(json_string_value(json_object_get(r, "name")));
		H("</a></td><td>");
		E(json_string_value(json_object_get(r, "kind")));
		H("</td><td><code>");
		E(json_string_value(json_object_get(a, "model_hash")));
		H("</code></td><td><code>");
		E(json_string_value(json_object_get(a, "lora_hash")));
		H("</code></td><td>");
		E(json_string_value(json_object_get(r, "license")) ?: "not stated");
		H("</td><td>");
		json_array_foreach(json_object_get(r, "trained_on"), j, t) {
			E(j ? ", " : "");
			E(json_string_value(t));
		}
		H("</td></tr>\n");
	}
	H("</table>\n<h2>Training data</h2>\n<table><tr><th>dataset</th><th>files</th><th>licence"
	  "</th><th>source</th><th>Merkle root</th></tr>\n");
	json_array_foreach(datasets, i, r) {
		char st[200];
		stem(json_string_value(json_object_get(r, "name")) ?: "dataset", st, sizeof st);
		snprintf(n, sizeof n, "%lld",
			 (long long)json_integer_value(json_object_get(r, "files")));
		H("<tr><td><a href=\"datasets/");
		E(st);
		H(".json\">");
		E(json_string_value(json_object_get(r, "name")));
		H("</a></td><td>");
		H(n);
		H("</td><td>");
		E(json_string_value(json_object_get(r, "license")));
		H("</td><td>");
		E(json_string_value(json_object_get(r, "source")));
		H("</td><td><code>");
		E(json_string_value(json_object_get(r, "merkle_root")));
		H("</code></td></tr>\n");
	}
	H("</table>\n<h2>Tokens</h2>\n<table><tr><th>token</th><th>image</th><th>prompt</th>"
	  "<th>seed</th><th>models</th><th>history</th><th>proofs</th></tr>\n");
	return rc;
}

static int html_row(struct pf *x, struct kiln_buf *h, const struct kiln_portfolio_token *t,
		    json_t *render, const char *stmt, int64_t seq)
{
	json_t *req = json_object_get(render, "request"), *st = json_loads(stmt, 0, NULL), *d;
	const char *prompt = json_string_value(json_object_get(req, "prompt"));
	char n[64], ph[72];
	size_t i;
	int rc = 0;
	snprintf(n, sizeof n, "%" PRIu64, t->id);
	H("<tr id=\"t");
	H(n);
	H("\"><td>");
	H(n);
	H("</td><td><a href=\"../");
	E(t->image_file);
	H("\"><img src=\"../");
	E(t->thumb_file ? t->thumb_file : t->image_file);
	H("\" width=\"96\" alt=\"token ");
	H(n);
	H("\" loading=\"lazy\"></a></td><td>");
	if (prompt) {
		kiln_prompt_hash(prompt, ph);
		if (!x->in->prompts_hashed) {
			E(prompt);
			H("<br>");
		}
		H("<code>");
		E(ph);
		H("</code>");
	} else {
		E(t->traits_json);
	}
	H("</td><td>");
	snprintf(n, sizeof n, "%lld", (long long)json_integer_value(json_object_get(render, "seed")));
	H(n);
	H("</td><td>");
	json_array_foreach(json_object_get(json_object_get(json_object_get(st, "predicate"),
							   "buildDefinition"),
					   "resolvedDependencies"), i, d) {
		const char *nm = json_string_value(json_object_get(d, "name"));
		if (!nm)
			continue;
		E(nm);
		H(" <code>");
		{
			char s10[11];
			snprintf(s10, sizeof s10, "%.10s", json_string_value(json_object_get(
				json_object_get(d, "digest"), "sha256")) ?: "");
			H(s10);
		}
		H("</code><br>");
	}
	H("</td><td>");
	for (const struct ix *p = ix_first(x->by_item, x->nby_item, t->id);
	     p < x->by_item + x->nby_item && p->item == t->id; p++) {
		size_t j = p->i;
		json_t *l = x->entries[j];
		const char *k = json_string_value(json_object_get(l, "kind")) ?: "";
		if (strcmp(k, "render") && strcmp(k, "edit.human") && strcmp(k, "polish.step") &&
		    strcmp(k, "review.decision"))
			continue;
		snprintf(n, sizeof n, "#%zu ", j);
		H(n);
		E(k);
		H("<br>");
	}
	snprintf(n, sizeof n, "%" PRIu64, t->id);
	H("</td><td><a href=\"attestations/");
	H(n);
	H(".sigstore.json\">attestation</a><br><a href=\"log/proofs/");
	H(n);
	H(".json\">inclusion proof</a>");
	if (seq >= 0) {
		snprintf(n, sizeof n, " (entry %" PRId64 ")", seq);
		H(n);
	}
	H("</td></tr>\n");
	json_decref(st);
	return rc;
}

/* SPDX 3.0.1 JSON-LD: the collection, the models (AI profile), the datasets (Dataset
 * profile), trainedOn relationships, licences */
static json_t *sbom(struct pf *x, json_t *datasets)
{
	const struct kiln_portfolio_in *in = x->in;
	json_t *g = json_array(), *root = NULL, *el = json_array(), *r;
	char base[400], id[600], studio[600];
	size_t i, rel = 0;
	char sname[200];
	stem(in->name, sname, sizeof sname);
	snprintf(base, sizeof base, "https://kiln.dev/spdx/%s/%.16s", sname, in->provenance_hash);
	snprintf(studio, sizeof studio, "%s#studio", base);
#define ADD(o) do { json_t *o_ = (o); if (!o_ || json_array_append_new(g, o_)) goto fail; } while (0)
#define REL(from, type, to) do { \
		char rid[700]; snprintf(rid, sizeof rid, "%s#rel-%zu", base, rel++); \
		ADD(json_pack("{s:s, s:s, s:s, s:s, s:s, s:[s]}", "type", "Relationship", "spdxId", \
			      rid, "creationInfo", "_:creation", "from", (from), \
			      "relationshipType", (type), "to", (to))); \
		json_array_append_new(el, json_string(rid)); } while (0)
	if (!g || !el)
		goto fail;
	ADD(json_pack("{s:s, s:s, s:s, s:s, s:[s]}", "type", "CreationInfo", "@id", "_:creation",
		      "specVersion", "3.0.1", "created", x->created, "createdBy", studio));
	ADD(json_pack("{s:s, s:s, s:s, s:s}", "type", "Organization", "spdxId", studio,
		      "creationInfo", "_:creation", "name", x->keys.studio));
	snprintf(id, sizeof id, "%s#collection", base);
	ADD(json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:[s], s:[{s:s, s:s, s:s}]}", "type",
		      "software_Package", "spdxId", id, "creationInfo", "_:creation", "name",
		      in->name, "software_packageVersion", in->provenance_hash,
		      "software_downloadLocation", in->images_cid && *in->images_cid ? "ipfs" :
		      "NOASSERTION", "software_primaryPurpose", "data", "originatedBy", studio,
		      "verifiedUsing", "type", "Hash", "algorithm", "sha256", "hashValue",
		      in->provenance_hash));
	json_array_append_new(el, json_string(id));
	json_array_foreach(datasets, i, r) {
		char did[700], lid[700];
		const char *lic = json_string_value(json_object_get(r, "license")) ?: "NOASSERTION";
		stem(json_string_value(json_object_get(r, "name")) ?: "d", sname, sizeof sname);
		snprintf(did, sizeof did, "%s#dataset-%s", base, sname);
		snprintf(lid, sizeof lid, "%s#license-dataset-%s", base, sname);
		ADD(json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:[s], s:s, s:s, s:[s], s:I, "
			      "s:[{s:s, s:s, s:s}]}", "type", "dataset_DatasetPackage", "spdxId", did,
			      "creationInfo", "_:creation", "name",
			      json_string_value(json_object_get(r, "name")),
			      "software_downloadLocation",
			      json_string_value(json_object_get(r, "source")) ?: "NOASSERTION",
			      "software_primaryPurpose", "data", "software_packageVersion",
			      json_string_value(json_object_get(r, "merkle_root")), "originatedBy",
			      studio, "builtTime", x->created, "releaseTime", x->created,
			      "dataset_datasetType", "image", "dataset_datasetSize",
			      (json_int_t)json_integer_value(json_object_get(r, "bytes")),
			      "verifiedUsing", "type", "Hash", "algorithm", "other", "hashValue",
			      json_string_value(json_object_get(r, "merkle_root"))));
		ADD(json_pack("{s:s, s:s, s:s, s:s}", "type", "simplelicensing_LicenseExpression",
			      "spdxId", lid, "creationInfo", "_:creation",
			      "simplelicensing_licenseExpression", lic));
		json_array_append_new(el, json_string(did));
		json_array_append_new(el, json_string(lid));
		REL(did, "hasDeclaredLicense", lid);
		REL(did, "hasConcludedLicense", lid);
	}
	json_array_foreach(x->model_recs, i, r) {
		char mid[700], lid[700];
		const char *lic = json_string_value(json_object_get(r, "license")) ?: "NOASSERTION";
		json_t *t;
		size_t j;
		stem(json_string_value(json_object_get(r, "name")) ?: "m", sname, sizeof sname);
		snprintf(mid, sizeof mid, "%s#model-%s", base, sname);
		snprintf(lid, sizeof lid, "%s#license-model-%s", base, sname);
		ADD(json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:[s], s:s, s:[s], "
			      "s:[{s:s, s:s, s:s}]}", "type", "ai_AIPackage", "spdxId", mid,
			      "creationInfo", "_:creation", "name",
			      json_string_value(json_object_get(r, "name")),
			      "software_downloadLocation",
			      json_string_value(json_object_get(r, "source")) ?: "NOASSERTION",
			      "software_packageVersion",
			      json_string_value(json_object_get(json_object_get(r, "a1111"),
								 "model_hash")),
			      "software_primaryPurpose", "model", "suppliedBy", studio, "releaseTime",
			      x->created, "ai_typeOfModel",
			      json_string_value(json_object_get(r, "kind")), "verifiedUsing", "type",
			      "Hash", "algorithm", "sha256", "hashValue",
			      json_string_value(json_object_get(r, "sha256"))));
		ADD(json_pack("{s:s, s:s, s:s, s:s}", "type", "simplelicensing_LicenseExpression",
			      "spdxId", lid, "creationInfo", "_:creation",
			      "simplelicensing_licenseExpression", lic));
		json_array_append_new(el, json_string(mid));
		json_array_append_new(el, json_string(lid));
		REL(mid, "hasDeclaredLicense", lid);
		REL(mid, "hasConcludedLicense", lid);
		/* trainedOn: the studio's links, and kohya's ss_dataset_dirs naming a dataset */
		json_array_foreach(datasets, j, t) {
			const char *dn = json_string_value(json_object_get(t, "name")) ?: "";
			json_t *to, *meta = json_object_get(json_object_get(r, "safetensors"),
							    "metadata");
			const char *dirs = json_string_value(json_object_get(meta,
									     "ss_dataset_dirs"));
			json_t *dj = dirs ? json_loads(dirs, 0, NULL) : NULL;
			int linked = 0;
			size_t q;
			json_array_foreach(json_object_get(r, "trained_on"), q, to)
				if (!strcmp(json_string_value(to) ?: "", dn))
					linked = 1;
			{
				const char *k;
				json_t *v;
				json_object_foreach(dj, k, v) {
					const char *us = strchr(k, '_');
					if (!strcmp(k, dn) || (us && !strcmp(us + 1, dn)))
						linked = 1;
				}
			}
			json_decref(dj);
			if (linked) {
				char did[700], ds[200];
				stem(dn, ds, sizeof ds);
				snprintf(did, sizeof did, "%s#dataset-%s", base, ds);
				REL(mid, "trainedOn", did);
			}
		}
	}
	snprintf(id, sizeof id, "%s#document", base);
	root = json_pack("{s:s, s:[{s:s, s:s, s:s, s:s, s:s, s:[s], s:o, s:[s, s, s, s]}]}",
			 "@context", "https://spdx.org/rdf/3.0.1/spdx-context.jsonld", "@graph",
			 "type", "SpdxDocument", "spdxId", id, "creationInfo", "_:creation", "name",
			 in->name, "dataLicense", "CC0-1.0", "rootElement", base, "element",
			 json_incref(el), "profileConformance", "core", "software", "ai",
			 "dataset");
	if (!root)
		goto fail;
	/* rootElement: the collection */
	snprintf(id, sizeof id, "%s#collection", base);
	json_array_set_new(json_object_get(json_array_get(json_object_get(root, "@graph"), 0),
					   "rootElement"), 0, json_string(id));
	json_array_foreach(g, i, r)
		json_array_append(json_object_get(root, "@graph"), r);
	json_decref(g);
	json_decref(el);
	return root;
fail:
	json_decref(g);
	json_decref(el);
	json_decref(root);
	return NULL;
#undef ADD
#undef REL
}

static int write_all(struct pf *x, struct kiln_error *e)
{
	const struct kiln_portfolio_in *in = x->in;
	struct kiln_buf html = KILN_BUF_INIT, out = KILN_BUF_INIT;
	json_t *datasets = json_array(), *pj = NULL, *r, *tokens = json_array(), *prompts = NULL;
	uint8_t (*path)[32] = NULL;
	char rel[300], hex[65], stm[200];
	size_t i;
	int rc = 0;
	if (!datasets || !tokens || !(path = kiln_calloc(64, 32)) ||
	    !(prompts = json_object()))
		goto nomem;
	/* log/ */
	for (i = 0; i < x->log.n; i++)
		if (kiln_buf_adds(&out, x->log.lines[i]) || kiln_buf_add(&out, "\n", 1))
			goto nomem;
	if ((rc = put(x, "log/entries.jsonl", out.data ? out.data : "", out.len, e)))
		goto out;
	kiln_buf_reset(&out);
	if ((rc = kiln_checkpoint_sign(&x->keys, x->origin, x->log.n, x->log.root, &out, e)) ||
	    (rc = put(x, "log/checkpoint", out.data, out.len, e)))
		goto out;
	/* keys/: public parts only */
	if ((rc = put(x, "keys/signing-ed25519.pub", x->keys.pub_pem, strlen(x->keys.pub_pem), e)))
		goto out;
	{
		char *root = kiln_fs_join(in->keys_dir, "c2pa-root.pem");
		if (!root)
			goto nomem;
		if (kiln_fs_exists(root)) {
			kiln_buf_reset(&out);
			rc = kiln_fs_read_limited(root, &out, 1 << 20, 0, e);
			if (!rc)
				rc = put(x, "keys/c2pa-root.pem", out.data, out.len, e);
		}
		free(root);
		if (rc)
			goto out;
	}
	/* models/ and datasets/ */
	json_array_foreach(x->model_recs, i, r) {
		stem(json_string_value(json_object_get(r, "name")) ?: "model", stm, sizeof stm);
		snprintf(rel, sizeof rel, "models/%s.json", stm);
		if ((rc = put_json(x, rel, r, e)))
			goto out;
	}
	for (i = 0; i < x->ndatasets; i++) {
		json_t *d = json_loads(x->datasets[i].json, 0, NULL);
		if (!d)
			goto nomem;
		stem(json_string_value(json_object_get(d, "name")) ?: "dataset", stm, sizeof stm);
		snprintf(rel, sizeof rel, "datasets/%s.json", stm);
		rc = put_json(x, rel, d, e);
		json_object_del(d, "entries");
		json_array_append_new(datasets, d);
		if (rc)
			goto out;
	}
	if ((rc = html_head(x, &html, datasets)))
		goto nomem;
	/* per token: proof, attestation, page row */
	for (size_t t = 0; t < in->ntokens; t++) {
		const struct kiln_portfolio_token *tk = &in->tokens[t];
		int64_t seq;
		json_t *render = render_of(x, tk->id, tk->render_image, &seq), *proof;
		char meta_sha[65] = "", *stmt;
		size_t len = 0;
		if (!render)
			render = json_object();
		if (tk->meta_file) {
			char *mp = kiln_fs_join(in->dist, tk->meta_file);
			rc = mp ? kiln_sha256_file(mp, meta_sha, e) : nomem(e);
			free(mp);
			if (rc) {
				json_decref(render);
				goto out;
			}
		}
		if (seq >= 0)
			kiln_merkle_tree_path(&x->tree, (size_t)seq, path, &len);
		proof = json_pack("{s:I, s:s, s:I, s:I, s:s, s:[], s:s, s:s}", "token_id",
				  (json_int_t)tk->id, "log", "log/entries.jsonl", "log_index",
				  (json_int_t)seq, "tree_size", (json_int_t)x->log.n, "leaf_hash", "",
				  "hashes", "root_hash", "", "entry",
				  seq >= 0 ? x->log.lines[seq] : "");
		if (!proof) {
			json_decref(render);
			goto nomem;
		}
		if (seq >= 0) {
			kiln_hex(x->log.leaves[seq], 32, hex);
			json_object_set_new(proof, "leaf_hash", json_string(hex));
		}
		kiln_hex(x->log.root, 32, hex);
		json_object_set_new(proof, "root_hash", json_string(hex));
		for (i = 0; i < len; i++) {
			kiln_hex(path[i], 32, hex);
			json_array_append_new(json_object_get(proof, "hashes"), json_string(hex));
		}
		snprintf(rel, sizeof rel, "log/proofs/%" PRIu64 ".json", tk->id);
		rc = put_json(x, rel, proof, e);
		json_decref(proof);
		stmt = rc ? NULL : statement(x, tk, render, seq, meta_sha[0] ? meta_sha : NULL, e);
		if (!rc && !stmt)
			rc = KILN_E_NOMEM;
		if (!rc) {
			kiln_buf_reset(&out);
			snprintf(rel, sizeof rel, "attestations/%" PRIu64 ".sigstore.json", tk->id);
			if (!(rc = kiln_sigstore_bundle(&x->keys, stmt, strlen(stmt), &out, e)))
				rc = put(x, rel, out.data, out.len, e);
		}
		if (!rc && html_row(x, &html, tk, render, stmt, seq))
			rc = nomem(e);
		if (!rc) {
			const char *pr = json_string_value(json_object_get(
				json_object_get(render, "request"), "prompt"));
			char ph[72] = "";
			if (pr)
				kiln_prompt_hash(pr, ph);
			if (pr && !in->prompts_hashed)
				json_object_set_new(prompts, ph, json_string(pr));
			if (json_array_append_new(tokens, json_pack(
				    "{s:I, s:s, s:s, s:s?, s:s?, s:I, s:s, s:s}", "token_id",
				    (json_int_t)tk->id, "image", tk->image_file, "image_sha256",
				    tk->image_sha, "metadata", tk->meta_file, "prompt_sha256",
				    pr ? ph : NULL, "log_index", (json_int_t)seq, "attestation",
				    rel, "proof", "")))
				rc = nomem(e);
			else {
				char pp[64];
				snprintf(pp, sizeof pp, "log/proofs/%" PRIu64 ".json", tk->id);
				json_object_set_new(json_array_get(tokens, json_array_size(tokens) - 1),
						    "proof", json_string(pp));
			}
		}
		free(stmt);
		json_decref(render);
		if (rc)
			goto out;
	}
	if (kiln_buf_adds(&html, "</table>\n<p>Written by kiln " KILN_VERSION ".</p>\n"
			  "</body></html>\n"))
		goto nomem;
	if ((rc = put(x, "index.html", html.data, html.len, e)))
		goto out;
	if (!(r = sbom(x, datasets)))
		goto nomem;
	rc = put_json(x, "sbom.spdx.json", r, e);
	json_decref(r);
	if (rc)
		goto out;
	{
		char vkey[400];
		kiln_hex(x->log.root, 32, hex);
		if (kiln_note_vkey(x->keys.studio, x->keys.pub, vkey, sizeof vkey))
			goto nomem;
		pj = json_pack("{s:s, s:s, s:s?, s:s?, s:s, s:s, s:{s:s?, s:s?}, s:{s:I, s:s, s:s, "
			       "s:s, s:s}, s:{s:s, s:s, s:s, s:s, s:s?}, s:s, s:O, s:O, s:O}",
			       "kind", "kiln provenance portfolio", "collection", in->name, "symbol",
			       in->symbol, "description", in->description, "provenance_hash",
			       in->provenance_hash, "prompts",
			       in->prompts_hashed ? "hashed" : "public", "cids", "images",
			       in->images_cid && *in->images_cid ? in->images_cid : NULL,
			       "metadata",
			       in->metadata_cid && *in->metadata_cid ? in->metadata_cid : NULL,
			       "log", "size", (json_int_t)x->log.n, "root_sha256", hex, "origin",
			       x->origin, "entries", "log/entries.jsonl", "checkpoint",
			       "log/checkpoint", "keys", "studio", x->keys.studio, "ed25519_pem",
			       "keys/signing-ed25519.pub", "note_vkey", vkey, "key_hint",
			       x->keys.key_hint, "c2pa_root", NULL, "sbom", "sbom.spdx.json",
			       "models", x->model_recs, "datasets", datasets, "tokens", tokens);
		if (!pj || (!in->prompts_hashed && json_object_set(pj, "prompt_texts", prompts)))
			goto nomem;
	}
	rc = put_json(x, "portfolio.json", pj, e);
	goto out;
nomem:
	rc = nomem(e);
out:
	free(path);
	json_decref(pj);
	json_decref(datasets);
	json_decref(tokens);
	json_decref(prompts);
	kiln_buf_release(&html);
	kiln_buf_release(&out);
	return rc;
}

int kiln_portfolio_write(const struct kiln_portfolio_in *in, struct kiln_error *e)
{
	struct pf x;
	json_t *fact = NULL;
	char *ftext = NULL;
	int rc;
	memset(&x, 0, sizeof x);
	x.in = in;
	if ((rc = kiln_keys_load(in->keys_dir, 1, &x.keys, e)))
		return rc;
	if (!(x.dir = kiln_fs_join(in->dist, "portfolio")) || !(x.model_recs = json_array()))
		goto nomem;
	{
		char sn[200];
		stem(in->name, sn, sizeof sn);
		snprintf(x.origin, sizeof x.origin, "%s/%s", x.keys.studio, sn);
	}
	/* the release as a fact: what it published, every token's image bytes included */
	{
		struct kiln_sha256 h;
		char th[65];
		if (kiln_sha256_init(&h))
			goto nomem;
		for (size_t i = 0; i < in->ntokens; i++) {
			char line[128];
			snprintf(line, sizeof line, "%" PRIu64 " %s\n", in->tokens[i].id,
				 in->tokens[i].image_sha);
			kiln_sha256_update(&h, line, strlen(line));
		}
		kiln_sha256_final(&h, NULL, th);
		fact = json_pack("{s:s, s:s, s:s?, s:s?, s:I, s:s, s:s}", "collection", in->name,
				 "provenance_hash", in->provenance_hash, "images_cid",
				 in->images_cid && *in->images_cid ? in->images_cid : NULL,
				 "metadata_cid",
				 in->metadata_cid && *in->metadata_cid ? in->metadata_cid : NULL,
				 "tokens", (json_int_t)in->ntokens, "tokens_sha256", th, "prompts",
				 in->prompts_hashed ? "hashed" : "public");
		if (!fact || !(ftext = json_dumps(fact, JSON_COMPACT | JSON_SORT_KEYS)))
			goto nomem;
	}
	if ((rc = kiln_portfolio_log_sync(in->catalog, ftext, e)) ||
	    (rc = kiln_portfolio_log_load(in->catalog, &x.log, e)))
		goto out;
	if (kiln_merkle_tree_build(&x.tree, (const uint8_t(*)[32])x.log.leaves, x.log.n) ||
	    !(x.entries = kiln_calloc(x.log.n + 1, sizeof *x.entries)))
		goto nomem;
	for (size_t i = 0; i < x.log.n; i++)
		if (!(x.entries[i] = json_loads(x.log.lines[i], 0, NULL)))
			goto nomem;
	snprintf(x.created, sizeof x.created, "%s", x.log.n ?
		 json_string_value(json_object_get(x.entries[x.log.n - 1], "at")) ?: "" : "");
	if ((rc = kiln_catalog_facts(in->catalog, "render", 0, &x.renders, &x.nrenders, e)) ||
	    (rc = kiln_catalog_facts(in->catalog, "model", 0, &x.models, &x.nmodels, e)) ||
	    (rc = kiln_catalog_facts(in->catalog, "dataset", 0, &x.datasets, &x.ndatasets, e)))
		goto out;
	for (size_t i = 0; i < x.nmodels; i++)
		if (json_array_append_new(x.model_recs, json_loads(x.models[i].json, 0, NULL)))
			goto nomem;
	/* by item: log entries and accepted renders, so a token finds its own in log time */
	if (!(x.by_item = kiln_calloc(x.log.n + 1, sizeof *x.by_item)) ||
	    !(x.raw = kiln_calloc(x.nrenders + 1, sizeof *x.raw)))
		goto nomem;
	for (size_t i = 0; i < x.log.n; i++) {
		json_t *it = json_object_get(x.entries[i], "item");
		if (json_is_integer(it))
			x.by_item[x.nby_item++] = (struct ix){(uint64_t)json_integer_value(it), i,
							      x.entries[i]};
	}
	qsort(x.by_item, x.nby_item, sizeof *x.by_item, cmp_ix);
	for (size_t i = 0; i < x.nrenders; i++) {
		if (!(x.raw[i].j = json_loads(x.renders[i].json, 0, NULL)))
			goto nomem;
		x.raw[i].item = x.renders[i].item_id;
		x.raw[i].i = i;
		x.nraw = i + 1;
	}
	qsort(x.raw, x.nraw, sizeof *x.raw, cmp_ix);
	if (in->spec && in->spec->engine && !strcmp(in->spec->engine, "compose") &&
	    (rc = kiln_recipe_new(&x.recipe, in->spec, 0, e)))
		goto out;
	rc = write_all(&x, e);
	goto out;
nomem:
	rc = nomem(e);
out:
	for (size_t i = 0; x.entries && i < x.log.n; i++)
		json_decref(x.entries[i]);
	free(x.entries);
	kiln_merkle_tree_release(&x.tree);
	kiln_recipe_free(x.recipe);
	for (size_t i = 0; x.raw && i < x.nraw; i++)
		json_decref(x.raw[i].j);
	free(x.raw);
	free(x.by_item);
	kiln_plog_release(&x.log);
	kiln_facts_free(x.renders, x.nrenders);
	kiln_facts_free(x.models, x.nmodels);
	kiln_facts_free(x.datasets, x.ndatasets);
	json_decref(x.model_recs);
	json_decref(fact);
	free(ftext);
	free(x.dir);
	for (size_t k = 0; k < x.nmade; k++)
		free(x.made[k]);
	kiln_keys_release(&x.keys);
	kiln_buf_release(&x.b);
	return rc;
}

int kiln_portfolio_state(struct kiln_catalog *c, const char *keys_dir, char out[65],
			 struct kiln_error *e)
{
	static const char *const srcs[] = {"model", "dataset"};
	struct kiln_sha256 h;
	struct kiln_keys k;
	int rc = 0;
	if (kiln_sha256_init(&h))
		return nomem(e);
	for (size_t s = 0; s < 2 && !rc; s++) {
		struct kiln_fact *v = NULL;
		size_t n = 0;
		if (!(rc = kiln_catalog_facts(c, srcs[s], 0, &v, &n, e)))
			for (size_t i = 0; i < n; i++)
				kiln_sha256_update(&h, v[i].json, strlen(v[i].json) + 1);
		kiln_facts_free(v, n);
	}
	/* every fact the log would hold (logged or not; a review decision, edit or polish
	 * step made after a release makes the portfolio out of date) */
	if (!rc) {
		uint64_t n = 0;
		if (!(rc = kiln_portfolio_log_facts(c, &n, e)))
			kiln_sha256_update(&h, &n, sizeof n);
	}
	/* no keys yet: the release says so when it needs them */
	if (!rc && keys_dir && !kiln_keys_load(keys_dir, 0, &k, &(struct kiln_error){0})) {
		kiln_sha256_update(&h, k.pub, 32);
		kiln_sha256_update(&h, k.studio, strlen(k.studio));
		kiln_keys_release(&k);
	}
	if (rc) {
		kiln_sha256_abort(&h);
		return rc;
	}
	kiln_sha256_final(&h, NULL, out);
	return 0;
}
