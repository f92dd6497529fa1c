/*
 * handles.c - the SFTP handle table of one session: SFTP handle strings ->
 * core handles (files) and directory cursors (directories).
 *
 * The table grows to handles_per_session slots (the module's own limit,
 * given in limits@openssh.com): it starts with HANDLES_FIRST and doubles
 * when all are in use, so an idle session holds a few hundred bytes of it,
 * not handles_per_session slots. Files additionally count against the engine's
 * handle table, which may refuse with -EMFILE. Directory listings stay
 * here: a directory slot is a path and the last name sent, and READDIR asks
 * the engine for the next page after that name.
 *
 * Invariants
 *  1. An SFTP handle is 8 bytes: slot index and generation. Generations
 *     start random (sd_random_bytes; a session that cannot get randomness
 *     is refused) and move on at every reuse, so a stale or forged handle
 *     never reaches another slot's object; the core checks its own handle
 *     ids again (they belong to this session only).
 *  2. When serving ends for any reason, every open file is abandoned: a
 *     client that vanishes (or never sent CLOSE) leaves the previous
 *     version, and a file it was creating does not appear (the engine
 *     makes a created file visible only at its first commit).
 *
 * Slot states (one function per transition):
 *
 *   H_FREE --op_open: handle_alloc + core handle_open--> H_FILE
 *   H_FILE --copy-data of a whole file: core handle abandoned, fh = 0-->
 *          H_FILE (fh = 0) --handle_file(): reopened on the next use--> H_FILE
 *   H_FREE --op_opendir: handle_alloc--> H_DIR (last name sent, eof)
 *   H_FILE/H_DIR --handle_close(commit)--> H_FREE
 *   H_FILE (writable) --CLOSE on the commit pool (async.c)--> H_CLOSING
 *          --commit done, reply sent (sd__sftp_async_reap)--> H_FREE
 *   any --handles_drop() at session end (files abandoned)--> H_FREE
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "util.h"

#define HANDLES_FIRST 8 /* slots a session starts with */

/* Give slots [from, to) random generations (they are H_FREE). */
static int seed_slots(fx_sess *s, int from, int to)
{
	uint32_t gen[64];
	int i, rc = 0;
	for (i = from; i < to && rc == 0; i++) {
		if ((i - from) % 64 == 0)
			rc = sd_random_bytes(gen, sizeof(gen));
		s->h[i].gen = gen[(i - from) % 64];
	}
	return rc;
}

int sd__sftp_handles_init(fx_sess *s, int n)
{
	if (n < 1)
		return -EINVAL;
	s->hmax = n;
	s->nh = n < HANDLES_FIRST ? n : HANDLES_FIRST;
	s->h = sd_xcalloc((size_t)s->nh, sizeof(*s->h));
	return seed_slots(s, 0, s->nh);
}

fx_handle *sd__sftp_handle_alloc(fx_sess *s, int *idx)
{
	int i;
	if (s->nh < s->hmax) {
		for (i = 0; i < s->nh && s->h[i].state != H_FREE; i++)
			;
		if (i == s->nh) {
			/* all in use: double the table (slots are named by index,
			 * so no handle string changes) */
			int n = s->nh * 2 < s->hmax ? s->nh * 2 : s->hmax;
			s->h = sd_xrealloc(s->h, (size_t)n * sizeof(*s->h));
			memset(s->h + s->nh, 0, (size_t)(n - s->nh) * sizeof(*s->h));
			if (seed_slots(s, s->nh, n) < 0) {
				n = s->nh; /* no randomness: stay at the size we have */
			}
			s->nh = n;
		}
	}
	for (i = 0; i < s->nh; i++) {
		if (s->h[i].state == H_FREE) {
			fx_handle *h = &s->h[i];
			uint32_t gen = h->gen + 1;
			memset(h, 0, sizeof(*h));
			h->gen = gen;
			h->t0 = sd_mono_ms();
			*idx = i;
			return h;
		}
	}
	return NULL;
}

