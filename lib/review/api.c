/* review/api: the JSON endpoints under /api/ and the images (docs/review-api.md is the
 * contract with the page and with scripts).
 *
 * The server keeps what it shows in memory (struct rv_cache: items, candidates, QA findings,
 * review states), loaded at start; each decision refreshes the entries it touched from the
 * catalog after its transaction; what another kiln writes meanwhile (renders, decisions, QA)
 * is caught up with by GET /api/changes, which the page polls: it compares the catalog's
 * counters with the ones the cache was built at and reloads (a decision records the catalog's
 * image, never the cached one). A listing of 10,000 tokens is then a scan of memory, not of
 * SQLite.
 *
 * Locks (pool.c): GETs read the cache under cache_lock held for reading and the catalog on a
 * read-only connection of the pool; a decision runs its transaction on the writer (write_lock),
 * then, still holding it, takes cache_lock for writing only to swap the new state in, so the
 * cache follows the commits in their order and a reader never waits for a transaction. A
 * reload builds the new cache under write_lock and swaps it under cache_lock: a token is found
 * (find_token) under one of the two and its pointer never kept past them.
 */
#include "review/internal.h"
#include "kiln/recipe.h"
#include "util/alloc.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LIMIT_MAX 10000
#define NOTE_MAX 4096

/* --- the cache ------------------------------------------------------------------------------ */

static struct rv_token *find_in(const struct rv_cache *c, uint64_t id)
{
	size_t at;
	return kiln_items_find(&c->items, id, &at) ? &c->tok[at] : NULL;
}

/* (under cache_lock or write_lock: a reload swaps the cache while holding both) */
static struct rv_token *find_token(struct kiln_review_server *s, uint64_t id)
{
	return find_in(&s->cache, id);
}

struct load {
	struct kiln_review_server *s;
	struct rv_cache *c;         /* the cache being built */
	int nomem;
	int ai;
};

/* The review round that asked for seed (kiln/recipe.h: candidate k of round n asks for the
 * item's seed + n * candidates + k, mod 2^32). */
static unsigned regeneration_of(const struct kiln_review_server *s, const struct kiln_item *it,
				uint64_t seed)
{
	unsigned k = s->p->spec->generate ? s->p->spec->generate->candidates : 1;
	uint64_t off = (seed - (it->seed & 0xffffffffull)) & 0xffffffffull;
	return k ? (unsigned)(off / k) : 0;
}

static int add_render(void *user, uint64_t item_id, const char *image, uint64_t seed,
		      const char *recipe, const char *request_json)
{
	struct load *l = user;
	struct rv_token *t = find_in(l->c, item_id);
	struct rv_cand *v;
	(void)recipe, (void)request_json;
	if (!t || !image || strlen(image) != 64)
		return 0;
	/* compose items and legendaries: the one current image is their only candidate */
	if (!l->ai || t->it->legendary >= 0 || t->it->legendary_name)
		return 0;
	for (size_t i = 0; i < t->ncands; i++)
		if (!strcmp(t->cands[i].image, image))
			return 0;
	if (!(v = kiln_reallocarray(t->cands, t->ncands + 1, sizeof *v))) {
		l->nomem = 1;
		return 1;
	}
	t->cands = v;
	memcpy(v[t->ncands].image, image, 65);
	v[t->ncands].seed = seed;
	v[t->ncands].regeneration = regeneration_of(l->s, t->it, seed);
	t->ncands++;
	return 0;
}

static int add_finding(void *user, uint64_t item_id, const char *check, const char *severity,
		       const char *message)
{
	struct load *l = user;
	struct rv_token *t = find_in(l->c, item_id);
	json_t *o;
	if (!t)
		return 0;
	if (!t->qa && !(t->qa = json_array())) {
		l->nomem = 1;
		return 1;
	}
	o = json_pack("{s:s, s:s, s:s}", "check", check ? check : "", "severity",
		      severity ? severity : "", "message", message ? message : "");
	if (!o || json_array_append_new(t->qa, o)) {
		l->nomem = 1;
		return 1;
	}
	return 0;
}

static _Thread_local uint64_t sort_base;

static int cmp_cand(const void *a, const void *b)
{
	uint64_t x = (((const struct rv_cand *)a)->seed - sort_base) & 0xffffffffull;
	uint64_t y = (((const struct rv_cand *)b)->seed - sort_base) & 0xffffffffull;
	return x < y ? -1 : x > y;
}

/* A compose item (or a legendary, or an AI item whose renders predate the table) shows its
 * current image as its one candidate. */
static int own_candidate(struct rv_token *t)
{
	if (t->ncands || !t->it->image[0])
		return 0;
	if (!(t->cands = kiln_calloc(1, sizeof *t->cands)))
		return -1;
	memcpy(t->cands[0].image, t->it->image, 65);
	t->cands[0].seed = t->it->seed;
	t->ncands = 1;
	return 0;
}

/* Move the states v[0..n) into cache c's tokens (a state of an item c lacks stays in v). */
static void states_into(struct rv_cache *c, struct kiln_review_state *v, size_t n)
{
	for (size_t i = 0; i < c->items.n; i++) {
		struct rv_token *t = &c->tok[i];
		if (t->has_state)
			kiln_review_state_release(&t->st);
		t->has_state = 0;
	}
	for (size_t i = 0; i < n; i++) {
		struct rv_token *t = find_in(c, v[i].item_id);
		if (!t)
			continue;
		t->st = v[i];
		t->has_state = 1;
		memset(&v[i], 0, sizeof v[i]);
	}
}

/* Every item's state from the writer into the cache (the caller holds write_lock, or is
 * alone at start); the cache is locked for writing only while the states are swapped. */
static int load_states(struct kiln_review_server *s, struct kiln_error *e)
{
	struct kiln_review_state *v = NULL;
	size_t n = 0;
	int rc;
	if ((rc = kiln_catalog_review_states(s->p->catalog, &v, &n, e)))
		return rc;
	pthread_rwlock_wrlock(&s->cache_lock);
	states_into(&s->cache, v, n);
	pthread_rwlock_unlock(&s->cache_lock);
	kiln_review_states_free(v, n);
	return 0;
}

static void cache_release(struct rv_cache *c)
{
	for (size_t i = 0; c->tok && i < c->items.n; i++) {
		free(c->tok[i].cands);
		json_decref(c->tok[i].qa);
		if (c->tok[i].has_state)
			kiln_review_state_release(&c->tok[i].st);
	}
	free(c->tok);
	kiln_items_release(&c->items);
	kiln_recipe_free(c->recipe);
	memset(c, 0, sizeof *c);
}

/* A cache of the catalog as it is now, read on the writer (the caller holds write_lock, or
 * is alone at start); c is released on error. */
