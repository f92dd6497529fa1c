/*
 * hib.c - hibernate and restore (Cage): the whole client state in a local
 * file, picked up by a later process.
 *
 * Dump format (little-endian host order; a dump is read back on the same
 * kind of machine):
 *   "SDCHIB01"  u32 page_size  u32 nfiles  u32 nfds  u64 npages
 *   nfiles x file:  str server_name  str path  char base[65]  char hid[72]
 *                   u64 size  u64 rsize  u32 mode  i64 mtime  u32 share
 *                   u8 hwrite  u8 hdirty  u8 pending  u8 lost
 *   nfds x fd:      u32 fd  u32 file_index  u32 flags  u64 pos
 *   npages x page:  u32 file_index  u64 no  u32 freq  u8 valid  u32 dlo
 *                   u32 dhi  page_size bytes
 *   char sha256[32] of everything before it
 *   (str = u32 length + bytes)
 *
 * Hibernate commits what the server handles already hold (written-back
 * pages) and releases the handles; the dirty pages stay dirty in the dump,
 * each file tagged with the version they are based on (f->base). Restore
 * reopens each file that had descriptors and compares the server's version
 * with the base: equal, the file carries on (and its first commit checks
 * the base once more, right before committing); different, the file is a
 * conflict and nothing of it is written until sdc_resolve.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "internal.h"

#define MAGIC "SDCHIB01"

typedef struct wbuf {
	FILE *fp;
	EVP_MD_CTX *md;
	int err;
} wbuf;

static void w(wbuf *b, const void *p, size_t n)
{
	if (b->err)
		return;
	if (fwrite(p, 1, n, b->fp) != n)
		b->err = -EIO;
	EVP_DigestUpdate(b->md, p, n);
}

static void w32(wbuf *b, uint32_t v) { w(b, &v, 4); }
static void w64(wbuf *b, uint64_t v) { w(b, &v, 8); }
static void w8(wbuf *b, uint8_t v) { w(b, &v, 1); }
static void wstr(wbuf *b, const char *s)
{
	uint32_t n = (uint32_t)strlen(s);
	w32(b, n);
	w(b, s, n);
}

/* Commit what f's handle holds and release it (f->lock held). The handle
 * id stays when the server cannot be reached (restore tries it again). */
static void hib_release(sdc_file *f, int *lost)
{
	*lost = 0;
	if (!f->hid[0])
		return;
	sdc_rinfo ri;
	int rc = sdc__r_sync(f, 1, NULL, &ri);
	if (rc == 0) {
		snprintf(f->base, sizeof f->base, "%s", ri.sha);
		f->rsize = ri.size;
		f->hdirty = 0;
		f->pending = 0;
		f->hid[0] = '\0';
	} else if (rc == -ESTALE) {
		f->hid[0] = '\0';
		*lost = f->hdirty || f->pending;
	}
	/* other errors: keep hid (the server may still hold it later) */
}

