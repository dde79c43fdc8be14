/* catalog/review: the review tables (schema in internal.h, version 6): reviewers, the
 * append-only decision log and each item's review state.
 *
 * Invariants: a decision is one transaction that appends its log rows and rewrites the state
 * of the items they touch from the log, so the state never disagrees with the log; the log is
 * never updated or deleted (triggers), an undo is a row naming the decision it undoes. Tokens
 * are stored only as SHA-256.
 *
 * Sizes: reviewers a handful; log rows a few per item and reviewer (10,000 items, 5
 * reviewers: ~100,000 rows); one state row per item decided.
 */
#include "catalog/db.h"
#include "catalog/internal.h"
#include "kiln/catalog.h"
#include "util/alloc.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static char *rv_dup(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	return t ? kiln_strdup((const char *)t) : NULL;
}

/* --- reviewers ------------------------------------------------------------------------------ */

int kiln_catalog_reviewer_put(struct kiln_catalog *c, const char *name, const char *token_sha,
			      int owner, struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	char at[48];
	int rc;
	if ((rc = begin(c, e)))
		return rc;
	if (!owner) {
		if ((rc = prepare(c, "SELECT 1 FROM reviewers WHERE name = ?", &st, e)))
			goto out;
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW) {
			rc = kiln_error_set(e, KILN_E_STATE, c->path, "reviewer '%s' already "
					    "exists: choose another name", name);
			goto out;
		}
		sqlite3_finalize(st);
		st = NULL;
	}
	now_iso(at);
	if ((rc = prepare(c, owner ? "INSERT OR REPLACE INTO reviewers(name, token_sha256, "
			     "owner, created) VALUES (?, ?, 1, ?)" : "INSERT INTO reviewers(name, "
			     "token_sha256, owner, created) VALUES (?, ?, 0, ?)", &st, e)))
		goto out;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, token_sha, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, at, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = db_error(c, e, "adding a reviewer");
		goto out;
	}
	rc = exec(c, "COMMIT", e);
out:
	sqlite3_finalize(st);
	if (rc)
		rollback(c);
	return rc;
}

int kiln_catalog_reviewer_find(struct kiln_catalog *c, const char *token_sha, char **name,
			       int *owner, struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	int rc, step;
	*name = NULL;
	*owner = 0;
	if ((rc = prepare(c, "SELECT name, owner FROM reviewers WHERE token_sha256 = ?", &st,
			     e)))
		return rc;
	sqlite3_bind_text(st, 1, token_sha, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		*owner = sqlite3_column_int(st, 1);
		if (!(*name = rv_dup(st, 0)))
			rc = kiln_error_set(e, KILN_E_NOMEM, c->path, "out of memory");
	} else if (step != SQLITE_DONE) {
		rc = db_error(c, e, "reading the reviewers");
	}
	sqlite3_finalize(st);
	return rc;
}

int kiln_catalog_reviewer_owner(struct kiln_catalog *c, char **name, char token_sha[65],
				struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	int rc, step;
	*name = NULL;
	token_sha[0] = 0;
	if ((rc = prepare(c, "SELECT name, token_sha256 FROM reviewers WHERE owner = 1 "
			     "LIMIT 1", &st, e)))
		return rc;
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(st, 1);
		snprintf(token_sha, 65, "%s", t ? (const char *)t : "");
		if (!(*name = rv_dup(st, 0)))
			rc = kiln_error_set(e, KILN_E_NOMEM, c->path, "out of memory");
	} else if (step != SQLITE_DONE) {
		rc = db_error(c, e, "reading the reviewers");
	}
	sqlite3_finalize(st);
	return rc;
}

/* --- sessions ------------------------------------------------------------------------------- */

int kiln_catalog_review_session_put(struct kiln_catalog *c, const char *id_sha,
				    const char *reviewer, const char *csrf, double created,
				    double expires, struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	int rc;
	if ((rc = writable(c, e)) ||
	    (rc = prepare(c, "INSERT OR REPLACE INTO review_sessions(id_sha256, reviewer, csrf, "
			     "created, expires) VALUES (?, ?, ?, ?, ?)", &st, e)))
		return rc;
	sqlite3_bind_text(st, 1, id_sha, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, reviewer, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, csrf, -1, SQLITE_STATIC);
	sqlite3_bind_double(st, 4, created);
	sqlite3_bind_double(st, 5, expires);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_error(c, e, "recording a review session");
	sqlite3_finalize(st);
	return rc;
}

