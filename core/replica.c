/*
 * replica.c - bring a second data directory up to date from a source's
 * journal and the contents it names (storagectl replicate, issue 20).
 *
 * Design notes
 * ------------
 * Two engines are open in one process: src (the server followed) and dst
 * (the copy). A run replays src's journal rows after dst's position, in
 * seq order, each through the same engine calls a protocol's change goes
 * through on dst: sd__tree_mkdir, sd__commit_stored / sd__commit_temp (a
 * write, with its content copied from src's store into dst's through the
 * store interface when dst lacks it), sd__tree_rename, sd__tree_remove,
 * sd__tree_chmod, ... and the user, key and token calls of auth.c. So the
 * copy keeps every engine invariant (I1-I7) by construction: nothing here
 * writes a node, a blob row or a file of the store directly.
 *
 * Position. dst's `replica` row holds (source store id, seq, hash): the
 * last src row applied. Before applying row N, the run arms a journal mark
 * for its thread (journal.c sd__journal_mark); the journal row that the
 * change writes on dst stores the mark in the same transaction (I5). A
 * run killed at any point therefore leaves dst either before row N or
 * after it, never half-way, and the next run starts at the first row not
 * applied. A row that changes nothing on dst (mkdir -p of a directory that
 * exists) stores the mark in a transaction of its own: re-applying it
 * would change nothing either.
 *
 * Times. While a row is applied, dst's clock (the core's clock seam) reads
 * the row's ts, so the nodes, versions and journal rows the change makes
 * on dst carry the source's times: ctime, mtime, version times and
 * deleted_at are the same on both sides.
 *
 * Trust. Each row's chain link is checked before it is applied (prev is
 * the hash of the row before, hash is the row's): a row edited or removed
 * on src stops the run there. At the start, src's row at dst's position
 * must still have the hash dst recorded: a source whose applied history
 * changed, or whose journal lost rows at its end, is refused.
 *
 * What is replayed, per op (args are the JSON members journalled with the
 * row):
 *   write, instant, copy, restore   content sha256 and size at path, mode, mtime
 *   mkdir                 mkdir -p path, mode
 *   delete, rmdir         remove path (recursive; deleted_at: the stamp of a
 *                         burst of deletes, so the copy's trash groups alike)
 *   untrash               the trash item deleted from `from` at deleted_at
 *                         (history.c sd__hist_find_item) restored at path
 *   trash_empty           that item (from, deleted_at), or all, purged
 *   rollback              the whole rollback of path to `at` (history.c):
 *                         the copy has the same history at the same times,
 *                         so it does the same; its rollback_item rows are
 *                         parts of it, for people, and apply nothing
 *   rename                path -> to
 *   chmod, mtime          mode / mtime of path
 *   prop_set, prop_del    the dead property (ns, name, value) of path
 *   user_add              the user (admin, quota) with src's current
 *                         stored password string
 *   passwd                src's current stored password string
 *   user_disable/enable, user_quota, user_admin   the same change
 *   key_add               the key line
 *   token_create          src's token row (hash, scope, times, revoked)
 *   token_revoke          revoke the token with that hash
 *   login_failed, handle_expired   the row itself, copied (no state)
 *   group_add, group_del  the group (args: group)
 *   member_add, member_rm the membership (group, user)
 *   share_create, share_quota, share_delete   the shared folder (share,
 *                         quota); its account and root come with it
 *   share_grant, share_revoke   the rule (share, path in it, user or
 *                         group, rights)
 *   link_create           the link with that token hash (hash) on path, as
 *                         its maker, with src's stored row (password string,
 *                         limits): the journal never holds a secret
 *   link_revoke           revoke the link with that hash
 *   link_get, link_zip, link_list   one use, counted as on the source
 * Changes inside a shared folder are ordinary rows (write, mkdir, rename
 * ...) whose path is the user's view ("/<share>/..."): replayed as that
 * user, through the same mounts and rights on the copy.
 * Any other op stops the run ("cannot be replayed"): a new op must be added
 * to apply() below with what its replay needs in its args.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "log.h"
#include "sys.h"

#define PAGE 256
#define COPY_BUF (1u << 20)

typedef struct rctx {
	sd_core *src, *dst;
	char source[SD_STORE_ID_MAX];
	int64_t now; /* dst's clock while a row is applied: its ts */
	sd_replicate_report *rep;
	sd_jmark *mark; /* the row's mark, armed while it is applied */
	char *err;
	size_t errlen;
	char *buf;
} rctx;

