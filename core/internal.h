/*
 * internal.h - what the engine's files share with each other (sd__ names).
 * Front ends never include this; see storaged.h.
 *
 * The engine's invariants (numbered so comments can cite them):
 *  I1. A blob file is immutable once renamed into blobs/ab/cd/<hex>, and
 *      its name is the SHA-256 of its content.
 *  I2. Durable order: temp file written and fsync'd -> rename (or found
 *      present: dedup) -> fsync of the shard directory -> the SQLite row.
 *      A row never points at a file that might not be there.
 *  I3. blobs.refs == number of versions rows naming the blob. A blob row is
 *      deleted only with refs = 0, inside a write transaction, under the
 *      blob's stripe lock; its file is unlinked after that commit, still
 *      under the lock. A commit that finds or creates the file takes the same
 *      lock before its transaction, so a file and its row go away together.
 *      The stripe lock is an OFD byte-range lock on blobs/.lock, so it also
 *      excludes storagectl running beside the daemon.
 *  I4. users.used_bytes == sum(size) of the user's live file nodes, kept in
 *      the same transaction as every change to them.
 *  I5. Every mutation writes its journal row in its own transaction.
 *  I6. No blob I/O (reading, writing, fsync) happens inside a transaction;
 *      only the rename/stat of the commit step and unlinks.
 */
#ifndef SD_INTERNAL_H
#define SD_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "conf.h"
#include "core.h"
#include "db/db.h"
#include "storaged.h"

typedef struct sd_pool sd_pool;
typedef struct sd_wpipe sd_wpipe;
typedef struct sd_metrics sd_metrics;
typedef struct sd_authfail sd_authfail;
typedef struct sd_chal sd_chal;
typedef struct sd_openent sd_openent;

struct sd_core {
	const sd_conf *conf;
	sd_db *db;
	char *data_dir, *blob_dir, *tmp_dir, *lock_path;
	int lock_fd;

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

	pthread_mutex_t chal_lock;
	sd_chal *chals;         /* list of outstanding challenges */
	int nchals;

	pthread_mutex_t open_lock;
	sd_openent *opens;      /* open-mode table, see file.c */

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

/* ---- core.c */
int64_t sd__now_ms(sd_core *c);
int sd__disk_pct(sd_core *c, int *pct);
/* Root node id of a user; -ENOENT if the user is gone. */
int sd__user_root(sd_dbc *d, int64_t uid, int64_t *root);
void sd__journal(sd_dbc *d, int64_t ts, const char *user, const char *op, const char *path,
		 const char *detail);

/* ---- path.c */
/* Normalise a user path into "/a/b" ("/" for the root). 0 or -EINVAL /
 * -ENAMETOOLONG. Refuses "..", NUL (cannot appear in C strings, so a
 * length-carrying caller checks), empty components other than repeated or
 * trailing slashes, "." is dropped, components longer than SD_NAME_MAX,
 * invalid UTF-8, and ASCII control characters. */
int sd__path_norm(const char *in, char *out, size_t outlen);
int sd__utf8_valid(const char *s, size_t n);

/* ---- blob.c */
void sd__blob_path(sd_core *c, const char *hex, char out[PATH_MAX]);
/* Create a temp file under tmp/ named "<pid>-<seq>.tmp"; returns fd
 * (O_RDWR) and the path. */
int sd__temp_create(sd_core *c, char path[PATH_MAX]);
/* Stripe lock for a content address (I3): returns a descriptor to pass to
 * unlock, or -errno. */
int sd__blob_lock(sd_core *c, const char *hex);
void sd__blob_unlock(int lockfd);
/* Called inside the commit transaction with the blob's row id. */
typedef int (*sd_commit_fn)(sd_core *c, sd_dbc *d, int64_t blob_id, void *arg);
/* The commit step of DESIGN path 1 (I2, I3): makes the temp file (fd,
 * tmppath, content hex/size) the durable blob and runs fn in the same
 * write transaction that inserts or looks up the blob row. fn returns 0 or
 * -errno (then everything is rolled back, and a blob file this call created
 * is removed). The temp file is consumed whatever happens; fd stays open
 * (the caller closes it; it then refers to the blob's content). */
int sd__blob_commit(sd_core *c, int fd, const char *tmppath, const char *hex, uint64_t size,
		    sd_commit_fn fn, void *arg, int *dedup);
/* Add one version of node -> blob (refs+1, last_access). */
int sd__version_add(sd_core *c, sd_dbc *d, int64_t node, int64_t blob, uint64_t size, int64_t ts);
/* Remember that a blob was read (flushed to last_access by the cleaner). */
void sd__blob_touch(sd_core *c, int64_t blob_id);
void sd__blob_touch_flush(sd_core *c);
/* Open a blob file read-only by address. fd or -errno. */
int sd__blob_open(sd_core *c, const char *hex);

/* ---- writer.c: the buffered write pipeline (DESIGN path 1) */
int sd__pool_start(sd_core *c, int threads);
void sd__pool_stop(sd_core *c);
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
/* Free; unlink_temp removes the temp file (not needed after a commit). The
 * fd is closed unless keep_fd, then returned through *fd. */
void sd__wpipe_free(sd_wpipe *p, int unlink_temp, int *keep_fd);
/* SHA-256 of [0,size) of fd. */
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
	const sd_user *u;
	const char *npath;
	unsigned flags;
	uint32_t mode;     /* for a new file; 0 = 0644 */
	uint64_t size;
	const char *op;    /* journal op: "write", "instant", "copy" */
	int64_t node_id;   /* out */
	int64_t expect_node; /* if > 0: the node must still be this one */
	sd_stat *st;       /* out, may be NULL: the file after the change */
	int64_t mtime;     /* seconds; 0 = the commit time */
} sd_put;
int sd__tree_put(sd_core *c, sd_dbc *d, int64_t blob_id, void *put /* sd_put */);
void sd__node_to_stat(const sd_node *n, sd_stat *st);
int sd__tree_stat_path(sd_core *c, const sd_user *u, const char *npath, sd_stat *st);

