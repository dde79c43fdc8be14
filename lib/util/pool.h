/* lib/util/pool.h: worker threads over numbered jobs, with the main thread reporting each job
 * as it finishes and recording the finished ones in batches (render's and polish's loop).
 *
 * Workers take jobs first..njobs-1 in turn and call run(); the main thread calls done() for
 * each finished job in the order they finished, and flush(from, to) for order[from, to) once
 * `batch` are waiting, when the workers are done, or a quarter second after the last flush.
 * A flush that fails stops the workers (jobs under way finish, nothing more is taken). Jobs
 * [0, first) count as finished before the run (reported and flushed first). cancel non-zero:
 * no new job is taken. */
#ifndef KILN_UTIL_POOL_H
#define KILN_UTIL_POOL_H

#include <stddef.h>
#include "kiln/buf.h"
#include "kiln/error.h"

struct kiln_pool {
	size_t njobs;
	size_t first;                /* jobs already finished */
	size_t batch;                /* jobs a flush records at most */
	unsigned threads;            /* 0: one per core; never more than the jobs to run */
	size_t *order;               /* njobs entries, filled: job numbers in finishing order */
	const volatile int *cancel;
	const char *where;           /* for the errors (the project's folder) */
	void *user;
	void (*run)(void *user, size_t job, struct kiln_buf *buf);     /* worker: buf is its own */
	void (*done)(void *user, size_t k);                             /* main: order[k] finished */
	int (*flush)(void *user, size_t from, size_t to, struct kiln_error *e);  /* main */
};

/* *ndone: the jobs finished (order[0, *ndone)). Errors: the flush's, or no thread starts. */
int kiln_pool_run(const struct kiln_pool *p, size_t *ndone, struct kiln_error *e)
	KILN_MUST_CHECK;

#endif
