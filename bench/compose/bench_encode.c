/* bench_encode: the "limit" of bench/compose: encode the final pixels of every image kiln
 * rendered, with kiln's own encoder and the project's settings, and nothing else (no layer
 * decoding, no compositing, no store or catalog writes).
 *
 * usage: bench_encode PROJECT_DIR [THREADS [STORE_DIR]]
 *
 * With STORE_DIR, each encoded image is also put into a content store there, exactly as
 * kiln render puts its images (kiln_store_put: SHA-256, temporary name, rename; one
 * kiln_store_sync per 64 images a thread), and that is timed too: the limit of encoding and
 * writing the files, which on this machine's ext4 costs seconds of kernel time per 10,000
 * files. wall_s is then the busiest thread's elapsed time in that work (waits for the disk
 * included), not its CPU time.
 *
 * Every image in PROJECT_DIR/.kiln/store is decoded with libvips (not timed; this also checks
 * that every file kiln wrote decodes), then encoded again at kiln.yaml's compression / filter /
 * alpha settings (timed with the thread's CPU clock). An opaque image (stored as RGB) is fed
 * as ready RGB rows, one memcpy a row, with no alpha scan and no RGBA-to-RGB packing: the
 * least work any compositor could leave to the encoder, so the limit is strict. With filter
 * none or sub that is kiln's banded encoder (kiln_png_encode_bands(), png.h) with one band
 * cache for the run, keyed by each band's bytes (XXH3-128): the encoder cannot know which
 * layers made a band, so it hashes it; the compose engine keys bands by their layer files and
 * skips compositing the bands it has. Other filters: kiln_png_encode_rows(). Images with
 * alpha go through kiln_png_encode_rgba().
 * Threads take files in turn. Prints one line:
 *   files N bad B cpu_s C wall_s W bytes S
 * where wall_s is the busiest thread's encode time (what THREADS cores would need) and bytes
 * the re-encoded total (equal to the store's when the settings match). PNG only.
 */
#include "kiln/spec.h"
#include "kiln/catalog.h"
#include "util/png.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <vips/vips.h>

struct shared {
	char **files;
	size_t nfiles, next;
	const struct kiln_spec *s;
	struct kiln_png_bands *bands;
	struct kiln_store *store; /* NULL: encode only */
	pthread_mutex_t mu;
};

struct result {
	double cpu, elapsed;
	size_t bad, bytes, put;
};

static double thread_cpu(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

struct rows {
	const uint8_t *px;
	size_t stride;
};

/* kiln_png_encode_rows() callback: hand over row y of a ready RGB image */
static void copy_row(void *user, int y, uint8_t *row, int bpp)
{
	const struct rows *r = user;
	memcpy(row, r->px + (size_t)y * r->stride, r->stride / 3 * (size_t)bpp);
}

static double mono(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static void *worker(void *arg)
{
	struct shared *sh = ((void **)arg)[0];
	struct result *res = ((void **)arg)[1];
	struct kiln_png_scratch sc = KILN_PNG_SCRATCH_INIT;
	struct kiln_buf out = KILN_BUF_INIT;
	struct kiln_png_opts o = { sh->s->png_compression, (enum kiln_png_filter)sh->s->png_filter,
				   !sh->s->png_keep_alpha };
	for (;;) {
		VipsImage *im, *t = NULL;
		struct kiln_error e;
		uint8_t *px;
		size_t k, len;
		double t0;
		pthread_mutex_lock(&sh->mu);
		k = sh->next++;
		pthread_mutex_unlock(&sh->mu);
		if (k >= sh->nfiles)
			break;
		im = vips_image_new_from_file(sh->files[k], "access", VIPS_ACCESS_SEQUENTIAL, NULL);
		if (im && vips_image_get_bands(im) == 3 && !o.rgb_if_opaque) {
			if (vips_bandjoin_const1(im, &t, 255.0, NULL))
				t = NULL;
			g_object_unref(im);
			im = t;
		}
		px = im ? vips_image_write_to_memory(im, &len) : NULL;
		if (!px || (vips_image_get_bands(im) != 4 && vips_image_get_bands(im) != 3)) {
			fprintf(stderr, "bench_encode: %s does not decode as RGB(A)\n", sh->files[k]);
			res->bad++;
		} else {
			int rgb = vips_image_get_bands(im) == 3;
			struct rows r = { px, (size_t)im->Xsize * 3 };
			double m0 = mono();
			kiln_buf_reset(&out);
			t0 = thread_cpu();
			int banded = o.filter == KILN_PNG_FILTER_NONE || o.filter == KILN_PNG_FILTER_SUB;
			if (rgb && banded ? kiln_png_encode_bands(copy_row, &r, NULL, im->Xsize,
								  im->Ysize, 1, &o, sh->bands, &sc,
								  &out, &e)
			    : rgb ? kiln_png_encode_rows(copy_row, &r, im->Xsize, im->Ysize, 1, &o, &sc,
						       &out, &e)
				: kiln_png_encode_rgba(px, im->Xsize, im->Ysize, (size_t)im->Xsize * 4,
						       &o, &sc, &out, &e)) {
				fprintf(stderr, "bench_encode: %s\n", e.msg);
				res->bad++;
			}
			if (sh->store) {
				char sha[65];
				if (kiln_store_put(sh->store, out.data, out.len, sha, &e) ||
				    (++res->put % 64 == 0 && kiln_store_sync(sh->store, &e))) {
					fprintf(stderr, "bench_encode: %s\n", e.msg);
					res->bad++;
				}
			}
			res->cpu += thread_cpu() - t0;
			res->elapsed += mono() - m0;
			res->bytes += out.len;
		}
		g_free(px);
		if (im)
			g_object_unref(im);
	}
	kiln_buf_release(&out);
	kiln_png_scratch_release(&sc);
	return NULL;
}

static int add_files(const char *dir, struct shared *sh, size_t *cap)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		char p[4096];
		if (de->d_name[0] == '.' || strstr(de->d_name, ".tmp"))
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
		if (de->d_type == DT_DIR) {
			add_files(p, sh, cap);
			continue;
		}
		if (sh->nfiles == *cap) {
			*cap = *cap ? *cap * 2 : 1024;
			sh->files = realloc(sh->files, *cap * sizeof *sh->files);
			if (!sh->files)
				abort();
		}
		sh->files[sh->nfiles++] = strdup(p);
	}
	closedir(d);
	return 0;
}

