/* review/api: the JSON endpoints under /api/ (docs/review-api.md is the contract with the
 * page). Each runs under the server's lock: the catalog connection is not shared between
 * threads. */
#include "review/internal.h"
#include "util/alloc.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum MHD_Result session(struct rv_req *r)
{
	struct kiln_review_server *s = r->srv;
	struct kiln_catalog_counts n;
	struct kiln_error e;
	int rc;
	kiln_error_clear(&e);
	pthread_mutex_lock(&s->lock);
	rc = kiln_catalog_counts(s->p->catalog, &n, &e);
	pthread_mutex_unlock(&s->lock);
	if (rc)
		return rv_send_error(r->conn, 500, "%s", e.msg);
	return rv_send_json(r->conn, 200, json_pack("{s:s, s:s, s:s?, s:I, s:b, s:I}",
		"project", s->p->spec->name ? s->p->spec->name : "", "reviewer", r->reviewer,
		"csrf", r->csrf, "total", (json_int_t)n.items, "review_required", 0,
		"approvals", (json_int_t)1));
}

enum MHD_Result rv_api(struct rv_req *r)
{
	int get = strcmp(r->method, "POST") != 0;
	if (!strcmp(r->path, "/api/session"))
		return get ? session(r) : rv_send_error(r->conn, 405, "GET %s", r->path);
	return rv_send_error(r->conn, 404, "%s: no such endpoint", r->path);
}

enum MHD_Result rv_image(struct rv_req *r, int thumb)
{
	(void)thumb;
	return rv_send_error(r->conn, 404, "%s: no such image", r->path);
}
