/*
 * fsck.c - the store and the database checked against each other
 * (storagectl fsck): every stored object re-hashed (or, on a remote store
 * without --deep, checked against the checksum it keeps), every row's content
 * looked for, reference counts and per-user usage recounted. With repair:
 * refs and usage fixed, crash leftovers adopted, strays and damaged
 * objects that no row names removed. Damaged content that a row names is
 * reported, never removed: it may be the only copy.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "log.h"

typedef struct fsck_ctx {
	sd_core *c;
	sd_fsck_report *r;
	int repair, deep;
	void (*cb)(void *, const char *);
	void *arg;
} fsck_ctx;

static void say(fsck_ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(fsck_ctx *x, const char *fmt, ...)
{
	if (!x->cb)
		return;
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	x->cb(x->arg, line);
}

static int fsck_object(void *arg, const char *hex, const char *name)
{
	fsck_ctx *x = arg;
	sd_core *c = x->c;
	const sd_store_ops *ops = c->store->ops;
	if (!hex) {
		x->r->orphans++;
		say(x, "stray file in the store: %s%s", name, x->repair ? " (removed)" : "");
		if (x->repair && ops->discard(c->store, name) == 0)
			x->r->repaired++;
		return 0;
	}
	x->r->blobs_checked++;
	uint64_t size = 0;
	if (ops->stat(c->store, hex, &size) < 0)
		return 0; /* removed since the walk saw it */
	char got[SD_SHA256_HEX];
	int h = -1;
	/* a remote store's recorded checksum, unless asked to re-read: a
	 * content whose size or recorded SHA-256 does not match its address
	 * is damaged; one without a record (-ENOTSUP) is read */
	if (!x->deep && (ops->flags & SD_STORE_REMOTE) && ops->info) {
		uint64_t isz = 0;
		char sha[65] = "";
		int ir = ops->info(c->store, hex, &isz, sha);
		if (ir == -ENOENT)
			return 0; /* removed since the walk saw it */
		if (ir == 0 && isz == size && sd_is_sha256_hex(sha)) {
			snprintf(got, sizeof got, "%s", sha);
			h = 0;
		} else if (ir == 0) {
			snprintf(got, sizeof got, "%s", sha[0] ? sha : "(no checksum recorded)");
			h = 0;
			if (strcmp(got, hex) == 0) /* right checksum, wrong size */
				snprintf(got, sizeof got, "%s", "(a size other than recorded)");
		}
	}
	if (h < 0)
		h = sd__blob_hash(c, hex, size, got);
	if (h == -SD_ECORRUPT) {
		/* a remote store's reader checks the hash itself (store/remote.c)
		 * and refuses damaged bytes: damage all the same */
		snprintf(got, sizeof got, "%s", "(other bytes)");
		h = 0;
	}
	int exists = sd__blob_row_exists(c, hex);
	if (!exists) {
		/* A commit holds the stripe lock from placing its content until
		 * its row is committed: look again under the lock before calling
		 * this an orphan. */
		int lk = ops->lock(c->store, hex);
		exists = sd__blob_row_exists(c, hex);
		if (lk >= 0)
			ops->unlock(c->store, lk);
	}
	if (h == 0 && strcmp(got, hex) != 0) {
		x->r->bad_hash++;
		say(x, "damaged blob %s: content hashes to %s", hex, got);
		if (!exists && x->repair && ops->remove(c->store, hex) == 0) {
			x->r->repaired++;
			say(x, "  removed (no row names it)");
		}
		return 0;
	}
	if (!exists) {
		x->r->adoptable++;
		if (x->repair) {
			int r = sd__settle_orphan(c, hex);
			if (r >= 0)
				x->r->repaired++;
			say(x, "unreferenced blob file %s without a row (crash leftover): %s", hex,
			    r == 1 ? "adopted" : "removed");
		} else {
			say(x, "unreferenced blob file %s without a row (crash leftover; --repair adopts it)",
			    hex);
		}
	}
	return 0;
}

SD_SQL(q_inline_all, "SELECT b.id, b.sha256, b.size, i.data FROM blob_inline i "
		     "JOIN blobs b ON b.id = i.blob WHERE b.id > ?1 ORDER BY b.id LIMIT 256");

/* Inline blobs: re-hash their bytes in the database. Damage is reported,
 * never repaired (it may be the only copy). */
