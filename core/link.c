/*
 * link.c - share links: a random token that names a file or folder, so
 * that someone without an account can download it (a read link) or upload
 * new files into a folder (an upload link, a "file request").
 *
 * Design notes
 * ------------
 * A link is a row of `links`: the SHA-256 of its token (the token itself
 * is shown once, when it is made, and never stored), the user who made it,
 * the node it names, its mode, and its limits (expiry, password as an
 * Argon2id string, number of downloads). Front ends serve a link only
 * through the calls below (link_open gives an opaque sd_link), as they
 * serve a user only through a session: they never build a principal.
 *
 * A link ACTS AS ITS MAKER, with the maker's rights checked again at every
 * use: it is the maker who shares, and what the maker can no longer do,
 * the link can no longer do either (a member removed from a team, a rule
 * changed, the maker disabled or deleted).
 *
 * Invariants
 *  L1. A token is 32 bytes from the kernel's random source (getrandom),
 *      written as 43 base64url characters; only its SHA-256 is stored, and
 *      lookups are by that hash (an index), so the stored rows never give
 *      a usable token.
 *  L2. A token that names no usable link (unknown, revoked, expired,
 *      downloads used up, target deleted, maker disabled or gone, or the
 *      maker lacking the rights now) gets -ENOENT, the same for every
 *      reason. A wrong token, or a wrong password, counts as a failed
 *      login from the client's address (auth.c's limiter: delay, then
 *      lockout, -SD_EBLOCKED).
 *  L3. A read link needs its maker's read right on the target (and list
 *      on a folder); an upload link the write right on its folder. A link
 *      on a node of the maker's own tree never reaches a shared folder
 *      mounted in it (the maker's view without mounts); one in a shared
 *      folder sees it with the maker's rules (team.c T4).
 *  L4. Paths below a folder link go through the one resolver: "/" is the
 *      target, ".." stops there, nothing above it is ever reached.
 *  L5. Every use that gives content away or takes some in is journaled
 *      (link_get, link_zip, link_list; an upload is a write of the maker
 *      over "link"), and a counted use (a download, a zip) increments
 *      `downloads` in the same transaction as its journal row, refused
 *      once max_downloads is reached.
 *  L6. An upload link only adds files: a name that exists is -EEXIST, it
 *      never lists, reads or replaces.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "log.h"

#define TOKEN_BYTES 32
#define TOKEN_LEN 43 /* base64url of 32 bytes, no padding */

struct sd_link {
	sd_core *c;
	int64_t id;
	unsigned char hash[32];
	sd_principal u;   /* the maker, over "link" from the client's address */
	char base[SD_PATH_MAX + 1]; /* the target's path in the maker's view, now */
	sd_link_info info;
};

static void token_hash(const char *token, unsigned char out[32])
{
	unsigned int len = 0;
	EVP_Digest(token, strlen(token), out, &len, EVP_sha256(), NULL);
}

static int token_ok(const char *t)
{
	if (!t || strlen(t) != TOKEN_LEN)
		return 0;
	for (const char *p = t; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		      *p == '-' || *p == '_'))
			return 0;
	return 1;
}

SD_SQL(q_up, "SELECT parent, name FROM nodes WHERE id = ?1");
SD_SQL(q_share_at, "SELECT s.name, u.id FROM users u JOIN shares s ON s.account = u.id "
		   "WHERE u.root = ?1");
SD_SQL(q_user_root, "SELECT root FROM users WHERE id = ?1");

/* The path of node in the view of user uid now ("/a/b", or "/<share>/a/b"
 * in a shared folder), and whether it is in uid's own tree (*own). -ENOENT
 * when it is in neither. */