static int cache_build(struct kiln_review_server *s, struct rv_cache *c, struct kiln_error *e)
{
	struct load l = {s, c, 0, 0};
	struct kiln_review_state *v = NULL;
	size_t n = 0;
	int rc;
	memset(c, 0, sizeof *c);
	l.ai = s->p->spec->engine && strcmp(s->p->spec->engine, "compose");
	if ((rc = kiln_catalog_items(s->p->catalog, s->p->spec, &c->items, e)))
		goto fail;
	if (!(c->tok = kiln_calloc(c->items.n + 1, sizeof *c->tok))) {
		rc = kiln_error_set(e, KILN_E_NOMEM, s->p->dir, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < c->items.n; i++)
		c->tok[i].it = &c->items.v[i];
	if ((rc = kiln_catalog_ok_renders_each(s->p->catalog, add_render, &l, e)) ||
	    (rc = kiln_catalog_qa_current_each(s->p->catalog, add_finding, &l, e)))
		goto fail;
	for (size_t i = 0; !l.nomem && i < c->items.n; i++) {
		struct rv_token *t = &c->tok[i];
		if (own_candidate(t))
			l.nomem = 1;
		/* candidates numbered by round, then by index in the round (servers finish them
		 * in any order): a new round's come after, the numbers of the old ones stay */
		sort_base = t->it->seed & 0xffffffffull;
		if (t->ncands > 1)
			qsort(t->cands, t->ncands, sizeof *t->cands, cmp_cand);
	}
	if (l.nomem) {
		rc = kiln_error_set(e, KILN_E_NOMEM, s->p->dir, "out of memory");
		goto fail;
	}
	if ((rc = kiln_catalog_review_states(s->p->catalog, &v, &n, e)))
		goto fail;
	states_into(c, v, n);
	kiln_review_states_free(v, n);
	if (l.ai && s->p->spec->generate &&
	    (rc = kiln_recipe_new(&c->recipe, s->p->spec, 0, e)))
		goto fail;
	return 0;
fail:
	cache_release(c);
	return rc;
}

int rv_cache_load(struct kiln_review_server *s, struct kiln_error *e)
{
	int rc;
	/* the counters first: a write between them and the load is seen as a change */
	if ((rc = kiln_catalog_review_changes(s->p->catalog, &s->seen, e)))
		return rc;
	return cache_build(s, &s->cache, e);
}

void rv_cache_free(struct kiln_review_server *s)
{
	cache_release(&s->cache);
}

/* After a decision on t: its state and image again from the writer (the caller holds
 * write_lock). Returns with cache_lock held for writing (also on error): the caller answers
 * from the fresh entry, then unlocks. */
static int refresh(struct kiln_review_server *s, struct rv_token *t, struct kiln_error *e)
{
	struct kiln_review_state st;
	struct kiln_items one;
	int found, rc;
	memset(&one, 0, sizeof one);
	if ((rc = kiln_catalog_review_state(s->p->catalog, t->it->id, &st, &found, e))) {
		pthread_rwlock_wrlock(&s->cache_lock);
		return rc;
	}
	if ((rc = kiln_catalog_item(s->p->catalog, s->p->spec, t->it->id, &one, e))) {
		kiln_review_state_release(&st);
		pthread_rwlock_wrlock(&s->cache_lock);
		return rc;
	}
	pthread_rwlock_wrlock(&s->cache_lock);
	if (t->has_state)
		kiln_review_state_release(&t->st);
	t->st = st;
	t->has_state = found;
	if (!found)
		kiln_review_state_release(&st);
	if (one.n)
		memcpy(t->it->image, one.v[0].image, sizeof t->it->image);
	kiln_items_release(&one);
	return 0;
}

/* --- regeneration -------------------------------------------------------------------------- */

/* Why re-rendering cannot change t, or NULL when it can: only a token with an AI part (an AI
 * engine's generated token) is rendered from a seed. A composed token's image is a pure function
 * of its traits (the collection's economic model, which a regeneration keeps), a legendary's is
 * the file the studio supplied. */
static const char *no_regenerate(const struct kiln_review_server *s, const struct rv_token *t)
{
	if (t->it->legendary >= 0 || t->it->legendary_name)
		return "a legendary: its image is the file the studio supplied, so rendering it again "
		       "gives the same image; reject it, or replace its image with an artist's edit";
	if (!s->p->spec->engine || !strcmp(s->p->spec->engine, "compose"))
		return "composed from its layers: its image is a pure function of its traits (the "
		       "economic model, which a regeneration keeps), so rendering it again gives "
		       "the same image; reject it, or replace its image with an artist's edit";
	return NULL;
}

/* 409 {"error", "hint": "artist_edit", "id"} for a regeneration refused */
static enum MHD_Result send_no_regenerate(struct rv_req *r, const struct rv_token *t,
					  const char *why)
{
	char msg[512];
	snprintf(msg, sizeof msg, "token %llu cannot be regenerated: it is %s",
		 (unsigned long long)t->it->id, why);
	return rv_send_json(r->conn, 409, json_pack("{s:s, s:s, s:I}", "error", msg, "hint",
						    kiln_hint_name(KILN_HINT_ARTIST_EDIT), "id",
						    (json_int_t)t->it->id));
}

/* --- views ---------------------------------------------------------------------------------- */

static const char *status_of(const struct rv_token *t)
{
	return t->has_state ? t->st.status : "pending";
}

/* the picked candidate: the state's, else the one holding the item's image (1-based; 0) */
static unsigned picked(const struct rv_token *t)
{
	if (t->has_state && t->st.candidate && t->st.candidate <= t->ncands)
		return t->st.candidate;
	for (size_t i = 0; i < t->ncands; i++)
		if (!strcmp(t->cands[i].image, t->it->image))
			return (unsigned)i + 1;
	return 0;
}

static json_t *reviewers_of(const struct rv_token *t)
{
	json_t *a = t->has_state ? json_loads(t->st.reviewers, 0, NULL) : NULL;
	return a ? a : json_array();
}

static json_t *review_json(const struct rv_token *t)
{
	unsigned k = picked(t);
	return json_pack("{s:s, s:o, s:s?, s:o, s:i, s:b, s:i}", "status", status_of(t),
			 "candidate", k ? json_integer(k) : json_null(),
			 "note", t->has_state ? t->st.note : NULL, "reviewers", reviewers_of(t),
			 "approvals", t->has_state ? (int)t->st.approvals : 0,
			 "conflict", t->has_state && t->st.conflict,
			 "regeneration", t->has_state ? (int)t->st.regeneration : 0);
}

static json_t *qa_checks(const struct rv_token *t)
{
	json_t *a = json_array();
	size_t i;
	json_t *f;
	if (!a || !t->qa)
		return a;
	json_array_foreach((json_t *)t->qa, i, f) {
		json_t *id = json_object_get(f, "check");
		int seen = 0;
		size_t j;
		json_t *g;
		json_array_foreach(a, j, g)
			seen |= json_equal(g, id);
		if (!seen)
			json_array_append(a, id);
	}
	return a;
}

static json_t *token_row(const struct kiln_review_server *s, const struct rv_token *t)
{
	json_t *traits = json_loads(t->it->traits_json, 0, NULL);
	return json_pack("{s:I, s:s, s:o, s:I, s:o, s:o, s:I, s:o, s:b}",
			 "id", (json_int_t)t->it->id, "status", status_of(t),
			 "image", t->it->image[0] ? json_string(t->it->image) : json_null(),
			 "rank", (json_int_t)t->it->rarity_rank,
			 "traits", traits ? traits : json_object(), "qa", qa_checks(t),
			 "candidates", (json_int_t)t->ncands, "reviewers", reviewers_of(t),
			 "regenerate", !no_regenerate(s, t));
}

/* --- filters -------------------------------------------------------------------------------- */

#define TRAITS_MAX 64

struct filter {
	const char *status;
	struct { char layer[128]; char value[128]; } traits[TRAITS_MAX];
	size_t ntraits;
	const char *reviewer;
	const char *qa;             /* "any", "none" or a check id */
	int has_rank_min, has_rank_max;
	uint64_t rank_min, rank_max;
	uint64_t offset, limit;
	char err[256];
};

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	if (!s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno || *end ? -1 : 0;
}

/* one key of a filter (query parameter or JSON member); 0, or -1 with f->err */
static int filter_set(struct filter *f, const char *key, const char *value)
{
	if (!value)
		return snprintf(f->err, sizeof f->err, "%s: a value is needed", key), -1;
	if (!strcmp(key, "status")) {
		if (strcmp(value, "pending") && strcmp(value, "approved") &&
		    strcmp(value, "rejected") && strcmp(value, "regenerate") &&
		    strcmp(value, "conflict"))
			return snprintf(f->err, sizeof f->err, "status is pending, approved, "
					"rejected, regenerate or conflict, not '%.64s'", value), -1;
		f->status = value;
	} else if (!strcmp(key, "trait")) {
		const char *colon = strchr(value, ':');
		if (!colon || colon == value || (size_t)(colon - value) >= 128 ||
		    strlen(colon + 1) >= 128)
			return snprintf(f->err, sizeof f->err, "trait is Layer:Value, not '%.64s'",
					value), -1;
		if (f->ntraits == TRAITS_MAX)
			return snprintf(f->err, sizeof f->err, "at most %d trait filters",
					TRAITS_MAX), -1;
		snprintf(f->traits[f->ntraits].layer, 128, "%.*s", (int)(colon - value), value);
		snprintf(f->traits[f->ntraits].value, 128, "%s", colon + 1);
		f->ntraits++;
	} else if (!strcmp(key, "reviewer")) {
		f->reviewer = value;
	} else if (!strcmp(key, "qa")) {
		f->qa = value;
	} else if (!strcmp(key, "rank_min") || !strcmp(key, "rank_max") ||
		   !strcmp(key, "offset") || !strcmp(key, "limit")) {
		uint64_t v;
		if (parse_u64(value, &v))
			return snprintf(f->err, sizeof f->err, "%s is a whole number, not '%.64s'",
					key, value), -1;
		if (!strcmp(key, "rank_min"))
			f->rank_min = v, f->has_rank_min = 1;
		else if (!strcmp(key, "rank_max"))
			f->rank_max = v, f->has_rank_max = 1;
		else if (!strcmp(key, "offset"))
			f->offset = v;
		else if (v < 1 || v > LIMIT_MAX)
			return snprintf(f->err, sizeof f->err, "limit is 1 to %d", LIMIT_MAX), -1;
		else
			f->limit = v;
	} else {
		return snprintf(f->err, sizeof f->err, "'%.64s' is not a filter (status, trait, "
				"reviewer, qa, rank_min, rank_max, offset, limit)", key), -1;
	}
	return 0;
}

static enum MHD_Result query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
				 const char *value)
{
	struct filter *f = cls;
	(void)kind;
	if (f->err[0])
		return MHD_NO;
	return filter_set(f, key, value) ? MHD_NO : MHD_YES;
}

