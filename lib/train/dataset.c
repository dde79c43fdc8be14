/* dataset: what a training set holds, as a record anyone can check against the files: every
 * file's path, size and SHA-256 (and, for images, the pHash QA computes, passed in by the
 * caller), and an RFC 6962 Merkle root over sha256sum lines, so one file can later be proven
 * part of the set without publishing the rest.
 *
 * Invariants: paths are relative, '/'-separated, in bytewise order; hidden names (".git",
 * ".DS_Store") are skipped; a symbolic link or special file is refused (a set is the bytes in
 * it, not what a link points at today). Sizes: up to ~100,000 files (one path each in memory). */
#include "kiln/train.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/merkle.h"
#include "util/sha.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

struct names {
	char **v;
	size_t n, cap;
};

static int walk(const char *root, const char *rel, struct names *out, struct kiln_error *e)
{
	char *dir = rel[0] ? kiln_fs_join(root, rel) : kiln_strdup(root);
	DIR *d = dir ? opendir(dir) : NULL;
	struct dirent *de;
	int rc = 0;
	if (!dir)
		return kiln_error_set(e, KILN_E_NOMEM, root, "out of memory");
	if (!d) {
		rc = kiln_error_set(e, KILN_E_IO, dir, "cannot read the folder: %s", strerror(errno));
		goto out;
	}
	while (!rc && (de = readdir(d))) {
		struct stat st;
		char *r, *full;
		if (de->d_name[0] == '.')
			continue;
		r = rel[0] ? kiln_fs_join(rel, de->d_name) : kiln_strdup(de->d_name);
		full = r ? kiln_fs_join(root, r) : NULL;
		if (!full) {
			free(r);
			rc = kiln_error_set(e, KILN_E_NOMEM, root, "out of memory");
			break;
		}
		if (lstat(full, &st)) {
			rc = kiln_error_set(e, KILN_E_IO, full, "cannot stat: %s", strerror(errno));
		} else if (S_ISDIR(st.st_mode)) {
			rc = walk(root, r, out, e);
		} else if (!S_ISREG(st.st_mode)) {
			rc = kiln_error_set(e, KILN_E_IO, full, "not a regular file (a symbolic link "
					    "or special file): a dataset holds files only");
		} else {
			if (out->n == out->cap) {
				size_t nc = out->cap ? out->cap * 2 : 256;
				char **v = kiln_reallocarray(out->v, nc, sizeof *v);
				if (!v) {
					rc = kiln_error_set(e, KILN_E_NOMEM, root, "out of memory");
					goto next;
				}
				out->v = v;
				out->cap = nc;
			}
			out->v[out->n++] = r;
			r = NULL;
		}
next:
		free(r);
		free(full);
	}
out:
	if (d)
		closedir(d);
	free(dir);
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_image(const char *p)
{
	static const char *const ext[] = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".tif",
					  ".tiff", ".bmp"};
	const char *dot = strrchr(p, '.');
	for (size_t i = 0; dot && i < sizeof ext / sizeof *ext; i++)
		if (!strcasecmp(dot, ext[i]))
			return 1;
	return 0;
}

int kiln_dataset_scan(const char *dir, const char *name, const char *license, const char *source,
		      kiln_phash_fn phash, void *user, char **record, char root[65],
		      struct kiln_error *e)
{
	struct names names = {0};
	uint8_t (*leaves)[32] = NULL, r[32];
	json_t *entries = json_array(), *rec = NULL;
	uint64_t bytes = 0;
	int rc;
	*record = NULL;
	if (!entries)
		return kiln_error_set(e, KILN_E_NOMEM, dir, "out of memory");
	if (!kiln_fs_is_dir(dir)) {
		rc = kiln_error_set(e, KILN_E_USAGE, dir, "not a folder");
		goto out;
	}
	if ((rc = walk(dir, "", &names, e)))
		goto out;
	if (!names.n) {
		rc = kiln_error_set(e, KILN_E_USAGE, dir, "the folder holds no files");
		goto out;
	}
	qsort(names.v, names.n, sizeof *names.v, cmp_str);
	if (!(leaves = kiln_calloc(names.n, sizeof *leaves))) {
		rc = kiln_error_set(e, KILN_E_NOMEM, dir, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < names.n; i++) {
		char *full = kiln_fs_join(dir, names.v[i]), hex[65], line[4200];
		struct stat st;
		json_t *o;
		uint64_t ph = 0;
		int has_ph = 0;
		if (!full) {
			rc = kiln_error_set(e, KILN_E_NOMEM, dir, "out of memory");
			goto out;
		}
		rc = kiln_sha256_file(full, hex, e);
		if (!rc && stat(full, &st))
			rc = kiln_error_set(e, KILN_E_IO, full, "cannot stat: %s", strerror(errno));
		if (!rc && phash && is_image(names.v[i])) {
			struct kiln_error pe;
			kiln_error_clear(&pe);
			int prc = phash(full, &ph, user, &pe);
			if (!prc)
				has_ph = 1;
			else if (prc != KILN_E_IMAGE) {
				*e = pe;
				rc = prc;
			}
		}
		free(full);
		if (rc)
			goto out;
		bytes += (uint64_t)st.st_size;
		snprintf(line, sizeof line, "%s  %s", hex, names.v[i]);
		kiln_merkle_leaf(line, strlen(line), leaves[i]);
		o = json_pack("{s:s, s:s, s:I}", "path", names.v[i], "sha256", hex, "bytes",
			      (json_int_t)st.st_size);
		if (o && has_ph) {
			char p[17];
			snprintf(p, sizeof p, "%016llx", (unsigned long long)ph);
			if (json_object_set_new(o, "phash", json_string(p))) {
				json_decref(o);
				o = NULL;
			}
		}
		if (!o || json_array_append_new(entries, o)) {
			rc = kiln_error_set(e, KILN_E_NOMEM, dir, "out of memory");
			goto out;
		}
	}
	kiln_merkle_root((const uint8_t(*)[32])leaves, names.n, r);
	kiln_hex(r, 32, root);
	rec = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:O}", "name", name, "license",
			license, "source", source, "files", (json_int_t)names.n, "bytes",
			(json_int_t)bytes, "merkle_root", root, "merkle_leaf",
			"RFC 6962 leaf per file: the sha256sum line \"<sha256>  <path>\" (no "
			"newline), files in bytewise path order", "entries", entries);
	if (!rec || !(*record = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS)))
		rc = kiln_error_set(e, KILN_E_NOMEM, dir, "out of memory");
out:
	for (size_t i = 0; i < names.n; i++)
		free(names.v[i]);
	free(names.v);
	free(leaves);
	json_decref(entries);
	json_decref(rec);
	return rc;
}
