/*
 * download.c - file bodies: GET and HEAD of a file, from a reader.
 *
 * Invariants:
 *  1. The reader (r->rd) is the request's: it is opened here and closed
 *     when the request completes (module.c), after MHD's last read of the
 *     body, whatever the ending.
 *  2. A body is sent from the content's descriptor only when
 *     api->reader_fd() gives one (sendfile on plain HTTP; MHD reads it
 *     itself under TLS); MHD gets a duplicate of it, since MHD closes what
 *     it is given and the reader owns its own. Otherwise, and for every
 *     multipart body, the bytes come through api->reader_pread.
 *  3. Range, If-Range, If-None-Match and If-Modified-Since are answered the
 *     same for both kinds of body: 206 with Content-Range, 416 with a
 *     Content-Range naming the size, 304.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "sys.h"

static void file_headers(struct MHD_Response *resp, const sd_stat *st, const char *etag,
			 unsigned flags, const char *name)
{
	char date[40];
	sd__http_date(st->mtime, date, sizeof date);
	MHD_add_response_header(resp, "ETag", etag);
	MHD_add_response_header(resp, "Last-Modified", date);
	MHD_add_response_header(resp, "Accept-Ranges", "bytes");
	MHD_add_response_header(resp, "X-Checksum-SHA256", st->sha256);
	if (flags & HTTP_SERVE_SANDBOX) {
		/* someone else's content on our origin: no script, no sniffing */
		MHD_add_response_header(resp, "Content-Security-Policy", "sandbox");
		MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
		MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	}
	if (flags & HTTP_SERVE_ATTACHMENT) {
		const char *base = strrchr(name, '/');
		base = base ? base + 1 : name;
		sd_buf v = SD_BUF_INIT;
		sd_buf_puts(&v, "attachment; filename*=UTF-8''");
		for (const unsigned char *p = (const unsigned char *)base; *p; p++) {
			if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			    (*p >= '0' && *p <= '9') || strchr("-._~", *p))
				sd_buf_append(&v, p, 1);
			else
				sd_buf_printf(&v, "%%%02X", *p);
		}
		MHD_add_response_header(resp, "Content-Disposition", v.data);
		sd_buf_free(&v);
	}
}

/* Reads of a callback body: the reader from `off` on. */
typedef struct rd_body {
	const sd_core_api *api;
	sd_core *core;
	sd_reader *rd; /* owned by the request (hreq.rd), not by the body */
	uint64_t off;
	hreq *limited; /* the request, when its user has a bandwidth_limit */
} rd_body;

static ssize_t rd_body_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	rd_body *b = cls;
	if (b->limited)
		max = sd__http_throttle_chunk(b->limited, max);
	ssize_t n = b->api->reader_pread(b->rd, buf, max, b->off + pos);
	if (n > 0) {
		if (b->limited)
			sd__http_throttle(b->limited, (size_t)n); /* may sleep */
		return n;
	}
	b->api->log(b->core, SD_LOG_ERROR, HTTP_SRC, "event=read_error offset=%llu err=\"%s\"",
		    (unsigned long long)(b->off + pos), b->api->strerror(n < 0 ? (int)n : -EIO));
	return MHD_CONTENT_READER_END_WITH_ERROR;
}

/* A response sending len bytes of r->rd from off: from the content's
 * descriptor (sendfile without TLS) when the store has one and the user
 * has no bandwidth_limit, else through reader_pread. r->rd stays open
 * until the request completes. */
static struct MHD_Response *file_body(hreq *r, uint64_t off, uint64_t len)
{
	http_srv *s = r->srv;
	if (len == 0)
		return MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	int fd;
	uint64_t base;
	int limited = sd__http_throttled(r);
	if (!limited && s->api->reader_fd(r->rd, &fd, &base) == 0) {
		/* MHD closes the descriptor it is given; the reader's is its own */
		int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (dfd >= 0) {
			struct MHD_Response *resp =
			    MHD_create_response_from_fd_at_offset64(len, dfd, base + off);
			if (!resp)
				sd_sys_close(dfd);
			return resp;
		}
	}
	rd_body *b = sd_xmalloc(sizeof *b);
	*b = (rd_body){s->api, s->core, r->rd, off, limited ? r : NULL};
	struct MHD_Response *resp =
	    MHD_create_response_from_callback(len, 64 * 1024, rd_body_read, b, free);
	if (!resp)
		free(b);
	return resp;
}

/* Reads for a multipart body. arg is the request: MHD reads a body only
 * while the request lives, and r->rd lives as long as the request. */
