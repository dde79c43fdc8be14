/* dispatch: the event loop against in-process servers (libmicrohttpd) speaking the A1111 and
 * sd.cpp job protocols. Every job ends in exactly one final attempt; an endpoint never runs
 * more than its concurrency; image checks run on worker threads while the endpoint already
 * runs its next job; a refused image is a failed attempt (check_failed) and is retried; 5xx
 * answers are retried; polls of an async job come near its expected end, not from the start.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <dlfcn.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "render/dispatch.h"
#include "render/engines/engine.h"

#define MAXJOBS 64
#define MAXEV 4096

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* libcurl's global setup, interposed: libkiln (linked statically into this program) calls
 * this one, which can fail on demand and otherwise calls libcurl's. */
static int curl_init_fails;
CURLcode curl_global_init(long flags)
{
	CURLcode (*real)(long) = (CURLcode (*)(long))dlsym(RTLD_NEXT, "curl_global_init");
	if (curl_init_fails)
		return CURLE_FAILED_INIT;
	return real ? real(flags) : CURLE_FAILED_INIT;
}

/* --- the fake servers -------------------------------------------------------------------- */

struct server {
	struct MHD_Daemon *d;
	char url[64];
	pthread_mutex_t mu;
	int running, max_running;  /* job requests at once */
	int requests;              /* job requests (POST) */
	int fail_every;            /* answer 500 to every n-th job request (0: never) */
	unsigned latency_ms;
	/* sd.cpp: jobs by id, when each finishes; polls seen */
	double done_at[MAXJOBS * 4];
	double submitted[MAXJOBS * 4];
	double first_poll[MAXJOBS * 4];
	int polls[MAXJOBS * 4];
	int njobs;
	int redirected;            /* requests answered 301 (a reverse proxy's moved path) */
	int not_json;              /* POST bodies without Content-Type: application/json */
	int bad_method;            /* a job request that came as anything but POST */
	const char *loras;         /* A1111 probe: the /sdapi/v1/loras answer (NULL: 404) */
	int drop_loras;            /* answer without "Lora hashes" (a LoRA dropped) */
	int probes;                /* GET /sdapi/v1/loras seen */
	int got_lora_b;            /* job requests with <lora:b: */
};

struct post {
	char body[4096];
	size_t len;
};

/* the job number a request is about: the prompt is "job <k>" */
static int job_of(const char *body)
{
	const char *p = strstr(body, "job ");
	return p ? atoi(p + 4) : -1;
}

static struct {
	pthread_mutex_t mu;
	char what[MAXEV];          /* 'r' request of job k, 'c' check began, 'e' check ended */
	int job[MAXEV];
	int n;
} ev = {PTHREAD_MUTEX_INITIALIZER, {0}, {0}, 0};

