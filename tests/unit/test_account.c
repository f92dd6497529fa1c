/*
 * test_account.c - the account calls of issue 11 (core/auth.c):
 * auth_blocked_for (the lockout's remaining time, for Retry-After),
 * key_add refusing a duplicate, key_list with OpenSSH fingerprints,
 * key_remove by id and by fingerprint (a key session ends), user_delete
 * (files through the logical delete and the cleaner, tokens and keys gone,
 * sessions end, the name free at once, the row reaped by the cleaner), the
 * self-service calls (password with the old one, tokens, keys; read-only
 * and expiring-token sessions refused), and fsinfo's free vs. available
 * disk figures.
 *
 * Argon2id costs ~0.1 s per hash or verification: the suite uses a few.
 */
#include <stdint.h>
#include <time.h>

#include "testutil.h"
#include "memstore.h"

static tu_core T;

static void setup(void)
{
	tu_core_open(&T, 0);
}

static void teardown(void)
{
	tu_core_close(&T);
}

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

static long long sqlq(const char *fmt, const char *arg)
{
	char q[600];
	snprintf(q, sizeof q, fmt, arg ? arg : "");
	return tu_sql_int(&T, q);
}

static void expect_dead(sd_session *s)
{
	sd_stat st;
	ck_assert_int_eq(T.api->session_check(s), -SD_EAUTH);
	ck_assert_int_eq(T.api->stat(s, "/", &st), -SD_EAUTH);
	ck_assert_int_eq(T.api->mkdir(s, "/after", 0755, 0), -SD_EAUTH);
}

/* ssh-keygen -t ed25519; `ssh-keygen -lf` says SHA256:v639A2/G/... */
#define KEY_B64 "AAAAC3NzaC1lZDI1NTE5AAAAIEUoZf3+G3md1XBa76ErTNn0oyIe/Cu6j6OLiBxKGZnx"
#define KEY_FP "SHA256:v639A2/G/a7bvW6h1sfqr1IElYGB5+Li7tDFzcrJYTQ"
#define KEY2_B64 "AAAAC3NzaC1lZDI1NTE5AAAAIBd1Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0"

typedef struct keys_seen {
	int n;
	sd_key_info k[8];
} keys_seen;

static int key_cb(void *arg, const sd_key_info *k)
{
	keys_seen *ks = arg;
	if (ks->n < 8)
		ks->k[ks->n] = *k;
	ks->n++;
	return 0;
}

/* ---------------------------------------------------------------- lockout */

START_TEST(test_blocked_for)
{
	clock_start();
	const char *addr = "10.9.9.9";
	ck_assert_int_eq(T.api->auth_blocked_for(T.c, addr), 0);
	ck_assert_int_eq(T.api->auth_blocked_for(T.c, NULL), 0);
	int maxf = (int)T.conf.auth_max_failures;
	sd_session *s = NULL;
	for (int i = 0; i < maxf; i++)
		T.api->auth_token(T.c, "sdt_nope", addr, "test", &s);
	ck_assert_ptr_null(s);
	int64_t block_s = (T.conf.auth_block_time + 999) / 1000;
	ck_assert_int_eq(T.api->auth_allowed(T.c, addr), -SD_EBLOCKED);
	ck_assert_int_eq(T.api->auth_blocked_for(T.c, addr), block_s);
	/* the remaining time goes down with the clock, rounded up */
	fake_ms += T.conf.auth_block_time / 2 + 1;
	int64_t left = T.api->auth_blocked_for(T.c, addr);
	ck_assert_int_ge(left, 1);
	ck_assert_int_le(left, block_s - block_s / 2);
	fake_ms += T.conf.auth_block_time;
	ck_assert_int_eq(T.api->auth_blocked_for(T.c, addr), 0);
	ck_assert_int_eq(T.api->auth_allowed(T.c, addr), 0);
	/* another address is not affected */
	ck_assert_int_eq(T.api->auth_blocked_for(T.c, "10.9.9.8"), 0);
}
END_TEST

/* ---------------------------------------------------------------- keys */

