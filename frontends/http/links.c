/*
 * links.c - share links over HTTP:
 *
 *   GET    /api/v1/links            the user's own links (never a token)
 *   POST   /api/v1/links            {"path","mode","expires","password",
 *                                    "max_downloads"} -> the link with its token
 *   DELETE /api/v1/links/<id>       revoke one of them
 *
 *   GET|HEAD /s/<token>[/<path>]    a read link: a file (Range, ETag, If-*),
 *                                   or a folder as a plain HTML listing (JSON
 *                                   with Accept: application/json), or as a
 *                                   zip with ?download=zip
 *   GET    /s/<token>               an upload link: a page with an upload form
 *   POST   /s/<token>               an upload link: multipart/form-data files
 *   PUT    /s/<token>/<name>        an upload link: the body as file <name>
 *
 * /s/ needs no account: the engine opens the link (api->link_open) and
 * every call after goes through it, with its maker's rights checked by the
 * engine (core/link.c). The password of a link comes as HTTP Basic (any
 * user name; a browser prompts for it on 401) or X-Link-Password.
 *
 * Invariants:
 *  1. An unusable token (unknown, expired, revoked, used up, target gone)
 *     is 404 whatever the reason; a wrong token or password counts as a
 *     failed login (429 once the address is locked out).
 *  2. A download is counted (link_use) before its first byte is sent; a
 *     request for a later range, a conditional one and HEAD are not
 *     downloads. A zip counts once.
 *  3. A zip is streamed: each file goes from its reader to the client
 *     through the response callback, never into a temp file or memory.
 *  4. Every name on an HTML page is escaped, every link percent-encoded;
 *     pages carry a CSP without scripts and Referrer-Policy: no-referrer
 *     (the token is in the URL), files a CSP sandbox.
 *  5. The path below a token has no empty, "." or ".." component (400
 *     otherwise, rel_tidy), so every name in a zip is a plain relative
 *     path under the folder's own name.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "teams.h"

#define PAGE_ENTRIES 1000 /* entries of one HTML or JSON listing page */
#define ZIP_PAGE 256

/* ------------------------------------------------------------ link objects */

int sd__http_link_opts(http_srv *s, json_t *j, sd_link_opts *o, const char **why)
{
	memset(o, 0, sizeof *o);
	o->mode = SD_LINK_READ;
	json_t *m = json_object_get(j, "mode");
	if (m) {
		const char *v = json_string_value(m);
		if (v && strcmp(v, "read") == 0)
			o->mode = SD_LINK_READ;
		else if (v && strcmp(v, "upload") == 0)
			o->mode = SD_LINK_UPLOAD;
		else {
			*why = "mode is \"read\" or \"upload\"";
			return -1;
		}
	}
	if (sd__http_json_expires(json_object_get(j, "expires"), s->api->now(s->core), &o->expires) < 0) {
		*why = "expires is an RFC 3339 date-time in the future or seconds from now";
		return -1;
	}
	json_t *pw = json_object_get(j, "password");
	if (pw && !json_is_null(pw)) {
		if (!json_is_string(pw)) {
			*why = "password is a string";
			return -1;
		}
		o->password = json_string_value(pw);
	}
	json_t *md = json_object_get(j, "max_downloads");
	if (md && !json_is_null(md)) {
		if (!json_is_integer(md) || json_integer_value(md) < 0) {
			*why = "max_downloads is a number >= 0";
			return -1;
		}
		o->max_downloads = json_integer_value(md);
	}
	return 0;
}

json_t *sd__http_link_made(http_srv *s, const sd_link_info *li, const char *token)
{
	json_t *o = sd_json_link(li, s->api->now(s->core));
	if (o) {
		char url[SD_LINK_TOKEN_MAX + 8];
		snprintf(url, sizeof url, "/s/%s", token);
		json_object_set_new(o, "token", json_string(token));
		json_object_set_new(o, "url", json_string(url));
	}
	return o;
}

typedef struct list_ctx {
	json_t *arr;
	int64_t now;
} list_ctx;

static int link_cb(void *arg, const sd_link_info *l)
{
	list_ctx *x = arg;
	json_array_append_new(x->arr, sd_json_link(l, x->now));
	return 0;
}

static enum MHD_Result links_finish(struct MHD_Connection *c, hreq *r)
{
	http_srv *s = r->srv;
	json_error_t jerr;
	json_t *j = r->json.len ? json_loadb(r->json.data, r->json.len, 0, &jerr) : NULL;
	if (!j || !json_is_object(j)) {
		json_decref(j);
		return sd__http_reply_error(c, r, 400, "bad_json", "body must be a JSON object");
	}
	enum MHD_Result ret;
	const char *path = json_string_value(json_object_get(j, "path"));
	sd_link_opts o;
	const char *why = NULL;
	if (!path || sd__http_link_opts(s, j, &o, &why) < 0) {
		ret = sd__http_reply_error(c, r, 400, "bad_request", "need path; %s",
					   why ? why : "see docs/rest-api.md");
		goto out;
	}
	if (strlen(path) > SD_PATH_MAX || strchr(path, '\\')) {
		ret = sd__http_reply_error(c, r, 400, "bad_path", "bad path");
		goto out;
	}
	char tok[SD_LINK_TOKEN_MAX];
	sd_link_info li;
	int rc = s->api->link_create(r->sess, path, &o, tok, &li);
	if (rc < 0) {
		ret = sd__http_reply_errno(c, r, rc);
		goto out;
	}
	s->api->log(s->core, SD_LOG_INFO, HTTP_SRC, "event=link_create user=%s id=%lld mode=%s",
		    r->who.user, (long long)li.id, li.mode == SD_LINK_UPLOAD ? "upload" : "read");
	ret = sd__http_reply_json(c, r, 201, sd__http_link_made(s, &li, tok));
	memset(tok, 0, sizeof tok);
out:
	json_decref(j);
	return ret;
}

