/* AWS Signature Version 4: canonical request, string to sign, signing key, Authorization
 * (sigv4.h). Checked against every case of the AWS test suite (tests/unit/test_sigv4.c) and
 * against two npm signers (tests/cloud-aws). */
#include "util/sigv4.h"
#include "util/alloc.h"
#include "util/sha.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void kiln_sigv4_result_release(struct kiln_sigv4_result *r)
{
	kiln_buf_release(&r->creq);
	kiln_buf_release(&r->sts);
	kiln_buf_release(&r->authz);
}

static int unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~';
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* keep: 0 encode all but unreserved; 1 keep '/'; 2 keep '/' and existing %XX (S3 paths) */
static int encode(const char *s, size_t n, int keep, struct kiln_buf *out)
{
	static const char hx[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char t[3];
		int rc;
		if (unreserved(c) || (keep && c == '/') ||
		    (keep == 2 && c == '%' && i + 2 < n &&
		     hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0)) {
			rc = kiln_buf_add(out, s + i, 1);
		} else {
			t[0] = '%';
			t[1] = hx[c >> 4];
			t[2] = hx[c & 15];
			rc = kiln_buf_add(out, t, 3);
		}
		if (rc)
			return rc;
	}
	return 0;
}

int kiln_sigv4_encode(const char *s, size_t n, int keep_slash, struct kiln_buf *out)
{
	return encode(s, n, keep_slash ? 1 : 0, out);
}

/* Decode %XX in s[n] into out (a '+' stays a '+'). */
static int decode(const char *s, size_t n, struct kiln_buf *out)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 &&
		    hexval(s[i + 2]) >= 0) {
			c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		}
		if (kiln_buf_add(out, &c, 1))
			return KILN_E_NOMEM;
	}
	return 0;
}

/* The canonical URI of path[n]. */
static int canonical_uri(const char *path, size_t n, int s3, struct kiln_buf *out)
{
	struct kiln_buf norm = KILN_BUF_INIT;
	size_t *seg = NULL, nseg = 0;
	int rc = 0;
	if (!n)
		return kiln_buf_adds(out, "/");
	if (s3)
		return encode(path, n, 2, out);
	/* RFC 3986 remove_dot_segments, with empty segments dropped as the suite expects */
	if (!(seg = kiln_calloc(n + 1, sizeof *seg)))
		return KILN_E_NOMEM;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && path[j] != '/')
			j++;
		if (j == i || (j - i == 1 && path[i] == '.')) {
			/* nothing */
		} else if (j - i == 2 && path[i] == '.' && path[i + 1] == '.') {
			if (nseg)
				nseg--;
		} else {
			seg[nseg++] = i;
		}
		i = j + 1;
	}
	for (size_t k = 0; k < nseg && !rc; k++) {
		size_t i = seg[k], j = i;
		while (j < n && path[j] != '/')
			j++;
		rc = kiln_buf_add(&norm, "/", 1) || kiln_buf_add(&norm, path + i, j - i);
	}
	/* a path that ends in '/' keeps one; the root is "/" */
	if (!rc && (!nseg || path[n - 1] == '/'))
		rc = kiln_buf_add(&norm, "/", 1);
	if (!rc)
		rc = encode(norm.data ? norm.data : "/", norm.data ? norm.len : 1, 1, out);
	kiln_buf_release(&norm);
	free(seg);
	return rc ? KILN_E_NOMEM : 0;
}

struct qpair {
	char *k, *v;
};

static int qcmp(const void *a, const void *b)
{
	const struct qpair *x = a, *y = b;
	int c = strcmp(x->k, y->k);
	return c ? c : strcmp(x->v, y->v);
}

