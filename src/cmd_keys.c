/* kiln keys init | show: the studio's signing keys for the Provenance Portfolio. The folder is
 * $KILN_KEYS_DIR, else ~/.config/kiln/keys/ (read here: the library is given the folder). */
#include "cli.h"
#include "kiln/portfolio.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
	printf("usage: kiln keys init [--studio NAME] [--json]\n"
	       "       kiln keys show [--json]\n\n"
	       "The studio's keys sign the Provenance Portfolio (dist/portfolio/): an Ed25519 key\n"
	       "for the log's checkpoint and the per-token Sigstore bundles. They live outside\n"
	       "any project, in $KILN_KEYS_DIR or else ~/.config/kiln/keys/ (folder 0700, files\n"
	       "0600); only public parts are ever written under dist/. `init` never replaces a\n"
	       "key. It also makes the studio's C2PA chain (c2pa-root.pem, c2pa-leaf.pem/.key:\n"
	       "EC P-256) that signs the manifests in released PNGs. `show` prints the public\n"
	       "key, its signed-note verifier key and its hint.\n\n"
	       "  --studio NAME  the signer's name in signed notes (default: kiln-studio; no\n"
	       "                 spaces or '+', e.g. example.com/studio)\n"
	       "  --json         a JSON object on stdout\n");
}

/* The keys folder; caller frees. */
char *cli_keys_dir(void)
{
	const char *env = getenv("KILN_KEYS_DIR"), *home = getenv("HOME");
	char *out;
	size_t n;
	if (env && *env)
		return strdup(env);
	if (!home || !*home)
		home = ".";
	n = strlen(home) + 32;
	if ((out = malloc(n)))
		snprintf(out, n, "%s/.config/kiln/keys", home);
	return out;
}

static int show(const char *dir, int json, int made)
{
	struct kiln_keys k;
	struct kiln_error e;
	char vkey[512];
	int rc;
	kiln_error_clear(&e);
	if (kiln_keys_load(dir, 0, &k, &e))
		return cli_fail(&e);
	if (kiln_note_vkey(k.studio, k.pub, vkey, sizeof vkey)) {
		kiln_keys_release(&k);
		fprintf(stderr, "kiln: out of memory\n");
		return 1;
	}
	if (json) {
		json_t *j = json_pack("{s:s, s:b, s:s, s:s, s:s, s:s}", "dir", dir, "made", made,
				      "studio", k.studio, "public_key_pem", k.pub_pem, "note_vkey",
				      vkey, "key_hint", k.key_hint);
		rc = j ? 0 : 1;
		if (j) {
			json_dumpf(j, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
			fputc('\n', stdout);
		}
		json_decref(j);
	} else {
		printf("%s%s\nstudio      %s\nnote vkey   %s\nkey hint    %s\n%s", made ?
		       "made the studio's keys in " : "keys in ", dir, k.studio, vkey, k.key_hint,
		       k.pub_pem);
		rc = 0;
	}
	kiln_keys_release(&k);
	return rc;
}

int cmd_keys(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'}, {"studio", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	const char *studio = "kiln-studio", *sub;
	struct kiln_error e;
	char *dir;
	int c, json = 0, rc;
	(void)cli;
	if (argc < 2)
		return cli_usage("keys", "needs a subcommand: init or show");
	sub = argv[1];
	if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) {
		help();
		return 0;
	}
	if (strcmp(sub, "init") && strcmp(sub, "show"))
		return cli_usage("keys", "'%s' is not a subcommand (init or show)", sub);
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = 1; break;
		case 's': studio = optarg; break;
		case 'h': help(); return 0;
		default: return cli_usage("keys", "unknown option");
		}
	}
	if (optind < argc - 1)
		return cli_usage("keys", "unexpected argument '%s'", argv[optind + 1]);
	if (!strcmp(sub, "show") && studio != NULL && strcmp(studio, "kiln-studio"))
		return cli_usage("keys", "--studio is for `keys init`");
	if (!(dir = cli_keys_dir())) {
		fprintf(stderr, "kiln: out of memory\n");
		return 1;
	}
	kiln_error_clear(&e);
	if (!strcmp(sub, "init")) {
		/* the Ed25519 signing key, then the C2PA chain (root CA + leaf) beside it */
		if (kiln_keys_init(dir, studio, &e) ||
		    kiln_portfolio_x509_make(dir, studio, &e)) {
			free(dir);
			return cli_fail(&e);
		}
	}
	rc = show(dir, json, !strcmp(sub, "init"));
	free(dir);
	return rc;
}
