/*
 * ftp_data.c - data connections, transfers and listings.
 *
 * Data-connection setup (enum ftp_data_mode), reset after every transfer:
 *
 *   NONE --PASV/EPSV (listen on a port of the range)--> PASV
 *   NONE --PORT/EPRT (address checked)-----------------> PORT
 *   PASV|PORT --transfer command: 150, accept/connect, TLS if PROT P--> open
 *   open --transfer ends / ABOR / error--> NONE (sockets closed)
 *
 * Transfer sub-state (enum ftp_xfer_state):
 *
 *   IDLE --RETR/STOR/APPE/STOU/LIST/NLST/MLSD--> RUNNING
 *   RUNNING --EOF / all sent--> IDLE (226)
 *   RUNNING --ABOR on control / control lost / data error--> ABORTED
 *   ABORTED --426 (and 226 for the ABOR)--> IDLE
 *
 * While RUNNING, the loop polls the data socket and the control socket;
 * control input is read only to find ABOR (other commands stay queued).
 *
 * Upload semantics: STOR streams into api->upload_begin/upload_write; REST n
 * + STOR and APPE pass the kept prefix length as the offset. Whatever ends
 * the data stream (EOF, reset, timeout, ABOR), the bytes received are
 * committed (like vsftpd, which keeps partial files), so the owner can
 * resume with REST/APPE; until commit nobody sees anything new. Only an
 * engine write error (quota, disk full, I/O) aborts the upload: the previous
 * version stays.
 *
 * Security: a data connection must come from (PASV) or go to (PORT) the
 * control connection's peer address unless allow_foreign_data is set, and
 * PORT to ports below 1024 is refused, so the server cannot be used to
 * bounce connections (FXP/bounce attacks).
 */
#include "ftp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/sendfile.h>
#include <time.h>
#include <unistd.h>

#define SRC "ftp"
#define XFER_BUF (256 * 1024)

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
		close(s->data.fd);
	if (s->pasv_fd >= 0)
		close(s->pasv_fd);
	s->data.fd = -1;
	s->pasv_fd = -1;
	pthread_mutex_unlock(&s->fdlock);
	s->dmode = FTP_DATA_NONE;
}

/* Bind a listening socket on the control connection's local address, on a
 * port of the configured range. fd or -errno. */
