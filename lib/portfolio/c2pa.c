/* c2pa: C2PA 2.x manifests embedded in PNGs, signed and checked by kiln.
 *
 * A released PNG carries one manifest store in a `caBX` chunk just before its first IDAT:
 *
 *   jumb c2pa "c2pa"                          the manifest store
 *     jumb c2ma "urn:c2pa:<uuid>"             the one (active) manifest
 *       jumb c2as "c2pa.assertions"
 *         jumb cbor "c2pa.actions.v2"         c2pa.created + digitalSourceType, c2pa.edited...
 *         jumb cbor "c2pa.hash.data"          SHA-256 of every byte but the caBX chunk
 *         jumb cbor "dev.kiln.provenance"     the token's place in the studio's signed log
 *       jumb c2cl "c2pa.claim"     cbor       claim v2: created_assertions as hashed URIs
 *       jumb c2cs "c2pa.signature" cbor       COSE_Sign1 (tag 18), ES256, detached payload
 *
 * What validators check (C2PA 2.x; c2pa-rs, whose WASM build is the test oracle): a hashed
 * URI's hash is SHA-256 of the assertion superbox's payload (its jumd box and content box,
 * headers included, without the jumb header); the claim holds only v2 fields; the first
 * action is c2pa.created with a digitalSourceType; the hard binding's exclusion covers the
 * whole caBX chunk (length, type, data and CRC); the COSE protected header holds alg -7 and
 * x5chain (label 33, the leaf alone as a byte string: the root is the validator's trust
 * anchor); the signature over Sig_structure ["Signature1", protected, h'', claim] is raw
 * r||s (64 bytes), not OpenSSL's DER; the leaf passes the certificate profile (x509.c).
 *
 * The exclusion's length is inside the manifest it measures: the manifest is built with a
 * length, measured, and built again until the two agree (the CBOR of a larger number is at
 * most a few bytes longer, so it settles in two or three rounds; the signature is always 64
 * bytes). The hash itself never changes: with the caBX chunk excluded, the signed file hashes
 * as the PNG without it.
 *
 * Sizes: a manifest is about 2 KB (0.7 KB of it the leaf certificate); one image in memory.
 * CBOR is written with libcbor's encoders (shortest forms, definite lengths) and read back
 * with cbor_load.
 */
#include "kiln/portfolio.h"
#include "portfolio/jumbf.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/sha.h"

#include <cbor.h>
#include <openssl/bio.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libdeflate.h>

#ifndef KILN_VERSION
#define KILN_VERSION "0"
#endif

#define IPTC "http://cv.iptc.org/newscodes/digitalsourcetype/"
#define COSE_TAG 18
#define COSE_ALG 1
#define COSE_X5CHAIN 33
#define COSE_ES256 (-7)

struct kiln_c2pa_signer {
	EVP_PKEY *key;
	unsigned char *cert;     /* the leaf, DER */
	size_t cert_len;
	struct kiln_c2pa_verifier *self; /* checks cached manifests (no root: no chain) */
};

struct kiln_c2pa_verifier {
	X509_STORE *store;        /* the trust anchors */
	char *root_pem;           /* their file, for messages */
	uint8_t chained[32];      /* SHA-256 of the last leaf that chained (every image of a
	                             release has the same leaf: its chain is built once) */
	int has_chained;
	/* the last leaf met, parsed once (its DER, the certificate, whether its profile passed):
	 * parsing a certificate and its key costs more than checking the signature */
	unsigned char *leaf_der;
	size_t leaf_len;
	X509 *leaf;
	int leaf_ok;
};

static int verify_png(struct kiln_c2pa_verifier *v, const void *png, size_t len,
		      const uint8_t *known, struct kiln_c2pa_report *r, struct kiln_error *e);

/* --- PNG chunks ------------------------------------------------------------------------ */

static const uint8_t png_sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* What a walk over a PNG's chunks found. */
struct png_scan {
	size_t first_idat;   /* offset of the first IDAT chunk */
	size_t cabx;         /* offset of the first caBX chunk, its whole length (12 + data) */
	size_t cabx_len;
	int n_cabx;
	int cabx_after_idat;
	char why[160];       /* what is wrong, when the walk failed */
};

/* Walk every chunk: signature, IHDR first, lengths inside the file, CRCs, an IDAT, IEND last
 * and nothing after it. 0 ok, -1 with s->why set. */
static int png_walk(const uint8_t *p, size_t n, struct png_scan *s)
{
	size_t off = 8;
	int first = 1, seen_idat = 0;
	memset(s, 0, sizeof *s);
	if (n < 8 || memcmp(p, png_sig, 8) != 0) {
		snprintf(s->why, sizeof s->why, "not a PNG (no PNG signature)");
		return -1;
	}
	for (;;) {
		uint32_t len;
		char type[5];
		if (n - off < 12) {
			snprintf(s->why, sizeof s->why, "truncated chunk at byte %zu", off);
			return -1;
		}
		len = be32(p + off);
		memcpy(type, p + off + 4, 4);
		type[4] = 0;
		if (len > 0x7fffffffu || (size_t)len > n - off - 12) {
			snprintf(s->why, sizeof s->why, "chunk %.4s at byte %zu runs past the end",
				 type, off);
			return -1;
		}
		if ((uint32_t)libdeflate_crc32(0, p + off + 4, (size_t)len + 4) !=
		    be32(p + off + 8 + len)) {
			snprintf(s->why, sizeof s->why, "chunk %.4s at byte %zu has a wrong CRC",
				 type, off);
			return -1;
		}
		if (first && strcmp(type, "IHDR") != 0) {
			snprintf(s->why, sizeof s->why, "the first chunk is %.4s, not IHDR", type);
			return -1;
		}
		first = 0;
		if (strcmp(type, "IDAT") == 0 && !seen_idat) {
			seen_idat = 1;
			s->first_idat = off;
		}
		if (strcmp(type, "caBX") == 0) {
			if (!s->n_cabx++) {
				s->cabx = off;
				s->cabx_len = (size_t)len + 12;
			}
			if (seen_idat)
				s->cabx_after_idat = 1;
		}
		off += (size_t)len + 12;
		if (strcmp(type, "IEND") == 0)
			break;
	}
	if (!seen_idat) {
		snprintf(s->why, sizeof s->why, "no IDAT chunk");
		return -1;
	}
	if (off != n) {
		snprintf(s->why, sizeof s->why, "%zu bytes after IEND", n - off);
		return -1;
	}
	return 0;
}

/* Append p[n] to out without its caBX chunks (p is a walked PNG). */
static int png_strip_cabx(const uint8_t *p, size_t n, struct kiln_buf *out)
{
	size_t off = 8;
	if (kiln_buf_add(out, p, 8))
		return KILN_E_NOMEM;
	while (off < n) {
		size_t whole = (size_t)be32(p + off) + 12;
		if (memcmp(p + off + 4, "caBX", 4) != 0 && kiln_buf_add(out, p + off, whole))
			return KILN_E_NOMEM;
		off += whole;
	}
	return 0;
}

/* --- CBOR writing (libcbor's encoders into a kiln_buf) --------------------------------- */

struct cw {
	struct kiln_buf *b;
	int err;
};

static void cw_raw(struct cw *w, const void *p, size_t n)
{
	if (!w->err && kiln_buf_add(w->b, p, n))
		w->err = KILN_E_NOMEM;
}

#define CW_HEAD(w, call) \
	do { \
		unsigned char t_[9]; \
		size_t n_ = (call); \
		cw_raw(w, t_, n_); \
	} while (0)

static void cw_uint(struct cw *w, uint64_t v) { CW_HEAD(w, cbor_encode_uint(v, t_, sizeof t_)); }
static void cw_map(struct cw *w, size_t n) { CW_HEAD(w, cbor_encode_map_start(n, t_, sizeof t_)); }
static void cw_array(struct cw *w, size_t n)
{
	CW_HEAD(w, cbor_encode_array_start(n, t_, sizeof t_));
}
static void cw_tag(struct cw *w, uint64_t t) { CW_HEAD(w, cbor_encode_tag(t, t_, sizeof t_)); }
static void cw_null(struct cw *w) { CW_HEAD(w, cbor_encode_null(t_, sizeof t_)); }

static void cw_int(struct cw *w, int64_t v)
{
	if (v >= 0)
		cw_uint(w, (uint64_t)v);
	else
		CW_HEAD(w, cbor_encode_negint((uint64_t)(-(v + 1)), t_, sizeof t_));
}

