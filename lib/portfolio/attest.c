/* attest: DSSE envelopes in Sigstore bundles v0.3, signed with the studio's Ed25519 key.
 *
 * The bundle carries no certificate and no transparency-log entry: the verifier is given the
 * studio's public key (dist/portfolio/keys/), found by the bundle's publicKey.hint; the
 * portfolio's own log and its signed checkpoint play the transparency log's part. The payload
 * type is in-toto's; the signature covers DSSE's PAE of it, never the bare JSON. */
#include "kiln/portfolio.h"
#include "util/base64.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

int kiln_dsse_pae(const char *type, const void *body, size_t len, struct kiln_buf *out)
{
	return kiln_buf_addf(out, "DSSEv1 %zu %s %zu ", strlen(type), type, len) ||
	       kiln_buf_add(out, body, len);
}

int kiln_sigstore_bundle(const struct kiln_keys *k, const char *payload, size_t len,
			 struct kiln_buf *out, struct kiln_error *e)
{
	struct kiln_buf pae = KILN_BUF_INIT, p64 = KILN_BUF_INIT, s64 = KILN_BUF_INIT;
	uint8_t sig[64];
	json_t *b = NULL;
	char *text = NULL;
	int rc;
	if (kiln_dsse_pae(KILN_INTOTO_PAYLOAD_TYPE, payload, len, &pae)) {
		rc = kiln_error_set(e, KILN_E_NOMEM, "bundle", "out of memory");
		goto out;
	}
	if ((rc = kiln_keys_sign(k, pae.data, pae.len, sig, e)))
		goto out;
	if (kiln_base64_add(&p64, payload, len) || kiln_base64_add(&s64, sig, 64) ||
	    !(b = json_pack("{s:s, s:{s:{s:s}, s:[], s:{s:[]}}, s:{s:s, s:s, s:[{s:s, s:s}]}}",
			    "mediaType", KILN_SIGSTORE_BUNDLE_V03, "verificationMaterial",
			    "publicKey", "hint", k->key_hint, "tlogEntries",
			    "timestampVerificationData", "rfc3161Timestamps", "dsseEnvelope",
			    "payload", p64.data, "payloadType", KILN_INTOTO_PAYLOAD_TYPE,
			    "signatures", "sig", s64.data, "keyid", k->key_hint)) ||
	    !(text = json_dumps(b, JSON_INDENT(2) | JSON_PRESERVE_ORDER)) ||
	    kiln_buf_adds(out, text) || kiln_buf_add(out, "\n", 1))
		rc = kiln_error_set(e, KILN_E_NOMEM, "bundle", "out of memory");
out:
	free(text);
	json_decref(b);
	kiln_buf_release(&pae);
	kiln_buf_release(&p64);
	kiln_buf_release(&s64);
	return rc;
}

int kiln_sigstore_bundle_verify(const char *bundle, size_t len, const uint8_t pub[32],
				struct kiln_buf *payload_out, char *why, size_t wcap)
{
	json_t *b = json_loadb(bundle, len, JSON_REJECT_DUPLICATES, NULL), *env, *sigs;
	struct kiln_buf pay = KILN_BUF_INIT, sig = KILN_BUF_INIT, pae = KILN_BUF_INIT;
	const char *p, *s, *type;
	int rc = -1;
	env = json_object_get(b, "dsseEnvelope");
	sigs = json_object_get(env, "signatures");
	p = json_string_value(json_object_get(env, "payload"));
	type = json_string_value(json_object_get(env, "payloadType"));
	s = json_string_value(json_object_get(json_array_get(sigs, 0), "sig"));
	if (!b || !json_is_string(json_object_get(b, "mediaType")) ||
	    strcmp(json_string_value(json_object_get(b, "mediaType")), KILN_SIGSTORE_BUNDLE_V03)) {
		snprintf(why, wcap, "not a Sigstore bundle v0.3 (JSON with mediaType %s)",
			 KILN_SIGSTORE_BUNDLE_V03);
		goto out;
	}
	if (!p || !s || !type || json_array_size(sigs) != 1 ||
	    strcmp(type, KILN_INTOTO_PAYLOAD_TYPE)) {
		snprintf(why, wcap, "the bundle has no in-toto DSSE envelope with one signature");
		goto out;
	}
	if (kiln_base64_decode(p, strlen(p), &pay) || kiln_base64_decode(s, strlen(s), &sig) ||
	    sig.len != 64) {
		snprintf(why, wcap, "the envelope's payload or signature is not base64 (of 64 "
			 "bytes)");
		goto out;
	}
	if (kiln_dsse_pae(type, pay.data ? pay.data : "", pay.len, &pae)) {
		snprintf(why, wcap, "out of memory");
		goto out;
	}
	if (!kiln_ed25519_verify(pub, pae.data, pae.len, (const uint8_t *)sig.data)) {
		snprintf(why, wcap, "the DSSE signature does not verify with the studio key");
		goto out;
	}
	if (payload_out && kiln_buf_add(payload_out, pay.data ? pay.data : "", pay.len)) {
		snprintf(why, wcap, "out of memory");
		goto out;
	}
	rc = 0;
out:
	json_decref(b);
	kiln_buf_release(&pay);
	kiln_buf_release(&sig);
	kiln_buf_release(&pae);
	return rc;
}
