/*
 * wire.c - the SFTP byte stream on one libssh channel: packet framing,
 * bounded reader and writer, attributes, status replies. A leaf: it calls
 * no other file of the module (only libssh, util and the core's log,
 * strerror and session_check).
 *
 * While CLOSEs commit on the module's pool (async.c), the wait for input
 * also wakes on a finished job (its eventfd) and says so to the caller,
 * which sends the reply (serve.c).
 *
 * Why our own framing: framing and parsing are done here, over
 * ssh_channel_read_nonblocking / ssh_channel_write, instead of libssh
 * 0.10.6's sftp_get_client_message / sftp_reply_*. Reasons, all checked
 * against 0.10.6's behaviour:
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
 * channels, windows).
 *
 * Invariants
 *  1. An incoming packet is at most max_read + 1024 bytes; a longer length
 *     ends the session (after a FAILURE status naming the request id when it
 *     can be read). The receive buffer is never grown by the client.
 *  2. Replies are queued in `out` and written before the session waits for
 *     input (or when 64 KiB are pending): never later than that, so a
 *     client never waits for an answer the server holds. `out` always has
 *     room for the largest reply (max_read + 1 KiB) when one is started.
 *  3. A path string is handed on as the client sent it, or refused (NUL,
 *     too long); it is never cut or folded here.
 *  5. An idle session holds little memory (1,000 idle sessions are the
 *     benchmark): after a second without input its thread gives back the
 *     stack pages below the frame it waits in (sd__sftp_release_memory) and
 *     the pages of its (empty) receive and reply buffers.
 *  4. A session waiting for requests still notices credentials that stop
 *     holding (user disabled, token revoked ...): every IDLE_CHECK_MS of
 *     waiting it asks api->session_check, and ends on -SD_EAUTH. Requests
 *     need no such check: every engine call makes it.
 */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <sys/mman.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "proto.h"
#include "sys.h"

#define ATTR_EXT_MAX 64     /* extended attribute pairs accepted */
#define IDLE_CHECK_MS 5000  /* credentials check while waiting for input */

int64_t sd__sftp_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---------------------------------------------------------------- reader */

uint32_t sd__sftp_rd_u32(fx_rd *r)
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

uint64_t sd__sftp_rd_u64(fx_rd *r)
{
	uint64_t hi = sd__sftp_rd_u32(r);
	uint64_t lo = sd__sftp_rd_u32(r);
	return hi << 32 | lo;
}

