/* kiln status: the collection at a glance. */
#include "cli.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
	printf("usage: kiln status [--json]\n\n"
	       "How many items are planned, rendered and failed, whether the plan and dist/ are\n"
	       "up to date, and what to run next.\n");
}

/* AI engines: per-endpoint attempts, failures and throughput, from the renders table. With
 * --json, one more line: {"endpoints": [...]}. */
static int endpoints_section(struct kiln_project *p, int json)
{
	struct kiln_endpoint_stat *v = NULL;
	struct kiln_error e;
	size_t n = 0;
	kiln_error_clear(&e);
	if (kiln_catalog_endpoint_stats(p->catalog, &v, &n, &e))
		return cli_fail(&e);
	if (json && n) {
		json_t *arr = json_array();
		for (size_t i = 0; arr && i < n; i++) {
			double span = v[i].last - v[i].first;
			json_array_append_new(arr, json_pack("{s:s, s:s, s:I, s:I, s:I, s:f, s:f}",
				"endpoint", v[i].endpoint, "engine", v[i].engine,
				"attempts", (json_int_t)v[i].attempts, "ok", (json_int_t)v[i].ok,
				"failed", (json_int_t)v[i].failed, "busy_seconds", v[i].busy_seconds,
				"images_per_minute", span > 0 ? v[i].ok * 60.0 / span : 0.0));
		}
		json_t *o = json_pack("{s:o}", "endpoints", arr);
		json_dumpf(o, stdout, JSON_COMPACT);
		fputc('\n', stdout);
		json_decref(o);
	} else if (n) {
		printf("  endpoints  %-36s %-8s %8s %8s %8s %10s\n", "", "engine", "attempts",
		       "ok", "failed", "img/min");
		for (size_t i = 0; i < n; i++) {
			double span = v[i].last - v[i].first;
			printf("             %-36s %-8s %8llu %8llu %8llu %10.1f\n", v[i].endpoint,
			       v[i].engine, (unsigned long long)v[i].attempts,
			       (unsigned long long)v[i].ok, (unsigned long long)v[i].failed,
			       span > 0 ? v[i].ok * 60.0 / span : 0.0);
		}
	}
	kiln_endpoint_stats_free(v, n);
	return 0;
}

int cmd_status(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	int c, json = 0, rc, current = 0;
	struct kiln_project *p = NULL;
	struct kiln_catalog_counts n;
	struct kiln_error e;
	char *release = NULL;
	const char *next;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = 1; break;
		case 'h': help(); return 0;
		default: return cli_usage("status", "unknown option");
		}
	}
	if (optind < argc)
		return cli_usage("status", "unexpected argument '%s'", argv[optind]);
	if ((rc = cli_open(cli, &p)))
		return rc;
	kiln_error_clear(&e);
	if (kiln_catalog_counts(p->catalog, &n, &e) ||
	    kiln_project_plan_current(p, &current, &e) ||
	    kiln_catalog_meta_get(p->catalog, "release_sha", &release, &e)) {
		rc = cli_fail(&e);
		goto out;
	}
	if (!current)
		next = "kiln plan";
	else if (n.rendered < n.items)
		next = "kiln render";
	else if (!release)
		next = "kiln release";
	else
		next = "nothing: dist/ is written (after changes, `kiln build`)";
	if (json) {
		json_t *o = json_pack("{s:s, s:I, s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, "
				      "s:b, s:s}",
			"collection", p->spec->name, "size", (json_int_t)p->spec->size,
			"engine", p->spec->engine, "plan_current", current,
			"items", (json_int_t)n.items, "planned", (json_int_t)n.planned,
			"rendered", (json_int_t)n.rendered, "failed", (json_int_t)n.failed,
			"legendaries", (json_int_t)n.legendaries, "renders", (json_int_t)n.renders,
			"renders_failed", (json_int_t)n.renders_failed,
			"render_seconds", n.render_seconds, "released", release != NULL,
			"next", next);
		json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		fputc('\n', stdout);
		json_decref(o);
	} else {
		printf("%s (%s): %llu tokens, engine %s\n", p->spec->name, p->spec->symbol,
		       (unsigned long long)p->spec->size, p->spec->engine);
		printf("  plan       %s\n", current ? "up to date" : n.items ? "out of date"
									  : "not made yet");
		printf("  items      %llu planned, %llu rendered, %llu failed (%llu legendaries)\n",
		       (unsigned long long)n.planned, (unsigned long long)n.rendered,
		       (unsigned long long)n.failed, (unsigned long long)n.legendaries);
		printf("  renders    %llu attempts, %llu failed, %.1f s rendering in all\n",
		       (unsigned long long)n.renders, (unsigned long long)n.renders_failed,
		       n.render_seconds);
		printf("  release    %s\n", release ? "written (see dist/)" : "not yet");
		printf("  next       %s\n", next);
	}
	rc = endpoints_section(p, json);
out:
	free(release);
	kiln_project_free(p);
	return rc;
}
