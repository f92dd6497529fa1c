/*
 * ftp_xfer.c - file transfers: RETR, STOR, APPE, STOU, and the one log
 * line and metrics each transfer leaves.
 *
 * Downloads (DESIGN path 3): api->open_read gives a reader of the file's
 * current version, which stays readable whatever happens to the file
 * meanwhile. The bytes go with sendfile(2) from api->reader_fd() only when
 * the reader has a local descriptor and the data connection is plain
 * (no TLS) in binary mode; otherwise through api->reader_pread in
 * XFER_BUF chunks (GnuTLS, ASCII conversion, non-local stores). REST n
 * starts at byte n; an offset past the end is 554.
 *
 * Uploads (DESIGN path 1): STOR streams into api->upload_begin /
 * upload_write; REST n + STOR and APPE pass the kept prefix length as the
 * offset. Whatever ends the data stream (EOF, reset, timeout, ABOR), the
 * bytes received are committed (like vsftpd, which keeps partial files),
 * so the owner can resume with REST/APPE; until the commit nobody sees
 * anything new. Only an engine write error (quota, disk full, I/O) aborts
 * the upload: the previous version stays.
 *
 * Neither a reader nor an upload needs the session once open. When the
 * session's credentials stop holding during a transfer (user disabled,
 * password changed, token revoked), a download finishes and the session
 * ends at its next command (ftp_session.c); an upload is not committed:
 * its bytes are dropped and the session ends with 421 at once.
 */
#include "ftp.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>

#define XFER_BUF (256 * 1024)
#define SENDFILE_CHUNK (8u << 20)

/* ------------------------------------------------------------ logging */

/* Words for why a transfer stopped (err: positive errno or SD_E* code, or 0). */
static const char *why_text(ftp_session *s, int err)
{
	if (err == EPROTO && s->data.tls_err)
		return gnutls_strerror(s->data.tls_err);
	if (err == ECANCELED)
		return "aborted by client";
	if (err == ESHUTDOWN)
		return "server stopping";
	if (err < SD_EBASE)
		return strerror(err);
	return s->api->strerror(-err);
}

/* One "event=transfer" line and the transfer metrics. path: as the
 * engine resolved it; err: positive, 0 when the transfer went well. */
static void xfer_log(ftp_session *s, const char *cmd, const char *path, uint64_t bytes,
		     int64_t t0_ms, const char *result, int dedup, int err)
{
	/* the engine writes the line (and the xferlog), the same for every
	 * front end (docs/logs.md) */
	int up = cmd[0] == 'S' || cmd[0] == 'A';
	sd_xfer_rec x = {.proto = "ftp", .user = s->uname, .addr = s->addr, .cmd = cmd, .path = path,
			 .incoming = up, .anonymous = s->anon, .bytes = bytes,
			 .ms = sd_mono_ms() - t0_ms, .result = result, .dedup = dedup,
			 .reason = err ? why_text(s, err) : NULL};
	s->api->log_transfer(s->core, &x);
	/* the series every front end has (docs/metrics.md); deduplication is
	 * counted by the engine for all of them */
	char labels[128];
	if (bytes)
		ftp_count(s, up ? "storaged_bytes_received_total" : "storaged_bytes_sent_total",
			  "frontend=\"ftp\"", (int64_t)bytes);
	snprintf(labels, sizeof labels, "frontend=\"ftp\",command=\"%s\",result=\"%s\"", cmd, result);
	ftp_count(s, "storaged_transfers_total", labels, 1);
	if (up && strcmp(result, "ok") == 0)
		ftp_count(s, "storaged_frontend_uploads_total", "frontend=\"ftp\",kind=\"stream\"", 1);
}

/* The engine's canonical path of a (UTF-8) argument, for logs; the
 * argument itself when it does not resolve (the engine will refuse it). */
static void shown_path(ftp_session *s, const char *upath, char *out, size_t outlen)
{
	if (s->api->resolve(s->sess, upath, strlen(upath), out, outlen) < 0)
		snprintf(out, outlen, "%s", upath);
}

/* ------------------------------------------------------------ RETR */

/* Why a wait in a download ended early (ftp_xfer_wait's 0 or -1). */
static int wait_error(ftp_session *s, int w)
{
	return w == 0 ? ETIMEDOUT : s->srv->stopping ? ESHUTDOWN : ECANCELED;
}

