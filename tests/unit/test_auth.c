/*
 * test_auth.c - core/auth.c: user administration, password logins (no
 * caching: disable, enable and password changes act at the next login),
 * API tokens (scopes, token-as-password, revocation, expiry through the
 * clock seam, listing), public keys (probe vs. real attempt), and
 * per-address throttling. Logins return sessions (API v2), and a live
 * session re-checks what its login relied on: disabling the user, changing
 * a password login's password, revoking or expiring its token end it with
 * -SD_EAUTH.
 *
 * Argon2id costs ~0.1 s per hash or verification, so the suite keeps them
 * few: 11 verifications and 5 hashes in all. Failures that only need to be
 * counted use bad tokens or unknown keys, which cost nothing.
 */
#include <stdint.h>
#include <time.h>

#include "testutil.h"

/* ---------------------------------------------------------------- helpers */

static tu_core T;

static void setup(void)
{
	tu_core_open(&T, 0);
}

static void teardown(void)
{
	tu_core_close(&T);
}

/* The clock seam: ms since the epoch, moved by the tests. */
static int64_t fake_ms;
static int64_t fake_clock(void *arg)
{
	(void)arg;
	return fake_ms;
}

static void clock_start(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	fake_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	sd__core_set_clock(T.c, fake_clock, NULL);
}

static long long sql(const char *fmt, const char *arg)
{
	char q[600];
	snprintf(q, sizeof q, fmt, arg ? arg : "");
	return tu_sql_int(&T, q);
}

/* The end of a login call: on failure the out-pointer stays unset; on
 * success the session is described in *si (may be NULL) and closed. */
static int login_end(int r, sd_session *s, sd_session_info *si)
{
	if (r < 0) {
		ck_assert_ptr_null(s);
		return r;
	}
	ck_assert_int_eq(r, 0);
	ck_assert_ptr_nonnull(s);
	sd_session_info tmp;
	ck_assert_int_eq(T.api->session_info(s, &tmp), 0);
	if (si)
		*si = tmp;
	T.api->session_close(s);
	return 0;
}

/* Password login (or a token in the password field). */
static int pw_login(const char *user, const char *secret, const char *addr, sd_session_info *si)
{
	sd_session *s = NULL;
	int r = T.api->auth_password(T.c, user, secret, addr, "test", &s);
	return login_end(r, s, si);
}

/* Bearer-token login. */
static int tok_login(const char *token, const char *addr, sd_session_info *si)
{
	sd_session *s = NULL;
	int r = T.api->auth_token(T.c, token, addr, "test", &s);
	return login_end(r, s, si);
}

/* Public-key login (a probe makes no session: out is NULL, si unused). */
static int key_login(const char *user, const char *type, const char *b64, const char *addr,
		     unsigned flags, sd_session_info *si)
{
	sd_session *s = NULL;
	if (flags & SD_AUTH_PROBE)
		return T.api->auth_pubkey(T.c, user, type, b64, addr, "test", flags, NULL);
	int r = T.api->auth_pubkey(T.c, user, type, b64, addr, "test", flags, &s);
	return login_end(r, s, si);
}

/* A session that must log in, kept open (closed with the core). */
static sd_session *pw_session(const char *user, const char *secret)
{
	sd_session *s = NULL;
	int r = T.api->auth_password(T.c, user, secret, "127.0.0.1", "test", &s);
	ck_assert_msg(r == 0, "login %s: %s", user, T.api->strerror(r));
	return tu_keep(&T, s);
}

static sd_session *tok_session(const char *token)
{
	sd_session *s = NULL;
	int r = T.api->auth_token(T.c, token, "127.0.0.1", "test", &s);
	ck_assert_msg(r == 0, "token login: %s", T.api->strerror(r));
	return tu_keep(&T, s);
}

/* A session whose credentials no longer hold: every call is -SD_EAUTH. */
static void expect_dead(sd_session *s)
{
	sd_session_info si;
	sd_stat st;
	ck_assert_int_eq(T.api->session_check(s), -SD_EAUTH);
	ck_assert_int_eq(T.api->session_info(s, &si), -SD_EAUTH);
	ck_assert_int_eq(T.api->stat(s, "/", &st), -SD_EAUTH);
	ck_assert_int_eq(T.api->mkdir(s, "/after-death", 0755, 0), -SD_EAUTH);
	sd_upload *up = NULL;
	ck_assert_int_eq(T.api->upload_begin(s, "/after-death", 0, 0, 0644, &up), -SD_EAUTH);
	ck_assert_ptr_null(up);
}

