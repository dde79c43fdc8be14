/* review/server: the review web server (libmicrohttpd, a small pool of its threads).
 *
 * Every request, in this order: the Host header must name the listen address (or localhost on
 * a loopback address), else 403 (DNS rebinding); GET /?token=T with a reviewer's token makes a
 * session (cookie kiln_session, HttpOnly, SameSite=Strict) and answers 303 to /; every other
 * request needs that cookie or "Authorization: Bearer T", else 401; a POST needs
 * "Content-Type: application/json", a body of at most 64 KiB (413) and, with a cookie, the
 * header X-Kiln-CSRF equal to the session's CSRF token, else 403. Paths never reach the file
 * system: the page is compiled in (assets.h), images are served by catalog hash only.
 *
 * Invariants: the session table and the known tokens are used under s->lock, never held
 * while the catalog is read (pool.c gives each request a connection of its own). Sessions are
 * kept in the catalog (review_sessions: the cookie's SHA-256, never the cookie) and in memory
 * as a cache of it, so a cookie works after a restart (or a kill -9) until it expires
 * (RV_SESSION_TTL); an expired session is refused (401) and the expired rows purged, also at
 * start.
 *
 * Sizes: sessions up to RV_SESSIONS_MAX; requests run in parallel on the read connections,
 * decisions one at a time on the writer, each a few SQLite statements (p99 targets:
 * docs/review-api.md).
 */
#include "review/assets.h"
#include "review/internal.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/sha.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define COOKIE "kiln_session"

/* per connection: the request body as it arrives */
struct upload {
	char *body;
	size_t len;
	size_t max;               /* the body limit of this URL (rv_body_max) */
	int too_big;
	int answered;             /* the 413 is queued */
	size_t dropped;           /* bytes of a body over the limit read and dropped */
};

static int host_ok(struct kiln_review_server *s, const char *host)
{
	char want[128];
	const char *names[] = {s->host, "localhost", "127.0.0.1", "[::1]"};
	size_t n = s->loopback ? 4 : 1;
	if (!host)
		return 0;
	for (size_t i = 0; i < n; i++) {
		snprintf(want, sizeof want, "%s:%u", names[i], s->port);
		if (!strcasecmp(host, want))
			return 1;
		/* a browser leaves out the scheme's default port */
		if (s->port == (s->tls ? 443u : 80u) && !strcasecmp(host, names[i]))
			return 1;
	}
	return 0;
}

/* A cookie's value as the hash sessions are kept by; 0, or -1 when it is not one of ours. */
static int cookie_sha(const char *cookie, char sha[65])
{
	if (!cookie || strlen(cookie) != 64 || strspn(cookie, "0123456789abcdef") != 64)
		return -1;
	kiln_sha256_hex(cookie, 64, sha);
	return 0;
}

static void session_drop(struct kiln_review_server *s, size_t i)
{
	free(s->sessions[i].reviewer);
	memmove(s->sessions + i, s->sessions + i + 1,
		(s->nsessions - i - 1) * sizeof *s->sessions);
	s->nsessions--;
}

/* The session in memory whose cookie hashes to sha (under the lock); an expired one is
 * dropped (*expired set). */
static struct rv_session *session_find(struct kiln_review_server *s, const char *sha,
				       int *expired)
{
	for (size_t i = 0; i < s->nsessions; i++)
		if (!CRYPTO_memcmp(s->sessions[i].sha, sha, 64)) {
			if (s->sessions[i].expires > kiln_clock_unix())
				return &s->sessions[i];
			session_drop(s, i);
			*expired = 1;
			return NULL;
		}
	return NULL;
}

/* A session in memory (under the lock): the oldest goes when the table is full (the catalog
 * keeps it: it comes back on its next request). NULL when out of memory. */
