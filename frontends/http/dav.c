/*
 * dav.c - the WebDAV space of the HTTP front end (dav.h, docs/webdav.md):
 * the entry every request under dav_prefix takes, and the methods that
 * need no XML: OPTIONS, GET/HEAD, PUT, DELETE, MKCOL, COPY, MOVE.
 *
 * Entry, in this order:
 *   1. OPTIONS answers at once, without credentials (Windows asks "OPTIONS
 *      /" before it authenticates, and the answer names nothing of a user);
 *   2. authentication as the REST API (Basic, Bearer: auth.c); a read-only
 *      credential may PROPFIND, GET and HEAD only (403);
 *   3. the URL tail is decoded once into the engine path (args.c: the
 *      engine's resolver decides what ".." means, as everywhere);
 *   4. the If header (dav_if.c) is evaluated and its lock tokens submitted
 *      on the request's session, by every method that changes something,
 *      before its first engine call; the engine then refuses what a lock
 *      covers unless its token came (-EBUSY: 423).
 *
 * Invariants:
 *  1. Every change is one or more engine calls on the request's session:
 *     nothing here knows about storage, locks or history folders beyond
 *     what the engine answers.
 *  2. A PUT is the REST API's streamed upload (upload.c): X-Checksum-SHA256
 *     and instant upload work the same, and nothing is visible before its
 *     commit. A PUT whose X-Expected-Entity-Length (macOS Finder, chunked)
 *     differs from the bytes that came stores nothing.
 *  3. COPY copies by reference (api->copy: no content bytes are copied)
 *     and copies dead properties; locks never follow a copy.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dav.h"

#define DAV_ALLOW "OPTIONS, GET, HEAD, PUT, DELETE, MKCOL, COPY, MOVE, PROPFIND, PROPPATCH, LOCK, UNLOCK"

/* ------------------------------------------------------------ config */

const char *sd__dav_check_conf(const http_conf *cf)
{
	if (!cf->dav)
		return NULL;
	const char *p = cf->dav_prefix;
	size_t n = p ? strlen(p) : 0;
	if (n < 3 || p[0] != '/' || p[n - 1] != '/')
		return "dav_prefix must look like /name/";
	for (size_t i = 0; i < n; i++) {
		char ch = p[i];
		int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
			 ch == '-' || ch == '_' || ch == '.' || ch == '~' || ch == '/';
		if (!ok || (ch == '/' && i + 1 < n && p[i + 1] == '/'))
			return "dav_prefix may hold only letters, digits, - _ . ~ and single slashes";
		if (ch == '.' && (i == 0 || p[i - 1] == '/'))
			return "dav_prefix segments may not start with a dot";
	}
	static const char *const taken[] = {"/api/", "/f/", "/healthz/", "/metrics/"};
	for (size_t i = 0; i < sizeof taken / sizeof taken[0]; i++)
		if (strncmp(p, taken[i], strlen(taken[i])) == 0)
			return "dav_prefix may not be under /api/, /f/, /healthz or /metrics";
	if (cf->dav_max_xml_body < 4096 || cf->dav_max_xml_body > 16 * 1024 * 1024)
		return "dav_max_xml_body must be 4K-16M";
	if (cf->dav_depth_infinity < 0 || cf->dav_depth_infinity > 100000)
		return "dav_depth_infinity must be 0-100000";
	if (cf->dav_lock_max_timeout < 1000 || cf->dav_lock_max_timeout > 7LL * 86400 * 1000)
		return "dav_lock_max_timeout must be 1s-7d";
	if (cf->dav_lock_timeout < 1000 || cf->dav_lock_timeout > cf->dav_lock_max_timeout)
		return "dav_lock_timeout must be at least 1s and at most dav_lock_max_timeout";
	return NULL;
}

