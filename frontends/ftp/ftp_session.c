/*
 * ftp_session.c - one FTP control connection: line reader, login state
 * machine, command dispatch and every command that needs no data
 * connection.
 *
 * Login state (enum ftp_login_state), one function per transition:
 *
 *            USER (cmd_user)              PASS ok (cmd_pass)
 *   CONNECTED ------------> USER_GIVEN ---------------------> LOGGED_IN
 *       ^                       |  PASS bad (failures < max)      |
 *       +-----------------------+                                 |
 *   any state: QUIT, idle timeout, PASS bad (failures = max),     |
 *   address blocked (421), control lost, stop() ---> CLOSING <----+
 *
 * TLS state (enum ftp_tls_state), orthogonal to the login state:
 *
 *   NONE --AUTH TLS + handshake ok (cmd_auth)--> CONTROL
 *   implicit port: CONTROL from the first byte (handshake before 220)
 *   CONTROL: PBSZ 0 sets pbsz; PROT P/C (implies PBSZ 0) sets prot_p, which
 *   makes each data connection do its own TLS handshake (ftp_data.c).
 *
 * Pending single-command states, cleared as RFC 959 says:
 *   RNFR pending (s->rnfr): set by RNFR, consumed by RNTO, dropped by any
 *   other command. REST pending (s->have_rest): set by REST, consumed by
 *   the next RETR/STOR/APPE (STOU and listings drop it).
 * Transfer sub-state (enum ftp_xfer_state) lives in ftp_data.c: while a
 * transfer runs the control socket is polled only for ABOR; other input
 * stays queued until the transfer's final reply.
 *
 * Invariants:
 *  1. No file command runs unless state == LOGGED_IN (530 otherwise).
 *  2. A path reaches the engine only through ftp_resolve(): converted to
 *     UTF-8, joined to cwd, "." and ".." folded lexically (never above the
 *     user's root), so no argument can name anything outside the tree.
 *  3. A command line longer than max_line is answered 500 exactly once and
 *     its bytes are dropped up to the next LF; the buffer never grows.
 *  4. Writes are refused (550) for read-only logins (token scope, anonymous)
 *     before the engine is asked.
 */
#include "ftp.h"

#include <ctype.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define SRC "ftp"

/* ------------------------------------------------------------ replies */

void ftp_count(ftp_session *s, const char *name, const char *labels, int64_t d)
{
	s->api->metric_add(s->core, name, labels, d);
}

static int send_text(ftp_session *s, const char *p, size_t n)
{
	int r = ftp_io_send(&s->ctrl, p, n);
	if (r < 0)
		s->state = FTP_CLOSING;
	return r;
}