static struct rv_session *session_add(struct kiln_review_server *s, const char *sha,
				      const char *reviewer, int owner, const char *csrf,
				      double created, double expires)
{
	struct rv_session *v, *ss;
	char *name = kiln_strdup(reviewer);
	if (!name)
		return NULL;
	if (s->nsessions == RV_SESSIONS_MAX)
		session_drop(s, 0);
	if (!(v = kiln_reallocarray(s->sessions, s->nsessions + 1, sizeof *v))) {
		free(name);
		return NULL;
	}
	s->sessions = v;
	ss = &v[s->nsessions];
	memset(ss, 0, sizeof *ss);
	memcpy(ss->sha, sha, 65);
	snprintf(ss->csrf, sizeof ss->csrf, "%s", csrf);
	ss->reviewer = name;
	ss->owner = owner;
	ss->created = created;
	ss->expires = expires;
	s->nsessions++;
	return ss;
}

/* Drop the expired sessions from the catalog (on the writer). */
static int sessions_purge(struct kiln_review_server *s, struct kiln_error *e)
{
	int rc;
	rv_write_begin(s);
	rc = kiln_catalog_review_sessions_purge(s->p->catalog, kiln_clock_unix(), NULL, e);
	rv_write_end(s);
	return rc;
}

/* The session of a cookie: from memory, else from the catalog (a session made before a
 * restart), then kept in memory. Copies who it is into reviewer/csrf/owner; 1 found, 0 not
 * (also expired: refused, and the catalog purged), -1 the catalog failed. */
static int session_lookup(struct kiln_review_server *s, const char *cookie, char *reviewer,
			  size_t cap, char csrf[65], int *owner)
{
	struct kiln_review_session row;
	struct kiln_error e;
	struct rv_reader *h;
	struct kiln_catalog *c;
	struct rv_session *ss;
	char sha[65];
	int expired = 0, found, rc;
	if (cookie_sha(cookie, sha))
		return 0;
	pthread_mutex_lock(&s->lock);
	if ((ss = session_find(s, sha, &expired))) {
		snprintf(reviewer, cap, "%s", ss->reviewer);
		memcpy(csrf, ss->csrf, 65);
		*owner = ss->owner;
	}
	pthread_mutex_unlock(&s->lock);
	if (ss)
		return 1;
	kiln_error_clear(&e);
	if (expired)
		return sessions_purge(s, &e) ? -1 : 0;
	c = rv_read_begin(s, &h);
	rc = kiln_catalog_review_session_find(c, sha, &row, &found, &e);
	rv_read_end(h);
	if (rc)
		return -1;
	if (!found)
		return 0;
	if (row.expires <= kiln_clock_unix() || strlen(row.csrf) != 64) {
		free(row.reviewer);
		return sessions_purge(s, &e) ? -1 : 0;
	}
	snprintf(reviewer, cap, "%s", row.reviewer);
	memcpy(csrf, row.csrf, 65);
	*owner = row.owner;
	pthread_mutex_lock(&s->lock);
	if (!session_find(s, sha, &expired))
		session_add(s, sha, row.reviewer, row.owner, row.csrf, row.created, row.expires);
	pthread_mutex_unlock(&s->lock);
	free(row.reviewer);
	return 1;
}

/* The reviewer a token belongs to (not under s->lock): *name NULL when none. A token found is
 * remembered, so a script's bearer token is hashed and compared, not looked up, from then on. */
