/*
 * conf.c - the configuration file: libinih underneath, tables on top.
 *
 * Design notes
 * ------------
 * The file is INI. libinih (Debian 12 ships version 55, built with its
 * defaults) splits lines into section headers and key = value pairs and
 * strips comments; everything else is done here:
 *
 *  1. We feed inih through ini_parse_stream() with our own line reader
 *     (read_line). The reader is the only place that sees raw lines, so it:
 *       - counts lines (inih 55 is built without INI_HANDLER_LINENO, so the
 *         handler never learns the line number; it reads ours instead:
 *         inih calls the handler for a line before asking for the next);
 *       - strips leading blanks, which turns off inih's multi-line values
 *         (INI_ALLOW_MULTILINE=1 in the build: an indented "key = v" line
 *         would otherwise be glued onto the previous value);
 *       - refuses lines longer than inih's fixed 200-byte buffer
 *         (INI_MAX_LINE) instead of letting inih cut them silently, and
 *         lines holding a NUL byte;
 *       - recognises "[name]" headers itself, so an empty section, a
 *         duplicate section and the header's line number are all known
 *         (inih is built without INI_CALL_HANDLER_ON_NEW_SECTION and reports
 *         "[ftp] a=1 [ftp] b=2" exactly like one section).
 *  2. Comments, as inih 55 treats them: a line whose first non-blank
 *     character is ';' or '#' is a comment; a ';' preceded by a blank ends
 *     the value ("port = 21 ; the usual"). A '#' inside a value and a ';'
 *     not preceded by a blank are kept ("password = a#b;c" is "a#b;c").
 *     Values are not quoted: quotes are kept as typed. "key: value" is
 *     accepted as "key = value" (inih's configparser concession).
 *  3. The handler (on_key) files each key: [storaged] keys and front-end
 *     keys are kept as raw sd_conf_entry rows with their line; the three
 *     keys every front-end section has (enabled, module, listen) are parsed
 *     at once. [storaged] is then converted by sd_conf_apply() through
 *     sd_conf_table, exactly like a module's section through its table, and
 *     range-checked (conf_ranges) and derived fields filled.
 *
 * Invariants: the first error wins and is the one reported, as
 * "FILE:LINE: [section] what 'value' for key 'key'"; on any error
 * sd_conf_load() leaves *out zeroed with nothing allocated.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "util.h"

#ifndef SD_MODULE_DIR
#define SD_MODULE_DIR "/usr/local/lib/storaged"
#endif

#define CONF_SECTION_MAX 48 /* inih keeps at most 49 bytes of a section name */

/* ------------------------------------------------------------ the table */

#define F(field) offsetof(sd_conf, field)

