/* hashlips: HashLips layers folder -> kiln.yaml text. Reads folder and file names only (the
 * images are checked later by the spec loader and the compose engine). The YAML is written as
 * text because it carries comments for the studio; every string goes through yaml_quote(),
 * which emits a double-quoted YAML scalar whenever a plain one could be misread. */
#include "kiln/spec.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/path.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct trait {
	char *name;
	char *file;   /* relative to the project */
	double weight; /* > 0, at most HL_MAX_WEIGHT */
};

/* kiln's planner takes weights up to 1e12 (lib/plan/targets.c) */
#define HL_MAX_WEIGHT 1e12

struct layer {
	char *dir;    /* folder name */
	char *name;   /* layer name (folder name less a numeric prefix) */
	long prefix;  /* numeric prefix or -1 */
	struct trait *traits;
	size_t ntraits;
};

static int yaml_quote(struct kiln_buf *b, const char *s)
{
	int plain = *s && !isspace((unsigned char)s[0]) && !isspace((unsigned char)s[strlen(s) - 1]);
	static const char *const words[] = {"true", "false", "yes", "no", "null", "on", "off", "~"};
	for (const char *p = s; plain && *p; p++)
		if (!(isalnum((unsigned char)*p) || *p == ' ' || *p == '_' || *p == '-' ||
		      *p == '.' || *p == '/' || *p == '(' || *p == ')'))
			plain = 0;
	if (plain && (isdigit((unsigned char)s[0]) || s[0] == '-' || s[0] == '.'))
		plain = 0;
	for (size_t i = 0; plain && i < sizeof words / sizeof words[0]; i++)
		if (!strcasecmp(s, words[i]))
			plain = 0;
	if (plain)
		return kiln_buf_adds(b, s);
	if (kiln_buf_add(b, "\"", 1))
		return KILN_E_NOMEM;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		int rc;
		if (*p == '"' || *p == '\\')
			rc = kiln_buf_addf(b, "\\%c", *p);
		else if (*p < 0x20)
			rc = kiln_buf_addf(b, "\\x%02x", *p);
		else
			rc = kiln_buf_add(b, p, 1);
		if (rc)
			return rc;
	}
	return kiln_buf_add(b, "\"", 1);
}

/* path of target relative to base (both made absolute); caller frees */
static char *relpath(const char *base, const char *target)
{
	char rb[PATH_MAX], rt[PATH_MAX];
	struct kiln_buf b = KILN_BUF_INIT;
	size_t common = 0, i;
	if (!realpath(base, rb) || !realpath(target, rt))
		return kiln_strdup(target);
	for (i = 0; rb[i] && rb[i] == rt[i]; i++)
		if (rb[i] == '/')
			common = i;
	if (!rb[i] && (rt[i] == '/' || !rt[i]))
		common = i;
	if (!strcmp(rb, "/"))
		common = 0;
	for (const char *p = rb + common; *p; p++)
		if (*p == '/' && kiln_buf_adds(&b, "../"))
			goto nomem;
	if (kiln_buf_adds(&b, rt[common] == '/' ? rt + common + 1 : rt + common))
		goto nomem;
	return kiln_buf_detach(&b, NULL);
nomem:
	kiln_buf_release(&b);
	return NULL;
}

