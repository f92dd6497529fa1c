/*
 * server.c - the sftp front end's SSH side (libssh 0.10.6 server API) and its
 * module descriptor.
 *
 * Threads: one accept thread waits on the listener in slices of 200 ms (so
 * stop() is noticed quickly) and starts one thread per connection. A
 * session is only ever touched by its own thread; the shared state is the
 * session list (mutex), used for reaping finished threads and by stop(),
 * and the listener's counts (its own lock).
 *
 * Session states (struct conn.state), one function per transition:
 *
 *   C_KEX --kex_done()--> C_AUTH --auth ok--> C_READY --subsystem sftp--> C_SFTP
 *     |                     |  too many failures / blocked / grace over     |
 *     |                     +--------------------------> C_END <------------+
 *     |                                                    ^  client EOF, idle,
 *     +----------------- kex failure ----------------------+  stop, protocol error
 *   C_READY --shell/exec--> C_REFUSE (message on stderr, exit 1) --> C_END
 *
 * Invariants
 *  1. Nothing reaches the engine before auth_password/auth_pubkey succeed
 *     (state >= C_READY); a public-key probe (SSH_PUBLICKEY_STATE_NONE) is
 *     only answered "this key would do", never accepted as a login.
 *  2. Admission is util's sd_listener (max_sessions / max_per_ip, counted
 *     the same way in every front end): a refused connection is closed
 *     before key exchange; an admitted one gives its slot back exactly once,
 *     when its thread ends. An address the core reports blocked gets no
 *     further tries. libssh never listens: it gets each admitted socket
 *     through ssh_bind_accept_fd().
 *  3. stop() returns only after every session thread has been joined, so no
 *     module thread touches the core afterwards. It wakes blocked sessions
 *     by shutting down their sockets (under the list lock, while the fd is
 *     still owned by the session).
 *  4. Only one session channel per connection, and only the "sftp"
 *     subsystem; pty is denied, shell/exec get a clear message and exit 1,
 *     forwarding and every other request get libssh's default refusal.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>

#include "net.h"
#include "sftp_int.h"
#include "sys.h"
#include "util.h"

#define LOGIN_GRACE_MS 120000 /* from accept to the sftp subsystem */
#define SSH_IO_TIMEOUT_S 60L  /* libssh's own blocking waits (kex, window) */
#define CLIENT_CLOSE_WAIT_MS 5000 /* after a clean end, for the client to hang up */
#define ADDR_MAX SD_ADDR_MAX

#define KEX_ALGOS "curve25519-sha256,curve25519-sha256@libssh.org"
#define CIPHERS "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com," \
		"aes256-ctr,aes192-ctr,aes128-ctr"
#define MACS "hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha2-256,hmac-sha2-512"
#define PUBKEY_TYPES "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521," \
		     "sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com," \
		     "rsa-sha2-512,rsa-sha2-256"

enum cstate { C_KEX = 0, C_AUTH, C_READY, C_SFTP, C_REFUSE, C_END };

struct srv;

struct conn {
	struct conn *next;
	struct srv *srv;
	pthread_t thr;
	ssh_session ssh;
	int fd;            /* socket, -1 once the session released it */
	int done;          /* thread finished: join and free */
	enum cstate state;
	char addr[ADDR_MAX];
	sd_session *sess;  /* set by a successful login */
	char user[SD_USERNAME_MAX + 1];
	int readonly;
	int auth_fails;
	int blocked;
	ssh_channel chan;
	struct ssh_server_callbacks_struct scb;
	struct ssh_channel_callbacks_struct ccb;
	const char *refuse_what;
	int peer_closed;   /* the client sent CHANNEL_CLOSE */
};

struct srv {
	const sd_core_api *api;
	sd_core *core;
	sftp_conf *conf;
	char *keydir;
	sd_listener *lis;   /* admission: max_sessions, max_per_ip */
	ssh_bind bind;      /* host keys and algorithms; never listens */
	pthread_t accept_thr;
	int accept_started;
	volatile int stopping;
	pthread_mutex_t mu;
	struct conn *conns; /* every started session, finished ones until reaped */
};

