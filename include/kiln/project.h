/* kiln/project.h: a kiln project folder and the pipeline stages run on it.
 *
 *   DIR/kiln.yaml        the spec
 *   DIR/.kiln/catalog.db the catalog (SQLite, WAL)
 *   DIR/.kiln/store/     content-addressed files
 *   DIR/dist/            what gets uploaded (written by release, swapped in whole)
 *
 * Each stage is incremental: plan re-plans only when the spec changed (keeping unchanged items'
 * ids and seeds); render skips items whose recipe matches their accepted render; release skips
 * when nothing it depends on changed and dist/ is intact. The library never prints: stages
 * report through a progress callback.
 */
#ifndef KILN_PROJECT_H
#define KILN_PROJECT_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/catalog.h"
#include "kiln/error.h"
#include "kiln/plan.h"
#include "kiln/spec.h"

struct kiln_project {
	char *dir;                    /* the project folder */
	char *spec_path;              /* DIR/kiln.yaml */
	char *kiln_dir;               /* DIR/.kiln */
	char spec_sha[65];            /* SHA-256 of kiln.yaml's bytes */
	struct kiln_spec *spec;
	struct kiln_catalog *catalog;
	struct kiln_store *store;
	int readonly;                 /* opened with KILN_OPEN_READ */
	int lock_fd;                  /* DIR/.kiln/lock, held while open for writing; else -1 */
};

enum kiln_open_mode {
	KILN_OPEN_WRITE,  /* take the project lock, create .kiln/, upgrade the catalog */
	KILN_OPEN_READ,   /* no lock, nothing written: the catalog read-only (works on a
	                     read-only folder and beside a writer) */
};

/* Load DIR/kiln.yaml (errors: KILN_E_SPEC with file:line:col) and open .kiln/.
 * KILN_OPEN_WRITE creates .kiln/ and takes DIR/.kiln/lock for as long as the project is open,
 * recording the holder (this pid, `verb`: what it is doing, e.g. "render", and the time); when
 * another process holds it, fails at once with KILN_E_STATE naming the lock file and the
 * holder, hint KILN_HINT_LOCKED with the holder's pid as hint_arg. */
int kiln_project_open(struct kiln_project **out, const char *dir, enum kiln_open_mode mode,
		      const char *verb, struct kiln_error *e) KILN_MUST_CHECK;
void kiln_project_free(struct kiln_project *p);

/* The project lock alone, for a verb that writes without opening the project (init): create
 * KILN_DIR and take KILN_DIR/lock as kiln_project_open does; *fd holds it (-1 on failure)
 * until kiln_project_unlock(*fd). */
int kiln_project_lock(const char *kiln_dir, const char *verb, int *fd, struct kiln_error *e)
	KILN_MUST_CHECK;
void kiln_project_unlock(int fd);

/* Progress of a long stage, for bars and --json events. */
struct kiln_dispatch_stats;
struct kiln_progress {
	const char *stage;   /* "plan", "render", "release" */
	const char *event;   /* "start", "item", "end"; AI renders also "tick" (at most ten a
	                        second, whether or not an item finished) */
	uint64_t total;      /* items this run will do */
	uint64_t done;       /* items finished so far (ok or failed) */
	uint64_t failed;
	uint64_t item_id;    /* with "item" */
	int ok;              /* with "item" */
	const char *error;   /* with a failed "item": "where: message" */
	double elapsed;      /* seconds since start */
	/* AI renders: the endpoints (generate.endpoints, in order) and their live counters
	 * (kiln/dispatch.h), nendpoints of each; NULL and 0 for other stages. Valid during the
	 * call only. */
	const struct kiln_endpoint *endpoints;
	const struct kiln_dispatch_stats *endpoint_stats;
	size_t nendpoints;
	const char *endpoint;/* with an AI "item": the URL of its last attempt (NULL: none) */
};
typedef void (*kiln_progress_fn)(const struct kiln_progress *p, void *user);

