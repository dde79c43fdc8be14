/* kiln render: render the items that need it (new, changed recipe, failed, or missing). */
#include "cli.h"

#include "kiln/render.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
	printf("usage: kiln render [--threads N] [--force] [--json] [-q] [--dry-run ID]\n\n"
	       "Renders every item whose recipe (traits, layer files, image settings) changed\n"
	       "since its last render, or that failed or was never rendered. Images go to the\n"
	       "content store (.kiln/store); every attempt is recorded in the catalog. A progress\n"
	       "bar shows on a terminal (AI engines: a line per endpoint above it); Ctrl-C stops\n"
	       "after the items under way, and running the command again finishes the rest.\n\n"
	       "  --threads N   worker threads (default: one per core)\n"
	       "  --force       render every item again\n"
	       "  --json        JSON lines on stdout: an event per item, \"progress\" events\n"
	       "                (done, rate, ETA; AI engines: per-endpoint counters) at most\n"
	       "                two a second, then a summary\n"
	       "  -q, --quiet   no progress or summary\n"
	       "  --dry-run ID  AI engines: print the exact request item ID's first candidate\n"
	       "                would send to the first endpoint, and send nothing (credentials\n"
	       "                are never printed)\n\n"
	       "AI engines read endpoint credentials from the environment variables that\n"
	       "generate.endpoints[].auth_env (\"user:pass\") or token_env (bearer) name.\n\n"
	       "exit status: 0 ok, 1 some items failed (`kiln ls --status failed`), 2 bad spec.\n");
}

static int dry_run(struct kiln_project *p, const char *arg)
{
	struct kiln_buf out = KILN_BUF_INIT;
	struct kiln_error e;
	uint64_t id;
	int rc;
	if (cli_parse_u64(arg, 0, KILN_ID_MAX, &id))
		return cli_usage("render", "--dry-run takes an item id (see `kiln ls`), got '%s'", arg);
	kiln_error_clear(&e);
	if ((rc = kiln_project_render_dry_run(p, id, &out, &e))) {
		kiln_buf_release(&out);
		return cli_fail(&e);
	}
	fwrite(out.data, 1, out.len, stdout);
	kiln_buf_release(&out);
	return 0;
}

int cmd_render(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"threads", required_argument, NULL, 't'}, {"force", no_argument, NULL, 'f'},
		{"json", no_argument, NULL, 'j'}, {"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'}, {"dry-run", required_argument, NULL, 'n'},
		{NULL, 0, NULL, 0}};
	const char *dry = NULL;
	int c, force = 0, json = 0, quiet = 0, rc;
	unsigned threads = 0;
	struct kiln_project *p = NULL;
	optind = 1;
	while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
		switch (c) {
		case 't': {
			uint64_t n;
			if (cli_parse_u64(optarg, 1, 1024, &n))
				return cli_usage("render", "--threads takes a number from 1 to 1024, "
						 "got '%s'", optarg);
			threads = (unsigned)n;
			break;
		}
		case 'f': force = 1; break;
		case 'j': json = 1; break;
		case 'q': quiet = 1; break;
		case 'h': help(); return 0;
		case 'n': dry = optarg; break;
		default: return cli_usage("render", "unknown option");
		}
	}
	if (optind < argc)
		return cli_usage("render", "unexpected argument '%s'", argv[optind]);
	if ((rc = cli_open(cli, &p)))
		return rc;
	if ((rc = cli_resolve_secrets(p)))
		goto out;
	if (dry) {
		rc = dry_run(p, dry);
		goto out;
	}
	cli_catch_signals();
	rc = cli_stage_render(p, threads, force, json, quiet, NULL, NULL);
out:
	kiln_project_free(p);
	return rc;
}
