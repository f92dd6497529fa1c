/*
 * http.c - the HTTP/REST front end: module descriptor, listener, the
 * libmicrohttpd daemon, the per-request state machine, routing, auth and
 * metrics. Endpoints live in fs.c and admin.c.
 *
 * Design notes
 *  - The listening socket is bound in init (so "port in use" fails start-up
 *    with the section named) and handed to MHD in start with
 *    MHD_OPTION_LISTEN_SOCKET; MHD closes it in MHD_stop_daemon.
 *  - MHD runs its own thread pool (`threads`); every blocking engine call
 *    (argon2 verify, hashing, fsync) runs on a pool thread.
 *  - MHD's own unescaping is replaced by the identity, so the handler sees
 *    the raw target: the path is percent-decoded exactly once here (a
 *    decoded NUL or backslash is refused), query values likewise.
 *  - Uploads are streamed: each body chunk goes straight to
 *    api->upload_write; memory per connection is bounded by conn_memory.
 *  - Credentials are checked on every request (HTTP Basic sends them
 *    each time); the engine remembers verified passwords against the
 *    stored hash, so this costs a row read, not an Argon2id verify.
 *
 * The request state machine is described in http.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "http.h"

/* ------------------------------------------------------------- config */

#define OFF(f) offsetof(http_conf, f)
static const sd_conf_item http_conf_table[] = {
    {"threads", SD_CONF_INT, OFF(threads), "8",
     "worker threads of the HTTP server (libmicrohttpd thread pool), 1-256"},
    {"max_connections", SD_CONF_INT, OFF(max_connections), "256",
     "concurrent HTTP connections; more are refused"},
    {"max_per_ip", SD_CONF_INT, OFF(max_per_ip), "32",
     "concurrent HTTP connections from one client address (0 = no limit)"},
    {"idle_timeout", SD_CONF_DURATION, OFF(idle_timeout), "60s",
     "an HTTP connection idle this long is closed"},
    {"max_header_size", SD_CONF_SIZE, OFF(max_header_size), "16K",
     "largest request line plus headers; larger requests get 431"},
    {"conn_memory", SD_CONF_SIZE, OFF(conn_memory), "48K",
     "memory per HTTP connection for headers and the receive buffer (32K-16M); most of what an idle connection costs"},
    {"tls_cert", SD_CONF_PATH, OFF(tls_cert), NULL,
     "PEM certificate chain; with tls_key, the port speaks HTTPS only"},
    {"tls_key", SD_CONF_PATH, OFF(tls_key), NULL, "PEM private key for tls_cert"},
    {"public_ids", SD_CONF_BOOL, OFF(public_ids), "no",
     "GET /f/<file_id> works without authentication"},
    {"auth_realm", SD_CONF_STR, OFF(auth_realm), "storaged",
     "realm named in WWW-Authenticate"},
    {"max_json_body", SD_CONF_SIZE, OFF(max_json_body), "64K",
     "largest JSON request body; larger get 413"},
    {"list_limit", SD_CONF_INT, OFF(list_limit), "1000",
     "default and largest page of a directory listing"},
    {NULL, 0, 0, NULL, NULL},
};

/* ----------------------------------------------------------- helpers */

unsigned sd__http_status_for(int err, const char **code)
{
	if (err < 0)
		err = -err;
	const char *c = "internal";
	unsigned s = 500;
	switch (err) {
	case ENOENT: s = 404; c = "not_found"; break;
	case EEXIST: s = 409; c = "exists"; break;
	case ENOTDIR: s = 409; c = "not_a_directory"; break;
	case EISDIR: s = 409; c = "is_a_directory"; break;
	case ENOTEMPTY: s = 409; c = "not_empty"; break;
	case EACCES: case EPERM: s = 403; c = "forbidden"; break;
	case EROFS: s = 403; c = "read_only"; break;
	case EINVAL: s = 400; c = "bad_request"; break;
	case ENAMETOOLONG: s = 400; c = "name_too_long"; break;
	case EDQUOT: s = 507; c = "quota_exceeded"; break;
	case ENOSPC: s = 507; c = "disk_full"; break;
	case EBUSY: s = 423; c = "locked"; break;
	case EFBIG: s = 413; c = "too_large"; break;
	case SD_ECHECKSUM: s = 400; c = "checksum_mismatch"; break;
	case SD_EPROOF: s = 403; c = "bad_proof"; break;
	case SD_ESENDDATA: s = 404; c = "send_data"; break;
	case SD_EAUTH: s = 401; c = "unauthorized"; break;
	case SD_EBLOCKED: s = 429; c = "blocked"; break;
	case SD_ECORRUPT: s = 500; c = "corrupt"; break;
	case EIO: s = 500; c = "io_error"; break;
	default: break;
	}
	if (code)
		*code = c;
	return s;
}

