/* metadata: the metadata: block of kiln.yaml: token names and ids, image URIs, targets
 * (ERC-721, ERC-1155, Metaplex), display types, extra attributes, the contract-level JSON,
 * Metaplex's creators and collection, and the pre-reveal set.
 *
 * Marketplace rules are checked on the spec's values here (Metaplex/Sugar byte limits,
 * creator shares adding up to 100, base58 keys, Ethereum addresses), so every file a release
 * writes passes the marketplace's own validator. Sizes: tens of attributes; nothing is hot.
 */
#include "spec/internal.h"
#include "util/alloc.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- metadata sub-blocks: display types, extra attributes, contract, metaplex, reveal --- */

static const char *const display_names[] = {
	[KILN_DISPLAY_NONE] = "text", [KILN_DISPLAY_NUMBER] = "number",
	[KILN_DISPLAY_BOOST_NUMBER] = "boost_number",
	[KILN_DISPLAY_BOOST_PERCENTAGE] = "boost_percentage", [KILN_DISPLAY_DATE] = "date",
};
#define NDISPLAY (sizeof display_names / sizeof display_names[0])

const char *kiln_display_name(enum kiln_display d)
{
	return d > KILN_DISPLAY_NONE && (size_t)d < NDISPLAY ? display_names[d] : NULL;
}

static int get_display(struct ctx *c, struct fy_node *n, const char *what, enum kiln_display *out)
{
	const char *v = fy_node_get_type(n) == FYNT_SCALAR ? fy_node_get_scalar0(n) : NULL;
	char list[256];
	for (size_t i = 0; v && i < NDISPLAY; i++)
		if (!strcmp(v, display_names[i])) {
			*out = (enum kiln_display)i;
			return 0;
		}
	list_names(list, sizeof list, display_names, NDISPLAY);
	return fail(c, n, "%s: unknown display_type '%s' (one of: %s)", what, v ? v : type_name(n),
		    list);
}

/* A value shown with display type d must be a number (an integer, unix seconds, for date). */
static int numeric_ok(const char *v, enum kiln_display d)
{
	char *end;
	errno = 0;
	if (d == KILN_DISPLAY_DATE) {
		if (!*v || (strtoll(v, &end, 10), *end) || errno)
			return 0;
		return 1;
	}
	return *v && isfinite(strtod(v, &end)) && !*end && !errno;
}

/* {display_type: T, max_value: N} or just T */
static int parse_display_spec(struct ctx *c, struct fy_node *n, const char *what,
			      enum kiln_display *type, int *has_max, double *max_value)
{
	static const char *const keys[] = {"display_type", "max_value"};
	struct fy_node *v;
	int rc;
	if (fy_node_get_type(n) == FYNT_SCALAR)
		return get_display(c, n, what, type);
	if ((rc = want_map(c, n, what)) || (rc = check_keys(c, n, what, keys, 2)))
		return rc;
	if (!(v = get(n, "display_type")))
		return fail(c, n, "%s needs a display_type (number, boost_number, boost_percentage "
			    "or date)", what);
	if ((rc = get_display(c, v, what, type)))
		return rc;
	if ((v = get(n, "max_value"))) {
		if (*type == KILN_DISPLAY_DATE || *type == KILN_DISPLAY_NONE)
			return fail(c, v, "%s: max_value goes with display_type number, boost_number "
				    "or boost_percentage", what);
		if ((rc = get_double(c, v, "max_value", max_value)))
			return rc;
		*has_max = 1;
	}
	return 0;
}

