/* kiln/catalog.h: the catalog, .kiln/catalog.db, the one source of truth about a project.
 *
 * Items (one per token: traits, seed, status, recipe and image hash of the accepted render,
 * rarity), renders (every attempt: engine, endpoint, recipe, seed, timings, result, error),
 * an append-only event log, and key/value meta. SQLite in WAL mode; every write is a
 * transaction. SQL stays inside lib/catalog/catalog.c so another backend (PostgreSQL) can take
 * its place behind this header.
 *
 * Versions: the file's schema version is SQLite's user_version. Opening for writing upgrades an
 * older catalog (one ordered list of migrations, run in one transaction: a crash leaves the old
 * version); a catalog newer than this code is refused (KILN_E_STATE). Opening for reading never
 * writes: an older catalog is upgraded in a private copy in memory. Reads never write.
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
	unsigned regeneration;    /* review: rounds of regeneration asked for (0: none) */
	unsigned seed_round;      /* review: the rounds of them that asked for new seeds (the
	                             seed counter; a "same seed" round keeps the seeds) */
	char *prompt_add;         /* review: text to add to the AI prompt (this round's), or NULL */
	char *prompt_adds;        /* review: every note asked for, by round (JSON, for
	                             kiln_catalog_prompt_add), or NULL */
};

/* The text review adds to an item's prompt in regeneration round `round`: the notes of the
 * regenerate decisions (with prompt_add) up to that round, joined by ", " (*out NULL: none;
 * caller frees). adds: kiln_item.prompt_adds (may be NULL). -1 when out of memory. */
int kiln_catalog_prompt_add(const char *adds, unsigned round, char **out);

struct kiln_items {
	struct kiln_item *v;
	size_t n;
	size_t nlayers;
	uint32_t *matrix;         /* owned: n * nlayers */
};

/* Open (creating) the catalog at path for reading and writing, upgraded to the latest version.
 * KILN_E_STATE when the file is newer than this code, naming it and both versions. */
int kiln_catalog_open(struct kiln_catalog **out, const char *path, struct kiln_error *e)
	KILN_MUST_CHECK;
/* Open for reading only (SQLITE_OPEN_READONLY; immutable when the folder cannot be written,
 * as on a read-only mount): nothing is ever written to path, every write function fails with
 * KILN_E_STATE. A missing file reads as an empty catalog; an older one is upgraded in memory
 * (the whole file is copied: fine for catalogs of up to ~1M items, once, until a writing
 * verb upgrades the file). */
int kiln_catalog_open_readonly(struct kiln_catalog **out, const char *path, struct kiln_error *e)
	KILN_MUST_CHECK;
/* The schema version this code writes, and the one an open catalog holds. */
int kiln_catalog_latest_version(void);
int kiln_catalog_version(struct kiln_catalog *c, int *version, struct kiln_error *e)
	KILN_MUST_CHECK;
void kiln_catalog_free(struct kiln_catalog *c);
/* WAL checkpoints of a long-lived writer: pages, the WAL size (in pages) at which a commit
 * checkpoints (0: never; SQLite's default 1000), and a PASSIVE checkpoint now (it copies what no
 * reader still needs and never waits; a busy database is not an error). */
void kiln_catalog_wal_autocheckpoint(struct kiln_catalog *c, int pages);
/* A read-only connection reads the database file through a memory map of up to `bytes` (SQLite's
 * mmap_size): pages the other connections did not change are not copied again after each commit
 * (a long-lived reader beside a writer). Best effort: without it, pread. */
void kiln_catalog_mmap(struct kiln_catalog *c, long long bytes);
int kiln_catalog_checkpoint(struct kiln_catalog *c, struct kiln_error *e) KILN_MUST_CHECK;

/* All items in id order, traits mapped onto spec s. */
int kiln_catalog_items(struct kiln_catalog *c, const struct kiln_spec *s, struct kiln_items *out,
		       struct kiln_error *e) KILN_MUST_CHECK;
/* One item (n == 0 when there is no such id). */
int kiln_catalog_item(struct kiln_catalog *c, const struct kiln_spec *s, uint64_t id,
		      struct kiln_items *out, struct kiln_error *e) KILN_MUST_CHECK;
void kiln_items_release(struct kiln_items *it);
/* The item of that id in items (in id order, as kiln_catalog_items gives them) and its index
 * in *at (at may be NULL); NULL when there is none. */
