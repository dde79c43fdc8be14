/* kiln qa: the collection's unit tests. On a kiln project: every token's rendered image, the
 * collection (trait counts, uniqueness, ids) and dist/'s metadata if released; results go to
 * the catalog, where `kiln release` reads them. On any folder: a HashLips build/ (images/ +
 * json/), kiln's dist/ (images/ + metadata/) or a Sugar assets/ folder. Exit 1 when any
 * error-level check fails. */
#include "cli.h"
#include "kiln/qa.h"
#include "kiln/qa.h"

#include <ctype.h>
#include <dirent.h>
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void help(void)
{
	printf("usage: kiln qa [PATH] [--standard erc721|metaplex] [--json[=FILE]] [--junit FILE]\n"
	       "               [--html DIR] [--near N] [--max-size BYTES] [--width W --height H]\n"
	       "               [--provenance HASH] [--near-dhash N] [--config kiln.yaml]\n\n"
	       "Checks every token image (decodes completely, size and format, file size, colour\n"
	       "and alpha, blank and all-black frames, exact duplicates by pixels, near duplicates\n"
	       "by perceptual hash), the metadata (ERC-721/OpenSea, Metaplex/Sugar rules) and, in\n"
	       "a kiln project, the collection (trait counts against the plan, uniqueness, ids).\n"
	       "A declared provenance hash is recomputed: a release's provenance.json, or\n"
	       "--provenance HASH over the images in token id order (BAYC method).\n"
	       "Without PATH it checks the project (-C DIR or here) and records the results in the\n"
	       "catalog: `kiln release` refuses tokens that fail. With PATH it checks any\n"
	       "collection folder: a HashLips build/ folder, a kiln dist/ or a Sugar assets/ folder.\n\n"
	       "  --standard S      erc721 or metaplex (default: from the folder's layout)\n"
	       "  --json[=FILE]     findings as JSON (to stdout without FILE)\n"
	       "  --junit FILE      JUnit XML: a test case per check per token, a failure per\n"
	       "                    error finding, warnings as <system-out> of passing cases\n"
	       "  --html DIR        a report page with thumbnails of failing tokens\n"
	       "  --near N          near-duplicate pHash distance (default 4; 'off')\n"
	       "  --near-dhash N    near duplicates by dHash too, within N bits (default off)\n"
	       "  --max-size BYTES  file size limit (default 10 MiB)\n"
	       "  --width W, --height H  expected image size (a project: the spec's; a folder:\n"
	       "                    without them, sizes that differ from most tokens' fail)\n"
	       "  --config FILE     a kiln.yaml whose qa: block (thresholds, severities) applies\n"
	       "                    to PATH (a project always uses its own)\n"
	       "  --provenance HASH the provenance hash the collection declared\n"
	       "  -q, --quiet       no summary table\n\n"
	       "Thresholds and severities per check: the qa: block of kiln.yaml (docs/qa.md).\n"
	       "exit status: 0 every error-level check passed, 1 some failed, 2 bad usage.\n");
}

static const char *const image_checks[] = {
	"image.missing", "image.decode", "image.file_size", "image.format", "image.dimensions",
	"image.color", "image.alpha", "image.black", "image.blank", "image.duplicate",
	"image.near_duplicate",
};
#define NIMAGE_CHECKS (sizeof image_checks / sizeof image_checks[0])

struct token_list {
	struct kiln_qa_token *v;
	char **owned;  /* strings to free */
	size_t n, nowned;
	const char **sha; /* project: each token's image SHA-256 (into owned), or NULL */
};

static void tokens_free(struct token_list *t)
{
	for (size_t i = 0; i < t->nowned; i++)
		free(t->owned[i]);
	free(t->owned);
	free(t->v);
	free(t->sha);
}

static int is_number(const char *s, size_t n)
{
	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

static int cmp_tok(const void *a, const void *b)
{
	const struct kiln_qa_token *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* images named N.<ext> in dir */
static int folder_tokens(const char *dir, struct token_list *t)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t cap = 0;
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		const char *dot = strrchr(de->d_name, '.');
		if (!dot || !is_number(de->d_name, (size_t)(dot - de->d_name)) ||
		    !strcmp(dot, ".json"))
			continue;
		if (t->n == cap) {
			cap = cap ? cap * 2 : 256;
			t->v = realloc(t->v, cap * sizeof *t->v);
			t->owned = realloc(t->owned, 2 * cap * sizeof *t->owned);
			if (!t->v || !t->owned)
				break;
		}
		char *path = malloc(strlen(dir) + strlen(de->d_name) + 2), *name = strdup(de->d_name);
		sprintf(path, "%s/%s", dir, de->d_name);
		t->owned[t->nowned++] = path;
		t->owned[t->nowned++] = name;
		t->v[t->n].id = strtoull(de->d_name, NULL, 10);
		t->v[t->n].name = name;
		t->v[t->n].path = path;
		t->v[t->n].extra = 0;
		t->n++;
	}
	closedir(d);
	qsort(t->v, t->n, sizeof *t->v, cmp_tok);
	return 0;
}

