/*
 * log.h - one process-wide logger.
 *
 * One line per event: "2026-11-21T15:46:33.123Z level=info src=core <msg>",
 * where msg is key=value pairs written by the caller. Lines go to stderr or
 * to a file opened O_APPEND; each line is written with a single write(2), so
 * concurrent threads never interleave inside a line. sd_log_reopen() (called
 * on SIGHUP) reopens the file for log rotation.
 */
#ifndef SD_LOG_H
#define SD_LOG_H

#include <stdarg.h>
#include "storaged.h" /* enum sd_log_level */

/* path NULL or "" = stderr. level: enum sd_log_level. 0 or -errno. */
int sd_log_open(const char *path, int level);
/* Reopen the log file (no-op on stderr). Safe to call from any thread. */
void sd_log_reopen(void);
void sd_log_close(void);
void sd_log_set_level(int level);
int sd_log_get_level(void);
void sd_log(int level, const char *src, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void sd_vlog(int level, const char *src, const char *fmt, va_list ap);
/* Line formats (log_format): key=value text after the time, level and
 * source, or one JSON object per line with the same fields (ts, level,
 * src, then every key=value of the message; bare numbers as numbers). */
enum { SD_LOG_FMT_KV = 0, SD_LOG_FMT_JSON = 1 };
void sd_log_set_format(int fmt);
int sd_log_get_format(void);
/* "kv"|"json" -> format, or -1. */
int sd_log_format_parse(const char *s);

/* The other files the logger writes and reopens with the main one on
 * SIGHUP: the access log and the xferlog. */
enum { SD_LOGF_ACCESS = 0, SD_LOGF_XFER = 1, SD_LOGF_N };
/* Open (path NULL or "": close) file `which`. 0 or -errno. */
int sd_log_file_open(int which, const char *path);
/* Is file `which` open? */
int sd_log_file_is_open(int which);
/* One event line, formatted like the main log's, into file `which`
 * (whatever the log level). */
void sd_log_to(int which, int level, const char *src, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* One line as it is (a newline is added) into file `which`. */
void sd_log_raw(int which, const char *line);

/* "debug"|"info"|"warn"|"error" -> level, or -1. */
int sd_log_level_parse(const char *s);
const char *sd_log_level_name(int level);

#endif
