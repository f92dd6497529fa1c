/*
 * store/remote.c - what the engine sees of a remote back end (S3, RADOS):
 * the module's store wrapped with the stripe lock, a local read cache and
 * read-ahead readers.
 *
 * Design notes
 * ------------
 * Locks. The stripe locks are the local store's OFD byte-range locks on
 * blob_dir/.lock (store/local.c), whatever back end is open: storagectl
 * beside the daemon takes the same file locks, so a commit in one process
 * and the cleaner or fsck --repair in the other exclude each other (I3),
 * also while `storagectl migrate-blobs` runs with the other back end open.
 * They do not reach other hosts: one data directory per bucket prefix or
 * pool namespace (docs/backends.md).
 *
 * Contents left in blob_dir (before or during a migration to this back
 * end) are still found: stat, open, walk and remove look there too, so a
 * switch of blob_store loses nothing while migrate-blobs moves the rest.
 *
 * The cache: cache_dir/ab/<hex>, whole contents only, each verified
 * (SHA-256 = its name) before it is published by rename; an index in
 * memory (hash + LRU list, rebuilt from the files and their mtimes at
 * open) keeps the total under cache_size, evicting the least recently
 * read. A hit is a local file: its reader has an fd, so front ends use
 * sendfile as on the local store. Only the daemon (fill = 1) adds and
 * evicts; storagectl reads hits and removes what the cleaner removes.
 * The cache is never the only copy of anything: losing it loses nothing.
 *
 * Readers of a content not in the cache:
 *   open: stat + open of the module's reader; a fill thread starts copying
 *         the content in CHUNK pieces, in order, into a spool file:
 *         cache_dir/tmp/<pid>-<seq> when it may be cached (fill = 1 and
 *         size <= cache_size / 4), else an unnamed file in tmp_dir;
 *   pread(off, len): bytes the fill already has come from the spool; a
 *         read just ahead of it waits for it; a read further ahead than
 *         AHEAD (a seek: an HTTP range, an SFTP read at the end) goes to
 *         the module directly with a second reader;
 *   fill done: the hash checked; a cacheable spool is renamed into the
 *         cache (fdatasync first when durable). A wrong hash is logged and
 *         later reads of this reader fail with -SD_ECORRUPT;
 *   close: the fill is stopped and joined, an unpublished spool removed.
 * Invariant R1: 0 <= have <= size, and bytes [0, have) of the spool are
 * the content's; have only grows (under rd->m).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "storaged.h"
#include "store.h"
#include "sys.h"
#include "util.h"

#define CHUNK (8u << 20)  /* one module read of the fill */
#define AHEAD (32u << 20) /* reads further ahead of the fill go direct */
#define NBUCKETS 65536    /* the index: by the first four hex digits */

typedef struct centry {
	char hex[65];
	uint64_t size;
	struct centry *prev, *next; /* LRU list, head = most recently read */
	struct centry *hnext;
} centry;

typedef struct remote {
	sd_store base;
	sd_store *in;  /* the module's store */
	sd_store *loc; /* blob_dir: locks and leftovers */
	void (*release)(void *);
	void *rarg;
	char *cache_dir, *spool_dir, *tmp_dir;
	uint64_t cap;
	int fill, durable;
	pthread_mutex_t m; /* the index */
	centry **ht;
	centry *head, *tail;
	uint64_t used;
	atomic_uint_fast64_t seq;
} remote;

enum { RD_LOCAL = 1, RD_REMOTE };

struct sd_blobrd {
	remote *w;
	int kind;
	sd_blobrd *lrd; /* RD_LOCAL: a cache file's or blob_dir's reader */
	/* RD_REMOTE */
	int fd;            /* the spool */
	sd_blobrd *in;     /* the fill's module reader */
	sd_blobrd *direct; /* reads far ahead, opened when first needed */
	uint64_t size;
	char hex[65];
	int cacheable;
	char spool[PATH_MAX]; /* "" when unnamed */
	pthread_t th;
	int started;
	pthread_mutex_t m;
	pthread_cond_t cv;
	uint64_t have; /* R1 */
	int err, stop, done;
};

