/* dispatch: one libcurl multi event loop driving every AI job over every endpoint.
 *
 * Invariants: at most `concurrency` attempts run on an endpoint at once (a slot each; polls of
 * an async job use its slot, they are not extra jobs); a job is in exactly one place: the
 * fresh queue (a ring), the retry list (with a not-before time), a slot, or finished. Every
 * attempt ends in exactly one ops->attempt call. A remote id is handed to ops->remote before
 * the dispatcher sends anything else for that job, so a kill -9 never loses track of a job a
 * server may be running. Retries wait base·2^(n-1) (capped) times a jitter in [0.5, 1), and
 * go to another endpoint when one is up. An endpoint failing `breaker_failures` attempts in a
 * row is parked (2 s, doubling to 60 s), then health-checked before it takes jobs again;
 * after `health_tries` failed checks (or a 401/403) it is given up for the run, and when every
 * endpoint is given up the remaining jobs fail with the reason.
 *
 * Nothing waits between one job's answer and the next job's submission on that endpoint: the
 * image check (ops->check, a full decode) runs on `check_threads` worker threads while the
 * endpoint already runs its next job (a checking job holds a slot, not the endpoint's
 * concurrency); a worker hands the verdict back through curl_multi_wakeup and the loop ends
 * the attempt. Everything else, the other callbacks included, runs on the caller's thread.
 * Easy handles stay with their slot and connections are kept alive, except for queued-job
 * submissions (see send_http).
 *
 * Polls of an async job wait for the endpoint's expected job time, then come at a twentieth
 * of it, so polling adds ~2.5% to a job, not a fixed interval. The expectation is a running
 * mean of where each job really finished, between the last poll that found it pending and the
 * first that found it done; a mean of when jobs were *seen* done would feed on its own delay
 * (a late first poll sees the job done late, and the next first poll comes later still).
 *
 * Sizes: jobs up to millions (24 bytes of state each plus 16 of queues; requests are built
 * only while a job runs), endpoints up to hundreds, slots = 2 x sum of concurrencies + one a
 * endpoint for health checks; per loop turn the work is O(slots + endpoints + due retries).
 */
#include "render/dispatch.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/prng.h"
#include "util/sigv4.h"

#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { EP_CHECKING, EP_UP, EP_PARKED, EP_DEAD };
enum { J_QUEUED, J_RUNNING, J_RETRY, J_DONE };

struct jstate {
	unsigned attempts;
	int last_ep;               /* -1: none */
	unsigned char state;
	uint32_t cls;              /* its class (struct cls): which endpoints can run it */
	double not_before;         /* J_RETRY */
};

/* Jobs that the same endpoints can run share a class: for each endpoint, whether its engine
 * says it can (supports(), from the probe's caps) and, when it cannot, why. A few classes
 * whatever the number of jobs (one per distinct verdict across the endpoints). */
enum { CAN_NO, CAN_YES, CAN_UNKNOWN };
struct cls {
	unsigned char *can;        /* [nendpoints]: CAN_* */
	char *why;                 /* "URL has no LoRA `x`; it has: ...; URL ..." (NULL: none) */
	uint64_t hash;
};

struct slot;

struct ep {
	const struct kiln_endpoint *cfg;
	const struct kiln_engine *eng;
	unsigned active;
	unsigned consecutive;
	int state;
	double until;              /* parked until (monotonic) */
	double park;
	unsigned health_fail;
	struct slot *health;
	double expect;             /* running mean of a job's seconds here (0: none known) */
	double expect_var;         /* running variance of the same */
	struct curl_slist *headers;      /* GETs and multipart uploads: no Content-Type of ours */
	struct curl_slist *json_headers; /* JSON bodies: headers + Content-Type: application/json */
	size_t *resume;            /* indexes into o->resume still to start here */
	size_t nresume;
	char why[1024];            /* why it was given up */
	char refusal[400];         /* the last refusal's start (AWS says why there) */
	long refusal_status;       /* and its HTTP status */
	struct kiln_ai_caps caps;  /* what it has (its engine's probe), known once probed */
	int first_done;            /* its first check ended (probed, or failed once) */
	int ring_starved;          /* no job left in the fresh queue that it can run */
	unsigned mismatches;       /* answers in a row that did not apply what was asked */
	unsigned busy;             /* back-pressure answers in a row (KILN_STEP_BUSY) */
	int classified;            /* its verdicts are in the job classes */
	double cost;               /* USD spent on it in this run */
	unsigned long priced;      /* attempts with a cost */
};

struct slot {
	int used, is_health, waiting;
	int is_probe;              /* a probe exchange (is_health is set too) */
	int released;              /* the endpoint's concurrency was given back (checking) */
	size_t job, ep;
	struct kiln_ai_request rq;
	int have_rq;
	struct kiln_ai_job aj;
	struct kiln_http http;
	CURL *h;                   /* kept for the slot's next transfers (survives free_slot) */
	int in_multi;
	curl_mime *mime;
	struct curl_slist *signed_headers; /* a signed request's headers (SigV4), this transfer */
	struct kiln_buf resp_headers;      /* the answer's headers, when the engine wants them */
	struct kiln_buf resp;      /* survives free_slot: its memory is reused */
	size_t cap;                /* the most bytes this exchange's answer may have */
	int over_cap;              /* the answer went past cap: the transfer was cut */
	double due;                /* monotonic: when a waiting exchange is sent */
	double started;            /* unix */
	double started_mono;
	double pending_at;         /* monotonic: the last answer that said "not yet" (POLL) */
	double done_at;            /* the first answer after that which did not (0: none) */
	long status;               /* of the exchange that brought the image (checking) */
	double retry_after;        /* the last answer's Retry-After, seconds (0: none) */
	int check_rc;              /* a worker's verdict and why */
	struct kiln_error check_err;
	struct slot *qnext;        /* check queues */
	char errbuf[CURL_ERROR_SIZE];
};

/* The image checkers: slots go in through todo, come back through done (under mu). */
struct checkers {
	pthread_t *t;
	unsigned n;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct slot *todo, **todo_tail, *done;
	struct slot *held;         /* loop thread only: waiting to go to todo (check_release) */
	int stop;
	const struct kiln_dispatch_ops *ops;
	CURLM *multi;
};

struct run {
	const struct kiln_dispatch_opts *o;
	const struct kiln_dispatch_ops *ops;
	struct kiln_dispatch_stats *stats;
	struct ep *eps;
	struct jstate *js;
	size_t *ring, head, count;  /* fresh queue */
	size_t *retry, nretry;      /* retry list */
	struct slot *slots;
	size_t nslots;
	struct slot **freev;        /* free slots (a stack) */
	size_t nfree;
	struct checkers ck;
	size_t remaining;           /* jobs not finished */
	CURLM *multi;
	struct kiln_rng rng;
	int rc;                     /* a callback failed: stop */
	struct kiln_error *e;
	struct cls *cls;            /* job classes (see struct cls) */
	size_t ncls, capcls;
	uint32_t *cls_ht;           /* open addressing: class index + 1, 0 empty */
	size_t cls_htsize;
	int classify;               /* some engine can refuse jobs: classes are kept */
	int gate_open;              /* every endpoint's first check ended: jobs may start */
	int recheck;                /* an endpoint was given up: look for jobs none can run */
	double spent;               /* USD: earlier runs' and this run's finished attempts */
	int budget_stop;            /* a job was held back by the budget: start no more */
	char budget_why[400];
};

/* libcurl's global state, set up once per process; a failed setup is tried again by the
 * next run rather than remembered (it fails for want of memory or of the TLS library). */
static pthread_mutex_t curl_mu = PTHREAD_MUTEX_INITIALIZER;
static int curl_ready;

static int curl_start(struct kiln_error *e)
{
	CURLcode rc = CURLE_OK;
	pthread_mutex_lock(&curl_mu);
	if (!curl_ready && (rc = curl_global_init(CURL_GLOBAL_DEFAULT)) == CURLE_OK)
		curl_ready = 1;
	pthread_mutex_unlock(&curl_mu);
	if (rc == CURLE_OK)
		return 0;
	return kiln_error_set(e, rc == CURLE_OUT_OF_MEMORY ? KILN_E_NOMEM : KILN_E_NET, NULL,
			      "libcurl did not start (curl_global_init: %s)",
			      curl_easy_strerror(rc));
}

static size_t on_data(char *p, size_t size, size_t n, void *user)
{
	struct slot *s = user;
	if (size * n > s->cap - s->resp.len) {
		s->over_cap = 1; /* cut now: what came so far is all that is kept */
		return 0;
	}
	if (kiln_buf_add(&s->resp, p, size * n))
		return 0; /* no memory: curl fails the transfer */
	return size * n;
}

static void slot_reset_transfer(struct run *r, struct slot *s)
{
	if (s->in_multi) {
		curl_multi_remove_handle(r->multi, s->h);
		s->in_multi = 0;
	}
	curl_mime_free(s->mime);
	s->mime = NULL;
	curl_slist_free_all(s->signed_headers);
	s->signed_headers = NULL;
}