START_TEST(test_keys_list_remove)
{
	const sd_core_api *a = T.api;
	tu_user(&T, "kim");
	tu_user(&T, "lee");
	ck_assert_int_eq(a->key_add(T.c, "kim", "ssh-ed25519 " KEY_B64 " kim@laptop"), 0);
	/* the same key again: -EEXIST, no second row (issue 11 item 7) */
	ck_assert_int_eq(a->key_add(T.c, "kim", "ssh-ed25519 " KEY_B64 " other comment"), -EEXIST);
	ck_assert_int_eq(sqlq("SELECT count(*) FROM keys", NULL), 1);
	ck_assert_int_eq(a->key_add(T.c, "kim", "ssh-ed25519 " KEY2_B64), 0);
	/* another user may hold the same key */
	ck_assert_int_eq(a->key_add(T.c, "lee", "ssh-ed25519 " KEY_B64), 0);

	keys_seen ks = {0};
	ck_assert_int_eq(a->key_list(T.c, "kim", key_cb, &ks), 2);
	ck_assert_int_eq(ks.n, 2);
	ck_assert_str_eq(ks.k[0].user, "kim");
	ck_assert_str_eq(ks.k[0].type, "ssh-ed25519");
	ck_assert_str_eq(ks.k[0].fingerprint, KEY_FP); /* what ssh-keygen -l prints */
	ck_assert_str_eq(ks.k[0].comment, "kim@laptop");
	ck_assert_int_gt(ks.k[0].created, 1600000000);
	ck_assert_str_eq(ks.k[1].comment, "");
	ck_assert_int_gt(ks.k[1].id, ks.k[0].id);
	keys_seen all = {0};
	ck_assert_int_eq(a->key_list(T.c, NULL, key_cb, &all), 3);
	ck_assert_int_eq(a->key_list(T.c, "nobody", key_cb, &all), -ENOENT);

	/* a key session ends when its key is removed */
	sd_session *ks1 = NULL;
	ck_assert_int_eq(a->auth_pubkey(T.c, "kim", "ssh-ed25519", KEY_B64, "10.1.1.1", "test", 0, &ks1),
			 0);
	tu_keep(&T, ks1);
	ck_assert_int_eq(a->session_check(ks1), 0);
	/* by fingerprint; lee's copy of the same key stays */
	ck_assert_int_eq(a->key_remove(T.c, "kim", KEY_FP), 0);
	expect_dead(ks1);
	ck_assert_int_eq(a->key_remove(T.c, "kim", KEY_FP), -ENOENT);
	ck_assert_int_eq(a->auth_pubkey(T.c, "kim", "ssh-ed25519", KEY_B64, "10.1.1.1", "test",
					SD_AUTH_PROBE, NULL), -SD_EAUTH);
	ck_assert_int_eq(a->auth_pubkey(T.c, "lee", "ssh-ed25519", KEY_B64, "10.1.1.1", "test",
					SD_AUTH_PROBE, NULL), 0);
	/* by id: only the owner's id works */
	char id[32];
	snprintf(id, sizeof id, "%lld", (long long)ks.k[1].id);
	ck_assert_int_eq(a->key_remove(T.c, "lee", id), -ENOENT);
	ck_assert_int_eq(a->key_remove(T.c, "kim", id), 0);
	ck_assert_int_eq(a->key_list(T.c, "kim", NULL, NULL), 0);
	ck_assert_int_eq(a->key_remove(T.c, "kim", "999"), -ENOENT);
	ck_assert_int_eq(a->key_remove(T.c, "kim", ""), -EINVAL);
	ck_assert_int_eq(a->key_remove(T.c, "nobody", "1"), -ENOENT);
	ck_assert_int_eq(sqlq("SELECT count(*) FROM journal WHERE op='key_remove' AND user='kim'", NULL),
			 2);
}
END_TEST

/* ---------------------------------------------------------------- delete */

typedef struct names {
	int n, has_gone;
} names;

static int user_seen(void *arg, const sd_user *u)
{
	names *ns = arg;
	ns->n++;
	if (strcmp(u->name, "gone") == 0 || u->name[0] == '~')
		ns->has_gone++;
	return 0;
}

