/* lib/util/merkle.h: the Merkle tree of RFC 6962 section 2.1 (Certificate Transparency):
 * leaf hash SHA-256(0x00 || data), node SHA-256(0x01 || left || right), a tree of n leaves
 * split at k, the largest power of two below n; the empty tree's hash is SHA-256(""). Audit
 * paths (2.1.1) and their check (RFC 9162 2.1.3.2). Leaves are given by their leaf hashes. */
#ifndef KILN_UTIL_MERKLE_H
#define KILN_UTIL_MERKLE_H

#include <stddef.h>
#include <stdint.h>

void kiln_merkle_leaf(const void *data, size_t n, uint8_t out[32]);
void kiln_merkle_node(const uint8_t l[32], const uint8_t r[32], uint8_t out[32]);
/* Root of n leaves (leaves[i] 32 bytes each). */
void kiln_merkle_root(const uint8_t (*leaves)[32], size_t n, uint8_t out[32]);
/* Every level of a tree, for many audit paths: level 0 the leaves, each next level pairs
 * the one below, an odd last node carried up unchanged (the same tree as the RFC's split). */
struct kiln_merkle_tree {
	uint8_t (*lv[65])[32];    /* owned, except lv[0] (the caller's leaves) */
	size_t n[65];
	size_t levels;
};
/* 0, or -1 out of memory. The leaves must outlive the tree. */
int kiln_merkle_tree_build(struct kiln_merkle_tree *t, const uint8_t (*leaves)[32], size_t n);
void kiln_merkle_tree_release(struct kiln_merkle_tree *t);
/* The root of the tree of the first m leaves (0 < m <= t's n), from t's levels: m's binary
 * digits are its complete aligned subtrees, largest first, which the RFC's split joins from
 * the right. */
void kiln_merkle_tree_prefix_root(const struct kiln_merkle_tree *t, size_t m, uint8_t out[32]);
/* The audit path of leaf m (m < n), bottom up: *len hashes written to path (room for 64). */
void kiln_merkle_tree_path(const struct kiln_merkle_tree *t, size_t m, uint8_t (*path)[32],
			   size_t *len);
/* 1 when path proves leaf (its hash) is entry m of the tree of n leaves whose root is root. */
int kiln_merkle_verify(const uint8_t leaf[32], uint64_t m, uint64_t n, const uint8_t (*path)[32],
		       size_t len, const uint8_t root[32]);

#endif
