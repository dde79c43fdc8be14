/* qa/metafolder.c: metadata QA of whole folders (kiln/qa.h): a Sugar assets/ folder (0.png,
 * 0.json, ..., collection.png, collection.json) and a HashLips-style ERC-721 build/json folder
 * (1.json or 1, ..., _metadata.json), with the one-token rules of qa/token.c on every file.
 *
 * Folder layouts: Sugar assets/ (0.png + 0.json ... n-1, collection.png + collection.json);
 * HashLips build/json (1.json ... or 0.json ..., optionally without extension, and the
 * _metadata.json array); ERC-1155 (64 hex digits + .json).
 * Invariants: results come in a deterministic order (by asset number, then collection-wide
 * checks sorted by spelling); every finding about one token's file carries that token
 * (FADD, token_checks), collection-wide ones carry none. Gaps in numbering are reported as
 * ranges, so a stray "99999.json" costs one finding, not 99,999. Drift and uniqueness sort
 * rows once (n log n); a token's trait-set key is built in one pass (issue 19).
 * Sizes: collections up to ~100,000 tokens of a few KB each; memory is one parsed token at a
 * time plus one row per string attribute and one key per token.
 */
#include "qa/metacheck.h"
#include "kiln/plan.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/path.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define MAX_JSON_BYTES ((size_t)64 << 20)

/* ---- folders -------------------------------------------------------------------------- */

enum kind { K_JSON, K_IMAGE, K_ANIM, K_NOEXT, K_BADIMAGE };

struct entry {
	unsigned long long idx;
	int kind;
	char *name;
};

struct attr_row {
	char *ntype, *type;   /* normalised and raw trait_type */
	char *nvalue, *value; /* normalised and raw value (string values only, else NULL) */
	const char *file;     /* points into the entry list */
	size_t attr;          /* index in attributes[] */
};

/* A token's trait set in one canonical string (sorted "trait_type US value-as-JSON" parts),
 * for finding two tokens that are the same NFT to a buyer. */
struct trait_set {
	char *key;
	const char *file;     /* points into the entry list */
	unsigned long long idx;
};

struct folder {
	const char *dir;
	const struct kiln_metacheck_opts *o; /* the item map (never NULL) */
	struct kiln_findings *out;
	struct entry *ents;
	size_t nents, cap;
	struct attr_row *rows;
	size_t nrows, rcap;
	struct trait_set *sets;
	size_t nsets, scap;
	int rc; /* the first KILN_E_NOMEM */
};

/* sugar src/upload/assets.rs get_asset_pairs: N.json pairs with the one file matching
 * ^N\.((jpg)|(jpeg)|(gif)|(png))$ (case-insensitive) and optionally one matching
 * ^N\.((mp3)|(mp4)|(mov)|(webm)|(glb))$; any other image type leaves the asset without an
 * image ("Couldn't find an image filename at index N"). */
static const char *const IMAGE_EXT[] = {"png", "jpg", "jpeg", "gif", NULL};
static const char *const OTHER_IMAGE_EXT[] = {"webp", "svg", "avif", "bmp", "tif", "tiff",
					      "heic", NULL};
static const char *const ANIM_EXT[] = {"mp3", "mp4", "mov", "webm", "glb", NULL};

static int is_ext(const char *ext, const char *const *list)
{
	for (; *list; list++)
		if (!strcasecmp(ext, *list))
			return 1;
	return 0;
}

static int add_entry(struct folder *f, unsigned long long idx, int kind, const char *name)
{
	if (f->nents == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 64;
		struct entry *v = kiln_reallocarray(f->ents, cap, sizeof *v);
		if (!v)
			return KILN_E_NOMEM;
		f->ents = v, f->cap = cap;
	}
	f->ents[f->nents].name = kiln_strdup(name);
	if (!f->ents[f->nents].name)
		return KILN_E_NOMEM;
	f->ents[f->nents].idx = idx;
	f->ents[f->nents].kind = kind;
	f->nents++;
	return 0;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	if (x->idx != y->idx)
		return x->idx < y->idx ? -1 : 1;
	if (x->kind != y->kind)
		return x->kind - y->kind;
	return strcmp(x->name, y->name);
}

