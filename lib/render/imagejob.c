/* render/imagejob: image jobs (kiln/render.h kiln_render_image_jobs) — an upscale or an
 * inpaint of an image that is in the store, run through the same dispatcher as render
 * (retries, many endpoints, breaker, probes), for the polish stage.
 *
 * Which endpoints: those of generate.endpoints whose engine has the route, A1111/Forge
 * (POST /sdapi/v1/extra-single-image, /sdapi/v1/img2img) and ComfyUI (a graph of kiln's own),
 * self-hosted. sd-server has no upscale route (leejet/stable-diffusion.cpp examples/server/
 * routes_sdapi.cpp: /sdapi/v1/upscalers lists the hires-fix upscalers only, no
 * extra-single-image) and its img2img is not wired here; cloud endpoints run their worker's
 * txt2img only: all are left out, named in the error when none is left.
 *
 * Nothing lost, nothing done twice: a job's remote id (ComfyUI's prompt_id) is put in the
 * catalog's ai_inflight before the job is sent, under (token, KILN_IMAGE_JOB_SEED + key) and
 * the caller's recipe, so the next run after a kill -9 polls it instead of sending it again;
 * its row goes once the output is in the store (synced). Each output is checked (a PNG that
 * decodes whole, of the size asked: factor x the input, or the input's for an inpaint, not
 * blank) and gets the disclosure XMP the job says before it is stored.
 */
#include "render/dispatch.h"
#include "render/engines/engine.h"
#include "kiln/catalog.h"
#include "kiln/recipe.h"
#include "kiln/render.h"
#include "util/alloc.h"
#include "util/fs.h"

#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct run {
	struct kiln_project *p;
	struct kiln_image_job *jobs;
	size_t njobs;
	struct kiln_endpoint *eps;   /* the endpoints that can run image jobs (shallow copies) */
	size_t neps;
	const struct kiln_image_opts *o;
	uint64_t done, failed;
	struct kiln_dispatch_resume *resume;
	char **resume_ids;
	size_t nresume;
};

/* PNG size from the header; -1 when not a PNG. */
static int png_dims(const void *data, size_t len, int *w, int *h)
{
	png_image pi;
	memset(&pi, 0, sizeof pi);
	pi.version = PNG_IMAGE_VERSION;
	if (!png_image_begin_read_from_memory(&pi, data, len))
		return -1;
	*w = (int)pi.width;
	*h = (int)pi.height;
	png_image_free(&pi);
	return 0;
}

/* The output: a PNG that decodes whole, w x h, not one flat colour. */
static int check_output(const void *data, size_t len, int w, int h, struct kiln_error *e)
{
	png_image pi;
	uint8_t *px = NULL;
	int rc = 0;
	memset(&pi, 0, sizeof pi);
	pi.version = PNG_IMAGE_VERSION;
	if (!png_image_begin_read_from_memory(&pi, data, len))
		return kiln_error_set(e, KILN_E_IMAGE, NULL, "the answer is not a PNG that decodes "
				      "(%zu bytes: %s; the server must save PNG)", len, pi.message);
	if ((int)pi.width != w || (int)pi.height != h) {
		rc = kiln_error_set(e, KILN_E_SPEC, NULL, "the image is %ux%u, %dx%d was asked for",
				    pi.width, pi.height, w, h);
		png_image_free(&pi);
		return rc;
	}
	pi.format = PNG_FORMAT_RGBA;
	if (!(px = kiln_malloc(PNG_IMAGE_SIZE(pi)))) {
		png_image_free(&pi);
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory checking the image");
	}
	if (!png_image_finish_read(&pi, NULL, px, 0, NULL)) {
		rc = kiln_error_set(e, KILN_E_IMAGE, NULL, "the image data is truncated or corrupt "
				    "(%s)", pi.message);
	} else {
		size_t n = (size_t)w * (size_t)h;
		int flat = 1;
		for (size_t i = 1; i < n && flat; i++)
			flat = !memcmp(px, px + 4 * i, 4);
		if (flat)
			rc = kiln_error_set(e, KILN_E_IMAGE, NULL, "the image is blank (one flat "
					    "colour)");
	}
	free(px);
	return rc;
}

/* Read store file sha into f (data owned by the caller's block). */
static int load(struct run *r, const char *sha, struct kiln_buf *b, struct kiln_error *e)
{
	char *path = kiln_store_path(r->p->store, sha);
	int rc;
	if (!path)
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
	rc = kiln_fs_read(path, b, e);
	free(path);
	return rc;
}

