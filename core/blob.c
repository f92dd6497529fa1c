/*
 * blob.c - the content-addressed store: blobs/ab/cd/<64 hex>, temp files,
 * stripe locks and the commit step (internal.h I1-I3).
 *
 * Commit, for content H of a temp file T:
 *   1. fsync(T) unless blobs/H exists   (durability = full)
 *   2. lock stripe(H)
 *   3. if blobs/H exists: dedup, T will be dropped
 *      else: (fsync T if step 1 skipped it), rename(T, blobs/H) (making
 *      the shard dirs only if it fails with ENOENT), fsync(shard dir)
 *   4. BEGIN IMMEDIATE; find or insert the blob row; fn(); COMMIT
 *      (on failure: ROLLBACK, and unlink blobs/H if step 3 created it)
 *   5. unlock stripe(H); unlink T if it still exists
 * A crash between 3 and 4 leaves a file without a row: start-up recovery
 * adopts it as an unreferenced blob (gc.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "log.h"
#include "sys.h"
#include "util.h"

void sd__blob_path(sd_core *c, const char *hex, char out[PATH_MAX])
{
	snprintf(out, PATH_MAX, "%s/%.2s/%.2s/%s", c->blob_dir, hex, hex + 2, hex);
}

int sd__temp_create(sd_core *c, char path[PATH_MAX])
{
	uint64_t seq = atomic_fetch_add(&c->temp_seq, 1);
	snprintf(path, PATH_MAX, "%s/%ld-%llu.tmp", c->tmp_dir, (long)getpid(),
		 (unsigned long long)seq);
	return sd_sys_open(path, O_RDWR | O_CREAT | O_EXCL, 0640);
}

static int stripe_of(const char *hex)
{
	unsigned char b;
	char two[3] = {hex[0], hex[1], 0};
	if (sd_unhex(two, &b, 1) < 0)
		return 0;
	return b;
}

/* OFD locks belong to the open file description, so threads sharing one
 * descriptor would not exclude each other: each lock opens its own
 * description of blobs/.lock, and closing it releases the lock. */
int sd__blob_lock(sd_core *c, const char *hex)
{
	int fd = sd_sys_open(c->lock_path, O_RDWR, 0);
	if (fd < 0) {
		sd_log(SD_LOG_ERROR, "blob", "event=lock_open_failed err=\"%s\"", strerror(-fd));
		return fd;
	}
	struct flock fl = {0};
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = stripe_of(hex);
	fl.l_len = 1;
	while (fcntl(fd, F_OFD_SETLKW, &fl) != 0) {
		if (errno == EINTR)
			continue;
		int e = -errno;
		sd_log(SD_LOG_ERROR, "blob", "event=lock_failed err=\"%s\"", strerror(errno));
		close(fd);
		return e;
	}
	return fd;
}

void sd__blob_unlock(int lockfd)
{
	if (lockfd >= 0)
		close(lockfd);
}

int sd__blob_open(sd_core *c, const char *hex)
{
	char p[PATH_MAX];
	sd__blob_path(c, hex, p);
	return sd_sys_open(p, O_RDONLY, 0);
}

/* mkdir blobs/ab and blobs/ab/cd as needed, fsyncing each new entry's
 * parent so the directories themselves survive a crash. */
static int shard_dirs(sd_core *c, const char *hex, char dir[PATH_MAX])
{
	char d1[PATH_MAX];
	snprintf(d1, sizeof d1, "%s/%.2s", c->blob_dir, hex);
	snprintf(dir, PATH_MAX, "%s/%.2s/%.2s", c->blob_dir, hex, hex + 2);
	int durable = c->conf->durability_full;
	if (mkdir(d1, 0750) == 0) {
		int r = durable ? sd_sys_fsync_dir(c->blob_dir) : 0;
		if (r < 0)
			return r;
	} else if (errno != EEXIST) {
		return -errno;
	}
	if (mkdir(dir, 0750) == 0) {
		int r = durable ? sd_sys_fsync_dir(d1) : 0;
		if (r < 0)
			return r;
	} else if (errno != EEXIST) {
		return -errno;
	}
	return 0;
}

SD_SQL(q_blob_find, "SELECT id FROM blobs WHERE sha256 = ?1");
SD_SQL(q_blob_insert, "INSERT INTO blobs(sha256, size, refs, created, last_access) "
		      "VALUES (?1, ?2, 0, ?3, ?3)");
