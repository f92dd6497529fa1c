/*
 * tus.c - resumable uploads over HTTP: the tus 1.0 protocol (core,
 * creation, creation-with-upload, expiration, checksum with sha256,
 * termination), on the engine's upload sessions (rup_* calls,
 * core/rupload.c), so tus-js-client, Uppy, tuspy and friends resume large
 * uploads, also across a restart of the daemon. docs/rest-api.md.
 *
 *   OPTIONS /api/v1/tus[/<id>]  what the server speaks (no credentials)
 *   POST    /api/v1/tus         create an upload (+ its first bytes)
 *   HEAD    /api/v1/tus/<id>    how many bytes the server has
 *   PATCH   /api/v1/tus/<id>    append at Upload-Offset
 *   DELETE  /api/v1/tus/<id>    drop the upload
 *   POST    /api/v1/tus/<id> with X-HTTP-Method-Override: PATCH|DELETE|HEAD
 *
 * The target of an upload comes from its Upload-Metadata: "path" (a path
 * in the user's tree), else "relativePath" (Uppy's folder uploads) or
 * "filename" / "name", placed in the folder given by the query argument
 * (or metadata key) "dir" (default "/"). Missing folders are made. A file
 * already at the path is replaced (a new version) when the upload
 * completes, unless the query says exclusive=1.
 *
 * A PATCH's bytes go to the engine as they arrive (BODY_FEED); when the
 * request ends, cut short or not, the engine keeps what arrived (unless
 * the request carried Upload-Checksum: then only a whole, matching body
 * is kept). Offsets that do not match answer 409 with the server's
 * Upload-Offset; a second PATCH of an upload still receiving asks the
 * first to stop and waits a moment (423 if it does not).
 *
 * Every answer of these routes carries Tus-Resumable: 1.0.0; a request
 * (other than OPTIONS) without it gets 412 with Tus-Version.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"

#define TUS_VERSION "1.0.0"
#define TUS_EXTENSIONS "creation,creation-with-upload,expiration,checksum,termination"
#define TUS_CTYPE "application/offset+octet-stream"

/* A PATCH (or creation-with-upload) in progress: the request's body_state. */
typedef struct tus_patch {
	http_srv *srv;
	sd_rupload *h;      /* NULL once closed */
	int checksum;       /* the request carries Upload-Checksum */
	int create;         /* creation-with-upload: answer 201 + Location */
	char id[SD_RUP_ID_MAX];
	int werr;           /* the engine's error of a write */
} tus_patch;

/* ------------------------------------------------------------ answers */

static void tus_headers(struct MHD_Response *resp)
{
	MHD_add_response_header(resp, "Tus-Resumable", TUS_VERSION);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
}

static void add_u64(struct MHD_Response *resp, const char *name, uint64_t v)
{
	char b[24];
	snprintf(b, sizeof b, "%llu", (unsigned long long)v);
	MHD_add_response_header(resp, name, b);
}

static void add_upload(struct MHD_Response *resp, const sd_rupload_info *in, int length,
		       int meta)
{
	char date[64];
	add_u64(resp, "Upload-Offset", in->offset);
	if (length)
		add_u64(resp, "Upload-Length", in->length);
	if (meta && in->meta[0])
		MHD_add_response_header(resp, "Upload-Metadata", in->meta);
	sd__http_date(in->expires, date, sizeof date);
	MHD_add_response_header(resp, "Upload-Expires", date);
	if (in->done && in->st.sha256[0]) {
		char etag[SD_SHA256_HEX + 2];
		snprintf(etag, sizeof etag, "\"%s\"", in->st.sha256);
		MHD_add_response_header(resp, "ETag", etag);
	}
}

static enum MHD_Result tus_error(struct MHD_Connection *c, hreq *r, unsigned status,
				 const char *code, const char *msg, const sd_rupload_info *in)
{
	uint64_t len = 0;
	struct MHD_Response *resp = sd__http_json_response(
	    json_pack("{s:s, s:s}", "error", code, "message", msg), &len);
	if (!resp)
		return MHD_NO;
	tus_headers(resp);
	if (status == 412)
		MHD_add_response_header(resp, "Tus-Version", TUS_VERSION);
	if (in)
		add_u64(resp, "Upload-Offset", in->offset);
	return sd__http_queue(c, r, status, resp, len);
}

