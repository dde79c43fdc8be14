/* polish.c: the polish stage (kiln/polish.h, README.md here).
 *
 * For each rendered token the chain is walked from its render: before each spec step that
 * applies to the token (and at the end), the token's imported edits whose input is the
 * current image are put back in their place; each spec step's recipe (kind, settings, PNG
 * options, input SHA-256) is looked up among the token's recorded steps, and made only when
 * none has it (or its output left the store). An edit whose input is no longer the image at
 * any point of the chain (the render or the steps before it changed) fails the token: a
 * person's work is never dropped or moved onto another image silently.
 *
 * The main thread walks every token without making anything first: a token whose walk finds
 * every step and gives the chain it has is skipped; one whose chain only lost or reordered
 * steps is recorded at once; the others go to worker threads, which make the missing steps,
 * put their outputs in the store, and hand the new chain back. The main thread alone writes
 * the catalog, up to 64 tokens a transaction, after syncing the store: a kill -9 loses only
 * the tokens under way.
 */
#include "kiln/polish.h"
#include "polish/ops.h"
#include "kiln/catalog.h"
#include "kiln/render.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/fs.h"
#include "util/png.h"
#include "util/pool.h"
#include "util/sha.h"

#include <jansson.h>
#include <potracelib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

/* A step as held here (strings owned). */
struct step {
	char *kind, *settings, *by, *tool, *note, *at;
	char recipe[65], input[65], output[65];
	uint64_t bytes;
	int image;
};

struct chain {
	struct step *v;
	size_t n, cap;
};

/* A spec op, ready: its settings JSON and, for an overlay, its file and that file's hash. */
struct op {
	const struct kiln_polish_op *o;
	char *settings;
	char *path;               /* overlay: the layer's full path */
	char tool[96];
};

struct job {
	size_t item;
	struct chain out;
	uint64_t made;
	int ok;
	int stale;                /* failed on an edit made on another image */
	char *error;
};

struct run {
	struct kiln_project *p;
	struct kiln_items *items;
	struct chain *old;        /* per item */
	struct op *ops;
	size_t nops;
	struct kiln_png_opts po;
	uint64_t max_pixels;
	int ai;                   /* an AI engine: generated tokens' PNGs carry the disclosure */
	struct job *jobs;
	size_t njobs;
	size_t *done_order;       /* job indexes in completion order (util/pool.h) */
	const struct kiln_polish_opts *o;
	struct kiln_polish_result *res;
	uint64_t failed;
	double t0;
	/* steps made on the main thread before the workers start (engine steps, and the local
	 * steps before them): found by recipe like recorded ones; read-only for the workers */
	struct made *made;
	size_t nmade, capmade;
	/* engine steps the pre-pass found missing (one per recipe) */
	struct need *need;
	size_t nneed, capneed;
	uint64_t engine_made;     /* engine steps made by the servers in this run */
};

struct made {
	struct step s;
	char *error;              /* the engine job failed: the token fails with this */
};

struct need {
	size_t item, op;
	char recipe[65], input[65];
	int xmp;
};

static int is_human(const char *kind)
{
	return !strcmp(kind, "edit") || !strcmp(kind, "inpaint");
}

static void step_free(struct step *s)
{
	free(s->kind);
	free(s->settings);
	free(s->by);
	free(s->tool);
	free(s->note);
	free(s->at);
}

static void chain_release(struct chain *c)
{
	for (size_t i = 0; i < c->n; i++)
		step_free(&c->v[i]);
	free(c->v);
	memset(c, 0, sizeof *c);
}

static int dup_opt(const char *s, char **out)
{
	*out = NULL;
	return s && !(*out = kiln_strdup(s));
}

/* Append a copy of s to c. */
static int chain_add(struct chain *c, const struct step *s)
{
	struct step *d;
	if (c->n == c->cap) {
		size_t nc = c->cap ? c->cap * 2 : 4;
		struct step *t = kiln_realloc(c->v, nc * sizeof *t);
		if (!t)
			return -1;
		c->v = t;
		c->cap = nc;
	}
	d = &c->v[c->n];
	memset(d, 0, sizeof *d);
	memcpy(d->recipe, s->recipe, 65);
	memcpy(d->input, s->input, 65);
	memcpy(d->output, s->output, 65);
	d->bytes = s->bytes;
	d->image = s->image;
	c->n++;
	if (dup_opt(s->kind, &d->kind) || dup_opt(s->settings, &d->settings) ||
	    dup_opt(s->by, &d->by) || dup_opt(s->tool, &d->tool) || dup_opt(s->note, &d->note) ||
	    dup_opt(s->at, &d->at))
		return -1;
	return 0;
}

static void hex_copy(char dst[65], const char *src)
{
	snprintf(dst, 65, "%s", src ? src : "");
}

