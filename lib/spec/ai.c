/* ai: the AI engines' part of kiln.yaml: the generate: block (prompt templates, sampler,
 * size, endpoints) and the keys a trait may carry for them (prompt, negative, lora,
 * controlnet).
 *
 * What an endpoint's engine cannot honour is refused at load time (check_engine), so a
 * render never silently drops a setting on the wire. Template placeholders must name layers.
 * Secrets never sit in kiln.yaml: an endpoint names environment variables, which the command
 * reads. Sizes: a few endpoints, a few LoRA per trait; nothing here is hot.
 */
#include "spec/internal.h"
#include "kiln/spec.h"
#include "util/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* --- AI engines: per-trait prompt/negative/lora/controlnet and the generate: block --------- */

static const char *const ai_engines[] = {"a1111", "comfyui", "sdcpp"};

int is_ai_engine(const char *e)
{
	for (size_t i = 0; i < 3; i++)
		if (!strcmp(e, ai_engines[i]))
			return 1;
	return 0;
}

static int parse_loras(struct ctx *c, struct fy_node *n, const char *what,
		       struct kiln_lora **out, size_t *nout)
{
	static const char *const keys[] = {"name", "weight"};
	struct fy_node *v;
	void *it = NULL;
	int rc;
	if (fy_node_get_type(n) != FYNT_SEQUENCE)
		return fail(c, n, "%s: lora must be a list of {name, weight}, got %s "
			    "(lora: [{name: crown_v2, weight: 0.8}])", what, type_name(n));
	*out = kiln_calloc((size_t)fy_node_sequence_item_count(n) + 1, sizeof **out);
	if (!*out)
		return nomem(c);
	while ((v = fy_node_sequence_iterate(n, &it))) {
		struct kiln_lora *l = &(*out)[*nout];
		struct fy_node *x;
		(*nout)++;
		l->weight = 1;
		if ((rc = want_map(c, v, "a lora")) || (rc = check_keys(c, v, "a lora", keys, 2)))
			return rc;
		if (!(x = get(v, "name")))
			return fail(c, v, "%s: a lora needs a name ({name: crown_v2, weight: 0.8})",
				    what);
		if ((rc = get_nonempty(c, x, "lora name", &l->name)))
			return rc;
		if (strpbrk(l->name, "<>:"))
			return fail(c, x, "lora name '%s' must not contain '<', '>' or ':'", l->name);
		if ((x = get(v, "weight")) && (rc = get_range(c, x, "lora weight", -10, 10, &l->weight)))
			return rc;
	}
	return 0;
}

static int parse_controlnet(struct ctx *c, struct fy_node *n, const char *what,
			    struct kiln_controlnet **out)
{
	static const char *const keys[] = {"image", "model", "module", "weight", "control_mode",
					   "guidance_start", "guidance_end"};
	static const char *const modes[] = {"Balanced", "My prompt is more important",
					    "ControlNet is more important"};
	struct kiln_controlnet *cn;
	struct fy_node *x;
	int rc;
	if (fy_node_get_type(n) != FYNT_MAPPING)
		return fail(c, n, "%s: controlnet must be a mapping, got %s (controlnet: {image: "
			    "controlnet/pose.png, model: control_v11p_sd15_openpose})", what,
			    type_name(n));
	if ((rc = check_keys(c, n, "controlnet", keys, 7)))
		return rc;
	if (!(cn = *out = kiln_calloc(1, sizeof *cn)))
		return nomem(c);
	cn->weight = 1;
	cn->guidance_end = 1;
	if (!(x = get(n, "image")))
		return fail(c, n, "%s: controlnet needs an image (image: controlnet/pose.png)", what);
	if ((rc = get_nonempty(c, x, "controlnet image", &cn->image)) ||
	    (rc = check_file(c, x, cn->image, "controlnet image")))
		return rc;
	if (!(x = get(n, "model")))
		return fail(c, n, "%s: controlnet needs a model (model: control_v11p_sd15_canny)",
			    what);
	if ((rc = get_nonempty(c, x, "controlnet model", &cn->model)))
		return rc;
	if ((x = get(n, "module")) && (rc = get_nonempty(c, x, "controlnet module", &cn->module)))
		return rc;
	if (!cn->module && !(cn->module = kiln_strdup("none")))
		return nomem(c);
	if ((x = get(n, "weight")) && (rc = get_range(c, x, "controlnet weight", 0, 10, &cn->weight)))
		return rc;
	if ((x = get(n, "guidance_start")) &&
	    (rc = get_range(c, x, "controlnet guidance_start", 0, 1, &cn->guidance_start)))
		return rc;
	if ((x = get(n, "guidance_end")) &&
	    (rc = get_range(c, x, "controlnet guidance_end", 0, 1, &cn->guidance_end)))
		return rc;
	if (cn->guidance_start > cn->guidance_end)
		return fail(c, n, "%s: controlnet guidance_start (%g) is after guidance_end (%g)",
			    what, cn->guidance_start, cn->guidance_end);
	if ((x = get(n, "control_mode"))) {
		if ((rc = get_nonempty(c, x, "controlnet control_mode", &cn->control_mode)))
			return rc;
		for (size_t i = 0; i < 3; i++)
			if (!strcmp(cn->control_mode, modes[i]))
				return 0;
		return fail(c, x, "controlnet control_mode must be 'Balanced', 'My prompt is more "
			    "important' or 'ControlNet is more important', got '%s'",
			    cn->control_mode);
	}
	if (!(cn->control_mode = kiln_strdup("Balanced")))
		return nomem(c);
	return 0;
}

/* The AI keys of a trait (prompt, negative, lora, controlnet); any engine may carry them. */
int parse_trait_ai(struct ctx *c, struct fy_node *n, const char *what, struct kiln_trait *t)
{
	struct fy_node *v;
	int rc;
	if ((v = get(n, "prompt")) && (rc = get_str(c, v, "trait prompt", &t->prompt)))
		return rc;
	if ((v = get(n, "negative")) && (rc = get_str(c, v, "trait negative", &t->negative)))
		return rc;
	if ((v = get(n, "lora")) && (rc = parse_loras(c, v, what, &t->loras, &t->nloras)))
		return rc;
	if ((v = get(n, "controlnet")) && (rc = parse_controlnet(c, v, what, &t->controlnet)))
		return rc;
	return 0;
}

