/* verify: dist/portfolio/ checked from its files alone, as an outsider would (kiln verify).
 *
 * What one changed byte turns into: a log line -> its own link or the next line's prev, and the
 * root; a re-ordered or removed line -> seq and prev; the checkpoint -> its signature; a proof
 * -> the path no longer reaching the root; a bundle -> its DSSE signature or a subject digest;
 * an image -> its subject digest and its history (the render entry names other bytes) or its
 * C2PA hard binding. Every finding names the file and, where there is one, the log entry.
 *
 * Sizes: the log and one file at a time in memory; per token a proof, a bundle and an image. */
#include "kiln/portfolio.h"
#include "util/alloc.h"
#include "util/base64.h"
#include "util/fs.h"
#include "util/merkle.h"
#include "util/sha.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vx {
	const char *dist;
	const struct kiln_portfolio_hashes *known;
	uint64_t *checks;
	char ***problems;
	size_t *n;
	int nomem;
	char **lines;
	size_t nlines;
	uint8_t (*leaves)[32];
	struct kiln_buf b;
};

static void problem(struct vx *v, const char *fmt, ...) KILN_PRINTF(2, 3);
static void problem(struct vx *v, const char *fmt, ...)
{
	struct kiln_buf b = KILN_BUF_INIT;
	char **p;
	va_list ap;
	int rc;
	va_start(ap, fmt);
	rc = kiln_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	p = rc ? NULL : kiln_reallocarray(*v->problems, *v->n + 1, sizeof *p);
	if (!p) {
		kiln_buf_release(&b);
		v->nomem = 1;
		return;
	}
	*v->problems = p;
	p[(*v->n)++] = kiln_buf_detach(&b, NULL);
}

static int read_rel(struct vx *v, const char *rel, struct kiln_buf *out, size_t max)
{
	char *p = kiln_fs_join(v->dist, rel);
	struct kiln_error e;
	int rc;
	kiln_buf_reset(out);
	if (!p) {
		v->nomem = 1;
		return -1;
	}
	rc = kiln_fs_exists(p) ? kiln_fs_read_limited(p, out, max, 0, &e) : -1;
	free(p);
	return rc ? -1 : 0;
}

/* the log: lines, chain, canonical form */
static void check_log(struct vx *v)
{
	struct kiln_buf *b = &v->b;
	char prev[65] = KILN_LOG_ZERO;
	size_t start = 0;
	if (read_rel(v, "portfolio/log/entries.jsonl", b, (size_t)1 << 31)) {
		problem(v, "portfolio/log/entries.jsonl: missing or unreadable");
		return;
	}
	for (size_t i = 0; i <= b->len; i++) {
		if (i < b->len && b->data[i] != '\n')
			continue;
		if (i == b->len && start == i)
			break;
		if (i == b->len) {
			problem(v, "portfolio/log/entries.jsonl: the last line has no newline");
		}
		{
			char **nl = kiln_reallocarray(v->lines, v->nlines + 1, sizeof *nl);
			if (!nl || !(nl[v->nlines] = kiln_strndup(b->data + start, i - start))) {
				if (nl)
					v->lines = nl;
				v->nomem = 1;
				return;
			}
			v->lines = nl;
			v->nlines++;
		}
		start = i + 1;
	}
	if (!(v->leaves = kiln_calloc(v->nlines + 1, 32))) {
		v->nomem = 1;
		return;
	}
	for (size_t i = 0; i < v->nlines; i++) {
		const char *l = v->lines[i];
		json_t *j = json_loads(l, 0, NULL);
		char *again = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
		const char *pv = json_string_value(json_object_get(j, "prev"));
		(*v->checks) += 3;
		kiln_merkle_leaf(l, strlen(l), v->leaves[i]);
		if (!j)
			problem(v, "portfolio/log/entries.jsonl: entry %zu: not JSON", i);
		else if (!again || strcmp(again, l))
			problem(v, "portfolio/log/entries.jsonl: entry %zu: not in canonical form "
				"(sorted keys, no spaces)", i);
		if (j && (!pv || strcmp(pv, prev)))
			problem(v, "portfolio/log/entries.jsonl: entry %zu: prev is %.16s..., the line "
				"before hashes to %.16s... (a line changed, removed or moved)", i,
				pv ? pv : "(none)", prev);
		if (j && json_integer_value(json_object_get(j, "seq")) != (json_int_t)i)
			problem(v, "portfolio/log/entries.jsonl: entry %zu: seq is %" JSON_INTEGER_FORMAT,
				i, json_integer_value(json_object_get(j, "seq")));
		kiln_sha256_hex(l, strlen(l), prev);
		free(again);
		json_decref(j);
	}
}

