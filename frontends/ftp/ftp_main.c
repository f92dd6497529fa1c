/*
 * ftp_main.c - the FTP/FTPS module: descriptor, [ftp] config table,
 * listeners, the accept thread, the session registry and the per-user
 * bandwidth limiter.
 *
 * Threads: one accept thread (started by start()) polls the plain listener,
 * the optional implicit-TLS listener and a wake pipe; each accepted
 * connection gets its own session thread (ftp_session_main), up to
 * max_clients live sessions and max_per_ip per address (over the limit the
 * client gets "421" and is closed by the accept thread itself).
 *
 * Invariants:
 *  1. srv->lock guards srv->sessions, srv->nlive and the bandwidth table.
 *  2. A session is on srv->sessions from creation until it is joined; its
 *     thread sets `done` (under srv->lock) as its last act; the accept
 *     thread or stop() joins and frees done sessions.
 *  3. A session's control fd is closed only by the reaper, after the join,
 *     so stop() may shutdown() it at any time under srv->lock; data fds are
 *     shut down only under the session's fdlock (ftp_data_reset closes them
 *     under the same lock).
 *  4. After stop() returns, no module thread runs and none touches the core:
 *     every session thread has been joined (uploads in flight are committed
 *     or aborted by their thread before it ends).
 */
#include "ftp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SRC "ftp"

static const sd_conf_item ftp_conf_table[] = {
	{"max_clients", SD_CONF_INT, offsetof(ftp_conf, max_clients), "200",
	 "Most simultaneous FTP sessions; more are answered 421 and closed."},
	{"max_per_ip", SD_CONF_INT, offsetof(ftp_conf, max_per_ip), "20",
	 "Most simultaneous sessions from one client address."},
	{"idle_timeout", SD_CONF_DURATION, offsetof(ftp_conf, idle_timeout), "5m",
	 "Close a control connection idle this long (421)."},
	{"data_timeout", SD_CONF_DURATION, offsetof(ftp_conf, data_timeout), "60s",
	 "Give up a data connection that makes no progress this long."},
	{"pasv_min_port", SD_CONF_INT, offsetof(ftp_conf, pasv_min_port), "0",
	 "Lowest passive data port (0 with pasv_max_port 0: any free port)."},
	{"pasv_max_port", SD_CONF_INT, offsetof(ftp_conf, pasv_max_port), "0",
	 "Highest passive data port."},
	{"pasv_address", SD_CONF_STR, offsetof(ftp_conf, pasv_address), "",
	 "IPv4 address (or host name) advertised in PASV replies, for NAT; empty: the control connection's local address."},
	{"active_enabled", SD_CONF_BOOL, offsetof(ftp_conf, active_enabled), "yes",
	 "Allow active mode (PORT/EPRT)."},
	{"allow_foreign_data", SD_CONF_BOOL, offsetof(ftp_conf, allow_foreign_data), "no",
	 "Allow data connections to/from an address other than the control peer (FXP); off prevents bounce attacks."},
	{"tls_cert", SD_CONF_PATH, offsetof(ftp_conf, tls_cert), "",
	 "PEM certificate (chain) for FTPS; empty disables AUTH TLS."},
	{"tls_key", SD_CONF_PATH, offsetof(ftp_conf, tls_key), "",
	 "PEM private key for tls_cert."},
	{"implicit_tls_listen", SD_CONF_STR, offsetof(ftp_conf, implicit_tls_listen), "",
	 "ADDR:PORT of an implicit FTPS listener (TLS from the first byte, e.g. 127.0.0.1:990); empty: none."},
	{"require_tls_login", SD_CONF_BOOL, offsetof(ftp_conf, require_tls_login), "no",
	 "Refuse USER/PASS before AUTH TLS."},
	{"require_tls_data", SD_CONF_BOOL, offsetof(ftp_conf, require_tls_data), "no",
	 "Refuse data transfers without PROT P."},
	{"tls_require_reuse", SD_CONF_BOOL, offsetof(ftp_conf, tls_require_reuse), "no",
	 "Refuse TLS data connections that do not resume a known TLS session."},
	{"anonymous", SD_CONF_BOOL, offsetof(ftp_conf, anonymous), "no",
	 "Allow USER anonymous/ftp (any password), read-only, in anonymous_user's tree."},
	{"anonymous_user", SD_CONF_STR, offsetof(ftp_conf, anonymous_user), "",
	 "Account whose tree anonymous sessions see (read-only)."},
	{"fallback_charset", SD_CONF_STR, offsetof(ftp_conf, fallback_charset), "",
	 "iconv charset (e.g. GB18030) for clients sending names that are not UTF-8; empty: refuse such names."},
	{"bandwidth_limit", SD_CONF_SIZE, offsetof(ftp_conf, bandwidth_limit), "0",
	 "Bytes per second per user over all the user's FTP transfers; 0 = unlimited."},
	{"max_line", SD_CONF_INT, offsetof(ftp_conf, max_line), "4096",
	 "Longest accepted command line in bytes (longer lines get 500)."},
	{"max_login_failures", SD_CONF_INT, offsetof(ftp_conf, max_login_failures), "3",
	 "Failed PASS attempts before the session is closed."},
	{"banner", SD_CONF_STR, offsetof(ftp_conf, banner), "storaged FTP server ready.",
	 "Text of the 220 greeting."},
	{NULL, 0, 0, NULL, NULL},
};

