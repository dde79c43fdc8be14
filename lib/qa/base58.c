/* qa/base58.c: base58 (Bitcoin alphabet) decoding, for Solana creator addresses (a Pubkey is
 * the base58 of 32 bytes). Invariants: never writes past cap; leading '1's are zero bytes.
 * Sizes: inputs of ~44 characters; quadratic in the length, which is tiny.
 */
#include "kiln/qa.h"

#include <stddef.h>
#include <string.h>

/* ---- base58 --------------------------------------------------------------------------- */

int kiln_base58_decode(const char *s, unsigned char *out, size_t cap)
{
	static const char alpha[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
	size_t zeros = 0, len = 0; /* len: bytes of the big number, little-endian in out[] */
	const char *p = s;
	while (*p == '1') {
		zeros++;
		p++;
	}
	for (; *p; p++) {
		const char *q = strchr(alpha, *p);
		unsigned carry;
		if (!q)
			return -1;
		carry = (unsigned)(q - alpha);
		for (size_t i = 0; i < len; i++) {
			carry += (unsigned)out[i] * 58;
			out[i] = (unsigned char)(carry & 0xff);
			carry >>= 8;
		}
		while (carry) {
			if (len + zeros >= cap)
				return -1;
			out[len++] = (unsigned char)(carry & 0xff);
			carry >>= 8;
		}
	}
	if (len + zeros > cap)
		return -1;
	for (size_t i = 0; i < len / 2; i++) { /* to big-endian, after the leading zero bytes */
		unsigned char t = out[i];
		out[i] = out[len - 1 - i];
		out[len - 1 - i] = t;
	}
	memmove(out + zeros, out, len);
	memset(out, 0, zeros);
	return (int)(len + zeros);
}

