/*
 * tree.c - the user view (FSTS): per-user file trees in `nodes`.
 *
 * A path is resolved component by component from the user's root with the
 * (parent, name) index of live rows. Delete is logical: deleted_at is set
 * and the row leaves the live index; the cleaner purges it after
 * deleted_retention (gc.c). Every mutation runs in one write transaction
 * that also keeps users.used_bytes (I4), writes its journal row (I5) and
 * records the tree's past shape: a node's stays (placements) open when it
 * is made or moved in and close when it is moved away or deleted, and
 * every change marks the moment in tree_changes (history.c, H1-H3).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "log.h"
#include "sys.h"
#include "util.h"

#define NODE_COLS "n.id, n.parent, n.owner, n.blob, n.kind, n.size, n.mode, n.mtime, n.ctime, b.sha256"

SD_SQL(q_root, "SELECT root, disabled FROM users WHERE id = ?1");
SD_SQL(q_child, "SELECT " NODE_COLS " FROM nodes n LEFT JOIN blobs b ON b.id = n.blob "
		"WHERE n.parent = ?1 AND n.name = ?2 AND n.deleted_at IS NULL");
SD_SQL(q_node_by_id, "SELECT " NODE_COLS " FROM nodes n LEFT JOIN blobs b ON b.id = n.blob "
		     "WHERE n.id = ?1");
SD_SQL(q_insert_node, "INSERT INTO nodes(owner, parent, name, kind, blob, size, mode, mtime, ctime) "
		      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)");
SD_SQL(q_update_content, "UPDATE nodes SET blob = ?2, size = ?3, mtime = ?4 WHERE id = ?1");
SD_SQL(q_used_add, "UPDATE users SET used_bytes = used_bytes + ?2 WHERE id = ?1");
SD_SQL(q_used_get, "SELECT quota_bytes, used_bytes, name FROM users WHERE id = ?1");
SD_SQL(q_list, "SELECT n.id, n.parent, n.owner, n.blob, n.kind, n.size, n.mode, n.mtime, n.ctime, "
	       "b.sha256, n.name FROM nodes n LEFT JOIN blobs b ON b.id = n.blob "
	       "WHERE n.parent = ?1 AND n.deleted_at IS NULL AND n.name > ?2 "
	       "ORDER BY n.name LIMIT ?3");
SD_SQL(q_has_child, "SELECT 1 FROM nodes WHERE parent = ?1 AND deleted_at IS NULL LIMIT 1");
SD_SQL(q_delete_node, "UPDATE nodes SET deleted_at = ?2 WHERE id = ?1");
SD_SQL(q_delete_tree,
       "WITH RECURSIVE sub(id) AS (SELECT ?1 UNION ALL SELECT n.id FROM nodes n JOIN sub "
       "ON n.parent = sub.id WHERE n.deleted_at IS NULL) "
       "UPDATE nodes SET deleted_at = ?2 WHERE id IN sub AND deleted_at IS NULL");
SD_SQL(q_tree_size,
       "WITH RECURSIVE sub(id) AS (SELECT ?1 UNION ALL SELECT n.id FROM nodes n JOIN sub "
       "ON n.parent = sub.id WHERE n.deleted_at IS NULL) "
       "SELECT coalesce(sum(size), 0) FROM nodes WHERE id IN sub AND kind = 1");
SD_SQL(q_move, "UPDATE nodes SET parent = ?2, name = ?3 WHERE id = ?1");
SD_SQL(q_chmod, "UPDATE nodes SET mode = ?2 WHERE id = ?1");
SD_SQL(q_mtime, "UPDATE nodes SET mtime = ?2 WHERE id = ?1");
SD_SQL(q_parent_of, "SELECT parent FROM nodes WHERE id = ?1");
/* another node at the same place deleted with the same stamp */
SD_SQL(q_same_stamp, "SELECT 1 FROM nodes d JOIN nodes n ON n.id = ?1 WHERE d.parent = n.parent "
		     "AND d.name = n.name AND d.deleted_at = ?2 AND d.id != n.id LIMIT 1");
