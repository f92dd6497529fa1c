/*
 * versions.c - the content history of files: one row per commit, each
 * holding one reference on its blob (I3), with who made it (user,
 * protocol, address), how (op) and the mtime it gave the file. Old content
 * is never overwritten, so restoring a version is repointing, not copying
 * (history.c). The cleaner drops versions replaced longer ago than
 * version_retention (gc.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

SD_SQL(q_version_insert, "INSERT INTO versions(node, blob, size, ts, mtime, user, proto, addr, op) "
			 "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
SD_SQL(q_blob_ref, "UPDATE blobs SET refs = refs + 1, last_access = ?2 WHERE id = ?1");
SD_SQL(q_node_vts, "UPDATE nodes SET vts = ?2 WHERE id = ?1");
SD_SQL(q_versions_count, "SELECT count(*) FROM versions WHERE node = ?1");
SD_SQL(q_version_mtime, "UPDATE versions SET mtime = ?2 WHERE id = "
			"(SELECT max(id) FROM versions WHERE node = ?1)");
SD_SQL(q_versions_of, "SELECT v.ts, v.size, b.sha256, v.id, coalesce(v.mtime, v.ts / 1000), "
		      "v.user, v.proto, v.addr, v.op FROM versions v "
		      "JOIN blobs b ON b.id = v.blob WHERE v.node = ?1 ORDER BY v.id DESC");

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
	if (s && *s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

int sd__version_add(sd_dbc *d, int64_t node, int64_t blob, uint64_t size, int64_t ts,
		    const sd_vmeta *m)
{
	sqlite3_stmt *st = sd_db_stmt(d, &q_version_insert);
	sqlite3_bind_int64(st, 1, node);
	sqlite3_bind_int64(st, 2, blob);
	sqlite3_bind_int64(st, 3, (int64_t)size);
	sqlite3_bind_int64(st, 4, ts);
	sqlite3_bind_int64(st, 5, m && m->mtime > 0 ? m->mtime : ts / 1000);
	bind_text_or_null(st, 6, m && m->u ? m->u->name : NULL);
	bind_text_or_null(st, 7, m && m->u ? m->u->proto : NULL);
	bind_text_or_null(st, 8, m && m->u ? m->u->addr : NULL);
	bind_text_or_null(st, 9, m ? m->op : NULL);
	int r = sd_db_exec_stmt(st);
	if (r < 0)
		return r;
	st = sd_db_stmt(d, &q_blob_ref);
	sqlite3_bind_int64(st, 1, blob);
	sqlite3_bind_int64(st, 2, ts);
	if ((r = sd_db_exec_stmt(st)) < 0)
		return r;
	/* the newest version is the node's content: its time is the node's */
	st = sd_db_stmt(d, &q_node_vts);
	sqlite3_bind_int64(st, 1, node);
	sqlite3_bind_int64(st, 2, ts);
	return sd_db_exec_stmt(st);
}

int64_t sd__version_count(sd_dbc *d, int64_t node)
{
	sqlite3_stmt *st = sd_db_stmt(d, &q_versions_count);
	sqlite3_bind_int64(st, 1, node);
	int64_t v = 0;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return v;
}

int sd__version_set_mtime(sd_dbc *d, int64_t node, int64_t mtime)
{
	sqlite3_stmt *st = sd_db_stmt(d, &q_version_mtime);
	sqlite3_bind_int64(st, 1, node);
	sqlite3_bind_int64(st, 2, mtime);
	return sd_db_exec_stmt(st);
}

static void col_text(sqlite3_stmt *st, int i, char *out, size_t outlen)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	snprintf(out, outlen, "%s", t ? (const char *)t : "");
}

int sd__versions_list(sd_core *c, const sd_principal *u, const char *npath, sd_version_cb cb,
		      void *arg)
{
	sd_version *vs = NULL;
	size_t n = 0, cap = 0;
	sd_node node;
	sd_dbc *d = sd_db_read_begin(c->db);
	int r = sd__tree_lookup(c, d, u, npath, &node);
	if (r == 0 && !(node.rights & SD_RIGHT_READ))
		r = node.vis ? -EACCES : -ENOENT; /* team.c T7 */
	if (r == 0 && node.kind != SD_KIND_FILE)
		r = -EISDIR;
	if (r == 0) {
		sqlite3_stmt *st = sd_db_stmt(d, &q_versions_of);
		sqlite3_bind_int64(st, 1, node.id);
		while (sqlite3_step(st) == SQLITE_ROW) {
			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				vs = sd_xrealloc(vs, cap * sizeof *vs);
			}
			sd_version *v = &vs[n];
			memset(v, 0, sizeof *v);
			v->ts = sqlite3_column_int64(st, 0);
			v->size = (uint64_t)sqlite3_column_int64(st, 1);
			col_text(st, 2, v->sha256, sizeof v->sha256);
			v->id = sqlite3_column_int64(st, 3);
			v->mtime = sqlite3_column_int64(st, 4);
			col_text(st, 5, v->user, sizeof v->user);
			col_text(st, 6, v->proto, sizeof v->proto);
			col_text(st, 7, v->addr, sizeof v->addr);
			col_text(st, 8, v->op, sizeof v->op);
			v->current = n == 0;
			n++;
		}
		sqlite3_reset(st);
	}
	sd_db_read_end(c->db, d);
	int delivered = 0;
	for (size_t i = 0; r == 0 && i < n; i++) {
		delivered++;
		if (cb && cb(arg, &vs[i]))
			break;
	}
	free(vs);
	return r < 0 ? r : delivered;
}
