/*
 * sftp_int.h - internal to the sftp front end (not a public header): the
 * SSH side's shared state, and the one entry into the protocol engine.
 *
 * Files, each calling only the ones below it:
 *   server.c  the module: descriptor, config, init/start/stop/destroy, the
 *             accept thread (util's sd_listener -> ssh_bind_accept_fd)
 *   conn.c    one connection's thread: key exchange, authentication,
 *             channel, the sftp subsystem, the clean end
 *   keys.c    host keys: generated on first start, loaded into the bind
 *   serve.c   (and the files in proto.h) the SFTP protocol engine
 *   async.c   the commit pool: CLOSEs commit off the session thread
 *
 * Everything declared here has hidden visibility: the module exports
 * storaged_module and nothing else, so no name of ours can bind to a
 * symbol of the daemon (which exports its own with -rdynamic).
 */
#ifndef SD_SFTP_INT_H
#define SD_SFTP_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>

#include "core/storaged.h"
#include "bw.h"
#include "net.h"

#pragma GCC visibility push(hidden)

typedef struct fx_pool fx_pool; /* async.c */

/* One log line with src=sftp. */
#define SLOG(srv, level, ...) (srv)->api->log((srv)->core, (level), "sftp", __VA_ARGS__)

/* The [sftp] section's own keys (core parses enabled/module/listen). */
typedef struct sftp_conf {
	char *host_key_dir;        /* "" = <data_dir>/ssh */
	int rsa_host_key;          /* also generate and offer an RSA host key */
	int64_t max_sessions;      /* concurrent SSH connections overall */
	int64_t max_per_ip;        /* concurrent SSH connections per address */
	int64_t idle_timeout;      /* ms without a request before disconnect */
	int64_t max_auth_tries;    /* failed attempts per connection */
	int64_t handles_per_session;
	int64_t max_read;          /* bytes per READ reply and per WRITE request */
	int64_t bandwidth_limit;   /* bytes/s per user, 0 = none (util/bw.c) */
	char *max_startups;        /* "start:rate:full", parsed into srv.startups */
	int64_t login_grace_time;  /* ms from accept to the sftp subsystem */
} sftp_conf;

/* The module's state (server.c). */
struct srv {
	const sd_core_api *api;
	sd_core *core;
	sftp_conf *conf;
	char keydir[4096];  /* where the host keys are */
	sd_listener *lis;   /* admission: max_sessions, max_per_ip */
	sd_bw *bw;          /* bandwidth_limit, per user */
	ssh_bind bind;      /* host keys and algorithms; never listens */
	pthread_t accept_thr;
	int accept_started;
	volatile int stopping;
	pthread_mutex_t mu; /* guards conns, and conn.fd / conn.done */
	struct conn *conns; /* every started connection, finished ones until reaped */
	atomic_int live;    /* connections with a thread: the storaged_sessions gauge */
	fx_pool *pool;      /* commit threads shared by every session (async.c) */
	sd_startups startups; /* connections not logged in yet (max_startups) */
};

/* Connection states (conn.c has the diagram). */
enum cstate { C_KEX = 0, C_AUTH, C_READY, C_SFTP, C_REFUSE, C_END };

/* What a refused shell or command prints on stderr (exit status 1). */
#define SFTP_REFUSE_MSG                                                                          \
	"storaged: this server offers SFTP only; of commands it runs sha256sum, md5sum and "     \
	"sha1sum on your files, nothing else\r\n"

/* A session channel of a connection (conn.c): the sftp one, or one that
 * runs a hash command (exec.c), with its own callbacks. */
#define SFTP_MAX_CHANNELS 4
struct xchan {
	struct conn *c;
	ssh_channel ch;
	struct ssh_channel_callbacks_struct cb;
	char *cmd;      /* an exec (or shell: "") request waiting to be served */
	int pending;
	int closed;     /* the client sent CHANNEL_CLOSE */
};

/* One SSH connection, touched by its own thread only, except next, fd and
 * done (under srv.mu). */
