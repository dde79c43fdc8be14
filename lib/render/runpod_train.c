/* runpod_train: a training job on a RunPod serverless endpoint (kiln train run), one request
 * at a time: the same queue API as the image jobs of runpod.c (POST {url}/run {input, policy}
 * -> {id}; GET /status/{id} until COMPLETED, FAILED, CANCELLED or TIMED_OUT; POST
 * /cancel/{id}; Authorization: Bearer KEY), with the same rules: the id must look like one
 * (letters, digits, '-', '_'), a body over KILN_RUNPOD_MAX_BODY is refused before it is sent,
 * 404 on /status means the job is unknown or its result expired (RunPod keeps one 30 minutes).
 * A training job is one long job, not thousands of short ones: it is driven here with blocking
 * libcurl easy requests from the command's own loop instead of the render dispatcher.
 * What the worker is sent and answers is kiln's own contract (docs/training.md "Running"). */
#include "kiln/render.h"
#include "render/engines/engine.h"
#include "util/alloc.h"
#include "util/base64.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sink {
	struct kiln_buf *b;
	int over;
};

static size_t on_data(char *p, size_t size, size_t n, void *user)
{
	struct sink *s = user;
	if (kiln_buf_add(s->b, p, size * n)) {
		s->over = 1;
		return 0;
	}
	return size * n;
}

/* One request: *status the HTTP status (0 and e: no answer). */
static int request(const struct kiln_endpoint *ep, const char *token, const char *method,
		   const char *path, const char *body, size_t len, long *status,
		   struct kiln_buf *answer, struct kiln_error *e)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	struct sink s = {answer, 0};
	char url[2048], auth[1200], err[CURL_ERROR_SIZE] = "";
	CURLcode cc;
	*status = 0;
	if (!c)
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory (libcurl)");
	snprintf(url, sizeof url, "%s%s", ep->url, path);
	h = curl_slist_append(h, "Content-Type: application/json");
	if (token && *token) {
		snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
		h = curl_slist_append(h, auth);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	}
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)((ep->connect_timeout > 0 ? ep->connect_timeout : 10) * 1000));
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)((ep->timeout > 0 ? ep->timeout : 600) *
						       1000));
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	cc = curl_easy_perform(c);
	if (cc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (s.over)
		return kiln_error_set(e, KILN_E_NET, ep->url, "%s%s: the answer is too big", ep->url,
				      path);
	if (cc != CURLE_OK)
		return kiln_error_set(e, KILN_E_NET, ep->url, "%s %s: %s", method, path,
				      *err ? err : curl_easy_strerror(cc));
	return 0;
}

int kiln_runpod_job_submit(const struct kiln_endpoint *ep, const char *token, const char *body,
			   size_t len, char *id, size_t idcap, struct kiln_error *e)
{
	struct kiln_buf a = KILN_BUF_INIT;
	json_t *o;
	const char *s;
	char ex[300];
	long status;
	int rc;
	if (len > KILN_RUNPOD_MAX_BODY)
		return kiln_error_set(e, KILN_E_SPEC, ep->url, "the training job is %zu bytes, over "
				      "the 10 MB RunPod takes in a /run body: give the endpoint an "
				      "S3 upload, or train on fewer or smaller images", len);
	kiln_buf_init(&a, (size_t)1 << 20);
	if ((rc = request(ep, token, "POST", "/run", body, len, &status, &a, e))) {
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

int kiln_runpod_job_status(const struct kiln_endpoint *ep, const char *token, const char *id,
			   size_t cap, long *status, char **answer, struct kiln_error *e)
{
	struct kiln_buf a = KILN_BUF_INIT;
	char path[256];
	int rc;
	*answer = NULL;
	kiln_buf_init(&a, cap);
	snprintf(path, sizeof path, "/status/%s", id);
	if ((rc = request(ep, token, "GET", path, NULL, 0, status, &a, e))) {
		kiln_buf_release(&a);
		return rc;
	}
	*answer = kiln_buf_detach(&a, NULL);
	return 0;
}

int kiln_runpod_job_cancel(const struct kiln_endpoint *ep, const char *token, const char *id,
			   struct kiln_error *e)
{
	struct kiln_buf a = KILN_BUF_INIT;
	char path[256], ex[300];
	long status;
	int rc;
	kiln_buf_init(&a, (size_t)1 << 20);
	snprintf(path, sizeof path, "/cancel/%s", id);
	rc = request(ep, token, "POST", path, "{}", 2, &status, &a, e);
	if (!rc && status != 200) {
		kiln_ai_excerpt(ex, sizeof ex, a.data ? a.data : "", a.len);
		rc = kiln_error_set(e, KILN_E_NET, ep->url, "/cancel/%s answered HTTP %ld: %s", id,
				    status, ex);
	}
	kiln_buf_release(&a);
	return rc;
}

int kiln_runpod_b64_encode(const void *p, size_t n, struct kiln_buf *out)
{
	return kiln_base64_add(out, p, n) ? KILN_E_NOMEM : 0;
}

int kiln_runpod_b64_decode(const char *s, size_t n, struct kiln_buf *out)
{
	int rc = kiln_base64_decode(s, n, out);
	return rc == -2 ? KILN_E_NOMEM : rc ? KILN_E_IO : 0;
}
