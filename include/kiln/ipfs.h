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
#ifndef KILN_IPFS_H
#define KILN_IPFS_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/error.h"

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

#endif
