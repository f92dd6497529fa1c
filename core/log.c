/*
 * log.c - the process-wide logger.
 *
 * Design notes
 * ------------
 * 1. One event is one line: "<ISO-8601 UTC with ms> level=L src=S <msg>\n".
 *    Newlines, other control characters and DEL inside src or msg are
 *    escaped ("\n", "\r", "\t", "\\xNN"), so a client-chosen string that
 *    reaches a log message cannot forge a second line. A line is capped at
 *    SD_LOG_LINE_MAX bytes; a longer one is cut and ends in "...".
 * 2. Each line is formatted into a stack buffer and written with a single
 *    write(2) on an O_APPEND descriptor, so lines from concurrent threads
 *    never interleave (a short write, which only a full disk or a signal
 *    causes, is completed by a second write). The logger calls write(2)
 *    itself rather than sd_sys_write(): the fault seam in sys.c must not
 *    consume injected failures meant for data writes.
 * 4. log_format = json turns each line into one JSON object: "ts", "level",
 *    "src", then the message's key=value pairs in order (a quoted value
 *    with \" and \\ unescaped; a bare value runs to the next " key=";
 *    a bare integer or decimal becomes a JSON number; text that is not a
 *    pair goes to "msg"). Bytes that are not UTF-8 become \u00XX, so the
 *    line is always valid JSON. Callers write the same key=value messages
 *    for both formats.
 * 5. The access log and the xferlog (SD_LOGF_*) are files of their own,
 *    written like the main one (single write, O_APPEND) and reopened with
 *    it on SIGHUP.
 * 3. Writers take no lock. The descriptor number never changes while the
 *    log is open: sd_log_reopen() opens the file anew and dup3()s it onto the
 *    same number, which atomically swaps the file under any writer. The
 *    mutex only serialises open/reopen/close against each other.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "storaged.h"
#include "util.h"

#define SD_LOG_LINE_MAX 8192

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int log_fd = 2;            /* stderr until a file is opened */
static atomic_int log_level = SD_LOG_INFO;
static char *log_path;                   /* NULL = stderr; under log_lock */
static atomic_int log_fmt = SD_LOG_FMT_KV;
static atomic_int aux_fd[SD_LOGF_N] = {-1, -1};
static char *aux_path[SD_LOGF_N];        /* under log_lock */

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int sd_log_level_parse(const char *s)
{
	if (!s)
		return -1;
	for (int i = 0; i < 4; i++)
		if (strcmp(s, level_names[i]) == 0)
			return i;
	if (strcmp(s, "warning") == 0)
		return SD_LOG_WARN;
	return -1;
}

const char *sd_log_level_name(int level)
{
	if (level < SD_LOG_DEBUG || level > SD_LOG_ERROR)
		return "?";
	return level_names[level];
}

static int clamp_level(int level)
{
	if (level < SD_LOG_DEBUG)
		return SD_LOG_DEBUG;
	if (level > SD_LOG_ERROR)
		return SD_LOG_ERROR;
	return level;
}

static int open_file(const char *path)
{
	int fd;
	do
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return -errno;
	if (fd <= 2) {
		/* started with a closed standard descriptor: keep 0-2 free so a
		 * log file is never mistaken for stderr */
		int hi = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		int e = errno;
		close(fd);
		if (hi < 0)
			return -e;
		fd = hi;
	}
	return fd;
}

int sd_log_open(const char *path, int level)
{
	int rc = 0;
	pthread_mutex_lock(&log_lock);
	if (path && *path) {
		int fd = open_file(path);
		if (fd < 0) {
			rc = fd;
		} else {
			int old = atomic_load(&log_fd);
			if (old > 2) {
				/* keep the number stable for concurrent writers */
				if (dup3(fd, old, O_CLOEXEC) < 0)
					rc = -errno;
				close(fd);
			} else {
				atomic_store(&log_fd, fd);
			}
			if (rc == 0) {
				free(log_path);
				log_path = sd_xstrdup(path);
			}
		}
	} else {
		int old = atomic_exchange(&log_fd, 2);
		if (old > 2)
			close(old);
		free(log_path);
		log_path = NULL;
	}
	if (rc == 0)
		atomic_store(&log_level, clamp_level(level));
	pthread_mutex_unlock(&log_lock);
	return rc;
}

