/*
 * rupload.c - resumable uploads (tus 1.0, RFC-style partial uploads): an
 * upload session the engine keeps on disk, so a client that loses its
 * connection, or a daemon that restarts, loses nothing that was
 * acknowledged.
 *
 * Design notes
 * ------------
 * An upload session is a row of upload_sessions (migration 0007) plus a
 * part file <data_dir>/uploads/<id>. The row says whose it is, where the
 * content goes, how long it will be, and how many of its bytes are durable
 * (offset); the part file holds them. Bytes arrive through an "open"
 * (rup_open / rup_write / rup_close, one per PATCH): a write pipe
 * (writer.c) appends them to the part file, hashing as it goes on the
 * writer threads, exactly like a streamed upload. Closing the open makes
 * them durable (fsync) and then moves the row's offset; when the offset
 * reaches the length, the part file goes through the one commit step
 * (commit.c, sd__commit_keep) as one version of the target, and the row is
 * marked done in the same transaction.
 *
 * Session states (one row):
 *   RECEIVING (offset < length) --close: offset moves--> RECEIVING
 *   RECEIVING --close: offset == length, commit ok--> DONE (part file gone)
 *   RECEIVING --close: offset == length, commit failed--> COMPLETE (kept;
 *       rup_info and rup_open commit it again)
 *   any --delete / expiry (cleaner)--> (row and part file gone)
 * A DONE row stays until it expires, so a client that asks again learns
 * that its upload is complete.
 *
 * The live table (c->rups) holds, per upload open in this process, who
 * holds it (one open at a time) and the SHA-256 state of the part file's
 * bytes, so the content address at the end needs no re-read. After a
 * restart the state is gone and the part file is hashed once at commit.
 *
 * Invariants
 *  R1. offset <= the part file's size, and every byte below offset was
 *      fsync'd (durability = full) before the row said so. Bytes past
 *      offset (a crash mid-request) are cut off by the next open.
 *  R2. The row exists before the part file and goes before it: a part
 *      file without a row is an orphan the cleaner removes; a row whose
 *      part file is shorter than its offset is damaged (-SD_ECORRUPT).
 *  R3. Every call checks the row's owner against the session's user: an
 *      id of another user is -ENOENT, like one that does not exist.
 *  R4. At most one open per upload (live->busy); a second open asks the
 *      first to stop (its next write fails -ECANCELED) and waits for it.
 *  R5. Nothing of an upload is visible in the tree before its commit,
 *      which is one version made by the one commit step.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "log.h"
#include "sys.h"

/* Durable checkpoints inside one long open without a checksum. */
#define RUP_CHECKPOINT ((uint64_t)64 << 20)
/* How long a second open waits for the first to let go. */
#define RUP_TAKEOVER_MS 3000

typedef struct sd_rup_live {
	struct sd_rup_live *next;
	char id[SD_RUP_ID_MAX];
	int busy;          /* an open holds it */
	int stop;          /* asked to stop by a newer open */
	int refs;          /* waiters and the holder */
	EVP_MD_CTX *md;    /* SHA-256 state of [0, hashed), or NULL */
	uint64_t hashed;
} sd_rup_live;

struct sd_rupload {
	sd_core *c;
	sd_principal u;
	sd_cred cred;
	sd_rup_live *live;
	char id[SD_RUP_ID_MAX];
	char part[PATH_MAX];
	uint64_t length, start, ckpt; /* ckpt: durable offset so far */
	int done;          /* the upload was complete at open: nothing to write */
	sd_wpipe *p;
	EVP_MD_CTX *chunk; /* SHA-256 of this open's bytes, with expect */
	char expect[SD_SHA256_HEX];
	int dead;          /* sticky error of a write */
};

/* One row. */
typedef struct rup_row {
	char id[SD_RUP_ID_MAX];
	int64_t owner;
	char path[SD_PATH_MAX + 1];
	unsigned flags;
	uint32_t mode;
	uint64_t length, offset;
	char meta[SD_RUP_META_MAX];
	int64_t expires;
	int done;
} rup_row;

SD_SQL(q_rup_get, "SELECT owner, path, flags, mode, length, offset, meta, expires, done"
		  " FROM upload_sessions WHERE id = ?1");
