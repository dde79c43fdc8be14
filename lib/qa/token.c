/* qa/token.c: the rules for one token's metadata JSON: ERC-721/OpenSea and Metaplex/Sugar
 * (kiln_metacheck_token in kiln/qa.h).
 *
 * Sources for the rules (design.md section 7):
 *   - OpenSea metadata standards: name, description, image, external_url, animation_url,
 *     background_color (six hex digits, no '#'), attributes [{trait_type, value,
 *     display_type?, max_value?}], display_type number | boost_number | boost_percentage |
 *     date (value = unix seconds).
 *   - Sugar (metaplex-foundation/sugar, src/validate/): serde requires name, description,
 *     image and properties.files [{uri, type}]; Metadata::validate checks name <= 32 bytes,
 *     symbol <= 10 bytes, image/animation_url/external_url <= 200 bytes (MAX_NAME_LENGTH,
 *     MAX_SYMBOL_LENGTH, MAX_URI_LENGTH of mpl-token-metadata; Rust's len() counts bytes),
 *     seller_fee_basis_points <= 10000 (a u16), creator shares (u16) summing to exactly 100,
 *     creator addresses that parse as a Pubkey (base58 of 32 bytes), category in
 *     VALID_CATEGORIES (image, video, audio, vr, html; missing = warning, Sugar then defaults
 *     it). Deploy: at most 4 creators (the candy machine takes the fifth slot). Messages quote
 *     Sugar's texts ("Name exceeds 32 chars.") and add what to do.
 * Check ids are stable strings ("metaplex.name_length"): tests, CI gates and severity
 * overrides key on them (lib/spec/qa_checks.c lists them). Each finding carries the file and
 * a JSON path.
 * Invariants: findings own their strings; a check never stops at the first problem (a token
 * reports everything wrong with it); the only failure is running out of memory.
 * Sizes: one parsed token at a time, a few KB; attributes are walked once.
 */
#include "qa/metacheck.h"
#include "util/alloc.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_NAME 32
#define MAX_SYMBOL 10
#define MAX_URI 200
#define MAX_CREATORS 4
#define PLACEHOLDER "NewUriToReplace" /* HashLips' default baseUri */

/* ---- helpers -------------------------------------------------------------------------- */

struct ctx {
	struct kiln_findings *out;
	const char *file;
	unsigned std;
	int rc; /* the first KILN_E_NOMEM */
};

#define ADD(c, id, sev, path, ...)                                                          \
	do {                                                                                \
		if (!(c)->rc)                                                               \
			(c)->rc = kiln_findings_add((c)->out, id, sev, (c)->file, path,      \
						    __VA_ARGS__);                           \
	} while (0)

const char *kiln_mc_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

/* s, or its first 57 bytes and "..." when longer than 60, for a message. */
const char *kiln_mc_clip(const char *s, char *buf, size_t n)
{
	if (strlen(s) <= 60)
		return s;
	snprintf(buf, n, "%.57s...", s);
	return buf;
}

static int has_space_or_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f)
			return 1;
	return 0;
}

/* URI well-formedness as OpenSea accepts it: ipfs://, ar://, https://, http://, data:.
 * NULL when fine, else what is wrong. */
static const char *uri_problem(const char *u)
{
	if (!*u)
		return "is empty";
	if (has_space_or_ctl(u))
		return "contains white space or control characters (percent-encode them, e.g. %20)";
	if (!strncmp(u, "ipfs://", 7)) {
		const char *cid = u + 7;
		size_t n = strcspn(cid, "/?#");
		if (!strncmp(cid, "ipfs/", 5))
			return "repeats the path prefix (ipfs://ipfs/...): write ipfs://<CID>/...";
		if (n == 0)
			return "has no CID after ipfs://";
		if (!strncmp(cid, PLACEHOLDER, strlen(PLACEHOLDER)))
			return NULL; /* reported by the placeholder check */
		for (size_t i = 0; i < n; i++)
			if (!isalnum((unsigned char)cid[i]))
				return "has a CID with characters outside base58/base32";
		if (!((n == 46 && cid[0] == 'Q' && cid[1] == 'm') ||
		      (n >= 50 && (cid[0] == 'b' || cid[0] == 'z' || cid[0] == 'f'))))
			return "has something after ipfs:// that is not a CID (Qm... v0 or b... v1)";
		return NULL;
	}
	if (!strncmp(u, "ar://", 5)) {
		const char *id = u + 5;
		size_t n = strcspn(id, "/?#");
		if (n == 0)
			return "has no transaction id after ar://";
		for (size_t i = 0; i < n; i++)
			if (!isalnum((unsigned char)id[i]) && id[i] != '-' && id[i] != '_')
				return "has an Arweave transaction id outside base64url";
		return NULL;
	}
	if (!strncmp(u, "https://", 8) || !strncmp(u, "http://", 7)) {
		const char *host = strstr(u, "://") + 3;
		size_t n = strcspn(host, "/?#");
		if (n == 0 || host[0] == ':' || host[0] == '.')
			return "has no host name";
		return NULL;
	}
	if (!strncmp(u, "data:", 5)) {
		if (!strchr(u + 5, ','))
			return "is a data: URI without the ',' before its data";
		return NULL;
	}
	return "does not start with ipfs://, ar://, https://, http:// or data:";
}