/* The members of a row's args that some op uses. */
typedef struct rargs {
	char sha256[SD_SHA256_HEX];
	int has_size, has_mode, has_mtime, has_admin, has_quota, has_id;
	int64_t size, mtime, admin, quota, id;
	uint32_t mode;
	int recursive;
	char *to, *key;
	/* history (history.c) */
	int has_at, has_deleted_at, parents, all;
	int64_t at, deleted_at;
	char *from;
	/* dead properties (props.c) */
	char *ns, *name, *value;
	size_t value_len;
	/* teams and links (team.c, link.c) */
	char *group, *user, *share, *path, *hash;
	int has_rights;
	int64_t rights;
} rargs;

SD_SQL(q_args, "SELECT json_valid(?1), json_extract(?1, '$.sha256'), json_extract(?1, '$.size'), "
	       "json_extract(?1, '$.mode'), json_extract(?1, '$.mtime'), json_extract(?1, '$.to'), "
	       "json_extract(?1, '$.recursive'), json_extract(?1, '$.admin'), "
	       "json_extract(?1, '$.quota'), json_extract(?1, '$.key'), json_extract(?1, '$.id'), "
	       "json_extract(?1, '$.at'), json_extract(?1, '$.deleted_at'), "
	       "json_extract(?1, '$.from'), json_extract(?1, '$.parents'), "
	       "json_extract(?1, '$.all'), json_extract(?1, '$.ns'), json_extract(?1, '$.name'), "
	       "json_extract(?1, '$.value'), "
	       "json_extract(?1, '$.group'), json_extract(?1, '$.user'), "
	       "json_extract(?1, '$.share'), json_extract(?1, '$.path'), "
	       "json_extract(?1, '$.rights'), json_extract(?1, '$.hash')");
SD_SQL(q_position, "SELECT source, seq, hash FROM replica WHERE id = 1");
SD_SQL(q_users, "SELECT count(*) FROM users");

static int64_t replay_clock(void *arg)
{
	return ((rctx *)arg)->now;
}

static int fail(rctx *x, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(rctx *x, int r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(x->err, x->errlen, fmt, ap);
	va_end(ap);
	return r;
}

/* Parse a row's args (JSON text, may be NULL) with SQLite's JSON
 * functions. 0, or -EINVAL when the text is not a JSON object. */
static int parse_args(rctx *x, const char *text, rargs *a)
{
	memset(a, 0, sizeof *a);
	if (!text)
		return 0;
	sd_dbc *d = sd_db_read_begin(x->dst->db);
	sqlite3_stmt *st = sd_db_stmt(d, &q_args);
	sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
	int r = -EINVAL;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 1) {
		r = 0;
		const unsigned char *t = sqlite3_column_text(st, 1);
		if (t)
			snprintf(a->sha256, sizeof a->sha256, "%s", (const char *)t);
		if ((a->has_size = sqlite3_column_type(st, 2) == SQLITE_INTEGER))
			a->size = sqlite3_column_int64(st, 2);
		if (sqlite3_column_type(st, 3) == SQLITE_TEXT) {
			char *end;
			const char *m = (const char *)sqlite3_column_text(st, 3);
			unsigned long v = strtoul(m, &end, 8);
			if (*m && !*end && v <= 07777) {
				a->has_mode = 1;
				a->mode = (uint32_t)v;
			}
		}
		if ((a->has_mtime = sqlite3_column_type(st, 4) == SQLITE_INTEGER))
			a->mtime = sqlite3_column_int64(st, 4);
		if ((t = sqlite3_column_text(st, 5)))
			a->to = sd_xstrdup((const char *)t);
		a->recursive = sqlite3_column_int(st, 6) != 0;
		if ((a->has_admin = sqlite3_column_type(st, 7) == SQLITE_INTEGER))
			a->admin = sqlite3_column_int64(st, 7);
		if ((a->has_quota = sqlite3_column_type(st, 8) == SQLITE_INTEGER))
			a->quota = sqlite3_column_int64(st, 8);
		if ((t = sqlite3_column_text(st, 9)))
			a->key = sd_xstrdup((const char *)t);
		if ((a->has_id = sqlite3_column_type(st, 10) == SQLITE_INTEGER))
			a->id = sqlite3_column_int64(st, 10);
		if ((a->has_at = sqlite3_column_type(st, 11) == SQLITE_INTEGER))
			a->at = sqlite3_column_int64(st, 11);
		if ((a->has_deleted_at = sqlite3_column_type(st, 12) == SQLITE_INTEGER))
			a->deleted_at = sqlite3_column_int64(st, 12);
		if ((t = sqlite3_column_text(st, 13)))
			a->from = sd_xstrdup((const char *)t);
		a->parents = sqlite3_column_int(st, 14) != 0;
		a->all = sqlite3_column_int(st, 15) != 0;
		if ((t = sqlite3_column_text(st, 16)))
			a->ns = sd_xstrdup((const char *)t);
		if ((t = sqlite3_column_text(st, 17)))
			a->name = sd_xstrdup((const char *)t);
		if ((t = sqlite3_column_text(st, 18))) {
			a->value_len = (size_t)sqlite3_column_bytes(st, 18);
			a->value = sd_xmalloc(a->value_len + 1);
			memcpy(a->value, t, a->value_len + 1);
		}
		char **strs[] = {&a->group, &a->user, &a->share, &a->path};
		for (int i = 0; i < 4; i++)
			if ((t = sqlite3_column_text(st, 19 + i)))
				*strs[i] = sd_xstrdup((const char *)t);
		if ((a->has_rights = sqlite3_column_type(st, 23) == SQLITE_INTEGER))
			a->rights = sqlite3_column_int64(st, 23);
		if ((t = sqlite3_column_text(st, 24)))
			a->hash = sd_xstrdup((const char *)t);
	}
	sqlite3_reset(st);
	sd_db_read_end(x->dst->db, d);
	return r;
}

