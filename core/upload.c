/*
 * upload.c - streamed uploads (DESIGN path 1): STOR, HTTP PUT, storagectl
 * put. Bytes go through a write pipe (writer.c) into a temp file; commit
 * hands it to the one commit step (commit.c).
 *
 * Upload states: OPEN --write*--> OPEN --commit--> (freed)
 *                OPEN --error on write--> DEAD --commit/abort--> (freed)
 * Nothing is visible to any reader until commit's transaction.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"
#include "log.h"
#include "sys.h"

struct sd_upload {
	sd_core *c;
	sd_principal u;
	sd_cred cred; /* checked again at commit */
	char npath[SD_PATH_MAX + 1];
	unsigned flags;
	uint32_t mode;
	sd_wpipe *p;
	int dead;
	int64_t room; /* bytes the quota allows for this file; -1 = unlimited */
	int64_t mtime; /* 0 = commit time */
	unsigned lkhow;  /* SD_LK_* checked again at commit (lock.c); 0: none */
	sd_locktoks tk;  /* the tokens the session submitted at begin */
};

SD_SQL(q_user_quota, "SELECT quota_bytes, used_bytes FROM users WHERE id = ?1");

/* Quota room for a new content of path (existing size counts back). */
int sd__quota_room(sd_dbc *d, int64_t uid, uint64_t existing, int64_t *room)
{
	sqlite3_stmt *st = sd_db_stmt(d, &q_user_quota);
	sqlite3_bind_int64(st, 1, uid);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return -SD_EAUTH;
	}
	int64_t quota = sqlite3_column_int64(st, 0), used = sqlite3_column_int64(st, 1);
	sqlite3_reset(st);
	*room = quota > 0 ? quota - used + (int64_t)existing : -1;
	if (*room < -1)
		*room = 0;
	return 0;
}

/* Copy the first n bytes of the current content into the pipe (resume). */
static int copy_prefix(sd_core *c, sd_wpipe *p, const char *hex, uint64_t size, uint64_t n)
{
	sd_reader *rd;
	int r = sd__reader_open_hex(c, hex, size, &rd);
	if (r < 0)
		return r;
	size_t bufsz = 1 << 20;
	char *buf = sd_xmalloc(bufsz);
	uint64_t off = 0;
	while (off < n) {
		size_t want = n - off < bufsz ? (size_t)(n - off) : bufsz;
		ssize_t got = sd__reader_pread(rd, buf, want, off);
		if (got <= 0) {
			r = got < 0 ? (int)got : -SD_ECORRUPT;
			break;
		}
		if ((r = sd__wpipe_write(p, buf, (size_t)got)) < 0)
			break;
		off += (uint64_t)got;
	}
	free(buf);
	sd__reader_close(rd);
	return r;
}

int sd__upload_begin(sd_core *c, const sd_principal *u, const sd_cred *cred, const char *npath,
		     unsigned flags, uint64_t offset, uint32_t mode, sd_upload **out)
{
	int r = sd__check_writable(u);
	if (r < 0)
		return r;
	sd_upload *up = sd_xcalloc(1, sizeof *up);
	up->c = c;
	up->u = *u;
	if (cred)
		up->cred = *cred;
	else
		up->cred.method = SD_METHOD_ADMIN;
	up->cred.uid = u->id;
	up->flags = flags;
	up->mode = mode ? mode & 07777 : 0644;
	snprintf(up->npath, sizeof up->npath, "%s", npath);
	if (strcmp(up->npath, "/") == 0) {
		r = -EISDIR;
		goto fail;
	}

	sd_node n;
	char hex[SD_SHA256_HEX] = "";
	uint64_t existing = 0;
	int exists = 0;
	/* where it goes and whether the user may write there (team.c T7;
	 * the commit checks again in its transaction) */
	r = sd__tree_put_target(c, u, up->npath, flags, &n, &exists);
	if (r == 0 && exists) {
		existing = n.size;
		memcpy(hex, n.sha256, sizeof hex);
	}
	if (r == 0 && !exists && offset > 0)
		r = -EINVAL; /* nothing to resume */
	if (r == 0) { /* the quota of the tree's owner: the user or the shared folder */
		sd_dbc *d = sd_db_read_begin(c->db);
		r = sd__quota_room(d, n.owner, existing, &up->room);
		sd_db_read_end(c->db, d);
	}
	if (r < 0)
		goto fail;
	if (offset > existing) {
		r = -EINVAL;
		goto fail;
	}
	if ((r = sd__wpipe_open(c, &up->p)) < 0)
		goto fail;
	if (offset > 0 && (r = copy_prefix(c, up->p, hex, existing, offset)) < 0)
		goto fail;
	*out = up;
	return 0;
fail:
	sd__wpipe_free(up->p, 1);
	free(up);
	return r;
}

