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
 * It never sees SQLite or the blob directory; it names files by user path and
 * receives file descriptors for reading.
 *
 * Conventions (see CONVENTIONS.md):
 *  - fallible calls return 0 (or a byte count) on success and a negative
 *    errno, or a negative SD_E* code below, on failure; api->strerror() turns
 *    either into words fit for a client;
 *  - paths are user paths: UTF-8, '/'-separated, relative to the user's root
 *    ("/a/b", "a/b" and "a//b/" are the same). The core normalises them and
 *    refuses "..", NUL, empty or overlong components and invalid UTF-8 with
 *    -EINVAL / -ENAMETOOLONG. A path can never leave the user's tree;
 *  - objects returned through an out-pointer are owned by the caller and
 *    released with the matching close/abort/free call.
 *  - every function is thread-safe; one sd_upload / sd_file object is used
 *    by one thread at a time.
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
/* Plain errno values used with fixed meanings:
 *   ENOENT no such path    EEXIST exists           ENOTDIR/EISDIR kind
 *   ENOTEMPTY dir not empty EACCES not permitted   EROFS read-only token
 *   EDQUOT quota exceeded  ENOSPC disk full        EBUSY open-mode conflict
 *   EINVAL bad path/arg    ENAMETOOLONG too long   EIO storage failure */

/* ---------------------------------------------------------------- limits */

#define SD_NAME_MAX      255   /* bytes in one path component */
#define SD_PATH_MAX      4096  /* bytes in a whole user path */
#define SD_USERNAME_MAX  64
#define SD_SHA256_HEX    65    /* 64 hex digits + NUL */
#define SD_TOKEN_MAX     96    /* printed API token incl. NUL */
#define SD_CHALLENGE_MAX 8     /* ranges in a proof-of-possession challenge */

/* ---------------------------------------------------------------- types */

typedef struct sd_core sd_core;     /* the engine */
typedef struct sd_upload sd_upload; /* a streamed upload in progress */
typedef struct sd_file sd_file;     /* a random-access open file */

enum sd_kind { SD_KIND_FILE = 1, SD_KIND_DIR = 2 };

/* User flags. */
#define SD_USER_ADMIN    0x1u
#define SD_USER_DISABLED 0x2u
#define SD_USER_READONLY 0x4u /* set on a login made with a read-only token */

/* An authenticated principal, filled by the auth calls; plain data, copy it
 * freely. Every engine call that touches a tree takes one. */
typedef struct sd_user {
	int64_t id;
	char name[SD_USERNAME_MAX + 1];
	unsigned flags;
	int64_t quota; /* logical bytes, 0 = unlimited */
	int64_t used;  /* logical bytes in live files at login time */
} sd_user;

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
} sd_stat;

/* One directory entry given to a readdir callback; valid during the call. */
typedef struct sd_dirent {
	const char *name;
	sd_stat st;
} sd_dirent;

/* Space figures for statvfs-like answers. */
typedef struct sd_fsinfo {
	uint64_t disk_total; /* bytes of the file system holding data_dir */
	uint64_t disk_free;
	int64_t quota; /* the user's quota, 0 = unlimited */
	int64_t used;  /* the user's logical bytes now */
} sd_fsinfo;

/* A proof-of-possession challenge: answer with the lowercase hex SHA-256 of
 * the nonce (as its hex text) followed by the bytes of each range in order. */
typedef struct sd_challenge {
	char nonce[65]; /* 64 hex chars */
	int nranges;
	uint64_t off[SD_CHALLENGE_MAX];
	uint64_t len[SD_CHALLENGE_MAX];
} sd_challenge;

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
} sd_gc_report;

/* An API token as listed (the secret itself is never stored). */
typedef struct sd_token_info {
	int64_t id;
	char user[SD_USERNAME_MAX + 1];
	int readonly;
	int64_t created, expires; /* seconds; expires 0 = never */
	int revoked;
} sd_token_info;

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

/* Log levels. */
enum sd_log_level { SD_LOG_DEBUG = 0, SD_LOG_INFO, SD_LOG_WARN, SD_LOG_ERROR };

