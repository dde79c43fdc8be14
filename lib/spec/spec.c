/* spec: kiln.yaml -> struct kiln_spec. The loader, the shared node helpers and the core
 * blocks (collection, image, layers and their traits, rules, uniqueness, legendaries, qa).
 * The generate: block is ai.c's, the metadata: block metadata.c's (lib/spec/README.md).
 *
 * The text is read as written or refused: before libfyaml builds a document, one pass over
 * its events (prescan) bounds the size, the nesting depth and the node count (aliases
 * counted as expanded), and refuses what kiln would otherwise misread: NUL in a scalar,
 * explicit tags, a second document. Only then is the document built (aliases resolved) and
 * walked once, checking every key against the schema of its block (unknown keys are errors,
 * with a "did you mean"), every scalar's type and range, every referenced layer, value and
 * file. The first problem stops the load with "file:line:col" in e->where and what is wrong
 * in e->msg (KILN_E_SPEC). A spec that loads is complete and consistent: later stages never
 * re-check it. Quota feasibility beyond simple ranges (counts adding up, rules vs counts) is
 * the planner's, which knows the arithmetic.
 *
 * Sizes: a spec is a few hundred lines; at most KILN_SPEC_MAX_BYTES, KILN_SPEC_MAX_DEPTH
 * levels and KILN_SPEC_MAX_NODES nodes. Nothing here is hot.
 */
#include "spec/internal.h"
#include "spec/qa_checks.h"
#include "util/alloc.h"
#include "util/fs.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- blocks ------------------------------------------------------------------------------ */

static int parse_collection(struct ctx *c, struct fy_node *n)
{
	static const char *const keys[] = {"name", "symbol", "description", "size", "seed",
					   "external_url"};
	struct kiln_spec *s = c->s;
	struct fy_node *v;
	int rc;
	if ((rc = want_map(c, n, "collection")) || (rc = check_keys(c, n, "collection", keys, 6)))
		return rc;
	if (!(v = get(n, "name")))
		return fail(c, n, "collection needs a name (collection: {name: ..., size: ...})");
	if ((rc = get_nonempty(c, v, "collection.name", &s->name)))
		return rc;
	if ((v = get(n, "symbol")) && (rc = get_str(c, v, "collection.symbol", &s->symbol)))
		return rc;
	if ((v = get(n, "description")) &&
	    (rc = get_str(c, v, "collection.description", &s->description)))
		return rc;
	if ((v = get(n, "external_url")) &&
	    (rc = get_str(c, v, "collection.external_url", &s->external_url)))
		return rc;
	if (!(v = get(n, "size")))
		return fail(c, n, "collection needs a size: the number of tokens, legendaries included");
	if ((rc = get_u64(c, v, "collection.size", 1, 100000000, &s->size)))
		return rc;
	if ((v = get(n, "seed")) && (rc = get_u64(c, v, "collection.seed", 0, UINT64_MAX, &s->seed)))
		return rc;
	return 0;
}

/* image.format's values, also for thumbnail.format */
static int parse_format(struct ctx *c, struct fy_node *v, const char *what, enum kiln_format *out)
{
	const char *f = fy_node_get_type(v) == FYNT_SCALAR ? fy_node_get_scalar0(v) : NULL;
	if (f && !strcmp(f, "png"))
		*out = KILN_FORMAT_PNG;
	else if (f && !strcmp(f, "webp"))
		*out = KILN_FORMAT_WEBP;
	else if (f && (!strcmp(f, "jpeg") || !strcmp(f, "jpg")))
		*out = KILN_FORMAT_JPEG;
	else
		return fail(c, v, "%s must be png, webp or jpeg, got '%s'", what,
			    f ? f : type_name(v));
	return 0;
}

/* thumbnail: SIZE | {size: SIZE, format: png|webp|jpeg} */
static int parse_thumbnail(struct ctx *c, struct fy_node *v)
{
	static const char *const tkeys[] = {"size", "format"};
	struct kiln_spec *s = c->s;
	struct fy_node *w = v;
	int rc;
	s->thumb_format = s->format;
	if (fy_node_get_type(v) == FYNT_MAPPING) {
		if ((rc = check_keys(c, v, "image.thumbnail", tkeys, 2)))
			return rc;
		if ((w = get(v, "format")) &&
		    (rc = parse_format(c, w, "image.thumbnail.format", &s->thumb_format)))
			return rc;
		if (!(w = get(v, "size")))
			return fail(c, v, "image.thumbnail needs a size: the longest side in pixels");
	}
	return get_int(c, w, "image.thumbnail", 16, 4096, &s->thumb_size);
}

