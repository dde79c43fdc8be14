/* kiln/buf.h: the one growable byte buffer (like git's strbuf, curl's dynbuf).
 *
 * A buffer is always NUL-terminated when data != NULL. It refuses to grow past `max` bytes
 * (KILN_E_NOMEM), so a hostile input cannot make kiln eat the machine. The buffer owns `data`
 * until kiln_buf_detach() hands it to the caller, who then frees it with free().
 */
#ifndef KILN_BUF_H
#define KILN_BUF_H

#include <stddef.h>
#include <stdarg.h>
#include "kiln/error.h"

struct kiln_buf {
	char *data;  /* owned; NULL until something is added */
	size_t len;
	size_t cap;
	size_t max;  /* 0 means KILN_BUF_DEFAULT_MAX */
};

#define KILN_BUF_DEFAULT_MAX ((size_t)1 << 31)
#define KILN_BUF_INIT { NULL, 0, 0, 0 }

void kiln_buf_init(struct kiln_buf *b, size_t max);
void kiln_buf_release(struct kiln_buf *b);  /* frees data, back to empty */
void kiln_buf_reset(struct kiln_buf *b);    /* len = 0, keeps memory */
int kiln_buf_grow(struct kiln_buf *b, size_t extra) KILN_MUST_CHECK;
int kiln_buf_add(struct kiln_buf *b, const void *p, size_t n) KILN_MUST_CHECK;
int kiln_buf_adds(struct kiln_buf *b, const char *s) KILN_MUST_CHECK;
int kiln_buf_addf(struct kiln_buf *b, const char *fmt, ...) KILN_PRINTF(2, 3) KILN_MUST_CHECK;
int kiln_buf_vaddf(struct kiln_buf *b, const char *fmt, va_list ap) KILN_MUST_CHECK;
/* Hand data over to the caller (never NULL: an empty buffer gives ""); the buffer is empty after. */
char *kiln_buf_detach(struct kiln_buf *b, size_t *len);

#endif
