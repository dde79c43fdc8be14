/* engines, issue 12 (ComfyUI and sd.cpp): what each server applies of what was asked.
 * Schedules ("Automatic" resolved to the sampler's A1111 default before mapping); sd.cpp's
 * probe (/sdcpp/v1/capabilities), supports(), listed LoRA paths, grey control images expanded
 * to RGB, 429 as back-pressure, the steps/sampler it echoes in the image checked; ComfyUI's
 * workflow bound by following links (CLIPTextEncodeSDXL, ConditioningCombine, a latent node of
 * any class), refused with file:line when it cannot be, its probe (/object_info), supports()
 * and the history check (bound nodes behind the outputs that ran); a transport error on
 * /prompt waits before looking. Canned answers, no server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render/engines/engine.h"
#include "kiln/spec.h"
#include "util/png.h"

/* 1x1 RGB and 2x1 grey PNGs */
static const unsigned char rgb_png[] = {
	0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
	0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90,
	0x77, 0x53, 0xde, 0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x10,
	0x50, 0x30, 0x00, 0x00, 0x00, 0xa4, 0x00, 0x61, 0x34, 0x66, 0x7d, 0x72, 0x00, 0x00, 0x00,
	0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};
static const unsigned char grey_png[] = {
	0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
	0x52, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x00, 0x00, 0x00, 0xd1,
	0x49, 0x20, 0x56, 0x00, 0x00, 0x00, 0x0b, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x70,
	0x68, 0x00, 0x00, 0x01, 0x03, 0x00, 0xc1, 0xd4, 0x21, 0xe0, 0xfa, 0x00, 0x00, 0x00, 0x00,
	0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};

static struct kiln_ai_file grey_file = {"cn/grey.png", grey_png, sizeof grey_png, "ab12"};
static struct kiln_controlnet cn = {.image = "cn/grey.png", .model = "control_canny.pth",
				    .weight = 0.7, .guidance_end = 1};
static struct kiln_ai_control control = {&cn, &grey_file};
static struct kiln_lora loras[] = {{"crown_v2", 0.8}};

static void request(struct kiln_ai_request *rq, const char *sampler, const char *scheduler)
{
	memset(rq, 0, sizeof *rq);
	rq->prompt = "owl, crown";
	rq->negative = "blurry";
	rq->sampler = sampler;
	rq->scheduler = scheduler;
	rq->steps = 30;
	rq->cfg = 7;
	rq->width = 512;
	rq->height = 768;
	rq->seed = 5;
	snprintf(rq->recipe, sizeof rq->recipe, "%s", "r1");
}

static json_t *body_of(const struct kiln_engine *eng, struct kiln_ai_job *j)
{
	struct kiln_http h;
	struct kiln_error e;
	json_t *o;
	memset(&h, 0, sizeof h);
	if (eng->start(j, &h, &e))
		fail_msg("%s", e.msg);
	o = json_loads(h.body.data, 0, NULL);
	assert_non_null(o);
	kiln_buf_release(&h.body);
	return o;
}

/* --- schedules ---------------------------------------------------------------------------- */