static long long login_failed_rows(void)
{
	return tu_sql_int(&T, "SELECT count(*) FROM journal WHERE op='login_failed'");
}

/* Token listing collected. */
typedef struct toks {
	sd_token_info v[16];
	int n;
} toks;

static int collect_token(void *arg, const sd_token_info *t)
{
	toks *ts = arg;
	if (ts->n < 16)
		ts->v[ts->n] = *t;
	ts->n++;
	return 0;
}

typedef struct ulist {
	char names[16][SD_USERNAME_MAX + 1];
	int n;
} ulist;

static int collect_user(void *arg, const sd_user *u)
{
	ulist *l = arg;
	if (l->n < 16)
		snprintf(l->names[l->n], sizeof l->names[0], "%s", u->name);
	l->n++;
	return 0;
}

/* ---------------------------------------------------------------- users */

START_TEST(test_user_add)
{
	const sd_core_api *a = T.api;
	char n64[SD_USERNAME_MAX + 1], n65[SD_USERNAME_MAX + 2];
	memset(n64, 'u', SD_USERNAME_MAX);
	n64[SD_USERNAME_MAX] = '\0';
	memset(n65, 'v', SD_USERNAME_MAX + 1);
	n65[SD_USERNAME_MAX + 1] = '\0';
	const char *bad[] = {"", ".hidden", "-dash", "a b", "a/b", "a\\b", "../x", "x:y", "\xc3\xbc",
			     "tab\t", "semi;colon", "quote'", n65};
	int64_t id = 0;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int r = a->user_add(T.c, bad[i], NULL, 0, 0, &id);
		ck_assert_msg(r == -EINVAL, "user_add '%s': %d", bad[i], r);
	}
	ck_assert_int_eq(a->user_add(T.c, NULL, NULL, 0, 0, &id), -EINVAL);
	ck_assert_int_eq(a->user_add(T.c, "negquota", NULL, -1, 0, &id), -EINVAL);

	const char *good[] = {"bob", "a.b_c-d@e", "Z9", n64};
	int64_t ids[4];
	for (int i = 0; i < 4; i++) {
		ids[i] = 0;
		int r = a->user_add(T.c, good[i], NULL, i == 0 ? 12345 : 0, i == 1 ? SD_USER_ADMIN : 0, &ids[i]);
		ck_assert_msg(r == 0, "user_add '%s': %d", good[i], r);
		ck_assert_int_gt(ids[i], 0);
	}
	ck_assert_int_eq(a->user_add(T.c, "bob", NULL, 0, 0, &id), -EEXIST);
	ck_assert_int_eq(a->user_add(T.c, "bob", "secret", 0, 0, &id), -EEXIST);

	sd_user u;
	ck_assert_int_eq(a->user_get(T.c, "bob", &u), 0);
	ck_assert_int_eq(u.id, ids[0]);
	ck_assert_str_eq(u.name, "bob");
	ck_assert_int_eq(u.quota, 12345);
	ck_assert_int_eq(u.used, 0);
	ck_assert_uint_eq(u.flags & (SD_USER_ADMIN | SD_USER_DISABLED | SD_USER_READONLY), 0);
	ck_assert_int_eq(a->user_get(T.c, "a.b_c-d@e", &u), 0);
	ck_assert_uint_eq(u.flags & SD_USER_ADMIN, SD_USER_ADMIN);
	ck_assert_int_eq(a->user_get_id(T.c, ids[3], &u), 0);
	ck_assert_str_eq(u.name, n64);
	ck_assert_int_eq(a->user_get(T.c, "nobody", &u), -ENOENT);
	ck_assert_int_eq(a->user_get_id(T.c, 999999, &u), -ENOENT);

	/* exactly the valid users exist, each with its own root */
	ulist l = {0};
	ck_assert_int_eq(a->user_list(T.c, collect_user, &l), 4);
	ck_assert_int_eq(l.n, 4);
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM users"), 4);
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(DISTINCT root) FROM users WHERE root IS NOT NULL"), 4);
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM journal WHERE op='user_add'"), 4);
	sd_stat st;
	ck_assert_int_eq(a->user_get(T.c, "bob", &u), 0);
	sd_session *bob = tu_session(&T, "bob");
	ck_assert_int_eq(a->stat(bob, "/", &st), 0);
	ck_assert_int_eq(st.kind, SD_KIND_DIR);
	ck_assert_int_eq(tu_row(&T, bob).id, ids[0]);

	/* admin calls on unknown users */
	ck_assert_int_eq(a->user_set_disabled(T.c, "nobody", 1), -ENOENT);
	ck_assert_int_eq(a->user_set_quota(T.c, "nobody", 1), -ENOENT);
	ck_assert_int_eq(a->user_set_quota(T.c, "bob", -5), -EINVAL);
	ck_assert_int_eq(a->user_set_admin(T.c, "bob", 1), 0);
	ck_assert_int_eq(a->user_get(T.c, "bob", &u), 0);
	ck_assert_uint_eq(u.flags & SD_USER_ADMIN, SD_USER_ADMIN);
}
END_TEST