/* The job's request; its files live in rq->owned, freed with it. */
static int op_request(void *user, size_t k, struct kiln_ai_request *rq, struct kiln_error *e)
{
	struct run *r = user;
	const struct kiln_image_job *j = &r->jobs[k];
	struct kiln_buf in = KILN_BUF_INIT, mask = KILN_BUF_INIT;
	struct kiln_ai_file *f;
	unsigned char *block;
	int rc;
	memset(rq, 0, sizeof *rq);
	if ((rc = load(r, j->image, &in, e)))
		return rc;
	if (j->kind == KILN_IMAGE_INPAINT && (rc = load(r, j->mask, &mask, e))) {
		kiln_buf_release(&in);
		return rc;
	}
	if (!(block = kiln_malloc(2 * sizeof *f + in.len + mask.len + 1))) {
		kiln_buf_release(&in);
		kiln_buf_release(&mask);
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
	}
	f = (struct kiln_ai_file *)(void *)block;
	memset(f, 0, 2 * sizeof *f);
	memcpy(block + 2 * sizeof *f, in.data, in.len);
	if (mask.len)
		memcpy(block + 2 * sizeof *f + in.len, mask.data, mask.len);
	f[0].path = "input.png";
	f[0].data = block + 2 * sizeof *f;
	f[0].len = in.len;
	snprintf(f[0].sha, sizeof f[0].sha, "%s", j->image);
	f[1].path = "mask.png";
	f[1].data = block + 2 * sizeof *f + in.len;
	f[1].len = mask.len;
	snprintf(f[1].sha, sizeof f[1].sha, "%s", j->mask ? j->mask : "");
	kiln_buf_release(&in);
	kiln_buf_release(&mask);
	rq->owned = block;
	rq->item_id = j->item_id;
	rq->seed = j->seed;
	rq->kind = j->kind == KILN_IMAGE_UPSCALE ? KILN_AI_UPSCALE : KILN_AI_INPAINT;
	rq->init = &f[0];
	rq->mask = j->kind == KILN_IMAGE_INPAINT ? &f[1] : NULL;
	rq->upscaler = j->upscaler;
	rq->factor = j->factor;
	rq->denoise = j->denoise;
	rq->checkpoint = j->checkpoint;
	rq->sampler = j->sampler;
	rq->scheduler = j->scheduler;
	rq->steps = j->steps > 0 ? j->steps : 20;
	rq->cfg = j->cfg > 0 ? j->cfg : 7;
	rq->width = j->width;
	rq->height = j->height;
	memcpy(rq->recipe, j->recipe, 65);
	if (!(rq->prompt = kiln_strdup(j->prompt ? j->prompt : "")) ||
	    !(rq->negative = kiln_strdup(j->negative ? j->negative : ""))) {
		kiln_recipe_ai_release(rq);
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
	}
	return 0;
}

static uint64_t inflight_seed(const struct kiln_image_job *j)
{
	return KILN_IMAGE_JOB_SEED + j->key;
}

static int op_remote(void *user, size_t k, size_t endpoint, const struct kiln_ai_job *aj,
		     struct kiln_error *e)
{
	struct run *r = user;
	const struct kiln_image_job *j = &r->jobs[k];
	const struct kiln_endpoint *ep = &r->eps[endpoint];
	struct kiln_inflight f = {j->item_id, inflight_seed(j), j->recipe, ep->url, ep->engine,
				  aj->remote_id, aj->attempt};
	return kiln_catalog_inflight_put(r->p->catalog, &f, e);
}

static int op_check(void *user, size_t k, struct kiln_ai_job *aj, struct kiln_error *e)
{
	struct run *r = user;
	const struct kiln_image_job *j = &r->jobs[k];
	int f = j->kind == KILN_IMAGE_UPSCALE ? j->factor : 1;
	return check_output(aj->image.data, aj->image.len, j->width * f, j->height * f, e);
}

static void report(struct run *r, const struct kiln_image_job *j)
{
	struct kiln_progress pr;
	if (!r->o || !r->o->progress)
		return;
	memset(&pr, 0, sizeof pr);
	pr.stage = "polish";
	pr.event = j ? "item" : "tick";
	pr.total = r->njobs;
	pr.done = r->done;
	pr.failed = r->failed;
	if (j) {
		pr.item_id = j->item_id;
		pr.ok = j->ok;
		pr.error = j->error;
		pr.endpoint = j->endpoint[0] ? j->endpoint : NULL;
	}
	r->o->progress(&pr, r->o->user);
}

