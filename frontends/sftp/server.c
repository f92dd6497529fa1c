/*
 * server.c - the sftp front end as a module: its descriptor and config
 * table, init/start/stop/destroy, and the accept thread. One connection's
 * life is conn.c, the host keys keys.c, the SFTP protocol serve.c and the
 * files in proto.h (see sftp_int.h for who calls whom).
 *
 * Threads: one accept thread waits on the listener in slices of 200 ms (so
 * stop() is noticed quickly) and starts one thread per admitted connection
 * (conn.c). A connection is only ever touched by its own thread; the shared
 * state is the connection list (srv.mu), used for reaping finished threads
 * and by stop(), and the listener's counts (its own lock).
 *
 * Invariants
 *  1. Admission is util's sd_listener (max_sessions / max_per_ip, counted
 *     the same way in every front end): a refused connection is closed
 *     before any byte of SSH; an admitted one gives its slot back exactly
 *     once, when its thread ends (or here, when it could not start). libssh
 *     never listens: it gets each admitted socket through
 *     ssh_bind_accept_fd().
 *  2. stop() returns only after every connection thread has been joined, so
 *     no module thread touches the core afterwards. It wakes blocked
 *     connections by shutting down their sockets (under the list lock,
 *     while the fd is still owned by the connection).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "sftp_int.h"
#include "sys.h"
#include "util.h"

#define KEX_ALGOS "curve25519-sha256,curve25519-sha256@libssh.org"
#define CIPHERS "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com," \
		"aes256-ctr,aes192-ctr,aes128-ctr"
#define MACS "hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha2-256,hmac-sha2-512"
#define PUBKEY_TYPES "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521," \
		     "sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com," \
		     "rsa-sha2-512,rsa-sha2-256"

/* Join and free finished sessions. */
static void reap(struct srv *s, int all)
{
	for (;;) {
		struct conn **pp, *c = NULL;
		pthread_mutex_lock(&s->mu);
		for (pp = &s->conns; *pp; pp = &(*pp)->next) {
			if ((*pp)->done || all) {
				c = *pp;
				*pp = c->next;
				break;
			}
		}
		pthread_mutex_unlock(&s->mu);
		if (c == NULL)
			return;
		pthread_join(c->thr, NULL);
		free(c);
	}
}

/* Start the thread of an admitted connection (invariant 1): libssh gets
 * the socket, the thread gets the listener slot. On failure the socket is
 * closed and the slot given back. */
static void start_conn(struct srv *s, int fd, const char *addr)
{
	struct conn *c;
	ssh_session ssh;
	int one = 1, rc;

	/* replies are small and many: do not let Nagle hold them back */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	ssh = ssh_new();
	if (ssh == NULL || ssh_bind_accept_fd(s->bind, ssh, fd) != SSH_OK) {
		SLOG(s, SD_LOG_WARN, "event=accept_failed addr=%s reason=\"%s\"", addr,
		     ssh ? ssh_get_error(s->bind) : "out of memory");
		/* the session owns the socket once it holds it */
		if (ssh == NULL || ssh_get_fd(ssh) != fd)
			sd_sys_close(fd);
		ssh_free(ssh);
		sd_listener_leave(s->lis, addr);
		sd_startups_leave(&s->startups);
		return;
	}
	c = sd_xcalloc(1, sizeof(*c));
	c->startup = 1;
	c->srv = s;
	c->ssh = ssh;
	c->fd = fd;
	c->state = C_KEX;
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	/* counted before the thread runs: it counts itself out at its end */
	s->api->metric_set(s->core, "storaged_sessions", "frontend=\"sftp\"",
			   atomic_fetch_add(&s->live, 1) + 1);
	pthread_mutex_lock(&s->mu);
	c->next = s->conns;
	s->conns = c;
	rc = pthread_create(&c->thr, NULL, sd__sftp_conn_main, c);
	if (rc != 0)
		s->conns = c->next;
	pthread_mutex_unlock(&s->mu);
	if (rc != 0) {
		SLOG(s, SD_LOG_WARN, "event=refused addr=%s reason=thread", addr);
		s->api->metric_set(s->core, "storaged_sessions", "frontend=\"sftp\"",
				   atomic_fetch_sub(&s->live, 1) - 1);
		ssh_free(ssh);
		free(c);
		sd_listener_leave(s->lis, addr);
		sd_startups_leave(&s->startups);
		return;
	}
	s->api->metric_add(s->core, "storaged_connections_total", "frontend=\"sftp\"", 1);
}

