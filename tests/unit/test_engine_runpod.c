/* engine_runpod: the RunPod endpoint in kiln.yaml, the /run body for each worker
 * (worker-a1111: the txt2img body; worker-comfyui: the bound graph and the ControlNet images
 * under their LoadImage names), the 10 MB refusal, and every answer: the job id persisted,
 * IN_QUEUE/IN_PROGRESS polled, COMPLETED read (base64, s3_url, the older message form, A1111's
 * answer), FAILED/TIMED_OUT with RunPod's error, 404 as lost or expired, 429 as back-pressure,
 * a queued job cancelled when the run stops, executionTime as GPU seconds. */
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

static const char yaml[] =
	"collection: {name: Owls, size: 1, seed: 9}\n"
	"engine: a1111\n"
	"generate:\n"
	"  prompt: 'owl, {Body}'\n"
	"  size: 64x64\n"
	"  workflow: wf.json\n"
	"  budget_usd: 12.5\n"
	"  endpoints:\n"
	"    - {platform: runpod, endpoint_id: ab-12_c, worker: a1111, auth_env: RP,\n"
	"       concurrency: 8, cost_per_hour: 0.69}\n"
	"    - {platform: runpod, endpoint_id: cf1, worker: comfyui, auth_env: RP,\n"
	"       base_url: 'http://127.0.0.1:9/'}\n"
	"layers:\n"
	"  - name: Body\n"
	"    traits:\n"
	"      - {name: Gold, lora: [{name: gold_v1, weight: 0.5}],\n"
	"         controlnet: {image: cn.png, model: canny.pth, weight: 0.7}}\n";

static const char wf[] =
	"{\"6\":{\"class_type\":\"CLIPTextEncode\",\"inputs\":{\"text\":\"\",\"clip\":[\"4\",1]}},"
	"\"7\":{\"class_type\":\"CLIPTextEncode\",\"inputs\":{\"text\":\"\",\"clip\":[\"4\",1]}},"
	"\"4\":{\"class_type\":\"CheckpointLoaderSimple\",\"inputs\":{\"ckpt_name\":\"x\"}},"
	"\"5\":{\"class_type\":\"EmptyLatentImage\",\"inputs\":{\"width\":8,\"height\":8}},"
	"\"3\":{\"class_type\":\"KSampler\",\"inputs\":{\"seed\":0,\"model\":[\"4\",0],"
	"\"positive\":[\"6\",0],\"negative\":[\"7\",0],\"latent_image\":[\"5\",0]}}}";

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
static struct kiln_ai_file files[] = {{"cn.png", png, sizeof png,
				       "ab12cd34ef56ab78cd90ef12ab34cd56ef78ab90cd12ef34ab56cd78ef90ab12"}};

struct fx {
	struct kiln_spec *s;
	struct kiln_ai_request rq;
	struct kiln_ai_job j;
	struct kiln_http next;
	struct kiln_error e;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	uint32_t traits[1] = {0};
	struct kiln_item it;
	struct kiln_error e;
	if (!f || kiln_spec_parse(&f->s, yaml, strlen(yaml), "kiln.yaml", NULL, &e)) {
		print_error("%s: %s\n", e.where, e.msg);
		return -1;
	}
	memset(&it, 0, sizeof it);
	it.id = 3;
	it.seed = 77;
	it.legendary = -1;
	it.traits = traits;
	if (kiln_ai_request_build(f->s, &it, 0, files, 1, wf, &f->rq, &e)) {
		print_error("%s\n", e.msg);
		return -1;
	}
	f->j.rq = &f->rq;
	f->j.ep = &f->s->generate->endpoints[0];
	f->j.attempt = 1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	kiln_ai_job_release(&f->j);
	kiln_buf_release(&f->next.body);
	kiln_ai_request_release(&f->rq);
	kiln_spec_free(f->s);
	free(f);
	return 0;
}

