/*
 * ftp_session.c - one FTP control connection: the thread body, command
 * dispatch, and the commands that touch no file (QUIT, NOOP, SYST, TYPE,
 * MODE, STRU, FEAT, OPTS, HELP, STAT, ABOR, ALLO, ACCT, CCC).
 *
 * Login state (enum ftp_login_state); the transitions are in ftp_login.c:
 *
 *            USER (ftp_cmd_user)          PASS ok (ftp_cmd_pass)
 *   CONNECTED ------------> USER_GIVEN ---------------------> LOGGED_IN
 *       ^                       |  PASS bad (failures < max)      |
 *       +-----------------------+                                 |
 *   any state: QUIT, idle timeout, PASS bad (failures = max),     |
 *   address blocked (421), control lost, stop() ---> CLOSING <----+
 *   LOGGED_IN: credentials no longer hold (user disabled, password
 *   changed, token revoked: -SD_EAUTH from the engine) --421--> CLOSING
 *
 * TLS state (enum ftp_tls_state), orthogonal to the login state:
 *
 *   NONE --AUTH TLS + handshake ok (ftp_cmd_auth)--> CONTROL
 *   implicit port: CONTROL from the first byte (handshake before 220)
 *   CONTROL: PBSZ 0 sets pbsz; PROT P/C (implies PBSZ 0) sets prot_p, which
 *   makes each data connection do its own TLS handshake (ftp_data.c).
 *
 * Pending single-command states, cleared as RFC 959 says:
 *   RNFR pending (s->rnfr): set by RNFR, consumed by RNTO, dropped by any
 *   other command. REST pending (s->have_rest): set by REST, consumed by
 *   the next RETR/STOR/APPE (STOU and listings drop it).
 * Transfer sub-state (enum ftp_xfer_state) lives in ftp_data.c.
 *
 * Invariants:
 *  1. No file command runs unless state == LOGGED_IN (530 otherwise), and
 *     then s->sess is the engine session of the login.
 *  2. Before each command of a logged-in session its credentials are
 *     checked (api->session_check, rate-limited by the engine); once they
 *     fail the client gets 421 and the connection closes. Every engine
 *     call checks too, and its -SD_EAUTH ends the session the same way
 *     (ftp_reply_err).
 *  3. A path reaches the engine as the client's argument converted to
 *     UTF-8 (ftp_name_in), never joined or folded here: the engine's one
 *     resolver confines it to the user's tree.
 *  4. Writes are refused (550) for read-only logins (token scope,
 *     anonymous) before the engine is asked; the engine refuses them too.
 */
#include "ftp.h"

#include <ctype.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------ commands */

static int cmd_quit(ftp_session *s, const char *arg)
{
	(void)arg;
	ftp_reply(s, 221, "Goodbye.");
	s->state = FTP_CLOSING;
	return 0;
}

static int cmd_noop(ftp_session *s, const char *arg)
{
	(void)arg; /* the credentials were checked before dispatch */
	return ftp_reply(s, 200, "NOOP ok.");
}

static int cmd_syst(ftp_session *s, const char *arg)
{
	(void)arg;
	return ftp_reply(s, 215, "UNIX Type: L8");
}

static int cmd_type(ftp_session *s, const char *arg)
{
	if (strcasecmp(arg, "I") == 0 || strcasecmp(arg, "L 8") == 0 || strcasecmp(arg, "L8") == 0) {
		s->type_ascii = 0;
		return ftp_reply(s, 200, "Switching to Binary mode.");
	}
	if (strcasecmp(arg, "A") == 0 || strcasecmp(arg, "A N") == 0) {
		s->type_ascii = 1;
		return ftp_reply(s, 200, "Switching to ASCII mode.");
	}
	return ftp_reply(s, 504, "Unsupported TYPE.");
}

static int cmd_mode(ftp_session *s, const char *arg)
{
	if (strcasecmp(arg, "S") == 0)
		return ftp_reply(s, 200, "Mode set to S.");
	return ftp_reply(s, 504, "Only stream mode (S) is supported.");
}

static int cmd_stru(ftp_session *s, const char *arg)
{
	if (strcasecmp(arg, "F") == 0)
		return ftp_reply(s, 200, "Structure set to F.");
	return ftp_reply(s, 504, "Only file structure (F) is supported.");
}

static int cmd_abor(ftp_session *s, const char *arg)
{
	(void)arg; /* an ABOR during a transfer is handled by ftp_xfer_wait */
	ftp_data_reset(s);
	return ftp_reply(s, 225, "No transfer to ABOR.");
}

static int cmd_allo(ftp_session *s, const char *arg)
{
	(void)arg;
	return ftp_reply(s, 202, "ALLO command ignored.");
}

