/* kiln models add FILE | ls: the project's model registry (checkpoints and LoRAs with their
 * A1111 hashes and safetensors metadata), which the Provenance Portfolio publishes. */
#include "cli.h"
#include "kiln/train.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
	printf("usage: kiln models add FILE [--license L] [--source URL] [--trained-on DATASET]...\n"
	       "                            [--json]\n"
	       "       kiln models ls [--json]\n\n"
	       "Registers a model file (a checkpoint or a LoRA: .safetensors, .ckpt, ...) in the\n"
	       "project's catalog: its SHA-256 and the hashes AUTOMATIC1111 shows (model hash: 10\n"
	       "hex of the SHA-256; legacy: 8 hex of the SHA-256 of 64 KiB at 1 MiB; LoRA: SHA-256\n"
	       "of the data after the safetensors header, checked against sshs_model_hash when the\n"
	       "file has it) and the safetensors __metadata__ verbatim (kohya ss_*, modelspec.*).\n"
	       "The header is read with bounds checks; a malformed file is refused (exit 1).\n"
	       "Adding the same file again does nothing. The release's portfolio lists every\n"
	       "model and logs its registration.\n\n"
	       "  --license L          the model's licence (e.g. CreativeML-OpenRAIL-M)\n"
	       "  --source URL         where it comes from\n"
	       "  --trained-on NAME    a dataset (kiln datasets add) it was trained on; repeat\n"
	       "  --json               a JSON record (add) or one per line (ls)\n");
}

struct mopts {
	const char *license, *source, *trained[32];
	size_t ntrained;
};

static int option(void *user, int c, const char *arg)
{
	struct mopts *o = user;
	switch (c) {
	case 'l': o->license = arg; break;
	case 's': o->source = arg; break;
	case 't':
		if (o->ntrained == sizeof o->trained / sizeof *o->trained)
			return cli_usage("models", "at most 32 --trained-on");
		o->trained[o->ntrained++] = arg;
		break;
	}
	return 0;
}

int cmd_models(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'}, {"license", required_argument, NULL, 'l'},
		{"source", required_argument, NULL, 's'},
		{"trained-on", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	struct mopts o = {0};
	struct cli_reg reg = {"models", "FILE", opts, help, option, NULL, &o, 0, 0, NULL};
	const char *license, *source, **trained = o.trained;
	size_t ntrained;
	struct kiln_project *p = NULL;
	struct kiln_error e;
	int json, rc, add;
	if ((rc = cli_registry(cli, argc, argv, &reg, &p)))
		return rc == CLI_REG_HELP ? 0 : rc;
	add = reg.add;
	json = reg.json;
	license = o.license;
	source = o.source;
	ntrained = o.ntrained;
	kiln_error_clear(&e);
	if (add) {
		const char *file = reg.arg;
		struct kiln_model m;
		char *rec = NULL;
		int added = 0;
		if (kiln_model_read(file, &m, &e)) {
			rc = cli_fail(&e);
			goto out;
		}
		rec = kiln_model_record(&m, license, source, trained, ntrained);
		if (!rec) {
			fprintf(stderr, "kiln: out of memory\n");
			rc = 1;
		} else if (kiln_catalog_registry_add(p->catalog, "models", m.sha256, m.name,
						     m.safetensors && m.st.lora ? "lora"
										: "checkpoint",
						     rec, &added, &e)) {
			rc = cli_fail(&e);
		} else if (json) {
			printf("%s\n", rec);
		} else {
			printf("%s %s (%s)\n  sha256 %s\n  model hash %.10s, legacy %s%s%.12s\n",
			       added ? "registered" : "already registered", m.name,
			       m.safetensors && m.st.lora ? "lora" : "checkpoint", m.sha256, m.sha256,
			       m.legacy, m.addnet[0] ? ", lora hash " : "", m.addnet);
		}
		free(rec);
		kiln_model_release(&m);
	} else {
		struct kiln_fact *v = NULL;
		size_t n = 0;
		if (kiln_catalog_facts(p->catalog, "model", 0, &v, &n, &e)) {
			rc = cli_fail(&e);
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			json_t *r = json_loads(v[i].json, 0, NULL);
			if (json)
				printf("%s\n", v[i].json);
			else
				printf("%-10s %.10s  %s\n", v[i].kind,
				       json_string_value(json_object_get(r, "sha256")),
				       json_string_value(json_object_get(r, "name")));
			json_decref(r);
		}
		kiln_facts_free(v, n);
	}
out:
	kiln_project_free(p);
	return rc;
}
