/* util/text.c: small text helpers for messages (text.h). */
#include "util/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void kiln_text_append(char *buf, size_t n, const char *fmt, ...)
{
	size_t len = strlen(buf);
	va_list ap;
	if (len + 1 >= n)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + len, n - len, fmt, ap);
	va_end(ap);
}
