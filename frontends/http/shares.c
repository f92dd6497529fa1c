/*
 * shares.c - the admin API of teams and share links (users with
 * SD_USER_ADMIN; the route table checked it):
 *
 *   GET    /api/v1/admin/groups                      every group with its members
 *   POST   /api/v1/admin/groups                      {"name"}
 *   GET    /api/v1/admin/groups/<name>
 *   DELETE /api/v1/admin/groups/<name>
 *   POST   /api/v1/admin/groups/<name>/members       {"user"}
 *   DELETE /api/v1/admin/groups/<name>/members/<user>
 *   GET    /api/v1/admin/shares                      every shared folder
 *   POST   /api/v1/admin/shares                      {"name","quota"}
 *   GET    /api/v1/admin/shares/<name>               the folder and its rules
 *   PATCH  /api/v1/admin/shares/<name>               {"quota"}
 *   DELETE /api/v1/admin/shares/<name>
 *   POST   /api/v1/admin/shares/<name>/rules         {"path","user"|"group","rights"}
 *   DELETE /api/v1/admin/shares/<name>/rules?path=&user=|group=
 *   GET    /api/v1/admin/links[?user=]               every link (never a token)
 *   POST   /api/v1/admin/links                       {"user","path",...} -> the token
 *   DELETE /api/v1/admin/links/<id>                  revoke
 *
 * Every call goes to the engine's admin calls (core/team.c, core/link.c);
 * objects are built by util/sdjson like storagectl --json's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "teams.h"

#define MAX_SEG 4
#define SEG_LEN (SD_USERNAME_MAX * 3 + 1)

/* Decoded segments of the URL tail "a/b/c" (a '/' inside one is %2F). */
static int split(const char *tail, char seg[MAX_SEG][SEG_LEN], int *n)
{
	*n = 0;
	const char *p = tail;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t k = e ? (size_t)(e - p) : strlen(p);
		if (*n >= MAX_SEG || k == 0 || k >= SEG_LEN)
			return -1;
		char raw[SEG_LEN];
		memcpy(raw, p, k);
		raw[k] = '\0';
		sd_buf dec = SD_BUF_INIT;
		int bad = sd__http_pct_decode(raw, SEG_LEN - 1, &dec) < 0 ||
			  !sd_utf8_valid(dec.data, dec.len);
		if (!bad)
			memcpy(seg[*n], dec.data, dec.len + 1);
		sd_buf_free(&dec);
		if (bad)
			return -1;
		(*n)++;
		p += k;
		if (*p == '/')
			p++;
	}
	return 0;
}

static int is(const hreq *r, const char *m)
{
	return strcmp(r->method, m) == 0;
}

static int is_get(const hreq *r)
{
	return is(r, "GET") || is(r, "HEAD");
}

/* An engine error about a team object. */
static enum MHD_Result team_err(struct MHD_Connection *c, hreq *r, int rc, const char *what,
				const char *name)
{
	if (rc == -ENOENT)
		return sd__http_reply_error(c, r, 404, "not_found", "no such %s: %s", what, name);
	if (rc == -EEXIST)
		return sd__http_reply_error(c, r, 409, "exists", "%s %s exists already", what, name);
	if (rc == -EINVAL)
		return sd__http_reply_error(c, r, 400, "bad_request",
					    "bad %s name (letters, digits, . _ - @; 1-64)", what);
	return sd__http_reply_errno(c, r, rc);
}

static enum MHD_Result no_such(struct MHD_Connection *c, hreq *r)
{
	return sd__http_reply_error(c, r, 404, "not_found", "no such endpoint or method");
}

/* The JSON object body, or NULL after answering 400. */
static json_t *body_object(struct MHD_Connection *c, hreq *r, enum MHD_Result *ret)
{
	json_error_t jerr;
	json_t *j = r->json.len ? json_loadb(r->json.data, r->json.len, 0, &jerr) : json_object();
	if (!j || !json_is_object(j)) {
		json_decref(j);
		*ret = sd__http_reply_error(c, r, 400, "bad_json", "body must be a JSON object");
		return NULL;
	}
	return j;
}

