/* x509: the studio's small X.509 chain for C2PA signing, made with OpenSSL.
 *
 * C2PA validators (c2pa-rs' certificate_profile.rs, the spec's "Certificate Profile") accept a
 * signing certificate only when it is X.509 v3, signed with ECDSA/RSA-PSS/Ed25519 and SHA-2,
 * has an EC key on P-256/384/521 (or RSA >= 2048), is not a CA, carries KeyUsage with
 * digitalSignature, an ExtendedKeyUsage from C2PA's list (emailProtection here; never
 * anyExtendedKeyUsage), an AuthorityKeyIdentifier, and no unknown critical extension; and
 * they refuse a self-signed signer. So the studio gets two certificates: a root CA that is
 * the trust anchor a collector is given (published beside the collection), and a leaf it
 * signs that goes into every manifest's x5chain. Both keys are EC P-256 (ES256).
 *
 * Only the leaf's private key is kept (mode 0600): the root's key signs the leaf once and is
 * dropped, so a stolen keys folder cannot mint another signer under the studio's root. A new
 * leaf means a new chain (and a new root to publish); a studio that wants to keep its root
 * keeps it out of kiln.
 */
#include "kiln/portfolio.h"
#include "util/fs.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROOT_DAYS (30 * 365 + 7)
#define LEAF_DAYS (10 * 365 + 2)

static int ossl_err(struct kiln_error *e, const char *where, const char *what)
{
	return kiln_error_set(e, KILN_E_FAILED, where, "OpenSSL could not %s", what);
}

static EVP_PKEY *make_key(void)
{
	return EVP_EC_gen("P-256");
}

/* A positive 127-bit random serial (RFC 5280: at most 20 bytes, unique per issuer). */
static int set_serial(X509 *x)
{
	unsigned char r[16];
	BIGNUM *bn = NULL;
	int ok = 0;
	if (RAND_bytes(r, sizeof r) != 1)
		return 0;
	r[0] &= 0x7f;
	r[0] |= 0x01; /* never zero, never negative */
	bn = BN_bin2bn(r, sizeof r, NULL);
	if (bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
		ok = 1;
	BN_free(bn);
	return ok;
}

static int set_name(X509_NAME *n, const char *studio, const char *cn_suffix)
{
	char cn[256];
	snprintf(cn, sizeof cn, "%.200s %s", studio, cn_suffix);
	return X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
					  -1, 0) == 1 &&
	       X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)studio, -1,
					  -1, 0) == 1;
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok;
	if (!ext)
		return 0;
	ok = X509_add_ext(x, ext, -1) == 1;
	X509_EXTENSION_free(ext);
	return ok;
}