int sd_log_file_open(int which, const char *path)
{
	if (which < 0 || which >= SD_LOGF_N)
		return -EINVAL;
	int rc = 0;
	pthread_mutex_lock(&log_lock);
	int old = atomic_load(&aux_fd[which]);
	if (path && *path) {
		int fd = open_file(path);
		if (fd < 0) {
			rc = fd;
		} else if (old >= 0) {
			if (dup3(fd, old, O_CLOEXEC) < 0)
				rc = -errno;
			close(fd);
		} else {
			atomic_store(&aux_fd[which], fd);
		}
		if (rc == 0) {
			free(aux_path[which]);
			aux_path[which] = sd_xstrdup(path);
		}
	} else {
		atomic_store(&aux_fd[which], -1);
		if (old >= 0)
			close(old);
		free(aux_path[which]);
		aux_path[which] = NULL;
	}
	pthread_mutex_unlock(&log_lock);
	return rc;
}

int sd_log_file_is_open(int which)
{
	return which >= 0 && which < SD_LOGF_N && atomic_load(&aux_fd[which]) >= 0;
}

void sd_log_set_format(int fmt)
{
	atomic_store(&log_fmt, fmt == SD_LOG_FMT_JSON ? SD_LOG_FMT_JSON : SD_LOG_FMT_KV);
}

int sd_log_get_format(void)
{
	return atomic_load(&log_fmt);
}

int sd_log_format_parse(const char *s)
{
	if (s && strcmp(s, "kv") == 0)
		return SD_LOG_FMT_KV;
	if (s && strcmp(s, "json") == 0)
		return SD_LOG_FMT_JSON;
	return -1;
}

void sd_log_reopen(void)
{
	pthread_mutex_lock(&log_lock);
	for (int i = 0; i < SD_LOGF_N; i++) {
		int cur = atomic_load(&aux_fd[i]);
		if (aux_path[i] && cur >= 0) {
			int fd = open_file(aux_path[i]);
			if (fd >= 0) {
				(void)dup3(fd, cur, O_CLOEXEC);
				close(fd);
			}
		}
	}
	int cur = atomic_load(&log_fd);
	if (log_path && cur > 2) {
		int fd = open_file(log_path);
		if (fd >= 0) {
			(void)dup3(fd, cur, O_CLOEXEC);
			close(fd);
		}
		/* if the file cannot be reopened, keep writing to the old one */
	}
	pthread_mutex_unlock(&log_lock);
}

void sd_log_close(void)
{
	for (int i = 0; i < SD_LOGF_N; i++)
		sd_log_file_open(i, NULL);
	pthread_mutex_lock(&log_lock);
	int old = atomic_exchange(&log_fd, 2);
	if (old > 2)
		close(old);
	free(log_path);
	log_path = NULL;
	pthread_mutex_unlock(&log_lock);
}

void sd_log_set_level(int level)
{
	atomic_store(&log_level, clamp_level(level));
}

int sd_log_get_level(void)
{
	return atomic_load(&log_level);
}

/* Appends s to out[*pos..cap) escaping control characters; stops (and
 * returns 1) when it does not fit whole. */
static int put_escaped(char *out, size_t *pos, size_t cap, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t p = *pos;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[4];
		size_t n;
		if (c == '\n') {
			esc[0] = '\\', esc[1] = 'n', n = 2;
		} else if (c == '\r') {
			esc[0] = '\\', esc[1] = 'r', n = 2;
		} else if (c == '\t') {
			esc[0] = '\\', esc[1] = 't', n = 2;
		} else if (c < 0x20 || c == 0x7f) {
			esc[0] = '\\', esc[1] = 'x', esc[2] = hex[c >> 4], esc[3] = hex[c & 15], n = 4;
		} else {
			esc[0] = (char)c, n = 1;
		}
		if (p + n > cap) {
			*pos = p;
			return 1;
		}
		memcpy(out + p, esc, n);
		p += n;
	}
	*pos = p;
	return 0;
}

