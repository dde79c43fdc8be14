/* Unit tests for lib/metacheck.c.
 *
 * Data-driven: every folder tests/qa/cases/<case>/ holds
 *   mode      one line: "token erc721", "token metaplex", "token erc721,metaplex" (each file in
 *             input/ checked as one token), "sugar" (input/ is a Sugar assets folder) or
 *             "erc721-folder" (input/ is a HashLips build/json folder);
 *   input/    the files;
 *   expected  the findings, one a line: "check severity file path" ("-" for an empty file or
 *             path); order does not matter, an empty file means "no findings".
 * The driver runs each case, compares the sorted lists and prints both on a difference. Then
 * a few direct tests: base58, messages, allocation failure on every path. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/qa.h"
#include "util/alloc.h"

#define CASES KILN_SOURCE_DIR "/tests/qa/cases"

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *p;
	long n;
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	p = malloc((size_t)n + 1);
	assert_non_null(p);
	if (n && fread(p, 1, (size_t)n, f) != (size_t)n)
		fail_msg("cannot read %s", path);
	p[n] = 0;
	fclose(f);
	if (len)
		*len = (size_t)n;
	return p;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names in a folder (not hidden). */
static char **list(const char *dir, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **v = NULL;
	*n = 0;
	assert_non_null(d);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		v = realloc(v, (*n + 1) * sizeof *v);
		assert_non_null(v);
		v[(*n)++] = strdup(de->d_name);
	}
	closedir(d);
	if (*n)
		qsort(v, *n, sizeof *v, cmp_str);
	return v;
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Run one case's checks into out. */
static int run_case(const char *dir, const char *mode, struct kiln_findings *out,
		    struct kiln_error *e)
{
	char in[1024];
	snprintf(in, sizeof in, "%s/input", dir);
	if (!strncmp(mode, "sugar", 5))
		return kiln_metacheck_sugar_folder(in, out, e);
	if (!strncmp(mode, "erc721-folder", 13))
		return kiln_metacheck_folder_erc721(in, out, e);
	if (!strncmp(mode, "token", 5)) {
		unsigned std = (strstr(mode, "erc721") ? KILN_META_ERC721 : 0) |
			       (strstr(mode, "metaplex") ? KILN_META_METAPLEX : 0);
		size_t n;
		char **names = list(in, &n);
		int rc = 0;
		for (size_t i = 0; i < n && !rc; i++) {
			char path[2048];
			size_t len;
			char *text;
			snprintf(path, sizeof path, "%s/%s", in, names[i]);
			text = slurp(path, &len);
			assert_non_null(text);
			rc = kiln_metacheck_token_text(text, len, std, names[i], out, e);
			free(text);
		}
		free_list(names, n);
		return rc;
	}
	fail_msg("%s: unknown mode \"%s\"", dir, mode);
	return -1;
}

static void test_cases(void **state)
{
	size_t ncases, failed = 0;
	char **cases = list(CASES, &ncases);
	(void)state;
	assert_true(ncases >= 10);
	for (size_t c = 0; c < ncases; c++) {
		char dir[1024], path[1100], *mode, *exp, **got = NULL, **want = NULL, *tok, *save;
		struct kiln_findings out = KILN_FINDINGS_INIT;
		struct kiln_error e;
		size_t ngot = 0, nwant = 0, k;
		int same;
		struct stat st;
		snprintf(dir, sizeof dir, "%s/%s", CASES, cases[c]);
		if (stat(dir, &st) || !S_ISDIR(st.st_mode))
			continue; /* README.md */
		snprintf(path, sizeof path, "%s/mode", dir);
		mode = slurp(path, NULL);
		snprintf(path, sizeof path, "%s/expected", dir);
		exp = slurp(path, NULL);
		if (!mode || !exp)
			fail_msg("case %s: needs files mode and expected", cases[c]);
		kiln_error_clear(&e);
		if (run_case(dir, mode, &out, &e))
			fail_msg("case %s: %s: %s", cases[c], e.where, e.msg);
		got = calloc(out.n + 1, sizeof *got);
		for (k = 0; k < out.n; k++) {
			const struct kiln_finding *f = &out.v[k];
			char line[1024];
			assert_true(f->message && strlen(f->message) > 10);
			snprintf(line, sizeof line, "%s %s %s %s", f->check,
				 kiln_severity_name(f->severity), *f->file ? f->file : "-",
				 *f->path ? f->path : "-");
			got[ngot++] = strdup(line);
		}
		for (tok = strtok_r(exp, "\n", &save); tok; tok = strtok_r(NULL, "\n", &save)) {
			if (!*tok)
				continue;
			want = realloc(want, (nwant + 1) * sizeof *want);
			want[nwant++] = strdup(tok);
		}
		if (ngot)
			qsort(got, ngot, sizeof *got, cmp_str);
		if (nwant)
			qsort(want, nwant, sizeof *want, cmp_str);
		same = ngot == nwant;
		for (k = 0; same && k < ngot; k++)
			same = !strcmp(got[k], want[k]);
		if (!same) {
			failed++;
			printf("case %s: findings differ\n  expected:\n", cases[c]);
			for (k = 0; k < nwant; k++)
				printf("    %s\n", want[k]);
			printf("  got:\n");
			for (k = 0; k < out.n; k++)
				printf("    %s %s %s %s  -- %s\n", out.v[k].check,
				       kiln_severity_name(out.v[k].severity), out.v[k].file,
				       out.v[k].path, out.v[k].message);
		}
		free_list(got, ngot);
		free_list(want, nwant);
		free(mode);
		free(exp);
		kiln_findings_release(&out);
	}
	free_list(cases, ncases);
	if (failed)
		fail_msg("%zu of %zu cases failed", failed, ncases);
}

