/* review/owner: reviewers' tokens. A token is 256 random bits from OpenSSL's RAND_bytes, as 64
 * hex digits; the catalog keeps only its SHA-256. The owner's token is also kept in plain in
 * .kiln/review-owner, mode 0600: the owner's URL stays the same from run to run (bookmarks and
 * open tabs keep working) and only the account that owns the project can read it, as it can
 * read the catalog anyway. Reviewers' tokens are shown once, when they are made. */
#include "review/internal.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/sha.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OWNER_FILE "review-owner"
#define OWNER_NAME "owner"

int rv_random_hex(char out[65])
{
	unsigned char raw[32];
	if (RAND_bytes(raw, sizeof raw) != 1)
		return -1;
	kiln_hex(raw, sizeof raw, out);
	return 0;
}

/* path: the file, written to a temporary name with mode 0600, synced, renamed. */
static int write_secret(const char *path, const char *text, struct kiln_error *e)
{
	size_t n = strlen(path);
	char *tmp = kiln_malloc(n + 16);
	int fd = -1, rc = 0;
	if (!tmp)
		return kiln_error_set(e, KILN_E_NOMEM, path, "out of memory");
	snprintf(tmp, n + 16, "%s.tmp%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || fchmod(fd, 0600) || write(fd, text, strlen(text)) != (ssize_t)strlen(text) ||
	    fsync(fd)) {
		rc = kiln_error_set(e, KILN_E_IO, tmp, "cannot write the owner's token: %s",
				    strerror(errno));
		goto out;
	}
	if (close(fd)) {
		fd = -1;
		rc = kiln_error_set(e, KILN_E_IO, tmp, "cannot write: %s", strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path))
		rc = kiln_error_set(e, KILN_E_IO, path, "cannot rename %s here: %s", tmp,
				    strerror(errno));
out:
	if (fd >= 0)
		close(fd);
	if (rc)
		unlink(tmp);
	free(tmp);
	return rc;
}

int kiln_review_owner_token(struct kiln_project *p, char token[65], int *created,
			    struct kiln_error *e)
{
	char *path = kiln_fs_join(p->kiln_dir, OWNER_FILE), *name = NULL;
	char want[65], have[65];
	int rc = 0, fd;
	*created = 0;
	token[0] = 0;
	if (!path)
		return kiln_error_set(e, KILN_E_NOMEM, p->dir, "out of memory");
	if ((rc = kiln_catalog_reviewer_owner(p->catalog, &name, want, e)))
		goto out;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0) {
		ssize_t k = read(fd, token, 64);
		close(fd);
		token[k == 64 ? 64 : 0] = 0;
		kiln_sha256_hex(token, strlen(token), have);
		if (name && k == 64 && !strcmp(have, want))
			goto out;
	}
	if (rv_random_hex(token)) {
		rc = kiln_error_set(e, KILN_E_FAILED, p->dir, "the random number generator failed");
		goto out;
	}
	kiln_sha256_hex(token, 64, have);
	if ((rc = write_secret(path, token, e)) ||
	    (rc = kiln_catalog_reviewer_put(p->catalog, name ? name : OWNER_NAME, have, 1, e)))
		goto out;
	*created = 1;
out:
	if (rc)
		token[0] = 0;
	free(name);
	free(path);
	return rc;
}

int kiln_review_add_reviewer(struct kiln_project *p, const char *name, char token[65],
			     struct kiln_error *e)
{
	char sha[65];
	size_t n = strlen(name);
	int rc;
	token[0] = 0;
	if (!n || n > 64)
		return kiln_error_set(e, KILN_E_USAGE, name, "a reviewer's name has 1 to 64 "
				      "bytes, this one %zu", n);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f || name[i] == '"' ||
		    name[i] == '\\')
			return kiln_error_set(e, KILN_E_USAGE, name, "a reviewer's name holds no "
					      "control character, quote or backslash");
	if (!strcmp(name, OWNER_NAME))
		return kiln_error_set(e, KILN_E_STATE, name, "'%s' is the project owner's name",
				      name);
	if (rv_random_hex(token))
		return kiln_error_set(e, KILN_E_FAILED, p->dir, "the random number generator "
				      "failed");
	kiln_sha256_hex(token, 64, sha);
	if ((rc = kiln_catalog_reviewer_put(p->catalog, name, sha, 0, e)))
		token[0] = 0;
	return rc;
}