/* A v3 certificate for key, issued by issuer (NULL: self-issued) and signed by ikey. */
static X509 *make_cert(EVP_PKEY *key, const char *studio, const char *cn_suffix, long days,
		       X509 *issuer, EVP_PKEY *ikey, int ca)
{
	X509 *x = X509_new();
	X509V3_CTX ctx;
	if (!x)
		return NULL;
	if (X509_set_version(x, 2) != 1 || !set_serial(x) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, NULL) ||
	    X509_set_pubkey(x, key) != 1 ||
	    !set_name(X509_get_subject_name(x), studio, cn_suffix))
		goto fail;
	if (X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer)
					   : X509_get_subject_name(x)) != 1)
		goto fail;
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	if (!add_ext(x, &ctx, NID_subject_key_identifier, "hash") ||
	    !add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always"))
		goto fail;
	if (ca) {
		if (!add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
		    !add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign"))
			goto fail;
	} else {
		if (!add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") ||
		    !add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature") ||
		    !add_ext(x, &ctx, NID_ext_key_usage, "emailProtection"))
			goto fail;
	}
	if (X509_sign(x, ikey, EVP_sha256()) <= 0)
		goto fail;
	return x;
fail:
	X509_free(x);
	return NULL;
}

/* Write what the BIO holds to dir/name with mode. */
static int write_bio(BIO *b, const char *dir, const char *name, unsigned mode,
		     struct kiln_error *e)
{
	char *path = kiln_fs_join(dir, name), *data = NULL;
	long n = BIO_get_mem_data(b, &data);
	int rc;
	if (!path)
		return kiln_error_set(e, KILN_E_NOMEM, dir, "out of memory");
	rc = kiln_fs_write_atomic_mode(path, data, n > 0 ? (size_t)n : 0, mode, 1, e);
	free(path);
	return rc;
}

static int write_cert(X509 *x, const char *dir, const char *name, struct kiln_error *e)
{
	BIO *b = BIO_new(BIO_s_mem());
	int rc;
	if (!b)
		return kiln_error_set(e, KILN_E_NOMEM, dir, "out of memory");
	if (PEM_write_bio_X509(b, x) != 1)
		rc = ossl_err(e, name, "write the certificate");
	else
		rc = write_bio(b, dir, name, 0644, e);
	BIO_free(b);
	return rc;
}

int kiln_portfolio_x509_make(const char *dir, const char *studio, struct kiln_error *e)
{
	EVP_PKEY *rkey = NULL, *lkey = NULL;
	X509 *root = NULL, *leaf = NULL;
	BIO *b = NULL;
	int rc = 0;
	if (!studio || !*studio || strlen(studio) > 64)
		return kiln_error_set(e, KILN_E_USAGE, dir,
				      "the studio's name must be 1 to 64 bytes (it names the "
				      "certificates)");
	if (!kiln_fs_is_dir(dir))
		return kiln_error_set(e, KILN_E_IO, dir, "no such folder for the keys");
	/* a chain is never replaced silently: every manifest signed with it would stop
	 * chaining to the root the studio published */
	for (int i = 0; i < 3; i++) {
		static const char *const names[] = { KILN_C2PA_LEAF_KEY, KILN_C2PA_LEAF_CERT,
						      KILN_C2PA_ROOT_CERT };
		char *path = kiln_fs_join(dir, names[i]);
		if (!path)
			return kiln_error_set(e, KILN_E_NOMEM, dir, "out of memory");
		if (kiln_fs_exists(path)) {
			rc = kiln_error_set(e, KILN_E_STATE, path,
					    "a C2PA chain is already there: it is never "
					    "replaced (manifests signed with it would no longer "
					    "chain to the published root); move the folder's "
					    "C2PA files away to make a new one");
			free(path);
			return rc;
		}
		free(path);
	}
	rkey = make_key();
	lkey = make_key();
	if (!rkey || !lkey) {
		rc = ossl_err(e, dir, "make an EC P-256 key");
		goto out;
	}
	root = make_cert(rkey, studio, "C2PA Root CA", ROOT_DAYS, NULL, rkey, 1);
	if (!root) {
		rc = ossl_err(e, dir, "make the root certificate");
		goto out;
	}
	leaf = make_cert(lkey, studio, "C2PA Signer", LEAF_DAYS, root, rkey, 0);
	if (!leaf) {
		rc = ossl_err(e, dir, "make the signing certificate");
		goto out;
	}
	/* the key first: a chain whose certificate is on disk without its key is useless, a
	 * key without its certificate is only remade */
	b = BIO_new(BIO_s_mem());
	if (!b) {
		rc = kiln_error_set(e, KILN_E_NOMEM, dir, "out of memory");
		goto out;
	}
	if (PEM_write_bio_PrivateKey(b, lkey, NULL, NULL, 0, NULL, NULL) != 1) {
		rc = ossl_err(e, dir, "write the signing key");
		goto out;
	}
	rc = write_bio(b, dir, KILN_C2PA_LEAF_KEY, 0600, e);
	if (!rc)
		rc = write_cert(leaf, dir, KILN_C2PA_LEAF_CERT, e);
	if (!rc)
		rc = write_cert(root, dir, KILN_C2PA_ROOT_CERT, e);
out:
	BIO_free(b);
	X509_free(root);
	X509_free(leaf);
	EVP_PKEY_free(rkey);
	EVP_PKEY_free(lkey);
	return rc;
}
