/*
 * dav_prop.c - PROPFIND and PROPPATCH (RFC 4918 sections 9.1, 9.2), with
 * the live properties of RFC 4918 and the quota properties of RFC 4331,
 * and dead properties kept by the engine (api->props_get/props_patch).
 *
 * PROPFIND answers are streamed: the request's own resource first, then
 * each folder's entries a page at a time from api->readdir, written into
 * a small buffer that libmicrohttpd drains (chunked). So a Depth: 1 of a
 * folder of 100,000 entries holds one page in memory, never the answer.
 * Depth: infinity is refused (403 propfind-finite-depth) unless
 * dav_depth_infinity allows trees of up to that many entries, counted
 * before the first byte is sent.
 *
 * Live properties: creationdate, displayname, getcontentlength,
 * getcontenttype, getetag (files: the quoted SHA-256), getlastmodified,
 * resourcetype, supportedlock, lockdiscovery, and on folders
 * quota-available-bytes and quota-used-bytes (not in allprop, RFC 4331).
 * They are protected: PROPPATCH of one answers 403. Windows' time
 * properties: Win32LastModifiedTime sets the file's mtime (what
 * getlastmodified and every other protocol show); Win32CreationTime,
 * Win32LastAccessTime and Win32FileAttributes are kept as dead properties.
 *
 * A dead property is kept as its whole element, serialized standalone
 * (dav_xml.c: its namespaces declared on it), and sent back as it is.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "dav.h"

enum live {
	L_CREATIONDATE = 0,
	L_DISPLAYNAME,
	L_GETCONTENTLENGTH,
	L_GETCONTENTTYPE,
	L_GETETAG,
	L_GETLASTMODIFIED,
	L_RESOURCETYPE,
	L_SUPPORTEDLOCK,
	L_LOCKDISCOVERY,
	L_QUOTA_AVAIL,
	L_QUOTA_USED,
	L_COUNT
};

static const char *const live_names[L_COUNT] = {
    "creationdate",   "displayname",     "getcontentlength", "getcontenttype",
    "getetag",        "getlastmodified", "resourcetype",     "supportedlock",
    "lockdiscovery",  "quota-available-bytes", "quota-used-bytes",
};

static int live_id(const char *ns, const char *name)
{
	if (strcmp(ns, DAV_NS) != 0)
		return -1;
	for (int i = 0; i < L_COUNT; i++)
		if (strcmp(live_names[i], name) == 0)
			return i;
	return -1;
}

/* ------------------------------------------------------------ the query */

enum { Q_ALL = 0, Q_NAMES, Q_PROP };

typedef struct pname {
	char *ns, *name;
	int live; /* enum live, or -1 */
} pname;

typedef struct pfq {
	int mode;
	int n;
	pname *names; /* Q_PROP: asked; Q_ALL: <include>d */
	int want_dead; /* the answer needs each resource's dead properties */
} pfq;

static void q_free(pfq *q)
{
	for (int i = 0; i < q->n; i++) {
		free(q->names[i].ns);
		free(q->names[i].name);
	}
	free(q->names);
	q->names = NULL;
	q->n = 0;
}

static void q_add(pfq *q, xmlNodePtr e)
{
	q->names = sd_xrealloc(q->names, (size_t)(q->n + 1) * sizeof *q->names);
	pname *p = &q->names[q->n++];
	p->ns = sd_xstrdup(sd__dav_ns(e));
	p->name = sd_xstrdup((const char *)e->name);
	p->live = live_id(p->ns, p->name);
	if (p->live < 0)
		q->want_dead = 1;
}

