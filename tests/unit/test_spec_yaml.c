/* spec: the YAML is read as written or refused (issue 19): aliases resolved and bounded,
 * tags, NUL, a second document, UTF-16 and bytes that are not UTF-8 refused with line:col,
 * the size limit; kiln_fs_read_limited refuses what is not a regular file without blocking. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln/spec.h"
#include "util/alloc.h"
#include "util/fs.h"

#define LAYERS "layers: [{name: L, traits: [{name: a, file: a.png}, {name: b, file: b.png}]}]\n"

static struct kiln_spec *load(const char *yaml, size_t len, struct kiln_error *e)
{
	struct kiln_spec *s = NULL;
	kiln_error_clear(e);
	if (kiln_spec_parse(&s, yaml, len, "k.yaml", NULL, e))
		return NULL;
	return s;
}

static void aliases_resolve(void **state)
{
	static const char y[] =
		"collection: {name: &n Pixel Owls, size: &two 2, description: *n}\n"
		"layers:\n"
		"  - name: L\n"
		"    traits:\n"
		"      - &t {name: a, weight: 3, file: a.png}\n"
		"      - {<<: *t, name: b}\n"
		"metadata: {start_id: *two}\n";
	struct kiln_error e;
	struct kiln_spec *s = load(y, strlen(y), &e);
	(void)state;
	if (!s)
		fail_msg("%s: %s", e.where, e.msg);
	assert_string_equal(s->description, "Pixel Owls");
	assert_int_equal(s->start_id, 2);
	assert_string_equal(s->layers[0].traits[1].name, "b");
	assert_true(s->layers[0].traits[1].amount == 3); /* merged from the anchor */
	assert_string_equal(s->layers[0].traits[1].file, "a.png");
	kiln_spec_free(s);
}

static void refusals(void **state)
{
	static const struct {
		const char *yaml;
		size_t len; /* 0: strlen */
		const char *where, *msg;
	} cases[] = {
		{"collection: {name: \"A\\0B\", size: 2}\n" LAYERS, 0, "k.yaml:1:21", "NUL character"},
		{"collection: {name: \"A\\u0000B\", size: 2}\n" LAYERS, 0, "k.yaml:1:21", "NUL"},
		{"collection: {name: \"A\\U00000000\", size: 2}\n" LAYERS, 0, "k.yaml:1:21", "NUL"},
		{"collection: {name: !!str A, size: 2}\n" LAYERS, 0, "k.yaml:1:20", "remove !!str"},
		{"collection: {name: A, size: 2}\n" LAYERS "--- {a: 1}\n", 0, "k.yaml:3:1",
		 "a second YAML document"},
		{"collection: {name: A, size: 2}\n" LAYERS "---\n", 0, "k.yaml:3:1",
		 "a second YAML document"},
		{"collection: {name: A, size: *nope}\n" LAYERS, 0, "k.yaml:1:", "not valid YAML"},
		{"a: &a [1, *a]\n", 0, "k.yaml:1:", "not valid YAML"},
		{"collection: {name: A\0B, size: 2}\n", 33, "k.yaml:1:21", "NUL byte at byte offset 20"},
		{"\xff\xfe" "c\0o\0", 6, "k.yaml:1:1", "UTF-16"},
		{"collection: {name: Caf\xe9, size: 2}\n", 0, "k.yaml:1:23", "not UTF-8"},
		{"collection: {name: \xed\xa0\x80, size: 2}\n", 0, "k.yaml:1:20", "not UTF-8"},
		{"# only a comment\n", 0, "k.yaml", "the spec is empty"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct kiln_error e;
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].yaml);
		struct kiln_spec *s = load(cases[i].yaml, len, &e);
		if (s || e.code != KILN_E_SPEC || !strstr(e.where, cases[i].where) ||
		    !strstr(e.msg, cases[i].msg))
			fail_msg("case %zu: code %d where '%s' msg '%s'", i, e.code, e.where, e.msg);
	}
}

