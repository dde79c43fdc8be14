/* Helpers shared by the verbs: error printing, project opening, progress display, signals,
 * and the stages that several verbs run (plan, render, release). */
#include "cli.h"

#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

volatile int cli_cancel;

int cli_fail(const struct kiln_error *e)
{
	if (e->where[0])
		fprintf(stderr, "kiln: %s: %s\n", e->where, e->msg);
	else
		fprintf(stderr, "kiln: %s\n", e->msg);
	return kiln_error_exit_code(e->code ? e->code : KILN_E_FAILED);
}

int cli_usage(const char *verb, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "kiln %s: ", verb);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nsee `kiln %s --help`\n", verb);
	return 2;
}

int cli_open(struct cli *cli, struct kiln_project **p)
{
	struct kiln_error e;
	kiln_error_clear(&e);
	if (kiln_project_open(p, cli->dir, &e))
		return cli_fail(&e);
	return 0;
}

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void cli_progress_init(struct cli_progress *cp, int json, int quiet)
{
	memset(cp, 0, sizeof *cp);
	cp->json = json;
	cp->quiet = quiet;
	cp->tty = !json && !quiet && isatty(2) && getenv("TERM") && strcmp(getenv("TERM"), "dumb");
}

static void fmt_time(char *out, size_t n, double s)
{
	long t = (long)(s + 0.5);
	if (t >= 3600)
		snprintf(out, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
	else
		snprintf(out, n, "%ld:%02ld", t / 60, t % 60);
}

static void draw_bar(const struct kiln_progress *p)
{
	const int width = 28;
	double frac = p->total ? (double)p->done / (double)p->total : 1;
	double rate = p->elapsed > 0 ? (double)p->done / p->elapsed : 0;
	char eta[32] = "-", bar[128];
	int fill = (int)(frac * width), i, n = 0;
	if (rate > 0 && p->total >= p->done)
		fmt_time(eta, sizeof eta, (double)(p->total - p->done) / rate);
	for (i = 0; i < width; i++)
		n += snprintf(bar + n, sizeof bar - (size_t)n, "%s", i < fill ? "#" : ".");
	fprintf(stderr, "\r\033[K%-7s [%s] %llu/%llu %3.0f%% %.1f/s ETA %s", p->stage, bar,
		(unsigned long long)p->done, (unsigned long long)p->total, frac * 100, rate, eta);
	if (p->failed)
		fprintf(stderr, " failed %llu", (unsigned long long)p->failed);
	fflush(stderr);
}

void cli_progress_cb(const struct kiln_progress *p, void *user)
{
	struct cli_progress *cp = user;
	if (cp->json) {
		json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:f}", "event", p->event,
				      "stage", p->stage, "done", (json_int_t)p->done, "total",
				      (json_int_t)p->total, "failed", (json_int_t)p->failed,
				      "elapsed", p->elapsed);
		if (o && !strcmp(p->event, "item")) {
			json_object_set_new(o, "id", json_integer((json_int_t)p->item_id));
			json_object_set_new(o, "ok", json_boolean(p->ok));
			if (p->error)
				json_object_set_new(o, "error", json_string(p->error));
		}
		if (o) {
			json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
			fputc('\n', stdout);
			fflush(stdout);
		}
		json_decref(o);
		return;
	}
	if (!strcmp(p->event, "item") && !p->ok && p->error && !cp->quiet) {
		if (cp->tty)
			fprintf(stderr, "\r\033[K");
		fprintf(stderr, "kiln: item %llu failed: %s\n", (unsigned long long)p->item_id,
			p->error);
	}
	if (!cp->tty)
		return;
	if (!strcmp(p->event, "end")) {
		if (p->total)
			draw_bar(p), fputc('\n', stderr);
		return;
	}
	if (mono() - cp->last_draw >= 0.1 || p->done == p->total) {
		cp->last_draw = mono();
		draw_bar(p);
	}
}

static void on_signal(int sig)
{
	if (cli_cancel) {
		signal(sig, SIG_DFL);
		raise(sig);
	}
	cli_cancel = 1;
}

void cli_catch_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

static void print_json(json_t *o)
{
	if (!o)
		return;
	json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	json_decref(o);
}

int cli_stage_plan(struct kiln_project *p, int force, int fresh, int json, int quiet, int *did)
{
	struct kiln_plan_opts o = {force, fresh};
	struct kiln_plan_result r;
	struct kiln_error e;
	kiln_error_clear(&e);
	if (kiln_project_plan(p, &o, &r, &e)) {
		if (json)
			print_json(json_pack("{s:s, s:s, s:s, s:s}", "event", "error", "stage", "plan",
					     "where", e.where, "message", e.msg));
		return cli_fail(&e);
	}
	if (did)
		*did = r.planned;
	if (json)
		print_json(json_pack("{s:s, s:s, s:b, s:I, s:I}", "event", "summary", "stage",
				     "plan", "planned", r.planned, "items", (json_int_t)r.items,
				     "changed", (json_int_t)r.changed));
	else if (!quiet && r.planned)
		printf("plan: %llu items planned, %llu new or changed\n",
		       (unsigned long long)r.items, (unsigned long long)r.changed);
	else if (!quiet)
		printf("plan: up to date (%llu items)\n", (unsigned long long)r.items);
	kiln_plan_result_release(&r);
	return 0;
}