SD_SQL(q_version_insert, "INSERT INTO versions(node, blob, size, ts) VALUES (?1, ?2, ?3, ?4)");
SD_SQL(q_blob_ref, "UPDATE blobs SET refs = refs + 1, last_access = ?2 WHERE id = ?1");

int sd__version_add(sd_core *c, sd_dbc *d, int64_t node, int64_t blob, uint64_t size, int64_t ts)
{
	(void)c;
	sqlite3_stmt *st = sd_db_stmt(d, &q_version_insert);
	sqlite3_bind_int64(st, 1, node);
	sqlite3_bind_int64(st, 2, blob);
	sqlite3_bind_int64(st, 3, (int64_t)size);
	sqlite3_bind_int64(st, 4, ts);
	int r = sd_db_exec_stmt(st);
	if (r < 0)
		return r;
	st = sd_db_stmt(d, &q_blob_ref);
	sqlite3_bind_int64(st, 1, blob);
	sqlite3_bind_int64(st, 2, ts);
	return sd_db_exec_stmt(st);
}

int sd__blob_commit(sd_core *c, int fd, const char *tmppath, const char *hex, uint64_t size,
		    sd_commit_fn fn, void *arg, int *dedup)
{
	int r = 0, created = 0, is_dedup = 0;
	char bpath[PATH_MAX], dir[PATH_MAX];
	sd__blob_path(c, hex, bpath);

	/* The temp file needs to be durable only if it becomes the blob: a
	 * dedup hit (the common case for re-uploads) skips the fsync. Checked
	 * again under the lock, where the answer is final. */
	struct stat sb;
	int synced = 0;
	if (c->conf->durability_full && stat(bpath, &sb) != 0) {
		if ((r = sd_sys_fsync(fd)) < 0) {
			sd_sys_unlink(tmppath);
			return r;
		}
		synced = 1;
	}
	int lockfd = sd__blob_lock(c, hex);
	if (lockfd < 0) {
		sd_sys_unlink(tmppath);
		return lockfd;
	}
	if (stat(bpath, &sb) == 0) {
		is_dedup = 1;
	} else {
		/* rare: the blob went away since the first look */
		if (c->conf->durability_full && !synced && (r = sd_sys_fsync(fd)) < 0)
			goto out;
		/* The shard directory usually exists: rename first, and create
		 * the directories only when it says they are missing. */
		r = sd_sys_rename(tmppath, bpath);
		if (r == -ENOENT) {
			if ((r = shard_dirs(c, hex, dir)) < 0)
				goto out;
			r = sd_sys_rename(tmppath, bpath);
		}
		if (r < 0)
			goto out;
		snprintf(dir, sizeof dir, "%s/%.2s/%.2s", c->blob_dir, hex, hex + 2);
		created = 1;
		if (c->conf->durability_full && (r = sd_sys_fsync_dir(dir)) < 0)
			goto out;
	}

	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d) {
		r = -EIO;
		goto out;
	}
	int64_t now = sd__now_ms(c), blob_id = 0;
	sqlite3_stmt *st = sd_db_stmt(d, &q_blob_find);
	sqlite3_bind_text(st, 1, hex, 64, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		blob_id = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
	} else {
		sqlite3_reset(st);
		st = sd_db_stmt(d, &q_blob_insert);
		sqlite3_bind_text(st, 1, hex, 64, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (int64_t)size);
		sqlite3_bind_int64(st, 3, now);
		r = sd_db_exec_stmt(st);
		blob_id = sqlite3_last_insert_rowid(sd_db_handle(d));
	}
	if (r == 0)
		r = fn(c, d, blob_id, arg);
	int cr = sd_db_write_end(c->db, d, r == 0);
	if (r == 0)
		r = cr;
out:
	if (r < 0 && created)
		sd_sys_unlink(bpath);
	sd__blob_unlock(lockfd);
	if (!created)
		sd_sys_unlink(tmppath);
	if (dedup)
		*dedup = is_dedup;
	if (r == 0 && is_dedup) {
		sd__metric_add(c, "storaged_uploads_deduplicated_total", NULL, 1);
		sd__metric_add(c, "storaged_bytes_saved_total", NULL, (int64_t)size);
	}
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

SD_SQL(q_blob_touch, "UPDATE blobs SET last_access = ?2 WHERE id = ?1 AND last_access < ?2");

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