SD_SQL(q_blob_sha, "SELECT sha256 FROM blobs WHERE id = ?1");

int sd__user_root(sd_dbc *d, int64_t uid, int64_t *root)
{
	sqlite3_stmt *st = sd_db_stmt(d, &q_root);
	sqlite3_bind_int64(st, 1, uid);
	int r = -ENOENT;
	if (sqlite3_step(st) == SQLITE_ROW) {
		*root = sqlite3_column_int64(st, 0);
		r = 0;
	}
	sqlite3_reset(st);
	return r;
}

void sd__tree_read_node(sqlite3_stmt *st, sd_node *n)
{
	n->id = sqlite3_column_int64(st, 0);
	n->parent = sqlite3_column_int64(st, 1);
	n->owner = sqlite3_column_int64(st, 2);
	n->blob = sqlite3_column_int64(st, 3);
	n->kind = sqlite3_column_int(st, 4);
	n->size = (uint64_t)sqlite3_column_int64(st, 5);
	n->mode = (uint32_t)sqlite3_column_int(st, 6);
	n->mtime = sqlite3_column_int64(st, 7);
	n->ctime = sqlite3_column_int64(st, 8);
	const unsigned char *h = sqlite3_column_text(st, 9);
	snprintf(n->sha256, sizeof n->sha256, "%s", h ? (const char *)h : "");
}

int sd__tree_node(sd_dbc *d, int64_t id, sd_node *out)
{
	sqlite3_stmt *st = sd_db_stmt(d, &q_node_by_id);
	sqlite3_bind_int64(st, 1, id);
	int r = -ENOENT;
	if (sqlite3_step(st) == SQLITE_ROW) {
		sd__tree_read_node(st, out);
		r = 0;
	}
	sqlite3_reset(st);
	return r;
}

int sd__tree_child(sd_dbc *d, int64_t parent, const char *name, size_t len, sd_node *out)
{
	sqlite3_stmt *st = sd_db_stmt(d, &q_child);
	sqlite3_bind_int64(st, 1, parent);
	sqlite3_bind_text(st, 2, name, (int)len, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	int r = -ENOENT;
	if (rc == SQLITE_ROW) {
		sd__tree_read_node(st, out);
		r = 0;
	} else if (rc != SQLITE_DONE) {
		r = sd_db_errno(rc);
	}
	sqlite3_reset(st);
	return r;
}

int sd__tree_lookup(sd_dbc *d, int64_t uid, const char *npath, sd_node *out)
{
	int64_t root;
	int r = sd__user_root(d, uid, &root);
	if (r < 0)
		return r;
	if ((r = sd__tree_node(d, root, out)) < 0)
		return r;
	const char *p = npath;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *s = p;
		while (*p && *p != '/')
			p++;
		if (out->kind != SD_KIND_DIR)
			return -ENOTDIR;
		if ((r = sd__tree_child(d, out->id, s, (size_t)(p - s), out)) < 0)
			return r;
	}
	return 0;
}

void sd__node_to_stat(const sd_node *n, sd_stat *st)
{
	memset(st, 0, sizeof *st);
	st->id = n->id;
	st->kind = n->kind;
	st->size = n->kind == SD_KIND_FILE ? n->size : 0;
	st->mode = n->mode;
	st->mtime = n->mtime;
	st->ctime = n->ctime;
	memcpy(st->sha256, n->sha256, sizeof st->sha256);
}

int sd__tree_used_add(sd_dbc *d, int64_t uid, int64_t delta, int check_quota)
{
	sqlite3_stmt *st = sd_db_stmt(d, &q_used_add);
	sqlite3_bind_int64(st, 1, uid);
	sqlite3_bind_int64(st, 2, delta);
	int r = sd_db_exec_stmt(st);
	if (r < 0 || !check_quota || delta <= 0)
		return r;
	st = sd_db_stmt(d, &q_used_get);
	sqlite3_bind_int64(st, 1, uid);
	if (sqlite3_step(st) == SQLITE_ROW) {
		int64_t quota = sqlite3_column_int64(st, 0), used = sqlite3_column_int64(st, 1);
		if (quota > 0 && used > quota)
			r = -EDQUOT;
	}
	sqlite3_reset(st);
	return r;
}

