/*
 * file.c - working copies of random-access open files (DESIGN path 4),
 * with Cage's open modes. Front ends reach them through handles
 * (handle.c, api.c); nothing here knows about sessions.
 *
 * An sd_file reads the version it opened (its "base", a reader) until it
 * writes. The first write or truncate gives it a private working copy, a
 * temp file fed through a write pipe:
 *   - SEQUENTIAL: the file was new or truncated and every write so far
 *     landed exactly at the end. Writes go through the pipeline, which
 *     hashes as it goes (the common upload case: no re-read at commit).
 *   - RANDOM: anything else. The base is copied into the temp file if it
 *     had content, writes are pwrite()s, and the address is computed by
 *     re-reading the file at commit.
 * sync/close commit the working copy through the one commit step as a new
 * version of whichever node now has the path (last commit wins); the
 * committed content then becomes the new base. abandon drops the working
 * copy, so a client that vanishes leaves the previous version intact.
 *
 * Creates: an open with SD_O_CREAT of a path that does not exist makes a
 * PENDING file: nothing is visible until its first commit (close or sync),
 * which creates the node in the same transaction as its content (with
 * SD_O_EXCL, failing if someone else created the path meanwhile). A pending
 * file that is closed without writes still commits: open(O_CREAT) + close
 * makes an empty file, as on a local disk. Abandoning it leaves nothing.
 *
 * Attributes set on an open file with unsaved writes (or pending) are kept
 * and applied in the commit transaction, so "write, set mtime, close"
 * keeps the client's mtime.
 *
 * Views: a file of a past view or of the trash (history.c) is opened with
 * sd__file_open_view: read-only, on the content the view found, with the
 * view's metadata; it takes no open mode (nothing can write there).
 *
 * Open modes: a table keyed by the node ("n<id>") or, for a pending file,
 * by its owner and path ("p<uid>:<path>") counts opens per mode.
 *   EXCLUSIVE    needs no other open; blocks every other open.
 *   SHARE_READ   read-only itself; refuses while a writer is open, and
 *                blocks writers while it is open.
 *   SHARE_WRITE  (default) coexists with readers and writers.
 * Write locks (lock.c) count as open modes too: a write open of a path a
 * lock covers is refused (-EBUSY) unless the opener submitted the lock's
 * token, and a lock is refused while a writer or an exclusive open holds
 * its file; both are decided under open_lock.
 * A refused open returns -EBUSY; an SD_O_EXCL create of a path that another
 * open is creating returns -EEXIST. When a pending file commits, its
 * entry moves to the node's key (I7: counts never go negative).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "log.h"
#include "sys.h"

struct sd_openent {
	sd_openent *next;
	char *key;
	int total, writers, exclusive, share_read;
};

enum wmode { W_CLEAN = 0, W_SEQ, W_RANDOM };

struct sd_file {
	sd_core *c;
	sd_principal u;
	char npath[SD_PATH_MAX + 1];
	unsigned flags;
	char *okey;        /* open-mode table key */
	int pending;       /* created by this open, not committed yet */
	uint32_t cmode;    /* mode of a pending file */
	int64_t node;
	sd_reader *base;   /* NULL: empty base */
	uint64_t base_size;
	sd_wpipe *wp;
	enum wmode wmode;
	uint64_t size;     /* logical size */
	int dirty;
	unsigned omode;    /* SD_O_EXCLUSIVE / SHARE_READ / SHARE_WRITE */
	int writes;
	unsigned amask;    /* SD_ATTR_* kept for the next commit */
	const char *expect; /* sync_if: the content the node must hold */
	uint32_t amode;
	int64_t amtime;
	int view;          /* a read-only file of a past view (vst describes it) */
	sd_stat vst;
	/* in a shared folder: the rights the open needed are checked again
	 * while it is open (sd__file_recheck) */
	int shared;
	unsigned need;
	unsigned chk_gen;  /* c->team_mem_gen at the last check */
	int64_t chk_ms;    /* monotonic ms of the last check */
	int64_t qowner;    /* whose quota the file counts against: its tree's owner
			    * (the user, or a shared folder's account) */
	uint64_t room_ok;  /* sizes up to this passed the quota (0: not known) */
	uint64_t committed; /* size of the version the quota counts now (0: pending) */
	int dead;          /* -EDQUOT: the unsaved writes can never commit */
	int quota_told;    /* its quota_exceeded event has fired */
};