static size_t on_header(char *p, size_t size, size_t n, void *user)
{
	struct slot *s = user;
	/* a redirect's or a 100's headers go before the final answer's */
	if (size * n > 5 && !strncmp(p, "HTTP/", 5))
		kiln_buf_reset(&s->resp_headers);
	if (s->resp_headers.len + size * n > 65536 ||
	    kiln_buf_add(&s->resp_headers, p, size * n))
		return 0;
	return size * n;
}

/* A request the engine asked to sign (x->sign, SageMaker): its headers, the Content-Type of a
 * body, and the SigV4 ones made from the endpoint's AWS keys, which only the dispatcher holds. */
static int sign_request(struct slot *s, const struct kiln_endpoint *c, const char *url,
			struct kiln_error *e)
{
	struct kiln_http *x = &s->http;
	struct kiln_sigv4 k = {c->access_key, c->secret_key, c->session_token, c->region,
			       x->sign, NULL, !strcmp(x->sign, "s3")};
	struct kiln_buf extra = KILN_BUF_INIT, lines = KILN_BUF_INIT;
	struct curl_slist *h = curl_slist_append(NULL, "Expect:");
	int body = strcmp(x->method, "GET") != 0, rc;
	if (!h || (body && kiln_buf_adds(&extra, "Content-Type: application/json\n")) ||
	    kiln_buf_adds(&extra, x->headers)) {
		rc = kiln_error_set(e, KILN_E_NOMEM, c->url, "cannot sign a request");
		goto out;
	}
	if ((rc = kiln_sigv4_request(&k, x->method, url, extra.data, x->body.data, x->body.len,
				     kiln_clock_unix(), &lines, e)))
		goto out;
	if (kiln_buf_adds(&lines, extra.data)) {
		rc = kiln_error_set(e, KILN_E_NOMEM, c->url, "cannot sign a request");
		goto out;
	}
	for (char *l = lines.data, *next; l && *l; l = next) {
		struct curl_slist *g;
		if ((next = strchr(l, '\n')))
			*next++ = 0;
		if (!*l)
			continue;
		if (!(g = curl_slist_append(h, l))) {
			rc = kiln_error_set(e, KILN_E_NOMEM, c->url, "cannot sign a request");
			goto out;
		}
		h = g;
	}
	s->signed_headers = h;
	h = NULL;
out:
	curl_slist_free_all(h);
	/* the Authorization line holds no secret, but no copy of the headers outlives the call */
	kiln_buf_release(&lines);
	kiln_buf_release(&extra);
	return rc;
}

static int send_http(struct run *r, struct slot *s, struct kiln_error *e)
{
	struct ep *ep = &r->eps[s->ep];
	const struct kiln_endpoint *c = ep->cfg;
	struct kiln_http *x = &s->http;
	char url[4096];
	CURL *h = s->h;
	if (h)
		curl_easy_reset(h); /* keeps its caches; the connections are the multi's */
	else if (!(h = s->h = curl_easy_init()))
		return kiln_error_set(e, KILN_E_NOMEM, c->url, "cannot make a transfer");
	if (x->absolute)
		snprintf(url, sizeof url, "%s", x->path);
	else
		snprintf(url, sizeof url, "%s%s", c->url, x->path);
	kiln_buf_reset(&s->resp);
	kiln_buf_reset(&s->resp_headers);
	s->errbuf[0] = 0;
	s->waiting = 0;
	s->over_cap = 0;
	s->cap = ep->eng->reply_cap ? ep->eng->reply_cap(s->is_health || !s->have_rq ? NULL : &s->rq,
							  x->path)
				    : KILN_AI_REPLY_JSON;
	curl_easy_setopt(h, CURLOPT_URL, url);
	/* a Content-Length over the cap is refused before any of the body is read */
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)s->cap);
	curl_easy_setopt(h, CURLOPT_PRIVATE, s);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, s->errbuf);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	/* a multipart upload must go out with the Content-Type libcurl makes for it
	 * (multipart/form-data; boundary=...): a JSON type there hides the form from ComfyUI's
	 * aiohttp, which answers 400. Only a JSON body says it is JSON. */
	curl_easy_setopt(h, CURLOPT_HTTPHEADER,
			 !x->upload && !strcmp(x->method, "POST") ? ep->json_headers : ep->headers);
	if (x->sign) {
		slot_reset_transfer(r, s);
		if (sign_request(s, c, url, e))
			return e->code;
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, s->signed_headers);
	}
	if (x->want_headers) {
		curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
		curl_easy_setopt(h, CURLOPT_HEADERDATA, s);
	}
	/* a reverse proxy in front of a server may answer 301/307 (a missing slash, http to
	 * https); a POST keeps its method and body through any redirect, as the server expects.
	 * Credentials are not sent on to another host (libcurl's default). */
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(h, CURLOPT_MAXREDIRS, 3L);
	curl_easy_setopt(h, CURLOPT_POSTREDIR, (long)CURL_REDIR_POST_ALL);
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(c->connect_timeout * 1000));
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
			 (long)((s->is_health && !s->is_probe && c->timeout > 10 ? 10 : c->timeout) *
				1000));
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (c->auth_env && c->secret && !x->absolute) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(h, CURLOPT_USERPWD, c->secret);
	}
	if (c->token_env && c->secret && !x->absolute) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
		curl_easy_setopt(h, CURLOPT_XOAUTH2_BEARER, c->secret);
	}
	if (x->upload) {
		curl_mimepart *part;
		s->mime = curl_mime_init(h);
		if (!s->mime || !(part = curl_mime_addpart(s->mime)) ||
		    curl_mime_name(part, "image") ||
		    curl_mime_data(part, (const char *)x->upload->data, x->upload->len) ||
		    curl_mime_filename(part, x->upload_name) ||
		    curl_mime_type(part, "image/png") || !(part = curl_mime_addpart(s->mime)) ||
		    curl_mime_name(part, "overwrite") || curl_mime_data(part, "true", 4) ||
		    !(part = curl_mime_addpart(s->mime)) || curl_mime_name(part, "type") ||
		    curl_mime_data(part, "input", 5)) {
			curl_mime_free(s->mime);
			s->mime = NULL;
			return kiln_error_set(e, KILN_E_NOMEM, c->url, "cannot make an upload");
		}
		curl_easy_setopt(h, CURLOPT_MIMEPOST, s->mime);
	} else if (!strcmp(x->method, "POST") || !strcmp(x->method, "PUT")) {
		if (!strcmp(x->method, "PUT"))
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body.len);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, x->body.data ? x->body.data : "");
		/* a queued-job submission (x->no_resend): on a reused connection that dies before
		 * any answer, libcurl silently sends the request again on a new one, and a server
		 * that had taken the first would run the job twice; on a fresh connection it never
		 * does, and the engine looks the job up before it submits again. Not for every
		 * POST: a new connection per job cost kiln half again its CPU per job and the
		 * server a thread (bench/dispatch), and a synchronous A1111 job whose connection
		 * dies is run again by kiln's own retry anyway. */
		if (x->no_resend)
			curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
	}
	if (curl_multi_add_handle(r->multi, h) != CURLM_OK) {
		curl_mime_free(s->mime);
		s->mime = NULL;
		return kiln_error_set(e, KILN_E_NOMEM, c->url, "cannot start a transfer");
	}
	s->in_multi = 1;
	return 0;
}

static struct slot *free_slot(struct run *r)
{
	struct slot *s;
	struct kiln_buf keep;
	CURL *h;
	if (!r->nfree)
		return NULL;
	s = r->freev[--r->nfree];
	keep = s->resp;
	h = s->h;
	memset(s, 0, offsetof(struct slot, check_err));
	s->resp = keep; /* reuse the response buffer's memory and the easy handle */
	s->h = h;
	kiln_buf_reset(&s->resp);
	s->used = 1;
	return s;
}

static void slot_free(struct run *r, struct slot *s)
{
	slot_reset_transfer(r, s);
	if (s->have_rq)
		kiln_ai_request_release(&s->rq);
	kiln_ai_job_release(&s->aj);
	kiln_buf_release(&s->http.body);
	kiln_buf_release(&s->resp_headers);
	s->used = 0;
	s->have_rq = 0;
	r->freev[r->nfree++] = s;
}

double kiln_dispatch_backoff(double base, double max, unsigned attempt, struct kiln_rng *rng)
{
	double d = base;
	for (unsigned i = 1; i < attempt && d < max; i++)
		d *= 2;
	if (d > max)
		d = max;
	/* equal jitter: [d/2, d) */
	return d * (0.5 + 0.5 * (double)(kiln_rng_next(rng) >> 11) / 9007199254740992.0);
}

static double backoff(struct run *r, unsigned attempt)
{
	return kiln_dispatch_backoff(r->o->backoff_base, r->o->backoff_max, attempt, &r->rng);
}

