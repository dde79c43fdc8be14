/* polish's vectorizers against a real rasteriser (librsvg's rsvg-convert): the pixels SVG of
 * an image with opaque, fully transparent and semi-transparent pixels rasterises back to the
 * same pixels (semi-transparent ones as premultiplied values, what cairo stores); runs of a
 * colour are merged (one rectangle for a block); the same pixels give the same bytes; the
 * trace SVG of a few-colour drawing rasterises back within the tolerance docs/commands/
 * polish.md states (mean channel error below 6, under 3% of pixels off by more than 32); and
 * allocation failures in both leave nothing behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "polish/ops.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/image.h"

static void rasterise(const struct kiln_buf *svg, struct kiln_image8 *out)
{
	char dir[] = "/tmp/kiln-test-polish-XXXXXX", cmd[512], in[128], png[128];
	struct kiln_error e;
	assert_non_null(mkdtemp(dir));
	snprintf(in, sizeof in, "%s/a.svg", dir);
	snprintf(png, sizeof png, "%s/a.png", dir);
	assert_int_equal(kiln_fs_write_atomic(in, svg->data, svg->len, &e), 0);
	snprintf(cmd, sizeof cmd, "rsvg-convert '%s' -o '%s'", in, png);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(kiln_image_decode8(png, out, &e), 0);
	assert_int_equal(kiln_fs_remove_tree(dir, &e), 0);
}

static int premul(int c, int a)
{
	return (c * a + 127) / 255;
}

/* 64 x 48: blocks of colours, a transparent hole, a gradient of alpha, single pixels */
static void draw(struct kiln_rgba *im)
{
	im->w = 64;
	im->h = 48;
	im->px = calloc((size_t)im->w * im->h, 4);
	assert_non_null(im->px);
	for (int y = 0; y < im->h; y++)
		for (int x = 0; x < im->w; x++) {
			uint8_t *p = im->px + ((size_t)y * im->w + x) * 4;
			p[0] = (uint8_t)(x < 32 ? 200 : 20);
			p[1] = (uint8_t)(y < 24 ? 40 : 180);
			p[2] = (uint8_t)((x / 8 + y / 8) % 2 ? 90 : 250);
			p[3] = 255;
			if (x >= 10 && x < 20 && y >= 10 && y < 20)
				p[3] = 0;                       /* a hole */
			if (y == 40)
				p[3] = (uint8_t)(x * 4);        /* alpha 0..252 */
			if ((x * 7 + y * 13) % 31 == 0)
				p[0] = 1, p[1] = 2, p[2] = 3;   /* scattered single pixels */
		}
}

static void pixels_exact(void **state)
{
	struct kiln_rgba im;
	struct kiln_buf svg = KILN_BUF_INIT, again = KILN_BUF_INIT;
	struct kiln_image8 r;
	struct kiln_error e;
	(void)state;
	draw(&im);
	assert_int_equal(kiln_polish_svg_pixels(&im, &svg, &e), 0);
	rasterise(&svg, &r);
	assert_int_equal(r.width, im.w);
	assert_int_equal(r.height, im.h);
	assert_int_equal(r.bands, 4);
	for (int i = 0; i < im.w * im.h; i++) {
		const uint8_t *a = im.px + (size_t)i * 4, *b = r.pixels + (size_t)i * 4;
		assert_int_equal(a[3], b[3]);
		for (int k = 0; k < 3 && a[3]; k++) {
			if (a[3] == 255)
				assert_int_equal(a[k], b[k]);
			else /* cairo rounds its premultiplication its own way: within 1 */
				assert_true(abs(premul(a[k], a[3]) - premul(b[k], b[3])) <= 1);
		}
	}
	kiln_image8_release(&r);
	/* same pixels, same bytes */
	assert_int_equal(kiln_polish_svg_pixels(&im, &again, &e), 0);
	assert_int_equal(svg.len, again.len);
	assert_memory_equal(svg.data, again.data, svg.len);
	kiln_buf_release(&svg);
	kiln_buf_release(&again);
	free(im.px);
}