double ftp_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ listeners */

/* Bind and listen on host:port; returns fd or -errno, reason in err. */
static int listen_on(const char *host, int port, char *err, size_t errlen)
{
	struct addrinfo hints = {0}, *res = NULL;
	char pbuf[16];
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(pbuf, sizeof pbuf, "%d", port);
	int r = getaddrinfo(host && *host ? host : NULL, pbuf, &hints, &res);
	if (r != 0) {
		snprintf(err, errlen, "cannot resolve '%s': %s", host ? host : "", gai_strerror(r));
		return -EINVAL;
	}
	int fd = -1, e = 0;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			e = errno;
			continue;
		}
		int one = 1;
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0)
			break;
		e = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(err, errlen, "cannot listen on %s:%d: %s", host ? host : "*", port, strerror(e));
		return -(e ? e : EINVAL);
	}
	return fd;
}

/* "HOST:PORT", "[v6]:PORT" -> host (in hb) and port. 0 or -EINVAL. */
static int split_hostport(const char *s, char *hb, size_t hl, int *port)
{
	const char *colon = strrchr(s, ':');
	if (!colon || colon[1] == '\0')
		return -EINVAL;
	char *end;
	long p = strtol(colon + 1, &end, 10);
	if (*end || p <= 0 || p > 65535)
		return -EINVAL;
	const char *h = s;
	size_t n = (size_t)(colon - s);
	if (n >= 2 && h[0] == '[' && h[n - 1] == ']')
		h++, n -= 2;
	if (n >= hl)
		return -EINVAL;
	memcpy(hb, h, n);
	hb[n] = '\0';
	*port = (int)p;
	return 0;
}

/* ------------------------------------------------------------ bandwidth */

ftp_bw_slot *ftp_bw_acquire(ftp_server *srv, int64_t uid)
{
	if (srv->conf->bandwidth_limit <= 0)
		return NULL;
	ftp_bw_slot *free_slot = NULL, *got = NULL;
	pthread_mutex_lock(&srv->lock);
	for (int i = 0; i < srv->nbw; i++) {
		if (srv->bw[i].refs > 0 && srv->bw[i].uid == uid) {
			got = &srv->bw[i];
			break;
		}
		if (srv->bw[i].refs == 0 && !free_slot)
			free_slot = &srv->bw[i];
	}
	if (!got && free_slot) {
		got = free_slot;
		got->uid = uid;
		got->next = 0;
	}
	if (got)
		got->refs++;
	pthread_mutex_unlock(&srv->lock);
	return got;
}

void ftp_bw_release(ftp_server *srv, ftp_bw_slot *slot)
{
	if (!slot)
		return;
	pthread_mutex_lock(&srv->lock);
	slot->refs--;
	pthread_mutex_unlock(&srv->lock);
}

void ftp_bw_take(ftp_server *srv, ftp_bw_slot *slot, size_t n)
{
	if (!slot || srv->conf->bandwidth_limit <= 0)
		return;
	double rate = (double)srv->conf->bandwidth_limit;
	pthread_mutex_lock(&srv->lock);
	double now = ftp_mono();
	if (slot->next < now - 0.2) /* allow at most a 0.2 s burst after idling */
		slot->next = now - 0.2;
	slot->next += (double)n / rate;
	double wait = slot->next - now;
	pthread_mutex_unlock(&srv->lock);
	if (wait > 0) {
		struct timespec ts;
		ts.tv_sec = (time_t)wait;
		ts.tv_nsec = (long)((wait - (double)ts.tv_sec) * 1e9);
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !srv->stopping)
			;
	}
}

