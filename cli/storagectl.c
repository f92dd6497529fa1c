/*
 * storagectl.c - the administration tool of storaged.
 *
 * Design notes
 * ------------
 * storagectl opens the engine in-process on the same data directory as a
 * running daemon (SQLite in WAL mode makes concurrent processes safe; blob
 * files are immutable once renamed into place). It never touches SQLite or
 * the blob directory itself: every operation goes through the same function
 * table the front ends use (sd_core_api_table()), plus sd_core_fsck and
 * sd_core_session from core.h. So a file put here is the same stored object
 * the FTP, SFTP and HTTP front ends serve.
 *
 * The engine is opened with flags 0: no start-up recovery sweep (the daemon
 * may be running and own the temp files in flight) and no cleaner thread.
 *
 * Invariants
 *  1. Usage errors are detected before the engine is opened, so a wrong
 *     command line exits 2 even when the configuration is missing.
 *  2. Exit status: 0 success, 1 failure (one line "storagectl: WHAT:
 *     REASON" on stderr per failure), 2 usage error (message + usage).
 *  3. `import` prints "imported PATH SIZE SHA256 [dedup]" for a file only
 *     after upload_commit() returned 0 for it, and flushes stdout at once:
 *     a line on stdout is a promise that the file is durably stored. Lines
 *     from worker threads are written under one mutex, whole.
 *  4. `get` never leaves a partial LOCAL: it writes a temp file beside it,
 *     fsyncs it and renames it into place.
 *  5. Sizes chosen by the operator (quota, SIZE, DUR) go through the
 *     config parsers, so they accept exactly what storaged.conf accepts.
 *
 * Import pipeline
 *
 *     walk (main thread, no symlink following)
 *        |  entries: dirs in pre-order, regular files
 *        v
 *     mkdir every dir (main thread, parents first)
 *        |
 *        v
 *     queue of files --> N workers: open, upload_begin, upload_write x k,
 *        |               upload_commit, chmod/set_mtime, print line
 *        v
 *     set_mtime on dirs, deepest first; summary
 *
 * JSON output is written by hand (json_str below escapes strings per
 * RFC 8259); the tool does not link jansson.
 */
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "core/conf.h"
#include "core/core.h"
#include "core/log.h"
#include "core/storaged.h"
#include "util/sys.h"
#include "util/util.h"

#ifndef SD_VERSION
#define SD_VERSION "unknown"
#endif

#define DEFAULT_CONF "/etc/storaged/storaged.conf"
#define CHUNK (1u << 20)      /* upload/download copy chunk */
#define IMPORT_JOBS 4         /* default worker threads for import */
#define IMPORT_JOBS_MAX 64
#define MAX_POS 8             /* positional arguments per command */
#define PASSWORD_MAX 1024     /* longest password accepted on stdin */

static const char usage_text[] =
    "usage: storagectl [-c FILE] [-v] COMMAND [ARGS...]\n"
    "\n"
    "  -c FILE   configuration (default: $STORAGED_CONF, else " DEFAULT_CONF ")\n"
    "  -v        engine log messages (info and above) on stderr\n"
    "\n"
    "users:\n"
    "  user add NAME [--password-stdin] [--quota SIZE] [--admin]\n"
    "  user passwd NAME [--password-stdin]\n"
    "  user disable NAME | user enable NAME\n"
    "  user quota NAME SIZE            (0 = unlimited)\n"
    "  user admin NAME yes|no\n"
    "  user list [--json]\n"
    "  user key add NAME PUBKEYFILE    (OpenSSH .pub / authorized_keys; - = stdin)\n"
    "tokens:\n"
    "  token create NAME [--expires DUR] [--scope ro|rw]\n"
    "  token revoke ID\n"
    "  token list [NAME] [--json]\n"
    "files (as user USER):\n"
    "  put USER LOCAL REMOTE\n"
    "  get USER REMOTE LOCAL           (LOCAL - = stdout)\n"
    "  ls USER [PATH] [--json]\n"
    "  rm USER PATH [-r]\n"
    "  mkdir USER PATH [-p]\n"
    "  import USER LOCALDIR [REMOTEDIR] [-j N]\n"
    "maintenance:\n"
    "  stats [--json]\n"
    "  gc [--now]\n"
    "  fsck [--repair]\n"
    "  journal [--since TIME] [--user NAME] [--json]\n"
    "                                  (TIME: 2026-11-21T10:00:00 UTC, or 10m ago)\n"
    "  version\n";

/* ------------------------------------------------------------ globals */

static const char *g_conf_path;
static int g_verbose;
static sd_conf g_conf;
static int g_conf_loaded;
static sd_core *g_core;
static sd_session *g_sess; /* the file commands' session, closed with the core */
static const sd_core_api *A;

/* ------------------------------------------------------------ messages */

/* Print "storagectl: WHAT: REASON" on stderr; returns 1 (the exit code). */
static int fail(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(const char *what, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "storagectl: %s: %s\n", what, msg);
	return 1;
}

/* Words for an engine (negative SD_E* or -errno) error. Safe before the
 * engine is open. */
static const char *errstr(int err)
{
	if (A)
		return A->strerror(err);
	return strerror(err < 0 ? -err : err);
}

static void warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void warnx(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "storagectl: warning: %s\n", msg);
}

/* A usage error: message, the usage text, exit status 2. */
static int usage_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_err(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "storagectl: %s\n\n%s", msg, usage_text);
	return 2;
}

/* ------------------------------------------------------------ JSON */

/* Write s as a JSON string literal (quotes included) to f. Control
 * characters, quote and backslash are escaped; other bytes (UTF-8) pass. */
static void json_str(FILE *f, const char *s)
{
	if (!s) {
		fputs("null", f);
		return;
	}
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		case '\b': fputs("\\b", f); break;
		case '\f': fputs("\\f", f); break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

/* Print a name for humans on one line: control characters and backslash
 * are shown as C escapes (\n, \\, \xHH) so one name is always one line. */
static void human_str(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '\\')
			fputs("\\\\", f);
		else if (*p == '\n')
			fputs("\\n", f);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\x%02x", *p);
		else
			fputc(*p, f);
	}
}

/* ------------------------------------------------------------ time */

/* ms since the epoch -> "2026-11-21T10:00:00Z" (with_ms: ".123Z"). */
static void fmt_iso(int64_t ms, int with_ms, char *out, size_t outlen)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	if (!gmtime_r(&t, &tm)) {
		snprintf(out, outlen, "?");
		return;
	}
	char base[32];
	strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
	if (with_ms)
		snprintf(out, outlen, "%s.%03dZ", base, (int)(ms % 1000));
	else
		snprintf(out, outlen, "%sZ", base);
}

/* Parse an absolute UTC time "YYYY-MM-DDTHH:MM[:SS][Z]", "YYYY-MM-DD
 * HH:MM[:SS]" or "YYYY-MM-DD" into ms. 0 or -EINVAL. */
static int parse_iso(const char *s, int64_t *out_ms)
{
	static const char *fmts[] = {"%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S",
				     "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d", NULL};
	for (int i = 0; fmts[i]; i++) {
		struct tm tm;
		memset(&tm, 0, sizeof tm);
		const char *end = strptime(s, fmts[i], &tm);
		if (!end)
			continue;
		if (*end == 'Z')
			end++;
		if (*end)
			continue;
		time_t t = timegm(&tm);
		if (t == (time_t)-1)
			return -EINVAL;
		*out_ms = (int64_t)t * 1000;
		return 0;
	}
	return -EINVAL;
}

/* ------------------------------------------------------------ args */

/* One option of a command. Flags (takes_arg 0) set *val to "1". */
typedef struct optdef {
	const char *name;  /* "--quota" */
	const char *alias; /* "-q" or NULL */
	int takes_arg;
	const char **val;
} optdef;

/* Split argv[0..argc) into positionals (pos, at most maxpos) and the
 * options in opts (which may appear anywhere; "--" ends options, "-" is a
 * positional, "--name=value" works). Returns 0, or prints a usage error
 * and returns 2. */