static void event(char what, int job)
{
	pthread_mutex_lock(&ev.mu);
	if (ev.n < MAXEV) {
		ev.what[ev.n] = what;
		ev.job[ev.n++] = job;
	}
	pthread_mutex_unlock(&ev.mu);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *body)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body,
								   MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;
	MHD_add_response_header(r, "Content-Type", "application/json");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
			       const char *method, const char *version, const char *data,
			       size_t *size, void **state)
{
	struct server *sv = cls;
	struct post *p = *state;
	char out[512];
	(void)version;
	if (!strcmp(method, "POST")) {
		if (!p) {
			*state = p = calloc(1, sizeof *p);
			return MHD_YES;
		}
		if (*size) {
			size_t n = *size < sizeof p->body - 1 - p->len ? *size
								       : sizeof p->body - 1 - p->len;
			memcpy(p->body + p->len, data, n);
			p->len += n;
			*size = 0;
			return MHD_YES;
		}
	}
	if (!strncmp(url, "/proxy/", 7)) {
		/* a 301 to the path without the prefix: libcurl must follow it, a POST as a POST */
		struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"",
									   MHD_RESPMEM_PERSISTENT);
		enum MHD_Result ret;
		pthread_mutex_lock(&sv->mu);
		sv->redirected++;
		pthread_mutex_unlock(&sv->mu);
		MHD_add_response_header(r, "Location", url + 6);
		ret = MHD_queue_response(c, 301, r);
		MHD_destroy_response(r);
		return ret;
	}
	if (!strcmp(method, "POST")) {
		const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
		if (!ct || strcmp(ct, "application/json")) {
			pthread_mutex_lock(&sv->mu);
			sv->not_json++;
			pthread_mutex_unlock(&sv->mu);
		}
	}
	if ((!strcmp(url, "/sdapi/v1/txt2img") || !strcmp(url, "/sdcpp/v1/img_gen")) &&
	    strcmp(method, "POST")) {
		pthread_mutex_lock(&sv->mu);
		sv->bad_method++;
		pthread_mutex_unlock(&sv->mu);
		return reply(c, 405, "{}");
	}
	if (!strcmp(url, "/sdapi/v1/progress") || !strcmp(url, "/sdcpp/v1/capabilities"))
		return reply(c, 200, "{}");
	if (!strcmp(url, "/sdapi/v1/loras") && sv->loras) {
		pthread_mutex_lock(&sv->mu);
		sv->probes++;
		pthread_mutex_unlock(&sv->mu);
		return reply(c, 200, sv->loras);
	}
	if (!strcmp(url, "/sdapi/v1/txt2img")) {
		int k = job_of(p->body), fail;
		pthread_mutex_lock(&sv->mu);
		fail = sv->fail_every && ++sv->requests % sv->fail_every == 0;
		if (!sv->fail_every)
			sv->requests++;
		if (++sv->running > sv->max_running)
			sv->max_running = sv->running;
		pthread_mutex_unlock(&sv->mu);
		event('r', k);
		if (sv->latency_ms)
			usleep(sv->latency_ms * 1000);
		pthread_mutex_lock(&sv->mu);
		sv->running--;
		pthread_mutex_unlock(&sv->mu);
		if (fail)
			return reply(c, 500, "{\"error\": \"injected\"}");
		/* "image" = base64 of "img <k>"; info: a "Lora hashes" entry per <lora:x:w> */
		snprintf(out, sizeof out, "img %d", k);
		{
			struct kiln_buf b = KILN_BUF_INIT;
			char body[512], hashes[128] = "";
			size_t hl = 0;
			for (const char *t = p->body; (t = strstr(t, "<lora:")); t += 6) {
				const char *end = strchr(t + 6, ':');
				if (end && hl < 100)
					hl += (size_t)snprintf(hashes + hl, sizeof hashes - hl,
							       "%s%.*s: 0123", hl ? ", " : "",
							       (int)(end - t - 6), t + 6);
				if (end && !strncmp(t + 6, "b:", 2)) {
					pthread_mutex_lock(&sv->mu);
					sv->got_lora_b++;
					pthread_mutex_unlock(&sv->mu);
				}
			}
			if (sv->drop_loras)
				hashes[0] = 0;
			assert_int_equal(kiln_b64_encode(out, strlen(out), &b), 0);
			snprintf(body, sizeof body, "{\"images\": [\"%s\"], \"info\": "
				 "\"{\\\"extra_generation_params\\\": {\\\"Lora hashes\\\": "
				 "\\\"%s\\\"}}\"}", b.data, hashes);
			kiln_buf_release(&b);
			return reply(c, 200, body);
		}
	}
	if (!strcmp(url, "/sdcpp/v1/img_gen")) {
		int id;
		pthread_mutex_lock(&sv->mu);
		id = sv->njobs++;
		sv->submitted[id] = now();
		sv->done_at[id] = sv->submitted[id] + sv->latency_ms / 1000.0;
		pthread_mutex_unlock(&sv->mu);
		snprintf(out, sizeof out, "{\"id\": \"j%d\", \"status\": \"queued\"}", id);
		return reply(c, 202, out);
	}
	if (!strncmp(url, "/sdcpp/v1/jobs/j", 16)) {
		int id = atoi(url + 16), done;
		double t = now();
		pthread_mutex_lock(&sv->mu);
		if (!sv->polls[id]++)
			sv->first_poll[id] = t;
		done = t >= sv->done_at[id];
		pthread_mutex_unlock(&sv->mu);
		if (!done)
			return reply(c, 200, "{\"status\": \"generating\"}");
		return reply(c, 200, "{\"status\": \"completed\", \"result\": {\"images\": "
			     "[{\"b64_json\": \"aW1n\"}]}}");
	}
	return reply(c, 404, "{}");
}