static void *accept_main(void *arg)
{
	struct srv *s = arg;
	while (!s->stopping) {
		char addr[SD_ADDR_MAX];
		int fd = -1, admit = 0;
		int r = sd_listener_accept(s->lis, 200, &fd, addr, &admit);
		reap(s, 0);
		if (r < 0) {
			SLOG(s, SD_LOG_WARN, "event=accept_failed reason=\"%s\"", strerror(-r));
			sd_sleep_ms(100);
			continue;
		}
		if (r == 0)
			continue;
		if (admit != SD_ADMIT_OK || s->stopping) {
			if (admit == SD_ADMIT_OK)
				sd_listener_leave(s->lis, addr);
			else
				SLOG(s, SD_LOG_WARN, "event=refused addr=%s reason=%s", addr,
				     admit == SD_ADMIT_FULL ? "max_sessions" : "max_per_ip");
			sd_sys_close(fd);
			continue;
		}
		if (!sd_startups_enter(&s->startups)) {
			/* too many connections are waiting to log in */
			sd_listener_leave(s->lis, addr);
			SLOG(s, SD_LOG_WARN, "event=refused addr=%s reason=max_startups", addr);
			s->api->metric_add(s->core, "storaged_connections_refused_total",
					   "frontend=\"sftp\",reason=\"max_startups\"", 1);
			sd_sys_close(fd);
			continue;
		}
		start_conn(s, fd, addr);
	}
	return NULL;
}

/* ------------------------------------------------------------ module */

static int set_bind(struct srv *s, enum ssh_bind_options_e opt, const void *v, const char *what)
{
	if (ssh_bind_options_set(s->bind, opt, v) != SSH_OK) {
		SLOG(s, SD_LOG_ERROR, "event=init_failed reason=\"cannot set %s: %s\"", what,
		     ssh_get_error(s->bind));
		return -SD_ECONFIG;
	}
	return 0;
}

static int sftp_init(const sd_core_api *api, sd_core *core, const sd_module_conf *mc, void *confp,
		     void **state)
{
	sftp_conf *conf = confp;
	struct srv *s;
	int port = mc->listen_port > 0 ? mc->listen_port : 2222, rc;
	char err[256];
	bool no = false;
	const char *host = mc->listen_host ? mc->listen_host : "0.0.0.0";
	char hostalgos[64];

	*state = NULL;
	if (conf->bandwidth_limit < 0) {
		api->log(core, SD_LOG_ERROR, "sftp",
			 "event=init_failed reason=\"bandwidth_limit must not be negative\"");
		return -SD_ECONFIG;
	}
	if (conf->max_read < 32768 || conf->max_read > 4 * 1024 * 1024) {
		api->log(core, SD_LOG_ERROR, "sftp",
			 "event=init_failed reason=\"max_read must be between 32K and 4M\"");
		return -SD_ECONFIG;
	}
	if (conf->max_sessions < 1 || conf->max_per_ip < 1 || conf->max_auth_tries < 1 ||
	    conf->max_sessions > 100000 || conf->max_per_ip > 100000 ||
	    conf->handles_per_session < 1 || conf->handles_per_session > 65536 ||
	    conf->idle_timeout < 0) {
		api->log(core, SD_LOG_ERROR, "sftp",
			 "event=init_failed reason=\"max_sessions, max_per_ip (<= 100000), max_auth_tries "
			 "and handles_per_session (<= 65536) must be positive\"");
		return -SD_ECONFIG;
	}
	sd_startups su;
	if (sd_startups_parse(conf->max_startups, &su) < 0 || conf->login_grace_time < 1000 ||
	    conf->login_grace_time > 86400000) {
		api->log(core, SD_LOG_ERROR, "sftp",
			 "event=init_failed reason=\"max_startups must be start:rate:full (1 <= start <= "
			 "full, rate 0..100) or one number; login_grace_time 1s..1d\"");
		return -SD_ECONFIG;
	}
	s = sd_xcalloc(1, sizeof(*s));
	*state = s;
	s->startups = su;
	s->api = api;
	s->core = core;
	s->conf = conf;
	pthread_mutex_init(&s->mu, NULL);

	ssh_init();
	s->bind = ssh_bind_new();
	if (s->bind == NULL)
		return -ENOMEM;
	snprintf(hostalgos, sizeof(hostalgos), "ssh-ed25519%s",
		 conf->rsa_host_key ? ",rsa-sha2-512,rsa-sha2-256" : "");
	if ((rc = set_bind(s, SSH_BIND_OPTIONS_PROCESS_CONFIG, &no, "process_config")) < 0 ||
	    (rc = sd__sftp_host_keys(s)) < 0 ||
	    (rc = set_bind(s, SSH_BIND_OPTIONS_KEY_EXCHANGE, KEX_ALGOS, "kex")) < 0 ||
	    (rc = set_bind(s, SSH_BIND_OPTIONS_CIPHERS_C_S, CIPHERS, "ciphers")) < 0 ||
	    (rc = set_bind(s, SSH_BIND_OPTIONS_CIPHERS_S_C, CIPHERS, "ciphers")) < 0 ||
	    (rc = set_bind(s, SSH_BIND_OPTIONS_HMAC_C_S, MACS, "macs")) < 0 ||
	    (rc = set_bind(s, SSH_BIND_OPTIONS_HMAC_S_C, MACS, "macs")) < 0 ||
	    (rc = set_bind(s, SSH_BIND_OPTIONS_HOSTKEY_ALGORITHMS, hostalgos, "host key algorithms")) < 0 ||
	    (rc = set_bind(s, SSH_BIND_OPTIONS_PUBKEY_ACCEPTED_KEY_TYPES, PUBKEY_TYPES, "key types")) < 0)
		return rc;
	s->bw = sd_bw_new(conf->bandwidth_limit, (int)conf->max_sessions);
	s->lis = sd_listener_open(host, port, (int)conf->max_sessions, (int)conf->max_per_ip, err,
				  sizeof(err));
	if (s->lis == NULL) {
		SLOG(s, SD_LOG_ERROR, "event=init_failed reason=\"%s\"", err);
		return -SD_ECONFIG;
	}
	SLOG(s, SD_LOG_INFO, "event=listening addr=%s port=%d", host, port);
	return 0;
}

