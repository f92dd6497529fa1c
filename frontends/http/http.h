/*
 * http.h - internal interface of the HTTP/REST front end (frontends/http/).
 *
 * The module is split by concern:
 *   http.c   module descriptor, config, listener, libmicrohttpd daemon,
 *            request state machine, routing, auth, metrics;
 *   fs.c     the files API (/api/v1/fs, /stat, /instant, /upload, /f/);
 *   admin.c  the admin API (/api/v1/admin/...);
 *   util.c   responses (JSON errors), percent-decoding, dates, ranges,
 *            MIME types, base64.
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

#include "storaged.h"

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
} http_conf;

/* --------------------------------------------------------- the server */


typedef struct http_srv {
	const sd_core_api *api;
	sd_core *core;
	const sd_module_conf *mc;
	http_conf *conf;
	int listen_fd;           /* bound in init; owned by MHD after start */
	struct MHD_Daemon *daemon;
	char *tls_cert_pem, *tls_key_pem;
	atomic_long open_conns;
} http_srv;

/* ---------------------------------------------------- request context */

/*
 * Request state machine (one per HTTP request; MHD's *con_cls):
 *
 *   (no body: the first call only allocates; RQ_HEADERS work runs on the
 *    second call, so the answer keeps the connection alive)
 *
 *   RQ_HEADERS --(answer at once: GET, HEAD, DELETE, errors, instant hit)--> RQ_ANSWERED
 *       |
 *       +--(request carries a body we want)--> RQ_BODY
 *                                                 |  each chunk: body_feed()
 *                                                 |  (error: abort upload, -> discard)
 *                                                 v
 *                                   last call (size 0): body_finish() --> RQ_ANSWERED
 *
 * request_completed() runs in every state: an upload still open there was
 * interrupted (client vanished, timeout) and is aborted, so nothing becomes
 * visible and the temp file goes.
 */
enum rq_state { RQ_HEADERS = 0, RQ_BODY, RQ_ANSWERED };

/* What the body of a request in RQ_BODY is for. */
enum rq_body {
	BODY_NONE = 0,
	BODY_UPLOAD,   /* stream into r->up (PUT fs, POST upload) */
	BODY_JSON,     /* collect up to max_json_body into r->json */
	BODY_DISCARD,  /* read and drop (after an error or an instant hit) */
};

/* What to do at the end of the body. */
enum rq_action {
	ACT_NONE = 0,
	ACT_PUT,        /* commit upload, answer with file metadata */
	ACT_IDUPLOAD,   /* commit upload, answer with file_id */
	ACT_INSTANT,    /* POST /api/v1/instant */
	ACT_FS_POST,    /* POST /api/v1/fs/<path>?op= (body ignored) */
	ACT_ADMIN,      /* admin call with JSON body */
	ACT_ANSWER,     /* answer prepared in first call (status + json) */
};

typedef struct hreq {
	http_srv *srv;
	int state;         /* enum rq_state */
	int deferred;      /* no body: first_call runs on the second call */
	int body;          /* enum rq_body */
	int action;        /* enum rq_action */
	int status;        /* status queued (metrics) */
	uint64_t bytes_in, bytes_out;
	uint64_t discarded;  /* body bytes dropped (BODY_DISCARD) */
	char addr[64];
	int authed;
	sd_session *sess;            /* from authentication; closed at completion */
	sd_session_info who;         /* the session's user as of authentication */
	sd_reader *rd;               /* file being sent; closed at completion */
	/* method and decoded target */
	char method[16];
	char path[SD_PATH_MAX + 1];  /* decoded user path, as given to the engine */
	char shown[SD_PATH_MAX + 1]; /* the same path resolved by the engine (answers, logs) */
	unsigned up_flags;
	int existed;                 /* PUT target existed before */
	sd_upload *up;
	char expect_sha[SD_SHA256_HEX];
	char file_id[160];           /* ACT_IDUPLOAD */
	/* pending error found while reading the body */
	int err_status;
	char err_code[32];
	char err_msg[160];
	/* ACT_ANSWER: prepared answer */
	int ans_status;
	json_t *ans_json;
	/* BODY_JSON */
	char *json;
	size_t json_len;
	int json_over;
	/* admin route (copied tail of the URL) */
	char route[256];
} hreq;

/* ------------------------------------------------------------ http.c */

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
/* Queue a prepared response, record status and body size, release it. */
enum MHD_Result sd__http_queue(struct MHD_Connection *c, hreq *r, unsigned status,
			       struct MHD_Response *resp, uint64_t body_len);
