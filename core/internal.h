/*
 * internal.h - what the engine's files share with each other (sd__ names).
 * Front ends never include this; see storaged.h.
 *
 * The engine's invariants (numbered so comments can cite them):
 *  I1. Stored content is immutable, and its address is the SHA-256 of its
 *      bytes (store.h).
 *  I2. Durable order: temp file written and fsync'd -> placed in the store
 *      (or found present: dedup) and made durable there -> the SQLite row.
 *      A row never names content that might not be there.
 *  I3. blobs.refs == number of versions rows naming the blob. A blob row is
 *      deleted only with refs = 0, inside a write transaction, under the
 *      store's stripe lock for its address; its content is removed after
 *      that commit, still under the lock. A commit that finds or places
 *      content takes the same lock before its transaction, so content and
 *      row go away together.
 *  I4. users.used_bytes == sum(size) of the user's live file nodes, kept in
 *      the same transaction as every change to them.
 *  I5. Every mutation writes its journal row in its own transaction; a
 *      journal row that cannot be written fails (rolls back) the mutation.
 *  I6. No content I/O (reading, writing, fsync) happens inside a
 *      transaction; only the store's place/remove steps of a commit.
 *  I7. Open-mode counts and handle generations never go negative or
 *      backwards (asserted in test builds).
 *
 * Layering (each file calls only downwards):
 *   api.c (the table: check the session, resolve paths, dispatch)
 *   session.c (sessions, credential re-checks)   core.c (lifecycle)
 *     -> tree.c  upload.c  instant.c  reader.c  handle.c -> file.c
 *       -> commit.c (blob row + node + version + journal in one txn)
 *         -> blob.c (rows)  versions.c  journal.c  store (store.h)
 *           -> writer.c (pipes)  db/  util/
 *   errors.c, metrics.c, log.c are leaves anyone may call.
 */
#ifndef SD_INTERNAL_H
#define SD_INTERNAL_H

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "conf.h"
#include "core.h"
#include "db/db.h"
#include "store.h"
#include "storaged.h"
#include "util.h"

/* assert() on invariants in test builds only (SD_TEST_BUILD). */
#ifdef SD_TEST_BUILD
#define SD_ASSERT(x) assert(x)
#else
#define SD_ASSERT(x) ((void)0)
#endif

typedef struct sd_pool sd_pool;
typedef struct sd_wpipe sd_wpipe;
typedef struct sd_metrics sd_metrics;
typedef struct sd_authfail sd_authfail;
typedef struct sd_chal sd_chal;
typedef struct sd_openent sd_openent;
typedef struct sd_file sd_file;
typedef struct sd_htable sd_htable;

struct sd_core {
	const sd_conf *conf;
	sd_db *db;
	sd_store *store;
	char *data_dir, *tmp_dir;

	int64_t (*clock_fn)(void *arg);
	void *clock_arg;
	int (*disk_fn)(void *arg, int *pct);
	void *disk_arg;

	sd_pool *pool;
	sd_metrics *metrics;

	pthread_mutex_t auth_lock;
	sd_authfail *fails;     /* fixed table, see auth.c */
	int auth_active;        /* Argon2id verifications running */
	pthread_cond_t auth_cond;
	/* bumped by every credential change made by this process, so
	 * sessions re-check at once (session.c) */
	atomic_uint cred_gen;

	pthread_mutex_t chal_lock;
	sd_chal *chals;         /* list of outstanding challenges */
	int nchals;

	pthread_mutex_t open_lock;
	sd_openent *opens;      /* open-mode table, see file.c */

	sd_htable *handles;     /* handle.c */

	pthread_mutex_t access_lock;
	int64_t *accessed;      /* blob ids read since the last flush */
	size_t naccessed, capaccessed;

	atomic_uint_fast64_t temp_seq;

	/* cleaner thread */
	pthread_t cleaner;
	int cleaner_running;
	int cleaner_stop;
	int cleaner_kick;
	pthread_mutex_t cl_lock;
	pthread_cond_t cl_cond;
	pthread_mutex_t gc_lock; /* one cleaner pass at a time */
	unsigned flags;
};

/* The clock every engine file uses (ms since the epoch; a test seam). */
static inline int64_t sd__now_ms(sd_core *c)
{
	return c->clock_fn ? c->clock_fn(c->clock_arg) : sd_time_ms();
}
int64_t sd__now_s(sd_core *c);
/* Disk usage of the store in percent (a test seam replaces it). */
int sd__disk_pct(sd_core *c, int *pct);

