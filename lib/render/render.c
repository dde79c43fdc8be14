/* render: the render stage for local engines (compose). Decides which items need rendering
 * (recipe changed, not rendered, image missing from the store, or forced), renders them on
 * worker threads, and records every attempt in the catalog.
 *
 * Invariants: a worker writes the image into the content store (atomic rename) *before* the
 * main thread records it, and the main thread commits records in small batches, so after a
 * kill -9 every recorded render has its file, and an item whose render was not recorded is
 * simply rendered again (the store put is idempotent). Only the main thread touches the
 * catalog. Output never depends on the thread count.
 *
 * Sizes: up to ~1,000,000 items; per item a small result slot, the image itself lives only
 * between encode and store put.
 */
#include "render/ai.h"
#include "render/compose.h"
#include "kiln/recipe.h"
#include "kiln/project.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct job {
	size_t item;            /* index into items */
	char recipe[65];
	/* filled by the worker */
	int ok;
	char image[65];
	uint64_t bytes;
	char *error;            /* "where: message" */
	double started, finished;
};

struct run {
	struct kiln_project *p;
	struct kiln_recipe *recipe;
	struct kiln_compose *compose;
	struct kiln_items *items;
	struct job *jobs;
	size_t njobs;
	size_t *done_order;     /* job indexes in completion order (util/pool.h) */
	const struct kiln_render_opts *o;
	struct kiln_render_record *recs;
	uint64_t failed;
	double t0;
};

static char *format_error(const struct kiln_error *e)
{
	size_t n = strlen(e->where) + strlen(e->msg) + 4;
	char *s = kiln_malloc(n);
	if (s)
		snprintf(s, n, "%s%s%s", e->where, e->where[0] ? ": " : "", e->msg);
	return s;
}

static void render_one(struct run *r, struct job *j, struct kiln_buf *buf)
{
	const struct kiln_item *it = &r->items->v[j->item];
	struct kiln_error e;
	int rc;
	kiln_error_clear(&e);
	kiln_buf_reset(buf);
	j->started = kiln_clock_unix();
	if (it->legendary >= 0)
		rc = kiln_compose_legendary(r->compose, (size_t)it->legendary, buf, &e);
	else
		rc = kiln_compose_item(r->compose, it->traits, buf, &e);
	if (!rc)
		rc = kiln_store_put(r->p->store, buf->data, buf->len, j->image, &e);
	j->finished = kiln_clock_unix();
	j->ok = !rc;
	j->bytes = rc ? 0 : buf->len;
	if (rc)
		j->error = format_error(&e);
}

static void run_job(void *user, size_t k, struct kiln_buf *buf)
{
	struct run *r = user;
	render_one(r, &r->jobs[k], buf);
}

static int wanted(const struct kiln_render_opts *o, uint64_t id)
{
	if (!o->ids)
		return 1;
	for (size_t i = 0; i < o->nids; i++)
		if (o->ids[i] == id)
			return 1;
	return 0;
}

static void report(const struct kiln_render_opts *o, const char *event, uint64_t total,
		   uint64_t done, uint64_t failed, const struct kiln_item *it, const struct job *j,
		   double t0)
{
	struct kiln_progress pr;
	if (!o->progress)
		return;
	memset(&pr, 0, sizeof pr);
	pr.stage = "render";
	pr.event = event;
	pr.total = total;
	pr.done = done;
	pr.failed = failed;
	pr.elapsed = kiln_clock_mono() - t0;
	if (it && j) {
		pr.item_id = it->id;
		pr.ok = j->ok;
		pr.error = j->error;
	}
	o->progress(&pr, o->user);
}

/* Record finished jobs [from, to) of done_order in one transaction. */
static int flush(struct run *r, size_t from, size_t to, struct kiln_render_record *recs,
		 struct kiln_error *e)
{
	size_t n = 0;
	for (size_t k = from; k < to; k++) {
		struct job *j = &r->jobs[r->done_order[k]];
		const struct kiln_item *it = &r->items->v[j->item];
		struct kiln_render_record *x = &recs[n++];
		memset(x, 0, sizeof *x);
		x->item_id = it->id;
		x->engine = "compose";
		x->recipe = j->recipe;
		x->seed = it->seed;
		x->ok = j->ok;
		x->image = j->image;
		x->bytes = j->bytes;
		x->error = j->error ? j->error : "out of memory";
		x->started = j->started;
		x->finished = j->finished;
	}
	/* the images of this batch reach the disk before the catalog says they exist */
	if (kiln_store_sync(r->p->store, e))
		return e ? e->code : KILN_E_IO;
	return kiln_catalog_record_renders(r->p->catalog, recs, n, e);
}

static void job_done(void *user, size_t k)
{
	struct run *r = user;
	struct job *j = &r->jobs[r->done_order[k]];
	r->failed += !j->ok;
	report(r->o, "item", r->njobs, k + 1, r->failed, &r->items->v[j->item], j, r->t0);
}