/* ------------------------------------------------------------ the index */

static unsigned bucket(const char *hex)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		char ch = hex[i];
		v = v << 4 | (unsigned)(ch >= 'a' ? ch - 'a' + 10 : ch - '0');
	}
	return v & (NBUCKETS - 1);
}

static centry *ix_find(remote *w, const char *hex)
{
	for (centry *e = w->ht[bucket(hex)]; e; e = e->hnext)
		if (strcmp(e->hex, hex) == 0)
			return e;
	return NULL;
}

static void lru_unlink(remote *w, centry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		w->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		w->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_front(remote *w, centry *e)
{
	e->next = w->head;
	e->prev = NULL;
	if (w->head)
		w->head->prev = e;
	w->head = e;
	if (!w->tail)
		w->tail = e;
}

static void ix_drop(remote *w, centry *e)
{
	centry **pp = &w->ht[bucket(e->hex)];
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(w, e);
	w->used -= e->size;
	free(e);
}

static void cache_path(const remote *w, const char *hex, char out[PATH_MAX])
{
	snprintf(out, PATH_MAX, "%s/%.2s/%s", w->cache_dir, hex, hex);
}

/* Evict from the tail until used <= cap, sparing keep. m held. */
static void evict(remote *w, const centry *keep)
{
	while (w->used > w->cap && w->tail && w->tail != keep) {
		centry *e = w->tail;
		char p[PATH_MAX];
		cache_path(w, e->hex, p);
		unlink(p);
		sd_log(SD_LOG_DEBUG, "cache", "event=evict sha256=%s size=%llu", e->hex,
		       (unsigned long long)e->size);
		ix_drop(w, e);
	}
}

/* An index entry for a file now in the cache (most recently read). */
static void ix_add(remote *w, const char *hex, uint64_t size)
{
	pthread_mutex_lock(&w->m);
	centry *e = ix_find(w, hex);
	if (e) {
		lru_unlink(w, e);
	} else {
		e = sd_xcalloc(1, sizeof *e);
		snprintf(e->hex, sizeof e->hex, "%s", hex);
		e->size = size;
		unsigned b = bucket(hex);
		e->hnext = w->ht[b];
		w->ht[b] = e;
		w->used += size;
	}
	lru_front(w, e);
	evict(w, e);
	pthread_mutex_unlock(&w->m);
}

static void ix_forget(remote *w, const char *hex)
{
	pthread_mutex_lock(&w->m);
	centry *e = ix_find(w, hex);
	if (e)
		ix_drop(w, e);
	pthread_mutex_unlock(&w->m);
}

typedef struct scanned {
	char hex[65];
	uint64_t size;
	int64_t mtime;
} scanned;

static int by_mtime(const void *a, const void *b)
{
	const scanned *x = a, *y = b;
	return x->mtime < y->mtime ? -1 : x->mtime > y->mtime;
}

/* Rebuild the index from the files (oldest mtime = least recently read),
 * drop spools a crash left, evict down to the cap. */
static void ix_load(remote *w)
{
	DIR *d = opendir(w->spool_dir);
	struct dirent *e;
	if (d) {
		while ((e = readdir(d))) {
			char p[PATH_MAX];
			if (e->d_name[0] == '.' ||
			    snprintf(p, sizeof p, "%s/%s", w->spool_dir, e->d_name) >= (int)sizeof p)
				continue;
			/* our own process's are in use; others' are leftovers (pid reuse
			 * aside, they are removed at the next start) */
			if (atol(e->d_name) != (long)getpid())
				unlink(p);
		}
		closedir(d);
	}
	scanned *v = NULL;
	size_t n = 0, cap = 0;
	for (int i = 0; i < 256; i++) {
		char sd[PATH_MAX];
		snprintf(sd, sizeof sd, "%s/%02x", w->cache_dir, i);
		d = opendir(sd);
		if (!d)
			continue;
		while ((e = readdir(d))) {
			char p[PATH_MAX];
			struct stat sb;
			if (!sd_is_sha256_hex(e->d_name) ||
			    snprintf(p, sizeof p, "%s/%s", sd, e->d_name) >= (int)sizeof p ||
			    stat(p, &sb) != 0 || !S_ISREG(sb.st_mode))
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 256;
				v = sd_xrealloc(v, cap * sizeof *v);
			}
			memcpy(v[n].hex, e->d_name, 64);
			v[n].hex[64] = '\0';
			v[n].size = (uint64_t)sb.st_size;
			v[n].mtime = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
			n++;
		}
		closedir(d);
	}
	if (n)
		qsort(v, n, sizeof *v, by_mtime);
	for (size_t i = 0; i < n; i++)
		ix_add(w, v[i].hex, v[i].size);
	free(v);
	sd_log(SD_LOG_INFO, "cache", "event=cache_loaded dir=\"%s\" files=%zu bytes=%llu cap=%llu",
	       w->cache_dir, n, (unsigned long long)w->used, (unsigned long long)w->cap);
}

