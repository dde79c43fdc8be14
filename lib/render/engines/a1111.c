/* render/engines/a1111: the AUTOMATIC1111 / Forge API (POST /sdapi/v1/txt2img). The helpers
 * the engines share are in engine.c.
 *
 * Protocol (design.md §7): one synchronous request per image. LoRAs are `<lora:name:w>` tags
 * appended to the prompt; ControlNet units go in alwayson_scripts.controlnet.args; the
 * checkpoint in override_settings.sd_model_checkpoint. The answer holds the image as base64
 * and `info`, a JSON *string* whose seed and infotexts[0] we keep. A transfer that dies after
 * the server did the work cannot be recovered (A1111 keeps nothing): the attempt is retried.
 *
 * The server applies only names it knows and answers 200 whatever it dropped, so:
 *   probe    before the first job: /sdapi/v1/options (Forge registers forge_* options there:
 *            stable-diffusion-webui-forge modules_forge/shared_options.py), /sdapi/v1/sd-models,
 *            /sdapi/v1/loras, /controlnet/model_list and /controlnet/module_list;
 *   send     names as listed: the checkpoint's title (a key of sd_models.checkpoint_aliases,
 *            else process_images drops the override: modules/processing.py), a LoRA's name or
 *            alias without folder or extension (the keys of available_network_aliases:
 *            extensions-builtin/Lora/networks.py), a ControlNet model's exact "name [hash]"
 *            title and module as spelled in the list (Forge looks both up by exact key:
 *            extensions-builtin/sd_forge_controlnet/lib_controlnet/global_state.py);
 *   verify   every answer: info.sd_model_name is the checkpoint's name, "Lora hashes" has an
 *            entry per LoRA (extensions-builtin/Lora/extra_networks_lora.py activate), one
 *            "ControlNet N" entry per unit (sd-webui-controlnet writes them only when every
 *            unit is valid: scripts/controlnet.py get_enabled_units). A mismatch is a RETRY
 *            with KILN_E_SPEC naming what was dropped;
 *   record   what the server said it used, in job->ran.
 *
 * Sizes: a request is a few KB plus base64 control images; an answer a base64 PNG (~1-3 MB);
 * the probe's lists a few hundred names.
 */
#include "render/engines/engine.h"
#include "util/alloc.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* --- names ------------------------------------------------------------------------------- */

static const char *base_name(const char *s)
{
	const char *a = strrchr(s, '/'), *b = strrchr(s, '\\');
	if (b > a)
		a = b;
	return a ? a + 1 : s;
}

/* The length of s without a model file extension. */
static size_t stem_len(const char *s)
{
	static const char *const ext[] = {".safetensors", ".ckpt", ".pt", ".pth", ".bin",
					  ".gguf", ".patch"};
	size_t n = strlen(s);
	for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
		size_t k = strlen(ext[i]);
		if (n > k && !strcasecmp(s + n - k, ext[i]))
			return n - k;
	}
	return n;
}

/* "name [hash]" -> the length of name (the whole when there is no hash). */
static size_t title_name_len(const char *t)
{
	size_t n = strlen(t);
	const char *sp = n && t[n - 1] == ']' ? strrchr(t, '[') : NULL;
	if (sp && sp > t && sp[-1] == ' ')
		return (size_t)(sp - 1 - t);
	return n;
}

static int eqn(const char *a, size_t na, const char *b, size_t nb, int nocase)
{
	return na == nb && (nocase ? !strncasecmp(a, b, na) : !memcmp(a, b, na));
}

/* The i-th line of the checkpoint titles the probe kept (caps->raw), or NULL. */
static const char *title_at(const struct kiln_ai_caps *c, size_t i, size_t *len)
{
	const char *p = c->raw;
	for (size_t k = 0; p && k < i; k++)
		if ((p = strchr(p, '\n')))
			p++;
	if (!p || !*p)
		return NULL;
	*len = strcspn(p, "\n");
	return p;
}

/* The checkpoint the server lists for `want` (its title, file name with or without extension
 * and folder, or model name): its index, or -1. */
