/*
 * file.c - open files: descriptors, and pread/pwrite/ftruncate/fsync/close
 * through the page cache onto a server handle.
 *
 * A file object (sdc_file) is one remote file of one server, shared by all
 * descriptors of the client that name it; it holds at most one server
 * handle and the cache pages of the file. It lives on while it has pages
 * after its last close (those pages are tagged with the version they hold,
 * f->base), so that a reopen of an unchanged file finds them warm.
 *
 * Sizes:
 *   f->size   the file as the client's descriptors see it;
 *   f->rsize  the file as the server handle has it (the base version plus
 *             what was written back).
 * Invariants (f->lock held between calls):
 *  F1. rsize <= size. A shrink below rsize is sent to the server before
 *      the cache is cut; an extension is sent at commit.
 *  F2. The bytes of the file are: a page's dirty bytes if any; else, below
 *      rsize, the server handle's bytes; else zeros. A valid page holds all
 *      its bytes below size (and zeros past size).
 *  F3. An invalid page holds only its dirty bytes [dlo, dhi) (a write that
 *      did not need the rest); reading anything else of it fetches the page
 *      from the server and merges it under the dirty bytes.
 *  F4. hdirty: the server handle holds written-back data not yet committed.
 *      If the server loses the handle then, those writes are lost
 *      (SDC_ELOST); if it loses a clean handle, the file is reopened and
 *      carries on when the server still has the same version (f->base).
 *  F5. A file in FS_CONFLICT or FS_BROKEN answers every call with its error
 *      until the last close, which drops its dirty pages and abandons its
 *      handle (nothing of it is committed).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define RA_MAX_BYTES (32u << 20) /* largest read-ahead */

/* ------------------------------------------------------------ names */

/* "/a//b/./c/../d" -> "/a/b/d"; ".." at the root stays at the root. */
static char *norm_path(const char *in)
{
	size_t n = strlen(in);
	char *out = sdc__xmalloc(n + 2);
	size_t o = 0;
	const char *p = in;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *e = strchr(p, '/');
		size_t k = e ? (size_t)(e - p) : strlen(p);
		if (k == 1 && p[0] == '.') {
		} else if (k == 2 && p[0] == '.' && p[1] == '.') {
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
		} else {
			out[o++] = '/';
			memcpy(out + o, p, k);
			o += k;
		}
		p += k;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	return out;
}

/* ------------------------------------------------------------ objects */

/* The file table: (server, path) -> file, chained through hnext, grown
 * to keep chains short (a FUSE mount may hold thousands of files). An
 * unlinked file is not in it (a new file of that name is another object). */
