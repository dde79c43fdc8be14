/* qa: image and collection checks (include/kiln/qa.h).
 *
 * Images: worker threads take tokens in turn; each image is decoded once to 8-bit pixels
 * (lib/util/image.c) and everything is measured from that one buffer: size, bands, per-band
 * statistics, dHash/pHash and the pixel SHA-256. Findings are then made on the main thread in
 * token order, so the report does not depend on the thread count. Exact duplicates are groups
 * of equal pixel hashes (sorting, not pairs); near duplicates come from the multi-index search
 * of kiln/phash.h over the pHashes, never from comparing every pair.
 *
 * Sizes: per token one struct of ~200 bytes; the decoded image lives only inside its worker.
 */
#include "qa/phash.h"
#include "kiln/qa.h"
#include "kiln/release.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/fs.h"
#include "util/image.h"
#include "util/path.h"
#include "util/sha.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>
#include <vips/vips.h>

void kiln_qa_opts_default(struct kiln_qa_opts *o)
{
	memset(o, 0, sizeof *o);
	o->max_bytes = 10u << 20;
	o->alpha = -1;
	o->uniform_stddev = 2.0;
	o->black_level = 8;
	o->near_threshold = 4;
	o->near_dhash_threshold = -1;
	o->near_measure = KILN_NEAR_COLOR;
	o->near_color_distance = KILN_NEAR_COLOR_DISTANCE;
	o->max_pixels = KILN_QA_MAX_PIXELS;
}

struct measure {
	int missing;
	const char *not_file;   /* "a FIFO", "a folder", ...: not a regular file, never opened */
	int grey;               /* stored as greyscale (1 or 2 bands) */
	int too_large;          /* the header declares more than max_pixels: not decoded */
	char *error;            /* decode failure */
	uint64_t bytes;
	int width, height, bands, orig_bits, orig_srgb;
	char loader[32];
	double max_stddev;      /* over all bands */
	int max_color;          /* highest value in the colour bands */
	uint64_t phash, dhash;  /* dhash only when its threshold is on */
	char pixels[33];        /* kiln_pixel_key */
};

struct run {
	const struct kiln_qa_opts *o;
	const struct kiln_qa_token *tokens;
	size_t n;
	struct measure *m;
	uint8_t *lab;           /* n colour prints of KILN_LAB_BYTES (colour measure), or NULL */
	size_t next;
	size_t done;
	pthread_mutex_t mu;
};

/* One pass over the pixels for each band's sum, sum of squares and maximum. The bytes are
 * taken 48 at a time (48 is a multiple of every band count 1..4, so lane j is always band
 * j % bands) into 32-bit lane accumulators that the compiler vectorises, flushed to 64 bits
 * before they can overflow. bench/qa/qa_vs_decode.sh: a histogram per band was a third of
 * kiln qa's CPU (a store-to-load stall on every repeated value, and flat areas repeat); this
 * is about a tenth of that. */
#define LANES 48
#define FLUSH_EVERY 65536 /* 65536 * 255^2 < 2^32 */

static void stats(const struct kiln_image8 *im, struct measure *m)
{
	size_t npx = (size_t)im->width * (size_t)im->height, nb = (size_t)im->bands;
	size_t n = npx * nb, full = n / LANES * LANES, i = 0;
	int color = im->bands == 2 || im->bands == 4 ? im->bands - 1 : im->bands;
	uint64_t sum[4] = {0}, sq[4] = {0};
	uint8_t mx[LANES] = {0}, bmax[4] = {0};
	const uint8_t *p = im->pixels;
	while (i < full) {
		uint32_t s[LANES] = {0}, q[LANES] = {0};
		size_t stop = full - i > (size_t)LANES * FLUSH_EVERY ? i + (size_t)LANES * FLUSH_EVERY
								      : full;
		for (; i < stop; i += LANES)
			for (int j = 0; j < LANES; j++) {
				uint32_t v = p[i + j];
				s[j] += v;
				q[j] += v * v;
				mx[j] = (uint8_t)(v > mx[j] ? v : mx[j]);
			}
		for (int j = 0; j < LANES; j++) {
			sum[j % nb] += s[j];
			sq[j % nb] += q[j];
		}
	}
	for (int j = 0; j < LANES; j++)
		if (mx[j] > bmax[j % nb])
			bmax[j % nb] = mx[j];
	for (; i < n; i++) {
		uint32_t v = p[i];
		sum[i % nb] += v;
		sq[i % nb] += v * v;
		if (v > bmax[i % nb])
			bmax[i % nb] = (uint8_t)v;
	}
	m->max_stddev = 0;
	m->max_color = 0;
	for (size_t b = 0; b < nb; b++) {
		double mean = npx ? (double)sum[b] / (double)npx : 0;
		double var = npx ? (double)sq[b] / (double)npx - mean * mean : 0;
		double sd = var > 0 ? sqrt(var) : 0;
		if (sd > m->max_stddev)
			m->max_stddev = sd;
		if ((int)b < color && bmax[b] > m->max_color)
			m->max_color = bmax[b];
	}
}

