/* catalog and store: plans round-trip by name, renders are recorded, the event log refuses
 * edits, re-planning keeps unchanged items' renders, the store is content-addressed; schema
 * versions (catalogs of the release before versions, tests/fixtures/catalogs/, open and keep
 * their contents; a newer catalog is refused; a failed migration leaves the old version);
 * read-only opening writes nothing; ids bounded by KILN_ID_MAX; token 0's events keep their
 * id; the plan and its spec hash in one transaction; the project lock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kiln/catalog.h"
#include "kiln/plan.h"
#include "kiln/project.h"
#include "util/fs.h"
#include "util/sha.h"

static const char spec_yaml[] =
	"collection: {name: C, size: 6, seed: 3}\n"
	"layers:\n"
	"  - {name: A, traits: [{name: a1, file: x}, {name: a2, file: x}, {name: a3, file: x}]}\n"
	"  - {name: B, optional: true, traits: [{name: b1, file: x}, {name: b2, file: x}]}\n"
	"legendaries: [{name: L, file: x}]\n";

struct fx {
	char dir[64];
	char db[128];
	struct kiln_spec *s;
	struct kiln_catalog *c;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	struct kiln_error e;
	snprintf(f->dir, sizeof f->dir, "/tmp/kiln-test-catalog-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->db, sizeof f->db, "%s/catalog.db", f->dir);
	if (kiln_spec_parse(&f->s, spec_yaml, strlen(spec_yaml), "k.yaml", NULL, &e) ||
	    kiln_catalog_open(&f->c, f->db, &e))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	struct kiln_error e;
	kiln_catalog_free(f->c);
	kiln_spec_free(f->s);
	assert_int_equal(kiln_fs_remove_tree(f->dir, &e), 0);
	free(f);
	return 0;
}

static void plan_round_trip(void **state)
{
	struct fx *f = *state;
	struct kiln_plan *p = NULL;
	struct kiln_items it;
	struct kiln_error e;
	assert_int_equal(kiln_plan_make(&p, f->s, NULL, &e), 0);
	assert_int_equal(kiln_catalog_save_plan(f->c, f->s, p, NULL, NULL, NULL, "{}", &e), 0);
	assert_int_equal(kiln_catalog_items(f->c, f->s, &it, &e), 0);
	assert_int_equal(it.n, 6);
	for (size_t i = 0; i < it.n; i++) {
		assert_int_equal(it.v[i].id, p->items[i].id);
		assert_int_equal(it.v[i].seed, p->items[i].seed);
		assert_int_equal(it.v[i].legendary, p->items[i].legendary);
		assert_int_equal(it.v[i].status, KILN_ITEM_PLANNED);
		if (it.v[i].legendary < 0)
			assert_memory_equal(it.v[i].traits, p->items[i].traits, 2 * sizeof(uint32_t));
		else
			assert_string_equal(it.v[i].legendary_name, "L");
	}
	kiln_items_release(&it);
	kiln_plan_free(p);
}

static void renders_and_replan(void **state)
{
	struct fx *f = *state;
	struct kiln_plan *p = NULL, *p2 = NULL;
	struct kiln_items it;
	struct kiln_error e;
	struct kiln_render_record r[2];
	struct kiln_catalog_counts n;
	char *json = NULL;
	assert_int_equal(kiln_plan_make(&p, f->s, NULL, &e), 0);
	assert_int_equal(kiln_catalog_save_plan(f->c, f->s, p, NULL, NULL, NULL, "{}", &e), 0);
	memset(r, 0, sizeof r);
	r[0].item_id = p->items[0].id;
	r[0].engine = "compose";
	r[0].recipe = "rrr";
	r[0].ok = 1;
	r[0].image = "abcd";
	r[0].bytes = 10;
	r[1].item_id = p->items[1].id;
	r[1].engine = "compose";
	r[1].recipe = "sss";
	r[1].error = "layer.png: truncated";
	assert_int_equal(kiln_catalog_record_renders(f->c, r, 2, &e), 0);
	assert_int_equal(kiln_catalog_counts(f->c, &n, &e), 0);
	assert_int_equal(n.rendered, 1);
	assert_int_equal(n.failed, 1);
	assert_int_equal(n.renders, 2);
	assert_int_equal(kiln_catalog_item_renders_json(f->c, p->items[1].id, &json, &e), 0);
	assert_non_null(strstr(json, "layer.png: truncated"));
	free(json);
	/* the same plan again: the accepted render stays */
	struct kiln_plan_prev prev;
	assert_int_equal(kiln_catalog_items(f->c, f->s, &it, &e), 0);
	uint64_t ids[6];
	long leg[6];
	for (size_t i = 0; i < it.n; i++) {
		ids[i] = it.v[i].id;
		leg[i] = it.v[i].legendary;
	}
	prev.nitems = it.n;
	prev.ids = ids;
	prev.matrix = it.matrix;
	prev.legendary = leg;
	assert_int_equal(kiln_plan_make(&p2, f->s, &prev, &e), 0);
	assert_int_equal(p2->changed, 0);
	kiln_items_release(&it);
	assert_int_equal(kiln_catalog_save_plan(f->c, f->s, p2, NULL, NULL, NULL, "{}", &e), 0);
	assert_int_equal(kiln_catalog_item(f->c, f->s, p->items[0].id, &it, &e), 0);
	assert_int_equal(it.n, 1);
	assert_int_equal(it.v[0].status, KILN_ITEM_RENDERED);
	assert_string_equal(it.v[0].image, "abcd");
	assert_string_equal(it.v[0].recipe, "rrr");
	kiln_items_release(&it);
	kiln_plan_free(p);
	kiln_plan_free(p2);
}

