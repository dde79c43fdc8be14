/* Unit tests for the AI disclosure (lib/ai_disclosure.c) and the PNG text splicer under it
 * (kiln_png_set_text in lib/util/png.c): a PNG from kiln's encoder gets the XMP iTXt and the
 * parameters tEXt right before its IDAT, byte for byte; libvips still decodes it to the same
 * pixels and reads both texts back; a server's parameters (tEXt, zTXt, iTXt, anywhere) and XMP
 * are replaced, other text kept; text that is not Latin-1 becomes iTXt; the A1111 infotext
 * line by line; malformed PNGs are refused with what is wrong; non-PNG images are left alone;
 * every allocation failing in turn. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <libdeflate.h>
#include <vips/vips.h>

#include "render/disclosure.h"
#include "util/alloc.h"
#include "util/image.h"
#include "util/png.h"

#define DST_TRAINED "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
#define DST_COMPOSITE \
	"http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* A 37x23 opaque RGB PNG from kiln's encoder (IHDR, pHYs, IDAT, IEND) */
static void make_png(struct kiln_buf *out)
{
	struct kiln_png_opts o = { 6, KILN_PNG_FILTER_PAETH, 1 };
	struct kiln_error e;
	uint8_t px[37 * 23 * 4];
	for (size_t i = 0; i < sizeof px; i += 4) {
		px[i] = (uint8_t)(i * 7);
		px[i + 1] = (uint8_t)(i >> 3);
		px[i + 2] = (uint8_t)(255 - i);
		px[i + 3] = 255;
	}
	assert_int_equal(kiln_png_encode_rgba(px, 37, 23, 37 * 4, &o, NULL, out, &e), 0);
}

/* Append a chunk (with its CRC) to b. */
static void add_chunk(struct kiln_buf *b, const char *type, const void *data, size_t n)
{
	uint8_t h[8], c[4];
	put32(h, (uint32_t)n);
	memcpy(h + 4, type, 4);
	assert_int_equal(kiln_buf_add(b, h, 8), 0);
	assert_int_equal(kiln_buf_add(b, data, n), 0);
	put32(c, (uint32_t)libdeflate_crc32(libdeflate_crc32(0, type, 4), data, n));
	assert_int_equal(kiln_buf_add(b, c, 4), 0);
}

/* The chunks of a PNG: types "IHDR,pHYs,..." and each chunk's offset; CRCs checked. */
struct chunks {
	char types[512];
	size_t off[32];
	size_t n;
};

static void walk(const struct kiln_buf *b, struct chunks *c)
{
	const uint8_t *p = (const uint8_t *)b->data;
	size_t off = 8, len = 0;
	assert_memory_equal(p, "\x89PNG\r\n\x1a\n", 8);
	memset(c, 0, sizeof *c);
	while (off + 12 <= b->len) {
		uint32_t n = be32(p + off);
		assert_true(off + 12 + n <= b->len);
		assert_int_equal(be32(p + off + 8 + n),
				 (uint32_t)libdeflate_crc32(0, p + off + 4, (size_t)n + 4));
		len += (size_t)snprintf(c->types + len, sizeof c->types - len, "%s%.4s",
					len ? "," : "", (const char *)p + off + 4);
		assert_true(c->n < 32);
		c->off[c->n++] = off;
		off += 12 + (size_t)n;
	}
	assert_int_equal(off, b->len);
}

/* Chunk k's data and length */
static const uint8_t *data_of(const struct kiln_buf *b, const struct chunks *c, size_t k,
			      size_t *n)
{
	*n = be32((const uint8_t *)b->data + c->off[k]);
	return (const uint8_t *)b->data + c->off[k] + 8;
}

