/* libvips set-up and the 8-bit full decode shared by QA and the hashes. libvips' error buffer
 * is process-wide: vips_error_buffer_copy() takes and clears it under libvips' own lock. */
#include "util/image.h"
#include "util/path.h"

#include <errno.h>
#include <sys/stat.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <vips/vips.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int init_failed;

static void drop_log(const gchar *domain, GLogLevelFlags level, const gchar *msg, gpointer u)
{
	(void)domain, (void)level, (void)msg, (void)u;
}

static void setup(void)
{
	g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO,
			  drop_log, NULL);
	if (VIPS_INIT("kiln")) {
		init_failed = 1;
		return;
	}
	/* kiln parallelises over items (render workers, qa workers): one thread per operation */
	vips_concurrency_set(1);
	vips_cache_set_max(0);
}

int kiln_vips_init(struct kiln_error *e)
{
	pthread_once(&once, setup);
	if (init_failed)
		return kiln_vips_fail(e, KILN_E_IMAGE, "libvips", "cannot start libvips");
	return 0;
}

int kiln_vips_fail(struct kiln_error *e, int code, const char *where, const char *what)
{
	char *t = vips_error_buffer_copy();
	size_t len = t ? strlen(t) : 0;
	int rc;
	while (len && (t[len - 1] == '\n' || t[len - 1] == ' '))
		t[--len] = 0;
	for (size_t i = 0; i < len; i++)
		if (t[i] == '\n')
			t[i] = ';';
	rc = kiln_error_set(e, code, where, "%s%s%s%s", what, len ? " (libvips: " : "",
			    len ? t : "", len ? ")" : "");
	g_free(t);
	return rc;
}

static int swap(VipsImage **img, VipsImage *t)
{
	g_object_unref(*img);
	*img = t;
	return 0;
}

int kiln_image_header(const char *path, int *width, int *height, struct kiln_error *e)
{
	VipsImage *img;
	struct stat sb;
	int rc;
	/* stat, not open: a FIFO would block libvips' open() until a writer came */
	if (stat(path, &sb))
		return kiln_error_set(e, KILN_E_IMAGE, path, "cannot read: %s", strerror(errno));
	if (!S_ISREG(sb.st_mode))
		return kiln_error_set(e, KILN_E_IMAGE, path, "is %s, not a regular file",
				      kiln_path_kind((unsigned)sb.st_mode));
	if ((rc = kiln_vips_init(e)))
		return rc;
	img = vips_image_new_from_file(path, "access", VIPS_ACCESS_SEQUENTIAL, NULL);
	if (!img)
		return kiln_vips_fail(e, KILN_E_IMAGE, path, "cannot read the image header");
	*width = vips_image_get_width(img);
	*height = vips_image_get_height(img);
	g_object_unref(img);
	return 0;
}

int kiln_image_check_pixels(const char *path, uint64_t max_pixels, int *width, int *height,
			    struct kiln_error *e)
{
	int w = 0, h = 0, rc = kiln_image_header(path, &w, &h, e);
	if (width)
		*width = w;
	if (height)
		*height = h;
	if (rc || !max_pixels || (uint64_t)w * (uint64_t)h <= max_pixels)
		return rc;
	return kiln_error_set(e, KILN_E_IMAGE, path, "declares %dx%d pixels (%.1f Mpx), over the "
			      "limit of %.1f Mpx: not decoded", w, h,
			      (double)w * (double)h / 1048576.0, (double)max_pixels / 1048576.0);
}

int kiln_image_check_input(const char *path, const char *what, uint64_t max_pixels,
			   struct kiln_error *e)
{
	int rc = kiln_image_check_pixels(path, max_pixels ? max_pixels : KILN_IMAGE_MAX_PIXELS,
					 NULL, NULL, e);
	if (!rc) {
		/* the header is sound and the size bounded: decode it whole, so a truncated or
		 * corrupt file is caught here and not by a marketplace or a GPU server */
		struct kiln_image8 im;
		memset(&im, 0, sizeof im);
		rc = kiln_image_decode8(path, &im, e);
		kiln_image8_release(&im);
	}
	if (rc == KILN_E_IMAGE) {
		char why[sizeof e->msg];
		snprintf(why, sizeof why, "%s", e->msg);
		rc = kiln_error_set(e, KILN_E_SPEC, path, "%s: not an image kiln can take (%s); "
				    "name a PNG, JPEG, WebP or GIF file", what, why);
	}
	return rc;
}