const char *sd__dav_match(const http_srv *s, const char *url)
{
	const http_conf *cf = s->conf;
	if (!cf->dav || !cf->dav_prefix)
		return NULL;
	size_t n = strlen(cf->dav_prefix); /* ends with '/' */
	if (strncmp(url, cf->dav_prefix, n - 1) != 0)
		return NULL;
	if (url[n - 1] == '\0')
		return url + n - 1;
	if (url[n - 1] == '/')
		return url + n;
	return NULL;
}

/* ------------------------------------------------------------ helpers */

static void dav_req_free(void *p)
{
	dav_req *d = p;
	if (!d)
		return;
	sd_buf_free(&d->body);
	free(d);
}

dav_req *sd__dav_req(hreq *r)
{
	if (!r->body_state) {
		dav_req *d = sd_xcalloc(1, sizeof *d);
		d->expected = -1;
		r->body_state = d;
		r->body_state_free = dav_req_free;
	}
	return r->body_state;
}

enum MHD_Result sd__dav_reply_xml(struct MHD_Connection *c, hreq *r, unsigned status, sd_buf *b)
{
	size_t n = b->len;
	char *text = sd_buf_steal(b);
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(n, text ? text : (char *)"", text ? MHD_RESPMEM_MUST_FREE
									       : MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "application/xml; charset=utf-8");
	return sd__http_queue(c, r, status, resp, n);
}

enum MHD_Result sd__dav_error(struct MHD_Connection *c, hreq *r, unsigned status,
			      const char *precond, const char *href, const char *fmt, ...)
{
	sd_buf msg = SD_BUF_INIT, b = SD_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	sd_buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	if (!sd_utf8_valid(msg.data, msg.len)) {
		sd_buf_reset(&msg);
		sd_buf_puts(&msg, "(message not valid UTF-8)");
	}
	sd_buf_puts(&b, DAV_XML_HEAD "<D:error xmlns:D=\"DAV:\" xmlns:S=\"urn:storaged\">");
	if (precond) {
		sd_buf_printf(&b, "<D:%s>", precond);
		if (href) {
			sd_buf_puts(&b, "<D:href>");
			sd__dav_href(r->srv, &b, href, 0);
			sd_buf_puts(&b, "</D:href>");
		}
		sd_buf_printf(&b, "</D:%s>", precond);
	}
	sd_buf_puts(&b, "<S:message>");
	sd__dav_escs(&b, msg.data ? msg.data : "");
	sd_buf_puts(&b, "</S:message></D:error>\n");
	if (status >= 500)
		r->srv->api->log(r->srv->core, SD_LOG_WARN, HTTP_SRC,
				 "event=error status=%u user=%s msg=\"%s\"", status,
				 r->authed ? r->who.user : "-", msg.data ? msg.data : "");
	sd_buf_free(&msg);
	return sd__dav_reply_xml(c, r, status, &b);
}

enum MHD_Result sd__dav_errno(struct MHD_Connection *c, hreq *r, int err)
{
	const char *code;
	unsigned st = sd__http_status_for(err, &code);
	const char *words = r->srv->api->strerror(err);
	if (err == -EBUSY)
		return sd__dav_error(c, r, 423, "lock-token-submitted", r->shown, "%s", words);
	if (err == -SD_EAUTH || err == -SD_EBLOCKED)
		return sd__http_reply_errno(c, r, err);
	if (err == -ENOLCK)
		st = 503;
	return sd__dav_error(c, r, st, NULL, NULL, "%s", words);
}

int sd__dav_depth(struct MHD_Connection *c, int def)
{
	const char *d = sd__http_hdr(c, "Depth");
	if (!d)
		return def;
	while (*d == ' ')
		d++;
	if (strcmp(d, "0") == 0)
		return 0;
	if (strcmp(d, "1") == 0)
		return 1;
	if (strcasecmp(d, "infinity") == 0)
		return -1;
	return -2;
}