static void count_status(hreq *r)
{
	http_srv *s = r->srv;
	char labels[64];
	snprintf(labels, sizeof labels, "frontend=\"http\",status=\"%u\"",
		 r->status ? (unsigned)r->status : 0u);
	s->api->metric_add(s->core, "storaged_requests_total", labels, 1);
	if (r->bytes_in)
		s->api->metric_add(s->core, "storaged_bytes_received_total", "frontend=\"http\"",
				   (int64_t)r->bytes_in);
	if (r->bytes_out)
		s->api->metric_add(s->core, "storaged_bytes_sent_total", "frontend=\"http\"",
				   (int64_t)r->bytes_out);
}

enum MHD_Result sd__http_queue(struct MHD_Connection *c, hreq *r, unsigned status,
			       struct MHD_Response *resp, uint64_t body_len)
{
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Server", "storaged/" "http");
	r->status = (int)status;
	r->bytes_out = body_len;
	r->state = RQ_ANSWERED;
	enum MHD_Result ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

struct MHD_Response *sd__http_json_response(json_t *obj, uint64_t *len)
{
	char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
	if (obj)
		json_decref(obj);
	if (!text) {
		text = strdup("{}");
		if (!text)
			return NULL;
	}
	size_t n = strlen(text);
	/* newline for humans reading curl output */
	char *t2 = realloc(text, n + 2);
	if (t2) {
		text = t2;
		text[n++] = '\n';
		text[n] = '\0';
	}
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(n, text, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(text);
		return NULL;
	}
	MHD_add_response_header(resp, "Content-Type", "application/json");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	*len = n;
	return resp;
}

enum MHD_Result sd__http_reply_json(struct MHD_Connection *c, hreq *r, unsigned status,
				    json_t *obj)
{
	uint64_t len = 0;
	struct MHD_Response *resp = sd__http_json_response(obj, &len);
	if (!resp)
		return MHD_NO;
	if (status == 401) {
		char h[160];
		snprintf(h, sizeof h, "Basic realm=\"%s\", charset=\"UTF-8\"",
			 r->srv->conf->auth_realm ? r->srv->conf->auth_realm : "storaged");
		MHD_add_response_header(resp, "WWW-Authenticate", h);
	}
	if (status == 429)
		MHD_add_response_header(resp, "Retry-After", "5");
	return sd__http_queue(c, r, status, resp, len);
}

enum MHD_Result sd__http_reply_error(struct MHD_Connection *c, hreq *r, unsigned status,
				     const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	json_t *o = json_pack("{s:s, s:s}", "error", code, "message", msg);
	if (status >= 500)
		r->srv->api->log(r->srv->core, SD_LOG_WARN, HTTP_SRC,
				 "event=error status=%u code=%s user=%s msg=\"%s\"", status, code,
				 r->authed ? r->who.user : "-", msg);
	return sd__http_reply_json(c, r, status, o);
}

enum MHD_Result sd__http_reply_errno(struct MHD_Connection *c, hreq *r, int err)
{
	const char *code;
	unsigned st = sd__http_status_for(err, &code);
	return sd__http_reply_error(c, r, st, code, "%s", r->srv->api->strerror(err));
}

int sd__http_arg(struct MHD_Connection *c, const char *name, char *out, size_t outlen)
{
	const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
	if (!v)
		return 0;
	int rc = sd__http_pct_decode(v, out, outlen);
	return rc < 0 ? -EINVAL : 1;
}

int sd__http_arg_true(struct MHD_Connection *c, const char *name)
{
	char v[16];
	if (sd__http_arg(c, name, v, sizeof v) != 1)
		return 0;
	return strcmp(v, "1") == 0 || strcasecmp(v, "yes") == 0 || strcasecmp(v, "true") == 0;
}

/* MHD's unescaper replaced by the identity (see notes above). */
static size_t unescape_none(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls;
	(void)c;
	return strlen(s);
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
	http_srv *s = cls;
	char msg[512];
	vsnprintf(msg, sizeof msg, fmt, ap);
	size_t n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	for (char *p = msg; *p; p++)
		if (*p == '"')
			*p = '\'';
	s->api->log(s->core, SD_LOG_WARN, HTTP_SRC, "event=mhd msg=\"%s\"", msg);
}

static void client_addr(struct MHD_Connection *c, char *out, size_t outlen)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	snprintf(out, outlen, "unknown");
	if (!ci || !ci->client_addr)
		return;
	const struct sockaddr *sa = ci->client_addr;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out,
			  (socklen_t)outlen);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out,
			  (socklen_t)outlen);
}

