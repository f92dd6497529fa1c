/*
 * auth.c - users, public keys, API tokens and login throttling.
 *
 * "Dynamic validation" (seed 000): every login reads the database; nothing
 * about a user is cached, so disabling a user, revoking a token or changing
 * a password takes effect at the next login with no restart.
 *
 * Passwords: Argon2id strings (crypto_pwhash_str, interactive limits, about
 * 64 MiB and 0.1 s per verification); at most auth_max_concurrent
 * verifications run at once so a login storm cannot exhaust memory. An
 * unknown user costs a verification against a dummy hash too, so timing
 * does not reveal which names exist.
 *
 * A successful verification is remembered (PWCACHE slots, PWCACHE_TTL) as a
 * keyed BLAKE2b of (user id, the stored Argon2id string, the password),
 * under a random key made at start. The user's row is still read on every
 * login, and a hit needs the stored string to be the same as when it was
 * verified: a changed password misses, a disabled user is refused. So the
 * cache changes only the cost of a repeated login (HTTP Basic sends the
 * password with every request), never its outcome.
 *
 * Tokens: "sdt_" + 43 base64url characters (32 random bytes). Only the
 * SHA-256 of the whole token is stored; a token is high-entropy, so a fast
 * hash suffices and lookups are by an index. Scope rw or ro (ro logins get
 * SD_USER_READONLY and every mutation returns -EROFS), optional expiry.
 *
 * Throttling: a fixed table of client addresses with their recent
 * failures. Each failure sleeps auth_fail_delay; auth_max_failures failures
 * within auth_block_time lock the address out for auth_block_time
 * (-SD_EBLOCKED). A success clears the address's count.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "log.h"
#include "util.h"

#define AUTH_SLOTS 1024
#define PWCACHE 1024
#define PWCACHE_TTL (10 * 60 * 1000)

typedef struct pwcache_ent {
	unsigned char key[32];
	int64_t expires;
} pwcache_ent;

static pwcache_ent pwcache[PWCACHE];
static unsigned char pwcache_secret[crypto_generichash_KEYBYTES];
static pthread_mutex_t pwcache_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t pwcache_once = PTHREAD_ONCE_INIT;

static void pwcache_init(void)
{
	randombytes_buf(pwcache_secret, sizeof pwcache_secret);
}

static void pwcache_key(int64_t uid, const char *hash, const char *pw, unsigned char out[32])
{
	pthread_once(&pwcache_once, pwcache_init);
	crypto_generichash_state st;
	crypto_generichash_init(&st, pwcache_secret, sizeof pwcache_secret, 32);
	crypto_generichash_update(&st, (const unsigned char *)&uid, sizeof uid);
	crypto_generichash_update(&st, (const unsigned char *)hash, strlen(hash) + 1);
	crypto_generichash_update(&st, (const unsigned char *)pw, strlen(pw));
	crypto_generichash_final(&st, out, 32);
}

/* 1 if this (user, stored hash, password) verified recently. */
static int pwcache_hit(const unsigned char key[32], int64_t now)
{
	int hit = 0;
	pthread_mutex_lock(&pwcache_lock);
	for (int i = 0; i < PWCACHE && !hit; i++)
		hit = pwcache[i].expires > now && sodium_memcmp(pwcache[i].key, key, 32) == 0;
	pthread_mutex_unlock(&pwcache_lock);
	return hit;
}

static void pwcache_add(const unsigned char key[32], int64_t now)
{
	pthread_mutex_lock(&pwcache_lock);
	int slot = 0;
	for (int i = 0; i < PWCACHE; i++) {
		if (pwcache[i].expires <= now) {
			slot = i;
			break;
		}
		if (pwcache[i].expires < pwcache[slot].expires)
			slot = i;
	}
	memcpy(pwcache[slot].key, key, 32);
	pwcache[slot].expires = now + PWCACHE_TTL;
	pthread_mutex_unlock(&pwcache_lock);
}
#define TOKEN_PREFIX "sdt_"
/* A deleted user's row is renamed "~deleted-<id>" until the cleaner has
 * purged its files (see user_delete below); '~' is never in a user name. */
#define DELETED_MARK '~'

struct sd_authfail {
	char addr[64];
	int failures;
	int64_t first_ms;
	int64_t blocked_until;
	int64_t last_ms;
};

int sd__auth_init(sd_core *c)
{
	if (sodium_init() < 0)
		return -EIO;
	c->fails = sd_xcalloc(AUTH_SLOTS, sizeof *c->fails);
	pthread_mutex_init(&c->auth_lock, NULL);
	pthread_cond_init(&c->auth_cond, NULL);
	return 0;
}

void sd__auth_free(sd_core *c)
{
	free(c->fails);
	c->fails = NULL;
	pthread_mutex_destroy(&c->auth_lock);
	pthread_cond_destroy(&c->auth_cond);
}

/* Slot for addr (existing, else the least recently used). Lock held. */
static sd_authfail *slot_for(sd_core *c, const char *addr, int create)
{
	sd_authfail *lru = &c->fails[0];
	for (int i = 0; i < AUTH_SLOTS; i++) {
		sd_authfail *f = &c->fails[i];
		if (f->addr[0] && strcmp(f->addr, addr) == 0)
			return f;
		if (f->last_ms < lru->last_ms)
			lru = f;
	}
	if (!create)
		return NULL;
	memset(lru, 0, sizeof *lru);
	snprintf(lru->addr, sizeof lru->addr, "%s", addr);
	return lru;
}

int sd__auth_allowed(sd_core *c, const char *addr)
{
	if (!addr || !*addr)
		return 0;
	int64_t now = sd__now_ms(c);
	pthread_mutex_lock(&c->auth_lock);
	sd_authfail *f = slot_for(c, addr, 0);
	int r = (f && f->blocked_until > now) ? -SD_EBLOCKED : 0;
	pthread_mutex_unlock(&c->auth_lock);
	return r;
}

/* Record a failed login: count, maybe block, journal, then delay. */
static int auth_failed(sd_core *c, const char *user, const char *addr, const char *proto,
		       const char *why)
{
	const sd_conf *conf = c->conf;
	int64_t now = sd__now_ms(c);
	int blocked = 0;
	if (addr && *addr) {
		pthread_mutex_lock(&c->auth_lock);
		sd_authfail *f = slot_for(c, addr, 1);
		if (now - f->first_ms > conf->auth_block_time) {
			f->failures = 0;
			f->first_ms = now;
		}
		f->failures++;
		f->last_ms = now;
		if (f->failures >= conf->auth_max_failures) {
			f->blocked_until = now + conf->auth_block_time;
			f->failures = 0;
			f->first_ms = now;
			blocked = 1;
		}
		pthread_mutex_unlock(&c->auth_lock);
	}
	char detail[160];
	snprintf(detail, sizeof detail, "addr=%s reason=%s%s", addr ? addr : "-", why,
		 blocked ? " blocked=1" : "");
	/* the user name is the client's: quoted, so it cannot forge an addr=
	 * for a log watcher such as fail2ban (docs/logs.md) */
	char qu[2 * 256 + 1];
	sd_kv_quote(user ? user : "", qu, sizeof qu);
	sd_log(SD_LOG_WARN, "auth", "event=login_failed user=\"%s\" addr=%s proto=%s reason=%s%s",
	       qu, addr ? addr : "-", proto ? proto : "-", why, blocked ? " blocked=1" : "");
	sd__event_login(c, SD_EV_LOGIN_FAILED, 0, user, proto, addr, NULL, why);
	if (sd__journal_alone(c, user, "login_failed", detail) < 0)
		sd_log(SD_LOG_ERROR, "auth", "event=journal_failed op=login_failed");
	sd__metric_add(c, "storaged_login_failures_total", NULL, 1);
	sd_sleep_ms(conf->auth_fail_delay);
	return blocked ? -SD_EBLOCKED : -SD_EAUTH;
}

