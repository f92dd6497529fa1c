/*
 * proto.c - SFTP version 3 over one libssh channel, on the storaged engine.
 *
 * Design notes
 * ------------
 * Framing and parsing are done here, over ssh_channel_read_nonblocking /
 * ssh_channel_write, instead of libssh 0.10.6's sftp_get_client_message /
 * sftp_reply_*. Reasons, all checked against 0.10.6's behaviour:
 *   - sftp_get_client_message buffers a packet of whatever length the client
 *     announces before we can see it (no cap), and on a malformed packet it
 *     returns NULL without the request id, so no status can be answered;
 *   - it decodes names with ssh_string_to_char, silently cutting a name at
 *     an embedded NUL, and parses only two extended requests;
 *   - sftp_server_init advertises a fixed extension list (no fsync, limits,
 *     copy-data or check-file) and there is no public way to send
 *     SSH_FXP_EXTENDED_REPLY;
 *   - READ replies through sftp_reply_data copy the data twice; here the
 *     engine's pread fills the reply packet in place.
 * libssh still does everything below the channel (transport, auth,
 * channels, windows); this file only speaks the SFTP byte stream.
 *
 * Invariants
 *  1. An incoming packet is at most max_read + 1024 bytes; a longer length
 *     ends the session (after a FAILURE status naming the request id when it
 *     can be read). The buffer is never grown by the client.
 *  2. Every request with a readable id gets exactly one reply, in order.
 *     A packet too short for an id gets BAD_MESSAGE with id 0; framing is
 *     kept, so the session goes on. Unknown types get OP_UNSUPPORTED.
 *  3. Paths are the core's business: a path string from the client is
 *     copied as it is (an embedded NUL is refused here, never truncated)
 *     and every engine call resolves it against the session's working
 *     directory ("/" for SFTP; ".." clamps at the root). The module never
 *     folds a path itself; it asks api->resolve for the canonical form
 *     where it shows or keeps one (REALPATH, a handle's path).
 *  4. An SFTP handle is (slot index, generation); a stale or forged handle
 *     never reaches another slot's object. A file slot holds a core handle
 *     (sd_handle) of this session; the core checks it again.
 *  5. When serving ends for any reason, every open file is abandoned: a
 *     client that vanishes (or never sent CLOSE) leaves the previous
 *     version, and a file it was creating does not appear (the core makes
 *     a created file visible only at its first commit).
 *  6. Replies are queued in `out` and written before the session waits for
 *     input (or when 64 KiB are pending): never later than that, so a
 *     client never waits for an answer the server holds. `out` always has
 *     room for the largest reply (max_read + 1 KiB) when one is started.
 *  7. A call that answers -SD_EAUTH (user disabled or removed, password
 *     changed, token revoked, key removed) gets PERMISSION_DENIED
 *     "authentication no longer valid", and the session then ends.
 *
 * Handle states (one function per transition):
 *
 *     H_FREE --req_open()--> H_FILE (core handle) --close_handle()--> H_FREE
 *        |                     |  copy-data of a whole file: the core handle
 *        |                     |  is abandoned (fh = 0); file_handle()
 *        |                     |  reopens it on the next use
 *        +----req_opendir()--> H_DIR (last name, eof) --close_handle()--> H_FREE
 *     any --drop_all() at session end--> H_FREE (files abandoned)
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libssh/libssh.h>
#include <libssh/sftp.h>

#include "sftp_int.h"
#include "util.h"

#define PKT_SLACK 1024u        /* header room above max_read in a packet */
#define READDIR_PAGE 128       /* entries per NAME reply at most */
#define ATTR_EXT_MAX 64        /* extended attribute pairs accepted */
#define SFTP_V3 3u
#define OUT_FLUSH_AT 65536     /* pending reply bytes written at once */

/* ---------------------------------------------------------------- types */

enum hstate { H_FREE = 0, H_FILE, H_DIR };

struct handle {
	int state;
	uint32_t gen;
	char *path;          /* canonical path at open (api->resolve) */
	/* H_FILE */
	sd_handle fh;        /* the core handle; 0 after copy-data released it */
	unsigned oflags;     /* SD_O_* of the OPEN (for a reopen) */
	int readable, writable;
	/* H_DIR */
	char *last;          /* last name sent, NULL before the first page */
	int eof;
};

typedef struct sess {
	sftp_ctx *x;
	unsigned char *in;   /* receive buffer: [in_off, in_len) unparsed */
	size_t in_off, in_len, in_cap;
	unsigned char *out;  /* replies not yet written: [0, out_len) */
	size_t out_len, out_cap;
	int werr;            /* a channel write failed: the session is over */
	int auth_dead;       /* a call answered -SD_EAUTH: end after the reply */
	unsigned char *scratch; /* copy-data bounce buffer (lazy) */
	struct handle *h;
	int nh;
	size_t cur;          /* bytes of the packet being served */
	int64_t last_io;
	uint64_t reqs;
	/* statistics for the session_end debug line */
	uint64_t bytes_in, bytes_out;
	int64_t us_engine, us_wait; /* time in file_pwrite/pread, waiting for input */
	int64_t us_type[256];       /* time serving each request type */
	uint32_t n_type[256];
} sess;

/* Bounded reader over one packet. `bad` latches on any overrun. */
typedef struct rd {
	const unsigned char *p;
	size_t n, off;
	int bad;
} rd;

/* Bounded writer into s->out. `over` latches when a put does not fit. */
typedef struct wr {
	unsigned char *p;
	size_t cap, len;
	int over;
} wr;

typedef struct sftp_attr {
	uint32_t flags;
	uint64_t size;
	uint32_t uid, gid, perm, atime, mtime;
} sftp_attr;

/* ---------------------------------------------------------------- utils */

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t sd__sftp_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t rd_u32(rd *r)
{
	uint32_t v;
	if (r->bad || r->n - r->off < 4) {
		r->bad = 1;
		return 0;
	}
	v = be32(r->p + r->off);
	r->off += 4;
	return v;
}

static uint64_t rd_u64(rd *r)
{
	uint64_t hi = rd_u32(r);
	uint64_t lo = rd_u32(r);
	return hi << 32 | lo;
}

/* A string: pointer into the packet and its length (not NUL-terminated). */
static const unsigned char *rd_str(rd *r, uint32_t *len)
{
	const unsigned char *p;
	uint32_t n = rd_u32(r);
	if (r->bad || r->n - r->off < n) {
		r->bad = 1;
		*len = 0;
		return NULL;
	}
	p = r->p + r->off;
	r->off += n;
	*len = n;
	return p;
}

/* Attributes (SFTP v3 layout). Extended pairs are skipped, at most
 * ATTR_EXT_MAX of them. */
static void rd_attrs(rd *r, sftp_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->flags = rd_u32(r);
	if (a->flags & SSH_FILEXFER_ATTR_SIZE)
		a->size = rd_u64(r);
	if (a->flags & SSH_FILEXFER_ATTR_UIDGID) {
		a->uid = rd_u32(r);
		a->gid = rd_u32(r);
	}
	if (a->flags & SSH_FILEXFER_ATTR_PERMISSIONS)
		a->perm = rd_u32(r);
	if (a->flags & SSH_FILEXFER_ATTR_ACMODTIME) {
		a->atime = rd_u32(r);
		a->mtime = rd_u32(r);
	}
	if (a->flags & SSH_FILEXFER_ATTR_EXTENDED) {
		uint32_t i, n = rd_u32(r), l;
		if (n > ATTR_EXT_MAX)
			r->bad = 1;
		for (i = 0; i < n && !r->bad; i++) {
			rd_str(r, &l);
			rd_str(r, &l);
		}
	}
}