static int parse_image(struct ctx *c, struct fy_node *n)
{
	static const char *const keys[] = {"width", "height", "format", "compression", "quality",
					   "lossless", "filter", "alpha", "palette", "scale",
					   "pixelate", "thumbnail"};
	static const char *const filters[] = {"none", "sub", "up", "avg", "paeth", "adaptive"};
	static const char *const pkeys[] = {"colors", "dither"};
	static const char *const skeys[] = {"factor", "filter"};
	struct kiln_spec *s = c->s;
	struct fy_node *v;
	int rc;
	if ((rc = want_map(c, n, "image")) ||
	    (rc = check_keys(c, n, "image", keys, sizeof keys / sizeof *keys)))
		return rc;
	if ((v = get(n, "width")) && (rc = get_int(c, v, "image.width", 1, 16384, &s->width)))
		return rc;
	if ((v = get(n, "height")) && (rc = get_int(c, v, "image.height", 1, 16384, &s->height)))
		return rc;
	/* svg: rendered as PNG (s->format stays png), and the polish stage's last vectorize step
	 * makes the token's image (check_polish_svg) */
	if ((v = get(n, "format")) && fy_node_get_type(v) == FYNT_SCALAR &&
	    !strcmp(fy_node_get_scalar0(v) ? fy_node_get_scalar0(v) : "", "svg")) {
		s->image_svg = 1;
		v = NULL;
	}
	if (v && (rc = parse_format(c, v, "image.format", &s->format)))
		return rc;
	/* PNG levels are libdeflate's: 0..9 as zlib's, 10..12 slower and smaller */
	if ((v = get(n, "compression")) &&
	    (rc = get_int(c, v, "image.compression", 0, 12, &s->png_compression)))
		return rc;
	if ((v = get(n, "quality")) && (rc = get_int(c, v, "image.quality", 1, 100, &s->quality)))
		return rc;
	if ((v = get(n, "lossless")) && (rc = get_bool(c, v, "image.lossless", &s->lossless)))
		return rc;
	if ((v = get(n, "filter"))) {
		const char *f = fy_node_get_type(v) == FYNT_SCALAR ? fy_node_get_scalar0(v) : NULL;
		int k = 0;
		while (f && k < 6 && strcmp(f, filters[k]))
			k++;
		if (!f || k == 6)
			return fail(c, v, "image.filter (the PNG row filter) must be none, sub, up, "
				    "avg, paeth or adaptive, got '%s'", f ? f : type_name(v));
		s->png_filter = k;
	}
	if ((v = get(n, "alpha"))) {
		const char *f = fy_node_get_type(v) == FYNT_SCALAR ? fy_node_get_scalar0(v) : NULL;
		if (f && !strcmp(f, "auto"))
			s->png_keep_alpha = 0;
		else if (f && !strcmp(f, "keep"))
			s->png_keep_alpha = 1;
		else
			return fail(c, v, "image.alpha must be auto (an opaque PNG is written as RGB) "
				    "or keep (always RGBA), got '%s'", f ? f : type_name(v));
	}
	/* palette: true | false | {colors: N, dither: bool} */
	if ((v = get(n, "palette"))) {
		struct fy_node *w;
		if (fy_node_get_type(v) == FYNT_MAPPING) {
			if ((rc = check_keys(c, v, "image.palette", pkeys, 2)))
				return rc;
			s->png_palette = 1;
			if ((w = get(v, "colors")) &&
			    (rc = get_int(c, w, "image.palette.colors", 2, 256, &s->png_colors)))
				return rc;
			if ((w = get(v, "dither")) &&
			    (rc = get_bool(c, w, "image.palette.dither", &s->png_dither)))
				return rc;
		} else if ((rc = get_bool(c, v, "image.palette", &s->png_palette))) {
			return rc;
		}
	}
	/* scale: N | {factor: N, filter: nearest} */
	if ((v = get(n, "scale"))) {
		struct fy_node *w = v;
		if (fy_node_get_type(v) == FYNT_MAPPING) {
			if ((rc = check_keys(c, v, "image.scale", skeys, 2)))
				return rc;
			if ((w = get(v, "filter"))) {
				const char *f = fy_node_get_type(w) == FYNT_SCALAR ?
						fy_node_get_scalar0(w) : NULL;
				if (!f || strcmp(f, "nearest"))
					return fail(c, w, "image.scale.filter must be nearest (pixel "
						    "art is scaled by whole factors, without "
						    "smoothing), got '%s'", f ? f : type_name(w));
			}
			if (!(w = get(v, "factor")))
				return fail(c, v, "image.scale needs a factor: the whole number the "
					    "image is enlarged by");
		}
		if ((rc = get_int(c, w, "image.scale", 1, 64, &s->scale)))
			return rc;
	}
	/* pixelate: N, the block size (HashLips' pixelFormat ratio is 1/N) */
	if ((v = get(n, "pixelate")) &&
	    (rc = get_int(c, v, "image.pixelate", 1, s->width < s->height ? s->width : s->height,
			  &s->pixelate)))
		return rc;
	if ((v = get(n, "thumbnail")) && (rc = parse_thumbnail(c, v)))
		return rc;
	if ((s->format != KILN_FORMAT_PNG && (s->png_palette || get(n, "filter") ||
					      get(n, "alpha"))))
		return fail(c, n, "image.palette, image.filter and image.alpha are PNG options; "
			    "remove them or use format: png");
	if (s->scale > 1 && ((int64_t)s->width * s->scale > 16384 ||
			     (int64_t)s->height * s->scale > 16384))
		return fail(c, get(n, "scale"), "image.scale %d makes %dx%d images, more than "
			    "16384 pixels a side", s->scale, s->width * s->scale,
			    s->height * s->scale);
	return 0;
}

/* weight | percent | count of a trait or of a layer's optional none value */
static int parse_quota(struct ctx *c, struct fy_node *n, const char *what, struct kiln_trait *t)
{
	static const char *const kinds[] = {"weight", "percent", "count"};
	struct fy_node *found = NULL;
	int rc;
	for (int k = 0; k < 3; k++) {
		struct fy_node *v = get(n, kinds[k]);
		if (!v)
			continue;
		if (found)
			return fail(c, v, "%s has both '%s' and another of weight/percent/count: "
				    "give exactly one", what, kinds[k]);
		found = v;
		t->quota = (enum kiln_quota)k;
		if ((rc = get_double(c, v, what, &t->amount)))
			return rc;
		switch (t->quota) {
		case KILN_QUOTA_WEIGHT:
			if (!(t->amount > 0))
				return fail(c, v, "%s: weight must be greater than 0, got %s "
					    "(to leave a value out, remove it or use count: 0)",
					    what, fy_node_get_scalar0(v));
			break;
		case KILN_QUOTA_PERCENT:
			if (!(t->amount > 0) || t->amount > 100)
				return fail(c, v, "%s: percent must be greater than 0 and at most 100, "
					    "got %s", what, fy_node_get_scalar0(v));
			break;
		case KILN_QUOTA_COUNT:
			if (t->amount < 0 || t->amount != floor(t->amount) || t->amount > 1e9)
				return fail(c, v, "%s: count must be a whole number of tokens, 0 or "
					    "more, got %s", what, fy_node_get_scalar0(v));
			break;
		}
	}
	if (!found) {
		t->quota = KILN_QUOTA_WEIGHT;
		t->amount = 1;
	}
	return 0;
}

static int parse_trait(struct ctx *c, struct fy_node *n, struct kiln_layer *l, struct kiln_trait *t)
{
	static const char *const keys[] = {"name", "file", "weight", "percent", "count",
					   "prompt", "negative", "lora", "controlnet"};
	struct fy_node *v;
	char what[300];
	int rc;
	t->loc = loc_of(n);
	if ((rc = want_map(c, n, "a trait")) || (rc = check_keys(c, n, "a trait", keys, 9)))
		return rc;
	if (!(v = get(n, "name")))
		return fail(c, n, "a trait of layer '%s' has no name", l->name);
	if ((rc = get_nonempty(c, v, "trait name", &t->name)))
		return rc;
	snprintf(what, sizeof what, "trait '%s' of layer '%s'", t->name, l->name);
	if ((rc = parse_quota(c, n, what, t)))
		return rc;
	v = get(n, "file");
	if (!v && (!c->s->engine || !strcmp(c->s->engine, "compose")))
		return fail(c, n, "%s has no file: the compose engine needs an image per trait "
			    "(file: layers/%s/%s.png)", what, l->name, t->name);
	if (v) {
		if ((rc = get_nonempty(c, v, "trait file", &t->file)))
			return rc;
		if ((rc = check_file(c, v, t->file, what))) {
			/* kept: every bad trait file is named at the end, in one error */
			if (rc != KILN_E_SPEC)
				return rc;
			if (!c->bad && !(c->bad = kiln_calloc(MAX_BAD_FILES, sizeof *c->bad)))
				return nomem(c);
			if (c->nbad < MAX_BAD_FILES)
				c->bad[c->nbad] = *c->e;
			c->nbad++;
			kiln_error_clear(c->e);
		}
	}
	return parse_trait_ai(c, n, what, t);
}

