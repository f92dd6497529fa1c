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
 *      The row is chained to the one before it inside that transaction
 *      (journal.c J1).
 *  I6. No content I/O (reading, writing, fsync) happens inside a
 *      transaction; only the store's place/remove steps of a commit.
 *  I7. Open-mode counts and handle generations never go negative or
 *      backwards (asserted in test builds).
 *
 * Layering (each file calls only downwards):
 *   api.c (the table: check the session, resolve paths, dispatch)
 *   replica.c (replication: a source's rows applied with the calls below)
 *   session.c (sessions, credential re-checks)   core.c (lifecycle)
 *     -> history.c (past views, restore, trash, rollback, virtual folders)
 *     -> tree.c  upload.c  instant.c  reader.c  handle.c -> file.c
 *       -> commit.c (blob row + node + version + journal in one txn)
 *         -> blob.c (rows)  versions.c  placements.c  journal.c  store (store.h)
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
typedef struct sd_lockent sd_lockent;

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
	sd_lockent *locks;      /* write locks, see lock.c (under open_lock too) */
	int nlocks, caplocks;

	struct sd_teamcache *teams; /* team.c: users' team snapshots */
	/* bumped after every team change committed by this process (team.c),
	 * so open handles re-check their rights at once */
	atomic_uint team_mem_gen;

	sd_htable *handles;     /* handle.c */

	pthread_mutex_t access_lock;
	int64_t *accessed;      /* blob ids read since the last flush */
	size_t naccessed, capaccessed;

	atomic_uint_fast64_t temp_seq;

	/* resumable uploads (rupload.c): the uploads open in this process */
	char *up_dir;            /* <data_dir>/uploads: part files */
	pthread_mutex_t rup_lock;
	pthread_cond_t rup_cond;
	struct sd_rup_live *rups;

	/* event hooks (events.c); NULL when none are configured or in tools */
	struct sd_events *events;

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
 * take this (copied from a checked session), never a front end's data. The
 * first fields are those of sd_user; proto and addr say where the session
 * came from, for the history of what it changes (versions). */
typedef struct sd_principal {
	int64_t id;
	char name[SD_USERNAME_MAX + 1];
	unsigned flags;
	int64_t quota;
	int64_t used;
	char proto[16]; /* "ftp", "sftp", "http", "cli" ... */
	char addr[64];  /* the client's address at login */
} sd_principal;
/* Copy the user fields of u into p (proto and addr stay). */
void sd__principal_set_user(sd_principal *p, const sd_user *u);
/* Make a session for a user found by name, without credentials: for the
 * admin tool (core.h sd_core_session). */
int sd__session_new(sd_core *c, const sd_user *u, int method, int64_t cred_id,
		    const unsigned char *pwtag, const char *addr, const char *proto,
		    sd_session **out);
enum { SD_METHOD_ADMIN = 0, SD_METHOD_PASSWORD, SD_METHOD_TOKEN, SD_METHOD_KEY,
       SD_METHOD_ANONYMOUS, SD_METHOD_LINK };
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
/* The lock tokens a session submits (lock.c): a copy, so that an upload
 * can check them again at its commit, after the session is gone. */
typedef struct sd_locktoks {
	int n;
	char tok[SD_LOCK_SUBMIT_MAX][SD_LOCKTOKEN_MAX];
} sd_locktoks;
void sd__session_set_tokens(sd_session *s, const sd_locktoks *tk);
void sd__session_tokens(sd_session *s, sd_locktoks *out);
/* The deletion stamp of a delete the session makes at now_ms: the moment
 * its burst of deletes began (deletes less than SD_DELETE_BURST_MS apart
 * are one burst), so that a folder a client deletes file by file (SFTP,
 * FTP) is one trash item (history.c). */
#define SD_DELETE_BURST_MS 10000
int64_t sd__session_delete_stamp(sd_session *s, int64_t now_ms);
/* A keyed tag of a stored password hash (a changed password changes it). */
void sd__pwtag(const char *pwhash, unsigned char out[32]);

/* ---- journal.c: the hash-chained journal (design notes in journal.c) */
/* The text fields of a row, in canonical order: user, op, path, detail,
 * args. */
#define SD_JFIELDS 5
/* Append one journal row inside the caller's write transaction, chained
 * on the newest row (J1). args: NULL or the text of a JSON object (what a
 * replay needs). 0 or -errno: a failure must fail the caller's
 * transaction (I5). */
int sd__journal_row(sd_dbc *d, int64_t ts, const char *user, const char *op, const char *path,
		    const char *detail, const char *args);
/* sd__journal_row without args. */
int sd__journal(sd_dbc *d, int64_t ts, const char *user, const char *op, const char *path,
		const char *detail);
/* sd__journal_row with args built by sd__jargs_* into *args (may be NULL
 * or empty: no args); frees *args whatever happens. */
int sd__journal_args(sd_dbc *d, int64_t ts, const char *user, const char *op, const char *path,
		     const char *detail, sd_buf *args);
/* Add one member to the JSON object being built in b (started by the
 * first call; sd__journal_args closes it): a string, an integer, or a
 * mode as an octal string ("0644"). */
void sd__jargs_str(sd_buf *b, const char *key, const char *val);
void sd__jargs_int(sd_buf *b, const char *key, int64_t v);
void sd__jargs_mode(sd_buf *b, const char *key, uint32_t mode);
/* Journal a row in its own transaction (login failures). */
int sd__journal_alone(sd_core *c, const char *user, const char *op, const char *detail);
int sd__journal_list(sd_core *c, int64_t since_ms, const char *user, int64_t after,
		     sd_journal_cb cb, void *arg);
/* SHA-256 of a row's canonical byte form (journal.c design notes). */
void sd__journal_hash(const unsigned char prev[32], int64_t seq, int64_t ts,
		      const char *const fields[SD_JFIELDS], unsigned char out[32]);
/* Chain the rows written before migration 0002 (J4); a no-op once done.
 * Called by sd_core_open. */
int sd__journal_seal(sd_core *c);
/* Prune the prefix of rows older than cutoff (ms), moving the anchor in
 * the same transactions (J3); adds the count to *pruned. */
int sd__journal_prune(sd_core *c, int64_t cutoff, int64_t *pruned);
/* One journal row as read for export and replication (strings owned). */
typedef struct sd_jrow {
	int64_t seq, ts;
	char *f[SD_JFIELDS];
	unsigned char prev[32], hash[32];
	int has_prev, has_hash;
} sd_jrow;
/* Up to limit rows with seq > after, oldest first, into rows (caller's
 * array); returns how many. Free their strings with sd__jrows_free. */
int sd__journal_page(sd_core *c, int64_t after, int limit, sd_jrow *rows);
void sd__jrows_free(sd_jrow *rows, int n);
/* The anchor's seq and hash, and (head may be NULL) the newest row's seq
 * (the anchor's when the journal is empty). */
int sd__journal_anchor(sd_core *c, int64_t *seq, unsigned char hash[32], int64_t *head);
/* Replication's mark: "this change applies source row seq (hash)". */
typedef struct sd_jmark {
	const char *source; /* the source's store_id */
	int64_t seq;
	unsigned char hash[32];
	int fired;          /* set once a journal row has stored it */
} sd_jmark;
/* Arm m for the calling thread (NULL disarms): the next journal row this
 * thread writes also stores m in the replica table, in the same
 * transaction, and sets m->fired. */
void sd__journal_mark(sd_jmark *m);
/* Store m in the replica table inside the caller's write transaction. */
int sd__journal_mark_store(sd_dbc *d, const sd_jmark *m, int64_t now);
/* The meta table (store_id, journal_sealed): 0, -ENOENT, -errno. */
int sd__meta_get(sd_dbc *d, const char *key, char *out, size_t outlen);
int sd__meta_set(sd_dbc *d, const char *key, const char *value);

/* ---- versions.c */
/* What a version records besides its content (history.c shows it). */
typedef struct sd_vmeta {
	int64_t mtime;           /* seconds: the file's mtime after this commit */
	const sd_principal *u;   /* who, over what, from where; NULL: not known */
	const char *op;          /* "write", "instant", "copy", "restore", "rollback" */
} sd_vmeta;
/* Add one version of node -> blob (refs+1, last_access), in the caller's
 * write transaction; the caller makes it the node's content (nodes.blob),
 * and this sets nodes.vts, the time of the node's newest version, to ts. */
int sd__version_add(sd_dbc *d, int64_t node, int64_t blob, uint64_t size, int64_t ts,
		    const sd_vmeta *m);
int64_t sd__version_count(sd_dbc *d, int64_t node);
/* The newest version's mtime follows a set_mtime of the file (so a view
 * of now shows what a listing shows). */
int sd__version_set_mtime(sd_dbc *d, int64_t node, int64_t mtime);
int sd__versions_list(sd_core *c, const sd_principal *u, const char *npath, sd_version_cb cb,
		      void *arg);

/* ---- placements.c: rows of the tree's past shape (design: history.c) */
/* node begins a stay at (parent, name) at ts: made, moved in, brought back. */
int sd__place_open(sd_dbc *d, int64_t node, int64_t owner, int64_t parent, const char *name,
		   size_t nlen, int64_t ts);
/* node's open stay ends at ts: moved away, deleted. */
int sd__place_close(sd_dbc *d, int64_t node, int64_t ts);
/* The open stays of node and of every live node below it end at ts (a
 * delete, called before the nodes are marked). */
int sd__place_close_tree(sd_dbc *d, int64_t node, int64_t ts);
/* owner's tree changed at ts (a moment /.snapshots/ lists). */
int sd__tree_changed(sd_dbc *d, int64_t owner, int64_t ts);
/* The oldest moment whose view is complete at now_ms (H6): now minus
 * min(deleted_retention, version_retention), version_retention 0 counting
 * as forever. */
int64_t sd__history_horizon(sd_core *c, int64_t now_ms);

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
/* The temp file (made now if the content was only in memory). fd or
 * -errno. */
int sd__wpipe_fd(sd_wpipe *p);
const char *sd__wpipe_path(const sd_wpipe *p);
/* After finish: the content when it never left memory (*data, length
 * returned), else -1. */
ssize_t sd__wpipe_mem(const sd_wpipe *p, const void **data);
/* A pipe that goes on writing an existing file (fd, owned by the pipe from
 * here on, closed by sd__wpipe_free; path for messages and commit) at
 * offset: a resumable upload's part file. state (may be NULL) is the
 * SHA-256 state of [0, offset); without it the address is computed by
 * re-reading the file at finish. */
struct evp_md_ctx_st;
int sd__wpipe_open_file(sd_core *c, int fd, const char *path, uint64_t offset,
			const struct evp_md_ctx_st *state, sd_wpipe **out);
/* Drain, then copy the running SHA-256 state of every byte given so far
 * into out: 0; -ENOENT when the pipe has none (it will re-read); -errno. */
int sd__wpipe_hash_state(sd_wpipe *p, struct evp_md_ctx_st *out);
/* The file was changed behind the pipe (random write): the running hash
 * is no longer the content's; finish() will re-read the file. size is the
 * new length. */
void sd__wpipe_invalidate(sd_wpipe *p, uint64_t size);
/* Drain and produce the content address. A content that never needed the
 * temp file stays in memory (sd__wpipe_mem). */
int sd__wpipe_finish(sd_wpipe *p, char hex[SD_SHA256_HEX], uint64_t *size);
/* Free; unlink_temp removes the temp file (not needed after a commit). */
void sd__wpipe_free(sd_wpipe *p, int unlink_temp);
/* SHA-256 of [0,size) of a source read with rd (a short source is
 * -EIO); of a descriptor. */
int sd__hash_source(ssize_t (*rd)(void *src, void *buf, size_t len, uint64_t off), void *src,
		   uint64_t size, char hex[SD_SHA256_HEX]);
int sd__hash_fd(int fd, uint64_t size, char hex[SD_SHA256_HEX]);

/* ---- team.c: groups, shared folders, rules (design notes T1-T8 there) */
/* A principal flag (not a user flag): the session sees its own tree only,
 * no shared folder (an FTP anonymous session). */
#define SD_P_OWN_TREE 0x100u
/* A shared folder as a user sees it. */
typedef struct sd_mount {
	int64_t share;   /* shares.id */
	int64_t account; /* the users row that owns its tree */
	int64_t root;    /* its root node */
	int64_t created; /* ms */
	char name[SD_USERNAME_MAX + 1]; /* mounted at "/<name>" */
} sd_mount;
/* What the teams give one user, as of one team_gen (T3): immutable,
 * reference counted. */
typedef struct sd_team sd_team;
struct sd_teamcache;
int sd__team_init(sd_core *c);
void sd__team_free_all(sd_core *c);
/* The snapshot of uid at generation gen (read in d's transaction): from
 * the cache, or loaded in d. Release with sd__team_put. */
int sd__team_get(sd_core *c, sd_dbc *d, int64_t uid, int64_t gen, sd_team **out);
void sd__team_put(sd_team *t);
/* 1 and *rights when a rule on node names the user (or a group of
 * theirs), combined as T4 says; 0 otherwise. t may be NULL. */
int sd__team_rule(const sd_team *t, int64_t node, unsigned *rights);
/* Iterate the rule nodes: start with *i = 0; 1 per node, 0 at the end. */
int sd__team_rule_iter(const sd_team *t, size_t *i, int64_t *node, unsigned *rights);
/* The mount named name (len bytes) / with this root node, or NULL. */
const sd_mount *sd__team_mount(const sd_team *t, const char *name, size_t len);
const sd_mount *sd__team_mount_root(const sd_team *t, int64_t root);
/* All mounts (by name) into *out; returns how many. */
int sd__team_mounts(const sd_team *t, const sd_mount **out);
/* A group or share name: as a user name. */
int sd__team_valid_name(const char *n);
/* Rights as words for the journal: "list,read,write", "none". */
void sd__team_rights_text(unsigned r, char *out, size_t outlen);
/* A user's memberships, rules and links go (user_delete), in the caller's
 * transaction; team_gen bumped. */
int sd__team_user_gone(sd_dbc *d, int64_t uid);
/* Bump the in-process generation after a committed change. */
void sd__team_changed(sd_core *c);
/* The admin calls of storaged.h. */
int sd__group_add(sd_core *c, const char *name);
int sd__group_delete(sd_core *c, const char *name);
int sd__group_member_add(sd_core *c, const char *group, const char *user);
int sd__group_member_remove(sd_core *c, const char *group, const char *user);
int sd__group_list(sd_core *c, const char *name, sd_group_cb cb, void *arg);
int sd__share_create(sd_core *c, const char *name, int64_t quota, int64_t *id);
int sd__share_delete(sd_core *c, const char *name);
int sd__share_set_quota(sd_core *c, const char *name, int64_t quota);
int sd__share_grant(sd_core *c, const char *share, const char *path, const char *user,
		    const char *group, unsigned rights);
int sd__share_revoke(sd_core *c, const char *share, const char *path, const char *user,
		     const char *group);
int sd__share_list(sd_core *c, const char *name, sd_share_cb cb, void *arg);
int sd__share_rules(sd_core *c, const char *name, sd_share_rule_cb cb, void *arg);

/* ---- tree.c */
typedef struct sd_node {
	int64_t id, parent, owner, blob;
	int kind;
	uint64_t size;
	uint32_t mode;
	int64_t mtime, ctime;
	char sha256[SD_SHA256_HEX];
	char created_by[SD_USERNAME_MAX + 1], changed_by[SD_USERNAME_MAX + 1];
	/* as found through a view (sd__view_*); a row read otherwise has all
	 * rights, vis 1, share 0, top 0 */
	unsigned rights; /* SD_RIGHT_* of the principal here (T4) */
	int vis;         /* the principal may see it (T6) */
	int64_t share;   /* the shared folder it is in, 0: the user's own tree */
	int64_t top;     /* the root node of its tree */
	int mount;       /* the root of a shared folder, seen at its mount */
} sd_node;
/* A principal's view (team.c T2): their tree with the shared folders they
 * see mounted, inside one transaction d. */
typedef struct sd_view {
	sd_core *c;
	sd_dbc *d;
	const sd_principal *u;
	sd_team *t;    /* the user's teams as of d (T3); NULL: own tree only */
	int64_t root;  /* the user's root node */
} sd_view;
/* Open a view in d (reads the user's root and team_gen): 0 or -ENOENT.
 * Close it before d ends. */
int sd__view_open(sd_core *c, sd_dbc *d, const sd_principal *u, sd_view *v);
void sd__view_close(sd_view *v);
/* The user's root; the child of dir (a mount at the root); a normalised
 * path. Nodes carry rights and visibility. On -ENOENT, lookup leaves in
 * *out the deepest folder that exists (rights of a new node there). */
int sd__view_root(sd_view *v, sd_node *out);
int sd__view_child(sd_view *v, const sd_node *dir, const char *name, size_t len, sd_node *out);
int sd__view_lookup(sd_view *v, const char *np, sd_node *out);
/* out, a child of dir in the same tree (read by the caller), gets its
 * rights and visibility from dir and the rules (T4, T6). */
void sd__view_inherit(const sd_view *v, const sd_node *dir, sd_node *out);
/* The root of shared folder m as seen through its mount. */
int sd__view_mount(const sd_view *v, const sd_mount *m, sd_node *out);
/* Walk to the folder that holds np (making missing folders when create,
 * which needs the write right: -EACCES), *leaf pointing at np's last
 * component. On -ENOENT (create 0) *dir is the deepest folder that
 * exists. */
int sd__view_parent(sd_view *v, const char *np, int create, int64_t now_ms, sd_node *dir,
		    const char **leaf);
/* The rights of the view's user on node id (live or deleted) by its
 * parent chain, the root of its tree (*top) and its share (0: own tree).
 * -ENOENT when the node is in no tree the user sees. */
int sd__view_node_rights(sd_view *v, int64_t id, unsigned *rights, int64_t *top,
			 int64_t *share);
/* 1 when the user has `need` on n and on every rule node below it. */
int sd__view_subtree_ok(sd_view *v, const sd_node *n, unsigned need);
/* Resolve a normalised path in u's view (a view opened and closed in d);
 * -ENOENT / -ENOTDIR. */
int sd__tree_lookup(sd_core *c, sd_dbc *d, const sd_principal *u, const char *npath,
		    sd_node *out);
/* Row helpers for history.c, in the caller's transaction:
 * the node with this id, live or deleted (-ENOENT); */
int sd__tree_node(sd_dbc *d, int64_t id, sd_node *out);
/* the live child `name` (len bytes) of parent (-ENOENT); */
int sd__tree_child(sd_dbc *d, int64_t parent, const char *name, size_t len, sd_node *out);
/* the node columns of a row selected with tree.c's NODE_COLS order; */
void sd__tree_read_node(sqlite3_stmt *st, sd_node *n);
/* the node at np below node top, without a view (admin: share_grant),
 * making missing folders when create (created_by `by`, may be NULL); */
int sd__tree_walk_from(sd_dbc *d, int64_t top, const char *np, int create, int64_t now_ms,
		       const char *by, sd_node *out);
/* the path of node below top ("/a/b", "/" for top itself) by its parent
 * chain now; -ENOENT when top is not above it; */
int sd__tree_path_of(sd_dbc *d, int64_t node, int64_t top, sd_buf *out);
/* a new live node, its first stay opened at now_ms (no version, no
 * journal, no usage); `by` (may be NULL) made it; */
int sd__tree_insert(sd_dbc *d, int64_t owner, int64_t parent, const char *name, size_t nlen,
		    int kind, int64_t blob, uint64_t size, uint32_t mode, int64_t now_ms,
		    const char *by, int64_t *id);
/* logical delete of n and of the live nodes below it at now_ms: stays
 * closed, usage of n's owner lowered, the moment marked (no journal);
 * deleted_at is del_at when 0 < del_at <= now_ms (the start of a burst of
 * deletes, so that a folder deleted file by file is one trash item) unless
 * a node of that name was deleted with that stamp already, else now_ms;
 * *stamp (may be NULL) = the deleted_at written; */
int sd__tree_delete(sd_dbc *d, const sd_node *n, int64_t now_ms, int64_t del_at,
		    int64_t *stamp);
/* used_bytes += delta; -EDQUOT past the quota when check_quota and delta > 0. */
int sd__tree_used_add(sd_dbc *d, int64_t uid, int64_t delta, int check_quota);
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
	/* may be NULL: run in the same transaction once the tree changed (a
	 * resumable upload marks itself done there); an error fails it all */
	int (*in_txn)(sd_dbc *d, void *arg);
	void *in_txn_arg;
} sd_put;
int sd__tree_put(sd_core *c, sd_dbc *d, int64_t blob_id, sd_put *put);
/* Where a put of npath would go, checked as sd__tree_put checks it (in a
 * read transaction of its own): 0 with *exists = 1 and *n the file, or
 * *exists = 0 and *n the folder it would be made in (the deepest that
 * exists with SD_UP_PARENTS). -EACCES, -EISDIR, -EEXIST, -ENOENT. */