static void done_cb(void *cls, struct MHD_Connection *c, void **state,
		    enum MHD_RequestTerminationCode code)
{
	(void)cls, (void)c, (void)code;
	free(*state);
	*state = NULL;
}

static void server_start(struct server *sv)
{
	const union MHD_DaemonInfo *di;
	pthread_mutex_init(&sv->mu, NULL);
	sv->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION,
				 0, NULL, NULL, handler, sv, MHD_OPTION_NOTIFY_COMPLETED, done_cb,
				 NULL, MHD_OPTION_END);
	assert_non_null(sv->d);
	di = MHD_get_daemon_info(sv->d, MHD_DAEMON_INFO_BIND_PORT);
	snprintf(sv->url, sizeof sv->url, "http://127.0.0.1:%u", (unsigned)di->port);
}

static void server_stop(struct server *sv)
{
	MHD_stop_daemon(sv->d);
	pthread_mutex_destroy(&sv->mu);
}

/* --- the caller's side ------------------------------------------------------------------- */

struct run {
	size_t njobs;
	const char *lora_odd, *lora_even; /* the LoRA of odd / even jobs (NULL: none) */
	int rc;                    /* kiln_dispatch_run's */
	struct kiln_error e;
	int final[MAXJOBS], ok[MAXJOBS], attempts[MAXJOBS], refused[MAXJOBS];
	int check_failed;          /* attempts with check_failed set */
	int refuse_first_of_every; /* check refuses the first attempt of every n-th job */
	unsigned check_ms;         /* a check takes this long */
	pthread_t loop;
	int check_off_loop;        /* a check ran on another thread than the loop's */
	int seen[MAXJOBS];         /* checks so far per job (only one runs per job at a time) */
};

static int op_request(void *user, size_t k, struct kiln_ai_request *rq, struct kiln_error *e)
{
	char p[32];
	(void)e;
	memset(rq, 0, sizeof *rq);
	snprintf(p, sizeof p, "job %zu", k);
	rq->prompt = strdup(p);
	rq->negative = strdup("");
	rq->sampler = "Euler";
	rq->steps = 1;
	rq->width = rq->height = 64;
	rq->seed = k;
	snprintf(rq->recipe, sizeof rq->recipe, "%064zx", k);
	{
		const struct run *r = user;
		const char *l = k % 2 ? r->lora_odd : r->lora_even;
		if (l) {
			rq->loras = calloc(1, sizeof *rq->loras);
			assert_non_null(rq->loras);
			rq->loras[0].name = (char *)l;
			rq->loras[0].weight = 1;
			rq->nloras = 1;
		}
	}
	return 0;
}

static int op_check(void *user, size_t k, struct kiln_ai_job *aj, struct kiln_error *e)
{
	struct run *r = user;
	(void)aj;
	if (!pthread_equal(pthread_self(), r->loop))
		r->check_off_loop = 1;
	event('c', (int)k);
	if (r->check_ms)
		usleep(r->check_ms * 1000);
	event('e', (int)k);
	if (r->refuse_first_of_every && k % (size_t)r->refuse_first_of_every == 0 &&
	    !r->seen[k]++)
		return kiln_error_set(e, KILN_E_IMAGE, NULL, "refused on purpose");
	return 0;
}

