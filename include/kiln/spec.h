/* kiln/spec.h: a collection as the studio declared it in kiln.yaml, parsed and validated.
 *
 * kiln_spec_load() parses with libfyaml, checks every key, type and file, and either returns a
 * complete spec or fails with the file:line:col of the first problem and what to fix
 * (KILN_E_SPEC). The YAML is read as written or refused: aliases are resolved (bounded, see
 * KILN_SPEC_MAX_NODES); explicit tags, NUL in a scalar, a second document, text that is not
 * UTF-8, and a kiln.yaml that is not a regular file are refused. Nothing in a loaded spec needs checking again. All strings are owned by the
 * spec and freed by kiln_spec_free(). Paths (trait files, legendary files) are kept as written,
 * relative to the project folder `dir`.
 *
 * Sizes: tens of layers, hundreds of traits, tens of rules; collection size up to millions.
 */
#ifndef KILN_SPEC_H
#define KILN_SPEC_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/error.h"
#include "kiln/buf.h"

/* The largest token id: 2^53-1, the largest integer every reader of token ids (JavaScript
 * numbers among them) holds exactly. */
#define KILN_ID_MAX ((uint64_t)9007199254740991)

/* ---- hashlips.h (merged) ---- */
/* kiln/hashlips.h: import a HashLips art engine layers folder as a kiln.yaml.
 *
 * HashLips layout: LAYERS/<Layer>/<Trait name>#<weight>.png. The weight is read as HashLips
 * reads it: JavaScript's Number() of the text after the last '#' (not a number: weight 1; a
 * fraction is kept); a weight HashLips would misuse (negative, zero, nothing after '#', over
 * 1e12) fails with KILN_E_USAGE naming the file, never wrapped or rounded. The layer
 * order (z-order) comes from o->order when given; else from HashLips' src/config.js beside the
 * layers folder (layersOrder); else from numeric prefixes of the folder names ("01_Body");
 * else background-like names first and the rest alphabetically. *how says which was used.
 */

struct kiln_hashlips_opts {
	const char *layers_dir;       /* the HashLips layers/ folder */
	const char *project_dir;      /* where kiln.yaml goes: file paths are made relative to it */
	const char *const *order;     /* layer names bottom first, or NULL */
	size_t norder;
	uint64_t size;                /* 0: the largest size up to min(combinations, 100) whose
	                                 weight-apportioned counts leave every token different;
	                                 a size that cannot fails saying why (KILN_E_USAGE) */
	const char *name;             /* collection name, NULL: the project folder's name */
	const char *size_note;        /* NULL, or why the caller chose o->size (say, the largest
	                                 size the planner meets): written as a comment above
	                                 `size:` (one line, no '#') */
};

/* Append the kiln.yaml text to yaml. how (may be NULL) gets a sentence on the layer order. */
int kiln_hashlips_import(const struct kiln_hashlips_opts *o, struct kiln_buf *yaml, char *how,
			 size_t howcap, struct kiln_error *e) KILN_MUST_CHECK;
/* ---- end of hashlips.h ---- */

/* Limits of kiln.yaml, checked before libfyaml builds a document (docs/spec.md, "Limits"):
 * a longer, deeper or larger spec is refused with KILN_E_SPEC, naming the limit. Nodes count
 * every key, value, list and mapping, an alias as the nodes it stands for. Tokens are an
 * upper estimate from the raw text (every indicator character and every word), which bounds
 * the parser's memory (about 300 bytes a token) before any node is built. */
#define KILN_SPEC_MAX_BYTES (16 << 20)
#define KILN_SPEC_MAX_DEPTH 64
#define KILN_SPEC_MAX_TOKENS 500000
#define KILN_SPEC_MAX_NODES 200000

enum kiln_format { KILN_FORMAT_PNG, KILN_FORMAT_WEBP, KILN_FORMAT_JPEG };

/* How a trait's share of its layer is given. */
enum kiln_quota { KILN_QUOTA_WEIGHT, KILN_QUOTA_PERCENT, KILN_QUOTA_COUNT };

