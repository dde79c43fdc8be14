/* kiln polish: the polish stage (the spec's polish: steps on every rendered token), and an
 * artist's side of it: export a token's image, import an edit, drop the edits. */
#include "cli.h"

#include "kiln/polish.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
	printf("usage: kiln polish [-j N] [--json] [-q] [ID...]\n"
	       "       kiln polish export ID [--to DIR]\n"
	       "       kiln polish import ID FILE --by NAME [--note TEXT] [--tool TEXT]\n"
	       "       kiln polish reset ID\n"
	       "       kiln polish inpaint ID --mask MASK.png --prompt TEXT [--negative TEXT]\n"
	       "                           [--denoise 0.5] [--json]\n"
	       "       kiln polish inpaint --pending [ID] [--json]\n\n"
	       "Runs kiln.yaml's polish: steps (upscale, vectorize, overlay) on every rendered\n"
	       "token, or on the ids given. A step is made only when its recipe (settings and\n"
	       "input image) is new; every step is recorded with its input and output SHA-256\n"
	       "(`kiln show ID` prints the chain). Safe to interrupt (even kill -9) and run again.\n\n"
	       "  -j, --threads N  worker threads (default: one per core)\n"
	       "  --json           JSON lines on stdout: an event per token, then a summary\n"
	       "  -q, --quiet      no progress or summary\n\n"
	       "export   copies the token's current image (ID.png; ID.svg too when image.format\n"
	       "         is svg) and its other candidates into DIR (default: ./polish-export)\n"
	       "import   makes FILE (a PNG of the exported image's size) the token's image, as an\n"
	       "         edit by NAME; the steps after it (a vectorize) are made again from it\n"
	       "reset    drops the token's imported edits and inpaints\n"
	       "inpaint  repaints the token's current image where MASK.png (that image's size)\n"
	       "         is white, by the AI endpoints (A1111 img2img, ComfyUI inpaint): the\n"
	       "         result is a polish step and the token's image; the polish: steps after\n"
	       "         it are made again on it; a reviewed token is pending review again;\n"
	       "         --denoise 0..1 (0.5); --pending runs only the review app's inpaint\n"
	       "         requests (a brush drawn over the loupe), as `kiln polish` and `kiln build`\n"
	       "         do after the polish: steps, marking each done or failed\n\n"
	       "exit status: 0 ok, 1 some tokens failed, 2 bad usage or spec.\n");
}

static int parse_id(const char *verb, const char *arg, uint64_t *id)
{
	if (!arg)
		return cli_usage(verb, "needs a token id (see `kiln ls`)");
	if (cli_parse_u64(arg, 0, KILN_ID_MAX, id))
		return cli_usage(verb, "takes a token id (see `kiln ls`), got '%s'", arg);
	return 0;
}

/* id in ids[nids] (none given: every id) */
static int wanted(const uint64_t *ids, size_t nids, uint64_t id)
{
	for (size_t i = 0; i < nids; i++)
		if (ids[i] == id)
			return 1;
	return !nids;
}

int cli_inpaint_pending(struct kiln_project *p)
{
	struct kiln_inpaint_requests l;
	struct kiln_error e;
	size_t n;
	kiln_error_clear(&e);
	if (kiln_catalog_inpaint_list(p->catalog, NULL, "pending", &l, &e))
		return 1; /* the stage that reads them says why */
	n = l.n;
	kiln_inpaint_requests_release(&l);
	return n > 0;
}

/* The review app's pending inpaint requests (of ids, or all) run in order: 0, 1 when one
 * failed (each failure printed, the rest still run), or the exit of an error that stops. */
