/* kiln review: the review web app (lib/review). Serves until SIGINT or SIGTERM, then exits 0;
 * the first line on stdout is the owner's URL. --add-reviewer prints a new reviewer's URL;
 * --log prints the decision log. */
#include "cli.h"
#include "kiln/review.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void help(void)
{
	printf("usage: kiln review [--listen ADDR:PORT] [--tls-cert FILE --tls-key FILE] [--json]\n"
	       "       kiln review --add-reviewer NAME [--listen ADDR:PORT]\n"
	       "       kiln review --log [--json]\n\n"
	       "Serves the review web app until Ctrl-C (SIGINT) or SIGTERM, then exits 0. The\n"
	       "first line is the owner's URL: `review: http://127.0.0.1:PORT/?token=TOKEN`.\n\n"
	       "  --listen ADDR:PORT   where to listen (default 127.0.0.1:0, a free port);\n"
	       "                       an address that is not loopback is warned about\n"
	       "  --tls-cert FILE      serve HTTPS with this PEM certificate ...\n"
	       "  --tls-key FILE       ... and its PEM key\n"
	       "  --json               the first line is {\"url\": ...}; with --log, one JSON\n"
	       "                       object per decision per line\n"
	       "  --add-reviewer NAME  make a reviewer with a personal token and print their URL\n"
	       "                       (for the address of --listen; the token is shown once)\n"
	       "  --log                print the decision log, oldest first\n");
}

/* "ADDR:PORT", "[V6]:PORT" or "PORT" */
static int parse_listen(const char *arg, char *host, size_t cap, unsigned *port)
{
	const char *colon = strrchr(arg, ':');
	uint64_t v;
	size_t n;
	if (!colon) {
		snprintf(host, cap, "127.0.0.1");
		return cli_parse_u64(arg, 0, 65535, &v) ? -1 : (*port = (unsigned)v, 0);
	}
	n = (size_t)(colon - arg);
	if (n && arg[0] == '[' && arg[n - 1] == ']') {
		arg++;
		n -= 2;
	}
	if (!n || n >= cap)
		return -1;
	memcpy(host, arg, n);
	host[n] = 0;
	if (cli_parse_u64(colon + 1, 0, 65535, &v))
		return -1;
	*port = (unsigned)v;
	return 0;
}

static int is_loopback(const char *host)
{
	struct in_addr a;
	struct in6_addr a6;
	if (inet_pton(AF_INET, host, &a) == 1)
		return (ntohl(a.s_addr) >> 24) == 127;
	return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0, k;
	if (!f)
		return NULL;
	for (;;) {
		if (n + 4096 + 1 > cap) {
			char *b = realloc(buf, cap = (n + 4096 + 1) * 2);
			if (!b)
				break;
			buf = b;
		}
		k = fread(buf + n, 1, cap - n - 1, f);
		n += k;
		if (!k)
			break;
	}
	fclose(f);
	if (buf)
		buf[n] = 0;
	return buf;
}

static void print_url(const char *scheme, const char *host, unsigned port, const char *token,
		      int json, const char *label)
{
	char url[512];
	int v6 = strchr(host, ':') != NULL;
	snprintf(url, sizeof url, "%s://%s%s%s:%u/?token=%s", scheme, v6 ? "[" : "", host,
		 v6 ? "]" : "", port, token);
	if (json) {
		json_t *o = json_pack("{s:s}", "url", url);
		if (o)
			json_dumpf(o, stdout, JSON_COMPACT);
		json_decref(o);
		fputc('\n', stdout);
	} else {
		printf("%s: %s\n", label, url);
	}
	fflush(stdout);
}

int cmd_review_log(struct cli *cli, int json);