SD_SQL(q_rup_insert, "INSERT INTO upload_sessions(id, owner, path, flags, mode, length, meta,"
		     " created, updated, expires) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9)");
SD_SQL(q_rup_offset, "UPDATE upload_sessions SET offset = ?2, updated = ?3, expires = ?4"
		     " WHERE id = ?1");
SD_SQL(q_rup_done, "UPDATE upload_sessions SET done = 1, offset = length, updated = ?2,"
		   " expires = ?3 WHERE id = ?1");
SD_SQL(q_rup_delete, "DELETE FROM upload_sessions WHERE id = ?1");
SD_SQL(q_rup_pending, "SELECT count(*), coalesce(sum(length), 0) FROM upload_sessions"
		      " WHERE owner = ?1 AND done = 0 AND expires > ?2");
SD_SQL(q_rup_quota, "SELECT quota_bytes, used_bytes FROM users WHERE id = ?1");
SD_SQL(q_rup_expired, "SELECT id FROM upload_sessions WHERE expires <= ?1 LIMIT 256");
SD_SQL(q_rup_exists, "SELECT 1 FROM upload_sessions WHERE id = ?1");

static int valid_id(const char *id)
{
	if (!id || strlen(id) != SD_RUP_ID_MAX - 1)
		return 0;
	for (const char *p = id; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return 0;
	return 1;
}

static void part_path(sd_core *c, const char *id, char out[PATH_MAX])
{
	snprintf(out, PATH_MAX, "%s/%s", c->up_dir, id);
}

/* The row of id in any transaction: 0 or -ENOENT. */
static int row_get(sd_dbc *d, const char *id, rup_row *out)
{
	sqlite3_stmt *st = sd_db_stmt(d, &q_rup_get);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	int r = -ENOENT;
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(out->id, sizeof out->id, "%s", id);
		out->owner = sqlite3_column_int64(st, 0);
		snprintf(out->path, sizeof out->path, "%s", (const char *)sqlite3_column_text(st, 1));
		out->flags = (unsigned)sqlite3_column_int64(st, 2);
		out->mode = (uint32_t)sqlite3_column_int64(st, 3);
		out->length = (uint64_t)sqlite3_column_int64(st, 4);
		out->offset = (uint64_t)sqlite3_column_int64(st, 5);
		const char *m = (const char *)sqlite3_column_text(st, 6);
		snprintf(out->meta, sizeof out->meta, "%s", m ? m : "");
		out->expires = sqlite3_column_int64(st, 7);
		out->done = sqlite3_column_int(st, 8);
		r = 0;
	}
	sqlite3_reset(st);
	return r;
}

/* The row of id if it is u's and has not expired (R3). */
static int row_of(sd_core *c, const sd_principal *u, const char *id, rup_row *out)
{
	if (!valid_id(id))
		return -ENOENT;
	sd_dbc *d = sd_db_read_begin(c->db);
	if (!d)
		return -EIO;
	int r = row_get(d, id, out);
	sd_db_read_end(c->db, d);
	if (r == 0 && (out->owner != u->id || out->expires <= sd__now_ms(c)))
		r = -ENOENT;
	return r;
}

static void row_info(sd_core *c, const rup_row *row, sd_rupload_info *out)
{
	if (!out)
		return;
	memset(out, 0, sizeof *out);
	snprintf(out->id, sizeof out->id, "%s", row->id);
	out->length = row->length;
	out->offset = row->offset;
	out->expires = row->expires / 1000;
	out->done = row->done;
	snprintf(out->path, sizeof out->path, "%s", row->path);
	snprintf(out->meta, sizeof out->meta, "%s", row->meta);
	(void)c;
}

/* ------------------------------------------------------------ live table */

/* The live entry of id, made if missing, with a reference. */
static sd_rup_live *live_ref(sd_core *c, const char *id)
{
	sd_rup_live *e;
	for (e = c->rups; e; e = e->next)
		if (strcmp(e->id, id) == 0)
			break;
	if (!e) {
		e = sd_xcalloc(1, sizeof *e);
		snprintf(e->id, sizeof e->id, "%s", id);
		e->next = c->rups;
		c->rups = e;
	}
	e->refs++;
	return e;
}

/* Drop a reference (lock held); the entry goes with the last one unless it
 * keeps a hash state worth keeping (keep_state). */
