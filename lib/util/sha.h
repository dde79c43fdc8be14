/* lib/util/sha.h: SHA-256 through OpenSSL's libcrypto, as lowercase hex. */
#ifndef KILN_UTIL_SHA_H
#define KILN_UTIL_SHA_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/error.h"

struct kiln_sha256 {
	void *ctx; /* EVP_MD_CTX */
};

int kiln_sha256_init(struct kiln_sha256 *h) KILN_MUST_CHECK;
void kiln_sha256_update(struct kiln_sha256 *h, const void *p, size_t n);
/* Writes 32 bytes to raw (may be NULL) and 64 hex digits + NUL to hex (may be NULL); frees ctx. */
void kiln_sha256_final(struct kiln_sha256 *h, uint8_t raw[32], char hex[65]);
void kiln_sha256_abort(struct kiln_sha256 *h);

void kiln_sha256_hex(const void *p, size_t n, char hex[65]);
void kiln_sha256_raw(const void *p, size_t n, uint8_t raw[32]);
int kiln_sha256_file(const char *path, char hex[65], struct kiln_error *e) KILN_MUST_CHECK;
void kiln_hex(const uint8_t *p, size_t n, char *out); /* 2n digits + NUL */

#endif
