/* lib/spec/qa_checks.h: the ids of every check QA reports, with their default severities.
 * Data only: the spec validates the check ids of qa.checks against it, and lib/qa makes its
 * findings under these ids, so neither depends on the other. */
#ifndef KILN_SPEC_QA_CHECKS_H
#define KILN_SPEC_QA_CHECKS_H

#include <stddef.h>

struct kiln_qa_check_def {
	const char *id;       /* stable id, e.g. "image.near_duplicate" */
	int severity;         /* default: 0 error, 1 warning (enum kiln_severity in kiln/qa.h) */
};

/* The table, terminated by {NULL, 0}; *n gets the count (n may be NULL). */
const struct kiln_qa_check_def *kiln_qa_check_defs(size_t *n);

/* Every id as a NULL-terminated list (the same order); *n gets the count (n may be NULL). */
const char *const *kiln_qa_check_ids(size_t *n);
/* 1 when id is a check id, or a prefix ending in '.' of at least one ("metaplex."). */
int kiln_qa_check_known(const char *id);

#endif
