/*
 * events.c - event hooks (docs/hooks.md): on upload, download, delete,
 * rename, mkdir, login, login failure and quota exceeded, run a command
 * (hook_command) and/or POST a JSON webhook (webhook_url). The engine is
 * the one source of events: the call sites are in commit.c (upload,
 * quota), api.c (download, delete, rename, mkdir, quota), upload.c (quota)
 * and auth.c (login, login_failed), so every protocol fires the same
 * events, once.
 *
 * Design notes
 * ------------
 *  E1. sd__event() never blocks the caller on a hook: it copies the event
 *      into a bounded queue per sink (hook_queue) under a mutex and
 *      returns. A full queue drops the event (counted in
 *      storaged_hook_events_dropped_total, logged at most once a second).
 *  E2. Commands run on hook_concurrency worker threads, each through
 *      /bin/sh -c with the event in STORAGED_* environment variables and as
 *      one JSON object on stdin; stdout and stderr are kept (4 KiB) for
 *      the log. A command that outlives hook_timeout is killed with its
 *      process group. A non-zero exit, a signal (a crash) or a timeout is
 *      logged at warn with what the command printed.
 *  E3. Webhooks go out from one thread, in order, with libcurl: POST of
 *      the JSON, X-Storaged-Event, X-Storaged-Delivery (random id, the
 *      same on retries) and, with webhook_secret, X-Storaged-Signature:
 *      sha256=<hex HMAC-SHA256 of the body>. A failure (no 2xx, no answer
 *      within webhook_timeout) is retried webhook_retries times after 1, 2,
 *      4 ... (at most 60) seconds; the last failure is logged at warn.
 *  E4. Events fire only in the daemon (sd__events_start from main.c):
 *      storagectl changes nothing that would be reported twice, and a
 *      replication run fires nothing.
 *  E5. HTTP authenticates every request: a login event of an HTTP session
 *      fires once per user and address within LOGIN_QUIET_MS, not per
 *      request. Failed logins always fire.
 *  E6. The JSON has a "text" member, a sentence for people, so a
 *      Slack-style incoming webhook (which posts "text") takes it as is.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "log.h"
#include "sys.h"

extern char **environ;

#define HOOK_OUTPUT_MAX 4096
#define LOGIN_QUIET_MS (5 * 60 * 1000)
#define LOGIN_SLOTS 128

static const char *const ev_names[SD_EV_N] = {"upload", "download", "delete", "rename",
					      "mkdir", "login", "login_failed", "quota_exceeded"};

typedef struct sd_event {
	int type;
	int64_t ts;
	char *user, *proto, *addr, *path, *target, *method, *reason, *sha256;
	int64_t size; /* -1: not given */
	char delivery[33];
} sd_event;

typedef struct evq {
	sd_event **items;
	int cap, head, n;
} evq;

typedef struct login_slot {
	int64_t uid, at;
	char addr[64];
} login_slot;

struct sd_events {
	sd_core *c;
	unsigned cmd_mask, web_mask; /* 1 << type */
	pthread_mutex_t m;
	pthread_cond_t cv;   /* work queued, or stop */
	int stop;
	evq cq, wq;
	pthread_t *cthr;
	int ncthr;
	pthread_t wthr;
	int wstarted;
	int64_t last_drop_log;
	login_slot logins[LOGIN_SLOTS];
};

/* ------------------------------------------------------------ events */

static char *dup0(const char *s)
{
	return s && *s ? sd_xstrdup(s) : NULL;
}

static void ev_free(sd_event *e)
{
	if (!e)
		return;
	free(e->user), free(e->proto), free(e->addr), free(e->path), free(e->target);
	free(e->method), free(e->reason), free(e->sha256);
	free(e);
}

static sd_event *ev_dup(const sd_event *e)
{
	sd_event *d = sd_xcalloc(1, sizeof *d);
	*d = *e;
	d->user = dup0(e->user), d->proto = dup0(e->proto), d->addr = dup0(e->addr);
	d->path = dup0(e->path), d->target = dup0(e->target), d->method = dup0(e->method);
	d->reason = dup0(e->reason), d->sha256 = dup0(e->sha256);
	return d;
}