/* tokens that have metadata (N.json or N) but no image: reported as image.missing */
static void add_missing(const char *meta_dir, struct token_list *t)
{
	DIR *d = opendir(meta_dir);
	struct dirent *de;
	const char *ext = "png";
	if (!d)
		return;
	if (t->n) {
		const char *dot = strrchr(t->v[0].name, '.');
		if (dot)
			ext = dot + 1;
	}
	while ((de = readdir(d))) {
		size_t len = strcspn(de->d_name, ".");
		uint64_t id;
		int have = 0;
		if (!is_number(de->d_name, len) ||
		    (de->d_name[len] && strcmp(de->d_name + len, ".json")))
			continue;
		id = strtoull(de->d_name, NULL, 10);
		for (size_t i = 0; i < t->n && !have; i++)
			have = t->v[i].id == id;
		if (have)
			continue;
		t->v = realloc(t->v, (t->n + 1) * sizeof *t->v);
		t->owned = realloc(t->owned, (t->nowned + 1) * sizeof *t->owned);
		char *name = malloc(64);
		snprintf(name, 64, "%llu.%s", (unsigned long long)id, ext);
		t->owned[t->nowned++] = name;
		t->v[t->n].id = id;
		t->v[t->n].name = name;
		t->v[t->n].path = NULL;
		t->v[t->n].extra = 0;
		t->n++;
	}
	closedir(d);
	qsort(t->v, t->n, sizeof *t->v, cmp_tok);
}

static int is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int exists(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0;
}

/* --- reports --- */

static void xml_escape(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		default:
			if ((unsigned char)*s < 0x20 && *s != '\n' && *s != '\t')
				fputc(' ', f);
			else
				fputc(*s, f);
		}
	}
}

/* The token a finding is about, by its file: N.<ext> / N.json is token N, an ERC-1155
 * {id}.json is id, dist/'s metaplex/assets/N.* is the token at position N. Collection checks
 * and files without a number (provenance.json, collection.json) belong to no token. */
static int finding_token(const struct kiln_finding *x, const struct token_list *t, uint64_t *id)
{
	const char *file = x->file;
	char stem[256];
	size_t len;
	if (!file || !*file || !strncmp(x->check, "collection.", 11))
		return 0;
	kiln_qa_stem(file, stem, sizeof stem);
	len = strlen(stem);
	if (!strncmp(file, "erc1155/metadata/", 17)) {
		if (len != 64 || strspn(stem, "0") < 48 || strspn(stem, "0123456789abcdef") != 64)
			return 0;
		*id = strtoull(stem + 48, NULL, 16);
		return 1;
	}
	if (!is_number(stem, len) || len > 18)
		return 0;
	*id = strtoull(stem, NULL, 10);
	if (!strncmp(file, "metaplex/assets/", 16)) {
		if (*id >= t->n || t->v[*id].extra)
			return 0;
		*id = t->v[*id].id;
	}
	return 1;
}

struct jrow {
	int tok;        /* 1: about token id */
	uint64_t id;
	size_t i;       /* index in the findings */
};

