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
	       "up to date, and what to run next. With AI engines, per endpoint: the last run's\n"
	       "accepted images, images per minute and latency (mean, p95), and every run's\n"
	       "failed attempts by kind (timeout, connection, HTTP 5xx, HTTP 4xx, bad image,\n"
	       "job failed, other).\n\n"
	       "  --json   one JSON object (endpoints under \"endpoints\")\n");
}

/* AI engines: per endpoint, the last run's throughput and latency, and every run's attempts
 * and failures by kind, from the catalog's renders. */
static const char *const kinds[] = {"timeout", "connection", "http_5xx", "http_4xx",
				    "bad_image", "job_failed", "other"};
static const char *const kind_words[] = {"timeout", "connection", "HTTP 5xx", "HTTP 4xx",
					 "bad image", "job failed", "other"};
#define NKINDS (sizeof kinds / sizeof kinds[0])

static void kind_counts(const struct kiln_endpoint_stat *x, uint64_t out[NKINDS])
{
	const uint64_t v[NKINDS] = {x->timeout, x->connection, x->http_5xx, x->http_4xx,
				    x->bad_image, x->job_failed, x->other};
	memcpy(out, v, sizeof v);
}

static json_t *endpoints_json(const struct kiln_endpoint_stat *v, size_t n)
{
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < n; i++) {
		json_t *errors = json_object();
		uint64_t k[NKINDS];
		kind_counts(&v[i], k);
		for (size_t j = 0; errors && j < NKINDS; j++)
			json_object_set_new(errors, kinds[j], json_integer((json_int_t)k[j]));
		json_array_append_new(arr, json_pack("{s:s, s:s, s:I, s:I, s:I, s:o, s:f, "
			"s:{s:I, s:I, s:f, s:f, s:f, s:f}}",
			"endpoint", v[i].endpoint, "engine", v[i].engine,
			"attempts", (json_int_t)v[i].attempts, "ok", (json_int_t)v[i].ok,
			"failed", (json_int_t)v[i].failed, "errors", errors,
			"busy_seconds", v[i].busy_seconds, "last_run",
			"ok", (json_int_t)v[i].run_ok, "failed", (json_int_t)v[i].run_failed,
			"seconds", v[i].run_seconds, "images_per_minute", v[i].images_per_minute,
			"latency_mean", v[i].latency_mean, "latency_p95", v[i].latency_p95));
	}
	return arr;
}

static void endpoints_text(const struct kiln_endpoint_stat *v, size_t n)
{
	int w = 0;
	for (size_t i = 0; i < n; i++)
		if ((int)strlen(v[i].endpoint) > w)
			w = (int)strlen(v[i].endpoint);
	printf("  endpoints  the last run (%.1f s):\n", v[0].run_seconds);
	for (size_t i = 0; i < n; i++) {
		printf("             %-*s %-7s %6llu ok %5llu failed %8.1f img/min", w,
		       v[i].endpoint, v[i].engine, (unsigned long long)v[i].run_ok,
		       (unsigned long long)v[i].run_failed, v[i].images_per_minute);
		if (v[i].run_ok)
			printf("  latency mean %.2f s, p95 %.2f s", v[i].latency_mean,
			       v[i].latency_p95);
		putchar('\n');
	}
	printf("             every run, failed attempts by kind:\n");
	for (size_t i = 0; i < n; i++) {
		uint64_t k[NKINDS];
		int first = 1;
		kind_counts(&v[i], k);
		printf("             %-*s %llu of %llu attempts failed", w, v[i].endpoint,
		       (unsigned long long)v[i].failed, (unsigned long long)v[i].attempts);
		for (size_t j = 0; j < NKINDS; j++)
			if (k[j]) {
				printf("%s%llu %s", first ? ": " : ", ", (unsigned long long)k[j],
				       kind_words[j]);
				first = 0;
			}
		putchar('\n');
	}
}

int cmd_status(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	int c, json = 0, rc, current = 0;
	struct kiln_project *p = NULL;
	struct kiln_catalog_counts n;
	struct kiln_qa_state qa;
	struct kiln_error e;
	char *release = NULL;
	const char *next;
	struct kiln_endpoint_stat *eps = NULL;
	size_t neps = 0;
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
	    kiln_catalog_meta_get(p->catalog, "release_sha", &release, &e) ||
	    kiln_catalog_qa_state(p->catalog, &qa, &e)) {
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
	if (kiln_catalog_endpoint_stats(p->catalog, &eps, &neps, &e)) {
		rc = cli_fail(&e);
		goto out;
	}
	if (json) {
		json_t *o = json_pack("{s:s, s:I, s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, "
				      "s:b, s:s, s:o, s:{s:b, s:I, s:I, s:I, s:I, s:I}}",
			"collection", p->spec->name, "size", (json_int_t)p->spec->size,
			"engine", p->spec->engine, "plan_current", current,
			"items", (json_int_t)n.items, "planned", (json_int_t)n.planned,
			"rendered", (json_int_t)n.rendered, "failed", (json_int_t)n.failed,
			"legendaries", (json_int_t)n.legendaries, "renders", (json_int_t)n.renders,
			"renders_failed", (json_int_t)n.renders_failed,
			"render_seconds", n.render_seconds, "released", release != NULL,
			"next", next, "endpoints", endpoints_json(eps, neps),
			"qa", "ran", qa.ran, "failed_tokens", (json_int_t)qa.failed_tokens,
			"stale_tokens", (json_int_t)qa.stale_tokens,
			"collection_errors", (json_int_t)qa.collection_errors,
			"dist_errors", (json_int_t)qa.dist_errors, "warnings", (json_int_t)qa.warnings);
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
		if (!qa.ran)
			printf("  qa         not run yet\n");
		else
			printf("  qa         %llu token%s failed, %llu collection-level error(s), "
			       "%llu stale verdict(s) (image changed since; run `kiln qa`), %llu "
			       "error(s) in dist/, %llu warning(s)\n",
			       (unsigned long long)qa.failed_tokens, qa.failed_tokens == 1 ? "" : "s",
			       (unsigned long long)qa.collection_errors,
			       (unsigned long long)qa.stale_tokens, (unsigned long long)qa.dist_errors,
			       (unsigned long long)qa.warnings);
		printf("  release    %s\n", release ? "written (see dist/)" : "not yet");
		printf("  next       %s\n", next);
		if (neps)
			endpoints_text(eps, neps);
	}
out:
	kiln_endpoint_stats_free(eps, neps);
	free(release);
	kiln_project_free(p);
	return rc;
}
