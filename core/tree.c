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
 *
 * Views (team.c): a user's path is resolved in the user's VIEW, which is
 * their own tree with every shared folder they may see mounted at its
 * "/<name>" (sd__view_*). A node found through a view carries the
 * principal's rights on it (T4) and whether they may see it (T6); every
 * call below checks them in its own transaction (T7) and works in the tree
 * that holds the node: inserts, usage and quota (I4), placements and
 * tree_changes are those of the node's owner (T1), while the journal and
 * the nodes' created_by / changed_by name the user, with the path as the
 * user sees it. A move between two trees (a shared folder and a private
 * one) moves the nodes and their usage by reference: no content is copied.
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

#define NODE_COLS                                                                           \
	"n.id, n.parent, n.owner, n.blob, n.kind, n.size, n.mode, n.mtime, n.ctime, b.sha256, " \
	"n.created_by, n.changed_by"

SD_SQL(q_root, "SELECT root, disabled FROM users WHERE id = ?1");
SD_SQL(q_child, "SELECT " NODE_COLS " FROM nodes n LEFT JOIN blobs b ON b.id = n.blob "
		"WHERE n.parent = ?1 AND n.name = ?2 AND n.deleted_at IS NULL");
SD_SQL(q_node_by_id, "SELECT " NODE_COLS " FROM nodes n LEFT JOIN blobs b ON b.id = n.blob "
		     "WHERE n.id = ?1");
SD_SQL(q_insert_node, "INSERT INTO nodes(owner, parent, name, kind, blob, size, mode, mtime, ctime, "
		      "created_by, changed_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?9)");
SD_SQL(q_update_content, "UPDATE nodes SET blob = ?2, size = ?3, mtime = ?4, changed_by = ?5 "
			 "WHERE id = ?1");
