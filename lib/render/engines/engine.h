/* render/engines/engine.h: the AI engines (a1111, comfyui, sdcpp) behind one interface.
 *
 * An engine turns an engine-neutral request (struct kiln_ai_request: prompt, negative, seed,
 * LoRAs, ControlNet units, sampler settings) into the HTTP exchanges of its server's protocol,
 * one exchange at a time, so that the dispatcher (dispatch.h) can drive any number of jobs on
 * any mix of servers from one libcurl multi loop. An engine never does I/O itself: it says what
 * to send next (struct kiln_http) and reads what came back:
 *
 *   build_request  the job's submission body as sent on the wire (dry-run, catalog)
 *   submit_path    where that body is POSTed, for --dry-run
 *   start          the first exchange of an attempt (a resumed job: a poll of its remote id)
 *   on_response    a response (or a transport error, status 0): send this next, poll again
 *                  later, done (image in job->image), retry, or give up
 *
 * Secrets never reach an engine: authentication is HTTP headers, added by the dispatcher.
 * Ownership: the request's strings belong to whoever filled it (kiln_ai_request_release for
 * kiln_ai_request_build's); a job's image, info and the next exchange's body belong to the job
 * (kiln_ai_job_release).
 */
#ifndef KILN_ENGINE_H
#define KILN_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/buf.h"
#include "kiln/catalog.h"
#include "kiln/error.h"
#include "kiln/recipe.h"
#include "kiln/spec.h"

/* struct kiln_ai_file, kiln_ai_control and kiln_ai_request (what an image depends on) are
 * the recipe module's (kiln/recipe.h). */

/* Build item `it`'s request for `candidate` from the spec (traits' prompts, LoRAs and
 * ControlNets, the generate block). files[nfiles] are the loaded ControlNet images (by path);
 * workflow the loaded graph text (may be NULL). Fills rq->recipe. The recipe module builds it
 * (kiln_recipe_ai_build): these are the engines' names for it. */
int kiln_ai_request_build(const struct kiln_spec *s, const struct kiln_item *it,
			  unsigned candidate, const struct kiln_ai_file *files, size_t nfiles,
			  const char *workflow, struct kiln_ai_request *rq, struct kiln_error *e)
	KILN_MUST_CHECK;
void kiln_ai_request_release(struct kiln_ai_request *rq);
/* The canonical request: compact JSON of every field that decides the image (control images by
 * SHA-256, the workflow by SHA-256), engine-neutral and secret-free. The recipe is its hash. */
int kiln_ai_request_canonical(const struct kiln_ai_request *rq, struct kiln_buf *out)
	KILN_MUST_CHECK;

/* One HTTP exchange an engine asks for. */
struct kiln_http {
	const char *method;        /* "GET", "POST" or "PUT" (static) */
	char path[2048];           /* appended to the endpoint URL: "/sdapi/v1/txt2img"; with
	                              absolute, a whole URL */
	struct kiln_buf body;      /* JSON body, empty for GET */
	/* multipart upload (ComfyUI /upload/image) instead of a JSON body, when upload != NULL */
	const struct kiln_ai_file *upload;
	char upload_name[128];
	int no_resend;             /* a submission the server queues even when no answer comes
	                              back (ComfyUI /prompt, sd.cpp img_gen): sent on a new
	                              connection, which libcurl never silently sends again */
	/* Cloud requests: */
	int absolute;              /* path is a whole URL of another host (a RunPod worker's or
	                              SageMaker's S3 link), not appended to the endpoint's: sent
	                              without the endpoint's auth_env/token_env credentials (the
	                              dispatcher resets it before each on_response and start) */
	const char *sign;          /* "s3" or "sagemaker": the dispatcher signs the request with
	                              the endpoint's AWS keys (SigV4, util/sigv4.h); NULL: not */
	char headers[768];         /* more request headers, "Name: value" lines, '\n'-separated
	                              (signed with the rest) */
	int want_headers;          /* hand the answer's headers to the engine (job->headers) */
};