static void test_schedules(void **state)
{
	(void)state;
	/* modules/sd_samplers_kdiffusion.py: the sampler's own default when "Automatic" */
	assert_string_equal(kiln_ai_schedule("comfyui", "DPM++ 2M", NULL), "karras");
	assert_string_equal(kiln_ai_schedule("sdcpp", "DPM++ 2M", "Automatic"), "karras");
	assert_string_equal(kiln_ai_schedule("comfyui", "DPM++ 2M SDE", NULL), "exponential");
	assert_string_equal(kiln_ai_schedule("sdcpp", "DPM++ 2M SDE", NULL), "exponential");
	assert_string_equal(kiln_ai_schedule("comfyui", "DPM++ 3M SDE", NULL), "exponential");
	assert_string_equal(kiln_ai_schedule("comfyui", "DPM2", NULL), "karras");
	assert_string_equal(kiln_ai_schedule("comfyui", "Euler a", NULL), "normal");
	assert_string_equal(kiln_ai_schedule("sdcpp", "Euler a", NULL), "discrete");
	assert_string_equal(kiln_ai_schedule("comfyui", "DDIM", NULL), "ddim_uniform");
	assert_null(kiln_ai_schedule("comfyui", "UniPC", NULL));
	/* given: as given */
	assert_string_equal(kiln_ai_schedule("comfyui", "DPM++ 2M", "Exponential"), "exponential");
	assert_string_equal(kiln_ai_schedule("sdcpp", "Euler", "Beta"), "beta");
	/* sd.cpp's samplers now; A1111's DDIM (leading) is not sd.cpp's ddim_trailing */
	assert_string_equal(kiln_ai_sampler_name("sdcpp", "LMS"), "lms");
	assert_string_equal(kiln_ai_sampler_name("sdcpp", "DPM++ 2M SDE"), "dpm++2m_sde");
	assert_null(kiln_ai_sampler_name("sdcpp", "DDIM"));
	assert_int_equal(kiln_sampler_runs("sdcpp", "DDIM", NULL), 0);
	assert_int_equal(kiln_sampler_runs("sdcpp", "DPM++ 2M SDE", NULL), 1);
	/* DPM++ SDE defaults to Karras, which ComfyUI has */
	assert_int_equal(kiln_sampler_runs("comfyui", "DPM++ SDE", "Automatic"), 1);
	assert_int_equal(kiln_sampler_runs("a1111", "Restart", NULL), 1);
}

/* --- sd.cpp ------------------------------------------------------------------------------- */

static const char caps_json[] =
	"{\"model\":{\"name\":\"sd_xl_base_1.0.safetensors\",\"stem\":\"sd_xl_base_1.0\","
	"\"path\":\"/models/sd_xl_base_1.0.safetensors\"},"
	"\"samplers\":[\"euler\",\"euler_a\",\"dpm++2m\"],"
	"\"schedulers\":[\"discrete\",\"karras\",\"exponential\",\"normal\"],"
	"\"limits\":{\"max_queue_size\":64},"
	"\"loras\":[{\"name\":\"crown_v2\",\"path\":\"styles/crown_v2.safetensors\"},"
	"{\"name\":\"laser_eyes\",\"path\":\"laser_eyes.safetensors\"}]}";

static void sd_caps(struct kiln_ai_caps *caps)
{
	struct kiln_http h;
	struct kiln_error e;
	memset(caps, 0, sizeof *caps);
	memset(&h, 0, sizeof h);
	assert_non_null(kiln_engine_sdcpp.probe_start);
	assert_int_equal(kiln_engine_sdcpp.probe_start(caps, &h, &e), 0);
	assert_string_equal(h.path, "/sdcpp/v1/capabilities");
	assert_int_equal(kiln_engine_sdcpp.probe_response(caps, h.path, 200, caps_json,
							  strlen(caps_json), &h, &e),
			 KILN_STEP_DONE);
	assert_int_equal(caps->known, 1);
	assert_int_equal(caps->max_steps, 100);
	assert_string_equal(caps->models.v[0], "sd_xl_base_1.0.safetensors");
	assert_int_equal(caps->loras.n, 2);
}

static void test_sdcpp_probe(void **state)
{
	struct kiln_ai_caps caps;
	struct kiln_ai_request rq;
	struct kiln_ai_job j;
	struct kiln_error e;
	json_t *o;
	(void)state;
	sd_caps(&caps);
	request(&rq, "DPM++ 2M", NULL);
	rq.loras = loras;
	rq.nloras = 1;
	assert_int_equal(kiln_engine_sdcpp.supports(&caps, &rq, &e), 0);
	/* the path as the server lists it, under its folder */
	memset(&j, 0, sizeof j);
	j.rq = &rq;
	j.attempt = 1;
	j.caps = &caps;
	o = body_of(&kiln_engine_sdcpp, &j);
	assert_string_equal(json_string_value(json_object_get(json_array_get(
			    json_object_get(o, "lora"), 0), "path")), "styles/crown_v2.safetensors");
	assert_string_equal(json_string_value(json_object_get(json_object_get(o, "sample_params"),
							      "scheduler")), "karras");
	json_decref(o);

	/* 120 steps: the server would clamp to 100 */
	rq.steps = 120;
	assert_int_equal(kiln_engine_sdcpp.supports(&caps, &rq, &e), KILN_E_SPEC);
	assert_non_null(strstr(e.msg, "at most 100"));
	rq.steps = 30;
	/* a LoRA it does not list: named, with the nearest it has */
	loras[0].name = "crown_v3";
	assert_int_equal(kiln_engine_sdcpp.supports(&caps, &rq, &e), KILN_E_SPEC);
	if (!strstr(e.msg, "crown_v3") || !strstr(e.msg, "styles/crown_v2.safetensors"))
		fail_msg("%s", e.msg);
	loras[0].name = "crown_v2";
	/* a sampler this build lacks (it would run its default) */
	rq.sampler = "LMS";
	assert_int_equal(kiln_engine_sdcpp.supports(&caps, &rq, &e), KILN_E_SPEC);
	assert_non_null(strstr(e.msg, "lms"));
	kiln_ai_caps_release(&caps);
}