static void cw_text(struct cw *w, const char *s)
{
	size_t n = strlen(s);
	CW_HEAD(w, cbor_encode_string_start(n, t_, sizeof t_));
	cw_raw(w, s, n);
}

static void cw_bytes(struct cw *w, const void *p, size_t n)
{
	CW_HEAD(w, cbor_encode_bytestring_start(n, t_, sizeof t_));
	cw_raw(w, p, n);
}

/* --- CBOR reading ---------------------------------------------------------------------- */

/* cbor_load allocates what a container's head declares before reading its items, so
 * 5 bytes declaring a billion-item array cost gigabytes (found by fuzzing), and it frees
 * nested items recursively. So the heads are walked first with libcbor's streaming decoder:
 * the items that definite containers promise may not add up to more than there are bytes
 * (each item takes one at least), and nesting stops at SCAN_DEPTH. */
#define SCAN_DEPTH 32
#define SCAN_INDEF ((size_t)-1)

struct scan {
	size_t promised, limit;
	size_t rem[SCAN_DEPTH];  /* items left in each open container, SCAN_INDEF: until break */
	int depth;
	int bad;
};

static void scan_pop_done(struct scan *sc)
{
	while (sc->depth > 0 && sc->rem[sc->depth - 1] == 0)
		sc->depth--;
}

/* One item head: it fills a place in the container it is in; a container opens (n items,
 * or SCAN_INDEF). */
static void scan_item(struct scan *sc, int opens, size_t n)
{
	if (sc->depth > 0 && sc->rem[sc->depth - 1] != SCAN_INDEF)
		sc->rem[sc->depth - 1]--;
	if (opens && n) {
		if (n != SCAN_INDEF) {
			if (n > sc->limit - sc->promised) {
				sc->bad = 1;
				return;
			}
			sc->promised += n;
		}
		if (sc->depth == SCAN_DEPTH) {
			sc->bad = 1;
			return;
		}
		sc->rem[sc->depth++] = n;
	}
	scan_pop_done(sc);
}

static void scan_i8(void *c, uint8_t v) { (void)v; scan_item(c, 0, 0); }
static void scan_i16(void *c, uint16_t v) { (void)v; scan_item(c, 0, 0); }
static void scan_i32(void *c, uint32_t v) { (void)v; scan_item(c, 0, 0); }
static void scan_i64(void *c, uint64_t v) { (void)v; scan_item(c, 0, 0); }
static void scan_simple(void *c) { scan_item(c, 0, 0); }
static void scan_str(void *c, cbor_data d, size_t n) { (void)d; (void)n; scan_item(c, 0, 0); }
static void scan_f(void *c, float v) { (void)v; scan_item(c, 0, 0); }
static void scan_d(void *c, double v) { (void)v; scan_item(c, 0, 0); }
static void scan_b(void *c, bool v) { (void)v; scan_item(c, 0, 0); }
static void scan_indef(void *c) { scan_item(c, 1, SCAN_INDEF); }
static void scan_array(void *c, size_t n) { scan_item(c, 1, n); }
static void scan_map(void *c, size_t n)
{
	struct scan *sc = c;
	scan_item(c, 1, n > sc->limit ? sc->limit + 1 : n * 2);
}
static void scan_tag(void *c, uint64_t v) { (void)v; scan_item(c, 1, 1); }
static void scan_break(void *c)
{
	struct scan *sc = c;
	if (sc->depth == 0 || sc->rem[sc->depth - 1] != SCAN_INDEF) {
		sc->bad = 1;
		return;
	}
	sc->depth--;
	scan_pop_done(sc);
}

/* cbor_load of p[n] when its heads are sane, else NULL with a malformed error. */
static cbor_item_t *cbor_load_checked(const uint8_t *p, size_t n, struct cbor_load_result *lr)
{
	struct cbor_callbacks cb = cbor_empty_callbacks;
	struct scan sc = { 0 };
	size_t off = 0;
	cb.uint8 = cb.negint8 = scan_i8;
	cb.uint16 = cb.negint16 = scan_i16;
	cb.uint32 = cb.negint32 = scan_i32;
	cb.uint64 = cb.negint64 = scan_i64;
	cb.byte_string = cb.string = scan_str;
	cb.byte_string_start = cb.string_start = cb.indef_array_start = cb.indef_map_start =
		scan_indef;
	cb.array_start = scan_array;
	cb.map_start = scan_map;
	cb.tag = scan_tag;
	cb.float2 = cb.float4 = scan_f;
	cb.float8 = scan_d;
	cb.undefined = cb.null = scan_simple;
	cb.boolean = scan_b;
	cb.indef_break = scan_break;
	sc.limit = n;
	sc.promised = 1;
	while (off < n && !sc.bad) {
		struct cbor_decoder_result dr = cbor_stream_decode(p + off, n - off, &cb, &sc);
		if (dr.status != CBOR_DECODER_FINISHED || dr.read == 0)
			break;
		off += dr.read;
		if (sc.depth == 0)
			break; /* the one top-level item is complete */
	}
	if (sc.bad || sc.depth != 0 || off == 0) {
		memset(lr, 0, sizeof *lr);
		lr->error.code = CBOR_ERR_MALFORMATED;
		return NULL;
	}
	return cbor_load(p, n, lr);
}

/* libcbor's getters assert on the item's type and width (cbor_is_null on a half float
 * aborts: found by fuzzing), so every one is asked only after them. */
static int is_null(const cbor_item_t *it)
{
	return it && cbor_isa_float_ctrl(it) && cbor_float_ctrl_is_ctrl(it) && cbor_is_null(it);
}

/* The value of text key k in map m (borrowed), or NULL. */
static cbor_item_t *map_get(const cbor_item_t *m, const char *k)
{
	size_t i, n, kl = strlen(k);
	struct cbor_pair *pairs;
	if (!m || !cbor_isa_map(m))
		return NULL;
	n = cbor_map_size(m);
	pairs = cbor_map_handle(m);
	for (i = 0; i < n; i++) {
		cbor_item_t *key = pairs[i].key;
		if (cbor_isa_string(key) && cbor_string_is_definite(key) &&
		    cbor_string_length(key) == kl && memcmp(cbor_string_handle(key), k, kl) == 0)
			return pairs[i].value;
	}
	return NULL;
}

/* The value of integer key k in map m, or NULL. */
static cbor_item_t *map_get_int(const cbor_item_t *m, int64_t k)
{
	size_t i, n;
	struct cbor_pair *pairs;
	if (!m || !cbor_isa_map(m))
		return NULL;
	n = cbor_map_size(m);
	pairs = cbor_map_handle(m);
	for (i = 0; i < n; i++) {
		cbor_item_t *key = pairs[i].key;
		if (k >= 0 && cbor_isa_uint(key) && cbor_get_int(key) == (uint64_t)k)
			return pairs[i].value;
		if (k < 0 && cbor_isa_negint(key) && cbor_get_int(key) == (uint64_t)(-(k + 1)))
			return pairs[i].value;
	}
	return NULL;
}

/* A definite text item copied into out[cap]; 0 ok, -1 not text or too long. */
static int get_text(const cbor_item_t *it, char *out, size_t cap)
{
	size_t n;
	if (!it || !cbor_isa_string(it) || !cbor_string_is_definite(it))
		return -1;
	n = cbor_string_length(it);
	if (n >= cap)
		return -1;
	memcpy(out, cbor_string_handle(it), n);
	out[n] = 0;
	return 0;
}

static int get_bytes(const cbor_item_t *it, const uint8_t **p, size_t *n)
{
	if (!it || !cbor_isa_bytestring(it) || !cbor_bytestring_is_definite(it))
		return -1;
	*p = cbor_bytestring_handle(it);
	*n = cbor_bytestring_length(it);
	return 0;
}

static int get_uint(const cbor_item_t *it, uint64_t *v)
{
	if (!it || !cbor_isa_uint(it))
		return -1;
	*v = cbor_get_int(it);
	return 0;
}

/* --- the signer ------------------------------------------------------------------------ */

static int read_pem(const char *dir, const char *name, struct kiln_buf *b, char **pathp,
		    struct kiln_error *e)
{
	char *path = kiln_fs_join(dir, name);
	int rc;
	if (!path)
		return kiln_error_set(e, KILN_E_NOMEM, dir, "out of memory");
	if (!kiln_fs_exists(path)) {
		rc = kiln_error_set(e, KILN_E_IO, path,
				    "missing: the studio's C2PA signing keys are not in this "
				    "folder (make them first)");
		free(path);
		return rc;
	}
	rc = kiln_fs_read_limited(path, b, 1 << 20, 0, e);
	if (rc)
		free(path);
	else
		*pathp = path;
	return rc;
}