int sd__upload_write(sd_upload *up, const void *buf, size_t len)
{
	if (up->dead)
		return up->dead;
	if (up->room >= 0 && sd__wpipe_size(up->p) + len > (uint64_t)up->room) {
		up->dead = -EDQUOT;
		sd__event(up->c, SD_EV_QUOTA, &up->u, up->npath, NULL,
			  (int64_t)(sd__wpipe_size(up->p) + len), NULL, "quota exceeded");
		return up->dead;
	}
	int64_t maxf = up->c->conf->max_file_size;
	if (maxf > 0 && sd__wpipe_size(up->p) + len > (uint64_t)maxf) {
		up->dead = -EFBIG;
		return up->dead;
	}
	int r = sd__wpipe_write(up->p, buf, len);
	if (r < 0)
		up->dead = r;
	return r;
}

void sd__upload_set_locks(sd_upload *up, unsigned how, const sd_locktoks *tk)
{
	up->lkhow = how;
	up->tk = *tk;
}

int64_t sd__upload_room(const sd_upload *up)
{
	return up->room;
}

void sd__upload_set_mtime(sd_upload *up, int64_t mtime)
{
	up->mtime = mtime > 0 ? mtime : 0;
}

uint64_t sd__upload_size(const sd_upload *up)
{
	return sd__wpipe_size(up->p);
}

int sd__upload_commit(sd_upload *up, const char *expect, sd_stat *st, int *dedup)
{
	sd_core *c = up->c;
	char hex[SD_SHA256_HEX];
	uint64_t size = 0;
	int r = up->dead;
	if (r == 0)
		r = sd__wpipe_finish(up->p, hex, &size);
	if (r == 0 && expect && strcasecmp(expect, hex) != 0)
		r = -SD_ECHECKSUM;
	/* the session's credentials may have ended while the data came */
	sd_user fresh;
	/* always, whatever the session's own re-check policy: the bytes of an
	 * upload are committed only for credentials that hold now (one small
	 * read per commit) */
	if (r == 0 &&
	    (r = sd__auth_recheck(c, up->cred.uid, up->cred.method, up->cred.cred_id, up->cred.pwtag,
				  &fresh)) == -SD_EAUTH)
		sd_log(SD_LOG_INFO, "upload", "event=upload_refused user=%s path=\"%s\" "
		       "reason=credentials_changed", up->u.name, up->npath);
	/* a lock taken while the data came, without its token here */
	if (r == 0 && up->lkhow)
		r = sd__lock_allow(c, up->u.id, up->npath, up->lkhow, &up->tk);
	if (r < 0) {
		sd__upload_abort(up);
		return r;
	}
	sd_put put = {.u = &up->u, .npath = up->npath, .flags = up->flags, .mode = up->mode,
		      .size = size, .op = "write", .st = st, .mtime = up->mtime};
	int dd = 0;
	r = sd__commit_pipe(c, up->p, hex, size, &put, &dd);
	if (dedup)
		*dedup = dd;
	sd__wpipe_free(up->p, 1); /* the temp file, if any, is gone or unused */
	if (r == 0)
		sd__metric_add(c, "storaged_uploads_total", NULL, 1);
	free(up);
	return r;
}

void sd__upload_abort(sd_upload *up)
{
	if (!up)
		return;
	sd__wpipe_free(up->p, 1);
	free(up);
}
