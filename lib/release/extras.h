/* lib/release/extras.h: the files a token ships beside its image (release.c). */
#ifndef KILN_RELEASE_EXTRAS_H
#define KILN_RELEASE_EXTRAS_H

#include "kiln/catalog.h"

/* The SVG of each token of items (its final image's, from the polish chain): svg[i] gets the
 * store SHA-256 of the output of the token's last vectorize step made on items->v[i].image
 * (the final image, kiln_catalog_final_images()), "" when it has none. items in id order. */
int kiln_release_svgs(struct kiln_catalog *c, const struct kiln_items *items, char (*svg)[65],
		      struct kiln_error *e) KILN_MUST_CHECK;

#endif
