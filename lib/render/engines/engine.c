/* render/engines/engine: what the three engines share, so that each engine file holds only its
 * server's protocol: base64, error excerpts, sampler and scheduler mapping (the names are
 * spec-level data, kiln/spec.h (sampler names, lib/spec/samplers.c)), LoRA file names, the engine-neutral request (built by the
 * recipe module, which alone decides what an image depends on), job release and the engine
 * table. No engine reaches another engine's data; the dispatcher reaches engines only through
 * this file and engine.h.
 *
 * Sizes: base64 of a control image or an answer's image (a few MB); everything else is static.
 */
#include "render/engines/engine.h"
#include "kiln/spec.h"
#include "util/alloc.h"

#include <ctype.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* --- helpers --------------------------------------------------------------------------- */

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void kiln_ai_excerpt(char *out, size_t cap, const char *body, size_t len)
{
	size_t n = len < cap - 1 ? len : cap - 1;
	for (size_t i = 0; i < n; i++)
		out[i] = body[i] == '\n' || body[i] == '\r' ? ' ' : body[i];
	out[n] = 0;
}

int kiln_b64_encode(const void *p, size_t n, struct kiln_buf *out)
{
	const unsigned char *s = p;
	size_t olen = (n + 2) / 3 * 4, i;
	char *d;
	int rc = kiln_buf_grow(out, olen + 1);
	if (rc)
		return rc;
	d = out->data + out->len;
	for (i = 0; i + 2 < n; i += 3) {
		unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
		*d++ = b64chars[v >> 18];
		*d++ = b64chars[(v >> 12) & 63];
		*d++ = b64chars[(v >> 6) & 63];
		*d++ = b64chars[v & 63];
	}
	if (i < n) {
		unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0);
		*d++ = b64chars[v >> 18];
		*d++ = b64chars[(v >> 12) & 63];
		*d++ = i + 1 < n ? b64chars[(v >> 6) & 63] : '=';
		*d++ = '=';
	}
	out->len += olen;
	out->data[out->len] = 0;
	return 0;
}

int kiln_b64_decode(const char *s, size_t n, struct kiln_buf *out)
{
	static signed char map[256];
	static int ready;
	unsigned v = 0;
	int bits = 0, rc;
	char *d;
	if (!ready) {
		memset(map, -1, sizeof map);
		for (int i = 0; i < 64; i++)
			map[(unsigned char)b64chars[i]] = (signed char)i;
		map['-'] = 62; /* url-safe alphabet too */
		map['_'] = 63;
		ready = 1;
	}
	/* "data:image/png;base64,...." */
	if (n > 5 && !memcmp(s, "data:", 5)) {
		const char *comma = memchr(s, ',', n);
		if (comma) {
			n -= (size_t)(comma + 1 - s);
			s = comma + 1;
		}
	}
	if ((rc = kiln_buf_grow(out, n / 4 * 3 + 4)))
		return rc;
	d = out->data + out->len;
	for (size_t i = 0; i < n; i++) {
		int c = map[(unsigned char)s[i]];
		if (c < 0) {
			if (s[i] == '=' || s[i] == '\n' || s[i] == '\r')
				continue;
			return KILN_E_IMAGE;
		}
		v = v << 6 | (unsigned)c;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			*d++ = (char)(v >> bits);
		}
	}
	out->len = (size_t)(d - out->data);
	out->data[out->len] = 0;
	return 0;
}

/* The model-file extensions servers list their LoRAs with (A1111 and ComfyUI scan for
 * .safetensors, .ckpt, .pt, .pth, .bin; sd.cpp also loads .gguf). */
int kiln_ai_lora_file(const char *name, char *out, size_t cap)
{
	static const char *const ext[] = {".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf"};
	size_t n = strlen(name);
	for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
		size_t k = strlen(ext[i]);
		if (n > k && !strcasecmp(name + n - k, ext[i]))
			return snprintf(out, cap, "%s", name) >= (int)cap ? -1 : 0;
	}
	return snprintf(out, cap, "%s.safetensors", name) >= (int)cap ? -1 : 0;
}

int kiln_ai_lora_listed(const struct kiln_ai_caps *caps, const char *name, char *out,
			size_t cap)
{
	size_t n = strlen(name);
	if (kiln_ai_lora_file(name, out, cap))
		return -1;
	if (!caps || !caps->known || kiln_ai_list_has(&caps->loras, out))
		return 0;
	if (kiln_ai_list_has(&caps->loras, name))
		return snprintf(out, cap, "%s", name) >= (int)cap ? -1 : 0;
	for (size_t i = 0; i < caps->loras.n; i++) {
		const char *p = caps->loras.v[i], *base = strrchr(p, '/'), *dot;
		base = base ? base + 1 : p;
		dot = strrchr(base, '.');
		if (dot && (size_t)(dot - base) == n && !strncmp(base, name, n))
			return snprintf(out, cap, "%s", p) >= (int)cap ? -1 : 0;
	}
	return 0;
}