enum MHD_Result sd__http_links(struct MHD_Connection *c, hreq *r, const char *tail)
{
	http_srv *s = r->srv;
	int get = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
	if (!*tail && get) {
		list_ctx x = {json_array(), s->api->now(s->core)};
		int rc = s->api->link_list(r->sess, link_cb, &x);
		if (rc < 0) {
			json_decref(x.arr);
			return sd__http_reply_errno(c, r, rc);
		}
		return sd__http_reply_json(c, r, 200, json_pack("{s:o}", "links", x.arr));
	}
	if (!*tail && strcmp(r->method, "POST") == 0)
		return sd__http_want_json(r, links_finish);
	if (*tail && strcmp(r->method, "DELETE") == 0) {
		char *end;
		long long id = strtoll(tail, &end, 10);
		if (*end || id <= 0)
			return sd__http_reply_error(c, r, 400, "bad_request", "link id must be a number");
		int rc = s->api->link_revoke(r->sess, id);
		if (rc == -ENOENT)
			return sd__http_reply_error(c, r, 404, "not_found", "no such link of yours: %s",
						    tail);
		if (rc < 0)
			return sd__http_reply_errno(c, r, rc);
		return sd__http_reply_empty(c, r, 204);
	}
	return sd__http_reply_error(c, r, 404, "not_found", "no such endpoint or method");
}

/* ------------------------------------------------------------ /s/ state */

typedef struct lreq {
	const sd_core_api *api;
	sd_link *link;        /* NULL once a zip stream owns it */
	sd_link_info info;
	char token[SD_LINK_TOKEN_MAX];
	char rel[SD_PATH_MAX + 1]; /* decoded path below the link, "/..." */
	/* POST uploads (multipart/form-data) */
	struct MHD_PostProcessor *pp;
	sd_upload *up;
	char upname[SD_NAME_MAX + 1];
	json_t *uploaded;     /* names stored */
	int err;              /* first engine error, 0 */
	char errname[SD_NAME_MAX + 1];
	int html;             /* the client wants HTML */
} lreq;

static void lreq_free(void *p)
{
	lreq *x = p;
	if (!x)
		return;
	if (x->pp)
		MHD_destroy_post_processor(x->pp);
	if (x->up)
		x->api->upload_abort(x->up);
	if (x->link)
		x->api->link_close(x->link);
	json_decref(x->uploaded);
	memset(x->token, 0, sizeof x->token);
	free(x);
}

/* ------------------------------------------------------------ HTML */

static void html_esc(sd_buf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': sd_buf_puts(b, "&amp;"); break;
		case '<': sd_buf_puts(b, "&lt;"); break;
		case '>': sd_buf_puts(b, "&gt;"); break;
		case '"': sd_buf_puts(b, "&quot;"); break;
		case '\'': sd_buf_puts(b, "&#39;"); break;
		default: sd_buf_append(b, s, 1);
		}
	}
}

/* Percent-encode a path (keeping '/') for an href. */
static void url_esc(sd_buf *b, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("-._~/", *p))
			sd_buf_append(b, p, 1);
		else
			sd_buf_printf(b, "%%%02X", *p);
	}
}

static void html_head(sd_buf *b, const char *title)
{
	sd_buf_puts(b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
		       "<meta name=\"viewport\" content=\"width=device-width\"><title>");
	html_esc(b, title);
	sd_buf_puts(b, "</title><style>body{font-family:sans-serif;margin:2em}"
		       "td{padding:.2em 1.5em .2em 0}th{text-align:left}</style></head><body>\n");
}

static enum MHD_Result reply_html(struct MHD_Connection *c, hreq *r, unsigned status, sd_buf *b)
{
	sd_buf_puts(b, "</body></html>\n");
	size_t len = b->len;
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(len, sd_buf_steal(b), MHD_RESPMEM_MUST_FREE);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "text/html; charset=utf-8");
	MHD_add_response_header(resp, "Content-Security-Policy",
				"default-src 'none'; style-src 'unsafe-inline'; form-action 'self'");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	return sd__http_queue(c, r, status, resp, len);
}

/* The name a link's target shows: its last path component, or "shared". */
static const char *target_name(const lreq *x)
{
	const char *p = strrchr(x->info.path, '/');
	return p && p[1] ? p + 1 : "shared";
}

