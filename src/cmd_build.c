/* kiln build: every stage that is out of date, in order: plan, render, qa, release. QA is the
 * gate between render and release: an error-level finding on the catalog's images or plan
 * stops the build before release (exit 1, naming the check and the token), unless kiln.yaml
 * says qa: {gate: false} (QA then reports but does not block) or --no-qa skips it. */
#include "cli.h"
#include "kiln/review.h"
#include "kiln/qa.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
	printf("usage: kiln build [--threads N] [--no-qa] [--effort N] [--allow-unreviewed]\n"
	       "                  [--json] [-q]\n\n"
	       "Runs plan (if kiln.yaml changed), render (items whose recipe changed), polish\n"
	       "(kiln.yaml's polish: steps not made yet), qa (every image, the plan, the previous\n"
	       "release's outputs) and release (if anything changed), like make. Run twice,\n"
	       "the second run renders and releases nothing and says so. Safe to interrupt\n"
	       "(even kill -9) and run again.\n\n"
	       "  --threads N   render and qa worker threads (default: one per core)\n"
	       "  --no-qa       skip QA, and release whatever earlier QA runs said\n"
	       "  --effort N    the planner searches N times longer before giving up (1..1000)\n"
	       "  --allow-unreviewed  release although review.required and tokens are not\n"
	       "                approved (recorded as a review_override event)\n"
	       "  --json        JSON lines on stdout (progress events and a summary per stage)\n"
	       "  -q, --quiet   no progress or summaries\n\n"
	       "A QA error stops the build before release; qa: {gate: false} in kiln.yaml makes\n"
	       "QA report without blocking.\n"
	       "exit status: 0 ok, 1 items failed to render or QA failed (release is then\n"
	       "skipped), 2 bad spec.\n");
}

static void print_json(json_t *o)
{
	if (!o)
		return;
	json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	fflush(stdout);
	json_decref(o);
}

/* The token (or "the collection") an error is about, for messages. */
static void about(const struct kiln_finding *x, char *out, size_t cap)
{
	if (x->has_item)
		snprintf(out, cap, "token %llu%s%s%s", (unsigned long long)x->item,
			 x->file && *x->file ? " (" : "", x->file ? x->file : "",
			 x->file && *x->file ? ")" : "");
	else
		snprintf(out, cap, "the collection%s%s%s", x->file && *x->file ? " (" : "",
			 x->file ? x->file : "", x->file && *x->file ? ")" : "");
}

/* Run QA; *blocked = 1 when its gate stops the release. Findings on dist/ (the previous
 * release, which this build's release rewrites) never block. */
static int stage_qa(struct kiln_project *p, unsigned threads, int json, int quiet, int *blocked)
{
	struct kiln_qa_run_opts o;
	struct kiln_qa_result r;
	struct kiln_error e;
	struct cli_progress cp;
	size_t errors = 0, shown = 0;
	int gate = p->spec->qa.gate;
	*blocked = 0;
	kiln_error_clear(&e);
	kiln_qa_run_opts_init(&o);
	cli_progress_init(&cp, json, quiet);
	o.threads = threads;
	o.progress = json ? NULL : cli_progress_cb;
	o.user = &cp;
	if (kiln_project_qa(p, &o, &r, &e)) {
		if (json)
			cli_error_event("qa", &e);
		return cli_fail(&e);
	}
	for (size_t i = 0; i < r.ncatalog; i++)
		errors += r.findings.v[i].severity == KILN_SEV_ERROR;
	if (json)
		print_json(json_pack("{s:s, s:s, s:I, s:I, s:I, s:b, s:b}", "event", "summary",
				     "stage", "qa", "images", (json_int_t)r.checked, "errors",
				     (json_int_t)kiln_findings_count(&r.findings, KILN_SEV_ERROR),
				     "warnings",
				     (json_int_t)kiln_findings_count(&r.findings, KILN_SEV_WARNING),
				     "gate", gate, "passed", errors == 0));
	else if (!quiet)
		printf("qa: %zu images checked, %zu errors, %zu warnings: %s\n", r.checked,
		       kiln_findings_count(&r.findings, KILN_SEV_ERROR),
		       kiln_findings_count(&r.findings, KILN_SEV_WARNING),
		       errors ? (gate ? "FAILED" : "FAILED (qa.gate is false: not blocking)")
			      : "passed");
	if (errors && gate) {
		*blocked = 1;
		for (size_t i = 0; i < r.ncatalog; i++) {
			const struct kiln_finding *x = &r.findings.v[i];
			char who[256];
			if (x->severity != KILN_SEV_ERROR)
				continue;
			if (shown++ == 10) {
				fprintf(stderr, "kiln build: ... and %zu more QA errors (`kiln qa` "
					"lists them)\n", errors - 10);
				break;
			}
			about(x, who, sizeof who);
			fprintf(stderr, "kiln build: qa check %s failed for %s: %s\n", x->check, who,
				x->message);
			if (json)
				print_json(json_pack("{s:s, s:s, s:s, s:b, s:I, s:s, s:s}", "event",
						     "finding", "stage", "qa", "check", x->check,
						     "has_item", x->has_item, "item",
						     (json_int_t)x->item, "file", x->file ? x->file : "",
						     "message", x->message));
		}
		fprintf(stderr, "kiln build: QA failed (%zu errors): release was not run\n", errors);
		fprintf(stderr, "hint: fix the tokens and run `kiln build` again; `qa: {gate: false}` "
			"in kiln.yaml or `kiln build --no-qa` releases anyway\n");
	}
	kiln_qa_result_release(&r);
	return 0;
}

