/* engine_sagemaker: SageMaker asynchronous inference endpoints.
 *
 * One job: the worker's request JSON is PUT to S3 at input_location/INFERENCE-ID.json, then
 * POST RUNTIME/endpoints/NAME/async-invocations with X-Amzn-SageMaker-InputLocation,
 * -Inference-Id (kiln's job id: "kiln-" + the recipe's first 40 hex digits + "-" + attempt),
 * -RequestTTLSeconds, -InvocationTimeoutSeconds, -Content-Type and -Accept. The 202 names
 * where the answer will be (headers X-Amzn-SageMaker-OutputLocation and -FailureLocation,
 * botocore's sagemaker-runtime 2017-05-13 model); both are kept as the job's remote id, which
 * the dispatcher commits before anything else, so a job whose invocation was accepted is
 * polled after a kill -9, never invoked again. The output is polled with S3 GET (404 until it
 * is written; the failure location every eighth miss) until the TTL and the invocation
 * timeout have passed. Every request is signed (SigV4, service s3 or sagemaker) by the
 * dispatcher, which holds the keys: this file never sees them.
 *
 * Workers: a1111, a container serving A1111's txt2img (its body, its answer, read by the a1111
 * engine's own parser and checks); jumpstart, a JumpStart Stable Diffusion model (prompt,
 * negative_prompt, width, height, num_inference_steps, guidance_scale, seed) answering
 * {generated_images: [base64 JPEG]} to Accept: application/json;jpeg.
 * The upload of an attempt goes to the same key each time (a kill -9 during it uploads again,
 * which S3 overwrites); the wall time from the invocation's 202 to the output is the job's GPU
 * time (job->gpu_seconds), the figure SageMaker bills an async endpoint by.
 */
#include "render/engines/engine.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/image.h"
#include "util/sigv4.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { PH_PUT, PH_INVOKE, PH_POLL_OUT, PH_POLL_FAIL };

/* SageMaker's bounds: RequestTTLSeconds 60..21600, InvocationTimeoutSeconds 1..3600; kiln's
 * defaults when the spec says nothing (ttl, execution_timeout): the longest TTL, and the
 * endpoint's HTTP timeout as the invocation's */
#define SM_TTL 21600

static unsigned sm_ttl(const struct kiln_endpoint *ep)
{
	return ep->ttl ? ep->ttl : SM_TTL;
}

static unsigned sm_invocation_timeout(const struct kiln_endpoint *ep)
{
	if (ep->execution_timeout)
		return ep->execution_timeout;
	return ep->timeout < 1 ? 1 : ep->timeout > 3600 ? 3600 : (unsigned)ep->timeout;
}
#define SM_FAIL_EVERY 8
/* Each poll is an S3 GET, billed: the first at the endpoint's expected job time, then every
 * tenth of it (bench/dispatch -p sagemaker: requests and wall time per job) */
#define SM_POLL_FIRST 1.0
#define SM_POLL_STEP 0.1

const char *kiln_ai_missing_aws(const struct kiln_endpoint *ep)
{
	if (!ep->access_key_env)
		return NULL;
	if (!ep->access_key)
		return ep->access_key_env;
	if (!ep->secret_key)
		return ep->secret_key_env;
	if (ep->session_token_env && !ep->session_token)
		return ep->session_token_env;
	return NULL;
}

static int jumpstart(const struct kiln_ai_job *j)
{
	return j->ep->worker && !strcmp(j->ep->worker, "jumpstart");
}

/* The JumpStart body: what its Stable Diffusion inference script reads. */
static int js_build(const struct kiln_ai_request *rq, int redact, struct kiln_buf *out,
		    struct kiln_error *e)
{
	json_t *o = json_pack("{s:s, s:s, s:i, s:i, s:i, s:f, s:I, s:i}", "prompt", rq->prompt,
			      "negative_prompt", rq->negative, "width", rq->width, "height",
			      rq->height, "num_inference_steps", rq->steps, "guidance_scale",
			      rq->cfg, "seed", (json_int_t)rq->seed, "num_images_per_prompt", 1);
	int rc;
	(void)redact;
	if (!o)
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
	rc = kiln_ai_json_append(o, JSON_COMPACT | JSON_SORT_KEYS, out);
	json_decref(o);
	return rc ? kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory") : 0;
}

