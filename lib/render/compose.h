/* render/compose.h: the compose engine. Composites an item's trait layers (z-order, per-layer
 * blend mode and opacity) into one image at the spec's size, encoded in the spec's format.
 * Alpha-over at opacity 1 is the engine's own (bit for bit vips_composite's arithmetic, done
 * only where layers have visible pixels) and PNG is written with libdeflate; other blend
 * modes, WebP and JPEG go through libvips. See docs/compose.md.
 *
 * Invariants: each layer file is decoded at most once per kiln_compose (cached, shared by all
 * threads); a file that cannot be used (missing, corrupt, truncated, wrong size, not RGBA) is
 * reported with its path and the reason (kiln_compose_check names every such file once, before
 * anything renders; kiln_compose_item fails each item using one). Output bytes depend only on the inputs (no timestamps, no metadata
 * that varies), so identical inputs give byte-identical files on every run and thread count.
 * kiln_compose_item() and kiln_compose_legendary() are safe to call from many threads at once.
 */
#ifndef KILN_COMPOSE_H
#define KILN_COMPOSE_H

#include <stdint.h>
#include "kiln/buf.h"
#include "kiln/error.h"
#include "kiln/spec.h"

struct kiln_compose;

/* Make an engine for spec s (which must outlive it). Initialises libvips if needed.
 * Files are hashed by the recipe module (r, which must outlive the engine; recipes are
 * kiln_recipe_compose's) and decoded lazily, each checked against that hash, so a recipe
 * always describes its output. A missing layer file is not an error here: items using it fail.
 * The first call sets libvips up for the whole process: concurrency 1 (callers parallelise
 * across items), operation cache off, GLib warnings of the "VIPS" domain dropped (see
 * docs/compose.md). */
struct kiln_recipe;
int kiln_compose_new(struct kiln_compose **out, const struct kiln_spec *s,
		     const struct kiln_recipe *r, struct kiln_error *e) KILN_MUST_CHECK;
void kiln_compose_free(struct kiln_compose *c);

/* Decode, once each, every layer file the n items traits[0..n) use (legendaries aside),
 * before any of them renders: every file that cannot be used is named once, all of them in
 * one KILN_E_SPEC error (kiln_spec_files_report), instead of failing each item that uses it.
 * The decoded files stay cached for kiln_compose_item. */
int kiln_compose_check(struct kiln_compose *c, const uint32_t *const *traits, size_t n,
		       struct kiln_error *e) KILN_MUST_CHECK;

/* Composite the item whose trait index per layer is traits[spec->nlayers] and encode it into
 * out (appended). e->where names the layer file at fault. */
int kiln_compose_item(struct kiln_compose *c, const uint32_t *traits, struct kiln_buf *out,
		      struct kiln_error *e) KILN_MUST_CHECK;

/* A legendary: its own file, checked for size, re-encoded in the spec's format. */
int kiln_compose_legendary(struct kiln_compose *c, size_t legendary, struct kiln_buf *out,
			   struct kiln_error *e) KILN_MUST_CHECK;

#endif
