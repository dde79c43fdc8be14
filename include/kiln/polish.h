/* kiln/polish.h: the polish stage (lib/polish/README.md). After render, every token's image
 * goes through the spec's polish: steps (upscale, vectorize, overlay) and the edits artists
 * import; each step is recorded in the catalog (kiln/catalog.h, polish_steps) with its input
 * and output SHA-256, so the released image has a known chain from its render.
 *
 * Incremental: a step's recipe is its kind, settings and input's SHA-256; a step whose recipe
 * was made before (and whose output is in the store) is not made again, so a token whose
 * render and spec steps are unchanged is skipped. A step's input is the previous image step's
 * output (step 0's: the render), never the final image of an earlier run. Workers write the
 * outputs into the store before the main thread records the chains (in transactions of up to
 * 64 tokens): a kill -9 loses only the tokens under way.
 */
#ifndef KILN_POLISH_H
#define KILN_POLISH_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/buf.h"
#include "kiln/error.h"
#include "kiln/project.h"
#include "kiln/release.h"

struct kiln_polish_opts {
	unsigned threads;             /* 0: one per core */
	const uint64_t *ids;          /* only these tokens (NULL: all) */
	size_t nids;
	kiln_progress_fn progress;    /* stage "polish" */
	void *user;
	const volatile int *cancel;   /* non-zero: stop after the tokens under way */
};

struct kiln_polish_result {
	uint64_t tokens;              /* tokens considered (rendered ones) */
	uint64_t polished;            /* tokens whose chain was made or changed */
	uint64_t skipped;             /* unchanged */
	uint64_t failed;
	uint64_t steps;               /* steps made (not reused) */
	uint64_t unrendered;          /* tokens without a render: nothing to polish */
	uint64_t stale_edits;         /* failed tokens whose imported edit was made on an image
	                                 they no longer have (re-rendered, steps changed) */
	double seconds;
};

int kiln_project_polish(struct kiln_project *p, const struct kiln_polish_opts *o,
			struct kiln_polish_result *r, struct kiln_error *e) KILN_MUST_CHECK;

/* One token's chain as JSON: {"id", "render": SHA, "final": SHA, "current": bool (the chain
 * starts from the token's render), "steps": [{step, kind, settings, recipe, input, output,
 * image, by, tool, note, at}]} (caller frees). */
int kiln_polish_chain_json(struct kiln_project *p, uint64_t id, char **json,
			   struct kiln_error *e) KILN_MUST_CHECK;

/* Copy the token's current image (and, for AI engines, its other candidates) into dir
 * (created): ID.png (ID.svg when it is an SVG), ID-candidate-N.png. The names written are
 * appended to names, one a line. */
int kiln_polish_export(struct kiln_project *p, uint64_t id, const char *dir,
		       struct kiln_buf *names, struct kiln_error *e) KILN_MUST_CHECK;

/* An artist's edit of a token: file is checked like a render (a PNG that decodes, of the size
 * the polished images have, not blank), stored by hash and recorded as an "edit" step by
 * `by` (tool and note may be NULL) after the token's last image step; the spec steps after it
 * (a vectorize) are made again from it. */
struct kiln_polish_import {
	uint64_t id;
	const char *file;
	const char *by;
	const char *tool;
	const char *note;
};
int kiln_polish_import(struct kiln_project *p, const struct kiln_polish_import *im,
		       struct kiln_error *e) KILN_MUST_CHECK;

/* `kiln polish inpaint`: the token's current image (the output of its last raster step: an
 * artist's edit, an earlier inpaint, an upscale; else its render) repainted where the mask (a
 * PNG of that image's size: white repaint, black keep) is white, by the AI endpoints (A1111
 * img2img with the mask, ComfyUI VAEEncodeForInpaint) through the render dispatcher. The
 * result is an "inpaint" step of the token's polish chain (input, output, mask SHA-256,
 * prompt, denoise, seed, engine, endpoint) and the token's image from there on; the spec's
 * steps that come after that point of the chain are made again on it. A token someone
 * reviewed is pending review again. The mask is a file (mask) or a store file (mask_sha);
 * it is stored by hash (res->mask). KILN_E_USAGE for a mask of another size (both sizes
 * named) or an empty one; KILN_E_FAILED when the engine failed (res->error). */
struct kiln_inpaint_request;
struct kiln_polish_inpaint {
	uint64_t id;
	const char *mask;             /* path, or NULL with mask_sha */
	const char *mask_sha;         /* a PNG in the store (a review app request) */
	const char *prompt;
	const char *negative;         /* NULL: generate.negative */
	double denoise;               /* 0 < d <= 1 */
	kiln_progress_fn progress;
	void *user;
	const volatile int *cancel;
};
struct kiln_polish_inpaint_result {
	char mask[65];
	char input[65];               /* the image repainted (store SHA-256) */
	char image[65];               /* the result: the step's output */
	char error[1024];             /* the engine's failure */
};
int kiln_polish_inpaint(struct kiln_project *p, const struct kiln_polish_inpaint *in,
			struct kiln_polish_inpaint_result *res, struct kiln_error *e)
	KILN_MUST_CHECK;

/* One inpaint request of the review app's brush (kiln/catalog.h, pending) run through
 * kiln_polish_inpaint with its stored mask, prompt, negative and denoise, then marked done
 * (the step's input and output) or failed (the error kept, and returned: KILN_E_FAILED or the
 * inpaint's code). Cancelled (*cancel set): it stays pending. res may be NULL. */
int kiln_polish_run_request(struct kiln_project *p, const struct kiln_inpaint_request *q,
			    const volatile int *cancel, struct kiln_polish_inpaint_result *res,
			    struct kiln_error *e) KILN_MUST_CHECK;

/* Drop a token's imported edits (its chain is made again from the spec's steps alone). */
int kiln_polish_reset(struct kiln_project *p, uint64_t id, struct kiln_error *e) KILN_MUST_CHECK;

/* `kiln verify`: the chains of dist/polish/<id>.json checked (each step reads the previous
 * image step's output, the last is the released image, hashed) and, with store_dir (the
 * project's .kiln/store; NULL or missing: links only), upscale nearest/lanczos and pixels
 * vectorize made again from their inputs and compared. Mismatches are appended to r. No
 * dist/polish: nothing checked. */
int kiln_polish_verify(const char *dist, const char *store_dir, struct kiln_verify_result *r,
		       struct kiln_error *e) KILN_MUST_CHECK;

#endif
