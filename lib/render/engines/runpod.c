/* engine_runpod: RunPod serverless endpoints running the official workers.
 *
 * The endpoint's URL is {base_url}/v2/{endpoint_id} (spec). A job is POST /run
 * {input, policy: {executionTimeout, ttl}} -> {id, status}; GET /status/{id} until status is
 * COMPLETED (output, executionTime, delayTime), FAILED (error), CANCELLED or TIMED_OUT;
 * IN_QUEUE and IN_PROGRESS mean not yet. GET /health says how many jobs are queued and
 * workers running (the dispatcher's health check). The API key is a bearer token the
 * dispatcher adds; the engine never sees it.
 *
 * What goes in `input` is the worker's protocol (kiln_endpoint.worker):
 *   - worker-comfyui (runpod-workers/worker-comfyui handler.py, validate_input/upload_images
 *     and the end of handler()): input {workflow: the API-format graph, as the ComfyUI engine
 *     binds it, images: [{name, image: base64}]} for the LoadImage nodes of ControlNet units
 *     (the same kiln_<sha256 prefix>.png names); output {images: [{filename, type: base64 |
 *     s3_url, data}], errors?: [..]}, or with no image {error, details} (a FAILED job), or
 *     status success_no_images. Versions before 2025-05 (src/rp_handler.py) answered
 *     {status: success, message: base64 or URL}: read too.
 *   - worker-a1111 (runpod-workers/worker-a1111 src/handler.py): input is the txt2img body,
 *     forwarded to A1111's /sdapi/v1/txt2img; output is A1111's answer, which the A1111
 *     engine reads and verifies as it does from a server of the studio's own.
 *
 * Nothing is run twice once RunPod has named the job: the id is persisted as soon as /run
 * answers (remote_new), and a later run polls it instead of submitting again. RunPod keeps
 * a /run result 30 minutes after the job ends, then /status answers 404: the job is
 * submitted again, and the message says its result expired. A body over 10 MB is refused
 * before it is sent (RunPod's /run limit). 429 is back-pressure (KILN_STEP_BUSY, honouring
 * Retry-After); a 5xx on /run is a failed attempt (RunPod made no job), on /status a failed
 * poll. When the run is stopped (SIGINT), a job still IN_QUEUE is cancelled (POST
 * /cancel/{id}): nothing was spent on it, and the next run submits it again; one
 * IN_PROGRESS is collected.
 */
#include "render/engines/engine.h"
#include "util/alloc.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PH_SUBMIT, PH_POLL, PH_CANCEL, PH_FETCH };

static int is_comfy(const struct kiln_ai_job *j)
{
	return !strcmp(kiln_endpoint_protocol(j->ep), "comfyui");
}

/* worker-comfyui's input: the bound graph (the ComfyUI engine's, less its /prompt envelope)
 * and the control images under the names its LoadImage nodes use. */
static int comfy_input(const struct kiln_ai_request *rq, int redact, json_t **out,
		       struct kiln_error *e)
{
	struct kiln_buf b = KILN_BUF_INIT;
	json_t *env = NULL, *images = NULL, *in = NULL;
	int rc;
	*out = NULL;
	if ((rc = kiln_engine_comfyui.build_request(rq, redact, &b, e)))
		goto out;
	rc = KILN_E_NOMEM;
	if (!(env = json_loadb(b.data, b.len, 0, NULL)) || !(images = json_array()))
		goto out;
	for (size_t i = 0; i < rq->ncontrols; i++) {
		const struct kiln_ai_file *f = rq->controls[i].image;
		struct kiln_buf d = KILN_BUF_INIT;
		char name[64];
		json_t *v;
		snprintf(name, sizeof name, "kiln_%.16s.png", f->sha);
		if (redact ? kiln_buf_addf(&d, "sha256:%s", f->sha) : kiln_b64_encode(f->data, f->len,
										       &d)) {
			kiln_buf_release(&d);
			goto out;
		}
		v = json_stringn(d.data ? d.data : "", d.len);
		kiln_buf_release(&d);
		if (!v || json_array_append_new(images, json_pack("{s:s, s:o}", "name", name,
								   "image", v)))
			goto out;
	}
	if (!(in = json_pack("{s:O}", "workflow", json_object_get(env, "prompt"))) ||
	    (json_array_size(images) && json_object_set(in, "images", images)))
		goto out;
	*out = in;
	in = NULL;
	rc = 0;
out:
	if (rc == KILN_E_NOMEM)
		kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory building a RunPod request");
	json_decref(in);
	json_decref(images);
	json_decref(env);
	kiln_buf_release(&b);
	return rc;
}

