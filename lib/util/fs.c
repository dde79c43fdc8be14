/* File helpers. Atomic writes: temporary file in the destination folder (same file system, so
 * rename is atomic), named with pid and a counter so concurrent writers never collide. */
#include "util/fs.h"
#include "util/alloc.h"
#include "util/path.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int kiln_fs_read(const char *path, struct kiln_buf *out, struct kiln_error *e)
{
	/* only regular files, opened without blocking (a FIFO with no writer would block) */
	size_t size;
	int fd, rc = kiln_path_open_regular(path, 0, 0, &fd, &size, e);
	if (rc)
		return rc;
	if (size > 0 && kiln_buf_grow(out, size)) {
		rc = kiln_error_set(e, KILN_E_NOMEM, path, "file too large to read (%zu bytes)", size);
		goto out;
	}
	for (;;) {
		ssize_t n;
		if (kiln_buf_grow(out, 65536)) {
			rc = kiln_error_set(e, KILN_E_NOMEM, path, "file too large to read");
			goto out;
		}
		n = read(fd, out->data + out->len, out->cap - out->len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = kiln_error_set(e, KILN_E_IO, path, "read failed: %s", strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		out->len += (size_t)n;
		out->data[out->len] = 0;
	}
out:
	close(fd);
	return rc;
}

int kiln_fs_read_limited(const char *path, struct kiln_buf *out, size_t max, int spec,
			 struct kiln_error *e)
{
	size_t size;
	int fd, rc = kiln_path_open_regular(path, 0, spec, &fd, &size, e);
	if (rc)
		return rc;
	if (max && size > max)
		goto too_big;
	for (;;) {
		size_t room;
		ssize_t n;
		if (kiln_buf_grow(out, 65536)) {
			rc = kiln_error_set(e, KILN_E_NOMEM, path, "file too large to read");
			goto out;
		}
		room = out->cap - out->len - 1;
		if (max && room > max + 1 - out->len)
			room = max + 1 - out->len; /* one byte more tells a file that grew */
		n = read(fd, out->data + out->len, room);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = kiln_error_set(e, KILN_E_IO, path, "read failed: %s", strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		out->len += (size_t)n;
		out->data[out->len] = 0;
		if (max && out->len > max)
			goto too_big;
	}
	goto out;
too_big:
	if (max % (1u << 20) == 0)
		rc = kiln_error_set(e, spec ? KILN_E_SPEC : KILN_E_IO, path, "is more than %zu MiB "
				    "(%zu bytes), the most kiln reads here", max >> 20, max);
	else
		rc = kiln_error_set(e, spec ? KILN_E_SPEC : KILN_E_IO, path, "is more than %zu "
				    "bytes, the most kiln reads here", max);
out:
	close(fd);
	return rc;
}

void kiln_fs_sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

int kiln_fs_write_atomic(const char *path, const void *data, size_t len, struct kiln_error *e)
{
	return kiln_fs_write_atomic_sync(path, data, len, 1, e);
}

int kiln_fs_write_atomic_sync(const char *path, const void *data, size_t len, int sync,
			      struct kiln_error *e)
{
	return kiln_fs_write_atomic_mode(path, data, len, 0644, sync, e);
}

int kiln_fs_write_atomic_mode(const char *path, const void *data, size_t len, unsigned mode,
			      int sync, struct kiln_error *e)
{
	static unsigned long counter;
	unsigned long n = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
	size_t plen = strlen(path) + 64;
	char *tmp = kiln_malloc(plen);
	const char *p = data;
	int fd = -1, rc = 0;
	if (!tmp)
		return kiln_error_set(e, KILN_E_NOMEM, path, "out of memory");
	snprintf(tmp, plen, "%s.tmp-%ld-%lu", path, (long)getpid(), n);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode);
	if (fd < 0) {
		rc = kiln_error_set(e, KILN_E_IO, path, "cannot create: %s", strerror(errno));
		goto out;
	}
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			rc = kiln_error_set(e, KILN_E_IO, path, "write failed: %s", strerror(errno));
			goto out;
		}
		p += w;
		len -= (size_t)w;
	}
	if (sync && fsync(fd) != 0) {
		rc = kiln_error_set(e, KILN_E_IO, path, "fsync failed: %s", strerror(errno));
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		rc = kiln_error_set(e, KILN_E_IO, path, "close failed: %s", strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		rc = kiln_error_set(e, KILN_E_IO, path, "cannot rename into place: %s",
				    strerror(errno));
		goto out;
	}
	/* the rename is a change to the folder: until the folder is synced, a power cut can
	 * lose it (the file's bytes are safe, its name is not). tmp holds the folder now. */
	if (sync) {
		const char *slash = strrchr(path, '/');
		int dfd;
		if (!slash)
			snprintf(tmp, plen, ".");
		else
			snprintf(tmp, plen, "%.*s", slash == path ? 1 : (int)(slash - path), path);
		dfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0 || fsync(dfd) != 0)
			rc = kiln_error_set(e, KILN_E_IO, path, "cannot sync its folder %s: %s", tmp,
					    strerror(errno));
		if (dfd >= 0)
			close(dfd);
		if (rc) {
			free(tmp);
			return rc; /* the file is in place: not unlinked */
		}
	}
out:
	if (fd >= 0)
		close(fd);
	if (rc)
		unlink(tmp);
	free(tmp);
	return rc;
}

