/* kiln show ID: everything the catalog knows about one item. */
#include "cli.h"
#include "kiln/polish.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
	printf("usage: kiln show [--json] ID\n\n"
	       "One item: traits, seed, status, the accepted image, rarity, the last error,\n"
	       "and every render attempt.\n");
}

/* The review app's inpaint requests of item id: printed, or (o) as "inpaint_requests". */
static int show_requests(struct kiln_project *p, uint64_t id, json_t *o)
{
	struct kiln_inpaint_requests l;
	struct kiln_error e;
	json_t *a = o ? json_array() : NULL;
	kiln_error_clear(&e);
	if (kiln_catalog_inpaint_list(p->catalog, &id, NULL, &l, &e)) {
		json_decref(a);
		return cli_fail(&e);
	}
	for (size_t i = 0; i < l.n; i++) {
		const struct kiln_inpaint_request *q = &l.v[i];
		if (a)
			json_array_append_new(a, json_pack("{s:I, s:s, s:s, s:s, s:s, s:f, s:s, "
				"s:s?, s:s?, s:s?}", "request", (json_int_t)q->id, "at", q->at,
				"reviewer", q->reviewer, "mask", q->mask, "prompt", q->prompt,
				"denoise", q->denoise, "status", q->status, "error", q->error,
				"input", q->input[0] ? q->input : NULL, "output",
				q->output[0] ? q->output : NULL));
		else
			printf("  %-10s #%llu %s by %s at %s: \"%s\" (denoise %.2f, mask %.12s...)"
			       "%s%s%s%.12s%s\n", i ? "" : "inpaint", (unsigned long long)q->id,
			       q->status, q->reviewer, q->at, q->prompt, q->denoise, q->mask,
			       q->error ? ": " : "", q->error ? q->error : "",
			       q->output[0] ? " -> " : "", q->output, q->output[0] ? "..." : "");
	}
	if (o)
		json_object_set_new(o, "inpaint_requests", a ? a : json_array());
	kiln_inpaint_requests_release(&l);
	return 0;
}