int kiln_portfolio_c2pa_signer_new(struct kiln_c2pa_signer **sp, const char *keys_dir,
				   struct kiln_error *e)
{
	struct kiln_buf cb = KILN_BUF_INIT, kb = KILN_BUF_INIT;
	struct kiln_c2pa_signer *s = NULL;
	char *cpath = NULL, *kpath = NULL;
	BIO *bio = NULL;
	X509 *x = NULL;
	unsigned char *der = NULL;
	int rc, len;
	*sp = NULL;
	rc = read_pem(keys_dir, KILN_C2PA_LEAF_CERT, &cb, &cpath, e);
	if (!rc)
		rc = read_pem(keys_dir, KILN_C2PA_LEAF_KEY, &kb, &kpath, e);
	if (rc)
		goto out;
	s = kiln_calloc(1, sizeof *s);
	if (!s) {
		rc = kiln_error_set(e, KILN_E_NOMEM, keys_dir, "out of memory");
		goto out;
	}
	bio = BIO_new_mem_buf(cb.data, (int)cb.len);
	x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	if (!x) {
		rc = kiln_error_set(e, KILN_E_FAILED, cpath, "not a PEM certificate");
		goto out;
	}
	bio = BIO_new_mem_buf(kb.data, (int)kb.len);
	s->key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	if (!s->key) {
		rc = kiln_error_set(e, KILN_E_FAILED, kpath, "not a PEM private key");
		goto out;
	}
	if (!EVP_PKEY_is_a(s->key, "EC") || EVP_PKEY_get_bits(s->key) != 256) {
		rc = kiln_error_set(e, KILN_E_FAILED, kpath,
				    "not an EC P-256 key (C2PA's ES256 needs one)");
		goto out;
	}
	if (X509_check_private_key(x, s->key) != 1) {
		rc = kiln_error_set(e, KILN_E_FAILED, kpath, "does not match the certificate %s",
				    cpath);
		goto out;
	}
	len = i2d_X509(x, &der);
	if (len <= 0) {
		rc = kiln_error_set(e, KILN_E_NOMEM, cpath, "out of memory");
		goto out;
	}
	s->cert = kiln_malloc((size_t)len);
	if (!s->cert) {
		rc = kiln_error_set(e, KILN_E_NOMEM, cpath, "out of memory");
		goto out;
	}
	memcpy(s->cert, der, (size_t)len);
	s->cert_len = (size_t)len;
	*sp = s;
	s = NULL;
out:
	ERR_clear_error();
	OPENSSL_free(der);
	X509_free(x);
	kiln_portfolio_c2pa_signer_free(s);
	kiln_buf_release(&cb);
	if (kb.data)
		OPENSSL_cleanse(kb.data, kb.len);
	kiln_buf_release(&kb);
	free(cpath);
	free(kpath);
	return rc;
}

void kiln_portfolio_c2pa_signer_free(struct kiln_c2pa_signer *s)
{
	if (!s)
		return;
	EVP_PKEY_free(s->key);
	free(s->cert);
	kiln_portfolio_c2pa_verifier_free(s->self);
	free(s);
}

/* --- building the manifest ------------------------------------------------------------- */

/* An RFC 9562 UUID (version 8: vendor-defined) from a digest, as text. */
static void uuid_text(const uint8_t d[32], char out[37])
{
	uint8_t u[16];
	memcpy(u, d, 16);
	u[6] = (uint8_t)((u[6] & 0x0f) | 0x80);
	u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
		 u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
		 u[15]);
}

/* a map's key and its value, the runs the writers below are made of */
static void cw_kv_text(struct cw *w, const char *k, const char *v)
{
	cw_text(w, k);
	cw_text(w, v);
}

static void cw_kv_uint(struct cw *w, const char *k, uint64_t v)
{
	cw_text(w, k);
	cw_uint(w, v);
}

static void cw_kv_int(struct cw *w, const char *k, int64_t v)
{
	cw_text(w, k);
	cw_int(w, v);
}

static void cw_agent(struct cw *w, const char *name, const char *version)
{
	cw_map(w, version ? 2 : 1);
	cw_kv_text(w, "name", name);
	if (version)
		cw_kv_text(w, "version", version);
}

static void cbor_actions(struct cw *w, const struct kiln_c2pa_in *in)
{
	size_t i;
	cw_map(w, 1);
	cw_text(w, "actions");
	cw_array(w, 1 + in->n_edits);
	cw_map(w, 3);
	cw_kv_text(w, "action", "c2pa.created");
	cw_text(w, "digitalSourceType");
	cw_text(w, in->source_type == KILN_C2PA_COMPOSITE_TRAINED
			   ? IPTC "compositeWithTrainedAlgorithmicMedia"
		   : in->source_type == KILN_C2PA_COMPOSITE_SYNTHETIC
			   ? IPTC "compositeSynthetic"
			   : IPTC "trainedAlgorithmicMedia");
	cw_text(w, "softwareAgent");
	cw_agent(w, "kiln", KILN_VERSION);
	for (i = 0; i < in->n_edits; i++) {
		const struct kiln_c2pa_edit *ed = &in->edits[i];
		cw_map(w, 2 + (ed->agent != NULL) + (ed->when != NULL));
		cw_kv_text(w, "action", "c2pa.edited");
		cw_kv_text(w, "description", ed->description);
		if (ed->agent) {
			cw_text(w, "softwareAgent");
			cw_agent(w, ed->agent, NULL);
		}
		if (ed->when) {
			cw_kv_text(w, "when", ed->when);
		}
	}
}

static void cbor_hash_data(struct cw *w, const uint8_t hash[32], size_t start, size_t length)
{
	cw_map(w, 5);
	cw_text(w, "exclusions");
	cw_array(w, 1);
	cw_map(w, 2);
	cw_kv_uint(w, "start", start);
	cw_kv_uint(w, "length", length);
	cw_kv_text(w, "name", "jumbf manifest");
	cw_kv_text(w, "alg", "sha256");
	cw_text(w, "hash");
	cw_bytes(w, hash, 32);
	cw_text(w, "pad");
	cw_bytes(w, "", 0);
}

static void cbor_provenance(struct cw *w, const struct kiln_c2pa_in *in)
{
	int has_log = in->log_index >= 0;
	cw_map(w, 1 + (has_log ? 2 : 0) + (has_log && in->log_entry_sha256) +
			  (has_log && in->log_root));
	cw_kv_int(w, "token_id", in->token_id);
	if (has_log) {
		cw_kv_int(w, "log_index", in->log_index);
		if (in->log_entry_sha256) {
			cw_kv_text(w, "log_entry_sha256", in->log_entry_sha256);
		}
		if (in->log_root) {
			cw_kv_text(w, "log_root", in->log_root);
		}
		cw_kv_int(w, "log_size", in->log_size);
	}
}

#define N_ASSERTIONS 3
static const char *const assertion_label[N_ASSERTIONS] = {
	"c2pa.actions.v2", "c2pa.hash.data", "dev.kiln.provenance",
};

/* Raw r||s (32 bytes each) of an ES256 signature over msg. */
static int es256_sign(EVP_PKEY *key, const void *msg, size_t n, uint8_t sig[64])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char der[80];
	const unsigned char *p = der;
	size_t dlen = sizeof der;
	ECDSA_SIG *es = NULL;
	const BIGNUM *r, *s;
	int ok = 0;
	if (md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
	    EVP_DigestSign(md, der, &dlen, msg, n) == 1 &&
	    (es = d2i_ECDSA_SIG(NULL, &p, (long)dlen)) != NULL) {
		ECDSA_SIG_get0(es, &r, &s);
		ok = BN_bn2binpad(r, sig, 32) == 32 && BN_bn2binpad(s, sig + 32, 32) == 32;
	}
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(md);
	return ok ? 0 : -1;
}

/* The protected header {1: -7, 33: leaf} as CBOR bytes. */
static void cbor_protected(struct cw *w, const struct kiln_c2pa_signer *s)
{
	cw_map(w, 2);
	cw_uint(w, COSE_ALG);
	cw_int(w, COSE_ES256);
	cw_uint(w, COSE_X5CHAIN);
	cw_bytes(w, s->cert, s->cert_len);
}