/* "123" -> 123; -1 when empty, not all digits or longer than 15 digits. */
static long long parse_index(const char *s, size_t n)
{
	long long v = 0;
	if (n == 0 || n > 15)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

static void folder_release(struct folder *f)
{
	for (size_t i = 0; i < f->nents; i++)
		free(f->ents[i].name);
	free(f->ents);
	for (size_t i = 0; i < f->nrows; i++) {
		free(f->rows[i].ntype), free(f->rows[i].type);
		free(f->rows[i].nvalue), free(f->rows[i].value);
	}
	free(f->rows);
	for (size_t i = 0; i < f->nsets; i++)
		free(f->sets[i].key);
	free(f->sets);
}

static long long erc1155_index(const char *nm);

/* The id an ERC-1155 name's stem spells (64 lowercase hex digits, whatever the extension:
 * "…05.JSON" is a misnamed file of token 5); -1 otherwise. */
static long long erc1155_stem(const char *nm)
{
	char buf[70];
	if (strcspn(nm, ".") != 64)
		return -1;
	memcpy(buf, nm, 64);
	memcpy(buf + 64, ".json", 6);
	return erc1155_index(buf);
}

/* The token a file of the folder concerns: file N (the number before the first '.'; an
 * ERC-1155 name's id) is token N, or item_ids[N] with an item map. Collection-wide checks
 * (collection.*: drift, uniqueness) and unnumbered files (collection.json, _metadata.json)
 * concern no single token. */
static int folder_item(const struct folder *f, const char *check, const char *file,
		       uint64_t *item)
{
	long long k;
	if (!file || !*file || !strncmp(check, "collection.", 11))
		return 0;
	k = f->o->erc1155 ? erc1155_stem(file) : parse_index(file, strcspn(file, "."));
	if (k < 0)
		return 0;
	if (f->o->item_ids) {
		if ((unsigned long long)k >= f->o->nitem_ids)
			return 0;
		*item = f->o->item_ids[k];
	} else {
		*item = (uint64_t)k;
	}
	return 1;
}

/* A finding of the folder, tied to the token its file concerns (the list's current token is
 * put back after). */
#define FADD(f, check, sev, file, ...)                                                  \
	do {                                                                            \
		if (!(f)->rc) {                                                         \
			uint64_t it_ = 0;                                               \
			int had_ = (f)->out->cur_has_item;                              \
			uint64_t was_ = (f)->out->cur_item;                             \
			int has_ = folder_item((f), (check), (file), &it_);             \
			kiln_findings_set_item((f)->out, has_, it_);                    \
			(f)->rc = kiln_findings_add((f)->out, check, sev, file, __VA_ARGS__); \
			kiln_findings_set_item((f)->out, had_, was_);                   \
		}                                                                       \
	} while (0)

/* Check one token json with the list's current token set to the one its name concerns. */
static int token_checks(struct folder *f, const json_t *root, unsigned standards,
			const char *name, struct kiln_error *e)
{
	uint64_t it = 0;
	int has = folder_item(f, "token.", name, &it), rc;
	kiln_findings_set_item(f->out, has, it);
	rc = kiln_metacheck_token(root, standards, name, f->out, e);
	kiln_findings_set_item(f->out, 0, 0);
	return rc;
}

/* Read and parse dir/name; a parse problem is a finding (*root = NULL then), and so is a file
 * that cannot be read as one: a FIFO, device, socket or folder (token.not_a_file, never
 * opened: a FIFO would block forever), one over MAX_JSON_BYTES (token.too_large) or one that
 * fails to read (token.unreadable). Only running out of memory stops the folder's checks. */
static int load_json(struct folder *f, const char *name, json_t **root, struct kiln_error *e)
{
	struct kiln_buf b;
	struct kiln_error fe;
	struct stat st;
	char *path = kiln_fs_join(f->dir, name);
	int rc = 0;
	*root = NULL;
	if (!path)
		return kiln_error_set(e, KILN_E_NOMEM, name, "out of memory");
	kiln_buf_init(&b, 2 * MAX_JSON_BYTES);
	kiln_error_clear(&fe);
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		FADD(f, "token.not_a_file", KILN_SEV_ERROR, name, NULL, "is %s, not a regular file: "
		     "not read (a token's metadata is a file)", kiln_path_kind((unsigned)st.st_mode));
	} else if (stat(path, &st) == 0 && (uint64_t)st.st_size > MAX_JSON_BYTES) {
		FADD(f, "token.too_large", KILN_SEV_ERROR, name, NULL, "is more than %zu MiB (%llu "
		     "bytes), the most kiln reads for one metadata file: not read",
		     MAX_JSON_BYTES >> 20, (unsigned long long)st.st_size);
	} else if ((rc = kiln_fs_read_limited(path, &b, MAX_JSON_BYTES, 0, &fe))) {
		if (rc == KILN_E_NOMEM) {
			*e = fe;
		} else {
			rc = 0;
			FADD(f, "token.unreadable", KILN_SEV_ERROR, name, NULL, "cannot be read: %s",
			     fe.msg);
		}
	} else {
		uint64_t it = 0;
		int has = folder_item(f, "token.", name, &it);
		kiln_findings_set_item(f->out, has, it);
		*root = kiln_mc_parse(b.data ? b.data : "", b.len, name, f->out, &rc);
		kiln_findings_set_item(f->out, 0, 0);
		if (rc)
			rc = kiln_error_set(e, KILN_E_NOMEM, name, "out of memory");
	}
	kiln_buf_release(&b);
	free(path);
	if (!rc && f->rc)
		rc = kiln_error_set(e, KILN_E_NOMEM, name, "out of memory");
	return rc;
}

/* Remember the token's attributes (string trait_type) for the drift check. */
static int collect_attrs(struct folder *f, const json_t *root, const char *file)
{
	const json_t *attrs = json_object_get(root, "attributes"), *a;
	size_t i;
	if (!json_is_array(attrs))
		return 0;
	json_array_foreach(attrs, i, a) {
		const json_t *tt = json_object_get(a, "trait_type"), *v = json_object_get(a, "value");
		struct attr_row *r;
		if (!json_is_string(tt))
			continue;
		if (f->nrows == f->rcap) {
			size_t cap = f->rcap ? f->rcap * 2 : 256;
			struct attr_row *nv = kiln_reallocarray(f->rows, cap, sizeof *nv);
			if (!nv)
				return KILN_E_NOMEM;
			f->rows = nv, f->rcap = cap;
		}
		r = &f->rows[f->nrows++];
		memset(r, 0, sizeof *r);
		r->file = file;
		r->attr = i;
		r->type = kiln_strdup(json_string_value(tt));
		r->ntype = kiln_rarity_normalize(json_string_value(tt));
		if (json_is_string(v)) {
			r->value = kiln_strdup(json_string_value(v));
			r->nvalue = kiln_rarity_normalize(json_string_value(v));
		}
		if (!r->type || !r->ntype || (json_is_string(v) && (!r->value || !r->nvalue)))
			return KILN_E_NOMEM;
	}
	return 0;
}

