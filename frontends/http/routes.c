/*
 * routes.c - the route table of the HTTP front end, and the one dispatcher
 * every request goes through on its first handler call.
 *
 * Dispatch, in this order:
 *   1. request line plus headers over max_header_size: 431; a CORS
 *      preflight (OPTIONS with Origin and Access-Control-Request-Method)
 *      from an origin of cors_origins: 204 with the Access-Control-Allow-*
 *      headers, before any route or credentials (a preflight has none);
 *   2. the first row whose path matches (exact, or with R_TREE the path
 *      followed by "/" and a tail; a "*" component of a row's path matches
 *      one non-empty component of the URL, which the handler gets as its
 *      tail; R_DAV: under dav_prefix, see dav.c) is the route, or a later
 *      row of the very same path and flags that takes the method when it
 *      does not;
 *      none: 404;
 *   3. R_AUTH (or R_AUTH_PRIVATE without public_ids): authenticate (401,
 *      429); a read-only credential may only GET or HEAD (403 read_only),
 *      except on R_RO_OK rows, whose handlers check it themselves;
 *      R_METRICS follows the `metrics` key: open, an admin's credentials
 *      (401, 403), or 404 when off;
 *   4. R_ADMIN: the user must have the admin flag (403 forbidden);
 *   5. the method must be one of the row's (405 with Allow);
 *   6. the handler runs with the raw tail.
 * The last row makes every other /api/ path answer 401 before 404, so an
 * unauthenticated client learns nothing about which endpoints exist.
 *
 * Handlers live in their own files and never call back into this one.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dav.h"
#include "http.h"
#include "history.h"
#include "teams.h"

#define R_TREE         0x1u /* path, or path + "/" + tail */
#define R_AUTH         0x2u /* credentials required */
#define R_AUTH_PRIVATE 0x4u /* credentials required unless public_ids */
#define R_ADMIN        0x8u /* the admin flag required (with R_AUTH) */
#define R_RO_OK        0x10u /* read-only credentials pass; the handler checks */
#define R_METRICS      0x20u /* as the `metrics` key says: open, an admin, or 404 */
#define R_DAV          0x40u /* the WebDAV space: the path is dav_prefix (config) */

#define SEG_MAX 128 /* bytes of a "*" component kept; longer ones are cut (and refused) */

typedef struct http_route {
	const char *methods; /* space-separated; "*": any */
	const char *path;
	unsigned flags;
	http_handler fn;
} http_route;

static enum MHD_Result no_route(struct MHD_Connection *c, hreq *r, const char *tail)
{
	(void)tail;
	return sd__http_reply_error(c, r, 404, "not_found", "no such endpoint");
}

static const http_route routes[] = {
    /* WebDAV (dav.c): every URL under dav_prefix, whatever the method;
     * dav.c authenticates all but OPTIONS itself */
    {"*", "(dav_prefix)", R_DAV, sd__http_dav},
    {"OPTIONS", "/", 0, sd__http_dav_options_root},
    {"GET HEAD", "/healthz", 0, sd__http_healthz},
    {"GET HEAD", "/metrics", R_METRICS, sd__http_metrics},
    {"GET HEAD", "/f", R_TREE | R_AUTH_PRIVATE, sd__http_fileid_get},
    {"GET HEAD PUT DELETE POST", "/api/v1/fs", R_TREE | R_AUTH, sd__http_fs},
    {"GET HEAD", "/api/v1/stat", R_TREE | R_AUTH, sd__http_stat},
    {"POST", "/api/v1/instant", R_AUTH, sd__http_instant},
    {"POST PUT", "/api/v1/upload", R_AUTH, sd__http_idupload},
    {"GET HEAD", "/api/v1/me", R_AUTH, sd__http_me},
    {"GET HEAD POST", "/api/v1/versions", R_TREE | R_AUTH, sd__http_versions},
    {"GET HEAD POST DELETE", "/api/v1/trash", R_TREE | R_AUTH, sd__http_trash},
    {"POST", "/api/v1/rollback", R_AUTH, sd__http_rollback},
    /* teams and share links (teams.h) */
    {"GET HEAD POST DELETE", "/api/v1/links", R_TREE | R_AUTH, sd__http_links},
    {"*", "/api/v1/admin/groups", R_TREE | R_AUTH | R_ADMIN, sd__http_admin_groups},
    {"*", "/api/v1/admin/shares", R_TREE | R_AUTH | R_ADMIN, sd__http_admin_shares},
    {"*", "/api/v1/admin/links", R_TREE | R_AUTH | R_ADMIN, sd__http_admin_links},
    {"GET HEAD POST PUT", "/s", R_TREE, sd__http_link_serve},
    {"*", "/api/v1/admin", R_TREE | R_AUTH | R_ADMIN, sd__http_admin_begin},
    {"GET HEAD POST DELETE", "/api/v1/me", R_TREE | R_AUTH, sd__http_me_sub},
    /* the handle API (docs/handle-api.md) */
    {"POST", "/api/v1/open", R_AUTH | R_RO_OK, sd__http_h_open},
    {"GET HEAD PUT", "/api/v1/handles/*/data", R_AUTH, sd__http_h_data},
    {"POST", "/api/v1/handles/*/truncate", R_AUTH, sd__http_h_truncate},
    {"POST", "/api/v1/handles/*/attrs", R_AUTH, sd__http_h_attrs},
    {"POST", "/api/v1/handles/*/sync", R_AUTH | R_RO_OK, sd__http_h_sync},
    {"POST", "/api/v1/handles/*/close", R_AUTH | R_RO_OK, sd__http_h_close},
    {"GET HEAD DELETE", "/api/v1/handles/*", R_AUTH | R_RO_OK, sd__http_h_handle},
    /* resumable uploads (tus.c): OPTIONS is open, the rest authenticate there */
    {"OPTIONS POST HEAD PATCH DELETE", "/api/v1/tus", R_TREE, sd__http_tus},
    /* the web client (web.c, docs/web-client.md): the session row
     * authenticates by itself (login has no credentials yet) */
    {"GET HEAD", "/", 0, sd__http_web_index},
    {"GET HEAD", "/web/*", 0, sd__http_web_asset},
    {"GET HEAD POST DELETE", "/api/v1/session", 0, sd__http_web_session},
    {"*", "/api", R_TREE | R_AUTH, no_route},
};