static const char *const blend_names[] = {
	[KILN_BLEND_OVER] = "over", [KILN_BLEND_MULTIPLY] = "multiply",
	[KILN_BLEND_SCREEN] = "screen", [KILN_BLEND_OVERLAY] = "overlay",
	[KILN_BLEND_DARKEN] = "darken", [KILN_BLEND_LIGHTEN] = "lighten", [KILN_BLEND_ADD] = "add",
	[KILN_BLEND_SOFT_LIGHT] = "soft-light", [KILN_BLEND_HARD_LIGHT] = "hard-light",
	[KILN_BLEND_DIFFERENCE] = "difference",
};
#define NBLEND (sizeof blend_names / sizeof blend_names[0])

const char *kiln_blend_name(enum kiln_blend b)
{
	return (size_t)b < NBLEND ? blend_names[b] : "over";
}

static int parse_layer(struct ctx *c, struct fy_node *n, struct kiln_layer *l)
{
	static const char *const keys[] = {"name", "traits", "optional", "none_name", "blend",
					   "opacity", "bypass_dna"};
	struct fy_node *v, *traits, *opt;
	char *none_name = NULL;
	void *it = NULL;
	size_t cap;
	int rc;
	l->loc = loc_of(n);
	l->opacity = 1;
	if ((rc = want_map(c, n, "a layer")) || (rc = check_keys(c, n, "a layer", keys, 7)))
		return rc;
	if (!(v = get(n, "name")))
		return fail(c, n, "a layer has no name");
	if ((rc = get_nonempty(c, v, "layer name", &l->name)))
		return rc;
	if ((v = get(n, "blend"))) {
		const char *b = fy_node_get_type(v) == FYNT_SCALAR ? fy_node_get_scalar0(v) : NULL;
		size_t i;
		char list[256];
		for (i = 0; b && i < NBLEND; i++)
			if (!strcmp(b, blend_names[i]))
				break;
		if (!b || i == NBLEND) {
			list_names(list, sizeof list, blend_names, NBLEND);
			return fail(c, v, "layer '%s': unknown blend mode '%s' (one of: %s)", l->name,
				    b ? b : type_name(v), list);
		}
		l->blend = (enum kiln_blend)i;
	}
	if ((v = get(n, "opacity"))) {
		if ((rc = get_double(c, v, "layer opacity", &l->opacity)))
			return rc;
		if (l->opacity < 0 || l->opacity > 1)
			return fail(c, v, "layer '%s': opacity must be between 0 and 1, got %s",
				    l->name, fy_node_get_scalar0(v));
	}
	if ((v = get(n, "bypass_dna")) && (rc = get_bool(c, v, "bypass_dna", &l->bypass_dna)))
		return rc;
	if (!(traits = get(n, "traits")))
		return fail(c, n, "layer '%s' has no traits: list its values under traits:", l->name);
	if ((rc = want_seq(c, traits, "traits")))
		return rc;
	cap = (size_t)fy_node_sequence_item_count(traits) + 2; /* + none value + spare for kiln_spec_free */
	if (cap == 2)
		return fail(c, traits, "layer '%s' has an empty traits list", l->name);
	l->traits = kiln_calloc(cap, sizeof *l->traits);
	if (!l->traits)
		return nomem(c);
	while ((v = fy_node_sequence_iterate(traits, &it))) {
		struct kiln_trait *t = &l->traits[l->ntraits];
		if ((rc = parse_trait(c, v, l, t)))
			return rc;
		l->ntraits++;
		for (size_t i = 0; i + 1 < l->ntraits; i++)
			if (!strcasecmp(l->traits[i].name, t->name))
				return fail(c, v, "layer '%s' has two traits named '%s' (line %d): "
					    "trait names must differ (ignoring case)", l->name,
					    t->name, l->traits[i].loc.line);
	}
	if ((v = get(n, "none_name")) && (rc = get_nonempty(c, v, "none_name", &none_name)))
		return rc;
	if ((opt = get(n, "optional"))) {
		struct kiln_trait *t = &l->traits[l->ntraits];
		int on = 1;
		char what[300];
		t->loc = loc_of(opt);
		snprintf(what, sizeof what, "the none value of layer '%s'", l->name);
		if (fy_node_get_type(opt) == FYNT_SCALAR) {
			if ((rc = get_bool(c, opt, "optional", &on)))
				goto out;
			t->quota = KILN_QUOTA_WEIGHT;
			t->amount = 1;
		} else {
			static const char *const okeys[] = {"weight", "percent", "count"};
			if ((rc = want_map(c, opt, "optional")) ||
			    (rc = check_keys(c, opt, "optional", okeys, 3)) ||
			    (rc = parse_quota(c, opt, what, t)))
				goto out;
		}
		if (on) {
			t->name = none_name ? none_name : kiln_strdup("None");
			none_name = NULL;
			if (!t->name) {
				rc = nomem(c);
				goto out;
			}
			for (size_t i = 0; i < l->ntraits; i++)
				if (!strcasecmp(l->traits[i].name, t->name)) {
					rc = fail(c, opt, "layer '%s': the none value is named '%s', like "
						  "a trait: set none_name to something else", l->name,
						  t->name);
					goto out;
				}
			t->is_none = 1;
			l->has_none = 1;
			l->ntraits++;
		}
	} else if (none_name) {
		rc = fail(c, key_node(n, "none_name"), "layer '%s' has none_name but is not optional: "
			  "add optional: {weight: N}", l->name);
		goto out;
	}
	rc = 0;
out:
	free(none_name);
	return rc;
}

static int parse_layers(struct ctx *c, struct fy_node *n)
{
	struct kiln_spec *s = c->s;
	struct fy_node *v;
	void *it = NULL;
	size_t cap;
	int rc;
	if ((rc = want_seq(c, n, "layers")))
		return rc;
	cap = (size_t)fy_node_sequence_item_count(n);
	if (!cap)
		return fail(c, n, "layers is empty: list at least one layer");
	s->layers = kiln_calloc(cap, sizeof *s->layers);
	if (!s->layers)
		return nomem(c);
	while ((v = fy_node_sequence_iterate(n, &it))) {
		struct kiln_layer *l = &s->layers[s->nlayers];
		rc = parse_layer(c, v, l);
		s->nlayers++;
		if (rc)
			return rc;
		for (size_t i = 0; i + 1 < s->nlayers; i++)
			if (!strcasecmp(s->layers[i].name, l->name))
				return fail(c, v, "two layers are named '%s' (line %d): layer names "
					    "must differ (ignoring case)", l->name, s->layers[i].loc.line);
	}
	return 0;
}

