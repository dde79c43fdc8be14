/* Helpers shared by the verbs: error printing, project opening, progress display, signals,
 * and the stages that several verbs run (plan, render, release). */
#include "cli.h"

#include "kiln/render.h"

#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

/* sig_atomic_t: the one type a signal handler may write; it is int here (glibc), so &cli_cancel
 * is the `const volatile int *` that kiln_render_opts.cancel takes */
volatile sig_atomic_t cli_cancel;

int cli_fail(const struct kiln_error *e)
{
	if (e->where[0])
		fprintf(stderr, "kiln: %s: %s\n", e->where, e->msg);
	else
		fprintf(stderr, "kiln: %s\n", e->msg);
	char hint[512];
	cli_hint_text(e, hint, sizeof hint);
	if (hint[0])
		fprintf(stderr, "hint: %s\n", hint);
	/* a stage run before the plan it needs is a usage error (2), not failed items (1) */
	if (e->code == KILN_E_STATE && e->hint == KILN_HINT_PLAN)
		return 2;
	return kiln_error_exit_code(e->code ? e->code : KILN_E_FAILED);
}

static int cli_argc;
static char **cli_argv;

void cli_set_args(int argc, char **argv)
{
	cli_argc = argc;
	cli_argv = argv;
}

/* What getopt stopped at (opterr is 0: kiln says it once, in its own words): the word it
 * could not take, as "unknown option '--jsn'" or "option '--threads' needs a value". */
static void bad_option(char *out, size_t cap)
{
	const char *word = optind > 0 && optind - 1 < cli_argc && cli_argv ? cli_argv[optind - 1]
									   : NULL;
	if (word && !strncmp(word, "--", 2)) {
		const char *eq = strchr(word, '=');
		int len = eq ? (int)(eq - word) : (int)strlen(word);
		if (optopt && eq)
			snprintf(out, cap, "option '%.*s' takes no value", len, word);
		else if (optopt)
			snprintf(out, cap, "option '%.*s' needs a value", len, word);
		else
			snprintf(out, cap, "unknown option '%.*s'", len, word);
	} else if (optopt && optopt != '?') {
		snprintf(out, cap, "unknown option '-%c', or it needs a value", optopt);
	} else {
		snprintf(out, cap, "unknown option%s%s%s", word ? " '" : "", word ? word : "",
			 word ? "'" : "");
	}
}

int cli_usage(const char *verb, const char *fmt, ...)
{
	va_list ap;
	char msg[512];
	if (!strcmp(fmt, "unknown option")) {
		bad_option(msg, sizeof msg);
	} else {
		va_start(ap, fmt);
		vsnprintf(msg, sizeof msg, fmt, ap);
		va_end(ap);
	}
	fprintf(stderr, "kiln: %s: %s\nhint: `kiln help %s` lists its options\n", verb, msg,
		verb);
	return 2;
}

void cli_cut_words(const char *s, size_t max, char *out, size_t cap)
{
	size_t n = strlen(s), cut;
	if (max + 1 > cap)
		max = cap - 1;
	if (n <= max) {
		snprintf(out, cap, "%s", s);
		return;
	}
	cut = max > 3 ? max - 3 : 0;
	while (cut > 0 && s[cut] != ' ')
		cut--;
	while (cut > 0 && (s[cut - 1] == ' ' || s[cut - 1] == ',' || s[cut - 1] == ':' ||
			   s[cut - 1] == ';'))
		cut--;
	if (cut == 0)
		cut = max > 3 ? max - 3 : 0; /* one long word: cut it */
	snprintf(out, cap, "%.*s...", (int)cut, s);
}

void cli_first_ids(char *out, size_t cap, const uint64_t *v, uint64_t n)
{
	size_t len = (size_t)snprintf(out, cap, " (%s", n > 1 ? "first: " : "token ");
	for (uint64_t k = 0; k < n && k < KILN_QA_FIRST && len < cap; k++)
		len += (size_t)snprintf(out + len, cap - len, "%s%llu", k ? ", " : "",
					(unsigned long long)v[k]);
	if (len < cap)
		snprintf(out + len, cap - len, "%s)", n > KILN_QA_FIRST ? ", ..." : "");
}

