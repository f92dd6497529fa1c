/*
 * ftp_fs.c - the commands on names that need no data connection: PWD,
 * CWD, CDUP, MKD, RMD, DELE, RNFR/RNTO, REST, SIZE, MDTM, MFMT, HASH and
 * SITE CHMOD.
 *
 * Paths: every argument goes to the engine as the client sent it, only
 * converted to UTF-8 (ftp_name_in); the engine resolves it against the
 * session's working directory, ".." clamped at the user's root, and
 * refuses NUL, invalid UTF-8 and control characters. So "DELE a/bb/../c"
 * deletes /a/c, and "CWD ../../.." from anywhere lands on "/". The working
 * directory itself lives in the engine's session (api->chdir, and
 * session_info().cwd for PWD). Paths shown in replies (257) come from the
 * engine too (api->resolve).
 *
 * RNFR/RNTO: RNFR checks the source exists and keeps its canonical path
 * (s->rnfr); any command other than RNTO drops it (ftp_session.c).
 */
#include "ftp.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Reply 257 "path" text, the path in the session's charset. */
static int reply_257(ftp_session *s, const char *path, const char *text)
{
	sd_buf b = SD_BUF_INIT;
	ftp_quote_path(s, path, &b);
	int r = ftp_reply(s, 257, "%s %s", b.data, text);
	sd_buf_free(&b);
	return r;
}

/* Convert the argument and run one engine call on it: a small helper for
 * the commands that are "one call, one reply". */
typedef int (*path_op)(ftp_session *s, const char *upath, void *arg);

static int with_path(ftp_session *s, const char *arg, path_op op, void *oparg)
{
	char *u;
	int r = ftp_name_in(s, arg, &u);
	if (r < 0)
		return r;
	r = op(s, u, oparg);
	free(u);
	return r;
}

/* ------------------------------------------------------------ directories */

int ftp_cmd_pwd(ftp_session *s, const char *arg)
{
	(void)arg;
	sd_session_info info;
	int r = s->api->session_info(s->sess, &info);
	if (r < 0)
		return ftp_reply_err(s, r, "Cannot tell the current directory");
	return reply_257(s, info.cwd, "is the current directory");
}

static int op_chdir(ftp_session *s, const char *u, void *arg)
{
	(void)arg;
	return s->api->chdir(s->sess, u);
}

int ftp_cmd_cwd(ftp_session *s, const char *arg)
{
	int r = with_path(s, arg, op_chdir, NULL);
	if (r < 0)
		return ftp_reply_err(s, r, "Failed to change directory");
	return ftp_reply(s, 250, "Directory successfully changed.");
}

int ftp_cmd_cdup(ftp_session *s, const char *arg)
{
	(void)arg;
	return ftp_cmd_cwd(s, "..");
}

/* MKD: out (the canonical path, for the 257) is filled on success. */
static int op_mkdir(ftp_session *s, const char *u, void *arg)
{
	char *out = arg;
	int r = s->api->mkdir(s->sess, u, 0755, 0);
	if (r == 0)
		r = s->api->resolve(s->sess, u, strlen(u), out, SD_PATH_MAX + 1);
	return r;
}

int ftp_cmd_mkd(ftp_session *s, const char *arg)
{
	char path[SD_PATH_MAX + 1];
	int r = with_path(s, arg, op_mkdir, path);
	if (r < 0)
		return ftp_reply_err(s, r, "Create directory operation failed");
	return reply_257(s, path, "created");
}

static int op_rmdir(ftp_session *s, const char *u, void *arg)
{
	(void)arg;
	return s->api->rmdir(s->sess, u);
}

int ftp_cmd_rmd(ftp_session *s, const char *arg)
{
	int r = with_path(s, arg, op_rmdir, NULL);
	if (r < 0)
		return ftp_reply_err(s, r, "Remove directory operation failed");
	return ftp_reply(s, 250, "Remove directory operation successful.");
}

/* ------------------------------------------------------------ files */

