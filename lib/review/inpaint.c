/* review/inpaint: the brush's requests. POST /api/tokens/{id}/inpaint with {mask: a base64 PNG
 * (a data: URL prefix allowed), prompt, negative (optional), denoise (above 0, at most 1;
 * 0.75)}: the mask is decoded and checked (a PNG of the size of the token's image, not black
 * throughout), stored by its SHA-256 and recorded as a pending inpaint request, which the
 * polish stage runs; 201 with the request. Each bad field is a 400 naming it.
 *
 * This route alone takes bodies up to RV_INPAINT_BODY_MAX (server.c asks rv_body_max before
 * reading a byte). Calls nothing in api.c (api.c calls in here): the token is looked up in the
 * cache under cache_lock itself.
 */
#include "review/internal.h"
#include "util/alloc.h"
#include "util/base64.h"
#include "util/image.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RV_INPAINT_BODY_MAX (16 * 1024 * 1024)

/* "123/inpaint" after "/api/tokens/" */
static int inpaint_path(const char *url)
{
	size_t n;
	if (strncmp(url, "/api/tokens/", 12))
		return 0;
	url += 12;
	n = strspn(url, "0123456789");
	return n > 0 && n < 20 && !strcmp(url + n, "/inpaint");
}

size_t rv_body_max(const char *url)
{
	return inpaint_path(url) ? RV_INPAINT_BODY_MAX : RV_BODY_MAX;
}

json_t *rv_inpaint_json(const struct kiln_inpaint_request *q)
{
	return json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:s?, s:f, s:s, s:s?, s:s?, s:s?, s:s?}",
			 "id", (json_int_t)q->id, "token", (json_int_t)q->item_id, "at", q->at,
			 "reviewer", q->reviewer ? q->reviewer : "", "mask", q->mask, "prompt",
			 q->prompt ? q->prompt : "", "negative", q->negative, "denoise",
			 q->denoise, "status", q->status, "error", q->error, "done_at",
			 q->done_at[0] ? q->done_at : NULL, "input",
			 q->input[0] ? q->input : NULL, "output", q->output[0] ? q->output : NULL);
}

json_t *rv_inpaint_list(struct kiln_review_server *s, uint64_t id, struct kiln_error *e)
{
	struct kiln_inpaint_requests l;
	struct rv_reader *h;
	struct kiln_catalog *c = rv_read_begin(s, &h);
	json_t *a;
	int rc = kiln_catalog_inpaint_list(c, &id, "pending", &l, e);
	rv_read_end(h);
	if (rc)
		return NULL;
	if ((a = json_array()))
		for (size_t i = 0; i < l.n; i++)
			if (json_array_append_new(a, rv_inpaint_json(&l.v[i]))) {
				json_decref(a);
				a = NULL;
				kiln_error_set(e, KILN_E_NOMEM, "review", "out of memory");
				break;
			}
	kiln_inpaint_requests_release(&l);
	if (!a && !e->code)
		kiln_error_set(e, KILN_E_NOMEM, "review", "out of memory");
	return a;
}

