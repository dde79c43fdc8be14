/* qa/resample.h: Pillow's LANCZOS resize of an 8-bit grey image, bit for bit (qa/resample.c).
 * Private to lib/qa. */
#ifndef KILN_QA_RESAMPLE_H
#define KILN_QA_RESAMPLE_H

#include <stdint.h>

/* Resize in (w x h, one byte a pixel, rows packed) to out (ow x oh) as Pillow's
 * Image.resize((ow, oh), Image.LANCZOS) does for mode "L". Non-zero only when out of memory.
 * Thread-safe. */
int kiln_resample_lanczos8(const uint8_t *in, int w, int h, int ow, int oh, uint8_t *out);

#endif