/* The folder of path into out ("/" for "/a"). */
static void parent_path(const char *path, char out[SD_PATH_MAX + 1])
{
	snprintf(out, SD_PATH_MAX + 1, "%s", path);
	size_t n = strlen(out);
	while (n > 1 && out[n - 1] == '/')
		out[--n] = '\0';
	char *slash = strrchr(out, '/');
	if (!slash || slash == out)
		snprintf(out, SD_PATH_MAX + 1, "/");
	else
		*slash = '\0';
}

/* The folder of a path to be made must be one: 0, or an answer queued
 * (409 Conflict, RFC 4918 9.3.1, 9.7.1, 9.8.5). */
static int need_parent(struct MHD_Connection *c, hreq *r, const char *path, enum MHD_Result *ret)
{
	char pp[SD_PATH_MAX + 1];
	parent_path(path, pp);
	sd_stat st;
	int rc = r->srv->api->stat(r->sess, pp, &st);
	if (rc == 0 && st.kind == SD_KIND_DIR)
		return 0;
	if (rc < 0 && rc != -ENOENT && rc != -ENOTDIR) {
		*ret = sd__dav_errno(c, r, rc);
		return -1;
	}
	*ret = sd__dav_error(c, r, 409, NULL, NULL, "the parent folder does not exist");
	return -1;
}

/* ------------------------------------------------------------ bodies */

static int body_feed(hreq *r, const char *data, size_t len)
{
	dav_req *d = r->body_state;
	size_t cap = (size_t)r->srv->conf->dav_max_xml_body;
	if (d->over || len > cap - d->body.len) {
		d->over = 1;
		r->err_status = 413;
		snprintf(r->err_code, sizeof r->err_code, "too_large");
		snprintf(r->err_msg, sizeof r->err_msg, "XML body larger than %lld bytes",
			 (long long)r->srv->conf->dav_max_xml_body);
		return -1;
	}
	sd_buf_append(&d->body, data, len);
	return 0;
}

static enum MHD_Result body_done(struct MHD_Connection *c, hreq *r)
{
	dav_req *d = r->body_state;
	return d->then(c, r);
}

enum MHD_Result sd__dav_want_body(struct MHD_Connection *c, hreq *r, http_finish_fn then)
{
	dav_req *d = sd__dav_req(r);
	const char *cl = sd__http_hdr(c, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl) {
		char *end;
		long long v = strtoll(cl, &end, 10);
		if (*end || v < 0)
			return sd__dav_error(c, r, 400, NULL, NULL, "bad Content-Length");
		if (v > r->srv->conf->dav_max_xml_body)
			return sd__dav_error(c, r, 413, NULL, NULL, "XML body larger than %lld bytes",
					     (long long)r->srv->conf->dav_max_xml_body);
	}
	d->then = then;
	r->state = RQ_BODY;
	r->body = BODY_FEED;
	r->feed = body_feed;
	r->finish = body_done;
	return MHD_YES;
}

/* ------------------------------------------------------------ OPTIONS */

static enum MHD_Result options(struct MHD_Connection *c, hreq *r)
{
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "DAV", "1, 2");
	MHD_add_response_header(resp, "MS-Author-Via", "DAV");
	MHD_add_response_header(resp, "Allow", DAV_ALLOW);
	MHD_add_response_header(resp, "Accept-Ranges", "bytes");
	return sd__http_queue(c, r, 200, resp, 0);
}

enum MHD_Result sd__http_dav_options_root(struct MHD_Connection *c, hreq *r, const char *tail)
{
	(void)tail;
	if (!r->srv->conf->dav)
		return sd__http_reply_error(c, r, 404, "not_found", "no such endpoint");
	return options(c, r);
}

/* ------------------------------------------------------------ GET, HEAD */

struct index_ctx {
	hreq *r;
	sd_buf *b;
	const char *dir;
};

