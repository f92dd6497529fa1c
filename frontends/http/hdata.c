/*
 * hdata.c - the bytes of a handle (docs/handle-api.md, Read and Write):
 *
 *   GET|HEAD /api/v1/handles/<id>/data [Range: bytes=...]
 *       what the handle sees, its unsaved writes included: 200 whole, 206
 *       one range (or several that coalesce into one), 206
 *       multipart/byteranges, 400 bad_range, 416;
 *   PUT /api/v1/handles/<id>/data[?offset=N]
 *       the body written at N as it arrives (handle_pwrite per chunk,
 *       never held whole), or, with Content-Type multipart/byteranges,
 *       each part at its own Content-Range.
 *
 * Invariants:
 *  1. A response body reads through api->handle_pread with the request's
 *     session, which lives until the request completes (module.c), after
 *     MHD's last read; a callback never reads past the length announced.
 *  2. A write's bytes go to the engine in the order they arrive and
 *     nowhere else; "written" in every answer, the error ones included,
 *     counts exactly the bytes the engine took.
 *  3. No offset or length past 2^63-1 reaches the engine from here.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define I63 ((uint64_t)INT64_MAX)
#define READ_BLOCK (64 * 1024) /* bytes per handle_pread of a response */

/* ---------------------------------------------------------------- read */

/* A response body: len bytes of the handle from off. */
typedef struct hbody {
	hreq *r;
	uint64_t off, len;
} hbody;

static ssize_t h_pread(void *arg, void *buf, size_t len, uint64_t off)
{
	hreq *r = arg;
	ssize_t n = r->srv->api->handle_pread(r->sess, r->hid, buf, sd__http_throttle_chunk(r, len), off);
	if (n > 0)
		sd__http_throttle(r, (size_t)n); /* bandwidth_limit */
	return n;
}

static ssize_t hbody_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	hbody *b = cls;
	if (pos >= b->len)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (max > b->len - pos)
		max = (size_t)(b->len - pos);
	ssize_t n = h_pread(b->r, buf, max, b->off + pos);
	if (n > 0)
		return n;
	/* the handle went away or shrank while being sent: cut the body */
	http_srv *s = b->r->srv;
	s->api->log(s->core, SD_LOG_INFO, HTTP_SRC,
		    "event=read_cut user=%s offset=%llu err=\"%s\"", b->r->who.user,
		    (unsigned long long)(b->off + pos),
		    n < 0 ? s->api->strerror((int)n) : "the handle's file shrank");
	return MHD_CONTENT_READER_END_WITH_ERROR;
}

static struct MHD_Response *range_body(hreq *r, uint64_t off, uint64_t len)
{
	if (len == 0)
		return MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	hbody *b = sd_xmalloc(sizeof *b);
	*b = (hbody){r, off, len};
	size_t blk = len < READ_BLOCK ? (size_t)len : READ_BLOCK;
	struct MHD_Response *resp = MHD_create_response_from_callback(len, blk, hbody_read, b, free);
	if (!resp)
		free(b);
	return resp;
}

static void data_headers(struct MHD_Response *resp, const sd_stat *st)
{
	char date[40];
	sd__http_date(st->mtime, date, sizeof date);
	MHD_add_response_header(resp, "Last-Modified", date);
	MHD_add_response_header(resp, "Accept-Ranges", "bytes");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	if (st->sha256[0]) { /* no unsaved writes: the base version's address */
		char etag[SD_SHA256_HEX + 2];
		snprintf(etag, sizeof etag, "\"%s\"", st->sha256);
		MHD_add_response_header(resp, "ETag", etag);
		MHD_add_response_header(resp, "X-Checksum-SHA256", st->sha256);
	}
}

