/* kiln/qa.h: the QA gates: image checks over a set of token images (decodes completely, size
 * and format, file size, colour and alpha, blank / near-uniform / all-black frames, exact
 * duplicates by pixels, near duplicates by perceptual hash through an index, a pixel limit read
 * from the header before any decode), collection checks on a kiln project (trait counts
 * against the plan's targets, unique trait sets, continuous ids), and metadata checks (below).
 * Every problem is a finding with a stable check id (docs/qa.md lists them; the table is
 * lib/spec/qa_checks.c) and the token it concerns; severities can be overridden per check.
 * A whole run is kiln_project_qa() (which records its verdicts in the catalog) or
 * kiln_qa_folder(), at the end of this header; the command only formats their result.
 *
 * Images are decoded once each, on worker threads; sizes: tens of thousands of images, a few
 * hundred bytes of state per image.
 */
#ifndef KILN_QA_H
#define KILN_QA_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/error.h"
#include "kiln/project.h"
#include <jansson.h>
#include "kiln/buf.h"

/* ---- metacheck.h (merged) ---- */
/* kiln/metacheck.h: metadata QA. Checks token JSON against the ERC-721/OpenSea metadata
 * standard and the Metaplex/Sugar rules (design.md section 7), and whole folders: a Sugar
 * assets/ folder (0.png, 0.json, ..., collection.png, collection.json) and a HashLips-style
 * ERC-721 build/json folder (1.json or 1, ..., _metadata.json).
 *
 * Every problem becomes a finding: a stable check id ("metaplex.name_length"), a default
 * severity, the file and the JSON path it concerns ("properties.creators[1].share") and a
 * message that says what is wrong and what to do. A file that is not JSON is a finding too
 * ("token.json_parse"), not a failure: the functions fail (non-zero) only when they cannot
 * run at all (out of memory, a folder that cannot be read). docs/qa.md lists every check id.
 */

enum kiln_severity {
	KILN_SEV_ERROR = 0,   /* a marketplace or Sugar would reject it, or show it wrong */
	KILN_SEV_WARNING = 1, /* legal but probably a mistake */
};

/* One finding. Every string is owned by the list it sits in. */
struct kiln_finding {
	char *check;    /* stable id, e.g. "metaplex.creator_shares" */
	int severity;   /* enum kiln_severity */
	char *file;     /* file name relative to the checked folder, or the name the caller gave */
	char *path;     /* JSON path in that file ("attributes[2].value"); "" = the whole file */
	char *message;  /* what is wrong and what to do */
	int has_item;   /* 1: the finding concerns one token, item */
	uint64_t item;  /* that token's id (0 is a real id: see has_item) */
};

/* A growable list of findings. Initialise with KILN_FINDINGS_INIT or kiln_findings_init(). */
struct kiln_findings {
	struct kiln_finding *v; /* owned */
	size_t n, cap;
	int cur_has_item;       /* the token kiln_findings_add() ties new findings to */
	uint64_t cur_item;
};

#define KILN_FINDINGS_INIT { NULL, 0, 0, 0, 0 }

void kiln_findings_init(struct kiln_findings *f);
/* Free every finding and the array; the list is empty (and reusable) after. */
void kiln_findings_release(struct kiln_findings *f);
/* Append a finding (strings are copied; file and path may be NULL). */
int kiln_findings_add(struct kiln_findings *f, const char *check, int severity, const char *file,
		      const char *path, const char *fmt, ...) KILN_PRINTF(6, 7) KILN_MUST_CHECK;
/* The token the findings added from now on concern (has 0: none, the default). The code that
 * knows which token it is checking sets it, so a finding carries its token from the start. */
void kiln_findings_set_item(struct kiln_findings *f, int has, uint64_t item);
/* Number of findings of a severity (-1: all). */
size_t kiln_findings_count(const struct kiln_findings *f, int severity);
/* Short name of a severity: "error" or "warning". */
const char *kiln_severity_name(int severity);

/* Standards to check a token against (flags). */
#define KILN_META_ERC721   1u /* ERC-721 / OpenSea metadata standard */
#define KILN_META_METAPLEX 2u /* Metaplex token metadata as Sugar validates and deploys it */

/* Check one token's JSON. `file` names it in findings (may be NULL). With KILN_META_METAPLEX
 * alone, `image` and properties.files[].uri may be plain file names (Sugar's assets layout);
 * with KILN_META_ERC721 they must be URIs. */
int kiln_metacheck_token(const json_t *root, unsigned standards, const char *file,
			 struct kiln_findings *out, struct kiln_error *e) KILN_MUST_CHECK;