static int getargs(int argc, char **argv, const optdef *opts, char **pos, int maxpos,
		   int *npos)
{
	int n = 0, only_pos = 0;
	for (int i = 0; i < argc; i++) {
		char *a = argv[i];
		if (!only_pos && strcmp(a, "--") == 0) {
			only_pos = 1;
			continue;
		}
		if (only_pos || a[0] != '-' || a[1] == '\0') {
			if (n >= maxpos)
				return usage_err("too many arguments at '%s'", a);
			pos[n++] = a;
			continue;
		}
		const char *eq = strchr(a, '=');
		size_t nl = eq && a[1] == '-' ? (size_t)(eq - a) : strlen(a);
		const optdef *o = NULL;
		for (int k = 0; opts && opts[k].name; k++) {
			if ((strlen(opts[k].name) == nl && strncmp(opts[k].name, a, nl) == 0) ||
			    (opts[k].alias && strlen(opts[k].alias) == nl &&
			     strncmp(opts[k].alias, a, nl) == 0)) {
				o = &opts[k];
				break;
			}
		}
		if (!o)
			return usage_err("unknown option '%s'", a);
		if (!o->takes_arg) {
			if (eq && a[1] == '-')
				return usage_err("option '%s' takes no value", o->name);
			*o->val = "1";
		} else if (eq && a[1] == '-') {
			*o->val = eq + 1;
		} else {
			if (i + 1 >= argc)
				return usage_err("option '%s' needs a value", o->name);
			*o->val = argv[++i];
		}
	}
	*npos = n;
	return 0;
}

/* ------------------------------------------------------------ engine */

/* Load the configuration and open the engine (flags 0). Returns 0, or
 * prints the reason and returns 1. */
/* Run as root on a data directory owned by another user (the packaged
 * `storaged` user), become that user first: files storagectl creates (the
 * database's WAL, blobs, temp files) must stay writable by the daemon.
 * Returns 0, or 1 after printing why the switch failed. */
static int become_data_owner(const char *data_dir)
{
	struct stat st;
	if (geteuid() != 0 || stat(data_dir, &st) != 0 || st.st_uid == 0)
		return 0;
	if (setgroups(0, NULL) != 0 || setgid(st.st_gid) != 0 || setuid(st.st_uid) != 0)
		return fail("open", "cannot switch to the owner (uid %u) of %s: %s",
			    (unsigned)st.st_uid, data_dir, strerror(errno));
	return 0;
}

static int core_open(void)
{
	char err[512];
	const char *path = g_conf_path;
	if (!path)
		path = getenv("STORAGED_CONF");
	if (!path || !*path)
		path = DEFAULT_CONF;
	int rc = sd_conf_load(path, &g_conf, err, sizeof err);
	if (rc < 0)
		return fail("config", "%s", err);
	g_conf_loaded = 1;
	if (g_verbose)
		sd_log_set_level(g_conf.log_level < SD_LOG_INFO ? g_conf.log_level : SD_LOG_INFO);
	if (become_data_owner(g_conf.data_dir))
		return 1;
	g_core = sd_core_open(&g_conf, 0, err, sizeof err);
	if (!g_core)
		return fail("open", "%s", err);
	A = sd_core_api_table();
	return 0;
}

static void core_close(void)
{
	if (g_sess)
		A->session_close(g_sess);
	g_sess = NULL;
	if (g_core)
		sd_core_close(g_core);
	g_core = NULL;
	if (g_conf_loaded)
		sd_conf_free(&g_conf);
	g_conf_loaded = 0;
}

/* A session acting as user NAME for file commands (the one place that
 * turns a user name into what the tree calls take). 0, or prints and
 * returns 1. Released by core_close(). */
static int get_user(const char *name, sd_session **s)
{
	int rc = sd_core_session(g_core, name, s);
	if (rc < 0)
		return fail(name, "%s", rc == -ENOENT ? "no such user" : errstr(rc));
	g_sess = *s;
	return 0;
}

/* path resolved as the engine will see it (for messages). */
static int norm_path(sd_session *s, const char *p, char *out, size_t n)
{
	return A->resolve(s, p, strlen(p), out, n);
}

static int parse_size_arg(const char *s, int64_t *out)
{
	if (strcmp(s, "none") == 0 || strcmp(s, "unlimited") == 0) {
		*out = 0;
		return 0;
	}
	if (sd_conf_parse_size(s, out) < 0 || *out < 0)
		return usage_err("bad size '%s' (e.g. 500M, 10G, 0 = unlimited)", s);
	return 0;
}

/* ------------------------------------------------------------ passwords */

/* Read one line from stdin into buf, newline (and a CR before it)
 * stripped. 0, -EINVAL (empty / too long / no line), -EIO. */