/* COSE Sig_structure for a COSE_Sign1 with a detached payload. */
static void cbor_sig_structure(struct cw *w, const struct kiln_buf *prot, const void *payload,
			       size_t n)
{
	cw_array(w, 4);
	cw_text(w, "Signature1");
	cw_bytes(w, prot->data, prot->len);
	cw_bytes(w, "", 0);
	cw_bytes(w, payload, n);
}

/* One manifest store, the hard binding's exclusion being `length` bytes at `start`. */
static int build_store(struct kiln_c2pa_signer *s, const struct kiln_c2pa_in *in,
		       const char *label, const char *iid, const uint8_t hash[32], size_t start,
		       size_t length, struct kiln_buf *j, struct kiln_error *e)
{
	struct kiln_buf a = KILN_BUF_INIT, claim = KILN_BUF_INIT, prot = KILN_BUF_INIT,
			tbs = KILN_BUF_INIT, cose = KILN_BUF_INIT;
	struct cw w = { &a, 0 };
	uint8_t ahash[N_ASSERTIONS][32], sig[64];
	size_t at_store, at_man, at_as, at, i;
	char uri[256];
	int rc = 0;

	/* the manifest store and the assertions, each hashed as its superbox payload */
	if (kiln_jumbf_super_begin(j, kiln_jumbf_uuid_c2pa, "c2pa", &at_store) ||
	    kiln_jumbf_super_begin(j, kiln_jumbf_uuid_c2ma, label, &at_man) ||
	    kiln_jumbf_super_begin(j, kiln_jumbf_uuid_c2as, "c2pa.assertions", &at_as))
		goto nomem;
	for (i = 0; i < N_ASSERTIONS; i++) {
		kiln_buf_reset(&a);
		if (i == 0)
			cbor_actions(&w, in);
		else if (i == 1)
			cbor_hash_data(&w, hash, start, length);
		else
			cbor_provenance(&w, in);
		if (w.err || kiln_jumbf_super_begin(j, kiln_jumbf_uuid_cbor, assertion_label[i],
						    &at) ||
		    kiln_jumbf_content(j, "cbor", a.data, a.len))
			goto nomem;
		kiln_jumbf_end(j, at);
		kiln_sha256_raw(j->data + at + 8, j->len - at - 8, ahash[i]);
	}
	kiln_jumbf_end(j, at_as);

	/* the claim */
	w.b = &claim;
	cw_map(&w, 5 + (in->title != NULL));
	cw_text(&w, "instanceID");
	cw_text(&w, iid);
	cw_text(&w, "claim_generator_info");
	cw_agent(&w, "kiln", KILN_VERSION);
	cw_text(&w, "signature");
	snprintf(uri, sizeof uri, "self#jumbf=/c2pa/%s/c2pa.signature", label);
	cw_text(&w, uri);
	cw_text(&w, "created_assertions");
	cw_array(&w, N_ASSERTIONS);
	for (i = 0; i < N_ASSERTIONS; i++) {
		snprintf(uri, sizeof uri, "self#jumbf=c2pa.assertions/%s", assertion_label[i]);
		cw_map(&w, 2);
		cw_text(&w, "url");
		cw_text(&w, uri);
		cw_text(&w, "hash");
		cw_bytes(&w, ahash[i], 32);
	}
	if (in->title) {
		cw_text(&w, "dc:title");
		cw_text(&w, in->title);
	}
	cw_text(&w, "alg");
	cw_text(&w, "sha256");
	if (w.err || kiln_jumbf_super_begin(j, kiln_jumbf_uuid_c2cl, "c2pa.claim", &at) ||
	    kiln_jumbf_content(j, "cbor", claim.data, claim.len))
		goto nomem;
	kiln_jumbf_end(j, at);

	/* its signature */
	w.b = &prot;
	cbor_protected(&w, s);
	w.b = &tbs;
	cbor_sig_structure(&w, &prot, claim.data, claim.len);
	if (w.err)
		goto nomem;
	if (es256_sign(s->key, tbs.data, tbs.len, sig)) {
		ERR_clear_error();
		rc = kiln_error_set(e, KILN_E_FAILED, label, "OpenSSL could not sign the claim");
		goto out;
	}
	w.b = &cose;
	cw_tag(&w, COSE_TAG);
	cw_array(&w, 4);
	cw_bytes(&w, prot.data, prot.len);
	cw_map(&w, 0);
	cw_null(&w);
	cw_bytes(&w, sig, sizeof sig);
	if (w.err || kiln_jumbf_super_begin(j, kiln_jumbf_uuid_c2cs, "c2pa.signature", &at) ||
	    kiln_jumbf_content(j, "cbor", cose.data, cose.len))
		goto nomem;
	kiln_jumbf_end(j, at);
	kiln_jumbf_end(j, at_man);
	kiln_jumbf_end(j, at_store);
	goto out;
nomem:
	rc = kiln_error_set(e, KILN_E_NOMEM, label, "out of memory");
out:
	kiln_buf_release(&a);
	kiln_buf_release(&claim);
	kiln_buf_release(&prot);
	kiln_buf_release(&tbs);
	kiln_buf_release(&cose);
	return rc;
}

static int check_in(const struct kiln_c2pa_in *in, struct kiln_error *e)
{
	size_t i;
	if (in->format && strcmp(in->format, "image/png") != 0)
		return kiln_error_set(e, KILN_E_USAGE, in->format,
				      "C2PA manifests are embedded in PNGs only so far");
	if (in->source_type != KILN_C2PA_TRAINED &&
	    in->source_type != KILN_C2PA_COMPOSITE_TRAINED &&
	    in->source_type != KILN_C2PA_COMPOSITE_SYNTHETIC)
		return kiln_error_set(e, KILN_E_USAGE, NULL, "unknown digital source type %d",
				      in->source_type);
	if (in->n_edits && !in->edits)
		return kiln_error_set(e, KILN_E_USAGE, NULL, "edits missing");
	for (i = 0; i < in->n_edits; i++)
		if (!in->edits[i].description || !*in->edits[i].description)
			return kiln_error_set(e, KILN_E_USAGE, NULL,
					      "edit %zu has no description", i + 1);
	return 0;
}

int kiln_portfolio_c2pa_sign_png_with(struct kiln_c2pa_signer *s, const void *png, size_t len,
				      const struct kiln_c2pa_in *in, struct kiln_buf *out,
				      struct kiln_error *e)
{
	const uint8_t *p = png;
	struct kiln_buf stripped = KILN_BUF_INIT, j = KILN_BUF_INIT;
	struct png_scan sc;
	uint8_t hash[32], d[32], crc[4], hdr[8];
	char label[64], iid[64], u[37];
	size_t keep = out->len, length = 0;
	struct kiln_sha256 h;
	int rc, round;
	uint32_t c;

	rc = check_in(in, e);
	if (rc)
		return rc;
	if (png_walk(p, len, &sc))
		return kiln_error_set(e, KILN_E_IMAGE, NULL, "%s", sc.why);
	if (sc.n_cabx) {
		if (png_strip_cabx(p, len, &stripped)) {
			rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
			goto out;
		}
		p = (const uint8_t *)stripped.data;
		len = stripped.len;
		rc = png_walk(p, len, &sc);
		if (rc) /* cannot happen: the chunks were checked */
			goto out;
	}
	kiln_sha256_raw(p, len, hash);

	/* the label and instance id depend on the bytes, the signer and the facts signed */
	if (kiln_sha256_init(&h)) {
		rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
		goto out;
	}
	kiln_sha256_update(&h, "kiln c2pa manifest\n", 19);
	kiln_sha256_update(&h, hash, 32);
	kiln_sha256_update(&h, s->cert, s->cert_len);
	kiln_sha256_update(&h, &in->token_id, sizeof in->token_id);
	kiln_sha256_update(&h, &in->log_index, sizeof in->log_index);
	kiln_sha256_final(&h, d, NULL);
	uuid_text(d, u);
	snprintf(label, sizeof label, "urn:c2pa:%s", u);
	kiln_sha256_raw(d, 32, d);
	uuid_text(d, u);
	snprintf(iid, sizeof iid, "xmp:iid:%s", u);

	/* the exclusion's length is part of what it measures: build until they agree */
	for (round = 0; round < 8; round++) {
		kiln_buf_reset(&j);
		rc = build_store(s, in, label, iid, hash, sc.first_idat, length, &j, e);
		if (rc)
			goto out;
		if (j.len + 12 == length)
			break;
		length = j.len + 12;
	}
	if (round == 8 || j.len > 0x7fffffffu) {
		rc = kiln_error_set(e, KILN_E_FAILED, label, "the manifest's size did not settle");
		goto out;
	}

