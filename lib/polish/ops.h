/* lib/polish/ops.h: the steps themselves, private to lib/polish. polish.c (the stage, the
 * chains) calls raster.c (upscale, overlay, the PNG checks of an import: libvips) and
 * vector.c (SVGs: pixels exact, trace with libimagequant + potrace); neither calls the other.
 */
#ifndef KILN_POLISH_OPS_H
#define KILN_POLISH_OPS_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/buf.h"
#include "kiln/error.h"
#include "util/png.h"

#include <jansson.h>

/* ---- raster.c ---- */

/* The image file in upscaled factor times with libvips' vips_resize (kernel lanczos3, or
 * nearest), as sRGB 8-bit, written as a PNG (po) to out. Images declaring more than
 * max_pixels (0: the default limit) are refused before they are decoded. */
int kiln_polish_upscale(const char *in, int factor, int nearest, uint64_t max_pixels,
			const struct kiln_png_opts *po, struct kiln_buf *out, struct kiln_error *e)
	KILN_MUST_CHECK;
/* The layer file composited over the image file (libvips composite, mode over), both at the
 * same size (else KILN_E_IMAGE naming the layer and both sizes), written as a PNG to out. */
int kiln_polish_overlay(const char *in, const char *layer, uint64_t max_pixels,
			const struct kiln_png_opts *po, struct kiln_buf *out, struct kiln_error *e)
	KILN_MUST_CHECK;
/* An imported file checked like a render: a PNG that decodes whole, of w x h pixels, not
 * blank (not a single colour throughout). KILN_E_IMAGE saying what is wrong. */
int kiln_polish_check_png(const char *path, int w, int h, struct kiln_error *e)
	KILN_MUST_CHECK;
/* A mask: a PNG that decodes with at least one pixel not black (white: repaint); else
 * KILN_E_USAGE saying what is wrong. */
int kiln_polish_mask_check(const char *path, struct kiln_error *e) KILN_MUST_CHECK;
/* *same = 1 when the PNG png[len] and the image file path decode to the same RGBA pixels
 * (metadata such as an XMP packet and the encoder's choices aside). */
int kiln_polish_same_pixels(const void *png, size_t len, const char *path, int *same,
			    struct kiln_error *e) KILN_MUST_CHECK;
/* The size of an image file from its header. */
int kiln_polish_size(const char *path, int *w, int *h, struct kiln_error *e) KILN_MUST_CHECK;

/* ---- vector.c ---- */

/* An RGBA image in memory (rows packed). */
struct kiln_rgba {
	uint8_t *px;
	int w, h;
};
/* Decode an image file to RGBA (caller frees px with free()). */
int kiln_polish_load_rgba(const char *path, uint64_t max_pixels, struct kiln_rgba *out,
			  struct kiln_error *e) KILN_MUST_CHECK;
/* The exact SVG of im: a path per colour, one rectangle per run of that colour (runs of equal
 * x and width in consecutive rows merged); fully transparent pixels are not drawn, others
 * with their alpha as fill-opacity. Rasterised at w x h it gives back im (semi-transparent
 * pixels as their premultiplied values). The same pixels give the same bytes. */
int kiln_polish_svg_pixels(const struct kiln_rgba *im, struct kiln_buf *out,
			   struct kiln_error *e) KILN_MUST_CHECK;
/* A traced SVG of im: quantised to at most colors colours by libimagequant (no dithering,
 * alpha below 128 is transparent), each colour's area traced by potrace and stacked largest
 * first, each layer covering the pixels of the colours drawn above it too (no gaps). */
int kiln_polish_svg_trace(const struct kiln_rgba *im, int colors, struct kiln_buf *out,
			  struct kiln_error *e) KILN_MUST_CHECK;

/* ---- edit.c (also called by inpaint.c) ---- */

struct kiln_project;
struct kiln_items;
struct kiln_item;
struct kiln_polish_step;
/* The token id from the catalog; KILN_E_USAGE when there is none, KILN_E_STATE when it has
 * no rendered image. */
int kiln_polish_load_item(struct kiln_project *p, uint64_t id, struct kiln_items *it,
			  struct kiln_error *e) KILN_MUST_CHECK;
/* The token's recorded chain as a JSON array of steps (kiln_catalog_polish_each's). */
int kiln_polish_chain_array(struct kiln_project *p, uint64_t id, json_t **out,
			    struct kiln_error *e) KILN_MUST_CHECK;
/* The token's current raster image: its last image step's output that is not an SVG, else
 * its render (it->image). */
int kiln_polish_current_raster(struct kiln_project *p, const struct kiln_item *it,
			       json_t *steps, char out[65]);
/* Save the chain arr with extra appended (NULL: none), then walk the token again
 * (kiln_project_polish on it alone); KILN_E_FAILED when the walk fails the token. */
int kiln_polish_save_and_walk(struct kiln_project *p, uint64_t id, json_t *arr,
			      const struct kiln_polish_step *extra, struct kiln_error *e)
	KILN_MUST_CHECK;

#endif
