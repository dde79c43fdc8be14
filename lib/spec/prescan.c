/* prescan: kiln.yaml is read as written or refused, before libfyaml builds a document.
 *
 * libfyaml builds every token of a flow collection before it can tell whether the collection
 * is a mapping key, so 14 MB of '[' once took 4.8 GB before its depth error, and a flat list
 * of 8 million items 4.3 GB. Two passes bound that:
 *
 *  1. prescan_bytes(), over the raw bytes, no allocation: the text must be UTF-8 (no NUL, no
 *     UTF-16); flow brackets may nest KILN_SPEC_MAX_DEPTH deep; and an upper estimate of the
 *     tokens (every indicator character and every run of other characters counts one,
 *     wherever it is) must stay under KILN_SPEC_MAX_TOKENS, which bounds what the next pass
 *     can allocate whatever the text. The bracket depth skips comments and quoted text, for
 *     a message at the right place; where it misreads (a quote inside a block scalar) the
 *     token bound and libfyaml's own depth limit still hold.
 *  2. prescan_events(), over libfyaml's parser events: one document only; no explicit tag
 *     (kiln would read !!binary or !foo as plain text); no NUL in a scalar ("\0" in a quoted
 *     string would cut it short in C); and at most KILN_SPEC_MAX_NODES nodes with every alias
 *     counted as the nodes it expands to, so that aliases can be resolved without a "billion
 *     laughs" blow-up.
 * Every refusal names file:line:col. Sizes: passes are linear in the text; the anchor table
 * holds one entry per distinct anchor.
 */
#include "spec/internal.h"
#include "util/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- pass 1: bytes ----------------------------------------------------------------------- */

static int fail_at(struct ctx *c, int line, int col, const char *fmt, ...) KILN_PRINTF(4, 5);
static int fail_at(struct ctx *c, int line, int col, const char *fmt, ...)
{
	char where[512];
	va_list ap;
	snprintf(where, sizeof where, "%s:%d:%d", c->name, line, col);
	kiln_error_set(c->e, KILN_E_SPEC, where, "%s", "");
	va_start(ap, fmt);
	vsnprintf(c->e->msg, sizeof c->e->msg, fmt, ap);
	va_end(ap);
	return KILN_E_SPEC;
}

