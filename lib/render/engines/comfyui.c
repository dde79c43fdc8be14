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

/* --- what kiln binds in a workflow, found by following links ------------------------------
 *
 * ComfyUI ignores an input a node class does not declare (execution.py get_input_data reads
 * only the declared ones; validate_inputs in execution.py checks only those), so setting
 * inputs.text on a CLIPTextEncodeSDXL (which has text_g and text_l; comfy_extras/
 * nodes_clip_sdxl.py) or inputs.width on a node that is not the latent's source is silently
 * lost. kiln therefore follows the KSampler's links: positive and negative back through any
 * conditioning nodes (ConditioningCombine, ConditioningConcat, ControlNetApply(Advanced), ...)
 * to every text encoder that feeds them, and latent_image back to the node with width and
 * height. A workflow where that cannot be done is refused before any job, naming the node. */

/* Text encoders and the inputs that carry their text (nodes.py, comfy_extras/nodes_clip_sdxl.py,
 * nodes_sd3.py, nodes_flux.py, nodes_hunyuan.py). */
static const struct {
	const char *cls, *in[3];
} encoders[] = {
	{"CLIPTextEncode", {"text"}},
	{"CLIPTextEncodeSDXL", {"text_g", "text_l"}},
	{"CLIPTextEncodeSDXLRefiner", {"text"}},
	{"CLIPTextEncodeSD3", {"clip_l", "clip_g", "t5xxl"}},
	{"CLIPTextEncodeFlux", {"clip_l", "t5xxl"}},
	{"CLIPTextEncodeHunyuanDiT", {"bert", "mt5xl"}},
};
#define NENCODERS (sizeof encoders / sizeof encoders[0])
#define MAX_BOUND 32

struct binding {
	const char *ks, *latent, *ck;
	const char *pos[MAX_BOUND], *neg[MAX_BOUND];
	size_t npos, nneg;
};

static const char *cls_of(json_t *g, const char *id)
{
	const char *c = json_string_value(json_object_get(json_object_get(g, id), "class_type"));
	return c ? c : "?";
}

/* The text inputs of node n: the encoder table's, or a lone string "text" of a class kiln does
 * not know (a custom encoder; the probe checks the server declares it). NULL: not an encoder. */
static const char *const *text_inputs(json_t *n)
{
	static const char *const plain[3] = {"text"};
	const char *c = json_string_value(json_object_get(n, "class_type"));
	for (size_t i = 0; c && i < NENCODERS; i++)
		if (!strcmp(encoders[i].cls, c))
			return encoders[i].in;
	return json_is_string(json_object_get(json_object_get(n, "inputs"), "text")) ? plain : NULL;
}

static int is_cond_input(const char *name)
{
	return !strncmp(name, "conditioning", 12) || !strcmp(name, "positive") ||
	       !strcmp(name, "negative") || !strcmp(name, "cond");
}

static int add_bound(const char **list, size_t *n, const char *id)
{
	for (size_t i = 0; i < *n; i++)
		if (!strcmp(list[i], id))
			return 0;
	if (*n == MAX_BOUND)
		return -1;
	list[(*n)++] = id;
	return 0;
}

/* Follow conditioning link `link` back to its text encoders, into list. */
static int walk_cond(json_t *g, json_t *link, const char *side, const char **list, size_t *n,
		     unsigned depth, struct kiln_error *e)
{
	const char *id = json_string_value(json_array_get(link, 0)), *k;
	json_int_t slot = json_integer_value(json_array_get(link, 1));
	json_t *node, *in, *v;
	int followed = 0, both;
	if (!json_is_array(link) || !id)
		return kiln_error_set(e, KILN_E_SPEC, NULL, "the KSampler's %s input is not a link "
				      "to a node", side);
	if (!(node = json_object_get(g, id)))
		return kiln_error_set(e, KILN_E_SPEC, id, "the %s conditioning links to node %s, "
				      "which is not in the workflow", side, id);
	if (depth > 64)
		return kiln_error_set(e, KILN_E_SPEC, id, "the %s conditioning goes round in a "
				      "loop through node %s", side, id);
	if (text_inputs(node)) {
		if (add_bound(list, n, id))
			return kiln_error_set(e, KILN_E_SPEC, id, "more than %d text encoders feed "
					      "the %s conditioning", MAX_BOUND, side);
		return 0;
	}
	in = json_object_get(node, "inputs");
	/* a node with both positive and negative inputs (ControlNetApplyAdvanced) passes the
	 * positive to output 0 and the negative to output 1 (nodes.py) */
	both = json_is_array(json_object_get(in, "positive")) &&
	       json_is_array(json_object_get(in, "negative"));
	json_object_foreach(in, k, v) {
		int rc;
		if (!json_is_array(v) || !is_cond_input(k))
			continue;
		if (both && ((slot == 0 && !strcmp(k, "negative")) ||
			     (slot == 1 && !strcmp(k, "positive"))))
			continue;
		if ((rc = walk_cond(g, v, side, list, n, depth + 1, e)))
			return rc;
		followed = 1;
	}
	if (!followed)
		return kiln_error_set(e, KILN_E_SPEC, id, "node %s (%s) feeds the KSampler's %s "
				      "conditioning, but kiln finds no text input behind it (no "
				      "CLIPTextEncode, CLIPTextEncodeSDXL or other text encoder): "
				      "the prompt would not reach the "
				      "model", id, cls_of(g, id), side);
	return 0;
}

/* Find what kiln binds in graph g. e->where is the node id at fault (the caller turns it into
 * file:line). */