int sd__sftp_handle_reply(fx_sess *s, uint32_t id, int idx)
{
	fx_wr w;
	unsigned char hb[8];
	put_be32(hb, (uint32_t)idx);
	put_be32(hb + 4, s->h[idx].gen);
	sd__sftp_wr_begin(&w, s, SSH_FXP_HANDLE, id);
	sd__sftp_wr_str(&w, hb, sizeof(hb));
	return sd__sftp_send(s, &w, id);
}

fx_handle *sd__sftp_handle_get(fx_sess *s, fx_rd *r)
{
	uint32_t n, idx, gen;
	const unsigned char *p = sd__sftp_rd_str(r, &n);
	if (r->bad || n != 8)
		return NULL;
	idx = be32(p);
	gen = be32(p + 4);
	if (idx >= (uint32_t)s->nh || s->h[idx].state == H_FREE || s->h[idx].state == H_CLOSING ||
	    s->h[idx].gen != gen)
		return NULL;
	return &s->h[idx];
}

/* After copy-data the file exists, so CREAT, TRUNC and EXCL are dropped
 * (CREAT stays harmless when the copy failed and the create was lost). */
int sd__sftp_handle_file(fx_sess *s, fx_handle *h)
{
	unsigned fl = h->oflags & ~(SD_O_TRUNC | SD_O_EXCL);
	if (h->fh != 0)
		return 0;
	return s->x->api->handle_open(s->x->sess, h->path, fl, h->omode, &h->fh, NULL);
}

void sd__sftp_xfer_line(fx_sess *s, fx_handle *h, int rc, int abandon)
{
	const sd_core_api *api = s->x->api;
	for (int in = 1; in >= 0; in--) {
		uint64_t n = in ? h->nwritten : h->nread;
		if (!n || (in && !h->writable))
			continue;
		sd_xfer_rec x = {.proto = "sftp", .user = s->x->user, .addr = s->x->addr,
				 .cmd = in ? "write" : "read", .path = h->path, .incoming = in,
				 .bytes = n, .ms = sd_mono_ms() - h->t0,
				 .result = abandon ? "aborted" : rc < 0 && in ? "failed" : "ok",
				 .reason = abandon ? "session ended before CLOSE"
					   : rc < 0 && in ? api->strerror(rc) : NULL};
		api->log_transfer(s->x->core, &x);
	}
}

int sd__sftp_handle_close(fx_sess *s, fx_handle *h, int abandon)
{
	const sd_core_api *api = s->x->api;
	int rc = 0;
	if (h->state == H_FILE && h->fh != 0) {
		if (abandon)
			api->handle_abandon(s->x->sess, h->fh);
		else
			rc = api->handle_close(s->x->sess, h->fh);
	}
	if (h->state == H_FILE && h->path)
		sd__sftp_xfer_line(s, h, rc, abandon);
	free(h->path);
	free(h->last);
	h->path = NULL;
	h->last = NULL;
	h->fh = 0;
	h->state = H_FREE;
	return rc;
}

void sd__sftp_handles_drop(fx_sess *s)
{
	int i, n = 0;
	for (i = 0; i < s->nh; i++) {
		if (s->h[i].state != H_FREE) {
			if (s->h[i].state == H_FILE && s->h[i].writable && s->h[i].fh != 0)
				n++;
			sd__sftp_handle_close(s, &s->h[i], 1);
		}
	}
	if (n > 0)
		s->x->api->log(s->x->core, SD_LOG_INFO, "sftp",
			       "event=abandon user=%s addr=%s files=%d", s->x->user, s->x->addr, n);
	free(s->h);
	s->h = NULL;
	s->nh = 0;
}

char *sd__sftp_canonical(fx_sess *s, const char *path, int *err)
{
	char out[SD_PATH_MAX + 1];
	int rc = s->x->api->resolve(s->x->sess, path, strlen(path), out, sizeof(out));
	if (rc < 0) {
		*err = rc;
		return NULL;
	}
	return sd_xstrdup(out);
}