static int cmp_row_type(const void *a, const void *b)
{
	const struct attr_row *x = a, *y = b;
	int c = strcmp(x->ntype, y->ntype);
	return c ? c : strcmp(x->type, y->type);
}

/* By normalised type, then value (rows without a string value last), then raw value. */
static int cmp_row_value(const void *a, const void *b)
{
	const struct attr_row *x = a, *y = b;
	int c = strcmp(x->ntype, y->ntype);
	if (c)
		return c;
	if (!x->nvalue || !y->nvalue)
		return (x->nvalue == NULL) - (y->nvalue == NULL);
	c = strcmp(x->nvalue, y->nvalue);
	return c ? c : strcmp(x->value, y->value);
}

static const char *row_field(const struct attr_row *r, int field)
{
	return field ? r->value : r->type;
}

/* Rows [lo, hi) share a normal form: report every spelling but the most used, one finding per
 * spelling at its first file (by name). field: 0 trait_type, 1 value. */
static void report_spellings(struct folder *f, size_t lo, size_t hi, int field)
{
	size_t best = lo, bestn = 0, i, j;
	char p[96], b1[64], b2[64];
	for (i = lo; i < hi; i = j) {
		for (j = i; j < hi && !strcmp(row_field(&f->rows[j], field), row_field(&f->rows[i], field));
		     j++)
			;
		if (j - i > bestn)
			best = i, bestn = j - i;
	}
	for (i = lo; i < hi; i = j) {
		const char *s = row_field(&f->rows[i], field), *bs = row_field(&f->rows[best], field);
		const struct attr_row *first = &f->rows[i];
		for (j = i; j < hi && !strcmp(row_field(&f->rows[j], field), s); j++)
			if (strcmp(f->rows[j].file, first->file) < 0)
				first = &f->rows[j];
		if (i == best)
			continue;
		snprintf(p, sizeof p, "attributes[%zu].%s", first->attr, field ? "value" : "trait_type");
		if (field)
			FADD(f, "collection.trait_value_drift", KILN_SEV_WARNING, first->file, p,
			     "trait \"%s\" has value \"%s\" in %zu token(s) but \"%s\" in %zu: values "
			     "that differ only in case or surrounding spaces split one value in two "
			     "(and its rarity); use one spelling", first->type, kiln_mc_clip(s, b1, sizeof b1),
			     j - i, kiln_mc_clip(bs, b2, sizeof b2), bestn);
		else
			FADD(f, "collection.trait_type_drift", KILN_SEV_WARNING, first->file, p,
			     "trait_type \"%s\" (%zu use(s)) differs only in case or spaces from \"%s\" "
			     "(%zu use(s)): marketplaces show two traits; use one spelling",
			     kiln_mc_clip(s, b1, sizeof b1), j - i, kiln_mc_clip(bs, b2, sizeof b2), bestn);
	}
}

static void check_drift(struct folder *f)
{
	size_t i, j;
	if (!f->nrows)
		return;
	qsort(f->rows, f->nrows, sizeof *f->rows, cmp_row_type);
	for (i = 0; i < f->nrows; i = j) {
		for (j = i; j < f->nrows && !strcmp(f->rows[j].ntype, f->rows[i].ntype); j++)
			;
		if (strcmp(f->rows[i].type, f->rows[j - 1].type))
			report_spellings(f, i, j, 0);
	}
	qsort(f->rows, f->nrows, sizeof *f->rows, cmp_row_value);
	for (i = 0; i < f->nrows; i = j) {
		if (!f->rows[i].nvalue) {
			j = i + 1;
			continue;
		}
		for (j = i; j < f->nrows && f->rows[j].nvalue &&
			    !strcmp(f->rows[j].ntype, f->rows[i].ntype) &&
			    !strcmp(f->rows[j].nvalue, f->rows[i].nvalue); j++)
			;
		if (strcmp(f->rows[i].value, f->rows[j - 1].value))
			report_spellings(f, i, j, 1);
	}
}

