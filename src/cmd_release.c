/* kiln release: write dist/ (images, token metadata, _metadata.json), swapped in whole. */
#include "cli.h"

#include <getopt.h>

static void help(void)
{
	printf("usage: kiln release [--force] [--json] [-q]\n\n"
	       "Writes dist/images/<id>.<ext>, dist/metadata/<id>.json (OpenSea / ERC-721 token\n"
	       "JSON) and dist/_metadata.json. The new dist/ is written beside the old one and\n"
	       "swapped in whole: a failed release leaves the previous one intact. Refuses while\n"
	       "any item lacks a current render.\n\n"
	       "  --force       write dist/ even when nothing changed\n"
	       "  --json        a JSON summary on stdout\n"
	       "  -q, --quiet   no summary\n");
}

int cmd_release(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"force", no_argument, NULL, 'f'}, {"json", no_argument, NULL, 'j'},
		{"quiet", no_argument, NULL, 'q'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	int c, force = 0, json = 0, quiet = 0, rc;
	struct kiln_project *p = NULL;
	optind = 1;
	while ((c = getopt_long(argc, argv, "q", opts, NULL)) != -1) {
		switch (c) {
		case 'f': force = 1; break;
		case 'j': json = 1; break;
		case 'q': quiet = 1; break;
		case 'h': help(); return 0;
		default: return cli_usage("release", "unknown option");
		}
	}
	if (optind < argc)
		return cli_usage("release", "unexpected argument '%s'", argv[optind]);
	if ((rc = cli_open(cli, &p)))
		return rc;
	rc = cli_stage_release(p, force, json, quiet, NULL);
	kiln_project_free(p);
	return rc;
}
