/* The review tables (lib/catalog/review.c): decisions keep each item's state in step with the
 * log (votes per reviewer, approvals, conflicts, notes); undo appends rows and takes back a
 * whole bulk group; a pick sets the item's image and an undone pick restores it; the log
 * refuses UPDATE and DELETE; a token that does not exist is refused with nothing written;
 * reviewers by token hash; a note on its own keeps the status and the votes; the migration to
 * the log with "note" keeps every row, id, index and trigger; sessions by cookie hash, expired
 * ones purged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/catalog.h"
#include "kiln/plan.h"
#include "util/fs.h"

static const char spec_yaml[] =
	"collection: {name: C, size: 6, seed: 3}\n"
	"layers:\n"
	"  - {name: A, traits: [{name: a1, file: x}, {name: a2, file: x}, {name: a3, file: x}]}\n"
	"  - {name: B, traits: [{name: b1, file: x}, {name: b2, file: x}]}\n";

struct fx {
	char dir[64];
	char db[128];
	struct kiln_spec *s;
	struct kiln_catalog *c;
	uint64_t ids[6];
};

static const char *A = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char *B = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	struct kiln_plan *p = NULL;
	struct kiln_error e;
	struct kiln_render_record r[2];
	snprintf(f->dir, sizeof f->dir, "/tmp/kiln-test-review-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->db, sizeof f->db, "%s/catalog.db", f->dir);
	if (kiln_spec_parse(&f->s, spec_yaml, strlen(spec_yaml), "k.yaml", NULL, &e) ||
	    kiln_catalog_open(&f->c, f->db, &e) || kiln_plan_make(&p, f->s, NULL, &e) ||
	    kiln_catalog_save_plan(f->c, f->s, p, NULL, NULL, NULL, "{}", &e))
		return -1;
	for (size_t i = 0; i < 6; i++)
		f->ids[i] = p->items[i].id;
	kiln_plan_free(p);
	/* two candidates of the first item: A (accepted first), then B */
	memset(r, 0, sizeof r);
	for (int i = 0; i < 2; i++) {
		r[i].item_id = f->ids[0];
		r[i].engine = "a1111";
		r[i].recipe = i ? "r2" : "r1";
		r[i].ok = 1;
		r[i].image = i ? B : A;
		r[i].seed = 10 + (uint64_t)i;
	}
	if (kiln_catalog_record_renders(f->c, r, 1, &e) ||
	    kiln_catalog_record_renders(f->c, r + 1, 1, &e))
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

static void decide(struct fx *f, const char *who, uint64_t id, const char *action,
		   unsigned cand, const char *image, const char *note)
{
	struct kiln_review_decision d = {id, action, cand, image, note, 0};
	struct kiln_error e;
	int64_t first, group;
	assert_int_equal(kiln_catalog_review_decide(f->c, who, &d, 1, 0, &first, &group, &e), 0);
	assert_true(first > 0);
	assert_int_equal(group, 0);
}

static void state_of(struct fx *f, uint64_t id, struct kiln_review_state *s)
{
	struct kiln_error e;
	int found;
	assert_int_equal(kiln_catalog_review_state(f->c, id, s, &found, &e), 0);
}

static void image_of(struct fx *f, uint64_t id, char out[65])
{
	struct kiln_items it;
	struct kiln_error e;
	assert_int_equal(kiln_catalog_item(f->c, f->s, id, &it, &e), 0);
	assert_int_equal(it.n, 1);
	memcpy(out, it.v[0].image, 65);
	kiln_items_release(&it);
}

static void votes_and_conflicts(void **state)
{
	struct fx *f = *state;
	struct kiln_review_state s;
	uint64_t id = f->ids[1];
	decide(f, "ana", id, "approve", 0, NULL, "good");
	state_of(f, id, &s);
	assert_string_equal(s.status, "approved");
	assert_int_equal(s.approvals, 1);
	assert_false(s.conflict);
	assert_string_equal(s.note, "good");
	kiln_review_state_release(&s);
	decide(f, "bo", id, "reject", 0, NULL, NULL);
	state_of(f, id, &s);
	assert_string_equal(s.status, "rejected"); /* the last decision */
	assert_int_equal(s.approvals, 1);
	assert_true(s.conflict);
	assert_string_equal(s.reviewers, "[\"ana\",\"bo\"]");
	assert_string_equal(s.note, "good"); /* the last note given */
	kiln_review_state_release(&s);
	/* bo withdraws: no conflict, ana's approval stands, status follows the log */
	decide(f, "bo", id, "pending", 0, NULL, NULL);
	state_of(f, id, &s);
	assert_false(s.conflict);
	assert_int_equal(s.approvals, 1);
	assert_string_equal(s.reviewers, "[\"ana\"]");
	kiln_review_state_release(&s);
	decide(f, "bo", id, "approve", 0, NULL, NULL);
	state_of(f, id, &s);
	assert_int_equal(s.approvals, 2);
	assert_string_equal(s.status, "approved");
	kiln_review_state_release(&s);
	/* undo takes back bo's last only */
	{
		int64_t *ids = NULL;
		size_t n = 0;
		struct kiln_error e;
		assert_int_equal(kiln_catalog_review_undo(f->c, "bo", &ids, &n, &e), 0);
		assert_int_equal(n, 1);
		free(ids);
	}
	state_of(f, id, &s);
	assert_int_equal(s.approvals, 1);
	kiln_review_state_release(&s);
}

