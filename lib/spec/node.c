/* node.c: what every block parser of the spec shares, and the spec's small public lookups.
 *
 * The helpers read one libfyaml node each (a scalar of a type and range, a mapping whose keys
 * are all known, a list) and report the first problem with the node's line and column
 * (fail()). They sit in a file of their own, below spec.c, ai.c, metadata.c and prescan.c,
 * so that the files of lib/spec are layered: spec.c calls the block parsers, and they call
 * only this file (scripts/check-modules.py checks that no two files call each other).
 */
#include "spec/internal.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/path.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct kiln_loc loc_of(struct fy_node *n)
{
	struct kiln_loc l = {0, 0};
	if (!n)
		return l;
	switch (fy_node_get_type(n)) {
	case FYNT_SCALAR: {
		struct fy_token *t = fy_node_get_scalar_token(n);
		const struct fy_mark *m = t ? fy_token_start_mark(t) : NULL;
		if (m) {
			l.line = m->line + 1;
			l.col = m->column + 1;
		}
		return l;
	}
	case FYNT_MAPPING: {
		void *it = NULL;
		struct fy_node_pair *p = fy_node_mapping_iterate(n, &it);
		return p ? loc_of(fy_node_pair_key(p)) : l;
	}
	case FYNT_SEQUENCE: {
		void *it = NULL;
		return loc_of(fy_node_sequence_iterate(n, &it));
	}
	}
	return l;
}

int fail(struct ctx *c, struct fy_node *n, const char *fmt, ...)
{
	struct kiln_loc l = loc_of(n);
	char where[512];
	va_list ap;
	if (l.line)
		snprintf(where, sizeof where, "%s:%d:%d", c->name, l.line, l.col);
	else
		snprintf(where, sizeof where, "%s", c->name);
	kiln_error_set(c->e, KILN_E_SPEC, where, "%s", "");
	va_start(ap, fmt);
	vsnprintf(c->e->msg, sizeof c->e->msg, fmt, ap);
	va_end(ap);
	return KILN_E_SPEC;
}

int nomem(struct ctx *c)
{
	return kiln_error_set(c->e, KILN_E_NOMEM, c->name, "out of memory while reading the spec");
}

const char *type_name(struct fy_node *n)
{
	switch (fy_node_get_type(n)) {
	case FYNT_SCALAR:
		return "a scalar";
	case FYNT_MAPPING:
		return "a mapping";
	case FYNT_SEQUENCE:
		return "a list";
	}
	return "something else";
}

/* Edit distance, for "did you mean". Short strings only. */
size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), prev[64], cur[64];
	if (la >= 63 || lb >= 63)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + (tolower((unsigned char)a[i - 1]) !=
						    tolower((unsigned char)b[j - 1]));
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
			cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
		memcpy(prev, cur, sizeof(size_t) * (lb + 1));
	}
	return prev[lb];
}

const char *closest(const char *word, const char *const *names, size_t n)
{
	const char *best = NULL;
	size_t bestd = 3;
	for (size_t i = 0; i < n; i++) {
		size_t d = edit_distance(word, names[i]);
		if (d < bestd) {
			bestd = d;
			best = names[i];
		}
	}
	return best;
}

void list_names(char *out, size_t cap, const char *const *names, size_t n)
{
	size_t len = 0;
	out[0] = 0;
	for (size_t i = 0; i < n && len + 4 < cap; i++)
		len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? ", " : "", names[i]);
}

/* Key checking: every key of mapping n must be one of keys[]. */
int check_keys(struct ctx *c, struct fy_node *n, const char *block,
		      const char *const *keys, size_t nkeys)
{
	void *it = NULL;
	struct fy_node_pair *p;
	while ((p = fy_node_mapping_iterate(n, &it))) {
		struct fy_node *k = fy_node_pair_key(p);
		const char *ks = fy_node_get_type(k) == FYNT_SCALAR ? fy_node_get_scalar0(k) : NULL;
		size_t i;
		char list[512];
		const char *hint;
		if (!ks)
			return fail(c, k, "keys in %s must be plain words", block);
		for (i = 0; i < nkeys; i++)
			if (!strcmp(ks, keys[i]))
				break;
		if (i < nkeys)
			continue;
		list_names(list, sizeof list, keys, nkeys);
		hint = closest(ks, keys, nkeys);
		if (hint)
			return fail(c, k, "unknown key '%s' in %s: did you mean '%s'? (allowed: %s)",
				    ks, block, hint, list);
		return fail(c, k, "unknown key '%s' in %s (allowed: %s)", ks, block, list);
	}
	return 0;
}

