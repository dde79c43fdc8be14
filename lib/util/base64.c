/* base64: OpenSSL's EVP_EncodeBlock/EVP_DecodeBlock, with the padding EVP_DecodeBlock leaves
 * to the caller handled here (it decodes "QQ==" to three bytes, the last two zero). */
#include "util/base64.h"

#include <openssl/evp.h>
#include <string.h>

int kiln_base64_add(struct kiln_buf *out, const void *p, size_t n)
{
	size_t need = 4 * ((n + 2) / 3) + 1;
	if (n > ((size_t)1 << 30) || kiln_buf_grow(out, need))
		return -1;
	int w = EVP_EncodeBlock((unsigned char *)out->data + out->len, p, (int)n);
	out->len += (size_t)w;
	out->data[out->len] = 0;
	return 0;
}

static int b64char(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

int kiln_base64_decode(const char *s, size_t len, struct kiln_buf *out)
{
	size_t pad = 0;
	if (len % 4 || len > ((size_t)1 << 30))
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '=' && i >= len - 2) {
			pad++;
			continue;
		}
		if (pad || !b64char((unsigned char)s[i]))
			return -1;
	}
	if (pad == 1 && s[len - 1] != '=')
		return -1;
	if (kiln_buf_grow(out, len / 4 * 3 + 1))
		return -2;
	int w = EVP_DecodeBlock((unsigned char *)out->data + out->len, (const unsigned char *)s,
				(int)len);
	if (w < 0)
		return -1;
	out->len += (size_t)w - pad;
	out->data[out->len] = 0;
	/* canonical only: the unused low bits before '=' must be zero, so one text has one
	 * decoding and one decoding one text (a signature line cannot be altered silently) */
	if (pad) {
		static const char d[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					"0123456789+/";
		int v = (int)(strchr(d, s[len - pad - 1]) - d);
		if (v & (pad == 1 ? 0x3 : 0xf))
			return -1;
	}
	return 0;
}