static int cmp_part(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Remember the token's trait set (tokens without attributes have none to compare). */
static int collect_set(struct folder *f, const json_t *root, const char *file,
		       unsigned long long idx)
{
	const json_t *attrs = json_object_get(root, "attributes"), *a;
	size_t n = json_array_size(attrs), i, np = 0, len = 1;
	char **parts, *key = NULL;
	int rc = KILN_E_NOMEM;
	if (!json_is_array(attrs) || !n)
		return 0;
	if (!(parts = kiln_calloc(n, sizeof *parts)))
		return KILN_E_NOMEM;
	json_array_foreach(attrs, i, a) {
		const json_t *v = json_object_get(a, "value");
		const char *tt = json_string_value(json_object_get(a, "trait_type"));
		char *vs = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
		if (v && !vs)
			goto out;
		{
			size_t lt = strlen(tt ? tt : ""), lv = strlen(vs ? vs : "");
			parts[np] = kiln_malloc(lt + lv + 2);
			if (parts[np]) {
				memcpy(parts[np], tt ? tt : "", lt);
				parts[np][lt] = '\x1f';
				memcpy(parts[np] + lt + 1, vs ? vs : "", lv + 1);
			}
		}
		free(vs);
		if (!parts[np])
			goto out;
		len += strlen(parts[np++]) + 1;
	}
	qsort(parts, np, sizeof *parts, cmp_part);
	/* one pass with a running end: strcat rescanned the key for every part (issue 19) */
	if (!(key = kiln_malloc(len)))
		goto out;
	{
		char *end = key;
		for (i = 0; i < np; i++) {
			size_t pl = strlen(parts[i]);
			memcpy(end, parts[i], pl);
			end += pl;
			*end++ = '\x1e';
		}
		*end = 0;
	}
	if (f->nsets == f->scap) {
		size_t cap = f->scap ? f->scap * 2 : 256;
		struct trait_set *nv = kiln_reallocarray(f->sets, cap, sizeof *nv);
		if (!nv)
			goto out;
		f->sets = nv, f->scap = cap;
	}
	f->sets[f->nsets].key = key;
	f->sets[f->nsets].file = file;
	f->sets[f->nsets].idx = idx;
	f->nsets++;
	key = NULL;
	rc = 0;
out:
	for (i = 0; i < np; i++)
		free(parts[i]);
	free(parts);
	free(key);
	return rc;
}

static int cmp_set(const void *a, const void *b)
{
	const struct trait_set *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	if (c)
		return c;
	if (x->idx != y->idx)
		return x->idx < y->idx ? -1 : 1;
	return strcmp(x->file, y->file);
}

/* Two tokens with the same trait set: each later one names the first (sorting, not pairs). */
static void check_unique(struct folder *f)
{
	size_t i, first = 0;
	if (f->nsets > 1)
		qsort(f->sets, f->nsets, sizeof *f->sets, cmp_set);
	for (i = 1; i < f->nsets; i++) {
		if (strcmp(f->sets[i].key, f->sets[first].key)) {
			first = i;
			continue;
		}
		FADD(f, "collection.unique", KILN_SEV_ERROR, f->sets[i].file, "attributes", "has the "
		     "same traits as %s: two tokens would be the same NFT to a buyer (and share "
		     "their rarity); change one", f->sets[first].file);
	}
}

/* Gaps in the sorted entries' numbering from `first`: one finding per missing range. */
static void check_numbering(struct folder *f, unsigned long long first, const char *check,
			    const char *what)
{
	unsigned long long expect = first;
	for (size_t i = 0; i < f->nents; i++) {
		unsigned long long k = f->ents[i].idx;
		if (k > expect) {
			if (k - 1 == expect)
				FADD(f, check, KILN_SEV_ERROR, NULL, NULL, "%s %llu is missing: the "
				     "numbering must run from %llu without gaps; add it or renumber",
				     what, expect, first);
			else
				FADD(f, check, KILN_SEV_ERROR, NULL, NULL, "%ss %llu..%llu are missing "
				     "(%llu numbers): the numbering must run from %llu without gaps; add "
				     "them or renumber", what, expect, k - 1, k - expect, first);
		}
		if (k >= expect)
			expect = k + 1;
	}
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The folder's regular files (not hidden, not folders), sorted by name. */
static int list_dir(const char *dir, char ***names, size_t *n, struct kiln_error *e)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t cap = 0;
	*names = NULL;
	*n = 0;
	if (!d)
		return kiln_error_set(e, KILN_E_IO, dir, "cannot read the folder: %s",
				      strerror(errno));
	while ((de = readdir(d))) {
		char *path;
		int isdir;
		if (de->d_name[0] == '.')
			continue;
		path = kiln_fs_join(dir, de->d_name);
		if (!path)
			goto nomem;
		isdir = kiln_fs_is_dir(path);
		free(path);
		if (isdir)
			continue;
		if (*n == cap) {
			char **v;
			cap = cap ? cap * 2 : 64;
			v = kiln_reallocarray(*names, cap, sizeof *v);
			if (!v)
				goto nomem;
			*names = v;
		}
		(*names)[*n] = kiln_strdup(de->d_name);
		if (!(*names)[*n])
			goto nomem;
		(*n)++;
	}
	closedir(d);
	if (*n)
		qsort(*names, *n, sizeof **names, cmp_str);
	return 0;
nomem:
	closedir(d);
	free_names(*names, *n);
	*names = NULL;
	*n = 0;
	return kiln_error_set(e, KILN_E_NOMEM, dir, "out of memory");
}

/* The Sugar-specific checks on one parsed asset json whose image file is `image`. */
static void sugar_token(struct folder *f, const json_t *root, const char *jname,
			const char *image)
{
	const json_t *img = json_object_get(root, "image");
	const json_t *files = json_object_get(json_object_get(root, "properties"), "files"), *fe;
	size_t i;
	int listed = 0;
	char b[64];
	if (!image || !json_is_string(img))
		return;
	if (strcmp(json_string_value(img), image)) {
		FADD(f, "sugar.image_mismatch", KILN_SEV_ERROR, jname, "image", "\"image\" is \"%s\" "
		     "but this asset's image file is %s: Sugar uploads %s and puts its link in "
		     "\"image\", so \"image\" must name that file",
		     kiln_mc_clip(json_string_value(img), b, sizeof b), image, image);
		return;
	}
	json_array_foreach(files, i, fe)
		if (json_is_string(json_object_get(fe, "uri")) &&
		    !strcmp(json_string_value(json_object_get(fe, "uri")), image))
			listed = 1;
	if (json_is_array(files) && json_array_size(files) && !listed)
		FADD(f, "sugar.files_image", KILN_SEV_WARNING, jname, "properties.files", "no "
		     "properties.files entry has uri \"%s\": list the image file there too", image);
}

/* Check one Sugar json (token or collection: drift 0). Returns 0 or a KILN_E_* code. */
static int sugar_json(struct folder *f, const char *js, const char *im, int drift,
		      unsigned long long idx, struct kiln_error *e)
{
	json_t *root = NULL;
	int rc = load_json(f, js, &root, e);
	if (rc || !root)
		return rc;
	rc = token_checks(f, root, KILN_META_METAPLEX, js, e);
	if (!rc) {
		sugar_token(f, root, js, im);
		if (drift && (collect_attrs(f, root, js) || collect_set(f, root, js, idx)))
			rc = kiln_error_set(e, KILN_E_NOMEM, js, "out of memory");
	}
	json_decref(root);
	return rc;
}

int kiln_metacheck_sugar_folder(const char *dir, struct kiln_findings *out, struct kiln_error *e)
{
	return kiln_metacheck_sugar_folder_opts(dir, NULL, out, e);
}

int kiln_metacheck_sugar_folder_opts(const char *dir, const struct kiln_metacheck_opts *o,
				     struct kiln_findings *out, struct kiln_error *e)
{
	static const struct kiln_metacheck_opts none;
	struct kiln_metacheck_opts map = none;
	struct folder f = {.dir = dir, .out = out, .o = &map};
	char **names = NULL;
	const char *coll_json = NULL, *coll_img = NULL;
	size_t nnames = 0, i, j;
	int rc;

	if (o) {
		map.item_ids = o->item_ids;
		map.nitem_ids = o->nitem_ids;
	}
	rc = list_dir(dir, &names, &nnames, e);
	if (rc)
		return rc;
	if (!nnames)
		FADD(&f, "sugar.empty", KILN_SEV_ERROR, NULL, NULL, "Missing or empty assets "
		     "directory: put 0.png + 0.json, 1.png + 1.json, ... in %s", dir);
	for (i = 0; i < nnames && !f.rc; i++) {
		const char *nm = names[i], *dot = strrchr(nm, '.');
		size_t blen = dot ? (size_t)(dot - nm) : strlen(nm);
		const char *ext = dot ? dot + 1 : "";
		long long idx = parse_index(nm, blen);
		int kind = !strcasecmp(ext, "json") ? K_JSON : is_ext(ext, IMAGE_EXT) ? K_IMAGE :
			   is_ext(ext, ANIM_EXT) ? K_ANIM : is_ext(ext, OTHER_IMAGE_EXT) ? K_BADIMAGE
			   : -1;
		if (kind == K_BADIMAGE && (idx >= 0 || (blen == 10 && !strncmp(nm, "collection", 10))))
			FADD(&f, "sugar.image_extension", KILN_SEV_ERROR, nm, NULL, "Sugar pairs an "
			     "asset only with a .png, .jpg, .jpeg or .gif image (its pattern is "
			     "N.(jpg|jpeg|gif|png)), so it does not see this file and stops with "
			     "\"Couldn't find an image filename\": convert it to PNG");
		if (kind == K_BADIMAGE && idx < 0)
			continue;
		if (blen == 10 && !strncmp(nm, "collection", 10) && (kind == K_JSON || kind == K_IMAGE)) {
			const char **slot = kind == K_JSON ? &coll_json : &coll_img;
			if (*slot)
				FADD(&f, "sugar.numbering_repeat", KILN_SEV_ERROR, nm, NULL, "the "
				     "collection already has %s: keep one", *slot);
			else
				*slot = nm;
			continue;
		}
		if (idx < 0 || kind < 0) {
			FADD(&f, "sugar.unknown_file", KILN_SEV_WARNING, nm, NULL, "Sugar expects only "
			     "N.json, N.<image>, an optional N.<animation> and collection.json + "
			     "collection.<image> here: move or rename this file");
			continue;
		}
		if (blen > 1 && nm[0] == '0')
			FADD(&f, "sugar.leading_zero", KILN_SEV_ERROR, nm, NULL, "the number has a "
			     "leading zero: Sugar names assets 0, 1, 2, ... (rename to %lld.%s)", idx,
			     ext);
		if (!f.rc)
			f.rc = add_entry(&f, (unsigned long long)idx, kind, nm);
	}
	if (f.rc)
		goto nomem;
	if (f.nents)
		qsort(f.ents, f.nents, sizeof *f.ents, cmp_entry);
	check_numbering(&f, 0, "sugar.numbering_gap", "asset");
	/* per asset number: one json, one image, at most one animation */
	for (i = 0; i < f.nents && !f.rc; i = j) {
		const char *js = NULL, *im = NULL, *an = NULL, *bad = NULL;
		unsigned long long k = f.ents[i].idx;
		int two_images = 0;
		for (j = i; j < f.nents && f.ents[j].idx == k; j++) {
			if (f.ents[j].kind == K_BADIMAGE) { /* reported above */
				bad = f.ents[j].name;
				continue;
			}
			const char **slot = f.ents[j].kind == K_JSON ? &js :
					    f.ents[j].kind == K_IMAGE ? &im : &an;
			if (*slot) {
				FADD(&f, "sugar.numbering_repeat", KILN_SEV_ERROR, f.ents[j].name, NULL,
				     "asset %llu already has %s: keep one file per number and kind",
				     k, *slot);
				two_images |= f.ents[j].kind == K_IMAGE;
			} else {
				*slot = f.ents[j].name;
			}
		}
		/* Sugar pairs by spelling (its pattern is the json's own stem): 00.json reads as
		 * asset 0 but pairs only with 00.png, never with 0.png */
		if (js && im && strcspn(js, ".") != strcspn(im, "."))
			FADD(&f, "sugar.missing_image", KILN_SEV_ERROR, js, NULL, "Sugar pairs %s only "
			     "with an image of the same name (%.*s.png, ...), not with %s: name both "
			     "%llu.*", js, (int)strcspn(js, "."), js, im, k);
		else if (js && !im && !bad)
			FADD(&f, "sugar.missing_image", KILN_SEV_ERROR, js, NULL, "no image file for "
			     "asset %llu: add %llu.png (or .jpg, .jpeg, .gif) next to %s", k, k, js);
		if (!js)
			FADD(&f, "sugar.missing_json", KILN_SEV_ERROR, im ? im : an ? an : bad, NULL,
			     "no %llu.json for asset %llu: every asset needs its metadata file", k, k);
		/* with two images, which one "image" should name is the repeat's question */
		if (js && !f.rc && (rc = sugar_json(&f, js, two_images ? NULL : im, 1, k, e)))
			goto out;
	}
	if (coll_json && !coll_img)
		FADD(&f, "sugar.collection_unpaired", KILN_SEV_ERROR, coll_json, NULL, "collection.json "
		     "has no collection image: add collection.png (or .jpg, .jpeg, .gif)");
	if (coll_img && !coll_json)
		FADD(&f, "sugar.collection_unpaired", KILN_SEV_ERROR, coll_img, NULL, "%s has no "
		     "collection.json: add it (same fields as an asset json)", coll_img);
	if (nnames && !coll_json && !coll_img)
		FADD(&f, "sugar.collection_missing", KILN_SEV_WARNING, NULL, NULL, "MISSING COLLECTION "
		     "FILES IN ASSETS FOLDER: without collection.json + collection.png Sugar cannot "
		     "set the candy machine's collection automatically");
	if (coll_json && !f.rc && (rc = sugar_json(&f, coll_json, coll_img, 0, 0, e)))
		goto out;
	if (!f.rc)
		check_drift(&f);
	if (!f.rc)
		check_unique(&f);
	if (!f.rc)
		goto out;
nomem:
	rc = kiln_error_set(e, KILN_E_NOMEM, dir, "out of memory while checking the folder");
out:
	folder_release(&f);
	free_names(names, nnames);
	return rc;
}

/* K when uri's last path segment is "K" or "K.<ext>"; -1 otherwise. */
static long long uri_number(const char *uri)
{
	const char *slash = strrchr(uri, '/'), *seg = slash ? slash + 1 : uri;
	return parse_index(seg, strcspn(seg, ".?#"));
}

/* The image files a folder's token JSON must point at: number -> file name, sorted. */
struct image_files {
	struct entry *v;
	size_t n;
};

/* Among the files numbered k (an image and the file beside it: 1.svg and 1.png), the one a
 * URI's last segment names, else the first (NULL: none). */
static const char *image_file_named(const struct image_files *im, unsigned long long k,
				    const char *seg, size_t seglen)
{
	size_t lo = 0, hi = im->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (im->v[mid].idx < k)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < im->n && im->v[i].idx == k; i++)
		if (strlen(im->v[i].name) == seglen && !strncmp(im->v[i].name, seg, seglen))
			return im->v[i].name;
	return lo < im->n && im->v[lo].idx == k ? im->v[lo].name : NULL;
}