static void events_append_only(void **state)
{
	struct fx *f = *state;
	struct kiln_error e;
	sqlite3 *db;
	char *v = NULL;
	assert_int_equal(kiln_catalog_event(f->c, "note", 0, 0, "{\"x\":1}", &e), 0);
	assert_int_equal(kiln_catalog_meta_set(f->c, "k", "v1", &e), 0);
	assert_int_equal(kiln_catalog_meta_set(f->c, "k", "v2", &e), 0);
	assert_int_equal(kiln_catalog_meta_get(f->c, "k", &v, &e), 0);
	assert_string_equal(v, "v2");
	free(v);
	assert_int_equal(kiln_catalog_meta_get(f->c, "nope", &v, &e), 0);
	assert_null(v);
	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_not_equal(sqlite3_exec(db, "UPDATE events SET kind='x'", NULL, NULL, NULL),
			     SQLITE_OK);
	assert_int_not_equal(sqlite3_exec(db, "DELETE FROM events", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void store(void **state)
{
	struct fx *f = *state;
	struct kiln_store *st = NULL;
	struct kiln_error e;
	char sha[65], sha2[65], dir[128], *path;
	snprintf(dir, sizeof dir, "%s/store", f->dir);
	assert_int_equal(kiln_store_open(&st, dir, &e), 0);
	assert_int_equal(kiln_store_put(st, "hello world", 11, sha, &e), 0);
	assert_string_equal(sha, "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9");
	assert_true(kiln_store_has(st, sha));
	assert_int_equal(kiln_store_put(st, "hello world", 11, sha2, &e), 0);
	assert_string_equal(sha, sha2);
	path = kiln_store_path(st, sha);
	assert_non_null(strstr(path, "/b9/b94d27"));
	free(path);
	assert_false(kiln_store_has(st, "00"));
	kiln_store_free(st);
}

/* --- schema versions ------------------------------------------------------------------------ */

static void copy_file(const char *from, const char *to)
{
	struct kiln_error e;
	assert_int_equal(kiln_fs_copy(from, to, 0, &e), 0);
}

static long long sql_int(const char *db, const char *sql)
{
	sqlite3 *d;
	sqlite3_stmt *st;
	long long v = -1;
	assert_int_equal(sqlite3_open_v2(db, &d, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(d, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(d);
	return v;
}

static void sql_exec(const char *db, const char *sql)
{
	sqlite3 *d;
	assert_int_equal(sqlite3_open(db, &d), SQLITE_OK);
	assert_int_equal(sqlite3_exec(d, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(d);
}

static void file_sha(const char *path, char hex[65])
{
	struct kiln_error e;
	assert_int_equal(kiln_sha256_file(path, hex, &e), 0);
}

/* A fixture's spec (its kiln.yaml as the old kiln had it), files not checked. */
static struct kiln_spec *fixture_spec(const char *name)
{
	char path[1024];
	struct kiln_buf b = KILN_BUF_INIT;
	struct kiln_spec *s = NULL;
	struct kiln_error e;
	snprintf(path, sizeof path, "%s/tests/fixtures/catalogs/%s.yaml", KILN_SOURCE_DIR, name);
	assert_int_equal(kiln_fs_read(path, &b, &e), 0);
	if (kiln_spec_parse(&s, b.data, b.len, path, NULL, &e))
		fail_msg("%s: %s", e.where, e.msg);
	kiln_buf_release(&b);
	return s;
}

/* Copy fixture NAME.db into the test folder and open it with this code. */
static struct kiln_catalog *open_fixture(struct fx *f, const char *name, char db[256])
{
	char from[1024];
	struct kiln_catalog *c = NULL;
	struct kiln_error e;
	snprintf(from, sizeof from, "%s/tests/fixtures/catalogs/%s.db", KILN_SOURCE_DIR, name);
	snprintf(db, 256, "%s/%s.db", f->dir, name);
	copy_file(from, db);
	/* as the old kiln left it: no version recorded, the version 1 tables */
	assert_int_equal(sql_int(db, "PRAGMA user_version"), 0);
	if (kiln_catalog_open(&c, db, &e))
		fail_msg("%s: %s", e.where, e.msg);
	return c;
}

/* Opening a migrated catalog again changes nothing: same version, same bytes. */
static void reopen_is_noop(const char *db)
{
	struct kiln_catalog *c = NULL;
	struct kiln_error e;
	char before[65], after[65];
	int v;
	file_sha(db, before);
	assert_int_equal(kiln_catalog_open(&c, db, &e), 0);
	assert_int_equal(kiln_catalog_version(c, &v, &e), 0);
	assert_int_equal(v, kiln_catalog_latest_version());
	kiln_catalog_free(c);
	file_sha(db, after);
	assert_string_equal(before, after);
}

static void fixture_plan(void **state)
{
	struct fx *f = *state;
	struct kiln_spec *s = fixture_spec("plan");
	struct kiln_catalog *c;
	struct kiln_items it;
	struct kiln_catalog_counts n;
	struct kiln_error e;
	char db[256], *sha = NULL;
	int v;
	c = open_fixture(f, "plan", db);
	assert_int_equal(kiln_catalog_version(c, &v, &e), 0);
	assert_int_equal(v, kiln_catalog_latest_version());
	assert_int_equal(kiln_catalog_counts(c, &n, &e), 0);
	assert_int_equal(n.items, 20);
	assert_int_equal(n.planned, 20);
	assert_int_equal(n.legendaries, 1);
	assert_int_equal(n.events, 1);
	assert_int_equal(kiln_catalog_item(c, s, 5, &it, &e), 0);
	assert_int_equal(it.n, 1);
	assert_string_equal(it.v[0].traits_json, "{\"Background\":\"Dusk\",\"Body\":\"Silver\","
			    "\"Eyes\":\"Sleepy\",\"Beak\":\"Hooked\",\"Hat\":\"Wizard\"}");
	assert_int_equal(it.v[0].seed, 8427421992247709436ULL);
	/* mapped onto the spec: Body is Silver, the spec's fourth Body value */
	assert_int_equal(it.v[0].traits[1], 3);
	kiln_items_release(&it);
	assert_int_equal(kiln_catalog_meta_get(c, "plan_spec_sha", &sha, &e), 0);
	assert_string_equal(sha, "2d5c14d5ac03154125b9cef2f57314a930ec80d719d40dc5ed411a36a767b52a");
	free(sha);
	kiln_catalog_free(c);
	/* the lazily added columns and tables are there now, and the version says so */
	assert_int_equal(sql_int(db, "SELECT count(*) FROM pragma_table_info('qa_findings') "
				 "WHERE name IN ('image', 'origin')"), 2);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM sqlite_master WHERE name IN "
				 "('ai_inflight', 'ai_info')"), 2);
	assert_int_equal(sql_int(db, "SELECT value FROM meta WHERE key = 'schema_version'"),
			 kiln_catalog_latest_version());
	reopen_is_noop(db);
	kiln_spec_free(s);
}

static void fixture_build(void **state)
{
	struct fx *f = *state;
	struct kiln_spec *s = fixture_spec("build");
	struct kiln_catalog *c;
	struct kiln_items it;
	struct kiln_catalog_counts n;
	struct kiln_error e;
	char db[256], *json = NULL, *rel = NULL;
	c = open_fixture(f, "build", db);
	assert_int_equal(kiln_catalog_counts(c, &n, &e), 0);
	assert_int_equal(n.items, 20);
	assert_int_equal(n.rendered, 20);
	assert_int_equal(n.renders, 20);
	assert_int_equal(kiln_catalog_items(c, s, &it, &e), 0);
	assert_int_equal(it.n, 20);
	assert_int_equal(it.v[0].id, 1);
	assert_int_equal(it.v[0].status, KILN_ITEM_RENDERED);
	assert_string_equal(it.v[0].image,
			    "cafb085ccbfe456563f08201cb696b60efe918ae108a75131b13f952d366b6b1");
	assert_string_equal(it.v[0].recipe,
			    "bf499274e6ea6bd8c6762144a154ee655603256836f23227bac3678029ddda7e");
	assert_string_equal(it.v[1].image,
			    "5b650261e3bbc953a30872c755ede7deebf38375bf499dd9166503b58b78728b");
	kiln_items_release(&it);
	assert_int_equal(kiln_catalog_item_renders_json(c, 1, &json, &e), 0);
	assert_non_null(strstr(json, "cafb085ccbfe456563f08201cb696b60efe918ae108a75131b13f952d366b6b1"));
	free(json);
	assert_int_equal(kiln_catalog_meta_get(c, "release_sha", &rel, &e), 0);
	assert_string_equal(rel, "5a2a3f7b294d8c19d5f16c2bac5fae9a065ec4d39123454e860832ded046ee10");
	free(rel);
	kiln_catalog_free(c);
	reopen_is_noop(db);
	kiln_spec_free(s);
}

static void fixture_qa(void **state)
{
	struct fx *f = *state;
	struct kiln_catalog *c;
	struct kiln_qa_state q;
	struct kiln_error e;
	uint64_t *ids = NULL;
	size_t n = 0;
	int ran = 0;
	char db[256], *json = NULL;
	c = open_fixture(f, "qa", db);
	assert_int_equal(kiln_catalog_qa_state(c, &q, &e), 0);
	assert_true(q.ran);
	assert_int_equal(q.failed_tokens, 1);
	assert_int_equal(q.stale_tokens, 0);
	assert_int_equal(q.collection_errors, 0);
	assert_int_equal(kiln_catalog_qa_failed(c, &ids, &n, &ran, &e), 0);
	assert_true(ran);
	assert_int_equal(n, 1);
	assert_int_equal(ids[0], 3);
	free(ids);
	assert_int_equal(kiln_catalog_qa_item_json(c, 3, &json, &e), 0);
	assert_non_null(strstr(json, "\"check\":\"image.decode\""));
	assert_non_null(strstr(json, "\"current\":true"));
	free(json);
	kiln_catalog_free(c);
	reopen_is_noop(db);
}

static int count_done(void *user, uint64_t item_id, const char *recipe, const char *image)
{
	(void)item_id;
	(void)recipe;
	assert_int_equal(strlen(image), 64);
	(*(int *)user)++;
	return 0;
}

static void fixture_ai(void **state)
{
	struct fx *f = *state;
	struct kiln_spec *s = fixture_spec("ai");
	struct kiln_catalog *c;
	struct kiln_items it;
	struct kiln_endpoint_stat *eps = NULL;
	struct kiln_error e;
	size_t neps = 0;
	int done = 0;
	char db[256];
	c = open_fixture(f, "ai", db);
	assert_int_equal(kiln_catalog_ai_done_each(c, count_done, &done, &e), 0);
	/* 19 a1111 renders and the legendary (engine "file") */
	assert_int_equal(done, 20);
	assert_int_equal(kiln_catalog_item(c, s, 2, &it, &e), 0);
	assert_string_equal(it.v[0].image,
			    "b14606509d2a4ce9dd52a5550bb4a6674c4d8cbec05142aa58245edc5ea069b8");
	kiln_items_release(&it);
	assert_int_equal(kiln_catalog_endpoint_stats(c, &eps, &neps, &e), 0);
	assert_int_equal(neps, 1);
	assert_string_equal(eps[0].engine, "a1111");
	assert_int_equal(eps[0].ok, 19);
	kiln_endpoint_stats_free(eps, neps);
	/* version 5: the old attempts have a `ran` column, empty (the old kiln kept no record of
	 * what the server used); a new attempt keeps it beside its request, and the item's
	 * renders (kiln show --json) give it as an object */
	assert_int_equal(sql_int(db, "SELECT count(*) FROM renders WHERE ran IS NULL"), 20);
	{
		struct kiln_render_record r;
		char *json = NULL;
		memset(&r, 0, sizeof r);
		r.item_id = 2;
		r.engine = "a1111";
		r.endpoint = "http://127.0.0.1:7860";
		r.recipe = "0000000000000000000000000000000000000000000000000000000000000000";
		r.request_json = "{\"prompt\":\"owl\"}";
		r.ran_json = "{\"model\":\"sd_xl_base_1.0\",\"model_hash\":\"31e35c80fc\"}";
		r.ok = 0;
		r.error = "http://127.0.0.1:7860: dropped";
		assert_int_equal(kiln_catalog_record_renders(c, &r, 1, &e), 0);
		assert_int_equal(kiln_catalog_item_renders_json(c, 2, &json, &e), 0);
		assert_non_null(strstr(json, "\"ran\":{\"model\":\"sd_xl_base_1.0\","
				       "\"model_hash\":\"31e35c80fc\"}"));
		assert_non_null(strstr(json, "\"ran\":null"));
		free(json);
	}
	kiln_catalog_free(c);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM ai_info WHERE info LIKE '%Seed: %'"), 19);
	reopen_is_noop(db);
	kiln_spec_free(s);
}

/* The version 1 tables as the old kiln made them, with a row, and no user_version. */
static const char v1_tables[] =
	"CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"
	"CREATE TABLE items (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, legendary TEXT,"
	" seed INTEGER NOT NULL, traits TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'planned',"
	" recipe TEXT, image TEXT, image_bytes INTEGER, error TEXT, rarity_score REAL,"
	" rarity_rank INTEGER, planned_at TEXT NOT NULL, rendered_at TEXT);"
	"CREATE TABLE renders (id INTEGER PRIMARY KEY AUTOINCREMENT, item_id INTEGER NOT NULL,"
	" engine TEXT NOT NULL, endpoint TEXT, recipe TEXT, seed INTEGER, request TEXT,"
	" status TEXT NOT NULL, http_status INTEGER, image TEXT, bytes INTEGER, error TEXT,"
	" started_at REAL, finished_at REAL, error_kind TEXT);"
	"CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL,"
	" kind TEXT NOT NULL, item_id INTEGER, detail TEXT);"
	"CREATE TABLE qa_findings (id INTEGER PRIMARY KEY AUTOINCREMENT, item_id INTEGER,"
	" check_id TEXT NOT NULL, severity TEXT NOT NULL, file TEXT, path TEXT, message TEXT);"
	"INSERT INTO meta VALUES ('schema_version', '1');"
	"INSERT INTO items(id, kind, seed, traits, planned_at) VALUES"
	" (7, 'generated', 99, '{\"A\":\"a2\"}', 'then');";

static void version0_is_v1(void **state)
{
	struct fx *f = *state;
	struct kiln_catalog *c = NULL;
	struct kiln_items it;
	struct kiln_error e;
	char db[256];
	int v;
	snprintf(db, sizeof db, "%s/v0.db", f->dir);
	sql_exec(db, v1_tables);
	assert_int_equal(sql_int(db, "PRAGMA user_version"), 0);
	if (kiln_catalog_open(&c, db, &e))
		fail_msg("%s: %s", e.where, e.msg);
	assert_int_equal(kiln_catalog_version(c, &v, &e), 0);
	assert_int_equal(v, kiln_catalog_latest_version());
	assert_int_equal(kiln_catalog_item(c, f->s, 7, &it, &e), 0);
	assert_int_equal(it.n, 1);
	assert_int_equal(it.v[0].seed, 99);
	assert_int_equal(it.v[0].traits[0], 1);
	kiln_items_release(&it);
	kiln_catalog_free(c);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM pragma_table_info('qa_findings') "
				 "WHERE name IN ('image', 'origin')"), 2);
	/* a new catalog starts at the latest version too */
	assert_int_equal(sql_int(f->db, "PRAGMA user_version"), kiln_catalog_latest_version());
}

static void newer_refused(void **state)
{
	struct fx *f = *state;
	struct kiln_catalog *c = NULL;
	struct kiln_error e;
	char want[64], before[65], after[65];
	kiln_catalog_free(f->c);
	f->c = NULL;
	sql_exec(f->db, "PRAGMA user_version = 99");
	file_sha(f->db, before);
	assert_int_equal(kiln_catalog_open(&c, f->db, &e), KILN_E_STATE);
	assert_null(c);
	assert_string_equal(e.where, f->db);
	assert_non_null(strstr(e.msg, "version 99"));
	snprintf(want, sizeof want, "version %d", kiln_catalog_latest_version());
	assert_non_null(strstr(e.msg, want));
	assert_int_equal(kiln_catalog_open_readonly(&c, f->db, &e), KILN_E_STATE);
	assert_non_null(strstr(e.msg, "version 99"));
	assert_int_equal(sql_int(f->db, "PRAGMA user_version"), 99);
	file_sha(f->db, after);
	assert_string_equal(before, after);
}

/* A migration that fails half-way leaves the catalog at its old version, none of the new
 * version's steps applied. */
static void failed_migration_rolls_back(void **state)
{
	struct fx *f = *state;
	struct kiln_catalog *c = NULL;
	struct kiln_error e;
	char db[256];
	snprintf(db, sizeof db, "%s/broken.db", f->dir);
	sql_exec(db, v1_tables);
	/* version 1, and an ai_info of someone else's making: the version 3 index fails on it,
	 * after version 2 has added the QA columns */
	sql_exec(db, "PRAGMA user_version = 1; CREATE TABLE ai_info (x INTEGER);");
	assert_int_equal(kiln_catalog_open(&c, db, &e), KILN_E_DB);
	assert_null(c);
	assert_string_equal(e.where, db);
	assert_non_null(strstr(e.msg, "version 2 to 3"));
	assert_int_equal(sql_int(db, "PRAGMA user_version"), 1);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM pragma_table_info('qa_findings') "
				 "WHERE name IN ('image', 'origin')"), 0);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM sqlite_master WHERE name = "
				 "'ai_inflight'"), 0);
}