int ftp_reply(ftp_session *s, int code, const char *fmt, ...)
{
	char stackbuf[1024];
	char *text = stackbuf;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(stackbuf, sizeof stackbuf, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= sizeof stackbuf) {
		text = malloc((size_t)n + 1);
		if (!text)
			return -ENOMEM;
		va_start(ap, fmt);
		vsnprintf(text, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	/* Multi-line text: "code-first", middle lines as they are (space
	 * first), "code last". */
	ftp_buf out = {0};
	const char *p = text;
	for (;;) {
		const char *nl = strchr(p, '\n');
		if (!nl) {
			ftp_buf_printf(&out, "%d %s\r\n", code, p);
			break;
		}
		if (p == text)
			ftp_buf_printf(&out, "%d-", code);
		ftp_buf_append(&out, p, (size_t)(nl - p));
		ftp_buf_puts(&out, "\r\n");
		p = nl + 1;
	}
	if (text != stackbuf)
		free(text);
	int r = send_text(s, out.data, out.len);
	ftp_buf_free(&out);
	if (code >= 200 && s->cmd) {
		char labels[128];
		snprintf(labels, sizeof labels, "frontend=\"ftp\",command=\"%s\",status=\"%d\"", s->cmd, code);
		ftp_count(s, "storaged_requests_total", labels, 1);
	}
	return r;
}

int ftp_reply_err(ftp_session *s, int err, const char *what)
{
	if (err > 0)
		err = -err;
	const char *words = s->api->strerror(err);
	int code = 550;
	switch (-err) {
	case EINVAL:
	case ENAMETOOLONG:
	case EILSEQ:
		code = 553;
		break;
	case EDQUOT:
	case ENOSPC:
		code = 552;
		break;
	case EBUSY:
		code = 450;
		break;
	case EIO:
	case ENOMEM:
		code = 451;
		break;
	default:
		if (-err == SD_ECORRUPT)
			code = 451;
		break;
	}
	if (-err == EILSEQ)
		words = "file name is not valid UTF-8 (and no fallback charset applies)";
	return ftp_reply(s, code, "%s: %s.", what, words);
}

int ftp_readonly(ftp_session *s)
{
	if (s->user.flags & SD_USER_READONLY) {
		ftp_reply(s, 550, "Permission denied (read-only login).");
		return 1;
	}
	return 0;
}

/* ------------------------------------------------------------ charsets */

static int open_charsets(ftp_session *s)
{
	const char *cs = s->srv->conf->fallback_charset;
	if (!cs || !*cs)
		return -1;
	if (s->cd_in == (iconv_t)-1)
		s->cd_in = iconv_open("UTF-8", cs);
	if (s->cd_out == (iconv_t)-1)
		s->cd_out = iconv_open(cs, "UTF-8");
	return s->cd_in != (iconv_t)-1 && s->cd_out != (iconv_t)-1 ? 0 : -1;
}

const char *ftp_out_name(ftp_session *s, const char *name, char **tofree)
{
	*tofree = NULL;
	if (!s->legacy || s->cd_out == (iconv_t)-1)
		return name;
	char *conv = ftp_iconv(s->cd_out, name, strlen(name));
	if (!conv)
		return name; /* not representable: send UTF-8 as it is */
	*tofree = conv;
	return conv;
}

int ftp_resolve(ftp_session *s, const char *arg, char *out, size_t outlen)
{
	/* Charset: a session that has once sent a name that is not UTF-8 is a
	 * legacy client: from then on its names are read in fallback_charset
	 * first (short GB18030 names can happen to be valid UTF-8), and
	 * names go back to it in that charset. */
	char *conv = NULL;
	size_t alen = strlen(arg);
	int valid = ftp_utf8_valid(arg, alen);
	if (!valid || s->legacy) {
		if (open_charsets(s) == 0)
			conv = ftp_iconv(s->cd_in, arg, alen);
		if (!conv && !valid)
			return -EILSEQ;
		if (conv) {
			s->legacy = 1;
			arg = conv;
		}
	}
	/* Join with cwd, then fold components. */
	ftp_buf full = {0};
	if (arg[0] != '/')
		ftp_buf_puts(&full, s->cwd);
	ftp_buf_puts(&full, "/");
	ftp_buf_puts(&full, arg);
	free(conv);

	size_t olen = 0;
	int r = 0;
	char *save = NULL;
	out[0] = '\0';
	for (char *tok = strtok_r(full.data, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		if (strcmp(tok, ".") == 0)
			continue;
		if (strcmp(tok, "..") == 0) {
			char *slash = strrchr(out, '/');
			if (slash) {
				*slash = '\0';
				olen = (size_t)(slash - out);
			}
			continue;
		}
		size_t tl = strlen(tok);
		if (tl > SD_NAME_MAX) {
			r = -ENAMETOOLONG;
			break;
		}
		if (olen + 1 + tl + 1 > outlen) {
			r = -ENAMETOOLONG;
			break;
		}
		out[olen++] = '/';
		memcpy(out + olen, tok, tl);
		olen += tl;
		out[olen] = '\0';
	}
	ftp_buf_free(&full);
	if (r < 0)
		return r;
	if (olen == 0) {
		if (outlen < 2)
			return -ENAMETOOLONG;
		out[0] = '/';
		out[1] = '\0';
	}
	return 0;
}

/* Quote a path for a 257 reply (RFC 959: embedded quotes doubled). */
static void quote_path(ftp_session *s, const char *path, ftp_buf *b)
{
	char *tofree;
	const char *p = ftp_out_name(s, path, &tofree);
	ftp_buf_puts(b, "\"");
	for (; *p; p++) {
		if (*p == '"')
			ftp_buf_puts(b, "\"\"");
		else if (*p == '\r' || *p == '\n')
			ftp_buf_puts(b, "?");
		else
			ftp_buf_append(b, p, 1);
	}
	ftp_buf_puts(b, "\"");
	free(tofree);
}

/* ------------------------------------------------------------ line reader */

/* Telnet: drop IAC command sequences in place, keep IAC IAC as 0xFF.
 * Returns the new length. */
static size_t iac_filter(ftp_session *s, char *p, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		switch (s->iac) {
		case 0:
			if (c == 255)
				s->iac = 1;
			else
				p[o++] = (char)c;
			break;
		case 1:
			if (c == 255) {
				p[o++] = (char)c;
				s->iac = 0;
			} else if (c >= 251 && c <= 254) {
				s->iac = 2;
			} else {
				s->iac = 0;
			}
			break;
		default:
			s->iac = 0;
			break;
		}
	}
	return o;
}

/* Receive more control bytes into rbuf (at most the free space). Returns
 * bytes added (may be 0 after filtering), or -1 on EOF/error. */
static ssize_t ctrl_fill(ftp_session *s)
{
	size_t room = s->rcap - s->rlen;
	if (room == 0)
		return 0;
	ssize_t n = ftp_io_recv(&s->ctrl, s->rbuf + s->rlen, room);
	if (n <= 0)
		return -1;
	size_t k = iac_filter(s, s->rbuf + s->rlen, (size_t)n);
	if (s->discarding) {
		char *lf = memchr(s->rbuf + s->rlen, '\n', k);
		if (!lf)
			return 0; /* dropped */
		s->discarding = 0;
		size_t rest = k - (size_t)(lf + 1 - (s->rbuf + s->rlen));
		memmove(s->rbuf + s->rlen, lf + 1, rest);
		k = rest;
	}
	s->rlen += k;
	return (ssize_t)k;
}

int ftp_ctrl_has_line(ftp_session *s)
{
	return !s->discarding && memchr(s->rbuf, '\n', s->rlen) != NULL;
}

/* Overlong line: answer once, drop what we hold, discard up to LF. */
static void overlong(ftp_session *s)
{
	s->rlen = 0;
	s->discarding = 1;
	const char *saved = s->cmd;
	s->cmd = "other";
	ftp_reply(s, 500, "Command line too long.");
	s->cmd = saved;
}

/* Next complete line into s->line (CR LF stripped). 1 = got one,
 * 0 = session over (EOF, error, timeout: 421 sent). */
static int next_line(ftp_session *s, char *line)
{
	for (;;) {
		if (s->state == FTP_CLOSING)
			return 0;
		char *lf = s->discarding ? NULL : memchr(s->rbuf, '\n', s->rlen);
		if (lf) {
			size_t n = (size_t)(lf - s->rbuf);
			size_t len = n;
			if (len > 0 && s->rbuf[len - 1] == '\r')
				len--;
			memcpy(line, s->rbuf, len);
			line[len] = '\0';
			memmove(s->rbuf, lf + 1, s->rlen - n - 1);
			s->rlen -= n + 1;
			if (memchr(line, '\0', len)) {
				line[0] = '\0'; /* NUL inside: reject */
				ftp_reply(s, 500, "NUL byte in command.");
				continue;
			}
			return 1;
		}
		if (s->rlen >= s->rcap) {
			overlong(s);
			continue;
		}
		if (!ftp_io_pending(&s->ctrl)) {
			int r = ftp_wait_fd(s->ctrl.fd, POLLIN, (int)s->srv->conf->idle_timeout);
			if (s->srv->stopping) {
				ftp_reply(s, 421, "Server shutting down.");
				return 0;
			}
			if (r == 0) {
				ftp_reply(s, 421, "Timeout.");
				return 0;
			}
			if (r < 0)
				return 0;
		}
		if (ctrl_fill(s) < 0)
			return 0;
	}
}

int ftp_ctrl_poll_abort(ftp_session *s)
{
	if (!ftp_ctrl_has_line(s)) {
		if (s->rlen >= s->rcap)
			return 2;
		if (ctrl_fill(s) < 0)
			return -1;
		if (!ftp_ctrl_has_line(s))
			return s->rlen >= s->rcap ? 2 : 0;
	}
	char *lf = memchr(s->rbuf, '\n', s->rlen);
	size_t n = (size_t)(lf - s->rbuf);
	size_t b = 0, e = n;
	while (b < e && isspace((unsigned char)s->rbuf[b]))
		b++;
	while (e > b && isspace((unsigned char)s->rbuf[e - 1]))
		e--;
	if (e - b == 4 && strncasecmp(s->rbuf + b, "ABOR", 4) == 0) {
		memmove(s->rbuf, lf + 1, s->rlen - n - 1);
		s->rlen -= n + 1;
		return 1;
	}
	return 2; /* another command is queued: handle it after the transfer */
}

/* ------------------------------------------------------------ commands */

typedef int (*cmd_fn)(ftp_session *s, const char *arg);

#define NEED_LOGIN 0x1 /* 530 before login */
#define NEED_ARG   0x2 /* 501 without an argument */
#define WRITES     0x4 /* refused for read-only logins */

static int cmd_user(ftp_session *s, const char *arg)
{
	const ftp_conf *c = s->srv->conf;
	if (s->state == FTP_LOGGED_IN)
		return ftp_reply(s, 503, "Already logged in.");
	int anon = strcasecmp(arg, "anonymous") == 0 || strcasecmp(arg, "ftp") == 0;
	if (anon && !c->anonymous) {
		s->state = FTP_CONNECTED;
		return ftp_reply(s, 530, "Anonymous login is not allowed.");
	}
	if (!anon && c->require_tls_login && s->tls_state == FTP_TLS_NONE) {
		s->state = FTP_CONNECTED;
		return ftp_reply(s, 530, "Non-anonymous sessions must use encryption (AUTH TLS).");
	}
	if (strlen(arg) > SD_USERNAME_MAX) {
		s->state = FTP_CONNECTED;
		return ftp_reply(s, 530, "Login incorrect.");
	}
	snprintf(s->username, sizeof s->username, "%s", arg);
	s->anon = anon;
	s->state = FTP_USER_GIVEN;
	return ftp_reply(s, 331, anon ? "Anonymous login ok, send anything as password."
				       : "Please specify the password.");
}

static void login_done(ftp_session *s)
{
	s->state = FTP_LOGGED_IN;
	snprintf(s->cwd, sizeof s->cwd, "/");
	s->bw = ftp_bw_acquire(s->srv, s->user.id);
	s->api->log(s->core, SD_LOG_INFO, SRC, "event=login user=%s addr=%s tls=%s", s->user.name,
		    s->addr, s->tls_state == FTP_TLS_CONTROL ? "yes" : "no");
	ftp_count(s, "storaged_logins_total", "frontend=\"ftp\",result=\"ok\"", 1);
}

static int cmd_pass(ftp_session *s, const char *arg)
{
	const ftp_conf *c = s->srv->conf;
	if (s->state == FTP_LOGGED_IN)
		return ftp_reply(s, 230, "Already logged in.");
	if (s->state != FTP_USER_GIVEN)
		return ftp_reply(s, 503, "Login with USER first.");
	int r = s->api->auth_allowed(s->core, s->addr);
	if (r == -SD_EBLOCKED) {
		ftp_count(s, "storaged_logins_total", "frontend=\"ftp\",result=\"blocked\"", 1);
		ftp_reply(s, 421, "Too many failed logins from your address; try again later.");
		s->state = FTP_CLOSING;
		return 0;
	}
	if (s->anon) {
		r = s->api->user_get(s->core, c->anonymous_user, &s->user);
		if (r == 0 && (s->user.flags & SD_USER_DISABLED))
			r = -SD_EAUTH;
		if (r == 0) {
			s->user.flags |= SD_USER_READONLY;
			login_done(s);
			return ftp_reply(s, 230, "Anonymous access granted (read-only).");
		}
	} else {
		r = s->api->auth_password(s->core, s->username, arg, s->addr, &s->user);
		if (r == 0) {
			login_done(s);
			return ftp_reply(s, 230, "Login successful.");
		}
	}
	s->failures++;
	s->state = FTP_CONNECTED;
	ftp_count(s, "storaged_logins_total", "frontend=\"ftp\",result=\"failed\"", 1);
	s->api->log(s->core, SD_LOG_INFO, SRC, "event=login_failed user=%s addr=%s err=\"%s\"",
		    s->username, s->addr, s->api->strerror(r));
	if (r == -SD_EBLOCKED || s->failures >= c->max_login_failures) {
		ftp_reply(s, 421, "Too many failed logins.");
		s->state = FTP_CLOSING;
		return 0;
	}
	return ftp_reply(s, 530, "Login incorrect.");
}

static int cmd_quit(ftp_session *s, const char *arg)
{
	(void)arg;
	ftp_reply(s, 221, "Goodbye.");
	s->state = FTP_CLOSING;
	return 0;
}

static int cmd_noop(ftp_session *s, const char *arg)
{
	(void)arg;
	return ftp_reply(s, 200, "NOOP ok.");
}

static int cmd_syst(ftp_session *s, const char *arg)
{
	(void)arg;
	return ftp_reply(s, 215, "UNIX Type: L8");
}

static int cmd_type(ftp_session *s, const char *arg)
{
	if (strcasecmp(arg, "I") == 0 || strcasecmp(arg, "L 8") == 0 || strcasecmp(arg, "L8") == 0) {
		s->type_ascii = 0;
		return ftp_reply(s, 200, "Switching to Binary mode.");
	}
	if (strcasecmp(arg, "A") == 0 || strcasecmp(arg, "A N") == 0) {
		s->type_ascii = 1;
		return ftp_reply(s, 200, "Switching to ASCII mode.");
	}
	return ftp_reply(s, 504, "Unsupported TYPE.");
}

static int cmd_mode(ftp_session *s, const char *arg)
{
	if (strcasecmp(arg, "S") == 0)
		return ftp_reply(s, 200, "Mode set to S.");
	return ftp_reply(s, 504, "Only stream mode (S) is supported.");
}

static int cmd_stru(ftp_session *s, const char *arg)
{
	if (strcasecmp(arg, "F") == 0)
		return ftp_reply(s, 200, "Structure set to F.");
	return ftp_reply(s, 504, "Only file structure (F) is supported.");
}

static int cmd_pwd(ftp_session *s, const char *arg)
{
	(void)arg;
	ftp_buf b = {0};
	quote_path(s, s->cwd, &b);
	int r = ftp_reply(s, 257, "%s is the current directory", b.data);
	ftp_buf_free(&b);
	return r;
}

static int cmd_cwd(ftp_session *s, const char *arg)
{
	char path[SD_PATH_MAX];
	int r = ftp_resolve(s, arg, path, sizeof path);
	if (r < 0)
		return ftp_reply_err(s, r, "Failed to change directory");
	if (strcmp(path, "/") != 0) {
		sd_stat st;
		r = s->api->stat(s->core, &s->user, path, &st);
		if (r == 0 && st.kind != SD_KIND_DIR)
			r = -ENOTDIR;
		if (r < 0)
			return ftp_reply_err(s, r, "Failed to change directory");
	}
	snprintf(s->cwd, sizeof s->cwd, "%s", path);
	return ftp_reply(s, 250, "Directory successfully changed.");
}

static int cmd_cdup(ftp_session *s, const char *arg)
{
	(void)arg;
	return cmd_cwd(s, "..");
}

static int cmd_mkd(ftp_session *s, const char *arg)
{
	char path[SD_PATH_MAX];
	int r = ftp_resolve(s, arg, path, sizeof path);
	if (r == 0)
		r = strcmp(path, "/") == 0 ? -EEXIST : s->api->mkdir(s->core, &s->user, path, 0755, 0);
	if (r < 0)
		return ftp_reply_err(s, r, "Create directory operation failed");
	ftp_buf b = {0};
	quote_path(s, path, &b);
	r = ftp_reply(s, 257, "%s created", b.data);
	ftp_buf_free(&b);
	return r;
}

static int cmd_rmd(ftp_session *s, const char *arg)
{
	char path[SD_PATH_MAX];
	int r = ftp_resolve(s, arg, path, sizeof path);
	if (r == 0)
		r = strcmp(path, "/") == 0 ? -EACCES : s->api->rmdir(s->core, &s->user, path);
	if (r < 0)
		return ftp_reply_err(s, r, "Remove directory operation failed");
	return ftp_reply(s, 250, "Remove directory operation successful.");
}

static int cmd_dele(ftp_session *s, const char *arg)
{
	char path[SD_PATH_MAX];
	sd_stat st;
	int r = ftp_resolve(s, arg, path, sizeof path);
	if (r == 0)
		r = s->api->stat(s->core, &s->user, path, &st);
	if (r == 0 && st.kind == SD_KIND_DIR)
		r = -EISDIR;
	if (r == 0)
		r = s->api->unlink(s->core, &s->user, path, 0);
	if (r < 0)
		return ftp_reply_err(s, r, "Delete operation failed");
	return ftp_reply(s, 250, "Delete operation successful.");
}

static int cmd_rnfr(ftp_session *s, const char *arg)
{
	char path[SD_PATH_MAX];
	sd_stat st;
	int r = ftp_resolve(s, arg, path, sizeof path);
	if (r == 0)
		r = strcmp(path, "/") == 0 ? -EACCES : s->api->stat(s->core, &s->user, path, &st);
	if (r < 0)
		return ftp_reply_err(s, r, "RNFR command failed");
	free(s->rnfr);
	s->rnfr = strdup(path);
	if (!s->rnfr)
		return ftp_reply(s, 451, "Out of memory.");
	return ftp_reply(s, 350, "Ready for RNTO.");
}

static int cmd_rnto(ftp_session *s, const char *arg)
{
	if (!s->rnfr)
		return ftp_reply(s, 503, "RNFR required first.");
	char path[SD_PATH_MAX];
	int r = ftp_resolve(s, arg, path, sizeof path);
	if (r == 0)
		r = s->api->rename(s->core, &s->user, s->rnfr, path);
	free(s->rnfr);
	s->rnfr = NULL;
	if (r < 0)
		return ftp_reply_err(s, r, "Rename failed");
	return ftp_reply(s, 250, "Rename successful.");
}

static int cmd_rest(ftp_session *s, const char *arg)
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

static int cmd_abor(ftp_session *s, const char *arg)
{
	(void)arg;
	ftp_data_reset(s);
	return ftp_reply(s, 225, "No transfer to ABOR.");
}

static int cmd_allo(ftp_session *s, const char *arg)
{
	(void)arg;
	return ftp_reply(s, 202, "ALLO command ignored.");
}

static int cmd_acct(ftp_session *s, const char *arg)
{
	(void)arg;
	return ftp_reply(s, 202, "ACCT not needed.");
}

static const char *fmt_time(int64_t t, char *buf, size_t n)
{
	struct tm tm;
	time_t tt = (time_t)t;
	gmtime_r(&tt, &tm);
	strftime(buf, n, "%Y%m%d%H%M%S", &tm);
	return buf;
}

static int stat_file(ftp_session *s, const char *arg, char *path, sd_stat *st, const char *what)
{
	int r = ftp_resolve(s, arg, path, SD_PATH_MAX);
	if (r == 0)
		r = s->api->stat(s->core, &s->user, path, st);
	if (r == 0 && st->kind != SD_KIND_FILE)
		r = -EISDIR;
	if (r < 0) {
		ftp_reply_err(s, r, what);
		return r;
	}
	return 0;
}

static int cmd_size(ftp_session *s, const char *arg)
{
	char path[SD_PATH_MAX];
	sd_stat st;
	if (stat_file(s, arg, path, &st, "Could not get file size") < 0)
		return 0;
	return ftp_reply(s, 213, "%llu", (unsigned long long)st.size);
}

static int cmd_mdtm(ftp_session *s, const char *arg)
{
	char path[SD_PATH_MAX], tb[32];
	sd_stat st;
	int r = ftp_resolve(s, arg, path, sizeof path);
	if (r == 0)
		r = s->api->stat(s->core, &s->user, path, &st);
	if (r < 0)
		return ftp_reply_err(s, r, "Could not get file modification time");
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
	struct tm tm = {0};
	char t[15];
	memcpy(t, p, 14);
	t[14] = '\0';
	int v[6];
	static const int off[6] = {0, 4, 6, 8, 10, 12}, len[6] = {4, 2, 2, 2, 2, 2};
	for (int i = 0; i < 6; i++) {
		int x = 0;
		for (int j = 0; j < len[i]; j++)
			x = x * 10 + (t[off[i] + j] - '0');
		v[i] = x;
	}
	if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 || v[4] > 59 || v[5] > 60)
		return -EINVAL;
	tm.tm_year = v[0] - 1900;
	tm.tm_mon = v[1] - 1;
	tm.tm_mday = v[2];
	tm.tm_hour = v[3];
	tm.tm_min = v[4];
	tm.tm_sec = v[5];
	*out = (int64_t)timegm(&tm);
	return 0;
}

static int cmd_mfmt(ftp_session *s, const char *arg)
{
	const char *sp = strchr(arg, ' ');
	int64_t t;
	if (!sp || parse_time(arg, (size_t)(sp - arg), &t) < 0 || !sp[1])
		return ftp_reply(s, 501, "Usage: MFMT YYYYMMDDHHMMSS path");
	char path[SD_PATH_MAX], tb[32];
	int r = ftp_resolve(s, sp + 1, path, sizeof path);
	if (r == 0)
		r = s->api->set_mtime(s->core, &s->user, path, t);
	if (r < 0)
		return ftp_reply_err(s, r, "Could not set file modification time");
	/* The name is echoed as the client sent it (its own charset). */
	return ftp_reply(s, 213, "Modify=%s; %s", fmt_time(t, tb, sizeof tb), sp + 1);
}

static int cmd_hash(ftp_session *s, const char *arg)
{
	char path[SD_PATH_MAX];
	sd_stat st;
	if (stat_file(s, arg, path, &st, "HASH failed") < 0)
		return 0;
	if (!st.sha256[0])
		return ftp_reply(s, 451, "HASH unavailable for this file.");
	unsigned long long end = st.size ? (unsigned long long)st.size - 1 : 0;
	return ftp_reply(s, 213, "SHA-256 0-%llu %s %s", end, st.sha256, arg);
}

static int cmd_feat(ftp_session *s, const char *arg)
{
	(void)arg;
	ftp_buf b = {0};
	ftp_buf_puts(&b, "Features:\n");
	if (s->srv->tls)
		ftp_buf_puts(&b, " AUTH TLS\n PBSZ\n PROT\n");
	ftp_buf_puts(&b, " EPRT\n EPSV\n HASH SHA-256*\n MDTM\n MFMT\n"
			 " MLST type*;size*;modify*;perm*;unique*;\n PASV\n REST STREAM\n SIZE\n"
			 " TVFS\n UTF8\nEnd");
	int r = ftp_reply(s, 211, "%s", b.data);
	ftp_buf_free(&b);
	return r;
}

static int cmd_opts(ftp_session *s, const char *arg)
{
	if (strncasecmp(arg, "UTF8", 4) == 0 || strncasecmp(arg, "UTF-8", 5) == 0) {
		const char *v = arg + (arg[3] == '-' ? 5 : 4);
		while (*v == ' ')
			v++;
		if (!*v || strcasecmp(v, "ON") == 0) {
			s->utf8_opt = 1;
			s->legacy = 0;
			return ftp_reply(s, 200, "Always in UTF8 mode.");
		}
		if (strcasecmp(v, "OFF") == 0) {
			if (open_charsets(s) < 0)
				return ftp_reply(s, 504, "No fallback charset configured; names stay UTF-8.");
			s->utf8_opt = 0;
			s->legacy = 1;
			return ftp_reply(s, 200, "Names now use %s.", s->srv->conf->fallback_charset);
		}
		return ftp_reply(s, 501, "OPTS UTF8 takes ON or OFF.");
	}
	if (strncasecmp(arg, "HASH", 4) == 0 && (arg[4] == '\0' || arg[4] == ' ')) {
		const char *v = arg + 4;
		while (*v == ' ')
			v++;
		if (!*v || strcasecmp(v, "SHA-256") == 0)
			return ftp_reply(s, 200, "SHA-256");
		return ftp_reply(s, 501, "Unknown algorithm, only SHA-256 is available.");
	}
	if (strncasecmp(arg, "MLST", 4) == 0 && (arg[4] == '\0' || arg[4] == ' '))
		return ftp_reply(s, 200, "MLST OPTS type;size;modify;perm;unique;");
	return ftp_reply(s, 501, "Option not understood.");
}

static int cmd_help(ftp_session *s, const char *arg)
{
	(void)arg;
	return ftp_reply(s, 214,
			 "The following commands are recognized.\n"
			 " ABOR ACCT ALLO APPE AUTH CDUP CWD  DELE EPRT EPSV FEAT HASH HELP LIST MDTM\n"
			 " MFMT MKD  MLSD MLST MODE NLST NOOP OPTS PASS PASV PBSZ PORT PROT PWD  QUIT\n"
			 " REST RETR RMD  RNFR RNTO SITE SIZE STAT STOR STOU STRU SYST TYPE USER XCUP\n"
			 " XCWD XMKD XPWD XRMD\n"
			 "Help OK.");
}

static int cmd_stat(ftp_session *s, const char *arg)
{
	if (*arg) {
		if (s->state != FTP_LOGGED_IN)
			return ftp_reply(s, 530, "Please login with USER and PASS.");
		return ftp_cmd_stat_path(s, arg);
	}
	return ftp_reply(s, 211,
			 "FTP server status:\n"
			 "     Connected to %s\n"
			 "     Logged in as %s\n"
			 "     TYPE: %s\n"
			 "     Control connection %s, data %s\n"
			 "     Names: %s\n"
			 "End of status",
			 s->addr, s->state == FTP_LOGGED_IN ? s->user.name : "(nobody)",
			 s->type_ascii ? "ASCII" : "BINARY",
			 s->tls_state == FTP_TLS_CONTROL ? "TLS" : "plain", s->prot_p ? "TLS" : "plain",
			 s->legacy ? s->srv->conf->fallback_charset : "UTF-8");
}

static int cmd_site(ftp_session *s, const char *arg)
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
		char path[SD_PATH_MAX];
		sd_stat st;
		int r = ftp_resolve(s, end + 1, path, sizeof path);
		/* lftp's mirror -R sends a CHMOD per file, usually to the mode
		 * the file has: a read answers it without a write transaction. */
		if (r == 0)
			r = s->api->stat(s->core, &s->user, path, &st);
		if (r == 0 && (st.mode & 07777) != mode)
			r = s->api->chmod(s->core, &s->user, path, (uint32_t)mode);
		if (r < 0)
			return ftp_reply_err(s, r, "SITE CHMOD failed");
		return ftp_reply(s, 200, "SITE CHMOD command ok.");
	}
	if (strcasecmp(arg, "HELP") == 0)
		return ftp_reply(s, 214, "CHMOD HELP");
	return ftp_reply(s, 500, "Unknown SITE command.");
}