static int op_unlink(ftp_session *s, const char *u, void *arg)
{
	(void)arg;
	return s->api->unlink(s->sess, u, 0); /* a directory: -EISDIR */
}

int ftp_cmd_dele(ftp_session *s, const char *arg)
{
	int r = with_path(s, arg, op_unlink, NULL);
	if (r < 0)
		return ftp_reply_err(s, r, "Delete operation failed");
	return ftp_reply(s, 250, "Delete operation successful.");
}

int ftp_cmd_rnfr(ftp_session *s, const char *arg)
{
	char path[SD_PATH_MAX + 1];
	sd_stat st;
	int r = ftp_name_resolve(s, arg, path, sizeof path);
	if (r == 0)
		r = strcmp(path, "/") == 0 ? -EACCES : s->api->stat(s->sess, path, &st);
	if (r < 0)
		return ftp_reply_err(s, r, "RNFR command failed");
	free(s->rnfr);
	s->rnfr = sd_xstrdup(path);
	return ftp_reply(s, 350, "Ready for RNTO.");
}

static int op_rename(ftp_session *s, const char *u, void *arg)
{
	return s->api->rename(s->sess, (const char *)arg, u, 0);
}

int ftp_cmd_rnto(ftp_session *s, const char *arg)
{
	if (!s->rnfr)
		return ftp_reply(s, 503, "RNFR required first.");
	int r = with_path(s, arg, op_rename, s->rnfr);
	free(s->rnfr);
	s->rnfr = NULL;
	if (r < 0)
		return ftp_reply_err(s, r, "Rename failed");
	return ftp_reply(s, 250, "Rename successful.");
}

int ftp_cmd_rest(ftp_session *s, const char *arg)
{
	char *end;
	errno = 0;
	if (!isdigit((unsigned char)arg[0]))
		return ftp_reply(s, 501, "REST needs a byte offset.");
	unsigned long long v = strtoull(arg, &end, 10);
	if (*end || errno || v > (1ULL << 62))
		return ftp_reply(s, 501, "Bad REST offset.");
	s->rest = v;
	s->have_rest = v > 0;
	return ftp_reply(s, 350, "Restart position accepted (%llu).", v);
}

/* ------------------------------------------------------------ facts */

static const char *fmt_time(int64_t t, char *buf, size_t n)
{
	struct tm tm;
	time_t tt = (time_t)t;
	gmtime_r(&tt, &tm);
	strftime(buf, n, "%Y%m%d%H%M%S", &tm);
	return buf;
}

static int op_stat(ftp_session *s, const char *u, void *arg)
{
	return s->api->stat(s->sess, u, (sd_stat *)arg);
}

/* Stat the argument; with want_file a directory is -EISDIR. On failure
 * the error reply (with `what`) is sent and the error returned. */
static int stat_reply(ftp_session *s, const char *arg, sd_stat *st, int want_file, const char *what)
{
	int r = with_path(s, arg, op_stat, st);
	if (r == 0 && want_file && st->kind != SD_KIND_FILE)
		r = -EISDIR;
	if (r < 0)
		ftp_reply_err(s, r, what);
	return r;
}

int ftp_cmd_size(ftp_session *s, const char *arg)
{
	sd_stat st;
	if (stat_reply(s, arg, &st, 1, "Could not get file size") < 0)
		return 0;
	return ftp_reply(s, 213, "%llu", (unsigned long long)st.size);
}

int ftp_cmd_mdtm(ftp_session *s, const char *arg)
{
	sd_stat st;
	char tb[32];
	if (stat_reply(s, arg, &st, 0, "Could not get file modification time") < 0)
		return 0;
	return ftp_reply(s, 213, "%s", fmt_time(st.mtime, tb, sizeof tb));
}

