/* spec/training: the training: block (docs/training.md): a list of named LoRAs, each with its
 * datasets (folders of images, or the collection's approved tokens), base model, trainer,
 * resolution and buckets, network, learning rates, steps or epochs, seed, batch size, and
 * where it runs (a local command, or a RunPod endpoint read by ai.c's parse_runpod).
 *
 * Everything a trainer would refuse or misread later is refused here with the key's
 * line:col: bucket bounds that are not multiples of the step, a resolution outside them, a
 * caption template over traits on a folder dataset, both steps and epochs.
 */
#include <string.h>
#include <stdlib.h>
#include <stdio.h>
#include "spec/internal.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/path.h"

static const char *const trainers[] = {"kohya", "ai-toolkit"};
static const char *const archs[] = {"sdxl", "sd15", "flux"};

/* A name kiln uses as a folder and an output file name: 1..64 of [A-Za-z0-9_.-], not "."
 * or "..", not starting with '.' or '-'. */
static int good_name(const char *v)
{
	size_t n = strlen(v);
	return n && n <= 64 && v[0] != '.' && v[0] != '-' &&
	       strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

/* One of names[0..n) into *out (its index), with a did-you-mean. */
static int get_choice(struct ctx *c, struct fy_node *x, const char *what,
		      const char *const *names, size_t n, int *out)
{
	const char *v, *hint;
	char list[256];
	int rc = plain_scalar(c, x, what, &v);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v, names[i])) {
			*out = (int)i;
			return 0;
		}
	list_names(list, sizeof list, names, n);
	hint = closest(v, names, n);
	return fail(c, x, "%s must be one of %s, got '%s'%s%s%s", what, list, v,
		    hint ? ": did you mean '" : "", hint ? hint : "", hint ? "'?" : "");
}

/* {Layer} placeholders of a traits template must name layers; other templates take {name},
 * {stem}, {class_tokens}, {dataset} (and traits ones {id}, {name}, {class_tokens}). */
static int check_caption_template(struct ctx *c, struct fy_node *x, const char *t, int traits)
{
	static const char *const file_words[] = {"name", "stem", "class_tokens", "dataset"};
	for (const char *p = t; (p = strchr(p, '{')); p++) {
		const char *q = strchr(p, '}');
		char word[256];
		size_t i;
		if (!q)
			return fail(c, x, "caption template has a '{' without '}': write {name}, "
				    "{stem}, {class_tokens}%s", traits ? " or a layer's name" : "");
		if ((size_t)(q - p - 1) >= sizeof word)
			return fail(c, x, "caption template: placeholder too long");
		memcpy(word, p + 1, (size_t)(q - p - 1));
		word[q - p - 1] = 0;
		if (traits) {
			if (!strcmp(word, "id") || !strcmp(word, "name") ||
			    !strcmp(word, "class_tokens") || kiln_spec_layer_index(c->s, word) >= 0)
				continue;
			return fail(c, x, "caption template names {%s}, which is not a layer "
				    "(placeholders over traits: a layer name, {id}, {name}, "
				    "{class_tokens})", word);
		}
		for (i = 0; i < 4 && strcmp(word, file_words[i]); i++)
			;
		if (i == 4)
			return fail(c, x, "caption template names {%s}: over file names the "
				    "placeholders are {name} (the stem, '_' and '-' as spaces), "
				    "{stem}, {class_tokens} and {dataset}", word);
	}
	return 0;
}