static void filter_init(struct filter *f)
{
	memset(f, 0, sizeof *f);
	f->limit = 200;
}

/* the filter from a JSON object (bulk): the same keys, trait a string or an array of them */
static int filter_json(struct filter *f, json_t *o)
{
	const char *key;
	json_t *v;
	if (!o || json_is_null(o))
		return 0;
	if (!json_is_object(o))
		return snprintf(f->err, sizeof f->err, "filter is an object"), -1;
	json_object_foreach(o, key, v) {
		char num[32];
		if (json_is_array(v) && !strcmp(key, "trait")) {
			size_t i;
			json_t *x;
			json_array_foreach(v, i, x) {
				if (!json_is_string(x))
					return snprintf(f->err, sizeof f->err, "trait: strings "
							"Layer:Value"), -1;
				if (filter_set(f, key, json_string_value(x)))
					return -1;
			}
			continue;
		}
		if (json_is_integer(v) && json_integer_value(v) >= 0) {
			snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
			if (filter_set(f, key, num))
				return -1;
			continue;
		}
		if (!json_is_string(v))
			return snprintf(f->err, sizeof f->err, "filter %.64s: a string or a number",
					key), -1;
		if (filter_set(f, key, json_string_value(v)))
			return -1;
	}
	return 0;
}

static int matches(const struct filter *f, const struct rv_token *t)
{
	if (f->status) {
		if (!strcmp(f->status, "conflict")) {
			if (!t->has_state || !t->st.conflict)
				return 0;
		} else if (strcmp(f->status, status_of(t))) {
			return 0;
		}
	}
	if (f->has_rank_min && t->it->rarity_rank < f->rank_min)
		return 0;
	if (f->has_rank_max && t->it->rarity_rank > f->rank_max)
		return 0;
	if (f->reviewer) {
		json_t *a = reviewers_of(t), *x;
		size_t i;
		int hit = 0;
		json_array_foreach(a, i, x)
			hit |= !strcmp(json_string_value(x), f->reviewer);
		json_decref(a);
		if (!hit)
			return 0;
	}
	if (f->qa) {
		size_t n = t->qa ? json_array_size(t->qa) : 0;
		if (!strcmp(f->qa, "any")) {
			if (!n)
				return 0;
		} else if (!strcmp(f->qa, "none")) {
			if (n)
				return 0;
		} else {
			int hit = 0;
			for (size_t i = 0; i < n; i++)
				hit |= !strcmp(json_string_value(json_object_get(
					json_array_get(t->qa, i), "check")), f->qa);
			if (!hit)
				return 0;
		}
	}
	if (f->ntraits) {
		/* AND across layers, OR within a layer */
		json_t *traits = json_loads(t->it->traits_json, 0, NULL);
		int ok = 1;
		for (size_t i = 0; ok && i < f->ntraits; i++) {
			int seen_before = 0, hit = 0;
			for (size_t j = 0; j < i; j++)
				seen_before |= !strcmp(f->traits[j].layer, f->traits[i].layer);
			if (seen_before)
				continue;
			for (size_t j = i; j < f->ntraits; j++) {
				const char *have;
				if (strcmp(f->traits[j].layer, f->traits[i].layer))
					continue;
				have = json_string_value(json_object_get(traits,
									f->traits[j].layer));
				hit |= have && !strcmp(have, f->traits[j].value);
			}
			ok = hit;
		}
		json_decref(traits);
		if (!ok)
			return 0;
	}
	return 1;
}

