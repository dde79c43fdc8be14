/* log: the portfolio's append-only, hash-chained log of facts, its RFC 6962 Merkle tree and
 * its signed checkpoint (a C2SP signed note).
 *
 * Invariants: a line is canonical JSON (jansson with sorted keys, compact, UTF-8 as is), so
 * anyone can re-serialise a parsed line and get its bytes back; each line carries the SHA-256
 * of the line before; lines are appended in one catalog transaction and never changed (the
 * table's triggers refuse it). Each catalog fact (source, id) is logged once, so syncing twice
 * appends nothing. Prompts are committed to by hash only (see portfolio.h).
 *
 * Sources, in this order in each sync: datasets, models, accepted renders, polish steps (the
 * polish_steps table: edit.human, polish.step), review decisions (review_log), other events.
 *
 * Sizes: a line per dataset, model, accepted render, polish step, review decision and event:
 * ~1-5 per token, a few hundred bytes each; 10,000 tokens is a few MB, loaded whole. */
#include "kiln/catalog.h"
#include "kiln/portfolio.h"
#include "util/alloc.h"
#include "util/base64.h"
#include "util/merkle.h"
#include "util/sha.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CANON (JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)

static int nomem(struct kiln_error *e)
{
	return kiln_error_set(e, KILN_E_NOMEM, "portfolio log", "out of memory");
}

void kiln_prompt_hash(const char *text, char out[72])
{
	char hex[65];
	kiln_sha256_hex(text, strlen(text), hex);
	snprintf(out, 72, "sha256:%s", hex);
}

static int prompt_key(const char *k)
{
	return !strcmp(k, "prompt") || !strcmp(k, "negative_prompt") || !strcmp(k, "negative") ||
	       !strcmp(k, "text") || !strcmp(k, "infotext") || !strcmp(k, "parameters");
}

/* replace every string under a prompt-like key by its commitment, in place */
static int commit_prompts(json_t *v)
{
	const char *k;
	json_t *x;
	size_t i;
	if (json_is_object(v)) {
		json_object_foreach(v, k, x) {
			if (json_is_string(x) && prompt_key(k)) {
				char h[72];
				kiln_prompt_hash(json_string_value(x), h);
				if (json_object_set_new(v, k, json_string(h)))
					return -1;
			} else if (commit_prompts(x)) {
				return -1;
			}
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, x)
			if (commit_prompts(x))
				return -1;
	}
	return 0;
}

static const char *event_kind(const char *k)
{
	static const char *const map[][2] = {
		{"qa", "qa.gate"}, {"review", "review.decision"}, {"polish", "polish.step"},
		{"edit", "edit.human"}};
	for (size_t i = 0; i < sizeof map / sizeof *map; i++)
		if (!strcmp(k, map[i][0]))
			return map[i][1];
	return k;
}

/* the line after prev (64 hex) with index seq */
static char *make_line(uint64_t seq, const char *prev, const char *kind, const char *at,
		       int has_item, uint64_t item, json_t *fact)
{
	json_t *o = json_pack("{s:s, s:O, s:s, s:s, s:I}", "at", at ? at : "", "fact", fact,
			      "kind", kind, "prev", prev, "seq", (json_int_t)seq);
	char *s = NULL;
	if (o && has_item && json_object_set_new(o, "item", json_integer((json_int_t)item))) {
		json_decref(o);
		return NULL;
	}
	if (o)
		s = json_dumps(o, CANON);
	json_decref(o);
	return s;
}

struct pending {
	struct kiln_log_row *v;
	size_t n, cap;
	char prev[65];
	uint64_t seq;
};

static int push(struct pending *p, const char *src, int64_t id, const char *kind, const char *at,
		int has_item, uint64_t item, json_t *fact)
{
	char *line;
	if (p->n == p->cap) {
		size_t nc = p->cap ? p->cap * 2 : 256;
		struct kiln_log_row *v = kiln_reallocarray(p->v, nc, sizeof *v);
		if (!v)
			return -1;
		p->v = v;
		p->cap = nc;
	}
	if (!(line = make_line(p->seq, p->prev, kind, at, has_item, item, fact)))
		return -1;
	memset(&p->v[p->n], 0, sizeof p->v[p->n]);
	snprintf(p->v[p->n].src, sizeof p->v[p->n].src, "%s", src);
	p->v[p->n].src_id = id;
	p->v[p->n++].line = line;
	kiln_sha256_hex(line, strlen(line), p->prev);
	p->seq++;
	return 0;
}