/* Send [*pos, size) of the content with sendfile from fd, where the
 * content starts at base. 0 when all went; ENOSYS when the kernel cannot
 * sendfile this pair and nothing went yet (use send_by_pread); else a
 * positive error. *pos and *sent advance with what went. */
static int send_by_sendfile(ftp_session *s, int fd, uint64_t base, uint64_t *pos, uint64_t size,
			    uint64_t *sent, int *ctrl_state, int *abor)
{
	while (*pos < size) {
		int w = ftp_xfer_wait(s, POLLOUT, ctrl_state, abor, 0);
		if (w <= 0)
			return wait_error(s, w);
		size_t want = sd_bw_chunk(s->srv->bw, s->bw, SENDFILE_CHUNK);
		if (size - *pos < want)
			want = (size_t)(size - *pos);
		off_t o = (off_t)(base + *pos);
		ssize_t n = sendfile(s->data.fd, fd, &o, want);
		if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
			continue; /* socket full: wait again */
		if (n < 0 && (errno == EINVAL || errno == ENOSYS) && *sent == 0)
			return ENOSYS;
		if (n < 0)
			return errno;
		if (n == 0)
			return SD_ECORRUPT; /* the content ends before its size */
		*pos += (uint64_t)n;
		*sent += (uint64_t)n;
		sd_bw_take(s->srv->bw, s->bw, (size_t)n);
	}
	return 0;
}

/* Send [*pos, size) of the content read with reader_pread, LF -> CRLF in
 * ASCII mode. 0 or a positive error; *pos and *sent advance. */
static int send_by_pread(ftp_session *s, sd_reader *rd, uint64_t *pos, uint64_t size,
			 uint64_t *sent, int *ctrl_state, int *abor)
{
	char *buf = sd_xmalloc(XFER_BUF);
	char *obuf = s->type_ascii ? sd_xmalloc(XFER_BUF * 2) : NULL;
	char prev = 0; /* last byte of the previous chunk (ASCII) */
	int err = 0;
	while (*pos < size) {
		size_t want = sd_bw_chunk(s->srv->bw, s->bw, XFER_BUF);
		ssize_t n = s->api->reader_pread(rd, buf, want, *pos);
		if (n <= 0) {
			err = n < 0 ? (int)-n : SD_ECORRUPT;
			break;
		}
		const char *out = buf;
		size_t olen = (size_t)n;
		if (s->type_ascii) {
			olen = 0;
			for (ssize_t i = 0; i < n; i++) {
				if (buf[i] == '\n' && prev != '\r')
					obuf[olen++] = '\r';
				obuf[olen++] = buf[i];
				prev = buf[i];
			}
			out = obuf;
		}
		int sr = ftp_data_send(s, out, olen, ctrl_state, abor);
		if (sr < 0) {
			err = -sr;
			break;
		}
		*pos += (uint64_t)n;
		*sent += olen;
		sd_bw_take(s->srv->bw, s->bw, olen);
	}
	free(obuf);
	free(buf);
	return err;
}

int ftp_cmd_retr(ftp_session *s, const char *arg)
{
	char shown[SD_PATH_MAX + 1];
	char *upath;
	sd_reader *rd = NULL;
	sd_stat st;
	uint64_t off = s->have_rest ? s->rest : 0;
	s->have_rest = 0;
	s->rest = 0;
	int r = ftp_name_in(s, arg, &upath);
	if (r == 0) {
		r = s->api->open_read(s->sess, upath, &rd, &st);
		shown_path(s, upath, shown, sizeof shown);
		free(upath);
	}
	if (r < 0) {
		ftp_data_reset(s);
		return ftp_reply_err(s, r, "Failed to open file");
	}
	if (off > st.size) {
		ftp_data_reset(s);
		s->api->reader_close(rd);
		return ftp_reply(s, 554, "Restart offset %llu is beyond the end of the file (%llu bytes).",
				 (unsigned long long)off, (unsigned long long)st.size);
	}
	if (ftp_data_precheck(s) < 0) {
		s->api->reader_close(rd);
		return 0;
	}
	ftp_reply(s, 150, "Opening %s mode data connection for %s (%llu bytes).",
		  s->type_ascii ? "ASCII" : "BINARY", arg, (unsigned long long)st.size);
	if (ftp_data_open(s) < 0) {
		s->api->reader_close(rd);
		return 0;
	}
	int64_t t0 = sd_mono_ms();
	s->xfer = FTP_XFER_RUNNING;
	int ctrl_state = 0, abor = 0, err = ENOSYS;
	uint64_t sent = 0, pos = off;
	int fd;
	uint64_t base;
	if (!s->data.tls && !s->type_ascii && s->api->reader_fd(rd, &fd, &base) == 0)
		err = send_by_sendfile(s, fd, base, &pos, st.size, &sent, &ctrl_state, &abor);
	if (err == ENOSYS)
		err = send_by_pread(s, rd, &pos, st.size, &sent, &ctrl_state, &abor);
	s->api->reader_close(rd);
	if (!err)
		ftp_data_close(s);
	else
		ftp_data_reset(s);
	s->xfer = FTP_XFER_IDLE;
	if (!err) {
		xfer_log(s, "RETR", shown, sent, t0, "ok", 0, 0);
		return ftp_reply(s, 226, "Transfer complete.");
	}
	xfer_log(s, "RETR", shown, sent, t0, abor ? "aborted" : "failed", 0, err);
	if (err == SD_ECORRUPT && !abor && s->state != FTP_CLOSING)
		return ftp_reply_err(s, -err, "Transfer failed");
	ftp_reply_aborted(s, abor, err == ETIMEDOUT ? "data timeout" : NULL);
	return 0;
}

