/* lib/review/assets.h: the page's files (lib/review/web/), compiled into libkiln by
 * cmake/embed-assets.cmake, so `kiln review` serves them with nothing read at run time. */
#ifndef KILN_REVIEW_ASSETS_H
#define KILN_REVIEW_ASSETS_H

#include <stddef.h>

struct kiln_review_asset {
	const char *path;          /* "/" (index.html), "/app.js", ... */
	const char *content_type;
	const unsigned char *bytes;
	size_t length;
	const char *etag;          /* "\"<sha256 of the bytes>\"", quoted as HTTP sends it */
};

/* In path order, ended by a row of NULLs; kiln_review_nassets rows before it. */
extern const struct kiln_review_asset kiln_review_assets[];
extern const size_t kiln_review_nassets;

#endif
