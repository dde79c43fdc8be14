/* engines: the generate: block and per-trait AI keys, requests built from an item's traits
 * (prompt template, none values, LoRAs, ControlNet, seeds of candidates), and each engine's
 * wire body (A1111 txt2img, ComfyUI bound workflow, sd.cpp img_gen). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "render/engines/engine.h"
#include "kiln/spec.h"
#include "util/alloc.h"

static const char yaml[] =
	"collection: {name: Owls, size: 4, seed: 9}\n"
	"engine: a1111\n"
	"generate:\n"
	"  prompt: 'owl, {Body}, {Hat}, #{id}'\n"
	"  negative: 'blurry'\n"
	"  checkpoint: m.safetensors\n"
	"  sampler: 'DPM++ 2M'\n"
	"  scheduler: Karras\n"
	"  steps: 30\n"
	"  cfg: 6.5\n"
	"  size: 512x768\n"
	"  candidates: 2\n"
	"  endpoints: [{url: 'http://gpu:7860/', auth_env: GPU}]\n"
	"layers:\n"
	"  - name: Body\n"
	"    traits:\n"
	"      - {name: Brown, prompt: 'brown feathers', negative: 'grey'}\n"
	"      - {name: Gold, lora: [{name: gold_v1, weight: 0.5}]}\n"
	"  - name: Hat\n"
	"    optional: true\n"
	"    traits:\n"
	"      - {name: Crown, lora: [{name: crown_v2, weight: 0.8}],\n"
	"         controlnet: {image: cn.png, model: canny.pth, weight: 0.7, guidance_end: 0.8}}\n";

static struct kiln_spec *load(void)
{
	struct kiln_spec *s = NULL;
	struct kiln_error e;
	int rc = kiln_spec_parse(&s, yaml, strlen(yaml), "kiln.yaml", NULL, &e);
	if (rc)
		fail_msg("%s: %s", e.where, e.msg);
	return s;
}

/* a 1x1 RGB PNG */
static const unsigned char png[] = {
	0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
	0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90,
	0x77, 0x53, 0xde, 0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x10,
	0x50, 0x30, 0x00, 0x00, 0x00, 0xa4, 0x00, 0x61, 0x34, 0x66, 0x7d, 0x72, 0x00, 0x00, 0x00,
	0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};
#define PNG_B64                                                                             \
	"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGMQUDAAAACkAGE0Zn1yAAAAAElFTkSuQm" \
	"CC"
static struct kiln_ai_file files[] = {{"cn.png", png, sizeof png, "ab12"}};

static void build(const struct kiln_spec *s, uint32_t body, uint32_t hat, unsigned cand,
		  struct kiln_ai_request *rq)
{
	uint32_t traits[2] = {body, hat};
	struct kiln_item it;
	struct kiln_error e;
	memset(&it, 0, sizeof it);
	it.id = 7;
	it.seed = 0x1234567800000005ull;
	it.legendary = -1;
	it.traits = traits;
	if (kiln_ai_request_build(s, &it, cand, files, 1, NULL, rq, &e))
		fail_msg("%s", e.msg);
}

static void test_spec(void **state)
{
	struct kiln_spec *s = load();
	const struct kiln_generate *g = s->generate;
	(void)state;
	assert_string_equal(g->endpoints[0].url, "http://gpu:7860");
	assert_string_equal(g->endpoints[0].engine, "a1111");
	assert_int_equal(g->endpoints[0].concurrency, 1);
	assert_string_equal(g->endpoints[0].auth_env, "GPU");
	assert_null(g->endpoints[0].secret);
	assert_int_equal(g->width, 512);
	assert_int_equal(g->height, 768);
	assert_int_equal(s->layers[1].traits[0].nloras, 1);
	assert_string_equal(s->layers[1].traits[0].controlnet->control_mode, "Balanced");
	kiln_spec_free(s);
}

