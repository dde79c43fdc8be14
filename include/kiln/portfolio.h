/* kiln/portfolio.h: the Provenance Portfolio: the studio's keys, the signed append-only log of
 * how every token was made, and the verifiable folder a release carries (dist/portfolio/).
 *
 * Keys. The studio's Ed25519 signing key lives in a keys folder outside the project (the
 * command chooses it: KILN_KEYS_DIR or ~/.config/kiln/keys/; the library is always given the
 * folder): folder mode 0700, files 0600, never overwritten. Only public parts are ever copied
 * into dist/.
 *
 * Ownership: every struct here is filled by its _load/_new and emptied by its _release/_free,
 * which accept an empty or NULL struct.
 */
#ifndef KILN_PORTFOLIO_H
#define KILN_PORTFOLIO_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/buf.h"
#include "kiln/error.h"

/* ---- keys (keys.c) ---- */

#define KILN_KEYS_SIGNING "signing-ed25519.key"     /* PKCS#8 PEM, 0600 */
#define KILN_KEYS_SIGNING_PUB "signing-ed25519.pub" /* SubjectPublicKeyInfo PEM */
#define KILN_KEYS_STUDIO "studio"                   /* the studio's name, one line */
#define KILN_STUDIO_MAX 128

struct kiln_keys {
	char studio[KILN_STUDIO_MAX]; /* the signer's name (signed notes name it) */
	uint8_t pub[32];              /* raw Ed25519 public key */
	char *pub_pem;                /* SubjectPublicKeyInfo PEM text; owned */
	char key_hint[65];            /* hex SHA-256 of the raw public key: the bundles' hint */
	void *pkey;                   /* EVP_PKEY with the private key; NULL when loaded public */
};

/* Make the studio's keys in dir (created 0700 when missing): an Ed25519 key pair and the
 * studio name. Refuses (KILN_E_STATE, naming the file) when a key is already there: a studio
 * key is never replaced silently, every signature made with it would stop verifying. studio:
 * 1..127 printable characters, no '+' or space (a signed note's key name). */
int kiln_keys_init(const char *dir, const char *studio, struct kiln_error *e) KILN_MUST_CHECK;
/* Load the keys of dir; with_private 0 loads the public key only. KILN_E_STATE with a hint
 * when there are none. */
int kiln_keys_load(const char *dir, int with_private, struct kiln_keys *k, struct kiln_error *e)
	KILN_MUST_CHECK;
void kiln_keys_release(struct kiln_keys *k);
/* Ed25519 signature of n bytes. */
int kiln_keys_sign(const struct kiln_keys *k, const void *msg, size_t n, uint8_t sig[64],
		   struct kiln_error *e) KILN_MUST_CHECK;
/* 1 when sig is pub's Ed25519 signature of msg, else 0. */
int kiln_ed25519_verify(const uint8_t pub[32], const void *msg, size_t n, const uint8_t sig[64]);
/* The raw key from a SubjectPublicKeyInfo PEM of an Ed25519 key: 0, or -1. */
int kiln_ed25519_pub_from_pem(const char *pem, size_t len, uint8_t pub[32]);
/* C2SP signed-note key id: SHA-256(name || 0x0A || 0x01 || pub)[:4], big-endian. */
uint32_t kiln_note_key_id(const char *name, const uint8_t pub[32]);
/* The note verifier key "name+hex8(id)+base64(0x01 || pub)" (C2SP signed-note). */
int kiln_note_vkey(const char *name, const uint8_t pub[32], char *out, size_t cap);

/* ---- the log (log.c) ----
 *
 * The portfolio log is the catalog's table portfolio_log: one canonical JSON line per fact
 * (keys sorted, no spaces, UTF-8), {"at", "fact", "item"?, "kind", "prev", "seq"}, where prev
 * is the SHA-256 (hex) of the line before (64 zeros for the first) and seq the line's index.
 * Lines are only ever appended. Kinds: dataset.added, model.registered, render (engine,
 * endpoint, request, seed, image, what the server ran), plan, qa.gate, review.decision,
 * polish.step, edit.human (catalog events of those kinds), release. Prompts never enter the
 * log: every prompt, negative prompt and infotext is replaced by "sha256:<hex of its UTF-8>",
 * and the release publishes the texts (prompts: public) or only these hashes (hashed). The
 * log is a Merkle tree as RFC 6962 2.1 builds it (a leaf per line, without its newline). */