static void bulk_and_undo(void **state)
{
	struct fx *f = *state;
	struct kiln_review_decision d[3];
	struct kiln_review_counts n;
	struct kiln_error e;
	int64_t first, group, *ids = NULL;
	size_t nids = 0;
	decide(f, "ana", f->ids[5], "approve", 0, NULL, NULL);
	for (int i = 0; i < 3; i++) {
		memset(&d[i], 0, sizeof d[i]);
		d[i].item_id = f->ids[2 + i];
		d[i].action = "regenerate";
		d[i].note = "again";
	}
	assert_int_equal(kiln_catalog_review_decide(f->c, "ana", d, 3, 1, &first, &group, &e), 0);
	assert_true(group > 0);
	assert_int_equal(kiln_catalog_review_counts(f->c, &n, &e), 0);
	assert_int_equal(n.regenerate, 3);
	assert_int_equal(n.approved, 1);
	/* one undo: the whole group, not the approval before it */
	assert_int_equal(kiln_catalog_review_undo(f->c, "ana", &ids, &nids, &e), 0);
	assert_int_equal(nids, 3);
	assert_int_equal(ids[0], first);
	free(ids);
	assert_int_equal(kiln_catalog_review_counts(f->c, &n, &e), 0);
	assert_int_equal(n.regenerate, 0);
	assert_int_equal(n.approved, 1);
	assert_int_equal(n.pending, 5);
	/* the next undo: the approval; then nothing */
	assert_int_equal(kiln_catalog_review_undo(f->c, "ana", &ids, &nids, &e), 0);
	assert_int_equal(nids, 1);
	free(ids);
	assert_int_equal(kiln_catalog_review_undo(f->c, "ana", &ids, &nids, &e), 0);
	assert_int_equal(nids, 0);
	assert_null(ids);
}

static void pick_sets_image(void **state)
{
	struct fx *f = *state;
	struct kiln_review_state s;
	char img[65], *log = NULL;
	int64_t *ids = NULL;
	size_t n;
	struct kiln_error e;
	uint64_t id = f->ids[0];
	image_of(f, id, img);
	assert_string_equal(img, B); /* the last accepted render */
	decide(f, "ana", id, "pick", 1, A, NULL);
	image_of(f, id, img);
	assert_string_equal(img, A);
	state_of(f, id, &s);
	assert_string_equal(s.status, "approved");
	assert_int_equal(s.candidate, 1);
	kiln_review_state_release(&s);
	assert_int_equal(kiln_catalog_review_undo(f->c, "ana", &ids, &n, &e), 0);
	free(ids);
	image_of(f, id, img);
	assert_string_equal(img, B);
	/* the log kept both rows, the pick marked undone */
	assert_int_equal(kiln_catalog_review_log_json(f->c, 1, id, &log, &e), 0);
	assert_non_null(strstr(log, "\"action\":\"pick\""));
	assert_non_null(strstr(log, "\"undone\":true"));
	assert_non_null(strstr(log, "\"action\":\"undo\""));
	free(log);
}

static void log_is_append_only(void **state)
{
	struct fx *f = *state;
	sqlite3 *db;
	decide(f, "ana", f->ids[1], "reject", 0, NULL, NULL);
	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_not_equal(sqlite3_exec(db, "UPDATE review_log SET note = 'x'", NULL, NULL, NULL),
			     SQLITE_OK);
	assert_non_null(strstr(sqlite3_errmsg(db), "append-only"));
	assert_int_not_equal(sqlite3_exec(db, "DELETE FROM review_log", NULL, NULL, NULL),
			     SQLITE_OK);
	sqlite3_close(db);
}