/* ------------------------------------------------------------ STOR */

/* STOU's name: "ftp-" and 12 random hex digits. 0 or -errno (no
 * randomness: refuse rather than guess). */
static int stou_name(char *name, size_t nl)
{
	char hex[13];
	int r = sd_random_hex(hex, 6);
	if (r < 0)
		return r;
	snprintf(name, nl, "ftp-%s", hex);
	return 0;
}

/* Receive the data connection into up until EOF or an interruption, CRLF
 * -> LF in ASCII mode. *got counts bytes received. Returns the engine's
 * write error (negative: the upload is dead) or 0; *interrupted is set
 * (positive errno) when the stream did not end with the client's EOF. */
static int receive(ftp_session *s, sd_upload *up, uint64_t *got, int *interrupted, int *abor)
{
	int ctrl_state = 0, werr = 0, pending_cr = 0;
	char *buf = sd_xmalloc(XFER_BUF);
	char *abuf = s->type_ascii ? sd_xmalloc(XFER_BUF + 1) : NULL;
	while (!werr) {
		int w = ftp_xfer_wait(s, POLLIN, &ctrl_state, abor, 1);
		if (w <= 0) {
			*interrupted = w == 0 ? ETIMEDOUT : s->srv->stopping ? ESHUTDOWN : ECANCELED;
			break;
		}
		ssize_t n = ftp_io_recv(&s->data, buf, sd_bw_chunk(s->srv->bw, s->bw, XFER_BUF));
		if (n == -EAGAIN)
			continue;
		if (n == 0 && s->srv->stopping) { /* our own shutdown(), not the client's EOF */
			*interrupted = ESHUTDOWN;
			break;
		}
		if (n == 0)
			break;
		if (n < 0) {
			*interrupted = (int)-n;
			break;
		}
		*got += (uint64_t)n;
		const char *in = buf;
		size_t len = (size_t)n;
		if (s->type_ascii) { /* CRLF -> LF */
			size_t o = 0;
			for (ssize_t i = 0; i < n; i++) {
				char ch = buf[i];
				if (pending_cr) {
					pending_cr = 0;
					if (ch != '\n')
						abuf[o++] = '\r';
				}
				if (ch == '\r')
					pending_cr = 1;
				else
					abuf[o++] = ch;
			}
			in = abuf;
			len = o;
		}
		if (len > 0)
			werr = s->api->upload_write(up, in, len);
		sd_bw_take(s->srv->bw, s->bw, (size_t)n);
	}
	if (!werr && pending_cr)
		werr = s->api->upload_write(up, "\r", 1);
	free(buf);
	free(abuf);
	return werr < 0 ? werr : 0;
}

/* After the data stream ended: commit what arrived (or abort on a write
 * error), log, and send the final replies. */
