/* extras.c: the files a token ships beside its image (extras.h). Today the polish stage's
 * vectorize SVGs: released as images/<id>.svg and listed in the token's metadata. */
#include "release/extras.h"

#include <string.h>

struct svgs {
	const struct kiln_items *items;
	char (*svg)[65];
};

static const struct kiln_item *find(const struct kiln_items *items, uint64_t id, size_t *at)
{
	size_t lo = 0, hi = items->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (items->v[mid].id == id) {
			*at = mid;
			return &items->v[mid];
		}
		if (items->v[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int one(void *user, const struct kiln_polish_step *st)
{
	struct svgs *s = user;
	const struct kiln_item *it;
	size_t i;
	if (st->image || strcmp(st->kind, "vectorize") || !(it = find(s->items, st->item_id, &i)))
		return 0;
	/* made on the final image: the chain is the token's current one */
	if (!strcmp(st->input, it->image) && strlen(st->output) == 64)
		memcpy(s->svg[i], st->output, 65);
	return 0;
}

int kiln_release_svgs(struct kiln_catalog *c, const struct kiln_items *items, char (*svg)[65],
		      struct kiln_error *e)
{
	struct svgs s = {items, svg};
	for (size_t i = 0; i < items->n; i++)
		svg[i][0] = 0;
	return kiln_catalog_polish_each(c, 0, 0, one, &s, e);
}