/* ---- errors.c */
const char *sd__strerror(int err);

/* ---- path.c: the one resolver */
/* Resolve arg (len bytes) against cwd ("/" or "/a/b", already resolved)
 * into out: relative args start at cwd, "." and empty components vanish,
 * ".." drops the previous component and stops at the root. Refuses NUL,
 * invalid UTF-8, control characters and backslashes (-EINVAL), components
 * over SD_NAME_MAX and results over SD_PATH_MAX or outlen
 * (-ENAMETOOLONG). */
int sd__resolve(const char *cwd, const char *arg, size_t len, char *out, size_t outlen);
/* sd__resolve against "/" of a NUL-terminated path. */
int sd__path_norm(const char *in, char *out, size_t outlen);

/* ---- session.c */
/* What the engine knows of the principal behind a session. Internal calls
 * take this (copied from a checked session), never a front end's data. */
typedef sd_user sd_principal;
/* Make a session for a user found by name, without credentials: for the
 * admin tool (core.h sd_core_session). */
int sd__session_new(sd_core *c, const sd_user *u, int method, int64_t cred_id,
		    const unsigned char *pwtag, const char *addr, const char *proto,
		    sd_session **out);
enum { SD_METHOD_ADMIN = 0, SD_METHOD_PASSWORD, SD_METHOD_TOKEN, SD_METHOD_KEY,
       SD_METHOD_ANONYMOUS };
/* What a login relied on, to check it again later (an upload's commit
 * re-checks the credentials of the session that began it). */
typedef struct sd_cred {
	int64_t uid;
	int method;
	int64_t cred_id;
	unsigned char pwtag[32];
} sd_cred;
void sd__session_cred(sd_session *s, sd_cred *out);
/* Check a session's credentials (re-reading them when due) and copy its
 * principal into *out: 0, or -SD_EAUTH once they no longer hold. */
int sd__session_principal(sd_session *s, sd_principal *out);
sd_core *sd__session_core(sd_session *s);
int64_t sd__session_uid(sd_session *s);
int sd__session_resolve(sd_session *s, const char *arg, size_t len, char *out, size_t outlen);
int sd__session_set_cwd(sd_session *s, const char *npath);
void sd__session_info(sd_session *s, sd_session_info *out);
void sd__session_close(sd_session *s);
/* Mutations refuse read-only logins: -EROFS. */
static inline int sd__check_writable(const sd_principal *u)
{
	return (u->flags & SD_USER_READONLY) ? -EROFS : 0;
}
/* Handle bookkeeping of a session (handle.c). */
void sd__session_handles_add(sd_session *s, int delta);
/* A keyed tag of a stored password hash (a changed password changes it). */
void sd__pwtag(const char *pwhash, unsigned char out[32]);

/* ---- journal.c */
/* Append one journal row inside the caller's write transaction. 0 or
 * -errno: a failure must fail the caller's transaction (I5). */
int sd__journal(sd_dbc *d, int64_t ts, const char *user, const char *op, const char *path,
		const char *detail);
/* Journal a row in its own transaction (login failures). */
int sd__journal_alone(sd_core *c, const char *user, const char *op, const char *detail);
int sd__journal_list(sd_core *c, int64_t since_ms, const char *user, int64_t after,
		     sd_journal_cb cb, void *arg);

/* ---- versions.c */
/* Add one version of node -> blob (refs+1, last_access), in the caller's
 * write transaction. */
int sd__version_add(sd_dbc *d, int64_t node, int64_t blob, uint64_t size, int64_t ts);
int64_t sd__version_count(sd_dbc *d, int64_t node);
int sd__versions_list(sd_core *c, const sd_principal *u, const char *npath, sd_version_cb cb,
		      void *arg);

/* ---- blob.c: blob rows */
/* The row of hex inside a write transaction: found (refs untouched) or
 * inserted with refs 0. */
int sd__blob_row(sd_dbc *d, const char *hex, uint64_t size, int64_t now, int64_t *id);
/* The row id of hex with this size, in any transaction; -ENOENT. */
int sd__blob_find(sd_dbc *d, const char *hex, uint64_t size, int64_t *id);
/* Remember that a blob was read (flushed to last_access by the cleaner). */
void sd__blob_touch(sd_core *c, int64_t blob_id);
void sd__blob_touch_flush(sd_core *c);
/* SHA-256 of [0,size) of stored content hex. */
int sd__blob_hash(sd_core *c, const char *hex, uint64_t size, char out[SD_SHA256_HEX]);

