/*
 * history.c - the history API of the HTTP front end (core/history.c does
 * the work; this file translates):
 *   GET  /api/v1/versions/<path>                       versions of a file
 *   POST /api/v1/versions/<path>?op=restore&version=N  make version N current again
 *   GET  /api/v1/trash                                 the trash
 *   GET  /api/v1/trash/<id>                            one item
 *   POST /api/v1/trash/<id>?op=restore[&to=<path>]     restore it
 *   POST /api/v1/trash/<id>?op=purge   DELETE /api/v1/trash/<id>   delete it for good
 *   POST /api/v1/trash?op=empty        DELETE /api/v1/trash        empty the trash
 *   POST /api/v1/rollback {"path": "/p", "at": "<RFC 3339>"}      roll back
 *   GET  /api/v1/fs/<path>?at=<RFC 3339>    (files.c calls sd__http_fs_at)
 *   GET  /api/v1/stat/<path>?at=<RFC 3339>  (files.c calls sd__http_stat_at)
 * The past is read through the engine's /.snapshots/ paths (api->at_path),
 * so ?at= answers exactly what the virtual folders show every protocol.
 * Times come in as RFC 3339 (util/timefmt.h) or ms since the epoch, and go
 * out as RFC 3339 UTC with ms.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "history.h"
#include "util/timefmt.h"

/* ?at= or a JSON "at": RFC 3339, or a whole number of ms since the epoch. */
static int parse_at(const char *s, int64_t *ms)
{
	if (sd_time_parse(s, ms) == 0)
		return 0;
	char *end;
	long long v = strtoll(s, &end, 10);
	if (*s >= '0' && *s <= '9' && !*end && v >= 0) {
		*ms = v;
		return 0;
	}
	return -EINVAL;
}

static enum MHD_Result bad_at(struct MHD_Connection *c, hreq *r)
{
	return sd__http_reply_error(c, r, 400, "bad_time",
				    "at must be an RFC 3339 time like 2026-11-21T10:00:00.123Z "
				    "(or ms since the epoch)");
}

/* The ?at= moment of a request: 1 found (*ms), 0 absent, -1 after an error
 * answer (*ret). */
static int query_at(struct MHD_Connection *c, hreq *r, int64_t *ms, enum MHD_Result *ret)
{
	char v[64];
	int rc = sd__http_arg(c, "at", v, sizeof v);
	if (rc == 0)
		return 0;
	if (rc < 0 || parse_at(v, ms) < 0) {
		*ret = bad_at(c, r);
		return -1;
	}
	return 1;
}

/* r->path as it was at `at`: its /.snapshots/ path into out. */
static int past_path(hreq *r, int64_t at, char out[SD_PATH_MAX + 1])
{
	http_srv *s = r->srv;
	return s->api->at_path(r->sess, r->path.data, at, out, SD_PATH_MAX + 1);
}

/* ------------------------------------------------------------ ?at= */

struct list_ctx {
	json_t *arr;
	char last[SD_NAME_MAX + 1];
};

static int list_cb(void *arg, const sd_dirent *e)
{
	struct list_ctx *l = arg;
	json_array_append_new(l->arr, sd_json_stat(NULL, e->name, &e->st));
	snprintf(l->last, sizeof l->last, "%s", e->name);
	return 0;
}

/* A page of the folder vpath (the past of r->path): ?limit= and ?after=
 * as for a live listing. */
static enum MHD_Result list_past(struct MHD_Connection *c, hreq *r, const char *vpath,
				 int64_t at)
{
	http_srv *s = r->srv;
	char buf[32], after[SD_NAME_MAX + 1], when[40];
	long long limit = s->conf->list_limit;
	int rc = sd__http_arg(c, "limit", buf, sizeof buf);
	if (rc < 0)
		return sd__http_reply_error(c, r, 400, "bad_request", "bad limit");
	if (rc == 1) {
		char *end;
		limit = strtoll(buf, &end, 10);
		if (*end || limit < 1)
			return sd__http_reply_error(c, r, 400, "bad_request",
						    "limit must be a positive integer");
		if (limit > s->conf->list_limit)
			limit = s->conf->list_limit;
	}
	rc = sd__http_arg(c, "after", after, sizeof after);
	if (rc < 0)
		return sd__http_reply_error(c, r, 400, "bad_request", "bad after");
	struct list_ctx l = {json_array(), ""};
	int more = 0;
	rc = s->api->readdir(r->sess, vpath, rc == 1 ? after : NULL, (int)limit, list_cb, &l, &more);
	if (rc < 0) {
		json_decref(l.arr);
		return sd__http_reply_errno(c, r, rc);
	}
	sd_json_time_text(at, 1, when, sizeof when);
	json_t *o = json_object();
	json_object_set_new(o, "path", sd_json_string(r->shown));
	json_object_set_new(o, "at", json_string(when));
	json_object_set_new(o, "entries", l.arr);
	json_object_set_new(o, "more", json_boolean(more));
	json_object_set_new(o, "next", more && l.last[0] ? sd_json_string(l.last) : json_null());
	return sd__http_reply_json(c, r, 200, o);
}