static long find_model(const struct kiln_ai_caps *c, const char *want)
{
	const char *wb = base_name(want);
	size_t wn = strlen(want), bn = stem_len(wb);
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < c->models.n; i++) {
			size_t tl, nl;
			const char *t = title_at(c, i, &tl), *mn = c->models.v[i];
			char name[1024];
			if (!t || tl >= sizeof name)
				continue;
			memcpy(name, t, tl);
			name[tl] = 0;
			nl = title_name_len(name);
			/* the title, the file name, the model name, or the short hash in the
			 * title's brackets (A1111's checkpoint_aliases) */
			if (pass == 0 && (eqn(want, wn, name, tl, 0) || eqn(want, wn, name, nl, 0) ||
					  !strcmp(want, mn) ||
					  (nl + 3 < tl && eqn(want, wn, name + nl + 2, tl - nl - 3, 1))))
				return (long)i;
			name[nl] = 0;
			if (pass == 1 && (eqn(wb, bn, base_name(name), stem_len(base_name(name)), 1) ||
					  eqn(wb, bn, mn, strlen(mn), 1)))
				return (long)i;
		}
	return -1;
}

/* The LoRA name or alias the server lists for `want` (written with or without folder and
 * extension), or NULL. */
static const char *find_lora(const struct kiln_ai_caps *c, const char *want)
{
	const char *b = base_name(want);
	size_t n = stem_len(b);
	for (size_t i = 0; i < c->loras.n; i++)
		if (!strcmp(c->loras.v[i], want))
			return c->loras.v[i];
	for (int nocase = 0; nocase < 2; nocase++)
		for (size_t i = 0; i < c->loras.n; i++)
			if (eqn(b, n, c->loras.v[i], strlen(c->loras.v[i]), nocase))
				return c->loras.v[i];
	return NULL;
}

/* The ControlNet model title the server lists for `want` (the title, or the file name with or
 * without extension), or NULL. */
static const char *find_cn_model(const struct kiln_ai_caps *c, const char *want)
{
	const char *b = base_name(want);
	size_t n = stem_len(b);
	for (size_t i = 0; i < c->cn_models.n; i++)
		if (!strcmp(c->cn_models.v[i], want))
			return c->cn_models.v[i];
	for (size_t i = 0; i < c->cn_models.n; i++)
		if (eqn(b, n, c->cn_models.v[i], title_name_len(c->cn_models.v[i]), 1))
			return c->cn_models.v[i];
	return NULL;
}

/* The module as the server spells it ("none" is "None" on Forge), or NULL. */
static const char *find_cn_module(const struct kiln_ai_caps *c, const char *want)
{
	for (size_t i = 0; i < c->cn_modules.n; i++)
		if (!strcmp(c->cn_modules.v[i], want))
			return c->cn_modules.v[i];
	for (size_t i = 0; i < c->cn_modules.n; i++)
		if (!strcasecmp(c->cn_modules.v[i], want))
			return c->cn_modules.v[i];
	return NULL;
}

static int listed(const struct kiln_ai_caps *c, unsigned flag)
{
	return c && c->known && (c->flags & flag);
}

/* What is sent for each name: as the server lists it when the probe found it, else as
 * written (the ControlNet model without its extension, which sd-webui-controlnet finds). */
static const char *send_checkpoint(const struct kiln_ai_caps *c, const char *want, char *buf,
				   size_t cap)
{
	long i = listed(c, KILN_CAPS_MODELS_LISTED) ? find_model(c, want) : -1;
	size_t tl;
	const char *t = i >= 0 ? title_at(c, (size_t)i, &tl) : NULL;
	if (!t || tl >= cap)
		return want;
	memcpy(buf, t, tl);
	buf[tl] = 0;
	return buf;
}

static const char *send_lora(const struct kiln_ai_caps *c, const char *want)
{
	const char *x = listed(c, KILN_CAPS_LORAS_LISTED) ? find_lora(c, want) : NULL;
	return x ? x : want;
}