int sd__tree_insert(sd_dbc *d, int64_t owner, int64_t parent, const char *name, size_t nlen,
		    int kind, int64_t blob, uint64_t size, uint32_t mode, int64_t now_ms, int64_t *id)
{
	int64_t now_s = now_ms / 1000;
	sqlite3_stmt *st = sd_db_stmt(d, &q_insert_node);
	sqlite3_bind_int64(st, 1, owner);
	sqlite3_bind_int64(st, 2, parent);
	sqlite3_bind_text(st, 3, name, (int)nlen, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, kind);
	if (blob)
		sqlite3_bind_int64(st, 5, blob);
	else
		sqlite3_bind_null(st, 5);
	sqlite3_bind_int64(st, 6, (int64_t)size);
	sqlite3_bind_int(st, 7, (int)mode);
	sqlite3_bind_int64(st, 8, now_s);
	int r = sd_db_exec_stmt(st);
	if (r < 0)
		return r;
	int64_t nid = sqlite3_last_insert_rowid(sd_db_handle(d));
	if (id)
		*id = nid;
	return sd__place_open(d, nid, owner, parent, name, nlen, now_ms); /* H1 */
}

int sd__tree_walk_parent(sd_dbc *d, int64_t uid, const char *npath, int create, int64_t now_ms,
			 sd_node *dir, const char **leaf)
{
	int64_t root;
	int r = sd__user_root(d, uid, &root);
	if (r < 0)
		return r;
	if ((r = sd__tree_node(d, root, dir)) < 0)
		return r;
	const char *last = strrchr(npath, '/');
	*leaf = last + 1;
	const char *p = npath;
	while (p < last) {
		while (*p == '/' && p < last)
			p++;
		if (p >= last)
			break;
		const char *s = p;
		while (*p && *p != '/')
			p++;
		size_t len = (size_t)(p - s);
		if (dir->kind != SD_KIND_DIR)
			return -ENOTDIR;
		sd_node next;
		r = sd__tree_child(d, dir->id, s, len, &next);
		if (r == -ENOENT && create) {
			int64_t id;
			if ((r = sd__tree_insert(d, uid, dir->id, s, len, SD_KIND_DIR, 0, 0, 0755, now_ms,
						 &id)) < 0)
				return r;
			r = sd__tree_node(d, id, &next);
		}
		if (r < 0)
			return r;
		*dir = next;
	}
	return dir->kind == SD_KIND_DIR ? 0 : -ENOTDIR;
}

/* The content address of blob row id, as the "sha256" member of args. */
static int blob_sha(sd_dbc *d, int64_t id, sd_buf *args)
{
	sqlite3_stmt *st = sd_db_stmt(d, &q_blob_sha);
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st), r = rc == SQLITE_DONE ? -ENOENT : sd_db_errno(rc);
	if (rc == SQLITE_ROW) {
		sd__jargs_str(args, "sha256", (const char *)sqlite3_column_text(st, 0));
		r = 0;
	}
	sqlite3_reset(st);
	return r;
}

