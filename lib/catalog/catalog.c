/* catalog: the SQLite catalog behind include/kiln/catalog.h (see README.md here).
 *
 * Invariants: WAL mode, foreign keys on; every write is one transaction (BEGIN IMMEDIATE ..
 * COMMIT, rolled back on any error), so a kill -9 leaves either the old or the new state. The
 * events table is append-only, enforced by triggers. Item traits are stored by name as a JSON
 * object in layer order. All SQL of kiln lives in this file. The schema changes only through
 * the migrations list below (user_version); reads never write. A catalog opened read-only
 * refuses every write.
 *
 * Sizes: up to ~1,000,000 items (one row each), renders a few per item, events a few per item.
 */
#include "kiln/catalog.h"
#include "util/alloc.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "catalog/db.h"
#include "catalog/internal.h"

/* --- schema versions -------------------------------------------------------------------------
 * The catalog's version is SQLite's user_version. MIGRATIONS is the one ordered list of what
 * every version adds; kiln_catalog_open() runs the steps past the file's version, all in one
 * transaction (a crash mid-way leaves the old version), and nothing else in this file creates
 * or alters a table. Append new steps at the end with the next version; never edit a step that
 * a release has shipped.
 *
 * Catalogs made before versions were recorded (user_version 0, kiln up to 9b95297) hold the
 * version 1 tables plus whatever those releases added lazily when a verb first needed it
 * (renders.error_kind, qa_findings.image/origin, the AI tables): such a catalog is taken as
 * version 1, and a step whose `done` query returns a row is skipped as already there. */

struct migration {
	int version;              /* user_version once this version's steps have run */
	const char *done;         /* NULL, or a query: a row means the step is already there */
	const char *sql;
};

static const char schema_v1[] =
	"CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);\n"
	"CREATE TABLE IF NOT EXISTS items (\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  kind TEXT NOT NULL CHECK (kind IN ('generated','legendary')),\n"
	"  legendary TEXT,\n"
	"  seed INTEGER NOT NULL,\n"
	"  traits TEXT NOT NULL,\n"
	"  status TEXT NOT NULL DEFAULT 'planned' CHECK (status IN ('planned','rendered','failed')),\n"
	"  recipe TEXT, image TEXT, image_bytes INTEGER, error TEXT,\n"
	"  rarity_score REAL, rarity_rank INTEGER,\n"
	"  planned_at TEXT NOT NULL, rendered_at TEXT);\n"
	"CREATE TABLE IF NOT EXISTS renders (\n"
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
	"  item_id INTEGER NOT NULL,\n"
	"  engine TEXT NOT NULL, endpoint TEXT, recipe TEXT, seed INTEGER, request TEXT,\n"
	"  status TEXT NOT NULL CHECK (status IN ('ok','failed')), http_status INTEGER,\n"
	"  image TEXT, bytes INTEGER, error TEXT, started_at REAL, finished_at REAL,\n"
	"  error_kind TEXT);\n"
	"CREATE INDEX IF NOT EXISTS renders_item ON renders(item_id);\n"
	"CREATE TABLE IF NOT EXISTS events (\n"
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
	"  at TEXT NOT NULL, kind TEXT NOT NULL, item_id INTEGER, detail TEXT);\n"
	"CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events\n"
	"  BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;\n"
	"CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events\n"
	"  BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;\n"
	"CREATE TABLE IF NOT EXISTS qa_findings (\n"
	"  id INTEGER PRIMARY KEY AUTOINCREMENT, item_id INTEGER, check_id TEXT NOT NULL,\n"
	"  severity TEXT NOT NULL, file TEXT, path TEXT, message TEXT);\n"
	"INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '1');\n";

/* The current plan's generation (the id of its "plan" event; NULL before any plan). */
#define PLAN_NOW "CAST((SELECT value FROM meta WHERE key = 'plan_event') AS INTEGER)"

#define HAS_COLUMN(t, c) "SELECT 1 FROM pragma_table_info('" t "') WHERE name = '" c "'"

static const struct migration migrations[] = {
	/* 1: the tables as the release before versions (9b95297) made them on a new project */
	{1, NULL, schema_v1},
	/* 2: QA verdicts tied to the image judged, and where the finding came from (a NULL origin
	 * is a verdict from before: it blocks while present); attempts' error kinds, which
	 * catalogs older than 9b95297 lack */
	{2, HAS_COLUMN("qa_findings", "image"), "ALTER TABLE qa_findings ADD COLUMN image TEXT"},
	{2, HAS_COLUMN("qa_findings", "origin"), "ALTER TABLE qa_findings ADD COLUMN origin TEXT"},
	{2, HAS_COLUMN("renders", "error_kind"), "ALTER TABLE renders ADD COLUMN error_kind TEXT"},
	/* 3: AI renders: jobs a server may be running (written before the job is sent, so a
	 * kill -9 never loses one) and what servers said about the images they made */
	{3, NULL,
	 "CREATE TABLE IF NOT EXISTS ai_inflight (\n"
	 "  item_id INTEGER NOT NULL, seed INTEGER NOT NULL, recipe TEXT, endpoint TEXT,\n"
	 "  engine TEXT, remote_id TEXT NOT NULL, attempt INTEGER, at REAL,\n"
	 "  PRIMARY KEY (item_id, seed));\n"
	 "CREATE TABLE IF NOT EXISTS ai_info (\n"
	 "  id INTEGER PRIMARY KEY AUTOINCREMENT, item_id INTEGER NOT NULL, seed INTEGER,\n"
	 "  seed_used INTEGER, image TEXT, endpoint TEXT, remote_id TEXT, info TEXT);\n"
	 "CREATE INDEX IF NOT EXISTS ai_info_image ON ai_info(image);\n"},
	/* 4: what a QA run judged: the plan (meta plan_event: the id of the plan's event; each
	 * finding's plan, meta qa_plan) and every token with the image it held (qa_judged), so a
	 * verdict about another plan is ignored and a token rendered since is seen as unchecked;
	 * and the files of the last release as written (dist_files: size, mtime, SHA-256), so a
	 * damaged dist/ is noticed without hashing it all. Older catalogs get what their events
	 * say: the last QA run judged the plan saved before it and, for each token, the image of
	 * its last accepted render that finished before it. */
	{4, HAS_COLUMN("qa_findings", "plan"), "ALTER TABLE qa_findings ADD COLUMN plan INTEGER"},
	{4, NULL,
	 "CREATE TABLE IF NOT EXISTS qa_judged (item_id INTEGER PRIMARY KEY, image TEXT);\n"
	 "CREATE TABLE IF NOT EXISTS dist_files (\n"
	 "  path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,\n"
	 "  sha256 TEXT NOT NULL);\n"
	 "INSERT OR REPLACE INTO meta(key, value) SELECT 'plan_event', max(id) FROM events\n"
	 "  WHERE kind = 'plan' HAVING max(id) IS NOT NULL;\n"
	 "UPDATE qa_findings SET plan = (SELECT max(id) FROM events WHERE kind = 'plan' AND\n"
	 "  id < (SELECT max(id) FROM events WHERE kind = 'qa'));\n"
	 "INSERT OR REPLACE INTO meta(key, value) SELECT 'qa_plan', coalesce((SELECT max(id)\n"
	 "  FROM events WHERE kind = 'plan' AND id < q), 'none') FROM (SELECT max(id) AS q FROM\n"
	 "  events WHERE kind = 'qa') WHERE q IS NOT NULL;\n"
	 "INSERT OR IGNORE INTO qa_judged(item_id, image) SELECT i.id, (SELECT r.image FROM\n"
	 "  renders r WHERE r.item_id = i.id AND r.status = 'ok' AND r.finished_at <= t\n"
	 "  ORDER BY r.finished_at DESC, r.id DESC LIMIT 1) FROM items i, (SELECT\n"
	 "  (julianday(max(at)) - 2440587.5) * 86400.0 AS t FROM events WHERE kind = 'qa')\n"
	 "  WHERE t IS NOT NULL;\n"},
	/* 5: what the AI server reported it used for an attempt (model and its hash, LoRA
	 * hashes, ControlNet units), beside what was asked (request) */
	{5, HAS_COLUMN("renders", "ran"), "ALTER TABLE renders ADD COLUMN ran TEXT"},
	/* 6: review (lib/catalog/review.c): reviewers and their hashed tokens, the append-only
	 * decision log, each item's review state kept in step with it, thumbnails by source */
	{6, NULL, KILN_CATALOG_REVIEW_SCHEMA},
	/* 7: the polish chain of each token (lib/polish): its steps in order, each with its
	 * kind, settings, recipe, input and output SHA-256 (store files), whether the output is
	 * the token's image from there on (0: an extra file such as an SVG beside it), who made
	 * it ('kiln' or the person an edit was imported from), the tool, a note and when */
	{7, NULL,
	 "CREATE TABLE IF NOT EXISTS polish_steps (\n"
	 "  item_id INTEGER NOT NULL, step INTEGER NOT NULL,\n"
	 "  kind TEXT NOT NULL CHECK (kind IN ('upscale','vectorize','edit','inpaint','overlay')),\n"
	 "  settings TEXT NOT NULL, recipe TEXT NOT NULL, input TEXT NOT NULL,\n"
	 "  output TEXT NOT NULL, bytes INTEGER NOT NULL, is_image INTEGER NOT NULL,\n"
	 "  made_by TEXT NOT NULL, tool TEXT, note TEXT, at TEXT NOT NULL,\n"
	 "  PRIMARY KEY (item_id, step));\n"},
	/* 8: the Provenance Portfolio: the model registry (a file per SHA-256, its record as
	 * JSON), the datasets (by Merkle root) and the portfolio's log, append-only like events:
	 * one canonical JSON line per fact, each fact (src, src_id) logged once */
	{8, NULL,
	 "CREATE TABLE IF NOT EXISTS models (\n"
	 "  id INTEGER PRIMARY KEY AUTOINCREMENT, sha256 TEXT NOT NULL UNIQUE, name TEXT NOT NULL,\n"
	 "  kind TEXT NOT NULL, record TEXT NOT NULL, added_at TEXT NOT NULL);\n"
	 "CREATE TABLE IF NOT EXISTS datasets (\n"
	 "  id INTEGER PRIMARY KEY AUTOINCREMENT, root TEXT NOT NULL UNIQUE, name TEXT NOT NULL,\n"
	 "  record TEXT NOT NULL, added_at TEXT NOT NULL);\n"
	 "CREATE TABLE IF NOT EXISTS portfolio_log (\n"
	 "  seq INTEGER PRIMARY KEY, src TEXT NOT NULL, src_id INTEGER NOT NULL,\n"
	 "  line TEXT NOT NULL, UNIQUE (src, src_id));\n"
	 "CREATE TRIGGER IF NOT EXISTS portfolio_log_no_update BEFORE UPDATE ON portfolio_log\n"
	 "  BEGIN SELECT RAISE(ABORT, 'the portfolio log is append-only'); END;\n"
	 "CREATE TRIGGER IF NOT EXISTS portfolio_log_no_delete BEFORE DELETE ON portfolio_log\n"
	 "  BEGIN SELECT RAISE(ABORT, 'the portfolio log is append-only'); END;\n"},
	/* 9: what an attempt cost: the GPU seconds the platform reported (RunPod executionTime;
	 * NULL: nothing reported) and their price from the endpoint's cost_per_hour */
	{9, HAS_COLUMN("renders", "gpu_seconds"),
	 "ALTER TABLE renders ADD COLUMN gpu_seconds REAL"},
	{9, HAS_COLUMN("renders", "cost_usd"), "ALTER TABLE renders ADD COLUMN cost_usd REAL"},
	/* 10: training (lib/train/prepare.c): each prepared manifest of a training, by name,
	 * once per distinct manifest (its SHA-256), with its image count */
	{10, NULL,
	 "CREATE TABLE IF NOT EXISTS train_prepared (\n"
	 "  id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL,\n"
	 "  manifest_sha256 TEXT NOT NULL, images INTEGER NOT NULL, created_at TEXT NOT NULL);\n"
	 "CREATE INDEX IF NOT EXISTS train_prepared_name ON train_prepared(name);\n"},

	/* 10: training runs (kiln train run): each run of a training entry, from its start
	 * (the trainer's state file written) to its end: state running, done, failed or
	 * cancelled, the RunPod job id when it ran there, the trained file's SHA-256 */
	{10, NULL,
	 "CREATE TABLE IF NOT EXISTS train_runs (\n"
	 "  name TEXT NOT NULL, started REAL NOT NULL, finished REAL,\n"
	 "  state TEXT NOT NULL CHECK (state IN ('running','done','failed','cancelled')),\n"
	 "  job_id TEXT, output_sha256 TEXT, PRIMARY KEY (name, started));\n"},

	/* 11: review's "same seed" regeneration (the note added to the prompt, the seed kept):
	 * the log row says so, and the state counts the rounds that asked for new seeds
	 * (seed_round, the seed counter; NULL in older rows: every round did) */
	{11, HAS_COLUMN("review_log", "same_seed"),
	 "ALTER TABLE review_log ADD COLUMN same_seed INTEGER NOT NULL DEFAULT 0"},
	{11, HAS_COLUMN("review_state", "seed_round"),
	 "ALTER TABLE review_state ADD COLUMN seed_round INTEGER"},

	/* 12: review sessions that outlive the server (the SHA-256 of the cookie, never the
	 * cookie; the reviewer, the CSRF token, the expiry in Unix seconds); and "note" as an
	 * action of its own in the review log: SQLite cannot change a CHECK constraint, so the log
	 * is rebuilt (every row with its id, the AUTOINCREMENT counter, the indexes and the
	 * append-only triggers), in the migration's one transaction */
	{12, NULL,
	 "CREATE TABLE IF NOT EXISTS review_sessions (\n"
	 "  id_sha256 TEXT PRIMARY KEY, reviewer TEXT NOT NULL, csrf TEXT NOT NULL,\n"
	 "  created REAL NOT NULL, expires REAL NOT NULL);\n"
	 "CREATE INDEX IF NOT EXISTS review_sessions_expires ON review_sessions(expires);\n"},
	{12, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'review_log' AND "
	     "sql LIKE '%''note''%'",
	 "CREATE TABLE review_log_v12 (\n"
	 "  id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, reviewer TEXT NOT NULL,\n"
	 "  item_id INTEGER NOT NULL, action TEXT NOT NULL CHECK (action IN ('approve','reject',\n"
	 "  'pending','regenerate','pick','note','undo','reset')), candidate INTEGER, image TEXT,\n"
	 "  note TEXT, prompt_add INTEGER NOT NULL DEFAULT 0, group_id INTEGER, undoes INTEGER,\n"
	 "  same_seed INTEGER NOT NULL DEFAULT 0);\n"
	 "INSERT INTO review_log_v12(id, at, reviewer, item_id, action, candidate, image, note,\n"
	 "  prompt_add, group_id, undoes, same_seed) SELECT id, at, reviewer, item_id, action,\n"
	 "  candidate, image, note, prompt_add, group_id, undoes, same_seed FROM review_log\n"
	 "  ORDER BY id;\n"
	 "UPDATE sqlite_sequence SET seq = max(seq, coalesce((SELECT seq FROM sqlite_sequence\n"
	 "  WHERE name = 'review_log'), 0)) WHERE name = 'review_log_v12';\n"
	 "DROP TABLE review_log;\n"
	 "ALTER TABLE review_log_v12 RENAME TO review_log;\n"
	 "CREATE INDEX review_log_item ON review_log(item_id, id);\n"
	 "CREATE INDEX review_log_reviewer ON review_log(reviewer, id);\n"
	 "CREATE INDEX review_log_undoes ON review_log(undoes);\n"
	 "CREATE TRIGGER review_log_no_update BEFORE UPDATE ON review_log\n"
	 "  BEGIN SELECT RAISE(ABORT, 'the review log is append-only'); END;\n"
	 "CREATE TRIGGER review_log_no_delete BEFORE DELETE ON review_log\n"
	 "  BEGIN SELECT RAISE(ABORT, 'the review log is append-only'); END;\n"},

	/* 13: inpaint requests from the review app (a mask drawn over the loupe, in the store by
	 * its SHA-256): pending until `polish` runs them, then done (the polish step's output)
	 * or failed (the error kept) */
	{13, NULL,
	 "CREATE TABLE IF NOT EXISTS inpaint_requests (\n"
	 "  id INTEGER PRIMARY KEY AUTOINCREMENT, item_id INTEGER NOT NULL, at TEXT NOT NULL,\n"
	 "  reviewer TEXT NOT NULL, mask TEXT NOT NULL, prompt TEXT NOT NULL, negative TEXT,\n"
	 "  denoise REAL NOT NULL, status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN\n"
	 "  ('pending','done','failed')), error TEXT, done_at TEXT, input TEXT, output TEXT);\n"
	 "CREATE INDEX IF NOT EXISTS inpaint_requests_status ON inpaint_requests(status, id);\n"
	 "CREATE INDEX IF NOT EXISTS inpaint_requests_item ON inpaint_requests(item_id, id);\n"},
};