static int up_count(struct run *r)
{
	int n = 0;
	for (size_t i = 0; i < r->o->nendpoints; i++)
		n += r->eps[i].state == EP_UP;
	return n;
}

static int cls_hope(const struct run *r, const struct cls *c);

/* The attempt in slot s is over. */
static void end_attempt(struct run *r, struct slot *s, int ok, int fatal, long status,
			const char *error)
{
	struct jstate *j = &r->js[s->job];
	struct ep *ep = &r->eps[s->ep];
	struct kiln_dispatch_attempt a;
	/* no retry when no endpoint is left that could run it */
	int final = ok || fatal || j->attempts > r->o->retries ||
		    (r->ncls && !cls_hope(r, &r->cls[j->cls]));
	memset(&a, 0, sizeof a);
	a.job = s->job;
	a.ep = ep->cfg;
	a.endpoint = s->ep;
	a.engine = ep->eng;
	a.rq = s->have_rq ? &s->rq : NULL;
	a.aj = &s->aj;
	a.attempt = j->attempts;
	a.ok = ok;
	a.final = final;
	a.http_status = status;
	a.error = ok ? NULL : error;
	a.check_failed = s->released && !ok;
	a.started = s->started;
	a.finished = kiln_clock_unix();
	a.gpu_seconds = s->aj.gpu_seconds;
	if (ep->cfg->cost_per_hour > 0) {
		double secs = a.gpu_seconds;
		if (secs <= 0 && ep->cfg->platform == KILN_PLATFORM_SELF)
			secs = a.finished - a.started; /* the server is paid while it works */
		a.cost_usd = secs * ep->cfg->cost_per_hour / 3600.0;
	}
	r->spent += a.cost_usd;
	ep->cost += a.cost_usd;
	ep->priced += a.cost_usd > 0;
	if (r->stats) {
		struct kiln_dispatch_stats *st = &r->stats[s->ep];
		st->ok += ok;
		st->failed += !ok;
		st->busy_seconds += a.finished - a.started;
		st->gpu_seconds += a.gpu_seconds;
		st->spent_usd += a.cost_usd;
		st->priced += a.cost_usd > 0;
	}
	if (!r->rc && r->ops->attempt(r->ops->user, &a, r->e))
		r->rc = r->e->code ? r->e->code : KILN_E_FAILED;
	if (!s->released)
		ep->active--;
	j->last_ep = (int)s->ep;
	if (final) {
		j->state = J_DONE;
		r->remaining--;
	} else {
		double wait = backoff(r, j->attempts);
		j->state = J_RETRY;
		if (s->retry_after > wait) /* the server said when to come back */
			wait = s->retry_after;
		j->not_before = kiln_clock_mono() + wait;
		r->retry[r->nretry++] = s->job;
	}
	slot_free(r, s);
}

static void ep_failure(struct run *r, size_t k)
{
	struct ep *ep = &r->eps[k];
	if (++ep->consecutive >= r->o->breaker_failures && ep->state == EP_UP) {
		ep->state = EP_PARKED;
		ep->until = kiln_clock_mono() + ep->park;
		ep->park = ep->park * 2 > 60 ? 60 : ep->park * 2;
		ep->consecutive = 0;
		if (r->stats) {
			r->stats[k].parked++;
			r->stats[k].state = 1;
		}
	}
}

static void ep_success(struct run *r, size_t k)
{
	r->eps[k].consecutive = 0;
	r->eps[k].park = r->o->park_seconds;
}

static void give_up(struct run *r, size_t k, const char *fmt, const char *arg)
{
	struct ep *ep = &r->eps[k];
	ep->state = EP_DEAD;
	snprintf(ep->why, sizeof ep->why, fmt, ep->cfg->url, arg);
	ep->first_done = 1;
	r->recheck = 1;
	if (r->stats) {
		r->stats[k].state = 2;
		snprintf(r->stats[k].why, sizeof r->stats[k].why, "%.511s", ep->why);
	}
}

/* 401/403: the endpoint refused kiln's credentials; given up for the run, saying which (an
 * AWS answer says why: SignatureDoesNotMatch, InvalidSignatureException, ...). */
static void give_up_refused(struct run *r, size_t k, long status)
{
	struct ep *ep = &r->eps[k];
	char what[600];
	if (ep->refusal_status)
		status = ep->refusal_status;
	if (ep->cfg->access_key_env) {
		/* S3: <Error><Code>C</Code><Message>M</Message>...; the runtime: {"message":"M"} */
		const char *b = ep->refusal, *c = strstr(b, "<Code>"), *m = strstr(b, "<Message>");
		const char *ce = c ? strstr(c, "</Code>") : NULL, *me = m ? strstr(m, "</") : NULL;
		if (!m && (m = strstr(b, "\"message\":\"")) && (m += 2))
			me = strchr(m + 9, '"');
		if (ce && me)
			snprintf(what, sizeof what, "%ld %.*s: %.*s", status, (int)(ce - c - 6), c + 6,
				 (int)(me - m - 9), m + 9);
		else if (me)
			snprintf(what, sizeof what, "%ld: %.*s", status, (int)(me - m - 9), m + 9);
		else
			snprintf(what, sizeof what, "%ld: %.300s", status, b);
		give_up(r, k, "%s: AWS refused kiln's signed request (HTTP %s): check the keys in "
			"the environment variables named by access_key_env and secret_key_env (and "
			"session_token_env), and the endpoint's region", what);
		return;
	}
	snprintf(what, sizeof what, "%ld", status);
	give_up(r, k, "%s: the server refused kiln's credentials (HTTP %s): check the "
		"environment variable named by auth_env/token_env", what);
}

static void start_health(struct run *r, size_t k)
{
	struct ep *ep = &r->eps[k];
	struct slot *s = free_slot(r);
	struct kiln_error e;
	if (!s)
		return;
	s->is_health = 1;
	s->ep = k;
	s->http.method = "GET";
	snprintf(s->http.path, sizeof s->http.path, "%s", ep->eng->health_path);
	kiln_error_clear(&e);
	if ((ep->eng->health_request && ep->eng->health_request(ep->cfg, &s->http, &e)) ||
	    send_http(r, s, &e)) {
		slot_free(r, s);
		return;
	}
	ep->health = s;
	ep->state = ep->state == EP_UP ? EP_UP : EP_CHECKING;
}

/* --- job classes: which endpoints can run which jobs ------------------------------------- */

static uint64_t cls_hash(const unsigned char *can, size_t n, const char *why)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ can[i]) * 1099511628211ull;
	for (; why && *why; why++)
		h = (h ^ (unsigned char)*why) * 1099511628211ull;
	return h;
}

static int same_why(const char *a, const char *b)
{
	return !strcmp(a ? a : "", b ? b : "");
}

/* The class with verdicts can[] and reasons why (made when new): its index, or -1 (no
 * memory). */
static long cls_intern(struct run *r, const unsigned char *can, const char *why)
{
	size_t n = r->o->nendpoints, i;
	uint64_t h = cls_hash(can, n, why);
	struct cls *c;
	if (r->cls_htsize) {
		for (i = h & (r->cls_htsize - 1); r->cls_ht[i]; i = (i + 1) & (r->cls_htsize - 1)) {
			c = &r->cls[r->cls_ht[i] - 1];
			if (c->hash == h && !memcmp(c->can, can, n) && same_why(c->why, why))
				return (long)(r->cls_ht[i] - 1);
		}
	}
	if (r->ncls == r->capcls) {
		size_t cap = r->capcls ? r->capcls * 2 : 8;
		struct cls *v = kiln_reallocarray(r->cls, cap, sizeof *v);
		if (!v)
			return -1;
		r->cls = v;
		r->capcls = cap;
	}
	if ((r->ncls + 1) * 2 > r->cls_htsize) { /* grow the table: half full at most */
		size_t size = r->cls_htsize ? r->cls_htsize * 2 : 16;
		uint32_t *ht = kiln_calloc(size, sizeof *ht);
		if (!ht)
			return -1;
		for (size_t k = 0; k < r->ncls; k++) {
			for (i = r->cls[k].hash & (size - 1); ht[i]; i = (i + 1) & (size - 1))
				;
			ht[i] = (uint32_t)k + 1;
		}
		free(r->cls_ht);
		r->cls_ht = ht;
		r->cls_htsize = size;
	}
	c = &r->cls[r->ncls];
	memset(c, 0, sizeof *c);
	if (!(c->can = kiln_malloc(n ? n : 1)))
		return -1;
	memcpy(c->can, can, n);
	c->hash = h;
	if (why && *why && !(c->why = kiln_strdup(why))) {
		free(c->can);
		return -1;
	}
	for (i = h & (r->cls_htsize - 1); r->cls_ht[i]; i = (i + 1) & (r->cls_htsize - 1))
		;
	r->cls_ht[i] = (uint32_t)r->ncls + 1;
	return (long)r->ncls++;
}