static int read_line_stdin(char *buf, size_t buflen)
{
	if (!fgets(buf, (int)buflen, stdin))
		return ferror(stdin) ? -EIO : -EINVAL;
	size_t n = strlen(buf);
	if (n == buflen - 1 && buf[n - 1] != '\n' && !feof(stdin))
		return -E2BIG;
	if (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (n && buf[n - 1] == '\r')
		buf[--n] = '\0';
	return n ? 0 : -EINVAL;
}

/* Prompt on the terminal (stdin) with echo off. 0, -ENOTTY, -EINVAL. */
static int prompt_password(const char *prompt, char *buf, size_t buflen)
{
	if (!isatty(STDIN_FILENO))
		return -ENOTTY;
	struct termios old, quiet;
	if (tcgetattr(STDIN_FILENO, &old) < 0)
		return -ENOTTY;
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	quiet.c_lflag |= ECHONL;
	fputs(prompt, stderr);
	fflush(stderr);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	int rc = read_line_stdin(buf, buflen);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	return rc;
}

/* The new password: one stdin line, or typed twice on a tty. 0 or exit
 * code 1 after printing why. */
static int get_new_password(const char *what, int from_stdin, char *pw, size_t pwlen)
{
	int rc;
	if (from_stdin) {
		rc = read_line_stdin(pw, pwlen);
		if (rc == -EINVAL)
			return fail(what, "no password on stdin (empty line or end of input)");
		if (rc == -E2BIG)
			return fail(what, "password longer than %d bytes", PASSWORD_MAX - 2);
		if (rc < 0)
			return fail(what, "reading stdin: %s", strerror(-rc));
		return 0;
	}
	char again[PASSWORD_MAX];
	rc = prompt_password("New password: ", pw, pwlen);
	if (rc == -ENOTTY)
		return fail(what, "stdin is not a terminal (use --password-stdin)");
	if (rc < 0)
		return fail(what, "empty password");
	rc = prompt_password("Repeat password: ", again, sizeof again);
	int same = rc == 0 && strcmp(pw, again) == 0;
	memset(again, 0, sizeof again);
	if (!same) {
		memset(pw, 0, pwlen);
		return fail(what, "passwords do not match");
	}
	return 0;
}

/* ------------------------------------------------------------ user */

typedef struct list_ctx {
	int json;
	int n;
} list_ctx;

static int user_list_cb(void *arg, const sd_user *u)
{
	list_ctx *lc = arg;
	if (lc->json) {
		fputs(lc->n ? ",\n  {" : "\n  {", stdout);
		fputs("\"name\": ", stdout);
		json_str(stdout, u->name);
		printf(", \"id\": %" PRId64 ", \"admin\": %s, \"disabled\": %s, \"quota\": %" PRId64
		       ", \"used\": %" PRId64 "}",
		       u->id, (u->flags & SD_USER_ADMIN) ? "true" : "false",
		       (u->flags & SD_USER_DISABLED) ? "true" : "false", u->quota, u->used);
	} else {
		char q[32];
		if (u->quota)
			snprintf(q, sizeof q, "%" PRId64, u->quota);
		else
			snprintf(q, sizeof q, "unlimited");
		printf("%-20s %-5s %-8s %14s %14" PRId64 "\n", u->name,
		       (u->flags & SD_USER_ADMIN) ? "yes" : "no",
		       (u->flags & SD_USER_DISABLED) ? "yes" : "no", q, u->used);
	}
	lc->n++;
	return 0;
}

static int cmd_user_list(int argc, char **argv)
{
	const char *json = NULL;
	optdef opts[] = {{"--json", NULL, 0, &json}, {NULL, NULL, 0, NULL}};
	char *pos[MAX_POS];
	int npos, rc = getargs(argc, argv, opts, pos, MAX_POS, &npos);
	if (rc)
		return rc;
	if (npos)
		return usage_err("user list takes no arguments");
	if (core_open())
		return 1;
	list_ctx lc = {json != NULL, 0};
	if (lc.json)
		fputs("[", stdout);
	else
		printf("%-20s %-5s %-8s %14s %14s\n", "NAME", "ADMIN", "DISABLED", "QUOTA", "USED");
	rc = A->user_list(g_core, user_list_cb, &lc);
	if (lc.json)
		fputs(lc.n ? "\n]\n" : "]\n", stdout);
	if (rc < 0)
		return fail("user list", "%s", errstr(rc));
	return 0;
}

static int cmd_user_add(int argc, char **argv)
{
	const char *pwstdin = NULL, *quota_s = NULL, *admin = NULL;
	optdef opts[] = {{"--password-stdin", NULL, 0, &pwstdin},
			 {"--quota", NULL, 1, &quota_s},
			 {"--admin", NULL, 0, &admin},
			 {NULL, NULL, 0, NULL}};
	char *pos[MAX_POS];
	int npos, rc = getargs(argc, argv, opts, pos, MAX_POS, &npos);
	if (rc)
		return rc;
	if (npos != 1)
		return usage_err("user add needs exactly one NAME");
	int64_t quota = 0;
	if (quota_s && (rc = parse_size_arg(quota_s, &quota)))
		return rc;
	char pw[PASSWORD_MAX];
	if (get_new_password("user add", pwstdin != NULL, pw, sizeof pw))
		return 1;
	if (core_open()) {
		memset(pw, 0, sizeof pw);
		return 1;
	}
	int64_t id = 0;
	rc = A->user_add(g_core, pos[0], pw, quota, admin ? SD_USER_ADMIN : 0, &id);
	memset(pw, 0, sizeof pw);
	if (rc == -EEXIST)
		return fail("user add", "user '%s' already exists", pos[0]);
	if (rc < 0)
		return fail("user add", "%s: %s", pos[0], errstr(rc));
	printf("added user %s (id %" PRId64 ")\n", pos[0], id);
	return 0;
}

static int cmd_user_passwd(int argc, char **argv)
{
	const char *pwstdin = NULL;
	optdef opts[] = {{"--password-stdin", NULL, 0, &pwstdin}, {NULL, NULL, 0, NULL}};
	char *pos[MAX_POS];
	int npos, rc = getargs(argc, argv, opts, pos, MAX_POS, &npos);
	if (rc)
		return rc;
	if (npos != 1)
		return usage_err("user passwd needs exactly one NAME");
	char pw[PASSWORD_MAX];
	if (get_new_password("user passwd", pwstdin != NULL, pw, sizeof pw))
		return 1;
	if (core_open()) {
		memset(pw, 0, sizeof pw);
		return 1;
	}
	rc = A->user_set_password(g_core, pos[0], pw);
	memset(pw, 0, sizeof pw);
	if (rc < 0)
		return fail("user passwd", "%s: %s", pos[0],
			    rc == -ENOENT ? "no such user" : errstr(rc));
	printf("password changed for %s\n", pos[0]);
	return 0;
}

/* user disable|enable|quota|admin NAME [VALUE] */
static int cmd_user_set(const char *sub, int argc, char **argv)
{
	char *pos[MAX_POS];
	int npos, rc = getargs(argc, argv, NULL, pos, MAX_POS, &npos);
	if (rc)
		return rc;
	int want = (strcmp(sub, "quota") == 0 || strcmp(sub, "admin") == 0) ? 2 : 1;
	if (npos != want)
		return usage_err("user %s needs %s", sub, want == 2 ? "NAME and a value" : "one NAME");
	int64_t quota = 0;
	int admin = 0;
	if (strcmp(sub, "quota") == 0 && (rc = parse_size_arg(pos[1], &quota)))
		return rc;
	if (strcmp(sub, "admin") == 0 && sd_conf_parse_bool(pos[1], &admin) < 0)
		return usage_err("user admin NAME yes|no");
	if (core_open())
		return 1;
	if (strcmp(sub, "disable") == 0)
		rc = A->user_set_disabled(g_core, pos[0], 1);
	else if (strcmp(sub, "enable") == 0)
		rc = A->user_set_disabled(g_core, pos[0], 0);
	else if (strcmp(sub, "quota") == 0)
		rc = A->user_set_quota(g_core, pos[0], quota);
	else
		rc = A->user_set_admin(g_core, pos[0], admin);
	if (rc < 0) {
		char what[64];
		snprintf(what, sizeof what, "user %s", sub);
		return fail(what, "%s: %s", pos[0], rc == -ENOENT ? "no such user" : errstr(rc));
	}
	if (strcmp(sub, "quota") == 0) {
		if (quota)
			printf("quota of %s set to %" PRId64 " bytes\n", pos[0], quota);
		else
			printf("quota of %s set to unlimited\n", pos[0]);
	} else if (strcmp(sub, "admin") == 0) {
		printf("%s is %s an admin\n", pos[0], admin ? "now" : "no longer");
	} else {
		printf("user %s %sd\n", pos[0], sub);
	}
	return 0;
}

static int cmd_user_key(int argc, char **argv)
{
	char *pos[MAX_POS];
	int npos, rc = getargs(argc, argv, NULL, pos, MAX_POS, &npos);
	if (rc)
		return rc;
	if (npos != 3 || strcmp(pos[0], "add") != 0)
		return usage_err("user key add NAME PUBKEYFILE");
	const char *name = pos[1], *file = pos[2];
	FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
	if (!f)
		return fail("user key add", "%s: %s", file, strerror(errno));
	if (core_open()) {
		if (f != stdin)
			fclose(f);
		return 1;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int added = 0, bad = 0, dups = 0, lineno = 0;
	while ((len = getline(&line, &cap, f)) >= 0) {
		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		char *p = line;
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p || *p == '#')
			continue;
		if (len > 16384) {
			fail("user key add", "%s:%d: line too long", file, lineno);
			bad++;
			continue;
		}
		rc = A->key_add(g_core, name, p);
		if (rc == -EEXIST) {
			warnx("%s:%d: key already registered for %s", file, lineno, name);
			dups++;
			continue;
		}
		if (rc < 0) {
			fail("user key add", "%s:%d: %s", file, lineno,
			     rc == -ENOENT ? "no such user" : errstr(rc));
			bad++;
			if (rc == -ENOENT)
				break;
			continue;
		}
		added++;
	}
	free(line);
	if (f != stdin)
		fclose(f);
	if (added == 0 && bad == 0 && dups == 0)
		return fail("user key add", "%s: no keys in file", file);
	printf("added %d key%s for %s\n", added, added == 1 ? "" : "s", name);
	return bad ? 1 : 0;
}

static int cmd_user(int argc, char **argv)
{
	if (argc < 1)
		return usage_err("user: missing subcommand");
	const char *sub = argv[0];
	if (strcmp(sub, "add") == 0)
		return cmd_user_add(argc - 1, argv + 1);
	if (strcmp(sub, "passwd") == 0)
		return cmd_user_passwd(argc - 1, argv + 1);
	if (strcmp(sub, "disable") == 0 || strcmp(sub, "enable") == 0 ||
	    strcmp(sub, "quota") == 0 || strcmp(sub, "admin") == 0)
		return cmd_user_set(sub, argc - 1, argv + 1);
	if (strcmp(sub, "list") == 0)
		return cmd_user_list(argc - 1, argv + 1);
	if (strcmp(sub, "key") == 0)
		return cmd_user_key(argc - 1, argv + 1);
	return usage_err("user: unknown subcommand '%s'", sub);
}

/* ------------------------------------------------------------ token */

static int cmd_token_create(int argc, char **argv)
{
	const char *exp_s = NULL, *scope_s = NULL;
	optdef opts[] = {{"--expires", NULL, 1, &exp_s},
			 {"--scope", NULL, 1, &scope_s},
			 {NULL, NULL, 0, NULL}};
	char *pos[MAX_POS];
	int npos, rc = getargs(argc, argv, opts, pos, MAX_POS, &npos);
	if (rc)
		return rc;
	if (npos != 1)
		return usage_err("token create needs exactly one NAME");
	int64_t exp_ms = 0;
	if (exp_s && (sd_conf_parse_duration(exp_s, &exp_ms) < 0 || exp_ms < 0))
		return usage_err("bad duration '%s' (e.g. 30d, 12h, 0 = never)", exp_s);
	int scope = SD_SCOPE_RW;
	if (scope_s) {
		if (strcmp(scope_s, "ro") == 0)
			scope = SD_SCOPE_RO;
		else if (strcmp(scope_s, "rw") != 0)
			return usage_err("bad scope '%s' (ro or rw)", scope_s);
	}
	if (core_open())
		return 1;
	char tok[SD_TOKEN_MAX];
	int64_t id = 0;
	int64_t exp_s_val = exp_ms ? (exp_ms + 999) / 1000 : 0;
	rc = A->token_create(g_core, pos[0], scope, exp_s_val, tok, &id);
	if (rc < 0)
		return fail("token create", "%s: %s", pos[0],
			    rc == -ENOENT ? "no such user" : errstr(rc));
	printf("%s\n", tok);
	fflush(stdout);
	char when[48];
	if (exp_s_val) {
		char iso[40];
		fmt_iso((A->now(g_core) + exp_s_val) * 1000, 0, iso, sizeof iso);
		snprintf(when, sizeof when, "expires %s", iso);
	} else {
		snprintf(when, sizeof when, "never expires");
	}
	fprintf(stderr, "storagectl: token %" PRId64 " for %s (%s, %s): shown once, store it now\n",
		id, pos[0], scope == SD_SCOPE_RO ? "read-only" : "read-write", when);
	memset(tok, 0, sizeof tok);
	return 0;
}

static int cmd_token_revoke(int argc, char **argv)
{
	char *pos[MAX_POS];
	int npos, rc = getargs(argc, argv, NULL, pos, MAX_POS, &npos);
	if (rc)
		return rc;
	if (npos != 1)
		return usage_err("token revoke needs exactly one ID");
	int64_t id;
	if (sd_conf_parse_int(pos[0], &id) < 0 || id <= 0)
		return usage_err("bad token id '%s'", pos[0]);
	if (core_open())
		return 1;
	rc = A->token_revoke(g_core, id);
	if (rc < 0)
		return fail("token revoke", "%" PRId64 ": %s", id,
			    rc == -ENOENT ? "no such token" : errstr(rc));
	printf("token %" PRId64 " revoked\n", id);
	return 0;
}

typedef struct token_ctx {
	int json, n;
	int64_t now;
} token_ctx;

static int token_list_cb(void *arg, const sd_token_info *t)
{
	token_ctx *tc = arg;
	char created[40], expires[40];
	const char *state = t->revoked ? "revoked"
			    : (t->expires && t->expires <= tc->now) ? "expired" : "active";
	fmt_iso(t->created * 1000, 0, created, sizeof created);
	if (t->expires)
		fmt_iso(t->expires * 1000, 0, expires, sizeof expires);
	else
		snprintf(expires, sizeof expires, "never");
	if (tc->json) {
		fputs(tc->n ? ",\n  {" : "\n  {", stdout);
		printf("\"id\": %" PRId64 ", \"user\": ", t->id);
		json_str(stdout, t->user);
		printf(", \"scope\": \"%s\", \"created\": \"%s\", \"expires\": ",
		       t->readonly ? "ro" : "rw", created);
		if (t->expires)
			printf("\"%s\"", expires);
		else
			fputs("null", stdout);
		printf(", \"revoked\": %s, \"state\": \"%s\"}", t->revoked ? "true" : "false", state);
	} else {
		printf("%6" PRId64 " %-20s %-5s %-20s %-20s %s\n", t->id, t->user,
		       t->readonly ? "ro" : "rw", created, expires, state);
	}
	tc->n++;
	return 0;
}

static int cmd_token_list(int argc, char **argv)
{
	const char *json = NULL;
	optdef opts[] = {{"--json", NULL, 0, &json}, {NULL, NULL, 0, NULL}};
	char *pos[MAX_POS];
	int npos, rc = getargs(argc, argv, opts, pos, MAX_POS, &npos);
	if (rc)
		return rc;
	if (npos > 1)
		return usage_err("token list takes at most one NAME");
	if (core_open())
		return 1;
	token_ctx tc = {json != NULL, 0, A->now(g_core)};
	if (tc.json)
		fputs("[", stdout);
	else
		printf("%6s %-20s %-5s %-20s %-20s %s\n", "ID", "USER", "SCOPE", "CREATED",
		       "EXPIRES", "STATE");
	rc = A->token_list(g_core, npos ? pos[0] : NULL, token_list_cb, &tc);
	if (tc.json)
		fputs(tc.n ? "\n]\n" : "]\n", stdout);
	if (rc < 0)
		return fail("token list", "%s", rc == -ENOENT ? "no such user" : errstr(rc));
	return 0;
}

static int cmd_token(int argc, char **argv)
{
	if (argc < 1)
		return usage_err("token: missing subcommand");
	if (strcmp(argv[0], "create") == 0)
		return cmd_token_create(argc - 1, argv + 1);
	if (strcmp(argv[0], "revoke") == 0)
		return cmd_token_revoke(argc - 1, argv + 1);
	if (strcmp(argv[0], "list") == 0)
		return cmd_token_list(argc - 1, argv + 1);
	return usage_err("token: unknown subcommand '%s'", argv[0]);
}

/* ------------------------------------------------------------ upload */

/* Stream the open local descriptor fd into REMOTE for u: upload_begin
 * (SD_UP_PARENTS), writes of CHUNK, commit. buf has CHUNK bytes. On
 * success fills st and *dedup and returns 0; on failure returns the
 * negative error and sets *where to "read" (local) or "upload" (engine). */
static int upload_fd(sd_session *u, int fd, const char *remote, uint32_t mode, int64_t mtime,
		     char *buf, sd_stat *st, int *dedup, const char **where)
{
	sd_upload *up = NULL;
	*where = "upload";
	int rc = A->upload_begin(u, remote, SD_UP_PARENTS, 0, mode, &up);
	if (rc < 0)
		return rc;
	for (;;) {
		ssize_t n = sd_sys_read(fd, buf, CHUNK);
		if (n < 0) {
			*where = "read";
			A->upload_abort(up);
			return (int)n;
		}
		if (n == 0)
			break;
		rc = A->upload_write(up, buf, (size_t)n);
		if (rc < 0) {
			A->upload_abort(up);
			return rc;
		}
		if ((size_t)n < CHUNK)
			break; /* sd_sys_read loops until CHUNK or EOF */
	}
	*dedup = 0;
	if (mtime > 0)
		A->upload_set_mtime(up, mtime); /* in the commit itself */
	return A->upload_commit(up, NULL, st, dedup);
}

static int cmd_put(int argc, char **argv)
{
	char *pos[MAX_POS];
	int npos, rc = getargs(argc, argv, NULL, pos, MAX_POS, &npos);
	if (rc)
		return rc;
	if (npos != 3)
		return usage_err("put needs USER LOCAL REMOTE");
	const char *local = pos[1], *remote = pos[2];
	int fd = strcmp(local, "-") == 0 ? STDIN_FILENO : sd_sys_open(local, O_RDONLY, 0);
	if (fd < 0)
		return fail("put", "%s: %s", local, strerror(-fd));
	uint32_t mode = 0644;
	struct stat lst;
	if (fd != STDIN_FILENO) {
		if (fstat(fd, &lst) < 0 || !S_ISREG(lst.st_mode)) {
			sd_sys_close(fd);
			return fail("put", "%s: not a regular file", local);
		}
		mode = lst.st_mode & 07777;
	}
	sd_session *u;
	if (core_open() || get_user(pos[0], &u)) {
		if (fd != STDIN_FILENO)
			sd_sys_close(fd);
		return 1;
	}
	char *buf = sd_xmalloc(CHUNK);
	sd_stat st;
	int dedup = 0;
	const char *where;
	rc = upload_fd(u, fd, remote, mode, 0, buf, &st, &dedup, &where);
	free(buf);
	if (fd != STDIN_FILENO)
		sd_sys_close(fd);
	if (rc < 0)
		return fail("put", "%s: %s", strcmp(where, "read") == 0 ? local : remote,
			    strcmp(where, "read") == 0 ? strerror(-rc) : errstr(rc));
	char norm[SD_PATH_MAX + 1];
	if (norm_path(u, remote, norm, sizeof norm) < 0)
		snprintf(norm, sizeof norm, "%s", remote);
	fputs("stored ", stdout);
	human_str(stdout, norm);
	printf(" %" PRIu64 " %s%s\n", st.size, st.sha256, dedup ? " dedup" : "");
	return 0;
}

/* ------------------------------------------------------------ get */

/* Copy [0,size) of a reader to out with write (works for pipes); to a
 * file, with copy_file_range when the content is a local file. */
static int copy_to_fd(sd_reader *in, int out, uint64_t size, int seekable)
{
	int lfd;
	uint64_t base;
	if (seekable && A->reader_fd(in, &lfd, &base) == 0 && base == 0)
		return sd_sys_copy_range(lfd, out, size);
	char *buf = sd_xmalloc(CHUNK);
	uint64_t off = 0;
	int rc = 0;
	while (off < size) {
		size_t want = size - off < CHUNK ? (size_t)(size - off) : CHUNK;
		ssize_t n = A->reader_pread(in, buf, want, off);
		if (n < 0) {
			rc = (int)n;
			break;
		}
		if (n == 0) {
			rc = -SD_ECORRUPT; /* blob shorter than its row says */
			break;
		}
		if ((rc = sd_sys_write(out, buf, (size_t)n)) < 0)
			break;
		off += (uint64_t)n;
	}
	free(buf);
	return rc;
}

static int cmd_get(int argc, char **argv)
{
	char *pos[MAX_POS];
	int npos, rc = getargs(argc, argv, NULL, pos, MAX_POS, &npos);
	if (rc)
		return rc;
	if (npos != 3)
		return usage_err("get needs USER REMOTE LOCAL");
	const char *remote = pos[1], *local = pos[2];
	sd_session *u;
	if (core_open() || get_user(pos[0], &u))
		return 1;
	sd_reader *fd = NULL;
	sd_stat st;
	rc = A->open_read(u, remote, &fd, &st);
	if (rc < 0)
		return fail("get", "%s: %s", remote, errstr(rc));
	if (strcmp(local, "-") == 0) {
		rc = copy_to_fd(fd, STDOUT_FILENO, st.size, 0);
		A->reader_close(fd);
		if (rc < 0)
			return fail("get", "%s: %s", remote, errstr(rc));
		return 0;
	}
	/* LOCAL may be an existing directory: store under the remote name. */
	char target[PATH_MAX];
	struct stat lst;
	if (stat(local, &lst) == 0 && S_ISDIR(lst.st_mode)) {
		const char *base = strrchr(remote, '/');
		base = base ? base + 1 : remote;
		if (!*base)
			base = "download";
		if (snprintf(target, sizeof target, "%s/%s", local, base) >= (int)sizeof target) {
			A->reader_close(fd);
			return fail("get", "%s: path too long", local);
		}
	} else if (snprintf(target, sizeof target, "%s", local) >= (int)sizeof target) {
		A->reader_close(fd);
		return fail("get", "%s: path too long", local);
	}
	char dir[PATH_MAX], tmp[PATH_MAX];
	const char *slash = strrchr(target, '/');
	const char *name = slash ? slash + 1 : target;
	if (slash)
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - target + (slash == target)), target);
	else
		snprintf(dir, sizeof dir, ".");
	if (snprintf(tmp, sizeof tmp, "%s/.%s.storagectl.XXXXXX", dir, name) >= (int)sizeof tmp) {
		A->reader_close(fd);
		return fail("get", "%s: path too long", target);
	}
	int out = mkstemp(tmp);
	if (out < 0) {
		int e = errno;
		A->reader_close(fd);
		return fail("get", "%s: %s", dir, strerror(e));
	}
	rc = copy_to_fd(fd, out, st.size, 1);
	A->reader_close(fd);
	if (rc < 0) {
		unlink(tmp);
		close(out);
		return fail("get", "%s: %s", remote, errstr(rc));
	}
	mode_t um = umask(0);
	umask(um);
	if (fchmod(out, (st.mode & 0777 ? st.mode & 0777 : 0644) & ~um) < 0 ||
	    (rc = sd_sys_fsync(out)) < 0) {
		int e = rc < 0 ? -rc : errno;
		unlink(tmp);
		close(out);
		return fail("get", "%s: %s", tmp, strerror(e));
	}
	struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_sec = st.mtime, .tv_nsec = 0}};
	futimens(out, ts);
	close(out);
	if ((rc = sd_sys_rename(tmp, target)) < 0) {
		unlink(tmp);
		return fail("get", "%s: %s", target, strerror(-rc));
	}
	return 0;
}