static json_t *send_cn_model(const struct kiln_ai_caps *c, const char *want)
{
	const char *x = listed(c, KILN_CAPS_CONTROLNET) ? find_cn_model(c, want) : NULL;
	if (x)
		return json_string(x);
	return json_stringn(want, stem_len(want));
}

static const char *send_cn_module(const struct kiln_ai_caps *c, const char *want)
{
	const char *x = listed(c, KILN_CAPS_CONTROLNET) ? find_cn_module(c, want) : NULL;
	return x ? x : want;
}

/* --- requests ---------------------------------------------------------------------------- */

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

static int build_body(const struct kiln_ai_request *rq, const struct kiln_ai_caps *caps,
		      int redact, struct kiln_buf *out, struct kiln_error *e)
{
	struct kiln_buf prompt = KILN_BUF_INIT;
	json_t *o = NULL, *args = NULL;
	char ck[1024];
	int rc = KILN_E_NOMEM;
	if (kiln_buf_adds(&prompt, rq->prompt))
		goto out;
	for (size_t i = 0; i < rq->nloras; i++)
		if (kiln_buf_addf(&prompt, "%s<lora:%s:%g>", prompt.len ? " " : "",
				  send_lora(caps, rq->loras[i].name), rq->loras[i].weight))
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
				json_pack("{s:s}", "sd_model_checkpoint",
					  send_checkpoint(caps, rq->checkpoint, ck, sizeof ck))))
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
				      "enabled", 1, "image", img, "module",
				      send_cn_module(caps, cn->module), "model",
				      send_cn_model(caps, cn->model), "weight", cn->weight,
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
	json_decref(args);
	json_decref(o);
	kiln_buf_release(&prompt);
	return rc;
}

/* --- image jobs (polish): upscale through the extras tab, inpaint through img2img ------- */

/* The upscaler asked for, as the server lists it (GET /sdapi/v1/upscalers names). */
static const char *upscaler_of(const struct kiln_ai_request *rq)
{
	return rq->upscaler ? rq->upscaler : KILN_A1111_UPSCALER;
}

/* POST /sdapi/v1/extra-single-image (modules/api/models.py ExtrasSingleImageRequest,
 * AUTOMATIC1111/stable-diffusion-webui@f4f5bcac): resize_mode 0 scales by upscaling_resize;
 * face restoration off; the answer is {html_info, image}. POST /sdapi/v1/img2img with a mask
 * (StableDiffusionImg2ImgProcessingAPI: init_images, mask, denoising_strength, and the
 * processing class's inpainting_fill, inpaint_full_res, mask_blur, inpainting_mask_invert). */
static int image_body(const struct kiln_ai_request *rq, const struct kiln_ai_caps *caps,
		      int redact, struct kiln_buf *out, struct kiln_error *e)
{
	json_t *o = NULL, *img = NULL, *mask = NULL;
	char ck[1024];
	int rc = KILN_E_NOMEM;
	if (image_value(rq->init, redact, &img))
		goto out;
	if (rq->kind == KILN_AI_UPSCALE) {
		o = json_pack("{s:i, s:b, s:f, s:f, s:f, s:s, s:s, s:f, s:b, s:O}", "resize_mode", 0,
			      "show_extras_results", 1, "gfpgan_visibility", 0.0,
			      "codeformer_visibility", 0.0, "upscaling_resize", (double)rq->factor,
			      "upscaler_1", upscaler_of(rq), "upscaler_2", "None",
			      "extras_upscaler_2_visibility", 0.0, "upscale_first", 0, "image", img);
	} else {
		if (image_value(rq->mask, redact, &mask))
			goto out;
		o = json_pack("{s:[O], s:O, s:i, s:b, s:i, s:i, s:i, s:f, s:s, s:s, s:I, s:i, s:f, "
			      "s:i, s:i, s:s, s:i, s:i}", "init_images", img, "mask", mask,
			      "resize_mode", 0, "inpaint_full_res", 0, "inpainting_fill", 1,
			      "inpainting_mask_invert", 0, "mask_blur", 4, "denoising_strength",
			      rq->denoise, "prompt", rq->prompt ? rq->prompt : "",
			      "negative_prompt", rq->negative ? rq->negative : "",
			      "seed", (json_int_t)rq->seed, "steps", rq->steps, "cfg_scale", rq->cfg,
			      "width", rq->width, "height", rq->height, "sampler_name",
			      rq->sampler ? rq->sampler : "Euler a", "batch_size", 1, "n_iter", 1);
		if (o && rq->scheduler &&
		    json_object_set_new(o, "scheduler", json_string(rq->scheduler)))
			goto out;
		if (o && rq->checkpoint &&
		    json_object_set_new(o, "override_settings",
					json_pack("{s:s}", "sd_model_checkpoint",
						  send_checkpoint(caps, rq->checkpoint, ck,
								  sizeof ck))))
			goto out;
	}
	if (o)
		rc = kiln_ai_json_append(o, JSON_COMPACT | JSON_PRESERVE_ORDER, out);
out:
	if (rc)
		kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory building an A1111 request");
	json_decref(img);
	json_decref(mask);
	json_decref(o);
	return rc;
}