static int decode8(VipsImage *img, const char *path, struct kiln_image8 *out,
		   struct kiln_error *e);

int kiln_image_decode8(const char *path, struct kiln_image8 *out, struct kiln_error *e)
{
	VipsImage *img;
	int rc;
	memset(out, 0, sizeof *out);
	if ((rc = kiln_vips_init(e)))
		return rc;
	img = vips_image_new_from_file(path, "access", VIPS_ACCESS_SEQUENTIAL, "fail_on",
				       VIPS_FAIL_ON_ERROR, NULL);
	if (!img)
		return kiln_vips_fail(e, KILN_E_IMAGE, path, "cannot open the image");
	return decode8(img, path, out, e);
}

int kiln_image_decode8_mem(const void *data, size_t len, const char *where,
			   struct kiln_image8 *out, struct kiln_error *e)
{
	VipsImage *img;
	int rc;
	memset(out, 0, sizeof *out);
	if ((rc = kiln_vips_init(e)))
		return rc;
	img = vips_image_new_from_buffer(data, len, "", "access", VIPS_ACCESS_SEQUENTIAL,
					 "fail_on", VIPS_FAIL_ON_ERROR, NULL);
	if (!img)
		return kiln_vips_fail(e, KILN_E_IMAGE, where, "cannot open the image");
	return decode8(img, where, out, e);
}

/* img (taken) decoded into out */
static int decode8(VipsImage *img, const char *path, struct kiln_image8 *out,
		   struct kiln_error *e)
{
	VipsImage *t = NULL;
	const char *loader = NULL;
	size_t size = 0;
	int rc = 0;
	if (vips_image_get_typeof(img, "vips-loader") &&
	    !vips_image_get_string(img, "vips-loader", &loader))
		snprintf(out->loader, sizeof out->loader, "%s", loader);
	out->orig_bands = vips_image_get_bands(img);
	switch (vips_image_get_format(img)) {
	case VIPS_FORMAT_UCHAR: case VIPS_FORMAT_CHAR: out->orig_bits = 8; break;
	case VIPS_FORMAT_USHORT: case VIPS_FORMAT_SHORT: out->orig_bits = 16; break;
	default: out->orig_bits = 32; break;
	}
	switch (vips_image_get_interpretation(img)) {
	case VIPS_INTERPRETATION_B_W:
	case VIPS_INTERPRETATION_GREY16:
	case VIPS_INTERPRETATION_sRGB:
	case VIPS_INTERPRETATION_RGB16:
		out->orig_srgb = 1;
		break;
	case VIPS_INTERPRETATION_MULTIBAND:
		out->orig_srgb = out->orig_bands <= 4;
		break;
	default:
		if (vips_colourspace(img, &t, VIPS_INTERPRETATION_sRGB, NULL)) {
			rc = kiln_vips_fail(e, KILN_E_IMAGE, path, "cannot convert to sRGB");
			goto out;
		}
		swap(&img, t);
		t = NULL;
	}
	if (vips_image_get_format(img) == VIPS_FORMAT_USHORT) {
		if (vips_rshift_const1(img, &t, 8, NULL)) {
			rc = kiln_vips_fail(e, KILN_E_IMAGE, path, "cannot reduce 16 bits to 8");
			goto out;
		}
		swap(&img, t);
		t = NULL;
	}
	if (vips_image_get_format(img) != VIPS_FORMAT_UCHAR) {
		if (vips_cast_uchar(img, &t, NULL)) {
			rc = kiln_vips_fail(e, KILN_E_IMAGE, path, "cannot convert to 8 bits");
			goto out;
		}
		swap(&img, t);
		t = NULL;
	}
	if (vips_image_get_bands(img) > 4) {
		if (vips_extract_band(img, &t, 0, "n", 4, NULL)) {
			rc = kiln_vips_fail(e, KILN_E_IMAGE, path, "cannot read the bands");
			goto out;
		}
		swap(&img, t);
		t = NULL;
	}
	out->width = vips_image_get_width(img);
	out->height = vips_image_get_height(img);
	out->bands = vips_image_get_bands(img);
	out->pixels = vips_image_write_to_memory(img, &size);
	if (!out->pixels) {
		rc = kiln_vips_fail(e, KILN_E_IMAGE, path, "cannot decode the image: it is corrupt "
				    "or truncated");
		goto out;
	}
	if (size != (size_t)out->width * (size_t)out->height * (size_t)out->bands) {
		rc = kiln_error_set(e, KILN_E_IMAGE, path, "decoded %zu bytes for %dx%dx%d pixels",
				    size, out->width, out->height, out->bands);
		goto out;
	}
	rc = 0;
out:
	if (img)
		g_object_unref(img);
	if (rc)
		kiln_image8_release(out);
	return rc;
}