const sd_conf_item sd_conf_table[] = {
	{"data_dir", SD_CONF_PATH, F(data_dir), "var",
	 "Directory holding the database, the blob store (blobs/) and temporary files (tmp/); created if missing."},
	{"module_dir", SD_CONF_PATH, F(module_dir), SD_MODULE_DIR,
	 "Directory searched for front-end modules: section [x] with module = NAME loads NAME.so from here."},
	{"log_level", SD_CONF_STR, F(log_level_name), "info",
	 "Least severe level written to the log: debug, info, warn or error."},
	{"log_file", SD_CONF_PATH, F(log_file), "",
	 "Log file, opened for appending and reopened on SIGHUP; empty logs to standard error."},
	{"log_format", SD_CONF_STR, F(log_format_name), "kv",
	 "Form of every log line (and of the access log): kv (time, level=, src=, then key=value pairs) or json (one JSON object per line with the same fields); docs/logs.md."},
	{"access_log", SD_CONF_PATH, F(access_log), "",
	 "File for the HTTP access log (one line per request: time, address, user, method, path, status, bytes, duration, user agent), reopened on SIGHUP; empty writes those lines into the main log at info."},
	{"xferlog", SD_CONF_PATH, F(xferlog), "",
	 "File for a wu-ftpd/vsftpd xferlog of every file transfer over FTP, SFTP and HTTP (for log analysers), reopened on SIGHUP; empty: none."},
	{"durability", SD_CONF_STR, F(durability_name), "full",
	 "full: every acknowledged change is on disk (fsync of the database and blobs); normal: the last commits may be lost on power failure, but are faster."},
	{"write_buffer", SD_CONF_SIZE, F(write_buffer), "4M",
	 "Size of each upload buffer; an upload fills one while the previous one is hashed and written."},
	{"writer_threads", SD_CONF_INT, F(writer_threads), "2",
	 "Threads that hash and write upload buffers to temporary files."},
	{"db_readers", SD_CONF_INT, F(db_readers), "8",
	 "Maximum number of read-only database connections (one per concurrently reading thread)."},
	{"busy_timeout", SD_CONF_DURATION, F(busy_timeout), "10s",
	 "How long a database operation waits for a lock before failing."},
	{"checkpoint_interval", SD_CONF_DURATION, F(checkpoint_interval), "1m",
	 "How often the database write-ahead log is checkpointed into the main file."},
	{"deleted_retention", SD_CONF_DURATION, F(deleted_retention), "7d",
	 "How long deleted files and directories are kept in the trash (restorable, and seen by past views and rollbacks) before the cleaner purges them."},
	{"version_retention", SD_CONF_DURATION, F(version_retention), "30d",
	 "How long a version of a file is kept after a newer one replaced it (for restore, past views and rollback) before the cleaner drops it; the current version is always kept; 0 keeps every version forever. Past views and rollbacks reach back min(deleted_retention, version_retention)."},
	{"journal_retention", SD_CONF_DURATION, F(journal_retention), "365d",
	 "How long journal rows (the audit log of every change and failed login) are kept; 0 keeps them forever."},
	{"unreferenced_min_age", SD_CONF_DURATION, F(unreferenced_min_age), "1d",
	 "An unreferenced blob is removed only when it was last used longer ago than this."},
	{"disk_high_water", SD_CONF_PERCENT, F(disk_high_water), "80%",
	 "Unreferenced blobs are removed only while the disk holding data_dir is fuller than this."},
	{"cleaner_interval", SD_CONF_DURATION, F(cleaner_interval), "10m",
	 "How often the background cleaner runs (purge deleted nodes, remove unused blobs and stale temporary files)."},
	{"temp_max_age", SD_CONF_DURATION, F(temp_max_age), "1d",
	 "Temporary files (interrupted uploads) older than this are removed by the cleaner."},
	{"auth_fail_delay", SD_CONF_DURATION, F(auth_fail_delay), "1s",
	 "Delay before answering a failed login."},
	{"auth_max_failures", SD_CONF_INT, F(auth_max_failures), "10",
	 "Failed logins from one address, within auth_block_time, after which that address is blocked."},
	{"auth_block_time", SD_CONF_DURATION, F(auth_block_time), "15m",
	 "How long an address stays blocked after too many failed logins."},
	{"auth_max_concurrent", SD_CONF_INT, F(auth_max_concurrent), "2",
	 "Password verifications run at once (each Argon2id check takes about 0.1 s and 64 MiB)."},
	{"challenge_ranges", SD_CONF_INT, F(challenge_ranges), "4",
	 "Byte ranges a client must hash to prove it holds a file before an instant upload is granted."},
	{"challenge_range_size", SD_CONF_SIZE, F(challenge_range_size), "64K",
	 "Length of each byte range of an instant-upload challenge."},
	{"challenge_ttl", SD_CONF_DURATION, F(challenge_ttl), "5m",
	 "How long an instant-upload challenge can be answered."},
	{"inline_max", SD_CONF_SIZE, F(inline_max), "32K",
	 "Contents up to this size are stored inside the database, in the same transaction as the file's rows (one durable write per small file); larger ones are files in blobs/. 0 stores every content as a file."},
	{"max_handles", SD_CONF_INT, F(max_handles), "16384",
	 "Random-access open files (handles) of all sessions together; an open beyond it fails with 'too many open handles'."},
	{"max_handles_per_user", SD_CONF_INT, F(max_handles_per_user), "256",
	 "Handles one user may hold open that outlive a connection (the HTTP handle API); an open beyond it fails with 'too many open handles'."},
	{"handle_idle_timeout", SD_CONF_DURATION, F(handle_idle_timeout), "5m",
	 "A handle that outlives its connection (the HTTP handle API) and is not used for this long is abandoned: unsaved writes are dropped, the previous version stays, and the journal says so."},
	{"blob_store", SD_CONF_STR, F(blob_store), "local",
	 "Where contents larger than inline_max live: local (data_dir/blobs/), or a store module: s3 (any S3-compatible service) or rados (a Ceph pool). A module NAME is store_NAME.so in module_dir, and its keys are the [storaged] keys starting with NAME_ (documented below). See docs/backends.md."},
	{"cache_dir", SD_CONF_PATH, F(cache_dir), "",
	 "Remote stores (s3, rados): directory of the local read cache of hot contents; empty means data_dir/cache."},
	{"cache_size", SD_CONF_SIZE, F(cache_size), "10G",
	 "Remote stores: the read cache's size cap; the least recently read contents are evicted beyond it. 0 turns the cache off (every read goes to the store)."},
	{"store_capacity", SD_CONF_SIZE, F(store_capacity), "0",
	 "Remote stores: the capacity the cleaner measures the store against (disk_high_water applies to the larger of the cache disk's usage and stored bytes / store_capacity); 0 means unknown: only the cache disk counts."},
	{"show_history_folders", SD_CONF_BOOL, F(show_history_folders), "no",
	 "List the virtual folders /.snapshots (the tree as it was at past moments) and /.trash (deleted files) in listings of a user's root; hidden or not, they are always reachable by name."},
	{"hook_command", SD_CONF_STR, F(hook_command), "",
	 "Command run (with /bin/sh -c) on each event of hook_events, the event in STORAGED_* environment variables and as JSON on stdin (docs/hooks.md); empty: none."},
	{"hook_events", SD_CONF_STR, F(hook_events), "all",
	 "Events that run hook_command: all, or a comma-separated list of upload, download, delete, rename, mkdir, login, login_failed, quota_exceeded."},
	{"hook_concurrency", SD_CONF_INT, F(hook_concurrency), "4",
	 "Hook commands running at once; more events wait in the queue."},
	{"hook_timeout", SD_CONF_DURATION, F(hook_timeout), "30s",
	 "A hook command still running after this is killed (with its process group) and logged."},
	{"hook_queue", SD_CONF_INT, F(hook_queue), "1000",
	 "Events waiting for hook_command, and for the webhook, at most; more are dropped (logged, storaged_hook_events_dropped_total), never waited for."},
	{"webhook_url", SD_CONF_STR, F(webhook_url), "",
	 "URL (http or https) to POST each event of webhook_events to as JSON (docs/hooks.md); empty: none."},
	{"webhook_secret", SD_CONF_STR, F(webhook_secret), "",
	 "Key of the X-Storaged-Signature header (sha256=<hex HMAC-SHA256 of the body>); empty: no signature."},
	{"webhook_events", SD_CONF_STR, F(webhook_events), "all",
	 "Events posted to webhook_url: all, or a comma-separated list as for hook_events."},
	{"webhook_timeout", SD_CONF_DURATION, F(webhook_timeout), "10s",
	 "How long one webhook request may take before it counts as failed."},
	{"webhook_retries", SD_CONF_INT, F(webhook_retries), "5",
	 "Retries of a failed webhook delivery, after 1, 2, 4 ... (at most 60) seconds."},
	{"upload_expiry", SD_CONF_DURATION, F(upload_expiry), "24h",
	 "A resumable upload (tus, docs/rest-api.md) that receives nothing for this long expires: the cleaner removes what it received, and its id answers 404."},
	{"max_uploads_per_user", SD_CONF_INT, F(max_uploads_per_user), "100",
	 "Resumable uploads one user may have in progress at once; creating another fails until one completes, is deleted or expires."},
	{"max_file_size", SD_CONF_SIZE, F(max_file_size), "0",
	 "Largest file: a write, truncate or upload that would make a file larger fails (EFBIG: FTP 552, SFTP failure, HTTP 413) before any byte of it is stored or hashed; 0 = no limit."},
	{"max_hole", SD_CONF_SIZE, F(max_hole), "1G",
	 "Most a single write or size change of an open file (SFTP, HTTP handles) may skip past the file's end (a hole, zeros that are still hashed at commit); more fails (EFBIG) at once. The quota is checked at the same moment. 0 = no limit."},
	{"user", SD_CONF_STR, F(user), "",
	 "Started as root (make run, by hand), the daemon binds its ports and then serves as this unprivileged user (and its group), never as root: the data directory (created for it if missing) must belong to it, and files are created as it from the start. Empty: run as started. The packaged unit starts as User=storaged already."},
	{"disk_reserve", SD_CONF_SIZE, F(disk_reserve), "0",
	 "Free space on the disk holding data_dir that is never offered to uploads: statvfs answers (df over SFTP) show the rest, and an HTTP upload announcing more than the rest (Content-Length) is refused with 507 before its body is read."},
	{NULL, 0, 0, NULL, NULL},
};