int kiln_catalog_review_session_find(struct kiln_catalog *c, const char *id_sha,
				     struct kiln_review_session *out, int *found,
				     struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	int rc, step;
	*found = 0;
	memset(out, 0, sizeof *out);
	/* a reviewer no longer in the catalog has no session either */
	if ((rc = prepare(c, "SELECT s.reviewer, r.owner, s.csrf, s.created, s.expires FROM "
			     "review_sessions s JOIN reviewers r ON r.name = s.reviewer WHERE "
			     "s.id_sha256 = ?", &st, e)))
		return rc;
	sqlite3_bind_text(st, 1, id_sha, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(st, 2);
		out->owner = sqlite3_column_int(st, 1);
		snprintf(out->csrf, sizeof out->csrf, "%s", t ? (const char *)t : "");
		out->created = sqlite3_column_double(st, 3);
		out->expires = sqlite3_column_double(st, 4);
		if (!(out->reviewer = rv_dup(st, 0)))
			rc = kiln_error_set(e, KILN_E_NOMEM, c->path, "out of memory");
		else
			*found = 1;
	} else if (step != SQLITE_DONE) {
		rc = db_error(c, e, "reading the review sessions");
	}
	sqlite3_finalize(st);
	return rc;
}

int kiln_catalog_review_sessions_purge(struct kiln_catalog *c, double now, uint64_t *purged,
				       struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	int rc;
	if (purged)
		*purged = 0;
	if ((rc = writable(c, e)) ||
	    (rc = prepare(c, "DELETE FROM review_sessions WHERE expires <= ?", &st, e)))
		return rc;
	sqlite3_bind_double(st, 1, now);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_error(c, e, "purging expired review sessions");
	else if (purged)
		*purged = (uint64_t)sqlite3_changes(c->db);
	sqlite3_finalize(st);
	return rc;
}

/* --- decisions ------------------------------------------------------------------------------ */

static const char *status_of(const char *action)
{
	if (!strcmp(action, "approve") || !strcmp(action, "pick"))
		return "approved";
	if (!strcmp(action, "reject"))
		return "rejected";
	if (!strcmp(action, "regenerate"))
		return "regenerate";
	return "pending";
}

struct vote {
	char *reviewer;
	char action[12];
	unsigned candidate;
};

static int json_add_str(json_t *arr, const char *s)
{
	return json_array_append_new(arr, json_string(s));
}

/* Rewrite item_id's state from its log (inside the caller's transaction). The rules: the
 * effective decisions are those not undone; a "reset" (new candidates rendered) voids the votes
 * before it; each reviewer's vote is their last effective decision after the last reset
 * ("pending" withdraws it); the status is the last effective decision's; approvals count the
 * reviewers voting approve or pick; a conflict is an approval beside a reject or regenerate, or
 * two different picks. The picked candidate (and the item's image) is the last effective pick's,
 * else the image the item had before its first pick. */