/* caption: {from: file|template|traits, template, extension} */
static int parse_caption(struct ctx *c, struct fy_node *n, struct kiln_train_dataset *d)
{
	static const char *const keys[] = {"from", "template", "extension"};
	static const char *const froms[] = {"file", "template", "traits"};
	struct fy_node *x, *xt = get(n, "template");
	int from = d->tokens ? KILN_CAPTION_TRAITS : KILN_CAPTION_FILE, rc;
	if ((rc = want_map(c, n, "a dataset's caption")) ||
	    (rc = check_keys(c, n, "a dataset's caption", keys, 3)))
		return rc;
	if ((x = get(n, "from")) && (rc = get_choice(c, x, "caption.from", froms, 3, &from)))
		return rc;
	if (!x && xt && !d->tokens)
		from = KILN_CAPTION_TEMPLATE;
	if (from == KILN_CAPTION_TRAITS && !d->tokens)
		return fail(c, x, "caption from: traits needs the collection's tokens as the "
			    "dataset (dir: tokens:approved); a folder's captions come from files "
			    "or a template");
	if (from != KILN_CAPTION_TRAITS && d->tokens)
		return fail(c, x ? x : n, "the collection's tokens are captioned from their "
			    "traits: write caption: {from: traits} (with a template if you like)");
	d->caption_from = (enum kiln_caption_from)from;
	if (xt) {
		if (from == KILN_CAPTION_FILE)
			return fail(c, xt, "caption.template is used with from: template or "
				    "traits, not with from: file");
		if ((rc = get_nonempty(c, xt, "caption.template", &d->caption_template)) ||
		    (rc = check_caption_template(c, xt, d->caption_template,
						 from == KILN_CAPTION_TRAITS)))
			return rc;
	} else if (from == KILN_CAPTION_TEMPLATE) {
		return fail(c, n, "caption from: template needs template: (say \"{class_tokens}, "
			    "{name}\")");
	}
	if ((x = get(n, "extension"))) {
		const char *v;
		free(d->caption_extension);
		d->caption_extension = NULL;
		if ((rc = plain_scalar(c, x, "caption.extension", &v)))
			return rc;
		if (v[0] != '.' || strlen(v) < 2 || strlen(v) > 16 || strpbrk(v, "/\\ \t") ||
		    strchr(v + 1, '.'))
			return fail(c, x, "caption.extension is a file extension with its dot, "
				    "such as .txt or .caption, got '%s'", v);
		if (!(d->caption_extension = kiln_strdup(v)))
			return nomem(c);
	}
	return 0;
}

/* The dataset folder: inside the project (or a paths.allow folder), and a folder. */
static int check_dir(struct ctx *c, struct fy_node *x, const char *dir)
{
	char *real = NULL, shown[4096];
	int st, isdir;
	if (!c->dir)
		return 0;
	st = kiln_path_beneath(c->dir, dir, (const char *const *)c->s->allow_paths,
			       c->s->nallow_paths, &real, shown, sizeof shown);
	if (st == KILN_PATH_NOMEM)
		return nomem(c);
	if (st == KILN_PATH_MISSING)
		return fail(c, x, "dataset folder '%s' not found (paths are relative to the "
			    "folder of %s): fix the path or create the folder", dir, c->name);
	if (st == KILN_PATH_OUTSIDE) {
		fail(c, x, "dataset folder '%s' is %s, outside the project folder: kiln reads "
		     "only folders inside it (or in a folder paths.allow names)", dir, shown);
		return kiln_error_hint(c->e, KILN_HINT_ALLOW_PATH, NULL);
	}
	if (st != KILN_PATH_OK)
		return fail(c, x, "dataset folder '%s' cannot be resolved: check the folders on "
			    "its way", dir);
	isdir = kiln_fs_is_dir(real);
	free(real);
	if (!isdir)
		return fail(c, x, "dataset dir '%s' is a file, not a folder: name the folder "
			    "holding the images", dir);
	return 0;
}

static int parse_dataset(struct ctx *c, struct fy_node *n, struct kiln_train_dataset *d)
{
	static const char *const keys[] = {"dir", "repeats", "class_tokens", "license",
					   "source", "caption"};
	struct fy_node *x;
	uint64_t k;
	int rc;
	d->loc = loc_of(n);
	d->repeats = 1;
	if ((rc = want_map(c, n, "a dataset")) ||
	    (rc = check_keys(c, n, "a dataset", keys, 6)))
		return rc;
	if (!(x = get(n, "dir")))
		return fail(c, n, "a dataset needs dir: a folder of images (relative to the "
			    "project) or tokens:approved");
	if ((rc = get_nonempty(c, x, "dataset dir", &d->dir)))
		return rc;
	if (!strncmp(d->dir, "tokens:", 7)) {
		if (strcmp(d->dir + 7, "approved"))
			return fail(c, x, "dataset dir '%s': the collection's tokens are "
				    "written tokens:approved (its approved tokens' images)",
				    d->dir);
		d->tokens = 1;
		d->caption_from = KILN_CAPTION_TRAITS;
	} else if ((rc = check_dir(c, x, d->dir))) {
		return rc;
	}
	if ((x = get(n, "repeats"))) {
		if ((rc = get_u64(c, x, "dataset repeats", 1, 10000, &k)))
			return rc;
		d->repeats = (unsigned)k;
	}
	if ((x = get(n, "class_tokens")) &&
	    (rc = get_nonempty(c, x, "dataset class_tokens", &d->class_tokens)))
		return rc;
	if ((x = get(n, "license")) && (rc = get_nonempty(c, x, "dataset license", &d->license)))
		return rc;
	if ((x = get(n, "source")) && (rc = get_nonempty(c, x, "dataset source", &d->source)))
		return rc;
	if ((x = get(n, "caption")) && (rc = parse_caption(c, x, d)))
		return rc;
	if (!d->caption_extension && !(d->caption_extension = kiln_strdup(".txt")))
		return nomem(c);
	return 0;
}

