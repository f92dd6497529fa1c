/*
 * partial.c - RFC 9110 partial PUT: PUT /api/v1/fs/<path> with
 * Content-Range: bytes FIRST-LAST/COMPLETE (or a star for an unknown length) writes the body at FIRST of
 * the file, on a private working copy (an engine handle of the request's
 * session), and commits it as one new version when the whole body has
 * arrived. What curl -C N -T file sends, and how a client resumes an
 * upload piece by piece (docs/rest-api.md).
 *
 * Rules:
 *  - a Content-Range that is not exactly "bytes a-b/n" or "bytes a-b/STAR" (STAR: an unknown length, written as an asterisk)
 *    with a <= b < n, or a Content-Length other than b - a + 1, is 400
 *    bad_range, before anything is opened;
 *  - FIRST past the end of the file (a hole) answers 409 offset_mismatch
 *    with the file's size (JSON "size" and Content-Range: bytes * /size):
 *    a client resuming from a stale offset learns the real one;
 *  - with COMPLETE given, a file longer than COMPLETE is cut to it; a
 *    shorter one keeps its size (its tail is still to come);
 *  - If-Match (the ETag, i.e. the SHA-256 in quotes) must name the content
 *    the write applies to, else 412;
 *  - a body cut short, or longer than the range, changes nothing: the
 *    working copy is abandoned (400 when the request completes, nothing
 *    at all when the client vanished).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

typedef struct ppw {
	http_srv *srv;
	sd_handle h;       /* 0 once closed */
	uint64_t first, len, got, complete;
	int has_complete;
	int created;
	int werr;
} ppw;