static int token_reviewer(struct kiln_review_server *s, const char *token, char **name,
			  int *owner)
{
	char sha[65];
	struct kiln_error e;
	struct rv_reader *h;
	struct kiln_catalog *c;
	int rc;
	*name = NULL;
	*owner = 0;
	if (!token || strlen(token) != 64)
		return 0;
	kiln_sha256_hex(token, 64, sha);
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nknown; i++)
		if (!CRYPTO_memcmp(s->known[i].sha, sha, 64)) {
			*name = kiln_strdup(s->known[i].reviewer);
			*owner = s->known[i].owner;
			pthread_mutex_unlock(&s->lock);
			return *name ? 0 : -1;
		}
	pthread_mutex_unlock(&s->lock);
	kiln_error_clear(&e);
	c = rv_read_begin(s, &h);
	rc = kiln_catalog_reviewer_find(c, sha, name, owner, &e) ? -1 : 0;
	rv_read_end(h);
	if (rc || !*name)
		return rc;
	pthread_mutex_lock(&s->lock);
	if (s->nknown < RV_TOKENS_MAX) {
		struct rv_known_token *k = &s->known[s->nknown];
		if ((k->reviewer = kiln_strdup(*name))) {
			memcpy(k->sha, sha, 65);
			k->owner = *owner;
			s->nknown++;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* thumbnail workers by default: one per core, at most 8 */
static unsigned cores(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 8 ? 8 : (unsigned)n;
}

static const struct kiln_review_asset *asset(const char *path)
{
	for (const struct kiln_review_asset *a = kiln_review_assets; a->path; a++)
		if (!strcmp(a->path, path))
			return a;
	return NULL;
}

static enum MHD_Result serve_asset(struct MHD_Connection *conn, const struct kiln_review_asset *a)
{
	if (rv_not_modified(conn, a->etag))
		return rv_send(conn, 304, NULL, "", 0, 0, "no-cache", a->etag);
	return rv_send(conn, 200, a->content_type, a->bytes, a->length, 0, "no-cache", a->etag);
}

/* GET /?token=T: a session (in the catalog first, so it outlives the server), or 401. */
static enum MHD_Result login(struct kiln_review_server *s, struct MHD_Connection *conn,
			     const char *token)
{
	char *name = NULL, cookie[200], id[65], sha[65], csrf[65];
	struct kiln_error e;
	double now = kiln_clock_unix();
	int owner, rc;
	rc = token_reviewer(s, token, &name, &owner);
	if (rc)
		return rv_send_error(conn, 500, "the catalog could not be read");
	if (!name)
		return rv_send_error(conn, 401, "this token is not a reviewer's: ask the project "
				     "owner for your URL");
	if (rv_random_hex(id) || rv_random_hex(csrf)) {
		free(name);
		return rv_send_error(conn, 500, "no random bytes for a session");
	}
	kiln_sha256_hex(id, 64, sha);
	kiln_error_clear(&e);
	rv_write_begin(s);
	rc = kiln_catalog_review_session_put(s->p->catalog, sha, name, csrf, now,
					     now + RV_SESSION_TTL, &e);
	rv_write_end(s);
	if (rc) {
		free(name);
		return rv_send_error(conn, 500, "recording the session: %s", e.msg);
	}
	pthread_mutex_lock(&s->lock);
	/* out of memory here: the catalog has it, the next request loads it */
	session_add(s, sha, name, owner, csrf, now, now + RV_SESSION_TTL);
	pthread_mutex_unlock(&s->lock);
	free(name);
	snprintf(cookie, sizeof cookie, COOKIE "=%s; HttpOnly; SameSite=Strict; Path=/%s; "
		 "Max-Age=%d", id, s->tls ? "; Secure" : "", (int)RV_SESSION_TTL);
	return rv_send_redirect(conn, "/", cookie);
}

static int is_json_type(const char *t)
{
	size_t n = strlen("application/json");
	return t && !strncasecmp(t, "application/json", n) && (t[n] == 0 || t[n] == ';' ||
								t[n] == ' ');
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_size, void **con_cls)
{
	struct kiln_review_server *s = cls;
	struct upload *up = *con_cls;
	struct rv_req r;
	char reviewer[80] = "", csrf[65] = "", *bearer_name = NULL;
	const char *token, *auth, *cookie;
	int post = !strcmp(method, "POST"), owner = 0, rc, found;
	enum MHD_Result res;
	(void)version;
	if (!up) {
		const char *cl;
		if (!(up = kiln_calloc(1, sizeof *up)))
			return MHD_NO;
		*con_cls = up;
		up->max = rv_body_max(url);
		/* a declared length over the limit is refused before a byte is read */
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						 MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > up->max)
			up->too_big = 1;
		if (!up->too_big)
			return MHD_YES;
	}
	if (*upload_size) {
		if (!up->too_big) {
			char *b;
			if (up->len + *upload_size > up->max) {
				up->too_big = 1;
			} else if (!(b = kiln_realloc(up->body, up->len + *upload_size + 1))) {
				return MHD_NO;
			} else {
				memcpy(b + up->len, upload_data, *upload_size);
				up->body = b;
				up->len += *upload_size;
				b[up->len] = 0;
			}
		}
		/* over the limit: the rest is read and dropped, so the client, done sending, reads
		 * a clean 413; past 1 MiB more it is answered at once (MHD then closes) */
		if (up->too_big)
			up->dropped += *upload_size;
		*upload_size = 0;
		if (!up->too_big || up->answered || up->dropped < 1024 * 1024)
			return MHD_YES;
		up->answered = 1;
		return rv_send_error(conn, 413, "the request body is over %zu KiB",
				     up->max / 1024);
	}
	if (up->answered)
		return MHD_YES;
	if (up->too_big)
		return rv_send_error(conn, 413, "the request body is over %zu KiB",
				     up->max / 1024);
	if (!host_ok(s, MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST)))
		return rv_send_error(conn, 403, "the Host header must be this server's address");
	token = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "token");
	if (!strcmp(url, "/") && token && !strcmp(method, "GET"))
		return login(s, conn, token);
	/* who asks: the session cookie, or a bearer token (scripts) */
	cookie = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, COOKIE);
	auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	found = session_lookup(s, cookie, reviewer, sizeof reviewer, csrf, &owner);
	if (found < 0)
		return rv_send_error(conn, 500, "the catalog could not be read (sessions)");
	if (!found && auth && !strncmp(auth, "Bearer ", 7)) {
		rc = token_reviewer(s, auth + 7, &bearer_name, &owner);
		if (!rc && bearer_name)
			snprintf(reviewer, sizeof reviewer, "%s", bearer_name);
		free(bearer_name);
	}
	if (!reviewer[0])
		return rv_send_error(conn, 401, "no session: open the URL with your token first "
				     "(or send Authorization: Bearer TOKEN)");
	if (post) {
		const char *type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							       MHD_HTTP_HEADER_CONTENT_TYPE);
		const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Kiln-CSRF");
		if (!is_json_type(type))
			return rv_send_error(conn, 403, "a POST must send Content-Type: "
					     "application/json");
		if (csrf[0] && (!h || strlen(h) != 64 || CRYPTO_memcmp(h, csrf, 64)))
			return rv_send_error(conn, 403, "the X-Kiln-CSRF header is missing or not "
					     "this session's (GET /api/session gives it)");
	} else if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		return rv_send_error(conn, 405, "%s is not served here", method);
	}
	memset(&r, 0, sizeof r);
	r.srv = s;
	r.conn = conn;
	r.method = method;
	r.path = url;
	r.reviewer = reviewer;
	r.owner = owner;
	r.csrf = csrf[0] ? csrf : NULL;
	r.body = up->body ? up->body : "";
	r.body_len = up->len;
	if (!strncmp(url, "/api/", 5))
		return rv_api(&r);
	if (!strncmp(url, "/img/", 5) || !strncmp(url, "/thumb/", 7)) {
		if (post)
			return rv_send_error(conn, 405, "images are read with GET");
		return rv_image(&r, url[1] == 't');
	}
	{
		const struct kiln_review_asset *a = asset(url);
		if (a && post)
			return rv_send_error(conn, 405, "%s is read with GET", url);
		if (a)
			return serve_asset(conn, a);
	}
	res = rv_send_error(conn, 404, "%s: no such page", url);
	return res;
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct upload *up = *con_cls;
	(void)cls, (void)conn, (void)toe;
	if (up) {
		free(up->body);
		free(up);
		*con_cls = NULL;
	}
}