	hdr[0] = (uint8_t)(j.len >> 24);
	hdr[1] = (uint8_t)(j.len >> 16);
	hdr[2] = (uint8_t)(j.len >> 8);
	hdr[3] = (uint8_t)j.len;
	memcpy(hdr + 4, "caBX", 4);
	c = (uint32_t)libdeflate_crc32(0, hdr + 4, 4);
	c = (uint32_t)libdeflate_crc32(c, j.data, j.len);
	crc[0] = (uint8_t)(c >> 24);
	crc[1] = (uint8_t)(c >> 16);
	crc[2] = (uint8_t)(c >> 8);
	crc[3] = (uint8_t)c;
	if (kiln_buf_add(out, p, sc.first_idat) || kiln_buf_add(out, hdr, 8) ||
	    kiln_buf_add(out, j.data, j.len) || kiln_buf_add(out, crc, 4) ||
	    kiln_buf_add(out, p + sc.first_idat, len - sc.first_idat)) {
		out->len = keep;
		if (out->data)
			out->data[keep] = 0;
		rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
	}
out:
	kiln_buf_release(&stripped);
	kiln_buf_release(&j);
	return rc;
}

/* A string and its end into the cache key; NULL as "\x01" (no text is that). */
static void cache_str(struct kiln_sha256 *h, const char *s)
{
	s = s ? s : "\x01";
	kiln_sha256_update(h, s, strlen(s) + 1);
}

/* The cache key: what the manifest depends on. */
static void cache_key(const struct kiln_c2pa_signer *s, const uint8_t hash[32],
		      const struct kiln_c2pa_in *in, char hex[65])
{
	struct kiln_sha256 h;
	int64_t v[4] = { in->source_type, in->token_id, in->log_index, in->log_size };
	const char *strs[3] = { in->title, in->log_entry_sha256, in->log_root };
	if (kiln_sha256_init(&h)) {
		hex[0] = 0;
		return;
	}
	kiln_sha256_update(&h, "kiln c2pa cache 1\n", 18);
	kiln_sha256_update(&h, hash, 32);
	kiln_sha256_update(&h, s->cert, s->cert_len);
	kiln_sha256_update(&h, v, sizeof v);
	for (int i = 0; i < 3; i++)
		cache_str(&h, strs[i]);
	for (size_t i = 0; i < in->n_edits; i++) {
		cache_str(&h, in->edits[i].description);
		cache_str(&h, in->edits[i].agent);
		cache_str(&h, in->edits[i].when);
	}
	kiln_sha256_final(&h, NULL, hex);
}

/* The cached caBX chunk in c[n] spliced into p[len] (no caBX, walked as sc), if it is one and
 * the result checks: 1 used, 0 not, -1 out of memory. */
static int use_cached(struct kiln_c2pa_signer *s, const uint8_t *p, size_t len,
		      const uint8_t hash[32], const struct png_scan *sc, const uint8_t *c,
		      size_t n, struct kiln_buf *out)
{
	size_t keep = out->len;
	struct kiln_c2pa_report r;
	struct kiln_error e;
	int rc;
	if (!s->self && !(s->self = kiln_calloc(1, sizeof *s->self)))
		return -1;
	if (n < 12 || memcmp(c + 4, "caBX", 4) != 0 || (size_t)be32(c) + 12 != n ||
	    !memmem(c, n, s->cert, s->cert_len))
		return 0;
	if (kiln_buf_add(out, p, sc->first_idat) || kiln_buf_add(out, c, n) ||
	    kiln_buf_add(out, p + sc->first_idat, len - sc->first_idat)) {
		out->len = keep;
		return -1;
	}
	/* the bytes without the chunk are p, whose hash is known: the hard binding is checked
	 * against it without hashing the image again */
	rc = verify_png(s->self, out->data + keep, out->len - keep, hash, &r, &e);
	if (rc == 0 && r.ok)
		return 1;
	out->len = keep;
	if (out->data)
		out->data[keep] = 0;
	return e.code == KILN_E_NOMEM ? -1 : 0;
}

/* 64 hex digits into 32 bytes: 0, else -1 */
static int unhex32(const char *h, uint8_t out[32])
{
	for (int i = 0; i < 64; i++) {
		int c = h[i], v = c >= '0' && c <= '9'   ? c - '0'
				  : c >= 'a' && c <= 'f' ? c - 'a' + 10
							 : -1;
		if (v < 0)
			return -1;
		out[i / 2] = (uint8_t)(i % 2 ? out[i / 2] | v : v << 4);
	}
	return h[64] ? -1 : 0;
}

int kiln_portfolio_c2pa_sign_png_cached(struct kiln_c2pa_signer *s, const char *cache_dir,
					const void *png, size_t len, const char *png_sha256,
					const struct kiln_c2pa_in *in, struct kiln_buf *out,
					struct kiln_error *e)
{
	const uint8_t *p = png;
	struct kiln_buf stripped = KILN_BUF_INIT, cached = KILN_BUF_INIT;
	struct png_scan sc;
	struct kiln_error ce;
	uint8_t hash[32];
	char key[65], name[80], *path = NULL;
	size_t keep = out->len;
	int rc;
	if ((rc = check_in(in, e)))
		return rc;
	if (png_walk(p, len, &sc))
		return kiln_error_set(e, KILN_E_IMAGE, NULL, "%s", sc.why);
	if (sc.n_cabx) {
		if (png_strip_cabx(p, len, &stripped)) {
			rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
			goto out;
		}
		p = (const uint8_t *)stripped.data;
		len = stripped.len;
		if ((rc = png_walk(p, len, &sc)))
			goto out;
	}
	/* the caller's hash of png is the one of p when it had no caBX chunk */
	if (sc.n_cabx || !png_sha256 || unhex32(png_sha256, hash))
		kiln_sha256_raw(p, len, hash);
	cache_key(s, hash, in, key);
	snprintf(name, sizeof name, "%s.cabx", key);
	if (!key[0] || !(path = kiln_fs_join(cache_dir, name))) {
		rc = kiln_error_set(e, KILN_E_NOMEM, cache_dir, "out of memory");
		goto out;
	}
	/* no stat first: a missing entry is the failed read (one system call fewer a lookup) */
	if (kiln_fs_read_limited(path, &cached, 1 << 24, 0, &ce) != 0) {
		kiln_error_clear(&ce);
	} else {
		int used = use_cached(s, p, len, hash, &sc, (const uint8_t *)cached.data,
				      cached.len, out);
		if (used < 0) {
			rc = kiln_error_set(e, KILN_E_NOMEM, path, "out of memory");
			goto out;
		}
		if (used)
			goto out;
	}
	rc = kiln_portfolio_c2pa_sign_png_with(s, p, len, in, out, e);
	if (rc)
		goto out;
	/* keep the chunk for the next time (a cache that cannot be written only costs a
	 * signature then) */
	{
		const uint8_t *c = (const uint8_t *)out->data + keep + sc.first_idat;
		if (kiln_fs_write_atomic_sync(path, c, (size_t)be32(c) + 12, 0, &ce))
			kiln_error_clear(&ce);
	}
out:
	kiln_buf_release(&stripped);
	kiln_buf_release(&cached);
	free(path);
	return rc;
}

int kiln_portfolio_c2pa_sign_buf(struct kiln_c2pa_signer *s, struct kiln_buf *img,
				 const struct kiln_c2pa_in *in, struct kiln_error *e)
{
	struct kiln_buf out = KILN_BUF_INIT, old;
	int rc;
	kiln_buf_init(&out, img->max);
	rc = kiln_portfolio_c2pa_sign_png_with(s, img->data, img->len, in, &out, e);
	if (rc) {
		kiln_buf_release(&out);
		return rc;
	}
	old = *img;
	*img = out;
	kiln_buf_release(&old);
	return 0;
}

int kiln_portfolio_c2pa_sign_png(const void *png, size_t len, const struct kiln_c2pa_in *in,
				 const char *keys_dir, struct kiln_buf *out,
				 struct kiln_error *e)
{
	struct kiln_c2pa_signer *s;
	int rc = kiln_portfolio_c2pa_signer_new(&s, keys_dir, e);
	if (rc)
		return rc;
	rc = kiln_portfolio_c2pa_sign_png_with(s, png, len, in, out, e);
	kiln_portfolio_c2pa_signer_free(s);
	return rc;
}