/* resolution: N or [W, H], multiples of 8 from 64 to 8192 */
static int parse_resolution(struct ctx *c, struct fy_node *x, struct kiln_training *t)
{
	int rc;
	if (fy_node_get_type(x) == FYNT_SEQUENCE) {
		if (fy_node_sequence_item_count(x) != 2)
			return fail(c, x, "resolution is one number (1024) or [width, height]");
		if ((rc = get_int(c, fy_node_sequence_get_by_index(x, 0), "resolution width", 64,
				  8192, &t->width)) ||
		    (rc = get_int(c, fy_node_sequence_get_by_index(x, 1), "resolution height", 64,
				  8192, &t->height)))
			return rc;
	} else {
		if ((rc = get_int(c, x, "resolution", 64, 8192, &t->width)))
			return rc;
		t->height = t->width;
	}
	if (t->width % 8 || t->height % 8)
		return fail(c, x, "resolution %dx%d: width and height must be multiples of 8 (the "
			    "latent is 1/8 of the image)", t->width, t->height);
	return 0;
}

/* buckets: {enable, min, max, step} */
static int parse_buckets(struct ctx *c, struct fy_node *n, struct kiln_training *t)
{
	static const char *const keys[] = {"enable", "min", "max", "step"};
	struct fy_node *x;
	int rc;
	if ((rc = want_map(c, n, "buckets")) || (rc = check_keys(c, n, "buckets", keys, 4)))
		return rc;
	if ((x = get(n, "enable")) && (rc = get_bool(c, x, "buckets.enable", &t->bucket_enable)))
		return rc;
	if ((x = get(n, "min")) && (rc = get_int(c, x, "buckets.min", 64, 8192, &t->bucket_min)))
		return rc;
	if ((x = get(n, "max")) && (rc = get_int(c, x, "buckets.max", 64, 8192, &t->bucket_max)))
		return rc;
	if ((x = get(n, "step")) && (rc = get_int(c, x, "buckets.step", 8, 1024, &t->bucket_step)))
		return rc;
	return 0;
}

static int check_buckets(struct ctx *c, struct fy_node *n, struct kiln_training *t)
{
	struct fy_node *x = get(n, "buckets") ? get(n, "buckets") : n;
	if (t->bucket_step % 8)
		return fail(c, x, "buckets.step %d must be a multiple of 8", t->bucket_step);
	if (t->bucket_min % t->bucket_step || t->bucket_max % t->bucket_step)
		return fail(c, x, "buckets.min (%d) and buckets.max (%d) must be multiples of "
			    "buckets.step (%d), as kohya's bucket manager requires",
			    t->bucket_min, t->bucket_max, t->bucket_step);
	if (t->bucket_min > t->bucket_max)
		return fail(c, x, "buckets.min (%d) is above buckets.max (%d)", t->bucket_min,
			    t->bucket_max);
	if (t->bucket_enable && (t->width < t->bucket_min || t->height < t->bucket_min ||
				 t->width > t->bucket_max || t->height > t->bucket_max))
		return fail(c, x, "resolution %dx%d lies outside the buckets (%d to %d): widen "
			    "buckets.min/max or change resolution", t->width, t->height,
			    t->bucket_min, t->bucket_max);
	if (t->bucket_enable && (t->width % t->bucket_step || t->height % t->bucket_step))
		return fail(c, x, "resolution %dx%d must be a multiple of buckets.step (%d)",
			    t->width, t->height, t->bucket_step);
	return 0;
}

/* network: {dim, alpha} */
static int parse_network(struct ctx *c, struct fy_node *n, struct kiln_training *t)
{
	static const char *const keys[] = {"dim", "alpha"};
	struct fy_node *x;
	int rc;
	if ((rc = want_map(c, n, "network")) || (rc = check_keys(c, n, "network", keys, 2)))
		return rc;
	if ((x = get(n, "dim")) && (rc = get_int(c, x, "network.dim", 1, 1024, &t->network_dim)))
		return rc;
	if ((x = get(n, "alpha")) &&
	    (rc = get_range(c, x, "network.alpha", 0.0001, 1024, &t->network_alpha)))
		return rc;
	return 0;
}