static void cls_free(struct run *r)
{
	for (size_t i = 0; i < r->ncls; i++) {
		free(r->cls[i].can);
		free(r->cls[i].why);
	}
	free(r->cls);
	free(r->cls_ht);
}

/* Has endpoint k said what it has (or has nothing to say: an engine without a probe)? */
static int ep_knows(const struct ep *ep)
{
	return !ep->eng->probe_start || !ep->eng->supports || ep->caps.known;
}

/* Put every unfinished job in its class (fresh: the first time), asking the endpoints in
 * [k0, k1) that know what they have whether they can run it (the others keep their verdict,
 * or are unknown).
 * Builds each job's request once: O(jobs x endpoints asked). */
static int classify(struct run *r, size_t k0, size_t k1, int fresh)
{
	size_t n = r->o->nendpoints;
	unsigned char *can = kiln_malloc(n ? n : 1);
	char *why = kiln_malloc(4096);
	int rc = 0;
	if (!can || !why) {
		rc = kiln_error_set(r->e, KILN_E_NOMEM, NULL, "out of memory sorting jobs");
		goto out;
	}
	for (size_t j = 0; j < r->o->njobs && !rc; j++) {
		struct kiln_ai_request rq;
		struct kiln_error e;
		size_t len = 0;
		long c;
		if (r->js[j].state == J_DONE)
			continue;
		why[0] = 0;
		if (!fresh) {
			const struct cls *old = &r->cls[r->js[j].cls];
			memcpy(can, old->can, n);
			if (old->why)
				len = (size_t)snprintf(why, 4096, "%s", old->why);
			if (len >= 4096)
				len = 4095;
		} else {
			memset(can, CAN_UNKNOWN, n);
		}
		memset(&rq, 0, sizeof rq);
		kiln_error_clear(&e);
		if (r->ops->request(r->ops->user, j, &rq, &e)) {
			/* it fails again when it starts, with this message, wherever it goes */
			memset(can, CAN_YES, n);
		} else {
			for (size_t k = 0; k < n; k++) {
				const struct ep *ep = &r->eps[k];
				if (can[k] != CAN_UNKNOWN && (k < k0 || k >= k1))
					continue;
				if (!ep_knows(ep)) {
					can[k] = CAN_UNKNOWN;
					continue;
				}
				kiln_error_clear(&e);
				if (!ep->eng->supports ||
				    !ep->eng->supports(ep->caps.known ? &ep->caps : NULL, &rq, &e)) {
					can[k] = CAN_YES;
					continue;
				}
				can[k] = CAN_NO;
				/* one line per missing thing ("URL has no LoRA `x`; it has: ..."):
				 * the engine separates them with newlines */
				for (const char *m = e.msg; *m && len + 16 < 4096;) {
					size_t ml = strcspn(m, "\n");
					len += (size_t)snprintf(why + len, 4096 - len, "%s%s %.*s",
								len ? "\n" : "", ep->cfg->url,
								(int)ml, m);
					m += ml + (m[ml] == '\n');
				}
			}
			kiln_ai_request_release(&rq);
		}
		if (len >= 4096)
			why[4095] = 0;
		if ((c = cls_intern(r, can, why)) < 0)
			rc = kiln_error_set(r->e, KILN_E_NOMEM, NULL, "out of memory sorting jobs");
		else
			r->js[j].cls = (uint32_t)c;
	}
out:
	free(can);
	free(why);
	return rc;
}

/* Can endpoint k run job j? */
static int can_run(const struct run *r, size_t k, size_t j)
{
	return !r->ncls || r->cls[r->js[j].cls].can[k] == CAN_YES;
}

/* Could any endpoint still run a job of class c (one that can, or one not yet known)? */
static int cls_hope(const struct run *r, const struct cls *c)
{
	for (size_t k = 0; k < r->o->nendpoints; k++)
		if (r->eps[k].state != EP_DEAD && c->can[k] != CAN_NO)
			return 1;
	return 0;
}

/* The reason no endpoint can run class c: what each lacks, and why the others were given
 * up. */
/* Append each line of `lines` that out does not hold yet, "; "-separated. */
static void add_unique(char *out, size_t cap, size_t *len, const char *lines)
{
	for (const char *m = lines; m && *m && *len < cap;) {
		size_t ml = strcspn(m, "\n");
		char one[1100];
		snprintf(one, sizeof one, "%.*s", (int)(ml < 1099 ? ml : 1099), m);
		if (!strstr(out, one))
			*len += (size_t)snprintf(out + *len, cap - *len, "%s%s", *len ? "; " : "",
						 one);
		m += ml + (m[ml] == '\n');
	}
}

static void cls_reason(const struct run *r, const struct cls *c, char *out, size_t cap,
		       size_t *len)
{
	add_unique(out, cap, len, c->why);
	for (size_t k = 0; k < r->o->nendpoints && *len < cap; k++)
		if (c->can[k] != CAN_NO && r->eps[k].state == EP_DEAD)
			add_unique(out, cap, len, r->eps[k].why);
}

/* An endpoint answered its probe (or has none): it takes jobs now. */
static void ep_ready(struct run *r, size_t k)
{
	struct ep *ep = &r->eps[k];
	ep->state = EP_UP;
	ep->health_fail = 0;
	ep->consecutive = 0;
	ep->first_done = 1;
	ep->ring_starved = 0;
	if (r->stats)
		r->stats[k].state = 0;
	/* an endpoint that comes up after the jobs were sorted: its verdicts now (once) */
	if (r->gate_open && r->classify && !ep->classified && !r->rc) {
		ep->classified = 1;
		if (classify(r, k, k + 1, 0))
			r->rc = r->e->code ? r->e->code : KILN_E_NOMEM;
	}
}

/* The endpoint's first check or probe failed: park it (health-checked again later), or give
 * it up after health_tries. */
static void check_failed(struct run *r, size_t k, long status, const char *detail)
{
	struct ep *ep = &r->eps[k];
	char what[600];
	ep->first_done = 1;
	if (status == 401 || status == 403) {
		give_up_refused(r, k, status);
	} else if (++ep->health_fail >= r->o->health_tries) {
		snprintf(what, sizeof what, "%s", detail);
		if (status && !*detail)
			snprintf(what, sizeof what, "HTTP %ld", status);
		give_up(r, k, "%s: not answering its health check (%s): gave up on it for this run",
			what);
	} else {
		ep->state = EP_PARKED;
		ep->until = kiln_clock_mono() + ep->park;
		ep->park = ep->park * 2 > 60 ? 60 : ep->park * 2;
	}
}

static void health_done(struct run *r, struct slot *s, long status)
{
	size_t k = s->ep;
	struct ep *ep = &r->eps[k];
	struct kiln_error e;
	ep->health = NULL;
	kiln_error_clear(&e);
	if (status >= 200 && status < 300 && r->ops->health)
		r->ops->health(r->ops->user, k, s->resp.data ? s->resp.data : "", s->resp.len);
	if (status >= 200 && status < 300 && !ep->caps.known && ep->eng->probe_start) {
		/* up: ask what it has before its first job, on the same slot */
		s->is_probe = 1;
		kiln_buf_reset(&s->http.body);
		if (!ep->eng->probe_start(&ep->caps, &s->http, &e) && !send_http(r, s, &e)) {
			ep->health = s;
			return;
		}
		check_failed(r, k, 0, e.msg);
	} else if (status >= 200 && status < 300) {
		ep_ready(r, k);
	} else {
		check_failed(r, k, status, status ? "" : s->errbuf);
	}
	slot_free(r, s);
}

/* A probe exchange ended (err: the transfer's error, if any). */
static void probe_done(struct run *r, struct slot *s, long status, struct kiln_error *err)
{
	size_t k = s->ep;
	struct ep *ep = &r->eps[k];
	enum kiln_step step;
	char path[sizeof s->http.path];
	ep->health = NULL;
	if (status == 401 || status == 403) {
		check_failed(r, k, status, "");
		slot_free(r, s);
		return;
	}
	snprintf(path, sizeof path, "%s", s->http.path);
	kiln_buf_reset(&s->http.body);
	step = ep->eng->probe_response(&ep->caps, path, status, s->resp.data ? s->resp.data : "",
				       s->resp.len, &s->http, err);
	if (step == KILN_STEP_SEND && !send_http(r, s, err)) {
		ep->health = s;
		return;
	}
	if (step == KILN_STEP_DONE) {
		ep->caps.known = 1;
		ep_ready(r, k);
	} else if (step == KILN_STEP_FATAL) {
		char why[900];
		snprintf(why, sizeof why, "%.899s", err->msg[0] ? err->msg : "cannot ask what it has");
		give_up(r, k, "%s: %s", why);
	} else {
		kiln_ai_caps_release(&ep->caps); /* asked again from the start next time */
		check_failed(r, k, 0, err->msg[0] ? err->msg : "its probe failed");
	}
	slot_free(r, s);
}