/* ------------------------------------------------------------ ls */

static void mode_string(int kind, uint32_t mode, char out[11])
{
	static const char rwx[] = "rwxrwxrwx";
	out[0] = kind == SD_KIND_DIR ? 'd' : '-';
	for (int i = 0; i < 9; i++)
		out[1 + i] = (mode & (0400u >> i)) ? rwx[i] : '-';
	out[10] = '\0';
}

typedef struct ls_ctx {
	int json, n;
} ls_ctx;

static void ls_print(ls_ctx *lc, const char *name, const sd_stat *st)
{
	char iso[40];
	fmt_iso(st->mtime * 1000, 0, iso, sizeof iso);
	if (lc->json) {
		fputs(lc->n ? ",\n  {" : "\n  {", stdout);
		fputs("\"name\": ", stdout);
		json_str(stdout, name);
		printf(", \"type\": \"%s\", \"size\": %" PRIu64 ", \"mode\": \"%04o\", "
		       "\"mtime\": \"%s\", \"sha256\": ",
		       st->kind == SD_KIND_DIR ? "dir" : "file", st->size, st->mode & 07777, iso);
		if (st->kind == SD_KIND_DIR)
			fputs("null", stdout);
		else
			json_str(stdout, st->sha256);
		fputs("}", stdout);
	} else {
		char m[11], when[32];
		mode_string(st->kind, st->mode, m);
		time_t t = (time_t)st->mtime;
		struct tm tm;
		if (gmtime_r(&t, &tm))
			strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
		else
			snprintf(when, sizeof when, "?");
		printf("%s %12" PRIu64 " %s ", m, st->size, when);
		human_str(stdout, name);
		fputs(st->kind == SD_KIND_DIR ? "/\n" : "\n", stdout);
	}
	lc->n++;
}