static size_t fslot(size_t size, int srv, const char *path)
{
	uint64_t h = 1469598103934665603ull ^ (uint64_t)srv;
	for (const unsigned char *p = (const unsigned char *)path; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return (size_t)(h % size);
}

static void ftab_insert(sdc_client *c, sdc_file *f)
{
	if (c->nfiles + 1 > c->ftsize) {
		size_t ns = c->ftsize ? c->ftsize * 2 + 1 : 61;
		sdc_file **nt = sdc__xcalloc(ns, sizeof *nt);
		for (size_t i = 0; i < c->ftsize; i++)
			for (sdc_file *g = c->ftab[i], *nx; g; g = nx) {
				nx = g->hnext;
				size_t k = fslot(ns, g->srv, g->path);
				g->hnext = nt[k];
				nt[k] = g;
			}
		free(c->ftab);
		c->ftab = nt;
		c->ftsize = ns;
	}
	size_t k = fslot(c->ftsize, f->srv, f->path);
	f->hnext = c->ftab[k];
	c->ftab[k] = f;
	c->nfiles++;
}

static void ftab_remove(sdc_client *c, sdc_file *f)
{
	if (!c->ftsize || f->unlinked)
		return;
	for (sdc_file **pp = &c->ftab[fslot(c->ftsize, f->srv, f->path)]; *pp; pp = &(*pp)->hnext)
		if (*pp == f) {
			*pp = f->hnext;
			f->hnext = NULL;
			c->nfiles--;
			return;
		}
}

sdc_file *sdc__file_get(sdc_client *c, int srv, const char *path, int create)
{
	if (c->ftsize)
		for (sdc_file *f = c->ftab[fslot(c->ftsize, srv, path)]; f; f = f->hnext)
			if (f->srv == srv && !f->zombie && strcmp(f->path, path) == 0) {
				f->refs++;
				return f;
			}
	if (!create)
		return NULL;
	sdc_file *f = sdc__xcalloc(1, sizeof *f);
	f->c = c;
	f->srv = srv;
	f->path = sdc__xstrdup(path);
	pthread_mutex_init(&f->lock, NULL);
	f->refs = 1;
	f->next = c->files;
	if (c->files)
		c->files->prev = f;
	c->files = f;
	ftab_insert(c, f);
	return f;
}

void sdc__file_repath(sdc_client *c, sdc_file *f, const char *path)
{
	ftab_remove(c, f);
	free(f->path);
	f->path = sdc__xstrdup(path);
	if (!f->unlinked)
		ftab_insert(c, f);
}

/* An unlinked file leaves the table (c->lock held). */
static void file_unlink(sdc_client *c, sdc_file *f)
{
	ftab_remove(c, f);
	f->unlinked = 1;
}

void sdc__file_free(sdc_client *c, sdc_file *f)
{
	ftab_remove(c, f);
	if (f->prev)
		f->prev->next = f->next;
	else
		c->files = f->next;
	if (f->next)
		f->next->prev = f->prev;
	pthread_mutex_destroy(&f->lock);
	free(f->path);
	free(f);
}

void sdc__file_unref_maybe_free(sdc_client *c, sdc_file *f)
{
	if (f->refs > 0 || f->opens > 0 || f->npages > 0)
		return;
	sdc__file_free(c, f);
}

void sdc__file_release(sdc_client *c, sdc_file *f)
{
	pthread_mutex_lock(&c->lock);
	f->refs--;
	sdc__file_unref_maybe_free(c, f);
	pthread_mutex_unlock(&c->lock);
}

void sdc__file_forget_pages(sdc_file *f)
{
	sdc_client *c = f->c;
	pthread_mutex_lock(&c->lock);
	for (sdc_page *p = f->pages, *nx; p; p = nx) {
		nx = p->fnext;
		if (!p->pin)
			sdc__page_drop(c, p);
	}
	pthread_mutex_unlock(&c->lock);
}

/* The file of a descriptor with a reference taken, or NULL (-EBADF). */
static sdc_file *fd_file(sdc_client *c, int fd, int *flags)
{
	sdc_file *f = NULL;
	pthread_mutex_lock(&c->lock);
	if (fd >= 0 && fd < c->nfds && c->fds[fd].f) {
		f = c->fds[fd].f;
		f->refs++;
		if (flags)
			*flags = c->fds[fd].flags;
	}
	pthread_mutex_unlock(&c->lock);
	return f;
}

static int state_err(sdc_file *f)
{
	if (f->state == FS_CONFLICT)
		return -SDC_ECONFLICT;
	if (f->state == FS_BROKEN)
		return f->err ? f->err : -SDC_ELOST;
	return 0;
}

static void unpin(sdc_client *c, sdc_page *p)
{
	pthread_mutex_lock(&c->lock);
	p->pin--;
	pthread_mutex_unlock(&c->lock);
}

/* ------------------------------------------------------------ recovery */

/* The server answered that it no longer has f's handle (F4). 0 when f has
 * a fresh handle on the same version (retry the call), else the error. */
static int recover(sdc_file *f)
{
	sdc_client *c = f->c;
	f->hid[0] = '\0';
	if (f->hdirty || f->pending) {
		f->state = FS_BROKEN;
		f->err = -SDC_ELOST;
		sdc__set_errmsg("%s:%s: the server dropped the open file with unsaved writes",
				c->srv[f->srv].name, f->path);
		return -SDC_ELOST;
	}
	sdc_rinfo ri;
	int rc = sdc__r_open(c, f->srv, f->path, f->hwrite ? O_RDWR : O_RDONLY, f->share, 0644, &ri);
	if (rc < 0) {
		if (rc == -ENOENT && f->ndirty > 0) {
			f->state = FS_CONFLICT;
			f->conflict = SDC_CONFLICT_GONE;
			f->cur[0] = '\0';
			return -SDC_ECONFLICT;
		}
		return rc;
	}
	snprintf(f->hid, sizeof f->hid, "%s", ri.hid);
	f->idle_s = ri.idle_s;
	if (strcmp(ri.sha, f->base) != 0) {
		if (f->ndirty > 0) {
			f->state = FS_CONFLICT;
			f->conflict = SDC_CONFLICT_CHANGED;
			snprintf(f->cur, sizeof f->cur, "%s", ri.sha);
			return -SDC_ECONFLICT;
		}
		sdc__file_forget_pages(f);
		snprintf(f->base, sizeof f->base, "%s", ri.sha);
		f->size = ri.size;
	}
	f->rsize = ri.size;
	if (f->size < f->rsize)
		f->size = f->rsize;
	return 0;
}

/* Run a handle call, recovering once from a lost handle. */
#define RCALL(rc, f, call)                                                                         \
	do {                                                                                       \
		(rc) = (f)->hid[0] ? (call) : -ESTALE; /* released: open it again */              \
		if ((rc) == -ESTALE) {                                                             \
			(rc) = recover(f);                                                         \
			if ((rc) == 0)                                                             \
				(rc) = (call);                                                     \
			if ((rc) == -ESTALE) {                                                     \
				(f)->state = FS_BROKEN;                                             \
				(f)->err = -SDC_ELOST;                                             \
				(rc) = -SDC_ELOST;                                                 \
			}                                                                          \
		}                                                                                  \
	} while (0)

/* ------------------------------------------------------------ write-back */

static int cmp_page(const void *a, const void *b)
{
	const sdc_page *x = *(sdc_page *const *)a, *y = *(sdc_page *const *)b;
	return x->no < y->no ? -1 : x->no > y->no;
}

int sdc__file_writeback(sdc_file *f)
{
	sdc_client *c = f->c;
	int rc = state_err(f);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&c->lock);
	size_t n = f->ndirty;
	if (n == 0) {
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	sdc_page **pv = sdc__xmalloc(n * sizeof *pv);
	size_t k = 0;
	for (sdc_page *p = f->pages; p && k < n; p = p->fnext)
		if (p->dhi > p->dlo) {
			p->pin++;
			pv[k++] = p;
		}
	pthread_mutex_unlock(&c->lock);
	qsort(pv, k, sizeof *pv, cmp_page);
	sdc_piece *pc = sdc__xmalloc(k * sizeof *pc);
	for (size_t i = 0; i < k; i++) {
		sdc_page *p = pv[i];
		pc[i].off = p->no * c->psize + p->dlo;
		pc[i].p = p->data + p->dlo;
		pc[i].len = p->dhi - p->dlo;
	}
	RCALL(rc, f, sdc__r_write(f, pc, (int)k));
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < k; i++) {
		sdc_page *p = pv[i];
		p->pin--;
		if (rc == 0) {
			p->dlo = p->dhi = 0;
			f->ndirty--;
			c->st.writebacks++;
		}
	}
	pthread_mutex_unlock(&c->lock);
	if (rc == 0)
		f->hdirty = 1;
	free(pv);
	free(pc);
	return rc;
}