int sd__auth_fail(sd_core *c, const char *user, const char *addr, const char *why)
{
	return auth_failed(c, user, addr, "http", why); /* share links are served over HTTP only */
}

static void auth_succeeded(sd_core *c, const char *addr)
{
	if (!addr || !*addr)
		return;
	pthread_mutex_lock(&c->auth_lock);
	sd_authfail *f = slot_for(c, addr, 0);
	if (f && f->blocked_until <= sd__now_ms(c))
		memset(f, 0, sizeof *f);
	pthread_mutex_unlock(&c->auth_lock);
}

SD_SQL(q_user_by_name, "SELECT id, name, admin, disabled, quota_bytes, used_bytes, pwhash "
		       "FROM users WHERE name = ?1");
SD_SQL(q_user_by_id, "SELECT id, name, admin, disabled, quota_bytes, used_bytes, pwhash "
		     "FROM users WHERE id = ?1");

/* Fill u from a q_user_by_* row; copy pwhash if wanted. */
static void read_user(sqlite3_stmt *st, sd_user *u, char *pwhash, size_t pwlen)
{
	memset(u, 0, sizeof *u);
	u->id = sqlite3_column_int64(st, 0);
	snprintf(u->name, sizeof u->name, "%s", (const char *)sqlite3_column_text(st, 1));
	if (sqlite3_column_int(st, 2))
		u->flags |= SD_USER_ADMIN;
	if (sqlite3_column_int(st, 3))
		u->flags |= SD_USER_DISABLED;
	u->quota = sqlite3_column_int64(st, 4);
	u->used = sqlite3_column_int64(st, 5);
	if (pwhash) {
		const unsigned char *h = sqlite3_column_text(st, 6);
		snprintf(pwhash, pwlen, "%s", h ? (const char *)h : "");
	}
}

static int get_user(sd_core *c, const char *name, int64_t id, sd_user *u, char *pwhash, size_t pwlen)
{
	if (name && name[0] == DELETED_MARK)
		return -ENOENT; /* the row of a deleted user is nobody's name */
	sd_dbc *d = sd_db_read_begin(c->db);
	sqlite3_stmt *st;
	if (name) {
		st = sd_db_stmt(d, &q_user_by_name);
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	} else {
		st = sd_db_stmt(d, &q_user_by_id);
		sqlite3_bind_int64(st, 1, id);
	}
	int r = -ENOENT;
	if (sqlite3_step(st) == SQLITE_ROW) {
		read_user(st, u, pwhash, pwlen);
		r = 0;
	}
	sqlite3_reset(st);
	sd_db_read_end(c->db, d);
	return r;
}

int sd__user_get(sd_core *c, const char *name, sd_user *out)
{
	return get_user(c, name, 0, out, NULL, 0);
}

int sd__user_get_id(sd_core *c, int64_t id, sd_user *out)
{
	return get_user(c, NULL, id, out, NULL, 0);
}

SD_SQL(q_token_state, "SELECT revoked, expires FROM tokens WHERE id = ?1 AND user = ?2");
SD_SQL(q_key_exists, "SELECT 1 FROM keys WHERE id = ?1 AND user = ?2");

int sd__auth_recheck(sd_core *c, int64_t uid, int method, int64_t cred_id,
		     const unsigned char pwtag[32], sd_user *fresh)
{
	char hash[crypto_pwhash_STRBYTES];
	int r = get_user(c, NULL, uid, fresh, hash, sizeof hash);
	if (r == -ENOENT || (r == 0 && fresh->name[0] == DELETED_MARK))
		return -SD_EAUTH; /* removed, or deleted and waiting for the cleaner */
	if (r < 0)
		return r;
	if (method == SD_METHOD_ADMIN)
		return 0; /* the admin tool acts as the data directory's owner */
	if (fresh->flags & SD_USER_DISABLED)
		return -SD_EAUTH;
	if (method == SD_METHOD_ANONYMOUS) {
		fresh->flags = (fresh->flags & ~SD_USER_ADMIN) | SD_USER_READONLY;
		return 0;
	}
	if (method == SD_METHOD_LINK)
		return 0; /* an upload through a link: its maker is still enabled */
	if (method == SD_METHOD_PASSWORD) {
		unsigned char now[32];
		sd__pwtag(hash, now);
		return sodium_memcmp(now, pwtag, 32) == 0 ? 0 : -SD_EAUTH;
	}
	sd_dbc *d = sd_db_read_begin(c->db);
	sqlite3_stmt *st = sd_db_stmt(d, method == SD_METHOD_TOKEN ? &q_token_state : &q_key_exists);
	sqlite3_bind_int64(st, 1, cred_id);
	sqlite3_bind_int64(st, 2, uid);
	r = -SD_EAUTH;
	if (sqlite3_step(st) == SQLITE_ROW) {
		if (method == SD_METHOD_KEY)
			r = 0;
		else if (!sqlite3_column_int(st, 0) &&
			 (sqlite3_column_int64(st, 1) == 0 || sqlite3_column_int64(st, 1) > sd__now_ms(c)))
			r = 0;
	}
	sqlite3_reset(st);
	sd_db_read_end(c->db, d);
	return r;
}

/* Argon2id verification, at most auth_max_concurrent at once. */
static int verify_password(sd_core *c, const char *hash, const char *pw)
{
	pthread_mutex_lock(&c->auth_lock);
	while (c->auth_active >= c->conf->auth_max_concurrent)
		pthread_cond_wait(&c->auth_cond, &c->auth_lock);
	c->auth_active++;
	pthread_mutex_unlock(&c->auth_lock);
	int ok = crypto_pwhash_str_verify(hash, pw, strlen(pw)) == 0;
	pthread_mutex_lock(&c->auth_lock);
	c->auth_active--;
	pthread_cond_signal(&c->auth_cond);
	pthread_mutex_unlock(&c->auth_lock);
	return ok;
}

