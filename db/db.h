/*
 * db.h - SQLite access for the core: connection setup, the single writer,
 * the reader pool, prepared statements and migrations.
 *
 * Invariants:
 *  1. Exactly one writer connection per process; it is used only between
 *     sd_db_write_begin() and sd_db_write_end(), which hold a mutex and a
 *     BEGIN IMMEDIATE transaction, so a write never fails with an instant
 *     SQLITE_BUSY (other processes wait up to busy_timeout).
 *  2. Readers come from a fixed pool; sd_db_read_begin() opens a read
 *     transaction (one consistent snapshot) that sd_db_read_end() closes.
 *     Keep them short: an open read transaction pins the WAL.
 *  3. Statements are declared where they are used, with SD_SQL, prepared
 *     once per connection with SQLITE_PREPARE_PERSISTENT, and handed out
 *     reset with bindings cleared.
 *  4. No blob file I/O happens while a transaction is open (callers' rule).
 */
#ifndef SD_DB_H
#define SD_DB_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sd_db sd_db;
typedef struct sd_dbc sd_dbc; /* one connection */

/* A statement declared at file scope: SD_SQL(q_find, "SELECT ..."); */
typedef struct sd_sql {
	const char *text;
	int idx; /* slot in each connection's cache, assigned on first use */
} sd_sql;
#define SD_SQL(name, text) static sd_sql name = {text, -1}

/* Open path (creating it), set WAL, migrate to the embedded schema.
 * durable_full: synchronous=FULL (else NORMAL). readers: pool size.
 * NULL with a one-line reason in err on failure, including "database is
 * newer than this binary". */
sd_db *sd_db_open(const char *path, int durable_full, int readers, int busy_timeout_ms,
		  char *err, size_t errlen);
/* Checkpoint (TRUNCATE) and close everything. No connection may be in use. */
void sd_db_close(sd_db *db);

/* The writer, inside BEGIN IMMEDIATE. Never NULL (aborts if BEGIN fails
 * for a reason other than busy, after busy_timeout: then returns NULL). */
sd_dbc *sd_db_write_begin(sd_db *db);
/* commit != 0: keep this writer's work and return once it is committed
 * (0, or -EIO / -EBUSY / -ENOSPC when the commit failed and the work is
 * gone); commit == 0: undo this writer's work (returns 0). Releases the
 * writer. Writers that arrive together share one COMMIT (group commit,
 * see db.c); a writer alone commits at once. */
int sd_db_write_end(sd_db *db, sd_dbc *c, int commit);
/* Test seam: fn(arg, after, members) runs just before (after = 0) and
 * just after (after = 1) each COMMIT, members = writers in the batch. */
void sd__db_set_commit_hook(sd_db *db, void (*fn)(void *arg, int after, int members), void *arg);

/* A reader with an open read transaction; blocks while the pool is empty. */
sd_dbc *sd_db_read_begin(sd_db *db);
void sd_db_read_end(sd_db *db, sd_dbc *c);

/* The statement q on connection c, ready to bind. Aborts on a prepare
 * error (that is a bug in the SQL text, found by the tests). */
sqlite3_stmt *sd_db_stmt(sd_dbc *c, sd_sql *q);
sqlite3 *sd_db_handle(sd_dbc *c);

/* step a statement expecting SQLITE_DONE; resets it. 0 or -errno. */
int sd_db_exec_stmt(sqlite3_stmt *st);
/* Map an SQLite result code to -errno (BUSY/LOCKED -> -EBUSY, FULL ->
 * -ENOSPC, CONSTRAINT -> -EEXIST, others -> -EIO). */
int sd_db_errno(int rc);

/* Passive checkpoint (timer). */
void sd_db_checkpoint(sd_db *db);
/* Schema version this binary brings, and the database's. */
int sd_db_schema_version(void);

#endif
