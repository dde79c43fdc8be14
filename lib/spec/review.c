/* spec/review: the review: block. `required` makes the review a gate of the release (every
 * token approved); `approvals` is how many distinct reviewers must approve each token. */
#include "spec/internal.h"

int kiln_spec__parse_review(struct ctx *c, struct fy_node *n)
{
	static const char *const keys[] = {"required", "approvals"};
	struct fy_node *v;
	uint64_t k;
	int rc;
	c->s->review_approvals = 1;
	if ((rc = want_map(c, n, "review")) || (rc = check_keys(c, n, "review", keys, 2)))
		return rc;
	if ((v = get(n, "required")) &&
	    (rc = get_bool(c, v, "review.required", &c->s->review_required)))
		return rc;
	if ((v = get(n, "approvals"))) {
		if ((rc = get_u64(c, v, "review.approvals", 1, 100, &k)))
			return rc;
		c->s->review_approvals = (unsigned)k;
	}
	return 0;
}
