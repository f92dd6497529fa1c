/*
 * gc.c - the cleaner (DESIGN path 5, FSTS), start-up recovery and fsck.
 *
 * A cleaner pass:
 *   1. purge logically deleted nodes older than deleted_retention: each
 *      deleted node whose parent is live is purged with its whole subtree
 *      (its descendants were deleted no later than it), dropping their
 *      versions (and so their blob references) and their placements, in
 *      one transaction per node (trash_empty purges the same way); then
 *      the rows of deleted users with no node left go (auth.c);
 *   2. drop versions replaced longer ago than version_retention (never a
 *      file's current version), releasing their references, journal rows
 *      older than journal_retention (the oldest rows, in seq order, moving
 *      the chain's anchor: journal.c), and history no view can reach any
 *      more (history.c H7): stays that ended before deleted_retention and
 *      change moments before the history horizon;
 *   3. if disk usage >= disk_high_water, remove blobs with refs = 0 whose
 *      last use is older than unreferenced_min_age (N). Unreferenced blobs
 *      below the high-water mark stay: they make later instant uploads
 *      possible (FSTS);
 *   4. remove temp files of processes that are gone, and any temp file
 *      older than temp_max_age;
 *   5. flush the batched last-access times of blobs that were read.
 * force (`storagectl gc --now`) ignores retention, age and high water.
 * Blob removal follows I3: stripe lock, DELETE ... WHERE refs = 0, commit,
 * remove from the store.
 *
 * Start-up recovery is here too; fsck is fsck.c.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "log.h"
#include "sys.h"
#include "util.h"

SD_SQL(q_purge_roots,
       "SELECT n.id FROM nodes n WHERE n.deleted_at IS NOT NULL AND n.deleted_at <= ?1 "
       "AND (n.parent IS NULL OR EXISTS (SELECT 1 FROM nodes p WHERE p.id = n.parent "
       "AND p.deleted_at IS NULL)) LIMIT 256");
SD_SQL(q_sub_clear, "DELETE FROM temp.gc_sub");
/* everything below a deleted node is deleted (history.c H1 and rollback
 * keep it so); the condition lets nodes_deleted_parent find them */
SD_SQL(q_sub_fill,
       "INSERT INTO temp.gc_sub(id) WITH RECURSIVE sub(id) AS (SELECT ?1 UNION ALL "
       "SELECT n.id FROM nodes n JOIN sub ON n.parent = sub.id WHERE n.deleted_at IS NOT NULL) "
       "SELECT id FROM sub");
SD_SQL(q_sub_unref,
       "UPDATE blobs SET refs = refs - (SELECT count(*) FROM versions v WHERE v.blob = blobs.id "
       "AND v.node IN (SELECT id FROM temp.gc_sub)), last_access = ?1 "
       "WHERE id IN (SELECT blob FROM versions WHERE node IN (SELECT id FROM temp.gc_sub))");
SD_SQL(q_sub_versions, "DELETE FROM versions WHERE node IN (SELECT id FROM temp.gc_sub)");
SD_SQL(q_sub_places, "DELETE FROM placements WHERE node IN (SELECT id FROM temp.gc_sub)");
/* rules and links on purged nodes go with them (team.c, link.c) */
SD_SQL(q_sub_rules, "DELETE FROM share_rules WHERE node IN (SELECT id FROM temp.gc_sub)");
SD_SQL(q_sub_links, "DELETE FROM links WHERE node IN (SELECT id FROM temp.gc_sub)");
SD_SQL(q_sub_nodes, "DELETE FROM nodes WHERE id IN (SELECT id FROM temp.gc_sub)");
SD_SQL(q_sub_count, "SELECT count(*) FROM temp.gc_sub");
SD_SQL(q_unref_blobs, "SELECT b.id, b.sha256, b.size, i.blob IS NOT NULL FROM blobs b "
		      "LEFT JOIN blob_inline i ON i.blob = b.id WHERE b.refs = 0 "
		      "AND b.last_access <= ?1 AND b.id > ?2 ORDER BY b.id LIMIT 256");
SD_SQL(q_blob_delete, "DELETE FROM blobs WHERE id = ?1 AND refs = 0");