#define KILN_LOG_ZERO "0000000000000000000000000000000000000000000000000000000000000000"

struct kiln_catalog;

/* The log as loaded: lines (no newline), their leaf hashes, the root. Owned. */
struct kiln_plog {
	char **lines;
	size_t n;
	uint8_t (*leaves)[32];
	uint8_t root[32];
};

/* Append every fact the catalog holds and the log lacks (datasets, models, accepted renders,
 * events), then, when release_fact is not NULL (a JSON object), a release entry unless the last
 * release entry's fact is the same. One transaction. */
int kiln_portfolio_log_sync(struct kiln_catalog *c, const char *release_fact,
			    struct kiln_error *e) KILN_MUST_CHECK;
/* The number of entries the log holds after a sync, release entries aside: every fact the
 * catalog knows, logged or not (nothing is written). */
int kiln_portfolio_log_facts(struct kiln_catalog *c, uint64_t *n, struct kiln_error *e)
	KILN_MUST_CHECK;
/* Append one entry the release makes itself (a prompt.redacted step), with index seq after the
 * seq lines the log has, the last of which is prev_line (NULL: none): kind, item, the fact (a
 * JSON object; prompts committed to by hash), src and src_id = seq in the catalog. *line: the
 * line written (caller frees). One transaction. */
int kiln_portfolio_log_append(struct kiln_catalog *c, const char *src, uint64_t seq,
			      const char *prev_line, const char *kind, uint64_t item,
			      const char *fact_json, char **line, struct kiln_error *e)
	KILN_MUST_CHECK;
/* Load the log (and its Merkle tree root). */
int kiln_portfolio_log_load(struct kiln_catalog *c, struct kiln_plog *log, struct kiln_error *e)
	KILN_MUST_CHECK;
void kiln_plog_release(struct kiln_plog *log);
/* The prompt commitment of a text: "sha256:" + 64 hex. */
void kiln_prompt_hash(const char *text, char out[72]);

/* The C2SP signed note of a checkpoint: "origin\nsize\nbase64(root)\n\n— name
 * base64(keyid||sig)\n", signed over the body (the first three lines). Appended to out. */
int kiln_checkpoint_sign(const struct kiln_keys *k, const char *origin, uint64_t size,
			 const uint8_t root[32], struct kiln_buf *out, struct kiln_error *e)
	KILN_MUST_CHECK;
/* Parse and check a checkpoint note with the key pub and signer name: 0 and the size and root
 * when the signature holds, else -1 with why in why. */
int kiln_checkpoint_verify(const char *note, size_t len, const char *name, const uint8_t pub[32],
			   char *origin, size_t ocap, uint64_t *size, uint8_t root[32],
			   char *why, size_t wcap);

/* ---- attestations (attest.c): in-toto Statement v1 in DSSE in a Sigstore bundle v0.3 ---- */

#define KILN_INTOTO_PAYLOAD_TYPE "application/vnd.in-toto+json"
#define KILN_SIGSTORE_BUNDLE_V03 "application/vnd.dev.sigstore.bundle.v0.3+json"

/* DSSE's pre-authentication encoding: "DSSEv1 " len(type) " " type " " len(body) " " body,
 * lengths in ASCII decimal. Appended to out. */
int kiln_dsse_pae(const char *type, const void *body, size_t len, struct kiln_buf *out)
	KILN_MUST_CHECK;
/* A Sigstore bundle v0.3 (JSON text, appended to out) whose DSSE envelope carries payload
 * (an in-toto Statement, JSON) signed with the studio key; verificationMaterial names the key
 * by its hint (publicKey.hint: hex SHA-256 of the raw key), no transparency log entry. */
int kiln_sigstore_bundle(const struct kiln_keys *k, const char *payload, size_t len,
			 struct kiln_buf *out, struct kiln_error *e) KILN_MUST_CHECK;
