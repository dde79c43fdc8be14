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
 *
 * What the real server does silently, and what kiln does about it (examples/server/ and
 * examples/common/ of leejet/stable-diffusion.cpp):
 *   - steps above 100 are clamped (SDGenerationParams::resolve_and_validate, strict mode, in
 *     common.cpp): the probe sets max_steps 100, supports() and the spec loader refuse more;
 *   - a sampler or scheduler name it does not know keeps its default (from_json_str in
 *     common.cpp): supports() checks the names against /sdcpp/v1/capabilities' lists, and the
 *     echoed "Sampler: <method> <scheduler>" of the image is compared with what was sent;
 *   - a control image of fewer than three channels fails the whole request with 400 "invalid
 *     generation parameters" (load_image_common in media_io.cpp asks stb_image for 3 channels
 *     and refuses fewer): grey control images are expanded to RGB before sending;
 *   - LoRAs are looked up by their path relative to --lora-model-dir as the capabilities list
 *     them (get_lora_full_path in runtime.cpp), and only .safetensors, .pt, .pth and .gguf files
 *     are listed (is_supported_model_ext): a .ckpt or .bin LoRA is never found, so a request
 *     naming one is a 400; kiln sends the listed path and refuses the others at load;
 *   - over max_pending_jobs (64) queued, img_gen answers 429 (routes_sdcpp.cpp): back-pressure,
 *     KILN_STEP_BUSY, not a failed attempt.
 * What the image says it was made with (its "parameters" text: Steps, Sampler, Model, Seed;
 * get_image_params in common.cpp) is kept in job->ran.
 */
#include "render/engines/engine.h"
#include "util/alloc.h"
#include "util/image.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { PH_SUBMIT, PH_POLL };

/* sd-server clamps sample_steps to 1..100 (common.cpp, resolve_and_validate strict) */
#define SDCPP_MAX_STEPS 100

