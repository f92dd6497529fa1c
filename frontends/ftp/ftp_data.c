/*
 * ftp_data.c - data connections: PASV/EPSV/PORT/EPRT, opening and closing
 * the connection (with TLS under PROT P), and the wait loop every
 * transfer uses.
 *
 * Data-connection setup (enum ftp_data_mode), reset after every transfer:
 *
 *   NONE --PASV/EPSV (listen on a port of the range)--> PASV
 *   NONE --PORT/EPRT (address checked)-----------------> PORT
 *   PASV|PORT --transfer command: 150, accept/connect, TLS if PROT P--> open
 *   open --transfer ends / ABOR / error--> NONE (sockets closed)
 *
 * Transfer sub-state (enum ftp_xfer_state), driven by ftp_xfer.c and
 * ftp_list.c through ftp_xfer_wait:
 *
 *   IDLE --RETR/STOR/APPE/STOU/LIST/NLST/MLSD--> RUNNING
 *   RUNNING --EOF / all sent--> IDLE (226)
 *   RUNNING --ABOR on control / control lost / data error--> ABORTED
 *   ABORTED --426 (and 226 for the ABOR)--> IDLE
 *
 * While RUNNING, ftp_xfer_wait polls the data socket and the control
 * socket; control input is read only to find ABOR (other commands stay
 * queued, ftp_ctrl.c).
 *
 * Passive ports: the search through pasv_min_port..pasv_max_port starts at
 * a random port (sd_random_bytes), so the next data port cannot be guessed
 * from the last one; if the kernel cannot give randomness, PASV is refused
 * (425) rather than falling back to a guessable order.
 *
 * Security: a data connection must come from (PASV) or go to (PORT) the
 * control connection's peer address unless allow_foreign_data is set, and
 * PORT to ports below 1024 is refused, so the server cannot be used to
 * bounce connections (FXP/bounce attacks).
 */
#include "ftp.h"
#include "sys.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ------------------------------------------------------------ addresses */

/* The IPv4 address inside ss (plain or v4-mapped); 0 if none. */
static int v4_of(const struct sockaddr_storage *ss, struct in_addr *out)
{
	if (ss->ss_family == AF_INET) {
		*out = ((const struct sockaddr_in *)ss)->sin_addr;
		return 1;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)ss;
		if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
			memcpy(&out->s_addr, &a->sin6_addr.s6_addr[12], 4);
			return 1;
		}
	}
	return 0;
}

/* Same host (ports ignored, v4-mapped folded). */
static int same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	struct in_addr x, y;
	int ax = v4_of(a, &x), by = v4_of(b, &y);
	if (ax || by)
		return ax && by && x.s_addr == y.s_addr;
	if (a->ss_family != AF_INET6 || b->ss_family != AF_INET6)
		return 0;
	return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		      &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
}

static void set_port(struct sockaddr_storage *ss, int port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
}

static int get_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

static socklen_t ss_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

/* ------------------------------------------------------------ setup */

void ftp_data_reset(ftp_session *s)
{
	if (s->data.tls) {
		gnutls_deinit(s->data.tls);
		s->data.tls = NULL;
	}
	pthread_mutex_lock(&s->fdlock);
	if (s->data.fd >= 0)
		sd_sys_close(s->data.fd);
	if (s->pasv_fd >= 0)
		sd_sys_close(s->pasv_fd);
	s->data.fd = -1;
	s->pasv_fd = -1;
	pthread_mutex_unlock(&s->fdlock);
	s->dmode = FTP_DATA_NONE;
}

/* Bind a listening socket on the control connection's local address, on a
 * port of the configured range, searching from a random port (any free
 * port, chosen by the kernel, when the range is 0..0). fd, -EADDRINUSE
 * when every port is busy, or -errno (the kernel's randomness included). */
