/* Unit tests for lib/ipfs.c: CIDs and CARs against vectors from the npm oracle
 * (tests/ipfs/oracle.mjs, i.e. ipfs-unixfs-importer with kubo's --cid-version=1 defaults).
 * Pattern files have byte i = i % 251, so consecutive chunks differ. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln/release.h"
#include "util/alloc.h"
#include "util/sha.h"

#define HELLO_CID "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
#define HELLO_CID_V0 "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD"
#define EMPTY_CID "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
#define EMPTY_DIR_CID "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"

static char tmpdir[256];

static uint8_t *pattern(size_t n)
{
	uint8_t *p = malloc(n ? n : 1);
	assert_non_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i % 251);
	return p;
}

static void write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

static char *tpath(const char *name)
{
	static char buf[4][512];
	static int k;
	char *b = buf[k++ & 3];
	snprintf(b, sizeof buf[0], "%s/%s", tmpdir, name);
	return b;
}

static int setup(void **state)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/kiln-test-ipfs-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_hello_world(void **state)
{
	struct kiln_error e;
	char cid[KILN_IPFS_CID_MAX];
	kiln_error_clear(&e);
	assert_int_equal(kiln_ipfs_buf_cid("hello world", 11, cid, &e), 0);
	assert_string_equal(cid, HELLO_CID);
	write_file(tpath("hello.txt"), "hello world", 11);
	assert_int_equal(kiln_ipfs_file_cid(tpath("hello.txt"), cid, &e), 0);
	assert_string_equal(cid, HELLO_CID);
}

static void test_empty(void **state)
{
	struct kiln_error e;
	char cid[KILN_IPFS_CID_MAX];
	uint64_t size = 99;
	kiln_error_clear(&e);
	assert_int_equal(kiln_ipfs_buf_cid(NULL, 0, cid, &e), 0);
	assert_string_equal(cid, EMPTY_CID);
	write_file(tpath("empty"), "", 0);
	assert_int_equal(kiln_ipfs_import_path(tpath("empty"), NULL, cid, &size, &e), 0);
	assert_string_equal(cid, EMPTY_CID);
	assert_int_equal(size, 0);
}

static const struct {
	size_t n;
	const char *cid;
} sized[] = {
	{ 262144, "bafkreibruh455iawsviqslif5c7uurdcfdemh22mtnytyzvnzn75kpejxy" },
	{ 262145, "bafybeiexg2oqkfnj56l7fcmawswqbijt5shq4b5rg6a546uwpkqqzwjioi" },
	{ 3 * 262144 + 100, "bafybeidgbfvpggtre34rfal7xfzx33nqt3mdwa6kot6iab5go3kvdc3kl4" },
	{ 174 * 262144, "bafybeihpe5snhzneq7xs53nivmsopto5lrogo3wjynauqylqeym5a3irbm" },
	{ 174 * 262144 + 1, "bafybeib4y7ghw2rq7bracc4xwtxrbzo7cfvagdpte2tmrkgwl6dyard3cm" },
};

static void test_sizes(void **state)
{
	struct kiln_error e;
	char cid[KILN_IPFS_CID_MAX];
	kiln_error_clear(&e);
	for (size_t i = 0; i < sizeof sized / sizeof sized[0]; i++) {
		uint8_t *p = pattern(sized[i].n);
		assert_int_equal(kiln_ipfs_buf_cid(p, sized[i].n, cid, &e), 0);
		assert_string_equal(cid, sized[i].cid);
		write_file(tpath("sized"), p, sized[i].n);
		assert_int_equal(kiln_ipfs_file_cid(tpath("sized"), cid, &e), 0);
		assert_string_equal(cid, sized[i].cid);
		free(p);
	}
}

/* Writes of any sizes give the same DAG as one write. */
static void test_streaming_writes(void **state)
{
	static const size_t steps[] = { 1, 7, 262143, 262144, 100000, 3, 524288, 65536 };
	size_t n = 174 * 262144 + 1, off = 0, k = 0;
	uint8_t *p = pattern(n);
	struct kiln_ipfs_file *f;
	struct kiln_error e;
	char cid[KILN_IPFS_CID_MAX];
	uint64_t size;
	kiln_error_clear(&e);
	assert_int_equal(kiln_ipfs_file_new(&f, NULL, &e), 0);
	while (off < n) {
		size_t s = steps[k++ % (sizeof steps / sizeof steps[0])];
		if (s > n - off)
			s = n - off;
		assert_int_equal(kiln_ipfs_file_write(f, p + off, s, &e), 0);
		off += s;
	}
	assert_int_equal(kiln_ipfs_file_finish(f, cid, &size, &e), 0);
	assert_string_equal(cid, sized[4].cid);
	assert_true(size > n);
	/* finished: no more writes */
	assert_int_equal(kiln_ipfs_file_write(f, p, 1, &e), KILN_E_USAGE);
	kiln_ipfs_file_free(f);
	free(p);
}