#define NMIGRATIONS (sizeof migrations / sizeof migrations[0])
#define LATEST_VERSION 13

int kiln_catalog_latest_version(void)
{
	return LATEST_VERSION;
}

/* The first column of the first row of sql as an integer; *found 0 when there is no row. */
static int query_int(struct kiln_catalog *c, const char *sql, sqlite3_int64 *v, int *found,
		     struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	int rc = prepare(c, sql, &st, e), step;
	*v = 0;
	if (found)
		*found = 0;
	if (rc)
		return rc;
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		*v = sqlite3_column_int64(st, 0);
		if (found)
			*found = 1;
	} else if (step != SQLITE_DONE) {
		rc = db_error(c, e, "reading the catalog's version");
	}
	sqlite3_finalize(st);
	return rc;
}

/* The file's version; a catalog without one but with tables predates versions: 1. */
static int file_version(struct kiln_catalog *c, int *version, struct kiln_error *e)
{
	sqlite3_int64 v;
	int rc, found;
	if ((rc = query_int(c, "PRAGMA user_version", &v, NULL, e)))
		return rc;
	if (v == 0 && (rc = query_int(c, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
				      "name = 'items'", &v, &found, e)) == 0 && found)
		v = 1;
	*version = (int)v;
	return rc;
}

static int too_new(struct kiln_catalog *c, int version, struct kiln_error *e)
{
	return kiln_error_set(e, KILN_E_STATE, c->path, "the catalog is version %d, newer than "
			      "this kiln reads (version %d): it was written by a newer kiln",
			      version, LATEST_VERSION);
}

/* Bring the catalog to LATEST_VERSION in one transaction. */
static int migrate(struct kiln_catalog *c, struct kiln_error *e)
{
	char sql[128];
	int version, rc;
	if ((rc = file_version(c, &version, e)))
		return rc;
	if (version == LATEST_VERSION)
		return 0;
	if (version > LATEST_VERSION)
		return too_new(c, version, e);
	if ((rc = exec(c, "BEGIN IMMEDIATE", e)))
		return rc;
	/* another kiln may have migrated it between the look and the lock */
	if ((rc = file_version(c, &version, e)))
		goto out;
	if (version > LATEST_VERSION) {
		rc = too_new(c, version, e);
		goto out;
	}
	for (size_t i = 0; i < NMIGRATIONS; i++) {
		const struct migration *m = &migrations[i];
		sqlite3_int64 v;
		int there = 0;
		if (m->version <= version)
			continue;
		if (m->done && (rc = query_int(c, m->done, &v, &there, e)))
			goto out;
		if (!there && sqlite3_exec(c->db, m->sql, NULL, NULL, NULL) != SQLITE_OK) {
			rc = db_error(c, e, "upgrading the catalog");
			kiln_error_prefix(e, "version %d to %d: ", m->version - 1, m->version);
			goto out;
		}
	}
	snprintf(sql, sizeof sql, "PRAGMA user_version = %d; UPDATE meta SET value = '%d' WHERE "
		 "key = 'schema_version';", LATEST_VERSION, LATEST_VERSION);
	if ((rc = exec(c, sql, e)))
		goto out;
	rc = commit(c, e);
out:
	if (rc)
		rollback(c);
	return rc;
}

static struct kiln_catalog *catalog_new(const char *path, struct kiln_error *e)
{
	struct kiln_catalog *c = kiln_calloc(1, sizeof *c);
	if (!c || !(c->path = kiln_strdup(path))) {
		free(c);
		kiln_error_set(e, KILN_E_NOMEM, path, "out of memory");
		return NULL;
	}
	return c;
}

static int open_db(struct kiln_catalog *c, const char *name, int flags, struct kiln_error *e)
{
	if (sqlite3_open_v2(name, &c->db, flags | SQLITE_OPEN_NOMUTEX, NULL) == SQLITE_OK)
		return 0;
	if (!c->db)
		return kiln_error_set(e, KILN_E_NOMEM, c->path, "out of memory");
	return db_error(c, e, "cannot open the catalog");
}

int kiln_catalog_open(struct kiln_catalog **out, const char *path, struct kiln_error *e)
{
	struct kiln_catalog *c = catalog_new(path, e);
	int rc, version;
	*out = NULL;
	if (!c)
		return KILN_E_NOMEM;
	if ((rc = open_db(c, path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, e)))
		goto fail;
	sqlite3_busy_timeout(c->db, 10000);
	/* a newer file is refused before anything (its journal mode included) is changed */
	if ((rc = file_version(c, &version, e)))
		goto fail;
	if (version > LATEST_VERSION) {
		rc = too_new(c, version, e);
		goto fail;
	}
	if ((rc = exec(c, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
		       "PRAGMA foreign_keys=ON;", e)) ||
	    (rc = migrate(c, e)))
		goto fail;
	*out = c;
	return 0;
fail:
	kiln_catalog_free(c);
	return rc;
}

/* "file:" URI of path with immutable=1: for a catalog on a read-only mount or in a folder we
 * cannot write, where SQLite cannot make the WAL index it otherwise needs to read. */
static char *immutable_uri(const char *path)
{
	size_t n = strlen(path);
	char *u = kiln_malloc(3 * n + 32), *q = u;
	if (!u)
		return NULL;
	q += sprintf(q, "file:");
	for (const unsigned char *p = (const unsigned char *)path; *p; p++)
		if (*p == '%' || *p == '?' || *p == '#' || *p < 0x20 || *p >= 0x7f)
			q += sprintf(q, "%%%02X", *p);
		else
			*q++ = (char)*p;
	strcpy(q, "?immutable=1");
	return u;
}

/* Copy the file's catalog into memory and upgrade the copy there: an older catalog is read
 * as the current version without writing to it. */
static int upgrade_in_memory(struct kiln_catalog *c, struct kiln_error *e)
{
	sqlite3 *file = c->db, *mem = NULL;
	sqlite3_backup *b;
	int rc;
	if (sqlite3_open_v2(":memory:", &mem, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		sqlite3_close(mem);
		return kiln_error_set(e, KILN_E_NOMEM, c->path, "out of memory");
	}
	b = sqlite3_backup_init(mem, "main", file, "main");
	rc = b && sqlite3_backup_step(b, -1) == SQLITE_DONE ? 0 : -1;
	if (sqlite3_backup_finish(b) != SQLITE_OK || rc) {
		rc = kiln_error_set(e, KILN_E_DB, c->path, "reading the catalog: %s",
				    sqlite3_errmsg(mem));
		sqlite3_close(mem);
		return rc;
	}
	c->db = mem;
	sqlite3_close(file);
	c->readonly = 0;
	rc = migrate(c, e);
	c->readonly = 1;
	return rc;
}

int kiln_catalog_open_readonly(struct kiln_catalog **out, const char *path, struct kiln_error *e)
{
	struct kiln_catalog *c = catalog_new(path, e);
	char *uri = NULL;
	int rc, version = 0;
	*out = NULL;
	if (!c)
		return KILN_E_NOMEM;
	if (access(path, F_OK) != 0 && errno == ENOENT) {
		/* nothing planned yet: an empty catalog, in memory only */
		if ((rc = open_db(c, ":memory:", SQLITE_OPEN_READWRITE, e)) || (rc = migrate(c, e)))
			goto fail;
		goto done;
	}
	if ((rc = open_db(c, path, SQLITE_OPEN_READONLY, e)))
		goto fail;
	sqlite3_busy_timeout(c->db, 10000);
	if (file_version(c, &version, NULL)) {
		int code = sqlite3_errcode(c->db) & 0xff;
		if (code != SQLITE_CANTOPEN && code != SQLITE_READONLY && code != SQLITE_IOERR) {
			rc = db_error(c, e, "reading the catalog");
			goto fail;
		}
		sqlite3_close(c->db);
		c->db = NULL;
		if (!(uri = immutable_uri(path))) {
			rc = kiln_error_set(e, KILN_E_NOMEM, path, "out of memory");
			goto fail;
		}
		if ((rc = open_db(c, uri, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, e)) ||
		    (rc = file_version(c, &version, e)))
			goto fail;
	}
	c->readonly = 1;
	if (version > LATEST_VERSION) {
		rc = too_new(c, version, e);
		goto fail;
	}
	if (version < LATEST_VERSION && (rc = upgrade_in_memory(c, e)))
		goto fail;
done:
	c->readonly = 1;
	/* SQLite itself refuses any change from here on */
	if ((rc = exec(c, "PRAGMA query_only = 1", e)))
		goto fail;
	free(uri);
	*out = c;
	return 0;
fail:
	free(uri);
	kiln_catalog_free(c);
	return rc;
}

int kiln_catalog_version(struct kiln_catalog *c, int *version, struct kiln_error *e)
{
	sqlite3_int64 v;
	int rc = query_int(c, "PRAGMA user_version", &v, NULL, e);
	*version = rc ? 0 : (int)v;
	return rc;
}

void kiln_catalog_free(struct kiln_catalog *c)
{
	if (!c)
		return;
	sqlite3_close(c->db);
	free(c->path);
	free(c);
}

/* --- items ---------------------------------------------------------------------------------- */

static char *dup_col(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	return t ? kiln_strdup((const char *)t) : NULL;
}

static void copy_hex(char dst[65], sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	snprintf(dst, 65, "%s", t ? (const char *)t : "");
}

static enum kiln_item_status parse_status(const unsigned char *s)
{
	if (s && !strcmp((const char *)s, "rendered"))
		return KILN_ITEM_RENDERED;
	if (s && !strcmp((const char *)s, "failed"))
		return KILN_ITEM_FAILED;
	return KILN_ITEM_PLANNED;
}

/* Map stored {"Layer": "Value"} onto the current spec's indexes. */
static void map_traits(const struct kiln_spec *s, const char *json, uint32_t *out)
{
	json_t *o = json ? json_loads(json, 0, NULL) : NULL;
	for (size_t l = 0; l < s->nlayers; l++) {
		json_t *v = o ? json_object_get(o, s->layers[l].name) : NULL;
		const char *name = json_string_value(v);
		long t = name ? kiln_layer_trait_index(&s->layers[l], name) : -1;
		out[l] = t >= 0 ? (uint32_t)t : KILN_PLAN_UNSET;
	}
	json_decref(o);
}

static int load_items(struct kiln_catalog *c, const struct kiln_spec *s, sqlite3_stmt *st,
		      struct kiln_items *out, struct kiln_error *e)
{
	size_t cap = 0;
	int rc = 0, step;
	memset(out, 0, sizeof *out);
	out->nlayers = s->nlayers;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		struct kiln_item *it;
		if (out->n == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			struct kiln_item *v = kiln_reallocarray(out->v, ncap, sizeof *v);
			uint32_t *m;
			if (!v)
				goto nomem;
			out->v = v;
			m = kiln_reallocarray(out->matrix, ncap * (s->nlayers ? s->nlayers : 1),
					      sizeof *m);
			if (!m)
				goto nomem;
			out->matrix = m;
			cap = ncap;
		}
		it = &out->v[out->n];
		memset(it, 0, sizeof *it);
		out->n++;
		it->id = (uint64_t)sqlite3_column_int64(st, 0);
		it->seed = (uint64_t)sqlite3_column_int64(st, 2);
		it->legendary = -1;
		if (sqlite3_column_type(st, 1) != SQLITE_NULL) {
			if (!(it->legendary_name = dup_col(st, 1)))
				goto nomem;
			for (size_t g = 0; g < s->nlegendaries; g++)
				if (!strcmp(s->legendaries[g].name, it->legendary_name))
					it->legendary = (long)g;
		}
		if (!(it->traits_json = dup_col(st, 3)))
			goto nomem;
		it->status = parse_status(sqlite3_column_text(st, 4));
		copy_hex(it->recipe, st, 5);
		copy_hex(it->image, st, 6);
		it->image_bytes = (uint64_t)sqlite3_column_int64(st, 7);
		if (sqlite3_column_type(st, 8) != SQLITE_NULL && !(it->error = dup_col(st, 8)))
			goto nomem;
		it->rarity_score = sqlite3_column_double(st, 9);
		it->rarity_rank = (uint64_t)sqlite3_column_int64(st, 10);
		it->regeneration = (unsigned)sqlite3_column_int(st, 11);
		it->seed_round = (unsigned)sqlite3_column_int(st, 13);
		if (sqlite3_column_type(st, 12) != SQLITE_NULL &&
		    (!(it->prompt_adds = dup_col(st, 12)) ||
		     kiln_catalog_prompt_add(it->prompt_adds, it->regeneration, &it->prompt_add)))
			goto nomem;
	}
	if (step != SQLITE_DONE) {
		rc = db_error(c, e, "reading items");
		goto fail;
	}
	/* the matrix may have moved while growing: point items at their rows now */
	for (size_t i = 0; i < out->n; i++) {
		out->v[i].traits = out->matrix + i * s->nlayers;
		map_traits(s, out->v[i].traits_json, out->v[i].traits);
	}
	return 0;
nomem:
	rc = kiln_error_set(e, KILN_E_NOMEM, c->path, "out of memory reading items");
fail:
	kiln_items_release(out);
	return rc;
}