static int analyse(json_t *g, int need_ck, struct binding *b, struct kiln_error *e)
{
	const char *k, *ksid = NULL;
	json_t *n, *in, *lat;
	int rc;
	memset(b, 0, sizeof *b);
	json_object_foreach(g, k, n) {
		const char *c = json_string_value(json_object_get(n, "class_type"));
		if (c && !strcmp(c, "KSampler")) {
			if (ksid)
				return kiln_error_set(e, KILN_E_SPEC, k, "the workflow has two "
						      "KSampler nodes (%s and %s): kiln binds "
						      "seed, steps and prompts to one", ksid, k);
			ksid = k;
		}
		if (c && !strcmp(c, "CheckpointLoaderSimple") && !b->ck)
			b->ck = k;
	}
	if (!ksid)
		return kiln_error_set(e, KILN_E_SPEC, NULL, "the workflow has no KSampler node: "
				      "kiln binds seed, steps, cfg and sampler there");
	b->ks = ksid;
	if (!b->ck && need_ck)
		return kiln_error_set(e, KILN_E_SPEC, NULL, "the workflow has no "
				      "CheckpointLoaderSimple node: kiln binds generate.checkpoint "
				      "and chains LoRAs there");
	in = json_object_get(json_object_get(g, ksid), "inputs");
	if ((rc = walk_cond(g, json_object_get(in, "positive"), "positive", b->pos, &b->npos, 0,
			    e)) ||
	    (rc = walk_cond(g, json_object_get(in, "negative"), "negative", b->neg, &b->nneg, 0,
			    e)))
		return rc;
	for (size_t i = 0; i < b->npos; i++)
		for (size_t j = 0; j < b->nneg; j++)
			if (!strcmp(b->pos[i], b->neg[j]))
				return kiln_error_set(e, KILN_E_SPEC, b->pos[i], "node %s (%s) "
						      "feeds both the positive and the negative "
						      "conditioning: kiln cannot give it both "
						      "texts",
						      b->pos[i], cls_of(g, b->pos[i]));
	/* the latent: back from latent_image to the node that has width and height */
	lat = json_object_get(in, "latent_image");
	for (unsigned depth = 0; depth < 64; depth++) {
		const char *id = json_string_value(json_array_get(lat, 0));
		json_t *node = id ? json_object_get(g, id) : NULL, *li, *v;
		if (!json_is_array(lat) || !node)
			return kiln_error_set(e, KILN_E_SPEC, ksid, "the KSampler (node %s) has no "
					      "latent_image link to a node of the workflow: kiln "
					      "sets the image size on the node that feeds "
					      "it", ksid);
		li = json_object_get(node, "inputs");
		if (json_object_get(li, "width") && json_object_get(li, "height")) {
			b->latent = id;
			return 0;
		}
		lat = NULL;
		json_object_foreach(li, k, v)
			if (json_is_array(v) && (!strcmp(k, "samples") || !strncmp(k, "latent", 6)))
				lat = v;
		if (!lat)
			return kiln_error_set(e, KILN_E_SPEC, id, "the KSampler's latent_image "
					      "comes from node %s (%s), which has no width and "
					      "height: kiln cannot set the image size (start the "
					      "latent with EmptyLatentImage or another node with "
					      "width and height)",
					      id, cls_of(g, id));
	}
	return kiln_error_set(e, KILN_E_SPEC, ksid, "the KSampler's latent_image goes round in "
			      "a loop");
}

/* The 1-based line of node id's key in the workflow text (0: not found). */
static int node_line(const char *text, const char *id)
{
	size_t n = strlen(id);
	int line = 1;
	for (const char *p = text; *p; p++) {
		if (*p == '\n')
			line++;
		else if (*p == '"' && !strncmp(p + 1, id, n) && p[n + 1] == '"') {
			const char *q = p + n + 2;
			while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
				q++;
			if (*q == ':')
				return line;
		}
	}
	return 0;
}

int kiln_comfy_workflow_check(const char *text, const char *file, int need_loader,
			      struct kiln_error *e)
{
	json_error_t je;
	json_t *g = json_loads(text, 0, &je);
	struct binding b;
	int rc;
	if (!json_is_object(g)) {
		json_decref(g);
		return kiln_error_set(e, KILN_E_SPEC, file, "line %d: not a ComfyUI API-format "
				      "graph (a JSON object of nodes; export it with 'Save (API "
				      "Format)')",
				      je.line);
	}
	rc = analyse(g, need_loader, &b, e);
	if (rc == KILN_E_SPEC) {
		int line = e->where[0] ? node_line(text, e->where) : 0;
		char where[sizeof e->where];
		if (line)
			snprintf(where, sizeof where, "%s:%d", file ? file : "workflow", line);
		else
			snprintf(where, sizeof where, "%s", file ? file : "");
		memcpy(e->where, where, sizeof e->where);
	}
	json_decref(g);
	return rc;
}

static int set_texts(json_t *g, const char *const *ids, size_t n, const char *text)
{
	for (size_t i = 0; i < n; i++) {
		json_t *node = json_object_get(g, ids[i]), *in = json_object_get(node, "inputs");
		const char *const *names = text_inputs(node);
		for (size_t k = 0; names && k < 3 && names[k]; k++)
			if (json_object_set_new(in, names[k], json_string(text)))
				return -1;
	}
	return 0;
}

/* The /prompt body around graph g: {prompt, client_id, prompt_id} (the id from the recipe and
 * the attempt), appended to out. KILN_E_NOMEM. */
