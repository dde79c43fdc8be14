/* kiln/qa.h: the QA gates: image checks over a set of token images (decodes completely, size
 * and format, file size, colour and alpha, blank / near-uniform / all-black frames, exact
 * duplicates by pixels, near duplicates by perceptual hash through an index), collection checks
 * on a kiln project (trait counts against the plan's targets, unique trait sets, continuous
 * ids), and metadata checks (kiln/metacheck.h). Every problem is a finding with a stable check
 * id (docs/qa.md lists them); severities can be overridden per check.
 *
 * Images are decoded once each, on worker threads; sizes: tens of thousands of images, a few
 * hundred bytes of state per image.
 */
#ifndef KILN_QA_H
#define KILN_QA_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/error.h"
#include "kiln/metacheck.h"
#include "kiln/project.h"

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
	unsigned threads;       /* 0: one per core */
	kiln_progress_fn progress;
	void *user;
};

/* Defaults: 10 MiB max, alpha either, stddev 2.0, black level 8, near threshold 4. */
void kiln_qa_opts_default(struct kiln_qa_opts *o);

/* A pair of tokens that look alike (indexes into the tokens given). */
struct kiln_qa_pair {
	size_t a, b;
	int distance;           /* 0 for exact duplicates (same pixels) */
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
	const char *const *files;    /* n image paths in the initial order */
	const char *const *names;    /* how findings name each file */
	const char *const *listed;   /* each file's declared SHA-256, or NULL (all or none) */
	size_t n;
};

/* Recompute the provenance hash from the files; "collection.provenance" errors for a file
 * missing, a file whose SHA-256 differs from the one listed, and a hash that differs from
 * the one declared. */
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

#endif
