/* The limit for bench/qa: decode every image of a folder completely with libvips, on as many
 * threads as kiln qa uses, and nothing else. Prints "decode_only SECONDS IMAGES". */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <vips/vips.h>

static char **files;
static size_t nfiles, next;

static void *worker(void *arg)
{
	(void)arg;
	for (;;) {
		size_t k = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED);
		VipsImage *im;
		size_t size;
		void *mem;
		if (k >= nfiles)
			return NULL;
		im = vips_image_new_from_file(files[k], "access", VIPS_ACCESS_SEQUENTIAL, "fail_on",
					      VIPS_FAIL_ON_ERROR, NULL);
		if (!im)
			continue;
		mem = vips_image_write_to_memory(im, &size);
		g_free(mem);
		g_object_unref(im);
	}
}

int main(int argc, char **argv)
{
	DIR *d;
	struct dirent *de;
	struct timespec a, b;
	long nt = sysconf(_SC_NPROCESSORS_ONLN);
	pthread_t th[64];
	if (argc < 2 || VIPS_INIT(argv[0]))
		return 2;
	vips_concurrency_set(1);
	vips_cache_set_max(0);
	d = opendir(argv[1]);
	if (!d)
		return 2;
	files = calloc(1000000, sizeof *files);
	while ((de = readdir(d)) && nfiles < 1000000)
		if (de->d_name[0] != '.') {
			files[nfiles] = malloc(strlen(argv[1]) + strlen(de->d_name) + 2);
			sprintf(files[nfiles++], "%s/%s", argv[1], de->d_name);
		}
	closedir(d);
	if (nt < 1 || nt > 64)
		nt = 2;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < nt; i++)
		pthread_create(&th[i], NULL, worker, NULL);
	for (long i = 0; i < nt; i++)
		pthread_join(th[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("decode_only %.3f %zu\n", (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9,
	       nfiles);
	return 0;
}
