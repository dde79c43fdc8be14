/* The SigV4 signer (lib/util/sigv4.c) against every case of the AWS Signature Version 4 test
 * suite (tests/fixtures/aws-sig-v4-test-suite, Apache-2.0, see its LICENSE and NOTICE): the
 * canonical request, the string to sign and the Authorization header, byte for byte; then S3's
 * own examples from the S3 API reference (paths neither normalised nor encoded twice,
 * x-amz-content-sha256 signed) and kiln_sigv4_request's headers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "util/fs.h"
#include "util/sigv4.h"

#define SUITE KILN_SOURCE_DIR "/tests/fixtures/aws-sig-v4-test-suite"

static const struct kiln_sigv4 suite_key = {
	.access_key = "AKIDEXAMPLE",
	.secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
	.region = "us-east-1",
	.service = "service",
	.amz_date = "20150830T123600Z",
};

static char *slurp(const char *dir, const char *name, const char *ext)
{
	char path[2048];
	struct kiln_buf b = KILN_BUF_INIT;
	struct kiln_error e;
	snprintf(path, sizeof path, "%s/%s.%s", dir, name, ext);
	if (kiln_fs_read(path, &b, &e))
		return NULL;
	return kiln_buf_detach(&b, NULL);
}

/* One case: parse NAME.req (request line, headers with continuation lines, blank line, body),
 * sign it, compare with NAME.creq, .sts, .authz. */
static int run_case(const char *dir, const char *name)
{
	char *req = slurp(dir, name, "req"), *creq = slurp(dir, name, "creq");
	char *sts = slurp(dir, name, "sts"), *authz = slurp(dir, name, "authz");
	struct kiln_sigv4_header h[32];
	char *values[32];
	size_t nh = 0;
	char method[16], *target, *p, *line, *body = NULL;
	struct kiln_sigv4_result r;
	struct kiln_error e;
	int bad = 0;
	assert_non_null(req);
	assert_non_null(creq);
	assert_non_null(sts);
	assert_non_null(authz);
	/* request line */
	p = strchr(req, '\n');
	assert_non_null(p);
	*p = 0;
	line = p + 1;
	assert_int_equal(sscanf(req, "%15s", method), 1);
	target = strchr(req, ' ') + 1;
	p = strrchr(target, ' '); /* " HTTP/1.1" */
	assert_non_null(p);
	*p = 0;
	while (line && *line) {
		char *next = strchr(line, '\n'), *colon;
		if (next)
			*next++ = 0;
		if (line[0] == ' ' || line[0] == '\t') {
			/* a continuation line: the value goes on after a ',' */
			size_t l;
			char *v;
			while (*line == ' ' || *line == '\t')
				line++;
			assert_true(nh > 0);
			l = strlen(values[nh - 1]) + strlen(line) + 2;
			v = malloc(l);
			assert_non_null(v);
			snprintf(v, l, "%s,%s", values[nh - 1], line);
			free(values[nh - 1]);
			values[nh - 1] = v;
			h[nh - 1].value = v;
		} else {
			colon = strchr(line, ':');
			assert_non_null(colon);
			*colon = 0;
			assert_true(nh < 32);
			values[nh] = strdup(colon + 1);
			assert_non_null(values[nh]);
			h[nh].name = line;
			h[nh].value = values[nh];
			nh++;
		}
		if (next && *next == '\n') {
			body = next + 1;
			break;
		}
		line = next;
	}
	assert_int_equal(kiln_sigv4_sign(&suite_key, method, target, h, nh, body,
					 body ? strlen(body) : 0, NULL, &r, &e), 0);
	if (strcmp(r.creq.data, creq)) {
		print_message("%s: canonical request\n--- got\n%s\n--- want\n%s\n", name, r.creq.data,
			      creq);
		bad = 1;
	}
	if (strcmp(r.sts.data, sts)) {
		print_message("%s: string to sign\n--- got\n%s\n--- want\n%s\n", name, r.sts.data, sts);
		bad = 1;
	}
	if (strcmp(r.authz.data, authz)) {
		print_message("%s: authorization\n--- got\n%s\n--- want\n%s\n", name, r.authz.data,
			      authz);
		bad = 1;
	}
	kiln_sigv4_result_release(&r);
	for (size_t i = 0; i < nh; i++)
		free(values[i]);
	free(req);
	free(creq);
	free(sts);
	free(authz);
	return bad;
}

