/* bench/review/bench_client: API latency of a running `kiln review` under C concurrent clients.
 * Each client (a thread, one keep-alive libcurl handle) repeats: GET /api/tokens/{id} (the
 * next token's data, what the page fetches after a decision) then POST
 * /api/tokens/{id}/decision (approve or reject), over ids spread across the collection.
 * Each round also times GET /api/session, a trivial endpoint, as the in-run baseline of a
 * loaded machine. Prints p50 and p99 of each, in milliseconds, and the decision p99 over the
 * baseline's p99.
 * Closed loop (no MIN_MS): each client sends its next request as soon as the last one
 * answered, a stress figure (C clients saturating the server).
 * Paced (MIN_MS MAX_MS): each client is a reviewer deciding every MIN_MS..MAX_MS ms (uniform,
 * its own seed): round i is scheduled at the client's start + the sum of i intervals, never
 * after the last answer, and every latency of the round is counted from that scheduled time, so
 * a late server's queueing is measured (no coordinated omission). A round is what the page
 * does: the decision, then the next token's data, then GET /api/session (the baseline).
 * usage: bench_client PORT TOKEN NTOKENS CLIENTS REQUESTS_PER_CLIENT [MIN_MS MAX_MS] */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int port, ntok, per;
static double pace_min, pace_max; /* seconds; 0: closed loop */
static double t_start;
static const char *token;
static double *lat_get, *lat_post, *lat_base;

static size_t sink(char *p, size_t s, size_t n, void *u)
{
	(void)p, (void)u;
	return s * n;
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void request(CURL *h, const char *url, const char *body, double *out, double from)
{
	long code;
	curl_easy_setopt(h, CURLOPT_URL, url);
	if (body)
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	else
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	if (curl_easy_perform(h) || (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code),
				     code != 200)) {
		fprintf(stderr, "%s %s failed\n", body ? "POST" : "GET", url);
		exit(1);
	}
	*out = now() - from;
}

static void sleep_until(double t)
{
	struct timespec ts;
	double d = t - now();
	if (d <= 0)
		return;
	ts.tv_sec = (time_t)d;
	ts.tv_nsec = (long)((d - (double)ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
}

/* a reviewer: a round every pace_min..pace_max, latencies from the scheduled time */
/* a handle sending the bearer token and JSON bodies, answers discarded (*hd: its headers) */
static CURL *open_client(struct curl_slist **hd)
{
	CURL *h = curl_easy_init();
	char auth[128];
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
	*hd = curl_slist_append(*hd, auth);
	*hd = curl_slist_append(*hd, "Content-Type: application/json");
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hd);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
	return h;
}

static void *paced(void *arg)
{
	long c = (long)arg;
	struct curl_slist *hd = NULL;
	CURL *h = open_client(&hd);
	char url[128];
	unsigned seed = (unsigned)(c * 2654435761u + 1);
	double at = t_start;
	for (int i = 0; i < per; i++) {
		int id = 1 + (int)((c * 7919 + (long)i * 104729) % ntok);
		double t;
		at += pace_min + (pace_max - pace_min) * (double)rand_r(&seed) / RAND_MAX;
		sleep_until(at);
		snprintf(url, sizeof url, "http://127.0.0.1:%d/api/tokens/%d/decision", port, id);
		request(h, url, i % 2 ? "{\"action\": \"approve\"}" : "{\"action\": \"reject\"}",
			&lat_post[c * per + i], at);
		t = now();
		snprintf(url, sizeof url, "http://127.0.0.1:%d/api/tokens/%d", port,
			 1 + (id % ntok));
		request(h, url, NULL, &lat_get[c * per + i], t);
		t = now();
		snprintf(url, sizeof url, "http://127.0.0.1:%d/api/session", port);
		request(h, url, NULL, &lat_base[c * per + i], t);
	}
	curl_slist_free_all(hd);
	curl_easy_cleanup(h);
	return NULL;
}

static void *client(void *arg)
{
	long c = (long)arg;
	struct curl_slist *hd = NULL;
	CURL *h = open_client(&hd);
	char url[128];
	long code;
	for (int i = 0; i < per; i++) {
		int id = 1 + (int)((c * 7919 + (long)i * 104729) % ntok);
		double t;
		snprintf(url, sizeof url, "http://127.0.0.1:%d/api/tokens/%d", port, id);
		curl_easy_setopt(h, CURLOPT_URL, url);
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
		t = now();
		if (curl_easy_perform(h) || (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code),
					     code != 200)) {
			fprintf(stderr, "GET %s failed\n", url);
			exit(1);
		}
		lat_get[c * per + i] = now() - t;
		snprintf(url, sizeof url, "http://127.0.0.1:%d/api/session", port);
		curl_easy_setopt(h, CURLOPT_URL, url);
		t = now();
		if (curl_easy_perform(h) || (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code),
					     code != 200)) {
			fprintf(stderr, "GET %s failed\n", url);
			exit(1);
		}
		lat_base[c * per + i] = now() - t;
		snprintf(url, sizeof url, "http://127.0.0.1:%d/api/tokens/%d/decision", port, id);
		curl_easy_setopt(h, CURLOPT_URL, url);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, i % 2 ? "{\"action\": \"approve\"}"
							 : "{\"action\": \"reject\"}");
		t = now();
		if (curl_easy_perform(h) || (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code),
					     code != 200)) {
			fprintf(stderr, "POST %s failed (%ld)\n", url, code);
			exit(1);
		}
		lat_post[c * per + i] = now() - t;
	}
	curl_slist_free_all(hd);
	curl_easy_cleanup(h);
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
	size_t k = (size_t)(p * (double)n + 0.999999);
	return v[(k ? k : 1) - 1] * 1000.0;
}

