/* engine_comfyui: ComfyUI's HTTP API with the studio's own workflow.
 *
 * The workflow (generate.workflow, API format: {node_id: {class_type, inputs}}) is a template
 * bound to each job: KSampler gets seed, steps, cfg, sampler and scheduler; the CLIPTextEncode
 * nodes its positive and negative inputs link to get the prompt texts; EmptyLatentImage the
 * size; CheckpointLoaderSimple the checkpoint. Each LoRA becomes a LoraLoader node chained
 * after the checkpoint loader (everything that used the loader's MODEL/CLIP is rewired to the
 * chain's end); each ControlNet unit a LoadImage + ControlNetLoader + ControlNetApplyAdvanced
 * between the text encoders and the sampler. Control images are uploaded first
 * (POST /upload/image, named kiln_<sha256 prefix>.png, overwrite: same bytes, same name).
 *
 * Nothing is run twice: the prompt_id is chosen by kiln (a UUID from the recipe and attempt)
 * and persisted before POST /prompt. ComfyUI does not refuse a duplicate id, so before sending
 * one again (after a transport error, or in the next run after a kill) kiln looks for it in
 * GET /history/{id} and GET /queue, and only submits it again when neither knows it. While a
 * prompt the server took runs, only /history is polled, and /queue every fourth poll (a prompt
 * the server lost shows in neither).
 */
#include "render/engines/engine.h"
#include "util/alloc.h"
#include "util/sha.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PH_UPLOAD, PH_SUBMIT, PH_HISTORY, PH_QUEUE, PH_RECHECK, PH_VIEW };

