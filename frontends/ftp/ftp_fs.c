/*
 * ftp_fs.c - the commands on names that need no data connection: PWD,
 * CWD, CDUP, MKD, RMD, DELE, RNFR/RNTO, REST, SIZE, MDTM, MFMT, HASH and
 * SITE CHMOD, SITE INSTANT and SITE PROVE.
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
 *
 * Instant upload (DESIGN path 2, the engine's instant_begin/instant_prove,
 * the same as HTTP's POST /api/v1/instant):
 *   SITE INSTANT <sha256> <size> <path>
 *     250  stored: the user already holds this content; nothing to send
 *     350  "Challenge nonce=<64 hex> ranges=<off>:<len>,...": prove
 *          possession with SITE PROVE; the session keeps the challenge
 *          (its canonical path, sha256, size; the last FTP_INSTANT_PENDING)
 *     550  content unknown here: upload it with STOR (or an engine error)
 *   SITE PROVE <nonce> <proof> [<sha256> <size> <path>]
 *     proof = hex SHA-256 of the nonce's text followed by the bytes of each
 *     range in order. With two arguments the session's challenge of that
 *     nonce gives the rest (it is forgotten whatever the answer); with five
 *     the client names them (for a proof sent on another connection).
 *     250 stored, 550 wrong or stale proof (a nonce is good for one answer,
 *     decided by the engine).
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

/* ------------------------------------------------------------ instant upload */

void ftp_instant_clear(ftp_session *s)
{
	for (int i = 0; i < FTP_INSTANT_PENDING; i++) {
		free(s->inst[i].path);
		memset(&s->inst[i], 0, sizeof s->inst[i]);
	}
}

/* The next space-separated word of *p (at most n - 1 bytes) into out; *p
 * moves past it and the spaces after. 0, or -1 when there is none or it is
 * too long. */
static int next_word(const char **p, char *out, size_t n)
{
	const char *b = *p, *e;
	while (*b == ' ')
		b++;
	e = b;
	while (*e && *e != ' ')
		e++;
	if (e == b || (size_t)(e - b) >= n)
		return -1;
	memcpy(out, b, (size_t)(e - b));
	out[e - b] = '\0';
	while (*e == ' ')
		e++;
	*p = e;
	return 0;
}

/* A decimal size (no sign, no junk): 0 or -1. */
static int parse_size(const char *w, uint64_t *out)
{
	char *end;
	if (!isdigit((unsigned char)w[0]))
		return -1;
	errno = 0;
	unsigned long long v = strtoull(w, &end, 10);
	if (*end || errno)
		return -1;
	*out = v;
	return 0;
}

/* The answer for an instant upload that is done. */
static int instant_done(ftp_session *s, const sd_stat *st, const char *path, const char *via)
{
	char *tofree;
	const char *shown = ftp_name_out(s, path, &tofree);
	s->api->log(s->core, SD_LOG_INFO, FTP_SRC,
		    "event=instant_upload user=%s path=\"%s\" size=%llu via=%s", s->uname, path,
		    (unsigned long long)st->size, via);
	ftp_count(s, "storaged_frontend_uploads_total", "frontend=\"ftp\",kind=\"instant\"", 1);
	int r = ftp_reply(s, 250, "Instant upload: %s stored (%llu bytes, no data sent).", shown,
			  (unsigned long long)st->size);
	free(tofree);
	return r;
}

/* An engine error of SITE INSTANT / SITE PROVE as a reply. */
static int instant_err(ftp_session *s, int r)
{
	if (r == -SD_ESENDDATA)
		return ftp_reply(s, 550, "Content unknown here: upload the file with STOR.");
	if (r == -SD_EPROOF)
		return ftp_reply(s, 550, "Wrong or stale proof of possession.");
	return ftp_reply_err(s, r, "Instant upload failed");
}