static int recompute(struct kiln_catalog *c, uint64_t item_id, struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	struct vote *votes = NULL;
	size_t nvotes = 0;
	char status[12] = "pending", *note = NULL, *pick_image = NULL;
	unsigned candidate = 0, regeneration = 0, seed_round = 0, approvals = 0;
	int conflict = 0, step, rc, any_pick = 0;
	sqlite3_int64 last = 0;
	json_t *names = json_array(), *adds = json_array();
	char *names_text = NULL, *adds_text = NULL;
	if (!names || !adds) {
		rc = kiln_error_set(e, KILN_E_NOMEM, c->path, "out of memory");
		goto out;
	}
	if ((rc = prepare(c, "SELECT l.id, l.reviewer, l.action, l.candidate, l.note, "
			     "l.prompt_add, l.image, l.same_seed FROM review_log l WHERE l.item_id = ? "
			     "AND "
			     "l.action <> 'undo' AND NOT EXISTS (SELECT 1 FROM review_log u WHERE "
			     "u.undoes = l.id) ORDER BY l.id", &st, e)))
		goto out;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)item_id);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *who = (const char *)sqlite3_column_text(st, 1);
		const char *act = (const char *)sqlite3_column_text(st, 2);
		const char *nt = (const char *)sqlite3_column_text(st, 4);
		size_t k;
		last = sqlite3_column_int64(st, 0);
		if (!who || !act)
			continue;
		if (!strcmp(act, "reset")) {
			for (size_t i = 0; i < nvotes; i++)
				free(votes[i].reviewer);
			nvotes = 0;
			snprintf(status, sizeof status, "pending");
			candidate = 0;
			any_pick = 0;
			free(pick_image);
			pick_image = NULL;
			continue;
		}
		if (nt && *nt) {
			free(note);
			if (!(note = kiln_strdup(nt)))
				goto nomem;
		}
		/* a note is a remark, not a vote: the status and the votes stay */
		if (!strcmp(act, "note"))
			continue;
		snprintf(status, sizeof status, "%s", status_of(act));
		if (!strcmp(act, "regenerate")) {
			int same = sqlite3_column_int(st, 7);
			regeneration++;
			seed_round += !same;
			if ((sqlite3_column_int(st, 5) || same) && nt && *nt &&
			    json_array_append_new(adds, json_pack("{s:i, s:s}", "round",
								  (int)regeneration, "note", nt)))
				goto nomem;
		}
		if (!strcmp(act, "pick")) {
			const char *img = (const char *)sqlite3_column_text(st, 6);
			candidate = (unsigned)sqlite3_column_int(st, 3);
			free(pick_image);
			pick_image = NULL;
			if (img && !(pick_image = kiln_strdup(img)))
				goto nomem;
			any_pick = 1;
		}
		for (k = 0; k < nvotes && strcmp(votes[k].reviewer, who); k++)
			;
		if (k == nvotes) {
			struct vote *v = kiln_reallocarray(votes, nvotes + 1, sizeof *v);
			if (!v)
				goto nomem;
			votes = v;
			if (!(votes[k].reviewer = kiln_strdup(who)))
				goto nomem;
			nvotes++;
		}
		snprintf(votes[k].action, sizeof votes[k].action, "%s", act);
		votes[k].candidate = (unsigned)sqlite3_column_int(st, 3);
	}
	if (step != SQLITE_DONE) {
		rc = db_error(c, e, "reading the review log");
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	{
		int yes = 0, no = 0;
		unsigned picked = 0;
		for (size_t i = 0; i < nvotes; i++) {
			const char *a = votes[i].action;
			if (!strcmp(a, "pending"))
				continue;
			if (json_add_str(names, votes[i].reviewer))
				goto nomem;
			if (!strcmp(a, "approve") || !strcmp(a, "pick")) {
				approvals++;
				yes = 1;
				if (!strcmp(a, "pick")) {
					if (picked && picked != votes[i].candidate)
						conflict = 1;
					picked = votes[i].candidate;
				}
			} else {
				no = 1;
			}
		}
		conflict |= yes && no;
	}
	if (!(names_text = json_dumps(names, JSON_COMPACT)) ||
	    (json_array_size(adds) && !(adds_text = json_dumps(adds, JSON_COMPACT))))
		goto nomem;
	/* the state row; base_image keeps the image the item had before its first pick */
	if ((rc = prepare(c, "INSERT INTO review_state(item_id, status, candidate, note, "
			     "reviewers, approvals, conflict, regeneration, prompt_add, base_image, "
			     "last_decision, seed_round) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
			     "(SELECT image FROM items WHERE id = ?1), ?10, ?11) ON CONFLICT(item_id) DO "
			     "UPDATE SET status = ?2, candidate = ?3, note = ?4, reviewers = ?5, "
			     "approvals = ?6, conflict = ?7, regeneration = ?8, prompt_add = ?9, "
			     "last_decision = ?10, seed_round = ?11",
			     &st, e)))
		goto out;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)item_id);
	sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
	if (candidate)
		sqlite3_bind_int(st, 3, (int)candidate);
	sqlite3_bind_text(st, 4, note, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, names_text, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 6, (int)approvals);
	sqlite3_bind_int(st, 7, conflict);
	sqlite3_bind_int(st, 8, (int)regeneration);
	sqlite3_bind_text(st, 9, adds_text, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 10, last);
	sqlite3_bind_int(st, 11, (int)seed_round);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = db_error(c, e, "writing the review state");
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	/* the item's image: the picked candidate's, or back to the one before any pick */
	if ((rc = prepare(c, any_pick && pick_image ?
			     "UPDATE items SET image = ?2, recipe = coalesce((SELECT r.recipe FROM "
			     "renders r WHERE r.item_id = ?1 AND r.image = ?2 AND r.status = 'ok' "
			     "ORDER BY r.id DESC LIMIT 1), recipe), image_bytes = coalesce((SELECT "
			     "r.bytes FROM renders r WHERE r.item_id = ?1 AND r.image = ?2 AND "
			     "r.status = 'ok' ORDER BY r.id DESC LIMIT 1), image_bytes) WHERE id = ?1 "
			     "AND image IS NOT ?2" :
			     "UPDATE items SET image = b.base_image, recipe = coalesce((SELECT "
			     "r.recipe FROM renders r WHERE r.item_id = ?1 AND r.image = b.base_image "
			     "AND r.status = 'ok' ORDER BY r.id DESC LIMIT 1), recipe) FROM (SELECT "
			     "base_image FROM review_state WHERE item_id = ?1) b WHERE id = ?1 AND "
			     "b.base_image IS NOT NULL AND image IS NOT b.base_image AND image IN "
			     "(SELECT l.image FROM review_log l WHERE l.item_id = ?1 AND l.action = "
			     "'pick')", &st, e)))
		goto out;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)item_id);
	if (any_pick && pick_image)
		sqlite3_bind_text(st, 2, pick_image, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = db_error(c, e, "setting the picked image");
		goto out;
	}
	goto out;
nomem:
	rc = kiln_error_set(e, KILN_E_NOMEM, c->path, "out of memory");
out:
	sqlite3_finalize(st);
	for (size_t i = 0; i < nvotes; i++)
		free(votes[i].reviewer);
	free(votes);
	free(note);
	free(pick_image);
	free(names_text);
	free(adds_text);
	json_decref(names);
	json_decref(adds);
	return rc;
}

static int valid_action(const char *a)
{
	static const char *const v[] = {"approve", "reject", "pending", "regenerate", "pick",
					"note"};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
		if (!strcmp(a, v[i]))
			return 1;
	return 0;
}

