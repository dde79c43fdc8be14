/* spec/samplers: the sampler and schedule-type names a spec may ask for, and what each AI
 * server calls them. Spec-level data: the spec loader validates generate.sampler and
 * generate.scheduler against it (canonical A1111 spelling, and whether the spec's engine can run
 * the pair), and the engines (render/engines/engine.c) map names with it.
 *
 * Invariants: A1111's spelling is the canonical one (stored in the spec, part of AI recipes);
 * only true equivalents are mapped; a NULL cell means the server lacks the sampler, so a spec
 * asking for it there is refused at load time rather than sent.
 *
 * Sizes: two static tables of ~20 rows; lookups are linear scans.
 */
#include "kiln/spec.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* A1111's sampler names (modules/sd_samplers_kdiffusion.py, sd_samplers_timesteps.py) and
 * what each is called by ComfyUI (comfy/samplers.py KSAMPLER_NAMES + "ddim", "uni_pc",
 * "uni_pc_bh2") and by sd.cpp (sample_method_to_str in src/stable-diffusion.cpp, which now has
 * lms and dpm++2m_sde). NULL: that server has no such sampler, and a spec asking for it there is
 * refused at load time rather than sent (ComfyUI answers 400 value_not_in_list; sd-server
 * quietly keeps its default for a name it does not know: SDGenerationParams::from_json_str in
 * examples/common/common.cpp). Only true equivalents are mapped: dpm++2mv2 is a variant of
 * DPM++ 2M, not an SDE sampler; sd.cpp's ipndm is not A1111's PLMS; and sd.cpp's ddim_trailing
 * spaces its timesteps from the end, where A1111's DDIM takes leading ones
 * (sd_samplers_timesteps.py: timesteps from 1 upward in steps of 1000/steps), so DDIM has no
 * sd.cpp equivalent.
 *
 * dflt is the schedule type A1111 uses when the spec says "Automatic" (or nothing): the
 * sampler's own 'scheduler' option in samplers_k_diffusion (sd_samplers_kdiffusion.py, 1.9
 * and later: karras for DPM++ 2M, DPM++ SDE, DPM++ 2S a, DPM2, DPM2 a and Restart; exponential
 * for DPM++ 2M SDE, 2M SDE Heun and 3M SDE); a sampler without one takes the model's own
 * sigmas (KDiffusionSampler.get_sigmas: model_wrap.get_sigmas, the "Uniform" type); DDIM's
 * leading timesteps are ComfyUI's ddim_uniform schedule (comfy/samplers.py). NULL: a timestep
 * sampler whose schedule no schedule type names (nothing is sent, the server's default). */
static const struct {
	const char *a1111, *comfyui, *sdcpp, *dflt;
} samplers[] = {
	{"Euler a", "euler_ancestral", "euler_a", "Uniform"},
	{"Euler", "euler", "euler", "Uniform"},
	{"Heun", "heun", "heun", "Uniform"},
	{"DPM2", "dpm_2", "dpm2", "Karras"},
	{"DPM2 a", "dpm_2_ancestral", NULL, "Karras"},
	{"DPM++ 2S a", "dpmpp_2s_ancestral", "dpm++2s_a", "Karras"},
	{"DPM++ 2M", "dpmpp_2m", "dpm++2m", "Karras"},
	{"DPM++ SDE", "dpmpp_sde", NULL, "Karras"},
	{"DPM++ 2M SDE", "dpmpp_2m_sde", "dpm++2m_sde", "Exponential"},
	{"DPM++ 2M SDE Heun", NULL, NULL, "Exponential"},
	{"DPM++ 3M SDE", "dpmpp_3m_sde", NULL, "Exponential"},
	{"LMS", "lms", "lms", "Uniform"},
	{"DPM fast", "dpm_fast", NULL, "Uniform"},
	{"DPM adaptive", "dpm_adaptive", NULL, "Uniform"},
	{"Restart", NULL, NULL, "Karras"},
	{"DDIM", "ddim", NULL, "DDIM"},
	{"DDIM CFG++", NULL, NULL, NULL},
	{"PLMS", NULL, NULL, NULL},
	{"UniPC", "uni_pc", NULL, NULL},
	{"LCM", "lcm", "lcm", NULL},
};

/* A1111's schedule types (modules/sd_schedulers.py labels) -> ComfyUI's SCHEDULER_NAMES and
 * sd.cpp's scheduler_to_str (src/stable-diffusion.cpp; "normal" is its alias of discrete).
 * "Automatic" is resolved to the sampler's default first (kiln_scheduler_resolve). Uniform is
 * k-diffusion's model sigmas at evenly spaced timesteps: the same schedule as ComfyUI's
 * normal_scheduler and sd.cpp's discrete one. */
static const struct {
	const char *a1111, *comfyui, *sdcpp;
} schedulers[] = {
	{"Automatic", "", ""},
	{"Uniform", "normal", "discrete"},
	{"Karras", "karras", "karras"},
	{"Exponential", "exponential", "exponential"},
	{"Polyexponential", NULL, NULL},
	{"SGM Uniform", "sgm_uniform", "sgm_uniform"},
	{"KL Optimal", "kl_optimal", "kl_optimal"},
	{"Align Your Steps", NULL, "ays"},
	{"Simple", "simple", "simple"},
	{"Normal", "normal", "discrete"},
	{"DDIM", "ddim_uniform", NULL},
	{"Beta", "beta", "beta"},
};

#define NSAMPLERS (sizeof samplers / sizeof samplers[0])
#define NSCHEDULERS (sizeof schedulers / sizeof schedulers[0])

static const char *pick(const char *engine, const char *a1111, const char *comfyui,
			const char *sdcpp)
{
	if (!strcmp(engine, "comfyui"))
		return comfyui;
	if (!strcmp(engine, "sdcpp"))
		return sdcpp;
	return a1111;
}

const char *kiln_sampler_engine_name(const char *engine, const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < NSAMPLERS; i++)
		if (!strcasecmp(samplers[i].a1111, name))
			return pick(engine, samplers[i].a1111, samplers[i].comfyui, samplers[i].sdcpp);
	return NULL;
}

