/*
 * reply.c - every answer of the HTTP front end goes out through here: JSON
 * bodies, JSON errors, the map from engine errors to statuses, empty
 * answers. A leaf: it calls the engine only to log and to word errors.
 *
 * Invariants:
 *  1. Every 4xx/5xx answer has a JSON body {"error": code, "message": words}.
 *  2. sd__http_queue is the one place a response is queued: it records the
 *     status and body size for the metrics and moves the request to
 *     RQ_ANSWERED.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

unsigned sd__http_status_for(int err, const char **code)
{
	if (err < 0)
		err = -err;
	const char *c = "internal";
	unsigned s = 500;
	switch (err) {
	case ENOENT: s = 404; c = "not_found"; break;
	case EEXIST: s = 409; c = "exists"; break;
	case ENOTDIR: s = 409; c = "not_a_directory"; break;
	case EISDIR: s = 409; c = "is_a_directory"; break;
	case ENOTEMPTY: s = 409; c = "not_empty"; break;
	case EACCES: case EPERM: s = 403; c = "forbidden"; break;
	case EROFS: s = 403; c = "read_only"; break;
	case EINVAL: s = 400; c = "bad_request"; break;
	case ENAMETOOLONG: s = 400; c = "name_too_long"; break;
	case EDQUOT: s = 507; c = "quota_exceeded"; break;
	case ENOSPC: s = 507; c = "disk_full"; break;
	case EBUSY: s = 423; c = "locked"; break;
	case EFBIG: s = 413; c = "too_large"; break;
	case SD_ECHECKSUM: s = 400; c = "checksum_mismatch"; break;
	case SD_EPROOF: s = 403; c = "bad_proof"; break;
	case SD_ESENDDATA: s = 404; c = "send_data"; break;
	case SD_EAUTH: s = 401; c = "unauthorized"; break;
	case SD_EBLOCKED: s = 429; c = "blocked"; break;
	case SD_ECORRUPT: s = 500; c = "corrupt"; break;
	case SD_EHISTORY: s = 410; c = "history_gone"; break;
	case SD_ECHANGED: s = 412; c = "precondition_failed"; break;
	case EIO: s = 500; c = "io_error"; break;
	default: break;
	}
	if (code)
		*code = c;
	return s;
}

enum MHD_Result sd__http_queue(struct MHD_Connection *c, hreq *r, unsigned status,
			       struct MHD_Response *resp, uint64_t body_len)
{
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Server", "storaged/" "http");
	const char *origin = sd__http_cors_origin(c, r);
	if (origin) { /* cors_origins: this page may read the answer */
		MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
		MHD_add_response_header(resp, "Vary", "Origin");
		MHD_add_response_header(
		    resp, "Access-Control-Expose-Headers",
		    "Location, ETag, Content-Range, Retry-After, X-Checksum-SHA256, Tus-Resumable, "
		    "Tus-Version, Tus-Extension, Tus-Checksum-Algorithm, Upload-Offset, "
		    "Upload-Length, Upload-Metadata, Upload-Expires");
	}
	/* Nothing the API sends is a page of this origin: a stored .html or
	 * .svg opened in a browser runs no script next to the web client's
	 * session (web.c's pages carry their own policy). */
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	if (!MHD_get_response_header(resp, "Content-Security-Policy"))
		MHD_add_response_header(resp, "Content-Security-Policy", "sandbox; default-src 'none'");
	r->status = (int)status;
	r->bytes_out = body_len;
	r->state = RQ_ANSWERED;
	enum MHD_Result ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static int dump_to_buf(const char *p, size_t n, void *arg)
{
	sd_buf_append(arg, p, n);
	return 0;
}

struct MHD_Response *sd__http_json_response(json_t *obj, uint64_t *len)
{
	sd_buf b = SD_BUF_INIT;
	if (!obj || json_dump_callback(obj, dump_to_buf, &b, JSON_COMPACT | SD_JSON_DUMP_FLAGS) != 0) {
		sd_buf_reset(&b);
		sd_buf_puts(&b, "{}");
	}
	json_decref(obj);
	sd_buf_puts(&b, "\n"); /* for humans reading curl output */
	size_t n = b.len;
	char *text = sd_buf_steal(&b);
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(n, text, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(text);
		return NULL;
	}
	MHD_add_response_header(resp, "Content-Type", "application/json");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	*len = n;
	return resp;
}

enum MHD_Result sd__http_reply_json(struct MHD_Connection *c, hreq *r, unsigned status,
				    json_t *obj)
{
	uint64_t len = 0;
	struct MHD_Response *resp = sd__http_json_response(obj, &len);
	if (!resp)
		return MHD_NO;
	/* no Basic challenge for the web client (the browser would pop up its
	 * own login dialog over the page) */
	if (status == 401 && !r->web &&
	    !MHD_lookup_connection_value(c, MHD_COOKIE_KIND, "sd_session") &&
	    !MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Requested-With")) {
		sd_buf h = SD_BUF_INIT;
		sd_buf_printf(&h, "Basic realm=\"%s\", charset=\"UTF-8\"",
			      r->srv->conf->auth_realm ? r->srv->conf->auth_realm : "storaged");
		MHD_add_response_header(resp, "WWW-Authenticate", h.data);
		sd_buf_free(&h);
	}
	if (status == 429) {
		/* the lockout's real remaining time (a login failure may have
		 * just started it) */
		int64_t secs = r->srv->api->auth_blocked_for(r->srv->core, r->addr);
		char ra[24];
		snprintf(ra, sizeof ra, "%lld", (long long)(secs > 0 ? secs : 1));
		MHD_add_response_header(resp, "Retry-After", ra);
	} else if (status == 503) {
		MHD_add_response_header(resp, "Retry-After", "5");
	}
	return sd__http_queue(c, r, status, resp, len);
}

enum MHD_Result sd__http_reply_error(struct MHD_Connection *c, hreq *r, unsigned status,
				     const char *code, const char *fmt, ...)
{
	sd_buf msg = SD_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	sd_buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	/* JSON strings are UTF-8; a message quoting client bytes may not be */
	if (!sd_utf8_valid(msg.data, msg.len)) {
		sd_buf_reset(&msg);
		sd_buf_puts(&msg, "(message not valid UTF-8)");
	}
	json_t *o = json_pack("{s:s, s:s}", "error", code, "message", msg.data);
	if (status >= 500)
		r->srv->api->log(r->srv->core, SD_LOG_WARN, HTTP_SRC,
				 "event=error status=%u code=%s user=%s msg=\"%s\"", status, code,
				 r->authed ? r->who.user : "-", msg.data);
	sd_buf_free(&msg);
	return sd__http_reply_json(c, r, status, o);
}

enum MHD_Result sd__http_reply_errno(struct MHD_Connection *c, hreq *r, int err)
{
	const char *code;
	unsigned st = sd__http_status_for(err, &code);
	return sd__http_reply_error(c, r, st, code, "%s", r->srv->api->strerror(err));
}

enum MHD_Result sd__http_reply_empty(struct MHD_Connection *c, hreq *r, unsigned status)
{
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	return sd__http_queue(c, r, status, resp, 0);
}
