/*
 * journal.c - the append-only log of every mutation (Cage's journal).
 *
 * A journal row is written inside the transaction of the change it
 * records, and its failure fails that transaction (I5): there is no change
 * without its row. Login failures, which change nothing else, are
 * journalled in a transaction of their own. The cleaner prunes rows past
 * journal_retention (gc.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

SD_SQL(q_journal, "INSERT INTO journal(ts, user, op, path, detail) VALUES (?1, ?2, ?3, ?4, ?5)");
SD_SQL(q_journal_list, "SELECT seq, ts, user, op, path, detail FROM journal WHERE ts >= ?1 "
		       "AND (?2 IS NULL OR user = ?2) AND seq > ?3 ORDER BY seq LIMIT 1000");

int sd__journal(sd_dbc *d, int64_t ts, const char *user, const char *op, const char *path,
		const char *detail)
{
	sqlite3_stmt *st = sd_db_stmt(d, &q_journal);
	sqlite3_bind_int64(st, 1, ts);
	sqlite3_bind_text(st, 2, user, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, op, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, path, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 5, detail, -1, SQLITE_TRANSIENT);
	return sd_db_exec_stmt(st);
}

int sd__journal_alone(sd_core *c, const char *user, const char *op, const char *detail)
{
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	int r = sd__journal(d, sd__now_ms(c), user, op, NULL, detail);
	int cr = sd_db_write_end(c->db, d, r == 0);
	return r ? r : cr;
}

typedef struct row {
	int64_t seq, ts;
	char *f[4]; /* user, op, path, detail */
} row;

int sd__journal_list(sd_core *c, int64_t since_ms, const char *user, int64_t after,
		     sd_journal_cb cb, void *arg)
{
	int count = 0, stop = 0;
	row *rows = sd_xcalloc(1000, sizeof *rows);
	while (!stop) {
		/* copy a page out, then call back with no transaction open */
		int n = 0;
		sd_dbc *d = sd_db_read_begin(c->db);
		sqlite3_stmt *st = sd_db_stmt(d, &q_journal_list);
		sqlite3_bind_int64(st, 1, since_ms);
		if (user)
			sqlite3_bind_text(st, 2, user, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, after);
		while (sqlite3_step(st) == SQLITE_ROW) {
			row *r = &rows[n++];
			r->seq = sqlite3_column_int64(st, 0);
			r->ts = sqlite3_column_int64(st, 1);
			for (int k = 0; k < 4; k++) {
				const unsigned char *t = sqlite3_column_text(st, 2 + k);
				r->f[k] = t ? sd_xstrdup((const char *)t) : NULL;
			}
		}
		sqlite3_reset(st);
		sd_db_read_end(c->db, d);
		for (int i = 0; i < n; i++) {
			sd_journal_entry e = {rows[i].seq, rows[i].ts, rows[i].f[0], rows[i].f[1],
					      rows[i].f[2], rows[i].f[3]};
			if (!stop) {
				count++;
				if (cb && cb(arg, &e))
					stop = 1;
			}
			after = rows[i].seq;
			for (int k = 0; k < 4; k++)
				free(rows[i].f[k]);
		}
		if (n < 1000)
			break;
	}
	free(rows);
	return count;
}