/* ------------------------------------------------------------ readers */

static void *fill_main(void *arg);

static sd_blobrd *local_reader(remote *w, sd_blobrd *lrd)
{
	sd_blobrd *r = sd_xcalloc(1, sizeof *r);
	r->w = w;
	r->kind = RD_LOCAL;
	r->lrd = lrd;
	r->fd = -1;
	return r;
}

/* A cache hit: a reader of the cache file, its use recorded. */
static int open_hit(remote *w, const char *hex, sd_blobrd **out)
{
	char p[PATH_MAX];
	cache_path(w, hex, p);
	int fd = sd_sys_open(p, O_RDONLY, 0);
	if (fd < 0) {
		if (fd == -ENOENT && w->fill)
			ix_forget(w, hex); /* removed by another process */
		return fd;
	}
	struct stat sb;
	if (fstat(fd, &sb) != 0) {
		close(fd);
		return -EIO;
	}
	if (w->fill) {
		futimens(fd, NULL); /* the LRU order survives a restart */
		ix_add(w, hex, (uint64_t)sb.st_size);
	}
	/* the local store's reader type is private to it: read the file
	 * ourselves */
	sd_blobrd *r = local_reader(w, NULL);
	r->fd = fd;
	r->size = (uint64_t)sb.st_size;
	*out = r;
	return 0;
}

static int spool_open(remote *w, sd_blobrd *r)
{
	if (r->cacheable) {
		snprintf(r->spool, sizeof r->spool, "%s/%ld-%llu", w->spool_dir, (long)getpid(),
			 (unsigned long long)atomic_fetch_add(&w->seq, 1));
		r->fd = sd_sys_open(r->spool, O_RDWR | O_CREAT | O_EXCL, 0640);
		if (r->fd >= 0)
			return 0;
		r->spool[0] = '\0';
		r->cacheable = 0;
	}
	r->fd = sd_sys_open(w->tmp_dir, O_RDWR | O_TMPFILE, 0600);
	if (r->fd >= 0)
		return 0;
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s/%ld-spool-%llu.tmp", w->tmp_dir, (long)getpid(),
		 (unsigned long long)atomic_fetch_add(&w->seq, 1));
	r->fd = sd_sys_open(p, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (r->fd >= 0)
		unlink(p);
	return r->fd < 0 ? r->fd : 0;
}

static int open_remote(remote *w, const char *hex, sd_blobrd **out)
{
	uint64_t size = 0;
	int rc = w->in->ops->stat(w->in, hex, &size);
	if (rc < 0)
		return rc;
	sd_blobrd *in;
	if ((rc = w->in->ops->open(w->in, hex, &in)) < 0)
		return rc;
	sd_blobrd *r = sd_xcalloc(1, sizeof *r);
	r->w = w;
	r->kind = RD_REMOTE;
	r->in = in;
	r->size = size;
	r->fd = -1;
	snprintf(r->hex, sizeof r->hex, "%s", hex);
	r->cacheable = w->fill && w->cap > 0 && size <= w->cap / 4;
	pthread_mutex_init(&r->m, NULL);
	pthread_cond_init(&r->cv, NULL);
	if ((rc = spool_open(w, r)) < 0)
		goto fail;
	if (size == 0) {
		r->done = 1;
	} else {
		int e = pthread_create(&r->th, NULL, fill_main, r);
		if (e) {
			rc = -e;
			goto fail;
		}
		r->started = 1;
	}
	*out = r;
	return 0;
fail:
	if (r->fd >= 0)
		close(r->fd);
	if (r->spool[0])
		unlink(r->spool);
	w->in->ops->close(in);
	pthread_mutex_destroy(&r->m);
	pthread_cond_destroy(&r->cv);
	free(r);
	return rc;
}

