/* inpaint.c: kiln_polish_inpaint (kiln/polish.h) — a token's current image repainted where a
 * mask is white, by the AI endpoints (kiln/render.h kiln_render_image_jobs: A1111 img2img with
 * the mask, ComfyUI VAEEncodeForInpaint), recorded as an "inpaint" step of its polish chain.
 *
 * The input is the token's current raster image (edit.c kiln_polish_current_raster: an
 * artist's edit, an earlier inpaint or an upscale when the chain has one, else the render);
 * the mask (a PNG of that image's size, else refused naming both sizes; not all black) is
 * stored by hash. The result is appended to the chain like an artist's edit (edit.c
 * kiln_polish_save_and_walk): polish.c's walk puts it back where its input is the image, so
 * the spec's steps after that point (a vectorize, an upscale listed after it) are made again
 * on the result and the steps before it are kept. Its settings name the mask, prompt,
 * negative, denoise, seed, engine and endpoint; its recipe is the job's (below). A token that
 * was reviewed is pending again (kiln_catalog_review_reopen): reviewers approved another
 * image.
 *
 * The k-th inpaint of a token asks for seed (render seed + 0x10000 + k) mod 2^32; the job
 * recipe is the SHA-256 of the input, mask, prompt, negative, denoise and seed: the same
 * command run again after a kill -9 collects a job the server was running (its remote id
 * kept) rather than sending it again.
 *
 * Disclosure: the pixels outside the mask are the input's and those inside are the model's (a
 * person drew only the mask, which decides where, not what): the result is
 * trainedAlgorithmicMedia, unless the input already held a person's work (a legendary, an
 * imported edit, an overlay): compositeWithTrainedAlgorithmicMedia.
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

/* Whether the steps before the current image hold a person's work; the count of inpaints. */
static void chain_facts(json_t *steps, const char *cur, int *human, unsigned *inpaints)
{
	size_t i;
	json_t *s;
	*human = 0;
	*inpaints = 0;
	json_array_foreach(steps, i, s) {
		const char *k = json_string_value(json_object_get(s, "kind"));
		if (!k)
			continue;
		if (!strcmp(k, "edit") || !strcmp(k, "overlay"))
			*human = 1;
		if (!strcmp(k, "inpaint"))
			(*inpaints)++;
		if (!strcmp(json_string_value(json_object_get(s, "output")) ?
			    json_string_value(json_object_get(s, "output")) : "", cur))
			break;
	}
}

/* The mask's bytes (from in->mask or the store), checked against the input's size w x h. */
static int load_mask(struct kiln_project *p, const struct kiln_polish_inpaint *in, int w, int h,
		     struct kiln_buf *mask, struct kiln_error *e)
{
	char *path = in->mask ? NULL : kiln_store_path(p->store, in->mask_sha);
	const char *f = in->mask ? in->mask : path;
	int rc, mw, mh;
	if (!f)
		return kiln_error_set(e, KILN_E_NOMEM, "inpaint", "out of memory");
	if ((rc = kiln_polish_size(f, &mw, &mh, e)))
		goto out;
	if (mw != w || mh != h) {
		rc = kiln_error_set(e, KILN_E_USAGE, in->mask ? in->mask : "mask", "the mask is "
				    "%dx%d and the token's image is %dx%d: draw the mask at the "
				    "image's size (white: repaint, black: keep)", mw, mh, w, h);
		goto out;
	}
	if ((rc = kiln_polish_mask_check(f, e)) || (rc = kiln_fs_read(f, mask, e)))
		goto out;
out:
	free(path);
	return rc;
}

