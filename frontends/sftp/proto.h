/*
 * proto.h - the SFTP protocol engine of the sftp front end, shared by its
 * files only (not a public header). The SSH side (conn.c) sees nothing of
 * it but sd__sftp_serve() in sftp_int.h.
 *
 * Files, each calling only the ones below it (no cycles):
 *   serve.c    the session loop: INIT/VERSION, read a packet, dispatch
 *   ext.c      extended requests (posix-rename, statvfs, fsync, limits,
 *              copy-data, check-file, hardlink refusal)
 *   ops.c      one function per SFTP v3 request
 *   handles.c  the SFTP handle table: handle strings -> core handles and
 *              directory cursors
 *   wire.c     a leaf: framing over the channel, bounded reader and
 *              writer, attributes, status replies
 *
 * Contract of every request function (sd__sftp_op_*, sd__sftp_extended):
 * r is positioned after the request id; the function queues exactly one
 * reply for id (a malformed body gets BAD_MESSAGE, an engine error its
 * status through sd__sftp_err) and returns 0, or -EIO when the channel can
 * no longer be written (the session then ends).
 */
#ifndef SD_SFTP_PROTO_H
#define SD_SFTP_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include <libssh/libssh.h>
#include <libssh/sftp.h>

#include "sftp_int.h"
#include "util.h"

#pragma GCC visibility push(hidden)

#define PKT_SLACK 1024u     /* header room above max_read in a packet */
#define READDIR_PAGE 128    /* entries per NAME reply at most */
#define OUT_FLUSH_AT 65536  /* pending reply bytes written at once */
#define TYPE_SLOTS 24       /* request types counted apart (statistics) */

/* Bounded reader over one packet. `bad` latches on any overrun. */
typedef struct fx_rd {
	const unsigned char *p;
	size_t n, off;
	int bad;
} fx_rd;

/* Bounded writer into the session's pending output. `over` latches when a
 * put does not fit. */
typedef struct fx_wr {
	unsigned char *p;
	size_t cap, len;
	int over;
} fx_wr;

/* SFTP v3 attributes as received. */
typedef struct fx_attr {
	uint32_t flags;
	uint64_t size;
	uint32_t uid, gid, perm, atime, mtime;
} fx_attr;

/* H_CLOSING: a CLOSE is committing on a pool thread (async.c). */
enum fx_hstate { H_FREE = 0, H_FILE, H_DIR, H_CLOSING };

/* One slot of the SFTP handle table (handles.c has the state diagram). */
typedef struct fx_handle {
	int state;       /* enum fx_hstate */
	uint32_t gen;
	char *path;      /* canonical path at open (api->resolve) */
	/* H_FILE */
	sd_handle fh;    /* the core handle; 0 after copy-data released it */
	unsigned oflags; /* SD_O_* of the OPEN (for a reopen) */
	uint32_t omode;  /* permissions of the OPEN (for a reopen) */
	int readable, writable;
	uint64_t nread, nwritten; /* bytes moved through it: its transfer line */
	int64_t t0;               /* mono ms of the OPEN */
	/* H_DIR */
	char *last;      /* last name sent, NULL before the first page */
	int eof;
} fx_handle;

typedef struct fx_job fx_job;

/* One SFTP session (one channel), used by its own thread only, except the
 * done list of async.c (jm). */
typedef struct fx_sess {
	sftp_ctx *x;
	/* Both buffers get their whole capacity when the session starts and
	 * are never grown (wire.c invariant 1): bytes are read from the
	 * channel, and replies built, directly in their spare room, with
	 * data[len] = '\0' restored after each step. */
	sd_buf in;           /* received: [in_off, in.len) unparsed */
	size_t in_off, in_max;
	sd_buf out;          /* replies not yet written: [0, out.len) */
	size_t out_max;
	size_t cur;          /* bytes of the packet being served */
	int werr;            /* a channel write failed: the session is over */
	int auth_dead;       /* a call answered -SD_EAUTH: end after the reply */
	fx_handle *h;
	int nh;              /* slots allocated (handles.c grows them) */
	int hmax;            /* handles_per_session */
	unsigned char *scratch; /* copy-data bounce buffer (lazy) */
	int64_t last_io;
	int released;        /* stack given back since the last input (wire.c) */
	int64_t last_check;  /* mono ms of the last idle credentials check */
	/* statistics for the session_end debug lines */
	uint64_t reqs, bytes_in, bytes_out;
	int64_t us_engine, us_wait; /* time in handle_pread/pwrite, waiting for input */
	/* time serving each request type: types 1-20 of v3 in their own slot,
	 * EXTENDED (200) and anything else in TYPE_SLOTS - 1 */
	int64_t us_type[TYPE_SLOTS];
	uint32_t n_type[TYPE_SLOTS];
	/* requests running on the module's commit pool (async.c) */
	int pending;         /* jobs started and not replied to */
	int efd;             /* eventfd a finished job writes; -1 until needed */
	pthread_mutex_t jm;
	pthread_cond_t jcv;
	fx_job *jdone;       /* finished jobs waiting for their reply (jm) */
} fx_sess;

