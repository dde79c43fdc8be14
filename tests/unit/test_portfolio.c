/* portfolio: the log appends each catalog fact once, as canonical JSON chained by SHA-256, with
 * prompts committed to by hash; its checkpoint is a C2SP signed note that openssl pkeyutl
 * verifies and that fails once any byte of it changes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "kiln/catalog.h"
#include "kiln/portfolio.h"
#include "util/alloc.h"
#include "util/base64.h"
#include "util/merkle.h"
#include "util/sha.h"

static char dir[64];

static int setup(void **state)
{
	struct kiln_error e;
	char k[128];
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/kiln-portfolio-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(k, sizeof k, "%s/keys", dir);
	assert_int_equal(kiln_keys_init(k, "example.com/owls", &e), 0);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd);
}

static void render(struct kiln_catalog *c, uint64_t item, const char *image, const char *req)
{
	struct kiln_render_record r;
	struct kiln_error e;
	memset(&r, 0, sizeof r);
	r.item_id = item;
	r.engine = "a1111";
	r.endpoint = "http://gpu-1:7860";
	r.recipe = "ab";
	r.seed = 42;
	r.request_json = req;
	r.ok = 1;
	r.image = image;
	r.bytes = 10;
	r.started = 1.7e9;
	r.finished = 1.7e9 + 3;
	assert_int_equal(kiln_catalog_record_renders(c, &r, 1, &e), 0);
}

static void test_log_chain(void **state)
{
	struct kiln_catalog *c;
	struct kiln_error e;
	struct kiln_plog log;
	char path[128], prev[65];
	int added;
	(void)state;
	snprintf(path, sizeof path, "%s/catalog.db", dir);
	assert_int_equal(kiln_catalog_open(&c, path, &e), 0);
	assert_int_equal(kiln_catalog_registry_add(c, "models", "aa", "owl", "lora",
						   "{\"name\":\"owl\"}", &added, &e), 0);
	render(c, 1, "11", "{\"prompt\":\"an owl, gold crown\",\"negative_prompt\":\"blurry\","
	       "\"seed\":42,\"alwayson_scripts\":{\"controlnet\":{\"args\":[{\"image\":"
	       "\"sha256:00\"}]}}}");
	render(c, 2, "22", NULL);
	assert_int_equal(kiln_catalog_event(c, "qa", 0, 0, "{\"ok\":true}", &e), 0);
	assert_int_equal(kiln_portfolio_log_sync(c, "{\"provenance_hash\":\"x\"}", &e), 0);
	assert_int_equal(kiln_portfolio_log_load(c, &log, &e), 0);
	/* model, two renders, the qa event (render events are not facts twice), release */
	assert_int_equal(log.n, 5);
	memcpy(prev, KILN_LOG_ZERO, 65);
	for (size_t i = 0; i < log.n; i++) {
		json_t *j = json_loads(log.lines[i], 0, NULL);
		char *again = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
		assert_string_equal(again, log.lines[i]); /* canonical */
		assert_string_equal(json_string_value(json_object_get(j, "prev")), prev);
		assert_int_equal(json_integer_value(json_object_get(j, "seq")), i);
		kiln_sha256_hex(log.lines[i], strlen(log.lines[i]), prev);
		free(again);
		json_decref(j);
	}
	assert_non_null(strstr(log.lines[0], "\"kind\":\"model.registered\""));
	assert_non_null(strstr(log.lines[3], "\"kind\":\"qa.gate\""));
	assert_non_null(strstr(log.lines[4], "\"kind\":\"release\""));
	/* no prompt text in the log, its commitment instead */
	{
		char h[72];
		assert_null(strstr(log.lines[1], "gold crown"));
		assert_null(strstr(log.lines[1], "blurry"));
		kiln_prompt_hash("an owl, gold crown", h);
		assert_non_null(strstr(log.lines[1], h));
		assert_non_null(strstr(log.lines[1], "sha256:00")); /* a control image's hash */
	}
	kiln_plog_release(&log);
	/* again: nothing new, the same release is not logged twice */
	assert_int_equal(kiln_portfolio_log_sync(c, "{\"provenance_hash\":\"x\"}", &e), 0);
	assert_int_equal(kiln_portfolio_log_load(c, &log, &e), 0);
	assert_int_equal(log.n, 5);
	kiln_plog_release(&log);
	render(c, 1, "33", NULL);
	assert_int_equal(kiln_portfolio_log_sync(c, "{\"provenance_hash\":\"y\"}", &e), 0);
	assert_int_equal(kiln_portfolio_log_load(c, &log, &e), 0);
	assert_int_equal(log.n, 7);
	kiln_plog_release(&log);
	kiln_catalog_free(c);
}