static int cmd_auth(ftp_session *s, const char *arg)
{
	if (!s->srv->tls)
		return ftp_reply(s, 502, "TLS is not configured on this server.");
	if (s->tls_state != FTP_TLS_NONE)
		return ftp_reply(s, 503, "Already using TLS.");
	if (strcasecmp(arg, "TLS") != 0 && strcasecmp(arg, "SSL") != 0 && strcasecmp(arg, "TLS-C") != 0)
		return ftp_reply(s, 504, "Unknown AUTH type.");
	if (s->rlen > 0) { /* pipelined plain text after AUTH: refuse */
		ftp_reply(s, 503, "Input pipelined before AUTH TLS.");
		s->state = FTP_CLOSING;
		return 0;
	}
	ftp_reply(s, 234, "Proceed with negotiation.");
	char err[256];
	int r = ftp_tls_accept(s->srv->tls, s->ctrl.fd, 0, s->srv->conf->data_timeout, &s->ctrl.tls, err,
			       sizeof err);
	if (r < 0) {
		s->ctrl.tls = NULL;
		s->api->log(s->core, SD_LOG_INFO, SRC, "event=tls_failed addr=%s reason=\"%s\"", s->addr, err);
		s->state = FTP_CLOSING;
		return 0;
	}
	s->tls_state = FTP_TLS_CONTROL;
	/* RFC 4217 11: a fresh login is expected after AUTH. */
	if (s->state == FTP_USER_GIVEN)
		s->state = FTP_CONNECTED;
	return 0;
}