/* The PROPFIND body (or none: allprop). 0, or -1 with *why. */
static int q_parse(const dav_req *d, pfq *q, const char **why)
{
	memset(q, 0, sizeof *q);
	q->mode = Q_ALL;
	q->want_dead = 1;
	if (d->body.len == 0)
		return 0;
	xmlDocPtr doc = sd__dav_parse(d->body.data, d->body.len, why);
	if (!doc)
		return -1;
	xmlNodePtr root = xmlDocGetRootElement(doc);
	int r = 0;
	xmlNodePtr k = sd__dav_child(root);
	if (!sd__dav_is(root, DAV_NS, "propfind") || !k) {
		*why = "the body must be a DAV:propfind with allprop, propname or prop";
		r = -1;
	} else if (sd__dav_is(k, DAV_NS, "allprop")) {
		for (xmlNodePtr i = sd__dav_next(k); i; i = sd__dav_next(i))
			if (sd__dav_is(i, DAV_NS, "include"))
				for (xmlNodePtr e = sd__dav_child(i); e; e = sd__dav_next(e))
					q_add(q, e);
	} else if (sd__dav_is(k, DAV_NS, "propname")) {
		q->mode = Q_NAMES;
	} else if (sd__dav_is(k, DAV_NS, "prop")) {
		q->mode = Q_PROP;
		q->want_dead = 0;
		for (xmlNodePtr e = sd__dav_child(k); e; e = sd__dav_next(e))
			q_add(q, e);
	} else {
		*why = "the body must be a DAV:propfind with allprop, propname or prop";
		r = -1;
	}
	xmlFreeDoc(doc);
	return r;
}

/* ------------------------------------------------------------ one resource */

typedef struct dprop {
	char *ns, *name, *value;
} dprop;

typedef struct dprops {
	int n;
	dprop *p;
} dprops;

static int dead_cb(void *arg, const sd_prop *p)
{
	dprops *l = arg;
	l->p = sd_xrealloc(l->p, (size_t)(l->n + 1) * sizeof *l->p);
	l->p[l->n].ns = sd_xstrdup(p->ns);
	l->p[l->n].name = sd_xstrdup(p->name);
	l->p[l->n].value = sd_xstrdup(p->value);
	l->n++;
	return 0;
}

static void dead_free(dprops *l)
{
	for (int i = 0; i < l->n; i++) {
		free(l->p[i].ns);
		free(l->p[i].name);
		free(l->p[i].value);
	}
	free(l->p);
	l->p = NULL;
	l->n = 0;
}

/* Per request: what every resource shares. */
typedef struct pfctx {
	hreq *r;
	pfq q;
	int have_fs;
	sd_fsinfo fs;
} pfctx;

static const char SUPPORTEDLOCK[] =
    "<D:supportedlock>"
    "<D:lockentry><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>"
    "<D:lockentry><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>"
    "</D:supportedlock>";

/* The element of live property id of (path, st) into b: 1, or 0 when the
 * resource has none (404). */
