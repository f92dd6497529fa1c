/*
 * storaged-client.h - libstoraged, the client library of storaged.
 *
 * Remote files used as if they were local (seed 002, Cage; seed 003, WSIO):
 * open, pread/pwrite at byte offsets, ftruncate, fstat, fsync and close on
 * files held by one or several storaged servers, through a client-side page
 * cache; plus the whole-file calls (stat, readdir, mkdir, rename, copy,
 * chmod, upload with instant upload, download) the `stor` tools are built on.
 * It speaks HTTP (libcurl, keep-alive connections reused) to the REST API
 * (docs/rest-api.md) and the handle API (docs/handle-api.md).
 *
 * Conventions (every call):
 *  - A call that can fail returns an int or ssize_t: >= 0 on success, a
 *    negative errno on failure (-ENOENT, -EBUSY ...), or a negative SDC_E*
 *    code below. sdc_strerror() words either.
 *  - A server that goes away answers -EIO (connection refused or reset) or
 *    -ETIMEDOUT (no byte for `timeout_ms`), never a hang past the timeout.
 *  - Remote names ("where") are "/path" on the first configured server, or
 *    "NAME:/path" on the server configured under NAME. A path is a path in
 *    the user's own tree on that server ("/" is its root).
 *  - Thread safety: every call may be made from any thread on any client.
 *    A client has its own locks and no call touches global state (except
 *    curl_global_init, done once by sdc_client_new). Calls on one file
 *    descriptor are serialised; calls on different files run in parallel.
 *    After the last error of a call on this thread, sdc_errmsg() holds the
 *    server's words, if it said any.
 *
 * The cache: `npages` pages of `page_size` bytes, shared by all files of a
 * client (on all its servers). A read fills whole pages; a write dirties
 * the bytes it writes. When a page is needed and none is free, the least
 * frequently used page goes (ties: the least recently used); a dirty one is
 * written back first, together with every other dirty page of its file
 * (contiguous runs in one request, several runs in one multipart request).
 * Written-back data is in the server's working copy of the open file, not
 * yet a version: sdc_fsync and sdc_close commit it (a new version). Pages of
 * a closed file stay in the cache, tagged with the version (SHA-256) they
 * were read from; a later open of the file uses them only if the server
 * still has that version, so a file another client changed is never served
 * from stale pages.
 *
 * Open modes (Cage): SDC_SHARE_EXCLUSIVE (nobody else may open the file),
 * SDC_SHARE_READ (others may only read; this open reads only),
 * SDC_SHARE_WRITE (default: readers and writers coexist; the last commit
 * wins). A conflicting open fails with -EBUSY, across clients and protocols
 * (an SFTP session holding the file counts). Within one client, opens of the
 * same file share one server handle and one set of pages (writes through
 * one descriptor are seen at once through the others).
 *
 * Hibernate (Cage): sdc_hibernate dumps the whole cache (clean and dirty
 * pages, open files and the version each page was based on) to a local file
 * and frees the client; sdc_client_restore, in any later process, reloads
 * it and reopens the files under the same descriptor numbers. A file whose
 * dirty pages were based on a version the server no longer has is a
 * conflict: nothing of it is written, every call on it answers
 * -SDC_ECONFLICT, sdc_conflicts lists it, sdc_resolve settles it.
 */
#ifndef STORAGED_CLIENT_H
#define STORAGED_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SDC_VERSION "0.1.0"

/* Error codes beyond errno (returned negated). */
#define SDC_EBASE     20000
#define SDC_ECONFLICT (SDC_EBASE + 1) /* dirty pages based on a version that is gone */
#define SDC_ELOST     (SDC_EBASE + 2) /* the server dropped written-back data (restart,
				       * idle timeout): the file's unsaved writes are lost */
#define SDC_EPROTO    (SDC_EBASE + 3) /* the server answered something unexpected */
#define SDC_EAUTH     (SDC_EBASE + 4) /* wrong user, password or token (HTTP 401) */

typedef struct sdc_client sdc_client;

