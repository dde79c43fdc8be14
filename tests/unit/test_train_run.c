/* train run (lib/train/run.c): kohya's progress read from its log as it comes (tqdm lines
 * redrawn after '\r', cut anywhere between two reads; "epoch N/M"; other bars and lines
 * ignored); the run state file written and read back, damaged ones refused; a process found
 * by pid AND start time (a reused pid is not the trainer); the supervisor's exit record; the
 * LoRA's metadata checked against the manifest, each mismatch naming both values. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "kiln/train.h"
#include "kiln/buf.h"
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>

static void test_progress_lines(void **state)
{
	struct kiln_train_progress p;
	(void)state;
	kiln_train_progress_init(&p);
	const char *l = "steps:  12%|\xe2\x96\x88\xe2\x96\x8f        | 180/1500 [00:03<00:21,  "
			"5.00it/s, avr_loss=0.0834]";
	assert_int_equal(kiln_train_progress_line(&p, l, strlen(l)), 1);
	assert_int_equal(p.step, 180);
	assert_int_equal(p.total, 1500);
	assert_true(p.has_loss && fabs(p.loss - 0.0834) < 1e-12);
	/* before set_postfix: no loss yet, the step still counts */
	l = "steps:   0%|          | 0/1500 [00:00<?, ?it/s]";
	assert_int_equal(kiln_train_progress_line(&p, l, strlen(l)), 1);
	assert_int_equal(p.step, 0);
	/* another bar (captions, validation) is not the step counter */
	l = "read caption: 100%|##########| 3/3 [00:00<00:00, 900.00it/s]";
	assert_int_equal(kiln_train_progress_line(&p, l, strlen(l)), 0);
	assert_int_equal(p.total, 1500);
	l = "epoch 2/3";
	assert_int_equal(kiln_train_progress_line(&p, l, strlen(l)), 2);
	assert_int_equal(p.epoch, 2);
	assert_int_equal(p.epochs, 3);
	l = "epoch 4/3";
	assert_int_equal(kiln_train_progress_line(&p, l, strlen(l)), 0);
	l = "saving checkpoint: out/owl.safetensors";
	assert_int_equal(kiln_train_progress_line(&p, l, strlen(l)), 3);
	assert_string_equal(p.saved, "out/owl.safetensors");
	/* not a count: "steps: 5/" and a step past the total */
	l = "steps: 50%| | 7/5 [00:01<00:01]";
	assert_int_equal(kiln_train_progress_line(&p, l, strlen(l)), 0);
	l = "torch.OutOfMemoryError: CUDA out of memory.";
	assert_int_equal(kiln_train_progress_line(&p, l, strlen(l)), 0);
	assert_string_equal(p.last, l);
}

static void test_progress_feed(void **state)
{
	struct kiln_train_progress p;
	const char *log = "INFO found directory img contains 3 image files\n\nepoch 1/2\n\n"
			  "\rsteps:  10%|#         | 1/10 [00:00<00:01, 9.0it/s, avr_loss=0.15]"
			  "\rsteps:  20%|##        | 2/10 [00:00<00:01, 9.0it/s, avr_loss=0.14]"
			  "\rsteps:  30%|###       | 3/10 [00:00<00:01, 9.0it/s, avr_loss=0.125]";
	size_t n = strlen(log);
	(void)state;
	/* the same bytes fed in every cut give the same answer */
	for (size_t cut = 0; cut <= n; cut++) {
		unsigned seen;
		kiln_train_progress_init(&p);
		seen = kiln_train_progress_feed(&p, log, cut);
		seen += kiln_train_progress_feed(&p, log + cut, n - cut);
		/* the last bar has no '\r' after it yet: it counts once its line ends */
		assert_int_equal(seen, 2);
		assert_int_equal(p.step, 2);
		seen = kiln_train_progress_feed(&p, "\r", 1);
		assert_int_equal(seen, 1);
		assert_int_equal(p.step, 3);
		assert_int_equal(p.total, 10);
		assert_true(fabs(p.loss - 0.125) < 1e-12);
		assert_int_equal(p.epoch, 1);
	}
}

