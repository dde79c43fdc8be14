/* inpaint.c: kiln_polish_inpaint (kiln/polish.h) — a token's render repainted where a mask
 * is white, by the AI endpoints (kiln/render.h kiln_render_image_jobs: A1111 img2img with the
 * mask, ComfyUI VAEEncodeForInpaint), each result a new candidate of the token.
 *
 * The input is the token's render (the candidate that is its image), not its polished image:
 * the results are candidates like the render's, so the spec's polish steps are then applied
 * to the one the token keeps (an upscale is never applied twice). The mask (a PNG of the
 * render's size, else refused naming both sizes) is stored by hash. Each result is recorded
 * as an accepted render of the token (kiln_catalog_record_renders: its request, redacted,
 * names the input and mask by SHA-256, with the prompt and denoise; the engine and endpoint),
 * so review lists it among the token's candidates and, when review is configured, the token
 * is pending again; without review the last result is the token's image.
 *
 * Candidate k asks for seed (render seed + 0x10000 + k) mod 2^32; its job recipe is the
 * SHA-256 of the input, mask, prompt, negative, denoise and seed: the same command run again
 * after a kill -9 collects a job the server was running (its remote id kept) rather than
 * sending it again. The render row of a result carries the repainted render's recipe and
 * seed: it is current exactly while that render is (release's check, review's rounds).
 *
 * Disclosure: the pixels outside the mask are the model's render and those inside are the
 * model's too (a person drew only the mask, which decides where, not what): the result is
 * trainedAlgorithmicMedia. A legendary's input is a person's file: its results are
 * compositeWithTrainedAlgorithmicMedia.
 */
#include "kiln/polish.h"
#include "polish/ops.h"
#include "kiln/catalog.h"
#include "kiln/render.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/fs.h"
#include "util/sha.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void inpaint_recipe(const char *input, const char *mask, const struct kiln_polish_inpaint *in,
			   uint64_t seed, char out[65])
{
	struct kiln_sha256 h;
	char head[400];
	int n = snprintf(head, sizeof head, "kiln-inpaint/1\n%s\n%s\n%.6f\n%llu\n", input, mask,
			 in->denoise, (unsigned long long)seed);
	if (kiln_sha256_init(&h)) {
		memset(out, '0', 64);
		out[64] = 0;
		return;
	}
	kiln_sha256_update(&h, head, (size_t)n);
	kiln_sha256_update(&h, in->prompt, strlen(in->prompt));
	kiln_sha256_update(&h, "\n", 1);
	if (in->negative)
		kiln_sha256_update(&h, in->negative, strlen(in->negative));
	kiln_sha256_final(&h, NULL, out);
}

