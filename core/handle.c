/*
 * handle.c - the engine's bounded table of open files (handles), shared by
 * every front end: SFTP handles, the HTTP handle API, WebDAV and FUSE all
 * end up here.
 *
 * A handle id is (generation << 32 | slot + 1): never 0, and a slot's
 * generation starts random and moves forward on every reuse (I7), so a
 * stale or forged id never reaches another open file.
 *
 * Owners:
 *   - a SESSION handle belongs to the session that opened it: any other
 *     session gets -EBADF, and closing the session abandons it (SFTP);
 *   - a DETACHED handle (SD_O_DETACHED) belongs to the user: any session
 *     of that user may use it, it outlives the session that opened it, and
 *     one unused for handle_idle_timeout is abandoned by the cleaner with
 *     a journal row (the HTTP handle API, whose requests each have their
 *     own session). A user holds at most max_handles_per_user of them.
 *
 * Use: a handle in use is BUSY. sd__handle_get marks it busy and
 * sd__handle_put releases it; a second user of the same handle (two HTTP
 * requests at once) waits for the first, so an sd_file is never used by
 * two threads at once, and no table lock is held while it does I/O. take
 * (close, abandon) and the reaper wait for, or skip, busy handles.
 *
 *   FREE --add--> IDLE --get--> BUSY --put--> IDLE --take/reap--> FREE
 *
 * The table is max_handles slots, allocated at start; free slots form a
 * list. One mutex and one condition variable guard it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "log.h"

typedef struct hslot {
	uint32_t gen;
	int next_free;   /* index, -1 ends the list */
	int used;        /* 0: free */
	int busy;
	int detached;
	sd_session *s;   /* session handles: the owner */
	int64_t uid;     /* the user (both kinds) */
	int64_t last_ms; /* last use, engine clock (detached handles) */
	sd_file *f;
} hslot;

struct sd_htable {
	pthread_mutex_t m;
	pthread_cond_t cv; /* a handle stopped being busy */
	int max;
	int free_head;
	int used;
	hslot *slots;
};

int sd__handles_init(sd_core *c, int max)
{
	sd_htable *t = sd_xcalloc(1, sizeof *t);
	pthread_mutex_init(&t->m, NULL);
	pthread_cond_init(&t->cv, NULL);
	t->max = max;
	t->slots = sd_xcalloc((size_t)max, sizeof *t->slots);
	uint32_t seed[1];
	if (sd_random_bytes(seed, sizeof seed) < 0)
		seed[0] = (uint32_t)sd_mono_ms(); /* not a secret: ids are bound to owners */
	for (int i = 0; i < max; i++) {
		t->slots[i].gen = seed[0] + (uint32_t)i * 2654435761u;
		t->slots[i].next_free = i + 1 < max ? i + 1 : -1;
	}
	t->free_head = 0;
	c->handles = t;
	return 0;
}

void sd__handles_free(sd_core *c)
{
	sd_htable *t = c->handles;
	if (!t)
		return;
	for (int i = 0; i < t->max; i++)
		if (t->slots[i].used)
			sd__file_abandon(t->slots[i].f);
	pthread_mutex_destroy(&t->m);
	pthread_cond_destroy(&t->cv);
	free(t->slots);
	free(t);
	c->handles = NULL;
}

static sd_handle make_id(int idx, uint32_t gen)
{
	return ((uint64_t)gen << 32) | (uint64_t)(uint32_t)(idx + 1);
}

int sd__handle_add(sd_core *c, sd_session *s, int64_t uid, int detached, sd_file *f,
		   sd_handle *out)
{
	sd_htable *t = c->handles;
	pthread_mutex_lock(&t->m);
	if (detached) {
		int mine = 0;
		for (int i = 0; i < t->max; i++)
			mine += t->slots[i].used && t->slots[i].detached && t->slots[i].uid == uid;
		if (mine >= c->conf->max_handles_per_user) {
			pthread_mutex_unlock(&t->m);
			return -EMFILE;
		}
	}
	int idx = t->free_head;
	if (idx < 0) {
		pthread_mutex_unlock(&t->m);
		return -EMFILE;
	}
	hslot *h = &t->slots[idx];
	t->free_head = h->next_free;
	h->gen++;
	h->used = 1;
	h->busy = 0;
	h->detached = detached;
	h->s = detached ? NULL : s;
	h->uid = uid;
	h->last_ms = sd__now_ms(c);
	h->f = f;
	t->used++;
	*out = make_id(idx, h->gen);
	pthread_mutex_unlock(&t->m);
	if (!detached)
		sd__session_handles_add(s, 1);
	return 0;
}

/* The slot of id if it is live and s (or, detached, s's user uid) may use
 * it; lock held. */