int sd__tree_put_target(sd_core *c, const sd_principal *u, const char *npath, unsigned flags,
			sd_node *n, int *exists);
/* The stat form of n (a shared folder's mode without write bits where the
 * user may not write). */
void sd__node_to_stat(const sd_node *n, sd_stat *st);
int sd__tree_stat(sd_core *c, const sd_principal *u, const char *npath, sd_stat *st);
/* u's rights at npath (or where a new node there would be). */
int sd__tree_access(sd_core *c, const sd_principal *u, const char *npath, unsigned *rights);
int sd__tree_readdir(sd_core *c, const sd_principal *u, const char *npath, const char *after,
		     int limit, sd_readdir_cb cb, void *arg, int *more);
int sd__tree_mkdir(sd_core *c, const sd_principal *u, const char *npath, uint32_t mode,
		   int parents);
/* del_at: as for sd__tree_delete (0: now). */
int sd__tree_remove(sd_core *c, const sd_principal *u, const char *npath, int want_dir,
		    int recursive, int64_t del_at);
int sd__tree_rename(sd_core *c, const sd_principal *u, const char *nf, const char *nt,
		    unsigned flags);
int sd__tree_chmod(sd_core *c, const sd_principal *u, const char *npath, uint32_t mode);
int sd__tree_set_mtime(sd_core *c, const sd_principal *u, const char *npath, int64_t mtime);
int sd__tree_copy(sd_core *c, const sd_principal *u, const char *nf, const char *nt);
int sd__tree_fsinfo(sd_core *c, const sd_principal *u, sd_fsinfo *out);
/* The user's root node id; -ENOENT if the user is gone. */
int sd__user_root(sd_dbc *d, int64_t uid, int64_t *root);

