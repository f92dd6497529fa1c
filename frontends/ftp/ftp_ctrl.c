/*
 * ftp_ctrl.c - the control connection's line reader.
 *
 * Bytes arrive in s->rbuf (max_line bytes, allocated by the session);
 * Telnet IAC sequences are dropped as they arrive (clients send ABOR as
 * IAC IP IAC DM, urgent; the socket has SO_OOBINLINE), and a command is a
 * line up to LF with an optional CR before it.
 *
 * Invariants:
 *  1. A command line longer than max_line is answered 500 exactly once and
 *     its bytes are dropped up to the next LF (s->discarding); the buffer
 *     never grows.
 *  2. A line holding a NUL byte is refused (500) and never dispatched.
 *  3. While waiting for a command, a logged-in session's credentials are
 *     re-checked every IDLE_CHECK_MS (api->session_check, which the engine
 *     rate-limits): an idle session of a disabled user ends with 421
 *     without waiting for its next command.
 *  4. During a transfer, input is read only to find ABOR
 *     (ftp_ctrl_poll_abort); any other command stays queued until the
 *     transfer's final reply.
 */
#include "ftp.h"

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <strings.h>

#define IDLE_CHECK_MS 10000

/* Telnet: drop IAC command sequences in place (IAC + 240..250, IAC +
 * WILL/WONT/DO/DONT + option), keep IAC IAC as 0xFF. An IAC followed by a
 * byte that is no Telnet command (a raw 0xFF inside a file name, which
 * clients send unescaped) is no sequence: both bytes stay, so the name
 * keeps its bytes and is judged as sent (553 when invalid) instead of being
 * stored under a name with bytes dropped. Returns the new length. p has
 * room for n + 1 bytes when an IAC is pending from the previous chunk
 * (fill keeps that byte free), for the IAC that must come back. */
static size_t iac_filter(ftp_session *s, char *p, size_t n)
{
	size_t o = 0;
	if (s->iac == 1 && n > 0 && (unsigned char)p[0] < 240) {
		/* the IAC ended the previous chunk and was no sequence: put it
		 * back in front, then filter as if it had come with this chunk */
		memmove(p + 1, p, n);
		p[0] = (char)255;
		n++;
		s->iac = 0;
	}
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
			} else if (c >= 240) {
				s->iac = 0;
			} else {
				p[o++] = (char)255;
				p[o++] = (char)c;
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
static ssize_t fill(ftp_session *s)
{
	size_t room = s->rcap - s->rlen;
	if (s->iac == 1) { /* iac_filter may have to put an IAC back */
		if (room > 1)
			room--;
		else
			s->iac = 0; /* no room for it: the line is too long anyway */
	}
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

/* Wait up to idle_timeout for control input, re-checking a logged-in
 * session's credentials on the way (invariant 3). 1 readable, 0 the
 * session is over (reply sent where possible). */
static int wait_input(ftp_session *s)
{
	const ftp_conf *c = s->srv->conf;
	int64_t deadline = sd_mono_ms() + c->idle_timeout;
	for (;;) {
		int64_t left = deadline - sd_mono_ms();
		if (s->state != FTP_LOGGED_IN && s->grace_end - sd_mono_ms() <= 0) {
			s->api->log(s->core, SD_LOG_INFO, FTP_SRC,
				    "event=disconnect reason=login_grace_time addr=%s", s->addr);
			ftp_reply(s, 421, "Login grace time exceeded, closing.");
			return 0;
		}
		if (s->state != FTP_LOGGED_IN && s->grace_end - sd_mono_ms() < left)
			left = s->grace_end - sd_mono_ms();
		if (left <= 0) {
			ftp_reply(s, 421, "Timeout.");
			return 0;
		}
		int64_t slice = left;
		if (s->state == FTP_LOGGED_IN && slice > IDLE_CHECK_MS)
			slice = IDLE_CHECK_MS;
		int r = ftp_wait_fd(s->ctrl.fd, POLLIN, (int)slice);
		if (s->srv->stopping) {
			ftp_reply(s, 421, "Server shutting down.");
			return 0;
		}
		if (r < 0)
			return 0;
		if (r > 0)
			return 1;
		if (s->state == FTP_LOGGED_IN && s->api->session_check(s->sess) == -SD_EAUTH) {
			ftp_auth_lost(s);
			return 0;
		}
	}
}

int ftp_ctrl_next_line(ftp_session *s, char *line)
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
		if (!ftp_io_pending(&s->ctrl) && !wait_input(s))
			return 0;
		if (fill(s) < 0)
			return 0;
	}
}

int ftp_ctrl_poll_abort(ftp_session *s)
{
	if (!ftp_ctrl_has_line(s)) {
		if (s->rlen >= s->rcap)
			return 2;
		if (fill(s) < 0)
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