static int op_attempt(void *user, const struct kiln_dispatch_attempt *a, struct kiln_error *e)
{
	struct run *r = user;
	(void)e;
	assert_true(pthread_equal(pthread_self(), r->loop));
	assert_true(a->job < r->njobs);
	assert_int_equal(r->final[a->job], 0); /* nothing after the final attempt */
	r->attempts[a->job]++;
	r->check_failed += a->check_failed;
	if (a->check_failed) {
		assert_false(a->ok);
		assert_non_null(strstr(a->error, "refused on purpose"));
		r->refused[a->job]++;
	}
	if (a->final) {
		r->final[a->job] = 1;
		r->ok[a->job] = a->ok;
	}
	return 0;
}

static void run(struct run *r, struct kiln_endpoint *eps, size_t neps, unsigned retries,
		unsigned threads)
{
	struct kiln_dispatch_opts o;
	struct kiln_dispatch_ops ops;
	struct kiln_error e;
	memset(&o, 0, sizeof o);
	memset(&ops, 0, sizeof ops);
	o.endpoints = eps;
	o.nendpoints = neps;
	o.njobs = r->njobs;
	o.retries = retries;
	o.backoff_base = 0.001;
	o.backoff_max = 0.005;
	o.breaker_failures = 1000;
	o.check_threads = threads;
	ops.request = op_request;
	ops.check = op_check;
	ops.attempt = op_attempt;
	ops.user = r;
	o.breaker_failures = r->lora_odd || r->lora_even ? 5 : 1000;
	r->loop = pthread_self();
	kiln_error_clear(&e);
	r->rc = kiln_dispatch_run(&o, &ops, NULL, &e);
	r->e = e;
	if (r->rc == KILN_E_SPEC)
		return; /* refused before any job */
	assert_int_equal(r->rc, 0);
	for (size_t k = 0; k < r->njobs; k++)
		assert_int_equal(r->final[k], 1);
}

static void endpoint(struct kiln_endpoint *ep, const struct server *sv, const char *engine,
		     unsigned conc)
{
	memset(ep, 0, sizeof *ep);
	ep->url = (char *)sv->url;
	ep->engine = (char *)engine;
	ep->concurrency = conc;
	ep->connect_timeout = 5;
	ep->timeout = 10;
}

/* Every job once, on three endpoints of concurrency 2, with checks beside the loop, some
 * images refused once and some answers 500. */
static void test_every_job_once(void **state)
{
	for (unsigned threads = 0; threads <= 2; threads += 2) {
		struct server sv[3];
		struct kiln_endpoint eps[3];
		struct run r;
		int refused = 0;
		(void)state;
		memset(sv, 0, sizeof sv);
		memset(&r, 0, sizeof r);
		for (int i = 0; i < 3; i++) {
			sv[i].latency_ms = 5;
			sv[i].fail_every = i == 1 ? 4 : 0;
			server_start(&sv[i]);
			endpoint(&eps[i], &sv[i], "a1111", 2);
		}
		r.njobs = 40;
		r.refuse_first_of_every = 5;
		run(&r, eps, 3, 10, threads);
		for (size_t k = 0; k < r.njobs; k++) {
			assert_int_equal(r.ok[k], 1);
			assert_int_equal(r.refused[k], k % 5 == 0);
			refused += r.refused[k];
		}
		assert_int_equal(r.check_failed, refused);
		assert_int_equal(r.check_off_loop, threads > 0);
		for (int i = 0; i < 3; i++) {
			assert_true(sv[i].max_running <= 2);
			server_stop(&sv[i]);
		}
	}
}

/* The probe: before its first job each endpoint is asked what it has; a job that needs a LoRA
 * an endpoint lacks never goes there; a job none can run stops the run before any job is sent
 * (KILN_E_SPEC naming the endpoints and what they have); an endpoint whose answers drop the
 * LoRA for 5 jobs in a row is given up for the run. */
