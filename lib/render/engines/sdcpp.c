/* engine_sdcpp: stable-diffusion.cpp's sd-server, async API.
 *
 * POST /sdcpp/v1/img_gen -> 202 {id, status: queued}; GET /sdcpp/v1/jobs/{id} until status is
 * completed (result.images[0].b64_json), failed or cancelled. LoRAs are the structured field
 * lora: [{path, multiplier}], path being the file under --lora-model-dir with its extension
 * (the server does not parse <lora:> tags); a ControlNet image goes in control_image (base64)
 * with control_strength. sd-server runs the model and ControlNet it was started with: the
 * spec loader refuses a checkpoint, more than one unit per image, and unit settings it has no
 * field for (docs/engines.md); a unit's `model` names what the server should have loaded.
 * The job id is the server's: it is persisted as soon as the 202 arrives, so a kill -9 after
 * that point is collected by the next run; a 404/410 on poll means the server lost or expired
 * the job, which is then submitted again.
 */
#include "render/engines/engine.h"
#include "util/alloc.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PH_SUBMIT, PH_POLL };

static int sdcpp_build(const struct kiln_ai_request *rq, int redact, struct kiln_buf *out,
		       struct kiln_error *e)
{
	json_t *o, *sp, *loras = json_array();
	const char *sampler = kiln_ai_sampler_name("sdcpp", rq->sampler);
	const char *sched = kiln_ai_scheduler_name("sdcpp", rq->scheduler);
	char *text = NULL;
	int rc = KILN_E_NOMEM;
	/* sd-server finds a LoRA by its file path under --lora-model-dir, extension included */
	for (size_t i = 0; loras && i < rq->nloras; i++) {
		char file[512];
		if (kiln_ai_lora_file(rq->loras[i].name, file, sizeof file)) {
			rc = kiln_error_set(e, KILN_E_SPEC, NULL, "lora name '%s' is too long",
					    rq->loras[i].name);
			goto out;
		}
		if (json_array_append_new(loras, json_pack("{s:s, s:f}", "path", file,
							   "multiplier", rq->loras[i].weight)))
			goto out;
	}
	sp = json_pack("{s:s, s:s, s:i, s:{s:f}}", "sample_method", sampler ? sampler : "default",
		       "scheduler", sched ? sched : "default", "sample_steps", rq->steps,
		       "guidance", "txt_cfg", rq->cfg);
	o = json_pack("{s:s, s:s, s:I, s:i, s:i, s:i, s:o, s:O, s:s}", "prompt", rq->prompt,
		      "negative_prompt", rq->negative, "seed", (json_int_t)rq->seed,
		      "width", rq->width, "height", rq->height, "batch_count", 1,
		      "sample_params", sp, "lora", loras, "output_format", "png");
	if (!o)
		goto out;
	if (rq->ncontrols) {
		const struct kiln_ai_file *f = rq->controls[0].image;
		struct kiln_buf b = KILN_BUF_INIT;
		json_t *v;
		if (redact) {
			if (kiln_buf_addf(&b, "sha256:%s", f->sha)) {
				json_decref(o);
				goto out;
			}
		} else if (kiln_b64_encode(f->data, f->len, &b)) {
			json_decref(o);
			goto out;
		}
		v = json_stringn(b.data ? b.data : "", b.len);
		kiln_buf_release(&b);
		if (json_object_set_new(o, "control_image", v) ||
		    json_object_set_new(o, "control_strength",
					json_real(rq->controls[0].cn->weight))) {
			json_decref(o);
			goto out;
		}
	}
	rc = kiln_ai_json_append(o, JSON_COMPACT | JSON_PRESERVE_ORDER, out);
	json_decref(o);
out:
	if (rc == KILN_E_NOMEM)
		kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory building an sd.cpp request");
	free(text);
	json_decref(loras);
	return rc;
}

static void poll_req(struct kiln_ai_job *j, struct kiln_http *next)
{
	next->method = "GET";
	snprintf(next->path, sizeof next->path, "/sdcpp/v1/jobs/%s", j->remote_id);
	j->phase = PH_POLL;
}

static int sdcpp_start(struct kiln_ai_job *j, struct kiln_http *next, struct kiln_error *e)
{
	if (j->resumed && j->remote_id[0]) {
		poll_req(j, next);
		return 0;
	}
	j->phase = PH_SUBMIT;
	j->remote_id[0] = 0;
	next->method = "POST";
	next->no_resend = 1;
	snprintf(next->path, sizeof next->path, "/sdcpp/v1/img_gen");
	return sdcpp_build(j->rq, 0, &next->body, e);
}

