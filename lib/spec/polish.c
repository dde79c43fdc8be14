/* polish.c: the polish: block of kiln.yaml (docs/spec.md "polish"), the steps lib/polish
 * applies to every token's image after render, in order:
 *
 *   polish:
 *     - overlay: {file: hands/fix.png, only: {Hands: Six}}     # a human-made layer on top
 *     - upscale: {factor: 2, method: nearest}                   # lanczos | nearest | engine
 *     - vectorize: {mode: pixels}                               # pixels | trace (colors: N)
 *
 * Each list entry is a mapping with one step key and, optionally, `only:` (a trait filter:
 * {Layer: Value | [Values]}) or `tokens:` (ids), beside the step key or inside its mapping.
 * An upscale applies to every token (the released images share one size); image.format: svg
 * needs a vectorize for every token, last.
 * Called from spec.c after layers: and image:; calls only node.c.
 */
#include "spec/internal.h"
#include "util/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_only(struct ctx *c, struct fy_node *n, struct kiln_polish_op *o)
{
	const struct kiln_spec *s = c->s;
	void *it = NULL;
	struct fy_node_pair *p;
	int rc;
	if ((rc = want_map(c, n, "polish only")))
		return rc;
	o->only = kiln_calloc((size_t)fy_node_mapping_item_count(n) + 1, sizeof *o->only);
	if (!o->only)
		return nomem(c);
	while ((p = fy_node_mapping_iterate(n, &it))) {
		struct fy_node *k = fy_node_pair_key(p), *v = fy_node_pair_value(p), *w;
		struct kiln_polish_only *f = &o->only[o->nonly];
		const char *name = fy_node_get_type(k) == FYNT_SCALAR ? fy_node_get_scalar0(k) : NULL;
		long li = name ? kiln_spec_layer_index(s, name) : -1;
		void *vit = NULL;
		size_t cap;
		if (li < 0)
			return fail(c, k, "polish only: names layer '%s', which the spec does not have",
				    name ? name : "?");
		f->layer = (size_t)li;
		cap = fy_node_get_type(v) == FYNT_SEQUENCE ? (size_t)fy_node_sequence_item_count(v)
							   : 1;
		if (!cap)
			return fail(c, v, "polish only: layer '%s' lists no value", name);
		if (!(f->values = kiln_calloc(cap, sizeof *f->values)))
			return nomem(c);
		o->nonly++;
		for (w = fy_node_get_type(v) == FYNT_SEQUENCE ? fy_node_sequence_iterate(v, &vit) : v;
		     w; w = fy_node_get_type(v) == FYNT_SEQUENCE ?
				    fy_node_sequence_iterate(v, &vit) : NULL) {
			const char *val = fy_node_get_type(w) == FYNT_SCALAR ?
						  fy_node_get_scalar0(w) : NULL;
			long ti = val ? kiln_layer_trait_index(&s->layers[li], val) : -1;
			if (ti < 0)
				return fail(c, w, "polish only: layer '%s' has no value '%s'", name,
					    val ? val : type_name(w));
			f->values[f->nvalues++] = (uint32_t)ti;
		}
	}
	return 0;
}

static int parse_tokens(struct ctx *c, struct fy_node *n, struct kiln_polish_op *o)
{
	void *it = NULL;
	struct fy_node *v;
	int rc;
	if ((rc = want_seq(c, n, "polish tokens")))
		return rc;
	if (!(o->tokens = kiln_calloc((size_t)fy_node_sequence_item_count(n) + 1,
				      sizeof *o->tokens)))
		return nomem(c);
	while ((v = fy_node_sequence_iterate(n, &it)))
		if ((rc = get_u64(c, v, "a polish token id", 0, KILN_ID_MAX,
				  &o->tokens[o->ntokens++])))
			return rc;
	return 0;
}

