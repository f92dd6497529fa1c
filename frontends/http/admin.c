/*
 * admin.c - the admin API of the HTTP front end (users with SD_USER_ADMIN):
 *
 *   GET    /api/v1/admin/users                 list users
 *   POST   /api/v1/admin/users                 {"name","password","quota","admin"}
 *   GET    /api/v1/admin/users/<name>          one user
 *   PATCH  /api/v1/admin/users/<name>          {"password","quota","disabled","admin"}
 *   DELETE /api/v1/admin/users/<name>          delete the user (files: logical
 *                                              delete, purged by the cleaner)
 *   GET    /api/v1/admin/users/<name>/keys     list the user's SSH keys
 *   POST   /api/v1/admin/users/<name>/keys     {"key": "<authorized_keys line>"}
 *   DELETE /api/v1/admin/users/<name>/keys/<k> remove a key (id or fingerprint)
 *   GET    /api/v1/admin/tokens[?user=]        list tokens
 *   POST   /api/v1/admin/tokens                {"user","readonly"|"scope","expires"} -> token
 *   DELETE /api/v1/admin/tokens/<id>           revoke
 *   GET    /api/v1/admin/stats                 engine counters
 *   POST   /api/v1/admin/gc[?force=1]          one cleaner pass now
 *
 * The route table (routes.c) sends every /api/v1/admin/ request here once
 * the user is known to be an admin. Calls without a body (GET, DELETE) are
 * answered from the first handler call; the others collect a JSON body
 * first (sd__http_want_json) and are answered by admin_finish.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

/* Objects are built by util/sdjson (sd_json_*), the same functions
 * storagectl --json uses: one field list per engine type. */

static int user_cb(void *arg, const sd_user *u)
{
	json_array_append_new(arg, sd_json_user(u));
	return 0;
}

typedef struct token_ctx {
	json_t *arr;     /* list: every token */
	int64_t now;
	int64_t want_id; /* lookup: only this one, into *found */
	json_t *found;
} token_ctx;

static int token_cb(void *arg, const sd_token_info *t)
{
	token_ctx *tc = arg;
	if (tc->arr) {
		json_array_append_new(tc->arr, sd_json_token(t, tc->now));
		return 0;
	}
	if (t->id != tc->want_id)
		return 0;
	tc->found = sd_json_token(t, tc->now);
	return 1;
}

#define MAX_SEG 4

/* Split r->route "a/b/c/d" into up to MAX_SEG decoded segments (a '/'
 * inside one is sent as %2F, e.g. in a key fingerprint). -1 on bad
 * input. */
static int split_route(const char *route, char seg[MAX_SEG][SD_USERNAME_MAX * 3 + 1], int *nseg)
{
	*nseg = 0;
	const char *p = route;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (*nseg >= MAX_SEG || n == 0 || n > SD_USERNAME_MAX * 3)
			return -1;
		char raw[SD_USERNAME_MAX * 3 + 1];
		memcpy(raw, p, n);
		raw[n] = '\0';
		sd_buf dec = SD_BUF_INIT;
		int bad = sd__http_pct_decode(raw, sizeof seg[0] - 1, &dec) < 0 ||
			  !sd_utf8_valid(dec.data, dec.len);
		if (!bad)
			memcpy(seg[*nseg], dec.data, dec.len + 1);
		sd_buf_free(&dec);
		if (bad)
			return -1;
		(*nseg)++;
		p += n;
		if (*p == '/')
			p++;
	}
	return 0;
}

/* An engine error about an account object: -ENOENT says which object is
 * missing ("no such user", "no such token" ...), never "no such file". */
static enum MHD_Result account_err(struct MHD_Connection *c, hreq *r, int rc, const char *what,
				   const char *name)
{
	if (rc == -ENOENT)
		return sd__http_reply_error(c, r, 404, "not_found", "no such %s: %s", what, name);
	return sd__http_reply_errno(c, r, rc);
}

static int key_cb(void *arg, const sd_key_info *k)
{
	json_array_append_new(arg, sd_json_key(k));
	return 0;
}

static enum MHD_Result stats_reply(struct MHD_Connection *c, hreq *r)
{
	http_srv *s = r->srv;
	sd_stats st;
	int rc = s->api->stats(s->core, &st);
	if (rc < 0)
		return sd__http_reply_errno(c, r, rc);
	return sd__http_reply_json(c, r, 200, sd_json_stats(&st));
}

