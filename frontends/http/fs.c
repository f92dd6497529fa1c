/*
 * fs.c - the files API of the HTTP front end:
 *   /api/v1/fs/<path>    GET HEAD PUT DELETE POST(?op=mkdir|move|copy|chmod)
 *   /api/v1/stat/<path>  GET
 *   /api/v1/instant      POST {"path","sha256","size"[,"nonce","proof"]}
 *   /api/v1/upload       POST body (FastDFS-style IDs), GET /f/<file_id>
 *   /api/v1/me           GET
 *
 * Invariants:
 *  1. A path reaches the engine percent-decoded exactly once, with no NUL,
 *     backslash, or escape left after decoding that stands for '.', '/',
 *     '\\', '%' or NUL (double encoding such as %252e);
 *     the engine normalises it and refuses "..".
 *  2. An upload is visible only after upload_commit succeeds; every other
 *     ending (error, client gone, checksum mismatch) calls upload_abort,
 *     here or in request_completed (http.c).
 *  3. File bodies are sent from the blob's descriptor (sendfile without
 *     TLS); the response owns the descriptor from creation on.
 *
 * FastDFS-style file IDs: "g1/M00/<ab>/<cd>/<name>[.<ext>]" where <name> is
 * 32 hex digits: 8 for the owner's user id, 8 for the upload time, 16
 * random. The file lives at /uploads/<ab>/<cd>/<name>[.<ext>] in the
 * owner's tree, so the ID alone finds owner and path.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <unistd.h>

#include "http.h"

/* ------------------------------------------------------------ helpers */

static int is_hex64(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++) {
		char ch = s[n];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F')))
			return 0;
	}
	return n == 64;
}

static void lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'F')
			*s = (char)(*s - 'A' + 'a');
}

/* Decode a raw URL tail into "/<decoded>" in out. 0, or an error answer
 * queued and -1. The result is given to the engine as it is: the engine
 * resolves "." and ".." itself; a ".." that would climb above the user's
 * root is refused here (see sd__http_path_climbs). */
static int decode_path(struct MHD_Connection *c, hreq *r, const char *raw, char *out,
		       size_t outlen, enum MHD_Result *ret)
{
	if (outlen < 2) {
		*ret = sd__http_reply_error(c, r, 400, "bad_path", "path too long");
		return -1;
	}
	out[0] = '/';
	int rc = sd__http_pct_decode(raw, out + 1, outlen - 1);
	if (rc == -ENAMETOOLONG) {
		*ret = sd__http_reply_error(c, r, 400, "name_too_long", "path too long");
		return -1;
	}
	if (rc < 0) {
		*ret = sd__http_reply_error(c, r, 400, "bad_path",
					    "path has a bad escape, a NUL or a backslash");
		return -1;
	}
	if (sd__http_double_encoded(out)) {
		*ret = sd__http_reply_error(c, r, 400, "bad_path",
					    "path holds a double-encoded character");
		return -1;
	}
	if (sd__http_path_climbs(out)) {
		*ret = sd__http_reply_error(c, r, 400, "bad_path", "path climbs above the root");
		return -1;
	}
	return 0;
}

/* r->path (already checked) resolved by the engine into r->shown, the
 * path answers and logs name. 0, or an error answer queued and -1. */
static int show_path(struct MHD_Connection *c, hreq *r, enum MHD_Result *ret)
{
	http_srv *s = r->srv;
	int rc = s->api->resolve(r->sess, r->path, strlen(r->path), r->shown, sizeof r->shown);
	if (rc < 0) {
		*ret = sd__http_reply_errno(c, r, rc);
		return -1;
	}
	return 0;
}

static const char *kind_name(int kind)
{
	return kind == SD_KIND_DIR ? "dir" : "file";
}

static json_t *stat_json(const char *path, const char *name, const sd_stat *st)
{
	char mode[8];
	snprintf(mode, sizeof mode, "%04o", (unsigned)(st->mode & 07777));
	json_t *o = json_object();
	if (path)
		json_object_set_new(o, "path", json_string(path));
	if (name)
		json_object_set_new(o, "name", json_string(name));
	json_object_set_new(o, "kind", json_string(kind_name(st->kind)));
	json_object_set_new(o, "size", json_integer((json_int_t)st->size));
	json_object_set_new(o, "mode", json_string(mode));
	json_object_set_new(o, "mtime", json_integer(st->mtime));
	if (st->kind == SD_KIND_FILE) {
		json_object_set_new(o, "sha256", json_string(st->sha256));
		if (!name)
			json_object_set_new(o, "versions", json_integer(st->versions));
	}
	if (!name)
		json_object_set_new(o, "ctime", json_integer(st->ctime));
	return o;
}

