/* runpod_train: a training job on a RunPod serverless endpoint (kiln train run). The same
 * queue API as the image jobs of runpod.c (POST {url}/run {input, policy} -> {id}; GET
 * /status/{id} until COMPLETED, FAILED, CANCELLED or TIMED_OUT; POST /cancel/{id};
 * Authorization: Bearer KEY), with the same rules: the id must look like one (letters, digits,
 * '-', '_'), a body over KILN_RUNPOD_MAX_BODY is refused before it is sent, 404 on /status
 * means the job is unknown or its result expired (RunPod keeps one 30 minutes).
 *
 * The job's input and output are kiln's own contract (docs/training.md "Running"), built and
 * read here: the prepared folder as a tar (lib/train/pack.c), inline as base64 in the body,
 * or (dataset_upload: s3) uploaded to S3 under its SHA-256 (a HEAD first: the same dataset is
 * never uploaded twice) and named by a presigned GET URL; the LoRA comes back as base64
 * (output.lora) or a URL (output.lora_url), fetched to a temporary file, its size capped, its
 * SHA-256 checked when output.lora_sha256 is given, then renamed.
 *
 * A training job is one long job, not thousands of short ones: it is driven with blocking
 * libcurl easy requests, one at a time, from the command's own loop instead of the render
 * dispatcher. Every request has a timeout (API calls the endpoint's timeout; data transfers
 * a stall timeout: less than 1 KiB/s for KILN_STALL seconds), stops within a libcurl progress
 * tick when *cancel is set (Ctrl-C), and is retried by the dispatcher's rule (backoff with
 * jitter, kiln_dispatch_backoff; Retry-After honoured) on transport errors, 429 and 5xx, up to
 * KILN_POLL_ERRORS times, except /run, retried only when it surely was not received
 * (no connection, or 429), since a lost answer may hide a queued job. */
#include "kiln/render.h"
#include "kiln/train.h"
#include "render/dispatch.h"
#include "render/engines/engine.h"
#include "util/alloc.h"
#include "util/base64.h"
#include "util/clock.h"
#include "util/prng.h"
#include "util/sha.h"
#include "util/sigv4.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KILN_STALL 60                     /* seconds below 1 KiB/s that end a transfer */
#define S3_PUT_MAX ((uint64_t)5 << 30)    /* S3's single PUT: 5 GiB */
#define INLINE_MAX ((size_t)7400000)      /* a tar whose base64 fits a 10 MB body */
#define EXEC_MS 86400000                  /* a day of GPU at most */

/* --- one request ----------------------------------------------------------------------------- */

struct xfer {
	const char *method, *url;
	struct curl_slist *headers;
	const char *body;                 /* in memory, or */
	int in_fd;                        /* a file to upload (-1: none) */
	uint64_t in_size;
	struct kiln_buf *answer;          /* the answer in memory (cap bytes at most), or */
	size_t cap;
	int out_fd;                       /* written to a file (-1: none), at most out_max */
	uint64_t out_max, out_got;
	struct kiln_sha256 out_h;
	int h_live;                       /* out_h holds a hash under way */
	int data;                         /* a data transfer: stall timeout, no total */
	const volatile int *cancel;
	/* answers */
	long status;
	double retry_after;
	int over, io;
	CURLcode cc;
	char err[CURL_ERROR_SIZE];
};

static size_t on_data(char *p, size_t size, size_t n, void *user)
{
	struct xfer *x = user;
	size_t len = size * n;
	if (x->out_fd >= 0) {
		if (x->out_got + len > x->out_max) {
			x->over = 1;
			return 0;
		}
		for (size_t done = 0; done < len;) {
			ssize_t w = write(x->out_fd, p + done, len - done);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				x->io = errno ? errno : EIO;
				return 0;
			}
			done += (size_t)w;
		}
		kiln_sha256_update(&x->out_h, p, len);
		x->out_got += len;
		return len;
	}
	if (x->answer->len + len > x->cap || kiln_buf_add(x->answer, p, len)) {
		x->over = 1;
		return 0;
	}
	return len;
}

static size_t on_read(char *p, size_t size, size_t n, void *user)
{
	struct xfer *x = user;
	ssize_t r;
	do
		r = read(x->in_fd, p, size * n);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		x->io = errno;
		return CURL_READFUNC_ABORT;
	}
	return (size_t)r;
}

