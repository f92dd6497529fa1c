/*
 * http.h - internal interface of the HTTP/REST front end (frontends/http/).
 *
 * Files, and the only direction calls go (a file calls those below it,
 * never one above or beside it; the body phase reaches a handler only
 * through the hreq.finish pointer that handler set):
 *
 *   module.c    descriptor, config, listener, libmicrohttpd daemon, the
 *               per-request state machine, body intake, completion
 *      |
 *   routes.c    THE route table (method, path, flags, handler) and dispatch:
 *               header-size limit, authentication, read-only, admin, 405
 *      |
 *   auth.c      Authorization header -> engine session
 *   ops.c       /healthz, /metrics
 *   files.c     /api/v1/fs (list, delete, mkdir/move/copy/chmod), /stat, /me
 *   me.c        /api/v1/me/... self-service (password, tokens, keys)
 *   ids.c       /api/v1/upload and /f/<file_id> (FastDFS-style IDs)
 *   handles.c   /api/v1/open and /api/v1/handles/<id>/... (the handle API,
 *               docs/handle-api.md): ids, open, stat, truncate, attrs,
 *               sync, close, abandon
 *   hdata.c     /api/v1/handles/<id>/data: reads with ranges, streamed
 *               and multipart writes
 *   admin.c     /api/v1/admin/...
 *   history.c   /api/v1/versions, /trash, /rollback, ?at= (history.h)
 *   links.c     /api/v1/links and /s/<token>: share links (teams.h)
 *   shares.c    /api/v1/admin/groups, /shares, /links (teams.h)
 *   tus.c       /api/v1/tus: resumable uploads (tus 1.0) on the engine's
 *               upload sessions
 *   partial.c   PUT /api/v1/fs/<path> with Content-Range (RFC 9110 partial
 *               PUT) on a handle: one version per request
 *   web.c       the web client: assets at / and /web/, browser sessions
 *               (cookie + CSRF token) at /api/v1/session; auth.c asks it
 *               about a request with the session cookie
 *      |
 *   upload.c    streamed uploads, instant upload (header and /api/v1/instant)
 *   download.c  file bodies from readers: ranges, conditionals, multipart
 *      |
 *   args.c      query arguments, headers, path arguments of a request
 *   access.c    the access and transfer lines of each request (leaf)
 *   throttle.c  bandwidth_limit: per-user budgets (util/bw.c)
 *      |
 *   reply.c     answers: JSON bodies, errors, status mapping (leaf)
 *   wire.c      HTTP text formats: percent-decoding, dates, ranges, MIME
 *               types, base64, multipart bodies (leaf, no engine, no hreq)
 *   ranges.c    strict Range sets and multipart/byteranges request bodies
 *               of the handle API (leaf, no engine, no hreq)
 *   zip.c       a ZIP archive written as a stream (leaf, teams.h)
 *
 * Nothing here is exported from the shared object except storaged_module;
 * internal non-static symbols carry the sd__http_ prefix.
 */
#ifndef SD_HTTP_H
#define SD_HTTP_H

#include <microhttpd.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "storaged.h"
#include "bw.h"
#include "net.h"
#include "util.h"
#include "util/sdjson.h" /* the JSON form of engine types, shared with storagectl */

/* Only storaged_module (module.c, after this header) leaves the shared
 * object; every declaration below stays inside it. */
#pragma GCC visibility push(hidden)

#define HTTP_SRC "http"

/* Body bytes read and dropped after an upload failed mid-way (quota, disk
 * full) before the connection is closed without an answer. */
#define HTTP_MAX_DISCARD ((uint64_t)64 << 20)

/* ------------------------------------------------------------- config */

