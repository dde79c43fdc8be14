/* verify.c: the polish chains a release wrote (dist/polish/<id>.json) checked: every step's
 * input is the previous image step's output (the first's: the render), the last image step's
 * output is the token's released image (dist/images/<id>.*, hashed), and, when the project's
 * store holds the inputs, what is recomputable is made again: upscale nearest / lanczos (the
 * same pixels as the recorded output) and pixels vectorize (the same SVG bytes). Calls
 * raster.c and vector.c.
 */
#include "kiln/polish.h"
#include "kiln/portfolio.h"
#include "polish/ops.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/sha.h"

#include <dirent.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int problem(struct kiln_verify_result *r, struct kiln_error *e, const char *fmt, ...)
	KILN_PRINTF(3, 4);
static int problem(struct kiln_verify_result *r, struct kiln_error *e, const char *fmt, ...)
{
	char buf[512], **v;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (!(v = kiln_realloc(r->problems, (r->nproblems + 1) * sizeof *v)) ||
	    !(v[r->nproblems] = kiln_strdup(buf))) {
		if (v)
			r->problems = v;
		return kiln_error_set(e, KILN_E_NOMEM, "verify", "out of memory");
	}
	r->problems = v;
	r->nproblems++;
	return 0;
}

static const char *str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

/* Make step s again from its input in the store; *same says whether it matches. -1 in
 * *same: not recomputable (kind, or the input is not in the store). */
static int recompute(struct kiln_store *st, json_t *s, int *same, struct kiln_error *e)
{
	const char *kind = str(s, "kind"), *method;
	json_t *set = json_object_get(s, "settings");
	char *in = NULL, *out = NULL, sha[65];
	struct kiln_buf b = KILN_BUF_INIT;
	struct kiln_png_opts po = {1, KILN_PNG_FILTER_NONE, 0};
	struct kiln_rgba im = {NULL, 0, 0};
	int rc = 0;
	*same = -1;
	method = json_string_value(json_object_get(set, "method"));
	if (!st || kiln_store_has(st, str(s, "input")) <= 0 ||
	    kiln_store_has(st, str(s, "output")) <= 0)
		return 0;
	if (!(in = kiln_store_path(st, str(s, "input"))) ||
	    !(out = kiln_store_path(st, str(s, "output")))) {
		rc = kiln_error_set(e, KILN_E_NOMEM, "verify", "out of memory");
		goto out;
	}
	if (!strcmp(kind, "upscale") && method &&
	    (!strcmp(method, "nearest") || !strcmp(method, "lanczos"))) {
		if (!(rc = kiln_polish_upscale(in, (int)json_integer_value(json_object_get(set,
							"factor")), !strcmp(method, "nearest"), 0,
					       &po, &b, e)))
			rc = kiln_polish_same_pixels(b.data, b.len, out, same, e);
	} else if (!strcmp(kind, "vectorize") &&
		   !strcmp(json_string_value(json_object_get(set, "mode")) ?
			   json_string_value(json_object_get(set, "mode")) : "", "pixels")) {
		if (!(rc = kiln_polish_load_rgba(in, 0, &im, e)) &&
		    !(rc = kiln_polish_svg_pixels(&im, &b, e))) {
			kiln_sha256_hex(b.data, b.len, sha);
			*same = !strcmp(sha, str(s, "output"));
		}
	}
out:
	free(im.px);
	free(in);
	free(out);
	kiln_buf_release(&b);
	return rc;
}

/* The SHA-256 of released file f into got ("" when it is missing or unreadable). A PNG signed
 * by the portfolio carries its C2PA manifest in a caBX chunk that the chain's last step did
 * not write: when the whole file is not `image`, its hash without that chunk (one read).
 * -1 when out of memory. */