enum kiln_step {
	KILN_STEP_SEND,            /* send *next now */
	KILN_STEP_POLL,            /* send *next after the poll interval */
	KILN_STEP_DONE,            /* job->image holds the image */
	KILN_STEP_RETRY,           /* this attempt failed (e says why): try again. With e->code
	                              KILN_E_SPEC it is a mismatch: the server answered with an
	                              image but did not apply what was asked (a model, LoRA or
	                              ControlNet unit dropped; e names it); an endpoint that does
	                              so for breaker_failures jobs in a row is parked for the run */
	KILN_STEP_FATAL,           /* the request itself is wrong (4xx): do not retry */
	KILN_STEP_BUSY,            /* the server is full (sd.cpp 429): send the same submission
	                              again after a back-off; not a failure (no attempt used, the
	                              endpoint's breaker not tripped) */
};

/* One attempt of one job, as an engine sees it. */
struct kiln_ai_job {
	const struct kiln_ai_request *rq;
	const struct kiln_endpoint *ep;
	unsigned attempt;          /* 1-based */
	int phase;                 /* engine-private */
	int resumed;               /* remote_id came from an earlier run */
	char remote_id[1024];      /* ComfyUI prompt_id / sd.cpp job id / SageMaker output and
	                              failure locations ("" none) */
	int remote_new;            /* set by the engine when remote_id becomes known: the
	                              dispatcher persists it before sending anything else */
	char upload_name[256];     /* ComfyUI: the uploaded control image, as the server named it */
	size_t upload_next;        /* ComfyUI: next control image to upload */
	unsigned polls;
	unsigned misses;           /* engine-private (ComfyUI: polls that found no result yet) */
	unsigned poll_errors;      /* failed polls in a row: a poll that fails does not end the
	                              attempt (the server may still be running the job) until
	                              KILN_POLL_ERRORS of them */
	struct kiln_buf image;     /* the image (PNG bytes) when DONE */
	uint64_t seed_used;        /* as the server reports it (rq->seed if it does not) */
	char *info;                /* what the server said about the image (A1111 infotext), owned */
	char *scratch;             /* engine-private, freed with the job */
	/* What the endpoint has (its probe, below); NULL before the probe or for an engine
	 * without one. Engines send names as the server spells them (caps), not as written. */
	const struct kiln_ai_caps *caps;
	/* What the server reported it used for the image, a compact JSON object set by the
	 * engine when DONE: {"model":"name","model_hash":"..","loras":[{"name":..,"hash":..}],
	 * "controlnet":["ControlNet 0: ..."],"steps":N,"sampler":..,"scheduler":..} with the
	 * keys the server gave (owned; NULL: the server reports nothing). The render record
	 * keeps it beside what was asked. */
	char *ran;
	/* The answer's headers ("Name: value\r\n" lines) when the exchange asked for them
	 * (kiln_http.want_headers), else NULL; valid during on_response only. */
	const char *headers;
	/* GPU seconds the platform reported or measured for this attempt, set by a cloud engine
	 * (RunPod: executionTime; SageMaker: from the invocation's 202 to the output's
	 * appearance); 0: none (the dispatcher prices a self-hosted endpoint's wall time
	 * instead) */
	double gpu_seconds;
	int cancel;                /* set by the dispatcher: the run is being stopped; an engine
	                              may give up a job the platform has not started (RunPod:
	                              IN_QUEUE, cancelled with POST /cancel) */
};
void kiln_ai_job_release(struct kiln_ai_job *j);
#define KILN_POLL_ERRORS 8

/* What one endpoint has, asked once before its first job (the engine's probe). Names are
 * as the server lists them. Lists are NULL-free arrays of owned strings. */