struct fy_node *get(struct fy_node *map, const char *key)
{
	void *it = NULL;
	struct fy_node_pair *p;
	while ((p = fy_node_mapping_iterate(map, &it))) {
		struct fy_node *k = fy_node_pair_key(p);
		const char *ks = fy_node_get_type(k) == FYNT_SCALAR ? fy_node_get_scalar0(k) : NULL;
		if (ks && !strcmp(ks, key))
			return fy_node_pair_value(p);
	}
	return NULL;
}

struct fy_node *key_node(struct fy_node *map, const char *key)
{
	void *it = NULL;
	struct fy_node_pair *p;
	while ((p = fy_node_mapping_iterate(map, &it))) {
		struct fy_node *k = fy_node_pair_key(p);
		const char *ks = fy_node_get_type(k) == FYNT_SCALAR ? fy_node_get_scalar0(k) : NULL;
		if (ks && !strcmp(ks, key))
			return k;
	}
	return map;
}

int want_map(struct ctx *c, struct fy_node *n, const char *what)
{
	if (fy_node_get_type(n) != FYNT_MAPPING)
		return fail(c, n, "%s must be a mapping (key: value), got %s", what, type_name(n));
	return 0;
}

int want_seq(struct ctx *c, struct fy_node *n, const char *what)
{
	if (fy_node_get_type(n) != FYNT_SEQUENCE)
		return fail(c, n, "%s must be a list, got %s", what, type_name(n));
	return 0;
}

int get_str(struct ctx *c, struct fy_node *n, const char *what, char **out)
{
	const char *v;
	if (fy_node_get_type(n) != FYNT_SCALAR)
		return fail(c, n, "%s must be text, got %s", what, type_name(n));
	v = fy_node_get_scalar0(n);
	if (!v)
		return nomem(c);
	free(*out);
	*out = kiln_strdup(v);
	return *out ? 0 : nomem(c);
}

int get_nonempty(struct ctx *c, struct fy_node *n, const char *what, char **out)
{
	int rc = get_str(c, n, what, out);
	if (rc)
		return rc;
	for (const char *p = *out; *p; p++)
		if (!isspace((unsigned char)*p))
			return 0;
	return fail(c, n, "%s must not be empty", what);
}

int plain_scalar(struct ctx *c, struct fy_node *n, const char *what, const char **v)
{
	if (fy_node_get_type(n) != FYNT_SCALAR)
		return fail(c, n, "%s must be a number, got %s", what, type_name(n));
	*v = fy_node_get_scalar0(n);
	if (!*v)
		return nomem(c);
	return 0;
}

int get_double(struct ctx *c, struct fy_node *n, const char *what, double *out)
{
	const char *v;
	char *end;
	int rc = plain_scalar(c, n, what, &v);
	if (rc)
		return rc;
	errno = 0;
	*out = strtod(v, &end);
	if (!*v || *end || errno || !isfinite(*out))
		return fail(c, n, "%s must be a number, got '%s'", what, v);
	return 0;
}

int get_u64(struct ctx *c, struct fy_node *n, const char *what, uint64_t lo, uint64_t hi,
		   uint64_t *out)
{
	const char *v;
	char *end;
	unsigned long long x;
	int rc = plain_scalar(c, n, what, &v);
	if (rc)
		return rc;
	errno = 0;
	x = strtoull(v, &end, 10);
	if (!*v || *end || errno || v[0] == '-' || v[0] == '+')
		return fail(c, n, "%s must be a whole number, got '%s'", what, v);
	if (x < lo || x > hi)
		return fail(c, n, "%s must be between %llu and %llu, got %llu", what,
			    (unsigned long long)lo, (unsigned long long)hi, x);
	*out = x;
	return 0;
}

int get_int(struct ctx *c, struct fy_node *n, const char *what, int lo, int hi, int *out)
{
	uint64_t x;
	int rc = get_u64(c, n, what, (uint64_t)lo, (uint64_t)hi, &x);
	if (!rc)
		*out = (int)x;
	return rc;
}