/* --- reading never writes ------------------------------------------------------------------- */

static void readonly_writes_nothing(void **state)
{
	struct fx *f = *state;
	struct kiln_catalog *c = NULL;
	struct kiln_qa_state q;
	struct kiln_plan *p = NULL;
	struct kiln_catalog_counts n;
	struct kiln_error e;
	char from[1024], db[256], before[65], after[65], *json = NULL;
	uint64_t *ids = NULL;
	size_t nids;
	int ran, v;
	/* an old catalog: read as the latest version, the file untouched */
	snprintf(from, sizeof from, "%s/tests/fixtures/catalogs/qa.db", KILN_SOURCE_DIR);
	snprintf(db, sizeof db, "%s/ro.db", f->dir);
	copy_file(from, db);
	file_sha(db, before);
	if (kiln_catalog_open_readonly(&c, db, &e))
		fail_msg("%s: %s", e.where, e.msg);
	assert_int_equal(kiln_catalog_version(c, &v, &e), 0);
	assert_int_equal(v, kiln_catalog_latest_version());
	assert_int_equal(kiln_catalog_qa_state(c, &q, &e), 0);
	assert_int_equal(q.failed_tokens, 1);
	assert_int_equal(kiln_catalog_qa_failed(c, &ids, &nids, &ran, &e), 0);
	free(ids);
	assert_int_equal(kiln_catalog_qa_item_json(c, 3, &json, &e), 0);
	free(json);
	assert_int_equal(kiln_catalog_counts(c, &n, &e), 0);
	assert_int_equal(n.items, 20);
	/* writes are refused */
	assert_int_equal(kiln_catalog_meta_set(c, "k", "v", &e), KILN_E_STATE);
	assert_non_null(strstr(e.msg, "read-only"));
	assert_int_equal(kiln_catalog_event(c, "note", 0, 0, NULL, &e), KILN_E_STATE);
	assert_int_equal(kiln_plan_make(&p, f->s, NULL, &e), 0);
	assert_int_equal(kiln_catalog_save_plan(c, f->s, p, NULL, NULL, "x", "{}", &e),
			 KILN_E_STATE);
	kiln_plan_free(p);
	kiln_catalog_free(c);
	file_sha(db, after);
	assert_string_equal(before, after);
	assert_int_equal(sql_int(db, "PRAGMA user_version"), 0);
	/* no file: an empty catalog, and still no file */
	snprintf(db, sizeof db, "%s/none.db", f->dir);
	assert_int_equal(kiln_catalog_open_readonly(&c, db, &e), 0);
	assert_int_equal(kiln_catalog_counts(c, &n, &e), 0);
	assert_int_equal(n.items, 0);
	kiln_catalog_free(c);
	assert_false(kiln_fs_exists(db));
}