static ssize_t rd_pread(void *arg, void *buf, size_t len, uint64_t off)
{
	hreq *r = arg;
	ssize_t n = r->srv->api->reader_pread(r->rd, buf, sd__http_throttle_chunk(r, len), off);
	if (n > 0)
		sd__http_throttle(r, (size_t)n); /* bandwidth_limit */
	return n;
}

enum MHD_Result sd__http_serve_file(struct MHD_Connection *c, hreq *r, const char *path,
				    int64_t owner)
{
	http_srv *s = r->srv;
	sd_stat st;
	int rc = owner >= 0 ? s->api->open_read_public(s->core, owner, path, &r->rd, &st)
			    : s->api->open_read(r->sess, path, &r->rd, &st);
	if (rc < 0) {
		r->rd = NULL;
		return sd__http_reply_errno(c, r, rc);
	}
	return sd__http_serve_reader(c, r, &st, path, 0);
}

enum MHD_Result sd__http_serve_reader(struct MHD_Connection *c, hreq *r, const sd_stat *stp,
				      const char *path, unsigned flags)
{
	http_srv *s = r->srv;
	sd_stat st = *stp;
	if (strcmp(r->method, "GET") == 0)
		r->xfer = 2; /* a transfer line at completion (access.c) */
	char etag[SD_SHA256_HEX + 2];
	snprintf(etag, sizeof etag, "\"%s\"", st.sha256);
	const char *ctype = sd__http_mime(path);
	struct MHD_Response *resp;

	/* conditional requests (RFC 9110 section 13.2.2 order) */
	const char *inm = sd__http_hdr(c, "If-None-Match");
	const char *ims = sd__http_hdr(c, "If-Modified-Since");
	int not_modified = 0;
	if (inm)
		not_modified = sd__http_etag_match(inm, st.sha256);
	else if (ims) {
		int64_t t = sd__http_parse_date(ims);
		not_modified = t >= 0 && st.mtime <= t;
	}
	if (not_modified) {
		resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
		if (!resp)
			return MHD_NO;
		file_headers(resp, &st, etag, flags, path);
		return sd__http_queue(c, r, 304, resp, 0);
	}

	const char *range = sd__http_hdr(c, "Range");
	const char *ifr = sd__http_hdr(c, "If-Range");
	if (range && ifr) {
		int ok;
		if (ifr[0] == '"' || (ifr[0] == 'W' && ifr[1] == '/'))
			ok = ifr[0] == '"' && sd__http_etag_match(ifr, st.sha256);
		else
			ok = sd__http_parse_date(ifr) == st.mtime;
		if (!ok)
			range = NULL;
	}
	http_range rg[HTTP_MAX_RANGES];
	int n = range ? sd__http_parse_range(range, st.size, rg) : 0;
	if (n < 0) {
		char cr[64];
		snprintf(cr, sizeof cr, "bytes */%llu", (unsigned long long)st.size);
		uint64_t len = 0;
		json_t *o = json_pack("{s:s, s:s}", "error", "range_not_satisfiable", "message",
				      "no requested range lies inside the file");
		resp = sd__http_json_response(o, &len);
		if (!resp)
			return MHD_NO;
		MHD_add_response_header(resp, "Content-Range", cr);
		MHD_add_response_header(resp, "Accept-Ranges", "bytes");
		return sd__http_queue(c, r, 416, resp, len);
	}
	if (n == 1) {
		uint64_t len = rg[0].last - rg[0].first + 1;
		resp = file_body(r, rg[0].first, len);
		if (!resp)
			return MHD_NO;
		char cr[96];
		snprintf(cr, sizeof cr, "bytes %llu-%llu/%llu", (unsigned long long)rg[0].first,
			 (unsigned long long)rg[0].last, (unsigned long long)st.size);
		MHD_add_response_header(resp, "Content-Range", cr);
		MHD_add_response_header(resp, "Content-Type", ctype);
		file_headers(resp, &st, etag, flags, path);
		return sd__http_queue(c, r, 206, resp, len);
	}
	if (n > 1) {
		uint64_t len = 0;
		char *mct = NULL;
		int err;
		resp = sd__http_multipart(rd_pread, r, st.size, ctype, rg, n, &len, &mct, &err);
		if (!resp && err == -ENOMEM)
			return MHD_NO;
		if (!resp)
			return sd__http_reply_error(c, r, 503, "unavailable",
						    "no randomness for a multipart boundary: %s",
						    s->api->strerror(err));
		MHD_add_response_header(resp, "Content-Type", mct);
		free(mct);
		file_headers(resp, &st, etag, flags, path);
		return sd__http_queue(c, r, 206, resp, len);
	}
	resp = file_body(r, 0, st.size);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", ctype);
	file_headers(resp, &st, etag, flags, path);
	return sd__http_queue(c, r, 200, resp, st.size);
}