/* width and height from a PNG's IHDR (bytes 16..23, big-endian); unchanged if unreadable */
static void png_size(const char *project_dir, const char *file, unsigned *w, unsigned *h)
{
	char *path = kiln_fs_join(project_dir, file);
	unsigned char hdr[24];
	FILE *f = path ? fopen(path, "rb") : NULL;
	if (f && fread(hdr, 1, 24, f) == 24 && !memcmp(hdr, "\x89PNG\r\n\x1a\n", 8) &&
	    !memcmp(hdr + 12, "IHDR", 4)) {
		*w = (unsigned)hdr[16] << 24 | (unsigned)hdr[17] << 16 | (unsigned)hdr[18] << 8 | hdr[19];
		*h = (unsigned)hdr[20] << 24 | (unsigned)hdr[21] << 16 | (unsigned)hdr[22] << 8 | hdr[23];
	}
	if (f)
		fclose(f);
	free(path);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* sorted names in a folder (no dot files); *out freed by caller with each entry */
static int list_dir(const char *dir, int want_dirs, char ***out, size_t *n, struct kiln_error *e)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t cap = 0;
	*out = NULL;
	*n = 0;
	if (!d)
		return kiln_error_set(e, KILN_E_USAGE, dir, "cannot read the folder: %s",
				      strerror(errno));
	while ((de = readdir(d))) {
		char *full;
		int isdir;
		if (de->d_name[0] == '.')
			continue;
		full = kiln_fs_join(dir, de->d_name);
		if (!full)
			goto nomem;
		isdir = kiln_fs_is_dir(full);
		/* a FIFO, device or socket among the layer files would block the import's read of
		 * the first file (and every later reader): refused by name */
		if (!isdir && !want_dirs) {
			struct stat sb;
			if (!stat(full, &sb) && !S_ISREG(sb.st_mode)) {
				kiln_error_set(e, KILN_E_USAGE, full, "is %s, not a regular file: a layers "
					       "folder holds image files",
					       kiln_path_kind((unsigned)sb.st_mode));
				free(full);
				closedir(d);
				for (size_t i = 0; i < *n; i++)
					free((*out)[i]);
				free(*out);
				*out = NULL;
				*n = 0;
				return KILN_E_USAGE;
			}
		}
		free(full);
		if (isdir != want_dirs)
			continue;
		if (*n == cap) {
			char **v = kiln_reallocarray(*out, cap ? cap * 2 : 16, sizeof *v);
			if (!v)
				goto nomem;
			*out = v;
			cap = cap ? cap * 2 : 16;
		}
		if (!((*out)[*n] = kiln_strdup(de->d_name)))
			goto nomem;
		(*n)++;
	}
	closedir(d);
	if (*n)
		qsort(*out, *n, sizeof **out, cmp_str);
	return 0;
nomem:
	closedir(d);
	return kiln_error_set(e, KILN_E_NOMEM, dir, "out of memory");
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static int ends_with_png(const char *s)
{
	size_t n = strlen(s);
	return n > 4 && !strcasecmp(s + n - 4, ".png");
}

/* A trait's weight as HashLips reads it (getRarityWeight in its src/main.js): JavaScript's
 * Number() of the text after the last '#' (of the whole name when there is none), 1 when that
 * is not a number. A number HashLips would misuse is refused, naming the file, rather than
 * wrapped or rounded: negative or zero (HashLips' weighted pick then skips the trait or shifts
 * the others' odds) and over HL_MAX_WEIGHT. A fraction is kept: HashLips weighs 2.5 as 2.5. */
static int file_weight(const char *dir, const char *file, const char *base, double *w,
		       struct kiln_error *e)
{
	const char *hash = strrchr(base, '#'), *p = hash ? hash + 1 : base, *q;
	char where[4096], text[256];
	size_t n;
	int digits = 0;
	while (*p == ' ' || *p == '\t')
		p++;
	n = strlen(p);
	while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	snprintf(text, sizeof text, "%.*s", (int)n, p);
	snprintf(where, sizeof where, "%s/%s", dir, file);
	*w = 1;
	if (!n) {
		if (!hash)
			return 0;
		return kiln_error_set(e, KILN_E_USAGE, where, "nothing follows '#': HashLips reads "
				      "that as weight 0 and never picks the trait; write a positive "
				      "weight after '#' or drop the '#'");
	}
	/* JavaScript decimal syntax: [+-] digits [. digits] [e [+-] digits] */
	q = text;
	if (*q == '+' || *q == '-')
		q++;
	if (!strcmp(q, "Infinity")) {
		digits = 1;
		q += 8;
	}
	while (isdigit((unsigned char)*q))
		q++, digits++;
	if (*q == '.')
		for (q++; isdigit((unsigned char)*q); q++)
			digits++;
	if (digits && (*q == 'e' || *q == 'E')) {
		const char *x = q + 1;
		if (*x == '+' || *x == '-')
			x++;
		if (isdigit((unsigned char)*x)) {
			while (isdigit((unsigned char)*x))
				x++;
			q = x;
		}
	}
	if (!digits || *q)
		return 0; /* not a number: HashLips takes weight 1 */
	*w = strstr(text, "Infinity") ? (text[0] == '-' ? -HUGE_VAL : HUGE_VAL) : strtod(text, NULL);
	if (*w < 0)
		return kiln_error_set(e, KILN_E_USAGE, where, "weight %s is negative: HashLips would "
				      "use it as is and its weighted pick would go wrong (the trait "
				      "is never drawn and the others' odds shift); rename the file "
				      "with a positive weight", text);
	if (*w == 0)
		return kiln_error_set(e, KILN_E_USAGE, where, "weight %s: HashLips never picks a "
				      "trait of weight 0; remove the file or give it a positive "
				      "weight", text);
	if (!(*w <= HL_MAX_WEIGHT))
		return kiln_error_set(e, KILN_E_USAGE, where, "weight %s is too large: kiln takes "
				      "weights up to %.0f (HashLips would read it as %g, which "
				      "crowds out every other trait of the layer)", text,
				      HL_MAX_WEIGHT, *w);
	return 0;
}

static int read_layer(const struct kiln_hashlips_opts *o, struct layer *l, struct kiln_error *e)
{
	char *dir = kiln_fs_join(o->layers_dir, l->dir), **files = NULL;
	size_t nfiles = 0;
	int rc;
	if (!dir)
		return kiln_error_set(e, KILN_E_NOMEM, o->layers_dir, "out of memory");
	if ((rc = list_dir(dir, 0, &files, &nfiles, e)))
		goto out;
	l->traits = kiln_calloc(nfiles + 1, sizeof *l->traits);
	if (!l->traits)
		goto nomem;
	for (size_t i = 0; i < nfiles; i++) {
		struct trait *t;
		char *hash, *full, *base;
		if (!ends_with_png(files[i]))
			continue;
		t = &l->traits[l->ntraits];
		base = kiln_strndup(files[i], strlen(files[i]) - 4);
		if (!base)
			goto nomem;
		hash = strchr(base, '#');
		if ((rc = file_weight(dir, files[i], base, &t->weight, e))) {
			free(base);
			goto out;
		}
		if (hash)
			*hash = 0;
		t->name = base;
		l->ntraits++;
		full = kiln_fs_join(dir, files[i]);
		if (!full || !(t->file = relpath(o->project_dir, full))) {
			free(full);
			goto nomem;
		}
		free(full);
		for (size_t k = 0; k + 1 < l->ntraits; k++)
			if (!strcasecmp(l->traits[k].name, t->name)) {
				rc = kiln_error_set(e, KILN_E_USAGE, dir, "two files give trait '%s' "
						    "('%s' and another): rename one", t->name,
						    files[i]);
				goto out;
			}
	}
	if (!l->ntraits)
		rc = kiln_error_set(e, KILN_E_USAGE, dir, "layer folder has no .png files");
	goto out;
nomem:
	rc = kiln_error_set(e, KILN_E_NOMEM, dir, "out of memory");
out:
	free_list(files, nfiles);
	free(dir);
	return rc;
}

static int is_background(const char *name)
{
	return !strcasecmp(name, "background") || !strcasecmp(name, "backgrounds") ||
	       !strcasecmp(name, "bg") || !strcasecmp(name, "backdrop");
}

static int cmp_layer(const void *a, const void *b)
{
	const struct layer *x = a, *y = b;
	if ((x->prefix >= 0) != (y->prefix >= 0))
		return x->prefix >= 0 ? -1 : 1;
	if (x->prefix != y->prefix)
		return x->prefix < y->prefix ? -1 : 1;
	if (is_background(x->name) != is_background(y->name))
		return is_background(x->name) ? -1 : 1;
	return strcmp(x->name, y->name);
}

typedef unsigned __int128 u128;

struct seat {
	u128 rem;
	size_t i;
};

static int seat_cmp(const void *pa, const void *pb)
{
	const struct seat *a = pa, *b = pb;
	if (a->rem != b->rem)
		return a->rem > b->rem ? -1 : 1;
	return a->i < b->i ? -1 : a->i > b->i;
}

/* The tokens each trait of l gets among n, as kiln's planner apportions weights
 * (lib/plan/targets.c): millionths, largest remainder, ties to the trait written first. */
static int layer_counts(const struct layer *l, uint64_t n, uint64_t *cnt)
{
	struct seat *r = kiln_calloc(l->ntraits + 1, sizeof *r);
	u128 W = 0;
	uint64_t sum = 0;
	if (!r)
		return KILN_E_NOMEM;
	for (size_t t = 0; t < l->ntraits; t++)
		W += (u128)llround(l->traits[t].weight * 1e6);
	for (size_t t = 0; t < l->ntraits; t++) {
		u128 num = (u128)n * (u128)llround(l->traits[t].weight * 1e6);
		cnt[t] = (uint64_t)(num / W);
		sum += cnt[t];
		r[t].rem = num % W;
		r[t].i = t;
	}
	qsort(r, l->ntraits, sizeof *r, seat_cmp);
	for (size_t k = 0; k < l->ntraits && sum < n; k++, sum++)
		cnt[r[k].i]++;
	free(r);
	return 0;
}

/* Whether n tokens can keep these weights exactly and all differ (min_distance 1): the two
 * conditions the planner checks first. The values that get tokens must make n combinations,
 * and no value may need more tokens than the other layers' values make combinations. If
 * not, why says so. -1: out of memory. */
static int size_fits(const struct layer *ls, size_t nl, uint64_t n, char *why, size_t whycap)
{
	uint64_t **cnt = kiln_calloc(nl + 1, sizeof *cnt);
	double *used = kiln_calloc(nl + 1, sizeof *used), all = 1;
	int ok = 1;
	if (!cnt || !used) {
		ok = -1;
		goto out;
	}
	for (size_t i = 0; i < nl; i++) {
		if (!(cnt[i] = kiln_calloc(ls[i].ntraits + 1, sizeof **cnt)) ||
		    layer_counts(&ls[i], n, cnt[i])) {
			ok = -1;
			goto out;
		}
		for (size_t t = 0; t < ls[i].ntraits; t++)
			used[i] += cnt[i][t] > 0;
		all *= used[i];
	}
	if (all < (double)n) {
		size_t worst = 0;
		for (size_t i = 0; i < nl; i++)
			if (used[i] / (double)ls[i].ntraits < used[worst] / (double)ls[worst].ntraits)
				worst = i;
		snprintf(why, whycap, "with these weights only %.0f different tokens can be made "
			 "(layer %s gets %.0f of its %zu traits into %llu tokens)", all,
			 ls[worst].name, used[worst], ls[worst].ntraits, (unsigned long long)n);
		ok = 0;
		goto out;
	}
	for (size_t i = 0; i < nl && ok; i++) {
		double others = all / used[i];
		for (size_t t = 0; t < ls[i].ntraits; t++)
			if ((double)cnt[i][t] > others) {
				snprintf(why, whycap, "with these weights trait '%s' of layer %s gets %llu "
					 "of %llu tokens, but the other layers make only %.0f "
					 "different combinations to go with it", ls[i].traits[t].name,
					 ls[i].name, (unsigned long long)cnt[i][t],
					 (unsigned long long)n, others);
				ok = 0;
				break;
			}
	}
out:
	for (size_t i = 0; cnt && i < nl; i++)
		free(cnt[i]);
	free(cnt);
	free(used);
	return ok;
}

/* layersOrder from HashLips' src/config.js: the `name: "X"` entries of the first
 * layersOrder array. Returns the number found (0: none), names in out[]. */
static size_t config_order(const char *layers_dir, char **out, size_t cap)
{
	char *cfg = kiln_fs_join(layers_dir, "../src/config.js");
	struct kiln_buf b = KILN_BUF_INIT;
	struct kiln_error e;
	size_t n = 0;
	char *p, *end;
	if (!cfg)
		return 0;
	if (kiln_fs_read(cfg, &b, &e) || !b.data || !(p = strstr(b.data, "layersOrder")))
		goto out;
	if (!(p = strchr(p, '[')) || !(end = strchr(p, ']')))
		goto out;
	*end = 0;
	while (n < cap && (p = strstr(p, "name"))) {
		char q, *s;
		p += 4;
		while (*p == ' ' || *p == ':' || *p == '\t')
			p++;
		if (*p != '"' && *p != '\'')
			continue;
		q = *p++;
		if (!(s = strchr(p, q)))
			break;
		out[n] = kiln_strndup(p, (size_t)(s - p));
		if (!out[n])
			break;
		n++;
		p = s + 1;
	}
out:
	kiln_buf_release(&b);
	free(cfg);
	return n;
}

int kiln_hashlips_import(const struct kiln_hashlips_opts *o, struct kiln_buf *y, char *how,
			 size_t howcap, struct kiln_error *e)
{
	char **dirs = NULL, *cfgorder[256];
	size_t ndirs = 0, ncfg = 0, nall = 0;
	unsigned width = 1024, height = 1024;
	struct layer *layers = NULL;
	const char *name = o->name;
	char namebuf[256];
	double combos = 1;
	uint64_t size;
	char why[512] = "", reduced[700] = "";
	int rc;
	if (how && howcap)
		how[0] = 0;
	if ((rc = list_dir(o->layers_dir, 1, &dirs, &ndirs, e)))
		return rc;
	nall = ndirs;
	if (!ndirs) {
		rc = kiln_error_set(e, KILN_E_USAGE, o->layers_dir, "no layer folders here: expected "
				    "LAYERS/<Layer>/<Trait>#<weight>.png");
		goto out;
	}
	layers = kiln_calloc(ndirs, sizeof *layers);
	if (!layers)
		goto nomem;
	for (size_t i = 0; i < ndirs; i++) {
		struct layer *l = &layers[i];
		const char *d = dirs[i], *p = d;
		l->dir = dirs[i];
		l->prefix = -1;
		while (isdigit((unsigned char)*p))
			p++;
		if (p > d && (*p == '_' || *p == '-' || *p == ' ' || *p == '.') && p[1]) {
			l->prefix = strtol(d, NULL, 10);
			p++;
		} else {
			p = d;
		}
		if (!(l->name = kiln_strdup(p)))
			goto nomem;
		if ((rc = read_layer(o, l, e)))
			goto out;
		combos *= (double)l->ntraits;
	}
	if (o->order) {
		/* given: every name must be a layer folder; those not named are left out */
		struct layer *sorted = kiln_calloc(o->norder + 1, sizeof *sorted);
		if (!sorted)
			goto nomem;
		for (size_t k = 0; k < o->norder; k++) {
			size_t i;
			for (i = 0; i < ndirs; i++)
				if (layers[i].name && (!strcmp(layers[i].name, o->order[k]) ||
						       !strcmp(layers[i].dir, o->order[k])))
					break;
			if (i == ndirs) {
				/* moved names live only in sorted[]; traits are freed at out */
				for (size_t m = 0; m < k; m++)
					free(sorted[m].name);
				free(sorted);
				rc = kiln_error_set(e, KILN_E_USAGE, o->layers_dir, "the layer "
						    "order names layer '%s' but there is no such "
						    "folder here", o->order[k]);
				kiln_error_hint(e, KILN_HINT_LAYER_ORDER, NULL);
				goto out;
			}
			sorted[k] = layers[i];
			layers[i].name = NULL; /* moved */
		}
		for (size_t i = 0; i < ndirs; i++)
			if (layers[i].name) {
				for (size_t t = 0; t < layers[i].ntraits; t++) {
					free(layers[i].traits[t].name);
					free(layers[i].traits[t].file);
				}
				free(layers[i].traits);
				free(layers[i].name);
			}
		free(layers);
		layers = sorted;
		ndirs = o->norder;
		if (how)
			snprintf(how, howcap, "layer order as given");
	} else if ((ncfg = config_order(o->layers_dir, cfgorder, 256)) > 0) {
		/* HashLips' own config: stable-sort by position in it, unknown ones last */
		for (size_t i = 0; i < ndirs; i++) {
			layers[i].prefix = 100000 + (long)i;
			for (size_t k = 0; k < ncfg; k++)
				if (!strcmp(cfgorder[k], layers[i].dir) ||
				    !strcmp(cfgorder[k], layers[i].name))
					layers[i].prefix = (long)k;
		}
		qsort(layers, ndirs, sizeof *layers, cmp_layer);
		if (how)
			snprintf(how, howcap, "layer order read from HashLips' src/config.js "
				 "(layersOrder)");
	} else {
		int prefixed = 0;
		for (size_t i = 0; i < ndirs; i++)
			prefixed |= layers[i].prefix >= 0;
		qsort(layers, ndirs, sizeof *layers, cmp_layer);
		if (how)
			snprintf(how, howcap, prefixed ? "layer order from the folders' numeric "
				 "prefixes" : "layer order guessed (backgrounds first, then "
				 "alphabetical): check it");
	}
	if (!name) {
		char abs[PATH_MAX];
		const char *slash;
		if (!realpath(o->project_dir, abs))
			snprintf(abs, sizeof abs, "%s", o->project_dir);
		slash = strrchr(abs, '/');
		snprintf(namebuf, sizeof namebuf, "%s", slash && slash[1] ? slash + 1 : "Collection");
		name = namebuf;
	}
	combos = 1;
	for (size_t i = 0; i < ndirs; i++)
		combos *= (double)layers[i].ntraits;
	size = o->size ? o->size : (combos < 100 ? (uint64_t)combos : 100);
	/* a size the plan can meet: the largest one up to the asked or default size */
	{
		uint64_t n = size, tries = 0;
		int fits = size_fits(layers, ndirs, n, why, sizeof why);
		char later[512];
		while (fits == 0 && n > 1 && tries++ < 100000)
			fits = size_fits(layers, ndirs, --n, later, sizeof later);
		if (fits < 0)
			goto nomem;
		if (n != size && (o->size || !fits)) {
			rc = kiln_error_set(e, KILN_E_USAGE, o->layers_dir, "a collection of %llu "
					    "tokens cannot keep these layers' weights exactly with "
					    "every token different: %s; %s %llu can, or give the rare "
					    "traits more weight", (unsigned long long)size, why,
					    fits ? "at most" : "fewer than", (unsigned long long)n);
			goto out;
		}
		if (n != size)
			snprintf(reduced, sizeof reduced, "  # size %llu: %s\n",
				 (unsigned long long)size, why);
		size = n;
	}
	rc = 0;
	rc |= kiln_buf_adds(y, "# kiln.yaml imported from a HashLips layers folder.\n"
			    "# Weights are HashLips' (the number after '#'). "
			    "Edit freely: docs/spec.md.\n");
	if (how)
		rc |= kiln_buf_addf(y, "# %s.\n", how);
	rc |= kiln_buf_adds(y, "\ncollection:\n  name: ");
	rc |= yaml_quote(y, name);
	if (o->size_note)
		snprintf(reduced, sizeof reduced, "  # %s\n", o->size_note);
	rc |= kiln_buf_addf(y, "\n  symbol: \"\"\n%s  size: %llu                # %.0f combinations "
			    "possible%s\n  seed: 1\n  description: \"\"\n\n", reduced,
			    (unsigned long long)size, combos, o->size_note ? "; the most that "
			    "plans with these weights" : reduced[0] ? "; the most these "
			    "weights allow, every token different" : "");
	if (ndirs && layers[0].ntraits)
		png_size(o->project_dir, layers[0].traits[0].file, &width, &height);
	rc |= kiln_buf_addf(y, "image:\n  width: %u              # the layers' size\n"
			    "  height: %u\n  format: png\n\nengine: compose\n\nlayers:\n", width,
			    height);
	for (size_t i = 0; i < ndirs && !rc; i++) {
		struct layer *l = &layers[i];
		rc |= kiln_buf_adds(y, "  - name: ");
		rc |= yaml_quote(y, l->name);
		rc |= kiln_buf_adds(y, "\n    traits:\n");
		for (size_t t = 0; t < l->ntraits && !rc; t++) {
			rc |= kiln_buf_adds(y, "      - {name: ");
			rc |= yaml_quote(y, l->traits[t].name);
			rc |= kiln_buf_addf(y, ", weight: %.15g, file: ", l->traits[t].weight);
			rc |= yaml_quote(y, l->traits[t].file);
			rc |= kiln_buf_adds(y, "}\n");
		}
	}
	/* layers kept where HashLips has them, outside the project: the spec must allow their
	 * folder, since kiln reads no file outside the project otherwise (paths.allow) */
	if (!rc) {
		char *lrel = relpath(o->project_dir, o->layers_dir);
		if (!lrel)
			goto nomem;
		if (lrel[0] == '/' || !strncmp(lrel, "../", 3) || !strcmp(lrel, "..")) {
			rc |= kiln_buf_adds(y, "\n# The layers stay in the HashLips folder, outside this "
					    "project: kiln reads files\n# only inside the project and the "
					    "folders paths.allow names.\npaths:\n  allow: [");
			rc |= yaml_quote(y, lrel);
			rc |= kiln_buf_adds(y, "]\n");
		}
		free(lrel);
	}
	rc |= kiln_buf_adds(y, "\nuniqueness:\n  min_distance: 1\n\nmetadata:\n  name: ");
	{
		char pattern[300];
		snprintf(pattern, sizeof pattern, "%s #{id}", name);
		rc |= yaml_quote(y, pattern);
	}
	rc |= kiln_buf_adds(y, "\n  start_id: 1\n  base_uri: ipfs://REPLACE_WITH_IMAGES_CID\n");
	if (rc)
		goto nomem;
	goto out;
nomem:
	rc = kiln_error_set(e, KILN_E_NOMEM, o->layers_dir, "out of memory");
out:
	for (size_t k = 0; k < ncfg; k++)
		free(cfgorder[k]);
	for (size_t i = 0; layers && i < ndirs; i++) {
		for (size_t t = 0; t < layers[i].ntraits; t++) {
			free(layers[i].traits[t].name);
			free(layers[i].traits[t].file);
		}
		free(layers[i].traits);
		free(layers[i].name);
	}
	free(layers);
	free_list(dirs, nall);
	return rc;
}