/* --- ids ------------------------------------------------------------------------------------ */

/* start_id near 2^63 (the spec loader refuses it; the catalog must too, on its own): the old
 * code said "planned" and its range delete emptied the catalog. */
static void ids_past_2_53_refused(void **state)
{
	struct fx *f = *state;
	struct kiln_plan *p = NULL, *big = NULL;
	struct kiln_items it;
	struct kiln_error e;
	assert_int_equal(kiln_plan_make(&p, f->s, NULL, &e), 0);
	assert_int_equal(kiln_catalog_save_plan(f->c, f->s, p, NULL, NULL, NULL, "{}", &e), 0);
	f->s->start_id = 9223372036854775800ULL;
	assert_int_equal(kiln_plan_make(&big, f->s, NULL, &e), 0);
	assert_int_equal(kiln_catalog_save_plan(f->c, f->s, big, NULL, NULL, NULL, "{}", &e),
			 KILN_E_SPEC);
	assert_non_null(strstr(e.msg, "9007199254740991"));
	assert_non_null(strstr(e.msg, "start_id"));
	kiln_plan_free(big);
	/* the stored plan is still there */
	assert_int_equal(kiln_catalog_items(f->c, f->s, &it, &e), 0);
	assert_int_equal(it.n, 6);
	kiln_items_release(&it);
	/* the last ids allowed */
	f->s->start_id = KILN_ID_MAX - 5;
	assert_int_equal(kiln_plan_make(&big, f->s, NULL, &e), 0);
	assert_int_equal(kiln_catalog_save_plan(f->c, f->s, big, NULL, NULL, NULL, "{}", &e), 0);
	assert_int_equal(kiln_catalog_items(f->c, f->s, &it, &e), 0);
	assert_int_equal(it.n, 6);
	assert_int_equal(it.v[0].id, KILN_ID_MAX - 5);
	assert_int_equal(it.v[5].id, KILN_ID_MAX);
	kiln_items_release(&it);
	/* one more is too many */
	kiln_plan_free(big);
	f->s->start_id = KILN_ID_MAX - 4;
	assert_int_equal(kiln_plan_make(&big, f->s, NULL, &e), 0);
	assert_int_equal(kiln_catalog_save_plan(f->c, f->s, big, NULL, NULL, NULL, "{}", &e),
			 KILN_E_SPEC);
	kiln_plan_free(big);
	kiln_plan_free(p);
}