/* The folder tests/ipfs/oracle.mjs imported as "few": three files and a sub-folder with a file
 * and an empty folder. Built with the API, written to a CAR that must equal the oracle's. */
static int build_few(const char *car_path, char root[KILN_IPFS_CID_MAX], struct kiln_error *e)
{
	struct kiln_ipfs_car *car = NULL;
	struct kiln_ipfs_dir *d = NULL, *sub = NULL, *v = NULL;
	uint8_t *p = pattern(262145);
	char cid[KILN_IPFS_CID_MAX];
	int rc;
	if (car_path && (rc = kiln_ipfs_car_open(&car, car_path, e)))
		goto out;
	if ((rc = kiln_ipfs_dir_new(&d, car, e)) || (rc = kiln_ipfs_dir_new(&sub, car, e)) ||
	    (rc = kiln_ipfs_dir_new(&v, car, e)))
		goto out;
	if ((rc = kiln_ipfs_dir_add_buf(d, "a.txt", "hello world", 11, cid, e)) ||
	    (rc = kiln_ipfs_dir_add_buf(d, "b.bin", p, 262145, cid, e)) ||
	    (rc = kiln_ipfs_dir_add_buf(d, "empty", NULL, 0, cid, e)) ||
	    (rc = kiln_ipfs_dir_add_buf(sub, "c.json", "{\"name\":\"c\"}", 12, cid, e)))
		goto out;
	rc = kiln_ipfs_dir_add_dir(sub, "void", v, cid, e);
	v = NULL;
	if (rc)
		goto out;
	rc = kiln_ipfs_dir_add_dir(d, "sub", sub, cid, e);
	sub = NULL;
	if (rc)
		goto out;
	if ((rc = kiln_ipfs_dir_finish(d, root, NULL, e)))
		goto out;
	if (car)
		rc = kiln_ipfs_car_finish(car, root, e);
out:
	kiln_ipfs_dir_free(v);
	kiln_ipfs_dir_free(sub);
	kiln_ipfs_dir_free(d);
	kiln_ipfs_car_free(car);
	free(p);
	return rc;
}

#define FEW_CID "bafybeiaweubfqeakqzksoowpckdskkzv7ape7hkwkypq5bhebxgkv72mrm"
#define FEW_CAR_SHA256 "d58d96891cc4a3b0cc5afd6fc1a5e92c44d9618f7f300ba8aa7f71313bd1c007"

static void test_directory_and_car(void **state)
{
	struct kiln_error e;
	char root[KILN_IPFS_CID_MAX], hex[65];
	kiln_error_clear(&e);
	assert_int_equal(build_few(tpath("few.car"), root, &e), 0);
	assert_string_equal(root, FEW_CID);
	assert_int_equal(kiln_sha256_file(tpath("few.car"), hex, &e), 0);
	assert_string_equal(hex, FEW_CAR_SHA256);
}

static void test_import_tree(void **state)
{
	struct kiln_error e;
	char cid[KILN_IPFS_CID_MAX];
	uint8_t *p = pattern(262145);
	kiln_error_clear(&e);
	assert_int_equal(mkdir(tpath("few"), 0755), 0);
	assert_int_equal(mkdir(tpath("few/sub"), 0755), 0);
	assert_int_equal(mkdir(tpath("few/sub/void"), 0755), 0);
	write_file(tpath("few/a.txt"), "hello world", 11);
	write_file(tpath("few/b.bin"), p, 262145);
	write_file(tpath("few/empty"), "", 0);
	write_file(tpath("few/sub/c.json"), "{\"name\":\"c\"}", 12);
	write_file(tpath("few/.hidden"), "skipped", 7);
	assert_int_equal(kiln_ipfs_import_tree(tpath("few"), NULL, 0, cid, NULL, &e), 0);
	assert_string_equal(cid, FEW_CID);
	/* with hidden files included, another folder */
	assert_int_equal(kiln_ipfs_import_tree(tpath("few"), NULL, 1, cid, NULL, &e), 0);
	assert_string_not_equal(cid, FEW_CID);
	/* an empty folder */
	assert_int_equal(kiln_ipfs_import_tree(tpath("few/sub/void"), NULL, 0, cid, NULL, &e), 0);
	assert_string_equal(cid, EMPTY_DIR_CID);
	/* a symbolic link is refused */
	assert_int_equal(symlink("a.txt", tpath("few/link")), 0);
	assert_int_equal(kiln_ipfs_import_tree(tpath("few"), NULL, 0, cid, NULL, &e), KILN_E_IO);
	assert_non_null(strstr(e.where, "few/link"));
	free(p);
}

