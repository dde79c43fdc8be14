/* Unit tests for C2PA in PNG (lib/portfolio/c2pa.c, x509.c, jumbf.c): the chain's files and
 * modes; a signed PNG has one caBX chunk before the first IDAT and is otherwise the input byte
 * for byte; kiln's verify passes it and names the check each forgery fails (an IDAT byte, an
 * assertion byte, the signature, another root, a second manifest, a caBX after IDAT);
 * signing again replaces the manifest; bad inputs and missing keys are errors that say what;
 * allocation failures are KILN_E_NOMEM with the output untouched. c2pa-rs' own reading of
 * these files is tests/portfolio-c2pa/compare.sh. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <cmocka.h>

#include "kiln/portfolio.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/png.h"
#include "util/sha.h"

static char dir[64], keys[96], other[96], root[128], other_root[128];
static struct kiln_buf plain = KILN_BUF_INIT;

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Offset of the nth chunk of type t in png, or 0. */
static size_t find_chunk(const struct kiln_buf *b, const char *t, int nth)
{
	size_t off = 8;
	while (off + 12 <= b->len) {
		uint32_t n = be32((const uint8_t *)b->data + off);
		if (memcmp(b->data + off + 4, t, 4) == 0 && nth-- == 0)
			return off;
		off += (size_t)n + 12;
	}
	return 0;
}

static void fix_crc(struct kiln_buf *b, size_t off)
{
	uint32_t n = be32((const uint8_t *)b->data + off);
	uint32_t c = (uint32_t)crc32(0, (const Bytef *)b->data + off + 4, n + 4);
	uint8_t *p = (uint8_t *)b->data + off + 8 + n;
	p[0] = (uint8_t)(c >> 24);
	p[1] = (uint8_t)(c >> 16);
	p[2] = (uint8_t)(c >> 8);
	p[3] = (uint8_t)c;
}

static const struct kiln_c2pa_edit edits[] = {
	{ "repainted the left eye by hand", NULL, "2026-12-07T10:00:00Z" },
	{ "palette reduced to 32 colours", "kiln polish", NULL },
};

static struct kiln_c2pa_in input(void)
{
	struct kiln_c2pa_in in = { 0 };
	in.title = "Owl #17";
	in.format = "image/png";
	in.source_type = KILN_C2PA_COMPOSITE_TRAINED;
	in.edits = edits;
	in.n_edits = 2;
	in.token_id = 17;
	in.log_index = 230;
	in.log_entry_sha256 = "aa";
	in.log_root = "bb";
	in.log_size = 231;
	return in;
}