/* Resolve a layer name node to its index, with a helpful message. */
static int find_layer(struct ctx *c, struct fy_node *k, size_t *out)
{
	const char *name = fy_node_get_type(k) == FYNT_SCALAR ? fy_node_get_scalar0(k) : NULL;
	const char *names[256], *hint;
	size_t n = 0;
	long i = name ? kiln_spec_layer_index(c->s, name) : -1;
	if (i >= 0) {
		*out = (size_t)i;
		return 0;
	}
	for (size_t j = 0; j < c->s->nlayers && n < 256; j++)
		names[n++] = c->s->layers[j].name;
	hint = name ? closest(name, names, n) : NULL;
	if (hint)
		return fail(c, k, "rule names layer '%s', which does not exist: did you mean '%s'?",
			    name ? name : "?", hint);
	return fail(c, k, "rule names layer '%s', which does not exist", name ? name : "?");
}

static int find_trait(struct ctx *c, struct fy_node *v, const struct kiln_layer *l, size_t *out)
{
	const char *name = fy_node_get_type(v) == FYNT_SCALAR ? fy_node_get_scalar0(v) : NULL;
	const char *names[512], *hint;
	size_t n = 0;
	long i;
	if (!name)
		return fail(c, v, "a rule value must be a trait name or a list of them, got %s",
			    type_name(v));
	i = kiln_layer_trait_index(l, name);
	if (i >= 0) {
		*out = (size_t)i;
		return 0;
	}
	for (size_t j = 0; j < l->ntraits && n < 512; j++)
		names[n++] = l->traits[j].name;
	hint = closest(name, names, n);
	if (hint)
		return fail(c, v, "layer '%s' has no value '%s': did you mean '%s'?", l->name, name,
			    hint);
	return fail(c, v, "layer '%s' has no value '%s'", l->name, name);
}

/* {Layer: Value | [Values], ...} -> clauses */
static int parse_clauses(struct ctx *c, struct fy_node *n, const char *what,
			 struct kiln_clause **out, size_t *nout)
{
	void *it = NULL;
	struct fy_node_pair *p;
	size_t cap;
	int rc;
	if ((rc = want_map(c, n, what)))
		return rc;
	cap = (size_t)fy_node_mapping_item_count(n);
	if (!cap)
		return fail(c, n, "%s is empty: name at least one layer and value", what);
	*out = kiln_calloc(cap, sizeof **out);
	if (!*out)
		return nomem(c);
	while ((p = fy_node_mapping_iterate(n, &it))) {
		struct fy_node *k = fy_node_pair_key(p), *v = fy_node_pair_value(p);
		struct kiln_clause *cl = &(*out)[*nout];
		const struct kiln_layer *l;
		if ((rc = find_layer(c, k, &cl->layer)))
			return rc;
		(*nout)++;
		for (size_t i = 0; i + 1 < *nout; i++)
			if ((*out)[i].layer == cl->layer)
				return fail(c, k, "%s names layer '%s' twice", what,
					    c->s->layers[cl->layer].name);
		l = &c->s->layers[cl->layer];
		if (fy_node_get_type(v) == FYNT_SEQUENCE) {
			void *it2 = NULL;
			struct fy_node *x;
			size_t m = (size_t)fy_node_sequence_item_count(v);
			if (!m)
				return fail(c, v, "%s: the value list for '%s' is empty", what, l->name);
			cl->traits = kiln_calloc(m, sizeof *cl->traits);
			if (!cl->traits)
				return nomem(c);
			while ((x = fy_node_sequence_iterate(v, &it2))) {
				if ((rc = find_trait(c, x, l, &cl->traits[cl->ntraits])))
					return rc;
				cl->ntraits++;
			}
		} else {
			cl->traits = kiln_calloc(1, sizeof *cl->traits);
			if (!cl->traits)
				return nomem(c);
			if ((rc = find_trait(c, v, l, &cl->traits[0])))
				return rc;
			cl->ntraits = 1;
		}
	}
	return 0;
}

static int parse_rule(struct ctx *c, struct fy_node *n, struct kiln_rule *r)
{
	static const char *const keys[] = {"exclude", "if", "then", "with"};
	struct fy_node *v;
	int rc;
	r->loc = loc_of(n);
	if ((rc = want_map(c, n, "a rule")) || (rc = check_keys(c, n, "a rule", keys, 4)))
		return rc;
	if ((v = get(n, "exclude"))) {
		if (get(n, "if") || get(n, "then") || get(n, "with"))
			return fail(c, n, "a rule is one of {exclude: ...}, {if: ..., then: ...} or "
				    "{with: ...}: split this one");
		r->kind = KILN_RULE_EXCLUDE;
		if ((rc = parse_clauses(c, v, "exclude", &r->when, &r->nwhen)))
			return rc;
		if (r->nwhen < 2)
			return fail(c, v, "exclude needs values of two or more layers, e.g. "
				    "{exclude: {Hat: Crown, Eyes: Laser}}");
		return 0;
	}
	if ((v = get(n, "with"))) {
		if (get(n, "if") || get(n, "then"))
			return fail(c, n, "a rule is one of {exclude: ...}, {if: ..., then: ...} or "
				    "{with: ...}: split this one");
		r->kind = KILN_RULE_WITH;
		if ((rc = parse_clauses(c, v, "with", &r->when, &r->nwhen)))
			return rc;
		if (r->nwhen < 2)
			return fail(c, v, "with pairs values of two or more layers, e.g. "
				    "{with: {Hat: Wizard, Eyes: Wide}}");
		for (size_t i = 0; i < r->nwhen; i++)
			if (r->when[i].ntraits != 1)
				return fail(c, v, "with pairs single values: give one value for "
					    "layer '%s'", c->s->layers[r->when[i].layer].name);
		return 0;
	}
	if ((v = get(n, "if"))) {
		struct fy_node *t = get(n, "then");
		r->kind = KILN_RULE_IF;
		if (!t)
			return fail(c, n, "an if rule needs then: {Layer: [allowed values]}");
		if ((rc = parse_clauses(c, v, "if", &r->when, &r->nwhen)) ||
		    (rc = parse_clauses(c, t, "then", &r->then, &r->nthen)))
			return rc;
		for (size_t i = 0; i < r->nthen; i++)
			for (size_t j = 0; j < r->nwhen; j++)
				if (r->then[i].layer == r->when[j].layer)
					return fail(c, t, "then names layer '%s', which the if part "
						    "already names", c->s->layers[r->then[i].layer].name);
		return 0;
	}
	return fail(c, n, "a rule needs exclude, if/then or with");
}

