/* provenance: the provenance hash, the reveal mapping, ERC-1155 names, and checking a release.
 *
 * The provenance hash follows the BAYC method exactly: hash every final image file with
 * SHA-256, write each digest as 64 lowercase hex digits, concatenate them in the initial
 * sequence (token id order), and hash that string. The reveal maps the token at position t to
 * initial item (t + startingIndex) mod N.
 *
 * kiln_release_verify() trusts nothing but the bytes in dist/. Every file is hashed once and
 * compared with manifest.sha256, so no file can change, go missing or be added unnoticed,
 * whatever it is (Metaplex assets, Sugar's config, _metadata.json, thumbnails). The manifest
 * could be rewritten along with a forged file, so verify also recomputes what does not depend
 * on it: the images against provenance.json and the provenance hash (published on chain
 * before the mint), every CID against ipfs.json (the metadata CID is the contract's baseURI),
 * the reveal mapping, and the targets against each other (_metadata.json against metadata/,
 * each Metaplex asset against Sugar's config and the ERC-721 JSON of its token, Sugar's file
 * layout). What no recomputation can catch (every Metaplex asset and config.json forged
 * together, and the manifest rewritten) changes the release hash, the manifest's SHA-256,
 * which verify recomputes from the files and compares with the published one when given.
 * A mismatch is a finding, not an error: the function fails only when dist/ is not a release
 * or a record is malformed.
 *
 * Sizes: one image in memory at a time (files are hashed and imported 256 KiB at a time); the
 * list of files (about 100 bytes each, five a token) and the record files (about 150 bytes a
 * token) are held whole.
 */
#include "kiln/portfolio.h"
#include "kiln/release.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/path.h"
#include "util/sha.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

int kiln_provenance_hash(const char (*hashes)[65], size_t n, char out[65], struct kiln_error *e)
{
	struct kiln_sha256 h;
	if (kiln_sha256_init(&h))
		return kiln_error_set(e, KILN_E_NOMEM, "provenance", "cannot start SHA-256");
	for (size_t i = 0; i < n; i++)
		kiln_sha256_update(&h, hashes[i], 64);
	kiln_sha256_final(&h, NULL, out);
	return 0;
}

uint64_t kiln_reveal_item(uint64_t t, uint64_t starting_index, uint64_t n)
{
	uint64_t a = t % n, b = starting_index % n;
	/* a + b < 2n may overflow only for n > 2^63: subtract instead of adding past it */
	return a >= n - b ? a - (n - b) : a + b;
}

void kiln_erc1155_name(uint64_t id, char out[65])
{
	snprintf(out, 65, "%064llx", (unsigned long long)id);
}

/* --- the manifest -------------------------------------------------------------------------- */

static int cmp_file(const void *a, const void *b)
{
	return strcmp(((const struct kiln_manifest_file *)a)->path,
		      ((const struct kiln_manifest_file *)b)->path);
}

static int add_file(struct kiln_manifest *m, size_t *cap, const char *rel,
		    const struct stat *st)
{
	struct kiln_manifest_file *f;
	if (m->n == *cap) {
		size_t nc = *cap ? *cap * 2 : 256;
		struct kiln_manifest_file *v = kiln_reallocarray(m->v, nc, sizeof *v);
		if (!v)
			return -1;
		m->v = v;
		*cap = nc;
	}
	f = &m->v[m->n];
	memset(f, 0, sizeof *f);
	if (!(f->path = kiln_strdup(rel)))
		return -1;
	f->size = (uint64_t)st->st_size;
	f->regular = S_ISREG(st->st_mode);
	f->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	m->n++;
	return 0;
}

/* The files under root/rel ("" for root itself). A release is three folders deep; the depth
 * limit only stops a hostile tree. */
static int list_dir(const char *root, const char *rel, struct kiln_manifest *m, size_t *cap,
		    int depth, struct kiln_error *e)
{
	char *dir = *rel ? kiln_fs_join(root, rel) : kiln_strdup(root);
	struct dirent *de;
	DIR *d = NULL;
	int rc = 0;
	if (!dir)
		return kiln_error_set(e, KILN_E_NOMEM, root, "out of memory");
	if (depth > 64) {
		rc = kiln_error_set(e, KILN_E_IO, dir, "folders nested too deep for a release");
		goto out;
	}
	if (!(d = opendir(dir))) {
		rc = kiln_error_set(e, KILN_E_IO, dir, "cannot open: %s", strerror(errno));
		goto out;
	}
	while ((de = readdir(d))) {
		char *sub, *full;
		struct stat st;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!*rel && !strcmp(de->d_name, KILN_MANIFEST_FILE))
			continue;
		sub = *rel ? kiln_fs_join(rel, de->d_name) : kiln_strdup(de->d_name);
		full = sub ? kiln_fs_join(root, sub) : NULL;
		if (!full)
			rc = kiln_error_set(e, KILN_E_NOMEM, root, "out of memory");
		else if (lstat(full, &st) != 0)
			rc = kiln_error_set(e, KILN_E_IO, full, "cannot stat: %s", strerror(errno));
		else if (S_ISDIR(st.st_mode))
			rc = list_dir(root, sub, m, cap, depth + 1, e);
		else if (add_file(m, cap, sub, &st))
			rc = kiln_error_set(e, KILN_E_NOMEM, root, "out of memory");
		free(sub);
		free(full);
		if (rc)
			goto out;
	}
out:
	if (d)
		closedir(d);
	free(dir);
	return rc;
}