/* Check a bundle's DSSE signature with pub: 0 and the payload appended to payload_out, else
 * -1 with why. */
int kiln_sigstore_bundle_verify(const char *bundle, size_t len, const uint8_t pub[32],
				struct kiln_buf *payload_out, char *why, size_t wcap);

/* ---- the folder (portfolio.c): dist/portfolio/, written by the release ---- */

/* One released token, as the release wrote it. Strings borrowed. */
struct kiln_portfolio_token {
	uint64_t id;
	const char *traits_json;  /* {"Layer": "Value"} as the catalog holds them */
	const char *render_image; /* SHA-256 of the accepted image in the store (the catalog's) */
	const char *image_file;   /* relative to dist: images/<id>.<ext> */
	const char *image_sha;    /* SHA-256 of the released image file */
	const char *thumb_file;   /* relative to dist, or NULL */
	const char *meta_file;    /* relative to dist (metadata/<id>.json), or NULL */
	const uint32_t *traits;   /* spec->nlayers trait indexes (compose: its layer files are
				     the artist files it depends on), or NULL */
	long legendary;           /* index into spec->legendaries, or -1 */
};

struct kiln_spec;

struct kiln_portfolio_in {
	struct kiln_catalog *catalog;
	const struct kiln_spec *spec; /* the artist files (layers, legendaries) with their hashes */
	const char *keys_dir;     /* the studio's keys (never copied: only public parts) */
	const char *dist;         /* the release folder being written; portfolio/ goes in it */
	const char *name, *symbol, *description;
	const char *engine;
	int prompts_hashed;       /* portfolio.prompts: hashed */
	const char *provenance_hash;
	const char *images_cid, *metadata_cid;
	const struct kiln_portfolio_token *tokens;
	size_t ntokens;
	/* optional: told of every file written under dist/portfolio/ (its path and bytes), so
	 * that the caller hashes and imports it without reading it back; non-zero fails */
	int (*wrote)(void *ctx, const char *path, const void *data, size_t len,
		     struct kiln_error *e);
	void *wrote_ctx;
};

/* Log the catalog's new facts and this release, then write dist/portfolio/: portfolio.json,
 * index.html, log/entries.jsonl, log/checkpoint, log/proofs/<id>.json,
 * attestations/<id>.sigstore.json, models/, datasets/, sbom.spdx.json, keys/. */
int kiln_portfolio_write(const struct kiln_portfolio_in *in, struct kiln_error *e)
	KILN_MUST_CHECK;

/* A hash of what the portfolio depends on beyond the release's own inputs: the registered
 * models and datasets, the count of facts the log holds or will hold (a review decision, edit
 * or polish step made after a release makes it out of date) and the studio's public key, so a
 * release with a portfolio is redone when one changes. */
int kiln_portfolio_state(struct kiln_catalog *c, const char *keys_dir, char out[65],
			 struct kiln_error *e) KILN_MUST_CHECK;
/* ---- verify (verify.c) ---- */

/* Check dist/portfolio/ using only the folder (kiln verify): every log line's chain link,
 * sequence number and canonical form, the RFC 6962 root against the signed checkpoint (the
 * signature with keys/signing-ed25519.pub, or with the key in pub_pem_file when given: the one
 * the studio published), every inclusion proof, every bundle's signature and subject digests
 * against the released files, that each token's history ends in its released bytes (its log
 * entry names the image the file is, or the file carries a C2PA manifest that verifies and
 * points at that entry), and every C2PA manifest (chained to keys/c2pa-root.pem). Each
 * mismatch is appended to problems ("portfolio/FILE: entry N: what"), checks counts what was
 * compared. No portfolio folder: nothing is checked. Errors: KILN_E_NOMEM, KILN_E_IO. */
/* The SHA-256 (hex; the bundles' key hint) of the Ed25519 key dist/portfolio/ is checked
 * with: key_file's when given, else the folder's keys/signing-ed25519.pub; "" when dist has
 * no portfolio or the key cannot be read. */
