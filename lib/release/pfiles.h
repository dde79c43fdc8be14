/* lib/release/pfiles.h: dist/portfolio/ imported for IPFS as the portfolio module writes it
 * (release.c), so that no file of it is read back. */
#ifndef KILN_RELEASE_PFILES_H
#define KILN_RELEASE_PFILES_H

#include "kiln/release.h"

#include <stddef.h>

struct kiln_pfiles;

/* root: the folder the files go in (tmp/portfolio) */
int kiln_pfiles_new(struct kiln_pfiles **out, const char *root, struct kiln_error *e)
	KILN_MUST_CHECK;
/* A file written under root (its full path and bytes): imported in its folder's node. */
int kiln_pfiles_add(struct kiln_pfiles *p, const char *path, const void *data, size_t len,
		    struct kiln_error *e) KILN_MUST_CHECK;
/* The CID of root, as kiln_ipfs_import_tree() gives it for the folder as written. -1 when the
 * files seen cannot stand for the folder (a path written twice): then import the folder. */
int kiln_pfiles_finish(struct kiln_pfiles *p, char cid[KILN_IPFS_CID_MAX], struct kiln_error *e)
	KILN_MUST_CHECK;
void kiln_pfiles_free(struct kiln_pfiles *p);

#endif
