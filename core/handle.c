/*
 * handle.c - the engine's bounded table of open files (handles), shared by
 * every front end: SFTP handles, the HTTP handle API, WebDAV and FUSE all
 * end up here.
 *
 * A handle id is (generation << 32 | slot + 1): never 0, and a slot's
 * generation starts random and moves forward on every reuse (I7), so a
 * stale or forged id never reaches another open file. A handle belongs to
 * the session that opened it: any other session gets -EBADF, and closing
 * the session abandons it.
 *
 * The table is max_handles slots, allocated at start; free slots form a
 * list. One mutex guards the table; an sd_file is used only by its
 * session's thread (storaged.h), so no lock is held while it does I/O, and
 * a handle looked up with sd__handle_get stays valid until that same
 * thread closes it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct hslot {
	uint32_t gen;
	int next_free; /* index, -1 ends the list */
	sd_session *s; /* NULL: free */
	sd_file *f;
} hslot;

struct sd_htable {
	pthread_mutex_t m;
	int max;
	int free_head;
	int used;
	hslot *slots;
};

int sd__handles_init(sd_core *c, int max)
{
	sd_htable *t = sd_xcalloc(1, sizeof *t);
	pthread_mutex_init(&t->m, NULL);
	t->max = max;
	t->slots = sd_xcalloc((size_t)max, sizeof *t->slots);
	uint32_t seed[1];
	if (sd_random_bytes(seed, sizeof seed) < 0)
		seed[0] = (uint32_t)sd_mono_ms(); /* not a secret: ids are bound to sessions */
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
		if (t->slots[i].s)
			sd__file_abandon(t->slots[i].f);
	pthread_mutex_destroy(&t->m);
	free(t->slots);
	free(t);
	c->handles = NULL;
}

static sd_handle make_id(int idx, uint32_t gen)
{
	return ((uint64_t)gen << 32) | (uint64_t)(uint32_t)(idx + 1);
}

int sd__handle_add(sd_core *c, sd_session *s, sd_file *f, sd_handle *out)
{
	sd_htable *t = c->handles;
	pthread_mutex_lock(&t->m);
	int idx = t->free_head;
	if (idx < 0) {
		pthread_mutex_unlock(&t->m);
		return -EMFILE;
	}
	hslot *h = &t->slots[idx];
	t->free_head = h->next_free;
	h->gen++;
	h->s = s;
	h->f = f;
	t->used++;
	*out = make_id(idx, h->gen);
	pthread_mutex_unlock(&t->m);
	sd__session_handles_add(s, 1);
	return 0;
}

/* The slot of id if it is live and belongs to s; lock held. */
static hslot *find(sd_htable *t, sd_session *s, sd_handle id, int *idx)
{
	uint64_t low = id & 0xffffffffu;
	if (low == 0 || low > (uint64_t)t->max)
		return NULL;
	int i = (int)low - 1;
	hslot *h = &t->slots[i];
	if (!h->s || h->s != s || h->gen != (uint32_t)(id >> 32))
		return NULL;
	*idx = i;
	return h;
}

int sd__handle_get(sd_core *c, sd_session *s, sd_handle id, sd_file **f)
{
	sd_htable *t = c->handles;
	int idx;
	pthread_mutex_lock(&t->m);
	hslot *h = find(t, s, id, &idx);
	if (h)
		*f = h->f;
	pthread_mutex_unlock(&t->m);
	return h ? 0 : -EBADF;
}

/* Free slot idx; lock held. */
static void free_slot(sd_htable *t, int idx)
{
	hslot *h = &t->slots[idx];
	h->s = NULL;
	h->f = NULL;
	h->next_free = t->free_head;
	t->free_head = idx;
	t->used--;
	SD_ASSERT(t->used >= 0); /* I7 */
}

int sd__handle_take(sd_core *c, sd_session *s, sd_handle id, sd_file **f)
{
	sd_htable *t = c->handles;
	int idx;
	pthread_mutex_lock(&t->m);
	hslot *h = find(t, s, id, &idx);
	if (h) {
		*f = h->f;
		free_slot(t, idx);
	}
	pthread_mutex_unlock(&t->m);
	if (!h)
		return -EBADF;
	sd__session_handles_add(s, -1);
	return 0;
}

void sd__handles_drop_session(sd_core *c, sd_session *s)
{
	sd_htable *t = c->handles;
	sd_file **fs = NULL;
	size_t n = 0, cap = 0;
	pthread_mutex_lock(&t->m);
	for (int i = 0; i < t->max; i++) {
		if (t->slots[i].s != s)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			fs = sd_xrealloc(fs, cap * sizeof *fs);
		}
		fs[n++] = t->slots[i].f;
		free_slot(t, i);
	}
	pthread_mutex_unlock(&t->m);
	for (size_t i = 0; i < n; i++) {
		sd__session_handles_add(s, -1);
		sd__file_abandon(fs[i]);
	}
	free(fs);
}