static void test_state_file(void **state)
{
	char dir[] = "/tmp/kiln-trainrun-XXXXXX", path[128];
	struct kiln_train_state s, r;
	struct kiln_error e;
	FILE *f;
	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/run.json", dir);
	kiln_error_clear(&e);
	assert_int_equal(kiln_train_state_read(path, &r, &e), KILN_E_NOTFOUND);
	memset(&s, 0, sizeof s);
	strcpy(s.name, "owl_style");
	strcpy(s.where, "runpod");
	s.pid = 0;
	s.pid_start = 0;
	s.started = 1796650000.25;
	strcpy(s.manifest_sha256, "ab");
	strcpy(s.output, ".kiln/train/owl_style/output/owl_style.safetensors");
	strcpy(s.job_id, "job-1_u1");
	strcpy(s.endpoint, "http://127.0.0.1:1/v2/x");
	s.argv_json = strdup("[\"python3\",\"a b\"]");
	assert_int_equal(kiln_train_state_write(path, &s, &e), 0);
	assert_int_equal(kiln_train_state_read(path, &r, &e), 0);
	assert_string_equal(r.name, "owl_style");
	assert_string_equal(r.where, "runpod");
	assert_string_equal(r.job_id, "job-1_u1");
	assert_string_equal(r.output, s.output);
	assert_true(r.started == s.started);
	assert_string_equal(r.argv_json, "[\"python3\",\"a b\"]");
	kiln_train_state_release(&r);
	kiln_train_state_release(&s);
	/* damaged: cut short, a wrong type, an unknown place */
	static const char *bad[] = {
		"{\"name\": \"x\", \"where\": \"local\"",
		"{\"argv\": [], \"endpoint\": \"\", \"job_id\": \"\", \"manifest_sha256\": \"\", "
		"\"name\": \"x\", \"output\": \"o\", \"pid\": \"12\", \"pid_start\": 1, "
		"\"started\": 1.0, \"where\": \"local\"}",
		"{\"argv\": [], \"endpoint\": \"\", \"job_id\": \"\", \"manifest_sha256\": \"\", "
		"\"name\": \"x\", \"output\": \"o\", \"pid\": 12, \"pid_start\": 1, "
		"\"started\": 1.0, \"where\": \"mars\"}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		assert_non_null(f = fopen(path, "w"));
		fputs(bad[i], f);
		fclose(f);
		kiln_error_clear(&e);
		assert_int_equal(kiln_train_state_read(path, &r, &e), KILN_E_IO);
		assert_non_null(strstr(e.msg, "not a run state file"));
		assert_null(r.argv_json);
	}
	unlink(path);
	rmdir(dir);
}

static void test_process(void **state)
{
	char dir[] = "/tmp/kiln-trainrun-XXXXXX", log[128], ex[128];
	char *argv[] = {"sh", "-c", "echo trained; exit 3", NULL};
	struct kiln_error e;
	int64_t pid;
	uint64_t start, me;
	int status = -1;
	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(log, sizeof log, "%s/log", dir);
	snprintf(ex, sizeof ex, "%s/exit", dir);
	kiln_error_clear(&e);
	assert_int_equal(kiln_train_exit_status(ex, &status, &e), KILN_E_NOTFOUND);
	assert_int_equal(kiln_train_spawn(argv, dir, log, ex, &pid, &start, &e), 0);
	for (int i = 0; i < 200 && kiln_train_alive(pid, start); i++)
		usleep(20000);
	assert_false(kiln_train_alive(pid, start));
	assert_int_equal(kiln_train_exit_status(ex, &status, &e), 0);
	assert_int_equal(status, 3);
	/* this process is alive, but not under another start time (a reused pid) */
	assert_int_equal(kiln_train_pid_start(getpid(), &me), 0);
	assert_true(kiln_train_alive(getpid(), me));
	assert_false(kiln_train_alive(getpid(), me + 1));
	{
		FILE *f = fopen(log, "r");
		char line[64] = "";
		assert_non_null(f);
		assert_non_null(fgets(line, sizeof line, f));
		fclose(f);
		assert_string_equal(line, "trained\n");
	}
	unlink(log);
	unlink(ex);
	rmdir(dir);
}

static void test_metadata_check(void **state)
{
	struct kiln_train_dir d[2] = {{"0", 4, 3}, {"1", 3, 2}};
	struct kiln_train_expect x = {d, 2, "sdxl_base_v1-0", "base.safetensors", 1, 1, 7, 60};
	struct kiln_error e;
	char meta[1024];
	const char *fmt = "{\"ss_base_model_version\": \"%s\", \"ss_dataset_dirs\": \"%s\", "
			  "\"ss_num_train_images\": \"%s\", \"ss_sd_model_name\": "
			  "\"base.safetensors\", \"ss_seed\": \"7\", \"ss_steps\": \"%s\"}";
	const char *dirs = "{\\\"0\\\": {\\\"n_repeats\\\": 3, \\\"img_count\\\": 4}, "
			   "\\\"1\\\": {\\\"n_repeats\\\": 2, \\\"img_count\\\": 3}}";
	(void)state;
	snprintf(meta, sizeof meta, fmt, "sdxl_base_v1-0", dirs, "18", "60");
	kiln_error_clear(&e);
	assert_int_equal(kiln_train_check_metadata(meta, &x, "f", &e), 0);
	snprintf(meta, sizeof meta, fmt, "sdxl_base_v1-0", dirs, "17", "60");
	assert_int_equal(kiln_train_check_metadata(meta, &x, "f", &e), KILN_E_FAILED);
	assert_non_null(strstr(e.msg, "ss_num_train_images is 17 in the trained file but 18"));
	snprintf(meta, sizeof meta, fmt, "sd_v1", dirs, "18", "60");
	assert_int_equal(kiln_train_check_metadata(meta, &x, "f", &e), KILN_E_FAILED);
	assert_non_null(strstr(e.msg, "ss_base_model_version is sd_v1"));
	snprintf(meta, sizeof meta, fmt, "sdxl_base_v1-0", dirs, "18", "59");
	assert_int_equal(kiln_train_check_metadata(meta, &x, "f", &e), KILN_E_FAILED);
	assert_non_null(strstr(e.msg, "ss_steps is 59"));
	snprintf(meta, sizeof meta, fmt, "sdxl_base_v1-0",
		 "{\\\"0\\\": {\\\"n_repeats\\\": 2, \\\"img_count\\\": 6}, "
		 "\\\"1\\\": {\\\"n_repeats\\\": 2, \\\"img_count\\\": 3}}", "18", "60");
	assert_int_equal(kiln_train_check_metadata(meta, &x, "f", &e), KILN_E_FAILED);
	assert_non_null(strstr(e.msg, "6 images x 2 repeats in the trained file but 4 images x "
				      "3 repeats"));
	assert_int_equal(kiln_train_check_metadata("{}", &x, "f", &e), KILN_E_FAILED);
	assert_int_equal(kiln_train_check_metadata(NULL, &x, "f", &e), KILN_E_FAILED);
}