int cli_open(struct cli *cli, struct kiln_project **p)
{
	struct kiln_error e;
	int writes = !cli->cmd || cli->cmd->writes;
	kiln_error_clear(&e);
	if (kiln_project_open(p, cli->dir, writes ? KILN_OPEN_WRITE : KILN_OPEN_READ,
			      cli->cmd ? cli->cmd->name : NULL, &e))
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
	cp->start = mono();
}

static void fmt_time(char *out, size_t n, double s)
{
	long t = (long)(s + 0.5);
	if (t >= 3600)
		snprintf(out, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
	else
		snprintf(out, n, "%ld:%02ld", t / 60, t % 60);
}

/* What an endpoint is doing, in words (and, for --json, as a word without spaces). */
static const char *ep_state(const struct kiln_dispatch_stats *st, int json)
{
	switch (st->state) {
	case KILN_ENDPOINT_PARKED: return "parked";
	case KILN_ENDPOINT_GIVEN_UP: return json ? "given_up" : "gave up";
	case KILN_ENDPOINT_CHECKING: return "checking";
	}
	if (st->failing)
		return json ? "backing_off" : "backing off";
	return "ok";
}

static double per_minute(uint64_t n, double seconds)
{
	return seconds > 0 ? (double)n * 60.0 / seconds : 0.0;
}

/* One line of the block, cut to the terminal's width (a wrapped line would break the
 * cursor-up redraw). */
static void put_line(const char *text, int cols, int last)
{
	fprintf(stderr, "\033[K%.*s%s", cols - 1, text, last ? "" : "\n");
}

static void draw_overall(char *out, size_t cap, const struct kiln_progress *p)
{
	const int width = 28;
	double frac = p->total ? (double)p->done / (double)p->total : 1;
	double rate = p->elapsed > 0 ? (double)p->done / p->elapsed : 0;
	char eta[32] = "-", bar[64];
	int fill = (int)(frac * width), n;
	if (rate > 0 && p->total >= p->done)
		fmt_time(eta, sizeof eta, (double)(p->total - p->done) / rate);
	for (int i = 0; i < width; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[width] = 0;
	n = snprintf(out, cap, "%-7s [%s] %llu/%llu %3.0f%% ", p->stage, bar,
		     (unsigned long long)p->done, (unsigned long long)p->total, frac * 100);
	/* AI jobs take seconds: a rate per minute reads better there */
	if (p->nendpoints)
		n += snprintf(out + n, cap - (size_t)n, "%.1f/min", rate * 60);
	else
		n += snprintf(out + n, cap - (size_t)n, "%.1f/s", rate);
	n += snprintf(out + n, cap - (size_t)n, " ETA %s", eta);
	if (p->failed)
		snprintf(out + n, cap - (size_t)n, " failed %llu", (unsigned long long)p->failed);
}

#define SHOW_ENDPOINTS 8

/* The block: a line per endpoint (the first SHOW_ENDPOINTS, then one line for the rest) and
 * the overall bar, redrawn in place: back up to the block's first line, rewrite each. */
static void draw_bar(struct cli_progress *cp, const struct kiln_progress *p)
{
	struct winsize ws;
	int cols = 120, urlw = 12, lines = 0;
	size_t shown = p->nendpoints < SHOW_ENDPOINTS ? p->nendpoints : SHOW_ENDPOINTS;
	char line[640];
	if (!ioctl(2, TIOCGWINSZ, &ws) && ws.ws_col >= 20)
		cols = ws.ws_col;
	if (cp->lines > 1)
		fprintf(stderr, "\033[%dA", cp->lines - 1);
	fputc('\r', stderr);
	for (size_t k = 0; k < shown; k++) {
		int w = (int)strlen(p->endpoints[k].url);
		urlw = w > urlw ? (w > 40 ? 40 : w) : urlw;
	}
	for (size_t k = 0; k < shown; k++) {
		const struct kiln_dispatch_stats *st = &p->endpoint_stats[k];
		snprintf(line, sizeof line, "  %-*.*s %-7s %-11s done %-5llu failed %-4llu "
			 "running %u/%u  %.1f/min", urlw, urlw, p->endpoints[k].url,
			 p->endpoints[k].engine, ep_state(st, 0), (unsigned long long)st->ok,
			 (unsigned long long)st->failed, st->in_flight,
			 p->endpoints[k].concurrency, per_minute(st->ok, p->elapsed));
		if (p->endpoints[k].cost_per_hour > 0)
			snprintf(line + strlen(line), sizeof line - strlen(line), "  $%.2f spent, "
				 "~$%.2f projected", st->spent_usd, st->projected_usd);
		put_line(line, cols, 0);
		lines++;
	}
	if (p->nendpoints > shown) {
		uint64_t done = 0, failed = 0, up = 0;
		for (size_t k = shown; k < p->nendpoints; k++) {
			done += p->endpoint_stats[k].ok;
			failed += p->endpoint_stats[k].failed;
			up += p->endpoint_stats[k].state == KILN_ENDPOINT_UP;
		}
		snprintf(line, sizeof line, "  ... %zu more endpoints (%llu taking jobs): done %llu "
			 "failed %llu", p->nendpoints - shown, (unsigned long long)up,
			 (unsigned long long)done, (unsigned long long)failed);
		put_line(line, cols, 0);
		lines++;
	}
	draw_overall(line, sizeof line, p);
	put_line(line, cols, 1);
	fprintf(stderr, "\033[J");
	fflush(stderr);
	cp->lines = lines + 1;
}

/* Take the block off the screen (before a message, or when the stage ends with nothing). */
static void erase_bar(struct cli_progress *cp)
{
	if (!cp->lines)
		return;
	if (cp->lines > 1)
		fprintf(stderr, "\033[%dA", cp->lines - 1);
	fprintf(stderr, "\r\033[J");
	cp->lines = 0;
}

static json_t *endpoints_json(const struct kiln_progress *p)
{
	json_t *arr = json_array();
	for (size_t k = 0; arr && k < p->nendpoints; k++) {
		const struct kiln_dispatch_stats *st = &p->endpoint_stats[k];
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:i, s:i, "
			"s:i, s:I, s:f, s:f}", "url", p->endpoints[k].url, "engine",
			p->endpoints[k].engine, "state", ep_state(st, 1), "done", (json_int_t)st->ok,
			"failed", (json_int_t)st->failed, "sent", (json_int_t)st->sent,
			"in_flight", (int)st->in_flight, "concurrency",
			(int)p->endpoints[k].concurrency, "failing", (int)st->failing,
			"parked", (json_int_t)st->parked, "busy_seconds", st->busy_seconds,
			"images_per_minute", per_minute(st->ok, p->elapsed)));
		if (json_array_size(arr) && p->endpoints[k].cost_per_hour > 0)
			json_object_update_new(json_array_get(arr, json_array_size(arr) - 1),
					       json_pack("{s:f, s:f, s:f}", "gpu_seconds",
							 st->gpu_seconds, "spent_usd", st->spent_usd,
							 "projected_usd", st->projected_usd));
		if (st->why[0] && json_array_size(arr))
			json_object_set_new(json_array_get(arr, json_array_size(arr) - 1), "why",
					    json_string(st->why));
	}
	return arr;
}