typedef struct http_conf {
	int64_t threads;         /* MHD thread-pool size */
	int64_t max_connections; /* total concurrent connections */
	int64_t max_per_ip;      /* concurrent connections from one address */
	int64_t idle_timeout;    /* ms */
	int64_t max_header_size; /* bytes of request line + headers */
	int64_t conn_memory;     /* per-connection buffer memory (MHD limit) */
	char *tls_cert;          /* PEM file; with tls_key enables HTTPS */
	char *tls_key;
	int public_ids;          /* /f/<id> readable without auth */
	char *auth_realm;
	int64_t max_json_body;   /* bytes of a JSON request body */
	int64_t list_limit;      /* default and max page size of listings */
	char *metrics;           /* "open" | "token" (an admin's credentials) | "off" */
	/* WebDAV (dav*.c, docs/webdav.md) */
	int dav;                 /* serve WebDAV under dav_prefix */
	char *dav_prefix;        /* "/dav/" */
	int64_t dav_max_xml_body;    /* bytes of a PROPFIND/PROPPATCH/LOCK body */
	int64_t dav_depth_infinity;  /* PROPFIND Depth: infinity up to this many entries; 0 refuses */
	int64_t dav_lock_timeout;    /* ms granted when the client names none (or Infinite) */
	int64_t dav_lock_max_timeout; /* ms: the longest lock granted */
	char *cors_origins;      /* origins browsers may call from: "", "*" or a list */
	int64_t bandwidth_limit; /* bytes/s per user, 0 = none (throttle.c) */
	int web_client;          /* serve the web client at / */
	char *web_root;          /* its assets */
	int64_t session_idle;    /* ms: a browser session unused this long ends */
	int64_t session_max;     /* ms: a browser session's longest life */
} http_conf;

typedef struct http_throttle http_throttle;

/* --------------------------------------------------------- the server */

typedef struct http_srv {
	const sd_core_api *api;
	sd_core *core;
	const sd_module_conf *mc;
	http_conf *conf;
	int listen_fd;           /* bound in init; the acceptor's (module.c) */
	int stop_pipe[2];        /* written by stop: the acceptor returns */
	int acceptor_running;
	pthread_t acceptor;
	struct MHD_Daemon *daemon;
	char *tls_cert_pem, *tls_key_pem;
	atomic_long open_conns;
	unsigned char hkey[32];  /* handles.c: key of the handle ids' MACs */
	http_throttle *throttle; /* bandwidth_limit; NULL when none */
	struct http_web *web;    /* web.c: assets and browser sessions */
} http_srv;

/* ---------------------------------------------------- request context */

/*
 * Request state machine (one per HTTP request; MHD's *con_cls):
 *
 *   (no body: the first call only allocates; the route runs on the
 *    second call, so the answer keeps the connection alive)
 *
 *   RQ_HEADERS --(handler answers at once: GET, HEAD, DELETE, errors,
 *       |         instant hit)--> RQ_ANSWERED
 *       |
 *       +--(handler wants the body: sets body and finish)--> RQ_BODY
 *                                                 |  each chunk: module.c
 *                                                 |  feeds r->up / r->json
 *                                                 |  (error: abort upload, -> discard)
 *                                                 v
 *                                   last call (size 0): r->finish() --> RQ_ANSWERED
 *
 * request_completed() (module.c) runs in every state: an upload still open
 * there was interrupted (client vanished, timeout) and is aborted, so
 * nothing becomes visible and the temp file goes; the reader and the
 * session are closed.
 */
enum rq_state { RQ_HEADERS = 0, RQ_BODY, RQ_ANSWERED };

/* What the body of a request in RQ_BODY is for. */
enum rq_body {
	BODY_NONE = 0,
	BODY_UPLOAD,   /* stream into r->up (PUT fs, POST upload) */
	BODY_JSON,     /* collect up to max_json_body into r->json */
	BODY_DISCARD,  /* read and drop (after an error or an instant hit) */
	BODY_FEED,     /* each chunk to r->feed (handle writes) */
};

typedef struct hreq hreq;
/* Answers a request whose body has arrived (the last handler call). */
typedef enum MHD_Result (*http_finish_fn)(struct MHD_Connection *c, hreq *r);
/* Takes one body chunk (BODY_FEED): 0, or -1 after setting r->err_status,
 * err_code and err_msg (the rest of the body is then read and dropped). */