static void test_probe_pools_refusal_parking(void **state)
{
	struct server sv[2];
	struct kiln_endpoint eps[2];
	struct run r;
	(void)state;
	memset(sv, 0, sizeof sv);
	sv[0].loras = "[{\"name\": \"a\", \"alias\": \"a\"}]";
	sv[1].loras = "[{\"name\": \"a\"}, {\"name\": \"b\", \"alias\": \"bee\"}]";
	for (int i = 0; i < 2; i++) {
		server_start(&sv[i]);
		endpoint(&eps[i], &sv[i], "a1111", 2);
	}
	/* pools: odd jobs need b, which only server 1 has (written with a folder and extension) */
	memset(&r, 0, sizeof r);
	r.njobs = 20;
	r.lora_even = "a";
	r.lora_odd = "loras/b.safetensors";
	run(&r, eps, 2, 3, 0);
	for (size_t k = 0; k < r.njobs; k++)
		assert_int_equal(r.ok[k], 1);
	assert_int_equal(sv[0].got_lora_b, 0);
	assert_int_equal(sv[1].got_lora_b, 10); /* sent as listed: <lora:b:1> */
	assert_int_equal(sv[0].probes, 1);
	assert_int_equal(sv[1].probes, 1);
	/* refusal: c is nowhere; nothing is sent */
	sv[0].requests = sv[1].requests = 0;
	memset(&r, 0, sizeof r);
	r.njobs = 6;
	r.lora_odd = "c";
	run(&r, eps, 2, 3, 0);
	assert_int_equal(r.rc, KILN_E_SPEC);
	assert_non_null(strstr(r.e.msg, "3 jobs cannot run on any endpoint"));
	assert_non_null(strstr(r.e.msg, "has no LoRA `c`; it has: a"));
	assert_non_null(strstr(r.e.msg, sv[0].url));
	assert_non_null(strstr(r.e.msg, sv[1].url));
	assert_int_equal(sv[0].requests + sv[1].requests, 0);
	/* parking: server 0 lists a but drops it; every job ends on server 1 */
	sv[0].drop_loras = 1;
	sv[0].requests = sv[1].requests = 0;
	memset(&r, 0, sizeof r);
	r.njobs = 30;
	r.lora_even = r.lora_odd = "a";
	run(&r, eps, 2, 10, 0);
	for (size_t k = 0; k < r.njobs; k++)
		assert_int_equal(r.ok[k], 1);
	assert_true(sv[0].requests >= 5 && sv[0].requests <= 6); /* 5, and one under way */
	for (int i = 0; i < 2; i++)
		server_stop(&sv[i]);
}

/* libcurl that does not start is an error naming it, not a run on half-set-up libcurl; the
 * next run tries again. (First test: nothing has set libcurl up yet.) */
static void test_curl_init_fails(void **state)
{
	struct server sv;
	struct kiln_endpoint ep;
	struct run r;
	struct kiln_dispatch_opts o;
	struct kiln_dispatch_ops ops;
	struct kiln_error e;
	(void)state;
	memset(&sv, 0, sizeof sv);
	memset(&r, 0, sizeof r);
	server_start(&sv);
	endpoint(&ep, &sv, "a1111", 1);
	r.njobs = 2;
	memset(&o, 0, sizeof o);
	memset(&ops, 0, sizeof ops);
	o.endpoints = &ep;
	o.nendpoints = 1;
	o.njobs = r.njobs;
	ops.request = op_request;
	ops.attempt = op_attempt;
	ops.user = &r;
	r.loop = pthread_self();
	curl_init_fails = 1;
	kiln_error_clear(&e);
	assert_int_not_equal(kiln_dispatch_run(&o, &ops, NULL, &e), 0);
	curl_init_fails = 0;
	assert_non_null(strstr(e.msg, "libcurl did not start"));
	assert_int_equal(sv.requests, 0);
	run(&r, &ep, 1, 0, 0);
	assert_int_equal(r.ok[0], 1);
	assert_int_equal(r.ok[1], 1);
	server_stop(&sv);
}

