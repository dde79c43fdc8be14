/* lib/qa/run.h: the pieces a whole QA run shares between a project (project.c) and a folder
 * (folder.c): the list of token images, the qa: block turned into thresholds, and the checks of
 * a release's outputs (provenance, metadata folders). Private to lib/qa. */
#ifndef KILN_QA_RUN_H
#define KILN_QA_RUN_H

#include "kiln/catalog.h"
#include "kiln/qa.h"

/* Append a token (name and path copied; path may be NULL: missing). */
int qa_token_add(struct kiln_qa_result *r, uint64_t id, const char *name, const char *path,
		 int extra, struct kiln_error *e) KILN_MUST_CHECK;
/* Sort the tokens by id (a collection image, id UINT64_MAX, stays last). */
void qa_tokens_sort(struct kiln_qa_result *r);

/* The thresholds of a qa: block (severities are applied to the findings, not here). */
void qa_opts_from_spec(const struct kiln_qa_spec *q, struct kiln_qa_opts *o);
/* The caller's overrides. */
void qa_opts_override(const struct kiln_qa_run_opts *ro, struct kiln_qa_opts *o);
/* The qa: block's severities on f. */
void qa_apply_spec_severities(struct kiln_findings *f, const struct kiln_qa_spec *q);

/* The provenance hash declared by `flag` (over the tokens in id order; findings name it
 * flag_name) or by dir's provenance.json (over the files it lists): "collection.provenance"
 * findings. */
int qa_check_provenance(const char *flag, const char *flag_name, const char *dir,
			const struct kiln_qa_result *r, struct kiln_findings *f,
			struct kiln_error *e) KILN_MUST_CHECK;
/* A release's metadata outputs under dir: meta_dir (ERC-721, with the reveal mapping and image
 * location dir's records declare), dir/erc1155/metadata and dir/metaplex/assets (whose
 * numbers are positions: item_ids maps them to tokens, NULL: number = token). */
int qa_check_outputs(const char *dir, const char *meta_dir, const char *images_dir,
		     const uint64_t *item_ids, size_t nitem_ids, struct kiln_findings *f,
		     struct kiln_error *e) KILN_MUST_CHECK;
/* The polish SVGs of items (their final images in them): the token's image with image.format
 * svg, else the one released beside it; svg.* findings on f (svg.c). */
int qa_check_svgs(struct kiln_project *p, const struct kiln_items *items,
		  const struct kiln_qa_opts *o, struct kiln_findings *f,
		  struct kiln_error *e) KILN_MUST_CHECK;
/* One SVG file of a released folder (token id): the same checks; is_image: the token's image
 * (file size and viewBox only, the image checks judge the rest); beside (may be NULL): the
 * raster image it was made from, whose size it must have. */
int qa_check_svg_file(const char *path, uint64_t id, int is_image, const char *beside,
		      const struct kiln_qa_opts *o, struct kiln_findings *f, struct kiln_error *e)
	KILN_MUST_CHECK;
/* Move src's findings to dst, their file names prefixed; src is emptied. */
int qa_append_prefixed(struct kiln_findings *dst, struct kiln_findings *src, const char *prefix,
		       struct kiln_error *e) KILN_MUST_CHECK;

#endif