static int parse_upscale(struct ctx *c, struct fy_node *n, struct kiln_polish_op *o)
{
	static const char *const keys[] = {"factor", "method", "upscaler"};
	struct fy_node *v;
	const char *m;
	int rc;
	o->factor = 2;
	o->method = KILN_UPSCALE_LANCZOS;
	if ((rc = want_map(c, n, "polish upscale")) ||
	    (rc = check_keys(c, n, "polish upscale", keys, 3)))
		return rc;
	if ((v = get(n, "factor"))) {
		if ((rc = get_int(c, v, "polish upscale factor", 2, 4, &o->factor)))
			return rc;
		if (o->factor == 3)
			return fail(c, v, "polish upscale factor must be 2 or 4, got 3");
	}
	if ((v = get(n, "method"))) {
		if ((rc = plain_scalar(c, v, "polish upscale method", &m)))
			return rc;
		if (!strcmp(m, "lanczos"))
			o->method = KILN_UPSCALE_LANCZOS;
		else if (!strcmp(m, "nearest"))
			o->method = KILN_UPSCALE_NEAREST;
		else if (!strcmp(m, "engine"))
			o->method = KILN_UPSCALE_ENGINE;
		else
			return fail(c, v, "polish upscale method must be lanczos, nearest or engine, "
				    "got '%s'", m);
	}
	if ((v = get(n, "upscaler"))) {
		if (o->method != KILN_UPSCALE_ENGINE)
			return fail(c, v, "polish upscale upscaler is for method: engine (the AI "
				    "server's upscaler)");
		if ((rc = get_nonempty(c, v, "polish upscale upscaler", &o->upscaler)))
			return rc;
	}
	if (o->method == KILN_UPSCALE_ENGINE && (!c->s->engine || !is_ai_engine(c->s->engine)))
		return fail(c, n, "polish upscale method engine needs an AI engine (a1111 or "
			    "comfyui) and its endpoints in generate:");
	return 0;
}

static int parse_vectorize(struct ctx *c, struct fy_node *n, struct kiln_polish_op *o)
{
	static const char *const keys[] = {"mode", "colors", "only", "tokens"};
	struct fy_node *v;
	const char *m;
	int rc;
	o->mode = KILN_VECTOR_PIXELS;
	o->colors = 8;
	if ((rc = want_map(c, n, "polish vectorize")) ||
	    (rc = check_keys(c, n, "polish vectorize", keys, 4)))
		return rc;
	if ((v = get(n, "mode"))) {
		if ((rc = plain_scalar(c, v, "polish vectorize mode", &m)))
			return rc;
		if (!strcmp(m, "pixels"))
			o->mode = KILN_VECTOR_PIXELS;
		else if (!strcmp(m, "trace"))
			o->mode = KILN_VECTOR_TRACE;
		else
			return fail(c, v, "polish vectorize mode must be pixels (an exact SVG for "
				    "pixel art) or trace (colours traced with potrace), got '%s'", m);
	}
	if ((v = get(n, "colors"))) {
		if (o->mode != KILN_VECTOR_TRACE)
			return fail(c, v, "polish vectorize colors is for mode: trace (pixels keeps "
				    "every colour)");
		if ((rc = get_int(c, v, "polish vectorize colors", 2, 64, &o->colors)))
			return rc;
	}
	return 0;
}

static int parse_overlay(struct ctx *c, struct fy_node *n, struct kiln_polish_op *o)
{
	static const char *const keys[] = {"file", "only", "tokens"};
	struct fy_node *v;
	int rc;
	if ((rc = want_map(c, n, "polish overlay")) ||
	    (rc = check_keys(c, n, "polish overlay", keys, 3)))
		return rc;
	if (!(v = get(n, "file")))
		return fail(c, n, "polish overlay needs a file: the layer drawn on top, at the "
			    "image's size");
	if ((rc = get_nonempty(c, v, "polish overlay file", &o->file)))
		return rc;
	return check_file(c, v, o->file, "polish overlay");
}