static int canonical_query(const char *q, size_t n, struct kiln_buf *out)
{
	struct qpair *p = NULL;
	size_t np = 0, cap = 0;
	int rc = 0;
	for (size_t i = 0; i < n && !rc;) {
		size_t j = i, eq;
		struct kiln_buf raw = KILN_BUF_INIT, ek = KILN_BUF_INIT, ev = KILN_BUF_INIT;
		while (j < n && q[j] != '&')
			j++;
		if (j == i) {
			i = j + 1;
			continue;
		}
		for (eq = i; eq < j && q[eq] != '='; eq++)
			;
		if (np == cap) {
			size_t nc = cap ? cap * 2 : 8;
			struct qpair *g = kiln_reallocarray(p, nc, sizeof *p);
			if (!g) {
				rc = KILN_E_NOMEM;
				break;
			}
			p = g;
			cap = nc;
		}
		rc = decode(q + i, eq - i, &raw) || encode(raw.data ? raw.data : "", raw.len, 0, &ek);
		kiln_buf_reset(&raw);
		if (!rc && eq < j)
			rc = decode(q + eq + 1, j - eq - 1, &raw) ||
			     encode(raw.data ? raw.data : "", raw.len, 0, &ev);
		if (!rc && (!ek.data && kiln_buf_adds(&ek, "")))
			rc = KILN_E_NOMEM;
		if (!rc && (!ev.data && kiln_buf_adds(&ev, "")))
			rc = KILN_E_NOMEM;
		kiln_buf_release(&raw);
		if (rc) {
			kiln_buf_release(&ek);
			kiln_buf_release(&ev);
			rc = KILN_E_NOMEM;
			break;
		}
		p[np].k = kiln_buf_detach(&ek, NULL);
		p[np].v = kiln_buf_detach(&ev, NULL);
		np++;
		i = j + 1;
	}
	if (!rc && np)
		qsort(p, np, sizeof *p, qcmp);
	for (size_t i = 0; i < np && !rc; i++)
		rc = kiln_buf_addf(out, "%s%s=%s", i ? "&" : "", p[i].k, p[i].v);
	for (size_t i = 0; i < np; i++) {
		free(p[i].k);
		free(p[i].v);
	}
	free(p);
	return rc ? KILN_E_NOMEM : 0;
}

struct hdr {
	char *name;                /* lower-case, owned */
	const char *value;
	size_t order;
};

