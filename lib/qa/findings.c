/* qa/findings.c: the findings list every QA check writes to (kiln/qa.h).
 *
 * A finding is a stable check id, a severity, the file and JSON path it concerns, a message,
 * and the token it concerns (has_item/item), which the list stamps from its "current token"
 * (kiln_findings_set_item) so the code that knows which token it is checking sets it once.
 * Invariants: every string is owned by the list; an append that fails leaves the list as it
 * was. Sizes: a few hundred bytes a finding; the array doubles.
 */
#include "kiln/qa.h"
#include "util/alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the findings list ---------------------------------------------------------------- */

void kiln_findings_init(struct kiln_findings *f)
{
	f->v = NULL;
	f->n = f->cap = 0;
	f->cur_has_item = 0;
	f->cur_item = 0;
}

void kiln_findings_set_item(struct kiln_findings *f, int has, uint64_t item)
{
	f->cur_has_item = has != 0;
	f->cur_item = has ? item : 0;
}

void kiln_findings_release(struct kiln_findings *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->v[i].check);
		free(f->v[i].file);
		free(f->v[i].path);
		free(f->v[i].message);
	}
	free(f->v);
	kiln_findings_init(f);
}

int kiln_findings_add(struct kiln_findings *f, const char *check, int severity, const char *file,
		      const char *path, const char *fmt, ...)
{
	char msg[1024];
	struct kiln_finding *x;
	va_list ap;
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 16;
		struct kiln_finding *v = kiln_reallocarray(f->v, cap, sizeof *v);
		if (!v)
			return KILN_E_NOMEM;
		f->v = v, f->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	x = &f->v[f->n];
	x->check = kiln_strdup(check);
	x->severity = severity;
	x->file = kiln_strdup(file ? file : "");
	x->path = kiln_strdup(path ? path : "");
	x->message = kiln_strdup(msg);
	x->has_item = f->cur_has_item;
	x->item = f->cur_has_item ? f->cur_item : 0;
	if (!x->check || !x->file || !x->path || !x->message) {
		free(x->check), free(x->file), free(x->path), free(x->message);
		return KILN_E_NOMEM;
	}
	f->n++;
	return 0;
}

size_t kiln_findings_count(const struct kiln_findings *f, int severity)
{
	size_t c = 0;
	for (size_t i = 0; i < f->n; i++)
		if (severity < 0 || f->v[i].severity == severity)
			c++;
	return c;
}

const char *kiln_severity_name(int severity)
{
	return severity == KILN_SEV_WARNING ? "warning" : "error";
}

