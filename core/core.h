/*
 * core.h - the engine's lifecycle and the calls that only the daemon and
 * storagectl make (front ends use sd_core_api from storaged.h).
 */
#ifndef SD_CORE_H
#define SD_CORE_H

#include <stdint.h>
#include "conf.h"
#include "storaged.h"

#define SD_CORE_RECOVER 0x1u /* start-up recovery: temp sweep, store report */
#define SD_CORE_THREADS 0x2u /* run the cleaner and checkpoint thread */

/* Open data_dir (creating blobs/, tmp/ and the database), migrate the
 * schema, start the writer pool. conf must outlive the core. Returns NULL
 * with a one-line reason in err (unwritable data dir, database newer than
 * this binary, ...). */
sd_core *sd_core_open(const sd_conf *conf, unsigned flags, char *err, size_t errlen);
/* The same on a blob store the caller made (store.h); the core owns it
 * from here on, also when the open fails. For tests and new back ends. */
struct sd_store;
sd_core *sd_core_open_store(const sd_conf *conf, unsigned flags, struct sd_store *store,
			    char *err, size_t errlen);
/* Wait for in-flight commits, stop threads, checkpoint the WAL, close.
 * Every session must have been closed first (front ends are stopped). */
void sd_core_close(sd_core *c);
/* The function table handed to modules (static, never NULL). */
const sd_core_api *sd_core_api_table(void);

/* -- fsck ------------------------------------------------------------- */
typedef struct sd_fsck_report {
	int64_t blobs_checked;
	int64_t bad_hash;       /* file content does not match its address */
	int64_t missing;        /* row without file */
	int64_t orphans;        /* stray or damaged file without row */
	int64_t adoptable;      /* file without row whose content matches its
				 * name: a crash between rename and row left it;
				 * harmless, adopted by --repair or recovery */
	int64_t bad_refs;       /* refs column != counted references */
	int64_t bad_used;       /* users.used_bytes != sum of live files */
	int64_t repaired;
} sd_fsck_report;
/* Re-hash every blob, recount references and per-user usage, find missing
 * and orphan files. With repair: fix refs and usage, adopt orphan files
 * whose content matches their name as unreferenced blobs, remove the rest.
 * Problems are bad_hash, missing, orphans, bad_refs and bad_used;
 * adoptable files are not (the crash-safe commit order can leave them).
 * Each finding is passed to cb (may be NULL) as one line. */
int sd_core_fsck(sd_core *c, int repair, sd_fsck_report *r,
		 void (*cb)(void *arg, const char *line), void *arg);

/* -- sessions for the admin tool ---------------------------------------- */
/* A session acting as the named user without credentials (storagectl runs
 * with the rights of the data directory's owner, so the session also works
 * for a disabled user and ends only if the user is removed). proto is
 * recorded as "cli". -ENOENT for an unknown user. Release with
 * api->session_close, before sd_core_close. */
int sd_core_session(sd_core *c, const char *user, sd_session **out);

/* -- test seams ------------------------------------------------------- */
/* Replace the clock (ms since epoch) and the disk-usage source (percent)
 * the cleaner and everything else use. NULL restores the real ones. */
void sd__core_set_clock(sd_core *c, int64_t (*fn)(void *arg), void *arg);
void sd__core_set_disk_usage(sd_core *c, int (*fn)(void *arg, int *pct), void *arg);
/* The engine's database, for db/ test seams (sd__db_set_commit_hook). */
struct sd_db;
struct sd_db *sd__core_db(sd_core *c);
/* Abandon idle detached handles now (the cleaner thread does it on its
 * own); returns how many. */
int sd__core_reap_handles(sd_core *c);

#endif