int sd__purge_subtree(sd_core *c, sd_dbc *d, int64_t id, int64_t *count)
{
	sqlite3_exec(sd_db_handle(d),
		     "CREATE TEMP TABLE IF NOT EXISTS gc_sub(id INTEGER PRIMARY KEY);"
		     "PRAGMA defer_foreign_keys = ON;",
		     NULL, NULL, NULL);
	int r = sd_db_exec_stmt(sd_db_stmt(d, &q_sub_clear));
	if (r == 0) {
		sqlite3_stmt *st = sd_db_stmt(d, &q_sub_fill);
		sqlite3_bind_int64(st, 1, id);
		r = sd_db_exec_stmt(st);
	}
	int64_t cnt = 0;
	if (r == 0) {
		sqlite3_stmt *st = sd_db_stmt(d, &q_sub_count);
		if (sqlite3_step(st) == SQLITE_ROW)
			cnt = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		st = sd_db_stmt(d, &q_sub_unref);
		sqlite3_bind_int64(st, 1, sd__now_ms(c));
		r = sd_db_exec_stmt(st);
	}
	if (r == 0)
		r = sd_db_exec_stmt(sd_db_stmt(d, &q_sub_versions));
	if (r == 0)
		r = sd_db_exec_stmt(sd_db_stmt(d, &q_sub_places));
	if (r == 0)
		r = sd_db_exec_stmt(sd_db_stmt(d, &q_sub_rules));
	if (r == 0)
		r = sd_db_exec_stmt(sd_db_stmt(d, &q_sub_links));
	if (r == 0)
		r = sd_db_exec_stmt(sd_db_stmt(d, &q_sub_nodes));
	if (r == 0)
		sd_db_exec_stmt(sd_db_stmt(d, &q_sub_clear));
	if (r == 0 && count)
		*count = cnt;
	return r;
}

static int purge_nodes(sd_core *c, int64_t cutoff, sd_gc_report *rep)
{
	for (;;) {
		int64_t ids[256];
		int n = 0;
		sd_dbc *d = sd_db_read_begin(c->db);
		sqlite3_stmt *st = sd_db_stmt(d, &q_purge_roots);
		sqlite3_bind_int64(st, 1, cutoff);
		while (n < 256 && sqlite3_step(st) == SQLITE_ROW)
			ids[n++] = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		sd_db_read_end(c->db, d);
		if (n == 0)
			return 0;
		for (int i = 0; i < n; i++) {
			d = sd_db_write_begin(c->db);
			if (!d)
				return -EIO;
			int64_t cnt = 0;
			int r = sd__purge_subtree(c, d, ids[i], &cnt);
			int cr = sd_db_write_end(c->db, d, r == 0);
			if (r || cr) {
				sd_log(SD_LOG_ERROR, "gc", "event=purge_failed node=%lld err=\"%s\"",
				       (long long)ids[i], sd__strerror(r ? r : cr));
				return r ? r : cr;
			}
			rep->nodes_purged += cnt;
		}
	}
}

/* A version is "replaced" when a newer version of the same node exists;
 * the newest one is the node's current content and always stays. It goes
 * when it was replaced before the cutoff (the next version is older than
 * it), not when it was made before: a view of any moment after the cutoff
 * still finds the version that was current then (history.c H6). */
SD_SQL(q_old_versions,
       "SELECT v.id, v.blob FROM versions v WHERE v.ts < ?1 AND EXISTS (SELECT 1 FROM versions w "
       "WHERE w.node = v.node AND w.id > v.id AND w.ts < ?1) ORDER BY v.id LIMIT 512");
SD_SQL(q_version_delete, "DELETE FROM versions WHERE id = ?1");
SD_SQL(q_blob_unref, "UPDATE blobs SET refs = refs - 1, last_access = ?2 WHERE id = ?1");

static int drop_versions(sd_core *c, int64_t cutoff, sd_gc_report *rep)
{
	for (;;) {
		sd_dbc *d = sd_db_write_begin(c->db);
		if (!d)
			return -EIO;
		int64_t ids[512], blobs[512];
		int n = 0, r = 0;
		sqlite3_stmt *st = sd_db_stmt(d, &q_old_versions);
		sqlite3_bind_int64(st, 1, cutoff);
		while (n < 512 && sqlite3_step(st) == SQLITE_ROW) {
			ids[n] = sqlite3_column_int64(st, 0);
			blobs[n] = sqlite3_column_int64(st, 1);
			n++;
		}
		sqlite3_reset(st);
		int64_t now = sd__now_ms(c);
		for (int i = 0; i < n && r == 0; i++) {
			st = sd_db_stmt(d, &q_version_delete);
			sqlite3_bind_int64(st, 1, ids[i]);
			r = sd_db_exec_stmt(st);
			if (r == 0) {
				st = sd_db_stmt(d, &q_blob_unref);
				sqlite3_bind_int64(st, 1, blobs[i]);
				sqlite3_bind_int64(st, 2, now);
				r = sd_db_exec_stmt(st);
			}
		}
		int cr = sd_db_write_end(c->db, d, r == 0);
		if (r || cr)
			return r ? r : cr;
		rep->versions_dropped += n;
		if (n < 512)
			return 0;
	}
}

