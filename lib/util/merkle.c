/* merkle: RFC 6962 2.1 trees, recursively as the RFC defines them (depth log2 n); each level's
 * work is a hash per node, so a root of n leaves costs n - 1 node hashes. */
#include "util/merkle.h"
#include "util/alloc.h"
#include "util/sha.h"

#include <stdlib.h>
#include <string.h>

void kiln_merkle_leaf(const void *data, size_t n, uint8_t out[32])
{
	struct kiln_sha256 h;
	uint8_t z = 0;
	if (kiln_sha256_init(&h)) {
		memset(out, 0, 32);
		return;
	}
	kiln_sha256_update(&h, &z, 1);
	kiln_sha256_update(&h, data, n);
	kiln_sha256_final(&h, out, NULL);
}

void kiln_merkle_node(const uint8_t l[32], const uint8_t r[32], uint8_t out[32])
{
	uint8_t b[65];
	b[0] = 1;
	memcpy(b + 1, l, 32);
	memcpy(b + 33, r, 32);
	kiln_sha256_raw(b, 65, out);
}

/* the largest power of two below n (n >= 2) */
static size_t split(size_t n)
{
	size_t k = 1;
	while (k << 1 < n)
		k <<= 1;
	return k;
}

void kiln_merkle_root(const uint8_t (*leaves)[32], size_t n, uint8_t out[32])
{
	uint8_t l[32], r[32];
	size_t k;
	if (n == 0) {
		kiln_sha256_raw("", 0, out);
		return;
	}
	if (n == 1) {
		memcpy(out, leaves[0], 32);
		return;
	}
	k = split(n);
	kiln_merkle_root(leaves, k, l);
	kiln_merkle_root(leaves + k, n - k, r);
	kiln_merkle_node(l, r, out);
}

int kiln_merkle_tree_build(struct kiln_merkle_tree *t, const uint8_t (*leaves)[32], size_t n)
{
	memset(t, 0, sizeof *t);
	t->lv[0] = (uint8_t(*)[32])leaves;
	t->n[0] = n;
	t->levels = 1;
	while (t->n[t->levels - 1] > 1) {
		size_t l = t->levels, below = t->n[l - 1], m = (below + 1) / 2;
		if (!(t->lv[l] = kiln_malloc(m * 32))) {
			kiln_merkle_tree_release(t);
			return -1;
		}
		for (size_t i = 0; i < m; i++) {
			if (2 * i + 1 < below)
				kiln_merkle_node(t->lv[l - 1][2 * i], t->lv[l - 1][2 * i + 1],
						 t->lv[l][i]);
			else
				memcpy(t->lv[l][i], t->lv[l - 1][2 * i], 32);
		}
		t->n[l] = m;
		t->levels++;
	}
	return 0;
}

void kiln_merkle_tree_release(struct kiln_merkle_tree *t)
{
	for (size_t l = 1; l < t->levels; l++)
		free(t->lv[l]);
	memset(t, 0, sizeof *t);
}

void kiln_merkle_tree_path(const struct kiln_merkle_tree *t, size_t m, uint8_t (*path)[32],
			   size_t *len)
{
	*len = 0;
	for (size_t l = 0; l + 1 < t->levels; l++, m >>= 1) {
		size_t s = m ^ 1;
		if (s < t->n[l])
			memcpy(path[(*len)++], t->lv[l][s], 32);
	}
}

int kiln_merkle_verify(const uint8_t leaf[32], uint64_t m, uint64_t n, const uint8_t (*path)[32],
		       size_t len, const uint8_t root[32])
{
	uint64_t fn = m, sn = n - 1;
	uint8_t r[32];
	if (m >= n)
		return 0;
	memcpy(r, leaf, 32);
	for (size_t i = 0; i < len; i++) {
		if (sn == 0)
			return 0;
		if ((fn & 1) || fn == sn) {
			kiln_merkle_node(path[i], r, r);
			if (!(fn & 1))
				while (fn && !(fn & 1)) {
					fn >>= 1;
					sn >>= 1;
				}
		} else {
			kiln_merkle_node(r, path[i], r);
		}
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && !memcmp(r, root, 32);
}

void kiln_merkle_tree_prefix_root(const struct kiln_merkle_tree *t, size_t m, uint8_t out[32])
{
	uint8_t blocks[64][32], r[32];
	size_t nb = 0, off = 0;
	for (int k = 63; k >= 0; k--)
		if ((uint64_t)m >> k & 1) {
			memcpy(blocks[nb++], t->lv[k][off >> k], 32);
			off += (size_t)1 << k;
		}
	memcpy(out, blocks[nb - 1], 32);
	for (size_t i = nb - 1; i-- > 0;) {
		kiln_merkle_node(blocks[i], out, r);
		memcpy(out, r, 32);
	}
}
