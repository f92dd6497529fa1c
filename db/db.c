/*
 * db.c - see db.h for the invariants. The migration runner applies the
 * embedded migrations/NNNN_*.sql (generated into build/migrations.c) in
 * order, each in its own IMMEDIATE transaction with PRAGMA user_version
 * bumped inside it, and refuses a database whose user_version is higher
 * than the number of migrations this binary knows.
 *
 * Group commit
 * ------------
 * With synchronous=FULL every COMMIT costs one sync of the WAL. Writers
 * that arrive while another one holds the writer share that sync: their
 * work goes into one transaction, each in its own SAVEPOINT, and the last
 * of them commits for all.
 *
 *   write_begin: take the writer (wlock); if no batch transaction is open,
 *                BEGIN IMMEDIATE one; SAVEPOINT w.
 *   write_end:   RELEASE w (or ROLLBACK TO w: this writer's work alone is
 *                undone). Then, if other writers are waiting for the
 *                writer and the batch is not full, hand the open
 *                transaction on: join the batch's list of waiters, give up
 *                wlock and sleep until the batch is committed. Otherwise
 *                COMMIT, and wake every waiter of the batch with the result.
 *
 * Invariants
 *  G1. A write_end returns only after the COMMIT of the transaction holding
 *      its work has returned (or failed): acknowledged means durable.
 *  G2. A writer alone (no one waiting) commits at once: no added latency.
 *  G3. A batch holds at most BATCH_MAX writers, so a stream of arrivals
 *      cannot keep one transaction open (and its first writer waiting)
 *      forever.
 *  G4. If SQLite rolls the whole transaction back on its own (an I/O error,
 *      a full disk), every writer of the batch gets the error: none is told
 *      its work is durable.
 *  G5. Only the holder of wlock touches the writer connection and the batch
 *      state; waiters and their results are under gm.
 * A test seam (sd__db_set_commit_hook) runs around each COMMIT.
 */
#include "db.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "util/util.h"

#define SD_DB_MAX_STMTS 192

extern const char *const sd__migrations[];
extern const int sd__migrations_count;

struct sd_dbc {
	sqlite3 *h;
	sqlite3_stmt *stmts[SD_DB_MAX_STMTS];
	sd_dbc *next_free;
};

#define BATCH_MAX 64

/* A writer waiting for its batch to be committed. */
typedef struct gwait {
	struct gwait *next;
	int done, result;
} gwait;

struct sd_db {
	sd_dbc writer;
	pthread_mutex_t wlock;
	/* group commit (see the top of the file) */
	int in_txn;        /* a batch transaction is open (wlock) */
	int members;       /* writers in the open batch (wlock) */
	gwait *waiters;    /* writers of the open batch that handed it on (wlock) */
	pthread_mutex_t gm;
	pthread_cond_t gcv;
	int waiting;       /* threads blocked in write_begin (gm) */
	void (*hook)(void *arg, int after, int members);
	void *hook_arg;
	pthread_mutex_t plock;
	pthread_cond_t pcond;
	sd_dbc *readers;
	int nreaders;
	sd_dbc *free_readers;
};

static pthread_mutex_t idx_lock = PTHREAD_MUTEX_INITIALIZER;
static int next_idx;

int sd_db_schema_version(void)
{
	return sd__migrations_count;
}

int sd_db_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_CANTOPEN:
		return -EACCES;
	default:
		return -EIO;
	}
}

sqlite3 *sd_db_handle(sd_dbc *c)
{
	return c->h;
}