/* ---- loading the recorded chains ---- */

struct loader {
	struct kiln_items *items;
	struct chain *old;
	int nomem;
};

static int load_one(void *user, const struct kiln_polish_step *st)
{
	struct loader *l = user;
	size_t lo;
	struct step s;
	if (!kiln_items_find(l->items, st->item_id, &lo))
		return 0;
	memset(&s, 0, sizeof s);
	s.kind = (char *)st->kind;
	s.settings = (char *)st->settings;
	s.by = (char *)st->by;
	s.tool = (char *)st->tool;
	s.note = (char *)st->note;
	s.at = (char *)st->at;
	hex_copy(s.recipe, st->recipe);
	hex_copy(s.input, st->input);
	hex_copy(s.output, st->output);
	s.bytes = st->bytes;
	s.image = st->image;
	if (chain_add(&l->old[lo], &s)) {
		l->nomem = 1;
		return 1;
	}
	return 0;
}

/* ---- recipes and the walk ---- */

/* xmp: -1 no disclosure written, 0 trainedAlgorithmicMedia, 1 composite */
static void recipe_of(const struct run *r, const struct op *op, const char *input, int xmp,
		      char out[65])
{
	char head[160];
	struct kiln_sha256 h;
	/* "text": raster outputs keep their input's text chunks (made without them before) */
	int n = snprintf(head, sizeof head, "kiln-polish/1\n%s\npng %d %d %d\nxmp %d\n%s",
			 op->o->kind == KILN_POLISH_UPSCALE ? "upscale" :
			 op->o->kind == KILN_POLISH_VECTORIZE ? "vectorize" : "overlay",
			 r->po.level, (int)r->po.filter, r->po.rgb_if_opaque, xmp,
			 op->o->kind == KILN_POLISH_VECTORIZE ? "" : "text\n");
	if (kiln_sha256_init(&h)) {
		/* no memory for a digest context: a recipe nothing matches, so the step is made */
		memset(out, '0', 64);
		out[64] = 0;
		return;
	}
	kiln_sha256_update(&h, head, (size_t)n);
	kiln_sha256_update(&h, op->settings, strlen(op->settings));
	kiln_sha256_update(&h, "\n", 1);
	kiln_sha256_update(&h, input, strlen(input));
	kiln_sha256_final(&h, NULL, out);
}

static char *format_error(const struct kiln_error *e)
{
	size_t n = strlen(e->where) + strlen(e->msg) + 4;
	char *s = kiln_malloc(n);
	if (s)
		snprintf(s, n, "%s%s%s", e->where, e->where[0] ? ": " : "", e->msg);
	return s;
}

/* A raster step keeps every text chunk its input PNG had (A1111's "parameters", a ComfyUI
 * graph, the XMP: that one is replaced after, when the step writes the disclosure). */
static int keep_text(const char *path, struct kiln_buf *buf, struct kiln_error *e)
{
	struct kiln_buf in = KILN_BUF_INIT, d;
	int rc;
	if ((rc = kiln_fs_read(path, &in, e))) {
		kiln_buf_release(&in); /* what was read before a failure */
		return rc;
	}
	if (in.len < 8 || memcmp(in.data, "\x89PNG\r\n\x1a\n", 8)) {
		kiln_buf_release(&in);
		return 0; /* a JPEG or WebP render: nothing of it is a PNG chunk */
	}
	kiln_buf_init(&d, buf->max);
	if (!(rc = kiln_png_copy_text(in.data, in.len, buf->data, buf->len, &d, e))) {
		kiln_buf_release(buf);
		*buf = d;
	} else {
		kiln_buf_release(&d);
		kiln_error_prefix(e, "%s", path);
	}
	kiln_buf_release(&in);
	return rc;
}

