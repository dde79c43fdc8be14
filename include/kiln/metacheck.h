/* kiln/metacheck.h: metadata QA. Checks token JSON against the ERC-721/OpenSea metadata
 * standard and the Metaplex/Sugar rules (design.md section 7), and whole folders: a Sugar
 * assets/ folder (0.png, 0.json, ..., collection.png, collection.json) and a HashLips-style
 * ERC-721 build/json folder (1.json or 1, ..., _metadata.json).
 *
 * Every problem becomes a finding: a stable check id ("metaplex.name_length"), a default
 * severity, the file and the JSON path it concerns ("properties.creators[1].share") and a
 * message that says what is wrong and what to do. A file that is not JSON is a finding too
 * ("token.json_parse"), not a failure: the functions fail (non-zero) only when they cannot
 * run at all (out of memory, a folder that cannot be read). docs/qa.md lists every check id.
 */
#ifndef KILN_METACHECK_H
#define KILN_METACHECK_H

#include <stddef.h>
#include <jansson.h>
#include "kiln/buf.h"
#include "kiln/error.h"

enum kiln_severity {
	KILN_SEV_ERROR = 0,   /* a marketplace or Sugar would reject it, or show it wrong */
	KILN_SEV_WARNING = 1, /* legal but probably a mistake */
};

/* One finding. Every string is owned by the list it sits in. */
struct kiln_finding {
	char *check;    /* stable id, e.g. "metaplex.creator_shares" */
	int severity;   /* enum kiln_severity */
	char *file;     /* file name relative to the checked folder, or the name the caller gave */
	char *path;     /* JSON path in that file ("attributes[2].value"); "" = the whole file */
	char *message;  /* what is wrong and what to do */
};

/* A growable list of findings. Initialise with KILN_FINDINGS_INIT or kiln_findings_init(). */
struct kiln_findings {
	struct kiln_finding *v; /* owned */
	size_t n, cap;
};

#define KILN_FINDINGS_INIT { NULL, 0, 0 }

void kiln_findings_init(struct kiln_findings *f);
/* Free every finding and the array; the list is empty (and reusable) after. */
void kiln_findings_release(struct kiln_findings *f);
/* Append a finding (strings are copied; file and path may be NULL). */
int kiln_findings_add(struct kiln_findings *f, const char *check, int severity, const char *file,
		      const char *path, const char *fmt, ...) KILN_PRINTF(6, 7) KILN_MUST_CHECK;
/* Number of findings of a severity (-1: all). */
size_t kiln_findings_count(const struct kiln_findings *f, int severity);
/* Short name of a severity: "error" or "warning". */
const char *kiln_severity_name(int severity);

/* Standards to check a token against (flags). */
#define KILN_META_ERC721   1u /* ERC-721 / OpenSea metadata standard */
#define KILN_META_METAPLEX 2u /* Metaplex token metadata as Sugar validates and deploys it */

/* Check one token's JSON. `file` names it in findings (may be NULL). With KILN_META_METAPLEX
 * alone, `image` and properties.files[].uri may be plain file names (Sugar's assets layout);
 * with KILN_META_ERC721 they must be URIs. */
int kiln_metacheck_token(const json_t *root, unsigned standards, const char *file,
			 struct kiln_findings *out, struct kiln_error *e) KILN_MUST_CHECK;
/* The same from text (len bytes, need not be NUL-terminated); invalid JSON is the finding
 * "token.json_parse" with the line and column. */
int kiln_metacheck_token_text(const char *text, size_t len, unsigned standards, const char *file,
			      struct kiln_findings *out, struct kiln_error *e) KILN_MUST_CHECK;

/* Check a Sugar assets folder: numbering 0..n-1 without gap or repeat, every N.json paired with
 * one N.<image> (png, jpg, jpeg or gif: the only images Sugar pairs), unique trait sets, collection.json paired with a collection image (both optional), each json's
 * `image` naming its own image file, Metaplex rules on every json, and attribute spelling drift
 * across the collection. KILN_E_IO when dir cannot be read. */
int kiln_metacheck_sugar_folder(const char *dir, struct kiln_findings *out, struct kiln_error *e)
	KILN_MUST_CHECK;

/* Check a HashLips-style ERC-721 metadata folder (build/json): files N.json or N, numbered
 * from 0 or 1 without gap or repeat, ERC-721/OpenSea rules on each, image URIs that end in the
 * token's own number, no unreplaced placeholder base URI, _metadata.json (optional) agreeing
 * with the single files, and attribute spelling drift. KILN_E_IO when dir cannot be read. */
int kiln_metacheck_folder_erc721(const char *dir, struct kiln_findings *out,
				 struct kiln_error *e) KILN_MUST_CHECK;

/* What a folder check knows beyond the folder (all optional; zero = not known). */
struct kiln_metacheck_opts {
	/* Reveal (BAYC method, as `kiln release --starting-index N` writes it): the token at
	 * position t (0-based, in number order) shows image number (t + starting_index) mod n;
	 * without it token N must show image N. A release's provenance.json says it. */
	int has_starting_index;
	unsigned long long starting_index;
	/* The URI every image must start with, followed by "/<N>.<ext>": the images folder's
	 * location (dist/ipfs.json's image_uri, ipfs://<images CID>). */
	const char *image_base;
	/* The folder of the image files: each image URI must name N.<ext> exactly as it exists
	 * there (number and extension). */
	const char *images_dir;
	/* ERC-1155 file names: {id} as 64 lowercase hex digits + ".json" instead of N.json. */
	int erc1155;
};

/* kiln_metacheck_folder_erc721 with what the caller knows (o may be NULL). Also finds two
 * tokens with the same trait set (collection.unique). */
int kiln_metacheck_folder_erc721_opts(const char *dir, const struct kiln_metacheck_opts *o,
				      struct kiln_findings *out, struct kiln_error *e)
	KILN_MUST_CHECK;

/* Every check id kiln qa can report (images, collection, metadata), NULL-terminated, for
 * validating severity overrides; *n gets the count. */
const char *const *kiln_qa_check_ids(size_t *n);
/* 1 when id is a check id, or a prefix ending in '.' of at least one. */
int kiln_qa_check_known(const char *id);

/* Decode a base58 (Bitcoin alphabet) string; returns the decoded length (leading '1's are
 * zero bytes), or -1 for a character outside the alphabet or more than `cap` bytes. */
int kiln_base58_decode(const char *s, unsigned char *out, size_t cap);

#endif