/* --- endpoints ------------------------------------------------------------------------------ */

static enum MHD_Result session(struct rv_req *r)
{
	const struct kiln_spec *sp = r->srv->p->spec;
	return rv_send_json(r->conn, 200, json_pack("{s:s, s:s, s:s?, s:I, s:b, s:I}",
		"project", sp->name ? sp->name : "", "reviewer", r->reviewer, "csrf", r->csrf,
		"total", (json_int_t)r->srv->cache.items.n, "review_required",
		sp->review_required, "approvals",
		(json_int_t)(sp->review_approvals ? sp->review_approvals : 1)));
}

static enum MHD_Result tokens(struct rv_req *r)
{
	struct kiln_review_server *s = r->srv;
	struct filter f;
	json_t *list = json_array(), *o;
	uint64_t total = 0;
	filter_init(&f);
	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, query_arg, &f);
	if (f.err[0]) {
		json_decref(list);
		return rv_send_error(r->conn, 400, "%s", f.err);
	}
	for (size_t i = 0; list && i < s->cache.items.n; i++) {
		const struct rv_token *t = &s->cache.tok[i];
		if (!matches(&f, t))
			continue;
		if (total >= f.offset && total - f.offset < f.limit &&
		    json_array_append_new(list, token_row(s, t))) {
			json_decref(list);
			list = NULL;
		}
		total++;
	}
	o = list ? json_pack("{s:I, s:I, s:o}", "total", (json_int_t)total, "offset",
			     (json_int_t)f.offset, "tokens", list) : NULL;
	return rv_send_json(r->conn, 200, o);
}

static json_t *ai_json(struct kiln_review_server *s, const struct rv_token *t, unsigned k)
{
	struct kiln_ai_request rq;
	struct kiln_error e;
	json_t *loras, *o;
	int rc;
	if (!s->cache.recipe || t->it->legendary >= 0 || t->it->legendary_name)
		return json_null();
	/* the candidate's own request: its round's seed (the notes added are today's) */
	{
		struct kiln_item one = *t->it;
		unsigned per = s->p->spec->generate ? s->p->spec->generate->candidates : 1;
		unsigned c = 0;
		if (k && k <= t->ncands && per) {
			uint64_t off = (t->cands[k - 1].seed - (one.seed & 0xffffffffull)) &
				       0xffffffffull;
			one.regeneration = (unsigned)(off / per);
			one.seed_round = one.regeneration;
			c = (unsigned)(off % per);
		}
		/* the notes that round's request had */
		if (kiln_catalog_prompt_add(t->it->prompt_adds, one.regeneration, &one.prompt_add))
			return json_null();
		kiln_error_clear(&e);
		rc = kiln_recipe_ai_request(s->cache.recipe, &one, c, &rq, &e);
		free(one.prompt_add);
		if (rc)
			return json_null();
	}
	loras = json_array();
	for (size_t i = 0; loras && i < rq.nloras; i++)
		json_array_append_new(loras, json_pack("{s:s, s:f}", "name", rq.loras[i].name,
						       "weight", rq.loras[i].weight));
	o = json_pack("{s:s?, s:s?, s:I, s:s?, s:s?, s:i, s:f, s:s?, s:o, s:i, s:i}",
		      "prompt", rq.prompt, "negative", rq.negative, "seed",
		      (json_int_t)(k && k <= t->ncands ? t->cands[k - 1].seed : rq.seed),
		      "sampler", rq.sampler, "scheduler", rq.scheduler, "steps", rq.steps,
		      "cfg", rq.cfg, "checkpoint", rq.checkpoint,
		      "loras", loras ? loras : json_array(), "width", rq.width, "height",
		      rq.height);
	kiln_recipe_ai_release(&rq);
	return o ? o : json_null();
}

