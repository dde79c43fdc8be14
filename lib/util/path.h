/* lib/util/path.h: keeping the files a spec names inside the project.
 *
 * A kiln.yaml may come from anyone, and every file it names ends up in dist/ or in a request
 * to a remote server; so a path must resolve, after every symbolic link is followed, to a file
 * beneath the project folder or beneath a folder the user allowed explicitly. The check is
 * realpath() and a prefix test on whole path components; the caller then opens the resolved
 * path (no symbolic link left in it), and kiln_path_open_regular() refuses anything that is not
 * a regular file without blocking on it (a FIFO opened for reading would wait forever).
 */
#ifndef KILN_UTIL_PATH_H
#define KILN_UTIL_PATH_H

#include <stddef.h>
#include "kiln/error.h"

/* Why kiln_path_beneath() refused a path (also in e->code/msg). */
enum kiln_path_status {
	KILN_PATH_OK = 0,
	KILN_PATH_MISSING,   /* it does not exist (or a folder on the way is not searchable) */
	KILN_PATH_OUTSIDE,   /* it resolves outside the root and every allowed folder */
	KILN_PATH_NOMEM,
};

/* Resolve rel (relative to root, or absolute) and check that the result lies beneath root or
 * beneath one of allow[0..nallow) (each relative to root or absolute). On success *out is the
 * resolved absolute path (caller frees). Returns an enum kiln_path_status; e is not touched:
 * the caller knows the file, line and column to blame. */
int kiln_path_beneath(const char *root, const char *rel, const char *const *allow, size_t nallow,
		      char **out, char *resolved, size_t rcap);

/* Open path for reading only if it is a regular file of at most max bytes (0: no limit):
 * O_NONBLOCK | O_NOCTTY | O_CLOEXEC, then fstat. A FIFO, socket, device or folder is refused
 * naming what it is (KILN_E_IO, or KILN_E_SPEC when spec is set). *fd is the open descriptor
 * (blocking mode restored), *size its size. */
int kiln_path_open_regular(const char *path, size_t max, int spec, int *fd, size_t *size,
			   struct kiln_error *e) KILN_MUST_CHECK;

/* What kind of thing mode is ("a FIFO", "a folder", "a socket", "a device"). */
const char *kiln_path_kind(unsigned mode);

#endif