int sdc_hibernate(sdc_client *c, const char *file)
{
	/* 1. release server handles, file by file */
	pthread_mutex_lock(&c->lock);
	int nf = 0;
	for (sdc_file *f = c->files; f; f = f->next)
		nf++;
	sdc_file **fv = sdc__xmalloc((size_t)(nf ? nf : 1) * sizeof *fv);
	int *lost = sdc__xcalloc((size_t)(nf ? nf : 1), sizeof *lost);
	nf = 0;
	for (sdc_file *f = c->files; f; f = f->next) {
		f->refs++;
		fv[nf++] = f;
	}
	pthread_mutex_unlock(&c->lock);
	for (int i = 0; i < nf; i++) {
		pthread_mutex_lock(&fv[i]->lock);
		if (fv[i]->opens > 0 && fv[i]->state == FS_OK)
			hib_release(fv[i], &lost[i]);
		else if (fv[i]->state == FS_BROKEN)
			lost[i] = 1;
		pthread_mutex_unlock(&fv[i]->lock);
	}

	/* 2. the dump */
	sdc_buf tmp = {0};
	sdc__buf_printf(&tmp, "%s.tmp%d", file, (int)getpid());
	int rc = 0;
	int fd = open(tmp.p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FILE *fp = fd >= 0 ? fdopen(fd, "wb") : NULL;
	if (!fp) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		goto out;
	}
	wbuf b = {fp, EVP_MD_CTX_new(), 0};
	EVP_DigestInit_ex(b.md, EVP_sha256(), NULL);
	pthread_mutex_lock(&c->lock);
	uint32_t nfds = 0;
	for (int i = 0; i < c->nfds; i++)
		nfds += c->fds[i].f != NULL;
	w(&b, MAGIC, 8);
	w32(&b, (uint32_t)c->psize);
	w32(&b, (uint32_t)nf);
	w32(&b, nfds);
	w64(&b, (uint64_t)c->used);
	for (int i = 0; i < nf; i++) {
		sdc_file *f = fv[i];
		wstr(&b, c->srv[f->srv].name);
		wstr(&b, f->path);
		w(&b, f->base, sizeof f->base);
		w(&b, f->hid, sizeof f->hid);
		w64(&b, f->size);
		w64(&b, f->rsize);
		w32(&b, f->mode);
		w64(&b, (uint64_t)f->mtime);
		w32(&b, f->share);
		w8(&b, (uint8_t)f->hwrite);
		w8(&b, (uint8_t)f->hdirty);
		w8(&b, (uint8_t)f->pending);
		w8(&b, (uint8_t)lost[i]);
	}
	for (int i = 0; i < c->nfds; i++) {
		if (!c->fds[i].f)
			continue;
		int idx = 0;
		while (idx < nf && fv[idx] != c->fds[i].f)
			idx++;
		w32(&b, (uint32_t)i);
		w32(&b, (uint32_t)idx);
		w32(&b, (uint32_t)c->fds[i].flags);
		w64(&b, c->fds[i].pos);
	}
	for (size_t i = 0; i < c->maxpages; i++) {
		sdc_page *p = &c->pagev[i];
		if (!p->f)
			continue;
		int idx = 0;
		while (idx < nf && fv[idx] != p->f)
			idx++;
		w32(&b, (uint32_t)idx);
		w64(&b, p->no);
		w32(&b, p->freq);
		w8(&b, (uint8_t)p->valid);
		w32(&b, p->dlo);
		w32(&b, p->dhi);
		w(&b, p->data, c->psize);
	}
	pthread_mutex_unlock(&c->lock);
	unsigned char dg[32];
	unsigned dl = 0;
	EVP_DigestFinal_ex(b.md, dg, &dl);
	EVP_MD_CTX_free(b.md);
	if (!b.err && fwrite(dg, 1, 32, fp) != 32)
		b.err = -EIO;
	if (!b.err && (fflush(fp) != 0 || fsync(fileno(fp)) != 0))
		b.err = -errno;
	if (fclose(fp) != 0 && !b.err)
		b.err = -EIO;
	rc = b.err;
	if (rc == 0 && rename(tmp.p, file) != 0)
		rc = -errno;
	if (rc < 0) {
		unlink(tmp.p);
		goto out;
	}
	{
		/* the directory entry too */
		sdc_buf dir = {0};
		sdc__buf_puts(&dir, file);
		char *sl = strrchr(dir.p, '/');
		if (sl)
			*(sl == dir.p ? sl + 1 : sl) = '\0';
		int dfd = open(sl ? dir.p : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
		sdc__buf_free(&dir);
	}
out:
	sdc__buf_free(&tmp);
	for (int i = 0; i < nf; i++)
		sdc__file_release(c, fv[i]);
	free(fv);
	free(lost);
	if (rc < 0)
		return rc;
	/* 3. free without closing anything (the dump holds it all) */
	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < c->nfds; i++)
		c->fds[i].f = NULL;
	pthread_mutex_unlock(&c->lock);
	sdc_client_free(c);
	return 0;
}

/* ------------------------------------------------------------ restore */

typedef struct rbuf {
	const unsigned char *p;
	size_t len, at;
	int err;
} rbuf;

static void r(rbuf *b, void *out, size_t n)
{
	if (b->err || b->len - b->at < n) {
		b->err = -EINVAL;
		memset(out, 0, n);
		return;
	}
	memcpy(out, b->p + b->at, n);
	b->at += n;
}
static uint32_t r32(rbuf *b) { uint32_t v; r(b, &v, 4); return v; }
static uint64_t r64(rbuf *b) { uint64_t v; r(b, &v, 8); return v; }
static uint8_t r8(rbuf *b) { uint8_t v; r(b, &v, 1); return v; }
static char *rstr(rbuf *b)
{
	uint32_t n = r32(b);
	if (b->err || n > SDC_PATH_MAX || b->len - b->at < n) {
		b->err = -EINVAL;
		return sdc__xstrdup("");
	}
	char *s = sdc__xmalloc(n + 1);
	memcpy(s, b->p + b->at, n);
	s[n] = '\0';
	b->at += n;
	return s;
}

/* Reopen f after a restore or for sdc_resolve and check its version
 * (f->lock held). Sets f->state/f->conflict; returns 0 or the error. */
