/*
 * core.c - the engine's lifecycle, the function table handed to modules,
 * and the small calls that belong to no subsystem (stats, journal, errors).
 *
 * sd_core_open order: directories -> writability probe -> lock file ->
 * database (migrations) -> auth -> writer pool -> recovery (daemon) ->
 * cleaner thread (daemon). sd_core_close undoes it in reverse; front ends
 * must be stopped first, so no upload is in flight.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "log.h"
#include "sys.h"
#include "util.h"

int64_t sd__now_ms(sd_core *c)
{
	return c->clock_fn ? c->clock_fn(c->clock_arg) : sd_time_ms();
}

int64_t sd__now_s(sd_core *c)
{
	return sd__now_ms(c) / 1000;
}

int sd__disk_pct(sd_core *c, int *pct)
{
	if (c->disk_fn)
		return c->disk_fn(c->disk_arg, pct);
	return sd_sys_disk_usage(c->data_dir, pct, NULL, NULL);
}

void sd__core_set_clock(sd_core *c, int64_t (*fn)(void *arg), void *arg)
{
	c->clock_fn = fn;
	c->clock_arg = arg;
}

void sd__core_set_disk_usage(sd_core *c, int (*fn)(void *arg, int *pct), void *arg)
{
	c->disk_fn = fn;
	c->disk_arg = arg;
}

const char *sd__data_dir(sd_core *c)
{
	return c->data_dir;
}

void sd__log(sd_core *c, int level, const char *src, const char *fmt, ...)
{
	(void)c;
	va_list ap;
	va_start(ap, fmt);
	sd_vlog(level, src, fmt, ap);
	va_end(ap);
}

const char *sd__strerror(int err)
{
	if (err < 0)
		err = -err;
	switch (err) {
	case 0:
		return "success";
	case SD_ESENDDATA:
		return "content not stored here: send the data";
	case SD_ECHALLENGE:
		return "prove possession of the content";
	case SD_EPROOF:
		return "proof of possession refused";
	case SD_ECHECKSUM:
		return "content does not match the announced SHA-256";
	case SD_EAUTH:
		return "authentication failed";
	case SD_EBLOCKED:
		return "too many failed logins from this address; try again later";
	case SD_ECONFIG:
		return "configuration error";
	case SD_ECORRUPT:
		return "stored content is missing or damaged";
	case ENOENT:
		return "no such file or directory";
	case EEXIST:
		return "file exists";
	case ENOTDIR:
		return "not a directory";
	case EISDIR:
		return "is a directory";
	case ENOTEMPTY:
		return "directory not empty";
	case EACCES:
		return "permission denied";
	case EROFS:
		return "read-only credentials";
	case EDQUOT:
		return "quota exceeded";
	case ENOSPC:
		return "no space left on the server";
	case EBUSY:
		return "file is open in a conflicting mode";
	case EINVAL:
		return "invalid argument or path";
	case ENAMETOOLONG:
		return "name too long";
	case ESTALE:
		return "file changed meanwhile";
	default:
		return strerror(err);
	}
}

/* ------------------------------------------------------------ stats */

int sd__stats(sd_core *c, sd_stats *out)
{
	memset(out, 0, sizeof *out);
	sd_dbc *d = sd_db_read_begin(c->db);
	static const char *q =
	    "SELECT (SELECT count(*) FROM users),"
	    " (SELECT count(*) FROM nodes WHERE kind = 1 AND deleted_at IS NULL),"
	    " (SELECT count(*) FROM nodes WHERE kind = 2 AND deleted_at IS NULL AND parent IS NOT NULL),"
	    " (SELECT count(*) FROM nodes WHERE deleted_at IS NOT NULL),"
	    " (SELECT coalesce(sum(size), 0) FROM nodes WHERE kind = 1 AND deleted_at IS NULL),"
	    " (SELECT count(*) FROM blobs), (SELECT coalesce(sum(size), 0) FROM blobs),"
	    " (SELECT count(*) FROM blobs WHERE refs = 0), (SELECT count(*) FROM versions),"
	    " (SELECT coalesce(max(seq), 0) FROM journal)";
	static sd_sql sql = {NULL, -1};
	sql.text = q;
	sqlite3_stmt *st = sd_db_stmt(d, &sql);
	int r = -EIO;
	if (sqlite3_step(st) == SQLITE_ROW) {
		int64_t *f[] = {&out->users, &out->files, &out->dirs, &out->deleted, &out->logical_bytes,
				&out->blobs, &out->stored_bytes, &out->unreferenced_blobs, &out->versions,
				&out->journal_rows};
		for (int i = 0; i < 10; i++)
			*f[i] = sqlite3_column_int64(st, i);
		r = 0;
	}
	sqlite3_reset(st);
	sd_db_read_end(c->db, d);
	return r;
}