/* Layer blend modes: the names are libvips' (and CSS's) */
enum kiln_blend {
	KILN_BLEND_OVER, KILN_BLEND_MULTIPLY, KILN_BLEND_SCREEN, KILN_BLEND_OVERLAY,
	KILN_BLEND_DARKEN, KILN_BLEND_LIGHTEN, KILN_BLEND_ADD, KILN_BLEND_SOFT_LIGHT,
	KILN_BLEND_HARD_LIGHT, KILN_BLEND_DIFFERENCE,
};

/* Where something was written in kiln.yaml (1-based; 0 when not from the file). */
struct kiln_loc {
	int line;
	int col;
};

struct kiln_trait {
	char *name;            /* value shown in metadata; for the none value: spec's none name */
	char *file;            /* layer image, relative to the project dir; NULL for none / AI-only */
	enum kiln_quota quota; /* which of amount's meanings */
	double amount;         /* weight (>0), percent (0 < p <= 100) or count (integer >= 0) */
	int is_none;           /* the layer's "none" value: left out of metadata and of images */
	struct kiln_loc loc;
	/* AI engines (see docs/engines.md); all NULL/0 when not given */
	char *prompt;          /* replaces {Layer} in generate.prompt (default: the trait's name) */
	char *negative;        /* appended to generate.negative */
	struct kiln_lora *loras;
	size_t nloras;
	struct kiln_controlnet *controlnet; /* NULL: none */
};

struct kiln_layer {
	char *name;
	struct kiln_trait *traits; /* ntraits values; the none value, if any, is the last one */
	size_t ntraits;
	int has_none;              /* traits[ntraits-1] is the none value */
	enum kiln_blend blend;
	double opacity;            /* 0..1, default 1 */
	int bypass_dna;            /* left out of uniqueness comparison */
	struct kiln_loc loc;
};

/* A (layer, value) reference, by index into spec->layers and layer->traits. */
struct kiln_tref {
	size_t layer;
	size_t trait;
};

/* One clause: a layer and a set of its values (trait indexes). */
struct kiln_clause {
	size_t layer;
	size_t *traits;
	size_t ntraits;
};

enum kiln_rule_kind {
	KILN_RULE_EXCLUDE, /* no token holds one value of every clause at once */
	KILN_RULE_IF,      /* a token holding a value of `when` holds a value of every `then` clause */
	KILN_RULE_WITH,    /* the values go together: a token holds all of them or none of them */
};

struct kiln_rule {
	enum kiln_rule_kind kind;
	struct kiln_clause *when;  /* EXCLUDE and WITH: all clauses; IF: the condition */
	size_t nwhen;
	struct kiln_clause *then;  /* IF only */
	size_t nthen;
	struct kiln_loc loc;
};

struct kiln_attr {
	char *trait_type;
	char *value;
};

struct kiln_legendary {
	char *name;
	char *file;
	char *description;         /* NULL: the collection's */
	struct kiln_attr *attrs;   /* shown in metadata */
	size_t nattrs;
	struct kiln_loc loc;
};

/* AI engines: a LoRA applied when a trait is chosen. */
struct kiln_lora {
	char *name;                /* file name without extension on the server (crown_v2) */
	double weight;             /* default 1 */
};

/* AI engines: a ControlNet unit applied when a trait is chosen. */
struct kiln_controlnet {
	char *image;               /* control image, relative to the project dir */
	char *model;               /* control_v11p_sd15_canny (A1111 takes the stem; ComfyUI the file) */
	char *module;              /* preprocessor, default "none" (the image is already a map) */
	double weight;             /* default 1 */
	char *control_mode;        /* "Balanced" (default), "My prompt is more important",
	                              "ControlNet is more important" */
	double guidance_start;     /* default 0 */
	double guidance_end;       /* default 1 */
};

/* One Stable Diffusion server. Secrets are never in kiln.yaml: auth_env / token_env name
 * environment variables, which the *command* reads and puts in `secret` (the library never
 * reads the environment). */
/* Where an endpoint runs: a server of the studio's own, or a cloud platform's endpoint. */
enum kiln_platform { KILN_PLATFORM_SELF, KILN_PLATFORM_RUNPOD, KILN_PLATFORM_SAGEMAKER };