static int on_progress(void *user, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	const struct xfer *x = user;
	(void)dt, (void)dn, (void)ut, (void)un;
	return x->cancel && *x->cancel;
}

/* One exchange: x->status the HTTP status (0: no answer, x->cc says why). */
static int perform(const struct kiln_endpoint *ep, struct xfer *x, struct kiln_error *e)
{
	CURL *c = curl_easy_init();
	curl_off_t ra = 0;
	x->status = 0;
	x->retry_after = 0;
	x->over = x->io = 0;
	x->err[0] = 0;
	if (!c)
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory (libcurl)");
	curl_easy_setopt(c, CURLOPT_URL, x->url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, x->headers);
	if (!strcmp(x->method, "HEAD"))
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	else
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, x->method);
	if (x->in_fd >= 0) {
		if (lseek(x->in_fd, 0, SEEK_SET) < 0) {
			curl_easy_cleanup(c);
			return kiln_error_set(e, KILN_E_IO, NULL, "cannot read the archive "
					      "again: %s", strerror(errno));
		}
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(c, CURLOPT_READDATA, x);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->in_size);
	} else if (x->body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, x->body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(x->body));
	}
	if (x->out_fd >= 0) {
		if (x->h_live)
			kiln_sha256_abort(&x->out_h); /* an earlier try's */
		x->h_live = 0;
		if (lseek(x->out_fd, 0, SEEK_SET) < 0 || ftruncate(x->out_fd, 0) ||
		    kiln_sha256_init(&x->out_h)) {
			curl_easy_cleanup(c);
			return kiln_error_set(e, KILN_E_IO, NULL, "cannot write the download: %s",
					      strerror(errno));
		}
		x->h_live = 1;
		x->out_got = 0;
	} else {
		kiln_buf_reset(x->answer);
	}
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, x->err);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)((ep->connect_timeout > 0 ? ep->connect_timeout : 10) * 1000));
	if (x->data) {
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)KILN_STALL);
	} else {
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
				 (long)((ep->timeout > 0 ? ep->timeout : 600) * 1000));
	}
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	x->cc = curl_easy_perform(c);
	if (x->cc == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &x->status);
		if ((x->status == 429 || x->status >= 500) &&
		    curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
			x->retry_after = ra > 3600 ? 3600 : (double)ra;
	}
	curl_easy_cleanup(c);
	if (x->h_live && x->cc != CURLE_OK) {
		kiln_sha256_abort(&x->out_h);
		x->h_live = 0;
	}
	if (x->over)
		return kiln_error_set(e, KILN_E_NET, x->url, "%s %s: the answer is over %llu bytes",
				      x->method, x->url,
				      (unsigned long long)(x->out_fd >= 0 ? x->out_max : x->cap));
	if (x->io)
		return kiln_error_set(e, KILN_E_IO, x->url, "%s %s: %s", x->method, x->url,
				      strerror(x->io));
	if (x->cc != CURLE_OK)
		return kiln_error_set(e, KILN_E_NET, x->url, "%s %s: %s", x->method, x->url,
				      x->cc == CURLE_ABORTED_BY_CALLBACK ? "stopped"
				      : *x->err			    ? x->err
								    : curl_easy_strerror(x->cc));
	return 0;
}

/* Sleep s seconds in short naps, waking at once when *cancel is set (1: cancelled). */
static int nap(double s, const volatile int *cancel)
{
	double until = kiln_clock_mono() + s;
	while (!(cancel && *cancel)) {
		double left = until - kiln_clock_mono();
		struct timespec ts;
		if (left <= 0)
			return 0;
		if (left > 0.05)
			left = 0.05;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)(left * 1e9);
		nanosleep(&ts, NULL);
	}
	return 1;
}

/* perform(), retried by the dispatcher's rule: transport errors (all, or with fresh only
 * those before the request left: no connection), 429 and 5xx, up to KILN_POLL_ERRORS
 * attempts. 0 with x->status the last answer's. */