int sd__tree_put(sd_core *c, sd_dbc *d, int64_t blob_id, sd_put *put)
{
	int64_t now_ms = sd__now_ms(c), now_s = now_ms / 1000;
	int64_t mtime = put->mtime > 0 ? put->mtime : now_s;
	sd_node dir, n;
	const char *leaf;
	int r = sd__tree_walk_parent(d, put->u->id, put->npath, (put->flags & SD_UP_PARENTS) != 0,
				     now_ms, &dir, &leaf);
	if (r < 0)
		return r;
	size_t llen = strlen(leaf);
	r = sd__tree_child(d, dir.id, leaf, llen, &n);
	int64_t delta;
	uint32_t fmode; /* the file's mode after the change (journalled) */
	if (r == 0) {
		if (n.kind == SD_KIND_DIR)
			return -EISDIR;
		if (put->flags & SD_UP_EXCL)
			return -EEXIST;
		if (put->expect_node > 0 && n.id != put->expect_node)
			return -ESTALE;
		sqlite3_stmt *st = sd_db_stmt(d, &q_update_content);
		sqlite3_bind_int64(st, 1, n.id);
		sqlite3_bind_int64(st, 2, blob_id);
		sqlite3_bind_int64(st, 3, (int64_t)put->size);
		sqlite3_bind_int64(st, 4, mtime);
		if ((r = sd_db_exec_stmt(st)) < 0)
			return r;
		if (put->set_mode) {
			st = sd_db_stmt(d, &q_chmod);
			sqlite3_bind_int64(st, 1, n.id);
			sqlite3_bind_int64(st, 2, put->mode & 07777);
			if ((r = sd_db_exec_stmt(st)) < 0)
				return r;
		}
		delta = (int64_t)put->size - (int64_t)n.size;
		put->node_id = n.id;
		fmode = put->set_mode ? put->mode & 07777 : n.mode;
	} else if (r == -ENOENT) {
		if (put->expect_node > 0)
			return -ESTALE;
		uint32_t mode = put->mode ? put->mode & 07777 : 0644;
		if ((r = sd__tree_insert(d, put->u->id, dir.id, leaf, llen, SD_KIND_FILE, blob_id,
					 put->size, mode, now_ms, &put->node_id)) < 0)
			return r;
		fmode = mode;
		if (mtime != now_s) {
			sqlite3_stmt *st = sd_db_stmt(d, &q_mtime);
			sqlite3_bind_int64(st, 1, put->node_id);
			sqlite3_bind_int64(st, 2, mtime);
			if ((r = sd_db_exec_stmt(st)) < 0)
				return r;
		}
		delta = (int64_t)put->size;
	} else {
		return r;
	}
	if ((r = sd__tree_used_add(d, put->u->id, delta, 1)) < 0)
		return r;
	sd_vmeta vm = {.mtime = mtime, .u = put->u, .op = put->op};
	if ((r = sd__version_add(d, put->node_id, blob_id, put->size, now_ms, &vm)) < 0)
		return r;
	if ((r = sd__tree_changed(d, put->u->id, now_ms)) < 0)
		return r;
	char detail[128];
	snprintf(detail, sizeof detail, "size=%llu blob=%lld", (unsigned long long)put->size,
		 (long long)blob_id);
	/* what a replay needs: the content's address, and the file's mode
	 * and mtime after the change */
	sd_buf args = SD_BUF_INIT;
	if ((r = blob_sha(d, blob_id, &args)) < 0) {
		sd_buf_free(&args);
		return r;
	}
	sd__jargs_int(&args, "size", (int64_t)put->size);
	sd__jargs_mode(&args, "mode", fmode);
	sd__jargs_int(&args, "mtime", mtime);
	if ((r = sd__journal_args(d, now_ms, put->u->name, put->op, put->npath, detail, &args)) < 0)
		return r;
	if (put->st) {
		if ((r = sd__tree_node(d, put->node_id, &n)) < 0)
			return r;
		sd__node_to_stat(&n, put->st);
		put->st->versions = sd__version_count(d, n.id);
	}
	return 0;
}

int sd__tree_stat(sd_core *c, const sd_principal *u, const char *npath, sd_stat *st)
{
	sd_node n;
	sd_dbc *d = sd_db_read_begin(c->db);
	int r = sd__tree_lookup(d, u->id, npath, &n);
	if (r == 0) {
		sd__node_to_stat(&n, st);
		if (n.kind == SD_KIND_FILE)
			st->versions = sd__version_count(d, n.id);
	}
	sd_db_read_end(c->db, d);
	return r;
}

/* ------------------------------------------------------------ readdir */

