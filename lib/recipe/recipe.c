/* recipe: what an item's output depends on, as one SHA-256. Render compares it with the recipe
 * of the item's accepted image to skip work; release compares the same to refuse a stale image.
 * Both call this module, and nothing else computes a recipe or reads the files it hashes.
 *
 *   compose   the text "compose/N\nsize WxH\n<format and encoder settings>\n" then per layer in
 *             z-order "layer L blend=B opacity=O file=<sha>" (or "layer L none"); a legendary
 *             "legendary file=<sha>" instead of the layers. Hashed.
 *   AI        the canonical request (compact JSON, sorted keys: prompt, negative, seed,
 *             sampler settings, LoRAs, ControlNet units with their images' SHA-256, the
 *             workflow's SHA-256, the stored format when not PNG). Hashed. A legendary: its
 *             file's SHA-256.
 *
 * Invariants: recipes are byte-for-byte what they were before this module existed (a change
 * re-renders every existing project): the texts above must not change unless the output does.
 * Every file is read once, at kiln_recipe_new(); the compose engine decodes only bytes whose
 * hash matches (kiln_recipe_file_sha). A recipe is complete or an error: a JSON entry that
 * could not be added (out of memory) fails the call, it is never left out.
 *
 * Sizes: tens to hundreds of layer files (65 bytes of hash each), a few ControlNet images
 * (each up to 64 MiB, kept only with KILN_RECIPE_DATA), a workflow up to 16 MiB; a recipe text
 * is under 4 KB.
 */
#include "kiln/recipe.h"
#include "kiln/plan.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/image.h"
#include "util/png.h"
#include "util/sha.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NO_FILE ((size_t)-1)

struct rfile {
	const char *rel;       /* as in kiln.yaml (owned by the spec) */
	char sha[65];          /* "" when the file could not be read: err says why */
	struct kiln_error err;
};

struct kiln_recipe {
	const struct kiln_spec *s;
	int ai;
	struct rfile *files;   /* compose: distinct layer files, sorted by rel */
	size_t nfiles;
	size_t *toff;          /* layer l's traits map to tfile[toff[l] + trait] */
	size_t *tfile;         /* index into files, or NO_FILE (none value, no file) */
	struct rfile *legs;    /* compose: one per legendary */
	size_t nlegs;
	struct kiln_ai_file *ai_files; /* AI: distinct ControlNet images */
	size_t nai_files;
	struct kiln_buf workflow;
	int has_workflow;
};

/* ---- inputs ---- */

static int cmp_rel(const void *a, const void *b)
{
	const char *const *x = a, *const *y = b;
	return strcmp(*x, *y);
}