/* ---------------------------------------------------------------- passwords */

START_TEST(test_password)
{
	const sd_core_api *a = T.api;
	int64_t id = 0;
	ck_assert_int_eq(a->user_add(T.c, "carol", "correct horse", 0, 0, &id), 0); /* hash 1 */
	tu_user(&T, "nopw");
	/* the secret is never stored in clear */
	ck_assert_int_eq(sql("SELECT count(*) FROM users WHERE name='carol' AND pwhash LIKE '$argon2id$%%'", NULL), 1);
	ck_assert_int_eq(sql("SELECT count(*) FROM users WHERE pwhash LIKE '%%correct horse%%'", NULL), 0);

	/* a login makes a session of that user, at "/", with the login's
	 * address and protocol */
	sd_session *live = pw_session("carol", "correct horse"); /* v1 */
	sd_session_info si;
	ck_assert_int_eq(a->session_info(live, &si), 0);
	ck_assert_int_eq(si.uid, id);
	ck_assert_str_eq(si.user, "carol");
	ck_assert_uint_eq(si.flags & (SD_USER_READONLY | SD_USER_DISABLED), 0);
	ck_assert_str_eq(si.addr, "127.0.0.1");
	ck_assert_str_eq(si.proto, "test");
	ck_assert_str_eq(si.cwd, "/");
	ck_assert_int_eq(si.handles, 0);
	ck_assert_int_eq(a->session_check(live), 0);
	/* a token session of the same user, to compare with below */
	char tok[SD_TOKEN_MAX];
	ck_assert_int_eq(a->token_create(T.c, "carol", SD_SCOPE_RW, 0, tok, NULL), 0);
	sd_session *ts = tok_session(tok);

	ck_assert_int_eq(pw_login("carol", "correct horsE", "127.0.0.1", NULL), -SD_EAUTH); /* v2 */
	ck_assert_int_eq(pw_login("nobody", "correct horse", "127.0.0.1", NULL), -SD_EAUTH); /* v3 */
	ck_assert_int_eq(pw_login("nopw", "", "127.0.0.1", NULL), -SD_EAUTH); /* v4 */
	ck_assert_int_eq(pw_login("carol", NULL, "127.0.0.1", NULL), -SD_EAUTH);
	ck_assert_int_eq(pw_login(NULL, "x", "127.0.0.1", NULL), -SD_EAUTH);
	/* failed logins do not touch the sessions already open */
	ck_assert_int_eq(a->session_check(live), 0);

	/* disabled: refused at the next login, accepted again once enabled */
	ck_assert_int_eq(a->user_set_disabled(T.c, "carol", 1), 0);
	ck_assert_int_eq(pw_login("carol", "correct horse", "127.0.0.1", NULL), -SD_EAUTH); /* v5 */
	/* ... and the sessions already open end, whatever their login */
	expect_dead(live);
	expect_dead(ts);
	ck_assert_int_eq(a->user_set_disabled(T.c, "carol", 0), 0);
	ck_assert_int_eq(pw_login("carol", "correct horse", "127.0.0.1", &si), 0); /* v6 */
	ck_assert_int_eq(si.uid, id);
	/* an ended session stays ended once the user is enabled again */
	ck_assert_int_eq(a->session_check(live), -SD_EAUTH);
	ck_assert_int_eq(a->session_check(ts), -SD_EAUTH);
	live = pw_session("carol", "correct horse");
	ts = tok_session(tok);

	/* a password change acts at the next login */
	ck_assert_int_eq(a->user_set_password(T.c, "carol", "battery staple"), 0); /* hash 2 */
	ck_assert_int_eq(pw_login("carol", "correct horse", "127.0.0.1", NULL), -SD_EAUTH); /* v7 */
	ck_assert_int_eq(pw_login("carol", "battery staple", "127.0.0.1", NULL), 0); /* v8 */
	/* ... and ends the sessions that logged in with the old password, not
	 * the token's */
	expect_dead(live);
	ck_assert_int_eq(a->session_check(ts), 0);
	sd_stat st;
	ck_assert_int_eq(a->stat(ts, "/", &st), 0);
	ck_assert_int_eq(a->user_set_password(T.c, "carol", ""), -EINVAL);
	ck_assert_int_eq(a->user_set_password(T.c, "nobody", "x"), -ENOENT);

	/* each failure is journalled */
	ck_assert_int_eq(login_failed_rows(), 7);
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM journal WHERE op='login_failed' AND user='carol'"), 4);
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM journal WHERE op='login_failed' AND detail LIKE '%127.0.0.1%'"), 7);
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM journal WHERE op='login_failed' AND detail LIKE '%correct%'"), 0);
	ck_assert_int_ge(tu_sql_int(&T, "SELECT count(*) FROM journal WHERE op='passwd' AND user='carol'"), 1);
}
END_TEST