/* {Layer} placeholders must name layers (or {id}, {name}). */
static int check_template(struct ctx *c, struct fy_node *n, const char *tmpl, const char *what)
{
	for (const char *p = tmpl; (p = strchr(p, '{')); p++) {
		const char *q = strchr(p, '}');
		char name[256];
		if (!q)
			return fail(c, n, "%s has a '{' without '}'", what);
		if ((size_t)(q - p - 1) >= sizeof name)
			return fail(c, n, "%s: placeholder too long", what);
		memcpy(name, p + 1, (size_t)(q - p - 1));
		name[q - p - 1] = 0;
		if (strcmp(name, "id") && strcmp(name, "name") &&
		    kiln_spec_layer_index(c->s, name) < 0) {
			const char *hint = NULL;
			size_t best = 3;
			for (size_t l = 0; l < c->s->nlayers; l++) {
				size_t d = edit_distance(name, c->s->layers[l].name);
				if (d < best) {
					best = d;
					hint = c->s->layers[l].name;
				}
			}
			if (hint)
				return fail(c, n, "%s names {%s}, which is not a layer: did you mean "
					    "{%s}?", what, name, hint);
			return fail(c, n, "%s names {%s}, which is not a layer (placeholders: a layer "
				    "name, {id} or {name})", what, name);
		}
	}
	return 0;
}

static int get_lifetimes(struct ctx *c, struct fy_node *n, struct kiln_endpoint *ep,
			 const char *platform, uint64_t ex_lo, uint64_t ex_hi, uint64_t ttl_lo,
			 uint64_t ttl_hi);

/* What every platform's endpoint may carry: concurrency, price, timeouts. */
static int parse_common(struct ctx *c, struct fy_node *n, struct kiln_endpoint *ep)
{
	struct fy_node *x;
	uint64_t k;
	int rc;
	if ((x = get(n, "concurrency"))) {
		if ((rc = get_u64(c, x, "endpoint concurrency", 1, 1024, &k)))
			return rc;
		ep->concurrency = (unsigned)k;
	}
	if ((x = get(n, "cost_per_hour")) &&
	    (rc = get_range(c, x, "endpoint cost_per_hour", 0, 10000, &ep->cost_per_hour)))
		return rc;
	if ((x = get(n, "connect_timeout")) &&
	    (rc = get_range(c, x, "endpoint connect_timeout", 0.05, 600, &ep->connect_timeout)))
		return rc;
	if ((x = get(n, "timeout")) &&
	    (rc = get_range(c, x, "endpoint timeout", 0.05, 86400, &ep->timeout)))
		return rc;
	return 0;
}

/* An http(s) address without spaces, credentials or a trailing slash, in *url. */
static int check_url(struct ctx *c, struct fy_node *x, const char *what, char *url)
{
	size_t len;
	if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))
		return fail(c, x, "%s '%s' must start with http:// or https:// "
			    "(url: \"http://gpu-1:7860\")", what, url);
	if (strpbrk(url, " \t\r\n") || !url[url[4] == 's' ? 8 : 7] ||
	    url[url[4] == 's' ? 8 : 7] == '/')
		return fail(c, x, "%s '%s' is not a server address: write it as "
			    "http://HOST:PORT (no spaces)", what, url);
	if (strchr(url, '@'))
		return fail(c, x, "%s must not hold credentials: name an environment "
			    "variable with auth_env or token_env instead", what);
	len = strlen(url);
	while (len > 8 && url[len - 1] == '/')
		url[--len] = 0;
	return 0;
}

static const char *const workers[] = {"comfyui", "a1111"};

/* platform: runpod. A serverless endpoint at {base_url}/v2/{endpoint_id} running one of the
 * official workers (worker-comfyui, worker-a1111); the API key comes from the environment
 * variable auth_env names, sent as a bearer token. With training set, a trainer's endpoint
 * (training[].runpod, lib/spec/training.c), which runs no image worker: neither platform nor
 * worker is a key there. */
static int parse_train_s3(struct ctx *c, struct fy_node *n, struct kiln_endpoint *ep);

int parse_runpod(struct ctx *c, struct fy_node *n, struct kiln_endpoint *ep, int training)
{
	static const char *const keys[] = {"endpoint_id", "auth_env", "concurrency",
					   "cost_per_hour", "base_url", "connect_timeout",
					   "timeout", "execution_timeout", "ttl", "dataset_upload",
					   "s3", "platform", "worker"};
	static const char *const image_keys[] = {"endpoint_id", "auth_env", "concurrency",
						 "cost_per_hour", "base_url", "connect_timeout",
						 "timeout", "execution_timeout", "ttl", "platform",
						 "worker"};
	struct fy_node *x;
	const char *base;
	size_t len;
	int rc;
	if ((rc = training ? check_keys(c, n, "a training RunPod endpoint", keys, 11)
			   : check_keys(c, n, "a RunPod endpoint", image_keys, 11)))
		return rc;
	if (!(x = get(n, "endpoint_id")))
		return fail(c, n, "a RunPod endpoint needs endpoint_id (the id in "
			    "https://api.runpod.ai/v2/ID)");
	if ((rc = get_nonempty(c, x, "endpoint_id", &ep->endpoint_id)))
		return rc;
	if (strspn(ep->endpoint_id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				    "0123456789-_") != strlen(ep->endpoint_id))
		return fail(c, x, "endpoint_id '%s' is not a RunPod endpoint id (letters, digits, "
			    "'-' and '_')", ep->endpoint_id);
	if (!training && !(x = get(n, "worker")))
		return fail(c, n, "RunPod endpoint %s needs worker: comfyui or a1111 (which "
			    "worker image it runs)", ep->endpoint_id);
	if (!training && (rc = get_nonempty(c, x, "endpoint worker", &ep->worker)))
		return rc;
	if (!training && strcmp(ep->worker, "comfyui") && strcmp(ep->worker, "a1111")) {
		const char *hint = closest(ep->worker, workers, 2);
		return fail(c, x, "endpoint worker must be comfyui or a1111, got '%s'%s%s%s",
			    ep->worker, hint ? ": did you mean '" : "", hint ? hint : "",
			    hint ? "'?" : "");
	}
	if (!(x = get(n, "auth_env")))
		return fail(c, n, "RunPod endpoint %s needs auth_env: the environment variable "
			    "holding its API key", ep->endpoint_id);
	/* RunPod takes the key as a bearer token */
	if ((rc = get_nonempty(c, x, "endpoint auth_env", &ep->token_env)))
		return rc;
	if ((x = get(n, "base_url"))) {
		if ((rc = get_nonempty(c, x, "endpoint base_url", &ep->base_url)) ||
		    (rc = check_url(c, x, "endpoint base_url", ep->base_url)))
			return rc;
	}
	base = ep->base_url ? ep->base_url : "https://api.runpod.ai";
	len = strlen(base) + strlen(ep->endpoint_id) + 8;
	if (!(ep->url = kiln_malloc(len)) || !(ep->engine = kiln_strdup("runpod")))
		return nomem(c);
	snprintf(ep->url, len, "%s/v2/%s", base, ep->endpoint_id);
	/* RunPod's bounds (docs.runpod.io serverless/endpoints/send-requests, "Execution
	 * policies"): executionTimeout at least 5 s, ttl at least 10 s, both at most 7 days. The
	 * ttl counts from submission and covers the queue and the run. */
	if ((rc = get_lifetimes(c, n, ep, "RunPod", 5, 604800, 10, 604800)))
		return rc;
	{
		unsigned ex = ep->execution_timeout ? ep->execution_timeout : training ? 86400 : 600;
		if (ep->ttl && ep->ttl < ex)
			return fail(c, get(n, "ttl"), "RunPod endpoint %s: ttl (%u s) is shorter than "
				    "execution_timeout (%u s), but RunPod drops a job when its ttl runs "
				    "out, queued or running: make ttl at least execution_timeout plus "
				    "the queue time you accept", ep->endpoint_id, ep->ttl, ex);
	}
	if (training && (rc = parse_train_s3(c, n, ep)))
		return rc;
	return parse_common(c, n, ep);
}