/* ---- history.c: views of the past, restore, trash, rollback, and the
 * virtual folders /.snapshots/ and /.trash/ (design notes and H1-H8 there).
 * npath arguments are resolved; api.c sends every path under a virtual
 * folder to the sd__virt_* calls. */
enum { SD_VIRT_NONE = 0, SD_VIRT_SNAP, SD_VIRT_TRASH };
/* Which virtual folder npath is in (a first component ".snapshots" or
 * ".trash"), or SD_VIRT_NONE. */
int sd__virt_kind(const char *npath);
/* The error a write under npath's virtual folder gets: -EROFS (snapshots)
 * or -EACCES (trash). */
int sd__virt_refuse(const char *npath);
int sd__virt_stat(sd_core *c, const sd_principal *u, const char *npath, sd_stat *st);
int sd__virt_readdir(sd_core *c, const sd_principal *u, const char *npath, const char *after,
		     int limit, sd_readdir_cb cb, void *arg, int *more);
int sd__virt_open_read(sd_core *c, const sd_principal *u, const char *npath, sd_reader **out,
		       sd_stat *st);
/* A read-only handle's file; a write flag gets sd__virt_refuse. */
int sd__virt_open_file(sd_core *c, const sd_principal *u, const char *npath, unsigned flags,
		       sd_file **out, sd_stat *st);