/* Make op's output from the store file `input`: the bytes go to the store. */
static int make_step(struct run *r, const struct op *op, const char *input, int xmp,
		     struct step *s, struct kiln_buf *buf, struct kiln_error *e)
{
	char *path = kiln_store_path(r->p->store, input);
	struct kiln_rgba im = {NULL, 0, 0};
	int rc;
	if (!path)
		return kiln_error_set(e, KILN_E_NOMEM, "polish", "out of memory");
	kiln_buf_reset(buf);
	switch (op->o->kind) {
	case KILN_POLISH_UPSCALE:
		if (op->o->method == KILN_UPSCALE_ENGINE) {
			/* made by the main thread's pre-pass (engine_steps), never here */
			rc = kiln_error_set(e, KILN_E_STATE, NULL, "the engine upscale was not made");
			break;
		}
		rc = kiln_polish_upscale(path, op->o->factor, op->o->method == KILN_UPSCALE_NEAREST,
					 r->max_pixels, &r->po, buf, e);
		break;
	case KILN_POLISH_OVERLAY:
		rc = kiln_polish_overlay(path, op->path, r->max_pixels, &r->po, buf, e);
		break;
	default:
		if (!(rc = kiln_polish_load_rgba(path, r->max_pixels, &im, e)))
			rc = op->o->mode == KILN_VECTOR_PIXELS ? kiln_polish_svg_pixels(&im, buf, e) :
			     kiln_polish_svg_trace(&im, op->o->colors, buf, e);
		free(im.px);
		break;
	}
	if (!rc && op->o->kind != KILN_POLISH_VECTORIZE)
		rc = keep_text(path, buf, e);
	free(path);
	/* an AI image keeps saying so: its XMP, composite once a person's work is in it */
	if (!rc && xmp >= 0 && op->o->kind != KILN_POLISH_VECTORIZE) {
		struct kiln_buf d;
		kiln_buf_init(&d, buf->max);
		if (!(rc = kiln_render_disclose_png(buf->data, buf->len, xmp, &d, e))) {
			kiln_buf_release(buf);
			*buf = d;
		} else {
			kiln_buf_release(&d);
		}
	}
	if (!rc)
		rc = kiln_store_put(r->p->store, buf->data, buf->len, s->output, e);
	s->bytes = buf->len;
	return rc;
}

enum walk_result { WALK_SAME, WALK_CHANGED, WALK_NEEDS, WALK_ENGINE };

static const struct made *made_find(const struct run *r, const char *recipe)
{
	for (size_t i = 0; i < r->nmade; i++)
		if (!strcmp(r->made[i].s.recipe, recipe))
			return &r->made[i];
	return NULL;
}

/* Keep s (made on the main thread) for the walks; error: the engine job's failure. */
static int made_add(struct run *r, const struct step *s, const char *error)
{
	struct made *m;
	struct chain c = {NULL, 0, 0};
	if (r->nmade == r->capmade) {
		size_t nc = r->capmade ? r->capmade * 2 : 16;
		struct made *t = kiln_realloc(r->made, nc * sizeof *t);
		if (!t)
			return -1;
		r->made = t;
		r->capmade = nc;
	}
	if (chain_add(&c, s)) {
		chain_release(&c);
		return -1;
	}
	m = &r->made[r->nmade];
	m->s = c.v[0];
	free(c.v);
	m->error = NULL;
	if (error && !(m->error = kiln_strdup(error))) {
		step_free(&m->s);
		return -1;
	}
	r->nmade++;
	return 0;
}

/* 1 when an op from k on that applies to the item is an engine step. */
static int engine_ahead(const struct run *r, const struct kiln_item *it, size_t k)
{
	for (; k < r->nops; k++)
		if (r->ops[k].o->kind == KILN_POLISH_UPSCALE &&
		    r->ops[k].o->method == KILN_UPSCALE_ENGINE &&
		    kiln_polish_op_applies(r->ops[k].o, it->legendary < 0 ? it->traits : NULL,
					   it->id))
			return 1;
	return 0;
}

/* Put back the token's edits whose input is the current image. */
static int place_edits(const struct chain *old, size_t *hi, char cur[65], struct chain *out,
		       int *human)
{
	while (*hi < old->n) {
		const struct step *h = &old->v[*hi];
		if (!is_human(h->kind)) {
			(*hi)++;
			continue;
		}
		if (strcmp(h->input, cur))
			break;
		if (chain_add(out, h))
			return -1;
		/* an inpaint is the model's pixels where a person drew a mask: not human work */
		if (!strcmp(h->kind, "edit"))
			*human = 1;
		if (h->image)
			memcpy(cur, h->output, 65);
		(*hi)++;
	}
	return 0;
}

/* The token's chain from its render through the spec's ops. compute 0: stop with WALK_NEEDS
 * at the first step not made before; 1: make it; 2 (the main thread's pre-pass): make the
 * local steps before an engine step (kept in r->made) and stop with WALK_ENGINE at the first
 * engine step not made, noted in r->need; a token with no engine step missing: WALK_NEEDS. */