int kiln_ai_json_append(json_t *o, size_t flags, struct kiln_buf *out)
{
	size_t n = o ? json_dumpb(o, NULL, 0, flags) : 0;
	if (!n || kiln_buf_grow(out, n + 1))
		return KILN_E_NOMEM;
	if (json_dumpb(o, out->data + out->len, n, flags) != n)
		return KILN_E_NOMEM;
	out->len += n;
	out->data[out->len] = 0;
	return 0;
}

static size_t image_bytes(const struct kiln_ai_request *rq)
{
	return (size_t)(rq->width > 0 ? rq->width : 0) * (size_t)(rq->height > 0 ? rq->height : 0) *
	       4;
}

size_t kiln_ai_reply_b64(const struct kiln_ai_request *rq, unsigned images)
{
	if (!rq)
		return KILN_AI_REPLY_JSON;
	return (image_bytes(rq) + 2) / 3 * 4 * (images ? images : 1) + KILN_AI_REPLY_SLACK;
}

size_t kiln_ai_reply_image(const struct kiln_ai_request *rq)
{
	if (!rq)
		return KILN_AI_REPLY_JSON;
	return image_bytes(rq) + KILN_AI_REPLY_SLACK;
}

void kiln_ai_job_release(struct kiln_ai_job *j)
{
	kiln_buf_release(&j->image);
	free(j->info);
	free(j->scratch);
	free(j->ran);
	j->info = j->scratch = j->ran = NULL;
}

static void list_release(struct kiln_ai_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

void kiln_ai_caps_release(struct kiln_ai_caps *c)
{
	list_release(&c->models);
	list_release(&c->loras);
	list_release(&c->cn_models);
	list_release(&c->cn_modules);
	list_release(&c->upscalers);
	list_release(&c->nodes);
	free(c->raw);
	memset(c, 0, sizeof *c);
}

int kiln_ai_list_add(struct kiln_ai_list *l, const char *name)
{
	char *c = kiln_strdup(name);
	char **v = c ? kiln_reallocarray(l->v, l->n + 1, sizeof *v) : NULL;
	if (!v) {
		free(c);
		return KILN_E_NOMEM;
	}
	v[l->n++] = c;
	l->v = v;
	return 0;
}

int kiln_ai_list_has(const struct kiln_ai_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i], name))
			return 1;
	return 0;
}

/* Levenshtein distance, case-insensitive, capped at 255 characters of each (names). */
static size_t edit_distance(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b), row[256];
	if (na > 255)
		na = 255;
	if (nb > 255)
		nb = 255;
	for (size_t j = 0; j <= nb; j++)
		row[j] = j;
	for (size_t i = 1; i <= na; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= nb; j++) {
			size_t up = row[j];
			size_t sub = diag + (tolower((unsigned char)a[i - 1]) !=
					     tolower((unsigned char)b[j - 1]));
			size_t best = up + 1 < row[j - 1] + 1 ? up + 1 : row[j - 1] + 1;
			row[j] = sub < best ? sub : best;
			diag = up;
		}
	}
	return row[nb];
}

void kiln_ai_nearest(const struct kiln_ai_list *l, const char *want, char *out, size_t cap)
{
	size_t best[3] = {SIZE_MAX, SIZE_MAX, SIZE_MAX}, bi[3] = {0, 0, 0}, len = 0;
	if (cap)
		out[0] = 0;
	for (size_t i = 0; i < l->n; i++) {
		size_t d = edit_distance(l->v[i], want);
		for (size_t k = 0; k < 3; k++)
			if (d < best[k]) {
				for (size_t m = 2; m > k; m--) {
					best[m] = best[m - 1];
					bi[m] = bi[m - 1];
				}
				best[k] = d;
				bi[k] = i;
				break;
			}
	}
	for (size_t k = 0; k < 3 && best[k] != SIZE_MAX && len < cap; k++) {
		int w = snprintf(out + len, cap - len, "%s%s", k ? ", " : "", l->v[bi[k]]);
		if (w < 0)
			break;
		len += (size_t)w;
	}
	if (len >= cap && cap)
		out[cap - 1] = 0;
}

const char *kiln_ai_sampler_name(const char *engine, const char *a1111_name)
{
	return kiln_sampler_engine_name(engine, a1111_name);
}

const char *kiln_ai_scheduler_name(const char *engine, const char *a1111_name)
{
	return kiln_scheduler_engine_name(engine, a1111_name);
}

const char *kiln_ai_schedule(const char *engine, const char *sampler, const char *scheduler)
{
	return kiln_scheduler_engine_name(engine, kiln_scheduler_resolve(sampler, scheduler));
}

/* --- requests: the recipe module builds them (what an image depends on) ------------------ */

int kiln_ai_request_build(const struct kiln_spec *s, const struct kiln_item *it,
			  unsigned candidate, const struct kiln_ai_file *files, size_t nfiles,
			  const char *workflow, struct kiln_ai_request *rq, struct kiln_error *e)
{
	return kiln_recipe_ai_build(s, it, candidate, files, nfiles, workflow, rq, e);
}

void kiln_ai_request_release(struct kiln_ai_request *rq)
{
	kiln_recipe_ai_release(rq);
}

int kiln_ai_request_canonical(const struct kiln_ai_request *rq, struct kiln_buf *out)
{
	return kiln_recipe_ai_canonical(rq, out);
}