/* Next job for endpoint k: a resumed job of its own, a due retry that failed elsewhere,
 * a fresh job, or (nothing fresh left) any due retry. */
/* Another endpoint than k is up, has a free place and could run job j. */
static int other_room(const struct run *r, size_t k, size_t j)
{
	for (size_t o = 0; o < r->o->nendpoints; o++)
		if (o != k && r->eps[o].state == EP_UP &&
		    r->eps[o].active < r->eps[o].cfg->concurrency && can_run(r, o, j))
			return 1;
	return 0;
}

static int pick_job(struct run *r, size_t k, size_t *job, const struct kiln_dispatch_resume **res)
{
	struct ep *ep = &r->eps[k];
	double now = kiln_clock_mono();
	int others = up_count(r) > 1;
	*res = NULL;
	while (ep->nresume) {
		const struct kiln_dispatch_resume *x = &r->o->resume[ep->resume[--ep->nresume]];
		if (r->js[x->job].state != J_QUEUED)
			continue;
		*job = x->job;
		*res = x;
		return 1;
	}
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < r->nretry; i++) {
			size_t j = r->retry[i];
			if (r->js[j].not_before > now || !can_run(r, k, j))
				continue;
			/* a retry goes elsewhere when it can: to the endpoint that failed it only when
			 * no other endpoint that could run it has room (the first pass also leaves it
			 * to the others for 2 s while they are busy) */
			if (others && r->js[j].last_ep == (int)k &&
			    (other_room(r, k, j) || (pass == 0 && now - r->js[j].not_before < 2)))
				continue;
			r->retry[i] = r->retry[--r->nretry];
			*job = j;
			return 1;
		}
		/* the fresh queue: a job this endpoint cannot run goes to the back for the others;
		 * once a whole round finds none, the endpoint stops looking there */
		for (size_t seen = 0, n = r->count; pass == 0 && !ep->ring_starved && r->count;) {
			size_t j = r->ring[r->head];
			r->head = (r->head + 1) % (r->o->njobs + 1);
			r->count--;
			if (r->js[j].state != J_QUEUED)
				continue; /* started as a resumed job */
			if (can_run(r, k, j)) {
				*job = j;
				return 1;
			}
			r->ring[(r->head + r->count) % (r->o->njobs + 1)] = j;
			r->count++;
			if (++seen >= n)
				ep->ring_starved = 1;
		}
	}
	return 0;
}

static void handle_step(struct run *r, struct slot *s, enum kiln_step step, long status,
			struct kiln_error *err);

/* When to poll an async job again: one rule for every engine, set by its poll_first,
 * poll_step and sparse_polls (engine.h). With an expected job time (the endpoint's running
 * mean): at poll_first of it (default 90%), then every poll_step of it (default a twentieth),
 * backing off to a tenth of the overrun as the job runs later than expected (queued behind
 * others); without one (or after a failed poll), 20 ms growing by a tenth of the job's age.
 * At least 10 ms, at most 1 s apart. A sparse engine (every poll counts against a cloud
 * API's limits: RunPod) also waits a standard deviation of the job time between polls when
 * that is longer than poll_step, starts from 0.5 s growing by a quarter of the job's age, and
 * polls 50 ms to 5 s apart, the first poll included. */
static double poll_interval(const struct ep *ep, const struct slot *s)
{
	const struct kiln_engine *g = ep->eng;
	double age = kiln_clock_mono() - s->started_mono, iv;
	double first = g->poll_first > 0 ? g->poll_first : 0.9;
	double step = g->poll_step > 0 ? g->poll_step : 1.0 / 20;
	double lo = g->sparse_polls ? 0.05 : 0.01, hi = g->sparse_polls ? 5 : 1;
	if (ep->expect <= 0 || s->aj.poll_errors) {
		iv = g->sparse_polls ? 0.5 + 0.25 * age : 0.02 + 0.1 * age;
		return iv < lo ? lo : iv > hi ? hi : iv;
	}
	if (age < first * ep->expect) {
		iv = first * ep->expect - age;
		if (!g->sparse_polls)
			return iv;
		return iv < lo ? lo : iv > hi ? hi : iv;
	}
	iv = ep->expect * step;
	if (g->sparse_polls && ep->expect_var > 0 && sqrt(ep->expect_var) > iv)
		iv = sqrt(ep->expect_var);
	if (iv < 0.1 * (age - ep->expect))
		iv = 0.1 * (age - ep->expect);
	return iv < lo ? lo : iv > hi ? hi : iv;
}

/* A checked image's verdict (on the loop thread). */
static void check_done(struct run *r, struct slot *s)
{
	if (s->check_rc)
		end_attempt(r, s, 0, 0, s->status, s->check_err.msg[0] ? s->check_err.msg
										: "the image was refused");
	else
		end_attempt(r, s, 1, 0, s->status, NULL);
}

/* Images to check are held until the loop has sent the next jobs of the endpoints they came
 * from: a worker woken at once would compete with the loop for a core just then. */
static void check_hold(struct checkers *ck, struct slot *s)
{
	s->qnext = ck->held;
	ck->held = s;
}

static void check_release(struct checkers *ck)
{
	struct slot *s, *next;
	if (!ck->held)
		return;
	pthread_mutex_lock(&ck->mu);
	for (s = ck->held; s; s = next) {
		next = s->qnext;
		s->qnext = NULL;
		*ck->todo_tail = s;
		ck->todo_tail = &s->qnext;
		pthread_cond_signal(&ck->cv);
	}
	ck->held = NULL;
	pthread_mutex_unlock(&ck->mu);
}

static void *check_worker(void *arg)
{
	struct checkers *ck = arg;
	pthread_mutex_lock(&ck->mu);
	for (;;) {
		struct slot *s;
		while (!ck->stop && !ck->todo)
			pthread_cond_wait(&ck->cv, &ck->mu);
		if (ck->stop)
			break;
		s = ck->todo;
		if (!(ck->todo = s->qnext))
			ck->todo_tail = &ck->todo;
		pthread_mutex_unlock(&ck->mu);
		kiln_error_clear(&s->check_err);
		s->check_rc = ck->ops->check(ck->ops->user, s->job, &s->aj, &s->check_err);
		pthread_mutex_lock(&ck->mu);
		s->qnext = ck->done;
		ck->done = s;
		curl_multi_wakeup(ck->multi);
	}
	pthread_mutex_unlock(&ck->mu);
	return NULL;
}

/* End the attempts whose checks came back. */
static void check_drain(struct run *r)
{
	struct slot *s, *next;
	if (!r->ck.n)
		return;
	pthread_mutex_lock(&r->ck.mu);
	s = r->ck.done;
	r->ck.done = NULL;
	pthread_mutex_unlock(&r->ck.mu);
	for (; s; s = next) {
		next = s->qnext;
		check_done(r, s);
	}
}

static void checkers_start(struct run *r, unsigned n)
{
	struct checkers *ck = &r->ck;
	ck->todo_tail = &ck->todo;
	ck->ops = r->ops;
	ck->multi = r->multi;
	if (!n || !r->ops->check || pthread_mutex_init(&ck->mu, NULL))
		return;
	if (pthread_cond_init(&ck->cv, NULL) || !(ck->t = kiln_calloc(n, sizeof *ck->t))) {
		pthread_mutex_destroy(&ck->mu);
		return;
	}
	for (ck->n = 0; ck->n < n; ck->n++)
		if (pthread_create(&ck->t[ck->n], NULL, check_worker, ck))
			break;
	if (!ck->n) { /* no thread: check on the loop thread */
		pthread_cond_destroy(&ck->cv);
		pthread_mutex_destroy(&ck->mu);
		free(ck->t);
		ck->t = NULL;
	}
}

/* Stop the workers; a check under way finishes first, queued ones are dropped with their
 * slots (the run is over). */
static void checkers_stop(struct checkers *ck)
{
	if (!ck->n)
		return;
	pthread_mutex_lock(&ck->mu);
	ck->stop = 1;
	pthread_cond_broadcast(&ck->cv);
	pthread_mutex_unlock(&ck->mu);
	for (unsigned i = 0; i < ck->n; i++)
		pthread_join(ck->t[i], NULL);
	pthread_cond_destroy(&ck->cv);
	pthread_mutex_destroy(&ck->mu);
	free(ck->t);
	ck->t = NULL;
	ck->n = 0;
}