/* copy whose source nf is a file of a view: its content then, at nt. */
int sd__virt_copy(sd_core *c, const sd_principal *u, const char *nf, const char *nt);
/* rename whose source nf is under a virtual folder: an item of /.trash/
 * to nt outside them restores it; anything else is refused. */
int sd__virt_rename(sd_core *c, const sd_principal *u, const char *nf, const char *nt,
		    unsigned flags);
/* readdir of "/" with the virtual folders among the entries. */
int sd__hist_readdir_root(sd_core *c, const sd_principal *u, const char *after, int limit,
			  sd_readdir_cb cb, void *arg, int *more);
/* The storaged.h history calls. */
int sd__hist_version_restore(sd_core *c, const sd_principal *u, const char *npath, int64_t vid,
			     sd_stat *st);
int sd__hist_trash_list(sd_core *c, const sd_principal *u, sd_trash_cb cb, void *arg);
/* parents: make missing folders of `to` (always when to is NULL). */
int sd__hist_trash_restore(sd_core *c, const sd_principal *u, int64_t id, const char *to,
			   int parents, sd_stat *st);
/* The trash item of u's view deleted with stamp deleted_at from path
 * `from` (as a journal row names it, "/<mount>/..." in a shared folder):
 * 0 and *id, or -ENOENT. */
