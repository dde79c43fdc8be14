/* engine_a1111: the AUTOMATIC1111 / Forge API (POST /sdapi/v1/txt2img), and the helpers the
 * three engines share (base64, sampler names, job release, engine lookup).
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

/* --- shared helpers --------------------------------------------------------------------- */

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void kiln_ai_excerpt(char *out, size_t cap, const char *body, size_t len)
{
	size_t n = len < cap - 1 ? len : cap - 1;
	for (size_t i = 0; i < n; i++)
		out[i] = body[i] == '\n' || body[i] == '\r' ? ' ' : body[i];
	out[n] = 0;
}

int kiln_b64_encode(const void *p, size_t n, struct kiln_buf *out)
{
	const unsigned char *s = p;
	size_t olen = (n + 2) / 3 * 4, i;
	char *d;
	int rc = kiln_buf_grow(out, olen + 1);
	if (rc)
		return rc;
	d = out->data + out->len;
	for (i = 0; i + 2 < n; i += 3) {
		unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
		*d++ = b64chars[v >> 18];
		*d++ = b64chars[(v >> 12) & 63];
		*d++ = b64chars[(v >> 6) & 63];
		*d++ = b64chars[v & 63];
	}
	if (i < n) {
		unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0);
		*d++ = b64chars[v >> 18];
		*d++ = b64chars[(v >> 12) & 63];
		*d++ = i + 1 < n ? b64chars[(v >> 6) & 63] : '=';
		*d++ = '=';
	}
	out->len += olen;
	out->data[out->len] = 0;
	return 0;
}

int kiln_b64_decode(const char *s, size_t n, struct kiln_buf *out)
{
	static signed char map[256];
	static int ready;
	unsigned v = 0;
	int bits = 0, rc;
	char *d;
	if (!ready) {
		memset(map, -1, sizeof map);
		for (int i = 0; i < 64; i++)
			map[(unsigned char)b64chars[i]] = (signed char)i;
		map['-'] = 62; /* url-safe alphabet too */
		map['_'] = 63;
		ready = 1;
	}
	/* "data:image/png;base64,...." */
	if (n > 5 && !memcmp(s, "data:", 5)) {
		const char *comma = memchr(s, ',', n);
		if (comma) {
			n -= (size_t)(comma + 1 - s);
			s = comma + 1;
		}
	}
	if ((rc = kiln_buf_grow(out, n / 4 * 3 + 4)))
		return rc;
	d = out->data + out->len;
	for (size_t i = 0; i < n; i++) {
		int c = map[(unsigned char)s[i]];
		if (c < 0) {
			if (s[i] == '=' || s[i] == '\n' || s[i] == '\r')
				continue;
			return KILN_E_IMAGE;
		}
		v = v << 6 | (unsigned)c;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			*d++ = (char)(v >> bits);
		}
	}
	out->len = (size_t)(d - out->data);
	out->data[out->len] = 0;
	return 0;
}

/* A1111's sampler names (modules/sd_samplers_kdiffusion.py, sd_samplers_timesteps.py) and
 * what each is called by ComfyUI (comfy/samplers.py KSAMPLER_NAMES + "ddim", "uni_pc",
 * "uni_pc_bh2") and by sd.cpp (sample_method_str in stable-diffusion.cpp). NULL: that server
 * has no such sampler, and a spec asking for it there is refused at load time rather than
 * sent (ComfyUI answers 400 value_not_in_list; sd-server would quietly use its default).
 * Only true equivalents are mapped: dpm++2mv2 is a variant of DPM++ 2M, not an SDE sampler,
 * and sd.cpp's ipndm is not A1111's PLMS. */
static const struct {
	const char *a1111, *comfyui, *sdcpp;
} samplers[] = {
	{"Euler a", "euler_ancestral", "euler_a"},
	{"Euler", "euler", "euler"},
	{"Heun", "heun", "heun"},
	{"DPM2", "dpm_2", "dpm2"},
	{"DPM2 a", "dpm_2_ancestral", NULL},
	{"DPM++ 2S a", "dpmpp_2s_ancestral", "dpm++2s_a"},
	{"DPM++ 2M", "dpmpp_2m", "dpm++2m"},
	{"DPM++ SDE", "dpmpp_sde", NULL},
	{"DPM++ 2M SDE", "dpmpp_2m_sde", NULL},
	{"DPM++ 2M SDE Heun", NULL, NULL},
	{"DPM++ 3M SDE", "dpmpp_3m_sde", NULL},
	{"LMS", "lms", NULL},
	{"DPM fast", "dpm_fast", NULL},
	{"DPM adaptive", "dpm_adaptive", NULL},
	{"Restart", NULL, NULL},
	{"DDIM", "ddim", "ddim_trailing"},
	{"DDIM CFG++", NULL, NULL},
	{"PLMS", NULL, NULL},
	{"UniPC", "uni_pc", NULL},
	{"LCM", "lcm", "lcm"},
};

/* A1111's schedule types (modules/sd_schedulers.py labels) -> ComfyUI's SCHEDULER_NAMES and
 * sd.cpp's schedulers. "Automatic" is the sampler's own default: nothing is sent. */