static void decode_same(const struct kiln_buf *a, const struct kiln_buf *b)
{
	VipsImage *ia = vips_image_new_from_buffer(a->data, a->len, "", "fail_on",
						   VIPS_FAIL_ON_WARNING, NULL);
	VipsImage *ib = vips_image_new_from_buffer(b->data, b->len, "", "fail_on",
						   VIPS_FAIL_ON_WARNING, NULL);
	void *pa, *pb;
	size_t na, nb;
	assert_non_null(ia);
	assert_non_null(ib);
	pa = vips_image_write_to_memory(ia, &na);
	pb = vips_image_write_to_memory(ib, &nb);
	assert_non_null(pa);
	assert_non_null(pb);
	assert_int_equal(na, nb);
	assert_memory_equal(pa, pb, na);
	g_free(pa);
	g_free(pb);
	g_object_unref(ia);
	g_object_unref(ib);
}

static int setup(void **state)
{
	struct kiln_error e;
	(void)state;
	return kiln_vips_init(&e);
}

static const char infotext[] = "pixel owl, golden crown <lora:crown_v2:0.8>\n"
			       "Negative prompt: blurry\n"
			       "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1234, "
			       "Size: 37x23, Model: sd_xl_base_1.0";

/* XMP iTXt then parameters tEXt, right before IDAT; pixels unchanged; libvips reads both */
static void splice_into_encoder_png(void **state)
{
	struct kiln_buf png = KILN_BUF_INIT, out = KILN_BUF_INIT, xmp = KILN_BUF_INIT;
	struct kiln_error e;
	struct chunks c;
	const uint8_t *d;
	size_t n, before;
	(void)state;
	make_png(&png);
	walk(&png, &c);
	assert_string_equal(c.types, "IHDR,pHYs,IDAT,IEND");
	assert_int_equal(kiln_buf_add(&out, "x", 1), 0); /* appends */
	assert_int_equal(kiln_ai_disclose_png(png.data, png.len, KILN_SOURCE_TRAINED, infotext,
					      &out, &e), 0);
	{
		struct kiln_buf o = { out.data + 1, out.len - 1, 0, 0 };
		walk(&o, &c);
		assert_string_equal(c.types, "IHDR,pHYs,iTXt,tEXt,IDAT,IEND");
		/* iTXt: keyword, NUL, compression flag 0, method 0, empty language, NUL, empty
		 * translated keyword, NUL, then the packet */
		assert_int_equal(kiln_ai_xmp(KILN_SOURCE_TRAINED, &xmp), 0);
		d = data_of(&o, &c, 2, &n);
		assert_int_equal(n, 18 + 4 + xmp.len);
		assert_memory_equal(d, "XML:com.adobe.xmp\0\0\0\0\0", 22);
		assert_memory_equal(d + 22, xmp.data, xmp.len);
		d = data_of(&o, &c, 3, &n);
		assert_int_equal(n, 11 + strlen(infotext));
		assert_memory_equal(d, "parameters\0", 11);
		assert_memory_equal(d + 11, infotext, strlen(infotext));
		/* everything else byte for byte */
		before = c.off[2];
		assert_memory_equal(o.data, png.data, before);
		assert_memory_equal(o.data + c.off[4], png.data + before, png.len - before);
		decode_same(&png, &o);
		/* libvips reads the texts back */
		{
			VipsImage *im = vips_image_new_from_buffer(o.data, o.len, "", NULL);
			const void *blob;
			size_t bn;
			const char *s = NULL;
			char name[64];
			int found = 0;
			assert_non_null(im);
			assert_int_equal(vips_image_get_blob(im, "xmp-data", &blob, &bn), 0);
			assert_non_null(memmem(blob, bn, DST_TRAINED, strlen(DST_TRAINED)));
			assert_non_null(memmem(blob, bn, "xmlns:Iptc4xmpExt=\"http://iptc.org/std/"
					       "Iptc4xmpExt/2008-02-29/\"", 62));
			for (int k = 0; k < 4; k++) {
				snprintf(name, sizeof name, "png-comment-%d-parameters", k);
				if (vips_image_get_typeof(im, name) &&
				    !vips_image_get_string(im, name, &s)) {
					assert_string_equal(s, infotext);
					found++;
				}
			}
			assert_int_equal(found, 1);
			g_object_unref(im);
		}
	}
	kiln_buf_release(&xmp);
	kiln_buf_release(&out);
	kiln_buf_release(&png);
}

