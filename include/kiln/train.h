/* kiln/train.h: the model registry and training data: what a LoRA or checkpoint file is (its
 * hashes as AUTOMATIC1111 shows them, its safetensors metadata) and what a dataset holds (every
 * file's SHA-256 and perceptual hash, a Merkle root over them). The portfolio publishes both.
 *
 * safetensors (huggingface/safetensors): an 8-byte little-endian header length N, N bytes of
 * JSON (an object: tensor name -> {dtype, shape, data_offsets [begin, end]} relative to the
 * byte after the header, and an optional "__metadata__" object of string values), then the
 * tensor bytes. The reader trusts nothing: N must fit in the file and be at most
 * KILN_SAFETENSORS_HEADER_MAX, the header must be valid UTF-8 JSON without duplicate keys,
 * __metadata__ a map of strings, every tensor's offsets inside the data.
 *
 * Model hashes (A1111, modules/hashes.py and sd_models.py):
 *   sha256       SHA-256 of the whole file; A1111's "Model hash" shows its first 10 hex;
 *   legacy       SHA-256 of the 0x10000 bytes at offset 0x100000 (fewer when the file is
 *                shorter), first 8 hex (the old "[abcd1234]" model hash);
 *   addnet       SHA-256 of the bytes after the safetensors header (what kohya writes as
 *                sshs_model_hash; "Lora hashes" show its first 12 hex). When the metadata has
 *                sshs_model_hash it must equal this, else the file is refused.
 */
#ifndef KILN_TRAIN_H
#define KILN_TRAIN_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/error.h"

#define KILN_SAFETENSORS_HEADER_MAX ((uint64_t)100 << 20)

/* What a safetensors header says. Pointers owned; kiln_safetensors_release() frees them. */
struct kiln_safetensors {
	uint64_t header_len;      /* N */
	uint64_t data_len;        /* file size - 8 - N */
	uint64_t tensors;         /* entries other than __metadata__ */
	char *metadata_json;      /* __metadata__ as a JSON object, keys sorted, compact ("{}"
				     when absent) */
	int lora;                 /* a LoRA/LyCORIS network (kohya ss_network_* or lora_ tensor
				     names), else a checkpoint */
};

/* Read the header of a safetensors image: p holds the file's first n bytes (at least the
 * header), file_size the whole file's size. where names the file in errors. KILN_E_IO (bad
 * file: every way named), KILN_E_NOMEM. */
int kiln_safetensors_parse(const uint8_t *p, size_t n, uint64_t file_size, const char *where,
			   struct kiln_safetensors *st, struct kiln_error *e) KILN_MUST_CHECK;
void kiln_safetensors_release(struct kiln_safetensors *st);

/* A model file's registry record. */
struct kiln_model {
	char name[256];           /* the file's base name without .safetensors/.ckpt/... */
	char file[256];           /* the base name */
	uint64_t bytes;
	char sha256[65];
	char legacy[9];           /* 8 hex */
	char addnet[65];          /* "" when not safetensors */
	int safetensors;
	struct kiln_safetensors st; /* when safetensors */
};

/* Hash and read the model file at path (one pass over the file). */
int kiln_model_read(const char *path, struct kiln_model *m, struct kiln_error *e)
	KILN_MUST_CHECK;
/* The record as JSON (what the registry stores and the portfolio publishes as
 * models/<name>.json): name, file, kind, bytes, sha256, a1111 {model_hash, legacy_hash,
 * lora_hash}, safetensors {header_bytes, tensors, metadata}, and the given licence, source and
 * trained_on dataset names (each may be NULL or empty). Caller frees. NULL out of memory. */
char *kiln_model_record(const struct kiln_model *m, const char *license, const char *source,
			const char *const *trained_on, size_t ntrained);
void kiln_model_release(struct kiln_model *m);

/* A perceptual hash of an image file, supplied by the caller (QA's pHash: train sits below
 * QA); KILN_E_IMAGE when the file is not an image (it then gets none). */
