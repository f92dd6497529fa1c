/*
 * ftp.h - internal interface of the FTP/FTPS front end (frontends/ftp.so).
 *
 * The module sees the engine only through sd_core_api (storaged.h, API
 * version 2): it is linked with -Wl,--no-undefined against util/ (buffers,
 * syscall loops, UTF-8, randomness, the listener) and GnuTLS, never against
 * core symbols. A login gives an opaque sd_session; the engine keeps its
 * working directory and resolves every path argument itself, so no file
 * here joins or folds paths.
 *
 * Files, one concern each. Calls only go down this list (a file calls the
 * files below it, never one above), so there is no cycle:
 *
 *   ftp_main.c     module descriptor, init/start/stop/destroy, the accept
 *                  thread (util/net.h listeners), the session registry
 *   ftp_conf.c     the [ftp] key table and the checks of its values
 *   ftp_session.c  one control connection: the thread body, command
 *                  dispatch and the commands that touch no file
 *   ftp_login.c    USER/PASS, anonymous logins, AUTH/PBSZ/PROT
 *   ftp_fs.c       commands on names: PWD CWD CDUP MKD RMD DELE RNFR RNTO
 *                  SIZE MDTM MFMT HASH SITE (CHMOD, INSTANT, PROVE) REST
 *   ftp_list.c     LIST NLST MLSD MLST and STAT <path>
 *   ftp_xfer.c     RETR STOR APPE STOU and the transfer log
 *   ftp_data.c     data connections: PASV EPSV PORT EPRT, open/close, the
 *                  wait loop that watches the control socket for ABOR
 *   ftp_ctrl.c     the control line reader (Telnet IAC, overlong lines)
 *   ftp_reply.c    replies, engine errors to reply codes, metrics, the
 *                  end of a session whose credentials no longer hold
 *   ftp_charset.c  client names <-> UTF-8 (fallback_charset, iconv)
 *   ftp_io.c       socket and TLS reads and writes
 *   ftp_tls.c      GnuTLS credentials, session cache, handshakes
 *   (util/bw.c     the per-user bandwidth limiter, shared with SFTP and HTTP)
 */
#ifndef SD_FTP_H
#define SD_FTP_H

#include <gnutls/gnutls.h>
#include <iconv.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include "net.h"
#include "storaged.h"
#include "bw.h"
#include "util.h"

#define FTP_SRC "ftp" /* src= of every log line */

/* ------------------------------------------------------------ config */

typedef struct ftp_conf {
	int64_t max_clients;
	int64_t max_per_ip;
	int64_t idle_timeout; /* ms */
	int64_t data_timeout; /* ms */
	int64_t pasv_min_port;
	int64_t pasv_max_port;
	char *pasv_address;
	int active_enabled;
	int allow_foreign_data;
	char *tls_cert;
	char *tls_key;
	char *implicit_tls_listen;
	int require_tls_login;
	int require_tls_data;
	int tls_require_reuse;
	int anonymous;
	char *anonymous_user;
	char *fallback_charset;
	int64_t bandwidth_limit; /* bytes per second per user, 0 = off */
	int64_t max_line;
	int64_t max_login_failures;
	char *banner;
	char *max_startups;       /* "start:rate:full", parsed into ftp_server.startups */
	int64_t login_grace_time; /* ms */
} ftp_conf;

/* ------------------------------------------------------------ ftp_io.c */

/* One connection end: a socket, TLS-wrapped when tls != NULL. */
typedef struct ftp_io {
	int fd;
	gnutls_session_t tls;
	int tls_err; /* last fatal GnuTLS error (for logs), 0 if none */
} ftp_io;

/* Receive up to n bytes. >0 bytes, 0 on orderly EOF, -EAGAIN when nothing
 * is ready (non-blocking socket) or the socket's receive timeout fired,
 * other -errno (-EPROTO for TLS errors). */
