/* pfiles: dist/portfolio/'s CID from the bytes the portfolio module writes (release.c passes
 * kiln_pfiles_add as its `wrote` callback), instead of reading every file back from disk
 * (two files a token: for 10,000 tokens 20,000 opens and reads saved).
 *
 * One kiln_ipfs_dir a folder, made on its first file (with the folders above it); at the end
 * the folders are finished deepest first, each added to its parent, which is what
 * kiln_ipfs_import_tree() does from the disk (entries are sorted when a node is built, so the
 * order files come in does not matter). A path written twice is one file on disk but would be
 * two entries here: finish() sees it (each folder's names, sorted) and says so, and the caller
 * imports the folder from disk. The portfolio module only writes files through put(), so a
 * folder never holds a file this did not see.
 *
 * Sizes: the CIDs of the files (as kiln_ipfs_dir keeps them) and their names.
 */
#include "release/pfiles.h"
#include "util/alloc.h"

#include <stdlib.h>
#include <string.h>

struct pdir {
	char *rel;                /* "" for the root, "log/proofs", ... */
	struct kiln_ipfs_dir *d;
	char **names;
	size_t n, cap;
};

struct kiln_pfiles {
	char *root;
	struct pdir *v;
	size_t n, cap;
	size_t last;              /* the folder of the last file (files come a folder at a time) */
};

void kiln_pfiles_free(struct kiln_pfiles *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++) {
		free(p->v[i].rel);
		kiln_ipfs_dir_free(p->v[i].d);
		for (size_t k = 0; k < p->v[i].n; k++)
			free(p->v[i].names[k]);
		free(p->v[i].names);
	}
	free(p->v);
	free(p->root);
	free(p);
}

static int nomem(const char *where, struct kiln_error *e)
{
	return kiln_error_set(e, KILN_E_NOMEM, where, "out of memory");
}

int kiln_pfiles_new(struct kiln_pfiles **out, const char *root, struct kiln_error *e)
{
	struct kiln_pfiles *p = kiln_calloc(1, sizeof *p);
	*out = NULL;
	if (!p || !(p->root = kiln_strdup(root))) {
		free(p);
		return nomem(root, e);
	}
	*out = p;
	return 0;
}

/* the folder rel (len bytes of it), made with the ones above it when new: its index, or -1 */
static long folder(struct kiln_pfiles *p, const char *rel, size_t len, struct kiln_error *e)
{
	struct pdir *v;
	if (p->last < p->n && strlen(p->v[p->last].rel) == len &&
	    !memcmp(p->v[p->last].rel, rel, len))
		return (long)p->last;
	for (size_t i = 0; i < p->n; i++)
		if (strlen(p->v[i].rel) == len && !memcmp(p->v[i].rel, rel, len))
			return (long)(p->last = i);
	if (len) { /* its parent first */
		size_t up = len;
		while (up && rel[up - 1] != '/')
			up--;
		if (folder(p, rel, up ? up - 1 : 0, e) < 0)
			return -1;
	}
	if (p->n == p->cap) {
		size_t nc = p->cap ? p->cap * 2 : 8;
		if (!(v = kiln_reallocarray(p->v, nc, sizeof *v))) {
			nomem(p->root, e);
			return -1;
		}
		p->v = v;
		p->cap = nc;
	}
	v = &p->v[p->n];
	memset(v, 0, sizeof *v);
	if (!(v->rel = kiln_malloc(len + 1))) {
		nomem(p->root, e);
		return -1;
	}
	memcpy(v->rel, rel, len);
	v->rel[len] = 0;
	if (kiln_ipfs_dir_new(&v->d, NULL, e)) {
		free(v->rel);
		return -1;
	}
	return (long)(p->last = p->n++);
}

int kiln_pfiles_add(struct kiln_pfiles *p, const char *path, const void *data, size_t len,
		    struct kiln_error *e)
{
	size_t rl = strlen(p->root);
	const char *rel, *slash;
	struct pdir *d;
	long at;
	if (strncmp(path, p->root, rl) || path[rl] != '/')
		return kiln_error_set(e, KILN_E_USAGE, path, "not in %s", p->root);
	rel = path + rl + 1;
	slash = strrchr(rel, '/');
	if ((at = folder(p, rel, slash ? (size_t)(slash - rel) : 0, e)) < 0)
		return e->code;
	d = &p->v[at];
	if (d->n == d->cap) {
		size_t nc = d->cap ? d->cap * 2 : 16;
		char **v = kiln_reallocarray(d->names, nc, sizeof *v);
		if (!v)
			return nomem(path, e);
		d->names = v;
		d->cap = nc;
	}
	if (!(d->names[d->n] = kiln_strdup(slash ? slash + 1 : rel)))
		return nomem(path, e);
	d->n++;
	return kiln_ipfs_dir_add_buf(d->d, d->names[d->n - 1], data ? data : "", len, NULL, e);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static size_t depth(const char *rel)
{
	size_t k = *rel ? 1 : 0;
	for (; *rel; rel++)
		k += *rel == '/';
	return k;
}

int kiln_pfiles_finish(struct kiln_pfiles *p, char cid[KILN_IPFS_CID_MAX], struct kiln_error *e)
{
	size_t maxd = 0;
	int rc = 0;
	if (!p->n && folder(p, "", 0, e) < 0)
		return e->code;
	for (size_t i = 0; i < p->n; i++) {
		struct pdir *d = &p->v[i];
		if (d->n > 1)
			qsort(d->names, d->n, sizeof *d->names, cmp_str);
		for (size_t k = 1; k < d->n; k++)
			if (!strcmp(d->names[k], d->names[k - 1]))
				return -1;
		if (depth(d->rel) > maxd)
			maxd = depth(d->rel);
	}
	/* deepest first: each folder into its parent (made before it, so found) */
	for (size_t dep = maxd; dep > 0 && !rc; dep--)
		for (size_t i = 0; i < p->n && !rc; i++) {
			struct pdir *d = &p->v[i];
			const char *slash = strrchr(d->rel, '/');
			long up;
			if (depth(d->rel) != dep)
				continue;
			up = folder(p, d->rel, slash ? (size_t)(slash - d->rel) : 0, e);
			if (up < 0)
				return e->code;
			d = &p->v[i];
			rc = kiln_ipfs_dir_add_dir(p->v[up].d, slash ? slash + 1 : d->rel, d->d, NULL,
						   e);
			d->d = NULL; /* freed by add_dir */
		}
	if (!rc) {
		long r = folder(p, "", 0, e);
		rc = r < 0 ? e->code : kiln_ipfs_dir_finish(p->v[r].d, cid, NULL, e);
	}
	return rc;
}
