/* render/ai: the render stage for AI engines (a1111, comfyui, sdcpp).
 *
 * Each item makes generate.candidates jobs; candidate k asks for seed ((item seed mod 2^32)
 * + k) mod 2^32 (A1111's batch rule, and within every server's seed range). A job's request
 * and recipe come from the recipe module (kiln/recipe.h: the SHA-256 of the canonical request,
 * engine-neutral, secret-free), which also loads the ControlNet images and the workflow.
 * A job is skipped when the catalog holds an accepted render of its item with that recipe and
 * the image is in the store. The dispatcher runs the rest; every attempt is recorded.
 *
 * Invariants (nothing lost, nothing done twice): an image is put in the store before the
 * catalog records it; records are committed in batches of up to 64 (or every 0.25 s), so a
 * kill -9 loses at most the attempts of the last quarter second, which the next run redoes. A
 * remote id (ComfyUI prompt_id, chosen by kiln; sd.cpp job id) is committed to ai_inflight
 * before anything else is sent for the job, and the next run polls it instead of submitting
 * again: a job a server finished while kiln was down is collected, not re-sent. Every image is
 * checked (decodes whole, the requested size, not all black, not blank) before it is
 * accepted; a bad one is a failed attempt and is retried.
 *
 * Sizes: jobs up to ~1,000,000; per job 80 bytes here plus the dispatcher's 24; requests,
 * images and records exist only while a job runs or waits for its batch.
 */
#include "render/ai.h"
#include "render/disclosure.h"
#include "render/dispatch.h"
#include "render/engines/engine.h"
#include "kiln/project.h"
#include "kiln/recipe.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/fs.h"
#include "util/image.h"
#include "util/sha.h"

#include <jansson.h>
#include <png.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <vips/vips.h>

/* --- images ------------------------------------------------------------------------------ */

static pthread_once_t vips_once = PTHREAD_ONCE_INIT;
static int vips_bad;

static void drop_log(const gchar *d, GLogLevelFlags l, const gchar *m, gpointer u)
{
	(void)d, (void)l, (void)m, (void)u;
}

static void vips_setup(void)
{
	g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO,
			  drop_log, NULL);
	if (VIPS_INIT("kiln")) {
		vips_bad = 1;
		return;
	}
	vips_concurrency_set(1);
	vips_cache_set_max(0);
}

/* All black (every colour byte 0, whatever the alpha) or one flat colour (every pixel the
 * same, alpha included)? px: npx pixels of `bands` bytes, the last one alpha when bands is 2
 * or 4. */
static int check_pixels(const unsigned char *px, size_t npx, int bands, struct kiln_error *e)
{
	int color = bands == 2 || bands == 4 ? bands - 1 : bands;
	unsigned any = 0, diff = 0;
	if (bands == 4) { /* the usual case, four bytes at a time (vectorised) */
		uint32_t first, mask = 0, a = 0, d = 0, v;
		memcpy(&first, px, 4);
		memset(&mask, 0xff, 3);
		for (size_t i = 0; i < npx; i++) {
			memcpy(&v, px + 4 * i, 4);
			a |= v;
			d |= v ^ first;
		}
		any = (a & mask) != 0;
		diff = d != 0;
	} else {
		for (size_t i = 0; i < npx * (size_t)bands; i++) {
			if ((int)(i % (size_t)bands) < color)
				any |= px[i];
			diff |= px[i] ^ px[i % (size_t)bands];
		}
	}
	if (!any)
		return kiln_error_set(e, KILN_E_IMAGE, NULL, "the image is all black (a safety "
				      "filter's answer?)");
	if (!diff)
		return kiln_error_set(e, KILN_E_IMAGE, NULL, "the image is blank (one flat colour)");
	return 0;
}

static int wrong_size(int iw, int ih, int w, int h, struct kiln_error *e)
{
	return kiln_error_set(e, KILN_E_IMAGE, NULL, "the image is %dx%d, %dx%d was asked for", iw,
			      ih, w, h);
}

/* Decodes whole, has the size asked for, not all black, not one flat colour. PNG (what the
 * engines send) is decoded by libpng's simplified API into 8-bit RGBA; anything else (an
 * A1111 set to save JPEG or WebP) by libvips. Why not libvips for PNG too: a call costs about
 * 1.2 ms of fixed overhead (operation objects, three thread-pool passes for decode, max and
 * deviation) where libpng takes 0.06 ms for a 64x64 image and a third less time for a
 * 1024x1024 one; on bench/dispatch the libvips check was half of kiln's CPU per job. Runs on
 * the dispatcher's check threads: it writes nothing shared. */
