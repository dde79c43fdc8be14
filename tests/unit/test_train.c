/* train: the safetensors reader refuses every hostile header (length past the file, over the
 * 100 MB cap, not JSON, duplicate keys, non-string metadata, offsets outside the data); the
 * model hashes are A1111's (file SHA-256, legacy window at 1 MiB, LoRA hash after the header,
 * sshs_model_hash checked); the RFC 6962 Merkle tree meets the CT reference vectors. */
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
#include "util/merkle.h"
#include "util/sha.h"

static size_t st_bytes(uint8_t *out, const char *json, uint64_t claim, size_t data)
{
	size_t n = strlen(json);
	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)(claim >> (8 * i));
	memcpy(out + 8, json, n);
	memset(out + 8 + n, 0xab, data);
	return 8 + n + data;
}

static int parse(const char *json, uint64_t claim, size_t data, struct kiln_error *e)
{
	static uint8_t buf[8192];
	struct kiln_safetensors st;
	size_t n = st_bytes(buf, json, claim, data);
	int rc = kiln_safetensors_parse(buf, n, n, "f.safetensors", &st, e);
	if (!rc)
		kiln_safetensors_release(&st);
	return rc;
}

static void test_hostile(void **state)
{
	struct kiln_error e;
	const char *ok = "{\"__metadata__\":{\"ss_network_dim\":\"8\"},\"lora_up.weight\":{\"dtype\":"
			 "\"F16\",\"shape\":[2,2],\"data_offsets\":[0,8]}}";
	size_t n = strlen(ok);
	(void)state;
	assert_int_equal(parse(ok, n, 8, &e), 0);
	/* the length claims more than the file has */
	assert_int_equal(parse(ok, n + 9, 8, &e), KILN_E_IO);
	assert_non_null(strstr(e.msg, "claims"));
	/* over the cap, even in a file that big */
	assert_int_equal(parse(ok, (uint64_t)200 << 20, 8, &e), KILN_E_IO);
	assert_non_null(strstr(e.msg, "100 MB"));
	/* huge (wrapping) lengths */
	assert_int_equal(parse(ok, UINT64_MAX, 8, &e), KILN_E_IO);
	assert_int_equal(parse(ok, UINT64_MAX - 7, 8, &e), KILN_E_IO);
	/* not JSON, not an object, duplicate keys */
	assert_int_equal(parse("{\"a\":", 5, 0, &e), KILN_E_IO);
	assert_non_null(strstr(e.msg, "not JSON"));
	assert_int_equal(parse("[1,2]", 5, 0, &e), KILN_E_IO);
	{
		const char *dup = "{\"__metadata__\":{\"a\":\"1\",\"a\":\"2\"}}";
		assert_int_equal(parse(dup, strlen(dup), 0, &e), KILN_E_IO);
	}
	/* metadata not a map of strings */
	{
		const char *m = "{\"__metadata__\":{\"ss_network_dim\":8}}";
		assert_int_equal(parse(m, strlen(m), 0, &e), KILN_E_IO);
		assert_non_null(strstr(e.msg, "ss_network_dim"));
		m = "{\"__metadata__\":[\"x\"]}";
		assert_int_equal(parse(m, strlen(m), 0, &e), KILN_E_IO);
	}
	/* offsets past the data, reversed, negative; a tensor without dtype */
	{
		const char *t[] = {
			"{\"w\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,9]}}",
			"{\"w\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[8,0]}}",
			"{\"w\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[-1,4]}}",
			"{\"w\":{\"shape\":[4],\"data_offsets\":[0,8]}}",
			"{\"w\":7}",
		};
		for (size_t i = 0; i < sizeof t / sizeof *t; i++)
			assert_int_equal(parse(t[i], strlen(t[i]), 8, &e), KILN_E_IO);
	}
	/* too short for the length */
	{
		uint8_t b[4] = {0};
		struct kiln_safetensors st;
		assert_int_equal(kiln_safetensors_parse(b, 4, 4, "f", &st, &e), KILN_E_IO);
	}
}

