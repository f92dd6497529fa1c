/*
 * blob.c - blob rows: one per distinct content (address, size, references,
 * last use), and the batched last-use times of reads. The bytes themselves
 * are the store's (store.h); the commit step that ties the two together is
 * commit.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "log.h"

SD_SQL(q_blob_find, "SELECT id, size FROM blobs WHERE sha256 = ?1");
SD_SQL(q_blob_insert, "INSERT INTO blobs(sha256, size, refs, created, last_access) "
		      "VALUES (?1, ?2, 0, ?3, ?3)");
SD_SQL(q_blob_touch, "UPDATE blobs SET last_access = ?2 WHERE id = ?1 AND last_access < ?2");

int sd__blob_find(sd_dbc *d, const char *hex, uint64_t size, int64_t *id)
{
	sqlite3_stmt *st = sd_db_stmt(d, &q_blob_find);
	sqlite3_bind_text(st, 1, hex, 64, SQLITE_STATIC);
	int r = -ENOENT;
	if (sqlite3_step(st) == SQLITE_ROW && (uint64_t)sqlite3_column_int64(st, 1) == size) {
		*id = sqlite3_column_int64(st, 0);
		r = 0;
	}
	sqlite3_reset(st);
	return r;
}

int sd__blob_row(sd_dbc *d, const char *hex, uint64_t size, int64_t now, int64_t *id)
{
	if (sd__blob_find(d, hex, size, id) == 0)
		return 0;
	sqlite3_stmt *st = sd_db_stmt(d, &q_blob_insert);
	sqlite3_bind_text(st, 1, hex, 64, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)size);
	sqlite3_bind_int64(st, 3, now);
	int r = sd_db_exec_stmt(st);
	if (r == 0)
		*id = sqlite3_last_insert_rowid(sd_db_handle(d));
	return r;
}

void sd__blob_touch(sd_core *c, int64_t blob_id)
{
	pthread_mutex_lock(&c->access_lock);
	if (c->naccessed < 65536) {
		if (c->naccessed == c->capaccessed) {
			c->capaccessed = c->capaccessed ? c->capaccessed * 2 : 64;
			c->accessed = sd_xrealloc(c->accessed, c->capaccessed * sizeof(int64_t));
		}
		c->accessed[c->naccessed++] = blob_id;
	}
	pthread_mutex_unlock(&c->access_lock);
}

void sd__blob_touch_flush(sd_core *c)
{
	pthread_mutex_lock(&c->access_lock);
	int64_t *ids = c->accessed;
	size_t n = c->naccessed;
	c->accessed = NULL;
	c->naccessed = c->capaccessed = 0;
	pthread_mutex_unlock(&c->access_lock);
	if (n == 0) {
		free(ids);
		return;
	}
	sd_dbc *d = sd_db_write_begin(c->db);
	if (d) {
		int64_t now = sd__now_ms(c);
		for (size_t i = 0; i < n; i++) {
			sqlite3_stmt *st = sd_db_stmt(d, &q_blob_touch);
			sqlite3_bind_int64(st, 1, ids[i]);
			sqlite3_bind_int64(st, 2, now);
			sd_db_exec_stmt(st);
		}
		sd_db_write_end(c->db, d, 1);
	}
	free(ids);
}

static ssize_t reader_source(void *src, void *buf, size_t len, uint64_t off)
{
	return sd__reader_pread(src, buf, len, off);
}

int sd__blob_hash(sd_core *c, const char *hex, uint64_t size, char out[SD_SHA256_HEX])
{
	sd_reader *r;
	int rc = sd__reader_open_hex(c, hex, size, &r);
	if (rc < 0)
		return rc;
	rc = sd__hash_source(reader_source, r, size, out);
	sd__reader_close(r);
	return rc;
}