/* Token 0's render events are its own, not collection-wide. */
static void token0_events(void **state)
{
	struct fx *f = *state;
	struct kiln_plan *p = NULL;
	struct kiln_render_record r;
	struct kiln_error e;
	f->s->start_id = 0;
	assert_int_equal(kiln_plan_make(&p, f->s, NULL, &e), 0);
	assert_int_equal(p->items[0].id, 0);
	assert_int_equal(kiln_catalog_save_plan(f->c, f->s, p, NULL, NULL, NULL, "{}", &e), 0);
	memset(&r, 0, sizeof r);
	r.item_id = 0;
	r.engine = "compose";
	r.recipe = "rrr";
	r.ok = 1;
	r.image = "abcd";
	assert_int_equal(kiln_catalog_record_renders(f->c, &r, 1, &e), 0);
	assert_int_equal(kiln_catalog_event(f->c, "note", 1, 0, NULL, &e), 0);
	assert_int_equal(kiln_catalog_event(f->c, "note", 0, 0, NULL, &e), 0);
	assert_int_equal(sql_int(f->db, "SELECT count(*) FROM events WHERE kind = 'render' AND "
				 "item_id = 0"), 1);
	assert_int_equal(sql_int(f->db, "SELECT count(*) FROM events WHERE kind = 'render' AND "
				 "item_id IS NULL"), 0);
	assert_int_equal(sql_int(f->db, "SELECT count(*) FROM events WHERE kind = 'note' AND "
				 "item_id = 0"), 1);
	assert_int_equal(sql_int(f->db, "SELECT count(*) FROM events WHERE item_id IS NULL"), 2);
	kiln_plan_free(p);
}

