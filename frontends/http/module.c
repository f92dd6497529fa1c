/*
 * module.c - the HTTP/REST front end as a storaged module: descriptor,
 * config, listener, the libmicrohttpd daemon, and the per-request state
 * machine (http.h) with body intake and completion. What a request means
 * is decided in routes.c and the handler files; this file only moves it
 * through its states.
 *
 * Design notes
 *  - The listening socket is bound in init with sd_tcp_listen (so "port in
 *    use" fails start-up with the section named). MHD does not listen: our
 *    acceptor thread accepts every connection and hands it over with
 *    MHD_add_connection, or, when max_connections are open, answers 503 at
 *    once (HTTPS: closes it). MHD left alone stops accepting at its limit and
 *    the extra clients hang in the listen queue until they time out. MHD
 *    keeps enforcing the connection limit (a backstop), the per-address
 *    limit, the idle timeout and the per-connection memory limit.
 *  - Request framing (RFC 9112 section 6.3): Content-Length values that
 *    disagree, or Content-Length together with Transfer-Encoding, answer
 *    400 and close the connection: a proxy in front may frame the body
 *    differently (request smuggling).
 *  - MHD runs its own thread pool (`threads`); every blocking engine call
 *    (argon2 verify, hashing, fsync) runs on a pool thread. With a
 *    bandwidth_limit it runs a thread per connection instead, so that a
 *    request over its user's budget can sleep (throttle.c).
 *  - MHD's own unescaping is replaced by the identity, so the handlers see
 *    the raw target and decode it exactly once (args.c).
 *  - Uploads are streamed: each body chunk goes straight to
 *    api->upload_write (or, for a handle write, to the handler's feed and
 *    api->handle_pwrite); memory per connection is bounded by conn_memory.
 *
 * Invariants:
 *  1. request_completed runs for every request that reached on_request and
 *     releases all it holds: an upload not committed is aborted, then the
 *     reader and the session are closed, in that order, then the body
 *     feeder's state is freed. (A handle is not released: it outlives
 *     requests by design; what a cut-off write gave it stays unsaved.)
 *  2. A JSON body never grows past max_json_body: the rest is counted and
 *     dropped, and the request answered 413.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dav.h"
#include "http.h"
#include "sys.h"

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
    {"metrics", SD_CONF_STR, OFF(metrics), "token",
     "who may GET /metrics: open (anyone who reaches the port), token (an admin's credentials: Bearer token or Basic), off (404)"},
    {"dav", SD_CONF_BOOL, OFF(dav), "yes", "serve WebDAV (docs/webdav.md) under dav_prefix"},
    {"dav_prefix", SD_CONF_STR, OFF(dav_prefix), "/dav/",
     "URL path of the WebDAV space: /name/ (one or more segments), not /api/, /f/, /healthz or /metrics"},
    {"dav_max_xml_body", SD_CONF_SIZE, OFF(dav_max_xml_body), "1M",
     "largest XML body of a WebDAV PROPFIND, PROPPATCH or LOCK (4K-16M); larger get 413"},
    {"dav_depth_infinity", SD_CONF_INT, OFF(dav_depth_infinity), "0",
     "PROPFIND with Depth: infinity answers trees of up to this many entries (0-100000); 0 refuses it (403 propfind-finite-depth)"},
    {"dav_lock_timeout", SD_CONF_DURATION, OFF(dav_lock_timeout), "10m",
     "WebDAV lock timeout granted when the client asks for none or for Infinite"},
    {"dav_lock_max_timeout", SD_CONF_DURATION, OFF(dav_lock_max_timeout), "1h",
     "the longest WebDAV lock timeout granted (1s-7d); longer requests get this"},
    {"cors_origins", SD_CONF_STR, OFF(cors_origins), "",
     "Origins (scheme://host[:port], comma-separated, or *) whose web pages may call the API from a browser (CORS: preflights answered, Access-Control-Allow-Origin on answers), e.g. for tus-js-client or Uppy; empty: none."},
    {"bandwidth_limit", SD_CONF_SIZE, OFF(bandwidth_limit), "0",
     "Bytes per second per user over all the user's HTTP uploads and downloads together; 0 = unlimited. When set, each connection is served by a thread of its own (threads is not used)."},
    {"web_client", SD_CONF_BOOL, OFF(web_client), "yes",
     "serve the web client (docs/web-client.md) at / from web_root"},
    {"web_root", SD_CONF_PATH, OFF(web_root), SD_DATA_DIR "/web",
     "folder of the web client's files (read once at start; missing: no web client, with a warning)"},
    {"session_idle", SD_CONF_DURATION, OFF(session_idle), "30m",
     "a web client session unused this long ends (its cookie stops working)"},
    {"session_max", SD_CONF_DURATION, OFF(session_max), "12h",
     "longest life of a web client session, however busy"},
    {NULL, 0, 0, NULL, NULL},
};

/* ------------------------------------------------------------ metrics */

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

