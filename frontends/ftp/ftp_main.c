/*
 * ftp_main.c - the FTP/FTPS module: descriptor, init/start/stop/destroy,
 * the accept thread and the session registry.
 *
 * Threads: one accept thread (started by start()) polls the plain
 * listener, the optional implicit-TLS listener and a wake pipe; each
 * admitted connection gets its own session thread (session_thread, which
 * runs ftp_session_run).
 *
 * Admission (util/net.h): each listener is an sd_listener that counts live
 * connections in total and per client address. Over max_per_ip or
 * max_clients the client gets a one-line 421 from the accept thread itself
 * (implicit TLS: the connection is just closed, it cannot read plain text).
 * The two listeners count separately, so the accept thread also refuses a
 * connection when both together already hold max_clients; max_per_ip is
 * per listener.
 *
 * Invariants:
 *  1. srv->lock guards srv->sessions and every session's `done`.
 *  2. A session is on srv->sessions from creation until it is joined; its
 *     thread gives back its listener slot and then sets `done` as its last
 *     act; the accept thread or stop() joins and frees done sessions.
 *  3. A session's control fd is closed only by the reaper, after the join,
 *     so stop() may shutdown() it at any time under srv->lock; data fds are
 *     shut down only under the session's fdlock (ftp_data_reset closes them
 *     under the same lock).
 *  4. After stop() returns, no module thread runs and none touches the core:
 *     every session thread has been joined (uploads in flight are committed
 *     or aborted by their thread before it ends).
 *  5. The listeners outlive every session (sessions give their slot back
 *     at the end): they are closed by stop() after the last join.
 */
#include "ftp.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ registry */

static int live_total(ftp_server *srv)
{
	int n = sd_listener_live(srv->plain);
	if (srv->implicit)
		n += sd_listener_live(srv->implicit);
	return n;
}

static void session_free(ftp_session *s)
{
	if (s->ctrl.tls)
		gnutls_deinit(s->ctrl.tls);
	if (s->ctrl.fd >= 0)
		sd_sys_close(s->ctrl.fd);
	pthread_mutex_destroy(&s->fdlock);
	free(s);
}

/* Join and free finished sessions (all: every session, for stop()). */
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

static void *session_thread(void *arg)
{
	ftp_session *s = arg;
	ftp_server *srv = s->srv;
	ftp_session_run(s);
	if (s->startup)
		sd_startups_leave(&srv->startups);
	sd_listener_leave(s->listener, s->addr);
	int live = live_total(srv);
	pthread_mutex_lock(&srv->lock);
	s->done = 1; /* the reaper may free s from here on */
	pthread_mutex_unlock(&srv->lock);
	srv->api->metric_set(srv->core, "storaged_sessions", "frontend=\"ftp\"", live);
	return NULL;
}

/* ------------------------------------------------------------ accepting */