int kiln_polish_inpaint(struct kiln_project *p, const struct kiln_polish_inpaint *in,
			struct kiln_polish_inpaint_result *res, struct kiln_error *e)
{
	const struct kiln_generate *g = p->spec->generate;
	struct kiln_items items;
	const struct kiln_item *it;
	struct kiln_image_job job;
	struct kiln_polish_step st;
	struct kiln_buf mask = KILN_BUF_INIT;
	json_t *steps = NULL, *set = NULL;
	char where[48], cur[65], *path = NULL, *settings = NULL, note[160];
	int rc, w, h, human;
	unsigned inpaints;
	memset(res, 0, sizeof *res);
	memset(&job, 0, sizeof job);
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
	if (!in->mask && !in->mask_sha)
		return kiln_error_set(e, KILN_E_USAGE, where, "inpaint needs a mask");
	if ((rc = kiln_polish_load_item(p, in->id, &items, e)))
		return rc;
	it = &items.v[0];
	if ((rc = kiln_polish_chain_array(p, in->id, &steps, e)))
		goto out;
	kiln_polish_current_raster(p, it, steps, cur);
	memcpy(res->input, cur, 65);
	chain_facts(steps, cur, &human, &inpaints);
	if (!(path = kiln_store_path(p->store, cur))) {
		rc = kiln_error_set(e, KILN_E_NOMEM, where, "out of memory");
		goto out;
	}
	if ((rc = kiln_polish_size(path, &w, &h, e)) ||
	    (rc = load_mask(p, in, w, h, &mask, e)) ||
	    (rc = kiln_store_put(p->store, mask.data, mask.len, res->mask, e)))
		goto out;
	job.kind = KILN_IMAGE_INPAINT;
	job.item_id = it->id;
	job.key = ((uint64_t)1 << 20) + inpaints;
	job.seed = ((it->seed & 0xffffffffull) + 0x10000 + inpaints) & 0xffffffffull;
	job.image = cur;
	job.mask = res->mask;
	job.prompt = in->prompt;
	job.negative = in->negative ? in->negative : g->negative;
	job.denoise = in->denoise;
	job.checkpoint = g->checkpoint;
	job.sampler = g->sampler;
	job.scheduler = g->scheduler;
	job.steps = g->steps;
	job.cfg = g->cfg;
	job.xmp = human || it->legendary >= 0 || it->legendary_name ? 1 : 0;
	inpaint_recipe(cur, res->mask, in, job.seed, job.recipe);
	{
		struct kiln_image_opts io;
		memset(&io, 0, sizeof io);
		io.cancel = in->cancel;
		io.progress = in->progress;
		io.user = in->user;
		if ((rc = kiln_render_image_jobs(p, &job, 1, &io, e)))
			goto out;
	}
	if (!job.ok) {
		snprintf(res->error, sizeof res->error, "%s", job.error ? job.error : "failed");
		rc = kiln_error_set(e, KILN_E_FAILED, where, "inpaint failed: %s", res->error);
		goto out;
	}
	memcpy(res->image, job.output, 65);
	set = json_pack("{s:s, s:s, s:s?, s:f, s:I, s:s, s:s}", "mask", res->mask, "prompt",
			in->prompt, "negative", job.negative, "denoise", in->denoise, "seed",
			(json_int_t)job.seed, "engine", job.engine ? job.engine : p->spec->engine,
			"endpoint", job.endpoint);
	if (!set || !(settings = json_dumps(set, JSON_COMPACT | JSON_SORT_KEYS))) {
		rc = kiln_error_set(e, KILN_E_NOMEM, where, "out of memory");
		goto out;
	}
	snprintf(note, sizeof note, "inpaint (denoise %.2f)", in->denoise);
	memset(&st, 0, sizeof st);
	st.item_id = it->id;
	st.kind = "inpaint";
	st.settings = settings;
	st.recipe = job.recipe;
	st.input = cur;
	st.output = job.output;
	st.bytes = job.bytes;
	st.image = 1;
	st.by = "kiln";
	st.tool = job.engine ? job.engine : p->spec->engine;
	st.note = note;
	/* the output is in the store (synced by the image jobs) before it is recorded */
	if ((rc = kiln_polish_save_and_walk(p, it->id, steps, &st, e)))
		goto out;
	snprintf(note, sizeof note, "inpainted (%.12s...): the image changed", job.output);
	rc = kiln_catalog_review_reopen(p->catalog, it->id, note, e);
out:
	kiln_image_job_release(&job);
	json_decref(set);
	json_decref(steps);
	free(settings);
	free(path);
	kiln_buf_release(&mask);
	kiln_items_release(&items);
	return rc;
}

int kiln_polish_run_request(struct kiln_project *p, const struct kiln_inpaint_request *q,
			    const volatile int *cancel, struct kiln_polish_inpaint_result *res,
			    struct kiln_error *e)
{
	struct kiln_polish_inpaint in;
	struct kiln_polish_inpaint_result mine;
	struct kiln_error me;
	int rc;
	if (!res)
		res = &mine;
	memset(&in, 0, sizeof in);
	in.id = q->item_id;
	in.mask_sha = q->mask;
	in.prompt = q->prompt;
	in.negative = q->negative;
	in.denoise = q->denoise;
	in.cancel = cancel;
	rc = kiln_polish_inpaint(p, &in, res, e);
	if (!rc)
		return kiln_catalog_inpaint_done(p->catalog, q->id, res->input, res->image, e);
	if (cancel && *cancel)
		return rc;
	/* the request's error names it; the catalog's, if it cannot record it */
	kiln_error_clear(&me);
	if (kiln_catalog_inpaint_failed(p->catalog, q->id, e->msg, &me)) {
		*e = me;
		return me.code;
	}
	return rc;
}