int kiln_catalog_review_decide(struct kiln_catalog *c, const char *reviewer,
			       const struct kiln_review_decision *d, size_t n, int group,
			       int64_t *first, int64_t *group_id, struct kiln_error *e)
{
	sqlite3_stmt *ins = NULL, *chk = NULL;
	sqlite3_int64 gid = 0;
	char at[48];
	int rc;
	*first = 0;
	*group_id = 0;
	for (size_t i = 0; i < n; i++)
		if (!valid_action(d[i].action))
			return kiln_error_set(e, KILN_E_USAGE, d[i].action, "not a review action "
					      "(approve, reject, pending, regenerate, pick, note)");
	if ((rc = begin(c, e)))
		return rc;
	now_iso(at);
	if ((rc = prepare(c, "SELECT image FROM items WHERE id = ?", &chk, e)) ||
	    (rc = prepare(c, "INSERT INTO review_log(at, reviewer, item_id, action, candidate, "
			     "image, note, prompt_add, group_id, same_seed) VALUES (?, ?, ?, ?, ?, ?, ?, "
			     "?, ?, ?)",
			     &ins, e)))
		goto out;
	if (group || n > 1) {
		sqlite3_stmt *g = NULL;
		if ((rc = prepare(c, "SELECT coalesce(max(group_id), 0) + 1 FROM review_log", &g,
				     e)))
			goto out;
		if (sqlite3_step(g) == SQLITE_ROW)
			gid = sqlite3_column_int64(g, 0);
		sqlite3_finalize(g);
		if (!gid) {
			rc = db_error(c, e, "numbering a bulk decision");
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++) {
		char img[65] = "";
		const unsigned char *t;
		sqlite3_reset(chk);
		sqlite3_bind_int64(chk, 1, (sqlite3_int64)d[i].item_id);
		if (sqlite3_step(chk) != SQLITE_ROW) {
			rc = kiln_error_set(e, KILN_E_STATE, c->path, "token %llu is not in the "
					    "catalog", (unsigned long long)d[i].item_id);
			goto out;
		}
		if ((t = sqlite3_column_text(chk, 0)))
			snprintf(img, sizeof img, "%s", (const char *)t);
		sqlite3_reset(ins);
		sqlite3_clear_bindings(ins);
		sqlite3_bind_text(ins, 1, at, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 2, reviewer, -1, SQLITE_STATIC);
		sqlite3_bind_int64(ins, 3, (sqlite3_int64)d[i].item_id);
		sqlite3_bind_text(ins, 4, d[i].action, -1, SQLITE_STATIC);
		if (d[i].candidate)
			sqlite3_bind_int(ins, 5, (int)d[i].candidate);
		if (d[i].image || img[0])
			sqlite3_bind_text(ins, 6, d[i].image ? d[i].image : img, -1,
					  SQLITE_TRANSIENT);
		if (d[i].note && *d[i].note)
			sqlite3_bind_text(ins, 7, d[i].note, -1, SQLITE_STATIC);
		sqlite3_bind_int(ins, 8, d[i].prompt_add ? 1 : 0);
		if (gid)
			sqlite3_bind_int64(ins, 9, gid);
		sqlite3_bind_int(ins, 10, d[i].same_seed ? 1 : 0);
		if (sqlite3_step(ins) != SQLITE_DONE) {
			rc = db_error(c, e, "appending to the review log");
			goto out;
		}
		if (i == 0)
			*first = sqlite3_last_insert_rowid(c->db);
		if ((rc = recompute(c, d[i].item_id, e)))
			goto out;
	}
	*group_id = gid;
	rc = exec(c, "COMMIT", e);
out:
	sqlite3_finalize(chk);
	sqlite3_finalize(ins);
	if (rc)
		rollback(c);
	return rc;
}

int kiln_catalog_review_undo(struct kiln_catalog *c, const char *reviewer, int64_t **ids,
			     size_t *n, struct kiln_error *e)
{
	sqlite3_stmt *st = NULL, *ins = NULL;
	sqlite3_int64 last_id = 0, gid = 0;
	int64_t *v = NULL;
	uint64_t *items = NULL;
	size_t nv = 0;
	char at[48];
	int rc, step;
	*ids = NULL;
	*n = 0;
	if ((rc = begin(c, e)))
		return rc;
	/* the reviewer's last decision still standing */
	if ((rc = prepare(c, "SELECT l.id, l.group_id FROM review_log l WHERE l.reviewer = ? "
			     "AND l.action NOT IN ('undo', 'reset') AND NOT EXISTS (SELECT 1 FROM "
			     "review_log u WHERE u.undoes = l.id) ORDER BY l.id DESC LIMIT 1", &st,
			     e)))
		goto out;
	sqlite3_bind_text(st, 1, reviewer, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_DONE)
		goto done;
	if (step != SQLITE_ROW) {
		rc = db_error(c, e, "reading the review log");
		goto out;
	}
	last_id = sqlite3_column_int64(st, 0);
	gid = sqlite3_column_int64(st, 1);
	sqlite3_finalize(st);
	st = NULL;
	if ((rc = prepare(c, gid ? "SELECT l.id, l.item_id FROM review_log l WHERE "
			     "l.group_id = ?2 AND l.reviewer = ?1 AND NOT EXISTS (SELECT 1 FROM "
			     "review_log u WHERE u.undoes = l.id) ORDER BY l.id" :
			     "SELECT id, item_id FROM review_log WHERE id = ?3", &st, e)))
		goto out;
	sqlite3_bind_text(st, 1, reviewer, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, gid);
	sqlite3_bind_int64(st, 3, last_id);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t *nvp = kiln_reallocarray(v, nv + 1, sizeof *v);
		uint64_t *nit = kiln_reallocarray(items, nv + 1, sizeof *items);
		if (nvp)
			v = nvp;
		if (nit)
			items = nit;
		if (!nvp || !nit) {
			rc = kiln_error_set(e, KILN_E_NOMEM, c->path, "out of memory");
			goto out;
		}
		v[nv] = sqlite3_column_int64(st, 0);
		items[nv++] = (uint64_t)sqlite3_column_int64(st, 1);
	}
	if (step != SQLITE_DONE) {
		rc = db_error(c, e, "reading the review log");
		goto out;
	}
	now_iso(at);
	if ((rc = prepare(c, "INSERT INTO review_log(at, reviewer, item_id, action, undoes, "
			     "group_id) VALUES (?, ?, ?, 'undo', ?, NULL)", &ins, e)))
		goto out;
	for (size_t i = 0; i < nv; i++) {
		sqlite3_reset(ins);
		sqlite3_bind_text(ins, 1, at, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 2, reviewer, -1, SQLITE_STATIC);
		sqlite3_bind_int64(ins, 3, (sqlite3_int64)items[i]);
		sqlite3_bind_int64(ins, 4, v[i]);
		if (sqlite3_step(ins) != SQLITE_DONE) {
			rc = db_error(c, e, "appending to the review log");
			goto out;
		}
		if ((rc = recompute(c, items[i], e)))
			goto out;
	}
done:
	rc = exec(c, "COMMIT", e);
out:
	sqlite3_finalize(st);
	sqlite3_finalize(ins);
	free(items);
	if (rc) {
		rollback(c);
		free(v);
		return rc;
	}
	*ids = v;
	*n = nv;
	return 0;
}

