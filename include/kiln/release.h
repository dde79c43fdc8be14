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

/* ---- ipfs.h (merged) ---- */
/* kiln/ipfs.h: IPFS content ids and CAR files, computed offline.
 *
 * The ids are exactly those of `ipfs add --cid-version=1` (kubo's defaults with CIDv1):
 * 262144-byte chunks, raw leaves (codec 0x55), a balanced DAG of dag-pb (0x70) UnixFS File
 * nodes with at most 174 links each, sha2-256, printed in base32 lower case ('b...').
 * Directories are dag-pb UnixFS Directory nodes with links sorted bytewise by name; a directory
 * whose links' estimated size (sum over entries of name bytes + 36 CID bytes) exceeds 256 KiB
 * (from 5,851 entries named 0.json, 1.json, ...) becomes a HAMT shard (fanout 256, murmur3), as
 * kubo does. docs/ipfs.md has every byte and where the rules come from.
 *
 * Data is streamed: files are read and hashed 256 KiB at a time, so a folder of 10,000 images
 * needs memory for its names and ids only. A CAR writer (CARv1) may be attached to any import;
 * it then receives every block (file chunks, file nodes, directory and shard nodes), each once,
 * children before parents. The CAR is written under a temporary name and renamed into place by
 * kiln_ipfs_car_finish(); a CAR that is freed unfinished is removed.
 *
 * Ownership: every struct here is allocated by its _new/_open and freed by its _free, which
 * accepts NULL. A CAR must outlive the files and directories that write into it.
 */

/* Room for any CID string this module prints (they are 59 characters) plus NUL. */
#define KILN_IPFS_CID_MAX 128

/* kubo's import parameters, for reference (they are not configurable). */
#define KILN_IPFS_CHUNK_SIZE 262144
#define KILN_IPFS_MAX_LINKS 174
#define KILN_IPFS_SHARD_THRESHOLD 262144
#define KILN_IPFS_SHARD_FANOUT 256

struct kiln_ipfs_car;  /* a CARv1 file being written */
struct kiln_ipfs_file; /* a file being imported, fed by writes */
struct kiln_ipfs_dir;  /* a directory being built */

/* ---- one-shot ids ---- */

/* CID of the file at path, as `ipfs add --cid-version=1 path` prints it. */
int kiln_ipfs_file_cid(const char *path, char cid[KILN_IPFS_CID_MAX], struct kiln_error *e)
	KILN_MUST_CHECK;
/* CID of n bytes at p (p may be NULL when n is 0). */
int kiln_ipfs_buf_cid(const void *p, size_t n, char cid[KILN_IPFS_CID_MAX], struct kiln_error *e)
	KILN_MUST_CHECK;

/* ---- streaming file import ---- */

/* Start importing a file; its blocks go to car when car is not NULL. */
int kiln_ipfs_file_new(struct kiln_ipfs_file **out, struct kiln_ipfs_car *car,
		       struct kiln_error *e) KILN_MUST_CHECK;
/* Append n bytes of the file's content (any sizes; chunking is internal). */
int kiln_ipfs_file_write(struct kiln_ipfs_file *f, const void *p, size_t n, struct kiln_error *e)
	KILN_MUST_CHECK;
/* Finish: the file's CID, and (when dag_size is not NULL) the cumulative size of its DAG, the
 * Tsize a directory link to it carries. The file cannot be written after this. */
int kiln_ipfs_file_finish(struct kiln_ipfs_file *f, char cid[KILN_IPFS_CID_MAX],
			  uint64_t *dag_size, struct kiln_error *e) KILN_MUST_CHECK;
void kiln_ipfs_file_free(struct kiln_ipfs_file *f);

/* Import the file at path (car may be NULL); cid and dag_size as kiln_ipfs_file_finish(). */
int kiln_ipfs_import_path(const char *path, struct kiln_ipfs_car *car,
			  char cid[KILN_IPFS_CID_MAX], uint64_t *dag_size, struct kiln_error *e)
	KILN_MUST_CHECK;

/* ---- directories ---- */

/* A new, empty directory whose blocks go to car (may be NULL). */
int kiln_ipfs_dir_new(struct kiln_ipfs_dir **out, struct kiln_ipfs_car *car, struct kiln_error *e)
	KILN_MUST_CHECK;
/* Import the file at path as entry `name` (no '/', not empty, not "." or ".."); its CID is
 * written to cid when cid is not NULL. Names must be unique in a directory. */
int kiln_ipfs_dir_add_file(struct kiln_ipfs_dir *d, const char *name, const char *path,
			   char cid[KILN_IPFS_CID_MAX], struct kiln_error *e) KILN_MUST_CHECK;
/* Same, from n bytes in memory. */
int kiln_ipfs_dir_add_buf(struct kiln_ipfs_dir *d, const char *name, const void *p, size_t n,
			  char cid[KILN_IPFS_CID_MAX], struct kiln_error *e) KILN_MUST_CHECK;
