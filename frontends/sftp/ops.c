/*
 * ops.c - one function per SFTP version 3 request, each a thin translation
 * to the engine's API (core/storaged.h): OPEN, CLOSE, READ, WRITE, STAT,
 * LSTAT, FSTAT, SETSTAT, FSETSTAT, OPENDIR, READDIR, REMOVE, MKDIR, RMDIR,
 * REALPATH, RENAME. The contract they share is in proto.h.
 *
 * Paths are the engine's business: a path string goes to the engine call
 * as the client sent it (wire.c refuses an embedded NUL), and the engine
 * resolves it against the session's working directory ("/" for SFTP, ".."
 * clamped at the root). Nothing here folds a path; where a canonical form
 * is shown or kept (REALPATH, a handle's path) it comes from api->resolve.
 *
 * Files are engine handles: writes go to a private working copy that
 * CLOSE (or fsync@openssh.com) commits as a new version; nothing is
 * visible before that, and a created file does not exist for anyone else
 * until its first commit.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto.h"
#include "util.h"

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

int sd__sftp_op_open(fx_sess *s, uint32_t id, fx_rd *r)
{
	const sd_core_api *api = s->x->api;
	char path[SD_PATH_MAX + 1], lb[256];
	uint32_t pflags, mode;
	unsigned fl;
	fx_attr a;
	fx_handle *h;
	sd_handle fh = 0;
	int idx, rc;

	if ((rc = sd__sftp_get_path(s, r, id, path, sizeof(path))) != 0)
		return rc < 0 ? rc : 0;
	pflags = sd__sftp_rd_u32(r);
	sd__sftp_rd_attrs(r, &a);
	if (r->bad)
		return sd__sftp_status(s, id, SSH_FX_BAD_MESSAGE, "malformed OPEN");
	fl = open_flags(pflags);
	mode = (a.flags & SSH_FILEXFER_ATTR_PERMISSIONS) ? (a.perm & 07777) : 0644;

	h = sd__sftp_handle_alloc(s, &idx);
	if (h == NULL)
		return sd__sftp_status(s, id, SSH_FX_FAILURE, "too many open handles");
	rc = api->handle_open(s->x->sess, path, fl, mode, &fh, NULL);
	if (rc == 0 && (h->path = sd__sftp_canonical(s, path, &rc)) == NULL)
		api->handle_abandon(s->x->sess, fh);
	api->log(s->x->core, SD_LOG_DEBUG, "sftp", "event=open user=%s path=\"%s\" flags=0x%x err=%d",
		 s->x->user, sd__sftp_lp(lb, sizeof(lb), path), pflags, rc);
	if (rc < 0)
		return sd__sftp_err(s, id, rc);
	h->state = H_FILE;
	h->fh = fh;
	h->oflags = fl;
	h->omode = mode;
	h->readable = (fl & SD_O_READ) != 0;
	h->writable = (fl & SD_O_WRITE) != 0;
	return sd__sftp_handle_reply(s, id, idx);
}

int sd__sftp_op_close(fx_sess *s, uint32_t id, fx_rd *r)
{
	fx_handle *h = sd__sftp_handle_get(s, r);
	int64_t t0 = sd_mono_ms();
	int rc, was_write;
	if (h == NULL)
		return sd__sftp_status(s, id, r->bad ? SSH_FX_BAD_MESSAGE : SSH_FX_INVALID_HANDLE,
				   "invalid handle");
	was_write = h->state == H_FILE && h->writable;
	if (was_write) {
		char lb[256];
		s->x->api->log(s->x->core, SD_LOG_DEBUG, "sftp", "event=close user=%s path=\"%s\"",
			       s->x->user, sd__sftp_lp(lb, sizeof(lb), h->path));
		/* the commit runs on the pool; the session serves on (async.c) */
		if (h->fh != 0 && (rc = sd__sftp_async_close(s, id, (int)(h - s->h))) <= 0)
			return rc;
	}
	rc = sd__sftp_handle_close(s, h, 0);
	if (was_write)
		s->x->api->log(s->x->core, SD_LOG_DEBUG, "sftp", "event=closed user=%s rc=%d ms=%" PRId64,
			       s->x->user, rc, sd_mono_ms() - t0);
	return sd__sftp_err(s, id, rc);
}

