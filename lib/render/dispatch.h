/* render/dispatch.h: runs many AI jobs over many servers from one libcurl multi event loop.
 *
 * A job is one image (an item's candidate). The dispatcher owns scheduling and the network:
 * which server takes which job (at most `concurrency` jobs per server at once), HTTP transfers
 * with connect and total timeouts, retries with exponential backoff and jitter on transport
 * errors, 5xx and bad images (a failed job prefers another server next time), a circuit
 * breaker that parks a server after consecutive failures and lets it back after a health
 * check, and health checks at start. The caller (ai.c) owns meaning: it builds each
 * job's request when the job is about to run (so memory stays flat in the number of jobs),
 * checks each image, persists remote ids, and records every attempt.
 *
 * Threads: ops->check runs on opts.check_threads worker threads (none: on the caller's
 * thread), so that decoding an image never holds up the endpoints; every other callback runs
 * on the caller's thread, one at a time.
 */
#ifndef KILN_DISPATCH_H
#define KILN_DISPATCH_H

#include <stddef.h>
#include <stdint.h>
#include "render/engines/engine.h"
#include "kiln/error.h"
#include "kiln/render.h"
#include "kiln/spec.h"

/* One finished attempt, handed to ops->attempt. Pointers live for the call only. */
struct kiln_dispatch_attempt {
	size_t job;
	const struct kiln_endpoint *ep;
	size_t endpoint;           /* index into the endpoints given */
	const struct kiln_engine *engine;
	const struct kiln_ai_request *rq;
	struct kiln_ai_job *aj;    /* image, seed_used, info, remote_id */
	unsigned attempt;          /* 1-based */
	int ok;
	int final;                 /* no further attempt of this job will be made */
	int check_failed;          /* the image came, and ops->check refused it (error says why) */
	long http_status;          /* of the last exchange (0: transport error or none) */
	const char *error;         /* when !ok */
	double started, finished;  /* unix seconds */
	double gpu_seconds;        /* what the platform reported (aj->gpu_seconds), 0: none */
	double cost_usd;           /* at the endpoint's cost_per_hour: the reported GPU seconds,
	                              or for a self-hosted endpoint the attempt's wall time */
};

struct kiln_dispatch_ops {
	/* Fill job k's request (kiln_ai_request_build); released by the dispatcher. */
	int (*request)(void *user, size_t k, struct kiln_ai_request *rq, struct kiln_error *e);
	/* Job k's remote id just became known (aj->remote_id): persist it. Called before the
	 * dispatcher sends anything that could make the server run the job again. May be NULL. */
	int (*remote)(void *user, size_t k, size_t endpoint, const struct kiln_ai_job *aj,
		      struct kiln_error *e);
	/* Accept or reject an image (0: accepted; else e says why and the attempt fails). May be
	 * NULL. Runs on a worker thread when opts.check_threads > 0, at the same time as other
	 * checks and as the other callbacks: it may read aj and what never changes during the
	 * run, and must write nothing shared. The endpoint runs its next job meanwhile. */
	int (*check)(void *user, size_t k, struct kiln_ai_job *aj, struct kiln_error *e);
	/* An attempt ended. A non-zero return stops the run with that error. */
	int (*attempt)(void *user, const struct kiln_dispatch_attempt *a, struct kiln_error *e);
	/* An endpoint's health check answered 2xx (body: what it said, e.g. RunPod's /health
	 * queue and workers). May be NULL; what it returns is ignored. */
	void (*health)(void *user, size_t endpoint, const char *body, size_t len);
	/* Called once per loop turn (batching, progress). May be NULL. */
	int (*tick)(void *user, struct kiln_error *e);
	void *user;
};

/* A job picked up from an earlier run: its remote id on one endpoint. */
struct kiln_dispatch_resume {
	size_t job;
	size_t endpoint;
	const char *remote_id;
	unsigned attempt;
};

struct kiln_dispatch_opts {
	const struct kiln_endpoint *endpoints;
	size_t nendpoints;
	size_t njobs;
	unsigned retries;          /* attempts after the first */
	const struct kiln_dispatch_resume *resume;
	size_t nresume;
	const volatile int *cancel;/* non-zero: start nothing new, finish what is under way */
	double backoff_base;       /* seconds, default 0.25 */
	double backoff_max;        /* seconds, default 30 */
	unsigned breaker_failures; /* consecutive failures that park a server, default 5 */
	double park_seconds;       /* first park, doubling up to 60 s; default 2 */
	unsigned health_tries;     /* failed health checks in a row before a server is given up
	                              for this run, default 6 */
	uint64_t jitter_seed;
	unsigned check_threads;    /* image checkers beside the loop (0: check on the loop) */
	double budget_usd;         /* 0: none. No job starts when the spend so far plus what the
	                              running jobs and it are expected to cost would pass it;
	                              the jobs left then fail with the spend named */
	double spent_before;       /* USD spent by earlier runs (counts against the budget) */
	int *budget_stopped;       /* out, may be NULL: set when the budget held jobs back */
};


/* The wait before a retry: base * 2^(attempt-1), at most max, times an equal jitter in
 * [0.5, 1) drawn from rng (attempt 1-based). The dispatcher's own rule, also used by the
 * blocking requests of a RunPod training job (runpod_train.c). Defaults of opts.backoff_*: */
#define KILN_DISPATCH_BACKOFF_BASE 0.25
#define KILN_DISPATCH_BACKOFF_MAX 30
struct kiln_rng;
double kiln_dispatch_backoff(double base, double max, unsigned attempt, struct kiln_rng *rng);

/* Run every job to an end (ok, or failed after its retries). stats[nendpoints] may be NULL. */
int kiln_dispatch_run(const struct kiln_dispatch_opts *o, const struct kiln_dispatch_ops *ops,
		      struct kiln_dispatch_stats *stats, struct kiln_error *e) KILN_MUST_CHECK;

#endif
