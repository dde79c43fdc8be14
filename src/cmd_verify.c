/* kiln verify: recompute a release's file hashes, image hashes, provenance hash and CIDs from
 * the files in dist/ alone and say whether they match what dist/manifest.sha256,
 * dist/provenance.json and dist/ipfs.json claim. */
#include "cli.h"
#include "kiln/polish.h"
#include "kiln/portfolio.h"
#include "kiln/release.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
	printf("usage: kiln verify [--release-hash SHA256] [--key FILE] [--json] [-q] [DIST]\n\n"
	       "Checks a release folder (default: dist/ of the project, see -C) using only its\n"
	       "files: every file's SHA-256 against manifest.sha256 (changed, missing and added\n"
	       "files are named), every image's SHA-256 and the provenance hash against\n"
	       "provenance.json, every folder's and file's IPFS CID (as `ipfs add\n"
	       "--cid-version=1`) and every CAR's SHA-256 against ipfs.json, that each token's\n"
	       "metadata (and Metaplex asset) shows the image the reveal mapping says, and that\n"
	       "the targets agree (_metadata.json, Metaplex assets and Sugar's config), and the\n"
	       "Provenance Portfolio when dist/portfolio/ exists (log chain, Merkle root, signed\n"
	       "checkpoint, inclusion proofs, Sigstore bundles, C2PA manifests). Prints the\n"
	       "release hash (the manifest's SHA-256, recomputed from the files). Needs no catalog.\n"
	       "Exit 0 when everything matches, 1 listing what differs, 2 when DIST is not a\n"
	       "release folder.\n\n"
	       "  --release-hash SHA256  the release hash the studio published: fail unless the\n"
	       "                         files give it\n"
	       "  --key FILE             the studio's Ed25519 public key (PEM) as published\n"
	       "                         elsewhere: the portfolio is checked against it, not\n"
	       "                         the one in dist/ (--studio-key is the same)\n"
	       "  --json                 a JSON summary on stdout\n"
	       "  -q, --quiet            print only what differs\n");
}

int cmd_verify(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'}, {"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'}, {"release-hash", required_argument, NULL, 'H'},
		{"key", required_argument, NULL, 'k'}, {"studio-key", required_argument, NULL, 'k'},
		{NULL, 0, NULL, 0}};
	struct kiln_verify_result r;
	struct kiln_error e;
	char *dist = NULL;
	const char *expect = NULL, *key = NULL;
	char fp[65] = "";
	int c, json = 0, quiet = 0, rc;
	optind = 1;
	while ((c = getopt_long(argc, argv, "q", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = 1; break;
		case 'q': quiet = 1; break;
		case 'H': expect = optarg; break;
		case 'k': key = optarg; break;
		case 'h': help(); return 0;
		default: return cli_usage("verify", "unknown option");
		}
	}
	if (optind + 1 < argc)
		return cli_usage("verify", "unexpected argument '%s'", argv[optind + 1]);
	if (optind < argc) {
		dist = strdup(argv[optind]);
	} else {
		size_t n = strlen(cli->dir) + 6;
		if ((dist = malloc(n)))
			snprintf(dist, n, "%s/dist", cli->dir);
	}
	if (!dist) {
		fprintf(stderr, "kiln: out of memory\n");
		return 1;
	}
	kiln_error_clear(&e);
	if (kiln_release_verify_key(dist, expect, key, &r, &e)) {
		free(dist);
		return cli_fail(&e);
	}
	/* the polish chains: links, and the recomputable steps from the project's store (the
	 * folder above dist/) */
	{
		size_t n = strlen(dist) + 32;
		char *store = malloc(n);
		int prc = 1;
		if (store) {
			snprintf(store, n, "%s/../.kiln/store", dist);
			prc = kiln_polish_verify(dist, store, &r, &e);
		}
		free(store);
		if (prc) {
			kiln_verify_result_release(&r);
			free(dist);
			return store ? cli_fail(&e) : 1;
		}
	}
	kiln_portfolio_key_fingerprint(dist, key, fp);
	if (json) {
		json_t *j = json_pack("{s:s, s:b, s:I, s:I, s:I, s:s, s:s, s:s, s:s, s:[]}", "dist",
				      dist, "ok", r.nproblems == 0, "checks", (json_int_t)r.checks,
				      "files", (json_int_t)r.files, "bytes", (json_int_t)r.bytes,
				      "release_hash", r.manifest, "provenance_hash", r.provenance,
				      "images_cid", r.images_cid, "metadata_cid", r.metadata_cid,
				      "problems");
		for (size_t i = 0; j && i < r.nproblems; i++)
			json_array_append_new(json_object_get(j, "problems"),
					      json_string(r.problems[i]));
		if (j && fp[0])
			json_object_set_new(j, "studio_key", json_pack("{s:s, s:s}", "sha256", fp,
					    "from", key ? key : "portfolio/keys/signing-ed25519.pub"));
		if (j) {
			json_dumpf(j, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
			fputc('\n', stdout);
		}
		json_decref(j);
	} else {
		for (size_t i = 0; i < r.nproblems; i++)
			printf("MISMATCH %s\n", r.problems[i]);
		if (!quiet || r.nproblems) {
			if (r.nproblems)
				printf("verify: %s does NOT match its records: %zu problems in %llu "
				       "checks\n", dist, r.nproblems, (unsigned long long)r.checks);
			else
				printf("verify: %s matches: %llu checks, %llu files (%.1f MiB) hashed\n"
				       "  release    %s%s\n  provenance %s\n  images     ipfs://%s\n",
				       dist, (unsigned long long)r.checks,
				       (unsigned long long)r.files, (double)r.bytes / 1048576.0,
				       r.manifest, expect ? " (as published)" : "", r.provenance,
				       r.images_cid);
			if (!r.nproblems && r.metadata_cid[0])
				printf("  metadata   ipfs://%s/\n", r.metadata_cid);
			if (fp[0])
				printf("  portfolio  checked with studio key %s (%s)\n", fp,
				       key ? key : "the one in portfolio/keys/: compare it with the "
						   "one the studio publishes");
		}
	}
	rc = r.nproblems ? 1 : 0;
	kiln_verify_result_release(&r);
	free(dist);
	return rc;
}