/* AI endpoints name environment variables for their credentials: the command reads them
 * (the library never reads the environment) and hands the values to the spec's endpoints. */
int cli_resolve_secrets(struct kiln_project *p)
{
	struct kiln_generate *g = p->spec->generate;
	for (size_t k = 0; g && k < g->nendpoints; k++) {
		struct kiln_endpoint *ep = &g->endpoints[k];
		const char *var = ep->auth_env ? ep->auth_env : ep->token_env;
		const char *v = var ? getenv(var) : NULL;
		if (!var || ep->secret)
			continue;
		if (!v || !*v)
			continue; /* the render stage says which variable is missing */
		if (ep->auth_env && !strchr(v, ':')) {
			fprintf(stderr, "kiln: %s: $%s must hold user:pass (HTTP basic auth)\n",
				ep->url, var);
			return 2;
		}
		if (!(ep->secret = strdup(v))) {
			fprintf(stderr, "kiln: out of memory\n");
			return 1;
		}
	}
	return 0;
}

int cli_stage_render(struct kiln_project *p, unsigned threads, int force, int json, int quiet,
		     int *rendered, int *failed)
{
	struct cli_progress cp;
	struct kiln_render_opts o;
	struct kiln_render_result r;
	struct kiln_error e;
	int rc;
	kiln_error_clear(&e);
	if ((rc = cli_resolve_secrets(p)))
		return rc;
	cli_progress_init(&cp, json, quiet);
	memset(&o, 0, sizeof o);
	o.threads = threads;
	o.force = force;
	o.progress = cli_progress_cb;
	o.user = &cp;
	o.cancel = &cli_cancel;
	rc = kiln_project_render(p, &o, &r, &e);
	if (rendered)
		*rendered = (int)r.rendered;
	if (failed)
		*failed = (int)r.failed;
	if (json)
		print_json(json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:f}", "event", "summary",
				     "stage", "render", "items", (json_int_t)r.items, "todo",
				     (json_int_t)r.todo, "rendered", (json_int_t)r.rendered,
				     "failed", (json_int_t)r.failed, "skipped",
				     (json_int_t)r.skipped, "seconds", r.seconds));
	if (rc)
		return cli_fail(&e);
	if (!json && !quiet) {
		if (!r.todo)
			printf("render: nothing to do, all %llu items up to date\n",
			       (unsigned long long)r.items);
		else
			printf("render: %llu rendered, %llu failed, %llu up to date in %.2f s "
			       "(%.1f items/s)\n", (unsigned long long)r.rendered,
			       (unsigned long long)r.failed, (unsigned long long)r.skipped,
			       r.seconds, r.seconds > 0 ? (double)r.todo / r.seconds : 0.0);
	}
	if (r.failed) {
		fprintf(stderr, "kiln: %llu items failed to render: `kiln ls --status failed` lists "
			"them, `kiln show ID` says why\n", (unsigned long long)r.failed);
		return 1;
	}
	return 0;
}

int cli_stage_release(struct kiln_project *p, int force, int json, int quiet, int *did)
{
	struct cli_progress cp;
	struct kiln_release_opts o;
	struct kiln_release_result r;
	struct kiln_error e;
	kiln_error_clear(&e);
	cli_progress_init(&cp, json, quiet);
	memset(&o, 0, sizeof o);
	o.force = force;
	o.progress = json ? NULL : cli_progress_cb;
	o.user = &cp;
	if (kiln_project_release(p, &o, &r, &e)) {
		if (json)
			print_json(json_pack("{s:s, s:s, s:s, s:s}", "event", "error", "stage",
					     "release", "where", e.where, "message", e.msg));
		return cli_fail(&e);
	}
	if (did)
		*did = r.written;
	if (json)
		print_json(json_pack("{s:s, s:s, s:b, s:I, s:I, s:s, s:s, s:s, s:s, s:b}", "event",
				     "summary", "stage", "release", "written", r.written, "items",
				     (json_int_t)r.items, "bytes", (json_int_t)r.bytes, "dist", r.dist,
				     "images_cid", r.images_cid, "metadata_cid", r.metadata_cid,
				     "provenance_hash", r.provenance, "reveal_pending",
				     r.reveal_pending));
	else if (!quiet && r.written) {
		printf("release: %llu tokens written to %s (%.1f MiB of images)\n"
		       "  images ipfs://%s, provenance %s\n", (unsigned long long)r.items, r.dist,
		       (double)r.bytes / 1048576.0, r.images_cid, r.provenance);
		if (r.metadata_cid[0])
			printf("  metadata ipfs://%s/\n", r.metadata_cid);
		if (r.reveal_pending)
			printf("  reveal pending: `kiln release --starting-index N` writes the "
			       "token metadata\n");
	} else if (!quiet)
		printf("release: %s is up to date\n", r.dist);
	return 0;
}