static int hash_password(const char *pw, char out[crypto_pwhash_STRBYTES])
{
	if (crypto_pwhash_str(out, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
			      crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
		return -ENOMEM;
	return 0;
}

int sd__password_hash(const char *pw, char out[SD_PWHASH_MAX])
{
	return hash_password(pw, out);
}

int sd__password_check(sd_core *c, int64_t key, const char *hash, const char *pw)
{
	unsigned char ck[32];
	int64_t now = sd_mono_ms();
	pwcache_key(key, hash, pw, ck);
	if (pwcache_hit(ck, now))
		return 1;
	if (!verify_password(c, hash, pw))
		return 0;
	pwcache_add(ck, now);
	return 1;
}

/* A hash of a password nobody knows, to spend the same time on unknown
 * users as on known ones. */
static char dummy[crypto_pwhash_STRBYTES];
static void make_dummy(void)
{
	unsigned char r[16];
	char pw[33];
	randombytes_buf(r, sizeof r);
	sd_hex(r, sizeof r, pw);
	hash_password(pw, dummy);
}

static void token_hash(const char *token, unsigned char out[32])
{
	unsigned int len = 0;
	EVP_Digest(token, strlen(token), out, &len, EVP_sha256(), NULL);
}

SD_SQL(q_token_find, "SELECT t.user, t.readonly, t.expires, t.revoked, t.id FROM tokens t "
		     "WHERE t.hash = ?1");

/* Resolve a token to its user (and the token's id); checks revocation,
 * expiry, disabled. */
static int token_user(sd_core *c, const char *token, sd_user *out, int64_t *tid, const char **why)
{
	*why = "bad_token";
	if (strncmp(token, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) != 0 || strlen(token) > SD_TOKEN_MAX)
		return -SD_EAUTH;
	unsigned char h[32];
	token_hash(token, h);
	sd_dbc *d = sd_db_read_begin(c->db);
	sqlite3_stmt *st = sd_db_stmt(d, &q_token_find);
	sqlite3_bind_blob(st, 1, h, 32, SQLITE_STATIC);
	int r = -SD_EAUTH;
	int64_t uid = 0;
	int ro = 0;
	if (sqlite3_step(st) == SQLITE_ROW) {
		uid = sqlite3_column_int64(st, 0);
		ro = sqlite3_column_int(st, 1);
		int64_t exp = sqlite3_column_int64(st, 2);
		int revoked = sqlite3_column_int(st, 3);
		*tid = sqlite3_column_int64(st, 4);
		if (revoked)
			*why = "token_revoked";
		else if (exp && exp <= sd__now_ms(c))
			*why = "token_expired";
		else
			r = 0;
	}
	sqlite3_reset(st);
	sd_db_read_end(c->db, d);
	if (r < 0)
		return r;
	if ((r = sd__user_get_id(c, uid, out)) < 0) {
		*why = "no_user";
		return -SD_EAUTH;
	}
	if (out->flags & SD_USER_DISABLED) {
		*why = "disabled";
		return -SD_EAUTH;
	}
	if (ro)
		out->flags |= SD_USER_READONLY;
	return 0;
}

static const char *const method_names[] = {"admin", "password", "token", "publickey",
					   "anonymous"};

/* A login succeeded: clear the address's failures and make the session. */
static int login_ok(sd_core *c, const sd_user *u, int method, int64_t cred_id,
		    const unsigned char *pwtag, const char *addr, const char *proto, sd_session **out)
{
	auth_succeeded(c, addr);
	sd_log(SD_LOG_DEBUG, "auth", "event=login user=%s addr=%s proto=%s method=%s%s", u->name,
	       addr ? addr : "-", proto ? proto : "-", method_names[method],
	       (u->flags & SD_USER_READONLY) ? " readonly=1" : "");
	sd__event_login(c, SD_EV_LOGIN, u->id, u->name, proto, addr, method_names[method], NULL);
	return sd__session_new(c, u, method, cred_id, pwtag, addr, proto, out);
}

int sd__auth_password(sd_core *c, const char *user, const char *secret, const char *addr,
		      const char *proto, sd_session **out)
{
	if (sd__auth_allowed(c, addr) < 0)
		return -SD_EBLOCKED;
	if (!user || !secret)
		return auth_failed(c, user, addr, proto, "missing");
	if (strncmp(secret, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) == 0) {
		const char *why;
		sd_user u;
		int64_t tid = 0;
		if (token_user(c, secret, &u, &tid, &why) == 0 && strcmp(u.name, user) == 0)
			return login_ok(c, &u, SD_METHOD_TOKEN, tid, NULL, addr, proto, out);
		return auth_failed(c, user, addr, proto, why);
	}
	char hash[crypto_pwhash_STRBYTES];
	sd_user u;
	int r = get_user(c, user, 0, &u, hash, sizeof hash);
	if (r < 0 || !hash[0]) {
		static pthread_once_t once = PTHREAD_ONCE_INIT;
		pthread_once(&once, make_dummy);
		verify_password(c, dummy, secret);
		return auth_failed(c, user, addr, proto, r < 0 ? "no_user" : "no_password");
	}
	unsigned char ck[32];
	int64_t now = sd_mono_ms();
	pwcache_key(u.id, hash, secret, ck);
	if (!pwcache_hit(ck, now)) {
		if (!verify_password(c, hash, secret))
			return auth_failed(c, user, addr, proto, "bad_password");
		pwcache_add(ck, now);
	}
	if (u.flags & SD_USER_DISABLED)
		return auth_failed(c, user, addr, proto, "disabled");
	unsigned char tag[32];
	sd__pwtag(hash, tag);
	return login_ok(c, &u, SD_METHOD_PASSWORD, 0, tag, addr, proto, out);
}

int sd__auth_token(sd_core *c, const char *token, const char *addr, const char *proto,
		   sd_session **out)
{
	if (sd__auth_allowed(c, addr) < 0)
		return -SD_EBLOCKED;
	const char *why;
	sd_user u;
	int64_t tid = 0;
	if (!token || token_user(c, token, &u, &tid, &why) < 0)
		return auth_failed(c, NULL, addr, proto, token ? why : "missing");
	return login_ok(c, &u, SD_METHOD_TOKEN, tid, NULL, addr, proto, out);
}

int sd__auth_anonymous(sd_core *c, const char *user, const char *addr, const char *proto,
		       sd_session **out)
{
	sd_user u;
	if (!user || sd__user_get(c, user, &u) < 0 || (u.flags & SD_USER_DISABLED))
		return -SD_EAUTH;
	u.flags = (u.flags & ~SD_USER_ADMIN) | SD_USER_READONLY;
	return login_ok(c, &u, SD_METHOD_ANONYMOUS, 0, NULL, addr, proto, out);
}

SD_SQL(q_key_find, "SELECT id FROM keys WHERE user = ?1 AND type = ?2 AND b64 = ?3");

int sd__auth_pubkey(sd_core *c, const char *user, const char *type, const char *b64,
		    const char *addr, const char *proto, unsigned flags, sd_session **out)
{
	if (sd__auth_allowed(c, addr) < 0)
		return -SD_EBLOCKED;
	sd_user u;
	int r = sd__user_get(c, user, &u);
	int found = 0;
	int64_t kid = 0;
	if (r == 0) {
		sd_dbc *d = sd_db_read_begin(c->db);
		sqlite3_stmt *st = sd_db_stmt(d, &q_key_find);
		sqlite3_bind_int64(st, 1, u.id);
		sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, b64, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW) {
			found = 1;
			kid = sqlite3_column_int64(st, 0);
		}
		sqlite3_reset(st);
		sd_db_read_end(c->db, d);
	}
	if (found && !(u.flags & SD_USER_DISABLED)) {
		if (flags & SD_AUTH_PROBE)
			return 0;
		return login_ok(c, &u, SD_METHOD_KEY, kid, NULL, addr, proto, out);
	}
	if (flags & SD_AUTH_PROBE)
		return -SD_EAUTH;
	return auth_failed(c, user, addr, proto, !found ? "unknown_key" : "disabled");
}

/* ------------------------------------------------------------ admin */

static int valid_username(const char *n)
{
	size_t len = strlen(n);
	if (len == 0 || len > SD_USERNAME_MAX || n[0] == '.' || n[0] == '-')
		return 0;
	for (size_t i = 0; i < len; i++) {
		char ch = n[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '.' || ch == '_' || ch == '-' || ch == '@'))
			return 0;
	}
	return 1;
}

