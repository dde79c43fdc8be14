/* SHA-256 via libcrypto's EVP interface (it picks the SHA-NI/AVX2 code paths). */
#include "util/sha.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>

int kiln_sha256_init(struct kiln_sha256 *h)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	if (!c)
		return KILN_E_NOMEM;
	if (EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(c);
		return KILN_E_NOMEM;
	}
	h->ctx = c;
	return 0;
}

void kiln_sha256_update(struct kiln_sha256 *h, const void *p, size_t n)
{
	EVP_DigestUpdate(h->ctx, p, n);
}

void kiln_hex(const uint8_t *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = 0;
}

void kiln_sha256_final(struct kiln_sha256 *h, uint8_t raw[32], char hex[65])
{
	uint8_t md[32];
	unsigned int len = 32;
	EVP_DigestFinal_ex(h->ctx, md, &len);
	EVP_MD_CTX_free(h->ctx);
	h->ctx = NULL;
	if (raw)
		memcpy(raw, md, 32);
	if (hex)
		kiln_hex(md, 32, hex);
}

void kiln_sha256_abort(struct kiln_sha256 *h)
{
	EVP_MD_CTX_free(h->ctx);
	h->ctx = NULL;
}

void kiln_sha256_raw(const void *p, size_t n, uint8_t raw[32])
{
	unsigned int len = 32;
	EVP_Digest(p, n, raw, &len, EVP_sha256(), NULL);
}

void kiln_sha256_hex(const void *p, size_t n, char hex[65])
{
	uint8_t md[32];
	kiln_sha256_raw(p, n, md);
	kiln_hex(md, 32, hex);
}

int kiln_sha256_file(const char *path, char hex[65], struct kiln_error *e)
{
	struct kiln_sha256 h;
	unsigned char buf[1 << 16];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kiln_error_set(e, KILN_E_IO, path, "cannot open: %s", strerror(errno));
	if (kiln_sha256_init(&h)) {
		close(fd);
		return kiln_error_set(e, KILN_E_NOMEM, path, "out of memory");
	}
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno;
			kiln_sha256_abort(&h);
			close(fd);
			return kiln_error_set(e, KILN_E_IO, path, "read failed: %s", strerror(err));
		}
		if (n == 0)
			break;
		kiln_sha256_update(&h, buf, (size_t)n);
	}
	close(fd);
	kiln_sha256_final(&h, NULL, hex);
	return 0;
}
