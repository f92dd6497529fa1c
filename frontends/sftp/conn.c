/*
 * conn.c - one SSH connection of the sftp front end, on its own thread:
 * key exchange, authentication through the engine, one session channel,
 * the sftp subsystem (serve.c), and a clean end.
 *
 * Connection states (struct conn.state), one function per transition:
 *
 *   C_KEX --handshake(): kex done--> C_AUTH --auth_done()--> C_READY
 *   C_READY --cb_subsystem("sftp")--> C_SFTP --sd__sftp_serve() returns--> C_END
 *   C_AUTH: too many failures / address blocked / grace over --> C_END
 *   C_KEX: kex failure --> C_END
 *   C_READY --cb_shell/cb_exec (not a hash command) on the first channel-->
 *           C_REFUSE --refuse_command(): message on stderr, exit 1--> C_END
 *   C_READY, C_SFTP --exec of a hash command on any channel--> served
 *           between polls (sd__sftp_exec_pump), the state unchanged
 *   C_SFTP ends on client EOF, idle timeout, module stop, protocol error, or
 *   credentials no longer valid (the engine said -SD_EAUTH: the channel is
 *   closed with exit status 1 and disconnect message "authentication no
 *   longer valid").
 *
 * Invariants
 *  1. Nothing reaches the engine before auth_password/auth_pubkey succeed
 *     (state >= C_READY); a public-key probe (SSH_PUBLICKEY_STATE_NONE) is
 *     only answered "this key would do", never accepted as a login and
 *     never makes a session.
 *  2. The engine session made by the login is closed when the connection
 *     ends, whatever the path (it abandons anything still open), and the
 *     listener slot is given back exactly once, after that.
 *  3. Session channels only after login, at most SFTP_MAX_CHANNELS at
 *     once: one "sftp" subsystem, and exec channels for the hash commands
 *     (exec.c: sha256sum, md5sum, sha1sum on the user's files). pty is
 *     denied; any other exec or shell gets a clear message and exit 1 (on
 *     the first channel this ends the connection, as before); forwarding
 *     and every other request get libssh's default refusal.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sftp_int.h"
#include "util.h"

#define SSH_IO_TIMEOUT_S 60L  /* libssh's own blocking waits (kex, window) */
#define CLIENT_CLOSE_WAIT_MS 5000 /* after a clean end, for the client to hang up */

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
	c->bws = sd_bw_acquire(c->srv->bw, si.uid);
	snprintf(c->user, sizeof(c->user), "%s", si.user);
	c->readonly = (si.flags & SD_USER_READONLY) != 0;
	c->state = C_READY;
	if (c->startup) { /* logged in: its pre-login slot goes */
		sd_startups_leave(&c->srv->startups);
		c->startup = 0;
	}
	SLOG(c->srv, SD_LOG_INFO, "event=login user=%s addr=%s method=%s%s", c->user, c->addr, method,
	     c->readonly ? " readonly=1" : "");
	c->srv->api->metric_add(c->srv->core, "storaged_logins_total",
				"frontend=\"sftp\",result=\"ok\"", 1);
	return SSH_AUTH_SUCCESS;
}

