/* kiln train SUBCOMMAND: run (src/cmd_train_run.c). */
#include "cli.h"
#include "train_run.h"

#include <string.h>

int cmd_train(struct cli *cli, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage("train", "needs a subcommand: run");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		printf("usage: kiln train run NAME [--json] [-q] [--cancel]\n");
		return 0;
	}
	if (!strcmp(argv[1], "run"))
		return cmd_train_run(cli, argc - 1, argv + 1);
	return cli_usage("train", "'%s' is not a subcommand (run)", argv[1]);
}
