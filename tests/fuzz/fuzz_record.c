/* Fuzz target: the release records a folder holds (provenance.json, ipfs.json, the manifest),
 * as `kiln verify DIR` and `kiln qa DIR` read them from folders other people made. Input: the
 * three files' bytes, split by the two bytes 0x00 0x01 (provenance.json, ipfs.json,
 * manifest.sha256), written into a scratch release folder with one small image and metadata
 * file, then read by kiln_release_record_read() and checked by kiln_release_verify(). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "kiln/release.h"

static char dir[256];

static void put(const char *name, const uint8_t *p, size_t n)
{
	char path[512];
	FILE *f;
	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (!(f = fopen(path, "wb")))
		return;
	if (n)
		fwrite(p, 1, n, f);
	fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = {"provenance.json", "ipfs.json", "manifest.sha256"};
	struct kiln_release_record rec;
	struct kiln_verify_result vr;
	struct kiln_error e;
	size_t pos = 0;
	if (!dir[0]) {
		char p[512];
		snprintf(dir, sizeof dir, "%s/kiln-fuzz-record-%ld",
			 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (long)getpid());
		mkdir(dir, 0700);
		snprintf(p, sizeof p, "%s/images", dir);
		mkdir(p, 0700);
		snprintf(p, sizeof p, "%s/metadata", dir);
		mkdir(p, 0700);
		put("images/1.png", (const uint8_t *)"\x89PNG\r\n\x1a\n", 8);
		put("metadata/1.json", (const uint8_t *)"{\"name\": \"Owl #1\"}", 18);
	}
	for (int k = 0; k < 3; k++) {
		size_t end = pos;
		while (end + 1 < size && !(data[end] == 0 && data[end + 1] == 1))
			end++;
		if (end + 1 >= size)
			end = size;
		put(names[k], pos < size ? data + pos : NULL, pos < end ? end - pos : 0);
		pos = end + 2;
	}
	memset(&rec, 0, sizeof rec);
	kiln_error_clear(&e);
	if (kiln_release_record_read(dir, &rec, &e))
		kiln_error_clear(&e);
	kiln_release_record_release(&rec);
	memset(&vr, 0, sizeof vr);
	kiln_error_clear(&e);
	if (kiln_release_verify(dir, NULL, &vr, &e))
		kiln_error_clear(&e);
	kiln_verify_result_release(&vr);
	return 0;
}
