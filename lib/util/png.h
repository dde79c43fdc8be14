/* lib/util/png.h: a small PNG writer for the compose engine's hot path: 8-bit RGBA, RGB or
 * palette images, one row filter for every row (or a per-row adaptive choice), deflate by
 * libdeflate, CRCs by libdeflate_crc32. Chunks: IHDR, PLTE + tRNS (palette only), pHYs (fixed
 * 72 dpi, as libvips writes), one IDAT, IEND. No text, time or colour chunks, so the bytes
 * depend only on the pixels and the options. kiln_png_set_text() splices text chunks (the AI
 * disclosure) into any PNG without touching its pixels.
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
	void *zs;    /* zlib z_stream of kiln_png_encode_bands() */
	int zslevel;
};
#define KILN_PNG_SCRATCH_INIT { NULL, -1, NULL, 0, NULL, -1 }
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

/* The same PNG from rows produced one at a time: fn writes row y, w pixels of bpp bytes, into
 * row; rows come in order, and fn may keep state between calls. bpp is 3 (RGB) only when the
 * caller said opaque (every alpha is 255: no scan) and rgb_if_opaque is set, else 4 (RGBA).
 * With filter none fn writes straight into the buffer deflate reads. The compose engine
 * composites each row this way: no W x H x 4 canvas written and read back, no separate RGBA
 * to RGB pass (docs/compose.md, "Speed"). */
typedef void (*kiln_png_row_fn)(void *user, int y, uint8_t *row, int bpp);
int kiln_png_encode_rows(kiln_png_row_fn fn, void *user, int w, int h, int opaque,
			 const struct kiln_png_opts *o, struct kiln_png_scratch *sc,
			 struct kiln_buf *out, struct kiln_error *e) KILN_MUST_CHECK;

/* --- banded PNGs: the same band in many images is compressed once --------------------------
 *
 * A generative collection is thousands of images made of a few dozen layer files: a band of
 * rows that only a few layers touch has the same pixels in every item with those layers (on
 * bench/compose at 10,000 items, 93 % of 16-row bands had been seen before). The IDAT zlib
 * stream is cut into bands of KILN_PNG_BAND_ROWS rows, each compressed on its own (a fresh
 * zlib deflate at min(level, 9), ended by a sync flush, so it is byte-aligned, not final, and
 * refers to nothing before it), then the stream ends with an empty final block and the
 * Adler-32 of the whole (combined from the bands'). Any PNG decoder reads it: it is one
 * ordinary zlib stream. A band is compressed once per key and copied for every other image,
 * so the bytes of an image do not depend on which images came before, nor on threads.
 *
 * Why zlib and not libdeflate here: libdeflate can only write a final, unaligned stream, so
 * its output cannot be joined. Per band, zlib 6 gives 99.6 KiB an image on the benchmark set
 * (libdeflate 2 on the whole image: 92 KiB; sharp: 103 KiB), and a band is compressed once. */
#define KILN_PNG_BAND_ROWS 16

/* The key of one band: a 128-bit digest of what determines its pixels (the caller's
 * business: the compose engine hashes the layer files visible in the band), or of its bytes. */
struct kiln_png_key {
	uint64_t lo, hi;
};

/* Compressed bands shared by the images of a run; thread-safe. It keeps at most max_bytes
 * of compressed data (then stops adding: nothing is evicted, so entries stay valid until
 * _free). */
struct kiln_png_bands;
int kiln_png_bands_new(struct kiln_png_bands **b, size_t max_bytes,
		       struct kiln_error *e) KILN_MUST_CHECK;
void kiln_png_bands_free(struct kiln_png_bands *b);
/* hits and misses so far (for benchmarks and tests) */
void kiln_png_bands_stats(struct kiln_png_bands *b, uint64_t *hits, uint64_t *misses,
			  size_t *bytes);

/* A banded PNG of rows from fn (as kiln_png_encode_rows; fn may be called for any row, in
 * order within a band, and only for bands not found in the cache). keys: one per band
 * (ceil(h / KILN_PNG_BAND_ROWS)), or NULL to key each band by a digest of its filtered bytes.
 * o->filter must be none or sub (filters that look at the row above would tie a band to the
 * one before it). cache may be NULL (every band compressed). */
int kiln_png_encode_bands(kiln_png_row_fn fn, void *user, const struct kiln_png_key *keys,
			  int w, int h, int opaque, const struct kiln_png_opts *o,
			  struct kiln_png_bands *cache, struct kiln_png_scratch *sc,
			  struct kiln_buf *out, struct kiln_error *e) KILN_MUST_CHECK;

/* Append a palette PNG (colour type 3, 8 bits) of the w x h index image idx (w bytes a row)
 * with npal RGBA palette entries (1..256) to out. tRNS is written only up to the last entry
 * whose alpha is not 255. */
int kiln_png_encode_indexed(const uint8_t *idx, int w, int h, const uint8_t (*pal)[4],
			    int npal, const struct kiln_png_opts *o, struct kiln_png_scratch *sc,
			    struct kiln_buf *out,
			    struct kiln_error *e) KILN_MUST_CHECK;

/* --- text chunks in an existing PNG ---------------------------------------------------- */

/* A text chunk to put into a PNG. keyword: 1..79 bytes of printable Latin-1 (PNG's rule);
 * text: UTF-8. */
struct kiln_png_text {
	const char *keyword;
	const char *text;
	int itxt;   /* 1: always iTXt (XMP must be); 0: tEXt when the text is Latin-1 (code
	               points 0x20-0x7e, 0xa0-0xff and '\n': it is converted to those bytes),
	               else iTXt, UTF-8, as PIL's PngInfo.add_text does */
};

/* Append to out the PNG png[len] with texts[n] set: every tEXt, zTXt and iTXt chunk whose
 * keyword is one of theirs is dropped (so nothing is duplicated), and the new chunks go just
 * before the first IDAT, in the order given. iTXt chunks are uncompressed with an empty
 * language tag and translated keyword. Every other chunk is copied byte for byte: the pixels
 * are not decoded or re-encoded. The input is checked as it is read: signature, IHDR first,
 * every chunk's length, type and CRC, an IDAT, IEND last and nothing after it. Errors:
 * KILN_E_IMAGE (e says what is wrong and at which byte), KILN_E_NOMEM; out then keeps its
 * length. */
int kiln_png_set_text(const void *png, size_t len, const struct kiln_png_text *texts, size_t n,
		      struct kiln_buf *out, struct kiln_error *e) KILN_MUST_CHECK;

/* Append to out the PNG png[len] with every tEXt, zTXt and iTXt chunk of the PNG from[flen]
 * copied into it, byte for byte and in from's order, just before png's first IDAT (a polish
 * step keeps the texts of its input, such as A1111's "parameters"). from is checked as it is
 * read (signature, chunk lengths and CRCs up to IEND); png is kiln's own output (IDAT found by
 * the chunk lengths). Errors: KILN_E_IMAGE (which PNG, at which byte), KILN_E_NOMEM; out then
 * keeps its length. */
int kiln_png_copy_text(const void *from, size_t flen, const void *png, size_t len,
		       struct kiln_buf *out, struct kiln_error *e) KILN_MUST_CHECK;

#endif