int sd__event_type(const char *name)
{
	for (int i = 0; i < SD_EV_N; i++)
		if (strcmp(name, ev_names[i]) == 0)
			return i;
	return -1;
}

int sd__event_mask(const char *list, unsigned *mask)
{
	*mask = 0;
	if (!list || !*list || strcmp(list, "all") == 0) {
		*mask = (1u << SD_EV_N) - 1;
		return 0;
	}
	char buf[512];
	snprintf(buf, sizeof buf, "%s", list);
	for (char *save = NULL, *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
		int k = sd__event_type(t);
		if (k < 0)
			return -EINVAL;
		*mask |= 1u << k;
	}
	return 0;
}

static int q_push(evq *q, sd_event *e)
{
	if (q->n >= q->cap)
		return -1;
	q->items[(q->head + q->n) % q->cap] = e;
	q->n++;
	return 0;
}

static sd_event *q_pop(evq *q)
{
	if (!q->n)
		return NULL;
	sd_event *e = q->items[q->head];
	q->head = (q->head + 1) % q->cap;
	q->n--;
	return e;
}

/* E5: fire this HTTP login? (lock held) */
static int login_due(struct sd_events *ev, int64_t uid, const char *addr, int64_t now)
{
	login_slot *old = &ev->logins[0];
	for (int i = 0; i < LOGIN_SLOTS; i++) {
		login_slot *l = &ev->logins[i];
		if (l->uid == uid && strcmp(l->addr, addr) == 0) {
			if (now - l->at < LOGIN_QUIET_MS)
				return 0;
			l->at = now;
			return 1;
		}
		if (l->at < old->at)
			old = l;
	}
	old->uid = uid;
	old->at = now;
	snprintf(old->addr, sizeof old->addr, "%s", addr);
	return 1;
}

static void emit(sd_core *c, sd_event *e, int64_t uid)
{
	struct sd_events *ev = c->events;
	if (!ev)
		return;
	unsigned bit = 1u << e->type;
	if (!((ev->cmd_mask | ev->web_mask) & bit))
		return;
	e->ts = sd_time_ms();
	unsigned char rnd[16];
	if (sd_random_bytes(rnd, sizeof rnd) == 0)
		sd_hex(rnd, sizeof rnd, e->delivery);
	int dropped = 0, logit = 0;
	pthread_mutex_lock(&ev->m);
	if (e->type == SD_EV_LOGIN && e->proto && strcmp(e->proto, "http") == 0 &&
	    !login_due(ev, uid, e->addr ? e->addr : "", e->ts)) {
		pthread_mutex_unlock(&ev->m);
		return;
	}
	if (!ev->stop) {
		if ((ev->cmd_mask & bit) && ev->ncthr) {
			sd_event *d = ev_dup(e);
			if (q_push(&ev->cq, d) < 0) {
				ev_free(d);
				dropped++;
			}
		}
		if ((ev->web_mask & bit) && ev->wstarted) {
			sd_event *d = ev_dup(e);
			if (q_push(&ev->wq, d) < 0) {
				ev_free(d);
				dropped++;
			}
		}
		pthread_cond_broadcast(&ev->cv);
	}
	if (dropped && e->ts - ev->last_drop_log >= 1000) {
		ev->last_drop_log = e->ts;
		logit = 1;
	}
	pthread_mutex_unlock(&ev->m);
	if (dropped) {
		sd__metric_add(c, "storaged_hook_events_dropped_total", NULL, dropped);
		if (logit)
			sd_log(SD_LOG_WARN, "hook", "event=hook_dropped type=%s reason=\"queue full\"",
			       ev_names[e->type]);
	}
}