/* Ranges of [storaged] keys, checked after parsing and shown in the docs.
 * Values in the unit of the field (bytes, ms, count). */
typedef struct conf_range {
	const char *name;
	int64_t min, max;
	const char *text; /* for messages and docs */
} conf_range;

static const conf_range conf_ranges[] = {
	{"write_buffer", 64 << 10, 256 << 20, "64K..256M"},
	{"writer_threads", 1, 64, "1..64"},
	{"db_readers", 1, 256, "1..256"},
	{"busy_timeout", 1, 3600000, "1ms..1h"},
	{"checkpoint_interval", 10, 30LL * 86400000, "10ms..30d"},
	{"cleaner_interval", 10, 30LL * 86400000, "10ms..30d"},
	{"auth_max_failures", 1, 1000000, "1..1000000"},
	{"auth_max_concurrent", 1, 256, "1..256"},
	{"challenge_ranges", 1, SD_CHALLENGE_MAX, "1..8"},
	{"challenge_range_size", 1, 64 << 20, "1..64M"},
	{"challenge_ttl", 1000, 86400000, "1s..1d"},
	{"inline_max", 0, SD_INLINE_LIMIT, "0..1M"},
	{"max_handles", 16, 1000000, "16..1000000"},
	{"max_handles_per_user", 1, 1000000, "1..1000000"},
	{"handle_idle_timeout", 1000, 7LL * 86400000, "1s..7d"},
	{"hook_concurrency", 1, 64, "1..64"},
	{"hook_timeout", 100, 3600000, "100ms..1h"},
	{"hook_queue", 1, 1000000, "1..1000000"},
	{"webhook_timeout", 100, 600000, "100ms..10m"},
	{"webhook_retries", 0, 20, "0..20"},
	{"upload_expiry", 1000, 365LL * 86400000, "1s..365d"},
	{"max_uploads_per_user", 1, 100000, "1..100000"},
	{"max_file_size", 0, INT64_MAX, "at least 0"},
	{"max_hole", 0, INT64_MAX, "at least 0"},
	{"disk_reserve", 0, INT64_MAX, "at least 0"},
	{NULL, 0, 0, NULL},
};

static const conf_range *find_range(const char *name)
{
	for (const conf_range *r = conf_ranges; r->name; r++)
		if (strcmp(r->name, name) == 0)
			return r;
	return NULL;
}

/* ------------------------------------------------------------ messages */

static void seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	if (n < 0)
		err[0] = '\0';
}

static const char *type_word(int type)
{
	switch (type) {
	case SD_CONF_STR: return "string";
	case SD_CONF_PATH: return "path";
	case SD_CONF_BOOL: return "boolean";
	case SD_CONF_INT: return "integer";
	case SD_CONF_SIZE: return "size";
	case SD_CONF_DURATION: return "duration";
	case SD_CONF_PERCENT: return "percentage";
	}
	return "value";
}

static const char *type_hint(int type)
{
	switch (type) {
	case SD_CONF_BOOL: return " (use yes or no)";
	case SD_CONF_INT: return " (use a decimal number)";
	case SD_CONF_SIZE: return " (use bytes, or a number with K, M, G or T, e.g. 64K, 4M)";
	case SD_CONF_DURATION: return " (use a number with ms, s, m, h, d or w, e.g. 500ms, 30s, 7d)";
	case SD_CONF_PERCENT: return " (use 0-100, e.g. 80%)";
	}
	return "";
}

/* ------------------------------------------------------------ parsers */