int kiln_mc_is_number(const json_t *v)
{
	return json_is_integer(v) || json_is_real(v);
}

/* A JSON integer, or a real without a fractional part: its value in *out. */
static int as_integer(const json_t *v, long long *out)
{
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 1;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);
		if (d == floor(d) && fabs(d) < 9e15) {
			*out = (long long)d;
			return 1;
		}
	}
	return 0;
}

/* ---- one token ------------------------------------------------------------------------ */

/* Sugar's serde reads optional fields as Option<T>: an explicit null is the same as absent.
 * ERC-721 (OpenSea) has no such rule, so null stays a type error there. */
static int null_is_absent(const struct ctx *c, const json_t *v)
{
	return json_is_null(v) && (c->std & KILN_META_METAPLEX) && !(c->std & KILN_META_ERC721);
}

static void check_string_field(struct ctx *c, const json_t *root, const char *key, int required,
			       const char *std_id)
{
	const json_t *v = json_object_get(root, key);
	char id[64];
	/* symbol is Sugar's alone (Option<String>), whatever else is checked */
	if (!required && json_is_null(v) && (null_is_absent(c, v) || !strcmp(key, "symbol")))
		v = NULL;
	if (!v) {
		if (required) {
			snprintf(id, sizeof id, "%s.missing_field", std_id);
			ADD(c, id, KILN_SEV_ERROR, key, "required field \"%s\" is missing: add it "
			    "(a string)", key);
		}
		return;
	}
	if (!json_is_string(v))
		ADD(c, "token.field_type", KILN_SEV_ERROR, key, "\"%s\" is %s, not a string: write "
		    "it as a JSON string", key, kiln_mc_type_name(v));
}

static void check_uri_field(struct ctx *c, const json_t *v, const char *path)
{
	const char *why;
	char b[64];
	if (!json_is_string(v))
		return;
	why = uri_problem(json_string_value(v));
	if (why)
		ADD(c, "erc721.uri", KILN_SEV_ERROR, path, "\"%s\" %s: use ipfs://<CID>/<file>, "
		    "ar://<id>, https://... or a data: URI", kiln_mc_clip(json_string_value(v), b, sizeof b),
		    why);
	else if (strstr(json_string_value(v), PLACEHOLDER))
		ADD(c, "erc721.placeholder_uri", KILN_SEV_ERROR, path, "\"%s\" still has HashLips' "
		    "placeholder base URI \"%s\": set baseUri to your CID and regenerate (or update) "
		    "the metadata", kiln_mc_clip(json_string_value(v), b, sizeof b), PLACEHOLDER);
}

static void check_uri_length(struct ctx *c, const json_t *v, const char *path)
{
	size_t len;
	if (!json_is_string(v))
		return;
	len = strlen(json_string_value(v));
	if (len > MAX_URI)
		ADD(c, "metaplex.uri_length", KILN_SEV_ERROR, path, "Url exceeds 200 chars. (%zu "
		    "bytes): Metaplex stores at most %d bytes; shorten the URI", len, MAX_URI);
}