/* What one token's image URI must be: token k (position t) shows image `want`. */
struct image_want {
	unsigned long long want;
	int reveal;                 /* want comes from the starting index */
	unsigned long long si;
	const char *base;           /* NULL: any location */
	const struct image_files *files; /* NULL: the files are not known */
};

static void check_image_uri(struct folder *f, const char *nm, unsigned long long k,
			    const char *u, const struct image_want *w)
{
	const char *slash = strrchr(u, '/'), *seg = slash ? slash + 1 : u;
	size_t seglen = strcspn(seg, "?#"), bl = w->base ? strlen(w->base) : 0;
	long long got = uri_number(u);
	const char *file = w->files ? image_file_named(w->files, w->want, seg, seglen) : NULL;
	char b[64], why[96] = "";
	if (w->reveal)
		snprintf(why, sizeof why, " (starting index %llu: token at position t shows image "
			 "t + %llu)", w->si, w->si);
	if (w->base && (strncmp(u, w->base, bl) || u[bl] != '/' || strchr(u + bl + 1, '/')))
		FADD(f, "erc721.image_base", KILN_SEV_ERROR, nm, "image", "\"%s\" is not in the "
		     "images folder %s/: the URI would fetch some other file (or nothing); point it "
		     "at %s/<N>.<ext>", kiln_mc_clip(u, b, sizeof b), w->base, w->base);
	if (got >= 0 && (unsigned long long)got != w->want)
		FADD(f, "erc721.image_mismatch", KILN_SEV_ERROR, nm, "image", "token %llu's image "
		     "\"%s\" ends in the number %lld: it should show image %llu%s", k,
		     kiln_mc_clip(u, b, sizeof b), got, w->want, why);
	else if (got < 0 && w->files)
		FADD(f, "erc721.image_mismatch", KILN_SEV_ERROR, nm, "image", "token %llu's image "
		     "\"%s\" does not end in an image file name: it should end in /%s", k,
		     kiln_mc_clip(u, b, sizeof b), file ? file : "<N>.<ext>");
	else if (file && (seglen != strlen(file) || strncmp(seg, file, seglen)))
		FADD(f, "erc721.image_extension", KILN_SEV_ERROR, nm, "image", "token %llu's image "
		     "\"%s\" names %.*s but the file is %s: the URI must name the file exactly "
		     "(gateways serve no other extension)", k, kiln_mc_clip(u, b, sizeof b), (int)seglen, seg,
		     file);
}

