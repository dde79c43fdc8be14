/* Allocation failure injected into whole pipeline stages (as curl's torture tests, SQLite's
 * faultsim): plan, render, QA, release and train prepare of a small project (a 2-layer compose spec, 6 tokens,
 * 8x8 PNG layers drawn here with libpng), each run again and again with allocation N failing,
 * N = 0, 1, 2, ... until a run completes without reaching N. Every run must return 0 or
 * KILN_E_NOMEM (never crash; the sanitizer build checks leaks), and the same stage run again
 * normally afterwards must succeed and leave the project exactly as a clean run does (the
 * catalog's items, their images, dist/'s manifest, the QA findings).
 *
 * Each run starts from a copy of a template folder holding the state the stage needs (planned,
 * rendered, released). The first FULL allocations of a stage are all tried; beyond them N grows
 * by a stride (a 50th of N), which keeps the whole program within a minute in the plain build.
 * KILN_OOM_FULL=1 in the environment tries every N; KILN_VALGRIND=1 (tests/valgrind.sh) every
 * 13th.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kiln/buf.h"
#include "kiln/project.h"
#include "kiln/qa.h"
#include "kiln/render.h"
#include "kiln/polish.h"
#include "kiln/train.h"
#include "util/alloc.h"

#define FULL 400    /* every N below this is tried */

static char root[64]; /* the scratch folder of this program */

static const char spec_yaml[] =
	"collection: {name: Oom, symbol: OOM, size: 6, seed: 11}\n"
	"image: {width: 8, height: 8, format: png}\n"
	"layers:\n"
	"  - name: Body\n"
	"    traits:\n"
	"      - {name: Plain, weight: 1, file: layers/Body/plain.png}\n"
	"      - {name: Gold, weight: 1, file: layers/Body/gold.png}\n"
	"  - name: Hat\n"
	"    optional: {weight: 1}\n"
	"    traits:\n"
	"      - {name: Cap, weight: 1, file: layers/Hat/cap.png}\n"
	"      - {name: Crown, weight: 1, file: layers/Hat/crown.png}\n"
	"polish: [{upscale: {factor: 2, method: nearest}}, {vectorize: {mode: pixels}}]\n"
	"training:\n"
	"  - name: t\n"
	"    base: sd_xl_base_1.0.safetensors\n"
	"    trainer: kohya\n"
	"    datasets:\n"
	"      - {dir: data, class_tokens: oom, license: CC0-1.0}\n"
	"      - {dir: \"tokens:approved\", class_tokens: oom}\n"
	"    resolution: 64\n"
	"    buckets: {min: 64, max: 128, step: 64}\n"
	"    steps: 10\n"
	"    local: {command: [\"true\"]}\n";

/* rm -rf and cp -a in the process: a thousand runs each spawning two shells took half the
 * program's time */