static int job_flush(void *user, size_t from, size_t to, struct kiln_error *e)
{
	struct run *r = user;
	return flush(r, from, to, r->recs, e);
}

#define BATCH 64

int kiln_project_render(struct kiln_project *p, const struct kiln_render_opts *o,
			struct kiln_render_result *res, struct kiln_error *e)
{
	struct kiln_items items;
	struct run r;
	struct kiln_render_record recs[BATCH];
	size_t ndone = 0;
	double t0 = kiln_clock_mono();
	int rc, current;

	memset(res, 0, sizeof *res);
	memset(&r, 0, sizeof r);
	memset(&items, 0, sizeof items);
	if (strcmp(p->spec->engine, "compose"))
		return kiln_project_render_ai(p, o, res, e);
	if ((rc = kiln_project_plan_current(p, &current, e)))
		return rc;
	if (!current) {
		kiln_error_set(e, KILN_E_STATE, p->spec_path, "the plan is missing or older than "
			       "kiln.yaml");
		return kiln_error_hint(e, KILN_HINT_PLAN, NULL);
	}
	if ((rc = kiln_catalog_items(p->catalog, p->spec, &items, e)))
		return rc;
	if ((rc = kiln_recipe_new(&r.recipe, p->spec, 0, e)) ||
	    (rc = kiln_compose_new(&r.compose, p->spec, r.recipe, e)))
		goto out;
	r.p = p;
	r.items = &items;
	r.jobs = kiln_calloc(items.n + 1, sizeof *r.jobs);
	r.done_order = kiln_calloc(items.n + 1, sizeof *r.done_order);
	if (!r.jobs || !r.done_order) {
		rc = kiln_error_set(e, KILN_E_NOMEM, p->dir, "out of memory");
		goto out;
	}
	/* which items need rendering */
	for (size_t i = 0; i < items.n; i++) {
		const struct kiln_item *it = &items.v[i];
		struct job *j = &r.jobs[r.njobs];
		struct kiln_error re;
		int stale, has = 0;
		if (!wanted(o, it->id))
			continue;
		res->items++;
		kiln_error_clear(&re);
		j->item = i;
		stale = kiln_recipe_item(r.recipe, it, 0, j->recipe, &re);
		if (stale == KILN_E_NOMEM) {
			*e = re;
			rc = stale;
			goto out;
		}
		/* an input that cannot be hashed: render anyway, so the failure is recorded */
		if (stale)
			j->recipe[0] = 0;
		if (!o->force && !stale && it->status == KILN_ITEM_RENDERED &&
		    !strcmp(it->recipe, j->recipe) &&
		    (has = kiln_store_has(p->store, it->image)) > 0) {
			res->skipped++;
			continue;
		}
		if (has < 0) {
			rc = kiln_error_set(e, KILN_E_NOMEM, p->dir, "out of memory");
			goto out;
		}
		r.njobs++;
	}
	/* every layer file the jobs use, decoded once now: all bad ones named together */
	if (r.njobs) {
		const uint32_t **tv = kiln_calloc(r.njobs + 1, sizeof *tv);
		if (!tv) {
			rc = kiln_error_set(e, KILN_E_NOMEM, p->dir, "out of memory");
			goto out;
		}
		for (size_t k = 0; k < r.njobs; k++)
			if (items.v[r.jobs[k].item].legendary < 0)
				tv[k] = items.v[r.jobs[k].item].traits;
		rc = kiln_compose_check(r.compose, tv, r.njobs, e);
		free(tv);
		if (rc)
			goto out;
	}
	res->todo = r.njobs;
	report(o, "start", r.njobs, 0, 0, NULL, NULL, t0);
	if (!r.njobs)
		goto done;
	r.o = o;
	r.recs = recs;
	r.t0 = t0;
	rc = kiln_pool_run(&(struct kiln_pool){.njobs = r.njobs, .batch = BATCH,
			   .threads = o->threads, .order = r.done_order, .cancel = o->cancel,
			   .where = p->dir, .user = &r, .run = run_job, .done = job_done,
			   .flush = job_flush}, &ndone, e);
	for (size_t k = 0; k < ndone; k++)
		if (r.jobs[r.done_order[k]].ok)
			res->rendered++;
	res->failed = r.failed;
	if (!rc && o->cancel && *o->cancel && ndone < r.njobs)
		rc = kiln_error_set(e, KILN_E_FAILED, p->dir, "interrupted after %zu of %zu items: "
				    "run the same command again to finish", ndone, r.njobs);
done:
	res->seconds = kiln_clock_mono() - t0;
	report(o, "end", r.njobs, ndone, r.failed, NULL, NULL, t0);
out:
	for (size_t k = 0; r.jobs && k < r.njobs; k++)
		free(r.jobs[k].error);
	free(r.jobs);
	free(r.done_order);
	kiln_compose_free(r.compose);
	kiln_recipe_free(r.recipe);
	kiln_items_release(&items);
	return rc;
}