static void live_unref(sd_core *c, sd_rup_live *e, int keep_state)
{
	SD_ASSERT(e->refs > 0);
	if (--e->refs > 0 || (keep_state && e->md))
		return;
	for (sd_rup_live **pp = &c->rups; *pp; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	EVP_MD_CTX_free(e->md);
	free(e);
}

/* Take upload id for one open (R4): 0 and *out held; -EBUSY. */
static int live_acquire(sd_core *c, const char *id, sd_rup_live **out)
{
	pthread_mutex_lock(&c->rup_lock);
	sd_rup_live *e = live_ref(c, id);
	if (e->busy) {
		e->stop = 1;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += RUP_TAKEOVER_MS / 1000;
		ts.tv_nsec += (RUP_TAKEOVER_MS % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		while (e->busy)
			if (pthread_cond_timedwait(&c->rup_cond, &c->rup_lock, &ts) != 0)
				break;
		if (e->busy) {
			live_unref(c, e, 1);
			pthread_mutex_unlock(&c->rup_lock);
			return -EBUSY;
		}
	}
	e->busy = 1;
	e->stop = 0;
	pthread_mutex_unlock(&c->rup_lock);
	*out = e;
	return 0;
}

static void live_release(sd_core *c, sd_rup_live *e, int keep_state)
{
	pthread_mutex_lock(&c->rup_lock);
	e->busy = 0;
	if (!keep_state) {
		EVP_MD_CTX_free(e->md);
		e->md = NULL;
		e->hashed = 0;
	}
	live_unref(c, e, keep_state);
	pthread_cond_broadcast(&c->rup_cond);
	pthread_mutex_unlock(&c->rup_lock);
}

/* Is an open of id running in this process? (lock not held) */
static int live_busy(sd_core *c, const char *id)
{
	int busy = 0;
	pthread_mutex_lock(&c->rup_lock);
	for (sd_rup_live *e = c->rups; e; e = e->next)
		if (strcmp(e->id, id) == 0)
			busy = e->busy || e->refs > 0;
	pthread_mutex_unlock(&c->rup_lock);
	return busy;
}

void sd__rup_free_all(sd_core *c)
{
	sd_rup_live *e = c->rups;
	while (e) {
		sd_rup_live *n = e->next;
		EVP_MD_CTX_free(e->md);
		free(e);
		e = n;
	}
	c->rups = NULL;
}

/* ------------------------------------------------------------ create */

/* May npath receive a new content for u (the checks of upload_begin,
 * rights in u's view included: teams)? *existing = the size of the file
 * it replaces. The commit checks again (rights and the quota of the tree
 * the file is in). */
static int target_ok(sd_core *c, sd_dbc *d, const sd_principal *u, const char *npath,
		     unsigned flags, uint64_t *existing)
{
	sd_node n;
	*existing = 0;
	if (strcmp(npath, "/") == 0)
		return -EISDIR;
	int r = sd__tree_lookup(c, d, u, npath, &n);
	if (r == 0 && !n.vis)
		r = -ENOENT;
	if (r == 0) {
		if (n.kind == SD_KIND_DIR)
			return -EISDIR;
		if (flags & SD_UP_EXCL)
			return -EEXIST;
		if (!(n.rights & SD_RIGHT_WRITE))
			return -EACCES;
		*existing = n.size;
		return 0;
	}
	if (r != -ENOENT)
		return r;
	char ppath[SD_PATH_MAX + 1];
	snprintf(ppath, sizeof ppath, "%s", npath);
	char *slash = strrchr(ppath, '/');
	if (slash == ppath)
		slash[1] = '\0';
	else
		*slash = '\0';
	r = sd__tree_lookup(c, d, u, ppath, &n);
	if (r == 0 && !n.vis)
		r = -ENOENT;
	if (r == 0 && n.kind != SD_KIND_DIR)
		return -ENOTDIR;
	if (r == 0 && !(n.rights & SD_RIGHT_WRITE))
		return -EACCES;
	if (r == -ENOENT && (flags & SD_UP_PARENTS))
		return 0;
	return r;
}

static int commit_part(sd_core *c, const sd_principal *u, const rup_row *row, int fd,
		       EVP_MD_CTX *state, sd_stat *st);

int sd__rup_create(sd_core *c, const sd_principal *u, const char *npath, unsigned flags,
		   uint64_t length, uint32_t mode, const char *meta, sd_rupload_info *out)
{
	int r = sd__check_writable(u);
	if (r < 0)
		return r;
	if (flags & ~(SD_UP_PARENTS | SD_UP_EXCL))
		return -EINVAL;
	if (!meta)
		meta = "";
	if (strlen(meta) >= SD_RUP_META_MAX)
		return -E2BIG;
	if (length > (uint64_t)INT64_MAX)
		return -EFBIG;
	int64_t now = sd__now_ms(c);

	/* the checks, then the row, in one write transaction: two creates do
	 * not both find room for themselves in the quota */
	rup_row row;
	memset(&row, 0, sizeof row);
	unsigned char rnd[16];
	if ((r = sd_random_bytes(rnd, sizeof rnd)) < 0)
		return r;
	sd_hex(rnd, sizeof rnd, row.id);
	row.owner = u->id;
	snprintf(row.path, sizeof row.path, "%s", npath);
	row.flags = flags;
	row.mode = mode ? mode & 07777 : 0644;
	row.length = length;
	snprintf(row.meta, sizeof row.meta, "%s", meta);
	row.expires = now + c->conf->upload_expiry;

	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	uint64_t existing = 0;
	r = target_ok(c, d, u, npath, flags, &existing);
	if (r == 0) {
		sqlite3_stmt *st = sd_db_stmt(d, &q_rup_pending);
		sqlite3_bind_int64(st, 1, u->id);
		sqlite3_bind_int64(st, 2, now);
		int64_t count = 0, pending = 0;
		if (sqlite3_step(st) == SQLITE_ROW) {
			count = sqlite3_column_int64(st, 0);
			pending = sqlite3_column_int64(st, 1);
		}
		sqlite3_reset(st);
		if (count >= c->conf->max_uploads_per_user)
			r = -EMFILE;
		st = sd_db_stmt(d, &q_rup_quota);
		sqlite3_bind_int64(st, 1, u->id);
		if (r == 0 && sqlite3_step(st) == SQLITE_ROW) {
			int64_t quota = sqlite3_column_int64(st, 0), used = sqlite3_column_int64(st, 1);
			if (quota > 0 && used - (int64_t)existing + pending + (int64_t)length > quota)
				r = -EDQUOT;
		}
		sqlite3_reset(st);
	}
	if (r == 0) {
		sqlite3_stmt *st = sd_db_stmt(d, &q_rup_insert);
		sqlite3_bind_text(st, 1, row.id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, u->id);
		sqlite3_bind_text(st, 3, row.path, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, flags);
		sqlite3_bind_int64(st, 5, row.mode);
		sqlite3_bind_int64(st, 6, (int64_t)length);
		sqlite3_bind_text(st, 7, row.meta, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 8, now);
		sqlite3_bind_int64(st, 9, row.expires);
		r = sd_db_exec_stmt(st);
	}
	int cr = sd_db_write_end(c->db, d, r == 0);
	if ((r = r ? r : cr) < 0)
		return r;

	/* R2: the part file after its row */
	char part[PATH_MAX];
	part_path(c, row.id, part);
	int fd = sd_sys_open(part, O_RDWR | O_CREAT | O_EXCL, 0640);
	if (fd < 0) {
		r = fd;
		goto undo;
	}
	if (c->conf->durability_full && (r = sd_sys_fsync_dir(c->up_dir)) < 0) {
		sd_sys_close(fd);
		goto undo;
	}
	row_info(c, &row, out);
	if (length == 0) {
		/* nothing to wait for: an empty file, committed now */
		r = commit_part(c, u, &row, fd, NULL, out ? &out->st : NULL);
		sd_sys_close(fd);
		if (r < 0)
			goto undo;
		if (out) {
			out->done = 1;
		}
		sd_sys_unlink(part);
	} else {
		sd_sys_close(fd);
	}
	sd_log(SD_LOG_INFO, "upload", "event=rupload_created user=%s id=%.8s path=\"%s\" length=%llu",
	       u->name, row.id, npath, (unsigned long long)length);
	return 0;
undo:
	d = sd_db_write_begin(c->db);
	if (d) {
		sqlite3_stmt *st = sd_db_stmt(d, &q_rup_delete);
		sqlite3_bind_text(st, 1, row.id, -1, SQLITE_STATIC);
		int dr = sd_db_exec_stmt(st);
		sd_db_write_end(c->db, d, dr == 0);
	}
	sd_sys_unlink(part);
	return r;
}

/* ------------------------------------------------------------ commit */

typedef struct done_arg {
	const char *id;
	int64_t now, expires;
} done_arg;

/* In the commit's transaction (sd_put.in_txn): the row says done. */
static int mark_done(sd_dbc *d, void *arg)
{
	done_arg *a = arg;
	sqlite3_stmt *st = sd_db_stmt(d, &q_rup_done);
	sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, a->now);
	sqlite3_bind_int64(st, 3, a->expires);
	return sd_db_exec_stmt(st);
}

/* Commit the whole part file (fd) of row as a version of its path (R5).
 * state: the SHA-256 state of all its bytes, or NULL (re-read). */
static int commit_part(sd_core *c, const sd_principal *u, const rup_row *row, int fd,
		       EVP_MD_CTX *state, sd_stat *st)
{
	char hex[SD_SHA256_HEX];
	int r;
	if (state) {
		unsigned char dg[32];
		unsigned int dl = 0;
		EVP_MD_CTX *tmp = EVP_MD_CTX_new();
		if (!tmp || EVP_MD_CTX_copy_ex(tmp, state) != 1 ||
		    EVP_DigestFinal_ex(tmp, dg, &dl) != 1) {
			EVP_MD_CTX_free(tmp);
			return -ENOMEM;
		}
		EVP_MD_CTX_free(tmp);
		sd_hex(dg, 32, hex);
	} else if ((r = sd__hash_fd(fd, row->length, hex)) < 0) {
		return r;
	}
	int64_t now = sd__now_ms(c);
	done_arg da = {row->id, now, now + c->conf->upload_expiry};
	sd_put put = {.u = u, .npath = row->path, .flags = row->flags, .mode = row->mode,
		      .size = row->length, .op = "write", .st = st, .in_txn = mark_done,
		      .in_txn_arg = &da};
	char part[PATH_MAX];
	part_path(c, row->id, part);
	int dedup = 0;
	r = sd__commit_keep(c, fd, part, hex, row->length, &put, &dedup);
	if (r == 0) {
		sd__metric_add(c, "storaged_uploads_total", NULL, 1);
		sd_log(SD_LOG_INFO, "upload", "event=rupload_committed user=%s id=%.8s path=\"%s\" "
		       "size=%llu dedup=%d", u->name, row->id, row->path,
		       (unsigned long long)row->length, dedup);
	} else {
		sd_log(SD_LOG_WARN, "upload", "event=rupload_commit_failed user=%s id=%.8s path=\"%s\" "
		       "err=\"%s\"", u->name, row->id, row->path, sd__strerror(r));
	}
	return r;
}

/* The bytes of row are all there but not committed (a commit failed
 * earlier): commit them now, with the upload held. */
static int finish_complete(sd_core *c, const sd_principal *u, const sd_cred *cred, rup_row *row,
			   sd_stat *st)
{
	sd_rup_live *e;
	int r = live_acquire(c, row->id, &e);
	if (r < 0)
		return r;
	sd_dbc *d = sd_db_read_begin(c->db);
	r = d ? row_get(d, row->id, row) : -EIO;
	if (d)
		sd_db_read_end(c->db, d);
	if (r == 0 && !row->done && row->offset == row->length) {
		sd_user fresh;
		r = cred ? sd__auth_recheck(c, cred->uid, cred->method, cred->cred_id, cred->pwtag,
					    &fresh)
			 : 0;
		char part[PATH_MAX];
		part_path(c, row->id, part);
		int fd = r == 0 ? sd_sys_open(part, O_RDONLY, 0) : r;
		if (fd >= 0) {
			r = commit_part(c, u, row, fd, e->md && e->hashed == row->length ? e->md : NULL,
					st);
			sd_sys_close(fd);
			if (r == 0) {
				sd_sys_unlink(part);
				row->done = 1;
			}
		} else {
			r = fd == -ENOENT ? -SD_ECORRUPT : fd;
		}
	}
	live_release(c, e, r != 0 || !row->done);
	return r;
}

int sd__rup_info(sd_core *c, const sd_principal *u, const sd_cred *cred, const char *id,
		 sd_rupload_info *out)
{
	rup_row row;
	int r = row_of(c, u, id, &row);
	if (r < 0)
		return r;
	if (!row.done && row.offset == row.length) {
		sd_stat st;
		memset(&st, 0, sizeof st);
		if ((r = finish_complete(c, u, cred, &row, &st)) < 0)
			return r;
		row_info(c, &row, out);
		if (out)
			out->st = st;
		return 0;
	}
	row_info(c, &row, out);
	if (row.done && out) {
		/* what the path holds now, for the answer's ETag */
		sd_stat st;
		if (sd__tree_stat(c, u, row.path, &st) == 0)
			out->st = st;
	}
	return 0;
}

/* ------------------------------------------------------------ opens */

int sd__rup_open(sd_core *c, const sd_principal *u, const sd_cred *cred, const char *id,
		 uint64_t offset, const char *expect, sd_rupload **out)
{
	int r = sd__check_writable(u);
	if (r < 0)
		return r;
	if (expect && !sd_is_sha256_hex(expect))
		return -EINVAL;
	rup_row row;
	if ((r = row_of(c, u, id, &row)) < 0)
		return r;
	sd_rup_live *e;
	if ((r = live_acquire(c, id, &e)) < 0)
		return r;
	/* the row again, now that nobody else moves it */
	sd_dbc *d = sd_db_read_begin(c->db);
	r = d ? row_get(d, id, &row) : -EIO;
	if (d)
		sd_db_read_end(c->db, d);
	if (r == 0 && offset != row.offset)
		r = -ERANGE;
	sd_rupload *h = NULL;
	if (r == 0) {
		h = sd_xcalloc(1, sizeof *h);
		h->c = c;
		h->u = *u;
		if (cred)
			h->cred = *cred;
		else
			h->cred.method = SD_METHOD_ADMIN;
		h->cred.uid = u->id;
		h->live = e;
		snprintf(h->id, sizeof h->id, "%s", id);
		part_path(c, id, h->part);
		h->length = row.length;
		h->start = h->ckpt = row.offset;
		h->done = row.done || row.offset == row.length;
		if (expect) {
			snprintf(h->expect, sizeof h->expect, "%s", expect);
			h->chunk = EVP_MD_CTX_new();
			if (!h->chunk || EVP_DigestInit_ex(h->chunk, EVP_sha256(), NULL) != 1)
				r = -ENOMEM;
		}
	}
	if (r == 0 && !h->done) {
		int fd = sd_sys_open(h->part, O_RDWR, 0);
		struct stat sb;
		if (fd < 0) {
			r = fd == -ENOENT ? -SD_ECORRUPT : fd;
		} else if (fstat(fd, &sb) != 0) {
			r = -errno;
			sd_sys_close(fd);
		} else if ((uint64_t)sb.st_size < row.offset) {
			r = -SD_ECORRUPT; /* R2 */
			sd_sys_close(fd);
		} else {
			/* R1: bytes past the offset were never acknowledged */
			if ((uint64_t)sb.st_size > row.offset)
				r = sd_sys_ftruncate(fd, row.offset);
			/* the hash state of [0, offset): fresh from the start, else
			 * the one this process kept, else none (re-read at commit) */
			EVP_MD_CTX *fresh = NULL;
			const EVP_MD_CTX *state = NULL;
			if (row.offset == 0) {
				fresh = EVP_MD_CTX_new();
				if (!fresh || EVP_DigestInit_ex(fresh, EVP_sha256(), NULL) != 1)
					r = -ENOMEM;
				state = fresh;
			} else if (e->md && e->hashed == row.offset) {
				state = e->md;
			}
			if (r == 0)
				r = sd__wpipe_open_file(c, fd, h->part, row.offset, state, &h->p);
			EVP_MD_CTX_free(fresh);
			if (r < 0 && !h->p && fd >= 0)
				sd_sys_close(fd);
		}
	}
	if (r < 0) {
		if (h) {
			EVP_MD_CTX_free(h->chunk);
			free(h);
		}
		live_release(c, e, 1);
		return r;
	}
	*out = h;
	return 0;
}

/* Make what the pipe holds durable and move the row's offset (R1). */
static int checkpoint(sd_rupload *h)
{
	sd_core *c = h->c;
	int r = sd__wpipe_drain(h->p);
	uint64_t size = sd__wpipe_size(h->p);
	if (r == 0 && size == h->ckpt)
		return 0;
	if (r == 0 && c->conf->durability_full)
		r = sd_sys_fsync(sd__wpipe_fd(h->p));
	if (r < 0)
		return r;
	int64_t now = sd__now_ms(c);
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	sqlite3_stmt *st = sd_db_stmt(d, &q_rup_offset);
	sqlite3_bind_text(st, 1, h->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)size);
	sqlite3_bind_int64(st, 3, now);
	sqlite3_bind_int64(st, 4, now + c->conf->upload_expiry);
	r = sd_db_exec_stmt(st);
	int cr = sd_db_write_end(c->db, d, r == 0);
	if ((r = r ? r : cr) == 0)
		h->ckpt = size;
	return r;
}