/* execution_timeout and ttl (whole seconds) of a cloud endpoint, within the platform's
 * bounds. */
static int get_lifetimes(struct ctx *c, struct fy_node *n, struct kiln_endpoint *ep,
			 const char *platform, uint64_t ex_lo, uint64_t ex_hi, uint64_t ttl_lo,
			 uint64_t ttl_hi)
{
	char what[64];
	struct fy_node *x;
	uint64_t k;
	int rc;
	if ((x = get(n, "execution_timeout"))) {
		snprintf(what, sizeof what, "%s execution_timeout (seconds)", platform);
		if ((rc = get_u64(c, x, what, ex_lo, ex_hi, &k)))
			return rc;
		ep->execution_timeout = (unsigned)k;
	}
	if ((x = get(n, "ttl"))) {
		snprintf(what, sizeof what, "%s ttl (seconds)", platform);
		if ((rc = get_u64(c, x, what, ttl_lo, ttl_hi, &k)))
			return rc;
		ep->ttl = (unsigned)k;
	}
	return 0;
}

/* An http(s) base URL without credentials or spaces, trailing slashes cut. */
static int get_base_url(struct ctx *c, struct fy_node *x, const char *what, char **out)
{
	size_t len;
	int rc;
	if ((rc = get_nonempty(c, x, what, out)))
		return rc;
	if ((strncmp(*out, "http://", 7) && strncmp(*out, "https://", 8)) ||
	    strpbrk(*out, " \t\r\n") || !(*out)[(*out)[4] == 's' ? 8 : 7] ||
	    (*out)[(*out)[4] == 's' ? 8 : 7] == '/')
		return fail(c, x, "%s '%s' must be a server address, http://HOST:PORT or "
			    "https://HOST (no spaces)", what, *out);
	if (strchr(*out, '@') || strchr(*out, '?'))
		return fail(c, x, "%s must hold neither credentials nor a query: name "
			    "environment variables for the credentials instead", what);
	len = strlen(*out);
	while (len > 8 && (*out)[len - 1] == '/')
		(*out)[--len] = 0;
	return 0;
}

/* input_location: s3://BUCKET/PREFIX/ (bucket as S3 names them: 3 to 63 of a-z 0-9 . -,
 * a letter or digit at each end; the prefix "" or ending in '/', one added when missing). */
static int parse_s3_location(struct ctx *c, struct fy_node *x, struct kiln_endpoint *ep)
{
	const char *v = ep->input_location, *b, *slash;
	size_t blen;
	int ok = !strncmp(v, "s3://", 5);
	b = v + 5;
	slash = ok ? strchr(b, '/') : NULL;
	blen = ok ? (slash ? (size_t)(slash - b) : strlen(b)) : 0;
	for (size_t i = 0; ok && i < blen; i++)
		ok = (b[i] >= 'a' && b[i] <= 'z') || (b[i] >= '0' && b[i] <= '9') || b[i] == '.' ||
		     b[i] == '-';
	if (ok && (blen < 3 || blen > 63 || b[0] == '.' || b[0] == '-' || b[blen - 1] == '.' ||
		   b[blen - 1] == '-'))
		ok = 0;
	if (ok && slash && strpbrk(slash, " \t\r\n\\?#"))
		ok = 0;
	if (!ok)
		return fail(c, x, "input_location '%s' is not an S3 folder: write "
			    "s3://BUCKET/PREFIX/ (a bucket name of 3 to 63 lower-case letters, "
			    "digits, '.' or '-')", v);
	if (!(ep->s3_bucket = kiln_calloc(1, blen + 1)))
		return nomem(c);
	memcpy(ep->s3_bucket, b, blen);
	slash = slash ? slash + 1 : "";
	while (*slash == '/')
		slash++;
	if (!(ep->s3_prefix = kiln_calloc(1, strlen(slash) + 2)))
		return nomem(c);
	strcpy(ep->s3_prefix, slash);
	if (*slash && slash[strlen(slash) - 1] != '/')
		strcat(ep->s3_prefix, "/");
	return 0;
}

/* A training RunPod endpoint's dataset_upload (inline: the tar as base64 in the /run body,
 * the default; s3: uploaded to S3 and named by a presigned URL) and its s3: {bucket, prefix,
 * region, base_url, addressing, access_key_env, secret_key_env, session_token_env}: the
 * SageMaker endpoint's S3 settings under shorter names (the same fields of kiln_endpoint). */