static int index_cb(void *arg, const sd_dirent *e)
{
	struct index_ctx *x = arg;
	char child[SD_PATH_MAX + 1];
	snprintf(child, sizeof child, "%s%s%s", x->dir, strcmp(x->dir, "/") ? "/" : "", e->name);
	sd_buf_puts(x->b, "<li><a href=\"");
	sd__dav_href(x->r->srv, x->b, child, e->st.kind == SD_KIND_DIR);
	sd_buf_puts(x->b, "\">");
	sd__dav_escs(x->b, e->name);
	sd_buf_puts(x->b, e->st.kind == SD_KIND_DIR ? "/" : "");
	sd_buf_puts(x->b, "</a></li>\n");
	return 0;
}

/* A folder's GET: a small HTML index (a browser pointed at the space). */
static enum MHD_Result folder_index(struct MHD_Connection *c, hreq *r)
{
	sd_buf b = SD_BUF_INIT;
	sd_buf_puts(&b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>");
	sd__dav_escs(&b, r->shown);
	sd_buf_puts(&b, "</title></head><body><h1>");
	sd__dav_escs(&b, r->shown);
	sd_buf_puts(&b, "</h1><ul>\n");
	struct index_ctx x = {r, &b, r->shown};
	int more = 0;
	int rc = r->srv->api->readdir(r->sess, r->path.data, NULL, (int)r->srv->conf->list_limit,
				      index_cb, &x, &more);
	if (rc < 0) {
		sd_buf_free(&b);
		return sd__dav_errno(c, r, rc);
	}
	if (more)
		sd_buf_puts(&b, "<li>...</li>\n");
	sd_buf_puts(&b, "</ul></body></html>\n");
	size_t n = b.len;
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(n, sd_buf_steal(&b), MHD_RESPMEM_MUST_FREE);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "text/html; charset=utf-8");
	return sd__http_queue(c, r, 200, resp, n);
}

static enum MHD_Result get(struct MHD_Connection *c, hreq *r)
{
	sd_stat st;
	int rc = r->srv->api->stat(r->sess, r->path.data, &st);
	if (rc < 0)
		return sd__dav_errno(c, r, rc);
	if (st.kind == SD_KIND_DIR)
		return folder_index(c, r);
	return sd__http_serve_file(c, r, r->path.data, -1);
}

/* ------------------------------------------------------------ PUT */

/* The body is in: check X-Expected-Entity-Length, then upload.c commits. */
static enum MHD_Result put_finish(struct MHD_Connection *c, hreq *r)
{
	dav_req *d = r->body_state;
	if (r->up && d->expected >= 0) {
		uint64_t got = r->srv->api->upload_size(r->up);
		if (got != (uint64_t)d->expected) {
			r->srv->api->upload_abort(r->up);
			r->up = NULL;
			return sd__dav_error(c, r, 400, NULL, NULL,
					     "the body has %llu bytes, X-Expected-Entity-Length "
					     "said %lld: nothing stored",
					     (unsigned long long)got, (long long)d->expected);
		}
	}
	return d->put_finish(c, r);
}

static enum MHD_Result put(struct MHD_Connection *c, hreq *r)
{
	enum MHD_Result ret;
	sd_stat st;
	int rc = r->srv->api->stat(r->sess, r->path.data, &st);
	if (rc == 0 && st.kind == SD_KIND_DIR)
		return sd__dav_error(c, r, 405, NULL, NULL, "a folder cannot be PUT");
	if (rc < 0 && rc != -ENOENT)
		return sd__dav_errno(c, r, rc);
	if (rc == -ENOENT && need_parent(c, r, r->shown, &ret) < 0)
		return ret;
	if (sd__dav_if(c, r, &ret) < 0)
		return ret;
	dav_req *d = sd__dav_req(r);
	const char *xl = sd__http_hdr(c, "X-Expected-Entity-Length");
	if (xl) {
		char *end;
		long long v = strtoll(xl, &end, 10);
		if (*end || v < 0)
			return sd__dav_error(c, r, 400, NULL, NULL, "bad X-Expected-Entity-Length");
		d->expected = v;
	}
	r->up_flags = 0;
	ret = sd__http_upload_start(c, r);
	if (r->state == RQ_BODY && r->finish) {
		d->put_finish = r->finish;
		r->finish = put_finish;
	}
	return ret;
}