int sd__rup_write(sd_rupload *h, const void *buf, size_t len)
{
	if (h->dead)
		return h->dead;
	if (h->live->stop) {
		h->dead = -ECANCELED;
		return h->dead;
	}
	if (h->done || !h->p) {
		h->dead = len ? -EFBIG : 0;
		return h->dead;
	}
	uint64_t at = sd__wpipe_size(h->p);
	if (len > h->length - at) {
		h->dead = -EFBIG;
		return h->dead;
	}
	int r = sd__wpipe_write(h->p, buf, len);
	if (r == 0 && h->chunk && EVP_DigestUpdate(h->chunk, buf, len) != 1)
		r = -ENOMEM;
	/* a long open without a checksum keeps what arrived every so often,
	 * so a daemon killed mid-request loses at most that much */
	if (r == 0 && !h->chunk && at + len - h->ckpt >= RUP_CHECKPOINT)
		r = checkpoint(h);
	if (r < 0)
		h->dead = r;
	return r;
}

int sd__rup_close(sd_rupload *h, int keep, sd_rupload_info *out)
{
	sd_core *c = h->c;
	int r = 0, keep_state = 1;
	rup_row row;
	if (h->p) {
		/* a write error leaves the file's tail unknown: back to the
		 * last durable offset */
		if (h->dead && h->dead != -ECANCELED && h->dead != -EFBIG)
			keep = 0;
		if (keep && h->chunk) {
			unsigned char dg[32];
			unsigned int dl = 0;
			char hex[SD_SHA256_HEX];
			if (EVP_DigestFinal_ex(h->chunk, dg, &dl) != 1) {
				r = -ENOMEM;
			} else {
				sd_hex(dg, 32, hex);
				if (strcasecmp(hex, h->expect) != 0)
					r = -SD_ECHECKSUM;
			}
			if (r < 0)
				keep = 0;
		}
		int cr = 0;
		if (keep)
			cr = checkpoint(h);
		if (!keep || cr < 0) {
			/* drop what this open wrote since its last checkpoint */
			sd__wpipe_drain(h->p);
			int fd = sd__wpipe_fd(h->p);
			if (fd >= 0)
				sd_sys_ftruncate(fd, h->ckpt);
			keep_state = 0;
			if (r == 0)
				r = cr;
		}
		if (keep_state) {
			pthread_mutex_lock(&c->rup_lock);
			if (!h->live->md)
				h->live->md = EVP_MD_CTX_new();
			pthread_mutex_unlock(&c->rup_lock);
			if (h->live->md && sd__wpipe_hash_state(h->p, h->live->md) == 0)
				h->live->hashed = h->ckpt;
			else
				keep_state = 0;
		}
	}
	sd_dbc *d = sd_db_read_begin(c->db);
	int gr = d ? row_get(d, h->id, &row) : -EIO;
	if (d)
		sd_db_read_end(c->db, d);
	if (gr == 0 && !row.done && row.offset == row.length && r == 0) {
		/* the last byte is here: the content is committed now (R5) */
		sd_user fresh;
		r = sd__auth_recheck(c, h->cred.uid, h->cred.method, h->cred.cred_id, h->cred.pwtag,
				     &fresh);
		sd_stat st;
		memset(&st, 0, sizeof st);
		if (r == 0) {
			int own = !h->p;
			int fd = own ? sd_sys_open(h->part, O_RDONLY, 0) : sd__wpipe_fd(h->p);
			EVP_MD_CTX *state =
			    keep_state && h->live->md && h->live->hashed == row.length ? h->live->md : NULL;
			r = fd < 0 ? (fd == -ENOENT ? -SD_ECORRUPT : fd)
				   : commit_part(c, &h->u, &row, fd, state, &st);
			if (own && fd >= 0)
				sd_sys_close(fd);
		}
		if (r == 0) {
			sd_sys_unlink(h->part);
			row.done = 1;
			keep_state = 0;
		}
		row_info(c, &row, out);
		if (out)
			out->st = st;
	} else if (gr == 0) {
		row_info(c, &row, out);
		if (row.done && out) {
			sd_stat st;
			if (sd__tree_stat(c, &h->u, row.path, &st) == 0)
				out->st = st;
		}
	} else if (r == 0) {
		r = gr; /* deleted meanwhile */
	}
	sd__wpipe_free(h->p, 0);
	EVP_MD_CTX_free(h->chunk);
	live_release(c, h->live, keep_state);
	free(h);
	return r;
}