static void check_attributes(struct ctx *c, const json_t *root)
{
	const json_t *attrs = json_object_get(root, "attributes"), *a;
	size_t i;
	char p[96];
	if (!attrs || null_is_absent(c, attrs))
		return;
	if (!json_is_array(attrs)) {
		ADD(c, "attributes.not_array", KILN_SEV_ERROR, "attributes", "\"attributes\" is %s: "
		    "it must be an array of {\"trait_type\": ..., \"value\": ...} objects",
		    kiln_mc_type_name(attrs));
		return;
	}
	json_array_foreach(attrs, i, a) {
		const json_t *tt, *val, *dt, *mx;
		const char *dts = NULL;
		if (!json_is_object(a)) {
			snprintf(p, sizeof p, "attributes[%zu]", i);
			ADD(c, "attributes.entry_type", KILN_SEV_ERROR, p, "attribute %zu is %s: write "
			    "{\"trait_type\": \"...\", \"value\": ...}", i, kiln_mc_type_name(a));
			continue;
		}
		tt = json_object_get(a, "trait_type");
		val = json_object_get(a, "value");
		dt = json_object_get(a, "display_type");
		mx = json_object_get(a, "max_value");
		snprintf(p, sizeof p, "attributes[%zu].trait_type", i);
		if (!tt)
			ADD(c, "attributes.trait_type", KILN_SEV_ERROR, p, "attribute %zu has no "
			    "trait_type: add the trait's name (a string)", i);
		else if (!json_is_string(tt))
			ADD(c, "attributes.trait_type", KILN_SEV_ERROR, p, "trait_type is %s: write the "
			    "trait's name as a string", kiln_mc_type_name(tt));
		else if (!*json_string_value(tt))
			ADD(c, "attributes.trait_type", KILN_SEV_WARNING, p, "trait_type is empty: "
			    "marketplaces show an unnamed trait; name it");
		snprintf(p, sizeof p, "attributes[%zu].value", i);
		if (!val) {
			ADD(c, "attributes.value", KILN_SEV_ERROR, p, "attribute %zu has no value: add "
			    "\"value\" (a string or a number)", i);
		} else if (!json_is_string(val) && !kiln_mc_is_number(val)) {
			ADD(c, "attributes.value", KILN_SEV_ERROR, p, "value is %s: it must be a string "
			    "or a number", kiln_mc_type_name(val));
		} else if ((c->std & KILN_META_METAPLEX) && !json_is_string(val)) {
			/* sugar src/validate/format.rs: Attribute { trait_type: String, value: String }
			 * and serde does not turn numbers into strings: validate and upload fail */
			ADD(c, "metaplex.attribute_value", KILN_SEV_ERROR, p, "value is a number: "
			    "Sugar reads attribute values as strings (Attribute.value: String) and "
			    "rejects the file; quote it (\"%g\")", json_number_value(val));
		}
		if (dt) {
			snprintf(p, sizeof p, "attributes[%zu].display_type", i);
			if (!json_is_string(dt)) {
				ADD(c, "attributes.display_type", KILN_SEV_ERROR, p, "display_type is %s: "
				    "use one of number, boost_number, boost_percentage, date",
				    kiln_mc_type_name(dt));
			} else {
				char b[64];
				dts = json_string_value(dt);
				if (strcmp(dts, "number") && strcmp(dts, "boost_number") &&
				    strcmp(dts, "boost_percentage") && strcmp(dts, "date")) {
					ADD(c, "attributes.display_type", KILN_SEV_ERROR, p, "display_type "
					    "\"%s\" is unknown: use number, boost_number, boost_percentage "
					    "or date (or leave it out for a text trait)",
					    kiln_mc_clip(dts, b, sizeof b));
					dts = NULL;
				}
			}
		}
		snprintf(p, sizeof p, "attributes[%zu].value", i);
		if (dts && val && !kiln_mc_is_number(val)) {
			ADD(c, "attributes.display_value", KILN_SEV_ERROR, p, "display_type \"%s\" needs "
			    "a numeric value, found %s: write the number without quotes", dts,
			    kiln_mc_type_name(val));
		} else if (dts && val && !strcmp(dts, "date")) {
			long long t;
			if (!as_integer(val, &t) || t < 0)
				ADD(c, "attributes.date", KILN_SEV_ERROR, p, "a date must be whole unix "
				    "seconds (e.g. 1700000000)");
			else if (t > 100000000000LL)
				ADD(c, "attributes.date", KILN_SEV_WARNING, p, "date %lld looks like "
				    "milliseconds: OpenSea expects unix seconds; divide by 1000", t);
		}
		if (mx) {
			snprintf(p, sizeof p, "attributes[%zu].max_value", i);
			if (!kiln_mc_is_number(mx))
				ADD(c, "attributes.max_value", KILN_SEV_ERROR, p, "max_value is %s: it must "
				    "be a number", kiln_mc_type_name(mx));
			else if (val && kiln_mc_is_number(val) &&
				 json_number_value(val) > json_number_value(mx))
				ADD(c, "attributes.max_value", KILN_SEV_WARNING, p, "value %g is above "
				    "max_value %g: raise max_value or fix the value",
				    json_number_value(val), json_number_value(mx));
		}
	}
}