void kiln_image8_release(struct kiln_image8 *im)
{
	g_free(im->pixels);
	im->pixels = NULL;
}

int kiln_image_thumbnail(const char *src, int size, const char *format, int quality,
			 struct kiln_buf *out, struct kiln_error *e)
{
	VipsImage *t = NULL;
	void *data = NULL;
	size_t len = 0;
	int rc, bad;
	if ((rc = kiln_vips_init(e)))
		return rc;
	if (vips_thumbnail(src, &t, size, "size", VIPS_SIZE_DOWN, "fail_on", VIPS_FAIL_ON_ERROR,
			   NULL))
		return kiln_vips_fail(e, KILN_E_IMAGE, src, "cannot make a thumbnail");
	if (!strcmp(format, "webp"))
		bad = vips_webpsave_buffer(t, &data, &len, "Q", quality, "strip", TRUE, NULL);
	else if (!strcmp(format, "jpeg"))
		bad = vips_jpegsave_buffer(t, &data, &len, "Q", quality, "strip", TRUE, NULL);
	else
		bad = vips_pngsave_buffer(t, &data, &len, "compression", 9, "strip", TRUE, NULL);
	if (bad)
		rc = kiln_vips_fail(e, KILN_E_IMAGE, src, "cannot encode the thumbnail");
	else if (kiln_buf_add(out, data, len))
		rc = kiln_error_set(e, KILN_E_NOMEM, src, "out of memory for a thumbnail");
	g_free(data);
	g_object_unref(t);
	return rc;
}

/* One encoder for every WebP/JPEG kiln writes, so that an image's bytes depend on the spec's
 * settings alone, whichever engine made the pixels. Every option that changes bytes is set. */
