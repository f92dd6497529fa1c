/*
 * commit.c - the one commit step (DESIGN path 1): content into the store,
 * then its row, the node, the version, usage and the journal in one
 * transaction. Every write path ends here: streamed uploads, handles,
 * instant upload (commit_stored) and, through tree.c, copies.
 *
 * commit_temp, for content H of a finished temp file T:
 *   0. if H is stored inline (a smaller inline_max then): reference that
 *      row, drop T, done (dedup across the two kinds)
 *   1. if H is not stored yet: fsync(T)             (durability = full)
 *      (a dedup hit, the common case for re-uploads, skips the fsync)
 *   2. lock stripe(H)                               (I3)
 *   3. store->place(T, H): placed, or already there (dedup: T dropped);
 *      if it turned out not to be there after all, fsync(T) first
 *   4. BEGIN IMMEDIATE; blob row found or inserted; tree put (node,
 *      version, usage, journal); COMMIT. On failure: ROLLBACK, and remove
 *      H from the store if step 3 placed it
 *   5. unlock stripe(H); unlink T if it still exists
 * A crash between 3 and 4 leaves content without a row: start-up recovery
 * adopts it as an unreferenced blob (gc.c).
 *
 * commit_pipe, for a content of at most inline_max bytes: the bytes go
 * into blob_inline in the same transaction as the blob row, node, version
 * and journal rows: one durable write (the WAL sync, shared with concurrent
 * commits by db.c's group commit), no temp file, rename or directory sync.
 * No stripe lock is needed: nothing is placed in the store, and the
 * cleaner deletes a blob row only in its own transaction with refs = 0.
 * Dedup works across both kinds: an address already stored (inline or as a
 * file) is referenced, never stored twice.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "log.h"
#include "sys.h"

/* The events of a commit (events.c): an upload when a client's content
 * became a file's, quota_exceeded when the quota refused it. */
static int fired(sd_core *c, const char *hex, const sd_put *put, int r)
{
	if (!put->u)
		return r;
	if (r == 0 && (strcmp(put->op, "write") == 0 || strcmp(put->op, "instant") == 0))
		sd__event(c, SD_EV_UPLOAD, put->u, put->npath, NULL, (int64_t)put->size, hex, NULL);
	else if (r == -EDQUOT)
		sd__event(c, SD_EV_QUOTA, put->u, put->npath, NULL, (int64_t)put->size, NULL,
			  "quota exceeded");
	return r;
}

static int apply(sd_core *c, const char *hex, uint64_t size, sd_put *put, int must_exist)
{
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	int64_t blob_id = 0;
	int r = must_exist ? sd__blob_find(d, hex, size, &blob_id)
			   : sd__blob_row(d, hex, size, sd__now_ms(c), &blob_id);
	if (r == -ENOENT && must_exist)
		r = -SD_ESENDDATA;
	if (r == 0)
		r = sd__tree_put(c, d, blob_id, put);
	int cr = sd_db_write_end(c->db, d, r == 0);
	return r ? r : cr;
}

SD_SQL(q_inline_exists, "SELECT 1 FROM blobs b JOIN blob_inline i ON i.blob = b.id "
			"WHERE b.sha256 = ?1 AND b.size = ?2");

/* Is hex stored inline (a row of blob_inline)? */
static int stored_inline(sd_core *c, const char *hex, uint64_t size)
{
	sd_dbc *d = sd_db_read_begin(c->db);
	sqlite3_stmt *st = sd_db_stmt(d, &q_inline_exists);
	sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)size);
	int found = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_reset(st);
	sd_db_read_end(c->db, d);
	return found;
}

int sd__commit_temp(sd_core *c, int fd, const char *tmppath, const char *hex, uint64_t size,
		    sd_put *put, int *dedup)
{
	const sd_store_ops *ops = c->store->ops;
	int durable = c->conf->durability_full, synced = 0, placed = 0, r;
	if (dedup)
		*dedup = 0;
	if (size <= SD_INLINE_LIMIT && stored_inline(c, hex, size)) {
		/* stored inline already (inline_max was larger when it came):
		 * reference that, never a second copy in the store. The row can
		 * only have gone if the cleaner removed it meanwhile: then the
		 * content goes to the store below. */
		r = apply(c, hex, size, put, 1);
		if (r != -SD_ESENDDATA) {
			if (r == 0) {
				if (dedup)
					*dedup = 1;
				sd__metric_add(c, "storaged_uploads_deduplicated_total", NULL, 1);
				sd__metric_add(c, "storaged_bytes_saved_total", NULL, (int64_t)size);
			}
			sd_sys_unlink(tmppath);
			return r;
		}
	}
	if (durable && ops->stat(c->store, hex, NULL) != 0) {
		if ((r = sd_sys_fsync(fd)) < 0) {
			sd_sys_unlink(tmppath);
			return r;
		}
		synced = 1;
	}
	int lk = ops->lock(c->store, hex);
	if (lk < 0) {
		sd_log(SD_LOG_ERROR, "commit", "event=lock_failed err=\"%s\"", sd__strerror(lk));
		sd_sys_unlink(tmppath);
		return lk;
	}
	/* the answer under the lock is final; the content may have gone since
	 * the first look, and then the temp file must be durable after all */
	if (durable && !synced && ops->stat(c->store, hex, NULL) != 0 &&
	    (r = sd_sys_fsync(fd)) < 0)
		goto out;
	r = ops->place(c->store, fd, tmppath, hex, size);
	if (r < 0)
		goto out;
	placed = r == 0;
	r = apply(c, hex, size, put, 0);
	if (r < 0 && placed)
		ops->remove(c->store, hex);
	if (r == 0 && !placed) {
		if (dedup)
			*dedup = 1;
		sd__metric_add(c, "storaged_uploads_deduplicated_total", NULL, 1);
		sd__metric_add(c, "storaged_bytes_saved_total", NULL, (int64_t)size);
	}
out:
	ops->unlock(c->store, lk);
	if (!placed)
		sd_sys_unlink(tmppath);
	return fired(c, hex, put, r);
}

