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
 *  3. Every path from the client is resolved here against "/" (".." clamps
 *     at the root, like a chroot) and then validated again by the core,
 *     which refuses NUL, bad UTF-8 and overlong names. Embedded NULs are
 *     refused here, never truncated.
 *  4. A handle is (slot index, generation); a stale or forged handle never
 *     reaches another slot's object.
 *  5. When serving ends for any reason, every open file is abandoned: a
 *     client that vanishes (or never sent CLOSE) leaves the previous version.
 *  7. Small-file fast path: an OPEN for WRITE|CREAT|TRUNC (no READ, no
 *     APPEND) is checked with stat (read-only login, directory, EXCL,
 *     parent) and then only buffers sequential WRITEs from offset 0 in
 *     memory; CLOSE stores them with one streamed upload (upload_begin/
 *     write/commit), so nothing is visible before CLOSE and a vanished
 *     client leaves nothing at all. Any other use of the handle (a write
 *     elsewhere, READ, FSTAT, truncation, fsync, copy-data, more than
 *     FAST_MAX bytes, or the session holding FAST_SESSION_MAX) converts it
 *     first into an engine random-access file holding the same bytes.
 *  6. Replies are queued in `out` and written before the session waits for
 *     input (or when 64 KiB are pending): never later than that, so a
 *     client never waits for an answer the server holds. `out` always has
 *     room for the largest reply (max_read + 1 KiB) when one is started.
 *
 * Handle states (one function per transition):
 *
 *     H_FREE --req_open()--> H_FILE --close_handle()--> H_FREE
 *                              |  buffered (fast path) --convert()--> engine
 *                              |  file; CLOSE of a buffered file = one upload
 *        |                      |  copy-data whole file: f released,
 *        |                      |  reopen=1; ensure_open() reopens on use
 *        +----open_dir()----> H_DIR (last name, eof) --close_handle()--> H_FREE
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

#define PKT_SLACK 1024u        /* header room above max_read in a packet */
#define READDIR_PAGE 128       /* entries per NAME reply at most */
#define ATTR_EXT_MAX 64        /* extended attribute pairs accepted */
#define SFTP_V3 3u
#define OUT_FLUSH_AT 65536     /* pending reply bytes written at once */
#define FAST_MAX (1u << 20)    /* a buffered file converts beyond this size */
#define FAST_SESSION_MAX (8u << 20) /* bytes buffered per session at most */

/* ---------------------------------------------------------------- types */

enum hstate { H_FREE = 0, H_FILE, H_DIR };

