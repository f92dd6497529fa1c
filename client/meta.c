/*
 * meta.c - calls on names, not open files: stat, readdir, mkdir, rmdir,
 * unlink, rename, chmod (the REST API's /api/v1/stat and /api/v1/fs).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void sdc__stat_from_json(json_t *o, sdc_attr *st)
{
	memset(st, 0, sizeof *st);
	const char *kind = json_string_value(json_object_get(o, "kind"));
	st->kind = kind && strcmp(kind, "dir") == 0 ? SDC_KIND_DIR : SDC_KIND_FILE;
	st->size = (uint64_t)json_integer_value(json_object_get(o, "size"));
	const char *mode = json_string_value(json_object_get(o, "mode"));
	st->mode = mode ? (uint32_t)strtoul(mode, NULL, 8) : 0;
	st->mtime = json_integer_value(json_object_get(o, "mtime"));
	st->ctime = json_integer_value(json_object_get(o, "ctime"));
	const char *sha = json_string_value(json_object_get(o, "sha256"));
	snprintf(st->sha256, sizeof st->sha256, "%s", sha ? sha : "");
	st->versions = json_integer_value(json_object_get(o, "versions"));
}

/* One request whose answer is JSON metadata (or nothing): 0 or -errno. */
static int simple(sdc_client *c, int srv, sdc_req *r, sdc_attr *st)
{
	int rc = sdc__http(c, &c->srv[srv], r);
	if (rc == 0 && (r->status < 200 || r->status > 299))
		rc = sdc__http_err(r);
	if (rc == 0 && st) {
		json_t *j = sdc__json(r);
		if (!j) {
			sdc__set_errmsg("answer is not JSON");
			rc = -SDC_EPROTO;
		} else {
			sdc__stat_from_json(j, st);
			json_decref(j);
		}
	}
	sdc__req_free(r);
	return rc;
}

int sdc_stat(sdc_client *c, const char *where, sdc_attr *st)
{
	int srv;
	const char *path;
	int rc = sdc__where(c, where, &srv, &path);
	if (rc < 0)
		return rc;
	sdc_attr tmp;
	if (sdc__open_attr(c, srv, path, st ? st : &tmp) == 0)
		return 0; /* open here: as this client sees it */
	return sdc__stat_remote(c, srv, path, st ? st : &tmp);
}

int sdc__stat_remote(sdc_client *c, int srv, const char *path, sdc_attr *st)
{
	sdc_req r = {.method = "GET"};
	sdc__url_path(&r, &c->srv[srv], "stat", path);
	return simple(c, srv, &r, st);
}

int sdc_readdir_page(sdc_client *c, const char *where, const char *after, int limit,
		     sdc_dir_cb cb, void *arg, char *next, size_t nextlen)
{
	int srv;
	const char *path;
	int rc = sdc__where(c, where, &srv, &path);
	if (rc < 0)
		return rc;
	if (next && nextlen)
		next[0] = '\0';
	sdc_req r = {.method = "GET"};
	sdc__url_path(&r, &c->srv[srv], "fs", path);
	sdc__buf_puts(&r.url, "?");
	if (limit > 0)
		sdc__buf_printf(&r.url, "limit=%d&", limit);
	if (after && *after) {
		sdc__buf_puts(&r.url, "after=");
		sdc__buf_urlenc(&r.url, after, 0);
	}
	rc = sdc__http(c, &c->srv[srv], &r);
	if (rc == 0 && r.status != 200)
		rc = sdc__http_err(&r);
	json_t *j = NULL;
	if (rc == 0 && strncmp(r.ctype, "application/json", 16) != 0)
		rc = -ENOTDIR; /* a file answers its bytes */
	if (rc == 0 && !(j = sdc__json(&r)))
		rc = -SDC_EPROTO;
	sdc__req_free(&r);
	if (rc < 0)
		return rc;
	json_t *ents = json_object_get(j, "entries");
	if (!json_is_array(ents)) {
		json_decref(j);
		return -ENOTDIR;
	}
	size_t i;
	json_t *e;
	int n = 0, stop = 0;
	json_array_foreach(ents, i, e) {
		sdc_dirent d;
		const char *name = json_string_value(json_object_get(e, "name"));
		snprintf(d.name, sizeof d.name, "%s", name ? name : "");
		sdc__stat_from_json(e, &d.st);
		n++;
		if ((stop = cb(arg, &d)) != 0)
			break;
	}
	const char *nx = json_string_value(json_object_get(j, "next"));
	if (!stop && json_is_true(json_object_get(j, "more")) && nx && next && nextlen)
		snprintf(next, nextlen, "%s", nx);
	json_decref(j);
	return n;
}

