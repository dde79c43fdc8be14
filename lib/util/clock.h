/* lib/util/clock.h: the two clocks kiln reads: monotonic seconds for durations and progress,
 * Unix seconds for what the catalog records. */
#ifndef KILN_UTIL_CLOCK_H
#define KILN_UTIL_CLOCK_H

#include <time.h>

static inline double kiln_clock_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline double kiln_clock_unix(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