/* A server's parameters (tEXt before IDAT, zTXt and iTXt after it) and XMP are replaced; its
 * other text chunks stay where they were */
static void replaces_server_chunks(void **state)
{
	struct kiln_buf png = KILN_BUF_INIT, in = KILN_BUF_INIT, out = KILN_BUF_INIT;
	struct kiln_error e;
	struct chunks c;
	const uint8_t *d;
	size_t n, idat;
	static const char z[] = "parameters\0\0x\x9c\x03\x00\x00\x00\x00\x01";
	(void)state;
	make_png(&png);
	walk(&png, &c);
	idat = c.off[2];
	assert_int_equal(kiln_buf_add(&in, png.data, idat), 0);
	add_chunk(&in, "tEXt", "parameters\0old infotext", 23);
	add_chunk(&in, "tEXt", "prompt\0{\"3\": {}}", 16);
	add_chunk(&in, "iTXt", "XML:com.adobe.xmp\0\0\0\0\0<x:xmpmeta/>", 34);
	assert_int_equal(kiln_buf_add(&in, png.data + idat, c.off[3] - idat), 0); /* IDAT */
	add_chunk(&in, "zTXt", z, sizeof z - 1);
	add_chunk(&in, "iTXt", "parameters\0\0\0en\0\0late", 21);
	add_chunk(&in, "tEXt", "Comment\0kept", 12);
	assert_int_equal(kiln_buf_add(&in, png.data + c.off[3], 12), 0); /* IEND */
	walk(&in, &c);
	assert_string_equal(c.types, "IHDR,pHYs,tEXt,tEXt,iTXt,IDAT,zTXt,iTXt,tEXt,IEND");

	assert_int_equal(kiln_ai_disclose_png(in.data, in.len, KILN_SOURCE_COMPOSITE, infotext,
					      &out, &e), 0);
	walk(&out, &c);
	assert_string_equal(c.types, "IHDR,pHYs,tEXt,iTXt,tEXt,IDAT,tEXt,IEND");
	d = data_of(&out, &c, 2, &n);
	assert_int_equal(n, 16);
	assert_memory_equal(d, "prompt\0{\"3\": {}}", 16);
	d = data_of(&out, &c, 3, &n);
	assert_non_null(memmem(d, n, DST_COMPOSITE, strlen(DST_COMPOSITE)));
	assert_null(memmem(d, n, "<x:xmpmeta/>", 12));
	d = data_of(&out, &c, 4, &n);
	assert_memory_equal(d, "parameters\0", 11);
	assert_memory_equal(d + 11, infotext, n - 11);
	d = data_of(&out, &c, 6, &n);
	assert_memory_equal(d, "Comment\0kept", 12);
	decode_same(&png, &out);
	/* doing it again changes nothing: the result is a fixed point */
	{
		struct kiln_buf again = KILN_BUF_INIT;
		assert_int_equal(kiln_ai_disclose_png(out.data, out.len, KILN_SOURCE_COMPOSITE,
						      infotext, &again, &e), 0);
		assert_int_equal(again.len, out.len);
		assert_memory_equal(again.data, out.data, out.len);
		kiln_buf_release(&again);
	}
	kiln_buf_release(&out);
	kiln_buf_release(&in);
	kiln_buf_release(&png);
}

/* tEXt holds Latin-1: UTF-8 text made of Latin-1 characters is converted to those bytes;
 * anything else (CJK, emoji, a tab) goes in an iTXt parameters chunk as UTF-8 */
