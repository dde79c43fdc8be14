/* lib/util/sigv4.h: AWS Signature Version 4 (HMAC-SHA256 through OpenSSL's libcrypto).
 *
 * kiln signs its own S3 and SageMaker requests: libcurl 7.88's built-in SigV4 (Debian 12)
 * signs unsorted query strings as they are and leaves out x-amz-content-sha256 (curl#9717).
 *
 * kiln_sigv4_sign follows the steps of the AWS documentation, each one kept for tests:
 *   canonical request  METHOD \n canonical URI \n canonical query \n canonical headers \n
 *                      \n signed headers \n payload hash (hex SHA-256 of the body)
 *   string to sign     AWS4-HMAC-SHA256 \n amz-date \n date/region/service/aws4_request \n
 *                      hex SHA-256 of the canonical request
 *   signing key        HMAC chain "AWS4"+secret -> date -> region -> service -> "aws4_request"
 *   Authorization      AWS4-HMAC-SHA256 Credential=KEY/scope, SignedHeaders=.., Signature=..
 *
 * The URI: for every service but S3 the path is normalised (".", "..", empty segments) and
 * every byte but the unreserved ones and '/' percent-encoded, '%' included (the "double
 * encoding" of a path already encoded on the wire); for S3 (s3 = 1) the path is taken as sent,
 * neither normalised nor encoded twice (an existing %XX stays). The query: each name and value
 * decoded, then encoded (RFC 3986 unreserved kept), pairs sorted by name then value. Headers:
 * names lower-cased, values trimmed with inner runs of blanks made one space, sorted by name
 * (stable: repeated names joined with ',' in the order given). Nothing here reads a clock or
 * the environment: the date and the secrets are the caller's.
 */
#ifndef KILN_UTIL_SIGV4_H
#define KILN_UTIL_SIGV4_H

#include <stddef.h>
#include "kiln/buf.h"
#include "kiln/error.h"

struct kiln_sigv4 {
	const char *access_key;
	const char *secret_key;
	const char *token;         /* session token (NULL: none); signed as x-amz-security-token */
	const char *region;        /* "us-east-1" */
	const char *service;       /* "s3", "sagemaker" */
	const char *amz_date;      /* "20150830T123600Z" (UTC) */
	int s3;                    /* S3's URI rules (above) */
};

struct kiln_sigv4_header {
	const char *name;
	const char *value;
};

struct kiln_sigv4_result {
	struct kiln_buf creq;      /* the canonical request */
	struct kiln_buf sts;       /* the string to sign */
	struct kiln_buf authz;     /* the Authorization header's value */
	char payload_hash[65];
};
void kiln_sigv4_result_release(struct kiln_sigv4_result *r);

/* Sign one request. target: the request line's target, path and query as sent ("/a%20b?x=1");
 * h[nh]: every header to sign, Host and X-Amz-Date included (as they go on the wire);
 * payload_hash: the hex SHA-256 of the body, or NULL to hash body[len] here. KILN_E_NOMEM,
 * or KILN_E_SPEC for a target that is not a path. r is filled (release it either way). */
int kiln_sigv4_sign(const struct kiln_sigv4 *k, const char *method, const char *target,
		    const struct kiln_sigv4_header *h, size_t nh, const void *body, size_t len,
		    const char *payload_hash, struct kiln_sigv4_result *r, struct kiln_error *e)
	KILN_MUST_CHECK;

/* A whole request for the wire: url "https://host[:port]/path?query"; extra: more headers to
 * sign and send ("Name: value" lines, '\n'-separated, may be NULL). Fills lines with every
 * header to send beside them, one "Name: value" a line, '\n'-separated: X-Amz-Date,
 * X-Amz-Content-Sha256 (always: S3 needs it and it costs others nothing), X-Amz-Security-Token
 * when there is a token, and Authorization. The Host signed is the URL's (with a port that is
 * not the scheme's default), as libcurl sends it. now: Unix seconds. */
int kiln_sigv4_request(const struct kiln_sigv4 *k, const char *method, const char *url,
		       const char *extra, const void *body, size_t len, double now,
		       struct kiln_buf *lines, struct kiln_error *e) KILN_MUST_CHECK;

/* The same with the payload's hex SHA-256 given (a body streamed from a file). */
int kiln_sigv4_request_hashed(const struct kiln_sigv4 *k, const char *method, const char *url,
			      const char *extra, const char *payload_hash, double now,
			      struct kiln_buf *lines, struct kiln_error *e) KILN_MUST_CHECK;

/* A presigned URL (query-string authentication, what S3 calls a presigned URL) appended to
 * out: url (no query) with X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date, X-Amz-Expires
 * (expires seconds, 1 to 604800, AWS's bounds), X-Amz-Security-Token when there is a token,
 * X-Amz-SignedHeaders=host and X-Amz-Signature; the payload signed as UNSIGNED-PAYLOAD. Whoever
 * holds the URL may make that one request until it expires, without the keys. now: Unix
 * seconds. */
int kiln_sigv4_presign(const struct kiln_sigv4 *k, const char *method, const char *url,
		       unsigned expires, double now, struct kiln_buf *out, struct kiln_error *e)
	KILN_MUST_CHECK;

/* RFC 3986 percent-encoding of s[n] into out: unreserved bytes as they are, '/' too when
 * keep_slash, every other byte %XX (upper-case hex). KILN_E_NOMEM. */
int kiln_sigv4_encode(const char *s, size_t n, int keep_slash, struct kiln_buf *out)
	KILN_MUST_CHECK;

#endif
