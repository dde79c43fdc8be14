/* lib/spec/internal.h: what spec.c (the core and the loader), ai.c (the generate: block and
 * the AI keys of a trait) and metadata.c (the metadata: block) share. Private to lib/spec.
 *
 * Every parse_X(c, node) checks one block against its schema and fills c->s; the first
 * problem ends the load through fail(), which puts "file:line:col" of the node in e->where.
 * The short helper names read well in the parsers; the linker sees them as kiln_spec__NAME
 * (the macros below), so they cannot clash with anything outside lib/spec.
 */
#ifndef KILN_SPEC_INTERNAL_H
#define KILN_SPEC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <libfyaml.h>
#include "kiln/error.h"
#include "kiln/spec.h"

/* The parse of one kiln.yaml. */
struct ctx {
	const char *name;        /* file name used in messages */
	const char *dir;         /* project folder, NULL: do not check files */
	struct kiln_spec *s;     /* being filled; freed by the loader on error */
	struct kiln_error *e;    /* never NULL */
	/* trait files that failed check_file, kept so every one is named in one error at the
	 * end instead of the first alone (at most MAX_BAD_FILES kept, nbad counts them all) */
	struct kiln_error *bad;
	size_t nbad;
};
#define MAX_BAD_FILES 64

#define loc_of kiln_spec__loc_of
#define fail kiln_spec__fail
#define nomem kiln_spec__nomem
#define type_name kiln_spec__type_name
#define edit_distance kiln_spec__edit_distance
#define closest kiln_spec__closest
#define list_names kiln_spec__list_names
#define check_keys kiln_spec__check_keys
#define get kiln_spec__get
#define key_node kiln_spec__key_node
#define want_map kiln_spec__want_map
#define want_seq kiln_spec__want_seq
#define get_str kiln_spec__get_str
#define get_nonempty kiln_spec__get_nonempty
#define plain_scalar kiln_spec__plain_scalar
#define get_double kiln_spec__get_double
#define get_u64 kiln_spec__get_u64
#define get_int kiln_spec__get_int
#define get_bool kiln_spec__get_bool
#define get_range kiln_spec__get_range
#define check_file kiln_spec__check_file
#define is_ai_engine kiln_spec__is_ai_engine
#define parse_trait_ai kiln_spec__parse_trait_ai
#define trait_ai_free kiln_spec__trait_ai_free
#define parse_generate kiln_spec__parse_generate
#define parse_runpod kiln_spec__parse_runpod
#define endpoint_release kiln_spec__endpoint_release
#define parse_training kiln_spec__parse_training
#define training_free kiln_spec__training_free
#define generate_free kiln_spec__generate_free
#define parse_metadata kiln_spec__parse_metadata
#define metadata_free kiln_spec__metadata_free
#define parse_polish kiln_spec__parse_polish
#define check_polish_svg kiln_spec__check_polish_svg
#define polish_free kiln_spec__polish_free

/* ---- node helpers (spec.c) ---- */

/* Where n was written (its first scalar for a mapping or list); {0, 0} for NULL. */
struct kiln_loc loc_of(struct fy_node *n);
/* Fill c->e (KILN_E_SPEC, where "file:line:col" of n, or the file alone when n is NULL) and
 * return KILN_E_SPEC. */
int fail(struct ctx *c, struct fy_node *n, const char *fmt, ...) KILN_PRINTF(3, 4);
int nomem(struct ctx *c);
const char *type_name(struct fy_node *n);  /* "a scalar", "a mapping", "a list" */
/* Case-insensitive edit distance of short strings (99 for long ones), for "did you mean". */
size_t edit_distance(const char *a, const char *b);
/* The name closest to word (distance < 3), or NULL. */
const char *closest(const char *word, const char *const *names, size_t n);
void list_names(char *out, size_t cap, const char *const *names, size_t n);
/* Every key of mapping n must be one of keys[] (else: "unknown key", with a did-you-mean). */
int check_keys(struct ctx *c, struct fy_node *n, const char *block, const char *const *keys,
	       size_t nkeys);