static int cmd_pbsz(ftp_session *s, const char *arg)
{
	if (s->tls_state == FTP_TLS_NONE)
		return ftp_reply(s, 503, "PBSZ needs a TLS-protected control connection.");
	(void)arg;
	s->pbsz = 1;
	return ftp_reply(s, 200, "PBSZ=0");
}

static int cmd_prot(ftp_session *s, const char *arg)
{
	if (s->tls_state == FTP_TLS_NONE)
		return ftp_reply(s, 503, "PROT needs a TLS-protected control connection.");
	/* RFC 4217 wants PBSZ first; some clients skip it, and the only
	 * buffer size for TLS is 0 anyway, so PROT implies PBSZ 0. */
	s->pbsz = 1;
	if (strcasecmp(arg, "P") == 0) {
		s->prot_p = 1;
		return ftp_reply(s, 200, "PROT now Private.");
	}
	if (strcasecmp(arg, "C") == 0) {
		if (s->srv->conf->require_tls_data)
			return ftp_reply(s, 534, "PROT C refused: this server requires protected data.");
		s->prot_p = 0;
		return ftp_reply(s, 200, "PROT now Clear.");
	}
	return ftp_reply(s, 536, "PROT %s not supported.", arg);
}

static int cmd_ccc(ftp_session *s, const char *arg)
{
	(void)arg;
	return ftp_reply(s, 534, "CCC not allowed.");
}

