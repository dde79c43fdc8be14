/* kiln/release.h: the parts of a release anyone can recompute, and checking a release.
 *
 * A release (dist/, written by kiln_project_release() in project.h) carries two records:
 *
 *   dist/provenance.json  every image's SHA-256 in the initial sequence (token id order), the
 *                         provenance hash (BAYC method: SHA-256 of the lowercase hex hashes
 *                         concatenated in that order) and, once known, the starting index
 *   dist/ipfs.json        the CID of every uploaded folder and file, as `ipfs add
 *                         --cid-version=1` makes them, and the SHA-256 of every CAR file
 *   dist/manifest.sha256  every other file of the release and its SHA-256, in `sha256sum`'s
 *                         format; its own SHA-256 is the release hash, which commits to every
 *                         byte of dist/ (the records included)
 *
 * kiln_release_verify() reads only dist/ (no catalog, no spec): it recomputes every file's
 * hash against the manifest, every image hash, the provenance hash, every CID and every CAR's
 * hash, checks that each token's metadata points at the image the reveal mapping says and
 * that the targets agree with each other, and lists what differs.
 */
#ifndef KILN_RELEASE_H
#define KILN_RELEASE_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/buf.h"
#include "kiln/error.h"
#include "kiln/ipfs.h"

/* How the provenance hash is made, as written into provenance.json. */
#define KILN_PROVENANCE_METHOD                                                                 \
	"SHA-256 of each final image file, as lowercase hex; these 64-character strings "       \
	"concatenated in the initial sequence (token id order, as listed under images); the "    \
	"provenance hash is the SHA-256 of that concatenated string (BAYC method). After the "   \
	"reveal, the token at position t (0-based, in token id order) shows initial item "       \
	"(t + starting_index) mod N."

/* The provenance hash of n image hashes (each 64 lowercase hex digits + NUL), in order. */
int kiln_provenance_hash(const char (*hashes)[65], size_t n, char out[65], struct kiln_error *e)
	KILN_MUST_CHECK;

/* The initial item shown by the token at position t once revealed: (t + starting_index) mod
 * n. n must not be 0. */
uint64_t kiln_reveal_item(uint64_t t, uint64_t starting_index, uint64_t n);

/* ERC-1155 metadata file name stem for a token id: 64 lowercase hex digits, no 0x. */
void kiln_erc1155_name(uint64_t id, char out[65]);

/* The release's manifest file, in dist/. One line per file: 64 lowercase hex digits, two
 * spaces, the path relative to dist/ ('/'-separated), '\n'; lines sorted bytewise by path;
 * every regular file of dist/ except the manifest itself. `cd dist && sha256sum -c
 * manifest.sha256` checks it without kiln; `sha256sum manifest.sha256` is the release hash. */
#define KILN_MANIFEST_FILE "manifest.sha256"

/* One file found under a folder. */
struct kiln_manifest_file {
	char *path;        /* relative to the folder; owned */
	char sha256[65];   /* "" until the caller hashes it */
	uint64_t size;
	int regular;       /* 0: a symbolic link, device, socket... (never in a release) */
};

/* The files of a folder, sorted bytewise by path. */
struct kiln_manifest {
	struct kiln_manifest_file *v;   /* owned */
	size_t n;
};

/* Every file under dir, recursively (hidden ones too), except dir/manifest.sha256; not hashed.
 * Sub-folders are entered, not listed; symbolic links are listed (regular = 0), not followed. */
int kiln_manifest_list(const char *dir, struct kiln_manifest *m, struct kiln_error *e)
	KILN_MUST_CHECK;
/* The path's entry, or NULL. */
struct kiln_manifest_file *kiln_manifest_find(const struct kiln_manifest *m, const char *path);
/* The manifest text of m (every sha256 filled in) appended to out. */
int kiln_manifest_text(const struct kiln_manifest *m, struct kiln_buf *out, struct kiln_error *e)
	KILN_MUST_CHECK;
void kiln_manifest_release(struct kiln_manifest *m);

/* Result of checking a release. problems[] are "what: expected X, found Y" lines. */
struct kiln_verify_result {
	uint64_t checks;          /* things compared */
	uint64_t files;           /* files hashed */
	uint64_t bytes;           /* bytes read */
	size_t nproblems;         /* 0: everything matches */
	char **problems;          /* owned */
	char provenance[65];      /* the provenance hash recomputed from the images */
	char images_cid[KILN_IPFS_CID_MAX];   /* recomputed ("" when the release has none) */
	char metadata_cid[KILN_IPFS_CID_MAX];
	char manifest[65];        /* the release hash: SHA-256 of the manifest the files in dist/
	                             give (equal to manifest.sha256's when nothing differs) */
};

/* Check the release in folder dist. expect_manifest (64 hex digits, or NULL): the release
 * hash as published by the studio; a release whose files give another is a mismatch. Returns
 * KILN_E_USAGE when dist is not a folder or holds none of the records (not a release), another
 * code when a record is malformed; mismatches go to r->problems. */
int kiln_release_verify(const char *dist, const char *expect_manifest,
			struct kiln_verify_result *r, struct kiln_error *e) KILN_MUST_CHECK;
void kiln_verify_result_release(struct kiln_verify_result *r);

#endif