static int a1111_input(const struct kiln_ai_request *rq, int redact, json_t **out,
		       struct kiln_error *e)
{
	struct kiln_buf b = KILN_BUF_INIT;
	int rc = kiln_engine_a1111.build_request(rq, redact, &b, e);
	*out = NULL;
	if (!rc && !(*out = json_loadb(b.data, b.len, 0, NULL)))
		rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory building a RunPod "
				    "request");
	kiln_buf_release(&b);
	return rc;
}

/* {input, policy}: the endpoint's execution_timeout and ttl, else RunPod's default
 * executionTimeout, said outright so that the request recorded is the one sent: a job may run
 * 10 minutes and is dropped when it has not ended within 70 minutes of its submission (ttl: an
 * hour of queue beyond its run). */
#define RUNPOD_EXEC_S 600
#define RUNPOD_QUEUE_S 3600

static int build(const struct kiln_endpoint *ep, const struct kiln_ai_request *rq, int comfy,
		 int redact, struct kiln_buf *out, struct kiln_error *e)
{
	json_t *in, *o;
	json_int_t ex = ep && ep->execution_timeout ? ep->execution_timeout : RUNPOD_EXEC_S;
	json_int_t ttl = ep && ep->ttl ? ep->ttl : ex + RUNPOD_QUEUE_S;
	int rc = comfy ? comfy_input(rq, redact, &in, e) : a1111_input(rq, redact, &in, e);
	if (rc)
		return rc;
	o = json_pack("{s:o, s:{s:I, s:I}}", "input", in, "policy", "executionTimeout",
		      ex * 1000, "ttl", ttl * 1000);
	if (!o)
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory building a RunPod "
				      "request");
	rc = kiln_ai_json_append(o, JSON_COMPACT | JSON_PRESERVE_ORDER, out);
	json_decref(o);
	if (rc)
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory building a RunPod "
				      "request");
	return 0;
}

static int comfy_build(const struct kiln_ai_request *rq, int redact, struct kiln_buf *out,
		       struct kiln_error *e)
{
	return build(NULL, rq, 1, redact, out, e);
}

static int a1111_build(const struct kiln_ai_request *rq, int redact, struct kiln_buf *out,
		       struct kiln_error *e)
{
	return build(NULL, rq, 0, redact, out, e);
}

static int comfy_build_for(const struct kiln_endpoint *ep, const struct kiln_ai_request *rq,
			   int redact, struct kiln_buf *out, struct kiln_error *e)
{
	return build(ep, rq, 1, redact, out, e);
}

static int a1111_build_for(const struct kiln_endpoint *ep, const struct kiln_ai_request *rq,
			   int redact, struct kiln_buf *out, struct kiln_error *e)
{
	return build(ep, rq, 0, redact, out, e);
}

static void poll_req(struct kiln_ai_job *j, struct kiln_http *next)
{
	next->method = "GET";
	snprintf(next->path, sizeof next->path, "/status/%s", j->remote_id);
	j->phase = PH_POLL;
}