static int cmd_pasv(ftp_session *s, const char *a) { return ftp_cmd_pasv(s, a, 0); }
static int cmd_epsv(ftp_session *s, const char *a) { return ftp_cmd_pasv(s, a, 1); }
static int cmd_port(ftp_session *s, const char *a) { return ftp_cmd_port(s, a, 0); }
static int cmd_eprt(ftp_session *s, const char *a) { return ftp_cmd_port(s, a, 1); }
static int cmd_retr(ftp_session *s, const char *a) { return ftp_cmd_retr(s, a); }
static int cmd_stor(ftp_session *s, const char *a) { return ftp_cmd_stor(s, a, 'S'); }
static int cmd_appe(ftp_session *s, const char *a) { return ftp_cmd_stor(s, a, 'A'); }
static int cmd_stou(ftp_session *s, const char *a) { return ftp_cmd_stor(s, a, 'U'); }
static int cmd_list(ftp_session *s, const char *a) { return ftp_cmd_list(s, a, 'L'); }
static int cmd_nlst(ftp_session *s, const char *a) { return ftp_cmd_list(s, a, 'N'); }
static int cmd_mlsd(ftp_session *s, const char *a) { return ftp_cmd_list(s, a, 'M'); }
static int cmd_mlst(ftp_session *s, const char *a) { return ftp_cmd_mlst(s, a); }