static int live_value(pfctx *x, int id, const char *path, const sd_stat *st, sd_buf *b)
{
	char t[64];
	int dir = st->kind == SD_KIND_DIR;
	switch (id) {
	case L_CREATIONDATE:
		sd__dav_iso_date(st->ctime ? st->ctime : st->mtime, t, sizeof t);
		sd_buf_printf(b, "<D:creationdate>%s</D:creationdate>", t);
		return 1;
	case L_DISPLAYNAME: {
		const char *slash = strrchr(path, '/');
		const char *base = slash ? slash + 1 : path;
		sd_buf_puts(b, "<D:displayname>");
		sd__dav_escs(b, base);
		sd_buf_puts(b, "</D:displayname>");
		return 1;
	}
	case L_GETCONTENTLENGTH:
		if (dir)
			return 0;
		sd_buf_printf(b, "<D:getcontentlength>%llu</D:getcontentlength>",
			      (unsigned long long)st->size);
		return 1;
	case L_GETCONTENTTYPE:
		if (dir)
			return 0;
		sd_buf_puts(b, "<D:getcontenttype>");
		sd__dav_escs(b, sd__http_mime(path));
		sd_buf_puts(b, "</D:getcontenttype>");
		return 1;
	case L_GETETAG:
		if (dir || !st->sha256[0])
			return 0;
		sd_buf_printf(b, "<D:getetag>&quot;%s&quot;</D:getetag>", st->sha256);
		return 1;
	case L_GETLASTMODIFIED:
		sd__http_date(st->mtime, t, sizeof t);
		sd_buf_printf(b, "<D:getlastmodified>%s</D:getlastmodified>", t);
		return 1;
	case L_RESOURCETYPE:
		sd_buf_puts(b, dir ? "<D:resourcetype><D:collection/></D:resourcetype>"
				   : "<D:resourcetype/>");
		return 1;
	case L_SUPPORTEDLOCK:
		sd_buf_puts(b, SUPPORTEDLOCK);
		return 1;
	case L_LOCKDISCOVERY:
		sd_buf_puts(b, "<D:lockdiscovery>");
		sd__dav_lockdiscovery(x->r, path, b);
		sd_buf_puts(b, "</D:lockdiscovery>");
		return 1;
	case L_QUOTA_AVAIL:
	case L_QUOTA_USED: {
		if (!dir)
			return 0;
		if (!x->have_fs) {
			if (x->r->srv->api->fsinfo(x->r->sess, &x->fs) < 0)
				return 0;
			x->have_fs = 1;
		}
		int64_t used = x->fs.used;
		uint64_t avail = x->fs.disk_avail;
		if (x->fs.quota > 0) {
			uint64_t left = x->fs.quota > used ? (uint64_t)(x->fs.quota - used) : 0;
			if (left < avail)
				avail = left;
		}
		if (id == L_QUOTA_USED)
			sd_buf_printf(b, "<D:quota-used-bytes>%lld</D:quota-used-bytes>", (long long)used);
		else
			sd_buf_printf(b, "<D:quota-available-bytes>%llu</D:quota-available-bytes>",
				      (unsigned long long)avail);
		return 1;
	}
	default:
		return 0;
	}
}

static const dprop *dead_find(const dprops *l, const char *ns, const char *name)
{
	for (int i = 0; i < l->n; i++)
		if (strcmp(l->p[i].ns, ns) == 0 && strcmp(l->p[i].name, name) == 0)
			return &l->p[i];
	return NULL;
}

/* The <D:response> of one resource into b. */
static void one_response(pfctx *x, const char *path, const sd_stat *st, sd_buf *b)
{
	hreq *r = x->r;
	dprops dead = {0, NULL};
	if (x->q.want_dead)
		r->srv->api->props_get(r->sess, path, dead_cb, &dead);
	int dir = st->kind == SD_KIND_DIR;
	sd_buf_puts(b, "<D:response><D:href>");
	sd__dav_href(r->srv, b, path, dir);
	sd_buf_puts(b, "</D:href><D:propstat><D:prop>");
	sd_buf missing = SD_BUF_INIT;
	if (x->q.mode == Q_NAMES) {
		for (int i = 0; i < L_COUNT; i++) {
			if (i == L_QUOTA_AVAIL || i == L_QUOTA_USED)
				continue;
			sd_buf tmp = SD_BUF_INIT;
			if (live_value(x, i, path, st, &tmp))
				sd__dav_empty_elem(b, DAV_NS, live_names[i]);
			sd_buf_free(&tmp);
		}
		for (int i = 0; i < dead.n; i++)
			sd__dav_empty_elem(b, dead.p[i].ns, dead.p[i].name);
	} else if (x->q.mode == Q_ALL) {
		for (int i = 0; i < L_COUNT; i++)
			if (i != L_QUOTA_AVAIL && i != L_QUOTA_USED)
				live_value(x, i, path, st, b);
		for (int i = 0; i < dead.n; i++)
			sd_buf_puts(b, dead.p[i].value);
		for (int i = 0; i < x->q.n; i++) /* <include>: the quota ones */
			if (x->q.names[i].live == L_QUOTA_AVAIL || x->q.names[i].live == L_QUOTA_USED)
				live_value(x, x->q.names[i].live, path, st, b);
	} else {
		for (int i = 0; i < x->q.n; i++) {
			const pname *p = &x->q.names[i];
			int found = 0;
			if (p->live >= 0) {
				found = live_value(x, p->live, path, st, b);
			} else {
				if (!x->q.want_dead) { /* first one: fetch them now */
					x->q.want_dead = 1;
					r->srv->api->props_get(r->sess, path, dead_cb, &dead);
				}
				const dprop *d = dead_find(&dead, p->ns, p->name);
				if (d) {
					sd_buf_puts(b, d->value);
					found = 1;
				}
			}
			if (!found)
				sd__dav_empty_elem(&missing, p->ns, p->name);
		}
	}
	sd_buf_puts(b, "</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>");
	if (missing.len) {
		sd_buf_puts(b, "<D:propstat><D:prop>");
		sd_buf_append(b, missing.data, missing.len);
		sd_buf_puts(b, "</D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>");
	}
	sd_buf_puts(b, "</D:response>\n");
	sd_buf_free(&missing);
	dead_free(&dead);
}