int cmd_show(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	int c, json = 0, rc;
	struct kiln_project *p = NULL;
	struct kiln_items items;
	struct kiln_error e;
	char *renders = NULL, *qa = NULL, *chain = NULL;
	uint64_t id;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = 1; break;
		case 'h': help(); return 0;
		default: return cli_usage("show", "unknown option");
		}
	}
	if (optind + 1 != argc)
		return cli_usage("show", "give one item id");
	if (cli_parse_u64(argv[optind], 0, KILN_ID_MAX, &id))
		return cli_usage("show", "'%s' is not an item id (a whole number from 0 to %llu)",
				 argv[optind], (unsigned long long)KILN_ID_MAX);
	if ((rc = cli_open(cli, &p)))
		return rc;
	kiln_error_clear(&e);
	memset(&items, 0, sizeof items);
	if (kiln_catalog_item(p->catalog, p->spec, id, &items, &e) ||
	    kiln_catalog_item_renders_json(p->catalog, id, &renders, &e) ||
	    kiln_catalog_qa_item_json(p->catalog, id, &qa, &e) ||
	    kiln_polish_chain_json(p, id, &chain, &e)) {
		rc = cli_fail(&e);
		goto out;
	}
	if (!items.n) {
		fprintf(stderr, "kiln: item %llu: no such item (ids run from %llu to %llu; run "
			"`kiln plan` if the catalog is empty)\n", (unsigned long long)id,
			(unsigned long long)p->spec->start_id,
			(unsigned long long)(p->spec->start_id + p->spec->size - 1));
		rc = 1;
		goto out;
	}
	const struct kiln_item *it = &items.v[0];
	const char *status = it->status == KILN_ITEM_RENDERED ? "rendered"
			   : it->status == KILN_ITEM_FAILED ? "failed" : "planned";
	char *path = it->image[0] ? kiln_store_path(p->store, it->image) : NULL;
	char *name = kiln_token_name(p->spec, it->id);
	if (json) {
		json_t *o = json_pack("{s:I, s:s?, s:s?, s:o, s:I, s:s, s:s?, s:s?, s:s?, s:I, s:f, "
				      "s:s?, s:o, s:o}",
			"id", (json_int_t)it->id, "name", name, "legendary", it->legendary_name,
			"traits", json_loads(it->traits_json, 0, NULL),
			"seed", (json_int_t)it->seed, "status", status,
			"image", it->image[0] ? it->image : NULL, "path", path,
			"recipe", it->recipe[0] ? it->recipe : NULL,
			"rarity_rank", (json_int_t)it->rarity_rank, "rarity_score", it->rarity_score,
			"error", it->error, "renders", json_loads(renders, 0, NULL),
			"qa", json_loads(qa, 0, NULL));
		if (o && (rc = cli_review_show(p, it->id, o))) {
			json_decref(o);
			goto done;
		}
		json_object_set_new(o, "polish", json_loads(chain, 0, NULL));
		if (o && (rc = show_requests(p, it->id, o))) {
			json_decref(o);
			goto done;
		}
		json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		fputc('\n', stdout);
		json_decref(o);
	} else {
		json_t *tr = json_loads(it->traits_json, 0, NULL), *rs = json_loads(renders, 0, NULL);
		const char *k;
		json_t *v;
		size_t i;
		printf("item %llu  %s\n", (unsigned long long)it->id, name ? name : "");
		if (it->legendary_name)
			printf("  legendary  %s\n", it->legendary_name);
		json_object_foreach(tr, k, v)
			printf("  %-16s %s\n", k, json_string_value(v));
		printf("  seed       %llu\n  status     %s\n", (unsigned long long)it->seed, status);
		printf("  rarity     rank %llu, score %.6f\n", (unsigned long long)it->rarity_rank,
		       it->rarity_score);
		if (path)
			printf("  image      %s\n", path);
		if (it->error)
			printf("  error      %s\n", it->error);
		printf("  renders    %zu\n", json_array_size(rs));
		json_array_foreach(rs, i, v) {
			const char *err = json_string_value(json_object_get(v, "error"));
			printf("    #%lld %s %s %.3fs%s%s\n",
			       (long long)json_integer_value(json_object_get(v, "attempt")),
			       json_string_value(json_object_get(v, "engine")),
			       json_string_value(json_object_get(v, "status")),
			       json_real_value(json_object_get(v, "seconds")), err ? "  " : "",
			       err ? err : "");
			/* what the AI server said it used (model and hash, LoRAs, ControlNet) */
			json_t *ran = json_object_get(v, "ran");
			if (json_is_object(ran)) {
				char *t = json_dumps(ran, JSON_COMPACT | JSON_PRESERVE_ORDER);
				if (t)
					printf("       ran %s\n", t);
				free(t);
			}
		}
		/* the last `kiln qa` on this token: a verdict on an image since replaced is stale */
		json_t *qs = json_loads(qa, 0, NULL);
		json_array_foreach(qs, i, v)
			printf("  %-10s %s %s %s%s: %s\n", i ? "" : "qa",
			       json_string_value(json_object_get(v, "severity")),
			       json_string_value(json_object_get(v, "check")),
			       json_string_value(json_object_get(v, "file")),
			       json_is_true(json_object_get(v, "current")) ? "" : " (stale: the image "
			       "changed since; run `kiln qa`)",
			       json_string_value(json_object_get(v, "message")));
		if (!json_array_size(qs))
			printf("  qa         no findings in the last `kiln qa`\n");
		/* the polish chain: render -> steps -> edits, each with its input and output */
		json_t *pc = json_loads(chain, 0, NULL), *ps = json_object_get(pc, "steps");
		if (json_array_size(ps)) {
			const char *fin = json_string_value(json_object_get(pc, "final"));
			printf("  polish     %zu steps, final image %.12s...%s\n", json_array_size(ps),
			       fin ? fin : "", json_is_true(json_object_get(pc, "current")) ? "" :
			       " (stale: made on an earlier render; run `kiln polish`)");
		}
		json_array_foreach(ps, i, v) {
			const char *tool = json_string_value(json_object_get(v, "tool"));
			const char *note = json_string_value(json_object_get(v, "note"));
			char *set = json_dumps(json_object_get(v, "settings"), JSON_COMPACT);
			printf("    #%lld %s %s by %s%s%s%s: %.12s... -> %.12s...%s%s%s\n",
			       (long long)json_integer_value(json_object_get(v, "step")),
			       json_string_value(json_object_get(v, "kind")), set ? set : "",
			       json_string_value(json_object_get(v, "by")), tool ? " (" : "",
			       tool ? tool : "", tool ? ")" : "",
			       json_string_value(json_object_get(v, "input")),
			       json_string_value(json_object_get(v, "output")),
			       json_is_true(json_object_get(v, "image")) ? "" : " (extra file)",
			       note ? "  " : "", note ? note : "");
			free(set);
		}
		json_decref(pc);
		json_decref(qs);
		if (!(rc = show_requests(p, it->id, NULL)))
			rc = cli_review_show(p, it->id, NULL);
		json_decref(tr);
		json_decref(rs);
	}
done:
	free(path);
	free(name);
out:
	free(renders);
	free(qa);
	free(chain);
	kiln_items_release(&items);
	kiln_project_free(p);
	return rc;
}
