/* kiln plan: assign traits (the Attribute Controller), store the plan, optionally report
 * target vs actual per value and each token's OpenRarity rank. */
#include "cli.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
	printf("usage: kiln plan [--report] [--json] [--force] [--fresh] [--replace ID]\n"
	       "                 [--effort N]\n\n"
	       "Assigns every token its traits so that each value's count equals its target\n"
	       "exactly, no rule is broken and every token is unique. Re-planning after a spec\n"
	       "change keeps the ids and seeds of tokens whose traits did not change.\n\n"
	       "  --report       per layer and value: target, actual, share; per token: OpenRarity\n"
	       "                 score and rank\n"
	       "  --json         the report (or summary) as JSON on stdout\n"
	       "  --force        plan again even if kiln.yaml did not change\n"
	       "  --fresh        ignore the previous plan: new ids and seeds for every token\n"
	       "  --replace ID   give token ID a different trait set (a rejected token), keeping\n"
	       "                 every quota exact; prints the tokens that changed\n"
	       "  --effort N     search N times longer before giving up (1..1000, default 1);\n"
	       "                 the same spec, seed and effort give the same plan\n"
	       "  -q, --quiet    no summary line\n\n"
	       "exit status: 0 ok, 2 the spec is wrong or infeasible (the message says why).\n");
}