const unsigned char *sd__sftp_rd_str(fx_rd *r, uint32_t *len)
{
	const unsigned char *p;
	uint32_t n = sd__sftp_rd_u32(r);
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

void sd__sftp_rd_attrs(fx_rd *r, fx_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->flags = sd__sftp_rd_u32(r);
	if (a->flags & SSH_FILEXFER_ATTR_SIZE)
		a->size = sd__sftp_rd_u64(r);
	if (a->flags & SSH_FILEXFER_ATTR_UIDGID) {
		a->uid = sd__sftp_rd_u32(r);
		a->gid = sd__sftp_rd_u32(r);
	}
	if (a->flags & SSH_FILEXFER_ATTR_PERMISSIONS)
		a->perm = sd__sftp_rd_u32(r);
	if (a->flags & SSH_FILEXFER_ATTR_ACMODTIME) {
		a->atime = sd__sftp_rd_u32(r);
		a->mtime = sd__sftp_rd_u32(r);
	}
	if (a->flags & SSH_FILEXFER_ATTR_EXTENDED) {
		uint32_t i, n = sd__sftp_rd_u32(r), l;
		if (n > ATTR_EXT_MAX)
			r->bad = 1;
		for (i = 0; i < n && !r->bad; i++) {
			sd__sftp_rd_str(r, &l);
			sd__sftp_rd_str(r, &l);
		}
	}
}

int sd__sftp_str_is(const unsigned char *p, uint32_t n, const char *s)
{
	size_t l = strlen(s);
	return p != NULL && n == l && memcmp(p, s, l) == 0;
}

/* Is the component (n bytes at p) "~" or "~<the session's user>"? */
static int is_home_word(fx_sess *s, const char *p, size_t n)
{
	if (n == 0 || p[0] != '~')
		return 0;
	return n == 1 || (strlen(s->x->user) == n - 1 && memcmp(p + 1, s->x->user, n - 1) == 0);
}

int sd__sftp_expand_tilde(fx_sess *s, const char *in, char *out, size_t outlen)
{
	const char *start = in, *p = in;
	while (*p) {
		while (*p == '/')
			p++;
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (is_home_word(s, p, n)) {
			char lit[SD_PATH_MAX + 1];
			sd_stat st;
			size_t k = (size_t)(p - in) + n;
			if (k < sizeof(lit)) {
				memcpy(lit, in, k);
				lit[k] = '\0';
				if (s->x->api->stat(s->x->sess, lit, &st) == -ENOENT)
					start = p + n; /* home, then the rest */
			}
		}
		p += n;
	}
	if (start == in) {
		if (strlen(in) >= outlen)
			return -ENAMETOOLONG;
		memcpy(out, in, strlen(in) + 1);
		return 0;
	}
	int w = snprintf(out, outlen, "/%s", start);
	return w < 0 || (size_t)w >= outlen ? -ENAMETOOLONG : 0;
}

int sd__sftp_get_path(fx_sess *s, fx_rd *r, uint32_t id, char *out, size_t outlen)
{
	uint32_t n;
	const unsigned char *p = sd__sftp_rd_str(r, &n);
	if (r->bad)
		return sd__sftp_status(s, id, SSH_FX_BAD_MESSAGE, "malformed request") < 0 ? -EIO : 1;
	if (n > SD_PATH_MAX || (size_t)n >= outlen)
		return sd__sftp_err(s, id, -ENAMETOOLONG) < 0 ? -EIO : 1;
	if (memchr(p, '\0', n) != NULL)
		return sd__sftp_status(s, id, SSH_FX_FAILURE, "invalid path: NUL byte") < 0 ? -EIO : 1;
	memcpy(out, p, n);
	out[n] = '\0';
	if (memchr(out, '~', n) != NULL) {
		char exp[SD_PATH_MAX + 1];
		int rc = sd__sftp_expand_tilde(s, out, exp, sizeof(exp));
		if (rc < 0 || strlen(exp) >= outlen)
			return sd__sftp_err(s, id, -ENAMETOOLONG) < 0 ? -EIO : 1;
		memcpy(out, exp, strlen(exp) + 1);
	}
	/* a CLOSE of this file (or of one in it) still committing comes first */
	if (s->pending > 0 && sd__sftp_async_settle(s, out) < 0)
		return -EIO;
	return 0;
}

/* ---------------------------------------------------------------- writer */

void sd__sftp_wr_begin_noid(fx_wr *w, fx_sess *s, uint8_t type)
{
	if (s->out_max - s->out.len < (size_t)s->x->max_read + PKT_SLACK)
		sd__sftp_flush(s);
	w->p = (unsigned char *)s->out.data + s->out.len;
	w->cap = s->out_max - s->out.len;
	w->len = 4; /* length, set by sd__sftp_send */
	w->over = 0;
	w->p[w->len++] = type;
}

void sd__sftp_wr_begin(fx_wr *w, fx_sess *s, uint8_t type, uint32_t id)
{
	sd__sftp_wr_begin_noid(w, s, type);
	put_be32(w->p + w->len, id);
	w->len += 4;
}

void sd__sftp_wr_u32(fx_wr *w, uint32_t v)
{
	if (w->over || w->cap - w->len < 4) {
		w->over = 1;
		return;
	}
	put_be32(w->p + w->len, v);
	w->len += 4;
}

void sd__sftp_wr_u64(fx_wr *w, uint64_t v)
{
	sd__sftp_wr_u32(w, (uint32_t)(v >> 32));
	sd__sftp_wr_u32(w, (uint32_t)v);
}

void sd__sftp_wr_bytes(fx_wr *w, const void *p, size_t n)
{
	if (w->over || w->cap - w->len < n) {
		w->over = 1;
		return;
	}
	memcpy(w->p + w->len, p, n);
	w->len += n;
}

void sd__sftp_wr_str(fx_wr *w, const void *p, size_t n)
{
	if (n > UINT32_MAX) {
		w->over = 1;
		return;
	}
	sd__sftp_wr_u32(w, (uint32_t)n);
	sd__sftp_wr_bytes(w, p, n);
}

void sd__sftp_wr_cstr(fx_wr *w, const char *str)
{
	sd__sftp_wr_str(w, str, strlen(str));
}

static uint32_t clamp32(int64_t t)
{
	if (t < 0)
		return 0;
	if (t > (int64_t)UINT32_MAX)
		return UINT32_MAX;
	return (uint32_t)t;
}

void sd__sftp_wr_attrs(fx_wr *w, const sd_stat *st)
{
	uint32_t perm = st->mode & 07777;
	perm |= st->kind == SD_KIND_DIR ? 0040000u : 0100000u;
	sd__sftp_wr_u32(w, SSH_FILEXFER_ATTR_SIZE | SSH_FILEXFER_ATTR_UIDGID |
			       SSH_FILEXFER_ATTR_PERMISSIONS | SSH_FILEXFER_ATTR_ACMODTIME);
	sd__sftp_wr_u64(w, st->kind == SD_KIND_DIR ? 0 : st->size);
	sd__sftp_wr_u32(w, 0);
	sd__sftp_wr_u32(w, 0);
	sd__sftp_wr_u32(w, perm);
	sd__sftp_wr_u32(w, clamp32(st->mtime));
	sd__sftp_wr_u32(w, clamp32(st->mtime));
}

/* ---------------------------------------------------------------- output */

/* Write all n bytes on the channel. 0 or -EIO. */
static int chan_write_all(fx_sess *s, const unsigned char *p, size_t n)
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

int sd__sftp_flush(fx_sess *s)
{
	if (s->werr)
		return -EIO;
	if (s->out.len > 0 && chan_write_all(s, (unsigned char *)s->out.data, s->out.len) < 0)
		s->werr = 1;
	sd_buf_reset(&s->out);
	return s->werr ? -EIO : 0;
}

/* Large output is written at once; small replies wait for the next read
 * from the channel (fill), so a burst of requests gets its answers in a
 * few SSH packets (invariant 2). */
int sd__sftp_send(fx_sess *s, fx_wr *w, uint32_t id)
{
	if (w->over)
		return sd__sftp_status(s, id, SSH_FX_FAILURE, "reply too large");
	put_be32(w->p, (uint32_t)(w->len - 4));
	s->out.len += w->len;
	s->out.data[s->out.len] = '\0';
	if (s->out.len >= OUT_FLUSH_AT)
		return sd__sftp_flush(s);
	return s->werr ? -EIO : 0;
}

int sd__sftp_status(fx_sess *s, uint32_t id, uint32_t code, const char *msg)
{
	fx_wr w;
	sd__sftp_wr_begin(&w, s, SSH_FXP_STATUS, id);
	sd__sftp_wr_u32(&w, code);
	sd__sftp_wr_cstr(&w, msg);
	sd__sftp_wr_cstr(&w, "en");
	if (w.over)
		return -EIO; /* cannot happen: messages are short */
	return sd__sftp_send(s, &w, id);
}

int sd__sftp_ok(fx_sess *s, uint32_t id)
{
	return sd__sftp_status(s, id, SSH_FX_OK, "Success");
}

/* The SFTP v3 status for an engine error, and the words sent with it.
 * v3 has no status for "quota exceeded", "file exists" or "disk full"
 * (those came in later drafts, which v3 clients do not know): they go as
 * FAILURE, like OpenSSH's own server sends them, with a message that says
 * which it is (paramiko, rclone, WinSCP and FileZilla show it; OpenSSH's
 * sftp prints only the status). */
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
	case SD_EBLOCKED:
		return SSH_FX_PERMISSION_DENIED;
	case ENOSYS:
	case EOPNOTSUPP:
		return SSH_FX_OP_UNSUPPORTED;
	default:
		return SSH_FX_FAILURE;
	}
}