typedef int (*http_feed_fn)(hreq *r, const char *data, size_t len);

struct hreq {
	http_srv *srv;
	int state;         /* enum rq_state */
	int deferred;      /* no body: the route runs on the second call */
	int body;          /* enum rq_body */
	http_finish_fn finish; /* set with RQ_BODY */
	http_feed_fn feed;     /* BODY_FEED */
	int finish_on_error;   /* finish answers r->err_status itself */
	void *body_state;      /* the feeder's; body_state_free'd at completion */
	void (*body_state_free)(void *);
	int status;        /* status queued (metrics) */
	uint64_t bytes_in, bytes_out;
	uint64_t discarded;  /* body bytes dropped (BODY_DISCARD) */
	char addr[SD_ADDR_MAX];
	int authed;
	int web;                     /* a web client request: no Basic challenge on 401 */
	sd_session *sess;            /* from authentication; closed at completion */
	sd_session_info who;         /* the session's user as of authentication */
	sd_reader *rd;               /* file being sent; closed at completion */
	char method[16];
	sd_buf path;                 /* decoded user path, as given to the engine */
	char shown[SD_PATH_MAX + 1]; /* the same path resolved by the engine (answers, logs) */
	unsigned up_flags;
	int existed;                 /* upload target existed before */
	sd_upload *up;
	char expect_sha[SD_SHA256_HEX];
	char file_id[160];           /* ID upload: set, else "" */
	/* pending error found while reading the body */
	int err_status;
	char err_code[32];
	char err_msg[160];
	/* an instant hit whose body is still being read and dropped: the
	 * answer prepared in the first call (upload.c) */
	int ans_status;
	sd_stat inst_st;
	/* BODY_JSON */
	sd_buf json;
	int json_over;
	/* admin route (copied tail of the URL) */
	char route[256];
	/* access.c: when the request began, its target as received, and
	 * whether it moved a file (1 in, 2 out: a transfer line at the end) */
	int64_t t0_us;
	char target[1024];
	int xfer;
	int xfer_dedup;
	sd_bw_slot *bws;  /* throttle.c: the user's bandwidth slot, if limited */
	/* handle API: the handle the URL names (handles.c) */
	sd_handle hid;
	char hname[72];
};

/* -------------------------------------------------------- throttle.c */

/* A limiter of rate bytes/s per user, nslots users at once (NULL when rate
 * is 0: no limit). With one, every connection has a thread of its own
 * (module.c), so the calls below may sleep. */
http_throttle *sd__http_throttle_new(int64_t rate, int nslots);
void sd__http_throttle_free(http_throttle *t);
/* n body bytes of r moved (in or out): charge r's user, sleeping while it
 * is over its budget. No-op without a limit or an authenticated user. */
void sd__http_throttle(hreq *r, size_t n);
/* Is r's user limited (an authenticated request with a limiter on)? */
int sd__http_throttled(hreq *r);
/* How much a limited body read should move at once (max when unlimited). */
size_t sd__http_throttle_chunk(hreq *r, size_t max);
/* Give r's slot back (request completion). */
void sd__http_throttle_release(hreq *r);

/* ---------------------------------------------------------- access.c */

/* The request's first call: its start time and target, for its line. */
void sd__http_access_begin(hreq *r, const char *url, const char *method);
/* The request is over (completed: answered in full): its access line and,
 * when it moved a file (r->xfer), its transfer line. c may be NULL. */
void sd__http_access_end(struct MHD_Connection *c, hreq *r, int completed);

/* ---------------------------------------------------------- routes.c */

/* module.c: does the request carry a body (Content-Length > 0, or
 * Transfer-Encoding)? */
int sd__http_has_body(struct MHD_Connection *c);
/* The first handler call of a request (headers complete): match the
 * route table, authenticate, check rights and method, run the handler. */