/* The header value, or NULL. */
static const char *hdr(struct MHD_Connection *c, const char *name)
{
	return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* ---------------------------------------------------------- downloads */

/* Does an If-None-Match list match the strong ETag "\"<sha>\""? */
static int etag_match(const char *list, const char *sha)
{
	const char *p = list;
	while (*p) {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		if (*p == '*')
			return 1;
		if (p[0] == 'W' && p[1] == '/')
			p += 2;
		if (*p == '"') {
			const char *e = strchr(p + 1, '"');
			if (!e)
				return 0;
			size_t n = (size_t)(e - p - 1);
			if (n == strlen(sha) && strncasecmp(p + 1, sha, n) == 0)
				return 1;
			p = e + 1;
		} else {
			while (*p && *p != ',')
				p++;
		}
	}
	return 0;
}

static void file_headers(struct MHD_Response *resp, const sd_stat *st, const char *etag)
{
	char date[40];
	sd__http_date(st->mtime, date, sizeof date);
	MHD_add_response_header(resp, "ETag", etag);
	MHD_add_response_header(resp, "Last-Modified", date);
	MHD_add_response_header(resp, "Accept-Ranges", "bytes");
	MHD_add_response_header(resp, "X-Checksum-SHA256", st->sha256);
}

/* Reads of a callback body: the reader from `off` on. */
typedef struct rd_body {
	const sd_core_api *api;
	sd_core *core;
	sd_reader *rd; /* owned by the request (hreq.rd), not by the body */
	uint64_t off;
} rd_body;

static ssize_t rd_body_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	rd_body *b = cls;
	ssize_t n = b->api->reader_pread(b->rd, buf, max, b->off + pos);
	if (n > 0)
		return n;
	b->api->log(b->core, SD_LOG_ERROR, HTTP_SRC, "event=read_error offset=%llu err=\"%s\"",
		    (unsigned long long)(b->off + pos), b->api->strerror(n < 0 ? (int)n : -EIO));
	return MHD_CONTENT_READER_END_WITH_ERROR;
}

/* A response sending len bytes of r->rd from off: from the content's
 * descriptor (sendfile without TLS) when the store has one, else through
 * reader_pread. r->rd stays open until the request completes. */
static struct MHD_Response *file_body(hreq *r, uint64_t off, uint64_t len)
{
	http_srv *s = r->srv;
	if (len == 0)
		return MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	int fd;
	uint64_t base;
	if (s->api->reader_fd(r->rd, &fd, &base) == 0) {
		/* MHD closes the descriptor it is given; the reader's is its own */
		int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (dfd >= 0) {
			struct MHD_Response *resp =
			    MHD_create_response_from_fd_at_offset64(len, dfd, base + off);
			if (!resp)
				close(dfd);
			return resp;
		}
	}
	rd_body *b = malloc(sizeof *b);
	if (!b)
		return NULL;
	*b = (rd_body){s->api, s->core, r->rd, off};
	struct MHD_Response *resp =
	    MHD_create_response_from_callback(len, 64 * 1024, rd_body_read, b, free);
	if (!resp)
		free(b);
	return resp;
}

static ssize_t rd_pread(void *arg, void *buf, size_t len, uint64_t off)
{
	hreq *r = arg;
	return r->srv->api->reader_pread(r->rd, buf, len, off);
}

/* Answer GET/HEAD for the file `path`: of the session's tree, or (owner >=
 * 0) of that user's tree through open_read_public. */
