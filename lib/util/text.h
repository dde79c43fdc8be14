/* util/text.h: small text helpers for messages. */
#ifndef KILN_UTIL_TEXT_H
#define KILN_UTIL_TEXT_H

#include <stddef.h>
#include "kiln/error.h"

/* Append printf-style text to the NUL-terminated buf of n bytes; what does not fit is cut. */
void kiln_text_append(char *buf, size_t n, const char *fmt, ...) KILN_PRINTF(3, 4);

#endif
