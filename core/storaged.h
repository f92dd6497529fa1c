/*
 * storaged.h - the only interface between the storaged engine and its front
 * ends.
 *
 * A front end (FTP, SFTP, HTTP ...) is a shared object that exports one
 * `sd_module` descriptor named `storaged_module`. The daemon dlopen()s it,
 * checks the ABI version and signature, parses the module's config section
 * through the module's own key table, and calls init/start/stop/destroy.
 *
 * The module never links against core symbols: every engine service reaches
 * it through the versioned function table `sd_core_api` handed to init().
 * It never sees SQLite, the blob store or the data directory.
 *
 * The shape of the API (version 2):
 *  - authentication returns an opaque SESSION (user, read-only flag, client
 *    address, protocol, working directory). Every call on a user's files
 *    takes the session, never a user id: a front end cannot name another
 *    user's tree except through open_read_public;
 *  - the core's one RESOLVER turns a client's path argument into a path in
 *    the session's view: relative arguments start at the working directory,
 *    "." and empty components vanish, ".." removes the previous component
 *    and stops at the root (like a chroot). NUL bytes, invalid UTF-8,
 *    control characters and backslashes are refused (-EINVAL), components
 *    over SD_NAME_MAX, and arguments or results over SD_PATH_MAX bytes, with
 *    -ENAMETOOLONG.
 *    Every call below that takes a path resolves it this way; front ends do
 *    not fold paths themselves;
 *  - a session's credentials are checked again while it lives (at once
 *    after a change made through this engine, at least every second
 *    otherwise, which is how a token's expiry or storagectl in another
 *    process is noticed): once the user is disabled or removed, its
 *    password changed (for a password login), its token revoked or
 *    expired, or its key removed, every call on the session returns
 *    -SD_EAUTH and the front end ends the session;
 *  - files are read through READERS (pread at any offset; a descriptor for
 *    sendfile only when the content is a local file), written through
 *    streamed UPLOADS or random-access HANDLES (open modes, create visible
 *    at commit).
 *
 * Conventions (see CONVENTIONS.md):
 *  - fallible calls return 0 (or a byte count) on success and a negative
 *    errno, or a negative SD_E* code below, on failure; api->strerror() turns
 *    either into words fit for a client;
 *  - objects returned through an out-pointer are owned by the caller and
 *    released with the matching close/abort/free call; if a call fails, its
 *    out-pointer is not set and nothing needs releasing;
 *  - every function is thread-safe, with these exceptions: chdir must not
 *    run while another thread uses the same session; one upload, reader or
 *    handle is used by one thread at a time.
 */
#ifndef STORAGED_H
#define STORAGED_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- errors */

/* Engine-specific error codes, returned negated like errno values. */
#define SD_EBASE       10000
#define SD_ESENDDATA   (SD_EBASE + 1) /* instant upload: content unknown, send data */
#define SD_ECHALLENGE  (SD_EBASE + 2) /* instant upload: answer the challenge */
#define SD_EPROOF      (SD_EBASE + 3) /* instant upload: wrong or stale proof */
#define SD_ECHECKSUM   (SD_EBASE + 4) /* upload content != announced SHA-256 */
#define SD_EAUTH       (SD_EBASE + 5) /* bad credentials / unknown user / disabled */
#define SD_EBLOCKED    (SD_EBASE + 6) /* too many failures from this address */
#define SD_ECONFIG     (SD_EBASE + 7) /* configuration error (message logged) */
#define SD_ECORRUPT    (SD_EBASE + 8) /* stored content missing or damaged */
#define SD_EHISTORY    (SD_EBASE + 9) /* that moment is older than the history kept */
#define SD_ECHANGED    (SD_EBASE + 10) /* conditional commit: the file holds another
					* version now (or is gone) */
/* Plain errno values used with fixed meanings:
 *   ENOENT no such path    EEXIST exists           ENOTDIR/EISDIR kind
 *   ENOTEMPTY dir not empty EACCES not permitted   EROFS read-only token
 *   EDQUOT quota exceeded  ENOSPC disk full        EBUSY open-mode conflict
 *   EINVAL bad path/arg    ENAMETOOLONG too long   EIO storage failure
 *   EBADF unknown handle   EMFILE too many handles ENOTSUP not available */

/* ---------------------------------------------------------------- limits */

#define SD_NAME_MAX      255   /* bytes in one path component */
#define SD_PATH_MAX      4096  /* bytes in a whole user path */
#define SD_USERNAME_MAX  64
#define SD_SHA256_HEX    65    /* 64 hex digits + NUL */
#define SD_TOKEN_MAX     96    /* printed API token incl. NUL */
#define SD_CHALLENGE_MAX 8     /* ranges in a proof-of-possession challenge */

/* ---------------------------------------------------------------- types */

typedef struct sd_core sd_core;       /* the engine */
typedef struct sd_session sd_session; /* an authenticated client session */
typedef struct sd_upload sd_upload;   /* a streamed upload in progress */
typedef struct sd_reader sd_reader;   /* one version of a file, open for reading */
/* A random-access open file of a session: a slot index and a generation,
 * never 0. A stale, forged or foreign id gets -EBADF. */
typedef uint64_t sd_handle;

enum sd_kind { SD_KIND_FILE = 1, SD_KIND_DIR = 2 };

/* User flags. */
#define SD_USER_ADMIN    0x1u
#define SD_USER_DISABLED 0x2u
#define SD_USER_READONLY 0x4u /* a session logged in with a read-only token */

/* A user row as the admin calls list it. Plain data: it is NOT a
 * credential, and no call on files accepts one. */
typedef struct sd_user {
	int64_t id;
	char name[SD_USERNAME_MAX + 1];
	unsigned flags;
	int64_t quota; /* logical bytes, 0 = unlimited */
	int64_t used;  /* logical bytes in live files */
} sd_user;

/* What a session is, as of the call (session_info). */
typedef struct sd_session_info {
	int64_t uid;
	char user[SD_USERNAME_MAX + 1];
	unsigned flags;   /* SD_USER_ADMIN, SD_USER_READONLY */
	int64_t quota;    /* logical bytes, 0 = unlimited */
	int64_t used;     /* logical bytes in live files now */
	char addr[64];    /* client address given at login */
	char proto[16];   /* "ftp", "sftp", "http", "cli" ... */
	int handles;      /* open handles of this session */
	char cwd[SD_PATH_MAX + 1]; /* working directory, "/" at login */
} sd_session_info;

/* Metadata of one node. mtime is seconds since the epoch. */
typedef struct sd_stat {
	int64_t id;
	int kind; /* enum sd_kind */
	uint64_t size;
	uint32_t mode; /* permission bits only, e.g. 0644 */
	int64_t mtime;
	int64_t ctime;                /* creation time */
	char sha256[SD_SHA256_HEX];   /* files: content address; dirs: "" */
	int64_t versions;             /* files: number of stored versions */
	/* Who made the node and who changed it last (its content, mode,
	 * mtime or place): user names, "" when not known (made by the admin
	 * tool, or before the engine recorded it). */
	char created_by[SD_USERNAME_MAX + 1];
	char changed_by[SD_USERNAME_MAX + 1];
} sd_stat;

/* One directory entry given to a readdir callback; valid during the call. */
typedef struct sd_dirent {
	const char *name;
	sd_stat st;
} sd_dirent;

/* Space figures for statvfs-like answers. The disk figures are those of
 * the medium holding the content, like statvfs(2): disk_free counts the
 * blocks reserved for the superuser too (f_bfree), disk_avail only what
 * the server may still write (f_bavail); df's "Used" is total - free, its
 * "Avail" is avail. */