/* --- verification ---------------------------------------------------------------------- */

static int finding(struct kiln_c2pa_report *r, const char *check, const char *fmt, ...)
	KILN_PRINTF(3, 4);
static int finding(struct kiln_c2pa_report *r, const char *check, const char *fmt, ...)
{
	va_list ap;
	r->ok = 0;
	snprintf(r->check, sizeof r->check, "%s", check);
	va_start(ap, fmt);
	vsnprintf(r->detail, sizeof r->detail, fmt, ap);
	va_end(ap);
	return 1;
}

/* SHA-256 of p[n] without the one excluded range [xs, xs + xl). */
static void hash_excluding(const uint8_t *p, size_t n, size_t xs, size_t xl, uint8_t out[32])
{
	struct kiln_sha256 h;
	if (kiln_sha256_init(&h)) {
		memset(out, 0, 32);
		return;
	}
	kiln_sha256_update(&h, p, xs);
	kiln_sha256_update(&h, p + xs + xl, n - xs - xl);
	kiln_sha256_final(&h, out, NULL);
}

/* The hard binding: one exclusion, exactly the caBX chunk; the hash of the rest. */
static int check_hash_data(const cbor_item_t *hd, const uint8_t *png, size_t len,
			   const uint8_t *known, const struct png_scan *sc,
			   struct kiln_c2pa_report *r)
{
	cbor_item_t *ex = map_get(hd, "exclusions"), *x;
	const uint8_t *want;
	size_t wn;
	uint64_t xs, xl;
	uint8_t got[32];
	char alg[16];
	if (get_text(map_get(hd, "alg"), alg, sizeof alg) == 0 && strcmp(alg, "sha256") != 0)
		return finding(r, "hash.data", "unsupported hash algorithm %s", alg);
	if (get_bytes(map_get(hd, "hash"), &want, &wn) || wn != 32)
		return finding(r, "hash.data", "c2pa.hash.data has no SHA-256 hash");
	if (!ex || !cbor_isa_array(ex) || cbor_array_size(ex) != 1)
		return finding(r, "hash.data",
			       "c2pa.hash.data must exclude exactly the caBX chunk");
	x = cbor_array_handle(ex)[0];
	if (get_uint(map_get(x, "start"), &xs) || get_uint(map_get(x, "length"), &xl))
		return finding(r, "hash.data", "an exclusion lacks its start or length");
	if (xs != sc->cabx || xl != sc->cabx_len)
		return finding(r, "hash.data",
			       "the exclusion (%llu bytes at %llu) is not the caBX chunk (%zu "
			       "bytes at %zu)", (unsigned long long)xl, (unsigned long long)xs,
			       sc->cabx_len, sc->cabx);
	if (known)
		memcpy(got, known, 32);
	else
		hash_excluding(png, len, sc->cabx, sc->cabx_len, got);
	if (memcmp(got, want, 32) != 0)
		return finding(r, "hash.data",
			       "the image bytes are not those that were signed (SHA-256 differs)");
	return 0;
}

/* Every created assertion's hash against its box, and the hard binding. */
static int check_assertions(const cbor_item_t *claim, const struct kiln_jumbf_super *store,
			    const uint8_t *png, size_t len, const uint8_t *known,
			    const struct png_scan *sc,
			    struct kiln_c2pa_report *r, struct kiln_error *e, int *nomem)
{
	cbor_item_t *ca = map_get(claim, "created_assertions");
	size_t i, n;
	int binding = 0, actions = 0;
	if (!ca || !cbor_isa_array(ca) || !cbor_array_size(ca))
		return finding(r, "claim", "the claim has no created_assertions");
	n = cbor_array_size(ca);
	for (i = 0; i < n; i++) {
		cbor_item_t *hu = cbor_array_handle(ca)[i], *data = NULL;
		struct kiln_jumbf_super as;
		struct kiln_jumbf_box content;
		struct cbor_load_result lr;
		const uint8_t *want;
		char url[256];
		const char *lab;
		uint8_t got[32];
		size_t off = 0, wn;
		int bad;
		if (get_text(map_get(hu, "url"), url, sizeof url) ||
		    get_bytes(map_get(hu, "hash"), &want, &wn) || wn != 32)
			return finding(r, "claim", "created assertion %zu is not a hashed URI",
				       i + 1);
		lab = strrchr(url, '/');
		lab = lab ? lab + 1 : url;
		if (strstr(url, "c2pa.assertions/") == NULL ||
		    kiln_jumbf_find(store->contents, store->contents_len, lab, NULL, &as))
			return finding(r, "assertion", "%s: missing from the assertion store", lab);
		kiln_sha256_raw(as.payload, as.payload_len, got);
		if (memcmp(got, want, 32) != 0)
			return finding(r, "assertion", "%s: its hash is not the claim's (changed)",
				       lab);
		if (strcmp(lab, "c2pa.actions.v2") == 0 || strcmp(lab, "c2pa.actions") == 0)
			actions = 1;
		if (strcmp(lab, "c2pa.hash.data") != 0)
			continue;
		binding = 1;
		if (kiln_jumbf_next(as.contents, as.contents_len, &off, &content) != 1 ||
		    strcmp(content.type, "cbor") != 0)
			return finding(r, "assertion", "%s: not a CBOR assertion", lab);
		data = cbor_load_checked(content.body, content.body_len, &lr);
		if (!data) {
			if (lr.error.code == CBOR_ERR_MEMERROR) {
				*nomem = 1;
				return kiln_error_set(e, KILN_E_NOMEM, lab, "out of memory");
			}
			return finding(r, "assertion", "%s: not valid CBOR", lab);
		}
		bad = check_hash_data(data, png, len, known, sc, r);
		cbor_decref(&data);
		if (bad)
			return bad;
	}
	if (!binding)
		return finding(r, "hash.data", "the claim has no c2pa.hash.data (no hard binding)");
	if (!actions)
		return finding(r, "claim", "the claim has no actions assertion");
	return 0;
}

/* The provenance assertion, if any, as compact JSON into r->provenance. */
static void read_provenance(const struct kiln_jumbf_super *store, struct kiln_c2pa_report *r)
{
	struct kiln_jumbf_super as;
	struct kiln_jumbf_box content;
	struct cbor_load_result lr;
	cbor_item_t *m;
	size_t off = 0, i, n, o = 0;
	if (kiln_jumbf_find(store->contents, store->contents_len, "dev.kiln.provenance", NULL,
			    &as) ||
	    kiln_jumbf_next(as.contents, as.contents_len, &off, &content) != 1)
		return;
	m = cbor_load_checked(content.body, content.body_len, &lr);
	if (!m)
		return;
	if (cbor_isa_map(m)) {
		n = cbor_map_size(m);
		o += (size_t)snprintf(r->provenance + o, sizeof r->provenance - o, "{");
		for (i = 0; i < n && o < sizeof r->provenance; i++) {
			struct cbor_pair pr = cbor_map_handle(m)[i];
			char k[64], v[160];
			if (get_text(pr.key, k, sizeof k))
				continue;
			if (get_text(pr.value, v, sizeof v) == 0)
				o += (size_t)snprintf(r->provenance + o, sizeof r->provenance - o,
						      "%s\"%s\":\"%s\"", o > 1 ? "," : "", k, v);
			else if (cbor_isa_uint(pr.value))
				o += (size_t)snprintf(r->provenance + o, sizeof r->provenance - o,
						      "%s\"%s\":%llu", o > 1 ? "," : "", k,
						      (unsigned long long)cbor_get_int(pr.value));
			else if (cbor_isa_negint(pr.value))
				o += (size_t)snprintf(r->provenance + o, sizeof r->provenance - o,
						      "%s\"%s\":-%llu", o > 1 ? "," : "", k,
						      (unsigned long long)cbor_get_int(pr.value) +
							      1);
		}
		if (o < sizeof r->provenance - 1)
			snprintf(r->provenance + o, sizeof r->provenance - o, "}");
		else
			r->provenance[0] = 0;
	}
	cbor_decref(&m);
}

/* An EKU from C2PA's list (c2pa-rs' valid_eku_oids.cfg, less timeStamping and OCSPSigning,
 * which sign no manifest): emailProtection, documentSigning, Microsoft's and C2PA's own. */
