/* kiln/catalog.h: the catalog, .kiln/catalog.db, the one source of truth about a project.
 *
 * Items (one per token: traits, seed, status, recipe and image hash of the accepted render,
 * rarity), renders (every attempt: engine, endpoint, recipe, seed, timings, result, error),
 * an append-only event log, and key/value meta. SQLite in WAL mode; every write is a
 * transaction. SQL stays inside lib/catalog.c so another backend (PostgreSQL) can take its
 * place behind this header.
 *
 * Item traits are stored by layer and value *name* (a JSON object in layer order), so a plan
 * survives edits to the spec; kiln_catalog_items() maps them onto the current spec.
 */
#ifndef KILN_CATALOG_H
#define KILN_CATALOG_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/error.h"
#include "kiln/plan.h"
#include "kiln/spec.h"

struct kiln_catalog;

enum kiln_item_status { KILN_ITEM_PLANNED, KILN_ITEM_RENDERED, KILN_ITEM_FAILED };

/* An item as the catalog knows it. Strings owned by the kiln_items that holds it. */
struct kiln_item {
	uint64_t id;
	uint64_t seed;
	long legendary;           /* index into spec->legendaries, or -1 */
	char *legendary_name;     /* as stored (NULL for generated) */
	uint32_t *traits;         /* nlayers indexes into the current spec (KILN_PLAN_UNSET when
	                             the stored value no longer exists) */
	char *traits_json;        /* {"Layer": "Value", ...} as stored */
	enum kiln_item_status status;
	char recipe[65];          /* recipe of the accepted render ("" if none) */
	char image[65];           /* sha256 of the accepted image in the store ("" if none) */
	uint64_t image_bytes;
	char *error;              /* why the last render failed, or NULL */
	double rarity_score;
	uint64_t rarity_rank;     /* 0 when not computed */
};

struct kiln_items {
	struct kiln_item *v;
	size_t n;
	size_t nlayers;
	uint32_t *matrix;         /* owned: n * nlayers */
};

int kiln_catalog_open(struct kiln_catalog **out, const char *path, struct kiln_error *e)
	KILN_MUST_CHECK;
void kiln_catalog_free(struct kiln_catalog *c);

/* All items in id order, traits mapped onto spec s. */
int kiln_catalog_items(struct kiln_catalog *c, const struct kiln_spec *s, struct kiln_items *out,
		       struct kiln_error *e) KILN_MUST_CHECK;
/* One item (n == 0 when there is no such id). */
int kiln_catalog_item(struct kiln_catalog *c, const struct kiln_spec *s, uint64_t id,
		      struct kiln_items *out, struct kiln_error *e) KILN_MUST_CHECK;
void kiln_items_release(struct kiln_items *it);

/* Replace the plan in one transaction: items are inserted or updated (an item whose traits or
 * seed changed loses its accepted render and goes back to planned), items not in the plan are
 * removed, rarity scores and ranks stored (scores/ranks may be NULL), meta plan_sha set, and a
 * "plan" event logged with detail_json. */
int kiln_catalog_save_plan(struct kiln_catalog *c, const struct kiln_spec *s,
			   const struct kiln_plan *p, const double *scores, const uint64_t *ranks,
			   const char *detail_json, struct kiln_error *e) KILN_MUST_CHECK;

/* One render attempt's outcome. */
struct kiln_render_record {
	uint64_t item_id;
	const char *engine;
	const char *endpoint;     /* NULL for local engines */
	const char *recipe;
	uint64_t seed;
	const char *request_json; /* what was asked (NULL for compose); never holds secrets */
	int ok;
	int http_status;          /* 0 for local engines */
	const char *image;        /* sha256 when ok */
	uint64_t bytes;
	const char *error;        /* when !ok: "where: message" */
	double started, finished; /* unix seconds */
};

/* Record attempts in one transaction: a renders row each, the item's status/recipe/image/error
 * updated, a "render" event each. */
int kiln_catalog_record_renders(struct kiln_catalog *c, const struct kiln_render_record *r,
				size_t n, struct kiln_error *e) KILN_MUST_CHECK;

/* Append an event (kind: "plan", "render", "release", ...; item_id 0 = collection-wide). */
int kiln_catalog_event(struct kiln_catalog *c, const char *kind, uint64_t item_id,
		       const char *detail_json, struct kiln_error *e) KILN_MUST_CHECK;

/* meta key/value. get: *value is NULL (not an error) when the key is absent; caller frees. */
int kiln_catalog_meta_get(struct kiln_catalog *c, const char *key, char **value,
			  struct kiln_error *e) KILN_MUST_CHECK;
int kiln_catalog_meta_set(struct kiln_catalog *c, const char *key, const char *value,
			  struct kiln_error *e) KILN_MUST_CHECK;

/* Counts for `kiln status`. */
struct kiln_catalog_counts {
	uint64_t items, planned, rendered, failed, legendaries;
	uint64_t renders, renders_failed, events;
	double render_seconds;    /* sum of finished-started over renders */
};
int kiln_catalog_counts(struct kiln_catalog *c, struct kiln_catalog_counts *out,
			struct kiln_error *e) KILN_MUST_CHECK;

/* Renders of one item, newest first, as a JSON array text (caller frees). */
int kiln_catalog_item_renders_json(struct kiln_catalog *c, uint64_t id, char **json,
				   struct kiln_error *e) KILN_MUST_CHECK;

#endif
