/* keys: the studio's Ed25519 signing key (OpenSSL EVP), the C2SP signed-note key id.
 *
 * Invariants: the keys folder is 0700 and every file in it 0600, created with O_EXCL under a
 * temporary name and linked into place (link() fails on an existing name), so a key is never
 * overwritten, not even by two `init`s at once. The private key is PKCS#8 PEM, the public one
 * SubjectPublicKeyInfo PEM: what `openssl pkeyutl` reads as they are. Ed25519 signatures are
 * deterministic (RFC 8032), so everything signed here is the same bytes on every run. */
#include "kiln/portfolio.h"
#include "util/alloc.h"
#include "util/base64.h"
#include "util/fs.h"
#include "util/sha.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int nomem(const char *where, struct kiln_error *e)
{
	return kiln_error_set(e, KILN_E_NOMEM, where, "out of memory");
}

/* dir/name with mode 0600, never replacing a file: temporary name, then link(). */
static int write_new(const char *dir, const char *name, const void *data, size_t len,
		     struct kiln_error *e)
{
	char *path = kiln_fs_join(dir, name), *tmp = NULL;
	int fd = -1, rc = 0;
	size_t tl;
	if (!path)
		return nomem(dir, e);
	tl = strlen(path) + 32;
	if (!(tmp = kiln_malloc(tl))) {
		rc = nomem(dir, e);
		goto out;
	}
	snprintf(tmp, tl, "%s.tmp-%ld", path, (long)getpid());
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		rc = kiln_error_set(e, KILN_E_IO, path, "cannot create: %s", strerror(errno));
		goto out;
	}
	if (fchmod(fd, 0600) || write(fd, data, len) != (ssize_t)len || fsync(fd)) {
		rc = kiln_error_set(e, KILN_E_IO, path, "cannot write: %s", strerror(errno));
		goto out;
	}
	close(fd);
	fd = -1;
	if (link(tmp, path)) {
		rc = errno == EEXIST
			     ? kiln_error_set(e, KILN_E_STATE, path, "a studio key is already here: it "
					      "is never replaced (signatures made with it would stop "
					      "verifying); move it away first to make a new one")
			     : kiln_error_set(e, KILN_E_IO, path, "cannot link into place: %s",
					      strerror(errno));
		goto out;
	}
	kiln_fs_sync_dir(dir);
out:
	if (fd >= 0)
		close(fd);
	if (tmp)
		unlink(tmp);
	free(tmp);
	free(path);
	return rc;
}

static int check_studio(const char *studio, struct kiln_error *e)
{
	size_t n = strlen(studio);
	if (!n || n >= KILN_STUDIO_MAX)
		return kiln_error_set(e, KILN_E_USAGE, "studio", "the studio name must be 1 to %d "
				      "characters, got %zu", KILN_STUDIO_MAX - 1, n);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)studio[i] <= ' ' || studio[i] == '+' || studio[i] == 0x7f)
			return kiln_error_set(e, KILN_E_USAGE, "studio", "the studio name '%s' has a "
					      "space, '+' or control character at byte %zu: a signed "
					      "note's key name cannot (use e.g. example.com/studio)",
					      studio, i + 1);
	return 0;
}

/* PEM of a key (private: PKCS#8, else SubjectPublicKeyInfo) into out. */
static int pem_of(EVP_PKEY *k, int priv, struct kiln_buf *out)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p;
	long n;
	int rc = -1;
	if (!b)
		return -1;
	if ((priv ? PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL)
		  : PEM_write_bio_PUBKEY(b, k)) == 1 && (n = BIO_get_mem_data(b, &p)) > 0)
		rc = kiln_buf_add(out, p, (size_t)n) ? -1 : 0;
	BIO_free(b);
	return rc;
}

