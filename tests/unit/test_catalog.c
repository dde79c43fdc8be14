/* catalog and store: plans round-trip by name, renders are recorded, the event log refuses
 * edits, re-planning keeps unchanged items' renders, the store is content-addressed. */
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
#include "kiln/catalog.h"
#include "util/fs.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(plan_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(renders_and_replan, setup, teardown),
		cmocka_unit_test_setup_teardown(events_append_only, setup, teardown),
		cmocka_unit_test_setup_teardown(store, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