int kiln_manifest_list(const char *dir, struct kiln_manifest *m, struct kiln_error *e)
{
	size_t cap = 0;
	int rc;
	memset(m, 0, sizeof *m);
	if ((rc = list_dir(dir, "", m, &cap, 0, e))) {
		kiln_manifest_release(m);
		return rc;
	}
	if (m->n)
		qsort(m->v, m->n, sizeof *m->v, cmp_file);
	return 0;
}

struct kiln_manifest_file *kiln_manifest_find(const struct kiln_manifest *m, const char *path)
{
	struct kiln_manifest_file key;
	key.path = (char *)path;
	return m->n ? bsearch(&key, m->v, m->n, sizeof *m->v, cmp_file) : NULL;
}

int kiln_manifest_text(const struct kiln_manifest *m, struct kiln_buf *out, struct kiln_error *e)
{
	for (size_t i = 0; i < m->n; i++) {
		if (strlen(m->v[i].sha256) != 64)
			return kiln_error_set(e, KILN_E_IO, m->v[i].path, "not hashed: no manifest "
					      "line for it");
		if (kiln_buf_addf(out, "%s  %s\n", m->v[i].sha256, m->v[i].path))
			return kiln_error_set(e, KILN_E_NOMEM, m->v[i].path, "out of memory");
	}
	return 0;
}

void kiln_manifest_release(struct kiln_manifest *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i].path);
	free(m->v);
	m->v = NULL;
	m->n = 0;
}

/* --- verify -------------------------------------------------------------------------------- */

/* At most this many lines per kind of cross-check finding, then a count: a release with every
 * token wrong should say so in a screenful. Missing, changed and added files are all named. */
#define MAX_SAME 20

static int problem(struct kiln_verify_result *r, const char *fmt, ...) KILN_PRINTF(2, 3);
static int problem(struct kiln_verify_result *r, const char *fmt, ...)
{
	struct kiln_buf b = KILN_BUF_INIT;
	char **v;
	va_list ap;
	int rc;
	va_start(ap, fmt);
	rc = kiln_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	v = rc ? NULL : kiln_reallocarray(r->problems, r->nproblems + 1, sizeof *v);
	if (!v) {
		kiln_buf_release(&b);
		return KILN_E_NOMEM;
	}
	r->problems = v;
	r->problems[r->nproblems++] = kiln_buf_detach(&b, NULL);
	return 0;
}

/* The most kiln reads of one record file (provenance.json of a 10,000-token collection is
 * about 1.5 MB). */
#define MAX_RECORD_BYTES ((size_t)64 << 20)
/* manifest.sha256: ~100 bytes a file, five files a token */
#define MAX_MANIFEST_BYTES ((size_t)256 << 20)

/* A JSON record of the release, or NULL (with *why) when it is missing, not JSON, not a regular
 * file (never opened for reading: a FIFO would block), over MAX_RECORD_BYTES, or a link that
 * leaves the folder. */
static json_t *load_rel(const char *dist, const char *rel, char why[160])
{
	struct kiln_buf b;
	struct kiln_error fe;
	json_error_t je;
	json_t *j = NULL;
	char *path = NULL;
	int st = kiln_path_beneath(dist, rel, NULL, 0, &path, NULL, 0);
	if (st == KILN_PATH_MISSING) {
		snprintf(why, 160, "missing");
		return NULL;
	}
	if (st == KILN_PATH_OUTSIDE) {
		snprintf(why, 160, "leaves the release folder (a link to a file outside): not read");
		return NULL;
	}
	if (st != KILN_PATH_OK) {
		snprintf(why, 160, "out of memory");
		return NULL;
	}
	kiln_buf_init(&b, 2 * MAX_RECORD_BYTES);
	kiln_error_clear(&fe);
	if (kiln_fs_read_limited(path, &b, MAX_RECORD_BYTES, 0, &fe))
		snprintf(why, 160, "%.150s", fe.msg);
	else if (!(j = json_loadb(b.data ? b.data : "", b.len, 0, &je)))
		snprintf(why, 160, "%.150s", je.text);
	kiln_buf_release(&b);
	free(path);
	return j;
}

/* A name from a record must stay inside dist/: no absolute paths, no "..". */
static int safe_rel(const char *p)
{
	if (!p || !*p || *p == '/')
		return 0;
	for (const char *s = p; *s; s++)
		if ((s == p || s[-1] == '/') && s[0] == '.' && s[1] == '.' && (!s[2] || s[2] == '/'))
			return 0;
	return 1;
}