static int check_image(const void *data, size_t len, int w, int h, struct kiln_error *e)
{
	static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
	VipsImage *im = NULL;
	void *px = NULL;
	size_t n = 0;
	int rc = 0;
	if (len >= 8 && !memcmp(data, sig, 8)) {
		png_image pi;
		memset(&pi, 0, sizeof pi);
		pi.version = PNG_IMAGE_VERSION;
		if (!png_image_begin_read_from_memory(&pi, data, len)) {
			rc = kiln_error_set(e, KILN_E_IMAGE, NULL, "the image does not decode (%zu "
					    "bytes: %s)", len, pi.message);
			goto out;
		}
		if ((int)pi.width != w || (int)pi.height != h) {
			rc = wrong_size((int)pi.width, (int)pi.height, w, h, e);
			png_image_free(&pi);
			goto out;
		}
		pi.format = PNG_FORMAT_RGBA;
		if (!(px = kiln_malloc(n = PNG_IMAGE_SIZE(pi)))) {
			png_image_free(&pi);
			rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory checking the image");
			goto out;
		}
		if (!png_image_finish_read(&pi, NULL, px, 0, NULL)) {
			rc = kiln_error_set(e, KILN_E_IMAGE, NULL, "the image data is truncated or "
					    "corrupt (%s)", pi.message);
			goto out;
		}
		rc = check_pixels(px, (size_t)w * (size_t)h, 4, e);
		goto out;
	}
	pthread_once(&vips_once, vips_setup);
	if (vips_bad)
		return kiln_error_set(e, KILN_E_IMAGE, NULL, "libvips did not start");
	im = vips_image_new_from_buffer(data, len, "", "access", VIPS_ACCESS_SEQUENTIAL,
					"fail_on", VIPS_FAIL_ON_ERROR, NULL);
	if (!im) {
		rc = kiln_error_set(e, KILN_E_IMAGE, NULL, "the image does not decode (%zu bytes: "
				    "not an image, or cut short)", len);
		goto out;
	}
	if (vips_image_get_width(im) != w || vips_image_get_height(im) != h) {
		rc = wrong_size(vips_image_get_width(im), vips_image_get_height(im), w, h, e);
		goto out;
	}
	while (im->BandFmt != VIPS_FORMAT_UCHAR || im->Bands > 4) {
		VipsImage *t = NULL;
		if (im->Bands > 4 ? vips_extract_band(im, &t, 0, "n", 4, NULL)
				  : vips_cast_uchar(im, &t, NULL)) {
			rc = kiln_error_set(e, KILN_E_IMAGE, NULL, "the image cannot be read as 8-bit");
			goto out;
		}
		g_object_unref(im);
		im = t;
	}
	if (!(px = vips_image_write_to_memory(im, &n))) {
		rc = kiln_error_set(e, KILN_E_IMAGE, NULL, "the image data is truncated or corrupt");
		goto out;
	}
	rc = check_pixels(px, (size_t)w * (size_t)h, im->Bands, e);
out:
	if (im) {
		if (px)
			g_free(px);
		g_object_unref(im);
		vips_error_clear();
	} else {
		free(px);
	}
	return rc;
}

/* --- the stage -------------------------------------------------------------------------- */

struct job {
	size_t item;               /* index into items */
	unsigned candidate;
	uint64_t seed;
	char recipe[65];
};

struct pending {
	struct kiln_render_record r;
	char recipe[65], image[65];
	char *request, *error, *info, *remote, *ran;
	int final;
	uint64_t seed_req, seed_used;
};

struct done_key {
	uint64_t item;
	char recipe[65];
};

struct ai {
	struct kiln_project *p;
	const struct kiln_render_opts *o;
	struct kiln_render_result *res;
	struct kiln_items items;
	struct job *jobs;
	size_t njobs;
	struct kiln_recipe *recipe; /* the inputs (ControlNet images, workflow), loaded once */
	struct pending *batch;
	size_t nbatch;
	double last_flush, t0;
	uint64_t done, failed, total;
	struct done_key *donev;
	size_t ndone, capdone;
	struct kiln_dispatch_resume *resume;
	char **resume_ids;
	size_t nresume;
	struct kiln_dispatch_stats *stats; /* per endpoint, for progress */
	double last_tick;
};

#define BATCH 64

static void report(struct ai *a, const char *event, const struct kiln_item *it, int ok,
		   const char *error, const char *endpoint)
{
	struct kiln_progress pr;
	if (!a->o->progress)
		return;
	memset(&pr, 0, sizeof pr);
	pr.stage = "render";
	pr.event = event;
	pr.total = a->total;
	pr.done = a->done;
	pr.failed = a->failed;
	pr.elapsed = kiln_clock_mono() - a->t0;
	if (it) {
		pr.item_id = it->id;
		pr.ok = ok;
		pr.error = error;
		pr.endpoint = endpoint;
	}
	if (a->stats) {
		pr.endpoints = a->p->spec->generate->endpoints;
		pr.endpoint_stats = a->stats;
		pr.nendpoints = a->p->spec->generate->nendpoints;
	}
	a->o->progress(&pr, a->o->user);
}

/* What kind of failure an attempt was, for `kiln status`: from what the attempt knows (the
 * last exchange's HTTP status; curl says "timed out" for every timeout). */
static const char *error_kind(const struct kiln_dispatch_attempt *at, int bad_image)
{
	if (bad_image)
		return "bad_image";
	if (!at->ep)
		return "other"; /* no endpoint could take the job */
	if (at->http_status >= 500)
		return "http_5xx";
	if (at->http_status >= 400)
		return "http_4xx";
	if (!at->http_status)
		return at->error && strstr(at->error, "timed out") ? "timeout" : "connection";
	return "job_failed"; /* answered, but the job failed, was lost or sent no image */
}

static void pending_free(struct pending *x)
{
	free(x->request);
	free(x->error);
	free(x->info);
	free(x->remote);
	free(x->ran);
}

static int flush(struct ai *a, struct kiln_error *e)
{
	struct kiln_render_record recs[BATCH];
	struct kiln_ai_outcome outs[BATCH];
	size_t nout = 0;
	int rc;
	if (!a->nbatch)
		return 0;
	for (size_t i = 0; i < a->nbatch; i++) {
		struct pending *x = &a->batch[i];
		recs[i] = x->r;
		if (x->final && x->r.endpoint) {
			struct kiln_ai_outcome *u = &outs[nout++];
			memset(u, 0, sizeof *u);
			u->item_id = x->r.item_id;
			u->seed = x->seed_req;
			u->seed_used = x->seed_used;
			u->ok = x->r.ok;
			u->image = x->image;
			u->endpoint = x->r.endpoint;
			u->remote_id = x->remote;
			u->info = x->info;
		}
	}
	rc = kiln_store_sync(a->p->store, e); /* images durable before they are recorded */
	if (!rc)
		rc = kiln_catalog_record_renders(a->p->catalog, recs, a->nbatch, e);
	if (!rc)
		rc = kiln_catalog_ai_finish(a->p->catalog, outs, nout, e);
	for (size_t i = 0; i < a->nbatch; i++)
		pending_free(&a->batch[i]);
	a->nbatch = 0;
	a->last_flush = kiln_clock_mono();
	return rc;
}