static int wants_html(struct MHD_Connection *c)
{
	const char *acc = sd__http_hdr(c, "Accept");
	if (!acc)
		return 1;
	if (strstr(acc, "application/json") && !strstr(acc, "text/html"))
		return 0;
	return 1;
}

/* ------------------------------------------------------------ listings */

typedef struct page {
	json_t *entries;
	int n;
	char last[SD_NAME_MAX + 1];
} page;

static int page_cb(void *arg, const sd_dirent *e)
{
	page *p = arg;
	json_array_append_new(p->entries, sd_json_stat(NULL, e->name, &e->st));
	snprintf(p->last, sizeof p->last, "%s", e->name);
	p->n++;
	return 0;
}

static enum MHD_Result listing(struct MHD_Connection *c, hreq *r, lreq *x)
{
	http_srv *s = r->srv;
	char after[SD_NAME_MAX + 1] = "";
	if (sd__http_arg(c, "after", after, sizeof after) < 0)
		return sd__http_reply_error(c, r, 400, "bad_request", "bad after");
	page p = {json_array(), 0, ""};
	int more = 0;
	int rc = s->api->link_readdir(x->link, x->rel, after[0] ? after : NULL, PAGE_ENTRIES, page_cb,
				      &p, &more);
	if (rc < 0) {
		json_decref(p.entries);
		return sd__http_reply_errno(c, r, rc);
	}
	if (strcmp(r->method, "GET") == 0 && !after[0] &&
	    (rc = s->api->link_use(x->link, SD_LINK_USE_LIST, x->rel)) < 0) {
		json_decref(p.entries);
		return sd__http_reply_errno(c, r, rc);
	}
	if (!x->html) {
		json_t *o = json_pack("{s:o, s:s, s:o, s:b}", "link",
				      sd_json_link(&x->info, s->api->now(s->core)), "path", x->rel,
				      "entries", p.entries, "more", more);
		if (o && more)
			json_object_set_new(o, "next", json_string(p.last));
		return sd__http_reply_json(c, r, 200, o);
	}
	sd_buf b = SD_BUF_INIT, base = SD_BUF_INIT;
	sd_buf_printf(&base, "/s/%s", x->token);
	if (strcmp(x->rel, "/") != 0)
		url_esc(&base, x->rel);
	char title[SD_PATH_MAX + 64];
	snprintf(title, sizeof title, "%s%s", target_name(x), strcmp(x->rel, "/") ? x->rel : "");
	html_head(&b, title);
	sd_buf_puts(&b, "<h1>");
	html_esc(&b, title);
	sd_buf_puts(&b, "</h1>\n<p><a href=\"");
	sd_buf_puts(&b, base.data);
	sd_buf_puts(&b, "/?download=zip\">Download this folder as a .zip</a></p>\n"
			"<table><tr><th>Name</th><th>Size</th><th>Modified (UTC)</th></tr>\n");
	if (strcmp(x->rel, "/") != 0) {
		sd_buf_printf(&b, "<tr><td><a href=\"%s/..\">..</a></td><td></td><td></td></tr>\n",
			      base.data);
	}
	for (size_t i = 0; i < json_array_size(p.entries); i++) {
		json_t *e = json_array_get(p.entries, i);
		const char *name = json_string_value(json_object_get(e, "name"));
		int dir = strcmp(json_string_value(json_object_get(e, "kind")), "dir") == 0;
		char when[40];
		sd_json_time_text(json_integer_value(json_object_get(e, "mtime")) * 1000, 0, when,
				  sizeof when);
		sd_buf_printf(&b, "<tr><td><a href=\"%s/", base.data);
		url_esc(&b, name);
		sd_buf_puts(&b, dir ? "/\">" : "\">");
		html_esc(&b, name);
		sd_buf_puts(&b, dir ? "/</a></td><td></td>" : "</a></td>");
		if (!dir)
			sd_buf_printf(&b, "<td>%lld</td>",
				      (long long)json_integer_value(json_object_get(e, "size")));
		sd_buf_printf(&b, "<td>%s</td></tr>\n", when);
	}
	sd_buf_puts(&b, "</table>\n");
	if (more) {
		sd_buf_printf(&b, "<p><a href=\"%s/?after=", base.data);
		sd_buf e2 = SD_BUF_INIT;
		url_esc(&e2, p.last);
		for (size_t i = 0; i < e2.len; i++) /* '/' never in a name; encode it anyway */
			if (e2.data[i] == '/')
				sd_buf_puts(&b, "%2F");
			else
				sd_buf_append(&b, e2.data + i, 1);
		sd_buf_free(&e2);
		sd_buf_puts(&b, "\">More</a></p>\n");
	}
	json_decref(p.entries);
	sd_buf_free(&base);
	return reply_html(c, r, 200, &b);
}