static int build(const struct kiln_ai_request *rq, const struct kiln_ai_caps *caps, int redact,
		 struct kiln_buf *out, struct kiln_error *e)
{
	json_t *o, *sp, *loras = json_array();
	const char *sampler = kiln_ai_sampler_name("sdcpp", rq->sampler);
	const char *sched = kiln_ai_schedule("sdcpp", rq->sampler, rq->scheduler);
	int rc = KILN_E_NOMEM;
	/* sd-server finds a LoRA by its file path under --lora-model-dir, extension included */
	for (size_t i = 0; loras && i < rq->nloras; i++) {
		char file[512];
		if (kiln_ai_lora_listed(caps, rq->loras[i].name, file, sizeof file)) {
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
		struct kiln_buf b = KILN_BUF_INIT, rgb = KILN_BUF_INIT;
		json_t *v;
		int grey = 0;
		if (redact) {
			rc = kiln_buf_addf(&b, "sha256:%s", f->sha) ? KILN_E_NOMEM : 0;
		} else if (!(rc = kiln_image_rgb_png(f->data, f->len, f->path, &rgb, &grey, e))) {
			/* grey: sd-server refuses fewer than 3 channels (see the top) */
			rc = kiln_b64_encode(grey ? (const void *)rgb.data : f->data,
					     grey ? rgb.len : f->len, &b);
		}
		kiln_buf_release(&rgb);
		if (rc) {
			kiln_buf_release(&b);
			json_decref(o);
			goto out;
		}
		rc = KILN_E_NOMEM;
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
	json_decref(loras);
	return rc;
}

static int sdcpp_build(const struct kiln_ai_request *rq, int redact, struct kiln_buf *out,
		       struct kiln_error *e)
{
	return build(rq, NULL, redact, out, e);
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
	return build(j->rq, j->caps, 0, &next->body, e);
}

/* The text of the tEXt chunk `key` of PNG p[n] (NUL-terminated copy in out), or -1. */
static int png_text(const unsigned char *p, size_t n, const char *key, char *out, size_t cap)
{
	size_t at = 8, klen = strlen(key);
	if (n < 8 || memcmp(p, "\x89PNG\r\n\x1a\n", 8))
		return -1;
	while (at + 12 <= n) {
		size_t len = (size_t)p[at] << 24 | (size_t)p[at + 1] << 16 | (size_t)p[at + 2] << 8 |
			     p[at + 3];
		const unsigned char *type = p + at + 4, *d = p + at + 8;
		if (len > n - at - 12)
			return -1;
		if (!memcmp(type, "IDAT", 4) || !memcmp(type, "IEND", 4))
			return -1;
		if (!memcmp(type, "tEXt", 4) && len > klen && !memcmp(d, key, klen) && !d[klen]) {
			size_t t = len - klen - 1 < cap - 1 ? len - klen - 1 : cap - 1;
			memcpy(out, d + klen + 1, t);
			out[t] = 0;
			return 0;
		}
		at += len + 12;
	}
	return -1;
}

/* The value after "key: " in sd.cpp's parameters line ("Steps: 30, CFG scale: ..."), up to
 * the next ", " (or the end), into out. -1: not there. */
static int param(const char *text, const char *key, char *out, size_t cap)
{
	const char *p = text;
	size_t k = strlen(key), n;
	while ((p = strstr(p, key))) {
		if ((p == text || p[-1] == ' ' || p[-1] == '\n') && !strncmp(p + k, ": ", 2))
			break;
		p += k;
	}
	if (!p)
		return -1;
	p += k + 2;
	n = strcspn(p, ",\n");
	if (n >= cap)
		n = cap - 1;
	memcpy(out, p, n);
	out[n] = 0;
	return 0;
}

/* job->ran from the image's parameters text, and the check that the server ran what was
 * asked: the steps (a clamp), the sampler and the scheduler (a name it did not know is
 * dropped for its default). 0 ok (or nothing echoed); -1 with e naming the mismatch. */
static int check_ran(struct kiln_ai_job *j, struct kiln_error *e)
{
	const struct kiln_ai_request *rq = j->rq;
	const char *want_s = kiln_ai_sampler_name("sdcpp", rq->sampler);
	const char *want_k = kiln_ai_schedule("sdcpp", rq->sampler, rq->scheduler);
	char text[4096], steps[32] = "", smp[128] = "", model[256] = "", *sched;
	json_t *o;
	if (png_text((const unsigned char *)j->image.data, j->image.len, "parameters", text,
		     sizeof text))
		return 0;
	param(text, "Steps", steps, sizeof steps);
	param(text, "Sampler", smp, sizeof smp);
	param(text, "Model", model, sizeof model);
	sched = strchr(smp, ' ');
	if (sched)
		*sched++ = 0;
	/* out of memory here only loses the record of what ran, not the image */
	o = json_object();
	if (o && ((*model && json_object_set_new(o, "model", json_string(model))) ||
		  (*steps && json_object_set_new(o, "steps", json_integer(atoi(steps)))) ||
		  (*smp && json_object_set_new(o, "sampler", json_string(smp))) ||
		  (sched && json_object_set_new(o, "scheduler", json_string(sched))))) {
		json_decref(o);
		o = NULL;
	}
	free(j->ran);
	j->ran = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	if (*steps && atoi(steps) != rq->steps)
		return kiln_error_set(e, KILN_E_SPEC, NULL, "sd-server ran %s steps, not the %d "
				      "asked (it clamps steps to 1..%d)", steps, rq->steps,
				      SDCPP_MAX_STEPS), -1;
	if (want_s && *smp && strcmp(smp, want_s))
		return kiln_error_set(e, KILN_E_SPEC, NULL, "sd-server ran sampler %s, not %s: "
				      "it does not know '%s' and used its default", smp, want_s,
				      want_s), -1;
	if (want_k && sched && strcmp(sched, want_k) &&
	    !(!strcmp(want_k, "discrete") && !strcmp(sched, "normal")))
		return kiln_error_set(e, KILN_E_SPEC, NULL, "sd-server ran scheduler %s, not %s: "
				      "it does not know '%s' and used its default", sched, want_k,
				      want_k), -1;
	return 0;
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
		if (status == 429) {
			/* over max_pending_jobs queued (routes_sdcpp.cpp): back-pressure, the
			 * same submission later */
			kiln_error_set(e, KILN_E_NET, NULL, "img_gen answered HTTP 429 (queue "
				       "full): %s", ex);
			return KILN_STEP_BUSY;
		}
		if (status == 400) {
			kiln_error_set(e, KILN_E_SPEC, NULL, "sd-server refused the request (HTTP "
				       "400, not retried): %s; it answers so for a LoRA path it "
				       "does not list under --lora-model-dir, or an image it "
				       "cannot read", ex);
			return KILN_STEP_FATAL;
		}
		if (status != 202 && status != 200) {
			kiln_error_set(e, KILN_E_NET, NULL, "img_gen answered HTTP %ld: %s", status, ex);
			return KILN_STEP_RETRY;
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
		/* the same request runs the same way again: not worth another attempt */
		st = check_ran(j, e) ? KILN_STEP_FATAL : KILN_STEP_DONE;
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

/* --- the probe: GET /sdcpp/v1/capabilities (make_capabilities_json, routes_sdcpp.cpp) -----
 * model {name, stem, path}, samplers [..], schedulers [..], loras [{name, path}]. raw keeps
 * {"samplers":[..],"schedulers":[..]} for supports(). The server does not say whether it was
 * started with --control-net. */
static int sdcpp_probe_start(struct kiln_ai_caps *caps, struct kiln_http *next,
			     struct kiln_error *e)
{
	(void)caps, (void)e;
	next->method = "GET";
	snprintf(next->path, sizeof next->path, "/sdcpp/v1/capabilities");
	return 0;
}

static enum kiln_step sdcpp_probe_response(struct kiln_ai_caps *caps, const char *path,
					   long status, const char *body, size_t len,
					   struct kiln_http *next, struct kiln_error *e)
{
	json_t *o, *v, *keep;
	const char *name;
	size_t i;
	char ex[200];
	(void)path, (void)next;
	kiln_ai_excerpt(ex, sizeof ex, body, len);
	if (status != 200) {
		kiln_error_set(e, KILN_E_NET, NULL, "capabilities answered HTTP %ld: %s", status,
			       ex);
		return status == 404 ? KILN_STEP_FATAL : KILN_STEP_RETRY;
	}
	if (!(o = json_loadb(body, len, 0, NULL)) || !json_is_object(o)) {
		json_decref(o);
		kiln_error_set(e, KILN_E_NET, NULL, "capabilities answer is not a JSON object: %s",
			       ex);
		return KILN_STEP_RETRY;
	}
	if ((name = json_string_value(json_object_get(json_object_get(o, "model"), "name"))) &&
	    *name && kiln_ai_list_add(&caps->models, name))
		goto nomem;
	json_array_foreach(json_object_get(o, "loras"), i, v)
		if ((name = json_string_value(json_object_get(v, "path"))) &&
		    kiln_ai_list_add(&caps->loras, name))
			goto nomem;
	keep = json_pack("{s:O?, s:O?}", "samplers", json_object_get(o, "samplers"),
			 "schedulers", json_object_get(o, "schedulers"));
	free(caps->raw);
	caps->raw = keep ? json_dumps(keep, JSON_COMPACT) : NULL;
	json_decref(keep);
	if (!caps->raw)
		goto nomem;
	caps->max_steps = SDCPP_MAX_STEPS;
	caps->known = 1;
	json_decref(o);
	return KILN_STEP_DONE;
nomem:
	json_decref(o);
	kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory reading the capabilities");
	return KILN_STEP_RETRY;
}

static int listed(const char *raw, const char *key, const char *name)
{
	json_t *o = json_loads(raw ? raw : "", 0, NULL), *a = json_object_get(o, key), *v;
	size_t i;
	int has = !json_is_array(a); /* not listed at all: assume it has it */
	json_array_foreach(a, i, v)
		has |= json_is_string(v) && !strcmp(json_string_value(v), name);
	json_decref(o);
	return has;
}

static int sdcpp_supports(const struct kiln_ai_caps *caps, const struct kiln_ai_request *rq,
			  struct kiln_error *e)
{
	const char *smp = kiln_ai_sampler_name("sdcpp", rq->sampler);
	const char *sch = kiln_ai_schedule("sdcpp", rq->sampler, rq->scheduler);
	char near[512];
	if (!caps || !caps->known)
		return 0;
	if (caps->max_steps && rq->steps > caps->max_steps)
		return kiln_error_set(e, KILN_E_SPEC, NULL, "steps %d: sd-server runs at most %d "
				      "(it would clamp silently)", rq->steps, caps->max_steps);
	if (smp && !listed(caps->raw, "samplers", smp))
		return kiln_error_set(e, KILN_E_SPEC, NULL, "sampler '%s' (%s): this sd-server has "
				      "no such sample method (it would use its default)",
				      rq->sampler, smp);
	if (sch && !listed(caps->raw, "schedulers", sch))
		return kiln_error_set(e, KILN_E_SPEC, NULL, "schedule '%s': this sd-server has no "
				      "such scheduler (it would use its default)", sch);
	for (size_t i = 0; i < rq->nloras; i++) {
		char file[512];
		if (kiln_ai_lora_listed(caps, rq->loras[i].name, file, sizeof file))
			return kiln_error_set(e, KILN_E_SPEC, NULL, "lora name '%s' is too long",
					      rq->loras[i].name);
		if (kiln_ai_list_has(&caps->loras, file))
			continue;
		kiln_ai_nearest(&caps->loras, rq->loras[i].name, near, sizeof near);
		return kiln_error_set(e, KILN_E_SPEC, NULL, "lora '%s': sd-server lists no %s "
				      "under its --lora-model-dir (it has %s)", rq->loras[i].name,
				      file,
				      *near ? near : "none");
	}
	return 0;
}

const struct kiln_engine kiln_engine_sdcpp = {
	.name = "sdcpp",
	.health_path = "/sdcpp/v1/capabilities",
	.submit_path = "/sdcpp/v1/img_gen",
	.build_request = sdcpp_build,
	.start = sdcpp_start,
	.on_response = sdcpp_response,
	.reply_cap = sdcpp_cap,
	.probe_start = sdcpp_probe_start,
	.probe_response = sdcpp_probe_response,
	.supports = sdcpp_supports,
};
