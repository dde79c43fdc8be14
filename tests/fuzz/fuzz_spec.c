/* Fuzz target: the spec loader (kiln_spec_parse) on arbitrary bytes. Files the spec names are
 * looked up in a scratch project folder made once, holding the layer files the seed corpus
 * names, so that inputs get past the file checks into the rest of the loader. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "kiln/spec.h"

static char dir[256];

static void make_dir(void)
{
	static const char *const files[] = {
		"layers/Body/plain.png", "layers/Body/gold.png", "layers/Hat/cap.png",
		"layers/Hat/crown.png", "layers/Background/dusk.png", "legendaries/one.png",
		"controlnet/pose.png", "workflow.json",
	};
	snprintf(dir, sizeof dir, "%s/kiln-fuzz-spec-%ld", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
		 (long)getpid());
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		char p[512], *s;
		snprintf(p, sizeof p, "%s/%s", dir, files[i]);
		for (s = p + 1; *s; s++)
			if (*s == '/') {
				*s = 0;
				mkdir(p, 0700);
				*s = '/';
			}
		FILE *f = fopen(p, "w");
		if (f)
			fclose(f);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kiln_spec *s = NULL;
	struct kiln_error e;
	if (!dir[0])
		make_dir();
	kiln_error_clear(&e);
	if (kiln_spec_parse(&s, (const char *)data, size, "fuzz.yaml", dir, &e) == 0)
		kiln_spec_free(s);
	return 0;
}