/* Write back, extend to size, commit (close: and release the handle). */
int sdc__file_commit(sdc_file *f, int close)
{
	sdc_client *c = f->c;
	if (f->unlinked) {
		/* unlinked while open: nothing of it is ever committed */
		if (close && f->hid[0])
			sdc__r_abandon(f);
		if (close)
			f->hid[0] = '\0';
		return 0;
	}
	if (close && !f->hid[0] && !f->hdirty && !f->pending && f->ndirty == 0 &&
	    f->size == f->rsize && !f->pa_mask)
		return 0; /* already released, nothing to commit */
	int rc = sdc__file_writeback(f);
	if (rc == 0 && f->size != f->rsize) {
		RCALL(rc, f, sdc__r_truncate(f, f->size));
		if (rc == 0)
			f->hdirty = 1;
	}
	if (rc < 0)
		return rc;
	if (f->pa_mask) {
		/* attributes set while writing: kept by the server for this commit */
		RCALL(rc, f, sdc__r_attrs(f, f->pa_mask & 1, f->pa_mode, f->pa_mask & 2, f->pa_mtime));
		if (rc < 0)
			return rc;
		f->pa_mask = 0;
	}
	if (!close && !f->hdirty && !f->pending)
		return 0;
	if (f->check_base && (f->hdirty || f->pending)) {
		/* restored: the version the writes were based on must still be
		 * the server's, right before they become a version */
		sdc_attr st;
		rc = sdc__stat_remote(c, f->srv, f->path, &st);
		if (rc == 0 && strcmp(st.sha256, f->base) != 0) {
			f->state = FS_CONFLICT;
			f->conflict = SDC_CONFLICT_CHANGED;
			snprintf(f->cur, sizeof f->cur, "%s", st.sha256);
			return -SDC_ECONFLICT;
		}
		if (rc == -ENOENT && !f->pending) {
			f->state = FS_CONFLICT;
			f->conflict = SDC_CONFLICT_GONE;
			f->cur[0] = '\0';
			return -SDC_ECONFLICT;
		}
		if (rc < 0 && rc != -ENOENT)
			return rc;
	}
	sdc_rinfo ri;
	/* conditional commit: only on the version the writes were based on */
	const char *im = (c->conditional || f->check_base) && f->hdirty && !f->pending && f->base[0]
			     ? f->base
			     : NULL;
	RCALL(rc, f, sdc__r_sync(f, close, im, &ri));
	if (rc == -SDC_ECONFLICT) {
		f->state = FS_CONFLICT;
		f->conflict = SDC_CONFLICT_CHANGED;
		f->cur[0] = '\0';
		return rc;
	}
	if (rc < 0)
		return rc;
	snprintf(f->base, sizeof f->base, "%s", ri.sha);
	if (ri.mtime)
		f->mtime = ri.mtime;
	f->hdirty = 0;
	f->pending = 0;
	f->check_base = 0;
	if (close)
		f->hid[0] = '\0';
	return 0;
}

/* ------------------------------------------------------------ fetch */

typedef struct fetch {
	sdc_client *c;
	sdc_page **pv;
	size_t n;
	char *direct;      /* uncached read: the caller's buffer ... */
	uint64_t doff;     /* ... holding file bytes from doff */
} fetch;

static void fetch_put(void *arg, uint64_t off, const char *p, size_t n)
{
	fetch *fe = arg;
	size_t ps = fe->c->psize;
	if (fe->direct) {
		memcpy(fe->direct + (off - fe->doff), p, n);
		return;
	}
	while (n > 0) {
		uint64_t no = off / ps;
		size_t lo = 0, hi = fe->n;
		sdc_page *pg = NULL;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (fe->pv[mid]->no < no)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < fe->n && fe->pv[lo]->no == no)
			pg = fe->pv[lo];
		size_t in = (size_t)(off % ps);
		size_t k = ps - in < n ? ps - in : n;
		if (pg) {
			/* under the dirty bytes, not over them (F3) */
			size_t a = in, b = in + k;
			if (b > pg->hw)
				pg->hw = (uint32_t)b;
			if (pg->dhi <= pg->dlo || b <= pg->dlo || a >= pg->dhi) {
				memcpy(pg->data + a, p, k);
			} else {
				if (a < pg->dlo)
					memcpy(pg->data + a, p, pg->dlo - a);
				if (b > pg->dhi)
					memcpy(pg->data + pg->dhi, p + (pg->dhi - a), b - pg->dhi);
			}
		}
		off += k;
		p += k;
		n -= k;
	}
}

/* Fill the pinned, sorted pages pv (all invalid) from the server. */
static int fetch_pages(sdc_file *f, sdc_page **pv, size_t n)
{
	sdc_client *c = f->c;
	size_t ps = c->psize;
	if (n == 0)
		return 0;
	sdc_range *rv = sdc__xmalloc(n * sizeof *rv);
	int nr = 0;
	for (size_t i = 0; i < n; i++) {
		sdc_page *p = pv[i];
		/* zeros under everything not dirty; the server's bytes follow */
		if (p->dhi > p->dlo) {
			memset(p->data, 0, p->dlo);
			if (p->hw > p->dhi)
				memset(p->data + p->dhi, 0, p->hw - p->dhi);
			p->hw = p->dhi;
		} else {
			memset(p->data, 0, p->hw); /* [hw, ps) holds zeros already */
			p->hw = 0;
		}
		uint64_t a = p->no * ps, b = a + ps;
		if (b > f->rsize)
			b = f->rsize;
		if (a >= b)
			continue;
		if (nr > 0 && rv[nr - 1].off + rv[nr - 1].len == a)
			rv[nr - 1].len += b - a;
		else
			rv[nr++] = (sdc_range){a, b - a};
	}
	fetch fe = {c, pv, n, NULL, 0};
	int rc = 0;
	if (nr > 0)
		RCALL(rc, f, sdc__r_read(f, rv, nr, fetch_put, &fe));
	free(rv);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n; i++)
		pv[i]->valid = 1;
	return 0;
}

/* Uncached read of [off, off + len) (no page could be had). */
static int read_direct(sdc_file *f, char *buf, uint64_t off, size_t len)
{
	memset(buf, 0, len);
	if (off >= f->rsize)
		return 0;
	uint64_t b = off + len < f->rsize ? off + len : f->rsize;
	sdc_range rg = {off, b - off};
	fetch fe = {f->c, NULL, 0, buf, off};
	int rc;
	RCALL(rc, f, sdc__r_read(f, &rg, 1, fetch_put, &fe));
	return rc;
}

/* ------------------------------------------------------------ pread */