static void check_erc721(struct ctx *c, const json_t *root)
{
	const json_t *bg = json_object_get(root, "background_color");
	static const char *const uris[] = {"image", "external_url", "animation_url"};
	check_string_field(c, root, "name", 1, "erc721");
	check_string_field(c, root, "description", 1, "erc721");
	if (json_object_get(root, "image") || !json_object_get(root, "image_data"))
		check_string_field(c, root, "image", 1, "erc721");
	check_string_field(c, root, "external_url", 0, "erc721");
	check_string_field(c, root, "animation_url", 0, "erc721");
	for (size_t i = 0; i < 3; i++)
		check_uri_field(c, json_object_get(root, uris[i]), uris[i]);
	if (bg) {
		const char *s = json_is_string(bg) ? json_string_value(bg) : NULL;
		int ok = s && strlen(s) == 6;
		char b[64];
		for (int i = 0; ok && i < 6; i++)
			ok = isxdigit((unsigned char)s[i]) != 0;
		if (!ok)
			ADD(c, "erc721.background_color", KILN_SEV_ERROR, "background_color", "%s%s%s "
			    "is not six hex digits: write e.g. \"ff8800\"%s", s ? "\"" : "",
			    s ? kiln_mc_clip(s, b, sizeof b) : kiln_mc_type_name(bg), s ? "\"" : "",
			    s && s[0] == '#' ? " (without the '#')" : "");
	}
}

static void check_creators(struct ctx *c, const json_t *creators)
{
	size_t i, n = json_array_size(creators);
	long long sum = 0;
	int shares_ok = 1;
	char p[96], b[64];
	json_t *cr;
	if (n > MAX_CREATORS)
		ADD(c, "metaplex.creators_count", KILN_SEV_ERROR, "properties.creators", "%zu "
		    "creators: a candy machine deploys at most %d (it takes the fifth slot itself); "
		    "merge or drop creators", n, MAX_CREATORS);
	json_array_foreach(creators, i, cr) {
		const json_t *addr = json_object_get(cr, "address");
		const json_t *share = json_object_get(cr, "share");
		long long s;
		unsigned char key[64];
		if (!json_is_object(cr)) {
			snprintf(p, sizeof p, "properties.creators[%zu]", i);
			ADD(c, "metaplex.creators", KILN_SEV_ERROR, p, "creator %zu is %s: write "
			    "{\"address\": ..., \"share\": ...}", i, kiln_mc_type_name(cr));
			shares_ok = 0;
			continue;
		}
		snprintf(p, sizeof p, "properties.creators[%zu].address", i);
		if (!json_is_string(addr))
			ADD(c, "metaplex.creator_address", KILN_SEV_ERROR, p, "creator %zu has no "
			    "address string: give the creator's wallet (base58)", i);
		else if (kiln_base58_decode(json_string_value(addr), key, sizeof key) != 32)
			ADD(c, "metaplex.creator_address", KILN_SEV_ERROR, p, "Creator address: %s is "
			    "invalid. (not the base58 form of a 32-byte public key): copy the wallet "
			    "address again", kiln_mc_clip(json_string_value(addr), b, sizeof b));
		snprintf(p, sizeof p, "properties.creators[%zu].share", i);
		/* Creator.share is a u16 in Sugar's serde: a JSON integer, never 50.0 */
		if (!share || !json_is_integer(share) || (s = json_integer_value(share)) < 0 ||
		    s > 100) {
			ADD(c, "metaplex.creator_share", KILN_SEV_ERROR, p, "creator %zu's share must be "
			    "a whole number from 0 to 100 (a percentage)", i);
			shares_ok = 0;
		} else {
			sum += s;
		}
	}
	if (shares_ok && n && sum != 100)
		ADD(c, "metaplex.creator_shares", KILN_SEV_ERROR, "properties.creators", "Creators' "
		    "share does not equal 100%%. (they add up to %lld): make the shares sum to "
		    "exactly 100", sum);
}