/* one colour: one rectangle; two halves: two paths of one rectangle each */
static void pixels_merged(void **state)
{
	struct kiln_rgba im = {NULL, 40, 30};
	struct kiln_buf svg = KILN_BUF_INIT;
	struct kiln_error e;
	(void)state;
	im.px = malloc(40 * 30 * 4);
	assert_non_null(im.px);
	for (int i = 0; i < 40 * 30; i++) {
		uint8_t *p = im.px + (size_t)i * 4;
		p[0] = i % 40 < 15 ? 255 : 0, p[1] = 0, p[2] = 0, p[3] = 255;
	}
	assert_int_equal(kiln_polish_svg_pixels(&im, &svg, &e), 0);
	assert_int_equal(kiln_buf_add(&svg, "", 1), 0);
	assert_non_null(strstr(svg.data, "<path fill=\"#ff0000\" d=\"M0 0h15v30h-15z\"/>"));
	assert_non_null(strstr(svg.data, "<path fill=\"#000000\" d=\"M15 0h25v30h-25z\"/>"));
	kiln_buf_release(&svg);
	free(im.px);
}

static void trace_tolerance(void **state)
{
	struct kiln_rgba im = {NULL, 128, 128};
	struct kiln_buf svg = KILN_BUF_INIT;
	struct kiln_image8 r;
	struct kiln_error e;
	double sum = 0;
	size_t far = 0, n = 128 * 128;
	(void)state;
	im.px = malloc(n * 4);
	assert_non_null(im.px);
	/* a sky, a sun, a hill: three colours with curved edges */
	for (int y = 0; y < 128; y++)
		for (int x = 0; x < 128; x++) {
			uint8_t *p = im.px + ((size_t)y * 128 + x) * 4;
			int sun = (x - 40) * (x - 40) + (y - 40) * (y - 40) < 20 * 20;
			int hill = y > 90 + (x - 64) * (x - 64) / 200;
			p[0] = hill ? 30 : sun ? 250 : 90;
			p[1] = hill ? 160 : sun ? 210 : 150;
			p[2] = hill ? 40 : sun ? 30 : 230;
			p[3] = 255;
		}
	assert_int_equal(kiln_polish_svg_trace(&im, 4, &svg, &e), 0);
	rasterise(&svg, &r);
	assert_true(r.bands >= 3);
	for (size_t i = 0; i < n; i++) {
		int worst = 0;
		for (int k = 0; k < 3; k++) {
			int d = abs((int)im.px[i * 4 + k] - (int)r.pixels[i * (size_t)r.bands + k]);
			sum += d;
			worst = d > worst ? d : worst;
		}
		far += worst > 32;
	}
	kiln_image8_release(&r);
	print_message("trace: mean channel error %.3f, %.3f%% of pixels off by more than 32, "
		      "%zu bytes\n", sum / (3.0 * n), 100.0 * (double)far / n, svg.len);
	/* compact path data (relative, tenths, the sky a rect): 601 bytes; absolute coordinates
	 * with two decimals made 905 */
	assert_true(svg.len < 700);
	assert_true(sum / (3.0 * n) < 6.0);
	assert_true((double)far / n < 0.03);
	kiln_buf_release(&svg);
	free(im.px);
}

static void out_of_memory(void **state)
{
	struct kiln_rgba im;
	struct kiln_error e;
	(void)state;
	draw(&im);
	for (int pass = 0; pass < 2; pass++)
		for (long n = 0;; n++) {
			struct kiln_buf svg = KILN_BUF_INIT;
			int rc;
			long failed;
			kiln_alloc_fail_after(n);
			rc = pass ? kiln_polish_svg_trace(&im, 4, &svg, &e)
				  : kiln_polish_svg_pixels(&im, &svg, &e);
			failed = kiln_alloc_failed();
			kiln_alloc_fail_after(-1);
			kiln_buf_release(&svg);
			if (!failed) {
				assert_int_equal(rc, 0);
				break;
			}
			assert_int_not_equal(rc, 0);
		}
	free(im.px);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pixels_exact),
		cmocka_unit_test(pixels_merged),
		cmocka_unit_test(trace_tolerance),
		cmocka_unit_test(out_of_memory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
