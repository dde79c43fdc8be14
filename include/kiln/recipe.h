/* kiln/recipe.h: what an item's output depends on. A recipe is a lowercase hex SHA-256; the
 * same recipe means the same image, so render skips an item whose accepted image has its
 * current recipe and release refuses one whose image does not. This module alone computes
 * recipes (render and release both call it) and alone reads and hashes the inputs they name:
 * layer and legendary files (compose), ControlNet images and the ComfyUI workflow (AI engines).
 * lib/recipe/README.md has the invariants.
 *
 * Ownership: struct kiln_recipe owns the hashes and loaded bytes; it borrows the spec, which
 * must outlive it. A request's strings belong to it (kiln_recipe_ai_release); its LoRA names,
 * ControlNet settings and files are borrowed from the spec and the recipe inputs.
 */
#ifndef KILN_RECIPE_H
#define KILN_RECIPE_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/buf.h"
#include "kiln/catalog.h"
#include "kiln/error.h"
#include "kiln/spec.h"

/* The compose engine's version and encoder settings written into its recipes; compose.c uses
 * these same values. Bump the version when compose.c changes pixels or bytes for the same
 * inputs. compose/2: PNGs written by lib/util/png.c (libdeflate), opaque ones as RGB by
 * default. compose/3: layered PNGs over an opaque base with filter none/sub written in shared
 * bands (kiln_png_encode_bands, zlib). */
#define KILN_RECIPE_COMPOSE_VERSION "compose/3"
#define KILN_RECIPE_WEBP_EFFORT 4   /* kiln_image_encode()'s WebP effort */
#define KILN_RECIPE_LIQ_SPEED 4     /* libimagequant speed for palette PNGs */

/* An input file an AI request names (a ControlNet image): loaded once per run. */
struct kiln_ai_file {
	const char *path;          /* as in kiln.yaml */
	const unsigned char *data; /* NULL unless loaded with KILN_RECIPE_DATA */
	size_t len;
	char sha[65];              /* SHA-256 of the file's bytes */
};

struct kiln_ai_control {
	const struct kiln_controlnet *cn;
	const struct kiln_ai_file *image;
};

/* What one AI image should be, whatever server makes it (engines translate it). */
struct kiln_ai_request {
	uint64_t item_id;
	unsigned candidate;        /* 0 .. generate.candidates-1 */
	uint64_t seed;             /* ((item seed mod 2^32) + candidate) mod 2^32 */
	char *prompt;              /* template filled from the traits; no <lora:> tags */
	char *negative;
	const char *checkpoint;    /* NULL: the server's current model */
	const char *sampler;       /* A1111 name ("Euler a"); engines map it */
	const char *scheduler;     /* NULL: automatic */
	int steps;
	double cfg;
	int width, height;
	struct kiln_lora *loras;   /* owned array; names borrowed from the spec */
	size_t nloras;
	struct kiln_ai_control *controls; /* owned array */
	size_t ncontrols;
	const char *workflow;      /* ComfyUI API-format graph (JSON text), borrowed; NULL */
	char format[48];           /* how the image is stored when not PNG ("webp q90 lossless"),
	                              part of the recipe; "" for PNG (recipes stay as they were) */
	char recipe[65];           /* SHA-256 of kiln_recipe_ai_canonical() */
	/* An image job (polish, kiln/render.h kiln_render_image_jobs) instead of txt2img:
	 * KILN_AI_UPSCALE or KILN_AI_INPAINT (0: txt2img, every field below unused). recipe is
	 * then the caller's (the polish step's), width x height the input's size. */
	int kind;
	const struct kiln_ai_file *init;  /* the input image (PNG bytes loaded) */
	const struct kiln_ai_file *mask;  /* inpaint: white = repaint, same size as init */
	const char *upscaler;      /* upscale: the server's upscaler (model) name, NULL: default */
	int factor;                /* upscale: 2 or 4 */
	double denoise;            /* inpaint: denoising strength 0..1 */
	void *owned;               /* freed with the request (an image job's loaded files) */
};
enum { KILN_AI_TXT2IMG, KILN_AI_UPSCALE, KILN_AI_INPAINT };