/* A greyscale PNG's bit depth (1, 2, 4, 8 or 16) from its IHDR; 0 for anything else
 * (libvips widens 1..4-bit greys to 8-bit, so the decoded image does not tell). */
static int png_grey_bits(const char *path)
{
	unsigned char h[26];
	struct kiln_error e;
	size_t size;
	int fd, bits = 0;
	kiln_error_clear(&e);
	if (kiln_path_open_regular(path, 0, 0, &fd, &size, &e))
		return 0;
	if (read(fd, h, sizeof h) == (ssize_t)sizeof h && !memcmp(h, "\x89PNG\r\n\x1a\n", 8) &&
	    !memcmp(h + 12, "IHDR", 4) && (h[25] == 0 || h[25] == 4))
		bits = h[24];
	close(fd);
	return bits;
}

static void measure_one(const struct kiln_qa_token *t, struct measure *m, int want_dhash,
			uint64_t max_pixels, uint8_t *lab)
{
	struct kiln_image8 im;
	struct kiln_error e;
	struct stat st;
	kiln_error_clear(&e);
	if (!t->path || stat(t->path, &st) != 0) {
		m->missing = 1;
		return;
	}
	if (!S_ISREG(st.st_mode)) {
		/* a FIFO would block the decoder forever, a device could be endless */
		m->not_file = kiln_path_kind((unsigned)st.st_mode);
		return;
	}
	m->bytes = (uint64_t)st.st_size;
	if (max_pixels) {
		int rc = kiln_image_check_pixels(t->path, max_pixels, &m->width, &m->height, &e);
		if (rc == KILN_E_IMAGE && m->width > 0 && m->height > 0 &&
		    (uint64_t)m->width * (uint64_t)m->height > max_pixels) {
			m->too_large = 1;
			return;
		}
		/* an unreadable header: the full decode below says why */
	}
	if (kiln_image_decode8(t->path, &im, &e)) {
		m->error = kiln_strdup(e.msg);
		return;
	}
	m->width = im.width;
	m->height = im.height;
	m->bands = im.orig_bands;
	m->orig_bits = im.orig_bits;
	m->orig_srgb = im.orig_srgb;
	m->grey = im.orig_bands <= 2;
	if (m->grey && !strncmp(im.loader, "png", 3)) {
		int bits = png_grey_bits(t->path);
		if (bits && bits < 8)
			m->orig_bits = bits;
	}
	memcpy(m->loader, im.loader, sizeof m->loader);
	stats(&im, m);
	if (kiln_phash_from_pixels(im.pixels, im.width, im.height, im.bands, 0,
				   want_dhash ? &m->dhash : NULL, &m->phash, &e) ||
	    kiln_pixel_key(im.pixels, im.width, im.height, im.bands, 0, m->pixels, &e) ||
	    (lab && kiln_lab_print(im.pixels, im.width, im.height, im.bands, 0, lab, &e)))
		m->error = kiln_strdup(e.msg);
	kiln_image8_release(&im);
}