static int view_path(sd_dbc *d, int64_t uid, int64_t node, sd_buf *out, int *own)
{
	char *parts[512];
	int np = 0, r = 0;
	int64_t x = node;
	for (;;) {
		if (np == 512) {
			r = -ENAMETOOLONG;
			break;
		}
		sqlite3_stmt *st = sd_db_stmt(d, &q_up);
		sqlite3_bind_int64(st, 1, x);
		if (sqlite3_step(st) != SQLITE_ROW) {
			sqlite3_reset(st);
			r = -ENOENT;
			break;
		}
		if (sqlite3_column_type(st, 0) == SQLITE_NULL) {
			sqlite3_reset(st);
			break; /* x is a root */
		}
		int64_t up = sqlite3_column_int64(st, 0);
		parts[np++] = sd_xstrdup((const char *)sqlite3_column_text(st, 1));
		sqlite3_reset(st);
		x = up;
	}
	sd_buf_reset(out);
	if (r == 0) {
		int64_t root = 0;
		sqlite3_stmt *st = sd_db_stmt(d, &q_user_root);
		sqlite3_bind_int64(st, 1, uid);
		if (sqlite3_step(st) == SQLITE_ROW)
			root = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		*own = x == root;
		if (!*own) {
			st = sd_db_stmt(d, &q_share_at);
			sqlite3_bind_int64(st, 1, x);
			if (sqlite3_step(st) == SQLITE_ROW)
				sd_buf_printf(out, "/%s", (const char *)sqlite3_column_text(st, 0));
			else
				r = -ENOENT;
			sqlite3_reset(st);
		}
	}
	for (int i = np - 1; i >= 0; i--) {
		if (r == 0) {
			sd_buf_puts(out, "/");
			sd_buf_puts(out, parts[i]);
		}
		free(parts[i]);
	}
	if (r == 0 && out->len == 0)
		sd_buf_puts(out, "/");
	return r;
}

/* The rights a link of mode on a node of kind needs from its maker (L3). */
static unsigned link_need(int mode, int kind)
{
	if (mode == SD_LINK_UPLOAD)
		return SD_RIGHT_WRITE;
	return kind == SD_KIND_DIR ? SD_RIGHT_LIST | SD_RIGHT_READ : SD_RIGHT_READ;
}

/* ------------------------------------------------------------ rows */

#define LINK_COLS                                                                              \
	"l.id, u.name, l.node, l.path, l.mode, l.pwhash IS NOT NULL, l.created, l.expires, "    \
	"l.max_downloads, l.downloads, l.revoked, n.kind, n.deleted_at IS NOT NULL, l.user, " \
	"l.hash, l.pwhash"

