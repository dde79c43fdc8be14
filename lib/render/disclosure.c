/* ai_disclosure: the XMP DigitalSourceType and the A1111 infotext every AI-rendered PNG
 * carries (see ai_disclosure.h for the chunks and design.md §7 for the sources).
 *
 * Why both: the XMP is the standard statement (IPTC, read by search engines, marketplaces and
 * exiftool) that a trained model made the image; the infotext is what every Stable Diffusion
 * tool reads back ("PNG Info"), enough to make the image again. A1111 writes its own infotext
 * into the PNGs it returns; ComfyUI writes its graph instead and sd-server may write nothing,
 * so for those the infotext is built from the request kiln sent and the seed the server used.
 *
 * Invariants: the pixels are never decoded or re-encoded (lib/util/png.c splices chunks); the
 * same image, request and seed give the same bytes; an image that is not a PNG is left alone.
 * Sizes: an image of a few MB is copied once; the texts are a few KB.
 */
#include "render/disclosure.h"
#include "kiln/render.h"
#include "util/png.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define IPTC_DST "http://cv.iptc.org/newscodes/digitalsourcetype/"

const char *kiln_digital_source_uri(enum kiln_digital_source s)
{
	return s == KILN_SOURCE_COMPOSITE ? IPTC_DST "compositeWithTrainedAlgorithmicMedia"
					  : IPTC_DST "trainedAlgorithmicMedia";
}

int kiln_ai_xmp(enum kiln_digital_source s, struct kiln_buf *out)
{
	/* the packet wrapper (with its UTF-8 BOM) lets XMP scanners find the packet in any file */
	return kiln_buf_addf(out,
		"<?xpacket begin=\"\xef\xbb\xbf\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n"
		"<x:xmpmeta xmlns:x=\"adobe:ns:meta/\">\n"
		" <rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\n"
		"  <rdf:Description rdf:about=\"\"\n"
		"    xmlns:Iptc4xmpExt=\"http://iptc.org/std/Iptc4xmpExt/2008-02-29/\">\n"
		"   <Iptc4xmpExt:DigitalSourceType>%s</Iptc4xmpExt:DigitalSourceType>\n"
		"  </rdf:Description>\n"
		" </rdf:RDF>\n"
		"</x:xmpmeta>\n"
		"<?xpacket end=\"r\"?>", kiln_digital_source_uri(s));
}

/* ", Key: value", the value quoted as A1111's infotext_utils.quote() does: JSON when it holds
 * ',', ':' or a newline (json.dumps with ensure_ascii=False, which jansson matches). */
static int param(struct kiln_buf *b, const char *key, const char *v)
{
	json_t *j;
	char *q;
	int rc;
	if (kiln_buf_addf(b, "%s%s: ", b->len ? ", " : "", key))
		return KILN_E_NOMEM;
	if (!strpbrk(v, ",:\n"))
		return kiln_buf_adds(b, v);
	if (!(j = json_string(v)))
		return KILN_E_NOMEM; /* not UTF-8: the spec loader and jansson let none through */
	q = json_dumps(j, JSON_ENCODE_ANY);
	json_decref(j);
	if (!q)
		return KILN_E_NOMEM;
	rc = kiln_buf_adds(b, q);
	free(q);
	return rc;
}

/* A1111's "Model:" is the checkpoint's name without its extension. */
static int model_name(struct kiln_buf *b, const char *ckpt)
{
	static const char *const ext[] = { ".safetensors", ".ckpt", ".pt", ".pth", ".gguf",
					   ".bin" };
	size_t n = strlen(ckpt);
	for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
		size_t k = strlen(ext[i]);
		if (n > k && !strcmp(ckpt + n - k, ext[i])) {
			n -= k;
			break;
		}
	}
	return kiln_buf_add(b, ckpt, n);
}

