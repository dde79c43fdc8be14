/* Fuzz target: the token metadata checks (ERC-721/OpenSea and Metaplex/Sugar rules) on
 * arbitrary JSON text, as `kiln qa FOLDER` runs them on files other people made. */
#include <stdint.h>
#include <stddef.h>
#include "kiln/qa.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned standards[] = {KILN_META_ERC721, KILN_META_METAPLEX,
					     KILN_META_ERC721 | KILN_META_METAPLEX};
	for (size_t i = 0; i < sizeof standards / sizeof standards[0]; i++) {
		struct kiln_findings f;
		struct kiln_error e;
		kiln_findings_init(&f);
		kiln_error_clear(&e);
		if (kiln_metacheck_token_text((const char *)data, size, standards[i], "0.json", &f, &e))
			kiln_error_clear(&e);
		kiln_findings_release(&f);
	}
	return 0;
}