static enum MHD_Result upload_page(struct MHD_Connection *c, hreq *r, lreq *x)
{
	if (!x->html)
		return sd__http_reply_json(c, r, 200,
					   json_pack("{s:o}", "link",
						     sd_json_link(&x->info, r->srv->api->now(r->srv->core))));
	sd_buf b = SD_BUF_INIT;
	char title[SD_NAME_MAX + 32];
	snprintf(title, sizeof title, "Upload files to %s", target_name(x));
	html_head(&b, title);
	sd_buf_puts(&b, "<h1>");
	html_esc(&b, title);
	sd_buf_printf(&b, "</h1>\n<form method=\"post\" action=\"/s/%s\" "
		      "enctype=\"multipart/form-data\"><input type=\"file\" name=\"file\" multiple> "
		      "<button type=\"submit\">Upload</button></form>\n"
		      "<p>Files that exist already are refused, never replaced.</p>\n",
		      x->token);
	return reply_html(c, r, 200, &b);
}

/* ------------------------------------------------------------ zip */

typedef struct zitem {
	char *name;
	sd_stat st;
} zitem;

typedef struct zframe {
	char *rel;   /* the folder below the link ("/" or "/a/b") */
	char *zname; /* its name in the archive ("top" or "top/a/b") */
	char *after; /* the last name fetched */
	zitem *items;
	int n, i, more;
} zframe;

typedef struct zstream {
	const sd_core_api *api;
	sd_core *core;
	sd_link *link; /* owned */
	http_zip *z;
	sd_buf out;
	size_t out_pos;
	zframe *stack;
	int depth, cap;
	sd_reader *rd;
	uint64_t fsize, foff;
	uint32_t crc;
	int finished;
} zstream;

static int zitem_cb(void *arg, const sd_dirent *e)
{
	zframe *f = arg;
	f->items[f->n].name = sd_xstrdup(e->name);
	f->items[f->n].st = e->st;
	f->n++;
	return 0;
}

static void frame_clear(zframe *f)
{
	for (int i = 0; i < f->n; i++)
		free(f->items[i].name);
	f->n = f->i = 0;
}

/* The next page of f's folder: 0, or -errno. */
static int frame_fetch(zstream *zs, zframe *f)
{
	const char *after = f->after;
	frame_clear(f);
	int more = 0;
	int r = zs->api->link_readdir(zs->link, f->rel, after, ZIP_PAGE, zitem_cb, f, &more);
	f->more = r >= 0 && more;
	if (f->n > 0) {
		free(f->after);
		f->after = sd_xstrdup(f->items[f->n - 1].name);
	}
	return r < 0 ? r : 0;
}

static int frame_push(zstream *zs, const char *rel, const char *zname)
{
	if (zs->depth == zs->cap) {
		zs->cap = zs->cap ? zs->cap * 2 : 8;
		zs->stack = sd_xrealloc(zs->stack, (size_t)zs->cap * sizeof *zs->stack);
	}
	zframe *f = &zs->stack[zs->depth++];
	memset(f, 0, sizeof *f);
	f->rel = sd_xstrdup(rel);
	f->zname = sd_xstrdup(zname);
	f->items = sd_xcalloc(ZIP_PAGE + 1, sizeof *f->items);
	return frame_fetch(zs, f);
}

static void frame_pop(zstream *zs)
{
	zframe *f = &zs->stack[--zs->depth];
	frame_clear(f);
	free(f->items);
	free(f->rel);
	free(f->zname);
	free(f->after);
}

/* The next entry of the walk into the archive: its header into out and,
 * for a file, its reader open. 1 when the walk is over, -errno. */
static int zip_next(zstream *zs)
{
	while (zs->depth > 0) {
		zframe *f = &zs->stack[zs->depth - 1];
		if (f->i >= f->n) {
			if (f->more) {
				int r = frame_fetch(zs, f);
				if (r < 0)
					return r;
				continue;
			}
			frame_pop(zs);
			continue;
		}
		zitem *it = &f->items[f->i++];
		sd_buf rel = SD_BUF_INIT, zn = SD_BUF_INIT;
		sd_buf_printf(&rel, "%s/%s", strcmp(f->rel, "/") ? f->rel : "", it->name);
		sd_buf_printf(&zn, "%s/%s", f->zname, it->name);
		int r = 0;
		if (it->st.kind == SD_KIND_DIR) {
			sd__http_zip_entry(zs->z, zn.data, 1, 0, it->st.mtime, it->st.mode, &zs->out);
			r = frame_push(zs, rel.data, zn.data);
		} else {
			sd_stat st;
			r = zs->api->link_open_read(zs->link, rel.data, &zs->rd, &st);
			if (r == 0) {
				sd__http_zip_entry(zs->z, zn.data, 0, st.size, st.mtime, st.mode, &zs->out);
				zs->fsize = st.size;
				zs->foff = 0;
				zs->crc = 0;
			} else if (r == -ENOENT || r == -EACCES || r == -EISDIR) {
				zs->rd = NULL; /* gone since it was listed, or not readable: left out */
				r = 0;
			}
		}
		sd_buf_free(&rel);
		sd_buf_free(&zn);
		if (r < 0)
			return r;
		if (zs->out.len || zs->rd)
			return 0;
	}
	return 1;
}

