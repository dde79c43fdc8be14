/* kiln: the command. Global options, then a verb from the table; each verb lives in its own
 * file (src/cmd_VERB.c) and parses its own options. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* writes: 1 for a verb that changes the project (it takes .kiln/lock and fails at once when
 * another kiln holds it), 0 for one that only reads (no lock, the catalog opened read-only). */
const struct cmd kiln_commands[] = {
	{"init", cmd_init, 1, "start a project (a starter kiln.yaml, or import a HashLips layers folder)"},
	{"plan", cmd_plan, 1, "assign every token its traits, exactly as the spec's rarity says"},
	{"render", cmd_render, 1, "render the items that need it"},
	{"qa", cmd_qa, 1, "check images, metadata and the collection: the gate before release"},
	{"release", cmd_release, 1, "write dist/: images and marketplace metadata"},
	{"verify", cmd_verify, 0, "check a release: image hashes, provenance hash and IPFS CIDs"},
	{"build", cmd_build, 1, "run every stage that is out of date (plan, render, release)"},
	{"status", cmd_status, 0, "what the catalog knows about the collection"},
	{"ls", cmd_ls, 0, "list items (--json: one object per line)"},
	{"show", cmd_show, 0, "one item: traits, seed, renders, errors"},
	{NULL, NULL, 0, NULL},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: kiln [-C DIR] <command> [options]\n\n"
		   "kiln builds generative NFT collections: declared once in kiln.yaml, planned\n"
		   "exactly, rendered, and released with marketplace metadata.\n\ncommands:\n");
	for (const struct cmd *c = kiln_commands; c->name; c++)
		fprintf(f, "  %-9s %s\n", c->name, c->summary);
	fprintf(f, "\noptions:\n"
		   "  -C DIR       work on the project in DIR (as git -C)\n"
		   "  -h, --help   this help; `kiln <command> --help` for a command's\n"
		   "  --version    print the version\n\n"
		   "exit status: 0 ok, 1 a job or gate failed, 2 bad usage or bad spec.\n"
		   "docs: docs/cli.md and one page per command in docs/.\n");
}

int main(int argc, char **argv)
{
	struct cli cli = {".", argv[0], NULL};
	int i = 1;
	while (i < argc && argv[i][0] == '-') {
		if (!strcmp(argv[i], "-C")) {
			if (i + 1 >= argc) {
				fprintf(stderr, "kiln: -C needs a folder\n");
				return 2;
			}
			cli.dir = argv[i + 1];
			i += 2;
		} else if (!strncmp(argv[i], "-C", 2)) {
			cli.dir = argv[i] + 2;
			i++;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--version")) {
			printf("kiln %s\n", KILN_VERSION);
			return 0;
		} else {
			fprintf(stderr, "kiln: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	for (const struct cmd *c = kiln_commands; c->name; c++)
		if (!strcmp(c->name, argv[i])) {
			cli.cmd = c;
			return c->run(&cli, argc - i, argv + i);
		}
	fprintf(stderr, "kiln: '%s' is not a kiln command; see `kiln --help`\n", argv[i]);
	return 2;
}
