/* util/path: every path a spec names stays in the project (after symbolic links), and only
 * regular files are opened, without blocking on a FIFO. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "util/path.h"
#include "util/fs.h"
#include "kiln/buf.h"

static char root[256], proj[300], other[300];

static void touch(const char *dir, const char *name)
{
	char p[600];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs("x", f);
	fclose(f);
}

static int setup(void **state)
{
	char p[600];
	snprintf(root, sizeof root, "%s/kiln-path-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(root));
	snprintf(proj, sizeof proj, "%s/proj", root);
	snprintf(other, sizeof other, "%s/proj2", root);
	assert_int_equal(mkdir(proj, 0700), 0);
	assert_int_equal(mkdir(other, 0700), 0);
	snprintf(p, sizeof p, "%s/layers", proj);
	assert_int_equal(mkdir(p, 0700), 0);
	touch(p, "a.png");
	touch(other, "secret.png");
	snprintf(p, sizeof p, "%s/layers/out.png", proj);
	char target[600];
	snprintf(target, sizeof target, "%s/secret.png", other);
	assert_int_equal(symlink(target, p), 0);
	snprintf(p, sizeof p, "%s/layers/in.png", proj);
	assert_int_equal(symlink("a.png", p), 0);
	snprintf(p, sizeof p, "%s/fifo", proj);
	assert_int_equal(mkfifo(p, 0600), 0);
	return 0;
}

static int teardown(void **state)
{
	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	return system(cmd) ? -1 : 0;
}

static int check(const char *rel, const char *const *allow, size_t n)
{
	char *out = NULL, res[4096];
	int st = kiln_path_beneath(proj, rel, allow, n, &out, res, sizeof res);
	if (st == KILN_PATH_OK) {
		assert_non_null(out);
		assert_int_equal(out[0], '/');
	} else {
		assert_null(out);
	}
	free(out);
	return st;
}

static void test_inside(void **state)
{
	assert_int_equal(check("layers/a.png", NULL, 0), KILN_PATH_OK);
	assert_int_equal(check("layers/../layers/a.png", NULL, 0), KILN_PATH_OK);
	/* a link that stays inside is fine */
	assert_int_equal(check("layers/in.png", NULL, 0), KILN_PATH_OK);
}

static void test_outside(void **state)
{
	char abs[600];
	assert_int_equal(check("../proj2/secret.png", NULL, 0), KILN_PATH_OUTSIDE);
	assert_int_equal(check("../../../../../../../../etc/passwd", NULL, 0), KILN_PATH_OUTSIDE);
	assert_int_equal(check("/etc/passwd", NULL, 0), KILN_PATH_OUTSIDE);
	/* a symbolic link in the project pointing out */
	assert_int_equal(check("layers/out.png", NULL, 0), KILN_PATH_OUTSIDE);
	/* "proj2" shares the prefix "proj" but is not beneath it */
	snprintf(abs, sizeof abs, "%s/secret.png", other);
	assert_int_equal(check(abs, NULL, 0), KILN_PATH_OUTSIDE);
	assert_int_equal(check("layers/none.png", NULL, 0), KILN_PATH_MISSING);
}

static void test_allowed(void **state)
{
	const char *allow_rel[] = {"../proj2"};
	const char *allow_abs[] = {other};
	const char *allow_wrong[] = {"layers"};
	assert_int_equal(check("../proj2/secret.png", allow_rel, 1), KILN_PATH_OK);
	assert_int_equal(check("layers/out.png", allow_abs, 1), KILN_PATH_OK);
	assert_int_equal(check("/etc/passwd", allow_wrong, 1), KILN_PATH_OUTSIDE);
}

static void test_open_regular(void **state)
{
	char p[600];
	struct kiln_error e;
	int fd;
	size_t size;
	snprintf(p, sizeof p, "%s/layers/a.png", proj);
	assert_int_equal(kiln_path_open_regular(p, 0, 0, &fd, &size, &e), 0);
	assert_int_equal(size, 1);
	close(fd);
	/* over the limit */
	assert_int_equal(kiln_path_open_regular(p, 0 + 1, 0, &fd, &size, &e), 0);
	close(fd);
	/* a FIFO: refused at once (no writer: open would block without O_NONBLOCK) */
	snprintf(p, sizeof p, "%s/fifo", proj);
	assert_int_equal(kiln_path_open_regular(p, 0, 1, &fd, &size, &e), KILN_E_SPEC);
	assert_non_null(strstr(e.msg, "FIFO"));
	assert_int_equal(fd, -1);
	/* a folder */
	snprintf(p, sizeof p, "%s/layers", proj);
	assert_int_equal(kiln_path_open_regular(p, 0, 0, &fd, &size, &e), KILN_E_IO);
	assert_non_null(strstr(e.msg, "a folder"));
	/* /dev/zero */
	assert_int_equal(kiln_path_open_regular("/dev/zero", 0, 0, &fd, &size, &e), KILN_E_IO);
	assert_non_null(strstr(e.msg, "device"));
}

/* the plain whole-file reader refuses what is not a regular file, without blocking */
static void test_fs_read_fifo(void **state)
{
	char p[600];
	struct kiln_error e;
	struct kiln_buf b = KILN_BUF_INIT;
	snprintf(p, sizeof p, "%s/fifo", proj);
	assert_int_equal(kiln_fs_read(p, &b, &e), KILN_E_IO);
	assert_non_null(strstr(e.msg, "FIFO"));
	assert_int_equal(kiln_fs_read("/dev/zero", &b, &e), KILN_E_IO);
	assert_non_null(strstr(e.msg, "device"));
	snprintf(p, sizeof p, "%s/layers/a.png", proj);
	assert_int_equal(kiln_fs_read(p, &b, &e), 0);
	assert_int_equal(b.len, 1);
	kiln_buf_release(&b);
}

static void test_open_limit(void **state)
{
	char p[600];
	struct kiln_error e;
	int fd;
	size_t size;
	snprintf(p, sizeof p, "%s/big", proj);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs("0123456789", f);
	fclose(f);
	assert_int_equal(kiln_path_open_regular(p, 9, 1, &fd, &size, &e), KILN_E_SPEC);
	assert_non_null(strstr(e.msg, "limit of 9 bytes"));
	assert_int_equal(kiln_path_open_regular(p, 10, 1, &fd, &size, &e), 0);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inside),
		cmocka_unit_test(test_outside),
		cmocka_unit_test(test_allowed),
		cmocka_unit_test(test_open_regular),
		cmocka_unit_test(test_open_limit),
		cmocka_unit_test(test_fs_read_fifo),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
