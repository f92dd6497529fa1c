/*
 * ftp.h - internal interface of the FTP/FTPS front end (frontends/ftp.so).
 *
 * Files:
 *   ftp_main.c     module descriptor, config table, listeners, accept
 *                  thread, session registry, limits, bandwidth limiter
 *   ftp_session.c  the control connection: line reader, state machine,
 *                  command table and the non-transfer commands
 *   ftp_data.c     data connections (PASV/EPSV/PORT/EPRT), transfers
 *                  (RETR/STOR/APPE/STOU), listings (LIST/NLST/MLSD/MLST)
 *   ftp_io.c       socket and TLS I/O (GnuTLS), TLS session cache,
 *                  the growable ftp_buf, charset conversion (iconv)
 *
 * The module sees the engine only through sd_core_api (it is linked with
 * -Wl,--no-undefined and never against core symbols), so it carries its
 * own tiny buffer type and syscall loops instead of core/util.h, core/sys.h.
 */
#ifndef SD_FTP_H
#define SD_FTP_H

#include <gnutls/gnutls.h>
#include <iconv.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>

#include "storaged.h"

/* ------------------------------------------------------------ config */

typedef struct ftp_conf {
	int64_t max_clients;
	int64_t max_per_ip;
	int64_t idle_timeout;  /* ms */
	int64_t data_timeout;  /* ms */
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
} ftp_conf;

/* ------------------------------------------------------------ buffers */

/* A growable byte string; data[len] == '\0' whenever data != NULL. Aborts
 * on OOM (sizes are chosen by the server, never by a client). */
typedef struct ftp_buf {
	char *data;
	size_t len, cap;
} ftp_buf;

void ftp_buf_append(ftp_buf *b, const void *p, size_t n);
void ftp_buf_puts(ftp_buf *b, const char *s);
void ftp_buf_printf(ftp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ftp_buf_free(ftp_buf *b);

/* ------------------------------------------------------------ I/O */

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
/* Wait until fd is readable (events POLLIN) or writable; 1 ready, 0 timeout,
 * -errno. timeout_ms < 0 waits forever. */
int ftp_wait_fd(int fd, short events, int timeout_ms);
/* Set SO_RCVTIMEO and SO_SNDTIMEO. */
void ftp_sock_timeouts(int fd, int64_t ms);

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

/* Charsets: UTF-8 check and iconv conversion. */
int ftp_utf8_valid(const char *s, size_t n);
/* Convert with cd into a malloc'd NUL-terminated string; NULL if the input
 * is not valid in the source charset. */
char *ftp_iconv(iconv_t cd, const char *in, size_t n);

/* ------------------------------------------------------------ server */

typedef struct ftp_session ftp_session;

typedef struct ftp_bw_slot {
	int64_t uid;
	int refs;
	double next; /* monotonic seconds when the next byte may go */
} ftp_bw_slot;

typedef struct ftp_server {
	const sd_core_api *api;
	sd_core *core;
	const ftp_conf *conf;
	const sd_module_conf *mc;
	int lfd;      /* plain listener */
	int tls_lfd;  /* implicit TLS listener or -1 */
	int wake[2];  /* pipe: stop wakes the accept thread */
	pthread_t accept_thr;
	int accept_started;
	volatile int stopping;
	ftp_tls *tls; /* NULL when no certificate is configured */
	char pasv_ip[INET_ADDRSTRLEN]; /* advertised IPv4 address or "" */

	pthread_mutex_t lock; /* guards sessions, nlive, bw */
	ftp_session *sessions; /* all sessions with a thread, live or done */
	int nlive;
	ftp_bw_slot *bw;
	int nbw;
	unsigned pasv_next; /* rotating start of the passive port search */
} ftp_server;

/* Session registry (ftp_main.c). */
ftp_bw_slot *ftp_bw_acquire(ftp_server *srv, int64_t uid);
void ftp_bw_release(ftp_server *srv, ftp_bw_slot *slot);
/* Sleep as needed so that the user's rate stays under bandwidth_limit. */
void ftp_bw_take(ftp_server *srv, ftp_bw_slot *slot, size_t n);
double ftp_mono(void);

/* ------------------------------------------------------------ session */

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
	int done; /* thread finished: reap it */
	ftp_session *next;

	pthread_mutex_t fdlock; /* guards ctrl.fd shutdown vs. data fds */
	ftp_io ctrl;
	struct sockaddr_storage peer, local;
	socklen_t peerlen, locallen;
	char addr[64]; /* peer address text */
	int implicit;  /* came in on the implicit TLS port */

	enum ftp_login_state state;
	enum ftp_tls_state tls_state;
	int pbsz; /* PBSZ 0 seen */
	int prot_p;
	int failures; /* failed PASS in this session */
	char username[SD_USERNAME_MAX + 1];
	sd_user user;
	int anon;
	ftp_bw_slot *bw;

	/* line reader */
	char *rbuf;
	size_t rlen, rcap;
	int discarding; /* overlong line: dropping bytes until LF */
	int iac;        /* telnet IAC parser state */

	char cwd[SD_PATH_MAX]; /* normalised UTF-8, "/..." */
	int type_ascii;
	uint64_t rest;
	int have_rest;
	char *rnfr; /* RNFR pending: source path */
	int utf8_opt;  /* OPTS UTF8 ON */
	int legacy;    /* names go out in fallback_charset */
	iconv_t cd_in, cd_out; /* fallback->UTF-8, UTF-8->fallback */
	int epsv_all;

	enum ftp_data_mode dmode;
	int pasv_fd;
	struct sockaddr_storage port_addr;
	socklen_t port_addrlen;
	ftp_io data; /* current data connection, fd -1 when none */

	enum ftp_xfer_state xfer;
	const char *cmd; /* current command, for metrics */
};