static void slog(struct srv *s, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void slog(struct srv *s, int level, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	if (vsnprintf(buf, sizeof(buf), fmt, ap) < 0)
		buf[0] = '\0';
	va_end(ap);
	s->api->log(s->core, level, "sftp", "%s", buf);
}

/* ------------------------------------------------------------ host keys */

/* Join dir and name into out. 0 or -ENAMETOOLONG. */
static int path_join(char *out, size_t n, const char *dir, const char *name)
{
	int w = snprintf(out, n, "%s/%s", dir, name);
	return (w < 0 || (size_t)w >= n) ? -ENAMETOOLONG : 0;
}

/* mkdir -p with mode 0700 for the last component. 0 or -errno. */
static int make_dir(const char *path)
{
	char tmp[PATH_MAX];
	size_t i, n = strlen(path);
	if (n == 0 || n >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, path, n + 1);
	for (i = 1; i <= n; i++) {
		if (tmp[i] == '/' || tmp[i] == '\0') {
			char c = tmp[i];
			tmp[i] = '\0';
			if (mkdir(tmp, c == '\0' ? 0700 : 0750) < 0 && errno != EEXIST)
				return -errno;
			tmp[i] = c;
		}
	}
	return 0;
}

/* Write "type base64 comment" next to a private key, for operators. */
static void write_pub(struct srv *s, ssh_key key, const char *path)
{
	char pub[PATH_MAX];
	char *b64 = NULL;
	FILE *f;
	if (snprintf(pub, sizeof(pub), "%s.pub", path) >= (int)sizeof(pub))
		return;
	if (ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK)
		return;
	f = fopen(pub, "w");
	if (f != NULL) {
		fprintf(f, "%s %s storaged-host-key\n", ssh_key_type_to_char(ssh_key_type(key)), b64);
		fclose(f);
	} else {
		slog(s, SD_LOG_WARN, "event=host_key_pub_failed path=\"%s\" err=\"%s\"", pub,
		     strerror(errno));
	}
	ssh_string_free_char(b64);
}

/* Load the key at path, generating it first if missing (mode 0600), log
 * its fingerprint and give it to the bind. 0 or -SD_ECONFIG (logged). */
static int host_key(struct srv *s, enum ssh_keytypes_e type, int bits, const char *file)
{
	char path[PATH_MAX];
	ssh_key key = NULL;
	unsigned char *hash = NULL;
	size_t hlen = 0;
	char *fp;
	int generated = 0;

	if (path_join(path, sizeof(path), s->keydir, file) < 0) {
		slog(s, SD_LOG_ERROR, "event=host_key_failed reason=\"path too long\"");
		return -SD_ECONFIG;
	}
	if (access(path, F_OK) != 0) {
		int fd;
		if (ssh_pki_generate(type, bits, &key) != SSH_OK) {
			slog(s, SD_LOG_ERROR, "event=host_key_failed path=\"%s\" reason=\"generate\"", path);
			return -SD_ECONFIG;
		}
		/* create it 0600 first: the export keeps the mode of an existing file */
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 || close(fd) < 0 ||
		    ssh_pki_export_privkey_file(key, NULL, NULL, NULL, path) != SSH_OK ||
		    chmod(path, 0600) < 0) {
			slog(s, SD_LOG_ERROR, "event=host_key_failed path=\"%s\" reason=\"cannot write: %s\"",
			     path, strerror(errno));
			unlink(path);
			ssh_key_free(key);
			return -SD_ECONFIG;
		}
		write_pub(s, key, path);
		ssh_key_free(key);
		key = NULL;
		generated = 1;
	}
	if (ssh_pki_import_privkey_file(path, NULL, NULL, NULL, &key) != SSH_OK) {
		slog(s, SD_LOG_ERROR, "event=host_key_failed path=\"%s\" reason=\"cannot load key\"", path);
		return -SD_ECONFIG;
	}
	if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) == 0) {
		fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
		slog(s, SD_LOG_INFO, "event=host_key type=%s path=\"%s\" fingerprint=%s generated=%d",
		     ssh_key_type_to_char(ssh_key_type(key)), path, fp ? fp : "?", generated);
		ssh_string_free_char(fp);
		ssh_clean_pubkey_hash(&hash);
	}
	ssh_key_free(key);
	if (ssh_bind_options_set(s->bind, SSH_BIND_OPTIONS_HOSTKEY, path) != SSH_OK) {
		slog(s, SD_LOG_ERROR, "event=host_key_failed path=\"%s\" reason=\"%s\"", path,
		     ssh_get_error(s->bind));
		return -SD_ECONFIG;
	}
	return 0;
}