struct kiln_endpoint {
	char *url;                 /* base URL, no trailing slash: http://gpu-1:7860; RunPod:
	                              base_url + "/v2/" + endpoint_id */
	char *engine;              /* a1111 | comfyui | sdcpp; default: the spec's engine;
	                              "runpod" for a RunPod endpoint (worker says what it runs),
	                              sagemaker | sagemaker-jumpstart for a SageMaker one */
	enum kiln_platform platform;
	char *worker;              /* cloud endpoints: the worker's protocol, comfyui | a1111
	                              (kiln_endpoint_protocol), SageMaker also jumpstart; NULL
	                              for self-hosted ones */
	char *base_url;            /* cloud endpoints: the platform's API (RunPod default
	                              https://api.runpod.ai, SageMaker its regional runtime),
	                              for tests and private gateways; no trailing slash */
	char *endpoint_id;         /* RunPod: the serverless endpoint's id */
	double cost_per_hour;      /* USD per GPU hour (0: not priced) */
	unsigned concurrency;      /* jobs at once on this server, default 1 */
	char *auth_env;            /* env var holding "user:pass" (HTTP basic), or NULL */
	char *token_env;           /* env var holding a bearer token, or NULL */
	double connect_timeout;    /* seconds, default 10 */
	double timeout;            /* seconds per HTTP request, default 600 */
	/* Cloud jobs' lifetimes, seconds (0: kiln's default for the platform): RunPod's
	 * policy.executionTimeout / policy.ttl, SageMaker's InvocationTimeoutSeconds /
	 * RequestTTLSeconds */
	unsigned execution_timeout;
	unsigned ttl;
	struct kiln_loc loc;
	char *secret;              /* resolved by the command, never parsed; NULL: none */
	/* SageMaker async inference (lib/spec/ai.c parse_sagemaker): url is the runtime's
	 * /endpoints/NAME (messages, catalog), engine "sagemaker" or "sagemaker-jumpstart" */
	char *region;              /* "us-east-1" */
	char *endpoint_name;
	char *input_location;      /* "s3://bucket/prefix/" as written */
	char *s3_bucket;           /* its bucket */
	char *s3_prefix;           /* its key prefix, "" or ending in '/' */
	char *s3_base_url;         /* S3 at this address (http://host:port), no trailing slash;
	                              NULL: AWS's https://s3.REGION.amazonaws.com */
	int s3_virtual;            /* virtual-hosted S3 URLs (BUCKET.HOST/KEY), else path-style
	                              (HOST/BUCKET/KEY); default: virtual without s3_base_url,
	                              path-style with it (s3_addressing) */
	char *access_key_env, *secret_key_env, *session_token_env; /* variable names */
	int dataset_upload;        /* a training RunPod endpoint: 0 the dataset inline in /run,
	                              1 uploaded to S3 (s3_bucket, s3_prefix, region, keys: its
	                              s3: settings) */
	/* resolved by the command from those variables, never parsed; NULL: not set */
	char *access_key, *secret_key, *session_token;
};

/* The protocol an endpoint's images are asked in (what samplers, ControlNet settings and the
 * workflow are checked against): the cloud worker's, else the engine's. */
static inline const char *kiln_endpoint_protocol(const struct kiln_endpoint *ep)
{
	return ep->worker ? ep->worker : ep->engine;
}

/* The generate: block (AI engines). */
struct kiln_generate {
	char *prompt;              /* template: {Layer} placeholders, {id}, {name} */
	char *negative;            /* "" by default */
	char *checkpoint;          /* NULL: the server's current model */
	char *sampler;             /* A1111 name ("Euler a"; mapped for ComfyUI/sd.cpp), default "Euler a" */
	char *scheduler;           /* NULL: the sampler's default ("Automatic") */
	int steps;                 /* default 20 */
	double cfg;                /* default 7 */
	int width, height;         /* default: image.width/height */
	unsigned candidates;       /* images per item, default 1 (candidate k: seed + k) */
	char *workflow;            /* ComfyUI API-format graph file, relative to the dir; NULL */
	unsigned retries;          /* attempts per job after the first, default 4 */
	double budget_usd;         /* stop submitting before the projected spend passes it (0:
	                              no budget) */
	struct kiln_endpoint *endpoints;
	size_t nendpoints;
	struct kiln_loc loc;
};

enum kiln_target { KILN_TARGET_ERC721 = 1, KILN_TARGET_ERC1155 = 2, KILN_TARGET_METAPLEX = 4 };