static int c2pa_eku(X509 *leaf)
{
	static const char *const ok[] = { "1.3.6.1.5.5.7.3.4", "1.3.6.1.5.5.7.3.36",
					  "1.3.6.1.4.1.311.76.59.1.9", "1.3.6.1.4.1.62558.2.1" };
	EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(leaf, NID_ext_key_usage, NULL, NULL);
	int found = 0;
	for (int i = 0; eku && i < sk_ASN1_OBJECT_num(eku) && !found; i++) {
		char oid[64];
		if (OBJ_obj2txt(oid, sizeof oid, sk_ASN1_OBJECT_value(eku, i), 1) <= 0)
			continue;
		for (size_t k = 0; k < sizeof ok / sizeof *ok; k++)
			found |= !strcmp(oid, ok[k]);
	}
	EXTENDED_KEY_USAGE_free(eku);
	return found;
}

/* The leaf's profile, as C2PA's validators check it (x509.c says which). */
static int check_leaf(X509 *leaf, struct kiln_c2pa_report *r)
{
	uint32_t flags = X509_get_extension_flags(leaf);
	if (X509_get_version(leaf) != 2)
		return finding(r, "certificate", "the signer's certificate is not X.509 v3");
	if (X509_check_ca(leaf))
		return finding(r, "certificate", "the signer's certificate is a CA");
	/* without the extension OpenSSL reports every usage: ask whether it is there */
	if (!(flags & EXFLAG_KUSAGE) || !(X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE))
		return finding(r, "certificate", "the signer's certificate lacks digitalSignature");
	if (!(flags & EXFLAG_XKUSAGE) || (X509_get_extended_key_usage(leaf) & XKU_ANYEKU) ||
	    !c2pa_eku(leaf))
		return finding(r, "certificate",
			       "the signer's certificate lacks an extended key usage C2PA allows "
			       "(emailProtection, documentSigning)");
	if (X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0 ||
	    X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0)
		return finding(r, "certificate", "the signer's certificate is not valid now");
	ERR_clear_error();
	return 0;
}