static int cmp_jrow(const void *a, const void *b)
{
	const struct jrow *x = a, *y = b;
	if (x->tok != y->tok)
		return y->tok - x->tok;
	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* One finding as its own test case: an error is a <failure>, a warning a passing case whose
 * <system-out> says it (CI systems count failures; warnings must not fail a build). */
static void junit_case(FILE *out, const char *cls, const struct kiln_finding *x, size_t *tests,
		       size_t *failures)
{
	fputs("<testcase classname=\"", out);
	xml_escape(out, cls);
	fputs("\" name=\"", out);
	xml_escape(out, x->check);
	if (x->path && *x->path) {
		fputc(' ', out);
		xml_escape(out, x->path);
	}
	fputs("\">", out);
	if (x->severity == KILN_SEV_ERROR) {
		fputs("<failure message=\"", out);
		xml_escape(out, x->message);
		fputs("\" type=\"", out);
		xml_escape(out, x->check);
		fputs("\">", out);
	} else {
		fputs("<system-out>warning: ", out);
	}
	xml_escape(out, x->file);
	fputs(x->path && *x->path ? " " : "", out);
	xml_escape(out, x->path);
	fputs(": ", out);
	xml_escape(out, x->message);
	fputs(x->severity == KILN_SEV_ERROR ? "</failure>" : "</system-out>", out);
	fputs("</testcase>\n", out);
	(*tests)++;
	*failures += x->severity == KILN_SEV_ERROR;
}

/* JUnit XML as CI systems read it: per token (every token with an image or a finding, json-only
 * ones included) a test case per image check and one for its metadata; each finding its own
 * test case (a check that found two problems is two cases); findings on no token are cases of
 * the class "collection". failures = the number of error findings. */
static int write_junit(const char *path, const struct token_list *t,
		       const struct kiln_findings *f)
{
	char tmp[4096], *body = NULL;
	size_t blen = 0, tests = 0, failures = 0, nids = 0, k = 0;
	struct jrow *rows = calloc(f->n + 1, sizeof *rows);
	uint64_t *ids = calloc(t->n + f->n + 1, sizeof *ids);
	FILE *out = NULL, *mem = open_memstream(&body, &blen);
	int rc = -1;
	if (!rows || !ids || !mem)
		goto done;
	for (size_t i = 0; i < f->n; i++) {
		rows[i].i = i;
		rows[i].tok = finding_token(&f->v[i], t, &rows[i].id);
		if (rows[i].tok)
			ids[nids++] = rows[i].id;
	}
	for (size_t i = 0; i < t->n; i++)
		if (!t->v[i].extra)
			ids[nids++] = t->v[i].id;
	qsort(rows, f->n, sizeof *rows, cmp_jrow);
	qsort(ids, nids, sizeof *ids, cmp_u64);
	for (size_t i = 0; i < nids; i++) {
		char cls[64];
		size_t lo, hi;
		int any;
		if (i && ids[i] == ids[i - 1])
			continue;
		snprintf(cls, sizeof cls, "token.%llu", (unsigned long long)ids[i]);
		while (k < f->n && rows[k].tok && rows[k].id < ids[i])
			k++;
		for (lo = k, hi = k; hi < f->n && rows[hi].tok && rows[hi].id == ids[i]; hi++)
			;
		for (size_t c = 0; c < NIMAGE_CHECKS; c++) {
			any = 0;
			for (size_t r = lo; r < hi; r++)
				if (!strcmp(f->v[rows[r].i].check, image_checks[c])) {
					junit_case(mem, cls, &f->v[rows[r].i], &tests, &failures);
					any = 1;
				}
			if (!any) {
				fprintf(mem, "<testcase classname=\"%s\" name=\"%s\"/>\n", cls,
					image_checks[c]);
				tests++;
			}
		}
		any = 0;
		for (size_t r = lo; r < hi; r++)
			if (strncmp(f->v[rows[r].i].check, "image.", 6)) {
				junit_case(mem, cls, &f->v[rows[r].i], &tests, &failures);
				any = 1;
			}
		if (!any) {
			fprintf(mem, "<testcase classname=\"%s\" name=\"metadata\"/>\n", cls);
			tests++;
		}
		k = hi;
	}
	for (size_t r = 0; r < f->n; r++)
		if (!rows[r].tok)
			junit_case(mem, "collection", &f->v[rows[r].i], &tests, &failures);
	if (fclose(mem) != 0) {
		mem = NULL;
		goto done;
	}
	mem = NULL;
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	if (!(out = fopen(tmp, "w")))
		goto done;
	fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		     "<testsuites name=\"kiln qa\" tests=\"%zu\" failures=\"%zu\" errors=\"0\">\n"
		     "<testsuite name=\"kiln qa\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" "
		     "skipped=\"0\">\n", tests, failures, tests, failures);
	fwrite(body, 1, blen, out);
	fputs("</testsuite>\n</testsuites>\n", out);
	rc = fclose(out) == 0 && rename(tmp, path) == 0 ? 0 : -1;
done:
	if (mem)
		fclose(mem);
	free(body);
	free(rows);
	free(ids);
	return rc;
}

static json_t *findings_json(const struct kiln_findings *f, size_t checked)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < f->n; i++) {
		const struct kiln_finding *x = &f->v[i];
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s?, s:s?, s:s}", "check", x->check,
			"severity", kiln_severity_name(x->severity), "file", x->file, "path",
			x->path, "message", x->message));
	}
	return json_pack("{s:I, s:I, s:I, s:o}", "images", (json_int_t)checked, "errors",
			 (json_int_t)kiln_findings_count(f, KILN_SEV_ERROR), "warnings",
			 (json_int_t)kiln_findings_count(f, KILN_SEV_WARNING), "findings", arr);
}

static void html_escape(FILE *f, const char *s)
{
	xml_escape(f, s);
}