SD_SQL(q_user_insert, "INSERT INTO users(name, pwhash, quota_bytes, admin, created) "
		      "VALUES (?1, ?2, ?3, ?4, ?5)");
SD_SQL(q_root_insert, "INSERT INTO nodes(owner, parent, name, kind, size, mode, mtime, ctime) "
		      "VALUES (?1, NULL, '', 2, 0, 493, ?2, ?2)");
SD_SQL(q_user_set_root, "UPDATE users SET root = ?2 WHERE id = ?1");
SD_SQL(q_user_exists, "SELECT id FROM users WHERE name = ?1");

/* Insert user name with the stored password hash `hash` ("" = none), its
 * root and its journal row, in one transaction. */
static int user_insert(sd_core *c, const char *name, const char *hash, int64_t quota,
		       unsigned flags, int64_t *id)
{
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	int64_t now = sd__now_ms(c);
	sqlite3_stmt *st = sd_db_stmt(d, &q_user_exists);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int exists = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_reset(st);
	int r = exists ? -EEXIST : 0;
	int64_t uid = 0, root = 0;
	if (r == 0) {
		st = sd_db_stmt(d, &q_user_insert);
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		if (hash[0])
			sqlite3_bind_text(st, 2, hash, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 2);
		sqlite3_bind_int64(st, 3, quota);
		sqlite3_bind_int(st, 4, (flags & SD_USER_ADMIN) ? 1 : 0);
		sqlite3_bind_int64(st, 5, now);
		r = sd_db_exec_stmt(st);
		uid = sqlite3_last_insert_rowid(sd_db_handle(d));
	}
	if (r == 0) {
		st = sd_db_stmt(d, &q_root_insert);
		sqlite3_bind_int64(st, 1, uid);
		sqlite3_bind_int64(st, 2, now / 1000);
		r = sd_db_exec_stmt(st);
		root = sqlite3_last_insert_rowid(sd_db_handle(d));
	}
	if (r == 0) {
		st = sd_db_stmt(d, &q_user_set_root);
		sqlite3_bind_int64(st, 1, uid);
		sqlite3_bind_int64(st, 2, root);
		r = sd_db_exec_stmt(st);
	}
	if (r == 0) {
		sd_buf args = SD_BUF_INIT;
		sd__jargs_int(&args, "admin", (flags & SD_USER_ADMIN) ? 1 : 0);
		sd__jargs_int(&args, "quota", quota);
		r = sd__journal_args(d, now, name, "user_add", NULL,
				     (flags & SD_USER_ADMIN) ? "admin=1" : NULL, &args);
	}
	int cr = sd_db_write_end(c->db, d, r == 0);
	if (r == 0 && cr == 0 && id)
		*id = uid;
	return r ? r : cr;
}

int sd__user_add(sd_core *c, const char *name, const char *password, int64_t quota,
		 unsigned flags, int64_t *id)
{
	if (!name || !valid_username(name))
		return -EINVAL;
	if (quota < 0)
		return -EINVAL;
	char hash[crypto_pwhash_STRBYTES] = "";
	if (password && *password && hash_password(password, hash) < 0)
		return -ENOMEM;
	int r = user_insert(c, name, hash, quota, flags, id);
	sodium_memzero(hash, sizeof hash);
	return r;
}

int sd__user_add_hashed(sd_core *c, const char *name, const char *pwhash, int64_t quota,
			unsigned flags)
{
	if (!name || !valid_username(name) || quota < 0)
		return -EINVAL;
	return user_insert(c, name, pwhash ? pwhash : "", quota, flags, NULL);
}

SD_SQL(q_user_list, "SELECT id, name, admin, disabled, quota_bytes, used_bytes, NULL "
		    "FROM users WHERE substr(name, 1, 1) != '~' ORDER BY name");

int sd__user_list(sd_core *c, sd_user_cb cb, void *arg)
{
	/* Collect first: the callback may call back into the engine. */
	sd_user *us = NULL;
	size_t n = 0, cap = 0;
	sd_dbc *d = sd_db_read_begin(c->db);
	sqlite3_stmt *st = sd_db_stmt(d, &q_user_list);
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			us = sd_xrealloc(us, cap * sizeof *us);
		}
		read_user(st, &us[n++], NULL, 0);
	}
	sqlite3_reset(st);
	sd_db_read_end(c->db, d);
	int count = 0;
	for (size_t i = 0; i < n; i++) {
		count++;
		if (cb && cb(arg, &us[i]))
			break;
	}
	free(us);
	return count;
}

SD_SQL(q_set_pw, "UPDATE users SET pwhash = ?2 WHERE name = ?1");
SD_SQL(q_set_disabled, "UPDATE users SET disabled = ?2 WHERE name = ?1");
SD_SQL(q_set_quota, "UPDATE users SET quota_bytes = ?2 WHERE name = ?1");
SD_SQL(q_set_admin, "UPDATE users SET admin = ?2 WHERE name = ?1");

/* Run one UPDATE on a user by name; -ENOENT if no such user. akey: the
 * name under which the journal row's args carry ival (what a replay
 * needs), or NULL. */
static int user_update(sd_core *c, const char *name, sd_sql *q, int64_t ival, const char *sval,
		       const char *op, const char *detail, const char *akey)
{
	sd_buf args = SD_BUF_INIT;
	if (akey)
		sd__jargs_int(&args, akey, ival);
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d) {
		sd_buf_free(&args);
		return -EIO;
	}
	sqlite3_stmt *st = sd_db_stmt(d, q);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (sval)
		sqlite3_bind_text(st, 2, sval, -1, SQLITE_STATIC);
	else if (q == &q_set_pw)
		sqlite3_bind_null(st, 2);
	else
		sqlite3_bind_int64(st, 2, ival);
	int r = sd_db_exec_stmt(st);
	if (r == 0 && sqlite3_changes(sd_db_handle(d)) == 0)
		r = -ENOENT;
	if (r == 0)
		r = sd__journal_args(d, sd__now_ms(c), name, op, NULL, detail, &args);
	sd_buf_free(&args);
	int cr = sd_db_write_end(c->db, d, r == 0);
	if (r == 0 && cr == 0)
		atomic_fetch_add(&c->cred_gen, 1); /* sessions re-check at once */
	return r ? r : cr;
}

int sd__user_set_password(sd_core *c, const char *name, const char *password)
{
	if (!password || !*password)
		return -EINVAL;
	char hash[crypto_pwhash_STRBYTES];
	if (hash_password(password, hash) < 0)
		return -ENOMEM;
	int r = user_update(c, name, &q_set_pw, 0, hash, "passwd", NULL, NULL);
	sodium_memzero(hash, sizeof hash);
	return r;
}

int sd__user_set_disabled(sd_core *c, const char *name, int disabled)
{
	return user_update(c, name, &q_set_disabled, disabled ? 1 : 0, NULL,
			   disabled ? "user_disable" : "user_enable", NULL, NULL);
}

int sd__user_set_quota(sd_core *c, const char *name, int64_t quota)
{
	if (quota < 0)
		return -EINVAL;
	char det[40];
	snprintf(det, sizeof det, "quota=%lld", (long long)quota);
	return user_update(c, name, &q_set_quota, quota, NULL, "user_quota", det, "quota");
}

int sd__user_set_admin(sd_core *c, const char *name, int admin)
{
	return user_update(c, name, &q_set_admin, admin ? 1 : 0, NULL, "user_admin",
			   admin ? "admin=1" : "admin=0", "admin");
}