static int a1_build(const struct kiln_ai_request *rq, int redact, struct kiln_buf *out,
		    struct kiln_error *e)
{
	return kiln_engine_a1111.build_request(rq, redact, out, e);
}

/* kiln's id of the attempt, which SageMaker echoes (InferenceId, at most 64 characters) */
static void inference_id(const struct kiln_ai_job *j, char *out, size_t cap)
{
	snprintf(out, cap, "kiln-%.40s-%u", j->rq->recipe, j->attempt);
}

/* The URL of s3://bucket/key: virtual-hosted (https://BUCKET.s3.REGION.amazonaws.com/KEY,
 * or BUCKET. before the host of s3_base_url), or path-style (HOST/BUCKET/KEY). Virtual-hosted
 * needs a bucket name that is a DNS label run without dots for https (AWS's rule): others go
 * path-style. */
int kiln_s3_url(const struct kiln_endpoint *ep, const char *bucket, size_t blen,
		const char *key, char *out, size_t cap, struct kiln_error *e)
{
	struct kiln_buf k = KILN_BUF_INIT;
	int n;
	if (kiln_sigv4_encode(key, strlen(key), 1, &k))
		return kiln_error_set(e, KILN_E_NOMEM, ep->url, "out of memory");
	const char *base = ep->s3_base_url, *host;
	char aws[128];
	int virt = ep->s3_virtual && !memchr(bucket, '.', blen);
	if (!base) {
		snprintf(aws, sizeof aws, "https://s3.%s.amazonaws.com", ep->region);
		base = aws;
	}
	host = strstr(base, "://");
	host = host ? host + 3 : base;
	if (virt)
		n = snprintf(out, cap, "%.*s%.*s.%s/%s", (int)(host - base), base, (int)blen, bucket,
			     host, k.data ? k.data : "");
	else
		n = snprintf(out, cap, "%s/%.*s/%s", base, (int)blen, bucket, k.data ? k.data : "");
	kiln_buf_release(&k);
	if (n < 0 || (size_t)n >= cap)
		return kiln_error_set(e, KILN_E_SPEC, ep->url, "the S3 object s3://%.*s/%s makes a "
				      "URL longer than %zu bytes", (int)blen, bucket, key, cap - 1);
	return 0;
}

/* s3://bucket/key (as SageMaker wrote it) to its URL */
static int location_url(const struct kiln_endpoint *ep, const char *loc, char *out, size_t cap,
			struct kiln_error *e)
{
	const char *b, *slash;
	if (strncmp(loc, "s3://", 5) || !(slash = strchr(b = loc + 5, '/')) || slash == b)
		return kiln_error_set(e, KILN_E_NET, ep->url, "the endpoint named '%s' as where "
				      "the answer goes, which is not an s3:// location", loc);
	return kiln_s3_url(ep, b, (size_t)(slash - b), slash + 1, out, cap, e);
}

static enum kiln_step put_request(struct kiln_ai_job *j, struct kiln_http *next,
				  struct kiln_error *e)
{
	const struct kiln_endpoint *ep = j->ep;
	char id[96], key[1024];
	int rc;
	inference_id(j, id, sizeof id);
	snprintf(key, sizeof key, "%s%s.json", ep->s3_prefix ? ep->s3_prefix : "", id);
	if (kiln_s3_url(ep, ep->s3_bucket, strlen(ep->s3_bucket), key, next->path, sizeof next->path,
		   e))
		return KILN_STEP_FATAL;
	next->method = "PUT";
	next->absolute = 1;
	next->sign = "s3";
	kiln_buf_reset(&next->body);
	rc = jumpstart(j) ? js_build(j->rq, 0, &next->body, e)
			  : kiln_engine_a1111.build_request(j->rq, 0, &next->body, e);
	if (rc)
		return KILN_STEP_FATAL;
	j->phase = PH_PUT;
	return KILN_STEP_SEND;
}

