/* extras.c: the file a token ships beside its image (extras.h): the polish stage's vectorize
 * SVG beside a raster image, or, with image.format svg (the SVG is the image), the PNG it was
 * made from. Released as images/<id>.<ext>, listed in the token's metadata and in
 * provenance.json's extras. */
#include "release/extras.h"

#include <string.h>

struct extras {
	const struct kiln_items *items;
	char (*extra)[65];
	int svg_image;
};

static int one(void *user, const struct kiln_polish_step *st)
{
	struct extras *s = user;
	const struct kiln_item *it;
	size_t i;
	if (strcmp(st->kind, "vectorize") || !(it = kiln_items_find(s->items, st->item_id, &i)) ||
	    strlen(st->output) != 64 || strlen(st->input) != 64)
		return 0;
	if (s->svg_image) {
		/* the step that made the token's image: its input is the PNG */
		if (st->image && !strcmp(st->output, it->image))
			memcpy(s->extra[i], st->input, 65);
	} else if (!st->image && !strcmp(st->input, it->image)) {
		/* made on the final image: the chain is the token's current one */
		memcpy(s->extra[i], st->output, 65);
	}
	return 0;
}

int kiln_release_extras(struct kiln_catalog *c, const struct kiln_spec *s,
			const struct kiln_items *items, char (*extra)[65], struct kiln_error *e)
{
	struct extras x = {items, extra, s->image_svg};
	for (size_t i = 0; i < items->n; i++)
		extra[i][0] = 0;
	return kiln_catalog_polish_each(c, 0, 0, one, &x, e);
}

const char *kiln_release_image_ext(const struct kiln_spec *s)
{
	return s->image_svg ? "svg" : kiln_format_ext(s->format);
}

const char *kiln_release_image_mime(const struct kiln_spec *s)
{
	return s->image_svg ? "image/svg+xml" : kiln_format_mime(s->format);
}

const char *kiln_release_extra_ext(const struct kiln_spec *s)
{
	return s->image_svg ? kiln_format_ext(s->format) : "svg";
}

const char *kiln_release_extra_mime(const struct kiln_spec *s)
{
	return s->image_svg ? kiln_format_mime(s->format) : "image/svg+xml";
}