/* One token file: the ERC-721 checks, its image URI, its _metadata.json entry. */
static int erc721_token(struct folder *f, const char *nm, unsigned long long k, const json_t *all,
			const struct image_want *w, struct kiln_error *e)
{
	json_t *root = NULL, *img, *ed, *el;
	size_t ai;
	int rc, inall = 0;
	rc = load_json(f, nm, &root, e);
	if (rc || !root)
		return rc;
	rc = token_checks(f, root, KILN_META_ERC721, nm, e);
	if (!rc && (collect_attrs(f, root, nm) || collect_set(f, root, nm, k)))
		rc = kiln_error_set(e, KILN_E_NOMEM, nm, "out of memory");
	if (rc)
		goto out;
	img = json_object_get(root, "image");
	if (json_is_string(img))
		check_image_uri(f, nm, k, json_string_value(img), w);
	ed = json_object_get(root, "edition");
	if (kiln_mc_is_number(ed) && json_number_value(ed) != (double)k)
		FADD(f, "hashlips.edition", KILN_SEV_WARNING, nm, "edition", "edition is %g but the "
		     "file is token %llu: regenerate or renumber", json_number_value(ed), k);
	json_array_foreach(all, ai, el) {
		const json_t *ee = json_object_get(el, "edition");
		if (kiln_mc_is_number(ee) && json_number_value(ee) == (double)k) {
			inall = 1;
			if (!json_equal(el, root))
				FADD(f, "hashlips.metadata_mismatch", KILN_SEV_WARNING, nm, "",
				     "_metadata.json's entry for edition %llu differs from %s: update one "
				     "from the other (HashLips' update scripts rewrite both)", k, nm);
			break;
		}
	}
	if (all && !inall)
		FADD(f, "hashlips.metadata_mismatch", KILN_SEV_WARNING, nm, "", "_metadata.json has no "
		     "entry with edition %llu: regenerate it", k);
out:
	json_decref(root);
	return rc;
}