/* ------------------------------------------------------------ auth */

/* May this connection try (again)? Not after max_auth_tries failures, nor
 * from an address the core has locked out (remembered for the loop). */
static int addr_allowed(struct conn *c)
{
	struct srv *s = c->srv;
	if (c->auth_fails >= s->conf->max_auth_tries)
		return 0;
	if (s->api->auth_allowed(s->core, c->addr) < 0) {
		c->blocked = 1;
		return 0;
	}
	return 1;
}

static int auth_done(struct conn *c, const char *method, sd_session *sess)
{
	sd_session_info si;
	if (c->srv->api->session_info(sess, &si) < 0) {
		c->srv->api->session_close(sess);
		return SSH_AUTH_DENIED;
	}
	c->sess = sess;
	snprintf(c->user, sizeof(c->user), "%s", si.user);
	c->readonly = (si.flags & SD_USER_READONLY) != 0;
	c->state = C_READY;
	slog(c->srv, SD_LOG_INFO, "event=login user=%s addr=%s method=%s%s", c->user, c->addr, method,
	     c->readonly ? " readonly=1" : "");
	c->srv->api->metric_add(c->srv->core, "storaged_logins_total",
				"frontend=\"sftp\",result=\"ok\"", 1);
	return SSH_AUTH_SUCCESS;
}

/* A client-chosen name made safe for a log line: printable ASCII without
 * quotes or backslashes, at most SD_USERNAME_MAX bytes. */
static void log_name(char *out, size_t n, const char *in)
{
	size_t i;
	for (i = 0; i + 1 < n && in[i] != '\0'; i++) {
		unsigned char ch = (unsigned char)in[i];
		out[i] = (ch < 0x21 || ch > 0x7e || ch == '"' || ch == '\\') ? '?' : (char)ch;
	}
	out[i] = '\0';
}

static int auth_failed(struct conn *c, const char *user, const char *method, int rc)
{
	char name[SD_USERNAME_MAX + 1];
	log_name(name, sizeof(name), user);
	c->auth_fails++;
	slog(c->srv, SD_LOG_INFO, "event=login_failed user=\"%s\" addr=%s method=%s reason=\"%s\" tries=%d",
	     name, c->addr, method, c->srv->api->strerror(rc), c->auth_fails);
	c->srv->api->metric_add(c->srv->core, "storaged_logins_total",
				"frontend=\"sftp\",result=\"fail\"", 1);
	if (rc == -SD_EBLOCKED)
		c->blocked = 1;
	return SSH_AUTH_DENIED;
}

static int cb_auth_password(ssh_session ssh, const char *user, const char *password, void *ud)
{
	struct conn *c = ud;
	sd_session *sess = NULL;
	int rc;
	(void)ssh;
	if (c->state != C_AUTH || !addr_allowed(c))
		return SSH_AUTH_DENIED;
	rc = c->srv->api->auth_password(c->srv->core, user, password, c->addr, "sftp", &sess);
	if (rc < 0)
		return auth_failed(c, user, "password", rc);
	return auth_done(c, "password", sess);
}

static int cb_auth_pubkey(ssh_session ssh, const char *user, struct ssh_key_struct *key,
			  char sig_state, void *ud)
{
	struct conn *c = ud;
	char *b64 = NULL;
	const char *type;
	sd_session *sess = NULL;
	int rc, probe;
	(void)ssh;
	if (c->state != C_AUTH || !addr_allowed(c))
		return SSH_AUTH_DENIED;
	if (sig_state != SSH_PUBLICKEY_STATE_NONE && sig_state != SSH_PUBLICKEY_STATE_VALID)
		return auth_failed(c, user, "publickey", -SD_EAUTH); /* bad signature */
	probe = sig_state == SSH_PUBLICKEY_STATE_NONE;
	type = ssh_key_type_to_char(ssh_key_type(key));
	if (type == NULL || ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK)
		return SSH_AUTH_DENIED;
	rc = c->srv->api->auth_pubkey(c->srv->core, user, type, b64, c->addr, "sftp",
				      probe ? SD_AUTH_PROBE : 0, probe ? NULL : &sess);
	ssh_string_free_char(b64);
	if (probe) /* "this key would do": libssh answers PK_OK; no login yet */
		return rc == 0 ? SSH_AUTH_SUCCESS : SSH_AUTH_DENIED;
	if (rc < 0)
		return auth_failed(c, user, "publickey", rc);
	return auth_done(c, "publickey", sess);
}