int sd__hist_find_item(sd_core *c, const sd_principal *u, const char *from, int64_t deleted_at,
		       int64_t *id);
int sd__hist_trash_empty(sd_core *c, const sd_principal *u, int64_t id);
int sd__hist_rollback(sd_core *c, const sd_principal *u, const char *npath, int64_t at,
		      sd_rollback_report *rep);
int sd__hist_at_path(sd_core *c, const sd_principal *u, const char *npath, int64_t at,
		     char *out, size_t outlen);

/* ---- commit.c: the one commit step (DESIGN path 1, I2, I3, I5) */
/* Make the temp file (fd, tmppath; content hex of size bytes) durable in
 * the store and, in one write transaction, find or insert its blob row and
 * apply put (node, version, usage, journal); content already stored inline
 * is referenced instead (nothing placed). The temp file is consumed
 * whatever happens (fd stays open; the caller closes it). *dedup (may be
 * NULL) = 1 when the content was already stored. */
int sd__commit_temp(sd_core *c, int fd, const char *tmppath, const char *hex, uint64_t size,
		    sd_put *put, int *dedup);
/* Apply put to content that is already stored (instant upload): -SD_ESENDDATA
 * when its row is gone (the cleaner removed it meanwhile). */
int sd__commit_stored(sd_core *c, const char *hex, uint64_t size, sd_put *put);
/* Commit a finished pipe: a content up to inline_max goes into the
 * database with its rows (one durable write), a larger one through
 * commit_temp. The pipe's temp file (if any) is consumed either way. */