static void test_errors(void **state)
{
	static const char *const bad[] = {
		"prompt: '{Nope}'", "names {Nope}",
		"size: 500x500", "multiple of 8",
		"endpoints: [{url: 'http://u:p@gpu'}]", "must not hold credentials",
	};
	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i += 2) {
		char y[4096];
		struct kiln_spec *s = NULL;
		struct kiln_error e;
		const char *key = bad[i];
		size_t klen = strcspn(key, ":");
		char *p;
		snprintf(y, sizeof y, "%s", yaml);
		/* replace the line of that key */
		p = strstr(y, "\n  ");
		while (p && strncmp(p + 3, key, klen))
			p = strstr(p + 1, "\n  ");
		assert_non_null(p);
		{
			char *eol = strchr(p + 1, '\n'), rest[4096];
			snprintf(rest, sizeof rest, "%s", eol);
			snprintf(p + 3, sizeof y - (size_t)(p + 3 - y), "%s%s", key, rest);
		}
		assert_int_equal(kiln_spec_parse(&s, y, strlen(y), "k.yaml", NULL, &e), KILN_E_SPEC);
		if (!strstr(e.msg, bad[i + 1]))
			fail_msg("'%s': %s", key, e.msg);
	}
}

static void test_request(void **state)
{
	struct kiln_spec *s = load();
	struct kiln_ai_request a, b, c;
	(void)state;
	build(s, 0, 1, 0, &a); /* Brown, no hat */
	assert_string_equal(a.prompt, "owl, brown feathers, #7");
	assert_string_equal(a.negative, "blurry, grey");
	assert_int_equal(a.seed, 5);
	assert_int_equal(a.nloras, 0);
	build(s, 1, 0, 1, &b); /* Gold, Crown, candidate 1 */
	assert_string_equal(b.prompt, "owl, Gold, Crown, #7");
	assert_int_equal(b.seed, 6);
	assert_int_equal(b.nloras, 2);
	assert_string_equal(b.loras[1].name, "crown_v2");
	assert_int_equal(b.ncontrols, 1);
	assert_string_not_equal(a.recipe, b.recipe);
	build(s, 0, 1, 0, &c);
	assert_string_equal(a.recipe, c.recipe); /* same request, same recipe */
	kiln_ai_request_release(&a);
	kiln_ai_request_release(&b);
	kiln_ai_request_release(&c);
	kiln_spec_free(s);
}

static json_t *wire(const struct kiln_engine *eng, const struct kiln_ai_request *rq, int redact)
{
	struct kiln_buf out = KILN_BUF_INIT;
	struct kiln_error e;
	json_t *o;
	if (eng->build_request(rq, redact, &out, &e))
		fail_msg("%s", e.msg);
	o = json_loads(out.data, 0, NULL);
	kiln_buf_release(&out);
	assert_non_null(o);
	return o;
}

static void test_a1111(void **state)
{
	struct kiln_spec *s = load();
	struct kiln_ai_request rq;
	json_t *o, *u;
	(void)state;
	build(s, 1, 0, 0, &rq);
	o = wire(&kiln_engine_a1111, &rq, 0);
	assert_string_equal(json_string_value(json_object_get(o, "prompt")),
			    "owl, Gold, Crown, #7 <lora:gold_v1:0.5> <lora:crown_v2:0.8>");
	assert_string_equal(json_string_value(json_object_get(o, "sampler_name")), "DPM++ 2M");
	assert_string_equal(json_string_value(json_object_get(o, "scheduler")), "Karras");
	assert_int_equal(json_integer_value(json_object_get(o, "seed")), 5);
	assert_true(json_real_value(json_object_get(o, "cfg_scale")) == 6.5);
	assert_string_equal(json_string_value(json_object_get(json_object_get(o,
			    "override_settings"), "sd_model_checkpoint")), "m.safetensors");
	u = json_array_get(json_object_get(json_object_get(json_object_get(o, "alwayson_scripts"),
			   "controlnet"), "args"), 0);
	assert_string_equal(json_string_value(json_object_get(u, "model")), "canny");
	assert_string_equal(json_string_value(json_object_get(u, "image")), PNG_B64);
	assert_true(json_real_value(json_object_get(u, "guidance_end")) == 0.8);
	json_decref(o);
	o = wire(&kiln_engine_a1111, &rq, 1); /* for the catalog: the image by hash */
	u = json_array_get(json_object_get(json_object_get(json_object_get(o, "alwayson_scripts"),
			   "controlnet"), "args"), 0);
	assert_string_equal(json_string_value(json_object_get(u, "image")), "sha256:ab12");
	json_decref(o);
	kiln_ai_request_release(&rq);
	kiln_spec_free(s);
}