/* Decoded query argument `name` into out; 1 found, 0 absent, -EINVAL bad. */
int sd__http_arg(struct MHD_Connection *c, const char *name, char *out, size_t outlen);
/* 1 if the query argument is "1", "yes" or "true". */
int sd__http_arg_true(struct MHD_Connection *c, const char *name);
/* Map an engine error to an HTTP status and an error code word. */
unsigned sd__http_status_for(int err, const char **code);

/* -------------------------------------------------------------- fs.c */

/* Called from the first call of a request under /api/v1/fs, /api/v1/stat,
 * /api/v1/instant, /api/v1/upload, /f/. `tail` is the raw (undecoded) URL
 * part after the route prefix. May answer at once or set r into RQ_BODY. */
enum MHD_Result sd__http_fs_begin(struct MHD_Connection *c, hreq *r, const char *tail);
enum MHD_Result sd__http_stat_begin(struct MHD_Connection *c, hreq *r, const char *tail);
enum MHD_Result sd__http_instant_begin(struct MHD_Connection *c, hreq *r);
enum MHD_Result sd__http_idupload_begin(struct MHD_Connection *c, hreq *r);
/* GET /f/<id>: `authed` says whether r->user is valid. */
enum MHD_Result sd__http_fileid_get(struct MHD_Connection *c, hreq *r, const char *id);
/* Feed one body chunk of a BODY_UPLOAD request. */
void sd__http_upload_feed(hreq *r, const char *data, size_t len);
/* Finish ACT_PUT / ACT_IDUPLOAD / ACT_INSTANT / ACT_FS_POST. */
enum MHD_Result sd__http_fs_finish(struct MHD_Connection *c, hreq *r);
/* GET /api/v1/me */
enum MHD_Result sd__http_me(struct MHD_Connection *c, hreq *r);

/* ----------------------------------------------------------- admin.c */

/* First call of /api/v1/admin/<tail>. Needs r->user with SD_USER_ADMIN. */
enum MHD_Result sd__http_admin_begin(struct MHD_Connection *c, hreq *r, const char *tail);
enum MHD_Result sd__http_admin_finish(struct MHD_Connection *c, hreq *r);

/* ------------------------------------------------------------ util.c */

/* Percent-decode `in` once into out (outlen bytes incl. NUL). Refuses a bad
 * escape, a decoded NUL or backslash, and output that does not fit, with
 * -EINVAL / -ENAMETOOLONG. */
int sd__http_pct_decode(const char *in, char *out, size_t outlen);
/* 1 if the decoded path s still holds an escape for '.', '/', '\\', '%' or
 * NUL, i.e. the client encoded twice (%252e): refused, as a filter or
 * proxy in front of us may decode again. */
int sd__http_double_encoded(const char *s);
/* 1 if a ".." component of the decoded path p would climb above the root,
 * counting components the way the engine's resolver does (empty and "."
 * components vanish, ".." drops one). The path is never rewritten here:
 * a ".." that stays inside is left for the engine to resolve; one that
 * would climb out is refused, as the URL names no path of the user's
 * tree. */
int sd__http_path_climbs(const char *p);
/* RFC 7231 IMF-fixdate of t into out (>= 30 bytes). */
void sd__http_date(int64_t t, char *out, size_t outlen);
/* Parse an HTTP date; -1 if unparseable. */
int64_t sd__http_parse_date(const char *s);
/* Content type for a file name, from its extension. */
const char *sd__http_mime(const char *name);
/* Decode base64 into out; returns length or -EINVAL. Output NUL-terminated. */
int sd__http_b64decode(const char *in, char *out, size_t outlen);

#define HTTP_MAX_RANGES 16
typedef struct http_range {
	uint64_t first, last; /* inclusive */
} http_range;
/* Parse a Range header against a size. Returns the number of satisfiable
 * ranges (1..HTTP_MAX_RANGES), 0 if the header must be ignored (not
 * "bytes=" or malformed), -1 if unsatisfiable (answer 416). */
int sd__http_parse_range(const char *h, uint64_t size, http_range *out);

/* Reads up to len bytes at off of the content being sent: bytes read, 0 at
 * the end, or -errno. */
typedef ssize_t (*http_pread_fn)(void *arg, void *buf, size_t len, uint64_t off);
/* Build a multipart/byteranges response reading the content through
 * pread(arg, ...), which must stay usable while the response is sent. Sets
 * *len to the body size. NULL on error. */
struct MHD_Response *sd__http_multipart(http_pread_fn pread, void *arg, uint64_t size,
					const char *ctype,
					const http_range *rg, int n, uint64_t *len,
					char *boundary_ctype, size_t bclen);
/* Fill buf with n random bytes. */
void sd__http_random(void *buf, size_t n);

#endif
