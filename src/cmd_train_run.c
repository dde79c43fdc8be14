/* kiln train run NAME [--json] [-q] [--cancel]: run the trainer on what `kiln train prepare`
 * wrote (.kiln/train/NAME/), follow it, and register the LoRA it makes.
 *
 * The trainer runs detached (lib/train/run.c): locally a supervisor in its own session with
 * the log in .kiln/train/NAME/log; on RunPod a serverless job (src/train_runpod.c over
 * lib/render/runpod_train.c). Either way
 * .kiln/train/NAME/run.json is written before kiln waits, so a kiln killed mid-run (kill -9,
 * Ctrl-C) loses nothing: the next `kiln train run NAME` finds the trainer alive and follows it
 * again, or finds it finished and collects; it never starts a second one while one runs. */
#include "cli.h"
#include "kiln/train.h"
#include "train_run.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void help(void)
{
	printf("usage: kiln train run NAME [--json] [-q] [--cancel]\n\n"
	       "Runs the trainer of training entry NAME on what `kiln train prepare NAME` wrote\n"
	       "(.kiln/train/NAME/): `local: {command}` runs the command with kiln's kohya\n"
	       "arguments, detached, its output in .kiln/train/NAME/log; `runpod:` sends the\n"
	       "prepared dataset as a serverless job (in the request, or uploaded to S3 with\n"
	       "dataset_upload: s3). Shows kohya's step counter and loss, then\n"
	       "reads the LoRA it wrote, checks its ss_* metadata against the manifest (images x\n"
	       "repeats per folder, base model, seed, steps) and registers it in the model registry\n"
	       "under NAME (kiln models ls). Prints where the file is and its A1111 short hash.\n\n"
	       "Stopping kiln (Ctrl-C, or killed) leaves the trainer running: run the same command\n"
	       "again to follow it and collect what it made. Never starts a second trainer for NAME.\n\n"
	       "  --cancel   stop the running trainer (local: its process group; RunPod: the job)\n"
	       "  --json     events on stdout: start, dataset, step {step, total, loss}, epoch,\n"
	       "             done, error\n"
	       "  -q         no progress bar\n");
}