/* One server. Strings are copied by sdc_client_new. */
typedef struct sdc_server_opts {
	const char *name;     /* how "NAME:/path" names it; NULL: "default" for the
			       * first, "s<N>" for the others. [A-Za-z0-9._-]+ */
	const char *url;      /* "http://host:port" or "https://..." (a path prefix is
			       * allowed: "https://h/storage") */
	const char *user;
	const char *password; /* password or API token (HTTP Basic) */
	const char *token;    /* API token sent as Bearer (instead of user/password) */
} sdc_server_opts;

typedef struct sdc_options {
	const sdc_server_opts *servers;
	int nservers;          /* >= 1 */
	size_t page_size;      /* bytes per page; 0: 1 MiB. 512 .. 64 MiB */
	size_t npages;         /* pages in the cache; 0: 64. >= 2 */
	int timeout_ms;        /* longest silence of a server (connect, or no byte moving
				* during a request); 0: 30000 */
	const char *cacert;    /* PEM CA bundle for https (NULL: the system's) */
	int insecure;          /* 1: do not verify TLS certificates (tests only) */
	const char *state_dir; /* where resumable uploads keep their state; NULL:
				* $XDG_CACHE_HOME/stor or ~/.cache/stor */
	uint64_t max_send_rate; /* bytes per second sent per request; 0: no limit */
	int conditional_commit; /* 1: a commit (fsync, close) of writes based on a
				 * version is made only if the server still has
				 * that version (If-Match); another client's newer
				 * version makes it a conflict (-SDC_ECONFLICT,
				 * SDC_CONFLICT_CHANGED) and nothing is written
				 * over it. 0: the last commit wins */
} sdc_options;

/* A client with its cache. NULL on failure with *err (may be NULL) set to
 * -EINVAL (bad options: no server, bad name or URL, sizes out of range) or
 * -ENOMEM. No network traffic happens here. */
sdc_client *sdc_client_new(const sdc_options *o, int *err);

/* Push every file (sdc_push_all), close every descriptor, free the client.
 * Returns 0, or the first error met (the client is freed anyway; a file
 * that could not be committed keeps its previous version on the server). */
int sdc_client_free(sdc_client *c);

/* Words for an error code (negative or positive errno or SDC_E*). */
const char *sdc_strerror(int err);

/* The server's message for the last failed call on this thread ("" if
 * none). Valid until the next call on this thread. */
const char *sdc_errmsg(void);

size_t sdc_page_size(const sdc_client *c);

/* ------------------------------------------------------------ metadata */

enum { SDC_KIND_FILE = 1, SDC_KIND_DIR = 2 };

typedef struct sdc_attr {
	int kind;           /* SDC_KIND_* */
	uint64_t size;
	uint32_t mode;      /* permission bits (0644) */
	int64_t mtime;      /* seconds since the epoch */
	int64_t ctime;
	char sha256[65];    /* files: the content address ("" while unknown) */
	int64_t versions;   /* files: stored versions (stat only, else 0) */
} sdc_attr;

typedef struct sdc_dirent {
	char name[256];
	sdc_attr st;
} sdc_dirent;

/* Return non-zero to stop the listing (sdc_readdir then returns that value). */
typedef int (*sdc_dir_cb)(void *arg, const sdc_dirent *e);

/* stat(2): -ENOENT when nothing is there. A file open in this client
 * answers as this client sees it (its unsaved writes, a create not yet
 * committed). */
int sdc_stat(sdc_client *c, const char *where, sdc_attr *st);
/* Every entry of a directory, sorted by name (fetched page by page).
 * -ENOTDIR when where is a file. */
int sdc_readdir(sdc_client *c, const char *where, sdc_dir_cb cb, void *arg);
/* One page of a directory, with every entry's attributes, in one request:
 * up to limit entries (0: the server's list_limit) after the name `after`
 * (NULL or "": from the start), sorted by name. Returns the number of
 * entries given to cb (it may stop early by returning non-zero); next gets
 * the name to pass as `after` for the following page, "" when this was the
 * last. -ENOTDIR on a file (call it on directories: a file's bytes would be
 * fetched to find out). */
int sdc_readdir_page(sdc_client *c, const char *where, const char *after, int limit,
		     sdc_dir_cb cb, void *arg, char *next, size_t nextlen);