/* ftp_session.c */
void *ftp_session_main(void *arg);
/* Reply "code text" (text may hold several lines: continuation form). */
int ftp_reply(ftp_session *s, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Map an engine error to an FTP reply and send it. */
int ftp_reply_err(ftp_session *s, int err, const char *what);
/* Resolve a client path argument (any charset) against cwd into out, a
 * normalised UTF-8 user path. 0, or -EINVAL / -ENAMETOOLONG / -EILSEQ. */
int ftp_resolve(ftp_session *s, const char *arg, char *out, size_t outlen);
/* A UTF-8 name in the session's outgoing charset; returns p or a malloc'd
 * copy in *tofree. */
const char *ftp_out_name(ftp_session *s, const char *name, char **tofree);
/* Called from a transfer loop when the control socket is readable: reads,
 * returns 1 if an ABOR line was consumed, -1 if the control connection is
 * gone, 0 otherwise (other input stays queued). */
int ftp_ctrl_poll_abort(ftp_session *s);
/* 1 if a complete line is already buffered on the control connection. */
int ftp_ctrl_has_line(ftp_session *s);
int ftp_readonly(ftp_session *s);
void ftp_count(ftp_session *s, const char *name, const char *labels, int64_t d);

/* ftp_data.c */
int ftp_cmd_pasv(ftp_session *s, const char *arg, int extended);
int ftp_cmd_port(ftp_session *s, const char *arg, int extended);
int ftp_cmd_retr(ftp_session *s, const char *arg);
/* kind: 'S' STOR, 'A' APPE, 'U' STOU */
int ftp_cmd_stor(ftp_session *s, const char *arg, int kind);
/* kind: 'L' LIST, 'N' NLST, 'M' MLSD */
int ftp_cmd_list(ftp_session *s, const char *arg, int kind);
int ftp_cmd_mlst(ftp_session *s, const char *arg);
int ftp_cmd_stat_path(ftp_session *s, const char *arg);
/* Close the data connection and passive listener (fdlock taken). */
void ftp_data_reset(ftp_session *s);
/* Format one MLSx fact string for st (without the name). */
void ftp_mlsx_facts(ftp_session *s, const sd_stat *st, ftp_buf *b);
/* Format an `ls -l` line. */
void ftp_ls_line(ftp_session *s, const char *name, const sd_stat *st, int64_t now, ftp_buf *b);

#endif