static ssize_t do_pread(sdc_file *f, char *buf, size_t len, uint64_t off)
{
	sdc_client *c = f->c;
	size_t ps = c->psize;
	if (off >= f->size || len == 0)
		return 0;
	if (len > f->size - off)
		len = (size_t)(f->size - off);
	/* read-ahead for sequential readers */
	size_t ra_max = RA_MAX_BYTES / ps;
	if (ra_max > c->maxpages / 4)
		ra_max = c->maxpages / 4;
	if (off == f->ra_next && off != 0)
		f->ra_win = f->ra_win ? (f->ra_win * 2 > ra_max ? ra_max : f->ra_win * 2) : 2;
	else
		f->ra_win = 0;
	f->ra_next = off + len;

	size_t batch = c->maxpages / 2 ? c->maxpages / 2 : 1;
	size_t done = 0;
	sdc_page **pv = sdc__xmalloc((batch + ra_max + 1) * sizeof *pv);
	sdc_page **need = sdc__xmalloc((batch + ra_max + 1) * sizeof *need);
	int rc = 0;
	while (done < len && rc == 0) {
		uint64_t o = off + done;
		uint64_t first = o / ps;
		uint64_t last = (off + len - 1) / ps;
		if (last - first + 1 > batch)
			last = first + batch - 1;
		size_t np = 0, nn = 0;
		for (uint64_t no = first; no <= last; no++) {
			pthread_mutex_lock(&c->lock);
			sdc_page *p = sdc__page_find(c, f, no);
			if (p) {
				sdc__page_touch(c, p);
				p->pin++;
				c->st.hits++;
			} else {
				c->st.misses++;
			}
			pthread_mutex_unlock(&c->lock);
			if (!p) {
				int err;
				p = sdc__page_get(c, f, no, &err);
				if (!p && err) {
					rc = err;
					break;
				}
			}
			pv[np++] = p; /* NULL: read this page uncached */
			if (p && !p->valid) {
				uint64_t pg = no * ps;
				uint64_t a = o > pg ? o - pg : 0;
				uint64_t e = off + len < pg + ps ? off + len - pg : ps;
				if (!(a >= p->dlo && e <= p->dhi))
					need[nn++] = p;
			}
		}
		/* read-ahead past the end of the request */
		if (rc == 0 && last == (off + len - 1) / ps) {
			for (uint64_t no = last + 1; no <= last + f->ra_win && no * ps < f->rsize; no++) {
				pthread_mutex_lock(&c->lock);
				int have = sdc__page_find(c, f, no) != NULL;
				pthread_mutex_unlock(&c->lock);
				if (have)
					break;
				int err;
				sdc_page *p = sdc__page_get(c, f, no, &err);
				if (!p)
					break;
				need[nn++] = p;
			}
		}
		if (rc == 0)
			rc = fetch_pages(f, need, nn);
		/* copy out */
		for (size_t i = 0; i < np && rc == 0; i++) {
			uint64_t no = first + i;
			uint64_t pg = no * ps;
			uint64_t a = (off + done) - pg;
			size_t k = ps - a < len - done ? (size_t)(ps - a) : len - done;
			if (pv[i])
				memcpy(buf + done, pv[i]->data + a, k);
			else
				rc = read_direct(f, buf + done, off + done, k);
			done += k;
		}
		for (size_t i = 0; i < np; i++)
			if (pv[i])
				unpin(c, pv[i]);
		for (size_t i = 0; i < nn; i++)
			if (need[i]->no > last)
				unpin(c, need[i]);
	}
	free(pv);
	free(need);
	return rc < 0 ? rc : (ssize_t)done;
}

/* ------------------------------------------------------------ pwrite */

static void mark_dirty(sdc_client *c, sdc_file *f, sdc_page *p, size_t a, size_t b)
{
	if (p->dhi > p->dlo) {
		if (a < p->dlo)
			p->dlo = (uint32_t)a;
		if (b > p->dhi)
			p->dhi = (uint32_t)b;
		return;
	}
	p->dlo = (uint32_t)a;
	p->dhi = (uint32_t)b;
	pthread_mutex_lock(&c->lock);
	f->ndirty++;
	pthread_mutex_unlock(&c->lock);
}

static ssize_t do_pwrite(sdc_file *f, const char *buf, size_t len, uint64_t off)
{
	sdc_client *c = f->c;
	size_t ps = c->psize;
	if (len == 0)
		return 0;
	if (off + len < off || off + len > (uint64_t)INT64_MAX)
		return -EFBIG;
	uint64_t end = off + len;
	size_t done = 0;
	int rc = 0;
	while (done < len) {
		uint64_t o = off + done;
		uint64_t no = o / ps, pg = no * ps;
		size_t a = (size_t)(o - pg);
		size_t b = end - pg < ps ? (size_t)(end - pg) : ps;
		pthread_mutex_lock(&c->lock);
		sdc_page *p = sdc__page_find(c, f, no);
		if (p) {
			sdc__page_touch(c, p);
			p->pin++;
			c->st.hits++;
		} else {
			c->st.misses++;
		}
		pthread_mutex_unlock(&c->lock);
		if (!p) {
			int err;
			p = sdc__page_get(c, f, no, &err);
			if (!p && err)
				return done ? (ssize_t)done : err;
		}
		if (!p) {
			/* uncached: straight to the server handle (F2 still holds:
			 * the page is not cached, so it has no dirty bytes) */
			sdc_piece pc = {o, buf + done, b - a};
			RCALL(rc, f, sdc__r_write(f, &pc, 1));
			if (rc < 0)
				return done ? (ssize_t)done : rc;
			f->hdirty = 1;
		} else {
			if (!p->valid) {
				int clean = p->dhi <= p->dlo;
				if (pg >= f->rsize && clean) {
					memset(p->data, 0, p->hw); /* all zeros past rsize (F2) */
					p->hw = 0;
					p->valid = 1;
				} else if (a == 0 && b == ps) {
					p->valid = 1;
				} else if (!clean && (b < p->dlo || a > p->dhi)) {
					/* a second, separate dirty range: fetch first */
					rc = fetch_pages(f, &p, 1);
					if (rc < 0) {
						unpin(c, p);
						return done ? (ssize_t)done : rc;
					}
				}
			}
			memcpy(p->data + a, buf + done, b - a);
			if (b > p->hw)
				p->hw = (uint32_t)b;
			mark_dirty(c, f, p, a, b);
			unpin(c, p);
		}
		done += b - a;
		if (off + done > f->size)
			f->size = off + done;
	}
	f->mtime = (int64_t)time(NULL);
	return (ssize_t)done;
}

/* ------------------------------------------------------------ truncate */