static int cb_auth_none(ssh_session ssh, const char *user, void *ud)
{
	(void)ssh;
	(void)user;
	(void)ud;
	return SSH_AUTH_DENIED;
}

/* ------------------------------------------------------------ channels */

static int cb_pty(ssh_session ssh, ssh_channel ch, const char *term, int w, int h, int pw,
		  int ph, void *ud)
{
	(void)ssh, (void)ch, (void)term, (void)w, (void)h, (void)pw, (void)ph, (void)ud;
	return -1; /* no terminals here */
}

static int cb_shell(ssh_session ssh, ssh_channel ch, void *ud)
{
	struct conn *c = ud;
	(void)ssh, (void)ch;
	if (c->state != C_READY)
		return 1;
	c->refuse_what = "shell";
	c->state = C_REFUSE;
	return 0; /* accepted, to be able to print why it ends at once */
}

static int cb_exec(ssh_session ssh, ssh_channel ch, const char *cmd, void *ud)
{
	struct conn *c = ud;
	(void)ssh, (void)ch, (void)cmd;
	if (c->state != C_READY)
		return 1;
	c->refuse_what = "exec";
	c->state = C_REFUSE;
	return 0;
}

static int cb_env(ssh_session ssh, ssh_channel ch, const char *n, const char *v, void *ud)
{
	(void)ssh, (void)ch, (void)n, (void)v, (void)ud;
	return 1; /* ignored: nothing runs here */
}

static int cb_subsystem(ssh_session ssh, ssh_channel ch, const char *sub, void *ud)
{
	struct conn *c = ud;
	(void)ssh, (void)ch;
	if (c->state != C_READY || strcmp(sub, "sftp") != 0)
		return 1;
	c->state = C_SFTP;
	return 0;
}

static void cb_close(ssh_session ssh, ssh_channel ch, void *ud)
{
	struct conn *c = ud;
	(void)ssh, (void)ch;
	c->peer_closed = 1;
}

static ssh_channel cb_channel_open(ssh_session ssh, void *ud)
{
	struct conn *c = ud;
	if (c->state != C_READY || c->chan != NULL)
		return NULL; /* invariant 4: one session channel, after auth */
	c->chan = ssh_channel_new(ssh);
	if (c->chan == NULL)
		return NULL;
	memset(&c->ccb, 0, sizeof(c->ccb));
	c->ccb.userdata = c;
	c->ccb.channel_pty_request_function = cb_pty;
	c->ccb.channel_shell_request_function = cb_shell;
	c->ccb.channel_exec_request_function = cb_exec;
	c->ccb.channel_env_request_function = cb_env;
	c->ccb.channel_subsystem_request_function = cb_subsystem;
	c->ccb.channel_close_function = cb_close;
	ssh_callbacks_init(&c->ccb);
	ssh_set_channel_callbacks(c->chan, &c->ccb);
	return c->chan;
}

/* ------------------------------------------------------------ sessions */

/* Close the channel the way sshd does (exit-status, EOF, CLOSE) and give
 * the client up to two seconds to close its side, so that scp and sftp see
 * a clean exit rather than "connection closed by remote host". */
static void end_channel(struct conn *c, int status)
{
	ssh_event ev;
	int64_t until = sd__sftp_mono_ms() + 2000;
	ssh_channel_request_send_exit_status(c->chan, status);
	ssh_channel_send_eof(c->chan);
	ssh_channel_close(c->chan);
	if (c->srv->stopping)
		return;
	ev = ssh_event_new();
	if (ev == NULL || ssh_event_add_session(ev, c->ssh) != SSH_OK) {
		if (ev)
			ssh_event_free(ev);
		return;
	}
	while (!c->peer_closed && sd__sftp_mono_ms() < until &&
	       !(ssh_get_status(c->ssh) & (SSH_CLOSED | SSH_CLOSED_ERROR)))
		if (ssh_event_dopoll(ev, 200) == SSH_ERROR)
			break;
	ssh_event_remove_session(ev, c->ssh);
	ssh_event_free(ev);
}