int kiln_review_start(struct kiln_review_server **out, struct kiln_project *p,
		      const struct kiln_review_opts *o, struct kiln_error *e)
{
	struct kiln_review_server *s = kiln_calloc(1, sizeof *s);
	const char *host = o->host ? o->host : "127.0.0.1";
	struct sockaddr_in v4;
	struct sockaddr_in6 v6;
	struct sockaddr *sa;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_LINUX_ONLY |
			 MHD_USE_TURBO;
	unsigned threads = o->threads ? o->threads : 16;
	const union MHD_DaemonInfo *info;
	int rc = 0;
	*out = NULL;
	if (!s)
		return kiln_error_set(e, KILN_E_NOMEM, p->dir, "out of memory");
	s->p = p;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->write_lock, NULL);
	pthread_rwlock_init(&s->cache_lock, NULL);
	memset(&v4, 0, sizeof v4);
	memset(&v6, 0, sizeof v6);
	if (inet_pton(AF_INET, host, &v4.sin_addr) == 1) {
		v4.sin_family = AF_INET;
		v4.sin_port = htons((uint16_t)o->port);
		sa = (struct sockaddr *)&v4;
		s->loopback = (ntohl(v4.sin_addr.s_addr) >> 24) == 127;
		snprintf(s->host, sizeof s->host, "%s", host);
	} else if (inet_pton(AF_INET6, host, &v6.sin6_addr) == 1) {
		v6.sin6_family = AF_INET6;
		v6.sin6_port = htons((uint16_t)o->port);
		sa = (struct sockaddr *)&v6;
		s->loopback = IN6_IS_ADDR_LOOPBACK(&v6.sin6_addr);
		snprintf(s->host, sizeof s->host, "[%s]", host);
		flags |= MHD_USE_IPv6;
	} else {
		rc = kiln_error_set(e, KILN_E_USAGE, host, "not a numeric IPv4 or IPv6 address");
		goto fail;
	}
	if (o->tls_cert || o->tls_key) {
		if (!o->tls_cert || !o->tls_key) {
			rc = kiln_error_set(e, KILN_E_USAGE, host, "TLS needs both a certificate "
					    "and its key");
			goto fail;
		}
		if (!(s->tls_cert = kiln_strdup(o->tls_cert)) ||
		    !(s->tls_key = kiln_strdup(o->tls_key))) {
			rc = kiln_error_set(e, KILN_E_NOMEM, host, "out of memory");
			goto fail;
		}
		s->tls = 1;
		flags |= MHD_USE_TLS;
	}
	s->port = o->port;
	if ((rc = rv_cache_load(s, e)) || (rc = rv_pool_open(s, e)) ||
	    (rc = sessions_purge(s, e)))
		goto fail;
	if ((rc = rv_thumbs_start(s, o->thumb_threads ? o->thumb_threads : cores(), !o->no_prepare,
				  e)))
		goto fail;
	if (s->tls)
		s->d = MHD_start_daemon(flags, (uint16_t)o->port, NULL, NULL, handle, s,
					MHD_OPTION_SOCK_ADDR, sa,
					MHD_OPTION_THREAD_POOL_SIZE, threads,
					MHD_OPTION_NOTIFY_COMPLETED, completed, s,
					MHD_OPTION_CONNECTION_TIMEOUT, 60u,
					MHD_OPTION_HTTPS_MEM_CERT, s->tls_cert,
					MHD_OPTION_HTTPS_MEM_KEY, s->tls_key, MHD_OPTION_END);
	else
		s->d = MHD_start_daemon(flags, (uint16_t)o->port, NULL, NULL, handle, s,
					MHD_OPTION_SOCK_ADDR, sa,
					MHD_OPTION_THREAD_POOL_SIZE, threads,
					MHD_OPTION_NOTIFY_COMPLETED, completed, s,
					MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_END);
	if (!s->d) {
		rc = kiln_error_set(e, KILN_E_NET, host, "cannot listen on port %u%s", o->port,
				    s->tls ? " (or the TLS certificate or key is not valid PEM)"
					   : " (in use, or not an address of this machine)");
		goto fail;
	}
	info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	if (info)
		s->port = info->port;
	*out = s;
	return 0;
fail:
	kiln_review_stop(s);
	return rc;
}

unsigned kiln_review_port(const struct kiln_review_server *s)
{
	return s->port;
}

void kiln_review_stop(struct kiln_review_server *s)
{
	if (!s)
		return;
	if (s->d)
		MHD_stop_daemon(s->d);
	rv_thumbs_stop(s);
	rv_pool_close(s);
	rv_cache_free(s);
	for (size_t i = 0; i < s->nsessions; i++)
		free(s->sessions[i].reviewer);
	free(s->sessions);
	for (size_t i = 0; i < s->nknown; i++)
		free(s->known[i].reviewer);
	free(s->tls_cert);
	free(s->tls_key);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->write_lock);
	pthread_rwlock_destroy(&s->cache_lock);
	free(s);
}