static int do_truncate(sdc_file *f, uint64_t n)
{
	sdc_client *c = f->c;
	size_t ps = c->psize;
	if (n > (uint64_t)INT64_MAX)
		return -EFBIG;
	if (n < f->size) {
		if (n < f->rsize) {
			int rc;
			RCALL(rc, f, sdc__r_truncate(f, n));
			if (rc < 0)
				return rc;
			f->hdirty = 1;
		}
		pthread_mutex_lock(&c->lock);
		for (sdc_page *p = f->pages, *nx; p; p = nx) {
			nx = p->fnext;
			uint64_t pg = p->no * ps;
			if (pg >= n) {
				sdc__page_drop(c, p);
			} else if (pg + ps > n) {
				size_t cut = (size_t)(n - pg);
				if (p->hw > cut)
					memset(p->data + cut, 0, p->hw - cut);
				if (p->hw > cut)
					p->hw = (uint32_t)cut;
				if (p->dhi > cut)
					p->dhi = (uint32_t)cut;
				if (p->dhi <= p->dlo && (p->dlo || p->dhi)) {
					p->dlo = p->dhi = 0;
					f->ndirty--;
				}
			}
		}
		pthread_mutex_unlock(&c->lock);
	}
	f->size = n;
	f->mtime = (int64_t)time(NULL);
	return 0;
}

/* ------------------------------------------------------------ open */

static int fd_alloc(sdc_client *c, sdc_file *f, int flags, int want)
{
	int fd = -1;
	if (want >= 0) {
		if (want >= SDC_MAX_FDS)
			return -EMFILE;
		fd = want;
	} else {
		for (int i = 0; i < c->nfds; i++)
			if (!c->fds[i].f) {
				fd = i;
				break;
			}
		if (fd < 0)
			fd = c->nfds;
	}
	if (fd >= SDC_MAX_FDS)
		return -EMFILE;
	if (fd >= c->nfds) {
		int n = c->nfds ? c->nfds : 16;
		while (n <= fd)
			n *= 2;
		sdc_fd *v = realloc(c->fds, (size_t)n * sizeof *v);
		if (!v)
			return -ENOMEM;
		memset(v + c->nfds, 0, (size_t)(n - c->nfds) * sizeof *v);
		c->fds = v;
		c->nfds = n;
	}
	if (c->fds[fd].f)
		return -EBADF;
	c->fds[fd].f = f;
	c->fds[fd].flags = flags & (O_ACCMODE | O_APPEND);
	c->fds[fd].pos = 0;
	return fd;
}

/* Open f on the server (f->lock held, f->opens == 0). */
static int open_remote(sdc_file *f, int flags, unsigned share, uint32_t mode)
{
	sdc_client *c = f->c;
	sdc_rinfo ri;
	int wr = (flags & O_ACCMODE) != O_RDONLY;
	int rc = sdc__r_open(c, f->srv, f->path, wr ? O_RDWR | (flags & (O_CREAT | O_TRUNC | O_EXCL))
						      : O_RDONLY,
			     share, mode, &ri);
	if (rc < 0)
		return rc;
	snprintf(f->hid, sizeof f->hid, "%s", ri.hid);
	f->idle_s = ri.idle_s;
	f->last_use = sdc__now();
	f->hwrite = wr;
	f->share = share;
	f->mode = ri.mode ? ri.mode : mode;
	f->mtime = ri.mtime;
	f->state = FS_OK;
	f->err = 0;
	f->pending = ri.sha[0] == '\0';
	f->hdirty = (flags & O_TRUNC) && wr;
	/* revalidate what the cache holds by the version (no stale pages) */
	if (f->hdirty || f->pending || strcmp(ri.sha, f->base) != 0)
		sdc__file_forget_pages(f);
	snprintf(f->base, sizeof f->base, "%s", ri.sha);
	f->size = f->rsize = ri.size;
	f->ra_next = 0;
	f->ra_win = 0;
	return 0;
}

/* A second open of a file this client has open (f->lock held). */
static int open_again(sdc_file *f, int flags, unsigned share)
{
	sdc_client *c = f->c;
	int wr = (flags & O_ACCMODE) != O_RDONLY;
	if ((flags & O_CREAT) && (flags & O_EXCL))
		return -EEXIST;
	if (share == SDC_SHARE_EXCLUSIVE || f->share == SDC_SHARE_EXCLUSIVE ||
	    (f->share == SDC_SHARE_READ && wr) || (share == SDC_SHARE_READ && f->writers > 0)) {
		sdc__set_errmsg("already open in this client in a conflicting mode");
		return -EBUSY;
	}
	int rc = state_err(f);
	if (rc < 0)
		return rc;
	if (wr && !f->hwrite) {
		/* a read-only handle cannot take writes: a new one replaces it */
		sdc_rinfo ri;
		rc = sdc__r_open(c, f->srv, f->path, O_RDWR, f->share, 0644, &ri);
		if (rc < 0)
			return rc;
		char old[72];
		snprintf(old, sizeof old, "%s", f->hid);
		snprintf(f->hid, sizeof f->hid, "%s", ri.hid);
		f->hwrite = 1;
		if (old[0]) {
			sdc_file tmp = *f;
			snprintf(tmp.hid, sizeof tmp.hid, "%s", old);
			sdc__r_abandon(&tmp);
		}
		if (strcmp(ri.sha, f->base) != 0) {
			sdc__file_forget_pages(f);
			snprintf(f->base, sizeof f->base, "%s", ri.sha);
			f->size = ri.size;
		}
		f->rsize = ri.size;
	}
	if ((flags & O_TRUNC) && wr)
		return do_truncate(f, 0);
	return 0;
}

int sdc_open(sdc_client *c, const char *where, int flags, unsigned share, uint32_t mode)
{
	int srv;
	const char *p;
	int rc = sdc__where(c, where, &srv, &p);
	if (rc < 0)
		return rc;
	int acc = flags & O_ACCMODE;
	if (acc != O_RDONLY && acc != O_WRONLY && acc != O_RDWR)
		return -EINVAL;
	if (share != SDC_SHARE_WRITE && share != SDC_SHARE_READ && share != SDC_SHARE_EXCLUSIVE)
		return -EINVAL;
	if (share == SDC_SHARE_READ && acc != O_RDONLY)
		return -EINVAL;
	if (!mode)
		mode = 0644;
	char *path = norm_path(p);
	pthread_mutex_lock(&c->lock);
	sdc_file *f = sdc__file_get(c, srv, path, 1);
	pthread_mutex_unlock(&c->lock);
	free(path);
	pthread_mutex_lock(&f->lock);
	if (f->opens == 0)
		rc = open_remote(f, flags, share, mode);
	else
		rc = open_again(f, flags, share);
	if (rc == 0) {
		pthread_mutex_lock(&c->lock);
		rc = fd_alloc(c, f, flags, -1);
		if (rc >= 0) {
			f->opens++;
			if (acc != O_RDONLY)
				f->writers++;
		}
		pthread_mutex_unlock(&c->lock);
		if (rc < 0 && f->opens == 0 && f->hid[0])
			sdc__r_abandon(f), f->hid[0] = '\0';
	}
	pthread_mutex_unlock(&f->lock);
	sdc__file_release(c, f);
	return rc;
}