static ssize_t zip_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	zstream *zs = cls;
	size_t got = 0;
	while (got < max) {
		if (zs->out_pos < zs->out.len) {
			size_t n = zs->out.len - zs->out_pos;
			if (n > max - got)
				n = max - got;
			memcpy(buf + got, zs->out.data + zs->out_pos, n);
			zs->out_pos += n;
			got += n;
			continue;
		}
		sd_buf_reset(&zs->out);
		zs->out_pos = 0;
		if (zs->rd) {
			if (zs->foff < zs->fsize) {
				size_t want = max - got;
				if (want > zs->fsize - zs->foff)
					want = (size_t)(zs->fsize - zs->foff);
				ssize_t n = zs->api->reader_pread(zs->rd, buf + got, want, zs->foff);
				if (n <= 0)
					goto fail;
				zs->crc = sd__http_zip_crc(zs->crc, buf + got, (size_t)n);
				zs->foff += (uint64_t)n;
				got += (size_t)n;
				continue;
			}
			zs->api->reader_close(zs->rd);
			zs->rd = NULL;
			sd__http_zip_data_end(zs->z, zs->crc, zs->fsize, &zs->out);
			continue;
		}
		if (zs->finished)
			break;
		int r = zip_next(zs);
		if (r < 0)
			goto fail;
		if (r == 1) {
			sd__http_zip_finish(zs->z, &zs->out);
			zs->finished = 1;
		}
	}
	if (got == 0 && zs->finished)
		return MHD_CONTENT_READER_END_OF_STREAM;
	return (ssize_t)got;
fail:
	zs->api->log(zs->core, SD_LOG_ERROR, HTTP_SRC, "event=zip_error link=%lld",
		     (long long)0);
	return MHD_CONTENT_READER_END_WITH_ERROR;
}

static void zip_free(void *cls)
{
	zstream *zs = cls;
	while (zs->depth > 0)
		frame_pop(zs);
	free(zs->stack);
	if (zs->rd)
		zs->api->reader_close(zs->rd);
	zs->api->link_close(zs->link);
	sd__http_zip_free(zs->z);
	sd_buf_free(&zs->out);
	free(zs);
}

static enum MHD_Result zip_folder(struct MHD_Connection *c, hreq *r, lreq *x)
{
	http_srv *s = r->srv;
	const char *top = strcmp(x->rel, "/") ? strrchr(x->rel, '/') + 1 : target_name(x);
	int head = strcmp(r->method, "HEAD") == 0;
	int rc;
	if (!head && (rc = s->api->link_use(x->link, SD_LINK_USE_ZIP, x->rel)) < 0)
		return sd__http_reply_errno(c, r, rc);
	zstream *zs = sd_xcalloc(1, sizeof *zs);
	zs->api = s->api;
	zs->core = s->core;
	zs->z = sd__http_zip_new(sd__http_arg_true(c, "zip64"));
	zs->link = x->link; /* the stream outlives the request's state */
	x->link = NULL;
	sd__http_zip_entry(zs->z, top, 1, 0, s->api->now(s->core), 0755, &zs->out);
	rc = frame_push(zs, x->rel, top);
	if (rc < 0) {
		zip_free(zs);
		return sd__http_reply_errno(c, r, rc);
	}
	struct MHD_Response *resp =
	    MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, zip_read, zs, zip_free);
	if (!resp) {
		zip_free(zs);
		return MHD_NO;
	}
	sd_buf cd = SD_BUF_INIT;
	sd_buf_puts(&cd, "attachment; filename*=UTF-8''");
	url_esc(&cd, top);
	sd_buf_puts(&cd, ".zip");
	MHD_add_response_header(resp, "Content-Type", "application/zip");
	MHD_add_response_header(resp, "Content-Disposition", cd.data);
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	sd_buf_free(&cd);
	s->api->log(s->core, SD_LOG_INFO, HTTP_SRC, "event=link_zip addr=%s path=\"%s\"", r->addr,
		    x->rel);
	return sd__http_queue(c, r, 200, resp, 0);
}

/* ------------------------------------------------------------ files */

/* Is this GET a download (invariant 2)? */
static int is_download(struct MHD_Connection *c, hreq *r)
{
	if (strcmp(r->method, "GET") != 0)
		return 0;
	if (sd__http_hdr(c, "If-None-Match") || sd__http_hdr(c, "If-Modified-Since"))
		return 0;
	const char *range = sd__http_hdr(c, "Range");
	if (!range)
		return 1;
	while (*range == ' ')
		range++;
	return strncasecmp(range, "bytes=0-", 8) == 0;
}

static enum MHD_Result serve_one(struct MHD_Connection *c, hreq *r, lreq *x)
{
	http_srv *s = r->srv;
	int rc;
	if (is_download(c, r) && (rc = s->api->link_use(x->link, SD_LINK_USE_GET, x->rel)) < 0)
		return rc == -ENOENT ? sd__http_reply_error(c, r, 404, "not_found", "no such link")
				     : sd__http_reply_errno(c, r, rc);
	sd_stat st;
	if ((rc = s->api->link_open_read(x->link, x->rel, &r->rd, &st)) < 0) {
		r->rd = NULL;
		return sd__http_reply_errno(c, r, rc);
	}
	const char *name = strcmp(x->rel, "/") ? x->rel : x->info.path;
	unsigned flags = HTTP_SERVE_SANDBOX;
	if (sd__http_arg_true(c, "download"))
		flags |= HTTP_SERVE_ATTACHMENT;
	return sd__http_serve_reader(c, r, &st, name, flags);
}