static int parse_rules(struct ctx *c, struct fy_node *n)
{
	struct fy_node *v;
	void *it = NULL;
	int rc;
	if ((rc = want_seq(c, n, "rules")))
		return rc;
	c->s->rules = kiln_calloc((size_t)fy_node_sequence_item_count(n) + 1, sizeof *c->s->rules);
	if (!c->s->rules)
		return nomem(c);
	while ((v = fy_node_sequence_iterate(n, &it))) {
		rc = parse_rule(c, v, &c->s->rules[c->s->nrules]);
		c->s->nrules++;
		if (rc)
			return rc;
	}
	return 0;
}

static int parse_uniqueness(struct ctx *c, struct fy_node *n)
{
	static const char *const keys[] = {"min_distance"};
	struct fy_node *v;
	uint64_t k;
	int rc;
	if ((rc = want_map(c, n, "uniqueness")) || (rc = check_keys(c, n, "uniqueness", keys, 1)))
		return rc;
	if ((v = get(n, "min_distance"))) {
		if ((rc = get_u64(c, v, "uniqueness.min_distance", 0, 64, &k)))
			return rc;
		/* 0 (repeated trait sets allowed) only where each token is its own image: AI
		 * engines draw every token from its own seed; layered images would be identical */
		if (k == 0 && (!c->s->engine || !is_ai_engine(c->s->engine)))
			return fail(c, v, "uniqueness.min_distance 0 lets tokens repeat a trait set, and "
				    "with the compose engine two such tokens would be the same image; "
				    "use 1 or more (0 is for AI engines, whose tokens each get their "
				    "own seed)");
		c->s->min_distance = (unsigned)k;
	}
	return 0;
}

static int parse_attrs(struct ctx *c, struct fy_node *n, struct kiln_legendary *g)
{
	void *it = NULL;
	struct fy_node_pair *p;
	int rc;
	if ((rc = want_map(c, n, "attributes")))
		return rc;
	g->attrs = kiln_calloc((size_t)fy_node_mapping_item_count(n) + 1, sizeof *g->attrs);
	if (!g->attrs)
		return nomem(c);
	while ((p = fy_node_mapping_iterate(n, &it))) {
		struct kiln_attr *a = &g->attrs[g->nattrs++];
		if ((rc = get_nonempty(c, fy_node_pair_key(p), "attribute name", &a->trait_type)) ||
		    (rc = get_str(c, fy_node_pair_value(p), "attribute value", &a->value)))
			return rc;
	}
	return 0;
}

static int parse_legendaries(struct ctx *c, struct fy_node *n)
{
	static const char *const keys[] = {"name", "file", "description", "attributes"};
	struct kiln_spec *s = c->s;
	struct fy_node *v;
	void *it = NULL;
	int rc;
	if ((rc = want_seq(c, n, "legendaries")))
		return rc;
	s->legendaries = kiln_calloc((size_t)fy_node_sequence_item_count(n) + 1,
				     sizeof *s->legendaries);
	if (!s->legendaries)
		return nomem(c);
	while ((v = fy_node_sequence_iterate(n, &it))) {
		struct kiln_legendary *g = &s->legendaries[s->nlegendaries++];
		struct fy_node *x;
		g->loc = loc_of(v);
		if ((rc = want_map(c, v, "a legendary")) ||
		    (rc = check_keys(c, v, "a legendary", keys, 4)))
			return rc;
		if (!(x = get(v, "name")))
			return fail(c, v, "a legendary has no name");
		if ((rc = get_nonempty(c, x, "legendary name", &g->name)))
			return rc;
		for (size_t i = 0; i + 1 < s->nlegendaries; i++)
			if (!strcmp(s->legendaries[i].name, g->name))
				return fail(c, x, "two legendaries are named '%s'", g->name);
		if (!(x = get(v, "file")))
			return fail(c, v, "legendary '%s' has no file: a 1/1 needs its own image",
				    g->name);
		if ((rc = get_nonempty(c, x, "legendary file", &g->file)) ||
		    (rc = check_file(c, x, g->file, "legendary")))
			return rc;
		if ((x = get(v, "description")) &&
		    (rc = get_str(c, x, "legendary description", &g->description)))
			return rc;
		if ((x = get(v, "attributes")) && (rc = parse_attrs(c, x, g)))
			return rc;
	}
	return 0;
}

/* --- the document -------------------------------------------------------------------------- */

static int check_combinations(struct ctx *c, struct fy_node *root)
{
	struct kiln_spec *s = c->s;
	uint64_t gen = kiln_spec_generated(s);
	double combos = 1;
	if (s->nlegendaries > s->size)
		return fail(c, key_node(get(root, "collection"), "size"),
			    "collection.size is %llu but there are %zu legendaries: the size counts "
			    "legendaries too, so raise it", (unsigned long long)s->size,
			    s->nlegendaries);
	for (size_t i = 0; i < s->nlayers; i++) {
		const struct kiln_layer *l = &s->layers[i];
		size_t usable = 0;
		if (l->bypass_dna)
			continue;
		for (size_t t = 0; t < l->ntraits; t++)
			usable += !(l->traits[t].quota == KILN_QUOTA_COUNT && l->traits[t].amount == 0);
		combos *= (double)usable;
	}
	if ((double)gen > combos && s->min_distance > 0)
		return fail(c, key_node(get(root, "collection"), "size"),
			    "collection.size asks for %llu generated tokens but the layers make only "
			    "%.0f distinct combinations (bypass_dna layers do not count): lower the "
			    "size or add traits", (unsigned long long)gen, combos);
	return 0;
}

/* qa: {max_file_size, min_file_size, uniform_stddev, black_level, near_duplicate_distance,
 *      near_duplicate_dhash_distance, near_duplicate_measure: color|phash,
 *      near_duplicate_color_distance, alpha: required|forbidden|any, gate: bool, max_pixels,
 *      checks: {check.id or family.: error|warning|off}}. A check id kiln does not report is
 * a typo that would silently change nothing: an error, with the closest id. */