static enum MHD_Result data_get(struct MHD_Connection *c, hreq *r)
{
	http_srv *s = r->srv;
	sd_stat st;
	int rc = s->api->handle_fstat(r->sess, r->hid, &st);
	if (rc < 0)
		return sd__http_handle_errno(c, r, rc);
	const char *ctype = "application/octet-stream";
	const char *range = sd__http_hdr(c, "Range");
	struct MHD_Response *resp;
	if (!range) {
		if (!(resp = range_body(r, 0, st.size)))
			return MHD_NO;
		MHD_add_response_header(resp, "Content-Type", ctype);
		data_headers(resp, &st);
		return sd__http_queue(c, r, 200, resp, st.size);
	}
	http_range rg[HTTP_MAX_PARTS];
	int n = 0;
	rc = sd__http_ranges_strict(range, st.size, rg, HTTP_MAX_PARTS, &n);
	if (rc == -EINVAL)
		return sd__http_reply_error(c, r, 400, "bad_range",
					    "Range must be bytes=a-b, a- or -n, comma-separated, at "
					    "most %d, numbers up to 2^63-1", HTTP_MAX_PARTS);
	if (rc < 0) {
		char cr[64];
		snprintf(cr, sizeof cr, "bytes */%llu", (unsigned long long)st.size);
		uint64_t len = 0;
		resp = sd__http_json_response(
		    json_pack("{s:s, s:s, s:I}", "error", "range_not_satisfiable", "message",
			      "a range starts at or past the end, or the ranges add up to more "
			      "than the file", "size", (json_int_t)st.size),
		    &len);
		if (!resp)
			return MHD_NO;
		MHD_add_response_header(resp, "Content-Range", cr);
		MHD_add_response_header(resp, "Accept-Ranges", "bytes");
		return sd__http_queue(c, r, 416, resp, len);
	}
	if (n == 1) {
		uint64_t len = rg[0].last - rg[0].first + 1;
		if (!(resp = range_body(r, rg[0].first, len)))
			return MHD_NO;
		char cr[96];
		snprintf(cr, sizeof cr, "bytes %llu-%llu/%llu", (unsigned long long)rg[0].first,
			 (unsigned long long)rg[0].last, (unsigned long long)st.size);
		MHD_add_response_header(resp, "Content-Range", cr);
		MHD_add_response_header(resp, "Content-Type", ctype);
		data_headers(resp, &st);
		return sd__http_queue(c, r, 206, resp, len);
	}
	uint64_t len = 0;
	char *mct = NULL;
	int err;
	resp = sd__http_multipart(h_pread, r, st.size, ctype, rg, n, &len, &mct, &err);
	if (!resp && err == -ENOMEM)
		return MHD_NO;
	if (!resp)
		return sd__http_reply_error(c, r, 503, "unavailable",
					    "no randomness for a multipart boundary: %s",
					    s->api->strerror(err));
	MHD_add_response_header(resp, "Content-Type", mct);
	free(mct);
	data_headers(resp, &st);
	return sd__http_queue(c, r, 206, resp, len);
}

/* --------------------------------------------------------------- write */

/* A write's progress (r->body_state). */
typedef struct hwrite {
	hreq *r;
	uint64_t off;     /* plain body: where the next byte goes */
	uint64_t written; /* bytes the engine took */
	http_mpw *mp;     /* multipart body, else NULL */
	int err;          /* the engine's error that stopped the write */
} hwrite;

static void hwrite_free(void *p)
{
	hwrite *w = p;
	if (!w)
		return;
	sd__http_mpw_free(w->mp);
	free(w);
}

/* Give the engine len bytes at off. 0 or its error (kept in w->err). */
static int put_bytes(hwrite *w, const char *data, size_t len, uint64_t off)
{
	hreq *r = w->r;
	ssize_t n = r->srv->api->handle_pwrite(r->sess, r->hid, data, len, off);
	if (n < 0) {
		w->err = (int)n;
		return (int)n;
	}
	w->written += (uint64_t)n;
	return 0;
}

static int piece(void *arg, const char *data, size_t len, uint64_t off)
{
	return put_bytes(arg, data, len, off);
}

/* Keep the error that stops the write for the answer (module.c reads and
 * drops the rest of the body). */
static int stop(hreq *r, unsigned status, const char *code, const char *msg)
{
	r->err_status = (int)status;
	snprintf(r->err_code, sizeof r->err_code, "%s", code);
	snprintf(r->err_msg, sizeof r->err_msg, "%s", msg);
	return -1;
}

static int stop_errno(hreq *r, int err)
{
	if (err == -EBADF)
		return stop(r, 404, "not_found", "the handle was closed, abandoned or expired");
	if (err == -EFBIG)
		return stop(r, 400, "bad_request", "the write ends past 2^63-1");
	const char *code;
	unsigned st = sd__http_status_for(err, &code);
	return stop(r, st, code, r->srv->api->strerror(err));
}

static int write_feed(hreq *r, const char *data, size_t len)
{
	hwrite *w = r->body_state;
	if (!w->mp) {
		if (put_bytes(w, data, len, w->off) < 0)
			return stop_errno(r, w->err);
		w->off += len;
		return 0;
	}
	int rc = sd__http_mpw_feed(w->mp, data, len, piece, w);
	if (rc == 0)
		return 0;
	if (w->err)
		return stop_errno(r, w->err);
	return stop(r, 400, "bad_request", sd__http_mpw_error(w->mp));
}