/* ------------------------------------------------------------- auth */

/* Authenticate the request from its Authorization header. 0 with r->sess
 * (a new session, closed in request_completed) and r->who set, or an error
 * answer was queued (*ret set) and a negative value. */
static int authenticate(struct MHD_Connection *c, hreq *r, enum MHD_Result *ret)
{
	http_srv *s = r->srv;
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (!h) {
		*ret = sd__http_reply_error(c, r, 401, "unauthorized", "authentication required");
		return -1;
	}
	while (*h == ' ')
		h++;
	char user[SD_USERNAME_MAX + 1] = "", secret[1024];
	int bearer = 0;
	if (strncasecmp(h, "Basic ", 6) == 0) {
		char dec[1200];
		const char *b = h + 6;
		while (*b == ' ')
			b++;
		if (strlen(b) > 1500 || sd__http_b64decode(b, dec, sizeof dec) < 0 ||
		    !strchr(dec, ':')) {
			*ret = sd__http_reply_error(c, r, 401, "unauthorized", "malformed Basic credentials");
			return -1;
		}
		char *colon = strchr(dec, ':');
		*colon = '\0';
		if (strlen(dec) > SD_USERNAME_MAX || strlen(colon + 1) >= sizeof secret) {
			*ret = sd__http_reply_error(c, r, 401, "unauthorized", "bad credentials");
			return -1;
		}
		snprintf(user, sizeof user, "%s", dec);
		snprintf(secret, sizeof secret, "%s", colon + 1);
		memset(dec, 0, sizeof dec);
	} else if (strncasecmp(h, "Bearer ", 7) == 0) {
		const char *t = h + 7;
		while (*t == ' ')
			t++;
		if (strlen(t) >= sizeof secret || !*t) {
			*ret = sd__http_reply_error(c, r, 401, "unauthorized", "bad credentials");
			return -1;
		}
		snprintf(secret, sizeof secret, "%s", t);
		bearer = 1;
	} else {
		*ret = sd__http_reply_error(c, r, 401, "unauthorized",
					    "unsupported authorization scheme (use Basic or Bearer)");
		return -1;
	}
	/* Every request is checked against the database by the engine; it
	 * makes a repeated password check cheap without ever keeping a
	 * changed password or a revoked token valid. */
	sd_session *sess = NULL;
	int rc = bearer ? s->api->auth_token(s->core, secret, r->addr, "http", &sess)
			: s->api->auth_password(s->core, user, secret, r->addr, "http", &sess);
	memset(secret, 0, sizeof secret);
	if (rc == -SD_EBLOCKED) {
		s->api->metric_add(s->core, "storaged_auth_failures_total",
				   "frontend=\"http\",reason=\"blocked\"", 1);
		*ret = sd__http_reply_error(c, r, 429, "blocked",
					    "too many failed logins from this address; try later");
		return -1;
	}
	if (rc != 0) {
		s->api->metric_add(s->core, "storaged_auth_failures_total",
				   "frontend=\"http\",reason=\"credentials\"", 1);
		s->api->log(s->core, SD_LOG_INFO, HTTP_SRC, "event=auth_failed user=%s addr=%s",
			    bearer ? "(token)" : user, r->addr);
		if (rc == -SD_EAUTH || rc == -ENOENT || rc == -EACCES || rc == -EPERM)
			*ret = sd__http_reply_error(c, r, 401, "unauthorized", "bad credentials");
		else
			*ret = sd__http_reply_errno(c, r, rc);
		return -1;
	}
	r->sess = sess;
	if ((rc = s->api->session_info(sess, &r->who)) < 0) {
		*ret = sd__http_reply_error(c, r, 401, "unauthorized", "bad credentials");
		return -1;
	}
	r->authed = 1;
	return 0;
}

