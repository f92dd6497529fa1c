/*
 * timefmt.h - times as clients write them, for every front end and
 * storagectl (the engine's own formats are core/history.c's).
 */
#ifndef SD_TIMEFMT_H
#define SD_TIMEFMT_H

#include <stdint.h>

/* Parse an RFC 3339 time into ms since the epoch: "2026-11-21T10:00:00Z",
 * with a fraction (".5", ".123", up to 9 digits; ms kept) and an offset
 * ("Z", "+02:00", "-0530"). Also accepted: a space or "t" for "T", "z",
 * no offset (UTC), no seconds ("10:00"), '-' between the time's fields
 * (the names of /.snapshots/: "2026-11-21T10-00-00.123Z"), and a date
 * alone ("2026-11-21", its 00:00 UTC). 0, or -EINVAL. */
int sd_time_parse(const char *s, int64_t *ms);

#endif