int kiln_image_encode(const struct kiln_image_enc *s, VipsImage *im, const void *xmp, size_t xmplen,
		      struct kiln_buf *out, struct kiln_error *e)
{
	VipsImage *fixed = NULL, *flat = NULL, *src;
	VipsArrayDouble *white = NULL;
	void *data = NULL;
	size_t len = 0;
	int rc = 0, bad;
	if (vips_copy(im, &fixed, "xres", 72.0 / 25.4, "yres", 72.0 / 25.4, "interpretation",
		      VIPS_INTERPRETATION_sRGB, NULL)) {
		rc = kiln_vips_fail(e, KILN_E_IMAGE, NULL, "cannot prepare the image for encoding");
		goto out;
	}
	src = fixed;
	if (s->jpeg && fixed->Bands == 4) {
		/* JPEG has no alpha: flatten onto white, as a browser shows a PNG on a page. */
		white = vips_array_double_newv(3, 255.0, 255.0, 255.0);
		if (vips_flatten(fixed, &flat, "background", white, NULL)) {
			rc = kiln_vips_fail(e, KILN_E_IMAGE, NULL, "cannot flatten the image for JPEG");
			goto out;
		}
		src = flat;
	}
	/* the XMP alone: strip drops every metadata field, so without it nothing is kept, and
	 * with it the image holds no field but this one (the caller's pixels came bare) */
	if (xmp)
		vips_image_set_blob_copy(src, VIPS_META_XMP_NAME, xmp, xmplen);
	if (s->jpeg)
		bad = vips_jpegsave_buffer(src, &data, &len, "Q", s->quality, "strip", !xmp,
					   "optimize_coding", TRUE, "interlace", FALSE,
					   "subsample_mode", VIPS_FOREIGN_SUBSAMPLE_AUTO,
					   "trellis_quant", FALSE, "overshoot_deringing", FALSE,
					   "optimize_scans", FALSE, "quant_table", 0, NULL);
	else
		bad = vips_webpsave_buffer(src, &data, &len, "Q", s->quality, "lossless",
					   s->lossless ? TRUE : FALSE, "effort", 4, "strip", !xmp,
					   "smart_subsample", FALSE, "near_lossless", FALSE,
					   "alpha_q", 100, "min_size", FALSE, "mixed", FALSE, NULL);
	if (bad) {
		rc = kiln_vips_fail(e, KILN_E_IMAGE, NULL, "cannot encode the image");
		goto out;
	}
	if (kiln_buf_add(out, data, len))
		rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory for a %zu-byte image", len);
out:
	g_free(data);
	if (white)
		vips_area_unref(VIPS_AREA(white));
	VIPS_UNREF(flat);
	VIPS_UNREF(fixed);
	return rc;
}

int kiln_image_rgb_png(const void *data, size_t len, const char *where, struct kiln_buf *out,
		       int *converted, struct kiln_error *e)
{
	VipsImage *img, *t = NULL;
	VipsInterpretation grey;
	void *png = NULL;
	size_t plen = 0;
	int rc;
	*converted = 0;
	if ((rc = kiln_vips_init(e)))
		return rc;
	if (!(img = vips_image_new_from_buffer(data, len, "", NULL)))
		return kiln_vips_fail(e, KILN_E_IMAGE, where, "cannot read the image");
	if (vips_image_get_bands(img) >= 3) {
		g_object_unref(img);
		return 0;
	}
	/* grey whatever the file says it is (a 1-band PNG may load as multiband) */
	grey = vips_image_get_format(img) == VIPS_FORMAT_USHORT ? VIPS_INTERPRETATION_GREY16
								: VIPS_INTERPRETATION_B_W;
	if (vips_colourspace(img, &t, VIPS_INTERPRETATION_sRGB, "source_space", grey, NULL) ||
	    swap(&img, t) ||
	    vips_cast_uchar(img, &t, NULL) || swap(&img, t) ||
	    vips_pngsave_buffer(img, &png, &plen, "strip", TRUE, NULL)) {
		g_object_unref(img);
		return kiln_vips_fail(e, KILN_E_IMAGE, where, "cannot expand the grey image to RGB");
	}
	g_object_unref(img);
	rc = kiln_buf_add(out, png, plen);
	g_free(png);
	if (rc)
		return kiln_error_set(e, KILN_E_NOMEM, where, "out of memory");
	*converted = 1;
	return 0;
}

int kiln_image_png(const void *data, size_t len, const char *where, struct kiln_buf *out,
		   struct kiln_error *e)
{
	VipsImage *img;
	void *png = NULL;
	size_t plen = 0;
	int rc;
	if ((rc = kiln_vips_init(e)))
		return rc;
	if (!(img = vips_image_new_from_buffer(data, len, "", NULL)))
		return kiln_vips_fail(e, KILN_E_IMAGE, where, "cannot read the image");
	if (vips_pngsave_buffer(img, &png, &plen, "strip", TRUE, NULL)) {
		g_object_unref(img);
		return kiln_vips_fail(e, KILN_E_IMAGE, where, "cannot write the image as PNG");
	}
	g_object_unref(img);
	rc = kiln_buf_add(out, png, plen);
	g_free(png);
	if (rc)
		return kiln_error_set(e, KILN_E_NOMEM, where, "out of memory");
	return 0;
}