static int cmd_acct(ftp_session *s, const char *arg)
{
	(void)arg;
	return ftp_reply(s, 202, "ACCT not needed.");
}

static int cmd_ccc(ftp_session *s, const char *arg)
{
	(void)arg;
	return ftp_reply(s, 534, "CCC not allowed.");
}

static int cmd_feat(ftp_session *s, const char *arg)
{
	(void)arg;
	sd_buf b = SD_BUF_INIT;
	sd_buf_puts(&b, "Features:\n");
	if (s->srv->tls)
		sd_buf_puts(&b, " AUTH TLS\n PBSZ\n PROT\n");
	sd_buf_puts(&b, " EPRT\n EPSV\n HASH SHA-256*\n MDTM\n MFMT\n"
			" MLST type*;size*;modify*;perm*;unique*;\n PASV\n REST STREAM\n SIZE\n"
			" TVFS\n UTF8\nEnd");
	int r = ftp_reply(s, 211, "%s", b.data);
	sd_buf_free(&b);
	return r;
}

static int cmd_opts(ftp_session *s, const char *arg)
{
	if (strncasecmp(arg, "UTF8", 4) == 0 || strncasecmp(arg, "UTF-8", 5) == 0) {
		const char *v = arg + (arg[3] == '-' ? 5 : 4);
		while (*v == ' ')
			v++;
		if (!*v || strcasecmp(v, "ON") == 0) {
			ftp_charset_set_legacy(s, 0);
			return ftp_reply(s, 200, "UTF8 on: names are read and sent as UTF-8.");
		}
		if (strcasecmp(v, "OFF") == 0) {
			if (ftp_charset_set_legacy(s, 1) < 0)
				return ftp_reply(s, 504, "No fallback charset configured; names stay UTF-8.");
			return ftp_reply(s, 200, "Names now use %s.", s->srv->conf->fallback_charset);
		}
		return ftp_reply(s, 501, "OPTS UTF8 takes ON or OFF.");
	}
	if (strncasecmp(arg, "HASH", 4) == 0 && (arg[4] == '\0' || arg[4] == ' ')) {
		const char *v = arg + 4;
		while (*v == ' ')
			v++;
		if (!*v || strcasecmp(v, "SHA-256") == 0)
			return ftp_reply(s, 200, "SHA-256");
		return ftp_reply(s, 501, "Unknown algorithm, only SHA-256 is available.");
	}
	if (strncasecmp(arg, "MLST", 4) == 0 && (arg[4] == '\0' || arg[4] == ' '))
		return ftp_reply(s, 200, "MLST OPTS type;size;modify;perm;unique;");
	return ftp_reply(s, 501, "Option not understood.");
}

static int cmd_help(ftp_session *s, const char *arg)
{
	(void)arg;
	return ftp_reply(s, 214,
			 "The following commands are recognized.\n"
			 " ABOR ACCT ALLO APPE AUTH CDUP CWD  DELE EPRT EPSV FEAT HASH HELP LIST MDTM\n"
			 " MFMT MKD  MLSD MLST MODE NLST NOOP OPTS PASS PASV PBSZ PORT PROT PWD  QUIT\n"
			 " REST RETR RMD  RNFR RNTO SITE SIZE STAT STOR STOU STRU SYST TYPE USER XCUP\n"
			 " XCWD XMKD XPWD XRMD\n"
			 "Help OK.");
}

static int cmd_stat(ftp_session *s, const char *arg)
{
	if (*arg) {
		if (s->state != FTP_LOGGED_IN)
			return ftp_reply(s, 530, "Please login with USER and PASS.");
		return ftp_cmd_stat_path(s, arg);
	}
	return ftp_reply(s, 211,
			 "FTP server status:\n"
			 "     Connected to %s\n"
			 "     Logged in as %s\n"
			 "     TYPE: %s\n"
			 "     Control connection %s, data %s\n"
			 "     Names: %s\n"
			 "End of status",
			 s->addr, s->state == FTP_LOGGED_IN ? s->uname : "(nobody)",
			 s->type_ascii ? "ASCII" : "BINARY",
			 s->tls_state == FTP_TLS_CONTROL ? "TLS" : "plain", s->prot_p ? "TLS" : "plain",
			 s->legacy ? s->srv->conf->fallback_charset : "UTF-8");
}