/* After a clean end, let the client close the connection first, as with
 * sshd: clients that close their own socket afterwards (Go's x/crypto/ssh,
 * rclone) report an error when the server hangs up first. Bounded by ms;
 * any new channel is refused meanwhile (one session channel, invariant 4). */
static void wait_client_gone(struct conn *c, int64_t ms)
{
	ssh_event ev;
	int64_t until = sd__sftp_mono_ms() + ms;
	if (c->srv->stopping)
		return;
	ev = ssh_event_new();
	if (ev == NULL || ssh_event_add_session(ev, c->ssh) != SSH_OK) {
		if (ev)
			ssh_event_free(ev);
		return;
	}
	while (sd__sftp_mono_ms() < until && !c->srv->stopping &&
	       !(ssh_get_status(c->ssh) & (SSH_CLOSED | SSH_CLOSED_ERROR)))
		if (ssh_event_dopoll(ev, 200) == SSH_ERROR)
			break;
	ssh_event_remove_session(ev, c->ssh);
	ssh_event_free(ev);
}

static void refuse_command(struct conn *c)
{
	static const char msg[] =
	    "storaged: this server offers SFTP only; shell and command execution are refused\r\n";
	ssh_channel_write_stderr(c->chan, msg, (uint32_t)(sizeof(msg) - 1));
	end_channel(c, 1);
	slog(c->srv, SD_LOG_INFO, "event=refused user=%s addr=%s what=%s", c->user, c->addr,
	     c->refuse_what);
}

/* Key exchange and authentication up to the sftp subsystem request.
 * 0 when state is C_SFTP; -1 otherwise (reason logged). */