static const struct cmd {
	const char *name;
	cmd_fn fn;
	int flags;
} cmds[] = {
	{"USER", cmd_user, NEED_ARG},
	{"PASS", cmd_pass, 0},
	{"QUIT", cmd_quit, 0},
	{"NOOP", cmd_noop, 0},
	{"SYST", cmd_syst, 0},
	{"FEAT", cmd_feat, 0},
	{"OPTS", cmd_opts, NEED_ARG},
	{"HELP", cmd_help, 0},
	{"AUTH", cmd_auth, NEED_ARG},
	{"PBSZ", cmd_pbsz, NEED_ARG},
	{"PROT", cmd_prot, NEED_ARG},
	{"CCC", cmd_ccc, 0},
	{"STAT", cmd_stat, 0},
	{"TYPE", cmd_type, NEED_LOGIN | NEED_ARG},
	{"MODE", cmd_mode, NEED_LOGIN | NEED_ARG},
	{"STRU", cmd_stru, NEED_LOGIN | NEED_ARG},
	{"PWD", cmd_pwd, NEED_LOGIN},
	{"XPWD", cmd_pwd, NEED_LOGIN},
	{"CWD", cmd_cwd, NEED_LOGIN | NEED_ARG},
	{"XCWD", cmd_cwd, NEED_LOGIN | NEED_ARG},
	{"CDUP", cmd_cdup, NEED_LOGIN},
	{"XCUP", cmd_cdup, NEED_LOGIN},
	{"MKD", cmd_mkd, NEED_LOGIN | NEED_ARG | WRITES},
	{"XMKD", cmd_mkd, NEED_LOGIN | NEED_ARG | WRITES},
	{"RMD", cmd_rmd, NEED_LOGIN | NEED_ARG | WRITES},
	{"XRMD", cmd_rmd, NEED_LOGIN | NEED_ARG | WRITES},
	{"DELE", cmd_dele, NEED_LOGIN | NEED_ARG | WRITES},
	{"RNFR", cmd_rnfr, NEED_LOGIN | NEED_ARG | WRITES},
	{"RNTO", cmd_rnto, NEED_LOGIN | NEED_ARG | WRITES},
	{"REST", cmd_rest, NEED_LOGIN | NEED_ARG},
	{"ABOR", cmd_abor, NEED_LOGIN},
	{"ALLO", cmd_allo, NEED_LOGIN},
	{"ACCT", cmd_acct, NEED_LOGIN},
	{"SIZE", cmd_size, NEED_LOGIN | NEED_ARG},
	{"MDTM", cmd_mdtm, NEED_LOGIN | NEED_ARG},
	{"MFMT", cmd_mfmt, NEED_LOGIN | NEED_ARG | WRITES},
	{"HASH", cmd_hash, NEED_LOGIN | NEED_ARG},
	{"SITE", cmd_site, NEED_ARG},
	{"PASV", cmd_pasv, NEED_LOGIN},
	{"EPSV", cmd_epsv, NEED_LOGIN},
	{"PORT", cmd_port, NEED_LOGIN | NEED_ARG},
	{"EPRT", cmd_eprt, NEED_LOGIN | NEED_ARG},
	{"LIST", cmd_list, NEED_LOGIN},
	{"NLST", cmd_nlst, NEED_LOGIN},
	{"MLSD", cmd_mlsd, NEED_LOGIN},
	{"MLST", cmd_mlst, NEED_LOGIN},
	{"RETR", cmd_retr, NEED_LOGIN | NEED_ARG},
	{"STOR", cmd_stor, NEED_LOGIN | NEED_ARG | WRITES},
	{"APPE", cmd_appe, NEED_LOGIN | NEED_ARG | WRITES},
	{"STOU", cmd_stou, NEED_LOGIN | WRITES},
	{NULL, NULL, 0},
};