static void write_line(int fd, const char *line, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, line, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return; /* nowhere to report a failing log */
		}
		line += n;
		len -= (size_t)n;
	}
}

/* ---- JSON lines (note 4) */

/* Append s[0,n) as the inside of a JSON string; stops (1) when full. */
static int json_put(char *out, size_t *pos, size_t cap, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	int utf8 = sd_utf8_valid(s, n);
	size_t p = *pos;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[6];
		size_t k;
		if (c == '"' || c == '\\') {
			esc[0] = '\\', esc[1] = (char)c, k = 2;
		} else if (c == '\n') {
			esc[0] = '\\', esc[1] = 'n', k = 2;
		} else if (c == '\t') {
			esc[0] = '\\', esc[1] = 't', k = 2;
		} else if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8)) {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4], esc[5] = hex[c & 15], k = 6;
		} else {
			esc[0] = (char)c, k = 1;
		}
		if (p + k > cap) {
			*pos = p;
			return 1;
		}
		memcpy(out + p, esc, k);
		p += k;
	}
	*pos = p;
	return 0;
}

static int raw_put(char *out, size_t *pos, size_t cap, const char *s)
{
	size_t n = strlen(s);
	if (*pos + n > cap)
		return 1;
	memcpy(out + *pos, s, n);
	*pos += n;
	return 0;
}

/* Does s start with a key ("[A-Za-z0-9_.-]+=")? Its length, else 0. */
static size_t key_len(const char *s)
{
	size_t n = 0;
	while ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
	       (s[n] >= '0' && s[n] <= '9') || s[n] == '_' || s[n] == '.' || s[n] == '-')
		n++;
	return n > 0 && s[n] == '=' ? n : 0;
}

static int is_number(const char *s, size_t n)
{
	size_t i = 0, digits = 0;
	if (i < n && s[i] == '-')
		i++;
	size_t first = i;
	while (i < n && s[i] >= '0' && s[i] <= '9')
		i++, digits++;
	if (!digits || (digits > 1 && s[first] == '0') || digits > 15)
		return 0;
	if (i < n && s[i] == '.') {
		i++;
		size_t frac = 0;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++, frac++;
		if (!frac)
			return 0;
	}
	return i == n;
}

/* The message msg as JSON members after the fixed ones (note 4). */
static int json_members(char *out, size_t *pos, size_t cap, const char *msg)
{
	const char *p = msg;
	char *unq = NULL;
	int cut = 0;
	while (*p == ' ')
		p++;
	while (*p && !cut) {
		size_t kl = key_len(p);
		if (!kl) {
			cut = raw_put(out, pos, cap, ",\"msg\":\"") ||
			      json_put(out, pos, cap, p, strlen(p)) || raw_put(out, pos, cap, "\"");
			break;
		}
		cut = raw_put(out, pos, cap, ",\"") || json_put(out, pos, cap, p, kl) ||
		      raw_put(out, pos, cap, "\":");
		p += kl + 1;
		if (cut)
			break;
		if (*p == '"') {
			/* a quoted value: \" and \\ stand for themselves */
			p++;
			size_t n = 0, cap2 = strlen(p) + 1;
			free(unq);
			unq = sd_xmalloc(cap2);
			while (*p && *p != '"') {
				if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
					p++;
				unq[n++] = *p++;
			}
			if (*p == '"')
				p++;
			cut = raw_put(out, pos, cap, "\"") || json_put(out, pos, cap, unq, n) ||
			      raw_put(out, pos, cap, "\"");
		} else {
			/* a bare value: to the next " key=" */
			const char *e = p;
			for (;;) {
				const char *sp = strchr(e, ' ');
				if (!sp) {
					e = p + strlen(p);
					break;
				}
				const char *q = sp;
				while (*q == ' ')
					q++;
				if (!*q || key_len(q)) {
					e = sp;
					break;
				}
				e = q;
			}
			size_t n = (size_t)(e - p);
			if (is_number(p, n))
				cut = json_put(out, pos, cap, p, n);
			else
				cut = raw_put(out, pos, cap, "\"") || json_put(out, pos, cap, p, n) ||
				      raw_put(out, pos, cap, "\"");
			p = e;
		}
		while (*p == ' ')
			p++;
	}
	free(unq);
	return cut;
}