static int handshake(struct conn *c)
{
	struct srv *s = c->srv;
	ssh_event ev;
	int64_t deadline = sd__sftp_mono_ms() + LOGIN_GRACE_MS;
	int rc = 0;

	if (ssh_handle_key_exchange(c->ssh) != SSH_OK) {
		slog(s, SD_LOG_INFO, "event=kex_failed addr=%s reason=\"%s\"", c->addr,
		     ssh_get_error(c->ssh));
		return -1;
	}
	c->state = C_AUTH;
	ev = ssh_event_new();
	if (ev == NULL || ssh_event_add_session(ev, c->ssh) != SSH_OK) {
		if (ev)
			ssh_event_free(ev);
		return -1;
	}
	while (c->state == C_AUTH || c->state == C_READY) {
		if (s->stopping) {
			rc = -1;
			break;
		}
		if (c->blocked) {
			ssh_session_set_disconnect_message(c->ssh, "too many failed logins from this address");
			slog(s, SD_LOG_INFO, "event=disconnect addr=%s reason=blocked", c->addr);
			rc = -1;
			break;
		}
		if (c->auth_fails >= s->conf->max_auth_tries) {
			ssh_session_set_disconnect_message(c->ssh, "too many authentication failures");
			slog(s, SD_LOG_INFO, "event=disconnect addr=%s reason=max_auth_tries", c->addr);
			rc = -1;
			break;
		}
		if (sd__sftp_mono_ms() > deadline) {
			ssh_session_set_disconnect_message(c->ssh, "login grace time over");
			slog(s, SD_LOG_INFO, "event=disconnect addr=%s reason=grace_time", c->addr);
			rc = -1;
			break;
		}
		if (ssh_event_dopoll(ev, 500) == SSH_ERROR ||
		    (ssh_get_status(c->ssh) & (SSH_CLOSED | SSH_CLOSED_ERROR))) {
			rc = -1;
			break;
		}
		if (c->chan != NULL && ssh_channel_is_eof(c->chan) && c->state == C_READY) {
			rc = -1;
			break;
		}
	}
	ssh_event_remove_session(ev, c->ssh);
	ssh_event_free(ev);
	if (c->state == C_REFUSE) {
		refuse_command(c);
		return -1;
	}
	return (rc == 0 && c->state == C_SFTP) ? 0 : -1;
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct srv *s = c->srv;
	long tmo = SSH_IO_TIMEOUT_S;
	int rc;

	ssh_options_set(c->ssh, SSH_OPTIONS_TIMEOUT, &tmo);
	ssh_set_auth_methods(c->ssh, SSH_AUTH_METHOD_PASSWORD | SSH_AUTH_METHOD_PUBLICKEY);
	memset(&c->scb, 0, sizeof(c->scb));
	c->scb.userdata = c;
	c->scb.auth_password_function = cb_auth_password;
	c->scb.auth_pubkey_function = cb_auth_pubkey;
	c->scb.auth_none_function = cb_auth_none;
	c->scb.channel_open_request_session_function = cb_channel_open;
	ssh_callbacks_init(&c->scb);
	ssh_set_server_callbacks(c->ssh, &c->scb);

	if (handshake(c) == 0) {
		sftp_ctx x;
		int64_t t0 = sd__sftp_mono_ms();
		memset(&x, 0, sizeof(x));
		x.api = s->api;
		x.core = s->core;
		x.sess = c->sess;
		x.user = c->user;
		x.readonly = c->readonly;
		x.addr = c->addr;
		x.ssh = c->ssh;
		x.chan = c->chan;
		x.max_read = (uint32_t)s->conf->max_read;
		x.max_handles = (int)s->conf->handles_per_session;
		x.idle_ms = s->conf->idle_timeout;
		x.stopping = &s->stopping;
		rc = sd__sftp_serve(&x);
		slog(s, SD_LOG_INFO, "event=session_end user=%s addr=%s ms=%" PRId64 " reason=\"%s\"",
		     c->user, c->addr, sd__sftp_mono_ms() - t0,
		     rc == 0 ? "client closed" : rc == -ETIMEDOUT ? "idle timeout"
		     : (rc == -ECANCELED || s->stopping) ? "server stopping"
		     : rc == -EPROTO ? "protocol error"
		     : rc == -EKEYREVOKED ? "authentication no longer valid" : "connection lost");
		if (rc == -EKEYREVOKED)
			ssh_session_set_disconnect_message(c->ssh, "authentication no longer valid");
		if (rc == -ETIMEDOUT)
			ssh_session_set_disconnect_message(c->ssh, "idle timeout");
		if (c->chan != NULL && ssh_channel_is_open(c->chan))
			end_channel(c, rc == 0 ? 0 : 1);
		if (rc == 0)
			wait_client_gone(c, CLIENT_CLOSE_WAIT_MS);
	}
	/* release the socket under the lock: stop() may be shutting it down */
	pthread_mutex_lock(&s->mu);
	c->fd = -1;
	pthread_mutex_unlock(&s->mu);
	if (c->chan != NULL)
		ssh_channel_free(c->chan);
	c->chan = NULL;
	s->api->session_close(c->sess); /* abandons anything still open */
	c->sess = NULL;
	ssh_disconnect(c->ssh);
	ssh_free(c->ssh);
	c->ssh = NULL;
	sd_listener_leave(s->lis, c->addr); /* invariant 2: the slot, once */
	pthread_mutex_lock(&s->mu);
	c->done = 1;
	pthread_mutex_unlock(&s->mu);
	s->api->metric_add(s->core, "storaged_sessions", "frontend=\"sftp\"", -1);
	return NULL;
}

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