/* The same from text (len bytes, need not be NUL-terminated); invalid JSON is the finding
 * "token.json_parse" with the line and column. */
int kiln_metacheck_token_text(const char *text, size_t len, unsigned standards, const char *file,
			      struct kiln_findings *out, struct kiln_error *e) KILN_MUST_CHECK;

/* Check a Sugar assets folder: numbering 0..n-1 without gap or repeat, every N.json paired with
 * one N.<image> (png, jpg, jpeg or gif: the only images Sugar pairs), unique trait sets, collection.json paired with a collection image (both optional), each json's
 * `image` naming its own image file, Metaplex rules on every json, and attribute spelling drift
 * across the collection. KILN_E_IO when dir cannot be read. */
int kiln_metacheck_sugar_folder(const char *dir, struct kiln_findings *out, struct kiln_error *e)
	KILN_MUST_CHECK;

/* Check a HashLips-style ERC-721 metadata folder (build/json): files N.json or N, numbered
 * from 0 or 1 without gap or repeat, ERC-721/OpenSea rules on each, image URIs that end in the
 * token's own number, no unreplaced placeholder base URI, _metadata.json (optional) agreeing
 * with the single files, and attribute spelling drift. KILN_E_IO when dir cannot be read. */
int kiln_metacheck_folder_erc721(const char *dir, struct kiln_findings *out,
				 struct kiln_error *e) KILN_MUST_CHECK;

/* What a folder check knows beyond the folder (all optional; zero = not known). */
struct kiln_metacheck_opts {
	/* Reveal (BAYC method, as `kiln release --starting-index N` writes it): the token at
	 * position t (0-based, in number order) shows image number (t + starting_index) mod n;
	 * without it token N must show image N. A release's provenance.json says it. */
	int has_starting_index;
	unsigned long long starting_index;
	/* The URI every image must start with, followed by "/<N>.<ext>": the images folder's
	 * location (dist/ipfs.json's image_uri, ipfs://<images CID>). */
	const char *image_base;
	/* The folder of the image files: each image URI must name N.<ext> exactly as it exists
	 * there (number and extension). */
	const char *images_dir;
	/* ERC-1155 file names: {id} as 64 lowercase hex digits + ".json" instead of N.json. */
	int erc1155;
	/* The token each file number stands for: file N concerns token item_ids[N] (N <
	 * nitem_ids; other numbers concern no token). NULL: file N is token N (ERC-1155: the id
	 * its name encodes). A release's metaplex/assets numbers tokens by position. */
	const uint64_t *item_ids;
	size_t nitem_ids;
};

/* kiln_metacheck_sugar_folder with the item map of o (o may be NULL; only item_ids and
 * nitem_ids are read). */
int kiln_metacheck_sugar_folder_opts(const char *dir, const struct kiln_metacheck_opts *o,
				     struct kiln_findings *out, struct kiln_error *e)
	KILN_MUST_CHECK;

/* kiln_metacheck_folder_erc721 with what the caller knows (o may be NULL). Also finds two
 * tokens with the same trait set (collection.unique). */
int kiln_metacheck_folder_erc721_opts(const char *dir, const struct kiln_metacheck_opts *o,
				      struct kiln_findings *out, struct kiln_error *e)
	KILN_MUST_CHECK;

/* Every check id QA can report (images, collection, metadata), NULL-terminated, for
 * validating severity overrides; *n gets the count. (The table is data in lib/spec/qa_checks.c,
 * shared with the spec's validation of qa.checks.) */
const char *const *kiln_qa_check_ids(size_t *n);
/* 1 when id is a check id, or a prefix ending in '.' of at least one. */
int kiln_qa_check_known(const char *id);

/* Decode a base58 (Bitcoin alphabet) string; returns the decoded length (leading '1's are
 * zero bytes), or -1 for a character outside the alphabet or more than `cap` bytes. */
int kiln_base58_decode(const char *s, unsigned char *out, size_t cap);
/* ---- end of metacheck.h ---- */

#define KILN_SEV_OFF (-1)

struct kiln_qa_token {
	uint64_t id;            /* token id (for reports) */
	const char *name;       /* how findings name it: the image file name as the folder has it */
	const char *path;       /* the image to check (NULL: missing) */
	int extra;              /* not a token (a collection image): decoded and checked on its
				 * own, left out of duplicates, near duplicates and the size
				 * majority */
};