#define ITEM_COLS "id, legendary, seed, traits, status, recipe, image, image_bytes, error, " \
	"rarity_score, rarity_rank, (SELECT r.regeneration FROM review_state r WHERE r.item_id = " \
	"items.id), (SELECT r.prompt_add FROM review_state r WHERE r.item_id = items.id), " \
	"(SELECT coalesce(r.seed_round, r.regeneration) FROM review_state r WHERE r.item_id = " \
	"items.id)"

int kiln_catalog_items(struct kiln_catalog *c, const struct kiln_spec *s, struct kiln_items *out,
		       struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	int rc = prepare(c, "SELECT " ITEM_COLS " FROM items ORDER BY id", &st, e);
	if (!rc)
		rc = load_items(c, s, st, out, e);
	sqlite3_finalize(st);
	return rc;
}

int kiln_catalog_item(struct kiln_catalog *c, const struct kiln_spec *s, uint64_t id,
		      struct kiln_items *out, struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	int rc = prepare(c, "SELECT " ITEM_COLS " FROM items WHERE id = ?", &st, e);
	if (!rc) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
		rc = load_items(c, s, st, out, e);
	}
	sqlite3_finalize(st);
	return rc;
}

const struct kiln_item *kiln_items_find(const struct kiln_items *items, uint64_t id, size_t *at)
{
	size_t lo = 0, hi = items->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (items->v[mid].id == id) {
			if (at)
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

void kiln_items_release(struct kiln_items *it)
{
	for (size_t i = 0; i < it->n; i++) {
		free(it->v[i].legendary_name);
		free(it->v[i].traits_json);
		free(it->v[i].error);
		free(it->v[i].prompt_add);
		free(it->v[i].prompt_adds);
	}
	free(it->v);
	free(it->matrix);
	memset(it, 0, sizeof *it);
}

/* {"Layer": "Value", ...} in layer order for a generated item; "{}" for a legendary. */
static char *traits_json(const struct kiln_spec *s, const struct kiln_plan_item *pi)
{
	json_t *o = json_object();
	char *out;
	if (!o)
		return NULL;
	if (pi->legendary < 0) {
		for (size_t l = 0; l < s->nlayers; l++) {
			uint32_t t = pi->traits[l];
			if (t == KILN_PLAN_UNSET || t >= s->layers[l].ntraits)
				continue;
			if (json_object_set_new(o, s->layers[l].name,
						json_string(s->layers[l].traits[t].name))) {
				json_decref(o);
				return NULL;
			}
		}
	}
	out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return out;
}

/* has_item 0: a collection-wide event (item_id NULL); token 0 is a real id. */
static int insert_event(struct kiln_catalog *c, const char *kind, int has_item, uint64_t item_id,
			const char *detail, struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	char at[48];
	int rc = prepare(c, "INSERT INTO events(at, kind, item_id, detail) VALUES (?,?,?,?)", &st, e);
	if (rc)
		return rc;
	now_iso(at);
	sqlite3_bind_text(st, 1, at, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
	if (has_item)
		sqlite3_bind_int64(st, 3, (sqlite3_int64)item_id);
	if (detail)
		sqlite3_bind_text(st, 4, detail, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_error(c, e, "writing the event log");
	sqlite3_finalize(st);
	return rc;
}

/* Ids past KILN_ID_MAX are refused: SQLite holds 63 bits, but JSON readers (JavaScript
 * numbers) hold 53 exactly, and the range arithmetic below must not wrap. */
static int check_ids(struct kiln_catalog *c, const struct kiln_spec *s, const struct kiln_plan *p,
		     struct kiln_error *e)
{
	if (s->start_id > KILN_ID_MAX || p->nitems > KILN_ID_MAX - s->start_id + 1)
		return kiln_error_set(e, KILN_E_SPEC, s->path, "token ids would run from %llu past "
				      "%llu (2^53-1), the largest id every reader holds exactly "
				      "(JavaScript numbers among them): lower metadata.start_id",
				      (unsigned long long)s->start_id,
				      (unsigned long long)KILN_ID_MAX);
	for (size_t i = 0; i < p->nitems; i++)
		if (p->items[i].id > KILN_ID_MAX || p->items[i].id < s->start_id)
			return kiln_error_set(e, KILN_E_STATE, c->path, "item %llu is outside the "
					      "ids %llu..%llu", (unsigned long long)p->items[i].id,
					      (unsigned long long)s->start_id,
					      (unsigned long long)KILN_ID_MAX);
	return 0;
}

/* SQL: item i has review_log rows after its last reset (decisions a re-plan must reset) */
#define LOGGED_SINCE_RESET                                                                     \
	"EXISTS (SELECT 1 FROM review_log l WHERE l.item_id = i.id AND l.id > coalesce((SELECT " \
	"max(x.id) FROM review_log x WHERE x.item_id = i.id AND x.action = 'reset'), 0))"

int kiln_catalog_save_plan(struct kiln_catalog *c, const struct kiln_spec *s,
			   const struct kiln_plan *p, const double *scores, const uint64_t *ranks,
			   const char *spec_sha, const char *detail_json, struct kiln_error *e)
{
	sqlite3_stmt *up = NULL, *del = NULL, *chg = NULL, *gone = NULL;
	uint64_t *goneids = NULL;
	size_t ngone = 0, capgone = 0;
	char at[48];
	int rc;
	now_iso(at);
	if ((rc = check_ids(c, s, p, e)) || (rc = begin(c, e)))
		return rc;
	/* review decisions are logged by item id: a token the new plan gives other traits, another
	 * seed or legendary, or removes, must not keep the decisions made on the old one (a "reset"
	 * in the review log, written before the row changes; none when nothing was logged on the
	 * item since its last reset) */
	if ((rc = prepare(c, "SELECT 1 FROM items i JOIN review_state r ON r.item_id = i.id "
			     "WHERE i.id = ?1 AND NOT (i.traits IS ?2 AND i.seed = ?3 AND "
			     "i.legendary IS ?4) AND " LOGGED_SINCE_RESET, &chg, e)) ||
	    (rc = prepare(c, "SELECT i.id FROM items i JOIN review_state r ON r.item_id = i.id "
			     "WHERE (i.id < ?1 OR i.id >= ?2) AND " LOGGED_SINCE_RESET, &gone, e)))
		goto out;
	sqlite3_bind_int64(gone, 1, (sqlite3_int64)s->start_id);
	sqlite3_bind_int64(gone, 2, (sqlite3_int64)(s->start_id + p->nitems));
	/* the ids first, then the resets (which write review_state, read by the query) */
	while ((rc = sqlite3_step(gone)) == SQLITE_ROW) {
		if (ngone == capgone) {
			uint64_t *b = kiln_reallocarray(goneids, capgone = capgone ? capgone * 2 : 16,
							sizeof *b);
			if (!b) {
				rc = kiln_error_set(e, KILN_E_NOMEM, c->path,
						    "out of memory saving the plan");
				goto out;
			}
			goneids = b;
		}
		goneids[ngone++] = (uint64_t)sqlite3_column_int64(gone, 0);
	}
	if (rc != SQLITE_DONE) {
		rc = db_error(c, e, "saving the plan");
		goto out;
	}
	rc = 0;
	for (size_t i = 0; i < ngone; i++)
		if ((rc = kiln_catalog__review_replanned_tx(c, goneids[i], "removed by a new plan",
							    e)))
			goto out;
	/* Traits or seed changed: the accepted render no longer belongs to the item. */
	rc = prepare(c,
		"INSERT INTO items(id, kind, legendary, seed, traits, rarity_score, rarity_rank, "
		"                  planned_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8) "
		"ON CONFLICT(id) DO UPDATE SET kind=excluded.kind, legendary=excluded.legendary, "
		"  rarity_score=excluded.rarity_score, rarity_rank=excluded.rarity_rank, "
		"  status = CASE WHEN items.traits IS excluded.traits AND items.seed = excluded.seed "
		"    AND items.legendary IS excluded.legendary THEN items.status ELSE 'planned' END, "
		"  image = CASE WHEN items.traits IS excluded.traits AND items.seed = excluded.seed "
		"    AND items.legendary IS excluded.legendary THEN items.image ELSE NULL END, "
		"  recipe = CASE WHEN items.traits IS excluded.traits AND items.seed = excluded.seed "
		"    AND items.legendary IS excluded.legendary THEN items.recipe ELSE NULL END, "
		"  planned_at = CASE WHEN items.traits IS excluded.traits AND items.seed = "
		"    excluded.seed AND items.legendary IS excluded.legendary THEN items.planned_at "
		"    ELSE excluded.planned_at END, "
		"  seed=excluded.seed, traits=excluded.traits", &up, e);
	if (rc)
		goto out;
	for (size_t i = 0; i < p->nitems; i++) {
		const struct kiln_plan_item *pi = &p->items[i];
		char *tj = traits_json(s, pi);
		if (!tj) {
			rc = kiln_error_set(e, KILN_E_NOMEM, c->path, "out of memory saving the plan");
			goto out;
		}
		sqlite3_reset(up);
		sqlite3_bind_int64(up, 1, (sqlite3_int64)pi->id);
		sqlite3_bind_text(up, 2, pi->legendary >= 0 ? "legendary" : "generated", -1,
				  SQLITE_STATIC);
		if (pi->legendary >= 0)
			sqlite3_bind_text(up, 3, s->legendaries[pi->legendary].name, -1,
					  SQLITE_STATIC);
		else
			sqlite3_bind_null(up, 3);
		sqlite3_bind_int64(up, 4, (sqlite3_int64)pi->seed);
		sqlite3_bind_text(up, 5, tj, -1, free);
		if (scores)
			sqlite3_bind_double(up, 6, scores[i]);
		else
			sqlite3_bind_null(up, 6);
		if (ranks)
			sqlite3_bind_int64(up, 7, (sqlite3_int64)ranks[i]);
		else
			sqlite3_bind_null(up, 7);
		sqlite3_bind_text(up, 8, at, -1, SQLITE_STATIC);
		sqlite3_reset(chg);
		sqlite3_bind_int64(chg, 1, (sqlite3_int64)pi->id);
		sqlite3_bind_text(chg, 2, tj, -1, SQLITE_STATIC);
		sqlite3_bind_int64(chg, 3, (sqlite3_int64)pi->seed);
		if (pi->legendary >= 0)
			sqlite3_bind_text(chg, 4, s->legendaries[pi->legendary].name, -1,
					  SQLITE_STATIC);
		else
			sqlite3_bind_null(chg, 4);
		if ((rc = sqlite3_step(chg)) == SQLITE_ROW)
			rc = kiln_catalog__review_replanned_tx(c, pi->id, "new traits from a new plan",
							       e);
		else if (rc != SQLITE_DONE)
			rc = db_error(c, e, "saving the plan");
		else
			rc = 0;
		sqlite3_reset(chg);
		if (rc)
			goto out;
		if (sqlite3_step(up) != SQLITE_DONE) {
			rc = db_error(c, e, "saving the plan");
			goto out;
		}
	}
	/* ids outside the new plan's range are gone */
	if ((rc = prepare(c, "DELETE FROM items WHERE id < ? OR id >= ?", &del, e)))
		goto out;
	sqlite3_bind_int64(del, 1, (sqlite3_int64)s->start_id);
	sqlite3_bind_int64(del, 2, (sqlite3_int64)(s->start_id + p->nitems));
	if (sqlite3_step(del) != SQLITE_DONE) {
		rc = db_error(c, e, "saving the plan");
		goto out;
	}
	/* the plan's generation, which QA verdicts name: its event's id */
	if ((rc = insert_event(c, "plan", 0, 0, detail_json, e)) ||
	    (rc = exec(c, "INSERT OR REPLACE INTO meta(key, value) VALUES ('plan_event', "
		       "last_insert_rowid())", e)) ||
	    (spec_sha && (rc = kiln_catalog_meta_set(c, "plan_spec_sha", spec_sha, e))))
		goto out;
	rc = commit(c, e);
out:
	sqlite3_finalize(up);
	sqlite3_finalize(del);
	sqlite3_finalize(chg);
	sqlite3_finalize(gone);
	free(goneids);
	if (rc)
		rollback(c);
	return rc;
}

int kiln_catalog_record_renders(struct kiln_catalog *c, const struct kiln_render_record *r,
				size_t n, struct kiln_error *e)
{
	sqlite3_stmt *ins = NULL, *up = NULL;
	char at[48];
	int rc;
	if (!n)
		return 0;
	now_iso(at);
	if ((rc = begin(c, e)))
		return rc;
	if ((rc = prepare(c, "INSERT INTO renders(item_id, engine, endpoint, recipe, seed, request, "
			  "status, http_status, image, bytes, error, started_at, finished_at, "
			  "error_kind, ran, gpu_seconds, cost_usd) "
			  "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", &ins, e)))
		goto out;
	if ((rc = prepare(c, "UPDATE items SET status=?2, recipe=?3, image=?4, image_bytes=?5, "
			  "error=?6, rendered_at=?7 WHERE id=?1", &up, e)))
		goto out;
	for (size_t i = 0; i < n; i++) {
		const struct kiln_render_record *x = &r[i];
		json_t *d;
		char *detail;
		sqlite3_reset(ins);
		sqlite3_clear_bindings(ins);
		sqlite3_bind_int64(ins, 1, (sqlite3_int64)x->item_id);
		sqlite3_bind_text(ins, 2, x->engine, -1, SQLITE_STATIC);
		if (x->endpoint)
			sqlite3_bind_text(ins, 3, x->endpoint, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 4, x->recipe, -1, SQLITE_STATIC);
		sqlite3_bind_int64(ins, 5, (sqlite3_int64)x->seed);
		if (x->request_json)
			sqlite3_bind_text(ins, 6, x->request_json, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 7, x->ok ? "ok" : "failed", -1, SQLITE_STATIC);
		if (x->http_status)
			sqlite3_bind_int(ins, 8, x->http_status);
		if (x->ok)
			sqlite3_bind_text(ins, 9, x->image, -1, SQLITE_STATIC);
		sqlite3_bind_int64(ins, 10, (sqlite3_int64)x->bytes);
		if (!x->ok && x->error)
			sqlite3_bind_text(ins, 11, x->error, -1, SQLITE_STATIC);
		sqlite3_bind_double(ins, 12, x->started);
		sqlite3_bind_double(ins, 13, x->finished);
		if (!x->ok && x->error_kind)
			sqlite3_bind_text(ins, 14, x->error_kind, -1, SQLITE_STATIC);
		if (x->ran_json)
			sqlite3_bind_text(ins, 15, x->ran_json, -1, SQLITE_STATIC);
		if (x->gpu_seconds > 0)
			sqlite3_bind_double(ins, 16, x->gpu_seconds);
		if (x->cost_usd > 0)
			sqlite3_bind_double(ins, 17, x->cost_usd);
		if (sqlite3_step(ins) != SQLITE_DONE) {
			rc = db_error(c, e, "recording a render");
			goto out;
		}
		sqlite3_reset(up);
		sqlite3_clear_bindings(up);
		sqlite3_bind_int64(up, 1, (sqlite3_int64)x->item_id);
		sqlite3_bind_text(up, 2, x->ok ? "rendered" : "failed", -1, SQLITE_STATIC);
		if (x->ok) {
			sqlite3_bind_text(up, 3, x->recipe, -1, SQLITE_STATIC);
			sqlite3_bind_text(up, 4, x->image, -1, SQLITE_STATIC);
			sqlite3_bind_int64(up, 5, (sqlite3_int64)x->bytes);
		} else if (x->error) {
			sqlite3_bind_text(up, 6, x->error, -1, SQLITE_STATIC);
		}
		sqlite3_bind_text(up, 7, at, -1, SQLITE_STATIC);
		if (sqlite3_step(up) != SQLITE_DONE) {
			rc = db_error(c, e, "recording a render");
			goto out;
		}
		d = json_pack("{s:s, s:s?, s:s?, s:s?, s:f}", "status", x->ok ? "ok" : "failed",
			      "image", x->ok ? x->image : NULL, "error", x->ok ? NULL : x->error,
			      "endpoint", x->endpoint, "seconds", x->finished - x->started);
		detail = d ? json_dumps(d, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
		json_decref(d);
		if (!detail) {
			rc = kiln_error_set(e, KILN_E_NOMEM, c->path, "out of memory");
			goto out;
		}
		rc = insert_event(c, "render", 1, x->item_id, detail, e);
		free(detail);
		if (rc)
			goto out;
		/* review: a token sent back for regeneration has new candidates: pending again */
		if (x->ok && (rc = kiln_catalog__review_rendered_tx(c, x->item_id, e)))
			goto out;
	}
	rc = commit(c, e);
out:
	sqlite3_finalize(ins);
	sqlite3_finalize(up);
	if (rc)
		rollback(c);
	return rc;
}

int kiln_catalog_event(struct kiln_catalog *c, const char *kind, int has_item, uint64_t item_id,
		       const char *detail_json, struct kiln_error *e)
{
	int rc = writable(c, e);
	return rc ? rc : insert_event(c, kind, has_item, item_id, detail_json, e);
}

int kiln_catalog_meta_get(struct kiln_catalog *c, const char *key, char **value,
			  struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	int rc = prepare(c, "SELECT value FROM meta WHERE key = ?", &st, e), step;
	*value = NULL;
	if (rc)
		return rc;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		if (sqlite3_column_type(st, 0) != SQLITE_NULL && !(*value = dup_col(st, 0)))
			rc = kiln_error_set(e, KILN_E_NOMEM, c->path, "out of memory");
	} else if (step != SQLITE_DONE) {
		rc = db_error(c, e, "reading meta");
	}
	sqlite3_finalize(st);
	return rc;
}

int kiln_catalog_meta_set(struct kiln_catalog *c, const char *key, const char *value,
			  struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	int rc = writable(c, e);
	if (rc)
		return rc;
	rc = prepare(c, "INSERT INTO meta(key, value) VALUES (?1, ?2) "
			 "ON CONFLICT(key) DO UPDATE SET value = excluded.value", &st, e);
	if (rc)
		return rc;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_error(c, e, "writing meta");
	sqlite3_finalize(st);
	return rc;
}

static int count_query(struct kiln_catalog *c, const char *sql, uint64_t *out, double *dout,
		       struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	int rc = prepare(c, sql, &st, e);
	if (rc)
		return rc;
	if (sqlite3_step(st) == SQLITE_ROW) {
		if (out)
			*out = (uint64_t)sqlite3_column_int64(st, 0);
		if (dout)
			*dout = sqlite3_column_double(st, 0);
	} else {
		rc = db_error(c, e, "counting");
	}
	sqlite3_finalize(st);
	return rc;
}

int kiln_catalog_counts(struct kiln_catalog *c, struct kiln_catalog_counts *o,
			struct kiln_error *e)
{
	int rc;
	memset(o, 0, sizeof *o);
	if ((rc = count_query(c, "SELECT count(*) FROM items", &o->items, NULL, e)) ||
	    (rc = count_query(c, "SELECT count(*) FROM items WHERE status='planned'", &o->planned,
			      NULL, e)) ||
	    (rc = count_query(c, "SELECT count(*) FROM items WHERE status='rendered'",
			      &o->rendered, NULL, e)) ||
	    (rc = count_query(c, "SELECT count(*) FROM items WHERE status='failed'", &o->failed,
			      NULL, e)) ||
	    (rc = count_query(c, "SELECT count(*) FROM items WHERE kind='legendary'",
			      &o->legendaries, NULL, e)) ||
	    (rc = count_query(c, "SELECT count(*) FROM renders", &o->renders, NULL, e)) ||
	    (rc = count_query(c, "SELECT count(*) FROM renders WHERE status='failed'",
			      &o->renders_failed, NULL, e)) ||
	    (rc = count_query(c, "SELECT count(*) FROM events", &o->events, NULL, e)) ||
	    (rc = count_query(c, "SELECT coalesce(sum(finished_at - started_at), 0) FROM renders",
			      NULL, &o->render_seconds, e)))
		return rc;
	return 0;
}

int kiln_catalog_item_renders_json(struct kiln_catalog *c, uint64_t id, char **json,
				   struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	json_t *arr = json_array();
	int rc, step;
	*json = NULL;
	if (!arr)
		return kiln_error_set(e, KILN_E_NOMEM, c->path, "out of memory");
	if ((rc = prepare(c, "SELECT id, engine, endpoint, recipe, seed, status, http_status, "
			  "image, bytes, error, started_at, finished_at, ran FROM renders "
			  "WHERE item_id = ? ORDER BY id DESC", &st, e)))
		goto out;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *o = json_pack("{s:I, s:s, s:s?, s:s?, s:I, s:s, s:s?, s:I, s:s?, s:f, s:f}",
			"attempt", (json_int_t)sqlite3_column_int64(st, 0),
			"engine", (const char *)sqlite3_column_text(st, 1),
			"endpoint", (const char *)sqlite3_column_text(st, 2),
			"recipe", (const char *)sqlite3_column_text(st, 3),
			"seed", (json_int_t)sqlite3_column_int64(st, 4),
			"status", (const char *)sqlite3_column_text(st, 5),
			"image", (const char *)sqlite3_column_text(st, 7),
			"bytes", (json_int_t)sqlite3_column_int64(st, 8),
			"error", (const char *)sqlite3_column_text(st, 9),
			"started_at", sqlite3_column_double(st, 10),
			"seconds", sqlite3_column_double(st, 11) - sqlite3_column_double(st, 10));
		/* what the server reported it used (AI engines), as the object it is */
		const char *ran = (const char *)sqlite3_column_text(st, 12);
		json_t *rj = ran ? json_loads(ran, 0, NULL) : NULL;
		if (o && json_object_set_new(o, "ran", rj ? rj : json_null())) {
			json_decref(o);
			o = NULL;
		}
		if (!o || json_array_append_new(arr, o)) {
			rc = kiln_error_set(e, KILN_E_NOMEM, c->path, "out of memory");
			goto out;
		}
	}
	if (step != SQLITE_DONE) {
		rc = db_error(c, e, "reading renders");
		goto out;
	}
	*json = json_dumps(arr, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!*json)
		rc = kiln_error_set(e, KILN_E_NOMEM, c->path, "out of memory");
out:
	sqlite3_finalize(st);
	json_decref(arr);
	return rc;
}

/* --- AI renders ------------------------------------------------------------------------------
 * ai_inflight rows live only while a server may be running a job; ai_info rows are kept. */

/* The AI tables are made by the migration to version 3: nothing is left to do here. */
int kiln_catalog_ai_init(struct kiln_catalog *c, struct kiln_error *e)
{
	(void)c;
	(void)e;
	return 0;
}

int kiln_catalog_inflight_put(struct kiln_catalog *c, const struct kiln_inflight *f,
			      struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	struct timeval tv;
	int rc = writable(c, e);
	if (rc)
		return rc;
	rc = prepare(c, "INSERT OR REPLACE INTO ai_inflight(item_id, seed, recipe, endpoint, "
			 "engine, remote_id, attempt, at) VALUES (?,?,?,?,?,?,?,?)", &st, e);
	if (rc)
		return rc;
	gettimeofday(&tv, NULL);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)f->item_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)f->seed);
	sqlite3_bind_text(st, 3, f->recipe, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, f->endpoint, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, f->engine, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, f->remote_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 7, (int)f->attempt);
	sqlite3_bind_double(st, 8, (double)tv.tv_sec + tv.tv_usec / 1e6);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_error(c, e, "recording a job in flight");
	sqlite3_finalize(st);
	return rc;
}