const struct kiln_item *kiln_items_find(const struct kiln_items *items, uint64_t id, size_t *at);

/* Replace the plan in one transaction: items are inserted or updated (an item whose traits or
 * seed changed loses its accepted render and goes back to planned), items not in the plan are
 * removed, rarity scores and ranks stored (scores/ranks may be NULL), meta plan_spec_sha set
 * to spec_sha (NULL: left as it is), and a "plan" event logged with detail_json. Ids must lie
 * in start_id..KILN_ID_MAX (else KILN_E_SPEC naming the spec, nothing written). */
int kiln_catalog_save_plan(struct kiln_catalog *c, const struct kiln_spec *s,
			   const struct kiln_plan *p, const double *scores, const uint64_t *ranks,
			   const char *spec_sha, const char *detail_json, struct kiln_error *e)
	KILN_MUST_CHECK;

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
	const char *error_kind;   /* when !ok, AI engines: "timeout", "connection", "http_5xx",
	                             "http_4xx", "bad_image", "job_failed" or "other"; NULL:
	                             not classified */
	const char *ran_json;     /* AI engines: what the server reported it used (a JSON
	                             object: model, model_hash, loras, controlnet, steps, sampler,
	                             scheduler), beside request_json; NULL: nothing reported */
	double gpu_seconds;       /* AI engines: GPU seconds the platform reported (RunPod
	                             executionTime); 0: none reported */
	double cost_usd;          /* gpu_seconds (or, for a self-hosted endpoint with a
	                             cost_per_hour, the attempt's wall time) at the endpoint's
	                             price; 0: no price */
};

/* Record attempts in one transaction: a renders row each, the item's status/recipe/image/error
 * updated, a "render" event each. */
int kiln_catalog_record_renders(struct kiln_catalog *c, const struct kiln_render_record *r,
				size_t n, struct kiln_error *e) KILN_MUST_CHECK;

/* Append an event (kind: "plan", "render", "release", ...) about token item_id, or, when
 * has_item is 0, about the whole collection (token 0 is a real id). */