int sdc__fd_install(sdc_client *c, sdc_file *f, int fd, int flags)
{
	int rc = fd_alloc(c, f, flags, fd);
	if (rc >= 0) {
		f->opens++;
		if ((flags & O_ACCMODE) != O_RDONLY)
			f->writers++;
	}
	return rc;
}

/* ------------------------------------------------------------ calls */

ssize_t sdc_pread(sdc_client *c, int fd, void *buf, size_t len, uint64_t off)
{
	int flags;
	sdc_file *f = fd_file(c, fd, &flags);
	if (!f)
		return -EBADF;
	ssize_t rc;
	if ((flags & O_ACCMODE) == O_WRONLY) {
		rc = -EBADF;
	} else {
		pthread_mutex_lock(&f->lock);
		rc = state_err(f);
		if (rc == 0)
			rc = do_pread(f, buf, len, off);
		pthread_mutex_unlock(&f->lock);
	}
	sdc__file_release(c, f);
	return rc;
}

ssize_t sdc_pwrite(sdc_client *c, int fd, const void *buf, size_t len, uint64_t off)
{
	int flags;
	sdc_file *f = fd_file(c, fd, &flags);
	if (!f)
		return -EBADF;
	ssize_t rc;
	if ((flags & O_ACCMODE) == O_RDONLY) {
		rc = -EBADF;
	} else {
		pthread_mutex_lock(&f->lock);
		rc = state_err(f);
		if (rc == 0)
			rc = do_pwrite(f, buf, len, (flags & O_APPEND) ? f->size : off);
		pthread_mutex_unlock(&f->lock);
	}
	sdc__file_release(c, f);
	return rc;
}

ssize_t sdc_read(sdc_client *c, int fd, void *buf, size_t len)
{
	pthread_mutex_lock(&c->lock);
	uint64_t pos = fd >= 0 && fd < c->nfds ? c->fds[fd].pos : 0;
	pthread_mutex_unlock(&c->lock);
	ssize_t n = sdc_pread(c, fd, buf, len, pos);
	if (n > 0) {
		pthread_mutex_lock(&c->lock);
		if (fd < c->nfds && c->fds[fd].f)
			c->fds[fd].pos = pos + (uint64_t)n;
		pthread_mutex_unlock(&c->lock);
	}
	return n;
}

ssize_t sdc_write(sdc_client *c, int fd, const void *buf, size_t len)
{
	int flags;
	sdc_file *f = fd_file(c, fd, &flags);
	if (!f)
		return -EBADF;
	ssize_t rc;
	if ((flags & O_ACCMODE) == O_RDONLY) {
		rc = -EBADF;
	} else {
		pthread_mutex_lock(&f->lock);
		rc = state_err(f);
		uint64_t pos = 0;
		if (rc == 0) {
			pthread_mutex_lock(&c->lock);
			pos = (flags & O_APPEND) ? f->size : c->fds[fd].pos;
			pthread_mutex_unlock(&c->lock);
			rc = do_pwrite(f, buf, len, pos);
		}
		if (rc > 0) {
			pthread_mutex_lock(&c->lock);
			if (c->fds[fd].f == f)
				c->fds[fd].pos = pos + (uint64_t)rc;
			pthread_mutex_unlock(&c->lock);
		}
		pthread_mutex_unlock(&f->lock);
	}
	sdc__file_release(c, f);
	return rc;
}

int64_t sdc_lseek(sdc_client *c, int fd, int64_t off, int whence)
{
	sdc_file *f = fd_file(c, fd, NULL);
	if (!f)
		return -EBADF;
	pthread_mutex_lock(&f->lock);
	uint64_t size = f->size;
	pthread_mutex_unlock(&f->lock);
	int64_t rc;
	pthread_mutex_lock(&c->lock);
	int64_t base = whence == SEEK_SET ? 0
		       : whence == SEEK_CUR ? (int64_t)c->fds[fd].pos
		       : whence == SEEK_END ? (int64_t)size
					    : -1;
	if (base < 0 && whence != SEEK_SET)
		rc = -EINVAL;
	else if ((off > 0 && base > INT64_MAX - off) || base + off < 0)
		rc = -EINVAL;
	else
		rc = c->fds[fd].pos = (uint64_t)(base + off);
	pthread_mutex_unlock(&c->lock);
	sdc__file_release(c, f);
	return rc;
}

int sdc_ftruncate(sdc_client *c, int fd, uint64_t size)
{
	int flags;
	sdc_file *f = fd_file(c, fd, &flags);
	if (!f)
		return -EBADF;
	int rc;
	if ((flags & O_ACCMODE) == O_RDONLY) {
		rc = -EBADF;
	} else {
		pthread_mutex_lock(&f->lock);
		rc = state_err(f);
		if (rc == 0)
			rc = do_truncate(f, size);
		pthread_mutex_unlock(&f->lock);
	}
	sdc__file_release(c, f);
	return rc;
}

int sdc_fstat(sdc_client *c, int fd, sdc_attr *st)
{
	sdc_file *f = fd_file(c, fd, NULL);
	if (!f)
		return -EBADF;
	pthread_mutex_lock(&f->lock);
	memset(st, 0, sizeof *st);
	st->kind = SDC_KIND_FILE;
	st->size = f->size;
	st->mode = f->mode;
	st->mtime = f->mtime;
	if (!f->hdirty && f->ndirty == 0 && f->size == f->rsize && !f->pending)
		snprintf(st->sha256, sizeof st->sha256, "%s", f->base);
	int rc = state_err(f);
	pthread_mutex_unlock(&f->lock);
	sdc__file_release(c, f);
	return rc == -SDC_ECONFLICT ? 0 : rc;
}

int sdc_flush(sdc_client *c, int fd)
{
	sdc_file *f = fd_file(c, fd, NULL);
	if (!f)
		return -EBADF;
	pthread_mutex_lock(&f->lock);
	int rc = sdc__file_writeback(f);
	pthread_mutex_unlock(&f->lock);
	sdc__file_release(c, f);
	return rc;
}