static void latin1_or_itxt(void **state)
{
	static const struct {
		const char *text, *want;
		const char *type;
	} cases[] = {
		{ "caf\xc3\xa9 owl, 100\xc2\xb0", "caf\xe9 owl, 100\xb0", "tEXt" },
		{ "owl\nNegative prompt: x", "owl\nNegative prompt: x", "tEXt" },
		{ "\xe3\x83\x95\xe3\x82\xaf\xe3\x83\xad\xe3\x82\xa6 owl",
		  "\xe3\x83\x95\xe3\x82\xaf\xe3\x83\xad\xe3\x82\xa6 owl", "iTXt" },
		{ "owl \xf0\x9f\xa6\x89", "owl \xf0\x9f\xa6\x89", "iTXt" },
		{ "owl\tcap", "owl\tcap", "iTXt" },
		{ "\xc5\x93uf", "\xc5\x93uf", "iTXt" }, /* U+0153 is not Latin-1 */
	};
	struct kiln_buf png = KILN_BUF_INIT;
	struct kiln_error e;
	(void)state;
	make_png(&png);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct kiln_png_text t = { "parameters", cases[i].text, 0 };
		struct kiln_buf out = KILN_BUF_INIT;
		struct chunks c;
		const uint8_t *d;
		size_t n, pre = !strcmp(cases[i].type, "iTXt") ? 4 : 0;
		assert_int_equal(kiln_png_set_text(png.data, png.len, &t, 1, &out, &e), 0);
		walk(&out, &c);
		assert_memory_equal(out.data + c.off[2] + 4, cases[i].type, 4);
		d = data_of(&out, &c, 2, &n);
		assert_memory_equal(d, "parameters\0", 11);
		assert_int_equal(n, 11 + pre + strlen(cases[i].want));
		if (pre)
			assert_memory_equal(d + 11, "\0\0\0\0", 4);
		assert_memory_equal(d + 11 + pre, cases[i].want, strlen(cases[i].want));
		decode_same(&png, &out);
		kiln_buf_release(&out);
	}
	/* text that is not UTF-8, keywords PNG does not allow */
	{
		struct kiln_png_text bad[] = { { "parameters", "owl \xe9", 0 },
					       { "", "x", 0 }, { " lead", "x", 0 },
					       { "two  spaces", "x", 0 },
					       { "0123456789012345678901234567890123456789"
						 "0123456789012345678901234567890123456789", "x", 0 } };
		struct kiln_buf out = KILN_BUF_INIT;
		for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
			assert_int_equal(kiln_png_set_text(png.data, png.len, &bad[i], 1, &out, &e),
					 KILN_E_IMAGE);
			assert_int_equal(out.len, 0);
		}
		assert_non_null(strstr(e.msg, "not a PNG keyword"));
		kiln_buf_release(&out);
	}
	kiln_buf_release(&png);
}

static void a1111_infotext(void **state)
{
	struct kiln_lora loras[2];
	struct kiln_ai_request rq;
	struct kiln_buf b = KILN_BUF_INIT;
	(void)state;
	memset(&rq, 0, sizeof rq);
	memset(loras, 0, sizeof loras);
	loras[0].name = "crown_v2";
	loras[0].weight = 0.8;
	loras[1].name = "laser_eyes";
	loras[1].weight = 1;
	rq.prompt = "pixel owl, golden crown";
	rq.negative = "blurry, text";
	rq.checkpoint = "sd_xl_base_1.0.safetensors";
	rq.sampler = "Euler a";
	rq.scheduler = "Karras";
	rq.steps = 20;
	rq.cfg = 7.5;
	rq.width = 512;
	rq.height = 768;
	rq.loras = loras;
	rq.nloras = 2;
	assert_int_equal(kiln_ai_infotext(&rq, 4294967295ull, &b), 0);
	assert_string_equal(b.data, "pixel owl, golden crown <lora:crown_v2:0.8> "
			    "<lora:laser_eyes:1>\nNegative prompt: blurry, text\n"
			    "Steps: 20, Sampler: Euler a, Schedule type: Karras, CFG scale: 7.5, "
			    "Seed: 4294967295, Size: 512x768, Model: sd_xl_base_1.0");
	/* no negative, scheduler, checkpoint or LoRAs; A1111's quoting of ',', ':' and newlines */
	kiln_buf_reset(&b);
	rq.negative = "";
	rq.scheduler = NULL;
	rq.checkpoint = NULL;
	rq.nloras = 0;
	rq.sampler = "My, \"odd\": sampler";
	rq.cfg = 7;
	assert_int_equal(kiln_ai_infotext(&rq, 0, &b), 0);
	assert_string_equal(b.data, "pixel owl, golden crown\nSteps: 20, Sampler: \"My, \\\"odd\\\": "
			    "sampler\", CFG scale: 7, Seed: 0, Size: 512x768");
	kiln_buf_release(&b);
	assert_string_equal(kiln_digital_source_uri(KILN_SOURCE_TRAINED), DST_TRAINED);
	assert_string_equal(kiln_digital_source_uri(KILN_SOURCE_COMPOSITE), DST_COMPOSITE);
}

