/*
 * cache.c - the page cache: a fixed number of fixed-size pages shared by
 * every file of a client, with Cage's eviction rule (the page accessed the
 * fewest times goes first; among equals, the one unused the longest).
 *
 * Structures (all under c->lock):
 *   - pagev: the maxpages page structs; a page's data buffer is allocated
 *     the first time the page is used and kept for its next owners;
 *   - htab: (file, page number) -> page, chained through hnext;
 *   - buckets: the O(1) LFU structure: a list of frequency buckets in
 *     increasing order, each a list of its pages, most recent first. A hit
 *     moves a page to the bucket freq + 1; a victim is the tail of the
 *     lowest bucket that can be taken;
 *   - free list: pages without an owner (chained through hnext).
 *
 * Invariants:
 *  C1. A page with p->f != NULL is in htab, in exactly one bucket, and in
 *      its file's page list; a free page in none of them.
 *  C2. A page's contents and dirty range change only under its file's
 *      lock; so a victim is taken only from the caller's own file or from
 *      a file whose lock trylock obtained.
 *  C3. A pinned page (p->pin > 0) is never a victim.
 *  C4. A dirty victim is written back (with every other dirty page of its
 *      file, in as few requests as the handle API allows) before it is
 *      reused; a failed write-back leaves it dirty and in place.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

static size_t hslot(sdc_client *c, const sdc_file *f, uint64_t no)
{
	uint64_t h = (uint64_t)(uintptr_t)f * 0x9E3779B97F4A7C15ull ^ (no * 0xC2B2AE3D27D4EB4Full);
	h ^= h >> 29;
	return (size_t)(h % c->hsize);
}

/* A page buffer of zeros that costs nothing until it is touched: its own
 * anonymous mapping for large pages (calloc may take them from the heap and
 * zero all of them once malloc's mmap threshold has grown, which costs a
 * page fault per 4 KiB: 5 ms for a 1 MiB page that holds a 2 KiB file). */