static int exchange(const struct kiln_runpod_train *rt, struct xfer *x, int fresh,
		    struct kiln_error *e)
{
	struct kiln_rng rng;
	kiln_rng_seed(&rng, (uint64_t)getpid() ^ (uint64_t)(kiln_clock_unix() * 1e6),
		      0x747261696eull);
	for (unsigned attempt = 1;; attempt++) {
		int rc = perform(rt->ep, x, e), again;
		double wait;
		if (rc && (rc != KILN_E_NET || x->over || x->cc == CURLE_ABORTED_BY_CALLBACK))
			return rc;
		if (rc)
			again = !fresh || x->cc == CURLE_COULDNT_CONNECT ||
				x->cc == CURLE_COULDNT_RESOLVE_HOST ||
				x->cc == CURLE_COULDNT_RESOLVE_PROXY;
		else
			again = x->status == 429 || (!fresh && x->status >= 500);
		if (!again || attempt >= KILN_POLL_ERRORS)
			return rc;
		wait = kiln_dispatch_backoff(KILN_DISPATCH_BACKOFF_BASE, KILN_DISPATCH_BACKOFF_MAX,
					     attempt, &rng);
		if (x->retry_after > wait)
			wait = x->retry_after;
		if (nap(wait, rt->cancel))
			return kiln_error_set(e, KILN_E_NET, x->url, "%s %s: stopped", x->method,
					      x->url);
	}
}

static void xfer_init(struct xfer *x, const struct kiln_runpod_train *rt, const char *method,
		      const char *url, struct kiln_buf *answer, size_t cap)
{
	memset(x, 0, sizeof *x);
	x->method = method;
	x->url = url;
	x->in_fd = -1;
	x->out_fd = -1;
	x->answer = answer;
	x->cap = cap;
	x->cancel = rt->cancel;
}

/* A RunPod API call: {ep->url}{path}, JSON, the API key as a bearer token. */
static int api(const struct kiln_runpod_train *rt, const char *method, const char *path,
	       const char *body, int fresh, long *status, struct kiln_buf *answer, size_t cap,
	       struct kiln_error *e)
{
	struct xfer x;
	struct curl_slist *h = NULL, *g;
	char url[2048], auth[1200];
	int rc;
	snprintf(url, sizeof url, "%s%s", rt->ep->url, path);
	xfer_init(&x, rt, method, url, answer, cap);
	x.body = body;
	h = curl_slist_append(NULL, "Content-Type: application/json");
	if (h && rt->ep->secret && *rt->ep->secret) {
		snprintf(auth, sizeof auth, "Authorization: Bearer %s", rt->ep->secret);
		if (!(g = curl_slist_append(h, auth))) {
			curl_slist_free_all(h);
			h = NULL;
		} else {
			h = g;
		}
	}
	if (!h)
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
	x.headers = h;
	rc = exchange(rt, &x, fresh, e);
	curl_slist_free_all(h);
	*status = x.status;
	return rc;
}

/* --- S3 -------------------------------------------------------------------------------------- */

/* A signed S3 request (service s3): url, its payload's hex SHA-256, more headers to sign. */
static int s3_headers(const struct kiln_endpoint *ep, const char *method, const char *url,
		      const char *extra, const char *payload, struct curl_slist **out,
		      struct kiln_error *e)
{
	struct kiln_sigv4 k = {ep->access_key, ep->secret_key, ep->session_token, ep->region,
			       "s3", NULL, 1};
	struct kiln_buf lines = KILN_BUF_INIT;
	struct curl_slist *h = curl_slist_append(NULL, "Expect:"), *g;
	int rc;
	if (!h)
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
	if ((rc = kiln_sigv4_request_hashed(&k, method, url, extra, payload, kiln_clock_unix(),
					    &lines, e)) ||
	    (extra && kiln_buf_addf(&lines, "%s\n", extra))) {
		curl_slist_free_all(h);
		kiln_buf_release(&lines);
		return rc ? rc : kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
	}
	for (char *l = lines.data, *next; l && *l; l = next) {
		if ((next = strchr(l, '\n')))
			*next++ = 0;
		if (!*l)
			continue;
		if (!(g = curl_slist_append(h, l))) {
			curl_slist_free_all(h);
			kiln_buf_release(&lines);
			return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
		}
		h = g;
	}
	kiln_buf_release(&lines);
	*out = h;
	return 0;
}