static int post_body(const struct kiln_ai_request *rq, unsigned attempt, json_t *g,
		     struct kiln_buf *out)
{
	char pid[40];
	json_t *body;
	int rc;
	prompt_id(rq, attempt, pid);
	if (!(body = json_pack("{s:O, s:s, s:s}", "prompt", g, "client_id", "kiln", "prompt_id",
			       pid)))
		return KILN_E_NOMEM;
	rc = kiln_ai_json_append(body, JSON_COMPACT | JSON_PRESERVE_ORDER, out);
	json_decref(body);
	return rc;
}

static int bind(const struct kiln_ai_request *rq, const struct kiln_ai_caps *caps,
		unsigned attempt, struct kiln_buf *out, struct kiln_error *e)
{
	json_t *g, *ks, *in;
	json_error_t je;
	struct binding bd;
	const char *ck;
	int rc = KILN_E_NOMEM;
	if (!rq->workflow)
		return kiln_error_set(e, KILN_E_SPEC, NULL, "comfyui needs generate.workflow");
	if (!(g = json_loads(rq->workflow, 0, &je)) || !json_is_object(g)) {
		json_decref(g);
		return kiln_error_set(e, KILN_E_SPEC, NULL, "the workflow is not a JSON object: %s",
				      je.text);
	}
	if ((rc = analyse(g, rq->checkpoint || rq->nloras, &bd, e))) {
		json_decref(g);
		return rc;
	}
	rc = KILN_E_NOMEM;
	ks = json_object_get(g, bd.ks);
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
	if (set_texts(g, bd.pos, bd.npos, rq->prompt) ||
	    set_texts(g, bd.neg, bd.nneg, rq->negative))
		goto out;
	{
		json_t *li = json_object_get(json_object_get(g, bd.latent), "inputs");
		if (json_object_set_new(li, "width", json_integer(rq->width)) ||
		    json_object_set_new(li, "height", json_integer(rq->height)) ||
		    (json_object_get(li, "batch_size") &&
		     json_object_set_new(li, "batch_size", json_integer(1))))
			goto out;
	}
	ck = bd.ck;
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
			if (kiln_ai_lora_listed(caps, rq->loras[i].name, file, sizeof file)) {
				rc = kiln_error_set(e, KILN_E_SPEC, NULL, "lora name '%s' is too long",
						    rq->loras[i].name);
				goto out;
			}
			if (json_object_set_new(g, id, json_pack("{s:s, s:{s:[s,i], s:[s,i], s:s, "
				"s:f, s:f}}", "class_type", "LoraLoader", "inputs", "model", prev, 0,
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
		    json_object_set_new(g, ap, json_pack("{s:s, s:{s:o, s:o, s:[s,i], s:[s,i], "
			"s:f, s:f, s:f}}", "class_type", "ControlNetApplyAdvanced", "inputs",
			"positive", pos, "negative", neg, "control_net", ld, 0, "image", img, 0,
			"strength", cn->weight, "start_percent", cn->guidance_start,
			"end_percent", cn->guidance_end)) ||
		    json_object_set_new(in, "positive", json_pack("[s,i]", ap, 0)) ||
		    json_object_set_new(in, "negative", json_pack("[s,i]", ap, 1)))
			goto out;
	}
	rc = post_body(rq, attempt, g, out);
out:
	if (rc == KILN_E_NOMEM)
		kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory binding the workflow");
	json_decref(g);
	return rc;
}

/* --- image jobs (polish): graphs of kiln's own, not the studio's workflow ---------------
 *
 * Upscale (comfy_extras/nodes_upscale_model.py, nodes.py; comfyanonymous/ComfyUI):
 *   LoadImage {image} -> ImageUpscaleWithModel {upscale_model <- UpscaleModelLoader
 *   {model_name}, image} [-> ImageScaleBy {upscale_method lanczos, scale_by}] -> SaveImage.
 *   The model upscales by its own scale (a 4x ESRGAN: 4x); ImageScaleBy brings it to the
 *   factor asked when the model's scale, read from its name (x2/2x, x4/4x; else 4), differs.
 * Inpaint: CheckpointLoaderSimple {ckpt_name}; LoadImage {image}; LoadImageMask {image,
 *   channel red} (white = 1 = repaint); VAEEncodeForInpaint {pixels, vae, mask,
 *   grow_mask_by 6}; CLIPTextEncode x2; KSampler {denoise, ...}; VAEDecode; SaveImage.
 * The input (and mask) are uploaded first, as control images are. */

static const struct kiln_ai_file *upload_at(const struct kiln_ai_request *rq, size_t i)
{
	if (!rq->kind)
		return i < rq->ncontrols ? rq->controls[i].image : NULL;
	if (i == 0)
		return rq->init;
	return i == 1 && rq->kind == KILN_AI_INPAINT ? rq->mask : NULL;
}

static int model_scale(const char *name)
{
	const char *b = strrchr(name, '/');
	char low[256];
	size_t n = 0;
	for (b = b ? b + 1 : name; *b && n < sizeof low - 1; b++)
		low[n++] = (char)(*b >= 'A' && *b <= 'Z' ? *b + 32 : *b);
	low[n] = 0;
	for (int s = 2; s <= 8; s *= 2) {
		char a[8], c[8];
		snprintf(a, sizeof a, "x%d", s);
		snprintf(c, sizeof c, "%dx", s);
		if (strstr(low, a) || strstr(low, c))
			return s;
	}
	return 4;
}

static const char *comfy_upscaler(const struct kiln_ai_request *rq)
{
	return rq->upscaler ? rq->upscaler : KILN_COMFY_UPSCALER;
}

static int bind_image(const struct kiln_ai_request *rq, const struct kiln_ai_caps *caps,
		      unsigned attempt, struct kiln_buf *out, struct kiln_error *e)
{
	json_t *g = json_object();
	char img[128], mask[128];
	const char *last = "kiln_up";
	int rc = KILN_E_NOMEM;
	if (!g)
		goto out;
	upload_name(rq->init, img, sizeof img);
	if (json_object_set_new(g, "kiln_in", json_pack("{s:s, s:{s:s}}", "class_type",
							"LoadImage", "inputs", "image", img)))
		goto out;
	if (rq->kind == KILN_AI_UPSCALE) {
		int ms = model_scale(comfy_upscaler(rq));
		if (json_object_set_new(g, "kiln_model", json_pack("{s:s, s:{s:s}}", "class_type",
			"UpscaleModelLoader", "inputs", "model_name", comfy_upscaler(rq))) ||
		    json_object_set_new(g, "kiln_up", json_pack("{s:s, s:{s:[s,i], s:[s,i]}}",
			"class_type", "ImageUpscaleWithModel", "inputs", "upscale_model",
			"kiln_model", 0, "image", "kiln_in", 0)))
			goto out;
		if (ms != rq->factor) {
			if (json_object_set_new(g, "kiln_scale", json_pack("{s:s, s:{s:[s,i], s:s, "
				"s:f}}", "class_type", "ImageScaleBy", "inputs", "image", "kiln_up", 0,
				"upscale_method", "lanczos", "scale_by",
				(double)rq->factor / (double)ms)))
				goto out;
			last = "kiln_scale";
		}
	} else {
		const char *ck = rq->checkpoint;
		const char *smp = kiln_ai_sampler_name("comfyui", rq->sampler);
		const char *sch = kiln_ai_schedule("comfyui", rq->sampler, rq->scheduler);
		if (!ck && caps && caps->models.n)
			ck = caps->models.v[0];
		if (!ck) {
			rc = kiln_error_set(e, KILN_E_SPEC, NULL, "inpaint on ComfyUI needs a checkpoint "
					    "(generate.checkpoint), and the server lists none");
			goto out;
		}
		upload_name(rq->mask, mask, sizeof mask);
		if (json_object_set_new(g, "kiln_ck", json_pack("{s:s, s:{s:s}}", "class_type",
			"CheckpointLoaderSimple", "inputs", "ckpt_name", ck)) ||
		    json_object_set_new(g, "kiln_mask", json_pack("{s:s, s:{s:s, s:s}}",
			"class_type", "LoadImageMask", "inputs", "image", mask, "channel", "red")) ||
		    json_object_set_new(g, "kiln_pos", json_pack("{s:s, s:{s:s, s:[s,i]}}",
			"class_type", "CLIPTextEncode", "inputs", "text",
			rq->prompt ? rq->prompt : "", "clip", "kiln_ck", 1)) ||
		    json_object_set_new(g, "kiln_neg", json_pack("{s:s, s:{s:s, s:[s,i]}}",
			"class_type", "CLIPTextEncode", "inputs", "text",
			rq->negative ? rq->negative : "", "clip", "kiln_ck", 1)) ||
		    json_object_set_new(g, "kiln_enc", json_pack("{s:s, s:{s:[s,i], s:[s,i], "
			"s:[s,i], s:i}}", "class_type", "VAEEncodeForInpaint", "inputs", "pixels",
			"kiln_in", 0, "vae", "kiln_ck", 2, "mask", "kiln_mask", 0, "grow_mask_by",
			6)) ||
		    json_object_set_new(g, "kiln_ks", json_pack("{s:s, s:{s:[s,i], s:I, s:i, s:f, "
			"s:s, s:s, s:[s,i], s:[s,i], s:[s,i], s:f}}", "class_type", "KSampler",
			"inputs", "model", "kiln_ck", 0, "seed", (json_int_t)rq->seed, "steps",
			rq->steps, "cfg", rq->cfg, "sampler_name", smp ? smp : "euler",
			"scheduler", sch ? sch : "normal", "positive", "kiln_pos", 0, "negative",
			"kiln_neg", 0, "latent_image", "kiln_enc", 0, "denoise", rq->denoise)) ||
		    json_object_set_new(g, "kiln_dec", json_pack("{s:s, s:{s:[s,i], s:[s,i]}}",
			"class_type", "VAEDecode", "inputs", "samples", "kiln_ks", 0, "vae",
			"kiln_ck", 2)))
			goto out;
		last = "kiln_dec";
	}
	if (json_object_set_new(g, "kiln_save", json_pack("{s:s, s:{s:[s,i], s:s}}", "class_type",
		"SaveImage", "inputs", "images", last, 0, "filename_prefix", "kiln_polish")))
		goto out;
	rc = post_body(rq, attempt, g, out);
out:
	if (rc == KILN_E_NOMEM)
		kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory building the graph");
	json_decref(g);
	return rc;
}

static int missing(const struct kiln_ai_list *l, const char *what, const char *want,
		   struct kiln_error *e);

/* The nodes and the upscale model an image job needs. */
static int image_supports(const struct kiln_ai_caps *caps, const struct kiln_ai_request *rq,
			  struct kiln_error *e)
{
	static const char *const up[] = {"LoadImage", "UpscaleModelLoader",
					 "ImageUpscaleWithModel", "ImageScaleBy", "SaveImage"};
	static const char *const in[] = {"LoadImage", "LoadImageMask", "CheckpointLoaderSimple",
					 "CLIPTextEncode", "VAEEncodeForInpaint", "KSampler",
					 "VAEDecode", "SaveImage"};
	const char *const *need = rq->kind == KILN_AI_UPSCALE ? up : in;
	size_t n = rq->kind == KILN_AI_UPSCALE ? sizeof up / sizeof *up : sizeof in / sizeof *in;
	if (!caps || !caps->known)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!kiln_ai_list_has(&caps->nodes, need[i]))
			return kiln_error_set(e, KILN_E_SPEC, NULL, "ComfyUI has no %s node, which "
					      "kiln's %s graph needs", need[i],
					      rq->kind == KILN_AI_UPSCALE ? "upscale" : "inpaint");
	if (rq->kind == KILN_AI_UPSCALE &&
	    !kiln_ai_list_has(&caps->upscalers, comfy_upscaler(rq)))
		return missing(&caps->upscalers, "upscale model", comfy_upscaler(rq), e);
	if (rq->kind == KILN_AI_INPAINT && rq->checkpoint &&
	    !kiln_ai_list_has(&caps->models, rq->checkpoint))
		return missing(&caps->models, "checkpoint", rq->checkpoint, e);
	return 0;
}