static void test_sdcpp(void **state)
{
	struct kiln_spec *s = load();
	struct kiln_ai_request rq;
	json_t *o, *sp;
	(void)state;
	build(s, 1, 0, 0, &rq);
	o = wire(&kiln_engine_sdcpp, &rq, 0);
	assert_string_equal(json_string_value(json_object_get(o, "prompt")), "owl, Gold, Crown, #7");
	/* sd-server looks LoRAs up by file path, extension included */
	assert_string_equal(json_string_value(json_object_get(json_array_get(
			    json_object_get(o, "lora"), 1), "path")), "crown_v2.safetensors");
	sp = json_object_get(o, "sample_params");
	assert_string_equal(json_string_value(json_object_get(sp, "sample_method")), "dpm++2m");
	assert_string_equal(json_string_value(json_object_get(sp, "scheduler")), "karras");
	assert_int_equal(json_integer_value(json_object_get(sp, "sample_steps")), 30);
	assert_string_equal(json_string_value(json_object_get(o, "control_image")), PNG_B64);
	json_decref(o);
	kiln_ai_request_release(&rq);
	kiln_spec_free(s);
}

static void test_comfyui(void **state)
{
	static const char wf[] =
		"{\"4\":{\"class_type\":\"CheckpointLoaderSimple\",\"inputs\":{\"ckpt_name\":\"x\"}},"
		"\"6\":{\"class_type\":\"CLIPTextEncode\",\"inputs\":{\"text\":\"\",\"clip\":[\"4\",1]}},"
		"\"7\":{\"class_type\":\"CLIPTextEncode\",\"inputs\":{\"text\":\"\",\"clip\":[\"4\",1]}},"
		"\"5\":{\"class_type\":\"EmptyLatentImage\",\"inputs\":{\"width\":8,\"height\":8}},"
		"\"3\":{\"class_type\":\"KSampler\",\"inputs\":{\"seed\":0,\"model\":[\"4\",0],"
		"\"positive\":[\"6\",0],\"negative\":[\"7\",0],\"latent_image\":[\"5\",0]}}}";
	struct kiln_spec *s = load();
	struct kiln_ai_request rq;
	json_t *o, *g, *ks;
	(void)state;
	build(s, 1, 0, 0, &rq);
	rq.workflow = wf;
	o = wire(&kiln_engine_comfyui, &rq, 0);
	g = json_object_get(o, "prompt");
	ks = json_object_get(json_object_get(g, "3"), "inputs");
	assert_int_equal(json_integer_value(json_object_get(ks, "seed")), 5);
	assert_string_equal(json_string_value(json_object_get(ks, "sampler_name")), "dpmpp_2m");
	assert_string_equal(json_string_value(json_array_get(json_object_get(ks, "model"), 0)),
			    "kiln_lora_1");
	assert_string_equal(json_string_value(json_array_get(json_object_get(ks, "positive"), 0)),
			    "kiln_cn_0");
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(g,
			    "6"), "inputs"), "text")), "owl, Gold, Crown, #7");
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(g,
			    "kiln_lora_1"), "inputs"), "lora_name")), "crown_v2.safetensors");
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(g,
			    "4"), "inputs"), "ckpt_name")), "m.safetensors");
	assert_int_equal(strlen(json_string_value(json_object_get(o, "prompt_id"))), 36);
	json_decref(o);
	kiln_ai_request_release(&rq);
	kiln_spec_free(s);
}

/* the spec with its generate/endpoint lines edited by sed-like pairs (old, new) */
static int parse_edited(const char *const *edits, size_t n, struct kiln_spec **s,
			struct kiln_error *e)
{
	char y[4096];
	snprintf(y, sizeof y, "%s", yaml);
	for (size_t i = 0; i < n; i += 2) {
		char *p = strstr(y, edits[i]), rest[4096];
		assert_non_null(p);
		snprintf(rest, sizeof rest, "%s", p + strlen(edits[i]));
		snprintf(p, sizeof y - (size_t)(p - y), "%s%s", edits[i + 1], rest);
	}
	*s = NULL;
	return kiln_spec_parse(s, y, strlen(y), "kiln.yaml", NULL, e);
}

static void test_lora_file(void **state)
{
	char f[64];
	(void)state;
	assert_int_equal(kiln_ai_lora_file("crown_v2", f, sizeof f), 0);
	assert_string_equal(f, "crown_v2.safetensors");
	assert_int_equal(kiln_ai_lora_file("style_v1.5", f, sizeof f), 0); /* a dot, no extension */
	assert_string_equal(f, "style_v1.5.safetensors");
	assert_int_equal(kiln_ai_lora_file("sub/x.pt", f, sizeof f), 0);
	assert_string_equal(f, "sub/x.pt");
	assert_int_equal(kiln_ai_lora_file("q4.gguf", f, sizeof f), 0);
	assert_string_equal(f, "q4.gguf");
	assert_int_equal(kiln_ai_lora_file("a_very_long_name_indeed", f, 8), -1);
}

