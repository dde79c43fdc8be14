/* catalog/review: the review tables (schema in internal.h, version 6): reviewers, the
 * append-only decision log and each item's review state.
 *
 * Invariants: a decision is one transaction that appends its log rows and rewrites the state
 * of the items they touch from the log, so the state never disagrees with the log; the log is
 * never updated or deleted (triggers), an undo is a row naming the decision it undoes. Tokens
 * are stored only as SHA-256.
 *
 * Sizes: reviewers a handful; log rows a few per item and reviewer (10,000 items, 5
 * reviewers: ~100,000 rows); one state row per item decided.
 */
#include "catalog/internal.h"
#include "kiln/catalog.h"
#include "util/alloc.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static int rv_error(struct kiln_catalog *c, struct kiln_error *e, const char *what)
{
	int code = sqlite3_errcode(c->db);
	if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
		return kiln_error_set(e, KILN_E_DB, c->path, "%s: the catalog is locked by another "
				      "kiln process; wait for it to finish", what);
	return kiln_error_set(e, KILN_E_DB, c->path, "%s: %s", what, sqlite3_errmsg(c->db));
}

static int rv_writable(struct kiln_catalog *c, struct kiln_error *e)
{
	if (c->readonly)
		return kiln_error_set(e, KILN_E_STATE, c->path, "the catalog is open read-only: "
				      "this step writes to it");
	return 0;
}

static int rv_exec(struct kiln_catalog *c, const char *sql, struct kiln_error *e)
{
	if (sqlite3_exec(c->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return rv_error(c, e, "review");
	return 0;
}

static int rv_begin(struct kiln_catalog *c, struct kiln_error *e)
{
	int rc = rv_writable(c, e);
	return rc ? rc : rv_exec(c, "BEGIN IMMEDIATE", e);
}

static void rv_rollback(struct kiln_catalog *c)
{
	if (!sqlite3_get_autocommit(c->db))
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
}

static int rv_prepare(struct kiln_catalog *c, const char *sql, sqlite3_stmt **st,
		      struct kiln_error *e)
{
	if (sqlite3_prepare_v2(c->db, sql, -1, st, NULL) != SQLITE_OK)
		return rv_error(c, e, "review query");
	return 0;
}

static void rv_now(char out[48])
{
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(out, 48, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));
}

static char *rv_dup(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	return t ? kiln_strdup((const char *)t) : NULL;
}

/* --- reviewers ------------------------------------------------------------------------------ */

int kiln_catalog_reviewer_put(struct kiln_catalog *c, const char *name, const char *token_sha,
			      int owner, struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	char at[48];
	int rc;
	if ((rc = rv_begin(c, e)))
		return rc;
	if (!owner) {
		if ((rc = rv_prepare(c, "SELECT 1 FROM reviewers WHERE name = ?", &st, e)))
			goto out;
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW) {
			rc = kiln_error_set(e, KILN_E_STATE, c->path, "reviewer '%s' already "
					    "exists: choose another name", name);
			goto out;
		}
		sqlite3_finalize(st);
		st = NULL;
	}
	rv_now(at);
	if ((rc = rv_prepare(c, owner ? "INSERT OR REPLACE INTO reviewers(name, token_sha256, "
			     "owner, created) VALUES (?, ?, 1, ?)" : "INSERT INTO reviewers(name, "
			     "token_sha256, owner, created) VALUES (?, ?, 0, ?)", &st, e)))
		goto out;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, token_sha, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, at, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = rv_error(c, e, "adding a reviewer");
		goto out;
	}
	rc = rv_exec(c, "COMMIT", e);
out:
	sqlite3_finalize(st);
	if (rc)
		rv_rollback(c);
	return rc;
}

int kiln_catalog_reviewer_find(struct kiln_catalog *c, const char *token_sha, char **name,
			       int *owner, struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	int rc, step;
	*name = NULL;
	*owner = 0;
	if ((rc = rv_prepare(c, "SELECT name, owner FROM reviewers WHERE token_sha256 = ?", &st,
			     e)))
		return rc;
	sqlite3_bind_text(st, 1, token_sha, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		*owner = sqlite3_column_int(st, 1);
		if (!(*name = rv_dup(st, 0)))
			rc = kiln_error_set(e, KILN_E_NOMEM, c->path, "out of memory");
	} else if (step != SQLITE_DONE) {
		rc = rv_error(c, e, "reading the reviewers");
	}
	sqlite3_finalize(st);
	return rc;
}

int kiln_catalog_reviewer_owner(struct kiln_catalog *c, char **name, char token_sha[65],
				struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	int rc, step;
	*name = NULL;
	token_sha[0] = 0;
	if ((rc = rv_prepare(c, "SELECT name, token_sha256 FROM reviewers WHERE owner = 1 "
			     "LIMIT 1", &st, e)))
		return rc;
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(st, 1);
		snprintf(token_sha, 65, "%s", t ? (const char *)t : "");
		if (!(*name = rv_dup(st, 0)))
			rc = kiln_error_set(e, KILN_E_NOMEM, c->path, "out of memory");
	} else if (step != SQLITE_DONE) {
		rc = rv_error(c, e, "reading the reviewers");
	}
	sqlite3_finalize(st);
	return rc;
}