/* ---- writer.c: the buffered write pipeline (DESIGN path 1) */
int sd__pool_start(sd_core *c, int threads);
void sd__pool_stop(sd_core *c);
/* Create a temp file under tmp/ named "<pid>-<seq>.tmp"; returns fd
 * (O_RDWR) and the path. */
int sd__temp_create(sd_core *c, char path[PATH_MAX]);
/* A temp file fed through double buffers: full buffers are hashed and
 * written by pool threads while the caller fills the next one. */
int sd__wpipe_open(sd_core *c, sd_wpipe **out);
int sd__wpipe_write(sd_wpipe *p, const void *buf, size_t len);
/* Wait until every byte given so far is in the file (hash still valid). */
int sd__wpipe_drain(sd_wpipe *p);
/* Bytes given so far. */
uint64_t sd__wpipe_size(const sd_wpipe *p);
int sd__wpipe_fd(const sd_wpipe *p);
const char *sd__wpipe_path(const sd_wpipe *p);
/* The file was changed behind the pipe (random write): the running hash
 * is no longer the content's; finish() will re-read the file. size is the
 * new length. */
void sd__wpipe_invalidate(sd_wpipe *p, uint64_t size);
/* Drain and produce the content address. */
int sd__wpipe_finish(sd_wpipe *p, char hex[SD_SHA256_HEX], uint64_t *size);
/* Free; unlink_temp removes the temp file (not needed after a commit). */
void sd__wpipe_free(sd_wpipe *p, int unlink_temp);
/* SHA-256 of [0,size) of a source read with rd (a short source is
 * -EIO); of a descriptor. */
int sd__hash_source(ssize_t (*rd)(void *src, void *buf, size_t len, uint64_t off), void *src,
		   uint64_t size, char hex[SD_SHA256_HEX]);
int sd__hash_fd(int fd, uint64_t size, char hex[SD_SHA256_HEX]);

/* ---- tree.c */
typedef struct sd_node {
	int64_t id, parent, owner, blob;
	int kind;
	uint64_t size;
	uint32_t mode;
	int64_t mtime, ctime;
	char sha256[SD_SHA256_HEX];
} sd_node;
/* Resolve a normalised path from the user's root; -ENOENT / -ENOTDIR. */
int sd__tree_lookup(sd_dbc *d, int64_t uid, const char *npath, sd_node *out);
/* Point path at blob inside a write transaction: create or replace a file
 * (flags SD_UP_PARENTS, SD_UP_EXCL), add a version, keep used_bytes and
 * the quota (-EDQUOT), journal `op`. */
typedef struct sd_put {
	const sd_principal *u;
	const char *npath;
	unsigned flags;
	uint32_t mode;     /* for a new file; 0 = 0644 */
	int set_mode;      /* also give an existing file `mode` */
	uint64_t size;
	const char *op;    /* journal op: "write", "instant", "copy" */
	int64_t node_id;   /* out */
	int64_t expect_node; /* if > 0: the node must still be this one */
	const char *expect_sha; /* if set: the file must hold this content now
				 * (else -SD_ECHANGED; also when it is missing) */
	sd_stat *st;       /* out, may be NULL: the file after the change */
	int64_t mtime;     /* seconds; 0 = the commit time */
} sd_put;
int sd__tree_put(sd_core *c, sd_dbc *d, int64_t blob_id, sd_put *put);
void sd__node_to_stat(const sd_node *n, sd_stat *st);
int sd__tree_stat(sd_core *c, const sd_principal *u, const char *npath, sd_stat *st);
int sd__tree_readdir(sd_core *c, const sd_principal *u, const char *npath, const char *after,
		     int limit, sd_readdir_cb cb, void *arg, int *more);
int sd__tree_mkdir(sd_core *c, const sd_principal *u, const char *npath, uint32_t mode,
		   int parents);
int sd__tree_remove(sd_core *c, const sd_principal *u, const char *npath, int want_dir,
		    int recursive);
int sd__tree_rename(sd_core *c, const sd_principal *u, const char *nf, const char *nt,
		    unsigned flags);
int sd__tree_chmod(sd_core *c, const sd_principal *u, const char *npath, uint32_t mode);
int sd__tree_set_mtime(sd_core *c, const sd_principal *u, const char *npath, int64_t mtime);
int sd__tree_copy(sd_core *c, const sd_principal *u, const char *nf, const char *nt);
int sd__tree_fsinfo(sd_core *c, const sd_principal *u, sd_fsinfo *out);
/* The user's root node id; -ENOENT if the user is gone. */
int sd__user_root(sd_dbc *d, int64_t uid, int64_t *root);