/* Does a string from the packet equal the C string s? */
static int str_is(const unsigned char *p, uint32_t n, const char *s)
{
	size_t l = strlen(s);
	return p != NULL && n == l && memcmp(p, s, l) == 0;
}

static int flush_out(sess *s);

/* Start a reply packet at the end of the pending output, after flushing it
 * if the largest reply might not fit (invariant 6). */
static void wr_begin(wr *w, sess *s, uint8_t type, uint32_t id)
{
	if (s->out_cap - s->out_len < (size_t)s->x->max_read + PKT_SLACK)
		flush_out(s);
	w->p = s->out + s->out_len;
	w->cap = s->out_cap - s->out_len;
	w->len = 4; /* length, set by send_packet */
	w->over = 0;
	w->p[w->len++] = type;
	put_be32(w->p + w->len, id);
	w->len += 4;
}

static void wr_u32(wr *w, uint32_t v)
{
	if (w->over || w->cap - w->len < 4) {
		w->over = 1;
		return;
	}
	put_be32(w->p + w->len, v);
	w->len += 4;
}

static void wr_u64(wr *w, uint64_t v)
{
	wr_u32(w, (uint32_t)(v >> 32));
	wr_u32(w, (uint32_t)v);
}

static void wr_bytes(wr *w, const void *p, size_t n)
{
	if (w->over || w->cap - w->len < n) {
		w->over = 1;
		return;
	}
	memcpy(w->p + w->len, p, n);
	w->len += n;
}

static void wr_str(wr *w, const void *p, size_t n)
{
	if (n > UINT32_MAX) {
		w->over = 1;
		return;
	}
	wr_u32(w, (uint32_t)n);
	wr_bytes(w, p, n);
}

static void wr_cstr(wr *w, const char *s)
{
	wr_str(w, s, strlen(s));
}

static uint32_t clamp32(int64_t t)
{
	if (t < 0)
		return 0;
	if (t > (int64_t)UINT32_MAX)
		return UINT32_MAX;
	return (uint32_t)t;
}

static void wr_attrs(wr *w, const sd_stat *st)
{
	uint32_t perm = st->mode & 07777;
	perm |= st->kind == SD_KIND_DIR ? 0040000u : 0100000u;
	wr_u32(w, SSH_FILEXFER_ATTR_SIZE | SSH_FILEXFER_ATTR_UIDGID |
		      SSH_FILEXFER_ATTR_PERMISSIONS | SSH_FILEXFER_ATTR_ACMODTIME);
	wr_u64(w, st->kind == SD_KIND_DIR ? 0 : st->size);
	wr_u32(w, 0);
	wr_u32(w, 0);
	wr_u32(w, perm);
	wr_u32(w, clamp32(st->mtime));
	wr_u32(w, clamp32(st->mtime));
}

/* ---------------------------------------------------------------- I/O */