/* mkdir(2), or mkdir -p with parents = 1 (then an existing directory is 0).
 * mode: permission bits (the server creates 0755; another mode is set after). */
int sdc_mkdir(sdc_client *c, const char *where, uint32_t mode, int parents);
/* rmdir(2): -ENOTEMPTY unless empty, -ENOTDIR on a file (one request: the
 * server checks and removes in one transaction). */
int sdc_rmdir(sdc_client *c, const char *where);
/* unlink(2): -EISDIR on a directory. With recursive = 1 a directory and all
 * below it go (rm -r). A file open in this client stays readable through
 * its descriptors until closed, and nothing of it is committed again. */
int sdc_unlink(sdc_client *c, const char *where, int recursive);
/* rename(2) on one server (replaces a file at `to`); -EXDEV across servers.
 * Files open in this client at or below `from` are committed first and
 * follow the new name; one open at `to` is unlinked (as by sdc_unlink). */
int sdc_rename(sdc_client *c, const char *from, const char *to);
/* sdc_rename with flags: SDC_RENAME_NOREPLACE fails with -EEXIST when `to`
 * exists (checked by the server in the rename's transaction). */
#define SDC_RENAME_NOREPLACE 0x1u
int sdc_rename2(sdc_client *c, const char *from, const char *to, unsigned flags);
/* chmod(2). On a file open here with unsaved writes, it lands with the
 * commit. */
int sdc_chmod(sdc_client *c, const char *where, uint32_t mode);
/* utimes(2): the modification time (seconds). As chmod for open files. */
int sdc_utimens(sdc_client *c, const char *where, int64_t mtime);

/* The space of a server for the user (GET /api/v1/me). */
typedef struct sdc_fsstat {
	uint64_t quota;      /* bytes, 0: unlimited */
	uint64_t used;       /* the user's logical bytes */
	uint64_t disk_total; /* the server's store (0 from servers that do not say) */
	uint64_t disk_free;
	int readonly;        /* read-only credentials */
} sdc_fsstat;
int sdc_statfs(sdc_client *c, const char *where, sdc_fsstat *out);

/* ------------------------------------------------------------ open files */

/* Share modes for sdc_open (one of). 0 means SDC_SHARE_WRITE. */
#define SDC_SHARE_WRITE     0x0u
#define SDC_SHARE_READ      0x1u
#define SDC_SHARE_EXCLUSIVE 0x2u

/* open(2): flags O_RDONLY/O_WRONLY/O_RDWR with O_CREAT, O_TRUNC, O_EXCL,
 * O_APPEND; share: SDC_SHARE_*; mode: permission bits of a created file.
 * Returns a descriptor >= 0 (small numbers, per client), or -ENOENT,
 * -EEXIST, -EISDIR, -EBUSY (open-mode conflict), -EMFILE (the server's
 * handle limit), -EROFS (read-only credentials), -EINVAL (SDC_SHARE_READ
 * with write access). A file created by an open appears on the server at
 * its first sdc_fsync or at sdc_close. */
int sdc_open(sdc_client *c, const char *where, int flags, unsigned share, uint32_t mode);

/* pread(2)/pwrite(2) through the cache. pread returns the bytes read (short
 * only at the end of the file, 0 past it). pwrite returns len; writing past
 * the end extends the file with zeros. With O_APPEND, pwrite writes at the
 * end whatever off says (as on Linux). -EBADF: not open for that. */
ssize_t sdc_pread(sdc_client *c, int fd, void *buf, size_t len, uint64_t off);
ssize_t sdc_pwrite(sdc_client *c, int fd, const void *buf, size_t len, uint64_t off);
/* read(2)/write(2)/lseek(2) on the descriptor's own offset (SEEK_SET,
 * SEEK_CUR, SEEK_END). lseek returns the new offset. */
ssize_t sdc_read(sdc_client *c, int fd, void *buf, size_t len);
ssize_t sdc_write(sdc_client *c, int fd, const void *buf, size_t len);
int64_t sdc_lseek(sdc_client *c, int fd, int64_t off, int whence);
/* ftruncate(2). */
int sdc_ftruncate(sdc_client *c, int fd, uint64_t size);
/* fstat(2): the file as this client sees it (its unsaved writes included;
 * sha256 is "" while there are any). */
