/* inputs: the trainer's files, derived from a training manifest alone.
 *
 * kohya-ss/sd-scripts (48d368fa557731ad0488c07304dfeba8c07910eb): dataset.toml is read by
 * library/config_util.py (toml.load, then voluptuous schemas: ConfigSanitizer; the keys and
 * types kiln writes are listed in docs/training.md and checked by tests/train/check_toml.py);
 * the argv flags are train_util.py's and train_network.py's argparse options.
 * ostris/ai-toolkit (27a03a91f23eb1b757d5ec2e80ee3e129cfcc350): config.yaml has the shape of
 * config/examples/train_lora_flux_24gb.yaml (job: extension, config.process[0] of type
 * sd_trainer with network, save, datasets, train, model), keys as toolkit/config_modules.py
 * reads them.
 *
 * Paths are relative to the training's folder (.kiln/train/NAME): the trainer runs there.
 * Strings are written double-quoted with escapes, a form TOML and YAML read alike.
 */
#include "kiln/train.h"
#include "kiln/buf.h"
#include "util/alloc.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "text" with \" \\ and \uXXXX for control characters */
static int quoted(struct kiln_buf *b, const char *s)
{
	int rc = kiln_buf_add(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p && !rc; p++) {
		if (*p == '"' || *p == '\\')
			rc = kiln_buf_addf(b, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			rc = kiln_buf_addf(b, "\\u%04x", *p);
		else
			rc = kiln_buf_add(b, p, 1);
	}
	return rc ? rc : kiln_buf_add(b, "\"", 1);
}

/* the shortest decimal that reads back as x, always with a '.' or an exponent (a float to
 * both TOML and Python) */
static void num(double x, char out[40])
{
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(out, 40, "%.*g", prec, x);
		if (strtod(out, NULL) == x)
			break;
	}
	if (!strpbrk(out, ".eEn"))
		strcat(out, ".0");
}

/* a dataset's image_dir relative to the training folder */
static const char *rel_dir(const struct kiln_train_manifest *m, const char *dir)
{
	size_t k = strlen(KILN_TRAIN_DIR), n = strlen(m->name);
	if (!strncmp(dir, KILN_TRAIN_DIR, k) && dir[k] == '/' && !strncmp(dir + k + 1, m->name, n)
	    && dir[k + 1 + n] == '/')
		return dir + k + n + 2;
	return dir;
}

static int toml(const struct kiln_train_manifest *m, struct kiln_buf *b)
{
	int rc = kiln_buf_addf(b, "# kohya-ss/sd-scripts dataset config, written by kiln from "
			       "manifest.json\n[general]\nenable_bucket = %s\nmin_bucket_reso = %d\n"
			       "max_bucket_reso = %d\nbucket_reso_steps = %d\n"
			       "bucket_no_upscale = false\nresolution = [%d, %d]\nbatch_size = %u\n"
			       "shuffle_caption = false\nkeep_tokens = 0\n\n[[datasets]]\n",
			       m->bucket_enable ? "true" : "false", m->bucket_min, m->bucket_max,
			       m->bucket_step, m->width, m->height, m->batch_size);
	for (size_t i = 0; i < m->ndatasets && !rc; i++) {
		const struct kiln_train_mdataset *d = &m->datasets[i];
		const char *dir = rel_dir(m, d->image_dir);
		if (!d->images)
			continue;
		rc = kiln_buf_adds(b, "\n  [[datasets.subsets]]\n  image_dir = ");
		if (!rc)
			rc = quoted(b, dir);
		if (!rc)
			rc = kiln_buf_adds(b, "\n  caption_extension = ");
		if (!rc)
			rc = quoted(b, d->caption_extension);
		if (!rc)
			rc = kiln_buf_addf(b, "\n  num_repeats = %u\n", d->repeats);
		if (!rc && d->class_tokens) {
			rc = kiln_buf_adds(b, "  class_tokens = ");
			if (!rc)
				rc = quoted(b, d->class_tokens);
			if (!rc)
				rc = kiln_buf_add(b, "\n", 1);
		}
	}
	return rc;
}

static int add_arg(json_t *a, const char *flag, const char *v)
{
	return json_array_append_new(a, json_string(flag)) ||
	       (v && json_array_append_new(a, json_string(v)));
}