SD_SQL(q_link_insert, "INSERT INTO links(hash, user, node, path, mode, pwhash, expires, "
		      "max_downloads, downloads, created, revoked) "
		      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
SD_SQL(q_link_by_hash, "SELECT " LINK_COLS " FROM links l JOIN users u ON u.id = l.user "
		       "JOIN nodes n ON n.id = l.node WHERE l.hash = ?1");
SD_SQL(q_link_by_id, "SELECT " LINK_COLS " FROM links l JOIN users u ON u.id = l.user "
		     "JOIN nodes n ON n.id = l.node WHERE l.id = ?1");
SD_SQL(q_links, "SELECT " LINK_COLS " FROM links l JOIN users u ON u.id = l.user "
		"JOIN nodes n ON n.id = l.node WHERE ?1 IS NULL OR u.name = ?1 ORDER BY l.id DESC");

typedef struct lrow {
	sd_link_info info;
	int64_t node, uid;
	unsigned char hash[32];
	char pwhash[SD_PWHASH_MAX];
	int64_t expires_ms, created_ms;
} lrow;

static void read_row(sqlite3_stmt *st, lrow *x)
{
	memset(x, 0, sizeof *x);
	sd_link_info *l = &x->info;
	l->id = sqlite3_column_int64(st, 0);
	snprintf(l->user, sizeof l->user, "%s", (const char *)sqlite3_column_text(st, 1));
	x->node = sqlite3_column_int64(st, 2);
	snprintf(l->path, sizeof l->path, "%s", (const char *)sqlite3_column_text(st, 3));
	l->mode = sqlite3_column_int(st, 4);
	l->password = sqlite3_column_int(st, 5);
	x->created_ms = sqlite3_column_int64(st, 6);
	x->expires_ms = sqlite3_column_int64(st, 7);
	l->created = x->created_ms / 1000;
	l->expires = (x->expires_ms + 999) / 1000;
	l->max_downloads = sqlite3_column_int64(st, 8);
	l->downloads = sqlite3_column_int64(st, 9);
	l->revoked = sqlite3_column_int(st, 10);
	l->kind = sqlite3_column_int(st, 11);
	l->gone = sqlite3_column_int(st, 12);
	x->uid = sqlite3_column_int64(st, 13);
	if (sqlite3_column_bytes(st, 14) == 32)
		memcpy(x->hash, sqlite3_column_blob(st, 14), 32);
	const unsigned char *pw = sqlite3_column_text(st, 15);
	snprintf(x->pwhash, sizeof x->pwhash, "%s", pw ? (const char *)pw : "");
}

/* The row with this hash (or id, hash NULL) in d: 0 or -ENOENT. */
static int row_get(sd_dbc *d, const unsigned char *hash, int64_t id, lrow *x)
{
	sqlite3_stmt *st = sd_db_stmt(d, hash ? &q_link_by_hash : &q_link_by_id);
	if (hash)
		sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
	else
		sqlite3_bind_int64(st, 1, id);
	int r = -ENOENT;
	if (sqlite3_step(st) == SQLITE_ROW) {
		read_row(st, x);
		r = 0;
	}
	sqlite3_reset(st);
	return r;
}

/* Usable now (L2), apart from the maker's rights: 0 or -ENOENT. */
static int row_usable(sd_core *c, const lrow *x)
{
	if (x->info.revoked || x->info.gone)
		return -ENOENT;
	if (x->expires_ms && x->expires_ms <= sd__now_ms(c))
		return -ENOENT;
	if (x->info.max_downloads && x->info.downloads >= x->info.max_downloads)
		return -ENOENT;
	return 0;
}

static void hash_hex(const unsigned char h[32], char out[65])
{
	sd_hex(h, 32, out);
}

/* ------------------------------------------------------------ making */

/* Insert a link row for u on node n (view path np) and journal it, in d. */
static int insert(sd_core *c, sd_dbc *d, const sd_principal *u, const sd_node *n, const char *np,
		  const unsigned char hash[32], int mode, const char *pwhash, int64_t expires_ms,
		  int64_t max_dl, int64_t downloads, int64_t created, int revoked, int64_t *id)
{
	sqlite3_stmt *st = sd_db_stmt(d, &q_link_insert);
	sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, u->id);
	sqlite3_bind_int64(st, 3, n->id);
	sqlite3_bind_text(st, 4, np, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 5, mode);
	if (pwhash && *pwhash)
		sqlite3_bind_text(st, 6, pwhash, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 6);
	sqlite3_bind_int64(st, 7, expires_ms);
	sqlite3_bind_int64(st, 8, max_dl);
	sqlite3_bind_int64(st, 9, downloads);
	sqlite3_bind_int64(st, 10, created);
	sqlite3_bind_int(st, 11, revoked);
	int r = sd_db_exec_stmt(st);
	if (r == 0 && id)
		*id = sqlite3_last_insert_rowid(sd_db_handle(d));
	if (r == 0) {
		char hx[65];
		hash_hex(hash, hx);
		sd_buf args = SD_BUF_INIT, det = SD_BUF_INIT;
		sd__jargs_str(&args, "hash", hx);
		sd__jargs_int(&args, "mode", mode);
		sd__jargs_int(&args, "expires", expires_ms);
		sd__jargs_int(&args, "max_downloads", max_dl);
		sd__jargs_int(&args, "password", pwhash && *pwhash);
		sd_buf_printf(&det, "mode=%s%s%s", mode == SD_LINK_UPLOAD ? "upload" : "read",
			      pwhash && *pwhash ? " password=1" : "", revoked ? " revoked=1" : "");
		if (expires_ms)
			sd_buf_printf(&det, " expires=%lld", (long long)(expires_ms / 1000));
		if (max_dl)
			sd_buf_printf(&det, " max_downloads=%lld", (long long)max_dl);
		r = sd__journal_args(d, sd__now_ms(c), u->name, "link_create", np, det.data, &args);
		sd_buf_free(&det);
	}
	return r;
}

/* The target of a new link: the node at np in u's view with the rights
 * the link needs (L3); check_share: also the share right. */