static void test_base58(void **state)
{
	unsigned char out[64];
	(void)state;
	assert_int_equal(kiln_base58_decode("11111111111111111111111111111111", out, sizeof out), 32);
	for (int i = 0; i < 32; i++)
		assert_int_equal(out[i], 0);
	assert_int_equal(kiln_base58_decode("FYLWmtBZ11WJ6HMaAAyxmQpnwGQiUhNwG4AE3rwNv7h6", out,
					    sizeof out), 32);
	assert_int_equal(kiln_base58_decode("2g", out, sizeof out), 1);
	assert_int_equal(out[0], 'a'); /* "2g" is base58 for "a" */
	assert_int_equal(kiln_base58_decode("", out, sizeof out), 0);
	assert_int_equal(kiln_base58_decode("0OIl", out, sizeof out), -1);
	assert_int_equal(kiln_base58_decode("zzzzzzzzzz", out, 4), -1);
}

static void test_messages(void **state)
{
	struct kiln_findings out;
	struct kiln_error e;
	const char *t = "{\"name\": \"An owl whose name is far too long for Metaplex\", \"description\": "
			"\"d\", \"image\": \"0.png\", \"properties\": {\"files\": [{\"uri\": \"0.png\", "
			"\"type\": \"image/png\"}], \"category\": \"image\", \"creators\": "
			"[{\"address\": \"11111111111111111111111111111111\", \"share\": 90}]}}";
	(void)state;
	kiln_findings_init(&out);
	assert_int_equal(kiln_metacheck_token_text(t, strlen(t), KILN_META_METAPLEX, "0.json", &out,
						   &e), 0);
	assert_int_equal((int)out.n, 2);
	assert_string_equal(out.v[0].check, "metaplex.name_length");
	assert_non_null(strstr(out.v[0].message, "Name exceeds 32 chars."));
	assert_string_equal(out.v[1].check, "metaplex.creator_shares");
	assert_non_null(strstr(out.v[1].message, "add up to 90"));
	assert_int_equal((int)kiln_findings_count(&out, KILN_SEV_ERROR), 2);
	assert_int_equal((int)kiln_findings_count(&out, KILN_SEV_WARNING), 0);
	kiln_findings_release(&out);
	assert_int_equal((int)out.n, 0);
	kiln_findings_release(&out); /* twice is fine */
}

static void test_missing_folder(void **state)
{
	struct kiln_findings out = KILN_FINDINGS_INIT;
	struct kiln_error e;
	(void)state;
	assert_int_equal(kiln_metacheck_sugar_folder("/nonexistent/assets", &out, &e), KILN_E_IO);
	assert_non_null(strstr(e.where, "/nonexistent/assets"));
	assert_int_equal(kiln_metacheck_folder_erc721("/nonexistent/json", &out, &e), KILN_E_IO);
	assert_int_equal((int)out.n, 0);
}

/* Every allocation failing in turn: KILN_E_NOMEM, nothing leaked (ASan, valgrind). */
static void alloc_loop(const char *casename, const char *mode)
{
	char dir[1024];
	snprintf(dir, sizeof dir, "%s/%s", CASES, casename);
	for (long n = 0;; n++) {
		struct kiln_findings out = KILN_FINDINGS_INIT;
		struct kiln_error e;
		int rc;
		kiln_alloc_fail_after(n);
		rc = run_case(dir, mode, &out, &e);
		kiln_findings_release(&out);
		if (!kiln_alloc_failed()) {
			kiln_alloc_fail_after(-1);
			assert_int_equal(rc, 0);
			break;
		}
		kiln_alloc_fail_after(-1);
		if (rc != KILN_E_NOMEM)
			fail_msg("%s: allocation %ld failed but rc = %d", casename, n, rc);
	}
}

static void test_alloc_failure(void **state)
{
	(void)state;
	alloc_loop("sugar-faults", "sugar");
	alloc_loop("erc721-folder-faults", "erc721-folder");
	alloc_loop("token-metaplex-faults", "token metaplex");
	alloc_loop("token-erc721-faults", "token erc721");
}