/* The words of a status: the engine's own, made specific where the status
 * alone cannot tell (quota with its figures, read-only logins). */
static const char *fx_words(fx_sess *s, int err, char *buf, size_t len)
{
	sd_session_info si;
	switch (err < 0 ? -err : err) {
	case EDQUOT:
		if (s->x->api->session_info(s->x->sess, &si) == 0 && si.quota > 0) {
			snprintf(buf, len, "quota exceeded: %lld of the user's %lld bytes are in use",
				 (long long)si.used, (long long)si.quota);
			return buf;
		}
		return "quota exceeded";
	case EROFS:
		return "read-only login (a read-only token): nothing may be changed";
	case EEXIST:
		return "file exists";
	case ENOTDIR:
		return "no such directory: a component of the path is a file";
	case ENOSPC:
		return "no space left on the server's disk";
	default:
		return s->x->api->strerror(err);
	}
}

int sd__sftp_err(fx_sess *s, uint32_t id, int err)
{
	char buf[160];
	if (err == 0)
		return sd__sftp_ok(s, id);
	if (err == -SD_EAUTH) {
		s->auth_dead = 1;
		return sd__sftp_status(s, id, SSH_FX_PERMISSION_DENIED,
				       "authentication no longer valid");
	}
	return sd__sftp_status(s, id, fx_code(err), fx_words(s, err, buf, sizeof(buf)));
}