static double now_unix(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

void train_event(const char *event, json_t *o)
{
	if (!o)
		return;
	json_object_set_new(o, "event", json_string(event));
	json_dumpf(o, stdout, JSON_COMPACT | JSON_SORT_KEYS);
	fputc('\n', stdout);
	fflush(stdout);
	json_decref(o);
}

/* The progress of a run, shown as it comes. */
void train_show(struct train_ctx *t, const struct kiln_train_progress *pr)
{
	if (pr->epoch != t->shown_epoch && pr->epoch) {
		t->shown_epoch = pr->epoch;
		if (t->json)
			train_event("epoch", json_pack("{s:s, s:i, s:i}", "name", t->name, "epoch",
						       (int)pr->epoch, "epochs", (int)pr->epochs));
	}
	if (pr->step == t->shown_step || !pr->total)
		return;
	t->shown_step = pr->step;
	if (t->json) {
		json_t *o = json_pack("{s:s, s:I, s:I}", "name", t->name, "step",
				      (json_int_t)pr->step, "total", (json_int_t)pr->total);
		if (o)
			json_object_set_new(o, "loss", pr->has_loss ? json_real(pr->loss)
								   : json_null());
		train_event("step", o);
		return;
	}
	{
		struct kiln_progress p = {0};
		p.stage = "train";
		p.event = "tick";
		p.total = pr->total;
		p.done = pr->step;
		p.elapsed = now_unix() - t->started;
		cli_progress_cb(&p, &t->cp);
		if (t->cp.tty && pr->has_loss && !t->cp.quiet)
			fprintf(stderr, " loss %.4f\r", pr->loss);
	}
}

static void end_bar(struct train_ctx *t)
{
	struct kiln_progress p = {0};
	if (t->json)
		return;
	p.stage = "train";
	p.event = "end";
	p.total = t->shown_step;
	p.done = t->shown_step;
	p.elapsed = now_unix() - t->started;
	cli_progress_cb(&p, &t->cp);
}

/* --- the files of .kiln/train/NAME ----------------------------------------------------------- */

static int load_json(const char *path, json_t **out)
{
	json_error_t je;
	*out = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (*out)
		return 0;
	if (access(path, F_OK))
		return -1;
	fprintf(stderr, "kiln: %s:%d:%d: %s\n", path, je.line, je.column, je.text);
	return 1;
}

/* The kohya argument value after flag in args (a JSON array of strings), or NULL. */
static const char *arg_value(json_t *args, const char *flag)
{
	size_t i;
	json_t *v;
	json_array_foreach(args, i, v) {
		const char *s = json_string_value(v);
		if (s && !strcmp(s, flag))
			return json_string_value(json_array_get(args, i + 1));
		if (s && !strncmp(s, flag, strlen(flag)) && s[strlen(flag)] == '=')
			return s + strlen(flag) + 1;
	}
	return NULL;
}

static int has_flag(json_t *args, const char *flag)
{
	size_t i;
	json_t *v;
	json_array_foreach(args, i, v)
		if (json_is_string(v) && !strcmp(json_string_value(v), flag))
			return 1;
	return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

static const char *base_name(const char *p)
{
	const char *s = p ? strrchr(p, '/') : NULL;
	return s ? s + 1 : p;
}

/* What the trained file's metadata must say, from the manifest (folders: image count and
 * repeats; base, seed, steps) and the trainer's script (the base model's version). */
static int expectations(struct train_ctx *t, const struct kiln_train_manifest *m, json_t *args,
			struct kiln_error *e)
{
	memset(&t->x, 0, sizeof t->x);
	t->ndirs = 0;
	if (!m->ndatasets || m->ndatasets > TRAIN_MAX_DIRS)
		return kiln_error_set(e, KILN_E_STATE, t->manifest_path, "the manifest lists %zu "
				      "datasets (1 to %d)", m->ndatasets, TRAIN_MAX_DIRS);
	for (size_t i = 0; i < m->ndatasets; i++) {
		struct kiln_train_dir *td;
		if (!m->datasets[i].images)
			continue; /* not in dataset.toml: kohya never sees it */
		td = &t->dirs[t->ndirs++];
		snprintf(td->name, sizeof td->name, "%s", base_name(m->datasets[i].image_dir));
		td->images = m->datasets[i].images;
		td->repeats = m->datasets[i].repeats;
	}
	t->x.dirs = t->dirs;
	t->x.ndirs = t->ndirs;
	/* kohya's model_version: sdxl_train_network.py "sdxl_base_v1-0"; train_network.py
	 * "sd_v1" (or "sd_v2" with --v2); flux_train_network.py is not checked */
	t->x.base_version = !strcmp(m->arch, "sdxl") ? "sdxl_base_v1-0"
			    : !strcmp(m->arch, "sd15") ? (has_flag(args, "--v2") ? "sd_v2" : "sd_v1")
						       : NULL;
	t->x.base_name = base_name(m->base);
	t->script = !strcmp(m->arch, "sdxl") ? "sdxl_train_network.py"
		    : !strcmp(m->arch, "flux") ? "flux_train_network.py" : "train_network.py";
	t->x.has_seed = 1;
	t->x.seed = m->seed;
	if (m->steps) {
		t->x.has_steps = 1;
		t->x.steps = m->steps;
	} else if (!parse_u64(arg_value(args, "--max_train_steps"), &t->x.steps)) {
		t->x.has_steps = 1;
	}
	return 0;
}

/* --- collecting ------------------------------------------------------------------------------ */

/* kiln lets go of the project lock while it follows a trainer (hours, for a real training:
 * the other verbs must not wait on it) and takes it again to write the catalog. */
int train_relock(struct kiln_project *p, struct kiln_error *e)
{
	if (p->lock_fd >= 0)
		return 0;
	return kiln_project_lock(p->kiln_dir, "train", &p->lock_fd, e);
}

int train_collect(struct train_ctx *t, struct kiln_project *p, const char *file,
		  const char *job_id, struct kiln_error *e)
{
	struct kiln_model m;
	const char *trained[TRAIN_MAX_DIRS];
	json_t *rec = NULL, *tr;
	char *text = NULL, *recs = NULL;
	int rc, added = 0;
	if ((rc = train_relock(p, e)))
		return rc;
	if ((rc = kiln_model_read(file, &m, e)))
		return rc;
	if (!m.safetensors || !m.st.lora) {
		kiln_model_release(&m);
		return kiln_error_set(e, KILN_E_FAILED, file, "the trainer's output is not a "
				      "safetensors LoRA");
	}
	if ((rc = kiln_train_check_metadata(m.st.metadata_json, &t->x, file, e))) {
		kiln_model_release(&m);
		return rc;
	}
	snprintf(m.name, sizeof m.name, "%s", t->name);
	for (size_t i = 0; i < t->ndatasets; i++)
		trained[i] = t->datasets[i];
	recs = kiln_model_record(&m, NULL, NULL, trained, t->ndatasets);
	rec = recs ? json_loads(recs, 0, NULL) : NULL;
	tr = json_pack("{s:s, s:s, s:f, s:f, s:s, s:I}", "name", t->name, "where", t->where,
		       "started", t->started, "finished", now_unix(), "manifest_sha256",
		       t->manifest_sha, "images_x_repeats", (json_int_t)0);
	if (tr) {
		uint64_t total = 0;
		for (size_t i = 0; i < t->ndirs; i++)
			total += t->dirs[i].images * t->dirs[i].repeats;
		json_object_set_new(tr, "images_x_repeats", json_integer((json_int_t)total));
		if (t->x.has_steps)
			json_object_set_new(tr, "steps", json_integer((json_int_t)t->x.steps));
		if (t->x.has_seed)
			json_object_set_new(tr, "seed", json_integer((json_int_t)t->x.seed));
		if (job_id && *job_id)
			json_object_set_new(tr, "job_id", json_string(job_id));
	}
	if (!rec || !tr || json_object_set_new(rec, "training", tr) ||
	    !(text = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS))) {
		if (!rec)
			json_decref(tr);
		rc = kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory registering the LoRA");
		goto out;
	}
	if ((rc = kiln_catalog_registry_add(p->catalog, "models", m.sha256, t->name, "lora", text,
					    &added, e)))
		goto out;
	if ((rc = kiln_catalog_train_run(p->catalog, t->name, t->started, now_unix(), "done",
					 job_id, m.sha256, e)))
		goto out;
	end_bar(t);
	if (t->json) {
		char h12[13];
		snprintf(h12, sizeof h12, "%.12s", m.addnet);
		train_event("done", json_pack("{s:s, s:s, s:s, s:s, s:b}", "name", t->name,
					      "file", file, "sha256", m.sha256, "lora_hash", h12,
					      "registered", added));
	} else if (!t->quiet) {
		printf("trained %s: %s\n  sha256 %s\n  A1111 \"Lora hashes\": %s: %.12s "
		       "(compare with the server's infotext)\n  %s in the model registry as "
		       "lora %s (kiln models ls)\n", t->name, file, m.sha256, t->name, m.addnet,
		       added ? "registered" : "already", t->name);
	}
out:
	json_decref(rec);
	free(recs);
	free(text);
	kiln_model_release(&m);
	return rc;
}

/* --- the local trainer ----------------------------------------------------------------------- */

/* Follow the trainer's log until it ends (0: it exited 0), or the user stops kiln (1). */
static int follow_local(struct train_ctx *t, const struct kiln_train_state *s, int *status,
			struct kiln_error *e)
{
	struct kiln_train_progress pr;
	FILE *f = fopen(t->log_path, "r");
	char buf[65536];
	int alive = 1;
	kiln_train_progress_init(&pr);
	if (!f)
		return kiln_error_set(e, KILN_E_IO, t->log_path, "cannot read the trainer's log: %s",
				      strerror(errno));
	for (;;) {
		size_t n;
		while ((n = fread(buf, 1, sizeof buf, f)) > 0)
			kiln_train_progress_feed(&pr, buf, n);
		clearerr(f);
		train_show(t, &pr);
		if (!alive)
			break;
		if (cli_cancel) {
			fclose(f);
			return 1;
		}
		alive = kiln_train_alive(s->pid, s->pid_start);
		if (alive)
			sleep_ms(100);
	}
	fclose(f);
	snprintf(t->last_line, sizeof t->last_line, "%s", pr.last);
	return kiln_train_exit_status(t->exit_path, status, e);
}

static int run_local(struct train_ctx *t, struct kiln_project *p, struct kiln_train_state *s,
		     int resumed, struct kiln_error *e)
{
	int status = -1, rc;
	if (resumed && !t->json && !t->quiet)
		fprintf(stderr, "kiln: %s: the trainer started %.0f s ago is %s (process %lld)\n",
			t->name, now_unix() - s->started,
			kiln_train_alive(s->pid, s->pid_start) ? "still running: following it"
							      : "finished: collecting",
			(long long)s->pid);
	rc = follow_local(t, s, &status, e);
	if (rc == 1)
		return 1;
	if (rc == KILN_E_NOTFOUND) {
		kiln_error_set(e, KILN_E_FAILED, t->log_path, "the trainer was stopped (killed "
			       "with its supervisor): see the log, then run again");
		status = -1;
	} else if (rc) {
		return rc;
	} else if (status) {
		kiln_error_set(e, KILN_E_FAILED, t->log_path, "the trainer failed (%s %d)%s%s",
			       status > 128 ? "signal" : "exit status",
			       status > 128 ? status - 128 : status, t->last_line[0] ? ": " : "",
			       t->last_line);
	}
	if (status)
		return KILN_E_FAILED;
	{
		char *file = NULL;
		if (asprintf(&file, "%s/%s", p->dir, s->output) < 0)
			return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
		if (access(file, F_OK))
			rc = kiln_error_set(e, KILN_E_FAILED, file, "the trainer ended well but wrote "
					    "no LoRA here (see %s)", t->log_path);
		else
			rc = train_collect(t, p, file, NULL, e);
		free(file);
	}
	return rc;
}

/* --- the command ----------------------------------------------------------------------------- */

static int fail(struct train_ctx *t, const struct kiln_error *e)
{
	end_bar(t);
	if (t->json) {
		cli_error_event("train", e);
		return e->code == KILN_E_USAGE || e->code == KILN_E_SPEC ? 2 : 1;
	}
	return cli_fail(e);
}

static int finish_state(struct train_ctx *t, struct kiln_project *p, const char *state,
			const struct kiln_train_state *s, struct kiln_error *e)
{
	int rc = train_relock(p, e);
	if (rc)
		return rc;
	rc = kiln_catalog_train_run(p->catalog, t->name, s->started, now_unix(), state, s->job_id,
				    NULL, e);
	if (unlink(t->state_path) && errno != ENOENT && !rc)
		rc = kiln_error_set(e, KILN_E_IO, t->state_path, "cannot remove: %s",
				    strerror(errno));
	return rc;
}

/* command.json's argv (the spec's local command, then kiln's kohya flags) as a NULL-ended
 * array of its strings. */
static int build_argv(json_t *args, char ***out)
{
	size_t n = json_array_size(args), i;
	char **v = calloc(n + 1, sizeof *v);
	json_t *x;
	if (!v)
		return -1;
	json_array_foreach(args, i, x)
		v[i] = (char *)json_string_value(x);
	*out = v;
	return 0;
}

int cmd_train_run(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'}, {"quiet", no_argument, NULL, 'q'},
		{"cancel", no_argument, NULL, 'c'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	struct train_ctx t;
	struct kiln_project *p = NULL;
	struct kiln_train_state s;
	struct kiln_error e;
	const struct kiln_training *tr;
	struct kiln_train_manifest *manifest = NULL;
	json_t *cmd = NULL, *args;
	char **tav = NULL;
	int c, rc, cancel = 0, have_state = 0, resumed = 0;
	char pidtxt[32] = "";
	memset(&t, 0, sizeof t);
	memset(&s, 0, sizeof s);
	optind = 1;
	while ((c = getopt_long(argc, argv, "q", opts, NULL)) != -1) {
		switch (c) {
		case 'j': t.json = 1; break;
		case 'q': t.quiet = 1; break;
		case 'c': cancel = 1; break;
		case 'h': help(); return 0;
		default: return cli_usage("train", "unknown option");
		}
	}
	if (optind + 1 != argc)
		return cli_usage("train", "run takes one NAME (a training entry of kiln.yaml)");
	if ((rc = cli_open(cli, &p)))
		return rc;
	kiln_error_clear(&e);
	t.name = argv[optind];
	if (!(tr = kiln_spec_training(p->spec, t.name))) {
		kiln_error_set(&e, KILN_E_USAGE, p->spec_path, "no training entry named '%s'",
			       t.name);
		rc = fail(&t, &e);
		goto out;
	}
	t.where = tr->runpod ? "runpod" : "local";
	cli_progress_init(&t.cp, t.json, t.quiet);
	snprintf(t.dir, sizeof t.dir, "%s/train/%s", p->kiln_dir, t.name);
	snprintf(t.manifest_path, sizeof t.manifest_path, "%s/manifest.json", t.dir);
	snprintf(t.command_path, sizeof t.command_path, "%s/command.json", t.dir);
	snprintf(t.state_path, sizeof t.state_path, "%s/run.json", t.dir);
	snprintf(t.log_path, sizeof t.log_path, "%s/log", t.dir);
	snprintf(t.exit_path, sizeof t.exit_path, "%s/exit", t.dir);
	for (size_t i = 0; i < tr->ndatasets && i < TRAIN_MAX_DIRS; i++)
		t.datasets[t.ndatasets++] = tr->datasets[i].dir ? tr->datasets[i].dir
								: "tokens:approved";
	rc = kiln_train_state_read(t.state_path, &s, &e);
	if (rc && rc != KILN_E_NOTFOUND) {
		rc = fail(&t, &e);
		goto out;
	}
	have_state = !rc;
	kiln_error_clear(&e);
	if (cancel) {
		if (!have_state) {
			kiln_error_set(&e, KILN_E_STATE, t.state_path, "no run of %s to cancel",
				       t.name);
			rc = fail(&t, &e);
			goto out;
		}
		if (!strcmp(s.where, "runpod"))
			rc = train_runpod_cancel(&t, tr, &s, &e);
		else
			kiln_train_stop(s.pid, s.pid_start, 5.0);
		if (rc || (rc = finish_state(&t, p, "cancelled", &s, &e))) {
			rc = fail(&t, &e);
			goto out;
		}
		if (t.json)
			train_event("cancelled", json_pack("{s:s}", "name", t.name));
		else
			fprintf(stderr, "kiln: %s: the trainer was stopped\n", t.name);
		goto out;
	}
	/* prepared? */
	if (access(t.manifest_path, F_OK)) {
		kiln_error_set(&e, KILN_E_STATE, t.manifest_path, "%s is not prepared: run `kiln "
			       "train prepare %s` first", t.name, t.name);
		rc = fail(&t, &e);
		goto out;
	}
	if ((rc = kiln_train_manifest_load(t.manifest_path, &manifest, &e))) {
		rc = fail(&t, &e);
		goto out;
	}
	if (load_json(t.command_path, &cmd)) {
		kiln_error_set(&e, KILN_E_STATE, t.command_path, "missing or damaged: run `kiln "
			       "train prepare %s` again", t.name);
		rc = fail(&t, &e);
		goto out;
	}
	if ((rc = kiln_train_file_sha256(t.manifest_path, t.manifest_sha, &e))) {
		rc = fail(&t, &e);
		goto out;
	}
	{
		/* the manifest prepare recorded last must be this one */
		char want[65];
		uint64_t nimg;
		int found;
		if ((rc = kiln_catalog_train_last(p->catalog, t.name, want, &nimg, &found, &e))) {
			rc = fail(&t, &e);
			goto out;
		}
		if (!found || strcmp(want, t.manifest_sha)) {
			kiln_error_set(&e, KILN_E_STATE, t.manifest_path, "the manifest changed since "
				       "`kiln train prepare` wrote it (sha256 %.12s, prepared %.12s): "
				       "run `kiln train prepare %s` again", t.manifest_sha,
				       found ? want : "none", t.name);
			rc = fail(&t, &e);
			goto out;
		}
	}
	args = json_object_get(cmd, "argv");
	if (!json_is_array(args) || (rc = expectations(&t, manifest, args, &e))) {
		if (!rc)
			kiln_error_set(&e, KILN_E_STATE, t.command_path, "no argv array: run `kiln "
				       "train prepare %s` again", t.name);
		rc = fail(&t, &e);
		goto out;
	}
	cli_catch_signals();
	if (have_state) {
		resumed = 1;
		t.started = s.started;
		if (strcmp(s.manifest_sha256, t.manifest_sha) && !t.quiet)
			fprintf(stderr, "kiln: %s: the run under way was started from an earlier "
				"manifest: collecting it is checked against the current one\n",
				t.name);
	} else {
		const char *od = arg_value(args, "--output_dir"), *on = arg_value(args,
										    "--output_name");
		json_t *v;
		size_t i;
		json_array_foreach(args, i, v)
			if (!json_is_string(v)) {
				kiln_error_set(&e, KILN_E_STATE, t.command_path, "args[%zu] is not a "
					       "string", i);
				rc = fail(&t, &e);
				goto out;
			}
		if (!od) {
			kiln_error_set(&e, KILN_E_STATE, t.command_path, "no --output_dir in the "
				       "trainer's args: run `kiln train prepare %s` again", t.name);
			rc = fail(&t, &e);
			goto out;
		}
		snprintf(s.name, sizeof s.name, "%s", t.name);
		snprintf(s.where, sizeof s.where, "%s", t.where);
		snprintf(s.manifest_sha256, sizeof s.manifest_sha256, "%s", t.manifest_sha);
		/* kohya runs in .kiln/train/NAME: its output_dir is relative to it */
		if (od[0] == '/')
			snprintf(s.output, sizeof s.output, "%s/%s.safetensors", od, on ? on : "last");
		else
			snprintf(s.output, sizeof s.output, "%s/%s/%s/%s.safetensors", KILN_TRAIN_DIR,
				 t.name, od, on ? on : "last");
		s.started = t.started = now_unix();
		if (build_argv(args, &tav) || !(s.argv_json = json_dumps(args, JSON_COMPACT))) {
			kiln_error_set(&e, KILN_E_NOMEM, NULL, "out of memory");
			rc = fail(&t, &e);
			goto out;
		}
		if (tr->runpod) {
			rc = train_runpod_submit(&t, p, tr, &s, args, &e);
		} else {
			FILE *lf = fopen(t.log_path, "w"); /* a new run, a new log */
			if (lf)
				fclose(lf);
			rc = kiln_train_spawn(tav, t.dir, t.log_path, t.exit_path, &s.pid,
					      &s.pid_start, &e);
			if (!rc && (rc = kiln_train_state_write(t.state_path, &s, &e)))
				kiln_train_stop(s.pid, s.pid_start, 2.0);
		}
		if (!rc)
			rc = kiln_catalog_train_run(p->catalog, t.name, s.started, 0, "running",
						    s.job_id, NULL, &e);
		if (rc) {
			rc = fail(&t, &e);
			goto out;
		}
		snprintf(pidtxt, sizeof pidtxt, "%lld", (long long)s.pid);
		if (t.json)
			train_event("start", json_pack("{s:s, s:s, s:I, s:s, s:s}", "name", t.name,
						       "where", t.where, "pid", (json_int_t)s.pid,
						       "job_id", s.job_id, "log", t.log_path));
		else if (!t.quiet)
			fprintf(stderr, "kiln: %s: trainer started (%s %s), log %s\n", t.name,
				tr->runpod ? "RunPod job" : "process", tr->runpod ? s.job_id : pidtxt,
				t.log_path);
	}
	/* followed without the project lock (train_relock takes it back to write) */
	kiln_project_unlock(p->lock_fd);
	p->lock_fd = -1;
	rc = strcmp(s.where, "runpod") ? run_local(&t, p, &s, resumed, &e)
				       : train_runpod_follow(&t, p, tr, &s, resumed, &e);
	if (rc == 1 && cli_cancel) {
		end_bar(&t);
		if (t.json)
			train_event("detached", json_pack("{s:s}", "name", t.name));
		fprintf(stderr, "kiln: %s: kiln stopped; the trainer keeps running. `kiln train "
			"run %s` follows it again and collects, `kiln train run %s --cancel` "
			"stops it\n", t.name, t.name, t.name);
		rc = 130;
		goto out;
	}
	if (rc) {
		struct kiln_error e2;
		kiln_error_clear(&e2);
		/* another kiln holds the project: nothing is decided, the next run collects */
		if (e.hint != KILN_HINT_LOCKED && finish_state(&t, p, "failed", &s, &e2))
			cli_fail(&e2);
		rc = fail(&t, &e);
		goto out;
	}
	if ((rc = unlink(t.state_path) && errno != ENOENT)) {
		kiln_error_set(&e, KILN_E_IO, t.state_path, "cannot remove: %s", strerror(errno));
		rc = fail(&t, &e);
	}
out:
	free(tav);
	kiln_train_manifest_free(manifest);
	json_decref(cmd);
	kiln_train_state_release(&s);
	kiln_project_free(p);
	return rc;
}