typedef struct sd_fsinfo {
	uint64_t disk_total; /* bytes of the store holding the content */
	uint64_t disk_free;  /* free bytes, reserved blocks included (f_bfree) */
	int64_t quota; /* the user's quota, 0 = unlimited */
	int64_t used;  /* the user's logical bytes now */
	uint64_t disk_avail; /* bytes the server may still write (f_bavail less disk_reserve) */
} sd_fsinfo;

/* A proof-of-possession challenge: answer with the lowercase hex SHA-256 of
 * the nonce (as its hex text) followed by the bytes of each range in order. */
typedef struct sd_challenge {
	char nonce[65]; /* 64 hex chars */
	int nranges;
	uint64_t off[SD_CHALLENGE_MAX];
	uint64_t len[SD_CHALLENGE_MAX];
} sd_challenge;

/* One stored version of a file, newest first (versions). The strings are
 * "" for versions made before the engine recorded them. */
typedef struct sd_version {
	int64_t ts;     /* ms since the epoch of the commit */
	uint64_t size;
	char sha256[SD_SHA256_HEX];
	int current;    /* 1 for the file's current content */
	int64_t id;     /* names the version for version_restore */
	int64_t mtime;  /* seconds: the file's mtime as this commit left it */
	char user[SD_USERNAME_MAX + 1]; /* who committed it */
	char proto[16]; /* over what: "ftp", "sftp", "http", "cli" ... */
	char addr[64];  /* the client's address */
	char op[16];    /* "write", "instant", "copy", "restore", "rollback" */
} sd_version;

/* One item of a user's trash (trash_list): a file or folder deleted within
 * deleted_retention, with what was deleted with it. Strings are valid
 * during the callback. */
typedef struct sd_trash_item {
	int64_t id;        /* names the item for trash_restore and trash_empty */
	int kind;          /* enum sd_kind */
	const char *path;  /* where it was when it was deleted */
	const char *name;  /* its entry in /.trash/ */
	int64_t deleted;   /* ms since the epoch */
	uint64_t size;     /* bytes: the file, or every file deleted with the folder */
	int64_t files;     /* files in it (1 for a file) */
} sd_trash_item;

/* What a rollback did (rollback). */
typedef struct sd_rollback_report {
	int64_t ts;       /* ms: the rollback's own moment; rolling back to ts - 1 undoes it */
	int64_t restored; /* files given their content at T again (a new version each) */
	int64_t revived;  /* files and folders deleted after T, brought back */
	int64_t moved;    /* files and folders moved back to where they were at T */
	int64_t created;  /* files and folders made anew: their node is elsewhere now */
	int64_t trashed;  /* files and folders that were not there at T, moved to the trash */
} sd_rollback_report;

/* What a handle is (handle_info). */
typedef struct sd_handle_info {
	/* SD_O_* as the engine opened it: SD_O_WRITE added to creating,
	 * truncating and appending opens, exactly one share mode
	 * (SD_O_EXCLUSIVE, SD_O_SHARE_READ or SD_O_SHARE_WRITE), and
	 * SD_O_DETACHED for a detached handle. */
	unsigned flags;
	int dirty;            /* unsaved writes, or a create not committed yet */
	int64_t idle_timeout; /* ms a detached handle may stay unused before it is
			       * abandoned (handle_idle_timeout); 0 for a session's */
	char path[SD_PATH_MAX + 1]; /* where its commits go, in the owner's view */
} sd_handle_info;

/* One journal row (journal); strings valid during the callback. */
typedef struct sd_journal_entry {
	int64_t seq;
	int64_t ts;         /* ms */
	const char *user;   /* may be NULL */
	const char *op;     /* "write", "rename", "login_failed" ... */
	const char *path;   /* may be NULL */
	const char *detail; /* may be NULL */
} sd_journal_entry;

/* Whole-engine counters for `storagectl stats` and the admin API. */
typedef struct sd_stats {
	int64_t users;
	int64_t files;         /* live file nodes */
	int64_t dirs;          /* live directory nodes (without user roots) */
	int64_t deleted;       /* logically deleted nodes awaiting purge */
	int64_t logical_bytes; /* sum of live file sizes */
	int64_t blobs;
	int64_t stored_bytes;  /* sum of blob sizes */
	int64_t unreferenced_blobs;
	int64_t versions;
	int64_t journal_rows;
} sd_stats;

/* Result of a cleaner pass. */
typedef struct sd_gc_report {
	int64_t nodes_purged;
	int64_t blobs_removed;
	int64_t bytes_freed;
	int64_t temps_removed;
	int disk_used_pct; /* usage seen when deciding, 0-100 */
	int64_t versions_dropped; /* replaced versions past version_retention */
	int64_t journal_pruned;   /* journal rows past journal_retention */
	int64_t uploads_expired;  /* resumable uploads past upload_expiry */
} sd_gc_report;

/* An API token as listed (the secret itself is never stored). */
typedef struct sd_token_info {
	int64_t id;
	char user[SD_USERNAME_MAX + 1];
	int readonly;
	int64_t created, expires; /* seconds; expires 0 = never */
	int revoked;
} sd_token_info;

/* An SSH public key as listed (key_list). */
typedef struct sd_key_info {
	int64_t id;
	char user[SD_USERNAME_MAX + 1];
	char type[64];         /* "ssh-ed25519" */
	char fingerprint[64];  /* OpenSSH form: "SHA256:" + unpadded base64 */
	char comment[256];     /* "" when none */
	int64_t created;       /* seconds */
} sd_key_info;

/* A write lock (lock()), as lock_discover and lock give it. */
#define SD_LOCKTOKEN_MAX 64    /* bytes of a token with its NUL (ours: 35 + 1) */
#define SD_LOCKOWNER_MAX 1024  /* bytes of a lock's owner text, NUL included */
#define SD_LOCK_SUBMIT_MAX 16  /* tokens a session may submit at once */
typedef struct sd_lock_info {
	char token[SD_LOCKTOKEN_MAX];   /* "urn:storaged:" + 22 base64url characters */
	char root[SD_PATH_MAX + 1];     /* the path locked, in the holder's view */
	unsigned flags;                 /* SD_LOCK_SHARED, SD_LOCK_INFINITE */
	int64_t timeout;                /* seconds granted by the last lock or refresh */
	int64_t expires;                /* ms since the epoch */
	char owner[SD_LOCKOWNER_MAX];   /* the client's text about the holder, "" */
	char user[SD_USERNAME_MAX + 1]; /* the user holding it */
} sd_lock_info;

/* One dead property of a node (props_get, props_patch): a name in a
 * namespace, and a value the engine keeps as opaque UTF-8 text (WebDAV
 * stores the property's XML there). Strings valid during a callback. */
#define SD_PROP_NAME_MAX  1024   /* bytes of ns plus name */
#define SD_PROP_VALUE_MAX 65536  /* bytes of one value */
#define SD_PROPS_MAX      256    /* properties of one node */
typedef struct sd_prop {
	const char *ns;    /* namespace, "" for none */
	const char *name;  /* local name, not empty */
	const char *value; /* props_patch: NULL removes the property */
	size_t len;        /* bytes of value */
} sd_prop;
/* A resumable upload (tus): an upload session the engine keeps on disk
 * across requests and restarts (rup_* calls, core/rupload.c). */
#define SD_RUP_ID_MAX   33   /* 32 hex digits (128 random bits) + NUL */
#define SD_RUP_META_MAX 4096 /* bytes of client metadata kept with one */
typedef struct sd_rupload sd_rupload; /* one open of an upload session */
typedef struct sd_rupload_info {
	char id[SD_RUP_ID_MAX];
	uint64_t length;  /* bytes the whole upload will have */
	uint64_t offset;  /* bytes received and durable */
	int64_t expires;  /* seconds since the epoch */
	int done;         /* committed: path holds the content as a version */
	char path[SD_PATH_MAX + 1]; /* the target, resolved at creation */
	char meta[SD_RUP_META_MAX]; /* as given to rup_create */
	sd_stat st;       /* the file, when done */
} sd_rupload_info;

