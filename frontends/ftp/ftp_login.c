/*
 * ftp_login.c - logging in (USER, PASS, anonymous) and protecting the
 * connection (AUTH TLS, PBSZ, PROT).
 *
 * Login transitions (the diagram is in ftp_session.c):
 *   cmd_user  CONNECTED|USER_GIVEN -> USER_GIVEN (or CONNECTED on refusal)
 *   cmd_pass  USER_GIVEN -> LOGGED_IN (login_done) | CONNECTED (bad
 *             password, failures < max_login_failures) | CLOSING (blocked
 *             address, too many failures)
 *   ftp_login_end  LOGGED_IN -> (session closed), at the end of the thread
 *
 * Every PASS goes to the engine (api->auth_password with proto "ftp"),
 * which reads the database, delays and counts failures per address, and
 * returns an opaque sd_session. The session carries the user, the
 * read-only flag of a read-only token, and the working directory; the
 * engine re-checks its credentials while it lives (ftp_session.c ends the
 * session with 421 when they no longer hold).
 *
 * Anonymous logins (anonymous = yes): api->auth_anonymous gives a
 * read-only session on anonymous_user's tree. Disabling anonymous_user
 * ends anonymous sessions like any other.
 */
#include "ftp.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int ftp_cmd_user(ftp_session *s, const char *arg)
{
	const ftp_conf *c = s->srv->conf;
	if (s->state == FTP_LOGGED_IN)
		return ftp_reply(s, 503, "Already logged in.");
	int anon = strcasecmp(arg, "anonymous") == 0 || strcasecmp(arg, "ftp") == 0;
	if (anon && !c->anonymous) {
		s->state = FTP_CONNECTED;
		return ftp_reply(s, 530, "Anonymous login is not allowed.");
	}
	if (!anon && c->require_tls_login && s->tls_state == FTP_TLS_NONE) {
		s->state = FTP_CONNECTED;
		return ftp_reply(s, 530, "Non-anonymous sessions must use encryption (AUTH TLS).");
	}
	if (strlen(arg) > SD_USERNAME_MAX) {
		s->state = FTP_CONNECTED;
		return ftp_reply(s, 530, "Login incorrect.");
	}
	snprintf(s->username, sizeof s->username, "%s", arg);
	s->anon = anon;
	s->state = FTP_USER_GIVEN;
	return ftp_reply(s, 331, anon ? "Anonymous login ok, send anything as password."
				       : "Please specify the password.");
}

/* PASS accepted: take the engine session and what the module needs of it. */
static int login_done(ftp_session *s, sd_session *sess)
{
	sd_session_info info;
	int r = s->api->session_info(sess, &info);
	if (r < 0) {
		s->api->session_close(sess);
		return r;
	}
	s->sess = sess;
	s->uid = info.uid;
	snprintf(s->uname, sizeof s->uname, "%s", info.user);
	s->readonly = s->anon || (info.flags & SD_USER_READONLY) != 0;
	s->state = FTP_LOGGED_IN;
	if (s->startup) { /* no longer waiting to log in: its pre-login slot goes */
		sd_startups_leave(&s->srv->startups);
		s->startup = 0;
	}
	s->bw = sd_bw_acquire(s->srv->bw, s->uid);
	s->api->log(s->core, SD_LOG_INFO, FTP_SRC, "event=login user=%s addr=%s tls=%s%s", s->uname,
		    s->addr, s->tls_state == FTP_TLS_CONTROL ? "yes" : "no", s->anon ? " anonymous=1" : "");
	ftp_count(s, "storaged_logins_total", "frontend=\"ftp\",result=\"ok\"", 1);
	return 0;
}