/* ------------------------------------------------------------ streaming */

#define PAGE 128
#define MS_HEAD DAV_XML_HEAD "<D:multistatus xmlns:D=\"DAV:\">\n"
#define MS_TAIL "</D:multistatus>\n"

typedef struct pfgen {
	pfctx x;
	int infinite;
	int done;
	sd_buf out;
	size_t off;
	char **dirs; /* folders still to list, in order */
	size_t ndirs, capdirs, di;
	char after[SD_NAME_MAX + 1];
} pfgen;

static void push_dir(pfgen *g, const char *path)
{
	if (g->ndirs == g->capdirs) {
		g->capdirs = g->capdirs ? g->capdirs * 2 : 8;
		g->dirs = sd_xrealloc(g->dirs, g->capdirs * sizeof *g->dirs);
	}
	g->dirs[g->ndirs++] = sd_xstrdup(path);
}

struct page_ctx {
	pfgen *g;
	const char *dir;
	int n;
};

static int gen_cb(void *arg, const sd_dirent *e)
{
	struct page_ctx *p = arg;
	char child[SD_PATH_MAX + 1];
	snprintf(child, sizeof child, "%s%s%s", p->dir, strcmp(p->dir, "/") ? "/" : "", e->name);
	one_response(&p->g->x, child, &e->st, &p->g->out);
	if (p->g->infinite && e->st.kind == SD_KIND_DIR)
		push_dir(p->g, child);
	snprintf(p->g->after, sizeof p->g->after, "%s", e->name);
	p->n++;
	return 0;
}

/* Make the next piece of the answer into g->out; at the end, the tail. */
static void produce(pfgen *g)
{
	while (g->out.len == g->off && !g->done) {
		sd_buf_reset(&g->out);
		g->off = 0;
		if (g->di >= g->ndirs) {
			sd_buf_puts(&g->out, MS_TAIL);
			g->done = 1;
			break;
		}
		const char *dir = g->dirs[g->di];
		struct page_ctx p = {g, dir, 0};
		int more = 0;
		int rc = g->x.r->srv->api->readdir(g->x.r->sess, dir, g->after[0] ? g->after : NULL,
						   PAGE, gen_cb, &p, &more);
		if (rc < 0 || !more) {
			if (rc < 0)
				g->x.r->srv->api->log(g->x.r->srv->core, SD_LOG_WARN, HTTP_SRC,
						      "event=propfind_error dir=\"%s\" err=\"%s\"", dir,
						      g->x.r->srv->api->strerror(rc));
			g->di++;
			g->after[0] = '\0';
		}
	}
}

static ssize_t gen_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	pfgen *g = cls;
	produce(g);
	size_t left = g->out.len - g->off;
	if (left == 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	size_t k = left < max ? left : max;
	memcpy(buf, g->out.data + g->off, k);
	g->off += k;
	g->x.r->bytes_out += k;
	return (ssize_t)k;
}

static void gen_free(void *cls)
{
	pfgen *g = cls;
	q_free(&g->x.q);
	sd_buf_free(&g->out);
	for (size_t i = 0; i < g->ndirs; i++)
		free(g->dirs[i]);
	free(g->dirs);
	free(g);
}

