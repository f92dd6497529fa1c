/*
 * memstore.h - a blob store that keeps content in memory, for the unit
 * suites: it implements core/store.h without files, so readers must work
 * through pread (fd() answers -ENOTSUP), as they will on S3 or RADOS.
 *
 * Tests can reach behind the engine's back: ms_damage() changes stored
 * bytes, ms_drop() loses an object, ms_count() counts objects.
 */
#ifndef SD_MEMSTORE_H
#define SD_MEMSTORE_H

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/store.h"
#include "util/sys.h"
#include "util/util.h"

typedef struct mobj {
	struct mobj *next;
	char hex[65];
	char *data;
	size_t len;
} mobj;

typedef struct memstore {
	sd_store base;
	pthread_mutex_t m;
	pthread_mutex_t stripes[16];
	mobj *objs;
	int places, removes, opens;
} memstore;

/* A reader holds its own copy: like an open file, it survives removal. */
typedef struct memrd {
	char *data;
	size_t len;
} memrd;

static inline mobj *ms_find(memstore *ms, const char *hex)
{
	for (mobj *o = ms->objs; o; o = o->next)
		if (strcmp(o->hex, hex) == 0)
			return o;
	return NULL;
}

static inline int ms_add(memstore *ms, const char *hex, const void *buf, size_t len)
{
	pthread_mutex_lock(&ms->m);
	if (ms_find(ms, hex)) {
		pthread_mutex_unlock(&ms->m);
		return 1;
	}
	mobj *o = calloc(1, sizeof *o);
	snprintf(o->hex, sizeof o->hex, "%s", hex);
	o->data = malloc(len ? len : 1);
	memcpy(o->data, buf, len);
	o->len = len;
	o->next = ms->objs;
	ms->objs = o;
	ms->places++;
	pthread_mutex_unlock(&ms->m);
	return 0;
}

static inline int ms_place(sd_store *s, int fd, const char *tmppath, const char *hex, uint64_t size)
{
	memstore *ms = (memstore *)s;
	pthread_mutex_lock(&ms->m);
	int have = ms_find(ms, hex) != NULL;
	pthread_mutex_unlock(&ms->m);
	if (have)
		return 1;
	char *buf = malloc(size ? size : 1);
	ssize_t n = sd_sys_pread(fd, buf, size, 0);
	if (n < 0 || (uint64_t)n != size) {
		free(buf);
		return n < 0 ? (int)n : -EIO;
	}
	int r = ms_add(ms, hex, buf, size);
	free(buf);
	if (r == 0)
		unlink(tmppath); /* consumed */
	return r;
}

static inline int ms_put(sd_store *s, const void *buf, size_t len, const char *hex)
{
	return ms_add((memstore *)s, hex, buf, len);
}

static inline int ms_stat(sd_store *s, const char *hex, uint64_t *size)
{
	memstore *ms = (memstore *)s;
	pthread_mutex_lock(&ms->m);
	mobj *o = ms_find(ms, hex);
	if (o && size)
		*size = o->len;
	pthread_mutex_unlock(&ms->m);
	return o ? 0 : -ENOENT;
}

static inline int ms_open(sd_store *s, const char *hex, sd_blobrd **out)
{
	memstore *ms = (memstore *)s;
	pthread_mutex_lock(&ms->m);
	mobj *o = ms_find(ms, hex);
	memrd *r = NULL;
	if (o) {
		r = calloc(1, sizeof *r);
		r->data = malloc(o->len ? o->len : 1);
		memcpy(r->data, o->data, o->len);
		r->len = o->len;
		ms->opens++;
	}
	pthread_mutex_unlock(&ms->m);
	if (!r)
		return -ENOENT;
	*out = (sd_blobrd *)r;
	return 0;
}

static inline ssize_t ms_pread(sd_blobrd *b, void *buf, size_t len, uint64_t off)
{
	memrd *r = (memrd *)b;
	if (off >= r->len)
		return 0;
	size_t n = r->len - off < len ? r->len - off : len;
	memcpy(buf, r->data + off, n);
	return (ssize_t)n;
}

static inline int ms_fd(sd_blobrd *b, int *fd, uint64_t *base)
{
	(void)b;
	(void)fd;
	(void)base;
	return -ENOTSUP;
}

static inline void ms_close(sd_blobrd *b)
{
	memrd *r = (memrd *)b;
	if (!r)
		return;
	free(r->data);
	free(r);
}