static int auth_failed(struct conn *c, const char *user, const char *method, int rc)
{
	char name[SD_USERNAME_MAX + 1];
	sd__sftp_lp(name, sizeof(name), user);
	c->auth_fails++;
	SLOG(c->srv, SD_LOG_INFO, "event=login_failed user=\"%s\" addr=%s method=%s reason=\"%s\" tries=%d",
	     name, c->addr, method, c->srv->api->strerror(rc), c->auth_fails);
	c->srv->api->metric_add(c->srv->core, "storaged_logins_total",
				rc == -SD_EBLOCKED ? "frontend=\"sftp\",result=\"blocked\""
						   : "frontend=\"sftp\",result=\"failed\"",
				1);
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

static int is_hash_cmd(const char *cmd)
{
	static const char *const names[] = {"sha256sum", "md5sum", "sha1sum", NULL};
	while (*cmd == ' ' || *cmd == '\t')
		cmd++;
	for (int i = 0; names[i]; i++) {
		size_t n = strlen(names[i]);
		if (strncmp(cmd, names[i], n) == 0 && (cmd[n] == '\0' || cmd[n] == ' ' || cmd[n] == '\t'))
			return 1;
	}
	return 0;
}

/* A shell or exec request on channel x. The hash commands run (exec.c);
 * anything else on the connection's first channel ends the connection as
 * always (C_REFUSE), and on a channel beside the SFTP one gets the same
 * refusal on that channel only. */
static int take_command(struct xchan *x, const char *what, const char *cmd)
{
	struct conn *c = x->c;
	if (x->pending || x->ch == c->chan)
		return 1;
	if (c->state == C_READY && !c->chan && !is_hash_cmd(cmd)) {
		c->chan = x->ch;
		c->refuse_what = what;
		c->state = C_REFUSE;
		return 0; /* accepted, to be able to print why it ends at once */
	}
	if (c->state != C_READY && c->state != C_SFTP)
		return 1;
	x->cmd = sd_xstrdup(cmd);
	x->pending = 1;
	return 0;
}

static int cb_shell(ssh_session ssh, ssh_channel ch, void *ud)
{
	(void)ssh, (void)ch;
	return take_command(ud, "shell", "");
}

static int cb_exec(ssh_session ssh, ssh_channel ch, const char *cmd, void *ud)
{
	(void)ssh, (void)ch;
	return take_command(ud, "exec", cmd);
}

static int cb_env(ssh_session ssh, ssh_channel ch, const char *n, const char *v, void *ud)
{
	(void)ssh, (void)ch, (void)n, (void)v, (void)ud;
	return 1; /* ignored: nothing runs here */
}

static int cb_subsystem(ssh_session ssh, ssh_channel ch, const char *sub, void *ud)
{
	struct xchan *x = ud;
	struct conn *c = x->c;
	(void)ssh, (void)ch;
	if (c->state != C_READY || c->chan || x->pending || strcmp(sub, "sftp") != 0)
		return 1;
	c->chan = x->ch;
	c->state = C_SFTP;
	return 0;
}

static void cb_close(ssh_session ssh, ssh_channel ch, void *ud)
{
	struct xchan *x = ud;
	(void)ssh, (void)ch;
	x->closed = 1;
	if (x->ch == x->c->chan)
		x->c->peer_closed = 1;
}

static ssh_channel cb_channel_open(ssh_session ssh, void *ud)
{
	struct conn *c = ud;
	int slot = -1;
	if (c->state != C_READY && c->state != C_SFTP)
		return NULL; /* invariant 3: after auth only */
	for (int i = 0; i < SFTP_MAX_CHANNELS && slot < 0; i++)
		if (!c->xch[i])
			slot = i;
	if (slot < 0)
		return NULL;
	struct xchan *x = sd_xcalloc(1, sizeof *x);
	x->c = c;
	x->ch = ssh_channel_new(ssh);
	if (x->ch == NULL) {
		free(x);
		return NULL;
	}
	x->cb.userdata = x;
	x->cb.channel_pty_request_function = cb_pty;
	x->cb.channel_shell_request_function = cb_shell;
	x->cb.channel_exec_request_function = cb_exec;
	x->cb.channel_env_request_function = cb_env;
	x->cb.channel_subsystem_request_function = cb_subsystem;
	x->cb.channel_close_function = cb_close;
	ssh_callbacks_init(&x->cb);
	ssh_set_channel_callbacks(x->ch, &x->cb);
	c->xch[slot] = x;
	return x->ch;
}

/* Close a channel the way sshd does after a command: exit-status, EOF,
 * CLOSE; libssh keeps it until the client's CLOSE arrives. */
static void xchan_free(struct conn *c, int i)
{
	struct xchan *x = c->xch[i];
	ssh_remove_channel_callbacks(x->ch, &x->cb);
	if (x->ch != c->chan)
		ssh_channel_free(x->ch);
	free(x->cmd);
	free(x);
	c->xch[i] = NULL;
}

int sd__sftp_exec_pump(void *arg)
{
	struct conn *c = arg;
	int served = 0;
	for (int i = 0; i < SFTP_MAX_CHANNELS; i++) {
		struct xchan *x = c->xch[i];
		if (!x || x->ch == c->chan)
			continue;
		if (x->pending) {
			int st = sd__sftp_exec(c, x->ch, x->cmd);
			ssh_channel_request_send_exit_status(x->ch, st);
			ssh_channel_send_eof(x->ch);
			ssh_channel_close(x->ch);
			xchan_free(c, i);
			served++;
		} else if (x->closed) {
			xchan_free(c, i); /* opened and closed without a request */
		}
	}
	return served;
}

/* ------------------------------------------------------------ sessions */

/* Close the channel the way sshd does (exit-status, EOF, CLOSE) and give
 * the client up to two seconds to close its side, so that scp and sftp see
 * a clean exit rather than "connection closed by remote host". */
static void end_channel(struct conn *c, int status)
{
	ssh_event ev;
	int64_t until = sd_mono_ms() + 2000;
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
	while (!c->peer_closed && sd_mono_ms() < until &&
	       !(ssh_get_status(c->ssh) & (SSH_CLOSED | SSH_CLOSED_ERROR)))
		if (ssh_event_dopoll(ev, 200) == SSH_ERROR)
			break;
	ssh_event_remove_session(ev, c->ssh);
	ssh_event_free(ev);
}

/* After a clean end, let the client close the connection first, as with
 * sshd: clients that close their own socket afterwards (Go's x/crypto/ssh,
 * rclone) report an error when the server hangs up first. Bounded by ms;
 * any new channel is refused meanwhile (one session channel, invariant 3). */
static void wait_client_gone(struct conn *c, int64_t ms)
{
	ssh_event ev;
	int64_t until = sd_mono_ms() + ms;
	if (c->srv->stopping)
		return;
	ev = ssh_event_new();
	if (ev == NULL || ssh_event_add_session(ev, c->ssh) != SSH_OK) {
		if (ev)
			ssh_event_free(ev);
		return;
	}
	while (sd_mono_ms() < until && !c->srv->stopping &&
	       !(ssh_get_status(c->ssh) & (SSH_CLOSED | SSH_CLOSED_ERROR)))
		if (ssh_event_dopoll(ev, 200) == SSH_ERROR)
			break;
	ssh_event_remove_session(ev, c->ssh);
	ssh_event_free(ev);
}

static void refuse_command(struct conn *c)
{
	static const char msg[] = SFTP_REFUSE_MSG;
	ssh_channel_write_stderr(c->chan, msg, (uint32_t)(sizeof(msg) - 1));
	end_channel(c, 1);
	SLOG(c->srv, SD_LOG_INFO, "event=refused user=%s addr=%s what=%s", c->user, c->addr,
	     c->refuse_what);
}

/* Key exchange and authentication up to the sftp subsystem request.
 * 0 when state is C_SFTP; -1 otherwise (reason logged). */
static int handshake(struct conn *c)
{
	struct srv *s = c->srv;
	ssh_event ev;
	int64_t deadline = sd_mono_ms() + s->conf->login_grace_time;
	long tmo = (long)((s->conf->login_grace_time + 999) / 1000);
	int rc = 0;

	/* a client that stays silent before or during the key exchange is
	 * bounded by the grace time too */
	if (tmo < SSH_IO_TIMEOUT_S)
		ssh_options_set(c->ssh, SSH_OPTIONS_TIMEOUT, &tmo);
	rc = ssh_handle_key_exchange(c->ssh);
	tmo = SSH_IO_TIMEOUT_S;
	ssh_options_set(c->ssh, SSH_OPTIONS_TIMEOUT, &tmo);
	if (rc != SSH_OK) {
		SLOG(s, SD_LOG_INFO, "event=kex_failed addr=%s reason=\"%s\"", c->addr,
		     ssh_get_error(c->ssh));
		return -1;
	}
	rc = 0;
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
			SLOG(s, SD_LOG_INFO, "event=disconnect addr=%s reason=blocked", c->addr);
			rc = -1;
			break;
		}
		if (c->auth_fails >= s->conf->max_auth_tries) {
			ssh_session_set_disconnect_message(c->ssh, "too many authentication failures");
			SLOG(s, SD_LOG_INFO, "event=disconnect addr=%s reason=max_auth_tries", c->addr);
			rc = -1;
			break;
		}
		if (sd_mono_ms() > deadline) {
			ssh_session_set_disconnect_message(c->ssh, "login grace time over");
			SLOG(s, SD_LOG_INFO, "event=disconnect addr=%s reason=grace_time", c->addr);
			rc = -1;
			break;
		}
		if (ssh_event_dopoll(ev, 500) == SSH_ERROR ||
		    (ssh_get_status(c->ssh) & (SSH_CLOSED | SSH_CLOSED_ERROR))) {
			rc = -1;
			break;
		}
		if (c->state == C_READY)
			sd__sftp_exec_pump(c); /* "ssh host sha256sum f" before any sftp */
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

void *sd__sftp_conn_main(void *arg)
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
		int64_t t0 = sd_mono_ms();
		/* the key exchange and the login used deep stacks and many
		 * short-lived allocations (OpenSSL): give those pages back
		 * before the session settles down (wire.c invariant 5) */
		sd__sftp_release_memory(1);
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
		x.pool = s->pool;
		x.bw = s->bw;
		x.bws = c->bws;
		/* exec channels beside the sftp one are served between requests */
		x.ev = ssh_event_new();
		if (x.ev && ssh_event_add_session(x.ev, c->ssh) != SSH_OK) {
			ssh_event_free(x.ev);
			x.ev = NULL;
		}
		x.aux = sd__sftp_exec_pump;
		x.aux_arg = c;
		rc = sd__sftp_serve(&x);
		if (x.ev) {
			ssh_event_remove_session(x.ev, c->ssh);
			ssh_event_free(x.ev);
		}
		SLOG(s, SD_LOG_INFO, "event=session_end user=%s addr=%s ms=%" PRId64 " reason=\"%s\"",
		     c->user, c->addr, sd_mono_ms() - t0,
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
	for (int i = 0; i < SFTP_MAX_CHANNELS; i++)
		if (c->xch[i])
			xchan_free(c, i);
	if (c->chan != NULL)
		ssh_channel_free(c->chan);
	c->chan = NULL;
	sd_bw_release(s->bw, c->bws);
	c->bws = NULL;
	s->api->session_close(c->sess); /* abandons anything still open */
	c->sess = NULL;
	ssh_disconnect(c->ssh);
	ssh_free(c->ssh);
	c->ssh = NULL;
	c->state = C_END;
	if (c->startup)
		sd_startups_leave(&s->startups);
	sd_listener_leave(s->lis, c->addr); /* invariant 2: the slot, once */
	pthread_mutex_lock(&s->mu);
	c->done = 1;
	pthread_mutex_unlock(&s->mu);
	s->api->metric_set(s->core, "storaged_sessions", "frontend=\"sftp\"",
			   atomic_fetch_sub(&s->live, 1) - 1);
	return NULL;
}

