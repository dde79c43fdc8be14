/* Fuzz target: what the AI engines make of a server's replies (A1111/Forge, ComfyUI,
 * sd-server). A server is not trusted: its JSON, base64 and image bytes come from the network.
 * Input: byte 0 picks the engine and byte 1 the first HTTP status; the rest is a series of
 * reply bodies separated by the two bytes 0x00 0x01, fed to the engine one per exchange for as
 * long as it asks for another (submission, polls, history, image download). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "kiln/buf.h"
#include "render/engines/engine.h"

static const char workflow[] =
	"{\"3\":{\"class_type\":\"KSampler\",\"inputs\":{\"seed\":1,\"steps\":20,\"cfg\":7,"
	"\"sampler_name\":\"euler\",\"scheduler\":\"normal\",\"denoise\":1,\"model\":[\"4\",0],"
	"\"positive\":[\"6\",0],\"negative\":[\"7\",0],\"latent_image\":[\"5\",0]}},"
	"\"4\":{\"class_type\":\"CheckpointLoaderSimple\",\"inputs\":{\"ckpt_name\":\"m.safetensors\"}},"
	"\"5\":{\"class_type\":\"EmptyLatentImage\",\"inputs\":{\"width\":64,\"height\":64,\"batch_size\":1}},"
	"\"6\":{\"class_type\":\"CLIPTextEncode\",\"inputs\":{\"text\":\"\",\"clip\":[\"4\",1]}},"
	"\"7\":{\"class_type\":\"CLIPTextEncode\",\"inputs\":{\"text\":\"\",\"clip\":[\"4\",1]}},"
	"\"8\":{\"class_type\":\"VAEDecode\",\"inputs\":{\"samples\":[\"3\",0],\"vae\":[\"4\",2]}},"
	"\"9\":{\"class_type\":\"SaveImage\",\"inputs\":{\"filename_prefix\":\"k\",\"images\":[\"8\",0]}}}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct kiln_engine *const engines[] = {
		&kiln_engine_a1111, &kiln_engine_comfyui, &kiln_engine_sdcpp};
	static const long statuses[] = {200, 200, 200, 202, 400, 404, 500, 0};
	char prompt[] = "an owl", negative[] = "";
	struct kiln_endpoint ep = {.url = "http://127.0.0.1:1", .concurrency = 1};
	struct kiln_ai_request rq = {
		.item_id = 7, .seed = 42, .prompt = prompt, .negative = negative,
		.sampler = "Euler a", .steps = 20, .cfg = 7, .width = 64, .height = 64,
	};
	struct kiln_ai_job j;
	struct kiln_http next;
	struct kiln_error e;
	const struct kiln_engine *eng;
	size_t pos = 2;
	long status;
	if (size < 2)
		return 0;
	eng = engines[data[0] % 3];
	status = statuses[data[1] % 8];
	if (eng == &kiln_engine_comfyui)
		rq.workflow = workflow;
	memset(&j, 0, sizeof j);
	memset(&next, 0, sizeof next);
	j.rq = &rq;
	j.ep = &ep;
	j.attempt = 1;
	kiln_error_clear(&e);
	kiln_buf_init(&next.body, 1u << 20);
	if (eng->start(&j, &next, &e))
		goto out;
	for (unsigned turn = 0; turn < 64 && pos <= size; turn++) {
		size_t end = pos;
		while (end + 1 < size && !(data[end] == 0 && data[end + 1] == 1))
			end++;
		if (end + 1 >= size)
			end = size;
		/* the dispatcher hands bodies NUL-terminated */
		char *body = malloc(end - pos + 1);
		if (!body)
			break;
		memcpy(body, data + pos, end - pos);
		body[end - pos] = 0;
		kiln_buf_release(&next.body);
		kiln_buf_init(&next.body, 1u << 20);
		enum kiln_step st = eng->on_response(&j, turn ? 200 : status, body, end - pos, &next, &e);
		free(body);
		pos = end + 2;
		if (st != KILN_STEP_SEND && st != KILN_STEP_POLL)
			break;
	}
out:
	kiln_buf_release(&next.body);
	kiln_ai_job_release(&j);
	return 0;
}
