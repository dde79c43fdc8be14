/* lib/util/image.h: libvips set-up shared by the modules that read images, and a full decode
 * of any image file to 8-bit interleaved pixels (what QA and the hashes look at). */
#ifndef KILN_UTIL_IMAGE_H
#define KILN_UTIL_IMAGE_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/buf.h"
#include "kiln/error.h"

/* Start libvips once per process: its warnings dropped (the library never prints), the
 * operation cache off (a file changed on disk is read again, decoded layers are not kept
 * alive), concurrency 1 (kiln runs items in parallel). */
int kiln_vips_init(struct kiln_error *e) KILN_MUST_CHECK;
/* Turn libvips' pending error (taken and cleared) into e: "what (libvips: reason)". */
int kiln_vips_fail(struct kiln_error *e, int code, const char *where, const char *what);

struct kiln_image8 {
	uint8_t *pixels;          /* width*height*bands bytes, rows packed; g_free()d by release */
	int width, height, bands; /* bands 1..4 after conversion */
	int orig_bands;           /* as stored in the file */
	int orig_bits;            /* 8 or 16 (or 32 for float) as stored */
	int orig_srgb;            /* the file was sRGB, RGB16, grey or B_W (not CMYK, LAB, ...) */
	char loader[32];          /* libvips loader, e.g. "pngload" */
};

/* Decode the whole file (a truncated or corrupt file is KILN_E_IMAGE with libvips' reason).
 * 16-bit keeps the high byte, other colour spaces become sRGB, more than 4 bands keep 4. */
int kiln_image_decode8(const char *path, struct kiln_image8 *out, struct kiln_error *e)
	KILN_MUST_CHECK;
/* The same of the in-memory file data[len] (which must outlive the call); errors name where. */
int kiln_image_decode8_mem(const void *data, size_t len, const char *where,
			   struct kiln_image8 *out, struct kiln_error *e) KILN_MUST_CHECK;
void kiln_image8_release(struct kiln_image8 *im);

/* The size the file's header declares, read without decoding any pixel (libvips opens images
 * lazily: only the header is parsed). KILN_E_IMAGE when the header cannot be read. */
int kiln_image_header(const char *path, int *width, int *height, struct kiln_error *e)
	KILN_MUST_CHECK;
/* The default pixel limit of every image kiln reads from a project or a folder (64 Mpx:
 * 8192 x 8192): QA's default (qa.max_pixels), and the limit for the images a spec names that
 * go into dist/ or into a request (hidden, contract and collection images, ControlNet). */
#define KILN_IMAGE_MAX_PIXELS ((uint64_t)64 << 20)

/* An input image as the release and the AI requests take it: a regular file (not opened when
 * it is not: a FIFO would block), whose header libvips reads as an image of at most
 * max_pixels (0: KILN_IMAGE_MAX_PIXELS), and which then decodes whole. Else KILN_E_SPEC naming the file (`what` says
 * which, "metadata.reveal.hidden_image") and why: it is bad input, not a failure of kiln. */
int kiln_image_check_input(const char *path, const char *what, uint64_t max_pixels,
			   struct kiln_error *e) KILN_MUST_CHECK;

/* Refuse an image whose header declares more than max_pixels pixels (0: no limit) before it
 * is decoded: a PNG of a few KB can declare 50,000 x 50,000 and a full decode would ask for
 * gigabytes. KILN_E_IMAGE naming the size and the limit; *width and *height get the declared
 * size (either may be NULL). */
int kiln_image_check_pixels(const char *path, uint64_t max_pixels, int *width, int *height,
			    struct kiln_error *e) KILN_MUST_CHECK;

/* A thumbnail of the image file src: scaled down (never up) so its longest side is size,
 * sRGB, metadata stripped, encoded as format ("png", "webp" or "jpeg"; quality 1..100 for
 * the lossy ones) and appended to out. The same file gives the same bytes every time. */
int kiln_image_thumbnail(const char *src, int size, const char *format, int quality,
			 struct kiln_buf *out, struct kiln_error *e) KILN_MUST_CHECK;

/* How kiln_image_encode writes: the spec's image.format (WebP or JPEG), image.quality and
 * image.lossless, as the render stage reads them from the spec (util knows no spec). */
struct kiln_image_enc {
	int jpeg;                  /* 1: JPEG, 0: WebP */
	int quality;               /* 1..100 */
	int lossless;              /* WebP only */
};

/* Encode the uchar sRGB image im (3 or 4 bands) as WebP or JPEG, with the compose engine's
 * encoder settings (72 dpi; JPEG flattened onto white, optimised Huffman, no interlace; WebP
 * lossless or Q, effort 4), appended to out. No metadata is written but the XMP packet
 * xmp[xmplen] when xmp is not NULL: the same pixels and packet give the same bytes. */
struct _VipsImage;
int kiln_image_encode(const struct kiln_image_enc *enc, struct _VipsImage *im, const void *xmp,
		      size_t xmplen, struct kiln_buf *out, struct kiln_error *e) KILN_MUST_CHECK;

/* A PNG of the in-memory image data[len] with at least three colour bands, for servers that
 * refuse grey control images (stable-diffusion.cpp reads them with stb_image asking for three
 * channels and rejects fewer). *converted 0: the image already has three or more bands and out
 * is untouched (send the bytes as they are); 1: out holds the grey image expanded to sRGB
 * (alpha kept). The same bytes give the same PNG every time. KILN_E_IMAGE naming `where`. */
int kiln_image_rgb_png(const void *data, size_t len, const char *where, struct kiln_buf *out,
		       int *converted, struct kiln_error *e) KILN_MUST_CHECK;

/* The in-memory image data[len] (JPEG, WebP, PNG...) as a PNG of the same pixels, metadata
 * stripped, appended to out (a JumpStart model answers JPEG). KILN_E_IMAGE naming `where`. */
int kiln_image_png(const void *data, size_t len, const char *where, struct kiln_buf *out,
		   struct kiln_error *e) KILN_MUST_CHECK;

#endif