static void handle_line(ftp_session *s, char *line)
{
	/* Split "VERB[ arg]"; the verb is case-insensitive. */
	char verb[8];
	size_t i = 0;
	while (line[i] == ' ')
		i++;
	size_t vb = i;
	while (line[i] && line[i] != ' ')
		i++;
	size_t vl = i - vb;
	const char *arg = line + i;
	if (*arg == ' ')
		arg++;
	s->cmd = "other";
	if (vl == 0) {
		ftp_reply(s, 500, "Empty command.");
		return;
	}
	if (vl >= sizeof verb) {
		ftp_reply(s, 500, "Unknown command.");
		return;
	}
	for (size_t k = 0; k < vl; k++)
		verb[k] = (char)toupper((unsigned char)line[vb + k]);
	verb[vl] = '\0';

	const struct cmd *c = cmds;
	while (c->name && strcmp(c->name, verb) != 0)
		c++;
	if (!c->name) {
		ftp_reply(s, 502, "Command not implemented.");
		return;
	}
	s->cmd = c->name;
	if (s->rnfr && c->fn != cmd_rnto) {
		free(s->rnfr);
		s->rnfr = NULL;
	}
	if ((c->flags & NEED_LOGIN) && s->state != FTP_LOGGED_IN) {
		ftp_reply(s, 530, "Please login with USER and PASS.");
		return;
	}
	if ((c->flags & NEED_ARG) && !*arg) {
		ftp_reply(s, 501, "%s needs an argument.", c->name);
		return;
	}
	if ((c->flags & WRITES) && ftp_readonly(s))
		return;
	c->fn(s, arg);
}

