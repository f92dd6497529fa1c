/*
 * ftp_io.c - socket and TLS reads and writes for control and data
 * connections.
 *
 * Every read and write on a control or data socket goes through
 * ftp_io_recv/ftp_io_send, which hide whether the socket is TLS-wrapped and
 * retry on EINTR and partial writes. The control socket is blocking with
 * SO_RCVTIMEO/SO_SNDTIMEO (data_timeout) after a poll() bounded by
 * idle_timeout; data sockets are non-blocking once open, and the transfer
 * loops (ftp_data.c) poll them together with the control socket (for ABOR)
 * under data_timeout. Either way no client can hold a thread forever.
 *
 * These are socket calls with EAGAIN semantics, which util/sys.h (file
 * descriptors, all-or-error loops) does not cover.
 */
#include "ftp.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/time.h>
#include <time.h>

/* ------------------------------------------------------------ sockets */

void ftp_sock_timeouts(int fd, int64_t ms)
{
	struct timeval tv;
	if (ms <= 0)
		ms = 0;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

void ftp_sock_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return;
	int want = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
	if (want != fl)
		(void)fcntl(fd, F_SETFL, want);
}

int ftp_wait_fd(int fd, short events, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = events};
	for (;;) {
		int r = poll(&p, 1, timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		return r > 0 ? 1 : 0;
	}
}

ssize_t ftp_io_recv(ftp_io *io, void *buf, size_t n)
{
	for (;;) {
		if (io->tls) {
			ssize_t r = gnutls_record_recv(io->tls, buf, n);
			if (r >= 0)
				return r;
			if (r == GNUTLS_E_INTERRUPTED)
				continue;
			if (r == GNUTLS_E_AGAIN)
				return -EAGAIN;
			/* A peer closing TCP without close_notify: treat as
			 * EOF like vsftpd's default (strict_ssl_read_eof=NO). */
			if (r == GNUTLS_E_PREMATURE_TERMINATION)
				return 0;
			if (r == GNUTLS_E_REHANDSHAKE)
				continue;
			io->tls_err = (int)r;
			return -EPROTO;
		}
		ssize_t r = recv(io->fd, buf, n, 0);
		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return -EAGAIN;
		return -errno;
	}
}

ssize_t ftp_io_send1(ftp_io *io, const void *buf, size_t n)
{
	for (;;) {
		if (io->tls) {
			ssize_t r = gnutls_record_send(io->tls, buf, n);
			if (r >= 0)
				return r;
			if (r == GNUTLS_E_INTERRUPTED)
				continue;
			if (r == GNUTLS_E_AGAIN)
				return -EAGAIN;
			io->tls_err = (int)r;
			return -EPROTO;
		}
		ssize_t r = send(io->fd, buf, n, MSG_NOSIGNAL);
		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return -EAGAIN;
		return -errno;
	}
}

int ftp_io_send(ftp_io *io, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t r = ftp_io_send1(io, p, n);
		if (r == -EAGAIN)
			return -ETIMEDOUT; /* blocking socket: SO_SNDTIMEO fired */
		if (r < 0)
			return (int)r;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int ftp_io_pending(ftp_io *io)
{
	return io->tls && gnutls_record_check_pending(io->tls) > 0;
}

void ftp_io_tls_end(ftp_io *io)
{
	if (!io->tls)
		return;
	ftp_sock_nonblock(io->fd, 0);
	int r;
	do
		r = gnutls_bye(io->tls, GNUTLS_SHUT_WR);
	while (r == GNUTLS_E_INTERRUPTED);
	gnutls_deinit(io->tls);
	io->tls = NULL;
}