static const char *route_of(const struct kiln_ai_request *rq)
{
	return rq->kind == KILN_AI_UPSCALE ? "extra-single-image" :
	       rq->kind == KILN_AI_INPAINT ? "img2img" : "txt2img";
}

static int a1111_build(const struct kiln_ai_request *rq, int redact, struct kiln_buf *out,
		       struct kiln_error *e)
{
	if (rq->kind)
		return image_body(rq, NULL, redact, out, e);
	return build_body(rq, NULL, redact, out, e);
}

static int a1111_start(struct kiln_ai_job *j, struct kiln_http *next, struct kiln_error *e)
{
	next->method = "POST";
	snprintf(next->path, sizeof next->path, "/sdapi/v1/%s", route_of(j->rq));
	if (j->rq->kind)
		return image_body(j->rq, j->caps, 0, &next->body, e);
	return build_body(j->rq, j->caps, 0, &next->body, e);
}

/* The extras answer: {html_info, image}. The output's size is checked by the caller. */
static enum kiln_step upscale_response(struct kiln_ai_job *j, const char *body, size_t len,
				       struct kiln_error *e)
{
	json_error_t je;
	json_t *o = json_loadb(body, len, 0, &je), *img = json_object_get(o, "image");
	enum kiln_step st = KILN_STEP_RETRY;
	if (!o) {
		kiln_error_set(e, KILN_E_NET, NULL, "extra-single-image answer is not JSON (%s at "
			       "byte %d): the transfer was probably cut", je.text, je.position);
		return st;
	}
	if (!json_is_string(img) || !json_string_length(img)) {
		kiln_error_set(e, KILN_E_NET, NULL, "extra-single-image answer has no image");
	} else {
		kiln_buf_reset(&j->image);
		if (kiln_b64_decode(json_string_value(img), json_string_length(img), &j->image)) {
			kiln_error_set(e, KILN_E_IMAGE, NULL, "extra-single-image image is not valid "
				       "base64");
		} else {
			json_t *h = json_object_get(o, "html_info");
			j->seed_used = j->rq->seed;
			free(j->info);
			j->info = json_is_string(h) ? kiln_strdup(json_string_value(h)) : NULL;
			free(j->ran);
			j->ran = NULL;
			{
				json_t *r = json_pack("{s:s, s:i}", "upscaler", upscaler_of(j->rq),
						      "factor", j->rq->factor);
				j->ran = r ? json_dumps(r, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
				json_decref(r);
			}
			st = KILN_STEP_DONE;
		}
	}
	json_decref(o);
	return st;
}

/* --- verification ------------------------------------------------------------------------ */

/* Is `name` (less ':' and ',', as extra_networks_lora.py writes it) a key of the "Lora hashes"
 * value ("a: 0123abcd, b: 4567ef01")? */
static int lora_hashed(const char *hashes, const char *name)
{
	char key[512];
	size_t k = 0;
	for (const char *p = name; *p && k + 1 < sizeof key; p++)
		if (*p != ':' && *p != ',')
			key[k++] = *p;
	key[k] = 0;
	for (const char *p = hashes; p && *p;) {
		const char *colon = strchr(p, ':');
		while (*p == ' ')
			p++;
		colon = strchr(p, ':');
		if (!colon)
			break;
		if ((size_t)(colon - p) == k && !memcmp(p, key, k))
			return 1;
		p = strchr(colon, ',');
		if (p)
			p++;
	}
	return 0;
}

/* The value of `key: value,` in the infotext's last line, into out (quotes kept). */
static int infotext_value(const char *text, const char *key, char *out, size_t cap)
{
	const char *last = text ? strrchr(text, '\n') : NULL, *p;
	size_t k = strlen(key), n;
	p = last ? last + 1 : text;
	while (p && *p) {
		while (*p == ' ')
			p++;
		if (!strncmp(p, key, k) && p[k] == ':' && p[k + 1] == ' ') {
			p += k + 2;
			n = strcspn(p, ",");
			if (n >= cap)
				n = cap - 1;
			memcpy(out, p, n);
			out[n] = 0;
			return 1;
		}
		if (*p == '"') { /* a quoted value: skip to its end */
			for (p++; *p && *p != '"'; p++)
				if (*p == '\\' && p[1])
					p++;
		}
		p = strchr(p, ',');
		if (p)
			p++;
	}
	return 0;
}

/* What the server said it used: job->ran. */
static void record_ran(struct kiln_ai_job *j, json_t *info, const char *model)
{
	json_t *r = json_object(), *x, *egp = json_object_get(info, "extra_generation_params");
	const char *k;
	if (!r)
		return;
	if (model)
		json_object_set_new(r, "model", json_string(model));
	if (json_is_string(x = json_object_get(info, "sd_model_hash")))
		json_object_set(r, "model_hash", x);
	if (json_is_string(x = json_object_get(egp, "Lora hashes"))) {
		json_t *arr = json_array();
		char buf[4096], *save = NULL;
		snprintf(buf, sizeof buf, "%s", json_string_value(x));
		for (char *t = strtok_r(buf, ",", &save); t && arr; t = strtok_r(NULL, ",", &save)) {
			char *c = strchr(t, ':');
			while (*t == ' ')
				t++;
			if (!c)
				continue;
			*c = 0;
			for (c++; *c == ' '; c++)
				;
			json_array_append_new(arr, json_pack("{s:s, s:s}", "name", t, "hash", c));
		}
		json_object_set_new(r, "loras", arr);
	}
	{
		json_t *cn = json_array();
		json_t *v;
		json_object_foreach(egp, k, v) {
			if (cn && !strncmp(k, "ControlNet ", 11) && json_is_string(v)) {
				char line[2048];
				snprintf(line, sizeof line, "%s: %s", k, json_string_value(v));
				json_array_append_new(cn, json_string(line));
			}
		}
		if (cn && json_array_size(cn))
			json_object_set_new(r, "controlnet", cn);
		else
			json_decref(cn);
	}
	if (json_is_integer(x = json_object_get(info, "steps")))
		json_object_set(r, "steps", x);
	if (json_is_string(x = json_object_get(info, "sampler_name")))
		json_object_set(r, "sampler", x);
	if (json_is_string(x = json_object_get(egp, "Schedule type")))
		json_object_set(r, "scheduler", x);
	free(j->ran);
	j->ran = json_object_size(r) ? json_dumps(r, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(r);
}

/* Did the server apply what was asked? 0, or KILN_E_SPEC naming what it dropped. */
static int verify(struct kiln_ai_job *j, json_t *info, struct kiln_error *e)
{
	const struct kiln_ai_request *rq = j->rq;
	const struct kiln_ai_caps *c = j->caps;
	json_t *egp = json_object_get(info, "extra_generation_params");
	const char *text = j->info, *hashes;
	const char *model = json_string_value(json_object_get(info, "sd_model_name"));
	char model_buf[512], want[512], why[1024] = "";
	size_t len = 0, units = 0;
	json_t *x;
	const char *k;
	if (!model && text && infotext_value(text, "Model", model_buf, sizeof model_buf))
		model = model_buf;
	record_ran(j, info, model);
	if (rq->checkpoint && model) {
		/* what A1111 reports is name_for_extra, the file's base name without extension
		 * (modules/sd_models.py CheckpointInfo) */
		char ck[1024];
		const char *sent = send_checkpoint(c, rq->checkpoint, ck, sizeof ck);
		const char *b = base_name(sent);
		size_t n = title_name_len(b);
		if (n >= sizeof want)
			n = sizeof want - 1;
		memcpy(want, b, n);
		want[n] = 0;
		want[stem_len(want)] = 0;
		if (strcmp(model, want))
			len += (size_t)snprintf(why + len, sizeof why - len, "%sran checkpoint `%s`, "
						"not `%s` (override_settings.sd_model_checkpoint was "
						"dropped)", len ? "; " : "", model, rq->checkpoint);
	}
	hashes = json_string_value(json_object_get(egp, "Lora hashes"));
	for (size_t i = 0; i < rq->nloras && len < sizeof why - 1; i++) {
		const char *sent = send_lora(c, rq->loras[i].name);
		if (!lora_hashed(hashes, sent))
			len += (size_t)snprintf(why + len, sizeof why - len, "%sdropped LoRA `%s` "
						"(no `Lora hashes` entry for it)", len ? "; " : "",
						rq->loras[i].name);
	}
	json_object_foreach(egp, k, x) {
		char *end;
		if (!strncmp(k, "ControlNet ", 11) && strtol(k + 11, &end, 10) >= 0 && !*end)
			units++;
	}
	if (rq->ncontrols && units != rq->ncontrols && len < sizeof why - 1)
		len += (size_t)snprintf(why + len, sizeof why - len, "%sdropped ControlNet: %zu "
					"unit%s sent, %zu `ControlNet N` entr%s in the answer (a unit "
					"the extension refused: weight, module or model)",
					len ? "; " : "", rq->ncontrols, rq->ncontrols == 1 ? "" : "s",
					units, units == 1 ? "y" : "ies");
	if ((x = json_object_get(info, "comments")) && len < sizeof why - 1) {
		/* not in A1111's answer today (Processed.js), but a fork that passes the comments
		 * on says "Lora not found: x" / "Networks not found: x" there */
		const char *s = json_string_value(x);
		if (s && (strstr(s, "Lora not found") || strstr(s, "Networks not found")))
			len += (size_t)snprintf(why + len, sizeof why - len, "%s%s", len ? "; " : "",
						s);
	}
	if (!len)
		return 0;
	return kiln_error_set(e, KILN_E_SPEC, NULL, "the server made the image without what was "
			      "asked: it %s", why);
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
		kiln_error_set(e, KILN_E_NET, NULL, "%s answered HTTP %ld: %s", route_of(j->rq),
			       status, ex);
		return status == 422 || status == 404 ? KILN_STEP_FATAL : KILN_STEP_RETRY;
	}
	if (j->rq->kind == KILN_AI_UPSCALE)
		return upscale_response(j, body, len, e);
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
	if (verify(j, info ? info : o, e))
		goto out;
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
	if (rq && rq->kind == KILN_AI_UPSCALE) /* one image factor^2 the input's size */
		return KILN_AI_REPLY_SLACK + (size_t)rq->width * (size_t)rq->height * 4 *
		       (size_t)rq->factor * (size_t)rq->factor / 3 * 4;
	if (rq && rq->kind == KILN_AI_INPAINT) /* the image, and the mask it may send back */
		return kiln_ai_reply_b64(rq, 2);
	return KILN_AI_REPLY_JSON;
}

/* --- the probe ---------------------------------------------------------------------------- */

/* Append s (unique: not when it is there already). */
static int list_add(struct kiln_ai_list *l, const char *s, int unique)
{
	char **v;
	for (size_t i = 0; unique && i < l->n; i++)
		if (!strcmp(l->v[i], s))
			return 0;
	if (!(v = kiln_reallocarray(l->v, l->n + 1, sizeof *v)))
		return KILN_E_NOMEM;
	l->v = v;
	if (!(v[l->n] = kiln_strdup(s)))
		return KILN_E_NOMEM;
	l->n++;
	return 0;
}

static void get(struct kiln_http *next, const char *path)
{
	next->method = "GET";
	snprintf(next->path, sizeof next->path, "%s", path);
}

static int a1111_probe_start(struct kiln_ai_caps *caps, struct kiln_http *next,
			     struct kiln_error *e)
{
	(void)caps, (void)e;
	get(next, "/sdapi/v1/options");
	return 0;
}

/* Each listing in turn; a 404 is a listing the server does not have (no ControlNet
 * extension; an older server): its list stays unknown. */
static enum kiln_step a1111_probe_response(struct kiln_ai_caps *caps, const char *path,
					   long status, const char *body, size_t len,
					   struct kiln_http *next, struct kiln_error *e)
{
	json_t *o = NULL, *x, *v;
	json_error_t je;
	char ex[300];
	size_t i;
	int rc = 0, cn = !strncmp(path, "/controlnet/", 12);
	enum kiln_step st = KILN_STEP_SEND;
	const char *k;
	if (!status)
		return KILN_STEP_RETRY;
	if (status != 200 && status != 404) {
		kiln_ai_excerpt(ex, sizeof ex, body, len);
		kiln_error_set(e, KILN_E_NET, NULL, "GET %s (what the server has) answered HTTP "
			       "%ld: %s", path, status, ex);
		return KILN_STEP_RETRY;
	}
	if (status == 200 && !(o = json_loadb(body, len, 0, &je))) {
		kiln_error_set(e, KILN_E_NET, NULL, "GET %s answered with something that is not "
			       "JSON (%s): is this an A1111 server?", path, je.text);
		return KILN_STEP_RETRY;
	}
	if (!strcmp(path, "/sdapi/v1/options")) {
		json_object_foreach(o, k, v)
			if (!strncmp(k, "forge_", 6))
				caps->flags |= KILN_CAPS_FORGE;
		get(next, "/sdapi/v1/sd-models");
	} else if (!strcmp(path, "/sdapi/v1/sd-models")) {
		struct kiln_buf titles = KILN_BUF_INIT;
		json_array_foreach(o, i, v) {
			const char *t = json_string_value(json_object_get(v, "title"));
			const char *m = json_string_value(json_object_get(v, "model_name"));
			if (!t || strchr(t, '\n'))
				continue;
			if (!m)
				m = t;
			if ((rc = list_add(&caps->models, m, 0)))
				break;
			if ((rc = kiln_buf_addf(&titles, "%s\n", t)))
				break;
		}
		if (!rc && json_is_array(o)) {
			free(caps->raw);
			caps->raw = kiln_buf_detach(&titles, NULL);
			caps->flags |= KILN_CAPS_MODELS_LISTED;
		}
		kiln_buf_release(&titles);
		get(next, "/sdapi/v1/loras");
	} else if (!strcmp(path, "/sdapi/v1/loras")) {
		json_array_foreach(o, i, v) {
			const char *n = json_string_value(json_object_get(v, "name"));
			const char *a = json_string_value(json_object_get(v, "alias"));
			if ((n && (rc = list_add(&caps->loras, n, 1))) ||
			    (a && (rc = list_add(&caps->loras, a, 1))))
				break;
		}
		if (json_is_array(o))
			caps->flags |= KILN_CAPS_LORAS_LISTED;
		get(next, "/sdapi/v1/upscalers");
	} else if (!strcmp(path, "/sdapi/v1/upscalers")) {
		/* [{name, model_name, model_path, model_url, scale}] (UpscalerItem); upscaler_1
		 * is looked up by name (modules/postprocessing.py) */
		json_array_foreach(o, i, v) {
			const char *n = json_string_value(json_object_get(v, "name"));
			if (n && (rc = list_add(&caps->upscalers, n, 1)))
				break;
		}
		if (json_is_array(o))
			caps->flags |= KILN_CAPS_UPSCALERS_LISTED;
		get(next, "/controlnet/model_list");
	} else if (cn && strstr(path, "model_list")) {
		x = json_object_get(o, "model_list");
		json_array_foreach(x, i, v)
			if (json_is_string(v) && strcmp(json_string_value(v), "None") &&
			    (rc = list_add(&caps->cn_models, json_string_value(v), 1)))
				break;
		if (json_is_array(x)) {
			caps->flags |= KILN_CAPS_CONTROLNET;
			get(next, "/controlnet/module_list");
		} else {
			st = KILN_STEP_DONE;
		}
	} else {
		x = json_object_get(o, "module_list");
		json_array_foreach(x, i, v)
			if (json_is_string(v) &&
			    (rc = list_add(&caps->cn_modules, json_string_value(v), 1)))
				break;
		st = KILN_STEP_DONE;
	}
	json_decref(o);
	if (rc) {
		kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory reading what the server has");
		return KILN_STEP_FATAL;
	}
	if (st == KILN_STEP_DONE)
		caps->known = 1;
	return st;
}

/* --- what an endpoint can run ------------------------------------------------------------- */

/* "has no WHAT `name`; it has: nearest" appended to msg (every missing thing is named). */
static void missing(char *msg, size_t cap, size_t *len, const char *what, const char *name,
		    const struct kiln_ai_list *l)
{
	char near[512];
	kiln_ai_nearest(l, name, near, sizeof near);
	if (*len < cap)
		*len += (size_t)snprintf(msg + *len, cap - *len, "%shas no %s `%s`; it has: %s",
					 *len ? "\n" : "", what, name, l->n ? near : "none");
}

static int a1111_supports(const struct kiln_ai_caps *c, const struct kiln_ai_request *rq,
			  struct kiln_error *e)
{
	char msg[1400];
	size_t len = 0;
	if (!c || !c->known)
		return 0;
	if (rq->kind == KILN_AI_UPSCALE && (c->flags & KILN_CAPS_UPSCALERS_LISTED) &&
	    !kiln_ai_list_has(&c->upscalers, upscaler_of(rq)))
		missing(msg, sizeof msg, &len, "upscaler", upscaler_of(rq), &c->upscalers);
	if (rq->checkpoint && (c->flags & KILN_CAPS_MODELS_LISTED) &&
	    find_model(c, rq->checkpoint) < 0)
		missing(msg, sizeof msg, &len, "checkpoint", rq->checkpoint, &c->models);
	for (size_t i = 0; i < rq->nloras; i++)
		if ((c->flags & KILN_CAPS_LORAS_LISTED) && !find_lora(c, rq->loras[i].name))
			missing(msg, sizeof msg, &len, "LoRA", rq->loras[i].name, &c->loras);
	if (rq->ncontrols && !(c->flags & KILN_CAPS_CONTROLNET) && len < sizeof msg)
		len += (size_t)snprintf(msg + len, sizeof msg - len, "%shas no ControlNet extension "
					"(no /controlnet/model_list), and ControlNet model `%s` is "
					"asked for", len ? "\n" : "", rq->controls[0].cn->model);
	for (size_t i = 0; (c->flags & KILN_CAPS_CONTROLNET) && i < rq->ncontrols; i++) {
		const struct kiln_controlnet *cn = rq->controls[i].cn;
		if (!find_cn_model(c, cn->model))
			missing(msg, sizeof msg, &len, "ControlNet model", cn->model, &c->cn_models);
		if (!find_cn_module(c, cn->module))
			missing(msg, sizeof msg, &len, "ControlNet module", cn->module,
				&c->cn_modules);
	}
	if (!len)
		return 0;
	return kiln_error_set(e, KILN_E_SPEC, NULL, "%s", msg);
}

const struct kiln_engine kiln_engine_a1111 = {
	.name = "a1111",
	.health_path = "/sdapi/v1/progress?skip_current_image=true",
	.submit_path = "/sdapi/v1/txt2img",
	.build_request = a1111_build,
	.start = a1111_start,
	.on_response = a1111_response,
	.reply_cap = a1111_cap,
	.probe_start = a1111_probe_start,
	.probe_response = a1111_probe_response,
	.supports = a1111_supports,
};