/* OpenSea attribute display types (metadata.display and metadata.attributes). */
enum kiln_display {
	KILN_DISPLAY_NONE, KILN_DISPLAY_NUMBER, KILN_DISPLAY_BOOST_NUMBER,
	KILN_DISPLAY_BOOST_PERCENTAGE, KILN_DISPLAY_DATE,
};
const char *kiln_display_name(enum kiln_display d); /* "number", ...; NULL for NONE */

/* metadata.display.LAYER: the layer's values are numbers, shown with a display type. */
struct kiln_layer_display {
	enum kiln_display type;    /* NONE: shown as text (the default) */
	int has_max;
	double max_value;
};

/* metadata.attributes[]: an attribute every token carries besides its traits. */
struct kiln_meta_attr {
	char *trait_type;
	char *value;               /* as written; a number (an integer for date) when display */
	enum kiln_display display;
	int has_max;
	double max_value;
};

/* metadata.contract: the contract-level JSON (contractURI). Images are project files (copied
 * to dist/contract/ and addressed by that folder's CID) or URIs (containing "://"). */
struct kiln_contract_meta {
	char *name;                /* NULL: collection.name */
	char *description;         /* NULL: collection.description */
	char *image, *banner_image, *featured_image; /* NULL when not given */
	char *external_link;       /* NULL: collection.external_url (may be NULL too) */
	char **collaborators;      /* addresses */
	size_t ncollaborators;
};

/* training: (docs/training.md) one named LoRA to train. */
enum kiln_trainer { KILN_TRAINER_KOHYA, KILN_TRAINER_AI_TOOLKIT };
/* The base model's family: which kohya script (train_network.py, sdxl_train_network.py,
 * flux_train_network.py) and which ai-toolkit model flags. */
enum kiln_train_arch { KILN_ARCH_SDXL, KILN_ARCH_SD15, KILN_ARCH_FLUX };
/* Where a dataset image's caption comes from. */
enum kiln_caption_from {
	KILN_CAPTION_FILE,     /* a file beside the image: same stem + caption.extension */
	KILN_CAPTION_TEMPLATE, /* caption.template over the file name ({name}, {stem}, ...) */
	KILN_CAPTION_TRAITS,   /* the token's traits (dir: tokens:approved only) */
};

struct kiln_train_dataset {
	char *dir;                 /* folder relative to the project dir, as written; NULL for
	                              the collection's tokens */
	int tokens;                /* dir: tokens:approved: the collection's approved tokens'
	                              final images */
	unsigned repeats;          /* default 1 */
	char *class_tokens;        /* NULL: none */
	char *license;             /* NULL: not given (a warning, recorded) */
	char *source;              /* NULL: not given */
	enum kiln_caption_from caption_from; /* default file; traits for tokens */
	char *caption_template;    /* template and traits: NULL: the default (docs/training.md) */
	char *caption_extension;   /* ".txt" by default (".caption" also common), with its dot */
	struct kiln_loc loc;
};

struct kiln_training {
	char *name;                /* [A-Za-z0-9_.-], the output name; .kiln/train/NAME/ */
	char *base;                /* base checkpoint: a file (relative to the project) or a
	                              Hugging Face id as the trainer takes it */
	enum kiln_trainer trainer;
	enum kiln_train_arch arch; /* default sdxl */
	struct kiln_train_dataset *datasets;
	size_t ndatasets;
	int width, height;         /* resolution: N or [W, H]; default 1024 */
	int bucket_enable;         /* buckets.enable, default 1 */
	int bucket_min, bucket_max, bucket_step; /* defaults 256, 2048 (sd15: 1024), 64 */
	int network_dim;           /* default 16 */
	double network_alpha;      /* default 1 (kohya's) */
	double unet_lr;            /* default 1e-4 */
	double text_encoder_lr;    /* default 5e-5; 0: text encoder not trained */
	uint64_t steps;            /* steps or epochs (exactly one; 0 the other) */
	uint64_t epochs;
	uint64_t seed;             /* default 42 */
	unsigned batch_size;       /* default 1 */
	/* where it runs: exactly one of local and runpod */
	char **command;            /* local.command: argv (ncommand words); NULL: not local */
	size_t ncommand;
	struct kiln_endpoint *runpod; /* runpod: {endpoint_id, auth_env, ...}; NULL: local */
	struct kiln_loc loc;
};