static inline uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* ---------------------------------------------------------------- wire.c */

int64_t sd__sftp_mono_us(void);

/* Readers: past the end of the packet they return 0 / NULL and set bad. */
uint32_t sd__sftp_rd_u32(fx_rd *r);
uint64_t sd__sftp_rd_u64(fx_rd *r);
/* A string: pointer into the packet and its length (not NUL-terminated). */
const unsigned char *sd__sftp_rd_str(fx_rd *r, uint32_t *len);
/* Attributes (v3 layout); extended pairs are skipped, at most 64. */
void sd__sftp_rd_attrs(fx_rd *r, fx_attr *a);
/* Does the packet string (p, n) equal the C string s? */
int sd__sftp_str_is(const unsigned char *p, uint32_t n, const char *s);
/* Read a path string into out as a C string, as the client sent it (the
 * engine resolves it), "~" expanded (sd__sftp_expand_tilde). An embedded
 * NUL is refused, never truncated. 0, or 1 after answering the request
 * itself (malformed, NUL, too long), or -EIO. */
int sd__sftp_get_path(fx_sess *s, fx_rd *r, uint32_t id, char *out, size_t outlen);
/* "~" in paths: every user's home is the root of their own tree, "/". A
 * path component "~" or "~<own name>" that does not name an existing node
 * means home, and what came before it is dropped: OpenSSH's sftp sends
 * "cd ~" as REALPATH "<cwd>/~" and "mkdir ~/x" as MKDIR "<cwd>/~/x", so
 * both land in the home. A real file or folder named "~" keeps its name;
 * "~<another user>" is not touched. in -> out; 0 or -ENAMETOOLONG. */
int sd__sftp_expand_tilde(fx_sess *s, const char *in, char *out, size_t outlen);

/* Start a reply (type, id) at the end of the pending output, flushing first
 * if the largest reply might not fit. _noid: a packet without an id
 * (VERSION). */
void sd__sftp_wr_begin(fx_wr *w, fx_sess *s, uint8_t type, uint32_t id);
void sd__sftp_wr_begin_noid(fx_wr *w, fx_sess *s, uint8_t type);
void sd__sftp_wr_u32(fx_wr *w, uint32_t v);
void sd__sftp_wr_u64(fx_wr *w, uint64_t v);
void sd__sftp_wr_bytes(fx_wr *w, const void *p, size_t n);
void sd__sftp_wr_str(fx_wr *w, const void *p, size_t n);
void sd__sftp_wr_cstr(fx_wr *w, const char *str);
/* An engine stat as v3 attributes (size, uid/gid 0, permissions with the
 * file type bits, atime = mtime). */
void sd__sftp_wr_attrs(fx_wr *w, const sd_stat *st);

/* Queue the packet in w. A reply that did not fit becomes a FAILURE
 * status for id. 0 or -EIO. */
int sd__sftp_send(fx_sess *s, fx_wr *w, uint32_t id);
int sd__sftp_status(fx_sess *s, uint32_t id, uint32_t code, const char *msg);
int sd__sftp_ok(fx_sess *s, uint32_t id);
/* The status for an engine result (0 = OK). -SD_EAUTH is answered
 * PERMISSION_DENIED "authentication no longer valid" and marks the session
 * to end after this reply. */
int sd__sftp_err(fx_sess *s, uint32_t id, int err);
/* Write out every pending reply. 0 or -EIO (latched). */
int sd__sftp_flush(fx_sess *s);

/* The next packet: its type and its body after the type byte in *body.
 * 0; 1 = longer than the limit (answered when the id could be read: end
 * the session); 2 = no packet yet, and a job of async.c may have finished
 * (reply with sd__sftp_async_reap, then call again); -EPIPE (client EOF),
 * -ETIMEDOUT (idle), -ECANCELED (stop), -EKEYREVOKED (credentials gone
 * while idle) or -EIO. */
int sd__sftp_next_packet(fx_sess *s, uint8_t *type, fx_rd *body);
/* Drop the packet just served from the receive buffer. */
void sd__sftp_consume(fx_sess *s);


/* ------------------------------------------------------------- handles.c */