SD_SQL(q_places_prune, "DELETE FROM placements WHERE id IN (SELECT id FROM placements "
		       "WHERE t_to IS NOT NULL AND t_to < ?1 LIMIT 5000)");
/* per user, so the primary key (owner, ts) finds the rows */
SD_SQL(q_changes_prune, "DELETE FROM tree_changes WHERE owner IN (SELECT id FROM users) AND ts < ?1");
/* the owners in tree_changes, one index seek each; those of users the
 * cleaner removed (user_delete, then sd__users_reap) lose their rows, so
 * a later user with the same id starts with no moments */
SD_SQL(q_changes_next_owner, "SELECT min(owner) FROM tree_changes WHERE owner > ?1");
SD_SQL(q_user_exists, "SELECT 1 FROM users WHERE id = ?1");
SD_SQL(q_changes_gone_owner, "DELETE FROM tree_changes WHERE owner = ?1 AND NOT EXISTS "
			     "(SELECT 1 FROM users WHERE id = ?1)");

/* History no view reaches (H7): stays that ended before stays_cutoff, change
 * moments before moments_cutoff. */
static int prune_history(sd_core *c, int64_t stays_cutoff, int64_t moments_cutoff)
{
	for (int pass = 0; pass < 2; pass++) {
		for (;;) {
			sd_dbc *d = sd_db_write_begin(c->db);
			if (!d)
				return -EIO;
			sqlite3_stmt *st = sd_db_stmt(d, pass ? &q_changes_prune : &q_places_prune);
			sqlite3_bind_int64(st, 1, pass ? moments_cutoff : stays_cutoff);
			int r = sd_db_exec_stmt(st);
			int n = r == 0 ? sqlite3_changes(sd_db_handle(d)) : 0;
			int cr = sd_db_write_end(c->db, d, r == 0);
			if (r || cr)
				return r ? r : cr;
			if (n < 5000)
				break;
		}
	}
	/* owners without a user row (read, one index seek per owner), then
	 * their rows in one write */
	int64_t owner = -1, gone[64];
	int ngone = 0;
	sd_dbc *d = sd_db_read_begin(c->db);
	while (ngone < 64) {
		sqlite3_stmt *st = sd_db_stmt(d, &q_changes_next_owner);
		sqlite3_bind_int64(st, 1, owner);
		int found = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL;
		if (found)
			owner = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		if (!found)
			break;
		st = sd_db_stmt(d, &q_user_exists);
		sqlite3_bind_int64(st, 1, owner);
		if (sqlite3_step(st) != SQLITE_ROW)
			gone[ngone++] = owner;
		sqlite3_reset(st);
	}
	sd_db_read_end(c->db, d);
	if (ngone == 0)
		return 0;
	d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	int r = 0;
	for (int i = 0; i < ngone && r == 0; i++) {
		sqlite3_stmt *st = sd_db_stmt(d, &q_changes_gone_owner);
		sqlite3_bind_int64(st, 1, gone[i]);
		r = sd_db_exec_stmt(st);
	}
	int cr = sd_db_write_end(c->db, d, r == 0);
	return r ? r : cr;
}