static void check_files(struct ctx *c, const json_t *files)
{
	size_t i;
	json_t *f;
	char p[96], b[64];
	if (!json_array_size(files))
		ADD(c, "metaplex.files", KILN_SEV_WARNING, "properties.files", "properties.files is "
		    "empty: list at least the image file");
	json_array_foreach(files, i, f) {
		const json_t *uri = json_object_get(f, "uri"), *ty = json_object_get(f, "type");
		if (!json_is_object(f)) {
			snprintf(p, sizeof p, "properties.files[%zu]", i);
			ADD(c, "metaplex.file_entry", KILN_SEV_ERROR, p, "file entry %zu is %s: write "
			    "{\"uri\": ..., \"type\": ...}", i, kiln_mc_type_name(f));
			continue;
		}
		snprintf(p, sizeof p, "properties.files[%zu].uri", i);
		if (!json_is_string(uri) || !*json_string_value(uri)) {
			ADD(c, "metaplex.file_entry", KILN_SEV_ERROR, p, "file entry %zu has no uri "
			    "string: give the file name (or its URI)", i);
		} else {
			check_uri_length(c, uri, p);
			if (c->std & KILN_META_ERC721)
				check_uri_field(c, uri, p);
		}
		snprintf(p, sizeof p, "properties.files[%zu].type", i);
		/* FileAttr.file_type is a plain String to Sugar: any string passes validate and
		 * upload; wallets and explorers read it as a MIME type, so "png" is a warning */
		if (!json_is_string(ty))
			ADD(c, "metaplex.file_entry", KILN_SEV_ERROR, p, "file entry %zu has no \"type\" "
			    "string: Sugar rejects the file; add e.g. \"image/png\"", i);
		else if (!strchr(json_string_value(ty), '/'))
			ADD(c, "metaplex.file_type", KILN_SEV_WARNING, p, "type \"%s\" is not a MIME "
			    "type: Sugar accepts it, but wallets expect e.g. \"image/png\"",
			    kiln_mc_clip(json_string_value(ty), b, sizeof b));
	}
}