static void poll_next(struct kiln_ai_job *j, struct kiln_http *next, int phase)
{
	json_t *o = json_loads(j->remote_id, 0, NULL);
	const char *loc = json_string_value(json_object_get(o, phase == PH_POLL_OUT ? "out"
										   : "fail"));
	struct kiln_error e;
	next->method = "GET";
	next->absolute = 1;
	next->sign = "s3";
	next->path[0] = 0;
	if (!loc || location_url(j->ep, loc, next->path, sizeof next->path, &e))
		next->path[0] = 0;
	j->phase = phase;
	json_decref(o);
}

static int sm_start(struct kiln_ai_job *j, struct kiln_http *next, struct kiln_error *e)
{
	j->gpu_seconds = 0;
	if (j->resumed && j->remote_id[0]) {
		json_t *o = json_loads(j->remote_id, 0, NULL);
		int ok = o && json_is_string(json_object_get(o, "out"));
		json_decref(o);
		if (ok) {
			/* accepted by an earlier run: look for its answer, never invoke again */
			poll_next(j, next, PH_POLL_OUT);
			if (next->path[0])
				return 0;
		}
	}
	j->remote_id[0] = 0;
	return put_request(j, next, e) == KILN_STEP_SEND ? 0 : (e->code ? e->code : KILN_E_SPEC);
}

/* The value of header name in j->headers (case-insensitive), trimmed, into out. */
static int header(const char *h, const char *name, char *out, size_t cap)
{
	size_t n = strlen(name);
	for (const char *l = h; l && *l;) {
		const char *end = strstr(l, "\n");
		if (!strncasecmp(l, name, n) && l[n] == ':') {
			const char *v = l + n + 1;
			size_t len;
			while (*v == ' ' || *v == '\t')
				v++;
			len = end ? (size_t)(end - v) : strlen(v);
			while (len && (v[len - 1] == '\r' || v[len - 1] == ' '))
				len--;
			if (len >= cap)
				return -1;
			memcpy(out, v, len);
			out[len] = 0;
			return 0;
		}
		l = end ? end + 1 : NULL;
	}
	return -1;
}

static enum kiln_step invoke(struct kiln_ai_job *j, struct kiln_http *next, struct kiln_error *e)
{
	const struct kiln_endpoint *ep = j->ep;
	char id[96];
	inference_id(j, id, sizeof id);
	next->method = "POST";
	next->absolute = 0;
	next->sign = "sagemaker";
	next->no_resend = 1; /* SageMaker queues it even when the answer is lost */
	next->want_headers = 1;
	kiln_buf_reset(&next->body);
	snprintf(next->path, sizeof next->path, "/async-invocations");
	if ((size_t)snprintf(next->headers, sizeof next->headers,
			     "X-Amzn-SageMaker-InputLocation: s3://%s/%s%s.json\n"
			     "X-Amzn-SageMaker-Inference-Id: %s\n"
			     "X-Amzn-SageMaker-RequestTTLSeconds: %u\n"
			     "X-Amzn-SageMaker-InvocationTimeoutSeconds: %u\n"
			     "X-Amzn-SageMaker-Content-Type: application/json\n"
			     "X-Amzn-SageMaker-Accept: %s",
			     ep->s3_bucket, ep->s3_prefix ? ep->s3_prefix : "", id, id, sm_ttl(ep),
			     sm_invocation_timeout(ep), jumpstart(j) ? "application/json;jpeg" : "application/json") >=
	    sizeof next->headers)
		return kiln_error_set(e, KILN_E_SPEC, ep->url, "the input location is too long"),
		       KILN_STEP_FATAL;
	j->phase = PH_INVOKE;
	return KILN_STEP_SEND;
}