SD_SQL(q_journal_list, "SELECT seq, ts, user, op, path, detail FROM journal WHERE ts >= ?1 "
		       "AND (?2 IS NULL OR user = ?2) AND seq > ?3 ORDER BY seq LIMIT 1000");

int sd_core_journal(sd_core *c, int64_t since_ms, const char *user,
		    int (*cb)(void *arg, const sd_journal_row *r), void *arg)
{
	int64_t after = 0;
	int count = 0;
	for (;;) {
		/* copy a page out, then call back with no transaction open */
		typedef struct row {
			int64_t seq, ts;
			char *user, *op, *path, *detail;
		} row;
		row *rows = sd_xcalloc(1000, sizeof *rows);
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
			char **fields[] = {&r->user, &r->op, &r->path, &r->detail};
			for (int k = 0; k < 4; k++) {
				const unsigned char *t = sqlite3_column_text(st, 2 + k);
				*fields[k] = t ? sd_xstrdup((const char *)t) : NULL;
			}
		}
		sqlite3_reset(st);
		sd_db_read_end(c->db, d);
		int stop = 0;
		for (int i = 0; i < n; i++) {
			sd_journal_row jr = {rows[i].seq, rows[i].ts, rows[i].user, rows[i].op, rows[i].path,
					     rows[i].detail};
			if (!stop) {
				count++;
				if (cb && cb(arg, &jr))
					stop = 1;
			}
			after = rows[i].seq;
			free(rows[i].user);
			free(rows[i].op);
			free(rows[i].path);
			free(rows[i].detail);
		}
		free(rows);
		if (stop || n < 1000)
			break;
	}
	return count;
}

/* ------------------------------------------------------------ the table */

static const sd_core_api api = {
	.version = SD_CORE_API_VERSION,
	.size = sizeof(sd_core_api),
	.log = sd__log,
	.strerror = sd__strerror,
	.metric_add = sd__metric_add,
	.metric_set = sd__metric_set,
	.metrics_render = sd__metrics_render,
	.free = free,
	.now = sd__now_s,
	.data_dir = sd__data_dir,
	.auth_password = sd__auth_password,
	.auth_token = sd__auth_token,
	.auth_pubkey = sd__auth_pubkey,
	.auth_allowed = sd__auth_allowed,
	.user_refresh = sd__user_refresh,
	.stat = sd__stat,
	.readdir = sd__readdir,
	.mkdir = sd__mkdir,
	.rmdir = sd__rmdir,
	.unlink = sd__unlink,
	.rename = sd__rename,
	.chmod = sd__chmod,
	.set_mtime = sd__set_mtime,
	.copy = sd__copy,
	.fsinfo = sd__fsinfo,
	.normalize = sd__normalize,
	.upload_begin = sd__upload_begin,
	.upload_write = sd__upload_write,
	.upload_size = sd__upload_size,
	.upload_commit = sd__upload_commit,
	.upload_abort = sd__upload_abort,
	.instant_begin = sd__instant_begin,
	.instant_prove = sd__instant_prove,
	.open_read = sd__open_read,
	.file_open = sd__file_open,
	.file_pread = sd__file_pread,
	.file_pwrite = sd__file_pwrite,
	.file_truncate = sd__file_truncate,
	.file_fstat = sd__file_fstat,
	.file_sync = sd__file_sync,
	.file_close = sd__file_close,
	.file_abandon = sd__file_abandon,
	.user_add = sd__user_add,
	.user_get = sd__user_get,
	.user_get_id = sd__user_get_id,
	.user_list = sd__user_list,
	.user_set_password = sd__user_set_password,
	.user_set_disabled = sd__user_set_disabled,
	.user_set_quota = sd__user_set_quota,
	.user_set_admin = sd__user_set_admin,
	.key_add = sd__key_add,
	.token_create = sd__token_create,
	.token_revoke = sd__token_revoke,
	.token_list = sd__token_list,
	.stats = sd__stats,
	.gc_run = sd__gc_run,
	.upload_set_mtime = sd__upload_set_mtime,
};