/* The whole line for level, src and the formatted message into line (of
 * SD_LOG_LINE_MAX bytes); its length. */
static size_t format_line(char *line, int level, const char *src, const char *msg, int msg_cut)
{
	struct timespec ts;
	struct tm tm;
	char when[96];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 ts.tv_nsec / 1000000L);
	const char *lv = sd_log_level_name(clamp_level(level));
	size_t pos = 0;
	/* room kept at the end for "...\n" or "}\n" */
	size_t cap = SD_LOG_LINE_MAX - 8;
	if (atomic_load(&log_fmt) == SD_LOG_FMT_JSON) {
		int h = snprintf(line, SD_LOG_LINE_MAX, "{\"ts\":\"%s\",\"level\":\"%s\",\"src\":\"", when,
				 lv);
		pos = (size_t)h;
		const char *sr = src ? src : "-";
		int cut = json_put(line, &pos, cap, sr, strlen(sr)) || raw_put(line, &pos, cap, "\"");
		if (!cut)
			cut = json_members(line, &pos, cap, msg);
		if (cut || msg_cut) {
			/* a JSON line is never cut inside a value: say so instead */
			pos = (size_t)snprintf(line, SD_LOG_LINE_MAX,
					       "{\"ts\":\"%s\",\"level\":\"%s\",\"src\":\"", when, lv);
			json_put(line, &pos, cap, sr, strlen(sr) > 64 ? 64 : strlen(sr));
			raw_put(line, &pos, cap, "\",\"event\":\"line_too_long\"");
		}
		line[pos++] = '}';
		line[pos++] = '\n';
		return pos;
	}
	int h = snprintf(line, SD_LOG_LINE_MAX, "%s level=%s src=", when, lv);
	pos = (size_t)h;
	int cut = put_escaped(line, &pos, cap, src ? src : "-");
	if (!cut && pos < cap)
		line[pos++] = ' ';
	if (!cut)
		cut = put_escaped(line, &pos, cap, msg);
	if (cut || msg_cut) {
		memcpy(line + pos, "...", 3);
		pos += 3;
	}
	line[pos++] = '\n';
	return pos;
}

static void vlog_fd(int fd, int level, const char *src, const char *fmt, va_list ap)
{
	char msg[SD_LOG_LINE_MAX];
	int n = vsnprintf(msg, sizeof msg, fmt, ap);
	if (n < 0)
		snprintf(msg, sizeof msg, "(bad log format)");
	char line[SD_LOG_LINE_MAX];
	size_t len = format_line(line, level, src, msg, n >= 0 && (size_t)n >= sizeof msg);
	write_line(fd, line, len);
}

void sd_vlog(int level, const char *src, const char *fmt, va_list ap)
{
	if (level < atomic_load(&log_level))
		return;
	vlog_fd(atomic_load(&log_fd), level, src, fmt, ap);
}

void sd_log_to(int which, int level, const char *src, const char *fmt, ...)
{
	if (which < 0 || which >= SD_LOGF_N)
		return;
	int fd = atomic_load(&aux_fd[which]);
	if (fd < 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vlog_fd(fd, level, src, fmt, ap);
	va_end(ap);
}

void sd_log_raw(int which, const char *line)
{
	if (which < 0 || which >= SD_LOGF_N)
		return;
	int fd = atomic_load(&aux_fd[which]);
	if (fd < 0)
		return;
	char buf[SD_LOG_LINE_MAX];
	size_t n = strnlen(line, sizeof buf - 2);
	memcpy(buf, line, n);
	buf[n++] = '\n';
	write_line(fd, buf, n);
}

void sd_log(int level, const char *src, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sd_vlog(level, src, fmt, ap);
	va_end(ap);
}
