/*
 * bw.h - the per-user bandwidth limiter every front end uses
 * (bandwidth_limit of [ftp], [sftp] and [http]).
 *
 * One slot per user with a live session or request, shared by all that
 * user's sessions and transfers on one front end (uploads and downloads
 * alike): every transfer of the user draws from the same budget of `rate`
 * bytes per second. A slot holds the monotonic time at which the user's
 * next byte may go; each chunk pushes it forward by len / rate. After an
 * idle spell at most SD_BW_BURST_MS of credit is kept.
 *
 * Invariants:
 *  1. bw->lock guards every slot; nobody sleeps or waits under it.
 *  2. A slot with refs == 0 is free; with nslots = the front end's own
 *     limit of sessions or connections, there is a slot for every user
 *     that can be connected (acquire returns NULL only when the limiter
 *     is off, or, defensively, when the table is full: unlimited then).
 */
#ifndef SD_BW_H
#define SD_BW_H

#include <stddef.h>
#include <stdint.h>

#define SD_BW_BURST_MS 200

typedef struct sd_bw sd_bw;
typedef struct sd_bw_slot sd_bw_slot;

/* rate 0: a limiter that never waits (acquire returns NULL). */
sd_bw *sd_bw_new(int64_t rate, int nslots);
void sd_bw_free(sd_bw *bw);
/* Is the limiter on (rate > 0)? */
int sd_bw_on(const sd_bw *bw);
/* The slot of user uid (shared by the user's sessions), or NULL when
 * unlimited. Release once per acquire. */
sd_bw_slot *sd_bw_acquire(sd_bw *bw, int64_t uid);
void sd_bw_release(sd_bw *bw, sd_bw_slot *slot);
/* Account n bytes; returns how many ms the caller must wait before moving
 * more (0: none). No-op (0) for a NULL slot. For callers that cannot
 * sleep (an event loop: they suspend the connection instead). */
int64_t sd_bw_charge(sd_bw *bw, sd_bw_slot *slot, size_t n);
/* sd_bw_charge, then sleep that long (a thread of its own). */
void sd_bw_take(sd_bw *bw, sd_bw_slot *slot, size_t n);
/* The chunk size a transfer loop should use (max, or about 1/10 s of the
 * rate when limited), so that waits stay short and smooth. */
size_t sd_bw_chunk(sd_bw *bw, sd_bw_slot *slot, size_t max);

#endif