/* ---------------------------------------------------------------- tokens */

START_TEST(test_tokens)
{
	const sd_core_api *a = T.api;
	sd_user erin = tu_row(&T, tu_user(&T, "erin"));
	tu_user(&T, "frank");
	char rw[SD_TOKEN_MAX], ro[SD_TOKEN_MAX], fr[SD_TOKEN_MAX];
	int64_t id_rw = 0, id_ro = 0, id_fr = 0;
	ck_assert_int_eq(a->token_create(T.c, "erin", SD_SCOPE_RW, 0, rw, &id_rw), 0);
	ck_assert_int_eq(a->token_create(T.c, "erin", SD_SCOPE_RO, 0, ro, &id_ro), 0);
	ck_assert_int_eq(a->token_create(T.c, "frank", SD_SCOPE_RW, 0, fr, &id_fr), 0);
	ck_assert_int_ne(id_rw, id_ro);
	ck_assert_str_ne(rw, ro);
	ck_assert_int_eq(strncmp(rw, "sdt_", 4), 0);
	ck_assert_int_lt(strlen(rw), SD_TOKEN_MAX);
	ck_assert_int_gt(strlen(rw), 30);
	/* only a hash is stored */
	ck_assert_int_eq(sql("SELECT count(*) FROM tokens WHERE CAST(hash AS TEXT) LIKE '%%%s%%'", rw + 4), 0);

	sd_session *srw = tok_session(rw);
	sd_session_info si;
	ck_assert_int_eq(a->session_info(srw, &si), 0);
	ck_assert_int_eq(si.uid, erin.id);
	ck_assert_uint_eq(si.flags & SD_USER_READONLY, 0);
	ck_assert_int_eq(a->mkdir(srw, "/rw-made", 0755, 0), 0);

	sd_session *sro = tok_session(ro);
	ck_assert_int_eq(a->session_info(sro, &si), 0);
	ck_assert_int_eq(si.uid, erin.id);
	ck_assert_uint_eq(si.flags & SD_USER_READONLY, SD_USER_READONLY);
	ck_assert_int_eq(a->mkdir(sro, "/ro-made", 0755, 0), -EROFS);
	ck_assert_int_eq(tu_put_r(&T, sro, "/ro-file", "x", 1, NULL, NULL), -EROFS);
	ck_assert_int_eq(a->unlink(sro, "/rw-made", 1), -EROFS);
	sd_stat st;
	ck_assert_int_eq(a->stat(sro, "/rw-made", &st), 0); /* reading is fine */
	ck_assert_int_eq(a->stat(sro, "/ro-made", &st), -ENOENT);
	/* a re-check (forced by a change to the user's row) keeps the
	 * login's read-only scope */
	ck_assert_int_eq(a->user_set_quota(T.c, "erin", 123456), 0);
	ck_assert_int_eq(a->session_info(sro, &si), 0);
	ck_assert_int_eq(si.quota, 123456);
	ck_assert_uint_eq(si.flags & SD_USER_READONLY, SD_USER_READONLY);
	ck_assert_int_eq(a->mkdir(sro, "/ro-made", 0755, 0), -EROFS);

	/* a token as the password: only with its own user's name */
	ck_assert_int_eq(pw_login("erin", rw, "127.0.0.1", &si), 0);
	ck_assert_int_eq(si.uid, erin.id);
	ck_assert_uint_eq(si.flags & SD_USER_READONLY, 0);
	ck_assert_int_eq(pw_login("erin", ro, "127.0.0.1", &si), 0);
	ck_assert_uint_eq(si.flags & SD_USER_READONLY, SD_USER_READONLY);
	ck_assert_int_eq(pw_login("frank", rw, "127.0.0.1", NULL), -SD_EAUTH);
	ck_assert_int_eq(pw_login("nobody", rw, "127.0.0.1", NULL), -SD_EAUTH);
	ck_assert_int_eq(pw_login("frank", fr, "127.0.0.1", &si), 0);
	ck_assert_str_eq(si.user, "frank");
	sd_session *sfr = tok_session(fr);

	/* malformed or altered tokens */
	char altered[SD_TOKEN_MAX];
	snprintf(altered, sizeof altered, "%s", rw);
	size_t L = strlen(altered);
	altered[L - 1] = altered[L - 1] == 'A' ? 'B' : 'A';
	const char *badt[] = {"", "sdt_", "sdt_xyz", "not-a-token", altered};
	for (size_t i = 0; i < sizeof badt / sizeof badt[0]; i++)
		ck_assert_msg(tok_login(badt[i], "127.0.0.1", NULL) == -SD_EAUTH, "token '%s'", badt[i]);
	ck_assert_int_eq(tok_login(NULL, "127.0.0.1", NULL), -SD_EAUTH);
	char longtok[300];
	memset(longtok, 'A', sizeof longtok - 1);
	memcpy(longtok, "sdt_", 4);
	longtok[sizeof longtok - 1] = '\0';
	ck_assert_int_eq(tok_login(longtok, "127.0.0.1", NULL), -SD_EAUTH);

	/* disabled user: its tokens stop working, and work again when enabled */
	ck_assert_int_eq(a->user_set_disabled(T.c, "erin", 1), 0);
	ck_assert_int_eq(tok_login(rw, "127.0.0.1", NULL), -SD_EAUTH);
	ck_assert_int_eq(pw_login("erin", rw, "127.0.0.1", NULL), -SD_EAUTH);
	/* the token sessions already open end; another user's do not */
	expect_dead(srw);
	expect_dead(sro);
	ck_assert_int_eq(a->session_check(sfr), 0);
	ck_assert_int_eq(a->user_set_disabled(T.c, "erin", 0), 0);
	ck_assert_int_eq(tok_login(rw, "127.0.0.1", NULL), 0);
	srw = tok_session(rw);
	sro = tok_session(ro);

	/* revoke: refused at the next use; the other tokens are unaffected */
	ck_assert_int_eq(a->token_revoke(T.c, id_rw), 0);
	ck_assert_int_eq(tok_login(rw, "127.0.0.1", NULL), -SD_EAUTH);
	ck_assert_int_eq(pw_login("erin", rw, "127.0.0.1", NULL), -SD_EAUTH);
	ck_assert_int_eq(tok_login(ro, "127.0.0.1", NULL), 0);
	ck_assert_int_eq(a->token_revoke(T.c, 987654), -ENOENT);
	/* the revoked token's session ends; the others go on */
	expect_dead(srw);
	ck_assert_int_eq(a->session_check(sro), 0);
	ck_assert_int_eq(a->stat(sro, "/rw-made", &st), 0);
	ck_assert_int_eq(a->session_check(sfr), 0);

	/* listing */
	toks ts = {0};
	ck_assert_int_eq(a->token_list(T.c, "erin", collect_token, &ts), 2);
	ck_assert_int_eq(ts.n, 2);
	for (int i = 0; i < 2; i++) {
		ck_assert_str_eq(ts.v[i].user, "erin");
		ck_assert_int_gt(ts.v[i].created, 1600000000);
		ck_assert_int_eq(ts.v[i].expires, 0);
		if (ts.v[i].id == id_rw) {
			ck_assert_int_eq(ts.v[i].readonly, 0);
			ck_assert_int_ne(ts.v[i].revoked, 0);
		} else {
			ck_assert_int_eq(ts.v[i].id, id_ro);
			ck_assert_int_ne(ts.v[i].readonly, 0);
			ck_assert_int_eq(ts.v[i].revoked, 0);
		}
	}
	memset(&ts, 0, sizeof ts);
	ck_assert_int_eq(a->token_list(T.c, NULL, collect_token, &ts), 3);
	memset(&ts, 0, sizeof ts);
	ck_assert_int_eq(a->token_list(T.c, "frank", collect_token, &ts), 1);
	ck_assert_int_eq(ts.v[0].id, id_fr);
	memset(&ts, 0, sizeof ts);
	ck_assert_int_eq(a->token_list(T.c, "nobody", collect_token, &ts), 0);

	/* bad creations */
	char t2[SD_TOKEN_MAX];
	ck_assert_int_eq(a->token_create(T.c, "nobody", SD_SCOPE_RW, 0, t2, NULL), -ENOENT);
	ck_assert_int_eq(a->token_create(T.c, "erin", 7, 0, t2, NULL), -EINVAL);
	ck_assert_int_eq(a->token_create(T.c, "erin", SD_SCOPE_RW, -1, t2, NULL), -EINVAL);
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM tokens"), 3);
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM journal WHERE op='token_create'"), 3);
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM journal WHERE op='token_revoke'"), 1);
	ck_assert_int_ge(login_failed_rows(), 10);
}
END_TEST