static hslot *find(sd_htable *t, sd_session *s, int64_t uid, sd_handle id, int *idx)
{
	uint64_t low = id & 0xffffffffu;
	if (low == 0 || low > (uint64_t)t->max)
		return NULL;
	int i = (int)low - 1;
	hslot *h = &t->slots[i];
	if (!h->used || h->gen != (uint32_t)(id >> 32))
		return NULL;
	if (h->detached ? h->uid != uid : h->s != s)
		return NULL;
	*idx = i;
	return h;
}

int sd__handle_get(sd_core *c, sd_session *s, int64_t uid, sd_handle id, sd_file **f)
{
	sd_htable *t = c->handles;
	int idx;
	pthread_mutex_lock(&t->m);
	hslot *h;
	/* wait while another thread uses it; it may go away meanwhile */
	while ((h = find(t, s, uid, id, &idx)) && h->busy)
		pthread_cond_wait(&t->cv, &t->m);
	if (h) {
		h->busy = 1;
		h->last_ms = sd__now_ms(c);
		*f = h->f;
	}
	pthread_mutex_unlock(&t->m);
	return h ? 0 : -EBADF;
}

void sd__handle_put(sd_core *c, sd_handle id)
{
	sd_htable *t = c->handles;
	pthread_mutex_lock(&t->m);
	hslot *h = &t->slots[(id & 0xffffffffu) - 1];
	SD_ASSERT(h->used && h->busy && h->gen == (uint32_t)(id >> 32));
	h->busy = 0;
	h->last_ms = sd__now_ms(c);
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->m);
}

int sd__handle_detached(sd_core *c, sd_handle id)
{
	sd_htable *t = c->handles;
	pthread_mutex_lock(&t->m);
	hslot *h = &t->slots[(id & 0xffffffffu) - 1];
	SD_ASSERT(h->used && h->busy && h->gen == (uint32_t)(id >> 32));
	int d = h->detached;
	pthread_mutex_unlock(&t->m);
	return d;
}

/* Free slot idx; lock held. */
static void free_slot(sd_htable *t, int idx)
{
	hslot *h = &t->slots[idx];
	h->used = 0;
	h->busy = 0;
	h->s = NULL;
	h->f = NULL;
	h->next_free = t->free_head;
	t->free_head = idx;
	t->used--;
	SD_ASSERT(t->used >= 0); /* I7 */
}

int sd__handle_take(sd_core *c, sd_session *s, int64_t uid, sd_handle id, sd_file **f)
{
	sd_htable *t = c->handles;
	int idx;
	pthread_mutex_lock(&t->m);
	hslot *h;
	while ((h = find(t, s, uid, id, &idx)) && h->busy)
		pthread_cond_wait(&t->cv, &t->m);
	int detached = h ? h->detached : 0;
	if (h) {
		*f = h->f;
		free_slot(t, idx);
		pthread_cond_broadcast(&t->cv); /* waiters find it gone */
	}
	pthread_mutex_unlock(&t->m);
	if (!h)
		return -EBADF;
	if (!detached)
		sd__session_handles_add(s, -1);
	return 0;
}

/* Take out every slot of session s, or (s NULL) every detached handle not
 * in use since before cutoff; returns their files. */
static sd_file **collect(sd_htable *t, sd_session *s, int64_t cutoff, size_t *n)
{
	sd_file **fs = NULL;
	size_t cap = 0;
	*n = 0;
	pthread_mutex_lock(&t->m);
	for (int i = 0; i < t->max; i++) {
		hslot *h = &t->slots[i];
		int match = s ? (h->used && !h->detached && h->s == s)
			      : (h->used && h->detached && !h->busy && h->last_ms < cutoff);
		if (!match)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			fs = sd_xrealloc(fs, cap * sizeof *fs);
		}
		fs[(*n)++] = h->f;
		free_slot(t, i);
	}
	pthread_mutex_unlock(&t->m);
	return fs;
}

void sd__handles_drop_session(sd_core *c, sd_session *s)
{
	size_t n;
	sd_file **fs = collect(c->handles, s, 0, &n);
	for (size_t i = 0; i < n; i++) {
		sd__session_handles_add(s, -1);
		sd__file_abandon(fs[i]);
	}
	free(fs);
}

int sd__handles_reap(sd_core *c)
{
	int64_t now = sd__now_ms(c);
	size_t n;
	sd_file **fs = collect(c->handles, NULL, now - c->conf->handle_idle_timeout, &n);
	for (size_t i = 0; i < n; i++) {
		char detail[64];
		snprintf(detail, sizeof detail, "idle_ms=%lld", (long long)c->conf->handle_idle_timeout);
		const char *path = sd__file_path(fs[i]);
		const char *user = sd__file_user(fs[i]);
		sd_log(SD_LOG_INFO, "handle", "event=handle_expired user=%s path=\"%s\"", user, path);
		sd_dbc *d = sd_db_write_begin(c->db);
		if (d) {
			int r = sd__journal(d, now, user, "handle_expired", path, detail);
			sd_db_write_end(c->db, d, r == 0);
		}
		sd__file_abandon(fs[i]);
	}
	free(fs);
	return (int)n;
}