static int walk(struct run *r, size_t item, int compute, struct chain *out, uint64_t *made,
		enum walk_result *res, struct kiln_buf *buf, struct kiln_error *e)
{
	const struct kiln_item *it = &r->items->v[item];
	const struct chain *old = &r->old[item];
	char cur[65], where[48];
	size_t hi = 0;
	int rc = 0, human = 0, ai = r->ai && it->legendary < 0;
	*res = WALK_SAME;
	memcpy(cur, it->image, 65);
	snprintf(where, sizeof where, "item %llu", (unsigned long long)it->id);
	for (size_t k = 0; k < r->nops; k++) {
		const struct op *op = &r->ops[k];
		struct step s;
		const struct step *found = NULL;
		if (!kiln_polish_op_applies(op->o, it->legendary < 0 ? it->traits : NULL, it->id))
			continue;
		if (place_edits(old, &hi, cur, out, &human))
			goto nomem;
		/* an overlay is a human-made layer */
		if (op->o->kind == KILN_POLISH_OVERLAY)
			human = 1;
		memset(&s, 0, sizeof s);
		recipe_of(r, op, cur, ai ? human : -1, s.recipe);
		for (size_t i = 0; i < old->n && !found; i++)
			if (!strcmp(old->v[i].recipe, s.recipe) &&
			    kiln_store_has(r->p->store, old->v[i].output) > 0)
				found = &old->v[i];
		if (!found) {
			const struct made *m = made_find(r, s.recipe);
			if (m && m->error) {
				kiln_error_set(e, KILN_E_FAILED, where, "polish step %zu (upscale, "
					       "engine): %s", k + 1, m->error);
				return KILN_E_FAILED;
			}
			if (m)
				found = &m->s;
		}
		if (!found && compute == 2 && !engine_ahead(r, it, k)) {
			*res = WALK_NEEDS;
			return 0;
		}
		if (!found && compute == 2 && op->o->kind == KILN_POLISH_UPSCALE &&
		    op->o->method == KILN_UPSCALE_ENGINE) {
			struct need *nd;
			for (size_t i = 0; i < r->nneed; i++)
				if (!strcmp(r->need[i].recipe, s.recipe)) {
					*res = WALK_ENGINE;
					return 0;
				}
			if (r->nneed == r->capneed) {
				size_t nc = r->capneed ? r->capneed * 2 : 16;
				struct need *t = kiln_realloc(r->need, nc * sizeof *t);
				if (!t)
					goto nomem;
				r->need = t;
				r->capneed = nc;
			}
			nd = &r->need[r->nneed++];
			nd->item = item;
			nd->op = k;
			nd->xmp = ai ? human : 0;
			memcpy(nd->recipe, s.recipe, 65);
			memcpy(nd->input, cur, 65);
			*res = WALK_ENGINE;
			return 0;
		}
		if (found) {
			if (chain_add(out, found))
				goto nomem;
		} else {
			if (!compute) {
				*res = WALK_NEEDS;
				return 0;
			}
			s.kind = op->o->kind == KILN_POLISH_UPSCALE ? "upscale" :
				 op->o->kind == KILN_POLISH_VECTORIZE ? "vectorize" : "overlay";
			s.settings = op->settings;
			s.by = "kiln";
			s.tool = (char *)op->tool;
			/* an SVG is the token's image with image.format svg (the last step) */
			s.image = op->o->kind != KILN_POLISH_VECTORIZE || r->p->spec->image_svg;
			memcpy(s.input, cur, 65);
			if ((rc = make_step(r, op, cur, ai ? human : -1, &s, buf, e))) {
				kiln_error_prefix(e, "%s: polish step %zu (%s)", where, k + 1, s.kind);
				return rc;
			}
			(*made)++;
			if (chain_add(out, &s) || (compute == 2 && made_add(r, &s, NULL)))
				goto nomem;
		}
		if (out->v[out->n - 1].image)
			memcpy(cur, out->v[out->n - 1].output, 65);
	}
	if (place_edits(old, &hi, cur, out, &human))
		goto nomem;
	for (; hi < old->n; hi++) {
		const struct step *h = &old->v[hi];
		char id[32];
		if (!is_human(h->kind))
			continue;
		snprintf(id, sizeof id, "%llu", (unsigned long long)it->id);
		kiln_error_set(e, KILN_E_STATE, where, "the edit by %s (%s) was made on image "
			       "%.12s..., which is no longer the token's image at any step (it was "
			       "re-rendered, or the polish steps before the edit changed)", h->by,
			       h->at ? h->at : "?", h->input);
		return kiln_error_hint(e, KILN_HINT_POLISH_EDIT, id);
	}
	if (out->n != old->n)
		*res = WALK_CHANGED;
	for (size_t i = 0; i < out->n && *res == WALK_SAME; i++)
		if (strcmp(out->v[i].recipe, old->v[i].recipe) ||
		    strcmp(out->v[i].output, old->v[i].output) || !out->v[i].at)
			*res = WALK_CHANGED;
	return 0;
nomem:
	return kiln_error_set(e, KILN_E_NOMEM, where, "out of memory");
}

/* ---- workers ---- */

