/* IPFS content ids and CARv1 files, offline, byte for byte as `ipfs add --cid-version=1`.
 *
 * What kubo (boxo) builds with its defaults and CIDv1, and so what this module builds:
 *  - a file is cut into 262144-byte chunks; each chunk is a raw block (codec 0x55). A file of
 *    one chunk (or none: the empty file is one empty chunk) is that raw block.
 *  - otherwise a balanced tree of dag-pb (0x70) nodes: leaves grouped 174 to a node, those
 *    nodes grouped 174 to a node, and so on until one node is left. A node's UnixFS Data is
 *    {Type: File, filesize, blocksizes[] (one per link)}; its links have an empty Name and
 *    Tsize = the child's cumulative DAG size. (boxo importer/balanced/builder.go builds the same
 *    shape depth-first; ipfs-unixfs-importer's balanced layout builds it level by level.)
 *  - a directory is a dag-pb node {Links sorted bytewise by Name, Data {Type: Directory}}, or,
 *    when the sum over its entries of len(name) + len(CID bytes) exceeds 262144 (boxo
 *    ipld/unixfs/io/directory.go: HAMTShardingSize = 256 KiB, SizeEstimationLinks, '>' not
 *    '>='), a HAMT: each shard node takes the next 8 bits of the entry name's murmur3-x64-64
 *    hash (h1 of x64_128 with seed 0, big-endian) as a slot 0..255; a slot with one entry is a
 *    link named "%02X" slot + name, a slot with more is a sub-shard linked as "%02X" alone.
 *    Shard Data: {Type: HAMTShard, Data: slot bitfield as a big-endian 256-bit number with
 *    leading zero bytes dropped, hashType: 0x22, fanout: 256}. (boxo ipld/unixfs/hamt/hamt.go)
 *  - dag-pb encodes Links (field 2) before Data (field 1); a link is Hash (1), Name (2),
 *    Tsize (3). UnixFS Data fields go in field order; blocksizes are not packed.
 *  - CIDs are v1, sha2-256: 01 <codec> 12 20 <digest>, 36 bytes, printed 'b' + base32 lower.
 *
 * Streaming: a file import holds one 256 KiB chunk and at most 174 links per tree level
 * (a level per factor of 174, so 4 levels reach 240 TB); a directory holds its entries'
 * names and ids only. The CAR writer gets blocks as they are made, children before parents
 * (the order kubo's balanced builder adds them; docs/ipfs.md compares it with the npm
 * importer's order), each distinct block once. Its header has a fixed size for our 36-byte
 * CIDs, so the root is written as zeros first and filled in by kiln_ipfs_car_finish().
 */
#include "kiln/release.h"
#include "util/alloc.h"
#include "util/sha.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
	CODEC_RAW = 0x55,
	CODEC_DAGPB = 0x70,
	CID_LEN = 36,            /* 01 codec 12 20 digest[32] */
	MAX_LEVELS = 12,         /* 174^12 chunks: far past any file size */
	HAMT_MAX_DEPTH = 8,      /* 64 hash bits, 8 per level */
	UNIXFS_DIRECTORY = 1,
	UNIXFS_FILE = 2,
	UNIXFS_HAMT = 5,
	HAMT_HASH_MURMUR3 = 0x22,
	CAR_HEADER_LEN = 59,     /* varint(58) + dag-cbor {roots: [cid], version: 1} */
	CAR_ROOT_OFFSET = 14,    /* where the root's 36 CID bytes sit in that header */
	CAR_BUF = 1 << 20,
};

struct cidbin {
	uint8_t codec;
	uint8_t digest[32];
};

/* A link in a file node: child id, child's cumulative DAG size, child's file bytes. */
struct flink {
	struct cidbin cid;
	uint64_t tsize;
	uint64_t fsize;
};

/* ---------------------------------------------------------------- small encoders */

static void cid_bytes(const struct cidbin *c, uint8_t out[CID_LEN])
{
	out[0] = 0x01;
	out[1] = c->codec;
	out[2] = 0x12;
	out[3] = 0x20;
	memcpy(out + 4, c->digest, 32);
}