static void test_sdcpp_grey_control(void **state)
{
	struct kiln_ai_request rq;
	struct kiln_ai_job j;
	struct kiln_buf png = KILN_BUF_INIT;
	json_t *o;
	const char *b64;
	(void)state;
	request(&rq, "Euler a", NULL);
	rq.controls = &control;
	rq.ncontrols = 1;
	memset(&j, 0, sizeof j);
	j.rq = &rq;
	j.attempt = 1;
	o = body_of(&kiln_engine_sdcpp, &j);
	b64 = json_string_value(json_object_get(o, "control_image"));
	assert_non_null(b64);
	assert_int_equal(kiln_b64_decode(b64, strlen(b64), &png), 0);
	/* a PNG whose IHDR colour type is RGB (2), not grey (0): sd.cpp refuses fewer than 3
	 * channels */
	assert_true(png.len > 26);
	assert_memory_equal(png.data, "\x89PNG", 4);
	assert_int_equal((unsigned char)png.data[25], 2);
	kiln_buf_release(&png);
	json_decref(o);
	/* an RGB image goes as it is */
	grey_file.data = rgb_png;
	grey_file.len = sizeof rgb_png;
	o = body_of(&kiln_engine_sdcpp, &j);
	b64 = json_string_value(json_object_get(o, "control_image"));
	assert_int_equal(kiln_b64_decode(b64, strlen(b64), &png), 0);
	assert_int_equal(png.len, sizeof rgb_png);
	assert_memory_equal(png.data, rgb_png, sizeof rgb_png);
	kiln_buf_release(&png);
	json_decref(o);
	grey_file.data = grey_png;
	grey_file.len = sizeof grey_png;
}

/* the job's completed answer carrying an image whose parameters text is params */
static enum kiln_step sd_done(struct kiln_ai_job *j, const char *params, struct kiln_error *e)
{
	struct kiln_png_text t = {"parameters", params, 0};
	struct kiln_buf png = KILN_BUF_INIT, b64 = KILN_BUF_INIT, body = KILN_BUF_INIT;
	struct kiln_http h;
	enum kiln_step st;
	memset(&h, 0, sizeof h);
	assert_int_equal(kiln_png_set_text(rgb_png, sizeof rgb_png, &t, 1, &png, e), 0);
	assert_int_equal(kiln_b64_encode(png.data, png.len, &b64), 0);
	assert_int_equal(kiln_buf_addf(&body, "{\"id\":\"job1\",\"status\":\"completed\",\"result\":"
				       "{\"images\":[{\"index\":0,\"b64_json\":\"%s\"}]}}",
				       b64.data), 0);
	j->phase = 1; /* polling */
	snprintf(j->remote_id, sizeof j->remote_id, "job1");
	st = kiln_engine_sdcpp.on_response(j, 200, body.data, body.len, &h, e);
	kiln_buf_release(&png);
	kiln_buf_release(&b64);
	kiln_buf_release(&body);
	return st;
}