int cmd_review(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"listen", required_argument, NULL, 'l'}, {"tls-cert", required_argument, NULL, 'c'},
		{"tls-key", required_argument, NULL, 'k'}, {"json", no_argument, NULL, 'j'},
		{"add-reviewer", required_argument, NULL, 'a'}, {"log", no_argument, NULL, 'L'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	struct kiln_review_opts ro;
	struct kiln_review_server *srv = NULL;
	struct kiln_project *p = NULL;
	struct kiln_error e;
	char host[128] = "127.0.0.1", token[65];
	const char *cert = NULL, *key = NULL, *add = NULL;
	char *cert_pem = NULL, *key_pem = NULL;
	unsigned port = 0;
	int c, json = 0, log = 0, listen_given = 0, rc, created, sig;
	sigset_t set;
	struct timespec t0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (parse_listen(optarg, host, sizeof host, &port))
				return cli_usage("review", "--listen is ADDR:PORT (a numeric address, "
						 "port 0-65535), not '%s'", optarg);
			listen_given = 1;
			break;
		case 'c': cert = optarg; break;
		case 'k': key = optarg; break;
		case 'j': json = 1; break;
		case 'a': add = optarg; break;
		case 'L': log = 1; break;
		case 'h': help(); return 0;
		default: return cli_usage("review", "unknown option");
		}
	}
	if (optind < argc)
		return cli_usage("review", "unexpected argument '%s'", argv[optind]);
	if (!cert != !key)
		return cli_usage("review", "--tls-cert and --tls-key go together");
	if (log && (add || cert || listen_given))
		return cli_usage("review", "--log takes only --json");
	if (log)
		return cmd_review_log(cli, json);
	kiln_error_clear(&e);
	if ((rc = cli_open(cli, &p)))
		return rc;
	if (add) {
		if (kiln_review_add_reviewer(p, add, token, &e)) {
			rc = cli_fail(&e);
			goto out;
		}
		print_url(cert ? "https" : "http", host, port ? port : 0, token, json, add);
		if (!port && !json)
			fprintf(stderr, "kiln: review: PORT is the one `kiln review` prints when it "
				"starts (or give --listen ADDR:PORT here and there)\n");
		goto out;
	}
	if ((cert && !(cert_pem = read_text(cert))) || (key && !(key_pem = read_text(key)))) {
		fprintf(stderr, "kiln: %s: cannot read: %s\n", cert_pem ? key : cert,
			strerror(errno));
		rc = 2;
		goto out;
	}
	if (kiln_review_owner_token(p, token, &created, &e)) {
		rc = cli_fail(&e);
		goto out;
	}
	if (!is_loopback(host))
		fprintf(stderr, "kiln: review: warning: listening on %s, which is not a loopback "
			"address: anyone who can reach it and holds a URL can review%s\n", host,
			cert ? "" : " (and the traffic is not encrypted: see --tls-cert)");
	/* the server's threads inherit a mask without the signals: this thread waits for them */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	memset(&ro, 0, sizeof ro);
	ro.host = host;
	ro.port = port;
	ro.tls_cert = cert_pem;
	ro.tls_key = key_pem;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (kiln_review_start(&srv, p, &ro, &e)) {
		rc = cli_fail(&e);
		goto out;
	}
	/* serving holds no long lock: the server's writes are catalog transactions (SQLite WAL),
	 * so render, release or --add-reviewer run beside it; the lock only covered the start
	 * (the catalog's upgrade, the owner's token) */
	kiln_project_unlock(p->lock_fd);
	p->lock_fd = -1;
	print_url(cert ? "https" : "http", host, kiln_review_port(srv), token, json, "review");
	/* wait for Ctrl-C or SIGTERM; meanwhile say once when the thumbnails are ready */
	{
		struct timespec tick = {0, 200000000}, t1;
		uint64_t done, total;
		int told = 0;
		for (;;) {
			sig = sigtimedwait(&set, NULL, &tick);
			if (sig == SIGINT || sig == SIGTERM)
				break;
			kiln_review_thumbs_progress(srv, &done, &total);
			if (!told && done >= total) {
				clock_gettime(CLOCK_MONOTONIC, &t1);
				fprintf(stderr, "review: %llu thumbnails ready in %.2f s\n",
					(unsigned long long)total, (double)(t1.tv_sec - t0.tv_sec) +
					(t1.tv_nsec - t0.tv_nsec) / 1e9);
				told = 1;
			}
		}
	}
	kiln_review_stop(srv);
	rc = 0;
out:
	free(cert_pem);
	free(key_pem);
	kiln_project_free(p);
	return rc;
}