static enum MHD_Result write_finish(struct MHD_Connection *c, hreq *r)
{
	http_srv *s = r->srv;
	hwrite *w = r->body_state;
	const char *why;
	if (!r->err_status && w->mp && sd__http_mpw_end(w->mp, &why) < 0)
		stop(r, 400, "bad_request", why);
	if (r->err_status) {
		s->api->log(s->core, SD_LOG_INFO, HTTP_SRC,
			    "event=handle_write_failed user=%s handle=%016" PRIx64
			    " written=%llu status=%d msg=\"%s\"", r->who.user, (uint64_t)r->hid,
			    (unsigned long long)w->written, r->err_status, r->err_msg);
		return sd__http_reply_json(c, r, (unsigned)r->err_status,
					   json_pack("{s:s, s:s, s:I}", "error", r->err_code,
						     "message", r->err_msg, "written",
						     (json_int_t)w->written));
	}
	sd_stat st;
	int rc = s->api->handle_fstat(r->sess, r->hid, &st);
	if (rc < 0)
		return sd__http_handle_errno(c, r, rc);
	return sd__http_reply_json(c, r, 200,
				   json_pack("{s:I, s:I}", "size", (json_int_t)st.size, "written",
					     (json_int_t)w->written));
}

/* A decimal number 0..2^63-1, all of s. 0, -EINVAL or -ERANGE. */
static int parse_u63(const char *s, uint64_t *v)
{
	if (!*s)
		return -EINVAL;
	uint64_t x = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		unsigned d = (unsigned)(*s - '0');
		if (x > (I63 - d) / 10)
			return -ERANGE;
		x = x * 10 + d;
	}
	*v = x;
	return 0;
}

static enum MHD_Result data_put(struct MHD_Connection *c, hreq *r)
{
	http_srv *s = r->srv;
	sd_handle_info hi;
	int rc = s->api->handle_info(r->sess, r->hid, &hi);
	if (rc < 0)
		return sd__http_handle_errno(c, r, rc);
	if (!(hi.flags & SD_O_WRITE))
		return sd__http_reply_error(c, r, 403, "not_writable",
					    "the handle was not opened for writing");
	hwrite *w = sd_xcalloc(1, sizeof *w);
	w->r = r;
	r->body_state = w;
	r->body_state_free = hwrite_free;

	const char *ct = sd__http_hdr(c, MHD_HTTP_HEADER_CONTENT_TYPE);
	char bnd[HTTP_MPW_BOUNDARY_MAX + 1];
	int mp = ct ? sd__http_mp_boundary(ct, bnd, sizeof bnd) : 0;
	if (mp < 0)
		return sd__http_reply_error(c, r, 400, "bad_request",
					    "multipart/byteranges needs a boundary of 1-70 "
					    "printable characters");
	char arg[32];
	int has_off = sd__http_arg(c, "offset", arg, sizeof arg);
	if (has_off < 0)
		return sd__http_reply_error(c, r, 400, "bad_request", "bad offset");
	if (mp) {
		if (has_off)
			return sd__http_reply_error(c, r, 400, "bad_request",
						    "a multipart/byteranges write takes its offsets "
						    "from its parts, not from ?offset=");
		w->mp = sd__http_mpw_new(bnd);
	} else {
		if (sd__http_hdr(c, MHD_HTTP_HEADER_CONTENT_RANGE))
			return sd__http_reply_error(c, r, 400, "bad_request",
						    "Content-Range on a handle write: use ?offset=N "
						    "(or a multipart/byteranges body)");
		if (has_off && (rc = parse_u63(arg, &w->off)) < 0)
			return sd__http_reply_error(c, r, 400, "bad_request",
						    rc == -ERANGE ? "offset past 2^63-1"
								  : "offset must be a decimal integer "
								    "0..2^63-1");
		const char *cl = sd__http_hdr(c, MHD_HTTP_HEADER_CONTENT_LENGTH);
		uint64_t clen;
		if (cl && parse_u63(cl, &clen) == 0 && !(hi.flags & SD_O_APPEND) &&
		    clen > I63 - w->off)
			return sd__http_reply_error(c, r, 400, "bad_request",
						    "offset + Content-Length past 2^63-1");
	}
	r->state = RQ_BODY;
	r->body = BODY_FEED;
	r->feed = write_feed;
	r->finish = write_finish;
	r->finish_on_error = 1;
	return MHD_YES;
}

enum MHD_Result sd__http_h_data(struct MHD_Connection *c, hreq *r, const char *id)
{
	enum MHD_Result ret;
	if (sd__http_take_handle(c, r, id, &ret) < 0)
		return ret;
	if (strcmp(r->method, "PUT") == 0)
		return data_put(c, r);
	return data_get(c, r);
}