/* The transfer line (docs/logs.md) of a file handle that moved bytes,
 * at its close: the commit's result rc, or abandon (session ended). */
void sd__sftp_xfer_line(fx_sess *s, fx_handle *h, int rc, int abandon);
/* Ready a table of at most n slots with random generations (it grows on
 * demand). 0, or -errno when the kernel gives no random bytes (the caller
 * refuses the session). */
int sd__sftp_handles_init(fx_sess *s, int n);
/* A free slot, cleared, its generation moved on; NULL when all are used. */
fx_handle *sd__sftp_handle_alloc(fx_sess *s, int *idx);
/* The HANDLE reply naming slot idx. */
int sd__sftp_handle_reply(fx_sess *s, uint32_t id, int idx);
/* The live slot named by the next string of r, or NULL (stale, forged,
 * malformed: r->bad tells the last). */
fx_handle *sd__sftp_handle_get(fx_sess *s, fx_rd *r);
/* Make h->fh a usable core handle (reopening after copy-data). 0/-errno. */
int sd__sftp_handle_file(fx_sess *s, fx_handle *h);
/* Free a slot: commit a file (abandon = 0) or abandon it. Returns the
 * commit result (0 for directories). */
int sd__sftp_handle_close(fx_sess *s, fx_handle *h, int abandon);
/* Session end: abandon every file, free every slot and the table. */
void sd__sftp_handles_drop(fx_sess *s);
/* The canonical form of a client path (api->resolve), malloc'd. NULL with
 * *err set on failure. */
char *sd__sftp_canonical(fx_sess *s, const char *path, int *err);

/* ----------------------------------------------------------------- ops.c */

int sd__sftp_op_open(fx_sess *s, uint32_t id, fx_rd *r);
int sd__sftp_op_close(fx_sess *s, uint32_t id, fx_rd *r);
int sd__sftp_op_read(fx_sess *s, uint32_t id, fx_rd *r);
int sd__sftp_op_write(fx_sess *s, uint32_t id, fx_rd *r);
int sd__sftp_op_stat(fx_sess *s, uint32_t id, fx_rd *r);
int sd__sftp_op_fstat(fx_sess *s, uint32_t id, fx_rd *r);
int sd__sftp_op_setstat(fx_sess *s, uint32_t id, fx_rd *r);
int sd__sftp_op_fsetstat(fx_sess *s, uint32_t id, fx_rd *r);
int sd__sftp_op_opendir(fx_sess *s, uint32_t id, fx_rd *r);
int sd__sftp_op_readdir(fx_sess *s, uint32_t id, fx_rd *r);
int sd__sftp_op_remove(fx_sess *s, uint32_t id, fx_rd *r);
int sd__sftp_op_mkdir(fx_sess *s, uint32_t id, fx_rd *r);
int sd__sftp_op_rmdir(fx_sess *s, uint32_t id, fx_rd *r);
int sd__sftp_op_realpath(fx_sess *s, uint32_t id, fx_rd *r);
/* RENAME (replace = 0: fails when the target exists, as v3 and OpenSSH
 * say) and posix-rename@openssh.com (replace = 1). */
int sd__sftp_op_rename(fx_sess *s, uint32_t id, fx_rd *r, int replace);

/* --------------------------------------------------------------- async.c */

/* Ready the session's part (before anything else uses it). */
void sd__sftp_async_init(fx_sess *s);
/* CLOSE of the file in slot idx, committed on the pool: 0 when started
 * (the slot is H_CLOSING and the reply comes from sd__sftp_async_reap), 1
 * when it could not be (no pool, no thread, no eventfd: close it here),
 * -EIO when the channel broke while waiting for room. */
int sd__sftp_async_close(fx_sess *s, uint32_t id, int idx);
/* Send the replies of finished jobs and free their slots. 0 or -EIO. */
int sd__sftp_async_reap(fx_sess *s);
/* Wait for the pending jobs whose file is path (as the client sent it),
 * or inside it, or holds it (invariant A3). 0 or -EIO. */
int sd__sftp_async_settle(fx_sess *s, const char *path);
/* Wait for every pending job and send its reply. 0 or -EIO. */
int sd__sftp_async_drain(fx_sess *s);
/* Drain, then free the session's part. */
void sd__sftp_async_end(fx_sess *s);

/* ----------------------------------------------------------------- ext.c */

/* SSH_FXP_EXTENDED: the request name, then its body. */
int sd__sftp_extended(fx_sess *s, uint32_t id, fx_rd *r);
/* The extension-name/data pairs of the VERSION reply. */
void sd__sftp_ext_advertise(fx_wr *w);

#pragma GCC visibility pop

#endif