START_TEST(test_token_expiry)
{
	const sd_core_api *a = T.api;
	tu_user(&T, "gina");
	clock_start();
	int64_t t0 = fake_ms;
	char tok[SD_TOKEN_MAX], forever[SD_TOKEN_MAX];
	int64_t id = 0;
	ck_assert_int_eq(a->token_create(T.c, "gina", SD_SCOPE_RW, 1, tok, &id), 0);
	ck_assert_int_eq(a->token_create(T.c, "gina", SD_SCOPE_RO, 0, forever, NULL), 0);
	ck_assert_int_eq(tok_login(tok, "127.0.0.1", NULL), 0);
	sd_session *s = tok_session(tok), *sf = tok_session(forever);
	fake_ms = t0 + 500;
	ck_assert_int_eq(tok_login(tok, "127.0.0.1", NULL), 0);
	fake_ms = t0 + 2000;
	ck_assert_int_eq(tok_login(tok, "127.0.0.1", NULL), -SD_EAUTH);
	ck_assert_int_eq(pw_login("gina", tok, "127.0.0.1", NULL), -SD_EAUTH);
	ck_assert_int_eq(tok_login(forever, "127.0.0.1", NULL), 0);
	/* the session of the expired token ends too: sessions re-check at
	 * least every second without any change made through this core */
	int r = 0;
	for (int i = 0; i < 300 && (r = a->session_check(s)) == 0; i++)
		usleep(10000);
	ck_assert_int_eq(r, -SD_EAUTH);
	expect_dead(s);
	ck_assert_int_eq(a->session_check(sf), 0);
	/* a year later the unexpiring one still works */
	fake_ms = t0 + 366LL * 86400 * 1000;
	ck_assert_int_eq(tok_login(forever, "127.0.0.1", NULL), 0);
	ck_assert_int_eq(tok_login(tok, "127.0.0.1", NULL), -SD_EAUTH);
	ck_assert_int_eq(a->session_check(sf), 0);
	/* the listing shows the expiry, in seconds */
	toks ts = {0};
	ck_assert_int_eq(a->token_list(T.c, "gina", collect_token, &ts), 2);
	ck_assert_int_eq(ts.v[0].id, id);
	ck_assert_int_eq(ts.v[0].created, t0 / 1000);
	ck_assert_int_eq(ts.v[0].expires, t0 / 1000 + 1);
	ck_assert_int_eq(ts.v[0].revoked, 0);
	ck_assert_int_eq(ts.v[1].expires, 0);
	ck_assert_int_ne(ts.v[1].readonly, 0);
	ck_assert_int_ge(tu_sql_int(&T, "SELECT count(*) FROM journal WHERE op='login_failed' AND detail LIKE '%expired%'"), 1);
}
END_TEST