int sd__commit_pipe(sd_core *c, sd_wpipe *p, const char *hex, uint64_t size, sd_put *put,
		    int *dedup);

/* Commit a finished file that must outlive a failed commit (a resumable
 * upload's part file at path, read through fd): a content up to
 * inline_max is read back and stored inline, a larger one is hard-linked
 * into tmp/ and that link goes through commit_temp. The file at path is
 * left in place either way (the caller removes it after a success). */
int sd__commit_keep(sd_core *c, int fd, const char *path, const char *hex, uint64_t size,
		    sd_put *put, int *dedup);

/* ---- upload.c */
int sd__upload_begin(sd_core *c, const sd_principal *u, const sd_cred *cred, const char *npath,
		     unsigned flags, uint64_t offset, uint32_t mode, sd_upload **out);
int sd__upload_write(sd_upload *up, const void *buf, size_t len);
uint64_t sd__upload_size(const sd_upload *up);
/* Bytes the quota leaves for the file, -1: no limit (storaged.h). */
int64_t sd__upload_room(const sd_upload *up);
void sd__upload_set_mtime(sd_upload *up, int64_t mtime);
/* Check the locks again at commit: how (SD_LK_*) with tokens tk. */
void sd__upload_set_locks(sd_upload *up, unsigned how, const sd_locktoks *tk);
int sd__upload_commit(sd_upload *up, const char *expect, sd_stat *st, int *dedup);
void sd__upload_abort(sd_upload *up);
/* The bytes user uid's quota allows one file whose stored content is
 * `existing` bytes now (counted back): *room, or -1 when unlimited. 0 or
 * -SD_EAUTH for an unknown user. */
int sd__quota_room(sd_dbc *d, int64_t uid, uint64_t existing, int64_t *room);

/* ---- rupload.c: resumable uploads (design notes and R1-R5 there);
 * contracts of the calls in storaged.h (rup_*) */
int sd__rup_create(sd_core *c, const sd_principal *u, const char *npath, unsigned flags,
		   uint64_t length, uint32_t mode, const char *meta, sd_rupload_info *out);
int sd__rup_info(sd_core *c, const sd_principal *u, const sd_cred *cred, const char *id,
		 sd_rupload_info *out);
int sd__rup_open(sd_core *c, const sd_principal *u, const sd_cred *cred, const char *id,
		 uint64_t offset, const char *expect, sd_rupload **out);
int sd__rup_write(sd_rupload *h, const void *buf, size_t len);
int sd__rup_close(sd_rupload *h, int keep, sd_rupload_info *out);
int sd__rup_delete(sd_core *c, const sd_principal *u, const char *id);
/* The cleaner's step: remove uploads expired at now (ms) that nobody has
 * open, and part files without a row; *count += uploads removed. */
int sd__rup_expire(sd_core *c, int64_t now, int64_t *count);
/* Free the live table (core close). */
void sd__rup_free_all(sd_core *c);

/* ---- instant.c */
int sd__instant_begin(sd_core *c, const sd_principal *u, const char *npath, unsigned flags,
		      const char *sha256, uint64_t size, sd_challenge *ch, sd_stat *st);
int sd__instant_prove(sd_core *c, const sd_principal *u, const char *npath, unsigned flags,
		      const char *sha256, uint64_t size, const char *nonce, const char *proof,
		      sd_stat *st);
void sd__chal_free_all(sd_core *c);

/* ---- reader.c */
/* A reader of the current content of npath in u's view; need: the rights
 * it takes (SD_RIGHT_READ, or 0 for a caller that checked them). */
int sd__reader_open(sd_core *c, const sd_principal *u, const char *npath, unsigned need,
		    sd_reader **out, sd_stat *st);
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
/* tk: the lock tokens the opener submits (NULL: none); a write open of a
 * path a lock covers needs them (lock.c), checked under open_lock with
 * the open-mode table, so a lock and a conflicting open never both win. */
int sd__file_open(sd_core *c, const sd_principal *u, const char *npath, unsigned flags,
		  uint32_t mode, const sd_locktoks *tk, sd_file **out, sd_stat *st);
/* The open-mode key of npath in u's view: "n<id>" for a node (*node = 1),
 * else "p<folder id>/<name>" for a file being created (the same key for
 * every user who creates it in a shared folder). 0 (*key is the caller's
 * to free), -ENOENT (no such path or parent, or not visible), -ENOTDIR. */
int sd__open_key(sd_core *c, const sd_principal *u, const char *npath, char **key, int *node);
/* open_lock held: is the open-mode entry key (sd__open_key) open for
 * writing or exclusively? */
int sd__open_writers_locked(sd_core *c, const char *key);
/* A read-only file of a past view or the trash (history.c): reads base
 * (owned from here on; NULL for empty content), fstat gives *st. */
int sd__file_open_view(sd_core *c, const sd_principal *u, const char *npath, sd_reader *base,
		       const sd_stat *st, sd_file **out);
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
/* A handle's file in a shared folder: are the rights its open needed
 * still there? Checked at once after a team change made by this process,
 * else at most every SD_TEAM_RECHECK_MS (changes made by storagectl);
 * -EACCES once they are gone. */