static int rp_start(struct kiln_ai_job *j, struct kiln_http *next, struct kiln_error *e)
{
	int rc;
	if (j->resumed && j->remote_id[0]) {
		poll_req(j, next);
		return 0;
	}
	j->phase = PH_SUBMIT;
	j->remote_id[0] = 0;
	next->method = "POST";
	next->no_resend = 1;
	snprintf(next->path, sizeof next->path, "/run");
	if ((rc = build(j->ep, j->rq, is_comfy(j), 0, &next->body, e)))
		return rc;
	if (next->body.len > KILN_RUNPOD_MAX_BODY)
		return kiln_error_set(e, KILN_E_SPEC, NULL, "the request is %zu bytes, over the "
				      "10 MB RunPod takes in a /run body: make the ControlNet "
				      "images smaller (they travel in the request as base64)",
				      next->body.len);
	return 0;
}

/* The image of a worker-comfyui output: base64 data into j->image (DONE), an s3_url to fetch
 * (SEND), or RETRY/FATAL with e. */
static enum kiln_step comfy_output(struct kiln_ai_job *j, json_t *out, struct kiln_http *next,
				   struct kiln_error *e)
{
	json_t *img = json_array_get(json_object_get(out, "images"), 0);
	json_t *errs = json_object_get(out, "errors");
	const char *type = json_string_value(json_object_get(img, "type"));
	const char *data = json_string_value(json_object_get(img, "data"));
	const char *msg = json_string_value(json_object_get(out, "message"));
	char why[600] = "";
	size_t n = 0, i;
	json_t *v;
	json_array_foreach(errs, i, v)
		if (json_is_string(v) && n < sizeof why - 1)
			n += (size_t)snprintf(why + n, sizeof why - n, "%s%s", n ? "; " : "",
					      json_string_value(v));
	if (!img && msg && json_is_string(json_object_get(out, "message"))) {
		/* worker-comfyui before 2025-05: {status: success, message: base64 or URL} */
		type = strncmp(msg, "http://", 7) && strncmp(msg, "https://", 8) ? "base64"
										 : "s3_url";
		data = msg;
	}
	if (!data || !type) {
		const char *st = json_string_value(json_object_get(out, "status"));
		kiln_error_set(e, KILN_E_NET, NULL, "job %s completed without an image%s%s%s",
			       j->remote_id, st ? " (" : "", st ? st : "", st ? ")" : "");
		if (*why)
			kiln_error_set(e, KILN_E_NET, NULL, "job %s completed without an image: %s",
				       j->remote_id, why);
		return st && !strcmp(st, "success_no_images") ? KILN_STEP_FATAL : KILN_STEP_RETRY;
	}
	if (!strcmp(type, "s3_url")) {
		if (strlen(data) >= sizeof next->path ||
		    (strncmp(data, "http://", 7) && strncmp(data, "https://", 8))) {
			kiln_error_set(e, KILN_E_NET, NULL, "job %s: the worker's s3_url is not an "
				       "http(s) URL kiln can fetch", j->remote_id);
			return KILN_STEP_RETRY;
		}
		next->method = "GET";
		next->absolute = 1;
		snprintf(next->path, sizeof next->path, "%s", data);
		j->phase = PH_FETCH;
		return KILN_STEP_SEND;
	}
	if (strcmp(type, "base64")) {
		kiln_error_set(e, KILN_E_NET, NULL, "job %s: image type '%s' is neither base64 nor "
			       "s3_url", j->remote_id, type);
		return KILN_STEP_RETRY;
	}
	kiln_buf_reset(&j->image);
	{
		/* a data URI's prefix, as the worker strips it from inputs */
		const char *comma = strncmp(data, "data:", 5) ? NULL : strchr(data, ',');
		const char *b = comma ? comma + 1 : data;
		if (kiln_b64_decode(b, strlen(b), &j->image)) {
			kiln_error_set(e, KILN_E_IMAGE, NULL, "job %s: the image is not base64",
				       j->remote_id);
			return KILN_STEP_RETRY;
		}
	}
	j->seed_used = j->rq->seed;
	return KILN_STEP_DONE;
}