/* A polish step's identity: a run that saves a token's chain again (a step added, polish run
 * again) logs only the steps it did not log before. "" when not a step. */
static char *step_key(uint64_t item, json_t *fact)
{
	json_t *st = json_object_get(fact, "step");
	const char *kind = json_string_value(json_object_get(fact, "kind"));
	const char *from = json_string_value(json_object_get(fact, "from"));
	const char *out = json_string_value(json_object_get(fact, "output"));
	size_t n = 64 + (kind ? strlen(kind) : 0) + (from ? strlen(from) : 0) +
		   (out ? strlen(out) : 0);
	char *k = kiln_malloc(n);
	if (k)
		snprintf(k, n, "%llu %lld %s %s %s", (unsigned long long)item,
			 (long long)json_integer_value(st), kind ? kind : "", from ? from : "",
			 out ? out : "");
	return k;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* the keys of the polish steps logged already, sorted */
static int logged_steps(const struct kiln_log_row *old, size_t nold, char ***keys, size_t *n)
{
	*keys = NULL;
	*n = 0;
	for (size_t i = 0; i < nold; i++) {
		json_t *l;
		char *k, **v;
		if (strcmp(old[i].src, "polish"))
			continue;
		l = json_loads(old[i].line, 0, NULL);
		k = l ? step_key((uint64_t)json_integer_value(json_object_get(l, "item")),
				 json_object_get(l, "fact"))
		      : NULL;
		json_decref(l);
		v = k ? kiln_reallocarray(*keys, *n + 1, sizeof *v) : NULL;
		if (!v) {
			free(k);
			return -1;
		}
		*keys = v;
		v[(*n)++] = k;
	}
	if (*n)
		qsort(*keys, *n, sizeof **keys, cmp_str);
	return 0;
}

/* The sync; with count, only counted: *count is then the number of entries the log would
 * hold after it, besides the release entries (what the catalog knows, logged or not). */
static int sync_log(struct kiln_catalog *c, const char *release_fact, uint64_t *count,
		    struct kiln_error *e)
{
	/* in this order, so that a sync's entries are in a fixed order: what the collection
	 * was made from, the renders, the polish chains, review decisions, the other events */
	static const char *const srcs[] = {"dataset", "model", "render", "polish", "review",
					   "event"};
	enum { NSRC = sizeof srcs / sizeof *srcs };
	struct kiln_log_row *old = NULL;
	struct pending p;
	size_t nold = 0, nsteps = 0;
	int64_t last[NSRC] = {0}, nrel = 0;
	json_t *last_release = NULL;
	char **steps = NULL;
	int rc;
	memset(&p, 0, sizeof p);
	memcpy(p.prev, KILN_LOG_ZERO, 65);
	if ((rc = kiln_catalog_log_read(c, &old, &nold, e)))
		return rc;
	if (logged_steps(old, nold, &steps, &nsteps)) {
		rc = nomem(e);
		goto out;
	}
	for (size_t i = 0; i < nold; i++) {
		for (size_t s = 0; s < NSRC; s++)
			if (!strcmp(old[i].src, srcs[s]) && old[i].src_id > last[s])
				last[s] = old[i].src_id;
		if (!strcmp(old[i].src, "release")) {
			json_t *l = json_loads(old[i].line, 0, NULL);
			json_decref(last_release);
			last_release = json_incref(json_object_get(l, "fact"));
			json_decref(l);
			nrel = old[i].src_id;
		}
	}
	if (nold)
		kiln_sha256_hex(old[nold - 1].line, strlen(old[nold - 1].line), p.prev);
	p.seq = nold;
	for (size_t s = 0; s < NSRC && !rc; s++) {
		struct kiln_fact *f = NULL;
		size_t n = 0;
		if ((rc = kiln_catalog_facts(c, srcs[s], last[s], &f, &n, e)))
			break;
		for (size_t i = 0; i < n && !rc; i++) {
			json_t *fact = json_loads(f[i].json, JSON_DECODE_ANY, NULL);
			const char *kind = s == 0 ? "dataset.added" : s == 1 ? "model.registered"
				       : s == 2 ? "render" : event_kind(f[i].kind);
			/* a dataset's entry: the record without its file list (the root commits
			 * to it; datasets/NAME.json has it) */
			if (s == 0)
				json_object_del(fact, "entries");
			if (fact && !strcmp(srcs[s], "polish")) {
				char *k = step_key(f[i].item_id, fact);
				int seen = k && nsteps &&
					   bsearch(&k, steps, nsteps, sizeof *steps, cmp_str);
				free(k);
				if (!k) {
					rc = nomem(e);
					json_decref(fact);
					break;
				}
				if (seen) {
					json_decref(fact);
					continue;
				}
			}
			if (!fact || commit_prompts(fact) ||
			    push(&p, srcs[s], f[i].id, kind, f[i].at, f[i].has_item, f[i].item_id,
				 fact))
				rc = nomem(e);
			json_decref(fact);
		}
		kiln_facts_free(f, n);
	}
	if (!rc && count) {
		uint64_t k = p.n;
		for (size_t i = 0; i < nold; i++)
			k += strcmp(old[i].src, "release") != 0;
		*count = k;
		goto out;
	}
	if (!rc && release_fact) {
		json_t *fact = json_loads(release_fact, 0, NULL);
		if (!fact)
			rc = kiln_error_set(e, KILN_E_USAGE, "portfolio log", "the release fact is "
					    "not JSON");
		else if (!json_equal(fact, last_release)) {
			char at[32];
			time_t t = time(NULL);
			struct tm tm;
			gmtime_r(&t, &tm);
			strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", &tm);
			if (push(&p, "release", nrel + 1, "release", at, 0, 0, fact))
				rc = nomem(e);
		}
		json_decref(fact);
	}
	if (!rc)
		rc = kiln_catalog_log_append(c, p.v, p.n, e);
out:
	kiln_log_rows_free(p.v, p.n);
	kiln_log_rows_free(old, nold);
	json_decref(last_release);
	for (size_t i = 0; i < nsteps; i++)
		free(steps[i]);
	free(steps);
	return rc;
}

int kiln_portfolio_log_sync(struct kiln_catalog *c, const char *release_fact,
			    struct kiln_error *e)
{
	return sync_log(c, release_fact, NULL, e);
}

int kiln_portfolio_log_facts(struct kiln_catalog *c, uint64_t *n, struct kiln_error *e)
{
	return sync_log(c, NULL, n, e);
}

int kiln_portfolio_log_append(struct kiln_catalog *c, const char *src, uint64_t seq,
			      const char *prev_line, const char *kind, uint64_t item,
			      const char *fact_json, char **line, struct kiln_error *e)
{
	struct kiln_log_row row;
	json_t *fact = json_loads(fact_json, 0, NULL);
	char prev[65], at[32];
	time_t t = time(NULL);
	struct tm tm;
	int rc;
	*line = NULL;
	if (!fact)
		return kiln_error_set(e, KILN_E_USAGE, "portfolio log", "the %s fact is not JSON",
				      kind);
	if (prev_line)
		kiln_sha256_hex(prev_line, strlen(prev_line), prev);
	else
		memcpy(prev, KILN_LOG_ZERO, 65);
	gmtime_r(&t, &tm);
	strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", &tm);
	memset(&row, 0, sizeof row);
	snprintf(row.src, sizeof row.src, "%s", src);
	row.src_id = (int64_t)seq;
	if (commit_prompts(fact) || !(row.line = make_line(seq, prev, kind, at, 1, item, fact)))
		rc = nomem(e);
	else
		rc = kiln_catalog_log_append(c, &row, 1, e);
	json_decref(fact);
	if (rc)
		free(row.line);
	else
		*line = row.line;
	return rc;
}

int kiln_portfolio_log_load(struct kiln_catalog *c, struct kiln_plog *log, struct kiln_error *e)
{
	struct kiln_log_row *v = NULL;
	size_t n = 0;
	int rc;
	memset(log, 0, sizeof *log);
	if ((rc = kiln_catalog_log_read(c, &v, &n, e)))
		return rc;
	log->lines = kiln_calloc(n + 1, sizeof *log->lines);
	log->leaves = kiln_calloc(n + 1, sizeof *log->leaves);
	if (!log->lines || !log->leaves) {
		rc = nomem(e);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		log->lines[i] = v[i].line;
		v[i].line = NULL;
		kiln_merkle_leaf(log->lines[i], strlen(log->lines[i]), log->leaves[i]);
	}
	log->n = n;
	kiln_merkle_root((const uint8_t(*)[32])log->leaves, n, log->root);
out:
	kiln_log_rows_free(v, n);
	if (rc)
		kiln_plog_release(log);
	return rc;
}

void kiln_plog_release(struct kiln_plog *log)
{
	if (!log)
		return;
	for (size_t i = 0; log->lines && i < log->n; i++)
		free(log->lines[i]);
	free(log->lines);
	free(log->leaves);
	memset(log, 0, sizeof *log);
}

int kiln_checkpoint_sign(const struct kiln_keys *k, const char *origin, uint64_t size,
			 const uint8_t root[32], struct kiln_buf *out, struct kiln_error *e)
{
	size_t start = out->len;
	uint8_t sig[4 + 64];
	uint32_t id = kiln_note_key_id(k->studio, k->pub);
	int rc;
	if (strchr(origin, '\n') || !*origin)
		return kiln_error_set(e, KILN_E_USAGE, origin, "a checkpoint origin is one "
				      "non-empty line");
	if (kiln_buf_addf(out, "%s\n%llu\n", origin, (unsigned long long)size) ||
	    kiln_base64_add(out, root, 32) || kiln_buf_add(out, "\n", 1))
		return nomem(e);
	if ((rc = kiln_keys_sign(k, out->data + start, out->len - start, sig + 4, e)))
		return rc;
	sig[0] = (uint8_t)(id >> 24);
	sig[1] = (uint8_t)(id >> 16);
	sig[2] = (uint8_t)(id >> 8);
	sig[3] = (uint8_t)id;
	if (kiln_buf_addf(out, "\n\xe2\x80\x94 %s ", k->studio) || kiln_base64_add(out, sig, 68) ||
	    kiln_buf_add(out, "\n", 1))
		return nomem(e);
	return 0;
}

int kiln_checkpoint_verify(const char *note, size_t len, const char *name, const uint8_t pub[32],
			   char *origin, size_t ocap, uint64_t *size, uint8_t root[32],
			   char *why, size_t wcap)
{
	const char *sep = NULL, *p, *nl1, *nl2;
	struct kiln_buf b = KILN_BUF_INIT;
	char prefix[KILN_STUDIO_MAX + 8], *end;
	size_t body, pl;
	int ok = 0;
	for (size_t i = 0; i + 1 < len; i++)
		if (note[i] == '\n' && note[i + 1] == '\n') {
			sep = note + i;
			break;
		}
	if (!sep || memchr(note, 0, len)) {
		snprintf(why, wcap, "not a signed note (no blank line after the body)");
		return -1;
	}
	body = (size_t)(sep - note) + 1;
	nl1 = memchr(note, '\n', body);
	nl2 = nl1 ? memchr(nl1 + 1, '\n', body - (size_t)(nl1 + 1 - note)) : NULL;
	if (!nl1 || !nl2 || nl1 == note || (size_t)(nl1 - note) >= ocap) {
		snprintf(why, wcap, "the body is not origin, size and root hash lines");
		return -1;
	}
	snprintf(origin, ocap, "%.*s", (int)(nl1 - note), note);
	*size = strtoull(nl1 + 1, &end, 10);
	if (end != nl2 || nl1[1] < '0' || nl1[1] > '9') {
		snprintf(why, wcap, "the size line is not a number");
		return -1;
	}
	if (kiln_base64_decode(nl2 + 1, (size_t)(note + body - 1 - (nl2 + 1)), &b) || b.len != 32) {
		snprintf(why, wcap, "the root hash line is not 32 bytes of base64");
		goto out;
	}
	memcpy(root, b.data, 32);
	kiln_buf_reset(&b);
	snprintf(prefix, sizeof prefix, "\xe2\x80\x94 %s ", name);
	pl = strlen(prefix);
	p = sep + 2;
	for (;;) {
		const char *eol = memchr(p, '\n', (size_t)(note + len - p));
		if (!eol) {
			snprintf(why, wcap, "no signature by %s on the note", name);
			goto out;
		}
		if ((size_t)(eol - p) > pl && !memcmp(p, prefix, pl)) {
			uint32_t id;
			kiln_buf_reset(&b);
			if (kiln_base64_decode(p + pl, (size_t)(eol - p) - pl, &b) || b.len != 68) {
				snprintf(why, wcap, "the signature line of %s is not base64 of a key "
					 "id and an Ed25519 signature", name);
				goto out;
			}
			id = (uint32_t)(uint8_t)b.data[0] << 24 | (uint32_t)(uint8_t)b.data[1] << 16 |
			     (uint32_t)(uint8_t)b.data[2] << 8 | (uint8_t)b.data[3];
			if (id == kiln_note_key_id(name, pub)) {
				if (!kiln_ed25519_verify(pub, note, body, (const uint8_t *)b.data + 4)) {
					snprintf(why, wcap, "the signature of %s does not verify "
						 "with the studio key", name);
					goto out;
				}
				ok = 1;
				break;
			}
		}
		p = eol + 1;
	}
out:
	kiln_buf_release(&b);
	return ok ? 0 : -1;
}