static int remove_blobs(sd_core *c, int64_t cutoff, sd_gc_report *rep)
{
	int64_t after = 0;
	for (;;) {
		struct {
			int64_t id, size;
			int inl;
			char sha[SD_SHA256_HEX];
		} b[256];
		int n = 0;
		sd_dbc *d = sd_db_read_begin(c->db);
		sqlite3_stmt *st = sd_db_stmt(d, &q_unref_blobs);
		sqlite3_bind_int64(st, 1, cutoff);
		sqlite3_bind_int64(st, 2, after);
		while (n < 256 && sqlite3_step(st) == SQLITE_ROW) {
			b[n].id = sqlite3_column_int64(st, 0);
			snprintf(b[n].sha, sizeof b[n].sha, "%s", (const char *)sqlite3_column_text(st, 1));
			b[n].size = sqlite3_column_int64(st, 2);
			b[n].inl = sqlite3_column_int(st, 3);
			n++;
		}
		sqlite3_reset(st);
		sd_db_read_end(c->db, d);
		if (n == 0)
			return 0;
		for (int i = 0; i < n; i++) {
			after = b[i].id;
			const sd_store_ops *ops = c->store->ops;
			int lk = ops->lock(c->store, b[i].sha);
			if (lk < 0)
				return lk;
			d = sd_db_write_begin(c->db);
			if (!d) {
				ops->unlock(c->store, lk);
				return -EIO;
			}
			st = sd_db_stmt(d, &q_blob_delete);
			sqlite3_bind_int64(st, 1, b[i].id);
			int r = sd_db_exec_stmt(st);
			int gone = r == 0 && sqlite3_changes(sd_db_handle(d)) == 1;
			int cr = sd_db_write_end(c->db, d, r == 0);
			if (gone && cr == 0) {
				/* an inline blob went with its row (ON DELETE CASCADE) */
				int u = b[i].inl ? 0 : ops->remove(c->store, b[i].sha);
				if (u < 0 && u != -ENOENT)
					sd_log(SD_LOG_WARN, "gc", "event=remove_failed sha256=%s err=\"%s\"",
					       b[i].sha, sd__strerror(u));
				rep->blobs_removed++;
				rep->bytes_freed += b[i].size;
			}
			ops->unlock(c->store, lk);
		}
	}
}

/* 1 if a temp file name "<pid>-<seq>.tmp" belongs to a live process. */
static int temp_owner_alive(const char *name)
{
	char *end;
	long pid = strtol(name, &end, 10);
	if (end == name || *end != '-' || pid <= 0)
		return 0;
	if (pid == (long)getpid())
		return 1;
	return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

static void sweep_temps(sd_core *c, int64_t max_age_ms, sd_gc_report *rep)
{
	DIR *dir = opendir(c->tmp_dir);
	if (!dir)
		return;
	struct dirent *de;
	time_t now = time(NULL);
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		char p[PATH_MAX];
		if (snprintf(p, sizeof p, "%s/%s", c->tmp_dir, de->d_name) >= (int)sizeof p)
			continue;
		struct stat sb;
		if (lstat(p, &sb) != 0 || !S_ISREG(sb.st_mode))
			continue;
		int old = max_age_ms > 0 && (int64_t)(now - sb.st_mtime) * 1000 > max_age_ms;
		if (!temp_owner_alive(de->d_name) || old) {
			if (sd_sys_unlink(p) == 0) {
				rep->temps_removed++;
				sd_log(SD_LOG_INFO, "gc", "event=temp_removed file=%s", de->d_name);
			}
		}
	}
	closedir(dir);
}

int sd__gc_run(sd_core *c, int force, sd_gc_report *out)
{
	sd_gc_report rep = {0};
	const sd_conf *conf = c->conf;
	pthread_mutex_lock(&c->gc_lock);
	int64_t now = sd__now_ms(c);
	sd__blob_touch_flush(c);
	int r = purge_nodes(c, force ? INT64_MAX : now - conf->deleted_retention, &rep);
	int64_t users_reaped = 0; /* deleted users whose files are all purged now */
	if (r == 0)
		r = sd__users_reap(c, &users_reaped);
	/* history and audit are policy, not garbage: even force keeps them
	 * for their configured time */
	if (r == 0 && conf->version_retention > 0)
		r = drop_versions(c, now - conf->version_retention, &rep);
	if (r == 0 && conf->journal_retention > 0)
		r = sd__journal_prune(c, now - conf->journal_retention, &rep.journal_pruned);
	if (r == 0)
		r = prune_history(c, now - conf->deleted_retention, sd__history_horizon(c, now));
	int pct = 0;
	if (r == 0 && (r = sd__disk_pct(c, &pct)) == 0) {
		rep.disk_used_pct = pct;
		if (force || pct >= conf->disk_high_water)
			r = remove_blobs(c, force ? INT64_MAX : now - conf->unreferenced_min_age, &rep);
	}
	sweep_temps(c, conf->temp_max_age, &rep);
	sd__rup_expire(c, now, &rep.uploads_expired);
	pthread_mutex_unlock(&c->gc_lock);
	sd_log(r ? SD_LOG_ERROR : SD_LOG_INFO, "gc",
	       "event=gc force=%d nodes_purged=%lld versions_dropped=%lld journal_pruned=%lld "
	       "blobs_removed=%lld bytes_freed=%lld temps_removed=%lld uploads_expired=%lld "
	       "disk_used_pct=%d%s%s",
	       force, (long long)rep.nodes_purged, (long long)rep.versions_dropped,
	       (long long)rep.journal_pruned, (long long)rep.blobs_removed,
	       (long long)rep.bytes_freed, (long long)rep.temps_removed,
	       (long long)rep.uploads_expired, rep.disk_used_pct,
	       r ? " err=" : "", r ? sd__strerror(r) : "");
	sd__metric_add(c, "storaged_gc_runs_total", NULL, 1);
	sd__metric_add(c, "storaged_gc_blobs_removed_total", NULL, rep.blobs_removed);
	if (out)
		*out = rep;
	return r;
}