static void free_args(rargs *a)
{
	free(a->to);
	free(a->key);
	free(a->from);
	free(a->ns);
	free(a->name);
	free(a->value);
	free(a->group);
	free(a->user);
	free(a->share);
	free(a->path);
	free(a->hash);
}

/* ------------------------------------------------------------ contents */

/* Copy content sha256 (size bytes) from src's store into a dst temp file
 * through dst's write pipe (hashing it on the way), then commit it with
 * put. -SD_ECORRUPT if src's bytes are not that content. */
static int copy_and_commit(rctx *x, const char *sha256, uint64_t size, sd_put *put)
{
	sd_reader *rd;
	int r = sd__reader_open_hex(x->src, sha256, size, &rd);
	if (r < 0)
		return r;
	sd_wpipe *p = NULL;
	if ((r = sd__wpipe_open(x->dst, &p)) < 0) {
		sd__reader_close(rd);
		return r;
	}
	uint64_t off = 0;
	while (r == 0 && off < size) {
		size_t want = size - off < COPY_BUF ? (size_t)(size - off) : COPY_BUF;
		ssize_t got = sd__reader_pread(rd, x->buf, want, off);
		if (got <= 0)
			r = got < 0 ? (int)got : -SD_ECORRUPT;
		else if ((r = sd__wpipe_write(p, x->buf, (size_t)got)) == 0)
			off += (uint64_t)got;
	}
	sd__reader_close(rd);
	char hex[SD_SHA256_HEX];
	uint64_t got_size = 0;
	if (r == 0)
		r = sd__wpipe_finish(p, hex, &got_size);
	if (r == 0 && (got_size != size || strcmp(hex, sha256) != 0))
		r = -SD_ECORRUPT;
	if (r < 0) {
		sd__wpipe_free(p, 1);
		return r;
	}
	int dedup = 0;
	r = sd__commit_temp(x->dst, sd__wpipe_fd(p), sd__wpipe_path(p), hex, size, put, &dedup);
	sd__wpipe_free(p, 0); /* the commit consumed the temp file */
	if (r == 0 && !dedup) {
		x->rep->blobs_copied++;
		x->rep->bytes_copied += (int64_t)size;
	}
	return r;
}

static int apply_put(rctx *x, const sd_jrow *w, const rargs *a, const sd_principal *u)
{
	if (!sd_is_sha256_hex(a->sha256) || !a->has_size || a->size < 0)
		return fail(x, -EINVAL, "its args lack the content address and size");
	char hex[SD_SHA256_HEX];
	for (int i = 0; i < 64; i++)
		hex[i] = (char)(a->sha256[i] | 0x20); /* lowercase */
	hex[64] = '\0';
	sd_put put = {.u = u,
		      .npath = w->f[2],
		      .flags = SD_UP_PARENTS,
		      .mode = a->has_mode ? a->mode : 0,
		      .set_mode = a->has_mode,
		      .size = (uint64_t)a->size,
		      .op = w->f[1],
		      .mtime = a->has_mtime ? a->mtime : 0};
	int r = sd__commit_stored(x->dst, hex, (uint64_t)a->size, &put);
	if (r == -SD_ESENDDATA)
		r = copy_and_commit(x, hex, (uint64_t)a->size, &put);
	if (r == -SD_ECORRUPT)
		return fail(x, r, "content %s (%lld bytes) is missing or damaged on the source "
			    "(dropped by version_retention or the cleaner, or damaged: storagectl fsck)",
			    hex, (long long)a->size);
	if (r == 0)
		x->rep->files++;
	return r;
}

/* ------------------------------------------------------------ users */

/* A row applied as n changes (rows from before migration 0002 that name
 * no key or token: every one of the user's is copied): only the last
 * change stores the position, so a run stopped half-way applies the row
 * again (each change is idempotent: INSERT OR IGNORE). */
static void arm_last(rctx *x, int i, int n)
{
	sd__journal_mark(i == n - 1 ? x->mark : NULL);
}