static int target(sd_core *c, sd_dbc *d, const sd_principal *u, const char *np, int mode,
		  int check_share, sd_node *n)
{
	int r = sd__tree_lookup(c, d, u, np, n);
	if (r == 0 && !n->vis)
		r = -ENOENT;
	if (r == 0 && mode == SD_LINK_UPLOAD && n->kind != SD_KIND_DIR)
		r = -ENOTDIR;
	if (r == 0 && check_share && !(n->rights & SD_RIGHT_SHARE))
		r = -EACCES;
	unsigned need = link_need(mode, n->kind);
	if (r == 0 && (n->rights & need) != need)
		r = -EACCES;
	return r;
}

int sd__link_create(sd_core *c, const sd_principal *u, const char *np, const sd_link_opts *o,
		    int check_share, char token[SD_LINK_TOKEN_MAX], sd_link_info *out)
{
	int r = sd__check_writable(u);
	if (r < 0)
		return r;
	sd_link_opts none = {0};
	if (!o)
		o = &none;
	int mode = o->mode ? o->mode : SD_LINK_READ;
	if ((mode != SD_LINK_READ && mode != SD_LINK_UPLOAD) || o->expires < 0 ||
	    o->expires > 100LL * 366 * 86400 || o->max_downloads < 0 || !token)
		return -EINVAL;
	char pwhash[SD_PWHASH_MAX] = "";
	if (o->password && *o->password) {
		if (strlen(o->password) > 1024)
			return -EINVAL;
		if ((r = sd__password_hash(o->password, pwhash)) < 0)
			return r;
	}
	unsigned char rnd[TOKEN_BYTES], hash[32];
	if ((r = sd_random_bytes(rnd, sizeof rnd)) < 0) /* L1: never a weaker source */
		return r;
	sodium_bin2base64(token, SD_LINK_TOKEN_MAX, rnd, sizeof rnd,
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(rnd, sizeof rnd);
	token_hash(token, hash);
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	int64_t now = sd__now_ms(c), id = 0;
	/* from the start of the current second: a front end turns a date into
	 * seconds from now (whole seconds), so the date comes back exactly */
	int64_t exp = o->expires ? (now / 1000 + o->expires) * 1000 : 0;
	sd_node n;
	r = target(c, d, u, np, mode, check_share, &n);
	if (r == 0)
		r = insert(c, d, u, &n, np, hash, mode, pwhash, exp, o->max_downloads, 0, now, 0, &id);
	int cr = sd_db_write_end(c->db, d, r == 0);
	sodium_memzero(pwhash, sizeof pwhash);
	r = r ? r : cr;
	if (r < 0) {
		sodium_memzero(token, SD_LINK_TOKEN_MAX);
		return r;
	}
	sd_log(SD_LOG_INFO, "link", "event=link_create user=%s id=%lld path=\"%s\" mode=%s",
	       u->name, (long long)id, np, mode == SD_LINK_UPLOAD ? "upload" : "read");
	if (out) {
		memset(out, 0, sizeof *out);
		out->id = id;
		snprintf(out->user, sizeof out->user, "%s", u->name);
		snprintf(out->path, sizeof out->path, "%s", np);
		out->kind = n.kind;
		out->mode = mode;
		out->password = pwhash[0] != 0 || (o->password && *o->password);
		out->created = now / 1000;
		out->expires = (exp + 999) / 1000;
		out->max_downloads = o->max_downloads;
	}
	return 0;
}

int sd__link_list(sd_core *c, const char *name, sd_link_cb cb, void *arg)
{
	lrow *v = NULL;
	int n = 0, cap = 0;
	sd_dbc *d = sd_db_read_begin(c->db);
	sqlite3_stmt *st = sd_db_stmt(d, &q_links);
	if (name)
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			v = sd_xrealloc(v, (size_t)cap * sizeof *v);
		}
		read_row(st, &v[n++]);
	}
	sqlite3_reset(st);
	/* where the target is now (it may have moved since) */
	sd_buf p = SD_BUF_INIT;
	for (int i = 0; i < n; i++) {
		int own;
		if (!v[i].info.gone && view_path(d, v[i].uid, v[i].node, &p, &own) == 0)
			snprintf(v[i].info.path, sizeof v[i].info.path, "%s", p.data);
	}
	sd_buf_free(&p);
	sd_db_read_end(c->db, d);
	int delivered = 0;
	for (int i = 0; i < n; i++) {
		delivered++;
		if (cb && cb(arg, &v[i].info))
			break;
	}
	free(v);
	return delivered;
}