/* Rename a complete, verified spool into the cache. */
static void publish(remote *w, sd_blobrd *r)
{
	if (w->durable && sd_sys_fdatasync(r->fd) < 0)
		return;
	char p[PATH_MAX], d[PATH_MAX];
	cache_path(w, r->hex, p);
	int rc = sd_sys_rename(r->spool, p);
	if (rc == -ENOENT) {
		snprintf(d, sizeof d, "%s/%.2s", w->cache_dir, r->hex);
		mkdir(d, 0750);
		rc = sd_sys_rename(r->spool, p);
	}
	if (rc < 0) {
		sd_log(SD_LOG_WARN, "cache", "event=publish_failed sha256=%s err=\"%s\"", r->hex,
		       strerror(-rc));
		return;
	}
	r->spool[0] = '\0';
	ix_add(w, r->hex, r->size);
}

static void *fill_main(void *arg)
{
	sd_blobrd *r = arg;
	remote *w = r->w;
	char *buf = sd_xmalloc(CHUNK);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	int err = 0;
	uint64_t off = 0;
	for (;;) {
		pthread_mutex_lock(&r->m);
		int stop = r->stop;
		pthread_mutex_unlock(&r->m);
		if (stop || off >= r->size)
			break;
		size_t want = r->size - off < CHUNK ? (size_t)(r->size - off) : CHUNK;
		ssize_t n = w->in->ops->pread(r->in, buf, want, off);
		if (n <= 0) {
			err = n < 0 ? (int)n : -SD_ECORRUPT; /* shorter than its size */
			break;
		}
		if ((err = sd_sys_pwrite(r->fd, buf, (size_t)n, off)) < 0)
			break;
		EVP_DigestUpdate(md, buf, (size_t)n);
		off += (uint64_t)n;
		pthread_mutex_lock(&r->m);
		r->have = off;
		pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->m);
	}
	if (!err && off == r->size) {
		unsigned char dg[32];
		unsigned dl = 0;
		char got[65];
		EVP_DigestFinal_ex(md, dg, &dl);
		sd_hex(dg, 32, got);
		if (strcmp(got, r->hex) != 0) {
			sd_log(SD_LOG_ERROR, "cache", "event=remote_damaged sha256=%s got=%s", r->hex, got);
			err = -SD_ECORRUPT;
		} else if (r->cacheable) {
			publish(w, r);
		}
	} else if (err && err != -ECANCELED) {
		sd_log(SD_LOG_ERROR, "cache", "event=fill_failed sha256=%s at=%llu err=\"%s\"", r->hex,
		       (unsigned long long)off, err <= -SD_EBASE ? "damaged" : strerror(-err));
	}
	EVP_MD_CTX_free(md);
	free(buf);
	pthread_mutex_lock(&r->m);
	r->err = err;
	r->done = 1;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->m);
	return NULL;
}

static ssize_t w_pread(sd_blobrd *r, void *buf, size_t len, uint64_t off)
{
	if (r->kind == RD_LOCAL)
		return r->lrd ? r->w->loc->ops->pread(r->lrd, buf, len, off)
			      : sd_sys_pread(r->fd, buf, len, off);
	if (off >= r->size || len == 0)
		return 0;
	uint64_t end = r->size - off < len ? r->size : off + len;
	pthread_mutex_lock(&r->m);
	while (!r->done && r->have < end && off < r->have + AHEAD)
		pthread_cond_wait(&r->cv, &r->m);
	int err = r->err;
	uint64_t have = r->have;
	pthread_mutex_unlock(&r->m);
	if (have >= end && err != -SD_ECORRUPT)
		return sd_sys_pread(r->fd, buf, (size_t)(end - off), off);
	if (err == -SD_ECORRUPT)
		return err;
	/* far ahead of the fill, or the fill failed: ask the store */
	if (!r->direct) {
		int rc = r->w->in->ops->open(r->w->in, r->hex, &r->direct);
		if (rc < 0)
			return rc;
	}
	return r->w->in->ops->pread(r->direct, buf, (size_t)(end - off), off);
}