static enum MHD_Result admin_finish(struct MHD_Connection *c, hreq *r);

enum MHD_Result sd__http_admin_begin(struct MHD_Connection *c, hreq *r, const char *tail)
{
	http_srv *s = r->srv;
	if (strlen(tail) >= sizeof r->route)
		return sd__http_reply_error(c, r, 404, "not_found", "no such endpoint");
	snprintf(r->route, sizeof r->route, "%s", tail);
	char seg[MAX_SEG][SD_USERNAME_MAX * 3 + 1];
	int n;
	if (split_route(tail, seg, &n) < 0 || n == 0)
		return sd__http_reply_error(c, r, 404, "not_found", "no such endpoint");
	const char *m = r->method;
	int get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
	int del = strcmp(m, "DELETE") == 0;
	int rc;
	if (strcmp(seg[0], "users") == 0) {
		if (n == 1 && get) {
			json_t *arr = json_array();
			rc = s->api->user_list(s->core, user_cb, arr);
			if (rc < 0) {
				json_decref(arr);
				return sd__http_reply_errno(c, r, rc);
			}
			return sd__http_reply_json(c, r, 200, json_pack("{s:o}", "users", arr));
		}
		if (n == 2 && get) {
			sd_user u;
			if ((rc = s->api->user_get(s->core, seg[1], &u)) < 0)
				return account_err(c, r, rc, "user", seg[1]);
			return sd__http_reply_json(c, r, 200, sd_json_user(&u));
		}
		if (n == 2 && del) {
			if ((rc = s->api->user_delete(s->core, seg[1])) < 0)
				return account_err(c, r, rc, "user", seg[1]);
			s->api->log(s->core, SD_LOG_INFO, HTTP_SRC, "event=admin_user_delete admin=%s user=%s",
				    r->who.user, seg[1]);
			return sd__http_reply_empty(c, r, 204);
		}
		if (n == 3 && strcmp(seg[2], "keys") == 0 && get) {
			json_t *arr = json_array();
			if ((rc = s->api->key_list(s->core, seg[1], key_cb, arr)) < 0) {
				json_decref(arr);
				return account_err(c, r, rc, "user", seg[1]);
			}
			return sd__http_reply_json(c, r, 200, json_pack("{s:o}", "keys", arr));
		}
		if (n == 4 && strcmp(seg[2], "keys") == 0 && del) {
			sd_user u;
			if ((rc = s->api->user_get(s->core, seg[1], &u)) < 0)
				return account_err(c, r, rc, "user", seg[1]);
			if ((rc = s->api->key_remove(s->core, seg[1], seg[3])) < 0)
				return account_err(c, r, rc, "key", seg[3]);
			s->api->log(s->core, SD_LOG_INFO, HTTP_SRC,
				    "event=admin_key_remove admin=%s user=%s", r->who.user, seg[1]);
			return sd__http_reply_empty(c, r, 204);
		}
	} else if (strcmp(seg[0], "tokens") == 0) {
		if (n == 1 && get) {
			char user[SD_USERNAME_MAX + 1];
			int has = sd__http_arg(c, "user", user, sizeof user);
			if (has < 0)
				return sd__http_reply_error(c, r, 400, "bad_request", "bad user");
			token_ctx tc = {json_array(), s->api->now(s->core), 0, NULL};
			rc = s->api->token_list(s->core, has == 1 ? user : NULL, token_cb, &tc);
			if (rc < 0) {
				json_decref(tc.arr);
				return sd__http_reply_errno(c, r, rc);
			}
			return sd__http_reply_json(c, r, 200, json_pack("{s:o}", "tokens", tc.arr));
		}
		if (n == 2 && del) {
			char *end;
			long long id = strtoll(seg[1], &end, 10);
			if (*end || id <= 0)
				return sd__http_reply_error(c, r, 400, "bad_request", "token id must be a number");
			if ((rc = s->api->token_revoke(s->core, id)) < 0)
				return account_err(c, r, rc, "token", seg[1]);
			return sd__http_reply_empty(c, r, 204);
		}
	} else if (strcmp(seg[0], "stats") == 0 && n == 1 && get) {
		return stats_reply(c, r);
	}
	if (get || del)
		return sd__http_reply_error(c, r, 404, "not_found", "no such endpoint or method");
	/* calls with a JSON body */
	return sd__http_want_json(r, admin_finish);
}

