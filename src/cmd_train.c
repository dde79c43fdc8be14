/* kiln train prepare NAME | run NAME: the training stage (docs/training.md). prepare checks,
 * hashes, deduplicates, buckets and captions a training's datasets and writes the manifest
 * and the trainer's inputs (lib/train/prepare.c); run launches the trainer on them. */
#include "cli.h"
#include "kiln/qa.h"
#include "kiln/train.h"
#include "train_run.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
	printf("usage: kiln train prepare NAME [--json] [-q] [-j N] [--strict]\n"
	       "       kiln train run NAME [--json] [-q] [--cancel]   (kiln train run --help)\n\n"
	       "prepare: every image of training NAME's datasets (kiln.yaml training:) is read and\n"
	       "checked (decodes, size, colour mode), hashed (SHA-256, QA's pHash), resized and\n"
	       "centre-cropped to kohya's aspect-ratio buckets with libvips and captioned (caption\n"
	       "files, a template over the file name, or a token's traits). Exact duplicates are\n"
	       "left out; near duplicates, images that are also tokens of the collection, missing\n"
	       "captions and datasets without a licence are reported. It writes\n"
	       ".kiln/train/NAME/manifest.json (every image: source, SHA-256 before and after,\n"
	       "pHash, sizes, crop box, bucket, caption, dataset) and, from it, the trainer's\n"
	       "inputs: kohya's dataset.toml and command.json, or ai-toolkit's config.yaml. A file\n"
	       "is rewritten only when its bytes change; the manifest is recorded in the catalog.\n\n"
	       "  -j N        images prepared at once (default 2)\n"
	       "  --strict    an image that does not decode fails the prepare (exit 1, no\n"
	       "              manifest); by default it is reported and left out\n"
	       "  -q          print nothing but errors\n"
	       "  --json      one JSON object per finding, then a summary object\n");
}

/* QA's pHash, given to the library (train sits below QA) */
static int phash(const uint8_t *pixels, int width, int height, int bands, size_t stride,
		 uint64_t *out, void *user, struct kiln_error *e)
{
	(void)user;
	return kiln_qa_phash_pixels(pixels, width, height, bands, stride, out, e);
}

static int prepare(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'J'}, {"quiet", no_argument, NULL, 'q'},
		{"jobs", required_argument, NULL, 'j'}, {"strict", no_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	struct kiln_train_prepare_opts o = {0};
	struct kiln_train_report r;
	struct cli_progress cp;
	struct kiln_project *p = NULL;
	struct kiln_error e;
	uint64_t jobs = 2;
	int c, json = 0, quiet = 0, rc, nq;
	optind = 1;
	while ((c = getopt_long(argc, argv, "qj:", opts, NULL)) != -1) {
		switch (c) {
		case 'J': json = 1; break;
		case 'q': quiet = 1; break;
		case 's': o.strict = 1; break;
		case 'j':
			if (cli_parse_u64(optarg, 1, 256, &jobs))
				return cli_usage("train", "-j takes a number of images at once, 1 to "
						 "256, not '%s'", optarg);
			break;
		case 'h': help(); return 0;
		default: return cli_usage("train", "unknown option");
		}
	}
	if (optind + 1 != argc)
		return cli_usage("train", "prepare takes one NAME (a training of kiln.yaml)");
	if ((rc = cli_open(cli, &p)))
		return rc;
	kiln_error_clear(&e);
	o.name = argv[optind];
	o.phash = phash;
	o.jobs = (unsigned)jobs;
	nq = p->spec->qa.near_threshold;
	o.near_threshold = nq == 0 ? 4 : nq == -1 ? -1 : nq == -2 ? 0 : nq;
	cli_progress_init(&cp, json, quiet);
	o.progress = cli_progress_cb;
	o.user = &cp;
	rc = kiln_train_prepare(p, &o, &r, &e);
	for (size_t i = 0; i < r.n; i++) {
		const struct kiln_train_finding *f = &r.v[i];
		if (json) {
			json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s?}", "event", "finding", "kind",
					      f->kind, "path", f->path, "message", f->message,
					      "other", f->other);
			if (j) {
				json_dumpf(j, stdout, JSON_COMPACT | JSON_SORT_KEYS);
				putchar('\n');
				json_decref(j);
			}
		} else if (!quiet) {
			fprintf(stderr, "kiln: %s: %s: %s\n", f->path, f->kind, f->message);
		}
	}
	if (rc) {
		if (json)
			cli_error_event("train", &e);
		rc = cli_fail(&e);
	} else if (json) {
		json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:b,s:I}", "event",
				      "summary", "stage", "train", "manifest", r.manifest, "sha256",
				      r.sha256, "images", (json_int_t)r.images, "written",
				      (json_int_t)r.written, "reused", (json_int_t)r.reused,
				      "files_changed", (json_int_t)r.files_changed, "recorded",
				      r.recorded, "findings", (json_int_t)r.n);
		if (j) {
			json_dumpf(j, stdout, JSON_COMPACT | JSON_SORT_KEYS);
			putchar('\n');
			json_decref(j);
		}
	} else if (!quiet) {
		printf("train: %s: %zu images prepared (%zu written, %zu unchanged), %zu finding%s; "
		       "%s%s\n", o.name, r.images, r.written, r.reused, r.n, r.n == 1 ? "" : "s",
		       r.files_changed ? "wrote " : "nothing changed: ", r.manifest);
	}
	kiln_train_report_release(&r);
	kiln_project_free(p);
	return rc;
}

int cmd_train(struct cli *cli, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage("train", "needs a subcommand: prepare or run");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		help();
		return 0;
	}
	if (!strcmp(argv[1], "prepare"))
		return prepare(cli, argc - 1, argv + 1);
	if (!strcmp(argv[1], "run"))
		return cmd_train_run(cli, argc - 1, argv + 1); /* src/cmd_train_run.c */
	return cli_usage("train", "'%s' is not a subcommand (prepare or run)", argv[1]);
}