/* ---- commit.c: the one commit step (DESIGN path 1, I2, I3, I5) */
/* Make the temp file (fd, tmppath; content hex of size bytes) durable in
 * the store and, in one write transaction, find or insert its blob row and
 * apply put (node, version, usage, journal). The temp file is consumed
 * whatever happens (fd stays open; the caller closes it). *dedup (may be
 * NULL) = 1 when the content was already stored. */
int sd__commit_temp(sd_core *c, int fd, const char *tmppath, const char *hex, uint64_t size,
		    sd_put *put, int *dedup);
/* Apply put to content that is already stored (instant upload): -SD_ESENDDATA
 * when its row is gone (the cleaner removed it meanwhile). */
int sd__commit_stored(sd_core *c, const char *hex, uint64_t size, sd_put *put);

/* ---- upload.c */
int sd__upload_begin(sd_core *c, const sd_principal *u, const sd_cred *cred, const char *npath,
		     unsigned flags, uint64_t offset, uint32_t mode, sd_upload **out);
int sd__upload_write(sd_upload *up, const void *buf, size_t len);
uint64_t sd__upload_size(const sd_upload *up);
void sd__upload_set_mtime(sd_upload *up, int64_t mtime);
int sd__upload_commit(sd_upload *up, const char *expect, sd_stat *st, int *dedup);
void sd__upload_abort(sd_upload *up);

/* ---- instant.c */
int sd__instant_begin(sd_core *c, const sd_principal *u, const char *npath, unsigned flags,
		      const char *sha256, uint64_t size, sd_challenge *ch, sd_stat *st);
int sd__instant_prove(sd_core *c, const sd_principal *u, const char *npath, unsigned flags,
		      const char *sha256, uint64_t size, const char *nonce, const char *proof,
		      sd_stat *st);
void sd__chal_free_all(sd_core *c);

/* ---- reader.c */
/* A reader of the current content of npath (the owner's tree). */
int sd__reader_open(sd_core *c, int64_t uid, const char *npath, sd_reader **out, sd_stat *st);
/* A reader of stored content by address. */
int sd__reader_open_hex(sd_core *c, const char *hex, uint64_t size, sd_reader **out);
ssize_t sd__reader_pread(sd_reader *r, void *buf, size_t len, uint64_t off);
int sd__reader_fd(sd_reader *r, int *fd, uint64_t *base);
void sd__reader_close(sd_reader *r);
/* The content address the reader reads. */
const char *sd__reader_hex(const sd_reader *r);
/* The content address of empty content. */
void sd__empty_hex(char out[SD_SHA256_HEX]);
/* Copy [0,n) of the reader into fd at offset 0 (working copies). */
int sd__reader_copy_to_fd(sd_reader *r, int fd, uint64_t n);

/* ---- file.c: working copies with open modes (DESIGN path 4) */
int sd__file_open(sd_core *c, const sd_principal *u, const char *npath, unsigned flags,
		  uint32_t mode, sd_file **out, sd_stat *st);
ssize_t sd__file_pread(sd_file *f, void *buf, size_t len, uint64_t off);
ssize_t sd__file_pwrite(sd_file *f, const void *buf, size_t len, uint64_t off);
int sd__file_truncate(sd_file *f, uint64_t size);
int sd__file_fstat(sd_file *f, sd_stat *st);
int sd__file_setattr(sd_file *f, unsigned mask, uint32_t mode, int64_t mtime);
int sd__file_sync(sd_file *f);
/* sd__file_sync if the file at the path holds content expect now
 * (handle_sync_if in storaged.h); -SD_ECHANGED otherwise. */
int sd__file_sync_if(sd_file *f, const char *expect);
int sd__file_close(sd_file *f);
void sd__file_abandon(sd_file *f);
void sd__open_free_all(sd_core *c);
int sd__open_state(sd_core *c, const sd_principal *u, const char *npath, unsigned *state);
/* Flags (with the share mode), dirtiness and path of f into out. */
void sd__file_info(const sd_file *f, sd_handle_info *out);
/* For messages and the journal: the file's path and its user's name. */
const char *sd__file_path(const sd_file *f);
const char *sd__file_user(const sd_file *f);

/* ---- handle.c: the bounded handle table */
int sd__handles_init(sd_core *c, int max);
void sd__handles_free(sd_core *c);
/* Add f as a handle of session s (or, detached, of user uid). -EMFILE when
 * the table, or the user's share of detached handles, is full. */