static int get_int(json_t *j, const char *key, int64_t *v)
{
	json_t *x = json_object_get(j, key);
	if (!x)
		return 0;
	if (!json_is_integer(x))
		return -1;
	*v = json_integer_value(x);
	return 1;
}

static int get_bool(json_t *j, const char *key, int *v)
{
	json_t *x = json_object_get(j, key);
	if (!x)
		return 0;
	if (!json_is_boolean(x))
		return -1;
	*v = json_is_true(x);
	return 1;
}

static enum MHD_Result admin_finish(struct MHD_Connection *c, hreq *r)
{
	http_srv *s = r->srv;
	char seg[MAX_SEG][SD_USERNAME_MAX * 3 + 1];
	int n;
	if (split_route(r->route, seg, &n) < 0 || n == 0)
		return sd__http_reply_error(c, r, 404, "not_found", "no such endpoint");
	json_t *j = NULL;
	if (r->json.len) {
		json_error_t jerr;
		j = json_loadb(r->json.data, r->json.len, 0, &jerr);
		if (!j || !json_is_object(j)) {
			json_decref(j);
			return sd__http_reply_error(c, r, 400, "bad_json", "body must be a JSON object");
		}
	} else {
		j = json_object();
	}
	const char *m = r->method;
	int post = strcmp(m, "POST") == 0;
	int patch = post || strcmp(m, "PATCH") == 0 || strcmp(m, "PUT") == 0;
	enum MHD_Result ret;
	int rc = 0;
	int64_t iv;
	int bv;
	/* what the calls may find missing, for account_err */
	const char *what = "user", *what_name = n >= 2 ? seg[1] : "";

	if (strcmp(seg[0], "users") == 0 && n == 1 && post) {
		const char *name = json_string_value(json_object_get(j, "name"));
		const char *pw = json_string_value(json_object_get(j, "password"));
		int64_t quota = 0;
		int admin = 0;
		if (!name || get_int(j, "quota", &quota) < 0 || quota < 0 ||
		    get_bool(j, "admin", &admin) < 0) {
			ret = sd__http_reply_error(c, r, 400, "bad_request",
						   "need name; optional password, quota (bytes), admin (bool)");
			goto out;
		}
		int64_t id = 0;
		rc = s->api->user_add(s->core, name, pw, quota, admin ? SD_USER_ADMIN : 0, &id);
		if (rc == -EEXIST) {
			ret = sd__http_reply_error(c, r, 409, "exists", "user %s exists", name);
			goto out;
		}
		if (rc == -EINVAL) {
			ret = sd__http_reply_error(c, r, 400, "bad_request",
						   "bad user name (letters, digits, . _ - @; 1-64)");
			goto out;
		}
		if (rc < 0) {
			ret = sd__http_reply_errno(c, r, rc);
			goto out;
		}
		s->api->log(s->core, SD_LOG_INFO, HTTP_SRC, "event=admin_user_add admin=%s user=%s",
			    r->who.user, name);
		sd_user u;
		if (s->api->user_get(s->core, name, &u) == 0)
			ret = sd__http_reply_json(c, r, 201, sd_json_user(&u));
		else
			ret = sd__http_reply_json(c, r, 201, json_pack("{s:I, s:s}", "id", (json_int_t)id,
								       "name", name));
		goto out;
	}
	if (strcmp(seg[0], "users") == 0 && n == 2 && patch) {
		const char *name = seg[1];
		json_t *pw = json_object_get(j, "password");
		if (pw && !json_is_string(pw)) {
			ret = sd__http_reply_error(c, r, 400, "bad_request", "password must be a string");
			goto out;
		}
		if (pw && (rc = s->api->user_set_password(s->core, name, json_string_value(pw))) < 0)
			goto err;
		if ((rc = get_int(j, "quota", &iv)) < 0 || (rc == 1 && iv < 0)) {
			ret = sd__http_reply_error(c, r, 400, "bad_request", "quota must be bytes >= 0");
			goto out;
		}
		if (rc == 1 && (rc = s->api->user_set_quota(s->core, name, iv)) < 0)
			goto err;
		if ((rc = get_bool(j, "disabled", &bv)) < 0) {
			ret = sd__http_reply_error(c, r, 400, "bad_request", "disabled must be a boolean");
			goto out;
		}
		if (rc == 1 && (rc = s->api->user_set_disabled(s->core, name, bv)) < 0)
			goto err;
		if ((rc = get_bool(j, "admin", &bv)) < 0) {
			ret = sd__http_reply_error(c, r, 400, "bad_request", "admin must be a boolean");
			goto out;
		}
		if (rc == 1 && (rc = s->api->user_set_admin(s->core, name, bv)) < 0)
			goto err;
		s->api->log(s->core, SD_LOG_INFO, HTTP_SRC, "event=admin_user_change admin=%s user=%s",
			    r->who.user, name);
		sd_user u;
		if ((rc = s->api->user_get(s->core, name, &u)) < 0)
			goto err;
		ret = sd__http_reply_json(c, r, 200, sd_json_user(&u));
		goto out;
	}