static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void rm_tree(const char *dir)
{
	struct stat st;
	if (lstat(dir, &st) == 0 && nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
		fail_msg("cannot remove %s", dir);
}

static void copy_tree(const char *from, const char *to)
{
	DIR *d = opendir(from);
	struct dirent *de;
	if (!d || mkdir(to, 0755) != 0)
		fail_msg("cannot copy %s to %s", from, to);
	while ((de = readdir(d))) {
		char a[1024], b[1024], buf[65536];
		struct stat st;
		ssize_t n;
		int in, out = -1;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(a, sizeof a, "%s/%s", from, de->d_name);
		snprintf(b, sizeof b, "%s/%s", to, de->d_name);
		if (lstat(a, &st) != 0)
			fail_msg("cannot stat %s", a);
		if (S_ISDIR(st.st_mode)) {
			copy_tree(a, b);
			continue;
		}
		if ((in = open(a, O_RDONLY)) < 0 || (out = open(b, O_WRONLY | O_CREAT, 0644)) < 0)
			fail_msg("cannot copy %s", a);
		while ((n = read(in, buf, sizeof buf)) > 0)
			if (write(out, buf, (size_t)n) != n)
				fail_msg("cannot write %s", b);
		close(in);
		close(out);
	}
	closedir(d);
}

/* An 8x8 RGBA layer: opaque colour (r,g,b) where mask(x,y), transparent elsewhere. */
static void draw(const char *dir, const char *name, int r, int g, int b, int kind)
{
	png_image im;
	uint8_t px[8 * 8 * 4];
	char path[512];
	for (int y = 0; y < 8; y++)
		for (int x = 0; x < 8; x++) {
			uint8_t *p = px + (y * 8 + x) * 4;
			int on = kind == 0 ? 1 : kind == 1 ? (y >= 3) : (y < 3 && x > 1 && x < 6);
			p[0] = (uint8_t)r;
			p[1] = (uint8_t)g;
			p[2] = (uint8_t)b;
			p[3] = on ? 255 : 0;
		}
	memset(&im, 0, sizeof im);
	im.version = PNG_IMAGE_VERSION;
	im.width = 8;
	im.height = 8;
	im.format = PNG_FORMAT_RGBA;
	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (!png_image_write_to_file(&im, path, 0, px, 0, NULL))
		fail_msg("cannot write %s: %s", path, im.message);
}

static void make_project(const char *dir)
{
	char p[512];
	FILE *f;
	snprintf(p, sizeof p, "%s/layers", dir);
	assert_int_equal(mkdir(dir, 0755) | mkdir(p, 0755), 0);
	snprintf(p, sizeof p, "%s/layers/Body", dir);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof p, "%s/layers/Hat", dir);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof p, "%s/kiln.yaml", dir);
	assert_non_null(f = fopen(p, "w"));
	fputs(spec_yaml, f);
	fclose(f);
	snprintf(p, sizeof p, "%s/layers", dir);
	draw(p, "Body/plain.png", 90, 60, 30, 0);
	draw(p, "Body/gold.png", 220, 180, 40, 0);
	draw(p, "Hat/cap.png", 20, 40, 200, 2);
	draw(p, "Hat/crown.png", 250, 220, 0, 2);
	/* the training's dataset: two images, an exact copy, a caption file, a token's layer */
	snprintf(p, sizeof p, "%s/data", dir);
	assert_int_equal(mkdir(p, 0755), 0);
	draw(p, "a.png", 90, 60, 30, 1);
	draw(p, "b.png", 20, 40, 200, 2);
	draw(p, "copy_of_a.png", 90, 60, 30, 1);
	snprintf(p, sizeof p, "%s/data/b.txt", dir);
	assert_non_null(f = fopen(p, "w"));
	fputs("oom, a blue hat\n", f);
	fclose(f);
}

static struct kiln_project *open_project(const char *dir)
{
	struct kiln_project *p = NULL;
	struct kiln_error e;
	if (kiln_project_open(&p, dir, KILN_OPEN_WRITE, "test", &e))
		fail_msg("open %s: %s: %s", dir, e.where, e.msg);
	return p;
}

/* --- the stages, each run on an open project ---------------------------------------------- */

static int do_plan(struct kiln_project *p, struct kiln_error *e)
{
	struct kiln_project_plan_opts o = {0};
	struct kiln_plan_result r;
	int rc;
	memset(&r, 0, sizeof r);
	rc = kiln_project_plan(p, &o, &r, e);
	kiln_plan_result_release(&r);
	return rc;
}

static int do_render(struct kiln_project *p, struct kiln_error *e)
{
	struct kiln_render_opts o = {0};
	struct kiln_render_result r;
	int rc;
	o.threads = 1;
	memset(&r, 0, sizeof r);
	rc = kiln_project_render(p, &o, &r, e);
	/* an item whose render failed (its image could not be made for want of memory) is
	 * recorded as failed: the stage itself reports it in r.failed, as `kiln render` does */
	return rc;
}

/* The polish stage: a token whose step could not be made for want of memory is reported
 * failed (r.failed), as `kiln polish` does; the run after makes it. */
static int do_polish(struct kiln_project *p, struct kiln_error *e)
{
	struct kiln_polish_opts o = {0};
	struct kiln_polish_result r;
	o.threads = 1;
	return kiln_project_polish(p, &o, &r, e);
}

static int do_release(struct kiln_project *p, struct kiln_error *e)
{
	struct kiln_release_opts o = {0};
	struct kiln_release_result r;
	memset(&r, 0, sizeof r);
	return kiln_project_release(p, &o, &r, e);
}

/* QA over dist/images (written by the template's release) and the project's collection
 * checks; the findings of the last run stay in qa_findings for snapshot().
 * The stage is kiln_project_qa(), which also records the verdicts in the catalog. */
static struct kiln_findings qa_findings = KILN_FINDINGS_INIT;