/* A JumpStart answer: generated_images[0], base64 JPEG. */
static enum kiln_step js_output(struct kiln_ai_job *j, const char *body, size_t len,
				struct kiln_error *e)
{
	json_error_t je;
	json_t *o = json_loadb(body, len, 0, &je), *img;
	enum kiln_step st = KILN_STEP_RETRY;
	if (!o) {
		kiln_error_set(e, KILN_E_NET, NULL, "the output is not JSON (%s at byte %d)", je.text,
			       je.position);
		return st;
	}
	img = json_array_get(json_object_get(o, "generated_images"), 0);
	kiln_buf_reset(&j->image);
	if (!json_is_string(img))
		kiln_error_set(e, KILN_E_NET, NULL, "the output has no generated_images[0]");
	else if (kiln_b64_decode(json_string_value(img), json_string_length(img), &j->image))
		kiln_error_set(e, KILN_E_IMAGE, NULL, "generated_images[0] is not valid base64");
	else if (j->image.len >= 8 && memcmp(j->image.data, "\x89PNG\r\n\x1a\n", 8)) {
		/* JPEG (Accept: application/json;jpeg): the store keeps PNGs for image.format png,
		 * and the render stage re-encodes from there for webp/jpeg */
		struct kiln_buf png = KILN_BUF_INIT;
		if (!kiln_image_png(j->image.data, j->image.len, "generated_images[0]", &png, e)) {
			kiln_buf_release(&j->image);
			j->image = png;
			j->seed_used = j->rq->seed;
			st = KILN_STEP_DONE;
		} else {
			kiln_buf_release(&png);
		}
	} else {
		j->seed_used = j->rq->seed;
		st = KILN_STEP_DONE;
	}
	json_decref(o);
	return st;
}