int cmd_review_log(struct cli *cli, int json)
{
	/* reading only: no lock, so the log can be read while the server runs */
	struct cmd ro = *cli->cmd;
	struct cli c2 = *cli;
	struct kiln_project *p = NULL;
	struct kiln_error e;
	char *text = NULL;
	json_t *arr = NULL, *d;
	size_t i;
	int rc;
	ro.writes = 0;
	c2.cmd = &ro;
	if ((rc = cli_open(&c2, &p)))
		return rc;
	kiln_error_clear(&e);
	if (kiln_catalog_review_log_json(p->catalog, 0, 0, &text, &e)) {
		rc = cli_fail(&e);
		goto out;
	}
	if (!(arr = json_loads(text, 0, NULL))) {
		fprintf(stderr, "kiln: review: out of memory\n");
		rc = 1;
		goto out;
	}
	if (!json && !json_array_size(arr))
		printf("no review decisions yet\n");
	json_array_foreach(arr, i, d) {
		if (json) {
			json_dumpf(d, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
			fputc('\n', stdout);
			continue;
		}
		{
			const char *act = json_string_value(json_object_get(d, "action"));
			json_t *k = json_object_get(d, "candidate"), *u = json_object_get(d, "undoes");
			const char *note = json_string_value(json_object_get(d, "note"));
			const char *img = json_string_value(json_object_get(d, "image"));
			printf("%6lld  %s  %-12s token %-6lld %-10s", (long long)json_integer_value(
				json_object_get(d, "id")), json_string_value(json_object_get(d, "at")),
				json_string_value(json_object_get(d, "reviewer")),
				(long long)json_integer_value(json_object_get(d, "item")), act);
			if (json_is_integer(k))
				printf(" candidate %lld", (long long)json_integer_value(k));
			if (json_is_integer(u))
				printf(" decision %lld", (long long)json_integer_value(u));
			if (img)
				printf(" image %.12s", img);
			if (json_is_true(json_object_get(d, "undone")))
				printf(" (undone)");
			if (note)
				printf("  \"%s\"", note);
			putchar('\n');
		}
	}
out:
	json_decref(arr);
	free(text);
	kiln_project_free(p);
	return rc;
}

/* --- the review in ls, status and show ---------------------------------------------------- */

json_t *cli_review_item_json(const struct kiln_review_state *st)
{
	json_t *rv = st && st->reviewers ? json_loads(st->reviewers, 0, NULL) : NULL;
	json_t *o = json_pack("{s:s, s:o, s:o, s:o, s:i, s:b}",
			      "status", st ? st->status : "pending",
			      "reviewers", rv ? rv : json_array(),
			      "candidate", st && st->candidate ? json_integer(st->candidate)
							       : json_null(),
			      "note", st && st->note ? json_string(st->note) : json_null(),
			      "approvals", st ? (int)st->approvals : 0,
			      "conflict", st && st->conflict);
	return o;
}

int cli_review_status(struct kiln_project *p, json_t *o)
{
	struct kiln_review_counts n;
	struct kiln_review_state *v = NULL;
	struct kiln_error e;
	json_t *ids;
	size_t nv = 0;
	kiln_error_clear(&e);
	if (kiln_catalog_review_counts(p->catalog, &n, &e) ||
	    kiln_catalog_review_states(p->catalog, &v, &nv, &e))
		return cli_fail(&e);
	ids = json_array();
	for (size_t i = 0; ids && i < nv; i++)
		if (v[i].conflict)
			json_array_append_new(ids, json_integer((json_int_t)v[i].item_id));
	kiln_review_states_free(v, nv);
	if (o) {
		json_object_set_new(o, "review", json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, "
			"s:o}", "required", p->spec->review_required, "pending",
			(json_int_t)n.pending, "approved", (json_int_t)n.approved, "rejected",
			(json_int_t)n.rejected, "regenerate", (json_int_t)n.regenerate,
			"decisions", (json_int_t)n.decisions, "conflicts", (json_int_t)n.conflicts,
			"conflict_ids", ids ? ids : json_array()));
		return 0;
	}
	printf("  review     %llu approved, %llu rejected, %llu pending, %llu to regenerate "
	       "(%llu decisions%s)\n", (unsigned long long)n.approved,
	       (unsigned long long)n.rejected, (unsigned long long)n.pending,
	       (unsigned long long)n.regenerate, (unsigned long long)n.decisions,
	       p->spec->review_required ? "; required before release" : "");
	if (n.conflicts) {
		size_t i;
		json_t *x;
		printf("             %llu conflict%s (reviewers disagree): token%s",
		       (unsigned long long)n.conflicts, n.conflicts == 1 ? "" : "s",
		       n.conflicts == 1 ? "" : "s");
		json_array_foreach(ids, i, x) {
			if (i == 8) {
				printf(", ...");
				break;
			}
			printf("%s %lld", i ? "," : "", (long long)json_integer_value(x));
		}
		printf("\n");
	}
	json_decref(ids);
	return 0;
}

int cli_review_show(struct kiln_project *p, uint64_t id, json_t *o)
{
	struct kiln_review_state st;
	struct kiln_error e;
	char *log = NULL;
	json_t *d;
	size_t i;
	int found;
	kiln_error_clear(&e);
	if (kiln_catalog_review_state(p->catalog, id, &st, &found, &e) ||
	    kiln_catalog_review_log_json(p->catalog, 1, id, &log, &e))
		return cli_fail(&e);
	d = json_loads(log, 0, NULL);
	free(log);
	if (o) {
		json_object_set_new(o, "review", cli_review_item_json(found ? &st : NULL));
		json_object_set_new(o, "decisions", d ? d : json_array());
		kiln_review_state_release(&st);
		return 0;
	}
	printf("  review     %s%s", st.status, st.conflict ? " (reviewers disagree)" : "");
	if (st.candidate)
		printf(", candidate %u picked", st.candidate);
	if (found)
		printf(", %u approval%s", st.approvals, st.approvals == 1 ? "" : "s");
	printf("\n");
	json_array_foreach(d, i, o) {
		json_t *k = json_object_get(o, "candidate");
		const char *note = json_string_value(json_object_get(o, "note"));
		printf("    #%lld %s %s %s", (long long)json_integer_value(json_object_get(o, "id")),
		       json_string_value(json_object_get(o, "at")),
		       json_string_value(json_object_get(o, "reviewer")),
		       json_string_value(json_object_get(o, "action")));
		if (json_is_integer(k))
			printf(" %lld", (long long)json_integer_value(k));
		if (json_is_integer(json_object_get(o, "undoes")))
			printf(" #%lld", (long long)json_integer_value(json_object_get(o, "undoes")));
		if (json_is_true(json_object_get(o, "undone")))
			printf(" (undone)");
		if (note)
			printf(": %s", note);
		printf("\n");
	}
	json_decref(d);
	kiln_review_state_release(&st);
	return 0;
}
