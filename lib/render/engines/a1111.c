/* render/engines/a1111: the AUTOMATIC1111 / Forge API (POST /sdapi/v1/txt2img). The helpers
 * the engines share are in engine.c.
 *
 * Protocol (design.md §7): one synchronous request per image. LoRAs are `<lora:name:w>` tags
 * appended to the prompt; ControlNet units go in alwayson_scripts.controlnet.args; the
 * checkpoint in override_settings.sd_model_checkpoint. The answer holds the image as base64
 * and `info`, a JSON *string* whose seed and infotexts[0] we keep. A transfer that dies after
 * the server did the work cannot be recovered (A1111 keeps nothing): the attempt is retried.
 *
 * Sizes: a request is a few KB plus base64 control images; an answer a base64 PNG (~1-3 MB).
 */
#include "render/engines/engine.h"
#include "util/alloc.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* --- A1111 ------------------------------------------------------------------------------- */

/* The model name without its extension: A1111 accepts "control_v11p_sd15_canny". */
static json_t *stem(const char *name)
{
	const char *dot = strrchr(name, '.');
	if (dot && (!strcmp(dot, ".pth") || !strcmp(dot, ".safetensors") || !strcmp(dot, ".ckpt")))
		return json_stringn(name, (size_t)(dot - name));
	return json_string(name);
}

static int image_value(const struct kiln_ai_file *f, int redact, json_t **out)
{
	struct kiln_buf b = KILN_BUF_INIT;
	if (redact) {
		char s[80];
		snprintf(s, sizeof s, "sha256:%s", f->sha);
		*out = json_string(s);
		return *out ? 0 : KILN_E_NOMEM;
	}
	if (kiln_b64_encode(f->data, f->len, &b))
		return KILN_E_NOMEM;
	*out = json_stringn(b.data ? b.data : "", b.len);
	kiln_buf_release(&b);
	return *out ? 0 : KILN_E_NOMEM;
}

static int a1111_build(const struct kiln_ai_request *rq, int redact, struct kiln_buf *out,
		       struct kiln_error *e)
{
	struct kiln_buf prompt = KILN_BUF_INIT;
	json_t *o = NULL, *args = NULL;
	char *text = NULL;
	int rc = KILN_E_NOMEM;
	if (kiln_buf_adds(&prompt, rq->prompt))
		goto out;
	for (size_t i = 0; i < rq->nloras; i++)
		if (kiln_buf_addf(&prompt, "%s<lora:%s:%g>", prompt.len ? " " : "",
				  rq->loras[i].name, rq->loras[i].weight))
			goto out;
	o = json_pack("{s:s, s:s, s:I, s:i, s:f, s:i, s:i, s:s, s:i, s:i}",
		      "prompt", prompt.data ? prompt.data : "", "negative_prompt", rq->negative,
		      "seed", (json_int_t)rq->seed, "steps", rq->steps, "cfg_scale", rq->cfg,
		      "width", rq->width, "height", rq->height, "sampler_name", rq->sampler,
		      "batch_size", 1, "n_iter", 1);
	if (!o)
		goto out;
	if (rq->scheduler && json_object_set_new(o, "scheduler", json_string(rq->scheduler)))
		goto out;
	if (rq->checkpoint &&
	    json_object_set_new(o, "override_settings",
				json_pack("{s:s}", "sd_model_checkpoint", rq->checkpoint)))
		goto out;
	if (rq->ncontrols) {
		if (!(args = json_array()))
			goto out;
		for (size_t i = 0; i < rq->ncontrols; i++) {
			const struct kiln_controlnet *cn = rq->controls[i].cn;
			json_t *img, *u;
			if (image_value(rq->controls[i].image, redact, &img))
				goto out;
			u = json_pack("{s:b, s:o, s:s, s:o, s:f, s:s, s:s, s:f, s:f, s:b}",
				      "enabled", 1, "image", img, "module", cn->module,
				      "model", stem(cn->model), "weight", cn->weight,
				      "resize_mode", "Crop and Resize", "control_mode",
				      cn->control_mode, "guidance_start", cn->guidance_start,
				      "guidance_end", cn->guidance_end, "pixel_perfect", 0);
			if (!u || json_array_append_new(args, u))
				goto out;
		}
		if (json_object_set_new(o, "alwayson_scripts",
					json_pack("{s:{s:O}}", "controlnet", "args", args)))
			goto out;
	}
	rc = kiln_ai_json_append(o, JSON_COMPACT | JSON_PRESERVE_ORDER, out);
out:
	if (rc)
		kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory building an A1111 request");
	free(text);
	json_decref(args);
	json_decref(o);
	kiln_buf_release(&prompt);
	return rc;
}

