/*
 * placements.c - the rows of the tree's past shape: where each node stayed
 * and when (placements), and the moments a user's tree changed
 * (tree_changes). Written inside the transaction of the change they
 * record, by tree.c and history.c; read by history.c, which holds the
 * design notes and the invariants (H1-H8) these rows keep.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

SD_SQL(q_place_open, "INSERT INTO placements(node, owner, parent, name, t_from) "
		     "VALUES (?1, ?2, ?3, ?4, ?5)");
/* max(): a clock that stepped back never makes a stay end before it began */
SD_SQL(q_place_close, "UPDATE placements SET t_to = max(t_from, ?2) WHERE node = ?1 AND t_to IS NULL");
SD_SQL(q_place_close_tree,
       "WITH RECURSIVE sub(id) AS (SELECT ?1 UNION ALL SELECT n.id FROM nodes n JOIN sub "
       "ON n.parent = sub.id WHERE n.deleted_at IS NULL) "
       "UPDATE placements SET t_to = max(t_from, ?2) WHERE t_to IS NULL AND node IN sub");
SD_SQL(q_changed, "INSERT OR IGNORE INTO tree_changes(owner, ts) VALUES (?1, ?2)");

int sd__place_open(sd_dbc *d, int64_t node, int64_t owner, int64_t parent, const char *name,
		   size_t nlen, int64_t ts)
{
	sqlite3_stmt *st = sd_db_stmt(d, &q_place_open);
	sqlite3_bind_int64(st, 1, node);
	sqlite3_bind_int64(st, 2, owner);
	sqlite3_bind_int64(st, 3, parent);
	sqlite3_bind_text(st, 4, name, (int)nlen, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, ts);
	return sd_db_exec_stmt(st);
}

int sd__place_close(sd_dbc *d, int64_t node, int64_t ts)
{
	sqlite3_stmt *st = sd_db_stmt(d, &q_place_close);
	sqlite3_bind_int64(st, 1, node);
	sqlite3_bind_int64(st, 2, ts);
	return sd_db_exec_stmt(st);
}

int sd__place_close_tree(sd_dbc *d, int64_t node, int64_t ts)
{
	sqlite3_stmt *st = sd_db_stmt(d, &q_place_close_tree);
	sqlite3_bind_int64(st, 1, node);
	sqlite3_bind_int64(st, 2, ts);
	return sd_db_exec_stmt(st);
}

int sd__tree_changed(sd_dbc *d, int64_t owner, int64_t ts)
{
	sqlite3_stmt *st = sd_db_stmt(d, &q_changed);
	sqlite3_bind_int64(st, 1, owner);
	sqlite3_bind_int64(st, 2, ts);
	return sd_db_exec_stmt(st);
}

int64_t sd__history_horizon(sd_core *c, int64_t now_ms)
{
	int64_t keep = c->conf->deleted_retention;
	if (c->conf->version_retention > 0 && c->conf->version_retention < keep)
		keep = c->conf->version_retention;
	return now_ms - keep;
}
