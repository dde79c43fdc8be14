/* The kiln command: shared state and helpers of the verbs (src/cmd_*.c). Only the command
 * prints, exits, reads argv and the environment; libkiln does none of these. */
#ifndef KILN_CLI_H
#define KILN_CLI_H

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include "kiln/error.h"
#include "kiln/project.h"
#include "kiln/render.h"
#include "kiln/release.h"
#include "kiln/qa.h"

struct cli {
	const char *dir;      /* -C DIR, default "." */
	const char *argv0;
	const struct cmd *cmd;/* the verb running (its table row) */
};

struct cmd {
	const char *name;
	int (*run)(struct cli *cli, int argc, char **argv);
	int writes;           /* changes the project: takes its lock; else opens it read-only */
	const char *summary;
};

extern const struct cmd kiln_commands[];

/* Print "kiln: where: msg" on stderr; returns the exit status for e->code. */
int cli_fail(const struct kiln_error *e);
/* The command's words for e->hint ("" when it has none): src/hint.c. */
void cli_hint_text(const struct kiln_error *e, char *out, size_t cap);
/* A whole number written in decimal digits only, min <= n <= max: 0, else -1 (src/args.c). */
int cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* --json: the error event of a stage on stdout ({event: error, stage, where, message, code,
 * and hint, hint_text when the error has a hint}). */
void cli_error_event(const char *stage, const struct kiln_error *e);
/* " (token 3)" or " (first: 3, 7, 9, ...)": the first of n ids (v holds KILN_QA_FIRST). */
void cli_first_ids(char *out, size_t cap, const uint64_t *v, uint64_t n);
/* Usage error: "kiln: VERB: what" and a hint line naming `kiln help VERB`; returns 2. The
 * message "unknown option" is replaced by what getopt stopped at (the word, or the option that
 * needs a value): main() sets opterr = 0 so getopt prints nothing of its own. */
void cli_set_args(int argc, char **argv);
/* s cut to at most max characters at a word, with "..." when cut. */
void cli_cut_words(const char *s, size_t max, char *out, size_t cap);
int cli_usage(const char *verb, const char *fmt, ...) KILN_PRINTF(2, 3);
/* Open the project in cli->dir or print the error; returns 0 or an exit status. A verb that
 * writes (its table row) takes the project lock; the others open it read-only. */
int cli_open(struct cli *cli, struct kiln_project **p);

struct option;
/* The registry verbs (src/registry.c): `VERB add ARG [options]` or `VERB ls [--json]`. opts:
 * getopt_long's table, with --json as 'j' and --help as 'h'; every other option goes to
 * option(user, c, optarg), which returns 0 or a usage status; check(user, add), when not NULL,
 * refuses a combination before the project is opened. cli_registry sets add, json and arg
 * (add's one argument), refuses what ls does not take, and opens the project (locked for add):
 * 0, CLI_REG_HELP when it printed the help (exit 0), or an exit status. */
struct cli_reg {
	const char *verb, *what;  /* "models", "FILE" */
	const struct option *opts;
	void (*help)(void);
	int (*option)(void *user, int c, const char *arg);
	int (*check)(void *user, int add);
	void *user;
	int add, json;
	const char *arg;
};
#define CLI_REG_HELP (-1)
int cli_registry(struct cli *cli, int argc, char **argv, struct cli_reg *r,
		 struct kiln_project **p);

/* Progress reporting: a bar on a TTY (stderr), JSON lines on stdout with --json, else quiet. */
struct cli_progress {
	int json;
	int tty;
	int quiet;
	double last_draw;     /* the bar is redrawn at most ten times a second */
	double last_json;     /* --json "progress" events: at most two a second */
	int lines;            /* lines of the block on screen (0: none) */
	double start;         /* when the stage began (for stages that do not time themselves) */
	char label[32];
};
void cli_progress_init(struct cli_progress *cp, int json, int quiet);
void cli_progress_cb(const struct kiln_progress *p, void *user);

/* Ctrl-C: the first sets the flag (stages finish what is under way), the second kills. */
extern volatile sig_atomic_t cli_cancel;
void cli_catch_signals(void);

/* Read the AI endpoints' credential variables into the spec (0, or an exit status). */
int cli_resolve_secrets(struct kiln_project *p);

/* Stages shared by verbs (plan, render, release and build). Print their own summaries. */
int cli_stage_plan(struct kiln_project *p, int force, int fresh, unsigned effort, int json,
		   int quiet, int *did);
/* --effort N: 1..KILN_EFFORT_MAX; 0 ok, else the usage error's exit status */
int cli_parse_effort(const char *verb, const char *arg, unsigned *out);
int cli_stage_render(struct kiln_project *p, unsigned threads, int force, int json, int quiet,
		     int *rendered, int *failed);
int cli_stage_release(struct kiln_project *p, int force, int allow_qa_failures, int json,
		      int quiet, int *did);

/* After a release: print the damaged files it wrote again and the released tokens QA has not
 * judged or fails (stderr); with json, add those counts to the summary object o instead and
 * return it. */
json_t *cli_release_report(struct kiln_project *p, const struct kiln_release_result *r, json_t *o,
			   int json, int quiet);

int cmd_init(struct cli *cli, int argc, char **argv);
int cmd_plan(struct cli *cli, int argc, char **argv);
int cmd_render(struct cli *cli, int argc, char **argv);
int cmd_release(struct cli *cli, int argc, char **argv);
int cmd_qa(struct cli *cli, int argc, char **argv);
int cmd_verify(struct cli *cli, int argc, char **argv);
int cmd_build(struct cli *cli, int argc, char **argv);
int cmd_status(struct cli *cli, int argc, char **argv);
int cmd_ls(struct cli *cli, int argc, char **argv);
int cmd_show(struct cli *cli, int argc, char **argv);
int cmd_review(struct cli *cli, int argc, char **argv);

/* The review in other verbs (src/cmd_review.c). ls --json: an item's "review" object (st NULL:
 * pending, nobody decided). status and show: add "review" (and show: "decisions") to o, or
 * print their lines when o is NULL; 0 or an exit status. */
json_t *cli_review_item_json(const struct kiln_review_state *st);
int cli_review_status(struct kiln_project *p, json_t *o);
int cli_review_show(struct kiln_project *p, uint64_t id, json_t *o);
int cmd_polish(struct cli *cli, int argc, char **argv);
/* The polish stage (kiln polish, kiln build): ids NULL for every token; *did (may be NULL)
 * 1 when a token's chain was made or changed. */
/* 1 when the review app left inpaint requests pending (or the catalog cannot say) */
int cli_inpaint_pending(struct kiln_project *p);
int cli_stage_polish(struct kiln_project *p, unsigned threads, const uint64_t *ids, size_t nids,
		     int json, int quiet, int *did);
int cmd_keys(struct cli *cli, int argc, char **argv);
int cmd_models(struct cli *cli, int argc, char **argv);
int cmd_datasets(struct cli *cli, int argc, char **argv);
int cmd_train(struct cli *cli, int argc, char **argv);

/* The studio's keys folder: $KILN_KEYS_DIR, else ~/.config/kiln/keys (src/cmd_keys.c);
 * caller frees; NULL out of memory. */
char *cli_keys_dir(void);

#endif