/* local: {command: [argv...]} */
static int parse_local(struct ctx *c, struct fy_node *n, struct kiln_training *t)
{
	static const char *const keys[] = {"command"};
	struct fy_node *x;
	size_t k;
	int rc;
	if ((rc = want_map(c, n, "local")) || (rc = check_keys(c, n, "local", keys, 1)))
		return rc;
	if (!(x = get(n, "command")))
		return fail(c, n, "local needs command: the trainer's argv as a list, say "
			    "[accelerate, launch, sdxl_train_network.py]");
	if ((rc = want_seq(c, x, "local.command")))
		return rc;
	k = (size_t)fy_node_sequence_item_count(x);
	if (!k || k > 256)
		return fail(c, x, "local.command is a list of 1 to 256 words (the program "
			    "first)");
	if (!(t->command = kiln_calloc(k, sizeof *t->command)))
		return nomem(c);
	t->ncommand = k;
	for (size_t i = 0; i < k; i++)
		if ((rc = get_nonempty(c, fy_node_sequence_get_by_index(x, (int)i),
				       "a local.command word", &t->command[i])))
			return rc;
	return 0;
}

static int parse_one(struct ctx *c, struct fy_node *n, struct kiln_training *t)
{
	static const char *const keys[] = {"name", "base", "trainer", "arch", "datasets",
					   "resolution", "buckets", "network", "unet_lr",
					   "text_encoder_lr", "steps", "epochs", "seed",
					   "batch_size", "local", "runpod"};
	struct fy_node *x, *xd;
	int rc, v;
	size_t k;
	t->loc = loc_of(n);
	t->width = t->height = 1024;
	t->bucket_enable = 1;
	t->bucket_min = 256;
	t->bucket_step = 64;
	t->network_dim = 16;
	t->network_alpha = 1;
	t->unet_lr = 1e-4;
	t->text_encoder_lr = 5e-5;
	t->seed = 42;
	t->batch_size = 1;
	if ((rc = want_map(c, n, "a training entry")) ||
	    (rc = check_keys(c, n, "a training entry", keys, sizeof keys / sizeof keys[0])))
		return rc;
	if (!(x = get(n, "name")))
		return fail(c, n, "a training entry needs name: the LoRA's name (owl_style)");
	if ((rc = get_nonempty(c, x, "training name", &t->name)))
		return rc;
	if (!good_name(t->name))
		return fail(c, x, "training name '%s' must be 1 to 64 letters, digits, '_', '.' "
			    "or '-' (it names a folder and the LoRA file), not starting with '.' "
			    "or '-'", t->name);
	if (!(x = get(n, "base")))
		return fail(c, n, "training '%s' needs base: the base checkpoint "
			    "(sd_xl_base_1.0.safetensors or a Hugging Face id)", t->name);
	if ((rc = get_nonempty(c, x, "training base", &t->base)))
		return rc;
	if (!(x = get(n, "trainer")))
		return fail(c, n, "training '%s' needs trainer: kohya or ai-toolkit", t->name);
	if ((rc = get_choice(c, x, "trainer", trainers, 2, &v)))
		return rc;
	t->trainer = (enum kiln_trainer)v;
	if ((x = get(n, "arch"))) {
		if ((rc = get_choice(c, x, "arch", archs, 3, &v)))
			return rc;
		t->arch = (enum kiln_train_arch)v;
	}
	t->bucket_max = t->arch == KILN_ARCH_SD15 ? 1024 : 2048;
	if (!(xd = get(n, "datasets")))
		return fail(c, n, "training '%s' needs datasets: a list of {dir: FOLDER, ...}",
			    t->name);
	if ((rc = want_seq(c, xd, "datasets")))
		return rc;
	k = (size_t)fy_node_sequence_item_count(xd);
	if (!k)
		return fail(c, xd, "training '%s': datasets is empty: list at least one folder",
			    t->name);
	if (!(t->datasets = kiln_calloc(k, sizeof *t->datasets)))
		return nomem(c);
	for (size_t i = 0; i < k; i++) {
		t->ndatasets = i + 1;
		if ((rc = parse_dataset(c, fy_node_sequence_get_by_index(xd, (int)i),
					&t->datasets[i])))
			return rc;
	}
	for (size_t i = 0; i < k; i++)
		for (size_t j = 0; j < i; j++)
			if (!strcmp(t->datasets[i].dir, t->datasets[j].dir))
				return fail(c, fy_node_sequence_get_by_index(xd, (int)i),
					    "dataset '%s' is listed twice: give it once, with "
					    "repeats for weight", t->datasets[i].dir);
	if ((x = get(n, "resolution")) && (rc = parse_resolution(c, x, t)))
		return rc;
	if ((x = get(n, "buckets")) && (rc = parse_buckets(c, x, t)))
		return rc;
	if ((rc = check_buckets(c, n, t)))
		return rc;
	if ((x = get(n, "network")) && (rc = parse_network(c, x, t)))
		return rc;
	if ((x = get(n, "unet_lr")) && (rc = get_range(c, x, "unet_lr", 1e-9, 1, &t->unet_lr)))
		return rc;
	if ((x = get(n, "text_encoder_lr")) &&
	    (rc = get_range(c, x, "text_encoder_lr", 0, 1, &t->text_encoder_lr)))
		return rc;
	if (get(n, "steps") && get(n, "epochs"))
		return fail(c, key_node(n, "epochs"), "training '%s' gives both steps and epochs: "
			    "keep one", t->name);
	if ((x = get(n, "steps")) && (rc = get_u64(c, x, "steps", 1, 10000000, &t->steps)))
		return rc;
	if ((x = get(n, "epochs")) && (rc = get_u64(c, x, "epochs", 1, 100000, &t->epochs)))
		return rc;
	if (!t->steps && !t->epochs)
		return fail(c, n, "training '%s' needs steps: N (or epochs: N)", t->name);
	if ((x = get(n, "seed")) && (rc = get_u64(c, x, "training seed", 0, 4294967295u,
						  &t->seed)))
		return rc;
	if ((x = get(n, "batch_size"))) {
		uint64_t b;
		if ((rc = get_u64(c, x, "batch_size", 1, 256, &b)))
			return rc;
		t->batch_size = (unsigned)b;
	}
	if (get(n, "local") && get(n, "runpod"))
		return fail(c, key_node(n, "runpod"), "training '%s' runs either local or on "
			    "runpod, not both: keep one", t->name);
	if ((x = get(n, "local")))
		return parse_local(c, x, t);
	if ((x = get(n, "runpod"))) {
		if ((rc = want_map(c, x, "runpod")))
			return rc;
		if (!(t->runpod = kiln_calloc(1, sizeof *t->runpod)))
			return nomem(c);
		t->runpod->loc = loc_of(x);
		t->runpod->platform = KILN_PLATFORM_RUNPOD;
		t->runpod->concurrency = 1;
		t->runpod->connect_timeout = 10;
		t->runpod->timeout = 600;
		return parse_runpod(c, x, t->runpod, 1);
	}
	return fail(c, n, "training '%s' needs where it runs: local: {command: [...]} or "
		    "runpod: {endpoint_id: ..., auth_env: ...}", t->name);
}