static int s3_refused(const struct kiln_endpoint *ep, const char *what, const char *url,
		      long status, const struct kiln_buf *a, struct kiln_error *e)
{
	char ex[300];
	kiln_ai_excerpt(ex, sizeof ex, a->data ? a->data : "", a->len);
	kiln_error_set(e, status == 403 || status == 400 || status == 404 ? KILN_E_SPEC
									   : KILN_E_NET,
		       ep->input_location, "%s %s answered HTTP %ld%s%s%s: %s", what, url, status,
		       status == 403 ? " (the AWS keys in $" : "",
		       status == 403 ? ep->access_key_env : "",
		       status == 403 ? " or the bucket's policy refused it)" : "", ex);
	return e->code;
}

/* Upload the archive in fd (size bytes, SHA-256 sha) to s3://bucket/PREFIX<sha>.tar unless a
 * HEAD finds it there; the object's URL into url. */
static int s3_upload(const struct kiln_runpod_train *rt, int fd, uint64_t size,
		     const char *sha, char *url, size_t cap, int *uploaded, struct kiln_error *e)
{
	const struct kiln_endpoint *ep = rt->ep;
	struct kiln_buf a = KILN_BUF_INIT;
	struct curl_slist *h = NULL;
	struct xfer x;
	char key[1200], empty[65];
	int rc;
	*uploaded = 0;
	snprintf(key, sizeof key, "%s%s.tar", ep->s3_prefix ? ep->s3_prefix : "", sha);
	if ((rc = kiln_s3_url(ep, ep->s3_bucket, strlen(ep->s3_bucket), key, url, cap, e)))
		return rc;
	kiln_sha256_hex("", 0, empty);
	kiln_buf_init(&a, 65536);
	if ((rc = s3_headers(ep, "HEAD", url, NULL, empty, &h, e)))
		goto out;
	xfer_init(&x, rt, "HEAD", url, &a, 65536);
	x.headers = h;
	rc = exchange(rt, &x, 0, e);
	curl_slist_free_all(h);
	h = NULL;
	if (rc)
		goto out;
	if (x.status == 200)
		goto out; /* the same dataset is there (its name is its SHA-256) */
	if (x.status != 404) {
		rc = s3_refused(ep, "HEAD", url, x.status, &a, e);
		goto out;
	}
	if (size > S3_PUT_MAX) {
		rc = kiln_error_set(e, KILN_E_SPEC, ep->input_location, "the dataset archive is "
				    "%llu bytes, over the 5 GiB of one S3 PUT: train on fewer or "
				    "smaller images", (unsigned long long)size);
		goto out;
	}
	if ((rc = s3_headers(ep, "PUT", url, "Content-Type: application/x-tar", sha, &h, e)))
		goto out;
	xfer_init(&x, rt, "PUT", url, &a, 65536);
	x.headers = h;
	x.in_fd = fd;
	x.in_size = size;
	x.data = 1;
	rc = exchange(rt, &x, 0, e);
	if (!rc && x.status != 200)
		rc = s3_refused(ep, "PUT", url, x.status, &a, e);
	*uploaded = !rc;
out:
	curl_slist_free_all(h);
	kiln_buf_release(&a);
	return rc;
}

/* The dataset for the job's input: uploaded (dataset_url, dataset_s3, dataset_sha256,
 * dataset_bytes) or inline (dataset_tar). */
