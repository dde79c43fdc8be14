/* Fuzz target: the catalog's JSON readers. A catalog is a file on disk that other tools (or an
 * older or damaged kiln) may have written: an item's traits column is JSON that
 * kiln_catalog_items() maps onto the spec's layers and values, and a render's request is JSON
 * that `kiln show` embeds. Input: the traits text and a render's request text, split by the
 * two bytes 0x00 0x01, written into one item and one render row of a scratch catalog. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sqlite3.h>
#include "kiln/catalog.h"

static const char spec_text[] =
	"collection: {name: Fuzz, symbol: FZ, size: 2, seed: 1}\n"
	"image: {width: 8, height: 8, format: png}\n"
	"layers:\n"
	"  - name: Body\n"
	"    traits:\n"
	"      - {name: Plain, weight: 1, file: a.png}\n"
	"      - {name: Gold, weight: 1, file: b.png}\n";

static struct kiln_spec *spec;
static struct kiln_catalog *cat;
static sqlite3 *db;

static int setup(void)
{
	char path[256];
	struct kiln_error e;
	snprintf(path, sizeof path, "%s/kiln-fuzz-catalog-%ld.db",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (long)getpid());
	unlink(path);
	kiln_error_clear(&e);
	if (kiln_spec_parse(&spec, spec_text, sizeof spec_text - 1, "fuzz.yaml", NULL, &e) ||
	    kiln_catalog_open(&cat, path, &e) || sqlite3_open(path, &db) != SQLITE_OK)
		return -1;
	sqlite3_exec(db, "INSERT INTO items(id, kind, seed, traits, planned_at) VALUES "
		     "(1, 'generated', 1, '{}', '2026-01-01');"
		     "INSERT INTO renders(id, item_id, engine, request, status) VALUES "
		     "(1, 1, 'a1111', '{}', 'failed');", NULL, NULL, NULL);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready = -2;
	struct kiln_items items;
	struct kiln_error e;
	sqlite3_stmt *st;
	char *renders = NULL;
	size_t split = 0;
	if (ready == -2)
		ready = setup();
	if (ready)
		return 0;
	while (split + 1 < size && !(data[split] == 0 && data[split + 1] == 1))
		split++;
	if (split + 1 >= size)
		split = size;
	if (sqlite3_prepare_v2(db, "UPDATE items SET traits = ?1 WHERE id = 1", -1, &st, NULL) ==
	    SQLITE_OK) {
		sqlite3_bind_text(st, 1, (const char *)data, (int)split, SQLITE_TRANSIENT);
		sqlite3_step(st);
		sqlite3_finalize(st);
	}
	if (sqlite3_prepare_v2(db, "UPDATE renders SET request = ?1 WHERE id = 1", -1, &st, NULL) ==
	    SQLITE_OK) {
		size_t from = split + 2 < size ? split + 2 : size;
		sqlite3_bind_text(st, 1, (const char *)data + from, (int)(size - from),
				  SQLITE_TRANSIENT);
		sqlite3_step(st);
		sqlite3_finalize(st);
	}
	memset(&items, 0, sizeof items);
	kiln_error_clear(&e);
	if (kiln_catalog_items(cat, spec, &items, &e) == 0)
		kiln_items_release(&items);
	kiln_error_clear(&e);
	if (kiln_catalog_item_renders_json(cat, 1, &renders, &e) == 0)
		free(renders);
	return 0;
}