static int comfy_build(const struct kiln_ai_request *rq, int redact, struct kiln_buf *out,
		       struct kiln_error *e)
{
	(void)redact; /* control images are uploaded, never in the body */
	if (rq->kind)
		return bind_image(rq, NULL, 1, out, e);
	return bind(rq, NULL, 1, out, e);
}

static void get(struct kiln_http *next, const char *fmt, const char *id)
{
	next->method = "GET";
	snprintf(next->path, sizeof next->path, fmt, id);
}

static int submit(struct kiln_ai_job *j, struct kiln_http *next, struct kiln_error *e)
{
	const struct kiln_ai_file *f = upload_at(j->rq, j->upload_next);
	if (f) {
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
	if (j->rq->kind)
		return bind_image(j->rq, j->caps, j->attempt, &next->body, e);
	return bind(j->rq, j->caps, j->attempt, &next->body, e);
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

/* Mark in set every node that node id depends on (itself included). */
static int ancestors(json_t *g, const char *id, json_t *set, unsigned depth)
{
	json_t *n = json_object_get(g, id), *v;
	const char *k;
	if (!n || json_object_get(set, id) || depth > 4096)
		return 0;
	if (json_object_set_new(set, id, json_true()))
		return -1;
	json_object_foreach(json_object_get(n, "inputs"), k, v)
		if (json_is_array(v) && json_array_size(v) == 2 &&
		    json_is_string(json_array_get(v, 0)) &&
		    ancestors(g, json_string_value(json_array_get(v, 0)), set, depth + 1))
			return -1;
	return 0;
}

static int need(struct kiln_buf *miss, json_t *g, json_t *ran, const char *id)
{
	if (!id || json_object_get(ran, id))
		return 0;
	return kiln_buf_addf(miss, "%snode %s (%s)", miss->len ? ", " : "", id, cls_of(g, id));
}

/* What ran, from the history entry h: ComfyUI keeps the prompt it ran as [number, id, graph,
 * extra_data, outputs_to_execute] (execution.py PromptQueue.task_done; server.py queues only
 * the outputs that passed validation, and answers 200 with node_errors for the others). Every
 * node kiln bound must be behind one of those outputs, else what it carries never reached
 * the image. 0 ok (or the server keeps no prompt); KILN_E_SPEC naming what did not run. On
 * success j->ran records the checkpoint, LoRAs and sampler of the graph that ran. */
static int check_ran(struct kiln_ai_job *j, json_t *h, json_t **ranset, struct kiln_error *e)
{
	json_t *p = json_object_get(h, "prompt"), *g = json_array_get(p, 2), *v, *ran, *rec;
	json_t *outs = json_array_get(p, 4);
	struct kiln_buf miss = KILN_BUF_INIT;
	struct kiln_error ae;
	struct binding bd;
	size_t i;
	int rc = 0;
	*ranset = NULL;
	if (!json_is_object(g) || !json_is_array(outs))
		return 0;
	if (!(ran = json_object()))
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
	json_array_foreach(outs, i, v)
		if (json_is_string(v) && ancestors(g, json_string_value(v), ran, 0))
			rc = -1;
	if (rc || analyse(g, 0, &bd, &ae) == KILN_E_NOMEM) {
		json_decref(ran);
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
	}
	if (!bd.ks) {
		/* the graph that ran is not the one kiln bound */
		json_decref(ran);
		return kiln_error_set(e, KILN_E_SPEC, NULL, "prompt %s ran a graph without kiln's "
				      "KSampler: %s", j->remote_id, ae.msg);
	}
	rc |= need(&miss, g, ran, bd.ks);
	rc |= need(&miss, g, ran, bd.latent);
	for (i = 0; i < bd.npos; i++)
		rc |= need(&miss, g, ran, bd.pos[i]);
	for (i = 0; i < bd.nneg; i++)
		rc |= need(&miss, g, ran, bd.neg[i]);
	if (j->rq->checkpoint)
		rc |= need(&miss, g, ran, bd.ck);
	for (i = 0; i < j->rq->nloras; i++) {
		char id[32];
		snprintf(id, sizeof id, "kiln_lora_%zu", i);
		rc |= need(&miss, g, ran, id);
	}
	for (i = 0; i < j->rq->ncontrols; i++) {
		char id[32];
		snprintf(id, sizeof id, "kiln_cn_%zu", i);
		rc |= need(&miss, g, ran, id);
	}
	if (rc) {
		kiln_buf_release(&miss);
		json_decref(ran);
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
	}
	if (miss.len) {
		kiln_error_set(e, KILN_E_SPEC, NULL, "prompt %s finished without running %s: the "
			       "output they feed was dropped (ComfyUI runs only the outputs that "
			       "pass validation), so the image lacks what they carry", j->remote_id,
			       miss.data);
		kiln_buf_release(&miss);
		json_decref(ran);
		return KILN_E_SPEC;
	}
	/* the record of what ran: out of memory here loses only the record */
	{
		json_t *ksi = json_object_get(json_object_get(g, bd.ks), "inputs");
		json_t *loras = json_array();
		const char *k;
		json_object_foreach(g, k, v) {
			const char *c = json_string_value(json_object_get(v, "class_type"));
			json_t *ln = json_object_get(json_object_get(v, "inputs"), "lora_name");
			if (loras && c && !strcmp(c, "LoraLoader") && json_object_get(ran, k) &&
			    json_is_string(ln) &&
			    json_array_append_new(loras, json_pack("{s:O}", "name", ln))) {
				json_decref(loras);
				loras = NULL;
			}
		}
		rec = loras ? json_pack("{s:O?, s:o, s:O?, s:O?, s:O?}", "model",
					json_object_get(json_object_get(json_object_get(g, bd.ck),
									"inputs"), "ckpt_name"),
					"loras", loras, "steps", json_object_get(ksi, "steps"),
					"sampler", json_object_get(ksi, "sampler_name"),
					"scheduler", json_object_get(ksi, "scheduler")) : NULL;
		free(j->ran);
		j->ran = rec ? json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
		json_decref(rec);
	}
	*ranset = ran;
	return 0;
}

/* 1 when output node id depends on the workflow's KSampler (or the graph has none). */
static int behind_sampler(json_t *g, const char *id)
{
	json_t *set = json_object(), *n;
	const char *k;
	int yes = 1;
	if (!set || ancestors(g, id, set, 0)) {
		json_decref(set);
		return 1;
	}
	json_object_foreach(g, k, n) {
		const char *c = json_string_value(json_object_get(n, "class_type"));
		if (c && !strcmp(c, "KSampler"))
			yes = json_object_get(set, k) != NULL;
	}
	json_decref(set);
	return yes;
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
	json_t *best = NULL, *ranset = NULL, *g = json_array_get(json_object_get(h, "prompt"), 2);
	/* an image job's graph is kiln's own, every node on the way to its SaveImage */
	int rc = j->rq->kind ? 0 : check_ran(j, h, &ranset, e);
	json_decref(ranset);
	if (rc)
		return KILN_STEP_RETRY;
	/* a graph may preview (PreviewImage: type "temp", a scratch file the server deletes)
	 * besides saving (SaveImage: type "output"); the saved image is the result, whatever the
	 * order of the nodes in /history. A temp image only when nothing was saved. Only an
	 * output behind kiln's KSampler counts (not a preview of the control image). */
	json_object_foreach(outs, k, n) {
		json_t *img = json_array_get(json_object_get(n, "images"), 0);
		const char *ty = json_string_value(json_object_get(img, "type"));
		if (!json_string_value(json_object_get(img, "filename")))
			continue;
		if (json_is_object(g) && !behind_sampler(g, k))
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

/* Is our prompt in /queue ({queue_running, queue_pending: [[number, prompt_id, graph,
 * extra_data, outputs], ...]})? By its id, or, for a server that gave it another id (one that
 * ignores the client's prompt_id, or a proxy in front), by its content: the same graph from
 * client "kiln" is the same job (the graph holds the seed, prompts and every setting).
 * Adopting it (its id becomes the job's remote id) keeps a second copy from being sent. */
static int in_queue(struct kiln_ai_job *j, json_t *q)
{
	static const char *const lists[] = {"queue_running", "queue_pending"};
	struct kiln_buf mine = KILN_BUF_INIT;
	struct kiln_error be;
	json_t *graph = NULL;
	int found = 0;
	for (int pass = 0; pass < 2 && !found; pass++)
		for (int l = 0; l < 2 && !found; l++) {
			json_t *v, *arr = json_object_get(q, lists[l]);
			size_t i;
			json_array_foreach(arr, i, v) {
				const char *s = json_string_value(json_array_get(v, 1));
				const char *c = json_string_value(json_object_get(
					json_array_get(v, 3), "client_id"));
				if (!s)
					continue;
				if (!pass && !strcmp(s, j->remote_id)) {
					found = 1;
					break;
				}
				if (!pass || !c || strcmp(c, "kiln") ||
				    strlen(s) >= sizeof j->remote_id)
					continue;
				if (!graph && !(j->rq->kind ? bind_image(j->rq, j->caps, j->attempt,
									 &mine, &be)
						      : bind(j->rq, j->caps, j->attempt, &mine,
							     &be))) {
					json_t *b = json_loadb(mine.data, mine.len, 0, NULL);
					graph = json_incref(json_object_get(b, "prompt"));
					json_decref(b);
				}
				if (graph && json_equal(graph, json_array_get(v, 2))) {
					snprintf(j->remote_id, sizeof j->remote_id, "%s", s);
					j->remote_new = 1;
					found = 1;
					break;
				}
			}
		}
	json_decref(graph);
	kiln_buf_release(&mine);
	return found;
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
			/* the prompt may be queued all the same, or still being validated (server.py
			 * validates the whole graph before it queues it, and a big graph or a busy
			 * server takes a while): wait a poll interval, look in /history, and only
			 * after three misses in /history and one in /queue send it again (the same
			 * prompt_id: ComfyUI keeps the id a client gives, server.py post_prompt) */
			j->phase = PH_HISTORY;
			j->misses = 0;
			get(next, "/history/%s", j->remote_id);
			return KILN_STEP_POLL;
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
				kiln_error_set(e, KILN_E_NET, NULL, "prompt %s was lost by the "
					       "server twice", j->remote_id);
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
		if (o && in_queue(j, o)) {
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
	if (rq && rq->kind == KILN_AI_UPSCALE && !strncmp(path, "/view", 5))
		return KILN_AI_REPLY_SLACK + (size_t)rq->width * (size_t)rq->height * 4 *
		       (size_t)rq->factor * (size_t)rq->factor;
	if (rq && !strncmp(path, "/view", 5))
		return kiln_ai_reply_image(rq);
	return KILN_AI_REPLY_JSON;
}

/* --- the probe: GET /object_info (server.py node_info: per class its input.required and
 * input.optional, each input [type or list of choices, options]; a combo is either the list
 * itself or ["COMBO", {"options": [..]}]). The loaders' combos are what the server has:
 * CheckpointLoaderSimple ckpt_name, LoraLoader lora_name, ControlNetLoader control_net_name,
 * UpscaleModelLoader model_name (nodes.py, comfy_extras/nodes_upscale_model.py). raw keeps
 * {class: [declared input names]}: an input a class does not declare is ignored by the
 * server (execution.py), so kiln checks every input it sets is declared. */
static int probe_start(struct kiln_ai_caps *caps, struct kiln_http *next, struct kiln_error *e)
{
	(void)caps, (void)e;
	next->method = "GET";
	snprintf(next->path, sizeof next->path, "/object_info");
	return 0;
}

static int combo(json_t *info, const char *cls, const char *input, struct kiln_ai_list *l)
{
	json_t *req = json_object_get(json_object_get(json_object_get(info, cls), "input"),
				      "required");
	json_t *spec = json_object_get(req, input), *list = json_array_get(spec, 0), *v;
	size_t i;
	if (json_is_string(list) && !strcmp(json_string_value(list), "COMBO"))
		list = json_object_get(json_array_get(spec, 1), "options");
	json_array_foreach(list, i, v)
		if (json_is_string(v) && kiln_ai_list_add(l, json_string_value(v)))
			return -1;
	return 0;
}

static enum kiln_step probe_response(struct kiln_ai_caps *caps, const char *path, long status,
				     const char *body, size_t len, struct kiln_http *next,
				     struct kiln_error *e)
{
	json_t *o, *decl = NULL, *n;
	const char *k;
	char ex[200];
	(void)path, (void)next;
	kiln_ai_excerpt(ex, sizeof ex, body, len);
	if (status != 200) {
		kiln_error_set(e, KILN_E_NET, NULL, "object_info answered HTTP %ld: %s", status, ex);
		return KILN_STEP_RETRY;
	}
	/* JSON_DECODE_INT_AS_REAL: nodes.py declares KSampler seed max 0xffffffffffffffff, which
	 * does not fit json_int_t */
	if (!(o = json_loadb(body, len, JSON_DECODE_INT_AS_REAL, NULL)) || !json_is_object(o)) {
		json_decref(o);
		kiln_error_set(e, KILN_E_NET, NULL, "object_info answer is not a JSON object: %s",
			       ex);
		return KILN_STEP_RETRY;
	}
	if (!(decl = json_object()))
		goto nomem;
	json_object_foreach(o, k, n) {
		json_t *names = json_array(), *in = json_object_get(n, "input"), *x;
		const char *ik;
		static const char *const parts[] = {"required", "optional"};
		if (!names || json_object_set_new(decl, k, names) ||
		    kiln_ai_list_add(&caps->nodes, k))
			goto nomem;
		for (int pi = 0; pi < 2; pi++)
			json_object_foreach(json_object_get(in, parts[pi]), ik, x)
				if (json_array_append_new(names, json_string(ik)))
					goto nomem;
	}
	if (combo(o, "CheckpointLoaderSimple", "ckpt_name", &caps->models) ||
	    combo(o, "LoraLoader", "lora_name", &caps->loras) ||
	    combo(o, "ControlNetLoader", "control_net_name", &caps->cn_models) ||
	    combo(o, "UpscaleModelLoader", "model_name", &caps->upscalers))
		goto nomem;
	if (json_object_get(o, "ControlNetLoader"))
		caps->flags |= KILN_CAPS_CONTROLNET;
	free(caps->raw);
	if (!(caps->raw = json_dumps(decl, JSON_COMPACT)))
		goto nomem;
	caps->known = 1;
	json_decref(decl);
	json_decref(o);
	return KILN_STEP_DONE;
nomem:
	json_decref(decl);
	json_decref(o);
	kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory reading object_info");
	return KILN_STEP_RETRY;
}

static int declared(json_t *decl, const char *cls, const char *input)
{
	json_t *names = json_object_get(decl, cls), *v;
	size_t i;
	json_array_foreach(names, i, v)
		if (!strcmp(json_string_value(v) ? json_string_value(v) : "", input))
			return 1;
	return 0;
}

static int missing(const struct kiln_ai_list *l, const char *what, const char *want,
		   struct kiln_error *e)
{
	char near[512];
	kiln_ai_nearest(l, want, near, sizeof near);
	return kiln_error_set(e, KILN_E_SPEC, NULL, "%s '%s': ComfyUI does not list it (it has "
			      "%s)", what, want, *near ? near : "none");
}

/* The server must have the checkpoint, LoRAs, ControlNet models and node classes, and declare
 * every input kiln sets (else it ignores it and the image lacks it). */
static int check_graph(const struct kiln_ai_caps *caps, const struct kiln_ai_request *rq,
		       json_t *decl, struct kiln_error *e)
{
	static const char *const ks_in[] = {"seed", "steps", "cfg", "sampler_name", "scheduler"};
	json_t *g = json_loads(rq->workflow, 0, NULL), *n;
	struct binding bd;
	const char *k, *bad = NULL, *bad_in = NULL;
	int rc;
	if (!json_is_object(g)) {
		json_decref(g);
		return 0; /* bind() says what is wrong with it */
	}
	json_object_foreach(g, k, n) {
		const char *c = json_string_value(json_object_get(n, "class_type"));
		if (c && !kiln_ai_list_has(&caps->nodes, c)) {
			rc = kiln_error_set(e, KILN_E_SPEC, NULL, "workflow node %s is a %s, a "
					    "class this ComfyUI does not have (a custom node not "
					    "installed?)", k, c);
			json_decref(g);
			return rc;
		}
	}
	if ((rc = analyse(g, rq->checkpoint || rq->nloras, &bd, e))) {
		json_decref(g);
		return rc;
	}
	for (size_t i = 0; !bad && i < sizeof ks_in / sizeof ks_in[0]; i++)
		if (!declared(decl, cls_of(g, bd.ks), ks_in[i]))
			bad = bd.ks, bad_in = ks_in[i];
	for (size_t side = 0; side < 2 && !bad; side++) {
		const char *const *ids = side ? bd.neg : bd.pos;
		for (size_t i = 0; !bad && i < (side ? bd.nneg : bd.npos); i++) {
			const char *const *names = text_inputs(json_object_get(g, ids[i]));
			for (size_t t = 0; !bad && names && t < 3 && names[t]; t++)
				if (!declared(decl, cls_of(g, ids[i]), names[t]))
					bad = ids[i], bad_in = names[t];
		}
	}
	if (!bad && !declared(decl, cls_of(g, bd.latent), "width"))
		bad = bd.latent, bad_in = "width";
	if (!bad && !declared(decl, cls_of(g, bd.latent), "height"))
		bad = bd.latent, bad_in = "height";
	if (bad)
		rc = kiln_error_set(e, KILN_E_SPEC, NULL, "workflow node %s (%s): this ComfyUI's "
				    "%s has no input '%s', so what kiln sets there would be "
				    "ignored",
				    bad, cls_of(g, bad), cls_of(g, bad), bad_in);
	json_decref(g);
	return rc;
}

static int supports(const struct kiln_ai_caps *caps, const struct kiln_ai_request *rq,
		    struct kiln_error *e)
{
	json_t *decl;
	int rc;
	if (rq->kind)
		return image_supports(caps, rq, e);
	if (!caps || !caps->known)
		return 0;
	if (rq->checkpoint && !kiln_ai_list_has(&caps->models, rq->checkpoint))
		return missing(&caps->models, "checkpoint", rq->checkpoint, e);
	/* the nodes kiln adds to the graph */
	if (rq->nloras && !kiln_ai_list_has(&caps->nodes, "LoraLoader"))
		return kiln_error_set(e, KILN_E_SPEC, NULL, "ComfyUI has no LoraLoader node, which "
				      "kiln chains the LoRAs with");
	if (rq->ncontrols && (!kiln_ai_list_has(&caps->nodes, "LoadImage") ||
			      !kiln_ai_list_has(&caps->nodes, "ControlNetApplyAdvanced")))
		return kiln_error_set(e, KILN_E_SPEC, NULL, "ComfyUI lacks LoadImage or "
				      "ControlNetApplyAdvanced, which kiln applies ControlNet "
				      "units with");
	for (size_t i = 0; i < rq->nloras; i++) {
		char file[512];
		if (kiln_ai_lora_listed(caps, rq->loras[i].name, file, sizeof file))
			return kiln_error_set(e, KILN_E_SPEC, NULL, "lora name '%s' is too long",
					      rq->loras[i].name);
		if (!kiln_ai_list_has(&caps->loras, file))
			return missing(&caps->loras, "lora", rq->loras[i].name, e);
	}
	for (size_t i = 0; i < rq->ncontrols; i++) {
		const char *m = rq->controls[i].cn->model;
		if (!(caps->flags & KILN_CAPS_CONTROLNET))
			return kiln_error_set(e, KILN_E_SPEC, NULL, "ComfyUI has no "
					      "ControlNetLoader node: the endpoint lacks "
					      "ControlNet");
		if (!kiln_ai_list_has(&caps->cn_models, m))
			return missing(&caps->cn_models, "ControlNet model", m, e);
	}
	if (!rq->workflow)
		return 0;
	if (!(decl = json_loads(caps->raw ? caps->raw : "{}", 0, NULL)))
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
	rc = check_graph(caps, rq, decl, e);
	json_decref(decl);
	return rc;
}

const struct kiln_engine kiln_engine_comfyui = {
	.name = "comfyui",
	.health_path = "/queue",
	.submit_path = "/prompt",
	.build_request = comfy_build,
	.start = comfy_start,
	.on_response = comfy_response,
	.reply_cap = comfy_cap,
	.probe_start = probe_start,
	.probe_response = probe_response,
	.supports = supports,
};
