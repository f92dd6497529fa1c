/*
 * throttle.c - bandwidth_limit for HTTP: each user's requests draw from one
 * budget of bytes per second (util/bw.c, the limiter FTP and SFTP use).
 *
 * With a limit set, module.c runs libmicrohttpd with a thread per
 * connection, so a request over its user's budget simply sleeps, holding
 * up no other connection (FTP and SFTP sessions have a thread each too).
 * Suspending connections from a shared event loop instead was tried and
 * dropped: libmicrohttpd 0.9.75 aborts under epoll ("Resumed connection
 * was already in EREADY set") and hangs under poll when connections are
 * suspended from content readers and resumed from another thread.
 *
 * Uploads are charged as their chunks arrive (module.c); downloads as
 * their bodies are read: a file (a body read through the engine's reader
 * instead of sendfile, download.c), byte ranges and handle reads.
 *
 * Invariant: a request holds its user's slot from its first charged byte
 * to its completion (sd__http_throttle_release), and sleeps only in its
 * own connection's thread, never under a lock.
 */
#include <stdlib.h>

#include "http.h"

struct http_throttle {
	sd_bw *bw;
};

http_throttle *sd__http_throttle_new(int64_t rate, int nslots)
{
	if (rate <= 0)
		return NULL;
	http_throttle *t = sd_xcalloc(1, sizeof *t);
	t->bw = sd_bw_new(rate, nslots);
	return t;
}

void sd__http_throttle_free(http_throttle *t)
{
	if (!t)
		return;
	sd_bw_free(t->bw);
	free(t);
}

/* The user's slot of r, taken on first use (released at completion). */
static sd_bw_slot *slot_of(hreq *r)
{
	http_throttle *t = r->srv->throttle;
	if (!t || !r->who.uid)
		return NULL;
	if (!r->bws)
		r->bws = sd_bw_acquire(t->bw, r->who.uid);
	return r->bws;
}

void sd__http_throttle_release(hreq *r)
{
	if (r->bws && r->srv->throttle)
		sd_bw_release(r->srv->throttle->bw, r->bws);
	r->bws = NULL;
}

void sd__http_throttle(hreq *r, size_t n)
{
	sd_bw_slot *sl = slot_of(r);
	if (sl)
		sd_bw_take(r->srv->throttle->bw, sl, n);
}

int sd__http_throttled(hreq *r)
{
	return slot_of(r) != NULL;
}

size_t sd__http_throttle_chunk(hreq *r, size_t max)
{
	sd_bw_slot *sl = slot_of(r);
	return sl ? sd_bw_chunk(r->srv->throttle->bw, sl, max) : max;
}