const sd_core_api *sd_core_api_table(void)
{
	return &api;
}

/* ------------------------------------------------------------ lifecycle */

static char *join(const char *a, const char *b)
{
	return sd_xasprintf("%s/%s", a, b);
}

/* Can we create, write, fsync and remove a file in dir? */
static int probe_writable(const char *dir)
{
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s/.probe-%ld", dir, (long)getpid());
	int fd = sd_sys_open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return fd;
	int r = sd_sys_write(fd, "x", 1);
	close(fd);
	unlink(p);
	return r;
}

sd_core *sd_core_open(const sd_conf *conf, unsigned flags, char *err, size_t errlen)
{
	sd_core *c = sd_xcalloc(1, sizeof *c);
	c->conf = conf;
	c->flags = flags;
	c->lock_fd = -1;
	pthread_mutex_init(&c->chal_lock, NULL);
	pthread_mutex_init(&c->open_lock, NULL);
	pthread_mutex_init(&c->access_lock, NULL);
	pthread_mutex_init(&c->cl_lock, NULL);
	pthread_cond_init(&c->cl_cond, NULL);
	pthread_mutex_init(&c->gc_lock, NULL);
	c->metrics = sd__metrics_new();
	c->data_dir = sd_xstrdup(conf->data_dir);
	c->blob_dir = join(c->data_dir, "blobs");
	c->tmp_dir = join(c->data_dir, "tmp");
	c->lock_path = join(c->blob_dir, ".lock");
	if (sd__auth_init(c) < 0) {
		snprintf(err, errlen, "cannot initialise libsodium");
		goto fail;
	}
	const char *dirs[] = {c->data_dir, c->blob_dir, c->tmp_dir};
	for (int i = 0; i < 3; i++) {
		int r = sd_sys_mkdirs(dirs[i]);
		if (r < 0) {
			snprintf(err, errlen, "cannot create data directory %s: %s", dirs[i], strerror(-r));
			goto fail;
		}
	}
	int r = probe_writable(c->tmp_dir);
	if (r < 0) {
		snprintf(err, errlen, "data directory %s is not writable: %s", c->data_dir, strerror(-r));
		goto fail;
	}
	c->lock_fd = sd_sys_open(c->lock_path, O_RDWR | O_CREAT, 0640);
	if (c->lock_fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", c->lock_path, strerror(-c->lock_fd));
		goto fail;
	}
	char *dbpath = join(c->data_dir, "storaged.db");
	c->db = sd_db_open(dbpath, conf->durability_full, (int)conf->db_readers, (int)conf->busy_timeout,
			   err, errlen);
	free(dbpath);
	if (!c->db)
		goto fail;
	if ((r = sd__pool_start(c, (int)conf->writer_threads)) < 0) {
		snprintf(err, errlen, "cannot start writer threads: %s", strerror(-r));
		goto fail;
	}
	if (flags & SD_CORE_RECOVER)
		sd__recover(c);
	if ((flags & SD_CORE_THREADS) && (r = sd__cleaner_start(c)) < 0) {
		snprintf(err, errlen, "cannot start the cleaner: %s", strerror(-r));
		goto fail;
	}
	sd_log(SD_LOG_INFO, "core", "event=open data_dir=\"%s\" schema=%d durability=%s",
	       c->data_dir, sd_db_schema_version(), conf->durability_full ? "full" : "normal");
	return c;
fail:
	sd_core_close(c);
	return NULL;
}

void sd_core_close(sd_core *c)
{
	if (!c)
		return;
	sd__cleaner_stop(c);
	sd__pool_stop(c);
	if (c->db) {
		sd__blob_touch_flush(c);
		sd_db_close(c->db);
	}
	if (c->lock_fd >= 0)
		close(c->lock_fd);
	sd__chal_free_all(c);
	sd__open_free_all(c);
	if (c->fails)
		sd__auth_free(c);
	sd__metrics_free(c->metrics);
	free(c->accessed);
	free(c->data_dir);
	free(c->blob_dir);
	free(c->tmp_dir);
	free(c->lock_path);
	pthread_mutex_destroy(&c->chal_lock);
	pthread_mutex_destroy(&c->open_lock);
	pthread_mutex_destroy(&c->access_lock);
	pthread_mutex_destroy(&c->cl_lock);
	pthread_cond_destroy(&c->cl_cond);
	pthread_mutex_destroy(&c->gc_lock);
	free(c);
}