static int hexeq(const uint8_t *raw, const char *hex)
{
	char h[65];
	kiln_hex(raw, 32, h);
	return hex && !strcmp(h, hex);
}

static int unhex32(const char *s, uint8_t out[32])
{
	if (!s || strlen(s) != 64)
		return -1;
	for (int i = 0; i < 32; i++) {
		unsigned x;
		if (sscanf(s + 2 * i, "%2x", &x) != 1)
			return -1;
		out[i] = (uint8_t)x;
	}
	return 0;
}

/* the file at rel's SHA-256 (hex), or "" when it cannot be read */
static void file_sha(struct vx *v, const char *rel, char hex[65])
{
	const char *k = v->known ? v->known->sha256(v->known->ctx, rel) : NULL;
	char *p;
	struct kiln_error e;
	if (k) {
		snprintf(hex, 65, "%s", k);
		return;
	}
	p = kiln_fs_join(v->dist, rel);
	if (!p || kiln_sha256_file(p, hex, &e))
		hex[0] = 0;
	if (!p)
		v->nomem = 1;
	free(p);
}

int kiln_portfolio_png_sha_without_cabx(const uint8_t *p, size_t n, uint8_t raw[32],
					char hex[65], int *had)
{
	struct kiln_sha256 h;
	size_t at = 8;
	*had = 0;
	if (n < 8 || memcmp(p, "\x89PNG\r\n\x1a\n", 8) || kiln_sha256_init(&h))
		return -1;
	kiln_sha256_update(&h, p, 8);
	while (at + 12 <= n) {
		size_t len = (size_t)p[at] << 24 | (size_t)p[at + 1] << 16 | (size_t)p[at + 2] << 8 |
			     p[at + 3];
		if (len > n - at - 12) {
			kiln_sha256_abort(&h);
			return -1;
		}
		if (memcmp(p + at + 4, "caBX", 4))
			kiln_sha256_update(&h, p + at, len + 12);
		else
			*had = 1;
		at += len + 12;
	}
	kiln_sha256_final(&h, raw, hex);
	return at == n ? 0 : -1;
}

void kiln_portfolio_key_fingerprint(const char *dist, const char *key_file, char fp[65])
{
	struct kiln_buf b = KILN_BUF_INIT;
	struct kiln_error e;
	uint8_t pub[32];
	char *p = kiln_fs_join(dist, "portfolio/keys/signing-ed25519.pub");
	fp[0] = 0;
	if (p && kiln_fs_exists(p) &&
	    !kiln_fs_read_limited(key_file ? key_file : p, &b, 1 << 16, 0, &e) &&
	    !kiln_ed25519_pub_from_pem(b.data, b.len, pub))
		kiln_sha256_hex(pub, 32, fp);
	kiln_buf_release(&b);
	free(p);
}

/* The image's dev.kiln.provenance (prov, JSON) names the log entry that made its bytes
 * (released: their SHA-256 without the caBX chunk): that entry is in the published log with
 * the SHA-256 given, is the token's, made those bytes, and the root given is that of the log
 * up to it. */
