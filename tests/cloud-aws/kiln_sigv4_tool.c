/* kiln_sigv4_tool: the headers kiln's SigV4 signer (lib/util/sigv4.c) sends with a request,
 * for tests/cloud-aws/compare.mjs, which signs the same requests with @smithy/signature-v4 and
 * aws4 and compares.
 *
 *   kiln_sigv4_tool METHOD URL BODY UNIX_SECONDS SERVICE REGION ACCESS SECRET TOKEN EXTRA
 *
 * TOKEN "" for none; EXTRA more "Name: value" lines to sign ('\n'-separated, may be "").
 * Prints the header lines (X-Amz-Date, X-Amz-Content-Sha256, [X-Amz-Security-Token],
 * Authorization), one a line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util/sigv4.h"

int main(int argc, char **argv)
{
	struct kiln_buf out = KILN_BUF_INIT;
	struct kiln_error e;
	struct kiln_sigv4 k;
	if (argc != 11) {
		fprintf(stderr, "usage: kiln_sigv4_tool METHOD URL BODY UNIX SERVICE REGION ACCESS "
			"SECRET TOKEN EXTRA\n");
		return 2;
	}
	memset(&k, 0, sizeof k);
	k.service = argv[5];
	k.region = argv[6];
	k.access_key = argv[7];
	k.secret_key = argv[8];
	k.token = argv[9][0] ? argv[9] : NULL;
	k.s3 = !strcmp(argv[5], "s3");
	if (kiln_sigv4_request(&k, argv[1], argv[2], argv[10], argv[3], strlen(argv[3]),
			       strtod(argv[4], NULL), &out, &e)) {
		fprintf(stderr, "kiln_sigv4_tool: %s\n", e.msg);
		return 1;
	}
	fputs(out.data, stdout);
	kiln_buf_release(&out);
	return 0;
}