/* ------------------------------------------------------------ groups */

static int group_cb(void *arg, const sd_group *g)
{
	json_array_append_new(arg, sd_json_group(g));
	return 0;
}

static enum MHD_Result groups_finish(struct MHD_Connection *c, hreq *r);

enum MHD_Result sd__http_admin_groups(struct MHD_Connection *c, hreq *r, const char *tail)
{
	http_srv *s = r->srv;
	char seg[MAX_SEG][SEG_LEN];
	int n, rc;
	if (strlen(tail) >= sizeof r->route || split(tail, seg, &n) < 0)
		return no_such(c, r);
	snprintf(r->route, sizeof r->route, "%s", tail);
	if (n <= 1 && is_get(r)) {
		json_t *arr = json_array();
		rc = s->api->group_list(s->core, n ? seg[0] : NULL, group_cb, arr);
		if (rc < 0) {
			json_decref(arr);
			return team_err(c, r, rc, "group", n ? seg[0] : "");
		}
		if (n == 1) {
			json_t *g = json_incref(json_array_get(arr, 0));
			json_decref(arr);
			return sd__http_reply_json(c, r, 200, g);
		}
		return sd__http_reply_json(c, r, 200, json_pack("{s:o}", "groups", arr));
	}
	if (n == 1 && is(r, "DELETE")) {
		if ((rc = s->api->group_delete(s->core, seg[0])) < 0)
			return team_err(c, r, rc, "group", seg[0]);
		s->api->log(s->core, SD_LOG_INFO, HTTP_SRC, "event=admin_group_delete admin=%s group=%s",
			    r->who.user, seg[0]);
		return sd__http_reply_empty(c, r, 204);
	}
	if (n == 3 && strcmp(seg[1], "members") == 0 && is(r, "DELETE")) {
		if ((rc = s->api->group_member_remove(s->core, seg[0], seg[2])) < 0)
			return sd__http_reply_error(c, r, rc == -ENOENT ? 404 : 500,
						    rc == -ENOENT ? "not_found" : "internal",
						    "%s", rc == -ENOENT ? "no such group or user, or "
									  "not a member"
									: s->api->strerror(rc));
		s->api->log(s->core, SD_LOG_INFO, HTTP_SRC,
			    "event=admin_member_remove admin=%s group=%s user=%s", r->who.user, seg[0],
			    seg[2]);
		return sd__http_reply_empty(c, r, 204);
	}
	if ((n == 0 && is(r, "POST")) || (n == 2 && strcmp(seg[1], "members") == 0 && is(r, "POST")))
		return sd__http_want_json(r, groups_finish);
	return no_such(c, r);
}