static enum MHD_Result token_detail(struct rv_req *r, uint64_t id)
{
	struct kiln_review_server *s = r->srv;
	struct kiln_error e;
	struct filter f;
	json_t *traits = json_array(), *cands = json_array(), *decisions = NULL, *o;
	const struct kiln_spec *sp = s->p->spec;
	char *log = NULL;
	unsigned k;
	long prev = -1, next = -1;
	size_t at;
	struct rv_token *t;
	filter_init(&f);
	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, query_arg, &f);
	if (f.err[0]) {
		json_decref(traits);
		json_decref(cands);
		return rv_send_error(r->conn, 400, "%s", f.err);
	}
	pthread_rwlock_rdlock(&s->cache_lock);
	if (!(t = find_token(s, id))) {
		pthread_rwlock_unlock(&s->cache_lock);
		json_decref(traits);
		json_decref(cands);
		return rv_send_error(r->conn, 404, "token %llu is not in the catalog",
				     (unsigned long long)id);
	}
	at = (size_t)(t - s->cache.tok);
	k = picked(t);
	/* neighbours within the filter given (none: all tokens) */
	for (size_t i = at; i-- > 0;)
		if (matches(&f, &s->cache.tok[i])) {
			prev = (long)i;
			break;
		}
	for (size_t i = at + 1; i < s->cache.items.n; i++)
		if (matches(&f, &s->cache.tok[i])) {
			next = (long)i;
			break;
		}
	for (size_t l = 0; traits && l < sp->nlayers; l++) {
		uint32_t v = t->it->traits ? t->it->traits[l] : KILN_PLAN_UNSET;
		json_array_append_new(traits, json_pack("{s:s, s:s}", "layer", sp->layers[l].name,
			"value", v < sp->layers[l].ntraits ? sp->layers[l].traits[v].name : ""));
	}
	for (size_t i = 0; cands && i < t->ncands; i++)
		json_array_append_new(cands, json_pack("{s:I, s:s, s:I, s:b, s:i}", "k",
			(json_int_t)i + 1, "image", t->cands[i].image, "seed",
			(json_int_t)t->cands[i].seed, "picked", k == i + 1, "regeneration",
			(int)t->cands[i].regeneration));
	o = json_pack("{s:I, s:s, s:o, s:I, s:f, s:I, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, "
		      "s:o, s:o}",
		      "id", (json_int_t)t->it->id,
		      "kind", t->it->legendary_name ? "legendary" : "generated",
		      "traits", traits ? traits : json_array(),
		      "rank", (json_int_t)t->it->rarity_rank, "score", t->it->rarity_score,
		      "seed", (json_int_t)t->it->seed, "status", status_of(t),
		      "image", t->it->image[0] ? json_string(t->it->image) : json_null(),
		      "candidates", cands ? cands : json_array(),
		      "qa", t->qa ? json_deep_copy(t->qa) : json_array(),
		      "ai", ai_json(s, t, k), "review", review_json(t),
		      "decisions", json_array(),
		      "prev", prev >= 0 ? json_integer((json_int_t)s->cache.tok[prev].it->id)
					: json_null(),
		      "next", next >= 0 ? json_integer((json_int_t)s->cache.tok[next].it->id)
					: json_null(),
		      "no_regenerate", no_regenerate(s, t) ? json_string(no_regenerate(s, t))
							   : json_null());
	pthread_rwlock_unlock(&s->cache_lock);
	/* the decisions from a read-only connection, the cache free again */
	kiln_error_clear(&e);
	{
		struct rv_reader *h;
		struct kiln_catalog *c = rv_read_begin(s, &h);
		int rc = kiln_catalog_review_log_json(c, 1, id, &log, &e);
		rv_read_end(h);
		if (rc) {
			json_decref(o);
			return rv_send_error(r->conn, 500, "%s", e.msg);
		}
	}
	decisions = json_loads(log, 0, NULL);
	free(log);
	if (o && decisions)
		json_object_set_new(o, "decisions", decisions);
	else
		json_decref(decisions);
	/* the brush's requests the polish stage has not run yet */
	{
		json_t *pend = rv_inpaint_list(s, id, &e);
		if (!pend) {
			json_decref(o);
			return rv_send_error(r->conn, 500, "%s", e.msg);
		}
		if (o)
			json_object_set_new(o, "inpaint", pend);
		else
			json_decref(pend);
	}
	return rv_send_json(r->conn, 200, o);
}

/* the body as a JSON object, or an answer (400) already sent: *res */
static json_t *body_object(struct rv_req *r, enum MHD_Result *res)
{
	json_error_t je;
	json_t *o = json_loadb(r->body, r->body_len, 0, &je);
	if (!o || !json_is_object(o)) {
		json_decref(o);
		*res = rv_send_error(r->conn, 400, "the body is not a JSON object%s%s",
				     o ? "" : ": ", o ? "" : je.text);
		return NULL;
	}
	return o;
}

static const char *const actions[] = {"approve", "reject", "pending", "regenerate", "pick",
				      "note"};

static int known_action(const char *a)
{
	for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
		if (a && !strcmp(a, actions[i]))
			return 1;
	return 0;
}

/* note and prompt_add of body o; -1 with err */
static int note_of(json_t *o, const char **note, int *prompt_add, char *err, size_t cap)
{
	json_t *n = json_object_get(o, "note"), *p = json_object_get(o, "prompt_add");
	*note = NULL;
	*prompt_add = 0;
	if (n && !json_is_null(n)) {
		if (!json_is_string(n))
			return snprintf(err, cap, "note is a string"), -1;
		if (json_string_length(n) > NOTE_MAX)
			return snprintf(err, cap, "a note has at most %d bytes", NOTE_MAX), -1;
		*note = json_string_value(n);
	}
	if (p && !json_is_null(p)) {
		if (!json_is_boolean(p))
			return snprintf(err, cap, "prompt_add is true or false"), -1;
		*prompt_add = json_is_true(p);
	}
	return 0;
}

/* A decision's body checked against token t (under write_lock: t stays); 0, or an answer sent
 * in *res. */
static int decision_check(struct rv_req *r, struct rv_token *t, json_t *o,
			  struct kiln_review_decision *d, enum MHD_Result *res)
{
	struct kiln_review_server *s = r->srv;
	json_t *k = json_object_get(o, "candidate");
	d->item_id = t->it->id;
	if (!strcmp(d->action, "pick")) {
		if (!json_is_integer(k) || json_integer_value(k) < 1 ||
		    (size_t)json_integer_value(k) > t->ncands) {
			*res = rv_send_error(r->conn, 400, "pick needs candidate 1 to %zu (token "
					     "%llu has %zu)", t->ncands,
					     (unsigned long long)t->it->id, t->ncands);
			return -1;
		}
		d->candidate = (unsigned)json_integer_value(k);
		d->image = t->cands[d->candidate - 1].image;
	}
	if (!strcmp(d->action, "regenerate") && no_regenerate(s, t)) {
		*res = send_no_regenerate(r, t, no_regenerate(s, t));
		return -1;
	}
	return 0;
}

static int catch_up(struct kiln_review_server *s, const struct kiln_review_changes *now,
		    struct kiln_error *e);

/* Under the writer's lock, after a decision found a token of the cache gone from the catalog
 * (a new plan removed it while the server ran): the cache is brought up to the catalog now,
 * so the grid and the loupe stop showing it, and 409 says nothing was recorded. */
static enum MHD_Result replanned(struct rv_req *r, const char *what)
{
	struct kiln_review_server *s = r->srv;
	struct kiln_review_changes now;
	struct kiln_error e;
	kiln_error_clear(&e);
	if (!kiln_catalog_review_changes(s->p->catalog, &now, &e))
		catch_up(s, &now, &e);
	rv_write_end(s);
	return rv_send_json(r->conn, 409, json_pack("{s:s, s:s}", "error", what, "hint",
						     "replanned"));
}

