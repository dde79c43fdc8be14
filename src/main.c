/* kiln: the command. Global options, then a verb from the table; each verb lives in its own
 * file (src/cmd_VERB.c) and parses its own options. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmd_help(struct cli *cli, int argc, char **argv);
static int cmd_version(struct cli *cli, int argc, char **argv);

/* writes: 1 for a verb that changes the project (it takes .kiln/lock and fails at once when
 * another kiln holds it), 0 for one that only reads (no lock, the catalog opened read-only). */
const struct cmd kiln_commands[] = {
	{"init", cmd_init, 1, "start a project (a starter kiln.yaml, or import a HashLips layers folder)"},
	{"plan", cmd_plan, 1, "assign every token its traits, exactly as the spec's rarity says"},
	{"render", cmd_render, 1, "render the items that need it"},
	{"polish", cmd_polish, 1, "upscale, vectorize, overlay and artists' edits, each step recorded"},
	{"qa", cmd_qa, 1, "check images, metadata and the collection: the gate before release"},
	{"review", cmd_review, 1, "the review web app: approve, reject, regenerate, pick candidates"},
	{"release", cmd_release, 1, "write dist/: images and marketplace metadata"},
	{"verify", cmd_verify, 0, "check a release: image hashes, provenance hash and IPFS CIDs"},
	{"build", cmd_build, 1, "run every stage that is out of date (plan, render, polish, qa, release)"},
	{"status", cmd_status, 0, "what the catalog knows about the collection"},
	{"ls", cmd_ls, 0, "list items (--json: one object per line)"},
	{"show", cmd_show, 0, "one item: traits, seed, renders, errors"},
	{"keys", cmd_keys, 0, "the studio's signing keys for the Provenance Portfolio (init, show)"},
	{"models", cmd_models, 1, "the model registry: checkpoints and LoRAs with their hashes (add, ls)"},
	{"datasets", cmd_datasets, 1, "training datasets: files, hashes, Merkle root, licence (add, ls)"},
	{"train", cmd_train, 1, "train a LoRA: prepare the dataset, run the trainer, register the model"},
	{"help", cmd_help, 0, "a command's options and its page: `kiln help VERB`"},
	{"version", cmd_version, 0, "print the version"},
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
		   "  -h, --help   this help; `kiln help VERB` (or `kiln VERB --help`) for a "
		   "command's\n"
		   "  --version    print the version\n\n"
		   "exit status: 0 ok, 1 a job or gate failed, 2 bad usage, bad spec, or a stage\n"
		   "run before the plan it needs.\n"
		   "docs: docs/cli.md, and a page per command: docs/commands/VERB.md (`make install`\n"
		   "puts them in PREFIX/share/doc/kiln/).\n");
}

static const struct cmd *find(const char *name)
{
	for (const struct cmd *c = kiln_commands; c->name; c++)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

/* Levenshtein distance, capped: names are short. */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[33], prev, tmp;
	if (la > 32 || lb > 32)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t best = prev + (a[i - 1] != b[j - 1]);
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			tmp = row[j];
			row[j] = best;
			prev = tmp;
		}
	}
	return row[lb];
}

/* The verb nearest to a mistyped one (at most 2 edits, and fewer than its length), or NULL. */
static const char *nearest(const char *name)
{
	const char *best = NULL;
	size_t bd = 3;
	for (const struct cmd *c = kiln_commands; c->name; c++) {
		size_t d = distance(name, c->name);
		if (d < bd && d < strlen(name)) {
			bd = d;
			best = c->name;
		}
	}
	return best;
}

/* A verb's help (its --help), then where its page is. */
static int verb_help(struct cli *cli, const struct cmd *c)
{
	char *args[] = {(char *)c->name, "--help", NULL};
	int rc = c->run(cli, 2, args);
	if (!rc)
		printf("\ndocs: docs/commands/%s.md\n", c->name);
	return rc;
}

static int cmd_help(struct cli *cli, int argc, char **argv)
{
	const struct cmd *c;
	const char *near;
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	if (argc > 2)
		return cli_usage("help", "takes one command, got %d words", argc - 1);
	if (!(c = find(argv[1]))) {
		near = nearest(argv[1]);
		fprintf(stderr, "kiln: help: '%s' is not a kiln command%s%s%s\n", argv[1],
			near ? "; did you mean `kiln help " : "", near ? near : "", near ? "`?" : "");
		fprintf(stderr, "hint: `kiln --help` lists the commands\n");
		return 2;
	}
	if (c->run == cmd_help || c->run == cmd_version) {
		printf("usage: kiln %s%s\n\n%s\n", c->name, c->run == cmd_help ? " [VERB]" : "",
		       c->summary);
		return 0;
	}
	cli->cmd = c;
	return verb_help(cli, c);
}

static int cmd_version(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: kiln version\n\nprints kiln's version (as `kiln --version`)\n");
		return 0;
	}
	if (argc > 1)
		return cli_usage("version", "unexpected argument '%s'", argv[1]);
	printf("kiln %s\n", KILN_VERSION);
	return 0;
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
			fprintf(stderr, "kiln: unknown option '%s' (before the command: -C DIR, "
				"--help, --version)\n", argv[i]);
			fprintf(stderr, "hint: see `kiln --help`\n");
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	/* the verbs report bad options themselves, in kiln's one-line form (cli_usage) */
	opterr = 0;
	const struct cmd *c = find(argv[i]);
	if (c) {
		cli.cmd = c;
		if (argc - i == 2 && (!strcmp(argv[i + 1], "--help") || !strcmp(argv[i + 1], "-h")))
			return verb_help(&cli, c);
		cli_set_args(argc - i, argv + i);
		return c->run(&cli, argc - i, argv + i);
	}
	const char *near = nearest(argv[i]);
	if (near)
		fprintf(stderr, "kiln: '%s' is not a kiln command; did you mean `kiln %s`?\n",
			argv[i], near);
	else
		fprintf(stderr, "kiln: '%s' is not a kiln command; see `kiln --help`\n", argv[i]);
	return 2;
}