int sd__user_set_pwhash(sd_core *c, const char *name, const char *pwhash)
{
	return user_update(c, name, &q_set_pw, 0, pwhash && *pwhash ? pwhash : NULL, "passwd",
			   NULL, NULL);
}

SD_SQL(q_key_insert, "INSERT OR IGNORE INTO keys(user, type, b64, comment, created) "
		     "VALUES (?1, ?2, ?3, ?4, ?5)");

/* Insert one authorized_keys line for user (uid, name). -EINVAL for a line
 * that is not "type base64 [comment]" (options before the type are not
 * accepted), -EEXIST when the user has the key already. */
static int key_insert(sd_core *c, int64_t uid, const char *name, const char *line)
{
	char type[64], b64[8192], comment[256] = "";
	while (*line == ' ' || *line == '\t')
		line++;
	int n = sscanf(line, "%63s %8191s %255[^\n]", type, b64, comment);
	if (n < 2 || (strncmp(type, "ssh-", 4) != 0 && strncmp(type, "ecdsa-", 6) != 0 &&
		      strncmp(type, "sk-", 3) != 0))
		return -EINVAL;
	for (const char *p = b64; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		      *p == '+' || *p == '/' || *p == '='))
			return -EINVAL;
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	int64_t now = sd__now_ms(c);
	sqlite3_stmt *st = sd_db_stmt(d, &q_key_insert);
	sqlite3_bind_int64(st, 1, uid);
	sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, b64, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, comment, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, now);
	int r = sd_db_exec_stmt(st);
	if (r == 0 && sqlite3_changes(sd_db_handle(d)) == 0)
		r = -EEXIST; /* UNIQUE(user, type, b64): registered already */
	if (r == 0) {
		sd_buf args = SD_BUF_INIT, kl = SD_BUF_INIT;
		sd_buf_printf(&kl, "%s %s%s%s", type, b64, comment[0] ? " " : "", comment);
		sd__jargs_str(&args, "key", kl.data);
		sd_buf_free(&kl);
		r = sd__journal_args(d, now, name, "key_add", NULL, type, &args);
	}
	int cr = sd_db_write_end(c->db, d, r == 0);
	return r ? r : cr;
}

int sd__key_add(sd_core *c, const char *name, const char *line)
{
	sd_user u;
	int r = sd__user_get(c, name, &u);
	if (r < 0)
		return r;
	return key_insert(c, u.id, u.name, line);
}

SD_SQL(q_token_insert, "INSERT INTO tokens(user, hash, readonly, created, expires) "
		       "VALUES (?1, ?2, ?3, ?4, ?5)");

int sd__token_create(sd_core *c, const char *name, int scope, int64_t expires,
		     char out[SD_TOKEN_MAX], int64_t *id)
{
	if (expires < 0 || (scope != SD_SCOPE_RO && scope != SD_SCOPE_RW))
		return -EINVAL;
	sd_user u;
	int r = sd__user_get(c, name, &u);
	if (r < 0)
		return r;
	unsigned char rnd[32];
	randombytes_buf(rnd, sizeof rnd);
	char b64[64];
	sodium_bin2base64(b64, sizeof b64, rnd, sizeof rnd, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	snprintf(out, SD_TOKEN_MAX, "%s%s", TOKEN_PREFIX, b64);
	unsigned char h[32];
	token_hash(out, h);
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	int64_t now = sd__now_ms(c);
	sqlite3_stmt *st = sd_db_stmt(d, &q_token_insert);
	sqlite3_bind_int64(st, 1, u.id);
	sqlite3_bind_blob(st, 2, h, 32, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, scope == SD_SCOPE_RO);
	sqlite3_bind_int64(st, 4, now);
	sqlite3_bind_int64(st, 5, expires ? now + expires * 1000 : 0);
	r = sd_db_exec_stmt(st);
	int64_t tid = sqlite3_last_insert_rowid(sd_db_handle(d));
	if (r == 0) {
		sd_buf args = SD_BUF_INIT;
		sd__jargs_int(&args, "id", tid);
		r = sd__journal_args(d, now, name, "token_create", NULL,
				     scope == SD_SCOPE_RO ? "scope=ro" : "scope=rw", &args);
	}
	int cr = sd_db_write_end(c->db, d, r == 0);
	sodium_memzero(rnd, sizeof rnd);
	if (r == 0 && cr == 0 && id)
		*id = tid;
	if (r || cr)
		sodium_memzero(out, SD_TOKEN_MAX);
	return r ? r : cr;
}

SD_SQL(q_token_revoke, "UPDATE tokens SET revoked = 1 WHERE id = ?1");
SD_SQL(q_token_owner, "SELECT u.name FROM tokens t JOIN users u ON u.id = t.user WHERE t.id = ?1");

int sd__token_revoke(sd_core *c, int64_t id)
{
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	sqlite3_stmt *st = sd_db_stmt(d, &q_token_revoke);
	sqlite3_bind_int64(st, 1, id);
	int r = sd_db_exec_stmt(st);
	if (r == 0 && sqlite3_changes(sd_db_handle(d)) == 0)
		r = -ENOENT;
	char owner[SD_USERNAME_MAX + 1] = "";
	if (r == 0) {
		st = sd_db_stmt(d, &q_token_owner);
		sqlite3_bind_int64(st, 1, id);
		if (sqlite3_step(st) == SQLITE_ROW)
			snprintf(owner, sizeof owner, "%s", (const char *)sqlite3_column_text(st, 0));
		sqlite3_reset(st);
	}
	if (r == 0) {
		char det[32];
		snprintf(det, sizeof det, "id=%lld", (long long)id);
		sd_buf args = SD_BUF_INIT;
		sd__jargs_int(&args, "id", id);
		r = sd__journal_args(d, sd__now_ms(c), owner[0] ? owner : NULL, "token_revoke", NULL,
				     det, &args);
	}
	int cr = sd_db_write_end(c->db, d, r == 0);
	if (r == 0 && cr == 0)
		atomic_fetch_add(&c->cred_gen, 1); /* sessions re-check at once */
	return r ? r : cr;
}

SD_SQL(q_token_list, "SELECT t.id, u.name, t.readonly, t.created, t.expires, t.revoked "
		     "FROM tokens t JOIN users u ON u.id = t.user "
		     "WHERE ?1 IS NULL OR u.name = ?1 ORDER BY t.id");

int sd__token_list(sd_core *c, const char *name, sd_token_cb cb, void *arg)
{
	sd_token_info *ts = NULL;
	size_t n = 0, cap = 0;
	sd_dbc *d = sd_db_read_begin(c->db);
	sqlite3_stmt *st = sd_db_stmt(d, &q_token_list);
	if (name)
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			ts = sd_xrealloc(ts, cap * sizeof *ts);
		}
		sd_token_info *t = &ts[n++];
		memset(t, 0, sizeof *t);
		t->id = sqlite3_column_int64(st, 0);
		snprintf(t->user, sizeof t->user, "%s", (const char *)sqlite3_column_text(st, 1));
		t->readonly = sqlite3_column_int(st, 2);
		t->created = sqlite3_column_int64(st, 3) / 1000;
		t->expires = sqlite3_column_int64(st, 4) / 1000;
		t->revoked = sqlite3_column_int(st, 5);
	}
	sqlite3_reset(st);
	sd_db_read_end(c->db, d);
	int count = 0;
	for (size_t i = 0; i < n; i++) {
		count++;
		if (cb && cb(arg, &ts[i]))
			break;
	}
	free(ts);
	return count;
}