static int parse_qa(struct ctx *c, struct fy_node *n)
{
	static const char *const keys[] = {"max_file_size", "min_file_size", "uniform_stddev",
					   "black_level", "near_duplicate_distance",
					   "near_duplicate_dhash_distance", "alpha", "checks", "gate",
					   "max_pixels", "near_duplicate_measure",
					   "near_duplicate_color_distance"};
	struct kiln_qa_spec *q = &c->s->qa;
	struct fy_node *v;
	uint64_t x;
	int rc;
	if ((rc = want_map(c, n, "qa")) || (rc = check_keys(c, n, "qa", keys, 12)))
		return rc;
	if ((v = get(n, "near_duplicate_measure"))) {
		const char *t = fy_node_get_type(v) == FYNT_SCALAR ? fy_node_get_scalar0(v) : NULL;
		if (t && (!strcmp(t, "color") || !strcmp(t, "colour")))
			q->near_measure = 1;
		else if (t && !strcmp(t, "phash"))
			q->near_measure = 2;
		else
			return fail(c, v, "qa.near_duplicate_measure is color (the hashes find "
				    "candidates, the colours must agree too) or phash (the hashes "
				    "alone, as Python imagehash)");
	}
	if ((v = get(n, "near_duplicate_color_distance")) &&
	    (rc = get_range(c, v, "qa.near_duplicate_color_distance (delta E)", 0.01, 200,
			    &q->near_color_distance)))
		return rc;
	if ((v = get(n, "gate")) && (rc = get_bool(c, v, "qa.gate", &q->gate)))
		return rc;
	if ((v = get(n, "max_pixels")) &&
	    (rc = get_u64(c, v, "qa.max_pixels", 1, (uint64_t)1 << 40, &q->max_pixels)))
		return rc;
	if ((v = get(n, "max_file_size")) &&
	    (rc = get_u64(c, v, "qa.max_file_size (bytes)", 1, UINT64_MAX, &q->max_bytes)))
		return rc;
	if ((v = get(n, "min_file_size")) &&
	    (rc = get_u64(c, v, "qa.min_file_size (bytes)", 1, UINT64_MAX, &q->min_bytes)))
		return rc;
	if ((v = get(n, "uniform_stddev")) &&
	    (rc = get_double(c, v, "qa.uniform_stddev", &q->uniform_stddev)))
		return rc;
	if ((v = get(n, "black_level"))) {
		if ((rc = get_u64(c, v, "qa.black_level", 0, 254, &x)))
			return rc;
		q->black_level = (int)x;
	}
	if ((v = get(n, "near_duplicate_distance"))) {
		const char *t = fy_node_get_type(v) == FYNT_SCALAR ? fy_node_get_scalar0(v) : NULL;
		if (t && !strcmp(t, "off")) {
			q->near_threshold = -1;
		} else {
			if ((rc = get_u64(c, v, "qa.near_duplicate_distance", 0, 32, &x)))
				return rc;
			q->near_threshold = x ? (int)x : -2; /* -2: exact 0 */
		}
	}
	if ((v = get(n, "near_duplicate_dhash_distance"))) {
		const char *t = fy_node_get_type(v) == FYNT_SCALAR ? fy_node_get_scalar0(v) : NULL;
		if (t && !strcmp(t, "off")) {
			q->near_dhash_threshold = -1;
		} else {
			if ((rc = get_u64(c, v, "qa.near_duplicate_dhash_distance", 0, 32, &x)))
				return rc;
			q->near_dhash_threshold = x ? (int)x : -2; /* -2: exact 0 */
		}
	}
	if ((v = get(n, "alpha"))) {
		const char *t = fy_node_get_type(v) == FYNT_SCALAR ? fy_node_get_scalar0(v) : NULL;
		if (t && !strcmp(t, "required"))
			q->alpha = 1;
		else if (t && !strcmp(t, "forbidden"))
			q->alpha = 0;
		else if (t && !strcmp(t, "any"))
			q->alpha = -1;
		else
			return fail(c, v, "qa.alpha is required, forbidden or any");
	}
	if ((v = get(n, "checks"))) {
		void *it = NULL;
		struct fy_node_pair *p;
		if ((rc = want_map(c, v, "qa.checks")))
			return rc;
		q->checks = kiln_calloc((size_t)fy_node_mapping_item_count(v) + 1, sizeof *q->checks);
		if (!q->checks)
			return nomem(c);
		while ((p = fy_node_mapping_iterate(v, &it))) {
			struct kiln_qa_check *k = &q->checks[q->nchecks];
			struct fy_node *val = fy_node_pair_value(p);
			const char *t = fy_node_get_type(val) == FYNT_SCALAR ? fy_node_get_scalar0(val)
									    : NULL;
			if ((rc = get_nonempty(c, fy_node_pair_key(p), "a check id", &k->check)))
				return rc;
			q->nchecks++;
			if (!kiln_qa_check_known(k->check)) {
				size_t nids;
				const char *const *ids = kiln_qa_check_ids(&nids);
				const char *hint = closest(k->check, ids, nids);
				return fail(c, fy_node_pair_key(p), "qa.checks: '%s' is not a QA check "
					    "id%s%s%s (ids like image.near_duplicate, or a "
					    "family ending in '.' like metaplex.; docs/commands/qa.md "
					    "lists them)", k->check, hint ? ": did you mean '" : "",
					    hint ? hint : "", hint ? "'?" : "");
			}
			if (t && !strcmp(t, "error"))
				k->severity = 0;
			else if (t && !strcmp(t, "warning"))
				k->severity = 1;
			else if (t && (!strcmp(t, "off") || !strcmp(t, "false")))
				k->severity = -1;
			else
				return fail(c, val, "qa check '%s': severity is error, warning or off",
					    k->check);
		}
	}
	return 0;
}

/* paths: {allow: [DIR, ...]}: each an existing folder (relative to the project, or absolute) */
static int parse_paths(struct ctx *c, struct fy_node *n)
{
	static const char *const keys[] = {"allow"};
	struct kiln_spec *s = c->s;
	struct fy_node *v, *x;
	void *iter = NULL;
	int rc;
	if ((rc = want_map(c, n, "paths")) || (rc = check_keys(c, n, "paths", keys, 1)))
		return rc;
	if (!(v = get(n, "allow")))
		return 0;
	if ((rc = want_seq(c, v, "paths.allow")))
		return rc;
	if (!(s->allow_paths = kiln_calloc((size_t)fy_node_sequence_item_count(v) + 1,
					   sizeof *s->allow_paths)))
		return nomem(c);
	while ((x = fy_node_sequence_iterate(v, &iter))) {
		char *d = NULL;
		if ((rc = get_nonempty(c, x, "paths.allow entry", &d))) {
			free(d);
			return rc;
		}
		s->allow_paths[s->nallow_paths++] = d;
		if (c->dir) {
			char *full = kiln_fs_join(c->dir, d);
			int ok;
			if (!full)
				return nomem(c);
			ok = kiln_fs_is_dir(full);
			free(full);
			if (!ok)
				return fail(c, x, "paths.allow: '%s' is not a folder (a path relative to "
					    "the project folder, or absolute)", d);
		}
	}
	return 0;
}