static int op_attempt(void *user, const struct kiln_dispatch_attempt *at, struct kiln_error *e)
{
	struct run *r = user;
	struct kiln_image_job *j = &r->jobs[at->job];
	struct kiln_error se;
	struct kiln_buf out = KILN_BUF_INIT;
	const char *err = at->error;
	int ok = at->ok, rc = 0;
	kiln_error_clear(&se);
	if (at->ep) {
		snprintf(j->endpoint, sizeof j->endpoint, "%s", at->ep->url);
		j->engine = at->engine ? at->engine->name : NULL;
	}
	if (!at->final)
		return 0;
	if (ok && at->aj) {
		/* the disclosure in the bytes themselves: the provenance hash covers it */
		if (kiln_render_disclose_png(at->aj->image.data, at->aj->image.len, j->xmp, &out,
					     &se) ||
		    kiln_store_put(r->p->store, out.data, out.len, j->output, &se) ||
		    kiln_store_sync(r->p->store, &se)) {
			ok = 0;
			err = se.msg;
		} else {
			j->bytes = out.len;
		}
		kiln_buf_release(&out);
	}
	if (at->rq && at->engine) {
		struct kiln_buf b = KILN_BUF_INIT;
		struct kiln_error be;
		free(j->request);
		j->request = NULL;
		if (!at->engine->build_request(at->rq, 1, &b, &be))
			j->request = kiln_buf_detach(&b, NULL);
		kiln_buf_release(&b);
	}
	if (at->aj && at->aj->ran) {
		free(j->ran);
		j->ran = kiln_strdup(at->aj->ran);
	}
	j->ok = ok;
	if (!ok) {
		size_t n = strlen(err ? err : "failed") + sizeof j->endpoint + 4;
		free(j->error);
		if ((j->error = kiln_malloc(n)))
			snprintf(j->error, n, "%s%s%s", j->endpoint, j->endpoint[0] ? ": " : "",
				 err ? err : "failed");
	}
	/* the output is in the store (synced): the job is no longer in flight */
	{
		struct kiln_ai_outcome u;
		memset(&u, 0, sizeof u);
		u.item_id = j->item_id;
		u.seed = inflight_seed(j);
		u.ok = 0; /* nothing for ai_info: what the server said goes with the step */
		rc = kiln_catalog_ai_finish(r->p->catalog, &u, 1, e);
	}
	r->done++;
	r->failed += !ok;
	report(r, j);
	return rc;
}

static int collect_inflight(void *user, const struct kiln_inflight *f)
{
	struct run *r = user;
	size_t ep;
	if (!f->remote_id || !f->endpoint || !f->recipe || f->seed < KILN_IMAGE_JOB_SEED)
		return 0;
	for (ep = 0; ep < r->neps; ep++)
		if (!strcmp(r->eps[ep].url, f->endpoint) &&
		    !strcmp(r->eps[ep].engine, f->engine ? f->engine : ""))
			break;
	if (ep == r->neps)
		return 0;
	for (size_t k = 0; k < r->njobs; k++) {
		const struct kiln_image_job *j = &r->jobs[k];
		if (j->item_id != f->item_id || inflight_seed(j) != f->seed ||
		    strcmp(j->recipe, f->recipe))
			continue;
		if (!(r->resume_ids[r->nresume] = kiln_strdup(f->remote_id)))
			return 1;
		r->resume[r->nresume].job = k;
		r->resume[r->nresume].endpoint = ep;
		r->resume[r->nresume].remote_id = r->resume_ids[r->nresume];
		r->resume[r->nresume].attempt = f->attempt;
		r->nresume++;
		break;
	}
	return r->nresume >= r->njobs;
}

static int usable(const struct kiln_endpoint *ep)
{
	const struct kiln_engine *eng = kiln_engine_for(ep);
	return eng == &kiln_engine_a1111 || eng == &kiln_engine_comfyui;
}

void kiln_image_job_release(struct kiln_image_job *j)
{
	free(j->error);
	free(j->request);
	free(j->ran);
	j->error = j->request = j->ran = NULL;
}