static int apply_user(rctx *x, const char *op, const char *name, const rargs *a, const char *detail)
{
	sd_core *src = x->src, *dst = x->dst;
	char pw[256] = "";
	int r;
	if (!strcmp(op, "user_add") || !strcmp(op, "passwd")) {
		/* the password as stored now on src: the journal never holds it */
		if ((r = sd__user_pwhash(src, name, pw, sizeof pw)) < 0 && r != -ENOENT)
			return r;
		if (!strcmp(op, "passwd"))
			return sd__user_set_pwhash(dst, name, pw);
		int64_t quota = a->quota;
		int admin = a->has_admin ? a->admin != 0 : (detail && !strcmp(detail, "admin=1"));
		sd_user su;
		if (!a->has_quota) /* a row from before migration 0002 */
			quota = sd__user_get(src, name, &su) == 0 ? su.quota : 0;
		return sd__user_add_hashed(dst, name, pw, quota, admin ? SD_USER_ADMIN : 0);
	}
	if (!strcmp(op, "user_disable") || !strcmp(op, "user_enable"))
		return sd__user_set_disabled(dst, name, !strcmp(op, "user_disable"));
	if (!strcmp(op, "user_quota")) {
		if (!a->has_quota)
			return fail(x, -EINVAL, "its args lack the quota");
		return sd__user_set_quota(dst, name, a->quota);
	}
	if (!strcmp(op, "user_admin")) {
		if (!a->has_admin)
			return fail(x, -EINVAL, "its args lack the admin flag");
		return sd__user_set_admin(dst, name, a->admin != 0);
	}
	if (!strcmp(op, "key_add")) {
		if (a->key)
			return sd__key_add(dst, name, a->key);
		/* before migration 0002 the row named only the key type: copy
		 * every key the user has on src */
		char **lines;
		int n = sd__key_lines(src, name, &lines);
		r = 0;
		for (int i = 0; i < n; i++) {
			arm_last(x, i, n);
			if (r == 0)
				r = sd__key_add(dst, name, lines[i]);
			free(lines[i]);
		}
		free(lines);
		return r;
	}
	sd_tokrow t;
	if (!strcmp(op, "token_create")) {
		int64_t *ids = NULL;
		int n = a->has_id ? 1 : sd__token_ids(src, name, &ids);
		r = 0;
		for (int i = 0; i < n && r == 0; i++) {
			arm_last(x, i, n);
			r = sd__token_get(src, a->has_id ? a->id : ids[i], &t);
			if (r == 0)
				r = sd__token_import(dst, name, &t);
		}
		free(ids);
		return r == -ENOENT ? fail(x, r, "the token is not on the source any more") : r;
	}
	if (!strcmp(op, "key_remove")) {
		if (!a->key)
			return fail(x, -EINVAL, "its args lack the key's fingerprint");
		r = sd__key_remove(dst, name, a->key);
		return r == -ENOENT ? 0 : r; /* gone already: nothing to do */
	}
	if (!strcmp(op, "user_delete"))
		return sd__user_delete(dst, name);
	if (!strcmp(op, "token_revoke")) {
		if (!a->has_id)
			return fail(x, -EINVAL, "its args lack the token id");
		if ((r = sd__token_get(src, a->id, &t)) < 0)
			return fail(x, r, "token %lld is not on the source any more", (long long)a->id);
		if ((r = sd__token_revoke_hash(dst, t.hash)) == -ENOENT)
			return fail(x, r, "the token is not on the copy");
		return r;
	}
	return 1; /* not a user op */
}

/* ------------------------------------------------------------ one row */

/* A path of a row, checked to be one the engine wrote (normalised). */
static int good_path(const char *p)
{
	char n[SD_PATH_MAX + 1];
	return p && sd__path_norm(p, n, sizeof n) == 0 && strcmp(n, p) == 0 && strcmp(p, "/") != 0;
}

static int copy_row(rctx *x, const sd_jrow *w)
{
	sd_dbc *d = sd_db_write_begin(x->dst->db);
	if (!d)
		return -EIO;
	int r = sd__journal_row(d, w->ts, w->f[0], w->f[1], w->f[2], w->f[3], w->f[4]);
	int cr = sd_db_write_end(x->dst->db, d, r == 0);
	return r ? r : cr;
}