static int released_sha(const char *f, int png, const char *image, char got[65])
{
	struct kiln_buf b = KILN_BUF_INIT;
	struct kiln_error fe;
	uint8_t raw[32];
	char hex[65];
	int had = 0;
	got[0] = 0;
	if (!kiln_fs_exists(f))
		return 0;
	if (!png)
		return kiln_sha256_file(f, got, &fe) && fe.code == KILN_E_NOMEM ? -1 : 0;
	if (kiln_fs_read_limited(f, &b, (size_t)1 << 31, 0, &fe))
		return fe.code == KILN_E_NOMEM ? -1 : 0;
	kiln_sha256_hex(b.data, b.len, got);
	if (strcmp(got, image) &&
	    !kiln_portfolio_png_sha_without_cabx((const uint8_t *)b.data, b.len, raw, hex, &had) &&
	    had)
		memcpy(got, hex, 65);
	kiln_buf_release(&b);
	return 0;
}

/* With the portfolio's `prompts: hashed` the released PNG is the chain's final image without
 * its prompt text chunks (and with its caBX): when the store has that image, strip it the same
 * way and compare; without the store (an outsider), the published log's prompt.redacted entry
 * from that image to those bytes (published: "from:image" keys; the portfolio's own check
 * proves the entry is in the signed log). A match makes *got the chain's hash (the bytes are
 * accounted for). -1 when out of memory. */
static int redacted_match(struct kiln_store *st, json_t *published, const char *image,
			  char got[65])
{
	struct kiln_buf b = KILN_BUF_INIT;
	struct kiln_error fe;
	char *path, hex[65], key[130];
	int rc = 0;
	snprintf(key, sizeof key, "%.64s:%.64s", image, got);
	if (json_object_get(published, key)) {
		memcpy(got, image, 65);
		return 0;
	}
	if (!st || strlen(image) != 64 || kiln_store_has(st, image) <= 0)
		return 0;
	if (!(path = kiln_store_path(st, image)))
		return -1;
	if (kiln_fs_read_limited(path, &b, (size_t)1 << 31, 0, &fe))
		rc = fe.code == KILN_E_NOMEM ? -1 : 0;
	else if (kiln_portfolio_strip_prompt_text(&b) > 0) {
		kiln_sha256_hex(b.data, b.len, hex);
		if (!strcmp(hex, got))
			memcpy(got, image, 65);
	}
	free(path);
	kiln_buf_release(&b);
	return rc;
}

static int check_one(const char *dist, const char *name, struct kiln_store *st,
		     json_t *published, struct kiln_verify_result *r, struct kiln_error *e)
{
	static const char *const exts[] = {"png", "webp", "jpg", "svg"};
	char *path = NULL, prev[65], img[160], name1[160], sha[65] = "";
	json_t *j = NULL, *steps, *s;
	json_error_t je;
	size_t k;
	uint64_t id;
	int rc = 0;
	snprintf(img, sizeof img, "polish/%s", name);
	if (!(path = kiln_fs_join(dist, img)))
		return kiln_error_set(e, KILN_E_NOMEM, "verify", "out of memory");
	j = json_load_file(path, 0, &je);
	steps = json_object_get(j, "steps");
	if (!j || !json_is_array(steps) || !json_is_integer(json_object_get(j, "id"))) {
		rc = problem(r, e, "polish/%s: not a polish chain (%s)", name, j ? "no id or steps"
								       : je.text);
		goto out;
	}
	id = (uint64_t)json_integer_value(json_object_get(j, "id"));
	snprintf(prev, sizeof prev, "%s", str(j, "render"));
	json_array_foreach(steps, k, s) {
		int same;
		r->checks++;
		if (strcmp(str(s, "input"), prev) &&
		    (rc = problem(r, e, "polish/%s: step %zu (%s) reads %.12s..., but the image "
				  "before it is %.12s...", name, k, str(s, "kind"), str(s, "input"),
				  prev)))
			goto out;
		if (json_is_true(json_object_get(s, "image")))
			snprintf(prev, sizeof prev, "%s", str(s, "output"));
		if ((rc = recompute(st, s, &same, e)))
			goto out;
		if (same >= 0)
			r->checks++;
		if (!same && (rc = problem(r, e, "polish/%s: step %zu (%s) made again from its "
					   "input gives another result than %.12s...", name, k,
					   str(s, "kind"), str(s, "output"))))
			goto out;
	}
	r->checks++;
	if (strcmp(prev, str(j, "image")) &&
	    (rc = problem(r, e, "polish/%s: the chain ends with %.12s..., but names %.12s... as "
			  "the token's image", name, prev, str(j, "image"))))
		goto out;
	/* the token's image is images/<id>.<ext> (svg with image.format svg; a raster image
	 * may have its SVG beside it, and an SVG image its PNG): the one with the chain's hash */
	for (size_t x = 0; x < 4 && strcmp(sha, str(j, "image")); x++) {
		char *f, got[65];
		snprintf(name1, sizeof name1, "images/%llu.%s", (unsigned long long)id, exts[x]);
		if (!(f = kiln_fs_join(dist, name1)) ||
		    released_sha(f, x == 0, str(j, "image"), got)) {
			free(f);
			rc = kiln_error_set(e, KILN_E_NOMEM, "verify", "out of memory");
			goto out;
		}
		if (got[0] && (!sha[0] || !strcmp(got, str(j, "image")))) {
			memcpy(sha, got, sizeof sha);
			memcpy(img, name1, sizeof img);
		}
		free(f);
	}
	r->checks++;
	if (sha[0] && strcmp(sha, str(j, "image")) &&
	    redacted_match(st, published, str(j, "image"), sha) < 0) {
		rc = kiln_error_set(e, KILN_E_NOMEM, "verify", "out of memory");
		goto out;
	}
	if (strcmp(sha, str(j, "image")))
		rc = problem(r, e, "polish/%s: the chain's final image is %.12s..., but %s is "
			     "%.12s...", name, str(j, "image"), sha[0] ? img : "the token's image",
			     sha[0] ? sha : "missing");
out:
	json_decref(j);
	free(path);
	return rc;
}