static enum kiln_step completed(struct kiln_ai_job *j, json_t *o, struct kiln_http *next,
				struct kiln_error *e)
{
	json_t *out = json_object_get(o, "output");
	enum kiln_step st;
	char *text;
	if (is_comfy(j))
		return comfy_output(j, out, next, e);
	/* worker-a1111: A1111's own answer, read (and verified) as the A1111 engine does */
	if (!json_is_object(out)) {
		kiln_error_set(e, KILN_E_NET, NULL, "job %s completed without A1111's answer in "
			       "output", j->remote_id);
		return KILN_STEP_RETRY;
	}
	if (!(text = json_dumps(out, JSON_COMPACT))) {
		kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory reading job %s", j->remote_id);
		return KILN_STEP_RETRY;
	}
	st = kiln_engine_a1111.on_response(j, 200, text, strlen(text), next, e);
	free(text);
	return st;
}

static enum kiln_step rp_response(struct kiln_ai_job *j, long status, const char *body,
				  size_t len, struct kiln_http *next, struct kiln_error *e)
{
	json_t *o = NULL;
	enum kiln_step st = KILN_STEP_RETRY;
	const char *s;
	char ex[300];
	kiln_ai_excerpt(ex, sizeof ex, body, len);
	switch (j->phase) {
	case PH_SUBMIT:
		if (!status)
			return KILN_STEP_RETRY; /* e says what happened; RunPod named no job */
		if (status == 429) {
			kiln_error_set(e, KILN_E_NET, NULL, "/run answered HTTP 429 (rate limited): "
				       "%s", ex);
			return KILN_STEP_BUSY;
		}
		if (status == 400 || status == 404 || status == 413) {
			kiln_error_set(e, KILN_E_SPEC, NULL, "/run answered HTTP %ld (not retried)%s: "
				       "%s", status, status == 404 ? ", no such endpoint id" : "", ex);
			return KILN_STEP_FATAL;
		}
		if (status != 200 && status != 201) {
			kiln_error_set(e, KILN_E_NET, NULL, "/run answered HTTP %ld: %s", status, ex);
			return KILN_STEP_RETRY;
		}
		o = json_loadb(body, len, 0, NULL);
		s = json_string_value(json_object_get(o, "id"));
		if (!s || !*s || strlen(s) >= sizeof j->remote_id ||
		    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") !=
			    strlen(s)) {
			kiln_error_set(e, KILN_E_NET, NULL, "/run answer has no job id: %s", ex);
			goto out;
		}
		snprintf(j->remote_id, sizeof j->remote_id, "%s", s);
		j->remote_new = 1;
		poll_req(j, next);
		st = KILN_STEP_POLL;
		goto out;
	case PH_CANCEL:
		kiln_error_set(e, KILN_E_STATE, NULL, "job %s was cancelled while still queued: the "
			       "run was stopped", j->remote_id);
		return KILN_STEP_FATAL;
	case PH_FETCH:
		if (status != 200) {
			kiln_error_set(e, KILN_E_NET, NULL, "job %s: fetching the image from the "
				       "worker's s3_url answered %s%ld", j->remote_id,
				       status ? "HTTP " : "", status);
			return KILN_STEP_RETRY;
		}
		kiln_buf_reset(&j->image);
		if (kiln_buf_add(&j->image, body, len)) {
			kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
			return KILN_STEP_RETRY;
		}
		j->seed_used = j->rq->seed;
		return KILN_STEP_DONE;
	default:
		break;
	}
	/* PH_POLL */
	if (!status || status == 429 || status >= 500) {
		if (status)
			kiln_error_set(e, KILN_E_NET, NULL, "/status/%s answered HTTP %ld: %s",
				       j->remote_id, status, ex);
		if (++j->poll_errors >= KILN_POLL_ERRORS)
			return KILN_STEP_RETRY;
		poll_req(j, next);
		return KILN_STEP_POLL;
	}
	if (status == 404) {
		kiln_error_set(e, KILN_E_NET, NULL, "job %s is not known to RunPod (HTTP 404): %s; "
			       "submitted again", j->remote_id,
			       j->resumed ? "its result expired (RunPod keeps a result 30 minutes "
					    "after the job ends) or the job was lost"
					  : "the job was lost");
		return KILN_STEP_RETRY;
	}
	if (status != 200) {
		kiln_error_set(e, KILN_E_NET, NULL, "/status/%s answered HTTP %ld: %s", j->remote_id,
			       status, ex);
		return KILN_STEP_RETRY;
	}
	j->poll_errors = 0;
	if (!(o = json_loadb(body, len, 0, NULL))) {
		kiln_error_set(e, KILN_E_NET, NULL, "/status/%s answer is not JSON: cut short?",
			       j->remote_id);
		goto out;
	}
	s = json_string_value(json_object_get(o, "status"));
	{
		json_t *x = json_object_get(o, "executionTime");
		if (json_is_number(x) && json_number_value(x) > 0)
			j->gpu_seconds = json_number_value(x) / 1000.0;
	}
	if (s && (!strcmp(s, "IN_QUEUE") || !strcmp(s, "IN_PROGRESS"))) {
		if (j->cancel && !strcmp(s, "IN_QUEUE")) {
			next->method = "POST";
			snprintf(next->path, sizeof next->path, "/cancel/%s", j->remote_id);
			j->phase = PH_CANCEL;
			st = KILN_STEP_SEND;
		} else {
			poll_req(j, next);
			st = KILN_STEP_POLL;
		}
	} else if (s && !strcmp(s, "COMPLETED")) {
		st = completed(j, o, next, e);
	} else {
		json_t *err = json_object_get(o, "error");
		char *txt = !err || json_is_string(err) ? NULL : json_dumps(err, JSON_COMPACT);
		const char *why = json_is_string(err) ? json_string_value(err) : txt;
		kiln_error_set(e, KILN_E_NET, NULL, "job %s %s%s%s%.400s", j->remote_id,
			       s ? s : "answered without a status",
			       s && !strcmp(s, "TIMED_OUT") ? " (it ran past its executionTimeout)"
							    : "",
			       why ? ": " : "", why ? why : "");
		free(txt);
	}
out:
	json_decref(o);
	return st;
}