static enum MHD_Result groups_finish(struct MHD_Connection *c, hreq *r)
{
	http_srv *s = r->srv;
	char seg[MAX_SEG][SEG_LEN];
	int n, rc;
	enum MHD_Result ret;
	if (split(r->route, seg, &n) < 0)
		return no_such(c, r);
	json_t *j = body_object(c, r, &ret);
	if (!j)
		return ret;
	const char *name = n ? seg[0] : json_string_value(json_object_get(j, "name"));
	if (n == 0) {
		if (!name) {
			ret = sd__http_reply_error(c, r, 400, "bad_request", "need name");
			goto out;
		}
		if ((rc = s->api->group_add(s->core, name)) < 0) {
			ret = team_err(c, r, rc, "group", name);
			goto out;
		}
		s->api->log(s->core, SD_LOG_INFO, HTTP_SRC, "event=admin_group_add admin=%s group=%s",
			    r->who.user, name);
	} else {
		const char *user = json_string_value(json_object_get(j, "user"));
		if (!user) {
			ret = sd__http_reply_error(c, r, 400, "bad_request", "need user");
			goto out;
		}
		rc = s->api->group_member_add(s->core, name, user);
		if (rc == -ENOENT) {
			ret = sd__http_reply_error(c, r, 404, "not_found", "no such group or user");
			goto out;
		}
		if (rc == -EEXIST) {
			ret = sd__http_reply_error(c, r, 409, "exists", "%s is in %s already", user, name);
			goto out;
		}
		if (rc < 0) {
			ret = sd__http_reply_errno(c, r, rc);
			goto out;
		}
		s->api->log(s->core, SD_LOG_INFO, HTTP_SRC,
			    "event=admin_member_add admin=%s group=%s user=%s", r->who.user, name, user);
	}
	json_t *arr = json_array();
	s->api->group_list(s->core, name, group_cb, arr);
	json_t *g = json_incref(json_array_get(arr, 0));
	json_decref(arr);
	ret = sd__http_reply_json(c, r, 201, g ? g : json_pack("{s:s}", "name", name));
out:
	json_decref(j);
	return ret;
}

/* ------------------------------------------------------------ shares */

static int share_cb(void *arg, const sd_share *sh)
{
	json_array_append_new(arg, sd_json_share(sh));
	return 0;
}

static int rule_cb(void *arg, const sd_share_rule *ru)
{
	json_array_append_new(arg, sd_json_share_rule(ru));
	return 0;
}

/* The folder with its rules, or an error answer. */
static enum MHD_Result share_reply(struct MHD_Connection *c, hreq *r, unsigned status,
				   const char *name)
{
	http_srv *s = r->srv;
	json_t *arr = json_array(), *rules = json_array();
	int rc = s->api->share_list(s->core, name, share_cb, arr);
	if (rc >= 0)
		rc = s->api->share_rules(s->core, name, rule_cb, rules);
	json_t *o = rc >= 0 ? json_incref(json_array_get(arr, 0)) : NULL;
	json_decref(arr);
	if (!o) {
		json_decref(rules);
		return team_err(c, r, rc < 0 ? rc : -ENOENT, "shared folder", name);
	}
	json_object_set_new(o, "rules", rules);
	return sd__http_reply_json(c, r, status, o);
}

static enum MHD_Result shares_finish(struct MHD_Connection *c, hreq *r);

enum MHD_Result sd__http_admin_shares(struct MHD_Connection *c, hreq *r, const char *tail)
{
	http_srv *s = r->srv;
	char seg[MAX_SEG][SEG_LEN];
	int n, rc;
	if (strlen(tail) >= sizeof r->route || split(tail, seg, &n) < 0)
		return no_such(c, r);
	snprintf(r->route, sizeof r->route, "%s", tail);
	if (n == 0 && is_get(r)) {
		json_t *arr = json_array();
		if ((rc = s->api->share_list(s->core, NULL, share_cb, arr)) < 0) {
			json_decref(arr);
			return sd__http_reply_errno(c, r, rc);
		}
		return sd__http_reply_json(c, r, 200, json_pack("{s:o}", "shares", arr));
	}
	if (n == 1 && is_get(r))
		return share_reply(c, r, 200, seg[0]);
	if (n == 1 && is(r, "DELETE")) {
		if ((rc = s->api->share_delete(s->core, seg[0])) < 0)
			return team_err(c, r, rc, "shared folder", seg[0]);
		s->api->log(s->core, SD_LOG_INFO, HTTP_SRC, "event=admin_share_delete admin=%s share=%s",
			    r->who.user, seg[0]);
		return sd__http_reply_empty(c, r, 204);
	}
	if (n == 2 && strcmp(seg[1], "rules") == 0 && is(r, "DELETE")) {
		char path[SD_PATH_MAX + 1], user[SD_USERNAME_MAX + 1], group[SD_USERNAME_MAX + 1];
		int hp = sd__http_arg(c, "path", path, sizeof path);
		int hu = sd__http_arg(c, "user", user, sizeof user);
		int hg = sd__http_arg(c, "group", group, sizeof group);
		if (hp != 1 || hu < 0 || hg < 0 || (hu == 1) == (hg == 1))
			return sd__http_reply_error(c, r, 400, "bad_request",
						    "need ?path= and one of ?user= or ?group=");
		rc = s->api->share_revoke(s->core, seg[0], path, hu == 1 ? user : NULL,
					  hg == 1 ? group : NULL);
		if (rc == -ENOENT)
			return sd__http_reply_error(c, r, 404, "not_found", "no such rule");
		if (rc < 0)
			return sd__http_reply_errno(c, r, rc);
		return sd__http_reply_empty(c, r, 204);
	}
	if ((n == 0 && is(r, "POST")) || (n == 1 && (is(r, "PATCH") || is(r, "PUT"))) ||
	    (n == 2 && strcmp(seg[1], "rules") == 0 && is(r, "POST")))
		return sd__http_want_json(r, shares_finish);
	return no_such(c, r);
}