/* metadata.display: {Layer: number | {display_type, max_value}} */
static int parse_meta_display(struct ctx *c, struct fy_node *n)
{
	struct kiln_spec *s = c->s;
	struct fy_node_pair *p;
	void *it = NULL;
	int rc;
	if ((rc = want_map(c, n, "metadata.display")))
		return rc;
	s->layer_display = kiln_calloc(s->nlayers + 1, sizeof *s->layer_display);
	if (!s->layer_display)
		return nomem(c);
	while ((p = fy_node_mapping_iterate(n, &it))) {
		struct fy_node *k = fy_node_pair_key(p), *v = fy_node_pair_value(p);
		const char *name = fy_node_get_type(k) == FYNT_SCALAR ? fy_node_get_scalar0(k) : NULL;
		long l = name ? kiln_spec_layer_index(s, name) : -1;
		struct kiln_layer_display *d;
		char what[300];
		if (l < 0)
			return fail(c, k, "metadata.display names layer '%s', which does not exist",
				    name ? name : "?");
		d = &s->layer_display[l];
		snprintf(what, sizeof what, "metadata.display.%s", name);
		if ((rc = parse_display_spec(c, v, what, &d->type, &d->has_max, &d->max_value)))
			return rc;
		for (size_t t = 0; d->type != KILN_DISPLAY_NONE && t < s->layers[l].ntraits; t++) {
			const struct kiln_trait *tr = &s->layers[l].traits[t];
			if (!tr->is_none && !numeric_ok(tr->name, d->type))
				return fail(c, k, "metadata.display shows layer '%s' as %s, but its "
					    "value '%s' (line %d) is not %s: name the values with "
					    "numbers, or drop the display type", name,
					    display_names[d->type], tr->name, tr->loc.line,
					    d->type == KILN_DISPLAY_DATE ? "a whole number of unix "
					    "seconds" : "a number");
		}
	}
	return 0;
}

/* metadata.attributes: [{trait_type, value, display_type?, max_value?}] */
static int parse_meta_attrs(struct ctx *c, struct fy_node *n)
{
	static const char *const keys[] = {"trait_type", "value", "display_type", "max_value"};
	struct kiln_spec *s = c->s;
	struct fy_node *v;
	void *it = NULL;
	int rc;
	if ((rc = want_seq(c, n, "metadata.attributes")))
		return rc;
	s->meta_attrs = kiln_calloc((size_t)fy_node_sequence_item_count(n) + 1,
				    sizeof *s->meta_attrs);
	if (!s->meta_attrs)
		return nomem(c);
	while ((v = fy_node_sequence_iterate(n, &it))) {
		struct kiln_meta_attr *a = &s->meta_attrs[s->nmeta_attrs++];
		struct fy_node *x;
		if ((rc = want_map(c, v, "an attribute")) ||
		    (rc = check_keys(c, v, "an attribute", keys, 4)))
			return rc;
		if (!(x = get(v, "trait_type")))
			return fail(c, v, "an attribute needs trait_type and value");
		if ((rc = get_nonempty(c, x, "trait_type", &a->trait_type)))
			return rc;
		if (kiln_spec_layer_index(s, a->trait_type) >= 0)
			return fail(c, x, "attribute '%s' has the name of a layer: tokens would show "
				    "it twice", a->trait_type);
		for (size_t i = 0; i + 1 < s->nmeta_attrs; i++)
			if (!strcmp(s->meta_attrs[i].trait_type, a->trait_type))
				return fail(c, x, "two attributes are named '%s'", a->trait_type);
		if (!(x = get(v, "value")))
			return fail(c, v, "attribute '%s' has no value", a->trait_type);
		if ((rc = get_str(c, x, "attribute value", &a->value)))
			return rc;
		if ((x = get(v, "display_type"))) {
			struct fy_node *mx = get(v, "max_value");
			if ((rc = get_display(c, x, "an attribute", &a->display)))
				return rc;
			if (a->display != KILN_DISPLAY_NONE && !numeric_ok(a->value, a->display))
				return fail(c, get(v, "value"), "attribute '%s' is shown as %s: its value "
					    "must be %s, got '%s'", a->trait_type,
					    display_names[a->display], a->display == KILN_DISPLAY_DATE ?
					    "a whole number of unix seconds" : "a number", a->value);
			if (mx && (a->display == KILN_DISPLAY_DATE || a->display == KILN_DISPLAY_NONE))
				return fail(c, mx, "max_value goes with display_type number, "
					    "boost_number or boost_percentage");
		}
		if ((x = get(v, "max_value"))) {
			if (a->display == KILN_DISPLAY_NONE)
				return fail(c, x, "max_value needs a display_type (number)");
			if ((rc = get_double(c, x, "max_value", &a->max_value)))
				return rc;
			a->has_max = 1;
		}
	}
	return 0;
}