/* ---------------------------------------------------------------- input */

/* Read what the channel has into the spare room of s->in, without
 * waiting. Bytes read, 0, SSH_EOF or SSH_ERROR. */
static int read_some(fx_sess *s)
{
	int r = ssh_channel_read_nonblocking(s->x->chan, s->in.data + s->in.len,
					     (uint32_t)(s->in_max - s->in.len), 0);
	if (r > 0) {
		s->released = 0;
		s->in.len += (size_t)r;
		s->in.data[s->in.len] = '\0';
		s->last_io = sd_mono_ms();
	}
	return r;
}

/* ---------------------------------------------------------------- memory */

void sd__sftp_release_memory(int heap)
{
	pthread_attr_t a;
	void *lo;
	size_t sz;
	if (pthread_getattr_np(pthread_self(), &a) == 0) {
		if (pthread_attr_getstack(&a, &lo, &sz) == 0) {
			char here;
			uintptr_t page = 4096;
			uintptr_t start = ((uintptr_t)lo + page - 1) & ~(page - 1);
			uintptr_t end = ((uintptr_t)&here - 512) & ~(page - 1);
			/* the stack grows down: [lo, sp) holds no live frame */
			if ((uintptr_t)&here > (uintptr_t)lo && (uintptr_t)&here < (uintptr_t)lo + sz &&
			    end > start)
				madvise((void *)start, end - start, MADV_DONTNEED);
		}
		pthread_attr_destroy(&a);
	}
	if (heap)
		malloc_trim(0);
}

/* While jobs run on the commit pool (async.c): wait up to ms for input
 * on the channel or for a finished job (its eventfd), whichever comes
 * first. Bytes available on the channel (> 0), 0 (a job may have finished,
 * or the time passed), SSH_EOF or SSH_ERROR, like ssh_channel_poll_timeout.
 * libssh is only asked without waiting; the waiting is poll(2) on its
 * socket and the eventfd. */
static int wait_input_or_job(fx_sess *s, int ms)
{
	struct pollfd pf[2];
	int r = ssh_channel_poll(s->x->chan, 0);
	if (r != 0)
		return r;
	pf[0].fd = ssh_get_fd(s->x->ssh);
	pf[0].events = POLLIN;
	pf[1].fd = s->efd;
	pf[1].events = POLLIN;
	pf[0].revents = pf[1].revents = 0;
	if (poll(pf, 2, ms) < 0 && errno != EINTR)
		return SSH_ERROR;
	if (pf[0].revents)
		return ssh_channel_poll(s->x->chan, 0);
	return 0;
}

/* Wait up to a second for input on the channel. With an event on the
 * whole session (ctx->ev) the wait ends as soon as anything arrives, so
 * that a request on another channel (an exec beside the SFTP one) is
 * served at once through ctx->aux. Bytes available, 0, SSH_EOF, SSH_ERROR. */
static int wait_input(sftp_ctx *x)
{
	if (!x->ev)
		return ssh_channel_poll_timeout(x->chan, 1000, 0);
	int64_t until = sd_mono_ms() + 1000;
	for (;;) {
		int a = ssh_channel_poll(x->chan, 0);
		if (a != 0)
			return a;
		if (x->aux)
			x->aux(x->aux_arg);
		int64_t left = until - sd_mono_ms();
		if (left <= 0)
			return 0;
		if (ssh_event_dopoll(x->ev, (int)left) == SSH_ERROR)
			return ssh_channel_poll(x->chan, 0) == SSH_EOF ? SSH_EOF : SSH_ERROR;
	}
}

/* Make sure [in_off, in_off + need) is buffered. Blocks in slices of one
 * second so that the idle timeout, module stop and lost credentials
 * (invariant 4) are noticed. 0, 2 (jobs are pending and one may have
 * finished: nothing consumed, call again after replying), -EPIPE (client
 * EOF), -ETIMEDOUT, -ECANCELED (stop), -EKEYREVOKED or -EIO. */