static long find_file(const struct kiln_recipe *r, const char *rel)
{
	size_t lo = 0, hi = r->nfiles;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int d = strcmp(r->files[mid].rel, rel);
		if (d == 0)
			return (long)mid;
		if (d < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* Hash a compose input. A file that cannot be read is not fatal here: recipes that need it
 * fail with this message. Only out-of-memory fails. */
static int hash_file(struct rfile *f, const char *dir, const char *rel, const char *kind,
		     struct kiln_error *e)
{
	struct kiln_error he;
	char *path = kiln_fs_join(dir, rel);
	int rc;
	f->rel = rel;
	if (!path)
		return kiln_error_set(e, KILN_E_NOMEM, rel, "out of memory");
	kiln_error_clear(&he);
	rc = kiln_sha256_file(path, f->sha, &he);
	free(path);
	if (rc == KILN_E_NOMEM)
		return kiln_error_set(e, KILN_E_NOMEM, rel, "out of memory hashing the file");
	if (rc) {
		f->sha[0] = 0;
		kiln_error_set(&f->err, rc, rel, "cannot read the %s file (%s); check its path in "
			       "kiln.yaml (relative to %s)", kind, he.msg, dir && *dir ? dir : ".");
	}
	return 0;
}

static int compose_inputs(struct kiln_recipe *r, struct kiln_error *e)
{
	const struct kiln_spec *s = r->s;
	const char **rels = NULL;
	size_t ntraits = 0, nrels = 0;
	int rc = 0;
	for (size_t l = 0; l < s->nlayers; l++)
		ntraits += s->layers[l].ntraits;
	r->toff = kiln_calloc(s->nlayers + 1, sizeof *r->toff);
	r->tfile = kiln_calloc(ntraits + 1, sizeof *r->tfile);
	r->legs = kiln_calloc(s->nlegendaries + 1, sizeof *r->legs);
	rels = kiln_calloc(ntraits + 1, sizeof *rels);
	if (!r->toff || !r->tfile || !r->legs || !rels) {
		rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
		goto out;
	}
	for (size_t l = 0; l < s->nlayers; l++)
		for (size_t t = 0; t < s->layers[l].ntraits; t++) {
			const struct kiln_trait *tr = &s->layers[l].traits[t];
			if (!tr->is_none && tr->file)
				rels[nrels++] = tr->file;
		}
	qsort(rels, nrels, sizeof *rels, cmp_rel);
	if (!(r->files = kiln_calloc(nrels + 1, sizeof *r->files))) {
		rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nrels; i++) {
		if (r->nfiles && !strcmp(r->files[r->nfiles - 1].rel, rels[i]))
			continue;
		if ((rc = hash_file(&r->files[r->nfiles++], s->dir, rels[i], "layer", e)))
			goto out;
	}
	for (size_t l = 0, k = 0; l < s->nlayers; l++) {
		r->toff[l] = k;
		for (size_t t = 0; t < s->layers[l].ntraits; t++, k++) {
			const struct kiln_trait *tr = &s->layers[l].traits[t];
			r->tfile[k] = NO_FILE;
			if (!tr->is_none && tr->file)
				r->tfile[k] = (size_t)find_file(r, tr->file);
		}
	}
	for (size_t i = 0; i < s->nlegendaries; i++) {
		const struct kiln_legendary *lg = &s->legendaries[i];
		r->nlegs++;
		if (!lg->file) {
			r->legs[i].rel = lg->name;
			kiln_error_set(&r->legs[i].err, KILN_E_SPEC, lg->name,
				       "the legendary has no file; add file: to it in kiln.yaml");
			continue;
		}
		if ((rc = hash_file(&r->legs[i], s->dir, lg->file, "legendary", e)))
			goto out;
	}
out:
	free(rels);
	return rc;
}

/* Every ControlNet image the traits name (once per path), and the workflow's text. */
static int ai_inputs(struct kiln_recipe *r, unsigned flags, struct kiln_error *e)
{
	const struct kiln_spec *s = r->s;
	size_t n = 0;
	int rc;
	for (size_t l = 0; l < s->nlayers; l++)
		for (size_t t = 0; t < s->layers[l].ntraits; t++)
			n += s->layers[l].traits[t].controlnet != NULL;
	if (!(r->ai_files = kiln_calloc(n + 1, sizeof *r->ai_files)))
		return kiln_error_set(e, KILN_E_NOMEM, s->dir, "out of memory");
	for (size_t l = 0; l < s->nlayers; l++)
		for (size_t t = 0; t < s->layers[l].ntraits; t++) {
			const struct kiln_controlnet *cn = s->layers[l].traits[t].controlnet;
			struct kiln_ai_file *f = &r->ai_files[r->nai_files];
			struct kiln_buf b = KILN_BUF_INIT;
			char *path;
			size_t k;
			if (!cn)
				continue;
			for (k = 0; k < r->nai_files && strcmp(r->ai_files[k].path, cn->image); k++)
				;
			if (k < r->nai_files)
				continue;
			if (!(path = kiln_fs_join(s->dir, cn->image)))
				return kiln_error_set(e, KILN_E_NOMEM, s->dir, "out of memory");
			kiln_buf_init(&b, 64 << 20);
			/* it goes base64-encoded to a server: an image, checked before it is read */
			rc = kiln_image_check_input(path, "controlnet image", s->qa.max_pixels, e);
			if (!rc)
				rc = kiln_fs_read(path, &b, e);
			free(path);
			if (rc) {
				kiln_buf_release(&b);
				return rc;
			}
			f->path = cn->image;
			f->len = b.len;
			kiln_sha256_hex(b.data ? b.data : "", b.len, f->sha);
			if (flags & KILN_RECIPE_DATA)
				f->data = (unsigned char *)kiln_buf_detach(&b, NULL);
			kiln_buf_release(&b);
			r->nai_files++;
		}
	if (s->generate && s->generate->workflow) {
		char *path = kiln_fs_join(s->dir, s->generate->workflow);
		if (!path)
			return kiln_error_set(e, KILN_E_NOMEM, s->dir, "out of memory");
		kiln_buf_init(&r->workflow, 16 << 20);
		rc = kiln_fs_read(path, &r->workflow, e);
		free(path);
		if (rc)
			return rc;
		if (!r->workflow.data && (rc = kiln_buf_adds(&r->workflow, "")))
			return kiln_error_set(e, KILN_E_NOMEM, s->dir, "out of memory");
		r->has_workflow = 1;
	}
	return 0;
}

int kiln_recipe_new(struct kiln_recipe **out, const struct kiln_spec *s, unsigned flags,
		    struct kiln_error *e)
{
	struct kiln_recipe *r = kiln_calloc(1, sizeof *r);
	int rc;
	*out = NULL;
	if (!r)
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
	r->s = s;
	r->ai = s->engine && strcmp(s->engine, "compose") != 0;
	rc = r->ai ? ai_inputs(r, flags, e) : compose_inputs(r, e);
	if (rc) {
		kiln_recipe_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

void kiln_recipe_free(struct kiln_recipe *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nai_files; i++)
		free((void *)r->ai_files[i].data);
	free(r->ai_files);
	kiln_buf_release(&r->workflow);
	free(r->files);
	free(r->legs);
	free(r->toff);
	free(r->tfile);
	free(r);
}

const char *kiln_recipe_file_sha(const struct kiln_recipe *r, int legendary, const char *rel,
				 const struct kiln_error **err)
{
	const struct rfile *f = NULL;
	static const struct kiln_error none = {.code = KILN_E_STATE, .msg = "not an input"};
	if (legendary) {
		for (size_t i = 0; i < r->nlegs && !f; i++)
			if (r->legs[i].rel && !strcmp(r->legs[i].rel, rel))
				f = &r->legs[i];
	} else {
		long i = r->files ? find_file(r, rel) : -1;
		f = i >= 0 ? &r->files[i] : NULL;
	}
	if (!f) {
		*err = &none;
		return NULL;
	}
	*err = &f->err;
	return f->sha[0] ? f->sha : NULL;
}

void kiln_recipe_file_bytes(const void *data, size_t len, char hex[65])
{
	kiln_sha256_hex(len ? data : "", len, hex);
}

/* ---- compose ---- */

/* Our own names: recipe text must not change if the spec module renames things. */
static const char *blend_recipe_name(enum kiln_blend b)
{
	static const char *const n[] = {
		[KILN_BLEND_OVER] = "over", [KILN_BLEND_MULTIPLY] = "multiply",
		[KILN_BLEND_SCREEN] = "screen", [KILN_BLEND_OVERLAY] = "overlay",
		[KILN_BLEND_DARKEN] = "darken", [KILN_BLEND_LIGHTEN] = "lighten",
		[KILN_BLEND_ADD] = "add", [KILN_BLEND_SOFT_LIGHT] = "soft-light",
		[KILN_BLEND_HARD_LIGHT] = "hard-light", [KILN_BLEND_DIFFERENCE] = "difference",
	};
	if ((unsigned)b >= sizeof n / sizeof n[0] || !n[b])
		return "over";
	return n[b];
}

static int format_recipe(const struct kiln_spec *s, struct kiln_buf *r)
{
	int rc = kiln_buf_addf(r, "%s\nsize %dx%d\n", KILN_RECIPE_COMPOSE_VERSION, s->width,
			       s->height);
	if (rc)
		return rc;
	if (s->pixelate > 1 && (rc = kiln_buf_addf(r, "pixelate %d centre\n", s->pixelate)))
		return rc;
	if (s->scale > 1 && (rc = kiln_buf_addf(r, "scale %d nearest\n", s->scale)))
		return rc;
	switch (s->format) {
	case KILN_FORMAT_WEBP:
		return kiln_buf_addf(r, "format webp quality=%d lossless=%d effort=%d strip=1 "
				     "smart_subsample=0 near_lossless=0 alpha_q=100 min_size=0 "
				     "mixed=0 dpi=72\n", s->quality, s->lossless ? 1 : 0,
				     KILN_RECIPE_WEBP_EFFORT);
	case KILN_FORMAT_JPEG:
		return kiln_buf_addf(r, "format jpeg quality=%d background=255,255,255 "
				     "optimize_coding=1 interlace=0 subsample=auto trellis=0 "
				     "overshoot=0 optimize_scans=0 quant_table=0 strip=1 dpi=72\n",
				     s->quality);
	case KILN_FORMAT_PNG:
	default:
		if (s->png_palette)
			return kiln_buf_addf(r, "format png writer=kiln deflate=libdeflate level=%d "
					     "filter=none palette=%d dither=%d liq_speed=%d "
					     "interlace=0 bitdepth=8 strip=1 dpi=72\n",
					     s->png_compression,
					     s->png_colors ? s->png_colors : 256, s->png_dither ? 1 : 0,
					     KILN_RECIPE_LIQ_SPEED);
		return kiln_buf_addf(r, "format png writer=kiln deflate=libdeflate level=%d "
				     "filter=%s alpha=%s palette=0 interlace=0 bitdepth=8 strip=1 "
				     "dpi=72\n", s->png_compression,
				     kiln_png_filter_name((enum kiln_png_filter)s->png_filter),
				     s->png_keep_alpha ? "keep" : "auto");
	}
}

static int finish_recipe(struct kiln_buf *r, char hex[65], struct kiln_error *e)
{
	if (!r->data)
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
	kiln_sha256_hex(r->data, r->len, hex);
	return 0;
}

static int not_compose(const struct kiln_recipe *r, struct kiln_error *e)
{
	return kiln_error_set(e, KILN_E_STATE, r->s->path, "engine '%s' makes no compose recipes",
			      r->s->engine);
}

int kiln_recipe_compose(struct kiln_recipe *r, const uint32_t *traits, char hex[65],
			struct kiln_error *e)
{
	const struct kiln_spec *s = r->s;
	struct kiln_buf b = KILN_BUF_INIT;
	int rc;
	if (r->ai)
		return not_compose(r, e);
	if (format_recipe(s, &b)) {
		rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
		goto out;
	}
	for (size_t l = 0; l < s->nlayers; l++) {
		const struct kiln_layer *ly = &s->layers[l];
		size_t fi;
		if (traits[l] >= ly->ntraits) {
			rc = kiln_error_set(e, KILN_E_STATE, ly->name, "trait index %u is out of "
					    "range (the layer has %zu values); the plan does not "
					    "match kiln.yaml", (unsigned)traits[l], ly->ntraits);
			kiln_error_hint(e, KILN_HINT_PLAN, NULL);
			goto out;
		}
		fi = ly->opacity > 0 ? r->tfile[r->toff[l] + traits[l]] : NO_FILE;
		if (fi == NO_FILE) {
			rc = kiln_buf_addf(&b, "layer %zu none\n", l);
		} else {
			const struct rfile *f = &r->files[fi];
			if (!f->sha[0]) {
				/* not hashed (missing); decode failures have a hash and still count */
				*e = f->err;
				rc = f->err.code;
				goto out;
			}
			rc = kiln_buf_addf(&b, "layer %zu blend=%s opacity=%.17g file=%s\n", l,
					   blend_recipe_name(ly->blend),
					   ly->opacity < 1 ? ly->opacity : 1.0, f->sha);
		}
		if (rc) {
			rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
			goto out;
		}
	}
	rc = finish_recipe(&b, hex, e);
out:
	kiln_buf_release(&b);
	return rc;
}

int kiln_recipe_compose_legendary(struct kiln_recipe *r, size_t legendary, char hex[65],
				  struct kiln_error *e)
{
	struct kiln_buf b = KILN_BUF_INIT;
	const struct rfile *f;
	int rc;
	if (r->ai)
		return not_compose(r, e);
	if (legendary >= r->s->nlegendaries || legendary >= r->nlegs) {
		rc = kiln_error_set(e, KILN_E_STATE, NULL, "legendary %zu does not exist (%zu in "
				    "kiln.yaml)", legendary, r->s->nlegendaries);
		return kiln_error_hint(e, KILN_HINT_PLAN, NULL);
	}
	f = &r->legs[legendary];
	if (!f->sha[0]) {
		*e = f->err;
		return f->err.code;
	}
	rc = format_recipe(r->s, &b);
	if (!rc)
		rc = kiln_buf_addf(&b, "legendary file=%s\n", f->sha);
	if (rc) {
		rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
		goto out;
	}
	rc = finish_recipe(&b, hex, e);
out:
	kiln_buf_release(&b);
	return rc;
}

/* ---- AI requests ---- */

static int add_text(struct kiln_buf *b, const char *s)
{
	return kiln_buf_adds(b, s ? s : "");
}

/* Fill the template: {Layer} -> the chosen trait's prompt (or name; "" for the none value),
 * {id}, {name}. Then tidy the comma list: empty parts (a none value) are dropped. */
static int fill_template(const struct kiln_spec *s, const struct kiln_item *it,
			 const char *tmpl, char **out)
{
	struct kiln_buf raw = KILN_BUF_INIT, tidy = KILN_BUF_INIT;
	const char *p = tmpl ? tmpl : "";
	int rc = 0;
	while (!rc && *p) {
		const char *q = strchr(p, '{'), *end;
		if (!q) {
			rc = add_text(&raw, p);
			break;
		}
		if ((rc = kiln_buf_add(&raw, p, (size_t)(q - p))))
			break;
		end = strchr(q, '}');
		if (!end) {
			rc = add_text(&raw, q);
			break;
		}
		{
			char name[256];
			size_t n = (size_t)(end - q - 1);
			long l;
			if (n >= sizeof name)
				n = sizeof name - 1;
			memcpy(name, q + 1, n);
			name[n] = 0;
			if (!strcmp(name, "id"))
				rc = kiln_buf_addf(&raw, "%llu", (unsigned long long)it->id);
			else if (!strcmp(name, "name"))
				rc = add_text(&raw, s->name);
			else if ((l = kiln_spec_layer_index(s, name)) >= 0 && it->traits &&
				 it->traits[l] < s->layers[l].ntraits) {
				const struct kiln_trait *t = &s->layers[l].traits[it->traits[l]];
				if (!t->is_none)
					rc = add_text(&raw, t->prompt ? t->prompt : t->name);
			}
		}
		p = end + 1;
	}
	/* ", ," and leading/trailing commas from empty parts */
	for (const char *x = raw.data ? raw.data : ""; !rc && *x;) {
		const char *c = strchr(x, ',');
		size_t n = c ? (size_t)(c - x) : strlen(x);
		const char *a = x, *b = x + n;
		while (a < b && (*a == ' ' || *a == '\t' || *a == '\n'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\n'))
			b--;
		if (b > a) {
			if (tidy.len)
				rc = kiln_buf_adds(&tidy, ", ");
			if (!rc)
				rc = kiln_buf_add(&tidy, a, (size_t)(b - a));
		}
		x = c ? c + 1 : x + n;
	}
	kiln_buf_release(&raw);
	if (!rc && !tidy.data)
		rc = kiln_buf_adds(&tidy, "");
	if (rc) {
		kiln_buf_release(&tidy);
		return rc;
	}
	*out = kiln_buf_detach(&tidy, NULL);
	return *out ? 0 : KILN_E_NOMEM;
}

/* The stored format and its encoder settings, for recipes: "" for PNG (the server's bytes
 * plus the disclosure chunks), else what makes kiln_image_encode's bytes. */
static void stored_format(const struct kiln_spec *s, char *out, size_t cap)
{
	if (s->format == KILN_FORMAT_PNG)
		out[0] = 0;
	else
		snprintf(out, cap, "%s q%d%s", kiln_format_ext(s->format), s->quality,
			 s->format == KILN_FORMAT_WEBP && s->lossless ? " lossless" : "");
}

int kiln_recipe_ai_build(const struct kiln_spec *s, const struct kiln_item *it,
			 unsigned candidate, const struct kiln_ai_file *files, size_t nfiles,
			 const char *workflow, struct kiln_ai_request *rq, struct kiln_error *e)
{
	const struct kiln_generate *g = s->generate;
	struct kiln_buf neg = KILN_BUF_INIT, canon = KILN_BUF_INIT;
	size_t nl = 0, nc = 0;
	char where[64];
	int rc = 0;
	memset(rq, 0, sizeof *rq);
	snprintf(where, sizeof where, "item %llu", (unsigned long long)it->id);
	if (!g)
		return kiln_error_set(e, KILN_E_SPEC, s->path, "no generate: block");
	rq->item_id = it->id;
	rq->candidate = candidate;
	/* a token sent back by review for new seeds (seed round n > 0) gets seeds past every
	 * earlier round's: candidate k of round n asks for item seed + n * candidates + k; a
	 * "same seed" round keeps them (its note changes the prompt) */
	rq->seed = ((it->seed & 0xffffffffull) + (uint64_t)it->seed_round * g->candidates +
		    candidate) & 0xffffffffull;
	rq->checkpoint = g->checkpoint;
	rq->sampler = g->sampler;
	rq->scheduler = g->scheduler;
	rq->steps = g->steps;
	rq->cfg = g->cfg;
	rq->width = g->width;
	rq->height = g->height;
	rq->workflow = workflow;
	stored_format(s, rq->format, sizeof rq->format);
	for (size_t l = 0; l < s->nlayers; l++) {
		uint32_t t = it->traits ? it->traits[l] : KILN_PLAN_UNSET;
		if (t == KILN_PLAN_UNSET || t >= s->layers[l].ntraits) {
			kiln_error_set(e, KILN_E_STATE, where, "layer '%s' has no value in the plan "
				       "(the spec changed)", s->layers[l].name);
			return kiln_error_hint(e, KILN_HINT_PLAN, NULL);
		}
		nl += s->layers[l].traits[t].nloras;
		nc += s->layers[l].traits[t].controlnet != NULL;
	}
	rq->loras = kiln_calloc(nl + 1, sizeof *rq->loras);
	rq->controls = kiln_calloc(nc + 1, sizeof *rq->controls);
	if (!rq->loras || !rq->controls)
		goto nomem;
	if (fill_template(s, it, g->prompt, &rq->prompt))
		goto nomem;
	/* review: the reviewers' notes asked to be added to the prompt */
	if (it->prompt_add && it->prompt_add[0]) {
		size_t n = strlen(rq->prompt) + strlen(it->prompt_add) + 3;
		char *p = kiln_malloc(n);
		if (!p)
			goto nomem;
		snprintf(p, n, "%s, %s", rq->prompt, it->prompt_add);
		free(rq->prompt);
		rq->prompt = p;
	}
	{
		char *base = NULL;
		if (fill_template(s, it, g->negative, &base))
			goto nomem;
		rc = kiln_buf_adds(&neg, base);
		free(base);
		if (rc)
			goto nomem;
	}
	for (size_t l = 0; l < s->nlayers; l++) {
		const struct kiln_trait *t = &s->layers[l].traits[it->traits[l]];
		if (t->negative && t->negative[0] &&
		    kiln_buf_addf(&neg, "%s%s", neg.len ? ", " : "", t->negative))
			goto nomem;
		for (size_t i = 0; i < t->nloras; i++)
			rq->loras[rq->nloras++] = t->loras[i];
		if (t->controlnet) {
			struct kiln_ai_control *c = &rq->controls[rq->ncontrols++];
			c->cn = t->controlnet;
			for (size_t f = 0; f < nfiles; f++)
				if (!strcmp(files[f].path, t->controlnet->image))
					c->image = &files[f];
			if (!c->image) {
				rc = kiln_error_set(e, KILN_E_STATE, where, "controlnet image '%s' was "
						    "not loaded", t->controlnet->image);
				goto out;
			}
		}
	}
	if (!neg.data && kiln_buf_adds(&neg, ""))
		goto nomem;
	if (!(rq->negative = kiln_buf_detach(&neg, NULL)))
		goto nomem;
	if (kiln_recipe_ai_canonical(rq, &canon))
		goto nomem;
	kiln_sha256_hex(canon.data, canon.len, rq->recipe);
	rc = 0;
	goto out;
nomem:
	rc = kiln_error_set(e, KILN_E_NOMEM, where, "out of memory building the request");
out:
	kiln_buf_release(&neg);
	kiln_buf_release(&canon);
	if (rc)
		kiln_recipe_ai_release(rq);
	return rc;
}

void kiln_recipe_ai_release(struct kiln_ai_request *rq)
{
	free(rq->prompt);
	free(rq->negative);
	free(rq->loras);
	free(rq->controls);
	free(rq->owned);
	rq->owned = NULL;
	rq->prompt = rq->negative = NULL;
	rq->loras = NULL;
	rq->controls = NULL;
}

int kiln_recipe_ai_canonical(const struct kiln_ai_request *rq, struct kiln_buf *out)
{
	json_t *o = NULL, *loras = json_array(), *cns = json_array();
	size_t n;
	int rc = KILN_E_NOMEM;
	char wf[65] = "";
	if (!loras || !cns)
		goto out;
	if (rq->workflow)
		kiln_sha256_hex(rq->workflow, strlen(rq->workflow), wf);
	/* json_array_append_new takes the value even when it fails: a NULL from json_pack, or
	 * an append that could not grow the array, is an error, never an entry left out */
	for (size_t i = 0; i < rq->nloras; i++)
		if (json_array_append_new(loras, json_pack("[s, f]", rq->loras[i].name,
							   rq->loras[i].weight)))
			goto out;
	for (size_t i = 0; i < rq->ncontrols; i++) {
		const struct kiln_controlnet *cn = rq->controls[i].cn;
		if (json_array_append_new(cns, json_pack("{s:s, s:s, s:s, s:f, s:s, s:f, s:f}",
			"image", rq->controls[i].image->sha, "model", cn->model, "module",
			cn->module, "weight", cn->weight, "control_mode", cn->control_mode,
			"guidance_start", cn->guidance_start, "guidance_end", cn->guidance_end)))
			goto out;
	}
	/* "O": the arrays stay ours whether json_pack succeeds or not */
	o = json_pack("{s:s, s:s, s:s, s:I, s:i, s:f, s:i, s:i, s:s, s:s?, s:s?, s:O, s:O, s:s?, "
		      "s:s?}", "kiln_ai", "1", "prompt", rq->prompt, "negative", rq->negative,
		      "seed", (json_int_t)rq->seed, "steps", rq->steps, "cfg", rq->cfg,
		      "width", rq->width, "height", rq->height, "sampler", rq->sampler,
		      "scheduler", rq->scheduler, "checkpoint", rq->checkpoint,
		      "loras", loras, "controlnet", cns, "workflow", wf[0] ? wf : NULL,
		      "format", rq->format[0] ? rq->format : NULL);
	if (!o)
		goto out;
	/* json_dumpb into a buffer sized first, not json_dumps: jansson ignores a failed
	 * append while it writes an object key into its growing buffer, which would drop the
	 * key from the text; writing into memory that is already there cannot fail */
	if (!(n = json_dumpb(o, NULL, 0, JSON_COMPACT | JSON_SORT_KEYS)))
		goto out;
	if (kiln_buf_grow(out, n + 1))
		goto out;
	if (json_dumpb(o, out->data + out->len, n, JSON_COMPACT | JSON_SORT_KEYS) != n)
		goto out;
	out->len += n;
	out->data[out->len] = 0;
	rc = 0;
out:
	json_decref(o);
	json_decref(loras);
	json_decref(cns);
	return rc;
}

const struct kiln_ai_file *kiln_recipe_ai_files(const struct kiln_recipe *r, size_t *n)
{
	*n = r->nai_files;
	return r->ai_files;
}

const char *kiln_recipe_ai_workflow(const struct kiln_recipe *r)
{
	return r->has_workflow ? r->workflow.data : NULL;
}

int kiln_recipe_ai_request(const struct kiln_recipe *r, const struct kiln_item *it,
			   unsigned candidate, struct kiln_ai_request *rq, struct kiln_error *e)
{
	return kiln_recipe_ai_build(r->s, it, candidate, r->ai_files, r->nai_files,
				    kiln_recipe_ai_workflow(r), rq, e);
}

/* ---- any item ---- */

int kiln_recipe_item(struct kiln_recipe *r, const struct kiln_item *it, unsigned candidate,
		     char hex[65], struct kiln_error *e)
{
	const struct kiln_spec *s = r->s;
	struct kiln_ai_request rq;
	char where[64];
	int rc;
	snprintf(where, sizeof where, "item %llu", (unsigned long long)it->id);
	if (!r->ai) {
		if (it->legendary >= 0)
			return kiln_recipe_compose_legendary(r, (size_t)it->legendary, hex, e);
		if (!it->traits)
			return kiln_error_set(e, KILN_E_STATE, where, "the item has no traits");
		return kiln_recipe_compose(r, it->traits, hex, e);
	}
	if (it->legendary >= 0) {
		const struct kiln_legendary *lg;
		char *path;
		if ((size_t)it->legendary >= s->nlegendaries)
			return kiln_error_set(e, KILN_E_STATE, where, "legendary %ld does not exist",
					      it->legendary);
		lg = &s->legendaries[it->legendary];
		if (!lg->file)
			return kiln_error_set(e, KILN_E_SPEC, lg->name, "the legendary has no file; "
					      "add file: to it in kiln.yaml");
		if (!(path = kiln_fs_join(s->dir, lg->file)))
			return kiln_error_set(e, KILN_E_NOMEM, where, "out of memory");
		rc = kiln_sha256_file(path, hex, e);
		free(path);
		return rc;
	}
	if (it->legendary_name)
		return kiln_error_set(e, KILN_E_STATE, where, "legendary '%s' is no longer in "
				      "kiln.yaml", it->legendary_name);
	if ((rc = kiln_recipe_ai_request(r, it, candidate, &rq, e)))
		return rc;
	memcpy(hex, rq.recipe, 65);
	kiln_recipe_ai_release(&rq);
	return 0;
}