static void prompt_id(const struct kiln_ai_request *rq, unsigned attempt, char out[40])
{
	char in[128], h[65];
	snprintf(in, sizeof in, "%s:%u", rq->recipe, attempt);
	kiln_sha256_hex(in, strlen(in), h);
	/* UUID layout, version 4-ish digits kept from the hash */
	snprintf(out, 40, "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
}

static void upload_name(const struct kiln_ai_file *f, char *out, size_t cap)
{
	snprintf(out, cap, "kiln_%.16s.png", f->sha);
}

static int is_link(json_t *v, const char *node, int out)
{
	return json_is_array(v) && json_array_size(v) == 2 &&
	       json_is_string(json_array_get(v, 0)) &&
	       !strcmp(json_string_value(json_array_get(v, 0)), node) &&
	       json_integer_value(json_array_get(v, 1)) == out;
}

static const char *find_class(json_t *g, const char *cls)
{
	const char *k;
	json_t *n;
	json_object_foreach(g, k, n) {
		const char *c = json_string_value(json_object_get(n, "class_type"));
		if (c && !strcmp(c, cls))
			return k;
	}
	return NULL;
}

/* Rewire every input linking to [from, out] (outside node `skip`) to [to, out]. */
static int rewire(json_t *g, const char *from, int out, const char *to, const char *skip)
{
	const char *k, *ik;
	json_t *n, *v;
	json_object_foreach(g, k, n) {
		json_t *inputs = json_object_get(n, "inputs");
		if (!strcmp(k, skip) || !strcmp(k, to))
			continue;
		json_object_foreach(inputs, ik, v)
			if (is_link(v, from, out) &&
			    json_object_set_new(inputs, ik, json_pack("[s, i]", to, out)))
				return -1;
	}
	return 0;
}

static int set_text(json_t *g, json_t *link, const char *text)
{
	json_t *n;
	if (!json_is_array(link))
		return 0;
	n = json_object_get(g, json_string_value(json_array_get(link, 0)));
	if (!n)
		return 0;
	return json_object_set_new(json_object_get(n, "inputs"), "text", json_string(text));
}

static int bind(const struct kiln_ai_request *rq, unsigned attempt, struct kiln_buf *out,
		struct kiln_error *e)
{
	json_t *g, *ks, *in, *body = NULL;
	json_error_t je;
	const char *ksid, *ck, *lat;
	char pid[40], *text = NULL;
	int rc = KILN_E_NOMEM;
	if (!rq->workflow)
		return kiln_error_set(e, KILN_E_SPEC, NULL, "comfyui needs generate.workflow");
	if (!(g = json_loads(rq->workflow, 0, &je)) || !json_is_object(g)) {
		json_decref(g);
		return kiln_error_set(e, KILN_E_SPEC, NULL, "the workflow is not a JSON object: %s",
				      je.text);
	}
	if (!(ksid = find_class(g, "KSampler"))) {
		json_decref(g);
		return kiln_error_set(e, KILN_E_SPEC, NULL, "the workflow has no KSampler node: "
				      "kiln binds seed, steps, cfg and sampler there");
	}
	ks = json_object_get(g, ksid);
	in = json_object_get(ks, "inputs");
	{
		const char *sampler = kiln_ai_sampler_name("comfyui", rq->sampler);
		const char *sched = kiln_ai_schedule("comfyui", rq->sampler, rq->scheduler);
		if (json_object_set_new(in, "seed", json_integer((json_int_t)rq->seed)) ||
		    json_object_set_new(in, "steps", json_integer(rq->steps)) ||
		    json_object_set_new(in, "cfg", json_real(rq->cfg)) ||
		    (sampler && json_object_set_new(in, "sampler_name", json_string(sampler))) ||
		    (sched && json_object_set_new(in, "scheduler", json_string(sched))))
			goto out;
	}
	if (set_text(g, json_object_get(in, "positive"), rq->prompt) ||
	    set_text(g, json_object_get(in, "negative"), rq->negative))
		goto out;
	if ((lat = find_class(g, "EmptyLatentImage"))) {
		json_t *li = json_object_get(json_object_get(g, lat), "inputs");
		if (json_object_set_new(li, "width", json_integer(rq->width)) ||
		    json_object_set_new(li, "height", json_integer(rq->height)) ||
		    json_object_set_new(li, "batch_size", json_integer(1)))
			goto out;
	}
	ck = find_class(g, "CheckpointLoaderSimple");
	if (!ck && (rq->checkpoint || rq->nloras)) {
		/* ai.c's load_inputs refuses such a spec first; this keeps the engine honest
		 * when used on its own */
		json_decref(g);
		return kiln_error_set(e, KILN_E_SPEC, NULL, "the workflow has no "
				      "CheckpointLoaderSimple node: kiln binds generate.checkpoint and "
				      "chains LoRAs there");
	}
	if (ck && rq->checkpoint &&
	    json_object_set_new(json_object_get(json_object_get(g, ck), "inputs"), "ckpt_name",
				json_string(rq->checkpoint)))
		goto out;
	if (ck && rq->nloras) {
		char prev[64], id[64];
		snprintf(prev, sizeof prev, "%s", ck);
		for (size_t i = 0; i < rq->nloras; i++) {
			char file[512];
			snprintf(id, sizeof id, "kiln_lora_%zu", i);
			if (kiln_ai_lora_file(rq->loras[i].name, file, sizeof file)) {
				rc = kiln_error_set(e, KILN_E_SPEC, NULL, "lora name '%s' is too long",
						    rq->loras[i].name);
				goto out;
			}
			if (json_object_set_new(g, id, json_pack("{s:s, s:{s:[s,i], s:[s,i], s:s, s:f, "
				"s:f}}", "class_type", "LoraLoader", "inputs", "model", prev, 0,
				"clip", prev, 1, "lora_name", file, "strength_model",
				rq->loras[i].weight, "strength_clip", rq->loras[i].weight)))
				goto out;
			snprintf(prev, sizeof prev, "%s", id);
		}
		if (rewire(g, ck, 0, prev, "kiln_lora_0") || rewire(g, ck, 1, prev, "kiln_lora_0"))
			goto out;
	}
	for (size_t i = 0; i < rq->ncontrols; i++) {
		const struct kiln_controlnet *cn = rq->controls[i].cn;
		char img[64], ld[64], ap[64], name[128];
		json_t *pos = json_deep_copy(json_object_get(in, "positive"));
		json_t *neg = json_deep_copy(json_object_get(in, "negative"));
		snprintf(img, sizeof img, "kiln_cn_%zu_image", i);
		snprintf(ld, sizeof ld, "kiln_cn_%zu_loader", i);
		snprintf(ap, sizeof ap, "kiln_cn_%zu", i);
		upload_name(rq->controls[i].image, name, sizeof name);
		if (!pos || !neg ||
		    json_object_set_new(g, img, json_pack("{s:s, s:{s:s}}", "class_type", "LoadImage",
							  "inputs", "image", name)) ||
		    json_object_set_new(g, ld, json_pack("{s:s, s:{s:s}}", "class_type",
							 "ControlNetLoader", "inputs",
							 "control_net_name", cn->model)) ||
		    json_object_set_new(g, ap, json_pack("{s:s, s:{s:o, s:o, s:[s,i], s:[s,i], s:f, "
			"s:f, s:f}}", "class_type", "ControlNetApplyAdvanced", "inputs",
			"positive", pos, "negative", neg, "control_net", ld, 0, "image", img, 0,
			"strength", cn->weight, "start_percent", cn->guidance_start,
			"end_percent", cn->guidance_end)) ||
		    json_object_set_new(in, "positive", json_pack("[s,i]", ap, 0)) ||
		    json_object_set_new(in, "negative", json_pack("[s,i]", ap, 1)))
			goto out;
	}
	prompt_id(rq, attempt, pid);
	if (!(body = json_pack("{s:O, s:s, s:s}", "prompt", g, "client_id", "kiln",
			       "prompt_id", pid)))
		goto out;
	rc = kiln_ai_json_append(body, JSON_COMPACT | JSON_PRESERVE_ORDER, out);
out:
	if (rc == KILN_E_NOMEM)
		kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory binding the workflow");
	free(text);
	json_decref(body);
	json_decref(g);
	return rc;
}

static int comfy_build(const struct kiln_ai_request *rq, int redact, struct kiln_buf *out,
		       struct kiln_error *e)
{
	(void)redact; /* control images are uploaded, never in the body */
	return bind(rq, 1, out, e);
}

static void get(struct kiln_http *next, const char *fmt, const char *id)
{
	next->method = "GET";
	snprintf(next->path, sizeof next->path, fmt, id);
}

static int submit(struct kiln_ai_job *j, struct kiln_http *next, struct kiln_error *e)
{
	if (j->upload_next < j->rq->ncontrols) {
		const struct kiln_ai_file *f = j->rq->controls[j->upload_next].image;
		j->phase = PH_UPLOAD;
		next->method = "POST";
		snprintf(next->path, sizeof next->path, "/upload/image");
		next->upload = f;
		upload_name(f, next->upload_name, sizeof next->upload_name);
		return 0;
	}
	j->phase = PH_SUBMIT;
	next->method = "POST";
	next->no_resend = 1;
	snprintf(next->path, sizeof next->path, "/prompt");
	return bind(j->rq, j->attempt, &next->body, e);
}

static int comfy_start(struct kiln_ai_job *j, struct kiln_http *next, struct kiln_error *e)
{
	if (j->resumed && j->remote_id[0]) {
		j->phase = PH_HISTORY;
		j->misses = 3; /* unsure the server has it: look in /queue at the first miss */
		get(next, "/history/%s", j->remote_id);
		return 0;
	}
	prompt_id(j->rq, j->attempt, j->remote_id);
	j->remote_new = 1;
	j->upload_next = 0;
	return submit(j, next, e);
}

static void escape(char *out, size_t cap, const char *s)
{
	size_t n = 0;
	for (; *s && n + 4 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.')
			out[n++] = (char)c;
		else
			n += (size_t)snprintf(out + n, cap - n, "%%%02X", c);
	}
	out[n] = 0;
}

/* The job's entry in /history/{id}: view its image, wait, or fail. */
static enum kiln_step history(struct kiln_ai_job *j, json_t *h, struct kiln_http *next,
			      struct kiln_error *e)
{
	json_t *st = json_object_get(h, "status"), *outs = json_object_get(h, "outputs"), *n;
	const char *ss = json_string_value(json_object_get(st, "status_str")), *k;
	if (ss && !strcmp(ss, "error")) {
		json_t *m, *msgs = json_object_get(st, "messages");
		size_t i;
		const char *why = NULL;
		json_array_foreach(msgs, i, m) {
			const char *ev = json_string_value(json_array_get(m, 0));
			if (ev && !strcmp(ev, "execution_error"))
				why = json_string_value(json_object_get(json_array_get(m, 1),
									"exception_message"));
		}
		kiln_error_set(e, KILN_E_NET, NULL, "prompt %s failed while executing: %s",
			       j->remote_id, why ? why : "execution_error");
		return KILN_STEP_RETRY;
	}
	if (!json_is_true(json_object_get(st, "completed")) && !(ss && !strcmp(ss, "success"))) {
		get(next, "/history/%s", j->remote_id);
		j->phase = PH_HISTORY;
		return KILN_STEP_POLL;
	}
	/* a graph may preview (PreviewImage: type "temp", a scratch file the server deletes)
	 * besides saving (SaveImage: type "output"); the saved image is the result, whatever the
	 * order of the nodes in /history. A temp image only when nothing was saved. */
	json_t *best = NULL;
	json_object_foreach(outs, k, n) {
		json_t *img = json_array_get(json_object_get(n, "images"), 0);
		const char *ty = json_string_value(json_object_get(img, "type"));
		if (!json_string_value(json_object_get(img, "filename")))
			continue;
		if (!best || (ty && !strcmp(ty, "output")))
			best = img;
		if (ty && !strcmp(ty, "output"))
			break;
	}
	if (best) {
		const char *fn = json_string_value(json_object_get(best, "filename"));
		const char *sub = json_string_value(json_object_get(best, "subfolder"));
		const char *ty = json_string_value(json_object_get(best, "type"));
		char a[400], b[400], c[64];
		escape(a, sizeof a, fn);
		escape(b, sizeof b, sub ? sub : "");
		escape(c, sizeof c, ty ? ty : "output");
		next->method = "GET";
		snprintf(next->path, sizeof next->path, "/view?filename=%s&subfolder=%s&type=%s", a,
			 b, c);
		j->phase = PH_VIEW;
		return KILN_STEP_SEND;
	}
	kiln_error_set(e, KILN_E_NET, NULL, "prompt %s finished without an image (does the "
		       "workflow end in SaveImage?)", j->remote_id);
	return KILN_STEP_RETRY;
}

static int in_queue(json_t *q, const char *id)
{
	static const char *const lists[] = {"queue_running", "queue_pending"};
	for (int l = 0; l < 2; l++) {
		json_t *v, *arr = json_object_get(q, lists[l]);
		size_t i;
		json_array_foreach(arr, i, v) {
			const char *s = json_string_value(json_array_get(v, 1));
			if (s && !strcmp(s, id))
				return 1;
		}
	}
	return 0;
}

/* POST /prompt answered 400: the graph failed validation ({error: {message, details},
 * node_errors: {id: {class_type, errors: [{message, details}]}}}). The same graph fails the
 * same way on any server, so this is the spec's (or the workflow's) fault, not the network's:
 * the message names every failing node, its class and why, in full rather than cut. */
static void refused(const char *body, size_t len, struct kiln_error *e)
{
	json_t *o = json_loadb(body, len, 0, NULL), *ne = json_object_get(o, "node_errors"), *n;
	json_t *err = json_object_get(o, "error");
	struct kiln_buf b = KILN_BUF_INIT;
	const char *id;
	char ex[300];
	int rc = 0;
	json_object_foreach(ne, id, n) {
		const char *cls = json_string_value(json_object_get(n, "class_type"));
		json_t *x;
		size_t i;
		json_array_foreach(json_object_get(n, "errors"), i, x) {
			const char *m = json_string_value(json_object_get(x, "message"));
			const char *d = json_string_value(json_object_get(x, "details"));
			rc |= kiln_buf_addf(&b, "%snode %s (%s): %s%s%s", b.len ? "; " : "", id,
					    cls ? cls : "?", m ? m : "invalid", d && *d ? ": " : "",
					    d ? d : "");
		}
	}
	if (!b.len && json_is_object(err)) {
		const char *m = json_string_value(json_object_get(err, "message"));
		const char *d = json_string_value(json_object_get(err, "details"));
		rc |= kiln_buf_addf(&b, "%s%s%s", m ? m : "invalid prompt", d && *d ? ": " : "",
				    d ? d : "");
	}
	kiln_ai_excerpt(ex, sizeof ex, body, len);
	kiln_error_set(e, KILN_E_SPEC, NULL, "ComfyUI refused the workflow (HTTP 400, not "
		       "retried: fix generate or the workflow): %s", !rc && b.len ? b.data : ex);
	kiln_buf_release(&b);
	json_decref(o);
}

static enum kiln_step comfy_response(struct kiln_ai_job *j, long status, const char *body,
				     size_t len, struct kiln_http *next, struct kiln_error *e)
{
	json_t *o = NULL;
	enum kiln_step st = KILN_STEP_RETRY;
	char ex[300];
	kiln_ai_excerpt(ex, sizeof ex, body, len);
	/* a failed look at a submitted prompt does not end the attempt: look again */
	if (j->phase >= PH_HISTORY && (!status || status >= 500)) {
		if (++j->poll_errors < KILN_POLL_ERRORS) {
			if (j->phase == PH_VIEW)
				return KILN_STEP_POLL; /* next still holds the /view request */
			j->phase = PH_HISTORY;
			get(next, "/history/%s", j->remote_id);
			return KILN_STEP_POLL;
		}
	} else if (j->phase >= PH_HISTORY) {
		j->poll_errors = 0;
	}
	switch (j->phase) {
	case PH_UPLOAD:
		if (status != 200) {
			if (status)
				kiln_error_set(e, KILN_E_NET, NULL, "upload/image answered HTTP %ld: %s",
					       status, ex);
			return KILN_STEP_RETRY;
		}
		j->upload_next++;
		return submit(j, next, e) ? KILN_STEP_RETRY : KILN_STEP_SEND;
	case PH_SUBMIT:
		if (!status) {
			/* the prompt may be queued all the same: look before sending it again */
			j->phase = PH_HISTORY;
			j->misses = 3;
			get(next, "/history/%s", j->remote_id);
			return KILN_STEP_SEND;
		}
		if (status == 400) {
			refused(body, len, e);
			return KILN_STEP_FATAL;
		}
		if (status != 200) {
			kiln_error_set(e, KILN_E_NET, NULL, "prompt answered HTTP %ld: %s", status, ex);
			return KILN_STEP_RETRY;
		}
		j->phase = PH_HISTORY;
		get(next, "/history/%s", j->remote_id);
		return KILN_STEP_POLL;
	case PH_HISTORY:
	case PH_RECHECK:
		if (status != 200) {
			if (status)
				kiln_error_set(e, KILN_E_NET, NULL, "history answered HTTP %ld: %s",
					       status, ex);
			return KILN_STEP_RETRY;
		}
		if (!(o = json_loadb(body, len, 0, NULL))) {
			kiln_error_set(e, KILN_E_NET, NULL, "history answer is not JSON");
			break;
		}
		if (json_object_get(o, j->remote_id)) {
			st = history(j, json_object_get(o, j->remote_id), next, e);
		} else if (j->phase == PH_HISTORY && ++j->misses % 4) {
			/* not finished (/history holds finished prompts only). A prompt the server
			 * took is looked for in /queue at every fourth miss, not at each: a lost one
			 * is found a few polls later, and a poll is one request, not two */
			get(next, "/history/%s", j->remote_id);
			st = KILN_STEP_POLL;
		} else if (j->phase == PH_HISTORY) {
			j->phase = PH_QUEUE;
			get(next, "%s/queue", "");
			st = KILN_STEP_SEND;
		} else if (j->polls > 100000) {
			kiln_error_set(e, KILN_E_NET, NULL, "prompt %s keeps getting lost",
				       j->remote_id);
		} else {
			/* neither queued nor done: the server never had it, or lost it; the same
			 * id is safe to send */
			j->upload_next = 0;
			st = submit(j, next, e) ? KILN_STEP_RETRY : KILN_STEP_SEND;
			if (!strcmp(next->path, "/prompt") && j->scratch) {
				kiln_error_set(e, KILN_E_NET, NULL, "prompt %s was lost by the server "
					       "twice", j->remote_id);
				st = KILN_STEP_RETRY;
			} else if (!j->scratch) {
				j->scratch = kiln_strdup("lost");
			}
		}
		break;
	case PH_QUEUE:
		if (status != 200) {
			if (status)
				kiln_error_set(e, KILN_E_NET, NULL, "queue answered HTTP %ld: %s",
					       status, ex);
			return KILN_STEP_RETRY;
		}
		o = json_loadb(body, len, 0, NULL);
		if (o && in_queue(o, j->remote_id)) {
			j->phase = PH_HISTORY;
			get(next, "/history/%s", j->remote_id);
			st = KILN_STEP_POLL;
		} else {
			j->phase = PH_RECHECK;
			get(next, "/history/%s", j->remote_id);
			st = KILN_STEP_SEND;
		}
		break;
	case PH_VIEW:
		if (status != 200) {
			if (status)
				kiln_error_set(e, KILN_E_NET, NULL, "view answered HTTP %ld: %s", status,
					       ex);
			return KILN_STEP_RETRY;
		}
		kiln_buf_reset(&j->image);
		if (kiln_buf_add(&j->image, body, len)) {
			kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
			return KILN_STEP_RETRY;
		}
		j->seed_used = j->rq->seed;
		return KILN_STEP_DONE;
	}
	json_decref(o);
	return st;
}

/* /view sends the image file; every other answer is JSON (the history holds file names). */
static size_t comfy_cap(const struct kiln_ai_request *rq, const char *path)
{
	if (rq && !strncmp(path, "/view", 5))
		return kiln_ai_reply_image(rq);
	return KILN_AI_REPLY_JSON;
}

const struct kiln_engine kiln_engine_comfyui = {
	.name = "comfyui",
	.health_path = "/queue",
	.build_request = comfy_build,
	.start = comfy_start,
	.on_response = comfy_response,
	.reply_cap = comfy_cap,
};