int ftp_cmd_pass(ftp_session *s, const char *arg)
{
	const ftp_conf *c = s->srv->conf;
	if (s->state == FTP_LOGGED_IN)
		return ftp_reply(s, 230, "Already logged in.");
	if (s->state != FTP_USER_GIVEN)
		return ftp_reply(s, 503, "Login with USER first.");
	int r = s->api->auth_allowed(s->core, s->addr);
	if (r == -SD_EBLOCKED) {
		ftp_count(s, "storaged_logins_total", "frontend=\"ftp\",result=\"blocked\"", 1);
		ftp_reply(s, 421, "Too many failed logins from your address; try again later.");
		s->state = FTP_CLOSING;
		return 0;
	}
	sd_session *sess = NULL;
	if (s->anon)
		r = s->api->auth_anonymous(s->core, s->srv->conf->anonymous_user, s->addr, "ftp", &sess);
	else
		r = s->api->auth_password(s->core, s->username, arg, s->addr, "ftp", &sess);
	if (r == 0)
		r = login_done(s, sess);
	if (r == 0)
		return ftp_reply(s, 230, s->anon ? "Anonymous access granted (read-only)." : "Login successful.");
	s->failures++;
	s->state = FTP_CONNECTED;
	ftp_count(s, "storaged_logins_total", "frontend=\"ftp\",result=\"failed\"", 1);
	s->api->log(s->core, SD_LOG_INFO, FTP_SRC, "event=login_failed user=%s addr=%s err=\"%s\"",
		    s->username, s->addr, s->api->strerror(r));
	if (r == -SD_EBLOCKED || s->failures >= c->max_login_failures) {
		ftp_reply(s, 421, "Too many failed logins.");
		s->state = FTP_CLOSING;
		return 0;
	}
	return ftp_reply(s, 530, "Login incorrect.");
}

void ftp_login_end(ftp_session *s)
{
	if (s->sess) {
		s->api->session_close(s->sess);
		s->sess = NULL;
	}
	sd_bw_release(s->srv->bw, s->bw);
	s->bw = NULL;
}

/* ------------------------------------------------------------ TLS */

int ftp_cmd_auth(ftp_session *s, const char *arg)
{
	if (!s->srv->tls)
		return ftp_reply(s, 502, "TLS is not configured on this server.");
	if (s->tls_state != FTP_TLS_NONE)
		return ftp_reply(s, 503, "Already using TLS.");
	if (strcasecmp(arg, "TLS") != 0 && strcasecmp(arg, "SSL") != 0 && strcasecmp(arg, "TLS-C") != 0)
		return ftp_reply(s, 504, "Unknown AUTH type.");
	if (s->rlen > 0) { /* pipelined plain text after AUTH: refuse */
		ftp_reply(s, 503, "Input pipelined before AUTH TLS.");
		s->state = FTP_CLOSING;
		return 0;
	}
	ftp_reply(s, 234, "Proceed with negotiation.");
	char err[256];
	int r = ftp_tls_accept(s->srv->tls, s->ctrl.fd, 0, s->srv->conf->data_timeout, &s->ctrl.tls, err,
			       sizeof err);
	if (r < 0) {
		s->ctrl.tls = NULL;
		s->api->log(s->core, SD_LOG_INFO, FTP_SRC, "event=tls_failed addr=%s reason=\"%s\"", s->addr, err);
		s->state = FTP_CLOSING;
		return 0;
	}
	s->tls_state = FTP_TLS_CONTROL;
	/* RFC 4217 11: a fresh login is expected after AUTH. */
	if (s->state == FTP_USER_GIVEN)
		s->state = FTP_CONNECTED;
	return 0;
}

int ftp_cmd_pbsz(ftp_session *s, const char *arg)
{
	(void)arg;
	if (s->tls_state == FTP_TLS_NONE)
		return ftp_reply(s, 503, "PBSZ needs a TLS-protected control connection.");
	s->pbsz = 1;
	return ftp_reply(s, 200, "PBSZ=0");
}

int ftp_cmd_prot(ftp_session *s, const char *arg)
{
	if (s->tls_state == FTP_TLS_NONE)
		return ftp_reply(s, 503, "PROT needs a TLS-protected control connection.");
	/* RFC 4217 wants PBSZ first; some clients skip it, and the only
	 * buffer size for TLS is 0 anyway, so PROT implies PBSZ 0. */
	s->pbsz = 1;
	if (strcasecmp(arg, "P") == 0) {
		s->prot_p = 1;
		return ftp_reply(s, 200, "PROT now Private.");
	}
	if (strcasecmp(arg, "C") == 0) {
		if (s->srv->conf->require_tls_data)
			return ftp_reply(s, 534, "PROT C refused: this server requires protected data.");
		s->prot_p = 0;
		return ftp_reply(s, 200, "PROT now Clear.");
	}
	return ftp_reply(s, 536, "PROT %s not supported.", arg);
}