int sd__http_fs_at(struct MHD_Connection *c, hreq *r, enum MHD_Result *ret)
{
	http_srv *s = r->srv;
	int64_t at;
	int q = query_at(c, r, &at, ret);
	if (q <= 0)
		return q;
	char vpath[SD_PATH_MAX + 1];
	sd_stat st;
	int rc = past_path(r, at, vpath);
	if (rc == 0)
		rc = s->api->stat(r->sess, vpath, &st);
	if (rc < 0)
		*ret = sd__http_reply_errno(c, r, rc);
	else if (st.kind == SD_KIND_DIR)
		*ret = list_past(c, r, vpath, at);
	else
		*ret = sd__http_serve_file(c, r, vpath, -1);
	return 1;
}

int sd__http_stat_at(struct MHD_Connection *c, hreq *r, enum MHD_Result *ret)
{
	http_srv *s = r->srv;
	int64_t at;
	int q = query_at(c, r, &at, ret);
	if (q <= 0)
		return q;
	char vpath[SD_PATH_MAX + 1], when[40];
	sd_stat st;
	int rc = past_path(r, at, vpath);
	if (rc == 0)
		rc = s->api->stat(r->sess, vpath, &st);
	if (rc < 0) {
		*ret = sd__http_reply_errno(c, r, rc);
		return 1;
	}
	json_t *o = sd_json_stat(r->shown, NULL, &st);
	sd_json_time_text(at, 1, when, sizeof when);
	if (o)
		json_object_set_new(o, "at", json_string(when));
	*ret = sd__http_reply_json(c, r, 200, o);
	return 1;
}

/* ------------------------------------------------------------ versions */

static int version_cb(void *arg, const sd_version *v)
{
	json_array_append_new(arg, sd_json_version(v));
	return 0;
}

enum MHD_Result sd__http_versions(struct MHD_Connection *c, hreq *r, const char *tail)
{
	http_srv *s = r->srv;
	enum MHD_Result ret;
	if (sd__http_take_path(c, r, tail, &ret) < 0)
		return ret;
	if (strcmp(r->method, "POST") != 0) {
		json_t *arr = json_array();
		int rc = s->api->versions(r->sess, r->path.data, version_cb, arr);
		if (rc < 0) {
			json_decref(arr);
			return sd__http_reply_errno(c, r, rc);
		}
		json_t *o = json_object();
		json_object_set_new(o, "path", sd_json_string(r->shown));
		json_object_set_new(o, "versions", arr);
		return sd__http_reply_json(c, r, 200, o);
	}
	char op[16], vs[32];
	if (sd__http_arg(c, "op", op, sizeof op) != 1 || strcmp(op, "restore") != 0)
		return sd__http_reply_error(c, r, 400, "bad_request",
					    "POST needs ?op=restore&version=<id>");
	char *end;
	long long vid = 0;
	if (sd__http_arg(c, "version", vs, sizeof vs) == 1)
		vid = strtoll(vs, &end, 10);
	if (vid <= 0 || *end)
		return sd__http_reply_error(c, r, 400, "bad_request",
					    "version must be an id from GET /api/v1/versions/<path>");
	sd_stat st;
	int rc = s->api->version_restore(r->sess, r->path.data, vid, &st);
	if (rc < 0)
		return sd__http_reply_errno(c, r, rc);
	return sd__http_reply_json(c, r, 200, sd_json_stat(r->shown, NULL, &st));
}

/* ------------------------------------------------------------ trash */

typedef struct trash_ctx {
	json_t *arr;      /* all items, or NULL */
	int64_t want;     /* one item, or 0 */
	json_t *found;
	char path[SD_PATH_MAX + 1];
} trash_ctx;

static int trash_cb(void *arg, const sd_trash_item *t)
{
	trash_ctx *x = arg;
	if (x->arr)
		json_array_append_new(x->arr, sd_json_trash_item(t));
	if (x->want && x->want == t->id) {
		x->found = sd_json_trash_item(t);
		snprintf(x->path, sizeof x->path, "%s", t->path);
		return 1;
	}
	return 0;
}

/* ?to=<path>, decoded once like a URL path (a relative one starts at the
 * root): 1 with r->path/r->shown set to it, 0 absent, -1 after an answer. */
static int take_to(struct MHD_Connection *c, hreq *r, enum MHD_Result *ret)
{
	const char *raw = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "to");
	if (!raw)
		return 0;
	if (!*raw) {
		*ret = sd__http_reply_error(c, r, 400, "bad_request", "empty ?to=");
		return -1;
	}
	return sd__http_take_path(c, r, raw[0] == '/' ? raw + 1 : raw, ret) < 0 ? -1 : 1;
}