/* One request of a request-per-line front end, for the access log
 * (log_access). Strings may be NULL. */
typedef struct sd_access_rec {
	const char *proto;   /* "http" */
	const char *addr;    /* client address */
	const char *user;    /* authenticated user; NULL or "" = none */
	const char *method;  /* "GET" */
	const char *target;  /* the request target as received (not decoded) */
	unsigned status;     /* answer status; 0: none was sent (connection lost) */
	uint64_t bytes_in;   /* body bytes received */
	uint64_t bytes_out;  /* body bytes sent */
	int64_t us;          /* microseconds from the request's headers to its end */
	const char *agent;   /* User-Agent */
} sd_access_rec;

/* One file transfer of any front end, for the transfer log (log_transfer). */
typedef struct sd_xfer_rec {
	const char *proto;   /* "ftp", "sftp", "http" */
	const char *user;
	const char *addr;
	const char *cmd;     /* what moved it: "STOR", "RETR", "PUT", "GET", "write", "read" */
	const char *path;    /* the engine's resolved path */
	int incoming;        /* 1: an upload, 0: a download */
	int anonymous;       /* an anonymous login (xferlog access mode "a") */
	uint64_t bytes;      /* bytes moved */
	int64_t ms;          /* how long it took */
	const char *result;  /* "ok", "failed", "aborted" */
	int dedup;           /* the content was stored already */
	const char *reason;  /* why it failed; NULL when ok */
} sd_xfer_rec;

/* --------------------------------------------------- upload/open flags */

#define SD_UP_PARENTS 0x1u /* create missing parent directories */
#define SD_UP_EXCL    0x2u /* fail with -EEXIST if the path exists */

#define SD_O_READ    0x01u
#define SD_O_WRITE   0x02u
#define SD_O_CREAT   0x04u
#define SD_O_TRUNC   0x08u
#define SD_O_EXCL    0x10u
#define SD_O_APPEND  0x20u
/* Open modes (Cage): how this open shares the file with other opens.
 * Default (none set) is SD_O_SHARE_WRITE. A conflicting open fails -EBUSY.
 *   EXCLUSIVE   : no other open of the node may exist
 *   SHARE_READ  : others may open for reading only; this open reads only
 *   SHARE_WRITE : others may open for reading or writing (last commit wins) */
#define SD_O_EXCLUSIVE   0x100u
#define SD_O_SHARE_READ  0x200u
#define SD_O_SHARE_WRITE 0x400u
/* handle_open: the handle belongs to the user, not to the session: any
 * session of the same user may use it, it survives session_close, and it
 * is abandoned (previous version kept, a journal row written) after
 * handle_idle_timeout without use. Two threads using one such handle at
 * once are serialised by the engine. At most max_handles_per_user per
 * user. For protocols without a connection-long session (HTTP). */
#define SD_O_DETACHED    0x1000u

/* rename flags */
#define SD_RENAME_NOREPLACE 0x1u

/* open_state bits */
#define SD_OPEN_EXCLUSIVE  0x1u /* someone holds it exclusively */
#define SD_OPEN_SHARE_READ 0x2u /* someone holds it shared-read (no writers allowed) */
#define SD_OPEN_WRITERS    0x4u /* someone has it open for writing */
#define SD_OPEN_READERS    0x8u /* someone has it open at all */
#define SD_OPEN_LOCKED     0x10u /* a write lock (lock()) covers the path */

/* lock flags */
#define SD_LOCK_SHARED   0x1u /* a shared write lock; without it, exclusive */
#define SD_LOCK_INFINITE 0x2u /* a folder and everything below it (depth infinity) */
/* lock_discover flags */
#define SD_LOCK_BELOW    0x4u /* also the locks of paths below path */

/* handle_setattr mask */
#define SD_ATTR_MODE  0x1u
#define SD_ATTR_MTIME 0x2u

/* Log levels. */
enum sd_log_level { SD_LOG_DEBUG = 0, SD_LOG_INFO, SD_LOG_WARN, SD_LOG_ERROR };

/* Token scopes. */
enum sd_scope { SD_SCOPE_RW = 0, SD_SCOPE_RO = 1 };

/* Auth flags. */
#define SD_AUTH_PROBE 0x1u /* public-key probe: do not count a failure, make no session */

/* --------------------------------------------------------- teams */

/* Rights in a shared folder (team.c): a mask. In a user's own tree a user
 * has them all. */
#define SD_RIGHT_LIST   0x01u /* list a folder */
#define SD_RIGHT_READ   0x02u /* read a file (download, open for reading) */
#define SD_RIGHT_WRITE  0x04u /* create files and folders, overwrite, chmod, mtime */
#define SD_RIGHT_DELETE 0x08u /* delete */
#define SD_RIGHT_RENAME 0x10u /* rename or move away */
#define SD_RIGHT_SHARE  0x20u /* make share links */
#define SD_RIGHTS_ALL   0x3fu

/* A group as listed (group_list); members valid during the callback. */
typedef struct sd_group {
	int64_t id;
	char name[SD_USERNAME_MAX + 1];
	int64_t created; /* seconds */
	int nmembers;
	const char *const *members; /* user names, in name order */
} sd_group;

/* A shared folder as listed (share_list): mounted at "/<name>" in the
 * view of every user a rule of it names. */
typedef struct sd_share {
	int64_t id;
	char name[SD_USERNAME_MAX + 1];
	int64_t quota;   /* the folder's own quota in logical bytes, 0 = unlimited */
	int64_t used;    /* logical bytes of its live files */
	int64_t created; /* seconds */
	int rules;       /* number of rules */
} sd_share;

/* One rule of a shared folder (share_rules); strings valid during the
 * callback. Exactly one of user and group is non-empty. */
typedef struct sd_share_rule {
	const char *share;
	const char *path;   /* in the shared folder, "/" = its root */
	const char *user;
	const char *group;
	unsigned rights;    /* SD_RIGHT_* */
	int deleted;        /* its folder is in the trash: the rule waits */
} sd_share_rule;

/* Share links (link.c). */
#define SD_LINK_READ   1 /* download the file, or list and download the folder */
#define SD_LINK_UPLOAD 2 /* a file request: upload new files into the folder, nothing else */
#define SD_LINK_TOKEN_MAX 48 /* a token: 43 base64url characters + NUL */

typedef struct sd_link sd_link; /* a link opened for serving (link_open) */

/* What a link is made with (link_create). */
typedef struct sd_link_opts {
	int mode;              /* SD_LINK_READ (0 means it too) or SD_LINK_UPLOAD */
	int64_t expires;       /* seconds from the start of the current second
				* (now(), whole seconds); 0 = never */
	const char *password;  /* NULL or "": none */
	int64_t max_downloads; /* 0: no limit */
} sd_link_opts;

/* A link as listed (the token itself is never stored). */
typedef struct sd_link_info {
	int64_t id;
	char user[SD_USERNAME_MAX + 1]; /* who made it: it acts with their rights */
	char path[SD_PATH_MAX + 1];     /* its target in the maker's view */
	int kind;                       /* enum sd_kind of the target */
	int mode;                       /* SD_LINK_* */
	int password;                   /* 1: a password is needed */
	int64_t created, expires;       /* seconds; expires 0 = never */
	int64_t max_downloads, downloads;
	int revoked;
	int gone;                       /* its target was deleted */
} sd_link_info;

/* link_use: what a client did through a link (counted, journaled). */
#define SD_LINK_USE_GET  1 /* downloaded a file (counts as a download) */
#define SD_LINK_USE_ZIP  2 /* downloaded a folder as a zip (counts as one) */
#define SD_LINK_USE_LIST 3 /* listed a folder (not counted) */

/* ---------------------------------------------------- the function table */

#define SD_CORE_API_VERSION 2