static int do_qa(struct kiln_project *p, struct kiln_error *e)
{
	struct kiln_qa_run_opts o;
	struct kiln_qa_result r;
	int rc;
	kiln_qa_run_opts_init(&o);
	o.threads = 1;
	memset(&r, 0, sizeof r);
	kiln_findings_release(&qa_findings);
	rc = kiln_project_qa(p, &o, &r, e);
	if (!rc) {
		/* keep the findings for snapshot(); the result gives them up */
		qa_findings = r.findings;
		memset(&r.findings, 0, sizeof r.findings);
	}
	kiln_qa_result_release(&r);
	return rc;
}

/* kiln train prepare of training t: its data/ folder (an exact copy left out, a caption
 * file, a missing one) and the approved tokens (none: the review has approved nothing) */
static int phash_pixels(const uint8_t *px, int w, int h, int bands, size_t stride,
			uint64_t *out, void *user, struct kiln_error *e)
{
	(void)user;
	return kiln_qa_phash_pixels(px, w, h, bands, stride, out, e);
}

static int do_train(struct kiln_project *p, struct kiln_error *e)
{
	struct kiln_train_prepare_opts o = {0};
	struct kiln_train_report r;
	int rc;
	o.name = "t";
	o.phash = phash_pixels;
	o.near_threshold = 4;
	o.jobs = 1;
	rc = kiln_train_prepare(p, &o, &r, e);
	kiln_train_report_release(&r);
	return rc;
}

/* --- what a run leaves: the catalog's items and dist/'s manifest --------------------------- */

static void snapshot(const char *dir, struct kiln_buf *out)
{
	struct kiln_project *p = open_project(dir);
	struct kiln_items it;
	struct kiln_error e;
	char path[600], line[1024];
	FILE *f;
	size_t n;
	kiln_buf_reset(out);
	memset(&it, 0, sizeof it);
	if (kiln_catalog_items(p->catalog, p->spec, &it, &e) ||
	    kiln_catalog_final_images(p->catalog, &it, &e))
		fail_msg("items: %s: %s", e.where, e.msg);
	for (size_t i = 0; i < it.n; i++) {
		const struct kiln_item *x = &it.v[i];
		int len = snprintf(line, sizeof line, "%llu %llu %s status=%d recipe=%s image=%s\n",
				   (unsigned long long)x->id, (unsigned long long)x->seed,
				   x->traits_json ? x->traits_json : "", (int)x->status, x->recipe,
				   x->image);
		assert_int_equal(kiln_buf_add(out, line, (size_t)len), 0);
	}
	kiln_items_release(&it);
	kiln_project_free(p);
	snprintf(path, sizeof path, "%s/dist/manifest.sha256", dir);
	if ((f = fopen(path, "rb"))) {
		while ((n = fread(line, 1, sizeof line, f)) > 0)
			assert_int_equal(kiln_buf_add(out, line, n), 0);
		fclose(f);
	}
	snprintf(path, sizeof path, "%s/.kiln/train/t/manifest.json", dir);
	if ((f = fopen(path, "rb"))) {
		while ((n = fread(line, 1, sizeof line, f)) > 0)
			assert_int_equal(kiln_buf_add(out, line, n), 0);
		fclose(f);
	}
	for (size_t i = 0; i < qa_findings.n; i++) {
		const struct kiln_finding *x = &qa_findings.v[i];
		int len = snprintf(line, sizeof line, "finding %s %d %s %s: %s\n", x->check,
				   x->severity, x->file ? x->file : "", x->path ? x->path : "",
				   x->message);
		assert_int_equal(kiln_buf_add(out, line, (size_t)len), 0);
	}
}

typedef int (*stage_fn)(struct kiln_project *p, struct kiln_error *e);

/* Run `stage` on a copy of template with allocation n failing; then again normally; the
 * project must end as `want`. Returns how many allocations the injected run failed (0: it
 * completed without reaching n). */
