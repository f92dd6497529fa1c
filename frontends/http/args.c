/*
 * args.c - what a request says besides its body: headers, query arguments
 * and path arguments, decoded once and checked the same way for every
 * handler.
 *
 * Invariants:
 *  1. MHD's own unescaping is off (module.c), so values arrive raw and are
 *     percent-decoded exactly once, here.
 *  2. A path argument reaches the engine as the client wrote it, decoded:
 *     never folded, so the engine's resolver alone decides what "." and
 *     ".." mean. This file only refuses what must not reach it at all: a
 *     decoded NUL (a C string cannot carry it) or backslash, and double
 *     encoding. A ".." that would climb above the root stays at the root,
 *     as in every protocol (the engine's resolver).
 *  3. Query values are valid UTF-8, or refused.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "http.h"

const char *sd__http_hdr(struct MHD_Connection *c, const char *name)
{
	return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

int sd__http_arg(struct MHD_Connection *c, const char *name, char *out, size_t outlen)
{
	const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
	if (!v)
		return 0;
	if (outlen == 0)
		return -EINVAL;
	sd_buf b = SD_BUF_INIT;
	int rc = sd__http_pct_decode(v, outlen - 1, &b);
	if (rc == 0 && !sd_utf8_valid(b.data, b.len))
		rc = -EINVAL;
	if (rc == 0) {
		memcpy(out, b.data, b.len);
		out[b.len] = '\0';
	}
	sd_buf_free(&b);
	return rc < 0 ? -EINVAL : 1;
}

int sd__http_arg_true(struct MHD_Connection *c, const char *name)
{
	char v[16];
	if (sd__http_arg(c, name, v, sizeof v) != 1)
		return 0;
	return strcmp(v, "1") == 0 || strcasecmp(v, "yes") == 0 || strcasecmp(v, "true") == 0;
}

int sd__http_check_path(struct MHD_Connection *c, hreq *r, const char *p, const char *what,
			enum MHD_Result *ret)
{
	if (sd__http_double_encoded(p)) {
		*ret = sd__http_reply_error(c, r, 400, "bad_path",
					    "%s holds a double-encoded character", what);
		return -1;
	}
	return 0;
}

int sd__http_show_path(struct MHD_Connection *c, hreq *r, enum MHD_Result *ret)
{
	http_srv *s = r->srv;
	if (sd__http_check_path(c, r, r->path.data, "path", ret) < 0)
		return -1;
	int rc = s->api->resolve(r->sess, r->path.data, r->path.len, r->shown, sizeof r->shown);
	if (rc < 0) {
		*ret = sd__http_reply_errno(c, r, rc);
		return -1;
	}
	return 0;
}

int sd__http_take_path(struct MHD_Connection *c, hreq *r, const char *raw, enum MHD_Result *ret)
{
	sd_buf_reset(&r->path);
	sd_buf_puts(&r->path, "/");
	int rc = sd__http_pct_decode(raw, SD_PATH_MAX, &r->path);
	if (rc == -ENAMETOOLONG) {
		*ret = sd__http_reply_error(c, r, 400, "name_too_long", "path too long");
		return -1;
	}
	if (rc < 0) {
		*ret = sd__http_reply_error(c, r, 400, "bad_path",
					    "path has a bad escape, a NUL or a backslash");
		return -1;
	}
	return sd__http_show_path(c, r, ret);
}

enum MHD_Result sd__http_want_json(hreq *r, http_finish_fn finish)
{
	r->state = RQ_BODY;
	r->body = BODY_JSON;
	r->finish = finish;
	return MHD_YES;
}

int sd__http_json_expires(json_t *v, int64_t now, int64_t *secs)
{
	*secs = 0;
	if (!v || json_is_null(v))
		return 0;
	if (json_is_integer(v)) {
		json_int_t n = json_integer_value(v);
		if (n < 0 || n > (json_int_t)100 * 366 * 86400)
			return -1;
		*secs = (int64_t)n;
		return 0;
	}
	if (!json_is_string(v))
		return -1;
	int64_t t = sd__http_parse_rfc3339(json_string_value(v));
	if (t < 0 || t <= now)
		return -1;
	*secs = t - now;
	return 0;
}
