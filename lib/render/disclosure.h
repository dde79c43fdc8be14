/* render/disclosure.h (internal to libkiln): what an AI-made image says about itself.
 *
 * Every PNG an AI engine renders is stored with two text chunks (design.md §7, "AI
 * disclosure" and the A1111 infotext):
 *
 *   iTXt XML:com.adobe.xmp  an XMP packet declaring the IPTC DigitalSourceType
 *                           (Iptc4xmpExt:DigitalSourceType = trainedAlgorithmicMedia, or
 *                           compositeWithTrainedAlgorithmicMedia once a person has edited or
 *                           composited the image)
 *   tEXt parameters         A1111's infotext: prompt, "Negative prompt: ...", then "Steps: N,
 *                           Sampler: X, CFG scale: C, Seed: S, Size: WxH, Model: M"; iTXt
 *                           when the text is not Latin-1
 *
 * Chunks of those keywords the server wrote are replaced. Other formats (JPEG, WebP) are left
 * as they are. Ownership: out buffers are the caller's; the job's image is replaced in place.
 */
#ifndef KILN_AI_DISCLOSURE_H
#define KILN_AI_DISCLOSURE_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/buf.h"
#include "render/engines/engine.h"
#include "kiln/error.h"

/* IPTC DigitalSourceType values kiln writes. */
enum kiln_digital_source {
	KILN_SOURCE_TRAINED,       /* trainedAlgorithmicMedia: made by a model, as rendered */
	KILN_SOURCE_COMPOSITE,     /* compositeWithTrainedAlgorithmicMedia: AI-made, then edited
	                              or composited by a person */
};

#define KILN_XMP_KEYWORD "XML:com.adobe.xmp"
#define KILN_INFOTEXT_KEYWORD "parameters"

/* "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia", ... (static) */
const char *kiln_digital_source_uri(enum kiln_digital_source s);

/* Append the XMP packet (x:xmpmeta / rdf:RDF / rdf:Description) declaring s to out. */
int kiln_ai_xmp(enum kiln_digital_source s, struct kiln_buf *out) KILN_MUST_CHECK;

/* Append the A1111 infotext of request rq rendered with seed to out: the prompt with its
 * LoRAs as <lora:name:weight> tags (as A1111 is sent them), the negative prompt line when
 * there is one, then Steps, Sampler, Schedule type (when set), CFG scale, Seed, Size and
 * Model (the checkpoint without its extension, when set); values with ',', ':' or a newline
 * are quoted as A1111 quotes them. */
int kiln_ai_infotext(const struct kiln_ai_request *rq, uint64_t seed, struct kiln_buf *out)
	KILN_MUST_CHECK;

/* Append to out the PNG img[len] with the XMP of s and, when infotext is not NULL, the
 * parameters chunk. A malformed PNG is KILN_E_IMAGE. */
int kiln_ai_disclose_png(const void *img, size_t len, enum kiln_digital_source s,
			 const char *infotext, struct kiln_buf *out, struct kiln_error *e)
	KILN_MUST_CHECK;

/* The render stage's hook: replace j->image (when it is a PNG; other formats stay as they
 * are) by the disclosed one. The infotext is the server's own (j->info, A1111's
 * info.infotexts[0]) when it gave one, else built from j->rq and j->seed_used. */
int kiln_ai_disclose_job(struct kiln_ai_job *j, enum kiln_digital_source s,
			 struct kiln_error *e) KILN_MUST_CHECK;

#endif