static enum kiln_step sdcpp_response(struct kiln_ai_job *j, long status, const char *body,
				     size_t len, struct kiln_http *next, struct kiln_error *e)
{
	json_t *o = NULL;
	enum kiln_step st = KILN_STEP_RETRY;
	char ex[300];
	const char *s;
	if (!status && j->phase == PH_POLL && ++j->poll_errors < KILN_POLL_ERRORS) {
		poll_req(j, next);
		return KILN_STEP_POLL;
	}
	if (!status)
		return KILN_STEP_RETRY;
	kiln_ai_excerpt(ex, sizeof ex, body, len);
	if (j->phase == PH_SUBMIT) {
		if (status != 202 && status != 200) {
			kiln_error_set(e, KILN_E_NET, NULL, "img_gen answered HTTP %ld: %s", status, ex);
			return status == 400 ? KILN_STEP_FATAL : KILN_STEP_RETRY;
		}
		o = json_loadb(body, len, 0, NULL);
		s = json_string_value(json_object_get(o, "id"));
		if (!s || strlen(s) >= sizeof j->remote_id) {
			kiln_error_set(e, KILN_E_NET, NULL, "img_gen answer has no job id: %s", ex);
			goto out;
		}
		snprintf(j->remote_id, sizeof j->remote_id, "%s", s);
		j->remote_new = 1;
		poll_req(j, next);
		st = KILN_STEP_POLL;
		goto out;
	}
	if (status == 404 || status == 410) {
		/* lost or expired: submit again (a new attempt) */
		kiln_error_set(e, KILN_E_NET, NULL, "job %s is gone from the server (HTTP %ld)",
			       j->remote_id, status);
		return KILN_STEP_RETRY;
	}
	if (status != 200) {
		kiln_error_set(e, KILN_E_NET, NULL, "jobs/%s answered HTTP %ld: %s", j->remote_id,
			       status, ex);
		if (++j->poll_errors >= KILN_POLL_ERRORS)
			return KILN_STEP_RETRY;
		poll_req(j, next);
		return KILN_STEP_POLL;
	}
	j->poll_errors = 0;
	if (!(o = json_loadb(body, len, 0, NULL))) {
		kiln_error_set(e, KILN_E_NET, NULL, "jobs/%s answer is not JSON: cut short?",
			       j->remote_id);
		goto out;
	}
	s = json_string_value(json_object_get(o, "status"));
	if (s && (!strcmp(s, "queued") || !strcmp(s, "generating"))) {
		poll_req(j, next);
		st = KILN_STEP_POLL;
	} else if (s && !strcmp(s, "completed")) {
		json_t *img = json_object_get(json_array_get(json_object_get(
			json_object_get(o, "result"), "images"), 0), "b64_json");
		if (!json_is_string(img)) {
			kiln_error_set(e, KILN_E_NET, NULL, "job %s completed without an image",
				       j->remote_id);
			goto out;
		}
		kiln_buf_reset(&j->image);
		if (kiln_b64_decode(json_string_value(img), json_string_length(img), &j->image)) {
			kiln_error_set(e, KILN_E_IMAGE, NULL, "job %s: b64_json is not base64",
				       j->remote_id);
			goto out;
		}
		j->seed_used = j->rq->seed;
		st = KILN_STEP_DONE;
	} else {
		const char *m = json_string_value(json_object_get(json_object_get(o, "error"),
								  "message"));
		kiln_error_set(e, KILN_E_NET, NULL, "job %s %s: %s", j->remote_id, s ? s : "?",
			       m ? m : ex);
	}
out:
	json_decref(o);
	return st;
}

/* A finished job's status carries its image as base64. */
static size_t sdcpp_cap(const struct kiln_ai_request *rq, const char *path)
{
	if (rq && !strncmp(path, "/sdcpp/v1/jobs/", 15))
		return kiln_ai_reply_b64(rq, 1);
	return KILN_AI_REPLY_JSON;
}

const struct kiln_engine kiln_engine_sdcpp = {
	.name = "sdcpp",
	.health_path = "/sdcpp/v1/capabilities",
	.build_request = sdcpp_build,
	.start = sdcpp_start,
	.on_response = sdcpp_response,
	.reply_cap = sdcpp_cap,
};
