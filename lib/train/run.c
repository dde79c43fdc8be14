/* run: what `kiln train run` needs below the command: kohya's progress read from its log, the
 * run's state file, the trainer started detached under a supervisor that records its exit,
 * and the trained LoRA's metadata checked against the manifest.
 *
 * Invariants: the trainer never belongs to kiln: it runs in its own session (setsid), so a
 * Ctrl-C or a kill -9 of kiln leaves it running, and a later kiln finds it again by the
 * supervisor's pid AND start time (/proc/PID/stat field 22), never by pid alone (pids are
 * reused). The supervisor closes every descriptor it inherited (the project lock is a flock:
 * it must not outlive kiln) and writes the trainer's exit status to a file by rename, so the
 * status survives kiln. The state file is written (by rename) before kiln waits.
 *
 * Sizes: logs of a few MB (kohya's tqdm redraws ~10 lines a second); a few datasets. */
#include "kiln/train.h"
#include "util/alloc.h"
#include "kiln/buf.h"
#include "util/sha.h"
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* --- progress ------------------------------------------------------------------------------ */

void kiln_train_progress_init(struct kiln_train_progress *p)
{
	memset(p, 0, sizeof *p);
}

static int prefix(const char *s, size_t n, const char *pre)
{
	size_t k = strlen(pre);
	return n >= k && !memcmp(s, pre, k);
}

/* "steps:  12%|█▏   | 180/1500 [00:03<00:21,  5.00it/s, avr_loss=0.0834]" */
static int step_line(struct kiln_train_progress *p, const char *s, size_t n)
{
	char buf[1024];
	const char *bar, *q, *loss;
	char *end;
	unsigned long long a, b;
	if (n >= sizeof buf)
		n = sizeof buf - 1;
	memcpy(buf, s, n);
	buf[n] = 0;
	/* the count follows the bar's closing '|': the last '|' before the '[' */
	q = strchr(buf, '[');
	bar = NULL;
	for (const char *c = buf; *c && (!q || c < q); c++)
		if (*c == '|')
			bar = c;
	if (!bar)
		return 0;
	q = bar + 1;
	while (*q == ' ')
		q++;
	if (*q < '0' || *q > '9')
		return 0;
	errno = 0;
	a = strtoull(q, &end, 10);
	if (errno || *end != '/' || end[1] < '0' || end[1] > '9')
		return 0;
	b = strtoull(end + 1, &end, 10);
	if (errno || (*end && *end != ' ') || a > b)
		return 0;
	p->step = a;
	p->total = b;
	if ((loss = strstr(end, "avr_loss=")) != NULL) {
		double v = strtod(loss + 9, &end);
		if (end != loss + 9 && isfinite(v)) {
			p->loss = v;
			p->has_loss = 1;
		}
	}
	return 1;
}

int kiln_train_progress_line(struct kiln_train_progress *p, const char *line, size_t n)
{
	while (n && (*line == ' ' || *line == '\t')) {
		line++;
		n--;
	}
	while (n && (line[n - 1] == ' ' || line[n - 1] == '\t'))
		n--;
	if (!n)
		return 0;
	if (prefix(line, n, "steps:"))
		return step_line(p, line + 6, n - 6);
	if (prefix(line, n, "epoch ")) {
		unsigned a, b;
		char tail;
		char buf[64];
		if (n < sizeof buf) {
			memcpy(buf, line, n);
			buf[n] = 0;
			if (sscanf(buf, "epoch %u/%u%c", &a, &b, &tail) == 2 && a && a <= b) {
				p->epoch = a;
				p->epochs = b;
				return 2;
			}
		}
	}
	if (prefix(line, n, "saving checkpoint: ")) {
		size_t k = n - 19;
		if (k >= sizeof p->saved)
			k = sizeof p->saved - 1;
		memcpy(p->saved, line + 19, k);
		p->saved[k] = 0;
		return 3;
	}
	{
		size_t k = n < sizeof p->last - 1 ? n : sizeof p->last - 1;
		memcpy(p->last, line, k);
		p->last[k] = 0;
	}
	return 0;
}