int kiln_polish_inpaint(struct kiln_project *p, const struct kiln_polish_inpaint *in,
			struct kiln_polish_inpaint_result *res, struct kiln_error *e)
{
	const struct kiln_generate *g = p->spec->generate;
	struct kiln_items items;
	const struct kiln_item *it = NULL;
	struct kiln_image_job *jobs = NULL;
	struct kiln_render_record *recs = NULL;
	struct kiln_buf mask = KILN_BUF_INIT;
	struct kiln_image_opts io;
	char where[48], mask_sha[65], *path = NULL;
	int rc, w, h, mw, mh;
	size_t nrec = 0;
	double t0 = kiln_clock_unix();
	memset(res, 0, sizeof *res);
	snprintf(where, sizeof where, "item %llu", (unsigned long long)in->id);
	if (!g)
		return kiln_error_set(e, KILN_E_SPEC, p->spec_path, "inpaint needs an AI engine "
				      "(engine a1111 or comfyui with generate.endpoints)");
	if (!in->prompt || !*in->prompt)
		return kiln_error_set(e, KILN_E_USAGE, where, "inpaint needs a prompt: what to "
				      "paint where the mask is white");
	if (!(in->denoise > 0 && in->denoise <= 1))
		return kiln_error_set(e, KILN_E_USAGE, where, "denoise must be above 0 and at most 1, "
				      "not %g", in->denoise);
	if (in->candidates < 1 || in->candidates > 16)
		return kiln_error_set(e, KILN_E_USAGE, where, "candidates must be 1 to 16, not %u",
				      in->candidates);
	memset(&items, 0, sizeof items);
	if ((rc = kiln_catalog_items(p->catalog, p->spec, &items, e)))
		return rc;
	for (size_t i = 0; i < items.n; i++)
		if (items.v[i].id == in->id)
			it = &items.v[i];
	if (!it) {
		rc = kiln_error_set(e, KILN_E_USAGE, where, "no such token in the plan");
		goto out;
	}
	if (it->status != KILN_ITEM_RENDERED || !it->image[0]) {
		rc = kiln_error_set(e, KILN_E_STATE, where, "not rendered yet: nothing to inpaint");
		goto out;
	}
	/* the mask: decodes, the render's size */
	if ((rc = kiln_polish_size(in->mask, &mw, &mh, e)))
		goto out;
	if (!(path = kiln_store_path(p->store, it->image))) {
		rc = kiln_error_set(e, KILN_E_NOMEM, where, "out of memory");
		goto out;
	}
	if ((rc = kiln_polish_size(path, &w, &h, e)))
		goto out;
	if (mw != w || mh != h) {
		rc = kiln_error_set(e, KILN_E_USAGE, in->mask, "the mask is %dx%d and the token's "
				    "image is %dx%d: draw the mask at the image's size (white: "
				    "repaint, black: keep)", mw, mh, w, h);
		goto out;
	}
	if ((rc = kiln_polish_check_png(in->mask, w, h, e)) && e->code != KILN_E_IMAGE)
		goto out;
	if (rc && !strstr(e->msg, "blank")) {
		kiln_error_prefix(e, "mask %s", in->mask);
		goto out;
	}
	rc = 0; /* an all-white mask (one colour) repaints everything: allowed */
	if ((rc = kiln_fs_read(in->mask, &mask, e)) ||
	    (rc = kiln_store_put(p->store, mask.data, mask.len, mask_sha, e)))
		goto out;
	memcpy(res->mask, mask_sha, 65);
	jobs = kiln_calloc(in->candidates, sizeof *jobs);
	recs = kiln_calloc(in->candidates, sizeof *recs);
	if (!jobs || !recs) {
		rc = kiln_error_set(e, KILN_E_NOMEM, where, "out of memory");
		goto out;
	}
	for (unsigned k = 0; k < in->candidates; k++) {
		struct kiln_image_job *j = &jobs[k];
		j->kind = KILN_IMAGE_INPAINT;
		j->item_id = it->id;
		j->key = ((uint64_t)1 << 20) + k;
		j->seed = ((it->seed & 0xffffffffull) + 0x10000 + k) & 0xffffffffull;
		j->image = it->image;
		j->mask = mask_sha;
		j->prompt = in->prompt;
		j->negative = in->negative ? in->negative : g->negative;
		j->denoise = in->denoise;
		j->checkpoint = g->checkpoint;
		j->sampler = g->sampler;
		j->scheduler = g->scheduler;
		j->steps = g->steps;
		j->cfg = g->cfg;
		j->xmp = it->legendary >= 0 || it->legendary_name ? 1 : 0;
		inpaint_recipe(it->image, mask_sha, in, j->seed, j->recipe);
	}
	memset(&io, 0, sizeof io);
	io.cancel = in->cancel;
	io.progress = in->progress;
	io.user = in->user;
	if ((rc = kiln_render_image_jobs(p, jobs, in->candidates, &io, e)))
		goto out;
	for (unsigned k = 0; k < in->candidates; k++) {
		const struct kiln_image_job *j = &jobs[k];
		struct kiln_render_record *x;
		if (!j->ok) {
			res->failed++;
			if (!res->error[0])
				snprintf(res->error, sizeof res->error, "%s", j->error ? j->error :
					 "failed");
			continue;
		}
		x = &recs[nrec++];
		x->item_id = it->id;
		x->engine = j->engine ? j->engine : p->spec->engine;
		x->endpoint = j->endpoint;
		/* the input render's recipe and seed: the result is current while the render it
		 * repainted is (release, review rounds); the inpaint's own seed, input, mask,
		 * prompt and denoise are in the request */
		x->recipe = it->recipe;
		x->seed = it->seed & 0xffffffffull;
		x->request_json = j->request;
		x->ran_json = j->ran;
		x->ok = 1;
		x->image = j->output;
		x->bytes = j->bytes;
		x->started = t0;
		x->finished = kiln_clock_unix();
		memcpy(res->images[res->made], j->output, 65);
		res->made++;
	}
	/* the outputs are in the store (synced by the image jobs) before they are recorded */
	if (nrec && (rc = kiln_catalog_record_renders(p->catalog, recs, nrec, e)))
		goto out;
	if (!nrec) {
		rc = kiln_error_set(e, KILN_E_FAILED, where, "no inpaint candidate was made: %s",
				    res->error);
		goto out;
	}
	/* the token's chain is made again from its new image */
	{
		struct kiln_polish_opts po;
		struct kiln_polish_result pr;
		memset(&po, 0, sizeof po);
		po.ids = &in->id;
		po.nids = 1;
		po.cancel = in->cancel;
		rc = kiln_project_polish(p, &po, &pr, e);
	}
out:
	for (unsigned k = 0; jobs && k < in->candidates; k++)
		kiln_image_job_release(&jobs[k]);
	free(jobs);
	free(recs);
	free(path);
	kiln_buf_release(&mask);
	kiln_items_release(&items);
	return rc;
}