/* A finished job's status carries its image(s) as base64 in output: the worker's images
 * (ComfyUI: every SaveImage of the graph, a few at most; A1111: one, plus a detected map per
 * ControlNet unit). An s3_url download is one image file. */
static size_t comfy_cap(const struct kiln_ai_request *rq, const char *path)
{
	if (rq && !strncmp(path, "/status/", 8))
		return kiln_ai_reply_b64(rq, 4);
	if (rq && (!strncmp(path, "http://", 7) || !strncmp(path, "https://", 8)))
		return kiln_ai_reply_image(rq);
	return KILN_AI_REPLY_JSON;
}

static size_t a1111_cap(const struct kiln_ai_request *rq, const char *path)
{
	if (rq && !strncmp(path, "/status/", 8))
		return kiln_ai_reply_b64(rq, 1 + (unsigned)rq->ncontrols);
	return KILN_AI_REPLY_JSON;
}

const struct kiln_engine kiln_engine_runpod_comfyui = {
	.name = "runpod",
	.health_path = "/health",
	.submit_path = "/run",
	.sparse_polls = 1,
	.poll_first = 1.0, /* at the mean job time: half the jobs are done by then */
	.build_request = comfy_build,
	.build_for = comfy_build_for,
	.start = rp_start,
	.on_response = rp_response,
	.reply_cap = comfy_cap,
};

const struct kiln_engine kiln_engine_runpod_a1111 = {
	.name = "runpod",
	.health_path = "/health",
	.submit_path = "/run",
	.sparse_polls = 1,
	.poll_first = 1.0, /* at the mean job time: half the jobs are done by then */
	.build_request = a1111_build,
	.build_for = a1111_build_for,
	.start = rp_start,
	.on_response = rp_response,
	.reply_cap = a1111_cap,
};
