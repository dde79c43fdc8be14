/* kiln train run on RunPod: the prepared folder sent as a serverless job, followed by polling
 * /status, the LoRA brought back. The job's input and output are kiln's own contract (there
 * is no official RunPod kohya worker), documented in docs/training.md "Running":
 *
 *   input  {kiln: "train", name, workdir: NAME, script: "sdxl_train_network.py" (the base's
 *          family), args: [kohya's flags from command.json, paths relative to workdir],
 *          output: the .safetensors relative to workdir, dataset_tar: base64 of a ustar
 *          archive of .kiln/train/NAME/ as NAME/ (kiln_train_pack)}; the worker unpacks it
 *          and runs kohya's script with args in workdir
 *   while IN_PROGRESS, /status may carry output {progress: "<kohya's last progress line>"}
 *   output {lora: base64 of the .safetensors | lora_url: an http(s) URL, log: the trainer's
 *          output (kept in .kiln/train/NAME/log)}
 *
 * The job id is written to run.json the moment /run answers, so a kiln killed while it polls
 * never sends the job again: the next run polls the same id. */
#include "train_run.h"
#include "kiln/render.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define EXEC_MS 86400000 /* a day of GPU at most */

static const char *token_of(const struct kiln_endpoint *ep)
{
	if (ep->secret)
		return ep->secret;
	if (ep->auth_env && getenv(ep->auth_env))
		return getenv(ep->auth_env);
	return ep->token_env ? getenv(ep->token_env) : NULL;
}

int train_runpod_submit(struct train_ctx *t, struct kiln_project *p,
			const struct kiln_training *tr, struct kiln_train_state *s, json_t *args,
			struct kiln_error *e)
{
	(void)p;
	struct kiln_buf tar = KILN_BUF_INIT;
	char *data = NULL, *body = NULL;
	const char *out = s->output;
	size_t k = strlen(KILN_TRAIN_DIR);
	json_t *o;
	int rc;
	/* the worker runs in the archive's NAME/ folder, as kohya runs in .kiln/train/NAME */
	if (!strncmp(out, KILN_TRAIN_DIR, k) && out[k] == '/' &&
	    !strncmp(out + k + 1, t->name, strlen(t->name)) && out[k + 1 + strlen(t->name)] == '/')
		out += k + 2 + strlen(t->name);
	else
		return kiln_error_set(e, KILN_E_STATE, t->command_path, "the output_dir leaves "
				      ".kiln/train/%s: a RunPod job cannot bring it back there",
				      t->name);
	if ((rc = kiln_train_pack(t->dir, t->name, &tar, e)))
		return rc;
	if (tar.len > (size_t)7400000) {
		rc = kiln_error_set(e, KILN_E_SPEC, t->dir, "the prepared dataset is %zu bytes, "
				    "over what a 10 MB RunPod /run body carries as base64: train on "
				    "fewer or smaller images", tar.len);
		kiln_buf_release(&tar);
		return rc;
	}
	{
		struct kiln_buf enc = KILN_BUF_INIT;
		rc = kiln_runpod_b64_encode(tar.data, tar.len, &enc);
		kiln_buf_release(&tar);
		if (rc) {
			kiln_buf_release(&enc);
			return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
		}
		data = kiln_buf_detach(&enc, NULL);
	}
	{
		/* the endpoint's execution_timeout and ttl (seconds), else a day and an hour more */
		json_int_t ex = tr->runpod->execution_timeout ?
			(json_int_t)tr->runpod->execution_timeout * 1000 : EXEC_MS;
		json_int_t ttl = tr->runpod->ttl ? (json_int_t)tr->runpod->ttl * 1000
						 : ex + 3600000;
		o = json_pack("{s:{s:s, s:s, s:s, s:s, s:O, s:s, s:s}, s:{s:I, s:I}}", "input",
			      "kiln", "train", "name", t->name, "workdir", t->name, "script",
			      t->script, "args", args, "output", out, "dataset_tar", data, "policy",
			      "executionTimeout", ex, "ttl", ttl);
	}
	free(data);
	body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!body)
		return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
	snprintf(s->endpoint, sizeof s->endpoint, "%s", tr->runpod->url);
	rc = kiln_runpod_job_submit(tr->runpod, token_of(tr->runpod), body, strlen(body),
				    s->job_id, sizeof s->job_id, e);
	free(body);
	if (!rc)
		rc = kiln_train_state_write(t->state_path, s, e); /* before anything else */
	return rc;
}

static int write_file(const char *path, const void *p, size_t n, struct kiln_error *e)
{
	char tmp[4300];
	FILE *f;
	snprintf(tmp, sizeof tmp, "%s.tmp-%d", path, (int)getpid());
	if (!(f = fopen(tmp, "wb")) || fwrite(p, 1, n, f) != n || fflush(f) || fsync(fileno(f))) {
		if (f)
			fclose(f);
		unlink(tmp);
		return kiln_error_set(e, KILN_E_IO, path, "cannot write: %s", strerror(errno));
	}
	if (fclose(f) || rename(tmp, path)) {
		unlink(tmp);
		return kiln_error_set(e, KILN_E_IO, path, "cannot write: %s", strerror(errno));
	}
	return 0;
}