static int write_html(const char *dir, const struct token_list *t, const struct kiln_findings *f,
		      const struct kiln_qa_image_result *ir, int quiet)
{
	char path[4096], thumbs[4096];
	FILE *out;
	struct kiln_error e;
	snprintf(thumbs, sizeof thumbs, "%s/thumbs", dir);
	if ((!is_dir(dir) && mkdir(dir, 0755) != 0) || (!is_dir(thumbs) && mkdir(thumbs, 0755) != 0))
		return -1;
	snprintf(path, sizeof path, "%s/index.html", dir);
	out = fopen(path, "w");
	if (!out)
		return -1;
	fprintf(out, "<!doctype html><meta charset=utf-8><title>kiln qa</title>\n<style>body{font:14px "
		     "sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
		     "padding:4px 8px;vertical-align:top}.error{color:#b00}.warning{color:#a60}img{"
		     "image-rendering:pixelated;border:1px solid #888}</style>\n<h1>kiln qa</h1>\n"
		     "<p>%zu images, %zu errors, %zu warnings</p>\n", t->n,
		kiln_findings_count(f, KILN_SEV_ERROR), kiln_findings_count(f, KILN_SEV_WARNING));
	/* near and exact duplicates side by side */
	if (ir->npairs) {
		fprintf(out, "<h2>Look-alikes</h2><table><tr><th>token</th><th>token</th><th>pHash "
			     "distance</th></tr>\n");
		for (size_t k = 0; k < ir->npairs; k++) {
			const struct kiln_qa_token *a = &t->v[ir->pairs[k].a], *b = &t->v[ir->pairs[k].b];
			fputs("<tr>", out);
			for (int s = 0; s < 2; s++) {
				const struct kiln_qa_token *x = s ? b : a;
				char stem[64], th[4200];
				kiln_qa_stem(x->name, stem, sizeof stem);
				snprintf(th, sizeof th, "%s/%s.png", thumbs, stem);
				if (!exists(th) && kiln_qa_thumbnail(x->path, th, 160, &e) && !quiet)
					fprintf(stderr, "kiln: %s: %s\n", e.where, e.msg);
				fprintf(out, "<td><img src=\"thumbs/%s.png\" width=160><br>", stem);
				html_escape(out, x->name);
				fputs("</td>", out);
			}
			fprintf(out, "<td>%d%s</td></tr>\n", ir->pairs[k].distance,
				ir->pairs[k].distance ? "" : " (same pixels)");
		}
		fputs("</table>\n", out);
	}
	fprintf(out, "<h2>Findings</h2><table><tr><th>token</th><th>check</th><th>severity</th>"
		     "<th>where</th><th>message</th></tr>\n");
	for (size_t i = 0; i < f->n; i++) {
		const struct kiln_finding *x = &f->v[i];
		char stem[64] = "", th[4200];
		const struct kiln_qa_token *tok = NULL;
		if (x->file) {
			kiln_qa_stem(x->file, stem, sizeof stem);
			for (size_t k = 0; k < t->n && !tok; k++) {
				char s2[64];
				kiln_qa_stem(t->v[k].name, s2, sizeof s2);
				if (!strcmp(s2, stem) && t->v[k].path && exists(t->v[k].path))
					tok = &t->v[k];
			}
		}
		fputs("<tr><td>", out);
		if (tok) {
			snprintf(th, sizeof th, "%s/%s.png", thumbs, stem);
			if (!exists(th) && kiln_qa_thumbnail(tok->path, th, 160, &e)) {
				/* an undecodable image has no thumbnail: its finding says why */
			}
			if (exists(th))
				fprintf(out, "<img src=\"thumbs/%s.png\" width=96><br>", stem);
		}
		html_escape(out, stem);
		fprintf(out, "</td><td>%s</td><td class=%s>%s</td><td>", x->check,
			kiln_severity_name(x->severity), kiln_severity_name(x->severity));
		html_escape(out, x->file);
		if (x->path && *x->path) {
			fputs(" ", out);
			html_escape(out, x->path);
		}
		fputs("</td><td>", out);
		html_escape(out, x->message);
		fputs("</td></tr>\n", out);
	}
	fputs("</table>\n", out);
	return fclose(out) == 0 ? 0 : -1;
}

static void summary(const struct kiln_findings *f, size_t images)
{
	const char *seen[256];
	size_t nseen = 0;
	printf("%-28s %7s %8s  %s\n", "check", "errors", "warnings", "first");
	for (size_t i = 0; i < f->n && nseen < 256; i++) {
		size_t k, ne = 0, nw = 0;
		for (k = 0; k < nseen; k++)
			if (!strcmp(seen[k], f->v[i].check))
				break;
		if (k < nseen)
			continue;
		seen[nseen++] = f->v[i].check;
		for (size_t j = i; j < f->n; j++)
			if (!strcmp(f->v[j].check, f->v[i].check)) {
				ne += f->v[j].severity == KILN_SEV_ERROR;
				nw += f->v[j].severity == KILN_SEV_WARNING;
			}
		printf("%-28s %7zu %8zu  %s%s%s: %.80s\n", f->v[i].check, ne, nw,
		       f->v[i].file ? f->v[i].file : "", f->v[i].path && *f->v[i].path ? " " : "",
		       f->v[i].path ? f->v[i].path : "", f->v[i].message);
	}
	printf("qa: %zu images checked, %zu errors, %zu warnings: %s\n", images,
	       kiln_findings_count(f, KILN_SEV_ERROR), kiln_findings_count(f, KILN_SEV_WARNING),
	       kiln_findings_count(f, KILN_SEV_ERROR) ? "FAILED" : "passed");
}

static int cmp_tok_id(const void *key, const void *elem)
{
	uint64_t id = *(const uint64_t *)key;
	const struct kiln_qa_token *t = elem;
	return id < t->id ? -1 : id > t->id;
}

/* Findings [0, ncat) come from the catalog's checks (its images and plan), the rest from
 * dist/: each is stored with its token (0 is an id like any other) and the SHA-256 of the
 * image that token held when judged, so a later render makes the verdict stale. */
static int save_results(struct kiln_project *p, const struct kiln_findings *f, size_t ncat,
			const struct token_list *t)
{
	struct kiln_qa_row *rows = calloc(f->n + 1, sizeof *rows);
	struct kiln_error e;
	char detail[128];
	int rc;
	if (!rows)
		return 1;
	for (size_t i = 0; i < f->n; i++) {
		rows[i].check = f->v[i].check;
		rows[i].severity = kiln_severity_name(f->v[i].severity);
		rows[i].file = f->v[i].file;
		rows[i].path = f->v[i].path;
		rows[i].message = f->v[i].message;
		rows[i].origin = i < ncat ? KILN_QA_ORIGIN_CATALOG : KILN_QA_ORIGIN_DIST;
		rows[i].has_item = finding_token(&f->v[i], t, &rows[i].item_id);
		if (rows[i].has_item && t->sha) {
			const struct kiln_qa_token *k = bsearch(&rows[i].item_id, t->v, t->n,
								sizeof *t->v, cmp_tok_id);
			rows[i].image = k ? t->sha[k - t->v] : NULL;
		}
	}
	snprintf(detail, sizeof detail, "{\"errors\":%zu,\"warnings\":%zu}",
		 kiln_findings_count(f, KILN_SEV_ERROR), kiln_findings_count(f, KILN_SEV_WARNING));
	kiln_error_clear(&e);
	rc = kiln_catalog_save_qa(p->catalog, rows, f->n, detail, &e);
	free(rows);
	return rc ? cli_fail(&e) : 0;
}