static enum MHD_Result shares_finish(struct MHD_Connection *c, hreq *r)
{
	http_srv *s = r->srv;
	char seg[MAX_SEG][SEG_LEN];
	int n, rc;
	enum MHD_Result ret;
	if (split(r->route, seg, &n) < 0)
		return no_such(c, r);
	json_t *j = body_object(c, r, &ret);
	if (!j)
		return ret;
	json_t *q = json_object_get(j, "quota");
	if (q && (!json_is_integer(q) || json_integer_value(q) < 0)) {
		ret = sd__http_reply_error(c, r, 400, "bad_request", "quota must be bytes >= 0");
		goto out;
	}
	int64_t quota = q ? json_integer_value(q) : 0;
	if (n == 0) {
		const char *name = json_string_value(json_object_get(j, "name"));
		if (!name) {
			ret = sd__http_reply_error(c, r, 400, "bad_request", "need name; optional quota");
			goto out;
		}
		if ((rc = s->api->share_create(s->core, name, quota, NULL)) < 0) {
			ret = team_err(c, r, rc, "shared folder", name);
			goto out;
		}
		s->api->log(s->core, SD_LOG_INFO, HTTP_SRC, "event=admin_share_create admin=%s share=%s",
			    r->who.user, name);
		ret = share_reply(c, r, 201, name);
		goto out;
	}
	if (n == 1) {
		if (q && (rc = s->api->share_set_quota(s->core, seg[0], quota)) < 0) {
			ret = team_err(c, r, rc, "shared folder", seg[0]);
			goto out;
		}
		ret = share_reply(c, r, 200, seg[0]);
		goto out;
	}
	const char *path = json_string_value(json_object_get(j, "path"));
	const char *user = json_string_value(json_object_get(j, "user"));
	const char *group = json_string_value(json_object_get(j, "group"));
	json_t *jr = json_object_get(j, "rights");
	int ok = 0;
	unsigned rights = 0;
	if (json_is_string(jr))
		rights = sd_json_rights_parse(json_string_value(jr), &ok);
	if (!path || !user == !group || !ok) {
		ret = sd__http_reply_error(c, r, 400, "bad_request",
					   "need path, one of user or group, and rights (\"ro\", \"rw\", "
					   "\"full\", \"dropbox\", \"none\", or \"list,read,write,delete,"
					   "rename,share\")");
		goto out;
	}
	rc = s->api->share_grant(s->core, seg[0], path, user, group, rights);
	if (rc == -ENOENT) {
		ret = sd__http_reply_error(c, r, 404, "not_found", "no such shared folder, %s or path",
					   user ? "user" : "group");
		goto out;
	}
	if (rc < 0) {
		ret = sd__http_reply_errno(c, r, rc);
		goto out;
	}
	s->api->log(s->core, SD_LOG_INFO, HTTP_SRC,
		    "event=admin_share_grant admin=%s share=%s %s=%s rights=%u", r->who.user, seg[0],
		    user ? "user" : "group", user ? user : group, rights);
	ret = share_reply(c, r, 200, seg[0]);
out:
	json_decref(j);
	return ret;
}