static enum MHD_Result serve_file(struct MHD_Connection *c, hreq *r, const char *path,
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
	char etag[SD_SHA256_HEX + 2];
	snprintf(etag, sizeof etag, "\"%s\"", st.sha256);
	const char *ctype = sd__http_mime(path);
	struct MHD_Response *resp;

	/* conditional requests (RFC 7232 section 6 order) */
	const char *inm = hdr(c, "If-None-Match");
	const char *ims = hdr(c, "If-Modified-Since");
	int not_modified = 0;
	if (inm)
		not_modified = etag_match(inm, st.sha256);
	else if (ims) {
		int64_t t = sd__http_parse_date(ims);
		not_modified = t >= 0 && st.mtime <= t;
	}
	if (not_modified) {
		resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
		if (!resp)
			return MHD_NO;
		file_headers(resp, &st, etag);
		return sd__http_queue(c, r, 304, resp, 0);
	}

	const char *range = hdr(c, "Range");
	const char *ifr = hdr(c, "If-Range");
	if (range && ifr) {
		int ok;
		if (ifr[0] == '"' || (ifr[0] == 'W' && ifr[1] == '/'))
			ok = ifr[0] == '"' && etag_match(ifr, st.sha256);
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
		file_headers(resp, &st, etag);
		return sd__http_queue(c, r, 206, resp, len);
	}
	if (n > 1) {
		uint64_t len = 0;
		char mct[96];
		resp = sd__http_multipart(rd_pread, r, st.size, ctype, rg, n, &len, mct, sizeof mct);
		if (!resp)
			return sd__http_reply_error(c, r, 500, "internal", "cannot build multipart body");
		MHD_add_response_header(resp, "Content-Type", mct);
		file_headers(resp, &st, etag);
		return sd__http_queue(c, r, 206, resp, len);
	}
	resp = file_body(r, 0, st.size);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", ctype);
	file_headers(resp, &st, etag);
	return sd__http_queue(c, r, 200, resp, st.size);
}

struct list_ctx {
	json_t *arr;
	long long n, limit;
	int more;
	char last[SD_NAME_MAX + 1];
};

/* Takes `limit` entries, then stops at the next one and notes "more". The
 * engine pages its queries itself, so asking it for everything (limit 0)
 * and stopping here costs one bounded query beyond the page. */
static int list_cb(void *arg, const sd_dirent *e)
{
	struct list_ctx *l = arg;
	if (l->n >= l->limit) {
		l->more = 1;
		return 1;
	}
	l->n++;
	json_array_append_new(l->arr, stat_json(NULL, e->name, &e->st));
	snprintf(l->last, sizeof l->last, "%s", e->name);
	return 0;
}

static enum MHD_Result list_dir(struct MHD_Connection *c, hreq *r)
{
	http_srv *s = r->srv;
	char buf[32], after[SD_NAME_MAX + 1];
	long long limit = s->conf->list_limit;
	int rc = sd__http_arg(c, "limit", buf, sizeof buf);
	if (rc < 0)
		return sd__http_reply_error(c, r, 400, "bad_request", "bad limit");
	if (rc == 1) {
		char *end;
		limit = strtoll(buf, &end, 10);
		if (*end || limit < 1)
			return sd__http_reply_error(c, r, 400, "bad_request", "limit must be a positive integer");
		if (limit > s->conf->list_limit)
			limit = s->conf->list_limit;
	}
	rc = sd__http_arg(c, "after", after, sizeof after);
	if (rc < 0)
		return sd__http_reply_error(c, r, 400, "bad_request", "bad after");
	struct list_ctx l = {json_array(), 0, limit, 0, ""};
	int more = 0;
	rc = s->api->readdir(r->sess, r->path, rc == 1 ? after : NULL, 0, list_cb, &l, &more);
	more = l.more;
	if (rc < 0) {
		json_decref(l.arr);
		return sd__http_reply_errno(c, r, rc);
	}
	json_t *o = json_object();
	json_object_set_new(o, "path", json_string(r->shown));
	json_object_set_new(o, "entries", l.arr);
	json_object_set_new(o, "more", json_boolean(more));
	json_object_set_new(o, "next", more && l.last[0] ? json_string(l.last) : json_null());
	return sd__http_reply_json(c, r, 200, o);
}

/* ------------------------------------------------------------ uploads */

/* Per-front-end upload counter. Deduplication and bytes saved are counted
 * by the engine (storaged_uploads_deduplicated_total, ..._bytes_saved_total)
 * for every front end; counting them here too would double them in sums. */
static void count_upload(hreq *r, const char *kind)
{
	http_srv *s = r->srv;
	char labels[64];
	snprintf(labels, sizeof labels, "frontend=\"http\",kind=\"%s\"", kind);
	s->api->metric_add(s->core, "storaged_frontend_uploads_total", labels, 1);
}