/* Length of the UTF-8 sequence at p (at most n bytes), or 0 if it is not valid UTF-8. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	size_t len;
	unsigned cp;
	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

static int is_indicator(unsigned char ch)
{
	return ch && strchr("[]{},:?-#&*!|>'\"%@`", ch) != NULL;
}

int kiln_spec__prescan_bytes(struct ctx *c, const char *text, size_t len)
{
	const unsigned char *p = (const unsigned char *)text;
	size_t i = 0, tokens = 0;
	int line = 1, col = 1, depth = 0, in_word = 0, in_comment = 0, esc = 0;
	unsigned char quote = 0;  /* '"' or '\'' inside a quoted scalar */
	unsigned char prev = ' '; /* the byte before, ' ' at a line's start */

	if (len > KILN_SPEC_MAX_BYTES)
		return fail(c, NULL, "the spec is %zu bytes: kiln.yaml is at most %d MiB (%d bytes)",
			    len, KILN_SPEC_MAX_BYTES >> 20, KILN_SPEC_MAX_BYTES);
	if (len >= 2 && ((p[0] == 0xff && p[1] == 0xfe) || (p[0] == 0xfe && p[1] == 0xff)))
		return fail_at(c, 1, 1, "the spec is UTF-16 text (it starts with a UTF-16 byte order "
			       "mark): save kiln.yaml as UTF-8");
	if (len >= 3 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf)
		i = 3; /* a UTF-8 byte order mark is allowed */
	while (i < len) {
		unsigned char ch = p[i];
		size_t n;
		if (!ch)
			return fail_at(c, line, col, "the spec holds a NUL byte at byte offset %zu: "
				       "kiln.yaml must be UTF-8 text (UTF-16 without a byte order "
				       "mark looks like this)", i);
		if (!(n = utf8_len(p + i, len - i)))
			return fail_at(c, line, col, "the spec is not UTF-8 text: byte offset %zu "
				       "(0x%02x) is not valid UTF-8; save kiln.yaml as UTF-8", i, ch);
		/* the token estimate counts every byte whatever the context, so that no
		 * misreading of quotes or comments below can hide tokens from it */
		if (is_indicator(ch) || ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
			tokens += is_indicator(ch);
			in_word = 0;
		} else if (!in_word) {
			in_word = 1;
			tokens++;
		}
		if (tokens > KILN_SPEC_MAX_TOKENS)
			return fail_at(c, line, col, "the spec is too large: more than %d YAML tokens "
				       "(words, brackets, commas, colons) by here, the most kiln.yaml "
				       "may hold", KILN_SPEC_MAX_TOKENS);
		/* depth: brackets outside comments and quoted text (a quoted scalar may span
		 * lines; a comment ends with its line) */
		if (ch == '\n') {
			line++;
			col = 0;
			in_comment = 0;
			ch = ' ';
		} else if (in_comment) {
			/* nothing */
		} else if (quote) {
			if (esc)
				esc = 0;
			else if (quote == '"' && ch == '\\')
				esc = 1;
			else if (ch == quote && quote == '\'' && i + 1 < len && p[i + 1] == '\'')
				esc = 1; /* '' inside single quotes */
			else if (ch == quote)
				quote = 0;
		} else if (ch == '#' && (prev == ' ' || prev == '\t')) {
			in_comment = 1;
		} else if ((ch == '"' || ch == '\'') && (prev == ' ' || prev == '\t' ||
							  strchr("[{,:?-", prev))) {
			quote = ch;
		} else if (ch == '[' || ch == '{') {
			if (++depth > KILN_SPEC_MAX_DEPTH)
				return fail_at(c, line, col, "the spec nests deeper than %d levels of "
					       "'[' and '{'", KILN_SPEC_MAX_DEPTH);
		} else if ((ch == ']' || ch == '}') && depth > 0) {
			depth--;
		}
		prev = ch;
		i += n;
		col++;
	}
	return 0;
}

/* ---- pass 2: events ---------------------------------------------------------------------- */

struct anchor {
	char *name;
	uint64_t nodes;  /* nodes the anchored node expands to */
};

struct anchors {
	struct anchor *v;  /* open addressing, cap a power of two */
	size_t n, cap;
};

static uint64_t hash_name(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
	return h;
}

static struct anchor *anchor_find(struct anchors *t, const char *name, size_t len)
{
	if (!t->cap)
		return NULL;
	for (size_t i = hash_name(name, len) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
		struct anchor *a = &t->v[i];
		if (!a->name || (strlen(a->name) == len && !memcmp(a->name, name, len)))
			return a;
	}
}

/* A later anchor of the same name replaces the earlier one, as YAML says. */
static int anchor_set(struct anchors *t, const char *name, size_t len, uint64_t nodes)
{
	struct anchor *a;
	if ((t->n + 1) * 2 > t->cap) {
		struct anchors g = {NULL, 0, t->cap ? t->cap * 2 : 64};
		if (!(g.v = kiln_calloc(g.cap, sizeof *g.v)))
			return KILN_E_NOMEM;
		for (size_t i = 0; i < t->cap; i++)
			if (t->v[i].name) {
				*anchor_find(&g, t->v[i].name, strlen(t->v[i].name)) = t->v[i];
				g.n++;
			}
		free(t->v);
		*t = g;
	}
	a = anchor_find(t, name, len);
	if (!a->name) {
		if (!(a->name = kiln_strndup(name, len)))
			return KILN_E_NOMEM;
		t->n++;
	}
	a->nodes = nodes;
	return 0;
}

static void anchors_free(struct anchors *t)
{
	for (size_t i = 0; i < t->cap; i++)
		free(t->v[i].name);
	free(t->v);
}