/* portfolio: {enabled: bool, prompts: public|hashed} */
static int parse_portfolio(struct ctx *c, struct fy_node *n)
{
	static const char *const keys[] = {"enabled", "prompts"};
	struct fy_node *v;
	char *pr = NULL;
	int rc;
	if ((rc = want_map(c, n, "portfolio")) || (rc = check_keys(c, n, "portfolio", keys, 2)))
		return rc;
	c->s->portfolio = 1;
	if ((v = get(n, "enabled")) && (rc = get_bool(c, v, "portfolio.enabled",
						      &c->s->portfolio)))
		return rc;
	if ((v = get(n, "prompts"))) {
		if ((rc = get_str(c, v, "portfolio.prompts", &pr)))
			return rc;
		if (strcmp(pr, "public") && strcmp(pr, "hashed"))
			rc = fail(c, v, "portfolio.prompts is public or hashed, not '%s'", pr);
		else
			c->s->portfolio_prompts_hashed = !strcmp(pr, "hashed");
		free(pr);
	}
	return rc;
}

static int parse_root(struct ctx *c, struct fy_node *root)
{
	static const char *const keys[] = {"collection", "image", "engine", "layers", "rules",
					   "uniqueness", "legendaries", "metadata", "generate", "qa",
					   "paths", "review", "polish", "portfolio", "training"};
	struct kiln_spec *s = c->s;
	struct fy_node *v;
	int rc;
	if (!root) {
		fail(c, NULL, "the spec is empty: it holds no YAML, only comments or blank lines");
		return kiln_error_hint(c->e, KILN_HINT_INIT, NULL);
	}
	if ((rc = want_map(c, root, "the spec")) || (rc = check_keys(c, root, "the spec", keys,
							       sizeof keys / sizeof keys[0])))
		return rc;
	/* first: every file named after this is checked against the allowed folders */
	if ((v = get(root, "paths")) && (rc = parse_paths(c, v)))
		return rc;
	if ((v = get(root, "engine"))) {
		if ((rc = get_nonempty(c, v, "engine", &s->engine)))
			return rc;
		if (strcmp(s->engine, "compose") && !is_ai_engine(s->engine)) {
			static const char *const all[] = {"compose", "a1111", "comfyui", "sdcpp"};
			const char *hint = closest(s->engine, all, 4);
			return fail(c, v, "engine '%s' is not available in this version of kiln%s%s%s "
				    "(available: compose, a1111, comfyui, sdcpp)", s->engine,
				    hint ? ": did you mean '" : "", hint ? hint : "", hint ? "'?" : "");
		}
	}
	if (!(v = get(root, "collection")))
		return fail(c, root, "the spec has no collection block: add collection: "
			    "{name: ..., size: ...}");
	if ((rc = parse_collection(c, v)))
		return rc;
	if ((v = get(root, "image")) && (rc = parse_image(c, v)))
		return rc;
	if (!(v = get(root, "layers")))
		return fail(c, root, "the spec has no layers: list them bottom first under layers:");
	if ((rc = parse_layers(c, v)))
		return rc;
	if ((v = get(root, "rules")) && (rc = parse_rules(c, v)))
		return rc;
	if ((v = get(root, "uniqueness")) && (rc = parse_uniqueness(c, v)))
		return rc;
	if ((v = get(root, "legendaries")) && (rc = parse_legendaries(c, v)))
		return rc;
	if ((v = get(root, "metadata")) && (rc = parse_metadata(c, v)))
		return rc;
	if ((v = get(root, "qa")) && (rc = parse_qa(c, v)))
		return rc;
	if ((v = get(root, "review")) && (rc = kiln_spec__parse_review(c, v)))
		return rc;
	if ((v = get(root, "portfolio")) && (rc = parse_portfolio(c, v)))
		return rc;
	if ((v = get(root, "generate")) && (rc = parse_generate(c, v)))
		return rc;
	if (!v && s->engine && strcmp(s->engine, "compose"))
		return fail(c, get(root, "engine"), "engine '%s' needs a generate: block (prompt, "
			    "endpoints, ...): see docs/engines.md", s->engine);
	if ((v = get(root, "polish")) && (rc = parse_polish(c, v)))
		return rc;
	if ((rc = check_polish_svg(c, root)))
		return rc;
	if ((v = get(root, "training")) && (rc = parse_training(c, v)))
		return rc;
	return check_combinations(c, root);
}

static int set_defaults(struct ctx *c)
{
	struct kiln_spec *s = c->s;
	s->width = s->height = 1024;
	s->format = KILN_FORMAT_PNG;
	s->png_compression = 6;
	s->quality = 90;
	s->lossless = 1;
	s->min_distance = 1;
	s->start_id = 1;
	s->targets = KILN_TARGET_ERC721;
	s->qa.alpha = -1;
	s->qa.gate = 1;
	return 0;
}

static int fill_late_defaults(struct ctx *c)
{
	struct kiln_spec *s = c->s;
	if (!s->engine && !(s->engine = kiln_strdup("compose")))
		return nomem(c);
	if (!s->symbol && !(s->symbol = kiln_strdup("")))
		return nomem(c);
	if (!s->description && !(s->description = kiln_strdup("")))
		return nomem(c);
	if (!s->name_pattern && !(s->name_pattern = kiln_strdup("{name} #{id}")))
		return nomem(c);
	if (!s->base_uri && !(s->base_uri = kiln_strdup("ipfs://REPLACE_WITH_IMAGES_CID")))
		return nomem(c);
	if (!s->meta_description && !(s->meta_description = kiln_strdup(s->description)))
		return nomem(c);
	return 0;
}

struct diag_capture {
	char text[1024];
	int got;
};

static void diag_out(struct fy_diag *d, void *user, const char *buf, size_t len)
{
	struct diag_capture *cap = user;
	(void)d;
	if (cap->got || !memmem(buf, len, ": error: ", 9))
		return;
	if (len >= sizeof cap->text)
		len = sizeof cap->text - 1;
	memcpy(cap->text, buf, len);
	cap->text[len] = 0;
	cap->got = 1;
}

/* "<input>:L:C: error: msg\n" -> where "name:L:C", msg */
static int yaml_syntax_error(struct ctx *c, struct diag_capture *cap)
{
	char *p = strstr(cap->text, ": error: ");
	char *msg, *q;
	int line = 0, col = 0;
	char where[512];
	if (!p)
		return kiln_error_set(c->e, KILN_E_SPEC, c->name, "not valid YAML");
	msg = p + 9;
	if ((q = strchr(msg, '\n')))
		*q = 0;
	*p = 0;
	/* the last two ":N" fields before the error are line and column */
	q = strrchr(cap->text, ':');
	if (q) {
		col = atoi(q + 1);
		*q = 0;
		q = strrchr(cap->text, ':');
		if (q)
			line = atoi(q + 1);
	}
	if (line > 0)
		snprintf(where, sizeof where, "%s:%d:%d", c->name, line, col);
	else
		snprintf(where, sizeof where, "%s", c->name);
	return kiln_error_set(c->e, KILN_E_SPEC, where, "not valid YAML: %s", msg);
}