/* Return 0 to go on; nonzero stops after this entry (it counts as
 * delivered; *more tells whether entries remain after it). A caller that
 * cannot take an entry remembers the last one it took and pages on from
 * there with `after`. */
typedef int (*sd_readdir_cb)(void *arg, const sd_dirent *e);
typedef int (*sd_user_cb)(void *arg, const sd_user *u);
typedef int (*sd_token_cb)(void *arg, const sd_token_info *t);
typedef int (*sd_key_cb)(void *arg, const sd_key_info *k);
typedef int (*sd_version_cb)(void *arg, const sd_version *v);          /* nonzero stops */
typedef int (*sd_journal_cb)(void *arg, const sd_journal_entry *e);    /* nonzero stops */
typedef int (*sd_trash_cb)(void *arg, const sd_trash_item *t);         /* nonzero stops */
typedef int (*sd_lock_cb)(void *arg, const sd_lock_info *l);           /* nonzero stops */
typedef int (*sd_prop_cb)(void *arg, const sd_prop *p);                /* nonzero stops */
typedef int (*sd_group_cb)(void *arg, const sd_group *g);              /* nonzero stops */
typedef int (*sd_share_cb)(void *arg, const sd_share *sh);             /* nonzero stops */
typedef int (*sd_share_rule_cb)(void *arg, const sd_share_rule *r);    /* nonzero stops */
typedef int (*sd_link_cb)(void *arg, const sd_link_info *l);           /* nonzero stops */