int get_bool(struct ctx *c, struct fy_node *n, const char *what, int *out)
{
	const char *v;
	if (fy_node_get_type(n) != FYNT_SCALAR)
		return fail(c, n, "%s must be true or false, got %s", what, type_name(n));
	v = fy_node_get_scalar0(n);
	if (v && (!strcmp(v, "true") || !strcmp(v, "yes"))) {
		*out = 1;
		return 0;
	}
	if (v && (!strcmp(v, "false") || !strcmp(v, "no"))) {
		*out = 0;
		return 0;
	}
	return fail(c, n, "%s must be true or false, got '%s'", what, v ? v : "");
}

/* Every file a spec names ends up in dist/ or in a request to a server, and specs come from
 * anyone: it must exist, resolve (symbolic links followed) inside the project folder or an
 * allowed one (paths.allow), and be a regular file, which is opened without blocking to see
 * (a FIFO or a device named here would otherwise hang a later reader). */
int check_file(struct ctx *c, struct fy_node *n, const char *file, const char *what)
{
	char *full, *real = NULL, shown[4096];
	int ok, dir, st, fd, rc = 0;
	size_t size;
	struct kiln_error pe;
	if (!c->dir)
		return 0;
	full = kiln_fs_join(c->dir, file);
	if (!full)
		return nomem(c);
	ok = kiln_fs_exists(full);
	dir = ok && kiln_fs_is_dir(full);
	free(full);
	if (dir)
		return fail(c, n, "%s file '%s' is a folder, not a file: name an image in it",
			    what, file);
	if (!ok)
		return fail(c, n, "%s file '%s' not found (paths are relative to the folder of %s): "
			    "fix the path or add the file", what, file, c->name);
	st = kiln_path_beneath(c->dir, file, (const char *const *)c->s->allow_paths,
			       c->s->nallow_paths, &real, shown, sizeof shown);
	if (st == KILN_PATH_NOMEM)
		return nomem(c);
	if (st == KILN_PATH_OUTSIDE) {
		fail(c, n, "%s file '%s' is %s, outside the project folder: kiln releases and sends "
		     "only files inside it (or in a folder paths.allow names)", what, file, shown);
		return kiln_error_hint(c->e, KILN_HINT_ALLOW_PATH, NULL);
	}
	if (st != KILN_PATH_OK)
		return fail(c, n, "%s file '%s' cannot be resolved: check the folders on its way",
			    what, file);
	kiln_error_clear(&pe);
	if (kiln_path_open_regular(real, 0, 1, &fd, &size, &pe))
		rc = fail(c, n, "%s file '%s' %s", what, file,
			  strstr(pe.msg, "is ") == pe.msg ? pe.msg : "cannot be opened");
	else
		close(fd);
	free(real);
	return rc;
}


int get_range(struct ctx *c, struct fy_node *n, const char *what, double lo, double hi,
		     double *out)
{
	int rc = get_double(c, n, what, out);
	if (rc)
		return rc;
	if (*out < lo || *out > hi)
		return fail(c, n, "%s must be between %g and %g, got %s", what, lo, hi,
			    fy_node_get_scalar0(n));
	return 0;
}

/* --- lookups ---------------------------------------------------------------------------- */

uint64_t kiln_spec_generated(const struct kiln_spec *s)
{
	return s->size > s->nlegendaries ? s->size - s->nlegendaries : 0;
}

long kiln_spec_layer_index(const struct kiln_spec *s, const char *name)
{
	for (size_t i = 0; i < s->nlayers; i++)
		if (!strcmp(s->layers[i].name, name))
			return (long)i;
	return -1;
}

long kiln_layer_trait_index(const struct kiln_layer *l, const char *name)
{
	for (size_t i = 0; i < l->ntraits; i++)
		if (!strcmp(l->traits[i].name, name))
			return (long)i;
	return -1;
}

const char *kiln_format_ext(enum kiln_format f)
{
	return f == KILN_FORMAT_WEBP ? "webp" : f == KILN_FORMAT_JPEG ? "jpg" : "png";
}

const char *kiln_format_mime(enum kiln_format f)
{
	return f == KILN_FORMAT_WEBP ? "image/webp" : f == KILN_FORMAT_JPEG ? "image/jpeg"
									    : "image/png";
}
