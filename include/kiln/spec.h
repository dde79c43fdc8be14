/* kiln/spec.h: a collection as the studio declared it in kiln.yaml, parsed and validated.
 *
 * kiln_spec_load() parses with libfyaml, checks every key, type and file, and either returns a
 * complete spec or fails with the file:line:col of the first problem and what to fix
 * (KILN_E_SPEC). Nothing in a loaded spec needs checking again. All strings are owned by the
 * spec and freed by kiln_spec_free(). Paths (trait files, legendary files) are kept as written,
 * relative to the project folder `dir`.
 *
 * Sizes: tens of layers, hundreds of traits, tens of rules; collection size up to millions.
 */
#ifndef KILN_SPEC_H
#define KILN_SPEC_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/error.h"

enum kiln_format { KILN_FORMAT_PNG, KILN_FORMAT_WEBP, KILN_FORMAT_JPEG };

/* How a trait's share of its layer is given. */
enum kiln_quota { KILN_QUOTA_WEIGHT, KILN_QUOTA_PERCENT, KILN_QUOTA_COUNT };

/* Layer blend modes: the names are libvips' (and CSS's) */
enum kiln_blend {
	KILN_BLEND_OVER, KILN_BLEND_MULTIPLY, KILN_BLEND_SCREEN, KILN_BLEND_OVERLAY,
	KILN_BLEND_DARKEN, KILN_BLEND_LIGHTEN, KILN_BLEND_ADD, KILN_BLEND_SOFT_LIGHT,
	KILN_BLEND_HARD_LIGHT, KILN_BLEND_DIFFERENCE,
};

/* Where something was written in kiln.yaml (1-based; 0 when not from the file). */
struct kiln_loc {
	int line;
	int col;
};

struct kiln_trait {
	char *name;            /* value shown in metadata; for the none value: spec's none name */
	char *file;            /* layer image, relative to the project dir; NULL for none / AI-only */
	enum kiln_quota quota; /* which of amount's meanings */
	double amount;         /* weight (>0), percent (0 < p <= 100) or count (integer >= 0) */
	int is_none;           /* the layer's "none" value: left out of metadata and of images */
	struct kiln_loc loc;
};

struct kiln_layer {
	char *name;
	struct kiln_trait *traits; /* ntraits values; the none value, if any, is the last one */
	size_t ntraits;
	int has_none;              /* traits[ntraits-1] is the none value */
	enum kiln_blend blend;
	double opacity;            /* 0..1, default 1 */
	int bypass_dna;            /* left out of uniqueness comparison */
	struct kiln_loc loc;
};

/* A (layer, value) reference, by index into spec->layers and layer->traits. */
struct kiln_tref {
	size_t layer;
	size_t trait;
};

/* One clause: a layer and a set of its values (trait indexes). */
struct kiln_clause {
	size_t layer;
	size_t *traits;
	size_t ntraits;
};

enum kiln_rule_kind {
	KILN_RULE_EXCLUDE, /* no token holds one value of every clause at once */
	KILN_RULE_IF,      /* a token holding a value of `when` holds a value of every `then` clause */
	KILN_RULE_WITH,    /* the values go together: a token holds all of them or none of them */
};

struct kiln_rule {
	enum kiln_rule_kind kind;
	struct kiln_clause *when;  /* EXCLUDE and WITH: all clauses; IF: the condition */
	size_t nwhen;
	struct kiln_clause *then;  /* IF only */
	size_t nthen;
	struct kiln_loc loc;
};

struct kiln_attr {
	char *trait_type;
	char *value;
};

struct kiln_legendary {
	char *name;
	char *file;
	char *description;         /* NULL: the collection's */
	struct kiln_attr *attrs;   /* shown in metadata */
	size_t nattrs;
	struct kiln_loc loc;
};

enum kiln_target { KILN_TARGET_ERC721 = 1, KILN_TARGET_ERC1155 = 2, KILN_TARGET_METAPLEX = 4 };

struct kiln_spec {
	char *path;                /* kiln.yaml as given */
	char *dir;                 /* the project folder, trait paths are relative to it */

	/* collection: */
	char *name;
	char *symbol;
	char *description;
	char *external_url;        /* may be NULL */
	uint64_t size;             /* tokens in all, legendaries included */
	uint64_t seed;

	/* image: */
	int width, height;
	enum kiln_format format;
	int png_compression;       /* 0..9, default 6 */
	int quality;               /* webp/jpeg quality 1..100, default 90 */
	int lossless;              /* webp lossless, default 1 */
	char *engine;              /* "compose" (default), later a1111 | comfyui | sdcpp */

	struct kiln_layer *layers; /* z-order: layers[0] is at the bottom */
	size_t nlayers;

	struct kiln_rule *rules;
	size_t nrules;

	unsigned min_distance;     /* uniqueness.min_distance, default 1 (all tokens distinct) */

	struct kiln_legendary *legendaries;
	size_t nlegendaries;

	/* metadata: */
	char *name_pattern;        /* "{name} #{id}" by default; {id} is the token id */
	uint64_t start_id;         /* default 1 */
	char *base_uri;            /* image URI prefix; default "ipfs://REPLACE_WITH_IMAGES_CID" */
	char *meta_description;    /* default: the collection's description */
	unsigned targets;          /* KILN_TARGET_* bits, default ERC721 */
};

/* Parse and validate dir/kiln.yaml (path may be absolute or relative to the cwd; dir is the
 * folder holding it). On error *out is NULL and e says file:line:col and what to fix. */
int kiln_spec_load(struct kiln_spec **out, const char *path, struct kiln_error *e) KILN_MUST_CHECK;

/* The same from a string (for tests); name is used in messages, dir resolves files
 * (NULL: files are not checked for existence). */
int kiln_spec_parse(struct kiln_spec **out, const char *yaml, size_t len, const char *name,
		    const char *dir, struct kiln_error *e) KILN_MUST_CHECK;

void kiln_spec_free(struct kiln_spec *s);

/* Number of generated (non-legendary) tokens. */
uint64_t kiln_spec_generated(const struct kiln_spec *s);

/* Index of a layer by name, or -1. */
long kiln_spec_layer_index(const struct kiln_spec *s, const char *name);
/* Index of a trait by name in a layer, or -1. */
long kiln_layer_trait_index(const struct kiln_layer *l, const char *name);

const char *kiln_format_ext(enum kiln_format f);        /* "png", "webp", "jpg" */
const char *kiln_format_mime(enum kiln_format f);       /* "image/png", ... */
const char *kiln_blend_name(enum kiln_blend b);

/* A commented starter kiln.yaml, for `kiln init`. Static string. */
const char *kiln_spec_starter(void);

#endif
