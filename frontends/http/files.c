/*
 * files.c - the files API of the HTTP front end:
 *   /api/v1/fs/<path>    GET HEAD (file: download.c; directory: a listing)
 *                        PUT (upload.c) DELETE POST(?op=mkdir|move|copy|chmod)
 *   /api/v1/stat/<path>  GET
 *   /api/v1/me           GET
 *
 * Every path argument (the URL tail, ?to=) is decoded once and given to
 * the engine as it is (args.c); answers name the engine's resolution of it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "history.h"

/* ------------------------------------------------------------ listing */

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

/* One page of the directory r->path: ?limit= (capped at list_limit), and
 * ?after=<name> to go on from a previous page's "next". */
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
	struct list_ctx l = {json_array(), ""};
	int more = 0;
	rc = s->api->readdir(r->sess, r->path.data, rc == 1 ? after : NULL, (int)limit, list_cb, &l,
			     &more);
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

/* ------------------------------------------------------------ POST ops */

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

/* A move or copy failed with rc: name what is missing or in the way.
 * from/to are the engine's resolved paths. The source missing: 404 naming
 * it; the target's folder missing: 404 naming the first missing folder
 * (parents=1 would make it); a file where a folder is needed: 409. */
static enum MHD_Result move_copy_err(struct MHD_Connection *c, hreq *r, int rc, const char *from,
				     const char *to)
{
	http_srv *s = r->srv;
	sd_stat st;
	if (rc != -ENOENT && rc != -ENOTDIR)
		return sd__http_reply_errno(c, r, rc);
	if (s->api->stat(r->sess, from, &st) == -ENOENT)
		return sd__http_reply_error(c, r, 404, "not_found", "no such file or directory: %s",
					    from);
	/* walk the target's folders from the root down */
	char dir[SD_PATH_MAX + 1];
	const char *last = strrchr(to, '/');
	size_t end = last ? (size_t)(last - to) : 0;
	for (size_t i = 1; i <= end; i++) {
		if (i != end && to[i] != '/')
			continue;
		memcpy(dir, to, i);
		dir[i] = '\0';
		int sr = s->api->stat(r->sess, dir, &st);
		if (sr == -ENOENT)
			return sd__http_reply_error(c, r, 404, "not_found",
						    "target folder %s does not exist (add parents=1 to "
						    "create it)",
						    dir);
		if (sr == 0 && st.kind != SD_KIND_DIR)
			return sd__http_reply_error(c, r, 409, "not_a_directory",
						    "%s is a file, not a folder", dir);
	}
	return sd__http_reply_errno(c, r, rc);
}

/* ?op=move|copy&to=<path>[&parents=1]: to is decoded once like the URL
 * path; a relative one starts at the root. parents=1 makes the target's
 * missing folders first (as mkdir -p). */