static int op_request(void *user, size_t k, struct kiln_ai_request *rq, struct kiln_error *e)
{
	struct ai *a = user;
	const struct job *j = &a->jobs[k];
	return kiln_recipe_ai_request(a->recipe, &a->items.v[j->item], j->candidate, rq, e);
}

static int op_remote(void *user, size_t k, size_t endpoint, const struct kiln_ai_job *aj,
		     struct kiln_error *e)
{
	struct ai *a = user;
	const struct job *j = &a->jobs[k];
	const struct kiln_endpoint *ep = &a->p->spec->generate->endpoints[endpoint];
	struct kiln_inflight f = {a->items.v[j->item].id, j->seed, j->recipe, ep->url, ep->engine,
				  aj->remote_id, aj->attempt};
	return kiln_catalog_inflight_put(a->p->catalog, &f, e);
}

/* A cloud endpoint's health answer (RunPod /health: its queue and workers) kept for `kiln
 * status` in meta "endpoint_health URL", with when it came. Best effort: a failure to keep it
 * loses nothing of the render. */
static void op_health(void *user, size_t endpoint, const char *body, size_t len)
{
	struct ai *a = user;
	const struct kiln_endpoint *ep = &a->p->spec->generate->endpoints[endpoint];
	json_t *ans, *o;
	char key[1200], *text;
	struct kiln_error e;
	if (ep->platform == KILN_PLATFORM_SELF || !(ans = json_loadb(body, len, 0, NULL)))
		return;
	o = json_pack("{s:f, s:o}", "at", kiln_clock_unix(), "answer", ans);
	text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	snprintf(key, sizeof key, "endpoint_health %s", ep->url);
	kiln_error_clear(&e);
	if (text && kiln_catalog_meta_set(a->p->catalog, key, text, &e))
		kiln_error_clear(&e);
	free(text);
	json_decref(o);
}

/* image.format webp or jpeg: img re-encoded in it, with the encoder the compose engine uses
 * (kiln_image_encode); an AI image with the disclosure XMP in the file, a legendary (a
 * person's file) without. The A1111 infotext has no standard home in WebP or JPEG that Stable
 * Diffusion tools read back, so there it stays in the catalog (ai_info) only
 * (docs/engines.md). */
static int convert(const struct kiln_spec *s, struct kiln_buf *img, int ai, struct kiln_error *e)
{
	struct kiln_buf xmp = KILN_BUF_INIT, out;
	VipsImage *im = NULL, *bare = NULL;
	void *px = NULL;
	size_t n = 0;
	int rc;
	if ((rc = kiln_vips_init(e)))
		return rc;
	kiln_buf_init(&out, img->max);
	im = vips_image_new_from_buffer(img->data, img->len, "", "fail_on", VIPS_FAIL_ON_ERROR,
					NULL);
	/* the pixels alone, without what the server's file carried (its text chunks, ICC) */
	if (!im || !(px = vips_image_write_to_memory(im, &n)) ||
	    !(bare = vips_image_new_from_memory(px, n, im->Xsize, im->Ysize, im->Bands,
						im->BandFmt))) {
		rc = kiln_vips_fail(e, KILN_E_IMAGE, NULL, "cannot read the image to re-encode it");
		goto out;
	}
	if (ai && kiln_ai_xmp(KILN_SOURCE_TRAINED, &xmp)) {
		rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory for the XMP packet");
		goto out;
	}
	struct kiln_image_enc enc = {s->format == KILN_FORMAT_JPEG, s->quality, s->lossless};
	if ((rc = kiln_image_encode(&enc, bare, ai ? xmp.data : NULL, xmp.len, &out, e))) {
		kiln_error_prefix(e, "cannot store the image as %s", kiln_format_ext(s->format));
		goto out;
	}
	kiln_buf_release(img);
	*img = out;
	kiln_buf_init(&out, 0);
out:
	VIPS_UNREF(bare);
	VIPS_UNREF(im);
	g_free(px);
	vips_error_clear();
	kiln_buf_release(&out);
	kiln_buf_release(&xmp);
	return rc;
}

static int op_check(void *user, size_t k, struct kiln_ai_job *aj, struct kiln_error *e)
{
	struct ai *a = user;
	const struct kiln_spec *s = a->p->spec;
	int rc;
	(void)k; /* runs on a check thread: writes nothing of a's */
	rc = check_image(aj->image.data, aj->image.len, s->generate->width, s->generate->height,
			 e);
	if (!rc && s->format != KILN_FORMAT_PNG)
		rc = convert(s, &aj->image, 1, e);
	return rc;
}

/* The registry's name for the checkpoint a request names (a file name, a path or an A1111
 * title "file [hash]"): its base name without " [hash]" and without a model file extension,
 * as kiln models add names a file. 0, or -1 when it does not fit. */
static int checkpoint_name(const char *ck, char *out, size_t size)
{
	static const char *const ext[] = {".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf"};
	const char *b = strrchr(ck, '/');
	size_t n;
	b = b ? b + 1 : ck;
	n = strlen(b);
	if (n && b[n - 1] == ']') {
		const char *sp = strrchr(b, '[');
		if (sp && sp > b && sp[-1] == ' ')
			n = (size_t)(sp - 1 - b);
	}
	for (size_t i = 0; i < sizeof ext / sizeof *ext; i++) {
		size_t k = strlen(ext[i]);
		if (n > k && !strncasecmp(b + n - k, ext[i], k)) {
			n -= k;
			break;
		}
	}
	if (!n || n >= size)
		return -1;
	memcpy(out, b, n);
	out[n] = 0;
	return 0;
}