typedef struct sd_core_api {
	uint32_t version; /* SD_CORE_API_VERSION */
	uint32_t size;    /* sizeof(sd_core_api) of the core that built it */

	/* -- diagnostics ------------------------------------------------ */
	/* One log line "ts level=L src=SRC <fmt...>"; write fmt as key=value
	 * pairs, e.g. "event=login user=%s addr=%s". */
	void (*log)(sd_core *c, int level, const char *src, const char *fmt, ...)
	    __attribute__((format(printf, 4, 5)));
	/* Words for an error code returned by any call (negative or not). */
	const char *(*strerror)(int err);
	/* Metrics: add to a counter / set a gauge named in Prometheus form,
	 * labels as text without braces: ("storaged_requests_total",
	 * "frontend=\"ftp\",status=\"226\"", 1). Created on first use. */
	void (*metric_add)(sd_core *c, const char *name, const char *labels, int64_t delta);
	void (*metric_set)(sd_core *c, const char *name, const char *labels, int64_t value);
	/* The whole registry in Prometheus text format, plus engine gauges
	 * (blobs, bytes). Returns a malloc'd string (free with api->free). */
	char *(*metrics_render)(sd_core *c);
	void (*free)(void *p);
	/* Seconds since the epoch as the engine sees it. */
	int64_t (*now)(sd_core *c);
	/* A private directory for the module's own state (host keys ...):
	 * <data_dir>/<name>, created 0700 if missing. name is [a-z0-9_-]{1,32}
	 * and not one of the engine's own ("blobs", "tmp", "uploads"). The absolute path
	 * goes into out. 0, -EINVAL, -ENAMETOOLONG or -errno. */
	int (*state_dir)(sd_core *c, const char *name, char *out, size_t outlen);

	/* -- authentication and sessions --------------------------------- */
	/* Every login reads the database (users, keys, tokens), so changes
	 * take effect at once. addr is the client's address (throttling, the
	 * journal); proto names the front end ("ftp"). On success *out is a
	 * new session with cwd "/"; release it with session_close. */
	/* Password, or an API token given in the password field. */
	int (*auth_password)(sd_core *c, const char *user, const char *secret, const char *addr,
			     const char *proto, sd_session **out);
	/* A bare token (HTTP Bearer). */
	int (*auth_token)(sd_core *c, const char *token, const char *addr, const char *proto,
			  sd_session **out);
	/* A public key, OpenSSH type name ("ssh-ed25519") and base64 blob.
	 * Succeeds only if the key is registered to the enabled user. With
	 * SD_AUTH_PROBE (the client asks whether a key would do, before
	 * signing) nothing is counted and no session is made: out may be NULL. */
	int (*auth_pubkey)(sd_core *c, const char *user, const char *type, const char *b64,
			   const char *addr, const char *proto, unsigned flags, sd_session **out);
	/* A read-only session on user's tree without credentials, for a front
	 * end configured to allow anonymous access to that account (FTP
	 * anonymous_user). -SD_EAUTH when the user is unknown or disabled;
	 * disabling the user later ends the session like any other. */
	int (*auth_anonymous)(sd_core *c, const char *user, const char *addr, const char *proto,
			      sd_session **out);
	/* 0 if addr may try to log in now, -SD_EBLOCKED if it is locked out. */
	int (*auth_allowed)(sd_core *c, const char *addr);
	/* End a session: abandons every handle it still has open (their
	 * previous versions stay). NULL is a no-op. */
	void (*session_close)(sd_session *s);
	/* Fill *out (quota and usage as of the last credential check, at most
	 * about a second old: fsinfo reads them now; no database read, so it is
	 * cheap enough for every request). -SD_EAUTH once the
	 * session's credentials no longer hold. */
	int (*session_info)(sd_session *s, sd_session_info *out);
	/* 0 while the credentials still hold, else -SD_EAUTH (see the top of
	 * this file). Every call on the session checks this itself; a front end
	 * calls it between requests that touch no file (FTP NOOP, a keepalive). */
	int (*session_check)(sd_session *s);
	/* Resolve a client's path argument (arg, len bytes; it may hold a NUL,
	 * which is refused) into the session's view: "/" or "/a/b" into out.
	 * 0, -EINVAL or -ENAMETOOLONG. Front ends use it to show paths
	 * (SFTP REALPATH, FTP replies); the calls below resolve by themselves. */
	int (*resolve)(sd_session *s, const char *arg, size_t len, char *out, size_t outlen);
	/* Change the working directory: path must be a directory. */
	int (*chdir)(sd_session *s, const char *path);

	/* -- the user tree ---------------------------------------------- */
	int (*stat)(sd_session *s, const char *path, sd_stat *st);
	/* Entries of a directory in stable (bytewise name) order, starting
	 * after the name `after` (NULL: from the start), at most `limit`
	 * (0: all). Returns the number of entries delivered, *more set when
	 * entries remain. */
	int (*readdir)(sd_session *s, const char *path, const char *after, int limit,
		       sd_readdir_cb cb, void *arg, int *more);
	int (*mkdir)(sd_session *s, const char *path, uint32_t mode, int parents);
	int (*rmdir)(sd_session *s, const char *path);
	/* Logical delete of a file; with recursive, of a directory tree. */
	int (*unlink)(sd_session *s, const char *path, int recursive);
	/* Atomic; replaces an existing target file (or empty dir) like POSIX
	 * rename(2), unless flags has SD_RENAME_NOREPLACE (then -EEXIST when
	 * the target exists, checked in the same transaction). -EINVAL when
	 * moving a directory into itself, -EBUSY for the root. */
	int (*rename)(sd_session *s, const char *from, const char *to, unsigned flags);
	int (*chmod)(sd_session *s, const char *path, uint32_t mode);
	int (*set_mtime)(sd_session *s, const char *path, int64_t mtime);
	/* Copy a file: a new node referencing the same content, no data
	 * copied. Replaces an existing target file. */
	int (*copy)(sd_session *s, const char *from, const char *to);
	int (*fsinfo)(sd_session *s, sd_fsinfo *out);
	/* Stored versions of a file, newest first. Returns the count
	 * delivered. */
	int (*versions)(sd_session *s, const char *path, sd_version_cb cb, void *arg);

	/* -- streamed uploads (DESIGN path 1) ---------------------------- */
	/* Start writing `path`. offset > 0 keeps the first `offset` bytes of
	 * the current content (resume/append); -EINVAL if larger than the
	 * file. Nothing is visible to anyone until commit. The upload does not
	 * need the session after this call. */
	int (*upload_begin)(sd_session *s, const char *path, unsigned flags, uint64_t offset,
			    uint32_t mode, sd_upload **out);
	/* Any chunk size. -EDQUOT when the quota would be exceeded, -ENOSPC,
	 * -EIO: the upload is then dead; call upload_abort. */
	int (*upload_write)(sd_upload *up, const void *buf, size_t len);
	/* Bytes taken so far (including a kept prefix). */
	uint64_t (*upload_size)(const sd_upload *up);
	/* Give the file this mtime (seconds) at commit instead of the commit
	 * time, in the same transaction. Call before upload_commit. */
	void (*upload_set_mtime)(sd_upload *up, int64_t mtime);
	/* Finish: durable blob (dedup'd), new version, journal row; then frees
	 * up whatever the result. expect_sha256: NULL or 64 hex digits; a
	 * mismatch stores nothing and returns -SD_ECHECKSUM. *dedup (may be
	 * NULL) is set to 1 when the content was already stored. The
	 * credentials of the session that began the upload are checked again
	 * first: -SD_EAUTH (nothing stored) once they no longer hold. */
	int (*upload_commit)(sd_upload *up, const char *expect_sha256, sd_stat *st, int *dedup);
	/* Drop everything written; frees up. */
	void (*upload_abort)(sd_upload *up);

	/* -- instant upload (DESIGN path 2) ------------------------------ */
	/* "I have content sha256 of size bytes for path." Returns 0 (done,
	 * *st filled), -SD_ECHALLENGE (*ch filled: answer with
	 * instant_prove), or -SD_ESENDDATA (send the data the normal way). */
	int (*instant_begin)(sd_session *s, const char *path, unsigned flags, const char *sha256,
			     uint64_t size, sd_challenge *ch, sd_stat *st);
	/* Answer a challenge: 0 and *st filled, or -SD_EPROOF. A nonce is
	 * good for one answer and expires after a few minutes. */
	int (*instant_prove)(sd_session *s, const char *path, unsigned flags, const char *sha256,
			     uint64_t size, const char *nonce, const char *proof, sd_stat *st);

	/* -- readers (DESIGN path 3) -------------------------------------- */
	/* Open the current content of a file: *out reads that version even if
	 * the file is replaced or deleted meanwhile. st filled (size, sha256 =
	 * ETag). The reader does not need the session after this call. */
	int (*open_read)(sd_session *s, const char *path, sd_reader **out, sd_stat *st);
	/* Open a file of another user's tree, read-only, for a link the front
	 * end has decided is public (a file id, later a share link). -ENOENT
	 * when the owner is unknown or disabled. */
	int (*open_read_public)(sd_core *c, int64_t owner, const char *path, sd_reader **out,
				sd_stat *st);
	/* Up to len bytes at off (fewer only at the end). Bytes read, 0 at or
	 * past the end, or -errno (-SD_ECORRUPT when stored content is
	 * missing or damaged). */
	ssize_t (*reader_pread)(sd_reader *r, void *buf, size_t len, uint64_t off);
	/* For sendfile(2): when the content is a local file, *fd (owned by the
	 * reader: do not close it) holds it at [*base, *base + size). Else
	 * -ENOTSUP: use reader_pread. */
	int (*reader_fd)(sd_reader *r, int *fd, uint64_t *base);
	void (*reader_close)(sd_reader *r);

	/* -- handles: random-access files (DESIGN path 4) ----------------- */
	/* SD_O_* flags. Reads see the version opened (or the handle's own
	 * writes; a handle opened for writing may read too); writing works on
	 * a private working copy that sync or
	 * close commits as a new version (last commit wins). A file created
	 * by an open (SD_O_CREAT) becomes visible at its first commit; until
	 * then a second SD_O_EXCL create of the same path fails -EEXIST.
	 * *st (may be NULL) describes the file as opened (size, sha256 of the
	 * base; sha256 "" for a new file). -EBUSY on an open-mode conflict,
	 * -EMFILE when the engine's handle table (max_handles) is full. */
	int (*handle_open)(sd_session *s, const char *path, unsigned flags, uint32_t mode,
			   sd_handle *out, sd_stat *st);
	ssize_t (*handle_pread)(sd_session *s, sd_handle h, void *buf, size_t len, uint64_t off);
	/* Writes all len bytes at off (SD_O_APPEND: at the end). Returns len. */
	ssize_t (*handle_pwrite)(sd_session *s, sd_handle h, const void *buf, size_t len,
				 uint64_t off);
	int (*handle_truncate)(sd_session *s, sd_handle h, uint64_t size);
	/* The file as this handle sees it: size and sha256 of the version it
	 * reads (sha256 "" while there are unsaved writes); mode, mtime and
	 * id come from whatever node has the path now (after a rename, the
	 * new one). */
	int (*handle_fstat)(sd_session *s, sd_handle h, sd_stat *st);
	/* Mode and/or mtime (mask of SD_ATTR_*): applied with the next commit
	 * when the handle has unsaved writes or a pending create (so a client's
	 * "set mtime, then close" keeps its mtime), at once otherwise. */
	int (*handle_setattr)(sd_session *s, sd_handle h, unsigned mask, uint32_t mode,
			      int64_t mtime);
	/* Commit the working copy now (the handle stays open). No-op when
	 * clean. */
	int (*handle_sync)(sd_session *s, sd_handle h);
	/* Commit if dirty, then release the handle whatever the result. */
	int (*handle_close)(sd_session *s, sd_handle h);
	/* Release without committing (the client vanished): the previous
	 * version stays, a pending create leaves nothing. */
	int (*handle_abandon)(sd_session *s, sd_handle h);
	/* How the file at path is open right now, over every protocol: a mask
	 * of SD_OPEN_* (0 when nobody has it open). For an -EBUSY answer that
	 * names the conflict. */
	int (*open_state)(sd_session *s, const char *path, unsigned *state);

	/* -- administration (admin API, storagectl) ----------------------- */
	int (*user_add)(sd_core *c, const char *name, const char *password, int64_t quota,
			unsigned flags, int64_t *id);
	int (*user_get)(sd_core *c, const char *name, sd_user *out);
	int (*user_get_id)(sd_core *c, int64_t id, sd_user *out);
	int (*user_list)(sd_core *c, sd_user_cb cb, void *arg);
	int (*user_set_password)(sd_core *c, const char *name, const char *password);
	int (*user_set_disabled)(sd_core *c, const char *name, int disabled);
	int (*user_set_quota)(sd_core *c, const char *name, int64_t quota);
	int (*user_set_admin)(sd_core *c, const char *name, int admin);
	/* An authorized_keys line: "type base64 [comment]". -EEXIST when
	 * the user has this key already (nothing changes), -EINVAL for a line
	 * that is not a key. */
	int (*key_add)(sd_core *c, const char *name, const char *line);
	/* Prints nothing; writes the new token (shown once) into out. expires
	 * is seconds from now, 0 = never. */
	int (*token_create)(sd_core *c, const char *name, int scope, int64_t expires,
			    char out[SD_TOKEN_MAX], int64_t *id);
	/* -ENOENT: no such token. */
	int (*token_revoke)(sd_core *c, int64_t id);
	/* name NULL: all users. */
	int (*token_list)(sd_core *c, const char *name, sd_token_cb cb, void *arg);
	int (*stats)(sd_core *c, sd_stats *out);
	/* One cleaner pass now. force: ignore retention, age and high water. */
	int (*gc_run)(sd_core *c, int force, sd_gc_report *out);
	/* Journal rows with ts >= since_ms (0: all) of user (NULL: all) and
	 * seq > after (0: from the first), oldest first. Returns the count
	 * delivered. */
	int (*journal)(sd_core *c, int64_t since_ms, const char *user, int64_t after,
		       sd_journal_cb cb, void *arg);

	/* -- handles, continued ------------------------------------------ */
	/* What handle h is: its flags, whether it holds unsaved writes, its
	 * path and idle timeout (for a front end that must answer them
	 * without keeping its own copy, e.g. HTTP, whose requests each have
	 * their own session). Counts as a use of the handle. -EBADF as for
	 * every handle call. */
	int (*handle_info)(sd_session *s, sd_handle h, sd_handle_info *out);
	/* handle_sync on a condition: commit only if the file at the handle's
	 * path holds the content expect_sha256 (64 hex digits) right now, the
	 * check and the commit in one transaction, so another client's newer
	 * version is never written over. Else -SD_ECHANGED (also when the file
	 * is gone), and the handle stays open with its unsaved writes, except
	 * when another commit lands between the check made before the working
	 * copy is finished and the transaction: then the writes are dropped (the
	 * handle carries on, clean, on its old base) and -SD_ECHANGED all the
	 * same. A clean handle is checked too (nothing is committed). */
	int (*handle_sync_if)(sd_session *s, sd_handle h, const char *expect_sha256);

	/* -- accounts (issue 11): admin calls ----------------------------- */
	/* Seconds until addr may try to log in again (rounded up); 0 when it
	 * is not locked out. For Retry-After. */
	int64_t (*auth_blocked_for)(sd_core *c, const char *addr);
	/* Delete a user: every file and directory is logically deleted (the
	 * cleaner purges them after deleted_retention, like any delete), the
	 * user's tokens and keys are removed, and every session of the user
	 * ends at its next call (-SD_EAUTH). The name is free for a new user
	 * at once; the row itself goes when the cleaner has purged the files.
	 * -ENOENT for an unknown user. */
	int (*user_delete)(sd_core *c, const char *name);
	/* The keys of user name (NULL: of every user), by id. -ENOENT for an
	 * unknown user. Returns the count delivered. */
	int (*key_list)(sd_core *c, const char *name, sd_key_cb cb, void *arg);
	/* Remove one key of user name, named by its id ("12") or its
	 * fingerprint ("SHA256:..."). Sessions that logged in with it end.
	 * -ENOENT: no such user, or no such key of that user. */
	int (*key_remove)(sd_core *c, const char *name, const char *key);

	/* -- self-service: a session acts on its own user's credentials ----
	 * Each refuses a read-only session (-EROFS) and an anonymous one
	 * (-EACCES). A session that logged in with a token that expires
	 * cannot make a credential that outlives that token: a token without
	 * expiry or expiring later, or an SSH key, is refused with -EPERM. */
	/* Change the password: old must be the current one (a wrong one
	 * counts as a failed login from the session's address: -EACCES, or
	 * -SD_EBLOCKED once the address is locked out). -EACCES also when the
	 * user has no password. Every session that logged in with the old
	 * password ends (this one too, if it did). */
	int (*self_password)(sd_session *s, const char *old, const char *new_pw);
	/* A token for the session's own user (as token_create). */
	int (*self_token_create)(sd_session *s, int scope, int64_t expires, char out[SD_TOKEN_MAX],
				 int64_t *id);
	/* Revoke one of the user's own tokens: -ENOENT for any other id. */
	int (*self_token_revoke)(sd_session *s, int64_t id);
	/* Add an authorized_keys line to the user's keys: -EEXIST when the
	 * key is registered already. */
	int (*self_key_add)(sd_session *s, const char *line);
	/* Remove one of the user's keys (id or fingerprint, as key_remove). */
	int (*self_key_remove)(sd_session *s, const char *key);

	/* -- history: versions, trash, rollback, past views --------------
	 * (core/history.c). Every path of the tree as it was at a moment T
	 * lives under the read-only virtual folder /.snapshots/, and the
	 * trash under /.trash/: stat, readdir, chdir, open_read, handle_open
	 * for reading and copy (as the source) work there through the calls
	 * above; writes answer -EROFS (snapshots) or -EACCES (trash), except
	 * that renaming an entry of /.trash/ out of it restores it. Both
	 * folders are left out of listings of "/" unless the config says
	 * otherwise, and are always reachable by name. Moments older than the
	 * history kept (min(deleted_retention, version_retention) ago) give
	 * -SD_EHISTORY. */
	/* Make version `version` (an id from versions()) the current content
	 * of the file at path again, as a new version pointing at the old
	 * content: nothing is copied, and it is undone the same way. *st (may
	 * be NULL) is the file after. -ENOENT when the file has no such
	 * version; -EDQUOT over quota. */
	int (*version_restore)(sd_session *s, const char *path, int64_t version, sd_stat *st);
	/* The user's trash, most recently deleted first. Returns the count
	 * delivered. */
	int (*trash_list)(sd_session *s, sd_trash_cb cb, void *arg);
	/* Bring trash item `item` back with everything deleted with it: to
	 * the path it was deleted from (to NULL; missing parent folders are
	 * made), or to `to`. -EEXIST when that path is taken, -ENOENT for an
	 * unknown item, -EDQUOT over quota. *st (may be NULL) is the restored
	 * node. */
	int (*trash_restore)(sd_session *s, int64_t item, const char *to, sd_stat *st);
	/* Delete for good trash item `item`, or every item (item 0); its
	 * content is freed by the cleaner like any unreferenced content.
	 * Returns the number of items removed. */
	int (*trash_empty)(sd_session *s, int64_t item);
	/* Roll the file or folder at path back to the moment at_ms: in one
	 * transaction every file in it gets its content at that moment (a new
	 * version), files and folders deleted since come back, those moved
	 * since go back, and those made since go to the trash. Nothing outside
	 * path changes (a node that moved out of it since stays where it is,
	 * and a new node with its content at T takes its old place). *out
	 * (may be NULL) says what changed and when: rolling back to out->ts -
	 * 1 undoes the rollback. -SD_EHISTORY before the history kept,
	 * -ENOENT when path did not exist then and does not now, or when its
	 * parent folder does not exist now. */
	int (*rollback)(sd_session *s, const char *path, int64_t at_ms, sd_rollback_report *out);
	/* The path that names `path` as it was at the moment at_ms (inside
	 * /.snapshots/), for the calls above. -SD_EHISTORY before the history
	 * kept; -EINVAL for a path already inside a virtual folder. */
	int (*at_path)(sd_session *s, const char *path, int64_t at_ms, char *out, size_t outlen);

	/* -- teams (core/team.c): groups, shared folders, rights ----------
	 * A shared folder is a tree of its own with its own quota, mounted at
	 * "/<name>" in the view of every user one of its rules names (the
	 * mount hides an own node of that name). Every call above checks the
	 * rights (SD_RIGHT_*) there: a path the user may not see is -ENOENT,
	 * a call it may not make -EACCES. docs/teams.md has the rules.
	 * Names of groups and shares are as user names. Admin calls: */
	/* -EEXIST, -EINVAL for a bad name. */
	int (*group_add)(sd_core *c, const char *name);
	/* Its members and rules go with it. -ENOENT. */
	int (*group_delete)(sd_core *c, const char *name);
	/* -ENOENT for an unknown group or user, -EEXIST when a member already. */
	int (*group_member_add)(sd_core *c, const char *group, const char *user);
	/* -ENOENT also when the user is not a member. Takes effect on the
	 * member's next call, also on sessions already open. */
	int (*group_member_remove)(sd_core *c, const char *group, const char *user);
	/* Every group (name NULL) or one (-ENOENT), in name order. Returns the
	 * count delivered. */
	int (*group_list)(sd_core *c, const char *name, sd_group_cb cb, void *arg);
	/* A new, empty shared folder with its own quota (0: unlimited) and no
	 * rules yet (nobody sees it). -EEXIST, -EINVAL. */
	int (*share_create)(sd_core *c, const char *name, int64_t quota, int64_t *id);
	/* Its files go to the cleaner like a deleted tree; its rules and links
	 * go at once. -ENOENT. */
	int (*share_delete)(sd_core *c, const char *name);
	int (*share_set_quota)(sd_core *c, const char *name, int64_t quota);
	/* Set the rule of user or group (exactly one non-NULL) on path in the
	 * shared folder ("/" = its root; missing folders are made): rights
	 * there and below, until a deeper rule for them. rights 0 denies.
	 * -ENOENT for an unknown share, user or group; -ENOTDIR. */
	int (*share_grant)(sd_core *c, const char *share, const char *path, const char *user,
			   const char *group, unsigned rights);
	/* Remove that rule: -ENOENT when there is none. */
	int (*share_revoke)(sd_core *c, const char *share, const char *path, const char *user,
			    const char *group);
	/* Every shared folder (name NULL) or one (-ENOENT). */
	int (*share_list)(sd_core *c, const char *name, sd_share_cb cb, void *arg);
	/* The rules of one shared folder (name NULL: of all), by path. */
	int (*share_rules)(sd_core *c, const char *name, sd_share_rule_cb cb, void *arg);
	/* The session's rights at path (SD_RIGHT_*; where a new node would
	 * be, for a path that does not exist): for front ends that show them. */
	int (*access)(sd_session *s, const char *path, unsigned *rights);

	/* -- share links (core/link.c) ------------------------------------
	 * A link is a random token (SD_LINK_TOKEN_MAX) naming a file or folder;
	 * it acts with its maker's rights, checked again at every use. */
	/* Make one on path: needs SD_RIGHT_SHARE there (own tree: always),
	 * and read (a read link) or write (an upload link, on a folder only:
	 * -ENOTDIR). The token is in token (shown once), the link in *out
	 * (may be NULL). Refuses a read-only session (-EROFS). */
	int (*link_create)(sd_session *s, const char *path, const sd_link_opts *o,
			   char token[SD_LINK_TOKEN_MAX], sd_link_info *out);
	/* The session's user's links, newest first. */
	int (*link_list)(sd_session *s, sd_link_cb cb, void *arg);
	/* Revoke one of them: -ENOENT for any other id. */
	int (*link_revoke)(sd_session *s, int64_t id);
	/* Admin: a link made as user on path in their view (the share right
	 * is not needed; the rights to use it are, at every use). */
	int (*link_create_as)(sd_core *c, const char *user, const char *path, const sd_link_opts *o,
			      char token[SD_LINK_TOKEN_MAX], sd_link_info *out);
	/* Admin: links of user (NULL: all); revoke any. */
	int (*link_list_all)(sd_core *c, const char *user, sd_link_cb cb, void *arg);
	int (*link_revoke_any)(sd_core *c, int64_t id);
	/* Serving a link without an account. -ENOENT for a token that names no
	 * usable link (unknown, expired, revoked, downloads used up, target
	 * gone, maker disabled or without the rights now: which is not said);
	 * -EACCES when a password is needed and password (NULL or "") is not
	 * it; -SD_EBLOCKED when addr is locked out. A wrong token or password
	 * counts as a failed login from addr (the login limiter). *out is
	 * released with link_close; info (may be NULL) describes the link. */
	int (*link_open)(sd_core *c, const char *token, const char *password, const char *addr,
			 sd_link **out, sd_link_info *info);
	/* path: "/" is the link's target, "/a/b" below a folder target (the
	 * one resolver; ".." stops at the target). A read link only. */
	int (*link_stat)(sd_link *l, const char *path, sd_stat *st);
	int (*link_readdir)(sd_link *l, const char *path, const char *after, int limit,
			    sd_readdir_cb cb, void *arg, int *more);
	int (*link_open_read)(sd_link *l, const char *path, sd_reader **out, sd_stat *st);
	/* Record one use (SD_LINK_USE_*) of path: journaled; GET and ZIP count
	 * a download: -ENOENT when the link's downloads are used up. */
	int (*link_use)(sd_link *l, int what, const char *path);
	/* An upload link: a new file `name` (one component, not existing:
	 * -EEXIST) in the target folder, committed with upload_commit. */
	int (*link_upload_begin)(sd_link *l, const char *name, sd_upload **out);
	void (*link_close)(sd_link *l);
	/* Bytes the quota of the tree an upload goes to (the user's, or a
	 * shared folder's) leaves for its file, its old size counted back; -1
	 * when there is no limit. For a front end that refuses an upload too
	 * large for it before reading its body (Content-Length). */
	int64_t (*upload_room)(const sd_upload *up);
	/* -- logs operators feed to tools (issue 11) ------------------------
	 * Both write through the engine's logger (log_format: kv or json);
	 * the files they may also go to are reopened on SIGHUP with the log. */
	/* One line per request: into access_log when it is set, else into
	 * the main log at info (src = proto, event=access). */
	void (*log_access)(sd_core *c, const sd_access_rec *a);
	/* One "event=transfer" line at info (src = proto), and one line of
	 * the xferlog file when one is configured. */
	void (*log_transfer)(sd_core *c, const sd_xfer_rec *x);

	/* -- resumable uploads (tus; core/rupload.c) -----------------------
	 * An upload session belongs to the user that made it: its id is 128
	 * random bits, and every call with another user's id (or an expired
	 * one) gets -ENOENT. Its bytes are kept in a part file beside the
	 * blobs and its offset in the database, so it survives a restart.
	 * When the last byte is made durable the content is committed as one
	 * version of the target (the one commit step). Sessions unused for
	 * upload_expiry are removed by the cleaner. */
	/* Begin an upload of length bytes to path (flags SD_UP_PARENTS,
	 * SD_UP_EXCL checked now and at commit). meta (may be NULL, at most
	 * SD_RUP_META_MAX - 1 bytes) is kept for rup_info. A length of 0
	 * commits an empty file at once. -EISDIR, -EEXIST, -ENOENT (parent),
	 * -EDQUOT (the quota cannot hold it beside the user's other uploads),
	 * -EMFILE (max_uploads_per_user), -EROFS. */
	int (*rup_create)(sd_session *s, const char *path, unsigned flags, uint64_t length,
			  uint32_t mode, const char *meta, sd_rupload_info *out);
	/* The upload id of the session's user. An upload whose bytes have all
	 * arrived but whose commit failed is committed again here first (its
	 * error returned if it fails again). */
	int (*rup_info)(sd_session *s, const char *id, sd_rupload_info *out);
	/* Open upload id to append at offset, which must be its offset now
	 * (-ERANGE otherwise: read the offset with rup_info). expect_sha256
	 * (NULL, or 64 hex digits) is the SHA-256 of the bytes this open will
	 * write: rup_close keeps them only if it matches. One open at a time
	 * per upload: an open that finds another asks it to stop and waits a
	 * moment for it, then -EBUSY. */
	int (*rup_open)(sd_session *s, const char *id, uint64_t offset, const char *expect_sha256,
			sd_rupload **out);
	/* Append len bytes. -EFBIG past the upload's length, -ECANCELED when
	 * another open took the upload over, -ENOSPC, -EIO: the open is dead
	 * (rup_close it). */
	int (*rup_write)(sd_rupload *h, const void *buf, size_t len);
	/* End an open and free it. keep = 1: the bytes it wrote are made
	 * durable and the offset moves on (also for an open cut short: what
	 * arrived is kept), unless expect_sha256 was given and does not
	 * match (-SD_ECHECKSUM: they are dropped) or was given and the open
	 * is cut short (keep = 0). keep = 0: they are dropped. When the
	 * offset reaches the length the content is committed (out->done,
	 * out->st); a failed commit is returned and tried again by the next
	 * rup_info or rup_open. out (may be NULL) is the upload after. */
	int (*rup_close)(sd_rupload *h, int keep, sd_rupload_info *out);
	/* Remove upload id and what it received (tus termination). */
	int (*rup_delete)(sd_session *s, const char *id);

	/* The table grew past its first spare slots (API 2 is not released
	 * yet); these are for the calls after. */
	/* -- write locks (core/lock.c): WebDAV's LOCK, held by the engine --
	 * A lock belongs to a user and names a path of that user's view (the
	 * path need not exist yet: a client locks a name, then creates it). It
	 * COVERS its path and, with SD_LOCK_INFINITE, every path below. While
	 * a lock covers a path, changing it over any protocol needs the
	 * lock's token SUBMITTED on the session making the change (lock_submit)
	 * by the user holding the lock; otherwise the change answers -EBUSY:
	 *   - writing a file (upload_begin and its commit, instant upload,
	 *     handle_open for writing, which is how an SFTP or handle-API write
	 *     meets a lock), chmod, set_mtime, props_patch, version_restore;
	 *   - creating or removing a member of a folder (mkdir, an upload or
	 *     handle_open that creates, unlink, rmdir, rename in or out, copy
	 *     to): a lock covering the folder counts, even of depth 0;
	 *   - deleting, moving or rolling back a folder: every lock on a path
	 *     below it counts too.
	 * Reads are never refused. A lock is refused (-EBUSY) while another
	 * lock conflicts (an exclusive one overlaps any other; shared ones
	 * overlap each other freely) or while the file is open for writing
	 * or exclusively (handles). Locks live in memory and expire after
	 * their timeout unless refreshed; a restart drops them. A lock's path
	 * is where it stays: moving or deleting the locked path (with the
	 * token) removes the locks on it and below. */
	/* Lock path (its parent folder must exist). timeout: seconds, 1 to 7
	 * days. owner: NULL or text kept for lock_discover (at most
	 * SD_LOCKOWNER_MAX - 1 bytes, else -EINVAL). *out (may be NULL): the
	 * new lock and its token. -EROFS for a read-only login, -EACCES/-EROFS
	 * under /.trash/ and /.snapshots/, -ENOLCK when the user holds too
	 * many locks. */
	int (*lock)(sd_session *s, const char *path, unsigned flags, int64_t timeout,
		    const char *owner, sd_lock_info *out);
	/* Give the user's lock `token`, which must cover path, a new timeout
	 * from now. -ENOENT when no lock of the user with that token covers
	 * path (expired, unlocked, another path). */
	int (*lock_refresh)(sd_session *s, const char *path, const char *token, int64_t timeout,
			    sd_lock_info *out);
	/* Remove the lock `token`, which must cover path: 0; -ENOENT as for
	 * lock_refresh; -EACCES when it is another user's. */
	int (*unlock)(sd_session *s, const char *path, const char *token);
	/* The live locks covering path (flags 0), or also those on paths
	 * below it (SD_LOCK_BELOW), of the session's user. Returns the count
	 * delivered. */
	int (*lock_discover)(sd_session *s, const char *path, unsigned flags, sd_lock_cb cb,
			     void *arg);
	/* The tokens this session submits with its calls from now on
	 * (replacing those of an earlier call; n = 0 submits none). The engine
	 * keeps copies. -EINVAL for more than SD_LOCK_SUBMIT_MAX or a token
	 * of SD_LOCKTOKEN_MAX bytes or more. */
	int (*lock_submit)(sd_session *s, const char *const *tokens, int n);

	/* -- dead properties (core/props.c): (namespace, name) -> text kept
	 * with a file or folder, in the database. They stay with the node when
	 * it is renamed, go to the trash and back with it, and are purged with
	 * it; a copy (the call above) has none. Paths under /.snapshots/ and
	 * /.trash/ have none. */
	/* Every property of path, by (ns, name). Returns the count delivered. */
	int (*props_get)(sd_session *s, const char *path, sd_prop_cb cb, void *arg);
	/* Set (value not NULL) or remove (value NULL; absent is fine) the n
	 * properties in ops, in order, all in one transaction: all or none.
	 * -EINVAL for an empty name or names or values that are not UTF-8,
	 * -EFBIG for a name over SD_PROP_NAME_MAX or a value over
	 * SD_PROP_VALUE_MAX, -ENOSPC when the node would hold more than
	 * SD_PROPS_MAX. Journalled ("prop_set", "prop_del"). */
	int (*props_patch)(sd_session *s, const char *path, const sd_prop *ops, int n);

	void *spare[8]; /* future calls; NULL */
} sd_core_api;