enum MHD_Result sd__http_dispatch(struct MHD_Connection *c, hreq *r, const char *url,
				  const char *method);
/* CORS (cors_origins): the request's Origin header when the configuration
 * lets pages of that origin call the API, else NULL. */
const char *sd__http_cors_origin(struct MHD_Connection *c, hreq *r);

/* ------------------------------------------------------------ auth.c */

/* Authenticate the request from its Authorization header. 0 with r->sess
 * (a new session, closed at completion) and r->who set, or an error answer
 * was queued (*ret set) and -1. */
int sd__http_authenticate(struct MHD_Connection *c, hreq *r, enum MHD_Result *ret);

/* ------------------------------------------------------------- web.c */

/* Load the assets of web_root (when web_client) and set up the session
 * table: 0 (a missing web_root only disables the pages, with a warning). */
int sd__http_web_init(http_srv *s);
/* Revoke the tokens of the sessions still open; free it all. */
void sd__http_web_free(http_srv *s);
/* 1 if the request carries the session cookie. */
int sd__http_web_has_cookie(struct MHD_Connection *c);
/* Authenticate the request by its session cookie (and, for a writing
 * method, its X-CSRF-Token): as sd__http_authenticate. */
int sd__http_web_authenticate(struct MHD_Connection *c, hreq *r, enum MHD_Result *ret);

/* ---------------------------------------------------------- handlers */

/* Every handler is called from the first handler call of its request with
 * `tail`, the raw (undecoded) URL after the route's path and its '/'. It
 * answers at once, or sets r->state = RQ_BODY with r->body and r->finish. */
typedef enum MHD_Result (*http_handler)(struct MHD_Connection *c, hreq *r, const char *tail);

/* ops.c */
enum MHD_Result sd__http_healthz(struct MHD_Connection *c, hreq *r, const char *tail);
enum MHD_Result sd__http_metrics(struct MHD_Connection *c, hreq *r, const char *tail);
/* files.c */
enum MHD_Result sd__http_fs(struct MHD_Connection *c, hreq *r, const char *tail);
enum MHD_Result sd__http_stat(struct MHD_Connection *c, hreq *r, const char *tail);
enum MHD_Result sd__http_me(struct MHD_Connection *c, hreq *r, const char *tail);
/* me.c: /api/v1/me/<password|tokens|keys...>, the user's own credentials */
enum MHD_Result sd__http_me_sub(struct MHD_Connection *c, hreq *r, const char *tail);
/* upload.c: POST /api/v1/instant */
enum MHD_Result sd__http_instant(struct MHD_Connection *c, hreq *r, const char *tail);
/* ids.c */
enum MHD_Result sd__http_idupload(struct MHD_Connection *c, hreq *r, const char *tail);
enum MHD_Result sd__http_fileid_get(struct MHD_Connection *c, hreq *r, const char *tail);
/* admin.c: /api/v1/admin/<tail>; the route table checked SD_USER_ADMIN */
enum MHD_Result sd__http_admin_begin(struct MHD_Connection *c, hreq *r, const char *tail);
/* handles.c: POST /api/v1/open, and the calls on /api/v1/handles/<id>[/...]
 * (tail is the id); the route table let read-only credentials through to
 * open, sync, close and the handle itself, which check them here */
enum MHD_Result sd__http_h_open(struct MHD_Connection *c, hreq *r, const char *tail);
enum MHD_Result sd__http_h_handle(struct MHD_Connection *c, hreq *r, const char *id);
enum MHD_Result sd__http_h_truncate(struct MHD_Connection *c, hreq *r, const char *id);
enum MHD_Result sd__http_h_attrs(struct MHD_Connection *c, hreq *r, const char *id);
enum MHD_Result sd__http_h_sync(struct MHD_Connection *c, hreq *r, const char *id);
enum MHD_Result sd__http_h_close(struct MHD_Connection *c, hreq *r, const char *id);
/* tus.c: /api/v1/tus[/<id>], resumable uploads (tus 1.0); authenticates
 * by itself (OPTIONS needs no credentials) */