struct kiln_recipe;

enum {
	KILN_RECIPE_DATA = 1,      /* keep the AI input files' bytes (to send them), not only
	                              their hashes */
};

/* Read and hash every input spec s names for its engine: compose, each distinct layer file and
 * each legendary file (a file that cannot be read is not an error here: recipes that need it
 * fail with its message); AI engines, each distinct ControlNet image and the workflow (an
 * unreadable one is an error naming it). Only out-of-memory and AI inputs fail. */
int kiln_recipe_new(struct kiln_recipe **out, const struct kiln_spec *s, unsigned flags,
		    struct kiln_error *e) KILN_MUST_CHECK;
void kiln_recipe_free(struct kiln_recipe *r);

/* The recipe of any item: compose items and legendaries, or (AI engines) the item's
 * candidate `candidate` (legendaries: their file, whatever the candidate). */
int kiln_recipe_item(struct kiln_recipe *r, const struct kiln_item *it, unsigned candidate,
		     char hex[65], struct kiln_error *e) KILN_MUST_CHECK;

/* Compose: everything the output depends on (engine version, size, format and encoder
 * settings, and for each layer in z-order: blend, opacity and the chosen file's SHA-256).
 * traits[spec->nlayers]. A file that could not be hashed fails with its error. */
int kiln_recipe_compose(struct kiln_recipe *r, const uint32_t *traits, char hex[65],
			struct kiln_error *e) KILN_MUST_CHECK;
int kiln_recipe_compose_legendary(struct kiln_recipe *r, size_t legendary, char hex[65],
				  struct kiln_error *e) KILN_MUST_CHECK;
/* The hash of a layer (legendary: 1) file rel as read at kiln_recipe_new(), or NULL when it
 * could not be read (*err says why). For the compose engine, which decodes only the bytes
 * that were hashed. */
const char *kiln_recipe_file_sha(const struct kiln_recipe *r, int legendary, const char *rel,
				 const struct kiln_error **err);

/* A legendary rendered by an AI engine is its own file: its recipe is the bytes' SHA-256. */
void kiln_recipe_file_bytes(const void *data, size_t len, char hex[65]);

/* AI engines: the inputs loaded by kiln_recipe_new (files[n], the workflow text or NULL). */
const struct kiln_ai_file *kiln_recipe_ai_files(const struct kiln_recipe *r, size_t *n);
const char *kiln_recipe_ai_workflow(const struct kiln_recipe *r);
/* Build item it's request for `candidate` from the spec (traits' prompts, LoRAs and
 * ControlNets, the generate block) and the inputs loaded; fills rq->recipe. */
int kiln_recipe_ai_request(const struct kiln_recipe *r, const struct kiln_item *it,
			   unsigned candidate, struct kiln_ai_request *rq, struct kiln_error *e)
	KILN_MUST_CHECK;
/* The same with the inputs given: files[nfiles] the ControlNet images (by path), workflow the
 * graph text (may be NULL). */
int kiln_recipe_ai_build(const struct kiln_spec *s, const struct kiln_item *it,
			 unsigned candidate, const struct kiln_ai_file *files, size_t nfiles,
			 const char *workflow, struct kiln_ai_request *rq, struct kiln_error *e)
	KILN_MUST_CHECK;
void kiln_recipe_ai_release(struct kiln_ai_request *rq);
/* The canonical request: compact JSON (sorted keys) of every field that decides the image
 * (control images by SHA-256, the workflow by SHA-256), engine-neutral and secret-free. The
 * recipe is its hash. Every entry is there, or the call fails (KILN_E_NOMEM). */
int kiln_recipe_ai_canonical(const struct kiln_ai_request *rq, struct kiln_buf *out)
	KILN_MUST_CHECK;

#endif
