/* kiln/error.h: how every fallible libkiln function reports failure.
 *
 * Fallible functions return int: 0 on success, else a KILN_E_* code, and fill the caller's
 * struct kiln_error (never a global buffer). `where` names what the error concerns: a
 * "file:line:col", an item ("item 17"), an endpoint URL or a path. `msg` says what is wrong
 * and what is wrong. What the user should do next, when that is one of kiln's own commands or
 * flags, is not written into msg: the library sets a hint code (enum kiln_hint) and the command
 * turns it into text in its own words (src/hint.c), as git's advice.c does. So the library never
 * names a command-line verb or flag, and another front end (the review web app) can say the
 * same thing its own way. The CLI prints "kiln: <where>: <msg>", then "hint: <text>", and maps
 * the code to an exit status with kiln_error_exit_code().
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
	KILN_E_NOTFOUND,   /* a search gave up within its effort (no cause proven) -> exit 1 */
};

/* What to do next, as a front end should phrase it. Append new codes at the end (the numbers
 * appear in --json output by name only, kiln_hint_name()). */
enum kiln_hint {
	KILN_HINT_NONE = 0,
	KILN_HINT_INIT,            /* no project here: start one, or name the folder */
	KILN_HINT_PLAN,            /* the plan is missing or older than the spec: plan again */
	KILN_HINT_RENDER,          /* items have no current image: render (hint_arg: an item id) */
	KILN_HINT_RENDER_FORCE,    /* a stored image is wrong: render that item again, forced
	                              (hint_arg: the item id) */
	KILN_HINT_QA,              /* QA has not run, or is stale: run it */
	KILN_HINT_QA_FAILED,       /* QA failed tokens: fix and re-run QA, or release anyway */
	KILN_HINT_RELEASE,         /* no release folder: release first */
	KILN_HINT_RELEASE_FORCE,   /* an older release lacks a file: release again, forced */
	KILN_HINT_STARTING_INDEX,  /* reveal pending: release with a starting index */
	KILN_HINT_RE_REVEAL,       /* a starting index is recorded: keep it or re-reveal */
	KILN_HINT_LIST_ITEMS,      /* no such item: list them */
	KILN_HINT_DRY_RUN_AI,      /* dry runs are for AI engines only */
	KILN_HINT_LOCKED,          /* another kiln holds the project lock (hint_arg: its pid) */
	KILN_HINT_ALLOW_PATH,      /* a path leaves the project: move it in, or allow its folder */
	KILN_HINT_LAYER_ORDER,     /* a HashLips import's layer order: name the layer folders,
	                              bottom first */
	KILN_HINT_EFFORT,          /* the planner gave up within its effort: try harder
	                              (hint_arg: a larger effort) */
	KILN_HINT_REVIEW,          /* tokens are not approved: review them, or release anyway */
	KILN_HINT_POLISH_EDIT,     /* an imported edit was made on an image the token no longer
	                              has there: import it again, or drop it (hint_arg: the id) */
	KILN_HINT_POLISH,          /* tokens are not polished as the spec says: polish them */
	KILN_HINT_KEYS_INIT,       /* no studio signing key: make one (the portfolio signs with it) */
	KILN_HINT_ARTIST_EDIT,     /* re-rendering cannot change a token (composed from its traits,
	                              or a supplied file): reject it, or import an artist's edit
	                              (hint_arg: the id) */
	KILN_HINT_TRAIN_RUNNING,   /* a run of training %s is under way: follow or cancel it first */
	KILN_HINT__COUNT
};

struct kiln_error {
	int code;
	int hint;                  /* enum kiln_hint; KILN_HINT_NONE when there is none */
	char where[512];
	char msg[1536];
	char hint_arg[128];        /* what the hint names (an item id, a pid), or "" */
};

/* Clear e (code 0, empty strings). e may be NULL. */
void kiln_error_clear(struct kiln_error *e);

/* Fill e and return code, so callers can write `return kiln_error_set(e, ...)`.
 * e may be NULL (the error is then only returned). where may be NULL. */
int kiln_error_set(struct kiln_error *e, int code, const char *where, const char *fmt, ...)
	KILN_PRINTF(4, 5);

/* Attach a hint (and what it names, or NULL) to e, which kiln_error_set has filled; returns
 * e->code so that `return kiln_error_hint(e, KILN_HINT_PLAN, NULL);` works. e may be NULL. */
int kiln_error_hint(struct kiln_error *e, int hint, const char *arg);

/* Stable name of a hint ("plan", "render_force", ...), for --json output; "" for none. */
const char *kiln_hint_name(int hint);

/* Prefix e->msg with more context ("while X: " + old message). */
void kiln_error_prefix(struct kiln_error *e, const char *fmt, ...) KILN_PRINTF(2, 3);

/* Exit status for a code: 0 ok, 2 usage/spec/infeasible, 1 otherwise. */
int kiln_error_exit_code(int code);

/* Short name of a code ("spec", "io", ...), for --json output. */
const char *kiln_error_name(int code);

#endif
