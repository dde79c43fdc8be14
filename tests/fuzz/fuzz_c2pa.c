/* Fuzz target: kiln's C2PA verify (lib/portfolio/c2pa.c, jumbf.c), which reads manifests from
 * images anyone can hand it: the JUMBF boxes, the CBOR claim and assertions, the COSE_Sign1
 * and the certificate in it. The input is a manifest store: it is wrapped as the caBX chunk of
 * a small well-formed PNG (CRCs right, so mutations reach the box and CBOR readers instead of
 * stopping at the chunk CRC), or, when its first byte is 0x89, read as a whole file. */
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <libdeflate.h>
#include "kiln/buf.h"
#include "kiln/portfolio.h"

static int chunk(struct kiln_buf *b, const char *type, const void *data, size_t n)
{
	uint8_t h[8] = { (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n };
	uint32_t c;
	uint8_t t[4];
	memcpy(h + 4, type, 4);
	c = (uint32_t)libdeflate_crc32(0, h + 4, 4);
	c = (uint32_t)libdeflate_crc32(c, data, n);
	t[0] = (uint8_t)(c >> 24);
	t[1] = (uint8_t)(c >> 16);
	t[2] = (uint8_t)(c >> 8);
	t[3] = (uint8_t)c;
	return kiln_buf_add(b, h, 8) || kiln_buf_add(b, data, n) || kiln_buf_add(b, t, 4);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
	/* 1x1 RGBA, one zlib-compressed row */
	static const uint8_t ihdr[13] = { 0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0 };
	static const uint8_t idat[] = { 0x78, 0x9c, 0x63, 0x60, 0x60, 0x60, 0xf8, 0x0f, 0x00,
					0x01, 0x04, 0x01, 0x00 };
	struct kiln_buf png = KILN_BUF_INIT;
	struct kiln_c2pa_report r;
	struct kiln_error e;
	kiln_error_clear(&e);
	if (size && data[0] == 0x89) {
		if (kiln_portfolio_c2pa_verify_png(data, size, NULL, &r, &e))
			kiln_error_clear(&e);
		return 0;
	}
	if (kiln_buf_add(&png, sig, 8) || chunk(&png, "IHDR", ihdr, sizeof ihdr) ||
	    chunk(&png, "caBX", data, size) || chunk(&png, "IDAT", idat, sizeof idat) ||
	    chunk(&png, "IEND", "", 0)) {
		kiln_buf_release(&png);
		return 0;
	}
	if (kiln_portfolio_c2pa_verify_png(png.data, png.len, NULL, &r, &e))
		kiln_error_clear(&e);
	kiln_buf_release(&png);
	return 0;
}