static int ls_cb(void *arg, const sd_dirent *e)
{
	ls_print(arg, e->name, &e->st);
	return 0;
}

static int cmd_ls(int argc, char **argv)
{
	const char *json = NULL;
	optdef opts[] = {{"--json", NULL, 0, &json}, {NULL, NULL, 0, NULL}};
	char *pos[MAX_POS];
	int npos, rc = getargs(argc, argv, opts, pos, MAX_POS, &npos);
	if (rc)
		return rc;
	if (npos < 1 || npos > 2)
		return usage_err("ls needs USER [PATH]");
	const char *path = npos == 2 ? pos[1] : "/";
	sd_session *u;
	if (core_open() || get_user(pos[0], &u))
		return 1;
	sd_stat st;
	rc = A->stat(u, path, &st);
	if (rc < 0)
		return fail("ls", "%s: %s", path, errstr(rc));
	ls_ctx lc = {json != NULL, 0};
	if (lc.json)
		fputs("[", stdout);
	if (st.kind == SD_KIND_DIR) {
		int more = 0;
		rc = A->readdir(u, path, NULL, 0, ls_cb, &lc, &more);
	} else {
		char norm[SD_PATH_MAX + 1];
		const char *base = path;
		if (norm_path(u, path, norm, sizeof norm) == 0) {
			base = strrchr(norm, '/');
			base = base ? base + 1 : norm;
		}
		ls_print(&lc, base, &st);
	}
	if (lc.json)
		fputs(lc.n ? "\n]\n" : "]\n", stdout);
	if (rc < 0)
		return fail("ls", "%s: %s", path, errstr(rc));
	return 0;
}

