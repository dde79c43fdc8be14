/* spec/layerfiles.c: every layer file a compose spec names, checked once from its header
 * (kiln_spec_check_layer_files in kiln/spec.h), before a plan: a file that is missing, not an
 * image, or not at the collection size is found here, named once, all of them together,
 * instead of once per item at render time.
 *
 * Sizes: one header read per distinct file (tens to hundreds); no pixel is decoded, so a
 * plan of a large collection stays as fast as its spec (the render stage decodes each file
 * fully, once, before its first item: lib/render/compose.c).
 */
#include "kiln/spec.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lf {
	const char *rel;
	const struct kiln_trait *t;
	const struct kiln_layer *l;
};

static int cmp_lf(const void *a, const void *b)
{
	return strcmp(((const struct lf *)a)->rel, ((const struct lf *)b)->rel);
}

int kiln_spec_files_report(struct kiln_error *e, int code, const char *where, const char *what,
			   const char *const *names, const char *const *whys, size_t n)
{
	size_t len, shown = 0;
	if (n == 1)
		return kiln_error_set(e, code, names[0], "%s", whys[0]);
	kiln_error_set(e, code, where, "%zu %s cannot be used:", n, what);
	if (!e)
		return code;
	for (size_t i = 0; i < n; i++) {
		char line[640], more[64];
		len = strlen(e->msg);
		snprintf(line, sizeof line, "\n  %s: %s", names[i], whys[i]);
		snprintf(more, sizeof more, "\n  ... and %zu more", n - shown);
		if (len + strlen(line) + (i + 1 < n ? strlen(more) : 0) >= sizeof e->msg) {
			snprintf(e->msg + len, sizeof e->msg - len, "%s", more);
			break;
		}
		memcpy(e->msg + len, line, strlen(line) + 1);
		shown++;
	}
	return code;
}

int kiln_spec_check_layer_files(const struct kiln_spec *s, struct kiln_error *e)
{
	struct lf *v = NULL;
	char **whys = NULL;
	const char **names = NULL, **wv = NULL;
	size_t n = 0, nt = 0, nbad = 0;
	int rc = 0;
	if (s->engine && strcmp(s->engine, "compose"))
		return 0;
	for (size_t l = 0; l < s->nlayers; l++)
		nt += s->layers[l].ntraits;
	v = kiln_calloc(nt + 1, sizeof *v);
	whys = kiln_calloc(nt + 1, sizeof *whys);
	names = kiln_calloc(nt + 1, sizeof *names);
	if (!v || !whys || !names)
		goto nomem;
	for (size_t l = 0; l < s->nlayers; l++)
		for (size_t t = 0; t < s->layers[l].ntraits; t++) {
			const struct kiln_trait *tr = &s->layers[l].traits[t];
			if (tr->is_none || !tr->file)
				continue;
			v[n].rel = tr->file;
			v[n].t = tr;
			v[n].l = &s->layers[l];
			n++;
		}
	qsort(v, n, sizeof *v, cmp_lf);
	for (size_t i = 0; i < n; i++) {
		struct kiln_error fe;
		char *path, why[600] = "";
		int w = 0, h = 0;
		if (i && !strcmp(v[i].rel, v[i - 1].rel))
			continue; /* each file once, whichever traits share it */
		if (!(path = kiln_fs_join(s->dir, v[i].rel)))
			goto nomem;
		kiln_error_clear(&fe);
		rc = kiln_image_check_pixels(path, s->qa.max_pixels ? s->qa.max_pixels :
					     KILN_IMAGE_MAX_PIXELS, &w, &h, &fe);
		free(path);
		if (rc == KILN_E_NOMEM) {
			if (e)
				*e = fe;
			goto out;
		}
		if (rc)
			snprintf(why, sizeof why, "not an image kiln can read (%.400s); re-export it as "
				 "a %dx%d RGBA PNG", fe.msg, s->width, s->height);
		else if (w != s->width || h != s->height)
			snprintf(why, sizeof why, "is %dx%d, the collection's images are %dx%d: "
				 "re-export the layer at the collection size (trait '%s' of layer "
				 "'%s', %s:%d)", w, h, s->width, s->height, v[i].t->name,
				 v[i].l->name, s->path ? s->path : "kiln.yaml", v[i].t->loc.line);
		rc = 0;
		if (!why[0])
			continue;
		if (!(whys[nbad] = kiln_strdup(why)))
			goto nomem;
		names[nbad++] = v[i].rel;
	}
	if (nbad) {
		wv = kiln_calloc(nbad + 1, sizeof *wv);
		if (!wv)
			goto nomem;
		for (size_t i = 0; i < nbad; i++)
			wv[i] = whys[i];
		rc = kiln_spec_files_report(e, KILN_E_SPEC, s->path, "layer files", names, wv, nbad);
	}
	goto out;
nomem:
	rc = kiln_error_set(e, KILN_E_NOMEM, s->path, "out of memory checking the layer files");
out:
	for (size_t i = 0; whys && i < nbad; i++)
		free(whys[i]);
	free(whys);
	free(wv);
	free(names);
	free(v);
	return rc;
}