int sd__sftp_op_read(fx_sess *s, uint32_t id, fx_rd *r)
{
	fx_handle *h = sd__sftp_handle_get(s, r);
	uint64_t off = sd__sftp_rd_u64(r);
	uint32_t len = sd__sftp_rd_u32(r);
	ssize_t n;
	fx_wr w;
	size_t lenpos;
	int rc;

	if (r->bad)
		return sd__sftp_status(s, id, SSH_FX_BAD_MESSAGE, "malformed READ");
	if (h == NULL || h->state != H_FILE)
		return sd__sftp_status(s, id, SSH_FX_INVALID_HANDLE, "invalid handle");
	if ((rc = sd__sftp_handle_file(s, h)) < 0)
		return sd__sftp_err(s, id, rc);
	if (len > s->x->max_read)
		len = s->x->max_read;
	if (len == 0)
		return sd__sftp_status(s, id, SSH_FX_EOF, "End of file");
	sd__sftp_wr_begin(&w, s, SSH_FXP_DATA, id);
	lenpos = w.len;
	sd__sftp_wr_u32(&w, 0);
	if (w.cap - w.len < len)
		len = (uint32_t)(w.cap - w.len);
	{
		int64_t t0 = sd__sftp_mono_us();
		/* the engine fills the reply packet in place */
		n = s->x->api->handle_pread(s->x->sess, h->fh, w.p + w.len, len, off);
		s->us_engine += sd__sftp_mono_us() - t0;
	}
	if (n < 0)
		return sd__sftp_err(s, id, (int)n);
	if (n == 0)
		return sd__sftp_status(s, id, SSH_FX_EOF, "End of file");
	s->bytes_out += (uint64_t)n;
	h->nread += (uint64_t)n;
	sd_bw_take(s->x->bw, s->x->bws, (size_t)n); /* bandwidth_limit (util/bw.c) */
	put_be32(w.p + lenpos, (uint32_t)n);
	w.len += (size_t)n;
	return sd__sftp_send(s, &w, id);
}

int sd__sftp_op_write(fx_sess *s, uint32_t id, fx_rd *r)
{
	fx_handle *h = sd__sftp_handle_get(s, r);
	uint64_t off = sd__sftp_rd_u64(r);
	uint32_t len;
	const unsigned char *data = sd__sftp_rd_str(r, &len);
	ssize_t n;
	int rc;

	if (r->bad)
		return sd__sftp_status(s, id, SSH_FX_BAD_MESSAGE, "malformed WRITE");
	if (h == NULL || h->state != H_FILE)
		return sd__sftp_status(s, id, SSH_FX_INVALID_HANDLE, "invalid handle");
	if (!h->writable)
		return sd__sftp_status(s, id, SSH_FX_PERMISSION_DENIED, "file not opened for writing");
	if ((rc = sd__sftp_handle_file(s, h)) < 0)
		return sd__sftp_err(s, id, rc);
	{
		/* an APPEND handle writes at the end whatever off says (engine) */
		int64_t t0 = sd__sftp_mono_us();
		n = s->x->api->handle_pwrite(s->x->sess, h->fh, data, len, off);
		s->us_engine += sd__sftp_mono_us() - t0;
	}
	if (n < 0)
		return sd__sftp_err(s, id, (int)n);
	if ((size_t)n != len)
		return sd__sftp_status(s, id, SSH_FX_FAILURE, "short write");
	s->bytes_in += len;
	h->nwritten += len;
	sd_bw_take(s->x->bw, s->x->bws, len);
	return sd__sftp_ok(s, id);
}

static int reply_stat(fx_sess *s, uint32_t id, const sd_stat *st)
{
	fx_wr w;
	sd__sftp_wr_begin(&w, s, SSH_FXP_ATTRS, id);
	sd__sftp_wr_attrs(&w, st);
	return sd__sftp_send(s, &w, id);
}

/* A file this session created and has not closed yet is not in the tree
 * (creates become visible at commit), but its creator sees it: sshfs
 * (and FUSE under it) stats a file right after OPEN with CREAT, and fails
 * the create when the file is not there. The attributes are the open
 * handle's. -ENOENT when no handle of this session is open on path. */