/* Answer for a stored file (PUT, instant, ID upload). */
static enum MHD_Result reply_stored(struct MHD_Connection *c, hreq *r, unsigned status,
				    const char *path, const sd_stat *st, int dedup, int instant)
{
	json_t *o;
	if (r->action == ACT_IDUPLOAD) {
		char url[200];
		snprintf(url, sizeof url, "/f/%s", r->file_id);
		o = json_pack("{s:s, s:s, s:I, s:s, s:b}", "file_id", r->file_id, "url", url,
			      "size", (json_int_t)st->size, "sha256", st->sha256, "dedup", dedup);
	} else {
		o = stat_json(path, NULL, st);
		json_object_set_new(o, "dedup", json_boolean(dedup));
		json_object_set_new(o, "instant", json_boolean(instant));
	}
	uint64_t len = 0;
	struct MHD_Response *resp = sd__http_json_response(o, &len);
	if (!resp)
		return MHD_NO;
	char etag[SD_SHA256_HEX + 2];
	snprintf(etag, sizeof etag, "\"%s\"", st->sha256);
	MHD_add_response_header(resp, "ETag", etag);
	if (instant)
		MHD_add_response_header(resp, "X-Instant-Upload", "1");
	if (r->action == ACT_IDUPLOAD) {
		char loc[200];
		snprintf(loc, sizeof loc, "/f/%s", r->file_id);
		MHD_add_response_header(resp, "Location", loc);
	}
	return sd__http_queue(c, r, status, resp, len);
}

/*
 * Common start of a body upload to r->path (PUT and ID upload): refusal of
 * partial PUT, checksum header, instant upload by header, quota pre-check
 * from Content-Length, upload_begin. Either answers (instant hit, error) or
 * enters RQ_BODY.
 */
static enum MHD_Result start_upload(struct MHD_Connection *c, hreq *r)
{
	http_srv *s = r->srv;
	/* A body with Content-Range is a piece of the file (curl -C N -T sends
	 * the tail). Storing it as the whole file loses the rest, so, as RFC
	 * 9110 section 14.5 asks of a server without partial PUT, refuse it
	 * before reading a byte and touch nothing. */
	if (hdr(c, MHD_HTTP_HEADER_CONTENT_RANGE))
		return sd__http_reply_error(c, r, 400, "partial_put",
					    "Content-Range on an upload is not supported: "
					    "send the whole file without Content-Range");
	const char *sum = hdr(c, "X-Checksum-SHA256");
	if (sum) {
		if (!is_hex64(sum))
			return sd__http_reply_error(c, r, 400, "bad_checksum",
						    "X-Checksum-SHA256 must be 64 hex digits");
		snprintf(r->expect_sha, sizeof r->expect_sha, "%s", sum);
		lower(r->expect_sha);
	}
	const char *cl = hdr(c, MHD_HTTP_HEADER_CONTENT_LENGTH);
	int64_t clen = -1;
	if (cl) {
		char *end;
		long long v = strtoll(cl, &end, 10);
		if (*end || v < 0)
			return sd__http_reply_error(c, r, 400, "bad_request", "bad Content-Length");
		clen = v;
	}
	sd_stat old;
	int rc = s->api->stat(r->sess, r->path, &old);
	if (rc == 0 && old.kind == SD_KIND_DIR)
		return sd__http_reply_error(c, r, 409, "is_a_directory", "the path is a directory");
	r->existed = rc == 0;

	if (r->expect_sha[0] && clen >= 0) {
		sd_challenge ch;
		sd_stat st;
		rc = s->api->instant_begin(r->sess, r->path, r->up_flags, r->expect_sha,
					   (uint64_t)clen, &ch, &st);
		if (rc == 0) {
			count_upload(r, "instant");
			s->api->log(s->core, SD_LOG_INFO, HTTP_SRC,
				    "event=instant_upload user=%s path=%s size=%llu via=header",
				    r->who.user, r->shown, (unsigned long long)st.size);
			const char *expect = hdr(c, "Expect");
			if (clen == 0 || (expect && strcasecmp(expect, "100-continue") == 0))
				return reply_stored(c, r, r->existed ? 200 : 201, r->shown, &st, 1, 1);
			/* The body is on its way: read and drop it, then answer,
			 * so the connection stays usable. */
			r->state = RQ_BODY;
			r->body = BODY_DISCARD;
			r->ans_status = r->existed ? 200 : 201;
			r->action = ACT_ANSWER;
			json_t *o = stat_json(r->shown, NULL, &st);
			json_object_set_new(o, "dedup", json_true());
			json_object_set_new(o, "instant", json_true());
			r->ans_json = o;
			return MHD_YES;
		}
		if (rc != -SD_ECHALLENGE && rc != -SD_ESENDDATA)
			return sd__http_reply_errno(c, r, rc);
	}
	if (r->who.quota > 0 && clen >= 0) {
		int64_t after = r->who.used - (r->existed ? (int64_t)old.size : 0) + clen;
		if (after > r->who.quota)
			return sd__http_reply_error(c, r, 507, "quota_exceeded",
						    "the upload would exceed the quota (%lld of %lld bytes)",
						    (long long)after, (long long)r->who.quota);
	}
	rc = s->api->upload_begin(r->sess, r->path, r->up_flags, 0, 0644, &r->up);
	if (rc < 0) {
		r->up = NULL;
		return sd__http_reply_errno(c, r, rc);
	}
	r->state = RQ_BODY;
	r->body = BODY_UPLOAD;
	return MHD_YES;
}