static int hcmp(const void *a, const void *b)
{
	const struct hdr *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* value trimmed, inner runs of blanks as one space */
static int add_value(struct kiln_buf *out, const char *v)
{
	int space = 0, any = 0;
	for (; *v; v++) {
		if (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n') {
			space = any;
			continue;
		}
		if (space && kiln_buf_add(out, " ", 1))
			return KILN_E_NOMEM;
		if (kiln_buf_add(out, v, 1))
			return KILN_E_NOMEM;
		space = 0;
		any = 1;
	}
	return 0;
}

static void hmac(const void *key, size_t klen, const void *msg, size_t mlen, unsigned char out[32])
{
	unsigned int olen = 32;
	HMAC(EVP_sha256(), key, (int)klen, msg, mlen, out, &olen);
}

int kiln_sigv4_sign(const struct kiln_sigv4 *k, const char *method, const char *target,
		    const struct kiln_sigv4_header *h, size_t nh, const void *body, size_t len,
		    const char *payload_hash, struct kiln_sigv4_result *r, struct kiln_error *e)
{
	struct hdr *hs = NULL;
	struct kiln_buf signed_names = KILN_BUF_INIT, key = KILN_BUF_INIT;
	const char *q = strchr(target, '?');
	size_t plen = q ? (size_t)(q - target) : strlen(target);
	char date[9], hash[65], sig[65];
	unsigned char kb[32], kd[32];
	int rc = 0;
	memset(r, 0, sizeof *r);
	if (target[0] != '/')
		return kiln_error_set(e, KILN_E_SPEC, NULL, "cannot sign '%s': not a path", target);
	if (!k->amz_date || strlen(k->amz_date) != 16)
		return kiln_error_set(e, KILN_E_SPEC, NULL, "cannot sign: the date is not YYYYMMDDTHHMMSSZ");
	memcpy(date, k->amz_date, 8);
	date[8] = 0;
	if (payload_hash)
		snprintf(r->payload_hash, sizeof r->payload_hash, "%s", payload_hash);
	else
		kiln_sha256_hex(body ? body : "", body ? len : 0, r->payload_hash);

	if (nh && !(hs = kiln_calloc(nh, sizeof *hs)))
		goto nomem;
	for (size_t i = 0; i < nh; i++) {
		if (!(hs[i].name = kiln_strdup(h[i].name)))
			goto nomem;
		for (char *c = hs[i].name; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
		hs[i].value = h[i].value ? h[i].value : "";
		hs[i].order = i;
	}
	if (nh)
		qsort(hs, nh, sizeof *hs, hcmp);

	if (kiln_buf_addf(&r->creq, "%s\n", method) ||
	    canonical_uri(target, plen, k->s3, &r->creq) || kiln_buf_add(&r->creq, "\n", 1) ||
	    (q && canonical_query(q + 1, strlen(q + 1), &r->creq)) ||
	    kiln_buf_add(&r->creq, "\n", 1))
		goto nomem;
	for (size_t i = 0; i < nh; i++) {
		int first = !i || strcmp(hs[i].name, hs[i - 1].name);
		int last = i + 1 == nh || strcmp(hs[i].name, hs[i + 1].name);
		if (first && (kiln_buf_addf(&r->creq, "%s:", hs[i].name) ||
			      kiln_buf_addf(&signed_names, "%s%s", signed_names.len ? ";" : "",
					    hs[i].name)))
			goto nomem;
		if (!first && kiln_buf_add(&r->creq, ",", 1))
			goto nomem;
		if (add_value(&r->creq, hs[i].value) || (last && kiln_buf_add(&r->creq, "\n", 1)))
			goto nomem;
	}
	if (kiln_buf_addf(&r->creq, "\n%s\n%s", signed_names.data ? signed_names.data : "",
			  r->payload_hash))
		goto nomem;

	kiln_sha256_hex(r->creq.data, r->creq.len, hash);
	if (kiln_buf_addf(&r->sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", k->amz_date,
			  date, k->region, k->service, hash))
		goto nomem;

	if (kiln_buf_addf(&key, "AWS4%s", k->secret_key))
		goto nomem;
	hmac(key.data, key.len, date, 8, kd);
	hmac(kd, 32, k->region, strlen(k->region), kb);
	hmac(kb, 32, k->service, strlen(k->service), kd);
	hmac(kd, 32, "aws4_request", 12, kb);
	hmac(kb, 32, r->sts.data, r->sts.len, kd);
	kiln_hex(kd, 32, sig);
	if (kiln_buf_addf(&r->authz,
			  "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, "
			  "Signature=%s",
			  k->access_key, date, k->region, k->service,
			  signed_names.data ? signed_names.data : "", sig))
		goto nomem;
	goto out;
nomem:
	rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "no memory to sign a request");
out:
	/* the key material does not outlive the call */
	if (key.data)
		memset(key.data, 0, key.len);
	memset(kb, 0, sizeof kb);
	memset(kd, 0, sizeof kd);
	kiln_buf_release(&key);
	kiln_buf_release(&signed_names);
	for (size_t i = 0; hs && i < nh; i++)
		free(hs[i].name);
	free(hs);
	return rc;
}

/* The Host libcurl sends for url (the scheme's default port left out) and where the target
 * starts (after the host). */
static int url_host(const char *url, char *host, size_t cap, const char **target,
		    struct kiln_error *e)
{
	const char *p, *hs, *he;
	int https = !strncmp(url, "https://", 8);
	if (!https && strncmp(url, "http://", 7))
		return kiln_error_set(e, KILN_E_SPEC, NULL, "cannot sign '%s': not an http(s) URL",
				      url);
	hs = url + (https ? 8 : 7);
	for (he = hs; *he && *he != '/' && *he != '?'; he++)
		;
	if (he == hs || (size_t)(he - hs) >= cap)
		return kiln_error_set(e, KILN_E_SPEC, NULL, "cannot sign '%s': no host", url);
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = 0;
	/* libcurl leaves the scheme's default port out of Host */
	if ((p = strrchr(host, ':')) && !strchr(p, ']') &&
	    !strcmp(p + 1, https ? "443" : "80"))
		host[p - host] = 0;
	*target = he;
	return 0;
}

static void amz_date(double now, char date[17])
{
	time_t t = (time_t)now;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(date, 17, "%Y%m%dT%H%M%SZ", &tm);
}

int kiln_sigv4_request(const struct kiln_sigv4 *k, const char *method, const char *url,
		       const char *extra, const void *body, size_t len, double now,
		       struct kiln_buf *lines, struct kiln_error *e)
{
	char payload[65];
	kiln_sha256_hex(body ? body : "", body ? len : 0, payload);
	return kiln_sigv4_request_hashed(k, method, url, extra, payload, now, lines, e);
}

int kiln_sigv4_request_hashed(const struct kiln_sigv4 *k, const char *method, const char *url,
			      const char *extra, const char *payload, double now,
			      struct kiln_buf *lines, struct kiln_error *e)
{
	struct kiln_sigv4_header h[24];
	struct kiln_sigv4 kk = *k;
	struct kiln_sigv4_result r;
	struct kiln_buf ex = KILN_BUF_INIT;
	char host[512], date[17];
	const char *p, *target;
	size_t nh = 0;
	int rc;
	if ((rc = url_host(url, host, sizeof host, &target, e)))
		return rc;
	if (!*target)
		target = "/";
	if (*target == '?') {
		/* "host?q": the path is "/" */
		if (kiln_buf_addf(&ex, "/%s", target))
			return kiln_error_set(e, KILN_E_NOMEM, NULL, "no memory to sign a request");
	}
	amz_date(now, date);
	kk.amz_date = date;
	h[nh++] = (struct kiln_sigv4_header){"Host", host};
	h[nh++] = (struct kiln_sigv4_header){"X-Amz-Date", date};
	h[nh++] = (struct kiln_sigv4_header){"X-Amz-Content-Sha256", payload};
	if (k->token && *k->token)
		h[nh++] = (struct kiln_sigv4_header){"X-Amz-Security-Token", k->token};
	else
		kk.token = NULL;
	/* the extra lines, split in a copy: "Name: value\n..." */
	char *copy = NULL;
	if (extra && *extra) {
		if (!(copy = kiln_strdup(extra))) {
			kiln_buf_release(&ex);
			return kiln_error_set(e, KILN_E_NOMEM, NULL, "no memory to sign a request");
		}
		for (char *line = copy, *next; line && *line; line = next) {
			char *colon;
			if ((next = strchr(line, '\n')))
				*next++ = 0;
			if (!(colon = strchr(line, ':')) || nh == sizeof h / sizeof *h)
				continue;
			*colon = 0;
			for (p = colon + 1; *p == ' '; p++)
				;
			h[nh++] = (struct kiln_sigv4_header){line, p};
		}
	}
	rc = kiln_sigv4_sign(&kk, method, ex.data ? ex.data : target, h, nh, NULL, 0, payload, &r,
			     e);
	if (!rc && (kiln_buf_addf(lines, "X-Amz-Date: %s\nX-Amz-Content-Sha256: %s\n", date,
				  payload) ||
		    (kk.token && kiln_buf_addf(lines, "X-Amz-Security-Token: %s\n", kk.token)) ||
		    kiln_buf_addf(lines, "Authorization: %s\n", r.authz.data)))
		rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "no memory to sign a request");
	kiln_sigv4_result_release(&r);
	kiln_buf_release(&ex);
	free(copy);
	return rc;
}