void kiln_portfolio_key_fingerprint(const char *dist, const char *key_file, char fp[65]);

struct kiln_portfolio_hashes {
	/* the hex SHA-256 of the file at rel (relative to dist), hashed by the caller in this
	 * same check, or NULL (then it is hashed here) */
	const char *(*sha256)(void *ctx, const char *rel);
	void *ctx;
};
/* known: the files the caller already hashed (kiln verify hashes every file of the release
 * once), or NULL. */
int kiln_portfolio_verify(const char *dist, const char *pub_pem_file,
			  const struct kiln_portfolio_hashes *known, uint64_t *checks,
			  char ***problems, size_t *nproblems, struct kiln_error *e)
	KILN_MUST_CHECK;

/* --- C2PA: the studio's X.509 chain and manifests embedded in PNGs (lib/portfolio/x509.c,
 * c2pa.c, jumbf.c; docs/portfolio.md "C2PA") -------------------------------------------- */

/* The files of the C2PA chain in the keys folder. */
#define KILN_C2PA_ROOT_CERT "c2pa-root.pem" /* the studio root CA: the trust anchor to publish */
#define KILN_C2PA_LEAF_CERT "c2pa-leaf.pem" /* the signing certificate, in every manifest */
#define KILN_C2PA_LEAF_KEY "c2pa-leaf.key"  /* its private key (PKCS#8 PEM, mode 0600) */

/* Make the studio's C2PA chain in dir (which must exist): a root CA (EC P-256, CA:TRUE,
 * keyCertSign, 30 years) and a leaf it signs (EC P-256, digitalSignature (critical),
 * emailProtection, CA:FALSE, 10 years), named after studio. Each file is written atomically;
 * the key is created with mode 0600. Refuses (KILN_E_STATE, naming the file) when any of the
 * three files is already there: a chain is never replaced silently. */
int kiln_portfolio_x509_make(const char *dir, const char *studio, struct kiln_error *e)
	KILN_MUST_CHECK;

/* The IPTC digital source type of c2pa.created. */
enum kiln_c2pa_source {
	KILN_C2PA_TRAINED = 0,       /* trainedAlgorithmicMedia: made by a model as it came */
	KILN_C2PA_COMPOSITE_TRAINED, /* compositeWithTrainedAlgorithmicMedia: composited or
	                                edited by a person after */
	KILN_C2PA_COMPOSITE_SYNTHETIC, /* compositeSynthetic: layers (drawn by people) composited
	                                  by an algorithm: the compose engine */
};

/* A c2pa.edited action: a human edit or a polish step. */
struct kiln_c2pa_edit {
	const char *description;  /* what was done (required, UTF-8) */
	const char *agent;        /* the software that did it ("kiln polish"), or NULL: a person */
	const char *when;         /* ISO 8601 time, or NULL */
};

/* What a manifest says about one released image. Strings are UTF-8, borrowed. */
struct kiln_c2pa_in {
	const char *title;        /* dc:title of the claim ("Owl #17"), or NULL */
	const char *format;       /* the media type; NULL or "image/png" (the only one so far) */
	int source_type;          /* enum kiln_c2pa_source */
	const struct kiln_c2pa_edit *edits; /* c2pa.edited actions after c2pa.created, in order */
	size_t n_edits;
	/* the dev.kiln.provenance assertion: where the token's history is in the signed log */
	int64_t token_id;
	int64_t log_index;        /* the token's last log entry, or -1: no log fields */
	const char *log_entry_sha256; /* hex SHA-256 of that entry's line, or NULL */
	const char *log_root;     /* the log's Merkle root (hex) when signed, or NULL */
	int64_t log_size;         /* the log's size at that root */
};

/* A loaded signing key and leaf certificate, to sign many images without reading the keys
 * folder each time. */
struct kiln_c2pa_signer;
/* Load dir/c2pa-leaf.pem and dir/c2pa-leaf.key. Errors: KILN_E_IO naming the missing or
 * unreadable file; KILN_E_FAILED when the key does not match the certificate or is not P-256. */