static int finish_upload(ftp_session *s, sd_upload *up, const char *cmd, const char *shown,
			 const char *uname, uint64_t got, int64_t t0, int werr, int interrupted,
			 int abor)
{
	if (werr) {
		s->api->upload_abort(up);
		xfer_log(s, cmd, shown, got, t0, "failed", 0, -werr);
		if (abor)
			ftp_reply(s, 426, "Transfer aborted.");
		return ftp_reply_err(s, werr, "Upload failed");
	}
	/* Commit whatever arrived, even after an interruption: the owner
	 * resumes with REST + STOR or APPE. */
	sd_stat st;
	int dedup = 0;
	int r = s->api->upload_commit(up, NULL, &st, &dedup);
	if (r == -SD_EAUTH) {
		/* the user was disabled (or the password or token went) during
		 * the transfer: the engine committed nothing; end the session */
		xfer_log(s, cmd, shown, got, t0, "failed", 0, SD_EAUTH);
		if (abor)
			ftp_reply(s, 426, "Transfer aborted.");
		ftp_auth_lost(s);
		return 0;
	}
	if (r < 0) {
		xfer_log(s, cmd, shown, got, t0, "failed", 0, -r);
		if (s->state == FTP_CLOSING && !abor)
			return 0;
		if (abor)
			ftp_reply(s, 426, "Transfer aborted.");
		return ftp_reply_err(s, r, "Could not store file");
	}
	if (interrupted) {
		xfer_log(s, cmd, shown, got, t0, abor ? "aborted-kept" : "partial-kept", dedup, interrupted);
		ftp_reply_aborted(s, abor, "partial file kept, resume with REST or APPE");
		return 0;
	}
	xfer_log(s, cmd, shown, got, t0, "ok", dedup, 0);
	if (uname)
		return ftp_reply(s, 226, "Transfer complete (unique file name: %s).", uname);
	return ftp_reply(s, 226, "Transfer complete.");
}

int ftp_cmd_stor(ftp_session *s, const char *arg, int kind)
{
	const char *cmd = kind == 'A' ? "APPE" : kind == 'U' ? "STOU" : "STOR";
	char shown[SD_PATH_MAX + 1], uname[32];
	char *upath = NULL;
	uint64_t off = 0;
	unsigned flags = 0;
	int r;
	if (kind == 'S' && s->have_rest)
		off = s->rest;
	s->have_rest = 0;
	s->rest = 0;
	if (kind == 'U') {
		if ((r = stou_name(uname, sizeof uname)) < 0) {
			s->api->log(s->core, SD_LOG_ERROR, FTP_SRC, "event=random_failed err=\"%s\"", strerror(-r));
			return ftp_reply(s, 451, "Could not make a unique file name.");
		}
		upath = sd_xstrdup(uname);
		flags |= SD_UP_EXCL;
	} else if ((r = ftp_name_in(s, arg, &upath)) < 0) {
		return ftp_reply_err(s, r, "Could not create file");
	}
	r = s->api->resolve(s->sess, upath, strlen(upath), shown, sizeof shown);
	if (r == 0 && kind == 'A') {
		sd_stat st;
		r = s->api->stat(s->sess, upath, &st);
		if (r == 0 && st.kind == SD_KIND_FILE)
			off = st.size;
		else if (r == 0)
			r = -EISDIR;
		else if (r == -ENOENT)
			r = 0;
	}
	sd_upload *up = NULL;
	if (r == 0 && ftp_data_precheck(s) < 0) {
		free(upath);
		return 0;
	}
	if (r == 0)
		r = s->api->upload_begin(s->sess, upath, flags, off, 0644, &up);
	free(upath);
	if (r < 0) {
		ftp_data_reset(s);
		if (r == -EINVAL && off > 0)
			return ftp_reply(s, 554, "Restart offset %llu is beyond the end of the file.",
					 (unsigned long long)off);
		return ftp_reply_err(s, r, kind == 'A' ? "Could not append" : "Could not create file");
	}
	if (kind == 'U')
		ftp_reply(s, 150, "FILE: %s", uname);
	else
		ftp_reply(s, 150, "Ok to send data.");
	if (ftp_data_open(s) < 0) {
		s->api->upload_abort(up);
		return 0;
	}
	int64_t t0 = sd_mono_ms();
	s->xfer = FTP_XFER_RUNNING;
	uint64_t got = 0;
	int interrupted = 0, abor = 0;
	int werr = receive(s, up, &got, &interrupted, &abor);
	if (!interrupted)
		ftp_data_close(s);
	else
		ftp_data_reset(s);
	s->xfer = FTP_XFER_IDLE;
	return finish_upload(s, up, cmd, shown, kind == 'U' ? uname : NULL, got, t0, werr, interrupted,
			     abor);
}