static enum MHD_Result move_copy(struct MHD_Connection *c, hreq *r, int move)
{
	http_srv *s = r->srv;
	enum MHD_Result ret;
	const char *raw = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "to");
	if (!raw || !*raw)
		return sd__http_reply_error(c, r, 400, "bad_request", "missing ?to=");
	sd_buf to = SD_BUF_INIT;
	if (raw[0] != '/')
		sd_buf_puts(&to, "/");
	int rc = sd__http_pct_decode(raw, SD_PATH_MAX, &to);
	if (rc < 0) {
		sd_buf_free(&to);
		return rc == -ENAMETOOLONG
			   ? sd__http_reply_error(c, r, 400, "name_too_long", "target too long")
			   : sd__http_reply_error(c, r, 400, "bad_path",
						  "target has a bad escape, a NUL or a backslash");
	}
	char shown[SD_PATH_MAX + 1];
	sd_stat st;
	if (sd__http_check_path(c, r, to.data, "target", &ret) < 0)
		goto out;
	if ((rc = s->api->resolve(r->sess, to.data, to.len, shown, sizeof shown)) < 0) {
		ret = sd__http_reply_errno(c, r, rc);
		goto out;
	}
	if (sd__http_arg_true(c, "parents")) {
		char parent[SD_PATH_MAX + 1];
		const char *slash = strrchr(shown, '/');
		size_t n = slash ? (size_t)(slash - shown) : 0;
		if (n > 0) { /* the root always exists */
			memcpy(parent, shown, n);
			parent[n] = '\0';
			rc = s->api->mkdir(r->sess, parent, 0755, 1);
			if (rc < 0 && rc != -EEXIST) {
				ret = move_copy_err(c, r, rc, r->shown, shown);
				goto out;
			}
		}
	}
	if ((rc = move ? s->api->rename(r->sess, r->path.data, to.data,
				       sd__http_arg_true(c, "noreplace") ? SD_RENAME_NOREPLACE : 0)
		       : s->api->copy(r->sess, r->path.data, to.data)) < 0) {
		ret = move_copy_err(c, r, rc, r->shown, shown);
		goto out;
	}
	if ((rc = s->api->stat(r->sess, to.data, &st)) < 0) {
		ret = sd__http_reply_errno(c, r, rc);
		goto out;
	}
	ret = sd__http_reply_json(c, r, move ? 200 : 201, sd_json_stat(shown, NULL, &st));
out:
	sd_buf_free(&to);
	return ret;
}

static enum MHD_Result fs_post(struct MHD_Connection *c, hreq *r)
{
	http_srv *s = r->srv;
	char op[16], mode_s[16];
	if (sd__http_arg(c, "op", op, sizeof op) != 1)
		return sd__http_reply_error(c, r, 400, "bad_request",
					    "POST needs ?op=mkdir|move|copy|chmod|mtime");
	sd_stat st;
	int rc;
	if (strcmp(op, "mkdir") == 0) {
		rc = s->api->mkdir(r->sess, r->path.data, 0755, sd__http_arg_true(c, "parents"));
		if (rc < 0)
			return sd__http_reply_errno(c, r, rc);
		if ((rc = s->api->stat(r->sess, r->path.data, &st)) < 0)
			return sd__http_reply_errno(c, r, rc);
		return sd__http_reply_json(c, r, 201, sd_json_stat(r->shown, NULL, &st));
	}
	if (strcmp(op, "move") == 0 || strcmp(op, "copy") == 0)
		return move_copy(c, r, op[0] == 'm');
	if (strcmp(op, "chmod") == 0) {
		uint32_t mode;
		if (sd__http_arg(c, "mode", mode_s, sizeof mode_s) != 1 || parse_mode(mode_s, &mode) < 0)
			return sd__http_reply_error(c, r, 400, "bad_request",
						    "chmod needs ?mode=<octal, e.g. 0644>");
		rc = s->api->chmod(r->sess, r->path.data, mode);
		if (rc < 0)
			return sd__http_reply_errno(c, r, rc);
		if ((rc = s->api->stat(r->sess, r->path.data, &st)) < 0)
			return sd__http_reply_errno(c, r, rc);
		return sd__http_reply_json(c, r, 200, sd_json_stat(r->shown, NULL, &st));
	}
	if (strcmp(op, "mtime") == 0) {
		char t[32], *end;
		long long mt = 0;
		if (sd__http_arg(c, "mtime", t, sizeof t) == 1)
			mt = strtoll(t, &end, 10);
		if (sd__http_arg(c, "mtime", t, sizeof t) != 1 || *end || !t[0] || mt < 0)
			return sd__http_reply_error(c, r, 400, "bad_request",
						    "mtime needs ?mtime=<seconds since the epoch>");
		if ((rc = s->api->set_mtime(r->sess, r->path.data, (int64_t)mt)) < 0)
			return sd__http_reply_errno(c, r, rc);
		if ((rc = s->api->stat(r->sess, r->path.data, &st)) < 0)
			return sd__http_reply_errno(c, r, rc);
		return sd__http_reply_json(c, r, 200, sd_json_stat(r->shown, NULL, &st));
	}
	return sd__http_reply_error(c, r, 400, "bad_request", "unknown op '%s'", op);
}