void sd__http_upload_feed(hreq *r, const char *data, size_t len)
{
	http_srv *s = r->srv;
	if (!r->up)
		return;
	int rc = s->api->upload_write(r->up, data, len);
	if (rc < 0) {
		s->api->upload_abort(r->up);
		r->up = NULL;
		r->body = BODY_DISCARD;
		const char *code;
		r->err_status = (int)sd__http_status_for(rc, &code);
		snprintf(r->err_code, sizeof r->err_code, "%s", code);
		snprintf(r->err_msg, sizeof r->err_msg, "%s", s->api->strerror(rc));
	}
}

static enum MHD_Result finish_upload(struct MHD_Connection *c, hreq *r)
{
	http_srv *s = r->srv;
	if (!r->up)
		return sd__http_reply_error(c, r, 500, "internal", "upload lost");
	sd_stat st;
	int dedup = 0;
	sd_upload *up = r->up;
	r->up = NULL;
	int rc = s->api->upload_commit(up, r->expect_sha[0] ? r->expect_sha : NULL, &st, &dedup);
	if (rc < 0) {
		if (rc == -SD_ECHECKSUM)
			return sd__http_reply_error(c, r, 400, "checksum_mismatch",
						    "the content does not match X-Checksum-SHA256");
		return sd__http_reply_errno(c, r, rc);
	}
	count_upload(r, "stream");
	return reply_stored(c, r, r->existed ? 200 : 201, r->shown, &st, dedup, 0);
}

/* ------------------------------------------------------ /api/v1/fs ops */

static int parse_mode(const char *s, uint32_t *mode)
{
	char *end;
	if (!*s)
		return -1;
	unsigned long v = strtoul(s, &end, 8);
	if (*end || v > 07777)
		return -1;
	*mode = (uint32_t)v;
	return 0;
}

static enum MHD_Result fs_post(struct MHD_Connection *c, hreq *r)
{
	http_srv *s = r->srv;
	char op[16], to_raw[SD_PATH_MAX + 1], to[SD_PATH_MAX + 2], mode_s[16];
	if (sd__http_arg(c, "op", op, sizeof op) != 1)
		return sd__http_reply_error(c, r, 400, "bad_request",
					    "POST needs ?op=mkdir|move|copy|chmod");
	sd_stat st;
	int rc;
	if (strcmp(op, "mkdir") == 0) {
		rc = s->api->mkdir(r->sess, r->path, 0755, sd__http_arg_true(c, "parents"));
		if (rc < 0)
			return sd__http_reply_errno(c, r, rc);
		if ((rc = s->api->stat(r->sess, r->path, &st)) < 0)
			return sd__http_reply_errno(c, r, rc);
		return sd__http_reply_json(c, r, 201, stat_json(r->shown, NULL, &st));
	}
	if (strcmp(op, "move") == 0 || strcmp(op, "copy") == 0) {
		const char *raw = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "to");
		if (!raw || !*raw)
			return sd__http_reply_error(c, r, 400, "bad_request", "missing ?to=");
		rc = sd__http_pct_decode(raw, to_raw, sizeof to_raw);
		if (rc < 0)
			return sd__http_reply_error(c, r, 400, "bad_path",
						    "target has a bad escape, a NUL or a backslash");
		if (sd__http_double_encoded(to_raw))
			return sd__http_reply_error(c, r, 400, "bad_path",
						    "target holds a double-encoded character");
		if (sd__http_path_climbs(to_raw))
			return sd__http_reply_error(c, r, 400, "bad_path", "target climbs above the root");
		snprintf(to, sizeof to, "%s%s", to_raw[0] == '/' ? "" : "/", to_raw);
		char to_shown[SD_PATH_MAX + 1];
		rc = s->api->resolve(r->sess, to, strlen(to), to_shown, sizeof to_shown);
		if (rc < 0)
			return sd__http_reply_errno(c, r, rc);
		rc = op[0] == 'm' ? s->api->rename(r->sess, r->path, to)
				  : s->api->copy(r->sess, r->path, to);
		if (rc < 0)
			return sd__http_reply_errno(c, r, rc);
		if ((rc = s->api->stat(r->sess, to, &st)) < 0)
			return sd__http_reply_errno(c, r, rc);
		return sd__http_reply_json(c, r, op[0] == 'm' ? 200 : 201,
					   stat_json(to_shown, NULL, &st));
	}
	if (strcmp(op, "chmod") == 0) {
		uint32_t mode;
		if (sd__http_arg(c, "mode", mode_s, sizeof mode_s) != 1 || parse_mode(mode_s, &mode) < 0)
			return sd__http_reply_error(c, r, 400, "bad_request",
						    "chmod needs ?mode=<octal, e.g. 0644>");
		rc = s->api->chmod(r->sess, r->path, mode);
		if (rc < 0)
			return sd__http_reply_errno(c, r, rc);
		if ((rc = s->api->stat(r->sess, r->path, &st)) < 0)
			return sd__http_reply_errno(c, r, rc);
		return sd__http_reply_json(c, r, 200, stat_json(r->shown, NULL, &st));
	}
	return sd__http_reply_error(c, r, 400, "bad_request", "unknown op '%s'", op);
}

