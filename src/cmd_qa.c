/* kiln qa: the collection's unit tests. On a kiln project: every token's rendered image, the
 * collection (trait counts, uniqueness, ids) and dist/'s metadata if released; results go to
 * the catalog, where `kiln release` reads them. On any folder: a HashLips build/ (images/ +
 * json/), kiln's dist/ (images/ + metadata/) or a Sugar assets/ folder. Exit 1 when any
 * error-level check fails. */
#include "cli.h"
#include "kiln/metacheck.h"
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
	       "               [--provenance HASH]\n\n"
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
	       "  --junit FILE      JUnit XML: one test case per check per token\n"
	       "  --html DIR        a report page with thumbnails of failing tokens\n"
	       "  --near N          near-duplicate pHash distance (default 4; 'off')\n"
	       "  --max-size BYTES  file size limit (default 10 MiB)\n"
	       "  --width W, --height H  expected image size (a project: the spec's)\n"
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
};

static void tokens_free(struct token_list *t)
{
	for (size_t i = 0; i < t->nowned; i++)
		free(t->owned[i]);
	free(t->owned);
	free(t->v);
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

/* findings of check on token stem (check NULL: metadata.*, token.*, metaplex.*, erc721.*) */
static const struct kiln_finding *token_finding(const struct kiln_findings *f, const char *stem,
						const char *check, size_t *count)
{
	const struct kiln_finding *first = NULL;
	char s[256];
	*count = 0;
	for (size_t i = 0; i < f->n; i++) {
		const struct kiln_finding *x = &f->v[i];
		int match;
		if (!x->file || x->severity != KILN_SEV_ERROR)
			continue;
		if (check)
			match = !strcmp(x->check, check);
		else
			match = strncmp(x->check, "image.", 6) && strncmp(x->check, "collection.", 11);
		if (!match)
			continue;
		kiln_qa_stem(x->file, s, sizeof s);
		if (strcmp(s, stem))
			continue;
		if (!first)
			first = x;
		(*count)++;
	}
	return first;
}

static int write_junit(const char *path, const struct token_list *t,
		       const struct kiln_findings *f)
{
	char tmp[4096];
	FILE *out;
	size_t tests = 0, failures = 0;
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	out = fopen(tmp, "w");
	if (!out)
		return -1;
	/* count first */
	for (size_t i = 0; i < t->n; i++) {
		char stem[64];
		kiln_qa_stem(t->v[i].name, stem, sizeof stem);
		for (size_t c = 0; c <= NIMAGE_CHECKS; c++) {
			size_t n;
			tests++;
			failures += token_finding(f, stem, c < NIMAGE_CHECKS ? image_checks[c] : NULL,
						  &n) != NULL;
		}
	}
	for (size_t i = 0; i < f->n; i++)
		if (!strncmp(f->v[i].check, "collection.", 11) || !f->v[i].file) {
			tests++;
			failures += f->v[i].severity == KILN_SEV_ERROR;
		}
	fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		     "<testsuites name=\"kiln qa\" tests=\"%zu\" failures=\"%zu\">\n"
		     "<testsuite name=\"kiln qa\" tests=\"%zu\" failures=\"%zu\">\n",
		tests, failures, tests, failures);
	for (size_t i = 0; i < t->n; i++) {
		char stem[64];
		kiln_qa_stem(t->v[i].name, stem, sizeof stem);
		for (size_t c = 0; c <= NIMAGE_CHECKS; c++) {
			const char *check = c < NIMAGE_CHECKS ? image_checks[c] : "metadata";
			size_t n;
			const struct kiln_finding *x = token_finding(f, stem,
				c < NIMAGE_CHECKS ? image_checks[c] : NULL, &n);
			fprintf(out, "<testcase classname=\"token.%s\" name=\"%s\"", stem, check);
			if (!x) {
				fputs("/>\n", out);
				continue;
			}
			fputs("><failure message=\"", out);
			xml_escape(out, x->message);
			fprintf(out, "\" type=\"%s\">", x->check);
			xml_escape(out, x->file);
			fputs(x->path && *x->path ? " " : "", out);
			xml_escape(out, x->path);
			fputs(": ", out);
			xml_escape(out, x->message);
			fputs("</failure></testcase>\n", out);
		}
	}
	for (size_t i = 0; i < f->n; i++) {
		const struct kiln_finding *x = &f->v[i];
		if (strncmp(x->check, "collection.", 11) && x->file)
			continue;
		fprintf(out, "<testcase classname=\"collection\" name=\"%s\"", x->check);
		if (x->severity != KILN_SEV_ERROR) {
			fputs("/>\n", out);
			continue;
		}
		fputs("><failure message=\"", out);
		xml_escape(out, x->message);
		fputs("\"/></testcase>\n", out);
	}
	fputs("</testsuite>\n</testsuites>\n", out);
	if (fclose(out) != 0 || rename(tmp, path) != 0)
		return -1;
	return 0;
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

static int save_results(struct kiln_project *p, const struct kiln_findings *f)
{
	struct kiln_qa_row *rows = calloc(f->n + 1, sizeof *rows);
	struct kiln_error e;
	char detail[128];
	int rc;
	if (!rows)
		return 1;
	for (size_t i = 0; i < f->n; i++) {
		char stem[64];
		rows[i].check = f->v[i].check;
		rows[i].severity = kiln_severity_name(f->v[i].severity);
		rows[i].file = f->v[i].file;
		rows[i].path = f->v[i].path;
		rows[i].message = f->v[i].message;
		if (f->v[i].file && strncmp(f->v[i].check, "collection.", 11)) {
			kiln_qa_stem(f->v[i].file, stem, sizeof stem);
			if (is_number(stem, strlen(stem)))
				rows[i].item_id = strtoull(stem, NULL, 10);
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

int cmd_qa(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"standard", required_argument, NULL, 's'}, {"json", optional_argument, NULL, 'j'},
		{"junit", required_argument, NULL, 'J'}, {"html", required_argument, NULL, 'H'},
		{"near", required_argument, NULL, 'n'}, {"max-size", required_argument, NULL, 'm'},
		{"width", required_argument, NULL, 'W'}, {"height", required_argument, NULL, 'E'},
		{"provenance", required_argument, NULL, 'P'}, {"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	struct kiln_qa_opts o;
	struct kiln_findings f = KILN_FINDINGS_INIT;
	struct kiln_qa_image_result ir = {NULL, 0, 0};
	struct token_list toks = {NULL, NULL, 0, 0};
	struct kiln_project *p = NULL;
	struct kiln_error e;
	struct cli_progress cp;
	const char *standard = NULL, *json_file = NULL, *junit = NULL, *html = NULL, *path = NULL;
	const char *provenance = NULL;
	int c, json = 0, quiet = 0, rc = 0, near = -100, width = 0, height = 0;
	uint64_t max_size = 0;
	char meta_dir[4096] = "", sugar_dir[4096] = "", prov_dir[4096] = "";

	optind = 1;
	while ((c = getopt_long(argc, argv, "q", opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 's': standard = optarg; break;
		case 'j': json = 1; json_file = optarg; break;
		case 'J': junit = optarg; break;
		case 'H': html = optarg; break;
		case 'n':
			if (!strcmp(optarg, "off")) {
				near = -1;
				break;
			}
			near = (int)strtol(optarg, &end, 10);
			if (*end || near < 0 || near > 32)
				return cli_usage("qa", "--near takes 0..32 or off");
			break;
		case 'm':
			max_size = strtoull(optarg, &end, 10);
			if (*end || !max_size)
				return cli_usage("qa", "--max-size takes a number of bytes");
			break;
		case 'W': width = atoi(optarg); break;
		case 'E': height = atoi(optarg); break;
		case 'P':
			if (!is_hash(optarg))
				return cli_usage("qa", "--provenance takes a SHA-256 provenance hash "
						 "(64 hex digits), not '%s'", optarg);
			provenance = optarg;
			break;
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
	kiln_qa_opts_default(&o);
	kiln_error_clear(&e);
	cli_progress_init(&cp, 0, quiet || json);
	o.progress = cli_progress_cb;
	o.user = &cp;

	if (!path) {
		/* a kiln project */
		struct kiln_items items;
		const struct kiln_spec *s;
		char dist_meta[4096];
		if ((rc = cli_open(cli, &p)))
			return rc;
		s = p->spec;
		o.width = s->width;
		o.height = s->height;
		o.format = s->format == KILN_FORMAT_PNG ? "png" : s->format == KILN_FORMAT_WEBP ? "webp"
												: "jpeg";
		if (s->qa.max_bytes)
			o.max_bytes = s->qa.max_bytes;
		o.min_bytes = s->qa.min_bytes;
		if (s->qa.uniform_stddev > 0)
			o.uniform_stddev = s->qa.uniform_stddev;
		if (s->qa.black_level)
			o.black_level = s->qa.black_level;
		if (s->qa.near_threshold)
			o.near_threshold = s->qa.near_threshold == -2 ? 0 : s->qa.near_threshold;
		o.alpha = s->qa.alpha;
		if (kiln_catalog_items(p->catalog, s, &items, &e)) {
			rc = cli_fail(&e);
			goto out;
		}
		toks.v = calloc(items.n + 1, sizeof *toks.v);
		toks.owned = calloc(2 * items.n + 1, sizeof *toks.owned);
		for (size_t i = 0; i < items.n; i++) {
			char name[64];
			snprintf(name, sizeof name, "%llu.%s", (unsigned long long)items.v[i].id,
				 kiln_format_ext(s->format));
			toks.v[i].id = items.v[i].id;
			toks.v[i].name = toks.owned[toks.nowned++] = strdup(name);
			toks.v[i].path = items.v[i].image[0] ?
				(toks.owned[toks.nowned++] = kiln_store_path(p->store, items.v[i].image))
				: NULL;
		}
		toks.n = items.n;
		kiln_items_release(&items);
		if (kiln_qa_collection(p, &f, &e)) {
			rc = cli_fail(&e);
			goto out;
		}
		snprintf(dist_meta, sizeof dist_meta, "%s/dist/metadata", p->dir);
		if (is_dir(dist_meta))
			snprintf(meta_dir, sizeof meta_dir, "%s", dist_meta);
		snprintf(prov_dir, sizeof prov_dir, "%s/dist", p->dir);
	} else if (!is_dir(path)) {
		fprintf(stderr, "kiln qa: %s: no such folder\n", path);
		return 2;
	} else {
		char a[4096], b[4096];
		snprintf(prov_dir, sizeof prov_dir, "%s", path);
		snprintf(a, sizeof a, "%s/assets", path);
		snprintf(b, sizeof b, "%s/0.json", path);
		if ((standard && !strcmp(standard, "metaplex")) || is_dir(a) || exists(b)) {
			snprintf(sugar_dir, sizeof sugar_dir, "%s", is_dir(a) ? a : path);
			folder_tokens(sugar_dir, &toks);
		} else {
			snprintf(a, sizeof a, "%s/images", path);
			if (!is_dir(a)) {
				fprintf(stderr, "kiln qa: %s: not a collection folder: expected images/ "
					"with json/ or metadata/ (HashLips build/, kiln dist/), or a "
					"Sugar assets/ folder\n", path);
				return 2;
			}
			folder_tokens(a, &toks);
			snprintf(b, sizeof b, "%s/json", path);
			if (!is_dir(b))
				snprintf(b, sizeof b, "%s/metadata", path);
			if (is_dir(b)) {
				snprintf(meta_dir, sizeof meta_dir, "%s", b);
				add_missing(b, &toks);
			}
		}
	}
	if (near != -100)
		o.near_threshold = near;
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
	if ((provenance || prov_dir[0]) && check_provenance(provenance, prov_dir, &toks, &f, &e)) {
		rc = cli_fail(&e);
		goto out;
	}
	if (sugar_dir[0] && kiln_metacheck_sugar_folder(sugar_dir, &f, &e)) {
		rc = cli_fail(&e);
		goto out;
	}
	if (meta_dir[0] && kiln_metacheck_folder_erc721(meta_dir, &f, &e)) {
		rc = cli_fail(&e);
		goto out;
	}
	if (p && p->spec->qa.nchecks) {
		struct kiln_qa_severity sv[256];
		size_t n = p->spec->qa.nchecks < 256 ? p->spec->qa.nchecks : 256;
		for (size_t i = 0; i < n; i++) {
			sv[i].check = p->spec->qa.checks[i].check;
			sv[i].severity = p->spec->qa.checks[i].severity;
		}
		kiln_qa_apply_severities(&f, sv, n);
	}
	if (p && (rc = save_results(p, &f)))
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
	tokens_free(&toks);
	kiln_project_free(p);
	return rc;
}