/* ------------------------------------------------------ MHD callbacks */

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
	sd_buf msg = SD_BUF_INIT;
	sd_buf_vprintf(&msg, fmt, ap);
	while (msg.len && (msg.data[msg.len - 1] == '\n' || msg.data[msg.len - 1] == '\r'))
		msg.data[--msg.len] = '\0';
	for (size_t i = 0; i < msg.len; i++)
		if (msg.data[i] == '"' || (unsigned char)msg.data[i] < 0x20)
			msg.data[i] = '\'';
	s->api->log(s->core, SD_LOG_WARN, HTTP_SRC, "event=mhd msg=\"%s\"", msg.data ? msg.data : "");
	sd_buf_free(&msg);
}

static void client_addr(struct MHD_Connection *c, char out[SD_ADDR_MAX])
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	struct sockaddr_storage ss = {0};
	if (ci && ci->client_addr) {
		const struct sockaddr *sa = ci->client_addr;
		if (sa->sa_family == AF_INET)
			memcpy(&ss, sa, sizeof(struct sockaddr_in));
		else if (sa->sa_family == AF_INET6)
			memcpy(&ss, sa, sizeof(struct sockaddr_in6));
	}
	sd_addr_text(&ss, out, SD_ADDR_MAX);
	if (!out[0])
		snprintf(out, SD_ADDR_MAX, "unknown");
}

/* ------------------------------------------------------- body intake */

static void json_feed(hreq *r, const char *data, size_t len)
{
	size_t cap = (size_t)r->srv->conf->max_json_body;
	if (r->json_over || len > cap - r->json.len) {
		r->json_over = 1;
		return;
	}
	sd_buf_append(&r->json, data, len);
}

/* Feed one chunk to the upload; on failure abort it and keep the error
 * for the answer once the body has been read (and dropped). */
static void upload_feed(hreq *r, const char *data, size_t len)
{
	http_srv *s = r->srv;
	if (!r->up)
		return;
	int rc = s->api->upload_write(r->up, data, len);
	if (rc < 0) {
		s->api->upload_abort(r->up);
		r->up = NULL;
		r->body = BODY_DISCARD;
		const char *code;
		r->err_status = (int)sd__http_status_for(rc, &code);
		snprintf(r->err_code, sizeof r->err_code, "%s", code);
		snprintf(r->err_msg, sizeof r->err_msg, "%s", s->api->strerror(rc));
	}
}

int sd__http_has_body(struct MHD_Connection *c)
{
	if (sd__http_hdr(c, MHD_HTTP_HEADER_TRANSFER_ENCODING))
		return 1;
	const char *cl = sd__http_hdr(c, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (!cl)
		return 0;
	while (*cl == ' ' || *cl == '0')
		cl++;
	return *cl != '\0';
}

/* Request framing check (see the notes at the top): every Content-Length
 * header (and every element of a comma list) must carry the same decimal
 * value, and Transfer-Encoding excludes Content-Length. */
typedef struct framing {
	int n_cl, n_te, bad;
	uint64_t cl;
} framing;

static enum MHD_Result framing_hdr(void *cls, enum MHD_ValueKind kind, const char *key,
				   const char *value)
{
	(void)kind;
	framing *f = cls;
	if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
		f->n_te++;
		return MHD_YES;
	}
	if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) != 0)
		return MHD_YES;
	const char *p = value ? value : "";
	do {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p < '0' || *p > '9') {
			f->bad = 1;
			return MHD_YES;
		}
		uint64_t v = 0;
		while (*p >= '0' && *p <= '9') {
			if (v > (UINT64_MAX - 9) / 10) {
				f->bad = 1;
				return MHD_YES;
			}
			v = v * 10 + (uint64_t)(*p++ - '0');
		}
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p && *p != ',') {
			f->bad = 1;
			return MHD_YES;
		}
		if (f->n_cl++ && v != f->cl)
			f->bad = 1;
		f->cl = v;
	} while (*p);
	return MHD_YES;
}