typedef int (*kiln_phash_fn)(const char *path, uint64_t *phash, void *user, struct kiln_error *e);
/* The same pHash of decoded 8-bit pixels (width x height, bands 1-4 interleaved, rows stride
 * bytes apart): prepare hashes the pixels it has just made, decoding nothing again. */
typedef int (*kiln_phash_pixels_fn)(const uint8_t *pixels, int width, int height, int bands,
				    size_t stride, uint64_t *phash, void *user,
				    struct kiln_error *e);

/* Scan a dataset folder: every regular file beneath dir (hidden ones skipped, symbolic links
 * refused), in bytewise path order: SHA-256, size and (images) pHash; the Merkle root (RFC 6962
 * over one leaf per file, the leaf being the sha256sum line "<sha256>  <path>" without its
 * newline). The record JSON: name, license, source, files, bytes, merkle_root, entries
 * [{path, sha256, bytes, phash}]. *root: 64 hex. Caller frees *record. */
int kiln_dataset_scan(const char *dir, const char *name, const char *license, const char *source,
		      kiln_phash_fn phash, void *user, char **record, char root[65],
		      struct kiln_error *e) KILN_MUST_CHECK;

/* ---- training: kiln train prepare (lib/train/prepare.c) and its manifest (manifest.c) ----
 *
 * A training's files live in PROJECT/.kiln/train/NAME/ (docs/training.md):
 *   manifest.json   what prepare made, every image with its hashes, box and caption; the
 *                   trainer's inputs below are derived from it alone
 *   images/N/       dataset N's prepared images (and their caption files)
 *   dataset.toml    kohya's dataset config;  command.json  kohya's argv
 *   config.yaml     ai-toolkit's job config (trainer: ai-toolkit)
 *   output/         where the trainer writes the LoRA (output_dir)
 */
#define KILN_TRAIN_DIR ".kiln/train"
#define KILN_TRAIN_MANIFEST "manifest.json"
#define KILN_TRAIN_MANIFEST_VERSION 1

/* dir/.kiln/train/name/file (file NULL: the folder). Caller frees; NULL out of memory. */
char *kiln_train_path(const char *dir, const char *name, const char *file);

/* One prepared image. Paths are relative to the project folder. */
struct kiln_train_image {
	char *source;             /* the image read ("data/owls/a.png"; a token's final image
	                             in the store for tokens:approved) */
	char *file;               /* the prepared image (".kiln/train/NAME/images/0/a.png") */
	char *caption;            /* the caption written beside it ("" when missing) */
	char *caption_from;       /* "file", "template", "traits" or "missing" */
	char *converted;          /* the source's colour mode when it was converted to 8-bit
	                             sRGB ("CMYK, 4 bands: ..."), NULL when it was 8-bit RGB */
	char sha256_source[65];   /* before */
	char sha256[65];          /* after (of file) */
	uint64_t phash;           /* QA's pHash of the prepared image's pixels (for a JPEG:
	                             as encoded, before the JPEG rounding; 0 and has_phash 0
	                             when no pHash function was given) */
	int has_phash;
	int src_width, src_height;
	int crop_x, crop_y, crop_w, crop_h; /* the box of the source kept (source pixels) */
	int width, height;        /* the prepared image: its bucket */
	size_t dataset;           /* index into datasets */
	uint64_t token;           /* tokens:approved: the token id, else 0 */
};

struct kiln_train_mdataset {
	char *dir;                /* as written in kiln.yaml */
	char *image_dir;          /* ".kiln/train/NAME/images/N" */
	char *class_tokens;       /* NULL: none */
	char *license;            /* NULL: missing (a warning the portfolio shows) */
	char *source;             /* NULL: none */
	char *caption_extension;  /* ".txt" */
	unsigned repeats;
	size_t images;            /* prepared images of this dataset */
};