static int parse_op(struct ctx *c, struct fy_node *n, struct kiln_polish_op *o)
{
	static const char *const keys[] = {"upscale", "vectorize", "overlay", "only", "tokens"};
	static const char *const kinds[] = {"upscale", "vectorize", "overlay"};
	struct fy_node *v = NULL;
	int rc, found = 0;
	o->loc = loc_of(n);
	if ((rc = want_map(c, n, "a polish step")) ||
	    (rc = check_keys(c, n, "a polish step", keys, 5)))
		return rc;
	for (int k = 0; k < 3; k++)
		if (get(n, kinds[k])) {
			if (found++)
				return fail(c, n, "a polish step has one of upscale, vectorize or "
					    "overlay; this one has more: make them steps of their own");
			o->kind = (enum kiln_polish_kind)k;
			v = get(n, kinds[k]);
		}
	if (!found)
		return fail(c, n, "a polish step needs one of upscale, vectorize or overlay");
	rc = o->kind == KILN_POLISH_UPSCALE ? parse_upscale(c, v, o) :
	     o->kind == KILN_POLISH_VECTORIZE ? parse_vectorize(c, v, o) : parse_overlay(c, v, o);
	if (rc)
		return rc;
	/* only/tokens beside the step key, or inside its mapping (one of the two) */
	for (int in = 0; in < 2; in++) {
		struct fy_node *m = in ? get(n, kinds[o->kind]) : n, *w;
		if (in && fy_node_get_type(m) != FYNT_MAPPING)
			break;
		if ((w = get(m, "only")) && o->only)
			return fail(c, w, "this polish step has two only: filters: keep one");
		if ((w = get(m, "tokens")) && o->tokens)
			return fail(c, w, "this polish step has two tokens: lists: keep one");
		if ((w = get(m, "only")) && (rc = parse_only(c, w, o)))
			return rc;
		if ((w = get(m, "tokens")) && (rc = parse_tokens(c, w, o)))
			return rc;
	}
	if (o->kind == KILN_POLISH_UPSCALE && (o->nonly || o->ntokens))
		return fail(c, key_node(n, o->nonly ? "only" : "tokens"), "an upscale applies to "
			    "every token (the released images share one size): remove only/tokens");
	return 0;
}

int kiln_spec__parse_polish(struct ctx *c, struct fy_node *n)
{
	struct kiln_spec *s = c->s;
	void *it = NULL;
	struct fy_node *v;
	int rc, scale = 1;
	if ((rc = want_seq(c, n, "polish")))
		return rc;
	s->polish = kiln_calloc((size_t)fy_node_sequence_item_count(n) + 1, sizeof *s->polish);
	if (!s->polish)
		return nomem(c);
	while ((v = fy_node_sequence_iterate(n, &it))) {
		struct kiln_polish_op *o = &s->polish[s->npolish++];
		if ((rc = parse_op(c, v, o)))
			return rc;
		if (o->kind == KILN_POLISH_UPSCALE && (scale *= o->factor) * (int64_t)s->width >
							      32768)
			return fail(c, v, "the polish upscales make images wider than 32768 pixels "
				    "(%d x %d)", s->width, scale);
		if (o->kind == KILN_POLISH_VECTORIZE && s->npolish > 1 &&
		    s->polish[s->npolish - 2].kind == KILN_POLISH_VECTORIZE)
			return fail(c, v, "two vectorize steps in a row: keep one");
	}
	return 0;
}

int kiln_spec__check_polish_svg(struct ctx *c, struct fy_node *root)
{
	const struct kiln_spec *s = c->s;
	const struct kiln_polish_op *last = s->npolish ? &s->polish[s->npolish - 1] : NULL;
	if (!s->image_svg)
		return 0;
	if (!last || last->kind != KILN_POLISH_VECTORIZE || last->nonly || last->ntokens)
		return fail(c, get(root, "polish") ? get(root, "polish") : get(root, "image"),
			    "image.format svg needs a polish vectorize step last, for every token "
			    "(the SVG is the token's image)");
	return 0;
}

void kiln_spec__polish_free(struct kiln_spec *s)
{
	for (size_t i = 0; i < s->npolish; i++) {
		struct kiln_polish_op *o = &s->polish[i];
		free(o->upscaler);
		free(o->file);
		for (size_t k = 0; k < o->nonly; k++)
			free(o->only[k].values);
		free(o->only);
		free(o->tokens);
	}
	free(s->polish);
}

int kiln_spec_polish_scale(const struct kiln_spec *s)
{
	int k = 1;
	for (size_t i = 0; i < s->npolish; i++)
		if (s->polish[i].kind == KILN_POLISH_UPSCALE)
			k *= s->polish[i].factor;
	return k;
}

int kiln_polish_op_applies(const struct kiln_polish_op *o, const uint32_t *traits, uint64_t id)
{
	if (o->ntokens) {
		size_t i = 0;
		while (i < o->ntokens && o->tokens[i] != id)
			i++;
		if (i == o->ntokens)
			return 0;
	}
	for (size_t k = 0; k < o->nonly; k++) {
		size_t i = 0;
		if (!traits)
			return 0;
		while (i < o->only[k].nvalues && o->only[k].values[i] != traits[o->only[k].layer])
			i++;
		if (i == o->only[k].nvalues)
			return 0;
	}
	return 1;
}