static int setup(void **state)
{
	struct kiln_error e;
	struct kiln_png_opts o = { 6, KILN_PNG_FILTER_PAETH, 0 };
	uint8_t px[24 * 16 * 4];
	for (size_t i = 0; i < sizeof px; i++)
		px[i] = (uint8_t)(i * 7 + (i >> 6));
	snprintf(dir, sizeof dir, "/tmp/kiln-c2pa-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(keys, sizeof keys, "%s/keys", dir);
	snprintf(other, sizeof other, "%s/other", dir);
	snprintf(root, sizeof root, "%s/" KILN_C2PA_ROOT_CERT, keys);
	snprintf(other_root, sizeof other_root, "%s/" KILN_C2PA_ROOT_CERT, other);
	assert_int_equal(mkdir(keys, 0700), 0);
	assert_int_equal(mkdir(other, 0700), 0);
	assert_int_equal(kiln_portfolio_x509_make(keys, "Owl Studio", &e), 0);
	assert_int_equal(kiln_portfolio_x509_make(other, "Someone Else", &e), 0);
	assert_int_equal(kiln_png_encode_rgba(px, 24, 16, 24 * 4, &o, NULL, &plain, &e), 0);
	(void)state;
	return 0;
}

static int teardown(void **state)
{
	struct kiln_error e;
	kiln_buf_release(&plain);
	if (kiln_fs_remove_tree(dir, &e))
		fprintf(stderr, "%s: %s\n", e.where, e.msg);
	(void)state;
	return 0;
}

static void sign(const struct kiln_buf *in, struct kiln_buf *out)
{
	struct kiln_error e;
	struct kiln_c2pa_in ci = input();
	int rc = kiln_portfolio_c2pa_sign_png(in->data, in->len, &ci, keys, out, &e);
	if (rc)
		fail_msg("sign: %s: %s", e.where, e.msg);
}

static void verify(const struct kiln_buf *b, const char *root_pem, struct kiln_c2pa_report *r)
{
	struct kiln_error e;
	assert_int_equal(kiln_portfolio_c2pa_verify_png(b->data, b->len, root_pem, r, &e), 0);
}

static void expect_failed(const struct kiln_buf *b, const char *root_pem, const char *check)
{
	struct kiln_c2pa_report r;
	verify(b, root_pem, &r);
	assert_false(r.ok);
	if (strcmp(r.check, check) != 0)
		fail_msg("want check %s, got %s: %s", check, r.check, r.detail);
}

static void test_chain_files(void **state)
{
	struct stat st;
	char p[160];
	struct kiln_error e;
	snprintf(p, sizeof p, "%s/" KILN_C2PA_LEAF_KEY, keys);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(p, sizeof p, "%s/" KILN_C2PA_LEAF_CERT, keys);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(stat(root, &st), 0);
	assert_int_equal(kiln_portfolio_x509_make(keys, "", &e), KILN_E_USAGE);
	/* never replaced: the key and the root stay what they were */
	{
		struct kiln_buf before = KILN_BUF_INIT, after = KILN_BUF_INIT;
		assert_int_equal(kiln_fs_read(root, &before, &e), 0);
		assert_int_equal(kiln_portfolio_x509_make(keys, "Owl Studio", &e), KILN_E_STATE);
		assert_non_null(strstr(e.where, KILN_C2PA_LEAF_KEY));
		assert_non_null(strstr(e.msg, "never replaced"));
		assert_int_equal(kiln_fs_read(root, &after, &e), 0);
		assert_int_equal(before.len, after.len);
		assert_memory_equal(before.data, after.data, before.len);
		kiln_buf_release(&before);
		kiln_buf_release(&after);
	}
	snprintf(p, sizeof p, "%s/none", dir);
	assert_int_equal(kiln_portfolio_x509_make(p, "Owl Studio", &e), KILN_E_IO);
	assert_string_equal(e.where, p);
	(void)state;
}

static void test_sign_verify(void **state)
{
	struct kiln_buf s = KILN_BUF_INIT, back = KILN_BUF_INIT;
	struct kiln_c2pa_report r;
	size_t cabx, idat, n;
	sign(&plain, &s);
	/* one caBX, just before the first IDAT; without it the file is the input */
	cabx = find_chunk(&s, "caBX", 0);
	idat = find_chunk(&s, "IDAT", 0);
	assert_true(cabx > 0);
	assert_int_equal(find_chunk(&s, "caBX", 1), 0);
	n = be32((const uint8_t *)s.data + cabx) + 12;
	assert_int_equal(cabx + n, idat);
	assert_int_equal(s.len, plain.len + n);
	assert_memory_equal(s.data, plain.data, cabx);
	assert_memory_equal(s.data + idat, plain.data + cabx, plain.len - cabx);
	verify(&s, root, &r);
	if (!r.ok)
		fail_msg("%s: %s", r.check, r.detail);
	assert_memory_equal(r.label, "urn:c2pa:", 9);
	assert_non_null(strstr(r.signer, "Owl Studio"));
	assert_non_null(strstr(r.provenance, "\"token_id\":17"));
	assert_non_null(strstr(r.provenance, "\"log_index\":230"));
	/* no root given: everything but the chain */
	verify(&s, NULL, &r);
	assert_true(r.ok);
	/* signing again replaces the manifest: one caBX, the same label, the same pixels */
	sign(&s, &back);
	assert_int_equal(find_chunk(&back, "caBX", 1), 0);
	verify(&back, root, &r);
	assert_true(r.ok);
	assert_int_equal(back.len, s.len);
	assert_memory_equal(back.data, s.data, cabx + 8 + 100); /* header, jumd, label */
	/* in place, as a release signs the image it holds */
	{
		struct kiln_c2pa_signer *sg;
		struct kiln_c2pa_in ci = input();
		struct kiln_error e;
		struct kiln_buf img = KILN_BUF_INIT;
		assert_int_equal(kiln_buf_add(&img, plain.data, plain.len), 0);
		assert_int_equal(kiln_portfolio_c2pa_signer_new(&sg, keys, &e), 0);
		assert_int_equal(kiln_portfolio_c2pa_sign_buf(sg, &img, &ci, &e), 0);
		assert_int_equal(img.len, s.len);
		verify(&img, root, &r);
		assert_true(r.ok);
		img.len = 3; /* not a PNG: an error, img unchanged */
		assert_int_equal(kiln_portfolio_c2pa_sign_buf(sg, &img, &ci, &e), KILN_E_IMAGE);
		assert_int_equal(img.len, 3);
		kiln_portfolio_c2pa_signer_free(sg);
		kiln_buf_release(&img);
	}
	kiln_buf_release(&s);
	kiln_buf_release(&back);
	(void)state;
}

static void test_forgeries(void **state)
{
	struct kiln_buf s = KILN_BUF_INIT, t = KILN_BUF_INIT;
	size_t cabx, idat, n;
	char *at;
	sign(&plain, &s);
	cabx = find_chunk(&s, "caBX", 0);
	idat = find_chunk(&s, "IDAT", 0);
	n = be32((const uint8_t *)s.data + cabx);

	/* one IDAT byte, CRC fixed: only the hard binding can tell */
	assert_int_equal(kiln_buf_add(&t, s.data, s.len), 0);
	t.data[idat + 8 + 3] ^= 1;
	fix_crc(&t, idat);
	expect_failed(&t, root, "hash.data");

	/* the same without fixing the CRC: not a well-formed PNG */
	t.len = 0;
	assert_int_equal(kiln_buf_add(&t, s.data, s.len), 0);
	t.data[idat + 8 + 3] ^= 1;
	expect_failed(&t, root, "png");

	/* a byte of the edit's description inside the manifest */
	t.len = 0;
	assert_int_equal(kiln_buf_add(&t, s.data, s.len), 0);
	at = memmem(t.data + cabx, n, "repainted", 9);
	assert_non_null(at);
	*at = 'R';
	fix_crc(&t, cabx);
	expect_failed(&t, root, "assertion");

	/* the claim's title: the assertions still match, the signature does not */
	t.len = 0;
	assert_int_equal(kiln_buf_add(&t, s.data, s.len), 0);
	at = memmem(t.data + cabx, n, "Owl #17", 7);
	assert_non_null(at);
	at[5] = '8';
	fix_crc(&t, cabx);
	expect_failed(&t, root, "signature");

	/* the signature's last byte */
	t.len = 0;
	assert_int_equal(kiln_buf_add(&t, s.data, s.len), 0);
	t.data[cabx + 8 + n - 1] ^= 1;
	fix_crc(&t, cabx);
	expect_failed(&t, root, "signature");

	/* another studio's root */
	expect_failed(&s, other_root, "chain");

	/* one verifier for many images: a leaf that chained once is remembered, another leaf
	 * is still chained (and fails) */
	{
		struct kiln_c2pa_verifier *v;
		struct kiln_c2pa_report r;
		struct kiln_c2pa_in ci = input();
		struct kiln_error e;
		char p[200];
		assert_int_equal(kiln_portfolio_c2pa_verifier_new(&v, root, &e), 0);
		for (int k = 0; k < 2; k++) {
			assert_int_equal(kiln_portfolio_c2pa_verify_png_with(v, s.data, s.len, &r,
									     &e), 0);
			assert_true(r.ok);
		}
		t.len = 0;
		assert_int_equal(kiln_portfolio_c2pa_sign_png(plain.data, plain.len, &ci, other, &t,
							      &e), 0);
		assert_int_equal(kiln_portfolio_c2pa_verify_png_with(v, t.data, t.len, &r, &e), 0);
		assert_false(r.ok);
		assert_string_equal(r.check, "chain");
		/* the first leaf again, after another: still the first's verdict */
		assert_int_equal(kiln_portfolio_c2pa_verify_png_with(v, s.data, s.len, &r, &e), 0);
		assert_true(r.ok);
		/* the hard binding against the caller's hash of the image without its chunk (the
		 * PNG before signing): the right one passes, another is not the signed bytes */
		{
			uint8_t h[32];
			kiln_sha256_raw(plain.data, plain.len, h);
			assert_int_equal(kiln_portfolio_c2pa_verify_png_hashed(v, s.data, s.len, h,
									       &r, &e), 0);
			assert_true(r.ok);
			h[5] ^= 1;
			assert_int_equal(kiln_portfolio_c2pa_verify_png_hashed(v, s.data, s.len, h,
									       &r, &e), 0);
			assert_false(r.ok);
			assert_string_equal(r.check, "hash.data");
		}
		kiln_portfolio_c2pa_verifier_free(v);
		snprintf(p, sizeof p, "%s/none.pem", dir);
		assert_int_equal(kiln_portfolio_c2pa_verifier_new(&v, p, &e), KILN_E_IO);
		assert_null(v);
		assert_int_equal(kiln_portfolio_c2pa_verifier_new(&v, keys, &e), KILN_E_IO);
	}

	/* no manifest; not a PNG */
	expect_failed(&plain, root, "manifest");
	t.len = 0;
	assert_int_equal(kiln_buf_adds(&t, "GIF89a, not a PNG at all"), 0);
	expect_failed(&t, root, "png");

	/* the caBX chunk moved after the image data: the exclusion no longer fits, and C2PA
	 * wants it before IDAT */
	t.len = 0;
	assert_int_equal(kiln_buf_add(&t, s.data, cabx), 0);
	assert_int_equal(kiln_buf_add(&t, s.data + idat, s.len - idat - 12), 0); /* less IEND */
	assert_int_equal(kiln_buf_add(&t, s.data + cabx, n + 12), 0);
	assert_int_equal(kiln_buf_add(&t, s.data + s.len - 12, 12), 0);
	expect_failed(&t, root, "manifest");

	/* two manifests (one pasted in twice) */
	t.len = 0;
	assert_int_equal(kiln_buf_add(&t, s.data, idat), 0);
	assert_int_equal(kiln_buf_add(&t, s.data + cabx, n + 12), 0);
	assert_int_equal(kiln_buf_add(&t, s.data + idat, s.len - idat), 0);
	expect_failed(&t, root, "manifest");

	kiln_buf_release(&s);
	kiln_buf_release(&t);
	(void)state;
}

static void test_errors(void **state)
{
	struct kiln_buf out = KILN_BUF_INIT;
	struct kiln_error e;
	struct kiln_c2pa_in ci = input();
	struct kiln_c2pa_edit bad = { "", NULL, NULL };
	char p[160];
	assert_int_equal(kiln_buf_adds(&out, "keep"), 0);

	/* no keys in the folder: the missing file is named */
	assert_int_equal(kiln_portfolio_c2pa_sign_png(plain.data, plain.len, &ci, dir, &out, &e),
			 KILN_E_IO);
	assert_non_null(strstr(e.where, KILN_C2PA_LEAF_CERT));
	assert_non_null(strstr(e.msg, "missing"));

	/* a key that is not the certificate's */
	snprintf(p, sizeof p, "%s/mixed", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	{
		char a[200], b[200];
		snprintf(a, sizeof a, "%s/" KILN_C2PA_LEAF_CERT, keys);
		snprintf(b, sizeof b, "%s/" KILN_C2PA_LEAF_CERT, p);
		assert_int_equal(kiln_fs_copy(a, b, 0, &e), 0);
		snprintf(a, sizeof a, "%s/" KILN_C2PA_LEAF_KEY, other);
		snprintf(b, sizeof b, "%s/" KILN_C2PA_LEAF_KEY, p);
		assert_int_equal(kiln_fs_copy(a, b, 0, &e), 0);
	}
	assert_int_equal(kiln_portfolio_c2pa_sign_png(plain.data, plain.len, &ci, p, &out, &e),
			 KILN_E_FAILED);
	assert_non_null(strstr(e.msg, "does not match"));

	/* not a PNG; a bad input */
	assert_int_equal(kiln_portfolio_c2pa_sign_png("GIF89a", 6, &ci, keys, &out, &e),
			 KILN_E_IMAGE);
	ci.format = "image/jpeg";
	assert_int_equal(kiln_portfolio_c2pa_sign_png(plain.data, plain.len, &ci, keys, &out, &e),
			 KILN_E_USAGE);
	ci = input();
	ci.edits = &bad;
	ci.n_edits = 1;
	assert_int_equal(kiln_portfolio_c2pa_sign_png(plain.data, plain.len, &ci, keys, &out, &e),
			 KILN_E_USAGE);
	assert_int_equal(out.len, 4);
	assert_string_equal(out.data, "keep");
	kiln_buf_release(&out);
	(void)state;
}

/* The signing cache: the same inputs give the same bytes (ECDSA alone would not), other
 * inputs another manifest, and a damaged cache file is made again. */
static void test_cache(void **state)
{
	struct kiln_c2pa_signer *sg;
	struct kiln_c2pa_in ci = input();
	struct kiln_buf a = KILN_BUF_INIT, b = KILN_BUF_INIT, c = KILN_BUF_INIT;
	struct kiln_c2pa_report r;
	struct kiln_error e;
	char cache[128];
	snprintf(cache, sizeof cache, "%s/cache", dir);
	assert_int_equal(mkdir(cache, 0700), 0);
	assert_int_equal(kiln_portfolio_c2pa_signer_new(&sg, keys, &e), 0);
	/* without the cache two signatures differ */
	assert_int_equal(kiln_portfolio_c2pa_sign_png_with(sg, plain.data, plain.len, &ci, &a, &e),
			 0);
	assert_int_equal(kiln_portfolio_c2pa_sign_png_with(sg, plain.data, plain.len, &ci, &b, &e),
			 0);
	assert_int_equal(a.len, b.len);
	assert_true(memcmp(a.data, b.data, a.len) != 0);
	a.len = b.len = 0;
	assert_int_equal(kiln_portfolio_c2pa_sign_png_cached(sg, cache, plain.data, plain.len, NULL,
							      &ci, &a, &e), 0);
	assert_int_equal(kiln_portfolio_c2pa_sign_png_cached(sg, cache, plain.data, plain.len, NULL,
							      &ci, &b, &e), 0);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.data, b.data, a.len);
	/* a signed input is signed as the PNG without its manifest: the same bytes */
	assert_int_equal(kiln_portfolio_c2pa_sign_png_cached(sg, cache, a.data, a.len, NULL, &ci,
							      &c, &e), 0);
	assert_int_equal(c.len, a.len);
	assert_memory_equal(c.data, a.data, a.len);
	/* another edit: another manifest, still valid */
	c.len = 0;
	ci.n_edits = 1;
	ci.source_type = KILN_C2PA_COMPOSITE_SYNTHETIC;
	assert_int_equal(kiln_portfolio_c2pa_sign_png_cached(sg, cache, plain.data, plain.len, NULL,
							      &ci, &c, &e), 0);
	assert_true(c.len != a.len || memcmp(c.data, a.data, a.len) != 0);
	assert_non_null(memmem(c.data, c.len, "compositeSynthetic", 18));
	verify(&c, root, &r);
	assert_true(r.ok);
	/* every cache file damaged: ignored, signed again, and the result checks */
	{
		DIR *d = opendir(cache);
		struct dirent *de;
		int n = 0;
		assert_non_null(d);
		while ((de = readdir(d)))
			if (de->d_name[0] != '.') {
				char p[512];
				FILE *f;
				snprintf(p, sizeof p, "%s/%s", cache, de->d_name);
				f = fopen(p, "r+b");
				assert_non_null(f);
				fseek(f, 200, SEEK_SET);
				fputc('!', f);
				fclose(f);
				n++;
			}
		closedir(d);
		assert_int_equal(n, 2);
	}
	ci = input();
	b.len = 0;
	assert_int_equal(kiln_portfolio_c2pa_sign_png_cached(sg, cache, plain.data, plain.len, NULL,
							      &ci, &b, &e), 0);
	verify(&b, root, &r);
	assert_true(r.ok);
	assert_true(memcmp(a.data, b.data, a.len) != 0); /* a new signature */
	kiln_portfolio_c2pa_signer_free(sg);
	kiln_buf_release(&a);
	kiln_buf_release(&b);
	kiln_buf_release(&c);
	(void)state;
}

static void test_nomem(void **state)
{
	struct kiln_c2pa_signer *s = NULL;
	struct kiln_buf out = KILN_BUF_INIT, good = KILN_BUF_INIT;
	struct kiln_c2pa_in ci = input();
	struct kiln_c2pa_report r;
	struct kiln_error e;
	int ok = 0;
	assert_int_equal(kiln_buf_adds(&out, "keep"), 0);
	for (long n = 0; n < 400 && !ok; n++) {
		int rc;
		kiln_alloc_fail_after(n);
		rc = kiln_portfolio_c2pa_signer_new(&s, keys, &e);
		if (!rc)
			rc = kiln_portfolio_c2pa_sign_png_with(s, plain.data, plain.len, &ci, &out,
							       &e);
		kiln_alloc_fail_after(-1);
		kiln_portfolio_c2pa_signer_free(s);
		s = NULL;
		if (!rc) {
			ok = 1;
			assert_true(n > 5); /* the allocations before it did fail */
			break;
		}
		assert_int_equal(rc, KILN_E_NOMEM);
		assert_int_equal(out.len, 4);
	}
	assert_true(ok);
	assert_int_equal(kiln_buf_add(&good, out.data + 4, out.len - 4), 0);
	for (long n = 0, done = 0; n < 400 && !done; n++) {
		int rc;
		kiln_alloc_fail_after(n);
		rc = kiln_portfolio_c2pa_verify_png(good.data, good.len, root, &r, &e);
		kiln_alloc_fail_after(-1);
		if (rc == 0) {
			assert_true(r.ok);
			assert_true(n > 0);
			done = 1;
		} else {
			assert_int_equal(rc, KILN_E_NOMEM);
		}
	}
	kiln_buf_release(&out);
	kiln_buf_release(&good);
	(void)state;
}

/* prompts: hashed: the engines' prompt texts go (exact keywords only), the rest stays */
static void add_text(struct kiln_buf *b, const char *type, const char *key, const char *val)
{
	size_t kl = strlen(key), vl = strlen(val), n = kl + 1 + vl;
	uint8_t h[8] = { (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n };
	uint32_t c;
	uint8_t crc[4];
	memcpy(h + 4, type, 4);
	c = (uint32_t)crc32(crc32(0, h + 4, 4), (const Bytef *)key, (uInt)kl + 1);
	c = (uint32_t)crc32(c, (const Bytef *)val, (uInt)vl);
	crc[0] = (uint8_t)(c >> 24);
	crc[1] = (uint8_t)(c >> 16);
	crc[2] = (uint8_t)(c >> 8);
	crc[3] = (uint8_t)c;
	assert_int_equal(kiln_buf_add(b, h, 8) || kiln_buf_add(b, key, kl + 1) ||
			 kiln_buf_add(b, val, vl) || kiln_buf_add(b, crc, 4), 0);
}

static void test_strip_prompts(void **state)
{
	struct kiln_buf b = KILN_BUF_INIT;
	(void)state;
	assert_int_equal(kiln_buf_add(&b, plain.data, 33), 0); /* signature and IHDR */
	add_text(&b, "tEXt", "parameters", "quokka owl, Steps: 20");
	add_text(&b, "tEXt", "parametersX", "kept");
	add_text(&b, "iTXt", "prompt", "{\"3\": {}}");
	add_text(&b, "zTXt", "workflow", "x");
	add_text(&b, "tEXt", "Software", "kiln");
	assert_int_equal(kiln_buf_add(&b, plain.data + 33, plain.len - 33), 0);
	assert_int_equal(kiln_portfolio_strip_prompt_text(&b), 3);
	assert_null(memmem(b.data, b.len, "quokka", 6));
	assert_non_null(memmem(b.data, b.len, "parametersX", 11));
	assert_non_null(memmem(b.data, b.len, "Software", 8));
	assert_int_equal(b.len, plain.len + 12 + 16 + 12 + 13);
	assert_int_equal(kiln_portfolio_strip_prompt_text(&b), 0);
	/* not a PNG, or a chunk running past the end: left whole */
	b.len -= 5;
	assert_int_equal(kiln_portfolio_strip_prompt_text(&b), -1);
	b.data[0] = 'x';
	assert_int_equal(kiln_portfolio_strip_prompt_text(&b), -1);
	kiln_buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chain_files),
		cmocka_unit_test(test_sign_verify),
		cmocka_unit_test(test_forgeries),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_cache),
		cmocka_unit_test(test_strip_prompts),
		cmocka_unit_test(test_nomem),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