/* ------------------------------------------------------------ rm, mkdir */

static int cmd_rm(int argc, char **argv)
{
	const char *rec = NULL;
	optdef opts[] = {{"-r", "-R", 0, &rec}, {"--recursive", NULL, 0, &rec},
			 {NULL, NULL, 0, NULL}};
	char *pos[MAX_POS];
	int npos, rc = getargs(argc, argv, opts, pos, MAX_POS, &npos);
	if (rc)
		return rc;
	if (npos != 2)
		return usage_err("rm needs USER PATH");
	sd_session *u;
	if (core_open() || get_user(pos[0], &u))
		return 1;
	sd_stat st;
	rc = A->stat(u, pos[1], &st);
	if (rc < 0)
		return fail("rm", "%s: %s", pos[1], errstr(rc));
	if (st.kind == SD_KIND_DIR && !rec)
		return fail("rm", "%s: is a directory (use -r)", pos[1]);
	rc = A->unlink(u, pos[1], rec != NULL);
	if (rc < 0)
		return fail("rm", "%s: %s", pos[1], errstr(rc));
	return 0;
}

static int cmd_mkdir(int argc, char **argv)
{
	const char *parents = NULL;
	optdef opts[] = {{"-p", "--parents", 0, &parents}, {NULL, NULL, 0, NULL}};
	char *pos[MAX_POS];
	int npos, rc = getargs(argc, argv, opts, pos, MAX_POS, &npos);
	if (rc)
		return rc;
	if (npos != 2)
		return usage_err("mkdir needs USER PATH");
	sd_session *u;
	if (core_open() || get_user(pos[0], &u))
		return 1;
	rc = A->mkdir(u, pos[1], 0755, parents != NULL);
	if (rc == -EEXIST && parents) {
		sd_stat st;
		if (A->stat(u, pos[1], &st) == 0 && st.kind == SD_KIND_DIR)
			rc = 0;
	}
	if (rc < 0)
		return fail("mkdir", "%s: %s", pos[1], errstr(rc));
	return 0;
}

/* ------------------------------------------------------------ import */

typedef struct imp_entry {
	char *rel;    /* path relative to LOCALDIR, no leading '/' */
	int dir;
	uint32_t mode;
	int64_t mtime;
	uint64_t size;
} imp_entry;

typedef struct imp_ctx {
	sd_session *u;
	const char *localroot;
	char remoteroot[SD_PATH_MAX + 1]; /* normalised, "/" or "/a/b" */
	imp_entry *v;
	size_t n, cap;
	size_t *files; /* indexes of file entries in v */
	size_t nfiles;

	pthread_mutex_t mu; /* guards next, counters and stdout lines */
	size_t next;
	int64_t ok, bytes, dedups, errors, skipped;
} imp_ctx;

static void imp_push(imp_ctx *ic, const char *rel, int dir, const struct stat *st)
{
	if (ic->n == ic->cap) {
		ic->cap = ic->cap ? ic->cap * 2 : 256;
		ic->v = sd_xrealloc(ic->v, ic->cap * sizeof *ic->v);
	}
	imp_entry *e = &ic->v[ic->n++];
	e->rel = sd_xstrdup(rel);
	e->dir = dir;
	e->mode = st->st_mode & 07777;
	e->mtime = (int64_t)st->st_mtime;
	e->size = (uint64_t)st->st_size;
}

/* Recursive walk of localroot/rel (rel "" = the root). Symlinks and special
 * files are skipped with a warning; nothing is followed. */
static void imp_walk(imp_ctx *ic, const char *rel, int depth)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof path, "%s%s%s", ic->localroot, *rel ? "/" : "", rel) >=
	    (int)sizeof path) {
		fail("import", "%s/%s: path too long", ic->localroot, rel);
		ic->errors++;
		return;
	}
	if (depth > 256) {
		fail("import", "%s: too deep", path);
		ic->errors++;
		return;
	}
	DIR *d = opendir(path);
	if (!d) {
		fail("import", "%s: %s", path, strerror(errno));
		ic->errors++;
		return;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		char crel[PATH_MAX], cpath[PATH_MAX];
		if (snprintf(crel, sizeof crel, "%s%s%s", rel, *rel ? "/" : "", de->d_name) >=
			(int)sizeof crel ||
		    snprintf(cpath, sizeof cpath, "%s/%s", path, de->d_name) >= (int)sizeof cpath) {
			fail("import", "%s/%s: path too long", path, de->d_name);
			ic->errors++;
			continue;
		}
		struct stat st;
		if (lstat(cpath, &st) < 0) {
			fail("import", "%s: %s", cpath, strerror(errno));
			ic->errors++;
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			imp_push(ic, crel, 1, &st);
			imp_walk(ic, crel, depth + 1);
		} else if (S_ISREG(st.st_mode)) {
			imp_push(ic, crel, 0, &st);
		} else {
			warnx("skipping %s: %s", cpath, S_ISLNK(st.st_mode) ? "symbolic link"
								: "not a regular file");
			ic->skipped++;
		}
	}
	closedir(d);
}

/* remoteroot + "/" + rel into out. 0 or -ENAMETOOLONG. */
static int imp_remote(const imp_ctx *ic, const char *rel, char *out, size_t outlen)
{
	int n = strcmp(ic->remoteroot, "/") == 0
		    ? snprintf(out, outlen, "/%s", rel)
		    : snprintf(out, outlen, "%s/%s", ic->remoteroot, rel);
	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

/* Upload one file entry; prints the "imported" line after the commit. */
static void imp_file(imp_ctx *ic, const imp_entry *e, char *buf)
{
	char local[PATH_MAX], remote[SD_PATH_MAX + 1];
	if (snprintf(local, sizeof local, "%s/%s", ic->localroot, e->rel) >= (int)sizeof local ||
	    imp_remote(ic, e->rel, remote, sizeof remote) < 0) {
		pthread_mutex_lock(&ic->mu);
		fail("import", "%s: path too long", e->rel);
		ic->errors++;
		pthread_mutex_unlock(&ic->mu);
		return;
	}
	int fd = sd_sys_open(local, O_RDONLY | O_NOFOLLOW, 0);
	struct stat st;
	if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
		sd_sys_close(fd);
		fd = -EINVAL;
	}
	if (fd < 0) {
		pthread_mutex_lock(&ic->mu);
		fail("import", "%s: %s", local,
		     fd == -EINVAL ? "no longer a regular file" : strerror(-fd));
		ic->errors++;
		pthread_mutex_unlock(&ic->mu);
		return;
	}
	sd_stat rs;
	int dedup = 0;
	const char *where;
	int rc = upload_fd(ic->u, fd, remote, st.st_mode & 07777, (int64_t)st.st_mtime, buf, &rs,
			   &dedup, &where);
	sd_sys_close(fd);
	if (rc == 0) {
		/* The mtime went in with the commit. The mode was given to
		 * upload_begin, which applies to new files only: re-apply it if
		 * the file existed before with another mode. */
		int r2 = 0;
		if ((rs.mode & 07777) != (st.st_mode & 07777))
			r2 = A->chmod(ic->u, remote, st.st_mode & 07777);
		if (r2 < 0) {
			pthread_mutex_lock(&ic->mu);
			warnx("%s: stored, but setting mode/mtime failed: %s", remote, errstr(r2));
			pthread_mutex_unlock(&ic->mu);
		}
	}
	pthread_mutex_lock(&ic->mu);
	if (rc < 0) {
		fail("import", "%s: %s", strcmp(where, "read") == 0 ? local : remote,
		     strcmp(where, "read") == 0 ? strerror(-rc) : errstr(rc));
		ic->errors++;
	} else {
		fputs("imported ", stdout);
		human_str(stdout, remote);
		printf(" %" PRIu64 " %s%s\n", rs.size, rs.sha256, dedup ? " dedup" : "");
		fflush(stdout);
		ic->ok++;
		ic->bytes += (int64_t)rs.size;
		ic->dedups += dedup != 0;
	}
	pthread_mutex_unlock(&ic->mu);
}