/* ---------------------------------------------------------- dispatch */

static int is_write_method(const char *m)
{
	return strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0 && strcmp(m, "OPTIONS") != 0;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, hreq *r, unsigned status,
				  const char *ctype, char *text, size_t len)
{
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", ctype);
	return sd__http_queue(c, r, status, resp, len);
}

/* Total bytes of request line and headers, for max_header_size. */
struct hsize {
	size_t n;
};
static enum MHD_Result add_header_size(void *cls, enum MHD_ValueKind kind, const char *key,
				       const char *value)
{
	(void)kind;
	struct hsize *h = cls;
	h->n += strlen(key) + (value ? strlen(value) : 0) + 4;
	return MHD_YES;
}

static enum MHD_Result first_call(struct MHD_Connection *c, hreq *r, const char *url,
				  const char *method)
{
	http_srv *s = r->srv;
	enum MHD_Result ret;
	snprintf(r->method, sizeof r->method, "%s", method);
	client_addr(c, r->addr, sizeof r->addr);

	struct hsize hs = {strlen(url) + strlen(method) + 16};
	MHD_get_connection_values(c, MHD_HEADER_KIND, add_header_size, &hs);
	if ((int64_t)hs.n > s->conf->max_header_size)
		return sd__http_reply_error(c, r, 431, "headers_too_large",
					    "request headers exceed %lld bytes",
					    (long long)s->conf->max_header_size);

	int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;

	if (strcmp(url, "/healthz") == 0) {
		if (!get)
			return sd__http_reply_error(c, r, 405, "method_not_allowed", "use GET");
		return sd__http_reply_json(c, r, 200, json_pack("{s:s}", "status", "ok"));
	}
	if (strcmp(url, "/metrics") == 0) {
		if (!get)
			return sd__http_reply_error(c, r, 405, "method_not_allowed", "use GET");
		char *m = s->api->metrics_render(s->core);
		if (!m)
			return sd__http_reply_error(c, r, 500, "internal", "metrics unavailable");
		char *copy = strdup(m);
		s->api->free(m);
		if (!copy)
			return MHD_NO;
		return reply_text(c, r, 200, "text/plain; version=0.0.4; charset=utf-8", copy,
				  strlen(copy));
	}
	if (strncmp(url, "/f/", 3) == 0) {
		if (!get)
			return sd__http_reply_error(c, r, 405, "method_not_allowed", "use GET");
		if (!s->conf->public_ids && authenticate(c, r, &ret) < 0)
			return ret;
		return sd__http_fileid_get(c, r, url + 3);
	}
	if (strncmp(url, "/api/", 5) != 0)
		return sd__http_reply_error(c, r, 404, "not_found", "no such endpoint");

	if (authenticate(c, r, &ret) < 0)
		return ret;
	if ((r->who.flags & SD_USER_READONLY) && is_write_method(method))
		return sd__http_reply_error(c, r, 403, "read_only",
					    "this credential is read-only");

	if (strcmp(url, "/api/v1/fs") == 0)
		return sd__http_fs_begin(c, r, "");
	if (strncmp(url, "/api/v1/fs/", 11) == 0)
		return sd__http_fs_begin(c, r, url + 11);
	if (strcmp(url, "/api/v1/stat") == 0)
		return sd__http_stat_begin(c, r, "");
	if (strncmp(url, "/api/v1/stat/", 13) == 0)
		return sd__http_stat_begin(c, r, url + 13);
	if (strcmp(url, "/api/v1/instant") == 0)
		return sd__http_instant_begin(c, r);
	if (strcmp(url, "/api/v1/upload") == 0)
		return sd__http_idupload_begin(c, r);
	if (strcmp(url, "/api/v1/me") == 0)
		return sd__http_me(c, r);
	if (strncmp(url, "/api/v1/admin/", 14) == 0)
		return sd__http_admin_begin(c, r, url + 14);
	return sd__http_reply_error(c, r, 404, "not_found", "no such endpoint");
}

static void json_feed(hreq *r, const char *data, size_t len)
{
	size_t cap = (size_t)r->srv->conf->max_json_body;
	if (r->json_over || r->json_len + len > cap) {
		r->json_over = 1;
		return;
	}
	if (!r->json) {
		r->json = malloc(cap + 1);
		if (!r->json) {
			r->json_over = 1;
			return;
		}
	}
	memcpy(r->json + r->json_len, data, len);
	r->json_len += len;
	r->json[r->json_len] = '\0';
}