/* "YYYYMMDDHHMMSS[.fff]" -> seconds. 0 or -EINVAL. */
static int parse_time(const char *p, size_t n, int64_t *out)
{
	if (n < 14)
		return -EINVAL;
	for (int i = 0; i < 14; i++)
		if (!isdigit((unsigned char)p[i]))
			return -EINVAL;
	if (n > 14) {
		if (p[14] != '.')
			return -EINVAL;
		for (size_t i = 15; i < n; i++)
			if (!isdigit((unsigned char)p[i]))
				return -EINVAL;
	}
	int v[6];
	static const int off[6] = {0, 4, 6, 8, 10, 12}, len[6] = {4, 2, 2, 2, 2, 2};
	for (int i = 0; i < 6; i++) {
		int x = 0;
		for (int j = 0; j < len[i]; j++)
			x = x * 10 + (p[off[i] + j] - '0');
		v[i] = x;
	}
	if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 || v[4] > 59 || v[5] > 60)
		return -EINVAL;
	struct tm tm = {0};
	tm.tm_year = v[0] - 1900;
	tm.tm_mon = v[1] - 1;
	tm.tm_mday = v[2];
	tm.tm_hour = v[3];
	tm.tm_min = v[4];
	tm.tm_sec = v[5];
	*out = (int64_t)timegm(&tm);
	return 0;
}

static int op_set_mtime(ftp_session *s, const char *u, void *arg)
{
	return s->api->set_mtime(s->sess, u, *(int64_t *)arg);
}

int ftp_cmd_mfmt(ftp_session *s, const char *arg)
{
	const char *sp = strchr(arg, ' ');
	int64_t t;
	char tb[32];
	if (!sp || parse_time(arg, (size_t)(sp - arg), &t) < 0 || !sp[1])
		return ftp_reply(s, 501, "Usage: MFMT YYYYMMDDHHMMSS path");
	int r = with_path(s, sp + 1, op_set_mtime, &t);
	if (r < 0)
		return ftp_reply_err(s, r, "Could not set file modification time");
	/* The name is echoed as the client sent it (its own charset). */
	return ftp_reply(s, 213, "Modify=%s; %s", fmt_time(t, tb, sizeof tb), sp + 1);
}

int ftp_cmd_hash(ftp_session *s, const char *arg)
{
	sd_stat st;
	if (stat_reply(s, arg, &st, 1, "HASH failed") < 0)
		return 0;
	if (!st.sha256[0])
		return ftp_reply(s, 451, "HASH unavailable for this file.");
	unsigned long long end = st.size ? (unsigned long long)st.size - 1 : 0;
	return ftp_reply(s, 213, "SHA-256 0-%llu %s %s", end, st.sha256, arg);
}

/* SITE CHMOD: lftp's mirror -R sends one per file, usually to the mode
 * the file already has: a read answers that without a write transaction. */
static int op_chmod(ftp_session *s, const char *u, void *arg)
{
	uint32_t mode = *(uint32_t *)arg;
	sd_stat st;
	int r = s->api->stat(s->sess, u, &st);
	if (r == 0 && (st.mode & 07777) != mode)
		r = s->api->chmod(s->sess, u, mode);
	return r;
}

int ftp_cmd_site(ftp_session *s, const char *arg)
{
	if (strncasecmp(arg, "CHMOD ", 6) == 0) {
		if (s->state != FTP_LOGGED_IN)
			return ftp_reply(s, 530, "Please login with USER and PASS.");
		if (ftp_readonly(s))
			return 0;
		const char *m = arg + 6;
		while (*m == ' ')
			m++;
		char *end;
		unsigned long mode = strtoul(m, &end, 8);
		if (end == m || *end != ' ' || mode > 07777 || !end[1])
			return ftp_reply(s, 501, "Usage: SITE CHMOD <octal mode> <path>");
		uint32_t m32 = (uint32_t)mode;
		int r = with_path(s, end + 1, op_chmod, &m32);
		if (r < 0)
			return ftp_reply_err(s, r, "SITE CHMOD failed");
		return ftp_reply(s, 200, "SITE CHMOD command ok.");
	}
	if (strcasecmp(arg, "HELP") == 0)
		return ftp_reply(s, 214, "CHMOD HELP");
	return ftp_reply(s, 500, "Unknown SITE command.");
}