static int dataset_input(const struct kiln_runpod_train *rt, struct kiln_runpod_train_job *j,
			 json_t *input, struct kiln_error *e)
{
	const struct kiln_endpoint *ep = rt->ep;
	char sha[65], url[2048], skip[256];
	const char *slash = strchr(j->output, '/');
	uint64_t size = 0;
	int rc;
	/* the output's folder (output/ of output/NAME.safetensors) stays home */
	snprintf(skip, sizeof skip, "%.*s", slash ? (int)(slash - j->output) : 0, j->output);
	if (!ep->dataset_upload) {
		struct kiln_buf tar = KILN_BUF_INIT, enc = KILN_BUF_INIT;
		if ((rc = kiln_train_pack(j->dir, j->name, skip[0] ? skip : NULL, &tar, e)))
			goto inl;
		j->dataset_bytes = tar.len;
		kiln_sha256_hex(tar.data ? tar.data : "", tar.len, j->dataset_sha256);
		snprintf(j->dataset, sizeof j->dataset, "inline");
		if (tar.len > INLINE_MAX) {
			rc = kiln_error_set(e, KILN_E_SPEC, j->dir, "the prepared dataset is "
					    "%zu bytes, over what a 10 MB RunPod /run body carries "
					    "as base64: give the endpoint dataset_upload: s3, or "
					    "train on fewer or smaller images", tar.len);
			goto inl;
		}
		if (kiln_base64_add(&enc, tar.data ? tar.data : "", tar.len) ||
		    json_object_set_new(input, "dataset_tar", json_stringn(enc.data ? enc.data : "",
									   enc.len)))
			rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
inl:
		kiln_buf_release(&tar);
		kiln_buf_release(&enc);
		return rc;
	}
	{
		const char *missing = kiln_ai_missing_aws(ep);
		char tmp[4200];
		int fd;
		struct kiln_buf signed_url = KILN_BUF_INIT;
		struct kiln_sigv4 k = {ep->access_key, ep->secret_key, ep->session_token,
				       ep->region, "s3", NULL, 1};
		/* the URL must outlive the queue and the run (the job's ttl) */
		unsigned ex = ep->ttl ? ep->ttl : (ep->execution_timeout ? ep->execution_timeout
									: EXEC_MS / 1000) + 3600;
		if (missing)
			return kiln_error_set(e, KILN_E_SPEC, ep->input_location, "the S3 "
					      "upload needs the environment variable %s, which is "
					      "not set: set it to the AWS credential it names",
					      missing);
		/* a hidden name: pack leaves it out of the archive it is writing */
		snprintf(tmp, sizeof tmp, "%s/.dataset-XXXXXX", j->dir);
		if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0)
			return kiln_error_set(e, KILN_E_IO, tmp, "cannot make: %s",
					      strerror(errno));
		rc = kiln_train_pack_fd(j->dir, j->name, skip[0] ? skip : NULL, fd, sha,
						&size, e);
		if (!rc)
			rc = s3_upload(rt, fd, size, sha, url, sizeof url, &j->uploaded, e);
		close(fd);
		unlink(tmp);
		if (rc)
			return rc;
		j->dataset_bytes = size;
		memcpy(j->dataset_sha256, sha, sizeof sha);
		snprintf(j->dataset, sizeof j->dataset, "s3://%s/%s%s.tar", ep->s3_bucket,
			 ep->s3_prefix ? ep->s3_prefix : "", sha);
		if ((rc = kiln_sigv4_presign(&k, "GET", url, ex > 604800 ? 604800 : ex,
					     kiln_clock_unix(), &signed_url, e)))
			return rc;
		if (json_object_set_new(input, "dataset_url", json_string(signed_url.data)) ||
		    json_object_set_new(input, "dataset_s3", json_string(j->dataset)) ||
		    json_object_set_new(input, "dataset_sha256", json_string(sha)) ||
		    json_object_set_new(input, "dataset_bytes", json_integer((json_int_t)size)))
			rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
		kiln_buf_release(&signed_url);
		return rc;
	}
}

/* --- the job --------------------------------------------------------------------------------- */

int kiln_runpod_train_body(const struct kiln_runpod_train *rt, struct kiln_runpod_train_job *j,
			   char **body, struct kiln_error *e)
{
	const struct kiln_endpoint *ep = rt->ep;
	/* the endpoint's execution_timeout and ttl (seconds), else a day and an hour more */
	json_int_t ex = ep->execution_timeout ? (json_int_t)ep->execution_timeout * 1000 : EXEC_MS;
	json_int_t ttl = ep->ttl ? (json_int_t)ep->ttl * 1000 : ex + 3600000;
	json_t *args = json_loads(j->args_json, 0, NULL), *input, *o;
	int rc;
	*body = NULL;
	if (!json_is_array(args)) {
		json_decref(args);
		return kiln_error_set(e, KILN_E_STATE, j->dir, "the trainer's arguments are not a "
				      "JSON array");
	}
	input = json_pack("{s:s, s:s, s:s, s:s, s:o, s:s}", "kiln", "train", "name", j->name,
			  "workdir", j->name, "script", j->script, "args", args, "output",
			  j->output);
	if (!input)
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
	if ((rc = dataset_input(rt, j, input, e))) {
		json_decref(input);
		return rc;
	}
	o = json_pack("{s:o, s:{s:I, s:I}}", "input", input, "policy", "executionTimeout", ex,
		      "ttl", ttl);
	if (!o || !(*body = json_dumps(o, JSON_COMPACT)))
		rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
	json_decref(o);
	return rc;
}