/* Issue 19: a token's trait-set key was built with strcat in a loop (quadratic: one token
 * with 200,000 attributes took 8 s, 1.5 million never finished). Two tokens with the same
 * 200,000 attributes (in another order) are one trait set; a third differing in one value
 * is not. Asserts the findings, not the time. */
static void write_big(const char *path, int nattrs, int rev, int change)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("{\"name\": \"t\", \"symbol\": \"T\", \"description\": \"d\", \"image\": "
	      "\"x.png\", \"seller_fee_basis_points\": 0, \"properties\": {\"category\": "
	      "\"image\", \"files\": [{\"uri\": \"x.png\", \"type\": \"image/png\"}]}, "
	      "\"attributes\": [", f);
	for (int i = 0; i < nattrs; i++) {
		int k = rev ? nattrs - 1 - i : i;
		fprintf(f, "%s{\"trait_type\": \"t%d\", \"value\": \"v%d\"}", i ? "," : "", k,
			k == change ? -1 : k);
	}
	fputs("]}", f);
	fclose(f);
}

static void test_many_attributes(void **state)
{
	char dir[] = "/tmp/kiln-metacheck-XXXXXX", path[128];
	struct kiln_findings f = KILN_FINDINGS_INIT;
	struct kiln_error e;
	size_t unique = 0;
	(void)state;
	assert_non_null(mkdtemp(dir));
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "%s/%d.json", dir, i);
		write_big(path, 200000, i == 1, i == 2 ? 7 : -5);
		snprintf(path, sizeof path, "%s/%d.png", dir, i);
		fclose(fopen(path, "w"));
	}
	kiln_error_clear(&e);
	assert_int_equal(kiln_metacheck_sugar_folder(dir, &f, &e), 0);
	for (size_t i = 0; i < f.n; i++)
		if (!strcmp(f.v[i].check, "collection.unique")) {
			unique++;
			assert_string_equal(f.v[i].file, "1.json");
			assert_non_null(strstr(f.v[i].message, "0.json"));
		}
	assert_int_equal(unique, 1);
	kiln_findings_release(&f);
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "%s/%d.json", dir, i);
		remove(path);
		snprintf(path, sizeof path, "%s/%d.png", dir, i);
		remove(path);
	}
	rmdir(dir);
}

/* Every finding carries the token it concerns, set by the folder check that made it: file N
 * is token N, or the token an item map gives position N (a release's metaplex/assets);
 * collection-wide findings (numbering gaps, drift, uniqueness, collection.json) carry none. */
static void test_items(void **state)
{
	static const uint64_t ids[] = {100, 0, 102, 103, 104, 105, 106, 107, 108};
	struct kiln_metacheck_opts o;
	struct kiln_findings f = KILN_FINDINGS_INIT;
	struct kiln_error e;
	size_t tied = 0;
	(void)state;
	kiln_error_clear(&e);
	assert_int_equal(kiln_metacheck_sugar_folder(CASES "/sugar-faults/input", &f, &e), 0);
	for (size_t i = 0; i < f.n; i++) {
		const struct kiln_finding *x = &f.v[i];
		char stem[64];
		kiln_qa_stem(x->file, stem, sizeof stem);
		if (!strncmp(x->check, "collection.", 11) || !strcmp(x->check, "sugar.numbering_gap") ||
		    !strcmp(x->file, "collection.json") || !strcmp(x->file, "notes.txt"))
			assert_false(x->has_item);
		else if (*x->file) {
			assert_true(x->has_item);
			assert_int_equal(x->item, strtoull(stem, NULL, 10));
			tied++;
		}
	}
	assert_true(tied >= 5);
	kiln_findings_release(&f);
	/* the same folder as a release's metaplex/assets: position 1 is token 0, 6 is 106 (03.json
	 * reads as position 3) */
	memset(&o, 0, sizeof o);
	o.item_ids = ids;
	o.nitem_ids = sizeof ids / sizeof ids[0];
	assert_int_equal(kiln_metacheck_sugar_folder_opts(CASES "/sugar-faults/input", &o, &f, &e),
			 0);
	for (size_t i = 0; i < f.n; i++) {
		if (!strcmp(f.v[i].check, "sugar.missing_image")) {
			assert_true(f.v[i].has_item);
			assert_int_equal(f.v[i].item, !strcmp(f.v[i].file, "6.json") ? 106 : 103);
		}
		if (!strcmp(f.v[i].check, "sugar.image_mismatch")) {
			assert_true(f.v[i].has_item);
			assert_int_equal(f.v[i].item, 0);
		}
	}
	kiln_findings_release(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_base58),
		cmocka_unit_test(test_messages),
		cmocka_unit_test(test_missing_folder),
		cmocka_unit_test(test_alloc_failure),
		cmocka_unit_test(test_many_attributes),
		cmocka_unit_test(test_items),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