/* ------------------------------------------------------------ links */

typedef struct link_ctx {
	json_t *arr;
	int64_t now;
} link_ctx;

static int link_cb(void *arg, const sd_link_info *l)
{
	link_ctx *x = arg;
	json_array_append_new(x->arr, sd_json_link(l, x->now));
	return 0;
}

static enum MHD_Result admin_links_finish(struct MHD_Connection *c, hreq *r);

enum MHD_Result sd__http_admin_links(struct MHD_Connection *c, hreq *r, const char *tail)
{
	http_srv *s = r->srv;
	char seg[MAX_SEG][SEG_LEN];
	int n, rc;
	if (split(tail, seg, &n) < 0)
		return no_such(c, r);
	if (n == 0 && is_get(r)) {
		char user[SD_USERNAME_MAX + 1];
		int has = sd__http_arg(c, "user", user, sizeof user);
		if (has < 0)
			return sd__http_reply_error(c, r, 400, "bad_request", "bad user");
		link_ctx x = {json_array(), s->api->now(s->core)};
		rc = s->api->link_list_all(s->core, has == 1 ? user : NULL, link_cb, &x);
		if (rc < 0) {
			json_decref(x.arr);
			return sd__http_reply_errno(c, r, rc);
		}
		return sd__http_reply_json(c, r, 200, json_pack("{s:o}", "links", x.arr));
	}
	if (n == 1 && is(r, "DELETE")) {
		char *end;
		long long id = strtoll(seg[0], &end, 10);
		if (*end || id <= 0)
			return sd__http_reply_error(c, r, 400, "bad_request", "link id must be a number");
		if ((rc = s->api->link_revoke_any(s->core, id)) < 0)
			return team_err(c, r, rc, "link", seg[0]);
		s->api->log(s->core, SD_LOG_INFO, HTTP_SRC, "event=admin_link_revoke admin=%s id=%lld",
			    r->who.user, id);
		return sd__http_reply_empty(c, r, 204);
	}
	if (n == 0 && is(r, "POST"))
		return sd__http_want_json(r, admin_links_finish);
	return no_such(c, r);
}

static enum MHD_Result admin_links_finish(struct MHD_Connection *c, hreq *r)
{
	http_srv *s = r->srv;
	enum MHD_Result ret;
	json_t *j = body_object(c, r, &ret);
	if (!j)
		return ret;
	const char *user = json_string_value(json_object_get(j, "user"));
	const char *path = json_string_value(json_object_get(j, "path"));
	sd_link_opts o;
	const char *why = NULL;
	if (!user || !path || sd__http_link_opts(s, j, &o, &why) < 0) {
		ret = sd__http_reply_error(c, r, 400, "bad_request", "need user and path; %s",
					   why ? why : "see docs/rest-api.md");
		goto out;
	}
	char tok[SD_LINK_TOKEN_MAX];
	sd_link_info li;
	int rc = s->api->link_create_as(s->core, user, path, &o, tok, &li);
	if (rc < 0) {
		ret = rc == -ENOENT ? sd__http_reply_error(c, r, 404, "not_found",
							   "no such user, or no such path in their view")
				    : sd__http_reply_errno(c, r, rc);
		goto out;
	}
	s->api->log(s->core, SD_LOG_INFO, HTTP_SRC, "event=admin_link_create admin=%s user=%s id=%lld",
		    r->who.user, user, (long long)li.id);
	ret = sd__http_reply_json(c, r, 201, sd__http_link_made(s, &li, tok));
	memset(tok, 0, sizeof tok);
out:
	json_decref(j);
	return ret;
}