#define SD_TEAM_RECHECK_MS 1000
int sd__file_recheck(sd_file *f);
/* Flags (with the share mode), dirtiness and path of f into out. */
void sd__file_info(const sd_file *f, sd_handle_info *out);
/* For messages and the journal: the file's path and its user's name. */
const char *sd__file_path(const sd_file *f);
const char *sd__file_user(const sd_file *f);

/* ---- lock.c: write locks (design notes there; contract in storaged.h) */
/* What a change does to npath, for sd__lock_allow: */
#define SD_LK_SELF   0x1u /* changes npath itself (content, attributes, props, name) */
#define SD_LK_PARENT 0x2u /* adds or removes npath in its folder */
#define SD_LK_TREE   0x4u /* changes everything below npath too (delete, move) */
/* 0 when uid may change npath that way with tokens tk (NULL: none): every
 * live lock of uid that covers it needs its token in tk; else -EBUSY.
 * Takes open_lock; the _locked form is for a caller holding it. */
int sd__lock_allow(sd_core *c, int64_t uid, const char *npath, unsigned how,
		   const sd_locktoks *tk);
int sd__lock_allow_locked(sd_core *c, int64_t uid, const char *npath, unsigned how,
			  const sd_locktoks *tk);
/* 1 when uid holds any live lock (a cheap test before a stat). */
int sd__lock_any(sd_core *c, int64_t uid);
/* open_lock held: does a live lock of uid cover npath? (open_state) */
int sd__lock_covers_locked(sd_core *c, int64_t uid, const char *npath);
/* Take a lock on npath for u (okey: its open-mode key, sd__open_key, of
 * the node or of a name not there yet: the open-mode table is checked for
 * it either way). */
int sd__lock_take(sd_core *c, const sd_principal *u, const char *npath, const char *okey,
		  unsigned flags, int64_t timeout, const char *owner, sd_lock_info *out);
int sd__lock_refresh(sd_core *c, const sd_principal *u, const char *npath, const char *token,
		     int64_t timeout, sd_lock_info *out);
int sd__lock_release(sd_core *c, const sd_principal *u, const char *npath, const char *token);
int sd__lock_discover(sd_core *c, const sd_principal *u, const char *npath, unsigned flags,
		      sd_lock_cb cb, void *arg);
/* Remove uid's locks on npath and below (it was deleted or moved away). */
void sd__locks_drop(sd_core *c, int64_t uid, const char *npath);
void sd__locks_free_all(sd_core *c);

/* ---- props.c: dead properties of nodes (contract in storaged.h) */
int sd__props_get(sd_core *c, const sd_principal *u, const char *npath, sd_prop_cb cb,
		  void *arg);
int sd__props_patch(sd_core *c, const sd_principal *u, const char *npath, const sd_prop *ops,
		    int n);

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
#define SD_PWHASH_MAX 128 /* an Argon2id string with its NUL (crypto_pwhash_STRBYTES) */
/* Argon2id string of pw (as user passwords): 0 or -ENOMEM. */
int sd__password_hash(const char *pw, char out[SD_PWHASH_MAX]);
/* 1 if pw is the password of hash (verifications bounded as logins; a
 * success is remembered under key, as the login cache does), else 0. */
int sd__password_check(sd_core *c, int64_t key, const char *hash, const char *pw);
/* Count a failed login from addr (why: a word for the log and journal):
 * the login limiter's delay and lockout. -SD_EAUTH, or -SD_EBLOCKED once
 * addr is locked out. */
int sd__auth_fail(sd_core *c, const char *user, const char *addr, const char *why);
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
/* Purge deleted node id with everything below it (versions and their
 * references, placements, rows) in the caller's write transaction; *count
 * (may be NULL) = nodes purged. The caller checked that id is deleted. */
int sd__purge_subtree(sd_core *c, sd_dbc *d, int64_t id, int64_t *count);
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
/* accounts (auth.c; contracts in storaged.h) */
int64_t sd__auth_blocked_for(sd_core *c, const char *addr);
int sd__user_delete(sd_core *c, const char *name);
/* The cleaner's step after purging nodes: remove the rows of deleted
 * users none of whose nodes is left; *reaped = how many. */
int sd__users_reap(sd_core *c, int64_t *reaped);
int sd__key_list(sd_core *c, const char *name, sd_key_cb cb, void *arg);
int sd__key_remove(sd_core *c, const char *name, const char *key);
int sd__self_password(sd_core *c, const sd_principal *u, const sd_cred *cred, const char *addr,
		      const char *old, const char *new_pw);
int sd__self_token_create(sd_core *c, const sd_principal *u, const sd_cred *cred, int scope,
			  int64_t expires, char out[SD_TOKEN_MAX], int64_t *id);
int sd__self_token_revoke(sd_core *c, const sd_principal *u, int64_t id);
int sd__self_key_add(sd_core *c, const sd_principal *u, const sd_cred *cred, const char *line);
int sd__self_key_remove(sd_core *c, const sd_principal *u, const char *key);
/* For replication (replica.c): credentials copied as stored. */
/* A user with a stored Argon2id string (NULL or "": no password). */
int sd__user_add_hashed(sd_core *c, const char *name, const char *pwhash, int64_t quota,
			unsigned flags);