static int stat_pending(fx_sess *s, const char *path, sd_stat *st)
{
	int rc;
	char *canon = sd__sftp_canonical(s, path, &rc);
	if (!canon)
		return -ENOENT;
	rc = -ENOENT;
	for (int i = 0; i < s->nh && rc == -ENOENT; i++) {
		fx_handle *h = &s->h[i];
		if (h->state == H_FILE && h->writable && h->path && strcmp(h->path, canon) == 0 &&
		    sd__sftp_handle_file(s, h) == 0 &&
		    s->x->api->handle_fstat(s->x->sess, h->fh, st) == 0)
			rc = 0;
	}
	free(canon);
	return rc;
}

int sd__sftp_op_stat(fx_sess *s, uint32_t id, fx_rd *r)
{
	char path[SD_PATH_MAX + 1];
	sd_stat st;
	int rc;
	if ((rc = sd__sftp_get_path(s, r, id, path, sizeof(path))) != 0)
		return rc < 0 ? rc : 0;
	/* v3 STAT/LSTAT carry no flags; anything after the path is ignored */
	rc = s->x->api->stat(s->x->sess, path, &st);
	if (rc == -ENOENT)
		rc = stat_pending(s, path, &st);
	if (rc < 0)
		return sd__sftp_err(s, id, rc);
	return reply_stat(s, id, &st);
}

int sd__sftp_op_fstat(fx_sess *s, uint32_t id, fx_rd *r)
{
	fx_handle *h = sd__sftp_handle_get(s, r);
	sd_stat st;
	int rc;
	if (h == NULL)
		return sd__sftp_status(s, id, r->bad ? SSH_FX_BAD_MESSAGE : SSH_FX_INVALID_HANDLE,
				   "invalid handle");
	if (h->state == H_DIR)
		rc = s->x->api->stat(s->x->sess, h->path, &st);
	else if ((rc = sd__sftp_handle_file(s, h)) == 0)
		rc = s->x->api->handle_fstat(s->x->sess, h->fh, &st);
	if (rc < 0)
		return sd__sftp_err(s, id, rc);
	return reply_stat(s, id, &st);
}

/* Size (through a short-lived handle), mode and time of a path, in that
 * order, so that the time set last is the one kept. uid/gid are accepted
 * and ignored (one owner per tree). 0 or -errno. */
static int setstat_path(fx_sess *s, const char *path, const fx_attr *a)
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

int sd__sftp_op_setstat(fx_sess *s, uint32_t id, fx_rd *r)
{
	char path[SD_PATH_MAX + 1];
	fx_attr a;
	int rc;
	if ((rc = sd__sftp_get_path(s, r, id, path, sizeof(path))) != 0)
		return rc < 0 ? rc : 0;
	sd__sftp_rd_attrs(r, &a);
	if (r->bad)
		return sd__sftp_status(s, id, SSH_FX_BAD_MESSAGE, "malformed SETSTAT");
	return sd__sftp_err(s, id, setstat_path(s, path, &a));
}

/* FSETSTAT. On a file: size truncates or extends the handle's working copy
 * (a writer) or the file (a reader, through its path); mode and time go to
 * the engine handle, which keeps them for the commit when the file has
 * unsaved writes or is being created ("write, set mtime, close" keeps the
 * client's mtime), and applies them at once otherwise. On a directory: by
 * path. */