/* A1111 names, split as A1111 splits them, mapped per engine; what an engine cannot run is a
 * spec error at the line of generate.sampler, listing what it accepts. */
static void test_samplers(void **state)
{
	static const char *const karras[] = {"sampler: 'DPM++ 2M'", "sampler: 'dpm++ 2m karras'",
					     "  scheduler: Karras\n", ""};
	static const char *const sdcpp_sde[] = {"sampler: 'DPM++ 2M'", "sampler: 'DPM++ SDE'",
						"auth_env: GPU", "engine: sdcpp",
						"  checkpoint: m.safetensors\n", "",
						", guidance_end: 0.8", ""};
	static const char *const clash[] = {"sampler: 'DPM++ 2M'", "sampler: 'Euler Exponential'"};
	static const char *const unknown[] = {"sampler: 'DPM++ 2M'", "sampler: 'Euler b'"};
	struct kiln_spec *s;
	struct kiln_error e;
	(void)state;
	assert_int_equal(parse_edited(karras, 4, &s, &e), 0);
	assert_string_equal(s->generate->sampler, "DPM++ 2M");
	assert_string_equal(s->generate->scheduler, "Karras");
	kiln_spec_free(s);
	assert_string_equal(kiln_ai_sampler_name("comfyui", "DPM++ 2M SDE"), "dpmpp_2m_sde");
	assert_string_equal(kiln_ai_sampler_name("comfyui", "UniPC"), "uni_pc");
	assert_string_equal(kiln_ai_sampler_name("sdcpp", "Euler a"), "euler_a");
	assert_null(kiln_ai_sampler_name("sdcpp", "DPM++ SDE"));
	assert_null(kiln_ai_sampler_name("comfyui", "PLMS"));
	assert_string_equal(kiln_ai_scheduler_name("comfyui", "SGM Uniform"), "sgm_uniform");
	assert_null(kiln_ai_scheduler_name("comfyui", "Automatic"));

	assert_int_equal(parse_edited(sdcpp_sde, 8, &s, &e), KILN_E_SPEC);
	assert_string_equal(e.where, "kiln.yaml:6:13"); /* the sampler's value */
	if (!strstr(e.msg, "'DPM++ SDE' cannot run on endpoint http://gpu:7860") ||
	    !strstr(e.msg, "'Euler a', 'Euler', 'Heun', 'DPM2', 'DPM++ 2S a', 'DPM++ 2M', "
			   "'DPM++ 2M SDE', 'LMS', 'LCM'"))
		fail_msg("%s", e.msg);
	assert_int_equal(parse_edited(clash, 2, &s, &e), KILN_E_SPEC);
	assert_non_null(strstr(e.msg, "contradicts"));
	assert_int_equal(parse_edited(unknown, 2, &s, &e), KILN_E_SPEC);
	assert_non_null(strstr(e.msg, "not an A1111 sampler name: use one of 'Euler a'"));
}

/* What an engine cannot honour is refused at load time, not dropped on the wire. */
static void test_engine_limits(void **state)
{
	static const char *const sd_ckpt[] = {"auth_env: GPU", "engine: sdcpp"};
	static const char *const sd_range[] = {"auth_env: GPU", "engine: sdcpp",
					       "  checkpoint: m.safetensors\n", ""};
	static const char *const comfy_mode[] = {
		"auth_env: GPU", "engine: comfyui", "  steps: 30", "  steps: 30\n  workflow: w.json",
		"guidance_end: 0.8", "guidance_end: 0.8, control_mode: 'My prompt is more important'"};
	static const char *const comfy_module[] = {
		"auth_env: GPU", "engine: comfyui", "  steps: 30", "  steps: 30\n  workflow: w.json",
		"guidance_end: 0.8", "guidance_end: 0.8, module: canny"};
	struct kiln_spec *s;
	struct kiln_error e;
	(void)state;
	assert_int_equal(parse_edited(sd_ckpt, 2, &s, &e), KILN_E_SPEC);
	assert_non_null(strstr(e.msg, "remove generate.checkpoint"));
	assert_int_equal(parse_edited(sd_range, 4, &s, &e), KILN_E_SPEC);
	assert_non_null(strstr(e.msg, "trait 'Crown' of layer 'Hat'"));
	assert_non_null(strstr(e.msg, "guidance_start/guidance_end"));
	assert_int_equal(parse_edited(comfy_mode, 6, &s, &e), KILN_E_SPEC);
	assert_non_null(strstr(e.msg, "control_mode"));
	assert_int_equal(parse_edited(comfy_module, 6, &s, &e), KILN_E_SPEC);
	assert_non_null(strstr(e.msg, "module"));
	assert_string_equal(e.where, "kiln.yaml:24:23"); /* the controlnet */
}