static void run_job(void *user, size_t k, struct kiln_buf *buf)
{
	struct run *r = user;
	struct job *j = &r->jobs[k];
	struct kiln_error e;
	enum walk_result res;
	kiln_error_clear(&e);
	j->ok = !walk(r, j->item, 1, &j->out, &j->made, &res, buf, &e);
	if (!j->ok) {
		j->error = format_error(&e);
		j->stale = e.hint == KILN_HINT_POLISH_EDIT;
	}
}

static void report(const struct kiln_polish_opts *o, const char *event, uint64_t total,
		   uint64_t done, uint64_t failed, const struct kiln_item *it, const struct job *j,
		   double t0)
{
	struct kiln_progress pr;
	if (!o->progress)
		return;
	memset(&pr, 0, sizeof pr);
	pr.stage = "polish";
	pr.event = event;
	pr.total = total;
	pr.done = done;
	pr.failed = failed;
	pr.elapsed = kiln_clock_mono() - t0;
	if (it && j) {
		pr.item_id = it->id;
		pr.ok = j->ok;
		pr.error = j->error;
	}
	o->progress(&pr, o->user);
}

/* Record the chains of jobs done_order[from, to) (the ok ones) in one transaction. */
static int flush(struct run *r, size_t from, size_t to, struct kiln_error *e)
{
	uint64_t ids[64];
	struct kiln_polish_step *v = NULL;
	size_t nids = 0, n = 0, cap = 0;
	int rc;
	for (size_t k = from; k < to; k++) {
		const struct job *j = &r->jobs[r->done_order[k]];
		if (j->ok)
			cap += j->out.n;
	}
	if (!(v = kiln_calloc(cap + 1, sizeof *v)))
		return kiln_error_set(e, KILN_E_NOMEM, "polish", "out of memory");
	for (size_t k = from; k < to; k++) {
		const struct job *j = &r->jobs[r->done_order[k]];
		uint64_t id = r->items->v[j->item].id;
		if (!j->ok)
			continue;
		ids[nids++] = id;
		for (size_t i = 0; i < j->out.n; i++) {
			const struct step *s = &j->out.v[i];
			struct kiln_polish_step *d = &v[n++];
			d->item_id = id;
			d->step = (unsigned)i;
			d->kind = s->kind;
			d->settings = s->settings;
			d->recipe = s->recipe;
			d->input = s->input;
			d->output = s->output;
			d->bytes = s->bytes;
			d->image = s->image;
			d->by = s->by;
			d->tool = s->tool;
			d->note = s->note;
			d->at = s->at;
		}
	}
	/* the outputs reach the disk before the catalog says they exist */
	if (!(rc = kiln_store_sync(r->p->store, e)))
		rc = kiln_catalog_polish_save(r->p->catalog, ids, nids, v, n, e);
	free(v);
	return rc;
}

/* ---- engine steps: on the main thread, all tokens' at once through the dispatcher ---- */

static int wanted(const struct kiln_polish_opts *o, uint64_t id);

/* The step an engine job made (or, error set, failed to make) kept for the walks; an output
 * also goes to meta "polish_engine RECIPE" ({output, bytes, tool}), so that a kill -9 before
 * the token's chain is recorded does not send the job again. */
static int engine_made(struct run *r, const struct need *nd, const char *output, uint64_t bytes,
		       const char *tool, const char *error, struct kiln_error *e)
{
	const struct op *op = &r->ops[nd->op];
	struct step s;
	memset(&s, 0, sizeof s);
	s.kind = "upscale";
	s.settings = op->settings;
	s.by = "kiln";
	s.tool = (char *)tool;
	s.image = 1;
	memcpy(s.recipe, nd->recipe, 65);
	memcpy(s.input, nd->input, 65);
	hex_copy(s.output, output);
	s.bytes = bytes;
	if (made_add(r, &s, error))
		return kiln_error_set(e, KILN_E_NOMEM, "polish", "out of memory");
	if (!error) {
		char key[100], *text;
		json_t *v = json_pack("{s:s, s:I, s:s}", "output", output, "bytes",
				      (json_int_t)bytes, "tool", tool ? tool : "");
		int rc;
		snprintf(key, sizeof key, "polish_engine %s", nd->recipe);
		text = v ? json_dumps(v, JSON_COMPACT) : NULL;
		json_decref(v);
		if (!text)
			return kiln_error_set(e, KILN_E_NOMEM, "polish", "out of memory");
		rc = kiln_catalog_meta_set(r->p->catalog, key, text, e);
		free(text);
		return rc;
	}
	return 0;
}