/* --json: every event but "tick" as it comes; ticks become "progress" events, at most two a
 * second, so the output stays small however many jobs run. The compose engine sends no ticks
 * (items finish every few milliseconds): there its item events bring the "progress" events
 * about, at the same pace. A "progress" event carries the rate and the ETA. */
static void progress_json(struct cli_progress *cp, const struct kiln_progress *p)
{
	int tick = !strcmp(p->event, "tick");
	int item = !strcmp(p->event, "item");
	json_t *o;
	if (tick) {
		if (mono() - cp->last_json < 0.5)
			return;
		cp->last_json = mono();
	}
	if (item && !p->nendpoints && mono() - cp->last_json >= 0.5) {
		struct kiln_progress q = *p;
		q.event = "tick";
		progress_json(cp, &q);
	}
	o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:f}", "event", tick ? "progress" : p->event,
		      "stage", p->stage, "done", (json_int_t)p->done, "total",
		      (json_int_t)p->total, "failed", (json_int_t)p->failed,
		      "elapsed", p->elapsed);
	if (o && !strcmp(p->event, "item")) {
		json_object_set_new(o, "id", json_integer((json_int_t)p->item_id));
		json_object_set_new(o, "ok", json_boolean(p->ok));
		if (p->error)
			json_object_set_new(o, "error", json_string(p->error));
		if (p->endpoint)
			json_object_set_new(o, "endpoint", json_string(p->endpoint));
	}
	if (o && (tick || (p->nendpoints && !item))) {
		double rate = p->elapsed > 0 ? (double)p->done / p->elapsed : 0;
		json_object_set_new(o, "images_per_minute", json_real(rate * 60));
		if (rate > 0 && p->total >= p->done)
			json_object_set_new(o, "eta_seconds",
					    json_real((double)(p->total - p->done) / rate));
		if (p->nendpoints)
			json_object_set_new(o, "endpoints", endpoints_json(p));
	}
	if (o) {
		json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
		fputc('\n', stdout);
		fflush(stdout);
	}
	json_decref(o);
}