static void test_sdcpp_answers(void **state)
{
	struct kiln_ai_request rq;
	struct kiln_ai_job j;
	struct kiln_http h;
	struct kiln_error e;
	static const char full[] = "{\"error\":\"job queue is full\"}";
	(void)state;
	request(&rq, "DPM++ 2M", NULL);
	memset(&j, 0, sizeof j);
	memset(&h, 0, sizeof h);
	j.rq = &rq;
	j.attempt = 1;
	/* 429: back-pressure, not a failed attempt */
	assert_int_equal(kiln_engine_sdcpp.on_response(&j, 429, full, strlen(full), &h, &e),
			 KILN_STEP_BUSY);
	/* what ran is recorded and checked */
	assert_int_equal(sd_done(&j, "owl\nSteps: 30, CFG scale: 7.000000, Seed: 5, Size: 512x768, "
				 "Model: sd_xl_base_1.0.safetensors, RNG: cuda, Sampler: dpm++2m "
				 "karras, Version: stable-diffusion.cpp", &e), KILN_STEP_DONE);
	assert_string_equal(j.ran, "{\"model\":\"sd_xl_base_1.0.safetensors\",\"steps\":30,"
			    "\"sampler\":\"dpm++2m\",\"scheduler\":\"karras\"}");
	kiln_ai_job_release(&j);
	/* clamped steps */
	rq.steps = 120;
	assert_int_equal(sd_done(&j, "owl\nSteps: 100, Sampler: dpm++2m karras, Version: x", &e),
			 KILN_STEP_FATAL);
	assert_non_null(strstr(e.msg, "ran 100 steps, not the 120 asked"));
	kiln_ai_job_release(&j);
	/* a sampler name the server did not know: its default ran */
	rq.steps = 30;
	assert_int_equal(sd_done(&j, "owl\nSteps: 30, Sampler: euler_a discrete, Version: x", &e),
			 KILN_STEP_FATAL);
	assert_non_null(strstr(e.msg, "ran sampler euler_a, not dpm++2m"));
	kiln_ai_job_release(&j);
}

/* --- ComfyUI ------------------------------------------------------------------------------ */

/* An SDXL workflow: two CLIPTextEncodeSDXL combined for the positive, a CLIPTextEncode for the
 * negative, the latent from a node of another class that has width and height. */
static const char sdxl_wf[] =
	"{\n"
	"\"4\": {\"class_type\": \"CheckpointLoaderSimple\", \"inputs\": {\"ckpt_name\": \"x\"}},\n"
	"\"6\": {\"class_type\": \"CLIPTextEncodeSDXL\", \"inputs\": {\"clip\": [\"4\", 1],\n"
	"       \"width\": 1024, \"height\": 1024, \"text_g\": \"\", \"text_l\": \"\"}},\n"
	"\"8\": {\"class_type\": \"CLIPTextEncodeSDXL\", \"inputs\": {\"clip\": [\"4\", 1],\n"
	"       \"width\": 1024, \"height\": 1024, \"text_g\": \"\", \"text_l\": \"\"}},\n"
	"\"9\": {\"class_type\": \"ConditioningCombine\",\n"
	"       \"inputs\": {\"conditioning_1\": [\"6\", 0], \"conditioning_2\": [\"8\", 0]}},\n"
	"\"7\": {\"class_type\": \"CLIPTextEncode\", \"inputs\": {\"text\": \"\", \"clip\": [\"4\", 1]}},\n"
	"\"5\": {\"class_type\": \"SDXLEmptyLatent\", \"inputs\": {\"width\": 8, \"height\": 8}},\n"
	"\"3\": {\"class_type\": \"KSampler\", \"inputs\": {\"seed\": 0, \"model\": [\"4\", 0],\n"
	"       \"positive\": [\"9\", 0], \"negative\": [\"7\", 0], \"latent_image\": [\"5\", 0]}},\n"
	"\"10\": {\"class_type\": \"VAEDecode\", \"inputs\": {\"samples\": [\"3\", 0],\n"
	"       \"vae\": [\"4\", 2]}},\n"
	"\"11\": {\"class_type\": \"SaveImage\", \"inputs\": {\"images\": [\"10\", 0]}}\n"
	"}\n";

static const char *input_of(json_t *g, const char *node, const char *input)
{
	return json_string_value(json_object_get(json_object_get(json_object_get(g, node),
								 "inputs"), input));
}

