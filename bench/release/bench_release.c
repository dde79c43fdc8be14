/* bench_release: the hashing work of `kiln release` on a folder of images, timed.
 *
 *   bench_release gen DIR FIRST COUNT   write DIR/FIRST.png .. 1024x1024 RGB PNGs (libvips)
 *   bench_release cids DIR N OUT        images 1..N: read each file once, SHA-256 it (the
 *                                       provenance hash) and import it (IPFS CID), then make
 *                                       each token's JSON and import it (the metadata folder
 *                                       CID); writes the JSON to OUT/ afterwards (untimed) so
 *                                       the npm importer can check the CID.
 *
 * This is exactly the per-file work of lib/release.c's write_images() and write_set() less the
 * copies into dist/ (which are file system work, not hashing). Prints one line of results:
 * "images=<cid> metadata=<cid> provenance=<hex> wall=<s> cpu=<s> bytes=<n>".
 */
#include "kiln/release.h"
#include "kiln/release.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/sha.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <vips/vips.h>

static double now(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int gen(const char *dir, long first, long count)
{
	if (VIPS_INIT("bench_release"))
		return 1;
	vips_concurrency_set(1);
	for (long i = first; i < first + count; i++) {
		VipsImage *b[3] = {NULL, NULL, NULL}, *rgb = NULL, *u8 = NULL, *big = NULL;
		char path[4096];
		int bad = 0;
		/* blocky noise: about 1 MB a PNG, different in every file */
		for (int k = 0; k < 3 && !bad; k++)
			bad = vips_gaussnoise(&b[k], 512, 512, "mean", 128.0, "sigma", 40.0, "seed",
					      (int)(i * 3 + k), NULL);
		bad = bad || vips_bandjoin(b, &rgb, 3, NULL) ||
		      vips_cast_uchar(rgb, &u8, NULL) || vips_zoom(u8, &big, 2, 2, NULL);
		snprintf(path, sizeof path, "%s/%ld.png", dir, i);
		bad = bad || vips_pngsave(big, path, "compression", 6, NULL);
		for (int k = 0; k < 3; k++)
			if (b[k])
				g_object_unref(b[k]);
		if (rgb)
			g_object_unref(rgb);
		if (u8)
			g_object_unref(u8);
		if (big)
			g_object_unref(big);
		if (bad) {
			fprintf(stderr, "gen: %s: %s\n", path, vips_error_buffer());
			return 1;
		}
	}
	vips_shutdown();
	return 0;
}

static int cids(const char *dir, long n, const char *out)
{
	struct kiln_ipfs_dir *id = NULL, *md = NULL;
	struct kiln_buf img = KILN_BUF_INIT;
	struct kiln_error e;
	char icid[KILN_IPFS_CID_MAX], mcid[KILN_IPFS_CID_MAX], prov[65], (*sha)[65];
	char **texts = calloc((size_t)n + 1, sizeof *texts);
	double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
	uint64_t bytes = 0;
	sha = calloc((size_t)n + 1, sizeof *sha);
	kiln_buf_init(&img, (size_t)1 << 31);
	if (!texts || !sha || kiln_ipfs_dir_new(&id, NULL, &e) || kiln_ipfs_dir_new(&md, NULL, &e))
		goto fail;
	for (long i = 1; i <= n; i++) {
		char name[64], *path;
		snprintf(name, sizeof name, "%ld.png", i);
		path = kiln_fs_join(dir, name);
		kiln_buf_reset(&img);
		if (!path || kiln_fs_read(path, &img, &e))
			goto fail;
		free(path);
		kiln_sha256_hex(img.data, img.len, sha[i - 1]);
		if (kiln_ipfs_dir_add_buf(id, name, img.data, img.len, NULL, &e))
			goto fail;
		bytes += img.len;
	}
	if (kiln_ipfs_dir_finish(id, icid, NULL, &e) ||
	    kiln_provenance_hash((const char(*)[65])sha, (size_t)n, prov, &e))
		goto fail;
	for (long i = 1; i <= n; i++) {
		char name[64], uri[256];
		json_t *j;
		snprintf(name, sizeof name, "Pixel Owl #%ld", i);
		snprintf(uri, sizeof uri, "ipfs://%s/%ld.png", icid, i);
		j = json_pack("{s:s, s:s, s:s, s:[{s:s, s:s}, {s:s, s:s}, {s:s, s:i, s:s}]}", "name",
			      name, "description", "A benchmark owl.", "image", uri, "attributes",
			      "trait_type", "Background", "value", i % 2 ? "Dusk" : "Dawn",
			      "trait_type", "Eyes", "value", i % 3 ? "Round" : "Laser",
			      "trait_type", "Generation", "value", 1, "display_type", "number");
		texts[i - 1] = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
						      JSON_ENSURE_ASCII) : NULL;
		json_decref(j);
		snprintf(name, sizeof name, "%ld.json", i);
		if (!texts[i - 1] || kiln_ipfs_dir_add_buf(md, name, texts[i - 1],
							   strlen(texts[i - 1]), NULL, &e))
			goto fail;
	}
	if (kiln_ipfs_dir_finish(md, mcid, NULL, &e))
		goto fail;
	printf("images=%s metadata=%s provenance=%s wall=%.3f cpu=%.3f bytes=%llu\n", icid, mcid,
	       prov, now(CLOCK_MONOTONIC) - w0, now(CLOCK_PROCESS_CPUTIME_ID) - c0,
	       (unsigned long long)bytes);
	/* untimed: the metadata as files, for the npm importer */
	if (kiln_fs_mkdirs(out, &e))
		goto fail;
	for (long i = 1; i <= n; i++) {
		char name[64], *path;
		FILE *f;
		snprintf(name, sizeof name, "%s/%ld.json", out, i);
		path = name;
		if (!(f = fopen(path, "wb")) || fputs(texts[i - 1], f) < 0 || fclose(f))
			goto fail;
	}
	for (long i = 0; i < n; i++)
		free(texts[i]);
	free(texts);
	free(sha);
	kiln_buf_release(&img);
	kiln_ipfs_dir_free(id);
	kiln_ipfs_dir_free(md);
	return 0;
fail:
	fprintf(stderr, "bench_release: %s: %s\n", e.where, e.msg);
	return 1;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "gen"))
		return gen(argv[2], atol(argv[3]), atol(argv[4]));
	if (argc == 5 && !strcmp(argv[1], "cids"))
		return cids(argv[2], atol(argv[3]), argv[4]);
	fprintf(stderr, "usage: bench_release gen DIR FIRST COUNT | cids DIR N OUT\n");
	return 2;
}