enum MHD_Result sd__http_tus(struct MHD_Connection *c, hreq *r, const char *tail);
/* web.c: GET / (index.html), GET /web/<name>, and /api/v1/session
 * (POST login, GET who and CSRF token, DELETE logout) */
enum MHD_Result sd__http_web_index(struct MHD_Connection *c, hreq *r, const char *tail);
enum MHD_Result sd__http_web_asset(struct MHD_Connection *c, hreq *r, const char *tail);
enum MHD_Result sd__http_web_session(struct MHD_Connection *c, hreq *r, const char *tail);
/* hdata.c: GET/HEAD/PUT /api/v1/handles/<id>/data */
enum MHD_Result sd__http_h_data(struct MHD_Connection *c, hreq *r, const char *id);

/* --------------------------------------------------------- handles.c */

/* Draw the key of handle ids (init): 0 or -errno from sd_random_bytes. */
int sd__http_handles_init(http_srv *s);
/* Take the handle id `id` of the URL for r's user into r->hid and
 * r->hname. 0, or an answer queued (*ret): 400 bad_handle for an id not of
 * the form, 404 for one this server did not give this user. */
int sd__http_take_handle(struct MHD_Connection *c, hreq *r, const char *id,
			 enum MHD_Result *ret);
/* The answer for an engine error on r->hid: -EBADF (closed, expired,
 * another user's) is 404 not_found; the rest as sd__http_reply_errno. */
enum MHD_Result sd__http_handle_errno(struct MHD_Connection *c, hreq *r, int err);

/* ---------------------------------------------------------- upload.c */

/* Start a body upload to r->path (r->shown, r->up_flags set): hands a
 * Content-Range to partial.c (refused on ID uploads), checks X-Checksum-SHA256, tries instant
 * upload by header, pre-checks the quota from Content-Length, then
 * upload_begin. Answers, or enters RQ_BODY with BODY_UPLOAD. */
enum MHD_Result sd__http_upload_start(struct MHD_Connection *c, hreq *r);

/* --------------------------------------------------------- partial.c */

/* PUT of r->path with Content-Range `range` (RFC 9110 partial PUT): checks
 * the range, opens a handle of the request's session (the working copy)
 * and enters RQ_BODY; the body is written at the range's start and
 * committed as one version when it is complete. Answers at once on a
 * malformed range (400), a range past the end (409), If-Match (412). */
enum MHD_Result sd__http_partial_put(struct MHD_Connection *c, hreq *r, const char *range);

/* -------------------------------------------------------- download.c */

/* Answer GET/HEAD with the file at `path`: of the session's tree when
 * owner < 0, else of user `owner`'s tree through open_read_public (a link
 * the caller has decided is public). The reader goes into r->rd. */
enum MHD_Result sd__http_serve_file(struct MHD_Connection *c, hreq *r, const char *path,
				    int64_t owner);
/* The same for a reader the caller opened into r->rd (st describes it;
 * path names it for the Content-Type and, with HTTP_SERVE_ATTACHMENT, the
 * Content-Disposition file name). HTTP_SERVE_SANDBOX: the content is
 * someone else's, served on our origin (share links): CSP sandbox, nosniff,
 * no referrer. */
#define HTTP_SERVE_SANDBOX    0x1u
#define HTTP_SERVE_ATTACHMENT 0x2u
enum MHD_Result sd__http_serve_reader(struct MHD_Connection *c, hreq *r, const sd_stat *st,
				      const char *path, unsigned flags);

/* ------------------------------------------------------------ args.c */

/* The header value, or NULL. */
const char *sd__http_hdr(struct MHD_Connection *c, const char *name);
/* Query argument `name` percent-decoded into out (outlen bytes incl. NUL):
 * 1 found, 0 absent, -EINVAL when badly encoded, not UTF-8 or too long. */