static void put(const char *dir, const char *name, const char *text)
{
	char p[512];
	FILE *f;
	snprintf(p, sizeof p, "%s/%s", dir, name);
	assert_non_null(f = fopen(p, "w"));
	fputs(text, f);
	fclose(f);
}

/* pack: the same folder gives the same bytes (memory and file alike), names sorted, mtime 0,
 * uid/gid 0; the run's own files, hidden names and the skipped folder left out; a link
 * refused. */
static void test_pack(void **state)
{
	char dir[] = "/tmp/kiln-pack-XXXXXX", sub[600], path[600], sha[65];
	const char *want[] = {"t/", "t/a/", "t/a/x.png", "t/b.toml", "t/manifest.json"};
	struct kiln_buf one = KILN_BUF_INIT, two = KILN_BUF_INIT;
	struct kiln_error e;
	struct archive *a;
	struct archive_entry *en;
	uint64_t size;
	size_t n = 0;
	int fd;
	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(sub, sizeof sub, "%s/a", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	snprintf(sub, sizeof sub, "%s/output", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	put(dir, "manifest.json", "{}");
	put(dir, "b.toml", "[general]\n");
	put(dir, "a/x.png", "png");
	put(dir, "log", "trainer output");
	put(dir, "run.json", "{}");
	put(dir, ".dataset-1", "partial");
	put(dir, "output/last.safetensors", "lora");
	assert_int_equal(kiln_train_pack(dir, "t", "output", &one, &e), 0);
	assert_int_equal(kiln_train_pack(dir, "t", "output", &two, &e), 0);
	assert_int_equal(one.len, two.len);
	assert_memory_equal(one.data, two.data, one.len);
	assert_int_equal(one.len % 512, 0);
	snprintf(path, sizeof path, "%s/.pack", dir);
	assert_true((fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600)) >= 0);
	assert_int_equal(kiln_train_pack_fd(dir, "t", "output", fd, sha, &size, &e), 0);
	close(fd);
	assert_int_equal(size, one.len);
	assert_non_null(a = archive_read_new());
	archive_read_support_format_tar(a);
	assert_int_equal(archive_read_open_memory(a, one.data, one.len), ARCHIVE_OK);
	while (archive_read_next_header(a, &en) == ARCHIVE_OK) {
		assert_true(n < 5);
		assert_string_equal(archive_entry_pathname(en), want[n]);
		assert_int_equal(archive_entry_mtime(en), 0);
		assert_int_equal(archive_entry_uid(en), 0);
		assert_int_equal(archive_entry_gid(en), 0);
		n++;
	}
	assert_int_equal(n, 5);
	archive_read_free(a);
	/* a symbolic link is refused */
	snprintf(path, sizeof path, "%s/a/link", dir);
	assert_int_equal(symlink("/etc/passwd", path), 0);
	kiln_buf_reset(&one);
	assert_int_equal(kiln_train_pack(dir, "t", NULL, &one, &e), KILN_E_IO);
	assert_non_null(strstr(e.msg, "not a regular file"));
	kiln_buf_release(&one);
	kiln_buf_release(&two);
	snprintf(path, sizeof path, "rm -rf '%s'", dir);
	assert_int_equal(system(path), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_progress_lines),
		cmocka_unit_test(test_progress_feed),
		cmocka_unit_test(test_state_file),
		cmocka_unit_test(test_process),
		cmocka_unit_test(test_metadata_check),
		cmocka_unit_test(test_pack),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