/* An open collection: the nodes counted in it so far, and its anchor (NULL: none). */
struct frame {
	uint64_t nodes;
	char *anchor;             /* owned copy */
	size_t anchor_len;
};

static struct kiln_loc mark_loc(const struct fy_mark *m)
{
	struct kiln_loc l = {m ? m->line + 1 : 1, m ? m->column + 1 : 1};
	return l;
}

/* Whether the double-quoted scalar between marks a and b writes a NUL as an escape. The raw
 * text is read rather than libfyaml's processed one: the bytes themselves hold no NUL (pass 1),
 * and fy_token_get_text() leaks on some quoted scalars in libfyaml 0.7.12. */
static int escapes_nul(const char *text, size_t len, const struct fy_mark *a,
		       const struct fy_mark *b)
{
	size_t i = a ? a->input_pos : len, end = b && b->input_pos < len ? b->input_pos : len;
	while (i + 1 < end) {
		size_t k, zeros;
		if (text[i] != '\\') {
			i++;
			continue;
		}
		switch (text[i + 1]) {
		case '0': return 1;
		case 'x': zeros = 2; break;
		case 'u': zeros = 4; break;
		case 'U': zeros = 8; break;
		default: zeros = 0; break;
		}
		for (k = 0; zeros && k < zeros && i + 2 + k < end && text[i + 2 + k] == '0'; k++)
			;
		if (zeros && k == zeros)
			return 1;
		i += 2; /* the escape pair, so that \\0 is a backslash and a zero */
	}
	return 0;
}

/* The tag as written ("!!binary", "!foo"), from the text at its mark. */
static void tag_text(const char *text, size_t len, const struct fy_mark *m, char *out, size_t cap)
{
	size_t i = m ? m->input_pos : len, n = 0;
	while (i < len && n + 1 < cap && text[i] != ' ' && text[i] != '\t' && text[i] != '\n' &&
	       text[i] != '\r' && text[i] != ',' && text[i] != ']' && text[i] != '}')
		out[n++] = text[i++];
	out[n] = 0;
	if (!n)
		snprintf(out, cap, "a tag");
}

static void diag_discard(struct fy_diag *d, void *user, const char *buf, size_t len)
{
	(void)d;
	(void)user;
	(void)buf;
	(void)len;
}

