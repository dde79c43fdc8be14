/* The content store: SHA-256-named files under .kiln/store/xx/. Invariant: a file at a hash's
 * name holds exactly the bytes of that hash (written to a temporary name, fsynced, renamed),
 * so readers never see partial files and re-putting is idempotent. Sizes: one file per render,
 * tens of thousands of files; the two-digit fan-out keeps folders small. */
#include "kiln/catalog.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/sha.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kiln_store {
	char *dir;
	/* the xx/ folders known to exist (__atomic): kiln_fs_mkdirs() walks the whole path, a
	 * mkdir a component, which was ~7 system calls of every put */
	uint64_t made[4];
};

int kiln_store_open(struct kiln_store **out, const char *dir, struct kiln_error *e)
{
	struct kiln_store *st = kiln_calloc(1, sizeof *st);
	int rc;
	*out = NULL;
	if (!st || !(st->dir = kiln_strdup(dir))) {
		free(st);
		return kiln_error_set(e, KILN_E_NOMEM, dir, "out of memory");
	}
	rc = kiln_fs_mkdirs(dir, e);
	if (rc) {
		kiln_store_free(st);
		return rc;
	}
	*out = st;
	return 0;
}

void kiln_store_free(struct kiln_store *st)
{
	if (!st)
		return;
	free(st->dir);
	free(st);
}

char *kiln_store_path(const struct kiln_store *st, const char *sha)
{
	size_t n = strlen(st->dir) + strlen(sha) + 8;
	char *p = kiln_malloc(n);
	if (p)
		snprintf(p, n, "%s/%.2s/%s", st->dir, sha, sha);
	return p;
}

int kiln_store_has(const struct kiln_store *st, const char *sha)
{
	/* no allocation: a failed one would read as "not in the store" (release would call a
	 * rendered item unrendered) */
	char p[4096];
	int n = snprintf(p, sizeof p, "%s/%.2s/%s", st->dir, sha, sha);
	return n > 0 && (size_t)n < sizeof p && kiln_fs_exists(p);
}

int kiln_store_put(struct kiln_store *st, const void *data, size_t len, char sha[65],
		   struct kiln_error *e)
{
	char *path, sub[4096];
	int rc = 0;
	kiln_sha256_hex(data, len, sha);
	path = kiln_store_path(st, sha);
	if (!path)
		return kiln_error_set(e, KILN_E_NOMEM, st->dir, "out of memory");
	if (kiln_fs_exists(path))
		goto out;
	{
		unsigned x = (unsigned)strtoul((char[3]){ sha[0], sha[1], 0 }, NULL, 16) & 255;
		uint64_t bit = 1ull << (x & 63);
		if (!(__atomic_load_n(&st->made[x >> 6], __ATOMIC_RELAXED) & bit)) {
			snprintf(sub, sizeof sub, "%s/%.2s", st->dir, sha);
			if ((rc = kiln_fs_mkdirs(sub, e)))
				goto out;
			__atomic_fetch_or(&st->made[x >> 6], bit, __ATOMIC_RELAXED);
		}
	}
	/* no fsync per file: kiln_store_sync() makes a batch durable before the catalog records
	 * it (per-file fsync was the largest wall-time cost of a render under disk load) */
	rc = kiln_fs_write_atomic_sync(path, data, len, 0, e);
out:
	free(path);
	return rc;
}

int kiln_store_sync(struct kiln_store *st, struct kiln_error *e)
{
	return kiln_fs_sync_fs(st->dir, e);
}
