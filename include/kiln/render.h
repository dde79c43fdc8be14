/* kiln/render.h: the render stage. For every planned item whose recipe changed (or that has no
 * image in the store) it makes the image, with the compose engine (trait layers, on worker
 * threads) or an AI engine (A1111/Forge, ComfyUI, sd-server, through one libcurl-multi
 * dispatcher), writes it to the content store and records the attempt in the catalog.
 * lib/render/README.md has the module's invariants.
 */
#ifndef KILN_RENDER_H
#define KILN_RENDER_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/buf.h"
#include "kiln/error.h"
#include "kiln/project.h"

struct kiln_render_opts {
	unsigned threads;             /* 0: one per core */
	int force;                    /* render even items whose recipe is unchanged */
	const uint64_t *ids;          /* only these items (NULL: all) */
	size_t nids;
	kiln_progress_fn progress;
	void *user;
	const volatile int *cancel;   /* set to non-zero to stop after the items under way */
};
struct kiln_render_result {
	uint64_t items;               /* items considered */
	uint64_t todo;                /* items that needed rendering */
	uint64_t rendered;
	uint64_t failed;
	uint64_t skipped;             /* up to date */
	double seconds;
	double spent_usd;             /* AI: this run's spend at the endpoints' cost_per_hour */
	double spent_total_usd;       /* AI: every run's, this one's included */
	int budget_stopped;           /* generate.budget_usd held jobs back (they failed) */
};
int kiln_project_render(struct kiln_project *p, const struct kiln_render_opts *o,
			struct kiln_render_result *r, struct kiln_error *e) KILN_MUST_CHECK;

/* `kiln render --dry-run ID`: the exact HTTP request of the item's first candidate for the
 * first endpoint (method, URL, headers with credentials shown as <from $VAR>, body), as text
 * in out. Nothing is sent. */
int kiln_project_render_dry_run(struct kiln_project *p, uint64_t id, struct kiln_buf *out,
				struct kiln_error *e) KILN_MUST_CHECK;

/* The AI disclosure of a PNG changed after render (the polish stage): img[len] with its XMP
 * packet declaring the IPTC DigitalSourceType trainedAlgorithmicMedia (composite 0: still the
 * model's work, e.g. upscaled) or compositeWithTrainedAlgorithmicMedia (composite 1: edited by
 * a person, or composited with human-made layers), appended to out; an XMP packet the PNG
 * had is replaced. A malformed PNG is KILN_E_IMAGE. */
int kiln_render_disclose_png(const void *img, size_t len, int composite, struct kiln_buf *out,
			     struct kiln_error *e) KILN_MUST_CHECK;

/* Image jobs for the polish stage (lib/render/imagejob.c): an image in the store upscaled or
 * inpainted by the AI endpoints of generate.endpoints that have the route (A1111/Forge
 * extra-single-image and img2img with a mask; ComfyUI graphs of kiln's own), through the
 * render dispatcher (retries, breaker, probes). Each output is checked (a PNG that decodes,
 * factor x the input's size for an upscale, the input's size for an inpaint, not blank),
 * gets the disclosure XMP `xmp` says (0 trainedAlgorithmicMedia, 1 composite) and is put in
 * the store. A job's remote id is kept in the catalog (ai_inflight, under item_id and
 * KILN_IMAGE_JOB_SEED + key, with recipe) before it is sent: after a kill -9 the next run
 * with the same job collects it. Returns an error only when the run could not be done (no
 * endpoint can, out of memory, the catalog); a job that failed has ok 0 and error. */
enum { KILN_IMAGE_UPSCALE = 1, KILN_IMAGE_INPAINT = 2 };
#define KILN_IMAGE_JOB_SEED ((uint64_t)1 << 40) /* above every render seed (< 2^32) */
struct kiln_image_job {
	int kind;                     /* KILN_IMAGE_UPSCALE or KILN_IMAGE_INPAINT */
	uint64_t item_id;             /* the token */
	uint64_t key;                 /* which of the token's jobs (< 2^20) */
	char recipe[65];              /* the caller's: names the job on the server and on resume */
	const char *image;            /* the input's store SHA-256 (a PNG) */
	const char *mask;             /* inpaint: the mask's (a PNG of the input's size) */
	int factor;                   /* upscale: 2 or 4 */
	const char *upscaler;         /* upscale: the server's name (NULL: R-ESRGAN 4x+ on A1111,
	                                 RealESRGAN_x4plus.pth on ComfyUI) */
	const char *prompt, *negative;/* inpaint */
	double denoise;
	uint64_t seed;
	const char *checkpoint, *sampler, *scheduler;
	int steps;
	double cfg;
	int xmp;                      /* the output's disclosure: 0 trained, 1 composite */
	/* out */
	int width, height;            /* the input's */
	int ok;
	char output[65];
	uint64_t bytes;
	char endpoint[512];           /* the last attempt's */
	const char *engine;           /* static */
	char *error, *request, *ran;  /* owned: kiln_image_job_release */
};
struct kiln_image_opts {
	const volatile int *cancel;
	kiln_progress_fn progress;    /* stage "polish", an "item" per finished job */
	void *user;
};
int kiln_render_image_jobs(struct kiln_project *p, struct kiln_image_job *jobs, size_t n,
			   const struct kiln_image_opts *o, struct kiln_error *e) KILN_MUST_CHECK;
void kiln_image_job_release(struct kiln_image_job *j);

