/* provenance: the provenance hash, the reveal mapping, ERC-1155 names, and checking a release.
 *
 * The provenance hash follows the BAYC method exactly: hash every final image file with
 * SHA-256, write each digest as 64 lowercase hex digits, concatenate them in the initial
 * sequence (token id order), and hash that string. The reveal maps the token at position t to
 * initial item (t + startingIndex) mod N.
 *
 * kiln_release_verify() trusts nothing but the bytes in dist/: provenance.json and ipfs.json
 * say what should be there, and every file they name is read and hashed again (images by
 * SHA-256, folders by re-importing them as `ipfs add --cid-version=1` would, CARs by SHA-256).
 * A mismatch is a finding, not an error: the function fails only when it cannot read the
 * records. Files in images/ that provenance.json does not list are findings too, so an
 * added or renamed image cannot hide.
 *
 * Sizes: one image in memory at a time (images are read by the IPFS importer 256 KiB at a
 * time and hashed separately); the record files hold about 150 bytes a token.
 */
#include "kiln/release.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/sha.h"

#include <dirent.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* --- verify -------------------------------------------------------------------------------- */

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

static int load_json(const char *dist, const char *name, json_t **out, struct kiln_error *e)
{
	char *path = kiln_fs_join(dist, name);
	json_error_t je;
	if (!path)
		return kiln_error_set(e, KILN_E_NOMEM, dist, "out of memory");
	*out = json_load_file(path, 0, &je);
	if (!*out) {
		int rc = kiln_error_set(e, KILN_E_IO, path, "%s: is this a release folder made by "
					"`kiln release`? (%s, line %d)", kiln_fs_exists(path) ?
					"cannot read it" : "not found", je.text, je.line);
		free(path);
		return rc;
	}
	free(path);
	return 0;
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

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Images: every listed file hashed again; the provenance hash recomputed; extra files. */
static int verify_images(const char *dist, json_t *prov, struct kiln_verify_result *r,
			 char (**hashes)[65], size_t *nimg, struct kiln_error *e)
{
	json_t *imgs = json_object_get(prov, "images"), *x;
	const char *want_prov = json_string_value(json_object_get(prov, "provenance_hash"));
	char (*h)[65] = NULL, *dir = NULL;
	const char **names = NULL;
	size_t i, n = json_array_size(imgs);
	DIR *d = NULL;
	struct dirent *de;
	int rc = 0;
	if (!json_is_array(imgs) || !want_prov)
		return kiln_error_set(e, KILN_E_IO, "provenance.json", "no images list or "
				      "provenance_hash: not a provenance record kiln wrote");
	h = kiln_calloc(n + 1, sizeof *h);
	if (!h)
		return kiln_error_set(e, KILN_E_NOMEM, dist, "out of memory");
	json_array_foreach(imgs, i, x) {
		const char *file = json_string_value(json_object_get(x, "file"));
		const char *want = json_string_value(json_object_get(x, "sha256"));
		char *path;
		struct kiln_error fe;
		if (!safe_rel(file) || !want || strlen(want) != 64) {
			rc = kiln_error_set(e, KILN_E_IO, "provenance.json", "images[%zu] has no "
					    "usable file and sha256", i);
			goto out;
		}
		if (!(path = kiln_fs_join(dist, file))) {
			rc = kiln_error_set(e, KILN_E_NOMEM, dist, "out of memory");
			goto out;
		}
		r->checks++;
		if (kiln_sha256_file(path, h[i], &fe)) {
			snprintf(h[i], 65, "%064d", 0);
			rc = problem(r, "%s: cannot read (%s)", file, fe.msg);
		} else {
			struct stat st;
			r->files++;
			if (!stat(path, &st))
				r->bytes += (uint64_t)st.st_size;
			if (strcmp(h[i], want))
				rc = problem(r, "%s: sha256 is %s, provenance.json says %s", file, h[i],
					     want);
		}
		free(path);
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
	/* files in images/ that are not listed */
	if (!(dir = kiln_fs_join(dist, "images")) || !(names = kiln_calloc(n + 1, sizeof *names))) {
		rc = kiln_error_set(e, KILN_E_NOMEM, dist, "out of memory");
		goto out;
	}
	json_array_foreach(imgs, i, x)
		names[i] = json_string_value(json_object_get(x, "file"));
	qsort(names, n, sizeof *names, cmp_str);
	if ((d = opendir(dir))) {
		while ((de = readdir(d))) {
			char rel[512];
			const char *key = rel;
			if (de->d_name[0] == '.')
				continue;
			snprintf(rel, sizeof rel, "images/%s", de->d_name);
			r->checks++;
			if (!bsearch(&key, names, n, sizeof *names, cmp_str) &&
			    (rc = problem(r, "%s: not in provenance.json (an image was added or "
					  "renamed)", rel)))
				goto nomem;
		}
		closedir(d);
		d = NULL;
	}
	*hashes = h;
	*nimg = n;
	h = NULL;
	goto out;
nomem:
	rc = kiln_error_set(e, KILN_E_NOMEM, dist, "out of memory");
out:
	if (d)
		closedir(d);
	free(dir);
	free(names);
	free(h);
	return rc;
}

/* Every {path, cid} under ipfs.json's "folders" and "files", and every CAR's sha256. */
static int verify_cids(const char *dist, json_t *ipfs, struct kiln_verify_result *r,
		       struct kiln_error *e)
{
	json_t *entries = json_object_get(ipfs, "entries"), *x;
	size_t i;
	json_array_foreach(entries, i, x) {
		const char *key = json_string_value(json_object_get(x, "name"));
		const char *path = json_string_value(json_object_get(x, "path"));
		const char *want = json_string_value(json_object_get(x, "cid"));
		const char *sha = json_string_value(json_object_get(x, "sha256"));
		char got[KILN_IPFS_CID_MAX], hex[65], *full;
		struct kiln_error fe;
		int bad, rc = 0;
		if (!safe_rel(path) || !key || (!want && !sha))
			return kiln_error_set(e, KILN_E_IO, "ipfs.json", "entries[%zu] has no usable "
					      "name, path and cid", i);
		if (!(full = kiln_fs_join(dist, path)))
			return kiln_error_set(e, KILN_E_NOMEM, dist, "out of memory");
		r->checks++;
		if (!kiln_fs_exists(full)) {
			rc = problem(r, "%s: %s is missing", key, path);
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
		} else {
			if (kiln_sha256_file(full, hex, &fe))
				rc = problem(r, "%s: cannot read %s (%s)", key, path, fe.msg);
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

/* Token metadata: token at position t must show initial item (t + starting_index) mod N, i.e.
 * its image must end with that item's file name. Checks dist/metadata/ and metaplex assets. */
static int verify_mapping(const char *dist, json_t *prov, const char (*hashes)[65], size_t n,
			  struct kiln_verify_result *r, struct kiln_error *e)
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
		char *path;
		base = base ? base + 1 : file;
		for (int k = 0; k < 2; k++) {
			const char *meta = metas[k];
			if (!meta || !safe_rel(meta) || !base)
				continue;
			json_error_t je;
			const char *uri;
			size_t ul, bl = strlen(base);
			if (!(path = kiln_fs_join(dist, meta)))
				return kiln_error_set(e, KILN_E_NOMEM, dist, "out of memory");
			m = json_load_file(path, 0, &je);
			free(path);
			uri = json_string_value(json_object_get(m, "image"));
			ul = uri ? strlen(uri) : 0;
			r->checks++;
			if (!uri || ul < bl + 1 || strcmp(uri + ul - bl, base) ||
			    uri[ul - bl - 1] != '/') {
				if (bad++ < 20)
					rc = problem(r, "%s: image is %s, the reveal mapping says %s", meta,
						     uri ? uri : "(none)", file);
			}
			json_decref(m);
			if (rc)
				return kiln_error_set(e, KILN_E_NOMEM, dist, "out of memory");
		}
		if (asset && safe_rel(asset)) {
			char hex[65];
			struct kiln_error fe;
			const char *want = hashes[kiln_reveal_item(t, start, n)];
			if (!(path = kiln_fs_join(dist, asset)))
				return kiln_error_set(e, KILN_E_NOMEM, dist, "out of memory");
			r->checks++;
			if (kiln_sha256_file(path, hex, &fe) || strcmp(hex, want)) {
				if (mbad++ < 20)
					rc = problem(r, "%s: not the image the reveal mapping says (%s)",
						     asset, file ? file : "?");
			} else {
				r->files++;
			}
			free(path);
			if (rc)
				return kiln_error_set(e, KILN_E_NOMEM, dist, "out of memory");
		}
	}
	if (bad > 20 || mbad > 20)
		rc = problem(r, "... %zu token metadata files and %zu Metaplex images in all do not "
			     "match the reveal mapping", bad, mbad);
	return rc ? kiln_error_set(e, KILN_E_NOMEM, dist, "out of memory") : 0;
}

int kiln_release_verify(const char *dist, struct kiln_verify_result *r, struct kiln_error *e)
{
	json_t *prov = NULL, *ipfs = NULL;
	char (*hashes)[65] = NULL;
	size_t n = 0;
	int rc;
	memset(r, 0, sizeof *r);
	if (!kiln_fs_is_dir(dist))
		return kiln_error_set(e, KILN_E_IO, dist, "not a folder: give the release folder "
				      "(dist/)");
	if ((rc = load_json(dist, "provenance.json", &prov, e)) ||
	    (rc = load_json(dist, "ipfs.json", &ipfs, e)) ||
	    (rc = verify_images(dist, prov, r, &hashes, &n, e)) ||
	    (rc = verify_cids(dist, ipfs, r, e)) ||
	    (rc = verify_mapping(dist, prov, (const char(*)[65])hashes, n, r, e)))
		goto out;
out:
	free(hashes);
	json_decref(prov);
	json_decref(ipfs);
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
