/* kiln train run: what src/cmd_train_run.c and src/train_runpod.c share. */
#ifndef KILN_TRAIN_RUN_H
#define KILN_TRAIN_RUN_H

#include "cli.h"
#include "kiln/spec.h"
#include "kiln/train.h"

#define TRAIN_MAX_DIRS 64

struct train_ctx {
	const char *name;
	const char *where;            /* "local" or "runpod" */
	int json, quiet;
	struct cli_progress cp;
	double started;               /* the run's start (Unix time) */
	uint64_t shown_step;
	unsigned shown_epoch;
	char dir[4096];               /* .kiln/train/NAME */
	char manifest_path[4200], command_path[4200], state_path[4200], log_path[4200],
	     exit_path[4200];
	char manifest_sha[65];
	char last_line[256];          /* the trainer's last words (errors) */
	struct kiln_train_dir dirs[TRAIN_MAX_DIRS];
	size_t ndirs;
	struct kiln_train_expect x;
	const char *script;           /* kohya's script for the base's family (RunPod's input) */
	const char *datasets[TRAIN_MAX_DIRS]; /* the spec's dataset folders (trained_on) */
	size_t ndatasets;
};

/* One --json event line on stdout (o gets "event"; o is consumed; NULL: nothing). */
void train_event(const char *event, json_t *o);
/* Show the progress read so far (bar, or --json step/epoch events). */
void train_show(struct train_ctx *t, const struct kiln_train_progress *pr);
/* Take the project lock again (it is let go while kiln follows a trainer). */
int train_relock(struct kiln_project *p, struct kiln_error *e);
/* Read, check and register the trained file (prints where it is and its hashes). */
int train_collect(struct train_ctx *t, struct kiln_project *p, const char *file,
		  const char *job_id, struct kiln_error *e);

/* RunPod (src/train_runpod.c): send the prepared dataset as a job (s->job_id set and run.json
 * written the moment /run answers), follow it (0 collected, 1 kiln stopped, else e), cancel
 * it. */
int train_runpod_submit(struct train_ctx *t, struct kiln_project *p,
			const struct kiln_training *tr, struct kiln_train_state *s, json_t *args,
			struct kiln_error *e);
int train_runpod_follow(struct train_ctx *t, struct kiln_project *p,
			const struct kiln_training *tr, struct kiln_train_state *s, int resumed,
			struct kiln_error *e);
int train_runpod_cancel(struct train_ctx *t, const struct kiln_training *tr,
			const struct kiln_train_state *s, struct kiln_error *e);

int cmd_train_run(struct cli *cli, int argc, char **argv);

#endif
