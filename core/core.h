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

/* -- blob stores (storemod.c) ------------------------------------------ */
/* Open the blob store NAME ("local", or the module store_NAME.so in
 * conf->module_dir with its [storaged] NAME_* keys) for data_dir, whose
 * tmp/ is tmp_dir. A remote store is connected and checked (endpoint,
 * credentials, bucket or pool) and wrapped with the read cache; fill: reads
 * may add to the cache (the daemon), else hits only. NULL with one line in
 * err naming the key or file to fix. */
struct sd_store *sd_core_store_open(const sd_conf *conf, const char *name, const char *data_dir,
				    const char *tmp_dir, int fill, char *err, size_t errlen);
/* Check every store module's keys in conf (each NAME_* group through its
 * module's table) without connecting. 0 or -SD_ECONFIG with err. */
int sd_core_store_check(const sd_conf *conf, char *err, size_t errlen);
/* Markdown reference of the keys of every store_*.so in module_dir
 * (malloc'd, "" when there is none). */
char *sd_core_store_doc(const char *module_dir);

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
#define SD_FSCK_REPAIR 0x1 /* fix what can be fixed (below) */
#define SD_FSCK_DEEP 0x2   /* re-read every content, also on a remote store */
/* Re-hash every blob, recount references and per-user usage, find missing
 * and orphan files. On a remote store (S3, RADOS) that keeps each content's
 * SHA-256 and size (store.h info()), those are checked instead of re-reading
 * the content, unless flags has SD_FSCK_DEEP; the local store is always
 * re-read. With SD_FSCK_REPAIR: fix refs and usage, adopt orphan files
 * whose content matches their name as unreferenced blobs, remove the rest.
 * Problems are bad_hash, missing, orphans, bad_refs and bad_used;
 * adoptable files are not (the crash-safe commit order can leave them).
 * Each finding is passed to cb (may be NULL) as one line. flags: 0, 1
 * (SD_FSCK_REPAIR) and SD_FSCK_DEEP combined. */
int sd_core_fsck(sd_core *c, int flags, sd_fsck_report *r,
		 void (*cb)(void *arg, const char *line), void *arg);

/* -- the journal: tamper evidence and replication ----------------------- */
/* journal.c's design notes define the hash chain; replica.c the replay. */

#define SD_STORE_ID_MAX 40 /* a store id (32 hex digits) and NUL */

/* This data directory's store id (random, made by migration 0002): what
 * a copy made by sd_core_replicate calls its source. 0 or -errno. */
int sd_core_store_id(sd_core *c, char out[SD_STORE_ID_MAX]);

/* One journal row with its chain fields; strings valid during the
 * callback. args is NULL or the text of a JSON object (what a replay
 * needs: docs/architecture.md lists it per op); prev and hash are 64 hex
 * digits, "" when the row has none. */
typedef struct sd_journal_rec {
	int64_t seq;
	int64_t ts; /* ms */
	const char *user, *op, *path, *detail, *args;
	char prev[65], hash[65];
} sd_journal_rec;
typedef int (*sd_journal_rec_cb)(void *arg, const sd_journal_rec *r); /* nonzero stops */

/* Every row with seq > after, oldest first, read in pages (no transaction
 * is open during a callback). Returns the count delivered. */
int sd_core_journal_export(sd_core *c, int64_t after, sd_journal_rec_cb cb, void *arg);

/* The outcome of a chain check. */
typedef struct sd_journal_verify {
	int64_t anchor_seq;    /* the chain starts after this seq */
	char anchor_hash[65];
	int64_t first, last;   /* seqs of the first row seen and the last intact one */
	int64_t rows;          /* rows found intact */
	char head_hash[65];    /* hash of the last intact row (the anchor's if none) */
	int64_t bad_seq;       /* 0: intact; else the first row where it breaks */
	char reason[160];      /* why, when bad_seq != 0 */
} sd_journal_verify;
/* Recompute the chain from the anchor in one read transaction and stop at
 * the first row that breaks it. 0 (look at out->bad_seq) or -errno. */
int sd_core_journal_verify(sd_core *c, sd_journal_verify *out);

/* What a replication run did. */
typedef struct sd_replicate_report {
	char source[SD_STORE_ID_MAX]; /* the source's store id */
	int64_t from_seq;     /* the copy's position before the run */
	int64_t to_seq;       /* and after it (the last source row applied) */
	int64_t target_seq;   /* the source's newest row when the run began */
	int64_t rows;         /* source rows applied in this run */
	int64_t files;        /* file contents committed (write, instant, copy) */
	int64_t blobs_copied; /* contents the copy did not hold, copied */
	int64_t bytes_copied;
	int64_t fail_seq;     /* the source row that could not be applied, or 0 */
} sd_replicate_report;
/* Bring the data directory of dst up to date with src: apply every src
 * journal row after dst's position, in order, through the engine's own
 * calls on dst (mkdir, commit, rename, ... and user, key and token
 * changes), copying the contents they name from src's store into dst's
 * (store.h) when dst lacks them. Each row is applied in one dst
 * transaction that also stores the new position (source id, seq, hash),
 * so a run killed at any point resumes where it stopped, and a second run
 * applies nothing. A new copy must be empty (no users), or a copy of src's
 * data directory taken while src was stopped.
 *
 * The run stops before the first row it cannot apply (the reason in err):
 * src's chain broken there, an op this engine does not know, content src
 * no longer stores, dst changed by something else. max_rows > 0 stops
 * after that many rows. progress (may be NULL) is called after every 256
 * rows. Returns 0 or a negative error with err set (rep is
 * filled either way). Neither core may run a cleaner pass meanwhile from
 * this process; src and dst must be different data directories. */
int sd_core_replicate(sd_core *src, sd_core *dst, int64_t max_rows, sd_replicate_report *rep,
		      void (*progress)(void *arg, const sd_replicate_report *rep), void *arg,
		      char *err, size_t errlen);

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