START_TEST(test_user_delete)
{
	const sd_core_api *a = T.api;
	sd_session *g = tu_user(&T, "gone");
	sd_session *k = tu_user(&T, "keep");
	tu_put(&T, g, "/a/one.txt", "only gone has this", 18);
	tu_put(&T, g, "/a/b/shared.txt", "both have this", 14);
	tu_put(&T, k, "/shared.txt", "both have this", 14);
	char tok[SD_TOKEN_MAX];
	int64_t tid = 0;
	ck_assert_int_eq(a->token_create(T.c, "gone", SD_SCOPE_RW, 0, tok, &tid), 0);
	ck_assert_int_eq(a->key_add(T.c, "gone", "ssh-ed25519 " KEY_B64), 0);
	sd_session *ts = NULL;
	ck_assert_int_eq(a->auth_token(T.c, tok, "10.1.1.1", "test", &ts), 0);
	tu_keep(&T, ts);
	long long blobs = sqlq("SELECT count(*) FROM blobs", NULL);
	sd_stats st0;
	ck_assert_int_eq(a->stats(T.c, &st0), 0);
	ck_assert_int_eq(st0.users, 2);

	ck_assert_int_eq(a->user_delete(T.c, "gone"), 0);
	/* every session of the user ends, its credentials are gone */
	expect_dead(ts);
	ck_assert_int_eq(a->session_check(g), -SD_EAUTH); /* even an admin-tool session */
	sd_session *none = NULL;
	ck_assert_int_eq(a->auth_token(T.c, tok, "10.1.1.2", "test", &none), -SD_EAUTH);
	ck_assert_int_eq(a->auth_pubkey(T.c, "gone", "ssh-ed25519", KEY_B64, "10.1.1.2", "test",
					SD_AUTH_PROBE, NULL), -SD_EAUTH);
	ck_assert_int_eq(sqlq("SELECT count(*) FROM tokens", NULL), 0);
	ck_assert_int_eq(sqlq("SELECT count(*) FROM keys", NULL), 0);
	sd_user u;
	ck_assert_int_eq(a->user_get(T.c, "gone", &u), -ENOENT);
	names ns = {0};
	ck_assert_int_eq(a->user_list(T.c, user_seen, &ns), 1);
	ck_assert_int_eq(ns.has_gone, 0);
	sd_stats st1;
	ck_assert_int_eq(a->stats(T.c, &st1), 0);
	ck_assert_int_eq(st1.users, 1);
	ck_assert_int_eq(st1.files, 1);
	/* the files went through the logical delete: rows still there, content too */
	ck_assert_int_eq(sqlq("SELECT count(*) FROM nodes WHERE deleted_at IS NOT NULL", NULL), 5);
	ck_assert_int_eq(sqlq("SELECT count(*) FROM blobs", NULL), blobs);
	ck_assert_int_eq(sqlq("SELECT count(*) FROM journal WHERE op='user_delete' AND user='gone'",
			      NULL), 1);
	ck_assert_int_eq(a->user_delete(T.c, "gone"), -ENOENT);
	ck_assert_int_eq(a->user_delete(T.c, "~deleted-1"), -ENOENT);
	/* the name is free at once, with an empty tree */
	sd_session *g2 = tu_user(&T, "gone");
	sd_stat st;
	ck_assert_int_eq(a->stat(g2, "/a", &st), -ENOENT);
	int more = 0;
	ck_assert_int_eq(a->readdir(g2, "/", NULL, 0, NULL, NULL, &more), 0);

	/* the cleaner purges the files after the retention, then the row */
	sd_gc_report rep;
	ck_assert_int_eq(a->gc_run(T.c, 0, &rep), 0); /* within deleted_retention: kept */
	ck_assert_int_eq(rep.nodes_purged, 0);
	ck_assert_int_eq(sqlq("SELECT count(*) FROM users WHERE name LIKE '~%%'", NULL), 1);
	ck_assert_int_eq(a->gc_run(T.c, 1, &rep), 0);
	ck_assert_int_eq(rep.nodes_purged, 5);
	ck_assert_int_eq(sqlq("SELECT count(*) FROM users WHERE name LIKE '~%%'", NULL), 0);
	ck_assert_int_eq(sqlq("SELECT count(*) FROM users", NULL), 2);
	/* the content keep still uses stays; the rest is gone */
	size_t len;
	char *back = tu_get(&T, k, "/shared.txt", &len);
	ck_assert_int_eq(len, 14);
	ck_assert(memcmp(back, "both have this", 14) == 0);
	free(back);
	ck_assert_int_eq(sqlq("SELECT count(*) FROM blobs WHERE refs > 0", NULL), 1);
	ck_assert_int_eq(sqlq("SELECT count(*) FROM journal WHERE op='user_reap'", NULL), 1);
}
END_TEST

/* ---------------------------------------------------------------- self-service */

typedef struct tokens_seen {
	int n;
	int64_t id[8];
	int64_t expires[8];
	int revoked[8];
} tokens_seen;

static int token_cb(void *arg, const sd_token_info *t)
{
	tokens_seen *ts = arg;
	if (ts->n < 8) {
		ts->id[ts->n] = t->id;
		ts->expires[ts->n] = t->expires;
		ts->revoked[ts->n] = t->revoked;
	}
	ts->n++;
	return 0;
}

