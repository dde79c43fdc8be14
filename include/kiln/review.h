/* kiln/review.h: the review stage. A web app served by libkiln itself (libmicrohttpd) where
 * reviewers approve, reject, send back for regeneration or pick among a token's candidates;
 * every decision lands in the catalog's append-only review log (kiln/catalog.h). The command
 * starts and stops the server; the library never prints. The JSON API is docs/review-api.md.
 *
 * Security: a random 256-bit token per reviewer (stored hashed) in the first URL, exchanged for
 * an HttpOnly SameSite=Strict session cookie; the Host header must be the listen address or
 * localhost; every state change needs the session's CSRF header and a JSON body of at most
 * 64 KiB; strict CSP, no CORS. */
#ifndef KILN_REVIEW_H
#define KILN_REVIEW_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/error.h"
#include "kiln/project.h"

struct kiln_review_server;

struct kiln_review_opts {
	const char *host;          /* listen address (numeric IPv4 or IPv6), NULL: 127.0.0.1 */
	unsigned port;             /* 0: any free port */
	const char *tls_cert;      /* PEM text of the certificate and key, or NULL for HTTP */
	const char *tls_key;
	unsigned threads;          /* request threads, 0: 16 */
	unsigned thumb_threads;    /* thumbnail workers, 0: one per core (at most 8) */
	int no_prepare;            /* 1: thumbnails only on demand, none made ahead */
};

/* Start serving project p (opened for writing; it must outlive the server). */
int kiln_review_start(struct kiln_review_server **out, struct kiln_project *p,
		      const struct kiln_review_opts *o, struct kiln_error *e) KILN_MUST_CHECK;
/* The port it listens on (the one chosen when opts.port was 0). */
unsigned kiln_review_port(const struct kiln_review_server *s);
/* Thumbnails made ahead so far, and how many there are to make (for a progress line). */
void kiln_review_thumbs_progress(const struct kiln_review_server *s, uint64_t *done,
				 uint64_t *total);
/* Stop serving (requests under way finish) and free. NULL does nothing. */
void kiln_review_stop(struct kiln_review_server *s);

/* The owner's token (64 hex digits): the one kept in .kiln/review-owner (mode 0600, so only
 * the project's owner reads it) when its hash is still the catalog's, else a new random one
 * stored there and (hashed) in the catalog. *created 1 when it is new. */
int kiln_review_owner_token(struct kiln_project *p, char token[65], int *created,
			    struct kiln_error *e) KILN_MUST_CHECK;
/* A new reviewer `name` with a new random token (written to token; only its hash is kept).
 * KILN_E_STATE when the name is taken, KILN_E_USAGE when it is empty, over 64 bytes or holds
 * control characters. */
int kiln_review_add_reviewer(struct kiln_project *p, const char *name, char token[65],
			     struct kiln_error *e) KILN_MUST_CHECK;

/* The gate before a release (the command calls it; the release module is below review): with
 * review.required, every token must be approved by review.approvals distinct reviewers. When
 * one is not: KILN_E_FAILED naming the first tokens still pending, rejected, sent back for
 * regeneration or short of approvals (hint KILN_HINT_REVIEW); with allow_unreviewed, 0 and a
 * "review_override" event recording what was released unreviewed. Without review.required: 0.
 * *blocked (may be NULL): the tokens not approved. */
int kiln_review_gate(struct kiln_project *p, int allow_unreviewed, uint64_t *blocked,
		     struct kiln_error *e) KILN_MUST_CHECK;

#endif