static int cmd_pasv(ftp_session *s, const char *a) { return ftp_cmd_pasv(s, a, 0); }
static int cmd_epsv(ftp_session *s, const char *a) { return ftp_cmd_pasv(s, a, 1); }
static int cmd_port(ftp_session *s, const char *a) { return ftp_cmd_port(s, a, 0); }
static int cmd_eprt(ftp_session *s, const char *a) { return ftp_cmd_port(s, a, 1); }
static int cmd_stor(ftp_session *s, const char *a) { return ftp_cmd_stor(s, a, 'S'); }
static int cmd_appe(ftp_session *s, const char *a) { return ftp_cmd_stor(s, a, 'A'); }
static int cmd_stou(ftp_session *s, const char *a) { return ftp_cmd_stor(s, a, 'U'); }
static int cmd_list(ftp_session *s, const char *a) { return ftp_cmd_list(s, a, 'L'); }
static int cmd_nlst(ftp_session *s, const char *a) { return ftp_cmd_list(s, a, 'N'); }
static int cmd_mlsd(ftp_session *s, const char *a) { return ftp_cmd_list(s, a, 'M'); }

/* ------------------------------------------------------------ dispatch */

typedef int (*cmd_fn)(ftp_session *s, const char *arg);

#define NEED_LOGIN 0x1 /* 530 before login */
#define NEED_ARG   0x2 /* 501 without an argument */
#define WRITES     0x4 /* refused for read-only logins */

static const struct cmd {
	const char *name;
	cmd_fn fn;
	int flags;
} cmds[] = {
	{"USER", ftp_cmd_user, NEED_ARG},
	{"PASS", ftp_cmd_pass, 0},
	{"QUIT", cmd_quit, 0},
	{"NOOP", cmd_noop, 0},
	{"SYST", cmd_syst, 0},
	{"FEAT", cmd_feat, 0},
	{"OPTS", cmd_opts, NEED_ARG},
	{"HELP", cmd_help, 0},
	{"AUTH", ftp_cmd_auth, NEED_ARG},
	{"PBSZ", ftp_cmd_pbsz, NEED_ARG},
	{"PROT", ftp_cmd_prot, NEED_ARG},
	{"CCC", cmd_ccc, 0},
	{"STAT", cmd_stat, 0},
	{"TYPE", cmd_type, NEED_LOGIN | NEED_ARG},
	{"MODE", cmd_mode, NEED_LOGIN | NEED_ARG},
	{"STRU", cmd_stru, NEED_LOGIN | NEED_ARG},
	{"PWD", ftp_cmd_pwd, NEED_LOGIN},
	{"XPWD", ftp_cmd_pwd, NEED_LOGIN},
	{"CWD", ftp_cmd_cwd, NEED_LOGIN | NEED_ARG},
	{"XCWD", ftp_cmd_cwd, NEED_LOGIN | NEED_ARG},
	{"CDUP", ftp_cmd_cdup, NEED_LOGIN},
	{"XCUP", ftp_cmd_cdup, NEED_LOGIN},
	{"MKD", ftp_cmd_mkd, NEED_LOGIN | NEED_ARG | WRITES},
	{"XMKD", ftp_cmd_mkd, NEED_LOGIN | NEED_ARG | WRITES},
	{"RMD", ftp_cmd_rmd, NEED_LOGIN | NEED_ARG | WRITES},
	{"XRMD", ftp_cmd_rmd, NEED_LOGIN | NEED_ARG | WRITES},
	{"DELE", ftp_cmd_dele, NEED_LOGIN | NEED_ARG | WRITES},
	{"RNFR", ftp_cmd_rnfr, NEED_LOGIN | NEED_ARG | WRITES},
	{"RNTO", ftp_cmd_rnto, NEED_LOGIN | NEED_ARG | WRITES},
	{"REST", ftp_cmd_rest, NEED_LOGIN | NEED_ARG},
	{"ABOR", cmd_abor, NEED_LOGIN},
	{"ALLO", cmd_allo, NEED_LOGIN},
	{"ACCT", cmd_acct, NEED_LOGIN},
	{"SIZE", ftp_cmd_size, NEED_LOGIN | NEED_ARG},
	{"MDTM", ftp_cmd_mdtm, NEED_LOGIN | NEED_ARG},
	{"MFMT", ftp_cmd_mfmt, NEED_LOGIN | NEED_ARG | WRITES},
	{"HASH", ftp_cmd_hash, NEED_LOGIN | NEED_ARG},
	{"SITE", ftp_cmd_site, NEED_ARG},
	{"PASV", cmd_pasv, NEED_LOGIN},
	{"EPSV", cmd_epsv, NEED_LOGIN},
	{"PORT", cmd_port, NEED_LOGIN | NEED_ARG},
	{"EPRT", cmd_eprt, NEED_LOGIN | NEED_ARG},
	{"LIST", cmd_list, NEED_LOGIN},
	{"NLST", cmd_nlst, NEED_LOGIN},
	{"MLSD", cmd_mlsd, NEED_LOGIN},
	{"MLST", ftp_cmd_mlst, NEED_LOGIN},
	{"RETR", ftp_cmd_retr, NEED_LOGIN | NEED_ARG},
	{"STOR", cmd_stor, NEED_LOGIN | NEED_ARG | WRITES},
	{"APPE", cmd_appe, NEED_LOGIN | NEED_ARG | WRITES},
	{"STOU", cmd_stou, NEED_LOGIN | WRITES},
	{NULL, NULL, 0},
};