typedef struct dent {
	char *name;
	sd_stat st;
} dent;

int sd__tree_readdir(sd_core *c, const sd_principal *u, const char *np, const char *after,
		     int limit, sd_readdir_cb cb, void *arg, int *more)
{
	int r = 0;
	if (more)
		*more = 0;
	const int page = 512;
	char *cursor = sd_xstrdup(after ? after : "");
	int delivered = 0, stop = 0;
	dent *ents = sd_xcalloc((size_t)page + 1, sizeof *ents);
	while (!stop) {
		int want = page;
		if (limit > 0 && limit - delivered + 1 < want)
			want = limit - delivered + 1; /* one extra tells "more" */
		sd_dbc *d = sd_db_read_begin(c->db);
		sd_node dir;
		r = sd__tree_lookup(d, u->id, np, &dir);
		if (r == 0 && dir.kind != SD_KIND_DIR)
			r = -ENOTDIR;
		int n = 0;
		if (r == 0) {
			sqlite3_stmt *st = sd_db_stmt(d, &q_list);
			sqlite3_bind_int64(st, 1, dir.id);
			sqlite3_bind_text(st, 2, cursor, -1, SQLITE_STATIC);
			sqlite3_bind_int(st, 3, want);
			while (sqlite3_step(st) == SQLITE_ROW) {
				sd_node nd;
				sd__tree_read_node(st, &nd);
				sd__node_to_stat(&nd, &ents[n].st);
				ents[n].name = sd_xstrdup((const char *)sqlite3_column_text(st, 10));
				n++;
			}
			sqlite3_reset(st);
		}
		sd_db_read_end(c->db, d);
		if (r < 0)
			break;
		int deliver = n, last_page = 0;
		if (limit > 0 && delivered + deliver > limit) {
			deliver = limit - delivered;
			if (more)
				*more = 1;
			last_page = 1;
		}
		for (int i = 0; i < deliver && !stop; i++) {
			sd_dirent e = {ents[i].name, ents[i].st};
			delivered++;
			if (cb && cb(arg, &e)) {
				stop = 1;
				if (more)
					*more = i + 1 < n || n == want;
			}
		}
		if (last_page)
			stop = 1;
		if (n > 0) {
			free(cursor);
			cursor = sd_xstrdup(ents[n - 1].name);
		}
		for (int i = 0; i < n; i++)
			free(ents[i].name);
		if (n < want)
			stop = 1;
		if (limit > 0 && delivered >= limit && !stop) {
			/* exactly limit delivered and a full page came back */
			stop = 1;
			if (more)
				*more = 1;
		}
	}
	free(ents);
	free(cursor);
	return r < 0 ? r : delivered;
}

/* ------------------------------------------------------------ mutations */

/* Begin a write transaction and resolve the user name for the journal. */
/* Begin a write transaction; name gets the user name for the journal. */
static sd_dbc *wbegin(sd_core *c, const sd_principal *u, char name[SD_USERNAME_MAX + 1])
{
	snprintf(name, SD_USERNAME_MAX + 1, "%s", u->name);
	return sd_db_write_begin(c->db);
}

int sd__tree_mkdir(sd_core *c, const sd_principal *u, const char *np, uint32_t mode, int parents)
{
	char name[SD_USERNAME_MAX + 1];
	int r = sd__check_writable(u);
	if (r < 0)
		return r;
	if (strcmp(np, "/") == 0)
		return parents ? 0 : -EEXIST;
	sd_dbc *d = wbegin(c, u, name);
	if (!d)
		return -EIO;
	int64_t now_ms = sd__now_ms(c);
	sd_node dir, n;
	const char *leaf;
	r = sd__tree_walk_parent(d, u->id, np, parents, now_ms, &dir, &leaf);
	if (r == 0) {
		r = sd__tree_child(d, dir.id, leaf, strlen(leaf), &n);
		if (r == 0)
			r = (parents && n.kind == SD_KIND_DIR) ? 0 : -EEXIST;
		else if (r == -ENOENT) {
			uint32_t m = mode ? mode & 07777 : 0755;
			r = sd__tree_insert(d, u->id, dir.id, leaf, strlen(leaf), SD_KIND_DIR, 0, 0, m,
					    now_ms, NULL);
			if (r == 0)
				r = sd__tree_changed(d, u->id, now_ms);
			sd_buf args = SD_BUF_INIT;
			sd__jargs_mode(&args, "mode", m);
			if (r == 0)
				r = sd__journal_args(d, now_ms, name, "mkdir", np, NULL, &args);
			sd_buf_free(&args);
		}
	}
	int cr = sd_db_write_end(c->db, d, r == 0);
	return r ? r : cr;
}

