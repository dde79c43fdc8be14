/* lib/util/alloc.h: allocation wrappers with failure injection (as curl's torture tests and
 * SQLite's faultsim). Every allocation in libkiln goes through these, so a test can make the
 * Nth allocation fail and check that kiln reports KILN_E_NOMEM and leaks nothing. */
#ifndef KILN_UTIL_ALLOC_H
#define KILN_UTIL_ALLOC_H

#include <stddef.h>

void *kiln_malloc(size_t n);
void *kiln_calloc(size_t n, size_t size);
void *kiln_realloc(void *p, size_t n);
/* realloc for arrays: n * size with overflow check */
void *kiln_reallocarray(void *p, size_t n, size_t size);
char *kiln_strdup(const char *s);
char *kiln_strndup(const char *s, size_t n);

/* Test hook: the allocation after `n` more succeed fails (n < 0: never). */
void kiln_alloc_fail_after(long n);
/* How many allocations failed by injection since the last kiln_alloc_fail_after(). */
long kiln_alloc_failed(void);

#endif
