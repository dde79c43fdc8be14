/* kiln qa: the collection's unit tests. The checks and the catalog's verdicts are the
 * library's (kiln_project_qa, kiln_qa_folder in kiln/qa.h); this file parses the arguments and
 * formats the result: the summary table, --json, --junit and --html. On a kiln project: every
 * token's rendered image, the collection and dist/'s outputs if released, recorded in the
 * catalog, where `kiln release` reads them. On any folder: a HashLips build/ (images/ +
 * json/), kiln's dist/ (images/ + metadata/) or a Sugar assets/ folder. Exit 1 when any
 * error-level check fails, 2 for bad usage. */
#include "cli.h"
#include "kiln/qa.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void help(void)
{
	printf("usage: kiln qa [PATH] [--standard erc721|metaplex] [--json[=FILE]] [--junit FILE]\n"
	       "               [--html DIR] [--near N] [--max-size BYTES] [--width W --height H]\n"
	       "               [--provenance HASH] [--near-dhash N] [--config kiln.yaml]\n"
	       "               [--max-pixels N] [--near-measure color|phash]\n\n"
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
	       "  --html DIR        a report (index.html, pages of 500 findings) with thumbnails\n"
	       "                    of the tokens that have findings\n"
	       "  --near N          near-duplicate pHash distance (default 4; 'off')\n"
	       "  --near-measure M  color (default): a pair the hashes find must agree in colour\n"
	       "                    too (delta E, qa.near_duplicate_color_distance); phash: the\n"
	       "                    hashes alone, as Python imagehash (grey: ignores colour)\n"
	       "  --near-dhash N    near duplicates by dHash too, within N bits (default off)\n"
	       "  --max-size BYTES  file size limit (default 10 MiB)\n"
	       "  --max-pixels N    images whose header declares more pixels are not decoded\n"
	       "                    (image.too_large; default 67108864 = 64 Mpx)\n"
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
static int write_junit(const char *path, const struct kiln_qa_result *res)
{
	const struct kiln_findings *f = &res->findings;
	char tmp[4096], *body = NULL;
	size_t blen = 0, tests = 0, failures = 0, nids = 0, k = 0;
	struct jrow *rows = calloc(f->n + 1, sizeof *rows);
	uint64_t *ids = calloc(res->ntokens + f->n + 1, sizeof *ids);
	FILE *out = NULL, *mem = open_memstream(&body, &blen);
	int rc = -1;
	if (!rows || !ids || !mem)
		goto done;
	for (size_t i = 0; i < f->n; i++) {
		rows[i].i = i;
		rows[i].tok = f->v[i].has_item;
		rows[i].id = f->v[i].item;
		if (rows[i].tok)
			ids[nids++] = rows[i].id;
	}
	for (size_t i = 0; i < res->ntokens; i++)
		if (!res->tokens[i].extra)
			ids[nids++] = res->tokens[i].id;
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

/* Report pages: index.html has the summary, the look-alikes (the first HTML_PAIRS pairs) and
 * the first HTML_PAGE findings; findings-2.html, ... the rest, HTML_PAGE each, so no page
 * grows with the collection. Thumbnails are made only for the tokens a page shows (a token
 * with a finding, or one side of a look-alike), each once. */
#define HTML_PAGE 500
#define HTML_PAIRS 200
#define THUMB 160

struct html {
	const char *dir;
	const struct kiln_qa_result *res;
	const char *cache;        /* a project's .kiln/thumbs (shared with release), or NULL */
	int rel_size;             /* image.thumbnail's size (0: none) and extension there */
	const char *rel_ext;
	unsigned char *made;      /* per token: 0 not yet, 1 thumbnail there, 2 none possible */
	size_t need, done;        /* thumbnails to make, made: for the progress bar */
	struct cli_progress *cp;
	double t0;
	int quiet;
};

/* The token a finding concerns (tokens are sorted by id), or NULL. */
static const struct kiln_qa_token *html_token(const struct kiln_qa_result *res,
					      const struct kiln_finding *x, size_t *at)
{
	size_t lo = 0, hi = res->ntokens;
	if (!x->has_item)
		return NULL;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct kiln_qa_token *t = &res->tokens[mid];
		if (t->extra || t->id >= x->item)
			hi = mid;
		else
			lo = mid + 1;
	}
	if (lo < res->ntokens && !res->tokens[lo].extra && res->tokens[lo].id == x->item) {
		*at = lo;
		return &res->tokens[lo];
	}
	return NULL;
}

static double html_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void html_progress(struct html *h, const char *ev)
{
	struct kiln_progress p;
	if (!h->cp)
		return;
	memset(&p, 0, sizeof p);
	p.stage = "report";
	p.event = ev;
	p.total = h->need;
	p.done = h->done;
	p.ok = 1;
	p.elapsed = html_now() - h->t0;
	cli_progress_cb(&p, h->cp);
}

/* A store image is named by its SHA-256: its thumbnail can come from (and go to) the cache. */
static const char *store_sha(const char *path)
{
	const char *b = path ? strrchr(path, '/') : NULL;
	b = b ? b + 1 : path;
	return b && strlen(b) == 64 && strspn(b, "0123456789abcdef") == 64 ? b : NULL;
}

/* thumbs/<stem>.<ext> for token i (made once); 0 and the file name in out, or -1: none. */
static int html_thumb(struct html *h, size_t i, char *out, size_t cap)
{
	const struct kiln_qa_token *x = &h->res->tokens[i];
	const char *sha = store_sha(x->path);
	char stem[64], dst[4200], cached[4200];
	struct kiln_error e;
	kiln_qa_stem(x->name, stem, sizeof stem);
	/* a release's own thumbnail of this image, when image.thumbnail made one */
	if (sha && h->cache && h->rel_size >= 64) {
		snprintf(cached, sizeof cached, "%s/%s-%d.%s", h->cache, sha, h->rel_size, h->rel_ext);
		snprintf(out, cap, "%s.%s", stem, h->rel_ext);
		if (exists(cached)) {
			snprintf(dst, sizeof dst, "%s/thumbs/%s", h->dir, out);
			if (h->made[i] != 1)
				unlink(dst);
			if (h->made[i] == 1 || link(cached, dst) == 0) {
				h->made[i] = 1;
				return 0;
			}
		}
	}
	snprintf(out, cap, "%s.png", stem);
	if (h->made[i])
		return h->made[i] == 1 ? 0 : -1;
	snprintf(dst, sizeof dst, "%s/thumbs/%s", h->dir, out);
	h->made[i] = 1;
	if (sha && h->cache) {
		/* by the image's hash: an earlier report's thumbnail of another image under
		 * this name is replaced */
		snprintf(cached, sizeof cached, "%s/%s-%d.png", h->cache, sha, THUMB);
		if (exists(cached)) {
			unlink(dst);
			if (link(cached, dst) == 0)
				goto made;
		}
	} else if (exists(dst)) {
		return 0;
	}
	kiln_error_clear(&e);
	if (!x->path || kiln_qa_thumbnail(x->path, dst, THUMB, &e)) {
		/* an undecodable image has no thumbnail: its finding says why */
		h->made[i] = 2;
		h->done++;
		return -1;
	}
	if (sha && h->cache && !exists(cached) && link(dst, cached) != 0) {
		/* the cache is an optimisation: a report without it is the same report */
	}
made:
	h->done++;
	html_progress(h, "item");
	return 0;
}

static void html_token_cell(FILE *out, struct html *h, size_t i, int width)
{
	char th[200];
	const struct kiln_qa_token *x = &h->res->tokens[i];
	if (!html_thumb(h, i, th, sizeof th)) {
		fputs("<img src=\"thumbs/", out);
		html_escape(out, th);
		fprintf(out, "\" width=%d loading=lazy><br>", width);
	}
	html_escape(out, x->name);
}

static const char HTML_HEAD[] =
	"<!doctype html><meta charset=utf-8><title>kiln qa</title>\n<style>body{font:14px "
	"sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
	"padding:4px 8px;vertical-align:top}.error{color:#b00}.warning{color:#a60}img{"
	"image-rendering:pixelated;border:1px solid #888}</style>\n";

static void html_findings(FILE *out, struct html *h, size_t from, size_t to)
{
	const struct kiln_findings *f = &h->res->findings;
	fprintf(out, "<h2>Findings %zu to %zu of %zu</h2><table><tr><th>token</th><th>check</th>"
		     "<th>severity</th><th>where</th><th>message</th></tr>\n", from + 1, to, f->n);
	for (size_t i = from; i < to; i++) {
		const struct kiln_finding *x = &f->v[i];
		size_t at = 0;
		fputs("<tr><td>", out);
		if (html_token(h->res, x, &at))
			html_token_cell(out, h, at, 96);
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
}

static void html_nav(FILE *out, size_t npages, size_t cur)
{
	if (npages < 2)
		return;
	fputs("<p>pages:", out);
	for (size_t k = 1; k <= npages; k++) {
		if (k == cur)
			fprintf(out, " <b>%zu</b>", k);
		else if (k == 1)
			fputs(" <a href=\"index.html\">1</a>", out);
		else
			fprintf(out, " <a href=\"findings-%zu.html\">%zu</a>", k, k);
	}
	fputs("</p>\n", out);
}

/* Write a page through a temporary name. */
static FILE *html_open(const char *dir, const char *name, char *tmp, size_t cap)
{
	snprintf(tmp, cap, "%s/.%s.tmp", dir, name);
	return fopen(tmp, "w");
}

static int html_close(FILE *out, const char *dir, const char *name, const char *tmp)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (fclose(out) != 0 || rename(tmp, path) != 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

static int write_html(const char *dir, const struct kiln_qa_result *res, int quiet,
		      const struct kiln_project *p, struct cli_progress *cp)
{
	const struct kiln_findings *f = &res->findings;
	const struct kiln_qa_image_result *ir = &res->images;
	size_t npages = f->n ? (f->n + HTML_PAGE - 1) / HTML_PAGE : 1, npairs;
	char thumbs[4096], tmp[4200], cache[4096], name[64];
	const char *seen[256];
	size_t nseen = 0;
	struct html h;
	FILE *out;
	int rc = 0;
	memset(&h, 0, sizeof h);
	h.dir = dir;
	h.res = res;
	h.cp = cp;
	h.quiet = quiet;
	h.t0 = html_now();
	if (p) {
		snprintf(cache, sizeof cache, "%s/.kiln/thumbs", p->dir);
		if (is_dir(cache) || mkdir(cache, 0755) == 0)
			h.cache = cache;
		h.rel_size = p->spec->thumb_size;
		h.rel_ext = kiln_format_ext(p->spec->thumb_format);
	}
	snprintf(thumbs, sizeof thumbs, "%s/thumbs", dir);
	if ((!is_dir(dir) && mkdir(dir, 0755) != 0) || (!is_dir(thumbs) && mkdir(thumbs, 0755) != 0))
		return -1;
	if (!(h.made = calloc(res->ntokens + 1, 1)))
		return -1;
	/* how many thumbnails the pages need, for the progress bar */
	npairs = ir->npairs < HTML_PAIRS ? ir->npairs : HTML_PAIRS;
	for (size_t k = 0; k < npairs; k++)
		for (int s = 0; s < 2; s++) {
			size_t i = s ? ir->pairs[k].b : ir->pairs[k].a;
			h.need += !h.made[i];
			h.made[i] = 3;
		}
	for (size_t i = 0; i < f->n; i++) {
		size_t at;
		if (html_token(res, &f->v[i], &at) && !h.made[at]) {
			h.need++;
			h.made[at] = 3;
		}
	}
	memset(h.made, 0, res->ntokens + 1);
	html_progress(&h, "start");
	if (!(out = html_open(dir, "index.html", tmp, sizeof tmp))) {
		free(h.made);
		return -1;
	}
	fprintf(out, "%s<h1>kiln qa</h1>\n<p>%zu images, %zu errors, %zu warnings</p>\n",
		HTML_HEAD, res->ntokens, kiln_findings_count(f, KILN_SEV_ERROR),
		kiln_findings_count(f, KILN_SEV_WARNING));
	/* per check: how many, so a long report reads from the top */
	if (f->n) {
		fputs("<table><tr><th>check</th><th>errors</th><th>warnings</th></tr>\n", out);
		for (size_t i = 0; i < f->n && nseen < 256; i++) {
			size_t k, ne = 0, nw = 0;
			for (k = 0; k < nseen && strcmp(seen[k], f->v[i].check); k++)
				;
			if (k < nseen)
				continue;
			seen[nseen++] = f->v[i].check;
			for (size_t j = i; j < f->n; j++)
				if (!strcmp(f->v[j].check, f->v[i].check)) {
					ne += f->v[j].severity == KILN_SEV_ERROR;
					nw += f->v[j].severity == KILN_SEV_WARNING;
				}
			fprintf(out, "<tr><td>%s</td><td>%zu</td><td>%zu</td></tr>\n", f->v[i].check,
				ne, nw);
		}
		fputs("</table>\n", out);
	}
	/* exact and near duplicates side by side, each labelled with what was measured */
	if (ir->npairs) {
		fprintf(out, "<h2>Look-alikes</h2>%s<table><tr><th>token</th><th>token</th>"
			     "<th>how alike</th></tr>\n", ir->npairs > npairs ?
			     "<p>the first pairs; every one is in the findings</p>" : "");
		for (size_t k = 0; k < npairs; k++) {
			const struct kiln_qa_pair *q = &ir->pairs[k];
			fputs("<tr>", out);
			for (int s = 0; s < 2; s++) {
				fputs("<td>", out);
				html_token_cell(out, &h, s ? q->b : q->a, THUMB);
				fputs("</td>", out);
			}
			if (q->exact)
				fputs("<td>same pixels</td></tr>\n", out);
			else {
				if (q->distance)
					fprintf(out, "<td>pHash distance %d", q->distance);
				else
					fputs("<td>same pHash (the pixels differ)", out);
				if (q->color >= 0)
					fprintf(out, "; colour difference &Delta;E %.1f", q->color);
				fputs("</td></tr>\n", out);
			}
		}
		fputs("</table>\n", out);
	}
	html_nav(out, npages, 1);
	html_findings(out, &h, 0, f->n < HTML_PAGE ? f->n : HTML_PAGE);
	html_nav(out, npages, 1);
	rc = html_close(out, dir, "index.html", tmp);
	for (size_t pg = 2; !rc && pg <= npages; pg++) {
		size_t from = (pg - 1) * HTML_PAGE, to = from + HTML_PAGE < f->n ? from + HTML_PAGE : f->n;
		snprintf(name, sizeof name, "findings-%zu.html", pg);
		if (!(out = html_open(dir, name, tmp, sizeof tmp))) {
			rc = -1;
			break;
		}
		fprintf(out, "%s<h1>kiln qa</h1>\n<p><a href=\"index.html\">summary</a></p>\n",
			HTML_HEAD);
		html_nav(out, npages, pg);
		html_findings(out, &h, from, to);
		html_nav(out, npages, pg);
		rc = html_close(out, dir, name, tmp);
	}
	h.done = h.need;
	html_progress(&h, "end");
	free(h.made);
	return rc;
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
		char msg[96];
		cli_cut_words(f->v[i].message, 80, msg, sizeof msg); /* at a word, with "..." */
		printf("%-28s %7zu %8zu  %s%s%s: %s\n", f->v[i].check, ne, nw,
		       f->v[i].file ? f->v[i].file : "", f->v[i].path && *f->v[i].path ? " " : "",
		       f->v[i].path ? f->v[i].path : "", msg);
	}
	printf("qa: %zu images checked, %zu errors, %zu warnings: %s\n", images,
	       kiln_findings_count(f, KILN_SEV_ERROR), kiln_findings_count(f, KILN_SEV_WARNING),
	       kiln_findings_count(f, KILN_SEV_ERROR) ? "FAILED" : "passed");
}

static int is_hash(const char *s)
{
	size_t n = strlen(s);
	return n == 64 && strspn(s, "0123456789abcdefABCDEF") == 64;
}

/* A decimal number lo..hi (no sign, no spaces, no overflow), or -1: the value is checked
 * before it is narrowed, so 4294967300 is out of range, not 4. */
static int parse_range(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	unsigned long long v;
	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end || errno == ERANGE || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
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
		{"max-pixels", required_argument, NULL, 'X'},
		{"near-measure", required_argument, NULL, 'M'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	struct kiln_qa_run_opts o;
	struct kiln_qa_result res;
	struct kiln_project *p = NULL;
	struct kiln_spec *config = NULL;
	struct kiln_error e;
	struct cli_progress cp;
	const char *json_file = NULL, *junit = NULL, *html = NULL, *path = NULL;
	const char *config_file = NULL;
	int c, json = 0, quiet = 0, rc = 0;
	uint64_t v;

	memset(&res, 0, sizeof res);
	kiln_qa_run_opts_init(&o);
	optind = 1;
	while ((c = getopt_long(argc, argv, "q", opts, NULL)) != -1) {
		switch (c) {
		case 's': o.standard = optarg; break;
		case 'j': json = 1; json_file = optarg; break;
		case 'J': junit = optarg; break;
		case 'H': html = optarg; break;
		case 'n':
		case 'D': {
			int *t = c == 'n' ? &o.near_threshold : &o.near_dhash_threshold;
			if (!strcmp(optarg, "off")) {
				*t = -1;
				break;
			}
			if (parse_range(optarg, 0, 32, &v))
				return cli_usage("qa", "--%s takes 0..32 or off, not '%s'",
						 c == 'n' ? "near" : "near-dhash", optarg);
			*t = (int)v;
			break;
		}
		case 'm':
			if (parse_range(optarg, 1, UINT64_MAX, &o.max_bytes))
				return cli_usage("qa", "--max-size takes a number of bytes, 1..%llu, "
						 "not '%s'", (unsigned long long)UINT64_MAX, optarg);
			break;
		case 'X':
			if (parse_range(optarg, 1, (uint64_t)1 << 40, &o.max_pixels))
				return cli_usage("qa", "--max-pixels takes a number of pixels, 1..%llu, "
						 "not '%s'", (unsigned long long)1 << 40, optarg);
			break;
		case 'W':
		case 'E':
			if (parse_range(optarg, 1, 1000000, &v))
				return cli_usage("qa", "--%s takes a positive number of pixels (1..1000000), "
						 "not '%s'", c == 'W' ? "width" : "height", optarg);
			*(c == 'W' ? &o.width : &o.height) = (int)v;
			break;
		case 'P':
			if (!is_hash(optarg))
				return cli_usage("qa", "--provenance takes a SHA-256 provenance hash "
						 "(64 hex digits), not '%s'", optarg);
			o.provenance = optarg;
			o.provenance_source = "--provenance";
			break;
		case 'M':
			if (!strcmp(optarg, "color") || !strcmp(optarg, "colour"))
				o.near_measure = KILN_NEAR_COLOR;
			else if (!strcmp(optarg, "phash"))
				o.near_measure = KILN_NEAR_PHASH;
			else
				return cli_usage("qa", "--near-measure takes color or phash, not '%s'",
						 optarg);
			break;
		case 'C': config_file = optarg; break;
		case 'q': quiet = 1; break;
		case 'h': help(); return 0;
		default: return cli_usage("qa", "unknown option");
		}
	}
	if (o.standard && strcmp(o.standard, "erc721") && strcmp(o.standard, "metaplex"))
		return cli_usage("qa", "--standard is erc721 or metaplex, not '%s'", o.standard);
	if (optind + 1 < argc)
		return cli_usage("qa", "give at most one folder");
	if (optind < argc)
		path = argv[optind];
	if (config_file && !path)
		return cli_usage("qa", "--config is for a folder (PATH): a project uses its own "
				 "kiln.yaml");
	kiln_error_clear(&e);
	cli_progress_init(&cp, 0, quiet || json);
	o.progress = cli_progress_cb;
	o.user = &cp;
	if (config_file) {
		if (kiln_spec_load(&config, config_file, &e))
			return cli_fail(&e);
		o.config = config;
	}
	if (!path) {
		if ((rc = cli_open(cli, &p)))
			goto out;
		rc = kiln_project_qa(p, &o, &res, &e);
	} else {
		rc = kiln_qa_folder(path, &o, &res, &e);
	}
	if (rc) {
		if (rc == KILN_E_USAGE) {
			fprintf(stderr, "kiln qa: %s: %s\n", e.where, e.msg);
			rc = 2;
		} else {
			rc = cli_fail(&e);
		}
		goto out;
	}
	if (junit && write_junit(junit, &res)) {
		fprintf(stderr, "kiln qa: %s: cannot write the JUnit report\n", junit);
		rc = 1;
		goto out;
	}
	if (html && write_html(html, &res, quiet, p, quiet || json ? NULL : &cp)) {
		fprintf(stderr, "kiln qa: %s: cannot write the HTML report\n", html);
		rc = 1;
		goto out;
	}
	if (json) {
		json_t *j = findings_json(&res.findings, res.checked);
		if (!j) {
			fprintf(stderr, "kiln qa: out of memory\n");
			rc = 1;
			goto out;
		}
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
		summary(&res.findings, res.checked);
	if (!rc && kiln_findings_count(&res.findings, KILN_SEV_ERROR))
		rc = 1;
out:
	kiln_qa_result_release(&res);
	kiln_project_free(p);
	kiln_spec_free(config);
	return rc;
}
