/* kiln datasets add DIR | ls: the training data the studio documents: every file's SHA-256
 * and pHash and the set's Merkle root, with its licence and source. */
#include "cli.h"
#include "kiln/qa.h"
#include "kiln/train.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
	printf("usage: kiln datasets add DIR --license L --source URL [--name NAME] [--json]\n"
	       "       kiln datasets ls [--json]\n\n"
	       "Records a training dataset in the project's catalog: every file under DIR (hidden\n"
	       "ones skipped, symbolic links refused) with its SHA-256 and size, images with their\n"
	       "perceptual hash (pHash, as QA computes it), and the set's Merkle root (RFC 6962,\n"
	       "one leaf per file: its sha256sum line). The release's portfolio publishes it\n"
	       "(datasets/NAME.json) and links models to it (`kiln models add --trained-on NAME`,\n"
	       "or kohya's ss_dataset_dirs).\n\n"
	       "  --license L   the data's licence (required: a portfolio says what it may use)\n"
	       "  --source URL  where the data comes from (required)\n"
	       "  --name NAME   the dataset's name (default: DIR's last component)\n"
	       "  --json        the record (add; without the file list) or one per line (ls)\n");
}

static int phash(const char *path, uint64_t *out, void *user, struct kiln_error *e)
{
	(void)user;
	return kiln_qa_phash(path, out, e);
}

struct dopts {
	const char *license, *source, *name;
};

static int option(void *user, int c, const char *arg)
{
	struct dopts *o = user;
	switch (c) {
	case 'l': o->license = arg; break;
	case 's': o->source = arg; break;
	case 'n': o->name = arg; break;
	}
	return 0;
}

/* add needs --license and --source: a portfolio says what the data is and where it is from */
static int check(void *user, int add)
{
	struct dopts *o = user;
	if (add && (!o->license || !*o->license || !o->source || !*o->source))
		return cli_usage("datasets", "add needs --license and --source: a portfolio says "
				 "what the data is and where it comes from");
	return 0;
}

int cmd_datasets(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'}, {"license", required_argument, NULL, 'l'},
		{"source", required_argument, NULL, 's'}, {"name", required_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	struct dopts o = {0};
	struct cli_reg reg = {"datasets", "DIR", opts, help, option, check, &o, 0, 0,
			     NULL};
	const char *license, *source, *name;
	struct kiln_project *p = NULL;
	struct kiln_error e;
	int json, rc, add;
	if ((rc = cli_registry(cli, argc, argv, &reg, &p)))
		return rc == CLI_REG_HELP ? 0 : rc;
	add = reg.add;
	json = reg.json;
	license = o.license;
	source = o.source;
	name = o.name;
	kiln_error_clear(&e);
	if (add) {
		const char *dir = reg.arg;
		char *rec = NULL, root[65], nb[256];
		int added = 0;
		if (!name) {
			size_t l = strlen(dir);
			while (l > 1 && dir[l - 1] == '/')
				l--;
			snprintf(nb, sizeof nb, "%.*s", (int)l, dir);
			name = strrchr(nb, '/') ? strrchr(nb, '/') + 1 : nb;
		}
		if (kiln_dataset_scan(dir, name, license, source, phash, NULL, &rec, root, &e) ||
		    kiln_catalog_registry_add(p->catalog, "datasets", root, name, NULL, rec, &added,
					      &e)) {
			rc = cli_fail(&e);
		} else {
			json_t *r = json_loads(rec, 0, NULL);
			json_object_del(r, "entries");
			if (json) {
				json_dumpf(r, stdout, JSON_COMPACT | JSON_SORT_KEYS);
				putchar('\n');
			} else {
				printf("%s dataset %s: %lld files, merkle root %s\n",
				       added ? "recorded" : "already recorded", name,
				       (long long)json_integer_value(json_object_get(r, "files")),
				       root);
			}
			json_decref(r);
		}
		free(rec);
	} else {
		struct kiln_fact *v = NULL;
		size_t n = 0;
		if (kiln_catalog_facts(p->catalog, "dataset", 0, &v, &n, &e)) {
			rc = cli_fail(&e);
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			json_t *r = json_loads(v[i].json, 0, NULL);
			json_object_del(r, "entries");
			if (json) {
				json_dumpf(r, stdout, JSON_COMPACT | JSON_SORT_KEYS);
				putchar('\n');
			} else {
				printf("%-20s %5lld files  %s  %s\n",
				       json_string_value(json_object_get(r, "name")),
				       (long long)json_integer_value(json_object_get(r, "files")),
				       json_string_value(json_object_get(r, "license")),
				       json_string_value(json_object_get(r, "merkle_root")));
			}
			json_decref(r);
		}
		kiln_facts_free(v, n);
	}
out:
	kiln_project_free(p);
	return rc;
}