static void start_job(struct run *r, size_t k, size_t job,
		      const struct kiln_dispatch_resume *res)
{
	struct ep *ep = &r->eps[k];
	struct jstate *j = &r->js[job];
	struct slot *s = free_slot(r); /* the caller made sure there is one */
	struct kiln_error err;
	int rc;
	kiln_error_clear(&err);
	s->job = job;
	s->ep = k;
	s->started = kiln_clock_unix();
	s->started_mono = kiln_clock_mono();
	j->state = J_RUNNING;
	j->attempts = res && res->attempt > j->attempts ? res->attempt : j->attempts + 1;
	ep->active++;
	if (r->stats)
		r->stats[k].sent++;
	if ((rc = r->ops->request(r->ops->user, job, &s->rq, &err))) {
		end_attempt(r, s, 0, 1, 0, err.msg);
		return;
	}
	s->have_rq = 1;
	s->aj.rq = &s->rq;
	s->aj.ep = ep->cfg;
	s->aj.caps = ep->caps.known ? &ep->caps : NULL;
	s->aj.attempt = j->attempts;
	s->aj.seed_used = s->rq.seed;
	if (res) {
		s->aj.resumed = 1;
		snprintf(s->aj.remote_id, sizeof s->aj.remote_id, "%s", res->remote_id);
	}
	if ((rc = ep->eng->start(&s->aj, &s->http, &err))) {
		end_attempt(r, s, 0, 1, 0, err.msg);
		return;
	}
	handle_step(r, s, KILN_STEP_SEND, 0, &err);
}

static void handle_step(struct run *r, struct slot *s, enum kiln_step step, long status,
			struct kiln_error *err)
{
	if (s->aj.remote_new) {
		s->aj.remote_new = 0;
		if (r->ops->remote && !r->rc &&
		    r->ops->remote(r->ops->user, s->job, s->ep, &s->aj, r->e))
			r->rc = r->e->code ? r->e->code : KILN_E_DB;
	}
	switch (step) {
	case KILN_STEP_SEND:
		if (r->rc) {
			/* stopping: leave the job for the next run */
			end_attempt(r, s, 0, 1, status, "the run stopped");
			return;
		}
		if (send_http(r, s, err))
			end_attempt(r, s, 0, 0, status, err->msg);
		return;
	case KILN_STEP_POLL: {
		double iv = poll_interval(&r->eps[s->ep], s);
		s->due = kiln_clock_mono() + (s->retry_after > iv ? s->retry_after : iv);
		s->waiting = 1;
		s->aj.polls++;
		if (s->aj.polls > 100000)
			end_attempt(r, s, 0, 0, status, "the job never finished");
		return;
	}
	case KILN_STEP_DONE: {
		struct ep *ep = &r->eps[s->ep];
		ep_success(r, s->ep);
		ep->mismatches = 0;
		ep->busy = 0;
		if (s->done_at && !s->aj.resumed && !s->aj.poll_errors) {
			/* the job finished between these two answers */
			double took = (s->pending_at + s->done_at) / 2 - s->started_mono;
			double d = took - ep->expect;
			if (ep->expect > 0) {
				ep->expect += 0.2 * d;
				ep->expect_var = 0.8 * (ep->expect_var + 0.2 * d * d);
			} else {
				ep->expect = took;
			}
		}
		s->status = status;
		if (!r->ops->check) {
			end_attempt(r, s, 1, 0, status, NULL);
			return;
		}
		/* the endpoint is free for its next job while the image is checked */
		s->released = 1;
		ep->active--;
		if (r->ck.n) {
			check_hold(&r->ck, s);
			return;
		}
		kiln_error_clear(&s->check_err);
		s->check_rc = r->ops->check(r->ops->user, s->job, &s->aj, &s->check_err);
		check_done(r, s);
		return;
	}
	case KILN_STEP_BUSY: {
		/* back-pressure (sd.cpp's 429, its queue full): the same submission again after a
		 * back-off that doubles up to backoff_max; the job keeps its slot and its attempt,
		 * and the endpoint's breaker is not touched. */
		struct ep *ep = &r->eps[s->ep];
		double wait = r->o->backoff_base;
		struct kiln_error e2;
		kiln_error_clear(&e2);
		for (unsigned i = 0; i < ep->busy && wait < r->o->backoff_max; i++)
			wait *= 2;
		if (wait > r->o->backoff_max)
			wait = r->o->backoff_max;
		if (s->retry_after > wait) /* 429 with Retry-After: when the server says */
			wait = s->retry_after;
		ep->busy++;
		if (++s->aj.polls > 100000) {
			end_attempt(r, s, 0, 0, status, "the server stayed busy");
			return;
		}
		kiln_buf_reset(&s->http.body);
		s->http.upload = NULL;
		s->http.no_resend = 0;
		s->http.absolute = 0;
		if (ep->eng->start(&s->aj, &s->http, &e2)) {
			end_attempt(r, s, 0, 1, status, e2.msg);
			return;
		}
		s->due = kiln_clock_mono() + wait * (0.5 + 0.5 * (double)(kiln_rng_next(&r->rng) >>
								  11) / 9007199254740992.0);
		s->waiting = 1;
		return;
	}
	case KILN_STEP_RETRY:
		if (err->code == KILN_E_SPEC) {
			/* a mismatch: the server answered but did not apply what was asked. Not a
			 * failure of the server's health (no breaker), but one that does it for
			 * breaker_failures jobs in a row is taken out of the pool for the run */
			struct ep *ep = &r->eps[s->ep];
			if (++ep->mismatches >= r->o->breaker_failures && ep->state != EP_DEAD) {
				char why[900];
				snprintf(why, sizeof why, "%u jobs in a row (the last: %.700s)",
					 ep->mismatches, err->msg);
				give_up(r, s->ep, "%s: parked for this run: it did not apply what was "
					"asked in %s", why);
			}
			end_attempt(r, s, 0, 0, status, err->msg);
			return;
		}
		ep_failure(r, s->ep);
		end_attempt(r, s, 0, 0, status, err->msg[0] ? err->msg : "failed");
		return;
	case KILN_STEP_FATAL:
		end_attempt(r, s, 0, 1, status, err->msg[0] ? err->msg : "the server refused the "
			    "request");
		return;
	}
}