/* An engine output made by an earlier run whose chain was not recorded (killed). 1: found. */
static int engine_kept(struct run *r, const struct need *nd, struct kiln_error *e)
{
	char key[100], *text = NULL;
	json_t *v;
	int found = 0, rc;
	snprintf(key, sizeof key, "polish_engine %s", nd->recipe);
	if ((rc = kiln_catalog_meta_get(r->p->catalog, key, &text, e)))
		return -rc;
	if (!text)
		return 0;
	v = json_loads(text, 0, NULL);
	free(text);
	{
		const char *out = json_string_value(json_object_get(v, "output"));
		const char *tool = json_string_value(json_object_get(v, "tool"));
		if (out && strlen(out) == 64 && kiln_store_has(r->p->store, out) > 0) {
			found = 1;
			rc = engine_made(r, nd, out,
					 (uint64_t)json_integer_value(json_object_get(v, "bytes")),
					 tool, NULL, e);
		}
	}
	json_decref(v);
	return rc ? -rc : found;
}

static int engine_steps(struct run *r, const struct kiln_polish_opts *o, struct kiln_buf *buf,
			struct kiln_error *e)
{
	int has = 0, rc = 0;
	for (size_t k = 0; k < r->nops; k++)
		has |= r->ops[k].o->kind == KILN_POLISH_UPSCALE &&
		       r->ops[k].o->method == KILN_UPSCALE_ENGINE;
	/* one round per engine step of a chain: a chain may hold more than one */
	for (size_t round = 0; has && round <= r->nops; round++) {
		struct kiln_image_job *jobs;
		/* no progress of its own: the stage reports each token once, after its walk */
		struct kiln_image_opts io = {o->cancel, NULL, NULL};
		size_t nj = 0;
		r->nneed = 0;
		for (size_t i = 0; i < r->items->n; i++) {
			const struct kiln_item *it = &r->items->v[i];
			struct chain tmp = {NULL, 0, 0};
			struct kiln_error we;
			enum walk_result wr;
			uint64_t m = 0;
			if (!wanted(o, it->id) || it->status != KILN_ITEM_RENDERED || !it->image[0])
				continue;
			kiln_error_clear(&we);
			rc = walk(r, i, 2, &tmp, &m, &wr, buf, &we);
			chain_release(&tmp);
			if (rc && we.code == KILN_E_NOMEM) {
				*e = we;
				return rc;
			}
			rc = 0; /* the token's failure is reported by the main walk */
		}
		if (!r->nneed)
			return 0;
		if (!(jobs = kiln_calloc(r->nneed, sizeof *jobs)))
			return kiln_error_set(e, KILN_E_NOMEM, "polish", "out of memory");
		for (size_t i = 0; i < r->nneed; i++) {
			const struct need *nd = &r->need[i];
			const struct kiln_polish_op *po = r->ops[nd->op].o;
			struct kiln_image_job *j = &jobs[nj];
			int kept = engine_kept(r, nd, e);
			if (kept < 0) {
				rc = -kept;
				goto done;
			}
			if (kept)
				continue;
			j->kind = KILN_IMAGE_UPSCALE;
			j->item_id = r->items->v[nd->item].id;
			j->key = nd->op;
			memcpy(j->recipe, nd->recipe, 65);
			j->image = nd->input;
			j->factor = po->factor;
			j->upscaler = po->upscaler;
			j->xmp = nd->xmp;
			nj++;
		}
		if ((rc = kiln_render_image_jobs(r->p, jobs, nj, &io, e)))
			goto done;
		for (size_t i = 0, n = 0; i < r->nneed && !rc; i++) {
			const struct need *nd = &r->need[i];
			struct kiln_image_job *j;
			char tool[768];
			if (n == nj || jobs[n].item_id != r->items->v[nd->item].id ||
			    strcmp(jobs[n].recipe, nd->recipe))
				continue; /* kept from an earlier run */
			j = &jobs[n++];
			snprintf(tool, sizeof tool, "%s %s %s at %s", j->engine ? j->engine : "engine",
				 j->engine && !strcmp(j->engine, "comfyui") ? "ImageUpscaleWithModel" :
				 "extra-single-image", j->upscaler ? j->upscaler :
				 j->engine && !strcmp(j->engine, "comfyui") ?
				 "RealESRGAN_x4plus.pth" : "R-ESRGAN 4x+", j->endpoint);
			rc = engine_made(r, nd, j->ok ? j->output : "", j->bytes, tool,
					 j->ok ? NULL : j->error ? j->error : "failed", e);
			r->engine_made += (uint64_t)j->ok;
		}
		if (!rc && (rc = kiln_store_sync(r->p->store, e)))
			goto done;
done:
		for (size_t i = 0; i < nj; i++)
			kiln_image_job_release(&jobs[i]);
		free(jobs);
		if (rc)
			return rc;
		if (o->cancel && *o->cancel)
			return 0;
	}
	return 0;
}

/* ---- the ops of the spec ---- */