struct kiln_ai_list {
	char **v;
	size_t n;
};
enum {
	KILN_CAPS_FORGE = 1u << 0,      /* A1111 API served by Forge (lib_controlnet rules) */
	KILN_CAPS_CONTROLNET = 1u << 1, /* ControlNet is available at all */
	/* The server answered the listing: the list is all it has (without the flag the list is
	 * unknown, and nothing is refused for want of a name in it). */
	KILN_CAPS_MODELS_LISTED = 1u << 8,
	KILN_CAPS_LORAS_LISTED = 1u << 9,
	KILN_CAPS_UPSCALERS_LISTED = 1u << 10,
};
/* The upscaler an image job without one asks for (A1111 name; ComfyUI model file). */
#define KILN_A1111_UPSCALER "R-ESRGAN 4x+"
#define KILN_COMFY_UPSCALER "RealESRGAN_x4plus.pth"
struct kiln_ai_caps {
	int known;                  /* the probe finished */
	unsigned flags;             /* KILN_CAPS_* */
	struct kiln_ai_list models;     /* checkpoints (A1111 title/model_name; ComfyUI ckpt_name) */
	struct kiln_ai_list loras;      /* LoRAs (A1111 name/alias; sd.cpp relative path with ext) */
	struct kiln_ai_list cn_models;  /* ControlNet models (exact titles) */
	struct kiln_ai_list cn_modules; /* ControlNet preprocessors (as spelled by the server) */
	struct kiln_ai_list upscalers;  /* upscale models */
	struct kiln_ai_list nodes;      /* ComfyUI node classes */
	char *raw;                  /* engine-private: what the probe kept (e.g. object_info), owned */
	int max_steps;              /* 0: no limit known */
};
void kiln_ai_caps_release(struct kiln_ai_caps *c);
/* Append a copy of name to l (probes). KILN_E_NOMEM. */
int kiln_ai_list_add(struct kiln_ai_list *l, const char *name) KILN_MUST_CHECK;
/* 1 when l holds name exactly. */
int kiln_ai_list_has(const struct kiln_ai_list *l, const char *name);
/* The names in l nearest to want (edit distance, case-insensitive), as ", "-separated text in
 * out (at most 3): for "it has X, Y" in messages. */
void kiln_ai_nearest(const struct kiln_ai_list *l, const char *want, char *out, size_t cap);

struct kiln_engine {
	const char *name;          /* "a1111", "comfyui", "sdcpp" */
	const char *health_path;   /* a cheap GET that answers 200 when the server is up */
	const char *submit_path;   /* where build_request's body goes ("/sdapi/v1/txt2img") */
	int sparse_polls;          /* a poll costs (a cloud API's request limits): polls also
	                              wait a standard deviation of the job time, and come 50 ms
	                              to 5 s apart (see poll_first below) */
	/* The submission body exactly as sent; redact: big blobs (base64 images) replaced by
	 * "sha256:<hex>" (for the catalog). */
	int (*build_request)(const struct kiln_ai_request *rq, int redact, struct kiln_buf *out,
			     struct kiln_error *e);
	/* The same for endpoint ep, when the body depends on the endpoint's settings (RunPod's
	 * policy); NULL: build_request. kiln_ai_build_for() picks. */
	int (*build_for)(const struct kiln_endpoint *ep, const struct kiln_ai_request *rq,
			 int redact, struct kiln_buf *out, struct kiln_error *e);
	int (*start)(struct kiln_ai_job *j, struct kiln_http *next, struct kiln_error *e);
	/* status 0: transport error (timeout, reset, refused; e->msg says which) */
	enum kiln_step (*on_response)(struct kiln_ai_job *j, long status, const char *body,
				      size_t len, struct kiln_http *next, struct kiln_error *e);
	/* The most bytes an answer to GET/POST `path` may have (rq NULL: a health check): the
	 * dispatcher cuts a transfer that goes past it. kiln_ai_reply_* below. */
	size_t (*reply_cap)(const struct kiln_ai_request *rq, const char *path);
	/* The probe (NULL: the engine has none). probe_start fills the first GET; probe_response
	 * reads its answer into caps and says SEND (next filled) or DONE; RETRY/FATAL with e
	 * when the server cannot be asked. Runs once per endpoint before its first job. */
	int (*probe_start)(struct kiln_ai_caps *caps, struct kiln_http *next, struct kiln_error *e);
	enum kiln_step (*probe_response)(struct kiln_ai_caps *caps, const char *path, long status,
					 const char *body, size_t len, struct kiln_http *next,
					 struct kiln_error *e);
	/* Can this endpoint run rq? 0 yes; else KILN_E_SPEC with e naming the missing thing and
	 * the nearest names caps has, one line per missing thing ("has no LoRA `x`; it has: a,
	 * b"): the dispatcher puts the endpoint before each line. */
	int (*supports)(const struct kiln_ai_caps *caps, const struct kiln_ai_request *rq,
			struct kiln_error *e);
	/* The health check's request when it depends on the endpoint (SageMaker: a signed S3
	 * listing of the input folder); NULL: GET health_path. */
	int (*health_request)(const struct kiln_endpoint *ep, struct kiln_http *next,
			      struct kiln_error *e);
	/* Polling of a job once the endpoint's expected job time is known, one rule for every
	 * engine (dispatch.c poll_interval): the first poll at poll_first of it, then every
	 * poll_step of it (0: 0.9 and 1/20; SageMaker 1 and 1/10, each GET billed; RunPod 1 and
	 * 1/20 with sparse_polls: at least a standard deviation apart), docs/engines.md. */
	double poll_first, poll_step;
};