/* ------------------------------------------------------------ DELETE, MKCOL */

static enum MHD_Result del(struct MHD_Connection *c, hreq *r)
{
	enum MHD_Result ret;
	if (strcmp(r->shown, "/") == 0)
		return sd__dav_error(c, r, 403, NULL, NULL, "the root cannot be deleted");
	sd_stat st;
	int rc = r->srv->api->stat(r->sess, r->path.data, &st);
	if (rc < 0)
		return sd__dav_errno(c, r, rc);
	int depth = sd__dav_depth(c, -1);
	if (st.kind == SD_KIND_DIR && depth != -1)
		return sd__dav_error(c, r, 400, NULL, NULL, "DELETE of a folder needs Depth: infinity");
	if (sd__dav_if(c, r, &ret) < 0)
		return ret;
	rc = r->srv->api->unlink(r->sess, r->path.data, st.kind == SD_KIND_DIR);
	if (rc < 0)
		return sd__dav_errno(c, r, rc);
	return sd__http_reply_empty(c, r, 204);
}

static enum MHD_Result mkcol(struct MHD_Connection *c, hreq *r)
{
	enum MHD_Result ret;
	if (sd__http_has_body(c))
		return sd__dav_error(c, r, 415, NULL, NULL, "MKCOL takes no body");
	sd_stat st;
	int rc = r->srv->api->stat(r->sess, r->path.data, &st);
	if (rc == 0)
		return sd__dav_error(c, r, 405, NULL, NULL, "%s exists", r->shown);
	if (need_parent(c, r, r->shown, &ret) < 0)
		return ret;
	if (sd__dav_if(c, r, &ret) < 0)
		return ret;
	rc = r->srv->api->mkdir(r->sess, r->path.data, 0755, 0);
	if (rc < 0)
		return sd__dav_errno(c, r, rc);
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	return sd__http_queue(c, r, 201, resp, 0);
}

/* ------------------------------------------------------------ COPY, MOVE */

static void join(char out[SD_PATH_MAX + 1], const char *dir, const char *name)
{
	snprintf(out, SD_PATH_MAX + 1, "%s%s%s", dir, strcmp(dir, "/") ? "/" : "", name);
}

/* A folder's entries, one page. */
struct page {
	int n;
	char names[256][SD_NAME_MAX + 1];
	int dir[256];
};

static int page_cb(void *arg, const sd_dirent *e)
{
	struct page *p = arg;
	snprintf(p->names[p->n], sizeof p->names[0], "%s", e->name);
	p->dir[p->n] = e->st.kind == SD_KIND_DIR;
	p->n++;
	return 0;
}

/* Copy folder `from` to `to` (not there): the folder and its dead
 * properties, and with infinite depth everything below, by reference. A
 * stack of (from, to) pairs, so no recursion on the C stack. */