/* The render hook: the server's infotext wins; else the request's; other formats untouched */
static void job_hook(void **state)
{
	struct kiln_ai_request rq;
	struct kiln_ai_job j;
	struct kiln_buf png = KILN_BUF_INIT;
	struct kiln_error e;
	struct chunks c;
	const uint8_t *d;
	size_t n;
	(void)state;
	make_png(&png);
	memset(&rq, 0, sizeof rq);
	rq.prompt = "owl";
	rq.negative = "";
	rq.sampler = "Euler";
	rq.steps = 4;
	rq.cfg = 2;
	rq.width = 37;
	rq.height = 23;
	memset(&j, 0, sizeof j);
	j.rq = &rq;
	j.seed_used = 99;
	assert_int_equal(kiln_buf_add(&j.image, png.data, png.len), 0);
	assert_int_equal(kiln_ai_disclose_job(&j, KILN_SOURCE_TRAINED, &e), 0);
	walk(&j.image, &c);
	assert_string_equal(c.types, "IHDR,pHYs,iTXt,tEXt,IDAT,IEND");
	d = data_of(&j.image, &c, 3, &n);
	{
		static const char want[] = "owl\nSteps: 4, Sampler: Euler, CFG scale: 2, Seed: 99, "
					   "Size: 37x23";
		assert_int_equal(n, 11 + strlen(want));
		assert_memory_equal(d + 11, want, strlen(want));
	}
	/* the server said: its text is used as it is */
	kiln_buf_reset(&j.image);
	assert_int_equal(kiln_buf_add(&j.image, png.data, png.len), 0);
	j.info = strdup("owl\nSteps: 4, Seed: 99, Version: v1.10.1");
	assert_int_equal(kiln_ai_disclose_job(&j, KILN_SOURCE_TRAINED, &e), 0);
	walk(&j.image, &c);
	d = data_of(&j.image, &c, 3, &n);
	assert_int_equal(n, 11 + strlen(j.info));
	assert_memory_equal(d + 11, j.info, strlen(j.info));
	/* a JPEG stays as it came */
	kiln_buf_reset(&j.image);
	assert_int_equal(kiln_buf_add(&j.image, "\xff\xd8\xff\xe0 not a png", 15), 0);
	assert_int_equal(kiln_ai_disclose_job(&j, KILN_SOURCE_TRAINED, &e), 0);
	assert_int_equal(j.image.len, 15);
	assert_memory_equal(j.image.data, "\xff\xd8\xff\xe0 not a png", 15);
	/* a broken PNG fails the attempt, saying why */
	kiln_buf_reset(&j.image);
	assert_int_equal(kiln_buf_add(&j.image, png.data, png.len - 5), 0);
	assert_int_equal(kiln_ai_disclose_job(&j, KILN_SOURCE_TRAINED, &e), KILN_E_IMAGE);
	assert_non_null(strstr(e.msg, "cannot add the AI disclosure: not a well-formed PNG"));
	assert_int_equal(j.image.len, png.len - 5);
	j.rq = NULL;
	kiln_ai_job_release(&j);
	kiln_buf_release(&png);
}