/* 4096 names of 28 bytes: estimate 4096 * (28 + 36) = 262144, the threshold itself: flat.
 * One more entry: a HAMT (and its CAR as the oracle writes it). */
#define FLAT4096_CID "bafybeiamhq4j4p2k7bbxtbfflvylhnmchenpiz3kkolmfp4rbi3ssiepha"
#define HAMT4097_CID "bafybeie33yhu6fxfdtqvnotvsdlp24sban7iurxbsoapxwkvaxznj44bkm"
#define HAMT4097_CAR_SHA256 "20688d9a553bd99cea953bd9f536ee3e1fd19e48cf568f72e461936adb7d715e"

static void fill_4096(struct kiln_ipfs_dir *d)
{
	struct kiln_error e;
	kiln_error_clear(&e);
	for (int i = 0; i < 4096; i++) {
		char name[64], body[16];
		int n = snprintf(body, sizeof body, "%d", i);
		snprintf(name, sizeof name, "%024d.png", i);
		assert_int_equal(kiln_ipfs_dir_add_buf(d, name, body, (size_t)n, NULL, &e), 0);
	}
}

static void test_hamt_threshold(void **state)
{
	struct kiln_ipfs_dir *d;
	struct kiln_ipfs_car *car;
	struct kiln_error e;
	char cid[KILN_IPFS_CID_MAX], hex[65];
	kiln_error_clear(&e);
	assert_int_equal(kiln_ipfs_dir_new(&d, NULL, &e), 0);
	fill_4096(d);
	assert_int_equal(kiln_ipfs_dir_count(d), 4096);
	assert_int_equal(kiln_ipfs_dir_finish(d, cid, NULL, &e), 0);
	assert_string_equal(cid, FLAT4096_CID);
	kiln_ipfs_dir_free(d);

	assert_int_equal(kiln_ipfs_car_open(&car, tpath("hamt.car"), &e), 0);
	assert_int_equal(kiln_ipfs_dir_new(&d, car, &e), 0);
	fill_4096(d); /* in the oracle's (bytewise) order, so that the CARs are equal */
	assert_int_equal(kiln_ipfs_dir_add_buf(d, "x", "x", 1, NULL, &e), 0);
	assert_int_equal(kiln_ipfs_dir_finish(d, cid, NULL, &e), 0);
	assert_string_equal(cid, HAMT4097_CID);
	kiln_ipfs_dir_free(d);
	assert_int_equal(kiln_ipfs_car_finish(car, cid, &e), 0);
	kiln_ipfs_car_free(car);
	assert_int_equal(kiln_sha256_file(tpath("hamt.car"), hex, &e), 0);
	assert_string_equal(hex, HAMT4097_CAR_SHA256);
}

/* A CAR of one file (kiln release --car: the hidden image, contract.json), written without its
 * own fsync as the release does: equal to @ipld/car's for "hello world". */
#define HELLO_CAR_SHA256 "7749e28c4fe3f68c00ac08af41c1c4f6e0275c86bd9e8ae7b9446da7d1663710"

static void test_file_car(void **state)
{
	struct kiln_ipfs_car *car;
	struct kiln_error e;
	char cid[KILN_IPFS_CID_MAX], hex[65];
	(void)state;
	kiln_error_clear(&e);
	write_file(tpath("hello.txt"), "hello world", 11);
	assert_int_equal(kiln_ipfs_car_open(&car, tpath("hello.car"), &e), 0);
	kiln_ipfs_car_set_sync(car, 0);
	assert_int_equal(kiln_ipfs_import_path(tpath("hello.txt"), car, cid, NULL, &e), 0);
	assert_string_equal(cid, HELLO_CID);
	assert_int_equal(kiln_ipfs_car_finish(car, cid, &e), 0);
	kiln_ipfs_car_free(car);
	assert_int_equal(kiln_sha256_file(tpath("hello.car"), hex, &e), 0);
	assert_string_equal(hex, HELLO_CAR_SHA256);
}