void sd__event(sd_core *c, int type, const sd_principal *u, const char *path, const char *target,
	       int64_t size, const char *sha256, const char *reason)
{
	if (!c || !c->events || type < 0 || type >= SD_EV_N)
		return;
	sd_event e = {.type = type, .size = size};
	e.user = (char *)(u ? u->name : NULL);
	e.proto = (char *)(u ? u->proto : NULL);
	e.addr = (char *)(u ? u->addr : NULL);
	e.path = (char *)path;
	e.target = (char *)target;
	e.sha256 = (char *)sha256;
	e.reason = (char *)reason;
	emit(c, &e, u ? u->id : 0);
}

void sd__event_login(sd_core *c, int type, int64_t uid, const char *user, const char *proto,
		     const char *addr, const char *method, const char *reason)
{
	if (!c || !c->events)
		return;
	sd_event e = {.type = type, .size = -1};
	e.user = (char *)user;
	e.proto = (char *)proto;
	e.addr = (char *)addr;
	e.method = (char *)method;
	e.reason = (char *)reason;
	emit(c, &e, uid);
}

/* ------------------------------------------------------------ JSON */

static void json_str(sd_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = strlen(s);
	int utf8 = sd_utf8_valid(s, n);
	sd_buf_puts(b, "\"");
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '"' || ch == '\\') {
			char esc[2] = {'\\', (char)ch};
			sd_buf_append(b, esc, 2);
		} else if (ch < 0x20 || ch == 0x7f || (ch >= 0x80 && !utf8)) {
			char esc[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
			sd_buf_append(b, esc, 6);
		} else {
			sd_buf_append(b, (const char *)&ch, 1);
		}
	}
	sd_buf_puts(b, "\"");
}

static void member(sd_buf *b, const char *key, const char *val)
{
	if (!val)
		return;
	sd_buf_printf(b, ",\"%s\":", key);
	json_str(b, val);
}