/* --- the project: plan in one transaction, the lock ------------------------------------------ */

static const char project_yaml[] =
	"collection: {name: P, size: 4, seed: 1}\n"
	"image: {width: 8, height: 8, format: png}\n"
	"layers:\n"
	"  - {name: A, traits: [{name: a1, file: a1.png}, {name: a2, file: a2.png}]}\n"
	"  - {name: B, traits: [{name: b1, file: b1.png}, {name: b2, file: b2.png}]}\n";

/* a transparent 8x8 RGBA PNG: plan reads each layer file's header (size) */
static const unsigned char png8[] = {
	0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
	0x44, 0x52, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x08, 0x08, 0x06, 0x00, 0x00,
	0x00, 0xc4, 0x0f, 0xbe, 0x8b, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78,
	0xda, 0x63, 0x60, 0x18, 0x05, 0x20, 0x00, 0x00, 0x01, 0x08, 0x00, 0x01, 0x5d, 0xb7,
	0x19, 0x0d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};

static void make_project(const char *dir)
{
	static const char *const files[] = {"a1.png", "a2.png", "b1.png", "b2.png"};
	char path[512];
	FILE *fp;
	snprintf(path, sizeof path, "%s/kiln.yaml", dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(project_yaml, fp);
	fclose(fp);
	for (int i = 0; i < 4; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, files[i]);
		fp = fopen(path, "w");
		assert_non_null(fp);
		assert_int_equal(fwrite(png8, 1, sizeof png8, fp), sizeof png8);
		fclose(fp);
	}
}

/* The plan and meta plan_spec_sha commit together: when the second cannot be written, the
 * first is not either (before, the items were committed and the hash missing). */
static void plan_one_transaction(void **state)
{
	struct fx *f = *state;
	struct kiln_project *p = NULL;
	struct kiln_project_plan_opts o = {0};
	struct kiln_plan_result r;
	struct kiln_error e;
	char db[256];
	make_project(f->dir);
	if (kiln_project_open(&p, f->dir, KILN_OPEN_WRITE, "plan", &e))
		fail_msg("%s: %s", e.where, e.msg);
	snprintf(db, sizeof db, "%s/.kiln/catalog.db", f->dir);
	sql_exec(db, "CREATE TRIGGER no_sha BEFORE INSERT ON meta WHEN NEW.key = 'plan_spec_sha' "
		     "BEGIN SELECT RAISE(ABORT, 'injected'); END;");
	assert_int_not_equal(kiln_project_plan(p, &o, &r, &e), 0);
	assert_non_null(strstr(e.msg, "injected"));
	assert_int_equal(sql_int(db, "SELECT count(*) FROM items"), 0);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM events"), 0);
	sql_exec(db, "DROP TRIGGER no_sha");
	assert_int_equal(kiln_project_plan(p, &o, &r, &e), 0);
	assert_true(r.planned);
	kiln_plan_result_release(&r);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM items"), 4);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM meta WHERE key = 'plan_spec_sha' AND "
				 "value = (SELECT value FROM meta WHERE key = 'plan_spec_sha')"), 1);
	kiln_project_free(p);
}

static void project_lock(void **state)
{
	struct fx *f = *state;
	struct kiln_project *a = NULL, *b = NULL, *r = NULL;
	struct kiln_error e;
	char lock[256], want[128], pid[32];
	make_project(f->dir);
	if (kiln_project_open(&a, f->dir, KILN_OPEN_WRITE, "render", &e))
		fail_msg("%s: %s", e.where, e.msg);
	/* a second writer (another open file: flock conflicts even in one process) */
	assert_int_equal(kiln_project_open(&b, f->dir, KILN_OPEN_WRITE, "plan", &e), KILN_E_STATE);
	assert_null(b);
	snprintf(lock, sizeof lock, "%s/.kiln/lock", f->dir);
	assert_string_equal(e.where, lock);
	snprintf(want, sizeof want, "kiln render (pid %ld, since ", (long)getpid());
	assert_non_null(strstr(e.msg, want));
	assert_int_equal(e.hint, KILN_HINT_LOCKED);
	snprintf(pid, sizeof pid, "%ld", (long)getpid());
	assert_string_equal(e.hint_arg, pid);
	/* a reader opens beside it */
	assert_int_equal(kiln_project_open(&r, f->dir, KILN_OPEN_READ, "status", &e), 0);
	assert_true(r->readonly);
	kiln_project_free(r);
	/* released with the project */
	kiln_project_free(a);
	assert_int_equal(kiln_project_open(&b, f->dir, KILN_OPEN_WRITE, "plan", &e), 0);
	kiln_project_free(b);
}

/* --- what QA judged (version 4) ------------------------------------------------------------- */

/* A version 3 fixture (tests/fixtures/catalogs/make-v3.sh), opened and migrated. */
static struct kiln_catalog *open_v3(struct fx *f, const char *name, char db[256])
{
	char from[1024];
	struct kiln_catalog *c = NULL;
	struct kiln_error e;
	snprintf(from, sizeof from, "%s/tests/fixtures/catalogs/%s.db", KILN_SOURCE_DIR, name);
	snprintf(db, 256, "%s/%s.db", f->dir, name);
	copy_file(from, db);
	assert_int_equal(sql_int(db, "PRAGMA user_version"), 3);
	if (kiln_catalog_open(&c, db, &e))
		fail_msg("%s: %s", e.where, e.msg);
	assert_int_equal(sql_int(db, "PRAGMA user_version"), kiln_catalog_latest_version());
	return c;
}

/* issue 18: `kiln qa` before `kiln plan` (22 collection findings about no plan), then plan and
 * render. The old findings judged another plan: they block nothing, and QA has judged none
 * of the 20 tokens. */