/* metadata.metaplex.creators[] */
struct kiln_creator {
	char *address;             /* base58 of a 32-byte public key, checked at load */
	unsigned share;            /* percent; the shares sum to 100 */
};

/* qa.checks: a check id (or a prefix ending in '.') and its severity */
struct kiln_qa_check {
	char *check;
	int severity;              /* 0 error, 1 warning, -1 off */
};

/* qa: thresholds of the QA gates (kiln qa); 0 / negative values mean "the default" */
struct kiln_qa_spec {
	uint64_t max_bytes;        /* default 10 MiB */
	uint64_t min_bytes;        /* default: not checked */
	double uniform_stddev;     /* default 2.0 */
	int black_level;           /* default 8 */
	int near_threshold;        /* default 4; -1: near-duplicate search off; -2: exactly 0 */
	int near_dhash_threshold;  /* 0: not set (off); -1 off; -2 exactly 0; else the distance */
	int alpha;                 /* -1 either (default), 0 forbidden, 1 required */
	int gate;                  /* 1 (default): a QA error stops a build before release */
	uint64_t max_pixels;       /* images declaring more pixels are not decoded; 0: default */
	int near_measure;          /* 0: not set (color); 1 color; 2 phash (imagehash alone) */
	double near_color_distance; /* largest delta E of a look-alike; 0: default (6) */
	struct kiln_qa_check *checks;
	size_t nchecks;
};

/* polish: the steps applied to every token's image after render (lib/polish, docs/spec.md) */
enum kiln_polish_kind { KILN_POLISH_UPSCALE, KILN_POLISH_VECTORIZE, KILN_POLISH_OVERLAY };
enum kiln_upscale_method { KILN_UPSCALE_LANCZOS, KILN_UPSCALE_NEAREST, KILN_UPSCALE_ENGINE };
enum kiln_vector_mode { KILN_VECTOR_PIXELS, KILN_VECTOR_TRACE };
/* only: {Layer: Value | [Values]}: a token matches when, for every layer named, its value is
 * one of those listed */
struct kiln_polish_only {
	size_t layer;             /* index into spec->layers */
	uint32_t *values;         /* trait indexes */
	size_t nvalues;
};
struct kiln_polish_op {
	enum kiln_polish_kind kind;
	struct kiln_loc loc;
	/* upscale: */
	int factor;               /* 2 or 4 */
	enum kiln_upscale_method method;
	char *upscaler;           /* method engine: the server's upscaler name (NULL: default) */
	/* vectorize: */
	enum kiln_vector_mode mode;
	int colors;               /* trace: palette size 2..64 (default 8) */
	/* overlay: */
	char *file;               /* the layer, relative to the project folder */
	/* which tokens (both empty: all) */
	struct kiln_polish_only *only;
	size_t nonly;
	uint64_t *tokens;         /* ids */
	size_t ntokens;
};

struct kiln_spec {
	char *path;                /* kiln.yaml as given */
	char *dir;                 /* the project folder, trait paths are relative to it */

	/* collection: */
	char *name;
	char *symbol;
	char *description;
	char *external_url;        /* may be NULL */
	uint64_t size;             /* tokens in all, legendaries included */
	uint64_t seed;

	/* image: */
	int width, height;
	enum kiln_format format;
	int png_compression;       /* 0..9, default 6 */
	int quality;               /* webp/jpeg quality 1..100, default 90 */
	int lossless;              /* webp lossless, default 1 */
	/* image, compose engine output options (docs/compose.md); 0 is the default for each: */
	int png_filter;            /* PNG row filter: 0 none, 1 sub, 2 up, 3 avg, 4 paeth, 5 adaptive */
	int png_keep_alpha;        /* 1: always RGBA; 0: an opaque image is written as RGB */
	int png_palette;           /* 1: 8-bit palette PNG (exact if it fits, else libimagequant) */
	int png_colors;            /* palette size 2..256; 0 means 256 */
	int png_dither;            /* palette: 1 Floyd-Steinberg dithering (libimagequant), 0 none */
	int scale;                 /* integer upscale factor of the output, nearest neighbour;
	                              0 or 1: none (output is width x height) */
	int pixelate;              /* image.pixelate: block size N >= 2: every N x N block (from the
	                              top left) takes the colour of its centre pixel, HashLips'
	                              pixelFormat with ratio 1/N; 0 or 1: none. Before palette and
	                              scale, at the layers' size */
	int portfolio;             /* portfolio.enabled: release writes dist/portfolio/ */
	int portfolio_prompts_hashed; /* portfolio.prompts: hashed (1) or public (0, default) */
	int thumb_size;            /* image.thumbnail: longest side of dist/thumbnails/; 0 none */
	enum kiln_format thumb_format; /* image.thumbnail.format (default: image.format) */
	char *engine;              /* "compose" (default), later a1111 | comfyui | sdcpp */