/* ------------------------------------------------------------ accounts
 *
 * Issue 11: the lockout's remaining time, deleting users, listing and
 * removing keys, and self-service (a session acting on its own user's
 * credentials).
 *
 * Deleting a user keeps the engine's delete path: every node of the user
 * is logically deleted in one transaction (the root too), so the cleaner
 * purges them after deleted_retention like any deleted tree, dropping
 * their versions and blob references. The user's keys and tokens go at
 * once. The users row stays (nodes.owner references it) under the name
 * "~deleted-<id>", disabled and without a password: no login, no lookup
 * by name and no listing can reach it, so the name is free at once and
 * every live session of the user fails its next re-check (disabled). The
 * cleaner removes the row once no node of it is left (sd__users_reap).
 */

int64_t sd__auth_blocked_for(sd_core *c, const char *addr)
{
	if (!addr || !*addr)
		return 0;
	int64_t now = sd__now_ms(c), left = 0;
	pthread_mutex_lock(&c->auth_lock);
	sd_authfail *f = slot_for(c, addr, 0);
	if (f && f->blocked_until > now)
		left = f->blocked_until - now;
	pthread_mutex_unlock(&c->auth_lock);
	return (left + 999) / 1000;
}

SD_SQL(q_del_user_id, "SELECT id FROM users WHERE name = ?1");
SD_SQL(q_del_nodes, "UPDATE nodes SET deleted_at = ?2 WHERE owner = ?1 AND deleted_at IS NULL");
/* their stays end with them (history.c H1) */
SD_SQL(q_del_places, "UPDATE placements SET t_to = max(t_from, ?2) WHERE owner = ?1 AND t_to IS NULL");
SD_SQL(q_del_keys, "DELETE FROM keys WHERE user = ?1");
SD_SQL(q_del_tokens, "DELETE FROM tokens WHERE user = ?1");
SD_SQL(q_del_rename, "UPDATE users SET name = '~deleted-' || id, pwhash = NULL, disabled = 1, "
		     "admin = 0, used_bytes = 0 WHERE id = ?1");

/* Run st (bound by the caller) and add the rows it changed to *n. */
static int exec_count(sd_dbc *d, sqlite3_stmt *st, int64_t *n)
{
	int r = sd_db_exec_stmt(st);
	if (r == 0)
		*n += sqlite3_changes(sd_db_handle(d));
	return r;
}

int sd__user_delete(sd_core *c, const char *name)
{
	if (!name || !valid_username(name))
		return -ENOENT;
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	int64_t now = sd__now_ms(c), uid = 0, nodes = 0, keys = 0, tokens = 0, renamed = 0;
	sqlite3_stmt *st = sd_db_stmt(d, &q_del_user_id);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int r = -ENOENT;
	if (sqlite3_step(st) == SQLITE_ROW) {
		uid = sqlite3_column_int64(st, 0);
		r = 0;
	}
	sqlite3_reset(st);
	if (r == 0) {
		st = sd_db_stmt(d, &q_del_nodes);
		sqlite3_bind_int64(st, 1, uid);
		sqlite3_bind_int64(st, 2, now);
		r = exec_count(d, st, &nodes);
	}
	if (r == 0) {
		int64_t places = 0;
		st = sd_db_stmt(d, &q_del_places);
		sqlite3_bind_int64(st, 1, uid);
		sqlite3_bind_int64(st, 2, now);
		r = exec_count(d, st, &places);
	}
	if (r == 0) {
		st = sd_db_stmt(d, &q_del_keys);
		sqlite3_bind_int64(st, 1, uid);
		r = exec_count(d, st, &keys);
	}
	if (r == 0) {
		st = sd_db_stmt(d, &q_del_tokens);
		sqlite3_bind_int64(st, 1, uid);
		r = exec_count(d, st, &tokens);
	}
	if (r == 0) /* memberships, rules and links go with the user */
		r = sd__team_user_gone(d, uid);
	if (r == 0) {
		st = sd_db_stmt(d, &q_del_rename);
		sqlite3_bind_int64(st, 1, uid);
		r = exec_count(d, st, &renamed);
	}
	if (r == 0) {
		char det[96];
		snprintf(det, sizeof det, "id=%lld nodes=%lld keys=%lld tokens=%lld", (long long)uid,
			 (long long)nodes, (long long)keys, (long long)tokens);
		r = sd__journal(d, now, name, "user_delete", NULL, det);
	}
	int cr = sd_db_write_end(c->db, d, r == 0);
	if (r == 0 && cr == 0) {
		atomic_fetch_add(&c->cred_gen, 1); /* its sessions re-check at once */
		sd__team_changed(c);
		sd_log(SD_LOG_INFO, "auth", "event=user_delete user=%s id=%lld nodes=%lld", name,
		       (long long)uid, (long long)nodes);
	}
	return r ? r : cr;
}

SD_SQL(q_reap_users, "DELETE FROM users WHERE substr(name, 1, 1) = '~' AND NOT EXISTS "
		     "(SELECT 1 FROM nodes WHERE owner = users.id)");

int sd__users_reap(sd_core *c, int64_t *reaped)
{
	*reaped = 0;
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	int r = exec_count(d, sd_db_stmt(d, &q_reap_users), reaped);
	if (r == 0 && *reaped) {
		char det[40];
		snprintf(det, sizeof det, "users=%lld", (long long)*reaped);
		r = sd__journal(d, sd__now_ms(c), NULL, "user_reap", NULL, det);
	}
	int cr = sd_db_write_end(c->db, d, r == 0);
	return r ? r : cr;
}

/* OpenSSH's fingerprint of a base64 key blob: "SHA256:" + the unpadded
 * base64 of the SHA-256 of the decoded blob. "" when b64 does not decode. */
static void key_fingerprint(const char *b64, char *out, size_t outlen)
{
	size_t n = strlen(b64), blen = 0;
	unsigned char *bin = sd_xmalloc(n + 1), md[32];
	unsigned mdlen = 0;
	out[0] = '\0';
	if (sodium_base642bin(bin, n + 1, b64, n, NULL, &blen, NULL, sodium_base64_VARIANT_ORIGINAL) ==
		0 &&
	    EVP_Digest(bin, blen, md, &mdlen, EVP_sha256(), NULL) == 1 && mdlen == 32) {
		char enc[48]; /* 43 characters for 32 bytes */
		sodium_bin2base64(enc, sizeof enc, md, 32, sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
		snprintf(out, outlen, "SHA256:%s", enc);
	}
	free(bin);
}

SD_SQL(q_key_list, "SELECT k.id, u.name, k.type, k.b64, coalesce(k.comment, ''), k.created "
		   "FROM keys k JOIN users u ON u.id = k.user "
		   "WHERE ?1 IS NULL OR k.user = ?1 ORDER BY k.id");

/* The keys of uid (0: every user's), collected; *n entries. */
static int keys_collect(sd_core *c, int64_t uid, sd_key_info **out, size_t *n)
{
	sd_key_info *ks = NULL;
	size_t cnt = 0, cap = 0;
	sd_dbc *d = sd_db_read_begin(c->db);
	sqlite3_stmt *st = sd_db_stmt(d, &q_key_list);
	if (uid)
		sqlite3_bind_int64(st, 1, uid);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (cnt == cap) {
			cap = cap ? cap * 2 : 8;
			ks = sd_xrealloc(ks, cap * sizeof *ks);
		}
		sd_key_info *k = &ks[cnt++];
		memset(k, 0, sizeof *k);
		k->id = sqlite3_column_int64(st, 0);
		snprintf(k->user, sizeof k->user, "%s", (const char *)sqlite3_column_text(st, 1));
		snprintf(k->type, sizeof k->type, "%s", (const char *)sqlite3_column_text(st, 2));
		key_fingerprint((const char *)sqlite3_column_text(st, 3), k->fingerprint,
				sizeof k->fingerprint);
		snprintf(k->comment, sizeof k->comment, "%s", (const char *)sqlite3_column_text(st, 4));
		k->created = sqlite3_column_int64(st, 5) / 1000;
	}
	sqlite3_reset(st);
	sd_db_read_end(c->db, d);
	*out = ks;
	*n = cnt;
	return rc == SQLITE_DONE ? 0 : -EIO;
}