static int a1111_start(struct kiln_ai_job *j, struct kiln_http *next, struct kiln_error *e)
{
	next->method = "POST";
	snprintf(next->path, sizeof next->path, "/sdapi/v1/txt2img");
	return a1111_build(j->rq, 0, &next->body, e);
}

static enum kiln_step a1111_response(struct kiln_ai_job *j, long status, const char *body,
				     size_t len, struct kiln_http *next, struct kiln_error *e)
{
	json_t *o = NULL, *info = NULL, *img, *x;
	json_error_t je;
	char ex[300];
	enum kiln_step st = KILN_STEP_RETRY;
	(void)next;
	if (!status)
		return KILN_STEP_RETRY; /* e says what happened to the transfer */
	if (status != 200) {
		kiln_ai_excerpt(ex, sizeof ex, body, len);
		kiln_error_set(e, KILN_E_NET, NULL, "txt2img answered HTTP %ld: %s", status, ex);
		return status == 422 || status == 404 ? KILN_STEP_FATAL : KILN_STEP_RETRY;
	}
	if (!(o = json_loadb(body, len, 0, &je))) {
		kiln_error_set(e, KILN_E_NET, NULL, "txt2img answer is not JSON (%s at byte %d): "
			       "the transfer was probably cut", je.text, je.position);
		goto out;
	}
	img = json_array_get(json_object_get(o, "images"), 0);
	if (!json_is_string(img)) {
		kiln_error_set(e, KILN_E_NET, NULL, "txt2img answer has no images[0]");
		goto out;
	}
	kiln_buf_reset(&j->image);
	if (kiln_b64_decode(json_string_value(img), json_string_length(img), &j->image)) {
		kiln_error_set(e, KILN_E_IMAGE, NULL, "txt2img images[0] is not valid base64");
		goto out;
	}
	j->seed_used = j->rq->seed;
	x = json_object_get(o, "info");
	if (json_is_string(x) && (info = json_loadb(json_string_value(x), json_string_length(x),
						    0, NULL))) {
		json_t *seed = json_object_get(info, "seed");
		json_t *it = json_array_get(json_object_get(info, "infotexts"), 0);
		if (json_is_integer(seed))
			j->seed_used = (uint64_t)json_integer_value(seed);
		free(j->info);
		j->info = json_is_string(it) ? kiln_strdup(json_string_value(it)) : NULL;
	}
	st = KILN_STEP_DONE;
out:
	json_decref(info);
	json_decref(o);
	return st;
}

/* txt2img answers with the image, and the ControlNet extension may add each unit's detected
 * map after it: one base64 image of the asked size per unit more. */
static size_t a1111_cap(const struct kiln_ai_request *rq, const char *path)
{
	if (rq && !strncmp(path, "/sdapi/v1/txt2img", 17))
		return kiln_ai_reply_b64(rq, 1 + (unsigned)rq->ncontrols);
	return KILN_AI_REPLY_JSON;
}

const struct kiln_engine kiln_engine_a1111 = {
	.name = "a1111",
	.health_path = "/sdapi/v1/progress?skip_current_image=true",
	.build_request = a1111_build,
	.start = a1111_start,
	.on_response = a1111_response,
	.reply_cap = a1111_cap,
};