int kiln_fs_mkdirs(const char *path, struct kiln_error *e)
{
	char *p = kiln_strdup(path), *s;
	int rc = 0;
	if (!p)
		return kiln_error_set(e, KILN_E_NOMEM, path, "out of memory");
	for (s = p + 1; ; s++) {
		if (*s == '/' || *s == 0) {
			char c = *s;
			*s = 0;
			if (mkdir(p, 0755) != 0 && errno != EEXIST) {
				rc = kiln_error_set(e, KILN_E_IO, p, "cannot create folder: %s",
						    strerror(errno));
				break;
			}
			*s = c;
			if (!c)
				break;
		}
	}
	if (!rc && !kiln_fs_is_dir(path))
		rc = kiln_error_set(e, KILN_E_IO, path, "exists and is not a folder");
	free(p);
	return rc;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(path) != 0 && errno != ENOENT ? -1 : 0;
	return unlink(path) != 0 && errno != ENOENT ? -1 : 0;
}

int kiln_fs_remove_tree(const char *path, struct kiln_error *e)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return 0;
	if (!S_ISDIR(st.st_mode)) {
		if (unlink(path) != 0)
			return kiln_error_set(e, KILN_E_IO, path, "cannot remove: %s", strerror(errno));
		return 0;
	}
	if (nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS) != 0)
		return kiln_error_set(e, KILN_E_IO, path, "cannot remove: %s", strerror(errno));
	return 0;
}

int kiln_fs_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

int kiln_fs_is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int kiln_fs_copy(const char *src, const char *dst, int sync, struct kiln_error *e)
{
	struct kiln_buf b = KILN_BUF_INIT;
	int rc = kiln_fs_read(src, &b, e);
	if (!rc)
		rc = kiln_fs_write_atomic_sync(dst, b.data ? b.data : "", b.len, sync, e);
	kiln_buf_release(&b);
	return rc;
}

char *kiln_fs_join(const char *a, const char *b)
{
	size_t la, lb;
	char *r;
	if (!a || !*a || b[0] == '/' || (a[0] == '.' && a[1] == 0))
		return kiln_strdup(b);
	la = strlen(a);
	lb = strlen(b);
	r = kiln_malloc(la + lb + 2);
	if (!r)
		return NULL;
	memcpy(r, a, la);
	if (la && a[la - 1] != '/')
		r[la++] = '/';
	memcpy(r + la, b, lb + 1);
	return r;
}

int kiln_fs_sync_fs(const char *dir, struct kiln_error *e)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;
	if (fd < 0)
		return kiln_error_set(e, KILN_E_IO, dir, "cannot open: %s", strerror(errno));
	if (syncfs(fd) != 0)
		rc = kiln_error_set(e, KILN_E_IO, dir, "syncfs failed: %s", strerror(errno));
	close(fd);
	return rc;
}
