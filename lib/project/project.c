/* project: opening a project folder, and the plan stage that ties the planner, OpenRarity and
 * the catalog together.
 *
 * Invariants: the catalog's meta "plan_spec_sha" is the SHA-256 of the kiln.yaml the stored
 * plan was made from, saved in the same transaction as the plan; a plan is redone only when it
 * differs (or when forced). Re-planning hands the stored items to the planner so unchanged
 * tokens keep their ids and seeds.
 *
 * One writer per project: opening for writing takes .kiln/lock (flock, exclusive, never
 * waiting) for the project's lifetime and writes the holder's pid, verb and start time into
 * it; a second writer fails at once naming them. The lock file stays (removing it would race
 * with the next locker): its lock, not its existence, is the truth. Readers take no lock and
 * open the catalog read-only, so they work beside a writer and on a read-only folder.
 */
#include "kiln/project.h"
#include "kiln/plan.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/sha.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

/* The holder's record, one line: "PID VERB SINCE". */
static void lock_describe(int fd, char *out, size_t cap, char *pid, size_t pidcap)
{
	char buf[256], verb[64], since[64];
	long holder = 0;
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	buf[n > 0 ? n : 0] = 0;
	pid[0] = 0;
	/* a record left by a holder that was killed names a process that is gone: then the
	 * present holder is some other process that wrote nothing (flock(1), or one starting) */
	if (sscanf(buf, "%ld %63s %63s", &holder, verb, since) == 3 && holder > 0 &&
	    (kill((pid_t)holder, 0) == 0 || errno == EPERM)) {
		snprintf(out, cap, "kiln %s (pid %ld, since %s)", verb, holder, since);
		snprintf(pid, pidcap, "%ld", holder);
	} else {
		snprintf(out, cap, "another process, which has not recorded itself in it");
	}
}

int kiln_project_lock(const char *kiln_dir, const char *verb, int *fd, struct kiln_error *e)
{
	char *path = kiln_fs_join(kiln_dir, "lock"), line[160], since[32], who[256], pid[32];
	time_t now = time(NULL);
	struct tm tm;
	int rc = 0, len;
	*fd = -1;
	if (!path)
		return kiln_error_set(e, KILN_E_NOMEM, kiln_dir, "out of memory");
	if ((rc = kiln_fs_mkdirs(kiln_dir, e)))
		goto out;
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (*fd < 0) {
		rc = kiln_error_set(e, KILN_E_IO, path, "cannot open the project lock: %s",
				    strerror(errno));
		goto out;
	}
	if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK) {
			rc = kiln_error_set(e, KILN_E_IO, path, "cannot lock the project: %s",
					    strerror(errno));
			goto out;
		}
		lock_describe(*fd, who, sizeof who, pid, sizeof pid);
		rc = kiln_error_set(e, KILN_E_STATE, path, "the project is locked by %s: one "
				    "process at a time may change a project", who);
		kiln_error_hint(e, KILN_HINT_LOCKED, pid[0] ? pid : NULL);
		goto out;
	}
	gmtime_r(&now, &tm);
	strftime(since, sizeof since, "%Y-%m-%dT%H:%M:%SZ", &tm);
	len = snprintf(line, sizeof line, "%ld %.64s %s\n", (long)getpid(),
		       verb && *verb ? verb : "kiln", since);
	/* who holds it is information for the next comer, not the lock: a failed write is no
	 * reason to stop */
	if (ftruncate(*fd, 0) == 0 && pwrite(*fd, line, (size_t)len, 0) != len)
		(void)!ftruncate(*fd, 0);
out:
	if (rc && *fd >= 0) {
		close(*fd);
		*fd = -1;
	}
	free(path);
	return rc;
}

void kiln_project_unlock(int fd)
{
	/* the record goes first (still holding the lock), then closing releases the lock */
	if (fd >= 0) {
		(void)!ftruncate(fd, 0);
		close(fd);
	}
}