int sdc_fstat(sdc_client *c, int fd, sdc_attr *st);
/* Write the file's dirty pages to the server's working copy (no commit). */
int sdc_flush(sdc_client *c, int fd);
/* fsync(2) (Cage's put_pages): write the dirty pages and commit them as a
 * new version. An error from an earlier write-back (the server lost the
 * handle: -SDC_ELOST; a failed eviction) is reported here once. */
int sdc_fsync(sdc_client *c, int fd);
/* sdc_fsync, and with SDC_COMMIT_RELEASE the server handle is released
 * too when fd is the file's only descriptor (a FUSE flush at close(2)):
 * the next call on fd that needs the server opens it again. */
#define SDC_COMMIT_RELEASE 0x1u
int sdc_commit(sdc_client *c, int fd, unsigned flags);
/* Keep the server handles of open files alive: a cheap request on each
 * one not used for a third of the server's idle timeout (any call resets
 * it). Call it now and then (a FUSE daemon: every few seconds) when files
 * may stay open and unused longer than handle_idle_timeout. Returns how
 * many were touched. */
int sdc_keepalive(sdc_client *c);
/* sdc_fsync on every open file of the client (Cage's push_all); returns
 * the first error, after trying every file. */
int sdc_push_all(sdc_client *c);
/* close(2): the last descriptor of a file writes its dirty pages and
 * commits. The descriptor is released whatever the result; a failed commit
 * leaves the previous version on the server. Clean pages stay cached. */
int sdc_close(sdc_client *c, int fd);

/* The physical level (Cage): page `pageno` of the file (bytes
 * [pageno * page_size, (pageno + 1) * page_size)). page_read returns the
 * bytes of the page that exist (page_size, or fewer in the last page, 0
 * past the end). page_write writes len <= page_size bytes at the start of
 * the page. */
ssize_t sdc_page_read(sdc_client *c, int fd, uint64_t pageno, void *buf);
ssize_t sdc_page_write(sdc_client *c, int fd, uint64_t pageno, const void *buf, size_t len);

/* Cache counters (for tests and tuning). */
typedef struct sdc_cache_stats {
	uint64_t hits, misses;     /* page lookups */
	uint64_t evictions;        /* pages evicted */
	uint64_t writebacks;       /* dirty pages written back (any reason) */
	uint64_t requests;         /* HTTP requests made */
	uint64_t bytes_in, bytes_out;
	size_t pages_used, pages_dirty;
} sdc_cache_stats;
void sdc_cache_stats_get(sdc_client *c, sdc_cache_stats *out);
/* Drop every clean page (dirty pages stay): the next reads go to the server. */
void sdc_cache_drop_clean(sdc_client *c);

/* ------------------------------------------------------------ hibernate */

/* Write the whole client state (cache pages clean and dirty, open files,
 * their flags, descriptors and base versions) to `file` (created 0600,
 * written to a temp file and renamed: a crash leaves the old dump or the
 * new one). First, for each open file, data already written back to the
 * server is committed and server handles are released (if the server is
 * reachable; if not, the dump records the handle to pick it up again).
 * On success the client is freed and 0 returned; on failure nothing is
 * freed and the client carries on. */
int sdc_hibernate(sdc_client *c, const char *file);

/* A client from a dump made by sdc_hibernate, with `o`'s servers (matched
 * by name; credentials are never dumped) and cache geometry (page_size
 * must match the dump's; npages may differ: pages beyond it are dropped,
 * clean ones first). Each file that was open is reopened under its old
 * descriptor and checked: unchanged on the server -> it carries on; its
 * dirty pages based on a version that is no longer current (or on a file
 * that is gone) -> a conflict. Clean pages of a changed file are dropped.
 * NULL with *err: -ENOENT (no dump), -EINVAL (not a dump, other page size,
 * a server name missing from o), -EIO. Conflicts do not fail the restore. */
sdc_client *sdc_client_restore(const sdc_options *o, const char *file, int *err);