static int fill(fx_sess *s, size_t need)
{
	while (s->in.len - s->in_off < need) {
		int avail, r;
		if (s->in_off > 0 && s->in_max - s->in_off < need) {
			memmove(s->in.data, s->in.data + s->in_off, s->in.len - s->in_off);
			s->in.len -= s->in_off;
			s->in.data[s->in.len] = '\0';
			s->in_off = 0;
		}
		if (s->out.len > 0) {
			/* more requests already here? then keep batching replies */
			r = read_some(s);
			if (r > 0)
				continue;
			if (sd__sftp_flush(s) < 0)
				return -EIO;
			if (r == SSH_EOF)
				return -EPIPE;
			if (r < 0)
				return -EIO;
		}
		{
			int64_t t0 = sd__sftp_mono_us();
			avail = s->pending > 0 ? wait_input_or_job(s, 1000) : wait_input(s->x);
			s->us_wait += sd__sftp_mono_us() - t0;
		}
		if (avail == 0 && s->pending > 0)
			return 2; /* a job may have finished: the caller replies */
		if (avail == SSH_EOF)
			return -EPIPE;
		if (avail == SSH_ERROR || avail < 0)
			return -EIO;
		if (avail == 0) {
			int64_t now = sd_mono_ms();
			if (*s->x->stopping)
				return -ECANCELED;
			if (!s->released) {
				/* a second without a request: the pages the last
				 * requests touched go back (invariant 5) */
				sd__sftp_release_memory(0);
				if (s->in.len == 0)
					sd_sys_discard(s->in.data, s->in.cap);
				if (s->out.len == 0)
					sd_sys_discard(s->out.data, s->out.cap);
				s->released = 1;
			}
			if (s->x->idle_ms > 0 && now - s->last_io > s->x->idle_ms)
				return -ETIMEDOUT;
			if (now - s->last_io >= IDLE_CHECK_MS && now - s->last_check >= IDLE_CHECK_MS) {
				s->last_check = now;
				if (s->x->api->session_check(s->x->sess) == -SD_EAUTH)
					return -EKEYREVOKED;
			}
			continue;
		}
		r = read_some(s);
		if (r == SSH_EOF)
			return -EPIPE;
		if (r < 0)
			return -EIO;
	}
	return 0;
}

int sd__sftp_next_packet(fx_sess *s, uint8_t *type, fx_rd *body)
{
	uint32_t len;
	int rc;
	if ((rc = fill(s, 4)) != 0)
		return rc;
	len = be32((unsigned char *)s->in.data + s->in_off);
	if ((size_t)len > s->in_max - 4) {
		/* invariant 1: refuse; answer with the id when it is there */
		if (fill(s, 9) == 0) {
			uint32_t id = be32((unsigned char *)s->in.data + s->in_off + 5);
			sd__sftp_status(s, id, SSH_FX_FAILURE, "packet too long");
		}
		s->x->api->log(s->x->core, SD_LOG_WARN, "sftp",
			       "event=bad_packet user=%s addr=%s len=%" PRIu32 " reason=too_long",
			       s->x->user, s->x->addr, len);
		return 1;
	}
	if ((rc = fill(s, 4 + (size_t)len)) != 0)
		return rc;
	s->cur = 4 + (size_t)len;
	memset(body, 0, sizeof(*body));
	if (len == 0) {
		*type = 0;
		body->p = (unsigned char *)s->in.data + s->in_off + 4;
	} else {
		*type = (uint8_t)s->in.data[s->in_off + 4];
		body->p = (unsigned char *)s->in.data + s->in_off + 5;
		body->n = len - 1;
	}
	return 0;
}

void sd__sftp_consume(fx_sess *s)
{
	s->in_off += s->cur;
	s->cur = 0;
	if (s->in_off == s->in.len) {
		s->in_off = 0;
		sd_buf_reset(&s->in);
	}
}

const char *sd__sftp_lp(char *out, size_t n, const char *p)
{
	size_t len = strlen(p), i;
	int utf8 = sd_utf8_valid(p, len);
	if (n == 0)
		return out;
	for (i = 0; i + 1 < n && i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		int bad = c < 0x20 || c == 0x7f || c == '"' || c == '\\' || (c > 0x7f && !utf8);
		out[i] = bad ? '?' : (char)c;
	}
	/* cut inside a character: leave all of it out */
	if (utf8 && i < len)
		while (i > 0 && ((unsigned char)p[i] & 0xc0) == 0x80)
			i--;
	out[i] = '\0';
	return out;
}
