/*
 * me.c - self-service: a user manages their own credentials.
 *
 *   POST   /api/v1/me/password        {"old","new"}               -> 204
 *   GET    /api/v1/me/tokens                                      -> {"tokens":[...]}
 *   POST   /api/v1/me/tokens          {"scope","expires"}         -> 201 token + "token"
 *   DELETE /api/v1/me/tokens/<id>                                 -> 204
 *   GET    /api/v1/me/keys                                        -> {"keys":[...]}
 *   POST   /api/v1/me/keys            {"key"}                     -> 201 key
 *   DELETE /api/v1/me/keys/<id|fingerprint>                       -> 204
 *
 * (GET /api/v1/me itself is files.c.) Every call acts through the
 * request's own session (api->self_*), so the engine decides what a
 * session may do to its user's credentials: the old password is verified
 * (a wrong one counts as a failed login), a read-only token may only list
 * (the route table already answers other methods 403 read_only), and a
 * session of an expiring token cannot make a credential that outlives it.
 * Lists name the session's own user only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

/* The sub-resources and their methods (for 405 Allow). */
enum me_res { ME_NONE = 0, ME_PASSWORD, ME_TOKENS, ME_TOKEN, ME_KEYS, ME_KEY };

static const char *const me_allow[] = {
    [ME_NONE] = "", [ME_PASSWORD] = "POST", [ME_TOKENS] = "GET, HEAD, POST",
    [ME_TOKEN] = "DELETE", [ME_KEYS] = "GET, HEAD, POST", [ME_KEY] = "DELETE",
};

/* Which resource the raw tail names; *arg (decoded) for ME_TOKEN/ME_KEY. */
static enum me_res classify(const char *tail, char *arg, size_t arglen)
{
	if (strcmp(tail, "password") == 0)
		return ME_PASSWORD;
	if (strcmp(tail, "tokens") == 0)
		return ME_TOKENS;
	if (strcmp(tail, "keys") == 0)
		return ME_KEYS;
	const char *item = NULL;
	enum me_res res = ME_NONE;
	if (strncmp(tail, "tokens/", 7) == 0) {
		item = tail + 7;
		res = ME_TOKEN;
	} else if (strncmp(tail, "keys/", 5) == 0) {
		item = tail + 5;
		res = ME_KEY;
	}
	if (!item || !*item || strchr(item, '/'))
		return ME_NONE;
	sd_buf dec = SD_BUF_INIT;
	int bad = sd__http_pct_decode(item, arglen - 1, &dec) < 0 || !sd_utf8_valid(dec.data, dec.len);
	if (!bad)
		memcpy(arg, dec.data, dec.len + 1);
	sd_buf_free(&dec);
	return bad ? ME_NONE : res;
}

static int method_is(hreq *r, const char *m)
{
	return strcmp(r->method, m) == 0;
}

static enum MHD_Result not_allowed(struct MHD_Connection *c, hreq *r, enum me_res res)
{
	uint64_t len = 0;
	char msg[64];
	snprintf(msg, sizeof msg, "use %s", me_allow[res]);
	struct MHD_Response *resp = sd__http_json_response(
	    json_pack("{s:s, s:s}", "error", "method_not_allowed", "message", msg), &len);
	if (resp)
		MHD_add_response_header(resp, "Allow", me_allow[res]);
	return sd__http_queue(c, r, 405, resp, len);
}

typedef struct tl_ctx {
	json_t *arr;
	int64_t now;
} tl_ctx;

static int token_cb(void *arg, const sd_token_info *t)
{
	tl_ctx *tc = arg;
	json_array_append_new(tc->arr, sd_json_token(t, tc->now));
	return 0;
}

static int key_cb(void *arg, const sd_key_info *k)
{
	json_array_append_new(arg, sd_json_key(k));
	return 0;
}

/* The user's tokens (or, with want_id > 0, only that one) as JSON. */
static json_t *tokens_json(hreq *r, int64_t want_id)
{
	http_srv *s = r->srv;
	tl_ctx tc = {json_array(), s->api->now(s->core)};
	s->api->token_list(s->core, r->who.user, token_cb, &tc);
	if (want_id <= 0)
		return tc.arr;
	json_t *found = NULL, *t;
	size_t i;
	json_array_foreach(tc.arr, i, t)
	{
		if (json_integer_value(json_object_get(t, "id")) == want_id)
			found = json_incref(t);
	}
	json_decref(tc.arr);
	return found;
}