static int ops_new(struct run *r, struct kiln_error *e)
{
	const struct kiln_spec *s = r->p->spec;
	r->ops = kiln_calloc(s->npolish + 1, sizeof *r->ops);
	if (!r->ops)
		return kiln_error_set(e, KILN_E_NOMEM, "polish", "out of memory");
	r->nops = s->npolish;
	for (size_t i = 0; i < s->npolish; i++) {
		const struct kiln_polish_op *o = &s->polish[i];
		struct op *op = &r->ops[i];
		json_t *j = json_object();
		char sha[65];
		int bad = !j;
		op->o = o;
		if (!bad && o->kind == KILN_POLISH_UPSCALE) {
			static const char *const m[] = {"lanczos", "nearest", "engine"};
			bad = json_object_set_new(j, "factor", json_integer(o->factor)) ||
			      json_object_set_new(j, "method", json_string(m[o->method])) ||
			      (o->upscaler &&
			       json_object_set_new(j, "upscaler", json_string(o->upscaler)));
			snprintf(op->tool, sizeof op->tool, "libvips %s vips_resize kernel=%s",
				 vips_version_string(), o->method == KILN_UPSCALE_NEAREST ?
				 "nearest" : "lanczos3");
		} else if (!bad && o->kind == KILN_POLISH_VECTORIZE) {
			bad = json_object_set_new(j, "mode", json_string(o->mode == KILN_VECTOR_PIXELS
									 ? "pixels" : "trace")) ||
			      (o->mode == KILN_VECTOR_TRACE &&
			       json_object_set_new(j, "colors", json_integer(o->colors)));
			if (o->mode == KILN_VECTOR_PIXELS)
				snprintf(op->tool, sizeof op->tool, "kiln vectorize pixels");
			else
				snprintf(op->tool, sizeof op->tool, "libimagequant + %s",
					 potrace_version());
		} else if (!bad) {
			int rc;
			if (!(op->path = kiln_fs_join(s->dir, o->file))) {
				json_decref(j);
				return kiln_error_set(e, KILN_E_NOMEM, "polish", "out of memory");
			}
			if ((rc = kiln_sha256_file(op->path, sha, e))) {
				json_decref(j);
				return rc;
			}
			bad = json_object_set_new(j, "file", json_string(o->file)) ||
			      json_object_set_new(j, "sha256", json_string(sha));
			snprintf(op->tool, sizeof op->tool, "libvips %s vips_composite over",
				 vips_version_string());
		}
		if (bad || !(op->settings = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS))) {
			json_decref(j);
			return kiln_error_set(e, KILN_E_NOMEM, "polish", "out of memory");
		}
		json_decref(j);
	}
	return 0;
}

static void ops_free(struct run *r)
{
	for (size_t i = 0; r->ops && i < r->nops; i++) {
		free(r->ops[i].settings);
		free(r->ops[i].path);
	}
	free(r->ops);
}

static int wanted(const struct kiln_polish_opts *o, uint64_t id)
{
	if (!o->ids)
		return 1;
	for (size_t i = 0; i < o->nids; i++)
		if (o->ids[i] == id)
			return 1;
	return 0;
}

static void job_done(void *user, size_t k)
{
	struct run *r = user;
	struct job *j = &r->jobs[r->done_order[k]];
	r->failed += !j->ok;
	r->res->stale_edits += (uint64_t)j->stale;
	r->res->steps += j->made;
	report(r->o, "item", r->njobs, k + 1, r->failed, &r->items->v[j->item], j, r->t0);
}

static int job_flush(void *user, size_t from, size_t to, struct kiln_error *e)
{
	return flush(user, from, to, e);
}

#define BATCH 64

int kiln_project_polish(struct kiln_project *p, const struct kiln_polish_opts *o,
			struct kiln_polish_result *res, struct kiln_error *e)
{
	struct kiln_items items;
	struct run r;
	struct loader ld;
	struct kiln_buf buf = KILN_BUF_INIT;
	size_t decided = 0, ndone = 0;
	double t0 = kiln_clock_mono();
	int rc;