/* untrash, trash_empty, rollback (history.c). */
static int apply_history(rctx *x, const char *op, const char *path, const rargs *a,
			 const sd_principal *u)
{
	sd_core *dst = x->dst;
	if (!strcmp(op, "rollback")) {
		if (!a->has_at)
			return fail(x, -EINVAL, "its args lack the moment");
		return sd__hist_rollback(dst, u, path, a->at, NULL);
	}
	int r;
	if (!strcmp(op, "trash_empty") && a->all)
		return (r = sd__hist_trash_empty(dst, u, 0)) < 0 ? r : 0;
	if (!a->from || !a->has_deleted_at)
		return fail(x, -EINVAL, "its args lack the item (from, deleted_at)");
	int64_t id;
	r = sd__hist_find_item(dst, u, a->from, a->deleted_at, &id);
	if (r < 0)
		return fail(x, r, "the copy has no trash item deleted from %s at %lld", a->from,
			    (long long)a->deleted_at);
	if (!strcmp(op, "trash_empty"))
		return (r = sd__hist_trash_empty(dst, u, id)) < 0 ? r : 0;
	return sd__hist_trash_restore(dst, u, id, path, a->parents, NULL);
}

/* Groups, members, shared folders and their rules (team.c): the same
 * admin call on dst. 1 when op is not one of them. */
static int apply_team(rctx *x, const char *op, const rargs *a)
{
	sd_core *dst = x->dst;
	int r;
	if (!strcmp(op, "group_add") || !strcmp(op, "group_del")) {
		if (!a->group)
			return fail(x, -EINVAL, "its args lack the group");
		return !strcmp(op, "group_add") ? sd__group_add(dst, a->group)
					       : sd__group_delete(dst, a->group);
	}
	if (!strcmp(op, "member_add") || !strcmp(op, "member_rm")) {
		if (!a->group || !a->user)
			return fail(x, -EINVAL, "its args lack the group or the user");
		return !strcmp(op, "member_add") ? sd__group_member_add(dst, a->group, a->user)
						: sd__group_member_remove(dst, a->group, a->user);
	}
	if (!strncmp(op, "share_", 6) && !a->share)
		return fail(x, -EINVAL, "its args lack the shared folder");
	if (!strcmp(op, "share_create") || !strcmp(op, "share_quota")) {
		if (!a->has_quota)
			return fail(x, -EINVAL, "its args lack the quota");
		return !strcmp(op, "share_create") ? sd__share_create(dst, a->share, a->quota, NULL)
						  : sd__share_set_quota(dst, a->share, a->quota);
	}
	if (!strcmp(op, "share_delete"))
		return sd__share_delete(dst, a->share);
	if (!strcmp(op, "share_grant") || !strcmp(op, "share_revoke")) {
		if (!a->path || (!a->user == !a->group))
			return fail(x, -EINVAL, "its args lack the path, or the user or group");
		if (!strcmp(op, "share_revoke"))
			return sd__share_revoke(dst, a->share, a->path, a->user, a->group);
		if (!a->has_rights || a->rights < 0 || a->rights > (int64_t)SD_RIGHTS_ALL)
			return fail(x, -EINVAL, "its args lack the rights");
		r = sd__share_grant(dst, a->share, a->path, a->user, a->group, (unsigned)a->rights);
		return r;
	}
	return 1;
}

/* Share links (link.c): made, revoked, used. 1 when op is not one. */
static int apply_link(rctx *x, const char *op, const char *path, const rargs *a,
		      const sd_principal *u)
{
	int what = !strcmp(op, "link_get") ? SD_LINK_USE_GET
		   : !strcmp(op, "link_zip") ? SD_LINK_USE_ZIP
		   : !strcmp(op, "link_list") ? SD_LINK_USE_LIST : 0;
	if (!what && strcmp(op, "link_create") && strcmp(op, "link_revoke"))
		return 1;
	unsigned char h[32];
	if (!a->hash || sd_unhex(a->hash, h, 32) < 0)
		return fail(x, -EINVAL, "its args lack the link's hash");
	if (what)
		return sd__link_count_hash(x->dst, h, what, u->name, path);
	if (!strcmp(op, "link_revoke"))
		return sd__link_revoke_hash(x->dst, h);
	/* its password string as stored now on src: the journal never holds it */
	sd_linkrow row;
	int r = sd__link_get(x->src, h, &row);
	if (r < 0)
		return fail(x, r, "the link is not on the source any more");
	return sd__link_import(x->dst, u, path, h, &row);
}