/* A ComfyUI job resumed at its /history poll: start() asks for /history/{id}. */
static void comfy_job(struct kiln_ai_job *j, struct kiln_ai_request *rq, struct kiln_http *h)
{
	struct kiln_error e;
	memset(j, 0, sizeof *j);
	memset(h, 0, sizeof *h);
	j->rq = rq;
	j->attempt = 1;
	j->resumed = 1;
	snprintf(j->remote_id, sizeof j->remote_id, "p1");
	assert_int_equal(kiln_engine_comfyui.start(j, h, &e), 0);
	assert_string_equal(h->path, "/history/p1");
}

static void test_comfyui_answers(void **state)
{
	static const char temp_first[] =
		"{\"p1\": {\"status\": {\"status_str\": \"success\", \"completed\": true},"
		" \"outputs\": {\"12\": {\"images\": [{\"filename\": \"ComfyUI_temp_1.png\","
		" \"subfolder\": \"\", \"type\": \"temp\"}]},"
		" \"9\": {\"images\": [{\"filename\": \"owl_00001_.png\", \"subfolder\": \"owls\","
		" \"type\": \"output\"}]}}}}";
	static const char refused[] =
		"{\"error\": {\"type\": \"prompt_outputs_failed_validation\", \"message\": "
		"\"Prompt outputs failed validation\", \"details\": \"\"}, \"node_errors\": "
		"{\"4\": {\"errors\": [{\"type\": \"value_not_in_list\", \"message\": "
		"\"Value not in list\", \"details\": \"ckpt_name: 'x.safetensors' not in "
		"['sd_xl_base_1.0.safetensors']\"}], \"dependent_outputs\": [\"9\"], "
		"\"class_type\": \"CheckpointLoaderSimple\"}, \"3\": {\"errors\": [{\"message\": "
		"\"Value not in list\", \"details\": \"sampler_name: 'x' not in (list of length "
		"33)\"}], \"class_type\": \"KSampler\"}}}";
	struct kiln_ai_request rq;
	struct kiln_ai_job j;
	struct kiln_http h;
	struct kiln_error e;
	(void)state;
	memset(&rq, 0, sizeof rq);
	comfy_job(&j, &rq, &h);
	kiln_error_clear(&e);
	assert_int_equal(kiln_engine_comfyui.on_response(&j, 200, temp_first, strlen(temp_first),
							 &h, &e), KILN_STEP_SEND);
	/* the SaveImage output, not the preview listed first */
	assert_string_equal(h.path, "/view?filename=owl_00001_.png&subfolder=owls&type=output");
	kiln_ai_job_release(&j);

	/* POST /prompt refused: not retried, every node named with its class and reason */
	memset(&j, 0, sizeof j);
	j.rq = &rq;
	j.phase = 1; /* PH_SUBMIT */
	kiln_error_clear(&e);
	assert_int_equal(kiln_engine_comfyui.on_response(&j, 400, refused, strlen(refused), &h,
							 &e), KILN_STEP_FATAL);
	assert_int_equal(e.code, KILN_E_SPEC);
	if (!strstr(e.msg, "node 4 (CheckpointLoaderSimple): Value not in list: ckpt_name: "
			   "'x.safetensors' not in ['sd_xl_base_1.0.safetensors']") ||
	    !strstr(e.msg, "; node 3 (KSampler): Value not in list: sampler_name: 'x'"))
		fail_msg("%s", e.msg);
	kiln_ai_job_release(&j);
	kiln_buf_release(&h.body);
}

/* LoRAs or a checkpoint with no CheckpointLoaderSimple to bind them to: an error, not a
 * request without them. */
