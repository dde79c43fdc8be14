/* kiln/store.h: the content store, .kiln/store/. Files are named by the lowercase hex SHA-256
 * of their bytes, fanned out by the first two digits (store/ab/abcdef...). A file is written to
 * a temporary name and renamed, so a name in the store always holds exactly those bytes
 * (after a crash; after a power loss only once kiln_store_sync() has run);
 * putting the same bytes twice is a no-op. The catalog points at store files by hash. */
#ifndef KILN_STORE_H
#define KILN_STORE_H

#include <stddef.h>
#include "kiln/error.h"

struct kiln_store;

int kiln_store_open(struct kiln_store **out, const char *dir, struct kiln_error *e)
	KILN_MUST_CHECK;
void kiln_store_free(struct kiln_store *st);

/* Store bytes; writes their hash (64 hex + NUL) to sha. Thread-safe. */
int kiln_store_put(struct kiln_store *st, const void *data, size_t len, char sha[65],
		   struct kiln_error *e) KILN_MUST_CHECK;
/* Path of a stored file (caller frees), whether or not it exists. NULL on allocation failure. */
char *kiln_store_path(const struct kiln_store *st, const char *sha);
/* 1 when the store holds sha. */
int kiln_store_has(const struct kiln_store *st, const char *sha);

/* Make every file put so far durable (one syncfs). Call before the catalog records them. */
int kiln_store_sync(struct kiln_store *st, struct kiln_error *e) KILN_MUST_CHECK;

#endif
