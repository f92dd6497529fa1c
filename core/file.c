/*
 * file.c - random-access open files (DESIGN path 4, Cage's open modes).
 *
 * An sd_file reads from the immutable blob of the version it opened (its
 * "base") until it writes. The first write or truncate gives it a private
 * working copy, a temp file fed through a write pipe:
 *   - SEQUENTIAL: the file was new or truncated and every write so far
 *     landed exactly at the end. Writes go through the pipeline, which
 *     hashes as it goes (the common upload case: no re-read at commit).
 *   - RANDOM: anything else. The base is copied into the temp file
 *     (copy_file_range) if it had content, writes are pwrite()s, and the
 *     address is computed by re-reading the file at commit.
 * sync/close commit the working copy through the blob commit step as a new
 * version of the node (whichever node now has the path: last commit wins);
 * the committed blob then becomes the new base. abandon drops the working
 * copy, so a client that vanishes leaves the previous version intact.
 *
 * Open modes: a table keyed by node id counts opens per mode.
 *   EXCLUSIVE    needs no other open; blocks every other open.
 *   SHARE_READ   read-only itself; refuses while a writer is open, and
 *                blocks writers while it is open.
 *   SHARE_WRITE  (default) coexists with readers and writers.
 * A refused open returns -EBUSY.
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
#include "util.h"

struct sd_openent {
	sd_openent *next;
	int64_t node;
	int total, writers, exclusive, share_read;
};

enum wmode { W_CLEAN = 0, W_SEQ, W_RANDOM };

struct sd_file {
	sd_core *c;
	sd_user u;
	char npath[SD_PATH_MAX + 1];
	unsigned flags;
	int64_t node;
	int base_fd; /* -1: empty base */
	uint64_t base_size;
	sd_wpipe *wp;
	enum wmode wmode;
	uint64_t size; /* logical size */
	int dirty;
	unsigned omode; /* SD_O_EXCLUSIVE / SHARE_READ / SHARE_WRITE */
};

static int open_acquire(sd_core *c, int64_t node, unsigned omode, int writes)
{
	pthread_mutex_lock(&c->open_lock);
	sd_openent *e = c->opens;
	while (e && e->node != node)
		e = e->next;
	int r = 0;
	if (e) {
		if (e->exclusive || (omode == SD_O_EXCLUSIVE && e->total > 0) ||
		    (omode == SD_O_SHARE_READ && e->writers > 0) || (writes && e->share_read > 0))
			r = -EBUSY;
	}
	if (r == 0) {
		if (!e) {
			e = sd_xcalloc(1, sizeof *e);
			e->node = node;
			e->next = c->opens;
			c->opens = e;
		}
		e->total++;
		e->writers += writes;
		e->exclusive += omode == SD_O_EXCLUSIVE;
		e->share_read += omode == SD_O_SHARE_READ;
	}
	pthread_mutex_unlock(&c->open_lock);
	return r;
}

static void open_release(sd_core *c, int64_t node, unsigned omode, int writes)
{
	pthread_mutex_lock(&c->open_lock);
	for (sd_openent **pp = &c->opens; *pp; pp = &(*pp)->next) {
		sd_openent *e = *pp;
		if (e->node != node)
			continue;
		e->total--;
		e->writers -= writes;
		e->exclusive -= omode == SD_O_EXCLUSIVE;
		e->share_read -= omode == SD_O_SHARE_READ;
		if (e->total <= 0) {
			*pp = e->next;
			free(e);
		}
		break;
	}
	pthread_mutex_unlock(&c->open_lock);
}

void sd__open_free_all(sd_core *c)
{
	sd_openent *e = c->opens;
	while (e) {
		sd_openent *n = e->next;
		free(e);
		e = n;
	}
	c->opens = NULL;
}

/* Create an empty file at npath (visible at once, like open(O_CREAT)). */
static int create_empty(sd_core *c, const sd_user *u, const char *npath, unsigned excl,
			uint32_t mode)
{
	sd_wpipe *p;
	int r = sd__wpipe_open(c, &p);
	if (r < 0)
		return r;
	char hex[SD_SHA256_HEX];
	uint64_t size;
	if ((r = sd__wpipe_finish(p, hex, &size)) == 0) {
		sd_put put = {.u = u, .npath = npath, .flags = excl ? SD_UP_EXCL : 0, .mode = mode,
			      .size = 0, .op = "create"};
		r = sd__blob_commit(c, sd__wpipe_fd(p), sd__wpipe_path(p), hex, 0, sd__tree_put, &put,
				    NULL);
		sd__wpipe_free(p, 0, NULL);
	} else {
		sd__wpipe_free(p, 1, NULL);
	}
	return r;
}