static void test_comfy_bind_links(void **state)
{
	struct kiln_ai_request rq;
	struct kiln_buf out = KILN_BUF_INIT;
	struct kiln_error e;
	json_t *o, *g;
	(void)state;
	request(&rq, "DPM++ 2M SDE", NULL);
	rq.workflow = sdxl_wf;
	assert_int_equal(kiln_comfy_workflow_check(sdxl_wf, "wf.json", 1, &e), 0);
	assert_int_equal(kiln_engine_comfyui.build_request(&rq, 0, &out, &e), 0);
	o = json_loads(out.data, 0, NULL);
	g = json_object_get(o, "prompt");
	/* every text input behind the positive gets the prompt, none gets an undeclared "text" */
	assert_string_equal(input_of(g, "6", "text_g"), "owl, crown");
	assert_string_equal(input_of(g, "6", "text_l"), "owl, crown");
	assert_string_equal(input_of(g, "8", "text_g"), "owl, crown");
	assert_null(json_object_get(json_object_get(json_object_get(g, "6"), "inputs"), "text"));
	assert_string_equal(input_of(g, "7", "text"), "blurry");
	/* the size on the latent node, whatever its class; the SDXL encoders' own width kept */
	assert_int_equal(json_integer_value(json_object_get(json_object_get(json_object_get(g, "5"),
			 "inputs"), "width")), 512);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(json_object_get(g, "6"),
			 "inputs"), "width")), 1024);
	/* "Automatic" with DPM++ 2M SDE is A1111's exponential */
	assert_string_equal(input_of(g, "3", "scheduler"), "exponential");
	json_decref(o);
	kiln_buf_release(&out);
}

static void test_comfy_refused(void **state)
{
	static const char img2img[] =
		"{\n"
		"\"3\": {\"class_type\": \"KSampler\", \"inputs\": {\"positive\": [\"6\", 0],\n"
		"       \"negative\": [\"6\", 0], \"latent_image\": [\"12\", 0]}},\n"
		"\"6\": {\"class_type\": \"CLIPTextEncode\", \"inputs\": {\"text\": \"\"}},\n"
		"\"12\": {\"class_type\": \"VAEEncode\", \"inputs\": {\"pixels\": [\"13\", 0]}}\n"
		"}\n";
	static const char no_text[] =
		"{\n"
		"\"3\": {\"class_type\": \"KSampler\", \"inputs\": {\"positive\": [\"20\", 0],\n"
		"       \"negative\": [\"7\", 0], \"latent_image\": [\"5\", 0]}},\n"
		"\"7\": {\"class_type\": \"CLIPTextEncode\", \"inputs\": {\"text\": \"\"}},\n"
		"\"5\": {\"class_type\": \"EmptyLatentImage\", \"inputs\": {\"width\": 8, \"height\": 8}},\n"
		"\"20\": {\"class_type\": \"StyleModelApply\", \"inputs\": {\"style_model\": [\"21\", 0]}}\n"
		"}\n";
	struct kiln_error e;
	(void)state;
	/* one encoder on both sides */
	assert_int_equal(kiln_comfy_workflow_check(img2img, "wf.json", 0, &e), KILN_E_SPEC);
	assert_string_equal(e.where, "wf.json:4");
	assert_non_null(strstr(e.msg, "both the positive and the negative"));
	/* the latent from a node without width/height */
	{
		char wf[1024];
		snprintf(wf, sizeof wf, "%s", img2img);
		memcpy(strstr(wf, "\"negative\": [\"6\""), "\"negative\": [\"7\"", 16);
		strcpy(strrchr(wf, '}') - 1, ",\n\"7\": {\"class_type\": \"CLIPTextEncode\", "
		       "\"inputs\": {\"text\": \"\"}}\n}\n");
		assert_int_equal(kiln_comfy_workflow_check(wf, "wf.json", 0, &e), KILN_E_SPEC);
		assert_string_equal(e.where, "wf.json:5");
		if (!strstr(e.msg, "node 12 (VAEEncode), which has no width and height"))
			fail_msg("%s", e.msg);
	}
	/* a conditioning with no text behind it */
	assert_int_equal(kiln_comfy_workflow_check(no_text, "wf.json", 0, &e), KILN_E_SPEC);
	assert_string_equal(e.where, "wf.json:6");
	assert_non_null(strstr(e.msg, "node 20 (StyleModelApply)"));
}