static int copy_tree(hreq *r, const char *from, const char *to, int infinite)
{
	const sd_core_api *api = r->srv->api;
	typedef struct pair {
		char *from, *to;
	} pair;
	pair *stack = NULL;
	size_t n = 0, cap = 0;
	struct page *pg = sd_xmalloc(sizeof *pg);
	int rc = 0;
#define PUSH(f, t)                                                          \
	do {                                                                \
		if (n == cap) {                                             \
			cap = cap ? cap * 2 : 16;                           \
			stack = sd_xrealloc(stack, cap * sizeof *stack);    \
		}                                                           \
		stack[n].from = sd_xstrdup(f);                              \
		stack[n].to = sd_xstrdup(t);                                \
		n++;                                                        \
	} while (0)
	PUSH(from, to);
	while (n > 0 && rc == 0) {
		pair cur = stack[--n];
		rc = api->mkdir(r->sess, cur.to, 0755, 0);
		if (rc == 0)
			rc = sd__dav_copy_props(r, cur.from, cur.to);
		char after[SD_NAME_MAX + 1] = "";
		int more = infinite;
		while (rc == 0 && more) {
			pg->n = 0;
			more = 0;
			rc = api->readdir(r->sess, cur.from, after[0] ? after : NULL, 256, page_cb, pg,
					  &more);
			if (rc < 0)
				break;
			rc = 0;
			for (int i = 0; i < pg->n && rc == 0; i++) {
				char f[SD_PATH_MAX + 1], t[SD_PATH_MAX + 1];
				join(f, cur.from, pg->names[i]);
				join(t, cur.to, pg->names[i]);
				if (pg->dir[i]) {
					PUSH(f, t);
				} else {
					rc = api->copy(r->sess, f, t);
					if (rc == 0)
						rc = sd__dav_copy_props(r, f, t);
				}
			}
			if (pg->n > 0)
				snprintf(after, sizeof after, "%s", pg->names[pg->n - 1]);
		}
		free(cur.from);
		free(cur.to);
	}
#undef PUSH
	while (n > 0) {
		n--;
		free(stack[n].from);
		free(stack[n].to);
	}
	free(stack);
	free(pg);
	return rc;
}

/* Is b below a (both resolved)? */
static int below(const char *b, const char *a)
{
	size_t n = strlen(a);
	if (strcmp(a, "/") == 0)
		return strcmp(b, "/") != 0;
	return strncmp(b, a, n) == 0 && b[n] == '/';
}

static enum MHD_Result copymove(struct MHD_Connection *c, hreq *r, int move)
{
	const sd_core_api *api = r->srv->api;
	enum MHD_Result ret;
	const char *dest = sd__http_hdr(c, "Destination");
	if (!dest || !*dest)
		return sd__dav_error(c, r, 400, NULL, NULL, "%s needs a Destination header",
				     r->method);
	sd_buf dp = SD_BUF_INIT;
	int rc = sd__dav_url_path(c, r, dest, 1, &dp);
	if (rc == -EXDEV) {
		sd_buf_free(&dp);
		return sd__dav_error(c, r, 403, NULL, NULL,
				     "the Destination is on another server or outside %s",
				     r->srv->conf->dav_prefix);
	}
	if (rc < 0) {
		sd_buf_free(&dp);
		return sd__dav_error(c, r, 400, NULL, NULL,
				     "bad Destination (an absolute URL or path under %s, encoded "
				     "once, without . or .. segments)",
				     r->srv->conf->dav_prefix);
	}
	char to[SD_PATH_MAX + 1];
	rc = api->resolve(r->sess, dp.data, dp.len, to, sizeof to);
	sd_buf_free(&dp);
	if (rc < 0)
		return sd__dav_errno(c, r, rc);
	const char *ow = sd__http_hdr(c, "Overwrite");
	int overwrite = 1;
	if (ow) {
		if (strcasecmp(ow, "F") == 0)
			overwrite = 0;
		else if (strcasecmp(ow, "T") != 0)
			return sd__dav_error(c, r, 400, NULL, NULL, "Overwrite must be T or F");
	}
	int depth = sd__dav_depth(c, -1);
	if (depth == -2 || depth == 1 || (move && depth != -1))
		return sd__dav_error(c, r, 400, NULL, NULL,
				     move ? "MOVE takes Depth: infinity only"
					  : "COPY takes Depth: 0 or infinity");
	sd_stat src;
	rc = api->stat(r->sess, r->path.data, &src);
	if (rc < 0)
		return sd__dav_errno(c, r, rc);
	if (strcmp(to, r->shown) == 0)
		return sd__dav_error(c, r, 403, NULL, NULL, "the source and the destination are the same");
	if (strcmp(r->shown, "/") == 0 || (src.kind == SD_KIND_DIR && below(to, r->shown)))
		return sd__dav_error(c, r, 403, NULL, NULL, "a folder cannot go inside itself");
	if (strcmp(to, "/") == 0)
		return sd__dav_error(c, r, 403, NULL, NULL, "the root cannot be replaced");
	if (need_parent(c, r, to, &ret) < 0)
		return ret;
	if (sd__dav_if(c, r, &ret) < 0)
		return ret;
	sd_stat dst;
	int exists = api->stat(r->sess, to, &dst) == 0;
	if (exists && !overwrite)
		return sd__dav_error(c, r, 412, NULL, NULL, "%s exists and Overwrite is F", to);
	/* replacing: a folder on either side goes first (a file over a file
	 * is replaced in the same step) */
	if (exists && (dst.kind == SD_KIND_DIR || src.kind == SD_KIND_DIR) &&
	    (rc = api->unlink(r->sess, to, dst.kind == SD_KIND_DIR)) < 0)
		return sd__dav_errno(c, r, rc);
	if (move)
		rc = api->rename(r->sess, r->path.data, to, 0);
	else if (src.kind == SD_KIND_DIR)
		rc = copy_tree(r, r->shown, to, depth == -1);
	else if ((rc = api->copy(r->sess, r->path.data, to)) == 0)
		rc = sd__dav_copy_props(r, r->shown, to);
	if (rc < 0)
		return sd__dav_errno(c, r, rc);
	if (exists)
		return sd__http_reply_empty(c, r, 204);
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (resp) {
		sd_buf loc = SD_BUF_INIT;
		sd__dav_href(r->srv, &loc, to, src.kind == SD_KIND_DIR);
		MHD_add_response_header(resp, "Location", loc.data);
		sd_buf_free(&loc);
	}
	return sd__http_queue(c, r, 201, resp, 0);
}

