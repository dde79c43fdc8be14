/* kiln build: every stage that is out of date, in order: plan, render, release. */
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>

static void help(void)
{
	printf("usage: kiln build [--threads N] [--json] [-q]\n\n"
	       "Runs plan (if kiln.yaml changed), render (items whose recipe changed) and\n"
	       "release (if anything changed), like make. Run twice, the second run does\n"
	       "nothing and says so. Safe to interrupt (even kill -9) and run again.\n\n"
	       "  --threads N   render worker threads (default: one per core)\n"
	       "  --json        JSON lines on stdout (progress events and a summary per stage)\n"
	       "  -q, --quiet   no progress or summaries\n\n"
	       "exit status: 0 ok, 1 items failed to render (release is then skipped), 2 bad spec.\n");
}

int cmd_build(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"threads", required_argument, NULL, 't'}, {"json", no_argument, NULL, 'j'},
		{"quiet", no_argument, NULL, 'q'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	int c, json = 0, quiet = 0, rc, planned = 0, rendered = 0, failed = 0, released = 0;
	unsigned threads = 0;
	struct kiln_project *p = NULL;
	optind = 1;
	while ((c = getopt_long(argc, argv, "q", opts, NULL)) != -1) {
		switch (c) {
		case 't': {
			char *end;
			long n = strtol(optarg, &end, 10);
			if (*end || n < 1 || n > 1024)
				return cli_usage("build", "--threads takes a number from 1 to 1024");
			threads = (unsigned)n;
			break;
		}
		case 'j': json = 1; break;
		case 'q': quiet = 1; break;
		case 'h': help(); return 0;
		default: return cli_usage("build", "unknown option");
		}
	}
	if (optind < argc)
		return cli_usage("build", "unexpected argument '%s'", argv[optind]);
	if ((rc = cli_open(cli, &p)))
		return rc;
	cli_catch_signals();
	if ((rc = cli_stage_plan(p, 0, 0, json, quiet, &planned)))
		goto out;
	if ((rc = cli_stage_render(p, threads, 0, json, quiet, &rendered, &failed)))
		goto out;
	if ((rc = cli_stage_release(p, 0, json, quiet, &released)))
		goto out;
	if (!json && !quiet && !planned && !rendered && !released)
		printf("build: nothing to do, everything is up to date\n");
out:
	kiln_project_free(p);
	return rc;
}