int parse_training(struct ctx *c, struct fy_node *n)
{
	struct kiln_spec *s = c->s;
	size_t k;
	int rc;
	if ((rc = want_seq(c, n, "training")))
		return rc;
	k = (size_t)fy_node_sequence_item_count(n);
	if (!k)
		return 0;
	if (!(s->training = kiln_calloc(k, sizeof *s->training)))
		return nomem(c);
	for (size_t i = 0; i < k; i++) {
		struct fy_node *x = fy_node_sequence_get_by_index(n, (int)i);
		s->ntraining++;
		if ((rc = parse_one(c, x, &s->training[i])))
			return rc;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(s->training[j].name, s->training[i].name))
				return fail(c, get(x, "name"), "training '%s' is named twice: "
					    "names must differ", s->training[i].name);
	}
	return 0;
}

void training_free(struct kiln_spec *s)
{
	for (size_t i = 0; i < s->ntraining; i++) {
		struct kiln_training *t = &s->training[i];
		for (size_t d = 0; d < t->ndatasets; d++) {
			free(t->datasets[d].dir);
			free(t->datasets[d].class_tokens);
			free(t->datasets[d].license);
			free(t->datasets[d].source);
			free(t->datasets[d].caption_template);
			free(t->datasets[d].caption_extension);
		}
		free(t->datasets);
		for (size_t w = 0; t->command && w < t->ncommand; w++)
			free(t->command[w]);
		free(t->command);
		if (t->runpod) {
			endpoint_release(t->runpod);
			free(t->runpod);
		}
		free(t->name);
		free(t->base);
	}
	free(s->training);
	s->training = NULL;
	s->ntraining = 0;
}

const struct kiln_training *kiln_spec_training(const struct kiln_spec *s, const char *name)
{
	for (size_t i = 0; s && i < s->ntraining; i++)
		if (!strcmp(s->training[i].name, name))
			return &s->training[i];
	return NULL;
}