int kiln_portfolio_c2pa_signer_new(struct kiln_c2pa_signer **s, const char *keys_dir,
				   struct kiln_error *e) KILN_MUST_CHECK;
void kiln_portfolio_c2pa_signer_free(struct kiln_c2pa_signer *s);

/* Append to out the PNG png[len] with a C2PA manifest in a caBX chunk just before its first
 * IDAT (any caBX chunk it had is dropped; every other byte is kept). The manifest: actions
 * (c2pa.created with the digital source type, c2pa.edited for each edit), the hard binding
 * c2pa.hash.data (SHA-256 of every byte but the caBX chunk), dev.kiln.provenance, a claim v2
 * and its COSE_Sign1 ES256 signature with the leaf certificate. The manifest's label is
 * derived from the image bytes and the certificate, so the same inputs give the same label
 * (the ECDSA signature itself is randomised). Errors: KILN_E_IMAGE (not a PNG, with the byte
 * where it went wrong), KILN_E_USAGE (a bad input), KILN_E_NOMEM; out keeps its length. */
int kiln_portfolio_c2pa_sign_png_with(struct kiln_c2pa_signer *s, const void *png, size_t len,
				      const struct kiln_c2pa_in *in, struct kiln_buf *out,
				      struct kiln_error *e) KILN_MUST_CHECK;
/* The same for a release writing images one at a time: img (a PNG) is replaced by its signed
 * bytes; on an error it is left as it was. */
int kiln_portfolio_c2pa_sign_buf(struct kiln_c2pa_signer *s, struct kiln_buf *img,
				 const struct kiln_c2pa_in *in, struct kiln_error *e)
	KILN_MUST_CHECK;
/* The same through a cache of signed manifests in cache_dir (a folder that exists): the
 * manifest made for the same image bytes, certificate and inputs is reused (after it is
 * checked against them) instead of signed again. ECDSA signatures are randomised, so without
 * it a release written again (a repair) would change every image's bytes, hash, the
 * provenance hash and the CIDs; with it the same catalog gives the same bytes. A cache file
 * that cannot be read or does not check is ignored and made again. */
/* png_sha256: the hex SHA-256 of png[len] when the caller has it (the release checked the
 * store file against it), saving a pass over the image; NULL: hashed here. */
int kiln_portfolio_c2pa_sign_png_cached(struct kiln_c2pa_signer *s, const char *cache_dir,
					const void *png, size_t len, const char *png_sha256,
					const struct kiln_c2pa_in *in, struct kiln_buf *out,
					struct kiln_error *e) KILN_MUST_CHECK;
/* The same, loading the keys from keys_dir for this one image. */
int kiln_portfolio_c2pa_sign_png(const void *png, size_t len, const struct kiln_c2pa_in *in,
				 const char *keys_dir, struct kiln_buf *out,
				 struct kiln_error *e) KILN_MUST_CHECK;

/* What kiln_portfolio_c2pa_verify_png found. ok = 1 when every check passed; else `check`
 * names the first that failed and `detail` says how:
 *   "png"        the file is not a well-formed PNG
 *   "manifest"   no caBX chunk, or more than one, or one after IDAT
 *   "jumbf"      the manifest store's boxes are malformed or not C2PA's
 *   "claim"      the claim is missing, not CBOR, or lacks a required field
 *   "assertion"  an assertion is missing, or its hash is not the claim's (detail names it)
 *   "hash.data"  the image bytes are not those that were signed (or the exclusion is not
 *                exactly the caBX chunk)
 *   "signature"  the COSE_Sign1 is malformed or its signature is wrong
 *   "certificate" the leaf's profile is wrong (KU, EKU, CA, validity)
 *   "chain"      the leaf does not chain to the given root */
struct kiln_c2pa_report {
	int ok;
	char check[16];
	char detail[512];
	char label[128];          /* the active manifest's label ("urn:c2pa:...") */
	char signer[256];         /* the leaf's subject, one line */
	char provenance[512];     /* dev.kiln.provenance as compact JSON, or "" */
};

