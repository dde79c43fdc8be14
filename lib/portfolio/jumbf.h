/* jumbf.h (private to lib/portfolio): JUMBF boxes (ISO/IEC 19566-5) as C2PA uses them, written
 * and read by kiln (jumbf.c). A box is a 32-bit big-endian size (header included), a 4-byte
 * type, then its payload; a superbox `jumb` holds a description box `jumd` (UUID, toggles,
 * label) then its content boxes. */
#ifndef KILN_PORTFOLIO_JUMBF_H
#define KILN_PORTFOLIO_JUMBF_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/buf.h"
#include "kiln/error.h"

/* The C2PA UUIDs: the four ASCII letters then 0011-0010-8000-00AA00389B71. */
extern const uint8_t kiln_jumbf_uuid_c2pa[16]; /* the manifest store */
extern const uint8_t kiln_jumbf_uuid_c2ma[16]; /* a standard manifest */
extern const uint8_t kiln_jumbf_uuid_c2as[16]; /* the assertion store */
extern const uint8_t kiln_jumbf_uuid_c2cl[16]; /* the claim */
extern const uint8_t kiln_jumbf_uuid_c2cs[16]; /* the claim signature */
extern const uint8_t kiln_jumbf_uuid_cbor[16]; /* a CBOR content (assertion) */

/* Writing: begin a superbox (its jumb header, then its jumd with toggles 0x03: requestable,
 * label), add content boxes or nested superboxes, end it (its size is filled in). *at keeps
 * where it starts. */
int kiln_jumbf_super_begin(struct kiln_buf *b, const uint8_t uuid[16], const char *label,
			   size_t *at) KILN_MUST_CHECK;
void kiln_jumbf_end(struct kiln_buf *b, size_t at);
/* A whole content box of type (4 letters) holding data[len]. */
int kiln_jumbf_content(struct kiln_buf *b, const char *type, const void *data, size_t len)
	KILN_MUST_CHECK;

/* Reading. A box found in a buffer: all pointers into it. */
struct kiln_jumbf_box {
	char type[5];
	const uint8_t *box;       /* the whole box, header included */
	size_t box_len;
	const uint8_t *body;      /* the payload */
	size_t body_len;
};
/* The box at *off in p[len]; *off moves past it. 1: a box; 0: the end; -1: malformed (a size
 * below 8 or past the end; 64-bit and to-the-end sizes are not used by C2PA and refused). */
int kiln_jumbf_next(const uint8_t *p, size_t len, size_t *off, struct kiln_jumbf_box *bx);

/* A superbox read: its description and where its content boxes are. */
struct kiln_jumbf_super {
	uint8_t uuid[16];
	char label[128];          /* "" when the jumd has none */
	const uint8_t *payload;   /* the jumb's payload (jumd + contents): what a hashed URI to
	                             an assertion hashes */
	size_t payload_len;
	const uint8_t *contents;  /* the boxes after the jumd */
	size_t contents_len;
};
/* bx must be a `jumb` whose first box is a well-formed `jumd`; 0 ok, -1 malformed. */
int kiln_jumbf_super_parse(const struct kiln_jumbf_box *bx, struct kiln_jumbf_super *s);
/* The first superbox among contents[len] whose label is label (and whose UUID is uuid, when
 * not NULL); 0 found, -1 not found or malformed. */
int kiln_jumbf_find(const uint8_t *contents, size_t len, const char *label,
		    const uint8_t *uuid, struct kiln_jumbf_super *s);

#endif