/* ---------------------------------------------------------------- keys */

#define K1 "AAAAC3NzaC1lZDI1NTE5AAAAIBd1Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0"
#define K2 "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBHh5eg=="
#define K3 "AAAAC3NzaC1lZDI1NTE5AAAAIHVua25vd25rZXl1bmtub3dua2V5dW5rbm93bmtleQ"

START_TEST(test_keys)
{
	const sd_core_api *a = T.api;
	sd_user hank = tu_row(&T, tu_user(&T, "hank"));
	tu_user(&T, "ivy");
	ck_assert_int_eq(a->key_add(T.c, "hank", "ssh-ed25519 " K1 " hank@laptop"), 0);
	ck_assert_int_eq(a->key_add(T.c, "hank", "  ecdsa-sha2-nistp256 " K2), 0);
	int dup = a->key_add(T.c, "hank", "ssh-ed25519 " K1 " again"); /* duplicate: no new row */
	ck_assert_msg(dup == 0 || dup == -EEXIST, "duplicate key_add: %d", dup);
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM keys"), 2);
	const char *bad[] = {"", "ssh-ed25519", "garbage " K1, "rsa " K1, "ssh-ed25519 AA!A",
			     "from=\"10.0.0.1\" ssh-ed25519 " K1, "ssh-ed25519 \"" K1 "\""};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(a->key_add(T.c, "hank", bad[i]) == -EINVAL, "key_add '%s'", bad[i]);
	ck_assert_int_eq(a->key_add(T.c, "nobody", "ssh-ed25519 " K1), -ENOENT);
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM keys"), 2);
	ck_assert_int_ge(tu_sql_int(&T, "SELECT count(*) FROM journal WHERE op='key_add' AND user='hank'"), 2);

	sd_session_info si;
	long long lf0 = login_failed_rows();
	ck_assert_int_eq(key_login("hank", "ssh-ed25519", K1, "10.1.1.1", 0, &si), 0);
	ck_assert_int_eq(si.uid, hank.id);
	ck_assert_str_eq(si.addr, "10.1.1.1");
	ck_assert_int_eq(key_login("hank", "ecdsa-sha2-nistp256", K2, "10.1.1.1", 0, &si), 0);
	ck_assert_int_eq(si.uid, hank.id);
	/* probe of a registered key answers yes, without logging in: no
	 * session is made even when an out-pointer is given */
	ck_assert_int_eq(key_login("hank", "ssh-ed25519", K1, "10.1.1.1", SD_AUTH_PROBE, NULL), 0);
	sd_session *none = NULL;
	ck_assert_int_eq(a->auth_pubkey(T.c, "hank", "ssh-ed25519", K1, "10.1.1.1", "test", SD_AUTH_PROBE,
					&none), 0);
	ck_assert_ptr_null(none);
	ck_assert_int_eq(login_failed_rows(), lf0);
	sd_session *live = NULL;
	ck_assert_int_eq(a->auth_pubkey(T.c, "hank", "ssh-ed25519", K1, "10.1.1.1", "test", 0, &live), 0);
	tu_keep(&T, live);

	/* refusals: unknown key, wrong type, another user's key, unknown user */
	ck_assert_int_eq(key_login("hank", "ssh-ed25519", K3, "10.1.1.1", 0, NULL), -SD_EAUTH);
	ck_assert_int_eq(key_login("hank", "ssh-rsa", K1, "10.1.1.1", 0, NULL), -SD_EAUTH);
	ck_assert_int_eq(key_login("ivy", "ssh-ed25519", K1, "10.1.1.1", 0, NULL), -SD_EAUTH);
	ck_assert_int_eq(key_login("nobody", "ssh-ed25519", K1, "10.1.1.1", 0, NULL), -SD_EAUTH);
	ck_assert_int_eq(login_failed_rows(), lf0 + 4);
	/* disabled user: even the registered key is refused, probe included */
	ck_assert_int_eq(a->user_set_disabled(T.c, "hank", 1), 0);
	expect_dead(live); /* and the key session already open ends */
	ck_assert_int_eq(key_login("hank", "ssh-ed25519", K1, "10.1.1.1", SD_AUTH_PROBE, NULL), -SD_EAUTH);
	ck_assert_int_eq(key_login("hank", "ssh-ed25519", K1, "10.1.1.1", 0, NULL), -SD_EAUTH);
	ck_assert_int_eq(a->user_set_disabled(T.c, "hank", 0), 0);
	ck_assert_int_eq(key_login("hank", "ssh-ed25519", K1, "10.1.1.1", 0, NULL), 0);

	/* probes never count as failures: many unknown-key probes from one
	 * address leave it allowed and write no login_failed row */
	long long lf1 = login_failed_rows();
	int maxf = (int)T.conf.auth_max_failures;
	for (int i = 0; i < maxf + 3; i++)
		ck_assert_int_eq(key_login("hank", "ssh-ed25519", K3, "10.2.2.2", SD_AUTH_PROBE, NULL),
				 -SD_EAUTH);
	ck_assert_int_eq(a->auth_allowed(T.c, "10.2.2.2"), 0);
	ck_assert_int_eq(login_failed_rows(), lf1);
	ck_assert_int_eq(key_login("hank", "ssh-ed25519", K1, "10.2.2.2", 0, NULL), 0);
	/* while real attempts with the same key do count */
	for (int i = 0; i < maxf; i++)
		ck_assert_int_lt(key_login("hank", "ssh-ed25519", K3, "10.2.2.2", 0, NULL), 0);
	ck_assert_int_eq(a->auth_allowed(T.c, "10.2.2.2"), -SD_EBLOCKED);
	ck_assert_int_eq(key_login("hank", "ssh-ed25519", K1, "10.2.2.2", 0, NULL), -SD_EBLOCKED);
	ck_assert_int_eq(login_failed_rows(), lf1 + maxf);
}
END_TEST