/* The value of key in map, or NULL (map may be NULL or not a mapping). */
struct fy_node *get(struct fy_node *map, const char *key);
/* The key node itself (for a message's line:col), or map when the key is absent. */
struct fy_node *key_node(struct fy_node *map, const char *key);
int want_map(struct ctx *c, struct fy_node *n, const char *what);
int want_seq(struct ctx *c, struct fy_node *n, const char *what);
/* Scalars: *out is replaced by a copy the spec owns. Messages quote the text as written. */
int get_str(struct ctx *c, struct fy_node *n, const char *what, char **out);
int get_nonempty(struct ctx *c, struct fy_node *n, const char *what, char **out);
int plain_scalar(struct ctx *c, struct fy_node *n, const char *what, const char **v);
int get_double(struct ctx *c, struct fy_node *n, const char *what, double *out);
int get_u64(struct ctx *c, struct fy_node *n, const char *what, uint64_t lo, uint64_t hi,
	    uint64_t *out);
int get_int(struct ctx *c, struct fy_node *n, const char *what, int lo, int hi, int *out);
int get_bool(struct ctx *c, struct fy_node *n, const char *what, int *out);
int get_range(struct ctx *c, struct fy_node *n, const char *what, double lo, double hi,
	      double *out);
/* file (relative to c->dir) must be a regular file; nothing is checked when c->dir is NULL. */
int check_file(struct ctx *c, struct fy_node *n, const char *file, const char *what);

/* ---- the text before the document (prescan.c) ---- */

/* The raw text: size, UTF-8 (no NUL, no UTF-16), bracket depth, token estimate. */
int kiln_spec__prescan_bytes(struct ctx *c, const char *text, size_t len);
/* libfyaml's events: one document, no explicit tag, no NUL in a scalar, at most
 * KILN_SPEC_MAX_NODES nodes with aliases expanded. A syntax error is left to the document
 * build, which reports it with its line:col. */
int kiln_spec__prescan_events(struct ctx *c, const char *text, size_t len);

/* ---- AI engines (ai.c) ---- */

int is_ai_engine(const char *engine);     /* a1111, comfyui or sdcpp */
/* A trait's prompt, negative, lora and controlnet keys (what: "trait 'X' of layer 'Y'"). */
int parse_trait_ai(struct ctx *c, struct fy_node *n, const char *what, struct kiln_trait *t);
void trait_ai_free(struct kiln_trait *t);
/* generate: (after layers:, whose names its templates use) */
int parse_generate(struct ctx *c, struct fy_node *n);
void generate_free(struct kiln_generate *g);
/* A RunPod endpoint's keys into ep (training: a trainer's, without platform and worker) */
int parse_runpod(struct ctx *c, struct fy_node *n, struct kiln_endpoint *ep, int training);
/* Free what an endpoint owns (not ep itself) */
void endpoint_release(struct kiln_endpoint *ep);

/* ---- training (training.c) ---- */

/* training: (after layers:, whose names caption templates over traits use) */
int parse_training(struct ctx *c, struct fy_node *n);
void training_free(struct kiln_spec *s);

/* ---- metadata (metadata.c) ---- */

/* metadata: (after collection, layers and legendaries, which Metaplex's limits look at) */
int parse_metadata(struct ctx *c, struct fy_node *n);
void metadata_free(struct kiln_spec *s);

/* review: {required, approvals} (review.c) */
int kiln_spec__parse_review(struct ctx *c, struct fy_node *n);
/* ---- polish (polish.c) ---- */

/* polish: (after layers:, image: and engine:, whose names and sizes it uses) */
int parse_polish(struct ctx *c, struct fy_node *n);
/* image.format svg needs a vectorize step last, for every token */
int check_polish_svg(struct ctx *c, struct fy_node *root);
void polish_free(struct kiln_spec *s);

#endif