/* ------------------------------------------------------------ sessions */

static void addr_text(const struct sockaddr_storage *ss, char *out, size_t outlen)
{
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)ss;
		if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr))
			inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], out, (socklen_t)outlen);
		else
			inet_ntop(AF_INET6, &a->sin6_addr, out, (socklen_t)outlen);
	} else {
		const struct sockaddr_in *a = (const void *)ss;
		inet_ntop(AF_INET, &a->sin_addr, out, (socklen_t)outlen);
	}
}

static void session_free(ftp_session *s)
{
	if (s->ctrl.tls)
		gnutls_deinit(s->ctrl.tls);
	if (s->ctrl.fd >= 0)
		close(s->ctrl.fd);
	pthread_mutex_destroy(&s->fdlock);
	free(s);
}

/* Join and free finished sessions (called by the accept thread / stop). */
static void reap(ftp_server *srv, int all)
{
	for (;;) {
		ftp_session *victim = NULL;
		pthread_mutex_lock(&srv->lock);
		for (ftp_session **pp = &srv->sessions; *pp; pp = &(*pp)->next) {
			if ((*pp)->done || all) {
				victim = *pp;
				*pp = victim->next;
				break;
			}
		}
		pthread_mutex_unlock(&srv->lock);
		if (!victim)
			return;
		pthread_join(victim->thr, NULL);
		session_free(victim);
	}
}