ssize_t ftp_io_recv(ftp_io *io, void *buf, size_t n);
/* One send attempt: bytes taken (>0), -EAGAIN (call again later with the
 * same buffer: GnuTLS requires it), or -errno. */
ssize_t ftp_io_send1(ftp_io *io, const void *buf, size_t n);
/* Send all n bytes on a blocking socket. 0 or -errno (-ETIMEDOUT when the
 * send timeout fires). */
int ftp_io_send(ftp_io *io, const void *buf, size_t n);
/* 1 if decrypted bytes are already buffered (poll() would not show them). */
int ftp_io_pending(ftp_io *io);
/* Send TLS close_notify (bounded by the socket timeout), free the TLS
 * session; the fd stays open. No-op for plain sockets. */
void ftp_io_tls_end(ftp_io *io);
/* Wait until fd is ready for events; 1 ready, 0 timeout, -errno.
 * timeout_ms < 0 waits forever. */
int ftp_wait_fd(int fd, short events, int timeout_ms);
/* Set SO_RCVTIMEO and SO_SNDTIMEO. */
void ftp_sock_timeouts(int fd, int64_t ms);
/* Switch O_NONBLOCK on or off. */
void ftp_sock_nonblock(int fd, int on);

/* ------------------------------------------------------------ ftp_tls.c */

/* TLS: server credentials, priorities, ticket key and a session cache
 * (TLS 1.2 session IDs) shared by control and data connections. */
typedef struct ftp_tls ftp_tls;
/* Load cert and key (PEM). NULL on failure with the reason in err. */
ftp_tls *ftp_tls_new(const char *cert, const char *key, char *err, size_t errlen);
void ftp_tls_free(ftp_tls *t);
/* Server handshake on fd (data: a data connection, which sends no session
 * tickets). 0 with *out set, or -EPROTO / -ETIMEDOUT, with the GnuTLS
 * reason in err. */
int ftp_tls_accept(ftp_tls *t, int fd, int data, int64_t timeout_ms, gnutls_session_t *out,
		   char *err, size_t errlen);

/* ------------------------------------------------------------ server */

typedef struct ftp_session ftp_session;

typedef struct ftp_server {
	const sd_core_api *api;
	sd_core *core;
	const ftp_conf *conf;
	const sd_module_conf *mc;
	sd_listener *plain;    /* the [ftp] listen address */
	sd_listener *implicit; /* implicit TLS listener or NULL */
	int wake[2];           /* pipe: stop wakes the accept thread */
	pthread_t accept_thr;
	int accept_started;
	atomic_int stopping;
	ftp_tls *tls; /* NULL when no certificate is configured */
	char pasv_ip[INET_ADDRSTRLEN]; /* advertised IPv4 address or "" */
	sd_bw *bw;
	sd_startups startups;  /* connections not logged in yet (max_startups) */

	pthread_mutex_t lock;  /* guards sessions */
	ftp_session *sessions; /* all sessions with a thread, live or done */
} ftp_server;

/* ------------------------------------------------------------ session */

/* How a session reads non-ASCII names (ftp_charset.c has the rule). */
enum ftp_cs {
	FTP_CS_AUTO = 0, /* undecided: each name is weighed */
	FTP_CS_UTF8,     /* UTF-8 */
	FTP_CS_LEGACY,   /* fallback_charset */
	FTP_CS_NONE,     /* (cs_refused) no fallback charset configured */
};

/* Login states (see the diagram in ftp_session.c). */
enum ftp_login_state {
	FTP_CONNECTED = 0, /* greeting sent, no USER yet */
	FTP_USER_GIVEN,    /* USER accepted, waiting for PASS */
	FTP_LOGGED_IN,     /* authenticated: file commands allowed */
	FTP_CLOSING,       /* QUIT, fatal error, stop: leave the loop */
};

/* Control-channel protection. */
enum ftp_tls_state {
	FTP_TLS_NONE = 0, /* plain text */
	FTP_TLS_CONTROL,  /* AUTH TLS done (or implicit) */
};