static void iso_time(int64_t ms, char out[80])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(out, 80, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* A sentence for people (E6). */
static void sentence(const sd_event *e, sd_buf *b)
{
	const char *u = e->user ? e->user : "someone";
	const char *p = e->path ? e->path : "";
	switch (e->type) {
	case SD_EV_UPLOAD: sd_buf_printf(b, "%s uploaded %s (%lld bytes)", u, p, (long long)e->size); break;
	case SD_EV_DOWNLOAD: sd_buf_printf(b, "%s downloaded %s (%lld bytes)", u, p, (long long)e->size); break;
	case SD_EV_DELETE: sd_buf_printf(b, "%s deleted %s", u, p); break;
	case SD_EV_RENAME: sd_buf_printf(b, "%s renamed %s to %s", u, p, e->target ? e->target : ""); break;
	case SD_EV_MKDIR: sd_buf_printf(b, "%s made the folder %s", u, p); break;
	case SD_EV_LOGIN: sd_buf_printf(b, "%s logged in", u); break;
	case SD_EV_LOGIN_FAILED: sd_buf_printf(b, "failed login as %s", e->user ? e->user : "(none)"); break;
	case SD_EV_QUOTA: sd_buf_printf(b, "%s is over quota writing %s", u, p); break;
	}
	if (e->proto)
		sd_buf_printf(b, " over %s", e->proto);
	if (e->addr)
		sd_buf_printf(b, " from %s", e->addr);
}

static char *ev_json(const sd_event *e)
{
	sd_buf b = SD_BUF_INIT, t = SD_BUF_INIT;
	char when[80];
	iso_time(e->ts, when);
	sd_buf_printf(&b, "{\"event\":\"%s\",\"time\":\"%s\",\"ts\":%lld", ev_names[e->type], when,
		      (long long)e->ts);
	member(&b, "user", e->user);
	member(&b, "proto", e->proto);
	member(&b, "addr", e->addr);
	member(&b, "path", e->path);
	member(&b, "target", e->target);
	if (e->size >= 0)
		sd_buf_printf(&b, ",\"size\":%lld", (long long)e->size);
	member(&b, "sha256", e->sha256);
	member(&b, "method", e->method);
	member(&b, "reason", e->reason);
	sentence(e, &t);
	member(&b, "text", t.data ? t.data : "");
	sd_buf_puts(&b, "}");
	sd_buf_free(&t);
	return sd_buf_steal(&b);
}

/* ------------------------------------------------------------ commands */

static void env_add(char ***env, int *n, const char *key, const char *val)
{
	if (!val)
		return;
	*env = realloc(*env, sizeof(char *) * (size_t)(*n + 2));
	if (!*env)
		abort();
	(*env)[(*n)++] = sd_xasprintf("%s=%s", key, val);
	(*env)[*n] = NULL;
}

static void run_command(struct sd_events *ev, sd_event *e)
{
	sd_core *c = ev->c;
	const sd_conf *conf = c->conf;
	char *json = ev_json(e);
	char **env = NULL;
	int nenv = 0;
	for (char **p = environ; p && *p; p++) {
		if (strncmp(*p, "STORAGED_", 9) == 0)
			continue; /* only the event's own */
		env = realloc(env, sizeof(char *) * (size_t)(nenv + 2));
		if (!env)
			abort();
		env[nenv++] = sd_xstrdup(*p);
		env[nenv] = NULL;
	}
	char when[80], size[32], ts[32];
	iso_time(e->ts, when);
	snprintf(ts, sizeof ts, "%lld", (long long)e->ts);
	env_add(&env, &nenv, "STORAGED_EVENT", ev_names[e->type]);
	env_add(&env, &nenv, "STORAGED_TIME", when);
	env_add(&env, &nenv, "STORAGED_TS", ts);
	env_add(&env, &nenv, "STORAGED_USER", e->user);
	env_add(&env, &nenv, "STORAGED_PROTO", e->proto);
	env_add(&env, &nenv, "STORAGED_ADDR", e->addr);
	env_add(&env, &nenv, "STORAGED_PATH", e->path);
	env_add(&env, &nenv, "STORAGED_TARGET", e->target);
	if (e->size >= 0) {
		snprintf(size, sizeof size, "%lld", (long long)e->size);
		env_add(&env, &nenv, "STORAGED_SIZE", size);
	}
	env_add(&env, &nenv, "STORAGED_SHA256", e->sha256);
	env_add(&env, &nenv, "STORAGED_METHOD", e->method);
	env_add(&env, &nenv, "STORAGED_REASON", e->reason);

	int in[2] = {-1, -1}, outp[2] = {-1, -1};
	pid_t pid = -1;
	int rc = pipe2(in, O_CLOEXEC) < 0 || pipe2(outp, O_CLOEXEC) < 0 ? -errno : 0;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	if (rc == 0) {
		posix_spawn_file_actions_adddup2(&fa, in[0], 0);
		posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
		posix_spawn_file_actions_adddup2(&fa, outp[1], 2);
		posix_spawn_file_actions_addclosefrom_np(&fa, 3);
		sigset_t none, def;
		sigemptyset(&none);
		sigemptyset(&def);
		sigaddset(&def, SIGPIPE);
		sigaddset(&def, SIGTERM);
		sigaddset(&def, SIGINT);
		sigaddset(&def, SIGHUP);
		posix_spawnattr_setsigmask(&at, &none);
		posix_spawnattr_setsigdefault(&at, &def);
		posix_spawnattr_setpgroup(&at, 0);
		posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
						  POSIX_SPAWN_SETPGROUP);
		char *argv[] = {"sh", "-c", conf->hook_command, NULL};
		int e2 = posix_spawn(&pid, "/bin/sh", &fa, &at, argv, env);
		if (e2)
			rc = -e2, pid = -1;
	}
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (in[0] >= 0)
		close(in[0]);
	if (outp[1] >= 0)
		close(outp[1]);
	char output[HOOK_OUTPUT_MAX + 1];
	size_t olen = 0;
	int status = 0, exited = 0, timed_out = 0;
	int64_t t0 = sd_mono_ms(), deadline = t0 + conf->hook_timeout;
	if (pid > 0) {
		/* the event on stdin (a command that does not read it is fine) */
		fcntl(in[1], F_SETFL, O_NONBLOCK);
		size_t jl = strlen(json), off = 0;
		fcntl(outp[0], F_SETFL, O_NONBLOCK);
		while (!exited) {
			struct pollfd pf[2] = {{outp[0], POLLIN, 0}, {in[1], POLLOUT, 0}};
			int nf = in[1] >= 0 ? 2 : 1;
			int64_t left = deadline - sd_mono_ms();
			if (left <= 0) {
				timed_out = 1;
				break;
			}
			poll(pf, (nfds_t)nf, left < 50 ? (int)left : 50);
			if (in[1] >= 0 && (pf[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
				ssize_t w = write(in[1], json + off, jl - off);
				if (w > 0)
					off += (size_t)w;
				if (w < 0 || off == jl) {
					close(in[1]);
					in[1] = -1;
				}
			}
			if (pf[0].revents & (POLLIN | POLLHUP)) {
				char tmp[1024];
				ssize_t r = read(outp[0], tmp, sizeof tmp);
				if (r > 0) {
					size_t k = (size_t)r;
					if (k > HOOK_OUTPUT_MAX - olen)
						k = HOOK_OUTPUT_MAX - olen;
					memcpy(output + olen, tmp, k);
					olen += k;
				}
			}
			if (waitpid(pid, &status, WNOHANG) == pid)
				exited = 1;
		}
		if (!exited) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
		}
		/* what is left in the pipe (without waiting for grandchildren) */
		for (;;) {
			char tmp[1024];
			ssize_t r = read(outp[0], tmp, sizeof tmp);
			if (r <= 0)
				break;
			size_t k = (size_t)r;
			if (k > HOOK_OUTPUT_MAX - olen)
				k = HOOK_OUTPUT_MAX - olen;
			memcpy(output + olen, tmp, k);
			olen += k;
		}
	}
	if (in[1] >= 0)
		close(in[1]);
	if (outp[0] >= 0)
		close(outp[0]);
	output[olen] = '\0';
	while (olen && (output[olen - 1] == '\n' || output[olen - 1] == '\r'))
		output[--olen] = '\0';
	char qo[2 * HOOK_OUTPUT_MAX + 1];
	sd_kv_quote(output, qo, sizeof qo);
	int64_t ms = sd_mono_ms() - t0;
	const char *result;
	if (pid < 0) {
		result = "failed";
		sd_log(SD_LOG_WARN, "hook", "event=hook_failed type=%s reason=\"cannot run: %s\"",
		       ev_names[e->type], strerror(-rc));
	} else if (timed_out) {
		result = "timeout";
		sd_log(SD_LOG_WARN, "hook", "event=hook_timeout type=%s ms=%lld output=\"%s\"",
		       ev_names[e->type], (long long)ms, qo);
	} else if (WIFSIGNALED(status)) {
		result = "failed";
		sd_log(SD_LOG_WARN, "hook", "event=hook_failed type=%s signal=%d%s ms=%lld output=\"%s\"",
		       ev_names[e->type], WTERMSIG(status), WCOREDUMP(status) ? " core=1" : "",
		       (long long)ms, qo);
	} else if (WEXITSTATUS(status) != 0) {
		result = "failed";
		sd_log(SD_LOG_WARN, "hook", "event=hook_failed type=%s exit=%d ms=%lld output=\"%s\"",
		       ev_names[e->type], WEXITSTATUS(status), (long long)ms, qo);
	} else {
		result = "ok";
		sd_log(SD_LOG_DEBUG, "hook", "event=hook_done type=%s ms=%lld", ev_names[e->type],
		       (long long)ms);
	}
	char labels[64];
	snprintf(labels, sizeof labels, "kind=\"command\",result=\"%s\"", result);
	sd__metric_add(c, "storaged_hooks_total", labels, 1);
	for (int i = 0; i < nenv; i++)
		free(env[i]);
	free(env);
	free(json);
}

static void *cmd_main(void *arg)
{
	struct sd_events *ev = arg;
	pthread_mutex_lock(&ev->m);
	for (;;) {
		while (!ev->cq.n && !ev->stop)
			pthread_cond_wait(&ev->cv, &ev->m);
		if (ev->stop)
			break;
		sd_event *e = q_pop(&ev->cq);
		pthread_mutex_unlock(&ev->m);
		run_command(ev, e);
		ev_free(e);
		pthread_mutex_lock(&ev->m);
	}
	pthread_mutex_unlock(&ev->m);
	return NULL;
}

/* ------------------------------------------------------------ webhooks */

static size_t discard(char *p, size_t sz, size_t n, void *arg)
{
	(void)p, (void)arg;
	return sz * n;
}

/* Wait ms unless stopping; 1 when stopping. */
static int pause_ms(struct sd_events *ev, int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L)
		ts.tv_sec++, ts.tv_nsec -= 1000000000L;
	pthread_mutex_lock(&ev->m);
	while (!ev->stop && pthread_cond_timedwait(&ev->cv, &ev->m, &ts) == 0)
		;
	int stop = ev->stop;
	pthread_mutex_unlock(&ev->m);
	return stop;
}