struct kiln_train_manifest {
	int version;              /* KILN_TRAIN_MANIFEST_VERSION */
	char *name;
	char *trainer;            /* "kohya" | "ai-toolkit" */
	char *arch;               /* "sdxl" | "sd15" | "flux" */
	char *base;
	int width, height;        /* resolution */
	int bucket_enable, bucket_min, bucket_max, bucket_step;
	int network_dim;
	double network_alpha, unet_lr, text_encoder_lr;
	uint64_t steps, epochs, seed;   /* steps or epochs is 0 */
	unsigned batch_size;
	struct kiln_train_mdataset *datasets;
	size_t ndatasets;
	struct kiln_train_image *images;
	size_t nimages;
	char **command;           /* local.command, the trainer's argv before kiln's flags; NULL
	                             (ncommand 0) when it runs on RunPod */
	size_t ncommand;
	char sha256[65];          /* of manifest.json as loaded ("" when built in memory) */
};

/* Read a manifest.json (path: any file; messages name it). KILN_E_IO: unreadable or not a
 * manifest this version of kiln writes (every field named when wrong). */
int kiln_train_manifest_load(const char *path, struct kiln_train_manifest **out,
			     struct kiln_error *e) KILN_MUST_CHECK;
/* The manifest as JSON (keys sorted, 2-space indent, trailing newline). NULL out of memory. */
char *kiln_train_manifest_json(const struct kiln_train_manifest *m);
void kiln_train_manifest_free(struct kiln_train_manifest *m);
/* Images the trainer sees per epoch: the sum of images x repeats. */
uint64_t kiln_train_manifest_steps_images(const struct kiln_train_manifest *m);

/* ---- buckets and captions (lib/train/buckets.c) ---- */

struct kiln_bucket {
	int w, h;
};
/* kohya's make_bucket_resolutions(max_reso (max_w, max_h), min_size, max_size, divisible
 * step): the bucket sizes, sorted by width then height. Caller frees *out. -1 out of memory or
 * bad arguments. */
int kiln_train_buckets(int max_w, int max_h, int min_size, int max_size, int step,
		       struct kiln_bucket **out, size_t *n);
/* kohya's BucketManager.select_bucket (no_upscale False): the bucket for a w x h image and the
 * size *rw x *rh it is resized to before the centre crop to the bucket. */
void kiln_train_select_bucket(const struct kiln_bucket *v, size_t n, int w, int h,
			      struct kiln_bucket *bucket, int *rw, int *rh);
/* A caption from a template over a file name: {name} (stem, '_' and '-' as spaces), {stem},
 * {class_tokens} ("" when NULL), {dataset}; other text as written. NULL out of memory. */
char *kiln_train_caption(const char *tmpl, const char *stem, const char *class_tokens,
			 const char *dataset);

/* ---- kiln train prepare (lib/train/prepare.c) ---- */

struct kiln_project;
struct kiln_progress;

/* What prepare found, one line each. kind: "broken" (not used), "duplicate" (an exact copy of
 * `other`: not used), "near-duplicate" (pHash within the threshold of `other`: kept),
 * "token" (the same bytes as, or a pHash near, token `other`'s image), "caption-missing",
 * "colour" (converted to 8-bit sRGB without alpha: what it was), "license-missing" (a
 * dataset: path is its dir), "empty" (a dataset without a usable image). */
struct kiln_train_finding {
	char kind[24];
	char *path;               /* relative to the project */
	char *other;              /* the other image, token "#ID", or NULL */
	char *message;
};

struct kiln_train_prepare_opts {
	const char *name;         /* the training's name in the spec */
	kiln_phash_pixels_fn phash; /* QA's pHash (the command passes kiln_qa_phash_pixels) */
	void *phash_user;
	int near_threshold;       /* largest pHash distance of a near duplicate; < 0: off */
	unsigned jobs;            /* worker threads (0: 1) */
	int strict;               /* a broken image fails prepare (nothing written) */
	void (*progress)(const struct kiln_progress *p, void *user);
	void *user;
};