enum MHD_Result sd__http_fs_begin(struct MHD_Connection *c, hreq *r, const char *tail)
{
	http_srv *s = r->srv;
	enum MHD_Result ret;
	if (decode_path(c, r, tail, r->path, sizeof r->path, &ret) < 0 ||
	    show_path(c, r, &ret) < 0)
		return ret;
	const char *m = r->method;
	if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0) {
		sd_stat st;
		int rc = s->api->stat(r->sess, r->path, &st);
		if (rc < 0)
			return sd__http_reply_errno(c, r, rc);
		if (st.kind == SD_KIND_DIR)
			return list_dir(c, r);
		return serve_file(c, r, r->path, -1);
	}
	if (strcmp(m, "PUT") == 0) {
		r->up_flags = sd__http_arg_true(c, "parents") ? SD_UP_PARENTS : 0;
		r->action = ACT_PUT;
		return start_upload(c, r);
	}
	if (strcmp(m, "DELETE") == 0) {
		sd_stat st;
		int rc = s->api->stat(r->sess, r->path, &st);
		if (rc < 0)
			return sd__http_reply_errno(c, r, rc);
		int rec = sd__http_arg_true(c, "recursive");
		if (st.kind == SD_KIND_DIR && !rec)
			return sd__http_reply_error(c, r, 409, "is_a_directory",
						    "deleting a directory needs ?recursive=1");
		rc = s->api->unlink(r->sess, r->path, st.kind == SD_KIND_DIR);
		if (rc < 0)
			return sd__http_reply_errno(c, r, rc);
		struct MHD_Response *resp =
		    MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
		return sd__http_queue(c, r, 204, resp, 0);
	}
	if (strcmp(m, "POST") == 0)
		return fs_post(c, r);
	return sd__http_reply_error(c, r, 405, "method_not_allowed",
				    "use GET, HEAD, PUT, DELETE or POST");
}

enum MHD_Result sd__http_stat_begin(struct MHD_Connection *c, hreq *r, const char *tail)
{
	http_srv *s = r->srv;
	enum MHD_Result ret;
	if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0)
		return sd__http_reply_error(c, r, 405, "method_not_allowed", "use GET");
	if (decode_path(c, r, tail, r->path, sizeof r->path, &ret) < 0 ||
	    show_path(c, r, &ret) < 0)
		return ret;
	sd_stat st;
	int rc = s->api->stat(r->sess, r->path, &st);
	if (rc < 0)
		return sd__http_reply_errno(c, r, rc);
	return sd__http_reply_json(c, r, 200, stat_json(r->shown, NULL, &st));
}