/* Does the request carry a body (Content-Length > 0 or chunked)? */
static int request_has_body(struct MHD_Connection *c)
{
	const char *te = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_TRANSFER_ENCODING);
	if (te)
		return 1;
	const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (!cl)
		return 0;
	while (*cl == ' ' || *cl == '0')
		cl++;
	return *cl != '\0';
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	(void)version;
	http_srv *s = cls;
	hreq *r = *con_cls;
	if (!r) {
		r = calloc(1, sizeof *r);
		if (!r)
			return MHD_NO;
		r->srv = s;
		*con_cls = r;
		/* Without a body, answer from the next call: a response queued
		 * in the first call makes libmicrohttpd close the connection
		 * (it cannot know the request is complete), losing keep-alive.
		 * With a body, the first call is where we may refuse (or answer
		 * an instant upload) before "100 Continue". */
		if (!request_has_body(c)) {
			r->deferred = 1;
			return MHD_YES;
		}
		return first_call(c, r, url, method);
	}
	if (r->deferred) {
		r->deferred = 0;
		enum MHD_Result ret = first_call(c, r, url, method);
		if (r->state != RQ_BODY)
			return ret;
		/* wants a body but has none (PUT of an empty file): finish now */
		*upload_data_size = 0;
	} else if (r->state == RQ_ANSWERED) {
		/* Answered early (instant hit, error): drop any body. */
		r->bytes_in += *upload_data_size;
		*upload_data_size = 0;
		return MHD_YES;
	} else if (*upload_data_size) {
		size_t n = *upload_data_size;
		r->bytes_in += n;
		switch (r->body) {
		case BODY_UPLOAD:
			sd__http_upload_feed(r, upload_data, n);
			break;
		case BODY_JSON:
			json_feed(r, upload_data, n);
			break;
		default:
			/* After an error libmicrohttpd 0.9.75 cannot queue the
			 * answer until the body is read (MHD_queue_response fails
			 * mid-body): read and drop it, but not without bound. */
			r->discarded += n;
			if (r->err_status && r->discarded > HTTP_MAX_DISCARD) {
				s->api->log(s->core, SD_LOG_INFO, HTTP_SRC,
					    "event=closed reason=\"body after error too long\" user=%s "
					    "status=%d", r->who.user, r->err_status);
				r->status = r->err_status;
				return MHD_NO;
			}
			break;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	/* last call: the whole body has arrived */
	if (r->err_status)
		return sd__http_reply_error(c, r, (unsigned)r->err_status, r->err_code, "%s",
					    r->err_msg);
	if (r->json_over)
		return sd__http_reply_error(c, r, 413, "too_large",
					    "JSON body larger than %lld bytes",
					    (long long)s->conf->max_json_body);
	switch (r->action) {
	case ACT_ADMIN:
		return sd__http_admin_finish(c, r);
	case ACT_ANSWER: {
		json_t *j = r->ans_json;
		r->ans_json = NULL;
		return sd__http_reply_json(c, r, (unsigned)r->ans_status, j);
	}
	case ACT_NONE:
		return sd__http_reply_error(c, r, 500, "internal", "request lost its way");
	default:
		return sd__http_fs_finish(c, r);
	}
}

static void request_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			      enum MHD_RequestTerminationCode toe)
{
	(void)c;
	http_srv *s = cls;
	hreq *r = *con_cls;
	if (!r)
		return;
	if (r->up) {
		s->api->log(s->core, SD_LOG_INFO, HTTP_SRC,
			    "event=upload_aborted user=%s path=%s bytes=%llu reason=%d",
			    r->who.user, r->shown, (unsigned long long)r->bytes_in, (int)toe);
		s->api->upload_abort(r->up);
		r->up = NULL;
		s->api->metric_add(s->core, "storaged_uploads_aborted_total", "frontend=\"http\"", 1);
	}
	/* the response has been sent or dropped: nothing reads the file now */
	s->api->reader_close(r->rd);
	r->rd = NULL;
	s->api->session_close(r->sess);
	r->sess = NULL;
	if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && r->state != RQ_ANSWERED)
		r->status = 0;
	count_status(r);
	if (r->ans_json)
		json_decref(r->ans_json);
	free(r->json);
	free(r);
	*con_cls = NULL;
}