int kiln_spec_parse(struct kiln_spec **out, const char *yaml, size_t len, const char *name,
		    const char *dir, struct kiln_error *e)
{
	struct diag_capture cap = {{0}, 0};
	struct fy_diag_cfg dcfg;
	struct fy_parse_cfg pcfg;
	struct fy_diag *diag = NULL;
	struct fy_document *doc = NULL;
	struct kiln_error scratch;
	struct ctx c = {name, dir, NULL, e ? e : &scratch};
	int rc;

	*out = NULL;
	c.s = kiln_calloc(1, sizeof *c.s);
	if (!c.s)
		return nomem(&c);
	set_defaults(&c);
	if (!(c.s->path = kiln_strdup(name)) || !(c.s->dir = kiln_strdup(dir ? dir : "."))) {
		rc = nomem(&c);
		goto out;
	}
	fy_diag_cfg_default(&dcfg);
	dcfg.fp = NULL;
	dcfg.output_fn = diag_out;
	dcfg.user = &cap;
	dcfg.colorize = false;
	dcfg.show_source = false;
	dcfg.show_position = true;
	diag = fy_diag_create(&dcfg);
	if (!diag) {
		rc = nomem(&c);
		goto out;
	}
	if ((rc = kiln_spec__prescan_bytes(&c, yaml, len)) ||
	    (rc = kiln_spec__prescan_events(&c, yaml, len)))
		goto out;
	memset(&pcfg, 0, sizeof pcfg);
	pcfg.diag = diag;
	pcfg.flags = FYPCF_QUIET | FYPCF_RESOLVE_DOCUMENT; /* aliases: bounded by the prescan */
	doc = fy_document_build_from_string(&pcfg, yaml, len);
	if (!doc && !cap.got) {
		rc = fail(&c, NULL, "the spec is empty: it holds no YAML, only comments or blank "
			  "lines");
		kiln_error_hint(c.e, KILN_HINT_INIT, NULL);
		goto out;
	}
	if (!doc) {
		rc = yaml_syntax_error(&c, &cap);
		goto out;
	}
	rc = parse_root(&c, fy_document_root(doc));
	if (!rc)
		rc = fill_late_defaults(&c);
	if (!rc && c.nbad == 1) {
		*c.e = c.bad[0];
		rc = c.e->code;
	} else if (!rc && c.nbad) {
		const char *names[MAX_BAD_FILES], *whys[MAX_BAD_FILES];
		size_t k = c.nbad < MAX_BAD_FILES ? c.nbad : MAX_BAD_FILES;
		for (size_t i = 0; i < k; i++)
			names[i] = c.bad[i].where, whys[i] = c.bad[i].msg;
		rc = kiln_spec_files_report(c.e, KILN_E_SPEC, name, "trait files", names, whys, k);
		if (c.nbad > k)
			snprintf(c.e->msg + strlen(c.e->msg), sizeof c.e->msg - strlen(c.e->msg),
				 "\n  (%zu in all)", c.nbad);
	}
out:
	free(c.bad);
	if (doc)
		fy_document_destroy(doc);
	if (diag)
		fy_diag_destroy(diag);
	if (rc) {
		kiln_spec_free(c.s);
		return rc;
	}
	*out = c.s;
	return 0;
}

int kiln_spec_load(struct kiln_spec **out, const char *path, struct kiln_error *e)
{
	struct kiln_buf b = KILN_BUF_INIT;
	const char *slash = strrchr(path, '/');
	char *dir = slash ? kiln_strndup(path, (size_t)(slash - path + (slash == path))) :
			    kiln_strdup(".");
	int rc;
	*out = NULL;
	if (!dir)
		return kiln_error_set(e, KILN_E_NOMEM, path, "out of memory");
	rc = kiln_fs_read_limited(path, &b, KILN_SPEC_MAX_BYTES, 1, e);
	if (rc) {
		if (rc != KILN_E_NOMEM && !kiln_fs_exists(path)) {
			rc = kiln_error_set(e, KILN_E_SPEC, path, "no kiln.yaml here");
			kiln_error_hint(e, KILN_HINT_INIT, NULL);
		}
		goto out;
	}
	rc = kiln_spec_parse(out, b.data ? b.data : "", b.len, path, dir, e);
out:
	kiln_buf_release(&b);
	free(dir);
	return rc;
}

static void clauses_free(struct kiln_clause *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(c[i].traits);
	free(c);
}

void kiln_spec_free(struct kiln_spec *s)
{
	if (!s)
		return;
	training_free(s);
	for (size_t i = 0; i < s->nlayers; i++) {
		struct kiln_layer *l = &s->layers[i];
		/* parse_layer may fail after filling traits[ntraits] (the none value) */
		for (size_t t = 0; l->traits && t <= l->ntraits; t++) {
			free(l->traits[t].name);
			free(l->traits[t].file);
			trait_ai_free(&l->traits[t]);
		}
		free(l->traits);
		free(l->name);
	}
	free(s->layers);
	for (size_t i = 0; i < s->nrules; i++) {
		clauses_free(s->rules[i].when, s->rules[i].nwhen);
		clauses_free(s->rules[i].then, s->rules[i].nthen);
	}
	free(s->rules);
	for (size_t i = 0; i < s->nlegendaries; i++) {
		struct kiln_legendary *g = &s->legendaries[i];
		for (size_t a = 0; a < g->nattrs; a++) {
			free(g->attrs[a].trait_type);
			free(g->attrs[a].value);
		}
		free(g->attrs);
		free(g->name);
		free(g->file);
		free(g->description);
	}
	free(s->legendaries);
	free(s->path);
	free(s->dir);
	free(s->name);
	free(s->symbol);
	free(s->description);
	free(s->external_url);
	free(s->engine);
	free(s->name_pattern);
	free(s->base_uri);
	free(s->meta_description);
	for (size_t i = 0; i < s->qa.nchecks; i++)
		free(s->qa.checks[i].check);
	free(s->qa.checks);
	metadata_free(s);
	generate_free(s->generate);
	polish_free(s);
	for (size_t i = 0; i < s->nallow_paths; i++)
		free(s->allow_paths[i]);
	free(s->allow_paths);
	free(s);
}

void kiln_spec_where(const struct kiln_spec *s, struct kiln_loc loc, char *buf, size_t n)
{
	const char *path = s && s->path ? s->path : "kiln.yaml";
	if (loc.line > 0)
		snprintf(buf, n, "%s:%d:%d", path, loc.line, loc.col);
	else
		snprintf(buf, n, "%s", path);
}
