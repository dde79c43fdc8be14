/* lib/plan/verify.h: the plan's independent checker (verify.c), an oracle for the tests; not
 * part of libkiln's public API (the command never calls it). */
#ifndef KILN_PLAN_VERIFY_H
#define KILN_PLAN_VERIFY_H

#include "kiln/error.h"
#include "kiln/plan.h"
#include "kiln/spec.h"

/* Check a plan against the spec: quotas, rules, uniqueness/min_distance. 0 when all hold;
 * otherwise KILN_E_FAILED with the first violation in e. */
int kiln_plan_verify(const struct kiln_plan *p, const struct kiln_spec *s, struct kiln_error *e)
	KILN_MUST_CHECK;

#endif