/* An image of the contract: a URI, or a project file. */
static int get_image_ref(struct ctx *c, struct fy_node *n, const char *what, char **out)
{
	int rc = get_nonempty(c, n, what, out);
	if (rc || strstr(*out, "://"))
		return rc;
	return check_file(c, n, *out, what);
}

static int is_eth_address(const char *a)
{
	if (strncmp(a, "0x", 2) || strlen(a) != 42)
		return 0;
	for (a += 2; *a; a++)
		if (!isxdigit((unsigned char)*a))
			return 0;
	return 1;
}

static int parse_meta_contract(struct ctx *c, struct fy_node *n)
{
	static const char *const keys[] = {"name", "description", "image", "banner_image",
					   "featured_image", "external_link", "collaborators"};
	struct kiln_contract_meta *m = &c->s->contract;
	struct fy_node *v, *x;
	void *it = NULL;
	int rc;
	if ((rc = want_map(c, n, "metadata.contract")) ||
	    (rc = check_keys(c, n, "metadata.contract", keys, 7)))
		return rc;
	if ((v = get(n, "name")) && (rc = get_nonempty(c, v, "metadata.contract.name", &m->name)))
		return rc;
	if ((v = get(n, "description")) &&
	    (rc = get_str(c, v, "metadata.contract.description", &m->description)))
		return rc;
	if ((v = get(n, "image")) && (rc = get_image_ref(c, v, "metadata.contract.image",
							   &m->image)))
		return rc;
	if ((v = get(n, "banner_image")) &&
	    (rc = get_image_ref(c, v, "metadata.contract.banner_image", &m->banner_image)))
		return rc;
	if ((v = get(n, "featured_image")) &&
	    (rc = get_image_ref(c, v, "metadata.contract.featured_image", &m->featured_image)))
		return rc;
	if ((v = get(n, "external_link")) &&
	    (rc = get_nonempty(c, v, "metadata.contract.external_link", &m->external_link)))
		return rc;
	if (!(v = get(n, "collaborators")))
		return 0;
	if ((rc = want_seq(c, v, "metadata.contract.collaborators")))
		return rc;
	m->collaborators = kiln_calloc((size_t)fy_node_sequence_item_count(v) + 1,
				       sizeof *m->collaborators);
	if (!m->collaborators)
		return nomem(c);
	while ((x = fy_node_sequence_iterate(v, &it))) {
		char **a = &m->collaborators[m->ncollaborators++];
		if ((rc = get_nonempty(c, x, "a collaborator", a)))
			return rc;
		if (!is_eth_address(*a))
			return fail(c, x, "collaborator '%s' is not an Ethereum address (0x and 40 hex "
				    "digits)", *a);
	}
	return 0;
}

/* Length in bytes of the public key that base58 text a encodes, or 0 if it is not base58. */
static size_t base58_len(const char *a)
{
	static const char alphabet[] =
		"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
	unsigned char num[64] = {0}; /* big-endian, num[63] least significant */
	size_t zeros = 0, used = 0;
	const char *p = a;
	while (*p == '1')
		zeros++, p++;
	for (; *p; p++) {
		const char *d = strchr(alphabet, *p);
		unsigned carry;
		if (!d || !*d)
			return 0;
		carry = (unsigned)(d - alphabet);
		for (size_t i = 64; i-- > 0;) {
			carry += 58u * num[i];
			num[i] = (unsigned char)(carry & 0xff);
			carry >>= 8;
		}
		if (carry)
			return 0; /* more than 64 bytes */
	}
	for (used = 64; used > 0 && num[64 - used] == 0; used--)
		;
	return zeros + used;
}