	memset(res, 0, sizeof *res);
	memset(&r, 0, sizeof r);
	memset(&items, 0, sizeof items);
	if ((rc = kiln_catalog_items(p->catalog, p->spec, &items, e)))
		return rc;
	r.p = p;
	r.items = &items;
	r.o = o;
	r.res = res;
	r.t0 = t0;
	r.po.level = p->spec->png_compression;
	r.po.filter = (enum kiln_png_filter)p->spec->png_filter;
	r.po.rgb_if_opaque = !p->spec->png_keep_alpha;
	r.max_pixels = p->spec->qa.max_pixels;
	r.ai = strcmp(p->spec->engine, "compose") != 0;
	r.old = kiln_calloc(items.n + 1, sizeof *r.old);
	r.jobs = kiln_calloc(items.n + 1, sizeof *r.jobs);
	r.done_order = kiln_calloc(items.n + 1, sizeof *r.done_order);
	if (!r.old || !r.jobs || !r.done_order) {
		rc = kiln_error_set(e, KILN_E_NOMEM, p->dir, "out of memory");
		goto out;
	}
	ld.items = &items;
	ld.old = r.old;
	ld.nomem = 0;
	if ((rc = kiln_catalog_polish_each(p->catalog, 0, 0, load_one, &ld, e)))
		goto out;
	if (ld.nomem || (rc = ops_new(&r, e))) {
		rc = rc ? rc : kiln_error_set(e, KILN_E_NOMEM, p->dir, "out of memory");
		goto out;
	}
	if ((rc = engine_steps(&r, o, &buf, e)))
		goto out;
	/* which tokens need steps made; those that only need recording are recorded now */
	for (size_t i = 0; i < items.n; i++) {
		const struct kiln_item *it = &items.v[i];
		struct job *j = &r.jobs[r.njobs];
		enum walk_result wr;
		struct kiln_error we;
		uint64_t made = 0;
		if (!wanted(o, it->id))
			continue;
		if (it->status != KILN_ITEM_RENDERED || !it->image[0]) {
			res->unrendered++;
			continue;
		}
		res->tokens++;
		j->item = i;
		kiln_error_clear(&we);
		if (walk(&r, i, 0, &j->out, &made, &wr, &buf, &we)) {
			if (we.code == KILN_E_NOMEM) {
				*e = we;
				rc = we.code;
				goto out;
			}
			/* a stale edit, a failed engine step: reported as this token's failure */
			j->error = format_error(&we);
			j->stale = we.hint == KILN_HINT_POLISH_EDIT;
			j->ok = 0;
			r.njobs++;
			continue;
		}
		if (wr == WALK_SAME) {
			chain_release(&j->out);
			res->skipped++;
			continue;
		}
		if (wr == WALK_NEEDS)
			chain_release(&j->out);
		else
			j->ok = 1;
		r.njobs++;
	}
	/* the tokens decided without work come first in done_order; the rest go to workers */
	{
		size_t pending = 0;
		for (size_t k = 0; k < r.njobs; k++)
			if (r.jobs[k].ok || r.jobs[k].error)
				decided++;
		/* order jobs: decided ones first, then the ones to make */
		struct job *sorted = kiln_calloc(r.njobs + 1, sizeof *sorted);
		if (!sorted) {
			rc = kiln_error_set(e, KILN_E_NOMEM, p->dir, "out of memory");
			goto out;
		}
		for (size_t k = 0; k < r.njobs; k++)
			if (r.jobs[k].ok || r.jobs[k].error)
				sorted[pending++] = r.jobs[k];
		for (size_t k = 0; k < r.njobs; k++)
			if (!(r.jobs[k].ok || r.jobs[k].error))
				sorted[pending++] = r.jobs[k];
		memcpy(r.jobs, sorted, r.njobs * sizeof *sorted);
		free(sorted);
	}
	report(o, "start", r.njobs, 0, 0, NULL, NULL, t0);
	/* the decided tokens count as done first; the rest go to the workers */
	rc = kiln_pool_run(&(struct kiln_pool){.njobs = r.njobs, .first = decided, .batch = BATCH,
		.threads = o->threads, .order = r.done_order, .cancel = o->cancel, .where = p->dir,
		.user = &r, .run = run_job, .done = job_done, .flush = job_flush}, &ndone, e);
	res->failed = r.failed;
	res->steps += r.engine_made;
	for (size_t k = 0; k < ndone; k++)
		res->polished += r.jobs[r.done_order[k]].ok != 0;
	if (!rc && o->cancel && *o->cancel && ndone < r.njobs)
		rc = kiln_error_set(e, KILN_E_FAILED, p->dir, "interrupted after %zu of %zu tokens",
				    ndone, r.njobs);
	res->seconds = kiln_clock_mono() - t0;
	report(o, "end", r.njobs, ndone, r.failed, NULL, NULL, t0);
out:
	for (size_t k = 0; r.jobs && k < r.njobs; k++) {
		free(r.jobs[k].error);
		chain_release(&r.jobs[k].out);
	}
	for (size_t i = 0; r.old && i < items.n; i++)
		chain_release(&r.old[i]);
	free(r.old);
	free(r.jobs);
	free(r.done_order);
	for (size_t i = 0; i < r.nmade; i++) {
		step_free(&r.made[i].s);
		free(r.made[i].error);
	}
	free(r.made);
	free(r.need);
	ops_free(&r);
	kiln_buf_release(&buf);
	kiln_items_release(&items);
	return rc;
}