START_TEST(test_self_password)
{
	const sd_core_api *a = T.api;
	ck_assert_int_eq(a->user_add(T.c, "pat", "first-pw", 0, 0, NULL), 0);
	sd_session *p1 = NULL, *p2 = NULL;
	ck_assert_int_eq(a->auth_password(T.c, "pat", "first-pw", "10.3.3.3", "test", &p1), 0);
	tu_keep(&T, p1);
	ck_assert_int_eq(a->auth_password(T.c, "pat", "first-pw", "10.3.3.4", "test", &p2), 0);
	tu_keep(&T, p2);
	long long lf = sqlq("SELECT count(*) FROM journal WHERE op='login_failed'", NULL);
	/* a wrong old password: refused, counted as a failed login */
	ck_assert_int_eq(a->self_password(p1, "wrong", "second-pw"), -EACCES);
	ck_assert_int_eq(sqlq("SELECT count(*) FROM journal WHERE op='login_failed'", NULL), lf + 1);
	ck_assert_int_eq(a->session_check(p1), 0);
	ck_assert_int_eq(a->self_password(p1, "first-pw", ""), -EINVAL);
	/* the right one: changed; every session of the old password ends */
	ck_assert_int_eq(a->self_password(p1, "first-pw", "second-pw"), 0);
	ck_assert_int_eq(a->session_check(p1), -SD_EAUTH);
	ck_assert_int_eq(a->session_check(p2), -SD_EAUTH);
	sd_session *s = NULL;
	ck_assert_int_eq(a->auth_password(T.c, "pat", "first-pw", "10.3.3.5", "test", &s), -SD_EAUTH);
	ck_assert_int_eq(a->auth_password(T.c, "pat", "second-pw", "10.3.3.5", "test", &s), 0);
	tu_keep(&T, s);
	ck_assert_int_eq(sqlq("SELECT count(*) FROM journal WHERE op='passwd' AND user='pat'", NULL), 1);
	/* a read-only token may not; a user without a password cannot */
	char tok[SD_TOKEN_MAX];
	ck_assert_int_eq(a->token_create(T.c, "pat", SD_SCOPE_RO, 0, tok, NULL), 0);
	sd_session *ro = NULL;
	ck_assert_int_eq(a->auth_token(T.c, tok, "10.3.3.5", "test", &ro), 0);
	tu_keep(&T, ro);
	ck_assert_int_eq(a->self_password(ro, "second-pw", "third-pw"), -EROFS);
	sd_session *nopw = tu_user(&T, "nopw");
	ck_assert_int_eq(a->self_password(nopw, "", "x"), -EACCES);
}
END_TEST