/* Apply row w to dst. 0, or a negative error (x->err may say more). */
static int apply(rctx *x, const sd_jrow *w)
{
	const char *user = w->f[0], *op = w->f[1], *path = w->f[2];
	if (!op)
		return fail(x, -EINVAL, "the row has no op");
	if (!strcmp(op, "login_failed") || !strcmp(op, "handle_expired"))
		return copy_row(x, w);
	/* the cleaner's work is not replicated: the copy's cleaner does its own */
	if (!strcmp(op, "user_reap"))
		return copy_row(x, w);
	/* a part of the rollback its "rollback" row replays whole */
	if (!strcmp(op, "rollback_item"))
		return 0;
	rargs a;
	if (parse_args(x, w->f[4], &a) < 0)
		return fail(x, -EINVAL, "its args are not a JSON object");
	int r;
	if ((r = apply_team(x, op, &a)) <= 0) /* admin rows name no user */
		goto out;
	if (!user || !*user || strlen(user) > SD_USERNAME_MAX) {
		r = fail(x, -EINVAL, "the row names no valid user");
		goto out;
	}
	if ((r = apply_user(x, op, user, &a, w->f[3])) <= 0)
		goto out;
	int link = !strncmp(op, "link_", 5);
	int put = !strcmp(op, "write") || !strcmp(op, "instant") || !strcmp(op, "copy") ||
		  !strcmp(op, "restore");
	int hist = !strcmp(op, "untrash") || !strcmp(op, "trash_empty") || !strcmp(op, "rollback");
	int tree = put || hist || link || !strcmp(op, "mkdir") || !strcmp(op, "delete") ||
		   !strcmp(op, "rmdir") || !strcmp(op, "rename") || !strcmp(op, "chmod") ||
		   !strcmp(op, "mtime") || !strcmp(op, "prop_set") || !strcmp(op, "prop_del");
	if (!tree) {
		r = fail(x, -ENOTSUP, "op '%s' cannot be replayed by this version of storaged", op);
		goto out;
	}
	/* trash_empty names no path; a rollback may name "/" */
	int no_path = !strcmp(op, "trash_empty"), root_ok = !strcmp(op, "rollback") || link;
	if (!no_path && !good_path(path) && !(root_ok && path && !strcmp(path, "/"))) {
		r = fail(x, -EINVAL, "its path is not a normalised path");
		goto out;
	}
	sd_user su;
	if ((r = sd__user_get(x->dst, user, &su)) < 0) {
		r = fail(x, r, "user %s does not exist on the copy", user);
		goto out;
	}
	/* who made it on the copy: the user, over "replica" */
	sd_principal u;
	memset(&u, 0, sizeof u);
	sd__principal_set_user(&u, &su);
	snprintf(u.proto, sizeof u.proto, "replica");
	u.flags &= ~SD_USER_READONLY;
	sd_core *dst = x->dst;
	if (link) {
		if ((r = apply_link(x, op, path, &a, &u)) > 0)
			r = fail(x, -ENOTSUP, "op '%s' cannot be replayed by this version of storaged",
				 op);
	} else if (put) {
		r = apply_put(x, w, &a, &u);
	} else if (!strcmp(op, "mkdir")) {
		r = sd__tree_mkdir(dst, &u, path, a.has_mode ? a.mode : 0755, 1);
	} else if (!strcmp(op, "delete") || !strcmp(op, "rmdir")) {
		r = sd__tree_remove(dst, &u, path, !strcmp(op, "rmdir") && !a.recursive, a.recursive,
				    a.has_deleted_at ? a.deleted_at : 0);
	} else if (hist) {
		r = apply_history(x, op, path, &a, &u);
	} else if (!strcmp(op, "rename")) {
		if (!good_path(a.to))
			r = fail(x, -EINVAL, "its args lack a normalised rename target");
		else
			r = sd__tree_rename(dst, &u, path, a.to, 0);
	} else if (!strcmp(op, "chmod")) {
		r = a.has_mode ? sd__tree_chmod(dst, &u, path, a.mode)
			       : fail(x, -EINVAL, "its args lack the mode");
	} else if (!strcmp(op, "prop_set") || !strcmp(op, "prop_del")) {
		int set = !strcmp(op, "prop_set");
		sd_prop p = {a.ns, a.name, set ? a.value : NULL, set ? a.value_len : 0};
		r = a.ns && a.name && (!set || a.value) ? sd__props_patch(dst, &u, path, &p, 1)
							: fail(x, -EINVAL, "its args lack the property");
	} else { /* mtime */
		r = a.has_mtime ? sd__tree_set_mtime(dst, &u, path, a.mtime)
				: fail(x, -EINVAL, "its args lack the mtime");
	}
out:
	free_args(&a);
	return r;
}

/* ------------------------------------------------------------ the run */

/* dst's position: (seq, hash) of the last src row applied. A copy that
 * never ran starts at (0, zeros) if it is empty, or at its own journal's
 * newest row if it is a copy of src's data directory (same store id). */