int kiln_portfolio_c2pa_verifier_new(struct kiln_c2pa_verifier **vp, const char *root_pem,
				     struct kiln_error *e)
{
	struct kiln_buf b = KILN_BUF_INIT;
	struct kiln_c2pa_verifier *v;
	BIO *bio = NULL;
	X509 *root;
	int rc, n = 0;
	*vp = NULL;
	v = kiln_calloc(1, sizeof *v);
	if (!v)
		return kiln_error_set(e, KILN_E_NOMEM, root_pem, "out of memory");
	rc = kiln_fs_read_limited(root_pem, &b, 1 << 20, 0, e);
	if (rc)
		goto out;
	v->root_pem = kiln_strdup(root_pem);
	v->store = X509_STORE_new();
	bio = BIO_new_mem_buf(b.data, (int)b.len);
	if (!v->root_pem || !v->store || !bio) {
		rc = kiln_error_set(e, KILN_E_NOMEM, root_pem, "out of memory");
		goto out;
	}
	while ((root = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		int added = X509_STORE_add_cert(v->store, root);
		X509_free(root);
		if (added != 1) {
			rc = kiln_error_set(e, KILN_E_NOMEM, root_pem, "out of memory");
			goto out;
		}
		n++;
	}
	if (!n) {
		rc = kiln_error_set(e, KILN_E_IO, root_pem, "holds no PEM certificate");
		goto out;
	}
	*vp = v;
	v = NULL;
out:
	ERR_clear_error();
	BIO_free(bio);
	kiln_buf_release(&b);
	kiln_portfolio_c2pa_verifier_free(v);
	return rc;
}

void kiln_portfolio_c2pa_verifier_free(struct kiln_c2pa_verifier *v)
{
	if (!v)
		return;
	X509_STORE_free(v->store);
	X509_free(v->leaf);
	free(v->leaf_der);
	free(v->root_pem);
	free(v);
}

static int check_chain(X509 *leaf, struct kiln_c2pa_verifier *v, struct kiln_c2pa_report *r,
		       struct kiln_error *e)
{
	X509_STORE_CTX *ctx;
	unsigned char *der = NULL;
	uint8_t id[32];
	int n = i2d_X509(leaf, &der), rc = 0;
	if (n <= 0)
		return kiln_error_set(e, KILN_E_NOMEM, v->root_pem, "out of memory");
	kiln_sha256_raw(der, (size_t)n, id);
	OPENSSL_free(der);
	if (v->has_chained && memcmp(id, v->chained, 32) == 0)
		return 0;
	ctx = X509_STORE_CTX_new();
	if (!ctx || X509_STORE_CTX_init(ctx, v->store, leaf, NULL) != 1) {
		rc = kiln_error_set(e, KILN_E_NOMEM, v->root_pem, "out of memory");
		goto out;
	}
	if (X509_verify_cert(ctx) != 1) {
		finding(r, "chain", "the signer does not chain to the root in %s: %s", v->root_pem,
			X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	} else {
		memcpy(v->chained, id, 32);
		v->has_chained = 1;
	}
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	return rc;
}

/* The COSE_Sign1 over the claim bytes; *leafp gets the x5chain's first certificate. A
 * finding goes to r (returning 0); nonzero is an error in e. */
static int check_signature(struct kiln_c2pa_verifier *v, const struct kiln_jumbf_super *sigbox,
			   const uint8_t *claim, size_t claim_len, X509 **leafp,
			   struct kiln_c2pa_report *r, struct kiln_error *e)
{
	struct kiln_jumbf_box content;
	struct cbor_load_result lr;
	cbor_item_t *arr = NULL, *prot = NULL, *chain, *alg;
	const uint8_t *pb, *sig, *cert;
	size_t off = 0, pn, sn, cn;
	struct kiln_buf tbs = KILN_BUF_INIT, pbuf = KILN_BUF_INIT;
	struct cw w = { &tbs, 0 };
	EVP_MD_CTX *md = NULL;
	ECDSA_SIG *es = NULL;
	unsigned char *der = NULL;
	int rc = 0, dlen;
	if (kiln_jumbf_next(sigbox->contents, sigbox->contents_len, &off, &content) != 1 ||
	    strcmp(content.type, "cbor") != 0)
		return finding(r, "signature", "the signature box holds no CBOR") - 1;
	/* libcbor 0.8's decoder refuses tags 18 to 20 as "malformed" (its table of tag heads
	 * skips them), so the tag's one head byte (0xd2) is read here and the array after it
	 * is decoded alone */
	if (content.body_len < 1 || content.body[0] != 0xc0 + COSE_TAG)
		return finding(r, "signature", "not a tagged COSE_Sign1 (tag 18)") - 1;
	arr = cbor_load_checked(content.body + 1, content.body_len - 1, &lr);
	if (!arr) {
		if (lr.error.code == CBOR_ERR_MEMERROR)
			return kiln_error_set(e, KILN_E_NOMEM, "c2pa.signature", "out of memory");
		return finding(r, "signature", "the COSE_Sign1 is not valid CBOR") - 1;
	}
	if (!cbor_isa_array(arr) || cbor_array_size(arr) != 4 ||
	    get_bytes(cbor_array_handle(arr)[0], &pb, &pn) ||
	    !cbor_isa_map(cbor_array_handle(arr)[1]) ||
	    get_bytes(cbor_array_handle(arr)[3], &sig, &sn)) {
		finding(r, "signature", "the COSE_Sign1 is not [protected, unprotected, payload, "
			"signature]");
		goto out;
	}
	if (!is_null(cbor_array_handle(arr)[2])) {
		finding(r, "signature", "the payload is not detached");
		goto out;
	}
	prot = cbor_load_checked(pb, pn, &lr);
	if (!prot) {
		finding(r, "signature", "the protected header is not CBOR");
		goto out;
	}
	alg = map_get_int(prot, COSE_ALG);
	if (!alg || !cbor_isa_negint(alg) || cbor_get_int(alg) != (uint64_t)(-(COSE_ES256 + 1))) {
		finding(r, "signature", "the algorithm is not ES256");
		goto out;
	}
	chain = map_get_int(prot, COSE_X5CHAIN);
	if (chain && cbor_isa_array(chain) && cbor_array_size(chain) > 0)
		chain = cbor_array_handle(chain)[0];
	if (get_bytes(chain, &cert, &cn)) {
		finding(r, "signature", "the protected header has no x5chain");
		goto out;
	}
	if (sn != 64) {
		finding(r, "signature", "an ES256 signature is 64 bytes (r||s), this one %zu", sn);
		goto out;
	}
	if (v && v->leaf && cn == v->leaf_len && !memcmp(cert, v->leaf_der, cn) &&
	    X509_up_ref(v->leaf) == 1) {
		*leafp = v->leaf;
	} else {
		const uint8_t *c = cert;
		*leafp = d2i_X509(NULL, &c, (long)cn);
		if (!*leafp) {
			finding(r, "signature", "the x5chain certificate is not DER X.509");
			goto out;
		}
		if (v) { /* remembered for the next image (not when memory is short) */
			unsigned char *d = kiln_malloc(cn);
			if (d && X509_up_ref(*leafp) == 1) {
				memcpy(d, cert, cn);
				X509_free(v->leaf);
				free(v->leaf_der);
				v->leaf = *leafp;
				v->leaf_der = d;
				v->leaf_len = cn;
				v->leaf_ok = 0;
			} else {
				free(d);
			}
		}
	}
	X509_NAME_oneline(X509_get_subject_name(*leafp), r->signer, sizeof r->signer);
	if (kiln_buf_add(&pbuf, pb, pn)) {
		rc = kiln_error_set(e, KILN_E_NOMEM, "c2pa.signature", "out of memory");
		goto out;
	}
	cbor_sig_structure(&w, &pbuf, claim, claim_len);
	if (w.err) {
		rc = kiln_error_set(e, KILN_E_NOMEM, "c2pa.signature", "out of memory");
		goto out;
	}
	es = ECDSA_SIG_new();
	if (es) {
		BIGNUM *br = BN_bin2bn(sig, 32, NULL), *bs = BN_bin2bn(sig + 32, 32, NULL);
		if (!br || !bs || ECDSA_SIG_set0(es, br, bs) != 1) {
			BN_free(br);
			BN_free(bs);
			ECDSA_SIG_free(es);
			es = NULL;
		}
	}
	dlen = es ? i2d_ECDSA_SIG(es, &der) : -1;
	md = EVP_MD_CTX_new();
	if (dlen <= 0 || !md) {
		rc = kiln_error_set(e, KILN_E_NOMEM, "c2pa.signature", "out of memory");
		goto out;
	}
	if (EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, X509_get0_pubkey(*leafp)) != 1 ||
	    EVP_DigestVerify(md, der, (size_t)dlen, (const unsigned char *)tbs.data, tbs.len) != 1)
		finding(r, "signature", "the claim's signature is wrong (the claim or the "
			"signature changed, or another key signed it)");
out:
	ERR_clear_error();
	EVP_MD_CTX_free(md);
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	if (prot)
		cbor_decref(&prot);
	if (arr)
		cbor_decref(&arr);
	kiln_buf_release(&tbs);
	kiln_buf_release(&pbuf);
	return rc;
}

int kiln_portfolio_c2pa_verify_png(const void *png, size_t len, const char *root_pem,
				   struct kiln_c2pa_report *r, struct kiln_error *e)
{
	struct kiln_c2pa_verifier *v = NULL;
	int rc;
	if (root_pem && (rc = kiln_portfolio_c2pa_verifier_new(&v, root_pem, e)))
		return rc;
	rc = kiln_portfolio_c2pa_verify_png_with(v, png, len, r, e);
	kiln_portfolio_c2pa_verifier_free(v);
	return rc;
}

int kiln_portfolio_c2pa_verify_png_with(struct kiln_c2pa_verifier *v, const void *png,
					size_t len, struct kiln_c2pa_report *r,
					struct kiln_error *e)
{
	return verify_png(v, png, len, NULL, r, e);
}

int kiln_portfolio_c2pa_verify_png_hashed(struct kiln_c2pa_verifier *v, const void *png,
					  size_t len, const uint8_t sha256[32],
					  struct kiln_c2pa_report *r, struct kiln_error *e)
{
	return verify_png(v, png, len, sha256, r, e);
}

/* known: the SHA-256 of png without its caBX chunk, or NULL (hashed here) */
static int verify_png(struct kiln_c2pa_verifier *v, const void *png, size_t len,
		      const uint8_t *known, struct kiln_c2pa_report *r, struct kiln_error *e)
{
	const uint8_t *p = png;
	struct png_scan sc;
	struct kiln_jumbf_box top, content;
	struct kiln_jumbf_super store, man, last, as, cl, sg;
	struct cbor_load_result lr;
	cbor_item_t *claim = NULL;
	X509 *leaf = NULL;
	size_t off = 0;
	char ref[256], want[256];
	int rc = 0, nomem = 0, found = 0;
	memset(r, 0, sizeof *r);
	r->ok = 1;
	if (png_walk(p, len, &sc)) {
		finding(r, "png", "%s", sc.why);
		return 0;
	}
	if (!sc.n_cabx) {
		finding(r, "manifest", "no C2PA manifest (no caBX chunk)");
		return 0;
	}
	if (sc.n_cabx > 1 || sc.cabx_after_idat) {
		finding(r, "manifest", sc.n_cabx > 1 ? "more than one caBX chunk"
						     : "the caBX chunk is after the image data");
		return 0;
	}
	/* the store, then its last manifest: the active one */
	if (kiln_jumbf_next(p + sc.cabx + 8, sc.cabx_len - 12, &off, &top) != 1 ||
	    off != sc.cabx_len - 12 || kiln_jumbf_super_parse(&top, &store) ||
	    memcmp(store.uuid, kiln_jumbf_uuid_c2pa, 16) != 0 || strcmp(store.label, "c2pa") != 0) {
		finding(r, "jumbf", "the caBX chunk does not hold one C2PA manifest store");
		return 0;
	}
	off = 0;
	{
		int k;
		while ((k = kiln_jumbf_next(store.contents, store.contents_len, &off, &top)) == 1)
			if (kiln_jumbf_super_parse(&top, &man) == 0 &&
			    memcmp(man.uuid, kiln_jumbf_uuid_c2ma, 16) == 0) {
				last = man;
				found = 1;
			}
		if (k < 0 || !found) {
			finding(r, "jumbf", "the manifest store holds no standard manifest");
			return 0;
		}
	}
	snprintf(r->label, sizeof r->label, "%s", last.label);
	if (kiln_jumbf_find(last.contents, last.contents_len, "c2pa.assertions",
			    kiln_jumbf_uuid_c2as, &as) ||
	    kiln_jumbf_find(last.contents, last.contents_len, "c2pa.claim", kiln_jumbf_uuid_c2cl,
			    &cl) ||
	    kiln_jumbf_find(last.contents, last.contents_len, "c2pa.signature",
			    kiln_jumbf_uuid_c2cs, &sg)) {
		finding(r, "jumbf", "the manifest lacks its assertion store, claim or signature");
		return 0;
	}
	off = 0;
	if (kiln_jumbf_next(cl.contents, cl.contents_len, &off, &content) != 1 ||
	    strcmp(content.type, "cbor") != 0) {
		finding(r, "claim", "the claim box holds no CBOR");
		return 0;
	}
	claim = cbor_load_checked(content.body, content.body_len, &lr);
	if (!claim) {
		if (lr.error.code == CBOR_ERR_MEMERROR)
			return kiln_error_set(e, KILN_E_NOMEM, r->label, "out of memory");
		finding(r, "claim", "the claim is not valid CBOR");
		return 0;
	}
	snprintf(want, sizeof want, "self#jumbf=/c2pa/%s/c2pa.signature", last.label);
	if (get_text(map_get(claim, "signature"), ref, sizeof ref) || strcmp(ref, want) != 0) {
		finding(r, "claim", "the claim's signature reference is not its own signature box");
		goto out;
	}
	if (!map_get(claim, "instanceID") || !map_get(claim, "claim_generator_info")) {
		finding(r, "claim", "the claim lacks instanceID or claim_generator_info");
		goto out;
	}
	/* the signature first (as c2pa-rs does): what the assertions are checked against is
	 * only worth anything when the claim that lists them is the signer's */
	rc = check_signature(v, &sg, content.body, content.body_len, &leaf, r, e);
	if (rc || !r->ok)
		goto out;
	if (!(v && leaf == v->leaf && v->leaf_ok)) {
		if (check_leaf(leaf, r))
			goto out;
		if (v && leaf == v->leaf)
			v->leaf_ok = 1;
	}
	rc = check_assertions(claim, &as, p, len, known, &sc, r, e, &nomem);
	if (nomem)
		goto out;
	rc = 0;
	if (!r->ok)
		goto out;
	if (v && v->store)
		rc = check_chain(leaf, v, r, e);
	if (!rc && r->ok)
		read_provenance(&as, r);
out:
	X509_free(leaf);
	if (claim)
		cbor_decref(&claim);
	return rc;
}