static int run_requests(struct kiln_project *p, const uint64_t *ids, size_t nids, int json,
			int quiet, int *did)
{
	struct kiln_inpaint_requests l;
	struct kiln_error e;
	size_t done = 0, failed = 0;
	int rc;
	kiln_error_clear(&e);
	if (kiln_catalog_inpaint_list(p->catalog, NULL, "pending", &l, &e))
		return cli_fail(&e);
	for (size_t i = 0; i < l.n && !cli_cancel; i++) {
		struct kiln_polish_inpaint_result res;
		const struct kiln_inpaint_request *q = &l.v[i];
		if (!wanted(ids, nids, q->item_id))
			continue;
		kiln_error_clear(&e);
		rc = kiln_polish_run_request(p, q, &cli_cancel, &res, &e);
		if (rc && (cli_cancel || e.code == KILN_E_NOMEM || e.code == KILN_E_DB)) {
			kiln_inpaint_requests_release(&l);
			return cli_fail(&e);
		}
		if (json) {
			json_t *o = json_pack("{s:s, s:I, s:I, s:s, s:s?, s:s?, s:s?}", "event",
					      "inpaint_request", "request", (json_int_t)q->id, "id",
					      (json_int_t)q->item_id, "status",
					      rc ? "failed" : "done",
					      "input", !rc ? res.input : NULL, "image",
					      !rc ? res.image : NULL, "error", rc ? e.msg : NULL);
			char *t = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
			if (t)
				printf("%s\n", t);
			free(t);
			json_decref(o);
		}
		if (rc) {
			failed++;
			fprintf(stderr, "kiln: inpaint request %llu (item %llu, by %s) failed: "
				"%s: %s\n", (unsigned long long)q->id,
				(unsigned long long)q->item_id, q->reviewer, e.where, e.msg);
		} else {
			done++;
			if (!json && !quiet)
				printf("polish: item %llu: inpaint request %llu by %s done: "
				       "%.12s... into %.12s...\n", (unsigned long long)q->item_id,
				       (unsigned long long)q->id, q->reviewer, res.input,
				       res.image);
		}
	}
	kiln_inpaint_requests_release(&l);
	if (did && done)
		*did = 1;
	if (failed) {
		fprintf(stderr, "kiln: %zu inpaint requests failed (kept as failed with their "
			"error; `kiln show ID` lists them)\n", failed);
		return 1;
	}
	return 0;
}

int cli_stage_polish(struct kiln_project *p, unsigned threads, const uint64_t *ids, size_t nids,
		     int json, int quiet, int *did)
{
	struct cli_progress cp;
	struct kiln_polish_opts o;
	struct kiln_polish_result r;
	struct kiln_error e;
	int rc, reqs = 0;
	kiln_error_clear(&e);
	if ((rc = cli_resolve_secrets(p))) /* engine steps call the AI endpoints */
		return rc;
	cli_progress_init(&cp, json, quiet);
	memset(&o, 0, sizeof o);
	o.threads = threads;
	o.ids = ids;
	o.nids = nids;
	o.progress = cli_progress_cb;
	o.user = &cp;
	o.cancel = &cli_cancel;
	rc = kiln_project_polish(p, &o, &r, &e);
	if (did)
		*did = r.polished > 0;
	if (json) {
		json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:f}", "event",
				      "summary", "stage", "polish", "tokens", (json_int_t)r.tokens,
				      "polished", (json_int_t)r.polished, "steps",
				      (json_int_t)r.steps, "skipped", (json_int_t)r.skipped,
				      "failed", (json_int_t)r.failed, "unrendered",
				      (json_int_t)r.unrendered, "seconds", r.seconds);
		if (j) {
			json_dumpf(j, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
			fputc('\n', stdout);
			fflush(stdout);
			json_decref(j);
		}
	}
	if (rc)
		return cli_fail(&e);
	/* the review app's inpaint requests, on the images the walk left */
	{
		int rrc = run_requests(p, ids, nids, json, quiet, &reqs);
		if (rrc && rrc != 1)
			return rrc;
		if (rrc && !r.failed)
			return 1;
		if (did && reqs)
			*did = 1;
	}
	if (!json && !quiet && (p->spec->npolish || r.polished || !reqs)) {
		if (!p->spec->npolish && !r.polished)
			printf("polish: no polish steps in kiln.yaml\n");
		else if (!r.polished && !r.failed)
			printf("polish: nothing to do, all %llu tokens up to date\n",
			       (unsigned long long)r.tokens);
		else
			printf("polish: %llu tokens polished (%llu steps made), %llu failed, %llu up "
			       "to date in %.2f s\n", (unsigned long long)r.polished,
			       (unsigned long long)r.steps, (unsigned long long)r.failed,
			       (unsigned long long)r.skipped, r.seconds);
	}
	if (r.failed) {
		fprintf(stderr, "kiln: %llu tokens failed to polish (the errors above say why)\n",
			(unsigned long long)r.failed);
		if (r.stale_edits)
			fprintf(stderr, "hint: for an edit made on an older image, `kiln polish export "
				"ID` gives the token's current image to edit again (then `kiln polish "
				"import`), or `kiln polish reset ID` drops its edits\n");
		return 1;
	}
	return 0;
}