static int has_children(sd_dbc *d, int64_t id)
{
	sqlite3_stmt *st = sd_db_stmt(d, &q_has_child);
	sqlite3_bind_int64(st, 1, id);
	int has = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_reset(st);
	return has;
}

int sd__tree_delete(sd_dbc *d, const sd_node *n, int64_t uid, int64_t now_ms, int64_t del_at,
		    int64_t *stamp)
{
	sqlite3_stmt *st;
	int64_t bytes = 0;
	/* their stays end first: the walk below the node follows live rows */
	int r = n->kind == SD_KIND_DIR ? sd__place_close_tree(d, n->id, now_ms)
				       : sd__place_close(d, n->id, now_ms);
	if (r == 0)
		r = sd__tree_changed(d, uid, now_ms);
	if (r < 0)
		return r;
	if (del_at <= 0 || del_at > now_ms) {
		del_at = now_ms;
	} else if (del_at < now_ms) {
		/* a node of that name deleted earlier in the burst (deleted,
		 * made again, deleted again): this one is a deletion of its own,
		 * so that one trash item never holds two entries of one name */
		st = sd_db_stmt(d, &q_same_stamp);
		sqlite3_bind_int64(st, 1, n->id);
		sqlite3_bind_int64(st, 2, del_at);
		if (sqlite3_step(st) == SQLITE_ROW)
			del_at = now_ms;
		sqlite3_reset(st);
	}
	if (n->kind == SD_KIND_DIR) {
		st = sd_db_stmt(d, &q_tree_size);
		sqlite3_bind_int64(st, 1, n->id);
		if (sqlite3_step(st) == SQLITE_ROW)
			bytes = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		st = sd_db_stmt(d, &q_delete_tree);
	} else {
		bytes = (int64_t)n->size;
		st = sd_db_stmt(d, &q_delete_node);
	}
	sqlite3_bind_int64(st, 1, n->id);
	sqlite3_bind_int64(st, 2, del_at);
	r = sd_db_exec_stmt(st);
	if (stamp)
		*stamp = del_at;
	if (r == 0 && bytes)
		r = sd__tree_used_add(d, uid, -bytes, 0);
	return r;
}

int sd__tree_remove(sd_core *c, const sd_principal *u, const char *np, int want_dir,
		    int recursive, int64_t del_at)
{
	char name[SD_USERNAME_MAX + 1];
	int r = sd__check_writable(u);
	if (r < 0)
		return r;
	if (strcmp(np, "/") == 0)
		return -EACCES; /* the root cannot be removed */
	sd_dbc *d = wbegin(c, u, name);
	if (!d)
		return -EIO;
	int64_t now_ms = sd__now_ms(c);
	sd_node n;
	r = sd__tree_lookup(d, u->id, np, &n);
	if (r == 0) {
		if (want_dir && n.kind != SD_KIND_DIR)
			r = -ENOTDIR;
		else if (!want_dir && n.kind == SD_KIND_DIR && !recursive)
			r = -EISDIR;
		else if (want_dir && has_children(d, n.id))
			r = -ENOTEMPTY;
	}
	int64_t stamp = now_ms;
	if (r == 0)
		r = sd__tree_delete(d, &n, u->id, now_ms, del_at, &stamp);
	if (r == 0) {
		int rec = recursive && n.kind == SD_KIND_DIR;
		sd_buf args = SD_BUF_INIT;
		if (rec)
			sd__jargs_int(&args, "recursive", 1);
		if (stamp != now_ms) /* a burst's stamp: the copy's trash groups the same */
			sd__jargs_int(&args, "deleted_at", stamp);
		r = sd__journal_args(d, now_ms, name, n.kind == SD_KIND_DIR ? "rmdir" : "delete", np,
				     rec ? "recursive" : NULL, &args);
	}
	int cr = sd_db_write_end(c->db, d, r == 0);
	return r ? r : cr;
}