int kiln_keys_init(const char *dir, const char *studio, struct kiln_error *e)
{
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *k = NULL;
	struct kiln_buf priv = KILN_BUF_INIT, pub = KILN_BUF_INIT;
	char *path = NULL, line[KILN_STUDIO_MAX + 2];
	struct stat st;
	int rc;
	if ((rc = check_studio(studio, e)))
		return rc;
	if (!(path = kiln_fs_join(dir, KILN_KEYS_SIGNING)))
		return nomem(dir, e);
	if (kiln_fs_exists(path)) {
		rc = kiln_error_set(e, KILN_E_STATE, path, "a studio key is already here: it is "
				    "never replaced (signatures made with it would stop verifying); "
				    "move it away first to make a new one");
		goto out;
	}
	if ((rc = kiln_fs_mkdirs(dir, e)))
		goto out;
	if (stat(dir, &st) || chmod(dir, 0700)) {
		rc = kiln_error_set(e, KILN_E_IO, dir, "cannot make the keys folder private: %s",
				    strerror(errno));
		goto out;
	}
	ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
	if (!ctx || EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_keygen(ctx, &k) != 1) {
		rc = kiln_error_set(e, KILN_E_IO, dir, "OpenSSL could not make an Ed25519 key");
		goto out;
	}
	if (pem_of(k, 1, &priv) || pem_of(k, 0, &pub)) {
		rc = nomem(dir, e);
		goto out;
	}
	snprintf(line, sizeof line, "%s\n", studio);
	if ((rc = write_new(dir, KILN_KEYS_SIGNING, priv.data, priv.len, e)) ||
	    (rc = write_new(dir, KILN_KEYS_SIGNING_PUB, pub.data, pub.len, e)))
		goto out;
	/* the name may be set again (a key made before, its name file lost): replace it */
	{
		char *sp = kiln_fs_join(dir, KILN_KEYS_STUDIO);
		if (!sp) {
			rc = nomem(dir, e);
			goto out;
		}
		unlink(sp);
		free(sp);
		rc = write_new(dir, KILN_KEYS_STUDIO, line, strlen(line), e);
	}
out:
	if (priv.data)
		OPENSSL_cleanse(priv.data, priv.len);
	kiln_buf_release(&priv);
	kiln_buf_release(&pub);
	EVP_PKEY_free(k);
	EVP_PKEY_CTX_free(ctx);
	free(path);
	return rc;
}

static int read_file(const char *dir, const char *name, struct kiln_buf *b, struct kiln_error *e)
{
	char *path = kiln_fs_join(dir, name);
	int rc;
	if (!path)
		return nomem(dir, e);
	if (!kiln_fs_exists(path)) {
		kiln_error_set(e, KILN_E_STATE, path, "no studio key here");
		rc = kiln_error_hint(e, KILN_HINT_KEYS_INIT, NULL);
	} else {
		rc = kiln_fs_read_limited(path, b, 1 << 16, 0, e);
	}
	free(path);
	return rc;
}

int kiln_ed25519_pub_from_pem(const char *pem, size_t len, uint8_t pub[32])
{
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *k = b ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
	size_t n = 32;
	int rc = k && EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519 &&
			 EVP_PKEY_get_raw_public_key(k, pub, &n) == 1 && n == 32
		 ? 0 : -1;
	EVP_PKEY_free(k);
	BIO_free(b);
	return rc;
}