/* ------------------------------------------------------------ thread */

static void *cleaner_main(void *arg)
{
	sd_core *c = arg;
	const sd_conf *conf = c->conf;
	int64_t next_gc = sd_mono_ms() + conf->cleaner_interval;
	int64_t next_ckpt = sd_mono_ms() + conf->checkpoint_interval;
	/* idle detached handles are looked for four times per timeout */
	int64_t reap_every = conf->handle_idle_timeout / 4 > 250 ? conf->handle_idle_timeout / 4 : 250;
	int64_t next_reap = sd_mono_ms() + reap_every;
	pthread_mutex_lock(&c->cl_lock);
	while (!c->cleaner_stop) {
		int64_t now = sd_mono_ms();
		int64_t wake = next_gc < next_ckpt ? next_gc : next_ckpt;
		if (next_reap < wake)
			wake = next_reap;
		if (!c->cleaner_kick && wake > now) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			int64_t ms = wake - now;
			ts.tv_sec += ms / 1000;
			ts.tv_nsec += (ms % 1000) * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&c->cl_cond, &c->cl_lock, &ts);
			continue;
		}
		int kicked = c->cleaner_kick;
		c->cleaner_kick = 0;
		pthread_mutex_unlock(&c->cl_lock);
		now = sd_mono_ms();
		if (kicked || now >= next_gc) {
			sd__gc_run(c, 0, NULL);
			next_gc = sd_mono_ms() + conf->cleaner_interval;
		}
		if (now >= next_reap) {
			sd__handles_reap(c);
			next_reap = sd_mono_ms() + reap_every;
		}
		if (now >= next_ckpt) {
			sd__blob_touch_flush(c);
			sd_db_checkpoint(c->db);
			next_ckpt = sd_mono_ms() + conf->checkpoint_interval;
		}
		pthread_mutex_lock(&c->cl_lock);
	}
	pthread_mutex_unlock(&c->cl_lock);
	return NULL;
}

int sd__cleaner_start(sd_core *c)
{
	c->cleaner_stop = 0;
	int e = pthread_create(&c->cleaner, NULL, cleaner_main, c);
	if (e)
		return -e;
	c->cleaner_running = 1;
	return 0;
}

void sd__cleaner_stop(sd_core *c)
{
	if (!c->cleaner_running)
		return;
	pthread_mutex_lock(&c->cl_lock);
	c->cleaner_stop = 1;
	pthread_cond_signal(&c->cl_cond);
	pthread_mutex_unlock(&c->cl_lock);
	pthread_join(c->cleaner, NULL);
	c->cleaner_running = 0;
}

/* ------------------------------------------------------------ recovery */

SD_SQL(q_blob_exists, "SELECT id FROM blobs WHERE sha256 = ?1");
SD_SQL(q_blob_adopt, "INSERT OR IGNORE INTO blobs(sha256, size, refs, created, last_access) "
		     "VALUES (?1, ?2, 0, ?3, ?3)");

int sd__blob_row_exists(sd_core *c, const char *hex)
{
	sd_dbc *d = sd_db_read_begin(c->db);
	sqlite3_stmt *st = sd_db_stmt(d, &q_blob_exists);
	sqlite3_bind_text(st, 1, hex, 64, SQLITE_STATIC);
	int found = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_reset(st);
	sd_db_read_end(c->db, d);
	return found;
}