int sd__http_arg(struct MHD_Connection *c, const char *name, char *out, size_t outlen);
/* 1 if the query argument is "1", "yes" or "true". */
int sd__http_arg_true(struct MHD_Connection *c, const char *name);
/* Check a decoded client path argument: no double encoding (".." is the
 * engine's resolver's business). 0, or an error answer queued (*ret) and
 * -1. */
int sd__http_check_path(struct MHD_Connection *c, hreq *r, const char *p, const char *what,
			enum MHD_Result *ret);
/* Make the raw URL tail the request's path: "/" + decoded tail into
 * r->path (given to the engine as it is, never folded here), checked with
 * sd__http_check_path, and its resolution by the engine into r->shown.
 * 0, or an error answer queued (*ret) and -1. */
int sd__http_take_path(struct MHD_Connection *c, hreq *r, const char *raw, enum MHD_Result *ret);
/* r->path (set by the caller, e.g. from JSON) checked and resolved into
 * r->shown, as sd__http_take_path does after decoding. */
int sd__http_show_path(struct MHD_Connection *c, hreq *r, enum MHD_Result *ret);
/* Enter RQ_BODY to collect a JSON body (up to max_json_body), then call
 * finish. Returns MHD_YES. */
enum MHD_Result sd__http_want_json(hreq *r, http_finish_fn finish);
/* The "expires" of a token request as seconds from now (0 = never): an
 * RFC 3339 date-time string in the future, an integer of seconds from
 * now (up to 100 years), null or absent. 0, or -1 when it is none of
 * these. */
int sd__http_json_expires(json_t *v, int64_t now, int64_t *secs);

/* ----------------------------------------------------------- reply.c */

/* Send and account an answer. All return MHD_YES/MHD_NO from queueing.
 * reply_json steals `obj` (may be NULL: "{}"). */
enum MHD_Result sd__http_reply_json(struct MHD_Connection *c, hreq *r, unsigned status,
				    json_t *obj);