/* ------------------------------------------------------------ open modes */

/* Lock held. */
static sd_openent *ent_find(sd_core *c, const char *key)
{
	for (sd_openent *e = c->opens; e; e = e->next)
		if (strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

static void ent_add(sd_core *c, const char *key, unsigned omode, int writes)
{
	sd_openent *e = ent_find(c, key);
	if (!e) {
		e = sd_xcalloc(1, sizeof *e);
		e->key = sd_xstrdup(key);
		e->next = c->opens;
		c->opens = e;
	}
	e->total++;
	e->writers += writes;
	e->exclusive += omode == SD_O_EXCLUSIVE;
	e->share_read += omode == SD_O_SHARE_READ;
}

static void ent_sub(sd_core *c, const char *key, unsigned omode, int writes)
{
	for (sd_openent **pp = &c->opens; *pp; pp = &(*pp)->next) {
		sd_openent *e = *pp;
		if (strcmp(e->key, key) != 0)
			continue;
		e->total--;
		e->writers -= writes;
		e->exclusive -= omode == SD_O_EXCLUSIVE;
		e->share_read -= omode == SD_O_SHARE_READ;
		SD_ASSERT(e->total >= 0 && e->writers >= 0 && e->exclusive >= 0 &&
			  e->share_read >= 0); /* I7 */
		if (e->total <= 0) {
			*pp = e->next;
			free(e->key);
			free(e);
		}
		return;
	}
	SD_ASSERT(!"open-mode entry missing"); /* I7 */
}

/* Take an open of f's key. A write open of a path a lock covers needs the
 * lock's token (lock.c), checked under the same mutex: a lock and a
 * conflicting open never both win. */
static int open_acquire(sd_file *f, int excl_create, const sd_locktoks *tk)
{
	sd_core *c = f->c;
	const char *key = f->okey;
	unsigned omode = f->omode;
	int writes = f->writes;
	pthread_mutex_lock(&c->open_lock);
	sd_openent *e = ent_find(c, key);
	int r = 0;
	if (e && excl_create)
		r = -EEXIST;
	else if (e && (e->exclusive || (omode == SD_O_EXCLUSIVE && e->total > 0) ||
		       (omode == SD_O_SHARE_READ && e->writers > 0) || (writes && e->share_read > 0)))
		r = -EBUSY;
	if (r == 0 && writes)
		r = sd__lock_allow_locked(c, f->u.id, f->npath,
					  SD_LK_SELF | (f->pending ? SD_LK_PARENT : 0), tk);
	if (r == 0)
		ent_add(c, key, omode, writes);
	pthread_mutex_unlock(&c->open_lock);
	return r;
}

static void open_release(sd_core *c, const char *key, unsigned omode, int writes)
{
	pthread_mutex_lock(&c->open_lock);
	ent_sub(c, key, omode, writes);
	pthread_mutex_unlock(&c->open_lock);
}

/* A pending file became node: move its open from the path key to the
 * node's (an open that exists there now was made after our commit, so
 * both are allowed to stay). */
static void open_rekey(sd_file *f, int64_t node)
{
	char *nk = sd_xasprintf("n%lld", (long long)node);
	pthread_mutex_lock(&f->c->open_lock);
	ent_sub(f->c, f->okey, f->omode, f->writes);
	ent_add(f->c, nk, f->omode, f->writes);
	pthread_mutex_unlock(&f->c->open_lock);
	free(f->okey);
	f->okey = nk;
}

/* The open-mode key of npath in u's view: "n<id>" for a node, else
 * "p<folder id>/<name>" for a file being created (the same key for every
 * user who creates it in a shared folder). 0, -ENOENT (no such path, or
 * not visible), or another error. */
int sd__open_key(sd_core *c, const sd_principal *u, const char *npath, char **key, int *node)
{
	sd_dbc *d = sd_db_read_begin(c->db);
	sd_view v;
	sd_node n, dir;
	const char *leaf;
	*key = NULL;
	*node = 0;
	int r = sd__view_open(c, d, u, &v);
	if (r == 0)
		r = sd__view_lookup(&v, npath, &n);
	if (r == 0 && !n.vis)
		r = -ENOENT;
	if (r == 0) {
		*key = sd_xasprintf("n%lld", (long long)n.id);
		*node = 1;
	} else if (r == -ENOENT && (r = sd__view_parent(&v, npath, 0, 0, &dir, &leaf)) == 0) {
		*key = sd_xasprintf("p%lld/%s", (long long)dir.id, leaf);
	}
	sd__view_close(&v);
	sd_db_read_end(c->db, d);
	return r;
}

int sd__open_state(sd_core *c, const sd_principal *u, const char *npath, unsigned *state)
{
	*state = 0;
	char *key;
	int node;
	int r = sd__open_key(c, u, npath, &key, &node);
	if (r < 0)
		return r == -ENOTDIR ? -ENOENT : r;
	pthread_mutex_lock(&c->open_lock);
	sd_openent *e = ent_find(c, key);
	if (e) {
		*state |= e->exclusive ? SD_OPEN_EXCLUSIVE : 0;
		*state |= e->share_read ? SD_OPEN_SHARE_READ : 0;
		*state |= e->writers ? SD_OPEN_WRITERS : 0;
		*state |= e->total ? SD_OPEN_READERS : 0;
	}
	if (sd__lock_covers_locked(c, u->id, npath))
		*state |= SD_OPEN_LOCKED;
	pthread_mutex_unlock(&c->open_lock);
	free(key);
	return 0;
}

int sd__open_writers_locked(sd_core *c, const char *key)
{
	sd_openent *e = ent_find(c, key);
	return e && (e->writers > 0 || e->exclusive > 0);
}

void sd__open_free_all(sd_core *c)
{
	sd_openent *e = c->opens;
	while (e) {
		sd_openent *n = e->next;
		free(e->key);
		free(e);
		e = n;
	}
	c->opens = NULL;
}

/* ------------------------------------------------------------ open */

int sd__file_open(sd_core *c, const sd_principal *u, const char *npath, unsigned flags,
		  uint32_t mode, const sd_locktoks *tk, sd_file **out, sd_stat *stout)
{
	int writes = (flags & (SD_O_WRITE | SD_O_APPEND | SD_O_TRUNC | SD_O_CREAT)) != 0;
	if (writes) {
		int r = sd__check_writable(u);
		if (r < 0)
			return r;
		flags |= SD_O_WRITE;
	}
	unsigned omode = flags & (SD_O_EXCLUSIVE | SD_O_SHARE_READ | SD_O_SHARE_WRITE);
	if (omode == 0)
		omode = SD_O_SHARE_WRITE;
	if (omode != SD_O_EXCLUSIVE && omode != SD_O_SHARE_READ && omode != SD_O_SHARE_WRITE)
		return -EINVAL;
	if (omode == SD_O_SHARE_READ && writes)
		return -EINVAL;
	if (strcmp(npath, "/") == 0)
		return -EISDIR;
	sd_file *f = sd_xcalloc(1, sizeof *f);
	f->c = c;
	f->u = *u;
	f->flags = flags;
	f->omode = omode;
	f->writes = writes;
	snprintf(f->npath, sizeof f->npath, "%s", npath);
	/* the rights this open needs (team.c T7), checked again while open */
	f->need = (writes ? SD_RIGHT_WRITE : 0) |
		  ((flags & SD_O_READ) || !writes ? SD_RIGHT_READ : 0);
	sd_stat st;
	sd_node n, dir;
	const char *leaf = NULL;
	int exists = 0;
	sd_dbc *d = sd_db_read_begin(c->db);
	sd_view v;
	int r = sd__view_open(c, d, u, &v);
	if (r == 0)
		r = sd__view_lookup(&v, npath, &n);
	if (r == 0) {
		exists = 1;
		sd__node_to_stat(&n, &st);
		if (n.kind == SD_KIND_FILE)
			st.versions = sd__version_count(d, n.id);
		f->shared = n.share != 0;
		f->qowner = n.owner;
	} else if (r == -ENOENT && (flags & SD_O_CREAT)) {
		r = sd__view_parent(&v, npath, 0, 0, &dir, &leaf);
		f->shared = dir.share != 0;
		f->qowner = dir.owner;
	}
	sd__view_close(&v);
	sd_db_read_end(c->db, d);
	if (exists && (flags & SD_O_CREAT) && (flags & SD_O_EXCL))
		r = -EEXIST;
	else if (exists && st.kind != SD_KIND_FILE)
		r = -EISDIR;
	else if (exists && (n.rights & f->need) != f->need)
		r = n.vis ? -EACCES : -ENOENT;
	else if (exists && st.size > 0 && !(flags & SD_O_TRUNC) && !(n.rights & SD_RIGHT_READ))
		r = -EACCES; /* its content would be readable through the handle */
	else if (!exists && r == 0) {
		if (!(dir.rights & SD_RIGHT_WRITE)) {
			r = -EACCES;
			goto fail;
		}
		f->pending = 1;
		f->cmode = mode ? mode & 07777 : 0644;
		f->okey = sd_xasprintf("p%lld/%s", (long long)dir.id, leaf);
		r = open_acquire(f, (flags & SD_O_EXCL) != 0, tk);
		if (r < 0)
			goto fail;
		memset(&st, 0, sizeof st);
		st.kind = SD_KIND_FILE;
		st.mode = f->cmode;
		st.mtime = st.ctime = sd__now_s(c);
		f->dirty = 1; /* close creates it, even empty */
		goto done;
	}
	if (r < 0)
		goto fail;
	f->node = st.id;
	f->committed = st.size;
	f->okey = sd_xasprintf("n%lld", (long long)st.id);
	if ((r = open_acquire(f, 0, tk)) < 0)
		goto fail;
	if (st.size > 0 && !(flags & SD_O_TRUNC)) {
		/* the reader's version is what we read, whatever stat saw */
		if ((r = sd__reader_open(c, u, npath, 0, &f->base, &st)) < 0) {
			open_release(c, f->okey, omode, writes);
			goto fail;
		}
		f->base_size = st.size;
	}
	if (flags & SD_O_TRUNC)
		f->dirty = st.size > 0; /* an empty version only if there was content */
done:
	f->size = (flags & SD_O_TRUNC) ? 0 : f->base_size;
	if (stout) {
		*stout = st;
		stout->size = f->size;
	}
	*out = f;
	return 0;
fail:
	free(f->okey);
	free(f);
	return r;
}

/* ------------------------------------------------------------ writing */

/* Make sure a working copy exists, in the mode this write needs. */
static int need_working_copy(sd_file *f, int sequential_ok)
{
	sd_core *c = f->c;
	int r;
	if (!f->wp) {
		if ((r = sd__wpipe_open(c, &f->wp)) < 0)
			return r;
		if (f->size == 0 && sequential_ok) {
			f->wmode = W_SEQ;
			return 0;
		}
		/* copy the base's first `size` bytes (size <= base_size) */
		uint64_t keep = f->size < f->base_size ? f->size : f->base_size;
		if (keep > 0 && (r = sd__reader_copy_to_fd(f->base, sd__wpipe_fd(f->wp), keep)) < 0)
			return r;
		if (f->size > keep && (r = sd_sys_ftruncate(sd__wpipe_fd(f->wp), f->size)) < 0)
			return r;
		sd__wpipe_invalidate(f->wp, f->size);
		f->wmode = W_RANDOM;
		return 0;
	}
	if (f->wmode == W_SEQ && !sequential_ok) {
		if ((r = sd__wpipe_drain(f->wp)) < 0)
			return r;
		sd__wpipe_invalidate(f->wp, f->size);
		f->wmode = W_RANDOM;
	}
	return 0;
}

/* May the file grow to new_size, skipping `hole` bytes past its end? Checked
 * before anything is written (issue 18): every byte of a hole is hashed at
 * commit, so a write of 1 byte at 1 TiB or a truncate to 4 GiB must fail
 * at once, not after minutes of hashing; and the quota (read once, then
 * whenever the file grows past the room it allowed) refuses a file that
 * cannot fit before its bytes are taken. 0, -EFBIG or -EDQUOT. After
 * -EDQUOT on a file with unsaved writes those are dead: the next commit
 * drops them and fails (the previous version stays, as when the commit
 * itself finds the quota exceeded); -EFBIG, and -EDQUOT with nothing
 * unsaved, only refuse the one call. */
static int may_grow(sd_file *f, uint64_t new_size, uint64_t hole)
{
	const sd_conf *cf = f->c->conf;
	if (new_size <= f->size)
		return 0;
	if (cf->max_file_size > 0 && new_size > (uint64_t)cf->max_file_size)
		return -EFBIG;
	if (cf->max_hole > 0 && hole > (uint64_t)cf->max_hole)
		return -EFBIG;
	if (new_size <= f->room_ok)
		return 0;
	int64_t room;
	sd_dbc *d = sd_db_read_begin(f->c->db);
	int r = sd__quota_room(d, f->qowner > 0 ? f->qowner : f->u.id,
			       f->pending ? 0 : f->committed, &room);
	sd_db_read_end(f->c->db, d);
	if (r < 0)
		return r;
	f->room_ok = room < 0 ? UINT64_MAX : (uint64_t)room;
	if (new_size <= f->room_ok)
		return 0;
	if (f->dirty) /* what was written before cannot commit whole */
		f->dead = -EDQUOT;
	if (!f->quota_told) { /* quota_exceeded (events.c), once per open */
		f->quota_told = 1;
		sd__event(f->c, SD_EV_QUOTA, &f->u, f->npath, NULL, (int64_t)new_size, NULL,
			  "quota exceeded");
	}
	return -EDQUOT;
}

ssize_t sd__file_pwrite(sd_file *f, const void *buf, size_t len, uint64_t off)
{
	if (!(f->flags & SD_O_WRITE))
		return -EBADF;
	if (f->flags & SD_O_APPEND)
		off = f->size;
	if (off > (uint64_t)INT64_MAX - len)
		return -EFBIG;
	if (f->dead)
		return f->dead;
	int r;
	if (len && (r = may_grow(f, off + len, off > f->size ? off - f->size : 0)) < 0)
		return r;
	int seq = (f->wp == NULL || f->wmode == W_SEQ) && off == f->size &&
		  (f->wp != NULL || f->size == 0);
	r = need_working_copy(f, seq);
	if (r < 0)
		return r;
	if (len == 0)
		return 0;
	if (f->wmode == W_SEQ)
		r = sd__wpipe_write(f->wp, buf, len);
	else
		r = sd_sys_pwrite(sd__wpipe_fd(f->wp), buf, len, off);
	if (r < 0)
		return r;
	if (off + len > f->size)
		f->size = off + len;
	if (f->wmode == W_RANDOM)
		sd__wpipe_invalidate(f->wp, f->size);
	f->dirty = 1;
	return (ssize_t)len;
}

ssize_t sd__file_pread(sd_file *f, void *buf, size_t len, uint64_t off)
{
	if (off >= f->size)
		return 0;
	if (len > f->size - off)
		len = (size_t)(f->size - off);
	if (f->wp) {
		int r = sd__wpipe_drain(f->wp);
		if (r < 0)
			return r;
		return sd_sys_pread(sd__wpipe_fd(f->wp), buf, len, off);
	}
	if (!f->base)
		return 0;
	return sd__reader_pread(f->base, buf, len, off);
}

int sd__file_truncate(sd_file *f, uint64_t size)
{
	if (!(f->flags & SD_O_WRITE))
		return -EBADF;
	if (size > (uint64_t)INT64_MAX)
		return -EFBIG;
	if (f->dead)
		return f->dead;
	if (size == f->size)
		return 0;
	int r;
	if (size > f->size && (r = may_grow(f, size, size - f->size)) < 0)
		return r;
	if (size == 0 && (!f->wp || f->wmode == W_SEQ)) {
		/* truncating to nothing: start a fresh sequential copy */
		sd__wpipe_free(f->wp, 1);
		f->wp = NULL;
		f->size = 0;
		f->dirty = 1;
		return 0;
	}
	r = need_working_copy(f, 0);
	if (r < 0)
		return r;
	if ((r = sd__wpipe_drain(f->wp)) < 0)
		return r;
	if ((r = sd_sys_ftruncate(sd__wpipe_fd(f->wp), size)) < 0)
		return r;
	f->size = size;
	sd__wpipe_invalidate(f->wp, size);
	f->wmode = W_RANDOM;
	f->dirty = 1;
	return 0;
}

/* ------------------------------------------------------------ metadata */

int sd__file_open_view(sd_core *c, const sd_principal *u, const char *npath, sd_reader *base,
		       const sd_stat *st, sd_file **out)
{
	sd_file *f = sd_xcalloc(1, sizeof *f);
	f->c = c;
	f->u = *u;
	f->flags = SD_O_READ;
	f->omode = SD_O_SHARE_READ;
	f->view = 1;
	f->vst = *st;
	f->node = st->id;
	snprintf(f->npath, sizeof f->npath, "%s", npath);
	f->base = base;
	f->base_size = f->size = base ? st->size : 0;
	*out = f;
	return 0;
}

int sd__file_fstat(sd_file *f, sd_stat *st)
{
	if (f->view) {
		*st = f->vst;
		return 0;
	}
	int r = f->pending ? -ENOENT : sd__tree_stat(f->c, &f->u, f->npath, st);
	if (r == -ENOENT) {
		/* pending, or renamed or deleted while open: report what we hold */
		memset(st, 0, sizeof *st);
		st->id = f->node;
		st->kind = SD_KIND_FILE;
		st->mode = f->pending ? f->cmode : 0644;
		st->mtime = st->ctime = sd__now_s(f->c);
		r = 0;
	} else if (r < 0) {
		return r;
	}
	st->size = f->size;
	/* the content is the version this handle reads, not the path's now */
	if (!f->dirty)
		snprintf(st->sha256, sizeof st->sha256, "%s", f->base ? sd__reader_hex(f->base) : "");
	if (!f->dirty && !f->base)
		sd__empty_hex(st->sha256);
	if (f->amask & SD_ATTR_MODE)
		st->mode = f->amode;
	if (f->amask & SD_ATTR_MTIME)
		st->mtime = f->amtime;
	if (f->dirty)
		st->sha256[0] = '\0'; /* not known until commit */
	return 0;
}

int sd__file_setattr(sd_file *f, unsigned mask, uint32_t mode, int64_t mtime)
{
	if (mask & ~(SD_ATTR_MODE | SD_ATTR_MTIME))
		return -EINVAL;
	if (f->view)
		return -EROFS;
	if (f->dirty || f->pending) {
		int r = sd__check_writable(&f->u);
		if (r < 0)
			return r;
		f->amask |= mask;
		if (mask & SD_ATTR_MODE)
			f->amode = mode & 07777;
		if (mask & SD_ATTR_MTIME)
			f->amtime = mtime;
		return 0;
	}
	int r = 0;
	if (mask & SD_ATTR_MODE)
		r = sd__tree_chmod(f->c, &f->u, f->npath, mode);
	if (r == 0 && (mask & SD_ATTR_MTIME))
		r = sd__tree_set_mtime(f->c, &f->u, f->npath, mtime);
	return r;
}

/* ------------------------------------------------------------ commit */

/* Commit the working copy; reopen the committed version as the base only
 * when the file stays open. */
static int commit(sd_file *f, int closing)
{
	if (!f->dirty)
		return 0;
	sd_core *c = f->c;
	char hex[SD_SHA256_HEX];
	uint64_t size;
	int r;
	if (f->dead) { /* as a failed commit: the data is gone */
		sd__wpipe_free(f->wp, 1);
		f->wp = NULL;
		f->wmode = W_CLEAN;
		f->dirty = 0;
		r = f->dead;
		f->dead = 0;
		return r;
	}
	if (!f->wp && (r = need_working_copy(f, 1)) < 0) /* truncated to 0, or new */
		return r;
	if ((r = sd__wpipe_finish(f->wp, hex, &size)) < 0)
		return r;
	sd_put put = {.u = &f->u, .npath = f->npath, .size = size, .op = "write",
		      .expect_sha = f->expect};
	if (f->pending) {
		put.flags = (f->flags & SD_O_EXCL) ? SD_UP_EXCL : 0;
		put.mode = (f->amask & SD_ATTR_MODE) ? f->amode : f->cmode;
	} else if (f->amask & SD_ATTR_MODE) {
		put.mode = f->amode;
		put.set_mode = 1;
	}
	if (f->amask & SD_ATTR_MTIME)
		put.mtime = f->amtime;
	r = sd__commit_pipe(c, f->wp, hex, size, &put, NULL);
	sd__wpipe_free(f->wp, 1); /* the temp file, if any, is gone or unused */
	f->wp = NULL;
	f->wmode = W_CLEAN;
	f->dirty = 0; /* on failure the data is gone with the temp file */
	if (r < 0)
		return r;
	f->amask = 0;
	if (f->pending) {
		f->pending = 0;
		open_rekey(f, put.node_id);
	}
	f->node = put.node_id;
	/* the committed content is the new base */
	sd__reader_close(f->base);
	f->base = NULL;
	f->base_size = f->size = f->committed = size;
	f->room_ok = 0; /* the quota counts the new content now: ask again */
	if (!closing && size > 0 && (r = sd__reader_open_hex(c, hex, size, &f->base)) < 0)
		return r;
	return 0;
}

int sd__file_sync(sd_file *f)
{
	return commit(f, 0);
}

int sd__file_sync_if(sd_file *f, const char *expect)
{
	/* The check before the working copy is finished keeps the writes when
	 * it fails (the usual way a conflict is met); the one inside the
	 * commit transaction (tree_put) closes the window after it. */
	sd_stat st;
	int r = sd__tree_stat(f->c, &f->u, f->npath, &st);
	if (r == -ENOENT || (r == 0 && (st.kind != SD_KIND_FILE || strcmp(st.sha256, expect) != 0)))
		return -SD_ECHANGED;
	if (r < 0)
		return r;
	f->expect = expect;
	r = commit(f, 0);
	f->expect = NULL;
	if (r == -SD_ECHANGED)
		f->size = f->base_size; /* the race: writes dropped, clean on the old base */
	return r;
}

static void release(sd_file *f)
{
	sd__wpipe_free(f->wp, 1);
	sd__reader_close(f->base);
	if (f->okey) /* a view takes no open mode */
		open_release(f->c, f->okey, f->omode, f->writes);
	free(f->okey);
	free(f);
}

int sd__file_close(sd_file *f)
{
	if (!f)
		return 0;
	int r = commit(f, 1);
	release(f);
	return r;
}

int sd__file_recheck(sd_file *f)
{
	if (!f->shared || f->view || f->pending)
		return 0; /* a pending create is checked by its commit */
	sd_core *c = f->c;
	unsigned gen = atomic_load(&c->team_mem_gen);
	int64_t now = sd_mono_ms();
	if (f->chk_ms && gen == f->chk_gen && now - f->chk_ms < SD_TEAM_RECHECK_MS)
		return 0;
	sd_dbc *d = sd_db_read_begin(c->db);
	sd_view v;
	unsigned rights = 0;
	int r = sd__view_open(c, d, &f->u, &v);
	if (r == 0)
		r = sd__view_node_rights(&v, f->node, &rights, NULL, NULL);
	sd__view_close(&v);
	sd_db_read_end(c->db, d);
	if (r == -ENOENT || (r == 0 && (rights & f->need) != f->need))
		return -EACCES;
	if (r < 0)
		return r;
	f->chk_gen = gen;
	f->chk_ms = now;
	return 0;
}

void sd__file_info(const sd_file *f, sd_handle_info *out)
{
	out->flags = (f->flags & ~(SD_O_EXCLUSIVE | SD_O_SHARE_READ | SD_O_SHARE_WRITE)) | f->omode;
	out->dirty = f->dirty || f->pending;
	snprintf(out->path, sizeof out->path, "%s", f->npath);
}

const char *sd__file_path(const sd_file *f)
{
	return f->npath;
}

const char *sd__file_user(const sd_file *f)
{
	return f->u.name;
}

void sd__file_abandon(sd_file *f)
{
	if (f)
		release(f);
}