/* Answer caps. A JSON answer without an image: a few MB. One that carries `images` base64
 * PNGs of the asked size: each at most width*height*4 bytes before base64 (an RGBA PNG
 * stored, not compressed, plus its framing, is inside the slack), 4/3 of that after. A
 * downloaded image: width*height*4 + slack. */
#define KILN_AI_REPLY_JSON ((size_t)8 << 20)
#define KILN_AI_REPLY_SLACK ((size_t)4 << 20)
size_t kiln_ai_reply_b64(const struct kiln_ai_request *rq, unsigned images);
size_t kiln_ai_reply_image(const struct kiln_ai_request *rq);

/* ComfyUI: can kiln bind the workflow text (API format)? It follows the KSampler's positive
 * and negative links back to every text encoder and latent_image back to the node with width
 * and height; need_loader: a checkpoint or LoRAs need a CheckpointLoaderSimple. KILN_E_SPEC
 * naming the node, e->where "file:line" of that node. */
int kiln_comfy_workflow_check(const char *text, const char *file, int need_loader,
			      struct kiln_error *e) KILN_MUST_CHECK;

extern const struct kiln_engine kiln_engine_a1111;
extern const struct kiln_engine kiln_engine_comfyui;
extern const struct kiln_engine kiln_engine_sdcpp;
/* RunPod serverless with the official workers (runpod.c): worker-comfyui and worker-a1111. */
extern const struct kiln_engine kiln_engine_runpod_comfyui;
extern const struct kiln_engine kiln_engine_runpod_a1111;
/* SageMaker asynchronous inference (sagemaker.c): worker a1111, or a JumpStart model */
extern const struct kiln_engine kiln_engine_sagemaker;
extern const struct kiln_engine kiln_engine_sagemaker_jumpstart;
/* The first of ep's AWS key variables (access_key_env, secret_key_env, session_token_env)
 * that the command found unset, or NULL (all set, or not a SageMaker endpoint). */
const char *kiln_ai_missing_aws(const struct kiln_endpoint *ep);
/* The URL of s3://bucket[blen]/key at the endpoint's S3 (s3_base_url or AWS's regional one,
 * virtual-hosted or path-style as s3_virtual says; the key percent-encoded, '/' kept) into
 * out[cap]. KILN_E_SPEC when it does not fit, KILN_E_NOMEM. (sagemaker.c) */
int kiln_s3_url(const struct kiln_endpoint *ep, const char *bucket, size_t blen,
		const char *key, char *out, size_t cap, struct kiln_error *e) KILN_MUST_CHECK;