static int pasv_listen(ftp_session *s, struct sockaddr_storage *bound)
{
	const ftp_conf *c = s->srv->conf;
	struct sockaddr_storage a = s->local;
	int lo = (int)c->pasv_min_port, hi = (int)c->pasv_max_port;
	int span = (lo == 0 && hi == 0) ? 1 : hi - lo + 1;
	pthread_mutex_lock(&s->srv->lock);
	unsigned start = s->srv->pasv_next++;
	pthread_mutex_unlock(&s->srv->lock);
	int err = EADDRINUSE;
	for (int i = 0; i < span; i++) {
		int port = (lo == 0 && hi == 0) ? 0 : lo + (int)((start + (unsigned)i) % (unsigned)span);
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
		close(fd);
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
		s->api->log(s->core, SD_LOG_WARN, SRC, "event=pasv_failed addr=%s err=\"%s\"", s->addr,
			    strerror(-fd));
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
		s->api->log(s->core, SD_LOG_WARN, SRC, "event=port_refused addr=%s reason=foreign_address",
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

/* Checks before a transfer's 150: a data mode is set, TLS policy holds.
 * Replies and returns -1 when the transfer cannot start. */
static int data_precheck(ftp_session *s)
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

/* Open the data connection set up by PASV/PORT (after the 150 reply),
 * with TLS when PROT P. Replies 425/522 and returns -1 on failure. */
static int data_open(ftp_session *s)
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
		close(s->pasv_fd);
		s->pasv_fd = -1;
		pthread_mutex_unlock(&s->fdlock);
		if (fd < 0) {
			ftp_data_reset(s);
			ftp_reply(s, 425, "Failed to establish connection.");
			return -1;
		}
		if (!c->allow_foreign_data && !same_host(&peer, &s->peer)) {
			close(fd);
			ftp_data_reset(s);
			s->api->log(s->core, SD_LOG_WARN, SRC, "event=data_refused addr=%s reason=foreign_address",
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
				close(fd);
			ftp_data_reset(s);
			ftp_reply(s, 425, "Failed to establish connection.");
			return -1;
		}
		int fl = fcntl(fd, F_GETFL);
		(void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
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
			s->api->log(s->core, SD_LOG_INFO, SRC, "event=data_tls_failed addr=%s reason=\"%s\"",
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
	/* Non-blocking from here: the transfer loops wait in xfer_wait(),
	 * which also watches the control connection for ABOR. */
	int fl = fcntl(fd, F_GETFL);
	(void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	return 0;
}

/* End the data connection: close_notify when TLS, then close. */
static void data_close(ftp_session *s)
{
	ftp_io_tls_end(&s->data); /* switches the fd back to blocking first */
	ftp_data_reset(s);
}

/* Wait for the data socket (events) while watching the control socket for
 * ABOR. 1 ready, 0 timeout, -1 aborted (ABOR or control lost, s->xfer set).
 * *ctrl_state: 0 watch control, 1 stop watching (queued input or EOF). */
static int xfer_wait(ftp_session *s, short events, int *ctrl_state, int *abor_seen, int upload)
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

/* Send all of buf on the (non-blocking) data connection, waiting with
 * xfer_wait. 0, or -ETIMEDOUT / -ECANCELED (ABOR, control lost) / -errno. */
static int data_send(ftp_session *s, const char *buf, size_t len, int *ctrl_state, int *abor)
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
		int w = xfer_wait(s, POLLOUT, ctrl_state, abor, 0);
		if (w <= 0)
			return w == 0 ? -ETIMEDOUT : -ECANCELED;
	}
	return 0;
}

/* Words for why a transfer stopped (err: positive errno, or 0). */
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

/* Quote a path for a log line (key="value"). */
static void log_quote(const char *in, char *out, size_t outlen)
{
	size_t o = 0;
	for (; *in && o + 3 < outlen; in++) {
		unsigned char c = (unsigned char)*in;
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			out[o++] = '?';
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
}

static void xfer_log(ftp_session *s, const char *cmd, const char *path, uint64_t bytes, double secs,
		     const char *result, int dedup, int err)
{
	char qp[SD_PATH_MAX * 2];
	log_quote(path, qp, sizeof qp);
	s->api->log(s->core, SD_LOG_INFO, SRC,
		    "event=transfer user=%s addr=%s cmd=%s path=\"%s\" bytes=%llu seconds=%.3f result=%s dedup=%d%s%s%s",
		    s->user.name, s->addr, cmd, qp, (unsigned long long)bytes, secs, result, dedup,
		    err ? " reason=\"" : "", err ? why_text(s, err) : "", err ? "\"" : "");
	char labels[128];
	int up = cmd[0] == 'S' || cmd[0] == 'A';
	snprintf(labels, sizeof labels, "frontend=\"ftp\",direction=\"%s\"", up ? "in" : "out");
	ftp_count(s, "storaged_bytes_total", labels, (int64_t)bytes);
	snprintf(labels, sizeof labels, "frontend=\"ftp\",command=\"%s\",result=\"%s\"", cmd, result);
	ftp_count(s, "storaged_transfers_total", labels, 1);
	if (dedup)
		ftp_count(s, "storaged_dedup_hits_total", "frontend=\"ftp\"", 1);
}

/* Final replies after a transfer ended early. */
static void reply_aborted(ftp_session *s, int abor_seen, const char *why)
{
	if (s->state == FTP_CLOSING && !abor_seen)
		return; /* control gone */
	ftp_reply(s, 426, "Connection closed; transfer aborted%s%s.", why ? ": " : "", why ? why : "");
	if (abor_seen)
		ftp_reply(s, 226, "ABOR successful.");
}

static size_t chunk_size(ftp_session *s, size_t max)
{
	int64_t bw = s->srv->conf->bandwidth_limit;
	if (bw > 0 && s->bw) {
		int64_t c = bw / 10;
		if (c < 4096)
			c = 4096;
		if ((uint64_t)c < max)
			return (size_t)c;
	}
	return max;
}

/* ------------------------------------------------------------ RETR */

int ftp_cmd_retr(ftp_session *s, const char *arg)
{
	char path[SD_PATH_MAX];
	sd_stat st;
	int fd = -1;
	uint64_t off = s->have_rest ? s->rest : 0;
	s->have_rest = 0;
	s->rest = 0;
	int r = ftp_resolve(s, arg, path, sizeof path);
	if (r == 0)
		r = s->api->open_read(s->core, &s->user, path, &fd, &st);
	if (r < 0)
		return ftp_reply_err(s, r, "Failed to open file");
	if (off > st.size) {
		close(fd);
		return ftp_reply(s, 554, "Restart offset %llu is beyond the end of the file (%llu bytes).",
				 (unsigned long long)off, (unsigned long long)st.size);
	}
	if (data_precheck(s) < 0) {
		close(fd);
		return 0;
	}
	ftp_reply(s, 150, "Opening %s mode data connection for %s (%llu bytes).",
		  s->type_ascii ? "ASCII" : "BINARY", arg, (unsigned long long)st.size);
	if (data_open(s) < 0) {
		close(fd);
		return 0;
	}
	double t0 = ftp_mono();
	s->xfer = FTP_XFER_RUNNING;
	int ctrl_state = 0, abor = 0, err = 0;
	uint64_t sent = 0, pos = off;
	char *buf = NULL;
	if (!s->data.tls && !s->type_ascii) {
		while (pos < st.size) {
			int w = xfer_wait(s, POLLOUT, &ctrl_state, &abor, 0);
			if (w <= 0) {
				err = w == 0 ? ETIMEDOUT : s->srv->stopping ? ESHUTDOWN : ECANCELED;
				break;
			}
			size_t want = chunk_size(s, 8 << 20);
			if (st.size - pos < want)
				want = (size_t)(st.size - pos);
			off_t o = (off_t)pos;
			ssize_t n = sendfile(s->data.fd, fd, &o, want);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				continue; /* socket full: xfer_wait again */
			if (n <= 0) {
				err = n < 0 ? errno : EIO;
				break;
			}
			pos += (uint64_t)n;
			sent += (uint64_t)n;
			ftp_bw_take(s->srv, s->bw, (size_t)n);
		}
	} else {
		buf = malloc(XFER_BUF);
		char *obuf = s->type_ascii ? malloc(XFER_BUF * 2) : NULL;
		if (!buf || (s->type_ascii && !obuf))
			err = ENOMEM;
		while (!err && pos < st.size) {
			size_t want = chunk_size(s, XFER_BUF);
			ssize_t n = pread(fd, buf, want, (off_t)pos);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				err = EIO;
				break;
			}
			const char *out = buf;
			size_t olen = (size_t)n;
			if (s->type_ascii) {
				olen = 0;
				for (ssize_t i = 0; i < n; i++) {
					if (buf[i] == '\n' && !(i > 0 ? buf[i - 1] == '\r' : 0))
						obuf[olen++] = '\r';
					obuf[olen++] = buf[i];
				}
				out = obuf;
			}
			int sr = data_send(s, out, olen, &ctrl_state, &abor);
			if (sr < 0) {
				err = -sr;
				break;
			}
			pos += (uint64_t)n;
			sent += olen;
			ftp_bw_take(s->srv, s->bw, olen);
		}
		free(obuf);
	}
	free(buf);
	close(fd);
	if (!err)
		data_close(s);
	else
		ftp_data_reset(s);
	double secs = ftp_mono() - t0;
	s->xfer = FTP_XFER_IDLE;
	if (!err) {
		xfer_log(s, "RETR", path, sent, secs, "ok", 0, 0);
		return ftp_reply(s, 226, "Transfer complete.");
	}
	xfer_log(s, "RETR", path, sent, secs, abor ? "aborted" : "failed", 0, err);
	reply_aborted(s, abor, err == ETIMEDOUT ? "data timeout" : NULL);
	return 0;
}

/* ------------------------------------------------------------ STOR */

static int stou_name(ftp_session *s, char *path, size_t n, char *name, size_t nl)
{
	unsigned char rnd[6];
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, rnd, sizeof rnd) != (ssize_t)sizeof rnd) {
		if (fd >= 0)
			close(fd);
		return -EIO;
	}
	close(fd);
	snprintf(name, nl, "ftp-%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
	return ftp_resolve(s, name, path, n);
}

int ftp_cmd_stor(ftp_session *s, const char *arg, int kind)
{
	const char *cmd = kind == 'A' ? "APPE" : kind == 'U' ? "STOU" : "STOR";
	char path[SD_PATH_MAX], uname[32];
	uint64_t off = 0;
	unsigned flags = 0;
	int r;
	if (kind == 'S' && s->have_rest)
		off = s->rest;
	s->have_rest = 0;
	s->rest = 0;
	if (kind == 'U') {
		r = stou_name(s, path, sizeof path, uname, sizeof uname);
		flags |= SD_UP_EXCL;
		arg = uname;
	} else {
		if (!*arg)
			return ftp_reply(s, 501, "%s needs a file name.", cmd);
		r = ftp_resolve(s, arg, path, sizeof path);
	}
	if (r < 0)
		return ftp_reply_err(s, r, "Could not create file");
	if (kind == 'A') {
		sd_stat st;
		r = s->api->stat(s->core, &s->user, path, &st);
		if (r == 0 && st.kind == SD_KIND_FILE)
			off = st.size;
		else if (r == 0)
			return ftp_reply_err(s, -EISDIR, "Could not append");
		else if (r != -ENOENT)
			return ftp_reply_err(s, r, "Could not append");
	}
	if (data_precheck(s) < 0)
		return 0;
	sd_upload *up = NULL;
	r = s->api->upload_begin(s->core, &s->user, path, flags, off, 0644, &up);
	if (r < 0) {
		ftp_data_reset(s);
		if (r == -EINVAL && off > 0)
			return ftp_reply(s, 554, "Restart offset %llu is beyond the end of the file.",
					 (unsigned long long)off);
		return ftp_reply_err(s, r, "Could not create file");
	}
	if (kind == 'U')
		ftp_reply(s, 150, "FILE: %s", uname);
	else
		ftp_reply(s, 150, "Ok to send data.");
	if (data_open(s) < 0) {
		s->api->upload_abort(up);
		return 0;
	}
	double t0 = ftp_mono();
	s->xfer = FTP_XFER_RUNNING;
	int ctrl_state = 0, abor = 0, werr = 0, interrupted = 0, pending_cr = 0;
	uint64_t got = 0;
	char *buf = malloc(XFER_BUF);
	char *abuf = s->type_ascii ? malloc(XFER_BUF + 1) : NULL;
	if (!buf || (s->type_ascii && !abuf))
		werr = -ENOMEM;
	while (!werr) {
		int w = xfer_wait(s, POLLIN, &ctrl_state, &abor, 1);
		if (w <= 0) {
			interrupted = w == 0 ? ETIMEDOUT : s->srv->stopping ? ESHUTDOWN : ECANCELED;
			break;
		}
		ssize_t n = ftp_io_recv(&s->data, buf, chunk_size(s, XFER_BUF));
		if (n == -EAGAIN)
			continue;
		if (n == 0 && s->srv->stopping) { /* our own shutdown(), not the client's EOF */
			interrupted = ESHUTDOWN;
			break;
		}
		if (n == 0)
			break;
		if (n < 0) {
			interrupted = (int)-n;
			break;
		}
		got += (uint64_t)n;
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
		if (len > 0) {
			int wr = s->api->upload_write(up, in, len);
			if (wr < 0)
				werr = wr;
		}
		ftp_bw_take(s->srv, s->bw, (size_t)n);
	}
	if (!werr && pending_cr)
		werr = s->api->upload_write(up, "\r", 1);
	free(buf);
	free(abuf);
	if (!interrupted)
		data_close(s);
	else
		ftp_data_reset(s);
	s->xfer = FTP_XFER_IDLE;
	double secs;
	if (werr) {
		s->api->upload_abort(up);
		secs = ftp_mono() - t0;
		xfer_log(s, cmd, path, got, secs, "failed", 0, -werr);
		if (abor)
			ftp_reply(s, 426, "Transfer aborted.");
		ftp_reply_err(s, werr, "Upload failed");
		return 0;
	}
	/* Commit whatever arrived, even after an interruption: the owner
	 * resumes with REST + STOR or APPE. */
	sd_stat st;
	int dedup = 0;
	r = s->api->upload_commit(up, NULL, &st, &dedup);
	secs = ftp_mono() - t0;
	if (r < 0) {
		xfer_log(s, cmd, path, got, secs, "failed", 0, -r);
		if (s->state == FTP_CLOSING && !abor)
			return 0;
		if (abor)
			ftp_reply(s, 426, "Transfer aborted.");
		return ftp_reply_err(s, r, "Could not store file");
	}
	if (interrupted) {
		xfer_log(s, cmd, path, got, secs, abor ? "aborted-kept" : "partial-kept", dedup, interrupted);
		reply_aborted(s, abor, "partial file kept, resume with REST or APPE");
		return 0;
	}
	xfer_log(s, cmd, path, got, secs, "ok", dedup, 0);
	if (kind == 'U')
		return ftp_reply(s, 226, "Transfer complete (unique file name: %s).", uname);
	return ftp_reply(s, 226, "Transfer complete.");
}

/* ------------------------------------------------------------ listings */

static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
				     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void ftp_ls_line(ftp_session *s, const char *name, const sd_stat *st, int64_t now, ftp_buf *b)
{
	char perm[11];
	uint32_t m = st->mode ? st->mode : (st->kind == SD_KIND_DIR ? 0755 : 0644);
	perm[0] = st->kind == SD_KIND_DIR ? 'd' : '-';
	static const char rwx[] = "rwx";
	for (int i = 0; i < 9; i++)
		perm[1 + i] = (m & (1u << (8 - i))) ? rwx[i % 3] : '-';
	perm[10] = '\0';
	struct tm tm;
	time_t t = (time_t)st->mtime;
	gmtime_r(&t, &tm);
	char when[32];
	int64_t age = now - st->mtime;
	if (age < 0)
		age = -age;
	if (age < 180LL * 86400)
		snprintf(when, sizeof when, "%s %2d %02d:%02d", months[tm.tm_mon % 12], tm.tm_mday,
			 tm.tm_hour, tm.tm_min);
	else
		snprintf(when, sizeof when, "%s %2d  %4d", months[tm.tm_mon % 12], tm.tm_mday,
			 tm.tm_year + 1900);
	char *tofree;
	const char *on = ftp_out_name(s, name, &tofree);
	const char *owner = s->user.name[0] ? s->user.name : "ftp";
	ftp_buf_printf(b, "%s    1 %-8s %-8s %12llu %s %s\r\n", perm, owner, owner,
		       (unsigned long long)(st->kind == SD_KIND_DIR ? 4096 : st->size), when, on);
	free(tofree);
}

void ftp_mlsx_facts(ftp_session *s, const sd_stat *st, ftp_buf *b)
{
	char tb[32];
	struct tm tm;
	time_t t = (time_t)st->mtime;
	gmtime_r(&t, &tm);
	strftime(tb, sizeof tb, "%Y%m%d%H%M%S", &tm);
	int ro = (s->user.flags & SD_USER_READONLY) != 0;
	if (st->kind == SD_KIND_DIR)
		ftp_buf_printf(b, "type=dir;modify=%s;perm=%s;unique=%llx;", tb, ro ? "el" : "flcdmpe",
			       (unsigned long long)st->id);
	else
		ftp_buf_printf(b, "type=file;size=%llu;modify=%s;perm=%s;unique=%llx;",
			       (unsigned long long)st->size, tb, ro ? "r" : "adfrw", (unsigned long long)st->id);
}

struct list_ctx {
	ftp_session *s;
	int kind;
	const char *pattern; /* wildcard on names ("*.txt"), or NULL */
	const char *prefix;  /* NLST: client's own directory part ("dir/"), or NULL */
	int64_t now;
	ftp_buf out;
	char last[SD_NAME_MAX + 1];
};

static int list_cb(void *arg, const sd_dirent *e)
{
	struct list_ctx *lc = arg;
	ftp_session *s = lc->s;
	snprintf(lc->last, sizeof lc->last, "%s", e->name);
	if (lc->pattern && fnmatch(lc->pattern, e->name, FNM_PERIOD) != 0)
		return 0;
	if (lc->kind == 'L' || lc->kind == 'T') {
		ftp_ls_line(s, e->name, &e->st, lc->now, &lc->out);
	} else if (lc->kind == 'M') {
		char *tofree;
		const char *on = ftp_out_name(s, e->name, &tofree);
		ftp_mlsx_facts(s, &e->st, &lc->out);
		ftp_buf_printf(&lc->out, " %s\r\n", on);
		free(tofree);
	} else {
		char *tofree;
		const char *on = ftp_out_name(s, e->name, &tofree);
		ftp_buf_printf(&lc->out, "%s%s\r\n", lc->prefix ? lc->prefix : "", on);
		free(tofree);
	}
	return 0;
}

/* Strip ls-style options ("-la", "-R") some clients put before the path. */
static const char *skip_ls_opts(const char *arg)
{
	while (arg[0] == '-' && arg[1] && arg[1] != ' ') {
		const char *sp = strchr(arg, ' ');
		if (!sp)
			return "";
		arg = sp + 1;
		while (*arg == ' ')
			arg++;
	}
	return arg;
}

static int stat_path(ftp_session *s, const char *path, sd_stat *st)
{
	int r = s->api->stat(s->core, &s->user, path, st);
	if (r < 0 && strcmp(path, "/") == 0) {
		memset(st, 0, sizeof *st);
		st->kind = SD_KIND_DIR;
		st->mode = 0755;
		return 0;
	}
	return r;
}

/* Produce the listing of path (dir or single file) page by page, calling
 * emit for each page. 0 or engine error. */
static int list_run(ftp_session *s, const char *path, const sd_stat *st, int kind,
		    const char *pattern, const char *prefix,
		    int (*emit)(ftp_session *, ftp_buf *, void *), void *earg, size_t cap_entries)
{
	struct list_ctx lc = {.s = s, .kind = kind, .now = s->api->now(s->core), .pattern = pattern,
			      .prefix = prefix};
	if (st->kind != SD_KIND_DIR) {
		sd_dirent e = {.name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path, .st = *st};
		if (kind == 'N') /* NLST of a file: the argument as the client sent it */
			ftp_buf_printf(&lc.out, "%s\r\n", prefix);
		else
			list_cb(&lc, &e);
		int r = emit(s, &lc.out, earg);
		ftp_buf_free(&lc.out);
		return r;
	}
	size_t total = 0;
	int more = 1, first = 1;
	while (more) {
		more = 0;
		int n = s->api->readdir(s->core, &s->user, path, first ? NULL : lc.last, 1000, list_cb, &lc,
					&more);
		first = 0;
		if (n < 0) {
			ftp_buf_free(&lc.out);
			return n;
		}
		int r = emit(s, &lc.out, earg);
		lc.out.len = 0;
		if (lc.out.data)
			lc.out.data[0] = '\0';
		if (r < 0) {
			ftp_buf_free(&lc.out);
			return r;
		}
		total += (size_t)n;
		if (n == 0 || (cap_entries && total >= cap_entries))
			break;
	}
	ftp_buf_free(&lc.out);
	return 0;
}

static int emit_data(ftp_session *s, ftp_buf *b, void *arg)
{
	int *ctrl_state = arg;
	int abor = 0;
	if (b->len == 0)
		return 0;
	int r = data_send(s, b->data, b->len, ctrl_state, &abor);
	if (r == 0)
		ftp_bw_take(s->srv, s->bw, b->len);
	return r;
}

int ftp_cmd_list(ftp_session *s, const char *arg, int kind)
{
	char path[SD_PATH_MAX];
	sd_stat st;
	s->have_rest = 0;
	if (kind != 'M')
		arg = skip_ls_opts(arg);
	int r = ftp_resolve(s, *arg ? arg : ".", path, sizeof path);
	if (r == 0)
		r = stat_path(s, path, &st);
	/* "NLST *.txt" (mget in classic clients): no such name, but the last
	 * component is a wildcard: list its directory through fnmatch. */
	char pattern[SD_NAME_MAX + 1];
	const char *pat = NULL;
	char *slash = strrchr(path, '/');
	if (r == -ENOENT && kind != 'M' && slash && strpbrk(slash + 1, "*?[")) {
		snprintf(pattern, sizeof pattern, "%s", slash + 1);
		pat = pattern;
		if (slash == path)
			slash[1] = '\0';
		else
			*slash = '\0';
		r = stat_path(s, path, &st);
		if (r == 0 && st.kind != SD_KIND_DIR)
			r = -ENOENT;
	}
	if (r < 0) {
		/* NLST/LIST of something missing: an empty listing is what
		 * most servers send, but a clear 550 helps scripts more. */
		ftp_data_reset(s);
		return ftp_reply_err(s, r, "Could not list");
	}
	if (kind == 'M' && st.kind != SD_KIND_DIR) {
		ftp_data_reset(s);
		return ftp_reply(s, 501, "MLSD needs a directory; use MLST for a file.");
	}
	if (data_precheck(s) < 0)
		return 0;
	ftp_reply(s, 150, "Here comes the directory listing.");
	if (data_open(s) < 0)
		return 0;
	s->xfer = FTP_XFER_RUNNING;
	int ctrl_state = 0;
	/* NLST names: a wildcard's matches carry the client's directory part
	 * (NLST dir/X.txt with X a star gives "dir/a.txt") so mget can fetch them. */
	char prefix[SD_PATH_MAX];
	const char *pfx = NULL;
	if (kind == 'N' && st.kind != SD_KIND_DIR) {
		pfx = arg;
	} else if (kind == 'N' && pat) {
		const char *cs = strrchr(arg, '/');
		if (cs && (size_t)(cs - arg + 1) < sizeof prefix) {
			memcpy(prefix, arg, (size_t)(cs - arg + 1));
			prefix[cs - arg + 1] = '\0';
			pfx = prefix;
		}
	}
	r = list_run(s, path, &st, kind, pat, pfx, emit_data, &ctrl_state, 0);
	s->xfer = FTP_XFER_IDLE;
	if (r < 0) {
		ftp_data_reset(s);
		if (r == -ECANCELED) {
			reply_aborted(s, 1, NULL);
			return 0;
		}
		if (r == -ETIMEDOUT || r == -EPIPE || r == -ECONNRESET || r == -EPROTO)
			return ftp_reply(s, 426, "Connection closed; listing aborted.");
		return ftp_reply_err(s, r, "Listing failed");
	}
	data_close(s);
	return ftp_reply(s, 226, "Directory send OK.");
}

int ftp_cmd_mlst(ftp_session *s, const char *arg)
{
	char path[SD_PATH_MAX];
	sd_stat st;
	int r = ftp_resolve(s, *arg ? arg : ".", path, sizeof path);
	if (r == 0)
		r = stat_path(s, path, &st);
	if (r < 0)
		return ftp_reply_err(s, r, "Could not list");
	ftp_buf b = {0};
	char *tofree;
	const char *on = ftp_out_name(s, path, &tofree);
	ftp_buf_printf(&b, "Listing %s\n ", on);
	ftp_mlsx_facts(s, &st, &b);
	ftp_buf_printf(&b, " %s\nEnd", on);
	free(tofree);
	r = ftp_reply(s, 250, "%s", b.data);
	ftp_buf_free(&b);
	return r;
}

static int emit_ctrl(ftp_session *s, ftp_buf *b, void *arg)
{
	ftp_buf *acc = arg;
	/* Control replies: LF-separated lines for ftp_reply. */
	for (size_t i = 0; i < b->len; i++)
		if (b->data[i] != '\r')
			ftp_buf_append(acc, &b->data[i], 1);
	(void)s;
	return 0;
}

int ftp_cmd_stat_path(ftp_session *s, const char *arg)
{
	char path[SD_PATH_MAX];
	sd_stat st;
	arg = skip_ls_opts(arg);
	int r = ftp_resolve(s, *arg ? arg : ".", path, sizeof path);
	if (r == 0)
		r = stat_path(s, path, &st);
	if (r < 0)
		return ftp_reply_err(s, r, "Could not stat");
	ftp_buf acc = {0};
	r = list_run(s, path, &st, 'T', NULL, NULL, emit_ctrl, &acc, 10000);
	if (r < 0) {
		ftp_buf_free(&acc);
		return ftp_reply_err(s, r, "Could not stat");
	}
	char *tofree;
	const char *on = ftp_out_name(s, path, &tofree);
	r = ftp_reply(s, 213, "Status of %s:\n%sEnd of status", on, acc.data ? acc.data : "");
	free(tofree);
	ftp_buf_free(&acc);
	return r;
}