static int is_hex64(const char *s)
{
	size_t i;
	for (i = 0; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return i == 64;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The SHA-256 of a file found in dist/, or NULL when it is not there or could not be read. */
static const char *sha_of(const struct kiln_manifest *found, const char *rel)
{
	const struct kiln_manifest_file *f = kiln_manifest_find(found, rel);
	return f && f->sha256[0] ? f->sha256 : NULL;
}

/* Every file in dist/ hashed once; the other checks look their hashes up. */
static int hash_files(const char *dist, struct kiln_manifest *found,
		      struct kiln_verify_result *r)
{
	for (size_t i = 0; i < found->n; i++) {
		struct kiln_manifest_file *f = &found->v[i];
		struct kiln_error fe;
		char *path;
		if (!f->regular) {
			if (problem(r, "%s: not a regular file (a release holds only files and "
				    "folders)", f->path))
				return KILN_E_NOMEM;
			continue;
		}
		if (!(path = kiln_fs_join(dist, f->path)))
			return KILN_E_NOMEM;
		if (kiln_sha256_file(path, f->sha256, &fe)) {
			f->sha256[0] = 0;
			if (problem(r, "%s: cannot read (%s)", f->path, fe.msg)) {
				free(path);
				return KILN_E_NOMEM;
			}
		} else {
			r->files++;
			r->bytes += f->size;
		}
		free(path);
	}
	return 0;
}

struct line {
	const char *path;
	const char *sha;
};

static int cmp_line(const void *a, const void *b)
{
	return strcmp(((const struct line *)a)->path, ((const struct line *)b)->path);
}

/* manifest.sha256 against the files found: each changed, missing or added file is named. The
 * release hash is made from the files found, so it says what dist/ holds, whatever the
 * manifest claims. */
static int verify_manifest(const char *dist, const struct kiln_manifest *found,
			   const char *expect, struct kiln_verify_result *r)
{
	struct kiln_buf text = KILN_BUF_INIT, mine = KILN_BUF_INIT;
	struct line *v = NULL;
	size_t n = 0, nlines = 0, before = r->nproblems;
	char *path = kiln_fs_join(dist, KILN_MANIFEST_FILE), file_sha[65] = "", *real = NULL;
	struct kiln_error fe;
	int rc = KILN_E_NOMEM, st;
	if (!path)
		goto out;
	/* the release hash, from the files as found (unreadable ones as 64 zeros) */
	for (size_t i = 0; i < found->n; i++)
		if (kiln_buf_addf(&mine, "%s  %s\n", found->v[i].sha256[0] ? found->v[i].sha256 :
				  "0000000000000000000000000000000000000000000000000000000000000000",
				  found->v[i].path))
			goto out;
	kiln_sha256_hex(mine.data ? mine.data : "", mine.len, r->manifest);
	r->checks++;
	if (!kiln_fs_exists(path)) {
		if (problem(r, KILN_MANIFEST_FILE ": missing: it lists every file of the release "
			    "with its SHA-256 (a release made before kiln wrote one; a forced release "
			    "writes it)"))
			goto out;
	} else if ((st = kiln_path_beneath(dist, KILN_MANIFEST_FILE, NULL, 0, &real, NULL, 0)) ==
		   KILN_PATH_NOMEM) {
		goto out;
	} else if (st != KILN_PATH_OK) {
		/* a link out: its lines would be quoted below */
		if (problem(r, KILN_MANIFEST_FILE ": leaves the release folder (a link to a file "
			    "outside): not read"))
			goto out;
	} else if (kiln_fs_read_limited(real, &text, MAX_MANIFEST_BYTES, 0, &fe)) {
		/* a FIFO or device is refused without blocking */
		if (problem(r, KILN_MANIFEST_FILE ": cannot read (%s)", fe.msg))
			goto out;
	} else {
		char *p = text.data ? text.data : "", *end = p + text.len;
		kiln_sha256_hex(p, text.len, file_sha);
		for (char *q = p; q < end; q++)
			nlines += *q == '\n';
		if (!(v = kiln_calloc(nlines + 2, sizeof *v)))
			goto out;
		for (size_t ln = 1; p < end; ln++) {
			char *nl = memchr(p, '\n', (size_t)(end - p));
			if (!nl)
				nl = end;
			*nl = 0;
			if (nl - p < 67 || p[64] != ' ' || p[65] != ' ' || !safe_rel(p + 66) ||
			    (p[64] = 0, !is_hex64(p))) {
				if (nl - p >= 65)
					p[64] = ' ';
				if (problem(r, KILN_MANIFEST_FILE " line %zu: not '<sha256>  <path>': "
					    "%.80s", ln, p))
					goto out;
			} else {
				v[n].sha = p;
				v[n++].path = p + 66;
			}
			p = nl + 1;
		}
		if (n)
			qsort(v, n, sizeof *v, cmp_line);
		for (size_t i = 0; i < n; i++) {
			const struct kiln_manifest_file *f = kiln_manifest_find(found, v[i].path);
			r->checks++;
			if (i && !strcmp(v[i].path, v[i - 1].path)) {
				if (problem(r, "%s: listed twice in " KILN_MANIFEST_FILE, v[i].path))
					goto out;
			} else if (!f) {
				if (problem(r, "%s: missing (" KILN_MANIFEST_FILE " lists it)",
					    v[i].path))
					goto out;
			} else if (f->sha256[0] && strcmp(f->sha256, v[i].sha)) {
				if (problem(r, "%s: changed: sha256 is %s, " KILN_MANIFEST_FILE
					    " says %s", v[i].path, f->sha256, v[i].sha))
					goto out;
			}
		}
		for (size_t i = 0; i < found->n; i++) {
			struct line key = {found->v[i].path, NULL};
			r->checks++;
			if ((!n || !bsearch(&key, v, n, sizeof *v, cmp_line)) &&
			    problem(r, "%s: not in " KILN_MANIFEST_FILE " (a file was added)",
				    found->v[i].path))
				goto out;
		}
		/* same files, same hashes, other bytes: reordered or reformatted by hand */
		if (r->nproblems == before && strcmp(file_sha, r->manifest) &&
		    problem(r, KILN_MANIFEST_FILE ": not as kiln writes it (one '<sha256>  <path>' "
			    "line per file, sorted by path): its SHA-256 is %s, the files give %s",
			    file_sha, r->manifest))
			goto out;
	}
	r->checks += expect != NULL;
	if (expect && strcmp(expect, r->manifest) &&
	    problem(r, "release hash: the files give %s, the published one is %s", r->manifest,
		    expect))
		goto out;
	rc = 0;
out:
	free(v);
	free(path);
	free(real);
	kiln_buf_release(&text);
	kiln_buf_release(&mine);
	return rc;
}

/* Images: every listed file's hash; the provenance hash recomputed; files not listed. */
static int verify_images(const char *dist, json_t *prov, const struct kiln_manifest *found,
			 struct kiln_verify_result *r, char (**hashes)[65], size_t *nimg,
			 struct kiln_error *e)
{
	json_t *imgs = json_object_get(prov, "images"), *x;
	json_t *extras = json_object_get(prov, "extras");
	const char *want_prov = json_string_value(json_object_get(prov, "provenance_hash"));
	char (*h)[65] = NULL;
	const char **names = NULL;
	size_t i, n = json_array_size(imgs), nx = json_array_size(extras);
	int rc = 0;
	if (!json_is_array(imgs) || !want_prov)
		return kiln_error_set(e, KILN_E_IO, "provenance.json", "no images list or "
				      "provenance_hash: not a provenance record kiln wrote");
	if (!(h = kiln_calloc(n + 1, sizeof *h)) ||
	    !(names = kiln_calloc(n + nx + 1, sizeof *names)))
		goto nomem;
	json_array_foreach(imgs, i, x) {
		const char *file = json_string_value(json_object_get(x, "file"));
		const char *want = json_string_value(json_object_get(x, "sha256"));
		const char *got;
		if (!file || !*file || !want || strlen(want) != 64) {
			rc = kiln_error_set(e, KILN_E_IO, "provenance.json", "images[%zu] has no "
					    "usable file and sha256", i);
			goto out;
		}
		names[i] = file;
		r->checks++;
		if (!safe_rel(file)) {
			/* never read: only files found in dist/ (links not followed) are hashed */
			snprintf(h[i], 65, "%064d", 0);
			rc = problem(r, "%s: provenance.json images[%zu].file leaves the release "
				     "folder: not read", file, i);
		} else if (!(got = sha_of(found, file))) {
			snprintf(h[i], 65, "%064d", 0);
			rc = kiln_manifest_find(found, file) ? 0 : problem(r, "%s: missing", file);
		} else {
			snprintf(h[i], 65, "%s", got);
			if (strcmp(h[i], want))
				rc = problem(r, "%s: sha256 is %s, provenance.json says %s", file, h[i],
					     want);
		}
		if (rc)
			goto nomem;
	}
	r->checks++;
	if ((rc = kiln_provenance_hash((const char(*)[65])h, n, r->provenance, e)))
		goto out;
	if (strcmp(r->provenance, want_prov) && (rc = problem(r, "provenance hash: the images give "
							      "%s, provenance.json says %s",
							      r->provenance, want_prov)))
		goto nomem;
	/* extras: files shipped beside a token's image (its polish SVG), each hashed */
	json_array_foreach(extras, i, x) {
		const char *file = json_string_value(json_object_get(x, "file"));
		const char *want = json_string_value(json_object_get(x, "sha256"));
		const char *got;
		if (!file || !*file || !want || strlen(want) != 64 || !safe_rel(file)) {
			rc = kiln_error_set(e, KILN_E_IO, "provenance.json", "extras[%zu] has no "
					    "usable file and sha256", i);
			goto out;
		}
		names[n + i] = file;
		r->checks++;
		if (!(got = sha_of(found, file)))
			rc = kiln_manifest_find(found, file) ? 0 : problem(r, "%s: missing", file);
		else if (strcmp(got, want))
			rc = problem(r, "%s: sha256 is %s, provenance.json says %s", file, got, want);
		if (rc)
			goto nomem;
	}
	/* files under images/ that are not listed: an added or renamed image cannot hide */
	if (n + nx)
		qsort(names, n + nx, sizeof *names, cmp_str);
	for (i = 0; i < found->n; i++) {
		const char *key = found->v[i].path;
		if (strncmp(key, "images/", 7))
			continue;
		r->checks++;
		if ((!(n + nx) || !bsearch(&key, names, n + nx, sizeof *names, cmp_str)) &&
		    (rc = problem(r, "%s: not in provenance.json (an image was added or renamed)",
				  key)))
			goto nomem;
	}
	*hashes = h;
	*nimg = n;
	h = NULL;
	goto out;
nomem:
	rc = kiln_error_set(e, KILN_E_NOMEM, dist, "out of memory");
out:
	free(names);
	free(h);
	return rc;
}

/* ipfs.json's path resolved beneath dist (links followed): *full to import, or *why it is not
 * read (missing, leaves the folder, not a regular file, or a folder holding something that is
 * not: a FIFO inside would block the import). Returns KILN_E_NOMEM or 0. */
static int record_path(const char *dist, const char *path, const struct kiln_manifest *found,
		       char **full, char why[128])
{
	char base[PATH_MAX];
	struct stat st;
	int s = kiln_path_beneath(dist, path, NULL, 0, full, NULL, 0);
	why[0] = 0;
	if (s == KILN_PATH_NOMEM)
		return KILN_E_NOMEM;
	if (s == KILN_PATH_MISSING || (s == KILN_PATH_OK && stat(*full, &st) != 0)) {
		snprintf(why, 128, "is missing");
	} else if (s == KILN_PATH_OUTSIDE) {
		snprintf(why, 128, "leaves the release folder (links followed): not read");
	} else if (S_ISDIR(st.st_mode)) {
		/* the folder's files as dist/ lists them (lstat: a link is not a regular file) */
		size_t bl, rl;
		const char *rel = NULL;
		if (realpath(dist, base)) {
			bl = strlen(base);
			if (!strcmp(*full, base))
				rel = "";
			else if (!strncmp(*full, base, bl) && (*full)[bl] == '/')
				rel = *full + bl + 1;
		}
		rl = rel ? strlen(rel) : 0;
		for (size_t i = 0; rel && i < found->n && !why[0]; i++) {
			const char *p = found->v[i].path;
			if (!found->v[i].regular && (!rl || (!strncmp(p, rel, rl) && p[rl] == '/')))
				snprintf(why, 128, "holds %s, not a regular file: not imported", p);
		}
	} else if (!S_ISREG(st.st_mode)) {
		snprintf(why, 128, "is %s, not a regular file: not read",
			 kiln_path_kind((unsigned)st.st_mode));
	}
	return 0;
}

/* Every {path, cid} in ipfs.json re-imported; every CAR's sha256. */
static int verify_cids(const char *dist, json_t *ipfs, const struct kiln_manifest *found,
		       struct kiln_verify_result *r, struct kiln_error *e)
{
	json_t *entries = json_object_get(ipfs, "entries"), *x;
	size_t i;
	json_array_foreach(entries, i, x) {
		const char *key = json_string_value(json_object_get(x, "name"));
		const char *path = json_string_value(json_object_get(x, "path"));
		const char *want = json_string_value(json_object_get(x, "cid"));
		const char *sha = json_string_value(json_object_get(x, "sha256"));
		char got[KILN_IPFS_CID_MAX], *full;
		struct kiln_error fe;
		int bad, rc = 0;
		char why[128];
		if (!path || !*path || !key || (!want && !sha))
			return kiln_error_set(e, KILN_E_IO, "ipfs.json", "entries[%zu] has no usable "
					      "name, path and cid", i);
		r->checks++;
		if (!safe_rel(path)) {
			if (problem(r, "%s: %s leaves the release folder: not read", key, path))
				return kiln_error_set(e, KILN_E_NOMEM, dist, "out of memory");
			continue;
		}
		if ((rc = record_path(dist, path, found, &full, why)))
			return kiln_error_set(e, KILN_E_NOMEM, dist, "out of memory");
		if (why[0]) {
			rc = problem(r, "%s: %s %s", key, path, why);
		} else if (want) {
			bad = kiln_fs_is_dir(full) ? kiln_ipfs_import_tree(full, NULL, 0, got, NULL, &fe)
						   : kiln_ipfs_file_cid(full, got, &fe);
			if (bad)
				rc = problem(r, "%s: cannot import %s (%s)", key, path, fe.msg);
			else if (strcmp(got, want))
				rc = problem(r, "%s: %s has CID %s, ipfs.json says %s", key, path, got,
					     want);
			if (!bad && !strcmp(key, "images"))
				snprintf(r->images_cid, sizeof r->images_cid, "%s", got);
			if (!bad && !strcmp(key, "metadata"))
				snprintf(r->metadata_cid, sizeof r->metadata_cid, "%s", got);
		}
		if (!rc && sha) {
			const char *hex = sha_of(found, path);
			if (!hex)
				rc = problem(r, "%s: cannot read %s", key, path);
			else if (strcmp(hex, sha))
				rc = problem(r, "%s: %s has sha256 %s, ipfs.json says %s", key, path, hex,
					     sha);
		}
		free(full);
		if (rc)
			return kiln_error_set(e, KILN_E_NOMEM, dist, "out of memory");
	}
	return 0;
}

/* The sha256 of provenance.json's extra of token `id` whose file has the extension of `file`
 * (the PNG beside an SVG image), else `dflt`. */
static const char *extra_of(json_t *prov, json_t *id, const char *file, const char *dflt)
{
	const char *dot = strrchr(file, '.');
	json_t *x;
	size_t i;
	json_array_foreach(json_object_get(prov, "extras"), i, x) {
		const char *f = json_string_value(json_object_get(x, "file"));
		const char *sha = json_string_value(json_object_get(x, "sha256"));
		const char *fd = f ? strrchr(f, '.') : NULL;
		if (f && sha && dot && fd && json_equal(json_object_get(x, "token_id"), id) &&
		    !strcmp(fd, dot))
			return sha;
	}
	return dflt;
}

/* Token metadata: token at position t must show initial item (t + starting_index) mod N, i.e.
 * its image must end with that item's file name. Checks dist/metadata/ and metaplex assets. */
static int verify_mapping(const char *dist, json_t *prov, const char (*hashes)[65], size_t n,
			  const struct kiln_manifest *found, struct kiln_verify_result *r,
			  struct kiln_error *e)
{
	json_t *imgs = json_object_get(prov, "images"), *si = json_object_get(prov,
									   "starting_index");
	json_t *tokens = json_object_get(prov, "tokens");
	uint64_t start = json_is_integer(si) ? (uint64_t)json_integer_value(si) : 0;
	size_t t, bad = 0, mbad = 0;
	int rc = 0;
	if (!n || !json_is_array(tokens))
		return 0;
	for (t = 0; t < n && t < json_array_size(tokens); t++) {
		json_t *tok = json_array_get(tokens, t), *m;
		json_t *img = json_array_get(imgs, kiln_reveal_item(t, start, n));
		const char *metas[2] = {json_string_value(json_object_get(tok, "metadata")),
					json_string_value(json_object_get(tok, "erc1155_metadata"))};
		const char *asset = json_string_value(json_object_get(tok, "metaplex_image"));
		const char *file = json_string_value(json_object_get(img, "file"));
		const char *base = file ? strrchr(file, '/') : NULL;
		char why[160];
		base = base ? base + 1 : file;
		for (int k = 0; k < 2; k++) {
			const char *meta = metas[k];
			const char *uri;
			size_t ul, bl;
			if (!meta || !safe_rel(meta) || !base)
				continue;
			bl = strlen(base);
			m = load_rel(dist, meta, why);
			uri = json_string_value(json_object_get(m, "image"));
			ul = uri ? strlen(uri) : 0;
			r->checks++;
			if (!uri || ul < bl + 1 || strcmp(uri + ul - bl, base) ||
			    uri[ul - bl - 1] != '/') {
				if (bad++ < MAX_SAME)
					rc = problem(r, "%s: image is %s, the reveal mapping says %s", meta,
						     uri ? uri : "(none)", file);
			}
			json_decref(m);
			if (rc)
				return kiln_error_set(e, KILN_E_NOMEM, dist, "out of memory");
		}
		if (asset && safe_rel(asset)) {
			const char *want = hashes[kiln_reveal_item(t, start, n)];
			const char *got = sha_of(found, asset);
			r->checks++;
			/* image.format svg: the asset is the PNG beside the SVG (an extra of the
			 * same token, of the asset's type) */
			if (got && strcmp(got, want))
				want = extra_of(prov, json_object_get(img, "token_id"), asset, want);
			if ((!got || strcmp(got, want)) && mbad++ < MAX_SAME &&
			    problem(r, "%s: not the image the reveal mapping says (%s)", asset,
				    file ? file : "?"))
				return kiln_error_set(e, KILN_E_NOMEM, dist, "out of memory");
		}
	}
	if (bad > MAX_SAME || mbad > MAX_SAME)
		rc = problem(r, "... %zu token metadata files and %zu Metaplex images in all do not "
			     "match the reveal mapping", bad, mbad);
	return rc ? kiln_error_set(e, KILN_E_NOMEM, dist, "out of memory") : 0;
}

/* A capped finding of one kind: the first MAX_SAME are named, the rest counted. */
static int finding(struct kiln_verify_result *r, size_t *count, const char *fmt, ...)
	KILN_PRINTF(3, 4);
static int finding(struct kiln_verify_result *r, size_t *count, const char *fmt, ...)
{
	struct kiln_buf b = KILN_BUF_INIT;
	va_list ap;
	int rc;
	if ((*count)++ >= MAX_SAME)
		return 0;
	va_start(ap, fmt);
	rc = kiln_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	rc = rc || problem(r, "%s", b.data);
	kiln_buf_release(&b);
	return rc;
}

/* Two JSON values equal, an absent one equal to null or []: Sugar's asset JSON leaves out
 * creators when there are none, its config lists []. */
static int same_json(json_t *a, json_t *b)
{
	int ea = !a || json_is_null(a) || (json_is_array(a) && !json_array_size(a));
	int eb = !b || json_is_null(b) || (json_is_array(b) && !json_array_size(b));
	return ea || eb ? ea && eb : json_equal(a, b);
}

/* Is name (under metaplex/assets/) part of Sugar's layout: i.json and i.<image ext> for the
 * n assets, collection.json and collection.<image ext>? */
static int sugar_name(const char *name, size_t n, json_t *tokens)
{
	const char *dot = strchr(name, '.');
	char *end;
	unsigned long long i;
	if (!dot)
		return 0;
	if (!strncmp(name, "collection.", 11)) {
		static const char *const ok[] = {"json", "png", "jpg", "jpeg", "gif"};
		for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++)
			if (!strcasecmp(dot + 1, ok[k]))
				return 1;
		return 0;
	}
	if (name[0] < '0' || name[0] > '9' || (name[0] == '0' && dot != name + 1))
		return 0;
	errno = 0;
	i = strtoull(name, &end, 10);
	if (errno || end != dot || i >= n)
		return 0;
	if (!strcmp(dot, ".json"))
		return 1;
	{
		const char *img = json_string_value(json_object_get(json_array_get(tokens, i),
								    "metaplex_image"));
		const char *slash = img ? strrchr(img, '/') : NULL;
		return slash && !strcmp(slash + 1, name);
	}
}

/* The targets against each other, so that a forged file is caught even when the manifest is
 * rewritten with it: _metadata.json holds exactly metadata/<id>.json in token order; each
 * Metaplex asset has Sugar's config's symbol, fee and creators and its token's ERC-721 name
 * and description; metaplex/assets/ holds Sugar's layout and nothing else. */
static int verify_targets(const char *dist, json_t *prov, const struct kiln_manifest *found,
			  struct kiln_verify_result *r)
{
	json_t *tokens = json_object_get(prov, "tokens"), *all = NULL, *cfg = NULL;
	size_t nt = json_array_size(tokens), nmeta = 0, nmpl = 0, c_all = 0, c_mpl = 0, c_cfg = 0;
	char why[160];
	int rc = 0;
	for (size_t t = 0; t < nt; t++) {
		json_t *tok = json_array_get(tokens, t);
		nmeta += json_object_get(tok, "metadata") != NULL;
		nmpl += json_object_get(tok, "metaplex_image") != NULL;
	}
	if (kiln_manifest_find(found, "_metadata.json")) {
		r->checks++;
		all = load_rel(dist, "_metadata.json", why);
		if (!json_is_array(all))
			rc = problem(r, "_metadata.json: %s", all ? "not a JSON array" : why);
		else if (json_array_size(all) != nmeta)
			rc = problem(r, "_metadata.json: %zu tokens, metadata/ has %zu",
				     json_array_size(all), nmeta);
		for (size_t t = 0; !rc && json_is_array(all) && t < nt; t++) {
			const char *meta = json_string_value(json_object_get(json_array_get(tokens, t),
									     "metadata"));
			json_t *m;
			if (!meta || !safe_rel(meta))
				continue;
			m = load_rel(dist, meta, why);
			r->checks++;
			if (!m || !json_equal(m, json_array_get(all, t)))
				rc = finding(r, &c_all, "_metadata.json: token %zu is not %s", t, meta);
			json_decref(m);
		}
	}
	if (!rc && nmpl) {
		json_t *sym, *fee, *cr;
		r->checks++;
		if (!(cfg = load_rel(dist, "metaplex/config.json", why)))
			rc = problem(r, "metaplex/config.json: %s", why);
		else if (json_integer_value(json_object_get(cfg, "number")) != (json_int_t)nmpl)
			rc = problem(r, "metaplex/config.json: number is %" JSON_INTEGER_FORMAT
				     ", the release has %zu assets",
				     json_integer_value(json_object_get(cfg, "number")), nmpl);
		sym = json_object_get(cfg, "symbol");
		fee = json_object_get(cfg, "sellerFeeBasisPoints");
		cr = json_object_get(cfg, "creators");
		for (size_t t = 0; !rc && t < nt; t++) {
			json_t *tok = json_array_get(tokens, t), *a, *m = NULL, *props;
			const char *meta = json_string_value(json_object_get(tok, "metadata"));
			char rel[64];
			if (!json_object_get(tok, "metaplex_image"))
				continue;
			snprintf(rel, sizeof rel, "metaplex/assets/%zu.json", t);
			r->checks++;
			if (!(a = load_rel(dist, rel, why))) {
				rc = finding(r, &c_mpl, "%s: %s", rel, why);
				continue;
			}
			props = json_object_get(a, "properties");
			if (cfg && !(json_equal(json_object_get(a, "symbol"), sym) &&
				     json_equal(json_object_get(a, "seller_fee_basis_points"), fee) &&
				     same_json(json_object_get(props, "creators"), cr)))
				rc = finding(r, &c_cfg, "%s: symbol, seller_fee_basis_points or creators "
					     "differ from metaplex/config.json", rel);
			if (!rc && meta && safe_rel(meta) && (m = load_rel(dist, meta, why)) &&
			    !(json_equal(json_object_get(a, "name"), json_object_get(m, "name")) &&
			      json_equal(json_object_get(a, "description"),
					 json_object_get(m, "description"))))
				rc = finding(r, &c_mpl, "%s: name or description differ from %s", rel,
					     meta);
			json_decref(m);
			json_decref(a);
		}
		for (size_t i = 0; !rc && i < found->n; i++) {
			const char *p = found->v[i].path;
			if (strncmp(p, "metaplex/assets/", 16))
				continue;
			r->checks++;
			if (strchr(p + 16, '/') || !sugar_name(p + 16, nmpl, tokens))
				rc = problem(r, "%s: not part of Sugar's layout (assets 0..%zu and "
					     "collection)", p, nmpl - 1);
		}
	}
	if (!rc && (c_all > MAX_SAME || c_cfg > MAX_SAME || c_mpl > MAX_SAME))
		rc = problem(r, "... %zu tokens differ from _metadata.json, %zu Metaplex assets "
			     "from Sugar's config, %zu from their token JSON in all", c_all, c_cfg,
			     c_mpl);
	json_decref(all);
	json_decref(cfg);
	return rc;
}

/* a file's SHA-256 as hash_files found it (for the portfolio's subjects), or NULL */
static const char *known_sha(void *ctx, const char *rel)
{
	const struct kiln_manifest_file *f = kiln_manifest_find(ctx, rel);
	return f && f->regular && f->sha256[0] ? f->sha256 : NULL;
}

int kiln_release_verify(const char *dist, const char *expect_manifest,
			struct kiln_verify_result *r, struct kiln_error *e)
{
	return kiln_release_verify_key(dist, expect_manifest, NULL, r, e);
}

int kiln_release_verify_key(const char *dist, const char *expect_manifest,
			    const char *studio_key, struct kiln_verify_result *r,
			    struct kiln_error *e)
{
	static const char *const records[] = {"provenance.json", "ipfs.json", KILN_MANIFEST_FILE};
	struct kiln_manifest found;
	json_t *prov = NULL, *ipfs = NULL;
	char (*hashes)[65] = NULL, why[160];
	size_t n = 0, nrec = 0;
	int rc;
	memset(r, 0, sizeof *r);
	memset(&found, 0, sizeof found);
	/* a wrong path is a usage mistake, not a release that fails its check */
	if (!kiln_fs_is_dir(dist)) {
		kiln_error_set(e, KILN_E_USAGE, dist, "%s: a release folder is a project's dist/, "
			       "or a copy of it", kiln_fs_exists(dist) ? "not a folder"
								       : "no such folder");
		return kiln_error_hint(e, KILN_HINT_RELEASE, NULL);
	}
	for (size_t i = 0; i < sizeof records / sizeof records[0]; i++) {
		char *p = kiln_fs_join(dist, records[i]);
		if (!p)
			return kiln_error_set(e, KILN_E_NOMEM, dist, "out of memory");
		nrec += kiln_fs_exists(p);
		free(p);
	}
	if (!nrec) {
		kiln_error_set(e, KILN_E_USAGE, dist, "not a release folder: it has no "
			       "provenance.json, ipfs.json or " KILN_MANIFEST_FILE);
		return kiln_error_hint(e, KILN_HINT_RELEASE, NULL);
	}
	if (expect_manifest && !is_hex64(expect_manifest))
		return kiln_error_set(e, KILN_E_USAGE, expect_manifest, "a release hash is 64 "
				      "lowercase hex digits (the SHA-256 of " KILN_MANIFEST_FILE ")");
	if ((rc = kiln_manifest_list(dist, &found, e)))
		return rc;
	if (hash_files(dist, &found, r) || verify_manifest(dist, &found, expect_manifest, r)) {
		rc = kiln_error_set(e, KILN_E_NOMEM, dist, "out of memory");
		goto out;
	}
	/* the records: a missing or broken one is a finding, the checks that need it are skipped */
	r->checks += 2;
	if (!(prov = load_rel(dist, "provenance.json", why)) &&
	    problem(r, "provenance.json: %s", why))
		goto nomem;
	if (!(ipfs = load_rel(dist, "ipfs.json", why)) && problem(r, "ipfs.json: %s", why))
		goto nomem;
	if ((prov && (rc = verify_images(dist, prov, &found, r, &hashes, &n, e))) ||
	    (ipfs && (rc = verify_cids(dist, ipfs, &found, r, e))) ||
	    (prov && (rc = verify_mapping(dist, prov, (const char(*)[65])hashes, n, &found, r, e))))
		goto out;
	if (prov && verify_targets(dist, prov, &found, r))
		goto nomem;
	/* dist/portfolio/, when the release has one */
	{
		struct kiln_portfolio_hashes known = {known_sha, &found};
		rc = kiln_portfolio_verify(dist, studio_key, &known, &r->checks, &r->problems,
					   &r->nproblems, e);
	}
	goto out;
nomem:
	rc = kiln_error_set(e, KILN_E_NOMEM, dist, "out of memory");
out:
	free(hashes);
	json_decref(prov);
	json_decref(ipfs);
	kiln_manifest_release(&found);
	if (rc)
		kiln_verify_result_release(r); /* the problems found before the failure */
	return rc;
}

void kiln_verify_result_release(struct kiln_verify_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nproblems; i++)
		free(r->problems[i]);
	free(r->problems);
	r->problems = NULL;
	r->nproblems = 0;
}