int cmd_build(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"threads", required_argument, NULL, 't'}, {"json", no_argument, NULL, 'j'},
		{"quiet", no_argument, NULL, 'q'}, {"no-qa", no_argument, NULL, 'Q'},
		{"effort", required_argument, NULL, 'e'}, {"help", no_argument, NULL, 'h'},
		{"allow-unreviewed", no_argument, NULL, 'U'}, {NULL, 0, NULL, 0}};
	int c, json = 0, quiet = 0, rc, planned = 0, rendered = 0, failed = 0, released = 0;
	int no_qa = 0, blocked = 0, allow_unreviewed = 0, polished = 0;
	unsigned threads = 0, effort = 1;
	struct kiln_project *p = NULL;
	optind = 1;
	while ((c = getopt_long(argc, argv, "q", opts, NULL)) != -1) {
		switch (c) {
		case 't': {
			char *end;
			long n = strtol(optarg, &end, 10);
			if (!*optarg || *end || n < 1 || n > 1024)
				return cli_usage("build", "--threads takes a number from 1 to 1024");
			threads = (unsigned)n;
			break;
		}
		case 'j': json = 1; break;
		case 'q': quiet = 1; break;
		case 'Q': no_qa = 1; break;
		case 'U': allow_unreviewed = 1; break;
		case 'e':
			if ((rc = cli_parse_effort("build", optarg, &effort)))
				return rc;
			break;
		case 'h': help(); return 0;
		default: return cli_usage("build", "unknown option");
		}
	}
	if (optind < argc)
		return cli_usage("build", "unexpected argument '%s'", argv[optind]);
	if ((rc = cli_open(cli, &p)))
		return rc;
	cli_catch_signals();
	if ((rc = cli_stage_plan(p, 0, 0, effort, json, quiet, &planned)))
		goto out;
	if ((rc = cli_stage_render(p, threads, 0, json, quiet, &rendered, &failed)))
		goto out;
	/* polish after render, so QA judges (and release ships) the polished images */
	if ((p->spec->npolish || cli_inpaint_pending(p)) &&
	    (rc = cli_stage_polish(p, threads, NULL, 0, json, quiet, &polished)))
		goto out;
	if (!no_qa && (rc = stage_qa(p, threads, json, quiet, &blocked)))
		goto out;
	if (blocked) {
		rc = 1;
		goto out;
	}
	/* review.required: every token approved (lib/review; the release module is below it) */
	{
		struct kiln_error e;
		kiln_error_clear(&e);
		if (kiln_review_gate(p, allow_unreviewed, NULL, &e)) {
			if (json)
				cli_error_event("release", &e);
			rc = cli_fail(&e);
			goto out;
		}
	}
	/* --no-qa, qa.gate: false: the QA verdicts are recorded but do not block this release */
	if ((rc = cli_stage_release(p, 0, no_qa || !p->spec->qa.gate, json, quiet, &released)))
		goto out;
	if (!json && !quiet && !planned && !rendered && !polished && !released)
		printf("build: nothing to do, everything is up to date\n");
out:
	kiln_project_free(p);
	return rc;
}