SD_SQL(q_link_revoke, "UPDATE links SET revoked = 1 WHERE id = ?1");

static int revoke_row(sd_core *c, sd_dbc *d, const lrow *x)
{
	int r = 0;
	if (!x->info.revoked) {
		sqlite3_stmt *st = sd_db_stmt(d, &q_link_revoke);
		sqlite3_bind_int64(st, 1, x->info.id);
		r = sd_db_exec_stmt(st);
	}
	if (r == 0) {
		char hx[65], det[48];
		hash_hex(x->hash, hx);
		snprintf(det, sizeof det, "id=%lld", (long long)x->info.id);
		sd_buf args = SD_BUF_INIT;
		sd__jargs_str(&args, "hash", hx);
		r = sd__journal_args(d, sd__now_ms(c), x->info.user, "link_revoke", x->info.path, det,
				     &args);
	}
	return r;
}

int sd__link_revoke(sd_core *c, int64_t uid, int64_t id)
{
	if (id <= 0)
		return -ENOENT;
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	lrow x;
	int r = row_get(d, NULL, id, &x);
	if (r == 0 && uid && x.uid != uid)
		r = -ENOENT; /* another user's link: as if there were none */
	if (r == 0)
		r = revoke_row(c, d, &x);
	int cr = sd_db_write_end(c->db, d, r == 0);
	return r ? r : cr;
}

/* ------------------------------------------------------------ serving */

/* Open link x for use: the maker's principal and view path, with the
 * rights checked (L3). 0 or -ENOENT. */
static int link_bind(sd_core *c, const lrow *x, const char *addr, sd_link *l)
{
	sd_user mk;
	int r = sd__user_get_id(c, x->uid, &mk);
	if (r < 0 || (mk.flags & SD_USER_DISABLED) || mk.name[0] == '~')
		return -ENOENT;
	memset(l, 0, sizeof *l);
	l->c = c;
	l->id = x->info.id;
	memcpy(l->hash, x->hash, 32);
	l->info = x->info;
	sd__principal_set_user(&l->u, &mk);
	l->u.flags &= ~SD_USER_ADMIN;
	snprintf(l->u.proto, sizeof l->u.proto, "link");
	snprintf(l->u.addr, sizeof l->u.addr, "%s", addr ? addr : "");
	sd_dbc *d = sd_db_read_begin(c->db);
	sd_buf p = SD_BUF_INIT;
	int own = 0;
	r = view_path(d, x->uid, x->node, &p, &own);
	if (r == 0) {
		snprintf(l->base, sizeof l->base, "%s", p.data);
		snprintf(l->info.path, sizeof l->info.path, "%s", p.data);
		if (own)
			l->u.flags |= SD_P_OWN_TREE; /* L3: no shared folder through it */
		sd_node n;
		r = sd__tree_lookup(c, d, &l->u, l->base, &n);
		unsigned need = link_need(x->info.mode, x->info.kind);
		if (r == 0 && (n.id != x->node || (n.rights & need) != need))
			r = -ENOENT;
	}
	sd_buf_free(&p);
	sd_db_read_end(c->db, d);
	if (x->info.mode == SD_LINK_READ)
		l->u.flags |= SD_USER_READONLY;
	return r < 0 ? -ENOENT : 0;
}