static int report(struct kiln_project *p, int json)
{
	const struct kiln_spec *s = p->spec;
	struct kiln_items items;
	struct kiln_error e;
	uint64_t **targets = NULL;
	json_t *root = NULL, *layers = NULL, *tokens = NULL;
	int rc;
	kiln_error_clear(&e);
	if ((rc = kiln_catalog_items(p->catalog, s, &items, &e)))
		return cli_fail(&e);
	if ((rc = kiln_plan_targets(s, &targets, &e))) {
		kiln_items_release(&items);
		return cli_fail(&e);
	}
	uint64_t gen = kiln_spec_generated(s);
	if (json) {
		root = json_object();
		layers = json_array();
		tokens = json_array();
		json_object_set_new(root, "collection", json_string(s->name));
		json_object_set_new(root, "size", json_integer((json_int_t)s->size));
		json_object_set_new(root, "generated", json_integer((json_int_t)gen));
		json_object_set_new(root, "solvers", json_pack("{s:s, s:s}", "clp",
				    kiln_plan_clp_version(), "cbc", kiln_plan_cbc_version()));
	} else {
		printf("%-16s %-20s %8s %8s %6s %8s\n", "layer", "value", "target", "actual", "diff",
		       "share");
	}
	for (size_t l = 0; l < s->nlayers; l++) {
		const struct kiln_layer *ly = &s->layers[l];
		json_t *vals = json ? json_array() : NULL;
		for (size_t t = 0; t < ly->ntraits; t++) {
			uint64_t actual = 0;
			for (size_t i = 0; i < items.n; i++)
				actual += items.v[i].legendary < 0 && items.v[i].traits[l] == t;
			double share = gen ? 100.0 * (double)actual / (double)gen : 0;
			long long diff = (long long)actual - (long long)targets[l][t];
			if (json)
				json_array_append_new(vals, json_pack("{s:s, s:b, s:I, s:I, s:I, s:f}",
					"value", ly->traits[t].name, "none", ly->traits[t].is_none,
					"target", (json_int_t)targets[l][t], "actual",
					(json_int_t)actual, "diff", (json_int_t)diff, "share", share));
			else
				printf("%-16s %-20s %8llu %8llu %+6lld %7.2f%%\n", t ? "" : ly->name,
				       ly->traits[t].name, (unsigned long long)targets[l][t],
				       (unsigned long long)actual, diff, share);
		}
		if (json)
			json_array_append_new(layers, json_pack("{s:s, s:o}", "layer", ly->name,
								"values", vals));
	}
	if (!json)
		printf("\n%8s %6s %10s  %s\n", "token", "rank", "score", "traits");
	for (size_t i = 0; i < items.n; i++) {
		const struct kiln_item *it = &items.v[i];
		if (json)
			json_array_append_new(tokens, json_pack("{s:I, s:I, s:f}", "id",
				(json_int_t)it->id, "rarity_rank", (json_int_t)it->rarity_rank,
				"rarity_score", it->rarity_score));
		else
			printf("%8llu %6llu %10.6f  %s%s\n", (unsigned long long)it->id,
			       (unsigned long long)it->rarity_rank, it->rarity_score,
			       it->legendary_name ? "legendary: " : "",
			       it->legendary_name ? it->legendary_name : it->traits_json);
	}
	if (json) {
		json_object_set_new(root, "layers", layers);
		json_object_set_new(root, "tokens", tokens);
		json_dumpf(root, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
		fputc('\n', stdout);
		json_decref(root);
	}
	kiln_plan_targets_free(targets, s->nlayers);
	kiln_items_release(&items);
	return 0;
}

int cmd_plan(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"report", no_argument, NULL, 'r'}, {"json", no_argument, NULL, 'j'},
		{"force", no_argument, NULL, 'f'}, {"fresh", no_argument, NULL, 'F'},
		{"replace", required_argument, NULL, 'R'}, {"quiet", no_argument, NULL, 'q'},
		{"effort", required_argument, NULL, 'e'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	int c, want_report = 0, json = 0, force = 0, fresh = 0, quiet = 0, rc;
	unsigned effort = 1;
	const char *replace = NULL;
	struct kiln_project *p = NULL;
	optind = 1;
	while ((c = getopt_long(argc, argv, "q", opts, NULL)) != -1) {
		switch (c) {
		case 'r': want_report = 1; break;
		case 'j': json = 1; break;
		case 'f': force = 1; break;
		case 'F': fresh = 1; break;
		case 'R': replace = optarg; break;
		case 'q': quiet = 1; break;
		case 'e':
			if ((rc = cli_parse_effort("plan", optarg, &effort)))
				return rc;
			break;
		case 'h': help(); return 0;
		default: return cli_usage("plan", "unknown option");
		}
	}
	if (optind < argc)
		return cli_usage("plan", "unexpected argument '%s'", argv[optind]);
	if ((rc = cli_open(cli, &p)))
		return rc;
	if (replace) {
		uint64_t id;
		struct kiln_error e;
		uint64_t changed[64];
		size_t n = 0;
		kiln_error_clear(&e);
		if (cli_parse_u64(replace, 0, KILN_ID_MAX, &id)) {
			rc = cli_usage("plan", "--replace takes a token id, got '%s'", replace);
			goto out;
		}
		if ((rc = cli_stage_plan(p, 0, 0, effort, 0, 1, NULL)))
			goto out;
		if (kiln_project_replace(p, id, changed, 64, &n, &e)) {
			rc = cli_fail(&e);
			goto out;
		}
		if (json) {
			json_t *a = json_array();
			for (size_t i = 0; i < n; i++)
				json_array_append_new(a, json_integer((json_int_t)changed[i]));
			json_t *o = json_pack("{s:I, s:o}", "replaced", (json_int_t)id, "changed", a);
			json_dumpf(o, stdout, JSON_COMPACT);
			fputc('\n', stdout);
			json_decref(o);
		} else {
			printf("plan: token %llu has new traits; tokens changed:", (unsigned long long)id);
			for (size_t i = 0; i < n; i++)
				printf(" %llu", (unsigned long long)changed[i]);
			printf("\n");
		}
		goto out;
	}
	if ((rc = cli_stage_plan(p, force, fresh, effort, json && !want_report,
				  quiet || want_report, NULL)))
		goto out;
	if (want_report)
		rc = report(p, json);
out:
	kiln_project_free(p);
	return rc;
}
