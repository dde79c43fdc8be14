/* lib/review/internal.h: what the files of the review module share.
 *
 * Layers inside the module (no file calls one above it): http.c (responses, headers) <
 * pool.c (the catalog connections) < thumbs.c (thumbnail workers) < api.c (the JSON endpoints) < server.c (the daemon, sessions,
 * authentication, routing); owner.c (tokens) stands apart. */
#ifndef KILN_REVIEW_INTERNAL_H
#define KILN_REVIEW_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include "kiln/catalog.h"
#include "kiln/project.h"
#include "kiln/review.h"

#define RV_BODY_MAX (64 * 1024)   /* a request body over this gets 413 */
#define RV_SESSIONS_MAX 256       /* the oldest session goes when a new one would pass it */
#define RV_READERS 4              /* read-only catalog connections (pool.c) */
#define RV_TOKENS_MAX 64          /* reviewers' token hashes remembered (server.c) */

#define RV_SESSION_TTL (7 * 86400.0) /* a session (cookie) lasts a week, restarts included */

/* A session known in memory: the catalog's review_sessions row (which outlives the server)
 * for the cookie whose SHA-256 is sha. */
struct rv_session {
	char sha[65];               /* SHA-256 of the cookie's value (256 random bits, hex) */
	char csrf[65];
	char *reviewer;
	int owner;
	double created, expires;
};

struct rv_thumbs;
struct rv_pool;
struct rv_reader;
struct kiln_recipe;

/* A reviewer's token hash found in the catalog (a bearer token is then not looked up again). */
struct rv_known_token {
	char sha[65];
	char *reviewer;
	int owner;
};

/* A token's candidate: an accepted render's image (distinct images, in render order). */
struct rv_cand {
	char image[65];
	uint64_t seed;
	unsigned regeneration;
};

/* What the server knows of one token (loaded at start; the server's own decisions refresh the
 * entry; another kiln's renders show after a restart). */
struct rv_token {
	struct kiln_item *it;       /* in cache.items */
	struct rv_cand *cands;
	size_t ncands;
	void *qa;                   /* json_t array of {check, severity, message} */
	struct kiln_review_state st;
	int has_state;
};

struct rv_cache {
	struct kiln_items items;
	struct rv_token *tok;       /* items.n, in id order */
	struct kiln_recipe *recipe; /* AI engines: to show each candidate's prompt */
};

struct kiln_review_server {
	struct kiln_project *p;
	struct MHD_Daemon *d;
	pthread_mutex_t lock;       /* the sessions and the known tokens */
	pthread_mutex_t write_lock; /* the writer (the project's catalog connection); before
	                               cache_lock when both are taken */
	pthread_rwlock_t cache_lock; /* the cache: read by requests, written after a decision */
	struct rv_pool *pool;       /* the read-only connections */
	struct rv_known_token known[RV_TOKENS_MAX];
	size_t nknown;
	char host[64];              /* the listen address as written in a Host header */
	int loopback;
	unsigned port;
	int tls;
	struct rv_session *sessions;
	size_t nsessions;
	struct rv_thumbs *thumbs;
	struct rv_cache cache;
	struct kiln_review_changes seen; /* the catalog's counters the cache is up to (under
	                                    write_lock): /api/changes reloads when they moved */
	char *tls_cert, *tls_key;
};

/* One request, once authenticated. */
struct rv_req {
	struct kiln_review_server *srv;
	struct MHD_Connection *conn;
	const char *method;
	const char *path;           /* without the query */
	const char *reviewer;       /* who asks (owned by the session or the request) */
	int owner;
	const char *csrf;           /* the session's CSRF token; NULL with a bearer token */
	const char *body;           /* POST: the whole body, NUL-terminated */
	size_t body_len;
};

/* http.c: every response carries the security headers (CSP, X-Frame-Options, nosniff,
 * Referrer-Policy) and never a CORS header. */
enum MHD_Result rv_send(struct MHD_Connection *conn, unsigned status, const char *type,
			const void *data, size_t len, int copy, const char *cache,
			const char *etag);
/* JSON: takes o (a reference), dumps it; NULL o (out of memory) answers 500. */
enum MHD_Result rv_send_json(struct MHD_Connection *conn, unsigned status, void *o);
/* {"error": message} */
enum MHD_Result rv_send_error(struct MHD_Connection *conn, unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* 303 to location, with an optional Set-Cookie. */
enum MHD_Result rv_send_redirect(struct MHD_Connection *conn, const char *location,
				 const char *cookie);
/* 1 when the request's If-None-Match holds etag. */
int rv_not_modified(struct MHD_Connection *conn, const char *etag);

/* pool.c: the read-only connections and the idle checkpoints; open after the cache is
 * loaded, close before the writer is. */
int rv_pool_open(struct kiln_review_server *s, struct kiln_error *e);
void rv_pool_close(struct kiln_review_server *s);
/* A read-only connection for this thread until rv_read_end(*h). */
struct kiln_catalog *rv_read_begin(struct kiln_review_server *s, struct rv_reader **h);
void rv_read_end(struct rv_reader *h);
/* The writer (s->p->catalog), held for one short transaction; end records the commit for
 * the idle checkpoint. */
void rv_write_begin(struct kiln_review_server *s);
void rv_write_end(struct kiln_review_server *s);

/* api.c: load (and free) the cache, at start and stop. */
int rv_cache_load(struct kiln_review_server *s, struct kiln_error *e);
void rv_cache_free(struct kiln_review_server *s);
/* api.c: GET/POST /api/... (after authentication, CSRF and content-type checks). */
enum MHD_Result rv_api(struct rv_req *r);
/* inpaint.c: POST /api/tokens/{id}/inpaint (the brush's request); the body limit of a URL
 * (this route's is larger); a request as JSON; the token's pending requests (NULL: e set). */
struct json_t;
enum MHD_Result rv_inpaint(struct rv_req *r, uint64_t id);
size_t rv_body_max(const char *url);
struct json_t *rv_inpaint_json(const struct kiln_inpaint_request *q);
struct json_t *rv_inpaint_list(struct kiln_review_server *s, uint64_t id, struct kiln_error *e);
/* GET /img/{sha} and /thumb/{sha}. */
enum MHD_Result rv_image(struct rv_req *r, int thumb);

/* owner.c: 256 random bits (OpenSSL RAND_bytes) as 64 hex digits; 0, or -1 when the
 * generator fails. */
int rv_random_hex(char out[65]);

/* thumbs.c */
int rv_thumbs_start(struct kiln_review_server *s, unsigned threads, int prepare,
		    struct kiln_error *e);
void rv_thumbs_stop(struct kiln_review_server *s);
/* The store hash of source's thumbnail, made now if it is not yet (0), or an error. */
int rv_thumb_get(struct kiln_review_server *s, const char *source, char thumb[65],
		 struct kiln_error *e);

#endif