/* 1 if node `anc` is `id` or one of its ancestors. */
static int is_ancestor(sd_dbc *d, int64_t anc, int64_t id)
{
	for (int depth = 0; id && depth < 10000; depth++) {
		if (id == anc)
			return 1;
		sqlite3_stmt *st = sd_db_stmt(d, &q_parent_of);
		sqlite3_bind_int64(st, 1, id);
		int64_t p = 0;
		if (sqlite3_step(st) == SQLITE_ROW)
			p = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		id = p;
	}
	return 0;
}

int sd__tree_rename(sd_core *c, const sd_principal *u, const char *nf, const char *nt,
		    unsigned flags)
{
	char name[SD_USERNAME_MAX + 1];
	int r = sd__check_writable(u);
	if (r < 0)
		return r;
	if (strcmp(nf, "/") == 0 || strcmp(nt, "/") == 0)
		return -EBUSY;
	sd_dbc *d = wbegin(c, u, name);
	if (!d)
		return -EIO;
	int64_t now_ms = sd__now_ms(c);
	sd_node src, dir, dst;
	const char *leaf;
	r = sd__tree_lookup(d, u->id, nf, &src);
	if (r == 0 && strcmp(nf, nt) == 0) { /* POSIX: renaming onto itself does nothing */
		sd_db_write_end(c->db, d, 0);
		return 0;
	}
	if (r == 0)
		r = sd__tree_walk_parent(d, u->id, nt, 0, now_ms, &dir, &leaf);
	if (r == 0 && src.kind == SD_KIND_DIR && is_ancestor(d, src.id, dir.id))
		r = -EINVAL; /* into itself */
	if (r == 0) {
		r = sd__tree_child(d, dir.id, leaf, strlen(leaf), &dst);
		if (r == 0) {
			if (flags & SD_RENAME_NOREPLACE)
				r = -EEXIST;
			else if (dst.kind == SD_KIND_DIR && src.kind != SD_KIND_DIR)
				r = -EISDIR;
			else if (dst.kind != SD_KIND_DIR && src.kind == SD_KIND_DIR)
				r = -ENOTDIR;
			else if (dst.kind == SD_KIND_DIR && has_children(d, dst.id))
				r = -ENOTEMPTY;
			else
				r = sd__tree_delete(d, &dst, u->id, now_ms, 0, NULL);
		} else if (r == -ENOENT) {
			r = 0;
		}
	}
	if (r == 0) {
		sqlite3_stmt *st = sd_db_stmt(d, &q_move);
		sqlite3_bind_int64(st, 1, src.id);
		sqlite3_bind_int64(st, 2, dir.id);
		sqlite3_bind_text(st, 3, leaf, -1, SQLITE_STATIC);
		r = sd_db_exec_stmt(st);
	}
	if (r == 0)
		r = sd__place_close(d, src.id, now_ms);
	if (r == 0)
		r = sd__place_open(d, src.id, u->id, dir.id, leaf, strlen(leaf), now_ms);
	if (r == 0)
		r = sd__tree_changed(d, u->id, now_ms);
	if (r == 0) {
		sd_buf det = SD_BUF_INIT, args = SD_BUF_INIT;
		sd_buf_printf(&det, "to=%s", nt);
		sd__jargs_str(&args, "to", nt);
		r = sd__journal_args(d, now_ms, name, "rename", nf, det.data, &args);
		sd_buf_free(&det);
	}
	int cr = sd_db_write_end(c->db, d, r == 0);
	return r ? r : cr;
}