/* One model the server said it ran (its registry kind, "checkpoint" or "lora"; the A1111 hash
 * the server reported, compared with the registered records' a1111.<hash_key>) against the
 * model registry: when files are registered under name, hash must be one of theirs, else the
 * attempt fails naming both hashes (the server has another file under that name). A match
 * names the registered file in obj (model_sha256) and sets *changed. */
static int resolve_model(struct kiln_catalog *c, const char *endpoint, const char *kind,
			 const char *word, const char *hash_key, const char *name,
			 const char *hash, json_t *obj, int *changed, struct kiln_error *e)
{
	char want[40] = "", **recs = NULL;
	size_t n = 0, k;
	int rc;
	if ((rc = kiln_catalog_models_named(c, name, kind, &recs, &n, e)))
		return rc;
	for (k = 0; k < n; k++) {
		json_t *m = json_loads(recs[k], 0, NULL);
		const char *h = json_string_value(
			json_object_get(json_object_get(m, "a1111"), hash_key));
		const char *sha = json_string_value(json_object_get(m, "sha256"));
		if (h && !want[0])
			snprintf(want, sizeof want, "%s", h);
		if (h && sha && !strcasecmp(h, hash)) {
			if (json_object_set_new(obj, "model_sha256", json_string(sha)))
				rc = kiln_error_set(e, KILN_E_NOMEM, endpoint, "out of memory");
			*changed = 1;
			json_decref(m);
			break;
		}
		json_decref(m);
	}
	for (size_t q = 0; q < n; q++)
		free(recs[q]);
	free(recs);
	if (!rc && n && k == n)
		rc = kiln_error_set(e, KILN_E_SPEC, endpoint, "the server ran %s %s with hash %s, but "
				    "the %s registered as %s has hash %s: the server has another "
				    "file under that name (copy the registered file there, or "
				    "register the server's)", word, name, hash, word, name,
				    want[0] ? want : "(none)");
	return rc;
}

/* What the server said it ran (ran_json) against the model registry (resolve_model):
 * - the checkpoint the request named (ck): A1111 reports the short hash of the checkpoint it
 *   ran (ran.model_hash: sd_model_hash, the first 10 hex of the file's SHA-256); a match names
 *   the registered file as ran.model_sha256. Servers that report no hash (ComfyUI, sd-server)
 *   and unregistered checkpoints leave it as it was;
 * - the LoRAs (ran.loras: A1111's "Lora hashes", name and 12-hex hash): a LoRA registered
 *   under that name (kiln models add, kiln train run) must be the file the server ran; a match
 *   names the registered file (loras[].model_sha256).
 * The render's record keeps them, and the portfolio's log. *ran: the annotated JSON (caller
 * frees), or NULL unchanged. */
static int resolve_loras(struct kiln_catalog *c, const char *endpoint, const char *ck,
			 const char *ran_json, char **ran, struct kiln_error *e)
{
	json_t *r = ran_json ? json_loads(ran_json, 0, NULL) : NULL, *l;
	json_t *loras = json_object_get(r, "loras");
	const char *ck_hash = json_string_value(json_object_get(r, "model_hash"));
	char ck_name[512];
	size_t i;
	int rc = 0, changed = 0;
	*ran = NULL;
	if (r && ck && ck_hash && !checkpoint_name(ck, ck_name, sizeof ck_name) &&
	    (rc = resolve_model(c, endpoint, "checkpoint", "checkpoint", "model_hash", ck_name,
				ck_hash, r, &changed, e))) {
		json_decref(r);
		return rc;
	}
	json_array_foreach(loras, i, l) {
		const char *name = json_string_value(json_object_get(l, "name"));
		const char *hash = json_string_value(json_object_get(l, "hash"));
		if (name && hash &&
		    (rc = resolve_model(c, endpoint, "lora", "LoRA", "lora_hash", name, hash, l,
					&changed, e)))
			break;
	}
	if (!rc && changed && !(*ran = json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS)))
		rc = kiln_error_set(e, KILN_E_NOMEM, endpoint, "out of memory");
	json_decref(r);
	return rc;
}

static int op_attempt(void *user, const struct kiln_dispatch_attempt *at, struct kiln_error *e)
{
	struct ai *a = user;
	const struct job *j = &a->jobs[at->job];
	const struct kiln_item *it = &a->items.v[j->item];
	struct pending *x = &a->batch[a->nbatch];
	struct kiln_error se;
	int ok = at->ok, bad_image = at->check_failed;
	const char *err = at->error;
	memset(x, 0, sizeof *x);
	kiln_error_clear(&se);
	memcpy(x->recipe, j->recipe, 65);
	/* AI disclosure (XMP DigitalSourceType + infotext) in the stored bytes themselves, so the
	 * provenance hash covers it */
	if (ok && kiln_ai_disclose_job(at->aj, KILN_SOURCE_TRAINED, &se)) {
		ok = 0;
		err = se.msg;
	}
	if (ok && kiln_store_put(a->p->store, at->aj->image.data, at->aj->image.len, x->image,
				 &se)) {
		ok = 0;
		err = se.msg;
	}
	if (at->rq && at->engine) {
		struct kiln_buf b = KILN_BUF_INIT;
		if (!kiln_ai_build_for(at->engine, at->ep, at->rq, 1, &b, &se))
			x->request = kiln_buf_detach(&b, NULL);
		kiln_buf_release(&b);
	}
	if (!ok) {
		size_t n = strlen(err ? err : "failed") + 600;
		if ((x->error = kiln_malloc(n)))
			snprintf(x->error, n, "%s%s%s", at->ep ? at->ep->url : "",
				 at->ep ? ": " : "", err ? err : "failed");
	}
	if (at->aj && at->aj->info)
		x->info = kiln_strdup(at->aj->info);
	if (at->aj && at->aj->remote_id[0])
		x->remote = kiln_strdup(at->aj->remote_id);
	if (at->aj && at->aj->ran) {
		char *res = NULL;
		if (ok && resolve_loras(a->p->catalog, at->ep ? at->ep->url : NULL,
					at->rq ? at->rq->checkpoint : NULL, at->aj->ran, &res,
					&se)) {
			size_t n = strlen(se.msg) + strlen(at->ep ? at->ep->url : "") + 4;
			ok = 0;
			free(x->error);
			if ((x->error = kiln_malloc(n)))
				snprintf(x->error, n, "%s%s%s", at->ep ? at->ep->url : "",
					 at->ep ? ": " : "", se.msg);
		}
		x->ran = res ? res : kiln_strdup(at->aj->ran);
	}
	x->final = at->final;
	x->seed_req = j->seed;
	x->seed_used = ok && at->aj ? at->aj->seed_used : j->seed;
	x->r.item_id = it->id;
	x->r.engine = at->engine ? at->engine->name : a->p->spec->engine;
	x->r.endpoint = at->ep ? at->ep->url : NULL;
	x->r.recipe = x->recipe;
	x->r.seed = x->seed_used;
	x->r.request_json = x->request;
	x->r.ran_json = x->ran;
	x->r.ok = ok;
	x->r.http_status = (int)at->http_status;
	x->r.image = x->image;
	x->r.bytes = ok ? at->aj->image.len : 0;
	x->r.error = x->error ? x->error : "failed";
	x->r.error_kind = ok ? NULL : at->ok ? "other" : error_kind(at, bad_image);
	x->r.started = at->started;
	x->r.finished = at->finished;
	x->r.gpu_seconds = at->gpu_seconds;
	x->r.cost_usd = at->cost_usd;
	a->nbatch++;
	if (at->final) {
		a->done++;
		if (ok)
			a->res->rendered++;
		else
			a->failed++;
		report(a, "item", it, ok, x->r.error, x->r.endpoint);
	}
	if (a->nbatch == BATCH)
		return flush(a, e);
	return 0;
}