int sd__file_open(sd_core *c, const sd_user *u, const char *path, unsigned flags, uint32_t mode,
		  sd_file **out)
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
	sd_file *f = sd_xcalloc(1, sizeof *f);
	f->c = c;
	f->u = *u;
	f->flags = flags;
	f->omode = omode;
	f->base_fd = -1;
	int r = sd__path_norm(path, f->npath, sizeof f->npath);
	if (r < 0)
		goto fail;
	if (strcmp(f->npath, "/") == 0) {
		r = -EISDIR;
		goto fail;
	}
	sd_stat st;
	r = sd__tree_stat_path(c, u, f->npath, &st);
	if (r == 0 && (flags & SD_O_CREAT) && (flags & SD_O_EXCL))
		r = -EEXIST;
	else if (r == -ENOENT && (flags & SD_O_CREAT)) {
		r = create_empty(c, u, f->npath, flags & SD_O_EXCL, mode);
		if (r == 0)
			r = sd__tree_stat_path(c, u, f->npath, &st);
	}
	if (r < 0)
		goto fail;
	if (st.kind != SD_KIND_FILE) {
		r = -EISDIR;
		goto fail;
	}
	f->node = st.id;
	if ((r = open_acquire(c, f->node, omode, writes)) < 0)
		goto fail;
	if (st.size > 0 && !(flags & SD_O_TRUNC)) {
		int fd;
		r = sd__open_read(c, u, f->npath, &fd, &st);
		if (r < 0) {
			open_release(c, f->node, omode, writes);
			goto fail;
		}
		f->base_fd = fd;
		f->base_size = st.size;
	}
	f->size = (flags & SD_O_TRUNC) ? 0 : f->base_size;
	if (flags & SD_O_TRUNC)
		f->dirty = st.size > 0; /* an empty version only if there was content */
	*out = f;
	return 0;
fail:
	free(f);
	return r;
}

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
		if (keep > 0 && (r = sd_sys_copy_range(f->base_fd, sd__wpipe_fd(f->wp), keep)) < 0)
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

ssize_t sd__file_pwrite(sd_file *f, const void *buf, size_t len, uint64_t off)
{
	if (!(f->flags & SD_O_WRITE))
		return -EBADF;
	if (f->flags & SD_O_APPEND)
		off = f->size;
	if (off > (uint64_t)INT64_MAX - len)
		return -EFBIG;
	int seq = (f->wp == NULL || f->wmode == W_SEQ) && off == f->size &&
		  (f->wp != NULL || f->size == 0);
	int r = need_working_copy(f, seq);
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
	if (f->base_fd < 0)
		return 0;
	return sd_sys_pread(f->base_fd, buf, len, off);
}

int sd__file_truncate(sd_file *f, uint64_t size)
{
	if (!(f->flags & SD_O_WRITE))
		return -EBADF;
	if (size == f->size)
		return 0;
	if (size == 0 && (!f->wp || f->wmode == W_SEQ)) {
		/* truncating to nothing: start a fresh sequential copy */
		sd__wpipe_free(f->wp, 1, NULL);
		f->wp = NULL;
		f->size = 0;
		f->dirty = 1;
		return 0;
	}
	int r = need_working_copy(f, 0);
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

int sd__file_fstat(sd_file *f, sd_stat *st)
{
	int r = sd__tree_stat_path(f->c, &f->u, f->npath, st);
	if (r == -ENOENT) {
		/* renamed or deleted while open: report what we hold */
		memset(st, 0, sizeof *st);
		st->id = f->node;
		st->kind = SD_KIND_FILE;
		st->mode = 0644;
		r = 0;
	} else if (r < 0) {
		return r;
	}
	st->size = f->size;
	if (f->dirty)
		st->sha256[0] = '\0'; /* not known until commit */
	return 0;
}

int sd__file_sync(sd_file *f)
{
	if (!f->dirty)
		return 0;
	sd_core *c = f->c;
	char hex[SD_SHA256_HEX];
	uint64_t size;
	int r;
	if (!f->wp && (r = need_working_copy(f, 1)) < 0) /* truncated to 0 */
		return r;
	if ((r = sd__wpipe_finish(f->wp, hex, &size)) < 0)
		return r;
	sd_put put = {.u = &f->u, .npath = f->npath, .size = size, .op = "write"};
	int fd = -1;
	r = sd__blob_commit(c, sd__wpipe_fd(f->wp), sd__wpipe_path(f->wp), hex, size, sd__tree_put,
			    &put, NULL);
	sd__wpipe_free(f->wp, r < 0, &fd);
	f->wp = NULL;
	f->wmode = W_CLEAN;
	if (r < 0) {
		/* the data is gone with the temp file: nothing else to commit */
		close(fd);
		f->dirty = 0;
		return r;
	}
	/* the committed content is the new base (the fd now names the blob,
	 * or the dropped temp file with identical content on dedup) */
	if (f->base_fd >= 0)
		close(f->base_fd);
	f->base_fd = fd;
	f->base_size = size;
	f->size = size;
	f->dirty = 0;
	if (put.node_id)
		f->node = f->node ? f->node : put.node_id;
	return 0;
}

static void release(sd_file *f)
{
	sd__wpipe_free(f->wp, 1, NULL);
	if (f->base_fd >= 0)
		close(f->base_fd);
	open_release(f->c, f->node, f->omode, (f->flags & SD_O_WRITE) != 0);
	free(f);
}

int sd__file_close(sd_file *f)
{
	if (!f)
		return 0;
	int r = sd__file_sync(f);
	release(f);
	return r;
}

void sd__file_abandon(sd_file *f)
{
	if (f)
		release(f);
}
