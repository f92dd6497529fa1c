/*
 * dav_if.c - the If header of WebDAV (RFC 4918 section 10.4), and URLs of
 * the DAV space (Destination, resource tags) turned into user paths.
 *
 *   If          = 1*No-tag-list | 1*Tagged-list
 *   Tagged-list = Resource-Tag 1*List        Resource-Tag = "<" URL ">"
 *   List        = "(" 1*Condition ")"
 *   Condition   = ["Not"] (State-token | "[" entity-tag "]")
 *   State-token = "<" URI ">"
 *
 * Evaluation: a condition on an entity tag holds when the resource's ETag
 * (the quoted SHA-256 of a file; folders have none) is that tag; one on a
 * state token holds when a live lock covering the resource has that token
 * (so "DAV:no-lock" never holds); Not inverts. A list holds when all its
 * conditions hold, for the request's resource or the list's tag. The
 * header holds when at least one list does; when it does not, the answer
 * is 412. A tag outside this server's DAV space makes its lists false.
 *
 * Submission: when the header holds, every state token it names outside a
 * Not is submitted on the request's session (api->lock_submit), so the
 * engine lets this request change what those locks cover; a wrong token
 * then meets the engine's -EBUSY (423), as RFC 4918 wants.
 *
 * Bounds: at most IF_MAX_LISTS lists and IF_MAX_CONDS conditions; tokens
 * and tags are bounded by the header size (max_header_size).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dav.h"

#define IF_MAX_LISTS 64
#define IF_MAX_CONDS 256

typedef struct ifcond {
	int not, etag;
	char *v; /* the token, or the entity tag with its quotes */
} ifcond;

typedef struct iflist {
	char *tag; /* NULL: the request's resource */
	int first, n;
} iflist;

typedef struct ifhdr {
	int nl, nc;
	iflist l[IF_MAX_LISTS];
	ifcond c[IF_MAX_CONDS];
} ifhdr;

static void if_free(ifhdr *h)
{
	for (int i = 0; i < h->nl; i++)
		free(h->l[i].tag);
	for (int i = 0; i < h->nc; i++)
		free(h->c[i].v);
	free(h);
}

static void skip_ws(const char **p)
{
	while (**p == ' ' || **p == '\t' || **p == '\r' || **p == '\n')
		(*p)++;
}

/* Text up to the closing ch (no nesting) as a new string; advances past
 * it. NULL when there is none. */
static char *until(const char **p, char ch)
{
	const char *e = strchr(*p, ch);
	if (!e)
		return NULL;
	char *s = sd_xmalloc((size_t)(e - *p) + 1);
	memcpy(s, *p, (size_t)(e - *p));
	s[e - *p] = '\0';
	*p = e + 1;
	return s;
}

/* An entity tag inside "[...]": a quoted string (which may hold ']'),
 * W/ allowed. */
static char *etag_until(const char **p)
{
	const char *s = *p;
	skip_ws(&s);
	const char *start = s;
	if (s[0] == 'W' && s[1] == '/')
		s += 2;
	if (*s != '"')
		return NULL;
	const char *q = strchr(s + 1, '"');
	if (!q)
		return NULL;
	const char *e = q + 1;
	skip_ws(&e);
	if (*e != ']')
		return NULL;
	char *v = sd_xmalloc((size_t)(q + 1 - start) + 1);
	memcpy(v, start, (size_t)(q + 1 - start));
	v[q + 1 - start] = '\0';
	*p = e + 1;
	return v;
}