static void notify_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			      enum MHD_ConnectionNotificationCode toe)
{
	(void)c;
	(void)socket_context;
	http_srv *s = cls;
	long n;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
		n = atomic_fetch_add(&s->open_conns, 1) + 1;
	else
		n = atomic_fetch_sub(&s->open_conns, 1) - 1;
	s->api->metric_set(s->core, "storaged_connections", "frontend=\"http\"", n);
}

/* ---------------------------------------------------------- lifecycle */

static int read_pem(http_srv *s, const char *path, char **out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		s->api->log(s->core, SD_LOG_ERROR, HTTP_SRC, "event=tls_error file=%s err=\"%s\"",
			    path, strerror(e));
		return -e;
	}
	size_t cap = 1 << 20, len = 0;
	char *buf = malloc(cap + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			free(buf);
			close(fd);
			return -e;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == cap) {
			free(buf);
			close(fd);
			s->api->log(s->core, SD_LOG_ERROR, HTTP_SRC,
				    "event=tls_error file=%s err=\"larger than 1 MiB\"", path);
			return -EFBIG;
		}
	}
	close(fd);
	buf[len] = '\0';
	*out = buf;
	return 0;
}

static int bind_listener(http_srv *s)
{
	const sd_module_conf *mc = s->mc;
	char port[16];
	snprintf(port, sizeof port, "%d", mc->listen_port);
	struct addrinfo hints = {0}, *ai = NULL;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	const char *host = mc->listen_host && *mc->listen_host ? mc->listen_host : NULL;
	int rc = getaddrinfo(host, port, &hints, &ai);
	if (rc != 0) {
		s->api->log(s->core, SD_LOG_ERROR, HTTP_SRC,
			    "event=listen_error section=%s host=%s err=\"%s\"", mc->section,
			    host ? host : "*", gai_strerror(rc));
		return -SD_ECONFIG;
	}
	int err = -EADDRNOTAVAIL;
	for (struct addrinfo *a = ai; a; a = a->ai_next) {
		int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0) {
			err = -errno;
			continue;
		}
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 256) == 0) {
			s->listen_fd = fd;
			freeaddrinfo(ai);
			return 0;
		}
		err = -errno;
		close(fd);
	}
	freeaddrinfo(ai);
	s->api->log(s->core, SD_LOG_ERROR, HTTP_SRC,
		    "event=listen_error section=%s addr=%s:%d err=\"%s\"", mc->section,
		    host ? host : "*", mc->listen_port, strerror(-err));
	return err;
}

static void http_destroy(void *state);

static int http_init(const sd_core_api *api, sd_core *core, const sd_module_conf *mc,
		     void *conf, void **state)
{
	http_conf *cf = conf;
	if (!api || api->version != SD_CORE_API_VERSION || api->size < sizeof(sd_core_api))
		return -SD_ECONFIG;
	const char *bad = NULL;
	if (cf->threads < 1 || cf->threads > 256)
		bad = "threads must be 1-256";
	else if (cf->max_connections < 1 || cf->max_connections > 1000000)
		bad = "max_connections must be 1-1000000";
	else if (cf->max_connections < cf->threads)
		bad = "max_connections must be at least threads (each thread serves its share)";
	else if (cf->max_per_ip < 0 || cf->max_per_ip > 1000000)
		bad = "max_per_ip must be 0-1000000";
	else if (cf->idle_timeout < 1000)
		bad = "idle_timeout must be at least 1s";
	else if (cf->conn_memory < 32 * 1024 || cf->conn_memory > 16 * 1024 * 1024)
		bad = "conn_memory must be 32K-16M";
	else if (cf->max_header_size < 1024 || cf->max_header_size > cf->conn_memory / 2)
		bad = "max_header_size must be at least 1K and at most half of conn_memory";
	else if (cf->max_json_body < 1024 || cf->max_json_body > 16 * 1024 * 1024)
		bad = "max_json_body must be 1K-16M";
	else if (cf->list_limit < 1 || cf->list_limit > 100000)
		bad = "list_limit must be 1-100000";
	else if ((cf->tls_cert && *cf->tls_cert) != (cf->tls_key && *cf->tls_key))
		bad = "tls_cert and tls_key must be set together";
	if (bad) {
		api->log(core, SD_LOG_ERROR, HTTP_SRC, "event=config_error section=%s err=\"%s\"",
			 mc->section, bad);
		return -SD_ECONFIG;
	}
	http_srv *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	s->api = api;
	s->core = core;
	s->mc = mc;
	s->conf = cf;
	s->listen_fd = -1;
	*state = s;
	int rc;
	if (cf->tls_cert && *cf->tls_cert) {
		if ((rc = read_pem(s, cf->tls_cert, &s->tls_cert_pem)) < 0 ||
		    (rc = read_pem(s, cf->tls_key, &s->tls_key_pem)) < 0)
			return rc;
		if (!(MHD_is_feature_supported(MHD_FEATURE_TLS) == MHD_YES)) {
			api->log(core, SD_LOG_ERROR, HTTP_SRC,
				 "event=config_error section=%s err=\"libmicrohttpd lacks TLS\"",
				 mc->section);
			return -SD_ECONFIG;
		}
	}
	if ((rc = bind_listener(s)) < 0)
		return rc;
	return 0;
}