static int parse_train_s3(struct ctx *c, struct fy_node *n, struct kiln_endpoint *ep)
{
	static const char *const keys[] = {"bucket", "prefix", "region", "base_url",
					   "addressing", "access_key_env", "secret_key_env",
					   "session_token_env"};
	static const char *const envs[] = {"access_key_env", "secret_key_env"};
	char **envp[] = {&ep->access_key_env, &ep->secret_key_env};
	struct fy_node *x = get(n, "dataset_upload"), *s3 = get(n, "s3"), *y;
	const char *v = x ? fy_node_get_scalar0(x) : "inline", *bucket, *prefix = "";
	size_t len;
	int rc;
	if (!v || (strcmp(v, "inline") && strcmp(v, "s3")))
		return fail(c, x, "dataset_upload must be inline (the dataset in the /run body, up "
			    "to 10 MB) or s3 (uploaded to the s3: bucket), got '%s'", v ? v : "");
	ep->dataset_upload = !strcmp(v, "s3");
	if (!ep->dataset_upload) {
		if (s3)
			return fail(c, s3, "s3: is used with dataset_upload: s3 only: add "
				    "dataset_upload: s3, or remove s3:");
		return 0;
	}
	if (!s3)
		return fail(c, n, "dataset_upload: s3 needs s3: {bucket, region, access_key_env, "
			    "secret_key_env}, the bucket the dataset is uploaded to");
	if ((rc = want_map(c, s3, "s3")) ||
	    (rc = check_keys(c, s3, "the training S3 settings", keys, sizeof keys / sizeof *keys)))
		return rc;
	if (!(y = get(s3, "bucket")) || !(bucket = fy_node_get_scalar0(y)))
		return fail(c, s3, "s3: needs bucket (the bucket's name)");
	if ((y = get(s3, "prefix")) && !(prefix = fy_node_get_scalar0(y)))
		return fail(c, y, "s3 prefix must be a string (a key prefix, like datasets/)");
	len = strlen(bucket) + strlen(prefix) + 8;
	if (!(ep->input_location = kiln_malloc(len)))
		return nomem(c);
	snprintf(ep->input_location, len, "s3://%s/%s", bucket, prefix);
	if ((rc = parse_s3_location(c, get(s3, "bucket"), ep)))
		return rc;
	if (!(y = get(s3, "region")))
		return fail(c, s3, "s3: needs region (region: us-east-1)");
	if ((rc = get_nonempty(c, y, "s3 region", &ep->region)))
		return rc;
	for (const char *r = ep->region; *r; r++)
		if (!((*r >= 'a' && *r <= 'z') || (*r >= '0' && *r <= '9') || *r == '-'))
			return fail(c, y, "s3 region '%s' is not an AWS region (us-east-1, "
				    "eu-west-2, ...)", ep->region);
	for (size_t i = 0; i < 2; i++) {
		if (!(y = get(s3, envs[i])))
			return fail(c, s3, "s3: needs %s, the name of the environment variable "
				    "holding the AWS %s (credentials never go in kiln.yaml)",
				    envs[i], i ? "secret access key" : "access key id");
		if ((rc = get_nonempty(c, y, envs[i], envp[i])))
			return rc;
	}
	if ((y = get(s3, "session_token_env")) &&
	    (rc = get_nonempty(c, y, "session_token_env", &ep->session_token_env)))
		return rc;
	if ((y = get(s3, "base_url")) && (rc = get_base_url(c, y, "s3 base_url",
							    &ep->s3_base_url)))
		return rc;
	ep->s3_virtual = !ep->s3_base_url;
	if ((y = get(s3, "addressing"))) {
		v = fy_node_get_scalar0(y);
		if (v && !strcmp(v, "virtual"))
			ep->s3_virtual = 1;
		else if (v && !strcmp(v, "path"))
			ep->s3_virtual = 0;
		else
			return fail(c, y, "s3 addressing must be virtual (https://BUCKET.HOST/KEY) "
				    "or path (https://HOST/BUCKET/KEY), got '%s'", v ? v : "");
	}
	return 0;
}

/* platform: sagemaker. An asynchronous inference endpoint: requests go to S3
 * (input_location), invocations to the runtime, both signed with the keys the named
 * environment variables hold. Its url becomes RUNTIME/endpoints/NAME (messages, catalog). */