int kiln_project_open(struct kiln_project **out, const char *dir, enum kiln_open_mode mode,
		      const char *verb, struct kiln_error *e)
{
	struct kiln_project *p = kiln_calloc(1, sizeof *p);
	char *db = NULL, *store = NULL;
	int rc;
	*out = NULL;
	if (!p)
		return kiln_error_set(e, KILN_E_NOMEM, dir, "out of memory");
	p->lock_fd = -1;
	p->readonly = mode == KILN_OPEN_READ;
	if (!(p->dir = kiln_strdup(dir)) || !(p->spec_path = kiln_fs_join(dir, "kiln.yaml")) ||
	    !(p->kiln_dir = kiln_fs_join(dir, ".kiln"))) {
		rc = kiln_error_set(e, KILN_E_NOMEM, dir, "out of memory");
		goto fail;
	}
	if (!kiln_fs_is_dir(dir)) {
		rc = kiln_error_set(e, KILN_E_USAGE, dir, "no such folder");
		kiln_error_hint(e, KILN_HINT_INIT, NULL);
		goto fail;
	}
	if ((rc = kiln_spec_load(&p->spec, p->spec_path, e)))
		goto fail;
	if ((rc = kiln_sha256_file(p->spec_path, p->spec_sha, e)))
		goto fail;
	if (!(db = kiln_fs_join(p->kiln_dir, "catalog.db")) ||
	    !(store = kiln_fs_join(p->kiln_dir, "store"))) {
		rc = kiln_error_set(e, KILN_E_NOMEM, dir, "out of memory");
		goto fail;
	}
	if (p->readonly) {
		if ((rc = kiln_catalog_open_readonly(&p->catalog, db, e)) ||
		    (rc = kiln_store_open_readonly(&p->store, store, e)))
			goto fail;
	} else if ((rc = kiln_project_lock(p->kiln_dir, verb, &p->lock_fd, e)) ||
		   (rc = kiln_catalog_open(&p->catalog, db, e)) ||
		   (rc = kiln_store_open(&p->store, store, e))) {
		goto fail;
	}
	free(db);
	free(store);
	*out = p;
	return 0;
fail:
	free(db);
	free(store);
	kiln_project_free(p);
	return rc;
}

void kiln_project_free(struct kiln_project *p)
{
	if (!p)
		return;
	kiln_store_free(p->store);
	kiln_catalog_free(p->catalog);
	kiln_spec_free(p->spec);
	kiln_project_unlock(p->lock_fd);
	free(p->dir);
	free(p->spec_path);
	free(p->kiln_dir);
	free(p);
}

char *kiln_token_name(const struct kiln_spec *s, uint64_t id)
{
	struct kiln_buf b = KILN_BUF_INIT;
	const char *p = s->name_pattern;
	int rc = 0;
	while (*p && !rc) {
		if (!strncmp(p, "{id}", 4)) {
			rc = kiln_buf_addf(&b, "%llu", (unsigned long long)id);
			p += 4;
		} else if (!strncmp(p, "{name}", 6)) {
			rc = kiln_buf_adds(&b, s->name);
			p += 6;
		} else {
			rc = kiln_buf_add(&b, p, 1);
			p++;
		}
	}
	if (rc) {
		kiln_buf_release(&b);
		return NULL;
	}
	return kiln_buf_detach(&b, NULL);
}

int kiln_project_plan_current(struct kiln_project *p, int *current, struct kiln_error *e)
{
	char *sha = NULL;
	struct kiln_catalog_counts n;
	int rc = kiln_catalog_meta_get(p->catalog, "plan_spec_sha", &sha, e);
	*current = 0;
	if (rc)
		return rc;
	if (sha && !strcmp(sha, p->spec_sha)) {
		rc = kiln_catalog_counts(p->catalog, &n, e);
		*current = !rc && n.items == p->spec->size;
	}
	free(sha);
	return rc;
}