int sdc_readdir(sdc_client *c, const char *where, sdc_dir_cb cb, void *arg)
{
	int srv;
	const char *path;
	int rc = sdc__where(c, where, &srv, &path);
	if (rc < 0)
		return rc;
	/* a file would answer its bytes: make sure it is a directory */
	sdc_attr st;
	if ((rc = sdc_stat(c, where, &st)) < 0)
		return rc;
	if (st.kind != SDC_KIND_DIR)
		return -ENOTDIR;
	char *after = NULL;
	for (;;) {
		sdc_req r = {.method = "GET"};
		sdc__url_path(&r, &c->srv[srv], "fs", path);
		if (after) {
			sdc__buf_puts(&r.url, "?after=");
			sdc__buf_urlenc(&r.url, after, 0);
		}
		rc = sdc__http(c, &c->srv[srv], &r);
		if (rc == 0 && r.status != 200)
			rc = sdc__http_err(&r);
		json_t *j = rc == 0 ? sdc__json(&r) : NULL;
		if (rc == 0 && !j) {
			/* a file answers its bytes, not a listing */
			rc = strncmp(r.ctype, "application/json", 16) == 0 ? -SDC_EPROTO : -ENOTDIR;
		}
		sdc__req_free(&r);
		if (rc < 0)
			break;
		json_t *ents = json_object_get(j, "entries");
		if (!json_is_array(ents)) {
			json_decref(j);
			rc = -ENOTDIR;
			break;
		}
		size_t i;
		json_t *e;
		int stop = 0;
		json_array_foreach(ents, i, e) {
			sdc_dirent d;
			const char *name = json_string_value(json_object_get(e, "name"));
			snprintf(d.name, sizeof d.name, "%s", name ? name : "");
			sdc__stat_from_json(e, &d.st);
			if ((stop = cb(arg, &d)) != 0)
				break;
		}
		int more = json_is_true(json_object_get(j, "more"));
		const char *next = json_string_value(json_object_get(j, "next"));
		free(after);
		after = more && next ? sdc__xstrdup(next) : NULL;
		json_decref(j);
		if (stop) {
			rc = stop;
			break;
		}
		if (!after) {
			rc = 0;
			break;
		}
	}
	free(after);
	return rc;
}

static int post_op(sdc_client *c, int srv, const char *path, const char *query, sdc_attr *st)
{
	sdc_req r = {.method = "POST"};
	sdc__url_path(&r, &c->srv[srv], "fs", path);
	sdc__buf_printf(&r.url, "?%s", query);
	return simple(c, srv, &r, st);
}

int sdc_mkdir(sdc_client *c, const char *where, uint32_t mode, int parents)
{
	int srv;
	const char *path;
	int rc = sdc__where(c, where, &srv, &path);
	if (rc < 0)
		return rc;
	sdc_attr st;
	rc = post_op(c, srv, path, parents ? "op=mkdir&parents=1" : "op=mkdir", &st);
	if (rc == -EEXIST && parents) {
		if (sdc_stat(c, where, &st) == 0 && st.kind == SDC_KIND_DIR)
			return 0;
		return -EEXIST;
	}
	if (rc == 0 && mode && (mode & 07777) != st.mode)
		rc = sdc_chmod(c, where, mode & 07777);
	return rc;
}

static int is_empty_cb(void *arg, const sdc_dirent *e)
{
	(void)e;
	*(int *)arg = 1;
	return 1;
}

int sdc_rmdir(sdc_client *c, const char *where)
{
	int srv;
	const char *path;
	int rc = sdc__where(c, where, &srv, &path);
	if (rc < 0)
		return rc;
	if (strcmp(path, "/") == 0 || path[0] == '\0')
		return -EBUSY;
	/* DELETE ?dir=1: the server removes a directory only when it is
	 * empty, and nothing else, in one transaction (409 not_empty,
	 * 409 not_a_directory otherwise) */
	sdc_req r = {.method = "DELETE"};
	sdc__url_path(&r, &c->srv[srv], "fs", path);
	sdc__buf_puts(&r.url, "?dir=1");
	rc = sdc__http(c, &c->srv[srv], &r);
	int old_server = 0;
	if (rc == 0 && r.status == 204) {
		sdc__req_free(&r);
		return 0;
	}
	if (rc == 0) {
		json_t *j = sdc__json(&r);
		const char *code = j ? json_string_value(json_object_get(j, "error")) : NULL;
		/* a server before rmdir-by-DELETE: 409 is_a_directory */
		old_server = r.status == 409 && code && strcmp(code, "is_a_directory") == 0;
		json_decref(j);
		if (!old_server)
			rc = sdc__http_err(&r);
	}
	sdc__req_free(&r);
	if (!old_server)
		return rc < 0 ? rc : -SDC_EPROTO;
	sdc_attr st;
	rc = sdc_stat(c, where, &st);
	if (rc < 0)
		return rc;
	if (st.kind != SDC_KIND_DIR)
		return -ENOTDIR;
	/* The REST API deletes a directory only recursively: check emptiness
	 * first (a file created between the two calls would go with it; see
	 * docs/client.md). */
	int any = 0;
	rc = sdc_readdir(c, where, is_empty_cb, &any);
	if (rc < 0)
		return rc;
	if (any)
		return -ENOTEMPTY;
	return sdc_unlink(c, where, 1);
}