struct kiln_train_report {
	struct kiln_train_finding *v;
	size_t n;
	size_t images;            /* in the manifest */
	size_t written;           /* prepared images (re)written this run */
	size_t reused;            /* prepared images kept from the last run */
	size_t files_changed;     /* manifest and trainer inputs rewritten (0: nothing changed) */
	int recorded;             /* a new catalog record of the manifest */
	char manifest[4096];      /* its path */
	char sha256[65];          /* its SHA-256 */
};

/* Prepare training o->name of project p (opened for writing): check and hash every image,
 * report duplicates, tokens and missing captions, resize/crop to kohya's buckets, write the
 * captions, the manifest and the trainer's inputs (each only when its bytes change), record
 * the manifest in the catalog. KILN_E_USAGE: no such training; KILN_E_IMAGE: a broken image
 * with o->strict, or no usable image at all. */
int kiln_train_prepare(struct kiln_project *p, const struct kiln_train_prepare_opts *o,
		       struct kiln_train_report *r, struct kiln_error *e) KILN_MUST_CHECK;
void kiln_train_report_release(struct kiln_train_report *r);

/* The trainer's inputs from a manifest (lib/train/inputs.c), paths relative to the training's
 * folder (.kiln/train/NAME, where the trainer runs): kohya's dataset.toml and its argv as
 * command.json ({"argv": [...]}), or ai-toolkit's config.yaml. name: "dataset.toml",
 * "command.json" or "config.yaml"; *text NULL when the trainer has no such file. */
int kiln_train_input(const struct kiln_train_manifest *m, const char *name, char **text)
	KILN_MUST_CHECK;

/* --- Running a trainer (run.c) ------------------------------------------------------------
 * kohya's progress as it prints it: tqdm(desc="steps") lines on stderr, redrawn after '\r'
 * ("steps:  12%|█▏        | 180/1500 [00:03<00:21,  5.00it/s, avr_loss=0.0834]"), and
 * accelerator.print's "epoch 1/3" and "saving checkpoint: FILE" lines. */
struct kiln_train_progress {
	uint64_t step, total;      /* the last step line (0/0 before one) */
	double loss;               /* its avr_loss; has_loss 0 when it had none */
	int has_loss;
	unsigned epoch, epochs;    /* the last "epoch N/M" line */
	char saved[1024];          /* the last "saving checkpoint: FILE" ("" none) */
	char last[256];            /* the last non-empty line that was not progress (errors) */
	char line[1024];           /* a line cut by the end of the bytes fed so far */
	size_t len;
};
void kiln_train_progress_init(struct kiln_train_progress *p);
/* Read one line (no '\r' or '\n' in it): 1 a step line (step, total, loss set), 2 an epoch
 * line, 3 a saving line, 0 anything else. */
int kiln_train_progress_line(struct kiln_train_progress *p, const char *line, size_t n);
/* Feed log bytes as they come (lines cut anywhere, '\r' or '\n' ends one): the number of step
 * lines seen. */
unsigned kiln_train_progress_feed(struct kiln_train_progress *p, const char *buf, size_t n);

/* A run's state file (.kiln/train/NAME/run.json), written before kiln waits on the trainer:
 * what a later kiln needs to find the trainer again and never start a second one. */
struct kiln_train_state {
	char name[128];
	char where[16];            /* "local" or "runpod" */
	int64_t pid;               /* local: the supervisor kiln started (its session leader) */
	uint64_t pid_start;        /* its start time in clock ticks after boot (/proc stat 22):
				      a pid reused by another process has another */
	double started;            /* Unix time */
	char manifest_sha256[65];  /* the manifest the run was prepared from */
	char output[1024];         /* the .safetensors the trainer writes (project-relative) */
	char job_id[128];          /* runpod: the job id as /run answered ("" before) */
	char endpoint[256];        /* runpod: the endpoint's URL */
	char *argv_json;           /* the trainer's command line, a JSON array (owned) */
};
void kiln_train_state_release(struct kiln_train_state *s);
int kiln_train_state_write(const char *path, const struct kiln_train_state *s,
			   struct kiln_error *e) KILN_MUST_CHECK;
