/* phash_tool: print "FILE DHASH PHASH" for each file, with libkiln's kiln_phash_file(), in the
 * format of imagehash_oracle.py. Built by compare_phash.sh against a build's libkiln.a.
 * usage: phash_tool FILE...   or   phash_tool -   (file names on stdin) */
#include <stdio.h>
#include <string.h>

#include "qa/phash.h"

static int one(const char *path)
{
	struct kiln_error e;
	uint64_t d, p;
	char dh[17], ph[17];
	kiln_error_clear(&e);
	if (kiln_phash_file(path, &d, &p, &e)) {
		printf("%s ERROR %s\n", path, e.msg);
		return 1;
	}
	kiln_phash_hex(d, dh);
	kiln_phash_hex(p, ph);
	printf("%s %s %s\n", path, dh, ph);
	return 0;
}

int main(int argc, char **argv)
{
	int bad = 0;
	char line[4096];
	if (argc == 2 && !strcmp(argv[1], "-")) {
		while (fgets(line, sizeof line, stdin)) {
			line[strcspn(line, "\n")] = 0;
			if (*line)
				bad |= one(line);
		}
		return bad;
	}
	for (int i = 1; i < argc; i++)
		bad |= one(argv[i]);
	return bad;
}