/* Parse the header: NULL when malformed (400). */
static ifhdr *if_parse(const char *s)
{
	ifhdr *h = sd_xcalloc(1, sizeof *h);
	const char *p = s;
	char *tag = NULL;
	int tagged = -1; /* unknown until the first production */
	for (;;) {
		skip_ws(&p);
		if (!*p)
			break;
		if (*p == '<') {
			if (tagged == 0)
				goto bad;
			tagged = 1;
			p++;
			free(tag);
			if (!(tag = until(&p, '>')) || !*tag)
				goto bad;
			skip_ws(&p);
			if (*p != '(')
				goto bad;
			continue;
		}
		if (*p != '(')
			goto bad;
		if (tagged < 0)
			tagged = 0;
		if (h->nl >= IF_MAX_LISTS)
			goto bad;
		p++;
		iflist *l = &h->l[h->nl++];
		l->tag = tag ? sd_xstrdup(tag) : NULL;
		l->first = h->nc;
		for (;;) {
			skip_ws(&p);
			if (*p == ')') {
				p++;
				break;
			}
			if (h->nc >= IF_MAX_CONDS)
				goto bad;
			ifcond *c = &h->c[h->nc];
			if (strncasecmp(p, "Not", 3) == 0 && (p[3] == ' ' || p[3] == '\t' ||
							       p[3] == '<' || p[3] == '[')) {
				c->not = 1;
				p += 3;
				skip_ws(&p);
			}
			if (*p == '<') {
				p++;
				if (!(c->v = until(&p, '>')) || !*c->v)
					goto bad_cond;
			} else if (*p == '[') {
				p++;
				c->etag = 1;
				if (!(c->v = etag_until(&p)))
					goto bad_cond;
			} else {
				goto bad;
			}
			h->nc++;
			l->n++;
		}
		if (l->n == 0)
			goto bad;
	}
	free(tag);
	if (h->nl == 0) {
		if_free(h);
		return NULL;
	}
	return h;
bad_cond:
	free(h->c[h->nc].v);
	h->c[h->nc].v = NULL;
bad:
	free(tag);
	if_free(h);
	return NULL;
}

/* ------------------------------------------------------------ URLs */

int sd__dav_url_path(struct MHD_Connection *c, hreq *r, const char *url, int strict, sd_buf *out)
{
	const char *p = url;
	while (*p == ' ')
		p++;
	size_t skip = 0;
	if (strncasecmp(p, "http://", 7) == 0)
		skip = 7;
	else if (strncasecmp(p, "https://", 8) == 0)
		skip = 8;
	if (skip) {
		const char *auth = p + skip, *slash = strchr(auth, '/');
		size_t alen = slash ? (size_t)(slash - auth) : strlen(auth);
		const char *host = sd__http_hdr(c, "Host");
		if (!host || strlen(host) != alen || strncasecmp(host, auth, alen) != 0)
			return -EXDEV;
		p = slash ? slash : "/";
	} else if (*p != '/') {
		return -EINVAL;
	}
	if (strpbrk(p, "?# \t"))
		return -EINVAL;
	const char *tail = sd__dav_match(r->srv, p);
	if (!tail)
		return -EXDEV;
	sd_buf_reset(out);
	sd_buf_puts(out, "/");
	int rc = sd__http_pct_decode(tail, SD_PATH_MAX, out);
	if (rc < 0)
		return rc;
	if (sd__http_double_encoded(out->data))
		return -EINVAL;
	if (!sd_utf8_valid(out->data, out->len))
		return -EINVAL;
	if (strict) {
		/* a "." or ".." segment in a URL a client built itself */
		for (const char *s = out->data; s && *s;) {
			const char *seg = s + 1, *e = strchr(seg, '/');
			size_t n = e ? (size_t)(e - seg) : strlen(seg);
			if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
				return -EINVAL;
			s = e;
		}
	}
	return 0;
}

/* ------------------------------------------------------------ evaluation */

/* What a resource is, for conditions. */
typedef struct ifres {
	char path[SD_PATH_MAX + 1]; /* as given to the engine */
	int known;                  /* the path maps into the space */
	int exists;
	char etag[SD_SHA256_HEX + 2];
	int ntok;
	char tok[16][SD_LOCKTOKEN_MAX];
} ifres;

static int tok_cb(void *arg, const sd_lock_info *l)
{
	ifres *x = arg;
	if (x->ntok < 16)
		snprintf(x->tok[x->ntok++], SD_LOCKTOKEN_MAX, "%s", l->token);
	return 0;
}