/* Every folder holding NAME/NAME.req, at any depth. */
static void walk(const char *dir, unsigned *cases, unsigned *bad)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	assert_non_null(d);
	while ((de = readdir(d))) {
		char sub[1024], req[2400];
		struct stat st;
		if (de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof sub, "%s/%s", dir, de->d_name);
		if (stat(sub, &st) || !S_ISDIR(st.st_mode))
			continue;
		snprintf(req, sizeof req, "%s/%s.req", sub, de->d_name);
		if (!stat(req, &st)) {
			(*cases)++;
			*bad += (unsigned)run_case(sub, de->d_name);
		}
		walk(sub, cases, bad);
	}
	closedir(d);
}

static void test_suite(void **state)
{
	unsigned cases = 0, bad = 0;
	(void)state;
	walk(SUITE, &cases, &bad);
	print_message("%u cases of the AWS SigV4 test suite, %u failed\n", cases, bad);
	assert_int_equal(cases, 31); /* the suite's 31 cases, none skipped */
	assert_int_equal(bad, 0);
}

/* S3's examples (Amazon S3 API Reference, "Signature Calculations for the Authorization
 * Header: Transferring Payload in a Single Chunk"): examplebucket, 24 May 2013. */
static const struct kiln_sigv4 s3_key = {
	.access_key = "AKIAIOSFODNN7EXAMPLE",
	.secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
	.region = "us-east-1",
	.service = "s3",
	.amz_date = "20130524T000000Z",
	.s3 = 1,
};
#define EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static void sign_s3(const char *method, const char *target, const struct kiln_sigv4_header *h,
		    size_t nh, const char *body, const char *want_sig)
{
	struct kiln_sigv4_result r;
	struct kiln_error e;
	const char *sig;
	assert_int_equal(kiln_sigv4_sign(&s3_key, method, target, h, nh, body,
					 body ? strlen(body) : 0, NULL, &r, &e), 0);
	sig = strstr(r.authz.data, "Signature=");
	assert_non_null(sig);
	if (strcmp(sig + 10, want_sig))
		print_message("%s %s\n%s\n%s\n", method, target, r.creq.data, r.authz.data);
	assert_string_equal(sig + 10, want_sig);
	kiln_sigv4_result_release(&r);
}