int sd__settle_orphan(sd_core *c, const char *hex)
{
	const sd_store_ops *ops = c->store->ops;
	int lk = ops->lock(c->store, hex);
	if (lk < 0)
		return lk;
	int r;
	uint64_t size = 0;
	char got[SD_SHA256_HEX];
	if (sd__blob_row_exists(c, hex)) /* committed meanwhile */
		r = 1;
	else if ((r = ops->stat(c->store, hex, &size)) == 0 &&
		 (r = sd__blob_hash(c, hex, size, got)) == 0 && strcmp(got, hex) == 0) {
		sd_dbc *d = sd_db_write_begin(c->db);
		if (!d) {
			ops->unlock(c->store, lk);
			return -EIO;
		}
		sqlite3_stmt *st = sd_db_stmt(d, &q_blob_adopt);
		sqlite3_bind_text(st, 1, hex, 64, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (int64_t)size);
		sqlite3_bind_int64(st, 3, sd__now_ms(c));
		r = sd_db_exec_stmt(st);
		int cr = sd_db_write_end(c->db, d, r == 0);
		r = r ? r : cr;
		if (r == 0)
			r = 1;
	} else if (r == 0 || r == -SD_ECORRUPT) {
		r = ops->remove(c->store, hex);
	}
	ops->unlock(c->store, lk);
	return r;
}

typedef struct recover_ctx {
	sd_core *c;
	int64_t files, orphans, adopted, removed, strays;
} recover_ctx;

static int recover_cb(void *arg, const char *hex, const char *name)
{
	recover_ctx *x = arg;
	if (!hex) {
		x->strays++;
		sd_log(SD_LOG_WARN, "recover", "event=stray_file path=\"%s\"", name);
		return 0;
	}
	x->files++;
	if (sd__blob_row_exists(x->c, hex))
		return 0;
	x->orphans++;
	int r = sd__settle_orphan(x->c, hex);
	if (r == 1)
		x->adopted++;
	else if (r == 0)
		x->removed++;
	sd_log(SD_LOG_WARN, "recover", "event=orphan_blob sha256=%s action=%s", hex,
	       r == 1 ? "adopted" : r == 0 ? "removed_bad_hash" : "error");
	return 0;
}

SD_SQL(q_all_blobs, "SELECT id, sha256, NOT EXISTS (SELECT 1 FROM blob_inline i WHERE i.blob = id) "
		    "FROM blobs WHERE id > ?1 ORDER BY id LIMIT 1024");

int64_t sd__find_missing(sd_core *c, void (*cb)(void *, const char *), void *arg)
{
	int64_t missing = 0, after = 0;
	char (*shas)[SD_SHA256_HEX] = sd_xmalloc(1024 * SD_SHA256_HEX);
	for (;;) {
		int n = 0;
		sd_dbc *d = sd_db_read_begin(c->db);
		sqlite3_stmt *st = sd_db_stmt(d, &q_all_blobs);
		sqlite3_bind_int64(st, 1, after);
		int rows = 0;
		while (sqlite3_step(st) == SQLITE_ROW) {
			rows++;
			after = sqlite3_column_int64(st, 0);
			if (sqlite3_column_int(st, 2)) /* in the store, not inline */
				snprintf(shas[n++], SD_SHA256_HEX, "%s", (const char *)sqlite3_column_text(st, 1));
		}
		sqlite3_reset(st);
		sd_db_read_end(c->db, d);
		for (int i = 0; i < n; i++) {
			if (c->store->ops->stat(c->store, shas[i], NULL) == 0)
				continue;
			missing++;
			char line[160];
			snprintf(line, sizeof line, "missing blob file %s", shas[i]);
			sd_log(SD_LOG_ERROR, "recover", "event=missing_blob sha256=%s", shas[i]);
			if (cb)
				cb(arg, line);
		}
		if (rows < 1024)
			break;
	}
	free(shas);
	return missing;
}

int sd__recover(sd_core *c)
{
	sd_gc_report rep = {0};
	sweep_temps(c, 0, &rep);
	recover_ctx x = {.c = c};
	c->store->ops->walk(c->store, recover_cb, &x);
	int64_t missing = sd__find_missing(c, NULL, NULL);
	sd_log(missing ? SD_LOG_ERROR : SD_LOG_INFO, "recover",
	       "event=recovered temps_removed=%lld blob_files=%lld orphans=%lld adopted=%lld "
	       "removed=%lld strays=%lld missing=%lld",
	       (long long)rep.temps_removed, (long long)x.files, (long long)x.orphans,
	       (long long)x.adopted, (long long)x.removed, (long long)x.strays, (long long)missing);
	return 0;
}