/* A row with a "*" component: the URL's component there into seg (cut at
 * SEG_MAX - 1 bytes), when the rest matches exactly. */
static const char *match_seg(const http_route *rt, const char *url, char seg[SEG_MAX])
{
	const char *p = rt->path, *u = url;
	while (*p) {
		if (*p == '*') {
			size_t k = 0;
			while (*u && *u != '/') {
				if (k < SEG_MAX - 1)
					seg[k++] = *u;
				u++;
			}
			seg[k] = '\0';
			if (k == 0)
				return NULL;
			p++;
			continue;
		}
		if (*p++ != *u++)
			return NULL;
	}
	return *u == '\0' ? seg : NULL;
}

/* The tail after the row's path when url matches it, else NULL. */
static const char *match(const http_route *rt, const char *url, char seg[SEG_MAX])
{
	if (strchr(rt->path, '*'))
		return match_seg(rt, url, seg);
	size_t n = strlen(rt->path);
	if (strncmp(url, rt->path, n) != 0)
		return NULL;
	if (url[n] == '\0')
		return url + n;
	if ((rt->flags & R_TREE) && url[n] == '/')
		return url + n + 1;
	return NULL;
}

static int method_ok(const char *methods, const char *m)
{
	if (strcmp(methods, "*") == 0)
		return 1;
	size_t n = strlen(m);
	for (const char *p = methods; *p;) {
		const char *e = strchr(p, ' ');
		size_t k = e ? (size_t)(e - p) : strlen(p);
		if (k == n && strncmp(p, m, n) == 0)
			return 1;
		p += k;
		while (*p == ' ')
			p++;
	}
	return 0;
}

static int is_write_method(const char *m)
{
	return strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0 && strcmp(m, "OPTIONS") != 0;
}

/* Total bytes of request line and headers, for max_header_size. */
static enum MHD_Result add_header_size(void *cls, enum MHD_ValueKind kind, const char *key,
				       const char *value)
{
	(void)kind;
	size_t *n = cls;
	*n += strlen(key) + (value ? strlen(value) : 0) + 4;
	return MHD_YES;
}

static enum MHD_Result method_not_allowed(struct MHD_Connection *c, hreq *r,
					  const char *methods)
{
	sd_buf allow = SD_BUF_INIT, msg = SD_BUF_INIT;
	for (const char *p = methods; *p; p++) {
		if (*p == ' ')
			sd_buf_puts(&allow, ", ");
		else
			sd_buf_append(&allow, p, 1);
	}
	sd_buf_printf(&msg, "use %s", allow.data);
	uint64_t len = 0;
	struct MHD_Response *resp = sd__http_json_response(
	    json_pack("{s:s, s:s}", "error", "method_not_allowed", "message", msg.data), &len);
	if (resp)
		MHD_add_response_header(resp, "Allow", allow.data);
	sd_buf_free(&allow);
	sd_buf_free(&msg);
	return sd__http_queue(c, r, 405, resp, len);
}