/* The token's image (store SHA-256) from the cache; 0, or -1 when it is not in the catalog */
static int token_image(struct kiln_review_server *s, uint64_t id, char image[65])
{
	size_t lo = 0, hi = s->cache.items.n;
	int rc = -1;
	image[0] = 0;
	pthread_rwlock_rdlock(&s->cache_lock);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint64_t v = s->cache.tok[mid].it->id;
		if (v == id) {
			memcpy(image, s->cache.tok[mid].it->image, 65);
			rc = 0;
			break;
		}
		if (v < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	pthread_rwlock_unlock(&s->cache_lock);
	return rc;
}

/* The mask (decoded from base64 into *png) checked against the image w x h; err set when bad */
static int check_mask(const char *b64, size_t len, int w, int h, struct kiln_buf *png,
		      char *err, size_t cap)
{
	static const char prefix[] = "data:image/png;base64,";
	struct kiln_image8 im;
	struct kiln_error e;
	size_t n, c;
	int rc, any = 0;
	if (len >= sizeof prefix - 1 && !strncmp(b64, prefix, sizeof prefix - 1)) {
		b64 += sizeof prefix - 1;
		len -= sizeof prefix - 1;
	}
	if ((rc = kiln_base64_decode(b64, len, png)) == -2)
		return snprintf(err, cap, "out of memory"), 500;
	if (rc || !png->len)
		return snprintf(err, cap, "mask is not base64 (standard alphabet, padded)"), 400;
	if (png->len < 24 || memcmp(png->data, "\x89PNG\r\n\x1a\n", 8) ||
	    memcmp(png->data + 12, "IHDR", 4))
		return snprintf(err, cap, "mask is not a PNG"), 400;
	/* the size from the header (IHDR, big-endian) before any decoding: a small file can
	 * declare a huge image */
	{
		const unsigned char *b = (const unsigned char *)png->data + 16;
		uint32_t mw = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 |
			      b[3];
		uint32_t mh = (uint32_t)b[4] << 24 | (uint32_t)b[5] << 16 | (uint32_t)b[6] << 8 |
			      b[7];
		if (mw != (uint32_t)w || mh != (uint32_t)h)
			return snprintf(err, cap, "mask is %lux%lu and the token's image is %dx%d: "
					"draw it at the image's size", (unsigned long)mw,
					(unsigned long)mh, w, h), 400;
	}
	kiln_error_clear(&e);
	if (kiln_image_decode8_mem(png->data, png->len, "mask", &im, &e))
		return snprintf(err, cap, "mask: %s", e.msg), 400;
	if (im.width != w || im.height != h) {
		snprintf(err, cap, "mask is %dx%d and the token's image is %dx%d: draw it at the "
			 "image's size", im.width, im.height, w, h);
		kiln_image8_release(&im);
		return 400;
	}
	n = (size_t)im.width * (size_t)im.height;
	c = im.bands >= 3 ? 3 : 1; /* the colour bands, alpha aside */
	for (size_t i = 0; i < n && !any; i++)
		for (size_t k = 0; k < c && !any; k++)
			any = im.pixels[i * (size_t)im.bands + k] != 0;
	kiln_image8_release(&im);
	if (!any)
		return snprintf(err, cap, "mask is black throughout: paint white where the image "
				"is to be repainted"), 400;
	return 0;
}

enum MHD_Result rv_inpaint(struct rv_req *r, uint64_t id)
{
	struct kiln_review_server *s = r->srv;
	struct kiln_buf png = KILN_BUF_INIT;
	struct kiln_inpaint_request q;
	struct kiln_error e;
	json_error_t je;
	json_t *o = json_loadb(r->body, r->body_len, 0, &je), *m, *pr, *ng, *dn;
	char image[65], sha[65], err[1700], *path = NULL;
	double denoise = 0.75;
	int w, h, status;
	enum MHD_Result res;
	if (!o || !json_is_object(o)) {
		json_decref(o);
		return rv_send_error(r->conn, 400, "the body is not a JSON object%s%s",
				     o ? "" : ": ", o ? "" : je.text);
	}
	m = json_object_get(o, "mask");
	pr = json_object_get(o, "prompt");
	ng = json_object_get(o, "negative");
	dn = json_object_get(o, "denoise");
	if (!json_is_string(m)) {
		res = rv_send_error(r->conn, 400, "mask is missing: a base64 PNG, white where the "
				    "image is to be repainted");
		goto out;
	}
	if (!json_is_string(pr) || !json_string_length(pr)) {
		res = rv_send_error(r->conn, 400, "prompt is missing: what to paint where the mask "
				    "is white");
		goto out;
	}
	if (ng && !json_is_null(ng) && !json_is_string(ng)) {
		res = rv_send_error(r->conn, 400, "negative is a string");
		goto out;
	}
	if (dn && !json_is_null(dn)) {
		denoise = json_number_value(dn);
		if (!json_is_number(dn) || !(denoise > 0 && denoise <= 1)) {
			res = rv_send_error(r->conn, 400, "denoise is a number above 0 and at "
					    "most 1");
			goto out;
		}
	}
	if (!s->p->spec->generate) {
		res = rv_send_error(r->conn, 409, "inpaint needs an AI engine (the spec's "
				    "engine a1111 or comfyui with generate.endpoints); this "
				    "project composes its images");
		goto out;
	}
	if (token_image(s, id, image)) {
		res = rv_send_error(r->conn, 404, "token %llu is not in the catalog",
				    (unsigned long long)id);
		goto out;
	}
	if (!image[0]) {
		res = rv_send_error(r->conn, 409, "token %llu has no image yet: render it first",
				    (unsigned long long)id);
		goto out;
	}
	kiln_error_clear(&e);
	if (!(path = kiln_store_path(s->p->store, image)) ||
	    kiln_image_header(path, &w, &h, &e)) {
		res = rv_send_error(r->conn, 500, "token %llu: %s", (unsigned long long)id,
				    path ? e.msg : "out of memory");
		goto out;
	}
	if ((status = check_mask(json_string_value(m), json_string_length(m), w, h, &png, err,
				 sizeof err))) {
		res = rv_send_error(r->conn, (unsigned)status, "%s", err);
		goto out;
	}
	if (kiln_store_put(s->p->store, png.data, png.len, sha, &e)) {
		res = rv_send_error(r->conn, 500, "storing the mask: %s", e.msg);
		goto out;
	}
	rv_write_begin(s);
	status = kiln_catalog_inpaint_add(s->p->catalog, id, r->reviewer, sha,
					  json_string_value(pr), json_string_value(ng), denoise,
					  &q, &e);
	rv_write_end(s);
	if (status) {
		res = rv_send_error(r->conn, 500, "token %llu: %s", (unsigned long long)id, e.msg);
		goto out;
	}
	res = rv_send_json(r->conn, 201, rv_inpaint_json(&q));
	kiln_inpaint_request_release(&q);
out:
	free(path);
	kiln_buf_release(&png);
	json_decref(o);
	return res;
}