/* Data-connection setup. */
enum ftp_data_mode {
	FTP_DATA_NONE = 0, /* no PASV/PORT since the last transfer */
	FTP_DATA_PASV,     /* listening on pasv_fd */
	FTP_DATA_PORT,     /* will connect to port_addr */
};

/* A SITE INSTANT challenge waiting for its SITE PROVE (ftp_fs.c). */
#define FTP_INSTANT_PENDING 4
typedef struct ftp_instant {
	char nonce[65];              /* "" = free */
	char sha256[SD_SHA256_HEX];
	uint64_t size;
	char *path;                  /* canonical path in the user's view */
} ftp_instant;

/* Transfer sub-state while a data command runs. */
enum ftp_xfer_state {
	FTP_XFER_IDLE = 0,
	FTP_XFER_RUNNING,
	FTP_XFER_ABORTED, /* ABOR seen or control lost: stop, reply 426 */
};

struct ftp_session {
	ftp_server *srv;
	const sd_core_api *api;
	sd_core *core;
	pthread_t thr;
	int done; /* thread finished: reap it (under srv->lock) */
	ftp_session *next;
	sd_listener *listener; /* the slot to give back at the end */

	pthread_mutex_t fdlock; /* guards ctrl.fd shutdown vs. data fds */
	ftp_io ctrl;
	struct sockaddr_storage peer, local;
	char addr[SD_ADDR_MAX]; /* peer address text */
	int implicit;           /* came in on the implicit TLS port */
	int startup;            /* counted in srv->startups (not logged in yet) */
	int64_t grace_end;      /* sd_mono_ms() by which a login must be done */

	enum ftp_login_state state;
	enum ftp_tls_state tls_state;
	int pbsz; /* PBSZ 0 seen */
	int prot_p;
	int failures; /* failed PASS in this session */
	char username[SD_USERNAME_MAX + 1]; /* as given to USER */
	int anon;

	/* Set by a login (ftp_login.c), cleared by ftp_login_end. */
	sd_session *sess;
	char uname[SD_USERNAME_MAX + 1]; /* the user whose tree this is */
	int64_t uid;
	int readonly; /* read-only token or anonymous */
	sd_bw_slot *bw;

	/* line reader (ftp_ctrl.c) */
	char *rbuf;
	size_t rlen, rcap;
	int discarding; /* overlong line: dropping bytes until LF */
	int iac;        /* telnet IAC parser state */

	int type_ascii;
	uint64_t rest;
	int have_rest;
	char *rnfr; /* RNFR pending: the resolved source path */

	/* names (ftp_charset.c) */
	int legacy;            /* names go out in fallback_charset */
	iconv_t cd_in, cd_out; /* fallback->UTF-8, UTF-8->fallback */
	int cs;                /* enum ftp_cs: the reading decided by evidence */
	int cs_pinned;         /* enum ftp_cs: set by OPTS UTF8 ON/OFF */
	int cs_refused;        /* enum ftp_cs: why the last name was refused */
	char cs_words[160];    /* the refusal's words (ftp_charset_refusal) */

	int epsv_all;
	enum ftp_data_mode dmode;
	int pasv_fd;
	struct sockaddr_storage port_addr;
	socklen_t port_addrlen;
	ftp_io data; /* current data connection, fd -1 when none */

	enum ftp_xfer_state xfer;
	const char *cmd; /* current command, for metrics */

	/* SITE INSTANT challenges awaiting SITE PROVE, oldest replaced first */
	ftp_instant inst[FTP_INSTANT_PENDING];
	int inst_next;
};

/* ------------------------------------------------------------ ftp_charset.c */

/* The client's name argument as UTF-8 for the engine: a malloc'd copy in
 * *out, read as UTF-8 or as fallback_charset by the rule at the top of
 * ftp_charset.c (OPTS UTF8 pins it; otherwise evidence, existing names
 * and plausibility decide). 0, or -EILSEQ when the name is valid in no
 * charset that applies (ftp_charset_refusal says why). Only the charset
 * changes: the engine resolves the path. */