int sd__link_open(sd_core *c, const char *token, const char *password, const char *addr,
		  sd_link **out, sd_link_info *info)
{
	if (sd__auth_allowed(c, addr) < 0)
		return -SD_EBLOCKED;
	lrow x;
	int r = -ENOENT;
	if (token_ok(token)) {
		unsigned char h[32];
		token_hash(token, h);
		sd_dbc *d = sd_db_read_begin(c->db);
		r = row_get(d, h, 0, &x);
		sd_db_read_end(c->db, d);
		if (r == 0)
			r = row_usable(c, &x);
	}
	if (r < 0) { /* L2: one answer for every reason, and a failure counted */
		r = sd__auth_fail(c, NULL, addr, "bad_link");
		return r == -SD_EBLOCKED ? r : -ENOENT;
	}
	if (x.pwhash[0]) {
		if (!password || !*password)
			return -EACCES; /* asked, not yet given: not a failure */
		if (strlen(password) > 1024 || !sd__password_check(c, -x.info.id, x.pwhash, password)) {
			r = sd__auth_fail(c, NULL, addr, "bad_link_password");
			return r == -SD_EBLOCKED ? r : -EACCES;
		}
	}
	sd_link *l = sd_xcalloc(1, sizeof *l);
	if ((r = link_bind(c, &x, addr, l)) < 0) {
		free(l);
		return r;
	}
	if (info)
		*info = l->info;
	*out = l;
	return 0;
}

void sd__link_close(sd_link *l)
{
	free(l);
}

/* base + the resolved path below it (L4) into full. */
static int full_path(const sd_link *l, const char *path, char full[SD_PATH_MAX + 1])
{
	char rel[SD_PATH_MAX + 1];
	int r = sd__path_norm(path ? path : "/", rel, sizeof rel);
	if (r < 0)
		return r;
	int n = strcmp(rel, "/") == 0 ? snprintf(full, SD_PATH_MAX + 1, "%s", l->base)
				       : snprintf(full, SD_PATH_MAX + 1, "%s%s",
						  strcmp(l->base, "/") == 0 ? "" : l->base, rel);
	return n < 0 || n > SD_PATH_MAX ? -ENAMETOOLONG : 0;
}

int sd__link_stat(sd_link *l, const char *path, sd_stat *st)
{
	if (l->info.mode != SD_LINK_READ)
		return -EACCES;
	char full[SD_PATH_MAX + 1];
	int r = full_path(l, path, full);
	return r < 0 ? r : sd__tree_stat(l->c, &l->u, full, st);
}

int sd__link_readdir(sd_link *l, const char *path, const char *after, int limit,
		     sd_readdir_cb cb, void *arg, int *more)
{
	if (l->info.mode != SD_LINK_READ)
		return -EACCES;
	char full[SD_PATH_MAX + 1];
	int r = full_path(l, path, full);
	return r < 0 ? r : sd__tree_readdir(l->c, &l->u, full, after, limit, cb, arg, more);
}

int sd__link_open_read(sd_link *l, const char *path, sd_reader **out, sd_stat *st)
{
	if (l->info.mode != SD_LINK_READ)
		return -EACCES;
	char full[SD_PATH_MAX + 1];
	int r = full_path(l, path, full);
	return r < 0 ? r : sd__reader_open(l->c, &l->u, full, SD_RIGHT_READ, out, st);
}

SD_SQL(q_link_count, "UPDATE links SET downloads = downloads + 1 WHERE id = ?1 AND revoked = 0 "
		     "AND (max_downloads = 0 OR downloads < max_downloads)");

static const char *use_op(int what)
{
	return what == SD_LINK_USE_GET ? "link_get" : what == SD_LINK_USE_ZIP ? "link_zip" : "link_list";
}

/* Count (GET, ZIP) and journal one use of link id in d (L5). */
static int use_row(sd_core *c, sd_dbc *d, int64_t id, const unsigned char hash[32], int what,
		   const char *user, const char *path, const char *addr)
{
	int r = 0;
	if (what == SD_LINK_USE_GET || what == SD_LINK_USE_ZIP) {
		sqlite3_stmt *st = sd_db_stmt(d, &q_link_count);
		sqlite3_bind_int64(st, 1, id);
		r = sd_db_exec_stmt(st);
		if (r == 0 && sqlite3_changes(sd_db_handle(d)) == 0)
			r = -ENOENT; /* used up, or revoked meanwhile */
	}
	if (r == 0) {
		char hx[65];
		hash_hex(hash, hx);
		sd_buf args = SD_BUF_INIT, det = SD_BUF_INIT;
		sd__jargs_str(&args, "hash", hx);
		sd_buf_printf(&det, "link=%lld", (long long)id);
		if (addr && *addr)
			sd_buf_printf(&det, " addr=%s", addr);
		r = sd__journal_args(d, sd__now_ms(c), user, use_op(what), path, det.data, &args);
		sd_buf_free(&det);
	}
	return r;
}