START_TEST(test_self_tokens_keys)
{
	const sd_core_api *a = T.api;
	clock_start();
	sd_session *q = tu_user(&T, "quinn"); /* an admin-tool session: may do all */
	tu_user(&T, "ruth");
	char tok[SD_TOKEN_MAX], rtok[SD_TOKEN_MAX];
	int64_t id = 0, rid = 0;
	ck_assert_int_eq(a->self_token_create(q, SD_SCOPE_RW, 3600, tok, &id), 0);
	ck_assert_int_eq(a->token_create(T.c, "ruth", SD_SCOPE_RW, 0, rtok, &rid), 0);
	tokens_seen ts = {0};
	ck_assert_int_eq(a->token_list(T.c, "quinn", token_cb, &ts), 1);
	ck_assert_int_eq(ts.id[0], id);
	ck_assert_int_eq(ts.expires[0], fake_ms / 1000 + 3600);

	/* a session of that (expiring) token cannot make what outlives it */
	sd_session *t = NULL;
	ck_assert_int_eq(a->auth_token(T.c, tok, "10.4.4.4", "test", &t), 0);
	tu_keep(&T, t);
	char tok2[SD_TOKEN_MAX];
	int64_t id2 = 0;
	ck_assert_int_eq(a->self_token_create(t, SD_SCOPE_RW, 0, tok2, &id2), -EPERM);
	ck_assert_int_eq(a->self_token_create(t, SD_SCOPE_RW, 7200, tok2, &id2), -EPERM);
	ck_assert_int_eq(a->self_token_create(t, SD_SCOPE_RO, 600, tok2, &id2), 0);
	ck_assert_int_eq(a->self_key_add(t, "ssh-ed25519 " KEY_B64), -EPERM);
	ck_assert_int_eq(a->self_token_create(t, SD_SCOPE_RW, -1, tok2, &id2), -EINVAL);
	/* revoke: only the user's own tokens */
	ck_assert_int_eq(a->self_token_revoke(t, rid), -ENOENT);
	ck_assert_int_eq(a->self_token_revoke(t, id2), 0);
	ts.n = 0;
	ck_assert_int_eq(a->token_list(T.c, "quinn", token_cb, &ts), 2);
	ck_assert_int_eq(ts.revoked[1], 1);
	/* revoking the session's own token ends it */
	ck_assert_int_eq(a->self_token_revoke(t, id), 0);
	ck_assert_int_eq(a->session_check(t), -SD_EAUTH);

	/* keys: add (a duplicate is -EEXIST), remove by fingerprint */
	ck_assert_int_eq(a->self_key_add(q, "ssh-ed25519 " KEY_B64 " q@host"), 0);
	ck_assert_int_eq(a->self_key_add(q, "ssh-ed25519 " KEY_B64), -EEXIST);
	ck_assert_int_eq(a->self_key_add(q, "not a key"), -EINVAL);
	keys_seen ks = {0};
	ck_assert_int_eq(a->key_list(T.c, "quinn", key_cb, &ks), 1);
	ck_assert_str_eq(ks.k[0].fingerprint, KEY_FP);
	ck_assert_int_eq(a->self_key_remove(q, "v639A2/G/a7bvW6h1sfqr1IElYGB5+Li7tDFzcrJYTQ"), 0);
	ck_assert_int_eq(a->key_list(T.c, "quinn", NULL, NULL), 0);
	ck_assert_int_eq(a->self_key_remove(q, KEY_FP), -ENOENT);

	/* a never-expiring token's session may make either */
	sd_session *r = NULL;
	ck_assert_int_eq(a->auth_token(T.c, rtok, "10.4.4.4", "test", &r), 0);
	tu_keep(&T, r);
	ck_assert_int_eq(a->self_key_add(r, "ssh-ed25519 " KEY2_B64), 0);
	ck_assert_int_eq(a->self_token_create(r, SD_SCOPE_RO, 0, tok2, &id2), 0);
	/* a read-only session may do none of it */
	sd_session *ro = NULL;
	ck_assert_int_eq(a->auth_token(T.c, tok2, "10.4.4.4", "test", &ro), 0);
	tu_keep(&T, ro);
	ck_assert_int_eq(a->self_token_create(ro, SD_SCOPE_RO, 60, tok, &id), -EROFS);
	ck_assert_int_eq(a->self_token_revoke(ro, id2), -EROFS);
	ck_assert_int_eq(a->self_key_add(ro, "ssh-ed25519 " KEY_B64), -EROFS);
	ck_assert_int_eq(a->self_key_remove(ro, "1"), -EROFS);
	/* an anonymous session neither */
	sd_session *an = NULL;
	ck_assert_int_eq(a->auth_anonymous(T.c, "ruth", "10.4.4.4", "test", &an), 0);
	tu_keep(&T, an);
	ck_assert_int_eq(a->self_key_add(an, "ssh-ed25519 " KEY_B64), -EROFS);
}
END_TEST

/* ---------------------------------------------------------------- fsinfo */

START_TEST(test_fsinfo_free_avail)
{
	/* memstore reports a reserve: free (f_bfree) > avail (f_bavail) */
	tu_core t;
	tu_core_prepare(&t);
	memstore *ms = memstore_new();
	tu_core_open_store(&t, 0, &ms->base);
	int64_t id;
	ck_assert_int_eq(t.api->user_add(t.c, "fs", NULL, 0, 0, &id), 0);
	sd_session *s = tu_session(&t, "fs");
	sd_fsinfo fi;
	ck_assert_int_eq(t.api->fsinfo(s, &fi), 0);
	ck_assert_uint_eq(fi.disk_total, 1ull << 30);
	ck_assert_uint_eq(fi.disk_avail, 9ull << 26);
	ck_assert_uint_eq(fi.disk_free, 10ull << 26);
	tu_core_close(&t);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("account");
	TCase *tc = tcase_create("account");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_blocked_for);
	tcase_add_test(tc, test_keys_list_remove);
	tcase_add_test(tc, test_user_delete);
	tcase_add_test(tc, test_self_password);
	tcase_add_test(tc, test_self_tokens_keys);
	suite_add_tcase(s, tc);
	tc = tcase_create("fsinfo");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_fsinfo_free_avail);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(suite());
}
