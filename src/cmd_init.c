/* kiln init: a commented starter kiln.yaml, or one imported from a HashLips layers folder. */
#include "cli.h"
#include "kiln/spec.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void help(void)
{
	printf("usage: kiln init [--force] [--from-hashlips LAYERS_DIR [--order A,B,...]\n"
	       "                 [--size N] [--name NAME]]\n\n"
	       "Writes kiln.yaml in the project folder (-C DIR, default here).\n\n"
	       "  --from-hashlips DIR  import a HashLips layers folder (DIR/<Layer>/<Name>#<weight>.png)\n"
	       "  --order A,B,...      layer order, bottom first (default: HashLips' src/config.js\n"
	       "                       layersOrder, else numeric folder prefixes, else a guess)\n"
	       "  --size N             collection size (default: combinations, at most 100)\n"
	       "  --name NAME          collection name (default: the folder's name)\n"
	       "  --force              overwrite an existing kiln.yaml\n");
}

static int write_new(const char *path, const char *text, size_t len, int force)
{
	char tmp[4096];
	FILE *f;
	if (!force && access(path, F_OK) == 0) {
		fprintf(stderr, "kiln: %s: already exists; use --force to overwrite it\n", path);
		return 2;
	}
	snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
	f = fopen(tmp, "w");
	if (!f || fwrite(text, 1, len, f) != len || fclose(f) != 0 || rename(tmp, path) != 0) {
		fprintf(stderr, "kiln: %s: cannot write: %s\n", path, strerror(errno));
		unlink(tmp);
		return 1;
	}
	return 0;
}

int cmd_init(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"from-hashlips", required_argument, NULL, 'H'}, {"order", required_argument, NULL, 'o'},
		{"size", required_argument, NULL, 's'}, {"name", required_argument, NULL, 'n'},
		{"force", no_argument, NULL, 'f'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	struct kiln_hashlips_opts ho;
	const char *from = NULL;
	char *orderbuf = NULL, *order[256], path[4096], how[256];
	int c, force = 0, rc = 0, lock = -1;
	struct kiln_error le;
	memset(&ho, 0, sizeof ho);
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'H': from = optarg; break;
		case 'o': {
			char *tok, *save = NULL;
			free(orderbuf);
			orderbuf = strdup(optarg);
			ho.norder = 0;
			for (tok = strtok_r(orderbuf, ",", &save); tok && ho.norder < 256;
			     tok = strtok_r(NULL, ",", &save))
				order[ho.norder++] = tok;
			ho.order = (const char *const *)order;
			break;
		}
		case 's': {
			uint64_t n;
			if (cli_parse_u64(optarg, 1, KILN_ID_MAX, &n)) {
				free(orderbuf);
				return cli_usage("init", "--size takes a number from 1 to %llu, got '%s'",
						 (unsigned long long)KILN_ID_MAX, optarg);
			}
			ho.size = n;
			break;
		}
		case 'n': ho.name = optarg; break;
		case 'f': force = 1; break;
		case 'h': help(); free(orderbuf); return 0;
		default: free(orderbuf); return cli_usage("init", "unknown option");
		}
	}
	if (optind < argc) {
		free(orderbuf);
		return cli_usage("init", "unexpected argument '%s'", argv[optind]);
	}
	if ((ho.order || ho.size || ho.name) && !from) {
		free(orderbuf);
		return cli_usage("init", "--order, --size and --name go with --from-hashlips");
	}
	if (mkdir(cli->dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "kiln: %s: cannot create the folder: %s\n", cli->dir, strerror(errno));
		free(orderbuf);
		return 1;
	}
	/* one writer at a time: not while another kiln works on this folder */
	snprintf(path, sizeof path, "%s/.kiln", cli->dir);
	kiln_error_clear(&le);
	if (kiln_project_lock(path, "init", &lock, &le)) {
		free(orderbuf);
		return cli_fail(&le);
	}
	snprintf(path, sizeof path, "%s/kiln.yaml", cli->dir);
	if (!from) {
		const char *t = kiln_spec_starter();
		rc = write_new(path, t, strlen(t), force);
		if (!rc)
			printf("wrote %s: a starter spec. Put your layers under layers/, edit it, then "
			       "run `kiln build`.\n", path);
	} else {
		struct kiln_buf y = KILN_BUF_INIT;
		struct kiln_error e;
		kiln_error_clear(&e);
		ho.layers_dir = from;
		ho.project_dir = cli->dir;
		if (kiln_hashlips_import(&ho, &y, how, sizeof how, &e)) {
			rc = cli_fail(&e);
		} else {
			rc = write_new(path, y.data, y.len, force);
			if (!rc)
				printf("wrote %s from %s (%s).\nCheck image size and layer order, then "
				       "run `kiln build`.\n", path, from, how);
		}
		kiln_buf_release(&y);
	}
	free(orderbuf);
	kiln_project_unlock(lock);
	return rc;
}