struct conn {
	struct conn *next;
	struct srv *srv;
	pthread_t thr;
	ssh_session ssh;
	int fd;            /* socket, -1 once the session released it */
	int done;          /* thread finished: join and free */
	enum cstate state;
	char addr[SD_ADDR_MAX]; /* the listener slot's address */
	sd_session *sess;  /* set by a successful login */
	sd_bw_slot *bws;   /* the user's bandwidth slot, from login to the end */
	char user[SD_USERNAME_MAX + 1];
	int readonly;
	int auth_fails;
	int blocked;
	ssh_channel chan;  /* the sftp channel (or the refused first one) */
	struct xchan *xch[SFTP_MAX_CHANNELS];
	struct ssh_server_callbacks_struct scb;
	const char *refuse_what;
	int peer_closed;   /* the client sent CHANNEL_CLOSE */
	int startup;       /* counted in srv.startups (not logged in yet) */
};

/* keys.c: find or create the host key directory, generate missing keys,
 * load each one (logging its fingerprint) and give it to s->bind.
 * 0 or -SD_ECONFIG (reason logged). */
int sd__sftp_host_keys(struct srv *s);

/* conn.c: the thread of one admitted connection (arg: struct conn *).
 * When it ends it has closed the core session and the socket, given the
 * listener slot back and set done. */
void *sd__sftp_conn_main(void *arg);

/* wire.c: a client-chosen string made safe for a log line between quotes:
 * control bytes, quotes and backslashes become '?', and so does every byte
 * over 0x7f unless the string is valid UTF-8 (sd_utf8_valid); cut to at
 * most n - 1 bytes, never inside a character. Returns out. */
const char *sd__sftp_lp(char *out, size_t n, const char *p);

/* The module's pool of commit threads (async.c). */
fx_pool *sd__sftp_pool_new(void);
/* After every session has ended: stop and join the threads. */
void sd__sftp_pool_free(fx_pool *p);

/* wire.c: give back the memory an idle session's thread no longer uses:
 * the pages of its stack below the current frame (MADV_DONTNEED: they are
 * dead, and read back as zeros if used again), and with heap = 1 the free
 * pages of malloc's arenas (malloc_trim), e.g. after the key exchange. */
void sd__sftp_release_memory(int heap);
/* exec.c: run the command line cmd of an exec request on channel ch
 * (sha256sum, md5sum, sha1sum; anything else is refused with a message),
 * writing its output on ch. Returns the exit status to send. */
int sd__sftp_exec(struct conn *c, ssh_channel ch, const char *cmd);
/* conn.c: serve the exec channels with a request waiting, and free the
 * ones the client closed (called between SFTP requests). */
int sd__sftp_exec_pump(void *conn);

/* What the protocol engine needs to serve one authenticated channel. */
typedef struct sftp_ctx {
	const sd_core_api *api;
	sd_core *core;
	sd_session *sess;         /* the core session every call goes through */
	const char *user;         /* login name, for logs and long names */
	int readonly;             /* a read-only token (statvfs flag) */
	const char *addr;         /* client address, for logs */
	ssh_session ssh;
	ssh_channel chan;
	uint32_t max_read;        /* cap of READ replies and WRITE payloads */
	int max_handles;
	int64_t idle_ms;
	volatile int *stopping;   /* set by module stop: leave soon */
	fx_pool *pool;            /* commit threads; NULL: commit in place */
	sd_bw *bw;                /* bandwidth_limit: every READ and WRITE draws */
	sd_bw_slot *bws;          /* from the user's slot (NULL: no limit) */
	/* may be NULL: waiting for input polls the whole session through ev
	 * and calls aux(aux_arg) whenever something else arrived (an exec
	 * channel beside this one, exec.c) */
	ssh_event ev;
	int (*aux)(void *arg);
	void *aux_arg;
} sftp_ctx;

/* serve.c: serve the SFTP subsystem on ctx->chan until the client leaves,
 * the idle timeout passes, a fatal protocol error occurs, the session's
 * credentials stop holding or *stopping is set. Every file still open when
 * it returns is abandoned (the previous version stays; a file being created
 * leaves nothing). The core session stays the caller's. Returns 0 on a
 * clean end (client EOF), or -ETIMEDOUT (idle), -ECANCELED (stop), -EPROTO
 * (protocol error), -EKEYREVOKED (credentials no longer valid), -EIO ...
 * for the log. */
int sd__sftp_serve(sftp_ctx *ctx);

#pragma GCC visibility pop

#endif