struct count_ctx {
	int64_t n, limit;
	char **dirs;
	size_t nd, cap;
	const char *dir;
	char last[SD_NAME_MAX + 1];
};

static int count_cb(void *arg, const sd_dirent *e)
{
	struct count_ctx *k = arg;
	k->n++;
	snprintf(k->last, sizeof k->last, "%s", e->name);
	if (e->st.kind == SD_KIND_DIR) {
		if (k->nd == k->cap) {
			k->cap = k->cap ? k->cap * 2 : 16;
			k->dirs = sd_xrealloc(k->dirs, k->cap * sizeof *k->dirs);
		}
		char child[SD_PATH_MAX + 1];
		snprintf(child, sizeof child, "%s%s%s", k->dir, strcmp(k->dir, "/") ? "/" : "", e->name);
		k->dirs[k->nd++] = sd_xstrdup(child);
	}
	return k->n > k->limit; /* stop once past the limit */
}

/* Entries below path, counted up to limit + 1. */
static int64_t count_tree(hreq *r, const char *path, int64_t limit)
{
	struct count_ctx k = {0, limit, NULL, 0, 0, NULL, ""};
	k.dirs = sd_xmalloc(sizeof *k.dirs);
	k.dirs[0] = sd_xstrdup(path);
	k.nd = 1;
	while (k.nd > 0 && k.n <= limit) {
		char *dir = k.dirs[--k.nd];
		k.dir = dir;
		k.last[0] = '\0';
		int more = 1;
		while (more && k.n <= limit) {
			more = 0;
			char after[SD_NAME_MAX + 1];
			snprintf(after, sizeof after, "%s", k.last);
			if (r->srv->api->readdir(r->sess, dir, after[0] ? after : NULL, 1000, count_cb, &k,
						 &more) < 0)
				break;
		}
		free(dir);
	}
	while (k.nd > 0)
		free(k.dirs[--k.nd]);
	free(k.dirs);
	return k.n;
}

enum MHD_Result sd__dav_propfind(struct MHD_Connection *c, hreq *r)
{
	dav_req *d = r->body_state;
	const char *why = NULL;
	int depth = sd__dav_depth(c, -1);
	if (depth == -2)
		return sd__dav_error(c, r, 400, NULL, NULL, "Depth must be 0, 1 or infinity");
	pfgen *g = sd_xcalloc(1, sizeof *g);
	g->x.r = r;
	if (q_parse(d, &g->x.q, &why) < 0) {
		gen_free(g);
		return sd__dav_error(c, r, 400, NULL, NULL, "%s", why);
	}
	sd_stat st;
	int rc = r->srv->api->stat(r->sess, r->path.data, &st);
	if (rc < 0) {
		gen_free(g);
		return sd__dav_errno(c, r, rc);
	}
	int dir = st.kind == SD_KIND_DIR;
	if (depth == -1 && dir) {
		int64_t lim = r->srv->conf->dav_depth_infinity;
		if (lim == 0 || count_tree(r, r->path.data, lim) > lim) {
			gen_free(g);
			return sd__dav_error(c, r, 403, "propfind-finite-depth", NULL,
					     lim ? "the tree has more than %lld entries: use Depth 0 or 1"
						 : "Depth: infinity is not served here: use Depth 0 or "
						   "1 (%lld)",
					     (long long)lim);
		}
		g->infinite = 1;
	}
	sd_buf_puts(&g->out, MS_HEAD);
	one_response(&g->x, r->shown, &st, &g->out);
	if (!dir || depth == 0) {
		sd_buf_puts(&g->out, MS_TAIL);
		sd_buf b = g->out;
		g->out = (sd_buf)SD_BUF_INIT;
		gen_free(g);
		return sd__dav_reply_xml(c, r, 207, &b);
	}
	push_dir(g, r->shown);
	struct MHD_Response *resp =
	    MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, gen_read, g, gen_free);
	if (!resp) {
		gen_free(g);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "application/xml; charset=utf-8");
	return sd__http_queue(c, r, 207, resp, 0);
}