int sd__handle_add(sd_core *c, sd_session *s, int64_t uid, int detached, sd_file *f,
		   sd_handle *out);
/* The file of h if s (or s's user uid, for a detached handle) may use it:
 * 0 and *f with the handle marked busy until sd__handle_put; -EBADF. */
int sd__handle_get(sd_core *c, sd_session *s, int64_t uid, sd_handle h, sd_file **f);
void sd__handle_put(sd_core *c, sd_handle h);
/* 1 if h, which the caller holds busy (sd__handle_get), is detached. */
int sd__handle_detached(sd_core *c, sd_handle h);
/* Take h out of the table (close/abandon): 0 and *f; -EBADF. */
int sd__handle_take(sd_core *c, sd_session *s, int64_t uid, sd_handle h, sd_file **f);
/* Abandon every session handle of s (session end). */
void sd__handles_drop_session(sd_core *c, sd_session *s);
/* Abandon detached handles idle longer than handle_idle_timeout; returns
 * how many. */
int sd__handles_reap(sd_core *c);

/* ---- auth.c */
int sd__auth_init(sd_core *c);
void sd__auth_free(sd_core *c);
/* Re-read what a session's login relied on: 0 while it holds. */
int sd__auth_recheck(sd_core *c, int64_t uid, int method, int64_t cred_id,
		     const unsigned char pwtag[32], sd_user *fresh);

/* ---- gc.c */
int sd__cleaner_start(sd_core *c);
void sd__cleaner_stop(sd_core *c);
/* Start-up recovery (I2): remove dead temp files; adopt orphan content
 * that matches its address as unreferenced blobs; report rows whose
 * content is missing. */
int sd__recover(sd_core *c);
/* Adopt or remove one object without a row (recovery, fsck --repair):
 * 1 adopted, 0 removed (bad content), -errno. */
int sd__settle_orphan(sd_core *c, const char *hex);
int sd__blob_row_exists(sd_core *c, const char *hex);
/* Rows whose content is missing; cb (may be NULL) per finding. */
int64_t sd__find_missing(sd_core *c, void (*cb)(void *, const char *), void *arg);

/* ---- metrics.c */
sd_metrics *sd__metrics_new(void);
void sd__metrics_free(sd_metrics *m);

/* ---- the API implementations without a session (core.c table) */
void sd__log(sd_core *c, int level, const char *src, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void sd__metric_add(sd_core *c, const char *name, const char *labels, int64_t delta);
void sd__metric_set(sd_core *c, const char *name, const char *labels, int64_t value);
char *sd__metrics_render(sd_core *c);
int sd__state_dir(sd_core *c, const char *name, char *out, size_t outlen);

int sd__auth_password(sd_core *c, const char *user, const char *secret, const char *addr,
		      const char *proto, sd_session **out);
int sd__auth_token(sd_core *c, const char *token, const char *addr, const char *proto,
		   sd_session **out);
int sd__auth_pubkey(sd_core *c, const char *user, const char *type, const char *b64,
		    const char *addr, const char *proto, unsigned flags, sd_session **out);
int sd__auth_allowed(sd_core *c, const char *addr);
int sd__auth_anonymous(sd_core *c, const char *user, const char *addr, const char *proto,
		       sd_session **out);

int sd__user_add(sd_core *c, const char *name, const char *password, int64_t quota,
		 unsigned flags, int64_t *id);
int sd__user_get(sd_core *c, const char *name, sd_user *out);
int sd__user_get_id(sd_core *c, int64_t id, sd_user *out);
int sd__user_list(sd_core *c, sd_user_cb cb, void *arg);
int sd__user_set_password(sd_core *c, const char *name, const char *password);
int sd__user_set_disabled(sd_core *c, const char *name, int disabled);
int sd__user_set_quota(sd_core *c, const char *name, int64_t quota);
int sd__user_set_admin(sd_core *c, const char *name, int admin);
int sd__key_add(sd_core *c, const char *name, const char *line);
int sd__token_create(sd_core *c, const char *name, int scope, int64_t expires,
		     char out[SD_TOKEN_MAX], int64_t *id);
int sd__token_revoke(sd_core *c, int64_t id);
int sd__token_list(sd_core *c, const char *name, sd_token_cb cb, void *arg);
int sd__stats(sd_core *c, sd_stats *out);
int sd__gc_run(sd_core *c, int force, sd_gc_report *out);

/* ---- api.c: the function table (thin wrappers over the above) */
extern const sd_core_api sd__api;

#endif