SD_SQL(q_changed_by, "UPDATE nodes SET changed_by = ?2 WHERE id = ?1");
SD_SQL(q_used_add, "UPDATE users SET used_bytes = used_bytes + ?2 WHERE id = ?1");
SD_SQL(q_used_get, "SELECT quota_bytes, used_bytes, name FROM users WHERE id = ?1");
SD_SQL(q_list, "SELECT " NODE_COLS ", n.name FROM nodes n LEFT JOIN blobs b ON b.id = n.blob "
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

SD_SQL(q_view_root, "SELECT u.root, (SELECT gen FROM team_gen WHERE id = 1) FROM users u "
		    "WHERE u.id = ?1");
SD_SQL(q_up, "SELECT parent, owner FROM nodes WHERE id = ?1");
SD_SQL(q_node_place, "SELECT parent, name FROM nodes WHERE id = ?1");
/* rule nodes at or below a node, deleted ones too (T5) */
SD_SQL(q_sub_rules,
       "WITH RECURSIVE sub(id) AS (SELECT ?1 UNION ALL SELECT n.id FROM nodes n JOIN sub "
       "ON n.parent = sub.id) SELECT 1 FROM share_rules WHERE node IN sub LIMIT 1");
SD_SQL(q_sub_owner,
       "WITH RECURSIVE sub(id) AS (SELECT ?1 UNION ALL SELECT n.id FROM nodes n JOIN sub "
       "ON n.parent = sub.id WHERE n.deleted_at IS NULL) "
       "UPDATE nodes SET owner = ?2 WHERE id IN sub");
SD_SQL(q_sub_place_owner,
       "WITH RECURSIVE sub(id) AS (SELECT ?1 UNION ALL SELECT n.id FROM nodes n JOIN sub "
       "ON n.parent = sub.id WHERE n.deleted_at IS NULL) "
       "UPDATE placements SET owner = ?2 WHERE t_to IS NULL AND node IN sub");

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

static void col_name(sqlite3_stmt *st, int i, char out[SD_USERNAME_MAX + 1])
{
	const unsigned char *t = sqlite3_column_text(st, i);
	snprintf(out, SD_USERNAME_MAX + 1, "%s", t ? (const char *)t : "");
}

void sd__tree_read_node(sqlite3_stmt *st, sd_node *n)
{
	memset(n, 0, sizeof *n);
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
	col_name(st, 10, n->created_by);
	col_name(st, 11, n->changed_by);
	n->rights = SD_RIGHTS_ALL;
	n->vis = 1;
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

/* The next component of *p into (*s, *n); 0 at the end. */
static int next_comp(const char **p, const char **s, size_t *n)
{
	while (**p == '/')
		(*p)++;
	if (!**p)
		return 0;
	*s = *p;
	while (**p && **p != '/')
		(*p)++;
	*n = (size_t)(*p - *s);
	return 1;
}

/* ------------------------------------------------------------ views */

int sd__view_open(sd_core *c, sd_dbc *d, const sd_principal *u, sd_view *v)
{
	memset(v, 0, sizeof *v);
	v->c = c;
	v->d = d;
	v->u = u;
	sqlite3_stmt *st = sd_db_stmt(d, &q_view_root);
	sqlite3_bind_int64(st, 1, u->id);
	int r = -ENOENT;
	int64_t gen = 0;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		v->root = sqlite3_column_int64(st, 0);
		gen = sqlite3_column_int64(st, 1);
		r = 0;
	}
	sqlite3_reset(st);
	if (r == 0 && !(u->flags & SD_P_OWN_TREE))
		r = sd__team_get(c, d, u->id, gen, &v->t);
	return r;
}

void sd__view_close(sd_view *v)
{
	sd__team_put(v->t);
	v->t = NULL;
}

int sd__view_root(sd_view *v, sd_node *out)
{
	int r = sd__tree_node(v->d, v->root, out);
	if (r == 0)
		out->top = v->root;
	return r;
}

void sd__view_inherit(const sd_view *v, const sd_node *dir, sd_node *out)
{
	out->share = dir->share;
	out->top = dir->top;
	out->mount = 0;
	if (!dir->share) {
		out->rights = SD_RIGHTS_ALL;
		out->vis = 1;
		return;
	}
	unsigned rr = 0;
	int has = sd__team_rule(v->t, out->id, &rr);
	out->rights = has ? rr : dir->rights;
	if (has && rr == 0)
		out->vis = 0; /* a rule that gives nothing hides it */
	else
		out->vis = has || (dir->rights & SD_RIGHT_LIST) || (out->rights & SD_RIGHT_READ);
}

int sd__view_mount(const sd_view *v, const sd_mount *m, sd_node *out)
{
	int r = sd__tree_node(v->d, m->root, out);
	if (r < 0)
		return r;
	unsigned rr = 0;
	out->share = m->share;
	out->top = m->root;
	out->mount = 1;
	out->rights = sd__team_rule(v->t, m->root, &rr) ? rr : 0;
	out->vis = 1;
	return 0;
}

int sd__view_child(sd_view *v, const sd_node *dir, const char *name, size_t len, sd_node *out)
{
	if (dir->id == v->root && !dir->share) {
		const sd_mount *m = sd__team_mount(v->t, name, len);
		if (m)
			return sd__view_mount(v, m, out);
	}
	int r = sd__tree_child(v->d, dir->id, name, len, out);
	if (r == 0)
		sd__view_inherit(v, dir, out);
	return r;
}

int sd__view_lookup(sd_view *v, const char *np, sd_node *out)
{
	int r = sd__view_root(v, out);
	const char *p = np, *s;
	size_t n;
	while (r == 0 && next_comp(&p, &s, &n)) {
		if (out->kind != SD_KIND_DIR)
			return -ENOTDIR;
		sd_node dir = *out;
		r = sd__view_child(v, &dir, s, n, out);
		if (r == -ENOENT)
			*out = dir; /* the deepest that exists, for the caller's rights */
	}
	return r;
}

int sd__view_parent(sd_view *v, const char *np, int create, int64_t now_ms, sd_node *dir,
		    const char **leaf)
{
	int r = sd__view_root(v, dir);
	if (r < 0)
		return r;
	const char *last = strrchr(np, '/');
	*leaf = last + 1;
	const char *p = np, *s;
	size_t len;
	while (p < last && next_comp(&p, &s, &len)) {
		if (dir->kind != SD_KIND_DIR)
			return -ENOTDIR;
		sd_node next;
		r = sd__view_child(v, dir, s, len, &next);
		if (r == -ENOENT && create) {
			if (!(dir->rights & SD_RIGHT_WRITE))
				return -EACCES;
			int64_t id;
			if ((r = sd__tree_insert(v->d, dir->owner, dir->id, s, len, SD_KIND_DIR, 0, 0, 0755,
						 now_ms, v->u->name, &id)) < 0)
				return r;
			if ((r = sd__tree_node(v->d, id, &next)) == 0)
				sd__view_inherit(v, dir, &next);
		}
		if (r < 0)
			return r; /* -ENOENT: *dir is the deepest folder that exists */
		*dir = next;
	}
	return dir->kind == SD_KIND_DIR ? 0 : -ENOTDIR;
}

int sd__view_node_rights(sd_view *v, int64_t id, unsigned *rights, int64_t *top,
			 int64_t *share)
{
	int found = 0, r = -ENOENT;
	unsigned rr = 0, got = 0;
	int64_t x = id;
	for (int depth = 0; depth < 10000; depth++) {
		if (!found && sd__team_rule(v->t, x, &rr)) {
			found = 1; /* walking up, the first rule is the deepest (T4) */
			got = rr;
		}
		sqlite3_stmt *st = sd_db_stmt(v->d, &q_up);
		sqlite3_bind_int64(st, 1, x);
		int row = sqlite3_step(st) == SQLITE_ROW;
		int is_root = row && sqlite3_column_type(st, 0) == SQLITE_NULL;
		int64_t up = row ? sqlite3_column_int64(st, 0) : 0;
		sqlite3_reset(st);
		if (!row)
			return -ENOENT;
		if (is_root) {
			r = 0;
			break;
		}
		x = up;
	}
	if (r < 0)
		return r;
	if (top)
		*top = x;
	if (x == v->root) {
		*rights = SD_RIGHTS_ALL;
		if (share)
			*share = 0;
		return 0;
	}
	const sd_mount *m = sd__team_mount_root(v->t, x);
	if (!m)
		return -ENOENT; /* in a tree this user does not see */
	*rights = found ? got : 0;
	if (share)
		*share = m->share;
	return 0;
}

/* Does a rule node that u may not `need` on lie below node id (the node
 * itself excluded)? For operations on a whole folder (T7). */
static int denied_below(sd_view *v, const sd_node *n, unsigned need)
{
	if (!n->share || n->kind != SD_KIND_DIR)
		return 0;
	int64_t node;
	unsigned rr;
	for (size_t i = 0; sd__team_rule_iter(v->t, &i, &node, &rr);) {
		if ((rr & need) == need || node == n->id)
			continue;
		/* is node below n? climb from it */
		int64_t x = node;
		for (int depth = 0; x && depth < 10000; depth++) {
			sqlite3_stmt *st = sd_db_stmt(v->d, &q_up);
			sqlite3_bind_int64(st, 1, x);
			int64_t up = 0;
			if (sqlite3_step(st) == SQLITE_ROW)
				up = sqlite3_column_int64(st, 0);
			sqlite3_reset(st);
			if (up == n->id)
				return 1;
			x = up;
		}
	}
	return 0;
}

int sd__view_subtree_ok(sd_view *v, const sd_node *n, unsigned need)
{
	if ((n->rights & need) != need)
		return 0;
	return !denied_below(v, n, need);
}

int sd__tree_lookup(sd_core *c, sd_dbc *d, const sd_principal *u, const char *npath, sd_node *out)
{
	sd_view v;
	int r = sd__view_open(c, d, u, &v);
	if (r == 0)
		r = sd__view_lookup(&v, npath, out);
	sd__view_close(&v);
	return r;
}

int sd__tree_walk_from(sd_dbc *d, int64_t top, const char *np, int create, int64_t now_ms,
		       const char *by, sd_node *out)
{
	int r = sd__tree_node(d, top, out);
	const char *p = np, *s;
	size_t n;
	while (r == 0 && next_comp(&p, &s, &n)) {
		if (out->kind != SD_KIND_DIR)
			return -ENOTDIR;
		sd_node dir = *out;
		r = sd__tree_child(d, dir.id, s, n, out);
		if (r == -ENOENT && create) {
			int64_t id;
			r = sd__tree_insert(d, dir.owner, dir.id, s, n, SD_KIND_DIR, 0, 0, 0755, now_ms, by,
					    &id);
			if (r == 0)
				r = sd__tree_changed(d, dir.owner, now_ms);
			if (r == 0)
				r = sd__tree_node(d, id, out);
		}
	}
	return r;
}

int sd__tree_path_of(sd_dbc *d, int64_t node, int64_t top, sd_buf *out)
{
	char *parts[512];
	int np = 0, r = 0;
	int64_t x = node;
	while (x != top) {
		if (np == 512) {
			r = -ENAMETOOLONG;
			break;
		}
		sqlite3_stmt *st = sd_db_stmt(d, &q_node_place);
		sqlite3_bind_int64(st, 1, x);
		if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_type(st, 0) == SQLITE_NULL) {
			sqlite3_reset(st);
			r = -ENOENT;
			break;
		}
		x = sqlite3_column_int64(st, 0);
		parts[np++] = sd_xstrdup((const char *)sqlite3_column_text(st, 1));
		sqlite3_reset(st);
	}
	sd_buf_reset(out);
	for (int i = np - 1; i >= 0; i--) {
		if (r == 0) {
			sd_buf_puts(out, "/");
			sd_buf_puts(out, parts[i]);
		}
		free(parts[i]);
	}
	if (r == 0 && out->len == 0)
		sd_buf_puts(out, "/");
	return r;
}