static void transfer_done(struct run *r, struct slot *s, CURLcode res)
{
	struct ep *ep = &r->eps[s->ep];
	struct kiln_error err;
	enum kiln_step step;
	long status = 0;
	s->retry_after = 0;
	if (res == CURLE_OK) {
		curl_off_t ra = 0;
		curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
		/* seconds, or an HTTP date turned into seconds from now; at most an hour */
		if ((status == 429 || status >= 500) &&
		    curl_easy_getinfo(s->h, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
			s->retry_after = ra > 3600 ? 3600 : (double)ra;
	}
	/* a refusal of kiln's credentials: 401/403, or S3's 400 for a session token that is
	 * malformed or expired (InvalidToken, ExpiredToken) */
	int refusal = status == 401 || status == 403 ||
		      (status == 400 && ep->cfg->access_key_env && s->resp.data &&
		       (strstr(s->resp.data, "<Code>InvalidToken</Code>") ||
			strstr(s->resp.data, "<Code>ExpiredToken</Code>")));
	if (refusal) {
		kiln_ai_excerpt(ep->refusal, sizeof ep->refusal, s->resp.data ? s->resp.data : "",
				s->resp.len);
		ep->refusal_status = status;
	}
	kiln_error_clear(&err);
	if (res != CURLE_OK && (s->over_cap || res == CURLE_FILESIZE_EXCEEDED))
		kiln_error_set(&err, KILN_E_NET, NULL, "%s %s%s: the answer is larger than %zu "
			       "bytes, the most kiln takes from this endpoint for it; the transfer "
			       "was cut", s->http.method, s->http.absolute ? "" : ep->cfg->url,
			       s->http.path, s->cap);
	else if (res != CURLE_OK)
		kiln_error_set(&err, KILN_E_NET, NULL, "%s %s: %s", s->http.method, s->http.path,
			       s->errbuf[0] ? s->errbuf : curl_easy_strerror(res));
	slot_reset_transfer(r, s);
	if (s->is_probe) {
		probe_done(r, s, status, &err);
		return;
	}
	if (s->is_health) {
		health_done(r, s, refusal ? 403 : status);
		return;
	}
	if (refusal) {
		char st[16];
		snprintf(st, sizeof st, "%ld", status);
		(void)st;
		if (ep->state != EP_DEAD)
			give_up_refused(r, s->ep, status);
		/* not the job's fault: it does not count as an attempt */
		size_t job = s->job;
		r->js[job].attempts--;
		end_attempt(r, s, 0, 0, status, ep->why);
		if (r->js[job].state == J_RETRY)
			r->js[job].not_before = 0;
		return;
	}
	kiln_buf_reset(&s->http.body);
	s->http.upload = NULL;
	s->http.no_resend = 0;
	s->http.absolute = 0;
	s->aj.cancel = r->o->cancel && *r->o->cancel;
	s->aj.headers = s->http.want_headers ? (s->resp_headers.data ? s->resp_headers.data : "")
					     : NULL;
	step = ep->eng->on_response(&s->aj, status, s->resp.data ? s->resp.data : "", s->resp.len,
				    &s->http, &err);
	s->aj.headers = NULL;
	if (step == KILN_STEP_POLL) {
		s->pending_at = kiln_clock_mono();
		s->done_at = 0;
	} else if (s->pending_at && !s->done_at) {
		s->done_at = kiln_clock_mono();
	}
	handle_step(r, s, step, status, &err);
}

/* No endpoint can take jobs any more: every job left fails with the reasons (reason: the
 * budget's; NULL: why each endpoint was given up). */
static void fail_rest(struct run *r, const char *reason)
{
	char why[1536];
	size_t len = 0;
	why[0] = 0;
	for (size_t k = 0; !reason && k < r->o->nendpoints && len + 8 < sizeof why; k++)
		len += (size_t)snprintf(why + len, sizeof why - len, "%s%s", k ? "; " : "",
					r->eps[k].why);
	if (reason)
		snprintf(why, sizeof why, "%s", reason);
	for (size_t j = 0; j < r->o->njobs; j++) {
		struct kiln_dispatch_attempt a;
		if (r->js[j].state != J_QUEUED && r->js[j].state != J_RETRY)
			continue;
		memset(&a, 0, sizeof a);
		a.job = j;
		a.attempt = r->js[j].attempts;
		a.final = 1;
		a.error = why;
		a.started = a.finished = kiln_clock_unix();
		r->js[j].state = J_DONE;
		r->remaining--;
		if (!r->rc && r->ops->attempt(r->ops->user, &a, r->e))
			r->rc = r->e->code ? r->e->code : KILN_E_FAILED;
	}
	r->count = 0;
	r->nretry = 0;
}

/* The live figures of every endpoint, for the tick callback (progress). */
static void sync_stats(struct run *r)
{
	static const int map[] = {[EP_CHECKING] = KILN_ENDPOINT_CHECKING,
				  [EP_UP] = KILN_ENDPOINT_UP, [EP_PARKED] = KILN_ENDPOINT_PARKED,
				  [EP_DEAD] = KILN_ENDPOINT_GIVEN_UP};
	uint64_t ok = 0;
	for (size_t k = 0; r->stats && k < r->o->nendpoints; k++)
		ok += r->stats[k].ok;
	for (size_t k = 0; r->stats && k < r->o->nendpoints; k++) {
		/* its share of the jobs left at its cost per accepted image so far */
		r->stats[k].projected_usd = r->stats[k].spent_usd +
			(ok ? (double)r->remaining * r->stats[k].spent_usd / (double)ok : 0);
		r->stats[k].in_flight = r->eps[k].active;
		r->stats[k].failing = r->eps[k].consecutive;
		r->stats[k].state = map[r->eps[k].state];
	}
}

/* --- cost and budget ----------------------------------------------------------------------
 * An attempt costs the GPU seconds its platform reported (or a priced self-hosted endpoint's
 * wall time) at the endpoint's cost_per_hour. A job on a priced endpoint is expected to cost
 * that endpoint's mean per attempt so far; until one is known, a priced endpoint runs one job
 * at a time when there is a budget, so that the first price is learnt before the budget is
 * committed. */

/* Endpoint k's expected cost of one attempt: 0 unpriced, -1 not known yet. */
static double est_cost(const struct run *r, size_t k)
{
	const struct ep *ep = &r->eps[k];
	if (ep->cfg->cost_per_hour <= 0)
		return 0;
	return ep->priced ? ep->cost / (double)ep->priced : -1;
}

/* May endpoint k start one more job within the budget? Sets budget_stop (and why) when the
 * projection would pass it. */
static int budget_allows(struct run *r, size_t k)
{
	double committed = r->o->spent_before + r->spent, est = est_cost(r, k);
	if (r->o->budget_usd <= 0 || r->eps[k].cfg->cost_per_hour <= 0)
		return 1;
	if (r->budget_stop)
		return 0;
	for (size_t i = 0; i < r->o->nendpoints; i++) {
		double x = est_cost(r, i);
		committed += r->eps[i].active * (x > 0 ? x : 0);
	}
	if (est < 0 ? committed < r->o->budget_usd : committed + est <= r->o->budget_usd)
		return est >= 0 || r->eps[k].active == 0; /* unknown: one at a time */
	r->budget_stop = 1;
	if (r->o->budget_stopped)
		*r->o->budget_stopped = 1;
	snprintf(r->budget_why, sizeof r->budget_why, "not sent: the next job (about $%.4f on "
		 "%.200s) would take the spend past generate.budget_usd $%.4f: $%.4f spent so far "
		 "($%.4f in this run), $%.4f more committed to the jobs running", est > 0 ? est : 0,
		 r->eps[k].cfg->url, r->o->budget_usd, r->o->spent_before + r->spent, r->spent,
		 committed - r->o->spent_before - r->spent);
	return 0;
}

/* The budget stopped the priced endpoints and nothing runs: the jobs left fail, unless an
 * endpoint that costs nothing is still there to take them. */
static int budget_over(const struct run *r)
{
	if (!r->budget_stop)
		return 0;
	for (size_t k = 0; k < r->o->nendpoints; k++)
		if (r->eps[k].state != EP_DEAD && r->eps[k].cfg->cost_per_hour <= 0)
			return 0;
	return 1;
}

/* Start jobs on every endpoint that has room. How many started. */
static int fill(struct run *r)
{
	int n = 0;
	if ((r->o->cancel && *r->o->cancel) || !r->gate_open)
		return 0;
	for (size_t k = 0; k < r->o->nendpoints; k++) {
		struct ep *ep = &r->eps[k];
		size_t job;
		const struct kiln_dispatch_resume *res;
		while (ep->state == EP_UP && ep->active < ep->cfg->concurrency && r->nfree &&
		       budget_allows(r, k) && pick_job(r, k, &job, &res)) {
			start_job(r, k, job, res);
			n++;
		}
	}
	return n;
}

/* Hand the transfers curl finished to their slots. */
static void collect(struct run *r)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(r->multi, &left))) {
		struct slot *s = NULL;
		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
		if (s)
			transfer_done(r, s, m->data.result);
	}
}

static int busy(struct run *r)
{
	for (size_t i = 0; i < r->nslots; i++)
		if (r->slots[i].used && !r->slots[i].is_health)
			return 1;
	return 0;
}

/* Every endpoint's first check has ended (it answered its probe, failed once, or was given
 * up): sort the jobs by which endpoints can run them. A job that no endpoint can run when
 * every endpoint has said what it has is refused here, before any job is sent
 * (KILN_E_SPEC naming each endpoint and what it lacks). */
static int open_gate(struct run *r)
{
	for (size_t k = 0; k < r->o->nendpoints; k++)
		if (!r->eps[k].first_done && r->eps[k].state != EP_DEAD)
			return 0;
	r->gate_open = 1;
	if (!r->classify)
		return 0;
	for (size_t k = 0; k < r->o->nendpoints; k++)
		r->eps[k].classified = ep_knows(&r->eps[k]);
	if (classify(r, 0, r->o->nendpoints, 1))
		return r->e->code ? r->e->code : KILN_E_NOMEM;
	size_t n = 0, len = 0;
	char why[1400] = "";
	for (size_t c = 0; c < r->ncls; c++) {
		const struct cls *x = &r->cls[c];
		size_t m = 0, unknown = 0;
		for (size_t k = 0; k < r->o->nendpoints; k++)
			unknown += x->can[k] == CAN_UNKNOWN && r->eps[k].state != EP_DEAD;
		if (unknown || cls_hope(r, x))
			continue;
		for (size_t j = 0; j < r->o->njobs; j++)
			m += r->js[j].state != J_DONE && r->js[j].cls == c;
		if (!m)
			continue;
		n += m;
		cls_reason(r, x, why, sizeof why, &len);
	}
	if (n)
		return kiln_error_set(r->e, KILN_E_SPEC, NULL, "%zu job%s cannot run on any "
				      "endpoint, so none was sent: %s", n, n == 1 ? "" : "s", why);
	return 0;
}

/* Jobs that no endpoint left can run (the ones that could were given up) fail now, with
 * what each endpoint lacks. */
static void fail_hopeless(struct run *r)
{
	char why[2048];
	size_t len;
	r->recheck = 0;
	if (!r->ncls)
		return;
	for (size_t j = 0; j < r->o->njobs; j++) {
		struct kiln_dispatch_attempt a;
		const struct cls *c = &r->cls[r->js[j].cls];
		if ((r->js[j].state != J_QUEUED && r->js[j].state != J_RETRY) || cls_hope(r, c))
			continue;
		len = 0;
		why[0] = 0;
		cls_reason(r, c, why, sizeof why, &len);
		memset(&a, 0, sizeof a);
		a.job = j;
		a.attempt = r->js[j].attempts;
		a.final = 1;
		a.error = why;
		a.started = a.finished = kiln_clock_unix();
		if (r->js[j].state == J_RETRY) /* out of the retry list */
			for (size_t i = 0; i < r->nretry; i++)
				if (r->retry[i] == j) {
					r->retry[i] = r->retry[--r->nretry];
					break;
				}
		r->js[j].state = J_DONE; /* the ring skips it */
		r->remaining--;
		if (!r->rc && r->ops->attempt(r->ops->user, &a, r->e))
			r->rc = r->e->code ? r->e->code : KILN_E_FAILED;
	}
}

