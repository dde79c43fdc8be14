/* raster.c: the polish steps on pixels, through libvips: upscale (vips_resize, lanczos3 or
 * nearest, the same call as `vips resize`), overlay (vips_composite, over, as compose blends
 * its layers), and the checks of an imported edit. Outputs are PNGs written by the project's
 * PNG writer (util/png.h), so the bytes depend only on the pixels and the options.
 */
#include "polish/ops.h"
#include "util/image.h"

#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

static int open_checked(const char *path, uint64_t max_pixels, VipsImage **out,
			struct kiln_error *e)
{
	int rc;
	*out = NULL;
	if ((rc = kiln_vips_init(e)) ||
	    (rc = kiln_image_check_pixels(path, max_pixels ? max_pixels : KILN_IMAGE_MAX_PIXELS,
					  NULL, NULL, e)))
		return rc;
	*out = vips_image_new_from_file(path, "fail_on", VIPS_FAIL_ON_ERROR, NULL);
	if (!*out)
		return kiln_vips_fail(e, KILN_E_IMAGE, path, "cannot open the image");
	return 0;
}

/* im (taken) as sRGB 8-bit RGBA, then a PNG. */
static int to_png(VipsImage *im, const char *where, const struct kiln_png_opts *po,
		  struct kiln_buf *out, struct kiln_error *e)
{
	VipsImage *t = NULL;
	void *px = NULL;
	size_t n = 0;
	int rc = 0;
	if (vips_image_get_interpretation(im) != VIPS_INTERPRETATION_sRGB ||
	    vips_image_get_format(im) != VIPS_FORMAT_UCHAR) {
		if (vips_colourspace(im, &t, VIPS_INTERPRETATION_sRGB, NULL))
			goto vfail;
		g_object_unref(im);
		im = t;
		if (vips_image_get_format(im) != VIPS_FORMAT_UCHAR) {
			if (vips_cast_uchar(im, &t, NULL))
				goto vfail;
			g_object_unref(im);
			im = t;
		}
	}
	if (vips_image_get_bands(im) == 3) {
		if (vips_bandjoin_const1(im, &t, 255.0, NULL))
			goto vfail;
		g_object_unref(im);
		im = t;
	} else if (vips_image_get_bands(im) > 4) {
		if (vips_extract_band(im, &t, 0, "n", 4, NULL))
			goto vfail;
		g_object_unref(im);
		im = t;
	}
	if (vips_image_get_bands(im) != 4) {
		rc = kiln_error_set(e, KILN_E_IMAGE, where, "the image has %d bands after its "
				    "conversion to sRGB, not 4", vips_image_get_bands(im));
		goto out;
	}
	if (!(px = vips_image_write_to_memory(im, &n)))
		goto vfail;
	rc = kiln_png_encode_rgba(px, vips_image_get_width(im), vips_image_get_height(im),
				  (size_t)vips_image_get_width(im) * 4, po, NULL, out, e);
	goto out;
vfail:
	rc = kiln_vips_fail(e, KILN_E_IMAGE, where, "cannot convert the image");
out:
	g_free(px);
	g_object_unref(im);
	return rc;
}

int kiln_polish_upscale(const char *in, int factor, int nearest, uint64_t max_pixels,
			const struct kiln_png_opts *po, struct kiln_buf *out, struct kiln_error *e)
{
	VipsImage *im = NULL, *r = NULL;
	int rc = open_checked(in, max_pixels, &im, e);
	if (rc)
		return rc;
	if (vips_resize(im, &r, (double)factor, "kernel",
			nearest ? VIPS_KERNEL_NEAREST : VIPS_KERNEL_LANCZOS3, NULL)) {
		g_object_unref(im);
		return kiln_vips_fail(e, KILN_E_IMAGE, in, "cannot upscale the image");
	}
	g_object_unref(im);
	return to_png(r, in, po, out, e);
}

int kiln_polish_overlay(const char *in, const char *layer, uint64_t max_pixels,
			const struct kiln_png_opts *po, struct kiln_buf *out, struct kiln_error *e)
{
	VipsImage *v[2] = {NULL, NULL}, *r = NULL;
	int rc;
	if ((rc = open_checked(in, max_pixels, &v[0], e)) ||
	    (rc = open_checked(layer, max_pixels, &v[1], e)))
		goto out;
	if (vips_image_get_width(v[0]) != vips_image_get_width(v[1]) ||
	    vips_image_get_height(v[0]) != vips_image_get_height(v[1])) {
		rc = kiln_error_set(e, KILN_E_IMAGE, layer, "the overlay is %d x %d but the image "
				    "it goes on is %d x %d: draw it at the image's size",
				    vips_image_get_width(v[1]), vips_image_get_height(v[1]),
				    vips_image_get_width(v[0]), vips_image_get_height(v[0]));
		goto out;
	}
	for (int i = 0; i < 2; i++) {
		VipsImage *t = NULL;
		if (vips_image_get_interpretation(v[i]) == VIPS_INTERPRETATION_sRGB)
			continue;
		if (vips_colourspace(v[i], &t, VIPS_INTERPRETATION_sRGB, NULL)) {
			rc = kiln_vips_fail(e, KILN_E_IMAGE, i ? layer : in, "cannot convert to sRGB");
			goto out;
		}
		g_object_unref(v[i]);
		v[i] = t;
	}
	if (vips_composite2(v[0], v[1], &r, VIPS_BLEND_MODE_OVER, NULL)) {
		rc = kiln_vips_fail(e, KILN_E_IMAGE, layer, "cannot composite the overlay");
		goto out;
	}
	rc = to_png(r, in, po, out, e);
out:
	for (int i = 0; i < 2; i++)
		if (v[i])
			g_object_unref(v[i]);
	return rc;
}