/* A "reset" by kiln for item_id (note: its text, NULL: "regeneration N rendered" and only
 * when the item awaits a regeneration), then the state recomputed from the item's image. */
static int reset_tx(struct kiln_catalog *c, uint64_t item_id, const char *note,
		    struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	char at[48];
	int rc;
	if ((rc = prepare(c, note ? "INSERT INTO review_log(at, reviewer, item_id, action, note) "
				    "SELECT ?1, 'kiln', ?2, 'reset', ?3 FROM review_state WHERE "
				    "item_id = ?2" :
				    "INSERT INTO review_log(at, reviewer, item_id, action, note) "
				    "SELECT ?1, 'kiln', ?2, 'reset', 'regeneration ' || regeneration || "
				    "' rendered' FROM review_state WHERE item_id = ?2 AND status = "
				    "'regenerate'", &st, e)))
		return rc;
	now_iso(at);
	sqlite3_bind_text(st, 1, at, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)item_id);
	if (note)
		sqlite3_bind_text(st, 3, note, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = db_error(c, e, "appending to the review log");
		goto out;
	}
	if (!sqlite3_changes(c->db))
		goto out;
	sqlite3_finalize(st);
	st = NULL;
	/* the new render is the image an undone pick goes back to from now on */
	if ((rc = prepare(c, "UPDATE review_state SET base_image = (SELECT image FROM items "
			     "WHERE id = ?1) WHERE item_id = ?1", &st, e)))
		return rc;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)item_id);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = db_error(c, e, "writing the review state");
		goto out;
	}
	rc = recompute(c, item_id, e);
out:
	sqlite3_finalize(st);
	return rc;
}

int kiln_catalog__review_rendered_tx(struct kiln_catalog *c, uint64_t item_id,
				     struct kiln_error *e)
{
	return reset_tx(c, item_id, NULL, e);
}

int kiln_catalog__review_replanned_tx(struct kiln_catalog *c, uint64_t item_id, const char *why,
				      struct kiln_error *e)
{
	return reset_tx(c, item_id, why, e);
}

int kiln_catalog_review_reopen(struct kiln_catalog *c, uint64_t item_id, const char *note,
			       struct kiln_error *e)
{
	int rc;
	if ((rc = begin(c, e)))
		return rc;
	if ((rc = reset_tx(c, item_id, note ? note : "image changed", e)) ||
	    (rc = exec(c, "COMMIT", e)))
		rollback(c);
	return rc;
}

