/* pool.c: worker threads over numbered jobs (pool.h). */
#include "util/pool.h"
#include "util/alloc.h"
#include "util/clock.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct state {
	const struct kiln_pool *p;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t next;                 /* next job to take (atomic) */
	size_t ndone;
	unsigned running;            /* workers still running */
};

static void *worker(void *arg)
{
	struct state *s = arg;
	const struct kiln_pool *p = s->p;
	struct kiln_buf buf;
	kiln_buf_init(&buf, 0);
	for (;;) {
		size_t k;
		if (p->cancel && *p->cancel)
			break;
		k = __atomic_fetch_add(&s->next, 1, __ATOMIC_RELAXED);
		if (k >= p->njobs)
			break;
		p->run(p->user, k, &buf);
		pthread_mutex_lock(&s->mu);
		p->order[s->ndone++] = k;
		pthread_cond_signal(&s->cv);
		pthread_mutex_unlock(&s->mu);
	}
	kiln_buf_release(&buf);
	pthread_mutex_lock(&s->mu);
	s->running--;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

int kiln_pool_run(const struct kiln_pool *p, size_t *ndone, struct kiln_error *e)
{
	struct state s;
	pthread_t *th = NULL;
	unsigned nthreads = p->threads, started = 0;
	size_t flushed = 0, batch = p->batch ? p->batch : 1;
	double last_flush = kiln_clock_mono();
	int rc = 0;

	memset(&s, 0, sizeof s);
	s.p = p;
	for (size_t k = 0; k < p->first; k++)
		p->order[k] = k;
	s.next = s.ndone = p->first;
	*ndone = p->first;
	if (!nthreads) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		nthreads = n > 0 ? (unsigned)n : 1;
	}
	if (nthreads > p->njobs - p->first)
		nthreads = (unsigned)(p->njobs - p->first);
	if (nthreads && !(th = kiln_calloc(nthreads, sizeof *th)))
		return kiln_error_set(e, KILN_E_NOMEM, p->where, "out of memory");
	pthread_mutex_init(&s.mu, NULL);
	pthread_cond_init(&s.cv, NULL);
	s.running = nthreads;
	for (started = 0; started < nthreads; started++)
		if (pthread_create(&th[started], NULL, worker, &s)) {
			pthread_mutex_lock(&s.mu);
			s.running -= nthreads - started;
			pthread_mutex_unlock(&s.mu);
			break;
		}
	if (nthreads && !started) {
		rc = kiln_error_set(e, KILN_E_NOMEM, p->where, "cannot start worker threads");
		goto join;
	}
	/* The main thread sleeps until a job finishes, or at most 50 ms while finished jobs
	 * wait for their batch (waiting only for ndone != flushed made this loop spin, using a
	 * core and reporting jobs twice). */
	for (size_t reported = 0;;) {
		size_t n;
		int running;
		pthread_mutex_lock(&s.mu);
		while (s.ndone == reported && s.running) {
			struct timespec ts;
			if (flushed == reported) {
				pthread_cond_wait(&s.cv, &s.mu);
				continue;
			}
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 50000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			if (pthread_cond_timedwait(&s.cv, &s.mu, &ts))
				break;
		}
		n = s.ndone;
		running = s.running > 0;
		pthread_mutex_unlock(&s.mu);
		for (; reported < n; reported++)
			if (p->done)
				p->done(p->user, reported);
		while (flushed < n &&
		       (n - flushed >= batch || !running || kiln_clock_mono() - last_flush > 0.25)) {
			size_t to = flushed + batch < n ? flushed + batch : n;
			if ((rc = p->flush(p->user, flushed, to, e))) {
				/* stop the workers; what was recorded stays recorded */
				__atomic_store_n(&s.next, p->njobs, __ATOMIC_RELAXED);
				goto join;
			}
			flushed = to;
			last_flush = kiln_clock_mono();
		}
		if (!running && flushed == n)
			break;
	}
join:
	for (unsigned t = 0; t < started; t++)
		pthread_join(th[t], NULL);
	pthread_mutex_destroy(&s.mu);
	pthread_cond_destroy(&s.cv);
	free(th);
	*ndone = s.ndone;
	return rc;
}