static void test_checkpoint(void **state)
{
	struct kiln_keys k;
	struct kiln_error e;
	struct kiln_buf note = KILN_BUF_INIT, b = KILN_BUF_INIT;
	uint8_t root[32], r2[32];
	uint64_t size;
	char kd[128], origin[200], why[200], cmd[1024];
	(void)state;
	snprintf(kd, sizeof kd, "%s/keys", dir);
	assert_int_equal(kiln_keys_load(kd, 1, &k, &e), 0);
	for (int i = 0; i < 32; i++)
		root[i] = (uint8_t)(i * 9);
	assert_int_equal(kiln_checkpoint_sign(&k, "example.com/owls/Pixel-Owls", 12, root, &note,
					      &e), 0);
	assert_int_equal(kiln_checkpoint_verify(note.data, note.len, k.studio, k.pub, origin,
						sizeof origin, &size, r2, why, sizeof why), 0);
	assert_int_equal(size, 12);
	assert_memory_equal(r2, root, 32);
	assert_string_equal(origin, "example.com/owls/Pixel-Owls");
	/* openssl checks the body with the public key */
	{
		const char *sep = strstr(note.data, "\n\n");
		const char *sig = strstr(note.data, "\xe2\x80\x94 example.com/owls ") + 21;
		FILE *f;
		char p[200];
		assert_int_equal(kiln_base64_decode(sig, strcspn(sig, "\n"), &b), 0);
		assert_int_equal(b.len, 68);
		snprintf(p, sizeof p, "%s/body", dir);
		f = fopen(p, "wb");
		fwrite(note.data, 1, (size_t)(sep - note.data) + 1, f);
		fclose(f);
		snprintf(p, sizeof p, "%s/sig", dir);
		f = fopen(p, "wb");
		fwrite(b.data + 4, 1, 64, f);
		fclose(f);
		snprintf(cmd, sizeof cmd, "openssl pkeyutl -verify -rawin -pubin -inkey "
			 "%s/signing-ed25519.pub -in %s/body -sigfile %s/sig >/dev/null 2>&1", kd,
			 dir, dir);
		assert_int_equal(system(cmd), 0);
		/* a forged size fails openssl too */
		snprintf(cmd, sizeof cmd, "sed -i 's/^12$/13/' %s/body && openssl pkeyutl -verify "
			 "-rawin -pubin -inkey %s/signing-ed25519.pub -in %s/body -sigfile %s/sig "
			 ">/dev/null 2>&1", dir, kd, dir, dir);
		assert_int_not_equal(system(cmd), 0);
	}
	/* every single byte changed in the body or signature is caught */
	for (size_t i = 0; i < note.len - 1; i++) {
		char *t = malloc(note.len);
		memcpy(t, note.data, note.len);
		t[i] ^= 0x01;
		assert_int_not_equal(kiln_checkpoint_verify(t, note.len, k.studio, k.pub, origin,
							    sizeof origin, &size, r2, why,
							    sizeof why), 0);
		free(t);
	}
	/* base64 is canonical: non-zero bits before '=' are refused (else a flipped last
	 * character of a signature line could decode to the same bytes) */
	kiln_buf_reset(&b);
	assert_int_equal(kiln_base64_decode("QQ==", 4, &b), 0);
	assert_int_equal(kiln_base64_decode("QR==", 4, &b), -1);
	assert_int_equal(kiln_base64_decode("QUI=", 4, &b), 0);
	assert_int_equal(kiln_base64_decode("QUJ=", 4, &b), -1);
	assert_int_equal(kiln_base64_decode("QUJD", 4, &b), 0);
	kiln_buf_release(&b);
	kiln_buf_release(&note);
	kiln_keys_release(&k);
}

/* kiln_portfolio_write with allocation N failing, N = 0, 1, ... until a run completes: each run
 * returns 0 or KILN_E_NOMEM, and a normal run after it writes the whole folder */
static void test_write_nomem(void **state)
{
	struct kiln_catalog *c;
	struct kiln_error e;
	struct kiln_portfolio_token t[2];
	struct kiln_portfolio_in in;
	char path[160], keys[128], dist[128], check[200];
	long n;
	(void)state;
	snprintf(path, sizeof path, "%s/oom.db", dir);
	snprintf(keys, sizeof keys, "%s/keys", dir);
	snprintf(dist, sizeof dist, "%s/dist", dir);
	assert_int_equal(mkdir(dist, 0700), 0);
	assert_int_equal(kiln_catalog_open(&c, path, &e), 0);
	render(c, 1, "aa", "{\"prompt\":\"an owl\"}");
	render(c, 2, "bb", NULL);
	memset(t, 0, sizeof t);
	t[0] = (struct kiln_portfolio_token){1, "{\"Body\":\"Gold\"}", "aa", "images/1.png",
					     "11", NULL, NULL, NULL, -1};
	t[1] = (struct kiln_portfolio_token){2, "{\"Body\":\"Red\"}", "bb", "images/2.png",
					     "22", NULL, NULL, NULL, -1};
	memset(&in, 0, sizeof in);
	in.catalog = c;
	in.keys_dir = keys;
	in.dist = dist;
	in.name = "Owls <&>";
	in.engine = "a1111";
	in.provenance_hash = "ph";
	in.tokens = t;
	in.ntokens = 2;
	for (n = 0;; n++) {
		int rc;
		long failed;
		kiln_alloc_fail_after(n);
		rc = kiln_portfolio_write(&in, &e);
		failed = kiln_alloc_failed();
		kiln_alloc_fail_after(-1);
		if (rc && rc != KILN_E_NOMEM)
			fail_msg("allocation %ld failing: %s: %s: %s", n, kiln_error_name(rc),
				 e.where, e.msg);
		if (!failed) {
			assert_int_equal(rc, 0);
			break;
		}
	}
	assert_true(n > 10);
	assert_int_equal(kiln_portfolio_write(&in, &e), 0);
	snprintf(check, sizeof check, "%s/portfolio/attestations/2.sigstore.json", dist);
	assert_int_equal(access(check, F_OK), 0);
	snprintf(check, sizeof check, "%s/portfolio/index.html", dist);
	assert_int_equal(access(check, F_OK), 0);
	kiln_catalog_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log_chain),
		cmocka_unit_test(test_checkpoint),
		cmocka_unit_test(test_write_nomem),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