int kiln_ai_infotext(const struct kiln_ai_request *rq, uint64_t seed, struct kiln_buf *out)
{
	struct kiln_buf gp = KILN_BUF_INIT, v = KILN_BUF_INIT;
	int rc = kiln_buf_adds(out, rq->prompt ? rq->prompt : "");
	for (size_t i = 0; !rc && i < rq->nloras; i++)
		rc = kiln_buf_addf(out, "%s<lora:%s:%g>", rq->prompt && rq->prompt[0] ? " " : "",
				   rq->loras[i].name, rq->loras[i].weight);
	if (!rc && rq->negative && rq->negative[0])
		rc = kiln_buf_addf(out, "\nNegative prompt: %s", rq->negative);
	if (!rc && !(rc = kiln_buf_addf(&v, "%d", rq->steps)))
		rc = param(&gp, "Steps", v.data);
	if (!rc && rq->sampler)
		rc = param(&gp, "Sampler", rq->sampler);
	if (!rc && rq->scheduler)
		rc = param(&gp, "Schedule type", rq->scheduler);
	kiln_buf_reset(&v);
	if (!rc && !(rc = kiln_buf_addf(&v, "%g", rq->cfg)))
		rc = param(&gp, "CFG scale", v.data);
	kiln_buf_reset(&v);
	if (!rc && !(rc = kiln_buf_addf(&v, "%llu", (unsigned long long)seed)))
		rc = param(&gp, "Seed", v.data);
	kiln_buf_reset(&v);
	if (!rc && !(rc = kiln_buf_addf(&v, "%dx%d", rq->width, rq->height)))
		rc = param(&gp, "Size", v.data);
	kiln_buf_reset(&v);
	if (!rc && rq->checkpoint && !(rc = model_name(&v, rq->checkpoint)))
		rc = param(&gp, "Model", v.data);
	if (!rc)
		rc = kiln_buf_addf(out, "\n%s", gp.data);
	kiln_buf_release(&gp);
	kiln_buf_release(&v);
	return rc ? KILN_E_NOMEM : 0;
}

int kiln_ai_disclose_png(const void *img, size_t len, enum kiln_digital_source s,
			 const char *infotext, struct kiln_buf *out, struct kiln_error *e)
{
	struct kiln_buf xmp = KILN_BUF_INIT;
	struct kiln_png_text t[2];
	int rc;
	if (kiln_ai_xmp(s, &xmp)) {
		kiln_buf_release(&xmp);
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory for the XMP packet");
	}
	t[0].keyword = KILN_XMP_KEYWORD;
	t[0].text = xmp.data;
	t[0].itxt = 1;
	t[1].keyword = KILN_INFOTEXT_KEYWORD;
	t[1].text = infotext;
	t[1].itxt = 0;
	rc = kiln_png_set_text(img, len, t, infotext ? 2 : 1, out, e);
	kiln_buf_release(&xmp);
	return rc;
}

int kiln_ai_disclose_job(struct kiln_ai_job *j, enum kiln_digital_source s,
			 struct kiln_error *e)
{
	struct kiln_buf info = KILN_BUF_INIT, out;
	const char *text = j->info && j->info[0] ? j->info : NULL;
	int rc = 0;
	if (j->image.len < 8 || memcmp(j->image.data, "\x89PNG\r\n\x1a\n", 8))
		return 0; /* JPEG, WebP: stored as they came */
	kiln_buf_init(&out, j->image.max);
	if (!text && j->rq) {
		if (kiln_ai_infotext(j->rq, j->seed_used, &info)) {
			rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory for the infotext");
			goto out;
		}
		text = info.data;
	}
	if ((rc = kiln_ai_disclose_png(j->image.data, j->image.len, s, text, &out, e))) {
		kiln_error_prefix(e, "cannot add the AI disclosure");
		goto out;
	}
	kiln_buf_release(&j->image);
	j->image = out;
	kiln_buf_init(&out, 0);
out:
	kiln_buf_release(&out);
	kiln_buf_release(&info);
	return rc;
}

int kiln_render_disclose_png(const void *img, size_t len, int composite, struct kiln_buf *out,
			     struct kiln_error *e)
{
	return kiln_ai_disclose_png(img, len, composite ? KILN_SOURCE_COMPOSITE :
				    KILN_SOURCE_TRAINED, NULL, out, e);
}