static int parse_meta_metaplex(struct ctx *c, struct fy_node *n)
{
	static const char *const keys[] = {"seller_fee_basis_points", "creators", "collection"};
	struct kiln_spec *s = c->s;
	struct fy_node *v, *x;
	void *it = NULL;
	unsigned sum = 0;
	uint64_t u;
	int rc;
	if ((rc = want_map(c, n, "metadata.metaplex")) ||
	    (rc = check_keys(c, n, "metadata.metaplex", keys, 3)))
		return rc;
	if ((v = get(n, "seller_fee_basis_points"))) {
		if ((rc = get_u64(c, v, "metadata.metaplex.seller_fee_basis_points", 0, 10000, &u)))
			return rc;
		s->seller_fee_bps = (unsigned)u;
	}
	if ((v = get(n, "collection"))) {
		static const char *const ckeys[] = {"name", "image", "description"};
		if ((rc = want_map(c, v, "metadata.metaplex.collection")) ||
		    (rc = check_keys(c, v, "metadata.metaplex.collection", ckeys, 3)))
			return rc;
		if (!(x = get(v, "name")) || !get(v, "image"))
			return fail(c, v, "metadata.metaplex.collection needs a name and an image "
				    "(a project file)");
		if ((rc = get_nonempty(c, x, "metadata.metaplex.collection.name",
				       &s->mpl_collection_name)))
			return rc;
		if (strlen(s->mpl_collection_name) > 32)
			return fail(c, x, "metadata.metaplex.collection.name is %zu bytes: Metaplex "
				    "allows at most 32", strlen(s->mpl_collection_name));
		x = get(v, "image");
		if ((rc = get_nonempty(c, x, "metadata.metaplex.collection.image",
				       &s->mpl_collection_image)) ||
		    (rc = check_file(c, x, s->mpl_collection_image, "metaplex collection image")))
			return rc;
		if ((x = get(v, "description")) &&
		    (rc = get_str(c, x, "metadata.metaplex.collection.description",
				  &s->mpl_collection_description)))
			return rc;
	}
	if (!(v = get(n, "creators")))
		return 0;
	if ((rc = want_seq(c, v, "metadata.metaplex.creators")))
		return rc;
	if (fy_node_sequence_item_count(v) > 4)
		return fail(c, v, "metadata.metaplex.creators lists %d creators: a candy machine "
			    "takes at most 4", fy_node_sequence_item_count(v));
	s->creators = kiln_calloc((size_t)fy_node_sequence_item_count(v) + 1, sizeof *s->creators);
	if (!s->creators)
		return nomem(c);
	while ((x = fy_node_sequence_iterate(v, &it))) {
		static const char *const ckeys[] = {"address", "share"};
		struct kiln_creator *cr = &s->creators[s->ncreators++];
		struct fy_node *y;
		if ((rc = want_map(c, x, "a creator")) ||
		    (rc = check_keys(c, x, "a creator", ckeys, 2)))
			return rc;
		if (!(y = get(x, "address")) || !get(x, "share"))
			return fail(c, x, "a creator needs an address and a share");
		if ((rc = get_nonempty(c, y, "creator address", &cr->address)))
			return rc;
		if (base58_len(cr->address) != 32)
			return fail(c, y, "creator address '%s' is not a Solana public key (base58 of "
				    "32 bytes)", cr->address);
		for (size_t i = 0; i + 1 < s->ncreators; i++)
			if (!strcmp(s->creators[i].address, cr->address))
				return fail(c, y, "creator '%s' is listed twice", cr->address);
		if ((rc = get_u64(c, get(x, "share"), "creator share", 0, 100, &u)))
			return rc;
		cr->share = (unsigned)u;
		sum += cr->share;
	}
	if (s->ncreators && sum != 100)
		return fail(c, v, "the creators' shares add up to %u: they must add up to 100", sum);
	return 0;
}

static int parse_meta_reveal(struct ctx *c, struct fy_node *n)
{
	static const char *const keys[] = {"hidden_image", "name", "description"};
	struct kiln_spec *s = c->s;
	struct fy_node *v;
	int rc;
	if ((rc = want_map(c, n, "metadata.reveal")) ||
	    (rc = check_keys(c, n, "metadata.reveal", keys, 3)))
		return rc;
	if (!(v = get(n, "hidden_image")))
		return fail(c, n, "metadata.reveal needs hidden_image: the one image every token "
			    "shows before the reveal");
	if ((rc = get_nonempty(c, v, "metadata.reveal.hidden_image", &s->reveal_image)) ||
	    (rc = check_file(c, v, s->reveal_image, "metadata.reveal.hidden_image")))
		return rc;
	if ((v = get(n, "name")) && (rc = get_nonempty(c, v, "metadata.reveal.name",
						       &s->reveal_name)))
		return rc;
	if ((v = get(n, "description")) &&
	    (rc = get_str(c, v, "metadata.reveal.description", &s->reveal_description)))
		return rc;
	return 0;
}

