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
};

struct kiln_portfolio_in {
	struct kiln_catalog *catalog;
	const char *keys_dir;     /* the studio's keys (never copied: only public parts) */
	const char *dist;         /* the release folder being written; portfolio/ goes in it */
	const char *name, *symbol, *description;
	const char *engine;
	int prompts_hashed;       /* portfolio.prompts: hashed */
	const char *provenance_hash;
	const char *images_cid, *metadata_cid;
	const struct kiln_portfolio_token *tokens;
	size_t ntokens;
};

/* Log the catalog's new facts and this release, then write dist/portfolio/: portfolio.json,
 * index.html, log/entries.jsonl, log/checkpoint, log/proofs/<id>.json,
 * attestations/<id>.sigstore.json, models/, datasets/, sbom.spdx.json, keys/. */
int kiln_portfolio_write(const struct kiln_portfolio_in *in, struct kiln_error *e)
	KILN_MUST_CHECK;

/* A hash of what the portfolio depends on beyond the release's own inputs: the registered
 * models and datasets, the logged facts' count and the studio's public key, so a release with
 * a portfolio is redone when one changes. */
int kiln_portfolio_state(struct kiln_catalog *c, const char *keys_dir, char out[65],
			 struct kiln_error *e) KILN_MUST_CHECK;

#endif