static int site_instant(ftp_session *s, const char *arg)
{
	char sha[SD_SHA256_HEX], num[24], path[SD_PATH_MAX + 1];
	uint64_t size;
	const char *p = arg;
	if (next_word(&p, sha, sizeof sha) < 0 || !sd_is_sha256_hex(sha) ||
	    next_word(&p, num, sizeof num) < 0 || parse_size(num, &size) < 0 || !*p)
		return ftp_reply(s, 501, "Usage: SITE INSTANT <sha256, 64 hex> <size> <path>");
	int r = ftp_name_resolve(s, p, path, sizeof path);
	if (r == -EILSEQ)
		return ftp_reply(s, 553, "%s", ftp_charset_refusal(s));
	if (r < 0)
		return ftp_reply_err(s, r, "Instant upload failed");
	sd_challenge ch;
	sd_stat st;
	r = s->api->instant_begin(s->sess, path, 0, sha, size, &ch, &st);
	if (r == 0)
		return instant_done(s, &st, path, "held");
	if (r != -SD_ECHALLENGE)
		return instant_err(s, r);
	/* keep the challenge for SITE PROVE <nonce> <proof> */
	ftp_instant *k = &s->inst[s->inst_next];
	s->inst_next = (s->inst_next + 1) % FTP_INSTANT_PENDING;
	free(k->path);
	snprintf(k->nonce, sizeof k->nonce, "%s", ch.nonce);
	snprintf(k->sha256, sizeof k->sha256, "%s", sha);
	k->size = size;
	k->path = sd_xstrdup(path);
	sd_buf rs = SD_BUF_INIT;
	for (int i = 0; i < ch.nranges && i < SD_CHALLENGE_MAX; i++)
		sd_buf_printf(&rs, "%s%llu:%llu", i ? "," : "", (unsigned long long)ch.off[i],
			      (unsigned long long)ch.len[i]);
	r = ftp_reply(s, 350,
		      "Challenge nonce=%s ranges=%s ; answer SITE PROVE <nonce> <hex SHA-256 of the "
		      "nonce text followed by the bytes of each range>",
		      ch.nonce, rs.len ? rs.data : "");
	sd_buf_free(&rs);
	return r;
}

static int site_prove(ftp_session *s, const char *arg)
{
	char nonce[65], proof[SD_SHA256_HEX], sha[SD_SHA256_HEX], num[24];
	char path[SD_PATH_MAX + 1];
	uint64_t size = 0;
	const char *p = arg;
	int i, r;
	if (next_word(&p, nonce, sizeof nonce) < 0 || next_word(&p, proof, sizeof proof) < 0)
		return ftp_reply(s, 501, "Usage: SITE PROVE <nonce> <proof> [<sha256> <size> <path>]");
	if (*p) {
		/* the five-argument form: the client names what it proves */
		if (next_word(&p, sha, sizeof sha) < 0 || !sd_is_sha256_hex(sha) ||
		    next_word(&p, num, sizeof num) < 0 || parse_size(num, &size) < 0 || !*p)
			return ftp_reply(s, 501,
					 "Usage: SITE PROVE <nonce> <proof> [<sha256> <size> <path>]");
		r = ftp_name_resolve(s, p, path, sizeof path);
		if (r == -EILSEQ)
			return ftp_reply(s, 553, "%s", ftp_charset_refusal(s));
		if (r < 0)
			return ftp_reply_err(s, r, "Instant upload failed");
		/* a challenge of this session with that nonce is answered now */
		for (i = 0; i < FTP_INSTANT_PENDING; i++)
			if (s->inst[i].nonce[0] && strcmp(s->inst[i].nonce, nonce) == 0) {
				free(s->inst[i].path);
				memset(&s->inst[i], 0, sizeof s->inst[i]);
			}
	} else {
		for (i = 0; i < FTP_INSTANT_PENDING; i++)
			if (s->inst[i].nonce[0] && strcmp(s->inst[i].nonce, nonce) == 0)
				break;
		if (i == FTP_INSTANT_PENDING)
			return ftp_reply(s, 550, "Wrong or stale proof of possession (no such "
					 "challenge on this connection: send SITE INSTANT first, or give "
					 "sha256, size and path too).");
		ftp_instant *k = &s->inst[i];
		snprintf(sha, sizeof sha, "%s", k->sha256);
		size = k->size;
		snprintf(path, sizeof path, "%s", k->path);
		free(k->path);
		memset(k, 0, sizeof *k); /* one answer per challenge, right or wrong */
	}
	sd_stat st;
	r = s->api->instant_prove(s->sess, path, 0, sha, size, nonce, proof, &st);
	if (r == 0)
		return instant_done(s, &st, path, "proof");
	return instant_err(s, r);
}

int ftp_cmd_site(ftp_session *s, const char *arg)
{
	if (strncasecmp(arg, "INSTANT ", 8) == 0 || strncasecmp(arg, "PROVE ", 6) == 0) {
		if (s->state != FTP_LOGGED_IN)
			return ftp_reply(s, 530, "Please login with USER and PASS.");
		if (ftp_readonly(s))
			return 0;
		return toupper((unsigned char)arg[0]) == 'I' ? site_instant(s, arg + 8)
							     : site_prove(s, arg + 6);
	}
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
		return ftp_reply(s, 214, "CHMOD INSTANT PROVE HELP");
	return ftp_reply(s, 500, "Unknown SITE command.");
}