const char *sd__http_cors_origin(struct MHD_Connection *c, hreq *r)
{
	const char *list = r->srv->conf->cors_origins;
	if (!list || !*list)
		return NULL;
	const char *o = sd__http_hdr(c, "Origin");
	if (!o || !*o || strcmp(o, "null") == 0)
		return NULL;
	size_t n = strlen(o);
	for (const char *p = list; *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		const char *e = p;
		while (*e && *e != ' ' && *e != ',')
			e++;
		size_t k = (size_t)(e - p);
		if ((k == 1 && *p == '*') || (k == n && strncasecmp(p, o, n) == 0))
			return o;
		p = e;
	}
	return NULL;
}

/* A CORS preflight from an allowed origin: what the page may send. */
static enum MHD_Result cors_preflight(struct MHD_Connection *c, hreq *r)
{
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Access-Control-Allow-Methods",
				"GET, HEAD, PUT, POST, PATCH, DELETE, OPTIONS");
	const char *rh = sd__http_hdr(c, "Access-Control-Request-Headers");
	MHD_add_response_header(
	    resp, "Access-Control-Allow-Headers",
	    rh && *rh ? rh
		      : "Authorization, Content-Type, Content-Range, If-Match, X-Checksum-SHA256, "
			"Tus-Resumable, Upload-Length, Upload-Metadata, Upload-Offset, "
			"Upload-Checksum, X-HTTP-Method-Override");
	MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
	return sd__http_queue(c, r, 204, resp, 0);
}

enum MHD_Result sd__http_dispatch(struct MHD_Connection *c, hreq *r, const char *url,
				  const char *method)
{
	http_srv *s = r->srv;
	enum MHD_Result ret;
	snprintf(r->method, sizeof r->method, "%s", method);

	size_t hs = strlen(url) + strlen(method) + 16;
	MHD_get_connection_values(c, MHD_HEADER_KIND, add_header_size, &hs);
	if ((int64_t)hs > s->conf->max_header_size)
		return sd__http_reply_error(c, r, 431, "headers_too_large",
					    "request headers exceed %lld bytes",
					    (long long)s->conf->max_header_size);
	if (strcmp(method, "OPTIONS") == 0 && sd__http_hdr(c, "Access-Control-Request-Method") &&
	    sd__http_cors_origin(c, r))
		return cors_preflight(c, r);

	const http_route *rt = NULL;
	const char *tail = NULL;
	char seg[SEG_MAX];
	size_t nroutes = sizeof routes / sizeof routes[0], i;
	for (i = 0; i < nroutes && !rt; i++)
		if ((tail = (routes[i].flags & R_DAV) ? sd__dav_match(s, url)
						      : match(&routes[i], url, seg)))
			rt = &routes[i];
	if (!rt)
		return no_route(c, r, NULL);
	/* rows of the same path for other methods (GET / is the web client,
	 * OPTIONS / WebDAV's): the one that takes this method */
	for (; i < nroutes && !method_ok(rt->methods, method); i++)
		if (!(routes[i].flags & R_DAV) && routes[i].flags == rt->flags &&
		    strcmp(routes[i].path, rt->path) == 0 && method_ok(routes[i].methods, method))
			rt = &routes[i];

	if ((rt->flags & R_METRICS) && strcmp(s->conf->metrics, "open") != 0) {
		if (strcmp(s->conf->metrics, "token") != 0) /* off */
			return no_route(c, r, NULL);
		if (sd__http_authenticate(c, r, &ret) < 0)
			return ret;
		if (!(r->who.flags & SD_USER_ADMIN))
			return sd__http_reply_error(c, r, 403, "forbidden",
						    "metrics need an admin's credentials");
	}
	if ((rt->flags & R_AUTH) || ((rt->flags & R_AUTH_PRIVATE) && !s->conf->public_ids)) {
		if (sd__http_authenticate(c, r, &ret) < 0)
			return ret;
		if ((r->who.flags & SD_USER_READONLY) && is_write_method(method) &&
		    !(rt->flags & R_RO_OK))
			return sd__http_reply_error(c, r, 403, "read_only",
						    "this credential is read-only");
		if ((rt->flags & R_ADMIN) && !(r->who.flags & SD_USER_ADMIN))
			return sd__http_reply_error(c, r, 403, "forbidden", "admin rights needed");
	}
	if (!method_ok(rt->methods, method))
		return method_not_allowed(c, r, rt->methods);
	return rt->fn(c, r, tail);
}