void cli_progress_cb(const struct kiln_progress *p, void *user)
{
	struct cli_progress *cp = user;
	struct kiln_progress timed;
	/* a stage that does not time itself (release): the time since the bar started, so the
	 * rate and the ETA are real */
	if (p->elapsed <= 0) {
		timed = *p;
		timed.elapsed = mono() - cp->start;
		p = &timed;
	}
	if (cp->json) {
		progress_json(cp, p);
		return;
	}
	if (!strcmp(p->event, "item") && !p->ok && p->error && !cp->quiet) {
		if (cp->tty)
			erase_bar(cp);
		fprintf(stderr, "kiln: item %llu failed: %s\n", (unsigned long long)p->item_id,
			p->error);
	}
	if (!strcmp(p->event, "end") && !cp->quiet) {
		/* endpoints taken out of the pool for the run, and why (a server that drops
		 * what is asked, a refused credential, one that stopped answering) */
		if (cp->tty)
			erase_bar(cp);
		for (size_t k = 0; k < p->nendpoints; k++)
			if (p->endpoint_stats[k].state == KILN_ENDPOINT_GIVEN_UP &&
			    p->endpoint_stats[k].why[0])
				fprintf(stderr, "kiln: endpoint %s\n", p->endpoint_stats[k].why);
	}
	if (!cp->tty)
		return;
	if (!strcmp(p->event, "end")) {
		if (p->total) {
			draw_bar(cp, p);
			fputc('\n', stderr);
			cp->lines = 0;
		} else {
			erase_bar(cp);
		}
		return;
	}
	if (!p->total)
		return; /* nothing to do: no bar */
	if (mono() - cp->last_draw >= 0.1 || (p->done == p->total && strcmp(p->event, "tick"))) {
		cp->last_draw = mono();
		draw_bar(cp, p);
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

void cli_error_event(const char *stage, const struct kiln_error *e)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "event", "error", "stage", stage,
			      "where", e->where, "message", e->msg, "code",
			      kiln_error_name(e->code ? e->code : KILN_E_FAILED));
	char hint[512];
	cli_hint_text(e, hint, sizeof hint);
	if (o && hint[0]) {
		json_object_set_new(o, "hint", json_string(kiln_hint_name(e->hint)));
		json_object_set_new(o, "hint_text", json_string(hint));
	}
	print_json(o);
}