static int op_tick(void *user, struct kiln_error *e)
{
	struct ai *a = user;
	double now = kiln_clock_mono();
	if (now - a->last_tick >= 0.1) {
		a->last_tick = now;
		report(a, "tick", NULL, 0, NULL, NULL);
	}
	if (a->nbatch && now - a->last_flush > 0.25)
		return flush(a, e);
	return 0;
}

static int cmp_done(const void *x, const void *y)
{
	const struct done_key *a = x, *b = y;
	if (a->item != b->item)
		return a->item < b->item ? -1 : 1;
	return strcmp(a->recipe, b->recipe);
}

static int collect_done(void *user, uint64_t item, const char *recipe, const char *image)
{
	struct ai *a = user;
	int has = kiln_store_has(a->p->store, image);
	if (has < 0)
		return 1; /* out of memory */
	if (!has || strlen(recipe) != 64)
		return 0;
	if (a->ndone == a->capdone) {
		size_t cap = a->capdone ? a->capdone * 2 : 1024;
		struct done_key *v = kiln_reallocarray(a->donev, cap, sizeof *v);
		if (!v)
			return 1;
		a->donev = v;
		a->capdone = cap;
	}
	a->donev[a->ndone].item = item;
	memcpy(a->donev[a->ndone].recipe, recipe, 65);
	a->ndone++;
	return 0;
}

static int collect_inflight(void *user, const struct kiln_inflight *f)
{
	struct ai *a = user;
	const struct kiln_generate *g = a->p->spec->generate;
	size_t ep, lo = 0, hi = a->njobs;
	if (!f->remote_id || !f->endpoint || !f->recipe)
		return 0;
	for (ep = 0; ep < g->nendpoints; ep++)
		if (!strcmp(g->endpoints[ep].url, f->endpoint) &&
		    !strcmp(g->endpoints[ep].engine, f->engine ? f->engine : ""))
			break;
	if (ep == g->nendpoints)
		return 0; /* the endpoint left the spec: the job is submitted again elsewhere */
	/* jobs are in item id order */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (a->items.v[a->jobs[mid].item].id < f->item_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t k = lo; k < a->njobs && a->items.v[a->jobs[k].item].id == f->item_id; k++) {
		if (a->jobs[k].seed != f->seed || strcmp(a->jobs[k].recipe, f->recipe))
			continue;
		if (!(a->resume_ids[a->nresume] = kiln_strdup(f->remote_id)))
			return 1;
		a->resume[a->nresume].job = k;
		a->resume[a->nresume].endpoint = ep;
		a->resume[a->nresume].remote_id = a->resume_ids[a->nresume];
		a->resume[a->nresume].attempt = f->attempt;
		a->nresume++;
		break;
	}
	return a->nresume >= a->njobs;
}

static int wanted(const struct kiln_render_opts *o, uint64_t id)
{
	if (!o->ids)
		return 1;
	for (size_t i = 0; i < o->nids; i++)
		if (o->ids[i] == id)
			return 1;
	return 0;
}

/* What kiln binds in a ComfyUI graph must have a node to go to: the checkpoint and the LoRA
 * chain hang off CheckpointLoaderSimple, seed and sampler off KSampler. Refused before any
 * job (and by --dry-run) rather than dropped from every request. */