static int do_export(struct kiln_project *p, int argc, char **argv)
{
	static const struct option opts[] = {{"to", required_argument, NULL, 't'},
					     {NULL, 0, NULL, 0}};
	const char *to = "polish-export", *ida = NULL;
	struct kiln_buf names = KILN_BUF_INIT;
	struct kiln_error e;
	uint64_t id;
	char *dir;
	int c, rc;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 't')
			return cli_usage("polish", "unknown option");
		to = optarg;
	}
	if (optind < argc)
		ida = argv[optind++];
	if (optind < argc)
		return cli_usage("polish", "export: unexpected argument '%s'", argv[optind]);
	if ((rc = parse_id("polish", ida, &id)))
		return rc;
	/* DIR as typed: relative to the current folder */
	if (!(dir = strdup(to)))
		return 1;
	kiln_error_clear(&e);
	if ((rc = kiln_polish_export(p, id, dir, &names, &e))) {
		free(dir);
		kiln_buf_release(&names);
		return cli_fail(&e);
	}
	printf("polish: exported to %s:\n%.*s", dir, (int)names.len, names.data ? names.data : "");
	free(dir);
	kiln_buf_release(&names);
	return 0;
}

static int do_inpaint(struct kiln_project *p, int argc, char **argv)
{
	static const struct option opts[] = {{"mask", required_argument, NULL, 'm'},
					     {"prompt", required_argument, NULL, 'p'},
					     {"negative", required_argument, NULL, 'n'},
					     {"denoise", required_argument, NULL, 'd'},
					     {"json", no_argument, NULL, 'J'},
					     {"pending", no_argument, NULL, 'P'},
					     {NULL, 0, NULL, 0}};
	struct kiln_polish_inpaint in;
	struct kiln_polish_inpaint_result res;
	struct kiln_error e;
	int c, rc, json = 0, pending = 0;
	char *end;
	memset(&in, 0, sizeof in);
	in.denoise = 0.5;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'm': in.mask = optarg; break;
		case 'p': in.prompt = optarg; break;
		case 'n': in.negative = optarg; break;
		case 'd':
			in.denoise = strtod(optarg, &end);
			if (end == optarg || *end || !(in.denoise > 0 && in.denoise <= 1))
				return cli_usage("polish", "--denoise takes a number above 0 and at "
						 "most 1, got '%s'", optarg);
			break;
		case 'J': json = 1; break;
		case 'P': pending = 1; break;
		default: return cli_usage("polish", "unknown option");
		}
	}
	if (pending) {
		uint64_t id = 0;
		size_t nid = 0;
		if (in.mask || in.prompt || in.negative)
			return cli_usage("polish", "inpaint --pending runs the review app's requests "
					 "as they were made: no --mask, --prompt or --negative");
		if (optind < argc) {
			if ((rc = parse_id("polish", argv[optind++], &id)))
				return rc;
			nid = 1;
		}
		if (optind < argc)
			return cli_usage("polish", "inpaint: unexpected argument '%s'", argv[optind]);
		if ((rc = cli_resolve_secrets(p)))
			return rc;
		cli_catch_signals();
		return run_requests(p, &id, nid, json, 0, NULL);
	}
	if ((rc = parse_id("polish", optind < argc ? argv[optind] : NULL, &in.id)))
		return rc;
	if (++optind < argc)
		return cli_usage("polish", "inpaint: unexpected argument '%s'", argv[optind]);
	if (!in.mask)
		return cli_usage("polish", "inpaint: --mask MASK.png says where to repaint (white)");
	if (!in.prompt || !*in.prompt)
		return cli_usage("polish", "inpaint: --prompt TEXT says what to paint there");
	if ((rc = cli_resolve_secrets(p)))
		return rc;
	cli_catch_signals();
	in.cancel = &cli_cancel;
	kiln_error_clear(&e);
	rc = kiln_polish_inpaint(p, &in, &res, &e);
	if (json) {
		json_t *o = json_pack("{s:s, s:I, s:s?, s:s?, s:s?, s:s?}", "event", "inpaint", "id",
				      (json_int_t)in.id, "mask", res.mask[0] ? res.mask : NULL,
				      "input", res.input[0] ? res.input : NULL, "image",
				      res.image[0] ? res.image : NULL, "error", rc ? e.msg : NULL);
		if (o) {
			char *t = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
			if (t)
				printf("%s\n", t);
			free(t);
		}
		json_decref(o);
	}
	if (rc)
		return cli_fail(&e);
	if (!json)
		printf("polish: item %llu: inpainted %.12s... into %s, now the token's image\n",
		       (unsigned long long)in.id, res.input, res.image);
	return 0;
}