int sd__link_use(sd_link *l, int what, const char *path)
{
	if (what != SD_LINK_USE_GET && what != SD_LINK_USE_ZIP && what != SD_LINK_USE_LIST)
		return -EINVAL;
	if (l->info.mode != SD_LINK_READ)
		return -EACCES;
	char full[SD_PATH_MAX + 1];
	int r = full_path(l, path, full);
	if (r < 0)
		return r;
	sd_core *c = l->c;
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	lrow x;
	r = row_get(d, l->hash, 0, &x);
	if (r == 0)
		r = row_usable(c, &x);
	if (r == 0)
		r = use_row(c, d, l->id, l->hash, what, l->u.name, full, l->u.addr);
	int cr = sd_db_write_end(c->db, d, r == 0);
	return r ? r : cr;
}

int sd__link_upload_begin(sd_link *l, const char *name, sd_upload **out)
{
	if (l->info.mode != SD_LINK_UPLOAD)
		return -EACCES;
	if (!name || !*name || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return -EINVAL;
	char one[SD_PATH_MAX + 1], full[SD_PATH_MAX + 1];
	int r = snprintf(one, sizeof one, "/%s", name) >= (int)sizeof one ? -ENAMETOOLONG : 0;
	if (r == 0 && (r = full_path(l, one, full)) == 0 && strlen(full) <= strlen(l->base))
		r = -EINVAL;
	if (r < 0)
		return r;
	sd_cred cred = {.uid = l->u.id, .method = SD_METHOD_LINK};
	/* L6: a new file only */
	return sd__upload_begin(l->c, &l->u, &cred, full, SD_UP_EXCL, 0, 0644, out);
}

/* ------------------------------------------------------------ replication */

int sd__link_get(sd_core *c, const unsigned char hash[32], sd_linkrow *out)
{
	sd_dbc *d = sd_db_read_begin(c->db);
	lrow x;
	int r = row_get(d, hash, 0, &x);
	sd_db_read_end(c->db, d);
	if (r < 0)
		return r;
	memset(out, 0, sizeof *out);
	out->id = x.info.id;
	snprintf(out->user, sizeof out->user, "%s", x.info.user);
	out->mode = x.info.mode;
	out->revoked = x.info.revoked;
	snprintf(out->pwhash, sizeof out->pwhash, "%s", x.pwhash);
	out->expires = x.expires_ms;
	out->max_downloads = x.info.max_downloads;
	out->downloads = x.info.downloads;
	out->created = x.created_ms;
	return 0;
}

int sd__link_import(sd_core *c, const sd_principal *u, const char *np,
		    const unsigned char hash[32], const sd_linkrow *row)
{
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	lrow x;
	int r = row_get(d, hash, 0, &x) == 0 ? -EEXIST : 0;
	sd_node n;
	if (r == 0)
		r = target(c, d, u, np, row->mode, 0, &n);
	/* the copy starts at zero downloads: the uses that follow in the
	 * journal count them, as they did on the source */
	if (r == 0)
		r = insert(c, d, u, &n, np, hash, row->mode, row->pwhash, row->expires,
			   row->max_downloads, 0, row->created, 0, NULL);
	int cr = sd_db_write_end(c->db, d, r == 0);
	return r ? r : cr;
}

int sd__link_revoke_hash(sd_core *c, const unsigned char hash[32])
{
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	lrow x;
	int r = row_get(d, hash, 0, &x);
	if (r == 0)
		r = revoke_row(c, d, &x);
	int cr = sd_db_write_end(c->db, d, r == 0);
	return r ? r : cr;
}

int sd__link_count_hash(sd_core *c, const unsigned char hash[32], int what, const char *user,
			const char *path)
{
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	lrow x;
	int r = row_get(d, hash, 0, &x);
	if (r == 0)
		r = use_row(c, d, x.info.id, hash, what, user, path, NULL);
	int cr = sd_db_write_end(c->db, d, r == 0);
	return r ? r : cr;
}