/* An engine refusal of a self-service call, in words for this user. */
static enum MHD_Result self_err(struct MHD_Connection *c, hreq *r, int rc, const char *what,
				const char *name)
{
	switch (rc) {
	case -ENOENT:
		return sd__http_reply_error(c, r, 404, "not_found", "no such %s: %s", what, name);
	case -EPERM:
		return sd__http_reply_error(c, r, 403, "forbidden",
					    "this login's token expires: it cannot make a %s that "
					    "outlives it (give the new token an earlier \"expires\", "
					    "or log in with the password)",
					    what);
	case -EACCES:
		return sd__http_reply_error(c, r, 403, "forbidden", "not permitted for this login");
	case -EEXIST:
		return sd__http_reply_error(c, r, 409, "exists", "%s already registered", what);
	default:
		return sd__http_reply_errno(c, r, rc);
	}
}

/* ------------------------------------------------------------ bodies */

static json_t *load_body(struct MHD_Connection *c, hreq *r, enum MHD_Result *ret)
{
	json_error_t jerr;
	json_t *j = r->json.len ? json_loadb(r->json.data, r->json.len, 0, &jerr) : NULL;
	if (!j || !json_is_object(j)) {
		json_decref(j);
		*ret = sd__http_reply_error(c, r, 400, "bad_json", "body must be a JSON object");
		return NULL;
	}
	return j;
}

static enum MHD_Result finish_password(struct MHD_Connection *c, hreq *r)
{
	http_srv *s = r->srv;
	enum MHD_Result ret;
	json_t *j = load_body(c, r, &ret);
	if (!j)
		return ret;
	const char *old = json_string_value(json_object_get(j, "old"));
	const char *nw = json_string_value(json_object_get(j, "new"));
	if (!old || !nw || !*nw) {
		ret = sd__http_reply_error(c, r, 400, "bad_request",
					   "need {\"old\": current password, \"new\": new password}");
	} else {
		int rc = s->api->self_password(r->sess, old, nw);
		if (rc == 0) {
			s->api->log(s->core, SD_LOG_INFO, HTTP_SRC, "event=self_password user=%s addr=%s",
				    r->who.user, r->addr);
			ret = sd__http_reply_empty(c, r, 204);
		} else if (rc == -EACCES) {
			ret = sd__http_reply_error(c, r, 403, "wrong_password",
						   "the old password is not right (or this account "
						   "has no password: an admin sets the first one)");
		} else {
			ret = self_err(c, r, rc, "password", "");
		}
	}
	json_decref(j);
	return ret;
}

static enum MHD_Result finish_token(struct MHD_Connection *c, hreq *r)
{
	http_srv *s = r->srv;
	enum MHD_Result ret;
	json_t *j = load_body(c, r, &ret);
	if (!j)
		return ret;
	json_t *jscope = json_object_get(j, "scope"), *jro = json_object_get(j, "readonly");
	const char *scope = json_string_value(jscope);
	int64_t now = s->api->now(s->core), expires = 0;
	if ((jscope && (!scope || (strcmp(scope, "ro") != 0 && strcmp(scope, "rw") != 0))) ||
	    (jro && !json_is_boolean(jro)) ||
	    sd__http_json_expires(json_object_get(j, "expires"), now, &expires) < 0) {
		json_decref(j);
		return sd__http_reply_error(c, r, 400, "bad_request",
					    "optional scope (\"ro\"|\"rw\", default rw), expires (an "
					    "RFC 3339 date-time in the future, e.g. "
					    "\"2030-01-01T00:00:00Z\", or seconds from now; absent = never)");
	}
	int ro = scope ? strcmp(scope, "ro") == 0 : (jro && json_is_true(jro));
	json_decref(j);
	char tok[SD_TOKEN_MAX];
	int64_t id = 0;
	int rc = s->api->self_token_create(r->sess, ro ? SD_SCOPE_RO : SD_SCOPE_RW, expires, tok, &id);
	if (rc < 0)
		return self_err(c, r, rc, "token", "");
	json_t *o = tokens_json(r, id);
	if (!o) { /* the list failed (engine error): what we know */
		sd_token_info ti = {.id = id, .readonly = ro, .created = now,
				    .expires = expires ? now + expires : 0};
		snprintf(ti.user, sizeof ti.user, "%s", r->who.user);
		o = sd_json_token(&ti, now);
	}
	json_object_set_new(o, "token", json_string(tok));
	memset(tok, 0, sizeof tok);
	s->api->log(s->core, SD_LOG_INFO, HTTP_SRC, "event=self_token_create user=%s id=%lld",
		    r->who.user, (long long)id);
	return sd__http_reply_json(c, r, 201, o);
}