SD_SQL(q_inline_insert, "INSERT INTO blob_inline(blob, data) VALUES (?1, ?2)");

static int commit_inline(sd_core *c, const char *hex, const void *data, uint64_t size,
			 sd_put *put, int *dedup)
{
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	int64_t blob_id = 0;
	int found = sd__blob_find(d, hex, size, &blob_id) == 0;
	int r = 0;
	if (!found) {
		r = sd__blob_row(d, hex, size, sd__now_ms(c), &blob_id);
		if (r == 0) {
			sqlite3_stmt *st = sd_db_stmt(d, &q_inline_insert);
			sqlite3_bind_int64(st, 1, blob_id);
			sqlite3_bind_blob(st, 2, size ? data : "", (int)size, SQLITE_STATIC);
			r = sd_db_exec_stmt(st);
		}
	}
	if (r == 0)
		r = sd__tree_put(c, d, blob_id, put);
	int cr = sd_db_write_end(c->db, d, r == 0);
	r = r ? r : cr;
	if (r == 0 && found) {
		if (dedup)
			*dedup = 1;
		sd__metric_add(c, "storaged_uploads_deduplicated_total", NULL, 1);
		sd__metric_add(c, "storaged_bytes_saved_total", NULL, (int64_t)size);
	}
	return fired(c, hex, put, r);
}

int sd__commit_pipe(sd_core *c, sd_wpipe *p, const char *hex, uint64_t size, sd_put *put,
		    int *dedup)
{
	if (dedup)
		*dedup = 0;
	if (size <= (uint64_t)c->conf->inline_max && c->conf->inline_max > 0) {
		const void *data;
		ssize_t n = sd__wpipe_mem(p, &data);
		char *copy = NULL;
		if (n < 0) {
			/* a small content that went through a file (a random write):
			 * read it back, it is at most inline_max bytes */
			int fd = sd__wpipe_fd(p);
			if (fd < 0)
				return fd;
			copy = sd_xmalloc(size ? size : 1);
			ssize_t got = sd_sys_pread(fd, copy, size, 0);
			if (got != (ssize_t)size) {
				free(copy);
				return got < 0 ? (int)got : -EIO;
			}
			data = copy;
		}
		int r = commit_inline(c, hex, data, size, put, dedup);
		free(copy);
		return r;
	}
	int fd = sd__wpipe_fd(p);
	if (fd < 0)
		return fd;
	return sd__commit_temp(c, fd, sd__wpipe_path(p), hex, size, put, dedup);
}

int sd__commit_stored(sd_core *c, const char *hex, uint64_t size, sd_put *put)
{
	/* No stripe lock needed: the row is looked up inside our write
	 * transaction, and the cleaner deletes a row only inside its own
	 * write transaction and only with refs = 0 (I3). Write transactions
	 * are serial, so either we see no row (-SD_ESENDDATA) or our
	 * reference lands first and the cleaner's delete finds refs > 0. */
	return fired(c, hex, put, apply(c, hex, size, put, 1));
}

int sd__commit_keep(sd_core *c, int fd, const char *path, const char *hex, uint64_t size,
		    sd_put *put, int *dedup)
{
	if (dedup)
		*dedup = 0;
	if (size <= (uint64_t)c->conf->inline_max && c->conf->inline_max > 0) {
		char *copy = sd_xmalloc(size ? size : 1);
		ssize_t got = sd_sys_pread(fd, copy, size, 0);
		int r = got == (ssize_t)size ? commit_inline(c, hex, copy, size, put, dedup)
					     : got < 0 ? (int)got : -EIO;
		free(copy);
		return r;
	}
	/* a second name for the same inode: commit_temp consumes the name
	 * (renamed into the store, or unlinked), never the part file's */
	char tmp[PATH_MAX];
	uint64_t seq = atomic_fetch_add(&c->temp_seq, 1);
	snprintf(tmp, sizeof tmp, "%s/%ld-%llu.tmp", c->tmp_dir, (long)getpid(),
		 (unsigned long long)seq);
	int r = sd_sys_link(path, tmp);
	if (r < 0)
		return r;
	return sd__commit_temp(c, fd, tmp, hex, size, put, dedup);
}