int kiln_polish_size(const char *path, int *w, int *h, struct kiln_error *e)
{
	int rc = kiln_vips_init(e);
	return rc ? rc : kiln_image_header(path, w, h, e);
}

/* path decoded to 8-bit pixels, refused (code) unless libvips read it as a PNG; what names it */
static int decode_png(const char *path, const char *what, int code, struct kiln_image8 *im,
		      struct kiln_error *e)
{
	int rc;
	if ((rc = kiln_image_decode8(path, im, e)))
		return rc;
	if (strcmp(im->loader, "pngload") && strcmp(im->loader, "pngload_source")) {
		rc = kiln_error_set(e, code, path, "%s is not a PNG (read by %s): save it as PNG",
				    what, im->loader[0] ? im->loader : "libvips");
		kiln_image8_release(im);
	}
	return rc;
}

int kiln_polish_check_png(const char *path, int w, int h, struct kiln_error *e)
{
	struct kiln_image8 im;
	int iw = 0, ih = 0, rc;
	size_t n, bpp;
	if ((rc = kiln_vips_init(e)) ||
	    (rc = kiln_image_check_pixels(path, KILN_IMAGE_MAX_PIXELS, &iw, &ih, e)))
		return rc;
	if (iw != w || ih != h)
		return kiln_error_set(e, KILN_E_IMAGE, path, "the edit is %d x %d, but the token's "
				      "image is %d x %d: keep the size of the exported image", iw, ih,
				      w, h);
	if ((rc = decode_png(path, "the edit", KILN_E_IMAGE, &im, e)))
		return rc;
	n = (size_t)im.width * (size_t)im.height;
	bpp = (size_t)im.bands;
	rc = 1;
	for (size_t i = 1; i < n && rc; i++)
		rc = !memcmp(im.pixels, im.pixels + i * bpp, bpp);
	kiln_image8_release(&im);
	if (rc)
		return kiln_error_set(e, KILN_E_IMAGE, path, "the edit is blank: one colour "
				      "throughout");
	return 0;
}

int kiln_polish_mask_check(const char *path, struct kiln_error *e)
{
	struct kiln_image8 im;
	int rc, any = 0;
	size_t n, bpp, c;
	if ((rc = kiln_vips_init(e)) || (rc = decode_png(path, "the mask", KILN_E_USAGE, &im, e)))
		return rc;
	n = (size_t)im.width * (size_t)im.height;
	bpp = (size_t)im.bands;
	c = bpp >= 3 ? 3 : 1; /* the colour bands, alpha aside */
	for (size_t i = 0; i < n && !any; i++)
		for (size_t k = 0; k < c && !any; k++)
			any = im.pixels[i * bpp + k] != 0;
	kiln_image8_release(&im);
	if (!any)
		return kiln_error_set(e, KILN_E_USAGE, path, "the mask is empty (black throughout): "
				      "paint white where the image is to be repainted");
	return 0;
}

/* im (taken) as packed sRGB 8-bit RGBA pixels (g_free), *n bytes */
static void *rgba_of(VipsImage *im, size_t *n)
{
	VipsImage *t = NULL;
	void *px = NULL;
	if (vips_image_get_interpretation(im) != VIPS_INTERPRETATION_sRGB &&
	    !vips_colourspace(im, &t, VIPS_INTERPRETATION_sRGB, NULL)) {
		g_object_unref(im);
		im = t;
	}
	if (vips_image_get_bands(im) == 3 && !vips_bandjoin_const1(im, &t, 255.0, NULL)) {
		g_object_unref(im);
		im = t;
	}
	if (vips_image_get_bands(im) == 4 && vips_image_get_format(im) == VIPS_FORMAT_UCHAR)
		px = vips_image_write_to_memory(im, n);
	g_object_unref(im);
	return px;
}

int kiln_polish_same_pixels(const void *png, size_t len, const char *path, int *same,
			    struct kiln_error *e)
{
	VipsImage *a, *b;
	void *pa = NULL, *pb = NULL;
	size_t na = 0, nb = 0;
	int rc;
	*same = 0;
	if ((rc = kiln_vips_init(e)))
		return rc;
	a = vips_image_new_from_buffer(png, len, "", NULL);
	b = vips_image_new_from_file(path, NULL);
	if (!a || !b) {
		if (a)
			g_object_unref(a);
		if (b)
			g_object_unref(b);
		return kiln_vips_fail(e, KILN_E_IMAGE, path, "cannot open the image");
	}
	if (vips_image_get_width(a) == vips_image_get_width(b) &&
	    vips_image_get_height(a) == vips_image_get_height(b)) {
		pa = rgba_of(a, &na);
		pb = rgba_of(b, &nb);
		*same = pa && pb && na == nb && !memcmp(pa, pb, na);
	} else {
		g_object_unref(a);
		g_object_unref(b);
	}
	g_free(pa);
	g_free(pb);
	vips_error_clear();
	return 0;
}
