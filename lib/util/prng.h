/* lib/util/prng.h: the one PRNG of kiln, so that plans are the same on every machine.
 * xoshiro256** (Blackman & Vigna, 2018), state seeded by splitmix64. Bounded integers use
 * Lemire's multiply-shift with rejection (unbiased; integer-only, so platform-independent). */
#ifndef KILN_UTIL_PRNG_H
#define KILN_UTIL_PRNG_H

#include <stdint.h>

struct kiln_rng {
	uint64_t s[4];
};

/* splitmix64 step: advances *x and returns the next output. */
uint64_t kiln_splitmix64(uint64_t *x);
/* Seed from a 64-bit value and a stream tag (different tags give independent streams). */
void kiln_rng_seed(struct kiln_rng *r, uint64_t seed, uint64_t stream);
uint64_t kiln_rng_next(struct kiln_rng *r);
/* Uniform in [0, n), n > 0. */
uint64_t kiln_rng_below(struct kiln_rng *r, uint64_t n);
/* Fisher-Yates shuffle of n elements of `size` bytes. */
void kiln_rng_shuffle(struct kiln_rng *r, void *base, uint64_t n, unsigned size);

#endif