static int parse_sagemaker(struct ctx *c, struct fy_node *n, struct kiln_endpoint *ep)
{
	static const char *const keys[] = {
		"platform", "region", "endpoint_name", "input_location", "worker",
		"access_key_env", "secret_key_env", "session_token_env", "concurrency",
		"cost_per_hour", "base_url", "s3_base_url", "s3_addressing", "connect_timeout",
		"timeout", "execution_timeout", "ttl"};
	static const char *const sm_workers[] = {"a1111", "jumpstart"};
	struct fy_node *x;
	int rc;
	if ((rc = check_keys(c, n, "a sagemaker endpoint", keys, sizeof keys / sizeof *keys)))
		return rc;
	if (!(x = get(n, "region")))
		return fail(c, n, "a sagemaker endpoint needs region (region: us-east-1)");
	if ((rc = get_nonempty(c, x, "sagemaker region", &ep->region)))
		return rc;
	for (const char *r = ep->region; *r; r++)
		if (!((*r >= 'a' && *r <= 'z') || (*r >= '0' && *r <= '9') || *r == '-'))
			return fail(c, x, "sagemaker region '%s' is not an AWS region (us-east-1, "
				    "eu-west-2, ...)", ep->region);
	if (!(x = get(n, "endpoint_name")))
		return fail(c, n, "a sagemaker endpoint needs endpoint_name (the name the "
			    "SageMaker console lists)");
	if ((rc = get_nonempty(c, x, "sagemaker endpoint_name", &ep->endpoint_name)))
		return rc;
	for (const char *r = ep->endpoint_name; *r; r++)
		if (!((*r >= 'a' && *r <= 'z') || (*r >= 'A' && *r <= 'Z') ||
		      (*r >= '0' && *r <= '9') || (*r == '-' && r > ep->endpoint_name)) ||
		    r - ep->endpoint_name >= 63)
			return fail(c, x, "sagemaker endpoint_name '%s' is not a SageMaker endpoint "
				    "name (up to 63 letters, digits and '-', not starting with '-')",
				    ep->endpoint_name);
	if (!(x = get(n, "input_location")))
		return fail(c, n, "sagemaker endpoint %s needs input_location, the S3 folder the "
			    "requests are uploaded to (input_location: s3://BUCKET/PREFIX/)",
			    ep->endpoint_name);
	if ((rc = get_nonempty(c, x, "sagemaker input_location", &ep->input_location)) ||
	    (rc = parse_s3_location(c, x, ep)))
		return rc;
	if ((x = get(n, "worker"))) {
		if ((rc = get_nonempty(c, x, "sagemaker worker", &ep->worker)))
			return rc;
		if (strcmp(ep->worker, "a1111") && strcmp(ep->worker, "jumpstart")) {
			const char *hint = closest(ep->worker, sm_workers, 2);
			return fail(c, x, "sagemaker worker must be a1111 (a container serving "
				    "A1111's txt2img) or jumpstart (a JumpStart Stable Diffusion "
				    "model), got '%s'%s%s%s", ep->worker,
				    hint ? ": did you mean '" : "", hint ? hint : "", hint ? "'?" : "");
		}
	} else if (!(ep->worker = kiln_strdup("a1111"))) {
		return nomem(c);
	}
	/* the engine: the platform's protocol around the worker's body and answer */
	if (!(ep->engine = kiln_strdup(strcmp(ep->worker, "jumpstart") ? "sagemaker"
								    : "sagemaker-jumpstart")))
		return nomem(c);
	static const char *const envs[] = {"access_key_env", "secret_key_env"};
	char **envp[] = {&ep->access_key_env, &ep->secret_key_env};
	for (size_t i = 0; i < 2; i++) {
		if (!(x = get(n, envs[i])))
			return fail(c, n, "sagemaker endpoint %s needs %s, the name of the "
				    "environment variable holding its AWS %s (credentials never go "
				    "in kiln.yaml)", ep->endpoint_name, envs[i],
				    i ? "secret access key" : "access key id");
		if ((rc = get_nonempty(c, x, envs[i], envp[i])))
			return rc;
	}
	if ((x = get(n, "session_token_env")) &&
	    (rc = get_nonempty(c, x, "session_token_env", &ep->session_token_env)))
		return rc;
	if ((x = get(n, "base_url")) && (rc = get_base_url(c, x, "sagemaker base_url",
							   &ep->base_url)))
		return rc;
	if ((x = get(n, "s3_base_url")) && (rc = get_base_url(c, x, "sagemaker s3_base_url",
							      &ep->s3_base_url)))
		return rc;
	/* AWS's own S3 takes virtual-hosted URLs (path-style is deprecated for new buckets);
	 * S3-compatible stores at s3_base_url mostly path-style */
	ep->s3_virtual = !ep->s3_base_url;
	if ((x = get(n, "s3_addressing"))) {
		const char *v = fy_node_get_scalar0(x);
		if (v && !strcmp(v, "virtual"))
			ep->s3_virtual = 1;
		else if (v && !strcmp(v, "path"))
			ep->s3_virtual = 0;
		else
			return fail(c, x, "sagemaker s3_addressing must be virtual "
				    "(https://BUCKET.HOST/KEY) or path (https://HOST/BUCKET/KEY), "
				    "got '%s'", v ? v : "");
	}
	/* SageMaker's bounds (InvokeEndpointAsync): InvocationTimeoutSeconds 1..3600,
	 * RequestTTLSeconds 60..21600 */
	if ((rc = get_lifetimes(c, n, ep, "sagemaker", 1, 3600, 60, 21600)))
		return rc;
	if ((rc = parse_common(c, n, ep)))
		return rc;
	{
		size_t len = (ep->base_url ? strlen(ep->base_url) : strlen(ep->region) + 40) +
			     strlen(ep->endpoint_name) + 12;
		if (!(ep->url = kiln_malloc(len)))
			return nomem(c);
		if (ep->base_url)
			snprintf(ep->url, len, "%s/endpoints/%s", ep->base_url, ep->endpoint_name);
		else
			snprintf(ep->url, len, "https://runtime.sagemaker.%s.amazonaws.com/endpoints/%s",
				 ep->region, ep->endpoint_name);
	}
	return 0;
}

static int parse_self(struct ctx *c, struct fy_node *n, struct kiln_endpoint *ep)
{
	static const char *const keys[] = {"url", "engine", "concurrency", "auth_env",
					   "token_env", "connect_timeout", "timeout", "platform",
					   "cost_per_hour"};
	struct fy_node *x;
	int rc;
	if ((rc = check_keys(c, n, "an endpoint", keys, 9)))
		return rc;
	if (!(x = get(n, "url")))
		return fail(c, n, "an endpoint needs a url ({url: \"http://gpu-1:7860\"})");
	if ((rc = get_nonempty(c, x, "endpoint url", &ep->url)) ||
	    (rc = check_url(c, x, "endpoint url", ep->url)))
		return rc;
	if ((x = get(n, "engine"))) {
		if ((rc = get_nonempty(c, x, "endpoint engine", &ep->engine)))
			return rc;
		if (!is_ai_engine(ep->engine)) {
			const char *hint = closest(ep->engine, ai_engines, 3);
			return fail(c, x, "endpoint engine must be a1111, comfyui or sdcpp, got '%s'%s%s%s",
				    ep->engine, hint ? ": did you mean '" : "", hint ? hint : "",
				    hint ? "'?" : "");
		}
	} else if (!c->s->engine || !is_ai_engine(c->s->engine)) {
		return fail(c, n, "endpoint %s needs engine: a1111, comfyui or sdcpp (the spec's "
			    "engine is compose)", ep->url);
	} else if (!(ep->engine = kiln_strdup(c->s->engine))) {
		return nomem(c);
	}
	if ((x = get(n, "auth_env")) && (rc = get_nonempty(c, x, "endpoint auth_env", &ep->auth_env)))
		return rc;
	if ((x = get(n, "token_env")) &&
	    (rc = get_nonempty(c, x, "endpoint token_env", &ep->token_env)))
		return rc;
	if (ep->auth_env && ep->token_env)
		return fail(c, n, "an endpoint takes auth_env (HTTP basic) or token_env (bearer), "
			    "not both");
	return parse_common(c, n, ep);
}