void sd__node_to_stat(const sd_node *n, sd_stat *st)
{
	memset(st, 0, sizeof *st);
	st->id = n->id;
	st->kind = n->kind;
	st->size = n->kind == SD_KIND_FILE ? n->size : 0;
	st->mode = n->mode;
	if (n->share && !(n->rights & SD_RIGHT_WRITE))
		st->mode &= ~0222u; /* what the user may do, for clients that look */
	st->mtime = n->mtime;
	st->ctime = n->ctime;
	memcpy(st->sha256, n->sha256, sizeof st->sha256);
	memcpy(st->created_by, n->created_by, sizeof st->created_by);
	memcpy(st->changed_by, n->changed_by, sizeof st->changed_by);
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
		    int kind, int64_t blob, uint64_t size, uint32_t mode, int64_t now_ms,
		    const char *by, int64_t *id)
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
	if (by && *by)
		sqlite3_bind_text(st, 9, by, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 9);
	int r = sd_db_exec_stmt(st);
	if (r < 0)
		return r;
	int64_t nid = sqlite3_last_insert_rowid(sd_db_handle(d));
	if (id)
		*id = nid;
	return sd__place_open(d, nid, owner, parent, name, nlen, now_ms); /* H1 */
}

static int set_changed_by(sd_dbc *d, int64_t id, const char *by)
{
	sqlite3_stmt *st = sd_db_stmt(d, &q_changed_by);
	sqlite3_bind_int64(st, 1, id);
	if (by && *by)
		sqlite3_bind_text(st, 2, by, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 2);
	return sd_db_exec_stmt(st);
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

/* Where a new or replaced file at np goes, in the view v: the existing
 * node in *n (*exists = 1), else its folder in *dir (the deepest that
 * exists, with flags SD_UP_PARENTS). -EACCES without the write right there
 * (T7), -EISDIR, -EEXIST (SD_UP_EXCL), -ENOENT, -ENOTDIR. */
static int put_target(sd_view *v, const char *np, unsigned flags, sd_node *n, sd_node *dir,
		      int *exists)
{
	*exists = 0;
	if (strcmp(np, "/") == 0)
		return -EISDIR;
	const char *leaf;
	int r = sd__view_parent(v, np, 0, 0, dir, &leaf);
	if (r == -ENOENT && (flags & SD_UP_PARENTS))
		return (dir->rights & SD_RIGHT_WRITE) ? 0 : -EACCES;
	if (r < 0)
		return r;
	r = sd__view_child(v, dir, leaf, strlen(leaf), n);
	if (r == -ENOENT)
		return (dir->rights & SD_RIGHT_WRITE) ? 0 : -EACCES;
	if (r < 0)
		return r;
	if (n->kind == SD_KIND_DIR)
		return -EISDIR;
	if (flags & SD_UP_EXCL)
		return -EEXIST;
	*exists = 1;
	return (n->rights & SD_RIGHT_WRITE) ? 0 : (n->vis ? -EACCES : -ENOENT);
}

int sd__tree_put_target(sd_core *c, const sd_principal *u, const char *np, unsigned flags,
			sd_node *n, int *exists)
{
	sd_dbc *d = sd_db_read_begin(c->db);
	sd_view v;
	sd_node dir;
	int r = sd__view_open(c, d, u, &v);
	if (r == 0)
		r = put_target(&v, np, flags, n, &dir, exists);
	if (r == 0 && !*exists)
		*n = dir;
	sd__view_close(&v);
	sd_db_read_end(c->db, d);
	return r;
}

int sd__tree_put(sd_core *c, sd_dbc *d, int64_t blob_id, sd_put *put)
{
	int64_t now_ms = sd__now_ms(c), now_s = now_ms / 1000;
	int64_t mtime = put->mtime > 0 ? put->mtime : now_s;
	sd_node dir, n;
	const char *leaf;
	sd_view v;
	int r = sd__view_open(c, d, put->u, &v);
	if (r == 0)
		r = sd__view_parent(&v, put->npath, (put->flags & SD_UP_PARENTS) != 0, now_ms, &dir,
				    &leaf);
	if (r < 0)
		goto out;
	size_t llen = strlen(leaf);
	r = sd__view_child(&v, &dir, leaf, llen, &n);
	int existed = r == 0;
	int64_t delta, owner;
	uint32_t fmode; /* the file's mode after the change (journalled) */
	if (r == 0) {
		if (n.kind == SD_KIND_DIR) {
			r = -EISDIR;
			goto out;
		}
		if (put->flags & SD_UP_EXCL) {
			r = -EEXIST;
			goto out;
		}
		if (put->expect_node > 0 && n.id != put->expect_node) {
			r = -ESTALE;
			goto out;
		}
		if (!(n.rights & SD_RIGHT_WRITE)) {
			r = n.vis ? -EACCES : -ENOENT;
			goto out;
		}
		if (put->expect_sha && strcmp(n.sha256, put->expect_sha) != 0) {
			r = -SD_ECHANGED;
			goto out;
		}
		sqlite3_stmt *st = sd_db_stmt(d, &q_update_content);
		sqlite3_bind_int64(st, 1, n.id);
		sqlite3_bind_int64(st, 2, blob_id);
		sqlite3_bind_int64(st, 3, (int64_t)put->size);
		sqlite3_bind_int64(st, 4, mtime);
		sqlite3_bind_text(st, 5, put->u->name, -1, SQLITE_STATIC);
		if ((r = sd_db_exec_stmt(st)) < 0)
			goto out;
		if (put->set_mode) {
			st = sd_db_stmt(d, &q_chmod);
			sqlite3_bind_int64(st, 1, n.id);
			sqlite3_bind_int64(st, 2, put->mode & 07777);
			if ((r = sd_db_exec_stmt(st)) < 0)
				goto out;
		}
		delta = (int64_t)put->size - (int64_t)n.size;
		put->node_id = n.id;
		owner = n.owner;
		fmode = put->set_mode ? put->mode & 07777 : n.mode;
	} else if (r == -ENOENT) {
		if (put->expect_node > 0) {
			r = -ESTALE;
			goto out;
		}
		if (put->expect_sha) {
			r = -SD_ECHANGED;
			goto out;
		}
		if (!(dir.rights & SD_RIGHT_WRITE)) {
			r = -EACCES;
			goto out;
		}
		uint32_t mode = put->mode ? put->mode & 07777 : 0644;
		if ((r = sd__tree_insert(d, dir.owner, dir.id, leaf, llen, SD_KIND_FILE, blob_id,
					 put->size, mode, now_ms, put->u->name, &put->node_id)) < 0)
			goto out;
		fmode = mode;
		if (mtime != now_s) {
			sqlite3_stmt *st = sd_db_stmt(d, &q_mtime);
			sqlite3_bind_int64(st, 1, put->node_id);
			sqlite3_bind_int64(st, 2, mtime);
			if ((r = sd_db_exec_stmt(st)) < 0)
				goto out;
		}
		delta = (int64_t)put->size;
		owner = dir.owner;
	} else {
		goto out;
	}
	/* the tree's owner pays: the user, or the shared folder (T1, I4) */
	if ((r = sd__tree_used_add(d, owner, delta, 1)) < 0)
		goto out;
	sd_vmeta vm = {.mtime = mtime, .u = put->u, .op = put->op};
	if ((r = sd__version_add(d, put->node_id, blob_id, put->size, now_ms, &vm)) < 0)
		goto out;
	if ((r = sd__tree_changed(d, owner, now_ms)) < 0)
		goto out;
	char detail[128];
	snprintf(detail, sizeof detail, "size=%llu blob=%lld", (unsigned long long)put->size,
		 (long long)blob_id);
	/* what a replay needs: the content's address, and the file's mode
	 * and mtime after the change */
	sd_buf args = SD_BUF_INIT;
	if ((r = blob_sha(d, blob_id, &args)) < 0) {
		sd_buf_free(&args);
		goto out;
	}
	sd__jargs_int(&args, "size", (int64_t)put->size);
	sd__jargs_mode(&args, "mode", fmode);
	sd__jargs_int(&args, "mtime", mtime);
	if ((r = sd__journal_args(d, now_ms, put->u->name, put->op, put->npath, detail, &args)) < 0)
		goto out;
	if (put->in_txn && (r = put->in_txn(d, put->in_txn_arg)) < 0)
		goto out;
	if (put->st) {
		sd_node after;
		if ((r = sd__tree_node(d, put->node_id, &after)) < 0)
			goto out;
		after.share = dir.share;
		after.rights = existed ? n.rights : dir.rights;
		sd__node_to_stat(&after, put->st);
		put->st->versions = sd__version_count(d, after.id);
	}
out:
	sd__view_close(&v);
	return r;
}

int sd__tree_stat(sd_core *c, const sd_principal *u, const char *npath, sd_stat *st)
{
	sd_node n;
	sd_dbc *d = sd_db_read_begin(c->db);
	int r = sd__tree_lookup(c, d, u, npath, &n);
	if (r == 0 && !n.vis)
		r = -ENOENT; /* T6 */
	if (r == 0) {
		sd__node_to_stat(&n, st);
		if (n.kind == SD_KIND_FILE)
			st->versions = sd__version_count(d, n.id);
	}
	sd_db_read_end(c->db, d);
	return r;
}

int sd__tree_access(sd_core *c, const sd_principal *u, const char *npath, unsigned *rights)
{
	sd_node n;
	sd_dbc *d = sd_db_read_begin(c->db);
	int r = sd__tree_lookup(c, d, u, npath, &n);
	if (r == 0 && !n.vis)
		r = -ENOENT;
	else if (r == -ENOENT && n.kind == SD_KIND_DIR)
		r = 0; /* a new node there would have the rights of its folder */
	if (r == 0)
		*rights = n.rights;
	sd_db_read_end(c->db, d);
	return r;
}

/* ------------------------------------------------------------ readdir */

typedef struct dent {
	char *name;
	sd_stat st;
} dent;

static int dent_cmp(const void *a, const void *b)
{
	return strcmp(((const dent *)a)->name, ((const dent *)b)->name);
}

/* Up to want entries of dir named after cursor, in name order, into ents:
 * the folder's live children as v may see them, and at the user's root
 * the mounts of shared folders (hiding own entries of their names). Fewer
 * than want only at the end. */
static int list_page(sd_view *v, const sd_node *dir, const char *cursor, int want, dent *ents)
{
	const sd_mount *mounts = NULL;
	int nm = dir->id == v->root && !dir->share ? sd__team_mounts(v->t, &mounts) : 0;
	int n = 0, end = 0;
	char *after = sd_xstrdup(cursor);
	while (n < want && !end) {
		int ask = want - n;
		sqlite3_stmt *st = sd_db_stmt(v->d, &q_list);
		sqlite3_bind_int64(st, 1, dir->id);
		sqlite3_bind_text(st, 2, after, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 3, ask);
		int raw = 0;
		while (sqlite3_step(st) == SQLITE_ROW) {
			raw++;
			const char *name = (const char *)sqlite3_column_text(st, 12);
			free(after);
			after = sd_xstrdup(name);
			if (nm && sd__team_mount(v->t, name, strlen(name)))
				continue; /* a mount hides it (T2) */
			sd_node nd;
			sd__tree_read_node(st, &nd);
			sd__view_inherit(v, dir, &nd);
			if (!nd.vis && dir->share)
				continue;
			sd__node_to_stat(&nd, &ents[n].st);
			ents[n].name = sd_xstrdup(name);
			n++;
		}
		sqlite3_reset(st);
		end = raw < ask; /* the folder has no more */
	}
	/* the mounts that fall in this page: after the cursor, and before the
	 * last own name unless the folder's entries ended */
	for (int i = 0; i < nm; i++) {
		if (strcmp(mounts[i].name, cursor) <= 0)
			continue;
		if (!end && strcmp(mounts[i].name, after) > 0)
			continue;
		sd_node mn;
		if (sd__view_mount(v, &mounts[i], &mn) < 0)
			continue;
		/* room: the caller allocated want + the number of mounts */
		sd__node_to_stat(&mn, &ents[n].st);
		ents[n].name = sd_xstrdup(mounts[i].name);
		n++;
	}
	free(after);
	if (nm && n > 1)
		qsort(ents, (size_t)n, sizeof *ents, dent_cmp);
	if (n > want) { /* merged mounts pushed own entries out: next page */
		for (int i = want; i < n; i++)
			free(ents[i].name);
		n = want;
	}
	return n;
}

int sd__tree_readdir(sd_core *c, const sd_principal *u, const char *np, const char *after,
		     int limit, sd_readdir_cb cb, void *arg, int *more)
{
	int r = 0;
	if (more)
		*more = 0;
	const int page = 512;
	char *cursor = sd_xstrdup(after ? after : "");
	int delivered = 0, stop = 0;
	dent *ents = NULL;
	size_t ecap = 0;
	while (!stop) {
		int want = page;
		if (limit > 0 && limit - delivered + 1 < want)
			want = limit - delivered + 1; /* one extra tells "more" */
		sd_dbc *d = sd_db_read_begin(c->db);
		sd_view v;
		sd_node dir;
		r = sd__view_open(c, d, u, &v);
		if (r == 0)
			r = sd__view_lookup(&v, np, &dir);
		if (r == 0 && !dir.vis)
			r = -ENOENT;
		if (r == 0 && dir.kind != SD_KIND_DIR)
			r = -ENOTDIR;
		if (r == 0 && !(dir.rights & SD_RIGHT_LIST))
			r = -EACCES; /* T7 */
		int n = 0;
		if (r == 0) {
			const sd_mount *m;
			size_t need = (size_t)want + (size_t)sd__team_mounts(v.t, &m) + 1;
			if (need > ecap) {
				ecap = need;
				ents = sd_xrealloc(ents, ecap * sizeof *ents);
			}
			n = list_page(&v, &dir, cursor, want, ents);
		}
		sd__view_close(&v);
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
	sd_view v;
	r = sd__view_open(c, d, u, &v);
	if (r == 0)
		r = sd__view_parent(&v, np, parents, now_ms, &dir, &leaf);
	if (r == 0) {
		r = sd__view_child(&v, &dir, leaf, strlen(leaf), &n);
		if (r == 0)
			r = (parents && n.kind == SD_KIND_DIR) ? 0 : -EEXIST;
		else if (r == -ENOENT && !(dir.rights & SD_RIGHT_WRITE))
			r = -EACCES;
		else if (r == -ENOENT) {
			uint32_t m = mode ? mode & 07777 : 0755;
			r = sd__tree_insert(d, dir.owner, dir.id, leaf, strlen(leaf), SD_KIND_DIR, 0, 0, m,
					    now_ms, u->name, NULL);
			if (r == 0)
				r = sd__tree_changed(d, dir.owner, now_ms);
			sd_buf args = SD_BUF_INIT;
			sd__jargs_mode(&args, "mode", m);
			if (r == 0)
				r = sd__journal_args(d, now_ms, name, "mkdir", np, NULL, &args);
			sd_buf_free(&args);
		}
	}
	sd__view_close(&v);
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

int sd__tree_delete(sd_dbc *d, const sd_node *n, int64_t now_ms, int64_t del_at, int64_t *stamp)
{
	sqlite3_stmt *st;
	int64_t bytes = 0;
	/* their stays end first: the walk below the node follows live rows */
	int r = n->kind == SD_KIND_DIR ? sd__place_close_tree(d, n->id, now_ms)
				       : sd__place_close(d, n->id, now_ms);
	if (r == 0)
		r = sd__tree_changed(d, n->owner, now_ms);
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
		r = sd__tree_used_add(d, n->owner, -bytes, 0);
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
	sd_view v;
	r = sd__view_open(c, d, u, &v);
	if (r == 0)
		r = sd__view_lookup(&v, np, &n);
	if (r == 0 && !n.vis)
		r = -ENOENT;
	if (r == 0) {
		if (want_dir && n.kind != SD_KIND_DIR)
			r = -ENOTDIR;
		else if (!want_dir && n.kind == SD_KIND_DIR && !recursive)
			r = -EISDIR;
		else if (n.mount)
			r = -EACCES; /* a shared folder is removed by its admin */
		else if (!(n.rights & SD_RIGHT_DELETE))
			r = -EACCES;
		else if (want_dir && has_children(d, n.id))
			r = -ENOTEMPTY;
		else if (recursive && denied_below(&v, &n, SD_RIGHT_DELETE))
			r = -EACCES;
	}
	int64_t stamp = now_ms;
	if (r == 0)
		r = sd__tree_delete(d, &n, now_ms, del_at, &stamp);
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
	sd__view_close(&v);
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

static int exec2(sd_dbc *d, sd_sql *q, int64_t a, int64_t b)
{
	sqlite3_stmt *st = sd_db_stmt(d, q);
	sqlite3_bind_int64(st, 1, a);
	sqlite3_bind_int64(st, 2, b);
	return sd_db_exec_stmt(st);
}

/* Move src (its stay already closed) and its live subtree to the tree of
 * `owner`, with their usage (T1, I4: the new owner's quota is checked). */
static int change_tree(sd_dbc *d, const sd_node *src, int64_t owner)
{
	int64_t bytes = 0;
	sqlite3_stmt *st = sd_db_stmt(d, &q_tree_size);
	sqlite3_bind_int64(st, 1, src->id);
	if (sqlite3_step(st) == SQLITE_ROW)
		bytes = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	int r = exec2(d, &q_sub_owner, src->id, owner);
	if (r == 0)
		r = exec2(d, &q_sub_place_owner, src->id, owner);
	if (r == 0 && bytes)
		r = sd__tree_used_add(d, src->owner, -bytes, 0);
	if (r == 0 && bytes)
		r = sd__tree_used_add(d, owner, bytes, 1);
	return r;
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
	sd_view v;
	r = sd__view_open(c, d, u, &v);
	if (r == 0)
		r = sd__view_lookup(&v, nf, &src);
	if (r == 0 && !src.vis)
		r = -ENOENT;
	if (r == 0 && src.mount)
		r = -EBUSY; /* a mount point stays where it is */
	if (r == 0 && !(src.rights & SD_RIGHT_RENAME))
		r = -EACCES;
	if (r == 0 && strcmp(nf, nt) == 0) { /* POSIX: renaming onto itself does nothing */
		sd__view_close(&v);
		sd_db_write_end(c->db, d, 0);
		return 0;
	}
	if (r == 0)
		r = sd__view_parent(&v, nt, 0, now_ms, &dir, &leaf);
	if (r == 0 && !(dir.rights & SD_RIGHT_WRITE))
		r = -EACCES;
	int cross = r == 0 && src.owner != dir.owner;
	if (r == 0 && !cross && src.kind == SD_KIND_DIR && is_ancestor(d, src.id, dir.id))
		r = -EINVAL; /* into itself */
	if (r == 0 && cross && src.share) {
		/* T5: rules stay in their shared folder */
		sqlite3_stmt *st = sd_db_stmt(d, &q_sub_rules);
		sqlite3_bind_int64(st, 1, src.id);
		if (sqlite3_step(st) == SQLITE_ROW)
			r = -EACCES;
		sqlite3_reset(st);
	}
	if (r == 0) {
		r = sd__view_child(&v, &dir, leaf, strlen(leaf), &dst);
		if (r == 0) {
			if (dst.mount)
				r = -EBUSY;
			else if (flags & SD_RENAME_NOREPLACE)
				r = -EEXIST;
			else if (dst.kind == SD_KIND_DIR && src.kind != SD_KIND_DIR)
				r = -EISDIR;
			else if (dst.kind != SD_KIND_DIR && src.kind == SD_KIND_DIR)
				r = -ENOTDIR;
			else if (dst.kind == SD_KIND_DIR && has_children(d, dst.id))
				r = -ENOTEMPTY;
			else if (!(dst.rights & (dst.kind == SD_KIND_DIR ? SD_RIGHT_DELETE
									 : SD_RIGHT_WRITE)))
				r = dst.vis ? -EACCES : -ENOENT;
			else
				r = sd__tree_delete(d, &dst, now_ms, 0, NULL);
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
	if (r == 0 && cross) /* by reference: rows change owner, no content is copied */
		r = change_tree(d, &src, dir.owner);
	if (r == 0)
		r = sd__place_open(d, src.id, dir.owner, dir.id, leaf, strlen(leaf), now_ms);
	if (r == 0)
		r = set_changed_by(d, src.id, u->name);
	if (r == 0)
		r = sd__tree_changed(d, src.owner, now_ms);
	if (r == 0 && cross)
		r = sd__tree_changed(d, dir.owner, now_ms);
	if (r == 0) {
		sd_buf det = SD_BUF_INIT, args = SD_BUF_INIT;
		sd_buf_printf(&det, "to=%s", nt);
		sd__jargs_str(&args, "to", nt);
		r = sd__journal_args(d, now_ms, name, "rename", nf, det.data, &args);
		sd_buf_free(&det);
	}
	sd__view_close(&v);
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
	r = sd__tree_lookup(c, d, u, np, &n);
	if (r == 0 && !n.vis)
		r = -ENOENT;
	if (r == 0 && !(n.rights & SD_RIGHT_WRITE))
		r = -EACCES;
	if (r == 0)
		r = exec2(d, q, n.id, value);
	if (r == 0)
		r = set_changed_by(d, n.id, u->name);
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
	r = sd__tree_lookup(c, d, u, nf, &src);
	if (r == 0 && !src.vis)
		r = -ENOENT;
	if (r == 0 && src.kind != SD_KIND_FILE)
		r = -EISDIR;
	if (r == 0 && !(src.rights & SD_RIGHT_READ))
		r = -EACCES;
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