/* ------------------------------------------------------------ uploads */

static enum MHD_Result finish_put(struct MHD_Connection *c, hreq *r)
{
	http_srv *s = r->srv;
	if (!r->up)
		return sd__http_reply_error(c, r, 500, "internal", "upload lost");
	sd_upload *up = r->up;
	r->up = NULL;
	sd_stat st;
	int rc = s->api->upload_commit(up, r->expect_sha[0] ? r->expect_sha : NULL, &st, NULL);
	if (rc == -SD_ECHECKSUM)
		return sd__http_reply_error(c, r, 400, "checksum_mismatch",
					    "the content does not match X-Checksum-SHA256");
	if (rc < 0)
		return sd__http_reply_errno(c, r, rc);
	s->api->log(s->core, SD_LOG_INFO, HTTP_SRC, "event=link_upload addr=%s name=\"%s\" size=%llu",
		    r->addr, r->shown, (unsigned long long)st.size);
	return sd__http_reply_json(c, r, 201, json_pack("{s:s, s:I, s:s}", "name", r->shown, "size",
							(json_int_t)st.size, "sha256", st.sha256));
}

/* Begin an upload of `name` into the link's folder into *up; checks the
 * Content-Length against the quota. 0 or an error answered (*ret). */
static int begin_upload(struct MHD_Connection *c, hreq *r, lreq *x, const char *name,
			int64_t clen, sd_upload **up, enum MHD_Result *ret)
{
	http_srv *s = r->srv;
	int rc = s->api->link_upload_begin(x->link, name, up);
	if (rc == -EEXIST) {
		*ret = sd__http_reply_error(c, r, 409, "exists", "a file of that name exists: %s", name);
		return -1;
	}
	if (rc < 0) {
		*ret = sd__http_reply_errno(c, r, rc);
		return -1;
	}
	int64_t room = s->api->upload_room(*up);
	if (room >= 0 && clen > room) {
		s->api->upload_abort(*up);
		*up = NULL;
		*ret = sd__http_reply_error(c, r, 507, "quota_exceeded",
					    "the upload would exceed the quota");
		return -1;
	}
	return 0;
}

static enum MHD_Result put_file(struct MHD_Connection *c, hreq *r, lreq *x)
{
	const char *name = x->rel + 1;
	if (!*name || strchr(name, '/'))
		return sd__http_reply_error(c, r, 400, "bad_request", "PUT /s/<token>/<file name>");
	if (sd__http_hdr(c, MHD_HTTP_HEADER_CONTENT_RANGE))
		return sd__http_reply_error(c, r, 400, "partial_put",
					    "Content-Range on an upload is not supported");
	const char *sum = sd__http_hdr(c, "X-Checksum-SHA256");
	if (sum) {
		if (!sd_is_sha256_hex(sum))
			return sd__http_reply_error(c, r, 400, "bad_checksum",
						    "X-Checksum-SHA256 must be 64 hex digits");
		for (int i = 0; i < 64; i++)
			r->expect_sha[i] = (char)(sum[i] >= 'A' && sum[i] <= 'F' ? sum[i] + 32 : sum[i]);
		r->expect_sha[64] = '\0';
	}
	const char *cl = sd__http_hdr(c, MHD_HTTP_HEADER_CONTENT_LENGTH);
	int64_t clen = cl ? strtoll(cl, NULL, 10) : -1;
	enum MHD_Result ret;
	if (begin_upload(c, r, x, name, clen, &r->up, &ret) < 0)
		return ret;
	snprintf(r->shown, sizeof r->shown, "%s", name);
	r->state = RQ_BODY;
	r->body = BODY_UPLOAD;
	r->finish = finish_put;
	return MHD_YES;
}

/* Commit the file the form's current part went into. */
static void form_commit(lreq *x)
{
	if (!x->up)
		return;
	sd_upload *up = x->up;
	x->up = NULL;
	int rc = x->api->upload_commit(up, NULL, NULL, NULL);
	if (rc < 0 && !x->err) {
		x->err = rc;
		snprintf(x->errname, sizeof x->errname, "%s", x->upname);
	} else if (rc == 0) {
		json_array_append_new(x->uploaded, json_string(x->upname));
	}
}