/* ------------------------------------------------------------ removal */

/* Remove the row, then the part file (R2). */
static int remove_upload(sd_core *c, const char *id)
{
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	sqlite3_stmt *st = sd_db_stmt(d, &q_rup_delete);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	int r = sd_db_exec_stmt(st);
	int changed = r == 0 ? sqlite3_changes(sd_db_handle(d)) : 0;
	int cr = sd_db_write_end(c->db, d, r == 0);
	if ((r = r ? r : cr) < 0)
		return r;
	char part[PATH_MAX];
	part_path(c, id, part);
	sd_sys_unlink(part);
	return changed ? 0 : -ENOENT;
}

int sd__rup_delete(sd_core *c, const sd_principal *u, const char *id)
{
	int r = sd__check_writable(u);
	if (r < 0)
		return r;
	rup_row row;
	if ((r = row_of(c, u, id, &row)) < 0)
		return r;
	sd_rup_live *e;
	if ((r = live_acquire(c, id, &e)) < 0)
		return r;
	r = remove_upload(c, id);
	live_release(c, e, 0);
	if (r == 0)
		sd_log(SD_LOG_INFO, "upload", "event=rupload_deleted user=%s id=%.8s path=\"%s\" "
		       "offset=%llu", u->name, id, row.path, (unsigned long long)row.offset);
	return r;
}