	if (strcmp(seg[0], "users") == 0 && n == 3 && strcmp(seg[2], "keys") == 0 && post) {
		const char *key = json_string_value(json_object_get(j, "key"));
		if (!key) {
			ret = sd__http_reply_error(c, r, 400, "bad_request", "need key (authorized_keys line)");
			goto out;
		}
		if ((rc = s->api->key_add(s->core, seg[1], key)) == -EEXIST) {
			ret = sd__http_reply_error(c, r, 409, "exists", "key already registered for %s",
						   seg[1]);
			goto out;
		}
		if (rc == -EINVAL) {
			ret = sd__http_reply_error(c, r, 400, "bad_request",
						   "not a public key line (type base64 [comment])");
			goto out;
		}
		if (rc < 0)
			goto err;
		/* answer the key as the list shows it (the newest one) */
		json_t *arr = json_array();
		s->api->key_list(s->core, seg[1], key_cb, arr);
		size_t nk = json_array_size(arr);
		json_t *k = nk ? json_incref(json_array_get(arr, nk - 1)) : json_pack("{s:s}", "user", seg[1]);
		json_decref(arr);
		ret = sd__http_reply_json(c, r, 201, k);
		goto out;
	}
	if (strcmp(seg[0], "tokens") == 0 && n == 1 && post) {
		const char *user = json_string_value(json_object_get(j, "user"));
		const char *scope = json_string_value(json_object_get(j, "scope"));
		int ro = 0;
		int64_t expires = 0;
		if (!user || get_bool(j, "readonly", &ro) < 0 ||
		    (json_object_get(j, "scope") && (!scope || (strcmp(scope, "ro") != 0 &&
								 strcmp(scope, "rw") != 0))) ||
		    sd__http_json_expires(json_object_get(j, "expires"), s->api->now(s->core), &expires) < 0) {
			ret = sd__http_reply_error(c, r, 400, "bad_request",
						   "need user; optional scope (\"ro\"|\"rw\") or readonly (bool), "
						   "expires (an RFC 3339 date-time in the future, e.g. "
						   "\"2030-01-01T00:00:00Z\", or seconds from now)");
			goto out;
		}
		if (scope)
			ro = strcmp(scope, "ro") == 0;
		char tok[SD_TOKEN_MAX];
		int64_t id = 0;
		rc = s->api->token_create(s->core, user, ro ? SD_SCOPE_RO : SD_SCOPE_RW, expires, tok, &id);
		what_name = user;
		if (rc < 0)
			goto err;
		/* the token object as the list shows it, plus the secret */
		token_ctx tc = {NULL, s->api->now(s->core), id, NULL};
		s->api->token_list(s->core, user, token_cb, &tc);
		if (!tc.found) { /* the list failed (engine error): what we know */
			sd_token_info ti = {.id = id, .readonly = ro, .created = tc.now,
					    .expires = expires ? tc.now + expires : 0};
			snprintf(ti.user, sizeof ti.user, "%s", user);
			tc.found = sd_json_token(&ti, tc.now);
		}
		json_object_set_new(tc.found, "token", json_string(tok));
		ret = sd__http_reply_json(c, r, 201, tc.found);
		memset(tok, 0, sizeof tok);
		goto out;
	}
	if (strcmp(seg[0], "gc") == 0 && n == 1 && post) {
		int force = sd__http_arg_true(c, "force");
		if (get_bool(j, "force", &bv) == 1)
			force = bv;
		sd_gc_report rep;
		memset(&rep, 0, sizeof rep);
		if ((rc = s->api->gc_run(s->core, force, &rep)) < 0)
			goto err;
		ret = sd__http_reply_json(c, r, 200, sd_json_gc_report(&rep));
		goto out;
	}
	ret = sd__http_reply_error(c, r, 404, "not_found", "no such endpoint or method");
	goto out;
err:
	ret = account_err(c, r, rc, what, what_name);
out:
	json_decref(j);
	return ret;
}