static enum MHD_Result trash_item(struct MHD_Connection *c, hreq *r, int64_t id)
{
	http_srv *s = r->srv;
	enum MHD_Result ret;
	const char *m = r->method;
	trash_ctx x = {NULL, id, NULL, ""};
	int rc = s->api->trash_list(r->sess, trash_cb, &x);
	if (rc < 0)
		return sd__http_reply_errno(c, r, rc);
	if (!x.found)
		return sd__http_reply_error(c, r, 404, "not_found", "no item %lld in the trash",
					    (long long)id);
	if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0)
		return sd__http_reply_json(c, r, 200, x.found);
	json_decref(x.found);
	char op[16] = "purge";
	if (strcmp(m, "POST") == 0 && sd__http_arg(c, "op", op, sizeof op) != 1)
		return sd__http_reply_error(c, r, 400, "bad_request",
					    "POST needs ?op=restore[&to=<path>] or ?op=purge");
	if (strcmp(op, "purge") == 0) {
		if ((rc = s->api->trash_empty(r->sess, id)) < 0)
			return sd__http_reply_errno(c, r, rc);
		return sd__http_reply_json(c, r, 200, json_pack("{s:i}", "deleted", rc));
	}
	if (strcmp(op, "restore") != 0)
		return sd__http_reply_error(c, r, 400, "bad_request", "unknown op '%s'", op);
	int to = take_to(c, r, &ret);
	if (to < 0)
		return ret;
	sd_stat st;
	rc = s->api->trash_restore(r->sess, id, to ? r->path.data : NULL, &st);
	if (rc == -EEXIST)
		return sd__http_reply_error(c, r, 409, "exists",
					    "%s is taken: restore with ?to=<another path>",
					    to ? r->shown : x.path);
	if (rc < 0)
		return sd__http_reply_errno(c, r, rc);
	return sd__http_reply_json(c, r, 200, sd_json_stat(to ? r->shown : x.path, NULL, &st));
}

enum MHD_Result sd__http_trash(struct MHD_Connection *c, hreq *r, const char *tail)
{
	http_srv *s = r->srv;
	const char *m = r->method;
	if (tail && *tail) {
		char *end;
		long long id = strtoll(tail, &end, 10);
		if (*end || id <= 0 || *tail < '0' || *tail > '9')
			return sd__http_reply_error(c, r, 404, "not_found",
						    "a trash item is named by its id");
		return trash_item(c, r, id);
	}
	if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0) {
		trash_ctx x = {json_array(), 0, NULL, ""};
		int rc = s->api->trash_list(r->sess, trash_cb, &x);
		if (rc < 0) {
			json_decref(x.arr);
			return sd__http_reply_errno(c, r, rc);
		}
		return sd__http_reply_json(c, r, 200, json_pack("{s:o}", "items", x.arr));
	}
	char op[16] = "empty";
	if (strcmp(m, "POST") == 0 && (sd__http_arg(c, "op", op, sizeof op) != 1 ||
				       strcmp(op, "empty") != 0))
		return sd__http_reply_error(c, r, 400, "bad_request", "POST needs ?op=empty");
	int rc = s->api->trash_empty(r->sess, 0);
	if (rc < 0)
		return sd__http_reply_errno(c, r, rc);
	return sd__http_reply_json(c, r, 200, json_pack("{s:i}", "deleted", rc));
}

/* ------------------------------------------------------------ rollback */

static enum MHD_Result rollback_finish(struct MHD_Connection *c, hreq *r)
{
	http_srv *s = r->srv;
	enum MHD_Result ret;
	json_error_t jerr;
	json_t *j = r->json.len ? json_loadb(r->json.data, r->json.len, 0, &jerr) : NULL;
	const char *path = j ? json_string_value(json_object_get(j, "path")) : NULL;
	json_t *atj = j ? json_object_get(j, "at") : NULL;
	int64_t at = -1;
	if (!j || !json_is_object(j) || !path || !atj) {
		json_decref(j);
		return sd__http_reply_error(c, r, 400, "bad_json",
					    "body must be {\"path\": \"/folder\", \"at\": \"<RFC 3339>\"}");
	}
	if (json_is_integer(atj) && json_integer_value(atj) >= 0)
		at = json_integer_value(atj);
	else if (!json_is_string(atj) || parse_at(json_string_value(atj), &at) < 0)
		at = -1;
	if (at < 0) {
		json_decref(j);
		return bad_at(c, r);
	}
	sd_buf_reset(&r->path);
	if (path[0] != '/')
		sd_buf_puts(&r->path, "/");
	sd_buf_puts(&r->path, path);
	json_decref(j);
	if (sd__http_show_path(c, r, &ret) < 0)
		return ret;
	sd_rollback_report rep;
	int rc = s->api->rollback(r->sess, r->path.data, at, &rep);
	if (rc < 0)
		return sd__http_reply_errno(c, r, rc);
	s->api->log(s->core, SD_LOG_INFO, HTTP_SRC,
		    "event=rollback user=%s path=\"%s\" restored=%lld trashed=%lld", r->who.user,
		    r->shown, (long long)rep.restored, (long long)rep.trashed);
	return sd__http_reply_json(c, r, 200, sd_json_rollback(r->shown, at, &rep));
}

enum MHD_Result sd__http_rollback(struct MHD_Connection *c, hreq *r, const char *tail)
{
	(void)c;
	(void)tail;
	return sd__http_want_json(r, rollback_finish);
}