static int reattach(sdc_file *f, int keep_hid)
{
	sdc_client *c = f->c;
	if (keep_hid && f->hid[0]) {
		sdc_rinfo ri;
		int rc = sdc__r_hstat(c, f->srv, f->hid, &ri);
		if (rc == 0) {
			f->rsize = ri.size;
			f->state = FS_OK;
			f->check_base = 1;
			return 0;
		}
		f->hid[0] = '\0';
		if (rc != -ESTALE) {
			f->state = FS_CONFLICT;
			f->conflict = SDC_CONFLICT_BUSY;
			return rc;
		}
		/* the handle with written-back data is gone */
		f->state = FS_CONFLICT;
		f->conflict = SDC_CONFLICT_LOST;
		f->cur[0] = '\0';
		f->hdirty = 0;
		return -SDC_ECONFLICT;
	}
	sdc_rinfo ri;
	int rc = sdc__r_open(c, f->srv, f->path, f->hwrite ? O_RDWR : O_RDONLY, f->share, f->mode,
			     &ri);
	if (rc < 0) {
		f->state = FS_CONFLICT;
		f->conflict = rc == -ENOENT ? SDC_CONFLICT_GONE : SDC_CONFLICT_BUSY;
		f->cur[0] = '\0';
		return rc;
	}
	snprintf(f->hid, sizeof f->hid, "%s", ri.hid);
	f->rsize = ri.size;
	snprintf(f->cur, sizeof f->cur, "%s", ri.sha);
	if (strcmp(ri.sha, f->base) == 0) {
		f->state = FS_OK;
		f->check_base = f->ndirty > 0;
		if (f->size < f->rsize && f->ndirty == 0)
			f->size = f->rsize;
		return 0;
	}
	if (f->ndirty > 0) {
		f->state = FS_CONFLICT;
		f->conflict = SDC_CONFLICT_CHANGED;
		return -SDC_ECONFLICT;
	}
	/* nothing of ours at stake: the new version, no stale pages */
	sdc__file_forget_pages(f);
	snprintf(f->base, sizeof f->base, "%s", ri.sha);
	f->size = ri.size;
	f->state = FS_OK;
	return 0;
}

