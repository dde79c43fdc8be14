/* review/thumbs: thumbnails (WebP, 512 px on the longest side) of the catalog's images for
 * the grid, made ahead by worker threads when the server starts and on demand by a request
 * that comes first. A thumbnail is kept in the content store and found by its source's SHA-256
 * (catalog table thumbs), so it is made once per image, ever, whatever the run.
 *
 * Invariants: a worker holds a catalog connection only to read or record a row, never
 * while libvips works; two threads making the same thumbnail at once store the same bytes
 * (the store is content-addressed, putting twice is a no-op).
 *
 * Sizes: one entry per distinct candidate image (10,000 tokens x K candidates); a thumbnail
 * ~10-40 KB.
 */
#include "review/internal.h"
#include "kiln/buf.h"
#include "util/alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "util/image.h"

#define THUMB_SIZE 512
#define THUMB_QUALITY 80

struct rv_thumbs {
	pthread_t *threads;
	unsigned nthreads;
	char (*todo)[65];           /* source images to make ahead */
	size_t ntodo;
	atomic_size_t next;
	atomic_size_t done;
	atomic_int stop;
};

/* Make source's thumbnail and record it: 0 with thumb, or an error. */
static int make(struct kiln_review_server *s, const char *source, char thumb[65],
		struct kiln_error *e)
{
	struct kiln_buf b = KILN_BUF_INIT;
	char *path = kiln_store_path(s->p->store, source);
	int rc;
	if (!path)
		return kiln_error_set(e, KILN_E_NOMEM, source, "out of memory");
	rc = kiln_image_thumbnail(path, THUMB_SIZE, "webp", THUMB_QUALITY, &b, e);
	free(path);
	if (!rc)
		rc = kiln_store_put(s->p->store, b.data, b.len, thumb, e);
	kiln_buf_release(&b);
	if (rc)
		return rc;
	rv_write_begin(s);
	rc = kiln_catalog_thumb_put(s->p->catalog, source, thumb, e);
	rv_write_end(s);
	return rc;
}

int rv_thumb_get(struct kiln_review_server *s, const char *source, char thumb[65],
		 struct kiln_error *e)
{
	struct rv_reader *h;
	struct kiln_catalog *c = rv_read_begin(s, &h);
	int rc = kiln_catalog_thumb_get(c, source, thumb, e);
	rv_read_end(h);
	if (rc)
		return rc;
	if (thumb[0] && kiln_store_has(s->p->store, thumb) == 1)
		return 0;
	return make(s, source, thumb, e);
}

static void *worker(void *arg)
{
	struct kiln_review_server *s = arg;
	struct rv_thumbs *t = s->thumbs;
	for (;;) {
		size_t i = atomic_fetch_add(&t->next, 1);
		char thumb[65];
		struct kiln_error e;
		if (i >= t->ntodo || atomic_load(&t->stop))
			break;
		kiln_error_clear(&e);
		/* a source that cannot be read is reported when a page asks for it */
		(void)rv_thumb_get(s, t->todo[i], thumb, &e);
		atomic_fetch_add(&t->done, 1);
	}
	return NULL;
}

int rv_thumbs_start(struct kiln_review_server *s, unsigned threads, int prepare,
		    struct kiln_error *e)
{
	struct rv_thumbs *t = kiln_calloc(1, sizeof *t);
	size_t n = 0;
	if (!t)
		return kiln_error_set(e, KILN_E_NOMEM, s->p->dir, "out of memory");
	s->thumbs = t;
	if (!prepare)
		return 0;
	for (size_t i = 0; i < s->cache.items.n; i++)
		n += s->cache.tok[i].ncands;
	if (!n)
		return 0;
	if (!(t->todo = kiln_calloc(n, sizeof *t->todo)) ||
	    !(t->threads = kiln_calloc(threads, sizeof *t->threads)))
		return kiln_error_set(e, KILN_E_NOMEM, s->p->dir, "out of memory");
	/* the items' current images first: the grid shows them */
	for (size_t i = 0; i < s->cache.items.n; i++)
		if (s->cache.tok[i].it->image[0])
			memcpy(t->todo[t->ntodo++], s->cache.tok[i].it->image, 65);
	for (size_t i = 0; i < s->cache.items.n; i++)
		for (size_t k = 0; k < s->cache.tok[i].ncands; k++)
			if (strcmp(s->cache.tok[i].cands[k].image, s->cache.tok[i].it->image) &&
			    t->ntodo < n)
				memcpy(t->todo[t->ntodo++], s->cache.tok[i].cands[k].image, 65);
	if (kiln_vips_init(e))
		return e->code;
	for (unsigned i = 0; i < threads; i++) {
		if (pthread_create(&t->threads[i], NULL, worker, s))
			break;
		t->nthreads++;
	}
	return 0;
}

void rv_thumbs_stop(struct kiln_review_server *s)
{
	struct rv_thumbs *t = s->thumbs;
	if (!t)
		return;
	atomic_store(&t->stop, 1);
	for (unsigned i = 0; i < t->nthreads; i++)
		pthread_join(t->threads[i], NULL);
	free(t->threads);
	free(t->todo);
	free(t);
	s->thumbs = NULL;
}

void kiln_review_thumbs_progress(const struct kiln_review_server *s, uint64_t *done,
				 uint64_t *total)
{
	struct rv_thumbs *t = s->thumbs;
	*done = t ? atomic_load(&t->done) : 0;
	*total = t ? t->ntodo : 0;
}