static int check_workflow(const struct kiln_spec *s, json_t *wf, const char *text,
			  struct kiln_error *e)
{
	const struct kiln_generate *g = s->generate;
	const char *lora = NULL, *k;
	int comfy = 0, ck = 0, ks = 0;
	json_t *n;
	for (size_t i = 0; i < g->nendpoints; i++)
		comfy |= !strcmp(kiln_endpoint_protocol(&g->endpoints[i]), "comfyui");
	if (!comfy)
		return 0;
	json_object_foreach(wf, k, n) {
		const char *c = json_string_value(json_object_get(n, "class_type"));
		ck |= c && !strcmp(c, "CheckpointLoaderSimple");
		ks |= c && !strcmp(c, "KSampler");
	}
	for (size_t l = 0; !lora && l < s->nlayers; l++)
		for (size_t t = 0; !lora && t < s->layers[l].ntraits; t++)
			if (s->layers[l].traits[t].nloras)
				lora = s->layers[l].traits[t].loras[0].name;
	if (!ks)
		return kiln_error_set(e, KILN_E_SPEC, g->workflow, "the workflow has no KSampler "
				      "node: kiln binds seed, steps, cfg and sampler there");
	if (!ck && (g->checkpoint || lora))
		return kiln_error_set(e, KILN_E_SPEC, g->workflow, "the workflow has no "
				      "CheckpointLoaderSimple node, so %s%s%s cannot be applied: add "
				      "one (kiln sets its ckpt_name and chains LoRAs after it)%s",
				      g->checkpoint ? "generate.checkpoint" : "lora '",
				      g->checkpoint ? "" : lora, g->checkpoint ? "" : "'",
				      g->checkpoint ? ", or remove generate.checkpoint" : "");
	/* the prompts and the size must reach the model: bound by following links */
	return kiln_comfy_workflow_check(text, g->workflow, 0, e);
}

/* Load (through the recipe module) every ControlNet image the traits name and the workflow,
 * and check the workflow's graph. */
static int load_inputs(struct ai *a, struct kiln_error *e)
{
	const struct kiln_spec *s = a->p->spec;
	const char *text;
	json_t *wf;
	json_error_t je;
	int rc;
	if ((rc = kiln_recipe_new(&a->recipe, s, KILN_RECIPE_DATA, e)))
		return rc;
	if (!(text = kiln_recipe_ai_workflow(a->recipe)))
		return 0;
	wf = json_loads(text, 0, &je);
	if (!json_is_object(wf)) {
		json_decref(wf);
		return kiln_error_set(e, KILN_E_SPEC, s->generate->workflow,
				      "line %d: not a ComfyUI API-format graph (a JSON object "
				      "of nodes; export it with 'Save (API Format)'): %s",
				      je.line, wf ? "not an object" : je.text);
	}
	rc = check_workflow(s, wf, text, e);
	json_decref(wf);
	return rc;
}

static void free_inputs(struct ai *a)
{
	kiln_recipe_free(a->recipe);
	a->recipe = NULL;
}

/* A legendary is its own file: checked, stored as it is, recorded as engine "file". */
static int legendary(struct ai *a, const struct kiln_item *it, struct kiln_error *e)
{
	const struct kiln_legendary *g = &a->p->spec->legendaries[it->legendary];
	struct kiln_buf b = KILN_BUF_INIT;
	struct kiln_render_record r;
	struct kiln_error fe;
	char recipe[65], image[65] = "", *path = kiln_fs_join(a->p->spec->dir, g->file);
	int rc = 0, bad;
	kiln_error_clear(&fe);
	if (!path)
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
	memset(&r, 0, sizeof r);
	r.started = kiln_clock_unix();
	kiln_buf_init(&b, 256 << 20);
	bad = kiln_fs_read(path, &b, &fe);
	/* the recipe stays the file's hash whatever image.format (release checks a legendary
	 * against it): after a change of format, a forced render redoes legendaries */
	kiln_recipe_file_bytes(b.data, b.len, recipe);
	if (!a->o->force && !bad && it->status == KILN_ITEM_RENDERED &&
	    !strcmp(it->recipe, recipe)) {
		int has = kiln_store_has(a->p->store, it->image);
		if (has < 0) {
			rc = kiln_error_set(e, KILN_E_NOMEM, g->file, "out of memory");
			goto out;
		}
		if (has) {
			a->res->skipped++;
			goto out;
		}
	}
	if (!bad) {
		VipsImage *im;
		pthread_once(&vips_once, vips_setup);
		im = vips_image_new_from_buffer(b.data, b.len, "", "fail_on", VIPS_FAIL_ON_ERROR,
						NULL);
		if (!im)
			bad = kiln_error_set(&fe, KILN_E_IMAGE, g->file, "not an image");
		VIPS_UNREF(im);
		vips_error_clear();
	}
	if (!bad && a->p->spec->format != KILN_FORMAT_PNG)
		bad = convert(a->p->spec, &b, 0, &fe);
	if (!bad)
		bad = kiln_store_put(a->p->store, b.data, b.len, image, &fe);
	a->res->todo++;
	a->total++;
	r.item_id = it->id;
	r.engine = "file";
	r.recipe = recipe;
	r.seed = it->seed;
	r.ok = !bad;
	r.image = image;
	r.bytes = bad ? 0 : b.len;
	r.error = fe.msg;
	r.finished = kiln_clock_unix();
	rc = kiln_store_sync(a->p->store, e);
	if (!rc)
		rc = kiln_catalog_record_renders(a->p->catalog, &r, 1, e);
	a->done++;
	if (bad)
		a->failed++;
	else
		a->res->rendered++;
	report(a, "item", it, !bad, fe.msg, NULL);
out:
	free(path);
	kiln_buf_release(&b);
	return rc;
}

