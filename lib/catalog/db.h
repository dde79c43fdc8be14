/* lib/catalog/db.h (private to lib/catalog): the SQLite helpers catalog.c and review.c share,
 * defined once in db.c. The short static inline names keep the call sites of both files as
 * they were. Calls: catalog.c -> review.c -> db.c; db.c calls neither. */
#ifndef KILN_CATALOG_DB_H
#define KILN_CATALOG_DB_H

#include <sqlite3.h>
#include "catalog/internal.h"
#include "kiln/error.h"

/* The error for the connection's last failure: a busy database says another kiln holds it,
 * a write on a read-only catalog says so, else SQLite's message; what: the step. */
int kiln_catalog__db_error(struct kiln_catalog *c, struct kiln_error *e, const char *what);
/* sql run whole; a failure named "catalog" */
int kiln_catalog__exec(struct kiln_catalog *c, const char *sql, struct kiln_error *e);
/* KILN_E_STATE on a catalog opened for reading (every write checks it first) */
int kiln_catalog__writable(struct kiln_catalog *c, struct kiln_error *e);
/* BEGIN IMMEDIATE (after writable), COMMIT, and a ROLLBACK when a transaction is open */
int kiln_catalog__begin(struct kiln_catalog *c, struct kiln_error *e);
int kiln_catalog__commit(struct kiln_catalog *c, struct kiln_error *e);
void kiln_catalog__rollback(struct kiln_catalog *c);
int kiln_catalog__prepare(struct kiln_catalog *c, const char *sql, sqlite3_stmt **st,
			  struct kiln_error *e);
/* now as 2026-01-02T03:04:05.678Z */
void kiln_catalog__now(char out[48]);

static inline int db_error(struct kiln_catalog *c, struct kiln_error *e, const char *what)
{
	return kiln_catalog__db_error(c, e, what);
}
static inline int exec(struct kiln_catalog *c, const char *sql, struct kiln_error *e)
{
	return kiln_catalog__exec(c, sql, e);
}
static inline int writable(struct kiln_catalog *c, struct kiln_error *e)
{
	return kiln_catalog__writable(c, e);
}
static inline int begin(struct kiln_catalog *c, struct kiln_error *e)
{
	return kiln_catalog__begin(c, e);
}
static inline int commit(struct kiln_catalog *c, struct kiln_error *e)
{
	return kiln_catalog__commit(c, e);
}
static inline void rollback(struct kiln_catalog *c)
{
	kiln_catalog__rollback(c);
}
static inline int prepare(struct kiln_catalog *c, const char *sql, sqlite3_stmt **st,
			  struct kiln_error *e)
{
	return kiln_catalog__prepare(c, sql, st, e);
}
static inline void now_iso(char out[48])
{
	kiln_catalog__now(out);
}

#endif