/* Refuse a connection over a limit with a one-line 421. */
static void refuse(int fd, const char *msg)
{
	ftp_sock_timeouts(fd, 2000);
	(void)send(fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

static void accept_one(ftp_server *srv, int lfd, int implicit)
{
	struct sockaddr_storage peer;
	socklen_t plen = sizeof peer;
	int fd = accept4(lfd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	char addr[64];
	addr_text(&peer, addr, sizeof addr);

	pthread_mutex_lock(&srv->lock);
	int live = srv->nlive, same = 0;
	for (ftp_session *s = srv->sessions; s; s = s->next)
		if (!s->done && strcmp(s->addr, addr) == 0)
			same++;
	pthread_mutex_unlock(&srv->lock);
	if (live >= srv->conf->max_clients) {
		srv->api->log(srv->core, SD_LOG_WARN, SRC, "event=refused reason=max_clients addr=%s", addr);
		srv->api->metric_add(srv->core, "storaged_connections_refused_total",
				     "frontend=\"ftp\",reason=\"max_clients\"", 1);
		if (!implicit)
			refuse(fd, "421 Too many users, try again later.\r\n");
		else
			close(fd);
		return;
	}
	if (same >= srv->conf->max_per_ip) {
		srv->api->log(srv->core, SD_LOG_WARN, SRC, "event=refused reason=max_per_ip addr=%s", addr);
		srv->api->metric_add(srv->core, "storaged_connections_refused_total",
				     "frontend=\"ftp\",reason=\"max_per_ip\"", 1);
		if (!implicit)
			refuse(fd, "421 Too many connections from your address.\r\n");
		else
			close(fd);
		return;
	}

	ftp_session *s = calloc(1, sizeof *s);
	if (!s) {
		close(fd);
		return;
	}
	s->srv = srv;
	s->api = srv->api;
	s->core = srv->core;
	s->ctrl.fd = fd;
	s->ctrl.tls = NULL;
	s->data.fd = -1;
	s->pasv_fd = -1;
	s->implicit = implicit;
	s->cd_in = s->cd_out = (iconv_t)-1;
	memcpy(&s->peer, &peer, plen);
	s->peerlen = plen;
	s->locallen = sizeof s->local;
	getsockname(fd, (struct sockaddr *)&s->local, &s->locallen);
	snprintf(s->addr, sizeof s->addr, "%s", addr);
	pthread_mutex_init(&s->fdlock, NULL);

	pthread_mutex_lock(&srv->lock);
	s->next = srv->sessions;
	srv->sessions = s;
	srv->nlive++;
	int r = pthread_create(&s->thr, NULL, ftp_session_main, s);
	if (r != 0) {
		srv->sessions = s->next;
		srv->nlive--;
	}
	int nlive = srv->nlive;
	pthread_mutex_unlock(&srv->lock);
	if (r != 0) {
		srv->api->log(srv->core, SD_LOG_ERROR, SRC, "event=thread_failed err=%d", r);
		refuse(fd, "421 Service not available.\r\n");
		s->ctrl.fd = -1;
		session_free(s);
		return;
	}
	srv->api->metric_set(srv->core, "storaged_sessions", "frontend=\"ftp\"", nlive);
}

static void *accept_main(void *arg)
{
	ftp_server *srv = arg;
	while (!srv->stopping) {
		struct pollfd p[3];
		int n = 0;
		p[n++] = (struct pollfd){.fd = srv->wake[0], .events = POLLIN};
		p[n++] = (struct pollfd){.fd = srv->lfd, .events = POLLIN};
		if (srv->tls_lfd >= 0)
			p[n++] = (struct pollfd){.fd = srv->tls_lfd, .events = POLLIN};
		int r = poll(p, (nfds_t)n, 1000);
		if (srv->stopping)
			break;
		if (r > 0) {
			if (p[1].revents & POLLIN)
				accept_one(srv, srv->lfd, 0);
			if (n > 2 && (p[2].revents & POLLIN))
				accept_one(srv, srv->tls_lfd, 1);
		}
		reap(srv, 0);
	}
	return NULL;
}

/* ------------------------------------------------------------ lifecycle */

static void server_free(ftp_server *srv)
{
	if (!srv)
		return;
	if (srv->lfd >= 0)
		close(srv->lfd);
	if (srv->tls_lfd >= 0)
		close(srv->tls_lfd);
	if (srv->wake[0] >= 0)
		close(srv->wake[0]);
	if (srv->wake[1] >= 0)
		close(srv->wake[1]);
	ftp_tls_free(srv->tls);
	if (srv->tls)
		gnutls_global_deinit();
	free(srv->bw);
	pthread_mutex_destroy(&srv->lock);
	free(srv);
}

static int config_error(ftp_server *srv, const char *fmt, const char *a)
{
	char msg[1024];
	snprintf(msg, sizeof msg, fmt, a ? a : "");
	srv->api->log(srv->core, SD_LOG_ERROR, SRC, "event=config_error section=ftp msg=\"%s\"", msg);
	return -SD_ECONFIG;
}

static int ftp_init(const sd_core_api *api, sd_core *core, const sd_module_conf *mc, void *confp,
		    void **state)
{
	ftp_conf *conf = confp;
	if (api->version < SD_CORE_API_VERSION || api->size < offsetof(sd_core_api, spare))
		return -SD_ECONFIG;
	ftp_server *srv = calloc(1, sizeof *srv);
	if (!srv)
		return -ENOMEM;
	srv->api = api;
	srv->core = core;
	srv->conf = conf;
	srv->mc = mc;
	srv->lfd = srv->tls_lfd = -1;
	srv->wake[0] = srv->wake[1] = -1;
	pthread_mutex_init(&srv->lock, NULL);
	*state = srv;

	if (conf->max_clients < 1 || conf->max_clients > 100000)
		return config_error(srv, "max_clients must be 1..100000", NULL);
	if (conf->max_per_ip < 1)
		return config_error(srv, "max_per_ip must be at least 1", NULL);
	if (conf->max_line < 512 || conf->max_line > 65536)
		return config_error(srv, "max_line must be 512..65536", NULL);
	if (conf->idle_timeout < 1000 || conf->data_timeout < 1000)
		return config_error(srv, "idle_timeout and data_timeout must be at least 1s", NULL);
	if (conf->max_login_failures < 1)
		return config_error(srv, "max_login_failures must be at least 1", NULL);
	if (conf->pasv_min_port < 0 || conf->pasv_max_port > 65535 ||
	    conf->pasv_min_port > conf->pasv_max_port ||
	    (conf->pasv_max_port > 0 && conf->pasv_min_port < 1024))
		return config_error(srv, "pasv_min_port..pasv_max_port must be a range within 1024..65535", NULL);
	if (conf->bandwidth_limit < 0)
		return config_error(srv, "bandwidth_limit must not be negative", NULL);
	if (conf->pasv_address && *conf->pasv_address) {
		struct addrinfo hints = {0}, *res = NULL;
		hints.ai_family = AF_INET;
		hints.ai_socktype = SOCK_STREAM;
		if (getaddrinfo(conf->pasv_address, NULL, &hints, &res) != 0 || !res)
			return config_error(srv, "pasv_address '%s' is not an IPv4 address or resolvable name",
					    conf->pasv_address);
		inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, srv->pasv_ip,
			  sizeof srv->pasv_ip);
		freeaddrinfo(res);
	}
	if (conf->fallback_charset && *conf->fallback_charset) {
		iconv_t cd = iconv_open("UTF-8", conf->fallback_charset);
		if (cd == (iconv_t)-1)
			return config_error(srv, "fallback_charset '%s' is not known to iconv",
					    conf->fallback_charset);
		iconv_close(cd);
	}
	if (conf->anonymous && (!conf->anonymous_user || !*conf->anonymous_user))
		return config_error(srv, "anonymous = yes needs anonymous_user", NULL);
	int have_cert = conf->tls_cert && *conf->tls_cert;
	int have_key = conf->tls_key && *conf->tls_key;
	if (have_cert != have_key)
		return config_error(srv, "tls_cert and tls_key go together", NULL);
	int implicit = conf->implicit_tls_listen && *conf->implicit_tls_listen;
	if ((implicit || conf->require_tls_login || conf->require_tls_data) && !have_cert)
		return config_error(srv, "implicit_tls_listen / require_tls_* need tls_cert and tls_key", NULL);
	if (have_cert) {
		char err[256];
		int r = gnutls_global_init();
		if (r < 0)
			return config_error(srv, "gnutls_global_init: %s", gnutls_strerror(r));
		srv->tls = ftp_tls_new(conf->tls_cert, conf->tls_key, err, sizeof err);
		if (!srv->tls) {
			gnutls_global_deinit();
			char msg[600];
			snprintf(msg, sizeof msg, "cannot load tls_cert/tls_key: %s", err);
			return config_error(srv, "%s", msg);
		}
	}

	srv->nbw = (int)conf->max_clients;
	srv->bw = calloc((size_t)srv->nbw, sizeof *srv->bw);
	if (!srv->bw)
		return -ENOMEM;
	if (pipe2(srv->wake, O_CLOEXEC) < 0)
		return -errno;

	char err[300];
	int fd = listen_on(mc->listen_host, mc->listen_port, err, sizeof err);
	if (fd < 0) {
		config_error(srv, "%s", err);
		return fd;
	}
	srv->lfd = fd;
	if (implicit) {
		char host[256];
		int port;
		if (split_hostport(conf->implicit_tls_listen, host, sizeof host, &port) < 0)
			return config_error(srv, "implicit_tls_listen '%s' is not ADDR:PORT",
					    conf->implicit_tls_listen);
		fd = listen_on(host, port, err, sizeof err);
		if (fd < 0) {
			config_error(srv, "%s", err);
			return fd;
		}
		srv->tls_lfd = fd;
	}
	api->log(core, SD_LOG_INFO, SRC, "event=listening addr=%s port=%d tls=%s implicit=%s",
		 mc->listen_host ? mc->listen_host : "*", mc->listen_port, srv->tls ? "yes" : "no",
		 implicit ? conf->implicit_tls_listen : "no");
	return 0;
}

static int ftp_start(void *state)
{
	ftp_server *srv = state;
	int r = pthread_create(&srv->accept_thr, NULL, accept_main, srv);
	if (r != 0)
		return -r;
	srv->accept_started = 1;
	return 0;
}

static void ftp_stop(void *state)
{
	ftp_server *srv = state;
	if (!srv)
		return;
	srv->stopping = 1;
	if (srv->wake[1] >= 0) {
		ssize_t w = write(srv->wake[1], "x", 1);
		(void)w;
	}
	if (srv->accept_started) {
		pthread_join(srv->accept_thr, NULL);
		srv->accept_started = 0;
	}
	/* Wake every session: its blocking calls fail, it finishes any
	 * upload in flight (commit of what arrived) and ends. */
	pthread_mutex_lock(&srv->lock);
	for (ftp_session *s = srv->sessions; s; s = s->next) {
		shutdown(s->ctrl.fd, SHUT_RDWR);
		pthread_mutex_lock(&s->fdlock);
		if (s->data.fd >= 0)
			shutdown(s->data.fd, SHUT_RDWR);
		if (s->pasv_fd >= 0)
			shutdown(s->pasv_fd, SHUT_RDWR);
		pthread_mutex_unlock(&s->fdlock);
	}
	pthread_mutex_unlock(&srv->lock);
	reap(srv, 1);
}

static void ftp_destroy(void *state)
{
	server_free(state);
}

const sd_module storaged_module = {
	.abi = SD_MODULE_ABI,
	.signature = SD_MODULE_SIGNATURE,
	.name = "ftp",
	.description = "FTP and FTPS (explicit and implicit TLS) front end",
	.conf_table = ftp_conf_table,
	.conf_size = sizeof(ftp_conf),
	.init = ftp_init,
	.start = ftp_start,
	.stop = ftp_stop,
	.destroy = ftp_destroy,
};