int sdc_fsync(sdc_client *c, int fd)
{
	sdc_file *f = fd_file(c, fd, NULL);
	if (!f)
		return -EBADF;
	pthread_mutex_lock(&f->lock);
	int rc = state_err(f);
	if (rc == 0)
		rc = sdc__file_commit(f, 0);
	pthread_mutex_unlock(&f->lock);
	sdc__file_release(c, f);
	return rc;
}

int sdc_push_all(sdc_client *c)
{
	pthread_mutex_lock(&c->lock);
	int n = 0;
	for (sdc_file *f = c->files; f; f = f->next)
		if (f->opens > 0)
			n++;
	sdc_file **v = sdc__xmalloc((size_t)(n ? n : 1) * sizeof *v);
	n = 0;
	for (sdc_file *f = c->files; f; f = f->next)
		if (f->opens > 0) {
			f->refs++;
			v[n++] = f;
		}
	pthread_mutex_unlock(&c->lock);
	int first = 0;
	for (int i = 0; i < n; i++) {
		pthread_mutex_lock(&v[i]->lock);
		int rc = state_err(v[i]);
		if (rc == 0 && v[i]->opens > 0)
			rc = sdc__file_commit(v[i], 0);
		pthread_mutex_unlock(&v[i]->lock);
		if (rc < 0 && !first)
			first = rc;
		sdc__file_release(c, v[i]);
	}
	free(v);
	return first;
}

/* The last close of f failed or f is unusable: drop its unsaved state. */
static void give_up(sdc_file *f)
{
	if (f->hid[0])
		sdc__r_abandon(f);
	f->hid[0] = '\0';
	f->base[0] = '\0';
	f->hdirty = 0;
	f->pending = 0;
	sdc_client *c = f->c;
	pthread_mutex_lock(&c->lock);
	for (sdc_page *p = f->pages; p; p = p->fnext)
		if (p->dhi > p->dlo) {
			p->dlo = p->dhi = 0;
			f->ndirty--;
		}
	pthread_mutex_unlock(&c->lock);
	sdc__file_forget_pages(f);
}

int sdc_close(sdc_client *c, int fd)
{
	int flags = 0;
	sdc_file *f = NULL;
	pthread_mutex_lock(&c->lock);
	if (fd >= 0 && fd < c->nfds && c->fds[fd].f) {
		f = c->fds[fd].f;
		flags = c->fds[fd].flags;
		c->fds[fd].f = NULL;
		f->refs++;
	}
	pthread_mutex_unlock(&c->lock);
	if (!f)
		return -EBADF;
	pthread_mutex_lock(&f->lock);
	int rc = 0;
	pthread_mutex_lock(&c->lock);
	f->opens--;
	if ((flags & O_ACCMODE) != O_RDONLY)
		f->writers--;
	int last = f->opens == 0;
	pthread_mutex_unlock(&c->lock);
	if (last) {
		rc = state_err(f);
		if (rc == 0)
			rc = sdc__file_commit(f, 1);
		if (rc < 0 || f->unlinked)
			give_up(f);
		f->state = FS_OK;
		f->err = 0;
		f->hid[0] = '\0';
	}
	pthread_mutex_unlock(&f->lock);
	sdc__file_release(c, f);
	return rc;
}

ssize_t sdc_page_read(sdc_client *c, int fd, uint64_t pageno, void *buf)
{
	if (pageno > (uint64_t)INT64_MAX / c->psize)
		return -EFBIG;
	return sdc_pread(c, fd, buf, c->psize, pageno * c->psize);
}

ssize_t sdc_page_write(sdc_client *c, int fd, uint64_t pageno, const void *buf, size_t len)
{
	if (len > c->psize)
		return -EINVAL;
	if (pageno > (uint64_t)INT64_MAX / c->psize)
		return -EFBIG;
	int flags;
	sdc_file *f = fd_file(c, fd, &flags);
	if (!f)
		return -EBADF;
	sdc__file_release(c, f);
	if (flags & O_APPEND)
		return -EINVAL;
	return sdc_pwrite(c, fd, buf, len, pageno * c->psize);
}

/* ------------------------------------------------------------ commit, keep-alive */

int sdc_commit(sdc_client *c, int fd, unsigned flags)
{
	sdc_file *f = fd_file(c, fd, NULL);
	if (!f)
		return -EBADF;
	pthread_mutex_lock(&f->lock);
	int rc = state_err(f);
	if (rc == 0) {
		pthread_mutex_lock(&c->lock);
		int only = f->opens == 1;
		pthread_mutex_unlock(&c->lock);
		if ((flags & SDC_COMMIT_RELEASE) && only && !f->unlinked) {
			rc = sdc__file_commit(f, 1);
			if (rc == 0)
				f->hid[0] = '\0'; /* opened again by the next call that needs it */
		} else {
			rc = sdc__file_commit(f, 0);
		}
	}
	pthread_mutex_unlock(&f->lock);
	sdc__file_release(c, f);
	return rc;
}

int sdc_keepalive(sdc_client *c)
{
	pthread_mutex_lock(&c->lock);
	int n = 0;
	for (sdc_file *f = c->files; f; f = f->next)
		n++;
	sdc_file **v = sdc__xmalloc((size_t)(n ? n : 1) * sizeof *v);
	n = 0;
	double now = sdc__now();
	for (sdc_file *f = c->files; f; f = f->next)
		if (f->opens > 0 && f->hid[0] && f->idle_s > 0 && now - f->last_use > f->idle_s / 3.0) {
			f->refs++;
			v[n++] = f;
		}
	pthread_mutex_unlock(&c->lock);
	int touched = 0;
	for (int i = 0; i < n; i++) {
		sdc_file *f = v[i];
		/* a file busy with a call is in use anyway */
		if (pthread_mutex_trylock(&f->lock) == 0) {
			if (f->hid[0]) {
				sdc_rinfo ri;
				f->last_use = sdc__now();
				if (sdc__r_hstat(c, f->srv, f->hid, &ri) == 0)
					touched++;
			}
			pthread_mutex_unlock(&f->lock);
		}
		sdc__file_release(c, f);
	}
	free(v);
	return touched;
}