/* Out of retries: the last attempt is final and failed. */
static void test_retries_run_out(void **state)
{
	struct server sv;
	struct kiln_endpoint ep;
	struct run r;
	(void)state;
	memset(&sv, 0, sizeof sv);
	memset(&r, 0, sizeof r);
	sv.fail_every = 1;
	server_start(&sv);
	endpoint(&ep, &sv, "a1111", 1);
	r.njobs = 3;
	run(&r, &ep, 1, 2, 2);
	for (size_t k = 0; k < r.njobs; k++) {
		assert_int_equal(r.ok[k], 0);
		assert_int_equal(r.attempts[k], 3);
	}
	server_stop(&sv);
}

/* The endpoint runs job k+1 while job k's image is still being checked. */
static void test_check_beside_next_job(void **state)
{
	struct server sv;
	struct kiln_endpoint ep;
	struct run r;
	int overlap = 0;
	(void)state;
	memset(&sv, 0, sizeof sv);
	memset(&r, 0, sizeof r);
	ev.n = 0;
	server_start(&sv);
	endpoint(&ep, &sv, "a1111", 1);
	r.njobs = 6;
	r.check_ms = 60;
	run(&r, &ep, 1, 0, 2);
	/* some request of job k+1 reached the server before job k's check ended */
	for (int i = 0; i < ev.n; i++) {
		if (ev.what[i] != 'r' || ev.job[i] < 1)
			continue;
		for (int j = i + 1; j < ev.n; j++)
			if (ev.what[j] == 'e' && ev.job[j] == ev.job[i] - 1)
				overlap = 1;
	}
	assert_true(overlap);
	server_stop(&sv);
}

/* sd.cpp jobs of 200 ms: once the endpoint knows its job time, the first poll of a job comes
 * near its end (not 20 ms after submission) and a job takes few polls. */
static void test_polls_near_the_end(void **state)
{
	struct server sv;
	struct kiln_endpoint ep;
	struct run r;
	(void)state;
	memset(&sv, 0, sizeof sv);
	memset(&r, 0, sizeof r);
	sv.latency_ms = 200;
	server_start(&sv);
	endpoint(&ep, &sv, "sdcpp", 1);
	r.njobs = 8;
	run(&r, &ep, 1, 0, 1);
	assert_int_equal(sv.njobs, 8);
	for (int id = 3; id < sv.njobs; id++) {
		double first = sv.first_poll[id] - sv.submitted[id];
		assert_true(first > 0.12);   /* timers run late under load, never early */
		assert_true(sv.polls[id] <= 8);
	}
	server_stop(&sv);
}

/* Behind a reverse proxy that answers 301 (a moved path): health checks, job POSTs and
 * polls follow it, the POSTs stay POSTs with their JSON body and type. */
static void test_redirects(void **state)
{
	static char url[2][80];
	const char *const engines[] = {"a1111", "sdcpp"};
	(void)state;
	for (int i = 0; i < 2; i++) {
		struct server sv;
		struct kiln_endpoint ep;
		struct run r;
		memset(&sv, 0, sizeof sv);
		memset(&r, 0, sizeof r);
		server_start(&sv);
		endpoint(&ep, &sv, engines[i], 2);
		snprintf(url[i], sizeof url[i], "%s/proxy", sv.url);
		ep.url = url[i];
		r.njobs = 6;
		run(&r, &ep, 1, 0, 0);
		for (size_t k = 0; k < r.njobs; k++)
			assert_int_equal(r.ok[k], 1);
		assert_true(sv.redirected >= 7); /* the health check and every job */
		assert_int_equal(sv.bad_method, 0);
		assert_int_equal(sv.not_json, 0);
		server_stop(&sv);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_curl_init_fails),
		cmocka_unit_test(test_every_job_once),
		cmocka_unit_test(test_retries_run_out),
		cmocka_unit_test(test_check_beside_next_job),
		cmocka_unit_test(test_polls_near_the_end),
		cmocka_unit_test(test_redirects),
		cmocka_unit_test(test_probe_pools_refusal_parking),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