static void handle_line(ftp_session *s, char *line)
{
	/* Split "VERB[ arg]"; the verb is case-insensitive. */
	char verb[8];
	size_t i = 0;
	while (line[i] == ' ')
		i++;
	size_t vb = i;
	while (line[i] && line[i] != ' ')
		i++;
	size_t vl = i - vb;
	const char *arg = line + i;
	if (*arg == ' ')
		arg++;
	s->cmd = "other";
	if (vl == 0) {
		ftp_reply(s, 500, "Empty command.");
		return;
	}
	if (vl >= sizeof verb) {
		ftp_reply(s, 500, "Unknown command.");
		return;
	}
	for (size_t k = 0; k < vl; k++)
		verb[k] = (char)toupper((unsigned char)line[vb + k]);
	verb[vl] = '\0';

	const struct cmd *c = cmds;
	while (c->name && strcmp(c->name, verb) != 0)
		c++;
	if (!c->name) {
		ftp_reply(s, 502, "Command not implemented.");
		return;
	}
	s->cmd = c->name;
	if (s->rnfr && c->fn != ftp_cmd_rnto) {
		free(s->rnfr);
		s->rnfr = NULL;
	}
	if (s->state == FTP_LOGGED_IN && c->fn != cmd_quit &&
	    s->api->session_check(s->sess) == -SD_EAUTH) {
		ftp_auth_lost(s);
		return;
	}
	if ((c->flags & NEED_LOGIN) && s->state != FTP_LOGGED_IN) {
		ftp_reply(s, 530, "Please login with USER and PASS.");
		return;
	}
	if ((c->flags & NEED_ARG) && !*arg) {
		ftp_reply(s, 501, "%s needs an argument.", c->name);
		return;
	}
	if ((c->flags & WRITES) && ftp_readonly(s))
		return;
	c->fn(s, arg);
}

/* ------------------------------------------------------------ the thread */

/* Everything of the connection's protocol state ends here; the control
 * fd itself is closed by the reaper (ftp_main.c invariant 3). */
static void session_end(ftp_session *s)
{
	ftp_data_reset(s);
	free(s->rnfr);
	s->rnfr = NULL;
	ftp_io_tls_end(&s->ctrl);
	shutdown(s->ctrl.fd, SHUT_RDWR);
	ftp_charset_close(s);
	ftp_instant_clear(s);
	ftp_login_end(s);
	free(s->rbuf);
	s->rbuf = NULL;
}

void ftp_session_run(ftp_session *s)
{
	ftp_server *srv = s->srv;
	const ftp_conf *conf = srv->conf;
	int one = 1;

	(void)setsockopt(s->ctrl.fd, SOL_SOCKET, SO_OOBINLINE, &one, sizeof one);
	(void)setsockopt(s->ctrl.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	ftp_sock_timeouts(s->ctrl.fd, conf->data_timeout);
	s->rcap = (size_t)conf->max_line;
	s->rbuf = sd_xmalloc(s->rcap + 1);
	char *line = sd_xmalloc(s->rcap + 1);
	s->api->log(s->core, SD_LOG_DEBUG, FTP_SRC, "event=connect addr=%s implicit=%d", s->addr,
		    s->implicit);
	if (s->implicit) {
		char err[256];
		if (ftp_tls_accept(srv->tls, s->ctrl.fd, 0, conf->data_timeout, &s->ctrl.tls, err, sizeof err) < 0) {
			s->ctrl.tls = NULL;
			s->api->log(s->core, SD_LOG_INFO, FTP_SRC, "event=tls_failed addr=%s reason=\"%s\"",
				    s->addr, err);
			goto out;
		}
		s->tls_state = FTP_TLS_CONTROL;
	}
	if (srv->stopping) {
		ftp_reply(s, 421, "Server shutting down.");
		goto out;
	}
	ftp_reply(s, 220, "%s", conf->banner && *conf->banner ? conf->banner : "FTP server ready.");
	while (s->state != FTP_CLOSING && ftp_ctrl_next_line(s, line)) {
		if (line[0])
			handle_line(s, line);
	}
out:
	s->api->log(s->core, SD_LOG_DEBUG, FTP_SRC, "event=disconnect addr=%s user=%s", s->addr,
		    s->uname[0] ? s->uname : "-");
	session_end(s);
	free(line);
}