static void test_metadata_verbatim(void **state)
{
	static uint8_t buf[4096];
	const char *j = "{\"__metadata__\":{\"z\":\"1\",\"ss_tag_frequency\":\"{\\\"owl\\\": 3}\","
			"\"modelspec.title\":\"Owls \\u00e9\"}}";
	struct kiln_safetensors st;
	struct kiln_error e;
	size_t n = st_bytes(buf, j, strlen(j), 0);
	(void)state;
	assert_int_equal(kiln_safetensors_parse(buf, n, n, "f", &st, &e), 0);
	assert_string_equal(st.metadata_json, "{\"modelspec.title\":\"Owls \xc3\xa9\","
			    "\"ss_tag_frequency\":\"{\\\"owl\\\": 3}\",\"z\":\"1\"}");
	assert_int_equal(st.lora, 0);
	assert_int_equal(st.tensors, 0);
	kiln_safetensors_release(&st);
}

/* a model file on disk: hashes as A1111 computes them */
static void test_model_hashes(void **state)
{
	char dir[] = "/tmp/kiln-train-XXXXXX", path[128], hex[65], want[65];
	const char *hdr = "{\"lora_down.weight\":{\"dtype\":\"U8\",\"shape\":[1],"
			  "\"data_offsets\":[0,1]}}";
	size_t hl = strlen(hdr), data = 0x120000, total = 8 + hl + data;
	uint8_t *b = malloc(total);
	struct kiln_model m;
	struct kiln_error e;
	FILE *f;
	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/owl_v1.safetensors", dir);
	assert_non_null(b);
	st_bytes(b, hdr, hl, 0);
	for (size_t i = 8 + hl; i < total; i++)
		b[i] = (uint8_t)(i * 7);
	f = fopen(path, "wb");
	fwrite(b, 1, total, f);
	fclose(f);
	assert_int_equal(kiln_model_read(path, &m, &e), 0);
	kiln_sha256_hex(b, total, want);
	assert_string_equal(m.sha256, want);
	kiln_sha256_hex(b + 0x100000, 0x10000, hex);
	assert_memory_equal(m.legacy, hex, 8);
	kiln_sha256_hex(b + 8 + hl, data, hex);
	assert_string_equal(m.addnet, hex);
	assert_string_equal(m.name, "owl_v1");
	assert_int_equal(m.st.lora, 1);
	{
		char *rec = kiln_model_record(&m, "CC-BY-4.0", NULL, NULL, 0);
		char h10[40];
		assert_non_null(rec);
		snprintf(h10, sizeof h10, "\"model_hash\":\"%.10s\"", want);
		assert_non_null(strstr(rec, h10));
		assert_non_null(strstr(rec, "\"kind\":\"lora\""));
		free(rec);
	}
	kiln_model_release(&m);
	/* sshs_model_hash that disagrees: refused */
	{
		char h2[256];
		size_t l2;
		snprintf(h2, sizeof h2, "{\"__metadata__\":{\"sshs_model_hash\":\"%064d\"}}", 0);
		l2 = strlen(h2);
		uint8_t *c = malloc(8 + l2 + 16);
		st_bytes(c, h2, l2, 16);
		f = fopen(path, "wb");
		fwrite(c, 1, 8 + l2 + 16, f);
		fclose(f);
		assert_int_equal(kiln_model_read(path, &m, &e), KILN_E_IO);
		assert_non_null(strstr(e.msg, "sshs_model_hash"));
		/* ...and one that agrees is accepted */
		kiln_sha256_hex(c + 8 + l2, 16, hex);
		snprintf(h2, sizeof h2, "{\"__metadata__\":{\"sshs_model_hash\":\"%s\"}}", hex);
		assert_int_equal(strlen(h2), l2);
		st_bytes(c, h2, l2, 16);
		f = fopen(path, "wb");
		fwrite(c, 1, 8 + l2 + 16, f);
		fclose(f);
		assert_int_equal(kiln_model_read(path, &m, &e), 0);
		kiln_model_release(&m);
		free(c);
	}
	/* a small .ckpt: the legacy window is what the file has past 1 MiB (nothing) */
	snprintf(path, sizeof path, "%s/tiny.ckpt", dir);
	f = fopen(path, "wb");
	fwrite("abc", 1, 3, f);
	fclose(f);
	assert_int_equal(kiln_model_read(path, &m, &e), 0);
	kiln_sha256_hex("", 0, hex);
	assert_memory_equal(m.legacy, hex, 8);
	assert_string_equal(m.addnet, "");
	kiln_model_release(&m);
	free(b);
	snprintf(path, sizeof path, "rm -rf %s", dir);
	assert_int_equal(system(path), 0);
}

