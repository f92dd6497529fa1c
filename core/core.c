/*
 * core.c - the engine's lifecycle, and the small calls that belong to no
 * subsystem (stats, module state directories, the clock and disk seams).
 * The function table is api.c; error words are errors.c.
 *
 * sd_core_open order: directories -> writability probe -> blob store ->
 * handle table -> database (migrations, then the journal's rows from
 * before migration 0002 chained) -> auth -> writer pool -> recovery
 * (daemon) -> cleaner thread (daemon). sd_core_close undoes it in reverse;
 * front ends must be stopped first, so no upload is in flight.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "log.h"
#include "sys.h"
#include "util.h"

int64_t sd__now_s(sd_core *c)
{
	return sd__now_ms(c) / 1000;
}

SD_SQL(q_stored_bytes, "SELECT coalesce(sum(size), 0) FROM blobs b WHERE NOT EXISTS "
			"(SELECT 1 FROM blob_inline i WHERE i.blob = b.id)");

/* Bytes of the contents in the store (not inline). */
static int64_t stored_bytes(sd_core *c)
{
	sd_dbc *d = sd_db_read_begin(c->db);
	sqlite3_stmt *st = sd_db_stmt(d, &q_stored_bytes);
	int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	sd_db_read_end(c->db, d);
	return n;
}

int sd__disk_pct(sd_core *c, int *pct)
{
	if (c->disk_fn)
		return c->disk_fn(c->disk_arg, pct);
	int r = c->store->ops->space(c->store, pct, NULL, NULL, NULL);
	/* a remote store: the cache's disk, or the stored bytes against the
	 * configured capacity, whichever is fuller */
	if (r == 0 && (c->store->ops->flags & SD_STORE_REMOTE) && c->conf->store_capacity > 0) {
		int64_t p = stored_bytes(c) * 100 / c->conf->store_capacity;
		if (p > *pct)
			*pct = p > 100 ? 100 : (int)p;
	}
	return r;
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

struct sd_db *sd__core_db(sd_core *c)
{
	return c->db;
}

int sd__core_reap_handles(sd_core *c)
{
	return sd__handles_reap(c);
}

void sd__log(sd_core *c, int level, const char *src, const char *fmt, ...)
{
	(void)c;
	va_list ap;
	va_start(ap, fmt);
	sd_vlog(level, src, fmt, ap);
	va_end(ap);
}

int sd__state_dir(sd_core *c, const char *name, char *out, size_t outlen)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > 32 || strcmp(name, "blobs") == 0 || strcmp(name, "tmp") == 0 ||
	    strcmp(name, "uploads") == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
			return -EINVAL;
	}
	int w = snprintf(out, outlen, "%s/%s", c->data_dir, name);
	if (w < 0 || (size_t)w >= outlen)
		return -ENAMETOOLONG;
	if (mkdir(out, 0700) != 0 && errno != EEXIST)
		return -errno;
	struct stat sb;
	if (stat(out, &sb) != 0)
		return -errno;
	return S_ISDIR(sb.st_mode) ? 0 : -ENOTDIR;
}

/* ------------------------------------------------------------ stats */

int sd__stats(sd_core *c, sd_stats *out)
{
	memset(out, 0, sizeof *out);
	sd_dbc *d = sd_db_read_begin(c->db);
	static const char *q =
	    "SELECT (SELECT count(*) FROM users WHERE substr(name, 1, 1) != '~'),"
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

const sd_core_api *sd_core_api_table(void)
{
	return &sd__api;
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
	return sd_core_open_store(conf, flags, NULL, err, errlen);
}

sd_core *sd_core_open_store(const sd_conf *conf, unsigned flags, sd_store *store, char *err,
			    size_t errlen)
{
	sd_core *c = sd_xcalloc(1, sizeof *c);
	c->conf = conf;
	c->flags = flags;
	c->store = store;
	pthread_mutex_init(&c->chal_lock, NULL);
	pthread_mutex_init(&c->open_lock, NULL);
	pthread_mutex_init(&c->access_lock, NULL);
	pthread_mutex_init(&c->cl_lock, NULL);
	pthread_cond_init(&c->cl_cond, NULL);
	pthread_mutex_init(&c->gc_lock, NULL);
	pthread_mutex_init(&c->rup_lock, NULL);
	pthread_cond_init(&c->rup_cond, NULL);
	c->metrics = sd__metrics_new();
	c->data_dir = sd_xstrdup(conf->data_dir);
	c->tmp_dir = join(c->data_dir, "tmp");
	c->up_dir = join(c->data_dir, "uploads");
	if (sd__auth_init(c) < 0) {
		snprintf(err, errlen, "cannot initialise libsodium");
		goto fail;
	}
	const char *dirs[] = {c->data_dir, c->tmp_dir, c->up_dir};
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
	if (!c->store) {
		c->store = sd_core_store_open(conf, conf->blob_store ? conf->blob_store : "local",
					      c->data_dir, c->tmp_dir, (flags & SD_CORE_THREADS) != 0,
					      err, errlen);
		if (!c->store)
			goto fail;
	}
	sd__handles_init(c, (int)conf->max_handles);
	sd__team_init(c);
	char *dbpath = join(c->data_dir, "storaged.db");
	c->db = sd_db_open(dbpath, conf->durability_full, (int)conf->db_readers, (int)conf->busy_timeout,
			   err, errlen);
	free(dbpath);
	if (!c->db)
		goto fail;
	if ((r = sd__journal_seal(c)) < 0) {
		snprintf(err, errlen, "cannot chain the journal of %s: %s", c->data_dir, sd__strerror(r));
		goto fail;
	}
	if ((r = sd__pool_start(c, (int)conf->writer_threads)) < 0) {
		snprintf(err, errlen, "cannot start writer threads: %s", strerror(-r));
		goto fail;
	}
	if (flags & SD_CORE_RECOVER)
		sd__recover(c);
	if ((flags & SD_CORE_THREADS) && (r = sd__events_start(c)) < 0) {
		snprintf(err, errlen, "bad hook_events or webhook_events: use all, or a list of upload, "
			 "download, delete, rename, mkdir, login, login_failed, quota_exceeded");
		goto fail;
	}
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
	sd__events_stop(c);
	sd__cleaner_stop(c);
	sd__handles_free(c); /* abandons what sessions left open */
	sd__pool_stop(c);
	if (c->db) {
		sd__blob_touch_flush(c);
		sd_db_close(c->db);
	}
	if (c->store)
		c->store->ops->destroy(c->store);
	sd__chal_free_all(c);
	sd__open_free_all(c);
	sd__locks_free_all(c);
	sd__team_free_all(c);
	sd__rup_free_all(c);
	if (c->fails)
		sd__auth_free(c);
	sd__metrics_free(c->metrics);
	free(c->accessed);
	free(c->data_dir);
	free(c->tmp_dir);
	free(c->up_dir);
	pthread_mutex_destroy(&c->rup_lock);
	pthread_cond_destroy(&c->rup_cond);
	pthread_mutex_destroy(&c->chal_lock);
	pthread_mutex_destroy(&c->open_lock);
	pthread_mutex_destroy(&c->access_lock);
	pthread_mutex_destroy(&c->cl_lock);
	pthread_cond_destroy(&c->cl_cond);
	pthread_mutex_destroy(&c->gc_lock);
	free(c);
}