static void send_webhook(struct sd_events *ev, CURL *cu, sd_event *e)
{
	sd_core *c = ev->c;
	const sd_conf *conf = c->conf;
	char *json = ev_json(e);
	struct curl_slist *h = NULL;
	char hb[256];
	h = curl_slist_append(h, "Content-Type: application/json");
	snprintf(hb, sizeof hb, "User-Agent: storaged/%s", SD_VERSION);
	h = curl_slist_append(h, hb);
	snprintf(hb, sizeof hb, "X-Storaged-Event: %s", ev_names[e->type]);
	h = curl_slist_append(h, hb);
	snprintf(hb, sizeof hb, "X-Storaged-Delivery: %s", e->delivery);
	h = curl_slist_append(h, hb);
	if (conf->webhook_secret && *conf->webhook_secret) {
		unsigned char mac[32];
		unsigned int ml = 0;
		char hex[65];
		HMAC(EVP_sha256(), conf->webhook_secret, (int)strlen(conf->webhook_secret),
		     (const unsigned char *)json, strlen(json), mac, &ml);
		sd_hex(mac, 32, hex);
		snprintf(hb, sizeof hb, "X-Storaged-Signature: sha256=%s", hex);
		h = curl_slist_append(h, hb);
	}
	const char *result = "failed";
	long code = 0;
	char err[CURL_ERROR_SIZE] = "";
	for (int attempt = 0; attempt <= conf->webhook_retries; attempt++) {
		if (attempt > 0) {
			int64_t wait = 1000LL << (attempt - 1 > 6 ? 6 : attempt - 1);
			if (wait > 60000)
				wait = 60000;
			if (pause_ms(ev, wait))
				break;
		}
		curl_easy_reset(cu);
		curl_easy_setopt(cu, CURLOPT_URL, conf->webhook_url);
		curl_easy_setopt(cu, CURLOPT_POSTFIELDS, json);
		curl_easy_setopt(cu, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(cu, CURLOPT_TIMEOUT_MS, (long)conf->webhook_timeout);
		curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, discard);
		curl_easy_setopt(cu, CURLOPT_ERRORBUFFER, err);
		curl_easy_setopt(cu, CURLOPT_PROTOCOLS_STR, "http,https");
		err[0] = '\0';
		CURLcode cr = curl_easy_perform(cu);
		code = 0;
		curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &code);
		if (cr == CURLE_OK && code >= 200 && code < 300) {
			result = "ok";
			break;
		}
		if (cr != CURLE_OK && !err[0])
			snprintf(err, sizeof err, "%s", curl_easy_strerror(cr));
		sd_log(SD_LOG_DEBUG, "hook", "event=webhook_retry type=%s attempt=%d status=%ld err=\"%s\"",
		       ev_names[e->type], attempt + 1, code, err);
	}
	if (strcmp(result, "ok") != 0)
		sd_log(SD_LOG_WARN, "hook", "event=webhook_failed type=%s delivery=%s status=%ld "
		       "err=\"%s\" attempts=%lld", ev_names[e->type], e->delivery, code, err,
		       (long long)conf->webhook_retries + 1);
	char labels[64];
	snprintf(labels, sizeof labels, "kind=\"webhook\",result=\"%s\"", result);
	sd__metric_add(c, "storaged_hooks_total", labels, 1);
	curl_slist_free_all(h);
	free(json);
}

