/* xoshiro256** and splitmix64, written from the published definitions. */
#include "util/prng.h"

#include <string.h>

uint64_t kiln_splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void kiln_rng_seed(struct kiln_rng *r, uint64_t seed, uint64_t stream)
{
	uint64_t x = seed ^ (stream * 0xd1342543de82ef95ULL);
	for (int i = 0; i < 4; i++)
		r->s[i] = kiln_splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t kiln_rng_next(struct kiln_rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

uint64_t kiln_rng_below(struct kiln_rng *r, uint64_t n)
{
	unsigned __int128 m = (unsigned __int128)kiln_rng_next(r) * n;
	uint64_t low = (uint64_t)m;
	if (low < n) {
		uint64_t t = -n % n;
		while (low < t) {
			m = (unsigned __int128)kiln_rng_next(r) * n;
			low = (uint64_t)m;
		}
	}
	return (uint64_t)(m >> 64);
}

void kiln_rng_shuffle(struct kiln_rng *r, void *base, uint64_t n, unsigned size)
{
	unsigned char *b = base, tmp[64];
	if (n < 2 || size > sizeof tmp)
		return;
	for (uint64_t i = n - 1; i > 0; i--) {
		uint64_t j = kiln_rng_below(r, i + 1);
		if (j != i) {
			memcpy(tmp, b + i * size, size);
			memcpy(b + i * size, b + j * size, size);
			memcpy(b + j * size, tmp, size);
		}
	}
}