unsigned kiln_train_progress_feed(struct kiln_train_progress *p, const char *buf, size_t n)
{
	unsigned steps = 0;
	for (size_t i = 0; i < n; i++) {
		char c = buf[i];
		if (c == '\r' || c == '\n') {
			steps += kiln_train_progress_line(p, p->line, p->len) == 1;
			p->len = 0;
		} else if (p->len < sizeof p->line - 1) {
			p->line[p->len++] = c;
		}
	}
	return steps;
}

/* --- the state file ------------------------------------------------------------------------ */

void kiln_train_state_release(struct kiln_train_state *s)
{
	free(s->argv_json);
	s->argv_json = NULL;
}

int kiln_train_state_write(const char *path, const struct kiln_train_state *s,
			   struct kiln_error *e)
{
	json_t *o, *argv = NULL;
	char *text;
	int rc;
	if (s->argv_json && !(argv = json_loads(s->argv_json, 0, NULL)))
		return kiln_error_set(e, KILN_E_NOMEM, path, "out of memory writing the run state");
	o = json_pack("{s:s, s:s, s:I, s:I, s:f, s:s, s:s, s:s, s:s, s:o}", "name", s->name,
		      "where", s->where, "pid", (json_int_t)s->pid, "pid_start",
		      (json_int_t)s->pid_start, "started", s->started, "manifest_sha256",
		      s->manifest_sha256, "output", s->output, "job_id", s->job_id, "endpoint",
		      s->endpoint, "argv", argv ? argv : json_array());
	text = o ? json_dumps(o, JSON_SORT_KEYS | JSON_INDENT(1)) : NULL;
	json_decref(o);
	if (!text)
		return kiln_error_set(e, KILN_E_NOMEM, path, "out of memory writing the run state");
	rc = kiln_fs_write_atomic(path, text, strlen(text), e);
	free(text);
	return rc;
}

static int copy_str(json_t *o, const char *key, char *out, size_t cap)
{
	const char *v = json_string_value(json_object_get(o, key));
	if (!v || strlen(v) >= cap)
		return -1;
	memcpy(out, v, strlen(v) + 1);
	return 0;
}

int kiln_train_state_read(const char *path, struct kiln_train_state *s, struct kiln_error *e)
{
	struct kiln_buf b = KILN_BUF_INIT;
	json_t *o = NULL, *pid, *start, *started, *argv;
	int rc;
	memset(s, 0, sizeof *s);
	if (!kiln_fs_exists(path))
		return kiln_error_set(e, KILN_E_NOTFOUND, path, "no run has started");
	if ((rc = kiln_fs_read(path, &b, e)))
		return rc;
	o = json_loadb(b.data ? b.data : "", b.len, 0, NULL);
	kiln_buf_release(&b);
	pid = json_object_get(o, "pid");
	start = json_object_get(o, "pid_start");
	started = json_object_get(o, "started");
	argv = json_object_get(o, "argv");
	if (!json_is_object(o) || copy_str(o, "name", s->name, sizeof s->name) ||
	    copy_str(o, "where", s->where, sizeof s->where) ||
	    (strcmp(s->where, "local") && strcmp(s->where, "runpod")) || !json_is_integer(pid) ||
	    json_integer_value(pid) < 0 || json_integer_value(pid) > INT32_MAX ||
	    !json_is_integer(start) || json_integer_value(start) < 0 || !json_is_number(started) ||
	    copy_str(o, "manifest_sha256", s->manifest_sha256, sizeof s->manifest_sha256) ||
	    copy_str(o, "output", s->output, sizeof s->output) ||
	    copy_str(o, "job_id", s->job_id, sizeof s->job_id) ||
	    copy_str(o, "endpoint", s->endpoint, sizeof s->endpoint) || !json_is_array(argv)) {
		json_decref(o);
		memset(s, 0, sizeof *s);
		return kiln_error_set(e, KILN_E_IO, path, "not a run state file (damaged?): remove "
				      "it only once no trainer of this run is running");
	}
	s->pid = json_integer_value(pid);
	s->pid_start = (uint64_t)json_integer_value(start);
	s->started = json_number_value(started);
	s->argv_json = json_dumps(argv, JSON_COMPACT);
	json_decref(o);
	if (!s->argv_json)
		return kiln_error_set(e, KILN_E_NOMEM, path, "out of memory reading the run state");
	return 0;
}