/* The portfolio log's prompt.redacted entries of dist ("from:image" -> true); an empty object
 * when there is no log. NULL when out of memory. */
static json_t *published_redactions(const char *dist)
{
	json_t *o = json_object();
	char *path = kiln_fs_join(dist, "portfolio/log/entries.jsonl"), *line = NULL;
	size_t cap = 0;
	FILE *f;
	if (!o || !path) {
		json_decref(o);
		free(path);
		return NULL;
	}
	if ((f = fopen(path, "r"))) {
		while (getline(&line, &cap, f) > 0) {
			json_t *l, *fact;
			char key[130];
			if (!strstr(line, "\"prompt.redacted\"") || !(l = json_loads(line, 0, NULL)))
				continue;
			fact = json_object_get(l, "fact");
			if (!strcmp(str(l, "kind"), "prompt.redacted") &&
			    strlen(str(fact, "from")) == 64 && strlen(str(fact, "image")) == 64) {
				snprintf(key, sizeof key, "%s:%s", str(fact, "from"), str(fact, "image"));
				if (json_object_set_new(o, key, json_true())) {
					json_decref(l);
					json_decref(o);
					o = NULL;
					break;
				}
			}
			json_decref(l);
		}
		fclose(f);
	}
	free(line);
	free(path);
	return o;
}

int kiln_polish_verify(const char *dist, const char *store_dir, struct kiln_verify_result *r,
		       struct kiln_error *e)
{
	json_t *published;
	char *dir = kiln_fs_join(dist, "polish");
	struct kiln_store *st = NULL;
	DIR *d;
	struct dirent *de;
	int rc = 0;
	if (!dir)
		return kiln_error_set(e, KILN_E_NOMEM, "verify", "out of memory");
	if (!(d = opendir(dir))) {
		free(dir);
		return 0;
	}
	if (!(published = published_redactions(dist))) {
		closedir(d);
		free(dir);
		return kiln_error_set(e, KILN_E_NOMEM, "verify", "out of memory");
	}
	if (store_dir && kiln_fs_is_dir(store_dir) && kiln_store_open_readonly(&st, store_dir, e))
		st = NULL;
	while (!rc && (de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (n > 5 && !strcmp(de->d_name + n - 5, ".json"))
			rc = check_one(dist, de->d_name, st, published, r, e);
	}
	closedir(d);
	kiln_store_free(st);
	json_decref(published);
	free(dir);
	return rc;
}