	struct kiln_layer *layers; /* z-order: layers[0] is at the bottom */
	size_t nlayers;

	struct kiln_rule *rules;
	size_t nrules;

	unsigned min_distance;     /* uniqueness.min_distance, default 1 (all tokens distinct) */

	struct kiln_legendary *legendaries;
	size_t nlegendaries;

	/* metadata: */
	char *name_pattern;        /* "{name} #{id}" by default; {id} is the token id */
	uint64_t start_id;         /* default 1; start_id + size - 1 <= KILN_ID_MAX */
	char *base_uri;            /* image URI prefix; default (and the legacy placeholder
	                              "ipfs://REPLACE_WITH_IMAGES_CID"): ipfs://<images folder
	                              CID>, computed by the release; "{images_cid}" in it is
	                              replaced by that CID */
	char *meta_description;    /* default: the collection's description */
	unsigned targets;          /* KILN_TARGET_* bits, default ERC721 */
	struct kiln_qa_spec qa;    /* qa: */
	/* paths: {allow: [DIR, ...]}: folders outside the project whose files the spec may
	 * name (relative to the project folder, or absolute). Every other path must resolve,
	 * symbolic links followed, inside the project folder. */
	char **allow_paths;
	size_t nallow_paths;
	struct kiln_layer_display *layer_display; /* nlayers entries, or NULL (all text) */
	struct kiln_meta_attr *meta_attrs;        /* metadata.attributes */
	size_t nmeta_attrs;
	struct kiln_contract_meta contract;       /* metadata.contract */
	/* metadata.metaplex: */
	unsigned seller_fee_bps;   /* 0..10000, default 0 */
	struct kiln_creator *creators;
	size_t ncreators;
	char *mpl_collection_name;  /* metaplex.collection.name (NULL: no collection.json) */
	char *mpl_collection_image; /* its image, a project file */
	char *mpl_collection_description; /* NULL: the metadata description */
	/* metadata.reveal: a pre-reveal set pointing at one hidden image */
	char *reveal_image;        /* project file; NULL: no reveal */
	char *reveal_name;         /* pattern like metadata.name; NULL: the same as metadata.name */
	char *reveal_description;  /* NULL: the metadata description */

	/* generate: (AI engines; NULL when absent, required when engine is not compose) */
	struct kiln_generate *generate;

	/* review: {required: true, approvals: N}: `kiln release` writes only when every token is
	 * approved, by at least `approvals` distinct reviewers (default 1) */
	int review_required;
	unsigned review_approvals;
	/* polish: the steps in order (none: images are released as rendered) */
	struct kiln_polish_op *polish;
	size_t npolish;
	int image_svg;             /* image.format: svg: rendered as PNG, vectorized, and the
	                              SVG is the token's image */
	/* training: the LoRAs the studio trains (docs/training.md) */
	struct kiln_training *training;
	size_t ntraining;
};

/* Parse and validate dir/kiln.yaml (path may be absolute or relative to the cwd; dir is the
 * folder holding it). On error *out is NULL and e says file:line:col and what to fix. */
int kiln_spec_load(struct kiln_spec **out, const char *path, struct kiln_error *e) KILN_MUST_CHECK;

/* The same from a string (for tests); name is used in messages, dir resolves files
 * (NULL: files are not checked for existence). */
int kiln_spec_parse(struct kiln_spec **out, const char *yaml, size_t len, const char *name,
		    const char *dir, struct kiln_error *e) KILN_MUST_CHECK;

void kiln_spec_free(struct kiln_spec *s);
/* The training entry named name, or NULL. */
const struct kiln_training *kiln_spec_training(const struct kiln_spec *s, const char *name);
/* "file:line:col" of loc in s's file (just the file when loc has no line), for a kiln_error's
 * where. */