int sd__key_list(sd_core *c, const char *name, sd_key_cb cb, void *arg)
{
	sd_user u = {0};
	int r;
	if (name && (r = sd__user_get(c, name, &u)) < 0)
		return r;
	sd_key_info *ks;
	size_t n;
	if ((r = keys_collect(c, name ? u.id : 0, &ks, &n)) < 0) {
		free(ks);
		return r;
	}
	int count = 0; /* the callback may call back into the engine */
	for (size_t i = 0; i < n; i++) {
		count++;
		if (cb && cb(arg, &ks[i]))
			break;
	}
	free(ks);
	return count;
}

SD_SQL(q_key_delete, "DELETE FROM keys WHERE id = ?1 AND user = ?2");
SD_SQL(q_key_blob, "SELECT b64 FROM keys WHERE id = ?1 AND user = ?2");

/* Remove the key of uid named by its id or fingerprint. */
static int key_remove_uid(sd_core *c, int64_t uid, const char *uname, const char *what)
{
	if (!what || !*what)
		return -EINVAL;
	int64_t kid = 0;
	char fp[64] = "";
	if (strspn(what, "0123456789") == strlen(what)) {
		kid = strtoll(what, NULL, 10);
	} else {
		sd_key_info *ks;
		size_t n;
		int r = keys_collect(c, uid, &ks, &n);
		for (size_t i = 0; r == 0 && i < n; i++)
			if (strcmp(ks[i].fingerprint, what) == 0 ||
			    (strncmp(what, "SHA256:", 7) != 0 && strcmp(ks[i].fingerprint + 7, what) == 0))
				kid = ks[i].id;
		free(ks);
		if (r < 0)
			return r;
	}
	if (kid <= 0)
		return -ENOENT;
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	/* the fingerprint names the key on a replica too (ids differ) */
	sqlite3_stmt *st = sd_db_stmt(d, &q_key_blob);
	sqlite3_bind_int64(st, 1, kid);
	sqlite3_bind_int64(st, 2, uid);
	char kfp[64] = "";
	if (sqlite3_step(st) == SQLITE_ROW)
		key_fingerprint((const char *)sqlite3_column_text(st, 0), kfp, sizeof kfp);
	sqlite3_reset(st);
	st = sd_db_stmt(d, &q_key_delete);
	sqlite3_bind_int64(st, 1, kid);
	sqlite3_bind_int64(st, 2, uid);
	int r = sd_db_exec_stmt(st);
	if (r == 0 && sqlite3_changes(sd_db_handle(d)) == 0)
		r = -ENOENT;
	if (r == 0) {
		snprintf(fp, sizeof fp, "id=%lld", (long long)kid);
		sd_buf args = SD_BUF_INIT;
		sd__jargs_str(&args, "key", kfp);
		r = sd__journal_args(d, sd__now_ms(c), uname, "key_remove", NULL, fp, &args);
	}
	int cr = sd_db_write_end(c->db, d, r == 0);
	if (r == 0 && cr == 0)
		atomic_fetch_add(&c->cred_gen, 1); /* sessions of that key end */
	return r ? r : cr;
}

int sd__key_remove(sd_core *c, const char *name, const char *key)
{
	sd_user u;
	int r = sd__user_get(c, name, &u);
	if (r < 0)
		return r;
	return key_remove_uid(c, u.id, u.name, key);
}

/* ------------------------------------------------------------ self-service */

SD_SQL(q_self_token_exp, "SELECT expires FROM tokens WHERE id = ?1 AND user = ?2");

/* May a session that logged in with cred make a credential that expires
 * at exp_ms (0 = never)? 0, -EACCES (anonymous) or -EPERM (it would
 * outlive the token the session logged in with). */
static int may_outlive(sd_core *c, const sd_cred *cred, int64_t exp_ms)
{
	if (cred->method == SD_METHOD_ANONYMOUS)
		return -EACCES;
	if (cred->method != SD_METHOD_TOKEN)
		return 0;
	sd_dbc *d = sd_db_read_begin(c->db);
	sqlite3_stmt *st = sd_db_stmt(d, &q_self_token_exp);
	sqlite3_bind_int64(st, 1, cred->cred_id);
	sqlite3_bind_int64(st, 2, cred->uid);
	int64_t texp = -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		texp = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	sd_db_read_end(c->db, d);
	if (texp < 0)
		return -SD_EAUTH; /* the token is gone: the session is over */
	if (texp == 0)
		return 0;
	return (exp_ms == 0 || exp_ms > texp) ? -EPERM : 0;
}

SD_SQL(q_self_pw, "UPDATE users SET pwhash = ?2 WHERE id = ?1 AND pwhash = ?3");

int sd__self_password(sd_core *c, const sd_principal *u, const sd_cred *cred, const char *addr,
		      const char *old, const char *new_pw)
{
	int r;
	if ((r = sd__check_writable(u)) < 0)
		return r;
	if (cred->method == SD_METHOD_ANONYMOUS)
		return -EACCES;
	if (!old || !new_pw || !*new_pw)
		return -EINVAL;
	if (sd__auth_allowed(c, addr) < 0)
		return -SD_EBLOCKED;
	char hash[crypto_pwhash_STRBYTES], nhash[crypto_pwhash_STRBYTES];
	sd_user fresh;
	if ((r = get_user(c, NULL, u->id, &fresh, hash, sizeof hash)) < 0)
		return r == -ENOENT ? -SD_EAUTH : r;
	if (!hash[0])
		return -EACCES; /* no password to change: an admin sets the first one */
	if (!verify_password(c, hash, old)) {
		r = auth_failed(c, u->name, addr, u->proto, "bad_old_password");
		return r == -SD_EBLOCKED ? r : -EACCES;
	}
	if (hash_password(new_pw, nhash) < 0)
		return -ENOMEM;
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d) {
		sodium_memzero(nhash, sizeof nhash);
		return -EIO;
	}
	sqlite3_stmt *st = sd_db_stmt(d, &q_self_pw);
	sqlite3_bind_int64(st, 1, u->id);
	sqlite3_bind_text(st, 2, nhash, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, hash, -1, SQLITE_STATIC);
	r = sd_db_exec_stmt(st);
	if (r == 0 && sqlite3_changes(sd_db_handle(d)) == 0)
		r = -EACCES; /* changed by someone else since it was verified */
	if (r == 0)
		r = sd__journal(d, sd__now_ms(c), u->name, "passwd", NULL, "self=1");
	int cr = sd_db_write_end(c->db, d, r == 0);
	sodium_memzero(nhash, sizeof nhash);
	sodium_memzero(hash, sizeof hash);
	if (r == 0 && cr == 0)
		atomic_fetch_add(&c->cred_gen, 1); /* old-password sessions end */
	return r ? r : cr;
}