struct kiln_qa_opts {
	int width, height;      /* expected size; both 0: every token must have the size most
				 * tokens have (when more than half share one) */
	const char *format;     /* expected libvips loader prefix: "png", "webp", "jpeg"; NULL any */
	uint64_t min_bytes;     /* file size bounds; 0: not checked */
	uint64_t max_bytes;
	int alpha;              /* 1 required, 0 forbidden, -1 either */
	double uniform_stddev;  /* every band's standard deviation below this: near-uniform */
	int black_level;        /* every channel at most this: all black (safety filter) */
	int near_threshold;     /* pHash Hamming distance for near duplicates; < 0: off */
	int near_dhash_threshold; /* dHash distance; < 0: off (the default: it costs a second
				 * resize per image, docs/qa.md). A pair is near when either
				 * hash is within its threshold. */
	uint64_t max_pixels;    /* an image whose header declares more pixels is not decoded:
				 * "image.too_large"; 0: no limit (the default is 64 Mpx) */
	int near_measure;       /* KILN_NEAR_COLOR (the default): a pair the hashes find is a
				 * near duplicate only when its colours agree too (delta E of the
				 * colour prints, lib/qa/phash.h, within near_color_distance);
				 * KILN_NEAR_PHASH: the hashes alone, as imagehash */
	double near_color_distance; /* largest delta E for KILN_NEAR_COLOR; default 6 */
	unsigned threads;       /* 0: one per core */
	kiln_progress_fn progress;
	void *user;
};

/* What "looks alike" means (kiln_qa_opts.near_measure, qa.near_duplicate_measure). */
enum kiln_near_measure { KILN_NEAR_COLOR = 0, KILN_NEAR_PHASH = 1 };
#define KILN_NEAR_COLOR_DISTANCE 6.0

/* Defaults: 10 MiB max, alpha either, stddev 2.0, black level 8, near threshold 4, 64 Mpx. */
#define KILN_QA_MAX_PIXELS ((uint64_t)64 << 20) /* = KILN_IMAGE_MAX_PIXELS (lib/util/image.h) */
void kiln_qa_opts_default(struct kiln_qa_opts *o);

/* A pair of tokens that look alike (indexes into the tokens given). */
struct kiln_qa_pair {
	size_t a, b;
	int distance;           /* pHash distance (0 for exact duplicates, and for look-alikes
				 * whose pHashes agree: "same pHash" is not "same pixels") */
	int exact;              /* 1: the same pixels (image.duplicate) */
	double color;           /* the colour difference (delta E, kiln_lab_distance) when the
				 * colour measure judged the pair; -1 otherwise */
};

struct kiln_qa_image_result {
	struct kiln_qa_pair *pairs;  /* exact duplicates; per token, its nearest near duplicate */
	size_t npairs;
	size_t checked;              /* images decoded */
};
void kiln_qa_image_result_release(struct kiln_qa_image_result *r);

/* Check every token image; findings appended to out. */
int kiln_qa_images(const struct kiln_qa_token *tokens, size_t n, const struct kiln_qa_opts *o,
		   struct kiln_findings *out, struct kiln_qa_image_result *r, struct kiln_error *e)
	KILN_MUST_CHECK;

/* Collection checks of a planned project: every value's count equals its target, trait sets
 * unique (bypass_dna layers left out), ids continuous from start_id. */
int kiln_qa_collection(struct kiln_project *p, struct kiln_findings *out, struct kiln_error *e)
	KILN_MUST_CHECK;

/* A declared provenance hash (BAYC method, kiln/release.h): the image files in their
 * initial order and, when the declaration lists them, each file's SHA-256. */
struct kiln_qa_provenance {
	const char *declared;        /* the provenance hash declared, 64 hex digits */
	const char *source;          /* where it was declared, for messages */
	const char *const *files;    /* n image paths in the initial order; NULL: refused by the
	                                caller (reported there), not read, no hash comparison */
	const char *const *names;    /* how findings name each file */
	const char *const *listed;   /* each file's declared SHA-256, or NULL (all or none) */
	size_t n;
};

/* Recompute the provenance hash from the files (each opened only if it is a regular file,
 * without blocking); "collection.provenance" errors for a file missing or not a regular
 * file, a file whose SHA-256 differs from the one listed, and a hash that differs from the
 * one declared. */
int kiln_qa_provenance(const struct kiln_qa_provenance *pv, struct kiln_findings *out,
		       struct kiln_error *e) KILN_MUST_CHECK;

/* Severity overrides: check ids ("image.near_duplicate") or prefixes ending in '.'
 * ("metaplex.") mapped to error, warning or off; the longest match wins. Findings turned off
 * are removed. */
struct kiln_qa_severity {
	const char *check;
	int severity;           /* KILN_SEV_ERROR, KILN_SEV_WARNING or KILN_SEV_OFF */
};
void kiln_qa_apply_severities(struct kiln_findings *f, const struct kiln_qa_severity *s,
			      size_t n);

