/* kiln/hashlips.h: import a HashLips art engine layers folder as a kiln.yaml.
 *
 * HashLips layout: LAYERS/<Layer>/<Trait name>#<weight>.png (the weight after the rarity
 * delimiter '#'; missing or not a number means weight 1, as HashLips reads it). The layer
 * order (z-order) comes from o->order when given; else from HashLips' src/config.js beside the
 * layers folder (layersOrder); else from numeric prefixes of the folder names ("01_Body");
 * else background-like names first and the rest alphabetically. *how says which was used.
 */
#ifndef KILN_HASHLIPS_H
#define KILN_HASHLIPS_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/buf.h"
#include "kiln/error.h"

struct kiln_hashlips_opts {
	const char *layers_dir;       /* the HashLips layers/ folder */
	const char *project_dir;      /* where kiln.yaml goes: file paths are made relative to it */
	const char *const *order;     /* layer names bottom first, or NULL */
	size_t norder;
	uint64_t size;                /* 0: min(combinations, 100) */
	const char *name;             /* collection name, NULL: the project folder's name */
};

/* Append the kiln.yaml text to yaml. how (may be NULL) gets a sentence on the layer order. */
int kiln_hashlips_import(const struct kiln_hashlips_opts *o, struct kiln_buf *yaml, char *how,
			 size_t howcap, struct kiln_error *e) KILN_MUST_CHECK;

#endif