/* --- plan --- */
struct kiln_project_plan_opts {
	int force;                    /* re-plan even if the spec did not change */
	int fresh;                    /* ignore the previous plan (new ids and seeds for all) */
	unsigned effort;              /* the planner's effort (struct kiln_plan_opts), 0: 1 */
};
struct kiln_plan_result {
	int planned;                  /* 0: the plan was up to date, nothing done */
	uint64_t items;
	uint64_t changed;             /* items whose traits or seed changed */
	struct kiln_plan *plan;       /* owned by the result: kiln_plan_result_release() */
	double *scores;               /* OpenRarity, per plan item */
	uint64_t *ranks;
};
int kiln_project_plan(struct kiln_project *p, const struct kiln_project_plan_opts *o,
		      struct kiln_plan_result *r, struct kiln_error *e) KILN_MUST_CHECK;
void kiln_plan_result_release(struct kiln_plan_result *r);

/* Give token `id` new traits (a rejected token) with every quota still exact, and store the
 * plan; the ids of every token that changed, id first, go to changed[cap]. The plan must be
 * current. */
int kiln_project_replace(struct kiln_project *p, uint64_t id, uint64_t *changed, size_t cap,
			 size_t *nchanged, struct kiln_error *e) KILN_MUST_CHECK;

/* 1 when the stored plan was made from the current kiln.yaml. */
int kiln_project_plan_current(struct kiln_project *p, int *current, struct kiln_error *e)
	KILN_MUST_CHECK;


/* --- release --- */
struct kiln_release_opts {
	int force;                    /* write dist/ even when up to date */
	int car;                      /* also write dist/car/<folder>.car (CARv1) */
	int has_starting_index;       /* starting_index given (else: the one recorded, if any) */
	uint64_t starting_index;      /* 0 <= i < size; recorded in the catalog */
	int re_reveal;                /* allow a starting index other than the recorded one */
	int allow_qa_failures;        /* release tokens the last `kiln qa` failed */
	const char *keys_dir;         /* the studio's keys (the portfolio signs with them) */
	kiln_progress_fn progress;
	void *user;
};
struct kiln_release_result {
	int written;                  /* 0: dist/ was up to date */
	uint64_t items;
	uint64_t bytes;               /* images */
	char dist[4096];
	char images_cid[128];         /* CIDs (as ipfs add --cid-version=1); "" when not made */
	char metadata_cid[128];       /* dist/metadata (erc721) */
	char erc1155_cid[128];        /* dist/erc1155/metadata */
	char prereveal_cid[128];      /* dist/prereveal/metadata */
	char contract_cid[128];       /* dist/contract.json */
	char provenance[65];          /* the provenance hash */
	char manifest[65];            /* the release hash: SHA-256 of dist/manifest.sha256 */
	int has_starting_index;
	uint64_t starting_index;
	int reveal_pending;           /* metadata.reveal set and no starting index yet: the
	                                 token metadata is not written */
	uint64_t repaired;            /* dist/ was up to date but damaged (files changed, gone
	                                 or added since the release): written again */
	char damage[320];             /* the first damaged file and what was wrong with it */
};
int kiln_project_release(struct kiln_project *p, const struct kiln_release_opts *o,
			 struct kiln_release_result *r, struct kiln_error *e) KILN_MUST_CHECK;

/* Is dist/ what the last release wrote, and is that release behind the catalog? Reads the
 * catalog and stats dist/ (hashing only files whose size or mtime changed since the release
 * recorded them): for `kiln status`. */
struct kiln_dist_state {
	int released;                 /* a release was written */
	int inputs_changed;           /* the items' images or traits, or kiln.yaml, changed since */
	int recorded;                 /* the release recorded its files (kilns before catalog
	                                 version 4 did not: then nothing below is known) */
	uint64_t changed, missing, extra; /* files with other bytes, gone, not part of it */
	uint64_t hashed;              /* files hashed again (their size or mtime changed) */
	char first[320];              /* the first damaged file and what is wrong with it */
};
int kiln_release_dist_state(struct kiln_project *p, struct kiln_dist_state *s,
			    struct kiln_error *e) KILN_MUST_CHECK;

/* The token name from the pattern ("{name} #{id}"): caller frees. */
char *kiln_token_name(const struct kiln_spec *s, uint64_t id);

#endif