int sd__self_token_create(sd_core *c, const sd_principal *u, const sd_cred *cred, int scope,
			  int64_t expires, char out[SD_TOKEN_MAX], int64_t *id)
{
	int r;
	if ((r = sd__check_writable(u)) < 0)
		return r;
	if (expires < 0)
		return -EINVAL;
	if ((r = may_outlive(c, cred, expires ? sd__now_ms(c) + expires * 1000 : 0)) < 0)
		return r;
	return sd__token_create(c, u->name, scope, expires, out, id);
}

SD_SQL(q_self_revoke, "UPDATE tokens SET revoked = 1 WHERE id = ?1 AND user = ?2");

int sd__self_token_revoke(sd_core *c, const sd_principal *u, int64_t id)
{
	int r;
	if ((r = sd__check_writable(u)) < 0)
		return r;
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	sqlite3_stmt *st = sd_db_stmt(d, &q_self_revoke);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, u->id);
	r = sd_db_exec_stmt(st);
	if (r == 0 && sqlite3_changes(sd_db_handle(d)) == 0)
		r = -ENOENT; /* not a token of this user */
	if (r == 0) {
		char det[48];
		snprintf(det, sizeof det, "id=%lld self=1", (long long)id);
		sd_buf args = SD_BUF_INIT;
		sd__jargs_int(&args, "id", id);
		r = sd__journal_args(d, sd__now_ms(c), u->name, "token_revoke", NULL, det, &args);
	}
	int cr = sd_db_write_end(c->db, d, r == 0);
	if (r == 0 && cr == 0)
		atomic_fetch_add(&c->cred_gen, 1);
	return r ? r : cr;
}

int sd__self_key_add(sd_core *c, const sd_principal *u, const sd_cred *cred, const char *line)
{
	int r;
	if ((r = sd__check_writable(u)) < 0)
		return r;
	if ((r = may_outlive(c, cred, 0)) < 0) /* a key never expires */
		return r;
	return key_insert(c, u->id, u->name, line);
}

int sd__self_key_remove(sd_core *c, const sd_principal *u, const char *key)
{
	int r;
	if ((r = sd__check_writable(u)) < 0)
		return r;
	return key_remove_uid(c, u->id, u->name, key);
}

/* ------------------------------------------------------------ replication */

int sd__user_pwhash(sd_core *c, const char *name, char *out, size_t outlen)
{
	sd_user u;
	return get_user(c, name, 0, &u, out, outlen);
}

SD_SQL(q_token_get, "SELECT t.id, t.hash, t.readonly, t.created, t.expires, t.revoked, u.name "
		    "FROM tokens t JOIN users u ON u.id = t.user WHERE t.id = ?1");
SD_SQL(q_tokens_of, "SELECT t.id FROM tokens t JOIN users u ON u.id = t.user WHERE u.name = ?1 "
		    "ORDER BY t.id");
SD_SQL(q_token_import, "INSERT OR IGNORE INTO tokens(user, hash, readonly, created, expires, revoked) "
		       "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
SD_SQL(q_token_id_of, "SELECT id FROM tokens WHERE hash = ?1");
SD_SQL(q_keys_of, "SELECT k.type, k.b64, k.comment FROM keys k JOIN users u ON u.id = k.user "
		  "WHERE u.name = ?1 ORDER BY k.id");

int sd__token_get(sd_core *c, int64_t id, sd_tokrow *out)
{
	memset(out, 0, sizeof *out);
	sd_dbc *d = sd_db_read_begin(c->db);
	sqlite3_stmt *st = sd_db_stmt(d, &q_token_get);
	sqlite3_bind_int64(st, 1, id);
	int r = -ENOENT;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 1) == 32) {
		out->id = sqlite3_column_int64(st, 0);
		memcpy(out->hash, sqlite3_column_blob(st, 1), 32);
		out->readonly = sqlite3_column_int(st, 2);
		out->created = sqlite3_column_int64(st, 3);
		out->expires = sqlite3_column_int64(st, 4);
		out->revoked = sqlite3_column_int(st, 5);
		snprintf(out->user, sizeof out->user, "%s", (const char *)sqlite3_column_text(st, 6));
		r = 0;
	}
	sqlite3_reset(st);
	sd_db_read_end(c->db, d);
	return r;
}

int sd__token_ids(sd_core *c, const char *name, int64_t **ids)
{
	int64_t *v = NULL;
	int n = 0, cap = 0;
	sd_dbc *d = sd_db_read_begin(c->db);
	sqlite3_stmt *st = sd_db_stmt(d, &q_tokens_of);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			v = sd_xrealloc(v, (size_t)cap * sizeof *v);
		}
		v[n++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	sd_db_read_end(c->db, d);
	*ids = v;
	return n;
}

int sd__token_import(sd_core *c, const char *name, const sd_tokrow *t)
{
	sd_user u;
	int r = sd__user_get(c, name, &u);
	if (r < 0)
		return r;
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	sqlite3_stmt *st = sd_db_stmt(d, &q_token_import);
	sqlite3_bind_int64(st, 1, u.id);
	sqlite3_bind_blob(st, 2, t->hash, 32, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, t->readonly ? 1 : 0);
	sqlite3_bind_int64(st, 4, t->created);
	sqlite3_bind_int64(st, 5, t->expires);
	sqlite3_bind_int(st, 6, t->revoked ? 1 : 0);
	r = sd_db_exec_stmt(st);
	int64_t tid = 0;
	if (r == 0) {
		st = sd_db_stmt(d, &q_token_id_of);
		sqlite3_bind_blob(st, 1, t->hash, 32, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			tid = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
	}
	if (r == 0) {
		sd_buf args = SD_BUF_INIT;
		sd__jargs_int(&args, "id", tid);
		r = sd__journal_args(d, sd__now_ms(c), name, "token_create", NULL,
				     t->readonly ? "scope=ro" : "scope=rw", &args);
	}
	int cr = sd_db_write_end(c->db, d, r == 0);
	if (r == 0 && cr == 0 && t->revoked)
		atomic_fetch_add(&c->cred_gen, 1);
	return r ? r : cr;
}

int sd__token_revoke_hash(sd_core *c, const unsigned char hash[32])
{
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	int64_t id = 0;
	sqlite3_stmt *st = sd_db_stmt(d, &q_token_id_of);
	sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	sd_db_write_end(c->db, d, 0);
	return id ? sd__token_revoke(c, id) : -ENOENT;
}

int sd__key_lines(sd_core *c, const char *name, char ***lines)
{
	char **v = NULL;
	int n = 0, cap = 0;
	sd_dbc *d = sd_db_read_begin(c->db);
	sqlite3_stmt *st = sd_db_stmt(d, &q_keys_of);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			v = sd_xrealloc(v, (size_t)cap * sizeof *v);
		}
		const char *cm = (const char *)sqlite3_column_text(st, 2);
		v[n++] = sd_xasprintf("%s %s%s%s", (const char *)sqlite3_column_text(st, 0),
				      (const char *)sqlite3_column_text(st, 1), cm && *cm ? " " : "",
				      cm ? cm : "");
	}
	sqlite3_reset(st);
	sd_db_read_end(c->db, d);
	*lines = v;
	return n;
}