static enum kiln_step answer(struct fx *f, long status, const char *body)
{
	kiln_buf_reset(&f->next.body);
	f->next.absolute = 0;
	kiln_error_clear(&f->e);
	return kiln_engine_for(f->j.ep)->on_response(&f->j, status, body, strlen(body), &f->next,
						      &f->e);
}

static void test_spec(void **state)
{
	struct fx *f = *state;
	const struct kiln_endpoint *a = &f->s->generate->endpoints[0];
	const struct kiln_endpoint *c = &f->s->generate->endpoints[1];
	assert_int_equal(a->platform, KILN_PLATFORM_RUNPOD);
	assert_string_equal(a->url, "https://api.runpod.ai/v2/ab-12_c");
	assert_string_equal(a->engine, "runpod");
	assert_string_equal(kiln_endpoint_protocol(a), "a1111");
	assert_string_equal(a->token_env, "RP"); /* the key goes as a bearer token */
	assert_null(a->auth_env);
	assert_true(a->cost_per_hour == 0.69);
	assert_int_equal(a->concurrency, 8);
	assert_string_equal(c->url, "http://127.0.0.1:9/v2/cf1");
	assert_string_equal(kiln_endpoint_protocol(c), "comfyui");
	assert_ptr_equal(kiln_engine_for(c), &kiln_engine_runpod_comfyui);
	assert_ptr_equal(kiln_engine_for(a), &kiln_engine_runpod_a1111);
	assert_true(f->s->generate->budget_usd == 12.5);
}

static void test_submit_a1111(void **state)
{
	struct fx *f = *state;
	json_t *o, *in;
	assert_int_equal(kiln_engine_runpod_a1111.start(&f->j, &f->next, &f->e), 0);
	assert_string_equal(f->next.method, "POST");
	assert_string_equal(f->next.path, "/run");
	assert_true(f->next.no_resend);
	o = json_loadb(f->next.body.data, f->next.body.len, 0, NULL);
	assert_non_null(o);
	in = json_object_get(o, "input");
	assert_int_equal(json_integer_value(json_object_get(in, "seed")), 77);
	assert_non_null(strstr(json_string_value(json_object_get(in, "prompt")),
			       "<lora:gold_v1:0.5>"));
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(
		json_object_get(json_object_get(in, "alwayson_scripts"), "controlnet"), "args"), 0),
		"image")), PNG_B64);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "policy"),
							   "executionTimeout")), 600000);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "policy"),
							   "ttl")), 4200000);
	json_decref(o);
	/* /run answers: the id is persisted before the first poll */
	assert_int_equal(answer(f, 200, "{\"id\":\"job-1-u1\",\"status\":\"IN_QUEUE\"}"),
			 KILN_STEP_POLL);
	assert_string_equal(f->j.remote_id, "job-1-u1");
	assert_true(f->j.remote_new);
	assert_string_equal(f->next.path, "/status/job-1-u1");
	assert_int_equal(answer(f, 200, "{\"id\":\"job-1-u1\",\"status\":\"IN_PROGRESS\","
					"\"delayTime\":12}"), KILN_STEP_POLL);
	/* worker-a1111's output is A1111's answer, verified as from A1111 */
	assert_int_equal(answer(f, 200, "{\"id\":\"job-1-u1\",\"status\":\"COMPLETED\","
		"\"executionTime\":2345,\"delayTime\":9,\"output\":{\"images\":[\"" PNG_B64 "\"],"
		"\"info\":\"{\\\"seed\\\":77,\\\"extra_generation_params\\\":{\\\"Lora hashes\\\":"
		"\\\"gold_v1: 1234\\\",\\\"ControlNet 0\\\":\\\"x\\\"}}\"}}"), KILN_STEP_DONE);
	assert_int_equal(f->j.image.len, sizeof png);
	assert_true(f->j.gpu_seconds == 2.345);
	/* and one that dropped the LoRA is a mismatch */
	assert_int_equal(answer(f, 200, "{\"status\":\"COMPLETED\",\"executionTime\":10,"
		"\"output\":{\"images\":[\"" PNG_B64 "\"],\"info\":\"{\\\"seed\\\":77,"
		"\\\"extra_generation_params\\\":{\\\"ControlNet 0\\\":\\\"x\\\"}}\"}}"),
		KILN_STEP_RETRY);
	assert_int_equal(f->e.code, KILN_E_SPEC);
	assert_non_null(strstr(f->e.msg, "dropped LoRA `gold_v1`"));
}