static void *imp_worker(void *arg)
{
	imp_ctx *ic = arg;
	char *buf = sd_xmalloc(CHUNK);
	for (;;) {
		pthread_mutex_lock(&ic->mu);
		size_t i = ic->next < ic->nfiles ? ic->files[ic->next++] : (size_t)-1;
		pthread_mutex_unlock(&ic->mu);
		if (i == (size_t)-1)
			break;
		imp_file(ic, &ic->v[i], buf);
	}
	free(buf);
	return NULL;
}

static int cmd_import(int argc, char **argv)
{
	const char *jobs_s = NULL;
	optdef opts[] = {{"-j", "--jobs", 1, &jobs_s}, {NULL, NULL, 0, NULL}};
	char *pos[MAX_POS];
	int npos, rc = getargs(argc, argv, opts, pos, MAX_POS, &npos);
	if (rc)
		return rc;
	if (npos < 2 || npos > 3)
		return usage_err("import needs USER LOCALDIR [REMOTEDIR]");
	int64_t jobs = IMPORT_JOBS;
	if (jobs_s && (sd_conf_parse_int(jobs_s, &jobs) < 0 || jobs < 1 || jobs > IMPORT_JOBS_MAX))
		return usage_err("bad job count '%s' (1-%d)", jobs_s, IMPORT_JOBS_MAX);

	imp_ctx ic;
	memset(&ic, 0, sizeof ic);
	pthread_mutex_init(&ic.mu, NULL);
	/* Strip trailing slashes of LOCALDIR (but keep "/"). */
	char root[PATH_MAX];
	if (snprintf(root, sizeof root, "%s", pos[1]) >= (int)sizeof root)
		return fail("import", "%s: path too long", pos[1]);
	for (size_t l = strlen(root); l > 1 && root[l - 1] == '/'; l--)
		root[l - 1] = '\0';
	ic.localroot = root;
	struct stat rst;
	if (stat(root, &rst) < 0)
		return fail("import", "%s: %s", root, strerror(errno));
	if (!S_ISDIR(rst.st_mode))
		return fail("import", "%s: not a directory", root);

	if (core_open() || get_user(pos[0], &ic.u))
		return 1;
	const char *rroot = npos == 3 ? pos[2] : "/";
	rc = norm_path(ic.u, rroot, ic.remoteroot, sizeof ic.remoteroot);
	if (rc < 0)
		return fail("import", "%s: %s", rroot, errstr(rc));

	int64_t t0 = sd_mono_ms();
	if (strcmp(ic.remoteroot, "/") != 0) {
		rc = A->mkdir(ic.u, ic.remoteroot, 0755, 1);
		sd_stat st;
		if (rc == -EEXIST && A->stat(ic.u, ic.remoteroot, &st) == 0 &&
		    st.kind == SD_KIND_DIR)
			rc = 0;
		if (rc < 0)
			return fail("import", "%s: %s", ic.remoteroot, errstr(rc));
	}
	imp_walk(&ic, "", 0);

	/* Directories first, parents before children (pre-order walk). */
	ic.files = sd_xcalloc(ic.n ? ic.n : 1, sizeof *ic.files);
	for (size_t i = 0; i < ic.n; i++) {
		imp_entry *e = &ic.v[i];
		if (!e->dir) {
			ic.files[ic.nfiles++] = i;
			continue;
		}
		char remote[SD_PATH_MAX + 1];
		if (imp_remote(&ic, e->rel, remote, sizeof remote) < 0) {
			fail("import", "%s: path too long", e->rel);
			ic.errors++;
			continue;
		}
		rc = A->mkdir(ic.u, remote, e->mode, 1);
		if (rc == -EEXIST) {
			sd_stat st;
			if (A->stat(ic.u, remote, &st) == 0 && st.kind == SD_KIND_DIR)
				rc = 0;
		}
		if (rc < 0) {
			fail("import", "%s: %s", remote, errstr(rc));
			ic.errors++;
		}
	}

	int nthreads = (int)jobs;
	if ((size_t)nthreads > ic.nfiles)
		nthreads = ic.nfiles ? (int)ic.nfiles : 1;
	pthread_t *th = sd_xcalloc((size_t)nthreads, sizeof *th);
	int started = 0;
	for (int i = 0; i < nthreads; i++) {
		if (pthread_create(&th[i], NULL, imp_worker, &ic) != 0)
			break;
		started++;
	}
	if (started == 0)
		imp_worker(&ic);
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	free(th);

	/* Directory mtimes last (uploads touched them), deepest first. */
	for (size_t i = ic.n; i-- > 0;) {
		imp_entry *e = &ic.v[i];
		char remote[SD_PATH_MAX + 1];
		if (!e->dir || imp_remote(&ic, e->rel, remote, sizeof remote) < 0)
			continue;
		int r2 = A->set_mtime(ic.u, remote, e->mtime);
		if (r2 < 0 && r2 != -ENOENT)
			warnx("%s: setting mtime failed: %s", remote, errstr(r2));
	}

	double secs = (double)(sd_mono_ms() - t0) / 1000.0;
	if (secs <= 0)
		secs = 0.001;
	printf("import: %" PRId64 " files, %" PRId64 " bytes, %" PRId64 " dedup hits, %" PRId64
	       " skipped, %" PRId64 " errors in %.2f s: %.1f MB/s, %.1f files/s\n",
	       ic.ok, ic.bytes, ic.dedups, ic.skipped, ic.errors, secs,
	       (double)ic.bytes / 1e6 / secs, (double)ic.ok / secs);
	for (size_t i = 0; i < ic.n; i++)
		free(ic.v[i].rel);
	free(ic.v);
	free(ic.files);
	pthread_mutex_destroy(&ic.mu);
	return ic.errors ? 1 : 0;
}

/* ------------------------------------------------------------ stats, gc */

static int cmd_stats(int argc, char **argv)
{
	const char *json = NULL;
	optdef opts[] = {{"--json", NULL, 0, &json}, {NULL, NULL, 0, NULL}};
	char *pos[MAX_POS];
	int npos, rc = getargs(argc, argv, opts, pos, MAX_POS, &npos);
	if (rc)
		return rc;
	if (npos)
		return usage_err("stats takes no arguments");
	if (core_open())
		return 1;
	sd_stats s;
	memset(&s, 0, sizeof s);
	rc = A->stats(g_core, &s);
	if (rc < 0)
		return fail("stats", "%s", errstr(rc));
	double ratio = s.stored_bytes > 0 ? (double)s.logical_bytes / (double)s.stored_bytes : 1.0;
	if (json) {
		printf("{\"users\": %" PRId64 ", \"files\": %" PRId64 ", \"dirs\": %" PRId64
		       ", \"deleted\": %" PRId64 ", \"logical_bytes\": %" PRId64
		       ", \"stored_bytes\": %" PRId64 ", \"dedup_ratio\": %.4f, \"blobs\": %" PRId64
		       ", \"unreferenced_blobs\": %" PRId64 ", \"versions\": %" PRId64
		       ", \"journal_rows\": %" PRId64 "}\n",
		       s.users, s.files, s.dirs, s.deleted, s.logical_bytes, s.stored_bytes, ratio,
		       s.blobs, s.unreferenced_blobs, s.versions, s.journal_rows);
	} else {
		printf("users               %" PRId64 "\n", s.users);
		printf("files               %" PRId64 "\n", s.files);
		printf("directories         %" PRId64 "\n", s.dirs);
		printf("deleted (pending)   %" PRId64 "\n", s.deleted);
		printf("logical bytes       %" PRId64 "\n", s.logical_bytes);
		printf("stored bytes        %" PRId64 "\n", s.stored_bytes);
		printf("dedup ratio         %.2f\n", ratio);
		printf("blobs               %" PRId64 "\n", s.blobs);
		printf("unreferenced blobs  %" PRId64 "\n", s.unreferenced_blobs);
		printf("versions            %" PRId64 "\n", s.versions);
		printf("journal rows        %" PRId64 "\n", s.journal_rows);
	}
	return 0;
}