int main(int argc, char **argv)
{
	struct shared sh;
	struct kiln_spec *s = NULL;
	struct kiln_error e;
	struct result *res;
	pthread_t *th;
	char path[4096];
	size_t cap = 0, bad = 0, bytes = 0;
	double cpu = 0, wall = 0;
	int nth = argc > 2 ? atoi(argv[2]) : 2;
	if (argc < 2 || nth < 1) {
		fprintf(stderr, "usage: bench_encode PROJECT_DIR [THREADS]\n");
		return 2;
	}
	if (VIPS_INIT(argv[0]))
		return 1;
	vips_concurrency_set(1);
	snprintf(path, sizeof path, "%s/kiln.yaml", argv[1]);
	if (kiln_spec_load(&s, path, &e)) {
		fprintf(stderr, "bench_encode: %s: %s\n", e.where, e.msg);
		return 1;
	}
	if (s->format != KILN_FORMAT_PNG || s->png_palette || s->scale > 1) {
		fprintf(stderr, "bench_encode: only plain PNG output is measured\n");
		return 1;
	}
	memset(&sh, 0, sizeof sh);
	sh.s = s;
	if (kiln_png_bands_new(&sh.bands, (size_t)256 << 20, &e)) /* the engine's cap */
		return 1;
	pthread_mutex_init(&sh.mu, NULL);
	snprintf(path, sizeof path, "%s/.kiln/store", argv[1]);
	if (add_files(path, &sh, &cap) || !sh.nfiles) {
		fprintf(stderr, "bench_encode: no images under %s\n", path);
		return 1;
	}
	if (argc > 3 && kiln_store_open(&sh.store, argv[3], &e)) {
		fprintf(stderr, "bench_encode: %s: %s\n", e.where, e.msg);
		return 1;
	}
	res = calloc((size_t)nth, sizeof *res);
	th = calloc((size_t)nth, sizeof *th);
	void **args = calloc((size_t)nth * 2, sizeof *args);
	for (int i = 0; i < nth; i++) {
		args[2 * i] = &sh;
		args[2 * i + 1] = &res[i];
		pthread_create(&th[i], NULL, worker, &args[2 * i]);
	}
	for (int i = 0; i < nth; i++) {
		pthread_join(th[i], NULL);
		cpu += res[i].cpu;
		bad += res[i].bad;
		bytes += res[i].bytes;
		if ((sh.store ? res[i].elapsed : res[i].cpu) > wall)
			wall = sh.store ? res[i].elapsed : res[i].cpu;
	}
	printf("files %zu bad %zu cpu_s %.3f wall_s %.3f bytes %zu\n", sh.nfiles, bad, cpu, wall,
	       bytes);
	for (size_t i = 0; i < sh.nfiles; i++)
		free(sh.files[i]);
	free(sh.files);
	free(res);
	free(th);
	free(args);
	if (sh.store && kiln_store_sync(sh.store, &e))
		bad++;
	kiln_store_free(sh.store);
	kiln_png_bands_free(sh.bands);
	kiln_spec_free(s);
	return bad ? 1 : 0;
}