static int command(const struct kiln_train_manifest *m, struct kiln_buf *b)
{
	json_t *o = json_object(), *a = json_array();
	char x[40], y[40];
	char *text = NULL;
	int bad = !o || !a || json_object_set(o, "argv", a);
	int flux = !strcmp(m->arch, "flux");
	for (size_t i = 0; !bad && i < m->ncommand; i++)
		bad = json_array_append_new(a, json_string(m->command[i]));
	bad = bad || add_arg(a, "--dataset_config", "dataset.toml") ||
	      add_arg(a, "--pretrained_model_name_or_path", m->base) ||
	      add_arg(a, "--network_module", flux ? "networks.lora_flux" : "networks.lora");
	snprintf(x, sizeof x, "%d", m->network_dim);
	num(m->network_alpha, y);
	bad = bad || add_arg(a, "--network_dim", x) || add_arg(a, "--network_alpha", y);
	num(m->unet_lr, x);
	bad = bad || add_arg(a, "--unet_lr", x);
	if (!bad && m->text_encoder_lr > 0) {
		num(m->text_encoder_lr, y);
		bad = add_arg(a, "--text_encoder_lr", y);
	} else if (!bad) {
		bad = add_arg(a, "--network_train_unet_only", NULL);
	}
	snprintf(x, sizeof x, "%llu", (unsigned long long)(m->steps ? m->steps : m->epochs));
	bad = bad || add_arg(a, m->steps ? "--max_train_steps" : "--max_train_epochs", x);
	snprintf(y, sizeof y, "%llu", (unsigned long long)m->seed);
	bad = bad || add_arg(a, "--seed", y) || add_arg(a, "--output_dir", "output") ||
	      add_arg(a, "--output_name", m->name) || add_arg(a, "--save_model_as", "safetensors");
	if (!bad)
		text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
	bad = !text || kiln_buf_adds(b, text) || kiln_buf_add(b, "\n", 1);
	free(text);
	json_decref(a);
	json_decref(o);
	return bad ? KILN_E_NOMEM : 0;
}

static int yaml(const struct kiln_train_manifest *m, struct kiln_buf *b)
{
	char x[40];
	uint64_t steps = m->steps;
	int rc;
	if (!steps) {
		/* ai-toolkit counts steps only: epochs x images seen per epoch / batch */
		uint64_t per = kiln_train_manifest_steps_images(m);
		steps = m->epochs * ((per + m->batch_size - 1) / m->batch_size);
		if (!steps)
			steps = 1;
	}
	rc = kiln_buf_adds(b, "# ostris/ai-toolkit job config, written by kiln from manifest.json\n"
			   "job: extension\nconfig:\n  name: ");
	rc = rc ? rc : quoted(b, m->name);
	num(m->network_alpha, x);
	rc = rc ? rc : kiln_buf_addf(b, "\n  process:\n    - type: sd_trainer\n"
				     "      training_folder: \"output\"\n      device: cuda:0\n"
				     "      network:\n        type: lora\n        linear: %d\n"
				     "        linear_alpha: %s\n      save:\n        dtype: float16\n"
				     "        save_every: %llu\n      datasets:\n", m->network_dim, x,
				     (unsigned long long)steps);
	for (size_t i = 0; i < m->ndatasets && !rc; i++) {
		const struct kiln_train_mdataset *d = &m->datasets[i];
		const char *dir = rel_dir(m, d->image_dir);
		if (!d->images)
			continue;
		rc = kiln_buf_adds(b, "        - folder_path: ");
		rc = rc ? rc : quoted(b, dir);
		rc = rc ? rc : kiln_buf_adds(b, "\n          caption_ext: ");
		rc = rc ? rc : quoted(b, d->caption_extension + 1);
		rc = rc ? rc : kiln_buf_addf(b, "\n          num_repeats: %u\n          resolution: "
					     "[%d]\n", d->repeats,
					     m->width > m->height ? m->width : m->height);
		if (!rc && d->class_tokens) {
			rc = kiln_buf_adds(b, "          default_caption: ");
			rc = rc ? rc : quoted(b, d->class_tokens);
			rc = rc ? rc : kiln_buf_add(b, "\n", 1);
		}
	}
	num(m->unet_lr, x);
	rc = rc ? rc : kiln_buf_addf(b, "      train:\n        batch_size: %u\n        steps: %llu\n"
				     "        lr: %s\n        unet_lr: %s\n", m->batch_size,
				     (unsigned long long)steps, x, x);
	num(m->text_encoder_lr, x);
	rc = rc ? rc : kiln_buf_addf(b, "        text_encoder_lr: %s\n        train_text_encoder: "
				     "%s\n      model:\n        name_or_path: ", x,
				     m->text_encoder_lr > 0 && strcmp(m->arch, "flux") ? "true"
											: "false");
	rc = rc ? rc : quoted(b, m->base);
	rc = rc ? rc : kiln_buf_addf(b, "\n%s", !strcmp(m->arch, "sdxl") ? "        is_xl: true\n"
					      : !strcmp(m->arch, "flux") ? "        is_flux: true\n"
									 : "");
	rc = rc ? rc : kiln_buf_addf(b, "meta:\n  name: \"[name]\"\n  seed: %llu\n",
				     (unsigned long long)m->seed);
	return rc;
}

int kiln_train_input(const struct kiln_train_manifest *m, const char *name, char **text)
{
	struct kiln_buf b = KILN_BUF_INIT;
	int kohya = !strcmp(m->trainer, "kohya"), rc;
	*text = NULL;
	if (!strcmp(name, "dataset.toml") && kohya)
		rc = toml(m, &b);
	else if (!strcmp(name, "command.json") && kohya)
		rc = command(m, &b);
	else if (!strcmp(name, "config.yaml") && !kohya)
		rc = yaml(m, &b);
	else
		return 0;
	if (rc) {
		kiln_buf_release(&b);
		return KILN_E_NOMEM;
	}
	*text = kiln_buf_detach(&b, NULL);
	return 0;
}