/* A JSON response (not yet queued) for obj (stolen); *len = body size. */
struct MHD_Response *sd__http_json_response(json_t *obj, uint64_t *len);
/* JSON error body {"error": code, "message": msg}. */
enum MHD_Result sd__http_reply_error(struct MHD_Connection *c, hreq *r, unsigned status,
				     const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Error answer for an engine error code (negative errno or -SD_E*). */
enum MHD_Result sd__http_reply_errno(struct MHD_Connection *c, hreq *r, int err);
/* An answer with no body (204, 304 ...). */
enum MHD_Result sd__http_reply_empty(struct MHD_Connection *c, hreq *r, unsigned status);
/* Queue a prepared response, record status and body size, release it. */
enum MHD_Result sd__http_queue(struct MHD_Connection *c, hreq *r, unsigned status,
			       struct MHD_Response *resp, uint64_t body_len);
/* Map an engine error to an HTTP status and an error code word. */
unsigned sd__http_status_for(int err, const char **code);

/* ------------------------------------------------------------ wire.c */

/* Percent-decode `in` once, appending to out. Refuses a bad escape and a
 * decoded NUL or backslash (-EINVAL), and more than max decoded bytes
 * (-ENAMETOOLONG); out may then hold a partial result. */
int sd__http_pct_decode(const char *in, size_t max, sd_buf *out);
/* 1 if the decoded path s still holds an escape for '.', '/', '\\', '%' or
 * NUL, i.e. the client encoded twice (%252e): refused, as a filter or
 * proxy in front of us may decode again. */
int sd__http_double_encoded(const char *s);
/* RFC 9110 IMF-fixdate of t into out (>= 30 bytes). */
void sd__http_date(int64_t t, char *out, size_t outlen);
/* Parse an HTTP date; -1 if unparseable. */
int64_t sd__http_parse_date(const char *s);
/* Parse an RFC 3339 date-time ("2026-12-31T23:59:59Z", fractions and
 * "+01:00" offsets allowed) into seconds since the epoch; -1 if it is not
 * one. */
int64_t sd__http_parse_rfc3339(const char *s);
/* Content type for a file name, from its extension. */
const char *sd__http_mime(const char *name);
/* Decode base64 (standard or URL alphabet, padding optional), appending
 * to out. 0 or -EINVAL. */
int sd__http_b64decode(const char *in, sd_buf *out);
/* Does an If-None-Match / If-Range list match the strong ETag of sha? */
int sd__http_etag_match(const char *list, const char *sha);

#define HTTP_MAX_RANGES 16   /* plain downloads; more: the whole file */
#define HTTP_MAX_PARTS 256   /* handle reads; the multipart builder's limit */
typedef struct http_range {
	uint64_t first, last; /* inclusive */
} http_range;
/* Parse a Range header against a size. Returns the number of satisfiable
 * ranges (1..HTTP_MAX_RANGES), sorted, with overlapping or adjacent ones
 * merged (their lengths add up to at most size), 0 if the header must be ignored (not
 * "bytes=" or malformed), -1 if unsatisfiable (answer 416). */
int sd__http_parse_range(const char *h, uint64_t size, http_range *out);

/* ----------------------------------------------------------- ranges.c */

/* Parse a Range header of a handle read against size, strictly: 0 with
 * *n >= 1 ranges in out (at most max), sorted and coalesced (overlapping or
 * adjacent ones merged); -EINVAL when malformed (another unit, bad syntax,
 * b < a, a number past 2^63-1, more than max ranges); -ERANGE when
 * unsatisfiable (a range starting at or past the end, a suffix of 0, or
 * ranges that add up to more than size). */
int sd__http_ranges_strict(const char *h, uint64_t size, http_range *out, int max, int *n);

#define HTTP_MPW_BOUNDARY_MAX 70  /* RFC 2046 */
#define HTTP_MPW_HEAD_MAX 8192    /* delimiter + part headers */
/* The boundary of a "multipart/byteranges; boundary=..." Content-Type
 * into out: 1; 0 when the type is another; -EINVAL when it has no usable
 * boundary. */
int sd__http_mp_boundary(const char *ctype, char *out, size_t outlen);
/* A streaming parser of a multipart/byteranges request body: each part's
 * bytes go to a callback with the file offset its Content-Range names. */
typedef struct http_mpw http_mpw;
/* Piece bytes data[0, len) belong at file offset off: 0, or -errno to stop. */
typedef int (*http_piece_fn)(void *arg, const char *data, size_t len, uint64_t off);
/* NULL when the boundary is too long. */
http_mpw *sd__http_mpw_new(const char *boundary);
/* Feed body bytes: 0; -EINVAL on a malformed body (sd__http_mpw_error
 * says what), or the callback's error. Either error is final. */
int sd__http_mpw_feed(http_mpw *p, const char *data, size_t len, http_piece_fn fn, void *arg);
/* The body ended: 0 when it was complete (closing delimiter seen), else
 * -EINVAL and *why. */
int sd__http_mpw_end(http_mpw *p, const char **why);
const char *sd__http_mpw_error(const http_mpw *p);
int sd__http_mpw_parts(const http_mpw *p);
void sd__http_mpw_free(http_mpw *p);

/* Reads up to len bytes at off of the content being sent: bytes read, 0 at
 * the end, or -errno. */
typedef ssize_t (*http_pread_fn)(void *arg, void *buf, size_t len, uint64_t off);
/* Build a multipart/byteranges response of 1..HTTP_MAX_PARTS ranges,
 * reading the content through pread(arg, ...), which must stay usable
 * while the response is sent.
 * *len = body size, *ctype = its Content-Type (malloc'd, the caller frees).
 * NULL with *err set: -errno from sd_random_bytes (no boundary can be
 * drawn: the caller refuses), -ENOMEM. */
struct MHD_Response *sd__http_multipart(http_pread_fn pread, void *arg, uint64_t size,
					const char *type, const http_range *rg, int n,
					uint64_t *len, char **ctype, int *err);

#pragma GCC visibility pop

#endif
