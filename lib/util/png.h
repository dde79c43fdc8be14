/* lib/util/png.h: a small PNG writer for the compose engine's hot path: 8-bit RGBA, RGB or
 * palette images, one row filter for every row (or a per-row adaptive choice), deflate by
 * libdeflate, CRCs by libdeflate_crc32. Chunks: IHDR, PLTE + tRNS (palette only), pHYs (fixed
 * 72 dpi, as libvips writes), one IDAT, IEND. No text, time or colour chunks, so the bytes
 * depend only on the pixels and the options.
 *
 * Why not libpng/libspng via libvips: on the compose benchmark (1024x1024 NFT items) libvips'
 * pngsave at zlib level 6 costs ~25 ms per item; libdeflate with a Paeth or Up filter gives
 * files of half the size in a few ms (see docs/compose.md, "Speed").
 */
#ifndef KILN_UTIL_PNG_H
#define KILN_UTIL_PNG_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/buf.h"
#include "kiln/error.h"

enum kiln_png_filter {
	KILN_PNG_FILTER_NONE,
	KILN_PNG_FILTER_SUB,
	KILN_PNG_FILTER_UP,
	KILN_PNG_FILTER_AVG,
	KILN_PNG_FILTER_PAETH,
	KILN_PNG_FILTER_ADAPTIVE, /* per row, the filter with the least sum of |signed bytes| */
};

/* Reusable memory for encoding: the deflate compressor and the filtered-rows buffer. A 4 MiB
 * image allocated, page-faulted and freed for every item costs several times the encoding
 * itself (measured: 30 ms vs 6 ms an item), so the compose engine keeps one per thread.
 * KILN_PNG_SCRATCH_INIT or zeroed memory is an empty one; release frees it. */
struct kiln_png_scratch {
	struct libdeflate_compressor *z;
	int zlevel;
	uint8_t *raw;
	size_t rawcap;
};
#define KILN_PNG_SCRATCH_INIT { NULL, -1, NULL, 0 }
void kiln_png_scratch_release(struct kiln_png_scratch *sc);

struct kiln_png_opts {
	int level;                   /* libdeflate level 0..12 (0 = stored) */
	enum kiln_png_filter filter; /* palette images are always written unfiltered */
	int rgb_if_opaque;           /* write colour type 2 (RGB) when every alpha is 255 */
};

/* "none", "sub", "up", "avg", "paeth", "adaptive" */
const char *kiln_png_filter_name(enum kiln_png_filter f);

/* sc may be NULL (temporary scratch). */
/* Append a PNG of the w x h RGBA image px (rows `stride` bytes apart) to out. */
int kiln_png_encode_rgba(const uint8_t *px, int w, int h, size_t stride,
			 const struct kiln_png_opts *o, struct kiln_png_scratch *sc, struct kiln_buf *out,
			 struct kiln_error *e) KILN_MUST_CHECK;

/* Append a palette PNG (colour type 3, 8 bits) of the w x h index image idx (w bytes a row)
 * with npal RGBA palette entries (1..256) to out. tRNS is written only up to the last entry
 * whose alpha is not 255. */
int kiln_png_encode_indexed(const uint8_t *idx, int w, int h, const uint8_t (*pal)[4],
			    int npal, const struct kiln_png_opts *o, struct kiln_png_scratch *sc,
			    struct kiln_buf *out,
			    struct kiln_error *e) KILN_MUST_CHECK;

#endif
