/* kiln ls: list items. --json prints one object per item per line; scripts read it, so its
 * shape is a contract: id, traits {layer: value}, seed, status, image, rarity_rank,
 * rarity_score, legendary (name or null), error (or null), review {status, reviewers,
 * candidate, note, approvals, conflict}. */
#include "cli.h"

#include <getopt.h>
#include <jansson.h>
#include <string.h>

static void help(void)
{
	printf("usage: kiln ls [--json] [--status planned|rendered|failed]\n\n"
	       "Lists the items of the catalog in id order.\n\n"
	       "  --json          one JSON object per item per line: id, traits ({layer: value},\n"
	       "                  none values included), seed, status, image (sha256 or null),\n"
	       "                  rarity_rank, rarity_score, legendary, error, review\n"
	       "                  ({status, reviewers, candidate, note, approvals, conflict})\n"
	       "  --status S      only items in status S\n");
}

static const char *status_name(enum kiln_item_status s)
{
	return s == KILN_ITEM_RENDERED ? "rendered" : s == KILN_ITEM_FAILED ? "failed" : "planned";
}

int cmd_ls(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'}, {"status", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	int c, json = 0, rc;
	const char *status = NULL;
	struct kiln_project *p = NULL;
	struct kiln_items items;
	struct kiln_error e;
	struct kiln_review_state *rs = NULL;
	size_t nrs = 0, j = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = 1; break;
		case 's': status = optarg; break;
		case 'h': help(); return 0;
		default: return cli_usage("ls", "unknown option");
		}
	}
	if (status && strcmp(status, "planned") && strcmp(status, "rendered") &&
	    strcmp(status, "failed"))
		return cli_usage("ls", "--status is planned, rendered or failed, not '%s'", status);
	if (optind < argc)
		return cli_usage("ls", "unexpected argument '%s'", argv[optind]);
	if ((rc = cli_open(cli, &p)))
		return rc;
	kiln_error_clear(&e);
	if (kiln_catalog_items(p->catalog, p->spec, &items, &e)) {
		rc = cli_fail(&e);
		goto out;
	}
	/* each item's review state (items and states both in id order) */
	if (json && kiln_catalog_review_states(p->catalog, &rs, &nrs, &e)) {
		kiln_items_release(&items);
		rc = cli_fail(&e);
		goto out;
	}
	if (!json)
		printf("%8s  %-9s %6s  %s\n", "id", "status", "rank", "traits");
	for (size_t i = 0; i < items.n; i++) {
		const struct kiln_item *it = &items.v[i];
		if (status && strcmp(status, status_name(it->status)))
			continue;
		if (json) {
			json_t *traits = json_loads(it->traits_json, 0, NULL);
			json_t *o = json_pack("{s:I, s:o, s:I, s:s, s:s?, s:I, s:f, s:s?, s:s?}",
				"id", (json_int_t)it->id, "traits", traits ? traits : json_object(),
				"seed", (json_int_t)it->seed, "status", status_name(it->status),
				"image", it->image[0] ? it->image : NULL,
				"rarity_rank", (json_int_t)it->rarity_rank,
				"rarity_score", it->rarity_score,
				"legendary", it->legendary_name, "error", it->error);
			if (o && !it->legendary_name)
				json_object_set_new(o, "legendary", json_null());
			if (o && !it->image[0])
				json_object_set_new(o, "image", json_null());
			if (o && !it->error)
				json_object_set_new(o, "error", json_null());
			while (j < nrs && rs[j].item_id < it->id)
				j++;
			if (o)
				json_object_set_new(o, "review", cli_review_item_json(
					j < nrs && rs[j].item_id == it->id ? &rs[j] : NULL));
			json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
			fputc('\n', stdout);
			json_decref(o);
		} else {
			printf("%8llu  %-9s %6llu  %s%s\n", (unsigned long long)it->id,
			       status_name(it->status), (unsigned long long)it->rarity_rank,
			       it->legendary_name ? "legendary: " : "",
			       it->legendary_name ? it->legendary_name : it->traits_json);
		}
	}
	kiln_items_release(&items);
	kiln_review_states_free(rs, nrs);
out:
	kiln_project_free(p);
	return rc;
}