static int parse_u63(const char **p, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;
	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > ((uint64_t)INT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*p = s;
	*out = v;
	return 0;
}

/* "bytes a-b/n" or "bytes a-b/STAR": 0, or -1 when malformed. */
static int parse_content_range(const char *h, ppw *w)
{
	if (strncmp(h, "bytes ", 6) != 0)
		return -1;
	const char *p = h + 6;
	uint64_t a, b;
	if (parse_u63(&p, &a) < 0 || *p++ != '-' || parse_u63(&p, &b) < 0 || *p++ != '/')
		return -1;
	if (b < a)
		return -1;
	if (*p == '*' && p[1] == '\0') {
		w->has_complete = 0;
	} else {
		if (parse_u63(&p, &w->complete) < 0 || *p != '\0' || w->complete <= b)
			return -1;
		w->has_complete = 1;
	}
	w->first = a;
	w->len = b - a + 1;
	return 0;
}

static void ppw_free(void *arg)
{
	ppw *w = arg;
	if (!w)
		return;
	/* not finished (the client vanished): the session, closed before this
	 * runs (module.c invariant 1), abandoned the handle; the old version
	 * stays */
	free(w);
}

static int ppw_feed(hreq *r, const char *data, size_t len)
{
	ppw *w = r->body_state;
	http_srv *s = r->srv;
	if (len > w->len - w->got) {
		w->werr = -E2BIG;
		r->err_status = 400;
		return -1;
	}
	ssize_t n = s->api->handle_pwrite(r->sess, w->h, data, len, w->first + w->got);
	if (n < 0) {
		w->werr = (int)n;
		r->err_status = 1;
		return -1;
	}
	w->got += len;
	return 0;
}

static enum MHD_Result ppw_finish(struct MHD_Connection *c, hreq *r)
{
	ppw *w = r->body_state;
	http_srv *s = r->srv;
	sd_handle h = w->h;
	w->h = 0;
	if (w->werr || w->got != w->len) {
		s->api->handle_abandon(r->sess, h);
		if (w->werr == -E2BIG || !w->werr)
			return sd__http_reply_error(c, r, 400, "bad_range",
						    "the body is %s than its Content-Range: nothing "
						    "was changed",
						    w->werr ? "longer" : "shorter");
		return sd__http_reply_errno(c, r, w->werr);
	}
	sd_stat st;
	int rc = s->api->handle_fstat(r->sess, h, &st);
	if (rc == 0 && w->has_complete && st.size > w->complete)
		rc = s->api->handle_truncate(r->sess, h, w->complete);
	if (rc < 0) {
		s->api->handle_abandon(r->sess, h);
		return sd__http_reply_errno(c, r, rc);
	}
	if ((rc = s->api->handle_close(r->sess, h)) < 0)
		return sd__http_reply_errno(c, r, rc);
	if ((rc = s->api->stat(r->sess, r->path.data, &st)) < 0)
		return sd__http_reply_errno(c, r, rc);
	s->api->log(s->core, SD_LOG_INFO, HTTP_SRC,
		    "event=partial_put user=%s path=\"%s\" first=%llu bytes=%llu size=%llu",
		    r->who.user, r->shown, (unsigned long long)w->first,
		    (unsigned long long)w->len, (unsigned long long)st.size);
	uint64_t len = 0;
	json_t *o = sd_json_stat(r->shown, NULL, &st);
	struct MHD_Response *resp = sd__http_json_response(o, &len);
	if (!resp)
		return MHD_NO;
	char etag[SD_SHA256_HEX + 2];
	snprintf(etag, sizeof etag, "\"%s\"", st.sha256);
	MHD_add_response_header(resp, "ETag", etag);
	return sd__http_queue(c, r, w->created ? 201 : 200, resp, len);
}

enum MHD_Result sd__http_partial_put(struct MHD_Connection *c, hreq *r, const char *range)
{
	http_srv *s = r->srv;
	ppw *w = sd_xcalloc(1, sizeof *w);
	w->srv = s;
	r->body_state = w;
	r->body_state_free = ppw_free;
	if (parse_content_range(range, w) < 0)
		return sd__http_reply_error(c, r, 400, "bad_range",
					    "Content-Range must be \"bytes FIRST-LAST/LENGTH\" or "
					    "\"bytes FIRST-LAST/*\" with FIRST <= LAST < LENGTH");
	const char *cl = sd__http_hdr(c, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl) {
		const char *p = cl;
		uint64_t n;
		if (parse_u63(&p, &n) < 0 || *p || n != w->len)
			return sd__http_reply_error(c, r, 400, "bad_range",
						    "Content-Length must be the length of the Content-Range "
						    "(%llu)", (unsigned long long)w->len);
	}
	if (sd__http_hdr(c, "X-Checksum-SHA256"))
		return sd__http_reply_error(c, r, 400, "bad_request",
					    "X-Checksum-SHA256 names a whole file: not with Content-Range");
	if (r->up_flags & SD_UP_PARENTS) {
		char parent[SD_PATH_MAX + 1];
		snprintf(parent, sizeof parent, "%s", r->shown);
		char *sl = strrchr(parent, '/');
		if (sl && sl != parent) {
			*sl = '\0';
			int mr = s->api->mkdir(r->sess, parent, 0755, 1);
			if (mr < 0 && mr != -EEXIST)
				return sd__http_reply_errno(c, r, mr);
		}
	}
	sd_stat st;
	int rc = s->api->handle_open(r->sess, r->path.data,
				     SD_O_READ | SD_O_WRITE | SD_O_CREAT | SD_O_SHARE_WRITE, 0644, &w->h,
				     &st);
	if (rc < 0) {
		w->h = 0;
		return sd__http_reply_errno(c, r, rc);
	}
	w->created = st.sha256[0] == '\0'; /* a new file (pending create) */
	const char *im = sd__http_hdr(c, MHD_HTTP_HEADER_IF_MATCH);
	if (im && !(strcmp(im, "*") == 0 && !w->created) &&
	    !(st.sha256[0] && sd__http_etag_match(im, st.sha256)))
		return sd__http_reply_error(c, r, 412, "precondition_failed",
					    "If-Match does not name the file's current content");
	if (w->first > st.size) {
		uint64_t len = 0;
		struct MHD_Response *resp = sd__http_json_response(
		    json_pack("{s:s, s:s, s:I}", "error", "offset_mismatch", "message",
			      "the range starts past the end of the file: resume from its size",
			      "size", (json_int_t)st.size),
		    &len);
		if (!resp)
			return MHD_NO;
		char cr[64];
		snprintf(cr, sizeof cr, "bytes */%llu", (unsigned long long)st.size);
		MHD_add_response_header(resp, "Content-Range", cr);
		return sd__http_queue(c, r, 409, resp, len);
	}
	r->xfer = 1;
	r->state = RQ_BODY;
	r->body = BODY_FEED;
	r->feed = ppw_feed;
	r->finish = ppw_finish;
	r->finish_on_error = 1;
	return MHD_YES;
}