/* Token scopes. */
enum sd_scope { SD_SCOPE_RW = 0, SD_SCOPE_RO = 1 };

/* Auth flags. */
#define SD_AUTH_PROBE 0x1u /* public-key probe: do not count a failure */

/* ---------------------------------------------------- the function table */

#define SD_CORE_API_VERSION 1

typedef int (*sd_readdir_cb)(void *arg, const sd_dirent *e); /* nonzero stops */
typedef int (*sd_user_cb)(void *arg, const sd_user *u);
typedef int (*sd_token_cb)(void *arg, const sd_token_info *t);

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
	/* Absolute data directory (for host keys and such module state). */
	const char *(*data_dir)(sd_core *c);

	/* -- authentication: every call reads the database ------------- */
	/* Password or API token (token given in the password field). addr is
	 * the client address for throttling and the journal. */
	int (*auth_password)(sd_core *c, const char *user, const char *secret,
			     const char *addr, sd_user *out);
	/* A bare token (HTTP Bearer). */
	int (*auth_token)(sd_core *c, const char *token, const char *addr, sd_user *out);
	/* A public key, OpenSSH type name ("ssh-ed25519") and base64 blob.
	 * Succeeds only if the key is registered to the enabled user. */
	int (*auth_pubkey)(sd_core *c, const char *user, const char *type,
			   const char *b64, const char *addr, unsigned flags, sd_user *out);
	/* 0 if addr may try to log in now, -SD_EBLOCKED if it is locked out. */
	int (*auth_allowed)(sd_core *c, const char *addr);
	/* Reload a user's row (quota, used, flags) by id. */
	int (*user_refresh)(sd_core *c, sd_user *u);

	/* -- the user tree ---------------------------------------------- */
	int (*stat)(sd_core *c, const sd_user *u, const char *path, sd_stat *st);
	/* Entries of a directory in stable (bytewise name) order, starting
	 * after the name `after` (NULL: from the start), at most `limit`
	 * (0: all). Returns the number of entries delivered, *more set when
	 * entries remain. */
	int (*readdir)(sd_core *c, const sd_user *u, const char *path, const char *after,
		       int limit, sd_readdir_cb cb, void *arg, int *more);
	int (*mkdir)(sd_core *c, const sd_user *u, const char *path, uint32_t mode, int parents);
	int (*rmdir)(sd_core *c, const sd_user *u, const char *path);
	/* Logical delete of a file; with recursive, of a directory tree. */
	int (*unlink)(sd_core *c, const sd_user *u, const char *path, int recursive);
	/* Atomic; replaces an existing target file (or empty dir) like POSIX
	 * rename(2). -EINVAL when moving a directory into itself. */
	int (*rename)(sd_core *c, const sd_user *u, const char *from, const char *to);
	int (*chmod)(sd_core *c, const sd_user *u, const char *path, uint32_t mode);
	int (*set_mtime)(sd_core *c, const sd_user *u, const char *path, int64_t mtime);
	/* Copy a file: a new node referencing the same blob, no data copied.
	 * Replaces an existing target file. */
	int (*copy)(sd_core *c, const sd_user *u, const char *from, const char *to);
	int (*fsinfo)(sd_core *c, const sd_user *u, sd_fsinfo *out);
	/* Normalise a user path into "/a/b" form in out (size outlen). */
	int (*normalize)(const char *path, char *out, size_t outlen);

	/* -- streamed uploads (DESIGN path 1) ---------------------------- */
	/* Start writing `path`. offset > 0 keeps the first `offset` bytes of
	 * the current content (resume/append); -EINVAL if larger than the
	 * file. Nothing is visible to anyone until commit. */
	int (*upload_begin)(sd_core *c, const sd_user *u, const char *path, unsigned flags,
			    uint64_t offset, uint32_t mode, sd_upload **out);
	/* Any chunk size. -EDQUOT when the quota would be exceeded, -ENOSPC,
	 * -EIO: the upload is then dead; call upload_abort. */
	int (*upload_write)(sd_upload *up, const void *buf, size_t len);
	/* Bytes taken so far (including a kept prefix). */
	uint64_t (*upload_size)(const sd_upload *up);
	/* Finish: durable blob (dedup'd), new version, journal row; then frees
	 * up whatever the result. expect_sha256: NULL or 64 hex digits; a
	 * mismatch stores nothing and returns -SD_ECHECKSUM. *dedup (may be
	 * NULL) is set to 1 when the content was already stored. */
	int (*upload_commit)(sd_upload *up, const char *expect_sha256, sd_stat *st, int *dedup);
	/* Drop everything written; frees up. */
	void (*upload_abort)(sd_upload *up);

	/* -- instant upload (DESIGN path 2) ------------------------------ */
	/* "I have content sha256 of size bytes for path." Returns 0 (done,
	 * *st filled), -SD_ECHALLENGE (*ch filled: answer with
	 * instant_prove), or -SD_ESENDDATA (send the data the normal way). */
	int (*instant_begin)(sd_core *c, const sd_user *u, const char *path, unsigned flags,
			     const char *sha256, uint64_t size, sd_challenge *ch, sd_stat *st);
	/* Answer a challenge: 0 and *st filled, or -SD_EPROOF. A nonce is
	 * good for one answer and expires after a few minutes. */
	int (*instant_prove)(sd_core *c, const sd_user *u, const char *path, unsigned flags,
			     const char *sha256, uint64_t size, const char *nonce,
			     const char *proof, sd_stat *st);

	/* -- downloads (DESIGN path 3) ----------------------------------- */
	/* Open the current content of a file for reading. *fd is a read-only
	 * descriptor of the immutable blob, owned by the caller (close(2) it);
	 * use pread/sendfile at any offset. st filled (size, sha256 = ETag). */
	int (*open_read)(sd_core *c, const sd_user *u, const char *path, int *fd, sd_stat *st);

	/* -- random-access files (DESIGN path 4) -------------------------- */
	/* SD_O_* flags. Writing works on a private working copy; close or
	 * sync commits it as a new version. */
	int (*file_open)(sd_core *c, const sd_user *u, const char *path, unsigned flags,
			 uint32_t mode, sd_file **out);
	ssize_t (*file_pread)(sd_file *f, void *buf, size_t len, uint64_t off);
	ssize_t (*file_pwrite)(sd_file *f, const void *buf, size_t len, uint64_t off);
	int (*file_truncate)(sd_file *f, uint64_t size);
	int (*file_fstat)(sd_file *f, sd_stat *st);
	/* Commit the working copy now (stays open). No-op when clean. */
	int (*file_sync)(sd_file *f);
	/* Commit if dirty, then release. Frees f whatever the result. */
	int (*file_close)(sd_file *f);
	/* Release without committing (client vanished): the previous version
	 * stays. Frees f. */
	void (*file_abandon)(sd_file *f);

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
	/* An authorized_keys line: "type base64 [comment]". */
	int (*key_add)(sd_core *c, const char *name, const char *line);
	/* Prints nothing; writes the new token (shown once) into out. expires
	 * is seconds from now, 0 = never. */
	int (*token_create)(sd_core *c, const char *name, int scope, int64_t expires,
			    char out[SD_TOKEN_MAX], int64_t *id);
	int (*token_revoke)(sd_core *c, int64_t id);
	/* name NULL: all users. */
	int (*token_list)(sd_core *c, const char *name, sd_token_cb cb, void *arg);
	int (*stats)(sd_core *c, sd_stats *out);
	/* One cleaner pass now. force: ignore retention, age and high water. */
	int (*gc_run)(sd_core *c, int force, sd_gc_report *out);

	/* -- added in a spare slot (same ABI) ---------------------------- */
	/* Give the file this mtime (seconds) at commit instead of the commit
	 * time, in the same transaction (an import or an MFMT-style client
	 * then needs one commit, not two). Call before upload_commit. */
	void (*upload_set_mtime)(sd_upload *up, int64_t mtime);

	void *spare[15]; /* future calls; NULL */
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

#define SD_MODULE_ABI 1
/* Changes whenever sd_module or sd_core_api changes shape. */
#define SD_MODULE_SIGNATURE "storaged-module/1:api1:conf1:gc2"
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