static enum MHD_Result decision(struct rv_req *r, uint64_t id)
{
	struct kiln_review_server *s = r->srv;
	struct kiln_review_decision d;
	struct kiln_error e;
	struct rv_token *t;
	enum MHD_Result res;
	json_t *o = body_object(r, &res), *a, *k;
	int64_t first, group;
	char err[128];
	int rc;
	if (!o)
		return res;
	memset(&d, 0, sizeof d);
	a = json_object_get(o, "action");
	if (!json_is_string(a) || !known_action(json_string_value(a))) {
		json_decref(o);
		return rv_send_error(r->conn, 400, "action is approve, reject, pending, regenerate, "
				     "pick or note");
	}
	d.action = json_string_value(a);
	if (note_of(o, &d.note, &d.prompt_add, err, sizeof err)) {
		json_decref(o);
		return rv_send_error(r->conn, 400, "%s", err);
	}
	/* a note on its own: the status and the votes stay */
	if (!strcmp(d.action, "note") && (!d.note || !*d.note)) {
		json_decref(o);
		return rv_send_error(r->conn, 400, "action note needs a note (a non-empty string)");
	}
	k = json_object_get(o, "candidate");
	if (strcmp(d.action, "pick") && k && !json_is_null(k)) {
		json_decref(o);
		return rv_send_error(r->conn, 400, "candidate goes with action pick only");
	}
	/* "seed": "same": the next render keeps the seeds and adds the note to the prompt */
	{
		json_t *sd = json_object_get(o, "seed");
		const char *v = json_string_value(sd);
		if (sd && !json_is_null(sd) && (!v || (strcmp(v, "same") && strcmp(v, "new")))) {
			json_decref(o);
			return rv_send_error(r->conn, 400, "seed is \"same\" or \"new\"");
		}
		if (v && !strcmp(v, "same")) {
			if (strcmp(d.action, "regenerate")) {
				json_decref(o);
				return rv_send_error(r->conn, 400, "seed goes with action regenerate "
						     "only");
			}
			if (!d.note || !*d.note) {
				json_decref(o);
				return rv_send_error(r->conn, 400, "the same seed needs a note to add "
						     "to the prompt (else the image would not change)");
			}
			d.same_seed = 1;
			d.prompt_add = 1;
		}
	}
	kiln_error_clear(&e);
	/* the token under the writer's lock: a reload of the cache waits for it */
	rv_write_begin(s);
	if (!(t = find_token(s, id))) {
		rv_write_end(s);
		json_decref(o);
		return rv_send_error(r->conn, 404, "token %llu is not in the catalog",
				     (unsigned long long)id);
	}
	if (decision_check(r, t, o, &d, &res)) {
		rv_write_end(s);
		json_decref(o);
		return res;
	}
	if ((rc = kiln_catalog_review_decide(s->p->catalog, r->reviewer, &d, 1, 0, &first,
					     &group, &e))) {
		json_decref(o);
		if (rc == KILN_E_STATE) {
			char msg[160];
			snprintf(msg, sizeof msg, "token %llu is no longer in the catalog (a new "
				 "plan removed it): nothing was recorded", (unsigned long long)id);
			return replanned(r, msg);
		}
		rv_write_end(s);
		return rv_send_error(r->conn, 500, "token %llu: %s", (unsigned long long)id,
				     e.msg);
	}
	json_decref(o);
	/* the cache follows its own row: no reload for it (another writer's row between would
	 * leave the counter behind, and the next /api/changes reloads) */
	if (s->seen.log == first - 1)
		s->seen.log = first;
	if (refresh(s, t, &e)) {
		pthread_rwlock_unlock(&s->cache_lock);
		rv_write_end(s);
		return rv_send_error(r->conn, 500, "token %llu: %s", (unsigned long long)id,
				     e.msg);
	}
	o = json_pack("{s:I, s:o}", "decision", (json_int_t)first, "review", review_json(t));
	pthread_rwlock_unlock(&s->cache_lock);
	rv_write_end(s);
	return rv_send_json(r->conn, 200, o);
}

static enum MHD_Result bulk(struct rv_req *r)
{
	struct kiln_review_server *s = r->srv;
	struct kiln_review_decision *d = NULL;
	struct kiln_error e;
	struct filter f;
	enum MHD_Result res;
	json_t *o = body_object(r, &res), *a;
	const char *note;
	int prompt_add, rc;
	size_t n = 0, skipped = 0;
	int64_t first = 0, group = 0;
	char err[128];
	if (!o)
		return res;
	filter_init(&f);
	a = json_object_get(o, "action");
	if (!json_is_string(a) || !known_action(json_string_value(a)) ||
	    !strcmp(json_string_value(a), "pick")) {
		json_decref(o);
		return rv_send_error(r->conn, 400, "a bulk action is approve, reject, pending, "
				     "regenerate or note");
	}
	if (filter_json(&f, json_object_get(o, "filter")) ||
	    note_of(o, &note, &prompt_add, err, sizeof err)) {
		json_decref(o);
		return rv_send_error(r->conn, 400, "%s", f.err[0] ? f.err : err);
	}
	if (!strcmp(json_string_value(a), "note") && (!note || !*note)) {
		json_decref(o);
		return rv_send_error(r->conn, 400, "action note needs a note (a non-empty string)");
	}
	if (!(d = kiln_calloc(s->cache.items.n + 1, sizeof *d))) {
		json_decref(o);
		return rv_send_error(r->conn, 500, "out of memory");
	}
	/* every token the filter matches (offset and limit do not apply to a bulk decision) */
	rv_write_begin(s);
	pthread_rwlock_rdlock(&s->cache_lock);
	for (size_t i = 0; i < s->cache.items.n; i++) {
		if (!matches(&f, &s->cache.tok[i]))
			continue;
		/* tokens re-rendering cannot change are left as they are, and counted */
		if (!strcmp(json_string_value(a), "regenerate") &&
		    no_regenerate(s, &s->cache.tok[i])) {
			skipped++;
			continue;
		}
		d[n].item_id = s->cache.tok[i].it->id;
		d[n].action = json_string_value(a);
		d[n].note = note;
		d[n].prompt_add = prompt_add;
		n++;
	}
	pthread_rwlock_unlock(&s->cache_lock);
	kiln_error_clear(&e);
	rc = n ? kiln_catalog_review_decide(s->p->catalog, r->reviewer, d, n, 1, &first, &group,
					    &e) : 0;
	if (rc == KILN_E_STATE) {
		free(d);
		json_decref(o);
		return replanned(r, "a token the filter matched is no longer in the catalog (a "
				 "new plan removed it): nothing was recorded; the tokens shown are "
				 "the catalog's now, decide again");
	}
	rc = rc || (n && load_states(s, &e));
	rv_write_end(s);
	if (rc) {
		free(d);
		json_decref(o);
		return rv_send_error(r->conn, 500, "bulk decision: %s", e.msg);
	}
	free(d);
	json_decref(o);
	return rv_send_json(r->conn, 200, json_pack("{s:o, s:I, s:I, s:s?}", "group",
		group ? json_integer(group) : json_null(), "decided", (json_int_t)n, "skipped",
		(json_int_t)skipped, "skipped_why", skipped ? "rendering them again gives the same "
		"images (composed from their traits, or legendaries): reject them, or replace their "
		"images with an artist's edit" : NULL));
}