static int position(rctx *x, int64_t *seq, unsigned char hash[32], int *fresh)
{
	char dst_id[SD_STORE_ID_MAX] = "";
	int r = sd_core_store_id(x->dst, dst_id);
	if (r < 0)
		return fail(x, r, "cannot read the copy's store id");
	*fresh = 0;
	sd_dbc *d = sd_db_read_begin(x->dst->db);
	sqlite3_stmt *st = sd_db_stmt(d, &q_position);
	char source[SD_STORE_ID_MAX] = "";
	int found = 0;
	if (sqlite3_step(st) == SQLITE_ROW) {
		found = 1;
		snprintf(source, sizeof source, "%s", (const char *)sqlite3_column_text(st, 0));
		*seq = sqlite3_column_int64(st, 1);
		memset(hash, 0, 32);
		if (sqlite3_column_bytes(st, 2) == 32)
			memcpy(hash, sqlite3_column_blob(st, 2), 32);
	}
	sqlite3_reset(st);
	int64_t users = 0;
	st = sd_db_stmt(d, &q_users);
	if (sqlite3_step(st) == SQLITE_ROW)
		users = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	sd_db_read_end(x->dst->db, d);
	if (found) {
		if (strcmp(source, x->source) != 0)
			return fail(x, -EXDEV, "the copy follows another server (store id %s), not this "
				    "one (%s)", source, x->source);
		return 0;
	}
	*fresh = 1;
	if (strcmp(dst_id, x->source) == 0) {
		/* a copy of src's data directory: it holds src's journal up to
		 * its own newest row */
		int64_t aseq;
		unsigned char ah[32];
		sd__journal_anchor(x->dst, &aseq, ah, seq);
		if (*seq == aseq) {
			memcpy(hash, ah, 32);
			return 0;
		}
		sd_jrow w;
		if (sd__journal_page(x->dst, *seq - 1, 1, &w) != 1)
			return fail(x, -EIO, "cannot read the copy's newest journal row");
		memcpy(hash, w.hash, 32);
		sd__jrows_free(&w, 1);
		return 0;
	}
	if (users > 0)
		return fail(x, -ENOTEMPTY, "the copy is not empty (it has users) and does not follow "
			    "this server: replicate into an empty data directory");
	*seq = 0;
	memset(hash, 0, 32);
	return 0;
}

/* Is src's journal still the one dst followed up to (seq, hash)? */
static int check_source(rctx *x, int64_t seq, const unsigned char hash[32], int64_t *head)
{
	int64_t aseq;
	unsigned char ah[32];
	sd__journal_anchor(x->src, &aseq, ah, head);
	if (seq > *head)
		return fail(x, -ESTALE, "the source's journal ends at seq %lld, before the copy's "
			    "position %lld: rows were removed from its end, or the source was restored "
			    "from an older backup", (long long)*head, (long long)seq);
	if (seq < aseq)
		return fail(x, -ESTALE, "the source pruned rows %lld..%lld (journal_retention) before "
			    "they were replicated: %s", (long long)seq + 1, (long long)aseq,
			    seq == 0 ? "seed the copy with a copy of the source's data directory "
				       "taken while it was stopped"
				     : "make a new copy");
	int same;
	if (seq == aseq) {
		same = memcmp(ah, hash, 32) == 0;
	} else {
		sd_jrow w;
		int n = sd__journal_page(x->src, seq - 1, 1, &w);
		same = n == 1 && w.seq == seq && w.has_hash && memcmp(w.hash, hash, 32) == 0;
		sd__jrows_free(&w, n);
	}
	if (!same)
		return fail(x, -ESTALE, "the source's journal row %lld is not the one the copy "
			    "applied: its history was rewritten (storagectl journal verify)",
			    (long long)seq);
	return 0;
}

/* Is w the row after (seq, prev) in an intact chain? */
static int check_link(rctx *x, const sd_jrow *w, int64_t seq, const unsigned char prev[32])
{
	unsigned char h[32];
	const char *reason = NULL;
	if (w->seq != seq + 1)
		reason = "rows are missing before it";
	else if (!w->has_prev || !w->has_hash)
		reason = "it has no hash";
	else if (memcmp(w->prev, prev, 32) != 0)
		reason = "its prev is not the previous row's hash";
	if (!reason) {
		sd__journal_hash(w->prev, w->seq, w->ts, (const char *const *)w->f, h);
		if (memcmp(h, w->hash, 32) != 0)
			reason = "it does not match its hash (edited)";
	}
	if (reason)
		return fail(x, -EBADMSG, "the source's journal is broken at seq %lld: %s "
			    "(storagectl journal verify on the source)", (long long)w->seq, reason);
	return 0;
}

static int store_mark(sd_core *c, const sd_jmark *m, int64_t now)
{
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	int r = sd__journal_mark_store(d, m, now);
	int cr = sd_db_write_end(c->db, d, r == 0);
	return r ? r : cr;
}

/* A copy of src's data directory follows src from now on, under a store
 * id of its own. */
