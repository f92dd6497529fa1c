/*
 * props.c - dead properties of nodes (contract in storaged.h, "dead
 * properties"): (namespace, name) -> opaque UTF-8 text, in node_props
 * (migration 0005). WebDAV's PROPPATCH stores a property's XML here; the
 * engine never parses it.
 *
 * Rows hang on the node, not the path: a rename keeps them, a logical
 * delete keeps them with the deleted node (the trash brings them back),
 * and the cleaner's purge of the node removes them (ON DELETE CASCADE).
 *
 * Invariants:
 *  P1. A patch is one write transaction: every operation applies, or none
 *      (a failed check, a full node, a journal row that cannot be written).
 *  P2. A node holds at most SD_PROPS_MAX properties, each name at most
 *      SD_PROP_NAME_MAX bytes (ns + name) and each value at most
 *      SD_PROP_VALUE_MAX bytes, all valid UTF-8.
 *  P3. Each set or removal writes a journal row ("prop_set", "prop_del")
 *      whose args are what a replay needs (replica.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

SD_SQL(q_props, "SELECT ns, name, value FROM node_props WHERE node = ?1 ORDER BY ns, name");
SD_SQL(q_prop_set, "INSERT OR REPLACE INTO node_props(node, ns, name, value) VALUES (?1, ?2, ?3, ?4)");
SD_SQL(q_prop_del, "DELETE FROM node_props WHERE node = ?1 AND ns = ?2 AND name = ?3");
SD_SQL(q_prop_count, "SELECT count(*) FROM node_props WHERE node = ?1");

typedef struct prow {
	char *ns, *name, *value;
	size_t len;
} prow;

int sd__props_get(sd_core *c, const sd_principal *u, const char *npath, sd_prop_cb cb, void *arg)
{
	prow *rows = NULL;
	int n = 0, cap = 0;
	sd_node node;
	sd_dbc *d = sd_db_read_begin(c->db);
	int r = sd__tree_lookup(c, d, u, npath, &node);
	if (r == 0 && !node.vis)
		r = -ENOENT; /* teams: a path the user may not see */
	if (r == 0) {
		sqlite3_stmt *st = sd_db_stmt(d, &q_props);
		sqlite3_bind_int64(st, 1, node.id);
		int rc;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			if (n == cap) {
				cap = cap ? cap * 2 : 8;
				rows = sd_xrealloc(rows, (size_t)cap * sizeof *rows);
			}
			prow *p = &rows[n++];
			p->ns = sd_xstrdup((const char *)sqlite3_column_text(st, 0));
			p->name = sd_xstrdup((const char *)sqlite3_column_text(st, 1));
			const char *v = (const char *)sqlite3_column_text(st, 2);
			p->len = (size_t)sqlite3_column_bytes(st, 2);
			p->value = sd_xmalloc(p->len + 1);
			memcpy(p->value, v ? v : "", p->len);
			p->value[p->len] = '\0';
		}
		if (rc != SQLITE_DONE)
			r = sd_db_errno(rc);
		sqlite3_reset(st);
	}
	sd_db_read_end(c->db, d);
	/* deliver outside the read transaction: cb may call the engine */
	int delivered = 0, stop = 0;
	for (int i = 0; i < n; i++) {
		if (r == 0 && !stop) {
			sd_prop p = {rows[i].ns, rows[i].name, rows[i].value, rows[i].len};
			delivered++;
			stop = cb(arg, &p);
		}
		free(rows[i].ns);
		free(rows[i].name);
		free(rows[i].value);
	}
	free(rows);
	return r < 0 ? r : delivered;
}

/* P2 for one operation. */
static int check_op(const sd_prop *p)
{
	if (!p->ns || !p->name || !p->name[0])
		return -EINVAL;
	size_t nl = strlen(p->ns), ml = strlen(p->name);
	if (!sd_utf8_valid(p->ns, nl) || !sd_utf8_valid(p->name, ml))
		return -EINVAL;
	if (nl + ml > SD_PROP_NAME_MAX)
		return -EFBIG;
	if (p->value) {
		if (p->len > SD_PROP_VALUE_MAX)
			return -EFBIG;
		if (memchr(p->value, '\0', p->len) || !sd_utf8_valid(p->value, p->len))
			return -EINVAL;
	}
	return 0;
}

int sd__props_patch(sd_core *c, const sd_principal *u, const char *npath, const sd_prop *ops,
		    int n)
{
	int r = sd__check_writable(u);
	if (r < 0)
		return r;
	if (n < 0 || (n > 0 && !ops))
		return -EINVAL;
	for (int i = 0; i < n; i++)
		if ((r = check_op(&ops[i])) < 0)
			return r;
	if (n == 0)
		return 0;
	int64_t now = sd__now_ms(c);
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	sd_node node;
	r = sd__tree_lookup(c, d, u, npath, &node);
	if (r == 0 && !(node.rights & SD_RIGHT_WRITE))
		r = node.vis ? -EACCES : -ENOENT; /* teams: properties are written like content */
	for (int i = 0; r == 0 && i < n; i++) {
		const sd_prop *p = &ops[i];
		sqlite3_stmt *st = sd_db_stmt(d, p->value ? &q_prop_set : &q_prop_del);
		sqlite3_bind_int64(st, 1, node.id);
		sqlite3_bind_text(st, 2, p->ns, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, p->name, -1, SQLITE_STATIC);
		if (p->value)
			sqlite3_bind_text(st, 4, p->value, (int)p->len, SQLITE_STATIC);
		r = sd_db_exec_stmt(st);
		if (r < 0)
			break;
		/* P3: Clark notation in the detail, for people */
		sd_buf det = SD_BUF_INIT, args = SD_BUF_INIT;
		sd_buf_printf(&det, "{%s}%s", p->ns, p->name);
		sd__jargs_str(&args, "ns", p->ns);
		sd__jargs_str(&args, "name", p->name);
		if (p->value) {
			sd_buf v = SD_BUF_INIT;
			sd_buf_append(&v, p->value, p->len);
			sd__jargs_str(&args, "value", v.data ? v.data : "");
			sd_buf_free(&v);
		}
		r = sd__journal_args(d, now, u->name, p->value ? "prop_set" : "prop_del", npath,
				     det.data, &args);
		sd_buf_free(&det);
	}
	if (r == 0) { /* P2: the node's count after the whole patch */
		sqlite3_stmt *st = sd_db_stmt(d, &q_prop_count);
		sqlite3_bind_int64(st, 1, node.id);
		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) > SD_PROPS_MAX)
			r = -ENOSPC;
		sqlite3_reset(st);
	}
	int cr = sd_db_write_end(c->db, d, r == 0); /* P1 */
	return r ? r : cr;
}
