/* kiln status: the collection at a glance. */
#include "cli.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
		json_t *health = v[i].health ? json_loads(v[i].health, 0, NULL) : NULL;
		json_array_append_new(arr, json_pack("{s:s, s:s, s:I, s:I, s:I, s:o, s:f, "
			"s:f, s:f, s:{s:I, s:I, s:f, s:f, s:f, s:f, s:f}, s:o?}",
			"endpoint", v[i].endpoint, "engine", v[i].engine,
			"attempts", (json_int_t)v[i].attempts, "ok", (json_int_t)v[i].ok,
			"failed", (json_int_t)v[i].failed, "errors", errors,
			"busy_seconds", v[i].busy_seconds, "gpu_seconds", v[i].gpu_seconds,
			"spent_usd", v[i].cost_usd, "last_run",
			"ok", (json_int_t)v[i].run_ok, "failed", (json_int_t)v[i].run_failed,
			"seconds", v[i].run_seconds, "images_per_minute", v[i].images_per_minute,
			"latency_mean", v[i].latency_mean, "latency_p95", v[i].latency_p95,
			"spent_usd", v[i].run_cost_usd, "health", health));
	}
	return arr;
}

/* The spec's endpoints that have no attempt in the catalog yet, added to v with zero counts
 * (and their last health answer, when a run probed them), so that status lists every
 * endpoint the next render will use. */
static int add_spec_endpoints(struct kiln_project *p, struct kiln_endpoint_stat **v, size_t *n,
			      struct kiln_error *e)
{
	const struct kiln_generate *g = p->spec->generate;
	for (size_t i = 0; g && i < g->nendpoints; i++) {
		const struct kiln_endpoint *ep = &g->endpoints[i];
		struct kiln_endpoint_stat *nv, *x;
		char key[1200];
		size_t j;
		for (j = 0; j < *n && strcmp((*v)[j].endpoint, ep->url); j++)
			;
		if (j < *n)
			continue;
		if (!(nv = realloc(*v, (*n + 1) * sizeof *nv)))
			return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
		*v = nv;
		x = &nv[(*n)++];
		memset(x, 0, sizeof *x);
		if (!(x->endpoint = strdup(ep->url)) ||
		    !(x->engine = strdup(ep->engine ? ep->engine : p->spec->engine)))
			return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
		snprintf(key, sizeof key, "endpoint_health %s", ep->url);
		if (kiln_catalog_meta_get(p->catalog, key, &x->health, e))
			return e->code;
	}
	return 0;
}