static int adopt_clone(rctx *x, int64_t seq, const unsigned char hash[32])
{
	char id[SD_STORE_ID_MAX];
	int r = sd_random_hex(id, 16);
	if (r < 0)
		return r;
	sd_jmark m = {x->source, seq, {0}, 0};
	memcpy(m.hash, hash, 32);
	sd_dbc *d = sd_db_write_begin(x->dst->db);
	if (!d)
		return -EIO;
	r = sd__journal_mark_store(d, &m, sd__now_ms(x->dst));
	if (r == 0)
		r = sd__meta_set(d, "store_id", id);
	int cr = sd_db_write_end(x->dst->db, d, r == 0);
	return r ? r : cr;
}

static int same_dir(const char *a, const char *b)
{
	char ra[PATH_MAX], rb[PATH_MAX];
	if (!realpath(a, ra) || !realpath(b, rb))
		return 0;
	return strcmp(ra, rb) == 0;
}

int sd_core_replicate(sd_core *src, sd_core *dst, int64_t max_rows, sd_replicate_report *rep,
		      void (*progress)(void *arg, const sd_replicate_report *rep), void *arg,
		      char *err, size_t errlen)
{
	memset(rep, 0, sizeof *rep);
	if (errlen)
		err[0] = '\0';
	rctx x = {.src = src, .dst = dst, .rep = rep, .err = err, .errlen = errlen};
	if (src == dst || same_dir(src->data_dir, dst->data_dir))
		return fail(&x, -EINVAL, "the source and the copy are the same data directory");
	int r = sd_core_store_id(src, x.source);
	if (r < 0)
		return fail(&x, r, "cannot read the source's store id");
	snprintf(rep->source, sizeof rep->source, "%s", x.source);
	int64_t seq = 0, head = 0;
	unsigned char prev[32] = {0};
	int fresh = 0;
	if ((r = position(&x, &seq, prev, &fresh)) < 0)
		return r;
	rep->from_seq = rep->to_seq = seq;
	if ((r = check_source(&x, seq, prev, &head)) < 0)
		return r;
	rep->target_seq = head;
	if (fresh && seq > 0 && (r = adopt_clone(&x, seq, prev)) < 0)
		return fail(&x, r, "cannot record the copy's position: %s", sd__strerror(r));

	x.buf = sd_xmalloc(COPY_BUF);
	sd_jrow *rows = sd_xcalloc(PAGE, sizeof *rows);
	sd__core_set_clock(dst, replay_clock, &x);
	int64_t last_report = 0;
	while (r == 0 && seq < head && (max_rows <= 0 || rep->rows < max_rows)) {
		int want = PAGE;
		if (max_rows > 0 && max_rows - rep->rows < want)
			want = (int)(max_rows - rep->rows);
		int n = sd__journal_page(src, seq, want, rows);
		if (n == 0)
			r = fail(&x, -ESTALE, "the source's rows after seq %lld are gone (pruned while "
				 "the copy ran?)", (long long)seq);
		for (int i = 0; i < n && r == 0 && rows[i].seq <= head; i++) {
			sd_jrow *w = &rows[i];
			if ((r = check_link(&x, w, seq, prev)) < 0)
				break;
			sd_jmark m = {x.source, w->seq, {0}, 0};
			memcpy(m.hash, w->hash, 32);
			x.now = w->ts;
			x.mark = &m;
			sd__journal_mark(&m);
			if (errlen)
				err[0] = '\0';
			r = apply(&x, w);
			sd__journal_mark(NULL);
			if (r == 0 && !m.fired)
				r = store_mark(dst, &m, w->ts);
			if (r < 0) {
				char why[300];
				snprintf(why, sizeof why, "%s", errlen && err[0] ? err : sd__strerror(r));
				rep->fail_seq = w->seq;
				fail(&x, r, "seq %lld (%s %s%s%s): %s", (long long)w->seq,
				     w->f[1] ? w->f[1] : "?", w->f[0] ? w->f[0] : "-", w->f[2] ? " " : "",
				     w->f[2] ? w->f[2] : "", why);
				break;
			}
			seq = w->seq;
			memcpy(prev, w->hash, 32);
			rep->rows++;
			rep->to_seq = seq;
			if (progress && rep->rows - last_report >= PAGE) {
				last_report = rep->rows;
				progress(arg, rep);
			}
		}
		sd__jrows_free(rows, n);
	}
	sd__core_set_clock(dst, NULL, NULL);
	free(rows);
	free(x.buf);
	sd_log(r ? SD_LOG_ERROR : SD_LOG_INFO, "replica",
	       "event=replicate source=%s from=%lld to=%lld rows=%lld files=%lld blobs_copied=%lld "
	       "bytes_copied=%lld%s%s%s",
	       x.source, (long long)rep->from_seq, (long long)rep->to_seq, (long long)rep->rows,
	       (long long)rep->files, (long long)rep->blobs_copied, (long long)rep->bytes_copied,
	       r ? " err=\"" : "", r && errlen ? err : "", r ? "\"" : "");
	return r;
}