static enum MHD_Result form_part(void *cls, enum MHD_ValueKind kind, const char *key,
				 const char *filename, const char *ctype, const char *enc,
				 const char *data, uint64_t off, size_t size)
{
	(void)kind;
	(void)key;
	(void)ctype;
	(void)enc;
	hreq *r = cls;
	lreq *x = r->body_state;
	if (!filename || x->err)
		return MHD_YES; /* a plain field, or after an error: ignored */
	if (off == 0) {
		form_commit(x);
		/* browsers send the base name; an old one may send a whole path */
		const char *base = filename;
		for (const char *p = filename; *p; p++)
			if (*p == '/' || *p == '\\')
				base = p + 1;
		if (!*base)
			return MHD_YES; /* no file chosen */
		snprintf(x->upname, sizeof x->upname, "%s", base);
		int rc = x->api->link_upload_begin(x->link, x->upname, &x->up);
		if (rc < 0) {
			x->up = NULL;
			x->err = rc;
			snprintf(x->errname, sizeof x->errname, "%s", x->upname);
			return MHD_YES;
		}
	}
	if (x->up && size) {
		int rc = x->api->upload_write(x->up, data, size);
		if (rc < 0) {
			x->api->upload_abort(x->up);
			x->up = NULL;
			x->err = rc;
			snprintf(x->errname, sizeof x->errname, "%s", x->upname);
		}
	}
	return MHD_YES;
}

static int form_feed(hreq *r, const char *data, size_t len)
{
	lreq *x = r->body_state;
	if (MHD_post_process(x->pp, data, len) != MHD_YES) {
		r->err_status = 400;
		snprintf(r->err_code, sizeof r->err_code, "bad_request");
		snprintf(r->err_msg, sizeof r->err_msg, "malformed multipart/form-data body");
		return -1;
	}
	return 0;
}

static enum MHD_Result form_finish(struct MHD_Connection *c, hreq *r)
{
	http_srv *s = r->srv;
	lreq *x = r->body_state;
	if (r->err_status)
		return sd__http_reply_error(c, r, (unsigned)r->err_status, r->err_code, "%s",
					    r->err_msg);
	MHD_destroy_post_processor(x->pp);
	x->pp = NULL;
	form_commit(x);
	size_t n = json_array_size(x->uploaded);
	s->api->log(s->core, SD_LOG_INFO, HTTP_SRC, "event=link_upload addr=%s files=%zu err=%d",
		    r->addr, n, x->err);
	if (x->err && !x->html) {
		const char *code;
		unsigned st = sd__http_status_for(x->err, &code);
		return sd__http_reply_error(c, r, st, code, "%s: %s (stored before it: %zu)",
					    x->errname, s->api->strerror(x->err), n);
	}
	if (!x->html)
		return sd__http_reply_json(c, r, 201, json_pack("{s:O}", "uploaded", x->uploaded));
	sd_buf b = SD_BUF_INIT;
	html_head(&b, "Upload");
	sd_buf_printf(&b, "<h1>%s</h1>\n<ul>\n", x->err ? "Upload stopped" : "Uploaded");
	for (size_t i = 0; i < n; i++) {
		sd_buf_puts(&b, "<li>");
		html_esc(&b, json_string_value(json_array_get(x->uploaded, i)));
		sd_buf_puts(&b, "</li>\n");
	}
	sd_buf_puts(&b, "</ul>\n");
	if (x->err) {
		sd_buf_puts(&b, "<p>Not stored: ");
		html_esc(&b, x->errname);
		sd_buf_puts(&b, " (");
		html_esc(&b, s->api->strerror(x->err));
		sd_buf_puts(&b, ")</p>\n");
	}
	sd_buf_printf(&b, "<p><a href=\"/s/%s\">Upload more</a></p>\n", x->token);
	const char *code;
	return reply_html(c, r, x->err ? sd__http_status_for(x->err, &code) : 201, &b);
}

static enum MHD_Result post_form(struct MHD_Connection *c, hreq *r, lreq *x)
{
	if (strcmp(x->rel, "/") != 0)
		return sd__http_reply_error(c, r, 404, "not_found", "POST the form to /s/<token>");
	const char *ct = sd__http_hdr(c, MHD_HTTP_HEADER_CONTENT_TYPE);
	if (!ct || strncasecmp(ct, "multipart/form-data", 19) != 0)
		return sd__http_reply_error(c, r, 415, "unsupported_media_type",
					    "POST multipart/form-data (or PUT /s/<token>/<name>)");
	x->pp = MHD_create_post_processor(c, 64 * 1024, form_part, r);
	if (!x->pp)
		return sd__http_reply_error(c, r, 400, "bad_request", "bad multipart/form-data");
	x->uploaded = json_array();
	r->state = RQ_BODY;
	r->body = BODY_FEED;
	r->feed = form_feed;
	r->finish = form_finish;
	r->finish_on_error = 1;
	return MHD_YES;
}

/* ------------------------------------------------------------ /s/ */

/* The link password of the request: Basic's password, or X-Link-Password,
 * into pw (NUL-terminated; "" when none). */