int ftp_name_in(ftp_session *s, const char *arg, char **out);
/* Words for the last -EILSEQ of ftp_name_in (valid for the session). */
const char *ftp_charset_refusal(ftp_session *s);
/* ftp_name_in, then the engine's canonical path of the argument in the
 * session's view (api->resolve: "/" or "/a/b") into out, for replies that
 * show a path and for listings. 0, -EILSEQ, -EINVAL or -ENAMETOOLONG. */
int ftp_name_resolve(ftp_session *s, const char *arg, char *out, size_t outlen);
/* A UTF-8 name in the session's outgoing charset; returns name or a
 * malloc'd copy, which *tofree then holds (else NULL). */
const char *ftp_name_out(ftp_session *s, const char *name, char **tofree);
/* OPTS UTF8 OFF (legacy = 1) / ON (legacy = 0): pins the session's
 * reading. -1 when OFF is asked and no fallback charset is configured. */
int ftp_charset_set_legacy(ftp_session *s, int legacy);
void ftp_charset_close(ftp_session *s);

/* ------------------------------------------------------------ ftp_reply.c */

/* Reply "code text" (text may hold several lines: continuation form).
 * A send failure moves the session to CLOSING. Returns 0 or -errno. */
int ftp_reply(ftp_session *s, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Map an engine error to a reply and send it: 550/553/552/450/451, and
 * for -SD_EAUTH on a logged-in session 421 and the end of the session
 * (ftp_auth_lost). Returns what ftp_reply returns. */
int ftp_reply_err(ftp_session *s, int err, const char *what);
/* The session's credentials no longer hold (user disabled, password
 * changed, token revoked): log, reply 421, move to CLOSING. */
void ftp_auth_lost(ftp_session *s);
/* 1 (after replying 550) when the login is read-only, else 0. */
int ftp_readonly(ftp_session *s);
/* Append path quoted for a 257 reply (RFC 959: embedded quotes doubled),
 * in the session's outgoing charset. */
void ftp_quote_path(ftp_session *s, const char *path, sd_buf *b);
void ftp_count(ftp_session *s, const char *name, const char *labels, int64_t d);

/* ------------------------------------------------------------ ftp_ctrl.c */

/* Next complete command line into line (max_line + 1 bytes, CR LF
 * stripped). 1 = got one, 0 = session over (EOF, error, idle timeout or
 * stop: 421 sent where possible; credentials gone while idle: 421). */
int ftp_ctrl_next_line(ftp_session *s, char *line);
/* 1 if a complete line is already buffered on the control connection. */
int ftp_ctrl_has_line(ftp_session *s);
/* Called from a transfer loop when the control socket is readable: reads,
 * returns 1 if an ABOR line was consumed, -1 if the control connection is
 * gone, 2 when another command is queued (it stays queued), 0 otherwise. */
int ftp_ctrl_poll_abort(ftp_session *s);

/* ------------------------------------------------------------ ftp_data.c */

/* PASV (extended 0) / EPSV (1); PORT (0) / EPRT (1). */
int ftp_cmd_pasv(ftp_session *s, const char *arg, int extended);
int ftp_cmd_port(ftp_session *s, const char *arg, int extended);
/* Before a transfer's 150: a data mode is set and the TLS policy holds.
 * Replies (425/522) and returns -1 when the transfer cannot start. */
int ftp_data_precheck(ftp_session *s);
/* Open the data connection set up by PASV/PORT (after the 150 reply),
 * TLS when PROT P; non-blocking afterwards. Replies 425/522 and returns -1
 * on failure. */
int ftp_data_open(ftp_session *s);
/* End a transfer that went well: TLS close_notify, then close. */
void ftp_data_close(ftp_session *s);
/* Close the data connection and passive listener at once (fdlock taken). */
void ftp_data_reset(ftp_session *s);
/* Wait for the data socket (events) while watching the control socket for
 * ABOR. 1 ready, 0 timeout, -1 aborted (ABOR or control lost: s->xfer set,
 * *abor_seen for ABOR). *ctrl_state: 0 watch control, 1 stop watching
 * (queued input or EOF). upload: a lost control connection does not stop
 * the transfer (the bytes still get committed). */
int ftp_xfer_wait(ftp_session *s, short events, int *ctrl_state, int *abor_seen, int upload);
/* Send all of buf on the data connection, waiting with ftp_xfer_wait.
 * 0, or -ETIMEDOUT / -ECANCELED (ABOR, control lost) / -errno. */
int ftp_data_send(ftp_session *s, const char *buf, size_t len, int *ctrl_state, int *abor);
/* Final replies after a transfer ended early: 426 [why], and 226 for the
 * ABOR when one was seen. Nothing when the control connection is gone. */
void ftp_reply_aborted(ftp_session *s, int abor_seen, const char *why);

/* ------------------------------------------------------------ commands */

/* ftp_xfer.c */
int ftp_cmd_retr(ftp_session *s, const char *arg);
/* kind: 'S' STOR, 'A' APPE, 'U' STOU */
int ftp_cmd_stor(ftp_session *s, const char *arg, int kind);

/* ftp_list.c; kind: 'L' LIST, 'N' NLST, 'M' MLSD */
int ftp_cmd_list(ftp_session *s, const char *arg, int kind);
int ftp_cmd_mlst(ftp_session *s, const char *arg);
int ftp_cmd_stat_path(ftp_session *s, const char *arg);

/* ftp_fs.c */
int ftp_cmd_pwd(ftp_session *s, const char *arg);
int ftp_cmd_cwd(ftp_session *s, const char *arg);
int ftp_cmd_cdup(ftp_session *s, const char *arg);
int ftp_cmd_mkd(ftp_session *s, const char *arg);
int ftp_cmd_rmd(ftp_session *s, const char *arg);
int ftp_cmd_dele(ftp_session *s, const char *arg);
int ftp_cmd_rnfr(ftp_session *s, const char *arg);
int ftp_cmd_rnto(ftp_session *s, const char *arg);
int ftp_cmd_rest(ftp_session *s, const char *arg);
int ftp_cmd_size(ftp_session *s, const char *arg);
int ftp_cmd_mdtm(ftp_session *s, const char *arg);
int ftp_cmd_mfmt(ftp_session *s, const char *arg);
int ftp_cmd_hash(ftp_session *s, const char *arg);
int ftp_cmd_site(ftp_session *s, const char *arg);
/* Forget the pending SITE INSTANT challenges (session end). */
void ftp_instant_clear(ftp_session *s);

/* ftp_login.c */
int ftp_cmd_user(ftp_session *s, const char *arg);
int ftp_cmd_pass(ftp_session *s, const char *arg);
int ftp_cmd_auth(ftp_session *s, const char *arg);
int ftp_cmd_pbsz(ftp_session *s, const char *arg);
int ftp_cmd_prot(ftp_session *s, const char *arg);
/* Close the engine session and give back the bandwidth slot (idempotent). */
void ftp_login_end(ftp_session *s);
/* Revoke the anonymous token (module stop, after every session ended). */

/* ftp_session.c: the body of a session thread, from greeting to the end
 * of the connection's protocol state (the fd is closed by the reaper). */
void ftp_session_run(ftp_session *s);

/* ftp_conf.c */
extern const sd_conf_item ftp_conf_table[];
/* Check the values of conf; resolve pasv_address into srv->pasv_ip. 0, or
 * -SD_ECONFIG after logging the reason. */
int ftp_conf_check(ftp_server *srv);
/* Log a configuration error naming [ftp]; returns -SD_ECONFIG. */
int ftp_conf_error(ftp_server *srv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