int cli_stage_plan(struct kiln_project *p, int force, int fresh, unsigned effort, int json,
		   int quiet, int *did)
{
	struct kiln_project_plan_opts o = {force, fresh};
	o.effort = effort;
	struct kiln_plan_result r;
	struct kiln_error e;
	kiln_error_clear(&e);
	if (kiln_project_plan(p, &o, &r, &e)) {
		if (json)
			cli_error_event("plan", &e);
		return cli_fail(&e);
	}
	if (did)
		*did = r.planned;
	if (json)
		print_json(json_pack("{s:s, s:s, s:b, s:I, s:I, s:{s:s, s:s}}", "event", "summary",
				     "stage", "plan", "planned", r.planned, "items",
				     (json_int_t)r.items, "changed", (json_int_t)r.changed,
				     "solvers", "clp", kiln_plan_clp_version(), "cbc",
				     kiln_plan_cbc_version()));
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
static int resolve_aws(struct kiln_endpoint *ep)
{
	const char *names[] = {ep->access_key_env, ep->secret_key_env, ep->session_token_env};
	char **to[] = {&ep->access_key, &ep->secret_key, &ep->session_token};
	for (size_t i = 0; i < 3; i++) {
		const char *v = names[i] ? getenv(names[i]) : NULL;
		if (!v || !*v || *to[i])
			continue; /* the render stage says which variable is missing */
		if (!(*to[i] = strdup(v))) {
			fprintf(stderr, "kiln: out of memory\n");
			return 1;
		}
	}
	return 0;
}

int cli_resolve_secrets(struct kiln_project *p)
{
	struct kiln_generate *g = p->spec->generate;
	for (size_t k = 0; g && k < g->nendpoints; k++) {
		struct kiln_endpoint *ep = &g->endpoints[k];
		const char *var = ep->auth_env ? ep->auth_env : ep->token_env;
		const char *v = var ? getenv(var) : NULL;
		if (ep->access_key_env && resolve_aws(ep))
			return 1;
		if (!var || ep->secret)
			continue;
		if (!v || !*v)
			continue; /* the render stage says which variable is missing */
		if (ep->auth_env && !strchr(v, ':')) {
			fprintf(stderr, "kiln: %s:%d:%d: endpoint %s: auth_env names %s, which does "
				"not hold user:pass: set it to user:pass (HTTP basic auth)\n",
				p->spec_path, ep->loc.line, ep->loc.col, ep->url, var);
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
				     (json_int_t)r.skipped, "seconds", r.seconds, "spent_usd",
				     r.spent_usd));
	if (rc)
		return cli_fail(&e);
	if (!json && !quiet) {
		if (!r.todo)
			printf("render: nothing to do, all %llu items up to date\n",
			       (unsigned long long)r.items);
		else
			printf("render: %llu rendered, %llu failed, %llu up to date in %.2f s "
			       "(%.1f items/s)", (unsigned long long)r.rendered,
			       (unsigned long long)r.failed, (unsigned long long)r.skipped,
			       r.seconds, r.seconds > 0 ? (double)r.todo / r.seconds : 0.0);
		if (r.todo && r.spent_usd > 0)
			printf(", $%.4f spent", r.spent_usd);
		if (r.todo)
			putchar('\n');
	}
	if (r.budget_stopped)
		fprintf(stderr, "kiln: the budget stopped the render: $%.4f spent in all ($%.4f in "
			"this run), generate.budget_usd is $%.4f; %llu items were not sent: raise "
			"the budget and run again to finish\n", r.spent_total_usd, r.spent_usd,
			p->spec->generate->budget_usd, (unsigned long long)r.failed);
	if (r.failed) {
		fprintf(stderr, "kiln: %llu items failed to render: `kiln ls --status failed` lists "
			"them, `kiln show ID` says why\n", (unsigned long long)r.failed);
		return 1;
	}
	return 0;
}

/* After a release: the damaged files it wrote again, and the released tokens QA has not
 * judged (never, or re-rendered since) or fails (released with the gate off). With o (--json),
 * the counts join the summary object, which is returned; else lines on stderr. */
json_t *cli_release_report(struct kiln_project *p, const struct kiln_release_result *r, json_t *o,
		       int json, int quiet)
{
	struct kiln_qa_state qa;
	struct kiln_error e;
	uint64_t unjudged, ids[KILN_QA_FIRST], k = 0;
	char list[96];
	kiln_error_clear(&e);
	if (kiln_catalog_qa_state(p->catalog, &qa, &e)) {
		cli_fail(&e);
		return o;
	}
	unjudged = qa.unchecked_tokens + qa.stale_tokens;
	if (json) {
		if (o) {
			json_object_set_new(o, "repaired_files", json_integer((json_int_t)r->repaired));
			json_object_set_new(o, "first_damage", json_string(r->damage));
			json_object_set_new(o, "qa_unjudged", json_integer((json_int_t)unjudged));
			json_object_set_new(o, "qa_failed",
					    json_integer((json_int_t)qa.failed_tokens));
		}
		return o;
	}
	if (r->repaired && !quiet)
		printf("release: dist/ differed from the release (%llu file%s: %s): written "
		       "again\n", (unsigned long long)r->repaired, r->repaired == 1 ? "" : "s",
		       r->damage);
	if (unjudged) {
		for (uint64_t i = 0; i < qa.unchecked_tokens && k < KILN_QA_FIRST; i++)
			ids[k++] = qa.first_unchecked[i];
		for (uint64_t i = 0; i < qa.stale_tokens && k < KILN_QA_FIRST; i++)
			ids[k++] = qa.first_stale[i];
		cli_first_ids(list, sizeof list, ids, unjudged);
		fprintf(stderr, "kiln: release: %llu released token%s QA has not judged%s%s: run "
			"`kiln qa`\n", (unsigned long long)unjudged, unjudged == 1 ? "" : "s", list,
			qa.stale_tokens ? " (re-rendered since it ran)" : "");
	}
	if (qa.failed_tokens) {
		cli_first_ids(list, sizeof list, qa.first_failed, qa.failed_tokens);
		fprintf(stderr, "kiln: release: %llu released token%s fail%s QA%s: `kiln qa` lists "
			"the findings\n", (unsigned long long)qa.failed_tokens,
			qa.failed_tokens == 1 ? "" : "s", qa.failed_tokens == 1 ? "s" : "", list);
	}
	return o;
}

int cli_stage_release(struct kiln_project *p, int force, int allow_qa_failures, int json,
		      int quiet, int *did)
{
	struct cli_progress cp;
	struct kiln_release_opts o;
	struct kiln_release_result r;
	struct kiln_error e;
	kiln_error_clear(&e);
	cli_progress_init(&cp, json, quiet);
	memset(&o, 0, sizeof o);
	o.keys_dir = cli_keys_dir(); /* NULL (out of memory): a portfolio release says so */
	o.force = force;
	o.allow_qa_failures = allow_qa_failures;
	o.progress = json ? NULL : cli_progress_cb;
	o.user = &cp;
	int rel_failed = kiln_project_release(p, &o, &r, &e);
	free((char *)o.keys_dir);
	if (rel_failed) {
		if (json)
			cli_error_event("release", &e);
		return cli_fail(&e);
	}
	if (did)
		*did = r.written;
	if (json)
		print_json(cli_release_report(p, &r, json_pack("{s:s, s:s, s:b, s:I, s:I, s:s, s:s, "
				     "s:s, s:s, s:b}", "event",
				     "summary", "stage", "release", "written", r.written, "items",
				     (json_int_t)r.items, "bytes", (json_int_t)r.bytes, "dist", r.dist,
				     "images_cid", r.images_cid, "metadata_cid", r.metadata_cid,
				     "provenance_hash", r.provenance, "reveal_pending",
				     r.reveal_pending), 1, quiet));
	if (!json && !quiet && r.written) {
		printf("release: %llu tokens written to %s (%.1f MiB of images)\n"
		       "  images ipfs://%s, provenance %s\n", (unsigned long long)r.items, r.dist,
		       (double)r.bytes / 1048576.0, r.images_cid, r.provenance);
		if (r.metadata_cid[0])
			printf("  metadata ipfs://%s/\n", r.metadata_cid);
		if (r.reveal_pending)
			printf("  reveal pending: `kiln release --starting-index N` writes the "
			       "token metadata\n");
	} else if (!json && !quiet)
		printf("release: %s is up to date\n", r.dist);
	if (!json)
		cli_release_report(p, &r, NULL, 0, quiet);
	return 0;
}
