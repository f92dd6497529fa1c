/*
 * ftp_bw.c - the per-user bandwidth limiter (bandwidth_limit).
 *
 * One slot per user with a live session, shared by all that user's
 * sessions and transfers (uploads and downloads alike). A slot holds the
 * monotonic time at which the user's next byte may go; each transfer
 * chunk pushes it forward by len / rate and sleeps until then. After an
 * idle spell at most BURST_MS of credit is kept.
 *
 * Invariants:
 *  1. bw->lock guards every slot; sleeping happens outside the lock.
 *  2. A slot with refs == 0 is free; nslots = max_clients, so there is
 *     always a slot for a new user (each live user holds a connection).
 */
#include "ftp.h"

#include <stdlib.h>

#define BURST_MS 200

struct ftp_bw_slot {
	int64_t uid;
	int refs;
	double next_ms; /* monotonic ms when the next byte may go */
};

struct ftp_bw {
	int64_t rate; /* bytes per second, > 0 */
	pthread_mutex_t lock;
	int nslots;
	ftp_bw_slot *slots;
};

ftp_bw *ftp_bw_new(int64_t rate, int nslots)
{
	ftp_bw *bw = sd_xcalloc(1, sizeof *bw);
	bw->rate = rate;
	pthread_mutex_init(&bw->lock, NULL);
	if (rate > 0) {
		bw->nslots = nslots;
		bw->slots = sd_xcalloc((size_t)nslots, sizeof *bw->slots);
	}
	return bw;
}

void ftp_bw_free(ftp_bw *bw)
{
	if (!bw)
		return;
	pthread_mutex_destroy(&bw->lock);
	free(bw->slots);
	free(bw);
}

ftp_bw_slot *ftp_bw_acquire(ftp_bw *bw, int64_t uid)
{
	if (bw->rate <= 0)
		return NULL;
	ftp_bw_slot *free_slot = NULL, *got = NULL;
	pthread_mutex_lock(&bw->lock);
	for (int i = 0; i < bw->nslots; i++) {
		ftp_bw_slot *e = &bw->slots[i];
		if (e->refs > 0 && e->uid == uid) {
			got = e;
			break;
		}
		if (e->refs == 0 && !free_slot)
			free_slot = e;
	}
	if (!got && free_slot) {
		got = free_slot;
		got->uid = uid;
		got->next_ms = 0;
	}
	if (got)
		got->refs++;
	pthread_mutex_unlock(&bw->lock);
	return got;
}

void ftp_bw_release(ftp_bw *bw, ftp_bw_slot *slot)
{
	if (!slot)
		return;
	pthread_mutex_lock(&bw->lock);
	slot->refs--;
	pthread_mutex_unlock(&bw->lock);
}

void ftp_bw_take(ftp_bw *bw, ftp_bw_slot *slot, size_t n)
{
	if (!slot)
		return;
	pthread_mutex_lock(&bw->lock);
	double now = (double)sd_mono_ms();
	if (slot->next_ms < now - BURST_MS)
		slot->next_ms = now - BURST_MS;
	slot->next_ms += (double)n * 1000.0 / (double)bw->rate;
	double wait = slot->next_ms - now;
	pthread_mutex_unlock(&bw->lock);
	if (wait > 0)
		sd_sleep_ms((int64_t)wait);
}

size_t ftp_bw_chunk(ftp_bw *bw, ftp_bw_slot *slot, size_t max)
{
	if (!slot)
		return max;
	int64_t c = bw->rate / 10;
	if (c < 4096)
		c = 4096;
	return (uint64_t)c < max ? (size_t)c : max;
}
