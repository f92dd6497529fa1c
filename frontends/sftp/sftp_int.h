/*
 * sftp_int.h - shared between the SSH side (server.c) and the SFTP protocol
 * engine (serve.c and the files in proto.h) of the sftp front end. Not a
 * public header. Everything declared here has hidden visibility: the
 * module exports storaged_module and nothing else, so no name of ours can
 * bind to a symbol of the daemon (which exports its own with -rdynamic).
 */
#ifndef SD_SFTP_INT_H
#define SD_SFTP_INT_H

#include <stdint.h>
#include <libssh/libssh.h>

#include "core/storaged.h"

#pragma GCC visibility push(hidden)

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
} sftp_conf;

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
} sftp_ctx;

/* Serve the SFTP subsystem on ctx->chan until the client leaves, the idle
 * timeout passes, a fatal protocol error occurs, the session's credentials
 * stop holding or *stopping is set. Every file still open when it returns
 * is abandoned (the previous version stays; a file being created leaves
 * nothing). The core session stays the caller's. Returns 0 on a clean end
 * (client EOF), or -ETIMEDOUT (idle), -ECANCELED (stop), -EPROTO (protocol
 * error), -EKEYREVOKED (credentials no longer valid), -EIO ... for the log. */
int sd__sftp_serve(sftp_ctx *ctx);

/* Monotonic milliseconds. */
int64_t sd__sftp_mono_ms(void);

#pragma GCC visibility pop

#endif