/* Set the stored password string (NULL or "": none); journals "passwd". */
int sd__user_set_pwhash(sd_core *c, const char *name, const char *pwhash);
/* The stored password string of name ("" when none): 0 or -ENOENT. */
int sd__user_pwhash(sd_core *c, const char *name, char *out, size_t outlen);
typedef struct sd_tokrow {
	int64_t id;
	unsigned char hash[32]; /* SHA-256 of the token */
	int readonly, revoked;
	int64_t created, expires; /* ms; expires 0 = never */
	char user[SD_USERNAME_MAX + 1];
} sd_tokrow;
/* A token row by id: 0 or -ENOENT. */
int sd__token_get(sd_core *c, int64_t id, sd_tokrow *out);
/* The ids of name's tokens (malloc'd into *ids); returns the count. */
int sd__token_ids(sd_core *c, const char *name, int64_t **ids);
/* Add t (its hash, scope, times, revoked) to name unless a token with that
 * hash exists; journals "token_create". */
int sd__token_import(sd_core *c, const char *name, const sd_tokrow *t);
/* Revoke the token with this hash: 0 or -ENOENT; journals "token_revoke". */
int sd__token_revoke_hash(sd_core *c, const unsigned char hash[32]);
/* name's public keys as authorized_keys lines (malloc'd array of malloc'd
 * strings in *lines); returns the count. */
int sd__key_lines(sd_core *c, const char *name, char ***lines);
int sd__stats(sd_core *c, sd_stats *out);
int sd__gc_run(sd_core *c, int force, sd_gc_report *out);

/* ---- link.c: share links (design notes L1-L6 there) */
/* Make a link on npath of u's view; check_share: u needs the share right
 * (a session), else not (the admin). */
int sd__link_create(sd_core *c, const sd_principal *u, const char *npath, const sd_link_opts *o,
		    int check_share, char token[SD_LINK_TOKEN_MAX], sd_link_info *out);
/* Links of user name (NULL: all), newest first. */
int sd__link_list(sd_core *c, const char *name, sd_link_cb cb, void *arg);
/* Revoke link id of user uid (0: any user's). */
int sd__link_revoke(sd_core *c, int64_t uid, int64_t id);
int sd__link_open(sd_core *c, const char *token, const char *password, const char *addr,
		  sd_link **out, sd_link_info *info);
int sd__link_stat(sd_link *l, const char *path, sd_stat *st);
int sd__link_readdir(sd_link *l, const char *path, const char *after, int limit,
		     sd_readdir_cb cb, void *arg, int *more);
int sd__link_open_read(sd_link *l, const char *path, sd_reader **out, sd_stat *st);
int sd__link_use(sd_link *l, int what, const char *path);
int sd__link_upload_begin(sd_link *l, const char *name, sd_upload **out);
void sd__link_close(sd_link *l);
/* For replication (replica.c): the link with this token hash. */
typedef struct sd_linkrow {
	int64_t id;
	char user[SD_USERNAME_MAX + 1];
	int mode, revoked;
	char pwhash[SD_PWHASH_MAX];
	int64_t expires, max_downloads, downloads, created; /* ms */
} sd_linkrow;
int sd__link_get(sd_core *c, const unsigned char hash[32], sd_linkrow *out);
/* Insert a copy of a source's link on npath of user's view; journals
 * "link_create". */
int sd__link_import(sd_core *c, const sd_principal *u, const char *npath,
		    const unsigned char hash[32], const sd_linkrow *row);
/* Revoke / count a use of (SD_LINK_USE_*) the link with this hash, as a
 * replay (journaled like the original). */
int sd__link_revoke_hash(sd_core *c, const unsigned char hash[32]);
int sd__link_count_hash(sd_core *c, const unsigned char hash[32], int what, const char *user,
			const char *path);
/* ---- events.c: event hooks (design notes E1-E6 there) */
enum { SD_EV_UPLOAD = 0, SD_EV_DOWNLOAD, SD_EV_DELETE, SD_EV_RENAME, SD_EV_MKDIR, SD_EV_LOGIN,
       SD_EV_LOGIN_FAILED, SD_EV_QUOTA, SD_EV_N };
/* Start the hook workers the config asks for (the daemon only, E4); 0 or
 * -EINVAL (a bad hook_events / webhook_events list). */
int sd__events_start(sd_core *c);
/* Stop them: commands running finish (within hook_timeout), events still
 * queued are dropped and counted in the log. */
void sd__events_stop(sd_core *c);
/* "upload,login" (or "all", or "") into a mask of 1 << SD_EV_*; -EINVAL
 * for an unknown name. */
int sd__event_mask(const char *list, unsigned *mask);
/* Queue an event of u (NULL: none) on path (target: a rename's new path;
 * size -1 and sha256/reason NULL when they do not apply). Never blocks on
 * a hook (E1); a no-op without hooks. */
void sd__event(sd_core *c, int type, const sd_principal *u, const char *path, const char *target,
	       int64_t size, const char *sha256, const char *reason);
/* A login (SD_EV_LOGIN, of user uid) or a failed one (SD_EV_LOGIN_FAILED). */
void sd__event_login(sd_core *c, int type, int64_t uid, const char *user, const char *proto,
		     const char *addr, const char *method, const char *reason);

/* ---- xlog.c: the access and transfer logs (storaged.h log_access,
 * log_transfer; formats in xlog.c) */
void sd__log_access(sd_core *c, const sd_access_rec *a);
void sd__log_transfer(sd_core *c, const sd_xfer_rec *x);

/* ---- api.c: the function table (thin wrappers over the above) */
extern const sd_core_api sd__api;

#endif