int kiln_catalog_inflight_each(struct kiln_catalog *c,
			       int (*fn)(void *user, const struct kiln_inflight *f), void *user,
			       struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	int rc = prepare(c, "SELECT item_id, seed, recipe, endpoint, engine, remote_id, attempt "
			 "FROM ai_inflight ORDER BY at", &st, e), step;
	if (rc)
		return rc;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		struct kiln_inflight f;
		f.item_id = (uint64_t)sqlite3_column_int64(st, 0);
		f.seed = (uint64_t)sqlite3_column_int64(st, 1);
		f.recipe = (const char *)sqlite3_column_text(st, 2);
		f.endpoint = (const char *)sqlite3_column_text(st, 3);
		f.engine = (const char *)sqlite3_column_text(st, 4);
		f.remote_id = (const char *)sqlite3_column_text(st, 5);
		f.attempt = (unsigned)sqlite3_column_int(st, 6);
		if (fn(user, &f))
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		rc = db_error(c, e, "reading jobs in flight");
	sqlite3_finalize(st);
	return rc;
}

int kiln_catalog_ai_finish(struct kiln_catalog *c, const struct kiln_ai_outcome *o, size_t n,
			   struct kiln_error *e)
{
	sqlite3_stmt *del = NULL, *ins = NULL;
	int rc;
	if (!n)
		return 0;
	if ((rc = begin(c, e)))
		return rc;
	if ((rc = prepare(c, "DELETE FROM ai_inflight WHERE item_id = ? AND seed = ?", &del, e)) ||
	    (rc = prepare(c, "INSERT INTO ai_info(item_id, seed, seed_used, image, endpoint, "
			  "remote_id, info) VALUES (?,?,?,?,?,?,?)", &ins, e)))
		goto out;
	for (size_t i = 0; i < n; i++) {
		const struct kiln_ai_outcome *x = &o[i];
		sqlite3_reset(del);
		sqlite3_bind_int64(del, 1, (sqlite3_int64)x->item_id);
		sqlite3_bind_int64(del, 2, (sqlite3_int64)x->seed);
		if (sqlite3_step(del) != SQLITE_DONE) {
			rc = db_error(c, e, "finishing a job");
			goto out;
		}
		if (!x->ok)
			continue;
		sqlite3_reset(ins);
		sqlite3_clear_bindings(ins);
		sqlite3_bind_int64(ins, 1, (sqlite3_int64)x->item_id);
		sqlite3_bind_int64(ins, 2, (sqlite3_int64)x->seed);
		sqlite3_bind_int64(ins, 3, (sqlite3_int64)x->seed_used);
		sqlite3_bind_text(ins, 4, x->image, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 5, x->endpoint, -1, SQLITE_STATIC);
		if (x->remote_id && x->remote_id[0])
			sqlite3_bind_text(ins, 6, x->remote_id, -1, SQLITE_STATIC);
		if (x->info)
			sqlite3_bind_text(ins, 7, x->info, -1, SQLITE_STATIC);
		if (sqlite3_step(ins) != SQLITE_DONE) {
			rc = db_error(c, e, "recording what a server said");
			goto out;
		}
	}
	rc = commit(c, e);
out:
	sqlite3_finalize(del);
	sqlite3_finalize(ins);
	if (rc)
		rollback(c);
	return rc;
}