enum MHD_Result sd__http_me(struct MHD_Connection *c, hreq *r)
{
	http_srv *s = r->srv;
	sd_fsinfo fi;
	int rc = s->api->fsinfo(r->sess, &fi);
	if (rc < 0)
		return sd__http_reply_errno(c, r, rc);
	json_t *o = json_pack("{s:s, s:I, s:b, s:b, s:I, s:I, s:I}", "user", r->who.user, "id",
			      (json_int_t)r->who.uid, "admin", (r->who.flags & SD_USER_ADMIN) != 0,
			      "readonly", (r->who.flags & SD_USER_READONLY) != 0, "quota",
			      (json_int_t)fi.quota, "used", (json_int_t)fi.used, "disk_free",
			      (json_int_t)fi.disk_free);
	return sd__http_reply_json(c, r, 200, o);
}

/* ------------------------------------------------------ instant upload */

enum MHD_Result sd__http_instant_begin(struct MHD_Connection *c, hreq *r)
{
	if (strcmp(r->method, "POST") != 0)
		return sd__http_reply_error(c, r, 405, "method_not_allowed", "use POST");
	r->state = RQ_BODY;
	r->body = BODY_JSON;
	r->action = ACT_INSTANT;
	return MHD_YES;
}

static enum MHD_Result instant_finish(struct MHD_Connection *c, hreq *r)
{
	http_srv *s = r->srv;
	json_error_t jerr;
	json_t *j = r->json ? json_loadb(r->json, r->json_len, 0, &jerr) : NULL;
	if (!j || !json_is_object(j)) {
		json_decref(j);
		return sd__http_reply_error(c, r, 400, "bad_json", "body must be a JSON object");
	}
	const char *path = json_string_value(json_object_get(j, "path"));
	const char *sha = json_string_value(json_object_get(j, "sha256"));
	json_t *jsize = json_object_get(j, "size");
	const char *nonce = json_string_value(json_object_get(j, "nonce"));
	const char *proof = json_string_value(json_object_get(j, "proof"));
	int parents = json_is_true(json_object_get(j, "parents"));
	enum MHD_Result ret;
	if (!path || !sha || !is_hex64(sha) || !json_is_integer(jsize) ||
	    json_integer_value(jsize) < 0) {
		json_decref(j);
		return sd__http_reply_error(c, r, 400, "bad_request",
					    "need path (string), sha256 (64 hex) and size (integer >= 0)");
	}
	if (strchr(path, '\\') || strlen(path) >= sizeof r->path - 1 ||
	    sd__http_path_climbs(path)) {
		json_decref(j);
		return sd__http_reply_error(c, r, 400, "bad_path", "bad path");
	}
	snprintf(r->path, sizeof r->path, "%s%s", path[0] == '/' ? "" : "/", path);
	if (show_path(c, r, &ret) < 0) {
		json_decref(j);
		return ret;
	}
	char sum[SD_SHA256_HEX];
	snprintf(sum, sizeof sum, "%s", sha);
	lower(sum);
	uint64_t size = (uint64_t)json_integer_value(jsize);
	unsigned flags = parents ? SD_UP_PARENTS : 0;
	sd_stat st;
	int rc;
	if (nonce || proof) {
		if (!nonce || !proof) {
			json_decref(j);
			return sd__http_reply_error(c, r, 400, "bad_request",
						    "a proof needs both nonce and proof");
		}
		rc = s->api->instant_prove(r->sess, r->path, flags, sum, size, nonce, proof, &st);
	} else {
		sd_challenge ch;
		rc = s->api->instant_begin(r->sess, r->path, flags, sum, size, &ch, &st);
		if (rc == -SD_ECHALLENGE) {
			json_decref(j);
			json_t *ranges = json_array();
			for (int i = 0; i < ch.nranges && i < SD_CHALLENGE_MAX; i++)
				json_array_append_new(ranges, json_pack("[I,I]", (json_int_t)ch.off[i],
									(json_int_t)ch.len[i]));
			return sd__http_reply_json(c, r, 200,
						   json_pack("{s:s, s:o}", "nonce", ch.nonce,
							     "ranges", ranges));
		}
	}
	json_decref(j);
	if (rc == -SD_ESENDDATA)
		return sd__http_reply_error(c, r, 404, "send_data",
					    "content unknown here: send the data");
	if (rc == -SD_EPROOF)
		return sd__http_reply_error(c, r, 403, "bad_proof",
					    "wrong or stale proof of possession");
	if (rc < 0)
		return sd__http_reply_errno(c, r, rc);
	count_upload(r, "instant");
	s->api->log(s->core, SD_LOG_INFO, HTTP_SRC,
		    "event=instant_upload user=%s path=%s size=%llu via=%s", r->who.user, r->shown,
		    (unsigned long long)st.size, nonce ? "proof" : "api");
	ret = reply_stored(c, r, 201, r->shown, &st, 1, 1);
	return ret;
}