/* Bytes of the longest name pattern expands to over ids lo..hi ({id} is widest at hi). */
static size_t pattern_len(const char *pat, const char *name, uint64_t hi)
{
	char id[32];
	size_t n = 0;
	snprintf(id, sizeof id, "%llu", (unsigned long long)hi);
	while (*pat) {
		if (!strncmp(pat, "{id}", 4))
			n += strlen(id), pat += 4;
		else if (!strncmp(pat, "{name}", 6))
			n += strlen(name), pat += 6;
		else
			n++, pat++;
	}
	return n;
}

/* Sugar's rules (name <= 32 bytes, symbol <= 10, URIs <= 200), checked on the spec's values
 * so that every asset a release writes passes `sugar validate`. */
static int check_metaplex(struct ctx *c, struct fy_node *meta)
{
	struct kiln_spec *s = c->s;
	struct fy_node *root = fy_document_root(fy_node_document(meta));
	struct fy_node *coll = root ? get(root, "collection") : NULL, *v;
	const char *pat = s->name_pattern ? s->name_pattern : "{name} #{id}";
	uint64_t hi = s->start_id + s->size - 1;
	size_t len = pattern_len(pat, s->name, hi);
	/* Sugar pairs i.json with i.(jpg|jpeg|gif|png) only (upload/assets.rs, get_asset_pairs):
	 * a WebP asset is rejected at upload. Converting for Metaplex alone would give it other
	 * bytes than the images the provenance hash covers, so the combination is refused. */
	if (s->format == KILN_FORMAT_WEBP)
		return fail(c, get(get(root, "image"), "format") ? get(get(root, "image"), "format")
								: get(meta, "targets"),
			    "image.format webp cannot go to Metaplex: Sugar takes only png, jpg/jpeg "
			    "or gif assets. Use image.format png or jpeg, or drop metaplex from "
			    "metadata.targets");
	if ((v = get(get(meta, "metaplex"), "collection")) && s->mpl_collection_image) {
		const char *dot = strrchr(s->mpl_collection_image, '.');
		static const char *const ok[] = {"png", "jpg", "jpeg", "gif"};
		size_t k = 0;
		while (dot && k < 4 && strcasecmp(dot + 1, ok[k]))
			k++;
		if (!dot || k == 4)
			return fail(c, get(v, "image") ? get(v, "image") : v, "metadata.metaplex."
				    "collection.image '%s' is not png, jpg/jpeg or gif, the only "
				    "images Sugar uploads", s->mpl_collection_image);
	}
	if (len > 32)
		return fail(c, get(meta, "name") ? get(meta, "name") : get(coll, "name"),
			    "token names are up to %zu bytes (\"%s\" with id %llu) but Metaplex "
			    "allows 32: shorten metadata.name or collection.name", len, pat,
			    (unsigned long long)hi);
	if (s->symbol && strlen(s->symbol) > 10)
		return fail(c, get(coll, "symbol"), "collection.symbol is %zu bytes: Metaplex allows "
			    "at most 10", strlen(s->symbol));
	if (s->external_url && strlen(s->external_url) > 200)
		return fail(c, get(coll, "external_url"), "collection.external_url is %zu bytes: "
			    "Metaplex allows URIs of at most 200", strlen(s->external_url));
	if (s->reveal_name && pattern_len(s->reveal_name, s->name, hi) > 32)
		return fail(c, get(get(meta, "reveal"), "name"), "pre-reveal names are up to %zu "
			    "bytes but Metaplex allows 32", pattern_len(s->reveal_name, s->name, hi));
	if ((v = root ? get(root, "legendaries") : NULL) && fy_node_get_type(v) == FYNT_SEQUENCE)
		for (size_t i = 0; i < s->nlegendaries; i++)
			if (strlen(s->legendaries[i].name) > 32)
				return fail(c, get(fy_node_sequence_get_by_index(v, (int)i), "name"),
					    "legendary name '%s' is %zu bytes: Metaplex allows at "
					    "most 32", s->legendaries[i].name,
					    strlen(s->legendaries[i].name));
	return 0;
}