static int http_start(void *state)
{
	http_srv *s = state;
	http_conf *cf = s->conf;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
	int tls = s->tls_cert_pem != NULL;
	if (tls)
		flags |= MHD_USE_TLS;
	struct MHD_OptionItem opts[32];
	int n = 0;
#define OPT(o, v, p) opts[n++] = (struct MHD_OptionItem){(o), (intptr_t)(v), (p)}
	OPT(MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_logger, s); /* first, or MHD warns */
	OPT(MHD_OPTION_LISTEN_SOCKET, s->listen_fd, NULL);
	if (cf->threads > 1)
		OPT(MHD_OPTION_THREAD_POOL_SIZE, cf->threads, NULL);
	OPT(MHD_OPTION_CONNECTION_LIMIT, cf->max_connections, NULL);
	if (cf->max_per_ip > 0)
		OPT(MHD_OPTION_PER_IP_CONNECTION_LIMIT, cf->max_per_ip, NULL);
	OPT(MHD_OPTION_CONNECTION_TIMEOUT, (cf->idle_timeout + 999) / 1000, NULL);
	OPT(MHD_OPTION_CONNECTION_MEMORY_LIMIT, cf->conn_memory, NULL);
	OPT(MHD_OPTION_CONNECTION_MEMORY_INCREMENT, 4096, NULL);
	OPT(MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)request_completed, s);
	OPT(MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)notify_connection, s);
	OPT(MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)unescape_none, s);
	if (tls) {
		OPT(MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key_pem);
		OPT(MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert_pem);
	}
	OPT(MHD_OPTION_END, 0, NULL);
#undef OPT
	s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_ARRAY, opts,
				     MHD_OPTION_END);
	if (!s->daemon) {
		s->api->log(s->core, SD_LOG_ERROR, HTTP_SRC,
			    "event=start_error section=%s err=\"libmicrohttpd refused to start\"",
			    s->mc->section);
		return -EIO;
	}
	s->listen_fd = -1; /* MHD owns and closes it now */
	s->api->log(s->core, SD_LOG_INFO, HTTP_SRC,
		    "event=listening section=%s addr=%s port=%d tls=%s threads=%lld",
		    s->mc->section, s->mc->listen_host ? s->mc->listen_host : "*",
		    s->mc->listen_port, tls ? "yes" : "no", (long long)cf->threads);
	return 0;
}

static void http_stop(void *state)
{
	http_srv *s = state;
	if (s && s->daemon) {
		MHD_stop_daemon(s->daemon);
		s->daemon = NULL;
	}
}

static void http_destroy(void *state)
{
	http_srv *s = state;
	if (!s)
		return;
	http_stop(s);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->tls_key_pem) {
		memset(s->tls_key_pem, 0, strlen(s->tls_key_pem));
		free(s->tls_key_pem);
	}
	free(s->tls_cert_pem);
	free(s);
}

const sd_module storaged_module = {
    .abi = SD_MODULE_ABI,
    .signature = SD_MODULE_SIGNATURE,
    .name = "http",
    .description = "HTTP/REST front end (libmicrohttpd)",
    .conf_table = http_conf_table,
    .conf_size = sizeof(http_conf),
    .init = http_init,
    .start = http_start,
    .stop = http_stop,
    .destroy = http_destroy,
};