static int parse_endpoint(struct ctx *c, struct fy_node *n, struct kiln_endpoint *ep)
{
	static const char *const platforms[] = {"self", "runpod", "sagemaker"};
	struct fy_node *x;
	char *pf = NULL;
	int rc;
	ep->loc = loc_of(n);
	ep->concurrency = 1;
	ep->connect_timeout = 10;
	ep->timeout = 600;
	if ((rc = want_map(c, n, "an endpoint")))
		return rc;
	if ((x = get(n, "platform"))) {
		if ((rc = get_nonempty(c, x, "endpoint platform", &pf)))
			return rc;
		if (!strcmp(pf, "runpod")) {
			ep->platform = KILN_PLATFORM_RUNPOD;
		} else if (!strcmp(pf, "sagemaker")) {
			ep->platform = KILN_PLATFORM_SAGEMAKER;
		} else if (strcmp(pf, "self")) {
			const char *hint = closest(pf, platforms, 3);
			rc = fail(c, x, "endpoint platform must be self, runpod or sagemaker, got "
				  "'%s'%s%s%s", pf, hint ? ": did you mean '" : "", hint ? hint : "",
				  hint ? "'?" : "");
		}
		free(pf);
		if (rc)
			return rc;
	}
	switch (ep->platform) {
	case KILN_PLATFORM_RUNPOD:
		return parse_runpod(c, n, ep, 0);
	case KILN_PLATFORM_SAGEMAKER:
		return parse_sagemaker(c, n, ep);
	default:
		return parse_self(c, n, ep);
	}
}

/* generate.sampler in A1111's spelling, as A1111 itself splits it: "DPM++ 2M Karras" is
 * sampler "DPM++ 2M" with schedule type "Karras". Both end up canonical (A1111's case), so
 * that every engine's table lookup is exact and the recipe does not change with spelling. */
static int parse_sampler(struct ctx *c, struct fy_node *n, struct kiln_generate *g)
{
	struct fy_node *xs = get(n, "sampler"), *xt = get(n, "scheduler");
	const char *name = g->sampler, *sampler = kiln_sampler_canonical(name, strlen(name));
	const char *sched = NULL;
	for (size_t len = strlen(name); !sampler && len-- > 0;) {
		if (name[len] != ' ')
			continue;
		sched = kiln_scheduler_canonical(name + len + 1, strlen(name + len + 1));
		if (sched && (sampler = kiln_sampler_canonical(name, len)))
			break;
		sched = NULL;
	}
	if (!sampler) {
		struct kiln_buf b = KILN_BUF_INIT;
		int rc = kiln_sampler_list("a1111", 0, &b);
		rc = rc ? nomem(c) : fail(c, xs ? xs : n, "generate.sampler '%s' is not an A1111 "
					  "sampler name: use one of %s, optionally followed by a "
					  "schedule type (\"DPM++ 2M Karras\")", name, b.data);
		kiln_buf_release(&b);
		return rc;
	}
	if (g->scheduler) {
		const char *t = kiln_scheduler_canonical(g->scheduler, strlen(g->scheduler));
		if (!t) {
			struct kiln_buf b = KILN_BUF_INIT;
			int rc = kiln_sampler_list("a1111", 1, &b);
			rc = rc ? nomem(c) : fail(c, xt, "generate.scheduler '%s' is not an A1111 "
						  "schedule type: use one of %s", g->scheduler,
						  b.data);
			kiln_buf_release(&b);
			return rc;
		}
		if (sched && strcmp(sched, t))
			return fail(c, xt, "generate.scheduler '%s' contradicts generate.sampler '%s' "
				    "(whose schedule type is %s): give it in one place", g->scheduler,
				    name, sched);
		sched = t;
	}
	free(g->sampler);
	free(g->scheduler);
	g->scheduler = NULL;
	if (!(g->sampler = kiln_strdup(sampler)) || (sched && !(g->scheduler = kiln_strdup(sched))))
		return nomem(c);
	return 0;
}

/* The node of trait t of layer l's controlnet, for a message's line:col (the generate block
 * when the trait was not written as a mapping under layers:). */
static struct fy_node *trait_key_node(struct fy_node *gen, size_t l, size_t t, const char *key)
{
	struct fy_node *root = fy_document_root(fy_node_document(gen)), *x;
	char path[96];
	snprintf(path, sizeof path, "/layers/%zu/traits/%zu/%s", l, t, key);
	x = root ? fy_node_by_path(root, path, FY_NT, FYNWF_DONT_FOLLOW) : NULL;
	return x ? x : gen;
}

static struct fy_node *controlnet_node(struct fy_node *gen, size_t l, size_t t)
{
	return trait_key_node(gen, l, t, "controlnet");
}

/* sd-server's limits (leejet/stable-diffusion.cpp examples/): it clamps steps to 1..100
 * without a word (SDGenerationParams::resolve_and_validate, common.cpp), and lists only
 * .safetensors, .pt, .pth and .gguf LoRAs (is_supported_model_ext, examples/server/runtime.cpp),
 * so a request naming a .ckpt or .bin one is refused with a bare 400. */
static int check_sdcpp_limits(struct ctx *c, struct fy_node *gen, const struct kiln_endpoint *ep)
{
	const struct kiln_generate *g = c->s->generate;
	if (g->steps > 100)
		return fail(c, get(gen, "steps") ? get(gen, "steps") : gen, "generate.steps %d: "
			    "endpoint %s is sd-server, which runs at most 100 steps (it would "
			    "clamp to 100 silently)", g->steps, ep->url);
	for (size_t l = 0; l < c->s->nlayers; l++)
		for (size_t t = 0; t < c->s->layers[l].ntraits; t++) {
			const struct kiln_trait *tr = &c->s->layers[l].traits[t];
			for (size_t k = 0; k < tr->nloras; k++) {
				const char *n = tr->loras[k].name, *dot = strrchr(n, '.');
				if (dot && (!strcasecmp(dot, ".ckpt") || !strcasecmp(dot, ".bin")))
					return fail(c, trait_key_node(gen, l, t, "lora"),
						    "lora '%s' of trait '%s' (layer '%s'): "
						    "endpoint %s is sd-server, which loads no %s "
						    "LoRA (only .safetensors, .pt, .pth, .gguf): "
						    "convert it to .safetensors", n, tr->name,
						    c->s->layers[l].name, ep->url, dot);
			}
		}
	return 0;
}