static void cid_string(const struct cidbin *c, char out[KILN_IPFS_CID_MAX])
{
	static const char alpha[] = "abcdefghijklmnopqrstuvwxyz234567";
	uint8_t b[CID_LEN];
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;
	cid_bytes(c, b);
	out[o++] = 'b';
	for (size_t i = 0; i < CID_LEN; i++) {
		acc = (acc << 8) | b[i];
		bits += 8;
		while (bits >= 5) {
			out[o++] = alpha[(acc >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	if (bits > 0)
		out[o++] = alpha[(acc << (5 - bits)) & 31];
	out[o] = 0;
}

/* Parse a CID this module prints ('b' + base32 of a v1 sha2-256 raw or dag-pb CID). */
static int cid_parse(const char *s, struct cidbin *c)
{
	uint8_t b[CID_LEN];
	uint32_t acc = 0;
	int bits = 0;
	size_t n = 0;
	if (!s || s[0] != 'b' || strlen(s) != 1 + (CID_LEN * 8 + 4) / 5)
		return -1;
	for (const char *p = s + 1; *p; p++) {
		int v;
		if (*p >= 'a' && *p <= 'z')
			v = *p - 'a';
		else if (*p >= '2' && *p <= '7')
			v = *p - '2' + 26;
		else
			return -1;
		acc = (acc << 5) | (uint32_t)v;
		bits += 5;
		if (bits >= 8) {
			if (n == CID_LEN)
				return -1;
			b[n++] = (uint8_t)(acc >> (bits - 8));
			bits -= 8;
		}
		acc &= (1u << bits) - 1;
	}
	if (n != CID_LEN || acc != 0 || b[0] != 0x01 ||
	    (b[1] != CODEC_RAW && b[1] != CODEC_DAGPB) || b[2] != 0x12 || b[3] != 0x20)
		return -1;
	c->codec = b[1];
	memcpy(c->digest, b + 4, 32);
	return 0;
}

static size_t varint_put(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

static size_t varint_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* A protobuf writer into a reusable buffer. Allocation failure is sticky (checked once at the
 * end), which keeps the encoders straight-line. */
struct pbw {
	uint8_t *p;
	size_t len, cap;
	int oom;
};

static void pbw_reserve(struct pbw *w, size_t extra)
{
	size_t cap;
	uint8_t *p;
	if (w->oom || w->len + extra <= w->cap)
		return;
	cap = w->cap ? w->cap : 4096;
	while (cap < w->len + extra)
		cap *= 2;
	p = kiln_realloc(w->p, cap);
	if (!p) {
		w->oom = 1;
		return;
	}
	w->p = p;
	w->cap = cap;
}

static void pbw_raw(struct pbw *w, const void *p, size_t n)
{
	pbw_reserve(w, n);
	if (w->oom)
		return;
	if (n)
		memcpy(w->p + w->len, p, n);
	w->len += n;
}

static void pbw_varint(struct pbw *w, uint64_t v)
{
	pbw_reserve(w, 10);
	if (w->oom)
		return;
	w->len += varint_put(w->p + w->len, v);
}

static void pbw_free(struct pbw *w)
{
	free(w->p);
	memset(w, 0, sizeof *w);
}

/* One PBLink as field 2 of a PBNode: 12 len { 0a 24 cid, 12 len name, 18 tsize }. */
static void pb_link(struct pbw *w, const struct cidbin *c, const char *prefix, size_t plen,
		    const char *name, size_t nlen, uint64_t tsize)
{
	uint8_t cb[CID_LEN];
	size_t inner = 2 + CID_LEN + 1 + varint_len(plen + nlen) + plen + nlen + 1 +
		       varint_len(tsize);
	cid_bytes(c, cb);
	pbw_varint(w, 0x12);
	pbw_varint(w, inner);
	pbw_varint(w, 0x0a);
	pbw_varint(w, CID_LEN);
	pbw_raw(w, cb, CID_LEN);
	pbw_varint(w, 0x12);
	pbw_varint(w, plen + nlen);
	pbw_raw(w, prefix, plen);
	pbw_raw(w, name, nlen);
	pbw_varint(w, 0x18);
	pbw_varint(w, tsize);
}

/* PBNode field 1 (Data) holding the UnixFS message already in u. */
static void pb_data(struct pbw *w, const struct pbw *u)
{
	pbw_varint(w, 0x0a);
	pbw_varint(w, u->len);
	pbw_raw(w, u->p, u->len);
}

static void sha256_cid(uint8_t codec, const void *p, size_t n, struct cidbin *c)
{
	c->codec = codec;
	kiln_sha256_raw(p, n, c->digest);
}

/* ---------------------------------------------------------------- murmur3 */

static uint64_t rotl64(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static uint64_t fmix64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ULL;
	k ^= k >> 33;
	return k;
}

static uint64_t load64le(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* MurmurHash3_x64_128 with seed 0; returns h1, the 64 bits go-ipfs (and so everyone) uses. */
static uint64_t murmur3_x64_64(const void *key, size_t len)
{
	const uint8_t *data = key, *tail;
	const uint64_t c1 = 0x87c37b91114253d5ULL, c2 = 0x4cf5ad432745937fULL;
	uint64_t h1 = 0, h2 = 0, k1, k2;
	size_t nblocks = len / 16;
	for (size_t i = 0; i < nblocks; i++) {
		k1 = load64le(data + 16 * i);
		k2 = load64le(data + 16 * i + 8);
		k1 *= c1;
		k1 = rotl64(k1, 31);
		k1 *= c2;
		h1 ^= k1;
		h1 = rotl64(h1, 27);
		h1 += h2;
		h1 = h1 * 5 + 0x52dce729;
		k2 *= c2;
		k2 = rotl64(k2, 33);
		k2 *= c1;
		h2 ^= k2;
		h2 = rotl64(h2, 31);
		h2 += h1;
		h2 = h2 * 5 + 0x38495ab5;
	}
	tail = data + nblocks * 16;
	k1 = k2 = 0;
	switch (len & 15) {
	case 15: k2 ^= (uint64_t)tail[14] << 48; /* fall through */
	case 14: k2 ^= (uint64_t)tail[13] << 40; /* fall through */
	case 13: k2 ^= (uint64_t)tail[12] << 32; /* fall through */
	case 12: k2 ^= (uint64_t)tail[11] << 24; /* fall through */
	case 11: k2 ^= (uint64_t)tail[10] << 16; /* fall through */
	case 10: k2 ^= (uint64_t)tail[9] << 8;   /* fall through */
	case 9:
		k2 ^= (uint64_t)tail[8];
		k2 *= c2;
		k2 = rotl64(k2, 33);
		k2 *= c1;
		h2 ^= k2;
		/* fall through */
	case 8: k1 ^= (uint64_t)tail[7] << 56; /* fall through */
	case 7: k1 ^= (uint64_t)tail[6] << 48; /* fall through */
	case 6: k1 ^= (uint64_t)tail[5] << 40; /* fall through */
	case 5: k1 ^= (uint64_t)tail[4] << 32; /* fall through */
	case 4: k1 ^= (uint64_t)tail[3] << 24; /* fall through */
	case 3: k1 ^= (uint64_t)tail[2] << 16; /* fall through */
	case 2: k1 ^= (uint64_t)tail[1] << 8;  /* fall through */
	case 1:
		k1 ^= (uint64_t)tail[0];
		k1 *= c1;
		k1 = rotl64(k1, 31);
		k1 *= c2;
		h1 ^= k1;
		break;
	default:
		break;
	}
	h1 ^= (uint64_t)len;
	h2 ^= (uint64_t)len;
	h1 += h2;
	h2 += h1;
	h1 = fmix64(h1);
	h2 = fmix64(h2);
	h1 += h2;
	return h1;
}

/* ---------------------------------------------------------------- CAR writer */

struct kiln_ipfs_car {
	int fd;
	char *path, *tmp;
	uint8_t *buf;
	size_t fill;
	uint64_t bytes, blocks;
	int created;  /* tmp exists on disk */
	/* set of written ids (codec + digest), open addressing, cap a power of two */
	uint8_t (*keys)[33];
	size_t cap, count;
	int failed, finished;
	int nosync;   /* the caller syncs the file system itself (kiln release: one syncfs) */
};

static int car_flush(struct kiln_ipfs_car *car, struct kiln_error *e)
{
	size_t off = 0;
	while (off < car->fill) {
		ssize_t w = write(car->fd, car->buf + off, car->fill - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			car->failed = 1;
			return kiln_error_set(e, KILN_E_IO, car->path, "cannot write the CAR: %s",
					      strerror(errno));
		}
		off += (size_t)w;
	}
	car->fill = 0;
	return 0;
}

static int car_out(struct kiln_ipfs_car *car, const void *p, size_t n, struct kiln_error *e)
{
	const uint8_t *s = p;
	while (n) {
		size_t room = CAR_BUF - car->fill, k = n < room ? n : room;
		memcpy(car->buf + car->fill, s, k);
		car->fill += k;
		s += k;
		n -= k;
		if (car->fill == CAR_BUF && car_flush(car, e))
			return KILN_E_IO;
	}
	car->bytes += (uint64_t)(s - (const uint8_t *)p);
	return 0;
}

/* Home slot of a key in a table of cap (a power of two) slots: the digest is uniform. */
static size_t car_slot(const uint8_t key[33], size_t cap)
{
	return (size_t)(load64le(key + 1) ^ key[0]) & (cap - 1);
}

/* 1 if key is already in the set, else inserts it and returns 0; -1 on allocation failure.
 * An empty slot has codec byte 0 (a key's is 0x55 or 0x70). */
static int car_seen(struct kiln_ipfs_car *car, const uint8_t key[33])
{
	size_t i;
	if ((car->count + 1) * 2 > car->cap) {
		size_t ncap = car->cap ? car->cap * 2 : 1024;
		uint8_t(*nk)[33] = kiln_calloc(ncap, 33);
		if (!nk)
			return -1;
		for (size_t j = 0; j < car->cap; j++) {
			if (!car->keys[j][0])
				continue;
			for (i = car_slot(car->keys[j], ncap); nk[i][0]; i = (i + 1) & (ncap - 1))
				;
			memcpy(nk[i], car->keys[j], 33);
		}
		free(car->keys);
		car->keys = nk;
		car->cap = ncap;
	}
	for (i = car_slot(key, car->cap); car->keys[i][0]; i = (i + 1) & (car->cap - 1))
		if (!memcmp(car->keys[i], key, 33))
			return 1;
	memcpy(car->keys[i], key, 33);
	car->count++;
	return 0;
}

/* Write one block (unless it is already in the CAR). car may be NULL. */
static int car_put(struct kiln_ipfs_car *car, const struct cidbin *c, const void *block,
		   size_t n, struct kiln_error *e)
{
	uint8_t key[33], head[10 + CID_LEN];
	size_t h;
	int seen;
	if (!car)
		return 0;
	if (car->failed || car->finished)
		return kiln_error_set(e, KILN_E_IO, car->path,
				      car->finished ? "the CAR is already finished"
						    : "the CAR failed earlier");
	key[0] = c->codec;
	memcpy(key + 1, c->digest, 32);
	seen = car_seen(car, key);
	if (seen < 0) {
		car->failed = 1; /* a CAR missing a block must not be finished */
		return kiln_error_set(e, KILN_E_NOMEM, car->path, "out of memory");
	}
	if (seen)
		return 0;
	h = varint_put(head, CID_LEN + (uint64_t)n);
	cid_bytes(c, head + h);
	if (car_out(car, head, h + CID_LEN, e) || car_out(car, block, n, e))
		return KILN_E_IO;
	car->blocks++;
	return 0;
}

int kiln_ipfs_car_open(struct kiln_ipfs_car **out, const char *path, struct kiln_error *e)
{
	static unsigned long counter;
	unsigned long k = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
	/* varint(58), then dag-cbor {"roots": [tag 42 bytes(00 ++ cid)], "version": 1} with the
	 * keys in dag-cbor order (shorter first) */
	static const uint8_t head_a[] = { 0x3a, 0xa2, 0x65, 'r', 'o', 'o', 't', 's', 0x81,
					  0xd8, 0x2a, 0x58, 0x25, 0x00 };
	static const uint8_t head_b[] = { 0x67, 'v', 'e', 'r', 's', 'i', 'o', 'n', 0x01 };
	static const uint8_t noroot[CID_LEN];
	struct kiln_ipfs_car *car;
	size_t tlen;
	int rc = 0;
	*out = NULL;
	car = kiln_calloc(1, sizeof *car);
	if (!car)
		return kiln_error_set(e, KILN_E_NOMEM, path, "out of memory");
	car->fd = -1;
	tlen = strlen(path) + 64;
	car->path = kiln_strdup(path);
	car->tmp = kiln_malloc(tlen);
	car->buf = kiln_malloc(CAR_BUF);
	if (!car->path || !car->tmp || !car->buf) {
		rc = kiln_error_set(e, KILN_E_NOMEM, path, "out of memory");
		goto out;
	}
	snprintf(car->tmp, tlen, "%s.tmp-%ld-%lu", path, (long)getpid(), k);
	car->fd = open(car->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (car->fd < 0) {
		rc = kiln_error_set(e, KILN_E_IO, path, "cannot create the CAR: %s",
				    strerror(errno));
		goto out;
	}
	car->created = 1;
	if ((rc = car_out(car, head_a, sizeof head_a, e)) ||
	    (rc = car_out(car, noroot, CID_LEN, e)) ||
	    (rc = car_out(car, head_b, sizeof head_b, e)))
		goto out;
out:
	if (rc) {
		kiln_ipfs_car_free(car);
		return rc;
	}
	*out = car;
	return 0;
}

int kiln_ipfs_car_finish(struct kiln_ipfs_car *car, const char *root_cid, struct kiln_error *e)
{
	struct cidbin root;
	uint8_t rb[CID_LEN];
	if (car->finished || car->failed)
		return kiln_error_set(e, KILN_E_IO, car->path,
				      car->finished ? "the CAR is already finished"
						    : "the CAR failed earlier");
	if (cid_parse(root_cid, &root))
		return kiln_error_set(e, KILN_E_USAGE, car->path,
				      "root '%s' is not a base32 CIDv1 (sha2-256, raw or dag-pb)",
				      root_cid ? root_cid : "(null)");
	if (car_flush(car, e))
		return KILN_E_IO;
	cid_bytes(&root, rb);
	if (pwrite(car->fd, rb, CID_LEN, CAR_ROOT_OFFSET) != CID_LEN) {
		car->failed = 1;
		return kiln_error_set(e, KILN_E_IO, car->path, "cannot write the CAR's root: %s",
				      strerror(errno));
	}
	if (!car->nosync && fsync(car->fd) != 0) {
		car->failed = 1;
		return kiln_error_set(e, KILN_E_IO, car->path, "fsync failed: %s", strerror(errno));
	}
	if (close(car->fd) != 0) {
		car->fd = -1;
		car->failed = 1;
		return kiln_error_set(e, KILN_E_IO, car->path, "close failed: %s", strerror(errno));
	}
	car->fd = -1;
	if (rename(car->tmp, car->path) != 0) {
		car->failed = 1;
		return kiln_error_set(e, KILN_E_IO, car->path,
				      "cannot rename the CAR into place: %s", strerror(errno));
	}
	car->finished = 1;
	return 0;
}

void kiln_ipfs_car_set_sync(struct kiln_ipfs_car *car, int sync)
{
	car->nosync = !sync;
}

uint64_t kiln_ipfs_car_blocks(const struct kiln_ipfs_car *car)
{
	return car->blocks;
}

uint64_t kiln_ipfs_car_bytes(const struct kiln_ipfs_car *car)
{
	return car->bytes;
}

void kiln_ipfs_car_free(struct kiln_ipfs_car *car)
{
	if (!car)
		return;
	if (car->fd >= 0)
		close(car->fd);
	if (car->created && !car->finished)
		unlink(car->tmp);
	free(car->keys);
	free(car->buf);
	free(car->tmp);
	free(car->path);
	free(car);
}

/* ---------------------------------------------------------------- files */

struct kiln_ipfs_file {
	struct kiln_ipfs_car *car;
	uint8_t *chunk;            /* KILN_IPFS_CHUNK_SIZE bytes */
	size_t fill;
	uint64_t nleaves;
	struct flink *level[MAX_LEVELS]; /* each KILN_IPFS_MAX_LINKS links, allocated on use */
	int count[MAX_LEVELS];
	int top;                   /* highest level in use, -1 when none */
	struct pbw node, unixfs;   /* scratch for encoding */
	int finished, failed;
};

/* Ready f for a new file, keeping its buffers. */
static void file_reset(struct kiln_ipfs_file *f)
{
	f->fill = 0;
	f->nleaves = 0;
	memset(f->count, 0, sizeof f->count);
	f->top = -1;
	f->finished = f->failed = 0;
	f->node.oom = f->unixfs.oom = 0;
}

int kiln_ipfs_file_new(struct kiln_ipfs_file **out, struct kiln_ipfs_car *car,
		       struct kiln_error *e)
{
	struct kiln_ipfs_file *f = kiln_calloc(1, sizeof *f);
	*out = NULL;
	if (!f)
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
	f->chunk = kiln_malloc(KILN_IPFS_CHUNK_SIZE);
	if (!f->chunk) {
		free(f);
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
	}
	f->car = car;
	file_reset(f);
	*out = f;
	return 0;
}

void kiln_ipfs_file_free(struct kiln_ipfs_file *f)
{
	if (!f)
		return;
	for (int i = 0; i < MAX_LEVELS; i++)
		free(f->level[i]);
	pbw_free(&f->node);
	pbw_free(&f->unixfs);
	free(f->chunk);
	free(f);
}

static int file_push(struct kiln_ipfs_file *f, int lvl, const struct flink *l,
		     struct kiln_error *e);

/* Turn level lvl's links into one File node, write it, and hand its link to level lvl+1. */
static int file_reduce(struct kiln_ipfs_file *f, int lvl, struct kiln_error *e)
{
	struct flink up = { { 0 }, 0, 0 };
	struct flink *v = f->level[lvl];
	int n = f->count[lvl], rc;
	f->unixfs.len = f->node.len = 0;
	for (int i = 0; i < n; i++)
		up.fsize += v[i].fsize;
	pbw_varint(&f->unixfs, 0x08);
	pbw_varint(&f->unixfs, UNIXFS_FILE);
	pbw_varint(&f->unixfs, 0x18);
	pbw_varint(&f->unixfs, up.fsize);
	for (int i = 0; i < n; i++) {
		pbw_varint(&f->unixfs, 0x20);
		pbw_varint(&f->unixfs, v[i].fsize);
	}
	for (int i = 0; i < n; i++) {
		pb_link(&f->node, &v[i].cid, "", 0, "", 0, v[i].tsize);
		up.tsize += v[i].tsize;
	}
	pb_data(&f->node, &f->unixfs);
	if (f->node.oom || f->unixfs.oom)
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
	sha256_cid(CODEC_DAGPB, f->node.p, f->node.len, &up.cid);
	up.tsize += f->node.len;
	if ((rc = car_put(f->car, &up.cid, f->node.p, f->node.len, e)))
		return rc;
	f->count[lvl] = 0;
	return file_push(f, lvl + 1, &up, e);
}

static int file_push(struct kiln_ipfs_file *f, int lvl, const struct flink *l,
		     struct kiln_error *e)
{
	if (lvl >= MAX_LEVELS)
		return kiln_error_set(e, KILN_E_IO, NULL, "file too large for a balanced DAG");
	if (!f->level[lvl]) {
		f->level[lvl] = kiln_malloc(KILN_IPFS_MAX_LINKS * sizeof(struct flink));
		if (!f->level[lvl])
			return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
	}
	/* A full level is closed before it gets more: it happens only when more data follows. */
	if (f->count[lvl] == KILN_IPFS_MAX_LINKS) {
		int rc = file_reduce(f, lvl, e);
		if (rc)
			return rc;
	}
	f->level[lvl][f->count[lvl]++] = *l;
	if (lvl > f->top)
		f->top = lvl;
	return 0;
}

/* A chunk of n bytes at p is complete: write it as a raw leaf. Full levels are closed first,
 * bottom up, so blocks come out in the order kubo's balanced builder adds them. */
static int file_leaf(struct kiln_ipfs_file *f, const uint8_t *p, size_t n, struct kiln_error *e)
{
	struct flink l;
	int rc;
	for (int k = 0; k <= f->top && f->count[k] == KILN_IPFS_MAX_LINKS; k++) {
		rc = file_reduce(f, k, e);
		if (rc)
			return rc;
	}
	sha256_cid(CODEC_RAW, p, n, &l.cid);
	l.tsize = l.fsize = n;
	if ((rc = car_put(f->car, &l.cid, p, n, e)))
		return rc;
	f->nleaves++;
	return file_push(f, 0, &l, e);
}

int kiln_ipfs_file_write(struct kiln_ipfs_file *f, const void *p, size_t n, struct kiln_error *e)
{
	const uint8_t *s = p;
	int rc;
	if (f->finished || f->failed)
		return kiln_error_set(e, KILN_E_USAGE, NULL,
				      "write to a finished or failed IPFS file import");
	while (n) {
		if (f->fill == 0 && n >= KILN_IPFS_CHUNK_SIZE) {
			/* whole chunk straight from the caller's memory */
			rc = file_leaf(f, s, KILN_IPFS_CHUNK_SIZE, e);
			s += KILN_IPFS_CHUNK_SIZE;
			n -= KILN_IPFS_CHUNK_SIZE;
		} else {
			size_t k = KILN_IPFS_CHUNK_SIZE - f->fill;
			if (k > n)
				k = n;
			memcpy(f->chunk + f->fill, s, k);
			f->fill += k;
			s += k;
			n -= k;
			rc = 0;
			if (f->fill == KILN_IPFS_CHUNK_SIZE) {
				rc = file_leaf(f, f->chunk, f->fill, e);
				f->fill = 0;
			}
		}
		if (rc) {
			f->failed = 1;
			return rc;
		}
	}
	return 0;
}

static int file_finish_bin(struct kiln_ipfs_file *f, struct flink *root, struct kiln_error *e)
{
	int rc = 0;
	if (f->finished || f->failed)
		return kiln_error_set(e, KILN_E_USAGE, NULL,
				      "IPFS file import already finished or failed");
	if (f->fill > 0 || f->nleaves == 0) {
		/* the last partial chunk; an empty file is one empty chunk */
		rc = file_leaf(f, f->chunk, f->fill, e);
		f->fill = 0;
		if (rc)
			goto out;
	}
	/* the top level with one link is the root; anything else gets a parent node (which
	 * may add a level) */
	for (int k = 0;; k++) {
		if (k > f->top) {
			rc = kiln_error_set(e, KILN_E_FAILED, NULL,
					    "IPFS file DAG has no root (bug)");
			goto out;
		}
		if (k == f->top && f->count[k] == 1) {
			*root = f->level[k][0];
			break;
		}
		if (f->count[k] && (rc = file_reduce(f, k, e)))
			goto out;
	}
out:
	if (rc)
		f->failed = 1;
	else
		f->finished = 1;
	return rc;
}

int kiln_ipfs_file_finish(struct kiln_ipfs_file *f, char cid[KILN_IPFS_CID_MAX],
			  uint64_t *dag_size, struct kiln_error *e)
{
	struct flink root;
	int rc = file_finish_bin(f, &root, e);
	if (rc)
		return rc;
	if (cid)
		cid_string(&root.cid, cid);
	if (dag_size)
		*dag_size = root.tsize;
	return 0;
}

/* Read the file at path into f (which must be fresh or reset) and finish it. */
static int file_import_fd_path(struct kiln_ipfs_file *f, const char *path, struct flink *root,
			       struct kiln_error *e)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
	if (fd < 0)
		return kiln_error_set(e, KILN_E_IO, path, "cannot open: %s", strerror(errno));
	if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
		rc = kiln_error_set(e, KILN_E_IO, path, "not a regular file");
		goto out;
	}
#ifdef POSIX_FADV_SEQUENTIAL
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
	for (;;) {
		ssize_t r = read(fd, f->chunk + f->fill, KILN_IPFS_CHUNK_SIZE - f->fill);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = kiln_error_set(e, KILN_E_IO, path, "read failed: %s", strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		f->fill += (size_t)r;
		if (f->fill == KILN_IPFS_CHUNK_SIZE) {
			rc = file_leaf(f, f->chunk, f->fill, e);
			f->fill = 0;
			if (rc) {
				f->failed = 1;
				goto out;
			}
		}
	}
	rc = file_finish_bin(f, root, e);
out:
	close(fd);
	if (rc && e && !e->where[0])
		snprintf(e->where, sizeof e->where, "%s", path);
	return rc;
}

int kiln_ipfs_import_path(const char *path, struct kiln_ipfs_car *car,
			  char cid[KILN_IPFS_CID_MAX], uint64_t *dag_size, struct kiln_error *e)
{
	struct kiln_ipfs_file *f;
	struct flink root;
	int rc = kiln_ipfs_file_new(&f, car, e);
	if (rc)
		return rc;
	rc = file_import_fd_path(f, path, &root, e);
	if (!rc) {
		if (cid)
			cid_string(&root.cid, cid);
		if (dag_size)
			*dag_size = root.tsize;
	}
	kiln_ipfs_file_free(f);
	return rc;
}

int kiln_ipfs_file_cid(const char *path, char cid[KILN_IPFS_CID_MAX], struct kiln_error *e)
{
	return kiln_ipfs_import_path(path, NULL, cid, NULL, e);
}

int kiln_ipfs_buf_cid(const void *p, size_t n, char cid[KILN_IPFS_CID_MAX], struct kiln_error *e)
{
	struct kiln_ipfs_file *f;
	int rc = kiln_ipfs_file_new(&f, NULL, e);
	if (rc)
		return rc;
	if (!(rc = kiln_ipfs_file_write(f, p, n, e)))
		rc = kiln_ipfs_file_finish(f, cid, NULL, e);
	kiln_ipfs_file_free(f);
	return rc;
}

/* ---------------------------------------------------------------- directories */

struct dentry {
	char *name;
	size_t len;
	struct cidbin cid;
	uint64_t tsize;
	uint64_t hash; /* murmur3 of the name, for HAMT slots (top byte first) */
};

struct kiln_ipfs_dir {
	struct kiln_ipfs_car *car;
	struct dentry *v;
	size_t n, cap;
	uint64_t estimate;          /* sum of len(name) + len(CID bytes), boxo's estimate */
	struct kiln_ipfs_file *file; /* reused for each file added */
	struct pbw node, unixfs;
	int finished;
};

int kiln_ipfs_dir_new(struct kiln_ipfs_dir **out, struct kiln_ipfs_car *car, struct kiln_error *e)
{
	struct kiln_ipfs_dir *d = kiln_calloc(1, sizeof *d);
	*out = NULL;
	if (!d)
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
	d->car = car;
	*out = d;
	return 0;
}

void kiln_ipfs_dir_free(struct kiln_ipfs_dir *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i].name);
	free(d->v);
	kiln_ipfs_file_free(d->file);
	pbw_free(&d->node);
	pbw_free(&d->unixfs);
	free(d);
}

size_t kiln_ipfs_dir_count(const struct kiln_ipfs_dir *d)
{
	return d->n;
}

static int check_name(const struct kiln_ipfs_dir *d, const char *name, struct kiln_error *e)
{
	if (d->finished)
		return kiln_error_set(e, KILN_E_USAGE, name, "directory already finished");
	if (!name || !name[0] || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
		return kiln_error_set(e, KILN_E_USAGE, name ? name : "(null)",
				      "not a directory entry name (empty, '.', '..' or has '/')");
	return 0;
}

static int dir_push(struct kiln_ipfs_dir *d, const char *name, const struct cidbin *c,
		    uint64_t tsize, struct kiln_error *e)
{
	struct dentry *x;
	if (d->n == d->cap) {
		size_t ncap = d->cap ? d->cap * 2 : 64;
		struct dentry *nv = kiln_reallocarray(d->v, ncap, sizeof *nv);
		if (!nv)
			return kiln_error_set(e, KILN_E_NOMEM, name, "out of memory");
		d->v = nv;
		d->cap = ncap;
	}
	x = &d->v[d->n];
	x->len = strlen(name);
	x->name = kiln_strndup(name, x->len);
	if (!x->name)
		return kiln_error_set(e, KILN_E_NOMEM, name, "out of memory");
	x->cid = *c;
	x->tsize = tsize;
	x->hash = murmur3_x64_64(name, x->len);
	d->estimate += x->len + CID_LEN;
	d->n++;
	return 0;
}

static int dir_file(struct kiln_ipfs_dir *d, struct kiln_error *e)
{
	if (d->file) {
		file_reset(d->file);
		return 0;
	}
	return kiln_ipfs_file_new(&d->file, d->car, e);
}

int kiln_ipfs_dir_add_file(struct kiln_ipfs_dir *d, const char *name, const char *path,
			   char cid[KILN_IPFS_CID_MAX], struct kiln_error *e)
{
	struct flink root;
	int rc;
	if ((rc = check_name(d, name, e)) || (rc = dir_file(d, e)))
		return rc;
	if ((rc = file_import_fd_path(d->file, path, &root, e)))
		return rc;
	if (cid)
		cid_string(&root.cid, cid);
	return dir_push(d, name, &root.cid, root.tsize, e);
}

int kiln_ipfs_dir_add_buf(struct kiln_ipfs_dir *d, const char *name, const void *p, size_t n,
			  char cid[KILN_IPFS_CID_MAX], struct kiln_error *e)
{
	struct flink root;
	int rc;
	if ((rc = check_name(d, name, e)) || (rc = dir_file(d, e)))
		return rc;
	if ((rc = kiln_ipfs_file_write(d->file, p, n, e)) ||
	    (rc = file_finish_bin(d->file, &root, e)))
		return rc;
	if (cid)
		cid_string(&root.cid, cid);
	return dir_push(d, name, &root.cid, root.tsize, e);
}

int kiln_ipfs_dir_add_cid(struct kiln_ipfs_dir *d, const char *name, const char *cid,
			  uint64_t dag_size, struct kiln_error *e)
{
	struct cidbin c;
	int rc;
	if ((rc = check_name(d, name, e)))
		return rc;
	if (cid_parse(cid, &c))
		return kiln_error_set(e, KILN_E_USAGE, name,
				      "'%s' is not a CIDv1 (sha2-256, raw or dag-pb) in base32",
				      cid ? cid : "(null)");
	return dir_push(d, name, &c, dag_size, e);
}

static int dir_finish_bin(struct kiln_ipfs_dir *d, struct cidbin *c, uint64_t *tsize,
			  struct kiln_error *e);

int kiln_ipfs_dir_add_dir(struct kiln_ipfs_dir *d, const char *name, struct kiln_ipfs_dir *sub,
			  char cid[KILN_IPFS_CID_MAX], struct kiln_error *e)
{
	struct cidbin c;
	uint64_t tsize;
	int rc;
	if ((rc = check_name(d, name, e)) || (rc = dir_finish_bin(sub, &c, &tsize, e)))
		goto out;
	if (cid)
		cid_string(&c, cid);
	rc = dir_push(d, name, &c, tsize, e);
out:
	kiln_ipfs_dir_free(sub);
	return rc;
}

static int cmp_dentry_name(const void *a, const void *b)
{
	const struct dentry *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->name, y->name, n);
	if (c)
		return c;
	return x->len < y->len ? -1 : x->len > y->len;
}

/* Encode the node in d->node, hash it, write it; *tsize = its cumulative DAG size given
 * the sum of its links' sizes. */
static int dir_emit(struct kiln_ipfs_dir *d, uint64_t links_tsize, struct cidbin *c,
		    uint64_t *tsize, struct kiln_error *e)
{
	int rc;
	if (d->node.oom || d->unixfs.oom)
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
	sha256_cid(CODEC_DAGPB, d->node.p, d->node.len, c);
	*tsize = d->node.len + links_tsize;
	if ((rc = car_put(d->car, c, d->node.p, d->node.len, e)))
		return rc;
	return 0;
}

static int dir_flat(struct kiln_ipfs_dir *d, struct cidbin *c, uint64_t *tsize,
		    struct kiln_error *e)
{
	uint64_t sum = 0;
	d->node.len = d->unixfs.len = 0;
	for (size_t i = 0; i < d->n; i++) {
		pb_link(&d->node, &d->v[i].cid, "", 0, d->v[i].name, d->v[i].len, d->v[i].tsize);
		sum += d->v[i].tsize;
	}
	pbw_varint(&d->unixfs, 0x08);
	pbw_varint(&d->unixfs, UNIXFS_DIRECTORY);
	pb_data(&d->node, &d->unixfs);
	return dir_emit(d, sum, c, tsize, e);
}

static unsigned slot_of(const struct dentry *x, int depth)
{
	return (unsigned)(x->hash >> (56 - 8 * depth)) & 0xff;
}

/* Build the shard holding entries v[0..n) (all with the same slots above depth), children
 * first. Entries come sorted by (slot at each depth), so a slot's entries are contiguous. */
static int hamt_build(struct kiln_ipfs_dir *d, struct dentry **v, size_t n, int depth,
		      struct cidbin *c, uint64_t *tsize, struct kiln_error *e)
{
	static const char hex[] = "0123456789ABCDEF";
	struct flink *sub = NULL;
	uint8_t bits[32] = { 0 };
	uint64_t sum = 0;
	size_t i, j, nsub = 0, first;
	int rc = 0;
	if (depth >= HAMT_MAX_DEPTH)
		return kiln_error_set(e, KILN_E_FAILED, v[0]->name,
				      "names collide in all 64 bits of the HAMT hash");
	/* sub-shards first (they are written before this node, in slot order) */
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && slot_of(v[j], depth) == slot_of(v[i], depth); j++)
			;
		if (j - i > 1)
			nsub++;
	}
	if (nsub) {
		sub = kiln_calloc(nsub, sizeof *sub);
		if (!sub)
			return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
	}
	for (i = 0, nsub = 0; i < n; i = j) {
		for (j = i + 1; j < n && slot_of(v[j], depth) == slot_of(v[i], depth); j++)
			;
		if (j - i > 1) {
			rc = hamt_build(d, v + i, j - i, depth + 1, &sub[nsub].cid,
					&sub[nsub].tsize, e);
			if (rc)
				goto out;
			nsub++;
		}
	}
	d->node.len = d->unixfs.len = 0;
	for (i = 0, nsub = 0; i < n; i = j) {
		unsigned s = slot_of(v[i], depth);
		char prefix[2] = { hex[s >> 4], hex[s & 15] };
		for (j = i + 1; j < n && slot_of(v[j], depth) == s; j++)
			;
		bits[31 - s / 8] |= (uint8_t)(1u << (s % 8));
		if (j - i > 1) {
			pb_link(&d->node, &sub[nsub].cid, prefix, 2, "", 0, sub[nsub].tsize);
			sum += sub[nsub].tsize;
			nsub++;
		} else {
			pb_link(&d->node, &v[i]->cid, prefix, 2, v[i]->name, v[i]->len,
				v[i]->tsize);
			sum += v[i]->tsize;
		}
	}
	for (first = 0; first < 32 && !bits[first]; first++)
		;
	pbw_varint(&d->unixfs, 0x08);
	pbw_varint(&d->unixfs, UNIXFS_HAMT);
	if (first < 32) {
		pbw_varint(&d->unixfs, 0x12);
		pbw_varint(&d->unixfs, 32 - first);
		pbw_raw(&d->unixfs, bits + first, 32 - first);
	}
	pbw_varint(&d->unixfs, 0x28);
	pbw_varint(&d->unixfs, HAMT_HASH_MURMUR3);
	pbw_varint(&d->unixfs, 0x30);
	pbw_varint(&d->unixfs, KILN_IPFS_SHARD_FANOUT);
	pb_data(&d->node, &d->unixfs);
	rc = dir_emit(d, sum, c, tsize, e);
out:
	free(sub);
	return rc;
}

static int cmp_dentry_hash(const void *a, const void *b)
{
	const struct dentry *x = *(const struct dentry *const *)a;
	const struct dentry *y = *(const struct dentry *const *)b;
	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	return cmp_dentry_name(x, y);
}

static int dir_hamt(struct kiln_ipfs_dir *d, struct cidbin *c, uint64_t *tsize,
		    struct kiln_error *e)
{
	struct dentry **v = kiln_reallocarray(NULL, d->n, sizeof *v);
	int rc;
	if (!v)
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
	for (size_t i = 0; i < d->n; i++)
		v[i] = &d->v[i];
	/* sorting by the hash, top byte first, groups every depth's slots */
	qsort(v, d->n, sizeof *v, cmp_dentry_hash);
	rc = hamt_build(d, v, d->n, 0, c, tsize, e);
	free(v);
	return rc;
}

static int dir_finish_bin(struct kiln_ipfs_dir *d, struct cidbin *c, uint64_t *tsize,
			  struct kiln_error *e)
{
	int rc;
	if (d->finished)
		return kiln_error_set(e, KILN_E_USAGE, NULL, "directory already finished");
	d->finished = 1;
	if (d->n > 1)
		qsort(d->v, d->n, sizeof *d->v, cmp_dentry_name);
	for (size_t i = 1; i < d->n; i++)
		if (!cmp_dentry_name(&d->v[i - 1], &d->v[i]))
			return kiln_error_set(e, KILN_E_USAGE, d->v[i].name,
					      "two directory entries have this name");
	if (d->estimate > KILN_IPFS_SHARD_THRESHOLD)
		rc = dir_hamt(d, c, tsize, e);
	else
		rc = dir_flat(d, c, tsize, e);
	/* the encoding buffers can be large (a flat directory is up to ~300 KiB) */
	pbw_free(&d->node);
	pbw_free(&d->unixfs);
	return rc;
}

int kiln_ipfs_dir_finish(struct kiln_ipfs_dir *d, char cid[KILN_IPFS_CID_MAX],
			 uint64_t *dag_size, struct kiln_error *e)
{
	struct cidbin c;
	uint64_t tsize;
	int rc = dir_finish_bin(d, &c, &tsize, e);
	if (rc)
		return rc;
	if (cid)
		cid_string(&c, cid);
	if (dag_size)
		*dag_size = tsize;
	return 0;
}

/* ---------------------------------------------------------------- folders on disk */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int tree_dir(const char *path, struct kiln_ipfs_car *car, int hidden, struct cidbin *c,
		    uint64_t *tsize, struct kiln_error *e);

static int tree_fill(struct kiln_ipfs_dir *d, const char *path, int hidden, struct kiln_error *e)
{
	DIR *dir = opendir(path);
	struct dirent *de;
	char **names = NULL, *child = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	if (!dir)
		return kiln_error_set(e, KILN_E_IO, path, "cannot open folder: %s",
				      strerror(errno));
	while ((errno = 0, de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!hidden && de->d_name[0] == '.')
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			char **nn = kiln_reallocarray(names, ncap, sizeof *nn);
			if (!nn) {
				rc = kiln_error_set(e, KILN_E_NOMEM, path, "out of memory");
				goto out;
			}
			names = nn;
			cap = ncap;
		}
		if (!(names[n] = kiln_strdup(de->d_name))) {
			rc = kiln_error_set(e, KILN_E_NOMEM, path, "out of memory");
			goto out;
		}
		n++;
	}
	if (errno) {
		rc = kiln_error_set(e, KILN_E_IO, path, "cannot read folder: %s", strerror(errno));
		goto out;
	}
	if (n)
		qsort(names, n, sizeof *names, cmp_str);
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		size_t plen = strlen(path) + strlen(names[i]) + 2;
		free(child);
		if (!(child = kiln_malloc(plen))) {
			rc = kiln_error_set(e, KILN_E_NOMEM, path, "out of memory");
			goto out;
		}
		snprintf(child, plen, "%s/%s", path, names[i]);
		if (lstat(child, &st) != 0) {
			rc = kiln_error_set(e, KILN_E_IO, child, "cannot stat: %s",
					    strerror(errno));
			goto out;
		}
		if (S_ISREG(st.st_mode)) {
			rc = kiln_ipfs_dir_add_file(d, names[i], child, NULL, e);
		} else if (S_ISDIR(st.st_mode)) {
			struct cidbin sc;
			uint64_t ssize;
			rc = tree_dir(child, d->car, hidden, &sc, &ssize, e);
			if (!rc)
				rc = dir_push(d, names[i], &sc, ssize, e);
		} else {
			rc = kiln_error_set(e, KILN_E_IO, child,
					    "not a regular file or folder (symbolic links "
					    "and special files are not imported)");
		}
		if (rc)
			goto out;
	}
out:
	free(child);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(dir);
	return rc;
}

static int tree_dir(const char *path, struct kiln_ipfs_car *car, int hidden, struct cidbin *c,
		    uint64_t *tsize, struct kiln_error *e)
{
	struct kiln_ipfs_dir *d;
	int rc = kiln_ipfs_dir_new(&d, car, e);
	if (rc)
		return rc;
	if (!(rc = tree_fill(d, path, hidden, e)))
		rc = dir_finish_bin(d, c, tsize, e);
	kiln_ipfs_dir_free(d);
	return rc;
}

int kiln_ipfs_import_tree(const char *dir, struct kiln_ipfs_car *car, int include_hidden,
			  char cid[KILN_IPFS_CID_MAX], uint64_t *dag_size, struct kiln_error *e)
{
	struct cidbin c;
	uint64_t tsize;
	int rc = tree_dir(dir, car, include_hidden, &c, &tsize, e);
	if (rc)
		return rc;
	if (cid)
		cid_string(&c, cid);
	if (dag_size)
		*dag_size = tsize;
	return 0;
}
