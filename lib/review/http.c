/* review/http: responses. Every answer of the review server passes here, so the security
 * headers are on all of them: a strict Content-Security-Policy (only the page's own script and
 * style, images from itself and data: URLs, no framing), X-Frame-Options DENY, nosniff, no
 * referrer (the first URL holds a token). No Access-Control-* header is ever sent: browsers
 * then refuse every cross-origin read. */
#include "review/internal.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CSP "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; " \
	    "frame-ancestors 'none'"

static void secure(struct MHD_Response *res)
{
	MHD_add_response_header(res, "Content-Security-Policy", CSP);
	MHD_add_response_header(res, "X-Frame-Options", "DENY");
	MHD_add_response_header(res, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(res, "Referrer-Policy", "no-referrer");
}

enum MHD_Result rv_send(struct MHD_Connection *conn, unsigned status, const char *type,
			const void *data, size_t len, int copy, const char *cache,
			const char *etag)
{
	struct MHD_Response *res = MHD_create_response_from_buffer(len, (void *)data,
		copy ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_PERSISTENT);
	enum MHD_Result r;
	if (!res)
		return MHD_NO;
	secure(res);
	if (type)
		MHD_add_response_header(res, "Content-Type", type);
	MHD_add_response_header(res, "Cache-Control", cache ? cache : "no-store");
	if (etag)
		MHD_add_response_header(res, "ETag", etag);
	r = MHD_queue_response(conn, status, res);
	MHD_destroy_response(res);
	return r;
}

enum MHD_Result rv_send_json(struct MHD_Connection *conn, unsigned status, void *o)
{
	char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	struct MHD_Response *res;
	enum MHD_Result r;
	json_decref(o);
	if (!text) {
		static const char oom[] = "{\"error\":\"out of memory\"}";
		return rv_send(conn, 500, "application/json", oom, sizeof oom - 1, 0, NULL, NULL);
	}
	res = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (!res) {
		free(text);
		return MHD_NO;
	}
	secure(res);
	MHD_add_response_header(res, "Content-Type", "application/json");
	MHD_add_response_header(res, "Cache-Control", "no-store");
	r = MHD_queue_response(conn, status, res);
	MHD_destroy_response(res);
	return r;
}

enum MHD_Result rv_send_error(struct MHD_Connection *conn, unsigned status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return rv_send_json(conn, status, json_pack("{s:s}", "error", msg));
}

enum MHD_Result rv_send_redirect(struct MHD_Connection *conn, const char *location,
				 const char *cookie)
{
	struct MHD_Response *res = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
	enum MHD_Result r;
	if (!res)
		return MHD_NO;
	secure(res);
	MHD_add_response_header(res, "Location", location);
	MHD_add_response_header(res, "Cache-Control", "no-store");
	if (cookie)
		MHD_add_response_header(res, "Set-Cookie", cookie);
	r = MHD_queue_response(conn, 303, res);
	MHD_destroy_response(res);
	return r;
}

int rv_not_modified(struct MHD_Connection *conn, const char *etag)
{
	const char *inm = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						      MHD_HTTP_HEADER_IF_NONE_MATCH);
	return inm && etag && (strstr(inm, etag) != NULL || !strcmp(inm, "*"));
}