static int w_fd(sd_blobrd *r, int *fd, uint64_t *base)
{
	if (r->kind != RD_LOCAL)
		return -ENOTSUP;
	if (r->lrd)
		return r->w->loc->ops->fd(r->lrd, fd, base);
	*fd = r->fd;
	*base = 0;
	return 0;
}

static void w_close(sd_blobrd *r)
{
	if (!r)
		return;
	remote *w = r->w;
	if (r->kind == RD_LOCAL) {
		if (r->lrd)
			w->loc->ops->close(r->lrd);
		else if (r->fd >= 0)
			close(r->fd);
		free(r);
		return;
	}
	if (r->started) {
		pthread_mutex_lock(&r->m);
		r->stop = 1;
		pthread_mutex_unlock(&r->m);
		pthread_join(r->th, NULL);
	}
	close(r->fd);
	if (r->spool[0])
		unlink(r->spool);
	w->in->ops->close(r->in);
	if (r->direct)
		w->in->ops->close(r->direct);
	pthread_mutex_destroy(&r->m);
	pthread_cond_destroy(&r->cv);
	free(r);
}

static int w_open(sd_store *s, const char *hex, sd_blobrd **out)
{
	remote *w = (remote *)s;
	if (w->cap > 0 || !w->fill) {
		int rc = open_hit(w, hex, out);
		if (rc == 0)
			return 0;
	}
	int rc = open_remote(w, hex, out);
	if (rc != -ENOENT)
		return rc;
	sd_blobrd *lrd;
	int lr = w->loc->ops->open(w->loc, hex, &lrd);
	if (lr < 0)
		return rc;
	*out = local_reader(w, lrd);
	return 0;
}

/* ------------------------------------------------------------ the rest */

static int w_stat(sd_store *s, const char *hex, uint64_t *size)
{
	remote *w = (remote *)s;
	int rc = w->in->ops->stat(w->in, hex, size);
	if (rc == -ENOENT && w->loc->ops->stat(w->loc, hex, size) == 0)
		return 0;
	return rc;
}

static int w_place(sd_store *s, int fd, const char *tmppath, const char *hex, uint64_t size)
{
	remote *w = (remote *)s;
	int rc = w_stat(s, hex, NULL);
	if (rc == 0)
		return 1;
	if (rc != -ENOENT)
		return rc;
	rc = w->in->ops->place(w->in, fd, tmppath, hex, size);
	if (rc == 0)
		sd_sys_unlink(tmppath); /* consumed */
	return rc;
}

static int w_put(sd_store *s, const void *buf, size_t len, const char *hex)
{
	remote *w = (remote *)s;
	int rc = w_stat(s, hex, NULL);
	if (rc == 0)
		return 1;
	if (rc != -ENOENT)
		return rc;
	return w->in->ops->put(w->in, buf, len, hex);
}

static int w_remove(sd_store *s, const char *hex)
{
	remote *w = (remote *)s;
	char p[PATH_MAX];
	cache_path(w, hex, p);
	if (unlink(p) == 0 && w->fill)
		ix_forget(w, hex);
	int a = w->in->ops->remove(w->in, hex);
	int b = w->loc->ops->remove(w->loc, hex);
	if (a == 0 || b == 0)
		return 0;
	return a != -ENOENT ? a : -ENOENT;
}

static int w_discard(sd_store *s, const char *name)
{
	remote *w = (remote *)s;
	/* walk() names: blob_dir paths are absolute, the module's are not */
	if (name[0] == '/')
		return w->loc->ops->discard(w->loc, name);
	return w->in->ops->discard(w->in, name);
}

