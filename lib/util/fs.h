/* lib/util/fs.h: file helpers. Every file kiln writes goes through kiln_fs_write_atomic()
 * (temporary name in the same folder, fsync, rename) so a crash never leaves half a file. */
#ifndef KILN_UTIL_FS_H
#define KILN_UTIL_FS_H

#include <stddef.h>
#include "kiln/buf.h"
#include "kiln/error.h"

/* Append the whole file to out (at most max bytes; 0 = buffer's max). Only a regular file is
 * read: it is opened without blocking, and a folder, FIFO, device or socket is KILN_E_IO
 * naming what it is. */
int kiln_fs_read(const char *path, struct kiln_buf *out, struct kiln_error *e) KILN_MUST_CHECK;
/* The same for a file kiln reads as input (kiln.yaml and the like), so that the wrong kind of
 * path cannot hang or swamp it: opened by kiln_path_open_regular() (util/path.h: without
 * blocking, as a FIFO with no writer would block open() forever; a folder, FIFO, device or
 * socket is refused naming what it is), and read up to max bytes (0: no limit but the
 * buffer's; a file over max, or one that grows past it while read, is refused saying the
 * limit). Failures are KILN_E_SPEC when spec is set (a spec's problem: exit 2), else
 * KILN_E_IO. */
int kiln_fs_read_limited(const char *path, struct kiln_buf *out, size_t max, int spec,
			 struct kiln_error *e) KILN_MUST_CHECK;
/* Write data to path through path.tmp-PID-N + fsync + rename + fsync of the folder. */
int kiln_fs_write_atomic(const char *path, const void *data, size_t len, struct kiln_error *e)
	KILN_MUST_CHECK;
/* The same, fsync (of the file, and of its folder after the rename) only when sync is set
 * (the caller then makes the data and the names durable in bulk with kiln_fs_sync_fs: one
 * syncfs per batch instead of two fsyncs per file). */
int kiln_fs_write_atomic_sync(const char *path, const void *data, size_t len, int sync,
			      struct kiln_error *e) KILN_MUST_CHECK;
/* The same with the file created with mode (0600 for a private key: the bytes are never
 * readable by others, not even under the temporary name; the umask still applies). */
int kiln_fs_write_atomic_mode(const char *path, const void *data, size_t len, unsigned mode,
			      int sync, struct kiln_error *e) KILN_MUST_CHECK;
/* syncfs() on the file system holding dir. */
int kiln_fs_sync_fs(const char *dir, struct kiln_error *e) KILN_MUST_CHECK;
/* mkdir -p */
int kiln_fs_mkdirs(const char *path, struct kiln_error *e) KILN_MUST_CHECK;
/* rm -rf (does not follow symlinks) */
int kiln_fs_remove_tree(const char *path, struct kiln_error *e) KILN_MUST_CHECK;
int kiln_fs_exists(const char *path);
int kiln_fs_is_dir(const char *path);
/* Copy a file (atomically at dst). */
int kiln_fs_copy(const char *src, const char *dst, int sync, struct kiln_error *e) KILN_MUST_CHECK;
/* "a/b" from a and b (b absolute: b); caller frees. NULL on allocation failure. */
char *kiln_fs_join(const char *a, const char *b);
/* fsync a directory (after renames in it) */
void kiln_fs_sync_dir(const char *dir);

#endif