int kiln_catalog_ai_done_each(struct kiln_catalog *c,
			      int (*fn)(void *user, uint64_t item_id, const char *recipe,
					const char *image),
			      void *user, struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	int rc = prepare(c, "SELECT item_id, recipe, image FROM renders WHERE status = 'ok' AND "
			 "engine <> 'compose' AND recipe IS NOT NULL AND image IS NOT NULL", &st, e);
	int step;
	if (rc)
		return rc;
	while ((step = sqlite3_step(st)) == SQLITE_ROW)
		if (fn(user, (uint64_t)sqlite3_column_int64(st, 0),
		       (const char *)sqlite3_column_text(st, 1),
		       (const char *)sqlite3_column_text(st, 2)))
			break;
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		rc = db_error(c, e, "reading renders");
	sqlite3_finalize(st);
	return rc;
}

int kiln_catalog_ai_run_start(struct kiln_catalog *c, double at, struct kiln_error *e)
{
	char v[64];
	snprintf(v, sizeof v, "%.3f", at);
	return kiln_catalog_meta_set(c, "ai_run_started", v, e);
}

/* A failed attempt's kind: as recorded, or (rows from before kinds were recorded) from its
 * HTTP status and message. */
#define KIND_SQL \
	"CASE WHEN status = 'ok' THEN NULL WHEN error_kind IS NOT NULL THEN error_kind " \
	"WHEN http_status >= 500 THEN 'http_5xx' WHEN http_status >= 400 THEN 'http_4xx' " \
	"WHEN coalesce(http_status, 0) = 0 AND error LIKE '%timed out%' THEN 'timeout' " \
	"WHEN coalesce(http_status, 0) = 0 THEN 'connection' ELSE 'other' END"

/* The last run's accepted attempts, endpoint by endpoint, shortest first: mean and p95
 * (nearest rank) of their durations. */
static int run_latencies(struct kiln_catalog *c, double since, struct kiln_endpoint_stat *v,
			 size_t n, struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	double *d = NULL, sum = 0;
	size_t nd = 0, cap = 0, cur = n;
	int rc, step;
	if ((rc = prepare(c, "SELECT endpoint, finished_at - started_at FROM renders "
			  "WHERE endpoint IS NOT NULL AND status = 'ok' AND started_at >= ?1 "
			  "ORDER BY endpoint, 2", &st, e)))
		return rc;
	sqlite3_bind_double(st, 1, since);
	for (;;) {
		const char *ep = NULL;
		step = sqlite3_step(st);
		if (step == SQLITE_ROW)
			ep = (const char *)sqlite3_column_text(st, 0);
		if (cur < n && (!ep || strcmp(ep, v[cur].endpoint))) {
			if (nd) {
				size_t k = (size_t)ceil(0.95 * (double)nd);
				v[cur].latency_mean = sum / (double)nd;
				v[cur].latency_p95 = d[k ? k - 1 : 0];
			}
			cur = n;
		}
		if (!ep)
			break;
		if (cur == n) {
			for (cur = 0; cur < n && strcmp(v[cur].endpoint, ep); cur++)
				;
			nd = 0;
			sum = 0;
		}
		if (nd == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			double *nv = kiln_reallocarray(d, ncap, sizeof *nv);
			if (!nv) {
				rc = kiln_error_set(e, KILN_E_NOMEM, c->path, "out of memory");
				goto out;
			}
			d = nv;
			cap = ncap;
		}
		d[nd] = sqlite3_column_double(st, 1);
		sum += d[nd++];
	}
	if (step != SQLITE_DONE)
		rc = db_error(c, e, "reading renders");
out:
	free(d);
	sqlite3_finalize(st);
	return rc;
}

int kiln_catalog_spend(struct kiln_catalog *c, double *usd, struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	int rc;
	*usd = 0;
	if ((rc = prepare(c, "SELECT coalesce(sum(cost_usd), 0) FROM renders", &st, e)))
		return rc;
	if (sqlite3_step(st) == SQLITE_ROW)
		*usd = sqlite3_column_double(st, 0);
	else
		rc = db_error(c, e, "reading the spend");
	sqlite3_finalize(st);
	return rc;
}

int kiln_catalog_endpoint_stats(struct kiln_catalog *c, struct kiln_endpoint_stat **out,
				size_t *n, struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	struct kiln_endpoint_stat *v = NULL;
	char *since_s = NULL;
	double since = 0, run_end = 0;
	size_t cap = 0;
	int rc, step;
	*out = NULL;
	*n = 0;
	if ((rc = kiln_catalog_meta_get(c, "ai_run_started", &since_s, e)))
		return rc;
	if (since_s)
		since = strtod(since_s, NULL);
	free(since_s);
	if ((rc = prepare(c, "SELECT endpoint, min(engine), count(*), "
			  "sum(status = 'ok'), sum(status = 'failed'), "
			  "coalesce(sum(finished_at - started_at), 0), min(started_at), "
			  "max(finished_at), sum(kind = 'timeout'), sum(kind = 'http_5xx'), "
			  "sum(kind = 'http_4xx'), sum(kind = 'connection'), "
			  "sum(kind = 'bad_image'), sum(kind = 'job_failed'), "
			  "sum(kind IS NOT NULL AND kind NOT IN ('timeout', 'http_5xx', "
			  "'http_4xx', 'connection', 'bad_image', 'job_failed')), "
			  "sum(status = 'ok' AND started_at >= ?1), "
			  "sum(status = 'failed' AND started_at >= ?1), "
			  "max(CASE WHEN started_at >= ?1 THEN finished_at END), "
			  "coalesce(sum(gpu_seconds), 0), coalesce(sum(cost_usd), 0), "
			  "coalesce(sum(CASE WHEN started_at >= ?1 THEN cost_usd END), 0) "
			  "FROM (SELECT *, " KIND_SQL " AS kind FROM renders "
			  "WHERE endpoint IS NOT NULL) GROUP BY endpoint ORDER BY endpoint", &st, e)))
		return rc;
	sqlite3_bind_double(st, 1, since);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		struct kiln_endpoint_stat *x;
		if (*n == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			struct kiln_endpoint_stat *nv = kiln_reallocarray(v, ncap, sizeof *nv);
			if (!nv)
				goto nomem;
			v = nv;
			cap = ncap;
		}
		x = &v[*n];
		memset(x, 0, sizeof *x);
		(*n)++;
		if (!(x->endpoint = dup_col(st, 0)) || !(x->engine = dup_col(st, 1)))
			goto nomem;
		x->attempts = (uint64_t)sqlite3_column_int64(st, 2);
		x->ok = (uint64_t)sqlite3_column_int64(st, 3);
		x->failed = (uint64_t)sqlite3_column_int64(st, 4);
		x->busy_seconds = sqlite3_column_double(st, 5);
		x->first = sqlite3_column_double(st, 6);
		x->last = sqlite3_column_double(st, 7);
		x->timeout = (uint64_t)sqlite3_column_int64(st, 8);
		x->http_5xx = (uint64_t)sqlite3_column_int64(st, 9);
		x->http_4xx = (uint64_t)sqlite3_column_int64(st, 10);
		x->connection = (uint64_t)sqlite3_column_int64(st, 11);
		x->bad_image = (uint64_t)sqlite3_column_int64(st, 12);
		x->job_failed = (uint64_t)sqlite3_column_int64(st, 13);
		x->other = (uint64_t)sqlite3_column_int64(st, 14);
		x->run_ok = (uint64_t)sqlite3_column_int64(st, 15);
		x->run_failed = (uint64_t)sqlite3_column_int64(st, 16);
		if (sqlite3_column_double(st, 17) > run_end)
			run_end = sqlite3_column_double(st, 17);
		x->gpu_seconds = sqlite3_column_double(st, 18);
		x->cost_usd = sqlite3_column_double(st, 19);
		x->run_cost_usd = sqlite3_column_double(st, 20);
	}
	if (step != SQLITE_DONE) {
		rc = db_error(c, e, "reading renders");
		goto fail;
	}
	sqlite3_finalize(st);
	st = NULL;
	/* the run's span: from its start (or, for a catalog that never recorded one, the first
	 * attempt) to its last finished attempt, the same for every endpoint */
	if (!since)
		for (size_t i = 0; i < *n; i++)
			if (!since || v[i].first < since)
				since = v[i].first;
	for (size_t i = 0; i < *n; i++) {
		v[i].run_seconds = run_end > since ? run_end - since : 0;
		v[i].images_per_minute = v[i].run_seconds > 0 ?
			(double)v[i].run_ok * 60.0 / v[i].run_seconds : 0;
	}
	if ((rc = run_latencies(c, since, v, *n, e)))
		goto fail;
	for (size_t i = 0; i < *n; i++) {
		char key[1200];
		snprintf(key, sizeof key, "endpoint_health %s", v[i].endpoint);
		if ((rc = kiln_catalog_meta_get(c, key, &v[i].health, e)))
			goto fail;
	}
	*out = v;
	return 0;
nomem:
	rc = kiln_error_set(e, KILN_E_NOMEM, c->path, "out of memory");
fail:
	sqlite3_finalize(st);
	kiln_endpoint_stats_free(v, *n);
	*n = 0;
	return rc;
}

void kiln_endpoint_stats_free(struct kiln_endpoint_stat *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].endpoint);
		free(v[i].engine);
		free(v[i].health);
	}
	free(v);
}

