/* lib/release/pfiles.c: the CID of a folder made from the bytes as they are written is the one
 * kiln_ipfs_import_tree() reads from the disk (nested folders, files in any order, a folder
 * holding only folders), and a path given twice says "import from disk" (-1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kiln/release.h"
#include "release/pfiles.h"
#include "util/fs.h"

static const char *const files[][2] = {
	{ "log/proofs/2.json", "{\"b\":2}\n" }, { "portfolio.json", "{}\n" },
	{ "log/proofs/10.json", "{\"b\":10}\n" }, { "log/entries.jsonl", "x\ny\n" },
	{ "deep/only/folders/f", "" }, { "attestations/1.sigstore.json", "[1]" },
	{ "log/checkpoint", "note\n" }, { "index.html", "<p>hi</p>" },
};

static void same_cid_as_the_disk(void **state)
{
	char dir[] = "/tmp/kiln-test-pfiles-XXXXXX", root[512], path[600];
	char want[KILN_IPFS_CID_MAX], got[KILN_IPFS_CID_MAX];
	struct kiln_pfiles *p;
	struct kiln_error e;
	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(root, sizeof root, "%s/portfolio", dir);
	assert_int_equal(kiln_pfiles_new(&p, root, &e), 0);
	for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
		char *slash;
		snprintf(path, sizeof path, "%s/%s", root, files[i][0]);
		slash = strrchr(path, '/');
		*slash = 0;
		assert_int_equal(kiln_fs_mkdirs(path, &e), 0);
		*slash = '/';
		assert_int_equal(kiln_fs_write_atomic(path, files[i][1], strlen(files[i][1]), &e),
				 0);
		assert_int_equal(kiln_pfiles_add(p, path, files[i][1], strlen(files[i][1]), &e), 0);
	}
	assert_int_equal(kiln_pfiles_finish(p, got, &e), 0);
	kiln_pfiles_free(p);
	assert_int_equal(kiln_ipfs_import_tree(root, NULL, 0, want, NULL, &e), 0);
	assert_string_equal(got, want);
	/* the same path twice: one file on disk, two entries here */
	assert_int_equal(kiln_pfiles_new(&p, root, &e), 0);
	snprintf(path, sizeof path, "%s/index.html", root);
	assert_int_equal(kiln_pfiles_add(p, path, "a", 1, &e), 0);
	assert_int_equal(kiln_pfiles_add(p, path, "b", 1, &e), 0);
	assert_int_equal(kiln_pfiles_finish(p, got, &e), -1);
	kiln_pfiles_free(p);
	/* a file outside the folder is refused */
	assert_int_equal(kiln_pfiles_new(&p, root, &e), 0);
	assert_int_not_equal(kiln_pfiles_add(p, "/etc/passwd", "a", 1, &e), 0);
	kiln_pfiles_free(p);
	assert_int_equal(kiln_fs_remove_tree(dir, &e), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(same_cid_as_the_disk),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