static int do_import(struct kiln_project *p, int argc, char **argv)
{
	static const struct option opts[] = {{"by", required_argument, NULL, 'b'},
					     {"note", required_argument, NULL, 'n'},
					     {"tool", required_argument, NULL, 't'},
					     {NULL, 0, NULL, 0}};
	struct kiln_polish_import im;
	struct kiln_error e;
	int c, rc;
	memset(&im, 0, sizeof im);
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'b': im.by = optarg; break;
		case 'n': im.note = optarg; break;
		case 't': im.tool = optarg; break;
		default: return cli_usage("polish", "unknown option");
		}
	}
	if ((rc = parse_id("polish", optind < argc ? argv[optind] : NULL, &im.id)))
		return rc;
	if (++optind >= argc)
		return cli_usage("polish", "import: needs the edited FILE after the id");
	im.file = argv[optind++];
	if (optind < argc)
		return cli_usage("polish", "import: unexpected argument '%s'", argv[optind]);
	if (!im.by || !*im.by)
		return cli_usage("polish", "import: --by NAME says who made the edit");
	kiln_error_clear(&e);
	if ((rc = kiln_polish_import(p, &im, &e)))
		return cli_fail(&e);
	printf("polish: item %llu: the edit by %s is its image now\n",
	       (unsigned long long)im.id, im.by);
	return 0;
}

int cmd_polish(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"threads", required_argument, NULL, 'j'}, {"json", no_argument, NULL, 'J'},
		{"quiet", no_argument, NULL, 'q'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	int c, json = 0, quiet = 0, rc;
	unsigned threads = 0;
	uint64_t *ids = NULL;
	size_t nids = 0;
	struct kiln_project *p = NULL;
	if (argc > 1 && (!strcmp(argv[1], "export") || !strcmp(argv[1], "import") ||
			 !strcmp(argv[1], "reset") || !strcmp(argv[1], "inpaint"))) {
		struct kiln_error e;
		uint64_t id;
		if (argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
			help();
			return 0;
		}
		if ((rc = cli_open(cli, &p)))
			return rc;
		if (!strcmp(argv[1], "export"))
			rc = do_export(p, argc - 1, argv + 1);
		else if (!strcmp(argv[1], "import"))
			rc = do_import(p, argc - 1, argv + 1);
		else if (!strcmp(argv[1], "inpaint"))
			rc = do_inpaint(p, argc - 1, argv + 1);
		else if (argc != 3)
			rc = cli_usage("polish", "reset takes one token id");
		else if (!(rc = parse_id("polish", argv[2], &id))) {
			kiln_error_clear(&e);
			if ((rc = kiln_polish_reset(p, id, &e)))
				rc = cli_fail(&e);
			else
				printf("polish: item %llu: its edits are dropped\n",
				       (unsigned long long)id);
		}
		kiln_project_free(p);
		return rc;
	}
	optind = 1;
	while ((c = getopt_long(argc, argv, "j:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'j': {
			uint64_t n;
			if (cli_parse_u64(optarg, 1, 1024, &n))
				return cli_usage("polish", "--threads takes a number from 1 to 1024, "
						 "got '%s'", optarg);
			threads = (unsigned)n;
			break;
		}
		case 'J': json = 1; break;
		case 'q': quiet = 1; break;
		case 'h': help(); return 0;
		default: return cli_usage("polish", "unknown option");
		}
	}
	if (optind < argc && !(ids = calloc((size_t)(argc - optind), sizeof *ids)))
		return 1;
	for (; optind < argc; optind++)
		if ((rc = parse_id("polish", argv[optind], &ids[nids++]))) {
			free(ids);
			return rc;
		}
	if ((rc = cli_open(cli, &p))) {
		free(ids);
		return rc;
	}
	cli_catch_signals();
	rc = cli_stage_polish(p, threads, ids, nids, json, quiet, NULL);
	free(ids);
	kiln_project_free(p);
	return rc;
}