int kiln_keys_load(const char *dir, int with_private, struct kiln_keys *k, struct kiln_error *e)
{
	struct kiln_buf pub = KILN_BUF_INIT, priv = KILN_BUF_INIT, name = KILN_BUF_INIT;
	int rc;
	memset(k, 0, sizeof *k);
	if ((rc = read_file(dir, KILN_KEYS_SIGNING_PUB, &pub, e)) ||
	    (rc = read_file(dir, KILN_KEYS_STUDIO, &name, e)))
		goto out;
	if (kiln_ed25519_pub_from_pem(pub.data, pub.len, k->pub)) {
		rc = kiln_error_set(e, KILN_E_IO, dir, "%s is not an Ed25519 public key in PEM",
				    KILN_KEYS_SIGNING_PUB);
		goto out;
	}
	while (name.len && (name.data[name.len - 1] == '\n' || name.data[name.len - 1] == '\r'))
		name.data[--name.len] = 0;
	if (name.len >= sizeof k->studio || memchr(name.data, 0, name.len) ||
	    check_studio(name.data, e)) {
		rc = kiln_error_set(e, KILN_E_IO, dir, "%s does not hold a studio name on one line",
				    KILN_KEYS_STUDIO);
		goto out;
	}
	memcpy(k->studio, name.data, name.len + 1);
	if (!(k->pub_pem = kiln_strndup(pub.data, pub.len))) {
		rc = nomem(dir, e);
		goto out;
	}
	kiln_sha256_hex(k->pub, 32, k->key_hint);
	if (with_private) {
		BIO *b;
		EVP_PKEY *pk;
		uint8_t raw[32];
		size_t n = 32;
		if ((rc = read_file(dir, KILN_KEYS_SIGNING, &priv, e)))
			goto out;
		b = BIO_new_mem_buf(priv.data, (int)priv.len);
		pk = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
		BIO_free(b);
		if (!pk || EVP_PKEY_get_base_id(pk) != EVP_PKEY_ED25519 ||
		    EVP_PKEY_get_raw_public_key(pk, raw, &n) != 1 || memcmp(raw, k->pub, 32)) {
			EVP_PKEY_free(pk);
			rc = kiln_error_set(e, KILN_E_IO, dir, "%s is not the Ed25519 private key of "
					    "%s", KILN_KEYS_SIGNING, KILN_KEYS_SIGNING_PUB);
			goto out;
		}
		k->pkey = pk;
	}
out:
	if (priv.data)
		OPENSSL_cleanse(priv.data, priv.len);
	kiln_buf_release(&priv);
	kiln_buf_release(&pub);
	kiln_buf_release(&name);
	if (rc)
		kiln_keys_release(k);
	return rc;
}

void kiln_keys_release(struct kiln_keys *k)
{
	if (!k)
		return;
	free(k->pub_pem);
	EVP_PKEY_free(k->pkey);
	memset(k, 0, sizeof *k);
}

int kiln_keys_sign(const struct kiln_keys *k, const void *msg, size_t n, uint8_t sig[64],
		   struct kiln_error *e)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	size_t sl = 64;
	int ok = c && k->pkey && EVP_DigestSignInit(c, NULL, NULL, NULL, k->pkey) == 1 &&
		 EVP_DigestSign(c, sig, &sl, msg, n) == 1 && sl == 64;
	EVP_MD_CTX_free(c);
	return ok ? 0 : kiln_error_set(e, c ? KILN_E_IO : KILN_E_NOMEM, "signing key",
				       "OpenSSL could not sign with the studio key");
}

int kiln_ed25519_verify(const uint8_t pub[32], const void *msg, size_t n, const uint8_t sig[64])
{
	EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
	EVP_MD_CTX *c = k ? EVP_MD_CTX_new() : NULL;
	int ok = c && EVP_DigestVerifyInit(c, NULL, NULL, NULL, k) == 1 &&
		 EVP_DigestVerify(c, sig, 64, msg, n) == 1;
	EVP_MD_CTX_free(c);
	EVP_PKEY_free(k);
	return ok;
}

uint32_t kiln_note_key_id(const char *name, const uint8_t pub[32])
{
	struct kiln_sha256 h;
	uint8_t d[32], sep[2] = {0x0a, 0x01};
	if (kiln_sha256_init(&h))
		return 0;
	kiln_sha256_update(&h, name, strlen(name));
	kiln_sha256_update(&h, sep, 2);
	kiln_sha256_update(&h, pub, 32);
	kiln_sha256_final(&h, d, NULL);
	return (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
}

int kiln_note_vkey(const char *name, const uint8_t pub[32], char *out, size_t cap)
{
	struct kiln_buf b = KILN_BUF_INIT;
	uint8_t k[33];
	int rc;
	k[0] = 0x01;
	memcpy(k + 1, pub, 32);
	rc = kiln_buf_addf(&b, "%s+%08x+", name, kiln_note_key_id(name, pub)) ||
	     kiln_base64_add(&b, k, 33) || b.len >= cap ? -1 : 0;
	if (!rc)
		memcpy(out, b.data, b.len + 1);
	kiln_buf_release(&b);
	return rc;
}