/* An engine error, with the words of its status. */
static enum MHD_Result tus_errno(struct MHD_Connection *c, hreq *r, int err)
{
	const char *code;
	unsigned st = sd__http_status_for(err, &code);
	if (err == -ERANGE) {
		st = 409;
		code = "offset_mismatch";
	} else if (err == -SD_ECHECKSUM) {
		st = 460; /* tus checksum extension */
		code = "checksum_mismatch";
	} else if (err == -EMFILE) {
		st = 429;
		code = "too_many_uploads";
	} else if (err == -SD_ECORRUPT) {
		st = 410;
		code = "upload_damaged";
	}
	return tus_error(c, r, st, code, r->srv->api->strerror(err), NULL);
}

static enum MHD_Result tus_empty(struct MHD_Connection *c, hreq *r, unsigned status,
				 const sd_rupload_info *in, int length, int meta,
				 const char *location)
{
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	tus_headers(resp);
	if (in)
		add_upload(resp, in, length, meta);
	if (location)
		MHD_add_response_header(resp, "Location", location);
	return sd__http_queue(c, r, status, resp, 0);
}

/* ------------------------------------------------------------ helpers */

static int parse_u63(const char *s, uint64_t *out)
{
	if (!s || !*s)
		return -EINVAL;
	uint64_t v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		if (v > ((uint64_t)INT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

/* Upload-Metadata: "key b64,key b64,key". 0 and the decoded value of key
 * into out (1 if found, 0 if absent); -1 if the header is malformed. */
static int meta_get(const char *h, const char *key, sd_buf *out)
{
	const char *p = h;
	int found = 0;
	while (p && *p) {
		while (*p == ' ')
			p++;
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		const char *sp = memchr(p, ' ', n);
		size_t klen = sp ? (size_t)(sp - p) : n;
		if (klen == 0)
			return -1;
		for (size_t i = 0; i < klen; i++)
			if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f)
				return -1;
		if (!found && klen == strlen(key) && strncmp(p, key, klen) == 0) {
			char val[SD_RUP_META_MAX];
			size_t vlen = sp ? n - klen - 1 : 0;
			if (vlen >= sizeof val)
				return -1;
			memcpy(val, sp ? sp + 1 : "", vlen);
			val[vlen] = '\0';
			sd_buf_reset(out);
			if (sd__http_b64decode(val, out) < 0)
				return -1;
			found = 1;
		} else if (sp) {
			/* check the other values too: a malformed header is refused whole */
			char val[SD_RUP_META_MAX];
			size_t vlen = n - klen - 1;
			if (vlen >= sizeof val)
				return -1;
			memcpy(val, sp + 1, vlen);
			val[vlen] = '\0';
			sd_buf tmp = SD_BUF_INIT;
			int bad = sd__http_b64decode(val, &tmp) < 0;
			sd_buf_free(&tmp);
			if (bad)
				return -1;
		}
		p = e ? e + 1 : NULL;
	}
	return found;
}

/* A decoded metadata value fit for a path piece: UTF-8 without NUL or
 * control bytes (the engine's resolver does the rest). */
static int meta_text_ok(const sd_buf *b)
{
	if (!b->data || b->len == 0 || memchr(b->data, '\0', b->len))
		return 0;
	return sd_utf8_valid(b->data, b->len);
}

/* The upload id of the URL tail: 32 lowercase hex digits. */
static int take_id(const char *tail, char out[SD_RUP_ID_MAX])
{
	size_t n = strlen(tail);
	if (n != SD_RUP_ID_MAX - 1)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!((tail[i] >= '0' && tail[i] <= '9') || (tail[i] >= 'a' && tail[i] <= 'f')))
			return -1;
	memcpy(out, tail, n + 1);
	return 0;
}

/* Upload-Checksum: "sha256 <base64 of 32 bytes>" into hex. 0; -1 bad
 * form (400); -2 another algorithm (400, as the extension says). */
static int parse_checksum(const char *h, char hex[SD_SHA256_HEX])
{
	const char *sp = strchr(h, ' ');
	if (!sp)
		return -1;
	if ((size_t)(sp - h) != 6 || strncasecmp(h, "sha256", 6) != 0)
		return -2;
	sd_buf b = SD_BUF_INIT;
	int rc = sd__http_b64decode(sp + 1, &b);
	if (rc < 0 || b.len != 32) {
		sd_buf_free(&b);
		return -1;
	}
	sd_hex((const unsigned char *)b.data, 32, hex);
	sd_buf_free(&b);
	return 0;
}

/* ------------------------------------------------------------ body */

static void patch_free(void *arg)
{
	tus_patch *p = arg;
	if (!p)
		return;
	if (p->h) {
		/* the request ended without its last call (client gone, timeout):
		 * keep what arrived, unless a checksum must vouch for it */
		p->srv->api->rup_close(p->h, !p->checksum, NULL);
		p->srv->api->log(p->srv->core, SD_LOG_INFO, HTTP_SRC,
				 "event=tus_interrupted id=%.8s kept=%d", p->id, !p->checksum);
	}
	free(p);
}

static int patch_feed(hreq *r, const char *data, size_t len)
{
	tus_patch *p = r->body_state;
	int rc = p->h ? r->srv->api->rup_write(p->h, data, len) : -EIO;
	if (rc < 0) {
		p->werr = rc;
		r->err_status = 1; /* finish answers it (finish_on_error) */
		return -1;
	}
	return 0;
}

static enum MHD_Result patch_finish(struct MHD_Connection *c, hreq *r)
{
	http_srv *s = r->srv;
	tus_patch *p = r->body_state;
	sd_rupload_info in;
	int keep = 1;
	if (p->werr && p->werr != -ECANCELED && p->werr != -EFBIG)
		keep = 0;
	int rc = s->api->rup_close(p->h, keep, &in);
	p->h = NULL;
	if (p->werr == -EFBIG)
		return tus_error(c, r, 413, "too_large",
				 "the body goes past the upload's Upload-Length", &in);
	if (p->werr == -ECANCELED)
		return tus_error(c, r, 409, "taken_over",
				 "another request took this upload over", &in);
	if (p->werr)
		return tus_errno(c, r, p->werr);
	if (rc < 0) {
		if (rc == -SD_ECHECKSUM)
			return tus_error(c, r, 460, "checksum_mismatch",
					 "the body does not match Upload-Checksum: nothing of it was kept",
					 &in);
		return tus_errno(c, r, rc);
	}
	if (in.done)
		s->api->log(s->core, SD_LOG_INFO, HTTP_SRC,
			    "event=tus_complete user=%s id=%.8s path=\"%s\" size=%llu", r->who.user,
			    p->id, in.path, (unsigned long long)in.length);
	if (p->create) {
		char loc[64];
		snprintf(loc, sizeof loc, "/api/v1/tus/%s", p->id);
		return tus_empty(c, r, 201, &in, 0, 0, loc);
	}
	return tus_empty(c, r, 204, &in, 0, 0, NULL);
}

/* Take the body of r into upload id from offset (PATCH, or the first
 * bytes of a creation). Answers (error) or enters RQ_BODY. */
static enum MHD_Result patch_begin(struct MHD_Connection *c, hreq *r, const char *id,
				   uint64_t offset, int create)
{
	http_srv *s = r->srv;
	const char *ct = sd__http_hdr(c, MHD_HTTP_HEADER_CONTENT_TYPE);
	if (!ct || strncasecmp(ct, TUS_CTYPE, strlen(TUS_CTYPE)) != 0)
		return tus_error(c, r, 415, "bad_content_type",
				 "the body must be Content-Type: " TUS_CTYPE, NULL);
	char sum[SD_SHA256_HEX] = "";
	const char *ck = sd__http_hdr(c, "Upload-Checksum");
	if (ck) {
		int k = parse_checksum(ck, sum);
		if (k == -2)
			return tus_error(c, r, 400, "bad_checksum_algorithm",
					 "Upload-Checksum: only sha256 is supported", NULL);
		if (k < 0)
			return tus_error(c, r, 400, "bad_checksum",
					 "Upload-Checksum must be \"sha256 <base64 of 32 bytes>\"",
					 NULL);
	}
	sd_rupload_info in;
	int rc = s->api->rup_info(r->sess, id, &in);
	if (rc < 0)
		return tus_errno(c, r, rc);
	snprintf(r->shown, sizeof r->shown, "%s", in.path); /* for the log lines */
	const char *cl = sd__http_hdr(c, MHD_HTTP_HEADER_CONTENT_LENGTH);
	uint64_t clen;
	if (cl && parse_u63(cl, &clen) == 0 && offset <= in.length && clen > in.length - offset)
		return tus_error(c, r, 413, "too_large",
				 "Upload-Offset + Content-Length go past Upload-Length", &in);
	sd_rupload *h = NULL;
	rc = s->api->rup_open(r->sess, id, offset, sum[0] ? sum : NULL, &h);
	if (rc == -ERANGE) {
		if (s->api->rup_info(r->sess, id, &in) == 0)
			return tus_error(c, r, 409, "offset_mismatch",
					 "Upload-Offset is not the server's offset (see its Upload-Offset)",
					 &in);
	}
	if (rc == -EBUSY)
		return tus_error(c, r, 423, "locked",
				 "another request is writing this upload; try again", NULL);
	if (rc < 0)
		return tus_errno(c, r, rc);
	tus_patch *p = sd_xcalloc(1, sizeof *p);
	p->srv = s;
	p->h = h;
	p->checksum = sum[0] != '\0';
	p->create = create;
	snprintf(p->id, sizeof p->id, "%s", id);
	r->body_state = p;
	r->body_state_free = patch_free;
	r->xfer = 1; /* a transfer line with the bytes of this request */
	r->state = RQ_BODY;
	r->body = BODY_FEED;
	r->feed = patch_feed;
	r->finish = patch_finish;
	r->finish_on_error = 1;
	return MHD_YES;
}

/* ------------------------------------------------------------ creation */

/* The target path of a creation into r->path (and r->shown). 0, or an
 * answer queued (*ret) and -1. */
static int target_path(struct MHD_Connection *c, hreq *r, const char *meta, unsigned *flags,
		       enum MHD_Result *ret)
{
	sd_buf v = SD_BUF_INIT, dir = SD_BUF_INIT;
	const char *what = NULL;
	int rc = -1;
	*flags = SD_UP_PARENTS;
	if (sd__http_arg_true(c, "exclusive"))
		*flags |= SD_UP_EXCL;
	char qdir[SD_PATH_MAX + 1];
	int hq = sd__http_arg(c, "dir", qdir, sizeof qdir);
	if (hq < 0) {
		*ret = tus_error(c, r, 400, "bad_path", "bad dir argument", NULL);
		goto out;
	}
	if (hq)
		sd_buf_puts(&dir, qdir);
	else if (meta && meta_get(meta, "dir", &v) == 1 && meta_text_ok(&v))
		sd_buf_append(&dir, v.data, v.len);
	if (meta) {
		static const char *const keys[] = {"path", "relativePath", "filename", "name", NULL};
		for (int i = 0; keys[i] && !what; i++) {
			int g = meta_get(meta, keys[i], &v);
			if (g < 0) {
				*ret = tus_error(c, r, 400, "bad_metadata",
						 "Upload-Metadata must be \"key base64,key base64\"", NULL);
				goto out;
			}
			if (g == 1 && v.len && !(v.len == 4 && memcmp(v.data, "null", 4) == 0)) {
				if (!meta_text_ok(&v)) {
					*ret = tus_error(c, r, 400, "bad_path",
							 "a name in Upload-Metadata is not UTF-8 text", NULL);
					goto out;
				}
				what = keys[i];
			}
		}
	}
	if (!what) {
		*ret = tus_error(c, r, 400, "no_name",
				 "Upload-Metadata must name the file: path, or filename (with ?dir=)",
				 NULL);
		goto out;
	}
	sd_buf_reset(&r->path);
	if (strcmp(what, "path") == 0 && v.data[0] == '/') {
		sd_buf_append(&r->path, v.data, v.len);
	} else {
		sd_buf_puts(&r->path, "/");
		if (dir.len) {
			sd_buf_append(&r->path, dir.data, dir.len);
			sd_buf_puts(&r->path, "/");
		}
		sd_buf_append(&r->path, v.data, v.len);
	}
	if (r->path.len > SD_PATH_MAX || memchr(r->path.data, '\\', r->path.len)) {
		*ret = tus_error(c, r, 400, "bad_path", "bad path", NULL);
		goto out;
	}
	if (sd__http_show_path(c, r, ret) < 0)
		goto out;
	rc = 0;
out:
	sd_buf_free(&v);
	sd_buf_free(&dir);
	return rc;
}

static enum MHD_Result tus_create(struct MHD_Connection *c, hreq *r)
{
	http_srv *s = r->srv;
	enum MHD_Result ret;
	if (sd__http_hdr(c, "Upload-Defer-Length"))
		return tus_error(c, r, 400, "defer_unsupported",
				 "Upload-Defer-Length is not supported: send Upload-Length", NULL);
	uint64_t length;
	if (parse_u63(sd__http_hdr(c, "Upload-Length"), &length) < 0)
		return tus_error(c, r, 400, "bad_length",
				 "Upload-Length must be a decimal number of bytes", NULL);
	const char *meta = sd__http_hdr(c, "Upload-Metadata");
	if (meta && strlen(meta) >= SD_RUP_META_MAX)
		return tus_error(c, r, 400, "bad_metadata", "Upload-Metadata is too long", NULL);
	unsigned flags;
	if (target_path(c, r, meta, &flags, &ret) < 0)
		return ret;
	sd_rupload_info in;
	int rc = s->api->rup_create(r->sess, r->path.data, flags, length, 0644, meta, &in);
	if (rc < 0)
		return tus_errno(c, r, rc);
	s->api->log(s->core, SD_LOG_INFO, HTTP_SRC,
		    "event=tus_create user=%s id=%.8s path=\"%s\" length=%llu", r->who.user, in.id,
		    r->shown, (unsigned long long)length);
	const char *ct = sd__http_hdr(c, MHD_HTTP_HEADER_CONTENT_TYPE);
	if (ct && strncasecmp(ct, TUS_CTYPE, strlen(TUS_CTYPE)) == 0 && length > 0)
		return patch_begin(c, r, in.id, 0, 1); /* creation-with-upload */
	char loc[64];
	snprintf(loc, sizeof loc, "/api/v1/tus/%s", in.id);
	return tus_empty(c, r, 201, &in, 0, 0, loc);
}

/* ------------------------------------------------------------ routes */

static enum MHD_Result tus_options(struct MHD_Connection *c, hreq *r)
{
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Tus-Resumable", TUS_VERSION);
	MHD_add_response_header(resp, "Tus-Version", TUS_VERSION);
	MHD_add_response_header(resp, "Tus-Extension", TUS_EXTENSIONS);
	MHD_add_response_header(resp, "Tus-Checksum-Algorithm", "sha256");
	MHD_add_response_header(resp, "Allow", "OPTIONS, POST, HEAD, PATCH, DELETE");
	return sd__http_queue(c, r, 204, resp, 0);
}

enum MHD_Result sd__http_tus(struct MHD_Connection *c, hreq *r, const char *tail)
{
	http_srv *s = r->srv;
	enum MHD_Result ret;
	/* discovery needs no credentials (a browser's preflight has none);
	 * everything else authenticates here, as the route table would */
	if (strcmp(r->method, "OPTIONS") == 0)
		return tus_options(c, r);
	if (sd__http_authenticate(c, r, &ret) < 0)
		return ret;
	if ((r->who.flags & SD_USER_READONLY) && strcmp(r->method, "HEAD") != 0)
		return tus_error(c, r, 403, "read_only", "this credential is read-only", NULL);
	const char *v = sd__http_hdr(c, "Tus-Resumable");
	if (!v || strcmp(v, TUS_VERSION) != 0)
		return tus_error(c, r, 412, "tus_version",
				 "send Tus-Resumable: " TUS_VERSION, NULL);
	const char *method = r->method;
	const char *ov = sd__http_hdr(c, "X-HTTP-Method-Override");
	if (ov && strcmp(method, "POST") == 0 && *tail) {
		if (strcmp(ov, "PATCH") != 0 && strcmp(ov, "DELETE") != 0 && strcmp(ov, "HEAD") != 0)
			return tus_error(c, r, 400, "bad_override",
					 "X-HTTP-Method-Override: PATCH, DELETE or HEAD", NULL);
		method = ov;
	}
	if (!*tail) {
		if (strcmp(method, "POST") != 0)
			return tus_error(c, r, 405, "method_not_allowed",
					 "POST creates an upload here", NULL);
		return tus_create(c, r);
	}
	char id[SD_RUP_ID_MAX];
	if (take_id(tail, id) < 0)
		return tus_error(c, r, 404, "not_found", "no such upload", NULL);
	sd_rupload_info in;
	int rc;
	if (strcmp(method, "HEAD") == 0 || strcmp(method, "GET") == 0) {
		if ((rc = s->api->rup_info(r->sess, id, &in)) < 0)
			return tus_errno(c, r, rc);
		return tus_empty(c, r, 200, &in, 1, 1, NULL);
	}
	if (strcmp(method, "PATCH") == 0) {
		uint64_t off;
		if (parse_u63(sd__http_hdr(c, "Upload-Offset"), &off) < 0)
			return tus_error(c, r, 400, "bad_offset",
					 "Upload-Offset must be a decimal number of bytes", NULL);
		return patch_begin(c, r, id, off, 0);
	}
	if (strcmp(method, "DELETE") == 0) {
		if ((rc = s->api->rup_delete(r->sess, id)) < 0)
			return tus_errno(c, r, rc);
		return tus_empty(c, r, 204, NULL, 0, 0, NULL);
	}
	return tus_error(c, r, 405, "method_not_allowed", "use HEAD, PATCH or DELETE", NULL);
}