/* ---------------------------------------------------- FastDFS-like IDs */

enum MHD_Result sd__http_idupload_begin(struct MHD_Connection *c, hreq *r)
{
	if (strcmp(r->method, "POST") != 0 && strcmp(r->method, "PUT") != 0)
		return sd__http_reply_error(c, r, 405, "method_not_allowed", "use POST");
	char ext[24] = "";
	int rc = sd__http_arg(c, "ext", ext, sizeof ext);
	if (rc < 0 || strlen(ext) > 16)
		return sd__http_reply_error(c, r, 400, "bad_request", "ext: 1-16 letters or digits");
	for (char *p = ext; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'Z')))
			return sd__http_reply_error(c, r, 400, "bad_request",
						    "ext: 1-16 letters or digits");
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	}
	if (r->who.uid < 0 || r->who.uid > 0xffffffffLL)
		return sd__http_reply_error(c, r, 500, "internal", "user id out of range for file ids");
	unsigned char rnd[10];
	sd__http_random(rnd, sizeof rnd);
	uint32_t now = (uint32_t)r->srv->api->now(r->srv->core);
	char name[64];
	snprintf(name, sizeof name, "%08" PRIx32 "%08" PRIx32 "%02x%02x%02x%02x%02x%02x%02x%02x",
		 (uint32_t)r->who.uid, now, rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7], rnd[8],
		 rnd[9]);
	snprintf(r->file_id, sizeof r->file_id, "g1/M00/%02x/%02x/%s%s%s", rnd[0], rnd[1], name,
		 ext[0] ? "." : "", ext);
	snprintf(r->path, sizeof r->path, "/uploads/%02x/%02x/%s%s%s", rnd[0], rnd[1], name,
		 ext[0] ? "." : "", ext);
	snprintf(r->shown, sizeof r->shown, "%s", r->path);
	r->up_flags = SD_UP_PARENTS | SD_UP_EXCL;
	r->action = ACT_IDUPLOAD;
	return start_upload(c, r);
}

static int hexn(const char *s, int n)
{
	for (int i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
			return 0;
	}
	return 1;
}

enum MHD_Result sd__http_fileid_get(struct MHD_Connection *c, hreq *r, const char *id)
{
	http_srv *s = r->srv;
	/* g1/M00/ab/cd/<32 hex>[.ext] */
	size_t n = strlen(id);
	const char *name = id + 13;
	if (n < 13 + 32 || n > 13 + 32 + 17 || strncmp(id, "g1/M00/", 7) != 0 || !hexn(id + 7, 2) ||
	    id[9] != '/' || !hexn(id + 10, 2) || id[12] != '/' || !hexn(name, 32))
		return sd__http_reply_error(c, r, 404, "not_found", "no such file id");
	const char *ext = name + 32;
	if (*ext) {
		if (*ext != '.' || !ext[1])
			return sd__http_reply_error(c, r, 404, "not_found", "no such file id");
		for (const char *p = ext + 1; *p; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
				return sd__http_reply_error(c, r, 404, "not_found", "no such file id");
	}
	char uidhex[9];
	memcpy(uidhex, name, 8);
	uidhex[8] = '\0';
	int64_t uid = (int64_t)strtoull(uidhex, NULL, 16);
	/* without public_ids the request was authenticated: only the owner
	 * and admins may read it */
	if (!s->conf->public_ids &&
	    (!r->authed || (r->who.uid != uid && !(r->who.flags & SD_USER_ADMIN))))
		return sd__http_reply_error(c, r, 404, "not_found", "no such file id");
	snprintf(r->path, sizeof r->path, "/uploads/%.2s/%.2s/%s", id + 7, id + 10, name);
	snprintf(r->shown, sizeof r->shown, "%s", r->path);
	return serve_file(c, r, r->path, uid);
}

enum MHD_Result sd__http_fs_finish(struct MHD_Connection *c, hreq *r)
{
	switch (r->action) {
	case ACT_PUT:
	case ACT_IDUPLOAD:
		return finish_upload(c, r);
	case ACT_INSTANT:
		return instant_finish(c, r);
	default:
		return sd__http_reply_error(c, r, 500, "internal", "unknown action");
	}
}
