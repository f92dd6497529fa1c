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

void sd_log_reopen(void)
{
	pthread_mutex_lock(&log_lock);
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

static void write_line(const char *line, size_t len)
{
	int fd = atomic_load(&log_fd);
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

void sd_vlog(int level, const char *src, const char *fmt, va_list ap)
{
	if (level < atomic_load(&log_level))
		return;
	char msg[SD_LOG_LINE_MAX];
	int n = vsnprintf(msg, sizeof msg, fmt, ap);
	if (n < 0)
		snprintf(msg, sizeof msg, "(bad log format)");

	char line[SD_LOG_LINE_MAX];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int h = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s src=",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, ts.tv_nsec / 1000000L, sd_log_level_name(clamp_level(level)));
	if (h < 0 || (size_t)h >= sizeof line)
		return;
	size_t pos = (size_t)h;
	/* room kept at the end for "...\n" */
	size_t cap = sizeof line - 4;
	int cut = put_escaped(line, &pos, cap, src ? src : "-");
	if (!cut && pos < cap)
		line[pos++] = ' ';
	if (!cut)
		cut = put_escaped(line, &pos, cap, msg);
	if (cut || (n >= 0 && (size_t)n >= sizeof msg)) {
		memcpy(line + pos, "...", 3);
		pos += 3;
	}
	line[pos++] = '\n';
	write_line(line, pos);
}

void sd_log(int level, const char *src, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sd_vlog(level, src, fmt, ap);
	va_end(ap);
}