/* Why the request's framing is refused, or NULL. */
static const char *framing_error(struct MHD_Connection *c)
{
	framing f = {0};
	MHD_get_connection_values(c, MHD_HEADER_KIND, framing_hdr, &f);
	if (f.bad)
		return "conflicting or malformed Content-Length headers";
	if (f.n_cl && f.n_te)
		return "Content-Length together with Transfer-Encoding";
	return NULL;
}

static enum MHD_Result first_call(struct MHD_Connection *c, hreq *r, const char *url,
				  const char *method)
{
	client_addr(c, r->addr);
	return sd__http_dispatch(c, r, url, method);
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
		r = sd_xcalloc(1, sizeof *r);
		r->srv = s;
		*con_cls = r;
		sd__http_access_begin(r, url, method);
		const char *why = framing_error(c);
		if (why) {
			client_addr(c, r->addr);
			s->api->log(s->core, SD_LOG_INFO, HTTP_SRC,
				    "event=bad_framing addr=%s msg=\"%s\"", r->addr, why);
			/* answered in the first call: MHD closes the connection */
			return sd__http_reply_error(c, r, 400, "bad_request", "%s", why);
		}
		/* Without a body, answer from the next call: a response queued
		 * in the first call makes libmicrohttpd close the connection
		 * (it cannot know the request is complete), losing keep-alive.
		 * With a body, the first call is where we may refuse (or answer
		 * an instant upload) before "100 Continue". */
		if (!sd__http_has_body(c)) {
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
			upload_feed(r, upload_data, n);
			break;
		case BODY_JSON:
			json_feed(r, upload_data, n);
			break;
		case BODY_FEED:
			if (r->feed(r, upload_data, n) < 0)
				r->body = BODY_DISCARD; /* the feeder kept the error */
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
		sd__http_throttle(r, n); /* bandwidth_limit (throttle.c) */
		return MHD_YES;
	}
	/* last call: the whole body has arrived */
	if (r->err_status && !(r->finish_on_error && r->finish))
		return sd__http_reply_error(c, r, (unsigned)r->err_status, r->err_code, "%s",
					    r->err_msg);
	if (r->json_over)
		return sd__http_reply_error(c, r, 413, "too_large",
					    "JSON body larger than %lld bytes",
					    (long long)s->conf->max_json_body);
	if (!r->finish)
		return sd__http_reply_error(c, r, 500, "internal", "request lost its way");
	return r->finish(c, r);
}