int kiln_catalog_event(struct kiln_catalog *c, const char *kind, int has_item, uint64_t item_id,
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

/* --- AI renders (lib/render_ai.c) ---------------------------------------------------------
 * Two tables beside the others: ai_inflight (a job a server may be running: its endpoint and
 * remote id, written *before* the job is sent when the id is client-chosen, so a kill -9 never
 * loses it) and ai_info (what the server said about each image it made: seed, remote id,
 * A1111 infotext). Neither ever holds a secret. */

/* Nothing to do since the tables are part of the schema (version 3); kept for callers. */
int kiln_catalog_ai_init(struct kiln_catalog *c, struct kiln_error *e) KILN_MUST_CHECK;

struct kiln_inflight {
	uint64_t item_id;
	uint64_t seed;            /* the job's requested seed (item seed + candidate) */
	const char *recipe;
	const char *endpoint;     /* URL */
	const char *engine;
	const char *remote_id;
	unsigned attempt;
};
/* Insert or replace the in-flight row of (item_id, seed). */
int kiln_catalog_inflight_put(struct kiln_catalog *c, const struct kiln_inflight *f,
			      struct kiln_error *e) KILN_MUST_CHECK;
/* Every in-flight row; strings valid during the call only. fn returns non-zero to stop. */
int kiln_catalog_inflight_each(struct kiln_catalog *c,
			       int (*fn)(void *user, const struct kiln_inflight *f), void *user,
			       struct kiln_error *e) KILN_MUST_CHECK;

/* A finished AI job: its in-flight row goes, and (when ok) what the server said is kept. */
struct kiln_ai_outcome {
	uint64_t item_id;
	uint64_t seed;            /* requested */
	uint64_t seed_used;       /* as the server reported it */
	int ok;
	const char *image;        /* when ok */
	const char *endpoint;
	const char *remote_id;    /* may be NULL */
	const char *info;         /* infotext, may be NULL */
};
int kiln_catalog_ai_finish(struct kiln_catalog *c, const struct kiln_ai_outcome *o, size_t n,
			   struct kiln_error *e) KILN_MUST_CHECK;

/* Accepted renders of engines other than compose: (item, recipe, image) each; fn returns
 * non-zero to stop. */
int kiln_catalog_ai_done_each(struct kiln_catalog *c,
			      int (*fn)(void *user, uint64_t item_id, const char *recipe,
					const char *image),
			      void *user, struct kiln_error *e) KILN_MUST_CHECK;

/* The start of an AI render run (unix seconds): `kiln status` reports throughput and
 * latency over the attempts of the last run. */
int kiln_catalog_ai_run_start(struct kiln_catalog *c, double at, struct kiln_error *e)
	KILN_MUST_CHECK;

/* Per-endpoint figures for `kiln status`, from the renders table. Counts cover every attempt
 * ever made; the run_* figures, throughput and latency cover the last run only. */
struct kiln_endpoint_stat {
	char *endpoint;           /* owned by the array */
	char *engine;
	uint64_t attempts, ok, failed;
	double busy_seconds;
	double first, last;       /* first start, last finish (unix seconds) */
	/* failed attempts by kind (kiln_render_record.error_kind; attempts recorded before kinds
	 * were are classified by their HTTP status and message) */
	uint64_t timeout, connection, http_5xx, http_4xx, bad_image, job_failed, other;
	/* the last run (kiln_catalog_ai_run_start; every attempt when none was recorded) */
	uint64_t run_ok, run_failed;
	double run_seconds;       /* the run's span: its start to its last finished attempt */
	double images_per_minute; /* run_ok over run_seconds */
	double latency_mean;      /* seconds per accepted attempt in the run (0: none) */
	double latency_p95;       /* nearest-rank 95th percentile of the same */
	double gpu_seconds;       /* reported GPU seconds of every attempt */
	double cost_usd;          /* spend of every attempt (every run) */
	double run_cost_usd;      /* spend of the last run */
	char *health;             /* a cloud endpoint's last health answer as JSON {at: unix
	                             seconds, answer: {...}} (meta "endpoint_health URL"), or NULL */
};
int kiln_catalog_endpoint_stats(struct kiln_catalog *c, struct kiln_endpoint_stat **out,
				size_t *n, struct kiln_error *e) KILN_MUST_CHECK;
void kiln_endpoint_stats_free(struct kiln_endpoint_stat *v, size_t n);
/* USD spent by every recorded attempt (renders.cost_usd), for generate.budget_usd. */
int kiln_catalog_spend(struct kiln_catalog *c, double *usd, struct kiln_error *e)
	KILN_MUST_CHECK;

/* QA results: the last `kiln qa` run's findings replace the previous ones in one
 * transaction (table qa_findings), with a "qa" event.
 *
 * A token verdict is tied to the image it judged: `image` is the SHA-256 (content-store hash)
 * of the item's accepted render when QA ran. A verdict only counts while the item still holds
 * that image: a re-rendered item is not blocked by a stale verdict, it waits for the next
 * `kiln qa` to be judged. Findings about dist/ (the previous release's own output, which the
 * next release rewrites) are recorded and shown but do not block a release. */
enum kiln_qa_origin {
	KILN_QA_ORIGIN_CATALOG = 0, /* the catalog's images and plan: gates `kiln release` */
	KILN_QA_ORIGIN_DIST = 1,    /* dist/ metadata, provenance, Sugar assets: recorded only */
};
struct kiln_qa_row {
	int has_item;             /* 0: a collection-level finding (no token) */
	uint64_t item_id;         /* the token (0 is a real id: see has_item) */
	const char *image;        /* SHA-256 of the image judged, or NULL (none rendered) */
	int origin;               /* enum kiln_qa_origin */
	const char *check;
	const char *severity;     /* "error" or "warning" */
	const char *file;
	const char *path;
	const char *message;
};
/* Every token a run judged, with the image it held then (NULL: none rendered): a token not
 * listed, or holding another image now, is unchecked (kiln_qa_state). */
struct kiln_qa_judged {
	uint64_t item_id;
	const char *image;
};
/* The run's findings and judged tokens replace the last run's; both are tied to the current
 * plan (meta plan_event, the id of the plan's event: a collection-level finding about another
 * plan blocks nothing). */
int kiln_catalog_save_qa(struct kiln_catalog *c, const struct kiln_qa_row *rows, size_t n,
			 const struct kiln_qa_judged *judged, size_t njudged,
			 const char *detail_json, struct kiln_error *e) KILN_MUST_CHECK;
/* Ids of tokens with a current error-level QA verdict from the catalog's checks (their image
 * is still the one judged), ascending (*ids owned by the caller; NULL when *n == 0). *ran is 0
 * when QA never ran on this catalog. Collection-level errors (trait counts, uniqueness, ids:
 * no single token) block a whole release: the function then fails with KILN_E_FAILED and a
 * message naming them (and the failing tokens), which `kiln release` reports as it is. */
int kiln_catalog_qa_failed(struct kiln_catalog *c, uint64_t **ids, size_t *n, int *ran,
			   struct kiln_error *e) KILN_MUST_CHECK;

/* A summary of the last QA run for `kiln status` and `kiln release`. */
#define KILN_QA_FIRST 5
struct kiln_qa_state {
	int ran;
	int plan_changed;          /* QA ran, on another plan than the current one (or none):
	                              its collection checks have not seen this plan */
	uint64_t failed_tokens;    /* tokens with a current error verdict (catalog checks) */
	uint64_t stale_tokens;     /* tokens QA judged on an image since replaced (re-rendered
	                              after the run), whether or not it found anything */
	uint64_t unchecked_tokens; /* tokens holding an image no QA run judged */
	uint64_t collection_errors;/* error findings tied to no token, about the current plan */
	uint64_t stale_collection; /* the same about another plan: ignored (they block nothing) */
	uint64_t dist_errors;      /* error findings on dist/ (recorded, not blocking) */
	uint64_t warnings;
	/* the first ids (ascending) of each kind, min(count, KILN_QA_FIRST) of them */
	uint64_t first_failed[KILN_QA_FIRST], first_stale[KILN_QA_FIRST];
	uint64_t first_unchecked[KILN_QA_FIRST];
};
int kiln_catalog_qa_state(struct kiln_catalog *c, struct kiln_qa_state *s, struct kiln_error *e)
	KILN_MUST_CHECK;

/* One token's findings from the last run, as JSON: [{check, severity, file, path, message,
 * origin: "catalog"|"dist", current: true when the item still holds the image judged}]
 * (owned by the caller; an empty array when none). */
int kiln_catalog_qa_item_json(struct kiln_catalog *c, uint64_t id, char **json,
			      struct kiln_error *e) KILN_MUST_CHECK;

/* The files of the last release as it wrote them (table dist_files): every file of dist/ with
 * its size, modification time (ns since the epoch) and SHA-256, so a damaged dist/ is found
 * from stat() alone, hashing only the files whose size or time changed. Saving replaces the
 * list; reading gives it sorted bytewise by path (empty: no release recorded one). */
struct kiln_dist_file {
	char *path;               /* relative to dist/, '/'-separated; owned */
	uint64_t size;
	int64_t mtime_ns;
	char sha256[65];
};
/* ...in one transaction with meta release_inputs and release_sha (each set when not NULL), so
 * the files recorded and the release they belong to never disagree. */
int kiln_catalog_dist_files_save(struct kiln_catalog *c, const struct kiln_dist_file *v, size_t n,
				 const char *release_inputs, const char *release_sha,
				 struct kiln_error *e) KILN_MUST_CHECK;
int kiln_catalog_dist_files(struct kiln_catalog *c, struct kiln_dist_file **v, size_t *n,
			    struct kiln_error *e) KILN_MUST_CHECK;
void kiln_dist_files_free(struct kiln_dist_file *v, size_t n);

/* --- polish (lib/polish) ----------------------------------------------------------------
 * Table polish_steps: each token's polish chain, the steps applied to its accepted render in
 * order. A step's input is the previous image step's output (step 0: the render); its recipe
 * is a SHA-256 over its kind, settings and input. An image step's output is the token's image
 * from there on; an extra step's (a vectorize SVG beside the image) is not. */
struct kiln_polish_step {
	uint64_t item_id;
	unsigned step;            /* 0, 1, ... in the token's chain */
	const char *kind;         /* "upscale", "vectorize", "edit", "inpaint", "overlay" */
	const char *settings;     /* JSON object */
	const char *recipe;       /* 64 hex */
	const char *input;        /* SHA-256 of the input (a store file) */
	const char *output;       /* SHA-256 of the output (a store file) */
	uint64_t bytes;           /* the output's size */
	int image;                /* 1: the output is the token's image; 0: an extra file */
	const char *by;           /* "kiln", or the person an edit came from */
	const char *tool;         /* may be NULL */
	const char *note;         /* may be NULL */
	const char *at;           /* ISO 8601 UTC; when saving, NULL: now (a step kept from
	                             before keeps its time) */
};
/* Every step in (item, step) order, or one token's (has_item); strings valid during the call
 * only. fn returns non-zero to stop. */
int kiln_catalog_polish_each(struct kiln_catalog *c, int has_item, uint64_t item_id,
			     int (*fn)(void *user, const struct kiln_polish_step *st), void *user,
			     struct kiln_error *e) KILN_MUST_CHECK;
/* Replace the chains of the tokens items[0..nitems) with the steps v (all of which belong to
 * those tokens) in one transaction, with a "polish" event per token (its final image and
 * step count). */
int kiln_catalog_polish_save(struct kiln_catalog *c, const uint64_t *items, size_t nitems,
			     const struct kiln_polish_step *v, size_t n, struct kiln_error *e)
	KILN_MUST_CHECK;
/* One token's chain as a JSON array of steps ({step, kind, settings (an object), recipe,
 * input, output, bytes, image, by, tool, note, at}); *json is NULL when it has no step
 * (caller frees). */
int kiln_catalog_polish_json(struct kiln_catalog *c, uint64_t id, char **json,
			     struct kiln_error *e) KILN_MUST_CHECK;
/* The final image of every token of items: where its polish chain starts from the image it
 * holds (a chain made on an image since re-rendered does not count), image and image_bytes
 * become the output of the chain's last image step. Release and QA call this after
 * kiln_catalog_items(); the same rule is what QA's verdicts are compared with. */
int kiln_catalog_final_images(struct kiln_catalog *c, struct kiln_items *items,
			      struct kiln_error *e) KILN_MUST_CHECK;

/* ---- the Provenance Portfolio's tables (version 6) ---- */

/* Register a model (table "models", key: the file's SHA-256, kind "lora"|"checkpoint") or a
 * dataset (table "datasets", key: its Merkle root; kind unused) with its record (JSON). The
 * same key twice is a no-op: *added says whether the row is new. */
int kiln_catalog_registry_add(struct kiln_catalog *c, const char *table, const char *key,
			      const char *name, const char *kind, const char *record, int *added,
			      struct kiln_error *e) KILN_MUST_CHECK;

/* The registry records (JSON, oldest first) of the models registered under name with kind
 * "lora" or "checkpoint" (several files may share a name: a LoRA trained again). Caller frees
 * each and the array. */
int kiln_catalog_models_named(struct kiln_catalog *c, const char *name, const char *kind,
			      char ***records, size_t *n, struct kiln_error *e) KILN_MUST_CHECK;

/* A training run (table train_runs, version 10), keyed by (name, started): inserted when it
 * starts (state "running", finished 0), updated when it ends ("done" with the trained file's
 * sha256, "failed" or "cancelled"). job_id: the RunPod job, or NULL. */
int kiln_catalog_train_run(struct kiln_catalog *c, const char *name, double started,
			   double finished, const char *state, const char *job_id,
			   const char *sha256, struct kiln_error *e) KILN_MUST_CHECK;

/* A fact of the catalog, for the portfolio's log. src "dataset" and "model": the registry
 * record; "render": an accepted render (engine, item_id, endpoint, recipe, seed, request, image,
 * bytes, started_at, finished_at, ran, and seed_used/infotext when the AI server said them);
 * "polish": each token's polish chain as its last polish run saved it, a step a fact (kind
 * "edit.human" for an imported edit, else "polish.step"; step, kind, description, settings,
 * recipe, from, output, image when the output is the token's image, bytes, by, tool; id: the
 * run's event id * 2^20 + step); "review": a review_log row (kind "review.decision"; action,
 * reviewer, candidate, reviewed_image, note, or prompt for a note added to the prompt, group,
 * undoes); "event": an event other than render, release and polish (detail). Owned by the
 * array. */
struct kiln_fact {
	int64_t id;               /* the row's id in its table: increasing */
	char *kind;               /* event kind, model kind, engine, "dataset" */
	int has_item;
	uint64_t item_id;
	char *at;                 /* when the catalog learnt it (ISO 8601 UTC) */
	char *json;               /* the row as a compact JSON value, keys sorted */
};
/* The facts of src whose id is above after, by id. */
int kiln_catalog_facts(struct kiln_catalog *c, const char *src, int64_t after,
		       struct kiln_fact **v, size_t *n, struct kiln_error *e) KILN_MUST_CHECK;
void kiln_facts_free(struct kiln_fact *v, size_t n);

/* The portfolio log (append-only: triggers refuse UPDATE and DELETE): one line per fact. */
struct kiln_log_row {
	char src[16];             /* "dataset", "model", "render", "polish", "review", "event",
				     "release" */
	int64_t src_id;           /* the fact's id in its source; (src, src_id) is logged once */
	char *line;               /* the canonical JSON line, no newline; owned */
};
int kiln_catalog_log_read(struct kiln_catalog *c, struct kiln_log_row **v, size_t *n,
			  struct kiln_error *e) KILN_MUST_CHECK;
/* Append rows in one transaction (all or none). */
int kiln_catalog_log_append(struct kiln_catalog *c, const struct kiln_log_row *v, size_t n,
			    struct kiln_error *e) KILN_MUST_CHECK;
void kiln_log_rows_free(struct kiln_log_row *v, size_t n);

/* ---- store.h (merged) ---- */
/* kiln/store.h: the content store, .kiln/store/. Files are named by the lowercase hex SHA-256
 * of their bytes, fanned out by the first two digits (store/ab/abcdef...). A file is written to
 * a temporary name and renamed, so a name in the store always holds exactly those bytes
 * (after a crash; after a power loss only once kiln_store_sync() has run);
 * putting the same bytes twice is a no-op. The catalog points at store files by hash. */

struct kiln_store;

int kiln_store_open(struct kiln_store **out, const char *dir, struct kiln_error *e)
	KILN_MUST_CHECK;
/* The same without creating dir (for readers: paths and lookups only). */
int kiln_store_open_readonly(struct kiln_store **out, const char *dir, struct kiln_error *e)
	KILN_MUST_CHECK;
void kiln_store_free(struct kiln_store *st);

/* Store bytes; writes their hash (64 hex + NUL) to sha. Thread-safe. */
int kiln_store_put(struct kiln_store *st, const void *data, size_t len, char sha[65],
		   struct kiln_error *e) KILN_MUST_CHECK;
/* Path of a stored file (caller frees), whether or not it exists. NULL on allocation failure. */
char *kiln_store_path(const struct kiln_store *st, const char *sha);
/* 1 when the store holds sha, 0 when not, -1 when out of memory (it cannot tell). */
int kiln_store_has(const struct kiln_store *st, const char *sha);

/* Make every file put so far durable (one syncfs). Call before the catalog records them. */
int kiln_store_sync(struct kiln_store *st, struct kiln_error *e) KILN_MUST_CHECK;


/* ---- review (lib/catalog/review.c) ---- */
/* Reviewers: a name and the SHA-256 (hex) of their token; the token itself is never stored.
 * put: a new reviewer (KILN_E_STATE when the name is taken), or with `owner` set the project
 * owner's row, whose token it replaces. */
int kiln_catalog_reviewer_put(struct kiln_catalog *c, const char *name, const char *token_sha,
			      int owner, struct kiln_error *e) KILN_MUST_CHECK;
/* The reviewer holding the token whose SHA-256 is token_sha: *name (caller frees) is NULL when
 * none does; *owner 1 for the project owner. */
int kiln_catalog_reviewer_find(struct kiln_catalog *c, const char *token_sha, char **name,
			       int *owner, struct kiln_error *e) KILN_MUST_CHECK;
/* The owner's name (NULL: no owner yet) and token hash, for the owner's URL. */
int kiln_catalog_reviewer_owner(struct kiln_catalog *c, char **name, char token_sha[65],
				struct kiln_error *e) KILN_MUST_CHECK;

/* Review sessions (a browser's cookie, exchanged for a reviewer's token): kept so that a
 * cookie works after the server restarts. Only the cookie's SHA-256 (hex) is stored, with the
 * reviewer, the CSRF token and the expiry (Unix seconds). find: *found 0 when no session has
 * that hash (or its reviewer is gone); an expired one is found (the caller refuses it and
 * purges); reviewer owned by the caller (free). purge: drop every session expired at now. */
struct kiln_review_session {
	char *reviewer;
	int owner;
	char csrf[65];
	double created, expires;
};
int kiln_catalog_review_session_put(struct kiln_catalog *c, const char *id_sha,
				    const char *reviewer, const char *csrf, double created,
				    double expires, struct kiln_error *e) KILN_MUST_CHECK;
int kiln_catalog_review_session_find(struct kiln_catalog *c, const char *id_sha,
				     struct kiln_review_session *out, int *found,
				     struct kiln_error *e) KILN_MUST_CHECK;
int kiln_catalog_review_sessions_purge(struct kiln_catalog *c, double now, uint64_t *purged,
				       struct kiln_error *e) KILN_MUST_CHECK;

/* Review decisions. action: "approve", "reject", "pending", "regenerate", "pick" (candidate
 * `candidate`, whose image is `image`: the item's image becomes it, its recipe the render's
 * that made it), "note" (a remark: the note changes, the status and the votes stay). image: what the decision was about (NULL: the item's image now). */
struct kiln_review_decision {
	uint64_t item_id;
	const char *action;
	unsigned candidate;       /* pick: 1..; else 0 */
	const char *image;
	const char *note;         /* may be NULL */
	int prompt_add;           /* regenerate: add the note to the prompt */
	int same_seed;            /* regenerate: keep the seeds (the note is added to the prompt) */
};
/* Append n decisions by reviewer in one transaction and bring the items' review state in step;
 * n > 1 (or group set) makes them one group, undone together. *first: the first row's id;
 * *group_id: the group (0: none). KILN_E_STATE naming the item when it does not exist. */
int kiln_catalog_review_decide(struct kiln_catalog *c, const char *reviewer,
			       const struct kiln_review_decision *d, size_t n, int group,
			       int64_t *first, int64_t *group_id, struct kiln_error *e)
	KILN_MUST_CHECK;
/* Undo reviewer's last decision (or group) that is not undone yet: new rows naming what they
 * undo; the ids undone go to *ids (caller frees; *n 0: nothing to undo). */
int kiln_catalog_review_undo(struct kiln_catalog *c, const char *reviewer, int64_t **ids,
			     size_t *n, struct kiln_error *e) KILN_MUST_CHECK;

/* The item's image changed after review (a polish inpaint): a "reset" by kiln with note voids
 * the votes, so the item is pending again (its image stays); nothing when nobody decided. */
int kiln_catalog_review_reopen(struct kiln_catalog *c, uint64_t item_id, const char *note,
			       struct kiln_error *e) KILN_MUST_CHECK;

/* An item's review state (no row: pending, nobody decided). */
struct kiln_review_state {
	uint64_t item_id;
	char status[12];          /* pending, approved, rejected, regenerate */
	unsigned candidate;       /* the picked candidate (0: none picked) */
	char *note;               /* the last note, or NULL; owned */
	char *reviewers;          /* JSON array of names (who voted since the last reset); owned */
	unsigned approvals;       /* distinct reviewers whose vote is approve or pick */
	int conflict;             /* reviewers' votes disagree */
	unsigned regeneration;    /* regenerations asked for (the seed counter) */
	char *prompt_add;         /* the notes of regenerate decisions with prompt_add, by round:
	                             [{"round": n, "note": text}] (kiln_catalog_prompt_add), or
	                             NULL; owned */
	int64_t last_decision;
};
/* Every item's state row, in id order (items never decided have none). */
int kiln_catalog_review_states(struct kiln_catalog *c, struct kiln_review_state **v, size_t *n,
			       struct kiln_error *e) KILN_MUST_CHECK;
/* One item's: *found 0 when it has no row (pending). */
int kiln_catalog_review_state(struct kiln_catalog *c, uint64_t item_id,
			      struct kiln_review_state *s, int *found, struct kiln_error *e)
	KILN_MUST_CHECK;
void kiln_review_state_release(struct kiln_review_state *s);
void kiln_review_states_free(struct kiln_review_state *v, size_t n);
/* The log as a JSON array, oldest first: [{id, at, reviewer, item, action, candidate, image,
 * note, prompt_add, group, undoes, undone (bool)}]; has_item: only item_id's. Caller frees. */
int kiln_catalog_review_log_json(struct kiln_catalog *c, int has_item, uint64_t item_id,
				 char **json, struct kiln_error *e) KILN_MUST_CHECK;
/* Counts for `kiln status`: items by review status (items with no row are pending) and items
 * in conflict. */
struct kiln_review_counts {
	uint64_t pending, approved, rejected, regenerate, conflicts, decisions;
};
int kiln_catalog_review_counts(struct kiln_catalog *c, struct kiln_review_counts *out,
			       struct kiln_error *e) KILN_MUST_CHECK;

/* What changed in the catalog, as counters that only grow: the last review log row, the last
 * render attempt, the last event (plan, render, QA...). A review server compares them with
 * what it loaded to see another kiln's writes. */
struct kiln_review_changes {
	int64_t log, renders, events;
};
int kiln_catalog_review_changes(struct kiln_catalog *c, struct kiln_review_changes *out,
				struct kiln_error *e) KILN_MUST_CHECK;

/* Every accepted render (status ok) in item then attempt order: what a review shows as an
 * item's candidates. Strings valid during the call; fn returns non-zero to stop. */
int kiln_catalog_ok_renders_each(struct kiln_catalog *c,
				 int (*fn)(void *user, uint64_t item_id, const char *image,
					   uint64_t seed, const char *recipe,
					   const char *request_json),
				 void *user, struct kiln_error *e) KILN_MUST_CHECK;
/* Current error and warning findings of tokens (the item still holds the image judged), in
 * item order. */
int kiln_catalog_qa_current_each(struct kiln_catalog *c,
				 int (*fn)(void *user, uint64_t item_id, const char *check,
					   const char *severity, const char *message),
				 void *user, struct kiln_error *e) KILN_MUST_CHECK;
/* Thumbnails: the store hash of source's thumbnail (thumb[0] 0: none yet), and a new one. */
int kiln_catalog_thumb_get(struct kiln_catalog *c, const char *source, char thumb[65],
			   struct kiln_error *e) KILN_MUST_CHECK;
int kiln_catalog_thumb_put(struct kiln_catalog *c, const char *source, const char *thumb,
			   struct kiln_error *e) KILN_MUST_CHECK;
/* 1 in *known when the catalog names sha256 as an item's, a render's or a thumbnail's image. */
int kiln_catalog_image_known(struct kiln_catalog *c, const char *sha, int *known,
			     struct kiln_error *e) KILN_MUST_CHECK;

/* ---- training (version 10): the manifests kiln train prepare wrote ---- */
/* Record that training `name` was prepared into the manifest of SHA-256 sha holding `images`
 * images; nothing when its last record has that manifest already (*added 0). */
int kiln_catalog_train_record(struct kiln_catalog *c, const char *name, const char *sha,
			      uint64_t images, int *added, struct kiln_error *e) KILN_MUST_CHECK;
/* The last record of training `name` (*found 0: never prepared). */
int kiln_catalog_train_last(struct kiln_catalog *c, const char *name, char sha[65],
			    uint64_t *images, int *found, struct kiln_error *e) KILN_MUST_CHECK;

/* Inpaint requests (the review app's brush): a mask (a PNG in the store, by SHA-256) drawn by
 * a reviewer over an item's image, with a prompt and a denoise, pending until the polish stage
 * runs it; then done (input: the image repainted, output: the result) or failed (error).
 * add: the new row in *out (its id and time set; out may be NULL). list: the requests of one
 * item (item NULL: of every item), of one status (NULL: any), oldest first. done/failed:
 * KILN_E_STATE when the request is not pending. */
struct kiln_inpaint_request {
	uint64_t id, item_id;
	char at[48];
	char *reviewer, *prompt, *negative, *error;
	char mask[65];
	double denoise;
	char status[8];               /* "pending", "done", "failed" */
	char done_at[48];
	char input[65], output[65];   /* done: the polish step's input and output */
};
struct kiln_inpaint_requests {
	struct kiln_inpaint_request *v;
	size_t n;
};
int kiln_catalog_inpaint_add(struct kiln_catalog *c, uint64_t item_id, const char *reviewer,
			     const char *mask, const char *prompt, const char *negative,
			     double denoise, struct kiln_inpaint_request *out,
			     struct kiln_error *e) KILN_MUST_CHECK;
int kiln_catalog_inpaint_list(struct kiln_catalog *c, const uint64_t *item, const char *status,
			      struct kiln_inpaint_requests *out, struct kiln_error *e)
	KILN_MUST_CHECK;
int kiln_catalog_inpaint_done(struct kiln_catalog *c, uint64_t id, const char *input,
			      const char *output, struct kiln_error *e) KILN_MUST_CHECK;
int kiln_catalog_inpaint_failed(struct kiln_catalog *c, uint64_t id, const char *error,
				struct kiln_error *e) KILN_MUST_CHECK;
void kiln_inpaint_request_release(struct kiln_inpaint_request *r);
void kiln_inpaint_requests_release(struct kiln_inpaint_requests *l);

#endif