void kiln_spec_where(const struct kiln_spec *s, struct kiln_loc loc, char *buf, size_t n);

/* Every distinct layer file of a compose spec, checked once from its header: an image kiln
 * can read, of at most qa.max_pixels, at exactly the collection's width x height. Every file
 * that fails is named once, all in one KILN_E_SPEC error (one file: where is the file; more:
 * where is the spec and msg lists them). No pixel is decoded. Other engines: 0. */
int kiln_spec_check_layer_files(const struct kiln_spec *s, struct kiln_error *e) KILN_MUST_CHECK;

/* The error for n files that cannot be used (names[i] and why[i]): n == 1 is that file's own
 * error (where = the name); more are one error at where, "N <what> cannot be used:" and a line
 * per file, "... and K more" when they do not all fit. Returns code. */
int kiln_spec_files_report(struct kiln_error *e, int code, const char *where, const char *what,
			   const char *const *names, const char *const *whys, size_t n);

/* Number of generated (non-legendary) tokens. */
uint64_t kiln_spec_generated(const struct kiln_spec *s);

/* Index of a layer by name, or -1. */
long kiln_spec_layer_index(const struct kiln_spec *s, const char *name);
/* Index of a trait by name in a layer, or -1. */
long kiln_layer_trait_index(const struct kiln_layer *l, const char *name);

const char *kiln_format_ext(enum kiln_format f);        /* "png", "webp", "jpg" */
/* The product of the polish upscale factors of the steps that apply to every token (1: none):
 * what the released images' size is, over the rendered one. */
int kiln_spec_polish_scale(const struct kiln_spec *s);
/* 1 when polish op o applies to a token with these traits (spec->nlayers indexes) and id. */
int kiln_polish_op_applies(const struct kiln_polish_op *o, const uint32_t *traits, uint64_t id);
const char *kiln_format_mime(enum kiln_format f);       /* "image/png", ... */
const char *kiln_blend_name(enum kiln_blend b);

/* A commented starter kiln.yaml, for `kiln init`. Static string. */
const char *kiln_spec_starter(void);

/* ---- samplers.h (merged) ---- */
/* spec/samplers.h: sampler and schedule-type names (A1111's spelling is canonical) and what
 * each AI server ("a1111", "comfyui", "sdcpp") calls them. Spec-level data, used by the spec
 * loader for validation and by the engines for mapping. All strings returned are static. */

/* Map an A1111 sampler name ("Euler a") to the engine's ("a1111", "comfyui": euler_ancestral,
 * "sdcpp": euler_a). NULL: unknown, or the engine has no such sampler. */
const char *kiln_sampler_engine_name(const char *engine, const char *a1111_name);
/* Map an A1111 schedule type ("Karras") to the engine's ("karras"); NULL: the sampler's
 * default ("Automatic", or none given) or one the engine lacks. */
const char *kiln_scheduler_engine_name(const char *engine, const char *a1111_name);
/* The A1111 spelling of the sampler (schedule type) name[len], matched without regard to
 * case, or NULL when A1111 has none by that name. */
const char *kiln_sampler_canonical(const char *name, size_t len);
const char *kiln_scheduler_canonical(const char *name, size_t len);
/* The schedule type sampler `sampler` runs with when the spec asks for `scheduler`: itself
 * (canonical spelling) unless NULL or "Automatic", then the sampler's own default on A1111
 * ("Karras" for DPM++ 2M, "Exponential" for DPM++ 2M SDE, "Uniform" for Euler, ...); NULL when
 * no schedule type names it (timestep samplers such as UniPC). Engines other than A1111 send
 * this, so one recipe means one schedule on every engine. */
const char *kiln_scheduler_resolve(const char *sampler, const char *scheduler);
/* 1 when engine can run A1111 sampler `sampler` with schedule type `scheduler` (NULL or
 * "Automatic": the sampler's default, kiln_scheduler_resolve), both in canonical spelling. */
int kiln_sampler_runs(const char *engine, const char *sampler, const char *scheduler);
/* Append to out the A1111 names engine accepts, quoted and comma-separated: samplers
 * (which 0) or schedule types (which 1). */
int kiln_sampler_list(const char *engine, int which, struct kiln_buf *out) KILN_MUST_CHECK;

#endif