struct handle {
	int state;
	uint32_t gen;
	char *path;          /* resolved user path */
	/* H_FILE */
	sd_file *f;
	int readable, writable, append;
	int reopen;          /* f released by copy-data; reopen on next use */
	uint64_t size;       /* known size (append position) */
	int set_mode, set_mtime; /* FSETSTAT on a writable handle: after commit */
	uint32_t mode;
	int64_t mtime;
	/* H_FILE, small-file fast path (invariant 7): writes held in memory */
	int buffered;
	unsigned char *mem;
	size_t mem_len, mem_cap;
	unsigned oflags;     /* SD_O_* of the OPEN, for the conversion */
	uint32_t omode;
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
	unsigned char *scratch; /* copy-data bounce buffer (lazy) */
	struct handle *h;
	int nh;
	size_t cur;          /* bytes of the packet being served */
	size_t mem_total;    /* bytes held by buffered handles */
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

typedef struct fattr {
	uint32_t flags;
	uint64_t size;
	uint32_t uid, gid, perm, atime, mtime;
} fattr;

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
static void rd_attrs(rd *r, fattr *a)
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

static int send_err(sess *s, uint32_t id, int err)
{
	if (err == 0)
		return send_ok(s, id);
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

/* Resolve a client path against "/" (invariant 3): empty and "."
 * components vanish, ".." removes the previous component and stops at the
 * root. out gets "/a/b" ("/" for the root). 0, -EINVAL (NUL byte) or
 * -ENAMETOOLONG. */
static int resolve(const unsigned char *p, size_t n, char *out, size_t outlen)
{
	size_t len = 0, i = 0;
	if (outlen < 2)
		return -ENAMETOOLONG;
	if (memchr(p, '\0', n) != NULL)
		return -EINVAL;
	while (i < n) {
		size_t j = i;
		while (j < n && p[j] != '/')
			j++;
		if (j - i == 0 || (j - i == 1 && p[i] == '.')) {
			/* skip */
		} else if (j - i == 2 && p[i] == '.' && p[i + 1] == '.') {
			while (len > 0 && out[len] != '/')
				len--;
			/* out[len] is now the '/' before the last component, or 0 */
		} else {
			if (len + 1 + (j - i) + 1 > outlen || len + 1 + (j - i) > SD_PATH_MAX)
				return -ENAMETOOLONG;
			out[len] = '/';
			memcpy(out + len + 1, p + i, j - i);
			len += 1 + (j - i);
		}
		i = j + 1;
	}
	if (len == 0) {
		out[0] = '/';
		out[1] = '\0';
	} else {
		out[len] = '\0';
	}
	return 0;
}

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

/* Read a path string from the packet and resolve it. On failure answers
 * the request itself and returns 1 (caller stops), or -EIO. 0 = ok. */
static int get_path(sess *s, rd *r, uint32_t id, char *out, size_t outlen)
{
	uint32_t n;
	const unsigned char *p = rd_str(r, &n);
	int rc;
	if (r->bad)
		return send_status(s, id, SSH_FX_BAD_MESSAGE, "malformed request") < 0 ? -EIO : 1;
	rc = resolve(p, n, out, outlen);
	if (rc < 0) {
		const char *m = rc == -EINVAL ? "invalid path: NUL byte" : "path too long";
		return send_status(s, id, SSH_FX_FAILURE, m) < 0 ? -EIO : 1;
	}
	return 0;
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

static void mem_release(sess *s, struct handle *h)
{
	s->mem_total -= h->mem_cap;
	free(h->mem);
	h->mem = NULL;
	h->mem_len = h->mem_cap = 0;
	h->buffered = 0;
}

/* Turn a buffered handle into an engine random-access file holding the
 * bytes written so far (invariant 7). 0 or -errno (the handle then stays
 * buffered and intact). */
static int convert(sess *s, struct handle *h)
{
	const sd_core_api *api = s->x->api;
	sd_file *f = NULL;
	int rc = api->file_open(s->x->core, &s->x->user, h->path, h->oflags, h->omode, &f);
	if (rc < 0)
		return rc;
	if (h->mem_len > 0) {
		ssize_t n = api->file_pwrite(f, h->mem, h->mem_len, 0);
		if (n < 0 || (size_t)n != h->mem_len) {
			api->file_abandon(f);
			return n < 0 ? (int)n : -EIO;
		}
	}
	mem_release(s, h);
	h->f = f;
	return 0;
}

/* Append to a buffered handle if the write continues it and fits the
 * limits. 1 = taken, 0 = not (convert first), -ENOMEM. */
static int mem_append(sess *s, struct handle *h, const unsigned char *p, size_t n, uint64_t off)
{
	size_t need;
	if (off != h->mem_len || n > FAST_MAX - h->mem_len)
		return 0;
	need = h->mem_len + n;
	if (need > h->mem_cap) {
		size_t cap = h->mem_cap ? h->mem_cap : 16384;
		unsigned char *m;
		while (cap < need)
			cap *= 2;
		if (cap > FAST_MAX)
			cap = FAST_MAX;
		if (s->mem_total - h->mem_cap + cap > FAST_SESSION_MAX)
			return 0;
		m = realloc(h->mem, cap);
		if (m == NULL)
			return -ENOMEM;
		s->mem_total = s->mem_total - h->mem_cap + cap;
		h->mem = m;
		h->mem_cap = cap;
	}
	if (n > 0)
		memcpy(h->mem + h->mem_len, p, n);
	h->mem_len = need;
	return 1;
}

/* CLOSE of a buffered handle: one streamed upload of the held bytes. */
static int commit_buffered(sess *s, struct handle *h)
{
	const sd_core_api *api = s->x->api;
	sd_upload *up = NULL;
	sd_stat st;
	int rc = api->upload_begin(s->x->core, &s->x->user, h->path,
				   (h->oflags & SD_O_EXCL) ? SD_UP_EXCL : 0, 0, h->omode, &up);
	if (rc < 0)
		return rc;
	if (h->mem_len > 0 && (rc = api->upload_write(up, h->mem, h->mem_len)) < 0) {
		api->upload_abort(up);
		return rc;
	}
	return api->upload_commit(up, NULL, &st, NULL);
}

/* Make h->f usable: convert a buffered handle, or reopen a file whose
 * sd_file was released by copy-data. 0 or -errno. */
static int ensure_open(sess *s, struct handle *h)
{
	unsigned fl = SD_O_READ | SD_O_WRITE;
	int rc;
	if (h->buffered)
		return convert(s, h);
	if (!h->reopen)
		return 0;
	rc = s->x->api->file_open(s->x->core, &s->x->user, h->path, fl, 0644, &h->f);
	if (rc < 0)
		return rc;
	h->reopen = 0;
	return 0;
}

/* Release a handle. abandon: drop uncommitted writes (session end). Returns
 * the commit result of a file (0 for directories). */
static int close_handle(sess *s, struct handle *h, int abandon)
{
	const sd_core_api *api = s->x->api;
	int rc = 0;
	if (h->state == H_FILE && h->buffered) {
		if (!abandon)
			rc = commit_buffered(s, h);
		mem_release(s, h);
		if (rc == 0 && !abandon) {
			if (h->set_mode)
				rc = api->chmod(s->x->core, &s->x->user, h->path, h->mode);
			if (rc == 0 && h->set_mtime)
				rc = api->set_mtime(s->x->core, &s->x->user, h->path, h->mtime);
		}
	} else if (h->state == H_FILE && h->f != NULL) {
		if (abandon)
			api->file_abandon(h->f);
		else
			rc = api->file_close(h->f);
		h->f = NULL;
		if (rc == 0 && !abandon) {
			/* attributes set on the handle apply to the committed file */
			if (h->set_mode)
				rc = api->chmod(s->x->core, &s->x->user, h->path, h->mode);
			if (rc == 0 && h->set_mtime)
				rc = api->set_mtime(s->x->core, &s->x->user, h->path, h->mtime);
		}
	}
	free(h->path);
	free(h->last);
	h->path = NULL;
	h->last = NULL;
	h->f = NULL;
	h->state = H_FREE;
	return rc;
}

static void drop_all(sess *s)
{
	int i, n = 0;
	for (i = 0; i < s->nh; i++) {
		if (s->h[i].state != H_FREE) {
			if (s->h[i].state == H_FILE && s->h[i].writable &&
			    (s->h[i].f || s->h[i].buffered))
				n++;
			close_handle(s, &s->h[i], 1);
		}
	}
	if (n > 0)
		s->x->api->log(s->x->core, SD_LOG_INFO, "sftp",
			       "event=abandon user=%s addr=%s files=%d", s->x->user.name,
			       s->x->addr, n);
}

/* ---------------------------------------------------------------- requests */

/* Request handlers. Contract shared by every req_* / ext_* function: r is
 * positioned after the request id; the handler queues exactly one reply for
 * id (a malformed body gets BAD_MESSAGE, an engine error its SFTP status via
 * send_err) and returns 0, or -EIO when the channel can no longer be
 * written (the session then ends). Paths go through get_path (invariant 3),
 * handles through get_handle (invariant 4). */

/* What file_open(WRITE|CREAT|TRUNC) would refuse, checked with reads only:
 * a read-only login, a directory at path, an existing file with EXCL, a
 * missing or non-directory parent. 0 or -errno. */
static int fast_open_check(sess *s, const char *path, int excl)
{
	const sd_core_api *api = s->x->api;
	char parent[SD_PATH_MAX + 2];
	const char *slash;
	sd_stat st;
	int rc;
	if (s->x->user.flags & SD_USER_READONLY)
		return -EROFS;
	rc = api->stat(s->x->core, &s->x->user, path, &st);
	if (rc == 0)
		return st.kind == SD_KIND_DIR ? -EISDIR : excl ? -EEXIST : 0;
	if (rc != -ENOENT)
		return rc;
	slash = strrchr(path, '/');
	if (slash == NULL || slash == path)
		return strcmp(path, "/") == 0 ? -EISDIR : 0; /* parent is the root */
	memcpy(parent, path, (size_t)(slash - path));
	parent[slash - path] = '\0';
	rc = api->stat(s->x->core, &s->x->user, parent, &st);
	if (rc < 0)
		return rc;
	return st.kind == SD_KIND_DIR ? 0 : -ENOTDIR;
}

static int req_open(sess *s, uint32_t id, rd *r)
{
	char path[SD_PATH_MAX + 2];
	uint32_t pflags;
	unsigned fl = 0;
	fattr a;
	struct handle *h;
	int idx, rc;
	uint32_t mode;
	sd_file *f = NULL;

	if ((rc = get_path(s, r, id, path, sizeof(path))) != 0)
		return rc < 0 ? rc : 0;
	pflags = rd_u32(r);
	rd_attrs(r, &a);
	if (r->bad)
		return send_status(s, id, SSH_FX_BAD_MESSAGE, "malformed OPEN");
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
	mode = (a.flags & SSH_FILEXFER_ATTR_PERMISSIONS) ? (a.perm & 07777) : 0644;

	h = handle_alloc(s, &idx);
	if (h == NULL)
		return send_status(s, id, SSH_FX_FAILURE, "too many open handles");
	if ((pflags & (SSH_FXF_WRITE | SSH_FXF_CREAT | SSH_FXF_TRUNC)) ==
		(SSH_FXF_WRITE | SSH_FXF_CREAT | SSH_FXF_TRUNC) &&
	    !(pflags & (SSH_FXF_READ | SSH_FXF_APPEND))) {
		/* invariant 7: the checks file_open would make, then buffer */
		rc = fast_open_check(s, path, (fl & SD_O_EXCL) != 0);
		if (rc < 0)
			return send_err(s, id, rc);
		h->path = strdup(path);
		if (h->path == NULL)
			return send_err(s, id, -ENOMEM);
		h->state = H_FILE;
		h->buffered = 1;
		h->writable = 1;
		h->oflags = fl;
		h->omode = mode;
		return send_handle(s, id, idx);
	}
	rc = s->x->api->file_open(s->x->core, &s->x->user, path, fl, mode, &f);
	if (rc < 0) {
		char lb[256];
		s->x->api->log(s->x->core, SD_LOG_DEBUG, "sftp",
			       "event=open user=%s path=\"%s\" flags=0x%x err=%d", s->x->user.name,
			       lp(lb, sizeof(lb), path), pflags, rc);
		return send_err(s, id, rc);
	}
	h->state = H_FILE;
	h->path = strdup(path);
	h->f = f;
	h->readable = (fl & SD_O_READ) != 0;
	h->writable = (fl & SD_O_WRITE) != 0;
	h->append = (fl & SD_O_APPEND) != 0;
	if (h->path == NULL) {
		close_handle(s, h, 1);
		return send_err(s, id, -ENOMEM);
	}
	if (h->append) {
		sd_stat st;
		if (s->x->api->file_fstat(f, &st) == 0)
			h->size = st.size;
	}
	{
		char lb[256];
		s->x->api->log(s->x->core, SD_LOG_DEBUG, "sftp",
			       "event=open user=%s path=\"%s\" flags=0x%x", s->x->user.name,
			       lp(lb, sizeof(lb), path), pflags);
	}
	return send_handle(s, id, idx);
}

static int req_close(sess *s, uint32_t id, rd *r)
{
	struct handle *h = get_handle(s, r);
	int rc;
	int64_t t0 = sd__sftp_mono_ms();
	int was_write;
	if (h == NULL)
		return send_status(s, id, r->bad ? SSH_FX_BAD_MESSAGE : SSH_FX_INVALID_HANDLE,
				   "invalid handle");
	was_write = h->state == H_FILE && h->writable;
	if (was_write) {
		char lb[256];
		s->x->api->log(s->x->core, SD_LOG_DEBUG, "sftp", "event=close user=%s path=\"%s\"",
			       s->x->user.name, lp(lb, sizeof(lb), h->path));
	}
	rc = close_handle(s, h, 0);
	if (was_write)
		s->x->api->log(s->x->core, SD_LOG_DEBUG, "sftp", "event=closed user=%s rc=%d ms=%" PRId64,
			       s->x->user.name, rc, sd__sftp_mono_ms() - t0);
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
	if ((rc = ensure_open(s, h)) < 0)
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
		n = s->x->api->file_pread(h->f, w.p + w.len, len, off);
		s->us_engine += mono_us() - t0;
	}
	if (n > 0)
		s->bytes_out += (uint64_t)n;
	if (n < 0)
		return send_err(s, id, (int)n);
	if (n == 0)
		return send_status(s, id, SSH_FX_EOF, "End of file");
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
	if (h->buffered) {
		rc = mem_append(s, h, data, len, off);
		if (rc < 0)
			return send_err(s, id, rc);
		if (rc == 1) {
			s->bytes_in += len;
			return send_ok(s, id);
		}
	}
	if ((rc = ensure_open(s, h)) < 0)
		return send_err(s, id, rc);
	if (h->append)
		off = h->size;
	if (off > UINT64_MAX - len)
		return send_status(s, id, SSH_FX_FAILURE, "offset out of range");
	if (len > 0) {
		int64_t t0 = mono_us();
		n = s->x->api->file_pwrite(h->f, data, len, off);
		s->us_engine += mono_us() - t0;
		s->bytes_in += len;
		if (n < 0)
			return send_err(s, id, (int)n);
		if ((size_t)n != len)
			return send_status(s, id, SSH_FX_FAILURE, "short write");
	}
	if (off + len > h->size)
		h->size = off + len;
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
	char path[SD_PATH_MAX + 2];
	sd_stat st;
	int rc;
	if ((rc = get_path(s, r, id, path, sizeof(path))) != 0)
		return rc < 0 ? rc : 0;
	/* v3 STAT/LSTAT carry no flags; anything after the path is ignored */
	rc = s->x->api->stat(s->x->core, &s->x->user, path, &st);
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
	if (h->state == H_DIR) {
		rc = s->x->api->stat(s->x->core, &s->x->user, h->path, &st);
	} else {
		if ((rc = ensure_open(s, h)) < 0)
			return send_err(s, id, rc);
		rc = s->x->api->file_fstat(h->f, &st);
	}
	if (rc < 0)
		return send_err(s, id, rc);
	return reply_stat(s, id, &st);
}

/* SETSTAT on a path: size (truncate through a short-lived open), mode,
 * times. uid/gid are accepted and ignored (one owner per tree). */
static int setstat_path(sess *s, const char *path, const fattr *a)
{
	const sd_core_api *api = s->x->api;
	int rc;
	if (a->flags & SSH_FILEXFER_ATTR_SIZE) {
		sd_file *f = NULL;
		rc = api->file_open(s->x->core, &s->x->user, path, SD_O_READ | SD_O_WRITE, 0644, &f);
		if (rc < 0)
			return rc;
		rc = api->file_truncate(f, a->size);
		if (rc < 0) {
			api->file_abandon(f);
			return rc;
		}
		rc = api->file_close(f);
		if (rc < 0)
			return rc;
	}
	if (a->flags & SSH_FILEXFER_ATTR_PERMISSIONS) {
		rc = api->chmod(s->x->core, &s->x->user, path, a->perm & 07777);
		if (rc < 0)
			return rc;
	}
	if (a->flags & SSH_FILEXFER_ATTR_ACMODTIME) {
		rc = api->set_mtime(s->x->core, &s->x->user, path, (int64_t)a->mtime);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int req_setstat(sess *s, uint32_t id, rd *r)
{
	char path[SD_PATH_MAX + 2];
	fattr a;
	int rc;
	if ((rc = get_path(s, r, id, path, sizeof(path))) != 0)
		return rc < 0 ? rc : 0;
	rd_attrs(r, &a);
	if (r->bad)
		return send_status(s, id, SSH_FX_BAD_MESSAGE, "malformed SETSTAT");
	return send_err(s, id, setstat_path(s, path, &a));
}

static int req_fsetstat(sess *s, uint32_t id, rd *r)
{
	struct handle *h = get_handle(s, r);
	const sd_core_api *api = s->x->api;
	fattr a;
	int rc = 0;
	rd_attrs(r, &a);
	if (r->bad)
		return send_status(s, id, SSH_FX_BAD_MESSAGE, "malformed FSETSTAT");
	if (h == NULL)
		return send_status(s, id, SSH_FX_INVALID_HANDLE, "invalid handle");
	if (h->state == H_DIR || !h->writable)
		return send_err(s, id, setstat_path(s, h->path, &a));
	/* a file open for writing: size on the working copy, the rest is
	 * applied to the new version when it is committed */
	if (a.flags & SSH_FILEXFER_ATTR_SIZE) {
		if ((rc = ensure_open(s, h)) < 0)
			return send_err(s, id, rc);
		rc = api->file_truncate(h->f, a.size);
		if (rc < 0)
			return send_err(s, id, rc);
		h->size = a.size;
	}
	if (a.flags & SSH_FILEXFER_ATTR_PERMISSIONS) {
		h->set_mode = 1;
		h->mode = a.perm & 07777;
	}
	if (a.flags & SSH_FILEXFER_ATTR_ACMODTIME) {
		h->set_mtime = 1;
		h->mtime = a.mtime;
	}
	return send_ok(s, id);
}

static int req_opendir(sess *s, uint32_t id, rd *r)
{
	char path[SD_PATH_MAX + 2];
	sd_stat st;
	struct handle *h;
	int idx, rc;
	if ((rc = get_path(s, r, id, path, sizeof(path))) != 0)
		return rc < 0 ? rc : 0;
	rc = s->x->api->stat(s->x->core, &s->x->user, path, &st);
	if (rc < 0)
		return send_err(s, id, rc);
	if (st.kind != SD_KIND_DIR)
		return send_err(s, id, -ENOTDIR);
	h = handle_alloc(s, &idx);
	if (h == NULL)
		return send_status(s, id, SSH_FX_FAILURE, "too many open handles");
	h->path = strdup(path);
	if (h->path == NULL)
		return send_err(s, id, -ENOMEM);
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
	int count, limit, stopped;
	char last[SD_NAME_MAX + 1];
};

static int readdir_cb(void *arg, const sd_dirent *e)
{
	struct rdctx *c = arg;
	char ln[SD_NAME_MAX + 128];
	size_t nl = strlen(e->name);
	wr save;
	if (c->count >= c->limit || nl > SD_NAME_MAX) {
		c->stopped = 1;
		return 1;
	}
	longname(ln, sizeof(ln), &e->st, e->name, c->s->x->user.name);
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
	c.limit = READDIR_PAGE;
	/* no engine limit: the callback stops the page itself (c.limit), and
	 * the engine then reports *more */
	rc = s->x->api->readdir(s->x->core, &s->x->user, h->path, h->last, 0, readdir_cb, &c,
				&more);
	if (rc < 0)
		return send_err(s, id, rc);
	if (c.count == 0) {
		h->eof = 1;
		return send_status(s, id, SSH_FX_EOF, "End of directory");
	}
	if (!more && !c.stopped)
		h->eof = 1;
	free(h->last);
	h->last = strdup(c.last);
	if (h->last == NULL)
		return send_err(s, id, -ENOMEM);
	put_be32(w.p + countpos, (uint32_t)c.count);
	return send_packet(s, &w, id);
}

static int req_remove(sess *s, uint32_t id, rd *r)
{
	char path[SD_PATH_MAX + 2];
	sd_stat st;
	int rc;
	if ((rc = get_path(s, r, id, path, sizeof(path))) != 0)
		return rc < 0 ? rc : 0;
	/* REMOVE is for files; a directory needs RMDIR (OpenSSH semantics) */
	rc = s->x->api->stat(s->x->core, &s->x->user, path, &st);
	if (rc == 0 && st.kind == SD_KIND_DIR)
		return send_status(s, id, SSH_FX_FAILURE, "Is a directory");
	if (rc == 0)
		rc = s->x->api->unlink(s->x->core, &s->x->user, path, 0);
	return send_err(s, id, rc);
}

static int req_mkdir(sess *s, uint32_t id, rd *r)
{
	char path[SD_PATH_MAX + 2];
	fattr a;
	int rc;
	if ((rc = get_path(s, r, id, path, sizeof(path))) != 0)
		return rc < 0 ? rc : 0;
	rd_attrs(r, &a);
	if (r->bad)
		return send_status(s, id, SSH_FX_BAD_MESSAGE, "malformed MKDIR");
	rc = s->x->api->mkdir(s->x->core, &s->x->user, path,
			      (a.flags & SSH_FILEXFER_ATTR_PERMISSIONS) ? (a.perm & 07777) : 0755, 0);
	return send_err(s, id, rc);
}

static int req_rmdir(sess *s, uint32_t id, rd *r)
{
	char path[SD_PATH_MAX + 2];
	int rc;
	if ((rc = get_path(s, r, id, path, sizeof(path))) != 0)
		return rc < 0 ? rc : 0;
	return send_err(s, id, s->x->api->rmdir(s->x->core, &s->x->user, path));
}

static int req_realpath(sess *s, uint32_t id, rd *r)
{
	char path[SD_PATH_MAX + 2];
	wr w;
	int rc;
	if ((rc = get_path(s, r, id, path, sizeof(path))) != 0)
		return rc < 0 ? rc : 0;
	/* v3: one name, attributes empty (OpenSSH does the same) */
	wr_begin(&w, s, SSH_FXP_NAME, id);
	wr_u32(&w, 1);
	wr_cstr(&w, path);
	wr_cstr(&w, path);
	wr_u32(&w, 0);
	return send_packet(s, &w, id);
}

/* RENAME (v3: fails if the target exists, like OpenSSH) and
 * posix-rename@openssh.com (replaces). */
static int do_rename(sess *s, uint32_t id, rd *r, int replace)
{
	char from[SD_PATH_MAX + 2], to[SD_PATH_MAX + 2];
	sd_stat st;
	int rc;
	if ((rc = get_path(s, r, id, from, sizeof(from))) != 0)
		return rc < 0 ? rc : 0;
	if ((rc = get_path(s, r, id, to, sizeof(to))) != 0)
		return rc < 0 ? rc : 0;
	if (!replace && strcmp(from, to) != 0 &&
	    s->x->api->stat(s->x->core, &s->x->user, to, &st) == 0)
		return send_status(s, id, SSH_FX_FAILURE, "target exists");
	return send_err(s, id, s->x->api->rename(s->x->core, &s->x->user, from, to));
}

/* ------------------------------------------------------------- extensions */

static int reply_statvfs(sess *s, uint32_t id)
{
	sd_fsinfo fi;
	uint64_t bs = 4096, blocks, avail;
	wr w;
	int rc = s->x->api->fsinfo(s->x->core, &s->x->user, &fi);
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
	wr_u64(&w, ((s->x->user.flags & SD_USER_READONLY) ? 1u : 0u) | 2u); /* RDONLY|NOSUID */
	wr_u64(&w, SD_NAME_MAX);
	return send_packet(s, &w, id);
}

static int ext_copy_data(sess *s, uint32_t id, rd *r)
{
	const sd_core_api *api = s->x->api;
	struct handle *rh = get_handle(s, r);
	uint64_t roff = rd_u64(r), rlen = rd_u64(r);
	struct handle *wh = get_handle(s, r);
	uint64_t woff = rd_u64(r), done = 0;
	sd_stat rst, wst;
	int rc;

	if (r->bad)
		return send_status(s, id, SSH_FX_BAD_MESSAGE, "malformed copy-data");
	if (rh == NULL || wh == NULL || rh->state != H_FILE || wh->state != H_FILE)
		return send_status(s, id, SSH_FX_INVALID_HANDLE, "invalid handle");
	if (!rh->readable || !wh->writable)
		return send_status(s, id, SSH_FX_PERMISSION_DENIED,
				   "copy-data needs a read handle and a write handle");
	if ((rc = ensure_open(s, rh)) < 0 || (rc = ensure_open(s, wh)) < 0)
		return send_err(s, id, rc);
	if (rh == wh && rlen != 0 && roff < woff + rlen && woff < roff + rlen)
		return send_status(s, id, SSH_FX_FAILURE, "overlapping ranges");
	if (rh == wh && rlen == 0)
		return send_status(s, id, SSH_FX_FAILURE, "overlapping ranges");

	/* Whole committed file onto an empty target: a new reference, no data
	 * copied. The target's (empty) working copy is dropped and reopened on
	 * its next use. */
	if (rh != wh && !rh->writable && roff == 0 && woff == 0 && !wh->append &&
	    api->file_fstat(rh->f, &rst) == 0 && rst.sha256[0] != '\0' &&
	    (rlen == 0 || rlen >= rst.size) && api->file_fstat(wh->f, &wst) == 0 &&
	    wst.size == 0) {
		api->file_abandon(wh->f);
		wh->f = NULL;
		rc = api->copy(s->x->core, &s->x->user, rh->path, wh->path);
		if (rc < 0) {
			int rc2 = api->file_open(s->x->core, &s->x->user, wh->path,
						 SD_O_READ | SD_O_WRITE | SD_O_CREAT, 0644, &wh->f);
			if (rc2 < 0)
				wh->reopen = 1;
			return send_err(s, id, rc);
		}
		wh->reopen = 1;
		wh->size = rst.size;
		{
			char l1[256], l2[256];
			api->log(s->x->core, SD_LOG_DEBUG, "sftp",
				 "event=copy user=%s from=\"%s\" to=\"%s\" mode=reference",
				 s->x->user.name, lp(l1, sizeof(l1), rh->path),
				 lp(l2, sizeof(l2), wh->path));
		}
		return send_ok(s, id);
	}

	if (s->scratch == NULL) {
		s->scratch = malloc(s->x->max_read);
		if (s->scratch == NULL)
			return send_err(s, id, -ENOMEM);
	}
	while (rlen == 0 || done < rlen) {
		size_t chunk = s->x->max_read;
		ssize_t n, m;
		if (rlen != 0 && rlen - done < chunk)
			chunk = (size_t)(rlen - done);
		n = api->file_pread(rh->f, s->scratch, chunk, roff + done);
		if (n < 0)
			return send_err(s, id, (int)n);
		if (n == 0)
			break;
		m = api->file_pwrite(wh->f, s->scratch, (size_t)n, woff + done);
		if (m < 0)
			return send_err(s, id, (int)m);
		if (m != n)
			return send_status(s, id, SSH_FX_FAILURE, "short write");
		done += (uint64_t)n;
	}
	if (woff + done > wh->size)
		wh->size = woff + done;
	return send_ok(s, id);
}

/* check-file (paramiko), check-file-handle, check-file-name: SHA-256 of a
 * whole file, from its stored content address (no hashing here). */
static int ext_check_file(sess *s, uint32_t id, rd *r, int by_name)
{
	char path[SD_PATH_MAX + 2];
	const unsigned char *algs;
	uint32_t alen, bsize, i;
	uint64_t start, length;
	unsigned char digest[32];
	sd_stat st;
	wr w;
	int rc, ok = 0;

	if (by_name) {
		if ((rc = get_path(s, r, id, path, sizeof(path))) != 0)
			return rc < 0 ? rc : 0;
		algs = rd_str(r, &alen);
		start = rd_u64(r);
		length = rd_u64(r);
		bsize = rd_u32(r);
		if (r->bad)
			return send_status(s, id, SSH_FX_BAD_MESSAGE, "malformed check-file");
		rc = s->x->api->stat(s->x->core, &s->x->user, path, &st);
	} else {
		struct handle *h = get_handle(s, r);
		algs = rd_str(r, &alen);
		start = rd_u64(r);
		length = rd_u64(r);
		bsize = rd_u32(r);
		if (r->bad)
			return send_status(s, id, SSH_FX_BAD_MESSAGE, "malformed check-file");
		if (h == NULL || h->state != H_FILE)
			return send_status(s, id, SSH_FX_INVALID_HANDLE, "invalid handle");
		if ((rc = ensure_open(s, h)) < 0)
			return send_err(s, id, rc);
		rc = s->x->api->file_fstat(h->f, &st);
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
	if (strlen(st.sha256) != 64)
		return send_status(s, id, SSH_FX_FAILURE,
				   "file has uncommitted changes: close or fsync it first");
	for (i = 0; i < 32; i++) {
		unsigned v;
		if (sscanf(st.sha256 + 2 * i, "%2x", &v) != 1)
			return send_status(s, id, SSH_FX_FAILURE, "bad stored hash");
		digest[i] = (unsigned char)v;
	}
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
		char path[SD_PATH_MAX + 2];
		sd_stat st;
		int rc;
		if ((rc = get_path(s, r, id, path, sizeof(path))) != 0)
			return rc < 0 ? rc : 0;
		rc = s->x->api->stat(s->x->core, &s->x->user, path, &st);
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
		int rc;
		if (h == NULL || h->state != H_FILE)
			return send_status(s, id, SSH_FX_INVALID_HANDLE, "invalid handle");
		if (h->reopen || !h->writable)
			return send_ok(s, id); /* nothing uncommitted */
		if ((rc = ensure_open(s, h)) < 0)
			return send_err(s, id, rc);
		rc = s->x->api->file_sync(h->f);
		return send_err(s, id, rc);
	}
	if (str_is(name, n, "limits@openssh.com")) {
		wr w;
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
			       s->x->user.name, s->x->addr, len);
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
		       "event=sftp_init user=%s client_version=%" PRIu32, s->x->user.name, ver);
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
	}
	flush_out(&s); /* e.g. the answer to a packet that was too long */
out:
	x->api->log(x->core, SD_LOG_DEBUG, "sftp",
		    "event=sftp_stats user=%s requests=%" PRIu64 " bytes_in=%" PRIu64
		    " bytes_out=%" PRIu64 " engine_ms=%" PRId64 " wait_ms=%" PRId64,
		    x->user.name, s.reqs, s.bytes_in, s.bytes_out, s.us_engine / 1000,
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
		x->api->log(x->core, SD_LOG_DEBUG, "sftp", "event=sftp_profile user=%s%s", x->user.name, b);
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
