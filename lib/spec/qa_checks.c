/* lib/spec/qa_checks.c: the table of QA check ids (lib/spec/qa_checks.h).
 *
 * What for: kiln.yaml's qa.checks block overrides severities by check id, and a typo there
 * would silently change nothing; the spec checks every id against this table. lib/qa makes its
 * findings under the same ids. Keeping the table here (data only, no code of either module)
 * lets the spec, a lower module, validate ids without calling up into QA.
 * Invariants: ids are stable (tests, CI gates and severity overrides key on them) and listed
 * in docs/qa.md; a new check adds its id here first. The default severity is the one the check
 * usually reports (a few checks report a warning or an error by case: image.alpha,
 * attributes.date, metaplex.category, ...). Size: about 75 entries.
 */
#include "spec/qa_checks.h"

#include <string.h>

#define E 0
#define W 1
#define CHECKS(X) \
	X("image.missing", E) \
	X("image.decode", E) \
	X("image.too_large", E) \
	X("image.not_a_file", E) \
	X("image.file_size", E) \
	X("image.format", E) \
	X("image.dimensions", E) \
	X("image.color", W) \
	X("image.alpha", E) \
	X("image.black", E) \
	X("image.blank", E) \
	X("image.duplicate", E) \
	X("image.near_duplicate", W) \
	X("svg.malformed", E) \
	X("svg.dimensions", E) \
	X("svg.blank", E) \
	X("svg.file_size", E) \
	X("collection.trait_counts", E) \
	X("collection.unique", E) \
	X("collection.ids", E) \
	X("collection.provenance", E) \
	X("collection.provenance_path", E) \
	X("collection.trait_type_drift", W) \
	X("collection.trait_value_drift", W) \
	X("token.json_parse", E) \
	X("token.not_a_file", E) \
	X("token.too_large", E) \
	X("token.unreadable", E) \
	X("token.not_object", E) \
	X("token.field_type", E) \
	X("erc721.missing_field", E) \
	X("erc721.uri", E) \
	X("erc721.placeholder_uri", E) \
	X("erc721.background_color", E) \
	X("erc721.empty", E) \
	X("erc721.numbering_gap", E) \
	X("erc721.numbering_repeat", E) \
	X("erc721.leading_zero", E) \
	X("erc721.image_mismatch", E) \
	X("erc721.image_base", E) \
	X("erc721.image_extension", E) \
	X("erc721.unknown_file", W) \
	X("erc1155.file_name", E) \
	X("attributes.not_array", E) \
	X("attributes.entry_type", E) \
	X("attributes.trait_type", E) \
	X("attributes.value", E) \
	X("attributes.display_type", E) \
	X("attributes.display_value", E) \
	X("attributes.date", E) \
	X("attributes.max_value", E) \
	X("metaplex.missing_field", E) \
	X("metaplex.name_length", E) \
	X("metaplex.symbol_length", E) \
	X("metaplex.uri_length", E) \
	X("metaplex.seller_fee", E) \
	X("metaplex.properties", E) \
	X("metaplex.files", E) \
	X("metaplex.file_entry", E) \
	X("metaplex.file_type", E) \
	X("metaplex.category", E) \
	X("metaplex.creators", E) \
	X("metaplex.creator_address", E) \
	X("metaplex.creator_share", E) \
	X("metaplex.creator_shares", E) \
	X("metaplex.creators_count", E) \
	X("metaplex.attribute_value", E) \
	X("sugar.empty", E) \
	X("sugar.numbering_gap", E) \
	X("sugar.numbering_repeat", E) \
	X("sugar.leading_zero", E) \
	X("sugar.missing_image", E) \
	X("sugar.missing_json", E) \
	X("sugar.image_mismatch", E) \
	X("sugar.image_extension", E) \
	X("sugar.files_image", W) \
	X("sugar.collection_unpaired", E) \
	X("sugar.collection_missing", W) \
	X("sugar.unknown_file", W) \
	X("hashlips.metadata_type", E) \
	X("hashlips.metadata_mismatch", W) \
	X("hashlips.edition", W)

#define ID(id, sev) id,
#define DEF(id, sev) {id, sev},
static const char *const ids[] = {CHECKS(ID) NULL};
static const struct kiln_qa_check_def defs[] = {CHECKS(DEF) {NULL, 0}};

const struct kiln_qa_check_def *kiln_qa_check_defs(size_t *n)
{
	if (n)
		*n = sizeof defs / sizeof defs[0] - 1;
	return defs;
}

const char *const *kiln_qa_check_ids(size_t *n)
{
	if (n)
		*n = sizeof ids / sizeof ids[0] - 1;
	return ids;
}

int kiln_qa_check_known(const char *id)
{
	size_t len = strlen(id);
	for (size_t i = 0; ids[i]; i++)
		if (len && id[len - 1] == '.' ? !strncmp(ids[i], id, len) : !strcmp(ids[i], id))
			return 1;
	return 0;
}