int kiln_catalog_save_qa(struct kiln_catalog *c, const struct kiln_qa_row *rows, size_t n,
			 const struct kiln_qa_judged *judged, size_t njudged,
			 const char *detail_json, struct kiln_error *e)
{
	sqlite3_stmt *ins = NULL, *jud = NULL;
	int rc;
	if ((rc = begin(c, e)))
		return rc;
	if ((rc = exec(c, "DELETE FROM qa_findings; DELETE FROM qa_judged", e)))
		goto out;
	if ((rc = prepare(c, "INSERT INTO qa_findings(item_id, check_id, severity, file, path, "
			  "message, image, origin, plan) VALUES (?,?,?,?,?,?,?,?," PLAN_NOW ")",
			  &ins, e)) ||
	    (rc = prepare(c, "INSERT OR REPLACE INTO qa_judged(item_id, image) VALUES (?,?)", &jud,
			  e)))
		goto out;
	for (size_t i = 0; i < n; i++) {
		sqlite3_reset(ins);
		sqlite3_clear_bindings(ins);
		/* NULL item_id means "no token"; token 0 is stored as 0 */
		if (rows[i].has_item)
			sqlite3_bind_int64(ins, 1, (sqlite3_int64)rows[i].item_id);
		sqlite3_bind_text(ins, 2, rows[i].check, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 3, rows[i].severity, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 4, rows[i].file, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 5, rows[i].path, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 6, rows[i].message, -1, SQLITE_STATIC);
		if (rows[i].has_item && rows[i].image && *rows[i].image)
			sqlite3_bind_text(ins, 7, rows[i].image, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 8, rows[i].origin == KILN_QA_ORIGIN_DIST ? "dist" : "catalog",
				  -1, SQLITE_STATIC);
		if (sqlite3_step(ins) != SQLITE_DONE) {
			rc = db_error(c, e, "saving QA results");
			goto out;
		}
	}
	for (size_t i = 0; i < njudged; i++) {
		sqlite3_reset(jud);
		sqlite3_clear_bindings(jud);
		sqlite3_bind_int64(jud, 1, (sqlite3_int64)judged[i].item_id);
		if (judged[i].image && *judged[i].image)
			sqlite3_bind_text(jud, 2, judged[i].image, -1, SQLITE_STATIC);
		if (sqlite3_step(jud) != SQLITE_DONE) {
			rc = db_error(c, e, "saving QA results");
			goto out;
		}
	}
	if ((rc = insert_event(c, "qa", 0, 0, detail_json, e)) ||
	    (rc = kiln_catalog_meta_set(c, "qa_ran", "1", e)) ||
	    (rc = exec(c, "INSERT OR REPLACE INTO meta(key, value) VALUES ('qa_plan', "
		       "coalesce((SELECT value FROM meta WHERE key = 'plan_event'), 'none'))", e)))
		goto out;
	rc = commit(c, e);
out:
	sqlite3_finalize(ins);
	sqlite3_finalize(jud);
	if (rc)
		rollback(c);
	return rc;
}

/* The token's final image (what release and QA use): the output of the last image step of
 * its polish chain when the chain starts from the image it holds now (a chain made on an
 * image since re-rendered does not count), else its accepted render. ID is an SQL
 * expression for the item's id, IMG for its items.image. */
#define FINAL_IMAGE(ID, IMG)                                                                 \
	"coalesce((SELECT p.output FROM polish_steps p WHERE p.item_id = " ID " AND "          \
	"p.is_image AND (SELECT p0.input FROM polish_steps p0 WHERE p0.item_id = " ID " AND "  \
	"p0.step = 0) IS " IMG " ORDER BY p.step DESC LIMIT 1), " IMG ")"

/* The verdicts that gate a release: error findings from the catalog's checks, on a token
 * whose current image is the one judged (IS compares NULL with NULL: an item judged without
 * an image stays blocked until it has one), or on no token at all and about the current plan
 * (a collection-level finding about another plan, say one made before `kiln plan`, is
 * ignored); and older token rows (origin NULL) as they were. */
#define QA_BLOCKING                                                                          \
	"q.severity = 'error' AND (q.origin IS NULL OR q.origin = 'catalog') AND CASE WHEN "  \
	"q.item_id IS NULL THEN q.plan IS " PLAN_NOW " ELSE (q.origin IS NULL OR q.image IS " \
	"(SELECT " FINAL_IMAGE("i.id", "i.image") " FROM items i WHERE i.id = q.item_id)) END"

/* Tokens holding an image that QA has not judged: never (no qa_judged row, or one judged
 * before it had an image), and since re-rendered (judged on another image). */
#define QA_UNCHECKED                                                                         \
	"FROM items i WHERE i.image IS NOT NULL AND NOT EXISTS (SELECT 1 FROM qa_judged j "    \
	"WHERE j.item_id = i.id AND j.image IS NOT NULL)"
#define QA_STALE                                                                             \
	"FROM items i JOIN qa_judged j ON j.item_id = i.id WHERE i.image IS NOT NULL AND "     \
	"j.image IS NOT NULL AND j.image != " FINAL_IMAGE("i.id", "i.image")
#define QA_FAILED                                                                            \
	"FROM qa_findings q WHERE q.item_id IS NOT NULL AND q.item_id IN (SELECT id FROM "     \
	"items) AND " QA_BLOCKING

int kiln_catalog_qa_failed(struct kiln_catalog *c, uint64_t **ids, size_t *n, int *ran,
			   struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	char *v = NULL;
	size_t cap = 0;
	int rc, step;
	*ids = NULL;
	*n = 0;
	if ((rc = kiln_catalog_meta_get(c, "qa_ran", &v, e)))
		return rc;
	*ran = v != NULL;
	free(v);
	if ((rc = prepare(c, "SELECT DISTINCT q.item_id " QA_FAILED " ORDER BY q.item_id", &st,
			  e)))
		return rc;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			uint64_t *p = kiln_reallocarray(*ids, nc, sizeof *p);
			if (!p) {
				rc = kiln_error_set(e, KILN_E_NOMEM, c->path, "out of memory");
				goto out;
			}
			*ids = p;
			cap = nc;
		}
		(*ids)[(*n)++] = (uint64_t)sqlite3_column_int64(st, 0);
	}
	if (step != SQLITE_DONE) {
		rc = db_error(c, e, "reading QA results");
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	/* Collection-level errors belong to no token, so no id can carry them: the signature
	 * the release calls has no other way to say "refuse" than failing, with a message it
	 * passes on as it is. */
	if ((rc = prepare(c, "SELECT count(*), group_concat(DISTINCT q.check_id) FROM qa_findings "
			  "q WHERE q.item_id IS NULL AND " QA_BLOCKING, &st, e)))
		goto out;
	if (sqlite3_step(st) != SQLITE_ROW) {
		rc = db_error(c, e, "reading QA results");
		goto out;
	}
	if (sqlite3_column_int64(st, 0) > 0) {
		const unsigned char *checks = sqlite3_column_text(st, 1);
		rc = kiln_error_set(e, KILN_E_FAILED, c->path, "the last QA run found %lld "
				    "collection-level error(s) (%.200s)%s%zu token(s) failed QA",
				    (long long)sqlite3_column_int64(st, 0),
				    checks ? (const char *)checks : "", *n ? "; " : " and ", *n);
		kiln_error_hint(e, KILN_HINT_QA_FAILED, NULL);
	}
out:
	sqlite3_finalize(st);
	if (rc) {
		free(*ids);
		*ids = NULL;
		*n = 0;
	}
	return rc;
}

/* The first KILN_QA_FIRST ids a query gives. */
static int first_ids(struct kiln_catalog *c, const char *sql, uint64_t *out,
		     struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	int rc = prepare(c, sql, &st, e), step = SQLITE_DONE;
	for (size_t k = 0; !rc && k < KILN_QA_FIRST && (step = sqlite3_step(st)) == SQLITE_ROW; k++)
		out[k] = (uint64_t)sqlite3_column_int64(st, 0);
	if (!rc && step != SQLITE_DONE && step != SQLITE_ROW)
		rc = db_error(c, e, "reading QA results");
	sqlite3_finalize(st);
	return rc;
}

int kiln_catalog_qa_state(struct kiln_catalog *c, struct kiln_qa_state *s, struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	char *v = NULL;
	int rc;
	memset(s, 0, sizeof *s);
	if ((rc = kiln_catalog_meta_get(c, "qa_ran", &v, e)))
		return rc;
	s->ran = v != NULL;
	free(v);
	if ((rc = prepare(c, "SELECT "
			  "(SELECT count(DISTINCT q.item_id) " QA_FAILED "), "
			  "(SELECT count(*) " QA_STALE "), "
			  "(SELECT count(*) " QA_UNCHECKED "), "
			  "(SELECT count(*) FROM qa_findings q WHERE q.item_id IS NULL AND "
			  QA_BLOCKING "), "
			  "(SELECT count(*) FROM qa_findings q WHERE q.item_id IS NULL AND "
			  "q.severity = 'error' AND (q.origin IS NULL OR q.origin = 'catalog') AND "
			  "NOT (" QA_BLOCKING ")), "
			  "(SELECT count(*) FROM qa_findings WHERE severity = 'error' AND origin = "
			  "'dist'), "
			  "(SELECT count(*) FROM qa_findings WHERE severity = 'warning'), "
			  "coalesce((SELECT value FROM meta WHERE key = 'qa_plan'), 'none') IS NOT "
			  "coalesce((SELECT value FROM meta WHERE key = 'plan_event'), 'none')",
			  &st, e)))
		return rc;
	if (sqlite3_step(st) != SQLITE_ROW) {
		rc = db_error(c, e, "reading QA results");
		goto out;
	}
	s->failed_tokens = (uint64_t)sqlite3_column_int64(st, 0);
	s->stale_tokens = (uint64_t)sqlite3_column_int64(st, 1);
	s->unchecked_tokens = (uint64_t)sqlite3_column_int64(st, 2);
	s->collection_errors = (uint64_t)sqlite3_column_int64(st, 3);
	s->stale_collection = (uint64_t)sqlite3_column_int64(st, 4);
	s->dist_errors = (uint64_t)sqlite3_column_int64(st, 5);
	s->warnings = (uint64_t)sqlite3_column_int64(st, 6);
	s->plan_changed = s->ran && sqlite3_column_int(st, 7);
	if ((s->failed_tokens && (rc = first_ids(c, "SELECT DISTINCT q.item_id " QA_FAILED
						 " ORDER BY q.item_id", s->first_failed, e))) ||
	    (s->stale_tokens && (rc = first_ids(c, "SELECT i.id " QA_STALE " ORDER BY i.id",
						s->first_stale, e))) ||
	    (s->unchecked_tokens && (rc = first_ids(c, "SELECT i.id " QA_UNCHECKED
						    " ORDER BY i.id", s->first_unchecked, e))))
		goto out;
out:
	sqlite3_finalize(st);
	return rc;
}

int kiln_catalog_qa_item_json(struct kiln_catalog *c, uint64_t id, char **json,
			      struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	json_t *arr = json_array();
	int rc, step;
	*json = NULL;
	if (!arr)
		return kiln_error_set(e, KILN_E_NOMEM, c->path, "out of memory");
	if ((rc = prepare(c, "SELECT q.check_id, q.severity, q.file, q.path, q.message, "
			  "coalesce(q.origin, 'catalog'), (q.origin IS NULL OR q.image IS (SELECT "
			  FINAL_IMAGE("i.id", "i.image") " FROM items i WHERE i.id = q.item_id)) "
			  "FROM qa_findings q WHERE "
			  "q.item_id = ? ORDER BY q.id", &st, e)))
		goto out;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *o = json_object();
		static const char *const keys[] = {"check", "severity", "file", "path", "message",
						   "origin"};
		int bad = !o;
		for (int k = 0; !bad && k < 6; k++) {
			const unsigned char *t = sqlite3_column_text(st, k);
			bad = json_object_set_new(o, keys[k], json_string(t ? (const char *)t : ""));
		}
		bad = bad || json_object_set_new(o, "current",
						 json_boolean(sqlite3_column_int(st, 6)));
		if (bad || json_array_append_new(arr, o)) {
			if (bad)
				json_decref(o);
			rc = kiln_error_set(e, KILN_E_NOMEM, c->path, "out of memory");
			goto out;
		}
	}
	if (step != SQLITE_DONE) {
		rc = db_error(c, e, "reading QA results");
		goto out;
	}
	if (!(*json = json_dumps(arr, JSON_COMPACT)))
		rc = kiln_error_set(e, KILN_E_NOMEM, c->path, "out of memory");
out:
	sqlite3_finalize(st);
	json_decref(arr);
	return rc;
}

/* --- the files of the last release ------------------------------------------------------------ */

