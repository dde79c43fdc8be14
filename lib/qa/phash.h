/* qa/phash.h: image fingerprints for QA: perceptual hashes (dHash, pHash) defined bit for bit
 * as Python's imagehash 4.x computes them with Pillow and SciPy, a pixel-content hash for exact
 * duplicates, and a near-duplicate index (multi-index hashing) that finds every pair of 64-bit
 * hashes within a Hamming threshold without comparing every pair.
 *
 * The hashes (design.md section 7; docs/qa.md has the details and the oracle):
 *   grey  = (R*19595 + G*38470 + B*7471 + 0x8000) >> 16 per pixel (Pillow convert("L"));
 *           alpha is ignored, a grey image (1 or 2 bands) is its first band;
 *   dHash = grey resized to 9x8 with Pillow's LANCZOS, bit = right pixel > left pixel,
 *           row-major, first bit is the most significant (imagehash's hex string);
 *   pHash = grey resized to 32x32 with Pillow's LANCZOS, 2-D DCT-II as scipy.fftpack.dct
 *           (axis 0 then axis 1, unnormalised, pocketfft's arithmetic), top-left 8x8 incl. DC,
 *           bit = value > median of those 64 values, row-major, MSB first.
 * A hash is a uint64_t whose hex form (kiln_phash_hex) is exactly imagehash's str(hash).
 * Distance = number of differing bits (kiln_phash_distance).
 */
#ifndef KILN_PHASH_H
#define KILN_PHASH_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/error.h"

/* dHash and pHash of an 8-bit image: width x height pixels of `bands` (1 grey, 2 grey+alpha,
 * 3 RGB, 4 RGBA) interleaved bytes, rows `stride` bytes apart (0 = width*bands). Either output
 * may be NULL. KILN_E_USAGE for a bad size or band count, KILN_E_NOMEM. Thread-safe. */
int kiln_phash_from_pixels(const uint8_t *pixels, int width, int height, int bands,
			   size_t stride, uint64_t *dhash, uint64_t *phash, struct kiln_error *e)
	KILN_MUST_CHECK;

/* What kiln_phash_image() learns from one decoded image. */
struct kiln_phash_info {
	uint64_t dhash;
	uint64_t phash;
	char pixel_sha256[65]; /* kiln_pixel_sha256 of the decoded pixels, lowercase hex */
	int width, height;
	int bands;             /* as decoded (1-4), before any conversion */
};

/* Decode the image at path with libvips (PNG, JPEG, WebP, GIF first frame, ... any format
 * libvips loads) and hash it. 16-bit images are reduced to 8 bits by keeping the high byte
 * (as Pillow's PNG decoder does for RGB/RGBA), CMYK and other colour spaces are converted to
 * sRGB first. KILN_E_IMAGE (with libvips' reason) when the file cannot be decoded. Thread-safe. */
int kiln_phash_image(const char *path, struct kiln_phash_info *out, struct kiln_error *e)
	KILN_MUST_CHECK;

/* The two perceptual hashes only (either may be NULL). */
int kiln_phash_file(const char *path, uint64_t *dhash, uint64_t *phash, struct kiln_error *e)
	KILN_MUST_CHECK;

/* Exact duplicates are "same pixels, not just same bytes": the SHA-256 of the image put in
 * one canonical form, so a palette PNG, an RGB PNG and an RGBA PNG with opaque alpha of the
 * same picture hash alike, while any pixel change (alpha included) changes the hash.
 * Canonical form: the 12-byte header "KPX1" + width (u32 big-endian) + height (u32 BE)
 * (i.e. 4 + 4 + 4 bytes), then every pixel as R,G,B,A bytes row by row (grey g -> g,g,g;
 * no alpha -> 255). Same input conventions as kiln_phash_from_pixels. */
int kiln_pixel_sha256(const uint8_t *pixels, int width, int height, int bands, size_t stride,
		      char hex[65], struct kiln_error *e) KILN_MUST_CHECK;

/* XXH3-128 (xxHash) of the pixels, 32 lowercase hex digits + NUL: the key kiln qa groups
 * exact duplicates by. Its canonical form ("KPX2": an image opaque everywhere as RGB rows,
 * any other as RGBA rows; lib/phash.c) groups exactly what kiln_pixel_sha256's does. Not cryptographic (use kiln_pixel_sha256 where someone
 * else must be able to trust the hash), but ~10x cheaper: bench/qa/qa_vs_decode.sh showed
 * SHA-256 over the canonical pixels (4 MiB per 1024x1024 image) as 18% of kiln qa's CPU. */
int kiln_pixel_key(const uint8_t *pixels, int width, int height, int bands, size_t stride,
		   char hex[33], struct kiln_error *e) KILN_MUST_CHECK;