/* ------------------------------------------------------------ handlers */

enum MHD_Result sd__http_fs(struct MHD_Connection *c, hreq *r, const char *tail)
{
	http_srv *s = r->srv;
	enum MHD_Result ret;
	if (sd__http_take_path(c, r, tail, &ret) < 0)
		return ret;
	const char *m = r->method;
	if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0) {
		if (sd__http_fs_at(c, r, &ret)) /* ?at=: the past (history.c) */
			return ret;
		sd_stat st;
		int rc = s->api->stat(r->sess, r->path.data, &st);
		if (rc < 0)
			return sd__http_reply_errno(c, r, rc);
		if (st.kind == SD_KIND_DIR)
			return list_dir(c, r);
		return sd__http_serve_file(c, r, r->path.data, -1);
	}
	if (strcmp(m, "PUT") == 0) {
		r->up_flags = sd__http_arg_true(c, "parents") ? SD_UP_PARENTS : 0;
		return sd__http_upload_start(c, r);
	}
	if (strcmp(m, "DELETE") == 0) {
		/* ?dir=1: rmdir(2), a directory only and only when empty, checked
		 * by the engine in the delete's transaction */
		if (sd__http_arg_true(c, "dir")) {
			int rc = s->api->rmdir(r->sess, r->path.data);
			if (rc < 0)
				return sd__http_reply_errno(c, r, rc);
			return sd__http_reply_empty(c, r, 204);
		}
		sd_stat st;
		int rc = s->api->stat(r->sess, r->path.data, &st);
		if (rc < 0)
			return sd__http_reply_errno(c, r, rc);
		/* a directory without ?recursive=1 goes only when empty (rmdir(2):
		 * the check and the delete are one engine transaction) */
		if (st.kind == SD_KIND_DIR && !sd__http_arg_true(c, "recursive"))
			rc = s->api->rmdir(r->sess, r->path.data);
		else
			rc = s->api->unlink(r->sess, r->path.data, st.kind == SD_KIND_DIR);
		if (rc < 0)
			return sd__http_reply_errno(c, r, rc);
		return sd__http_reply_empty(c, r, 204);
	}
	return fs_post(c, r); /* the route admits no other method */
}

enum MHD_Result sd__http_stat(struct MHD_Connection *c, hreq *r, const char *tail)
{
	http_srv *s = r->srv;
	enum MHD_Result ret;
	if (sd__http_take_path(c, r, tail, &ret) < 0)
		return ret;
	if (sd__http_stat_at(c, r, &ret)) /* ?at=: the past (history.c) */
		return ret;
	sd_stat st;
	int rc = s->api->stat(r->sess, r->path.data, &st);
	if (rc < 0)
		return sd__http_reply_errno(c, r, rc);
	return sd__http_reply_json(c, r, 200, sd_json_stat(r->shown, NULL, &st));
}

enum MHD_Result sd__http_me(struct MHD_Connection *c, hreq *r, const char *tail)
{
	(void)tail;
	http_srv *s = r->srv;
	sd_fsinfo fi;
	int rc = s->api->fsinfo(r->sess, &fi);
	if (rc < 0)
		return sd__http_reply_errno(c, r, rc);
	json_t *o = json_pack("{s:s, s:I, s:b, s:b, s:I, s:I, s:I, s:I}", "user", r->who.user,
			      "id", (json_int_t)r->who.uid, "admin",
			      (r->who.flags & SD_USER_ADMIN) != 0, "readonly",
			      (r->who.flags & SD_USER_READONLY) != 0, "quota", (json_int_t)fi.quota,
			      "used", (json_int_t)fi.used, "disk_free",
			      (json_int_t)fi.disk_avail, /* what the server may still write */
			      "disk_total", (json_int_t)fi.disk_total);
	return sd__http_reply_json(c, r, 200, o);
}
