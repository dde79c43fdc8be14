/* review/pool: the server's catalog connections. SQLite in WAL mode lets readers run beside the
 * one writer, so the server keeps a small pool of read-only connections for what requests read
 * (tokens, the log, thumbnails known) and the project's own connection as the writer, for
 * decisions only, each a short transaction.
 *
 * The writer never checkpoints in a request: its automatic checkpoint is off, and a thread
 * checkpoints (PASSIVE: it never waits for a reader) once no decision came for a while, and
 * once more when the server stops.
 *
 * Invariants: a connection is used by one thread at a time (each has its own mutex; SQLite's
 * connections are opened without theirs); the writer's mutex is taken before the cache's lock,
 * never after.
 *
 * Sizes: RV_READERS connections (a few MiB of page cache each, and a map of the file: address
 * space, pages shared with the page cache).
 */
#include "review/internal.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/fs.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define IDLE_SECONDS 1.0          /* no decision for this long: checkpoint */
#define READER_MMAP (256LL << 20) /* the readers map the catalog file (address space, not RSS) */

struct rv_reader {
	pthread_mutex_t m;
	struct kiln_catalog *c;
};

struct rv_pool {
	struct rv_reader r[RV_READERS];
	size_t n;
	atomic_uint next;
	pthread_t idle;
	int idle_started;
	pthread_mutex_t stop_m;
	pthread_cond_t stop_cv;
	int stop;
	double last_write;        /* under the writer's mutex */
	int dirty;                /* a commit since the last checkpoint (under the writer's mutex) */
};

static void checkpoint_now(struct kiln_review_server *s)
{
	struct kiln_error e;
	kiln_error_clear(&e);
	/* a failed checkpoint is retried at the next idle moment; SQLite's WAL stays valid */
	if (!kiln_catalog_checkpoint(s->p->catalog, &e))
		s->pool->dirty = 0;
}

static void *idle_main(void *arg)
{
	struct kiln_review_server *s = arg;
	struct rv_pool *p = s->pool;
	pthread_mutex_lock(&p->stop_m);
	while (!p->stop) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 250 * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&p->stop_cv, &p->stop_m, &until);
		if (p->stop)
			break;
		pthread_mutex_unlock(&p->stop_m);
		pthread_mutex_lock(&s->write_lock);
		if (p->dirty && kiln_clock_unix() - p->last_write >= IDLE_SECONDS)
			checkpoint_now(s);
		pthread_mutex_unlock(&s->write_lock);
		pthread_mutex_lock(&p->stop_m);
	}
	pthread_mutex_unlock(&p->stop_m);
	return NULL;
}

int rv_pool_open(struct kiln_review_server *s, struct kiln_error *e)
{
	struct rv_pool *p = kiln_calloc(1, sizeof *p);
	char *path;
	int rc = 0;
	if (!p)
		return kiln_error_set(e, KILN_E_NOMEM, s->p->dir, "out of memory");
	s->pool = p;
	pthread_mutex_init(&p->stop_m, NULL);
	pthread_cond_init(&p->stop_cv, NULL);
	if (!(path = kiln_fs_join(s->p->kiln_dir, "catalog.db")))
		return kiln_error_set(e, KILN_E_NOMEM, s->p->dir, "out of memory");
	for (; p->n < RV_READERS; p->n++) {
		pthread_mutex_init(&p->r[p->n].m, NULL);
		if ((rc = kiln_catalog_open_readonly(&p->r[p->n].c, path, e))) {
			pthread_mutex_destroy(&p->r[p->n].m);
			break;
		}
		kiln_catalog_mmap(p->r[p->n].c, READER_MMAP);
	}
	free(path);
	if (rc)
		return rc;
	/* checkpoints only when idle (idle_main) */
	kiln_catalog_wal_autocheckpoint(s->p->catalog, 0);
	if (pthread_create(&p->idle, NULL, idle_main, s))
		return kiln_error_set(e, KILN_E_NOMEM, s->p->dir, "cannot start a thread");
	p->idle_started = 1;
	return 0;
}

void rv_pool_close(struct kiln_review_server *s)
{
	struct rv_pool *p = s->pool;
	if (!p)
		return;
	if (p->idle_started) {
		pthread_mutex_lock(&p->stop_m);
		p->stop = 1;
		pthread_cond_signal(&p->stop_cv);
		pthread_mutex_unlock(&p->stop_m);
		pthread_join(p->idle, NULL);
	}
	for (size_t i = 0; i < p->n; i++) {
		kiln_catalog_free(p->r[i].c);
		pthread_mutex_destroy(&p->r[i].m);
	}
	if (s->p && s->p->catalog) {
		pthread_mutex_lock(&s->write_lock);
		if (p->dirty)
			checkpoint_now(s);
		pthread_mutex_unlock(&s->write_lock);
		kiln_catalog_wal_autocheckpoint(s->p->catalog, 1000);
	}
	pthread_mutex_destroy(&p->stop_m);
	pthread_cond_destroy(&p->stop_cv);
	free(p);
	s->pool = NULL;
}

struct kiln_catalog *rv_read_begin(struct kiln_review_server *s, struct rv_reader **h)
{
	struct rv_pool *p = s->pool;
	unsigned start = atomic_fetch_add(&p->next, 1);
	/* a free connection if there is one, else wait for the next in turn */
	for (size_t i = 0; i < p->n; i++) {
		struct rv_reader *r = &p->r[(start + i) % p->n];
		if (!pthread_mutex_trylock(&r->m)) {
			*h = r;
			return r->c;
		}
	}
	*h = &p->r[start % p->n];
	pthread_mutex_lock(&(*h)->m);
	return (*h)->c;
}

void rv_read_end(struct rv_reader *h)
{
	pthread_mutex_unlock(&h->m);
}

void rv_write_begin(struct kiln_review_server *s)
{
	pthread_mutex_lock(&s->write_lock);
}

void rv_write_end(struct kiln_review_server *s)
{
	s->pool->last_write = kiln_clock_unix();
	s->pool->dirty = 1;
	pthread_mutex_unlock(&s->write_lock);
}