static void fixture_v3_stale(void **state)
{
	struct fx *f = *state;
	struct kiln_qa_state q;
	struct kiln_error e;
	uint64_t *ids = NULL;
	size_t n = 0;
	int ran = 0;
	char db[256];
	struct kiln_catalog *c = open_v3(f, "v3_stale", db);
	assert_int_equal(kiln_catalog_qa_state(c, &q, &e), 0);
	assert_true(q.ran);
	assert_true(q.plan_changed);
	assert_int_equal(q.collection_errors, 0);
	assert_int_equal(q.stale_collection, 22);
	assert_int_equal(q.unchecked_tokens, 20);
	assert_int_equal(q.first_unchecked[0], 1);
	assert_int_equal(q.first_unchecked[4], 5);
	assert_int_equal(q.stale_tokens, 0);
	assert_int_equal(q.failed_tokens, 0);
	if (kiln_catalog_qa_failed(c, &ids, &n, &ran, &e))
		fail_msg("old collection findings block: %s", e.msg);
	assert_int_equal(n, 0);
	free(ids);
	kiln_catalog_free(c);
	reopen_is_noop(db);
}

/* A build (QA judged all 20 tokens, no findings), then tokens 1 and 2 re-rendered: their
 * verdicts are stale although QA found nothing about them. */
static void fixture_v3_built(void **state)
{
	struct fx *f = *state;
	struct kiln_qa_state q;
	struct kiln_error e;
	char db[256];
	struct kiln_catalog *c = open_v3(f, "v3_built", db);
	assert_int_equal(kiln_catalog_qa_state(c, &q, &e), 0);
	assert_true(q.ran);
	assert_false(q.plan_changed);
	assert_int_equal(q.unchecked_tokens, 0);
	assert_int_equal(q.stale_tokens, 2);
	assert_int_equal(q.first_stale[0], 1);
	assert_int_equal(q.first_stale[1], 2);
	assert_int_equal(q.failed_tokens, 0);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM qa_judged WHERE image IS NOT NULL"), 20);
	kiln_catalog_free(c);
	reopen_is_noop(db);
}

/* A new catalog: the tokens a run judged, re-rendered since, and a re-plan. */
static void qa_judged_and_plan(void **state)
{
	struct fx *f = *state;
	struct kiln_plan *p = NULL;
	struct kiln_qa_state q;
	struct kiln_error e;
	struct kiln_qa_judged j[6];
	struct kiln_qa_row row;
	uint64_t *ids = NULL;
	size_t n = 0;
	int ran;
	char img[6][65];
	assert_int_equal(kiln_plan_make(&p, f->s, NULL, &e), 0);
	assert_int_equal(kiln_catalog_save_plan(f->c, f->s, p, NULL, NULL, NULL, "{}", &e), 0);
	for (int i = 0; i < 6; i++) {
		char sql[512];
		memset(img[i], 'a' + i, 64);
		img[i][64] = 0;
		snprintf(sql, sizeof sql, "UPDATE items SET image = '%s', status = 'rendered' WHERE "
			 "id = %llu", img[i], (unsigned long long)p->items[i].id);
		sql_exec(f->db, sql);
		j[i].item_id = p->items[i].id;
		j[i].image = i == 5 ? NULL : img[i]; /* token 6 judged before it had an image */
	}
	memset(&row, 0, sizeof row);
	row.check = "collection.unique";
	row.severity = "error";
	row.message = "two tokens alike";
	assert_int_equal(kiln_catalog_save_qa(f->c, &row, 1, j, 6, "{}", &e), 0);
	assert_int_equal(kiln_catalog_qa_state(f->c, &q, &e), 0);
	assert_int_equal(q.unchecked_tokens, 1);
	assert_int_equal(q.first_unchecked[0], p->items[5].id);
	assert_int_equal(q.stale_tokens, 0);
	assert_int_equal(q.collection_errors, 1);
	assert_false(q.plan_changed);
	assert_int_equal(kiln_catalog_qa_failed(f->c, &ids, &n, &ran, &e), KILN_E_FAILED);
	/* token 2 re-rendered: stale, though QA found nothing about it */
	sql_exec(f->db, "UPDATE items SET image = 'ffff' WHERE id = 2");
	assert_int_equal(kiln_catalog_qa_state(f->c, &q, &e), 0);
	assert_int_equal(q.stale_tokens, 1);
	assert_int_equal(q.first_stale[0], 2);
	/* a new plan: the collection finding was about the old one */
	assert_int_equal(kiln_catalog_save_plan(f->c, f->s, p, NULL, NULL, NULL, "{}", &e), 0);
	assert_int_equal(kiln_catalog_qa_state(f->c, &q, &e), 0);
	assert_true(q.plan_changed);
	assert_int_equal(q.collection_errors, 0);
	assert_int_equal(q.stale_collection, 1);
	assert_int_equal(kiln_catalog_qa_failed(f->c, &ids, &n, &ran, &e), 0);
	free(ids);
	kiln_plan_free(p);
}

/* The release's files round-trip, sorted by path, replaced by the next list. */
static void dist_files(void **state)
{
	struct fx *f = *state;
	struct kiln_dist_file v[2] = {{"metadata/1.json", 10, 5, ""}, {"images/1.png", 20, 7, ""}};
	struct kiln_dist_file *got = NULL;
	struct kiln_error e;
	size_t n = 0;
	memset(v[0].sha256, 'a', 64);
	memset(v[1].sha256, 'b', 64);
	assert_int_equal(kiln_catalog_dist_files(f->c, &got, &n, &e), 0);
	assert_int_equal(n, 0);
	assert_int_equal(kiln_catalog_dist_files_save(f->c, v, 2, NULL, NULL, &e), 0);
	assert_int_equal(kiln_catalog_dist_files(f->c, &got, &n, &e), 0);
	assert_int_equal(n, 2);
	assert_string_equal(got[0].path, "images/1.png");
	assert_int_equal(got[0].size, 20);
	assert_int_equal(got[0].mtime_ns, 7);
	assert_int_equal(got[1].sha256[0], 'a');
	kiln_dist_files_free(got, n);
	assert_int_equal(kiln_catalog_dist_files_save(f->c, v, 1, "in", "sha", &e), 0);
	assert_int_equal(kiln_catalog_dist_files(f->c, &got, &n, &e), 0);
	assert_int_equal(n, 1);
	kiln_dist_files_free(got, n);
	/* the release's meta keys go in the same transaction */
	char *val = NULL;
	assert_int_equal(kiln_catalog_meta_get(f->c, "release_sha", &val, &e), 0);
	assert_string_equal(val, "sha");
	free(val);
	val = NULL;
	assert_int_equal(kiln_catalog_meta_get(f->c, "release_inputs", &val, &e), 0);
	assert_string_equal(val, "in");
	free(val);
}