static void unknown_token_writes_nothing(void **state)
{
	struct fx *f = *state;
	struct kiln_review_decision d[2] = {{f->ids[1], "approve", 0, NULL, NULL, 0},
					    {999999, "approve", 0, NULL, NULL, 0}};
	struct kiln_review_counts n;
	struct kiln_error e;
	int64_t first, group;
	assert_int_equal(kiln_catalog_review_decide(f->c, "ana", d, 2, 1, &first, &group, &e),
			 KILN_E_STATE);
	assert_non_null(strstr(e.msg, "999999"));
	assert_int_equal(kiln_catalog_review_counts(f->c, &n, &e), 0);
	assert_int_equal(n.decisions, 0);
	assert_int_equal(n.approved, 0);
	d[1].item_id = f->ids[2];
	d[1].action = "bless";
	assert_int_equal(kiln_catalog_review_decide(f->c, "ana", d, 2, 1, &first, &group, &e),
			 KILN_E_USAGE);
}

static void reviewers(void **state)
{
	struct fx *f = *state;
	struct kiln_error e;
	char *name = NULL, sha[65];
	int owner;
	assert_int_equal(kiln_catalog_reviewer_put(f->c, "ana", A, 0, &e), 0);
	assert_int_equal(kiln_catalog_reviewer_put(f->c, "ana", B, 0, &e), KILN_E_STATE);
	assert_int_equal(kiln_catalog_reviewer_put(f->c, "owner", B, 1, &e), 0);
	assert_int_equal(kiln_catalog_reviewer_find(f->c, A, &name, &owner, &e), 0);
	assert_string_equal(name, "ana");
	assert_int_equal(owner, 0);
	free(name);
	assert_int_equal(kiln_catalog_reviewer_find(f->c, "nope", &name, &owner, &e), 0);
	assert_null(name);
	/* a new owner token replaces the old one */
	assert_int_equal(kiln_catalog_reviewer_put(f->c, "owner", "cc", 1, &e), 0);
	assert_int_equal(kiln_catalog_reviewer_find(f->c, B, &name, &owner, &e), 0);
	assert_null(name);
	assert_int_equal(kiln_catalog_reviewer_owner(f->c, &name, sha, &e), 0);
	assert_string_equal(name, "owner");
	assert_string_equal(sha, "cc");
	free(name);
}

static void note_keeps_status(void **state)
{
	struct fx *f = *state;
	struct kiln_review_state s;
	int64_t *ids = NULL;
	size_t n;
	struct kiln_error e;
	uint64_t id = f->ids[2];
	decide(f, "ana", id, "approve", 0, NULL, NULL);
	decide(f, "bo", id, "note", 0, NULL, "left wing a bit soft");
	state_of(f, id, &s);
	assert_string_equal(s.status, "approved");  /* a note is not a vote */
	assert_int_equal(s.approvals, 1);
	assert_false(s.conflict);
	assert_string_equal(s.reviewers, "[\"ana\"]");
	assert_string_equal(s.note, "left wing a bit soft");
	kiln_review_state_release(&s);
	/* bo's undo takes his note back, ana's approval stays */
	assert_int_equal(kiln_catalog_review_undo(f->c, "bo", &ids, &n, &e), 0);
	assert_int_equal(n, 1);
	free(ids);
	state_of(f, id, &s);
	assert_string_equal(s.status, "approved");
	assert_null(s.note);
	kiln_review_state_release(&s);
}