/* Start the thread of an admitted connection (invariant 2): libssh gets
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
		slog(s, SD_LOG_WARN, "event=accept_failed addr=%s reason=\"%s\"", addr,
		     ssh ? ssh_get_error(s->bind) : "out of memory");
		/* the session owns the socket once it holds it */
		if (ssh == NULL || ssh_get_fd(ssh) != fd)
			sd_sys_close(fd);
		ssh_free(ssh);
		sd_listener_leave(s->lis, addr);
		return;
	}
	c = sd_xcalloc(1, sizeof(*c));
	c->srv = s;
	c->ssh = ssh;
	c->fd = fd;
	c->state = C_KEX;
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	pthread_mutex_lock(&s->mu);
	c->next = s->conns;
	s->conns = c;
	rc = pthread_create(&c->thr, NULL, conn_main, c);
	if (rc != 0)
		s->conns = c->next;
	pthread_mutex_unlock(&s->mu);
	if (rc != 0) {
		slog(s, SD_LOG_WARN, "event=refused addr=%s reason=thread", addr);
		ssh_free(ssh);
		free(c);
		sd_listener_leave(s->lis, addr);
		return;
	}
	s->api->metric_add(s->core, "storaged_sessions", "frontend=\"sftp\"", 1);
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
			slog(s, SD_LOG_WARN, "event=accept_failed reason=\"%s\"", strerror(-r));
			sd_sleep_ms(100);
			continue;
		}
		if (r == 0)
			continue;
		if (admit != SD_ADMIT_OK || s->stopping) {
			if (admit == SD_ADMIT_OK)
				sd_listener_leave(s->lis, addr);
			else
				slog(s, SD_LOG_WARN, "event=refused addr=%s reason=%s", addr,
				     admit == SD_ADMIT_FULL ? "max_sessions" : "max_per_ip");
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
		slog(s, SD_LOG_ERROR, "event=init_failed reason=\"cannot set %s: %s\"", what,
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
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	*state = s;
	s->api = api;
	s->core = core;
	s->conf = conf;
	pthread_mutex_init(&s->mu, NULL);
	if (conf->host_key_dir != NULL && conf->host_key_dir[0] != '\0') {
		s->keydir = strdup(conf->host_key_dir);
	} else {
		/* <data_dir>/ssh, as before the engine kept the data directory
		 * to itself */
		char dir[PATH_MAX];
		if ((rc = api->state_dir(core, "ssh", dir, sizeof(dir))) < 0) {
			slog(s, SD_LOG_ERROR, "event=init_failed reason=\"cannot create the ssh state "
			     "directory: %s\"", api->strerror(rc));
			return -SD_ECONFIG;
		}
		s->keydir = strdup(dir);
	}
	if (s->keydir == NULL)
		return -ENOMEM;
	if ((rc = make_dir(s->keydir)) < 0) {
		slog(s, SD_LOG_ERROR, "event=init_failed reason=\"cannot create host_key_dir %s: %s\"",
		     s->keydir, strerror(-rc));
		return -SD_ECONFIG;
	}

	ssh_init();
	s->bind = ssh_bind_new();
	if (s->bind == NULL)
		return -ENOMEM;
	snprintf(hostalgos, sizeof(hostalgos), "ssh-ed25519%s",
		 conf->rsa_host_key ? ",rsa-sha2-512,rsa-sha2-256" : "");
	if ((rc = set_bind(s, SSH_BIND_OPTIONS_PROCESS_CONFIG, &no, "process_config")) < 0 ||
	    (rc = host_key(s, SSH_KEYTYPE_ED25519, 0, "ssh_host_ed25519_key")) < 0 ||
	    (conf->rsa_host_key && (rc = host_key(s, SSH_KEYTYPE_RSA, 3072, "ssh_host_rsa_key")) < 0) ||
	    (rc = set_bind(s, SSH_BIND_OPTIONS_KEY_EXCHANGE, KEX_ALGOS, "kex")) < 0 ||
	    (rc = set_bind(s, SSH_BIND_OPTIONS_CIPHERS_C_S, CIPHERS, "ciphers")) < 0 ||
	    (rc = set_bind(s, SSH_BIND_OPTIONS_CIPHERS_S_C, CIPHERS, "ciphers")) < 0 ||
	    (rc = set_bind(s, SSH_BIND_OPTIONS_HMAC_C_S, MACS, "macs")) < 0 ||
	    (rc = set_bind(s, SSH_BIND_OPTIONS_HMAC_S_C, MACS, "macs")) < 0 ||
	    (rc = set_bind(s, SSH_BIND_OPTIONS_HOSTKEY_ALGORITHMS, hostalgos, "host key algorithms")) < 0 ||
	    (rc = set_bind(s, SSH_BIND_OPTIONS_PUBKEY_ACCEPTED_KEY_TYPES, PUBKEY_TYPES, "key types")) < 0)
		return rc;
	s->lis = sd_listener_open(host, port, (int)conf->max_sessions, (int)conf->max_per_ip, err,
				  sizeof(err));
	if (s->lis == NULL) {
		slog(s, SD_LOG_ERROR, "event=init_failed reason=\"%s\"", err);
		return -SD_ECONFIG;
	}
	slog(s, SD_LOG_INFO, "event=listening addr=%s port=%d", host, port);
	return 0;
}

static int sftp_start(void *state)
{
	struct srv *s = state;
	int rc = pthread_create(&s->accept_thr, NULL, accept_main, s);
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
}

static void sftp_destroy(void *state)
{
	struct srv *s = state;
	if (s == NULL)
		return;
	sd_listener_close(s->lis);
	if (s->bind != NULL)
		ssh_bind_free(s->bind);
	pthread_mutex_destroy(&s->mu);
	free(s->keydir);
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