int kiln_project_render_ai(struct kiln_project *p, const struct kiln_render_opts *o,
			   struct kiln_render_result *res, struct kiln_error *e)
{
	const struct kiln_generate *g = p->spec->generate;
	struct ai a;
	struct kiln_dispatch_opts d;
	struct kiln_dispatch_ops ops;
	int rc, current;
	memset(&a, 0, sizeof a);
	memset(res, 0, sizeof *res);
	a.p = p;
	a.o = o;
	a.res = res;
	a.t0 = a.last_flush = kiln_clock_mono();
	if (!g)
		return kiln_error_set(e, KILN_E_SPEC, p->spec_path, "engine '%s' needs a generate: "
				      "block", p->spec->engine);
	/* before anything else: a missing credential is the first thing to fix */
	for (size_t k = 0; k < g->nendpoints; k++) {
		const struct kiln_endpoint *ep = &g->endpoints[k];
		char where[1024];
		const char *aws = kiln_ai_missing_aws(ep);
		snprintf(where, sizeof where, "%s:%d:%d", p->spec_path, ep->loc.line, ep->loc.col);
		if (aws)
			return kiln_error_set(e, KILN_E_USAGE, where, "endpoint %s: %s names the "
					      "environment variable %s, which is not set: set it and "
					      "run again (credentials never go in kiln.yaml)", ep->url,
					      aws == ep->access_key_env ? "access_key_env" :
					      aws == ep->secret_key_env ? "secret_key_env" :
					      "session_token_env", aws);
		if (!(ep->auth_env || ep->token_env) || ep->secret)
			continue;
		return kiln_error_set(e, KILN_E_USAGE, where, "endpoint %s: %s names the environment "
				      "variable %s, which is not set: set it to %s and run again "
				      "(credentials never go in kiln.yaml)", ep->url,
				      ep->auth_env || ep->platform == KILN_PLATFORM_RUNPOD ?
					      "auth_env" : "token_env",
				      ep->auth_env ? ep->auth_env : ep->token_env,
				      ep->auth_env ? "user:pass (HTTP basic auth)" :
				      ep->platform == KILN_PLATFORM_RUNPOD ? "the RunPod API key" :
					      "the bearer token");
	}
	if ((rc = kiln_project_plan_current(p, &current, e)))
		return rc;
	if (!current) {
		kiln_error_set(e, KILN_E_STATE, p->spec_path, "the plan is missing or older than "
			       "kiln.yaml");
		return kiln_error_hint(e, KILN_HINT_PLAN, NULL);
	}
	if ((rc = kiln_catalog_ai_init(p->catalog, e)) ||
	    (rc = kiln_catalog_items(p->catalog, p->spec, &a.items, e)))
		return rc;
	if ((rc = load_inputs(&a, e)))
		goto out;
	if ((rc = kiln_catalog_ai_done_each(p->catalog, collect_done, &a, e)))
		goto out;
	if (a.ndone)
		qsort(a.donev, a.ndone, sizeof *a.donev, cmp_done);
	a.jobs = kiln_calloc(a.items.n * g->candidates + 1, sizeof *a.jobs);
	a.batch = kiln_calloc(BATCH, sizeof *a.batch);
	if (!a.jobs || !a.batch) {
		rc = kiln_error_set(e, KILN_E_NOMEM, p->dir, "out of memory");
		goto out;
	}
	/* which jobs need running: build each request once for its recipe */
	for (size_t i = 0; i < a.items.n; i++) {
		const struct kiln_item *it = &a.items.v[i];
		size_t before = a.njobs;
		if (!wanted(o, it->id))
			continue;
		res->items++;
		if (it->legendary >= 0 || it->legendary_name)
			continue;
		for (unsigned c = 0; c < g->candidates; c++) {
			struct kiln_ai_request rq;
			struct job *j = &a.jobs[a.njobs];
			struct done_key key;
			if ((rc = kiln_recipe_ai_request(a.recipe, it, c, &rq, e)))
				goto out;
			j->item = i;
			j->candidate = c;
			j->seed = rq.seed;
			memcpy(j->recipe, rq.recipe, 65);
			kiln_ai_request_release(&rq);
			key.item = it->id;
			memcpy(key.recipe, j->recipe, 65);
			if (!o->force && a.ndone &&
			    bsearch(&key, a.donev, a.ndone, sizeof key, cmp_done))
				continue;
			a.njobs++;
		}
		if (a.njobs == before)
			res->skipped++;
	}
	res->todo = a.njobs;
	a.total = a.njobs;
	if (a.njobs && ((rc = kiln_catalog_ai_run_start(p->catalog, kiln_clock_unix(), e)) ||
			!(a.stats = kiln_calloc(g->nendpoints, sizeof *a.stats)))) {
		if (!rc)
			rc = kiln_error_set(e, KILN_E_NOMEM, p->dir, "out of memory");
		goto out;
	}
	for (size_t k = 0; a.stats && k < g->nendpoints; k++)
		a.stats[k].state = KILN_ENDPOINT_CHECKING; /* every endpoint is checked first */
	report(&a, "start", NULL, 0, NULL, NULL);
	for (size_t i = 0; i < a.items.n; i++) {
		const struct kiln_item *it = &a.items.v[i];
		if (it->legendary >= 0 && wanted(o, it->id) && (rc = legendary(&a, it, e)))
			goto out;
	}
	/* jobs a server may still be running from an earlier run */
	a.resume = kiln_calloc(a.njobs + 1, sizeof *a.resume);
	a.resume_ids = kiln_calloc(a.njobs + 1, sizeof *a.resume_ids);
	if (!a.resume || !a.resume_ids) {
		rc = kiln_error_set(e, KILN_E_NOMEM, p->dir, "out of memory");
		goto out;
	}
	if (a.njobs && (rc = kiln_catalog_inflight_each(p->catalog, collect_inflight, &a, e)))
		goto out;
	memset(&d, 0, sizeof d);
	d.endpoints = g->endpoints;
	d.nendpoints = g->nendpoints;
	d.njobs = a.njobs;
	d.retries = g->retries;
	d.resume = a.resume;
	d.nresume = a.nresume;
	d.cancel = o->cancel;
	d.jitter_seed = p->spec->seed;
	d.budget_usd = g->budget_usd;
	d.budget_stopped = &res->budget_stopped;
	if (g->budget_usd > 0 && (rc = kiln_catalog_spend(p->catalog, &d.spent_before, e)))
		goto out;
	/* image checks beside the dispatcher's loop: the endpoints never wait for a decode */
	{
		long cores = sysconf(_SC_NPROCESSORS_ONLN);
		d.check_threads = o->threads ? o->threads : cores > 1 ? (unsigned)cores : 1;
		if (d.check_threads > 8)
			d.check_threads = 8;
	}
	memset(&ops, 0, sizeof ops);
	ops.request = op_request;
	ops.remote = op_remote;
	ops.health = op_health;
	ops.check = op_check;
	ops.attempt = op_attempt;
	ops.tick = op_tick;
	ops.user = &a;
	rc = kiln_dispatch_run(&d, &ops, a.stats, e);
	if (!rc)
		rc = flush(&a, e);
	else {
		struct kiln_error fe;
		kiln_error_clear(&fe);
		(void)flush(&a, &fe); /* keep what finished */
	}
	res->failed = a.failed;
	for (size_t k = 0; a.stats && k < g->nendpoints; k++)
		res->spent_usd += a.stats[k].spent_usd;
	res->spent_total_usd = d.spent_before + res->spent_usd;
	if (!rc && o->cancel && *o->cancel && a.done < a.total)
		rc = kiln_error_set(e, KILN_E_FAILED, p->dir, "interrupted after %llu of %llu jobs: "
				    "run the same command again to finish",
				    (unsigned long long)a.done, (unsigned long long)a.total);
	res->seconds = kiln_clock_mono() - a.t0;
	report(&a, "end", NULL, 0, NULL, NULL);
out:
	for (size_t i = 0; a.batch && i < a.nbatch; i++)
		pending_free(&a.batch[i]);
	for (size_t i = 0; a.resume_ids && i < a.nresume; i++)
		free(a.resume_ids[i]);
	free(a.resume_ids);
	free(a.resume);
	free(a.stats);
	free(a.batch);
	free(a.jobs);
	free(a.donev);
	free_inputs(&a);
	kiln_items_release(&a.items);
	return rc;
}