static void follow_provenance(struct vx *v, const struct kiln_merkle_tree *t, const char *img,
			      json_int_t id, const char *prov, const char *released)
{
	json_t *p = json_loads(prov, 0, NULL), *l = NULL;
	json_t *li = json_object_get(p, "log_index");
	const char *esha = json_string_value(json_object_get(p, "log_entry_sha256"));
	const char *root = json_string_value(json_object_get(p, "log_root"));
	json_int_t m = json_integer_value(li);
	char hex[65];
	uint8_t r[32];
	(*v->checks)++;
	if (!p || !json_is_integer(li) || m < 0 || (size_t)m >= v->nlines) {
		problem(v, "%s: C2PA dev.kiln.provenance: no entry of the log (%zu entries) named",
			img, v->nlines);
		goto out;
	}
	kiln_sha256_hex(v->lines[m], strlen(v->lines[m]), hex);
	if (!esha || strcmp(esha, hex)) {
		problem(v, "%s: C2PA dev.kiln.provenance: entry %" JSON_INTEGER_FORMAT " of "
			"entries.jsonl has SHA-256 %.16s..., the manifest says %.16s...", img, m, hex,
			esha ? esha : "(none)");
		goto out;
	}
	kiln_merkle_tree_prefix_root(t, (size_t)m + 1, r);
	kiln_hex(r, 32, hex);
	if (!root || strcmp(root, hex) ||
	    json_integer_value(json_object_get(p, "log_size")) != m + 1 ||
	    json_integer_value(json_object_get(p, "token_id")) != id)
		problem(v, "%s: C2PA dev.kiln.provenance: the root, size or token it gives are not "
			"those of entry %" JSON_INTEGER_FORMAT " of the log", img, m);
	l = json_loads(v->lines[m], 0, NULL);
	if (json_integer_value(json_object_get(l, "item")) != id ||
	    strcmp(json_string_value(json_object_get(json_object_get(l, "fact"), "image")) ?: "",
		   released))
		problem(v, "portfolio/log/entries.jsonl: entry %" JSON_INTEGER_FORMAT ", which %s's "
			"C2PA manifest names, did not make token %" JSON_INTEGER_FORMAT "'s released "
			"bytes (%.16s...)", m, img, id, released);
out:
	json_decref(l);
	json_decref(p);
}