/* ------------------------------------------------------------ the entry */

static int is_read(const char *m)
{
	return !strcmp(m, "GET") || !strcmp(m, "HEAD") || !strcmp(m, "PROPFIND") ||
	       !strcmp(m, "OPTIONS");
}

enum MHD_Result sd__http_dav(struct MHD_Connection *c, hreq *r, const char *tail)
{
	enum MHD_Result ret;
	const char *m = r->method;
	if (!strcmp(m, "OPTIONS"))
		return options(c, r);
	if (sd__http_authenticate(c, r, &ret) < 0)
		return ret;
	if (!is_read(m) && (r->who.flags & SD_USER_READONLY))
		return sd__dav_error(c, r, 403, NULL, NULL, "this credential is read-only");
	if (sd__http_take_path(c, r, tail, &ret) < 0)
		return ret;
	if (!strcmp(m, "GET") || !strcmp(m, "HEAD"))
		return get(c, r);
	if (!strcmp(m, "PUT"))
		return put(c, r);
	if (!strcmp(m, "DELETE"))
		return del(c, r);
	if (!strcmp(m, "MKCOL"))
		return mkcol(c, r);
	if (!strcmp(m, "COPY") || !strcmp(m, "MOVE"))
		return copymove(c, r, m[0] == 'M');
	if (!strcmp(m, "PROPFIND"))
		return sd__dav_want_body(c, r, sd__dav_propfind);
	if (!strcmp(m, "PROPPATCH"))
		return sd__dav_want_body(c, r, sd__dav_proppatch);
	if (!strcmp(m, "LOCK"))
		return sd__dav_want_body(c, r, sd__dav_lock);
	if (!strcmp(m, "UNLOCK"))
		return sd__dav_unlock(c, r);
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (resp)
		MHD_add_response_header(resp, "Allow", DAV_ALLOW);
	return sd__http_queue(c, r, 405, resp, 0);
}