/* Refuse a connection with a one-line reply (NULL: just close). */
static void refuse(int fd, const char *msg)
{
	if (msg) {
		ftp_sock_timeouts(fd, 2000);
		(void)send(fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	sd_sys_close(fd);
}

/* Start the session thread of an admitted connection. */
static void start_session(ftp_server *srv, sd_listener *l, int fd, const char *addr, int implicit)
{
	ftp_session *s = sd_xcalloc(1, sizeof *s);
	s->srv = srv;
	s->api = srv->api;
	s->core = srv->core;
	s->listener = l;
	s->ctrl.fd = fd;
	s->data.fd = -1;
	s->pasv_fd = -1;
	s->implicit = implicit;
	s->startup = 1;
	s->grace_end = sd_mono_ms() + srv->conf->login_grace_time;
	s->cd_in = s->cd_out = (iconv_t)-1;
	socklen_t len = sizeof s->peer;
	(void)getpeername(fd, (struct sockaddr *)&s->peer, &len);
	len = sizeof s->local;
	(void)getsockname(fd, (struct sockaddr *)&s->local, &len);
	snprintf(s->addr, sizeof s->addr, "%s", addr);
	pthread_mutex_init(&s->fdlock, NULL);

	pthread_mutex_lock(&srv->lock);
	s->next = srv->sessions;
	srv->sessions = s;
	int r = pthread_create(&s->thr, NULL, session_thread, s);
	if (r != 0)
		srv->sessions = s->next;
	pthread_mutex_unlock(&srv->lock);
	if (r != 0) {
		srv->api->log(srv->core, SD_LOG_ERROR, FTP_SRC, "event=thread_failed err=\"%s\"", strerror(r));
		sd_listener_leave(l, addr);
		sd_startups_leave(&srv->startups);
		refuse(fd, implicit ? NULL : "421 Service not available.\r\n");
		s->ctrl.fd = -1;
		session_free(s);
		return;
	}
	srv->api->metric_set(srv->core, "storaged_sessions", "frontend=\"ftp\"", live_total(srv));
}

/* Take one connection from listener l (its fd polled readable). */
static void accept_from(ftp_server *srv, sd_listener *l, int implicit)
{
	int fd, admit;
	char addr[SD_ADDR_MAX];
	int r = sd_listener_accept(l, 0, &fd, addr, &admit);
	if (r < 0)
		srv->api->log(srv->core, SD_LOG_WARN, FTP_SRC, "event=accept_failed err=\"%s\"", strerror(-r));
	if (r <= 0)
		return;
	if (admit == SD_ADMIT_OK && live_total(srv) > srv->conf->max_clients) {
		sd_listener_leave(l, addr); /* both listeners together are full */
		admit = SD_ADMIT_FULL;
	}
	if (admit == SD_ADMIT_OK && !sd_startups_enter(&srv->startups)) {
		/* too many connections are waiting to log in (max_startups) */
		sd_listener_leave(l, addr);
		srv->api->log(srv->core, SD_LOG_WARN, FTP_SRC,
			      "event=refused reason=max_startups addr=%s", addr);
		srv->api->metric_add(srv->core, "storaged_connections_refused_total",
				     "frontend=\"ftp\",reason=\"max_startups\"", 1);
		refuse(fd, implicit ? NULL : "421 Too many connections waiting to log in, "
					     "try again later.\r\n");
		return;
	}
	if (admit == SD_ADMIT_OK) {
		start_session(srv, l, fd, addr, implicit);
		return;
	}
	int full = admit == SD_ADMIT_FULL;
	srv->api->log(srv->core, SD_LOG_WARN, FTP_SRC, "event=refused reason=%s addr=%s",
		      full ? "max_clients" : "max_per_ip", addr);
	srv->api->metric_add(srv->core, "storaged_connections_refused_total",
			     full ? "frontend=\"ftp\",reason=\"max_clients\""
				  : "frontend=\"ftp\",reason=\"max_per_ip\"",
			     1);
	if (implicit)
		refuse(fd, NULL);
	else
		refuse(fd, full ? "421 Too many users, try again later.\r\n"
				: "421 Too many connections from your address.\r\n");
}

static void *accept_main(void *arg)
{
	ftp_server *srv = arg;
	while (!srv->stopping) {
		struct pollfd p[3];
		int n = 0;
		p[n++] = (struct pollfd){.fd = srv->wake[0], .events = POLLIN};
		p[n++] = (struct pollfd){.fd = sd_listener_fd(srv->plain), .events = POLLIN};
		if (srv->implicit)
			p[n++] = (struct pollfd){.fd = sd_listener_fd(srv->implicit), .events = POLLIN};
		int r = poll(p, (nfds_t)n, 1000);
		if (srv->stopping)
			break;
		if (r > 0) {
			if (p[1].revents & POLLIN)
				accept_from(srv, srv->plain, 0);
			if (n > 2 && (p[2].revents & POLLIN))
				accept_from(srv, srv->implicit, 1);
		}
		reap(srv, 0);
	}
	return NULL;
}

/* ------------------------------------------------------------ lifecycle */

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

static void close_listeners(ftp_server *srv)
{
	sd_listener_close(srv->plain);
	sd_listener_close(srv->implicit);
	srv->plain = srv->implicit = NULL;
}

static void server_free(ftp_server *srv)
{
	if (!srv)
		return;
	close_listeners(srv);
	if (srv->wake[0] >= 0)
		sd_sys_close(srv->wake[0]);
	if (srv->wake[1] >= 0)
		sd_sys_close(srv->wake[1]);
	if (srv->tls) {
		ftp_tls_free(srv->tls);
		gnutls_global_deinit();
	}
	sd_bw_free(srv->bw);
	pthread_mutex_destroy(&srv->lock);
	free(srv);
}

/* Load the certificate (when configured). 0 or -SD_ECONFIG (logged). */
static int tls_setup(ftp_server *srv)
{
	const ftp_conf *conf = srv->conf;
	if (!conf->tls_cert || !*conf->tls_cert)
		return 0;
	int r = gnutls_global_init();
	if (r < 0)
		return ftp_conf_error(srv, "gnutls_global_init: %s", gnutls_strerror(r));
	char err[256];
	srv->tls = ftp_tls_new(conf->tls_cert, conf->tls_key, err, sizeof err);
	if (!srv->tls) {
		gnutls_global_deinit();
		return ftp_conf_error(srv, "cannot load tls_cert/tls_key: %s", err);
	}
	return 0;
}

/* Bind the listeners. 0 or -SD_ECONFIG (logged). */
static int listen_setup(ftp_server *srv)
{
	const ftp_conf *conf = srv->conf;
	const sd_module_conf *mc = srv->mc;
	char err[300];
	srv->plain = sd_listener_open(mc->listen_host, mc->listen_port, (int)conf->max_clients,
				      (int)conf->max_per_ip, err, sizeof err);
	if (!srv->plain)
		return ftp_conf_error(srv, "%s", err);
	if (conf->implicit_tls_listen && *conf->implicit_tls_listen) {
		char host[256];
		int port;
		if (split_hostport(conf->implicit_tls_listen, host, sizeof host, &port) < 0)
			return ftp_conf_error(srv, "implicit_tls_listen '%s' is not ADDR:PORT",
					      conf->implicit_tls_listen);
		srv->implicit = sd_listener_open(host, port, (int)conf->max_clients, (int)conf->max_per_ip,
						 err, sizeof err);
		if (!srv->implicit)
			return ftp_conf_error(srv, "implicit_tls_listen: %s", err);
	}
	return 0;
}

static int ftp_init(const sd_core_api *api, sd_core *core, const sd_module_conf *mc, void *confp,
		    void **state)
{
	ftp_conf *conf = confp;
	if (api->version < SD_CORE_API_VERSION || api->size < offsetof(sd_core_api, spare))
		return -SD_ECONFIG;
	ftp_server *srv = sd_xcalloc(1, sizeof *srv);
	srv->api = api;
	srv->core = core;
	srv->conf = conf;
	srv->mc = mc;
	srv->wake[0] = srv->wake[1] = -1;
	pthread_mutex_init(&srv->lock, NULL);
	*state = srv;

	int r = ftp_conf_check(srv);
	if (r == 0)
		r = tls_setup(srv);
	if (r < 0)
		return r;
	srv->bw = sd_bw_new(conf->bandwidth_limit, (int)conf->max_clients);
	if (pipe2(srv->wake, O_CLOEXEC) < 0)
		return -errno;
	if ((r = listen_setup(srv)) < 0)
		return r;
	api->log(core, SD_LOG_INFO, FTP_SRC, "event=listening addr=%s port=%d tls=%s implicit=%s",
		 mc->listen_host ? mc->listen_host : "*", mc->listen_port, srv->tls ? "yes" : "no",
		 srv->implicit ? conf->implicit_tls_listen : "no");
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
	if (srv->wake[1] >= 0)
		(void)sd_sys_write(srv->wake[1], "x", 1);
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
	close_listeners(srv);
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