static int sftp_start(void *state)
{
	struct srv *s = state;
	int rc;
	s->pool = sd__sftp_pool_new();
	rc = pthread_create(&s->accept_thr, NULL, accept_main, s);
	if (rc != 0)
		return -rc;
	s->accept_started = 1;
	return 0;
}

static void sftp_stop(void *state)
{
	struct srv *s = state;
	struct conn *c;
	if (s == NULL)
		return;
	s->stopping = 1;
	if (s->accept_started) {
		pthread_join(s->accept_thr, NULL);
		s->accept_started = 0;
	}
	/* wake sessions blocked in libssh (invariant 3) */
	pthread_mutex_lock(&s->mu);
	for (c = s->conns; c; c = c->next)
		if (c->fd >= 0)
			shutdown(c->fd, SHUT_RDWR);
	pthread_mutex_unlock(&s->mu);
	reap(s, 1);
	sd__sftp_pool_free(s->pool); /* after every session: async.c A4 */
	s->pool = NULL;
}

static void sftp_destroy(void *state)
{
	struct srv *s = state;
	if (s == NULL)
		return;
	sd_listener_close(s->lis);
	sd_bw_free(s->bw);
	if (s->bind != NULL)
		ssh_bind_free(s->bind);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static const sd_conf_item sftp_conf_table[] = {
	{"host_key_dir", SD_CONF_PATH, offsetof(sftp_conf, host_key_dir), NULL,
	 "directory of the SSH host keys, generated on first start (default: <data_dir>/ssh)"},
	{"rsa_host_key", SD_CONF_BOOL, offsetof(sftp_conf, rsa_host_key), "no",
	 "also generate and offer an RSA (3072-bit) host key for old clients"},
	{"max_sessions", SD_CONF_INT, offsetof(sftp_conf, max_sessions), "64",
	 "concurrent SSH connections; more are closed at once"},
	{"max_per_ip", SD_CONF_INT, offsetof(sftp_conf, max_per_ip), "16",
	 "concurrent SSH connections from one address"},
	{"idle_timeout", SD_CONF_DURATION, offsetof(sftp_conf, idle_timeout), "10m",
	 "disconnect a session that sent nothing for this long (0 = never)"},
	{"max_auth_tries", SD_CONF_INT, offsetof(sftp_conf, max_auth_tries), "6",
	 "failed authentication attempts allowed on one connection"},
	{"handles_per_session", SD_CONF_INT, offsetof(sftp_conf, handles_per_session), "256",
	 "open files and directories per SFTP session"},
	{"max_read", SD_CONF_SIZE, offsetof(sftp_conf, max_read), "256K",
	 "largest READ reply and WRITE request (advertised with limits@openssh.com)"},
	{"bandwidth_limit", SD_CONF_SIZE, offsetof(sftp_conf, bandwidth_limit), "0",
	 "Bytes per second per user over all the user's SFTP reads and writes (every session together); 0 = unlimited."},
	{"max_startups", SD_CONF_STR, offsetof(sftp_conf, max_startups), "10:30:32",
	 "connections not logged in yet, as OpenSSH's MaxStartups start:rate:full: from start on a new one is closed with probability rate%, rising to 100% at full; keep full below max_sessions so that clients that never log in cannot take every slot"},
	{"login_grace_time", SD_CONF_DURATION, offsetof(sftp_conf, login_grace_time), "30s",
	 "a connection that has not logged in and started the sftp subsystem this long after it was accepted is closed (OpenSSH's LoginGraceTime)"},
	{NULL, 0, 0, NULL, NULL},
};

const sd_module storaged_module = {
	.abi = SD_MODULE_ABI,
	.signature = SD_MODULE_SIGNATURE,
	.name = "sftp",
	.description = "SFTP (SSH File Transfer Protocol v3) over libssh",
	.conf_table = sftp_conf_table,
	.conf_size = sizeof(sftp_conf),
	.init = sftp_init,
	.start = sftp_start,
	.stop = sftp_stop,
	.destroy = sftp_destroy,
};