static void request_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			      enum MHD_RequestTerminationCode toe)
{
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
	if (r->body_state_free)
		r->body_state_free(r->body_state);
	r->body_state = NULL;
	if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && r->state != RQ_ANSWERED)
		r->status = 0;
	count_status(r);
	sd__http_access_end(c, r, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
	sd__http_throttle_release(r);
	sd_buf_free(&r->json);
	sd_buf_free(&r->path);
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

#define PEM_MAX (1 << 20)

/* The whole PEM file at path into *out (malloc'd text). 0 or -errno. */
static int read_pem(http_srv *s, const char *path, char **out)
{
	int fd = sd_sys_open(path, O_RDONLY, 0);
	if (fd < 0) {
		s->api->log(s->core, SD_LOG_ERROR, HTTP_SRC, "event=tls_error file=%s err=\"%s\"",
			    path, s->api->strerror(fd));
		return fd;
	}
	sd_buf b = SD_BUF_INIT;
	int rc = sd_buf_read_fd(&b, fd, PEM_MAX);
	if (rc == -EFBIG)
		s->api->log(s->core, SD_LOG_ERROR, HTTP_SRC,
			    "event=tls_error file=%s err=\"larger than 1 MiB\"", path);
	sd_sys_close(fd);
	if (rc < 0) {
		if (b.data)
			memset(b.data, 0, b.cap);
		sd_buf_free(&b);
		return rc;
	}
	*out = sd_buf_steal(&b);
	return 0;
}

static int bind_listener(http_srv *s)
{
	const sd_module_conf *mc = s->mc;
	char err[256];
	int fd = sd_tcp_listen(mc->listen_host, mc->listen_port, 256, 1, err, sizeof err);
	if (fd < 0) {
		s->api->log(s->core, SD_LOG_ERROR, HTTP_SRC,
			    "event=listen_error section=%s err=\"%s\"", mc->section, err);
		return fd == -EINVAL ? -SD_ECONFIG : fd;
	}
	s->listen_fd = fd;
	return 0;
}

static int http_init(const sd_core_api *api, sd_core *core, const sd_module_conf *mc,
		     void *conf, void **state)
{
	http_conf *cf = conf;
	if (!api || api->version != SD_CORE_API_VERSION || api->size < sizeof(sd_core_api))
		return -SD_ECONFIG;
	if (!api->handle_info) { /* added in a spare slot: an older engine lacks it */
		api->log(core, SD_LOG_ERROR, HTTP_SRC,
			 "event=config_error section=%s err=\"the engine lacks handle_info\"",
			 mc->section);
		return -SD_ECONFIG;
	}
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
	else if (cf->bandwidth_limit < 0)
		bad = "bandwidth_limit must not be negative";
	else if ((cf->tls_cert && *cf->tls_cert) != (cf->tls_key && *cf->tls_key))
		bad = "tls_cert and tls_key must be set together";
	else if (!cf->metrics || (strcmp(cf->metrics, "open") != 0 && strcmp(cf->metrics, "token") != 0 &&
				  strcmp(cf->metrics, "off") != 0))
		bad = "metrics must be open, token or off";
	else
		bad = sd__dav_check_conf(cf);
	if (bad) {
		api->log(core, SD_LOG_ERROR, HTTP_SRC, "event=config_error section=%s err=\"%s\"",
			 mc->section, bad);
		return -SD_ECONFIG;
	}
	http_srv *s = sd_xcalloc(1, sizeof *s);
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
	if ((rc = sd__http_handles_init(s)) < 0) {
		api->log(core, SD_LOG_ERROR, HTTP_SRC,
			 "event=init_error section=%s err=\"no randomness for handle ids: %s\"",
			 mc->section, api->strerror(rc));
		return rc;
	}
	s->throttle = sd__http_throttle_new(cf->bandwidth_limit, (int)cf->max_connections);
	if ((rc = sd__http_web_init(s)) < 0)
		return rc;
	if ((rc = bind_listener(s)) < 0)
		return rc;
	return 0;
}

/* ------------------------------------------------------- the acceptor */

/* Over max_connections: a plain HTTP client gets a 503 it can read, an
 * HTTPS one a closed socket (no TLS session for a refusal). Whatever the
 * client already sent is read first so that the close is a FIN, not a
 * reset that could destroy the answer in flight. */
static void refuse_busy(http_srv *s, int fd, const char *addr)
{
	static const char busy[] =
	    "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\n"
	    "Content-Type: application/json\r\nContent-Length: 68\r\n\r\n"
	    "{\"error\":\"busy\",\"message\":\"too many connections, try again later\"}\n";
	char junk[4096];
	for (int i = 0; i < 4 && recv(fd, junk, sizeof junk, MSG_DONTWAIT) > 0; i++)
		;
	if (!s->tls_cert_pem && send(fd, busy, sizeof busy - 1, MSG_DONTWAIT | MSG_NOSIGNAL) > 0)
		shutdown(fd, SHUT_WR);
	sd_sys_close(fd);
	s->api->metric_add(s->core, "storaged_connections_refused_total", "frontend=\"http\"", 1);
	s->api->log(s->core, SD_LOG_INFO, HTTP_SRC,
		    "event=refused reason=\"max_connections\" section=%s addr=%s", s->mc->section,
		    addr);
}

static void *acceptor_main(void *arg)
{
	http_srv *s = arg;
	for (;;) {
		struct pollfd p[2] = {{.fd = s->listen_fd, .events = POLLIN},
				      {.fd = s->stop_pipe[0], .events = POLLIN}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			sd_sleep_ms(10);
			continue;
		}
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		struct sockaddr_storage peer;
		socklen_t plen = sizeof peer;
		int fd = accept4(s->listen_fd, (struct sockaddr *)&peer, &plen,
				 SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				sd_sleep_ms(50); /* the connection waits in the queue */
			continue;
		}
		if (atomic_load(&s->open_conns) >= (long)s->conf->max_connections) {
			char addr[SD_ADDR_MAX];
			sd_addr_text(&peer, addr, sizeof addr);
			refuse_busy(s, fd, addr);
			continue;
		}
		/* on MHD_NO (per-address limit, its own backstop limit) MHD has
		 * closed the socket already */
		MHD_add_connection(s->daemon, fd, (struct sockaddr *)&peer, plen);
	}
	return NULL;
}

static int http_start(void *state)
{
	http_srv *s = state;
	http_conf *cf = s->conf;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG |
			 MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC;
	int tls = s->tls_cert_pem != NULL;
	if (tls)
		flags |= MHD_USE_TLS;
	if (s->throttle) /* throttle.c: a limited request sleeps in its own thread */
		flags |= MHD_USE_THREAD_PER_CONNECTION;
	struct MHD_OptionItem opts[32];
	int n = 0;
#define OPT(o, v, p) opts[n++] = (struct MHD_OptionItem){(o), (intptr_t)(v), (p)}
	OPT(MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_logger, s); /* first, or MHD warns */
	if (cf->threads > 1 && !s->throttle)
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
	int rc;
	if (pipe2(s->stop_pipe, O_CLOEXEC) < 0) {
		rc = -errno;
	} else if ((rc = -pthread_create(&s->acceptor, NULL, acceptor_main, s)) < 0) {
		sd_sys_close(s->stop_pipe[0]);
		sd_sys_close(s->stop_pipe[1]);
	}
	if (rc < 0) {
		s->api->log(s->core, SD_LOG_ERROR, HTTP_SRC,
			    "event=start_error section=%s err=\"no acceptor thread: %s\"",
			    s->mc->section, s->api->strerror(rc));
		MHD_stop_daemon(s->daemon);
		s->daemon = NULL;
		return rc;
	}
	s->acceptor_running = 1;
	s->api->log(s->core, SD_LOG_INFO, HTTP_SRC,
		    "event=listening section=%s addr=%s port=%d tls=%s threads=%lld",
		    s->mc->section, s->mc->listen_host ? s->mc->listen_host : "*",
		    s->mc->listen_port, tls ? "yes" : "no", (long long)cf->threads);
	return 0;
}

static void http_stop(void *state)
{
	http_srv *s = state;
	if (s && s->acceptor_running) {
		/* first: nothing is handed to MHD once it stops */
		char b = 1;
		(void)sd_sys_write(s->stop_pipe[1], &b, 1);
		pthread_join(s->acceptor, NULL);
		sd_sys_close(s->stop_pipe[0]);
		sd_sys_close(s->stop_pipe[1]);
		s->acceptor_running = 0;
	}
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
		sd_sys_close(s->listen_fd);
	if (s->tls_key_pem) {
		memset(s->tls_key_pem, 0, strlen(s->tls_key_pem));
		free(s->tls_key_pem);
	}
	free(s->tls_cert_pem);
	sd__http_throttle_free(s->throttle);
	sd__http_web_free(s);
	memset(s->hkey, 0, sizeof s->hkey);
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