static void test_submit_comfyui(void **state)
{
	struct fx *f = *state;
	json_t *o, *in, *img, *n;
	const char *k;
	int loads = 0;
	f->j.ep = &f->s->generate->endpoints[1];
	assert_int_equal(kiln_engine_runpod_comfyui.start(&f->j, &f->next, &f->e), 0);
	o = json_loadb(f->next.body.data, f->next.body.len, 0, NULL);
	in = json_object_get(o, "input");
	img = json_array_get(json_object_get(in, "images"), 0);
	assert_string_equal(json_string_value(json_object_get(img, "name")),
			    "kiln_ab12cd34ef56ab78.png");
	assert_string_equal(json_string_value(json_object_get(img, "image")), PNG_B64);
	json_object_foreach(json_object_get(in, "workflow"), k, n)
		if (!strcmp(json_string_value(json_object_get(n, "class_type")), "LoadImage")) {
			assert_string_equal(json_string_value(json_object_get(json_object_get(n,
					    "inputs"), "image")), "kiln_ab12cd34ef56ab78.png");
			loads++;
		}
	assert_int_equal(loads, 1);
	assert_null(json_object_get(in, "prompt_id")); /* the /prompt envelope is not sent */
	json_decref(o);
	/* the catalog's copy has the image by hash */
	kiln_buf_reset(&f->next.body);
	assert_int_equal(kiln_engine_runpod_comfyui.build_request(&f->rq, 1, &f->next.body, &f->e),
			 0);
	assert_non_null(strstr(f->next.body.data, "\"image\":\"sha256:ab12"));
	snprintf(f->j.remote_id, sizeof f->j.remote_id, "c-1");
	f->j.phase = 1; /* polling */
	assert_int_equal(answer(f, 200, "{\"status\":\"COMPLETED\",\"executionTime\":500,"
		"\"output\":{\"images\":[{\"filename\":\"a.png\",\"type\":\"base64\",\"data\":\""
		PNG_B64 "\"}]}}"), KILN_STEP_DONE);
	assert_int_equal(f->j.image.len, sizeof png);
	f->j.phase = 1;
	assert_int_equal(answer(f, 200, "{\"status\":\"COMPLETED\",\"output\":{\"status\":"
		"\"success\",\"message\":\"" PNG_B64 "\"}}"), KILN_STEP_DONE);
	f->j.phase = 1;
	assert_int_equal(answer(f, 200, "{\"status\":\"COMPLETED\",\"output\":{\"images\":[{"
		"\"filename\":\"a.png\",\"type\":\"s3_url\",\"data\":\"https://b.s3/x.png?sig=1\"}]}}"),
		KILN_STEP_SEND);
	assert_true(f->next.absolute);
	assert_string_equal(f->next.path, "https://b.s3/x.png?sig=1");
	assert_int_equal(answer(f, 200, "PNGBYTES"), KILN_STEP_DONE);
	assert_int_equal(f->j.image.len, 8);
	f->j.phase = 1;
	assert_int_equal(answer(f, 200, "{\"status\":\"COMPLETED\",\"output\":{\"images\":[],"
		"\"status\":\"success_no_images\"}}"), KILN_STEP_FATAL);
	f->j.phase = 1;
	assert_int_equal(answer(f, 200, "{\"status\":\"COMPLETED\",\"output\":{\"errors\":["
		"\"Failed to fetch image data for x\"]}}"), KILN_STEP_RETRY);
	assert_non_null(strstr(f->e.msg, "Failed to fetch image data for x"));
}

