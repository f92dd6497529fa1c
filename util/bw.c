/*
 * bw.c - the per-user bandwidth limiter of every front end (design and
 * invariants in bw.h). It was FTP's; SFTP and HTTP use the same one.
 */
#include <pthread.h>
#include <stdlib.h>

#include "bw.h"
#include "util.h"

#define BURST_MS SD_BW_BURST_MS

struct sd_bw_slot {
	int64_t uid;
	int refs;
	double next_ms; /* monotonic ms when the next byte may go */
};

struct sd_bw {
	int64_t rate; /* bytes per second, > 0 */
	pthread_mutex_t lock;
	int nslots;
	sd_bw_slot *slots;
};

sd_bw *sd_bw_new(int64_t rate, int nslots)
{
	sd_bw *bw = sd_xcalloc(1, sizeof *bw);
	bw->rate = rate;
	pthread_mutex_init(&bw->lock, NULL);
	if (rate > 0) {
		bw->nslots = nslots;
		bw->slots = sd_xcalloc((size_t)nslots, sizeof *bw->slots);
	}
	return bw;
}

void sd_bw_free(sd_bw *bw)
{
	if (!bw)
		return;
	pthread_mutex_destroy(&bw->lock);
	free(bw->slots);
	free(bw);
}

sd_bw_slot *sd_bw_acquire(sd_bw *bw, int64_t uid)
{
	if (bw->rate <= 0)
		return NULL;
	sd_bw_slot *free_slot = NULL, *got = NULL;
	pthread_mutex_lock(&bw->lock);
	for (int i = 0; i < bw->nslots; i++) {
		sd_bw_slot *e = &bw->slots[i];
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

void sd_bw_release(sd_bw *bw, sd_bw_slot *slot)
{
	if (!slot)
		return;
	pthread_mutex_lock(&bw->lock);
	slot->refs--;
	pthread_mutex_unlock(&bw->lock);
}

int sd_bw_on(const sd_bw *bw)
{
	return bw && bw->rate > 0;
}

int64_t sd_bw_charge(sd_bw *bw, sd_bw_slot *slot, size_t n)
{
	if (!slot)
		return 0;
	pthread_mutex_lock(&bw->lock);
	double now = (double)sd_mono_ms();
	if (slot->next_ms < now - BURST_MS)
		slot->next_ms = now - BURST_MS;
	slot->next_ms += (double)n * 1000.0 / (double)bw->rate;
	double wait = slot->next_ms - now;
	pthread_mutex_unlock(&bw->lock);
	return wait > 0 ? (int64_t)wait : 0;
}

void sd_bw_take(sd_bw *bw, sd_bw_slot *slot, size_t n)
{
	int64_t wait = sd_bw_charge(bw, slot, n);
	if (wait > 0)
		sd_sleep_ms(wait);
}

size_t sd_bw_chunk(sd_bw *bw, sd_bw_slot *slot, size_t max)
{
	if (!slot)
		return max;
	int64_t c = bw->rate / 10;
	if (c < 4096)
		c = 4096;
	return (uint64_t)c < max ? (size_t)c : max;
}