static void test_comfyui_no_loader(void **state)
{
	static const char wf[] =
		"{\"3\":{\"class_type\":\"KSampler\",\"inputs\":{\"seed\":0}}}";
	struct kiln_spec *s = load();
	struct kiln_ai_request rq;
	struct kiln_buf out = KILN_BUF_INIT;
	struct kiln_error e;
	(void)state;
	build(s, 1, 0, 0, &rq);
	rq.workflow = wf;
	assert_int_equal(kiln_engine_comfyui.build_request(&rq, 0, &out, &e), KILN_E_SPEC);
	assert_non_null(strstr(e.msg, "no CheckpointLoaderSimple"));
	kiln_buf_release(&out);
	kiln_ai_request_release(&rq);
	kiln_spec_free(s);
}

/* jansson's allocator for the test: the Nth allocation from now fails, once (memory pressure
 * that passes), the others succeed. */
static long json_fail_at = -1, json_failed;
static void *json_malloc_once(size_t n)
{
	if (json_fail_at >= 0 && json_fail_at-- == 0) {
		json_failed++;
		return NULL;
	}
	return malloc(n);
}

/* Out of memory while the request is built (jansson's allocations included): an error, or
 * the full recipe; never a recipe that silently lost a LoRA or a ControlNet unit. Two
 * sweeps: kiln's hook (the Nth allocation and all after it fail) with jansson on kiln's
 * allocator, and one jansson allocation failing alone. */
static void test_request_alloc_failures(void **state)
{
	struct kiln_spec *s = load();
	struct kiln_ai_request ref;
	struct kiln_buf canon = KILN_BUF_INIT;
	uint32_t traits[2] = {1, 0}; /* Gold (a LoRA), Crown (a LoRA and a ControlNet) */
	struct kiln_item it;
	long n, failed_runs = 0;
	(void)state;
	memset(&it, 0, sizeof it);
	it.id = 7;
	it.seed = 5;
	it.legendary = -1;
	it.traits = traits;
	build(s, 1, 0, 0, &ref);
	assert_int_equal(kiln_ai_request_canonical(&ref, &canon), 0);
	assert_non_null(strstr(canon.data, "gold_v1"));
	assert_non_null(strstr(canon.data, "crown_v2"));
	assert_non_null(strstr(canon.data, "\"image\":\"ab12\""));
	json_set_alloc_funcs(kiln_malloc, free);
	for (n = 0; n < 10000; n++) {
		struct kiln_ai_request rq;
		struct kiln_error e;
		int rc;
		kiln_alloc_fail_after(n);
		rc = kiln_ai_request_build(s, &it, 0, files, 1, NULL, &rq, &e);
		kiln_alloc_fail_after(-1);
		if (rc) {
			assert_int_equal(rc, KILN_E_NOMEM);
			failed_runs++;
			continue;
		}
		if (strcmp(rq.recipe, ref.recipe))
			fail_msg("allocation %ld failed and the recipe changed instead of an error", n);
		kiln_ai_request_release(&rq);
		if (kiln_alloc_failed() == 0)
			break;
	}
	assert_true(failed_runs > 10 && n < 10000);
	json_set_alloc_funcs(json_malloc_once, free);
	for (n = 0, failed_runs = 0; n < 10000; n++) {
		struct kiln_ai_request rq;
		struct kiln_error e;
		int rc;
		json_fail_at = n;
		json_failed = 0;
		rc = kiln_ai_request_build(s, &it, 0, files, 1, NULL, &rq, &e);
		json_fail_at = -1;
		if (rc) {
			assert_int_equal(rc, KILN_E_NOMEM);
			failed_runs++;
			continue;
		}
		if (strcmp(rq.recipe, ref.recipe))
			fail_msg("jansson allocation %ld failed and the recipe changed instead of an "
				 "error", n);
		kiln_ai_request_release(&rq);
		if (!json_failed)
			break;
	}
	json_set_alloc_funcs(malloc, free);
	assert_true(failed_runs > 10 && n < 10000);
	kiln_buf_release(&canon);
	kiln_ai_request_release(&ref);
	kiln_spec_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec),      cmocka_unit_test(test_errors),
		cmocka_unit_test(test_request),   cmocka_unit_test(test_a1111),
		cmocka_unit_test(test_sdcpp),     cmocka_unit_test(test_comfyui),
		cmocka_unit_test(test_lora_file), cmocka_unit_test(test_samplers),
		cmocka_unit_test(test_engine_limits), cmocka_unit_test(test_comfyui_answers),
		cmocka_unit_test(test_comfyui_no_loader),
		cmocka_unit_test(test_request_alloc_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
