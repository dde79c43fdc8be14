/* jumbf: the JUMBF boxes of a C2PA manifest store (ISO/IEC 19566-5, as C2PA 2.x profiles it).
 *
 * Writing appends to one kiln_buf and patches each box's size when it ends, so a manifest is
 * built in one pass with no intermediate copies. Reading never copies: boxes point into the
 * caller's bytes, and every size is checked against what encloses it before it is used.
 * A description box is UUID (16) + toggles (1) + a NUL-terminated label when toggles & 0x02,
 * then a 4-byte id (0x04), a 32-byte signature (0x08), a private box (0x10); C2PA writes 0x03
 * (requestable, labelled) and salts assertions with 0x13.
 */
#include "portfolio/jumbf.h"

#include <string.h>

#define C2PA_UUID(a, b, c, d) \
	{ a, b, c, d, 0x00, 0x11, 0x00, 0x10, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71 }

const uint8_t kiln_jumbf_uuid_c2pa[16] = C2PA_UUID('c', '2', 'p', 'a');
const uint8_t kiln_jumbf_uuid_c2ma[16] = C2PA_UUID('c', '2', 'm', 'a');
const uint8_t kiln_jumbf_uuid_c2as[16] = C2PA_UUID('c', '2', 'a', 's');
const uint8_t kiln_jumbf_uuid_c2cl[16] = C2PA_UUID('c', '2', 'c', 'l');
const uint8_t kiln_jumbf_uuid_c2cs[16] = C2PA_UUID('c', '2', 'c', 's');
const uint8_t kiln_jumbf_uuid_cbor[16] = C2PA_UUID('c', 'b', 'o', 'r');

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static int begin(struct kiln_buf *b, const char *type, size_t *at)
{
	uint8_t h[8] = { 0 };
	memcpy(h + 4, type, 4);
	*at = b->len;
	return kiln_buf_add(b, h, sizeof h);
}

void kiln_jumbf_end(struct kiln_buf *b, size_t at)
{
	put_be32((uint8_t *)b->data + at, (uint32_t)(b->len - at));
}

int kiln_jumbf_super_begin(struct kiln_buf *b, const uint8_t uuid[16], const char *label,
			   size_t *at)
{
	size_t d;
	uint8_t toggles = 0x03;
	if (begin(b, "jumb", at) || begin(b, "jumd", &d) || kiln_buf_add(b, uuid, 16) ||
	    kiln_buf_add(b, &toggles, 1) || kiln_buf_add(b, label, strlen(label) + 1))
		return KILN_E_NOMEM;
	kiln_jumbf_end(b, d);
	return 0;
}

int kiln_jumbf_content(struct kiln_buf *b, const char *type, const void *data, size_t len)
{
	size_t at;
	if (begin(b, type, &at) || kiln_buf_add(b, data, len))
		return KILN_E_NOMEM;
	kiln_jumbf_end(b, at);
	return 0;
}

int kiln_jumbf_next(const uint8_t *p, size_t len, size_t *off, struct kiln_jumbf_box *bx)
{
	size_t o = *off;
	uint32_t size;
	if (o == len)
		return 0;
	if (o > len || len - o < 8)
		return -1;
	size = be32(p + o);
	if (size < 8 || size > len - o)
		return -1;
	memcpy(bx->type, p + o + 4, 4);
	bx->type[4] = 0;
	bx->box = p + o;
	bx->box_len = size;
	bx->body = p + o + 8;
	bx->body_len = size - 8;
	*off = o + size;
	return 1;
}

int kiln_jumbf_super_parse(const struct kiln_jumbf_box *bx, struct kiln_jumbf_super *s)
{
	struct kiln_jumbf_box d;
	size_t off = 0, i = 17;
	uint8_t toggles;
	if (strcmp(bx->type, "jumb") != 0 ||
	    kiln_jumbf_next(bx->body, bx->body_len, &off, &d) != 1 || strcmp(d.type, "jumd") != 0 ||
	    d.body_len < 17)
		return -1;
	memcpy(s->uuid, d.body, 16);
	toggles = d.body[16];
	s->label[0] = 0;
	if (toggles & 0x02) {
		const uint8_t *nul = memchr(d.body + i, 0, d.body_len - i);
		size_t n;
		if (!nul)
			return -1;
		n = (size_t)(nul - (d.body + i));
		if (n >= sizeof s->label)
			return -1;
		memcpy(s->label, d.body + i, n);
		s->label[n] = 0;
		i += n + 1;
	}
	if ((toggles & 0x04) && (i += 4) > d.body_len)
		return -1;
	if ((toggles & 0x08) && (i += 32) > d.body_len)
		return -1;
	s->payload = bx->body;
	s->payload_len = bx->body_len;
	s->contents = bx->body + off;
	s->contents_len = bx->body_len - off;
	return 0;
}

int kiln_jumbf_find(const uint8_t *contents, size_t len, const char *label,
		    const uint8_t *uuid, struct kiln_jumbf_super *s)
{
	struct kiln_jumbf_box bx;
	size_t off = 0;
	int r;
	while ((r = kiln_jumbf_next(contents, len, &off, &bx)) == 1) {
		if (strcmp(bx.type, "jumb") != 0 || kiln_jumbf_super_parse(&bx, s) != 0)
			continue;
		if (strcmp(s->label, label) == 0 && (!uuid || memcmp(s->uuid, uuid, 16) == 0))
			return 0;
	}
	return -1;
}