static enum MHD_Result finish_key(struct MHD_Connection *c, hreq *r)
{
	http_srv *s = r->srv;
	enum MHD_Result ret;
	json_t *j = load_body(c, r, &ret);
	if (!j)
		return ret;
	const char *key = json_string_value(json_object_get(j, "key"));
	int rc = key ? s->api->self_key_add(r->sess, key) : -EINVAL;
	json_decref(j);
	if (rc == -EINVAL)
		return sd__http_reply_error(c, r, 400, "bad_request",
					    "need {\"key\": \"<type> <base64> [comment]\"} "
					    "(one line of an OpenSSH .pub file)");
	if (rc < 0)
		return self_err(c, r, rc, "key", "");
	json_t *arr = json_array();
	s->api->key_list(s->core, r->who.user, key_cb, arr);
	size_t n = json_array_size(arr);
	json_t *k = n ? json_incref(json_array_get(arr, n - 1)) : json_object();
	json_decref(arr);
	s->api->log(s->core, SD_LOG_INFO, HTTP_SRC, "event=self_key_add user=%s", r->who.user);
	return sd__http_reply_json(c, r, 201, k);
}

/* ------------------------------------------------------------ the handler */

enum MHD_Result sd__http_me_sub(struct MHD_Connection *c, hreq *r, const char *tail)
{
	http_srv *s = r->srv;
	char arg[SD_USERNAME_MAX * 3 + 1];
	enum me_res res = strlen(tail) < sizeof r->route ? classify(tail, arg, sizeof arg) : ME_NONE;
	if (res == ME_NONE)
		return sd__http_reply_error(c, r, 404, "not_found", "no such endpoint");
	int get = method_is(r, "GET") || method_is(r, "HEAD");
	int rc;
	switch (res) {
	case ME_PASSWORD:
		if (!method_is(r, "POST"))
			return not_allowed(c, r, res);
		return sd__http_want_json(r, finish_password);
	case ME_TOKENS:
		if (get)
			return sd__http_reply_json(c, r, 200,
						   json_pack("{s:o}", "tokens", tokens_json(r, 0)));
		if (!method_is(r, "POST"))
			return not_allowed(c, r, res);
		return sd__http_want_json(r, finish_token);
	case ME_KEYS:
		if (get) {
			json_t *arr = json_array();
			if ((rc = s->api->key_list(s->core, r->who.user, key_cb, arr)) < 0) {
				json_decref(arr);
				return sd__http_reply_errno(c, r, rc);
			}
			return sd__http_reply_json(c, r, 200, json_pack("{s:o}", "keys", arr));
		}
		if (!method_is(r, "POST"))
			return not_allowed(c, r, res);
		return sd__http_want_json(r, finish_key);
	case ME_TOKEN: {
		if (!method_is(r, "DELETE"))
			return not_allowed(c, r, res);
		char *end;
		long long id = strtoll(arg, &end, 10);
		if (*end || id <= 0)
			return sd__http_reply_error(c, r, 400, "bad_request", "token id must be a number");
		if ((rc = s->api->self_token_revoke(r->sess, id)) < 0)
			return self_err(c, r, rc, "token", arg);
		s->api->log(s->core, SD_LOG_INFO, HTTP_SRC, "event=self_token_revoke user=%s id=%lld",
			    r->who.user, id);
		return sd__http_reply_empty(c, r, 204);
	}
	case ME_KEY:
		if (!method_is(r, "DELETE"))
			return not_allowed(c, r, res);
		if ((rc = s->api->self_key_remove(r->sess, arg)) < 0)
			return self_err(c, r, rc, "key", arg);
		s->api->log(s->core, SD_LOG_INFO, HTTP_SRC, "event=self_key_remove user=%s",
			    r->who.user);
		return sd__http_reply_empty(c, r, 204);
	default:
		return sd__http_reply_error(c, r, 404, "not_found", "no such endpoint");
	}
}