static enum MHD_Result undo(struct rv_req *r)
{
	struct kiln_review_server *s = r->srv;
	struct kiln_error e;
	enum MHD_Result res;
	json_t *o = body_object(r, &res), *ids;
	int64_t *v = NULL;
	size_t n = 0;
	if (!o)
		return res;
	json_decref(o);
	kiln_error_clear(&e);
	rv_write_begin(s);
	if (kiln_catalog_review_undo(s->p->catalog, r->reviewer, &v, &n, &e) ||
	    load_states(s, &e)) {
		rv_write_end(s);
		return rv_send_error(r->conn, 500, "undo: %s", e.msg);
	}
	/* an undone pick gives an item its earlier image back */
	pthread_rwlock_wrlock(&s->cache_lock);
	for (size_t i = 0; i < s->cache.items.n; i++) {
		struct kiln_items one;
		struct rv_token *t = &s->cache.tok[i];
		if (t->ncands < 2)
			continue;
		if (kiln_catalog_item(s->p->catalog, s->p->spec, t->it->id, &one, &e))
			break;
		if (one.n)
			memcpy(t->it->image, one.v[0].image, sizeof t->it->image);
		kiln_items_release(&one);
	}
	pthread_rwlock_unlock(&s->cache_lock);
	rv_write_end(s);
	ids = json_array();
	for (size_t i = 0; ids && i < n; i++)
		json_array_append_new(ids, json_integer(v[i]));
	free(v);
	return rv_send_json(r->conn, 200, ids ? json_pack("{s:o}", "undone", ids) : NULL);
}

static enum MHD_Result rarity(struct rv_req *r)
{
	struct kiln_review_server *s = r->srv;
	const struct kiln_spec *sp = s->p->spec;
	json_t *layers = json_array();
	for (size_t l = 0; layers && l < sp->nlayers; l++) {
		size_t nt = sp->layers[l].ntraits;
		uint64_t *cnt = kiln_calloc(nt * 5 + 1, sizeof *cnt);
		json_t *values = json_array();
		if (!cnt || !values) {
			free(cnt);
			json_decref(values);
			json_decref(layers);
			layers = NULL;
			break;
		}
		for (size_t i = 0; i < s->cache.items.n; i++) {
			const struct rv_token *t = &s->cache.tok[i];
			uint32_t v = t->it->traits ? t->it->traits[l] : KILN_PLAN_UNSET;
			const char *st = status_of(t);
			if (v >= nt)
				continue;
			cnt[v * 5]++;
			cnt[v * 5 + (!strcmp(st, "approved") ? 1 : !strcmp(st, "rejected") ? 2 :
				     !strcmp(st, "regenerate") ? 4 : 3)]++;
		}
		for (size_t v = 0; v < nt; v++)
			json_array_append_new(values, json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}",
				"value", sp->layers[l].traits[v].name,
				"planned", (json_int_t)cnt[v * 5],
				"approved", (json_int_t)cnt[v * 5 + 1],
				"rejected", (json_int_t)cnt[v * 5 + 2],
				"pending", (json_int_t)cnt[v * 5 + 3],
				"regenerate", (json_int_t)cnt[v * 5 + 4]));
		free(cnt);
		json_array_append_new(layers, json_pack("{s:s, s:o}", "layer", sp->layers[l].name,
							"values", values));
	}
	return rv_send_json(r->conn, 200, layers ? json_pack("{s:o}", "layers", layers) : NULL);
}

static enum MHD_Result conflicts(struct rv_req *r)
{
	struct kiln_review_server *s = r->srv;
	json_t *list = json_array();
	struct rv_reader *h;
	struct kiln_catalog *c = rv_read_begin(s, &h);
	pthread_rwlock_rdlock(&s->cache_lock);
	for (size_t i = 0; list && i < s->cache.items.n; i++) {
		const struct rv_token *t = &s->cache.tok[i];
		struct kiln_error e;
		char *log = NULL;
		json_t *d;
		if (!t->has_state || !t->st.conflict)
			continue;
		kiln_error_clear(&e);
		if (kiln_catalog_review_log_json(c, 1, t->it->id, &log, &e)) {
			pthread_rwlock_unlock(&s->cache_lock);
			rv_read_end(h);
			json_decref(list);
			return rv_send_error(r->conn, 500, "%s", e.msg);
		}
		d = json_loads(log, 0, NULL);
		free(log);
		json_array_append_new(list, json_pack("{s:I, s:o, s:o}", "id",
			(json_int_t)t->it->id, "review", review_json(t), "decisions",
			d ? d : json_array()));
	}
	pthread_rwlock_unlock(&s->cache_lock);
	rv_read_end(h);
	return rv_send_json(r->conn, 200, list ? json_pack("{s:o}", "tokens", list) : NULL);
}

/* --- changes -------------------------------------------------------------------------------- */

/* Bring the cache up to the catalog when another kiln wrote to it (under write_lock): new
 * renders, plans or QA runs reload it whole (built beside the old one, swapped in under
 * cache_lock); new log rows alone (another server's decisions, a render's resets) reload the
 * states. */
static int catch_up(struct kiln_review_server *s, const struct kiln_review_changes *now,
		    struct kiln_error *e)
{
	int rc = 0;
	if (now->renders != s->seen.renders || now->events != s->seen.events) {
		struct rv_cache fresh, old;
		if ((rc = cache_build(s, &fresh, e)))
			return rc;
		pthread_rwlock_wrlock(&s->cache_lock);
		old = s->cache;
		s->cache = fresh;
		pthread_rwlock_unlock(&s->cache_lock);
		cache_release(&old);
	} else if (now->log != s->seen.log) {
		rc = load_states(s, e);
	}
	if (!rc)
		s->seen = *now;
	return rc;
}

/* GET /api/changes?since=V: {"version": V', "changed": V' != V}; V' grows with every write
 * to the catalog that the page shows (a decision, a render, a plan, a QA run), whoever made
 * it: the page polls it and refetches what it shows when it moved. */
static enum MHD_Result changes(struct rv_req *r)
{
	struct kiln_review_server *s = r->srv;
	struct kiln_review_changes now;
	struct kiln_error e;
	struct rv_reader *h;
	struct kiln_catalog *c;
	const char *since = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "since");
	uint64_t want = 0;
	int rc, moved;
	if (since && parse_u64(since, &want))
		return rv_send_error(r->conn, 400, "since is a version number from /api/changes");
	kiln_error_clear(&e);
	c = rv_read_begin(s, &h);
	rc = kiln_catalog_review_changes(c, &now, &e);
	rv_read_end(h);
	if (rc)
		return rv_send_error(r->conn, 500, "%s", e.msg);
	/* the counters the cache is up to are the writer's (a decision's transaction holds it
	 * for a few milliseconds); a reload only when they moved */
	pthread_mutex_lock(&s->write_lock);
	moved = memcmp(&now, &s->seen, sizeof now) != 0;
	if (moved) {
		/* again on the writer: the freshest counters, read under the lock */
		if (!(rc = kiln_catalog_review_changes(s->p->catalog, &now, &e)))
			rc = catch_up(s, &now, &e);
	}
	pthread_mutex_unlock(&s->write_lock);
	if (rc)
		return rv_send_error(r->conn, 500, "catching up with the catalog: %s", e.msg);
	{
		json_int_t v = (json_int_t)(now.log + now.renders + now.events);
		return rv_send_json(r->conn, 200, json_pack("{s:I, s:b}", "version", v, "changed",
							     !since || (uint64_t)v != want));
	}
}