/* ------------------------------------------------------------ PROPPATCH */

typedef struct pop {
	xmlNodePtr e;
	int set;
	int status;   /* 0 = fine so far */
	int mtime;    /* Win32LastModifiedTime (set) */
	int64_t t;
	sd_buf value; /* set: the element as XML */
} pop;

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 403: return "Forbidden";
	case 409: return "Conflict";
	case 423: return "Locked";
	case 424: return "Failed Dependency";
	case 507: return "Insufficient Storage";
	case 404: return "Not Found";
	case 400: return "Bad Request";
	default: return "Internal Server Error";
	}
}

/* 207 with each property and its status. */
static enum MHD_Result patch_answer(struct MHD_Connection *c, hreq *r, pop *ops, int n)
{
	sd_buf b = SD_BUF_INIT;
	sd_buf_puts(&b, MS_HEAD "<D:response><D:href>");
	sd_stat st;
	int dir = r->srv->api->stat(r->sess, r->path.data, &st) == 0 && st.kind == SD_KIND_DIR;
	sd__dav_href(r->srv, &b, r->shown, dir);
	sd_buf_puts(&b, "</D:href>");
	for (int i = 0; i < n; i++) {
		sd_buf_puts(&b, "<D:propstat><D:prop>");
		sd__dav_empty_elem(&b, sd__dav_ns(ops[i].e), (const char *)ops[i].e->name);
		sd_buf_printf(&b, "</D:prop><D:status>HTTP/1.1 %d %s</D:status>", ops[i].status,
			      reason(ops[i].status));
		if (ops[i].status == 403)
			sd_buf_puts(&b, "<D:error><D:cannot-modify-protected-property/></D:error>");
		sd_buf_puts(&b, "</D:propstat>");
	}
	sd_buf_puts(&b, "</D:response>\n" MS_TAIL);
	return sd__dav_reply_xml(c, r, 207, &b);
}