/* ------------------------------------------------------------ names of open files */

int sdc__open_attr(sdc_client *c, int srv, const char *path, sdc_attr *st)
{
	char *np = norm_path(path);
	pthread_mutex_lock(&c->lock);
	sdc_file *f = sdc__file_get(c, srv, np, 0);
	pthread_mutex_unlock(&c->lock);
	free(np);
	if (!f)
		return -ENOENT;
	int rc = -ENOENT;
	pthread_mutex_lock(&f->lock);
	if (f->opens > 0 && f->state != FS_BROKEN) {
		memset(st, 0, sizeof *st);
		st->kind = SDC_KIND_FILE;
		st->size = f->size;
		st->mode = f->mode;
		st->mtime = f->mtime;
		st->ctime = f->mtime;
		if (!f->hdirty && f->ndirty == 0 && f->size == f->rsize && !f->pending)
			snprintf(st->sha256, sizeof st->sha256, "%s", f->base);
		rc = 0;
	}
	pthread_mutex_unlock(&f->lock);
	sdc__file_release(c, f);
	return rc;
}

/* The open files at path or below it, with references taken. */
static sdc_file **files_under(sdc_client *c, int srv, const char *path, int *n)
{
	size_t pl = strlen(path);
	pthread_mutex_lock(&c->lock);
	int k = 0;
	for (sdc_file *f = c->files; f; f = f->next)
		k++;
	sdc_file **v = sdc__xmalloc((size_t)(k ? k : 1) * sizeof *v);
	k = 0;
	for (sdc_file *f = c->files; f; f = f->next) {
		if (f->srv != srv || f->unlinked || f->zombie || f->opens == 0)
			continue;
		if (strcmp(f->path, path) == 0 ||
		    (strncmp(f->path, path, pl) == 0 && (f->path[pl] == '/' || pl == 1))) {
			f->refs++;
			v[k++] = f;
		}
	}
	pthread_mutex_unlock(&c->lock);
	*n = k;
	return v;
}

static void release_all(sdc_client *c, sdc_file **v, int n)
{
	for (int i = 0; i < n; i++)
		sdc__file_release(c, v[i]);
	free(v);
}

int sdc__unlink_open(sdc_client *c, int srv, const char *path, int recursive)
{
	char *np = norm_path(path);
	int n;
	sdc_file **v = files_under(c, srv, np, &n);
	int pending = 0;
	for (int i = 0; i < n; i++) {
		sdc_file *f = v[i];
		if (!recursive && strcmp(f->path, np) != 0)
			continue;
		pthread_mutex_lock(&f->lock);
		pending |= f->pending;
		pthread_mutex_lock(&c->lock);
		file_unlink(c, f);
		pthread_mutex_unlock(&c->lock);
		pthread_mutex_unlock(&f->lock);
		if (!pending)
			pending = -1;
	}
	release_all(c, v, n);
	free(np);
	return pending; /* 1: a file existed only in this client; -1: open files marked */
}

int sdc__rename_prepare(sdc_client *c, int srv, const char *from)
{
	char *np = norm_path(from);
	int n;
	sdc_file **v = files_under(c, srv, np, &n);
	int rc = 0;
	for (int i = 0; i < n && rc == 0; i++) {
		sdc_file *f = v[i];
		pthread_mutex_lock(&f->lock);
		/* commit what it has (a pending create appears), release the server
		 * handle: it is opened again at the new name when next needed */
		rc = state_err(f);
		if (rc == 0)
			rc = sdc__file_commit(f, 1);
		if (rc == 0)
			f->hid[0] = '\0';
		pthread_mutex_unlock(&f->lock);
	}
	release_all(c, v, n);
	free(np);
	return rc;
}

void sdc__rename_done(sdc_client *c, int srv, const char *from, const char *to)
{
	char *nf = norm_path(from), *nt = norm_path(to);
	int n;
	/* an open file at the target was replaced: it is unlinked now */
	sdc_file **v = files_under(c, srv, nt, &n);
	for (int i = 0; i < n; i++)
		if (strcmp(v[i]->path, nt) == 0) {
			pthread_mutex_lock(&v[i]->lock);
			pthread_mutex_lock(&c->lock);
			file_unlink(c, v[i]);
			pthread_mutex_unlock(&c->lock);
			pthread_mutex_unlock(&v[i]->lock);
		}
	release_all(c, v, n);
	v = files_under(c, srv, nf, &n);
	size_t fl = strlen(nf);
	for (int i = 0; i < n; i++) {
		sdc_file *f = v[i];
		pthread_mutex_lock(&f->lock);
		sdc_buf b = {0};
		sdc__buf_printf(&b, "%s%s", nt, f->path + (fl == 1 ? 0 : fl));
		pthread_mutex_lock(&c->lock);
		sdc__file_repath(c, f, b.p);
		pthread_mutex_unlock(&c->lock);
		sdc__buf_free(&b);
		pthread_mutex_unlock(&f->lock);
	}
	release_all(c, v, n);
	free(nf);
	free(nt);
}

int sdc__open_handle_attrs(sdc_client *c, int srv, const char *path, int has_mode, uint32_t mode,
			   int has_mtime, int64_t mtime)
{
	char *np = norm_path(path);
	pthread_mutex_lock(&c->lock);
	sdc_file *f = sdc__file_get(c, srv, np, 0);
	pthread_mutex_unlock(&c->lock);
	free(np);
	if (!f)
		return 1;
	int rc = 1;
	pthread_mutex_lock(&f->lock);
	if (f->opens > 0 && f->hwrite && f->state == FS_OK && !f->unlinked &&
	    (f->pending || f->hdirty || f->ndirty || f->size != f->rsize)) {
		/* unsaved writes (or not created yet): the attributes go with the
		 * commit, so "write, futimens, close" keeps its mtime */
		if (has_mode) {
			f->pa_mask |= 1;
			f->pa_mode = mode;
			f->mode = mode;
		}
		if (has_mtime) {
			f->pa_mask |= 2;
			f->pa_mtime = mtime;
			f->mtime = mtime;
		}
		rc = 0;
	} else if (f->opens > 0) {
		if (has_mode)
			f->mode = mode;
		if (has_mtime)
			f->mtime = mtime;
	}
	pthread_mutex_unlock(&f->lock);
	sdc__file_release(c, f);
	return rc;
}