/* An ERC-1155 file name: 64 lowercase hex digits + ".json" whose value fits 48 bits (token
 * ids beyond that are not kiln's); -1 otherwise. */
static long long erc1155_index(const char *nm)
{
	long long v = 0;
	if (strlen(nm) != 69 || strcmp(nm + 64, ".json"))
		return -1;
	for (int i = 0; i < 64; i++) {
		int d = nm[i] >= '0' && nm[i] <= '9' ? nm[i] - '0' :
			nm[i] >= 'a' && nm[i] <= 'f' ? nm[i] - 'a' + 10 : -1;
		if (d < 0 || (i < 52 && d))
			return -1;
		v = v * 16 + d;
	}
	return v;
}

/* The numbered image files of images_dir (any extension but .json). */
static int list_images(const char *dir, struct image_files *im, struct kiln_error *e)
{
	char **names = NULL;
	size_t n = 0, cap = 0;
	int rc = list_dir(dir, &names, &n, e);
	im->v = NULL;
	im->n = 0;
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		const char *dot = strrchr(names[i], '.');
		long long k = parse_index(names[i], dot ? (size_t)(dot - names[i]) : strlen(names[i]));
		if (k < 0 || !dot || !strcasecmp(dot, ".json"))
			continue;
		if (im->n == cap) {
			struct entry *v;
			cap = cap ? cap * 2 : 64;
			if (!(v = kiln_reallocarray(im->v, cap, sizeof *v)))
				goto nomem;
			im->v = v;
		}
		im->v[im->n].idx = (unsigned long long)k;
		im->v[im->n].kind = K_IMAGE;
		im->v[im->n].name = names[i];
		names[i] = NULL;
		im->n++;
	}
	free_names(names, n);
	if (im->n)
		qsort(im->v, im->n, sizeof *im->v, cmp_entry);
	return 0;
nomem:
	free_names(names, n);
	for (size_t i = 0; i < im->n; i++)
		free(im->v[i].name);
	free(im->v);
	im->v = NULL;
	im->n = 0;
	return kiln_error_set(e, KILN_E_NOMEM, dir, "out of memory");
}