static void fsck_inline(fsck_ctx *x)
{
	sd_core *c = x->c;
	int64_t after = 0;
	for (;;) {
		int n = 0;
		sd_dbc *d = sd_db_read_begin(c->db);
		sqlite3_stmt *st = sd_db_stmt(d, &q_inline_all);
		sqlite3_bind_int64(st, 1, after);
		while (sqlite3_step(st) == SQLITE_ROW) {
			n++;
			after = sqlite3_column_int64(st, 0);
			const char *hex = (const char *)sqlite3_column_text(st, 1);
			int64_t size = sqlite3_column_int64(st, 2);
			const void *data = sqlite3_column_blob(st, 3);
			int len = sqlite3_column_bytes(st, 3);
			unsigned char dg[32];
			unsigned int dl = 0;
			char got[SD_SHA256_HEX];
			EVP_Digest(len ? data : "", (size_t)len, dg, &dl, EVP_sha256(), NULL);
			sd_hex(dg, 32, got);
			x->r->blobs_checked++;
			if (len != size || strcmp(got, hex) != 0) {
				x->r->bad_hash++;
				say(x, "damaged inline blob %s: %d bytes hashing to %s", hex, len, got);
			}
		}
		sqlite3_reset(st);
		sd_db_read_end(c->db, d);
		if (n < 256)
			break;
	}
}

static void fsck_line(void *arg, const char *line)
{
	fsck_ctx *x = arg;
	if (x->cb)
		x->cb(x->arg, line);
}

int sd_core_fsck(sd_core *c, int flags, sd_fsck_report *r,
		 void (*cb)(void *arg, const char *line), void *arg)
{
	memset(r, 0, sizeof *r);
	fsck_ctx x = {c, r, (flags & SD_FSCK_REPAIR) != 0, (flags & SD_FSCK_DEEP) != 0, cb, arg};
	int wr = c->store->ops->walk(c->store, fsck_object, &x);
	if (wr < 0)
		return wr;
	r->missing = sd__find_missing(c, fsck_line, &x);
	fsck_inline(&x);

	/* reference counts and usage, checked (and fixed) in one transaction */
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	sqlite3 *h = sd_db_handle(d);
	sqlite3_stmt *st;
	const char *q_refs = "SELECT b.sha256, b.refs, (SELECT count(*) FROM versions v WHERE v.blob = b.id) "
			     "FROM blobs b WHERE b.refs != (SELECT count(*) FROM versions v WHERE v.blob = b.id)";
	if (sqlite3_prepare_v2(h, q_refs, -1, &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW) {
			r->bad_refs++;
			say(&x, "blob %s: refs %lld but %lld references", sqlite3_column_text(st, 0),
			    (long long)sqlite3_column_int64(st, 1), (long long)sqlite3_column_int64(st, 2));
		}
		sqlite3_finalize(st);
	}
	const char *q_used = "SELECT u.name, u.used_bytes, (SELECT coalesce(sum(size), 0) FROM nodes n "
			     "WHERE n.owner = u.id AND n.kind = 1 AND n.deleted_at IS NULL) AS real "
			     "FROM users u WHERE u.used_bytes != real";
	if (sqlite3_prepare_v2(h, q_used, -1, &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW) {
			r->bad_used++;
			say(&x, "user %s: used_bytes %lld but files total %lld", sqlite3_column_text(st, 0),
			    (long long)sqlite3_column_int64(st, 1), (long long)sqlite3_column_int64(st, 2));
		}
		sqlite3_finalize(st);
	}
	int rc = 0;
	if (x.repair && (r->bad_refs || r->bad_used)) {
		rc = sqlite3_exec(h,
				  "UPDATE blobs SET refs = (SELECT count(*) FROM versions v WHERE v.blob = blobs.id);"
				  "UPDATE users SET used_bytes = (SELECT coalesce(sum(size), 0) FROM nodes n "
				  "WHERE n.owner = users.id AND n.kind = 1 AND n.deleted_at IS NULL);",
				  NULL, NULL, NULL);
		if (rc == SQLITE_OK)
			r->repaired += r->bad_refs + r->bad_used;
	}
	sd_db_write_end(c->db, d, x.repair && rc == SQLITE_OK);
	sd_log(SD_LOG_INFO, "fsck",
	       "event=fsck repair=%d deep=%d blobs=%lld bad_hash=%lld missing=%lld orphans=%lld adoptable=%lld "
	       "bad_refs=%lld bad_used=%lld repaired=%lld",
	       x.repair, x.deep, (long long)r->blobs_checked, (long long)r->bad_hash, (long long)r->missing,
	       (long long)r->orphans, (long long)r->adoptable, (long long)r->bad_refs, (long long)r->bad_used,
	       (long long)r->repaired);
	return rc == SQLITE_OK ? 0 : -EIO;
}