static void unhex(const char *h, uint8_t *out)
{
	for (size_t i = 0; h[2 * i]; i++)
		sscanf(h + 2 * i, "%2hhx", &out[i]);
}

/* RFC 6962 roots of the CT reference corpus, PATH(m, D[7]) of the RFC's worked example, and
 * every audit path of trees up to 70 leaves verifying (and failing once changed) */
static void test_merkle_vectors(void **state)
{
	static const char *const leaves[] = {"", "00", "10", "2021", "3031", "40414243",
					     "5051525354555657",
					     "606162636465666768696a6b6c6d6e6f"};
	static const char *const roots[] = {
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
		"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
		"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
		"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
		"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
		"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
		"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
		"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"};
	static const char *const path0_7[] = {
		"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
		"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
		"837dbb152e9b079010717e84e865da4ebc0fa198a806d59d31bf15accef22d0e"};
	uint8_t lh[70][32], root[32], want[32], path[64][32];
	char hex[65];
	size_t len;
	(void)state;
	for (size_t i = 0; i < 8; i++) {
		uint8_t d[16];
		size_t n = strlen(leaves[i]) / 2;
		unhex(leaves[i], d);
		kiln_merkle_leaf(d, n, lh[i]);
	}
	for (size_t n = 0; n <= 8; n++) {
		kiln_merkle_root((const uint8_t(*)[32])lh, n, root);
		kiln_hex(root, 32, hex);
		assert_string_equal(hex, roots[n]);
	}
	{
		struct kiln_merkle_tree t;
		assert_int_equal(kiln_merkle_tree_build(&t, (const uint8_t(*)[32])lh, 7), 0);
		kiln_merkle_tree_path(&t, 0, path, &len);
		assert_int_equal(len, 3);
		for (size_t i = 0; i < 3; i++) {
			kiln_hex(path[i], 32, hex);
			assert_string_equal(hex, path0_7[i]);
		}
		kiln_merkle_tree_release(&t);
	}
	for (size_t i = 8; i < 70; i++)
		kiln_merkle_leaf(&i, sizeof i, lh[i]);
	for (size_t n = 1; n <= 70; n++) {
		struct kiln_merkle_tree t;
		kiln_merkle_root((const uint8_t(*)[32])lh, n, root);
		assert_int_equal(kiln_merkle_tree_build(&t, (const uint8_t(*)[32])lh, n), 0);
		assert_memory_equal(t.lv[t.levels - 1][0], root, 32);
		for (size_t m = 0; m < n; m++) {
			kiln_merkle_tree_path(&t, m, path, &len);
			assert_true(kiln_merkle_verify(lh[m], m, n, (const uint8_t(*)[32])path, len,
						       root));
			assert_false(kiln_merkle_verify(lh[m], m + 1, n,
							(const uint8_t(*)[32])path, len, root));
			if (len) {
				path[0][5] ^= 1;
				assert_false(kiln_merkle_verify(lh[m], m, n,
								(const uint8_t(*)[32])path, len,
								root));
			}
		}
		kiln_merkle_tree_release(&t);
	}
	unhex(roots[8], want);
	(void)want;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_metadata_verbatim),
		cmocka_unit_test(test_model_hashes),
		cmocka_unit_test(test_merkle_vectors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