static int cmd_gc(int argc, char **argv)
{
	const char *now = NULL;
	optdef opts[] = {{"--now", NULL, 0, &now}, {NULL, NULL, 0, NULL}};
	char *pos[MAX_POS];
	int npos, rc = getargs(argc, argv, opts, pos, MAX_POS, &npos);
	if (rc)
		return rc;
	if (npos)
		return usage_err("gc takes no arguments");
	if (core_open())
		return 1;
	sd_gc_report r;
	memset(&r, 0, sizeof r);
	rc = A->gc_run(g_core, now != NULL, &r);
	if (rc < 0)
		return fail("gc", "%s", errstr(rc));
	printf("gc%s: %" PRId64 " nodes purged, %" PRId64 " old versions dropped, %" PRId64
	       " journal rows pruned, %" PRId64 " blobs removed, %" PRId64
	       " bytes freed, %" PRId64 " temp files removed, disk %d%% used\n",
	       now ? " --now" : "", r.nodes_purged, r.versions_dropped, r.journal_pruned,
	       r.blobs_removed, r.bytes_freed, r.temps_removed, r.disk_used_pct);
	return 0;
}

/* ------------------------------------------------------------ fsck */

static void fsck_line(void *arg, const char *line)
{
	(void)arg;
	printf("%s\n", line);
	fflush(stdout);
}

static int cmd_fsck(int argc, char **argv)
{
	const char *repair = NULL;
	optdef opts[] = {{"--repair", NULL, 0, &repair}, {NULL, NULL, 0, NULL}};
	char *pos[MAX_POS];
	int npos, rc = getargs(argc, argv, opts, pos, MAX_POS, &npos);
	if (rc)
		return rc;
	if (npos)
		return usage_err("fsck takes no arguments");
	if (core_open())
		return 1;
	sd_fsck_report r;
	memset(&r, 0, sizeof r);
	rc = sd_core_fsck(g_core, repair != NULL, &r, fsck_line, NULL);
	if (rc < 0)
		return fail("fsck", "%s", errstr(rc));
	int64_t problems = r.bad_hash + r.missing + r.orphans + r.bad_refs + r.bad_used;
	printf("fsck: %" PRId64 " blobs checked, %" PRId64 " bad hash, %" PRId64 " missing, %" PRId64
	       " orphan files, %" PRId64 " bad refs, %" PRId64 " bad usage, %" PRId64
	       " crash leftovers, %" PRId64 " repaired\n",
	       r.blobs_checked, r.bad_hash, r.missing, r.orphans, r.bad_refs, r.bad_used,
	       r.adoptable, r.repaired);
	if (problems == 0) {
		printf("fsck: clean\n");
		return 0;
	}
	/* repaired also counts adopted crash leftovers, which are no problem */
	if (repair && r.repaired >= problems + r.adoptable) {
		printf("fsck: all %" PRId64 " problems repaired\n", problems);
		return 0;
	}
	if (repair)
		return fail("fsck", "%" PRId64 " problems found, %" PRId64 " not repaired", problems,
			    problems - r.repaired);
	return fail("fsck", "%" PRId64 " problems found (run fsck --repair)", problems);
}

/* ------------------------------------------------------------ journal */

typedef struct journal_ctx {
	int json, n;
} journal_ctx;

static int journal_cb(void *arg, const sd_journal_entry *r)
{
	journal_ctx *jc = arg;
	char iso[40];
	fmt_iso(r->ts, 1, iso, sizeof iso);
	if (jc->json) {
		fputs(jc->n ? ",\n  {" : "\n  {", stdout);
		printf("\"seq\": %" PRId64 ", \"ts\": \"%s\", \"user\": ", r->seq, iso);
		json_str(stdout, r->user);
		fputs(", \"op\": ", stdout);
		json_str(stdout, r->op);
		fputs(", \"path\": ", stdout);
		json_str(stdout, r->path);
		fputs(", \"detail\": ", stdout);
		json_str(stdout, r->detail);
		fputs("}", stdout);
	} else {
		printf("%s %s %s ", iso, r->user && *r->user ? r->user : "-", r->op ? r->op : "-");
		human_str(stdout, r->path && *r->path ? r->path : "-");
		if (r->detail && *r->detail) {
			fputc(' ', stdout);
			human_str(stdout, r->detail);
		}
		fputc('\n', stdout);
	}
	jc->n++;
	return 0;
}

static int cmd_journal(int argc, char **argv)
{
	const char *json = NULL, *since_s = NULL, *user = NULL;
	optdef opts[] = {{"--json", NULL, 0, &json},
			 {"--since", NULL, 1, &since_s},
			 {"--user", NULL, 1, &user},
			 {NULL, NULL, 0, NULL}};
	char *pos[MAX_POS];
	int npos, rc = getargs(argc, argv, opts, pos, MAX_POS, &npos);
	if (rc)
		return rc;
	if (npos)
		return usage_err("journal takes no positional arguments");
	int64_t since = 0, ago = 0;
	int relative = 0;
	if (since_s) {
		if (parse_iso(since_s, &since) == 0)
			;
		else if (sd_conf_parse_duration(since_s, &ago) == 0 && ago >= 0)
			relative = 1;
		else
			return usage_err("bad time '%s' (2026-11-21T10:00:00 UTC, or a duration "
					 "like 10m meaning ago)",
					 since_s);
	}
	if (core_open())
		return 1;
	if (relative) {
		since = A->now(g_core) * 1000 - ago;
		if (since <= 0)
			since = 1;
	}
	journal_ctx jc = {json != NULL, 0};
	if (jc.json)
		fputs("[", stdout);
	rc = A->journal(g_core, since, user, 0, journal_cb, &jc);
	if (jc.json)
		fputs(jc.n ? "\n]\n" : "]\n", stdout);
	if (rc < 0)
		return fail("journal", "%s", errstr(rc));
	return 0;
}

/* ------------------------------------------------------------ main */

typedef struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
} command;

static const command commands[] = {
    {"user", cmd_user},   {"token", cmd_token}, {"put", cmd_put},     {"get", cmd_get},
    {"ls", cmd_ls},       {"rm", cmd_rm},       {"mkdir", cmd_mkdir}, {"import", cmd_import},
    {"stats", cmd_stats}, {"gc", cmd_gc},       {"fsck", cmd_fsck},   {"journal", cmd_journal},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			if (i + 1 >= argc)
				return usage_err("%s needs a FILE", a);
			g_conf_path = argv[++i];
		} else if (strncmp(a, "--config=", 9) == 0) {
			g_conf_path = a + 9;
		} else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
			g_verbose = 1;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(usage_text, stdout);
			return 0;
		} else if (strcmp(a, "--version") == 0) {
			printf("storagectl %s\n", SD_VERSION);
			return 0;
		} else if (strcmp(a, "--") == 0) {
			i++;
			break;
		} else {
			return usage_err("unknown option '%s'", a);
		}
	}
	if (i >= argc)
		return usage_err("missing command");
	const char *cmd = argv[i];
	if (strcmp(cmd, "help") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (strcmp(cmd, "version") == 0) {
		printf("storagectl %s\n", SD_VERSION);
		return 0;
	}
	/* Engine log lines go to stderr; only warnings unless -v. */
	sd_log_open(NULL, g_verbose ? SD_LOG_INFO : SD_LOG_WARN);
	int rc = -1;
	for (const command *c = commands; c->name; c++) {
		if (strcmp(c->name, cmd) == 0) {
			rc = c->fn(argc - i - 1, argv + i + 1);
			break;
		}
	}
	if (rc < 0)
		rc = usage_err("unknown command '%s'", cmd);
	fflush(stdout);
	core_close();
	sd_log_close();
	if (ferror(stdout))
		rc = rc ? rc : fail("output", "write error on stdout");
	return rc;
}