/* ---------------------------------------------------------------- throttling */

START_TEST(test_throttle)
{
	const sd_core_api *a = T.api;
	/* reopen with a small failure budget */
	tu_core_shut(&T);
	T.conf.auth_max_failures = 3;
	T.conf.auth_block_time = 60000;
	tu_core_reopen(&T, 0);
	a = T.api;
	clock_start();
	int64_t t0 = fake_ms;
	int64_t id = 0;
	ck_assert_int_eq(a->user_add(T.c, "dave", "right password", 0, 0, &id), 0); /* hash 3 */
	char tok[SD_TOKEN_MAX];
	ck_assert_int_eq(a->token_create(T.c, "dave", SD_SCOPE_RW, 0, tok, NULL), 0);
	sd_session_info si;
	const char *A = "10.0.0.1", *B = "10.0.0.2";

	/* a success clears the count: 2 failures, success, 2 failures */
	ck_assert_int_eq(pw_login("dave", "sdt_bogus1", A, NULL), -SD_EAUTH);
	ck_assert_int_eq(tok_login("sdt_bogus2", A, NULL), -SD_EAUTH);
	ck_assert_int_eq(a->auth_allowed(T.c, A), 0);
	ck_assert_int_eq(pw_login("dave", tok, A, NULL), 0);
	ck_assert_int_eq(tok_login("sdt_bogus3", A, NULL), -SD_EAUTH);
	ck_assert_int_eq(tok_login("sdt_bogus4", A, NULL), -SD_EAUTH);
	ck_assert_int_eq(a->auth_allowed(T.c, A), 0);

	/* the third failure in a row blocks the address */
	int r = pw_login("dave", "wrong password", A, NULL); /* v9 */
	ck_assert_msg(r == -SD_EAUTH || r == -SD_EBLOCKED, "third failure: %d", r);
	ck_assert_int_eq(a->auth_allowed(T.c, A), -SD_EBLOCKED);
	ck_assert_int_eq(pw_login("dave", "right password", A, NULL), -SD_EBLOCKED);
	ck_assert_int_eq(pw_login("dave", tok, A, NULL), -SD_EBLOCKED);
	ck_assert_int_eq(tok_login(tok, A, NULL), -SD_EBLOCKED);
	/* other addresses are not affected */
	ck_assert_int_eq(a->auth_allowed(T.c, B), 0);
	ck_assert_int_eq(pw_login("dave", "right password", B, &si), 0); /* v10 */
	ck_assert_str_eq(si.user, "dave");
	ck_assert_str_eq(si.addr, B);
	/* still blocked just before the block time ends */
	fake_ms = t0 + 59000;
	ck_assert_int_eq(a->auth_allowed(T.c, A), -SD_EBLOCKED);
	/* and allowed again after it */
	fake_ms = t0 + 61000;
	ck_assert_int_eq(a->auth_allowed(T.c, A), 0);
	ck_assert_int_eq(pw_login("dave", "right password", A, &si), 0); /* v11 */
	ck_assert_int_eq(si.uid, id);

	/* failures are journalled with the address */
	ck_assert_int_ge(tu_sql_int(&T, "SELECT count(*) FROM journal WHERE op='login_failed' AND detail LIKE '%10.0.0.1%'"), 5);
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM journal WHERE op='login_failed' AND detail LIKE '%10.0.0.2%'"), 0);
}
END_TEST

static Suite *auth_suite(void)
{
	Suite *s = suite_create("auth");
	TCase *tc;

	tc = tcase_create("users");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_user_add);
	suite_add_tcase(s, tc);

	tc = tcase_create("password");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_password);
	tcase_add_test(tc, test_throttle);
	suite_add_tcase(s, tc);

	tc = tcase_create("tokens");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_tokens);
	tcase_add_test(tc, test_token_expiry);
	suite_add_tcase(s, tc);

	tc = tcase_create("keys");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_keys);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(auth_suite());
}