static long long q1(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	long long v = -1;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* a version 11 catalog (the log's CHECK without "note") is brought to the latest: every row
 * with its id, the AUTOINCREMENT counter, the indexes and the triggers kept */
static void migration_keeps_log(void **state)
{
	struct fx *f = *state;
	struct kiln_error e;
	sqlite3 *db;
	char *before = NULL, *after = NULL;
	decide(f, "ana", f->ids[1], "approve", 0, NULL, "ok");
	decide(f, "bo", f->ids[1], "reject", 0, NULL, NULL);
	decide(f, "ana", f->ids[0], "pick", 2, B, NULL);
	assert_int_equal(kiln_catalog_review_log_json(f->c, 0, 0, &before, &e), 0);
	kiln_catalog_free(f->c);
	f->c = NULL;
	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	/* back to version 11's log: the old CHECK, a counter past the last row (ids are never
	 * reused, even of rows a crashed transaction took) */
	assert_int_equal(sqlite3_exec(db,
		"BEGIN; CREATE TABLE old_log (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL,"
		" reviewer TEXT NOT NULL, item_id INTEGER NOT NULL, action TEXT NOT NULL CHECK (action"
		" IN ('approve','reject','pending','regenerate','pick','undo','reset')), candidate "
		"INTEGER, image TEXT, note TEXT, prompt_add INTEGER NOT NULL DEFAULT 0, group_id "
		"INTEGER, undoes INTEGER, same_seed INTEGER NOT NULL DEFAULT 0);"
		"INSERT INTO old_log SELECT * FROM review_log; DROP TABLE review_log;"
		"ALTER TABLE old_log RENAME TO review_log;"
		"UPDATE sqlite_sequence SET seq = 40 WHERE name = 'review_log';"
		"CREATE INDEX review_log_item ON review_log(item_id, id);"
		"CREATE INDEX review_log_reviewer ON review_log(reviewer, id);"
		"CREATE INDEX review_log_undoes ON review_log(undoes);"
		"CREATE TRIGGER review_log_no_update BEFORE UPDATE ON review_log BEGIN SELECT "
		"RAISE(ABORT, 'the review log is append-only'); END;"
		"CREATE TRIGGER review_log_no_delete BEFORE DELETE ON review_log BEGIN SELECT "
		"RAISE(ABORT, 'the review log is append-only'); END;"
		"DROP TABLE review_sessions; PRAGMA user_version = 11; COMMIT;", NULL, NULL, NULL),
		SQLITE_OK);
	/* the old log refuses a note */
	assert_int_not_equal(sqlite3_exec(db, "INSERT INTO review_log(at, reviewer, item_id, "
					  "action) VALUES ('x', 'ana', 1, 'note')", NULL, NULL,
					  NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(kiln_catalog_open(&f->c, f->db, &e), 0);
	assert_int_equal(kiln_catalog_review_log_json(f->c, 0, 0, &after, &e), 0);
	assert_string_equal(before, after);
	free(before);
	free(after);
	decide(f, "bo", f->ids[1], "note", 0, NULL, "after the upgrade");
	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_equal(q1(db, "PRAGMA user_version"), kiln_catalog_latest_version());
	assert_int_equal(q1(db, "SELECT max(id) FROM review_log"), 41);
	assert_int_equal(q1(db, "SELECT count(*) FROM sqlite_master WHERE tbl_name = 'review_log'"
			    " AND name IN ('review_log_item', 'review_log_reviewer', "
			    "'review_log_undoes', 'review_log_no_update', 'review_log_no_delete')"), 5);
	assert_int_equal(q1(db, "SELECT count(*) FROM sqlite_master WHERE name = "
			    "'review_log_v12'"), 0);
	assert_int_not_equal(sqlite3_exec(db, "DELETE FROM review_log", NULL, NULL, NULL),
			     SQLITE_OK);
	assert_non_null(strstr(sqlite3_errmsg(db), "append-only"));
	assert_int_equal(q1(db, "SELECT count(*) FROM review_sessions"), 0);
	sqlite3_close(db);
}

static void sessions(void **state)
{
	struct fx *f = *state;
	struct kiln_review_session s;
	struct kiln_error e;
	uint64_t purged;
	int found;
	assert_int_equal(kiln_catalog_reviewer_put(f->c, "ana", A, 0, &e), 0);
	assert_int_equal(kiln_catalog_review_session_put(f->c, B, "ana", A, 100, 200, &e), 0);
	assert_int_equal(kiln_catalog_review_session_put(f->c, A, "ana", B, 100, 5000, &e), 0);
	assert_int_equal(kiln_catalog_review_session_find(f->c, B, &s, &found, &e), 0);
	assert_int_equal(found, 1);
	assert_string_equal(s.reviewer, "ana");
	assert_string_equal(s.csrf, A);
	assert_true(s.expires == 200);
	free(s.reviewer);
	assert_int_equal(kiln_catalog_review_sessions_purge(f->c, 300, &purged, &e), 0);
	assert_int_equal(purged, 1);
	assert_int_equal(kiln_catalog_review_session_find(f->c, B, &s, &found, &e), 0);
	assert_int_equal(found, 0);
	assert_int_equal(kiln_catalog_review_session_find(f->c, A, &s, &found, &e), 0);
	assert_int_equal(found, 1);
	free(s.reviewer);
	/* a session of a reviewer no longer in the catalog is none */
	assert_int_equal(kiln_catalog_review_session_put(f->c, "cc", "gone", A, 1, 5000, &e), 0);
	assert_int_equal(kiln_catalog_review_session_find(f->c, "cc", &s, &found, &e), 0);
	assert_int_equal(found, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(votes_and_conflicts, setup, teardown),
		cmocka_unit_test_setup_teardown(bulk_and_undo, setup, teardown),
		cmocka_unit_test_setup_teardown(pick_sets_image, setup, teardown),
		cmocka_unit_test_setup_teardown(log_is_append_only, setup, teardown),
		cmocka_unit_test_setup_teardown(unknown_token_writes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(reviewers, setup, teardown),
		cmocka_unit_test_setup_teardown(note_keeps_status, setup, teardown),
		cmocka_unit_test_setup_teardown(migration_keeps_log, setup, teardown),
		cmocka_unit_test_setup_teardown(sessions, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