/* ---- auth.c */
int sd__auth_init(sd_core *c);
void sd__auth_free(sd_core *c);
/* Blocks writes for read-only logins: -EROFS. */
int sd__check_writable(const sd_user *u);

/* ---- instant.c */
void sd__chal_free_all(sd_core *c);

/* ---- file.c */
void sd__open_free_all(sd_core *c);

/* ---- gc.c */
int sd__cleaner_start(sd_core *c);
void sd__cleaner_stop(sd_core *c);
/* Start-up recovery (I2): remove dead temp files; adopt orphan blob files
 * whose content matches their name as unreferenced blobs; report rows
 * whose file is missing. */
int sd__recover(sd_core *c);

/* ---- metrics.c */
sd_metrics *sd__metrics_new(void);
void sd__metrics_free(sd_metrics *m);

/* ---- the API implementations (api.c table) */
void sd__log(sd_core *c, int level, const char *src, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
const char *sd__strerror(int err);
void sd__metric_add(sd_core *c, const char *name, const char *labels, int64_t delta);
void sd__metric_set(sd_core *c, const char *name, const char *labels, int64_t value);
char *sd__metrics_render(sd_core *c);
int64_t sd__now_s(sd_core *c);
const char *sd__data_dir(sd_core *c);

int sd__auth_password(sd_core *c, const char *user, const char *secret, const char *addr, sd_user *out);
int sd__auth_token(sd_core *c, const char *token, const char *addr, sd_user *out);
int sd__auth_pubkey(sd_core *c, const char *user, const char *type, const char *b64,
		    const char *addr, unsigned flags, sd_user *out);
int sd__auth_allowed(sd_core *c, const char *addr);
int sd__user_refresh(sd_core *c, sd_user *u);

int sd__stat(sd_core *c, const sd_user *u, const char *path, sd_stat *st);
int sd__readdir(sd_core *c, const sd_user *u, const char *path, const char *after, int limit,
		sd_readdir_cb cb, void *arg, int *more);
int sd__mkdir(sd_core *c, const sd_user *u, const char *path, uint32_t mode, int parents);
int sd__rmdir(sd_core *c, const sd_user *u, const char *path);
int sd__unlink(sd_core *c, const sd_user *u, const char *path, int recursive);
int sd__rename(sd_core *c, const sd_user *u, const char *from, const char *to);
int sd__chmod(sd_core *c, const sd_user *u, const char *path, uint32_t mode);
int sd__set_mtime(sd_core *c, const sd_user *u, const char *path, int64_t mtime);
int sd__copy(sd_core *c, const sd_user *u, const char *from, const char *to);
int sd__fsinfo(sd_core *c, const sd_user *u, sd_fsinfo *out);
int sd__normalize(const char *path, char *out, size_t outlen);

int sd__upload_begin(sd_core *c, const sd_user *u, const char *path, unsigned flags,
		     uint64_t offset, uint32_t mode, sd_upload **out);
int sd__upload_write(sd_upload *up, const void *buf, size_t len);
uint64_t sd__upload_size(const sd_upload *up);
void sd__upload_set_mtime(sd_upload *up, int64_t mtime);
int sd__upload_commit(sd_upload *up, const char *expect, sd_stat *st, int *dedup);
void sd__upload_abort(sd_upload *up);

int sd__instant_begin(sd_core *c, const sd_user *u, const char *path, unsigned flags,
		      const char *sha256, uint64_t size, sd_challenge *ch, sd_stat *st);
int sd__instant_prove(sd_core *c, const sd_user *u, const char *path, unsigned flags,
		      const char *sha256, uint64_t size, const char *nonce, const char *proof,
		      sd_stat *st);

int sd__open_read(sd_core *c, const sd_user *u, const char *path, int *fd, sd_stat *st);

int sd__file_open(sd_core *c, const sd_user *u, const char *path, unsigned flags, uint32_t mode,
		  sd_file **out);
ssize_t sd__file_pread(sd_file *f, void *buf, size_t len, uint64_t off);
ssize_t sd__file_pwrite(sd_file *f, const void *buf, size_t len, uint64_t off);
int sd__file_truncate(sd_file *f, uint64_t size);
int sd__file_fstat(sd_file *f, sd_stat *st);
int sd__file_sync(sd_file *f);
int sd__file_close(sd_file *f);
void sd__file_abandon(sd_file *f);

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

#endif