int parse_metadata(struct ctx *c, struct fy_node *n)
{
	static const char *const keys[] = {"name", "start_id", "base_uri", "description",
					   "targets", "display", "attributes", "contract",
					   "metaplex", "reveal"};
	struct kiln_spec *s = c->s;
	struct fy_node *v;
	int rc;
	if ((rc = want_map(c, n, "metadata")) || (rc = check_keys(c, n, "metadata", keys, 10)))
		return rc;
	if ((v = get(n, "name")) && (rc = get_nonempty(c, v, "metadata.name", &s->name_pattern)))
		return rc;
	if ((v = get(n, "start_id")) &&
	    (rc = get_u64(c, v, "metadata.start_id", 0, UINT64_MAX / 2, &s->start_id)))
		return rc;
	if (v && s->size && (s->size - 1 > KILN_ID_MAX || s->start_id > KILN_ID_MAX - (s->size - 1)))
		return fail(c, v, "metadata.start_id %llu with collection.size %llu gives ids up to "
			    "%llu, past %llu (2^53-1), the largest id every reader holds exactly "
			    "(JavaScript numbers among them)", (unsigned long long)s->start_id,
			    (unsigned long long)s->size,
			    (unsigned long long)(s->start_id + s->size - 1),
			    (unsigned long long)KILN_ID_MAX);
	if ((v = get(n, "base_uri")) && (rc = get_nonempty(c, v, "metadata.base_uri", &s->base_uri)))
		return rc;
	if ((v = get(n, "description")) &&
	    (rc = get_str(c, v, "metadata.description", &s->meta_description)))
		return rc;
	if ((v = get(n, "targets"))) {
		struct fy_node *x;
		void *it = NULL;
		if ((rc = want_seq(c, v, "metadata.targets")))
			return rc;
		s->targets = 0;
		while ((x = fy_node_sequence_iterate(v, &it))) {
			const char *t = fy_node_get_type(x) == FYNT_SCALAR ? fy_node_get_scalar0(x)
									  : NULL;
			if (t && !strcmp(t, "erc721"))
				s->targets |= KILN_TARGET_ERC721;
			else if (t && !strcmp(t, "erc1155"))
				s->targets |= KILN_TARGET_ERC1155;
			else if (t && !strcmp(t, "metaplex"))
				s->targets |= KILN_TARGET_METAPLEX;
			else
				return fail(c, x, "unknown metadata target '%s' (erc721, erc1155 or "
					    "metaplex)", t ? t : type_name(x));
		}
		if (!s->targets)
			return fail(c, v, "metadata.targets is empty: list erc721, erc1155 or "
				    "metaplex");
	}
	if ((v = get(n, "display")) && (rc = parse_meta_display(c, v)))
		return rc;
	if ((v = get(n, "attributes")) && (rc = parse_meta_attrs(c, v)))
		return rc;
	if ((v = get(n, "contract")) && (rc = parse_meta_contract(c, v)))
		return rc;
	if ((v = get(n, "metaplex")) && (rc = parse_meta_metaplex(c, v)))
		return rc;
	if ((v = get(n, "reveal")) && (rc = parse_meta_reveal(c, v)))
		return rc;
	if (s->targets & KILN_TARGET_METAPLEX)
		return check_metaplex(c, n);
	return 0;
}

/* Frees what parse_metadata's sub-blocks allocated (called by kiln_spec_free). */
void metadata_free(struct kiln_spec *s)
{
	free(s->layer_display);
	for (size_t i = 0; i < s->nmeta_attrs; i++) {
		free(s->meta_attrs[i].trait_type);
		free(s->meta_attrs[i].value);
	}
	free(s->meta_attrs);
	free(s->contract.name);
	free(s->contract.description);
	free(s->contract.image);
	free(s->contract.banner_image);
	free(s->contract.featured_image);
	free(s->contract.external_link);
	for (size_t i = 0; i < s->contract.ncollaborators; i++)
		free(s->contract.collaborators[i]);
	free(s->contract.collaborators);
	for (size_t i = 0; i < s->ncreators; i++)
		free(s->creators[i].address);
	free(s->creators);
	free(s->mpl_collection_name);
	free(s->mpl_collection_image);
	free(s->mpl_collection_description);
	free(s->reveal_image);
	free(s->reveal_name);
	free(s->reveal_description);
}
