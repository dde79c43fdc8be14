/* The growable buffer. Growth doubles (amortised O(1) appends) and stops at b->max. */
#include "kiln/buf.h"
#include "util/alloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kiln_buf_init(struct kiln_buf *b, size_t max)
{
	b->data = NULL;
	b->len = b->cap = 0;
	b->max = max;
}

void kiln_buf_release(struct kiln_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void kiln_buf_reset(struct kiln_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = 0;
}

int kiln_buf_grow(struct kiln_buf *b, size_t extra)
{
	size_t max = b->max ? b->max : KILN_BUF_DEFAULT_MAX;
	size_t need, cap;
	char *p;
	if (extra > max || b->len + extra > max)
		return KILN_E_NOMEM;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	if (cap > max + 1)
		cap = max + 1;
	p = kiln_realloc(b->data, cap);
	if (!p)
		return KILN_E_NOMEM;
	if (!b->data)
		p[0] = 0;
	b->data = p;
	b->cap = cap;
	return 0;
}

int kiln_buf_add(struct kiln_buf *b, const void *p, size_t n)
{
	int rc = kiln_buf_grow(b, n);
	if (rc)
		return rc;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = 0;
	return 0;
}

int kiln_buf_adds(struct kiln_buf *b, const char *s)
{
	return kiln_buf_add(b, s, strlen(s));
}

int kiln_buf_vaddf(struct kiln_buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n, rc;
	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return KILN_E_IO;
	rc = kiln_buf_grow(b, (size_t)n);
	if (rc)
		return rc;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int kiln_buf_addf(struct kiln_buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;
	va_start(ap, fmt);
	rc = kiln_buf_vaddf(b, fmt, ap);
	va_end(ap);
	return rc;
}

char *kiln_buf_detach(struct kiln_buf *b, size_t *len)
{
	char *p = b->data;
	if (!p) {
		p = kiln_malloc(1);
		if (p)
			p[0] = 0;
	}
	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}
