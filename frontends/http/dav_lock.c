/*
 * dav_lock.c - LOCK and UNLOCK (RFC 4918 sections 9.10, 9.11), on the
 * engine's write locks (api->lock and friends, core/lock.c): the engine
 * holds them, so a locked file refuses a conflicting SFTP or handle-API
 * write open, and every protocol's change meets them.
 *
 *   LOCK with a lockinfo body   a new lock: exclusive or shared, write,
 *                               Depth 0 or infinity (folders), the
 *                               client's owner element kept as it came;
 *                               on an unmapped URL the lock is taken, then
 *                               an empty file is made with its token
 *                               (RFC 4918 7.3: 201 Created)
 *   LOCK without a body         a refresh of the lock the If header names
 *   UNLOCK                      the lock of the Lock-Token header
 *
 * Timeouts: the Timeout header's first value we understand ("Second-N",
 * "Infinite"), capped at dav_lock_max_timeout; dav_lock_timeout when none
 * (and for Infinite).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/parser.h>

#include "dav.h"

/* ------------------------------------------------------------ discovery */

void sd__dav_activelock(hreq *r, const sd_lock_info *l, sd_buf *b)
{
	http_srv *s = r->srv;
	int64_t left = l->expires / 1000 - s->api->now(s->core);
	if (left < 0)
		left = 0;
	sd_buf_printf(b,
		      "<D:activelock><D:locktype><D:write/></D:locktype>"
		      "<D:lockscope><D:%s/></D:lockscope><D:depth>%s</D:depth>",
		      (l->flags & SD_LOCK_SHARED) ? "shared" : "exclusive",
		      (l->flags & SD_LOCK_INFINITE) ? "infinity" : "0");
	if (l->owner[0])
		sd_buf_puts(b, l->owner); /* the client's own <D:owner> element */
	sd_buf_printf(b, "<D:timeout>Second-%lld</D:timeout><D:locktoken><D:href>", (long long)left);
	sd__dav_escs(b, l->token);
	sd_buf_puts(b, "</D:href></D:locktoken><D:lockroot><D:href>");
	sd_stat st;
	int dir = s->api->stat(r->sess, l->root, &st) == 0 && st.kind == SD_KIND_DIR;
	sd__dav_href(s, b, l->root, dir);
	sd_buf_puts(b, "</D:href></D:lockroot></D:activelock>");
}

struct disc_ctx {
	hreq *r;
	sd_buf *b;
};

static int disc_cb(void *arg, const sd_lock_info *l)
{
	struct disc_ctx *x = arg;
	sd__dav_activelock(x->r, l, x->b);
	return 0;
}

void sd__dav_lockdiscovery(hreq *r, const char *path, sd_buf *b)
{
	struct disc_ctx x = {r, b};
	r->srv->api->lock_discover(r->sess, path, 0, disc_cb, &x);
}

/* ------------------------------------------------------------ LOCK */

/* Seconds to grant, from the Timeout header. */
static int64_t timeout_secs(struct MHD_Connection *c, const http_conf *cf)
{
	int64_t def = cf->dav_lock_timeout / 1000, max = cf->dav_lock_max_timeout / 1000;
	const char *h = sd__http_hdr(c, "Timeout");
	while (h && *h) {
		while (*h == ' ' || *h == ',')
			h++;
		if (strncasecmp(h, "Infinite", 8) == 0)
			return def;
		if (strncasecmp(h, "Second-", 7) == 0) {
			char *end;
			long long v = strtoll(h + 7, &end, 10);
			if (end != h + 7 && v > 0)
				return v > max ? max : v;
		}
		h = strchr(h, ',');
	}
	return def;
}

/* The answer of a granted or refreshed lock. */
static enum MHD_Result lock_answer(struct MHD_Connection *c, hreq *r, unsigned status,
				   const sd_lock_info *l, int token_header)
{
	sd_buf b = SD_BUF_INIT;
	sd_buf_puts(&b, DAV_XML_HEAD "<D:prop xmlns:D=\"DAV:\"><D:lockdiscovery>");
	sd__dav_activelock(r, l, &b);
	sd_buf_puts(&b, "</D:lockdiscovery></D:prop>\n");
	size_t n = b.len;
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(n, sd_buf_steal(&b), MHD_RESPMEM_MUST_FREE);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "application/xml; charset=utf-8");
	if (token_header) {
		char tok[SD_LOCKTOKEN_MAX + 2];
		snprintf(tok, sizeof tok, "<%s>", l->token);
		MHD_add_response_header(resp, "Lock-Token", tok);
	}
	return sd__http_queue(c, r, status, resp, n);
}

static enum MHD_Result refresh(struct MHD_Connection *c, hreq *r, int64_t secs)
{
	char toks[SD_LOCK_SUBMIT_MAX][SD_LOCKTOKEN_MAX];
	if (!sd__http_hdr(c, "If"))
		return sd__dav_error(c, r, 400, NULL, NULL,
				     "a LOCK without a body refreshes a lock: name it in an If header");
	int n = sd__dav_if_tokens(c, toks, SD_LOCK_SUBMIT_MAX);
	for (int i = 0; i < n; i++) {
		sd_lock_info li;
		if (r->srv->api->lock_refresh(r->sess, r->path.data, toks[i], secs, &li) == 0)
			return lock_answer(c, r, 200, &li, 0);
	}
	return sd__dav_error(c, r, 412, "lock-token-matches-request-uri", NULL,
			     "no lock named in the If header covers %s", r->shown);
}

