/* pack: a prepared training folder as a POSIX ustar archive in memory (the RunPod training
 * job's input; Python's tarfile, GNU tar and bsdtar read it). Regular files only, in bytewise
 * name order so the same folder gives the same bytes (mtime 0, uid/gid 0, mode 0644);
 * symbolic links and special files are refused, hidden names and the run's own files (log,
 * run.json, exit, out/) skipped. Names up to 255 bytes (ustar's prefix + name).
 *
 * Sizes: what RunPod takes in a /run body (10 MB after base64): a few hundred small images. */
#include "kiln/train.h"
#include "kiln/buf.h"
#include "util/alloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int skipped(const char *name, int top)
{
	return name[0] == '.' || (top && (!strcmp(name, "log") || !strcmp(name, "run.json") ||
					  !strcmp(name, "exit") || !strcmp(name, "exit.tmp") ||
					  !strcmp(name, "out")));
}

static int header(struct kiln_buf *out, const char *name, uint64_t size, char type,
		  struct kiln_error *e)
{
	unsigned char h[512];
	size_t n = strlen(name), split = 0;
	unsigned sum = 0;
	memset(h, 0, sizeof h);
	if (n > 100) {
		/* prefix (up to 155) '/' name (up to 100): cut at a '/' */
		for (size_t i = n > 101 ? n - 101 : 0; i < n && i <= 155; i++)
			if (name[i] == '/') {
				split = i;
				break;
			}
		if (!split || n - split - 1 > 100)
			return kiln_error_set(e, KILN_E_IO, name, "the name is too long for a tar "
					      "archive (ustar: 255 bytes)");
		memcpy(h + 345, name, split);
		memcpy(h, name + split + 1, n - split - 1);
	} else {
		memcpy(h, name, n);
	}
	snprintf((char *)h + 100, 8, "%07o", type == '5' ? 0755 : 0644);
	snprintf((char *)h + 108, 8, "%07o", 0);
	snprintf((char *)h + 116, 8, "%07o", 0);
	snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)size);
	snprintf((char *)h + 136, 12, "%011o", 0);
	h[156] = (unsigned char)type;
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	memset(h + 148, ' ', 8);
	for (size_t i = 0; i < sizeof h; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
	return kiln_buf_add(out, h, sizeof h) ? kiln_error_set(e, KILN_E_NOMEM, NULL, "out of "
							      "memory packing the dataset") : 0;
}

static int add_file(struct kiln_buf *out, const char *path, const char *name, uint64_t size,
		    struct kiln_error *e)
{
	static const char zero[512];
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), rc;
	uint64_t got = 0;
	if (fd < 0)
		return kiln_error_set(e, KILN_E_IO, path, "cannot read: %s", strerror(errno));
	if ((rc = header(out, name, size, '0', e)) || (rc = kiln_buf_grow(out, size + 512))) {
		close(fd);
		return rc == KILN_E_NOMEM || rc < 0 ? kiln_error_set(e, KILN_E_NOMEM, NULL, "out of "
								      "memory packing the dataset")
						    : rc;
	}
	while (got < size) {
		ssize_t r = read(fd, out->data + out->len, (size_t)(size - got));
		if (r <= 0) {
			close(fd);
			return kiln_error_set(e, KILN_E_IO, path, "changed while it was packed");
		}
		out->len += (size_t)r;
		got += (uint64_t)r;
	}
	close(fd);
	out->data[out->len] = 0;
	if (size % 512 && kiln_buf_add(out, zero, 512 - size % 512))
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory packing the dataset");
	return 0;
}

static int walk(struct kiln_buf *out, const char *dir, const char *name, int top,
		struct kiln_error *e)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **v = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	if (!d)
		return kiln_error_set(e, KILN_E_IO, dir, "cannot read the folder: %s",
				      strerror(errno));
	while ((de = readdir(d))) {
		if (skipped(de->d_name, top))
			continue;
		if (n == cap) {
			char **nv = kiln_reallocarray(v, cap ? cap * 2 : 32, sizeof *v);
			if (!nv) {
				rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
				goto out;
			}
			v = nv;
			cap = cap ? cap * 2 : 32;
		}
		if (!(v[n] = kiln_strdup(de->d_name))) {
			rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
			goto out;
		}
		n++;
	}
	if (n)
		qsort(v, n, sizeof *v, cmp);
	for (size_t i = 0; i < n && !rc; i++) {
		char *path = NULL, *rel = NULL;
		struct stat st;
		if (asprintf(&path, "%s/%s", dir, v[i]) < 0 ||
		    asprintf(&rel, "%s/%s", name, v[i]) < 0) {
			free(path);
			rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
			break;
		}
		if (lstat(path, &st))
			rc = kiln_error_set(e, KILN_E_IO, path, "%s", strerror(errno));
		else if (S_ISDIR(st.st_mode))
			rc = header(out, rel, 0, '5', e) ? KILN_E_NOMEM : walk(out, path, rel, 0, e);
		else if (S_ISREG(st.st_mode))
			rc = add_file(out, path, rel, (uint64_t)st.st_size, e);
		else
			rc = kiln_error_set(e, KILN_E_IO, path, "not a regular file (a link or a "
					    "special file): a prepared folder holds files only");
		free(path);
		free(rel);
	}
out:
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
	closedir(d);
	return rc;
}

int kiln_train_pack(const char *dir, const char *name, struct kiln_buf *out,
		    struct kiln_error *e)
{
	static const char zero[1024];
	int rc = header(out, name, 0, '5', e);
	if (!rc)
		rc = walk(out, dir, name, 1, e);
	if (!rc && kiln_buf_add(out, zero, sizeof zero))
		rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory packing the dataset");
	return rc;
}
