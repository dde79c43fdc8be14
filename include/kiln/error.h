/* kiln/error.h: how every fallible libkiln function reports failure.
 *
 * Fallible functions return int: 0 on success, else a KILN_E_* code, and fill the caller's
 * struct kiln_error (never a global buffer). `where` names what the error concerns: a
 * "file:line:col", an item ("item 17"), an endpoint URL or a path. `msg` says what is wrong
 * and what to do about it. The CLI prints "kiln: <where>: <msg>" and maps the code to an exit
 * status with kiln_error_exit_code().
 */
#ifndef KILN_ERROR_H
#define KILN_ERROR_H

#include <stddef.h>

#if defined(__GNUC__)
#define KILN_MUST_CHECK __attribute__((warn_unused_result))
#define KILN_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define KILN_MUST_CHECK
#define KILN_PRINTF(a, b)
#endif

enum kiln_code {
	KILN_OK = 0,
	KILN_E_USAGE,      /* bad command-line usage                      -> exit 2 */
	KILN_E_SPEC,       /* kiln.yaml is wrong                           -> exit 2 */
	KILN_E_INFEASIBLE, /* the spec's quotas/rules/uniqueness conflict  -> exit 2 */
	KILN_E_IO,         /* file system                                  -> exit 1 */
	KILN_E_DB,         /* catalog                                      -> exit 1 */
	KILN_E_NOMEM,      /* allocation failed                            -> exit 1 */
	KILN_E_IMAGE,      /* an image could not be read or made           -> exit 1 */
	KILN_E_STATE,      /* the project is not in the state the verb needs (e.g. not planned) -> exit 1 */
	KILN_E_FAILED,     /* a job or gate failed                         -> exit 1 */
	KILN_E_NET,        /* an endpoint failed                           -> exit 1 */
};

struct kiln_error {
	int code;
	char where[512];
	char msg[1536];
};

/* Clear e (code 0, empty strings). e may be NULL. */
void kiln_error_clear(struct kiln_error *e);

/* Fill e and return code, so callers can write `return kiln_error_set(e, ...)`.
 * e may be NULL (the error is then only returned). where may be NULL. */
int kiln_error_set(struct kiln_error *e, int code, const char *where, const char *fmt, ...)
	KILN_PRINTF(4, 5);

/* Prefix e->msg with more context ("while X: " + old message). */
void kiln_error_prefix(struct kiln_error *e, const char *fmt, ...) KILN_PRINTF(2, 3);

/* Exit status for a code: 0 ok, 2 usage/spec/infeasible, 1 otherwise. */
int kiln_error_exit_code(int code);

/* Short name of a code ("spec", "io", ...), for --json output. */
const char *kiln_error_name(int code);

#endif