sdc_client *sdc_client_restore(const sdc_options *o, const char *file, int *err)
{
	int e = 0;
	unsigned char *data = NULL;
	size_t len = 0;
	FILE *fp = fopen(file, "rb");
	if (!fp) {
		e = -errno;
		goto fail;
	}
	{
		sdc_buf all = {0};
		char tmp[1 << 16];
		size_t k;
		while ((k = fread(tmp, 1, sizeof tmp, fp)) > 0)
			sdc__buf_add(&all, tmp, k);
		int bad = ferror(fp);
		fclose(fp);
		if (bad) {
			sdc__buf_free(&all);
			e = -EIO;
			goto fail;
		}
		data = (unsigned char *)all.p;
		len = all.len;
	}
	if (len < 8 + 32 || memcmp(data, MAGIC, 8) != 0) {
		e = -EINVAL;
		goto fail;
	}
	{
		unsigned char dg[32];
		unsigned dl = 0;
		EVP_Digest(data, len - 32, dg, &dl, EVP_sha256(), NULL);
		if (memcmp(dg, data + len - 32, 32) != 0) {
			e = -EINVAL;
			goto fail;
		}
	}
	rbuf b = {data, len - 32, 8, 0};
	uint32_t psize = r32(&b);
	uint32_t nf = r32(&b);
	uint32_t nfds = r32(&b);
	uint64_t npages = r64(&b);
	sdc_options oo = *o;
	if (oo.page_size && oo.page_size != psize) {
		e = -EINVAL;
		goto fail;
	}
	oo.page_size = psize;
	if (b.err || nf > (1u << 24) || nfds > SDC_MAX_FDS) {
		e = -EINVAL;
		goto fail;
	}
	sdc_client *c = sdc_client_new(&oo, &e);
	if (!c)
		goto fail;
	sdc_file **fv = sdc__xcalloc(nf ? nf : 1, sizeof *fv);
	uint8_t *lostv = sdc__xcalloc(nf ? nf : 1, 1);
	for (uint32_t i = 0; i < nf && !b.err; i++) {
		char *sname = rstr(&b);
		char *path = rstr(&b);
		int srv = -1;
		for (int k = 0; k < c->nsrv; k++)
			if (strcmp(c->srv[k].name, sname) == 0)
				srv = k;
		free(sname);
		if (srv < 0 || b.err) {
			free(path);
			b.err = -EINVAL;
			break;
		}
		pthread_mutex_lock(&c->lock);
		sdc_file *f = sdc__file_get(c, srv, path, 1);
		pthread_mutex_unlock(&c->lock);
		free(path);
		fv[i] = f;
		r(&b, f->base, sizeof f->base);
		r(&b, f->hid, sizeof f->hid);
		f->base[sizeof f->base - 1] = '\0';
		f->hid[sizeof f->hid - 1] = '\0';
		f->size = r64(&b);
		f->rsize = r64(&b);
		f->mode = r32(&b);
		f->mtime = (int64_t)r64(&b);
		f->share = r32(&b);
		f->hwrite = r8(&b);
		f->hdirty = r8(&b);
		f->pending = r8(&b);
		lostv[i] = r8(&b);
	}
	for (uint32_t i = 0; i < nfds && !b.err; i++) {
		uint32_t fd = r32(&b), idx = r32(&b), flags = r32(&b);
		uint64_t pos = r64(&b);
		if (b.err || idx >= nf) {
			b.err = -EINVAL;
			break;
		}
		pthread_mutex_lock(&c->lock);
		int rc = sdc__fd_install(c, fv[idx], (int)fd, (int)flags);
		if (rc >= 0)
			c->fds[fd].pos = pos;
		pthread_mutex_unlock(&c->lock);
		if (rc < 0)
			b.err = -EINVAL;
	}
	/* pages: dirty ones always, clean ones while there is room */
	uint64_t ndirty = 0;
	size_t pstart = b.at;
	size_t prec = 4 + 8 + 4 + 1 + 4 + 4 + (size_t)psize;
	if (!b.err && (b.len - b.at) / prec < npages)
		b.err = -EINVAL;
	for (uint64_t i = 0; i < npages && !b.err; i++) {
		const unsigned char *q = data + pstart + i * prec;
		uint32_t dlo, dhi;
		memcpy(&dlo, q + 17, 4);
		memcpy(&dhi, q + 21, 4);
		ndirty += dhi > dlo;
	}
	if (!b.err && ndirty > c->maxpages)
		b.err = -ENOSPC;
	for (int pass = 0; pass < 2 && !b.err; pass++) {
		for (uint64_t i = 0; i < npages; i++) {
			rbuf pb = {data + pstart + i * prec, prec, 0, 0};
			uint32_t idx = r32(&pb);
			uint64_t no = r64(&pb);
			uint32_t freq = r32(&pb);
			uint8_t valid = r8(&pb);
			uint32_t dlo = r32(&pb), dhi = r32(&pb);
			int dirty = dhi > dlo;
			if ((pass == 0) != dirty)
				continue;
			if (idx >= nf || dhi > psize || dlo > dhi) {
				b.err = -EINVAL;
				break;
			}
			pthread_mutex_lock(&c->lock);
			int room = c->used < c->maxpages;
			pthread_mutex_unlock(&c->lock);
			if (!room)
				break;
			int perr;
			sdc_page *p = sdc__page_get(c, fv[idx], no, &perr);
			if (!p) {
				b.err = -ENOMEM;
				break;
			}
			memcpy(p->data, pb.p + pb.at, psize);
			p->hw = (uint32_t)psize;
			p->valid = valid;
			p->dlo = dlo;
			p->dhi = dhi;
			pthread_mutex_lock(&c->lock);
			if (dirty)
				fv[idx]->ndirty++;
			/* keep the access counts: touch up to freq (capped) */
			for (uint32_t k = 1; k < freq && k < 64; k++)
				sdc__page_touch(c, p);
			p->pin--;
			pthread_mutex_unlock(&c->lock);
		}
	}
	if (b.err) {
		e = b.err;
		pthread_mutex_lock(&c->lock);
		for (int i = 0; i < c->nfds; i++)
			c->fds[i].f = NULL;
		for (uint32_t i = 0; i < nf; i++)
			if (fv[i]) {
				fv[i]->opens = 0;
				fv[i]->refs--;
			}
		pthread_mutex_unlock(&c->lock);
		free(fv);
		free(lostv);
		sdc_client_free(c);
		goto fail;
	}
	/* reopen and check every file that had descriptors */
	for (uint32_t i = 0; i < nf; i++) {
		sdc_file *f = fv[i];
		pthread_mutex_lock(&f->lock);
		if (f->opens > 0) {
			if (lostv[i]) {
				f->state = FS_CONFLICT;
				f->conflict = SDC_CONFLICT_LOST;
				f->hid[0] = '\0';
			} else {
				reattach(f, 1);
			}
		} else {
			f->hid[0] = '\0';
		}
		pthread_mutex_unlock(&f->lock);
		pthread_mutex_lock(&c->lock);
		f->refs--;
		sdc__file_unref_maybe_free(c, f);
		pthread_mutex_unlock(&c->lock);
	}
	free(fv);
	free(lostv);
	free(data);
	if (err)
		*err = 0;
	return c;
fail:
	free(data);
	if (err)
		*err = e ? e : -EINVAL;
	return NULL;
}

