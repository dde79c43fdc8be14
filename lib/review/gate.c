/* review/gate: the review as a gate of the release. The command calls it before the release
 * stage (the release module is below review and never calls it). */
#include "review/internal.h"
#include "util/alloc.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIRST 8

struct kind {
	const char *name;
	uint64_t n;
	uint64_t first[FIRST];
};

static void add(struct kind *k, uint64_t id)
{
	if (k->n < FIRST)
		k->first[k->n] = id;
	k->n++;
}

static size_t list(char *out, size_t cap, const struct kind *k)
{
	size_t len = 0;
	if (!k->n || cap < 2)
		return 0;
	len += (size_t)snprintf(out, cap, "%" PRIu64 " %s (", k->n, k->name);
	for (uint64_t i = 0; i < k->n && i < FIRST && len < cap; i++)
		len += (size_t)snprintf(out + len, cap - len, "%s%" PRIu64, i ? ", " : "",
					k->first[i]);
	if (len < cap)
		len += (size_t)snprintf(out + len, cap - len, "%s)", k->n > FIRST ? ", ..." : "");
	return len < cap ? len : cap - 1;
}

int kiln_review_gate(struct kiln_project *p, int allow_unreviewed, uint64_t *blocked,
		     struct kiln_error *e)
{
	const struct kiln_spec *sp = p->spec;
	unsigned need = sp->review_approvals ? sp->review_approvals : 1;
	struct kind k[4] = {{"pending", 0, {0}}, {"rejected", 0, {0}}, {"to regenerate", 0, {0}},
			    {"short of approvals", 0, {0}}};
	struct kiln_review_state *v = NULL;
	struct kiln_items items;
	size_t n = 0, j = 0, len = 0;
	uint64_t total;
	char msg[900];
	int rc;
	if (blocked)
		*blocked = 0;
	if (!sp->review_required)
		return 0;
	if ((rc = kiln_catalog_items(p->catalog, sp, &items, e)))
		return rc;
	if ((rc = kiln_catalog_review_states(p->catalog, &v, &n, e)))
		goto out;
	for (size_t i = 0; i < items.n; i++) {
		uint64_t id = items.v[i].id;
		const struct kiln_review_state *st;
		while (j < n && v[j].item_id < id)
			j++;
		st = j < n && v[j].item_id == id ? &v[j] : NULL;
		if (!st || !strcmp(st->status, "pending"))
			add(&k[0], id);
		else if (!strcmp(st->status, "rejected"))
			add(&k[1], id);
		else if (!strcmp(st->status, "regenerate"))
			add(&k[2], id);
		else if (st->approvals < need)
			add(&k[3], id);
	}
	total = k[0].n + k[1].n + k[2].n + k[3].n;
	if (blocked)
		*blocked = total;
	if (!total)
		goto out;
	for (int i = 0; i < 4; i++) {
		if (k[i].n && len)
			len += (size_t)snprintf(msg + len, sizeof msg - len, "; ");
		if (len < sizeof msg)
			len += list(msg + len, sizeof msg - len, &k[i]);
	}
	if (allow_unreviewed) {
		json_t *d = json_pack("{s:I, s:I, s:I, s:I, s:I}", "unreviewed", (json_int_t)total,
				      "pending", (json_int_t)k[0].n, "rejected",
				      (json_int_t)k[1].n, "regenerate", (json_int_t)k[2].n,
				      "short_of_approvals", (json_int_t)k[3].n);
		char *text = d ? json_dumps(d, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
		json_decref(d);
		if (!text) {
			rc = kiln_error_set(e, KILN_E_NOMEM, p->dir, "out of memory");
			goto out;
		}
		rc = kiln_catalog_event(p->catalog, "review_override", 0, 0, text, e);
		free(text);
		goto out;
	}
	kiln_error_set(e, KILN_E_FAILED, p->spec_path, "review.required: %" PRIu64 " of %zu "
		       "tokens are not approved%s: %s", total, items.n,
		       need > 1 ? " by enough reviewers" : "", msg);
	rc = kiln_error_hint(e, KILN_HINT_REVIEW, NULL);
out:
	kiln_review_states_free(v, n);
	kiln_items_release(&items);
	return rc;
}