int kiln_catalog_dist_files_save(struct kiln_catalog *c, const struct kiln_dist_file *v, size_t n,
				 const char *release_inputs, const char *release_sha,
				 struct kiln_error *e)
{
	sqlite3_stmt *ins = NULL;
	int rc;
	if ((rc = begin(c, e)))
		return rc;
	if ((rc = exec(c, "DELETE FROM dist_files", e)) ||
	    (rc = prepare(c, "INSERT OR REPLACE INTO dist_files(path, size, mtime_ns, sha256) "
			  "VALUES (?,?,?,?)", &ins, e)))
		goto out;
	for (size_t i = 0; i < n; i++) {
		sqlite3_reset(ins);
		sqlite3_bind_text(ins, 1, v[i].path, -1, SQLITE_STATIC);
		sqlite3_bind_int64(ins, 2, (sqlite3_int64)v[i].size);
		sqlite3_bind_int64(ins, 3, (sqlite3_int64)v[i].mtime_ns);
		sqlite3_bind_text(ins, 4, v[i].sha256, -1, SQLITE_STATIC);
		if (sqlite3_step(ins) != SQLITE_DONE) {
			rc = db_error(c, e, "recording the release's files");
			goto out;
		}
	}
	if ((release_inputs &&
	     (rc = kiln_catalog_meta_set(c, "release_inputs", release_inputs, e))) ||
	    (release_sha && (rc = kiln_catalog_meta_set(c, "release_sha", release_sha, e))))
		goto out;
	rc = commit(c, e);
out:
	sqlite3_finalize(ins);
	if (rc)
		rollback(c);
	return rc;
}

int kiln_catalog_dist_files(struct kiln_catalog *c, struct kiln_dist_file **out, size_t *n,
			    struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	struct kiln_dist_file *v = NULL;
	size_t cap = 0;
	int rc, step;
	*out = NULL;
	*n = 0;
	if ((rc = prepare(c, "SELECT path, size, mtime_ns, sha256 FROM dist_files ORDER BY path",
			  &st, e)))
		return rc;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			size_t nc = cap ? cap * 2 : 256;
			struct kiln_dist_file *g = kiln_reallocarray(v, nc, sizeof *g);
			if (!g)
				goto nomem;
			v = g;
			cap = nc;
		}
		memset(&v[*n], 0, sizeof v[*n]);
		if (!(v[*n].path = dup_col(st, 0)))
			goto nomem;
		v[*n].size = (uint64_t)sqlite3_column_int64(st, 1);
		v[*n].mtime_ns = sqlite3_column_int64(st, 2);
		copy_hex(v[*n].sha256, st, 3);
		(*n)++;
	}
	if (step != SQLITE_DONE) {
		rc = db_error(c, e, "reading the release's files");
		goto fail;
	}
	sqlite3_finalize(st);
	*out = v;
	return 0;
nomem:
	rc = kiln_error_set(e, KILN_E_NOMEM, c->path, "out of memory");
fail:
	sqlite3_finalize(st);
	kiln_dist_files_free(v, *n);
	*n = 0;
	return rc;
}

void kiln_dist_files_free(struct kiln_dist_file *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i].path);
	free(v);
}

/* --- polish chains ------------------------------------------------------------------------ */

int kiln_catalog_polish_each(struct kiln_catalog *c, int has_item, uint64_t item_id,
			     int (*fn)(void *user, const struct kiln_polish_step *st), void *user,
			     struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	int rc = prepare(c, has_item ?
			 "SELECT item_id, step, kind, settings, recipe, input, output, bytes, "
			 "is_image, made_by, tool, note, at FROM polish_steps WHERE item_id = ? "
			 "ORDER BY step" :
			 "SELECT item_id, step, kind, settings, recipe, input, output, bytes, "
			 "is_image, made_by, tool, note, at FROM polish_steps ORDER BY item_id, step",
			 &st, e), step;
	if (rc)
		return rc;
	if (has_item)
		sqlite3_bind_int64(st, 1, (sqlite3_int64)item_id);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		struct kiln_polish_step p;
		p.item_id = (uint64_t)sqlite3_column_int64(st, 0);
		p.step = (unsigned)sqlite3_column_int(st, 1);
		p.kind = (const char *)sqlite3_column_text(st, 2);
		p.settings = (const char *)sqlite3_column_text(st, 3);
		p.recipe = (const char *)sqlite3_column_text(st, 4);
		p.input = (const char *)sqlite3_column_text(st, 5);
		p.output = (const char *)sqlite3_column_text(st, 6);
		p.bytes = (uint64_t)sqlite3_column_int64(st, 7);
		p.image = sqlite3_column_int(st, 8);
		p.by = (const char *)sqlite3_column_text(st, 9);
		p.tool = (const char *)sqlite3_column_text(st, 10);
		p.note = (const char *)sqlite3_column_text(st, 11);
		p.at = (const char *)sqlite3_column_text(st, 12);
		if (!p.kind || !p.settings || !p.recipe || !p.input || !p.output || !p.by ||
		    !p.at) {
			rc = kiln_error_set(e, KILN_E_NOMEM, c->path, "out of memory");
			break;
		}
		if (fn(user, &p))
			break;
	}
	if (!rc && step != SQLITE_ROW && step != SQLITE_DONE)
		rc = db_error(c, e, "reading polish steps");
	sqlite3_finalize(st);
	return rc;
}

static void bind_opt(sqlite3_stmt *st, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

int kiln_catalog_polish_save(struct kiln_catalog *c, const uint64_t *items, size_t nitems,
			     const struct kiln_polish_step *v, size_t n, struct kiln_error *e)
{
	sqlite3_stmt *del = NULL, *ins = NULL;
	char at[48];
	int rc;
	if (!nitems)
		return 0;
	if ((rc = begin(c, e)))
		return rc;
	now_iso(at);
	if ((rc = prepare(c, "DELETE FROM polish_steps WHERE item_id = ?", &del, e)) ||
	    (rc = prepare(c, "INSERT INTO polish_steps(item_id, step, kind, settings, recipe, "
			  "input, output, bytes, is_image, made_by, tool, note, at) VALUES "
			  "(?,?,?,?,?,?,?,?,?,?,?,?,?)", &ins, e)))
		goto out;
	for (size_t i = 0; i < nitems; i++) {
		sqlite3_reset(del);
		sqlite3_bind_int64(del, 1, (sqlite3_int64)items[i]);
		if (sqlite3_step(del) != SQLITE_DONE) {
			rc = db_error(c, e, "replacing polish steps");
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++) {
		const struct kiln_polish_step *p = &v[i];
		sqlite3_reset(ins);
		sqlite3_bind_int64(ins, 1, (sqlite3_int64)p->item_id);
		sqlite3_bind_int(ins, 2, (int)p->step);
		bind_opt(ins, 3, p->kind);
		bind_opt(ins, 4, p->settings);
		bind_opt(ins, 5, p->recipe);
		bind_opt(ins, 6, p->input);
		bind_opt(ins, 7, p->output);
		sqlite3_bind_int64(ins, 8, (sqlite3_int64)p->bytes);
		sqlite3_bind_int(ins, 9, p->image ? 1 : 0);
		bind_opt(ins, 10, p->by);
		bind_opt(ins, 11, p->tool);
		bind_opt(ins, 12, p->note);
		sqlite3_bind_text(ins, 13, p->at ? p->at : at, -1, SQLITE_STATIC);
		if (sqlite3_step(ins) != SQLITE_DONE) {
			rc = db_error(c, e, "recording a polish step");
			goto out;
		}
	}
	for (size_t i = 0; i < nitems; i++) {
		char detail[160];
		const char *fin = NULL;
		unsigned steps = 0;
		for (size_t k = 0; k < n; k++)
			if (v[k].item_id == items[i]) {
				steps++;
				if (v[k].image)
					fin = v[k].output;
			}
		if (fin)
			snprintf(detail, sizeof detail, "{\"steps\":%u,\"final\":\"%.64s\"}", steps,
				 fin);
		else
			snprintf(detail, sizeof detail, "{\"steps\":%u}", steps);
		if ((rc = insert_event(c, "polish", 1, items[i], detail, e)))
			goto out;
	}
	sqlite3_finalize(del);
	sqlite3_finalize(ins);
	return commit(c, e);
out:
	sqlite3_finalize(del);
	sqlite3_finalize(ins);
	rollback(c);
	return rc;
}

int kiln_catalog_final_images(struct kiln_catalog *c, struct kiln_items *items,
			      struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	int rc = prepare(c, "SELECT p.output, p.bytes FROM polish_steps p WHERE p.item_id = ?1 "
			 "AND p.is_image AND (SELECT p0.input FROM polish_steps p0 WHERE "
			 "p0.item_id = ?1 AND p0.step = 0) = ?2 ORDER BY p.step DESC LIMIT 1",
			 &st, e);
	if (rc)
		return rc;
	for (size_t i = 0; i < items->n && !rc; i++) {
		struct kiln_item *it = &items->v[i];
		const unsigned char *out;
		int step;
		if (!it->image[0])
			continue;
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, (sqlite3_int64)it->id);
		sqlite3_bind_text(st, 2, it->image, -1, SQLITE_TRANSIENT);
		step = sqlite3_step(st);
		if (step == SQLITE_ROW && (out = sqlite3_column_text(st, 0)) &&
		    strlen((const char *)out) == 64) {
			memcpy(it->image, out, 65);
			it->image_bytes = (uint64_t)sqlite3_column_int64(st, 1);
		} else if (step != SQLITE_ROW && step != SQLITE_DONE) {
			rc = db_error(c, e, "reading final images");
		}
	}
	sqlite3_finalize(st);
	return rc;
}

static int polish_json_one(void *user, const struct kiln_polish_step *st)
{
	json_t *arr = user, *set = json_loads(st->settings, 0, NULL), *o;
	o = json_pack("{s:I, s:s, s:o, s:s, s:s, s:s, s:I, s:b, s:s, s:s?, s:s?, s:s}",
		      "step", (json_int_t)st->step, "kind", st->kind,
		      "settings", set ? set : json_object(), "recipe", st->recipe, "input",
		      st->input, "output", st->output, "bytes", (json_int_t)st->bytes, "image",
		      st->image, "by", st->by, "tool", st->tool, "note", st->note, "at", st->at);
	return !o || json_array_append_new(arr, o);
}

int kiln_catalog_polish_json(struct kiln_catalog *c, uint64_t id, char **json,
			     struct kiln_error *e)
{
	json_t *arr = json_array();
	int rc;
	*json = NULL;
	if (!arr)
		return kiln_error_set(e, KILN_E_NOMEM, c->path, "out of memory");
	rc = kiln_catalog_polish_each(c, 1, id, polish_json_one, arr, e);
	if (!rc && json_array_size(arr) &&
	    !(*json = json_dumps(arr, JSON_COMPACT | JSON_PRESERVE_ORDER)))
		rc = kiln_error_set(e, KILN_E_NOMEM, c->path, "out of memory");
	json_decref(arr);
	return rc;
}

/* --- the portfolio: models, datasets, facts, the log ------------------------------------- */

int kiln_catalog_registry_add(struct kiln_catalog *c, const char *table, const char *key,
			      const char *name, const char *kind, const char *record, int *added,
			      struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	char at[48];
	int rc = writable(c, e), is_model = !strcmp(table, "models");
	*added = 0;
	if (rc)
		return rc;
	if (!is_model && strcmp(table, "datasets"))
		return kiln_error_set(e, KILN_E_USAGE, c->path, "no registry table %s", table);
	rc = prepare(c, is_model ? "INSERT OR IGNORE INTO models(sha256, name, kind, record, "
				   "added_at) VALUES (?1, ?2, ?3, ?4, ?5)"
				 : "INSERT OR IGNORE INTO datasets(root, name, record, added_at) "
				   "VALUES (?1, ?2, ?4, ?5)", &st, e);
	if (rc)
		return rc;
	now_iso(at);
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	if (is_model)
		sqlite3_bind_text(st, 3, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, record, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, at, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_error(c, e, "registering");
	else
		*added = sqlite3_changes(c->db) > 0;
	sqlite3_finalize(st);
	return rc;
}

int kiln_catalog_models_named(struct kiln_catalog *c, const char *name, const char *kind,
			      char ***records, size_t *n, struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	char **v = NULL;
	int rc, step;
	*records = NULL;
	*n = 0;
	if ((rc = prepare(c, "SELECT record FROM models WHERE name = ?1 AND kind = ?2 ORDER BY id",
			  &st, e)))
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		char **nv = kiln_reallocarray(v, *n + 1, sizeof *nv);
		if (!nv || !(nv[*n] = dup_col(st, 0))) {
			v = nv ? nv : v;
			rc = kiln_error_set(e, KILN_E_NOMEM, c->path, "out of memory");
			break;
		}
		v = nv;
		(*n)++;
	}
	if (!rc && step != SQLITE_DONE)
		rc = db_error(c, e, "reading the model registry");
	sqlite3_finalize(st);
	if (rc) {
		for (size_t i = 0; i < *n; i++)
			free(v[i]);
		free(v);
		*n = 0;
		return rc;
	}
	*records = v;
	return 0;
}

int kiln_catalog_train_last(struct kiln_catalog *c, const char *name, char sha[65],
			    uint64_t *images, int *found, struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	int rc, step;
	*found = 0;
	sha[0] = 0;
	*images = 0;
	if ((rc = prepare(c, "SELECT manifest_sha256, images FROM train_prepared WHERE name = ?1 "
			  "ORDER BY id DESC LIMIT 1", &st, e)))
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		const unsigned char *v = sqlite3_column_text(st, 0);
		snprintf(sha, 65, "%s", v ? (const char *)v : "");
		*images = (uint64_t)sqlite3_column_int64(st, 1);
		*found = 1;
	} else if (step != SQLITE_DONE) {
		rc = db_error(c, e, "reading the prepared trainings");
	}
	sqlite3_finalize(st);
	return rc;
}