static int is_hash(const char *s)
{
	size_t n = strlen(s);
	return n == 64 && strspn(s, "0123456789abcdefABCDEF") == 64;
}

/* The provenance hash declared with --provenance (over the tokens in id order) or in a kiln
 * release's provenance.json in dir (over the files it lists, each with its SHA-256). */
static int check_provenance(const char *flag, const char *dir, const struct token_list *t,
			    struct kiln_findings *f, struct kiln_error *e)
{
	struct kiln_qa_provenance pv = {flag, "--provenance", NULL, NULL, NULL, 0};
	char path[4096], src[4200];
	const char **files = NULL, **names = NULL, **listed = NULL;
	char **own = NULL;
	json_t *j = NULL, *imgs = NULL;
	json_error_t je;
	int rc = 0;
	if (!flag) {
		snprintf(path, sizeof path, "%s/provenance.json", dir);
		if (!exists(path))
			return 0;
		snprintf(src, sizeof src, "%s", path);
		pv.source = src;
		j = json_load_file(path, 0, &je);
		imgs = j ? json_object_get(j, "images") : NULL;
		pv.declared = j ? json_string_value(json_object_get(j, "provenance_hash")) : NULL;
		if (!j || !json_is_array(imgs) || !pv.declared || !is_hash(pv.declared)) {
			if (kiln_findings_add(f, "collection.provenance", KILN_SEV_ERROR, src, NULL,
					      "%s", j ? "has no provenance_hash (64 hex digits) and "
					      "images list: not a kiln provenance record" : je.text))
				rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
			goto out;
		}
		pv.n = json_array_size(imgs);
	} else {
		pv.n = t->n;
	}
	files = calloc(pv.n + 1, sizeof *files);
	names = calloc(pv.n + 1, sizeof *names);
	listed = calloc(pv.n + 1, sizeof *listed);
	own = calloc(pv.n + 1, sizeof *own);
	if (!files || !names || !listed || !own) {
		rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < pv.n; i++) {
		if (flag) {
			files[i] = t->v[i].path ? t->v[i].path : "";
			names[i] = t->v[i].name;
			continue;
		}
		json_t *x = json_array_get(imgs, i);
		const char *file = json_string_value(json_object_get(x, "file"));
		listed[i] = json_string_value(json_object_get(x, "sha256"));
		names[i] = file ? file : "(an images entry without file)";
		if (file && (own[i] = malloc(strlen(dir) + strlen(file) + 2)))
			sprintf(own[i], "%s/%s", dir, file);
		files[i] = own[i] ? own[i] : "";
	}
	pv.files = files;
	pv.names = names;
	pv.listed = flag ? NULL : listed;
	rc = kiln_qa_provenance(&pv, f, e);
out:
	for (size_t i = 0; own && i < pv.n; i++)
		free(own[i]);
	free(own);
	free(files);
	free(names);
	free(listed);
	json_decref(j);
	return rc;
}

/* Move src's findings to dst, their file names prefixed (dist/'s other outputs repeat the
 * names 0.json, 1.json, ...: "metaplex/assets/0.json" says which one). */
static int append_prefixed(struct kiln_findings *dst, struct kiln_findings *src,
			   const char *prefix, struct kiln_error *e)
{
	int rc = 0;
	for (size_t i = 0; i < src->n && !rc; i++) {
		const struct kiln_finding *x = &src->v[i];
		char file[4096];
		snprintf(file, sizeof file, "%s%s", x->file && *x->file ? prefix : "",
			 x->file ? x->file : "");
		if (kiln_findings_add(dst, x->check, x->severity, *file ? file : NULL, x->path, "%s",
				      x->message))
			rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
	}
	kiln_findings_release(src);
	return rc;
}

/* A release's metadata outputs under dir (a kiln dist/, or a HashLips build/ when meta_dir is
 * its json/): the ERC-721 set with the reveal mapping (provenance.json's starting index) and
 * the image location (ipfs.json's image_uri) a release wrote, dist/erc1155/metadata and
 * dist/metaplex/assets. */
