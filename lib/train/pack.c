/* pack: a prepared training folder as a tar archive (the RunPod training job's dataset),
 * written by libarchive in the POSIX pax format (plain ustar headers while names fit; Python's
 * tarfile, GNU tar and bsdtar read it). Regular files only, in bytewise name order, every
 * entry with mtime 0, uid/gid 0, no owner names, mode 0644 (folders 0755), so the same folder
 * gives the same bytes and the same SHA-256 (the S3 key of an uploaded dataset); symbolic
 * links and special files are refused, hidden names and the run's own files (log, run.json,
 * exit, out/, and the trainer's output folder the caller names) skipped. The archive goes to
 * memory (a /run body) or to a file descriptor (an upload), hashed as it is written. */
#include "kiln/train.h"
#include "kiln/buf.h"
#include "util/alloc.h"
#include "util/sha.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct sink {
	struct kiln_buf *buf;      /* memory, or */
	int fd;                    /* a file (buf NULL) */
	struct kiln_sha256 h;
	uint64_t size;
	int nomem, io;             /* what failed */
};

static la_ssize_t on_write(struct archive *a, void *user, const void *p, size_t n)
{
	struct sink *s = user;
	(void)a;
	if (s->buf) {
		if (kiln_buf_add(s->buf, p, n)) {
			s->nomem = 1;
			return -1;
		}
	} else {
		for (size_t done = 0; done < n;) {
			ssize_t w = write(s->fd, (const char *)p + done, n - done);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				s->io = errno ? errno : EIO;
				return -1;
			}
			done += (size_t)w;
		}
	}
	kiln_sha256_update(&s->h, p, n);
	s->size += n;
	return (la_ssize_t)n;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int skipped(const char *name, int top, const char *skip)
{
	return name[0] == '.' || (top && (!strcmp(name, "log") || !strcmp(name, "run.json") ||
					  !strcmp(name, "exit") || !strcmp(name, "exit.tmp") ||
					  !strcmp(name, "out") || (skip && !strcmp(name, skip))));
}

/* An archive error as kiln's: out of memory, the sink's write, or libarchive's word. */
static int fail(struct archive *a, const struct sink *s, const char *what,
		struct kiln_error *e)
{
	if (s->nomem)
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory packing the dataset");
	if (s->io)
		return kiln_error_set(e, KILN_E_IO, what, "cannot write the dataset archive: %s",
				      strerror(s->io));
	return kiln_error_set(e, KILN_E_IO, what, "cannot pack: %s",
			      archive_error_string(a) ? archive_error_string(a) : "libarchive");
}

/* One entry's header: the same fields every time (see the top). */
static int header(struct archive *a, struct archive_entry *en, const char *name,
		  uint64_t size, int dir, const struct sink *s, struct kiln_error *e)
{
	archive_entry_clear(en);
	archive_entry_set_pathname(en, name);
	archive_entry_set_filetype(en, dir ? AE_IFDIR : AE_IFREG);
	archive_entry_set_perm(en, dir ? 0755 : 0644);
	archive_entry_set_size(en, dir ? 0 : (la_int64_t)size);
	archive_entry_set_mtime(en, 0, 0);
	archive_entry_set_uid(en, 0);
	archive_entry_set_gid(en, 0);
	if (archive_write_header(a, en) != ARCHIVE_OK)
		return fail(a, s, name, e);
	return 0;
}

static int add_file(struct archive *a, struct archive_entry *en, const struct sink *s,
		    const char *path, const char *name, uint64_t size, struct kiln_error *e)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), rc;
	uint64_t got = 0;
	char *buf;
	if (fd < 0)
		return kiln_error_set(e, KILN_E_IO, path, "cannot read: %s", strerror(errno));
	if (!(buf = kiln_malloc((size_t)1 << 20))) {
		close(fd);
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory packing the dataset");
	}
	rc = header(a, en, name, size, 0, s, e);
	while (!rc && got < size) {
		size_t chunk = (size_t)1 << 20;
		size_t want = size - got < chunk ? (size_t)(size - got) : chunk;
		ssize_t r = read(fd, buf, want);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			rc = kiln_error_set(e, KILN_E_IO, path, "changed while it was packed");
		else if (archive_write_data(a, buf, (size_t)r) != r)
			rc = fail(a, s, path, e);
		else
			got += (uint64_t)r;
	}
	free(buf);
	close(fd);
	return rc;
}

static int walk(struct archive *a, struct archive_entry *en, const struct sink *s,
		const char *dir, const char *name, int top, const char *skip, struct kiln_error *e)
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
		if (skipped(de->d_name, top, skip))
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
			rc = header(a, en, rel, 0, 1, s, e) ? e->code
							    : walk(a, en, s, path, rel, 0, NULL, e);
		else if (S_ISREG(st.st_mode))
			rc = add_file(a, en, s, path, rel, (uint64_t)st.st_size, e);
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

static int pack(const char *dir, const char *name, const char *skip, struct sink *s,
		char sha256[65], struct kiln_error *e)
{
	struct archive *a = NULL;
	struct archive_entry *en = NULL;
	int rc;
	if (kiln_sha256_init(&s->h))
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory packing the dataset");
	if (!(a = archive_write_new()) || !(en = archive_entry_new())) {
		rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory packing the dataset");
		goto out;
	}
	/* pax (ustar headers unless a name needs more), 512-byte records, no padding to
	 * libarchive's 10 KiB blocks beyond the two zero records that end a tar */
	if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(a, 512) != ARCHIVE_OK ||
	    archive_write_open2(a, s, NULL, on_write, NULL, NULL) != ARCHIVE_OK) {
		rc = fail(a, s, dir, e);
		goto out;
	}
	rc = header(a, en, name, 0, 1, s, e);
	if (!rc)
		rc = walk(a, en, s, dir, name, 1, skip, e);
	if (!rc && archive_write_close(a) != ARCHIVE_OK)
		rc = fail(a, s, dir, e);
out:
	if (en)
		archive_entry_free(en);
	if (a)
		archive_write_free(a);
	if (rc)
		kiln_sha256_abort(&s->h);
	else
		kiln_sha256_final(&s->h, NULL, sha256);
	return rc;
}

int kiln_train_pack(const char *dir, const char *name, const char *skip,
		    struct kiln_buf *out, struct kiln_error *e)
{
	struct sink s = {out, -1, {NULL}, 0, 0, 0};
	char hex[65];
	return pack(dir, name, skip, &s, hex, e);
}

int kiln_train_pack_fd(const char *dir, const char *name, const char *skip, int fd,
		       char sha256[65], uint64_t *size, struct kiln_error *e)
{
	struct sink s = {NULL, fd, {NULL}, 0, 0, 0};
	int rc = pack(dir, name, skip, &s, sha256, e);
	*size = s.size;
	return rc;
}