static void *web_main(void *arg)
{
	struct sd_events *ev = arg;
	CURL *cu = curl_easy_init();
	pthread_mutex_lock(&ev->m);
	for (;;) {
		while (!ev->wq.n && !ev->stop)
			pthread_cond_wait(&ev->cv, &ev->m);
		if (ev->stop)
			break;
		sd_event *e = q_pop(&ev->wq);
		pthread_mutex_unlock(&ev->m);
		if (cu)
			send_webhook(ev, cu, e);
		ev_free(e);
		pthread_mutex_lock(&ev->m);
	}
	pthread_mutex_unlock(&ev->m);
	if (cu)
		curl_easy_cleanup(cu);
	return NULL;
}

/* ------------------------------------------------------------ lifecycle */

int sd__events_start(sd_core *c)
{
	const sd_conf *conf = c->conf;
	int cmd = conf->hook_command && *conf->hook_command;
	int web = conf->webhook_url && *conf->webhook_url;
	if (!cmd && !web)
		return 0;
	struct sd_events *ev = sd_xcalloc(1, sizeof *ev);
	ev->c = c;
	if (sd__event_mask(conf->hook_events, &ev->cmd_mask) < 0 ||
	    sd__event_mask(conf->webhook_events, &ev->web_mask) < 0) {
		free(ev);
		return -EINVAL;
	}
	if (!cmd)
		ev->cmd_mask = 0;
	if (!web)
		ev->web_mask = 0;
	pthread_mutex_init(&ev->m, NULL);
	pthread_cond_init(&ev->cv, NULL);
	ev->cq.cap = ev->wq.cap = (int)conf->hook_queue;
	ev->cq.items = sd_xcalloc((size_t)ev->cq.cap, sizeof(sd_event *));
	ev->wq.items = sd_xcalloc((size_t)ev->wq.cap, sizeof(sd_event *));
	c->events = ev;
	if (cmd) {
		ev->cthr = sd_xcalloc((size_t)conf->hook_concurrency, sizeof(pthread_t));
		for (int i = 0; i < conf->hook_concurrency; i++) {
			if (pthread_create(&ev->cthr[i], NULL, cmd_main, ev) != 0)
				break;
			ev->ncthr++;
		}
	}
	if (web) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		if (pthread_create(&ev->wthr, NULL, web_main, ev) == 0)
			ev->wstarted = 1;
	}
	sd_log(SD_LOG_INFO, "hook", "event=hooks_started command=%s webhook=%s workers=%d",
	       cmd ? "yes" : "no", web ? "yes" : "no", ev->ncthr);
	return 0;
}

void sd__events_stop(sd_core *c)
{
	struct sd_events *ev = c->events;
	if (!ev)
		return;
	pthread_mutex_lock(&ev->m);
	ev->stop = 1;
	int left = ev->cq.n + ev->wq.n;
	pthread_cond_broadcast(&ev->cv);
	pthread_mutex_unlock(&ev->m);
	for (int i = 0; i < ev->ncthr; i++)
		pthread_join(ev->cthr[i], NULL);
	if (ev->wstarted)
		pthread_join(ev->wthr, NULL);
	if (left)
		sd_log(SD_LOG_WARN, "hook", "event=hooks_stopped undelivered=%d", left);
	c->events = NULL;
	sd_event *e;
	while ((e = q_pop(&ev->cq)))
		ev_free(e);
	while ((e = q_pop(&ev->wq)))
		ev_free(e);
	free(ev->cq.items);
	free(ev->wq.items);
	free(ev->cthr);
	pthread_mutex_destroy(&ev->m);
	pthread_cond_destroy(&ev->cv);
	free(ev);
	if (c->conf->webhook_url && *c->conf->webhook_url)
		curl_global_cleanup();
}