/* Malformed PNGs: refused with what is wrong, out untouched */
static void malformed(void **state)
{
	struct kiln_buf png = KILN_BUF_INIT, bad = KILN_BUF_INIT, out = KILN_BUF_INIT;
	struct kiln_png_text t = { "parameters", "x", 0 };
	struct kiln_error e;
	struct chunks c;
	static const struct {
		int what;
		const char *msg;
	} cases[] = {
		{ 0, "no PNG signature" }, { 1, "cut short" }, { 2, "bad CRC" },
		{ 3, "bytes after IEND" }, { 4, "no IDAT" }, { 5, "13-byte IHDR" },
		{ 6, "runs past the end" }, { 7, "four letters" }, { 8, "second IHDR" },
		{ 9, "ends before IEND" },
	};
	(void)state;
	make_png(&png);
	walk(&png, &c);
	assert_int_equal(kiln_buf_add(&out, "keep", 4), 0);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		kiln_buf_reset(&bad);
		assert_int_equal(kiln_buf_add(&bad, png.data, png.len), 0);
		switch (cases[i].what) {
		case 0: bad.data[1] = 'p'; break;
		case 1: bad.len -= 3; break;
		case 2: bad.data[c.off[2] + 20] ^= 1; break;
		case 3: assert_int_equal(kiln_buf_add(&bad, "junk", 4), 0); break;
		case 4: /* IDAT dropped */
			memmove(bad.data + c.off[2], bad.data + c.off[3], 12);
			bad.len = c.off[2] + 12;
			break;
		case 5: /* pHYs first */
			bad.len = 8;
			add_chunk(&bad, "pHYs", png.data + c.off[1] + 8, 9);
			assert_int_equal(kiln_buf_add(&bad, png.data + 8, png.len - 8), 0);
			break;
		case 6: put32((uint8_t *)bad.data + c.off[2], 0x10000000u); break;
		case 7: bad.len = c.off[2];
			add_chunk(&bad, "t3Xt", "a\0b", 3);
			assert_int_equal(kiln_buf_add(&bad, png.data + c.off[2],
						      png.len - c.off[2]), 0);
			break;
		case 8: bad.len = c.off[2];
			add_chunk(&bad, "IHDR", png.data + 16, 13);
			assert_int_equal(kiln_buf_add(&bad, png.data + c.off[2],
						      png.len - c.off[2]), 0);
			break;
		case 9: bad.len = c.off[3]; break; /* no IEND */
		}
		assert_int_equal(kiln_png_set_text(bad.data, bad.len, &t, 1, &out, &e), KILN_E_IMAGE);
		if (!strstr(e.msg, cases[i].msg))
			fail_msg("case %zu: '%s' not in '%s'", i, cases[i].msg, e.msg);
		assert_int_equal(out.len, 4);
		assert_string_equal(out.data, "keep");
	}
	kiln_buf_release(&out);
	kiln_buf_release(&bad);
	kiln_buf_release(&png);
}

static void allocation_failures(void **state)
{
	struct kiln_buf png = KILN_BUF_INIT;
	struct kiln_ai_request rq;
	struct kiln_error e;
	int done = 0;
	(void)state;
	make_png(&png);
	memset(&rq, 0, sizeof rq);
	rq.prompt = "owl";
	rq.negative = "blurry";
	rq.sampler = "Euler";
	rq.checkpoint = "m.ckpt";
	for (long k = 0; !done && k < 200; k++) {
		struct kiln_ai_job j;
		int rc;
		memset(&j, 0, sizeof j);
		j.rq = &rq;
		assert_int_equal(kiln_buf_add(&j.image, png.data, png.len), 0);
		kiln_alloc_fail_after(k);
		rc = kiln_ai_disclose_job(&j, KILN_SOURCE_TRAINED, &e);
		kiln_alloc_fail_after(-1);
		if (rc) {
			assert_int_equal(rc, KILN_E_NOMEM);
			assert_int_equal(j.image.len, png.len); /* the image as it was */
			assert_memory_equal(j.image.data, png.data, png.len);
		} else {
			done = 1;
			assert_true(j.image.len > png.len);
		}
		j.rq = NULL;
		kiln_ai_job_release(&j);
	}
	assert_true(done);
	kiln_buf_release(&png);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(splice_into_encoder_png), cmocka_unit_test(replaces_server_chunks),
		cmocka_unit_test(latin1_or_itxt), cmocka_unit_test(a1111_infotext),
		cmocka_unit_test(job_hook), cmocka_unit_test(malformed),
		cmocka_unit_test(allocation_failures),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