/* --- the process --------------------------------------------------------------------------- */

/* /proc/PID/stat: "pid (comm) S ppid ... starttime(22) ..."; comm may hold spaces and ')' */
static int proc_stat(int64_t pid, char *state, uint64_t *start)
{
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd;
	unsigned long long v;
	snprintf(path, sizeof path, "/proc/%" PRId64 "/stat", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	if (!(p = strrchr(buf, ')')))
		return -1;
	p += 2; /* field 3, the state */
	*state = *p;
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return -1;
		p++;
	}
	if (sscanf(p, "%llu", &v) != 1)
		return -1;
	*start = v;
	return 0;
}

int kiln_train_pid_start(int64_t pid, uint64_t *start)
{
	char st;
	return pid > 0 && !proc_stat(pid, &st, start) ? 0 : -1;
}

int kiln_train_alive(int64_t pid, uint64_t pid_start)
{
	uint64_t start;
	char st;
	if (pid <= 0 || proc_stat(pid, &st, &start) || start != pid_start)
		return 0;
	if (st == 'Z' || st == 'X' || st == 'x') {
		/* our own child that ended: reap it (a later kiln's is reaped by init) */
		waitpid((pid_t)pid, NULL, WNOHANG);
		return 0;
	}
	return 1;
}

void kiln_train_stop(int64_t pid, uint64_t pid_start, double grace)
{
	struct timespec ts = {0, 50 * 1000 * 1000};
	if (!kiln_train_alive(pid, pid_start))
		return;
	kill(-(pid_t)pid, SIGTERM);
	for (double t = 0; t < grace; t += 0.05) {
		if (!kiln_train_alive(pid, pid_start))
			return;
		nanosleep(&ts, NULL);
	}
	if (kiln_train_alive(pid, pid_start))
		kill(-(pid_t)pid, SIGKILL);
}