/* an endpoint that only reads the cache, under cache_lock for reading */
static enum MHD_Result locked_read(struct rv_req *r, enum MHD_Result (*f)(struct rv_req *))
{
	enum MHD_Result res;
	pthread_rwlock_rdlock(&r->srv->cache_lock);
	res = f(r);
	pthread_rwlock_unlock(&r->srv->cache_lock);
	return res;
}

/* "/api/tokens/123" or "/api/tokens/123/decision": the id, the rest in *tail */
static int token_path(const char *p, uint64_t *id, const char **tail)
{
	char num[24];
	size_t n = strcspn(p, "/");
	if (!n || n >= sizeof num)
		return -1;
	memcpy(num, p, n);
	num[n] = 0;
	if (parse_u64(num, id))
		return -1;
	*tail = p + n;
	return 0;
}

enum MHD_Result rv_api(struct rv_req *r)
{
	int get = strcmp(r->method, "POST") != 0;
	enum MHD_Result res;
	const char *p = r->path, *tail;
	const char *want = NULL;   /* the method the path takes, when it is not this one */
	uint64_t id;
	if (!strcmp(p, "/api/session"))
		res = get ? locked_read(r, session) : (want = "GET", MHD_NO);
	else if (!strcmp(p, "/api/tokens"))
		res = get ? locked_read(r, tokens) : (want = "GET", MHD_NO);
	else if (!strcmp(p, "/api/bulk"))
		res = !get ? bulk(r) : (want = "POST", MHD_NO);
	else if (!strcmp(p, "/api/undo"))
		res = !get ? undo(r) : (want = "POST", MHD_NO);
	else if (!strcmp(p, "/api/rarity"))
		res = get ? locked_read(r, rarity) : (want = "GET", MHD_NO);
	else if (!strcmp(p, "/api/conflicts"))
		res = get ? conflicts(r) : (want = "GET", MHD_NO);
	else if (!strcmp(p, "/api/changes"))
		res = get ? changes(r) : (want = "GET", MHD_NO);
	else if (!strncmp(p, "/api/tokens/", 12) && !token_path(p + 12, &id, &tail) &&
		 !strcmp(tail, "/inpaint"))
		res = !get ? rv_inpaint(r, id) : (want = "POST", MHD_NO);
	else if (!strncmp(p, "/api/tokens/", 12) && !token_path(p + 12, &id, &tail) &&
		 (!*tail || !strcmp(tail, "/decision"))) {
		int dec = *tail != 0;
		if (dec == get)
			res = (want = dec ? "POST" : "GET", MHD_NO);
		else
			res = dec ? decision(r, id) : token_detail(r, id);
	} else {
		res = rv_send_error(r->conn, 404, "%s: no such endpoint", p);
	}
	if (want)
		return rv_send_error(r->conn, 405, "%s takes %s", p, want);
	return res;
}

/* --- images --------------------------------------------------------------------------------- */

static int is_sha(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (!isxdigit((unsigned char)s[n]) || isupper((unsigned char)s[n]))
			return 0;
	return n == 64;
}

/* 1 when sha is an image the cache shows (an item's or a candidate's) */
static int known_image(struct kiln_review_server *s, const char *sha)
{
	for (size_t i = 0; i < s->cache.items.n; i++) {
		const struct rv_token *t = &s->cache.tok[i];
		if (!strcmp(t->it->image, sha))
			return 1;
		for (size_t k = 0; k < t->ncands; k++)
			if (!strcmp(t->cands[k].image, sha))
				return 1;
	}
	return 0;
}

static const char *sniff(const unsigned char *b, size_t n)
{
	if (n >= 8 && !memcmp(b, "\x89PNG", 4))
		return "image/png";
	if (n >= 12 && !memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WEBP", 4))
		return "image/webp";
	if (n >= 3 && b[0] == 0xff && b[1] == 0xd8)
		return "image/jpeg";
	return "application/octet-stream";
}

enum MHD_Result rv_image(struct rv_req *r, int thumb)
{
	struct kiln_review_server *s = r->srv;
	const char *sha = r->path + (thumb ? 7 : 5);
	char file_sha[65], etag[72];
	unsigned char head[16];
	struct MHD_Response *res;
	struct stat sb;
	struct kiln_error e;
	char *path;
	int fd, known;
	enum MHD_Result ret;
	ssize_t k;
	if (!is_sha(sha))
		return rv_send_error(r->conn, 404, "images are named by their SHA-256 (64 "
				     "lowercase hex digits)");
	pthread_rwlock_rdlock(&s->cache_lock);
	known = known_image(s, sha);
	pthread_rwlock_unlock(&s->cache_lock);
	if (!known)
		return rv_send_error(r->conn, 404, "%s is not an image of this catalog", sha);
	snprintf(etag, sizeof etag, "\"%s%s\"", thumb ? "t" : "", sha);
	if (rv_not_modified(r->conn, etag))
		return rv_send(r->conn, 304, NULL, "", 0, 0, "private, max-age=31536000, immutable",
			       etag);
	memcpy(file_sha, sha, 65);
	kiln_error_clear(&e);
	if (thumb && rv_thumb_get(s, sha, file_sha, &e))
		return rv_send_error(r->conn, 500, "thumbnail of %s: %s", sha, e.msg);
	if (!(path = kiln_store_path(s->p->store, file_sha)))
		return rv_send_error(r->conn, 500, "out of memory");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0 || fstat(fd, &sb)) {
		if (fd >= 0)
			close(fd);
		return rv_send_error(r->conn, 404, "%s is not in the content store", file_sha);
	}
	k = pread(fd, head, sizeof head, 0);
	res = MHD_create_response_from_fd((uint64_t)sb.st_size, fd);
	if (!res) {
		close(fd);
		return MHD_NO;
	}
	MHD_add_response_header(res, "Content-Type", sniff(head, k > 0 ? (size_t)k : 0));
	MHD_add_response_header(res, "Cache-Control", "private, max-age=31536000, immutable");
	MHD_add_response_header(res, "ETag", etag);
	MHD_add_response_header(res, "Content-Security-Policy", "default-src 'none'");
	MHD_add_response_header(res, "X-Frame-Options", "DENY");
	MHD_add_response_header(res, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(res, "Referrer-Policy", "no-referrer");
	ret = MHD_queue_response(r->conn, 200, res);
	MHD_destroy_response(res);
	return ret;
}