static enum kiln_step sm_response(struct kiln_ai_job *j, long status, const char *body,
				  size_t len, struct kiln_http *next, struct kiln_error *e)
{
	char ex[300];
	enum kiln_step st;
	next->want_headers = 0;
	next->headers[0] = 0;
	next->no_resend = 0;
	switch (j->phase) {
	case PH_PUT:
		if (status == 200)
			return invoke(j, next, e);
		kiln_ai_excerpt(ex, sizeof ex, body, len);
		kiln_error_set(e, KILN_E_NET, NULL, "the upload to %s answered %s%ld: %s",
			       j->ep->input_location, status ? "HTTP " : "", status,
			       status ? ex : e->msg);
		if (status == 400 || status == 404)
			return KILN_STEP_FATAL; /* no such bucket, a bad request: not transient */
		return status == 429 || status == 503 ? KILN_STEP_BUSY : KILN_STEP_RETRY;
	case PH_INVOKE: {
		char out[400], fail[400];
		json_t *o;
		if (status == 202 && j->headers &&
		    !header(j->headers, "X-Amzn-SageMaker-OutputLocation", out, sizeof out)) {
			if (header(j->headers, "X-Amzn-SageMaker-FailureLocation", fail, sizeof fail))
				fail[0] = 0;
			o = json_pack("{s:s, s:s, s:f}", "out", out, "fail", fail, "at",
				      kiln_clock_unix());
			{
				struct kiln_buf b = KILN_BUF_INIT;
				int bad = !o || kiln_ai_json_append(o, JSON_COMPACT | JSON_SORT_KEYS,
								    &b) ||
					  b.len >= sizeof j->remote_id;
				if (!bad)
					memcpy(j->remote_id, b.data, b.len + 1);
				kiln_buf_release(&b);
				json_decref(o);
				if (bad) {
					kiln_error_set(e, KILN_E_NOMEM, NULL, "cannot keep the "
						       "output location");
					return KILN_STEP_RETRY;
				}
			}
			j->remote_new = 1;
			j->polls = 0;
			j->misses = 0;
			poll_next(j, next, PH_POLL_OUT);
			return KILN_STEP_POLL;
		}
		kiln_ai_excerpt(ex, sizeof ex, body, len);
		if (status == 202) {
			kiln_error_set(e, KILN_E_NET, NULL, "async-invocations answered 202 without "
				       "X-Amzn-SageMaker-OutputLocation: %s", ex);
			return KILN_STEP_RETRY;
		}
		kiln_error_set(e, KILN_E_NET, NULL, "async-invocations answered %s%ld: %s",
			       status ? "HTTP " : "", status, status ? ex : e->msg);
		if (status == 400 || status == 404)
			return KILN_STEP_FATAL; /* ValidationError: the same everywhere */
		return status == 429 ? KILN_STEP_BUSY : KILN_STEP_RETRY;
	}
	case PH_POLL_OUT:
	case PH_POLL_FAIL: {
		json_t *o = json_loads(j->remote_id, 0, NULL);
		double at = json_real_value(json_object_get(o, "at"));
		int has_fail = json_string_length(json_object_get(o, "fail")) > 0;
		json_decref(o);
		if (status == 200 && j->phase == PH_POLL_OUT) {
			j->gpu_seconds = at > 0 ? kiln_clock_unix() - at : 0;
			if (jumpstart(j))
				return js_output(j, body, len, e);
			/* the A1111 container's answer, read and checked as A1111's own */
			st = kiln_engine_a1111.on_response(j, 200, body, len, next, e);
			if (st != KILN_STEP_DONE)
				kiln_error_prefix(e, "the output of %s: ", j->ep->url);
			return st;
		}
		if (status == 200) {
			kiln_ai_excerpt(ex, sizeof ex, body, len);
			kiln_error_set(e, KILN_E_FAILED, NULL, "the endpoint failed the job "
				       "(its failure object): %s", ex);
			return KILN_STEP_RETRY;
		}
		if (status == 404) {
			j->poll_errors = 0;
			if (at > 0 && kiln_clock_unix() - at > sm_ttl(j->ep) +
							       sm_invocation_timeout(j->ep) + 60) {
				kiln_error_set(e, KILN_E_NET, NULL, "no output after the request's "
					       "TTL (%u s) and its invocation timeout (%u s)",
					       sm_ttl(j->ep), sm_invocation_timeout(j->ep));
				return KILN_STEP_RETRY;
			}
			if (j->phase == PH_POLL_OUT && has_fail && ++j->misses % SM_FAIL_EVERY == 0) {
				poll_next(j, next, PH_POLL_FAIL);
				return KILN_STEP_SEND;
			}
			poll_next(j, next, PH_POLL_OUT);
			return KILN_STEP_POLL;
		}
		/* S3 unreachable or failing: the job may still be running there */
		if (++j->poll_errors < KILN_POLL_ERRORS) {
			poll_next(j, next, PH_POLL_OUT);
			return KILN_STEP_POLL;
		}
		kiln_ai_excerpt(ex, sizeof ex, body, len);
		kiln_error_set(e, KILN_E_NET, NULL, "polling the output answered %s%ld: %s",
			       status ? "HTTP " : "", status, status ? ex : e->msg);
		return KILN_STEP_RETRY;
	}
	}
	return kiln_error_set(e, KILN_E_STATE, NULL, "sagemaker: unknown phase"), KILN_STEP_FATAL;
}

/* The output carries one base64 image (A1111: one more per ControlNet unit) */
static size_t sm_cap(const struct kiln_ai_request *rq, const char *path)
{
	if (rq && strstr(path, "://"))
		return kiln_ai_reply_b64(rq, 1 + (unsigned)rq->ncontrols);
	return KILN_AI_REPLY_JSON;
}

