/*
 * dav.h - WebDAV (RFC 4918 classes 1 and 2) on the HTTP front end, under
 * the configurable prefix dav_prefix (docs/webdav.md).
 *
 * Files, calling downwards only:
 *
 *   dav.c       the entry (routes.c sends every URL under the prefix here,
 *               and OPTIONS /): authentication, paths, the method switch;
 *               OPTIONS, GET/HEAD (download.c), PUT (upload.c), DELETE,
 *               MKCOL, COPY, MOVE
 *   dav_prop.c  PROPFIND (streamed multistatus) and PROPPATCH
 *   dav_lock.c  LOCK and UNLOCK
 *      |
 *   dav_if.c    the If header (RFC 4918 section 10.4): parse, evaluate
 *               against ETags and the engine's locks, submit its lock
 *               tokens; URLs of the DAV space (Destination, tags) to paths
 *   dav_xml.c   libxml2, hardened (no DTD, no entities, no network, size
 *               caps), request bodies; the writer side: escaping, hrefs,
 *               dates, error bodies
 *
 * Every call on files is an engine call through the same function table
 * as the REST API; paths are decoded once and resolved by the engine.
 */
#ifndef SD_HTTP_DAV_H
#define SD_HTTP_DAV_H

#include <libxml/tree.h>

#include "http.h"

#pragma GCC visibility push(hidden)

#define DAV_NS "DAV:"
#define DAV_MS_NS "urn:schemas-microsoft-com:"

/* What a DAV request keeps between its calls (r->body_state). */
typedef struct dav_req {
	sd_buf body;            /* an XML body, up to dav_max_xml_body */
	int over;               /* the body was larger: 413 */
	http_finish_fn then;    /* what to do once the body is in */
	/* PUT */
	http_finish_fn put_finish; /* upload.c's finish, called after our checks */
	int64_t expected;       /* X-Expected-Entity-Length, -1 if none */
	int created;            /* PUT made a new file */
} dav_req;

/* ------------------------------------------------------------- dav.c */

/* URL tail under the prefix when url is in the DAV space (url equal to the
 * prefix without its final '/' gives ""), else NULL. */
const char *sd__dav_match(const http_srv *s, const char *url);
/* Route handlers (routes.c): every method under the prefix; OPTIONS "/". */
enum MHD_Result sd__http_dav(struct MHD_Connection *c, hreq *r, const char *tail);
enum MHD_Result sd__http_dav_options_root(struct MHD_Connection *c, hreq *r, const char *tail);
/* Check the prefix of the config: 0, or a message. */
const char *sd__dav_check_conf(const http_conf *cf);

/* The request's DAV state (made on first use). */
dav_req *sd__dav_req(hreq *r);
/* Collect the XML body (up to dav_max_xml_body) and then call `then`. */
enum MHD_Result sd__dav_want_body(struct MHD_Connection *c, hreq *r, http_finish_fn then);
/* An error answer with a DAV error body: precond is a DAV: precondition
 * element name ("lock-token-submitted") or NULL; href (may be NULL) goes
 * inside it. */
enum MHD_Result sd__dav_error(struct MHD_Connection *c, hreq *r, unsigned status,
			      const char *precond, const char *href, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* The answer for an engine error: EBUSY is 423 Locked with
 * lock-token-submitted naming r->path; the rest as the REST API maps them. */
enum MHD_Result sd__dav_errno(struct MHD_Connection *c, hreq *r, int err);
/* Queue an XML body (steals b's text). */
enum MHD_Result sd__dav_reply_xml(struct MHD_Connection *c, hreq *r, unsigned status, sd_buf *b);
/* Depth header: 0, 1, -1 (infinity), def when absent, -2 when malformed. */
int sd__dav_depth(struct MHD_Connection *c, int def);

/* --------------------------------------------------------- dav_prop.c */

enum MHD_Result sd__dav_propfind(struct MHD_Connection *c, hreq *r);
enum MHD_Result sd__dav_proppatch(struct MHD_Connection *c, hreq *r);
/* Copy the dead properties of `from` to `to` (COPY). 0 or -errno. */
int sd__dav_copy_props(hreq *r, const char *from, const char *to);

/* --------------------------------------------------------- dav_lock.c */

enum MHD_Result sd__dav_lock(struct MHD_Connection *c, hreq *r);
enum MHD_Result sd__dav_unlock(struct MHD_Connection *c, hreq *r);
/* The <D:lockdiscovery> content (activelock elements) of path into b. */
void sd__dav_lockdiscovery(hreq *r, const char *path, sd_buf *b);
/* One <D:activelock> of l into b. */
void sd__dav_activelock(hreq *r, const sd_lock_info *l, sd_buf *b);

/* ----------------------------------------------------------- dav_if.c */

/* Evaluate the If header, if any, for a request on r->path (and its
 * tagged resources), then submit its lock tokens on r->sess (every state
 * token the header names, for this request's engine calls). 0 to go on;
 * -1 with an answer queued (*ret): 400 malformed, 412 false. */
int sd__dav_if(struct MHD_Connection *c, hreq *r, enum MHD_Result *ret);
/* The lock tokens the If header names (for a refresh), up to max, into
 * toks (each SD_LOCKTOKEN_MAX bytes); returns how many. */
int sd__dav_if_tokens(struct MHD_Connection *c, char (*toks)[SD_LOCKTOKEN_MAX], int max);
/* A URL of the DAV space (absolute, or an absolute path) as a user path:
 * "/" + decoded tail into out. 0; -EXDEV for another host or outside the
 * prefix; -EINVAL for a malformed URL, a bad escape, double encoding, or
 * (strict) a "." or ".." segment; -ENAMETOOLONG. */
int sd__dav_url_path(struct MHD_Connection *c, hreq *r, const char *url, int strict, sd_buf *out);

/* ---------------------------------------------------------- dav_xml.c */

/* Parse an XML request body, refusing any DTD (so no entity of any kind,
 * internal or external), without network access. NULL with *why set. */
xmlDocPtr sd__dav_parse(const char *buf, size_t len, const char **why);
/* Is n an element {ns}name? */
int sd__dav_is(xmlNodePtr n, const char *ns, const char *name);
/* The first element child of n, and the next element sibling. */
xmlNodePtr sd__dav_child(xmlNodePtr n);
xmlNodePtr sd__dav_next(xmlNodePtr n);
/* The namespace of element n ("" for none). */
const char *sd__dav_ns(xmlNodePtr n);
/* Element n as standalone XML text (its namespaces declared on it) into
 * out. 0 or -ENOMEM. */
int sd__dav_elem_xml(xmlNodePtr n, sd_buf *out);
/* The text content of n (malloc'd; "" when none). */
char *sd__dav_text(xmlNodePtr n);
/* XML-escaped text (n bytes) into b. */
void sd__dav_esc(sd_buf *b, const char *s, size_t n);
void sd__dav_escs(sd_buf *b, const char *s);
/* The href of user path `path` (a folder's with a final '/') into b,
 * percent-encoded and XML-escaped. */
void sd__dav_href(const http_srv *s, sd_buf *b, const char *path, int dir);
/* An element named {ns}name, empty, with its own namespace declaration. */
void sd__dav_empty_elem(sd_buf *b, const char *ns, const char *name);
/* RFC 3339 UTC of t (creationdate) into out (>= 21 bytes). */
void sd__dav_iso_date(int64_t t, char *out, size_t outlen);
/* The start of every XML body we send. */
#define DAV_XML_HEAD "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"

#pragma GCC visibility pop

#endif
