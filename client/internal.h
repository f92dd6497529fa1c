/*
 * internal.h - libstoraged's private structures and the calls its files
 * make to each other (prefix sdc__). Nothing here is installed.
 *
 * Layering:
 *   http.c     libcurl: a pool of easy handles per server, one request =
 *              sdc__http(); HTTP status + JSON error -> -errno
 *   meta.c     the REST calls that need no open file (stat, readdir ...)
 *   remote.c   the handle API (open/read ranges/write runs/truncate/sync/
 *              close/abandon) as called by the cache
 *   cache.c    pages: the LFU structure, lookup, allocation and eviction
 *   file.c     open files: descriptors, pread/pwrite/ftruncate/fsync/close
 *   hib.c      hibernate and restore
 *   xfer.c     whole files: upload (instant, proof, resume), download, copy
 *   client.c   the client object, options, names, errors
 *
 * Locks (see file.c for the invariants):
 *   c->lock   the client's tables: descriptors, files, the page table, the
 *             LFU lists, counters. Never held during network I/O.
 *   f->lock   one file: its size, its server handle, its pages' contents.
 *             Held during that file's network I/O.
 * Order: f->lock before c->lock. A thread holding one file's lock takes
 * another file's lock only with trylock (eviction of that file's pages).
 */
#ifndef SDC_INTERNAL_H
#define SDC_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/types.h>

#include <curl/curl.h>
#include <jansson.h>

#include "storaged-client.h"

#define SDC_POOL 8         /* idle curl handles kept per server */
#define SDC_PATH_MAX 4096
#define SDC_MAX_FDS 65536

/* ------------------------------------------------------------ buffers */

typedef struct sdc_buf {
	char *p;
	size_t len, cap;
} sdc_buf;