/* ------------------------------------------------------------ the thread */

static void session_end(ftp_session *s)
{
	ftp_data_reset(s);
	free(s->rnfr);
	s->rnfr = NULL;
	if (s->ctrl.tls) {
		int r;
		do
			r = gnutls_bye(s->ctrl.tls, GNUTLS_SHUT_WR);
		while (r == GNUTLS_E_INTERRUPTED);
		gnutls_deinit(s->ctrl.tls);
		s->ctrl.tls = NULL;
	}
	shutdown(s->ctrl.fd, SHUT_RDWR);
	if (s->cd_in != (iconv_t)-1)
		iconv_close(s->cd_in);
	if (s->cd_out != (iconv_t)-1)
		iconv_close(s->cd_out);
	ftp_bw_release(s->srv, s->bw);
	free(s->rbuf);
	s->rbuf = NULL;
}

void *ftp_session_main(void *arg)
{
	ftp_session *s = arg;
	ftp_server *srv = s->srv;
	const ftp_conf *conf = srv->conf;
	char *line = NULL;
	int one = 1;

	(void)setsockopt(s->ctrl.fd, SOL_SOCKET, SO_OOBINLINE, &one, sizeof one);
	(void)setsockopt(s->ctrl.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	ftp_sock_timeouts(s->ctrl.fd, conf->data_timeout);
	s->rcap = (size_t)conf->max_line;
	s->rbuf = malloc(s->rcap + 1);
	line = malloc(s->rcap + 1);
	snprintf(s->cwd, sizeof s->cwd, "/");
	s->api->log(s->core, SD_LOG_DEBUG, SRC, "event=connect addr=%s implicit=%d", s->addr, s->implicit);
	if (!s->rbuf || !line)
		goto out;
	if (s->implicit) {
		char err[256];
		if (ftp_tls_accept(srv->tls, s->ctrl.fd, 0, conf->data_timeout, &s->ctrl.tls, err, sizeof err) < 0) {
			s->ctrl.tls = NULL;
			s->api->log(s->core, SD_LOG_INFO, SRC, "event=tls_failed addr=%s reason=\"%s\"", s->addr, err);
			goto out;
		}
		s->tls_state = FTP_TLS_CONTROL;
	}
	if (srv->stopping) {
		ftp_reply(s, 421, "Server shutting down.");
		goto out;
	}
	ftp_reply(s, 220, "%s", conf->banner && *conf->banner ? conf->banner : "FTP server ready.");
	while (s->state != FTP_CLOSING && next_line(s, line)) {
		if (!line[0])
			continue;
		handle_line(s, line);
	}
out:
	session_end(s);
	free(line);
	s->api->log(s->core, SD_LOG_DEBUG, SRC, "event=disconnect addr=%s user=%s", s->addr,
		    s->state == FTP_LOGGED_IN || s->user.name[0] ? s->user.name : "-");
	const sd_core_api *api = s->api;
	sd_core *core = s->core;
	pthread_mutex_lock(&srv->lock);
	srv->nlive--;
	int nlive = srv->nlive;
	s->done = 1; /* the reaper may free s from here on */
	pthread_mutex_unlock(&srv->lock);
	api->metric_set(core, "storaged_sessions", "frontend=\"ftp\"", nlive);
	return NULL;
}