static long torture(const char *name, stage_fn stage, const char *template, long n,
		    const struct kiln_buf *want)
{
	char dir[256];
	struct kiln_project *p;
	struct kiln_error e;
	struct kiln_buf got = KILN_BUF_INIT;
	long failed;
	int rc;
	snprintf(dir, sizeof dir, "%s/run", root);
	rm_tree(dir);
	copy_tree(template, dir);
	p = open_project(dir);
	memset(&e, 0, sizeof e);
	kiln_alloc_fail_after(n);
	rc = stage(p, &e);
	failed = kiln_alloc_failed();
	kiln_alloc_fail_after(-1);
	if (rc && rc != KILN_E_NOMEM)
		fail_msg("%s, allocation %ld failing: got %s, not KILN_E_NOMEM: %s: %s", name, n,
			 kiln_error_name(rc), e.where, e.msg);
	if (!rc && !failed)
		kiln_project_free(p), p = NULL;
	else
		kiln_project_free(p), p = open_project(dir);
	if (p) {
		rc = stage(p, &e);
		if (rc)
			fail_msg("%s after allocation %ld failed: the next run fails: %s: %s: %s",
				 name, n, kiln_error_name(rc), e.where, e.msg);
		kiln_project_free(p);
	}
	snapshot(dir, &got);
	if (got.len != want->len || memcmp(got.data, want->data, got.len))
		fail_msg("%s after allocation %ld failed: the project differs from a clean run's:\n"
			 "--- clean\n%.*s--- after\n%.*s", name, n, (int)want->len, want->data,
			 (int)got.len, got.data);
	kiln_buf_release(&got);
	return failed;
}

/* Make template `to` from `from` by running `stage` cleanly; its snapshot in want. */
static void prepare(const char *from, const char *to, stage_fn stage, struct kiln_buf *want)
{
	struct kiln_project *p;
	struct kiln_error e;
	rm_tree(to);
	copy_tree(from, to);
	p = open_project(to);
	if (stage(p, &e))
		fail_msg("clean run: %s: %s: %s", kiln_error_name(e.code), e.where, e.msg);
	kiln_project_free(p);
	snapshot(to, want);
}

static void run_stage(const char *name, stage_fn stage, const char *before, const char *after)
{
	struct kiln_buf want = KILN_BUF_INIT;
	const char *full = getenv("KILN_OOM_FULL");
	long n, runs = 0;
	char from[256], to[256];
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	snprintf(from, sizeof from, "%s/%s", root, before);
	snprintf(to, sizeof to, "%s/%s", root, after);
	prepare(from, to, stage, &want);
	/* under valgrind (~50x slower) a sample: every 13th allocation */
	const char *vg = getenv("KILN_VALGRIND");
	long step = vg && *vg == '1' ? 13 : 1;
	for (n = 0;; runs++) {
		if (!torture(name, stage, from, n, &want))
			break;
		n += (full && *full == '1') || n < FULL ? step : n / 50;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	print_message("%s: %ld runs, the stage makes about %ld allocations (%.1f s)\n", name,
		      runs + 1, n, (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	kiln_buf_release(&want);
}

static void plan_stage(void **state)
{
	(void)state;
	run_stage("plan", do_plan, "base", "planned");
}

static void render_stage(void **state)
{
	(void)state;
	run_stage("render", do_render, "planned", "rendered");
}

static void polish_stage(void **state)
{
	(void)state;
	run_stage("polish", do_polish, "rendered", "polished");
}

static void release_stage(void **state)
{
	(void)state;
	run_stage("release", do_release, "polished", "released");
}

static void qa_stage(void **state)
{
	(void)state;
	run_stage("qa", do_qa, "released", "checked");
	kiln_findings_release(&qa_findings);
}

static void train_stage(void **state)
{
	(void)state;
	run_stage("train prepare", do_train, "checked", "trained");
}

static int setup(void **state)
{
	char base[128];
	(void)state;
	/* tmpfs when there is one: the stages fsync, and a thousand runs on a disk wait on it */
	snprintf(root, sizeof root, "/dev/shm/kiln-test-oom-XXXXXX");
	if (!mkdtemp(root)) {
		snprintf(root, sizeof root, "/tmp/kiln-test-oom-XXXXXX");
		if (!mkdtemp(root))
			return -1;
	}
	snprintf(base, sizeof base, "%s/base", root);
	make_project(base);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rm_tree(root);
	return 0;
}

int main(void)
{
	/* in order: each stage's template is the one before's result */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(plan_stage),
		cmocka_unit_test(render_stage),
		cmocka_unit_test(polish_stage),
		cmocka_unit_test(release_stage),
		cmocka_unit_test(qa_stage),
		cmocka_unit_test(train_stage),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
