/* Numbers on the command line. strtoull accepts "-1" (as 2^64-1), leading blanks and "+",
 * and saturates silently past 2^64; (int)strtol truncates. Every verb reads its numbers here
 * instead, so "4294967300" is never taken as 4 and "99999999999999999999" never as 2^64-1. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include "cli.h"

int cli_parse_effort(const char *verb, const char *arg, unsigned *out)
{
	uint64_t n;
	if (cli_parse_u64(arg, 1, 1000, &n))
		return cli_usage(verb, "--effort takes a number from 1 to 1000, got '%s'", arg);
	*out = (unsigned)n;
	return 0;
}

int cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;
	if (!s || !isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}