const char *kiln_scheduler_engine_name(const char *engine, const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < NSCHEDULERS; i++)
		if (!strcasecmp(schedulers[i].a1111, name)) {
			const char *v = pick(engine, schedulers[i].a1111, schedulers[i].comfyui,
					     schedulers[i].sdcpp);
			return v && *v && strcmp(v, "Automatic") ? v : NULL;
		}
	return NULL;
}

const char *kiln_sampler_canonical(const char *name, size_t len)
{
	for (size_t i = 0; i < NSAMPLERS; i++)
		if (strlen(samplers[i].a1111) == len && !strncasecmp(samplers[i].a1111, name, len))
			return samplers[i].a1111;
	return NULL;
}

const char *kiln_scheduler_canonical(const char *name, size_t len)
{
	for (size_t i = 0; i < NSCHEDULERS; i++)
		if (strlen(schedulers[i].a1111) == len &&
		    !strncasecmp(schedulers[i].a1111, name, len))
			return schedulers[i].a1111;
	return NULL;
}

const char *kiln_scheduler_resolve(const char *sampler, const char *scheduler)
{
	if (scheduler && strcasecmp(scheduler, "Automatic"))
		return kiln_scheduler_canonical(scheduler, strlen(scheduler));
	for (size_t i = 0; sampler && i < NSAMPLERS; i++)
		if (!strcasecmp(samplers[i].a1111, sampler))
			return samplers[i].dflt;
	return NULL;
}

int kiln_sampler_runs(const char *engine, const char *sampler, const char *scheduler)
{
	size_t i;
	for (i = 0; i < NSAMPLERS && strcmp(samplers[i].a1111, sampler); i++)
		;
	if (i == NSAMPLERS ||
	    !pick(engine, samplers[i].a1111, samplers[i].comfyui, samplers[i].sdcpp))
		return 0;
	/* "Automatic" (or none) runs where the sampler's default schedule does: A1111 resolves
	 * it itself; elsewhere kiln sends the default by name */
	if (!strcmp(engine, "a1111") && (!scheduler || !strcmp(scheduler, "Automatic")))
		return 1;
	if (!(scheduler = kiln_scheduler_resolve(sampler, scheduler)))
		return 1;
	for (i = 0; i < NSCHEDULERS && strcmp(schedulers[i].a1111, scheduler); i++)
		;
	return i < NSCHEDULERS &&
	       pick(engine, schedulers[i].a1111, schedulers[i].comfyui, schedulers[i].sdcpp);
}

int kiln_sampler_list(const char *engine, int which, struct kiln_buf *out)
{
	size_t n = which ? NSCHEDULERS : NSAMPLERS, k = 0;
	int rc = 0;
	for (size_t i = 0; !rc && i < n; i++) {
		const char *a = which ? schedulers[i].a1111 : samplers[i].a1111;
		const char *v = which ? pick(engine, a, schedulers[i].comfyui, schedulers[i].sdcpp)
				      : pick(engine, a, samplers[i].comfyui, samplers[i].sdcpp);
		if (v)
			rc = kiln_buf_addf(out, "%s'%s'", k++ ? ", " : "", a);
	}
	return rc;
}