/* The polish chain: steps replaced per token; the final image is the last image step's output
 * while the chain starts from the image the token holds (an extra step is not the image; a
 * chain made on an image since re-rendered does not count), and QA's verdicts follow it. */
static int count_steps(void *user, const struct kiln_polish_step *st)
{
	(*(int *)user)++;
	assert_non_null(st->at);
	return 0;
}

static void polish_chain(void **state)
{
	struct fx *f = *state;
	struct kiln_plan *p = NULL;
	struct kiln_items it;
	struct kiln_error e;
	struct kiln_polish_step st[3];
	struct kiln_qa_judged j;
	struct kiln_qa_state q;
	char img[4][65], sql[256];
	int n = 0;
	uint64_t id;
	assert_int_equal(kiln_plan_make(&p, f->s, NULL, &e), 0);
	assert_int_equal(kiln_catalog_save_plan(f->c, f->s, p, NULL, NULL, NULL, "{}", &e), 0);
	id = p->items[0].id;
	for (int i = 0; i < 4; i++) {
		memset(img[i], 'a' + i, 64);
		img[i][64] = 0;
	}
	snprintf(sql, sizeof sql, "UPDATE items SET image = '%s', status = 'rendered' WHERE id = "
		 "%llu", img[0], (unsigned long long)id);
	sql_exec(f->db, sql);
	memset(st, 0, sizeof st);
	for (int i = 0; i < 3; i++) {
		st[i].item_id = id;
		st[i].step = (unsigned)i;
		st[i].settings = "{}";
		st[i].recipe = img[3];
		st[i].by = "kiln";
		st[i].bytes = 100u + (unsigned)i;
	}
	st[0].kind = "upscale", st[0].input = img[0], st[0].output = img[1], st[0].image = 1;
	st[1].kind = "vectorize", st[1].input = img[1], st[1].output = img[3], st[1].image = 0;
	st[2].kind = "edit", st[2].input = img[1], st[2].output = img[2], st[2].image = 1;
	st[2].by = "Ana";
	assert_int_equal(kiln_catalog_polish_save(f->c, &id, 1, st, 3, &e), 0);
	assert_int_equal(kiln_catalog_polish_each(f->c, 1, id, count_steps, &n, &e), 0);
	assert_int_equal(n, 3);
	assert_int_equal(kiln_catalog_items(f->c, f->s, &it, &e), 0);
	assert_int_equal(kiln_catalog_final_images(f->c, &it, &e), 0);
	assert_string_equal(it.v[0].image, img[2]);
	assert_int_equal(it.v[0].image_bytes, 102);
	assert_string_equal(it.v[1].image, "");
	kiln_items_release(&it);
	/* QA judged the final image: the token is current, not stale */
	j.item_id = id;
	j.image = img[2];
	assert_int_equal(kiln_catalog_save_qa(f->c, NULL, 0, &j, 1, "{}", &e), 0);
	assert_int_equal(kiln_catalog_qa_state(f->c, &q, &e), 0);
	assert_int_equal(q.stale_tokens, 0);
	/* without the edit, the upscale is the image: what QA judged is stale */
	assert_int_equal(kiln_catalog_polish_save(f->c, &id, 1, st, 2, &e), 0);
	assert_int_equal(kiln_catalog_qa_state(f->c, &q, &e), 0);
	assert_int_equal(q.stale_tokens, 1);
	assert_int_equal(kiln_catalog_items(f->c, f->s, &it, &e), 0);
	assert_int_equal(kiln_catalog_final_images(f->c, &it, &e), 0);
	assert_string_equal(it.v[0].image, img[1]);
	kiln_items_release(&it);
	/* re-rendered: the chain no longer counts */
	snprintf(sql, sizeof sql, "UPDATE items SET image = '%s' WHERE id = %llu", img[3],
		 (unsigned long long)id);
	sql_exec(f->db, sql);
	assert_int_equal(kiln_catalog_items(f->c, f->s, &it, &e), 0);
	assert_int_equal(kiln_catalog_final_images(f->c, &it, &e), 0);
	assert_string_equal(it.v[0].image, img[3]);
	kiln_items_release(&it);
	kiln_plan_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(plan_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(renders_and_replan, setup, teardown),
		cmocka_unit_test_setup_teardown(events_append_only, setup, teardown),
		cmocka_unit_test_setup_teardown(store, setup, teardown),
		cmocka_unit_test_setup_teardown(fixture_plan, setup, teardown),
		cmocka_unit_test_setup_teardown(fixture_build, setup, teardown),
		cmocka_unit_test_setup_teardown(fixture_qa, setup, teardown),
		cmocka_unit_test_setup_teardown(fixture_ai, setup, teardown),
		cmocka_unit_test_setup_teardown(version0_is_v1, setup, teardown),
		cmocka_unit_test_setup_teardown(newer_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(failed_migration_rolls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(readonly_writes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(ids_past_2_53_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(token0_events, setup, teardown),
		cmocka_unit_test_setup_teardown(plan_one_transaction, setup, teardown),
		cmocka_unit_test_setup_teardown(project_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(fixture_v3_stale, setup, teardown),
		cmocka_unit_test_setup_teardown(fixture_v3_built, setup, teardown),
		cmocka_unit_test_setup_teardown(qa_judged_and_plan, setup, teardown),
		cmocka_unit_test_setup_teardown(dist_files, setup, teardown),
		cmocka_unit_test_setup_teardown(polish_chain, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
