/* lib/release/extras.h: the files a token ships beside its image (release.c). */
#ifndef KILN_RELEASE_EXTRAS_H
#define KILN_RELEASE_EXTRAS_H

#include "kiln/catalog.h"
#include "kiln/spec.h"

/* The file each token of items ships beside its image, from its polish chain: extra[i] gets
 * the store SHA-256 of it, "" when it has none. items in id order, their image the final one
 * (kiln_catalog_final_images()).
 * - a raster image: the output of the token's last vectorize step made on it (its SVG);
 * - image.format svg (s->image_svg, the image is that SVG): the PNG the SVG was made from
 *   (the vectorize step's input), kept for readers that take no SVG (Metaplex's image). */
int kiln_release_extras(struct kiln_catalog *c, const struct kiln_spec *s,
			const struct kiln_items *items, char (*extra)[65],
			struct kiln_error *e) KILN_MUST_CHECK;

/* The released image's and the extra file's extension and MIME type ("svg", "image/svg+xml"
 * with image.format svg; else the spec's raster format, and the SVG as the extra). */
const char *kiln_release_image_ext(const struct kiln_spec *s);
const char *kiln_release_image_mime(const struct kiln_spec *s);
const char *kiln_release_extra_ext(const struct kiln_spec *s);
const char *kiln_release_extra_mime(const struct kiln_spec *s);

#endif
