/* lib/catalog/internal.h: what the files of the catalog module share (catalog.c opens the
 * database and migrates it; review.c holds the review tables' SQL). */
#ifndef KILN_CATALOG_INTERNAL_H
#define KILN_CATALOG_INTERNAL_H

#include <sqlite3.h>

struct kiln_catalog {
	sqlite3 *db;
	char *path;
	int readonly;             /* opened for reading: every write is refused */
};

/* Version 6: review. Reviewers by name with the SHA-256 of their token (the token itself is
 * never stored); review_log, append-only like events (an undo is a row naming the decision it
 * undoes, never an update or a delete); review_state, each item's status as the log decides
 * it, written in the same transaction as the log row; thumbs, a thumbnail in the store by the
 * SHA-256 of its source image. */
#define KILN_CATALOG_REVIEW_SCHEMA \
	"CREATE TABLE IF NOT EXISTS reviewers (\n" \
	"  name TEXT PRIMARY KEY, token_sha256 TEXT NOT NULL UNIQUE,\n" \
	"  owner INTEGER NOT NULL DEFAULT 0, created TEXT NOT NULL);\n" \
	"CREATE TABLE IF NOT EXISTS review_log (\n" \
	"  id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, reviewer TEXT NOT NULL,\n" \
	"  item_id INTEGER NOT NULL, action TEXT NOT NULL CHECK (action IN ('approve','reject',\n" \
	"  'pending','regenerate','pick','undo','reset')), candidate INTEGER, image TEXT,\n" \
	"  note TEXT, prompt_add INTEGER NOT NULL DEFAULT 0, group_id INTEGER, undoes INTEGER);\n" \
	"CREATE INDEX IF NOT EXISTS review_log_item ON review_log(item_id, id);\n" \
	"CREATE INDEX IF NOT EXISTS review_log_reviewer ON review_log(reviewer, id);\n" \
	"CREATE INDEX IF NOT EXISTS review_log_undoes ON review_log(undoes);\n" \
	"CREATE TRIGGER IF NOT EXISTS review_log_no_update BEFORE UPDATE ON review_log\n" \
	"  BEGIN SELECT RAISE(ABORT, 'the review log is append-only'); END;\n" \
	"CREATE TRIGGER IF NOT EXISTS review_log_no_delete BEFORE DELETE ON review_log\n" \
	"  BEGIN SELECT RAISE(ABORT, 'the review log is append-only'); END;\n" \
	"CREATE TABLE IF NOT EXISTS review_state (\n" \
	"  item_id INTEGER PRIMARY KEY, status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN\n" \
	"  ('pending','approved','rejected','regenerate')), candidate INTEGER, note TEXT,\n" \
	"  reviewers TEXT NOT NULL DEFAULT '[]', approvals INTEGER NOT NULL DEFAULT 0,\n" \
	"  conflict INTEGER NOT NULL DEFAULT 0, regeneration INTEGER NOT NULL DEFAULT 0,\n" \
	"  prompt_add TEXT, base_image TEXT, last_decision INTEGER);\n" \
	"CREATE INDEX IF NOT EXISTS review_state_status ON review_state(status);\n" \
	"CREATE TABLE IF NOT EXISTS thumbs (source TEXT PRIMARY KEY, thumb TEXT NOT NULL);\n"

#include <stdint.h>
struct kiln_error;
/* review.c, inside catalog.c's render transaction: item_id got an accepted render; when its
 * review state waits for regeneration, append a "reset" row (it is pending again, earlier
 * votes void) and rewrite its state. */
int kiln_catalog__review_rendered_tx(struct kiln_catalog *c, uint64_t item_id,
				     struct kiln_error *e);
/* the item's decisions belong to a token a new plan replaced (new traits, seed or legendary) or
 * removed: a "reset" by kiln naming why, in the caller's transaction (no-op without decisions) */
int kiln_catalog__review_replanned_tx(struct kiln_catalog *c, uint64_t item_id, const char *why,
				      struct kiln_error *e);

#endif