static int check_outputs(const char *dir, const char *meta_dir, const char *images_dir,
			 struct kiln_findings *f, struct kiln_error *e)
{
	struct kiln_metacheck_opts mo;
	struct kiln_findings tmp = KILN_FINDINGS_INIT;
	char path[4096], base[4096] = "";
	json_t *j;
	int rc = 0;
	memset(&mo, 0, sizeof mo);
	snprintf(path, sizeof path, "%s/provenance.json", dir);
	if ((j = json_load_file(path, 0, NULL))) {
		json_t *si = json_object_get(j, "starting_index");
		if (json_is_integer(si) && json_integer_value(si) >= 0) {
			mo.has_starting_index = 1;
			mo.starting_index = (unsigned long long)json_integer_value(si);
		}
		json_decref(j);
	}
	snprintf(path, sizeof path, "%s/ipfs.json", dir);
	if ((j = json_load_file(path, 0, NULL))) {
		const char *u = json_string_value(json_object_get(j, "image_uri"));
		size_t i;
		json_t *x;
		if (u)
			snprintf(base, sizeof base, "%s", u);
		else
			json_array_foreach(json_object_get(j, "entries"), i, x)
				if (!strcmp(json_string_value(json_object_get(x, "name")) ?: "", "images") &&
				    json_string_value(json_object_get(x, "cid")))
					snprintf(base, sizeof base, "ipfs://%s",
						 json_string_value(json_object_get(x, "cid")));
		json_decref(j);
		for (size_t n = strlen(base); n && base[n - 1] == '/';)
			base[--n] = 0;
	}
	mo.image_base = *base ? base : NULL;
	mo.images_dir = images_dir && is_dir(images_dir) ? images_dir : NULL;
	if (meta_dir && (rc = kiln_metacheck_folder_erc721_opts(meta_dir, &mo, f, e)))
		return rc;
	snprintf(path, sizeof path, "%s/erc1155/metadata", dir);
	if (is_dir(path)) {
		mo.erc1155 = 1;
		if ((rc = kiln_metacheck_folder_erc721_opts(path, &mo, &tmp, e)) ||
		    (rc = append_prefixed(f, &tmp, "erc1155/metadata/", e)))
			goto out;
	}
	snprintf(path, sizeof path, "%s/metaplex/assets", dir);
	if (is_dir(path) && ((rc = kiln_metacheck_sugar_folder(path, &tmp, e)) ||
			     (rc = append_prefixed(f, &tmp, "metaplex/assets/", e))))
		goto out;
out:
	kiln_findings_release(&tmp);
	return rc;
}

/* The collection image (Sugar's collection.<ext>, the spec's metaplex.collection.image) is
 * decoded and checked like a token's, but is not one: it sits last (id UINT64_MAX keeps the
 * list sorted by id) and stays out of duplicates and the size majority. */
static void add_extra(struct token_list *t, const char *path, const char *name)
{
	struct kiln_qa_token *v = realloc(t->v, (t->n + 1) * sizeof *v);
	char **o = v ? realloc(t->owned, (t->nowned + 2) * sizeof *o) : NULL;
	if (v)
		t->v = v;
	if (!o)
		return;
	t->owned = o;
	t->owned[t->nowned++] = strdup(path);
	t->owned[t->nowned++] = strdup(name);
	if (!t->owned[t->nowned - 1] || !t->owned[t->nowned - 2])
		return;
	memset(&t->v[t->n], 0, sizeof t->v[t->n]);
	t->v[t->n].id = UINT64_MAX;
	t->v[t->n].path = t->owned[t->nowned - 2];
	t->v[t->n].name = t->owned[t->nowned - 1];
	t->v[t->n].extra = 1;
	t->n++;
}

static void add_sugar_collection(const char *dir, struct token_list *t)
{
	static const char *const ext[] = {"png", "jpg", "jpeg", "gif", "webp"};
	for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
		char path[4096], name[32];
		snprintf(name, sizeof name, "collection.%s", ext[i]);
		snprintf(path, sizeof path, "%s/%s", dir, name);
		if (exists(path)) {
			add_extra(t, path, name);
			return;
		}
	}
}

/* A positive pixel count, or -1. */
static int parse_size(const char *s)
{
	char *end;
	long v;
	if (!isdigit((unsigned char)*s))
		return -1;
	v = strtol(s, &end, 10);
	return *end || v <= 0 || v > 1000000 ? -1 : (int)v;
}

/* The qa: block's thresholds (the severities are applied to the findings). */
static void qa_spec_opts(const struct kiln_qa_spec *q, struct kiln_qa_opts *o)
{
	if (q->max_bytes)
		o->max_bytes = q->max_bytes;
	if (q->min_bytes)
		o->min_bytes = q->min_bytes;
	if (q->uniform_stddev > 0)
		o->uniform_stddev = q->uniform_stddev;
	if (q->black_level)
		o->black_level = q->black_level;
	if (q->near_threshold)
		o->near_threshold = q->near_threshold == -2 ? 0 : q->near_threshold;
	if (q->near_dhash_threshold)
		o->near_dhash_threshold = q->near_dhash_threshold == -2 ? 0 : q->near_dhash_threshold;
	o->alpha = q->alpha;
}

static void apply_severities(struct kiln_findings *f, const struct kiln_qa_spec *q)
{
	struct kiln_qa_severity sv[256];
	size_t n = q->nchecks < 256 ? q->nchecks : 256;
	for (size_t i = 0; i < n; i++) {
		sv[i].check = q->checks[i].check;
		sv[i].severity = q->checks[i].severity;
	}
	if (n)
		kiln_qa_apply_severities(f, sv, n);
}

