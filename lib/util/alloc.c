/* Allocation wrappers with failure injection. The countdown is atomic so that injected
 * failures also work while worker threads allocate; it costs one relaxed load when off. */
#include "util/alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static long fail_countdown = -1;
static long failed_count;

void kiln_alloc_fail_after(long n)
{
	__atomic_store_n(&failed_count, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&fail_countdown, n, __ATOMIC_RELAXED);
}

long kiln_alloc_failed(void)
{
	return __atomic_load_n(&failed_count, __ATOMIC_RELAXED);
}

static int should_fail(void)
{
	if (__atomic_load_n(&fail_countdown, __ATOMIC_RELAXED) < 0)
		return 0;
	if (__atomic_fetch_sub(&fail_countdown, 1, __ATOMIC_RELAXED) == 0) {
		__atomic_store_n(&fail_countdown, 0, __ATOMIC_RELAXED);
		__atomic_fetch_add(&failed_count, 1, __ATOMIC_RELAXED);
		return 1;
	}
	return 0;
}

void *kiln_malloc(size_t n)
{
	if (should_fail())
		return NULL;
	return malloc(n ? n : 1);
}

void *kiln_calloc(size_t n, size_t size)
{
	if (should_fail())
		return NULL;
	return calloc(n ? n : 1, size ? size : 1);
}

void *kiln_realloc(void *p, size_t n)
{
	if (should_fail())
		return NULL;
	return realloc(p, n ? n : 1);
}

void *kiln_reallocarray(void *p, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		return NULL;
	return kiln_realloc(p, n * size);
}

char *kiln_strndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *d = kiln_malloc(len + 1);
	if (!d)
		return NULL;
	memcpy(d, s, len);
	d[len] = 0;
	return d;
}

char *kiln_strdup(const char *s)
{
	return s ? kiln_strndup(s, SIZE_MAX) : NULL;
}