/* ---------------------------------------------------- module config */

/* Types of module config keys. The parsed value is stored at `offset`
 * inside the module's config struct:
 *   SD_CONF_STR      char *        (malloc'd by the core, freed by the core)
 *   SD_CONF_PATH     char *        relative paths resolved against the
 *                                  config file's directory
 *   SD_CONF_BOOL     int           yes/no/true/false/on/off/1/0
 *   SD_CONF_INT      int64_t       decimal
 *   SD_CONF_SIZE     int64_t       bytes: 4096, 64K, 4M, 2G, 1T
 *   SD_CONF_DURATION int64_t       milliseconds: 500ms, 30s, 10m, 2h, 7d, 1w
 *                                  (a bare number is seconds)
 *   SD_CONF_PERCENT  int           0-100, "80%" or "80" */
enum sd_conf_type {
	SD_CONF_STR = 1,
	SD_CONF_PATH,
	SD_CONF_BOOL,
	SD_CONF_INT,
	SD_CONF_SIZE,
	SD_CONF_DURATION,
	SD_CONF_PERCENT,
};

/* One row of a config table; a table ends with a row whose name is NULL. */
typedef struct sd_conf_item {
	const char *name;
	int type;           /* enum sd_conf_type */
	size_t offset;      /* offsetof(struct my_conf, field) */
	const char *def;    /* default as config text; NULL = empty / 0 */
	const char *help;   /* one line for docs/configuration.md */
} sd_conf_item;

