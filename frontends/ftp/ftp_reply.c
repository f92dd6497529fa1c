/*
 * ftp_reply.c - replies on the control connection, the mapping of engine
 * errors to reply codes, and metrics.
 *
 * A leaf for every command file: it sends and counts, and knows nothing
 * of data connections or the command table.
 *
 * Error mapping (RFC 959 codes; the engine's words follow the code):
 *   550  no such file, exists, not a directory, not permitted, read-only
 *   553  bad file name: invalid path or encoding, too long
 *   552  quota exceeded, disk full
 *   450  the file is open in a conflicting mode elsewhere
 *   451  storage failure, stored content damaged
 *   421  (-SD_EAUTH on a logged-in session) the user was disabled, the
 *        password changed or the token revoked: the session ends.
 */
#include "ftp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ftp_count(ftp_session *s, const char *name, const char *labels, int64_t d)
{
	s->api->metric_add(s->core, name, labels, d);
}

int ftp_reply(ftp_session *s, int code, const char *fmt, ...)
{
	sd_buf text = SD_BUF_INIT, out = SD_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	sd_buf_vprintf(&text, fmt, ap);
	va_end(ap);
	/* Multi-line text: "code-first", middle lines as they are (space
	 * first), "code last". */
	const char *p = text.data ? text.data : "";
	const char *first = p;
	for (;;) {
		const char *nl = strchr(p, '\n');
		if (!nl) {
			sd_buf_printf(&out, "%d %s\r\n", code, p);
			break;
		}
		if (p == first)
			sd_buf_printf(&out, "%d-", code);
		sd_buf_append(&out, p, (size_t)(nl - p));
		sd_buf_puts(&out, "\r\n");
		p = nl + 1;
	}
	sd_buf_free(&text);
	int r = ftp_io_send(&s->ctrl, out.data, out.len);
	sd_buf_free(&out);
	if (r < 0)
		s->state = FTP_CLOSING;
	if (code >= 200 && s->cmd) {
		char labels[128];
		snprintf(labels, sizeof labels, "frontend=\"ftp\",command=\"%s\",status=\"%d\"", s->cmd, code);
		ftp_count(s, "storaged_requests_total", labels, 1);
	}
	return r;
}

void ftp_auth_lost(ftp_session *s)
{
	s->api->log(s->core, SD_LOG_INFO, FTP_SRC, "event=session_ended user=%s addr=%s reason=credentials",
		    s->uname, s->addr);
	ftp_count(s, "storaged_sessions_ended_total", "frontend=\"ftp\",reason=\"credentials\"", 1);
	ftp_reply(s, 421, "Your login is no longer valid; closing the session.");
	s->state = FTP_CLOSING;
}

int ftp_reply_err(ftp_session *s, int err, const char *what)
{
	if (err > 0)
		err = -err;
	if (err == -SD_EAUTH && s->state == FTP_LOGGED_IN) {
		ftp_auth_lost(s);
		return 0;
	}
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
	case EFBIG:
		code = 552;
		break;
	case EBUSY:
		code = 450;
		break;
	case EIO:
	case ENOMEM:
	case SD_ECORRUPT:
		code = 451;
		break;
	default:
		break;
	}
	if (-err == EILSEQ)
		words = ftp_charset_refusal(s);
	return ftp_reply(s, code, "%s: %s.", what, words);
}

int ftp_readonly(ftp_session *s)
{
	if (s->readonly) {
		ftp_reply(s, 550, "Permission denied (read-only login).");
		return 1;
	}
	return 0;
}

void ftp_quote_path(ftp_session *s, const char *path, sd_buf *b)
{
	char *tofree;
	const char *p = ftp_name_out(s, path, &tofree);
	sd_buf_puts(b, "\"");
	for (; *p; p++) {
		if (*p == '"')
			sd_buf_puts(b, "\"\"");
		else if (*p == '\r' || *p == '\n')
			sd_buf_puts(b, "?");
		else
			sd_buf_append(b, p, 1);
	}
	sd_buf_puts(b, "\"");
	free(tofree);
}
