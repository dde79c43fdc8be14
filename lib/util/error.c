/* struct kiln_error helpers. Messages are truncated to fit the fixed buffers rather than
 * allocated, so that reporting an out-of-memory error cannot itself fail. */
#include "kiln/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void kiln_error_clear(struct kiln_error *e)
{
	if (!e)
		return;
	e->code = 0;
	e->where[0] = 0;
	e->msg[0] = 0;
}

int kiln_error_set(struct kiln_error *e, int code, const char *where, const char *fmt, ...)
{
	va_list ap;
	if (!e)
		return code;
	e->code = code;
	snprintf(e->where, sizeof e->where, "%s", where ? where : "");
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
	return code;
}

void kiln_error_prefix(struct kiln_error *e, const char *fmt, ...)
{
	char pre[512], old[sizeof e->msg];
	va_list ap;
	if (!e)
		return;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof pre, fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof old);
	snprintf(e->msg, sizeof e->msg, "%s: %s", pre, old);
}

int kiln_error_exit_code(int code)
{
	switch (code) {
	case KILN_OK:
		return 0;
	case KILN_E_USAGE:
	case KILN_E_SPEC:
	case KILN_E_INFEASIBLE:
		return 2;
	default:
		return 1;
	}
}

const char *kiln_error_name(int code)
{
	static const char *const names[] = {
		[KILN_OK] = "ok", [KILN_E_USAGE] = "usage", [KILN_E_SPEC] = "spec",
		[KILN_E_INFEASIBLE] = "infeasible", [KILN_E_IO] = "io", [KILN_E_DB] = "catalog",
		[KILN_E_NOMEM] = "nomem", [KILN_E_IMAGE] = "image", [KILN_E_STATE] = "state",
		[KILN_E_FAILED] = "failed", [KILN_E_NET] = "net",
	};
	if (code < 0 || (size_t)code >= sizeof names / sizeof names[0] || !names[code])
		return "error";
	return names[code];
}