enum MHD_Result sd__dav_proppatch(struct MHD_Connection *c, hreq *r)
{
	dav_req *d = r->body_state;
	const char *why = NULL;
	enum MHD_Result ret;
	if (d->body.len == 0)
		return sd__dav_error(c, r, 400, NULL, NULL, "PROPPATCH needs a DAV:propertyupdate body");
	xmlDocPtr doc = sd__dav_parse(d->body.data, d->body.len, &why);
	if (!doc)
		return sd__dav_error(c, r, 400, NULL, NULL, "%s", why);
	xmlNodePtr root = xmlDocGetRootElement(doc);
	pop *ops = NULL;
	int n = 0, bad = 0;
	if (!sd__dav_is(root, DAV_NS, "propertyupdate")) {
		xmlFreeDoc(doc);
		return sd__dav_error(c, r, 400, NULL, NULL, "the body must be a DAV:propertyupdate");
	}
	for (xmlNodePtr k = sd__dav_child(root); k; k = sd__dav_next(k)) {
		int set = sd__dav_is(k, DAV_NS, "set");
		if (!set && !sd__dav_is(k, DAV_NS, "remove"))
			continue;
		for (xmlNodePtr pr = sd__dav_child(k); pr; pr = sd__dav_next(pr)) {
			if (!sd__dav_is(pr, DAV_NS, "prop"))
				continue;
			for (xmlNodePtr e = sd__dav_child(pr); e; e = sd__dav_next(e)) {
				ops = sd_xrealloc(ops, (size_t)(n + 1) * sizeof *ops);
				pop *o = &ops[n++];
				memset(o, 0, sizeof *o);
				o->e = e;
				o->set = set;
				const char *ns = sd__dav_ns(e), *name = (const char *)e->name;
				if (live_id(ns, name) >= 0) {
					o->status = 403;
				} else if (!strcmp(ns, DAV_MS_NS) && !strcmp(name, "Win32LastModifiedTime")) {
					if (set) {
						char *t = sd__dav_text(e);
						o->t = sd__http_parse_date(t);
						free(t);
						o->mtime = 1;
						if (o->t < 0)
							o->status = 409;
					}
				} else if (set) {
					if (sd__dav_elem_xml(e, &o->value) < 0)
						o->status = 500;
					else if (o->value.len > SD_PROP_VALUE_MAX ||
						 strlen(ns) + strlen(name) > SD_PROP_NAME_MAX)
						o->status = 507;
				}
				bad |= o->status != 0;
			}
		}
	}
	if (n == 0 || n > SD_PROPS_MAX) {
		for (int i = 0; i < n; i++)
			sd_buf_free(&ops[i].value);
		free(ops);
		xmlFreeDoc(doc);
		return sd__dav_error(c, r, n ? 507 : 400, NULL, NULL,
				     n ? "too many properties in one PROPPATCH"
				       : "the propertyupdate names no property");
	}
	sd_stat st;
	int rc = r->srv->api->stat(r->sess, r->path.data, &st);
	if (rc == 0 && !bad && sd__dav_if(c, r, &ret) < 0)
		goto answered;
	if (rc < 0) {
		ret = sd__dav_errno(c, r, rc);
		goto answered;
	}
	if (!bad) {
		/* Windows' mtime first (the last one given), then the dead
		 * properties in one engine transaction */
		int64_t mt = -1;
		for (int i = 0; i < n; i++)
			if (ops[i].mtime)
				mt = ops[i].t;
		if (mt >= 0)
			rc = r->srv->api->set_mtime(r->sess, r->path.data, mt);
		sd_prop *dp = sd_xcalloc((size_t)n, sizeof *dp);
		int k = 0;
		for (int i = 0; i < n && rc == 0; i++) {
			if (ops[i].mtime || (!ops[i].set && !strcmp(sd__dav_ns(ops[i].e), DAV_MS_NS) &&
					     !strcmp((const char *)ops[i].e->name, "Win32LastModifiedTime")))
				continue;
			dp[k].ns = sd__dav_ns(ops[i].e);
			dp[k].name = (const char *)ops[i].e->name;
			dp[k].value = ops[i].set ? (ops[i].value.data ? ops[i].value.data : "") : NULL;
			dp[k].len = ops[i].set ? ops[i].value.len : 0;
			k++;
		}
		if (rc == 0 && k > 0)
			rc = r->srv->api->props_patch(r->sess, r->path.data, dp, k);
		free(dp);
		if (rc == -EBUSY || rc == -SD_EAUTH || rc == -EROFS || rc == -EACCES ||
		    rc == -ENOENT) {
			ret = sd__dav_errno(c, r, rc);
			goto answered;
		}
		const char *code;
		int st2 = rc == 0 ? 200 : rc == -ENOSPC || rc == -EFBIG ? 507
						: (int)sd__http_status_for(rc, &code);
		for (int i = 0; i < n; i++)
			ops[i].status = st2;
	} else {
		for (int i = 0; i < n; i++)
			if (!ops[i].status)
				ops[i].status = 424;
	}
	ret = patch_answer(c, r, ops, n);
answered:
	for (int i = 0; i < n; i++)
		sd_buf_free(&ops[i].value);
	free(ops);
	xmlFreeDoc(doc);
	return ret;
}

/* ------------------------------------------------------------ COPY */

int sd__dav_copy_props(hreq *r, const char *from, const char *to)
{
	dprops l = {0, NULL};
	int rc = r->srv->api->props_get(r->sess, from, dead_cb, &l);
	if (rc > 0) {
		sd_prop *p = sd_xcalloc((size_t)l.n, sizeof *p);
		for (int i = 0; i < l.n; i++)
			p[i] = (sd_prop){l.p[i].ns, l.p[i].name, l.p[i].value, strlen(l.p[i].value)};
		rc = r->srv->api->props_patch(r->sess, to, p, l.n);
		free(p);
	}
	dead_free(&l);
	return rc < 0 ? rc : 0;
}
