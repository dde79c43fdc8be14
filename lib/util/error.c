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
	e->hint = KILN_HINT_NONE;
	e->where[0] = 0;
	e->msg[0] = 0;
	e->hint_arg[0] = 0;
}

int kiln_error_set(struct kiln_error *e, int code, const char *where, const char *fmt, ...)
{
	va_list ap;
	if (!e)
		return code;
	e->code = code;
	e->hint = KILN_HINT_NONE;
	e->hint_arg[0] = 0;
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
		[KILN_E_NOTFOUND] = "not_found",
	};
	if (code < 0 || (size_t)code >= sizeof names / sizeof names[0] || !names[code])
		return "error";
	return names[code];
}

int kiln_error_hint(struct kiln_error *e, int hint, const char *arg)
{
	if (!e)
		return KILN_E_FAILED;
	e->hint = hint > KILN_HINT_NONE && hint < KILN_HINT__COUNT ? hint : KILN_HINT_NONE;
	snprintf(e->hint_arg, sizeof e->hint_arg, "%s", arg ? arg : "");
	return e->code;
}

const char *kiln_hint_name(int hint)
{
	static const char *const names[KILN_HINT__COUNT] = {
		[KILN_HINT_NONE] = "", [KILN_HINT_INIT] = "init", [KILN_HINT_PLAN] = "plan",
		[KILN_HINT_RENDER] = "render", [KILN_HINT_RENDER_FORCE] = "render_force",
		[KILN_HINT_QA] = "qa", [KILN_HINT_QA_FAILED] = "qa_failed",
		[KILN_HINT_RELEASE] = "release", [KILN_HINT_RELEASE_FORCE] = "release_force",
		[KILN_HINT_STARTING_INDEX] = "starting_index", [KILN_HINT_RE_REVEAL] = "re_reveal",
		[KILN_HINT_LIST_ITEMS] = "list_items", [KILN_HINT_DRY_RUN_AI] = "dry_run_ai",
		[KILN_HINT_LOCKED] = "locked", [KILN_HINT_ALLOW_PATH] = "allow_path",
		[KILN_HINT_LAYER_ORDER] = "layer_order", [KILN_HINT_EFFORT] = "effort",
		[KILN_HINT_REVIEW] = "review",
		[KILN_HINT_POLISH_EDIT] = "polish_edit", [KILN_HINT_POLISH] = "polish",
		[KILN_HINT_KEYS_INIT] = "keys_init", [KILN_HINT_ARTIST_EDIT] = "artist_edit",
		[KILN_HINT_TRAIN_RUNNING] = "train_running",
	};
	if (hint <= 0 || hint >= KILN_HINT__COUNT || !names[hint])
		return "";
	return names[hint];
}