int kiln_runpod_train_submit(const struct kiln_runpod_train *rt,
			     struct kiln_runpod_train_job *j, char *id, size_t idcap,
			     struct kiln_error *e)
{
	const struct kiln_endpoint *ep = rt->ep;
	struct kiln_buf a = KILN_BUF_INIT;
	char *body = NULL, ex[300];
	const char *s;
	json_t *o;
	long status;
	size_t len;
	int rc;
	if ((rc = kiln_runpod_train_body(rt, j, &body, e)))
		return rc;
	if ((len = strlen(body)) > KILN_RUNPOD_MAX_BODY) {
		free(body);
		return kiln_error_set(e, KILN_E_SPEC, ep->url, "the training job is %zu bytes, over "
				      "the 10 MB RunPod takes in a /run body: give the endpoint "
				      "dataset_upload: s3, or train on fewer or smaller images", len);
	}
	kiln_buf_init(&a, (size_t)1 << 20);
	rc = api(rt, "POST", "/run", body, 1, &status, &a, (size_t)1 << 20, e);
	free(body);
	if (rc) {
		kiln_buf_release(&a);
		return rc;
	}
	kiln_ai_excerpt(ex, sizeof ex, a.data ? a.data : "", a.len);
	if (status != 200 && status != 201) {
		kiln_buf_release(&a);
		return kiln_error_set(e, status >= 400 && status < 500 && status != 429 ? KILN_E_SPEC
										       : KILN_E_NET,
				      ep->url, "/run answered HTTP %ld%s: %s", status,
				      status == 401 ? " (the API key was refused)" : "", ex);
	}
	o = json_loadb(a.data ? a.data : "", a.len, 0, NULL);
	kiln_buf_release(&a);
	s = json_string_value(json_object_get(o, "id"));
	if (!s || !*s || strlen(s) >= idcap ||
	    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") !=
		    strlen(s)) {
		json_decref(o);
		return kiln_error_set(e, KILN_E_NET, ep->url, "/run answer has no job id: %s", ex);
	}
	memcpy(id, s, strlen(s) + 1);
	json_decref(o);
	return 0;
}

int kiln_runpod_train_status(const struct kiln_runpod_train *rt, const char *id, size_t cap,
			     long *status, char **answer, struct kiln_error *e)
{
	struct kiln_buf a = KILN_BUF_INIT;
	char path[256];
	int rc;
	*answer = NULL;
	kiln_buf_init(&a, cap);
	snprintf(path, sizeof path, "/status/%s", id);
	if ((rc = api(rt, "GET", path, NULL, 0, status, &a, cap, e))) {
		kiln_buf_release(&a);
		return rc;
	}
	if (!(*answer = kiln_buf_detach(&a, NULL)) && !(*answer = kiln_strdup("")))
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
	return 0;
}

int kiln_runpod_train_cancel(const struct kiln_runpod_train *rt, const char *id,
			     struct kiln_error *e)
{
	struct kiln_buf a = KILN_BUF_INIT;
	char path[256], ex[300];
	long status;
	int rc;
	kiln_buf_init(&a, (size_t)1 << 20);
	snprintf(path, sizeof path, "/cancel/%s", id);
	rc = api(rt, "POST", path, "{}", 0, &status, &a, (size_t)1 << 20, e);
	if (!rc && status != 200) {
		kiln_ai_excerpt(ex, sizeof ex, a.data ? a.data : "", a.len);
		rc = kiln_error_set(e, KILN_E_NET, rt->ep->url, "/cancel/%s answered HTTP %ld: %s",
				    id, status, ex);
	}
	kiln_buf_release(&a);
	return rc;
}

/* --- the LoRA -------------------------------------------------------------------------------- */

static int lower_hex64(const char *s)
{
	if (!s || strlen(s) != 64)
		return 0;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return 0;
	return 1;
}

