/* catalog/db: the SQLite helpers of the catalog's files (db.h), once. */
#include "catalog/db.h"

#include <stdio.h>
#include <sys/time.h>
#include <time.h>

int kiln_catalog__db_error(struct kiln_catalog *c, struct kiln_error *e, const char *what)
{
	int code = sqlite3_errcode(c->db);
	if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
		return kiln_error_set(e, KILN_E_DB, c->path, "%s: the catalog is locked by another "
				      "kiln process; wait for it to finish", what);
	if (code == SQLITE_READONLY && c->readonly)
		return kiln_error_set(e, KILN_E_STATE, c->path, "%s: the catalog is open read-only",
				      what);
	return kiln_error_set(e, KILN_E_DB, c->path, "%s: %s", what, sqlite3_errmsg(c->db));
}

void kiln_catalog__now(char out[48])
{
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(out, 48, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));
}

int kiln_catalog__exec(struct kiln_catalog *c, const char *sql, struct kiln_error *e)
{
	if (sqlite3_exec(c->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return kiln_catalog__db_error(c, e, "catalog");
	return 0;
}

/* Every write goes through here (or checks writable()): a catalog opened for reading refuses
 * it before SQLite is asked. */
int kiln_catalog__writable(struct kiln_catalog *c, struct kiln_error *e)
{
	if (c->readonly)
		return kiln_error_set(e, KILN_E_STATE, c->path, "the catalog is open read-only: "
				      "this step writes to it");
	return 0;
}

int kiln_catalog__begin(struct kiln_catalog *c, struct kiln_error *e)
{
	int rc = kiln_catalog__writable(c, e);
	return rc ? rc : kiln_catalog__exec(c, "BEGIN IMMEDIATE", e);
}

int kiln_catalog__commit(struct kiln_catalog *c, struct kiln_error *e)
{
	return kiln_catalog__exec(c, "COMMIT", e);
}

void kiln_catalog__rollback(struct kiln_catalog *c)
{
	if (!sqlite3_get_autocommit(c->db))
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
}

int kiln_catalog__prepare(struct kiln_catalog *c, const char *sql, sqlite3_stmt **st,
			  struct kiln_error *e)
{
	if (sqlite3_prepare_v2(c->db, sql, -1, st, NULL) != SQLITE_OK)
		return kiln_catalog__db_error(c, e, "catalog query");
	return 0;
}
