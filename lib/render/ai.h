/* render/ai.h: the AI render stage (ai.c); kiln_project_render calls it for AI engines. */
#ifndef KILN_RENDER_AI_H
#define KILN_RENDER_AI_H

#include "kiln/error.h"
#include "kiln/render.h"

int kiln_project_render_ai(struct kiln_project *p, const struct kiln_render_opts *o,
			   struct kiln_render_result *r, struct kiln_error *e) KILN_MUST_CHECK;

#endif