static void test_errors(void **state)
{
	struct kiln_ipfs_dir *d;
	struct kiln_ipfs_car *car;
	struct kiln_error e;
	char cid[KILN_IPFS_CID_MAX];
	DIR *dir;
	struct dirent *de;
	int leftovers = 0;
	kiln_error_clear(&e);

	assert_int_equal(kiln_ipfs_file_cid(tpath("no-such-file"), cid, &e), KILN_E_IO);
	assert_non_null(strstr(e.where, "no-such-file"));
	assert_int_equal(kiln_ipfs_file_cid(tmpdir, cid, &e), KILN_E_IO);

	assert_int_equal(kiln_ipfs_dir_new(&d, NULL, &e), 0);
	assert_int_equal(kiln_ipfs_dir_add_buf(d, "", "x", 1, NULL, &e), KILN_E_USAGE);
	assert_int_equal(kiln_ipfs_dir_add_buf(d, "a/b", "x", 1, NULL, &e), KILN_E_USAGE);
	assert_int_equal(kiln_ipfs_dir_add_buf(d, "..", "x", 1, NULL, &e), KILN_E_USAGE);
	/* CIDv0 is not accepted */
	assert_int_equal(kiln_ipfs_dir_add_cid(d, "c", HELLO_CID_V0, 11, &e), KILN_E_USAGE);
	assert_int_equal(kiln_ipfs_dir_add_cid(d, "c", HELLO_CID "a", 11, &e), KILN_E_USAGE);
	assert_int_equal(kiln_ipfs_dir_add_cid(d, "c", HELLO_CID, 11, &e), 0);
	assert_int_equal(kiln_ipfs_dir_add_buf(d, "c", "x", 1, NULL, &e), 0);
	assert_int_equal(kiln_ipfs_dir_finish(d, cid, NULL, &e), KILN_E_USAGE);
	assert_string_equal(e.where, "c");
	assert_int_equal(kiln_ipfs_dir_add_buf(d, "d", "x", 1, NULL, &e), KILN_E_USAGE);
	kiln_ipfs_dir_free(d);
	kiln_ipfs_dir_free(NULL);
	kiln_ipfs_file_free(NULL);
	kiln_ipfs_car_free(NULL);

	/* add_cid gives the same directory as importing the bytes */
	{
		char a[KILN_IPFS_CID_MAX], b[KILN_IPFS_CID_MAX];
		assert_int_equal(kiln_ipfs_dir_new(&d, NULL, &e), 0);
		assert_int_equal(kiln_ipfs_dir_add_cid(d, "a.txt", HELLO_CID, 11, &e), 0);
		assert_int_equal(kiln_ipfs_dir_finish(d, a, NULL, &e), 0);
		kiln_ipfs_dir_free(d);
		assert_int_equal(kiln_ipfs_dir_new(&d, NULL, &e), 0);
		assert_int_equal(kiln_ipfs_dir_add_buf(d, "a.txt", "hello world", 11, NULL, &e), 0);
		assert_int_equal(kiln_ipfs_dir_finish(d, b, NULL, &e), 0);
		kiln_ipfs_dir_free(d);
		assert_string_equal(a, b);
	}

	/* a CAR freed unfinished leaves nothing behind; a bad root is refused */
	assert_int_equal(kiln_ipfs_car_open(&car, tpath("abandoned.car"), &e), 0);
	assert_int_equal(kiln_ipfs_car_finish(car, "bogus", &e), KILN_E_USAGE);
	kiln_ipfs_car_free(car);
	dir = opendir(tmpdir);
	assert_non_null(dir);
	while ((de = readdir(dir)))
		if (strstr(de->d_name, "abandoned"))
			leftovers++;
	closedir(dir);
	assert_int_equal(leftovers, 0);
	assert_int_equal(kiln_ipfs_car_open(&car, "/nonexistent-dir/x.car", &e), KILN_E_IO);
	assert_null(car);
}

/* Every allocation failing in turn: KILN_E_NOMEM (or success), never a crash or a leak
 * (the sanitizer build checks leaks). */
static void test_alloc_failures(void **state)
{
	int ok = 0;
	for (long n = 0; n < 400 && !ok; n++) {
		struct kiln_error e;
		char root[KILN_IPFS_CID_MAX];
		int rc;
		kiln_error_clear(&e);
		kiln_alloc_fail_after(n);
		rc = build_few(tpath("fail.car"), root, &e);
		kiln_alloc_fail_after(-1);
		if (rc == 0) {
			assert_string_equal(root, FEW_CID);
			ok = 1;
		} else {
			assert_int_equal(rc, KILN_E_NOMEM);
		}
	}
	assert_true(ok);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello_world),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_streaming_writes),
		cmocka_unit_test(test_directory_and_car),
		cmocka_unit_test(test_import_tree),
		cmocka_unit_test(test_hamt_threshold), cmocka_unit_test(test_file_car),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_alloc_failures),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
