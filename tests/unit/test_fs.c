/* lib/util/fs.c's atomic writes are durable: the file's bytes are fsynced before the rename,
 * and its folder after it (a power cut after a rename whose folder was never synced can lose
 * the new name). This program is linked with -Wl,--wrap=fsync (CMakeLists.txt): every fsync
 * libkiln makes comes to __wrap_fsync below, which notes what was synced and in which state
 * the target file was at that moment. */
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

#include "kiln/buf.h"
#include "util/fs.h"

int __real_fsync(int fd);
int __wrap_fsync(int fd);

static const char *watch;        /* the file being written */
static int file_syncs;           /* fsyncs of a regular file */
static int dir_syncs_after;      /* fsyncs of watch's folder once watch was in place */
static ino_t watch_dir;

int __wrap_fsync(int fd)
{
	struct stat st, w;
	if (fstat(fd, &st) == 0) {
		if (S_ISREG(st.st_mode))
			file_syncs++;
		else if (S_ISDIR(st.st_mode) && st.st_ino == watch_dir && watch &&
			 stat(watch, &w) == 0)
			dir_syncs_after++;
	}
	return __real_fsync(fd);
}

static void write_atomic_syncs_the_folder(void **state)
{
	char dir[64] = "/tmp/kiln-test-fs-XXXXXX", path[128];
	struct kiln_buf b = KILN_BUF_INIT;
	struct kiln_error e;
	struct stat st;
	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(stat(dir, &st), 0);
	watch_dir = st.st_ino;
	snprintf(path, sizeof path, "%s/catalog.json", dir);
	watch = path;

	file_syncs = dir_syncs_after = 0;
	assert_int_equal(kiln_fs_write_atomic(path, "{}", 2, &e), 0);
	assert_int_equal(file_syncs, 1);
	assert_int_equal(dir_syncs_after, 1);
	assert_int_equal(kiln_fs_read(path, &b, &e), 0);
	assert_int_equal(b.len, 2);
	assert_memory_equal(b.data, "{}", 2);

	/* replacing a file: the same */
	file_syncs = dir_syncs_after = 0;
	assert_int_equal(kiln_fs_write_atomic(path, "[1]", 3, &e), 0);
	assert_int_equal(file_syncs, 1);
	assert_int_equal(dir_syncs_after, 1);

	/* kiln_fs_copy with sync */
	file_syncs = dir_syncs_after = 0;
	snprintf(path, sizeof path, "%s/copy.json", dir);
	{
		char src[128];
		snprintf(src, sizeof src, "%s/catalog.json", dir);
		assert_int_equal(kiln_fs_copy(src, path, 1, &e), 0);
	}
	assert_int_equal(file_syncs, 1);
	assert_int_equal(dir_syncs_after, 1);

	/* without sync (the caller syncs the file system in bulk): no fsync at all */
	file_syncs = dir_syncs_after = 0;
	assert_int_equal(kiln_fs_write_atomic_sync(path, "x", 1, 0, &e), 0);
	assert_int_equal(file_syncs, 0);
	assert_int_equal(dir_syncs_after, 0);

	watch = NULL;
	kiln_buf_release(&b);
	assert_int_equal(kiln_fs_remove_tree(dir, &e), 0);
}

/* a bare file name: its folder is the current one */
static void write_atomic_relative(void **state)
{
	char dir[64] = "/tmp/kiln-test-fs-XXXXXX", cwd[4096];
	struct kiln_error e;
	struct stat st;
	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_non_null(getcwd(cwd, sizeof cwd));
	assert_int_equal(chdir(dir), 0);
	assert_int_equal(stat(".", &st), 0);
	watch_dir = st.st_ino;
	watch = "plain.txt";
	file_syncs = dir_syncs_after = 0;
	assert_int_equal(kiln_fs_write_atomic("plain.txt", "a", 1, &e), 0);
	assert_int_equal(dir_syncs_after, 1);
	watch = NULL;
	assert_int_equal(chdir(cwd), 0);
	assert_int_equal(kiln_fs_remove_tree(dir, &e), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(write_atomic_syncs_the_folder),
		cmocka_unit_test(write_atomic_relative),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