static const char *skip_blank(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* Decimal digits at *p into *v (at most INT64_MAX). Advances *p. */
static int parse_digits(const char **p, uint64_t *v, uint64_t limit)
{
	const char *s = *p;
	uint64_t n = 0;
	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	while (isdigit((unsigned char)*s)) {
		unsigned d = (unsigned)(*s - '0');
		if (n > (limit - d) / 10)
			return -EINVAL; /* overflow */
		n = n * 10 + d;
		s++;
	}
	*p = s;
	*v = n;
	return 0;
}

int sd_conf_parse_bool(const char *s, int *out)
{
	static const char *const yes[] = {"yes", "true", "on", "1", NULL};
	static const char *const no[] = {"no", "false", "off", "0", NULL};
	if (!s)
		return -EINVAL;
	for (int i = 0; yes[i]; i++)
		if (strcasecmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
	for (int i = 0; no[i]; i++)
		if (strcasecmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	return -EINVAL;
}

int sd_conf_parse_int(const char *s, int64_t *out)
{
	if (!s)
		return -EINVAL;
	const char *p = skip_blank(s);
	int neg = 0;
	if (*p == '-' || *p == '+') {
		neg = *p == '-';
		p++;
	}
	uint64_t v;
	if (parse_digits(&p, &v, neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX) < 0)
		return -EINVAL;
	if (*skip_blank(p))
		return -EINVAL;
	if (neg)
		*out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	else
		*out = (int64_t)v;
	return 0;
}

int sd_conf_parse_size(const char *s, int64_t *out)
{
	if (!s)
		return -EINVAL;
	const char *p = skip_blank(s);
	uint64_t v;
	if (parse_digits(&p, &v, INT64_MAX) < 0)
		return -EINVAL;
	p = skip_blank(p);
	int shift = 0;
	switch (*p) {
	case 'k': case 'K': shift = 10; break;
	case 'm': case 'M': shift = 20; break;
	case 'g': case 'G': shift = 30; break;
	case 't': case 'T': shift = 40; break;
	}
	if (shift) {
		p++;
		if ((p[0] == 'i' || p[0] == 'I') && (p[1] == 'B' || p[1] == 'b'))
			p += 2;
		else if (*p == 'B' || *p == 'b')
			p++;
	} else if (*p == 'B' || *p == 'b') {
		p++;
	}
	if (*skip_blank(p))
		return -EINVAL;
	if (shift && v > ((uint64_t)INT64_MAX >> shift))
		return -EINVAL;
	*out = (int64_t)(v << shift);
	return 0;
}

int sd_conf_parse_duration(const char *s, int64_t *out_ms)
{
	if (!s)
		return -EINVAL;
	const char *p = skip_blank(s);
	uint64_t total = 0;
	int parts = 0;
	while (*p) {
		uint64_t v, mul;
		if (parse_digits(&p, &v, INT64_MAX) < 0)
			return -EINVAL;
		p = skip_blank(p);
		if (p[0] == 'm' && p[1] == 's') {
			mul = 1;
			p += 2;
		} else if (*p == 's') {
			mul = 1000;
			p++;
		} else if (*p == 'm') {
			mul = 60000;
			p++;
		} else if (*p == 'h') {
			mul = 3600000;
			p++;
		} else if (*p == 'd') {
			mul = 86400000;
			p++;
		} else if (*p == 'w') {
			mul = 7 * 86400000ull;
			p++;
		} else if (*p == '\0' && parts == 0) {
			mul = 1000; /* a bare number is seconds */
		} else {
			return -EINVAL;
		}
		/* a unit must not run straight into letters ("10min", "5sec") */
		if (isalpha((unsigned char)*p))
			return -EINVAL;
		if (v > (uint64_t)INT64_MAX / mul)
			return -EINVAL;
		v *= mul;
		if (total > (uint64_t)INT64_MAX - v)
			return -EINVAL;
		total += v;
		parts++;
		p = skip_blank(p);
	}
	if (parts == 0)
		return -EINVAL;
	*out_ms = (int64_t)total;
	return 0;
}

int sd_conf_parse_percent(const char *s, int *out)
{
	if (!s)
		return -EINVAL;
	const char *p = skip_blank(s);
	uint64_t v;
	if (parse_digits(&p, &v, INT64_MAX) < 0)
		return -EINVAL;
	p = skip_blank(p);
	if (*p == '%')
		p++;
	if (*skip_blank(p) || v > 100)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

static int parse_port(const char *s, int *port)
{
	uint64_t v;
	const char *p = s;
	if (parse_digits(&p, &v, INT64_MAX) < 0 || *p || v < 1 || v > 65535)
		return -EINVAL;
	*port = (int)v;
	return 0;
}

int sd_conf_parse_listen(const char *s, char **host, int *port)
{
	char buf[INET6_ADDRSTRLEN + 8];
	unsigned char addr[16];
	const char *h, *ps;
	size_t hlen;

	if (!s || !*s || strlen(s) >= sizeof buf + 16)
		return -EINVAL;
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (!end || end[1] != ':')
			return -EINVAL;
		h = s + 1;
		hlen = (size_t)(end - h);
		ps = end + 2;
		if (hlen == 0 || hlen >= sizeof buf)
			return -EINVAL;
		memcpy(buf, h, hlen);
		buf[hlen] = '\0';
		if (inet_pton(AF_INET6, buf, addr) != 1)
			return -EINVAL;
	} else {
		const char *colon = strrchr(s, ':');
		if (!colon) {
			h = "";
			hlen = 0;
			ps = s;
		} else {
			if (memchr(s, ':', (size_t)(colon - s)))
				return -EINVAL; /* bare IPv6: needs [brackets] */
			h = s;
			hlen = (size_t)(colon - s);
			ps = colon + 1;
		}
		if (hlen >= sizeof buf)
			return -EINVAL;
		memcpy(buf, h, hlen);
		buf[hlen] = '\0';
		if (hlen == 0 || strcmp(buf, "*") == 0)
			snprintf(buf, sizeof buf, "0.0.0.0");
		else if (strcmp(buf, "localhost") == 0)
			snprintf(buf, sizeof buf, "127.0.0.1");
		else if (inet_pton(AF_INET, buf, addr) != 1)
			return -EINVAL;
	}
	int pt;
	if (parse_port(ps, &pt) < 0)
		return -EINVAL;
	*host = sd_xstrdup(buf);
	*port = pt;
	return 0;
}

/* ------------------------------------------------------------ paths */

/* dir + "/" + value for a relative value; the value itself when absolute,
 * empty, or when dir is NULL. malloc'd. */
static char *resolve_path(const char *value, const char *dir)
{
	if (!value[0] || value[0] == '/' || !dir || !dir[0])
		return sd_xstrdup(value);
	while (value[0] == '.' && value[1] == '/')
		value += 2;
	while (*value == '/')
		value++;
	if (strcmp(value, ".") == 0 || !*value)
		return sd_xstrdup(dir);
	if (strcmp(dir, "/") == 0)
		return sd_xasprintf("/%s", value);
	return sd_xasprintf("%s/%s", dir, value);
}

/* ------------------------------------------------------------ tables */

static const sd_conf_item *find_item(const sd_conf_item *table, const char *name)
{
	for (const sd_conf_item *it = table; it && it->name; it++)
		if (strcmp(it->name, name) == 0)
			return it;
	return NULL;
}

/* Parse text into the field of item inside dst. 0 or -EINVAL. */
static int set_value(const sd_conf_item *it, void *dst, const char *text, const char *dir)
{
	char *base = dst;
	void *field = base + it->offset;
	switch (it->type) {
	case SD_CONF_STR:
	case SD_CONF_PATH: {
		char **sp = field;
		char *v = it->type == SD_CONF_PATH ? resolve_path(text, dir) : sd_xstrdup(text);
		free(*sp);
		*sp = v;
		return 0;
	}
	case SD_CONF_BOOL: {
		int v;
		if (sd_conf_parse_bool(text, &v) < 0)
			return -EINVAL;
		*(int *)field = v;
		return 0;
	}
	case SD_CONF_PERCENT: {
		int v;
		if (sd_conf_parse_percent(text, &v) < 0)
			return -EINVAL;
		*(int *)field = v;
		return 0;
	}
	case SD_CONF_INT:
	case SD_CONF_SIZE:
	case SD_CONF_DURATION: {
		int64_t v;
		int rc = it->type == SD_CONF_INT	    ? sd_conf_parse_int(text, &v)
			 : it->type == SD_CONF_SIZE ? sd_conf_parse_size(text, &v)
						    : sd_conf_parse_duration(text, &v);
		if (rc < 0)
			return -EINVAL;
		*(int64_t *)field = v;
		return 0;
	}
	}
	return -EINVAL;
}

void sd_conf_release(const sd_conf_item *table, void *dst)
{
	if (!table || !dst)
		return;
	for (const sd_conf_item *it = table; it->name; it++) {
		if (it->type == SD_CONF_STR || it->type == SD_CONF_PATH) {
			char **sp = (char **)((char *)dst + it->offset);
			free(*sp);
			*sp = NULL;
		}
	}
}

int sd_conf_apply(const sd_conf_item *table, void *dst, const sd_conf_section *s,
		  const char *file, const char *dir, char *err, size_t errlen)
{
	const char *sec = s && s->name ? s->name : "?";
	if (!file)
		file = "(defaults)";
	for (const sd_conf_item *it = table; it && it->name; it++) {
		const char *def = it->def ? it->def : "";
		int rc = 0;
		if (!it->def && it->type != SD_CONF_STR && it->type != SD_CONF_PATH) {
			/* NULL default: zero for numbers and booleans */
			if (it->type == SD_CONF_BOOL || it->type == SD_CONF_PERCENT)
				*(int *)((char *)dst + it->offset) = 0;
			else
				*(int64_t *)((char *)dst + it->offset) = 0;
		} else {
			rc = set_value(it, dst, def, dir);
		}
		if (rc < 0) {
			seterr(err, errlen, "[%s] built-in default '%s' of key '%s' is not a valid %s",
			       sec, def, it->name, type_word(it->type));
			sd_conf_release(table, dst);
			return -SD_ECONFIG;
		}
	}
	for (size_t i = 0; s && i < s->nentries; i++) {
		const sd_conf_entry *e = &s->entries[i];
		const sd_conf_item *it = find_item(table, e->key);
		if (!it) {
			seterr(err, errlen, "%s:%d: [%s] unknown key '%s'", file, e->line, sec, e->key);
			sd_conf_release(table, dst);
			return -SD_ECONFIG;
		}
		if (set_value(it, dst, e->value, dir) < 0) {
			seterr(err, errlen, "%s:%d: [%s] bad %s '%s' for key '%s'%s", file, e->line,
			       sec, type_word(it->type), e->value, e->key, type_hint(it->type));
			sd_conf_release(table, dst);
			return -SD_ECONFIG;
		}
	}
	return 0;
}

/* ------------------------------------------------------------ loading */

enum { CUR_NONE = -2, CUR_STORAGED = -1 };

/* Lines of the keys a front-end section has in common (0 = absent). */
typedef struct common_lines {
	int enabled, module, listen;
} common_lines;

typedef struct loader {
	const char *file; /* as given, for messages */
	FILE *f;
	int lineno;
	char *buf;
	size_t cap;

	sd_conf *out;
	sd_conf_section storaged; /* raw [storaged] entries */
	sd_conf_section store;    /* raw [storaged] keys of store modules */
	size_t store_cap;
	int storaged_line;        /* 0 = no [storaged] header seen */
	common_lines *common;     /* parallel to out->sections */
	size_t sections_cap, storaged_cap;
	size_t *entries_cap;      /* parallel to out->sections */
	int cur;                  /* CUR_NONE, CUR_STORAGED or a section index */

	int err_line; /* line of the first error found here, 0 = none */
	char *err;
	size_t errlen;
} loader;

static void fail(loader *ld, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(loader *ld, int line, const char *fmt, ...)
{
	if (ld->err_line)
		return; /* the first error wins */
	ld->err_line = line;
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		msg[0] = '\0';
	seterr(ld->err, ld->errlen, "%s:%d: %s", ld->file, line, msg);
}

static int valid_module_name(const char *s)
{
	if (!*s || strlen(s) > CONF_SECTION_MAX)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return 0;
	return 1;
}

static int valid_section_name(const char *s)
{
	if (!*s || strlen(s) > CONF_SECTION_MAX)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
			return 0;
	return 1;
}

/* A "[name]" line, seen by the reader before inih parses it. */
static void on_section(loader *ld, const char *line)
{
	/* Find the closing bracket as inih does: a ';' after a blank starts a
	 * comment, so "[a ;b]" has none (inih then reports the syntax error). */
	const char *p = line + 1, *end = NULL;
	for (; *p; p++) {
		if (*p == ']') {
			end = p;
			break;
		}
		if (*p == ';' && (p[-1] == ' ' || p[-1] == '\t'))
			break;
	}
	ld->cur = CUR_NONE;
	if (!end)
		return; /* inih reports it */
	const char *rest = skip_blank(end + 1);
	if (*rest && *rest != ';' && *rest != '#') {
		fail(ld, ld->lineno, "unexpected text after section header: '%s'", rest);
		return;
	}
	size_t n = (size_t)(end - (line + 1));
	char name[CONF_SECTION_MAX + 2];
	if (n == 0) {
		fail(ld, ld->lineno, "empty section name");
		return;
	}
	if (n > CONF_SECTION_MAX) {
		fail(ld, ld->lineno, "section name too long (max %d characters)", CONF_SECTION_MAX);
		return;
	}
	memcpy(name, line + 1, n);
	name[n] = '\0';
	if (!valid_section_name(name)) {
		fail(ld, ld->lineno, "bad section name '[%s]' (use a-z, 0-9, _ and -)", name);
		return;
	}
	if (strcmp(name, "storaged") == 0) {
		if (ld->storaged_line) {
			fail(ld, ld->lineno, "duplicate section [storaged] (first at line %d)",
			     ld->storaged_line);
			return;
		}
		ld->storaged_line = ld->lineno;
		ld->cur = CUR_STORAGED;
		return;
	}
	sd_conf *c = ld->out;
	for (size_t i = 0; i < c->nsections; i++) {
		if (strcmp(c->sections[i].name, name) == 0) {
			fail(ld, ld->lineno, "duplicate section [%s] (first at line %d)", name,
			     c->sections[i].line);
			return;
		}
	}
	if (c->nsections == ld->sections_cap) {
		size_t ncap = ld->sections_cap ? ld->sections_cap * 2 : 4;
		c->sections = sd_xrealloc(c->sections, ncap * sizeof *c->sections);
		ld->common = sd_xrealloc(ld->common, ncap * sizeof *ld->common);
		ld->entries_cap = sd_xrealloc(ld->entries_cap, ncap * sizeof *ld->entries_cap);
		ld->sections_cap = ncap;
	}
	size_t i = c->nsections++;
	memset(&c->sections[i], 0, sizeof c->sections[i]);
	memset(&ld->common[i], 0, sizeof ld->common[i]);
	ld->entries_cap[i] = 0;
	c->sections[i].name = sd_xstrdup(name);
	c->sections[i].line = ld->lineno;
	ld->cur = (int)i;
}

/* fgets-style reader handed to inih: one whole line per call. */
static char *read_line(char *str, int num, void *stream)
{
	loader *ld = stream;
	ssize_t n = getline(&ld->buf, &ld->cap, ld->f);
	if (n < 0)
		return NULL;
	ld->lineno++;
	char *p = ld->buf;
	size_t len = (size_t)n;
	if (memchr(p, '\0', len)) {
		fail(ld, ld->lineno, "NUL byte in line");
		len = 0;
	}
	while (len && (p[len - 1] == '\n' || p[len - 1] == '\r'))
		len--;
	if (ld->lineno == 1 && len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
		p += 3; /* UTF-8 byte order mark */
		len -= 3;
	}
	while (len && (*p == ' ' || *p == '\t')) {
		p++;
		len--;
	}
	if (num < 3)
		return NULL;
	if (len > (size_t)num - 3) {
		fail(ld, ld->lineno, "line too long (at most %d bytes after indentation)", num - 3);
		len = 0;
	}
	memcpy(str, p, len);
	str[len] = '\n';
	str[len + 1] = '\0';
	if (len && str[0] == '[') {
		str[len] = '\0';
		on_section(ld, str);
		str[len] = '\n';
	}
	return str;
}

static sd_conf_entry *add_entry(sd_conf_section *s, size_t *cap, const char *key,
				const char *value, int line)
{
	if (s->nentries == *cap) {
		*cap = *cap ? *cap * 2 : 8;
		s->entries = sd_xrealloc(s->entries, *cap * sizeof *s->entries);
	}
	sd_conf_entry *e = &s->entries[s->nentries++];
	e->key = sd_xstrdup(key);
	e->value = sd_xstrdup(value);
	e->line = line;
	return e;
}

static int store_prefix(const char *key, char *out, size_t outlen);

static const sd_conf_entry *find_entry(const sd_conf_section *s, const char *key)
{
	for (size_t i = 0; i < s->nentries; i++)
		if (strcmp(s->entries[i].key, key) == 0)
			return &s->entries[i];
	return NULL;
}

/* Everything that can be wrong with one [storaged] key = value, as the
 * message after "FILE:LINE: [storaged] ". 0 or -SD_ECONFIG. */
static int check_storaged_value(const char *name, const char *value, char *msg, size_t len)
{
	const sd_conf_item *it = find_item(sd_conf_table, name);
	if (!it) {
		seterr(msg, len, "unknown key '%s'", name);
		return -SD_ECONFIG;
	}
	union {
		char *s;
		int i;
		int64_t n;
	} scratch;
	memset(&scratch, 0, sizeof scratch);
	sd_conf_item one = *it;
	one.offset = 0;
	if (set_value(&one, &scratch, value, NULL) < 0) {
		seterr(msg, len, "bad %s '%s' for key '%s'%s", type_word(it->type), value, name,
		       type_hint(it->type));
		return -SD_ECONFIG;
	}
	if (it->type == SD_CONF_STR || it->type == SD_CONF_PATH)
		free(scratch.s);
	const conf_range *r = find_range(name);
	if (r && (scratch.n < r->min || scratch.n > r->max)) {
		seterr(msg, len, "value '%s' for key '%s' out of range (%s)", value, name, r->text);
		return -SD_ECONFIG;
	}
	if (strcmp(name, "log_level") == 0 && sd_log_level_parse(value) < 0) {
		seterr(msg, len, "bad value '%s' for key 'log_level' (use debug, info, warn or error)",
		       value);
		return -SD_ECONFIG;
	}
	if (strcmp(name, "durability") == 0 && strcmp(value, "full") != 0 &&
	    strcmp(value, "normal") != 0) {
		seterr(msg, len, "bad value '%s' for key 'durability' (use full or normal)", value);
		return -SD_ECONFIG;
	}
	if ((strcmp(name, "data_dir") == 0 || strcmp(name, "module_dir") == 0) && !*value) {
		seterr(msg, len, "key '%s' must not be empty", name);
		return -SD_ECONFIG;
	}
	return 0;
}

/* inih handler: one key = value. Returns 0 on error (inih then notes the
 * line; our message is in ld->err). */
static int on_key(void *user, const char *section, const char *name, const char *value)
{
	loader *ld = user;
	int line = ld->lineno;
	(void)section; /* ld->cur, set by the reader, is authoritative */
	if (ld->err_line)
		return 1; /* already failed: only the first error is reported */
	if (!name[0]) {
		fail(ld, line, "empty key name");
		return 0;
	}
	if (ld->cur == CUR_NONE) {
		fail(ld, line, "key '%s' outside any section (put it under [storaged] or a front-end section)",
		     name);
		return 0;
	}
	if (ld->cur == CUR_STORAGED) {
		const sd_conf_entry *prev = find_entry(&ld->storaged, name);
		if (!prev)
			prev = find_entry(&ld->store, name);
		if (prev) {
			fail(ld, line, "[storaged] duplicate key '%s' (first at line %d)", name, prev->line);
			return 0;
		}
		/* a key of a store module (NAME_key, see store_prefix): its
		 * module's table checks it when the store is opened */
		if (!find_item(sd_conf_table, name) && store_prefix(name, NULL, 0) == 0) {
			add_entry(&ld->store, &ld->store_cap, name, value, line);
			return 1;
		}
		/* checked now, so that errors are reported in file order */
		char msg[512];
		if (check_storaged_value(name, value, msg, sizeof msg) < 0) {
			fail(ld, line, "[storaged] %s", msg);
			return 0;
		}
		add_entry(&ld->storaged, &ld->storaged_cap, name, value, line);
		return 1;
	}
	sd_conf_section *s = &ld->out->sections[ld->cur];
	common_lines *cl = &ld->common[ld->cur];
	int *seen = strcmp(name, "enabled") == 0 ? &cl->enabled
		    : strcmp(name, "module") == 0 ? &cl->module
		    : strcmp(name, "listen") == 0 ? &cl->listen
						  : NULL;
	const sd_conf_entry *prev = seen ? NULL : find_entry(s, name);
	if ((seen && *seen) || prev) {
		fail(ld, line, "[%s] duplicate key '%s' (first at line %d)", s->name, name,
		     seen ? *seen : prev->line);
		return 0;
	}
	if (!seen) {
		add_entry(s, &ld->entries_cap[ld->cur], name, value, line);
		return 1;
	}
	*seen = line;
	if (seen == &cl->enabled) {
		if (sd_conf_parse_bool(value, &s->enabled) < 0) {
			fail(ld, line, "[%s] bad boolean '%s' for key 'enabled' (use yes or no)", s->name,
			     value);
			return 0;
		}
	} else if (seen == &cl->module) {
		if (!valid_module_name(value)) {
			fail(ld, line, "[%s] bad module name '%s' for key 'module' (use a-z, 0-9 and _)",
			     s->name, value);
			return 0;
		}
		s->module = sd_xstrdup(value);
	} else {
		if (sd_conf_parse_listen(value, &s->listen_host, &s->listen_port) < 0) {
			fail(ld, line,
			     "[%s] bad listen address '%s' for key 'listen' (use ADDR:PORT, [IPv6]:PORT or :PORT)",
			     s->name, value);
			return 0;
		}
	}
	return 1;
}

static void free_section(sd_conf_section *s)
{
	free(s->name);
	free(s->module);
	free(s->listen_host);
	for (size_t j = 0; j < s->nentries; j++) {
		free(s->entries[j].key);
		free(s->entries[j].value);
	}
	free(s->entries);
	memset(s, 0, sizeof *s);
}

void sd_conf_free(sd_conf *c)
{
	if (!c)
		return;
	sd_conf_release(sd_conf_table, c);
	free(c->config_path);
	free(c->config_dir);
	for (size_t i = 0; i < c->nsections; i++)
		free_section(&c->sections[i]);
	free(c->sections);
	if (c->store_keys) {
		free_section(c->store_keys);
		free(c->store_keys);
	}
	memset(c, 0, sizeof *c);
}

/* Apply the [storaged] table, check ranges and names, fill derived fields. */
static int finish_storaged(sd_conf *c, const sd_conf_section *raw, const char *file,
			   char *err, size_t errlen)
{
	int rc = sd_conf_apply(sd_conf_table, c, raw, file, c->config_dir, err, errlen);
	if (rc < 0)
		return rc;
	if (!file)
		file = "(defaults)";
	for (const conf_range *r = conf_ranges; r->name; r++) {
		const sd_conf_item *it = find_item(sd_conf_table, r->name);
		int64_t v = *(int64_t *)((char *)c + it->offset);
		if (v < r->min || v > r->max) {
			const sd_conf_entry *e = find_entry(raw, r->name);
			seterr(err, errlen, "%s:%d: [storaged] value '%s' for key '%s' out of range (%s)",
			       file, e ? e->line : 0, e ? e->value : it->def, r->name, r->text);
			return -SD_ECONFIG;
		}
	}
	c->log_level = sd_log_level_parse(c->log_level_name);
	if (c->log_level < 0) {
		const sd_conf_entry *e = find_entry(raw, "log_level");
		seterr(err, errlen,
		       "%s:%d: [storaged] bad value '%s' for key 'log_level' (use debug, info, warn or error)",
		       file, e ? e->line : 0, c->log_level_name);
		return -SD_ECONFIG;
	}
	c->log_format = sd_log_format_parse(c->log_format_name);
	if (c->log_format < 0) {
		const sd_conf_entry *e = find_entry(raw, "log_format");
		seterr(err, errlen, "%s:%d: [storaged] bad value '%s' for key 'log_format' (use kv or json)",
		       file, e ? e->line : 0, c->log_format_name);
		return -SD_ECONFIG;
	}
	if (strcmp(c->durability_name, "full") == 0) {
		c->durability_full = 1;
	} else if (strcmp(c->durability_name, "normal") == 0) {
		c->durability_full = 0;
	} else {
		const sd_conf_entry *e = find_entry(raw, "durability");
		seterr(err, errlen,
		       "%s:%d: [storaged] bad value '%s' for key 'durability' (use full or normal)",
		       file, e ? e->line : 0, c->durability_name);
		return -SD_ECONFIG;
	}
	static const char *const required[] = {"data_dir", "module_dir", NULL};
	for (int i = 0; required[i]; i++) {
		const sd_conf_item *it = find_item(sd_conf_table, required[i]);
		if (!**(char **)((char *)c + it->offset)) {
			const sd_conf_entry *e = find_entry(raw, required[i]);
			seterr(err, errlen, "%s:%d: [storaged] key '%s' must not be empty", file,
			       e ? e->line : 0, required[i]);
			return -SD_ECONFIG;
		}
	}
	return 0;
}

/* The store module a [storaged] key belongs to: "s3_bucket" -> "s3". 0 with
 * the name in out (when out), -1 when the key has no NAME_ prefix. */
static int store_prefix(const char *key, char *out, size_t outlen)
{
	const char *us = strchr(key, '_');
	if (!us || us == key || !us[1] || (size_t)(us - key) > 32)
		return -1;
	for (const char *p = key; p < us; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
			return -1;
	if (out) {
		if ((size_t)(us - key) >= outlen)
			return -1;
		memcpy(out, key, (size_t)(us - key));
		out[us - key] = '\0';
	}
	return 0;
}

/* Keys set aside as a store module's (NAME_key): kept when module_dir holds
 * store_NAME.so (its table checks them when the store is opened), else the
 * first of them in file order is an unknown key. Consumes raw. */
static int finish_store_keys(sd_conf *c, sd_conf_section *raw, const char *file, char *err,
			     size_t errlen)
{
	for (size_t i = 0; i < raw->nentries; i++) {
		char name[40];
		store_prefix(raw->entries[i].key, name, sizeof name);
		char *so = sd_xasprintf("%s/store_%s.so", c->module_dir, name);
		int ok = access(so, F_OK) == 0;
		free(so);
		if (!ok) {
			seterr(err, errlen, "%s:%d: [storaged] unknown key '%s'", file, raw->entries[i].line,
			       raw->entries[i].key);
			free_section(raw);
			return -SD_ECONFIG;
		}
	}
	if (raw->nentries) {
		c->store_keys = sd_xcalloc(1, sizeof *c->store_keys);
		*c->store_keys = *raw;
		c->store_keys->name = sd_xstrdup("storaged");
	} else {
		free(raw->entries);
	}
	memset(raw, 0, sizeof *raw);
	return 0;
}

/* Absolute, symlink-free directory of path (the file itself may be a
 * symlink: relative paths follow where the admin put the file). */
static int config_dir_of(const char *path, char **out)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	if (!slash)
		dir = sd_xstrdup(".");
	else if (slash == path)
		dir = sd_xstrdup("/");
	else
		dir = sd_xstrndup(path, (size_t)(slash - path));
	char *real = realpath(dir, NULL);
	int e = errno;
	free(dir);
	if (!real)
		return -e;
	*out = real;
	return 0;
}

int sd_conf_load(const char *path, sd_conf *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	if (err && errlen)
		err[0] = '\0';
	if (!path || !*path) {
		seterr(err, errlen, "no configuration file given");
		return -EINVAL;
	}
	FILE *f = fopen(path, "re");
	if (!f) {
		int e = errno;
		seterr(err, errlen, "cannot read %s: %s", path, strerror(e));
		return -e;
	}
	out->config_path = sd_xstrdup(path);
	int rc = config_dir_of(path, &out->config_dir);
	if (rc < 0) {
		seterr(err, errlen, "cannot resolve the directory of %s: %s", path, strerror(-rc));
		fclose(f);
		sd_conf_free(out);
		return rc;
	}

	loader ld;
	memset(&ld, 0, sizeof ld);
	ld.file = path;
	ld.f = f;
	ld.out = out;
	ld.cur = CUR_NONE;
	ld.err = err;
	ld.errlen = errlen;
	ld.storaged.name = "storaged";

	int prc = ini_parse_stream(read_line, &ld, on_key, &ld);
	int read_err = ferror(f);
	fclose(f);
	free(ld.buf);

	rc = 0;
	if (read_err) {
		seterr(err, errlen, "cannot read %s: %s", path, strerror(EIO));
		rc = -EIO;
	} else if (prc == -2) {
		seterr(err, errlen, "%s: out of memory while parsing", path);
		rc = -ENOMEM;
	} else if (prc > 0 && (!ld.err_line || prc < ld.err_line)) {
		seterr(err, errlen, "%s:%d: syntax error (expected '[section]' or 'key = value')", path,
		       prc);
		rc = -SD_ECONFIG;
	} else if (ld.err_line) {
		rc = -SD_ECONFIG;
	}

	/* Front-end sections: defaults and the listen requirement. */
	for (size_t i = 0; rc == 0 && i < out->nsections; i++) {
		sd_conf_section *s = &out->sections[i];
		if (!s->module) {
			if (s->enabled && !valid_module_name(s->name)) {
				seterr(err, errlen,
				       "%s:%d: [%s] section name is not a module name: set 'module = NAME'",
				       path, s->line, s->name);
				rc = -SD_ECONFIG;
				break;
			}
			s->module = sd_xstrdup(s->name);
		}
		if (s->enabled && !s->listen_host) {
			seterr(err, errlen, "%s:%d: [%s] enabled section needs a 'listen' key (e.g. listen = 127.0.0.1:2121)",
			       path, s->line, s->name);
			rc = -SD_ECONFIG;
		}
	}
	if (rc == 0)
		rc = finish_storaged(out, &ld.storaged, path, err, errlen);
	if (rc == 0)
		rc = finish_store_keys(out, &ld.store, path, err, errlen);
	else
		free_section(&ld.store);

	for (size_t j = 0; j < ld.storaged.nentries; j++) {
		free(ld.storaged.entries[j].key);
		free(ld.storaged.entries[j].value);
	}
	free(ld.storaged.entries);
	free(ld.common);
	free(ld.entries_cap);
	if (rc < 0) {
		sd_conf_free(out);
		return rc;
	}
	return 0;
}

int sd_conf_defaults(sd_conf *out, const char *dir, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	if (err && errlen)
		err[0] = '\0';
	if (dir && dir[0] != '/') {
		char *real = realpath(dir, NULL);
		out->config_dir = real ? real : sd_xstrdup(dir);
	} else {
		out->config_dir = sd_xstrdup(dir ? dir : "/");
	}
	sd_conf_section empty;
	memset(&empty, 0, sizeof empty);
	empty.name = "storaged";
	int rc = finish_storaged(out, &empty, NULL, err, errlen);
	if (rc < 0)
		sd_conf_free(out);
	return rc;
}

/* ------------------------------------------------------------ docs */

char *sd_conf_doc(const char *section, const sd_conf_item *table)
{
	sd_buf b = SD_BUF_INIT;
	if (section)
		sd_buf_printf(&b, "## [%s]\n\n", section);
	for (const sd_conf_item *it = table; it && it->name; it++) {
		const char *def = it->def ? it->def : "";
		sd_buf_printf(&b, "### `%s`\n\n", it->name);
		sd_buf_printf(&b, "- type: %s\n", type_word(it->type));
		if (*def)
			sd_buf_printf(&b, "- default: `%s`\n", def);
		else if (it->type == SD_CONF_STR || it->type == SD_CONF_PATH)
			sd_buf_puts(&b, "- default: empty\n");
		else
			sd_buf_puts(&b, "- default: `0`\n");
		const conf_range *r = table == sd_conf_table ? find_range(it->name) : NULL;
		if (r)
			sd_buf_printf(&b, "- range: %s\n", r->text);
		sd_buf_printf(&b, "\n%s\n\n", it->help ? it->help : "");
	}
	return sd_buf_steal(&b);
}
