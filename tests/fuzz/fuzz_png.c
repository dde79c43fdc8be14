/* Fuzz target: the PNG chunk reader behind kiln_png_set_text (signature, IHDR first, chunk
 * lengths, types and CRCs, IDAT present, IEND last), which every AI image passes through. */
#include <stdint.h>
#include <stddef.h>
#include "kiln/buf.h"
#include "util/png.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kiln_buf out = KILN_BUF_INIT;
	struct kiln_error e;
	struct kiln_png_text t[2] = {
		{.keyword = "parameters", .text = "a prompt\nSteps: 20"},
		{.keyword = "XML:com.adobe.xmp", .text = "<x:xmpmeta/>", .itxt = 1},
	};
	kiln_error_clear(&e);
	if (kiln_png_set_text(data, size, t, 2, &out, &e))
		kiln_error_clear(&e);
	kiln_buf_release(&out);
	return 0;
}