static void an_escaped_backslash_is_fine(void **state)
{
	static const char y[] = "collection: {name: \"A\\\\0B\\x41\", size: 2}\n" LAYERS;
	struct kiln_error e;
	struct kiln_spec *s = load(y, strlen(y), &e);
	(void)state;
	if (!s)
		fail_msg("%s: %s", e.where, e.msg);
	assert_string_equal(s->name, "A\\0BA");
	kiln_spec_free(s);
}

static void a_utf8_bom_is_fine(void **state)
{
	static const char y[] = "\xef\xbb\xbf" "collection: {name: Caf\xc3\xa9, size: 2}\n" LAYERS;
	struct kiln_error e;
	struct kiln_spec *s = load(y, strlen(y), &e);
	(void)state;
	if (!s)
		fail_msg("%s: %s", e.where, e.msg);
	assert_string_equal(s->name, "Caf\xc3\xa9");
	kiln_spec_free(s);
}

/* Ten levels of ten aliases: 10^10 nodes once expanded, refused before expanding. */
static void billion_laughs(void **state)
{
	char y[2048];
	size_t n = 0;
	struct kiln_error e;
	(void)state;
	n += (size_t)snprintf(y + n, sizeof y - n, "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
	for (int l = 1; l < 10; l++) {
		n += (size_t)snprintf(y + n, sizeof y - n, "a%d: &a%d [", l, l);
		for (int k = 0; k < 10; k++)
			n += (size_t)snprintf(y + n, sizeof y - n, "%s*a%d", k ? ", " : "", l - 1);
		n += (size_t)snprintf(y + n, sizeof y - n, "]\n");
	}
	assert_null(load(y, n, &e));
	assert_int_equal(e.code, KILN_E_SPEC);
	assert_non_null(strstr(e.msg, "once expanded"));
}

static void limits(void **state)
{
	size_t big = (size_t)KILN_SPEC_MAX_BYTES + 1;
	char *y = malloc(big);
	struct kiln_error e;
	(void)state;
	assert_non_null(y);
	memset(y, '#', big);
	assert_null(load(y, big, &e));
	assert_int_equal(e.code, KILN_E_SPEC);
	assert_non_null(strstr(e.msg, "16 MiB"));
	memset(y, '[', 1000);
	assert_null(load(y, 1000, &e));
	assert_string_equal(e.where, "k.yaml:1:65");
	free(y);
}

static void read_limited(void **state)
{
	char dir[] = "/tmp/kiln-test-fs-XXXXXX", path[256];
	struct kiln_buf b = KILN_BUF_INIT;
	struct kiln_error e;
	FILE *f;
	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/fifo", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(kiln_fs_read_limited(path, &b, 100, 1, &e), KILN_E_SPEC);
	assert_non_null(strstr(e.msg, "is a FIFO (named pipe), not a regular file"));
	unlink(path);
	assert_int_equal(kiln_fs_read_limited(dir, &b, 100, 1, &e), KILN_E_SPEC);
	assert_non_null(strstr(e.msg, "is a folder, not a regular file"));
	snprintf(path, sizeof path, "%s/f", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("0123456789", f);
	fclose(f);
	assert_int_equal(kiln_fs_read_limited(path, &b, 9, 1, &e), KILN_E_SPEC);
	assert_non_null(strstr(e.msg, "more than 9 bytes"));
	kiln_buf_release(&b);
	assert_int_equal(kiln_fs_read_limited(path, &b, 10, 1, &e), 0);
	assert_int_equal(b.len, 10);
	assert_string_equal(b.data, "0123456789");
	kiln_buf_release(&b);
	snprintf(path, sizeof path, "%s/none", dir);
	assert_int_equal(kiln_fs_read_limited(path, &b, 10, 0, &e), KILN_E_IO);
	unlink(path);
	snprintf(path, sizeof path, "%s/f", dir);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(aliases_resolve), cmocka_unit_test(refusals),
		cmocka_unit_test(a_utf8_bom_is_fine), cmocka_unit_test(an_escaped_backslash_is_fine), cmocka_unit_test(billion_laughs),
		cmocka_unit_test(limits), cmocka_unit_test(read_limited),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