/* A JumpStart Stable Diffusion model takes prompt, negative_prompt, width, height, seed,
 * num_inference_steps and guidance_scale; it picks its own sampler and loads no other model,
 * LoRA or ControlNet. Refused rather than dropped. */
static int check_jumpstart(struct ctx *c, struct fy_node *gen, const struct kiln_endpoint *ep)
{
	const struct kiln_generate *g = c->s->generate;
	const char *what = NULL;
	struct fy_node *x = NULL;
	if (g->checkpoint)
		what = "checkpoint", x = get(gen, "checkpoint");
	else if (get(gen, "sampler"))
		what = "sampler", x = get(gen, "sampler");
	else if (get(gen, "scheduler"))
		what = "scheduler", x = get(gen, "scheduler");
	for (size_t l = 0; !what && l < c->s->nlayers; l++)
		for (size_t t = 0; !what && t < c->s->layers[l].ntraits; t++) {
			if (c->s->layers[l].traits[t].nloras)
				what = "lora";
			else if (c->s->layers[l].traits[t].controlnet)
				what = "controlnet";
		}
	if (what)
		return fail(c, x ? x : gen, "sagemaker endpoint %s runs a JumpStart model "
			    "(worker: jumpstart), which takes no %s: remove it, or use an "
			    "endpoint whose worker is a1111", ep->endpoint_name, what);
	return 0;
}

/* What endpoint ep's engine cannot honour is refused here, at load time, rather than dropped
 * on the wire: a sampler or schedule type it does not have; on ComfyUI a ControlNet
 * preprocessor or control mode (kiln adds no preprocessor node, and ControlNetApplyAdvanced
 * has no mode); on sd-server a checkpoint (it runs the one model it was started with), a
 * ControlNet preprocessor, mode or guidance range (it takes an image and a strength), and more
 * than one layer with ControlNet traits (it takes one unit per image); on A1111 a ControlNet
 * weight over 2. */
static int check_engine(struct ctx *c, struct fy_node *gen, struct fy_node *epn,
			const struct kiln_endpoint *ep)
{
	const struct kiln_generate *g = c->s->generate;
	/* a cloud endpoint honours what its worker does */
	const char *eng = kiln_endpoint_protocol(ep);
	if (!strcmp(eng, "jumpstart"))
		return check_jumpstart(c, gen, ep);
	int comfy = !strcmp(eng, "comfyui"), sdcpp = !strcmp(eng, "sdcpp");
	int a1111 = !strcmp(eng, "a1111");
	size_t cn_layers = 0, first = 0;
	if (!kiln_sampler_runs(eng, g->sampler, NULL) ||
	    !kiln_sampler_runs(eng, g->sampler, g->scheduler)) {
		int which = kiln_sampler_runs(eng, g->sampler, NULL);
		struct kiln_buf b = KILN_BUF_INIT;
		struct fy_node *x = which && get(gen, "scheduler") ? get(gen, "scheduler")
								     : get(gen, "sampler");
		int rc = kiln_sampler_list(eng, which, &b);
		rc = rc ? nomem(c) : fail(c, x ? x : gen, "%s '%s' cannot run on endpoint %s "
					  "(%s has no such %s): %s accepts %s",
					  which ? "generate.scheduler" : "generate.sampler",
					  which ? g->scheduler : g->sampler, ep->url, eng,
					  which ? "schedule type" : "sampler", eng, b.data);
		kiln_buf_release(&b);
		return rc;
	}
	if (sdcpp && check_sdcpp_limits(c, gen, ep))
		return KILN_E_SPEC;
	if (sdcpp && g->checkpoint)
		return fail(c, get(gen, "checkpoint"), "endpoint %s is sd-server, which runs the one "
			    "model it was started with (--model) and cannot switch: remove "
			    "generate.checkpoint, or give that endpoint another engine", ep->url);
	(void)epn;
	for (size_t l = 0; l < c->s->nlayers; l++) {
		int has = 0;
		for (size_t t = 0; t < c->s->layers[l].ntraits; t++) {
			const struct kiln_controlnet *cn = c->s->layers[l].traits[t].controlnet;
			const char *why = NULL;
			if (!cn)
				continue;
			has = 1;
			if ((comfy || sdcpp) && strcmp(cn->module, "none"))
				why = "module (a preprocessor; give an image that is already a control "
				      "map, and module: none)";
			else if ((comfy || sdcpp) && strcmp(cn->control_mode, "Balanced"))
				why = "control_mode (only Balanced)";
			else if (sdcpp && (cn->guidance_start != 0 || cn->guidance_end != 1))
				why = "guidance_start/guidance_end (the unit applies to every step)";
			/* sd-webui-controlnet takes a unit's weight from 0 to 2 and drops every unit
			 * of the image, answering 200, when one is over (internal_controlnet/args.py);
			 * Forge takes any weight, but an a1111 endpoint may be either */
			else if (a1111 && cn->weight > 2)
				why = "weight over 2 (sd-webui-controlnet takes 0 to 2, and drops every "
				      "unit of an image when one is over)";
			if (why)
				return fail(c, controlnet_node(gen, l, t), "trait '%s' of layer '%s': "
					    "endpoint %s (%s) does not honour controlnet %s",
					    c->s->layers[l].traits[t].name, c->s->layers[l].name,
					    ep->url, eng, why);
		}
		if (has && !cn_layers++)
			first = l;
		if (sdcpp && has && cn_layers > 1)
			return fail(c, get(gen, "endpoints"), "endpoint %s is sd-server, which takes "
				    "one ControlNet unit per image, but layers '%s' and '%s' both have "
				    "traits with controlnet that an item may combine", ep->url,
				    c->s->layers[first].name, c->s->layers[l].name);
	}
	return 0;
}

static int parse_size(struct ctx *c, struct fy_node *n, struct kiln_generate *g)
{
	const char *v = fy_node_get_type(n) == FYNT_SCALAR ? fy_node_get_scalar0(n) : NULL;
	unsigned w, h;
	char tail;
	if (!v || sscanf(v, "%ux%u%c", &w, &h, &tail) != 2 || w < 64 || h < 64 || w > 4096 ||
	    h > 4096 || w % 8 || h % 8)
		return fail(c, n, "generate.size must be WIDTHxHEIGHT, each a multiple of 8 from 64 "
			    "to 4096 (e.g. 1024x1024)");
	g->width = (int)w;
	g->height = (int)h;
	return 0;
}

