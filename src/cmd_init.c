/* kiln init: a commented starter kiln.yaml, or one imported from a HashLips layers folder. */
#include "cli.h"
#include "kiln/plan.h"
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
	       "  --size N             collection size (default: the largest up to the number of\n"
	       "                       combinations, at most 100, that kiln's planner meets)\n"
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

/* Import at size n (0: the import's own choice) into y and plan it: *ok = 1 when the planner
 * meets it, else 0 with why saying what it said. A size the import itself refuses (its quick
 * bound) is not ok either while searching (else it is the error). *size gets the size the import wrote. Non-zero: an error in e. */
static int try_size(const struct kiln_hashlips_opts *base, uint64_t n, const char *path,
		    const char *dir, int search, struct kiln_buf *y, char *how, size_t howcap,
		    uint64_t *size, int *ok, struct kiln_error *why, struct kiln_error *e)
{
	struct kiln_hashlips_opts o = *base;
	struct kiln_spec *s = NULL;
	struct kiln_plan *pl = NULL;
	int rc;
	o.size = n;
	*ok = 0;
	kiln_buf_release(y);
	kiln_error_clear(why);
	if ((rc = kiln_hashlips_import(&o, y, how, howcap, search ? why : e)))
		return search && rc == KILN_E_USAGE ? 0 : rc;
	if ((rc = kiln_spec_parse(&s, y->data, y->len, path, dir, e)))
		return rc;
	*size = s->size;
	rc = kiln_plan_make(&pl, s, NULL, why);
	*ok = rc == 0;
	if (rc == KILN_E_INFEASIBLE || rc == KILN_E_NOTFOUND)
		rc = 0;
	else if (rc)
		*e = *why;
	kiln_plan_free(pl);
	kiln_spec_free(s);
	return rc;
}

/* The import at the size asked (or its own choice), checked with the planner; when the
 * planner cannot meet it, the largest size below it that plans, found by halving the range
 * between a size that plans and one that does not, written with a comment saying why. */
static int import_planned(const struct kiln_hashlips_opts *ho, const char *path, const char *dir,
			  struct kiln_buf *y, char *how, size_t howcap, struct kiln_error *e)
{
	struct kiln_error why, first;
	uint64_t size = 0, lo = 0, hi, got;
	char note[700], reason[300];
	int ok, rc = try_size(ho, ho->size, path, dir, 0, y, how, howcap, &size, &ok, &first, e);
	if (rc || ok)
		return rc;
	hi = size;
	if (isatty(2))
		fprintf(stderr, "kiln: %llu tokens do not plan with these weights; looking for the "
			"largest size that does...\n", (unsigned long long)size);
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;
		if ((rc = try_size(ho, mid, path, dir, 1, y, how, howcap, &got, &ok, &why, e)))
			return rc;
		if (ok)
			lo = mid;
		else
			hi = mid;
	}
	/* one line for a YAML comment: the planner's reason, cut at its first clause */
	snprintf(reason, sizeof reason, "%.290s", first.msg);
	reason[strcspn(reason, "\n#;")] = 0;
	if (!lo || ho->size) {
		kiln_buf_release(y);
		if (!lo)
			return kiln_error_set(e, KILN_E_USAGE, ho->layers_dir, "no collection size "
					      "up to %llu plans with these layers' weights (%llu tokens: "
					      "%s): give the rare traits more weight",
					      (unsigned long long)size, (unsigned long long)size, reason);
		return kiln_error_set(e, KILN_E_USAGE, ho->layers_dir, "a collection of %llu tokens "
				      "does not plan with these layers' weights (%s); %llu tokens "
				      "do, or give the rare traits more weight",
				      (unsigned long long)size, reason, (unsigned long long)lo);
	}
	snprintf(note, sizeof note, "size %llu: the planner finds no plan with these weights (%s); "
		 "%llu tokens plan, %llu do not", (unsigned long long)size, reason,
		 (unsigned long long)lo, (unsigned long long)lo + 1);
	{
		struct kiln_hashlips_opts o = *ho;
		o.size = lo;
		o.size_note = note;
		kiln_buf_release(y);
		return kiln_hashlips_import(&o, y, how, howcap, e);
	}
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
		if (import_planned(&ho, path, cli->dir, &y, how, sizeof how, &e)) {
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