static void link_password(struct MHD_Connection *c, char *pw, size_t len)
{
	pw[0] = '\0';
	const char *h = sd__http_hdr(c, "X-Link-Password");
	if (h) {
		snprintf(pw, len, "%s", h);
		return;
	}
	h = sd__http_hdr(c, MHD_HTTP_HEADER_AUTHORIZATION);
	if (!h || strncasecmp(h, "Basic ", 6) != 0 || strlen(h) > 2048)
		return;
	sd_buf d = SD_BUF_INIT;
	if (sd__http_b64decode(h + 6, &d) == 0 && d.len && !memchr(d.data, '\0', d.len)) {
		char *colon = memchr(d.data, ':', d.len);
		if (colon)
			snprintf(pw, len, "%s", colon + 1);
	}
	if (d.data)
		memset(d.data, 0, d.cap);
	sd_buf_free(&d);
}

/* Tidy the path below a link in place: empty components go ("/a//b/" is
 * "/a/b", so listings' hrefs and a zip's top name are right); "." and ".."
 * are refused (-1): a browser never sends them, and a name in a zip must
 * never be one (invariant 5). The engine resolves what is left. */
static int rel_tidy(char *rel)
{
	char *w = rel;
	const char *p = rel;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		size_t n = strcspn(p, "/");
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return -1;
		*w++ = '/';
		memmove(w, p, n);
		w += n;
		p += n;
	}
	if (w == rel)
		*w++ = '/';
	*w = '\0';
	return 0;
}

enum MHD_Result sd__http_link_serve(struct MHD_Connection *c, hreq *r, const char *tail)
{
	http_srv *s = r->srv;
	const char *slash = strchr(tail, '/');
	size_t tl = slash ? (size_t)(slash - tail) : strlen(tail);
	if (tl == 0 || tl >= SD_LINK_TOKEN_MAX)
		return sd__http_reply_error(c, r, 404, "not_found", "no such link");
	lreq *x = sd_xcalloc(1, sizeof *x);
	x->api = s->api;
	r->body_state = x;
	r->body_state_free = lreq_free;
	memcpy(x->token, tail, tl);
	x->token[tl] = '\0';
	x->html = wants_html(c);
	/* the path below the link, decoded once; the engine resolves it */
	sd_buf dec = SD_BUF_INIT;
	int bad = slash && (sd__http_pct_decode(slash, SD_PATH_MAX, &dec) < 0 ||
			    !sd_utf8_valid(dec.data, dec.len) || sd__http_double_encoded(dec.data));
	snprintf(x->rel, sizeof x->rel, "%s", dec.len ? dec.data : "/");
	sd_buf_free(&dec);
	if (!bad)
		bad = rel_tidy(x->rel);
	if (bad)
		return sd__http_reply_error(c, r, 400, "bad_path", "bad path below the link");
	char pw[1100];
	link_password(c, pw, sizeof pw);
	int rc = s->api->link_open(s->core, x->token, pw, r->addr, &x->link, &x->info);
	memset(pw, 0, sizeof pw);
	if (rc == -SD_EBLOCKED) {
		int64_t secs = s->api->auth_blocked_for(s->core, r->addr);
		uint64_t len = 0;
		struct MHD_Response *resp = sd__http_json_response(
		    json_pack("{s:s, s:s}", "error", "blocked", "message",
			      "too many failed attempts from this address"),
		    &len);
		if (!resp)
			return MHD_NO;
		char ra[24];
		snprintf(ra, sizeof ra, "%lld", (long long)(secs > 0 ? secs : 1));
		MHD_add_response_header(resp, "Retry-After", ra);
		return sd__http_queue(c, r, 429, resp, len);
	}
	if (rc == -EACCES) {
		uint64_t len = 0;
		struct MHD_Response *resp = sd__http_json_response(
		    json_pack("{s:s, s:s}", "error", "password_required", "message",
			      "this link needs its password (HTTP Basic, any user name)"),
		    &len);
		if (!resp)
			return MHD_NO;
		MHD_add_response_header(resp, "WWW-Authenticate",
					"Basic realm=\"share link\", charset=\"UTF-8\"");
		return sd__http_queue(c, r, 401, resp, len);
	}
	if (rc < 0) {
		x->link = NULL;
		return sd__http_reply_error(c, r, 404, "not_found", "no such link");
	}
	int get = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
	if (x->info.mode == SD_LINK_UPLOAD) {
		if (get && strcmp(x->rel, "/") == 0)
			return upload_page(c, r, x);
		if (strcmp(r->method, "PUT") == 0)
			return put_file(c, r, x);
		if (strcmp(r->method, "POST") == 0)
			return post_form(c, r, x);
		return sd__http_reply_error(c, r, get ? 404 : 405, get ? "not_found" : "method_not_allowed",
					    "an upload link takes files (POST a form, or PUT a file)");
	}
	if (!get)
		return sd__http_reply_error(c, r, 405, "method_not_allowed",
					    "a read link is for GET and HEAD");
	sd_stat st;
	if ((rc = s->api->link_stat(x->link, x->rel, &st)) < 0)
		return sd__http_reply_errno(c, r, rc);
	if (st.kind == SD_KIND_DIR) {
		char dl[16] = "";
		sd__http_arg(c, "download", dl, sizeof dl);
		if (strcmp(dl, "zip") == 0)
			return zip_folder(c, r, x);
		return listing(c, r, x);
	}
	return serve_one(c, r, x);
}