/* --- dry run ----------------------------------------------------------------------------- */

int kiln_project_render_dry_run(struct kiln_project *p, uint64_t id, struct kiln_buf *out,
				struct kiln_error *e)
{
	const struct kiln_generate *g = p->spec->generate;
	struct ai a;
	struct kiln_items one;
	struct kiln_ai_request rq;
	const struct kiln_endpoint *ep;
	const struct kiln_engine *eng;
	char where[64];
	int rc;
	memset(&a, 0, sizeof a);
	memset(&one, 0, sizeof one);
	memset(&rq, 0, sizeof rq);
	a.p = p;
	snprintf(where, sizeof where, "item %llu", (unsigned long long)id);
	if (!g || !g->nendpoints) {
		kiln_error_set(e, KILN_E_USAGE, p->spec_path, "the spec has no generate: block: "
			       "there is no request to an AI server to show");
		return kiln_error_hint(e, KILN_HINT_DRY_RUN_AI, NULL);
	}
	ep = &g->endpoints[0];
	if (!(eng = kiln_engine_for(ep)))
		return kiln_error_set(e, KILN_E_SPEC, ep->url, "no engine drives this endpoint");
	if ((rc = kiln_catalog_item(p->catalog, p->spec, id, &one, e)))
		return rc;
	if (!one.n) {
		kiln_error_set(e, KILN_E_USAGE, where, "no such item");
		rc = kiln_error_hint(e, KILN_HINT_LIST_ITEMS, NULL);
		goto out;
	}
	if (one.v[0].legendary >= 0 || one.v[0].legendary_name) {
		rc = kiln_error_set(e, KILN_E_USAGE, where, "a legendary is its own file: nothing "
				    "is sent to a server for it");
		goto out;
	}
	if ((rc = load_inputs(&a, e)) ||
	    (rc = kiln_recipe_ai_request(a.recipe, &one.v[0], 0, &rq, e)))
		goto out;
	rc = KILN_E_NOMEM;
	if (kiln_buf_addf(out, "# item %llu, candidate 0 of %u, seed %llu, recipe %s\n",
			  (unsigned long long)id, g->candidates, (unsigned long long)rq.seed,
			  rq.recipe))
		goto nomem;
	for (size_t i = 0; !strcmp(ep->engine, "comfyui") && i < rq.ncontrols; i++) /* uploads */
		if (kiln_buf_addf(out, "# first: POST %s/upload/image (multipart: image=kiln_%.16s.png, "
				  "%zu bytes of %s, overwrite=true, type=input)\n", ep->url,
				  rq.controls[i].image->sha, rq.controls[i].image->len,
				  rq.controls[i].image->path))
			goto nomem;
	for (size_t i = 0; !strcmp(ep->engine, "sdcpp") && i < rq.ncontrols; i++)
		if (kiln_buf_addf(out, "# sd-server applies the ControlNet it was started with "
				  "(--control-net): make sure it is %s\n", rq.controls[i].cn->model))
			goto nomem;
	if (ep->platform == KILN_PLATFORM_SAGEMAKER) {
		if (kiln_sagemaker_dry_run(ep, &rq, out))
			goto nomem;
	} else if (kiln_buf_addf(out, "POST %s%s\nContent-Type: application/json\n", ep->url,
				 eng->submit_path)) {
		goto nomem;
	}
	if (ep->auth_env &&
	    kiln_buf_addf(out, "Authorization: Basic <user:pass from $%s, not shown>\n",
			  ep->auth_env))
		goto nomem;
	if (ep->token_env &&
	    kiln_buf_addf(out, "Authorization: Bearer <token from $%s, not shown>\n",
			  ep->token_env))
		goto nomem;
	if (kiln_buf_adds(out, "\n"))
		goto nomem;
	if ((rc = kiln_ai_build_for(eng, ep, &rq, 0, out, e)))
		goto out;
	if (kiln_buf_adds(out, "\n"))
		goto nomem;
	rc = 0;
	goto out;
nomem:
	rc = kiln_error_set(e, KILN_E_NOMEM, where, "out of memory");
out:
	kiln_ai_request_release(&rq);
	free_inputs(&a);
	kiln_items_release(&one);
	return rc;
}
