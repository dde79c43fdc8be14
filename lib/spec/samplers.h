/* spec/samplers.h: sampler and schedule-type names (A1111's spelling is canonical) and what
 * each AI server ("a1111", "comfyui", "sdcpp") calls them. Spec-level data, used by the spec
 * loader for validation and by the engines for mapping. All strings returned are static. */
#ifndef KILN_SPEC_SAMPLERS_H
#define KILN_SPEC_SAMPLERS_H

#include <stddef.h>
#include "kiln/buf.h"
#include "kiln/error.h"

/* Map an A1111 sampler name ("Euler a") to the engine's ("a1111", "comfyui": euler_ancestral,
 * "sdcpp": euler_a). NULL: unknown, or the engine has no such sampler. */
const char *kiln_sampler_engine_name(const char *engine, const char *a1111_name);
/* Map an A1111 schedule type ("Karras") to the engine's ("karras"); NULL: the sampler's
 * default ("Automatic", or none given) or one the engine lacks. */
const char *kiln_scheduler_engine_name(const char *engine, const char *a1111_name);
/* The A1111 spelling of the sampler (schedule type) name[len], matched without regard to
 * case, or NULL when A1111 has none by that name. */
const char *kiln_sampler_canonical(const char *name, size_t len);
const char *kiln_scheduler_canonical(const char *name, size_t len);
/* 1 when engine can run A1111 sampler `sampler` with schedule type `scheduler` (NULL: the
 * sampler's default), both in their canonical spelling. */
int kiln_sampler_runs(const char *engine, const char *sampler, const char *scheduler);
/* Append to out the A1111 names engine accepts, quoted and comma-separated: samplers
 * (which 0) or schedule types (which 1). */
int kiln_sampler_list(const char *engine, int which, struct kiln_buf *out) KILN_MUST_CHECK;

#endif