int kiln_catalog_train_record(struct kiln_catalog *c, const char *name, const char *sha,
			      uint64_t images, int *added, struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	char at[48], last[65];
	uint64_t n;
	int rc = writable(c, e), found;
	*added = 0;
	if (rc || (rc = kiln_catalog_train_last(c, name, last, &n, &found, e)))
		return rc;
	if (found && !strcmp(last, sha))
		return 0;
	if ((rc = prepare(c, "INSERT INTO train_prepared(name, manifest_sha256, images, "
			  "created_at) VALUES (?1, ?2, ?3, ?4)", &st, e)))
		return rc;
	now_iso(at);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, sha, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)images);
	sqlite3_bind_text(st, 4, at, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_error(c, e, "recording the prepared training");
	else
		*added = 1;
	sqlite3_finalize(st);
	return rc;
}

int kiln_catalog_train_run(struct kiln_catalog *c, const char *name, double started,
			   double finished, const char *state, const char *job_id,
			   const char *sha256, struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	int rc = writable(c, e);
	if (rc)
		return rc;
	rc = prepare(c, "INSERT INTO train_runs(name, started, finished, state, job_id, "
		     "output_sha256) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(name, started) DO "
		     "UPDATE SET finished = excluded.finished, state = excluded.state, job_id = "
		     "coalesce(excluded.job_id, job_id), output_sha256 = "
		     "coalesce(excluded.output_sha256, output_sha256)", &st, e);
	if (rc)
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_double(st, 2, started);
	if (finished > 0)
		sqlite3_bind_double(st, 3, finished);
	sqlite3_bind_text(st, 4, state, -1, SQLITE_STATIC);
	if (job_id && *job_id)
		sqlite3_bind_text(st, 5, job_id, -1, SQLITE_STATIC);
	if (sha256 && *sha256)
		sqlite3_bind_text(st, 6, sha256, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_error(c, e, "recording a training run");
	sqlite3_finalize(st);
	return rc;
}

static int has_table(struct kiln_catalog *c, const char *name)
{
	sqlite3_stmt *st = NULL;
	int found = 0;
	if (sqlite3_prepare_v2(c->db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
			       "name = ?", -1, &st, NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	found = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return found;
}

/* a text column holding JSON, as a value (a string when it does not parse) */
static json_t *json_col(sqlite3_stmt *st, int col)
{
	const char *t = (const char *)sqlite3_column_text(st, col);
	json_t *j;
	if (!t)
		return json_null();
	j = json_loads(t, JSON_DECODE_ANY, NULL);
	return j ? j : json_string(t);
}

void kiln_facts_free(struct kiln_fact *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].kind);
		free(v[i].at);
		free(v[i].json);
	}
	free(v);
}

/* The readers below share one loop: each row of st (to its end) goes to row(user, st), which
 * returns nonzero when out of memory; st is finalized. 0, or the error (what: the message's). */
static int each_row(struct kiln_catalog *c, sqlite3_stmt *st,
		    int (*row)(void *user, sqlite3_stmt *st), void *user, const char *what,
		    struct kiln_error *e)
{
	int rc = 0, step;
	while ((step = sqlite3_step(st)) == SQLITE_ROW)
		if (row(user, st)) {
			rc = kiln_error_set(e, KILN_E_NOMEM, c->path, "out of memory");
			break;
		}
	if (!rc && step != SQLITE_DONE)
		rc = db_error(c, e, what);
	sqlite3_finalize(st);
	return rc;
}

/* room for one more element of size in *v (n used of *cap, doubling from first); NULL when
 * out of memory (*v unchanged) */
static void *grow(void **v, size_t n, size_t *cap, size_t size, size_t first)
{
	if (n == *cap) {
		size_t nc = *cap ? *cap * 2 : first;
		void *nv = kiln_reallocarray(*v, nc, size);
		if (!nv)
			return NULL;
		*v = nv;
		*cap = nc;
	}
	return (char *)*v + n * size;
}

struct facts {
	const char *src;
	struct kiln_fact *v;
	size_t n, cap;
};

/* one row of a fact source as a kiln_fact */
static int fact_row(void *user, sqlite3_stmt *st)
{
	struct facts *x = user;
	struct kiln_fact *f = grow((void **)&x->v, x->n, &x->cap, sizeof *f, 64);
	json_t *j = NULL;
	if (!f)
		return -1;
	x->n++;
	memset(f, 0, sizeof *f);
	f->id = sqlite3_column_int64(st, 0);
	f->kind = dup_col(st, 1);
	f->has_item = sqlite3_column_type(st, 2) != SQLITE_NULL;
	f->item_id = (uint64_t)sqlite3_column_int64(st, 2);
	if (!strcmp(x->src, "render")) {
		char at[48];
		time_t t = (time_t)sqlite3_column_double(st, 3);
		struct tm tm;
		gmtime_r(&t, &tm);
		snprintf(at, sizeof at, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		f->at = kiln_strdup(at);
		j = json_pack("{s:s, s:I, s:o, s:s?, s:I, s:o, s:s, s:I, s:f, s:f, s:o}",
			      "engine", (const char *)sqlite3_column_text(st, 1), "item_id",
			      (json_int_t)f->item_id, "endpoint", json_col(st, 4), "recipe",
			      (const char *)sqlite3_column_text(st, 5), "seed",
			      (json_int_t)sqlite3_column_int64(st, 6), "request",
			      json_col(st, 7), "image",
			      (const char *)sqlite3_column_text(st, 8), "bytes",
			      (json_int_t)sqlite3_column_int64(st, 9), "started_at",
			      sqlite3_column_double(st, 10), "finished_at",
			      sqlite3_column_double(st, 3), "ran", json_col(st, 11));
		if (j && sqlite3_column_type(st, 12) != SQLITE_NULL &&
		    json_object_set_new(j, "seed_used", json_integer(sqlite3_column_int64(st, 12))))
			goto nomem;
		if (j && sqlite3_column_type(st, 13) != SQLITE_NULL &&
		    json_object_set_new(j, "infotext", json_col(st, 13)))
			goto nomem;
	} else {
		f->at = dup_col(st, 3);
		j = json_col(st, 4);
		if (j && (!strcmp(x->src, "polish") || !strcmp(x->src, "review"))) {
			/* no null members */
			const char *k;
			json_t *v;
			void *tmp;
			json_object_foreach_safe(j, tmp, k, v)
				if (json_is_null(v))
					json_object_del(j, k);
		}
	}
	if (!j || !f->kind || !f->at ||
	    !(f->json = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)))
		goto nomem;
	json_decref(j);
	return 0;
nomem:
	json_decref(j);
	return -1;
}

int kiln_catalog_facts(struct kiln_catalog *c, const char *src, int64_t after,
		       struct kiln_fact **out, size_t *nout, struct kiln_error *e)
{
	static const struct {
		const char *src, *table, *sql;
	} q[] = {
		{"dataset", "datasets", "SELECT id, 'dataset', NULL, added_at, record FROM datasets "
		 "WHERE id > ? ORDER BY id"},
		{"model", "models", "SELECT id, kind, NULL, added_at, record FROM models WHERE id > ? "
		 "ORDER BY id"},
		/* accepted renders, with what the AI server said about the image */
		{"render", "renders", "SELECT r.id, r.engine, r.item_id, r.finished_at, r.endpoint, "
		 "r.recipe, r.seed, r.request, r.image, r.bytes, r.started_at, r.ran, (SELECT "
		 "a.seed_used FROM ai_info a WHERE a.image = r.image AND a.item_id = r.item_id "
		 "ORDER BY a.id DESC LIMIT 1), (SELECT a.info FROM ai_info a WHERE a.image = r.image "
		 "AND a.item_id = r.item_id ORDER BY a.id DESC LIMIT 1) FROM renders r WHERE "
		 "r.status = 'ok' AND r.id > ? ORDER BY r.id"},
		/* the polish chain of each token as its last polish run (that item's latest
		 * "polish" event) saved it, one fact a step (src_id: event id * 2^20 + step, so
		 * a later run's steps come after): human edits and kiln's steps; an inpaint's
		 * settings as JSON, so the log commits to its prompt by hash like a render's */
		{"polish", "polish_steps", "SELECT e.id * 1048576 + p.step, CASE WHEN p.kind = "
		 "'edit' THEN 'edit.human' ELSE 'polish.step' END, p.item_id, p.at, json_object("
		 "'step', p.step, 'kind', p.kind, 'description', coalesce(p.note, p.kind), "
		 "'settings', CASE WHEN p.kind = 'inpaint' THEN json(p.settings) ELSE p.settings END, "
		 "'recipe', p.recipe, 'from', p.input, 'output', p.output, "
		 "'image', CASE WHEN p.is_image THEN p.output END, 'bytes', p.bytes, 'by', "
		 "p.made_by, 'tool', p.tool) FROM polish_steps p JOIN (SELECT item_id, max(id) AS "
		 "id FROM events WHERE kind = 'polish' GROUP BY item_id) e ON e.item_id = "
		 "p.item_id WHERE p.step < 1048576 AND e.id * 1048576 + p.step > ? ORDER BY e.id, "
		 "p.step"},
		/* review decisions, as the append-only review log has them (a note added to the
		 * prompt as "prompt", which the portfolio commits to by hash) */
		{"review", "review_log", "SELECT id, 'review.decision', item_id, at, json_object("
		 "'action', action, 'reviewer', reviewer, 'candidate', candidate, 'reviewed_image', "
		 "image, 'note', CASE WHEN prompt_add THEN NULL ELSE note END, 'prompt', CASE WHEN "
		 "prompt_add THEN note END, 'group', group_id, 'undoes', undoes) FROM review_log "
		 "WHERE id > ? ORDER BY id"},
		/* the rest of the events (polish runs and review decisions come from their own
		 * tables above) */
		{"event", "events", "SELECT id, kind, item_id, at, detail FROM events WHERE id > ? "
		 "AND kind NOT IN ('render', 'release', 'polish') ORDER BY id"},
	};
	struct facts x = {src, NULL, 0, 0};
	sqlite3_stmt *st = NULL;
	size_t qi;
	int rc;
	*out = NULL;
	*nout = 0;
	for (qi = 0; qi < sizeof q / sizeof *q && strcmp(q[qi].src, src); qi++)
		;
	if (qi == sizeof q / sizeof *q)
		return kiln_error_set(e, KILN_E_USAGE, c->path, "no fact source %s", src);
	if (!has_table(c, q[qi].table))
		return 0; /* an older catalog opened read-only: nothing of that kind */
	if ((rc = prepare(c, q[qi].sql, &st, e)))
		return rc;
	sqlite3_bind_int64(st, 1, after);
	if ((rc = each_row(c, st, fact_row, &x, "reading the catalog's facts", e))) {
		kiln_facts_free(x.v, x.n);
		return rc;
	}
	*out = x.v;
	*nout = x.n;
	return 0;
}

struct log_rows {
	struct kiln_log_row *v;
	size_t n, cap;
};

static int log_row(void *user, sqlite3_stmt *st)
{
	struct log_rows *x = user;
	struct kiln_log_row *r = grow((void **)&x->v, x->n, &x->cap, sizeof *r, 256);
	if (!r)
		return -1;
	x->n++;
	memset(r, 0, sizeof *r);
	snprintf(r->src, sizeof r->src, "%s", (const char *)sqlite3_column_text(st, 0));
	r->src_id = sqlite3_column_int64(st, 1);
	return (r->line = dup_col(st, 2)) ? 0 : -1;
}

int kiln_catalog_log_read(struct kiln_catalog *c, struct kiln_log_row **out, size_t *nout,
			  struct kiln_error *e)
{
	struct log_rows x = {NULL, 0, 0};
	sqlite3_stmt *st = NULL;
	int rc;
	*out = NULL;
	*nout = 0;
	if (!has_table(c, "portfolio_log"))
		return 0;
	if ((rc = prepare(c, "SELECT src, src_id, line FROM portfolio_log ORDER BY seq", &st, e)))
		return rc;
	if ((rc = each_row(c, st, log_row, &x, "reading the portfolio log", e))) {
		kiln_log_rows_free(x.v, x.n);
		return rc;
	}
	*out = x.v;
	*nout = x.n;
	return 0;
}

void kiln_log_rows_free(struct kiln_log_row *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i].line);
	free(v);
}

int kiln_catalog_log_append(struct kiln_catalog *c, const struct kiln_log_row *v, size_t n,
			    struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	int rc;
	if (!n)
		return 0;
	if ((rc = begin(c, e)))
		return rc;
	if ((rc = prepare(c, "INSERT INTO portfolio_log(src, src_id, line) VALUES (?, ?, ?)", &st,
			  e)))
		goto out;
	for (size_t i = 0; i < n; i++) {
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, v[i].src, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, v[i].src_id);
		sqlite3_bind_text(st, 3, v[i].line, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE) {
			rc = db_error(c, e, "appending to the portfolio log");
			goto out;
		}
	}
	rc = commit(c, e);
out:
	sqlite3_finalize(st);
	if (rc)
		rollback(c);
	return rc;
}