int sdc_unlink(sdc_client *c, const char *where, int recursive)
{
	int srv;
	const char *path;
	int rc = sdc__where(c, where, &srv, &path);
	if (rc < 0)
		return rc;
	sdc_req r = {.method = "DELETE"};
	sdc__url_path(&r, &c->srv[srv], "fs", path);
	if (recursive)
		sdc__buf_puts(&r.url, "?recursive=1");
	rc = simple(c, srv, &r, NULL);
	/* open files there go on being readable, and are never committed */
	int open = sdc__unlink_open(c, srv, path, recursive);
	if (rc == -ENOENT && open == 1)
		rc = 0; /* a create of this client, not on the server yet */
	return rc;
}

int sdc_rename(sdc_client *c, const char *from, const char *to)
{
	return sdc_rename2(c, from, to, 0);
}

int sdc_rename2(sdc_client *c, const char *from, const char *to, unsigned flags)
{
	int s1, s2;
	const char *p1, *p2;
	int rc = sdc__where(c, from, &s1, &p1);
	if (rc < 0 || (rc = sdc__where(c, to, &s2, &p2)) < 0)
		return rc;
	if (s1 != s2)
		return -EXDEV;
	/* open files being renamed: committed and released first, then they
	 * follow the name (their handles are opened again there) */
	if ((rc = sdc__rename_prepare(c, s1, p1)) < 0)
		return rc;
	sdc_req r = {.method = "POST"};
	sdc__url_path(&r, &c->srv[s1], "fs", p1);
	sdc__buf_puts(&r.url, "?op=move&to=");
	sdc__buf_urlenc(&r.url, p2, 0);
	if (flags & SDC_RENAME_NOREPLACE)
		sdc__buf_puts(&r.url, "&noreplace=1");
	rc = simple(c, s1, &r, NULL);
	if (rc == 0)
		sdc__rename_done(c, s1, p1, p2);
	return rc;
}

int sdc_chmod(sdc_client *c, const char *where, uint32_t mode)
{
	int srv;
	const char *path;
	int rc = sdc__where(c, where, &srv, &path);
	if (rc < 0)
		return rc;
	if (sdc__open_handle_attrs(c, srv, path, 1, mode & 07777, 0, 0) == 0)
		return 0;
	char q[48];
	snprintf(q, sizeof q, "op=chmod&mode=%04o", mode & 07777);
	return post_op(c, srv, path, q, NULL);
}

int sdc_utimens(sdc_client *c, const char *where, int64_t mtime)
{
	int srv;
	const char *path;
	int rc = sdc__where(c, where, &srv, &path);
	if (rc < 0)
		return rc;
	if (mtime < 0)
		return -EINVAL;
	if (sdc__open_handle_attrs(c, srv, path, 0, 0, 1, mtime) == 0)
		return 0;
	char q[64];
	snprintf(q, sizeof q, "op=mtime&mtime=%lld", (long long)mtime);
	return post_op(c, srv, path, q, NULL);
}

int sdc_statfs(sdc_client *c, const char *where, sdc_fsstat *out)
{
	int srv;
	const char *path;
	int rc = sdc__where(c, where ? where : "/", &srv, &path);
	if (rc < 0)
		return rc;
	sdc_req r = {.method = "GET"};
	sdc__buf_printf(&r.url, "%s/api/v1/me", c->srv[srv].base);
	rc = sdc__http(c, &c->srv[srv], &r);
	if (rc == 0 && r.status != 200)
		rc = sdc__http_err(&r);
	json_t *j = rc == 0 ? sdc__json(&r) : NULL;
	if (rc == 0 && !j)
		rc = -SDC_EPROTO;
	if (rc == 0) {
		memset(out, 0, sizeof *out);
		out->quota = (uint64_t)json_integer_value(json_object_get(j, "quota"));
		out->used = (uint64_t)json_integer_value(json_object_get(j, "used"));
		out->disk_free = (uint64_t)json_integer_value(json_object_get(j, "disk_free"));
		out->disk_total = (uint64_t)json_integer_value(json_object_get(j, "disk_total"));
		out->readonly = json_is_true(json_object_get(j, "readonly"));
	}
	json_decref(j);
	sdc__req_free(&r);
	return rc;
}