/* ------------------------------------------------------------ conflicts */

int sdc_conflicts(sdc_client *c, void (*cb)(void *arg, const sdc_conflict *k), void *arg)
{
	int n = 0;
	pthread_mutex_lock(&c->lock);
	for (int fd = 0; fd < c->nfds; fd++) {
		sdc_file *f = c->fds[fd].f;
		if (!f || f->state != FS_CONFLICT)
			continue;
		n++;
		if (!cb)
			continue;
		sdc_conflict k = {0};
		sdc_buf wb = {0};
		sdc__buf_printf(&wb, "%s:%s", c->srv[f->srv].name, f->path);
		k.fd = fd;
		k.where = wb.p;
		k.reason = f->conflict;
		snprintf(k.base, sizeof k.base, "%s", f->base);
		snprintf(k.current, sizeof k.current, "%s", f->cur);
		for (sdc_page *p = f->pages; p; p = p->fnext)
			k.dirty_bytes += p->dhi - p->dlo;
		cb(arg, &k);
		sdc__buf_free(&wb);
	}
	pthread_mutex_unlock(&c->lock);
	return n;
}

int sdc_open_files(sdc_client *c, void (*cb)(void *arg, int fd, const char *where, int flags),
		   void *arg)
{
	int n = 0;
	pthread_mutex_lock(&c->lock);
	for (int fd = 0; fd < c->nfds; fd++) {
		sdc_file *f = c->fds[fd].f;
		if (!f)
			continue;
		n++;
		if (cb) {
			sdc_buf wb = {0};
			sdc__buf_printf(&wb, "%s:%s", c->srv[f->srv].name, f->path);
			cb(arg, fd, wb.p, c->fds[fd].flags);
			sdc__buf_free(&wb);
		}
	}
	pthread_mutex_unlock(&c->lock);
	return n;
}

int sdc_resolve(sdc_client *c, int fd, int how)
{
	sdc_file *f = NULL;
	pthread_mutex_lock(&c->lock);
	if (fd >= 0 && fd < c->nfds && c->fds[fd].f) {
		f = c->fds[fd].f;
		f->refs++;
	}
	pthread_mutex_unlock(&c->lock);
	if (!f)
		return -EBADF;
	pthread_mutex_lock(&f->lock);
	int rc = 0;
	if (f->state != FS_CONFLICT) {
		rc = 0;
	} else if (how == SDC_RESOLVE_RETRY) {
		rc = reattach(f, 0);
	} else if (how == SDC_RESOLVE_DISCARD || how == SDC_RESOLVE_OVERWRITE) {
		if (f->hid[0])
			sdc__r_abandon(f);
		f->hid[0] = '\0';
		int gone = f->conflict == SDC_CONFLICT_GONE;
		sdc_rinfo ri;
		int flags = f->hwrite ? O_RDWR : O_RDONLY;
		if (how == SDC_RESOLVE_OVERWRITE && gone)
			flags = O_RDWR | O_CREAT;
		rc = sdc__r_open(c, f->srv, f->path, flags, f->share, f->mode ? f->mode : 0644, &ri);
		if (rc == 0) {
			snprintf(f->hid, sizeof f->hid, "%s", ri.hid);
			pthread_mutex_lock(&c->lock);
			for (sdc_page *p = f->pages, *nx; p; p = nx) {
				nx = p->fnext;
				if (p->pin)
					continue;
				if (how == SDC_RESOLVE_DISCARD || p->dhi <= p->dlo) {
					if (p->dhi > p->dlo) {
						p->dlo = p->dhi = 0;
						f->ndirty--;
					}
					sdc__page_drop(c, p);
				} else {
					p->valid = 0; /* its other bytes are the old version's */
				}
			}
			pthread_mutex_unlock(&c->lock);
			snprintf(f->base, sizeof f->base, "%s", ri.sha);
			f->rsize = ri.size;
			if (how == SDC_RESOLVE_DISCARD || f->size < f->rsize)
				f->size = ri.size;
			f->pending = ri.sha[0] == '\0';
			f->hdirty = 0;
			f->state = FS_OK;
			f->check_base = 0;
		}
	} else {
		rc = -EINVAL;
	}
	pthread_mutex_unlock(&f->lock);
	sdc__file_release(c, f);
	return rc;
}