int kiln_dispatch_run(const struct kiln_dispatch_opts *oin, const struct kiln_dispatch_ops *ops,
		      struct kiln_dispatch_stats *stats, struct kiln_error *e)
{
	struct kiln_dispatch_opts o = *oin;
	struct run r;
	int rc = 0;
	memset(&r, 0, sizeof r);
	if (!o.backoff_base)
		o.backoff_base = KILN_DISPATCH_BACKOFF_BASE;
	if (!o.backoff_max)
		o.backoff_max = KILN_DISPATCH_BACKOFF_MAX;
	if (!o.breaker_failures)
		o.breaker_failures = 5;
	if (!o.park_seconds)
		o.park_seconds = 2;
	if (!o.health_tries)
		o.health_tries = 6;
	r.o = &o;
	r.ops = ops;
	r.stats = stats;
	r.e = e;
	r.remaining = o.njobs;
	kiln_rng_seed(&r.rng, o.jitter_seed, 0x6469737061746368ull);
	if (stats)
		memset(stats, 0, o.nendpoints * sizeof *stats);
	if (!o.njobs)
		return 0;
	if (!o.nendpoints)
		return kiln_error_set(e, KILN_E_STATE, NULL, "no endpoints to render on");
	if ((rc = curl_start(e)))
		return rc;
	r.eps = kiln_calloc(o.nendpoints, sizeof *r.eps);
	r.js = kiln_calloc(o.njobs, sizeof *r.js);
	r.ring = kiln_calloc(o.njobs + 1, sizeof *r.ring);
	r.retry = kiln_calloc(o.njobs + 1, sizeof *r.retry);
	/* a slot per job that can run, one more per running job for its image check, and one
	 * an endpoint for its health check */
	for (size_t k = 0; k < o.nendpoints; k++)
		r.nslots += 2 * (size_t)o.endpoints[k].concurrency + 1;
	r.slots = kiln_calloc(r.nslots, sizeof *r.slots);
	r.freev = kiln_calloc(r.nslots, sizeof *r.freev);
	r.multi = curl_multi_init();
	if (!r.eps || !r.js || !r.ring || !r.retry || !r.slots || !r.freev || !r.multi) {
		rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory starting the dispatcher");
		goto out;
	}
	for (size_t i = r.nslots; i-- > 0;)
		r.freev[r.nfree++] = &r.slots[i];
	/* keep-alive connections: a few per endpoint beyond its jobs, for polls */
	curl_multi_setopt(r.multi, CURLMOPT_MAXCONNECTS, (long)(r.nslots * 2 + 4));
	for (size_t k = 0; k < o.nendpoints; k++) {
		struct ep *ep = &r.eps[k];
		struct curl_slist *h;
		ep->cfg = &o.endpoints[k];
		ep->eng = kiln_engine_for(ep->cfg);
		ep->park = o.park_seconds;
		if (!ep->eng) {
			rc = kiln_error_set(e, KILN_E_STATE, ep->cfg->url, "unknown engine '%s'",
					    ep->cfg->engine);
			goto out;
		}
		ep->headers = curl_slist_append(NULL, "Expect:");
		h = curl_slist_append(NULL, "Content-Type: application/json");
		if (h)
			ep->json_headers = curl_slist_append(h, "Expect:");
		if (!h || !ep->json_headers || !ep->headers) {
			if (!ep->json_headers)
				curl_slist_free_all(h);
			rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
			goto out;
		}
		if (!(ep->resume = kiln_calloc(o.nresume + 1, sizeof *ep->resume))) {
			rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
			goto out;
		}
		r.classify |= ep->eng->supports != NULL;
	}
	for (size_t i = o.nresume; i-- > 0;) {
		const struct kiln_dispatch_resume *x = &o.resume[i];
		if (x->job < o.njobs && x->endpoint < o.nendpoints)
			r.eps[x->endpoint].resume[r.eps[x->endpoint].nresume++] = i;
	}
	for (size_t j = 0; j < o.njobs; j++) {
		r.js[j].last_ep = -1;
		r.ring[r.count++] = j;
	}
	checkers_start(&r, o.check_threads);
	for (size_t k = 0; k < o.nendpoints; k++)
		start_health(&r, k);

	while (r.remaining && !r.rc) {
		double now = kiln_clock_mono(), next = now + 0.25;
		int alive = 0, running, due;
		for (size_t k = 0; k < o.nendpoints; k++) {
			struct ep *ep = &r.eps[k];
			if (ep->state != EP_DEAD)
				alive = 1;
			if (ep->state == EP_PARKED && !ep->health) {
				if (now >= ep->until)
					start_health(&r, k);
				else if (ep->until < next)
					next = ep->until;
			}
		}
		if (!r.gate_open && (r.rc = open_gate(&r)))
			break;
		if (r.recheck)
			fail_hopeless(&r);
		fill(&r);
		if (!alive) {
			fail_rest(&r, NULL);
			if (!busy(&r))
				break;
		}
		if (budget_over(&r) && !busy(&r)) {
			fail_rest(&r, r.budget_why);
			break;
		}
		if (o.cancel && *o.cancel && !busy(&r))
			break;
		for (size_t i = 0; i < r.nslots; i++) {
			struct slot *s = &r.slots[i];
			if (!s->used || !s->waiting)
				continue;
			if (s->due <= now) {
				struct kiln_error err;
				kiln_error_clear(&err);
				s->waiting = 0;
				if (send_http(&r, s, &err))
					end_attempt(&r, s, 0, 0, 0, err.msg);
			} else if (s->due < next) {
				next = s->due;
			}
		}
		/* a retry already due waits for a free slot, which only a transfer ending gives */
		for (size_t i = 0; i < r.nretry; i++)
			if (r.js[r.retry[i]].not_before > now && r.js[r.retry[i]].not_before < next)
				next = r.js[r.retry[i]].not_before;
		curl_multi_perform(r.multi, &running);
		collect(&r);
		/* the endpoints these answers freed send their next job now, before the work on
		 * finished attempts (records, store, batches) that follows */
		for (int pass = 0; pass < 4 && !r.rc && fill(&r); pass++) {
			curl_multi_perform(r.multi, &running);
			collect(&r);
		}
		check_release(&r.ck);
		check_drain(&r);
		sync_stats(&r);
		if (ops->tick && !r.rc && ops->tick(ops->user, e))
			r.rc = e->code ? e->code : KILN_E_FAILED;
		if (r.remaining && !r.rc) {
			double wait;
			/* exchanges scheduled by the transfers that just ended */
			for (size_t i = 0; i < r.nslots; i++)
				if (r.slots[i].used && r.slots[i].waiting && r.slots[i].due < next)
					next = r.slots[i].due;
			for (size_t i = 0; i < r.nretry; i++)
				if (r.js[r.retry[i]].not_before > now &&
				    r.js[r.retry[i]].not_before < next)
					next = r.js[r.retry[i]].not_before;
			now = kiln_clock_mono();
			wait = next - now;
			int ms = wait <= 0 ? 0 : (int)(wait * 1000) + 1;
			/* something became ready in this turn: go round again at once (a worker's
			 * verdict wakes the poll) */
			due = 0;
			for (size_t i = 0; i < r.nretry && !due && ms; i++)
				due = r.js[r.retry[i]].not_before <= now;
			for (size_t k = 0; k < o.nendpoints && ms && r.nfree; k++)
				if (r.gate_open && r.eps[k].state == EP_UP &&
				    r.eps[k].active < r.eps[k].cfg->concurrency &&
				    ((r.count && !r.eps[k].ring_starved) || r.eps[k].nresume || due) &&
				    !(o.cancel && *o.cancel) && budget_allows(&r, k))
					ms = 0;
			curl_multi_poll(r.multi, NULL, 0, ms, NULL);
		}
	}
	sync_stats(&r);
	rc = r.rc;
out:
	checkers_stop(&r.ck);
	for (size_t i = 0; r.slots && i < r.nslots; i++) {
		struct slot *s = &r.slots[i];
		if (s->used)
			slot_free(&r, s);
		if (s->h)
			curl_easy_cleanup(s->h);
		kiln_buf_release(&s->resp);
	}
	for (size_t k = 0; r.eps && k < o.nendpoints; k++) {
		curl_slist_free_all(r.eps[k].headers);
		curl_slist_free_all(r.eps[k].json_headers);
		free(r.eps[k].resume);
		kiln_ai_caps_release(&r.eps[k].caps);
	}
	cls_free(&r);
	if (r.multi)
		curl_multi_cleanup(r.multi);
	free(r.eps);
	free(r.js);
	free(r.ring);
	free(r.retry);
	free(r.slots);
	free(r.freev);
	return rc;
}