static void test_s3_examples(void **state)
{
	(void)state;
	/* GET Object with a Range */
	const struct kiln_sigv4_header get[] = {
		{"Host", "examplebucket.s3.amazonaws.com"},
		{"Range", "bytes=0-9"},
		{"x-amz-content-sha256", EMPTY},
		{"x-amz-date", "20130524T000000Z"},
	};
	sign_s3("GET", "/test.txt", get, 4, NULL,
		"f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
	/* PUT Object: '$' encoded once in the path, the payload's hash signed */
	const struct kiln_sigv4_header put[] = {
		{"Host", "examplebucket.s3.amazonaws.com"},
		{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
		{"x-amz-date", "20130524T000000Z"},
		{"x-amz-storage-class", "REDUCED_REDUNDANCY"},
		{"x-amz-content-sha256",
		 "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"},
	};
	sign_s3("PUT", "/test$file.text", put, 5, "Welcome to Amazon S3.",
		"98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
	/* GET Bucket Lifecycle: a query name without a value */
	const struct kiln_sigv4_header lc[] = {
		{"Host", "examplebucket.s3.amazonaws.com"},
		{"x-amz-date", "20130524T000000Z"},
		{"x-amz-content-sha256", EMPTY},
	};
	sign_s3("GET", "/?lifecycle", lc, 3, NULL,
		"fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
	/* GET Bucket (list objects): the query sorted */
	sign_s3("GET", "/?prefix=J&max-keys=2", lc, 3, NULL,
		"34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

/* S3 paths: taken as sent (no "." or ".." folding, no second encoding of %XX). */
static void test_s3_paths(void **state)
{
	struct kiln_sigv4_result r;
	struct kiln_error e;
	const struct kiln_sigv4_header h[] = {{"Host", "b.s3.amazonaws.com"}};
	struct kiln_sigv4 k = s3_key;
	(void)state;
	assert_int_equal(kiln_sigv4_sign(&k, "GET", "/a/./b//c%20d$", h, 1, NULL, 0, NULL, &r, &e),
			 0);
	assert_true(!strncmp(r.creq.data, "GET\n/a/./b//c%20d%24\n\n", 22));
	kiln_sigv4_result_release(&r);
	k.s3 = 0; /* any other service: normalised, and '%' encoded again */
	assert_int_equal(kiln_sigv4_sign(&k, "GET", "/a/./b//c%20d$", h, 1, NULL, 0, NULL, &r, &e),
			 0);
	assert_true(!strncmp(r.creq.data, "GET\n/a/b/c%2520d%24\n\n", 21));
	kiln_sigv4_result_release(&r);
}

/* kiln_sigv4_request: the headers a request goes out with, the Host as libcurl sends it. */
static void test_request(void **state)
{
	struct kiln_buf lines = KILN_BUF_INIT;
	struct kiln_error e;
	struct kiln_sigv4 k = s3_key;
	(void)state;
	k.token = "TOKEN";
	/* 2013-05-24T00:00:00Z */
	assert_int_equal(kiln_sigv4_request(&k, "PUT", "https://examplebucket.s3.amazonaws.com:443"
					    "/test$file.text", "x-amz-storage-class: REDUCED_REDUNDANCY",
					    "Welcome to Amazon S3.", 21, 1369353600.0, &lines, &e),
			 0);
	assert_non_null(strstr(lines.data, "X-Amz-Date: 20130524T000000Z\n"));
	assert_non_null(strstr(lines.data, "X-Amz-Content-Sha256: 44ce7dd67c959e0d3524ffac1771dfbb"
					   "a87d2b6b4b4e99e42034a8b803f8b072\n"));
	assert_non_null(strstr(lines.data, "X-Amz-Security-Token: TOKEN\n"));
	assert_non_null(strstr(lines.data, "SignedHeaders=host;x-amz-content-sha256;x-amz-date;"
					   "x-amz-security-token;x-amz-storage-class, Signature="));
	kiln_buf_release(&lines);
	assert_int_equal(kiln_sigv4_request(&k, "GET", "ftp://x/", NULL, NULL, 0, 0, &lines, &e),
			 KILN_E_SPEC);
	kiln_buf_release(&lines);
}

/* kiln_sigv4_presign: the S3 API reference's presigned GET example ("Authenticating Requests:
 * Using Query Parameters"): examplebucket/test.txt, 86400 s, 2013-05-24T00:00:00Z. */
static void test_presign(void **state)
{
	struct kiln_buf url = KILN_BUF_INIT;
	struct kiln_error e;
	struct kiln_sigv4 k = s3_key;
	(void)state;
	assert_int_equal(kiln_sigv4_presign(&k, "GET", "https://examplebucket.s3.amazonaws.com"
					    "/test.txt", 86400, 1369353600.0, &url, &e), 0);
	assert_string_equal(url.data,
			    "https://examplebucket.s3.amazonaws.com/test.txt"
			    "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
			    "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3"
			    "%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400"
			    "&X-Amz-SignedHeaders=host&X-Amz-Signature="
			    "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
	kiln_buf_release(&url);
	/* AWS's bounds on X-Amz-Expires; a URL that has a query already */
	assert_int_equal(kiln_sigv4_presign(&k, "GET", "https://b.s3.amazonaws.com/x", 604801, 0,
					    &url, &e), KILN_E_SPEC);
	assert_int_equal(kiln_sigv4_presign(&k, "GET", "https://b.s3.amazonaws.com/x?a=1", 60, 0,
					    &url, &e), KILN_E_SPEC);
	kiln_buf_release(&url);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_suite),
		cmocka_unit_test(test_s3_examples),
		cmocka_unit_test(test_s3_paths),
		cmocka_unit_test(test_request),
		cmocka_unit_test(test_presign),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