int kiln_portfolio_verify(const char *dist, const char *pub_pem_file,
			  const struct kiln_portfolio_hashes *known, uint64_t *checks,
			  char ***problems, size_t *nproblems, struct kiln_error *e)
{
	struct vx v;
	json_t *pj = NULL, *tok;
	struct kiln_buf f = KILN_BUF_INIT, pay = KILN_BUF_INIT;
	struct kiln_c2pa_verifier *cv = NULL;
	uint8_t pub[32], root[32], croot[32];
	char *pdir = kiln_fs_join(dist, "portfolio"), origin[400], why[256], studio[KILN_STUDIO_MAX];
	uint64_t csize = 0;
	size_t i;
	int rc = 0, have_cp = 0;
	struct kiln_merkle_tree tree;
	memset(&tree, 0, sizeof tree);
	memset(&v, 0, sizeof v);
	v.dist = dist;
	v.known = known;
	v.checks = checks;
	v.problems = problems;
	v.n = nproblems;
	if (!pdir)
		return kiln_error_set(e, KILN_E_NOMEM, dist, "out of memory");
	if (!kiln_fs_is_dir(pdir))
		goto out; /* a release without a portfolio */
	(*checks)++;
	if (read_rel(&v, "portfolio/portfolio.json", &f, 64 << 20) ||
	    !(pj = json_loadb(f.data, f.len, 0, NULL))) {
		problem(&v, "portfolio/portfolio.json: missing or not JSON");
		goto out;
	}
	snprintf(studio, sizeof studio, "%s",
		 json_string_value(json_object_get(json_object_get(pj, "keys"), "studio")) ?: "");
	/* the key: the one the studio published when given, else the folder's */
	kiln_buf_reset(&f);
	if (pub_pem_file) {
		if ((rc = kiln_fs_read_limited(pub_pem_file, &f, 1 << 16, 0, e)))
			goto out;
	} else if (read_rel(&v, "portfolio/keys/signing-ed25519.pub", &f, 1 << 16)) {
		problem(&v, "portfolio/keys/signing-ed25519.pub: missing");
		goto out;
	}
	if (kiln_ed25519_pub_from_pem(f.data, f.len, pub)) {
		if (pub_pem_file) {
			rc = kiln_error_set(e, KILN_E_USAGE, pub_pem_file, "not an Ed25519 public "
					    "key in PEM (the studio's signing-ed25519.pub)");
			goto out;
		}
		problem(&v, "portfolio/keys/signing-ed25519.pub: not an Ed25519 public key");
		goto out;
	}
	/* the key the studio published against the one the folder carries: another one means
	 * the folder was signed (or re-signed) by someone else */
	if (pub_pem_file) {
		uint8_t mine[32];
		char a[65], b[65];
		(*checks)++;
		kiln_buf_reset(&f);
		kiln_sha256_hex(pub, 32, a);
		if (read_rel(&v, "portfolio/keys/signing-ed25519.pub", &f, 1 << 16) ||
		    kiln_ed25519_pub_from_pem(f.data, f.len, mine))
			problem(&v, "portfolio/keys/signing-ed25519.pub: missing or not an Ed25519 "
				"key (the studio key given is %s)", a);
		else if (memcmp(mine, pub, 32)) {
			kiln_sha256_hex(mine, 32, b);
			problem(&v, "portfolio/keys/signing-ed25519.pub: key %s is not the studio key "
				"%s given (%s)", b, a, pub_pem_file);
		}
	}
	check_log(&v);
	if (v.nomem)
		goto nomem;
	/* the tree's levels: its root, and the root of any prefix (dev.kiln.provenance) */
	if (kiln_merkle_tree_build(&tree, (const uint8_t(*)[32])v.leaves, v.nlines))
		goto nomem;
	if (v.nlines)
		kiln_merkle_tree_prefix_root(&tree, v.nlines, root);
	else
		kiln_merkle_root(NULL, 0, root);
	/* the checkpoint */
	(*checks)++;
	if (read_rel(&v, "portfolio/log/checkpoint", &f, 1 << 16)) {
		problem(&v, "portfolio/log/checkpoint: missing");
	} else if (kiln_checkpoint_verify(f.data, f.len, studio, pub, origin, sizeof origin, &csize,
					  croot, why, sizeof why)) {
		problem(&v, "portfolio/log/checkpoint: %s", why);
	} else {
		have_cp = 1;
		if (csize != v.nlines)
			problem(&v, "portfolio/log/checkpoint: signs a log of %" PRIu64 " entries, "
				"entries.jsonl has %zu", csize, v.nlines);
		else if (memcmp(croot, root, 32))
			problem(&v, "portfolio/log/checkpoint: the signed root is not the RFC 6962 "
				"root of entries.jsonl");
	}
	(void)have_cp;
	/* C2PA: chained to the studio's root when the folder has it */
	{
		char *rp = kiln_fs_join(pdir, "keys/c2pa-root.pem");
		if (!rp)
			goto nomem;
		rc = kiln_fs_exists(rp) ? kiln_portfolio_c2pa_verifier_new(&cv, rp, e) : 0;
		free(rp);
		if (rc)
			goto out;
	}
	/* per token */
	json_array_foreach(json_object_get(pj, "tokens"), i, tok) {
		json_int_t id = json_integer_value(json_object_get(tok, "token_id"));
		json_int_t li = json_integer_value(json_object_get(tok, "log_index"));
		const char *img = json_string_value(json_object_get(tok, "image"));
		char rel[128], hex[65];
		json_t *proof = NULL, *st = NULL, *s;
		size_t k;
		/* the inclusion proof */
		snprintf(rel, sizeof rel, "portfolio/log/proofs/%" JSON_INTEGER_FORMAT ".json", id);
		(*checks)++;
		if (read_rel(&v, rel, &f, 1 << 20) || !(proof = json_loadb(f.data, f.len, 0, NULL))) {
			problem(&v, "%s: missing or not JSON", rel);
		} else {
			json_int_t m = json_integer_value(json_object_get(proof, "log_index"));
			uint8_t path[64][32];
			size_t len = 0;
			json_t *h;
			int ok = m >= 0 && (size_t)m < v.nlines && m == li &&
				 json_integer_value(json_object_get(proof, "tree_size")) ==
					 (json_int_t)v.nlines &&
				 json_array_size(json_object_get(proof, "hashes")) <= 64;
			json_array_foreach(json_object_get(proof, "hashes"), k, h)
				if (k >= 64 || unhex32(json_string_value(h), path[len++]))
					ok = 0;
			if (ok && strcmp(json_string_value(json_object_get(proof, "entry")) ?: "",
					 v.lines[m]))
				ok = 0;
			if (!ok || !kiln_merkle_verify(v.leaves[m], (uint64_t)m, v.nlines,
						       (const uint8_t(*)[32])path, len, root))
				problem(&v, "%s: entry %" JSON_INTEGER_FORMAT ": the proof does not "
					"lead from the entry to the log's root", rel, m);
		}
		json_decref(proof);
		/* the attestation */
		snprintf(rel, sizeof rel, "portfolio/attestations/%" JSON_INTEGER_FORMAT
			 ".sigstore.json", id);
		(*checks)++;
		kiln_buf_reset(&pay);
		if (read_rel(&v, rel, &f, 16 << 20)) {
			problem(&v, "%s: missing", rel);
		} else if (kiln_sigstore_bundle_verify(f.data, f.len, pub, &pay, why, sizeof why)) {
			problem(&v, "%s: %s", rel, why);
		} else if (!(st = json_loadb(pay.data, pay.len, 0, NULL))) {
			problem(&v, "%s: the payload is not JSON", rel);
		} else {
			const char *leaf = json_string_value(json_object_get(json_object_get(
				json_array_get(json_object_get(json_object_get(json_object_get(
					st, "predicate"), "runDetails"), "byproducts"), 0),
				"digest"), "sha256"));
			if (li >= 0 && (size_t)li < v.nlines && !hexeq(v.leaves[li], leaf))
				problem(&v, "%s: entry %" JSON_INTEGER_FORMAT ": the attestation "
					"names another log entry", rel, li);
			json_array_foreach(json_object_get(st, "subject"), k, s) {
				const char *name = json_string_value(json_object_get(s, "name"));
				const char *want = json_string_value(json_object_get(
					json_object_get(s, "digest"), "sha256"));
				(*checks)++;
				if (!name || strstr(name, "..") || name[0] == '/') {
					problem(&v, "%s: a subject outside the release", rel);
					continue;
				}
				file_sha(&v, name, hex);
				if (!want || strcmp(hex, want))
					problem(&v, "%s: subject %s: expected SHA-256 %.16s..., the file "
						"has %.16s...", rel, name, want ? want : "?",
						hex[0] ? hex : "(missing)");
			}
		}
		json_decref(st);
		/* the history ends in the released bytes; C2PA, when the image has a manifest */
		if (!img || strstr(img, "..") || read_rel(&v, img, &f, (size_t)1 << 31))
			continue;
		(*checks)++;
		{
			json_t *l = li >= 0 && (size_t)li < v.nlines ? json_loads(v.lines[li], 0, NULL)
								      : NULL;
			const char *made = json_string_value(json_object_get(json_object_get(l, "fact"),
									     "image"));
			uint8_t raw[32];
			int had = 0, bad = kiln_portfolio_png_sha_without_cabx((const uint8_t *)f.data, f.len,
								 raw, hex, &had);
			if (bad)
				kiln_sha256_hex(f.data, f.len, hex);
			if (!made || strcmp(made, hex))
				problem(&v, "portfolio/log/entries.jsonl: entry %" JSON_INTEGER_FORMAT
					": token %" JSON_INTEGER_FORMAT "'s history ends in image "
					"%.16s..., %s is %.16s...", li, id, made ? made : "(none)", img,
					hex);
			json_decref(l);
			if (had) {
				struct kiln_c2pa_report r;
				(*checks)++;
				/* the hard binding against the hash just made (one pass an
				 * image) */
				if ((rc = kiln_portfolio_c2pa_verify_png_hashed(cv, f.data, f.len,
										bad ? NULL : raw,
										&r, e)))
					goto out;
				if (!r.ok)
					problem(&v, "%s: C2PA %s: %s", img, r.check, r.detail);
				else
					follow_provenance(&v, &tree, img, id, r.provenance, hex);
			}
		}
	}
	if (v.nomem)
		goto nomem;
	goto out;
nomem:
	rc = kiln_error_set(e, KILN_E_NOMEM, dist, "out of memory");
out:
	kiln_portfolio_c2pa_verifier_free(cv);
	kiln_merkle_tree_release(&tree);
	for (i = 0; i < v.nlines; i++)
		free(v.lines[i]);
	free(v.lines);
	free(v.leaves);
	kiln_buf_release(&v.b);
	kiln_buf_release(&f);
	kiln_buf_release(&pay);
	json_decref(pj);
	free(pdir);
	return rc;
}