void sdc__buf_add(sdc_buf *b, const void *p, size_t n);
void sdc__buf_puts(sdc_buf *b, const char *s);
void sdc__buf_printf(sdc_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sdc__buf_free(sdc_buf *b);
/* Appends s percent-encoded; keep_slash keeps '/' as it is (paths). */
void sdc__buf_urlenc(sdc_buf *b, const char *s, int keep_slash);

void *sdc__xmalloc(size_t n);
void *sdc__xcalloc(size_t n, size_t m);
char *sdc__xstrdup(const char *s);

/* Set this thread's sdc_errmsg(). */
void sdc__set_errmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

double sdc__now(void);

/* ------------------------------------------------------------ servers */

typedef struct sdc_srv {
	char name[64];
	char *base;   /* URL without a trailing '/' */
	char *user;   /* Basic */
	char *secret; /* Basic password / token */
	char *bearer; /* Bearer token, or NULL */
	pthread_mutex_t pool_m;
	CURL *pool[SDC_POOL];
	int npool;
} sdc_srv;

/* ------------------------------------------------------------ HTTP */

typedef struct sdc_req {
	const char *method;    /* "GET", "PUT" ... */
	sdc_buf url;           /* full URL (built by the caller) */
	struct curl_slist *hdrs;
	/* request body: memory, or a read callback with a known length */
	const void *body;
	size_t body_len;
	size_t (*read_cb)(char *p, size_t sz, size_t n, void *arg);
	void *read_arg;
	uint64_t upload_len;
	int has_body;
	int expect100;         /* keep curl's Expect: 100-continue */
	/* response body: into resp (capped), or a sink */
	size_t (*sink)(const char *p, size_t n, void *arg); /* returns n, or 0 to stop */
	void *sink_arg;
	int sink_err;          /* set by the sink when it stops a transfer */
	sdc_buf resp;
	/* response */
	long status;
	char ctype[160];
	char crange[96];
	char etag[72];
	int instant_hdr;
	uint64_t clen;         /* Content-Length of the answer, 0 if none */
	uint64_t sent, got;    /* body bytes out and in */
} sdc_req;

/* Runs r against s: 0 when an HTTP answer came (any status, in r->status),
 * or -EIO / -ETIMEDOUT / -ENOMEM (no answer), or r->sink_err when the sink
 * stopped the transfer. */
int sdc__http(sdc_client *c, sdc_srv *s, sdc_req *r);
void sdc__req_free(sdc_req *r);
/* The pieces of sdc__http, for transfers driven by a curl multi handle:
 * take an easy handle of s, set it up for r, and (after it ran with result
 * rc) account for it and give it back; sdc__easy_done returns as sdc__http. */
CURL *sdc__easy_get(sdc_srv *s);
void sdc__easy_setup(sdc_client *c, sdc_srv *s, CURL *h, sdc_req *r);
int sdc__easy_done(sdc_client *c, sdc_srv *s, CURL *h, sdc_req *r, CURLcode rc);
void sdc__req_header(sdc_req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* -errno for a non-2xx answer (from the status and the JSON "error"
 * code), with sdc_errmsg() set to the server's message. */
int sdc__http_err(sdc_req *r);
/* The JSON object in r->resp (NULL when there is none). */
json_t *sdc__json(sdc_req *r);
/* url = base + "/api/v1/" + api + encoded path (+ nothing else). */
void sdc__url_path(sdc_req *r, sdc_srv *s, const char *api, const char *path);

/* ------------------------------------------------------------ the cache */

typedef struct sdc_file sdc_file;
typedef struct sdc_page sdc_page;
typedef struct sdc_fbucket sdc_fbucket;

struct sdc_page {
	sdc_file *f;          /* NULL: free */
	uint64_t no;          /* page number in f */
	char *data;           /* page_size bytes */
	uint32_t hw;          /* data[hw, page_size) is known to hold zeros: a fresh
			       * buffer (calloc) is never touched past what was
			       * written into it, so a small file's page costs one
			       * memory page, not page_size bytes of page faults */
	uint32_t dlo, dhi;    /* dirty bytes [dlo, dhi) of the page; clean if equal */
	int valid;            /* all bytes below the file's size are known */
	int pin;              /* in use by a call: never a victim */
	uint32_t freq;
	sdc_fbucket *bk;      /* its frequency bucket */
	sdc_page *bprev, *bnext; /* in the bucket (head: most recent) */
	sdc_page *hnext;      /* page table chain */
	sdc_page *fprev, *fnext; /* the file's pages */
};

struct sdc_fbucket {
	uint32_t freq;
	sdc_page *head, *tail;
	sdc_fbucket *prev, *next; /* by increasing freq */
};

enum fstate { FS_OK = 0, FS_CONFLICT, FS_BROKEN };

struct sdc_file {
	sdc_client *c;
	int srv;
	char *path;
	pthread_mutex_t lock;
	int opens;             /* descriptors on it (0: closed, pages kept) */
	int refs;              /* threads holding a pointer (c->lock) */
	uint64_t ra_next;      /* read-ahead: where a sequential reader goes next */
	size_t ra_win;         /* read-ahead window, pages */
	int writers;           /* descriptors open for writing */
	unsigned share;        /* SDC_SHARE_* of the open */
	int hwrite;            /* the server handle allows writes */
	char hid[72];          /* server handle id, "" when none */
	char base[65];         /* the version the pages are from ("": new/unknown) */
	uint64_t size;         /* as this client sees it */
	uint64_t rsize;        /* as the server handle has it */
	uint32_t mode;
	int64_t mtime;
	int hdirty;            /* written back to the handle, not committed */
	int pending;           /* created by this client, never committed */
	int created_mode;
	enum fstate state;
	int conflict;          /* SDC_CONFLICT_* */
	char cur[65];          /* server's version at the conflict */
	int err;               /* sticky error for the next fsync/close */
	sdc_page *pages;       /* its pages */
	size_t npages, ndirty;
	sdc_file *next, *prev; /* c->files */
	sdc_file *hnext;       /* c->ftab chain (by server and path) */
	int unlinked;          /* unlinked (or renamed over) while open: reads go on,
				* nothing is committed, the last close abandons */
	double last_use;       /* sdc__now() of the last call on the server handle */
	unsigned pa_mask;      /* attributes for the next commit: 1 mode, 2 mtime */
	uint32_t pa_mode;
	int64_t pa_mtime;
	int idle_s;            /* the server handle's idle_timeout (0: unknown) */
	int zombie;            /* closed and pages gone: free when unlocked */
	int check_base;        /* restored: check the version once more before committing */
};

typedef struct sdc_fd {
	sdc_file *f;
	int flags;             /* O_ACCMODE | O_APPEND */
	uint64_t pos;
} sdc_fd;

struct sdc_client {
	pthread_mutex_t lock;
	sdc_srv *srv;
	int nsrv;
	size_t psize, maxpages;
	int timeout_ms;
	char *cacert;
	int insecure;
	char *state_dir;
	uint64_t max_send_rate;
	/* pages */
	sdc_page *pagev;       /* maxpages structs */
	size_t used;           /* pages in use */
	sdc_page *freel;       /* free pages (linked by hnext) */
	sdc_page **htab;
	size_t hsize;
	sdc_fbucket *buckets;  /* lowest freq first */
	/* files and descriptors */
	sdc_file *files;       /* every file object (list, for walks) */
	sdc_file **ftab;       /* the same by (server, path): O(1) lookups */
	size_t ftsize, nfiles;
	int conditional;       /* sdc_options.conditional_commit */
	sdc_fd *fds;
	int nfds;
	sdc_cache_stats st;
};

/* client.c: "NAME:/path" or "/path" -> server index and path pointer. */
int sdc__where(sdc_client *c, const char *where, int *srv, const char **path);

/* cache.c (c->lock held unless said otherwise) */
int sdc__cache_init(sdc_client *c);
void sdc__cache_free(sdc_client *c);
sdc_page *sdc__page_find(sdc_client *c, sdc_file *f, uint64_t no);
void sdc__page_touch(sdc_client *c, sdc_page *p);
/* A free page for (f, no), inserted (invalid, clean); evicts as needed.
 * f->lock held, c->lock NOT held. NULL when no page can be freed now (every
 * candidate belongs to a busy file): the caller does the I/O uncached.
 * *err gets the error of a failed write-back of f itself. */
sdc_page *sdc__page_get(sdc_client *c, sdc_file *f, uint64_t no, int *err);
/* Remove p from every list and put it on the free list (its dirty bytes
 * are lost: the caller has written them back or means to drop them). */
void sdc__page_drop(sdc_client *c, sdc_page *p);
/* Write back every dirty page of f (f->lock held, c->lock not). */
int sdc__file_writeback(sdc_file *f);

/* remote.c: the handle API for f (f->lock held) */
typedef struct sdc_rinfo {
	char hid[72];
	uint64_t size;
	char sha[65];
	uint32_t mode;
	int64_t mtime;
	int dirty;
	int idle_s;
} sdc_rinfo;
/* flags: O_* as sdc_open; 0 or -errno; sets f->hid via out */
int sdc__r_open(sdc_client *c, int srv, const char *path, int flags, unsigned share,
		uint32_t mode, sdc_rinfo *out);
/* Read [off, off + len) ranges; each byte lands via put(arg, off, p, n). */
typedef struct sdc_range {
	uint64_t off, len;
} sdc_range;
int sdc__r_read(sdc_file *f, const sdc_range *rv, int n,
		void (*put)(void *arg, uint64_t off, const char *p, size_t n), void *arg);
/* Write pieces: piece i is bytes p[i] of length len[i] at off[i]; pieces
 * with consecutive offsets are sent as one run. */
typedef struct sdc_piece {
	uint64_t off;
	const char *p;
	size_t len;
} sdc_piece;
int sdc__r_write(sdc_file *f, const sdc_piece *pv, int n);
int sdc__r_truncate(sdc_file *f, uint64_t size);
/* if_match: NULL, or the version the file must hold (-SDC_ECONFLICT on 412). */
int sdc__r_sync(sdc_file *f, int close, const char *if_match, sdc_rinfo *out);
int sdc__r_abandon(sdc_file *f);
/* POST /handles/{id}/attrs: mode and/or mtime. */
int sdc__r_attrs(sdc_file *f, int has_mode, uint32_t mode, int has_mtime, int64_t mtime);
int sdc__r_hstat(sdc_client *c, int srv, const char *hid, sdc_rinfo *out);

/* file.c */
int sdc__file_commit(sdc_file *f, int close);
void sdc__file_forget_pages(sdc_file *f); /* f->lock held */
sdc_file *sdc__file_get(sdc_client *c, int srv, const char *path, int create);
/* Give f another path (c->lock held): rehashed. */
void sdc__file_repath(sdc_client *c, sdc_file *f, const char *path);
/* Take f out of the table and the list and free it (c->lock held). */
void sdc__file_free(sdc_client *c, sdc_file *f);
void sdc__file_unref_maybe_free(sdc_client *c, sdc_file *f); /* c->lock held */
/* Drop a reference taken by sdc__file_get (c->lock not held). */
void sdc__file_release(sdc_client *c, sdc_file *f);
/* Give f the descriptor fd (c->lock held); fd or -errno. */
int sdc__fd_install(sdc_client *c, sdc_file *f, int fd, int flags);

/* file.c: names of open files (used by meta.c) */
/* The attributes of path as this client sees it when it is open here
 * (unsaved writes included); -ENOENT when it is not open here. */
int sdc__open_attr(sdc_client *c, int srv, const char *path, sdc_attr *st);
/* After unlink of path (and, recursive, below it) on the server: the open
 * files there are unlinked (reads go on; nothing is committed). Returns 1
 * when one of them was a create never committed (the server did not know
 * it), -1 when open files were marked, 0 when none. */
int sdc__unlink_open(sdc_client *c, int srv, const char *path, int recursive);
/* Before a rename of from: commit the open files at or below it and
 * release their server handles. After a rename that worked: they take the
 * new names; an open file at `to` is unlinked. */
int sdc__rename_prepare(sdc_client *c, int srv, const char *from);
void sdc__rename_done(sdc_client *c, int srv, const char *from, const char *to);
/* chmod/utimens of an open file with unsaved writes: kept for its commit
 * (0); 1 when the file is not in that state (the caller sets them on the
 * server by name). */
int sdc__open_handle_attrs(sdc_client *c, int srv, const char *path, int has_mode, uint32_t mode,
			   int has_mtime, int64_t mtime);

/* meta.c */
/* GET /api/v1/stat: what the server has (never the open-file view). */
int sdc__stat_remote(sdc_client *c, int srv, const char *path, sdc_attr *st);
void sdc__stat_from_json(json_t *o, sdc_attr *st);


#endif
