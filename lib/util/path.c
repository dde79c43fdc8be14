/* Paths that stay in the project (see path.h). realpath() resolves every symbolic link and
 * "..", so the prefix test compares real locations: "layers/../../etc/passwd", an absolute
 * path, and a symbolic link inside the project pointing out all fail it. Prefixes are tested
 * on component boundaries ("/p/proj" does not contain "/p/project2"). */
#include "util/path.h"
#include "util/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* a/b, or b when it is absolute (kiln_fs_join's rule; fs.c reads files through this file's
 * kiln_path_open_regular, so this file does not call back into fs.c) */
static char *join(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);
	char *p;
	if (b[0] == '/' || !na)
		return kiln_strdup(b);
	if (!(p = kiln_malloc(na + nb + 2)))
		return NULL;
	memcpy(p, a, na);
	p[na] = '/';
	memcpy(p + na + 1, b, nb + 1);
	return p;
}

static int beneath(const char *dir, const char *path)
{
	size_t n = strlen(dir);
	if (n == 1 && dir[0] == '/')
		return 1;
	return !strncmp(dir, path, n) && (path[n] == '/' || path[n] == 0);
}

int kiln_path_beneath(const char *root, const char *rel, const char *const *allow, size_t nallow,
		      char **out, char *resolved, size_t rcap)
{
	char real[PATH_MAX], base[PATH_MAX], dir[PATH_MAX];
	char *full;
	int st = KILN_PATH_OK;
	*out = NULL;
	if (resolved && rcap)
		resolved[0] = 0;
	if (!(full = join(root, rel)))
		return KILN_PATH_NOMEM;
	if (!realpath(full, real)) {
		st = errno == ENOMEM ? KILN_PATH_NOMEM : KILN_PATH_MISSING;
		goto out;
	}
	if (resolved && rcap)
		snprintf(resolved, rcap, "%s", real);
	if (!realpath(root, base)) {
		st = KILN_PATH_MISSING;
		goto out;
	}
	if (!beneath(base, real)) {
		size_t i;
		st = KILN_PATH_OUTSIDE;
		for (i = 0; i < nallow && st; i++) {
			char *a = join(root, allow[i]);
			if (!a) {
				st = KILN_PATH_NOMEM;
				goto out;
			}
			if (realpath(a, dir) && beneath(dir, real))
				st = KILN_PATH_OK;
			free(a);
		}
		if (st)
			goto out;
	}
	if (!(*out = kiln_strdup(real)))
		st = KILN_PATH_NOMEM;
out:
	free(full);
	return st;
}

const char *kiln_path_kind(unsigned mode)
{
	switch (mode & S_IFMT) {
	case S_IFDIR: return "a folder";
	case S_IFIFO: return "a FIFO (named pipe)";
	case S_IFSOCK: return "a socket";
	case S_IFCHR: return "a character device";
	case S_IFBLK: return "a block device";
	case S_IFLNK: return "a symbolic link";
	default: return "not a regular file";
	}
}

int kiln_path_open_regular(const char *path, size_t max, int spec, int *fd, size_t *size,
			   struct kiln_error *e)
{
	struct stat sb;
	int code = spec ? KILN_E_SPEC : KILN_E_IO;
	int f = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	*fd = -1;
	if (f < 0)
		return kiln_error_set(e, code, path, "cannot open: %s", strerror(errno));
	if (fstat(f, &sb)) {
		int err = errno;
		close(f);
		return kiln_error_set(e, code, path, "cannot stat: %s", strerror(err));
	}
	if (!S_ISREG(sb.st_mode)) {
		close(f);
		return kiln_error_set(e, code, path, "is %s, not a regular file: kiln reads only "
				      "regular files", kiln_path_kind((unsigned)sb.st_mode));
	}
	if (max && (unsigned long long)sb.st_size > (unsigned long long)max) {
		close(f);
		return kiln_error_set(e, code, path, "is %lld bytes, over the limit of %zu bytes",
				      (long long)sb.st_size, max);
	}
	/* back to blocking reads: a regular file never blocks, and callers use plain read() */
	fcntl(f, F_SETFL, fcntl(f, F_GETFL) & ~O_NONBLOCK);
	*fd = f;
	*size = (size_t)sb.st_size;
	return 0;
}
