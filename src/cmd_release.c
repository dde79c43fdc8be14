/* kiln release: write dist/ for the spec's targets (ERC-721, ERC-1155, Metaplex), with the IPFS
 * CIDs computed offline, the provenance record and the reveal, swapped in whole. */
#include "cli.h"
#include "kiln/review.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
	printf("usage: kiln release [--car] [--starting-index N [--re-reveal]] [--force] [--json] "
	       "[-q]\n\n"
	       "Writes dist/ for the targets in metadata.targets: dist/images/<id>.<ext>,\n"
	       "dist/metadata/<id>.json and dist/_metadata.json (erc721, the default),\n"
	       "dist/erc1155/metadata/<64 hex>.json, dist/metaplex/assets/ (Sugar's layout),\n"
	       "dist/contract.json, dist/provenance.json, dist/ipfs.json and dist/manifest.sha256\n"
	       "(every file's SHA-256; its own SHA-256 is the release hash). The images folder's\n"
	       "IPFS CID is computed first (offline, as `ipfs add --cid-version=1`), so token JSON\n"
	       "says image: ipfs://<images CID>/<id>.<ext>; then the metadata folders' CIDs.\n"
	       "The new dist/ is written beside the old one and swapped in whole. Refuses while\n"
	       "any item lacks a current render. `kiln verify` checks a release.\n\n"
	       "  --car                 also write dist/car/<name>.car (CARv1) for each folder and\n"
	       "                        file an ipfs:// URI of the release names\n"
	       "  --allow-qa-failures   release tokens that failed the last `kiln qa` too\n"
	       "  --allow-unreviewed    release although review.required and tokens are not\n"
	       "                        approved (recorded as a review_override event)\n"
	       "  --starting-index N    reveal: token at position t shows initial item\n"
	       "                        (t + N) mod size; recorded, so later releases keep it\n"
	       "  --re-reveal           allow a starting index other than the recorded one\n"
	       "  --force               write dist/ even when nothing changed\n"
	       "  --json                a JSON summary on stdout\n"
	       "  -q, --quiet           no summary\n");
}

static void summary(const struct kiln_release_result *r, int car)
{
	if (!r->written) {
		printf("release: %s is up to date\n", r->dist);
	} else {
		printf("release: %llu tokens written to %s (%.1f MiB of images)\n",
		       (unsigned long long)r->items, r->dist, (double)r->bytes / 1048576.0);
	}
	if (r->images_cid[0])
		printf("  images     ipfs://%s\n", r->images_cid);
	if (r->metadata_cid[0])
		printf("  metadata   ipfs://%s/  (token URI: <this>/<id>.json)\n", r->metadata_cid);
	if (r->erc1155_cid[0])
		printf("  erc1155    ipfs://%s/{id}.json\n", r->erc1155_cid);
	if (r->prereveal_cid[0])
		printf("  prereveal  ipfs://%s/\n", r->prereveal_cid);
	if (r->contract_cid[0])
		printf("  contract   ipfs://%s  (contractURI)\n", r->contract_cid);
	if (r->provenance[0])
		printf("  provenance %s\n", r->provenance);
	if (r->manifest[0])
		printf("  release    %s  (sha256 of manifest.sha256: publish it)\n", r->manifest);
	if (r->has_starting_index)
		printf("  starting index %" PRIu64 "\n", r->starting_index);
	if (r->reveal_pending)
		printf("  reveal pending: token metadata is written by `kiln release "
		       "--starting-index N`\n");
	if (car && r->written)
		printf("  CAR files in %s/car/\n", r->dist);
}

int cmd_release(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"force", no_argument, NULL, 'f'}, {"json", no_argument, NULL, 'j'},
		{"quiet", no_argument, NULL, 'q'}, {"help", no_argument, NULL, 'h'},
		{"car", no_argument, NULL, 'c'}, {"starting-index", required_argument, NULL, 's'},
		{"allow-qa-failures", no_argument, NULL, 'A'},
		{"re-reveal", no_argument, NULL, 'R'},
		{"allow-unreviewed", no_argument, NULL, 'U'},
		{NULL, 0, NULL, 0}};
	int c, json = 0, quiet = 0, rc, allow_unreviewed = 0;
	struct kiln_release_opts o;
	struct kiln_release_result r;
	struct kiln_project *p = NULL;
	struct cli_progress cp;
	struct kiln_error e;
	memset(&o, 0, sizeof o);
	optind = 1;
	while ((c = getopt_long(argc, argv, "q", opts, NULL)) != -1) {
		switch (c) {
		case 'f': o.force = 1; break;
		case 'j': json = 1; break;
		case 'q': quiet = 1; break;
		case 'c': o.car = 1; break;
		case 'A': o.allow_qa_failures = 1; break;
		case 'R': o.re_reveal = 1; break;
		case 'U': allow_unreviewed = 1; break;
		case 's': {
			if (cli_parse_u64(optarg, 0, KILN_ID_MAX, &o.starting_index))
				return cli_usage("release", "--starting-index needs a whole number "
						 "0 or more, got '%s'", optarg);
			o.has_starting_index = 1;
			break;
		}
		case 'h': help(); return 0;
		default: return cli_usage("release", "unknown option");
		}
	}
	if (optind < argc)
		return cli_usage("release", "unexpected argument '%s'", argv[optind]);
	if (o.re_reveal && !o.has_starting_index)
		return cli_usage("release", "--re-reveal changes the starting index: give the new "
				 "one with --starting-index N");
	if ((rc = cli_open(cli, &p)))
		return rc;
	kiln_error_clear(&e);
	cli_progress_init(&cp, json, quiet);
	o.progress = json ? NULL : cli_progress_cb;
	o.user = &cp;
	o.keys_dir = cli_keys_dir(); /* NULL (out of memory): a portfolio release says so */
	/* review.required: every token approved first (the release module is below review) */
	int rel_failed = kiln_review_gate(p, allow_unreviewed, NULL, &e) ||
			 kiln_project_release(p, &o, &r, &e);
	free((char *)o.keys_dir);
	if (rel_failed) {
		if (json)
			cli_error_event("release", &e);
		rc = cli_fail(&e);
		goto out;
	}
	if (json) {
		json_t *j = json_pack("{s:s, s:s, s:b, s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, "
				      "s:s, s:o, s:b}", "event", "summary", "stage", "release",
				      "written", r.written, "items", (json_int_t)r.items, "bytes",
				      (json_int_t)r.bytes, "dist", r.dist, "images_cid",
				      r.images_cid, "metadata_cid", r.metadata_cid, "erc1155_cid",
				      r.erc1155_cid, "prereveal_cid", r.prereveal_cid,
				      "contract_cid", r.contract_cid, "provenance_hash",
				      r.provenance, "release_hash", r.manifest, "starting_index",
				      r.has_starting_index ? json_integer((json_int_t)r.starting_index)
							   : json_null(),
				      "reveal_pending", r.reveal_pending);
		j = cli_release_report(p, &r, j, 1, quiet);
		if (j) {
			json_dumpf(j, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
			fputc('\n', stdout);
		}
		json_decref(j);
	} else {
		if (!quiet)
			summary(&r, o.car);
		cli_release_report(p, &r, NULL, 0, quiet);
	}
	rc = 0;
out:
	kiln_project_free(p);
	return rc;
}