int kiln_catalog_prompt_add(const char *adds, unsigned round, char **out)
{
	json_t *a = adds ? json_loads(adds, 0, NULL) : NULL, *x;
	size_t i, n = 0;
	*out = NULL;
	if (!json_is_array(a)) {
		json_decref(a);
		return 0;
	}
	json_array_foreach(a, i, x)
		if (json_integer_value(json_object_get(x, "round")) <= (json_int_t)round)
			n += json_string_length(json_object_get(x, "note")) + 2;
	if (!n) {
		json_decref(a);
		return 0;
	}
	if (!(*out = kiln_malloc(n + 1))) {
		json_decref(a);
		return -1;
	}
	(*out)[0] = 0;
	json_array_foreach(a, i, x) {
		const char *t = json_string_value(json_object_get(x, "note"));
		if (json_integer_value(json_object_get(x, "round")) > (json_int_t)round || !t)
			continue;
		if ((*out)[0])
			strcat(*out, ", ");
		strcat(*out, t);
	}
	json_decref(a);
	return 0;
}

/* --- reading -------------------------------------------------------------------------------- */

#define STATE_COLS "item_id, status, candidate, note, reviewers, approvals, conflict, " \
	"regeneration, prompt_add, last_decision"

static int state_row(struct kiln_catalog *c, sqlite3_stmt *st, struct kiln_review_state *s,
		     struct kiln_error *e)
{
	const unsigned char *t;
	memset(s, 0, sizeof *s);
	s->item_id = (uint64_t)sqlite3_column_int64(st, 0);
	t = sqlite3_column_text(st, 1);
	snprintf(s->status, sizeof s->status, "%s", t ? (const char *)t : "pending");
	s->candidate = (unsigned)sqlite3_column_int(st, 2);
	s->approvals = (unsigned)sqlite3_column_int(st, 5);
	s->conflict = sqlite3_column_int(st, 6);
	s->regeneration = (unsigned)sqlite3_column_int(st, 7);
	s->last_decision = sqlite3_column_int64(st, 9);
	if ((sqlite3_column_type(st, 3) != SQLITE_NULL && !(s->note = rv_dup(st, 3))) ||
	    !(s->reviewers = sqlite3_column_type(st, 4) != SQLITE_NULL ? rv_dup(st, 4)
								       : kiln_strdup("[]")) ||
	    (sqlite3_column_type(st, 8) != SQLITE_NULL && !(s->prompt_add = rv_dup(st, 8)))) {
		kiln_review_state_release(s);
		return kiln_error_set(e, KILN_E_NOMEM, c->path, "out of memory");
	}
	return 0;
}

void kiln_review_state_release(struct kiln_review_state *s)
{
	if (!s)
		return;
	free(s->note);
	free(s->reviewers);
	free(s->prompt_add);
	s->note = s->reviewers = s->prompt_add = NULL;
}

void kiln_review_states_free(struct kiln_review_state *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		kiln_review_state_release(&v[i]);
	free(v);
}

int kiln_catalog_review_states(struct kiln_catalog *c, struct kiln_review_state **v, size_t *n,
			       struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	struct kiln_review_state *a = NULL;
	size_t na = 0, cap = 0;
	int rc, step;
	*v = NULL;
	*n = 0;
	if ((rc = prepare(c, "SELECT " STATE_COLS " FROM review_state ORDER BY item_id", &st,
			     e)))
		return rc;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (na == cap) {
			struct kiln_review_state *b = kiln_reallocarray(a, cap = cap ? cap * 2 : 64,
									sizeof *b);
			if (!b) {
				rc = kiln_error_set(e, KILN_E_NOMEM, c->path, "out of memory");
				goto out;
			}
			a = b;
		}
		if ((rc = state_row(c, st, &a[na], e)))
			goto out;
		na++;
	}
	if (step != SQLITE_DONE)
		rc = db_error(c, e, "reading the review state");
out:
	sqlite3_finalize(st);
	if (rc) {
		kiln_review_states_free(a, na);
		return rc;
	}
	*v = a;
	*n = na;
	return 0;
}

int kiln_catalog_review_state(struct kiln_catalog *c, uint64_t item_id,
			      struct kiln_review_state *s, int *found, struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	int rc, step;
	*found = 0;
	memset(s, 0, sizeof *s);
	s->item_id = item_id;
	snprintf(s->status, sizeof s->status, "pending");
	if ((rc = prepare(c, "SELECT " STATE_COLS " FROM review_state WHERE item_id = ?", &st,
			     e)))
		return rc;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)item_id);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		if (!(rc = state_row(c, st, s, e)))
			*found = 1;
	} else if (step != SQLITE_DONE) {
		rc = db_error(c, e, "reading the review state");
	}
	sqlite3_finalize(st);
	return rc;
}