int kiln_sigv4_presign(const struct kiln_sigv4 *k, const char *method, const char *url,
		       unsigned expires, double now, struct kiln_buf *out, struct kiln_error *e)
{
	struct kiln_sigv4_header h[1];
	struct kiln_sigv4 kk = *k;
	struct kiln_sigv4_result r;
	struct kiln_buf q = KILN_BUF_INIT, cred = KILN_BUF_INIT, target = KILN_BUF_INIT;
	char host[512], date[17];
	const char *t, *sig;
	int rc;
	if (expires < 1 || expires > 604800)
		return kiln_error_set(e, KILN_E_SPEC, NULL, "a presigned URL lives 1 s to 7 days, "
				      "not %u s", expires);
	if ((rc = url_host(url, host, sizeof host, &t, e)))
		return rc;
	if (strchr(t, '?'))
		return kiln_error_set(e, KILN_E_SPEC, NULL, "cannot presign '%s': it has a query",
				      url);
	amz_date(now, date);
	kk.amz_date = date;
	h[0] = (struct kiln_sigv4_header){"Host", host};
	memset(&r, 0, sizeof r);
	/* the query (every X-Amz-* but the signature), encoded as it is signed */
	if (kiln_buf_addf(&cred, "%s/%.8s/%s/%s/aws4_request", k->access_key, date, k->region,
			  k->service) ||
	    kiln_buf_adds(&q, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=") ||
	    kiln_sigv4_encode(cred.data, cred.len, 0, &q) ||
	    kiln_buf_addf(&q, "&X-Amz-Date=%s&X-Amz-Expires=%u", date, expires) ||
	    (k->token && *k->token &&
	     (kiln_buf_adds(&q, "&X-Amz-Security-Token=") ||
	      kiln_sigv4_encode(k->token, strlen(k->token), 0, &q))) ||
	    kiln_buf_adds(&q, "&X-Amz-SignedHeaders=host") ||
	    kiln_buf_addf(&target, "%s?%s", *t ? t : "/", q.data)) {
		rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "no memory to sign a request");
		goto out;
	}
	if ((rc = kiln_sigv4_sign(&kk, method, target.data, h, 1, NULL, 0, "UNSIGNED-PAYLOAD", &r,
				  e)))
		goto out;
	sig = strstr(r.authz.data, "Signature=");
	if (!sig || kiln_buf_addf(out, "%.*s%s?%s&X-Amz-Signature=%s", (int)(t - url), url,
				  *t ? t : "/", q.data, sig + 10))
		rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "no memory to sign a request");
out:
	kiln_sigv4_result_release(&r);
	kiln_buf_release(&q);
	kiln_buf_release(&cred);
	kiln_buf_release(&target);
	return rc;
}