/* ---- colour look-alikes -----------------------------------------------------------------
 * pHash is computed on grey, so two tokens that differ only in colour (a background, the
 * eyes) hash alike. The colour print of an image is a G x G grid of cells in CIELAB, G the
 * largest of 32, 16, 8 whose cells are at least 16 pixels wide and high (8 for smaller
 * images): each cell the mean sRGB colour of its pixels (area average; alpha composited over
 * white, as a page shows a transparent token; an image of more than 16 rows a cell is read
 * every (rows a cell / 16)-th row), converted to L*a*b* (D65) and stored as 3
 * bytes (L* x 2.55, a* + 128, b* + 128, rounded and clamped); the last byte holds G. Area
 * means make it stable under re-encoding, resizing and noise; a trait of another colour
 * changes the cells it covers by its full colour difference. */
#define KILN_LAB_CELLS 32
#define KILN_LAB_BYTES (KILN_LAB_CELLS * KILN_LAB_CELLS * 3 + 1)

/* The colour print of an image (same input conventions as kiln_phash_from_pixels). */
int kiln_lab_print(const uint8_t *pixels, int width, int height, int bands, size_t stride,
		   uint8_t out[KILN_LAB_BYTES], struct kiln_error *e) KILN_MUST_CHECK;

/* The colour difference of two prints: the largest CIE76 delta E (Euclidean distance in
 * L*a*b*) over the cells, i.e. how far apart the two images are where they differ most
 * (two prints of different grids are compared on the coarser one, the finer pooled).
 * 0: the same print; re-encoded, resized or noised copies of one image stay within about 4
 * (JPEG quality 80 at 512x512: 3.8); a trait of another colour gives 8 and more (the 10,000
 * token collection of docs/qa.md). stop > 0: return as soon as a cell is over stop (the
 * result is then some value over stop, not the largest). */
double kiln_lab_distance(const uint8_t a[KILN_LAB_BYTES], const uint8_t b[KILN_LAB_BYTES],
			 double stop);

/* imagehash's str(): 16 lowercase hex digits + NUL. */
void kiln_phash_hex(uint64_t h, char out[17]);
/* Parse 16 hex digits (either case) back; 0 ok, KILN_E_USAGE otherwise. */
int kiln_phash_parse_hex(const char *s, uint64_t *h) KILN_MUST_CHECK;

static inline int kiln_phash_distance(uint64_t a, uint64_t b)
{
	return __builtin_popcountll(a ^ b);
}

/* ---- near duplicates ---------------------------------------------------------------------
 * Every pair (i < j) of hashes with distance <= threshold, through multi-index hashing: the
 * 64 bits are cut into m substrings with radii r_k, sum(r_k + 1) > threshold, so two hashes
 * within the threshold are within r_k of each other on some substring k (pigeonhole); each
 * substring is a counting-sorted table, each bucket meets the buckets within r_k of it, and
 * every candidate pair is verified on the whole 64 bits. m is chosen from N (substrings of
 * about log2(N) + 1 bits) so buckets hold about one hash. 1,000,000 hashes at threshold 8 take
 * 1.6-2.4 CPU-seconds split over two threads (bench/qa/bench_neardup.c; a brute-force scan of
 * every pair would take about 40 minutes). */

struct kiln_neardup_pair {
	uint32_t i, j;   /* indices into the input, i < j */
	uint32_t dist;   /* Hamming distance, <= threshold */
};

struct kiln_neardup_opts {
	int threshold;      /* 0..32; typical 4..10 */
	int threads;        /* worker threads; 0 = one per online CPU (at most 16) */
	size_t max_pairs;   /* give up (KILN_E_FAILED) past this many pairs; 0 = 10,000,000 */
};

/* Find all pairs of hashes[0..n) within opts->threshold. On success *pairs (owned by the
 * caller, free() it; NULL when *npairs == 0) is sorted by (i, j): the result does not
 * depend on the thread count. n < 2^32. KILN_E_USAGE (bad threshold or n), KILN_E_NOMEM,
 * KILN_E_FAILED when there are more than max_pairs pairs (e.g. thousands of identical
 * images: group exact duplicates by hash first). */
int kiln_neardup_pairs(const uint64_t *hashes, size_t n, const struct kiln_neardup_opts *opts,
		       struct kiln_neardup_pair **pairs, size_t *npairs, struct kiln_error *e)
	KILN_MUST_CHECK;

/* The same result by comparing every pair (O(n^2)); for tests and benchmarks. */
int kiln_neardup_pairs_brute(const uint64_t *hashes, size_t n, int threshold,
			     size_t max_pairs, struct kiln_neardup_pair **pairs, size_t *npairs,
			     struct kiln_error *e) KILN_MUST_CHECK;

#endif