int kiln_metacheck_folder_erc721(const char *dir, struct kiln_findings *out,
				 struct kiln_error *e)
{
	return kiln_metacheck_folder_erc721_opts(dir, NULL, out, e);
}

int kiln_metacheck_folder_erc721_opts(const char *dir, const struct kiln_metacheck_opts *o,
				      struct kiln_findings *out, struct kiln_error *e)
{
	static const struct kiln_metacheck_opts none;
	struct folder f = {.dir = dir, .out = out, .o = o ? o : &none};
	struct image_files ims = {NULL, 0};
	unsigned long long *nums = NULL;
	char **names = NULL;
	const char *meta = NULL;
	json_t *all = NULL;
	size_t nnames = 0, nnums = 0, i, j, pos;
	int rc;

	if (!o)
		o = &none;
	rc = list_dir(dir, &names, &nnames, e);
	if (rc)
		return rc;
	if (o->images_dir && (rc = list_images(o->images_dir, &ims, e)))
		goto out;
	for (i = 0; i < nnames && !f.rc; i++) {
		const char *nm = names[i], *dot = strrchr(nm, '.');
		size_t blen = dot ? (size_t)(dot - nm) : strlen(nm);
		long long idx = o->erc1155 ? erc1155_index(nm) : parse_index(nm, blen);
		if (!strcmp(nm, "_metadata.json") && !o->erc1155) {
			meta = nm;
			continue;
		}
		if (o->erc1155 && idx < 0) {
			FADD(&f, "erc1155.file_name", KILN_SEV_ERROR, nm, NULL, "ERC-1155 clients "
			     "replace {id} in the URI with the id as 64 lowercase hex digits (no 0x): "
			     "a token's file must be named like that, with .json");
			continue;
		}
		if (idx < 0 || (dot && strcasecmp(dot + 1, "json"))) {
			FADD(&f, "erc721.unknown_file", KILN_SEV_WARNING, nm, NULL, "expected only N.json "
			     "(or N) token files and _metadata.json here: move or rename this file");
			continue;
		}
		if (!o->erc1155 && blen > 1 && nm[0] == '0')
			FADD(&f, "erc721.leading_zero", KILN_SEV_ERROR, nm, NULL, "the token number has a "
			     "leading zero: tokenURI(%lld) asks for %lld%s, not %s", idx, idx,
			     dot ? ".json" : "", nm);
		if (!f.rc)
			f.rc = add_entry(&f, (unsigned long long)idx, dot ? K_JSON : K_NOEXT, nm);
	}
	if (f.rc)
		goto nomem;
	if (!f.nents)
		FADD(&f, "erc721.empty", KILN_SEV_ERROR, NULL, NULL, "no token metadata files (N.json "
		     "or N) in %s", dir);
	if (f.nents) {
		qsort(f.ents, f.nents, sizeof *f.ents, cmp_entry);
		check_numbering(&f, f.ents[0].idx <= 1 ? f.ents[0].idx : 0, "erc721.numbering_gap",
				"token");
	}
	/* the tokens' numbers in order: the reveal maps position t to position t + si */
	if (!(nums = kiln_calloc(f.nents + 1, sizeof *nums)))
		goto nomem;
	for (i = 0; i < f.nents; i++)
		if (!i || f.ents[i].idx != f.ents[i - 1].idx)
			nums[nnums++] = f.ents[i].idx;
	if (meta) {
		rc = load_json(&f, meta, &all, e);
		if (rc)
			goto out;
		if (all && !json_is_array(all)) {
			FADD(&f, "hashlips.metadata_type", KILN_SEV_ERROR, meta, "", "_metadata.json is "
			     "%s: HashLips writes an array of every token's metadata", kiln_mc_type_name(all));
			json_decref(all);
			all = NULL;
		}
	}
	for (i = 0, j = 0, pos = 0; i < f.nents && !f.rc; i = j) {
		unsigned long long k = f.ents[i].idx;
		size_t t = pos++; /* nums[t] == k: entries are sorted, nums is their distinct run */
		struct image_want w = {k, o->has_starting_index, o->starting_index, o->image_base,
				       o->images_dir ? &ims : NULL};
		for (j = i + 1; j < f.nents && f.ents[j].idx == k; j++)
			FADD(&f, "erc721.numbering_repeat", KILN_SEV_ERROR, f.ents[j].name, NULL, "token "
			     "%llu already has %s: keep one file per token (a base URI serves either "
			     "N or N.json, not both)", k, f.ents[i].name);
		if (o->has_starting_index && nnums)
			w.want = nums[(t + o->starting_index % nnums) % nnums];
		if (!f.rc && (rc = erc721_token(&f, f.ents[i].name, k, all, &w, e)))
			goto out;
	}
	if (!f.rc)
		check_drift(&f);
	if (!f.rc)
		check_unique(&f);
	if (!f.rc)
		goto out;
nomem:
	rc = kiln_error_set(e, KILN_E_NOMEM, dir, "out of memory while checking the folder");
out:
	json_decref(all);
	folder_release(&f);
	free_names(names, nnames);
	for (i = 0; i < ims.n; i++)
		free(ims.v[i].name);
	free(ims.v);
	free(nums);
	return rc;
}