static void endpoints_text(const struct kiln_endpoint_stat *v, size_t n)
{
	int w = 0;
	double run = 0;
	uint64_t attempts = 0;
	for (size_t i = 0; i < n; i++) {
		if ((int)strlen(v[i].endpoint) > w)
			w = (int)strlen(v[i].endpoint);
		if (v[i].run_seconds > run)
			run = v[i].run_seconds;
		attempts += v[i].attempts;
	}
	if (attempts)
		printf("  endpoints  the last run (%.1f s):\n", run);
	else
		printf("  endpoints  none has rendered yet:\n");
	for (size_t i = 0; i < n; i++) {
		if (!v[i].attempts) {
			printf("             %-*s %-7s no attempts yet\n", w, v[i].endpoint,
			       v[i].engine);
			continue;
		}
		printf("             %-*s %-7s %6llu ok %5llu failed %8.1f img/min", w,
		       v[i].endpoint, v[i].engine, (unsigned long long)v[i].run_ok,
		       (unsigned long long)v[i].run_failed, v[i].images_per_minute);
		if (v[i].run_ok)
			printf("  latency mean %.2f s, p95 %.2f s", v[i].latency_mean,
			       v[i].latency_p95);
		putchar('\n');
	}
	for (size_t i = 0; i < n; i++) {
		json_t *h = v[i].health ? json_loads(v[i].health, 0, NULL) : NULL;
		json_t *a = json_object_get(h, "answer"), *jb = json_object_get(a, "jobs");
		json_t *wk = json_object_get(a, "workers");
		double at = json_number_value(json_object_get(h, "at"));
		if (v[i].cost_usd > 0)
			printf("             %-*s spent $%.4f (last run $%.4f), %.1f GPU s "
			       "reported\n", w, v[i].endpoint, v[i].cost_usd, v[i].run_cost_usd,
			       v[i].gpu_seconds);
		if (json_is_object(jb))
			printf("             %-*s health %.0f s ago: %lld in queue, %lld in "
			       "progress; workers %lld running, %lld idle, %lld throttled\n", w,
			       v[i].endpoint, difftime(time(NULL), (time_t)at),
			       (long long)json_integer_value(json_object_get(jb, "inQueue")),
			       (long long)json_integer_value(json_object_get(jb, "inProgress")),
			       (long long)json_integer_value(json_object_get(wk, "running")),
			       (long long)json_integer_value(json_object_get(wk, "idle")),
			       (long long)json_integer_value(json_object_get(wk, "throttled")));
		json_decref(h);
	}
	if (attempts)
		printf("             every run, failed attempts by kind:\n");
	for (size_t i = 0; i < n; i++) {
		uint64_t k[NKINDS];
		int first = 1;
		if (!v[i].attempts)
			continue;
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

static const char *s_(uint64_t n)
{
	return n == 1 ? "" : "s";
}

/* What to run next, and why: the first stage that is not done. Released images QA has not
 * judged, stale verdicts and failures come before "nothing". */
static const char *next_step(int current, const struct kiln_catalog_counts *n,
			     const struct kiln_qa_state *qa, const char *release,
			     const struct kiln_dist_state *rs, char *buf, size_t cap)
{
	uint64_t todo = qa->unchecked_tokens + qa->stale_tokens;
	char ids[96];
	if (!current)
		return "kiln plan";
	if (n->rendered < n->items)
		return "kiln render";
	if (todo) {
		snprintf(buf, cap, "kiln qa (%llu token%s QA has not judged%s%s)",
			 (unsigned long long)todo, s_(todo),
			 release && !rs->inputs_changed ? ", released" : "",
			 qa->stale_tokens && !qa->unchecked_tokens ? ": re-rendered since" : "");
		return buf;
	}
	if (!qa->ran)
		return "kiln qa (QA has not run)";
	if (qa->plan_changed) {
		snprintf(buf, cap, "kiln qa (the plan changed since QA ran%s)",
			 qa->stale_collection ? ": its collection-level errors are about the old "
						"plan" : "");
		return buf;
	}
	if (qa->failed_tokens || qa->collection_errors) {
		char what[200] = "";
		if (qa->failed_tokens) {
			cli_first_ids(ids, sizeof ids, qa->first_failed, qa->failed_tokens);
			snprintf(what, sizeof what, "the %llu token%s that fail%s QA%s%s",
				 (unsigned long long)qa->failed_tokens, s_(qa->failed_tokens),
				 qa->failed_tokens == 1 ? "s" : "", ids,
				 release && !rs->inputs_changed ? ", released" : "");
		}
		if (qa->collection_errors)
			snprintf(what + strlen(what), sizeof what - strlen(what),
				 "%sthe plan's %llu collection-level QA error%s",
				 what[0] ? " and " : "", (unsigned long long)qa->collection_errors,
				 s_(qa->collection_errors));
		snprintf(buf, cap, "fix %s, then `kiln build`; `kiln qa` lists the findings", what);
		return buf;
	}
	if (!release)
		return "kiln release";
	if (rs->changed || rs->missing || rs->extra)
		return "kiln release (writes the damaged dist/ again)";
	if (rs->inputs_changed)
		return "kiln release (dist/ is behind the catalog)";
	return "nothing: every token is checked and released (after changes, `kiln build`)";
}

static void qa_text(const struct kiln_qa_state *qa, const struct kiln_catalog_counts *n)
{
	char ids[96];
	uint64_t judged = n->rendered - (qa->unchecked_tokens + qa->stale_tokens <= n->rendered ?
					 qa->unchecked_tokens + qa->stale_tokens : n->rendered);
	if (!qa->ran) {
		printf("  qa         not run yet: %llu rendered token%s unchecked\n",
		       (unsigned long long)n->rendered, s_(n->rendered));
		return;
	}
	printf("  qa         %llu token%s judged on their current image, %llu failed\n",
	       (unsigned long long)judged, s_(judged), (unsigned long long)qa->failed_tokens);
	if (qa->failed_tokens) {
		cli_first_ids(ids, sizeof ids, qa->first_failed, qa->failed_tokens);
		printf("             %llu token%s failed QA%s\n",
		       (unsigned long long)qa->failed_tokens, s_(qa->failed_tokens), ids);
	}
	if (qa->unchecked_tokens) {
		cli_first_ids(ids, sizeof ids, qa->first_unchecked, qa->unchecked_tokens);
		printf("             %llu token%s unchecked: QA never judged %s image%s\n",
		       (unsigned long long)qa->unchecked_tokens, s_(qa->unchecked_tokens),
		       qa->unchecked_tokens == 1 ? "its" : "their", ids);
	}
	if (qa->stale_tokens) {
		cli_first_ids(ids, sizeof ids, qa->first_stale, qa->stale_tokens);
		printf("             %llu stale verdict%s: re-rendered since QA judged %s%s\n",
		       (unsigned long long)qa->stale_tokens, s_(qa->stale_tokens),
		       qa->stale_tokens == 1 ? "it" : "them", ids);
	}
	if (qa->plan_changed)
		printf("             the plan changed since QA ran: its collection checks have not "
		       "seen this plan\n");
	if (qa->stale_collection)
		printf("             %llu collection-level error%s about an earlier plan (ignored)\n",
		       (unsigned long long)qa->stale_collection, s_(qa->stale_collection));
	printf("             %llu collection-level error%s, %llu error%s in dist/, %llu "
	       "warning%s\n", (unsigned long long)qa->collection_errors, s_(qa->collection_errors),
	       (unsigned long long)qa->dist_errors, s_(qa->dist_errors),
	       (unsigned long long)qa->warnings, s_(qa->warnings));
}

static void release_text(const char *release, const struct kiln_dist_state *rs)
{
	uint64_t bad = rs->changed + rs->missing + rs->extra;
	if (!release)
		printf("  release    not yet\n");
	else if (bad)
		printf("  release    dist/ is damaged: %llu file%s differ%s from the release (%s)\n",
		       (unsigned long long)bad, s_(bad), bad == 1 ? "s" : "", rs->first);
	else if (rs->inputs_changed)
		printf("  release    written, but behind the catalog (images, traits or kiln.yaml "
		       "changed since)\n");
	else
		printf("  release    written (see dist/)\n");
}

static json_t *ids_json(const uint64_t *v, uint64_t n)
{
	json_t *a = json_array();
	for (uint64_t k = 0; a && k < n && k < KILN_QA_FIRST; k++)
		json_array_append_new(a, json_integer((json_int_t)v[k]));
	return a;
}

/* "qa": counts, and the first ids of the failing, unchecked and stale tokens */
static json_t *qa_json(const struct kiln_qa_state *qa)
{
	return json_pack("{s:b, s:b, s:I, s:o, s:I, s:o, s:I, s:o, s:I, s:I, s:I, s:I}",
			 "ran", qa->ran, "plan_changed", qa->plan_changed,
			 "failed_tokens", (json_int_t)qa->failed_tokens, "first_failed",
			 ids_json(qa->first_failed, qa->failed_tokens),
			 "unchecked_tokens", (json_int_t)qa->unchecked_tokens, "first_unchecked",
			 ids_json(qa->first_unchecked, qa->unchecked_tokens),
			 "stale_tokens", (json_int_t)qa->stale_tokens, "first_stale",
			 ids_json(qa->first_stale, qa->stale_tokens),
			 "collection_errors", (json_int_t)qa->collection_errors,
			 "stale_collection_errors", (json_int_t)qa->stale_collection,
			 "dist_errors", (json_int_t)qa->dist_errors,
			 "warnings", (json_int_t)qa->warnings);
}

/* "release": written, behind the catalog, damaged files */
static json_t *release_json(const char *release, const struct kiln_dist_state *rs)
{
	return json_pack("{s:b, s:b, s:b, s:I, s:I, s:I, s:s}", "written", release != NULL,
			 "behind", rs->inputs_changed, "files_recorded", rs->recorded,
			 "changed_files", (json_int_t)rs->changed,
			 "missing_files", (json_int_t)rs->missing,
			 "extra_files", (json_int_t)rs->extra, "first_damage", rs->first);
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
	struct kiln_error e, lerr;
	char lmsg[sizeof lerr.where + sizeof lerr.msg + 4];
	char *release = NULL;
	const char *next;
	char nextbuf[320];
	struct kiln_dist_state rs;
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
	    kiln_catalog_qa_state(p->catalog, &qa, &e) ||
	    kiln_release_dist_state(p, &rs, &e)) {
		rc = cli_fail(&e);
		goto out;
	}
	next = next_step(current, &n, &qa, release, &rs, nextbuf, sizeof nextbuf);
	/* layer files that cannot be used (replaced by a wrong-size or broken file since the
	 * last build): every header read once, as kiln plan does */
	kiln_error_clear(&lerr);
	if (kiln_spec_check_layer_files(p->spec, &lerr)) {
		char *nl = strchr(lerr.msg, '\n');
		if (lerr.code == KILN_E_NOMEM) {
			rc = cli_fail(&lerr);
			goto out;
		}
		if (nl)
			*nl = 0;
		snprintf(lmsg, sizeof lmsg, "%s%s%s", lerr.where, lerr.where[0] ? ": " : "",
			 lerr.msg);
		snprintf(nextbuf, sizeof nextbuf, "fix the layer files named above, then "
			 "`kiln build`");
		next = nextbuf;
	}
	if (kiln_catalog_endpoint_stats(p->catalog, &eps, &neps, &e) ||
	    add_spec_endpoints(p, &eps, &neps, &e)) {
		rc = cli_fail(&e);
		goto out;
	}
	if (json) {
		json_t *o = json_pack("{s:s, s:I, s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, "
				      "s:b, s:s, s:o, s:o, s:o, s:s?}",
			"collection", p->spec->name, "size", (json_int_t)p->spec->size,
			"engine", p->spec->engine, "plan_current", current,
			"items", (json_int_t)n.items, "planned", (json_int_t)n.planned,
			"rendered", (json_int_t)n.rendered, "failed", (json_int_t)n.failed,
			"legendaries", (json_int_t)n.legendaries, "renders", (json_int_t)n.renders,
			"renders_failed", (json_int_t)n.renders_failed,
			"render_seconds", n.render_seconds, "released", release != NULL,
			"next", next, "endpoints", endpoints_json(eps, neps), "qa", qa_json(&qa),
			"release", release_json(release, &rs),
			"layer_files_error", lerr.code ? lmsg : NULL);
		if (o && (rc = cli_review_status(p, o))) {
			json_decref(o);
			goto out;
		}
		json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		fputc('\n', stdout);
		json_decref(o);
	} else {
		printf("%s (%s): %llu tokens, engine %s\n", p->spec->name, p->spec->symbol,
		       (unsigned long long)p->spec->size, p->spec->engine);
		printf("  plan       %s\n", current ? "up to date" : n.items ? "out of date"
									  : "not made yet");
		printf("  items      %llu planned, %llu rendered, %llu failed (%llu legendar%s)\n",
		       (unsigned long long)n.planned, (unsigned long long)n.rendered,
		       (unsigned long long)n.failed, (unsigned long long)n.legendaries,
		       n.legendaries == 1 ? "y" : "ies");
		printf("  renders    %llu attempts, %llu failed, %.1f s rendering in all\n",
		       (unsigned long long)n.renders, (unsigned long long)n.renders_failed,
		       n.render_seconds);
		qa_text(&qa, &n);
		if ((rc = cli_review_status(p, NULL)))
			goto out;
		release_text(release, &rs);
		if (lerr.code)
			printf("  layers     %s\n", lmsg);
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