static int pasv_listen(ftp_session *s, struct sockaddr_storage *bound)
{
	const ftp_conf *c = s->srv->conf;
	struct sockaddr_storage a = s->local;
	int lo = (int)c->pasv_min_port, hi = (int)c->pasv_max_port;
	int any = lo == 0 && hi == 0;
	int span = any ? 1 : hi - lo + 1;
	uint32_t start = 0;
	if (!any) {
		int rr = sd_random_bytes(&start, sizeof start);
		if (rr < 0)
			return rr;
	}
	int err = EADDRINUSE;
	for (int i = 0; i < span; i++) {
		int port = any ? 0 : lo + (int)((start + (uint32_t)i) % (uint32_t)span);
		int fd = socket(a.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		int one = 1;
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		set_port(&a, port);
		if (bind(fd, (struct sockaddr *)&a, ss_len(&a)) == 0 && listen(fd, 1) == 0) {
			socklen_t bl = sizeof *bound;
			getsockname(fd, (struct sockaddr *)bound, &bl);
			return fd;
		}
		err = errno;
		sd_sys_close(fd);
		if (err != EADDRINUSE && err != EACCES)
			break;
	}
	return -err;
}

int ftp_cmd_pasv(ftp_session *s, const char *arg, int extended)
{
	if (extended && strcasecmp(arg, "ALL") == 0) {
		s->epsv_all = 1;
		return ftp_reply(s, 200, "EPSV ALL ok.");
	}
	if (!extended && s->epsv_all)
		return ftp_reply(s, 503, "PASV not allowed after EPSV ALL.");
	struct in_addr v4;
	int is4 = v4_of(&s->local, &v4);
	if (extended && *arg) {
		if (strcmp(arg, "1") != 0 && strcmp(arg, "2") != 0)
			return ftp_reply(s, 522, "Network protocol not supported, use (1,2)");
		if ((arg[0] == '1') != is4)
			return ftp_reply(s, 522, "Network protocol not supported, use (%s)", is4 ? "1" : "2");
	}
	if (!extended && !is4)
		return ftp_reply(s, 425, "PASV needs IPv4; use EPSV.");
	ftp_data_reset(s);
	struct sockaddr_storage bound;
	int fd = pasv_listen(s, &bound);
	if (fd < 0) {
		s->api->log(s->core, SD_LOG_WARN, FTP_SRC, "event=pasv_failed addr=%s err=\"%s\"", s->addr,
			    strerror(-fd));
		if (fd != -EADDRINUSE)
			return ftp_reply(s, 425, "Cannot open passive connection.");
		ftp_count(s, "storaged_ftp_pasv_exhausted_total", "frontend=\"ftp\"", 1);
		return ftp_reply(s, 425, "Cannot open passive connection (no free port).");
	}
	pthread_mutex_lock(&s->fdlock);
	s->pasv_fd = fd;
	pthread_mutex_unlock(&s->fdlock);
	s->dmode = FTP_DATA_PASV;
	int port = get_port(&bound);
	if (extended)
		return ftp_reply(s, 229, "Entering Extended Passive Mode (|||%d|)", port);
	char ip[INET_ADDRSTRLEN];
	if (s->srv->pasv_ip[0])
		snprintf(ip, sizeof ip, "%s", s->srv->pasv_ip);
	else
		inet_ntop(AF_INET, &v4, ip, sizeof ip);
	for (char *p = ip; *p; p++)
		if (*p == '.')
			*p = ',';
	return ftp_reply(s, 227, "Entering Passive Mode (%s,%d,%d).", ip, port >> 8, port & 255);
}

int ftp_cmd_port(ftp_session *s, const char *arg, int extended)
{
	if (!s->srv->conf->active_enabled)
		return ftp_reply(s, 502, "Active mode is disabled; use PASV or EPSV.");
	if (s->epsv_all)
		return ftp_reply(s, 503, "PORT not allowed after EPSV ALL.");
	struct sockaddr_storage a;
	memset(&a, 0, sizeof a);
	int port;
	if (!extended) {
		unsigned v[6];
		char tail;
		if (sscanf(arg, "%u,%u,%u,%u,%u,%u%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6)
			return ftp_reply(s, 501, "Illegal PORT command.");
		for (int i = 0; i < 6; i++)
			if (v[i] > 255)
				return ftp_reply(s, 501, "Illegal PORT command.");
		struct sockaddr_in *in = (struct sockaddr_in *)&a;
		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl((v[0] << 24) | (v[1] << 16) | (v[2] << 8) | v[3]);
		port = (int)(v[4] * 256 + v[5]);
	} else {
		/* |af|addr|port| with any delimiter in 33..126. */
		char d = arg[0];
		if (d < 33 || d > 126)
			return ftp_reply(s, 501, "Illegal EPRT command.");
		char buf[128];
		snprintf(buf, sizeof buf, "%s", arg + 1);
		char *f1 = buf, *f2 = strchr(f1, d), *f3 = f2 ? strchr(f2 + 1, d) : NULL;
		char *f4 = f3 ? strchr(f3 + 1, d) : NULL;
		if (!f2 || !f3 || !f4 || f4[1])
			return ftp_reply(s, 501, "Illegal EPRT command.");
		*f2++ = '\0';
		*f3++ = '\0';
		*f4 = '\0';
		char *end;
		long p = strtol(f3, &end, 10);
		if (*end || p < 1 || p > 65535)
			return ftp_reply(s, 501, "Illegal EPRT command.");
		port = (int)p;
		if (strcmp(f1, "1") == 0) {
			struct sockaddr_in *in = (struct sockaddr_in *)&a;
			in->sin_family = AF_INET;
			if (inet_pton(AF_INET, f2, &in->sin_addr) != 1)
				return ftp_reply(s, 501, "Illegal EPRT command.");
		} else if (strcmp(f1, "2") == 0) {
			struct sockaddr_in6 *in = (struct sockaddr_in6 *)&a;
			in->sin6_family = AF_INET6;
			if (inet_pton(AF_INET6, f2, &in->sin6_addr) != 1)
				return ftp_reply(s, 501, "Illegal EPRT command.");
		} else {
			return ftp_reply(s, 522, "Network protocol not supported, use (1,2)");
		}
	}
	if (!s->srv->conf->allow_foreign_data && !same_host(&a, &s->peer)) {
		s->api->log(s->core, SD_LOG_WARN, FTP_SRC, "event=port_refused addr=%s reason=foreign_address",
			    s->addr);
		return ftp_reply(s, 500, "Illegal PORT command: data address must be the client's.");
	}
	if (port < 1024)
		return ftp_reply(s, 500, "Illegal PORT command: privileged port.");
	ftp_data_reset(s);
	set_port(&a, port);
	s->port_addr = a;
	s->port_addrlen = ss_len(&a);
	s->dmode = FTP_DATA_PORT;
	return ftp_reply(s, 200, "%s command successful. Consider using PASV.", extended ? "EPRT" : "PORT");
}

int ftp_data_precheck(ftp_session *s)
{
	if (s->dmode == FTP_DATA_NONE) {
		ftp_reply(s, 425, "Use PORT or PASV first.");
		return -1;
	}
	if (s->srv->conf->require_tls_data && !s->prot_p) {
		ftp_data_reset(s);
		ftp_reply(s, 522, "Data connections must be encrypted (PROT P).");
		return -1;
	}
	return 0;
}

int ftp_data_open(ftp_session *s)
{
	const ftp_conf *c = s->srv->conf;
	int fd = -1;
	if (s->dmode == FTP_DATA_PASV) {
		int r = ftp_wait_fd(s->pasv_fd, POLLIN, (int)c->data_timeout);
		if (r <= 0 || s->srv->stopping) {
			ftp_data_reset(s);
			ftp_reply(s, 425, "Failed to establish connection (timeout).");
			return -1;
		}
		struct sockaddr_storage peer;
		socklen_t pl = sizeof peer;
		fd = accept4(s->pasv_fd, (struct sockaddr *)&peer, &pl, SOCK_CLOEXEC);
		pthread_mutex_lock(&s->fdlock);
		sd_sys_close(s->pasv_fd);
		s->pasv_fd = -1;
		pthread_mutex_unlock(&s->fdlock);
		if (fd < 0) {
			ftp_data_reset(s);
			ftp_reply(s, 425, "Failed to establish connection.");
			return -1;
		}
		if (!c->allow_foreign_data && !same_host(&peer, &s->peer)) {
			sd_sys_close(fd);
			ftp_data_reset(s);
			s->api->log(s->core, SD_LOG_WARN, FTP_SRC, "event=data_refused addr=%s reason=foreign_address",
				    s->addr);
			ftp_reply(s, 425, "Security: data connection from a foreign address.");
			return -1;
		}
	} else {
		struct sockaddr_storage from;
		struct in_addr v4;
		memset(&from, 0, sizeof from);
		if (s->port_addr.ss_family == AF_INET && v4_of(&s->local, &v4)) {
			struct sockaddr_in *in = (struct sockaddr_in *)&from;
			in->sin_family = AF_INET;
			in->sin_addr = v4;
		} else {
			from = s->local;
			set_port(&from, 0);
		}
		fd = socket(s->port_addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		int ok = fd >= 0;
		if (ok && from.ss_family == s->port_addr.ss_family)
			(void)bind(fd, (struct sockaddr *)&from, ss_len(&from));
		if (ok && connect(fd, (struct sockaddr *)&s->port_addr, s->port_addrlen) < 0) {
			ok = errno == EINPROGRESS && ftp_wait_fd(fd, POLLOUT, (int)c->data_timeout) == 1;
			int e = 0;
			socklen_t el = sizeof e;
			if (ok && (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0 || e != 0))
				ok = 0;
		}
		if (!ok) {
			if (fd >= 0)
				sd_sys_close(fd);
			ftp_data_reset(s);
			ftp_reply(s, 425, "Failed to establish connection.");
			return -1;
		}
		ftp_sock_nonblock(fd, 0);
	}
	ftp_sock_timeouts(fd, c->data_timeout);
	pthread_mutex_lock(&s->fdlock);
	s->data.fd = fd;
	s->data.tls = NULL;
	s->data.tls_err = 0;
	pthread_mutex_unlock(&s->fdlock);
	s->dmode = FTP_DATA_NONE;
	if (s->prot_p) {
		char err[256];
		if (ftp_tls_accept(s->srv->tls, fd, 1, c->data_timeout, &s->data.tls, err, sizeof err) < 0) {
			s->data.tls = NULL;
			ftp_data_reset(s);
			s->api->log(s->core, SD_LOG_INFO, FTP_SRC, "event=data_tls_failed addr=%s reason=\"%s\"",
				    s->addr, err);
			ftp_reply(s, 522, "TLS negotiation on the data connection failed.");
			return -1;
		}
		if (c->tls_require_reuse && !gnutls_session_is_resumed(s->data.tls)) {
			ftp_data_reset(s);
			ftp_reply(s, 522, "TLS session of the data connection must resume the control session.");
			return -1;
		}
	}
	/* Non-blocking from here: the transfer loops wait in ftp_xfer_wait(),
	 * which also watches the control connection for ABOR. */
	ftp_sock_nonblock(fd, 1);
	return 0;
}

void ftp_data_close(ftp_session *s)
{
	ftp_io_tls_end(&s->data); /* switches the fd back to blocking first */
	ftp_data_reset(s);
}

int ftp_xfer_wait(ftp_session *s, short events, int *ctrl_state, int *abor_seen, int upload)
{
	if ((events & POLLIN) && ftp_io_pending(&s->data))
		return 1;
	for (;;) {
		if (s->srv->stopping) {
			s->xfer = FTP_XFER_ABORTED;
			return -1;
		}
		struct pollfd p[2];
		int n = 1;
		p[0] = (struct pollfd){.fd = s->data.fd, .events = events};
		if (*ctrl_state == 0) {
			if (ftp_io_pending(&s->ctrl) || ftp_ctrl_has_line(s)) {
				p[1] = (struct pollfd){.fd = -1};
				goto ctrl_ready;
			}
			p[n++] = (struct pollfd){.fd = s->ctrl.fd, .events = POLLIN};
		}
		int r = poll(p, (nfds_t)n, (int)s->srv->conf->data_timeout);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return 0;
		if (n > 1 && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
		ctrl_ready:;
			int a = ftp_ctrl_poll_abort(s);
			if (a == 1) {
				*abor_seen = 1;
				s->xfer = FTP_XFER_ABORTED;
				return -1;
			}
			if (a < 0) {
				*ctrl_state = 1;
				if (!upload) { /* nobody left to read the data */
					s->xfer = FTP_XFER_ABORTED;
					s->state = FTP_CLOSING;
					return -1;
				}
				s->state = FTP_CLOSING;
			} else if (a == 2) {
				*ctrl_state = 1;
			}
			if (!(p[0].revents & (events | POLLHUP | POLLERR)))
				continue;
		}
		return 1;
	}
}

int ftp_data_send(ftp_session *s, const char *buf, size_t len, int *ctrl_state, int *abor)
{
	while (len > 0) {
		ssize_t n = ftp_io_send1(&s->data, buf, len);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n != -EAGAIN)
			return n < 0 ? (int)n : -EIO;
		int w = ftp_xfer_wait(s, POLLOUT, ctrl_state, abor, 0);
		if (w <= 0)
			return w == 0 ? -ETIMEDOUT : -ECANCELED;
	}
	return 0;
}

void ftp_reply_aborted(ftp_session *s, int abor_seen, const char *why)
{
	if (s->state == FTP_CLOSING && !abor_seen)
		return; /* control gone */
	ftp_reply(s, 426, "Connection closed; transfer aborted%s%s.", why ? ": " : "", why ? why : "");
	if (abor_seen)
		ftp_reply(s, 226, "ABOR successful.");
}