static int w_walk(sd_store *s, sd_store_walk_cb cb, void *arg)
{
	remote *w = (remote *)s;
	int rc = w->in->ops->walk(w->in, cb, arg);
	if (rc < 0)
		return rc;
	return w->loc->ops->walk(w->loc, cb, arg);
}

static int w_lock(sd_store *s, const char *hex)
{
	remote *w = (remote *)s;
	return w->loc->ops->lock(w->loc, hex);
}

static void w_unlock(sd_store *s, int token)
{
	remote *w = (remote *)s;
	w->loc->ops->unlock(w->loc, token);
}

static int w_space(sd_store *s, int *pct, uint64_t *total, uint64_t *avail, uint64_t *bfree)
{
	remote *w = (remote *)s;
	int rc = sd_sys_disk_usage(w->cache_dir, pct, total, avail, bfree);
	if (rc < 0)
		return rc;
	uint64_t t, a, f;
	if (w->in->ops->space && w->in->ops->space(w->in, NULL, &t, &a, &f) == 0) {
		if (total)
			*total = t;
		if (avail)
			*avail = a;
		if (bfree)
			*bfree = f;
	}
	return 0;
}

static int w_info(sd_store *s, const char *hex, uint64_t *size, char sha[65])
{
	remote *w = (remote *)s;
	if (!w->in->ops->info)
		return -ENOTSUP;
	int rc = w->in->ops->info(w->in, hex, size, sha);
	if (rc == -ENOENT && w->loc->ops->stat(w->loc, hex, size) == 0)
		return -ENOTSUP; /* a leftover in blob_dir: no checksum kept */
	return rc;
}

static void w_destroy(sd_store *s)
{
	remote *w = (remote *)s;
	if (!w)
		return;
	if (w->in)
		w->in->ops->destroy(w->in);
	if (w->release)
		w->release(w->rarg);
	if (w->loc)
		w->loc->ops->destroy(w->loc);
	if (w->ht) {
		while (w->head)
			ix_drop(w, w->head);
		free(w->ht);
	}
	pthread_mutex_destroy(&w->m);
	free(w->cache_dir);
	free(w->spool_dir);
	free(w->tmp_dir);
	free(w);
}

static const sd_store_ops remote_ops = {
	.name = "remote",
	.place = w_place,
	.put = w_put,
	.stat = w_stat,
	.open = w_open,
	.pread = w_pread,
	.fd = w_fd,
	.close = w_close,
	.remove = w_remove,
	.discard = w_discard,
	.walk = w_walk,
	.lock = w_lock,
	.unlock = w_unlock,
	.space = w_space,
	.destroy = w_destroy,
	.info = w_info,
	.flags = SD_STORE_REMOTE,
};

sd_store *sd_store_remote_wrap(sd_store *inner, const sd_remote_opts *o,
			       void (*release)(void *arg), void *arg, char *err, size_t errlen)
{
	remote *w = sd_xcalloc(1, sizeof *w);
	w->base.ops = &remote_ops;
	w->in = inner;
	w->release = release;
	w->rarg = arg;
	w->cache_dir = sd_xstrdup(o->cache_dir);
	w->spool_dir = sd_xasprintf("%s/tmp", o->cache_dir);
	w->tmp_dir = sd_xstrdup(o->tmp_dir);
	w->cap = o->cache_size;
	w->fill = o->fill;
	w->durable = o->durable;
	pthread_mutex_init(&w->m, NULL);
	w->ht = sd_xcalloc(NBUCKETS, sizeof *w->ht);
	w->loc = sd_store_local_open(o->blob_dir, o->durable, err, errlen);
	if (!w->loc) {
		w_destroy(&w->base);
		return NULL;
	}
	int rc = sd_sys_mkdirs(w->spool_dir);
	if (rc < 0) {
		snprintf(err, errlen, "cache_dir: cannot create %s: %s", w->spool_dir, strerror(-rc));
		w_destroy(&w->base);
		return NULL;
	}
	if (w->fill)
		ix_load(w);
	return &w->base;
}