/* KILN_E_NOTFOUND when there is no file; KILN_E_IO (named) when it is not a run state. */
int kiln_train_state_read(const char *path, struct kiln_train_state *s, struct kiln_error *e)
	KILN_MUST_CHECK;

/* Start argv (argv[0] looked up in PATH) in cwd, detached: a supervisor in its own session
 * (setsid) runs it with stdout and stderr appended to log, waits for it and writes its exit
 * status to exit_file ("exit N" or "signal N"), so that the status outlives kiln. *pid and
 * *pid_start: the supervisor's. */
int kiln_train_spawn(char *const *argv, const char *cwd, const char *log, const char *exit_file,
		     int64_t *pid, uint64_t *pid_start, struct kiln_error *e) KILN_MUST_CHECK;
/* 1 when the process pid runs and started at pid_start (not a zombie), else 0. */
int kiln_train_alive(int64_t pid, uint64_t pid_start);
/* The start time of process pid (/proc/PID/stat field 22): 0, or -1 when it is gone. */
int kiln_train_pid_start(int64_t pid, uint64_t *start);
/* Stop the trainer's whole session (SIGTERM, then SIGKILL after grace seconds). */
void kiln_train_stop(int64_t pid, uint64_t pid_start, double grace);
/* The supervisor's word: 0 and *status (exit code, or 128+signal) when exit_file has one,
 * KILN_E_NOTFOUND when it has none (killed before it could write). */
int kiln_train_exit_status(const char *exit_file, int *status, struct kiln_error *e)
	KILN_MUST_CHECK;

/* The prepared folder dir as a tar archive (libarchive, pax/ustar) appended to out, its
 * entries under name/ (a project-relative path, so the trainer's relative paths hold in the
 * unpacked copy): files in name order, mtime 0, uid/gid 0, so the same folder gives the same
 * bytes; the run's own files (log, run.json, exit, out/), the top-level entry skip (the
 * trainer's output folder, so an earlier LoRA neither travels nor changes the archive; may be
 * NULL) and hidden names left out; links and special files refused (pack.c). _fd: written to
 * fd instead, its SHA-256 (hex) and size given back. */
struct kiln_buf;
int kiln_train_pack(const char *dir, const char *name, const char *skip,
		    struct kiln_buf *out, struct kiln_error *e) KILN_MUST_CHECK;
int kiln_train_pack_fd(const char *dir, const char *name, const char *skip, int fd,
		       char sha256[65], uint64_t *size, struct kiln_error *e) KILN_MUST_CHECK;

/* SHA-256 of a file (the manifest a run is prepared from). */
int kiln_train_file_sha256(const char *path, char hex[65], struct kiln_error *e) KILN_MUST_CHECK;

/* What the trained LoRA's ss_* metadata must say, from the manifest it was trained from. */
struct kiln_train_dir {
	char name[256];            /* the image folder's base name (ss_dataset_dirs key) */
	uint64_t images;
	uint64_t repeats;
};
struct kiln_train_expect {
	const struct kiln_train_dir *dirs;
	size_t ndirs;
	const char *base_version;  /* ss_base_model_version ("sdxl_base_v1-0", "sd_v1", ...) or
				      NULL: not checked */
	const char *base_name;     /* ss_sd_model_name (a file's base name), or NULL */
	int has_seed, has_steps;
	uint64_t seed, steps;      /* steps: ss_steps (the steps done) */
};
/* Check metadata (a JSON object of strings, as struct kiln_safetensors keeps it): every
 * mismatch is KILN_E_FAILED naming the key, the file's value and the manifest's (where: the
 * file). ss_num_train_images must be the sum of images x repeats, ss_dataset_dirs the dirs
 * with their img_count and n_repeats. */
int kiln_train_check_metadata(const char *metadata_json, const struct kiln_train_expect *x,
			      const char *where, struct kiln_error *e) KILN_MUST_CHECK;

#endif