/* What every front-end section has, parsed by the core. */
typedef struct sd_module_conf {
	const char *section; /* "ftp" */
	const char *listen_host; /* "127.0.0.1", "::1", "0.0.0.0" */
	int listen_port;
	const char *config_dir; /* directory of the config file */
} sd_module_conf;

/* ------------------------------------------------------ the descriptor */

#define SD_MODULE_ABI 2
/* Changes whenever sd_module or sd_core_api changes shape. */
#define SD_MODULE_SIGNATURE "storaged-module/2:api2:conf1:session1:teams1"
#define SD_MODULE_SYMBOL "storaged_module"

/* Each front end exports `const sd_module storaged_module = {...}`.
 *
 * init: parse nothing (the core already filled `conf`, a zeroed block of
 *       conf_size bytes, from `conf_table`), check values, allocate state,
 *       bind listening sockets (so "port in use" fails start-up early).
 *       Return 0 and set *state, or -errno / -SD_ECONFIG after logging the
 *       reason.
 * start: begin serving (spawn threads). Returns 0 or -errno.
 * stop: stop accepting, close sessions, wait for in-flight commits; after
 *       it returns no thread of the module touches the core.
 * destroy: free state (called after stop, or after a failed init/start
 *       with whatever state init set). `conf` is still valid in all four. */
typedef struct sd_module {
	uint32_t abi;          /* SD_MODULE_ABI */
	const char *signature; /* SD_MODULE_SIGNATURE */
	const char *name;      /* "ftp": matches `module = ftp` */
	const char *description;
	const sd_conf_item *conf_table;
	size_t conf_size;
	int (*init)(const sd_core_api *api, sd_core *core, const sd_module_conf *mc,
		    void *conf, void **state);
	int (*start)(void *state);
	void (*stop)(void *state);
	void (*destroy)(void *state);
	void *spare[8];
} sd_module;

#ifdef __cplusplus
}
#endif
#endif /* STORAGED_H */
