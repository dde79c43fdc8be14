/* kiln_c2pa_tool: libkiln's C2PA calls from the command line, for tests/portfolio-c2pa/.
 *
 *   kiln_c2pa_tool keys DIR STUDIO                 make the chain (kiln_portfolio_x509_make)
 *   kiln_c2pa_tool sign IN.png OUT.png KEYS [composite] [EDIT...]
 *                                                  sign: c2pa.created, then c2pa.edited per EDIT
 *   kiln_c2pa_tool verify IN.png [ROOT.pem]        kiln's own check: prints "ok <label>" or
 *                                                  "failed <check>: <detail>"; exit 0 / 1
 */
#include "kiln/portfolio.h"
#include "util/fs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int die(const struct kiln_error *e)
{
	fprintf(stderr, "kiln_c2pa_tool: %s: %s\n", e->where, e->msg);
	return 2;
}

int main(int argc, char **argv)
{
	struct kiln_error e;
	struct kiln_buf in = KILN_BUF_INIT, out = KILN_BUF_INIT;
	kiln_error_clear(&e);
	if (argc == 4 && strcmp(argv[1], "keys") == 0)
		return kiln_portfolio_x509_make(argv[2], argv[3], &e) ? die(&e) : 0;
	if (argc >= 5 && strcmp(argv[1], "sign") == 0) {
		struct kiln_c2pa_edit edits[16];
		struct kiln_c2pa_in ci = { 0 };
		int i, a = 5;
		ci.title = "kiln test token";
		ci.format = "image/png";
		ci.token_id = 7;
		ci.log_index = 42;
		ci.log_entry_sha256 =
			"8c1d0fa3d9cbd4b7c6e2f3e8a1b5c7d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f";
		ci.log_root = "1f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c5b6a7988";
		ci.log_size = 43;
		if (argc > a && strcmp(argv[a], "composite") == 0) {
			ci.source_type = KILN_C2PA_COMPOSITE_TRAINED;
			a++;
		}
		for (i = 0; a < argc && i < 16; a++, i++) {
			edits[i].description = argv[a];
			edits[i].agent = i % 2 ? "kiln polish" : NULL;
			edits[i].when = "2026-12-07T10:00:00Z";
		}
		ci.edits = edits;
		ci.n_edits = (size_t)i;
		if (kiln_fs_read(argv[2], &in, &e) ||
		    kiln_portfolio_c2pa_sign_png(in.data, in.len, &ci, argv[4], &out, &e) ||
		    kiln_fs_write_atomic(argv[3], out.data, out.len, &e))
			return die(&e);
		kiln_buf_release(&in);
		kiln_buf_release(&out);
		return 0;
	}
	if ((argc == 3 || argc == 4) && strcmp(argv[1], "verify") == 0) {
		struct kiln_c2pa_report r;
		if (kiln_fs_read(argv[2], &in, &e) ||
		    kiln_portfolio_c2pa_verify_png(in.data, in.len, argc == 4 ? argv[3] : NULL, &r,
						   &e))
			return die(&e);
		kiln_buf_release(&in);
		if (r.ok) {
			printf("ok %s signer=%s provenance=%s\n", r.label, r.signer, r.provenance);
			return 0;
		}
		printf("failed %s: %s\n", r.check, r.detail);
		return 1;
	}
	fprintf(stderr, "usage: kiln_c2pa_tool keys DIR STUDIO | sign IN OUT KEYS [composite] "
		"[EDIT...] | verify IN [ROOT]\n");
	return 2;
}