static void res_load(hreq *r, ifres *x, const char *path)
{
	memset(x, 0, sizeof *x);
	snprintf(x->path, sizeof x->path, "%s", path);
	x->known = 1;
	sd_stat st;
	if (r->srv->api->stat(r->sess, path, &st) == 0) {
		x->exists = 1;
		if (st.kind == SD_KIND_FILE)
			snprintf(x->etag, sizeof x->etag, "\"%s\"", st.sha256);
	}
	r->srv->api->lock_discover(r->sess, path, 0, tok_cb, x);
}

static int cond_holds(const ifres *x, const ifcond *c)
{
	int v = 0;
	if (!x->known)
		v = 0;
	else if (c->etag) {
		const char *t = c->v;
		if (t[0] == 'W' && t[1] == '/')
			t += 2; /* weak comparison: our tags are strong */
		v = x->etag[0] && strcmp(t, x->etag) == 0;
	} else {
		for (int i = 0; i < x->ntok && !v; i++)
			v = strcmp(x->tok[i], c->v) == 0;
	}
	return c->not ? !v : v;
}

int sd__dav_if(struct MHD_Connection *c, hreq *r, enum MHD_Result *ret)
{
	const char *hv = sd__http_hdr(c, "If");
	if (!hv)
		return 0;
	ifhdr *h = if_parse(hv);
	if (!h) {
		*ret = sd__dav_error(c, r, 400, NULL, NULL, "malformed If header");
		return -1;
	}
	/* resources: the request's, then each tag's (loaded once each) */
	ifres *res = sd_xcalloc((size_t)h->nl + 1, sizeof *res);
	int nres = 0;
	res_load(r, &res[nres++], r->path.data);
	int holds = 0;
	for (int i = 0; i < h->nl && !holds; i++) {
		iflist *l = &h->l[i];
		ifres *x = &res[0];
		if (l->tag) {
			sd_buf tp = SD_BUF_INIT;
			int known = sd__dav_url_path(c, r, l->tag, 0, &tp) == 0;
			x = NULL;
			for (int k = 1; known && k < nres && !x; k++)
				if (strcmp(res[k].path, tp.data) == 0)
					x = &res[k];
			if (!x) {
				x = &res[nres++];
				if (known)
					res_load(r, x, tp.data);
				else
					memset(x, 0, sizeof *x);
			}
			sd_buf_free(&tp);
		}
		int all = 1;
		for (int k = 0; k < l->n && all; k++)
			all = cond_holds(x, &h->c[l->first + k]);
		holds = all;
	}
	free(res);
	if (!holds) {
		if_free(h);
		*ret = sd__dav_error(c, r, 412, NULL, NULL, "the If header does not hold");
		return -1;
	}
	const char *toks[SD_LOCK_SUBMIT_MAX];
	int n = 0;
	for (int i = 0; i < h->nc && n < SD_LOCK_SUBMIT_MAX; i++) {
		const ifcond *k = &h->c[i];
		if (k->etag || k->not || strlen(k->v) >= SD_LOCKTOKEN_MAX)
			continue;
		int dup = 0;
		for (int j = 0; j < n && !dup; j++)
			dup = strcmp(toks[j], k->v) == 0;
		if (!dup)
			toks[n++] = k->v;
	}
	int rc = r->srv->api->lock_submit(r->sess, toks, n);
	if_free(h);
	if (rc < 0) {
		*ret = sd__dav_errno(c, r, rc);
		return -1;
	}
	return 0;
}

int sd__dav_if_tokens(struct MHD_Connection *c, char (*toks)[SD_LOCKTOKEN_MAX], int max)
{
	const char *hv = sd__http_hdr(c, "If");
	if (!hv)
		return 0;
	ifhdr *h = if_parse(hv);
	if (!h)
		return 0;
	int n = 0;
	for (int i = 0; i < h->nc && n < max; i++)
		if (!h->c[i].etag && !h->c[i].not && strlen(h->c[i].v) < SD_LOCKTOKEN_MAX)
			snprintf(toks[n++], SD_LOCKTOKEN_MAX, "%s", h->c[i].v);
	if_free(h);
	return n;
}
