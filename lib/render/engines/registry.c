/* The engines by name. A file of its own so that the files of render/engines stay layered:
 * a1111.c, comfyui.c and sdcpp.c use engine.c's shared helpers, and only this file, above
 * them, knows all three (scripts/check-modules.py checks that no two files call each other). */
#include <string.h>
#include "render/engines/engine.h"

const struct kiln_engine *kiln_engine_find(const char *name)
{
	if (!name)
		return NULL;
	if (!strcmp(name, "a1111"))
		return &kiln_engine_a1111;
	if (!strcmp(name, "comfyui"))
		return &kiln_engine_comfyui;
	if (!strcmp(name, "sdcpp"))
		return &kiln_engine_sdcpp;
	if (!strcmp(name, "sagemaker"))
		return &kiln_engine_sagemaker;
	if (!strcmp(name, "sagemaker-jumpstart"))
		return &kiln_engine_sagemaker_jumpstart;
	return NULL;
}

const struct kiln_engine *kiln_engine_for(const struct kiln_endpoint *ep)
{
	if (ep->platform == KILN_PLATFORM_RUNPOD)
		return !strcmp(kiln_endpoint_protocol(ep), "comfyui") ? &kiln_engine_runpod_comfyui
								       : &kiln_engine_runpod_a1111;
	/* self-hosted: its engine; SageMaker: "sagemaker" or "sagemaker-jumpstart" (its worker) */
	return kiln_engine_find(ep->engine);
}