sqlite3_stmt *sd_db_stmt(sd_dbc *c, sd_sql *q)
{
	int idx = __atomic_load_n(&q->idx, __ATOMIC_ACQUIRE);
	if (idx < 0) {
		pthread_mutex_lock(&idx_lock);
		if (q->idx < 0) {
			if (next_idx >= SD_DB_MAX_STMTS) {
				fprintf(stderr, "storaged: too many SQL statements\n");
				abort();
			}
			__atomic_store_n(&q->idx, next_idx++, __ATOMIC_RELEASE);
		}
		idx = q->idx;
		pthread_mutex_unlock(&idx_lock);
	}
	sqlite3_stmt *st = c->stmts[idx];
	if (!st) {
		int rc = sqlite3_prepare_v3(c->h, q->text, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
		if (rc != SQLITE_OK) {
			fprintf(stderr, "storaged: SQL prepare failed: %s\n  in: %s\n",
				sqlite3_errmsg(c->h), q->text);
			abort();
		}
		c->stmts[idx] = st;
	} else {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
	return st;
}

int sd_db_exec_stmt(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE || rc == SQLITE_ROW)
		return 0;
	return sd_db_errno(rc);
}

static int exec(sqlite3 *h, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;
	int rc = sqlite3_exec(h, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		if (err)
			snprintf(err, errlen, "%s", msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return sd_db_errno(rc);
	}
	return 0;
}

static int conn_open(sd_dbc *c, const char *path, int flags, int durable_full, int busy_ms,
		     char *err, size_t errlen)
{
	memset(c, 0, sizeof *c);
	int rc = sqlite3_open_v2(path, &c->h, flags | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot open database %s: %s", path,
			 c->h ? sqlite3_errmsg(c->h) : sqlite3_errstr(rc));
		sqlite3_close(c->h);
		c->h = NULL;
		return sd_db_errno(rc);
	}
	sqlite3_busy_timeout(c->h, busy_ms);
	sqlite3_extended_result_codes(c->h, 1);
	char sql[160];
	snprintf(sql, sizeof sql, "PRAGMA synchronous=%s; PRAGMA foreign_keys=ON;",
		 durable_full ? "FULL" : "NORMAL");
	char e2[200];
	if (exec(c->h, sql, e2, sizeof e2) < 0) {
		snprintf(err, errlen, "cannot set up database %s: %s", path, e2);
		sqlite3_close(c->h);
		c->h = NULL;
		return -EIO;
	}
	return 0;
}

static void conn_close(sd_dbc *c)
{
	if (!c->h)
		return;
	for (int i = 0; i < SD_DB_MAX_STMTS; i++)
		if (c->stmts[i])
			sqlite3_finalize(c->stmts[i]);
	sqlite3_close(c->h);
	c->h = NULL;
}

static int user_version(sqlite3 *h, int *v)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(h, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : sd_db_errno(rc);
}

static int migrate(sqlite3 *h, const char *path, char *err, size_t errlen)
{
	int v = 0;
	if (user_version(h, &v) < 0) {
		snprintf(err, errlen, "cannot read schema version of %s", path);
		return -EIO;
	}
	if (v > sd__migrations_count) {
		snprintf(err, errlen,
			 "database %s has schema version %d, newer than this storaged (%d): "
			 "upgrade storaged or restore a backup",
			 path, v, sd__migrations_count);
		return -EPROTO;
	}
	for (int i = v; i < sd__migrations_count; i++) {
		char e2[300];
		if (exec(h, "BEGIN IMMEDIATE", e2, sizeof e2) < 0) {
			snprintf(err, errlen, "cannot migrate %s: %s", path, e2);
			return -EBUSY;
		}
		char bump[64];
		snprintf(bump, sizeof bump, "PRAGMA user_version=%d", i + 1);
		if (exec(h, sd__migrations[i], e2, sizeof e2) < 0 ||
		    exec(h, bump, e2, sizeof e2) < 0) {
			exec(h, "ROLLBACK", NULL, 0);
			snprintf(err, errlen, "migration %04d failed on %s: %s", i + 1, path, e2);
			return -EIO;
		}
		if (exec(h, "COMMIT", e2, sizeof e2) < 0) {
			exec(h, "ROLLBACK", NULL, 0);
			snprintf(err, errlen, "migration %04d commit failed on %s: %s", i + 1, path, e2);
			return -EIO;
		}
		sd_log(SD_LOG_INFO, "db", "event=migrated version=%d", i + 1);
	}
	return 0;
}

sd_db *sd_db_open(const char *path, int durable_full, int readers, int busy_ms,
		  char *err, size_t errlen)
{
	sd_db *db = sd_xcalloc(1, sizeof *db);
	pthread_mutex_init(&db->wlock, NULL);
	pthread_mutex_init(&db->gm, NULL);
	pthread_cond_init(&db->gcv, NULL);
	pthread_mutex_init(&db->plock, NULL);
	pthread_cond_init(&db->pcond, NULL);
	if (conn_open(&db->writer, path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, durable_full,
		      busy_ms, err, errlen) < 0)
		goto fail;
	char e2[200];
	if (exec(db->writer.h, "PRAGMA journal_mode=WAL", e2, sizeof e2) < 0) {
		snprintf(err, errlen, "cannot enable WAL on %s: %s", path, e2);
		goto fail;
	}
	/* temp_store=MEMORY on the writer: the sub-journal of a savepoint
	 * (every writer of a group commit has one, see the top of the file)
	 * stays in memory instead of a temp file created, written and
	 * unlinked for each commit (strace, 4 KiB HTTP uploads: 8 system
	 * calls and ~6 pwrites fewer per file). The readers keep the default:
	 * their temp tables (sorts of large listings) may spill to disk. */
	if (exec(db->writer.h, "PRAGMA temp_store=MEMORY", e2, sizeof e2) < 0) {
		snprintf(err, errlen, "cannot set up database %s: %s", path, e2);
		goto fail;
	}
	if (migrate(db->writer.h, path, err, errlen) < 0)
		goto fail;
	if (readers < 1)
		readers = 1;
	db->readers = sd_xcalloc((size_t)readers, sizeof *db->readers);
	db->nreaders = readers;
	for (int i = 0; i < readers; i++) {
		if (conn_open(&db->readers[i], path, SQLITE_OPEN_READWRITE, durable_full, busy_ms,
			      err, errlen) < 0)
			goto fail;
		db->readers[i].next_free = db->free_readers;
		db->free_readers = &db->readers[i];
	}
	return db;
fail:
	sd_db_close(db);
	return NULL;
}

void sd_db_close(sd_db *db)
{
	if (!db)
		return;
	if (db->readers) {
		for (int i = 0; i < db->nreaders; i++)
			conn_close(&db->readers[i]);
		free(db->readers);
	}
	if (db->writer.h) {
		for (int i = 0; i < SD_DB_MAX_STMTS; i++)
			if (db->writer.stmts[i]) {
				sqlite3_finalize(db->writer.stmts[i]);
				db->writer.stmts[i] = NULL;
			}
		sqlite3_wal_checkpoint_v2(db->writer.h, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
		conn_close(&db->writer);
	}
	pthread_mutex_destroy(&db->wlock);
	pthread_mutex_destroy(&db->gm);
	pthread_cond_destroy(&db->gcv);
	pthread_mutex_destroy(&db->plock);
	pthread_cond_destroy(&db->pcond);
	free(db);
}

void sd__db_set_commit_hook(sd_db *db, void (*fn)(void *arg, int after, int members), void *arg)
{
	db->hook = fn;
	db->hook_arg = arg;
}

sd_dbc *sd_db_write_begin(sd_db *db)
{
	pthread_mutex_lock(&db->gm);
	db->waiting++;
	pthread_mutex_unlock(&db->gm);
	pthread_mutex_lock(&db->wlock);
	pthread_mutex_lock(&db->gm);
	db->waiting--;
	pthread_mutex_unlock(&db->gm);
	while (!db->in_txn) {
		int rc = sqlite3_exec(db->writer.h, "BEGIN IMMEDIATE", NULL, NULL, NULL);
		if (rc == SQLITE_OK) {
			db->in_txn = 1;
			db->members = 0;
			break;
		}
		if ((rc & 0xff) != SQLITE_BUSY) {
			sd_log(SD_LOG_ERROR, "db", "event=begin_failed err=\"%s\"",
			       sqlite3_errmsg(db->writer.h));
			pthread_mutex_unlock(&db->wlock);
			return NULL;
		}
		/* busy_timeout expired while another process held the lock:
		 * keep waiting rather than fail a user's write. */
		sd_log(SD_LOG_WARN, "db", "event=write_lock_wait");
	}
	if (sqlite3_exec(db->writer.h, "SAVEPOINT w", NULL, NULL, NULL) != SQLITE_OK) {
		sd_log(SD_LOG_ERROR, "db", "event=savepoint_failed err=\"%s\"",
		       sqlite3_errmsg(db->writer.h));
		/* nothing of ours is in the batch: finish it for the others */
		sd_db_write_end(db, &db->writer, -1);
		return NULL;
	}
	db->members++;
	return &db->writer;
}

/* COMMIT the open batch (wlock held) and wake its waiters; returns the
 * result for the caller. */
static int commit_batch(sd_db *db)
{
	int r = 0;
	sqlite3 *h = db->writer.h;
	if (sqlite3_get_autocommit(h)) {
		r = -EIO; /* G4: SQLite rolled the transaction back by itself */
		sd_log(SD_LOG_ERROR, "db", "event=batch_lost members=%d", db->members);
	} else {
		if (db->hook)
			db->hook(db->hook_arg, 0, db->members);
		int rc = sqlite3_exec(h, "COMMIT", NULL, NULL, NULL);
		if (rc != SQLITE_OK) {
			r = sd_db_errno(rc);
			if (r == 0)
				r = -EIO;
			sd_log(SD_LOG_ERROR, "db", "event=commit_failed err=\"%s\"", sqlite3_errmsg(h));
			sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
		}
		if (db->hook)
			db->hook(db->hook_arg, 1, db->members);
	}
	db->in_txn = 0;
	db->members = 0;
	gwait *w = db->waiters;
	db->waiters = NULL;
	pthread_mutex_lock(&db->gm);
	for (; w; w = w->next) {
		w->done = 1;
		w->result = r;
	}
	pthread_cond_broadcast(&db->gcv);
	pthread_mutex_unlock(&db->gm);
	return r;
}

int sd_db_write_end(sd_db *db, sd_dbc *c, int commit)
{
	int r = 0;
	sqlite3 *h = c->h;
	if (commit > 0) {
		int rc = sqlite3_exec(h, "RELEASE w", NULL, NULL, NULL);
		if (rc != SQLITE_OK) {
			r = sd_db_errno(rc);
			if (r == 0)
				r = -EIO;
			sd_log(SD_LOG_ERROR, "db", "event=release_failed err=\"%s\"", sqlite3_errmsg(h));
			sqlite3_exec(h, "ROLLBACK TO w; RELEASE w", NULL, NULL, NULL);
		}
	} else if (commit == 0) {
		sqlite3_exec(h, "ROLLBACK TO w; RELEASE w", NULL, NULL, NULL);
	}
	pthread_mutex_lock(&db->gm);
	int others = db->waiting;
	pthread_mutex_unlock(&db->gm);
	if (others > 0 && db->members < BATCH_MAX && !sqlite3_get_autocommit(h)) {
		/* hand the open transaction to the next writer (G1, G3) */
		gwait me = {db->waiters, 0, 0};
		db->waiters = &me;
		pthread_mutex_unlock(&db->wlock);
		pthread_mutex_lock(&db->gm);
		while (!me.done)
			pthread_cond_wait(&db->gcv, &db->gm);
		pthread_mutex_unlock(&db->gm);
		return r ? r : me.result;
	}
	int cr = commit_batch(db);
	pthread_mutex_unlock(&db->wlock);
	return r ? r : cr;
}

sd_dbc *sd_db_read_begin(sd_db *db)
{
	pthread_mutex_lock(&db->plock);
	while (!db->free_readers)
		pthread_cond_wait(&db->pcond, &db->plock);
	sd_dbc *c = db->free_readers;
	db->free_readers = c->next_free;
	pthread_mutex_unlock(&db->plock);
	sqlite3_exec(c->h, "BEGIN", NULL, NULL, NULL);
	return c;
}

void sd_db_read_end(sd_db *db, sd_dbc *c)
{
	/* Reset every cached statement so none keeps the snapshot open. */
	sqlite3_exec(c->h, "COMMIT", NULL, NULL, NULL);
	pthread_mutex_lock(&db->plock);
	c->next_free = db->free_readers;
	db->free_readers = c;
	pthread_cond_signal(&db->pcond);
	pthread_mutex_unlock(&db->plock);
}

void sd_db_checkpoint(sd_db *db)
{
	pthread_mutex_lock(&db->wlock);
	if (db->in_txn) {
		/* a batch is being handed from writer to writer: next time */
		pthread_mutex_unlock(&db->wlock);
		return;
	}
	int logn = 0, ckn = 0;
	int rc = sqlite3_wal_checkpoint_v2(db->writer.h, NULL, SQLITE_CHECKPOINT_PASSIVE, &logn, &ckn);
	pthread_mutex_unlock(&db->wlock);
	if (rc != SQLITE_OK)
		sd_log(SD_LOG_WARN, "db", "event=checkpoint_failed err=\"%s\"", sqlite3_errstr(rc));
	else
		sd_log(SD_LOG_DEBUG, "db", "event=checkpoint wal_frames=%d checkpointed=%d", logn, ckn);
}