int parse_generate(struct ctx *c, struct fy_node *n)
{
	static const char *const keys[] = {"prompt", "negative", "checkpoint", "sampler",
					   "scheduler", "steps", "cfg", "size", "candidates",
					   "endpoints", "workflow", "retries", "budget_usd"};
	struct kiln_generate *g;
	struct fy_node *x, *v;
	void *it = NULL;
	uint64_t k;
	int rc;
	if ((rc = want_map(c, n, "generate")) || (rc = check_keys(c, n, "generate", keys, 13)))
		return rc;
	if (!(g = c->s->generate = kiln_calloc(1, sizeof *g)))
		return nomem(c);
	g->loc = loc_of(n);
	g->steps = 20;
	g->cfg = 7;
	g->width = c->s->width;
	g->height = c->s->height;
	g->candidates = 1;
	g->retries = 4;
	if (!(x = get(n, "prompt")))
		return fail(c, n, "generate needs a prompt template (prompt: \"pixel art owl, "
			    "{Background} background, {Body}\")");
	if ((rc = get_nonempty(c, x, "generate.prompt", &g->prompt)) ||
	    (rc = check_template(c, x, g->prompt, "generate.prompt")))
		return rc;
	if ((x = get(n, "negative"))) {
		if ((rc = get_str(c, x, "generate.negative", &g->negative)) ||
		    (rc = check_template(c, x, g->negative, "generate.negative")))
			return rc;
	} else if (!(g->negative = kiln_strdup(""))) {
		return nomem(c);
	}
	if ((x = get(n, "checkpoint")) &&
	    (rc = get_nonempty(c, x, "generate.checkpoint", &g->checkpoint)))
		return rc;
	if ((x = get(n, "sampler")) && (rc = get_nonempty(c, x, "generate.sampler", &g->sampler)))
		return rc;
	if (!g->sampler && !(g->sampler = kiln_strdup("Euler a")))
		return nomem(c);
	if ((x = get(n, "scheduler")) &&
	    (rc = get_nonempty(c, x, "generate.scheduler", &g->scheduler)))
		return rc;
	if ((rc = parse_sampler(c, n, g)))
		return rc;
	if ((x = get(n, "steps")) && (rc = get_int(c, x, "generate.steps", 1, 150, &g->steps)))
		return rc;
	if ((x = get(n, "cfg")) && (rc = get_range(c, x, "generate.cfg", 0, 30, &g->cfg)))
		return rc;
	if ((x = get(n, "size")) && (rc = parse_size(c, x, g)))
		return rc;
	if ((x = get(n, "candidates"))) {
		if ((rc = get_u64(c, x, "generate.candidates", 1, 64, &k)))
			return rc;
		g->candidates = (unsigned)k;
	}
	if ((x = get(n, "retries"))) {
		if ((rc = get_u64(c, x, "generate.retries", 0, 100, &k)))
			return rc;
		g->retries = (unsigned)k;
	}
	if ((x = get(n, "budget_usd")) &&
	    (rc = get_range(c, x, "generate.budget_usd", 0.000001, 1e9, &g->budget_usd)))
		return rc;
	if ((x = get(n, "workflow")) &&
	    ((rc = get_nonempty(c, x, "generate.workflow", &g->workflow)) ||
	     (rc = check_file(c, x, g->workflow, "generate.workflow"))))
		return rc;
	if (!(x = get(n, "endpoints")))
		return fail(c, n, "generate needs endpoints: [{url: \"http://gpu-1:7860\"}]");
	if (fy_node_get_type(x) != FYNT_SEQUENCE)
		return fail(c, x, "generate.endpoints must be a list of servers, got %s "
			    "(endpoints: [{url: \"http://gpu-1:7860\"}])", type_name(x));
	if (!fy_node_sequence_item_count(x))
		return fail(c, key_node(n, "endpoints"), "generate.endpoints is empty: list at least "
			    "one server ({url: \"http://gpu-1:7860\"})");
	g->endpoints = kiln_calloc((size_t)fy_node_sequence_item_count(x) + 1, sizeof *g->endpoints);
	if (!g->endpoints)
		return nomem(c);
	while ((v = fy_node_sequence_iterate(x, &it))) {
		struct kiln_endpoint *ep = &g->endpoints[g->nendpoints++];
		if ((rc = parse_endpoint(c, v, ep)))
			return rc;
		for (size_t i = 0; i + 1 < g->nendpoints; i++)
			if (!strcmp(g->endpoints[i].url, ep->url))
				return fail(c, v, "endpoint %s is listed twice: raise its concurrency "
					    "instead", ep->url);
		if (!strcmp(kiln_endpoint_protocol(ep), "comfyui") && !g->workflow)
			return fail(c, v, "endpoint %s speaks comfyui, which needs generate.workflow "
				    "(an API-format graph exported from ComfyUI)", ep->url);
		if ((rc = check_engine(c, n, v, ep)))
			return rc;
	}
	return 0;
}

void endpoint_release(struct kiln_endpoint *ep)
{
	free(ep->url);
	free(ep->engine);
	free(ep->auth_env);
	free(ep->token_env);
	free(ep->secret);
	free(ep->worker);
	free(ep->base_url);
	free(ep->endpoint_id);
	free(ep->region);
	free(ep->endpoint_name);
	free(ep->input_location);
	free(ep->s3_bucket);
	free(ep->s3_prefix);
	free(ep->s3_base_url);
	free(ep->access_key_env);
	free(ep->secret_key_env);
	free(ep->session_token_env);
	free(ep->access_key);
	free(ep->secret_key);
	free(ep->session_token);
}

void generate_free(struct kiln_generate *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->nendpoints; i++)
		endpoint_release(&g->endpoints[i]);
	free(g->endpoints);
	free(g->prompt);
	free(g->negative);
	free(g->checkpoint);
	free(g->sampler);
	free(g->scheduler);
	free(g->workflow);
	free(g);
}

void trait_ai_free(struct kiln_trait *t)
{
	for (size_t i = 0; t->loras && i <= t->nloras; i++)
		free(t->loras[i].name);
	free(t->loras);
	free(t->prompt);
	free(t->negative);
	if (t->controlnet) {
		free(t->controlnet->image);
		free(t->controlnet->model);
		free(t->controlnet->module);
		free(t->controlnet->control_mode);
		free(t->controlnet);
	}
}