static void check_metaplex(struct ctx *c, const json_t *root)
{
	const json_t *v, *props, *files, *cat, *creators;
	char b[64];
	check_string_field(c, root, "name", 1, "metaplex");
	check_string_field(c, root, "description", 1, "metaplex");
	check_string_field(c, root, "image", 1, "metaplex");
	check_string_field(c, root, "symbol", 0, "metaplex");
	v = json_object_get(root, "name");
	if (json_is_string(v) && strlen(json_string_value(v)) > MAX_NAME)
		ADD(c, "metaplex.name_length", KILN_SEV_ERROR, "name", "Name exceeds 32 chars. "
		    "(\"%s\" is %zu bytes): shorten it; Metaplex stores at most 32 bytes (UTF-8)",
		    kiln_mc_clip(json_string_value(v), b, sizeof b), strlen(json_string_value(v)));
	v = json_object_get(root, "symbol");
	if (json_is_string(v) && strlen(json_string_value(v)) > MAX_SYMBOL)
		ADD(c, "metaplex.symbol_length", KILN_SEV_ERROR, "symbol", "Symbol exceeds 10 chars. "
		    "(\"%s\" is %zu bytes): use a symbol of at most 10 bytes",
		    kiln_mc_clip(json_string_value(v), b, sizeof b), strlen(json_string_value(v)));
	check_uri_length(c, json_object_get(root, "image"), "image");
	check_uri_length(c, json_object_get(root, "animation_url"), "animation_url");
	check_uri_length(c, json_object_get(root, "external_url"), "external_url");
	v = json_object_get(root, "seller_fee_basis_points");
	if (v) {
		long long n;
		/* Option<u16> in Sugar's serde: null is absent, 500.0 is rejected */
		if (json_is_null(v))
			;
		else if (!json_is_integer(v) || (n = json_integer_value(v)) < 0)
			ADD(c, "metaplex.seller_fee", KILN_SEV_ERROR, "seller_fee_basis_points",
			    "seller_fee_basis_points must be a whole number from 0 to 10000 (basis "
			    "points: 500 = 5%%)");
		else if (n > 10000)
			ADD(c, "metaplex.seller_fee", KILN_SEV_ERROR, "seller_fee_basis_points",
			    "Seller fee basis points must be between 0 and 10,000. (found %lld): "
			    "10000 is 100%%", n);
	}
	props = json_object_get(root, "properties");
	if (!props || !json_is_object(props)) {
		ADD(c, "metaplex.properties", KILN_SEV_ERROR, "properties", "\"properties\" is %s: "
		    "Sugar needs an object with files [{\"uri\", \"type\"}], category and creators",
		    props ? kiln_mc_type_name(props) : "missing");
		return;
	}
	files = json_object_get(props, "files");
	if (!files)
		ADD(c, "metaplex.files", KILN_SEV_ERROR, "properties.files", "properties.files is "
		    "missing: list the asset's files, e.g. [{\"uri\": \"0.png\", \"type\": "
		    "\"image/png\"}]");
	else if (!json_is_array(files))
		ADD(c, "metaplex.files", KILN_SEV_ERROR, "properties.files", "properties.files is %s: "
		    "it must be an array of {\"uri\", \"type\"}", kiln_mc_type_name(files));
	else
		check_files(c, files);
	cat = json_object_get(props, "category");
	if (json_is_null(cat)) /* Option<String>: Sugar defaults it as if missing */
		cat = NULL;
	if (!cat)
		ADD(c, "metaplex.category", KILN_SEV_WARNING, "properties.category", "missing "
		    "`properties.category`: Sugar defaults it to %s; set it explicitly (image, video, "
		    "audio, vr or html)", json_object_get(root, "animation_url") &&
		    !json_is_null(json_object_get(root, "animation_url")) ? "video" : "image");
	else if (!json_is_string(cat) ||
		 (strcmp(json_string_value(cat), "image") && strcmp(json_string_value(cat), "video") &&
		  strcmp(json_string_value(cat), "audio") && strcmp(json_string_value(cat), "vr") &&
		  strcmp(json_string_value(cat), "html")))
		ADD(c, "metaplex.category", KILN_SEV_ERROR, "properties.category", "Invalid category "
		    "'%s': must be one of: [\"image\", \"video\", \"audio\", \"vr\", \"html\"]",
		    json_is_string(cat) ? kiln_mc_clip(json_string_value(cat), b, sizeof b) : kiln_mc_type_name(cat));
	creators = json_object_get(props, "creators");
	if (json_is_null(creators)) /* Option<Vec<Creator>> */
		creators = NULL;
	if (creators && !json_is_array(creators))
		ADD(c, "metaplex.creators", KILN_SEV_ERROR, "properties.creators", "properties.creators "
		    "is %s: it must be an array of {\"address\", \"share\"}", kiln_mc_type_name(creators));
	else if (creators)
		check_creators(c, creators);
}

int kiln_metacheck_token(const json_t *root, unsigned standards, const char *file,
			 struct kiln_findings *out, struct kiln_error *e)
{
	struct ctx c = {out, file, standards, 0};
	if (!json_is_object(root)) {
		ADD(&c, "token.not_object", KILN_SEV_ERROR, "", "the file holds %s, not a JSON "
		    "object: a token's metadata is one {...} object", root ? kiln_mc_type_name(root) :
		    "nothing");
		goto out;
	}
	if (standards & KILN_META_ERC721)
		check_erc721(&c, root);
	if (standards & KILN_META_METAPLEX)
		check_metaplex(&c, root);
	check_attributes(&c, root);
out:
	if (c.rc)
		return kiln_error_set(e, KILN_E_NOMEM, file, "out of memory while checking metadata");
	return 0;
}

/* Parse text; invalid JSON becomes a finding (NULL returned, *rc 0 unless out of memory). */
json_t *kiln_mc_parse(const char *text, size_t len, const char *file, struct kiln_findings *out,
		     int *rc)
{
	json_error_t je;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	*rc = 0;
	if (!root)
		*rc = kiln_findings_add(out, "token.json_parse", KILN_SEV_ERROR, file, "", "not valid "
					"JSON at line %d, column %d: %s; fix the syntax (an editor "
					"with a JSON linter shows where)", je.line, je.column, je.text);
	return root;
}

int kiln_metacheck_token_text(const char *text, size_t len, unsigned standards, const char *file,
			      struct kiln_findings *out, struct kiln_error *e)
{
	int rc;
	json_t *root = kiln_mc_parse(text, len, file, out, &rc);
	if (rc)
		return kiln_error_set(e, KILN_E_NOMEM, file, "out of memory while checking metadata");
	if (!root)
		return 0;
	rc = kiln_metacheck_token(root, standards, file, out, e);
	json_decref(root);
	return rc;
}

