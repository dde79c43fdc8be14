/* train prepare's pure parts: kohya's bucket list and bucket choice (model_util.py
 * make_bucket_resolutions, train_util.py select_bucket at sd-scripts 48d368fa), caption
 * templates, the manifest's JSON round trip and the reader's refusals, the trainer inputs
 * derived from a manifest (TOML quoting, argv flags). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "kiln/train.h"

static int has(const struct kiln_bucket *v, size_t n, int w, int h)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].w == w && v[i].h == h)
			return 1;
	return 0;
}

static void test_buckets(void **state)
{
	struct kiln_bucket *v = NULL, b;
	size_t n = 0;
	int rw, rh;
	(void)state;
	/* SDXL's usual settings: 1024², 256..2048 step 64 */
	assert_int_equal(kiln_train_buckets(1024, 1024, 256, 2048, 64, &v, &n), 0);
	assert_int_equal(n, 41); /* as sd-scripts computes it */
	assert_true(has(v, n, 1024, 1024));
	assert_true(has(v, n, 832, 1216) && has(v, n, 1216, 832));
	assert_true(has(v, n, 256, 2048) && has(v, n, 2048, 256));
	assert_true(has(v, n, 1344, 768));
	assert_false(has(v, n, 1024, 1088)); /* over the area: never */
	for (size_t i = 0; i < n; i++) {
		assert_true(v[i].w % 64 == 0 && v[i].h % 64 == 0);
		assert_true((long)v[i].w * v[i].h <= 1024L * 1024);
		assert_true(i == 0 || v[i - 1].w < v[i].w ||
			    (v[i - 1].w == v[i].w && v[i - 1].h < v[i].h)); /* sorted, distinct */
	}
	/* a bucket of the same size is kept as it is */
	kiln_train_select_bucket(v, n, 832, 1216, &b, &rw, &rh);
	assert_int_equal(b.w, 832);
	assert_int_equal(b.h, 1216);
	assert_int_equal(rw, 832);
	assert_int_equal(rh, 1216);
	/* 1920x1080: the nearest ratio is 1344x768 (1.75), the height fits, the width is cut */
	kiln_train_select_bucket(v, n, 1920, 1080, &b, &rw, &rh);
	assert_int_equal(b.w, 1344);
	assert_int_equal(b.h, 768);
	assert_int_equal(rw, 1365);
	assert_int_equal(rh, 768);
	/* a square photo larger than the bucket: scaled down whole */
	kiln_train_select_bucket(v, n, 2048, 2048, &b, &rw, &rh);
	assert_int_equal(b.w, 1024);
	assert_int_equal(rw, 1024);
	assert_int_equal(rh, 1024);
	free(v);
	/* 256², 128..512 step 64: a 2:1 image goes to 320x192, resized to 384x192 first */
	assert_int_equal(kiln_train_buckets(256, 256, 128, 512, 64, &v, &n), 0);
	assert_int_equal(n, 9);
	kiln_train_select_bucket(v, n, 200, 100, &b, &rw, &rh);
	assert_int_equal(b.w, 320);
	assert_int_equal(b.h, 192);
	assert_int_equal(rw, 384);
	assert_int_equal(rh, 192);
	free(v);
	assert_int_equal(kiln_train_buckets(256, 256, 512, 128, 64, &v, &n), -1);
}

static void test_captions(void **state)
{
	char *c;
	(void)state;
	c = kiln_train_caption("{class_tokens}, {name}", "blue_owl-2", "pixel owl", "owls");
	assert_string_equal(c, "pixel owl, blue owl 2");
	free(c);
	c = kiln_train_caption("{stem} in {dataset}", "blue_owl-2", NULL, "owls");
	assert_string_equal(c, "blue_owl-2 in owls");
	free(c);
	c = kiln_train_caption("{class_tokens}{x} {", "a", NULL, NULL);
	assert_string_equal(c, "{x} {");
	free(c);
}

static struct kiln_train_manifest *sample(void)
{
	struct kiln_train_manifest *m = calloc(1, sizeof *m);
	m->version = KILN_TRAIN_MANIFEST_VERSION;
	m->name = strdup("owl");
	m->trainer = strdup("kohya");
	m->arch = strdup("sdxl");
	m->base = strdup("base.safetensors");
	m->width = m->height = 1024;
	m->bucket_enable = 1;
	m->bucket_min = 256;
	m->bucket_max = 2048;
	m->bucket_step = 64;
	m->network_dim = 16;
	m->network_alpha = 8;
	m->unet_lr = 1e-4;
	m->text_encoder_lr = 0;
	m->steps = 100;
	m->seed = 3;
	m->batch_size = 2;
	m->ndatasets = 1;
	m->datasets = calloc(1, sizeof *m->datasets);
	m->datasets[0].dir = strdup("data/owls");
	m->datasets[0].image_dir = strdup(".kiln/train/owl/images/0");
	m->datasets[0].class_tokens = strdup("pixel \"owl\"\\");
	m->datasets[0].caption_extension = strdup(".caption");
	m->datasets[0].repeats = 4;
	m->datasets[0].images = 1;
	m->nimages = 1;
	m->images = calloc(1, sizeof *m->images);
	m->images[0].source = strdup("data/owls/a.png");
	m->images[0].file = strdup(".kiln/train/owl/images/0/a.png");
	m->images[0].caption = strdup("an owl");
	m->images[0].caption_from = strdup("file");
	memset(m->images[0].sha256_source, 'a', 64);
	memset(m->images[0].sha256, 'b', 64);
	m->images[0].phash = 0x0123456789abcdefULL;
	m->images[0].has_phash = 1;
	m->images[0].src_width = 2000;
	m->images[0].src_height = 1000;
	m->images[0].crop_x = 10;
	m->images[0].crop_w = 1980;
	m->images[0].crop_h = 1000;
	m->images[0].width = 1408;
	m->images[0].height = 704;
	return m;
}