/* What --dry-run shows of a SageMaker job beyond its body: the S3 upload and the invocation
 * with its headers (no secret: the variables' names only). */
int kiln_sagemaker_dry_run(const struct kiln_endpoint *ep, const struct kiln_ai_request *rq,
			   struct kiln_buf *out) KILN_MUST_CHECK;
/* By name, or NULL. */
const struct kiln_engine *kiln_engine_find(const char *name);
/* The engine that drives endpoint ep (its engine, or for a cloud endpoint the platform's with
 * its worker), or NULL. */
const struct kiln_engine *kiln_engine_for(const struct kiln_endpoint *ep);
/* RunPod refuses a /run body over 10 MB (/runsync: 20 MB): kiln refuses it before sending. */
#define KILN_RUNPOD_MAX_BODY ((size_t)10 * 1000 * 1000)

/* Helpers shared by the engines (engine.c). */
int kiln_b64_encode(const void *p, size_t n, struct kiln_buf *out) KILN_MUST_CHECK;
int kiln_b64_decode(const char *s, size_t n, struct kiln_buf *out) KILN_MUST_CHECK;
/* The start of a server's error body on one line (newlines as spaces), for messages. */
void kiln_ai_excerpt(char *out, size_t cap, const char *body, size_t len);
/* Map an A1111 sampler name ("Euler a") to the engine's ("a1111", "comfyui": euler_ancestral,
 * "sdcpp": euler_a). NULL: unknown, or the engine has no such sampler (the spec loader refuses
 * those, see kiln_sampler_runs in kiln/spec.h (sampler names, lib/spec/samplers.c)). Static strings. */
const char *kiln_ai_sampler_name(const char *engine, const char *a1111_name);
/* Map an A1111 schedule type ("Karras") to the engine's ("karras"); NULL: the sampler's
 * default ("Automatic", or none given) or one the engine lacks. Static strings. */
const char *kiln_ai_scheduler_name(const char *engine, const char *a1111_name);
/* The engine's name for the schedule the pair (sampler, scheduler) runs with on A1111:
 * "Automatic" (or none) resolved to the sampler's own default first (kiln_scheduler_resolve),
 * so that one recipe means one schedule on every engine. NULL: nothing to send. */
const char *kiln_ai_schedule(const char *engine, const char *sampler, const char *scheduler);
/* Append o's JSON text (json_dumpb flags) to out: KILN_E_NOMEM, or the whole text. jansson's
 * json_dumps can lose an object key when its buffer fails to grow; this cannot. */
struct json_t;
int kiln_ai_json_append(struct json_t *o, size_t flags, struct kiln_buf *out) KILN_MUST_CHECK;
/* The LoRA file name a server looks up: name as it is when it ends in a model extension
 * (.safetensors .ckpt .pt .pth .bin .gguf), else name + ".safetensors". -1: cap too small. */
int kiln_ai_lora_file(const char *name, char *out, size_t cap) KILN_MUST_CHECK;
/* The LoRA file name to send to an endpoint that listed its LoRAs (caps known): the listed
 * entry equal to name or to kiln_ai_lora_file(name), else the listed one whose file stem is
 * name ("styles/crown_v2.safetensors" for crown_v2); without caps, or when nothing matches,
 * kiln_ai_lora_file(name) (supports() then says it is missing). -1: cap too small. */
int kiln_ai_lora_listed(const struct kiln_ai_caps *caps, const char *name, char *out,
			size_t cap) KILN_MUST_CHECK;

/* The submission body for endpoint ep (ep NULL: the engine's defaults). */
static inline int kiln_ai_build_for(const struct kiln_engine *eng,
				    const struct kiln_endpoint *ep,
				    const struct kiln_ai_request *rq, int redact,
				    struct kiln_buf *out, struct kiln_error *e)
{
	if (ep && eng->build_for)
		return eng->build_for(ep, rq, redact, out, e);
	return eng->build_request(rq, redact, out, e);
}

#endif