/* Write all n bytes on the channel. 0 or -EIO. */
static int chan_write_all(sess *s, const unsigned char *p, size_t n)
{
	while (n > 0) {
		uint32_t chunk = n > (1u << 30) ? (1u << 30) : (uint32_t)n;
		int r = ssh_channel_write(s->x->chan, p, chunk);
		if (r <= 0)
			return -EIO;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Write out every pending reply. 0 or -EIO (latched in werr). */
static int flush_out(sess *s)
{
	if (s->werr)
		return -EIO;
	if (s->out_len > 0 && chan_write_all(s, s->out, s->out_len) < 0)
		s->werr = 1;
	s->out_len = 0;
	return s->werr ? -EIO : 0;
}

static int send_status(sess *s, uint32_t id, uint32_t code, const char *msg);

/* Queue the packet in w (built by wr_begin at the end of the pending
 * output). A reply that did not fit is replaced by a FAILURE status
 * (invariant 2). Large output is written at once; small replies wait for
 * the next read from the channel (fill), so a burst of requests gets its
 * answers in a few SSH packets. 0 or -EIO. */
static int send_packet(sess *s, wr *w, uint32_t id)
{
	if (w->over)
		return send_status(s, id, SSH_FX_FAILURE, "reply too large");
	put_be32(w->p, (uint32_t)(w->len - 4));
	s->out_len += w->len;
	if (s->out_len >= OUT_FLUSH_AT)
		return flush_out(s);
	return s->werr ? -EIO : 0;
}

static int send_status(sess *s, uint32_t id, uint32_t code, const char *msg)
{
	wr w;
	wr_begin(&w, s, SSH_FXP_STATUS, id);
	wr_u32(&w, code);
	wr_cstr(&w, msg);
	wr_cstr(&w, "en");
	if (w.over)
		return -EIO; /* cannot happen: messages are short */
	return send_packet(s, &w, id);
}

static int send_ok(sess *s, uint32_t id)
{
	return send_status(s, id, SSH_FX_OK, "Success");
}

/* The SFTP v3 status for an engine error (OpenSSH's errno mapping). */
static uint32_t fx_code(int err)
{
	if (err < 0)
		err = -err;
	switch (err) {
	case 0:
		return SSH_FX_OK;
	case ENOENT:
	case ENOTDIR:
		return SSH_FX_NO_SUCH_FILE;
	case EACCES:
	case EPERM:
	case EROFS:
	case SD_EAUTH:
		return SSH_FX_PERMISSION_DENIED;
	case ENOSYS:
	case EOPNOTSUPP:
		return SSH_FX_OP_UNSUPPORTED;
	default:
		return SSH_FX_FAILURE;
	}
}

/* The status for an engine result. -SD_EAUTH also ends the session after
 * this reply (invariant 7). */
static int send_err(sess *s, uint32_t id, int err)
{
	if (err == 0)
		return send_ok(s, id);
	if (err == -SD_EAUTH) {
		s->auth_dead = 1;
		return send_status(s, id, SSH_FX_PERMISSION_DENIED, "authentication no longer valid");
	}
	return send_status(s, id, fx_code(err), s->x->api->strerror(err));
}

/* Make sure [in_off, in_off + need) is buffered. Blocks in slices of one
 * second so that the idle timeout and module stop are noticed.
 * 0, -EPIPE (client EOF), -ETIMEDOUT, -ECANCELED (stop) or -EIO. */
static int fill(sess *s, size_t need)
{
	while (s->in_len - s->in_off < need) {
		int avail, r;
		if (s->in_off > 0 && s->in_cap - s->in_off < need) {
			memmove(s->in, s->in + s->in_off, s->in_len - s->in_off);
			s->in_len -= s->in_off;
			s->in_off = 0;
		}
		if (s->out_len > 0) {
			/* more requests already here? then keep batching replies */
			r = ssh_channel_read_nonblocking(s->x->chan, s->in + s->in_len,
							 (uint32_t)(s->in_cap - s->in_len), 0);
			if (r > 0) {
				s->in_len += (size_t)r;
				s->last_io = sd__sftp_mono_ms();
				continue;
			}
			if (flush_out(s) < 0)
				return -EIO;
			if (r == SSH_EOF)
				return -EPIPE;
			if (r < 0)
				return -EIO;
		}
		{
			int64_t t0 = mono_us();
			avail = ssh_channel_poll_timeout(s->x->chan, 1000, 0);
			s->us_wait += mono_us() - t0;
		}
		if (avail == SSH_EOF)
			return -EPIPE;
		if (avail == SSH_ERROR || avail < 0)
			return -EIO;
		if (avail == 0) {
			if (*s->x->stopping)
				return -ECANCELED;
			if (s->x->idle_ms > 0 && sd__sftp_mono_ms() - s->last_io > s->x->idle_ms)
				return -ETIMEDOUT;
			continue;
		}
		r = ssh_channel_read_nonblocking(s->x->chan, s->in + s->in_len,
						 (uint32_t)(s->in_cap - s->in_len), 0);
		if (r == SSH_EOF)
			return -EPIPE;
		if (r < 0)
			return -EIO;
		s->in_len += (size_t)r;
		s->last_io = sd__sftp_mono_ms();
	}
	return 0;
}

/* ---------------------------------------------------------------- paths */

/* A path made safe for a log line (no quotes, backslashes or control
 * bytes; at most 255 bytes). Returns out. */
static const char *lp(char *out, size_t n, const char *p)
{
	size_t i;
	for (i = 0; i + 1 < n && p[i] != '\0'; i++) {
		unsigned char c = (unsigned char)p[i];
		out[i] = (c < 0x20 || c == 0x7f || c == '"' || c == '\\') ? '?' : (char)c;
	}
	out[i] = '\0';
	return out;
}

/* Read a path string from the packet into out as a C string, as the
 * client sent it: the engine call it is given to resolves it (invariant 3).
 * An embedded NUL is refused, not truncated. On failure answers the request
 * itself and returns 1 (caller stops), or -EIO. 0 = ok. */
static int get_path(sess *s, rd *r, uint32_t id, char *out, size_t outlen)
{
	uint32_t n;
	const unsigned char *p = rd_str(r, &n);
	if (r->bad)
		return send_status(s, id, SSH_FX_BAD_MESSAGE, "malformed request") < 0 ? -EIO : 1;
	if (n > SD_PATH_MAX || (size_t)n >= outlen)
		return send_err(s, id, -ENAMETOOLONG) < 0 ? -EIO : 1;
	if (memchr(p, '\0', n) != NULL)
		return send_status(s, id, SSH_FX_FAILURE, "invalid path: NUL byte") < 0 ? -EIO : 1;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

/* The canonical form of a client path (api->resolve) as a new string, for
 * a handle to keep. NULL with *err set on failure. */
static char *canonical(sess *s, const char *path, int *err)
{
	char out[SD_PATH_MAX + 1];
	int rc = s->x->api->resolve(s->x->sess, path, strlen(path), out, sizeof(out));
	if (rc < 0) {
		*err = rc;
		return NULL;
	}
	return sd_xstrdup(out);
}

/* ---------------------------------------------------------------- handles */

static struct handle *handle_alloc(sess *s, int *idx)
{
	int i;
	for (i = 0; i < s->nh; i++) {
		if (s->h[i].state == H_FREE) {
			struct handle *h = &s->h[i];
			uint32_t gen = h->gen + 1;
			memset(h, 0, sizeof(*h));
			h->gen = gen;
			*idx = i;
			return h;
		}
	}
	return NULL;
}

static int send_handle(sess *s, uint32_t id, int idx)
{
	wr w;
	unsigned char hb[8];
	put_be32(hb, (uint32_t)idx);
	put_be32(hb + 4, s->h[idx].gen);
	wr_begin(&w, s, SSH_FXP_HANDLE, id);
	wr_str(&w, hb, sizeof(hb));
	return send_packet(s, &w, id);
}

/* The live handle named by the next string of r, or NULL (invariant 4). */
static struct handle *get_handle(sess *s, rd *r)
{
	uint32_t n, idx, gen;
	const unsigned char *p = rd_str(r, &n);
	if (r->bad || n != 8)
		return NULL;
	idx = be32(p);
	gen = be32(p + 4);
	if (idx >= (uint32_t)s->nh || s->h[idx].state == H_FREE || s->h[idx].gen != gen)
		return NULL;
	return &s->h[idx];
}

/* The core handle of a file slot, reopening it when copy-data released it
 * (fh == 0): the file then exists, so CREAT, TRUNC and EXCL are dropped.
 * 0 or -errno. */
static int file_handle(sess *s, struct handle *h)
{
	unsigned fl = h->oflags & ~(SD_O_TRUNC | SD_O_EXCL);
	if (h->fh != 0)
		return 0;
	return s->x->api->handle_open(s->x->sess, h->path, fl, 0644, &h->fh, NULL);
}

/* Release a slot. abandon: drop uncommitted writes (session end); else a
 * file is committed (handle_close). Returns the commit result of a file
 * (0 for directories). */
static int close_handle(sess *s, struct handle *h, int abandon)
{
	const sd_core_api *api = s->x->api;
	int rc = 0;
	if (h->state == H_FILE && h->fh != 0) {
		if (abandon)
			api->handle_abandon(s->x->sess, h->fh);
		else
			rc = api->handle_close(s->x->sess, h->fh);
	}
	free(h->path);
	free(h->last);
	h->path = NULL;
	h->last = NULL;
	h->fh = 0;
	h->state = H_FREE;
	return rc;
}

static void drop_all(sess *s)
{
	int i, n = 0;
	for (i = 0; i < s->nh; i++) {
		if (s->h[i].state != H_FREE) {
			if (s->h[i].state == H_FILE && s->h[i].writable && s->h[i].fh != 0)
				n++;
			close_handle(s, &s->h[i], 1);
		}
	}
	if (n > 0)
		s->x->api->log(s->x->core, SD_LOG_INFO, "sftp",
			       "event=abandon user=%s addr=%s files=%d", s->x->user, s->x->addr, n);
}

/* ---------------------------------------------------------------- requests */

/* Request handlers. Contract shared by every req_* / ext_* function: r is
 * positioned after the request id; the handler queues exactly one reply for
 * id (a malformed body gets BAD_MESSAGE, an engine error its SFTP status via
 * send_err) and returns 0, or -EIO when the channel can no longer be
 * written (the session then ends). Paths go through get_path (invariant 3),
 * handles through get_handle (invariant 4). */

/* SFTP OPEN flags as engine open flags. WRITE, APPEND, CREAT, TRUNC and
 * EXCL all make a writer; no flag at all reads. The open mode is the
 * engine's default (shared read-write, last commit wins), like a file on
 * OpenSSH's server. */
static unsigned open_flags(uint32_t pflags)
{
	unsigned fl = 0;
	if (pflags & SSH_FXF_READ)
		fl |= SD_O_READ;
	if (pflags & (SSH_FXF_WRITE | SSH_FXF_APPEND | SSH_FXF_CREAT | SSH_FXF_TRUNC | SSH_FXF_EXCL))
		fl |= SD_O_WRITE;
	if (pflags & SSH_FXF_APPEND)
		fl |= SD_O_APPEND;
	if (pflags & SSH_FXF_CREAT)
		fl |= SD_O_CREAT;
	if (pflags & SSH_FXF_TRUNC)
		fl |= SD_O_TRUNC;
	if (pflags & SSH_FXF_EXCL)
		fl |= SD_O_EXCL | SD_O_CREAT;
	if (!(fl & (SD_O_READ | SD_O_WRITE)))
		fl |= SD_O_READ;
	return fl;
}

static int req_open(sess *s, uint32_t id, rd *r)
{
	const sd_core_api *api = s->x->api;
	char path[SD_PATH_MAX + 1], lb[256];
	uint32_t pflags, mode;
	unsigned fl;
	sftp_attr a;
	struct handle *h;
	sd_handle fh = 0;
	int idx, rc;

	if ((rc = get_path(s, r, id, path, sizeof(path))) != 0)
		return rc < 0 ? rc : 0;
	pflags = rd_u32(r);
	rd_attrs(r, &a);
	if (r->bad)
		return send_status(s, id, SSH_FX_BAD_MESSAGE, "malformed OPEN");
	fl = open_flags(pflags);
	mode = (a.flags & SSH_FILEXFER_ATTR_PERMISSIONS) ? (a.perm & 07777) : 0644;

	h = handle_alloc(s, &idx);
	if (h == NULL)
		return send_status(s, id, SSH_FX_FAILURE, "too many open handles");
	rc = api->handle_open(s->x->sess, path, fl, mode, &fh, NULL);
	if (rc == 0 && (h->path = canonical(s, path, &rc)) == NULL)
		api->handle_abandon(s->x->sess, fh);
	api->log(s->x->core, SD_LOG_DEBUG, "sftp", "event=open user=%s path=\"%s\" flags=0x%x err=%d",
		 s->x->user, lp(lb, sizeof(lb), path), pflags, rc);
	if (rc < 0)
		return send_err(s, id, rc);
	h->state = H_FILE;
	h->fh = fh;
	h->oflags = fl;
	h->readable = (fl & SD_O_READ) != 0;
	h->writable = (fl & SD_O_WRITE) != 0;
	return send_handle(s, id, idx);
}

static int req_close(sess *s, uint32_t id, rd *r)
{
	struct handle *h = get_handle(s, r);
	int64_t t0 = sd__sftp_mono_ms();
	int rc, was_write;
	if (h == NULL)
		return send_status(s, id, r->bad ? SSH_FX_BAD_MESSAGE : SSH_FX_INVALID_HANDLE,
				   "invalid handle");
	was_write = h->state == H_FILE && h->writable;
	if (was_write) {
		char lb[256];
		s->x->api->log(s->x->core, SD_LOG_DEBUG, "sftp", "event=close user=%s path=\"%s\"",
			       s->x->user, lp(lb, sizeof(lb), h->path));
	}
	rc = close_handle(s, h, 0);
	if (was_write)
		s->x->api->log(s->x->core, SD_LOG_DEBUG, "sftp", "event=closed user=%s rc=%d ms=%" PRId64,
			       s->x->user, rc, sd__sftp_mono_ms() - t0);
	return send_err(s, id, rc);
}

static int req_read(sess *s, uint32_t id, rd *r)
{
	struct handle *h = get_handle(s, r);
	uint64_t off = rd_u64(r);
	uint32_t len = rd_u32(r);
	ssize_t n;
	wr w;
	size_t lenpos;
	int rc;

	if (r->bad)
		return send_status(s, id, SSH_FX_BAD_MESSAGE, "malformed READ");
	if (h == NULL || h->state != H_FILE)
		return send_status(s, id, SSH_FX_INVALID_HANDLE, "invalid handle");
	if ((rc = file_handle(s, h)) < 0)
		return send_err(s, id, rc);
	if (len > s->x->max_read)
		len = s->x->max_read;
	if (len == 0)
		return send_status(s, id, SSH_FX_EOF, "End of file");
	wr_begin(&w, s, SSH_FXP_DATA, id);
	lenpos = w.len;
	wr_u32(&w, 0);
	if (w.cap - w.len < len)
		len = (uint32_t)(w.cap - w.len);
	{
		int64_t t0 = mono_us();
		/* the engine fills the reply packet in place */
		n = s->x->api->handle_pread(s->x->sess, h->fh, w.p + w.len, len, off);
		s->us_engine += mono_us() - t0;
	}
	if (n < 0)
		return send_err(s, id, (int)n);
	if (n == 0)
		return send_status(s, id, SSH_FX_EOF, "End of file");
	s->bytes_out += (uint64_t)n;
	put_be32(w.p + lenpos, (uint32_t)n);
	w.len += (size_t)n;
	return send_packet(s, &w, id);
}

static int req_write(sess *s, uint32_t id, rd *r)
{
	struct handle *h = get_handle(s, r);
	uint64_t off = rd_u64(r);
	uint32_t len;
	const unsigned char *data = rd_str(r, &len);
	ssize_t n;
	int rc;

	if (r->bad)
		return send_status(s, id, SSH_FX_BAD_MESSAGE, "malformed WRITE");
	if (h == NULL || h->state != H_FILE)
		return send_status(s, id, SSH_FX_INVALID_HANDLE, "invalid handle");
	if (!h->writable)
		return send_status(s, id, SSH_FX_PERMISSION_DENIED, "file not opened for writing");
	if ((rc = file_handle(s, h)) < 0)
		return send_err(s, id, rc);
	{
		/* an APPEND handle writes at the end whatever off says (engine) */
		int64_t t0 = mono_us();
		n = s->x->api->handle_pwrite(s->x->sess, h->fh, data, len, off);
		s->us_engine += mono_us() - t0;
	}
	if (n < 0)
		return send_err(s, id, (int)n);
	if ((size_t)n != len)
		return send_status(s, id, SSH_FX_FAILURE, "short write");
	s->bytes_in += len;
	return send_ok(s, id);
}

static int reply_stat(sess *s, uint32_t id, const sd_stat *st)
{
	wr w;
	wr_begin(&w, s, SSH_FXP_ATTRS, id);
	wr_attrs(&w, st);
	return send_packet(s, &w, id);
}

static int req_stat(sess *s, uint32_t id, rd *r)
{
	char path[SD_PATH_MAX + 1];
	sd_stat st;
	int rc;
	if ((rc = get_path(s, r, id, path, sizeof(path))) != 0)
		return rc < 0 ? rc : 0;
	/* v3 STAT/LSTAT carry no flags; anything after the path is ignored */
	rc = s->x->api->stat(s->x->sess, path, &st);
	if (rc < 0)
		return send_err(s, id, rc);
	return reply_stat(s, id, &st);
}

static int req_fstat(sess *s, uint32_t id, rd *r)
{
	struct handle *h = get_handle(s, r);
	sd_stat st;
	int rc;
	if (h == NULL)
		return send_status(s, id, r->bad ? SSH_FX_BAD_MESSAGE : SSH_FX_INVALID_HANDLE,
				   "invalid handle");
	if (h->state == H_DIR)
		rc = s->x->api->stat(s->x->sess, h->path, &st);
	else if ((rc = file_handle(s, h)) == 0)
		rc = s->x->api->handle_fstat(s->x->sess, h->fh, &st);
	if (rc < 0)
		return send_err(s, id, rc);
	return reply_stat(s, id, &st);
}

/* Size (through a short-lived handle), mode and time of a path, in that
 * order, so that the time set last is the one kept. uid/gid are accepted
 * and ignored (one owner per tree). 0 or -errno. */
static int setstat_path(sess *s, const char *path, const sftp_attr *a)
{
	const sd_core_api *api = s->x->api;
	int rc;
	if (a->flags & SSH_FILEXFER_ATTR_SIZE) {
		sd_handle fh = 0;
		rc = api->handle_open(s->x->sess, path, SD_O_READ | SD_O_WRITE, 0644, &fh, NULL);
		if (rc < 0)
			return rc;
		rc = api->handle_truncate(s->x->sess, fh, a->size);
		if (rc < 0) {
			api->handle_abandon(s->x->sess, fh);
			return rc;
		}
		if ((rc = api->handle_close(s->x->sess, fh)) < 0)
			return rc;
	}
	if (a->flags & SSH_FILEXFER_ATTR_PERMISSIONS) {
		if ((rc = api->chmod(s->x->sess, path, a->perm & 07777)) < 0)
			return rc;
	}
	if (a->flags & SSH_FILEXFER_ATTR_ACMODTIME) {
		if ((rc = api->set_mtime(s->x->sess, path, (int64_t)a->mtime)) < 0)
			return rc;
	}
	return 0;
}

static int req_setstat(sess *s, uint32_t id, rd *r)
{
	char path[SD_PATH_MAX + 1];
	sftp_attr a;
	int rc;
	if ((rc = get_path(s, r, id, path, sizeof(path))) != 0)
		return rc < 0 ? rc : 0;
	rd_attrs(r, &a);
	if (r->bad)
		return send_status(s, id, SSH_FX_BAD_MESSAGE, "malformed SETSTAT");
	return send_err(s, id, setstat_path(s, path, &a));
}

/* FSETSTAT. On a file: size truncates or extends the handle's working copy
 * (a writer) or the file (a reader, through its path); mode and time go to
 * the engine handle, which keeps them for the commit when the file has
 * unsaved writes or is being created ("write, set mtime, close" keeps the
 * client's mtime), and applies them at once otherwise. On a directory: by
 * path. */
static int req_fsetstat(sess *s, uint32_t id, rd *r)
{
	const sd_core_api *api = s->x->api;
	struct handle *h = get_handle(s, r);
	sftp_attr a;
	unsigned mask = 0;
	int rc = 0;
	rd_attrs(r, &a);
	if (r->bad)
		return send_status(s, id, SSH_FX_BAD_MESSAGE, "malformed FSETSTAT");
	if (h == NULL)
		return send_status(s, id, SSH_FX_INVALID_HANDLE, "invalid handle");
	if (h->state == H_DIR)
		return send_err(s, id, setstat_path(s, h->path, &a));
	if ((rc = file_handle(s, h)) < 0)
		return send_err(s, id, rc);
	if (a.flags & SSH_FILEXFER_ATTR_SIZE) {
		if (h->writable) {
			rc = api->handle_truncate(s->x->sess, h->fh, a.size);
		} else {
			sftp_attr sz = {.flags = SSH_FILEXFER_ATTR_SIZE, .size = a.size};
			rc = setstat_path(s, h->path, &sz);
		}
		if (rc < 0)
			return send_err(s, id, rc);
	}
	if (a.flags & SSH_FILEXFER_ATTR_PERMISSIONS)
		mask |= SD_ATTR_MODE;
	if (a.flags & SSH_FILEXFER_ATTR_ACMODTIME)
		mask |= SD_ATTR_MTIME;
	if (mask != 0)
		rc = api->handle_setattr(s->x->sess, h->fh, mask, a.perm & 07777, (int64_t)a.mtime);
	return send_err(s, id, rc);
}

static int req_opendir(sess *s, uint32_t id, rd *r)
{
	char path[SD_PATH_MAX + 1];
	sd_stat st;
	struct handle *h;
	int idx, rc;
	if ((rc = get_path(s, r, id, path, sizeof(path))) != 0)
		return rc < 0 ? rc : 0;
	rc = s->x->api->stat(s->x->sess, path, &st);
	if (rc < 0)
		return send_err(s, id, rc);
	if (st.kind != SD_KIND_DIR)
		return send_err(s, id, -ENOTDIR);
	h = handle_alloc(s, &idx);
	if (h == NULL)
		return send_status(s, id, SSH_FX_FAILURE, "too many open handles");
	if ((h->path = canonical(s, path, &rc)) == NULL)
		return send_err(s, id, rc);
	h->state = H_DIR;
	return send_handle(s, id, idx);
}

/* "-rw-r--r--    1 alice    alice        1234 Nov 21 15:50 name" */
static void longname(char *buf, size_t n, const sd_stat *st, const char *name,
		     const char *owner)
{
	char perm[11], date[32];
	struct tm tm;
	time_t t = (time_t)st->mtime, now = time(NULL);
	int i;
	static const char rwx[] = "rwxrwxrwx";
	perm[0] = st->kind == SD_KIND_DIR ? 'd' : '-';
	for (i = 0; i < 9; i++)
		perm[1 + i] = (st->mode & (0400u >> i)) ? rwx[i] : '-';
	perm[10] = '\0';
	if (localtime_r(&t, &tm) == NULL ||
	    strftime(date, sizeof(date),
		     (now - t < 182 * 86400 && t <= now + 86400) ? "%b %e %H:%M" : "%b %e  %Y",
		     &tm) == 0)
		snprintf(date, sizeof(date), "?");
	if (snprintf(buf, n, "%s    1 %-8s %-8s %8" PRIu64 " %s %s", perm, owner, owner,
		     st->kind == SD_KIND_DIR ? (uint64_t)0 : st->size, date, name) >= (int)n)
		buf[n - 1] = '\0';
}

struct rdctx {
	sess *s;
	wr *w;
	int count, stopped;
	char last[SD_NAME_MAX + 1];
};

static int readdir_cb(void *arg, const sd_dirent *e)
{
	struct rdctx *c = arg;
	char ln[SD_NAME_MAX + 128];
	size_t nl = strlen(e->name);
	wr save;
	if (nl > SD_NAME_MAX) {
		c->stopped = 1;
		return 1;
	}
	longname(ln, sizeof(ln), &e->st, e->name, c->s->x->user);
	save = *c->w;
	wr_str(c->w, e->name, nl);
	wr_cstr(c->w, ln);
	wr_attrs(c->w, &e->st);
	if (c->w->over) {
		*c->w = save; /* does not fit: stop before this entry */
		c->stopped = 1;
		return 1;
	}
	memcpy(c->last, e->name, nl + 1);
	c->count++;
	return 0;
}

/* One page of entries after the last name sent (the engine's stable name
 * order makes that a cursor that survives changes to the directory). */
static int req_readdir(sess *s, uint32_t id, rd *r)
{
	struct handle *h = get_handle(s, r);
	struct rdctx c;
	wr w;
	size_t countpos;
	int more = 0, rc;

	if (h == NULL || h->state != H_DIR)
		return send_status(s, id, r->bad ? SSH_FX_BAD_MESSAGE : SSH_FX_INVALID_HANDLE,
				   "invalid handle");
	if (h->eof)
		return send_status(s, id, SSH_FX_EOF, "End of directory");
	wr_begin(&w, s, SSH_FXP_NAME, id);
	countpos = w.len;
	wr_u32(&w, 0);
	memset(&c, 0, sizeof(c));
	c.s = s;
	c.w = &w;
	rc = s->x->api->readdir(s->x->sess, h->path, h->last, READDIR_PAGE, readdir_cb, &c, &more);
	if (rc < 0)
		return send_err(s, id, rc);
	if (c.count == 0) {
		h->eof = 1;
		return send_status(s, id, SSH_FX_EOF, "End of directory");
	}
	if (!more && !c.stopped)
		h->eof = 1;
	free(h->last);
	h->last = sd_xstrdup(c.last);
	put_be32(w.p + countpos, (uint32_t)c.count);
	return send_packet(s, &w, id);
}

/* REMOVE is for files; the engine refuses a directory (-EISDIR), which
 * needs RMDIR, as with OpenSSH. */
static int req_remove(sess *s, uint32_t id, rd *r)
{
	char path[SD_PATH_MAX + 1];
	int rc;
	if ((rc = get_path(s, r, id, path, sizeof(path))) != 0)
		return rc < 0 ? rc : 0;
	return send_err(s, id, s->x->api->unlink(s->x->sess, path, 0));
}

static int req_mkdir(sess *s, uint32_t id, rd *r)
{
	char path[SD_PATH_MAX + 1];
	sftp_attr a;
	int rc;
	if ((rc = get_path(s, r, id, path, sizeof(path))) != 0)
		return rc < 0 ? rc : 0;
	rd_attrs(r, &a);
	if (r->bad)
		return send_status(s, id, SSH_FX_BAD_MESSAGE, "malformed MKDIR");
	rc = s->x->api->mkdir(s->x->sess, path,
			      (a.flags & SSH_FILEXFER_ATTR_PERMISSIONS) ? (a.perm & 07777) : 0755, 0);
	return send_err(s, id, rc);
}

static int req_rmdir(sess *s, uint32_t id, rd *r)
{
	char path[SD_PATH_MAX + 1];
	int rc;
	if ((rc = get_path(s, r, id, path, sizeof(path))) != 0)
		return rc < 0 ? rc : 0;
	return send_err(s, id, s->x->api->rmdir(s->x->sess, path));
}

/* The engine's canonical form (v3: one name, attributes empty, as OpenSSH
 * does). Touches no file, so the credentials are checked here. */
static int req_realpath(sess *s, uint32_t id, rd *r)
{
	char path[SD_PATH_MAX + 1], canon[SD_PATH_MAX + 1];
	wr w;
	int rc;
	if ((rc = get_path(s, r, id, path, sizeof(path))) != 0)
		return rc < 0 ? rc : 0;
	if ((rc = s->x->api->session_check(s->x->sess)) < 0 ||
	    (rc = s->x->api->resolve(s->x->sess, path, strlen(path), canon, sizeof(canon))) < 0)
		return send_err(s, id, rc);
	wr_begin(&w, s, SSH_FXP_NAME, id);
	wr_u32(&w, 1);
	wr_cstr(&w, canon);
	wr_cstr(&w, canon);
	wr_u32(&w, 0);
	return send_packet(s, &w, id);
}

/* RENAME (v3: fails if the target exists, like OpenSSH) and
 * posix-rename@openssh.com (replaces). The engine's rename replaces, so
 * for v3 the target is looked up first; the canonical forms tell a rename
 * onto itself (allowed) from one onto another file. */
static int do_rename(sess *s, uint32_t id, rd *r, int replace)
{
	const sd_core_api *api = s->x->api;
	char from[SD_PATH_MAX + 1], to[SD_PATH_MAX + 1];
	char cf[SD_PATH_MAX + 1], ct[SD_PATH_MAX + 1];
	sd_stat st;
	int rc;
	if ((rc = get_path(s, r, id, from, sizeof(from))) != 0)
		return rc < 0 ? rc : 0;
	if ((rc = get_path(s, r, id, to, sizeof(to))) != 0)
		return rc < 0 ? rc : 0;
	if (!replace) {
		if ((rc = api->resolve(s->x->sess, from, strlen(from), cf, sizeof(cf))) < 0 ||
		    (rc = api->resolve(s->x->sess, to, strlen(to), ct, sizeof(ct))) < 0)
			return send_err(s, id, rc);
		if (strcmp(cf, ct) != 0 && api->stat(s->x->sess, ct, &st) == 0)
			return send_status(s, id, SSH_FX_FAILURE, "target exists");
	}
	return send_err(s, id, api->rename(s->x->sess, from, to));
}

/* ------------------------------------------------------------- extensions */

/* statvfs@openssh.com's answer: the disk holding the content, or the
 * user's quota and what is left of it when a quota is set. */
static int reply_statvfs(sess *s, uint32_t id)
{
	sd_fsinfo fi;
	uint64_t bs = 4096, blocks, avail;
	wr w;
	int rc = s->x->api->fsinfo(s->x->sess, &fi);
	if (rc < 0)
		return send_err(s, id, rc);
	blocks = fi.disk_total / bs;
	avail = fi.disk_free / bs;
	if (fi.quota > 0) {
		uint64_t q = (uint64_t)fi.quota / bs;
		uint64_t left = fi.used < fi.quota ? (uint64_t)(fi.quota - fi.used) / bs : 0;
		blocks = q;
		if (left < avail)
			avail = left;
	}
	wr_begin(&w, s, SSH_FXP_EXTENDED_REPLY, id);
	wr_u64(&w, bs);     /* f_bsize */
	wr_u64(&w, bs);     /* f_frsize */
	wr_u64(&w, blocks); /* f_blocks */
	wr_u64(&w, avail);  /* f_bfree */
	wr_u64(&w, avail);  /* f_bavail */
	wr_u64(&w, blocks); /* f_files: no inode limit; report blocks */
	wr_u64(&w, avail);  /* f_ffree */
	wr_u64(&w, avail);  /* f_favail */
	wr_u64(&w, 0x73746f72); /* f_fsid */
	wr_u64(&w, (s->x->readonly ? 1u : 0u) | 2u); /* ST_RDONLY | ST_NOSUID */
	wr_u64(&w, SD_NAME_MAX);
	return send_packet(s, &w, id);
}

/* copy-data: whole committed file onto an empty target = a new reference
 * to the same content (api->copy), no data moved; anything else is copied
 * through the handles in max_read chunks. */
static int ext_copy_data(sess *s, uint32_t id, rd *r)
{
	const sd_core_api *api = s->x->api;
	struct handle *rh = get_handle(s, r);
	uint64_t roff = rd_u64(r), rlen = rd_u64(r);
	struct handle *wh = get_handle(s, r);
	uint64_t woff = rd_u64(r), done = 0;
	sd_stat rst, wst, cur;
	int rc;

	if (r->bad)
		return send_status(s, id, SSH_FX_BAD_MESSAGE, "malformed copy-data");
	if (rh == NULL || wh == NULL || rh->state != H_FILE || wh->state != H_FILE)
		return send_status(s, id, SSH_FX_INVALID_HANDLE, "invalid handle");
	if (!rh->readable || !wh->writable)
		return send_status(s, id, SSH_FX_PERMISSION_DENIED,
				   "copy-data needs a read handle and a write handle");
	if ((rc = file_handle(s, rh)) < 0 || (rc = file_handle(s, wh)) < 0)
		return send_err(s, id, rc);
	if (rh == wh && (rlen == 0 || (roff < woff + rlen && woff < roff + rlen)))
		return send_status(s, id, SSH_FX_FAILURE, "overlapping ranges");

	/* The reference is taken from the path's current content, so it must
	 * still be the version the read handle opened. The target's (empty)
	 * core handle is dropped; file_handle() reopens it on its next use. */
	if (rh != wh && !rh->writable && roff == 0 && woff == 0 && !(wh->oflags & SD_O_APPEND) &&
	    api->handle_fstat(s->x->sess, rh->fh, &rst) == 0 && rst.sha256[0] != '\0' &&
	    (rlen == 0 || rlen >= rst.size) && api->handle_fstat(s->x->sess, wh->fh, &wst) == 0 &&
	    wst.size == 0 && api->stat(s->x->sess, rh->path, &cur) == 0 &&
	    strcmp(cur.sha256, rst.sha256) == 0) {
		char l1[256], l2[256];
		api->handle_abandon(s->x->sess, wh->fh);
		wh->fh = 0;
		rc = api->copy(s->x->sess, rh->path, wh->path);
		api->log(s->x->core, SD_LOG_DEBUG, "sftp",
			 "event=copy user=%s from=\"%s\" to=\"%s\" mode=reference err=%d", s->x->user,
			 lp(l1, sizeof(l1), rh->path), lp(l2, sizeof(l2), wh->path), rc);
		return send_err(s, id, rc);
	}

	if (s->scratch == NULL)
		s->scratch = sd_xmalloc(s->x->max_read);
	while (rlen == 0 || done < rlen) {
		size_t chunk = s->x->max_read;
		ssize_t n, m;
		if (rlen != 0 && rlen - done < chunk)
			chunk = (size_t)(rlen - done);
		n = api->handle_pread(s->x->sess, rh->fh, s->scratch, chunk, roff + done);
		if (n < 0)
			return send_err(s, id, (int)n);
		if (n == 0)
			break;
		m = api->handle_pwrite(s->x->sess, wh->fh, s->scratch, (size_t)n, woff + done);
		if (m < 0)
			return send_err(s, id, (int)m);
		if (m != n)
			return send_status(s, id, SSH_FX_FAILURE, "short write");
		done += (uint64_t)n;
	}
	return send_ok(s, id);
}

/* check-file (paramiko), check-file-handle, check-file-name: SHA-256 of a
 * whole file, from its stored content address (no hashing here). */
static int ext_check_file(sess *s, uint32_t id, rd *r, int by_name)
{
	char path[SD_PATH_MAX + 1];
	const unsigned char *algs;
	uint32_t alen, bsize, i;
	uint64_t start, length;
	unsigned char digest[32];
	struct handle *h = NULL;
	sd_stat st;
	wr w;
	int rc, ok = 0;

	if (by_name) {
		if ((rc = get_path(s, r, id, path, sizeof(path))) != 0)
			return rc < 0 ? rc : 0;
	} else {
		h = get_handle(s, r);
	}
	algs = rd_str(r, &alen);
	start = rd_u64(r);
	length = rd_u64(r);
	bsize = rd_u32(r);
	if (r->bad)
		return send_status(s, id, SSH_FX_BAD_MESSAGE, "malformed check-file");
	if (by_name) {
		rc = s->x->api->stat(s->x->sess, path, &st);
	} else {
		if (h == NULL || h->state != H_FILE)
			return send_status(s, id, SSH_FX_INVALID_HANDLE, "invalid handle");
		if ((rc = file_handle(s, h)) == 0)
			rc = s->x->api->handle_fstat(s->x->sess, h->fh, &st);
	}
	if (rc < 0)
		return send_err(s, id, rc);
	for (i = 0; i < alen;) {
		uint32_t j = i;
		while (j < alen && algs[j] != ',')
			j++;
		if (j - i == 6 && memcmp(algs + i, "sha256", 6) == 0)
			ok = 1;
		i = j + 1;
	}
	if (!ok)
		return send_status(s, id, SSH_FX_OP_UNSUPPORTED, "only sha256 is available");
	if (st.kind != SD_KIND_FILE)
		return send_status(s, id, SSH_FX_FAILURE, "not a regular file");
	if (start != 0 || (length != 0 && length != st.size) || (bsize != 0 && bsize < st.size))
		return send_status(s, id, SSH_FX_OP_UNSUPPORTED,
				   "only the hash of the whole file is available");
	if (st.sha256[0] == '\0')
		return send_status(s, id, SSH_FX_FAILURE,
				   "file has uncommitted changes: close or fsync it first");
	if (sd_unhex(st.sha256, digest, sizeof(digest)) < 0)
		return send_status(s, id, SSH_FX_FAILURE, "bad stored hash");
	wr_begin(&w, s, SSH_FXP_EXTENDED_REPLY, id);
	wr_cstr(&w, "check-file");
	wr_cstr(&w, "sha256");
	wr_bytes(&w, digest, sizeof(digest));
	return send_packet(s, &w, id);
}

static int req_extended(sess *s, uint32_t id, rd *r)
{
	uint32_t n;
	const unsigned char *name = rd_str(r, &n);
	if (r->bad)
		return send_status(s, id, SSH_FX_BAD_MESSAGE, "malformed EXTENDED");
	if (str_is(name, n, "posix-rename@openssh.com"))
		return do_rename(s, id, r, 1);
	if (str_is(name, n, "statvfs@openssh.com")) {
		char path[SD_PATH_MAX + 1];
		sd_stat st;
		int rc;
		if ((rc = get_path(s, r, id, path, sizeof(path))) != 0)
			return rc < 0 ? rc : 0;
		rc = s->x->api->stat(s->x->sess, path, &st);
		if (rc < 0)
			return send_err(s, id, rc);
		return reply_statvfs(s, id);
	}
	if (str_is(name, n, "fstatvfs@openssh.com")) {
		if (get_handle(s, r) == NULL)
			return send_status(s, id, SSH_FX_INVALID_HANDLE, "invalid handle");
		return reply_statvfs(s, id);
	}
	if (str_is(name, n, "fsync@openssh.com")) {
		struct handle *h = get_handle(s, r);
		if (h == NULL || h->state != H_FILE)
			return send_status(s, id, SSH_FX_INVALID_HANDLE, "invalid handle");
		if (h->fh == 0 || !h->writable)
			return send_ok(s, id); /* nothing uncommitted */
		return send_err(s, id, s->x->api->handle_sync(s->x->sess, h->fh));
	}
	if (str_is(name, n, "limits@openssh.com")) {
		wr w;
		int rc = s->x->api->session_check(s->x->sess);
		if (rc < 0)
			return send_err(s, id, rc);
		wr_begin(&w, s, SSH_FXP_EXTENDED_REPLY, id);
		wr_u64(&w, (uint64_t)s->x->max_read + PKT_SLACK); /* max packet */
		wr_u64(&w, s->x->max_read);                        /* max read */
		wr_u64(&w, s->x->max_read);                        /* max write */
		wr_u64(&w, (uint64_t)s->x->max_handles);           /* max open handles */
		return send_packet(s, &w, id);
	}
	if (str_is(name, n, "copy-data"))
		return ext_copy_data(s, id, r);
	if (str_is(name, n, "check-file") || str_is(name, n, "check-file-handle"))
		return ext_check_file(s, id, r, 0);
	if (str_is(name, n, "check-file-name"))
		return ext_check_file(s, id, r, 1);
	if (str_is(name, n, "hardlink@openssh.com"))
		return send_status(s, id, SSH_FX_OP_UNSUPPORTED,
				   "hard links are not supported by this server");
	return send_status(s, id, SSH_FX_OP_UNSUPPORTED, "unsupported extended request");
}

/* One request. Returns 0 to go on, -errno to end the session. */
static int dispatch(sess *s, uint8_t type, uint32_t id, rd *r)
{
	switch (type) {
	case SSH_FXP_OPEN: return req_open(s, id, r);
	case SSH_FXP_CLOSE: return req_close(s, id, r);
	case SSH_FXP_READ: return req_read(s, id, r);
	case SSH_FXP_WRITE: return req_write(s, id, r);
	case SSH_FXP_LSTAT:
	case SSH_FXP_STAT: return req_stat(s, id, r);
	case SSH_FXP_FSTAT: return req_fstat(s, id, r);
	case SSH_FXP_SETSTAT: return req_setstat(s, id, r);
	case SSH_FXP_FSETSTAT: return req_fsetstat(s, id, r);
	case SSH_FXP_OPENDIR: return req_opendir(s, id, r);
	case SSH_FXP_READDIR: return req_readdir(s, id, r);
	case SSH_FXP_REMOVE: return req_remove(s, id, r);
	case SSH_FXP_MKDIR: return req_mkdir(s, id, r);
	case SSH_FXP_RMDIR: return req_rmdir(s, id, r);
	case SSH_FXP_REALPATH: return req_realpath(s, id, r);
	case SSH_FXP_RENAME: return do_rename(s, id, r, 0);
	case SSH_FXP_READLINK:
	case SSH_FXP_SYMLINK:
		return send_status(s, id, SSH_FX_OP_UNSUPPORTED, "symbolic links are not supported");
	case SSH_FXP_EXTENDED: return req_extended(s, id, r);
	default:
		return send_status(s, id, SSH_FX_OP_UNSUPPORTED, "unknown request type");
	}
}

/* ---------------------------------------------------------------- session */

/* Read the next packet: its type, and its body after the type byte.
 * 0, 1 = too long (answered, end session), or -errno from fill(). */
static int next_packet(sess *s, uint8_t *type, const unsigned char **body, size_t *blen)
{
	uint32_t len;
	int rc;
	if ((rc = fill(s, 4)) < 0)
		return rc;
	len = be32(s->in + s->in_off);
	if ((size_t)len > s->in_cap - 4) {
		/* invariant 1: refuse; answer with the id when it is there */
		if (fill(s, 9) == 0) {
			uint32_t id = be32(s->in + s->in_off + 5);
			send_status(s, id, SSH_FX_FAILURE, "packet too long");
		}
		s->x->api->log(s->x->core, SD_LOG_WARN, "sftp",
			       "event=bad_packet user=%s addr=%s len=%" PRIu32 " reason=too_long",
			       s->x->user, s->x->addr, len);
		return 1;
	}
	if ((rc = fill(s, 4 + (size_t)len)) < 0)
		return rc;
	s->cur = 4 + (size_t)len;
	if (len == 0) {
		*type = 0;
		*body = s->in + s->in_off + 4;
		*blen = 0;
	} else {
		*type = s->in[s->in_off + 4];
		*body = s->in + s->in_off + 5;
		*blen = len - 1;
	}
	return 0;
}

static void consume(sess *s)
{
	s->in_off += s->cur;
	s->cur = 0;
	if (s->in_off == s->in_len)
		s->in_off = s->in_len = 0;
}

/* SSH_FXP_INIT -> SSH_FXP_VERSION 3 with our extension list. */
static int handshake(sess *s)
{
	static const char *const ext[][2] = {
		{"posix-rename@openssh.com", "1"},
		{"statvfs@openssh.com", "2"},
		{"fstatvfs@openssh.com", "2"},
		{"fsync@openssh.com", "1"},
		{"limits@openssh.com", "1"},
		{"copy-data", "1"},
		{"check-file-handle", "sha256"},
		{"check-file-name", "sha256"},
	};
	uint8_t type;
	const unsigned char *body;
	size_t blen, i;
	rd r;
	uint32_t ver;
	wr w;
	int rc = next_packet(s, &type, &body, &blen);
	if (rc != 0)
		return rc < 0 ? rc : -EPROTO;
	r.p = body;
	r.n = blen;
	r.off = 0;
	r.bad = 0;
	ver = rd_u32(&r);
	if (type != SSH_FXP_INIT || r.bad)
		return -EPROTO;
	consume(s);
	/* VERSION has no id: build it by hand (the output is empty here) */
	w.p = s->out;
	w.cap = s->out_cap;
	w.len = 4;
	w.over = 0;
	w.p[w.len++] = SSH_FXP_VERSION;
	wr_u32(&w, SFTP_V3);
	for (i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
		wr_cstr(&w, ext[i][0]);
		wr_cstr(&w, ext[i][1]);
	}
	put_be32(w.p, (uint32_t)(w.len - 4));
	s->x->api->log(s->x->core, SD_LOG_DEBUG, "sftp",
		       "event=sftp_init user=%s client_version=%" PRIu32, s->x->user, ver);
	return chan_write_all(s, w.p, w.len);
}

int sd__sftp_serve(sftp_ctx *x)
{
	sess s;
	int rc;
	memset(&s, 0, sizeof(s));
	s.x = x;
	s.in_cap = (size_t)x->max_read + PKT_SLACK + 4;
	s.out_cap = 2 * ((size_t)x->max_read + PKT_SLACK);
	s.nh = x->max_handles;
	s.in = malloc(s.in_cap);
	s.out = malloc(s.out_cap);
	s.h = calloc((size_t)s.nh, sizeof(*s.h));
	s.last_io = sd__sftp_mono_ms();
	if (s.in == NULL || s.out == NULL || s.h == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	rc = handshake(&s);
	while (rc == 0) {
		uint8_t type;
		const unsigned char *body;
		size_t blen;
		rd r;
		uint32_t id;
		rc = next_packet(&s, &type, &body, &blen);
		if (rc == 1) {
			rc = -EPROTO;
			break;
		}
		if (rc < 0)
			break;
		r.p = body;
		r.n = blen;
		r.off = 0;
		r.bad = 0;
		id = rd_u32(&r);
		if (r.bad) {
			/* no room for an id: answer with id 0, keep framing */
			rc = send_status(&s, 0, SSH_FX_BAD_MESSAGE, "packet too short");
			consume(&s);
			continue;
		}
		s.reqs++;
		{
			int64_t t0 = mono_us();
			rc = dispatch(&s, type, id, &r);
			s.us_type[type] += mono_us() - t0;
			s.n_type[type]++;
		}
		consume(&s);
		s.last_io = sd__sftp_mono_ms(); /* a long commit is not idleness */
		if (rc == 0 && s.auth_dead)
			rc = -EKEYREVOKED; /* invariant 7: answered, now end */
	}
	flush_out(&s); /* e.g. the answer to a packet that was too long */
out:
	x->api->log(x->core, SD_LOG_DEBUG, "sftp",
		    "event=sftp_stats user=%s requests=%" PRIu64 " bytes_in=%" PRIu64
		    " bytes_out=%" PRIu64 " engine_ms=%" PRId64 " wait_ms=%" PRId64,
		    x->user, s.reqs, s.bytes_in, s.bytes_out, s.us_engine / 1000,
		    s.us_wait / 1000);
	{
		/* the three request types that took longest, for profiling */
		char b[160];
		int k, i, len = 0;
		b[0] = '\0';
		for (k = 0; k < 3 && len < (int)sizeof(b); k++) {
			int best = -1;
			for (i = 0; i < 256; i++)
				if (s.n_type[i] && (best < 0 || s.us_type[i] > s.us_type[best]))
					best = i;
			if (best < 0)
				break;
			len += snprintf(b + len, sizeof(b) - (size_t)len, " type%d=%u/%" PRId64 "ms",
					best, s.n_type[best], s.us_type[best] / 1000);
			s.n_type[best] = 0;
		}
		x->api->log(x->core, SD_LOG_DEBUG, "sftp", "event=sftp_profile user=%s%s", x->user, b);
	}
	drop_all(&s);
	free(s.in);
	free(s.out);
	free(s.scratch);
	free(s.h);
	if (rc == -EPIPE)
		rc = 0;
	return rc;
}