/* Live per-endpoint counters of an AI render (struct kiln_progress.endpoint_stats). */
/* An endpoint's state, as kiln_dispatch_stats.state reports it. */
enum kiln_endpoint_state {
	KILN_ENDPOINT_UP,          /* taking jobs */
	KILN_ENDPOINT_PARKED,      /* the circuit breaker opened: waits, then a health check */
	KILN_ENDPOINT_GIVEN_UP,    /* refused credentials or kept failing checks: out of the run */
	KILN_ENDPOINT_CHECKING,    /* its health check is under way (at start, or after a park) */
};

/* Per-endpoint counters, for progress and the summary. The dispatcher brings in_flight,
 * failing and state up to date before each ops->tick, so a tick callback may read them. */
struct kiln_dispatch_stats {
	uint64_t sent;             /* attempts started */
	uint64_t ok;
	uint64_t failed;
	uint64_t parked;           /* times the breaker opened */
	int state;                 /* enum kiln_endpoint_state */
	unsigned in_flight;        /* attempts running on it now */
	unsigned failing;          /* attempts failed in a row (0: the last one was ok); jobs
	                              that failed wait out their backoff before a retry */
	double busy_seconds;       /* sum of attempt durations */
	double gpu_seconds;        /* GPU seconds the platform reported (this run) */
	double spent_usd;          /* this run's spend on it (kiln_dispatch_attempt.cost_usd) */
	uint64_t priced;           /* attempts with a cost (for the mean cost per attempt) */
	double projected_usd;      /* spent_usd plus its share of the jobs left at its mean cost
	                              per accepted image (the run's projection, per endpoint) */
	char why[512];             /* given up: why ("URL: parked for this run: ...") */
};

/* A training job on a RunPod serverless endpoint (lib/render/runpod_train.c), kiln's own
 * worker contract (docs/training.md "Running"). Blocking libcurl requests, one at a time,
 * each with a timeout, retried by the dispatcher's backoff on transport errors, 429 and 5xx
 * (/run only when it surely was not received), stopped within ~50 ms when *cancel is set
 * (KILN_E_NET "stopped"). ep: the training's runpod endpoint, ep->secret the API key and the
 * AWS keys (dataset_upload: s3) resolved by the caller from the variables it names. */
struct kiln_endpoint;
struct kiln_runpod_train {
	const struct kiln_endpoint *ep;
	const volatile int *cancel;   /* may be NULL */
};
struct kiln_runpod_train_job {
	const char *dir;              /* the prepared folder, .kiln/train/NAME (packed) */
	const char *name;             /* NAME: the archive's top folder and the workdir */
	const char *script;           /* kohya's script for the base's family */
	const char *args_json;        /* kohya's flags, a JSON array of strings */
	const char *output;           /* the .safetensors, relative to the workdir */
	/* filled by body/submit: what was sent */
	char dataset[1400];           /* "inline", or s3://BUCKET/PREFIX<sha256>.tar */
	char dataset_sha256[65];      /* of the tar */
	uint64_t dataset_bytes;
	int uploaded;                 /* 1: uploaded now; 0: inline, or S3 had it already */
};
/* The /run body (caller frees *body): the input {kiln: "train", name, workdir, script, args,
 * output} and the dataset: packed and inline as dataset_tar (base64; over what 10 MB carries:
 * KILN_E_SPEC before anything is sent), or with ep->dataset_upload uploaded to S3 under its
 * SHA-256 (skipped when a HEAD finds it) and named by dataset_url (presigned GET for the
 * job's ttl), dataset_s3, dataset_sha256, dataset_bytes; policy {executionTimeout, ttl}. */
int kiln_runpod_train_body(const struct kiln_runpod_train *rt, struct kiln_runpod_train_job *j,
			   char **body, struct kiln_error *e) KILN_MUST_CHECK;
/* The body, then POST /run: id (idcap bytes) the job id RunPod named. */
int kiln_runpod_train_submit(const struct kiln_runpod_train *rt,
			     struct kiln_runpod_train_job *j, char *id, size_t idcap,
			     struct kiln_error *e) KILN_MUST_CHECK;
/* GET /status/{id}: *status the HTTP status and *answer the body (at most cap bytes; caller
 * frees). KILN_E_NET when there is no answer after the retries (e names the endpoint). */
int kiln_runpod_train_status(const struct kiln_runpod_train *rt, const char *id, size_t cap,
			     long *status, char **answer, struct kiln_error *e) KILN_MUST_CHECK;
/* POST /cancel/{id}. */
int kiln_runpod_train_cancel(const struct kiln_runpod_train *rt, const char *id,
			     struct kiln_error *e) KILN_MUST_CHECK;
/* The LoRA of a COMPLETED job's output into dest (a temporary name, then renamed): lora_b64
 * decoded, or lora_url fetched (http or https, no API key sent, at most max bytes streamed to
 * the file); when lora_sha256 is given the bytes must have it. KILN_E_FAILED when the output
 * is wrong, KILN_E_NET when the URL cannot be fetched. */
int kiln_runpod_train_lora(const struct kiln_runpod_train *rt, const char *lora_b64,
			   const char *lora_url, const char *lora_sha256, uint64_t max,
			   const char *dest, struct kiln_error *e) KILN_MUST_CHECK;
/* A palette of at most `colors` (2..256) RGBA entries for the w x h RGBA image px, by
 * libimagequant (speed KILN_RECIPE_LIQ_SPEED, dithered or not), and every pixel's index into
 * it in idx (w * h bytes). libimagequant's k-means runs in the calling thread only, so the
 * palette does not depend on the machine. Used by compose (palette PNGs) and polish (trace). */
int kiln_render_quantize(const uint8_t *px, int w, int h, int colors, int dither,
			 uint8_t *idx, uint8_t (*pal)[4], int *npal, struct kiln_error *e)
	KILN_MUST_CHECK;

#endif