static const char object_info[] =
	"{\"CheckpointLoaderSimple\": {\"input\": {\"required\": {\"ckpt_name\": "
	"[[\"sd_xl_base_1.0.safetensors\", \"v1-5-pruned-emaonly.safetensors\"]]}}},"
	"\"LoraLoader\": {\"input\": {\"required\": {\"model\": [\"MODEL\"], \"clip\": [\"CLIP\"],"
	" \"lora_name\": [\"COMBO\", {\"options\": [\"styles/crown_v2.safetensors\"]}]}}},"
	"\"ControlNetLoader\": {\"input\": {\"required\": {\"control_net_name\": "
	"[[\"control_canny.pth\"]]}}},"
	"\"CLIPTextEncode\": {\"input\": {\"required\": {\"text\": [\"STRING\"], \"clip\": [\"CLIP\"]}}},"
	"\"CLIPTextEncodeSDXL\": {\"input\": {\"required\": {\"clip\": [\"CLIP\"], \"width\": [\"INT\"],"
	" \"text_g\": [\"STRING\"], \"text_l\": [\"STRING\"]}}},"
	"\"ConditioningCombine\": {\"input\": {\"required\": {\"conditioning_1\": [\"CONDITIONING\"],"
	" \"conditioning_2\": [\"CONDITIONING\"]}}},"
	"\"SDXLEmptyLatent\": {\"input\": {\"required\": {\"width\": [\"INT\"], \"height\": [\"INT\"]}}},"
	/* as nodes.py declares it: a max that does not fit a signed 64-bit integer */
	"\"KSampler\": {\"input\": {\"required\": {\"seed\": [\"INT\", {\"default\": 0,"
	" \"min\": 0, \"max\": 18446744073709551615}], \"steps\": [\"INT\"],"
	" \"cfg\": [\"FLOAT\"], \"sampler_name\": [[\"euler\"]], \"scheduler\": [[\"karras\"]],"
	" \"positive\": [\"CONDITIONING\"], \"negative\": [\"CONDITIONING\"],"
	" \"latent_image\": [\"LATENT\"], \"model\": [\"MODEL\"]}}},"
	"\"VAEDecode\": {\"input\": {\"required\": {}}}, \"SaveImage\": {\"input\": {}}}";

static void test_comfy_probe(void **state)
{
	struct kiln_ai_caps caps;
	struct kiln_ai_request rq;
	struct kiln_http h;
	struct kiln_error e;
	(void)state;
	memset(&caps, 0, sizeof caps);
	memset(&h, 0, sizeof h);
	assert_non_null(kiln_engine_comfyui.probe_start);
	assert_int_equal(kiln_engine_comfyui.probe_start(&caps, &h, &e), 0);
	assert_string_equal(h.path, "/object_info");
	assert_int_equal(kiln_engine_comfyui.probe_response(&caps, h.path, 200, object_info,
							    strlen(object_info), &h, &e),
			 KILN_STEP_DONE);
	assert_int_equal(caps.models.n, 2);
	assert_string_equal(caps.loras.v[0], "styles/crown_v2.safetensors");
	assert_string_equal(caps.cn_models.v[0], "control_canny.pth");
	assert_true(caps.flags & KILN_CAPS_CONTROLNET);

	request(&rq, "Euler", NULL);
	rq.workflow = sdxl_wf;
	rq.checkpoint = "sd_xl_base_1.0.safetensors";
	rq.loras = loras;
	rq.nloras = 1;
	assert_int_equal(kiln_engine_comfyui.supports(&caps, &rq, &e), 0);
	/* a checkpoint it does not have: named, with the nearest */
	rq.checkpoint = "sd_xl_base_1.1.safetensors";
	assert_int_equal(kiln_engine_comfyui.supports(&caps, &rq, &e), KILN_E_SPEC);
	if (!strstr(e.msg, "checkpoint 'sd_xl_base_1.1.safetensors'") ||
	    !strstr(e.msg, "it has sd_xl_base_1.0.safetensors"))
		fail_msg("%s", e.msg);
	rq.checkpoint = NULL;
	/* a text input the server's class does not declare would be ignored */
	{
		char wf[sizeof sdxl_wf + 64];
		snprintf(wf, sizeof wf, "%s", sdxl_wf);
		memcpy(strstr(wf, "ConditioningCombine"), "ConditioningAverage", 19);
		rq.workflow = wf;
		assert_int_equal(kiln_engine_comfyui.supports(&caps, &rq, &e), KILN_E_SPEC);
		assert_non_null(strstr(e.msg, "ConditioningAverage"));
		rq.workflow = sdxl_wf;
	}
	caps.nodes.v[4][0] = 'X'; /* CLIPTextEncodeSDXL's declaration gone: "XLIPTextEncodeSDXL" */
	assert_int_equal(kiln_engine_comfyui.supports(&caps, &rq, &e), KILN_E_SPEC);
	assert_non_null(strstr(e.msg, "CLIPTextEncodeSDXL"));
	kiln_ai_caps_release(&caps);
}