int kiln_sagemaker_dry_run(const struct kiln_endpoint *ep, const struct kiln_ai_request *rq,
			   struct kiln_buf *out)
{
	char url[1024];
	struct kiln_ai_job j;
	struct kiln_error e;
	char id[96];
	memset(&j, 0, sizeof j);
	j.rq = rq;
	j.ep = ep;
	j.attempt = 1;
	inference_id(&j, id, sizeof id);
	snprintf(url, sizeof url, "%s%s.json", ep->s3_prefix, id);
	{
		char key[1024];
		snprintf(key, sizeof key, "%s", url);
		if (kiln_s3_url(ep, ep->s3_bucket, strlen(ep->s3_bucket), key, url, sizeof url, &e))
			return KILN_E_NOMEM;
	}
	return kiln_buf_addf(out, "# 1. PUT %s (the body below; signed for s3)\n"
			     "# 2. POST %s/async-invocations (signed for sagemaker)\n"
			     "#    X-Amzn-SageMaker-InputLocation: s3://%s/%s%s.json\n"
			     "#    X-Amzn-SageMaker-Inference-Id: %s\n"
			     "#    X-Amzn-SageMaker-RequestTTLSeconds: %u\n"
			     "#    X-Amzn-SageMaker-InvocationTimeoutSeconds: %u\n"
			     "#    X-Amzn-SageMaker-Accept: %s\n"
			     "# AWS keys from $%s and $%s%s%s%s, not shown\n",
			     url, ep->url, ep->s3_bucket, ep->s3_prefix, id, id, sm_ttl(ep),
			     sm_invocation_timeout(ep),
			     ep->worker && !strcmp(ep->worker, "jumpstart") ? "application/json;jpeg"
									    : "application/json",
			     ep->access_key_env, ep->secret_key_env,
			     ep->session_token_env ? " (session token from $" : "",
			     ep->session_token_env ? ep->session_token_env : "",
			     ep->session_token_env ? ")" : "");
}

/* The health check: a signed ListObjectsV2 of the input folder, which proves the keys, the
 * region and the bucket at once (filled by the dispatcher through health_request). */
static int sm_health(const struct kiln_endpoint *ep, struct kiln_http *next,
		     struct kiln_error *e)
{
	struct kiln_buf q = KILN_BUF_INIT;
	char base[1024];
	int n;
	if (kiln_s3_url(ep, ep->s3_bucket, strlen(ep->s3_bucket), "", base, sizeof base, e))
		return e->code;
	if (kiln_sigv4_encode(ep->s3_prefix, strlen(ep->s3_prefix), 0, &q))
		return kiln_error_set(e, KILN_E_NOMEM, ep->url, "out of memory");
	n = snprintf(next->path, sizeof next->path, "%s?list-type=2&max-keys=1&prefix=%s", base,
		     q.data ? q.data : "");
	kiln_buf_release(&q);
	if (n < 0 || (size_t)n >= sizeof next->path)
		return kiln_error_set(e, KILN_E_SPEC, ep->url, "the input location is too long");
	next->method = "GET";
	next->absolute = 1;
	next->sign = "s3";
	return 0;
}

const struct kiln_engine kiln_engine_sagemaker = {
	.name = "sagemaker",
	.health_path = "",
	.build_request = a1_build,
	.start = sm_start,
	.on_response = sm_response,
	.reply_cap = sm_cap,
	.health_request = sm_health,
	.poll_first = SM_POLL_FIRST,
	.poll_step = SM_POLL_STEP,
};

const struct kiln_engine kiln_engine_sagemaker_jumpstart = {
	.name = "sagemaker-jumpstart",
	.health_path = "",
	.build_request = js_build,
	.start = sm_start,
	.on_response = sm_response,
	.reply_cap = sm_cap,
	.health_request = sm_health,
	.poll_first = SM_POLL_FIRST,
	.poll_step = SM_POLL_STEP,
};