int sd__sftp_op_fsetstat(fx_sess *s, uint32_t id, fx_rd *r)
{
	const sd_core_api *api = s->x->api;
	fx_handle *h = sd__sftp_handle_get(s, r);
	fx_attr a;
	unsigned mask = 0;
	int rc = 0;
	sd__sftp_rd_attrs(r, &a);
	if (r->bad)
		return sd__sftp_status(s, id, SSH_FX_BAD_MESSAGE, "malformed FSETSTAT");
	if (h == NULL)
		return sd__sftp_status(s, id, SSH_FX_INVALID_HANDLE, "invalid handle");
	if (h->state == H_DIR)
		return sd__sftp_err(s, id, setstat_path(s, h->path, &a));
	if ((rc = sd__sftp_handle_file(s, h)) < 0)
		return sd__sftp_err(s, id, rc);
	if (a.flags & SSH_FILEXFER_ATTR_SIZE) {
		if (h->writable) {
			rc = api->handle_truncate(s->x->sess, h->fh, a.size);
		} else {
			fx_attr sz = {.flags = SSH_FILEXFER_ATTR_SIZE, .size = a.size};
			rc = setstat_path(s, h->path, &sz);
		}
		if (rc < 0)
			return sd__sftp_err(s, id, rc);
	}
	if (a.flags & SSH_FILEXFER_ATTR_PERMISSIONS)
		mask |= SD_ATTR_MODE;
	if (a.flags & SSH_FILEXFER_ATTR_ACMODTIME)
		mask |= SD_ATTR_MTIME;
	if (mask != 0)
		rc = api->handle_setattr(s->x->sess, h->fh, mask, a.perm & 07777, (int64_t)a.mtime);
	return sd__sftp_err(s, id, rc);
}

int sd__sftp_op_opendir(fx_sess *s, uint32_t id, fx_rd *r)
{
	char path[SD_PATH_MAX + 1];
	sd_stat st;
	fx_handle *h;
	int idx, rc;
	if ((rc = sd__sftp_get_path(s, r, id, path, sizeof(path))) != 0)
		return rc < 0 ? rc : 0;
	rc = s->x->api->stat(s->x->sess, path, &st);
	if (rc < 0)
		return sd__sftp_err(s, id, rc);
	if (st.kind != SD_KIND_DIR)
		return sd__sftp_err(s, id, -ENOTDIR);
	h = sd__sftp_handle_alloc(s, &idx);
	if (h == NULL)
		return sd__sftp_status(s, id, SSH_FX_FAILURE, "too many open handles");
	if ((h->path = sd__sftp_canonical(s, path, &rc)) == NULL)
		return sd__sftp_err(s, id, rc);
	h->state = H_DIR;
	return sd__sftp_handle_reply(s, id, idx);
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
	fx_sess *s;
	fx_wr *w;
	int count, stopped;
	char last[SD_NAME_MAX + 1];
};