/* A PNG thumbnail (longest side `size`) of an image, for reports. */
int kiln_qa_thumbnail(const char *src, const char *dst, int size, struct kiln_error *e)
	KILN_MUST_CHECK;

/* The stem that ties a file to its token: "12.png", "12.json" and "12" all give "12". */
void kiln_qa_stem(const char *file, char *out, size_t cap);

/* ---- a whole QA run: a project, or a collection folder ------------------------------- */

/* Not set: take the spec's value (or the default). */
#define KILN_QA_UNSET (-100)

/* What the caller overrides; kiln_qa_run_opts_init() gives "nothing overridden". */
struct kiln_qa_run_opts {
	int width, height;        /* expected size; 0: the spec's (a folder: the majority's) */
	int near_threshold;       /* pHash distance 0..32, -1 off; KILN_QA_UNSET: the spec's */
	int near_dhash_threshold; /* dHash distance 0..32, -1 off; KILN_QA_UNSET: the spec's */
	int near_measure;         /* enum kiln_near_measure; KILN_QA_UNSET: the spec's */
	uint64_t max_bytes;       /* 0: the spec's */
	uint64_t max_pixels;      /* 0: the spec's (qa.max_pixels), else 64 Mpx */
	const char *provenance;   /* a declared provenance hash (64 hex) over the images in token
				   * id order, or NULL: a release's provenance.json if any */
	const char *provenance_source; /* how findings name that declaration (the `file` of
				   * its collection.provenance findings); NULL: "the declared
				   * provenance hash" */
	const char *standard;     /* a folder: "erc721", "metaplex" or NULL (from its layout) */
	const struct kiln_spec *config; /* a folder: a spec whose qa: block applies, or NULL */
	int no_save;              /* a project: do not record the results in the catalog */
	unsigned threads;         /* 0: one per core */
	kiln_progress_fn progress;
	void *user;
};
void kiln_qa_run_opts_init(struct kiln_qa_run_opts *o);

/* Everything a run found, in report order: the catalog's (or the folder's images') checks
 * first, then the release outputs'. Every pointer is owned by the result. */
struct kiln_qa_result {
	struct kiln_findings findings;
	size_t ncatalog;          /* findings [0, ncatalog) judge the catalog's images and plan
				   * (a project) or the folder's images */
	struct kiln_qa_token *tokens; /* the images checked, sorted by id; a collection image
				   * (extra) last */
	size_t ntokens;
	struct kiln_qa_image_result images; /* duplicate pairs index into tokens */
	size_t checked;           /* images decoded */
	char **owned;             /* internal: the tokens' strings */
	size_t nowned;
};
void kiln_qa_result_release(struct kiln_qa_result *r);

/* QA of a project: every token's current image (by the spec's size, format and the qa:
 * block's thresholds, o overriding them), the collection (trait counts, uniqueness, ids),
 * and, when dist/ exists, the previous release's outputs (metadata, provenance, Sugar assets,
 * ERC-1155 names). Severities from the qa: block are applied. The findings are then saved to
 * the catalog (unless o->no_save), each token's verdict tied to the image it judged. Returns
 * non-zero only when QA could not run; failed checks are error findings. */
int kiln_project_qa(struct kiln_project *p, const struct kiln_qa_run_opts *o,
		    struct kiln_qa_result *r, struct kiln_error *e) KILN_MUST_CHECK;

/* QA of a collection folder: a HashLips build/ (images/ + json/), a kiln dist/ (images/ +
 * metadata/) or a Sugar assets/ folder (or a folder of N.json + N.png). KILN_E_USAGE when
 * dir is not a folder or not a collection folder. */
int kiln_qa_folder(const char *dir, const struct kiln_qa_run_opts *o, struct kiln_qa_result *r,
		   struct kiln_error *e) KILN_MUST_CHECK;

/* The pHash QA computes (Python imagehash's phash, bit for bit) of the image file at path;
 * KILN_E_IMAGE when it does not decode. For callers below QA (a dataset's record). */
int kiln_qa_phash(const char *path, uint64_t *phash, struct kiln_error *e) KILN_MUST_CHECK;
/* The same pHash of decoded 8-bit pixels (width x height, `bands` 1-4 interleaved, rows
 * `stride` bytes apart, 0: packed): for a caller that holds the pixels it wrote (train's
 * prepared images), so nothing is decoded again. KILN_E_USAGE for a bad size or band count. */
int kiln_qa_phash_pixels(const uint8_t *pixels, int width, int height, int bands, size_t stride,
			 uint64_t *phash, struct kiln_error *e) KILN_MUST_CHECK;

#endif