static int mkdirs_for(const char *file)
{
	char d[4200];
	snprintf(d, sizeof d, "%s", file);
	for (char *q = d + 1; *q; q++)
		if (*q == '/') {
			*q = 0;
			if (mkdir(d, 0755) && errno != EEXIST)
				return -1;
			*q = '/';
		}
	return 0;
}

static int completed(struct train_ctx *t, struct kiln_project *p, struct kiln_train_state *s,
		     json_t *out, struct kiln_error *e)
{
	const char *lora = json_string_value(json_object_get(out, "lora"));
	const char *log = json_string_value(json_object_get(out, "log"));
	struct kiln_buf bytes = KILN_BUF_INIT;
	char file[4200];
	int rc;
	if (log && (rc = write_file(t->log_path, log, strlen(log), e)))
		return rc;
	if (!lora)
		return kiln_error_set(e, KILN_E_FAILED, s->endpoint, "job %s completed without a "
				      "LoRA in its output (%s)", s->job_id,
				      json_object_get(out, "lora_url") ? "lora_url is not fetched "
									 "by this kiln"
								       : "no lora");
	if (kiln_runpod_b64_decode(lora, strlen(lora), &bytes)) {
		kiln_buf_release(&bytes);
		return kiln_error_set(e, KILN_E_FAILED, s->endpoint, "job %s: the LoRA is not "
				      "base64", s->job_id);
	}
	snprintf(file, sizeof file, "%s/%s", p->dir, s->output);
	rc = mkdirs_for(file) ? kiln_error_set(e, KILN_E_IO, file, "cannot make its folder")
			      : write_file(file, bytes.data ? bytes.data : "", bytes.len, e);
	kiln_buf_release(&bytes);
	return rc ? rc : train_collect(t, p, file, s->job_id, e);
}

int train_runpod_follow(struct train_ctx *t, struct kiln_project *p,
			const struct kiln_training *tr, struct kiln_train_state *s, int resumed,
			struct kiln_error *e)
{
	struct kiln_train_progress pr;
	const struct kiln_endpoint *ep = tr->runpod;
	unsigned errors = 0;
	kiln_train_progress_init(&pr);
	if (resumed && !t->json && !t->quiet)
		fprintf(stderr, "kiln: %s: following RunPod job %s (sent %.0f s ago)\n", t->name,
			s->job_id, (double)time(NULL) - s->started);
	for (;;) {
		char *answer = NULL;
		long status = 0;
		json_t *o, *out;
		const char *st;
		int rc;
		if (cli_cancel)
			return 1;
		rc = kiln_runpod_job_status(ep, token_of(ep), s->job_id, (size_t)1 << 30, &status,
					    &answer, e);
		if (rc || status == 429 || status >= 500) {
			free(answer);
			if (++errors >= 8)
				return rc ? rc : kiln_error_set(e, KILN_E_NET, ep->url, "/status/%s "
								"answered HTTP %ld eight times",
								s->job_id, status);
			goto wait;
		}
		errors = 0;
		if (status == 404) {
			free(answer);
			return kiln_error_set(e, KILN_E_FAILED, ep->url, "job %s is not known to RunPod "
					      "(HTTP 404): its result expired (RunPod keeps one 30 "
					      "minutes after the job ends) or the job was lost",
					      s->job_id);
		}
		o = json_loads(answer ? answer : "", 0, NULL);
		free(answer);
		st = json_string_value(json_object_get(o, "status"));
		out = json_object_get(o, "output");
		if (status != 200 || !st) {
			json_decref(o);
			return kiln_error_set(e, KILN_E_NET, ep->url, "/status/%s answered HTTP %ld "
					      "without a status", s->job_id, status);
		}
		if (!strcmp(st, "IN_QUEUE") || !strcmp(st, "IN_PROGRESS")) {
			const char *line = json_string_value(json_object_get(out, "progress"));
			if (line) {
				kiln_train_progress_feed(&pr, line, strlen(line));
				kiln_train_progress_feed(&pr, "\n", 1);
			}
			json_decref(o);
			train_show(t, &pr);
			goto wait;
		}
		if (!strcmp(st, "COMPLETED")) {
			rc = completed(t, p, s, out, e);
			json_decref(o);
			return rc;
		}
		{
			json_t *err = json_object_get(o, "error");
			kiln_error_set(e, KILN_E_FAILED, ep->url, "job %s %s%s%.400s", s->job_id, st,
				       json_is_string(err) ? ": " : "",
				       json_is_string(err) ? json_string_value(err) : "");
			json_decref(o);
			return KILN_E_FAILED;
		}
wait:
		for (int i = 0; i < 5 && !cli_cancel; i++) {
			struct timespec ts = {0, 100 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
	}
}

int train_runpod_cancel(struct train_ctx *t, const struct kiln_training *tr,
			const struct kiln_train_state *s, struct kiln_error *e)
{
	(void)t;
	if (!s->job_id[0])
		return 0;
	return kiln_runpod_job_cancel(tr->runpod, token_of(tr->runpod), s->job_id, e);
}