/* Add an entry whose DAG is already known (e.g. imported with kiln_ipfs_file_finish()):
 * cid as printed by this module, dag_size its cumulative DAG size. No block of that DAG is
 * written to the directory's CAR here: import it into the same CAR to have a complete CAR. */
int kiln_ipfs_dir_add_cid(struct kiln_ipfs_dir *d, const char *name, const char *cid,
			  uint64_t dag_size, struct kiln_error *e) KILN_MUST_CHECK;
/* Finish sub (writing its blocks) and add it to d as entry `name`. sub is freed either way. */
int kiln_ipfs_dir_add_dir(struct kiln_ipfs_dir *d, const char *name, struct kiln_ipfs_dir *sub,
			  char cid[KILN_IPFS_CID_MAX], struct kiln_error *e) KILN_MUST_CHECK;
/* Number of entries added so far. */
size_t kiln_ipfs_dir_count(const struct kiln_ipfs_dir *d);
/* Build the directory (flat, or a HAMT past the threshold), write its nodes to the CAR, and
 * give its CID and cumulative DAG size (dag_size may be NULL). Entries cannot be added after. */
int kiln_ipfs_dir_finish(struct kiln_ipfs_dir *d, char cid[KILN_IPFS_CID_MAX],
			 uint64_t *dag_size, struct kiln_error *e) KILN_MUST_CHECK;
void kiln_ipfs_dir_free(struct kiln_ipfs_dir *d);

/* Import a folder of the file system recursively, as `ipfs add -r --cid-version=1 dir` prints
 * its last line: regular files and sub-folders, in bytewise name order. Names starting with '.'
 * are skipped unless include_hidden (kubo's --hidden); symbolic links and other special files
 * are refused (KILN_E_IO). */
int kiln_ipfs_import_tree(const char *dir, struct kiln_ipfs_car *car, int include_hidden,
			  char cid[KILN_IPFS_CID_MAX], uint64_t *dag_size, struct kiln_error *e)
	KILN_MUST_CHECK;

/* ---- CARv1 ---- */

/* Create path's temporary sibling and start a CARv1 there (the root is filled in later). */
int kiln_ipfs_car_open(struct kiln_ipfs_car **out, const char *path, struct kiln_error *e)
	KILN_MUST_CHECK;
/* Set the header's single root to root_cid, flush, fsync and rename the CAR into place. */
int kiln_ipfs_car_finish(struct kiln_ipfs_car *car, const char *root_cid, struct kiln_error *e)
	KILN_MUST_CHECK;
/* sync 0: kiln_ipfs_car_finish() does not fsync; the caller makes the CAR durable (e.g. one
 * syncfs for a whole folder) before relying on it. The default is 1. */
void kiln_ipfs_car_set_sync(struct kiln_ipfs_car *car, int sync);
/* Blocks written so far (each distinct block once) and the CAR's size in bytes. */
uint64_t kiln_ipfs_car_blocks(const struct kiln_ipfs_car *car);
uint64_t kiln_ipfs_car_bytes(const struct kiln_ipfs_car *car);
/* Free; an unfinished CAR's temporary file is removed. */
void kiln_ipfs_car_free(struct kiln_ipfs_car *car);
/* ---- end of ipfs.h ---- */

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
	int64_t mtime_ns;  /* modification time, ns since the epoch */
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

/* What a release folder's records declare, for judging the folder (QA): provenance.json's
 * hash, starting index and images list, and ipfs.json's images location. Every pointer is
 * owned by the struct. */
struct kiln_release_record_image {
	char *file;               /* relative to the folder; NULL when the entry has none */
	char *sha256;             /* as listed; NULL when the entry has none */
};
struct kiln_release_record {
	int has_provenance;       /* provenance.json exists */
	char provenance_error[200]; /* "" or why it is not a provenance record: jansson's parse
				     * error, or "" with provenance_hash[0] == 0 when it parses but
				     * lacks provenance_hash (64 hex) or the images list */
	char provenance_hash[65]; /* "" when missing or malformed */
	int has_starting_index;
	uint64_t starting_index;
	struct kiln_release_record_image *images;
	size_t nimages;
	char *image_base;         /* ipfs.json's image_uri, or ipfs://<the images entry's CID>,
				   * trailing '/' removed; NULL when ipfs.json says neither */
};
/* Read dir/provenance.json and dir/ipfs.json (either may be missing: nothing is then set). A
 * malformed record is described, not an error; KILN_E_NOMEM only. */
int kiln_release_record_read(const char *dir, struct kiln_release_record *r,
			     struct kiln_error *e) KILN_MUST_CHECK;
void kiln_release_record_release(struct kiln_release_record *r);

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
/* The same, the portfolio checked against studio_key (a PEM Ed25519 public key file the
 * studio published elsewhere; NULL: the one in dist/portfolio/keys/). */
int kiln_release_verify_key(const char *dist, const char *expect_manifest,
			    const char *studio_key, struct kiln_verify_result *r,
			    struct kiln_error *e) KILN_MUST_CHECK;
void kiln_verify_result_release(struct kiln_verify_result *r);

#endif