/* Check the C2PA manifest of png[len]: every assertion's hash against the claim, the hard
 * binding against the bytes, the COSE signature against the leaf in x5chain, the leaf's
 * profile, and its chain to the root certificate in root_pem (a PEM file; NULL: the chain is
 * not checked). A failed check is a finding in r, not an error: the return is nonzero only
 * for KILN_E_IO (root_pem unreadable) or KILN_E_NOMEM. */
int kiln_portfolio_c2pa_verify_png(const void *png, size_t len, const char *root_pem,
				   struct kiln_c2pa_report *r, struct kiln_error *e)
	KILN_MUST_CHECK;

/* The same for many images checked against one root: the root is read once, and a leaf that
 * chained once is not chained again. */
struct kiln_c2pa_verifier;
/* Errors: KILN_E_IO (root_pem unreadable or holding no PEM certificate), KILN_E_NOMEM. */
int kiln_portfolio_c2pa_verifier_new(struct kiln_c2pa_verifier **v, const char *root_pem,
				     struct kiln_error *e) KILN_MUST_CHECK;
void kiln_portfolio_c2pa_verifier_free(struct kiln_c2pa_verifier *v);
/* v NULL: the chain is not checked. */
int kiln_portfolio_c2pa_verify_png_with(struct kiln_c2pa_verifier *v, const void *png,
					size_t len, struct kiln_c2pa_report *r,
					struct kiln_error *e) KILN_MUST_CHECK;
/* The same when the caller has hashed png without its caBX chunk (sha256: that SHA-256), as
 * kiln verify does to check the token's history: the hard binding is checked against it
 * instead of hashing the image again. */
int kiln_portfolio_c2pa_verify_png_hashed(struct kiln_c2pa_verifier *v, const void *png,
					  size_t len, const uint8_t sha256[32],
					  struct kiln_c2pa_report *r, struct kiln_error *e)
	KILN_MUST_CHECK;

/* Signing a release's PNGs (c2pa_release.c). _new loads the signer from keys_dir (KILN_E_STATE
 * with the keys hint when keys_dir is NULL, KILN_E_IO with it when the chain is missing),
 * makes cache_dir (the signing cache), syncs the portfolio log and loads it. _sign replaces
 * img (the image of item, whose store SHA-256 is image_sha) by its signed bytes: the actions
 * and dev.kiln.provenance come from the item's log entries (docs/portfolio.md). */
struct kiln_catalog;
struct kiln_c2pa_release;
/* strip_prompts (portfolio.prompts: hashed): _sign first removes the text chunks in which
 * the engines keep the prompt (A1111's "parameters", ComfyUI's "prompt" and "workflow"), and
 * appends to the log, before signing, a "prompt.redacted" entry for each image so changed
 * (fact: image: the SHA-256 of the PNG it released without its caBX chunk, from: the store
 * image), once, so that the token's history and its dev.kiln.provenance end in the released
 * bytes. */
int kiln_portfolio_c2pa_release_new(struct kiln_c2pa_release **cr, struct kiln_catalog *c,
				    const char *keys_dir, const char *cache_dir, int strip_prompts,
				    struct kiln_error *e) KILN_MUST_CHECK;
/* Remove from png (in place) its tEXt, zTXt and iTXt chunks keyed "parameters", "prompt" or
 * "workflow": the number removed, or -1 when png is not a sequence of PNG chunks (left as
 * it was). */
int kiln_portfolio_strip_prompt_text(struct kiln_buf *png);
/* The PNG p (n bytes) without its caBX chunks, hashed: the bytes before C2PA signed them
 * (raw and hex); *had: whether it had one. -1 when p is not a whole PNG. */
int kiln_portfolio_png_sha_without_cabx(const uint8_t *p, size_t n, uint8_t raw[32],
					char hex[65], int *had);
int kiln_portfolio_c2pa_release_sign(struct kiln_c2pa_release *cr, uint64_t item,
				     const char *image_sha, const char *title,
				     struct kiln_buf *img, struct kiln_error *e) KILN_MUST_CHECK;
void kiln_portfolio_c2pa_release_free(struct kiln_c2pa_release *cr);

/* --- end of C2PA -------------------------------------------------------------------------- */

#endif