static void test_answers(void **state)
{
	struct fx *f = *state;
	snprintf(f->j.remote_id, sizeof f->j.remote_id, "j9");
	f->j.phase = 1;
	assert_int_equal(answer(f, 200, "{\"status\":\"FAILED\",\"executionTime\":1500,"
		"\"error\":\"handler: CUDA out of memory\"}"), KILN_STEP_RETRY);
	assert_string_equal(f->e.msg, "job j9 FAILED: handler: CUDA out of memory");
	assert_true(f->j.gpu_seconds == 1.5); /* a failed job is paid for too */
	assert_int_equal(answer(f, 200, "{\"status\":\"TIMED_OUT\",\"executionTime\":600000}"),
			 KILN_STEP_RETRY);
	assert_non_null(strstr(f->e.msg, "TIMED_OUT (it ran past its executionTimeout)"));
	assert_int_equal(answer(f, 404, "{\"error\":\"request does not exist\"}"), KILN_STEP_RETRY);
	assert_non_null(strstr(f->e.msg, "the job was lost"));
	f->j.resumed = 1;
	f->j.phase = 1;
	assert_int_equal(answer(f, 404, "{}"), KILN_STEP_RETRY);
	assert_non_null(strstr(f->e.msg, "its result expired (RunPod keeps a result 30 minutes"));
	/* a failed poll is polled again, up to KILN_POLL_ERRORS */
	f->j.phase = 1;
	f->j.poll_errors = 0;
	assert_int_equal(answer(f, 502, "bad gateway"), KILN_STEP_POLL);
	assert_int_equal(answer(f, 429, ""), KILN_STEP_POLL);
	assert_int_equal(f->j.poll_errors, 2);
	/* the run stops: a queued job is cancelled, a running one collected */
	f->j.cancel = 1;
	assert_int_equal(answer(f, 200, "{\"status\":\"IN_PROGRESS\"}"), KILN_STEP_POLL);
	assert_int_equal(answer(f, 200, "{\"status\":\"IN_QUEUE\"}"), KILN_STEP_SEND);
	assert_string_equal(f->next.method, "POST");
	assert_string_equal(f->next.path, "/cancel/j9");
	assert_int_equal(answer(f, 200, "{\"id\":\"j9\",\"status\":\"CANCELLED\"}"),
			 KILN_STEP_FATAL);
	/* /run: 429 is back-pressure, 400 the request's fault, 5xx a failed attempt */
	f->j.phase = 0;
	assert_int_equal(answer(f, 429, "{\"error\":\"Too many requests\"}"), KILN_STEP_BUSY);
	f->j.phase = 0;
	assert_int_equal(answer(f, 400, "{\"error\":\"bad\"}"), KILN_STEP_FATAL);
	f->j.phase = 0;
	assert_int_equal(answer(f, 503, "down"), KILN_STEP_RETRY);
	f->j.phase = 0;
	assert_int_equal(answer(f, 200, "{\"id\":\"../x\"}"), KILN_STEP_RETRY); /* not an id */
}

static void test_too_big(void **state)
{
	struct fx *f = *state;
	static unsigned char big[8000000];
	struct kiln_ai_file one = {"big.png", big, sizeof big, "ff"};
	const struct kiln_ai_file *keep = f->rq.controls[0].image;
	f->rq.controls[0].image = &one;
	assert_int_equal(kiln_engine_runpod_a1111.start(&f->j, &f->next, &f->e), KILN_E_SPEC);
	assert_non_null(strstr(f->e.msg, "over the 10 MB RunPod takes in a /run body"));
	f->rq.controls[0].image = keep;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_spec, setup, teardown),
		cmocka_unit_test_setup_teardown(test_submit_a1111, setup, teardown),
		cmocka_unit_test_setup_teardown(test_submit_comfyui, setup, teardown),
		cmocka_unit_test_setup_teardown(test_answers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_big, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