static char *tmpfile_with(const char *text)
{
	static char path[64];
	int fd;
	snprintf(path, sizeof path, "/tmp/kiln-manifest-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void test_manifest_round_trip(void **state)
{
	struct kiln_train_manifest *m = sample(), *back = NULL;
	struct kiln_error e;
	char *json = kiln_train_manifest_json(m), *path, *text;
	(void)state;
	assert_non_null(json);
	path = tmpfile_with(json);
	kiln_error_clear(&e);
	assert_int_equal(kiln_train_manifest_load(path, &back, &e), 0);
	unlink(path);
	assert_string_equal(back->datasets[0].class_tokens, "pixel \"owl\"\\");
	assert_true(back->images[0].phash == 0x0123456789abcdefULL);
	assert_int_equal(back->images[0].width, 1408);
	assert_int_equal(back->images[0].crop_w, 1980);
	assert_int_equal(back->steps, 100);
	assert_int_equal(back->epochs, 0);
	assert_null(back->command);
	assert_true(back->network_alpha == 8 && back->unet_lr == 1e-4);
	assert_int_equal(strlen(back->sha256), 64);
	assert_int_equal(kiln_train_manifest_steps_images(back), 4);
	/* the same manifest writes the same bytes */
	text = kiln_train_manifest_json(back);
	assert_string_equal(text, json);
	free(text);
	/* the TOML: quoted as TOML reads it, image_dir relative to the training folder */
	assert_int_equal(kiln_train_input(back, "dataset.toml", &text), 0);
	assert_non_null(strstr(text, "image_dir = \"images/0\"\n"));
	assert_non_null(strstr(text, "class_tokens = \"pixel \\\"owl\\\"\\\\\"\n"));
	assert_non_null(strstr(text, "caption_extension = \".caption\"\n"));
	assert_non_null(strstr(text, "num_repeats = 4\n"));
	assert_non_null(strstr(text, "resolution = [1024, 1024]\nbatch_size = 2\n"));
	free(text);
	/* no text encoder rate: the U-Net only */
	assert_int_equal(kiln_train_input(back, "command.json", &text), 0);
	assert_non_null(strstr(text, "\"--network_train_unet_only\""));
	assert_null(strstr(text, "--text_encoder_lr"));
	assert_non_null(strstr(text, "\"--network_alpha\",\n    \"8.0\""));
	free(text);
	assert_int_equal(kiln_train_input(back, "config.yaml", &text), 0);
	assert_null(text); /* kohya has no ai-toolkit file */
	free(json);
	kiln_train_manifest_free(back);
	kiln_train_manifest_free(m);
}

/* each edit of a good manifest is refused, naming the field */
static void test_manifest_refused(void **state)
{
	static const struct {
		const char *from, *to, *says;
	} cases[] = {
		{"\"version\": 1", "\"version\": 2", "version 2"},
		{"\"sha256\": \"bbbb", "\"sha256\": \"Bbbb", "64 lowercase hex"},
		{"\"dataset\": 0", "\"dataset\": 1", "dataset must be"},
		{"\"steps\": 100", "\"steps\": 100, \"steps\": 7", "duplicate"},
		{"\"epochs\": null", "\"epochs\": 4", "steps and epochs"},
		{"\"bucket\": [\n", "\"bucket\": [\n 1,\n", "bucket must be"},
		{"\"phash\": \"0123456789abcdef\"", "\"phash\": 5", "phash must be"},
		{"\"caption\": \"an owl\"", "\"caption\": null", "caption must be"},
	};
	struct kiln_train_manifest *m = sample();
	char *json = kiln_train_manifest_json(m);
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct kiln_train_manifest *back = NULL;
		struct kiln_error e;
		char *at = strstr(json, cases[i].from), *edit, *path;
		size_t lf = strlen(cases[i].from), lt = strlen(cases[i].to);
		assert_non_null(at);
		edit = calloc(1, strlen(json) + lt + 1);
		memcpy(edit, json, (size_t)(at - json));
		strcat(edit, cases[i].to);
		strcat(edit, at + lf);
		path = tmpfile_with(edit);
		kiln_error_clear(&e);
		assert_int_equal(kiln_train_manifest_load(path, &back, &e), KILN_E_IO);
		assert_null(back);
		if (!strstr(e.msg, cases[i].says))
			fail_msg("case %zu: '%s' lacks '%s'", i, e.msg, cases[i].says);
		unlink(path);
		free(edit);
	}
	free(json);
	kiln_train_manifest_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buckets),
		cmocka_unit_test(test_captions),
		cmocka_unit_test(test_manifest_round_trip),
		cmocka_unit_test(test_manifest_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