/* The download of url into fd (at most max bytes), its SHA-256 into sha. */
static int fetch(const struct kiln_runpod_train *rt, const char *url, int fd, uint64_t max,
		 char sha[65], struct kiln_error *e)
{
	struct kiln_buf a = KILN_BUF_INIT;
	struct xfer x;
	int rc;
	xfer_init(&x, rt, "GET", url, &a, 0);
	x.out_fd = fd;
	x.out_max = max;
	x.data = 1;
	/* no API key: the URL is the worker's, on another host */
	rc = exchange(rt, &x, 0, e);
	if (rc) {
		if (x.h_live)
			kiln_sha256_abort(&x.out_h);
		return rc;
	}
	kiln_sha256_final(&x.out_h, NULL, sha);
	if (x.status != 200) {
		return kiln_error_set(e, KILN_E_FAILED, rt->ep->url, "the LoRA at %.300s answered "
				      "HTTP %ld", url, x.status);
	}
	return 0;
}

int kiln_runpod_train_lora(const struct kiln_runpod_train *rt, const char *lora_b64,
			   const char *lora_url, const char *lora_sha256, uint64_t max,
			   const char *dest, struct kiln_error *e)
{
	char tmp[4200], sha[65];
	int fd, rc = 0;
	if (lora_sha256 && !lower_hex64(lora_sha256))
		return kiln_error_set(e, KILN_E_FAILED, rt->ep->url, "the job's lora_sha256 is not "
				      "64 lower-case hex digits");
	if (!lora_b64 && !lora_url)
		return kiln_error_set(e, KILN_E_FAILED, rt->ep->url, "the job completed without "
				      "a LoRA in its output (neither lora nor lora_url)");
	if (lora_url && strncmp(lora_url, "https://", 8) && strncmp(lora_url, "http://", 7))
		return kiln_error_set(e, KILN_E_FAILED, rt->ep->url, "the job's lora_url is not an "
				      "http(s) URL: %.200s", lora_url);
	snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", dest);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0)
		return kiln_error_set(e, KILN_E_IO, dest, "cannot write: %s", strerror(errno));
	if (fchmod(fd, 0644))
		rc = kiln_error_set(e, KILN_E_IO, tmp, "cannot write: %s", strerror(errno));
	if (rc) {
	} else if (lora_b64) {
		struct kiln_buf b = KILN_BUF_INIT;
		int d = kiln_base64_decode(lora_b64, strlen(lora_b64), &b);
		if (d == -2)
			rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
		else if (d)
			rc = kiln_error_set(e, KILN_E_FAILED, rt->ep->url, "the job's LoRA is not "
					    "base64");
		else if (b.len > max)
			rc = kiln_error_set(e, KILN_E_FAILED, rt->ep->url, "the job's LoRA is %zu "
					    "bytes, over %llu", b.len, (unsigned long long)max);
		for (size_t done = 0; !rc && done < b.len;) {
			ssize_t w = write(fd, b.data + done, b.len - done);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				rc = kiln_error_set(e, KILN_E_IO, tmp, "cannot write: %s",
						    strerror(errno));
			else
				done += (size_t)w;
		}
		kiln_sha256_hex(b.data ? b.data : "", b.len, sha);
		kiln_buf_release(&b);
	} else {
		rc = fetch(rt, lora_url, fd, max, sha, e);
	}
	if (!rc && lora_sha256 && strcmp(sha, lora_sha256))
		rc = kiln_error_set(e, KILN_E_FAILED, rt->ep->url, "the LoRA %s has SHA-256 %.12s, "
				    "not the %.12s the job's output says: not kept",
				    lora_url ? "downloaded" : "sent", sha, lora_sha256);
	if (!rc && fsync(fd))
		rc = kiln_error_set(e, KILN_E_IO, tmp, "cannot write: %s", strerror(errno));
	if (close(fd) && !rc)
		rc = kiln_error_set(e, KILN_E_IO, tmp, "cannot write: %s", strerror(errno));
	if (!rc && rename(tmp, dest))
		rc = kiln_error_set(e, KILN_E_IO, dest, "cannot write: %s", strerror(errno));
	if (rc)
		unlink(tmp);
	return rc;
}
