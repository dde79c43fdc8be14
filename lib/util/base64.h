/* lib/util/base64.h: standard base64 (RFC 4648 section 4, with padding) through OpenSSL. */
#ifndef KILN_UTIL_BASE64_H
#define KILN_UTIL_BASE64_H

#include <stddef.h>
#include "kiln/buf.h"

/* Append the base64 of n bytes to out (no newline). 0, or -1 out of memory. */
int kiln_base64_add(struct kiln_buf *out, const void *p, size_t n);
/* Decode len characters of standard base64 (padding required, no whitespace) and append the
 * bytes to out. 0, -1 when the text is not base64, -2 out of memory. */
int kiln_base64_decode(const char *s, size_t len, struct kiln_buf *out);

#endif