int kiln_catalog_review_log_json(struct kiln_catalog *c, int has_item, uint64_t item_id,
				 char **json, struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	json_t *arr = json_array();
	int rc, step;
	*json = NULL;
	if (!arr)
		return kiln_error_set(e, KILN_E_NOMEM, c->path, "out of memory");
	/* one item's rows by the index review_log_item (an OR here would scan the whole log) */
#define LOG_COLS "SELECT l.id, l.at, l.reviewer, l.item_id, l.action, l.candidate, l.image, " \
	"l.note, l.prompt_add, l.group_id, l.undoes, EXISTS (SELECT 1 FROM review_log u WHERE " \
	"u.undoes = l.id) FROM review_log l "
	if ((rc = prepare(c, has_item ? LOG_COLS "WHERE l.item_id = ?2 ORDER BY l.id" :
			     LOG_COLS "WHERE ?1 = 0 ORDER BY l.id", &st, e)))
		goto out;
#undef LOG_COLS
	sqlite3_bind_int(st, 1, has_item);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)item_id);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *o = json_pack("{s:I, s:s, s:s, s:I, s:s, s:o, s:o, s:o, s:b, s:o, s:o, s:b}",
			"id", (json_int_t)sqlite3_column_int64(st, 0),
			"at", (const char *)sqlite3_column_text(st, 1),
			"reviewer", (const char *)sqlite3_column_text(st, 2),
			"item", (json_int_t)sqlite3_column_int64(st, 3),
			"action", (const char *)sqlite3_column_text(st, 4),
			"candidate", sqlite3_column_type(st, 5) == SQLITE_NULL ? json_null() :
				json_integer(sqlite3_column_int64(st, 5)),
			"image", sqlite3_column_type(st, 6) == SQLITE_NULL ? json_null() :
				json_string((const char *)sqlite3_column_text(st, 6)),
			"note", sqlite3_column_type(st, 7) == SQLITE_NULL ? json_null() :
				json_string((const char *)sqlite3_column_text(st, 7)),
			"prompt_add", sqlite3_column_int(st, 8),
			"group", sqlite3_column_type(st, 9) == SQLITE_NULL ? json_null() :
				json_integer(sqlite3_column_int64(st, 9)),
			"undoes", sqlite3_column_type(st, 10) == SQLITE_NULL ? json_null() :
				json_integer(sqlite3_column_int64(st, 10)),
			"undone", sqlite3_column_int(st, 11));
		if (!o || json_array_append_new(arr, o)) {
			rc = kiln_error_set(e, KILN_E_NOMEM, c->path, "out of memory");
			goto out;
		}
	}
	if (step != SQLITE_DONE) {
		rc = db_error(c, e, "reading the review log");
		goto out;
	}
	if (!(*json = json_dumps(arr, JSON_COMPACT | JSON_PRESERVE_ORDER)))
		rc = kiln_error_set(e, KILN_E_NOMEM, c->path, "out of memory");
out:
	sqlite3_finalize(st);
	json_decref(arr);
	return rc;
}

int kiln_catalog_review_counts(struct kiln_catalog *c, struct kiln_review_counts *out,
			       struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	int rc;
	memset(out, 0, sizeof *out);
	if ((rc = prepare(c, "SELECT (SELECT count(*) FROM items i LEFT JOIN review_state s ON "
			     "s.item_id = i.id WHERE coalesce(s.status, 'pending') = 'pending'), "
			     "(SELECT count(*) FROM review_state s JOIN items i ON i.id = s.item_id "
			     "WHERE s.status = 'approved'), (SELECT count(*) FROM review_state s JOIN "
			     "items i ON i.id = s.item_id WHERE s.status = 'rejected'), (SELECT "
			     "count(*) FROM review_state s JOIN items i ON i.id = s.item_id WHERE "
			     "s.status = 'regenerate'), (SELECT count(*) FROM review_state s JOIN "
			     "items i ON i.id = s.item_id WHERE s.conflict), (SELECT count(*) FROM "
			     "review_log WHERE action NOT IN ('undo', 'reset'))", &st, e)))
		return rc;
	if (sqlite3_step(st) == SQLITE_ROW) {
		out->pending = (uint64_t)sqlite3_column_int64(st, 0);
		out->approved = (uint64_t)sqlite3_column_int64(st, 1);
		out->rejected = (uint64_t)sqlite3_column_int64(st, 2);
		out->regenerate = (uint64_t)sqlite3_column_int64(st, 3);
		out->conflicts = (uint64_t)sqlite3_column_int64(st, 4);
		out->decisions = (uint64_t)sqlite3_column_int64(st, 5);
	} else {
		rc = db_error(c, e, "counting review states");
	}
	sqlite3_finalize(st);
	return rc;
}

int kiln_catalog_ok_renders_each(struct kiln_catalog *c,
				 int (*fn)(void *user, uint64_t item_id, const char *image,
					   uint64_t seed, const char *recipe,
					   const char *request_json),
				 void *user, struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	int rc, step;
	if ((rc = prepare(c, "SELECT item_id, image, seed, recipe, request FROM renders WHERE "
			     "status = 'ok' AND image IS NOT NULL ORDER BY item_id, id", &st, e)))
		return rc;
	while ((step = sqlite3_step(st)) == SQLITE_ROW)
		if (fn(user, (uint64_t)sqlite3_column_int64(st, 0),
		       (const char *)sqlite3_column_text(st, 1),
		       (uint64_t)sqlite3_column_int64(st, 2),
		       (const char *)sqlite3_column_text(st, 3),
		       (const char *)sqlite3_column_text(st, 4)))
			break;
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		rc = db_error(c, e, "reading renders");
	sqlite3_finalize(st);
	return rc;
}