static void *worker(void *arg)
{
	struct run *r = arg;
	for (;;) {
		size_t k = __atomic_fetch_add(&r->next, 1, __ATOMIC_RELAXED);
		if (k >= r->n)
			break;
		measure_one(&r->tokens[k], &r->m[k], r->o->near_dhash_threshold >= 0,
			    r->o->max_pixels, r->lab ? r->lab + k * KILN_LAB_BYTES : NULL);
		__atomic_fetch_add(&r->done, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void progress(const struct kiln_qa_opts *o, const char *ev, size_t done, size_t total,
		     double t0)
{
	struct kiln_progress p;
	if (!o->progress)
		return;
	memset(&p, 0, sizeof p);
	p.stage = "qa";
	p.event = ev;
	p.done = done;
	p.total = total;
	p.ok = 1;
	p.elapsed = kiln_clock_mono() - t0;
	o->progress(&p, o->user);
}

static int measure_all(struct run *r, const struct kiln_qa_opts *o, struct kiln_error *e)
{
	unsigned nt = o->threads;
	pthread_t th[64];
	unsigned started = 0;
	double t0 = kiln_clock_mono();
	if (!nt) {
		long c = sysconf(_SC_NPROCESSORS_ONLN);
		nt = c > 0 ? (unsigned)c : 1;
	}
	if (nt > 64)
		nt = 64;
	if (nt > r->n)
		nt = r->n ? (unsigned)r->n : 1;
	progress(o, "start", 0, r->n, t0);
	for (; started < nt; started++)
		if (pthread_create(&th[started], NULL, worker, r))
			break;
	if (!started) {
		worker(r);
	} else {
		/* report while the workers run */
		/* progress ten times a second; the wait itself in 2 ms steps, so that a run of a
		 * few images does not last a whole 100 ms report period after they are done */
		double last = -1;
		while (__atomic_load_n(&r->done, __ATOMIC_RELAXED) < r->n) {
			double now = kiln_clock_mono();
			if (now - last >= 0.1) {
				progress(o, "item", __atomic_load_n(&r->done, __ATOMIC_RELAXED), r->n,
					 t0);
				last = now;
			}
			usleep(2000);
		}
		for (unsigned i = 0; i < started; i++)
			pthread_join(th[i], NULL);
	}
	progress(o, "end", r->n, r->n, t0);
	(void)e;
	return 0;
}

/* A finding about token t (NULL or a collection image: about no token). */
static int add(struct kiln_findings *out, struct kiln_error *e, const struct kiln_qa_token *t,
	       const char *check, int sev, const char *file, const char *fmt, ...)
	KILN_PRINTF(7, 8);
static int add(struct kiln_findings *out, struct kiln_error *e, const struct kiln_qa_token *t,
	       const char *check, int sev, const char *file, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int rc;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	kiln_findings_set_item(out, t && !t->extra, t ? t->id : 0);
	rc = kiln_findings_add(out, check, sev, file, "", "%s", msg);
	kiln_findings_set_item(out, 0, 0);
	if (rc)
		return kiln_error_set(e, KILN_E_NOMEM, "qa", "out of memory");
	return 0;
}

static const char *tname(const struct kiln_qa_token *t)
{
	return t->name ? t->name : t->path ? t->path : "?";
}

/* The loader a file's extension promises ("png" for .png), or NULL for one we do not map. */
static const char *ext_loader(const char *path)
{
	static const char *const map[][2] = {{"png", "png"}, {"jpg", "jpeg"}, {"jpeg", "jpeg"},
					     {"webp", "webp"}, {"gif", "gif"}, {"svg", "svg"},
					     {"avif", "heif"}, {"heic", "heif"}, {"tif", "tiff"},
					     {"tiff", "tiff"}};
	const char *dot = path ? strrchr(path, '.') : NULL;
	if (!dot || strchr(dot, '/'))
		return NULL;
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (!strcasecmp(dot + 1, map[i][0]))
			return map[i][1];
	return NULL;
}

static int findings_for(const struct kiln_qa_token *t, const struct measure *m,
			const struct kiln_qa_opts *o, int mw, int mh, int colour,
			struct kiln_findings *out, struct kiln_error *e)
{
	const char *f = tname(t), *want = ext_loader(t->path);
	int rc = 0;
	if (m->missing)
		return add(out, e, t, "image.missing", KILN_SEV_ERROR, f, "token %llu has no image "
			   "file: render or copy it", (unsigned long long)t->id);
	if (m->not_file)
		return add(out, e, t, "image.not_a_file", KILN_SEV_ERROR, f, "is %s, not a regular "
			   "file: not opened (token %llu's image must be an image file)", m->not_file,
			   (unsigned long long)t->id);
	if (o->max_bytes && m->bytes > o->max_bytes)
		rc = rc ? rc : add(out, e, t, "image.file_size", KILN_SEV_ERROR, f, "%llu bytes, over "
				   "the limit of %llu: compress it or lower the quality",
				   (unsigned long long)m->bytes, (unsigned long long)o->max_bytes);
	if (o->min_bytes && m->bytes < o->min_bytes)
		rc = rc ? rc : add(out, e, t, "image.file_size", KILN_SEV_ERROR, f, "%llu bytes, under "
				   "the minimum of %llu: the file is probably incomplete",
				   (unsigned long long)m->bytes, (unsigned long long)o->min_bytes);
	if (m->too_large)
		return rc ? rc : add(out, e, t, "image.too_large", KILN_SEV_ERROR, f, "declares "
				     "%dx%d pixels (%.1f Mpx), over the limit of %.1f Mpx: not "
				     "decoded (a full decode would need %.1f GiB); make it smaller "
				     "or raise the limit", m->width, m->height,
				     (double)m->width * m->height / 1048576.0,
				     (double)o->max_pixels / 1048576.0,
				     (double)m->width * m->height * 4 / 1073741824.0);
	if (m->error)
		return rc ? rc : add(out, e, t, "image.decode", KILN_SEV_ERROR, f, "%s", m->error);
	if (o->format && strncmp(m->loader, o->format, strlen(o->format)))
		rc = rc ? rc : add(out, e, t, "image.format", KILN_SEV_ERROR, f, "is %.*s, expected %s",
				   (int)(strlen(m->loader) > 4 ? strlen(m->loader) - 4 : strlen(m->loader)),
				   m->loader, o->format);
	/* what the name promises is what a browser or marketplace will be told it is */
	if (want && strncmp(m->loader, want, strlen(want)))
		rc = rc ? rc : add(out, e, t, "image.format", KILN_SEV_ERROR, f, "is %.*s data but "
				   "its name says %s: marketplaces serve it with the wrong type; "
				   "convert it or rename it",
				   (int)(strlen(m->loader) > 4 ? strlen(m->loader) - 4 : strlen(m->loader)),
				   m->loader, strrchr(t->path, '.') + 1);
	if (t->extra)
		;
	else if ((o->width && m->width != o->width) || (o->height && m->height != o->height))
		rc = rc ? rc : add(out, e, t, "image.dimensions", KILN_SEV_ERROR, f, "%dx%d, expected "
				   "%dx%d", m->width, m->height, o->width, o->height);
	else if (!o->width && !o->height && mw && (m->width != mw || m->height != mh))
		rc = rc ? rc : add(out, e, t, "image.dimensions", KILN_SEV_ERROR, f, "%dx%d, while "
				   "most tokens are %dx%d: a collection shows every token at one size; "
				   "resize it or regenerate it", m->width, m->height, mw, mh);
	/* a grey token among colour ones: most viewers show it, but it is the odd one out (and
	 * some pipelines drop or mis-convert it); a grey collection is no mismatch */
	if (!m->orig_srgb || m->orig_bits != 8 || (m->grey && colour))
		rc = rc ? rc : add(out, e, t, "image.color", KILN_SEV_WARNING, f, "%d-bit %s%s: "
				   "marketplaces expect 8-bit sRGB%s", m->orig_bits,
				   m->grey ? "greyscale" : m->orig_srgb ? "sRGB" : "non-sRGB colour",
				   m->grey && colour ? " while most tokens are colour (RGB or RGBA)" : "",
				   m->grey && colour ? ": convert it to RGB like the others" : "");
	int has_alpha = m->bands == 2 || m->bands == 4;
	if (o->alpha == 1 && !has_alpha)
		rc = rc ? rc : add(out, e, t, "image.alpha", KILN_SEV_ERROR, f, "has no alpha channel, "
				   "the spec asks for one");
	if (o->alpha == 0 && has_alpha)
		rc = rc ? rc : add(out, e, t, "image.alpha", KILN_SEV_WARNING, f, "has an alpha channel, "
				   "the spec asks for opaque images");
	if (m->max_color <= o->black_level)
		rc = rc ? rc : add(out, e, t, "image.black", KILN_SEV_ERROR, f, "is all black (no "
				   "channel above %d), as a safety filter returns: regenerate it",
				   m->max_color);
	else if (m->max_stddev < o->uniform_stddev)
		rc = rc ? rc : add(out, e, t, "image.blank", KILN_SEV_ERROR, f, "is blank or nearly "
				   "uniform (largest standard deviation %.2f < %.2f): check its "
				   "layers or regenerate it", m->max_stddev, o->uniform_stddev);
	return rc;
}

struct shaidx {
	const char *sha;
	size_t i;
};

static int cmp_sha(const void *a, const void *b)
{
	const struct shaidx *x = a, *y = b;
	int c = strcmp(x->sha, y->sha);
	return c ? c : (x->i < y->i ? -1 : x->i > y->i);
}

static int push_pair(struct kiln_qa_image_result *r, size_t *cap, size_t a, size_t b, int d,
		     int exact, double color)
{
	if (r->npairs == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		struct kiln_qa_pair *v = kiln_reallocarray(r->pairs, nc, sizeof *v);
		if (!v)
			return KILN_E_NOMEM;
		r->pairs = v;
		*cap = nc;
	}
	r->pairs[r->npairs].a = a;
	r->pairs[r->npairs].b = b;
	r->pairs[r->npairs].distance = d;
	r->pairs[r->npairs].exact = exact;
	r->pairs[r->npairs].color = color;
	r->npairs++;
	return 0;
}

static int cmp_pair(const void *a, const void *b)
{
	const struct kiln_neardup_pair *x = a, *y = b;
	if (x->i != y->i)
		return x->i < y->i ? -1 : 1;
	return x->j < y->j ? -1 : x->j > y->j;
}

struct nearest {
	size_t other;    /* the nearest earlier token */
	unsigned dist;
	double color;    /* its colour difference (colour measure), else -1 */
	size_t count;    /* earlier tokens within the threshold */
};

/* exact duplicates: each image after the first of its group is reported against the first */
static int duplicates(const struct kiln_qa_token *t, struct measure *m, const uint8_t *lab,
		      size_t n, const struct kiln_qa_opts *o, struct kiln_findings *out,
		      struct kiln_qa_image_result *r, struct kiln_error *e)
{
	struct shaidx *v = kiln_calloc(n + 1, sizeof *v);
	unsigned char *dup = kiln_calloc(n + 1, 1);
	uint64_t *hashes = NULL;
	size_t *idx = NULL, nv = 0, cap = 0, nh = 0;
	struct kiln_neardup_pair *pairs = NULL;
	struct nearest *near = NULL;
	size_t npairs = 0;
	int rc = 0;
	if (!v || !dup)
		goto nomem;
	for (size_t i = 0; i < n; i++)
		if (!t[i].extra && !m[i].missing && !m[i].not_file && !m[i].error &&
		    !m[i].too_large) {
			v[nv].sha = m[i].pixels;
			v[nv].i = i;
			nv++;
		}
	qsort(v, nv, sizeof *v, cmp_sha);
	for (size_t k = 1; k < nv; k++) {
		size_t g = k - 1;
		while (g > 0 && !strcmp(v[g - 1].sha, v[k].sha))
			g--;
		if (strcmp(v[g].sha, v[k].sha))
			continue;
		dup[v[k].i] = 1;
		if (push_pair(r, &cap, v[g].i, v[k].i, 0, 1, -1))
			goto nomem;
		if ((rc = add(out, e, &t[v[k].i], "image.duplicate", KILN_SEV_ERROR, tname(&t[v[k].i]),
			      "has the same pixels as %s (token %llu): two tokens look identical",
			      tname(&t[v[g].i]), (unsigned long long)t[v[g].i].id)))
			goto out;
	}
	if (o->near_threshold < 0 && o->near_dhash_threshold < 0)
		goto out;
	/* near duplicates among the rest */
	hashes = kiln_calloc(nv + 1, sizeof *hashes);
	idx = kiln_calloc(nv + 1, sizeof *idx);
	if (!hashes || !idx)
		goto nomem;
	for (size_t i = 0; i < n; i++)
		if (!t[i].extra && !m[i].missing && !m[i].not_file && !m[i].error && !m[i].too_large &&
		    !dup[i])
			idx[nh++] = i;
	/* A pair is near when its pHash or its dHash is within that hash's threshold: one
	 * index search per hash, the two pair lists merged (a pair both find counts once). */
	for (int kind = 0; kind < 2; kind++) {
		int thr = kind ? o->near_dhash_threshold : o->near_threshold;
		struct kiln_neardup_pair *got = NULL, *all;
		size_t ngot = 0;
		struct kiln_neardup_opts no = {thr, (int)o->threads, 0};
		if (thr < 0)
			continue;
		for (size_t k = 0; k < nh; k++)
			hashes[k] = kind ? m[idx[k]].dhash : m[idx[k]].phash;
		if ((rc = kiln_neardup_pairs(hashes, nh, &no, &got, &ngot, e)))
			goto out;
		if (!ngot) {
			free(got);
			continue;
		}
		if (!(all = kiln_reallocarray(pairs, npairs + ngot, sizeof *all))) {
			free(got);
			goto nomem;
		}
		memcpy(all + npairs, got, ngot * sizeof *got);
		free(got);
		pairs = all;
		npairs += ngot;
	}
	if (npairs && o->near_threshold >= 0 && o->near_dhash_threshold >= 0) {
		size_t w = 0;
		qsort(pairs, npairs, sizeof *pairs, cmp_pair);
		for (size_t k = 0; k < npairs; k++)
			if (!w || pairs[k].i != pairs[w - 1].i || pairs[k].j != pairs[w - 1].j)
				pairs[w++] = pairs[k];
		npairs = w;
	}
	/* One finding per token, on the later token of each pair, naming its nearest earlier
	 * token (by pHash distance) and how many more are within a threshold: collections drawn
	 * from the same layers can have hundreds of thousands of close pairs (bench/qa at
	 * 10,000 tokens: 536,534 at distance 4), and a finding per pair made a report nobody
	 * reads and 0.7 GiB of memory. */
	near = kiln_calloc(n + 1, sizeof *near);
	if (!near)
		goto nomem;
	for (size_t k = 0; k < npairs; k++) {
		size_t a = idx[pairs[k].i], b = idx[pairs[k].j];
		unsigned d = (unsigned)kiln_phash_distance(m[a].phash, m[b].phash);
		double col = -1;
		struct nearest *x;
		if (a > b) {
			size_t tmp = a;
			a = b;
			b = tmp;
		}
		/* the colour measure: the hashes (grey) found the pair; it is a look-alike only
		 * when the colours agree everywhere too (a trait of another colour does not) */
		if (lab) {
			col = kiln_lab_distance(lab + a * KILN_LAB_BYTES, lab + b * KILN_LAB_BYTES,
						o->near_color_distance);
			if (col > o->near_color_distance)
				continue;
		}
		x = &near[b];
		/* the nearest: by colour when colour judged the pair, else by pHash */
		if (!x->count || (lab && col < x->color) ||
		    ((!lab || col == x->color) && (d < x->dist || (d == x->dist && a < x->other)))) {
			x->other = a;
			x->dist = d;
			x->color = col;
		}
		x->count++;
	}
	for (size_t b = 0; b < n; b++) {
		const struct nearest *x = &near[b];
		char ha[17], hd[128] = "", more[64] = "", how[256];
		if (!x->count)
			continue;
		kiln_phash_hex(m[b].phash, ha);
		/* "same pixels" is image.duplicate's; a pHash distance of 0 is the same pHash */
		if (x->dist)
			snprintf(how, sizeof how, "pHash %s differs in %u bits (threshold %d)", ha,
				 x->dist, o->near_threshold);
		else
			snprintf(how, sizeof how, "same pHash %s (distance 0, threshold %d; the "
				 "pixels differ)", ha, o->near_threshold);
		if (lab)
			snprintf(how + strlen(how), sizeof how - strlen(how), ", colours within "
				 "delta E %.1f everywhere (limit %g)", x->color, o->near_color_distance);
		if (o->near_dhash_threshold >= 0)
			snprintf(hd, sizeof hd, ", dHash in %d (threshold %d)",
				 kiln_phash_distance(m[b].dhash, m[x->other].dhash),
				 o->near_dhash_threshold);
		if (x->count > 1)
			snprintf(more, sizeof more, "; %zu more earlier tokens are within it",
				 x->count - 1);
		if (push_pair(r, &cap, x->other, b, (int)x->dist, 0, x->color))
			goto nomem;
		if ((rc = add(out, e, &t[b], "image.near_duplicate", KILN_SEV_WARNING, tname(&t[b]),
			      "looks like %s (token %llu): %s%s%s", tname(&t[x->other]),
			      (unsigned long long)t[x->other].id, how, hd, more)))
			goto out;
	}
	goto out;
nomem:
	rc = kiln_error_set(e, KILN_E_NOMEM, "qa", "out of memory");
out:
	free(near);
	free(pairs);
	free(hashes);
	free(idx);
	free(v);
	free(dup);
	return rc;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The size more than half of the decoded tokens share (*w = 0 when none does): with no size
 * given, the odd one out is the error, whichever size the collection chose. */
static int majority_size(const struct kiln_qa_token *t, const struct measure *m, size_t n,
			 int *w, int *h, struct kiln_error *e)
{
	uint64_t *v = kiln_calloc(n + 1, sizeof *v);
	size_t nv = 0, best = 0;
	*w = *h = 0;
	if (!v)
		return kiln_error_set(e, KILN_E_NOMEM, "qa", "out of memory");
	for (size_t i = 0; i < n; i++)
		if (!t[i].extra && !m[i].missing && !m[i].not_file && !m[i].error && !m[i].too_large)
			v[nv++] = (uint64_t)(uint32_t)m[i].width << 32 | (uint32_t)m[i].height;
	qsort(v, nv, sizeof *v, cmp_u64);
	for (size_t i = 0, j; i < nv; i = j) {
		for (j = i; j < nv && v[j] == v[i]; j++)
			;
		if (j - i > best && 2 * (j - i) > nv) {
			best = j - i;
			*w = (int)(v[i] >> 32);
			*h = (int)(uint32_t)v[i];
		}
	}
	free(v);
	return 0;
}

int kiln_qa_images(const struct kiln_qa_token *tokens, size_t n, const struct kiln_qa_opts *o,
		   struct kiln_findings *out, struct kiln_qa_image_result *res, struct kiln_error *e)
{
	struct run r;
	size_t ndecoded = 0, ncolour = 0;
	int rc = 0, mw = 0, mh = 0;
	memset(res, 0, sizeof *res);
	memset(&r, 0, sizeof r);
	if ((rc = kiln_vips_init(e)))
		return rc;
	r.o = o;
	r.tokens = tokens;
	r.n = n;
	r.m = kiln_calloc(n + 1, sizeof *r.m);
	if (!r.m)
		return kiln_error_set(e, KILN_E_NOMEM, "qa", "out of memory");
	if (o->near_measure == KILN_NEAR_COLOR &&
	    (o->near_threshold >= 0 || o->near_dhash_threshold >= 0) &&
	    !(r.lab = kiln_calloc(n + 1, KILN_LAB_BYTES))) {
		free(r.m);
		return kiln_error_set(e, KILN_E_NOMEM, "qa", "out of memory");
	}
	if ((rc = measure_all(&r, o, e)))
		goto out;
	if (!o->width && !o->height && (rc = majority_size(tokens, r.m, n, &mw, &mh, e)))
		goto out;
	for (size_t i = 0; i < n; i++)
		if (!tokens[i].extra && !r.m[i].missing && !r.m[i].not_file && !r.m[i].error &&
		    !r.m[i].too_large) {
			ndecoded++;
			ncolour += !r.m[i].grey;
		}
	for (size_t i = 0; i < n; i++) {
		res->checked += !r.m[i].missing;
		if ((rc = findings_for(&tokens[i], &r.m[i], o, mw, mh, 2 * ncolour > ndecoded, out,
				       e)))
			goto out;
	}
	rc = duplicates(tokens, r.m, r.lab, n, o, out, res, e);
out:
	for (size_t i = 0; i < n; i++)
		free(r.m[i].error);
	free(r.m);
	free(r.lab);
	if (rc)
		kiln_qa_image_result_release(res);
	return rc;
}

void kiln_qa_image_result_release(struct kiln_qa_image_result *r)
{
	free(r->pairs);
	r->pairs = NULL;
	r->npairs = 0;
}

/* ---- collection ---------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int kiln_qa_collection(struct kiln_project *p, struct kiln_findings *out, struct kiln_error *e)
{
	const struct kiln_spec *s = p->spec;
	struct kiln_items items;
	uint64_t **targets = NULL;
	char **dna = NULL;
	int rc;
	memset(&items, 0, sizeof items);
	if ((rc = kiln_catalog_items(p->catalog, s, &items, e)))
		return rc;
	if ((rc = kiln_plan_targets(s, &targets, e)))
		goto out;
	/* ids continuous */
	for (size_t i = 0; i < items.n; i++)
		if (items.v[i].id != s->start_id + i) {
			rc = add(out, e, NULL, "collection.ids", KILN_SEV_ERROR, "catalog", "token ids are not "
				 "continuous from %llu: id %llu where %llu was expected: the plan is out "
				 "of date, plan again",
				 (unsigned long long)s->start_id, (unsigned long long)items.v[i].id,
				 (unsigned long long)(s->start_id + i));
			if (rc)
				goto out;
			break;
		}
	if (items.n != s->size && (rc = add(out, e, NULL, "collection.ids", KILN_SEV_ERROR, "catalog",
					     "%zu tokens planned, the spec asks for %llu: the plan "
					     "is out of date, plan again", items.n, (unsigned long long)s->size)))
		goto out;
	/* trait counts */
	for (size_t l = 0; l < s->nlayers; l++)
		for (size_t t = 0; t < s->layers[l].ntraits; t++) {
			uint64_t actual = 0;
			for (size_t i = 0; i < items.n; i++)
				actual += items.v[i].legendary < 0 && items.v[i].traits[l] == t;
			if (actual != targets[l][t] &&
			    (rc = add(out, e, NULL, "collection.trait_counts", KILN_SEV_ERROR, "catalog",
				      "%s=%s: %llu tokens, the target is %llu: the plan is out "
				      "of date, plan again",
				      s->layers[l].name, s->layers[l].traits[t].name,
				      (unsigned long long)actual,
				      (unsigned long long)targets[l][t])))
				goto out;
		}
	/* unique trait sets (bypass_dna layers left out) */
	dna = kiln_calloc(items.n + 1, sizeof *dna);
	if (!dna)
		goto nomem;
	size_t nd = 0;
	for (size_t i = 0; i < items.n; i++) {
		struct kiln_buf b = KILN_BUF_INIT;
		if (items.v[i].legendary >= 0)
			continue;
		for (size_t l = 0; l < s->nlayers; l++)
			if (!s->layers[l].bypass_dna && kiln_buf_addf(&b, "%u,", items.v[i].traits[l])) {
				kiln_buf_release(&b);
				goto nomem;
			}
		if (kiln_buf_addf(&b, "#%llu", (unsigned long long)items.v[i].id)) {
			kiln_buf_release(&b);
			goto nomem;
		}
		dna[nd++] = kiln_buf_detach(&b, NULL);
		if (!dna[nd - 1])
			goto nomem;
	}
	qsort(dna, nd, sizeof *dna, cmp_str);
	for (size_t k = 1; k < nd; k++) {
		size_t la = strchr(dna[k - 1], '#') - dna[k - 1];
		size_t lb = strchr(dna[k], '#') - dna[k];
		if (la == lb && !memcmp(dna[k - 1], dna[k], la) &&
		    (rc = add(out, e, NULL, "collection.unique", KILN_SEV_ERROR, "catalog", "tokens %s and "
			      "%s have the same traits: the plan is out of date, plan again",
			      strchr(dna[k - 1], '#') + 1,
			      strchr(dna[k], '#') + 1)))
			goto out;
	}
	for (size_t k = 0; k < nd; k++)
		free(dna[k]);
	free(dna);
	dna = NULL;
	goto out;
nomem:
	rc = kiln_error_set(e, KILN_E_NOMEM, "qa", "out of memory");
out:
	if (dna)
		for (size_t k = 0; dna[k]; k++)
			free(dna[k]);
	free(dna);
	if (targets)
		kiln_plan_targets_free(targets, s->nlayers);
	kiln_items_release(&items);
	return rc;
}

/* ---- severities ---------------------------------------------------------------------- */

/* The SHA-256 of a regular file, opened without blocking (a FIFO or device is refused). */
static int sha256_regular(const char *path, char hex[65], struct kiln_error *e)
{
	struct kiln_sha256 h;
	unsigned char buf[1 << 16];
	size_t size;
	int fd, rc = kiln_path_open_regular(path, 0, 0, &fd, &size, e);
	if (rc)
		return rc;
	if (kiln_sha256_init(&h)) {
		close(fd);
		return kiln_error_set(e, KILN_E_NOMEM, path, "out of memory");
	}
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = kiln_error_set(e, KILN_E_IO, path, "read failed: %s", strerror(errno));
			kiln_sha256_abort(&h);
			close(fd);
			return rc;
		}
		if (n == 0)
			break;
		kiln_sha256_update(&h, buf, (size_t)n);
	}
	close(fd);
	kiln_sha256_final(&h, NULL, hex);
	return 0;
}

int kiln_qa_provenance(const struct kiln_qa_provenance *pv, struct kiln_findings *out,
		       struct kiln_error *e)
{
	char (*sha)[65] = kiln_calloc(pv->n + 1, sizeof *sha), got[65];
	size_t bad = 0, refused = 0;
	int rc = 0;
	if (!sha)
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
	for (size_t i = 0; i < pv->n && !rc; i++) {
		struct kiln_error fe;
		kiln_error_clear(&fe);
		if (!pv->files[i]) {
			/* refused by the caller (and reported): never read */
			bad++;
			refused++;
		} else if (sha256_regular(pv->files[i], sha[i], &fe)) {
			bad++;
			rc = add(out, e, NULL, "collection.provenance", KILN_SEV_ERROR, pv->names[i],
				 "cannot be read (%s), so the provenance hash declared in %s cannot "
				 "be recomputed", fe.msg, pv->source);
		} else if (pv->listed && pv->listed[i] && strcmp(pv->listed[i], sha[i])) {
			bad++;
			rc = add(out, e, NULL, "collection.provenance", KILN_SEV_ERROR, pv->names[i],
				 "changed after the provenance was declared: %s lists SHA-256 %.12s..., "
				 "the file is %.12s...", pv->source, pv->listed[i], sha[i]);
		}
	}
	if (!rc && !refused &&
	    (rc = kiln_provenance_hash((const char(*)[65])sha, pv->n, got, e)) == 0 &&
	    strcasecmp(got, pv->declared))
		rc = add(out, e, NULL, "collection.provenance", KILN_SEV_ERROR, pv->source,
			 "declares provenance hash %s; the %zu images in their initial order give "
			 "%s%s", pv->declared, pv->n, got,
			 pv->listed && !bad ? " (every file matches its listed SHA-256: the order or "
					      "the count differs)" : "");
	free(sha);
	return rc;
}

void kiln_qa_apply_severities(struct kiln_findings *f, const struct kiln_qa_severity *s,
			      size_t n)
{
	size_t w = 0;
	for (size_t i = 0; i < f->n; i++) {
		struct kiln_finding *x = &f->v[i];
		size_t best = 0;
		int sev = x->severity;
		for (size_t k = 0; k < n; k++) {
			size_t len = strlen(s[k].check);
			int match = len && s[k].check[len - 1] == '.' ? !strncmp(x->check, s[k].check, len)
							       : !strcmp(x->check, s[k].check);
			if (match && len > best) {
				best = len;
				sev = s[k].severity;
			}
		}
		if (sev == KILN_SEV_OFF) {
			free(x->check);
			free(x->file);
			free(x->path);
			free(x->message);
			continue;
		}
		x->severity = sev;
		f->v[w++] = *x;
	}
	f->n = w;
}

/* ---- reports ------------------------------------------------------------------------- */

int kiln_qa_thumbnail(const char *src, const char *dst, int size, struct kiln_error *e)
{
	struct kiln_buf b = KILN_BUF_INIT;
	struct stat st;
	int rc;
	/* a token's image that is a FIFO would block the decoder forever (image.not_a_file) */
	if (stat(src, &st) != 0)
		return kiln_error_set(e, KILN_E_IO, src, "cannot stat: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return kiln_error_set(e, KILN_E_IO, src, "is %s, not a regular file: no thumbnail",
				      kiln_path_kind((unsigned)st.st_mode));
	rc = kiln_image_thumbnail(src, size, "png", 0, &b, e);
	if (!rc)
		rc = kiln_fs_write_atomic(dst, b.data, b.len, e);
	kiln_buf_release(&b);
	return rc;
}

void kiln_qa_stem(const char *file, char *out, size_t cap)
{
	const char *base = strrchr(file, '/');
	size_t n;
	base = base ? base + 1 : file;
	n = strcspn(base, ".");
	if (n >= cap)
		n = cap - 1;
	memcpy(out, base, n);
	out[n] = 0;
}
