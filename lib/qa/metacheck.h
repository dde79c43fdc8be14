/* qa/metacheck.h: what the metadata checks share between one token's rules (qa/token.c) and
 * the folder checks (qa/metafolder.c). Private to lib/qa. */
#ifndef KILN_QA_METACHECK_H
#define KILN_QA_METACHECK_H

#include <stddef.h>
#include <jansson.h>
#include "kiln/qa.h"

/* s itself when at most 60 bytes, else its first 57 bytes and "..." in buf (n bytes). */
const char *kiln_mc_clip(const char *s, char *buf, size_t n);
/* The JSON type of v as a message names it ("a string", "null", ...). */
const char *kiln_mc_type_name(const json_t *v);
/* 1 when v is a JSON number (integer or real). */
int kiln_mc_is_number(const json_t *v);
/* Parse text; invalid JSON becomes the finding token.json_parse (NULL returned, *rc 0 unless
 * out of memory). */
json_t *kiln_mc_parse(const char *text, size_t len, const char *file, struct kiln_findings *out,
		      int *rc);

#endif