/* OpenRarity over the plan: trait types are the layers, then legendary attribute names. */
static int plan_rarity(const struct kiln_spec *s, const struct kiln_plan *pl, double *scores,
		       uint64_t *ranks, struct kiln_error *e)
{
	const char **types = NULL, **values = NULL;
	size_t ntypes = s->nlayers, cap = s->nlayers;
	struct kiln_rarity_input in = {0};
	int rc = 0;
	for (size_t g = 0; g < s->nlegendaries; g++)
		cap += s->legendaries[g].nattrs;
	types = kiln_calloc(cap + 1, sizeof *types);
	if (!types)
		goto nomem;
	for (size_t l = 0; l < s->nlayers; l++)
		types[l] = s->layers[l].name;
	for (size_t g = 0; g < s->nlegendaries; g++)
		for (size_t a = 0; a < s->legendaries[g].nattrs; a++) {
			const char *t = s->legendaries[g].attrs[a].trait_type;
			size_t k;
			for (k = 0; k < ntypes; k++)
				if (!strcmp(types[k], t))
					break;
			if (k == ntypes)
				types[ntypes++] = t;
		}
	values = kiln_calloc(pl->nitems * ntypes + 1, sizeof *values);
	if (!values)
		goto nomem;
	for (size_t i = 0; i < pl->nitems; i++) {
		const struct kiln_plan_item *it = &pl->items[i];
		const char **row = values + i * ntypes;
		if (it->legendary >= 0) {
			const struct kiln_legendary *g = &s->legendaries[it->legendary];
			for (size_t a = 0; a < g->nattrs; a++)
				for (size_t k = 0; k < ntypes; k++)
					if (!strcmp(types[k], g->attrs[a].trait_type))
						row[k] = g->attrs[a].value;
			continue;
		}
		for (size_t l = 0; l < s->nlayers; l++) {
			uint32_t t = it->traits[l];
			if (t != KILN_PLAN_UNSET && !s->layers[l].traits[t].is_none)
				row[l] = s->layers[l].traits[t].name;
		}
	}
	in.ntokens = pl->nitems;
	in.ntypes = ntypes;
	in.types = types;
	in.values = values;
	rc = kiln_rarity_compute(&in, scores, ranks, e);
	goto out;
nomem:
	rc = kiln_error_set(e, KILN_E_NOMEM, s->path, "out of memory computing rarity");
out:
	free(types);
	free(values);
	return rc;
}

/* The stored plan mapped onto the current spec, for re-planning. */
struct prev_owned {
	struct kiln_plan_prev prev;
	struct kiln_items items;
	uint64_t *ids;
	long *legendary;
};

static int load_prev(struct kiln_project *p, struct prev_owned *po, struct kiln_error *e)
{
	int rc = kiln_catalog_items(p->catalog, p->spec, &po->items, e);
	if (rc)
		return rc;
	po->ids = kiln_calloc(po->items.n + 1, sizeof *po->ids);
	po->legendary = kiln_calloc(po->items.n + 1, sizeof *po->legendary);
	if (!po->ids || !po->legendary)
		return kiln_error_set(e, KILN_E_NOMEM, p->dir, "out of memory");
	for (size_t i = 0; i < po->items.n; i++) {
		po->ids[i] = po->items.v[i].id;
		po->legendary[i] = po->items.v[i].legendary;
	}
	po->prev.nitems = po->items.n;
	po->prev.ids = po->ids;
	po->prev.matrix = po->items.matrix;
	po->prev.legendary = po->legendary;
	return 0;
}

static void prev_release(struct prev_owned *po)
{
	kiln_items_release(&po->items);
	free(po->ids);
	free(po->legendary);
}