static void put(int fd, const char *s)
{
	size_t n = strlen(s);
	while (n) {
		ssize_t w = write(fd, s, n);
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

/* The supervisor (a forked copy of kiln): only system calls from here on. */
static void supervise(char *const *argv, const char *cwd, const char *log, const char *exit_file,
		      const char *tmp, int ready)
{
	int fd, status = 0;
	pid_t child;
	char msg[64];
	setsid();
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	/* nothing of kiln's stays open: its project lock, catalog, terminal */
	for (int i = 3; i < 65536; i++)
		if (i != ready)
			close(i);
	fd = open("/dev/null", O_RDONLY);
	if (fd >= 0 && fd != 0) {
		dup2(fd, 0);
		close(fd);
	}
	fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		_exit(126);
	dup2(fd, 1);
	dup2(fd, 2);
	close(fd);
	put(ready, "1");
	close(ready);
	child = fork();
	if (child == 0) {
		if (chdir(cwd))
			_exit(126);
		execvp(argv[0], argv);
		put(2, "kiln: cannot run ");
		put(2, argv[0]);
		put(2, ": ");
		put(2, strerror(errno));
		put(2, "\n");
		_exit(127);
	}
	if (child < 0) {
		put(2, "kiln: cannot start the trainer: out of processes\n");
		status = 126 << 8;
	} else {
		signal(SIGTERM, SIG_IGN); /* stop: the trainer ends, the supervisor records it */
		while (waitpid(child, &status, 0) < 0 && errno == EINTR)
			;
	}
	if (WIFSIGNALED(status))
		snprintf(msg, sizeof msg, "signal %d\n", WTERMSIG(status));
	else
		snprintf(msg, sizeof msg, "exit %d\n", WEXITSTATUS(status));
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		put(fd, msg);
		fsync(fd);
		close(fd);
		rename(tmp, exit_file);
	}
	_exit(0);
}

int kiln_train_spawn(char *const *argv, const char *cwd, const char *log, const char *exit_file,
		     int64_t *pid, uint64_t *pid_start, struct kiln_error *e)
{
	char tmp[4200];
	int pipefd[2];
	pid_t p;
	char c = 0;
	ssize_t r;
	if (!argv || !argv[0])
		return kiln_error_set(e, KILN_E_SPEC, NULL, "the trainer's command is empty");
	if (unlink(exit_file) && errno != ENOENT)
		return kiln_error_set(e, KILN_E_IO, exit_file, "cannot remove: %s", strerror(errno));
	/* on the stack: the supervisor ends with _exit, nothing of it is freed */
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", exit_file) >= sizeof tmp)
		return kiln_error_set(e, KILN_E_IO, exit_file, "the path is too long");
	if (pipe2(pipefd, O_CLOEXEC)) {
		return kiln_error_set(e, KILN_E_IO, NULL, "cannot start the trainer: %s",
				      strerror(errno));
	}
	fflush(NULL);
	p = fork();
	if (p == 0) {
		close(pipefd[0]);
		supervise(argv, cwd, log, exit_file, tmp, pipefd[1]);
	}
	close(pipefd[1]);
	if (p < 0) {
		close(pipefd[0]);
		return kiln_error_set(e, KILN_E_IO, NULL, "cannot start the trainer: %s",
				      strerror(errno));
	}
	/* the supervisor says it has its session and its log */
	while ((r = read(pipefd[0], &c, 1)) < 0 && errno == EINTR)
		;
	close(pipefd[0]);
	*pid = p;
	if (r != 1 || kiln_train_pid_start(p, pid_start)) {
		waitpid(p, NULL, 0);
		return kiln_error_set(e, KILN_E_IO, log, "cannot start the trainer: its log cannot "
				      "be written");
	}
	return 0;
}

int kiln_train_exit_status(const char *exit_file, int *status, struct kiln_error *e)
{
	struct kiln_buf b = KILN_BUF_INIT;
	int rc, v;
	char kind[16];
	if (!kiln_fs_exists(exit_file))
		return kiln_error_set(e, KILN_E_NOTFOUND, exit_file, "the trainer's exit was not "
				      "recorded (its supervisor was killed)");
	if ((rc = kiln_fs_read(exit_file, &b, e)))
		return rc;
	rc = kiln_buf_add(&b, "", 1) ? -1 : sscanf(b.data, "%15s %d", kind, &v);
	kiln_buf_release(&b);
	if (rc != 2 || v < 0 || v > 255 || (strcmp(kind, "exit") && strcmp(kind, "signal")))
		return kiln_error_set(e, KILN_E_IO, exit_file, "not an exit record");
	*status = strcmp(kind, "exit") ? 128 + v : v;
	return 0;
}

/* --- the metadata check -------------------------------------------------------------------- */

static int mismatch(struct kiln_error *e, const char *where, const char *key, const char *got,
		    const char *want)
{
	return kiln_error_set(e, KILN_E_FAILED, where, "%s is %s in the trained file but %s in the "
			      "manifest it was trained from", key, got, want);
}

static int check_u64(json_t *meta, const char *key, uint64_t want, const char *where,
		     struct kiln_error *e)
{
	const char *v = json_string_value(json_object_get(meta, key));
	char w[32], *end;
	unsigned long long got;
	snprintf(w, sizeof w, "%llu", (unsigned long long)want);
	if (!v)
		return mismatch(e, where, key, "missing", w);
	errno = 0;
	got = strtoull(v, &end, 10);
	if (errno || end == v || *end || got != want || *v == '-')
		return mismatch(e, where, key, v, w);
	return 0;
}

static int check_dirs(json_t *meta, const struct kiln_train_expect *x, const char *where,
		      struct kiln_error *e)
{
	const char *text = json_string_value(json_object_get(meta, "ss_dataset_dirs"));
	json_t *d = text ? json_loads(text, 0, NULL) : NULL;
	char got[64], want[64];
	int rc = 0;
	if (!json_is_object(d)) {
		json_decref(d);
		return mismatch(e, where, "ss_dataset_dirs", text ? "not a JSON object" : "missing",
				"the dataset folders");
	}
	for (size_t i = 0; i < x->ndirs && !rc; i++) {
		json_t *v = json_object_get(d, x->dirs[i].name);
		json_t *n = json_object_get(v, "img_count"), *r = json_object_get(v, "n_repeats");
		char key[300];
		snprintf(key, sizeof key, "ss_dataset_dirs[\"%s\"]", x->dirs[i].name);
		snprintf(want, sizeof want, "%llu images x %llu repeats",
			 (unsigned long long)x->dirs[i].images, (unsigned long long)x->dirs[i].repeats);
		if (!v) {
			rc = mismatch(e, where, key, "missing", want);
		} else if (!json_is_integer(n) || !json_is_integer(r) ||
			   json_integer_value(n) != (json_int_t)x->dirs[i].images ||
			   json_integer_value(r) != (json_int_t)x->dirs[i].repeats) {
			snprintf(got, sizeof got, "%lld images x %lld repeats",
				 json_is_integer(n) ? (long long)json_integer_value(n) : -1LL,
				 json_is_integer(r) ? (long long)json_integer_value(r) : -1LL);
			rc = mismatch(e, where, key, got, want);
		}
	}
	if (!rc && json_object_size(d) != x->ndirs) {
		snprintf(got, sizeof got, "%zu folders", json_object_size(d));
		snprintf(want, sizeof want, "%zu", x->ndirs);
		rc = mismatch(e, where, "ss_dataset_dirs", got, want);
	}
	json_decref(d);
	return rc;
}

static int check_str(json_t *meta, const char *key, const char *want, const char *where,
		     struct kiln_error *e)
{
	const char *v = json_string_value(json_object_get(meta, key));
	if (!want || (v && !strcmp(v, want)))
		return 0;
	return mismatch(e, where, key, v ? v : "missing", want);
}

int kiln_train_check_metadata(const char *metadata_json, const struct kiln_train_expect *x,
			      const char *where, struct kiln_error *e)
{
	json_t *meta = json_loads(metadata_json ? metadata_json : "", 0, NULL);
	uint64_t total = 0;
	int rc;
	if (!json_is_object(meta)) {
		json_decref(meta);
		return kiln_error_set(e, KILN_E_FAILED, where, "the file has no kohya metadata "
				      "(trained with --no_metadata?): it cannot be checked against the "
				      "manifest");
	}
	for (size_t i = 0; i < x->ndirs; i++)
		total += x->dirs[i].images * x->dirs[i].repeats;
	if (!(rc = check_u64(meta, "ss_num_train_images", total, where, e)) &&
	    !(rc = check_dirs(meta, x, where, e)) &&
	    !(rc = check_str(meta, "ss_base_model_version", x->base_version, where, e)) &&
	    !(rc = check_str(meta, "ss_sd_model_name", x->base_name, where, e)) &&
	    !(rc = x->has_seed ? check_u64(meta, "ss_seed", x->seed, where, e) : 0))
		rc = x->has_steps ? check_u64(meta, "ss_steps", x->steps, where, e) : 0;
	json_decref(meta);
	return rc;
}

int kiln_train_file_sha256(const char *path, char hex[65], struct kiln_error *e)
{
	return kiln_sha256_file(path, hex, e);
}