int cmd_qa(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"standard", required_argument, NULL, 's'}, {"json", optional_argument, NULL, 'j'},
		{"junit", required_argument, NULL, 'J'}, {"html", required_argument, NULL, 'H'},
		{"near", required_argument, NULL, 'n'}, {"max-size", required_argument, NULL, 'm'},
		{"width", required_argument, NULL, 'W'}, {"height", required_argument, NULL, 'E'},
		{"provenance", required_argument, NULL, 'P'}, {"quiet", no_argument, NULL, 'q'},
		{"near-dhash", required_argument, NULL, 'D'}, {"config", required_argument, NULL, 'C'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	struct kiln_qa_opts o;
	struct kiln_findings f = KILN_FINDINGS_INIT, fd = KILN_FINDINGS_INIT;
	struct kiln_qa_image_result ir = {NULL, 0, 0};
	struct token_list toks = {NULL, NULL, 0, 0, NULL};
	struct kiln_project *p = NULL;
	struct kiln_spec *config = NULL;
	const struct kiln_qa_spec *qspec = NULL;
	struct kiln_error e;
	struct cli_progress cp;
	const char *standard = NULL, *json_file = NULL, *junit = NULL, *html = NULL, *path = NULL;
	const char *provenance = NULL, *config_file = NULL;
	int c, json = 0, quiet = 0, rc = 0, near = -100, dnear = -100, width = 0, height = 0;
	uint64_t max_size = 0;
	size_t ncat;
	char meta_dir[4096] = "", sugar_dir[4096] = "", prov_dir[4096] = "", out_dir[4096] = "";
	char images_dir[4096] = "";

	optind = 1;
	while ((c = getopt_long(argc, argv, "q", opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 's': standard = optarg; break;
		case 'j': json = 1; json_file = optarg; break;
		case 'J': junit = optarg; break;
		case 'H': html = optarg; break;
		case 'n':
		case 'D': {
			int *t = c == 'n' ? &near : &dnear, v;
			if (!strcmp(optarg, "off")) {
				*t = -1;
				break;
			}
			v = (int)strtol(optarg, &end, 10);
			if (!*optarg || *end || v < 0 || v > 32)
				return cli_usage("qa", "--%s takes 0..32 or off, not '%s'",
						 c == 'n' ? "near" : "near-dhash", optarg);
			*t = v;
			break;
		}
		case 'm':
			max_size = strtoull(optarg, &end, 10);
			if (*end || !max_size || !isdigit((unsigned char)*optarg))
				return cli_usage("qa", "--max-size takes a number of bytes");
			break;
		case 'W':
		case 'E':
			if (parse_size(optarg) < 0)
				return cli_usage("qa", "--%s takes a positive number of pixels, not '%s'",
						 c == 'W' ? "width" : "height", optarg);
			*(c == 'W' ? &width : &height) = parse_size(optarg);
			break;
		case 'P':
			if (!is_hash(optarg))
				return cli_usage("qa", "--provenance takes a SHA-256 provenance hash "
						 "(64 hex digits), not '%s'", optarg);
			provenance = optarg;
			break;
		case 'C': config_file = optarg; break;
		case 'q': quiet = 1; break;
		case 'h': help(); return 0;
		default: return cli_usage("qa", "unknown option");
		}
	}
	if (standard && strcmp(standard, "erc721") && strcmp(standard, "metaplex"))
		return cli_usage("qa", "--standard is erc721 or metaplex, not '%s'", standard);
	if (optind + 1 < argc)
		return cli_usage("qa", "give at most one folder");
	if (optind < argc)
		path = argv[optind];
	if (config_file && !path)
		return cli_usage("qa", "--config is for a folder (PATH): a project uses its own "
				 "kiln.yaml");
	kiln_qa_opts_default(&o);
	kiln_error_clear(&e);
	cli_progress_init(&cp, 0, quiet || json);
	o.progress = cli_progress_cb;
	o.user = &cp;
	if (config_file) {
		if (kiln_spec_load(&config, config_file, &e))
			return cli_fail(&e);
		qspec = &config->qa;
		qa_spec_opts(qspec, &o);
	}

	if (!path) {
		/* a kiln project */
		struct kiln_items items;
		const struct kiln_spec *s;
		char dist_meta[4096];
		if ((rc = cli_open(cli, &p)))
			return rc;
		s = p->spec;
		qspec = &s->qa;
		o.width = s->width;
		o.height = s->height;
		o.format = s->format == KILN_FORMAT_PNG ? "png" : s->format == KILN_FORMAT_WEBP ? "webp"
												: "jpeg";
		qa_spec_opts(qspec, &o);
		if (kiln_catalog_items(p->catalog, s, &items, &e)) {
			rc = cli_fail(&e);
			goto out;
		}
		toks.v = calloc(items.n + 1, sizeof *toks.v);
		toks.owned = calloc(3 * items.n + 1, sizeof *toks.owned);
		toks.sha = calloc(items.n + 1, sizeof *toks.sha);
		if (!toks.v || !toks.owned || !toks.sha) {
			kiln_items_release(&items);
			rc = cli_fail(&(struct kiln_error){.code = KILN_E_NOMEM, .where = "qa", .msg = "out of memory"});
			goto out;
		}
		for (size_t i = 0; i < items.n; i++) {
			char name[64];
			snprintf(name, sizeof name, "%llu.%s", (unsigned long long)items.v[i].id,
				 kiln_format_ext(s->format));
			toks.v[i].id = items.v[i].id;
			toks.v[i].name = toks.owned[toks.nowned++] = strdup(name);
			toks.v[i].path = items.v[i].image[0] ?
				(toks.owned[toks.nowned++] = kiln_store_path(p->store, items.v[i].image))
				: NULL;
			if (items.v[i].image[0])
				toks.sha[i] = toks.owned[toks.nowned++] = strdup(items.v[i].image);
		}
		toks.n = items.n;
		kiln_items_release(&items);
		if (s->mpl_collection_image && !strstr(s->mpl_collection_image, "://")) {
			char cp2[4096], name[64];
			const char *dot = strrchr(s->mpl_collection_image, '.');
			snprintf(cp2, sizeof cp2, "%s/%s", p->dir, s->mpl_collection_image);
			snprintf(name, sizeof name, "collection%s", dot ? dot : "");
			add_extra(&toks, cp2, name);
		}
		if (kiln_qa_collection(p, &f, &e)) {
			rc = cli_fail(&e);
			goto out;
		}
		snprintf(dist_meta, sizeof dist_meta, "%s/dist/metadata", p->dir);
		if (is_dir(dist_meta))
			snprintf(meta_dir, sizeof meta_dir, "%s", dist_meta);
		snprintf(prov_dir, sizeof prov_dir, "%s/dist", p->dir);
		snprintf(out_dir, sizeof out_dir, "%s/dist", p->dir);
		snprintf(images_dir, sizeof images_dir, "%s/dist/images", p->dir);
	} else if (!is_dir(path)) {
		fprintf(stderr, "kiln qa: %s: no such folder\n", path);
		rc = 2;
		goto out;
	} else {
		char a[4096], b[4096];
		snprintf(prov_dir, sizeof prov_dir, "%s", path);
		snprintf(a, sizeof a, "%s/assets", path);
		snprintf(b, sizeof b, "%s/0.json", path);
		if ((standard && !strcmp(standard, "metaplex")) || is_dir(a) || exists(b)) {
			snprintf(sugar_dir, sizeof sugar_dir, "%s", is_dir(a) ? a : path);
			folder_tokens(sugar_dir, &toks);
			add_sugar_collection(sugar_dir, &toks);
		} else {
			snprintf(a, sizeof a, "%s/images", path);
			if (!is_dir(a)) {
				fprintf(stderr, "kiln qa: %s: not a collection folder: expected images/ "
					"with json/ or metadata/ (HashLips build/, kiln dist/), or a "
					"Sugar assets/ folder\n", path);
				rc = 2;
				goto out;
			}
			folder_tokens(a, &toks);
			snprintf(images_dir, sizeof images_dir, "%s", a);
			snprintf(b, sizeof b, "%s/json", path);
			if (!is_dir(b))
				snprintf(b, sizeof b, "%s/metadata", path);
			if (is_dir(b)) {
				snprintf(meta_dir, sizeof meta_dir, "%s", b);
				add_missing(b, &toks);
			}
			snprintf(out_dir, sizeof out_dir, "%s", path);
		}
	}
	if (near != -100)
		o.near_threshold = near;
	if (dnear != -100)
		o.near_dhash_threshold = dnear;
	if (max_size)
		o.max_bytes = max_size;
	if (width)
		o.width = width;
	if (height)
		o.height = height;

	if (kiln_qa_images(toks.v, toks.n, &o, &f, &ir, &e)) {
		rc = cli_fail(&e);
		goto out;
	}
	/* everything after this point judges release outputs (dist/, or a folder's metadata) */
	if ((provenance || prov_dir[0]) && check_provenance(provenance, prov_dir, &toks, &fd, &e)) {
		rc = cli_fail(&e);
		goto out;
	}
	if (sugar_dir[0] && kiln_metacheck_sugar_folder(sugar_dir, &fd, &e)) {
		rc = cli_fail(&e);
		goto out;
	}
	if ((meta_dir[0] || out_dir[0]) &&
	    check_outputs(out_dir[0] ? out_dir : meta_dir, meta_dir[0] ? meta_dir : NULL,
			  images_dir[0] ? images_dir : NULL, &fd, &e)) {
		rc = cli_fail(&e);
		goto out;
	}
	if (qspec) {
		apply_severities(&f, qspec);
		apply_severities(&fd, qspec);
	}
	ncat = f.n;
	if (append_prefixed(&f, &fd, "", &e)) {
		rc = cli_fail(&e);
		goto out;
	}
	if (p && (rc = save_results(p, &f, ncat, &toks)))
		goto out;
	if (junit && write_junit(junit, &toks, &f)) {
		fprintf(stderr, "kiln qa: %s: cannot write the JUnit report\n", junit);
		rc = 1;
		goto out;
	}
	if (html && write_html(html, &toks, &f, &ir, quiet)) {
		fprintf(stderr, "kiln qa: %s: cannot write the HTML report\n", html);
		rc = 1;
		goto out;
	}
	if (json) {
		json_t *j = findings_json(&f, ir.checked);
		if (json_file && strcmp(json_file, "-")) {
			if (json_dump_file(j, json_file, JSON_INDENT(2) | JSON_PRESERVE_ORDER)) {
				fprintf(stderr, "kiln qa: %s: cannot write\n", json_file);
				rc = 1;
			}
		} else {
			json_dumpf(j, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
			fputc('\n', stdout);
		}
		json_decref(j);
	}
	if (!quiet && !(json && (!json_file || !strcmp(json_file, "-"))))
		summary(&f, ir.checked);
	if (!rc && kiln_findings_count(&f, KILN_SEV_ERROR))
		rc = 1;
out:
	kiln_qa_image_result_release(&ir);
	kiln_findings_release(&f);
	kiln_findings_release(&fd);
	tokens_free(&toks);
	kiln_project_free(p);
	kiln_spec_free(config);
	return rc;
}