static inline int ms_remove(sd_store *s, const char *hex)
{
	memstore *ms = (memstore *)s;
	pthread_mutex_lock(&ms->m);
	int r = -ENOENT;
	for (mobj **pp = &ms->objs; *pp; pp = &(*pp)->next) {
		if (strcmp((*pp)->hex, hex) == 0) {
			mobj *o = *pp;
			*pp = o->next;
			free(o->data);
			free(o);
			ms->removes++;
			r = 0;
			break;
		}
	}
	pthread_mutex_unlock(&ms->m);
	return r;
}

static inline int ms_discard(sd_store *s, const char *name)
{
	(void)s;
	(void)name;
	return -ENOENT;
}

static inline int ms_walk(sd_store *s, sd_store_walk_cb cb, void *arg)
{
	memstore *ms = (memstore *)s;
	/* snapshot first: the callback calls back into the store */
	pthread_mutex_lock(&ms->m);
	int n = 0;
	for (mobj *o = ms->objs; o; o = o->next)
		n++;
	char (*hexes)[65] = calloc((size_t)n + 1, 65);
	int i = 0;
	for (mobj *o = ms->objs; o; o = o->next)
		memcpy(hexes[i++], o->hex, 65);
	pthread_mutex_unlock(&ms->m);
	for (i = 0; i < n; i++)
		if (cb(arg, hexes[i], hexes[i]))
			break;
	free(hexes);
	return 0;
}

static inline int ms_stripe(const char *hex)
{
	char ch = hex[0];
	return ch >= 'a' ? ch - 'a' + 10 : ch - '0';
}

static inline int ms_lock(sd_store *s, const char *hex)
{
	memstore *ms = (memstore *)s;
	int k = ms_stripe(hex) & 15;
	pthread_mutex_lock(&ms->stripes[k]);
	return k;
}

static inline void ms_unlock(sd_store *s, int token)
{
	memstore *ms = (memstore *)s;
	pthread_mutex_unlock(&ms->stripes[token]);
}

static inline int ms_space(sd_store *s, int *pct, uint64_t *total, uint64_t *avail,
			   uint64_t *bfree)
{
	(void)s;
	if (pct)
		*pct = 10;
	if (total)
		*total = 1ull << 30;
	if (avail)
		*avail = 9ull << 26;
	if (bfree)
		*bfree = 10ull << 26; /* a reserve, like ext4's 5%: bfree > avail */
	return 0;
}

static inline void ms_destroy(sd_store *s)
{
	memstore *ms = (memstore *)s;
	mobj *o = ms->objs;
	while (o) {
		mobj *n = o->next;
		free(o->data);
		free(o);
		o = n;
	}
	pthread_mutex_destroy(&ms->m);
	for (int i = 0; i < 16; i++)
		pthread_mutex_destroy(&ms->stripes[i]);
	free(ms);
}

static const sd_store_ops memstore_ops = {
	.name = "memory",
	.place = ms_place,
	.put = ms_put,
	.stat = ms_stat,
	.open = ms_open,
	.pread = ms_pread,
	.fd = ms_fd,
	.close = ms_close,
	.remove = ms_remove,
	.discard = ms_discard,
	.walk = ms_walk,
	.lock = ms_lock,
	.unlock = ms_unlock,
	.space = ms_space,
	.destroy = ms_destroy,
};

static inline memstore *memstore_new(void)
{
	memstore *ms = calloc(1, sizeof *ms);
	ms->base.ops = &memstore_ops;
	pthread_mutex_init(&ms->m, NULL);
	for (int i = 0; i < 16; i++)
		pthread_mutex_init(&ms->stripes[i], NULL);
	return ms;
}

/* Flip a byte of stored content (damage behind the engine's back). */
static inline int ms_damage(memstore *ms, const char *hex, size_t off)
{
	pthread_mutex_lock(&ms->m);
	mobj *o = ms_find(ms, hex);
	int r = -ENOENT;
	if (o && off < o->len) {
		o->data[off] ^= 0x55;
		r = 0;
	}
	pthread_mutex_unlock(&ms->m);
	return r;
}

/* Cut stored content short. */
static inline int ms_truncate(memstore *ms, const char *hex, size_t len)
{
	pthread_mutex_lock(&ms->m);
	mobj *o = ms_find(ms, hex);
	int r = -ENOENT;
	if (o && len < o->len) {
		o->len = len;
		r = 0;
	}
	pthread_mutex_unlock(&ms->m);
	return r;
}

static inline int ms_count(memstore *ms)
{
	pthread_mutex_lock(&ms->m);
	int n = 0;
	for (mobj *o = ms->objs; o; o = o->next)
		n++;
	pthread_mutex_unlock(&ms->m);
	return n;
}

#endif