enum MHD_Result sd__dav_lock(struct MHD_Connection *c, hreq *r)
{
	const sd_core_api *api = r->srv->api;
	dav_req *d = r->body_state;
	enum MHD_Result ret;
	int64_t secs = timeout_secs(c, r->srv->conf);
	int depth = sd__dav_depth(c, -1);
	if (depth == 1 || depth == -2)
		return sd__dav_error(c, r, 400, NULL, NULL, "LOCK takes Depth: 0 or infinity");
	if (d->body.len == 0)
		return refresh(c, r, secs);
	const char *why = NULL;
	xmlDocPtr doc = sd__dav_parse(d->body.data, d->body.len, &why);
	if (!doc)
		return sd__dav_error(c, r, 400, NULL, NULL, "%s", why);
	xmlNodePtr root = xmlDocGetRootElement(doc);
	int shared = -1, write = 0;
	sd_buf owner = SD_BUF_INIT;
	if (sd__dav_is(root, DAV_NS, "lockinfo")) {
		for (xmlNodePtr k = sd__dav_child(root); k; k = sd__dav_next(k)) {
			xmlNodePtr v = sd__dav_child(k);
			if (sd__dav_is(k, DAV_NS, "lockscope"))
				shared = sd__dav_is(v, DAV_NS, "shared")      ? 1
					 : sd__dav_is(v, DAV_NS, "exclusive") ? 0
									     : -1;
			else if (sd__dav_is(k, DAV_NS, "locktype"))
				write = sd__dav_is(v, DAV_NS, "write");
			else if (sd__dav_is(k, DAV_NS, "owner"))
				sd__dav_elem_xml(k, &owner);
		}
	}
	xmlFreeDoc(doc);
	if (shared < 0 || !write) {
		sd_buf_free(&owner);
		return sd__dav_error(c, r, 400, NULL, NULL,
				     "the body must be a DAV:lockinfo with a lockscope "
				     "(exclusive or shared) and a locktype of write");
	}
	if (owner.len >= SD_LOCKOWNER_MAX) {
		sd_buf_free(&owner);
		return sd__dav_error(c, r, 400, NULL, NULL, "the owner element is over %d bytes",
				     SD_LOCKOWNER_MAX - 1);
	}
	if (sd__dav_if(c, r, &ret) < 0) {
		sd_buf_free(&owner);
		return ret;
	}
	sd_stat st;
	int rc = api->stat(r->sess, r->path.data, &st);
	int exists = rc == 0;
	if (rc < 0 && rc != -ENOENT) {
		sd_buf_free(&owner);
		return sd__dav_errno(c, r, rc);
	}
	unsigned flags = (shared ? SD_LOCK_SHARED : 0) |
			 (exists && st.kind == SD_KIND_DIR && depth == -1 ? SD_LOCK_INFINITE : 0);
	sd_lock_info li;
	rc = api->lock(r->sess, r->path.data, flags, secs, owner.data ? owner.data : "", &li);
	sd_buf_free(&owner);
	if (rc == -ENOENT || rc == -ENOTDIR)
		return sd__dav_error(c, r, 409, NULL, NULL, "the parent folder does not exist");
	if (rc < 0)
		return sd__dav_errno(c, r, rc);
	if (!exists) {
		/* RFC 4918 7.3: an empty file, made with the new lock's token */
		char toks[SD_LOCK_SUBMIT_MAX][SD_LOCKTOKEN_MAX];
		int n = sd__dav_if_tokens(c, toks, SD_LOCK_SUBMIT_MAX - 1);
		const char *tp[SD_LOCK_SUBMIT_MAX];
		for (int i = 0; i < n; i++)
			tp[i] = toks[i];
		tp[n++] = li.token;
		sd_upload *up = NULL;
		rc = api->lock_submit(r->sess, tp, n);
		if (rc == 0)
			rc = api->upload_begin(r->sess, r->path.data, SD_UP_EXCL, 0, 0644, &up);
		if (rc == 0)
			rc = api->upload_commit(up, NULL, NULL, NULL);
		if (rc < 0 && rc != -EEXIST) {
			api->unlock(r->sess, r->path.data, li.token);
			return sd__dav_errno(c, r, rc);
		}
	}
	return lock_answer(c, r, exists ? 200 : 201, &li, 1);
}

/* ------------------------------------------------------------ UNLOCK */

enum MHD_Result sd__dav_unlock(struct MHD_Connection *c, hreq *r)
{
	const char *h = sd__http_hdr(c, "Lock-Token");
	char tok[SD_LOCKTOKEN_MAX];
	size_t n = h ? strlen(h) : 0;
	while (h && n && (*h == ' ')) {
		h++;
		n--;
	}
	if (!h || n < 3 || h[0] != '<' || h[n - 1] != '>' || n - 2 >= sizeof tok)
		return sd__dav_error(c, r, 400, NULL, NULL, "UNLOCK needs a Lock-Token: <token> header");
	memcpy(tok, h + 1, n - 2);
	tok[n - 2] = '\0';
	int rc = r->srv->api->unlock(r->sess, r->path.data, tok);
	if (rc == -ENOENT)
		return sd__dav_error(c, r, 409, "lock-token-matches-request-uri", NULL,
				     "no lock with that token covers %s", r->shown);
	if (rc < 0)
		return sd__dav_errno(c, r, rc);
	return sd__http_reply_empty(c, r, 204);
}