static const struct {
	const char *a1111, *comfyui, *sdcpp;
} schedulers[] = {
	{"Automatic", "", ""},
	{"Uniform", NULL, NULL},
	{"Karras", "karras", "karras"},
	{"Exponential", "exponential", "exponential"},
	{"Polyexponential", NULL, NULL},
	{"SGM Uniform", "sgm_uniform", "sgm_uniform"},
	{"KL Optimal", "kl_optimal", "kl_optimal"},
	{"Align Your Steps", NULL, "ays"},
	{"Simple", "simple", "simple"},
	{"Normal", "normal", "discrete"},
	{"DDIM", "ddim_uniform", NULL},
	{"Beta", "beta", NULL},
};

#define NSAMPLERS (sizeof samplers / sizeof samplers[0])
#define NSCHEDULERS (sizeof schedulers / sizeof schedulers[0])

static const char *pick(const char *engine, const char *a1111, const char *comfyui,
			const char *sdcpp)
{
	if (!strcmp(engine, "comfyui"))
		return comfyui;
	if (!strcmp(engine, "sdcpp"))
		return sdcpp;
	return a1111;
}

const char *kiln_ai_sampler_name(const char *engine, const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < NSAMPLERS; i++)
		if (!strcasecmp(samplers[i].a1111, name))
			return pick(engine, samplers[i].a1111, samplers[i].comfyui, samplers[i].sdcpp);
	return NULL;
}

const char *kiln_ai_scheduler_name(const char *engine, const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < NSCHEDULERS; i++)
		if (!strcasecmp(schedulers[i].a1111, name)) {
			const char *v = pick(engine, schedulers[i].a1111, schedulers[i].comfyui,
					     schedulers[i].sdcpp);
			return v && *v && strcmp(v, "Automatic") ? v : NULL;
		}
	return NULL;
}

const char *kiln_ai_sampler_canonical(const char *name, size_t len)
{
	for (size_t i = 0; i < NSAMPLERS; i++)
		if (strlen(samplers[i].a1111) == len && !strncasecmp(samplers[i].a1111, name, len))
			return samplers[i].a1111;
	return NULL;
}

const char *kiln_ai_scheduler_canonical(const char *name, size_t len)
{
	for (size_t i = 0; i < NSCHEDULERS; i++)
		if (strlen(schedulers[i].a1111) == len &&
		    !strncasecmp(schedulers[i].a1111, name, len))
			return schedulers[i].a1111;
	return NULL;
}

int kiln_ai_sampler_runs(const char *engine, const char *sampler, const char *scheduler)
{
	size_t i;
	for (i = 0; i < NSAMPLERS && strcmp(samplers[i].a1111, sampler); i++)
		;
	if (i == NSAMPLERS ||
	    !pick(engine, samplers[i].a1111, samplers[i].comfyui, samplers[i].sdcpp))
		return 0;
	if (!scheduler)
		return 1;
	for (i = 0; i < NSCHEDULERS && strcmp(schedulers[i].a1111, scheduler); i++)
		;
	return i < NSCHEDULERS &&
	       pick(engine, schedulers[i].a1111, schedulers[i].comfyui, schedulers[i].sdcpp);
}

int kiln_ai_sampler_list(const char *engine, int which, struct kiln_buf *out)
{
	size_t n = which ? NSCHEDULERS : NSAMPLERS, k = 0;
	int rc = 0;
	for (size_t i = 0; !rc && i < n; i++) {
		const char *a = which ? schedulers[i].a1111 : samplers[i].a1111;
		const char *v = which ? pick(engine, a, schedulers[i].comfyui, schedulers[i].sdcpp)
				      : pick(engine, a, samplers[i].comfyui, samplers[i].sdcpp);
		if (v)
			rc = kiln_buf_addf(out, "%s'%s'", k++ ? ", " : "", a);
	}
	return rc;
}

/* The model-file extensions servers list their LoRAs with (A1111 and ComfyUI scan for
 * .safetensors, .ckpt, .pt, .pth, .bin; sd.cpp also loads .gguf). */
int kiln_ai_lora_file(const char *name, char *out, size_t cap)
{
	static const char *const ext[] = {".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf"};
	size_t n = strlen(name);
	for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
		size_t k = strlen(ext[i]);
		if (n > k && !strcasecmp(name + n - k, ext[i]))
			return snprintf(out, cap, "%s", name) >= (int)cap ? -1 : 0;
	}
	return snprintf(out, cap, "%s.safetensors", name) >= (int)cap ? -1 : 0;
}

void kiln_ai_job_release(struct kiln_ai_job *j)
{
	kiln_buf_release(&j->image);
	free(j->info);
	free(j->scratch);
	j->info = j->scratch = NULL;
}

const struct kiln_engine *kiln_engine_find(const char *name)
{
	if (!name)
		return NULL;
	if (!strcmp(name, "a1111"))
		return &kiln_engine_a1111;
	if (!strcmp(name, "comfyui"))
		return &kiln_engine_comfyui;
	if (!strcmp(name, "sdcpp"))
		return &kiln_engine_sdcpp;
	return NULL;
}

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
	if (!(text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER)))
		goto out;
	rc = kiln_buf_adds(out, text);
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

const struct kiln_engine kiln_engine_a1111 = {
	.name = "a1111",
	.health_path = "/sdapi/v1/progress?skip_current_image=true",
	.build_request = a1111_build,
	.start = a1111_start,
	.on_response = a1111_response,
};