static int readdir_cb(void *arg, const sd_dirent *e)
{
	struct rdctx *c = arg;
	char ln[SD_NAME_MAX + 128];
	size_t nl = strlen(e->name);
	fx_wr save;
	if (nl > SD_NAME_MAX) {
		c->stopped = 1;
		return 1;
	}
	longname(ln, sizeof(ln), &e->st, e->name, c->s->x->user);
	save = *c->w;
	sd__sftp_wr_str(c->w, e->name, nl);
	sd__sftp_wr_cstr(c->w, ln);
	sd__sftp_wr_attrs(c->w, &e->st);
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
int sd__sftp_op_readdir(fx_sess *s, uint32_t id, fx_rd *r)
{
	fx_handle *h = sd__sftp_handle_get(s, r);
	struct rdctx c;
	fx_wr w;
	size_t countpos;
	int more = 0, rc;

	if (h == NULL || h->state != H_DIR)
		return sd__sftp_status(s, id, r->bad ? SSH_FX_BAD_MESSAGE : SSH_FX_INVALID_HANDLE,
				   "invalid handle");
	if (sd__sftp_async_settle(s, h->path) < 0)
		return -EIO;
	if (h->eof)
		return sd__sftp_status(s, id, SSH_FX_EOF, "End of directory");
	sd__sftp_wr_begin(&w, s, SSH_FXP_NAME, id);
	countpos = w.len;
	sd__sftp_wr_u32(&w, 0);
	memset(&c, 0, sizeof(c));
	c.s = s;
	c.w = &w;
	rc = s->x->api->readdir(s->x->sess, h->path, h->last, READDIR_PAGE, readdir_cb, &c, &more);
	if (rc < 0)
		return sd__sftp_err(s, id, rc);
	if (c.count == 0) {
		h->eof = 1;
		return sd__sftp_status(s, id, SSH_FX_EOF, "End of directory");
	}
	if (!more && !c.stopped)
		h->eof = 1;
	free(h->last);
	h->last = sd_xstrdup(c.last);
	put_be32(w.p + countpos, (uint32_t)c.count);
	return sd__sftp_send(s, &w, id);
}

/* REMOVE is for files; the engine refuses a directory (-EISDIR), which
 * needs RMDIR, as with OpenSSH. */
int sd__sftp_op_remove(fx_sess *s, uint32_t id, fx_rd *r)
{
	char path[SD_PATH_MAX + 1];
	int rc;
	if ((rc = sd__sftp_get_path(s, r, id, path, sizeof(path))) != 0)
		return rc < 0 ? rc : 0;
	return sd__sftp_err(s, id, s->x->api->unlink(s->x->sess, path, 0));
}

int sd__sftp_op_mkdir(fx_sess *s, uint32_t id, fx_rd *r)
{
	char path[SD_PATH_MAX + 1];
	fx_attr a;
	int rc;
	if ((rc = sd__sftp_get_path(s, r, id, path, sizeof(path))) != 0)
		return rc < 0 ? rc : 0;
	sd__sftp_rd_attrs(r, &a);
	if (r->bad)
		return sd__sftp_status(s, id, SSH_FX_BAD_MESSAGE, "malformed MKDIR");
	rc = s->x->api->mkdir(s->x->sess, path,
			      (a.flags & SSH_FILEXFER_ATTR_PERMISSIONS) ? (a.perm & 07777) : 0755, 0);
	return sd__sftp_err(s, id, rc);
}

int sd__sftp_op_rmdir(fx_sess *s, uint32_t id, fx_rd *r)
{
	char path[SD_PATH_MAX + 1];
	int rc;
	if ((rc = sd__sftp_get_path(s, r, id, path, sizeof(path))) != 0)
		return rc < 0 ? rc : 0;
	return sd__sftp_err(s, id, s->x->api->rmdir(s->x->sess, path));
}

/* The engine's canonical form (v3: one name, attributes empty, as OpenSSH
 * does); "~" was expanded by sd__sftp_get_path. Touches no file, so the
 * credentials are checked here. */
int sd__sftp_op_realpath(fx_sess *s, uint32_t id, fx_rd *r)
{
	char path[SD_PATH_MAX + 1], canon[SD_PATH_MAX + 1];
	fx_wr w;
	int rc;
	if ((rc = sd__sftp_get_path(s, r, id, path, sizeof(path))) != 0)
		return rc < 0 ? rc : 0;
	if ((rc = s->x->api->session_check(s->x->sess)) < 0 ||
	    (rc = s->x->api->resolve(s->x->sess, path, strlen(path), canon, sizeof(canon))) < 0)
		return sd__sftp_err(s, id, rc);
	sd__sftp_wr_begin(&w, s, SSH_FXP_NAME, id);
	sd__sftp_wr_u32(&w, 1);
	sd__sftp_wr_cstr(&w, canon);
	sd__sftp_wr_cstr(&w, canon);
	sd__sftp_wr_u32(&w, 0);
	return sd__sftp_send(s, &w, id);
}

/* RENAME (v3: fails if the target exists, like OpenSSH) and
 * posix-rename@openssh.com (replaces). v3 uses the engine's no-replace
 * flag, checked in the rename's own transaction; a rename onto itself is
 * allowed. */
int sd__sftp_op_rename(fx_sess *s, uint32_t id, fx_rd *r, int replace)
{
	const sd_core_api *api = s->x->api;
	char from[SD_PATH_MAX + 1], to[SD_PATH_MAX + 1];
	int rc;
	if ((rc = sd__sftp_get_path(s, r, id, from, sizeof(from))) != 0)
		return rc < 0 ? rc : 0;
	if ((rc = sd__sftp_get_path(s, r, id, to, sizeof(to))) != 0)
		return rc < 0 ? rc : 0;
	/* v3 RENAME refuses an existing target; posix-rename replaces it. The
	 * engine checks in the rename's own transaction, so no race. */
	rc = api->rename(s->x->sess, from, to, replace ? 0 : SD_RENAME_NOREPLACE);
	if (rc == -EEXIST)
		return sd__sftp_status(s, id, SSH_FX_FAILURE, "target exists");
	return sd__sftp_err(s, id, rc);
}