/* ---- the records, read for QA -------------------------------------------------------- */

void kiln_release_record_release(struct kiln_release_record *r)
{
	for (size_t i = 0; i < r->nimages; i++) {
		free(r->images[i].file);
		free(r->images[i].sha256);
	}
	free(r->images);
	free(r->image_base);
	memset(r, 0, sizeof *r);
}

static char *dup_or_null(const char *s, int *nomem)
{
	char *d = s ? kiln_strdup(s) : NULL;
	if (s && !d)
		*nomem = 1;
	return d;
}

int kiln_release_record_read(const char *dir, struct kiln_release_record *r,
			     struct kiln_error *e)
{
	char why[160];
	json_t *j, *imgs, *si, *x;
	const char *h, *u = NULL;
	size_t i;
	int nomem = 0;
	memset(r, 0, sizeof *r);
	if ((j = load_rel(dir, "provenance.json", why))) {
		r->has_provenance = 1;
		imgs = json_object_get(j, "images");
		h = json_string_value(json_object_get(j, "provenance_hash"));
		if (json_is_array(imgs) && h && strlen(h) == 64 &&
		    strspn(h, "0123456789abcdefABCDEF") == 64)
			snprintf(r->provenance_hash, sizeof r->provenance_hash, "%s", h);
		si = json_object_get(j, "starting_index");
		if (json_is_integer(si) && json_integer_value(si) >= 0) {
			r->has_starting_index = 1;
			r->starting_index = (uint64_t)json_integer_value(si);
		}
		if (r->provenance_hash[0] && json_array_size(imgs)) {
			r->images = kiln_calloc(json_array_size(imgs), sizeof *r->images);
			nomem = !r->images;
			json_array_foreach(imgs, i, x) {
				if (nomem)
					break;
				r->images[i].file = dup_or_null(
					json_string_value(json_object_get(x, "file")), &nomem);
				r->images[i].sha256 = dup_or_null(
					json_string_value(json_object_get(x, "sha256")), &nomem);
				r->nimages = i + 1;
			}
		}
		json_decref(j);
	} else if (strcmp(why, "missing")) {
		r->has_provenance = 1;
		snprintf(r->provenance_error, sizeof r->provenance_error, "%s", why);
	}
	if ((j = load_rel(dir, "ipfs.json", why))) {
		char base[4096] = "";
		size_t n;
		if ((u = json_string_value(json_object_get(j, "image_uri"))))
			snprintf(base, sizeof base, "%s", u);
		else
			json_array_foreach(json_object_get(j, "entries"), i, x) {
				const char *nm = json_string_value(json_object_get(x, "name"));
				const char *cid = json_string_value(json_object_get(x, "cid"));
				if (nm && cid && !strcmp(nm, "images"))
					snprintf(base, sizeof base, "ipfs://%s", cid);
			}
		json_decref(j);
		for (n = strlen(base); n && base[n - 1] == '/';)
			base[--n] = 0;
		if (*base)
			r->image_base = dup_or_null(base, &nomem);
	}
	if (nomem) {
		kiln_release_record_release(r);
		return kiln_error_set(e, KILN_E_NOMEM, dir, "out of memory");
	}
	return 0;
}