int sd__rup_expire(sd_core *c, int64_t now, int64_t *count)
{
	char ids[256][SD_RUP_ID_MAX];
	int n = 0;
	sd_dbc *d = sd_db_read_begin(c->db);
	if (!d)
		return -EIO;
	sqlite3_stmt *st = sd_db_stmt(d, &q_rup_expired);
	sqlite3_bind_int64(st, 1, now);
	while (n < 256 && sqlite3_step(st) == SQLITE_ROW)
		snprintf(ids[n++], SD_RUP_ID_MAX, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_reset(st);
	sd_db_read_end(c->db, d);
	for (int i = 0; i < n; i++) {
		if (live_busy(c, ids[i]))
			continue; /* in use now: its close moves the expiry on */
		if (remove_upload(c, ids[i]) == 0) {
			(*count)++;
			sd_log(SD_LOG_INFO, "gc", "event=rupload_expired id=%.8s", ids[i]);
		}
	}

	/* part files without a row (R2): a crash between a row's removal and
	 * its file's */
	DIR *dir = opendir(c->up_dir);
	if (!dir)
		return 0;
	struct dirent *de;
	while ((de = readdir(dir))) {
		if (!valid_id(de->d_name))
			continue;
		d = sd_db_read_begin(c->db);
		if (!d)
			break;
		st = sd_db_stmt(d, &q_rup_exists);
		sqlite3_bind_text(st, 1, de->d_name, -1, SQLITE_STATIC);
		int exists = sqlite3_step(st) == SQLITE_ROW;
		sqlite3_reset(st);
		sd_db_read_end(c->db, d);
		if (!exists && !live_busy(c, de->d_name)) {
			char part[PATH_MAX];
			part_path(c, de->d_name, part);
			if (sd_sys_unlink(part) == 0)
				sd_log(SD_LOG_INFO, "gc", "event=rupload_orphan_removed id=%.8s",
				       de->d_name);
		}
	}
	closedir(dir);
	return 0;
}