int kiln_project_plan(struct kiln_project *p, const struct kiln_project_plan_opts *o,
		      struct kiln_plan_result *r, struct kiln_error *e)
{
	struct prev_owned po;
	char *detail = NULL;
	json_t *d = NULL;
	int current = 0, rc;
	memset(r, 0, sizeof *r);
	memset(&po, 0, sizeof po);
	/* every layer file once, from its header, all bad ones named together (not once per
	 * item at render time); also when the plan is current, since a file may have changed */
	if ((rc = kiln_spec_check_layer_files(p->spec, e)))
		return rc;
	if (!o->force && !o->fresh) {
		if ((rc = kiln_project_plan_current(p, &current, e)))
			return rc;
		if (current) {
			r->items = p->spec->size;
			return 0;
		}
	}
	if (!o->fresh && (rc = load_prev(p, &po, e)))
		goto out;
	struct kiln_plan_opts popt = {o->effort};
	if ((rc = kiln_plan_make_opts(&r->plan, p->spec, o->fresh || !po.items.n ? NULL : &po.prev,
				      &popt, e)))
		goto out;
	r->items = r->plan->nitems;
	r->changed = po.items.n ? r->plan->changed : r->plan->nitems;
	r->scores = kiln_calloc(r->plan->nitems + 1, sizeof *r->scores);
	r->ranks = kiln_calloc(r->plan->nitems + 1, sizeof *r->ranks);
	if (!r->scores || !r->ranks) {
		rc = kiln_error_set(e, KILN_E_NOMEM, p->dir, "out of memory");
		goto out;
	}
	if ((rc = plan_rarity(p->spec, r->plan, r->scores, r->ranks, e)))
		goto out;
	d = json_pack("{s:s, s:I, s:I, s:b}", "spec_sha", p->spec_sha, "items",
		      (json_int_t)r->items, "changed", (json_int_t)r->changed, "fresh", o->fresh);
	detail = d ? json_dumps(d, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	if (!detail) {
		rc = kiln_error_set(e, KILN_E_NOMEM, p->dir, "out of memory");
		goto out;
	}
	if ((rc = kiln_catalog_save_plan(p->catalog, p->spec, r->plan, r->scores, r->ranks,
					 p->spec_sha, detail, e)))
		goto out;
	r->planned = 1;
out:
	json_decref(d);
	free(detail);
	prev_release(&po);
	if (rc)
		kiln_plan_result_release(r);
	return rc;
}

void kiln_plan_result_release(struct kiln_plan_result *r)
{
	kiln_plan_free(r->plan);
	free(r->scores);
	free(r->ranks);
	r->plan = NULL;
	r->scores = NULL;
	r->ranks = NULL;
}

int kiln_project_replace(struct kiln_project *p, uint64_t id, uint64_t *changed, size_t cap,
			 size_t *nchanged, struct kiln_error *e)
{
	struct prev_owned po;
	struct kiln_plan *pl = NULL;
	double *scores = NULL;
	uint64_t *ranks = NULL;
	char detail[128];
	int rc;
	memset(&po, 0, sizeof po);
	*nchanged = 0;
	if ((rc = load_prev(p, &po, e)))
		goto out;
	/* the stored plan as a plan: every item keeps its traits, so nothing changes here */
	if ((rc = kiln_plan_make(&pl, p->spec, &po.prev, e)))
		goto out;
	if ((rc = kiln_plan_replace(pl, p->spec, id, changed, cap, nchanged, e)))
		goto out;
	scores = kiln_calloc(pl->nitems + 1, sizeof *scores);
	ranks = kiln_calloc(pl->nitems + 1, sizeof *ranks);
	if (!scores || !ranks) {
		rc = kiln_error_set(e, KILN_E_NOMEM, p->dir, "out of memory");
		goto out;
	}
	if ((rc = plan_rarity(p->spec, pl, scores, ranks, e)))
		goto out;
	snprintf(detail, sizeof detail, "{\"replace\":%llu,\"changed\":%zu}",
		 (unsigned long long)id, *nchanged);
	rc = kiln_catalog_save_plan(p->catalog, p->spec, pl, scores, ranks, NULL, detail, e);
out:
	free(scores);
	free(ranks);
	kiln_plan_free(pl);
	prev_release(&po);
	return rc;
}
