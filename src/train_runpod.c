/* kiln train run on RunPod: the prepared folder sent as a serverless job, followed by polling
 * /status, the LoRA brought back. The job's body, the dataset's upload (inline, or S3), the
 * requests and the LoRA's download are the library's (lib/render/runpod_train.c, its
 * contract in docs/training.md "Running"); this file reads the credentials from the
 * environment, keeps run.json, shows the progress and registers the LoRA.
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

#define LORA_MAX ((uint64_t)8 << 30) /* the largest LoRA kiln takes back (8 GiB) */

/* The endpoint's secrets, from the variables kiln.yaml names (the library reads no
 * environment): the API key, and the AWS keys of an S3 upload. */
static int resolve(struct kiln_endpoint *ep, struct kiln_error *e)
{
	const char *names[] = {ep->token_env, ep->access_key_env, ep->secret_key_env,
			       ep->session_token_env};
	char **to[] = {&ep->secret, &ep->access_key, &ep->secret_key, &ep->session_token};
	for (size_t i = 0; i < 4; i++) {
		const char *v = names[i] ? getenv(names[i]) : NULL;
		if (!v || !*v || *to[i])
			continue;
		if (!(*to[i] = strdup(v)))
			return kiln_error_set(e, KILN_E_NOMEM, NULL, "out of memory");
	}
	return 0;
}

static int prepare(const struct kiln_training *tr, struct kiln_runpod_train *rt,
		   struct kiln_error *e)
{
	memset(rt, 0, sizeof *rt);
	rt->ep = tr->runpod;
	rt->cancel = &cli_cancel;
	return resolve(tr->runpod, e);
}

int train_runpod_submit(struct train_ctx *t, struct kiln_project *p,
			const struct kiln_training *tr, struct kiln_train_state *s, json_t *args,
			struct kiln_error *e)
{
	(void)p;
	struct kiln_runpod_train rt;
	struct kiln_runpod_train_job j;
	const char *out = s->output;
	size_t k = strlen(KILN_TRAIN_DIR);
	int rc;
	/* the worker runs in the archive's NAME/ folder, as kohya runs in .kiln/train/NAME */
	if (!strncmp(out, KILN_TRAIN_DIR, k) && out[k] == '/' &&
	    !strncmp(out + k + 1, t->name, strlen(t->name)) && out[k + 1 + strlen(t->name)] == '/')
		out += k + 2 + strlen(t->name);
	else
		return kiln_error_set(e, KILN_E_STATE, t->command_path, "the output_dir leaves "
				      ".kiln/train/%s: a RunPod job cannot bring it back there",
				      t->name);
	if ((rc = prepare(tr, &rt, e)))
		return rc;
	memset(&j, 0, sizeof j);
	j.dir = t->dir;
	j.name = t->name;
	j.script = t->script;
	j.args_json = s->argv_json;
	j.output = out;
	(void)args;
	snprintf(s->endpoint, sizeof s->endpoint, "%s", tr->runpod->url);
	if ((rc = kiln_runpod_train_submit(&rt, &j, s->job_id, sizeof s->job_id, e)))
		return rc;
	rc = kiln_train_state_write(t->state_path, s, e); /* before anything else */
	if (!rc && !t->json && !t->quiet && strcmp(j.dataset, "inline"))
		fprintf(stderr, "kiln: %s: dataset %s (%llu bytes, %s)\n", t->name, j.dataset,
			(unsigned long long)j.dataset_bytes,
			j.uploaded ? "uploaded" : "already in S3");
	if (!rc && t->json)
		train_event("dataset", json_pack("{s:s, s:s, s:s, s:I, s:b}", "name", t->name,
						 "dataset", j.dataset, "sha256", j.dataset_sha256,
						 "bytes", (json_int_t)j.dataset_bytes, "uploaded",
						 j.uploaded));
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

static int completed(struct train_ctx *t, struct kiln_project *p,
		     const struct kiln_runpod_train *rt, struct kiln_train_state *s, json_t *out,
		     struct kiln_error *e)
{
	const char *log = json_string_value(json_object_get(out, "log"));
	char file[4200];
	int rc;
	if (log && (rc = write_file(t->log_path, log, strlen(log), e)))
		return rc;
	snprintf(file, sizeof file, "%s/%s", p->dir, s->output);
	if (mkdirs_for(file))
		return kiln_error_set(e, KILN_E_IO, file, "cannot make its folder");
	rc = kiln_runpod_train_lora(rt, json_string_value(json_object_get(out, "lora")),
				    json_string_value(json_object_get(out, "lora_url")),
				    json_string_value(json_object_get(out, "lora_sha256")),
				    LORA_MAX, file, e);
	if (rc) {
		kiln_error_prefix(e, "job %s: ", s->job_id);
		return rc;
	}
	return train_collect(t, p, file, s->job_id, e);
}

int train_runpod_follow(struct train_ctx *t, struct kiln_project *p,
			const struct kiln_training *tr, struct kiln_train_state *s, int resumed,
			struct kiln_error *e)
{
	struct kiln_train_progress pr;
	struct kiln_runpod_train rt;
	const struct kiln_endpoint *ep = tr->runpod;
	int rc;
	kiln_train_progress_init(&pr);
	if ((rc = prepare(tr, &rt, e)))
		return rc;
	if (resumed && !t->json && !t->quiet)
		fprintf(stderr, "kiln: %s: following RunPod job %s (sent %.0f s ago)\n", t->name,
			s->job_id, (double)time(NULL) - s->started);
	for (;;) {
		char *answer = NULL;
		long status = 0;
		json_t *o, *out;
		const char *st;
		if (cli_cancel)
			return 1;
		/* retried inside (transport errors, 429, 5xx) by the dispatcher's rule */
		rc = kiln_runpod_train_status(&rt, s->job_id, (size_t)1 << 30, &status, &answer, e);
		if (cli_cancel) {
			free(answer);
			return 1;
		}
		if (rc || status == 429 || status >= 500) {
			free(answer);
			return rc ? rc : kiln_error_set(e, KILN_E_NET, ep->url, "/status/%s answered "
							"HTTP %ld, retries and all", s->job_id,
							status);
		}
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
			rc = completed(t, p, &rt, s, out, e);
			json_decref(o);
			return rc == KILN_E_NET && cli_cancel ? 1 : rc;
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
		for (int i = 0; i < 10 && !cli_cancel; i++) {
			struct timespec ts = {0, 50 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
	}
}

int train_runpod_cancel(struct train_ctx *t, const struct kiln_training *tr,
			const struct kiln_train_state *s, struct kiln_error *e)
{
	struct kiln_runpod_train rt;
	int rc;
	(void)t;
	if (!s->job_id[0])
		return 0;
	if ((rc = prepare(tr, &rt, e)))
		return rc;
	rt.cancel = NULL; /* --cancel is not itself stopped by a Ctrl-C flag */
	return kiln_runpod_train_cancel(&rt, s->job_id, e);
}