/* The history of a prompt that ran only some outputs: node 11's branch was dropped. */
static void test_comfy_history(void **state)
{
	struct kiln_ai_request rq;
	struct kiln_ai_job j;
	struct kiln_http h;
	struct kiln_error e;
	struct kiln_buf hist = KILN_BUF_INIT, bound = KILN_BUF_INIT;
	json_t *o;
	char *graph;
	(void)state;
	request(&rq, "Euler", NULL);
	rq.workflow = sdxl_wf;
	assert_int_equal(kiln_engine_comfyui.build_request(&rq, 0, &bound, &e), 0);
	o = json_loads(bound.data, 0, NULL);
	/* a second, unrelated output (12) ran; kiln's SaveImage (11) did not */
	json_object_set_new(json_object_get(o, "prompt"), "12", json_pack(
		"{s:s, s:{s:[s,i]}}", "class_type", "PreviewImage", "inputs", "images", "13", 0));
	json_object_set_new(json_object_get(o, "prompt"), "13", json_pack(
		"{s:s, s:{}}", "class_type", "LoadImage", "inputs"));
	graph = json_dumps(json_object_get(o, "prompt"), JSON_COMPACT);
	assert_int_equal(kiln_buf_addf(&hist, "{\"p1\": {\"prompt\": [1, \"p1\", %s, {}, [\"12\"]], "
				       "\"status\": {\"status_str\": \"success\", \"completed\": "
				       "true}, \"outputs\": {\"12\": {\"images\": [{\"filename\": "
				       "\"a.png\", \"subfolder\": \"\", \"type\": \"temp\"}]}}}}",
				       graph), 0);
	memset(&j, 0, sizeof j);
	memset(&h, 0, sizeof h);
	j.rq = &rq;
	j.attempt = 1;
	j.resumed = 1;
	snprintf(j.remote_id, sizeof j.remote_id, "p1");
	assert_int_equal(kiln_engine_comfyui.start(&j, &h, &e), 0);
	assert_int_equal(kiln_engine_comfyui.on_response(&j, 200, hist.data, hist.len, &h, &e),
			 KILN_STEP_RETRY);
	if (!strstr(e.msg, "finished without running node 3 (KSampler), node 5 "
			   "(SDXLEmptyLatent), node 6 (CLIPTextEncodeSDXL)"))
		fail_msg("%s", e.msg);
	kiln_ai_job_release(&j);

	/* all of it ran: the saved image, and what ran recorded */
	kiln_buf_reset(&hist);
	assert_int_equal(kiln_buf_addf(&hist, "{\"p1\": {\"prompt\": [1, \"p1\", %s, {}, [\"11\"]], "
				       "\"status\": {\"status_str\": \"success\", \"completed\": "
				       "true}, \"outputs\": {\"11\": {\"images\": [{\"filename\": "
				       "\"o.png\", \"subfolder\": \"\", \"type\": \"output\"}]}}}}",
				       graph), 0);
	memset(&j, 0, sizeof j);
	j.rq = &rq;
	j.attempt = 1;
	j.resumed = 1;
	snprintf(j.remote_id, sizeof j.remote_id, "p1");
	assert_int_equal(kiln_engine_comfyui.start(&j, &h, &e), 0);
	assert_int_equal(kiln_engine_comfyui.on_response(&j, 200, hist.data, hist.len, &h, &e),
			 KILN_STEP_SEND);
	assert_string_equal(h.path, "/view?filename=o.png&subfolder=&type=output");
	assert_non_null(j.ran);
	assert_non_null(strstr(j.ran, "\"sampler\":\"euler\""));
	kiln_ai_job_release(&j);
	json_decref(o);
	free(graph);
	kiln_buf_release(&hist);
	kiln_buf_release(&bound);
}