static int set_attr(sd_core *c, const sd_principal *u, const char *np, sd_sql *q, int64_t value,
		    const char *op)
{
	char name[SD_USERNAME_MAX + 1];
	int r = sd__check_writable(u);
	if (r < 0)
		return r;
	sd_dbc *d = wbegin(c, u, name);
	if (!d)
		return -EIO;
	int64_t now_ms = sd__now_ms(c);
	sd_node n;
	r = sd__tree_lookup(d, u->id, np, &n);
	if (r == 0) {
		sqlite3_stmt *st = sd_db_stmt(d, q);
		sqlite3_bind_int64(st, 1, n.id);
		sqlite3_bind_int64(st, 2, value);
		r = sd_db_exec_stmt(st);
	}
	if (r == 0 && q == &q_mtime && n.kind == SD_KIND_FILE)
		r = sd__version_set_mtime(d, n.id, value);
	if (r == 0) {
		char det[48];
		snprintf(det, sizeof det, q == &q_chmod ? "mode=%llo" : "mtime=%lld",
			 (long long)value);
		sd_buf args = SD_BUF_INIT;
		if (q == &q_chmod)
			sd__jargs_mode(&args, "mode", (uint32_t)value);
		else
			sd__jargs_int(&args, "mtime", value);
		r = sd__journal_args(d, now_ms, name, op, np, det, &args);
	}
	int cr = sd_db_write_end(c->db, d, r == 0);
	return r ? r : cr;
}

int sd__tree_chmod(sd_core *c, const sd_principal *u, const char *np, uint32_t mode)
{
	return set_attr(c, u, np, &q_chmod, mode & 07777, "chmod");
}

int sd__tree_set_mtime(sd_core *c, const sd_principal *u, const char *np, int64_t mtime)
{
	return set_attr(c, u, np, &q_mtime, mtime, "mtime");
}

int sd__tree_copy(sd_core *c, const sd_principal *u, const char *nf, const char *nt)
{
	char name[SD_USERNAME_MAX + 1];
	int r = sd__check_writable(u);
	if (r < 0)
		return r;
	if (strcmp(nt, "/") == 0)
		return -EISDIR;
	sd_dbc *d = wbegin(c, u, name);
	if (!d)
		return -EIO;
	sd_node src;
	r = sd__tree_lookup(d, u->id, nf, &src);
	if (r == 0 && src.kind != SD_KIND_FILE)
		r = -EISDIR;
	if (r == 0 && strcmp(nf, nt) == 0)
		r = -EINVAL;
	if (r == 0) {
		sd_put put = {.u = u, .npath = nt, .mode = src.mode, .size = src.size, .op = "copy"};
		r = sd__tree_put(c, d, src.blob, &put);
	}
	int cr = sd_db_write_end(c->db, d, r == 0);
	return r ? r : cr;
}

int sd__tree_fsinfo(sd_core *c, const sd_principal *u, sd_fsinfo *out)
{
	memset(out, 0, sizeof *out);
	int r = c->store->ops->space(c->store, NULL, &out->disk_total, &out->disk_avail,
				     &out->disk_free);
	if (r < 0)
		return r;
	/* what the server may still write: the reserve is not offered */
	uint64_t reserve = (uint64_t)c->conf->disk_reserve;
	out->disk_avail = out->disk_avail > reserve ? out->disk_avail - reserve : 0;
	sd_dbc *d = sd_db_read_begin(c->db);
	sqlite3_stmt *st = sd_db_stmt(d, &q_used_get);
	sqlite3_bind_int64(st, 1, u->id);
	r = -ENOENT;
	if (sqlite3_step(st) == SQLITE_ROW) {
		out->quota = sqlite3_column_int64(st, 0);
		out->used = sqlite3_column_int64(st, 1);
		r = 0;
	}
	sqlite3_reset(st);
	sd_db_read_end(c->db, d);
	return r;
}