int kiln_render_image_jobs(struct kiln_project *p, struct kiln_image_job *jobs, size_t n,
			   const struct kiln_image_opts *o, struct kiln_error *e)
{
	const struct kiln_generate *g = p->spec->generate;
	struct kiln_dispatch_opts d;
	struct kiln_dispatch_ops ops;
	struct run r;
	int rc = 0;
	if (!n)
		return 0;
	if (!g || !g->nendpoints)
		return kiln_error_set(e, KILN_E_SPEC, p->spec_path, "an engine step needs "
				      "generate.endpoints (an A1111/Forge or ComfyUI server)");
	memset(&r, 0, sizeof r);
	r.p = p;
	r.jobs = jobs;
	r.njobs = n;
	r.o = o;
	for (size_t k = 0; k < g->nendpoints; k++) {
		const struct kiln_endpoint *ep = &g->endpoints[k];
		if (ep->auth_env || ep->token_env) {
			if (!ep->secret)
				return kiln_error_set(e, KILN_E_USAGE, p->spec_path, "endpoint %s: "
						      "the environment variable %s is not set",
						      ep->url, ep->auth_env ? ep->auth_env :
						      ep->token_env);
		}
	}
	if (!(r.eps = kiln_calloc(g->nendpoints, sizeof *r.eps)))
		return kiln_error_set(e, KILN_E_NOMEM, p->dir, "out of memory");
	{
		char why[2048];
		size_t len = 0;
		why[0] = 0;
		for (size_t k = 0; k < g->nendpoints; k++) {
			const struct kiln_endpoint *ep = &g->endpoints[k];
			if (usable(ep)) {
				r.eps[r.neps++] = *ep;
				continue;
			}
			if (len < sizeof why)
				len += (size_t)snprintf(why + len, sizeof why - len, "%s%s (%s): %s",
							len ? "; " : "", ep->url, ep->engine,
							!strcmp(ep->engine, "sdcpp") ?
							"sd-server has no upscale or inpaint route "
							"kiln drives (no extra-single-image)" :
							"a cloud endpoint runs its worker's txt2img "
							"only");
		}
		if (!r.neps) {
			free(r.eps);
			return kiln_error_set(e, KILN_E_SPEC, p->spec_path, "no endpoint can run "
					      "an engine %s: %s", jobs[0].kind == KILN_IMAGE_UPSCALE ?
					      "upscale" : "inpaint", why);
		}
	}
	/* sizes, from the inputs' headers */
	for (size_t k = 0; k < n; k++) {
		struct kiln_buf b = KILN_BUF_INIT;
		struct kiln_image_job *j = &jobs[k];
		j->ok = 0;
		if ((rc = load(&r, j->image, &b, e)))
			goto out;
		if (png_dims(b.data, b.len, &j->width, &j->height)) {
			kiln_buf_release(&b);
			rc = kiln_error_set(e, KILN_E_IMAGE, j->image, "the input of an engine step "
					    "is not a PNG");
			goto out;
		}
		kiln_buf_release(&b);
	}
	if ((rc = kiln_catalog_ai_init(p->catalog, e)))
		goto out;
	r.resume = kiln_calloc(n + 1, sizeof *r.resume);
	r.resume_ids = kiln_calloc(n + 1, sizeof *r.resume_ids);
	if (!r.resume || !r.resume_ids) {
		rc = kiln_error_set(e, KILN_E_NOMEM, p->dir, "out of memory");
		goto out;
	}
	if ((rc = kiln_catalog_inflight_each(p->catalog, collect_inflight, &r, e)))
		goto out;
	memset(&d, 0, sizeof d);
	d.endpoints = r.eps;
	d.nendpoints = r.neps;
	d.njobs = n;
	d.retries = g->retries;
	d.resume = r.resume;
	d.nresume = r.nresume;
	d.cancel = o ? o->cancel : NULL;
	d.jitter_seed = p->spec->seed;
	d.check_threads = 1;
	memset(&ops, 0, sizeof ops);
	ops.request = op_request;
	ops.remote = op_remote;
	ops.check = op_check;
	ops.attempt = op_attempt;
	ops.user = &r;
	rc = kiln_dispatch_run(&d, &ops, NULL, e);
out:
	for (size_t i = 0; r.resume_ids && i < r.nresume; i++)
		free(r.resume_ids[i]);
	free(r.resume_ids);
	free(r.resume);
	free(r.eps);
	return rc;
}
