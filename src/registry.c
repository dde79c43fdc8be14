/* The command line of the registry verbs, `kiln models` and `kiln datasets`: VERB add ARG
 * [options] | VERB ls [--json], parsed once for both (cli_registry in cli.h). */
#include "cli.h"

#include <getopt.h>
#include <string.h>

int cli_registry(struct cli *cli, int argc, char **argv, struct cli_reg *r,
		 struct kiln_project **p)
{
	static struct cmd me;
	int c, rc, others = 0;
	*p = NULL;
	r->add = r->json = 0;
	r->arg = NULL;
	if (argc < 2)
		return cli_usage(r->verb, "needs a subcommand: add or ls");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		r->help();
		return CLI_REG_HELP;
	}
	r->add = !strcmp(argv[1], "add");
	if (!r->add && strcmp(argv[1], "ls"))
		return cli_usage(r->verb, "'%s' is not a subcommand (add or ls)", argv[1]);
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, "", r->opts, NULL)) != -1) {
		if (c == 'j') {
			r->json = 1;
		} else if (c == 'h') {
			r->help();
			return CLI_REG_HELP;
		} else if (c == '?' || c == ':') {
			return cli_usage(r->verb, "unknown option");
		} else {
			others++;
			if ((rc = r->option(r->user, c, optarg)))
				return rc;
		}
	}
	if (r->add && optind + 1 != argc - 1)
		return cli_usage(r->verb, "add takes one %s", r->what);
	if (!r->add && (optind < argc - 1 || others))
		return cli_usage(r->verb, "ls takes only --json");
	if (r->check && (rc = r->check(r->user, r->add)))
		return rc;
	if (r->add)
		r->arg = argv[optind + 1];
	/* ls reads: no lock */
	me = *cli->cmd;
	me.writes = r->add;
	cli->cmd = &me;
	return cli_open(cli, p);
}
