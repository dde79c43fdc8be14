/* catalog/inpaint: the inpaint requests of the review app's brush (table inpaint_requests,
 * migration 13): added pending by the review server, run by the polish stage, then marked
 * done (the step's input and output) or failed (the error kept). A request leaves pending
 * once, in one statement that checks it still is.
 */
#include "catalog/db.h"
#include "catalog/internal.h"
#include "kiln/catalog.h"
#include "util/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COLS "id, item_id, at, reviewer, mask, prompt, negative, denoise, status, error, " \
	"done_at, input, output"

static void copy(char *dst, size_t n, sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	snprintf(dst, n, "%s", t ? (const char *)t : "");
}

/* *dst a copy of the column (NULL stays NULL); -1 out of memory */
static int dup_col(char **dst, sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	*dst = NULL;
	if (!t)
		return 0;
	return (*dst = kiln_strdup((const char *)t)) ? 0 : -1;
}

static int read_row(sqlite3_stmt *st, struct kiln_inpaint_request *r)
{
	memset(r, 0, sizeof *r);
	r->id = (uint64_t)sqlite3_column_int64(st, 0);
	r->item_id = (uint64_t)sqlite3_column_int64(st, 1);
	copy(r->at, sizeof r->at, st, 2);
	copy(r->mask, sizeof r->mask, st, 4);
	r->denoise = sqlite3_column_double(st, 7);
	copy(r->status, sizeof r->status, st, 8);
	copy(r->done_at, sizeof r->done_at, st, 10);
	copy(r->input, sizeof r->input, st, 11);
	copy(r->output, sizeof r->output, st, 12);
	if (dup_col(&r->reviewer, st, 3) || dup_col(&r->prompt, st, 5) ||
	    dup_col(&r->negative, st, 6) || dup_col(&r->error, st, 9)) {
		kiln_inpaint_request_release(r);
		return -1;
	}
	return 0;
}

void kiln_inpaint_request_release(struct kiln_inpaint_request *r)
{
	if (!r)
		return;
	free(r->reviewer);
	free(r->prompt);
	free(r->negative);
	free(r->error);
	r->reviewer = r->prompt = r->negative = r->error = NULL;
}

void kiln_inpaint_requests_release(struct kiln_inpaint_requests *l)
{
	size_t i;
	if (!l)
		return;
	for (i = 0; i < l->n; i++)
		kiln_inpaint_request_release(&l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

int kiln_catalog_inpaint_add(struct kiln_catalog *c, uint64_t item_id, const char *reviewer,
			     const char *mask, const char *prompt, const char *negative,
			     double denoise, struct kiln_inpaint_request *out,
			     struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	char at[48];
	int rc;
	if (out)
		memset(out, 0, sizeof *out);
	kiln_catalog__now(at);
	if ((rc = writable(c, e)) ||
	    (rc = prepare(c, "INSERT INTO inpaint_requests(item_id, at, reviewer, mask, prompt, "
			     "negative, denoise) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING " COLS,
			     &st, e)))
		return rc;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)item_id);
	sqlite3_bind_text(st, 2, at, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, reviewer, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, mask, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, prompt, -1, SQLITE_STATIC);
	if (negative)
		sqlite3_bind_text(st, 6, negative, -1, SQLITE_STATIC);
	sqlite3_bind_double(st, 7, denoise);
	if (sqlite3_step(st) != SQLITE_ROW)
		rc = db_error(c, e, "adding an inpaint request");
	else if (out && read_row(st, out))
		rc = kiln_error_set(e, KILN_E_NOMEM, c->path, "out of memory");
	/* RETURNING: the row is written when the statement finishes */
	if (!rc && sqlite3_step(st) != SQLITE_DONE) {
		rc = db_error(c, e, "adding an inpaint request");
		if (out)
			kiln_inpaint_request_release(out);
	}
	sqlite3_finalize(st);
	return rc;
}

int kiln_catalog_inpaint_list(struct kiln_catalog *c, const uint64_t *item, const char *status,
			      struct kiln_inpaint_requests *out, struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int rc, step;
	out->v = NULL;
	out->n = 0;
	if ((rc = prepare(c, "SELECT " COLS " FROM inpaint_requests WHERE (?1 IS NULL OR "
			     "item_id = ?1) AND (?2 IS NULL OR status = ?2) ORDER BY id", &st, e)))
		return rc;
	if (item)
		sqlite3_bind_int64(st, 1, (sqlite3_int64)*item);
	if (status)
		sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (out->n == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			struct kiln_inpaint_request *v = kiln_reallocarray(out->v, ncap, sizeof *v);
			if (!v)
				goto nomem;
			out->v = v;
			cap = ncap;
		}
		if (read_row(st, &out->v[out->n]))
			goto nomem;
		out->n++;
	}
	if (step != SQLITE_DONE)
		rc = db_error(c, e, "reading the inpaint requests");
	sqlite3_finalize(st);
	if (rc)
		kiln_inpaint_requests_release(out);
	return rc;
nomem:
	sqlite3_finalize(st);
	kiln_inpaint_requests_release(out);
	return kiln_error_set(e, KILN_E_NOMEM, c->path, "out of memory");
}

static int finish(struct kiln_catalog *c, uint64_t id, const char *status, const char *input,
		  const char *output, const char *error, struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	char at[48];
	int rc;
	kiln_catalog__now(at);
	if ((rc = writable(c, e)) ||
	    (rc = prepare(c, "UPDATE inpaint_requests SET status = ?, done_at = ?, input = ?, "
			     "output = ?, error = ? WHERE id = ? AND status = 'pending'", &st, e)))
		return rc;
	sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, at, -1, SQLITE_STATIC);
	if (input)
		sqlite3_bind_text(st, 3, input, -1, SQLITE_STATIC);
	if (output)
		sqlite3_bind_text(st, 4, output, -1, SQLITE_STATIC);
	if (error)
		sqlite3_bind_text(st, 5, error, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)id);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_error(c, e, "recording an inpaint request's end");
	else if (!sqlite3_changes(c->db))
		rc = kiln_error_set(e, KILN_E_STATE, c->path, "inpaint request %llu is not "
				    "pending (another run finished it)", (unsigned long long)id);
	sqlite3_finalize(st);
	return rc;
}

int kiln_catalog_inpaint_done(struct kiln_catalog *c, uint64_t id, const char *input,
			      const char *output, struct kiln_error *e)
{
	return finish(c, id, "done", input, output, NULL, e);
}

int kiln_catalog_inpaint_failed(struct kiln_catalog *c, uint64_t id, const char *error,
				struct kiln_error *e)
{
	return finish(c, id, "failed", NULL, NULL, error ? error : "failed", e);
}