int main(int argc, char **argv)
{
	int clients;
	pthread_t *th;
	size_t n;
	double maxv;
	if (argc != 6 && argc != 8) {
		fprintf(stderr, "usage: bench_client PORT TOKEN NTOKENS CLIENTS REQUESTS "
			"[MIN_MS MAX_MS]\n");
		return 2;
	}
	port = atoi(argv[1]);
	token = argv[2];
	ntok = atoi(argv[3]);
	clients = atoi(argv[4]);
	per = atoi(argv[5]);
	if (argc == 8) {
		pace_min = atof(argv[6]) / 1000.0;
		pace_max = atof(argv[7]) / 1000.0;
		if (pace_min <= 0 || pace_max < pace_min) {
			fprintf(stderr, "bench_client: 0 < MIN_MS <= MAX_MS\n");
			return 2;
		}
	}
	n = (size_t)clients * (size_t)per;
	lat_get = calloc(n, sizeof *lat_get);
	lat_post = calloc(n, sizeof *lat_post);
	lat_base = calloc(n, sizeof *lat_base);
	th = calloc((size_t)clients, sizeof *th);
	if (!lat_get || !lat_post || !lat_base || !th)
		return 1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	t_start = now();
	for (long c = 0; c < clients; c++)
		pthread_create(&th[c], NULL, pace_min > 0 ? paced : client, (void *)c);
	for (int c = 0; c < clients; c++)
		pthread_join(th[c], NULL);
	qsort(lat_get, n, sizeof *lat_get, cmp);
	qsort(lat_post, n, sizeof *lat_post, cmp);
	qsort(lat_base, n, sizeof *lat_base, cmp);
	maxv = lat_post[n - 1] * 1000.0;
	if (pace_min > 0)
		printf("%d reviewers paced (a decision every %.0f..%.0f ms each, %.1f decisions/s in "
		       "all; latency from the scheduled send): ", clients, pace_min * 1000,
		       pace_max * 1000, clients / ((pace_min + pace_max) / 2));
	printf("%d clients: next token p50 %.2f ms p99 %.2f ms; decision p50 %.2f ms p99 %.2f ms "
	       "max %.2f ms; baseline GET /api/session p50 %.2f ms p99 %.2f ms; decision p99 / "
	       "baseline p99 %.2f\n", clients, pct(lat_get, n, 0.5), pct(lat_get, n, 0.99), pct(lat_post, n, 0.5),
	       pct(lat_post, n, 0.99), maxv, pct(lat_base, n, 0.5), pct(lat_base, n, 0.99),
	       pct(lat_post, n, 0.99) / pct(lat_base, n, 0.99));
	printf("%d %.3f %.3f %.3f %.3f %.3f %.3f %.3f\n", clients, pct(lat_get, n, 0.5),
	       pct(lat_get, n, 0.99), pct(lat_post, n, 0.5), pct(lat_post, n, 0.99),
	       pct(lat_base, n, 0.5), pct(lat_base, n, 0.99), maxv);
	return 0;
}