enum {
	SDC_CONFLICT_CHANGED = 1, /* the server has another version than the pages' base */
	SDC_CONFLICT_GONE,        /* the file was deleted (or renamed away) */
	SDC_CONFLICT_LOST,        /* data written back before hibernate is gone */
	SDC_CONFLICT_BUSY,        /* could not reopen: open-mode conflict or server down */
};

typedef struct sdc_conflict {
	int fd;
	const char *where;     /* "NAME:/path" */
	int reason;            /* SDC_CONFLICT_* */
	char base[65];         /* the version the dirty pages were based on */
	char current[65];      /* the server's now ("" when gone or unknown) */
	uint64_t dirty_bytes;  /* bytes written by this client not saved */
} sdc_conflict;

/* Calls cb for each conflicted descriptor; returns how many there are. */
int sdc_conflicts(sdc_client *c, void (*cb)(void *arg, const sdc_conflict *k), void *arg);

#define SDC_RESOLVE_DISCARD   1 /* drop this client's unsaved writes; carry on with
				 * the server's current version */
#define SDC_RESOLVE_OVERWRITE 2 /* write this client's dirty pages over the server's
				 * current version (an explicit decision of the caller) */
#define SDC_RESOLVE_RETRY     3 /* try to reopen and check again (after BUSY) */
/* Settle a conflict of fd; 0 when it is settled, -SDC_ECONFLICT when a
 * retry found it still conflicting, other errors as sdc_open. */
int sdc_resolve(sdc_client *c, int fd, int how);

/* Descriptors open in the client (after a restore: which is which).
 * Calls cb(arg, fd, where, flags); returns how many. */
int sdc_open_files(sdc_client *c, void (*cb)(void *arg, int fd, const char *where, int flags),
		   void *arg);

/* ------------------------------------------------------------ whole files */

/* Progress of a transfer: done of total bytes (total 0: unknown). */
typedef void (*sdc_progress_cb)(void *arg, uint64_t done, uint64_t total);

/* SHA-256 of a local file (lowercase hex into hex[65]). */
int sdc_sha256_fd(int fd, char hex[65], sdc_progress_cb cb, void *arg);

#define SDC_PUT_PARENTS 0x1u /* create missing directories */
#define SDC_PUT_NORESUME 0x2u /* neither resume an earlier attempt nor keep state */

typedef struct sdc_put_result {
	int instant;           /* 1: no content bytes were sent */
	int resumed;           /* 1: carried on from an interrupted attempt */
	uint64_t sent;         /* content bytes sent in this call */
	uint64_t size;
	char sha256[65];
	double hash_seconds;   /* time spent hashing the local file */
	double net_seconds;    /* time from the first request to the answer of the last */
} sdc_put_result;

/* Upload a local file: hash it, try instant upload (answering a proof of
 * possession challenge from the local bytes), send the bytes only when the
 * server lacks the content. Large files go through a handle in pieces, with
 * the state kept in state_dir, so that a later call with the same local file
 * and target resumes an interrupted attempt (while the server still holds
 * the handle: its handle_idle_timeout). The result is checked against the
 * local hash. *res may be NULL. */
int sdc_put_file(sdc_client *c, const char *local, const char *where, unsigned flags,
		 sdc_progress_cb cb, void *arg, sdc_put_result *res);

/* Download to a local file. The bytes go to "<local>.stor-part" first and
 * the file is renamed into place at the end; a later call resumes a
 * partial file from where it stopped if the remote file is still the same
 * version (else it starts over). */
int sdc_get_file(sdc_client *c, const char *where, const char *local, sdc_progress_cb cb,
		 void *arg);

/* Copy a remote file: on one server, an instant server-side copy; between
 * two servers, instant upload to the target when it can prove possession
 * (reading the challenged ranges from the source), else the bytes are
 * streamed from one to the other (never stored locally) and checked by
 * SHA-256. *instant (may be NULL) says whether no content bytes moved. */
int sdc_copy(sdc_client *c, const char *from, const char *to, sdc_progress_cb cb, void *arg,
	     int *instant);

/* Read a whole remote file, streaming, into a callback (cat). cb returns
 * non-zero to stop. */
int sdc_cat(sdc_client *c, const char *where, int (*cb)(void *arg, const void *p, size_t n),
	    void *arg);

#ifdef __cplusplus
}
#endif
#endif