int kiln_catalog_qa_current_each(struct kiln_catalog *c,
				 int (*fn)(void *user, uint64_t item_id, const char *check,
					   const char *severity, const char *message),
				 void *user, struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	int rc, step;
	if ((rc = prepare(c, "SELECT q.item_id, q.check_id, q.severity, q.message FROM "
			     "qa_findings q JOIN items i ON i.id = q.item_id WHERE q.item_id IS NOT "
			     "NULL AND coalesce(q.origin, 'catalog') = 'catalog' AND (q.image IS "
			     "NULL OR q.image IS i.image) ORDER BY q.item_id, q.id", &st, e)))
		return rc;
	while ((step = sqlite3_step(st)) == SQLITE_ROW)
		if (fn(user, (uint64_t)sqlite3_column_int64(st, 0),
		       (const char *)sqlite3_column_text(st, 1),
		       (const char *)sqlite3_column_text(st, 2),
		       (const char *)sqlite3_column_text(st, 3)))
			break;
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		rc = db_error(c, e, "reading QA findings");
	sqlite3_finalize(st);
	return rc;
}

int kiln_catalog_thumb_get(struct kiln_catalog *c, const char *source, char thumb[65],
			   struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	int rc, step;
	thumb[0] = 0;
	if ((rc = prepare(c, "SELECT thumb FROM thumbs WHERE source = ?", &st, e)))
		return rc;
	sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(st, 0);
		snprintf(thumb, 65, "%s", t ? (const char *)t : "");
	} else if (step != SQLITE_DONE) {
		rc = db_error(c, e, "reading thumbnails");
	}
	sqlite3_finalize(st);
	return rc;
}

int kiln_catalog_thumb_put(struct kiln_catalog *c, const char *source, const char *thumb,
			   struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	int rc;
	if ((rc = writable(c, e)) ||
	    (rc = prepare(c, "INSERT OR REPLACE INTO thumbs(source, thumb) VALUES (?, ?)", &st,
			     e)))
		return rc;
	sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, thumb, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_error(c, e, "recording a thumbnail");
	sqlite3_finalize(st);
	return rc;
}

int kiln_catalog_image_known(struct kiln_catalog *c, const char *sha, int *known,
			     struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	int rc, step;
	*known = 0;
	if ((rc = prepare(c, "SELECT 1 WHERE EXISTS (SELECT 1 FROM items WHERE image = ?1) OR "
			     "EXISTS (SELECT 1 FROM renders WHERE image = ?1 AND status = 'ok') OR "
			     "EXISTS (SELECT 1 FROM thumbs WHERE thumb = ?1)", &st, e)))
		return rc;
	sqlite3_bind_text(st, 1, sha, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW)
		*known = 1;
	else if (step != SQLITE_DONE)
		rc = db_error(c, e, "looking an image up");
	sqlite3_finalize(st);
	return rc;
}

/* --- changes -------------------------------------------------------------------------------- */

int kiln_catalog_review_changes(struct kiln_catalog *c, struct kiln_review_changes *out,
				struct kiln_error *e)
{
	sqlite3_stmt *st = NULL;
	int rc;
	memset(out, 0, sizeof *out);
	/* each a max of an AUTOINCREMENT id (one step down an index): never goes back */
	if ((rc = prepare(c, "SELECT (SELECT coalesce(max(id), 0) FROM review_log), (SELECT "
			     "coalesce(max(id), 0) FROM renders), (SELECT coalesce(max(id), 0) FROM "
			     "events)", &st, e)))
		return rc;
	if (sqlite3_step(st) == SQLITE_ROW) {
		out->log = sqlite3_column_int64(st, 0);
		out->renders = sqlite3_column_int64(st, 1);
		out->events = sqlite3_column_int64(st, 2);
	} else {
		rc = db_error(c, e, "reading the catalog's change counters");
	}
	sqlite3_finalize(st);
	return rc;
}

/* --- checkpoints ---------------------------------------------------------------------------- */

void kiln_catalog_wal_autocheckpoint(struct kiln_catalog *c, int pages)
{
	if (!c->readonly)
		sqlite3_wal_autocheckpoint(c->db, pages);
}

void kiln_catalog_mmap(struct kiln_catalog *c, long long bytes)
{
	char sql[64];
	if (c->readonly && c->db) {
		snprintf(sql, sizeof sql, "PRAGMA mmap_size = %lld", bytes);
		/* without it (a build of SQLite without mmap) the reads go through pread */
		sqlite3_exec(c->db, sql, NULL, NULL, NULL);
	}
}

int kiln_catalog_checkpoint(struct kiln_catalog *c, struct kiln_error *e)
{
	int rc;
	if (c->readonly)
		return 0;
	rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
		return db_error(c, e, "checkpoint");
	return 0;
}
