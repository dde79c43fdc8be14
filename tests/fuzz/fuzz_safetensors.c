/* Fuzz target: a safetensors file's header, as `kiln models add` reads files from anywhere.
 * Input: the whole file (8-byte little-endian header length, JSON header, data). */
#include <stdint.h>
#include <stdlib.h>
#include "kiln/train.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kiln_safetensors st;
	struct kiln_error e;
	if (!kiln_safetensors_parse(data, size, size, "fuzz", &st, &e)) {
		if (st.header_len + 8 > size || !st.metadata_json)
			abort();
		kiln_safetensors_release(&st);
	}
	return 0;
}