int kiln_spec__prescan_events(struct ctx *c, const char *text, size_t len)
{
	struct fy_parse_cfg cfg;
	struct fy_diag_cfg dcfg;
	struct fy_diag *diag = NULL;
	struct fy_parser *fyp = NULL;
	struct fy_event *ev;
	struct anchors anchors = {NULL, 0, 0};
	struct frame stack[KILN_SPEC_MAX_DEPTH + 2];
	size_t depth = 0;
	int docs = 0, rc = 0;

	memset(&cfg, 0, sizeof cfg);
	cfg.flags = FYPCF_QUIET;
	memset(stack, 0, sizeof stack);
	/* libfyaml prints errors to stderr unless given a diag; the library never prints (a
	 * syntax error is reported by the document build, through the loader's diag) */
	fy_diag_cfg_default(&dcfg);
	dcfg.fp = NULL;
	dcfg.output_fn = diag_discard;
	dcfg.colorize = false;
	if (!(cfg.diag = diag = fy_diag_create(&dcfg)) || !(fyp = fy_parser_create(&cfg)) ||
	    fy_parser_set_string(fyp, text, len)) {
		rc = nomem(c);
		goto out;
	}
	/* stack[0] counts the document's nodes */
	while (!rc && (ev = fy_parser_parse(fyp))) {
		struct fy_token *tag = NULL, *anchor = NULL;
		struct kiln_loc l = mark_loc(fy_event_start_mark(ev));
		uint64_t add = 0;
		switch (ev->type) {
		case FYET_DOCUMENT_START:
			if (++docs > 1)
				rc = fail_at(c, l.line, l.col, "a second YAML document starts here: "
					     "kiln.yaml holds one document (remove this '---' and what "
					     "follows, or merge it into the first)");
			break;
		case FYET_SCALAR:
			tag = ev->scalar.tag;
			anchor = ev->scalar.anchor;
			if (fy_token_scalar_style(ev->scalar.value) == FYSS_DOUBLE_QUOTED &&
			    escapes_nul(text, len, fy_token_start_mark(ev->scalar.value),
					fy_token_end_mark(ev->scalar.value)))
				rc = fail_at(c, l.line, l.col, "this text holds a NUL character "
					     "(\\0, \\x00 or \\u0000): kiln cannot keep it; remove it");
			add = 1;
			break;
		case FYET_ALIAS: {
			size_t n = 0;
			const char *name = fy_token_get_text(ev->alias.anchor, &n);
			struct anchor *a = name ? anchor_find(&anchors, name, n) : NULL;
			add = a && a->name ? a->nodes : 1; /* an unknown alias: libfyaml says so */
			break;
		}
		case FYET_SEQUENCE_START:
		case FYET_MAPPING_START:
			tag = ev->type == FYET_SEQUENCE_START ? ev->sequence_start.tag
							       : ev->mapping_start.tag;
			anchor = ev->type == FYET_SEQUENCE_START ? ev->sequence_start.anchor
								  : ev->mapping_start.anchor;
			if (depth + 1 >= sizeof stack / sizeof stack[0]) {
				rc = fail_at(c, l.line, l.col, "the spec nests deeper than %d levels",
					     KILN_SPEC_MAX_DEPTH);
				break;
			}
			depth++;
			memset(&stack[depth], 0, sizeof stack[depth]);
			stack[depth].nodes = 1;
			if (anchor) {
				size_t n = 0;
				const char *name = fy_token_get_text(anchor, &n);
				if (name && !(stack[depth].anchor = kiln_strndup(name, n)))
					rc = nomem(c);
				stack[depth].anchor_len = n;
			}
			anchor = NULL; /* recorded at the end */
			break;
		case FYET_SEQUENCE_END:
		case FYET_MAPPING_END:
			if (!depth)
				break;
			add = stack[depth].nodes;
			if (stack[depth].anchor &&
			    anchor_set(&anchors, stack[depth].anchor, stack[depth].anchor_len, add))
				rc = nomem(c);
			free(stack[depth].anchor);
			stack[depth].anchor = NULL;
			depth--;
			break;
		default:
			break;
		}
		if (!rc && tag) {
			char t[64];
			tag_text(text, len, fy_token_start_mark(tag), t, sizeof t);
			rc = fail_at(c, mark_loc(fy_token_start_mark(tag)).line,
				     mark_loc(fy_token_start_mark(tag)).col, "explicit YAML tags are "
				     "not read (kiln would take the value as plain text): remove %s", t);
		}
		if (!rc && anchor) {
			size_t n = 0;
			const char *name = fy_token_get_text(anchor, &n);
			if (name && anchor_set(&anchors, name, n, add))
				rc = nomem(c);
		}
		if (!rc && add) {
			stack[depth].nodes += add;
			if (stack[depth].nodes > KILN_SPEC_MAX_NODES || add > KILN_SPEC_MAX_NODES)
				rc = fail_at(c, l.line, l.col, ev->type == FYET_ALIAS ?
					     "this alias takes the spec over %d nodes once expanded "
					     "(aliases of anchors that hold aliases multiply): kiln.yaml "
					     "holds at most %d" : "the spec has more than %d nodes by "
					     "here: kiln.yaml holds at most %d", KILN_SPEC_MAX_NODES,
					     KILN_SPEC_MAX_NODES);
		}
		fy_parser_event_free(fyp, ev);
	}
	/* a syntax error ends the events early: the document build reports it with line:col */
out:
	while (depth > 0)
		free(stack[depth--].anchor);
	anchors_free(&anchors);
	if (fyp)
		fy_parser_destroy(fyp);
	if (diag)
		fy_diag_destroy(diag);
	return rc;
}