#define PAGE_MMAP_MIN (64u << 10)
static char *page_alloc(size_t n)
{
	if (n < PAGE_MMAP_MIN)
		return calloc(1, n);
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static void page_free(char *p, size_t n)
{
	if (!p)
		return;
	if (n < PAGE_MMAP_MIN)
		free(p);
	else
		munmap(p, n);
}

int sdc__cache_init(sdc_client *c)
{
	c->pagev = calloc(c->maxpages, sizeof *c->pagev);
	c->hsize = c->maxpages * 2 + 1;
	c->htab = calloc(c->hsize, sizeof *c->htab);
	if (!c->pagev || !c->htab)
		return -ENOMEM;
	for (size_t i = c->maxpages; i-- > 0;) {
		c->pagev[i].hnext = c->freel;
		c->freel = &c->pagev[i];
	}
	return 0;
}

void sdc__cache_free(sdc_client *c)
{
	if (c->pagev)
		for (size_t i = 0; i < c->maxpages; i++)
			page_free(c->pagev[i].data, c->psize);
	free(c->pagev);
	free(c->htab);
	while (c->buckets) {
		sdc_fbucket *b = c->buckets;
		c->buckets = b->next;
		free(b);
	}
	while (c->files)
		sdc__file_free(c, c->files);
	free(c->ftab);
	c->ftab = NULL;
	c->ftsize = 0;
}

sdc_page *sdc__page_find(sdc_client *c, sdc_file *f, uint64_t no)
{
	for (sdc_page *p = c->htab[hslot(c, f, no)]; p; p = p->hnext)
		if (p->f == f && p->no == no)
			return p;
	return NULL;
}

/* --------------------------------------------------------- LFU buckets */

static void bucket_unlink_page(sdc_client *c, sdc_page *p)
{
	sdc_fbucket *b = p->bk;
	if (p->bprev)
		p->bprev->bnext = p->bnext;
	else
		b->head = p->bnext;
	if (p->bnext)
		p->bnext->bprev = p->bprev;
	else
		b->tail = p->bprev;
	p->bprev = p->bnext = NULL;
	p->bk = NULL;
	if (!b->head) {
		if (b->prev)
			b->prev->next = b->next;
		else
			c->buckets = b->next;
		if (b->next)
			b->next->prev = b->prev;
		free(b);
	}
}

static void bucket_push(sdc_fbucket *b, sdc_page *p)
{
	p->bk = b;
	p->bprev = NULL;
	p->bnext = b->head;
	if (b->head)
		b->head->bprev = p;
	else
		b->tail = p;
	b->head = p;
}

/* The bucket for freq, created after `after` (NULL: at the front). */
static sdc_fbucket *bucket_at(sdc_client *c, sdc_fbucket *after, uint32_t freq)
{
	sdc_fbucket *nx = after ? after->next : c->buckets;
	if (nx && nx->freq == freq)
		return nx;
	sdc_fbucket *b = sdc__xcalloc(1, sizeof *b);
	b->freq = freq;
	b->prev = after;
	b->next = nx;
	if (nx)
		nx->prev = b;
	if (after)
		after->next = b;
	else
		c->buckets = b;
	return b;
}

void sdc__page_touch(sdc_client *c, sdc_page *p)
{
	sdc_fbucket *b = p->bk;
	if (p->freq == UINT32_MAX)
		return; /* saturated */
	uint32_t nf = p->freq + 1;
	/* the next bucket exists before p leaves b (which may then go) */
	sdc_fbucket *nb = bucket_at(c, b, nf);
	bucket_unlink_page(c, p);
	p->freq = nf;
	bucket_push(nb, p);
}

/* ------------------------------------------------------------ pages */

static void page_insert(sdc_client *c, sdc_page *p, sdc_file *f, uint64_t no)
{
	p->f = f;
	p->no = no;
	p->valid = 0;
	p->dlo = p->dhi = 0;
	p->pin = 0;
	p->freq = 1;
	size_t h = hslot(c, f, no);
	p->hnext = c->htab[h];
	c->htab[h] = p;
	/* freq 1 is the lowest possible: the first bucket, or a new one */
	sdc_fbucket *b = c->buckets && c->buckets->freq == 1 ? c->buckets : bucket_at(c, NULL, 1);
	bucket_push(b, p);
	p->fprev = NULL;
	p->fnext = f->pages;
	if (f->pages)
		f->pages->fprev = p;
	f->pages = p;
	f->npages++;
	c->used++;
}

void sdc__page_drop(sdc_client *c, sdc_page *p)
{
	sdc_file *f = p->f;
	size_t h = hslot(c, f, p->no);
	for (sdc_page **pp = &c->htab[h]; *pp; pp = &(*pp)->hnext)
		if (*pp == p) {
			*pp = p->hnext;
			break;
		}
	bucket_unlink_page(c, p);
	if (p->fprev)
		p->fprev->fnext = p->fnext;
	else
		f->pages = p->fnext;
	if (p->fnext)
		p->fnext->fprev = p->fprev;
	if (p->dhi > p->dlo)
		f->ndirty--;
	f->npages--;
	c->used--;
	p->f = NULL;
	p->dlo = p->dhi = 0;
	p->valid = 0;
	p->hnext = c->freel;
	c->freel = p;
}

static sdc_page *take_free(sdc_client *c)
{
	sdc_page *p = c->freel;
	if (!p)
		return NULL;
	if (!p->data) {
		p->data = page_alloc(c->psize);
		if (!p->data)
			return NULL;
		p->hw = 0;
	}
	c->freel = p->hnext;
	p->hnext = NULL;
	return p;
}

sdc_page *sdc__page_get(sdc_client *c, sdc_file *f, uint64_t no, int *err)
{
	*err = 0;
	pthread_mutex_lock(&c->lock);
	int tries = 0;
	for (;;) {
		sdc_page *p = take_free(c);
		if (p) {
			page_insert(c, p, f, no);
			p->pin = 1;
			pthread_mutex_unlock(&c->lock);
			return p;
		}
		/* a victim: lowest frequency first, least recent first */
		sdc_page *victim = NULL;
		sdc_file *locked = NULL;
		for (sdc_fbucket *b = c->buckets; b && !victim; b = b->next) {
			for (sdc_page *q = b->tail; q; q = q->bprev) {
				if (q->pin)
					continue;
				if (q->f != f) {
					if (pthread_mutex_trylock(&q->f->lock) != 0)
						continue;
					locked = q->f;
				}
				victim = q;
				break;
			}
		}
		if (!victim || ++tries > 8) {
			if (locked)
				pthread_mutex_unlock(&locked->lock);
			pthread_mutex_unlock(&c->lock);
			return NULL;
		}
		if (victim->dhi > victim->dlo) {
			/* write back its whole file first (C4), without c->lock */
			sdc_file *vf = victim->f;
			victim->pin++;
			pthread_mutex_unlock(&c->lock);
			int rc = sdc__file_writeback(vf);
			pthread_mutex_lock(&c->lock);
			victim->pin--;
			if (rc < 0) {
				if (vf == f) {
					*err = rc;
				} else if (!vf->err) {
					vf->err = rc;
				}
				if (locked)
					pthread_mutex_unlock(&locked->lock);
				if (vf == f) {
					pthread_mutex_unlock(&c->lock);
					return NULL;
				}
				continue;
			}
		}
		c->st.evictions++;
		sdc__page_drop(c, victim);
		if (locked) {
			sdc_file *lf = locked;
			/* a closed file with no pages left goes */
			pthread_mutex_unlock(&lf->lock);
			sdc__file_unref_maybe_free(c, lf);
		}
	}
}

void sdc_cache_drop_clean(sdc_client *c)
{
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->maxpages; i++) {
		sdc_page *p = &c->pagev[i];
		if (p->f && !p->pin && p->dhi <= p->dlo) {
			sdc_file *f = p->f;
			if (pthread_mutex_trylock(&f->lock) != 0)
				continue;
			sdc__page_drop(c, p);
			pthread_mutex_unlock(&f->lock);
		}
	}
	for (sdc_file *f = c->files, *nx; f; f = nx) {
		nx = f->next;
		sdc__file_unref_maybe_free(c, f);
	}
	pthread_mutex_unlock(&c->lock);
}