/* A transport error on POST /prompt: the server may still be validating it; kiln waits (a
 * poll), then looks, and does not send it again at once. */
static void test_comfy_prompt_lost_answer(void **state)
{
	struct kiln_ai_request rq;
	struct kiln_ai_job j;
	struct kiln_http h;
	struct kiln_error e;
	(void)state;
	request(&rq, "Euler", NULL);
	rq.workflow = sdxl_wf;
	memset(&j, 0, sizeof j);
	memset(&h, 0, sizeof h);
	j.rq = &rq;
	j.attempt = 1;
	assert_int_equal(kiln_engine_comfyui.start(&j, &h, &e), 0);
	assert_string_equal(h.path, "/prompt");
	kiln_buf_release(&h.body);
	assert_int_equal(kiln_engine_comfyui.on_response(&j, 0, "", 0, &h, &e), KILN_STEP_POLL);
	assert_non_null(strstr(h.path, "/history/"));
	/* three misses in /history (not finished, maybe not queued yet) before /queue */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(kiln_engine_comfyui.on_response(&j, 200, "{}", 2, &h, &e),
				 KILN_STEP_POLL);
		assert_non_null(strstr(h.path, "/history/"));
	}
	assert_int_equal(kiln_engine_comfyui.on_response(&j, 200, "{}", 2, &h, &e), KILN_STEP_SEND);
	assert_string_equal(h.path, "/queue");
	/* queued under another id (a server or proxy that chose its own): found by its content
	 * from client "kiln", and adopted rather than sent twice */
	{
		struct kiln_buf sent = KILN_BUF_INIT, q = KILN_BUF_INIT;
		json_t *b;
		char *graph;
		assert_int_equal(kiln_engine_comfyui.build_request(&rq, 0, &sent, &e), 0);
		b = json_loads(sent.data, 0, NULL);
		graph = json_dumps(json_object_get(b, "prompt"), JSON_COMPACT);
		assert_int_equal(kiln_buf_addf(&q, "{\"queue_running\": [], \"queue_pending\": ["
					       "[2, \"other\", {\"1\": {}}, {\"client_id\": \"kiln\"}, []], "
					       "[3, \"srv-42\", %s, {\"client_id\": \"kiln\"}, [\"11\"]]]}",
					       graph), 0);
		j.remote_new = 0;
		assert_int_equal(kiln_engine_comfyui.on_response(&j, 200, q.data, q.len, &h, &e),
				 KILN_STEP_POLL);
		assert_string_equal(j.remote_id, "srv-42");
		assert_int_equal(j.remote_new, 1);
		assert_string_equal(h.path, "/history/srv-42");
		free(graph);
		json_decref(b);
		kiln_buf_release(&sent);
		kiln_buf_release(&q);
	}
	kiln_ai_job_release(&j);
	kiln_buf_release(&h.body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_schedules),
		cmocka_unit_test(test_sdcpp_probe),
		cmocka_unit_test(test_sdcpp_grey_control),
		cmocka_unit_test(test_sdcpp_answers),
		cmocka_unit_test(test_comfy_bind_links),
		cmocka_unit_test(test_comfy_refused),
		cmocka_unit_test(test_comfy_probe),
		cmocka_unit_test(test_comfy_history),
		cmocka_unit_test(test_comfy_prompt_lost_answer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
