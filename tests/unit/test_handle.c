/* test_handle.c - handles and sessions: the engine's bounded handle table
 * (ids bound to their session, stale and forged ids refused, a full table
 * refused), open modes across sessions, creates visible at commit,
 * abandon, attributes kept for the commit, and credentials re-checked on
 * sessions already open. */
#include <pthread.h>

#include "testutil.h"
#include "util/util.h"

static sd_stat must_stat(tu_core *t, sd_session *s, const char *p)
{
	sd_stat st;
	int r = t->api->stat(s, p, &st);
	ck_assert_msg(r == 0, "stat %s: %s", p, t->api->strerror(r));
	return st;
}

static int names_cb(void *arg, const sd_dirent *e)
{
	(void)e;
	(*(int *)arg)++;
	return 0;
}

START_TEST(test_ids)
{
	tu_core t;
	tu_core_open(&t, 0);
	sd_session *a = tu_user(&t, "alice");
	sd_session *a2 = tu_session(&t, "alice"); /* same user, other session */
	sd_session *b = tu_user(&t, "bob");
	tu_put(&t, a, "/f", "hello", 5);
	sd_handle h;
	sd_stat st;
	ck_assert_int_eq(t.api->handle_open(a, "/f", SD_O_READ, 0, &h, &st), 0);
	ck_assert_uint_ne(h, 0);
	ck_assert_uint_eq(st.size, 5);
	char buf[8];
	ck_assert_int_eq(t.api->handle_pread(a, h, buf, 8, 0), 5);
	/* another session, even of the same user, cannot use it */
	ck_assert_int_eq(t.api->handle_pread(a2, h, buf, 8, 0), -EBADF);
	ck_assert_int_eq(t.api->handle_pread(b, h, buf, 8, 0), -EBADF);
	ck_assert_int_eq(t.api->handle_close(b, h), -EBADF);
	/* forged ids */
	ck_assert_int_eq(t.api->handle_pread(a, 0, buf, 8, 0), -EBADF);
	ck_assert_int_eq(t.api->handle_pread(a, h ^ (1ull << 40), buf, 8, 0), -EBADF);
	ck_assert_int_eq(t.api->handle_pread(a, h + 1, buf, 8, 0), -EBADF);
	ck_assert_int_eq(t.api->handle_pread(a, h | 0xffffffffull, buf, 8, 0), -EBADF);
	sd_session_info si;
	ck_assert_int_eq(t.api->session_info(a, &si), 0);
	ck_assert_int_eq(si.handles, 1);
	ck_assert_int_eq(t.api->handle_close(a, h), 0);
	ck_assert_int_eq(t.api->session_info(a, &si), 0);
	ck_assert_int_eq(si.handles, 0);
	/* a stale id stays dead even when its slot is reused */
	ck_assert_int_eq(t.api->handle_pread(a, h, buf, 8, 0), -EBADF);
	sd_handle h2;
	ck_assert_int_eq(t.api->handle_open(a, "/f", SD_O_READ, 0, &h2, NULL), 0);
	ck_assert_uint_ne(h2, h);
	ck_assert_int_eq(t.api->handle_pread(a, h, buf, 8, 0), -EBADF);
	ck_assert_int_eq(t.api->handle_close(a, h), -EBADF);
	ck_assert_int_eq(t.api->handle_pread(a, h2, buf, 8, 0), 5);
	ck_assert_int_eq(t.api->handle_abandon(a, h2), 0);
	ck_assert_int_eq(t.api->handle_abandon(a, h2), -EBADF);
	tu_core_close(&t);
}
END_TEST

START_TEST(test_table_full)
{
	tu_core t;
	tu_core_prepare(&t);
	t.conf.max_handles = 16;
	tu_core_reopen(&t, 0);
	sd_session *a = tu_user(&t, "alice");
	tu_put(&t, a, "/f", "x", 1);
	sd_handle hs[16], extra;
	for (int i = 0; i < 16; i++)
		ck_assert_int_eq(t.api->handle_open(a, "/f", SD_O_READ, 0, &hs[i], NULL), 0);
	ck_assert_int_eq(t.api->handle_open(a, "/f", SD_O_READ, 0, &extra, NULL), -EMFILE);
	/* a refused create leaves nothing behind */
	ck_assert_int_eq(t.api->handle_open(a, "/new", SD_O_WRITE | SD_O_CREAT, 0644, &extra, NULL),
			 -EMFILE);
	sd_stat st;
	ck_assert_int_eq(t.api->stat(a, "/new", &st), -ENOENT);
	ck_assert_int_eq(t.api->handle_close(a, hs[3]), 0);
	ck_assert_int_eq(t.api->handle_open(a, "/new", SD_O_WRITE | SD_O_CREAT, 0644, &hs[3], NULL), 0);
	ck_assert_int_eq(t.api->handle_close(a, hs[3]), 0);
	ck_assert_int_eq(t.api->stat(a, "/new", &st), 0);
	tu_core_close(&t); /* closing the session abandons the other 15 */
}
END_TEST

START_TEST(test_open_modes)
{
	tu_core t;
	tu_core_open(&t, 0);
	sd_session *a = tu_user(&t, "alice");
	sd_session *a2 = tu_session(&t, "alice");
	tu_put(&t, a, "/f", "base", 4);
	sd_handle ha, hb;
	/* exclusive blocks every other open, from any session */
	ck_assert_int_eq(t.api->handle_open(a, "/f", SD_O_READ | SD_O_WRITE | SD_O_EXCLUSIVE, 0, &ha,
					    NULL), 0);
	ck_assert_int_eq(t.api->handle_open(a2, "/f", SD_O_READ, 0, &hb, NULL), -EBUSY);
	ck_assert_int_eq(t.api->handle_open(a, "/f", SD_O_READ, 0, &hb, NULL), -EBUSY);
	unsigned os;
	ck_assert_int_eq(t.api->open_state(a2, "/f", &os), 0);
	ck_assert_uint_eq(os, SD_OPEN_EXCLUSIVE | SD_OPEN_WRITERS | SD_OPEN_READERS);
	ck_assert_int_eq(t.api->open_state(a2, "/nope", &os), 0);
	ck_assert_uint_eq(os, 0);
	ck_assert_int_eq(t.api->handle_close(a, ha), 0);
	/* shared-read: readers yes, writers no, while it is open */
	ck_assert_int_eq(t.api->handle_open(a, "/f", SD_O_READ | SD_O_SHARE_READ, 0, &ha, NULL), 0);
	ck_assert_int_eq(t.api->handle_open(a2, "/f", SD_O_READ, 0, &hb, NULL), 0);
	ck_assert_int_eq(t.api->handle_close(a2, hb), 0);
	ck_assert_int_eq(t.api->handle_open(a2, "/f", SD_O_WRITE, 0, &hb, NULL), -EBUSY);
	ck_assert_int_eq(t.api->handle_open(a2, "/f", SD_O_READ | SD_O_EXCLUSIVE, 0, &hb, NULL),
			 -EBUSY);
	/* a shared-read open cannot write */
	ck_assert_int_eq(t.api->handle_open(a2, "/f", SD_O_WRITE | SD_O_SHARE_READ, 0, &hb, NULL),
			 -EINVAL);
	ck_assert_int_eq(t.api->handle_close(a, ha), 0);
	/* shared-write: two writers, last commit wins, each reads its own */
	ck_assert_int_eq(t.api->handle_open(a, "/f", SD_O_READ | SD_O_WRITE, 0, &ha, NULL), 0);
	ck_assert_int_eq(t.api->handle_open(a2, "/f", SD_O_READ | SD_O_WRITE, 0, &hb, NULL), 0);
	ck_assert_int_eq(t.api->handle_pwrite(a, ha, "AAAA", 4, 0), 4);
	ck_assert_int_eq(t.api->handle_pwrite(a2, hb, "BB", 2, 0), 2);
	char buf[8];
	ck_assert_int_eq(t.api->handle_pread(a2, hb, buf, 8, 0), 4);
	ck_assert(memcmp(buf, "BBse", 4) == 0);
	ck_assert_int_eq(t.api->handle_close(a, ha), 0);
	ck_assert_int_eq(t.api->handle_close(a2, hb), 0);
	size_t len;
	char *got = tu_get(&t, a, "/f", &len);
	ck_assert(len == 4 && memcmp(got, "BBse", 4) == 0);
	free(got);
	ck_assert_int_eq(must_stat(&t, a, "/f").versions, 3);
	tu_core_close(&t);
}
END_TEST

START_TEST(test_create_visible_at_commit)
{
	tu_core t;
	tu_core_open(&t, 0);
	sd_session *a = tu_user(&t, "alice");
	sd_session *a2 = tu_session(&t, "alice");
	ck_assert_int_eq(t.api->mkdir(a, "/d", 0755, 0), 0);
	sd_handle h, h2;
	sd_stat st;
	ck_assert_int_eq(t.api->handle_open(a, "/d/new", SD_O_WRITE | SD_O_CREAT | SD_O_EXCL, 0600,
					    &h, &st), 0);
	ck_assert_str_eq(st.sha256, "");
	ck_assert_int_eq(t.api->handle_pwrite(a, h, "data", 4, 0), 4);
	/* invisible to stat, readdir and readers, from any session */
	ck_assert_int_eq(t.api->stat(a, "/d/new", &st), -ENOENT);
	int n = 0;
	ck_assert_int_eq(t.api->readdir(a2, "/d", NULL, 0, names_cb, &n, NULL), 0);
	ck_assert_int_eq(n, 0);
	sd_reader *rd;
	ck_assert_int_eq(t.api->open_read(a2, "/d/new", &rd, &st), -ENOENT);
	/* a second exclusive create of the same path is refused now */
	ck_assert_int_eq(t.api->handle_open(a2, "/d/new", SD_O_WRITE | SD_O_CREAT | SD_O_EXCL, 0,
					    &h2, NULL), -EEXIST);
	/* the handle sees its own file */
	ck_assert_int_eq(t.api->handle_fstat(a, h, &st), 0);
	ck_assert_uint_eq(st.size, 4);
	ck_assert_uint_eq(st.mode, 0600);
	ck_assert_int_eq(t.api->handle_sync(a, h), 0);
	st = must_stat(&t, a2, "/d/new");
	ck_assert_uint_eq(st.size, 4);
	ck_assert_uint_eq(st.mode, 0600);
	ck_assert_int_eq(t.api->handle_pwrite(a, h, "!", 1, 4), 1);
	ck_assert_int_eq(t.api->handle_close(a, h), 0);
	ck_assert_uint_eq(must_stat(&t, a2, "/d/new").size, 5);
	ck_assert_int_eq(must_stat(&t, a2, "/d/new").versions, 2);

	/* open(O_CREAT) + close makes an empty file */
	ck_assert_int_eq(t.api->handle_open(a, "/d/empty", SD_O_WRITE | SD_O_CREAT, 0, &h, NULL), 0);
	ck_assert_int_eq(t.api->stat(a, "/d/empty", &st), -ENOENT);
	ck_assert_int_eq(t.api->handle_close(a, h), 0);
	st = must_stat(&t, a, "/d/empty");
	ck_assert_uint_eq(st.size, 0);
	ck_assert_uint_eq(st.mode, 0644);

	/* a create needs its parent directory */
	ck_assert_int_eq(t.api->handle_open(a, "/nodir/x", SD_O_WRITE | SD_O_CREAT, 0, &h, NULL),
			 -ENOENT);
	ck_assert_int_eq(t.api->handle_open(a, "/d/new/x", SD_O_WRITE | SD_O_CREAT, 0, &h, NULL),
			 -ENOTDIR);
	ck_assert_int_eq(t.api->handle_open(a, "/d", SD_O_READ, 0, &h, NULL), -EISDIR);

	/* EXCL checked again at commit: someone else created it meanwhile */
	ck_assert_int_eq(t.api->handle_open(a, "/d/race", SD_O_WRITE | SD_O_CREAT | SD_O_EXCL, 0, &h,
					    NULL), 0);
	tu_put(&t, a2, "/d/race", "theirs", 6);
	ck_assert_int_eq(t.api->handle_pwrite(a, h, "mine", 4, 0), 4);
	ck_assert_int_eq(t.api->handle_close(a, h), -EEXIST);
	size_t len;
	char *got = tu_get(&t, a, "/d/race", &len);
	ck_assert(len == 6 && memcmp(got, "theirs", 6) == 0);
	free(got);
	ck_assert_int_eq(tu_temp_files(&t), 0);
	tu_core_close(&t);
}
END_TEST

START_TEST(test_abandon)
{
	tu_core t;
	tu_core_open(&t, 0);
	sd_session *a = tu_user(&t, "alice");
	tu_put(&t, a, "/keep", "original", 8);
	sd_handle h;
	/* writes on an existing file, abandoned: the old version stays */
	ck_assert_int_eq(t.api->handle_open(a, "/keep", SD_O_WRITE | SD_O_TRUNC, 0, &h, NULL), 0);
	ck_assert_int_eq(t.api->handle_pwrite(a, h, "partial", 7, 0), 7);
	ck_assert_int_eq(t.api->handle_abandon(a, h), 0);
	size_t len;
	char *got = tu_get(&t, a, "/keep", &len);
	ck_assert(len == 8 && memcmp(got, "original", 8) == 0);
	free(got);
	ck_assert_int_eq(must_stat(&t, a, "/keep").versions, 1);
	/* a create abandoned leaves nothing */
	ck_assert_int_eq(t.api->handle_open(a, "/gone", SD_O_WRITE | SD_O_CREAT, 0, &h, NULL), 0);
	ck_assert_int_eq(t.api->handle_pwrite(a, h, "never", 5, 0), 5);
	ck_assert_int_eq(t.api->handle_abandon(a, h), 0);
	sd_stat st;
	ck_assert_int_eq(t.api->stat(a, "/gone", &st), -ENOENT);
	/* closing a session abandons what it left open, and frees its open
	 * modes for others */
	sd_session *tmp = NULL;
	ck_assert_int_eq(sd_core_session(t.c, "alice", &tmp), 0);
	ck_assert_int_eq(t.api->handle_open(tmp, "/keep", SD_O_WRITE | SD_O_EXCLUSIVE, 0, &h, NULL), 0);
	ck_assert_int_eq(t.api->handle_pwrite(tmp, h, "XXXXXXXX", 8, 0), 8);
	ck_assert_int_eq(t.api->handle_open(tmp, "/gone2", SD_O_WRITE | SD_O_CREAT, 0, &h, NULL), 0);
	t.api->session_close(tmp);
	ck_assert_int_eq(t.api->stat(a, "/gone2", &st), -ENOENT);
	got = tu_get(&t, a, "/keep", &len);
	ck_assert(len == 8 && memcmp(got, "original", 8) == 0);
	free(got);
	ck_assert_int_eq(t.api->handle_open(a, "/keep", SD_O_WRITE | SD_O_EXCLUSIVE, 0, &h, NULL), 0);
	ck_assert_int_eq(t.api->handle_close(a, h), 0);
	ck_assert_int_eq(tu_temp_files(&t), 0);
	tu_core_close(&t);
}
END_TEST

START_TEST(test_setattr)
{
	tu_core t;
	tu_core_open(&t, 0);
	sd_session *a = tu_user(&t, "alice");
	sd_handle h;
	sd_stat st;
	/* write, set mtime and mode, close: the commit keeps them */
	ck_assert_int_eq(t.api->handle_open(a, "/f", SD_O_WRITE | SD_O_CREAT | SD_O_TRUNC, 0644, &h,
					    NULL), 0);
	ck_assert_int_eq(t.api->handle_pwrite(a, h, "abc", 3, 0), 3);
	ck_assert_int_eq(t.api->handle_setattr(a, h, SD_ATTR_MTIME | SD_ATTR_MODE, 0600,
					       1000000000), 0);
	ck_assert_int_eq(t.api->handle_fstat(a, h, &st), 0);
	ck_assert_int_eq(st.mtime, 1000000000);
	ck_assert_int_eq(t.api->handle_close(a, h), 0);
	st = must_stat(&t, a, "/f");
	ck_assert_int_eq(st.mtime, 1000000000);
	ck_assert_uint_eq(st.mode, 0600);
	/* an existing file rewritten keeps the new attributes too */
	ck_assert_int_eq(t.api->handle_open(a, "/f", SD_O_WRITE, 0, &h, NULL), 0);
	ck_assert_int_eq(t.api->handle_pwrite(a, h, "Z", 1, 0), 1);
	ck_assert_int_eq(t.api->handle_setattr(a, h, SD_ATTR_MTIME | SD_ATTR_MODE, 0640,
					       1100000000), 0);
	ck_assert_int_eq(t.api->handle_close(a, h), 0);
	st = must_stat(&t, a, "/f");
	ck_assert_int_eq(st.mtime, 1100000000);
	ck_assert_uint_eq(st.mode, 0640);
	ck_assert_uint_eq(st.size, 3);
	/* on a clean handle they apply at once */
	ck_assert_int_eq(t.api->handle_open(a, "/f", SD_O_READ, 0, &h, NULL), 0);
	ck_assert_int_eq(t.api->handle_setattr(a, h, SD_ATTR_MTIME, 0, 1200000000), 0);
	ck_assert_int_eq(must_stat(&t, a, "/f").mtime, 1200000000);
	ck_assert_int_eq(t.api->handle_setattr(a, h, 0x80, 0, 0), -EINVAL);
	ck_assert_int_eq(t.api->handle_close(a, h), 0);
	tu_core_close(&t);
}
END_TEST

/* Credentials are re-checked on sessions already open: disabling a user,
 * changing the password a session logged in with, or revoking its token
 * ends the session; its handles commit nothing more. */
START_TEST(test_recheck)
{
	tu_core t;
	tu_core_open(&t, 0);
	int64_t id;
	ck_assert_int_eq(t.api->user_add(t.c, "pat", "correct horse", 0, 0, &id), 0);
	sd_session *pw = NULL, *tok = NULL, *other = NULL;
	ck_assert_int_eq(t.api->auth_password(t.c, "pat", "correct horse", "10.0.0.1", "test", &pw), 0);
	tu_keep(&t, pw);
	sd_session_info si;
	ck_assert_int_eq(t.api->session_info(pw, &si), 0);
	ck_assert_int_eq(si.uid, id);
	ck_assert_str_eq(si.proto, "test");
	ck_assert_str_eq(si.addr, "10.0.0.1");
	char token[SD_TOKEN_MAX];
	int64_t tid;
	ck_assert_int_eq(t.api->token_create(t.c, "pat", SD_SCOPE_RW, 0, token, &tid), 0);
	ck_assert_int_eq(t.api->auth_token(t.c, token, "10.0.0.2", "test", &tok), 0);
	tu_keep(&t, tok);
	ck_assert_int_eq(t.api->auth_token(t.c, token, "10.0.0.3", "test", &other), 0);
	tu_keep(&t, other);
	tu_put(&t, pw, "/f", "v1", 2);

	/* a changed password ends the password session only */
	sd_handle h;
	ck_assert_int_eq(t.api->handle_open(pw, "/f", SD_O_WRITE, 0, &h, NULL), 0);
	ck_assert_int_eq(t.api->handle_pwrite(pw, h, "XX", 2, 0), 2);
	ck_assert_int_eq(t.api->user_set_password(t.c, "pat", "battery staple"), 0);
	sd_stat st;
	ck_assert_int_eq(t.api->stat(pw, "/f", &st), -SD_EAUTH);
	ck_assert_int_eq(t.api->session_check(pw), -SD_EAUTH);
	ck_assert_int_eq(t.api->handle_close(pw, h), -SD_EAUTH);
	size_t len;
	char *got = tu_get(&t, tok, "/f", &len); /* the token session lives on */
	ck_assert(len == 2 && memcmp(got, "v1", 2) == 0);
	free(got);

	/* a revoked token ends the sessions it made */
	ck_assert_int_eq(t.api->token_revoke(t.c, tid), 0);
	ck_assert_int_eq(t.api->stat(tok, "/f", &st), -SD_EAUTH);
	ck_assert_int_eq(t.api->stat(other, "/f", &st), -SD_EAUTH);

	/* a disabled user's sessions end; enabling again does not revive them */
	sd_session *pw2 = NULL;
	ck_assert_int_eq(t.api->auth_password(t.c, "pat", "battery staple", "", "test", &pw2), 0);
	tu_keep(&t, pw2);
	ck_assert_int_eq(t.api->stat(pw2, "/f", &st), 0);
	ck_assert_int_eq(t.api->user_set_disabled(t.c, "pat", 1), 0);
	ck_assert_int_eq(t.api->stat(pw2, "/f", &st), -SD_EAUTH);
	ck_assert_int_eq(t.api->user_set_disabled(t.c, "pat", 0), 0);
	ck_assert_int_eq(t.api->stat(pw2, "/f", &st), -SD_EAUTH);
	ck_assert_int_eq(t.api->session_info(pw2, &si), -SD_EAUTH);
	tu_core_close(&t);
}
END_TEST

/* A read-only token's session reads, and every write path refuses. */
START_TEST(test_readonly_session)
{
	tu_core t;
	tu_core_open(&t, 0);
	sd_session *rw = tu_user(&t, "rita");
	tu_put(&t, rw, "/f", "data", 4);
	char token[SD_TOKEN_MAX];
	int64_t tid;
	ck_assert_int_eq(t.api->token_create(t.c, "rita", SD_SCOPE_RO, 0, token, &tid), 0);
	sd_session *ro = NULL;
	ck_assert_int_eq(t.api->auth_token(t.c, token, "", "test", &ro), 0);
	tu_keep(&t, ro);
	sd_session_info si;
	ck_assert_int_eq(t.api->session_info(ro, &si), 0);
	ck_assert_uint_eq(si.flags & SD_USER_READONLY, SD_USER_READONLY);
	size_t len;
	char *got = tu_get(&t, ro, "/f", &len);
	ck_assert_uint_eq(len, 4);
	free(got);
	sd_handle h;
	ck_assert_int_eq(t.api->handle_open(ro, "/f", SD_O_WRITE, 0, &h, NULL), -EROFS);
	ck_assert_int_eq(t.api->handle_open(ro, "/n", SD_O_CREAT | SD_O_WRITE, 0, &h, NULL), -EROFS);
	ck_assert_int_eq(t.api->handle_open(ro, "/f", SD_O_READ, 0, &h, NULL), 0);
	ck_assert_int_eq(t.api->handle_truncate(ro, h, 0), -EBADF);
	ck_assert_int_eq(t.api->handle_close(ro, h), 0);
	sd_upload *up;
	ck_assert_int_eq(t.api->upload_begin(ro, "/n", 0, 0, 0644, &up), -EROFS);
	ck_assert_int_eq(t.api->mkdir(ro, "/d", 0755, 0), -EROFS);
	ck_assert_int_eq(t.api->unlink(ro, "/f", 0), -EROFS);
	ck_assert_int_eq(t.api->rename(ro, "/f", "/g", 0), -EROFS);
	ck_assert_int_eq(t.api->chmod(ro, "/f", 0600), -EROFS);
	tu_core_close(&t);
}
END_TEST

static int64_t fake_now;
static int64_t fake_clock(void *arg)
{
	(void)arg;
	return fake_now;
}

/* Detached handles: the user's, not the session's; limited per user;
 * abandoned (with a journal row) when idle too long. */
START_TEST(test_detached)
{
	tu_core t;
	tu_core_prepare(&t);
	t.conf.max_handles_per_user = 3;
	t.conf.handle_idle_timeout = 60000;
	tu_core_reopen(&t, 0);
	fake_now = sd_time_ms();
	sd__core_set_clock(t.c, fake_clock, NULL);
	sd_session *a1 = tu_user(&t, "alice");
	sd_session *b = tu_user(&t, "bob");
	tu_put(&t, a1, "/f", "0123456789", 10);
	sd_session *req1 = NULL;
	ck_assert_int_eq(sd_core_session(t.c, "alice", &req1), 0);
	sd_handle h;
	ck_assert_int_eq(t.api->handle_open(req1, "/f", SD_O_READ | SD_O_WRITE | SD_O_DETACHED, 0,
					    &h, NULL), 0);
	ck_assert_int_eq(t.api->handle_pwrite(req1, h, "AB", 2, 0), 2);
	/* the request's session ends; the handle lives on */
	t.api->session_close(req1);
	sd_session *req2 = tu_session(&t, "alice");
	char buf[16];
	ck_assert_int_eq(t.api->handle_pread(req2, h, buf, 16, 0), 10);
	ck_assert(memcmp(buf, "AB23456789", 10) == 0);
	ck_assert_int_eq(t.api->handle_pread(a1, h, buf, 2, 0), 2); /* any session of alice */
	ck_assert_int_eq(t.api->handle_pread(b, h, buf, 2, 0), -EBADF); /* not bob's */
	ck_assert_int_eq(t.api->handle_close(b, h), -EBADF);
	sd_session_info si;
	ck_assert_int_eq(t.api->session_info(req2, &si), 0);
	ck_assert_int_eq(si.handles, 0); /* not counted in a session */
	/* per-user limit: 3 detached handles, session handles do not count */
	sd_handle h2, h3, h4, hs;
	ck_assert_int_eq(t.api->handle_open(req2, "/f", SD_O_READ | SD_O_DETACHED, 0, &h2, NULL), 0);
	ck_assert_int_eq(t.api->handle_open(req2, "/f", SD_O_READ | SD_O_DETACHED, 0, &h3, NULL), 0);
	ck_assert_int_eq(t.api->handle_open(req2, "/f", SD_O_READ | SD_O_DETACHED, 0, &h4, NULL),
			 -EMFILE);
	ck_assert_int_eq(t.api->handle_open(req2, "/f", SD_O_READ, 0, &hs, NULL), 0);
	ck_assert_int_eq(t.api->handle_open(b, "/f", SD_O_READ | SD_O_DETACHED, 0, &h4, NULL),
			 -ENOENT); /* bob has no /f, but his own quota of handles is free */
	tu_put(&t, b, "/f", "bob", 3);
	ck_assert_int_eq(t.api->handle_open(b, "/f", SD_O_READ | SD_O_DETACHED, 0, &h4, NULL), 0);
	ck_assert_int_eq(t.api->handle_close(req2, h3), 0);
	ck_assert_int_eq(t.api->handle_close(req2, hs), 0);
	/* idle past the timeout: abandoned, previous version kept, journalled;
	 * a handle used recently stays */
	fake_now += 50000;
	ck_assert_int_eq(t.api->handle_pread(req2, h2, buf, 1, 0), 1);
	fake_now += 20000;
	ck_assert_int_eq(sd__core_reap_handles(t.c), 2); /* h (alice, dirty) and h4 (bob) */
	ck_assert_int_eq(t.api->handle_pread(req2, h, buf, 2, 0), -EBADF);
	ck_assert_int_eq(t.api->handle_pread(req2, h2, buf, 1, 0), 1);
	size_t len;
	char *got = tu_get(&t, req2, "/f", &len);
	ck_assert(len == 10 && memcmp(got, "0123456789", 10) == 0);
	free(got);
	ck_assert_int_eq(tu_sql_int(&t, "SELECT count(*) FROM journal WHERE op='handle_expired' "
					"AND path='/f'"), 2);
	ck_assert_int_eq(t.api->handle_close(req2, h2), 0);
	tu_core_close(&t);
}
END_TEST

typedef struct writer_arg {
	tu_core *t;
	sd_handle h;
	int id;
} writer_arg;

static void *writer_main(void *p)
{
	writer_arg *w = p;
	sd_session *s = NULL;
	if (sd_core_session(w->t->c, "alice", &s) != 0)
		return (void *)1;
	char blk[512];
	memset(blk, 'a' + w->id, sizeof blk);
	intptr_t bad = 0;
	for (int i = 0; i < 200; i++) {
		/* each thread owns every other block */
		uint64_t off = (uint64_t)(i * 2 + w->id) * sizeof blk;
		if (w->t->api->handle_pwrite(s, w->h, blk, sizeof blk, off) != (ssize_t)sizeof blk)
			bad = 1;
		char back[512];
		if (w->t->api->handle_pread(s, w->h, back, sizeof back, off) != (ssize_t)sizeof back ||
		    memcmp(back, blk, sizeof blk) != 0)
			bad = 1;
	}
	w->t->api->session_close(s);
	return (void *)bad;
}

/* handle_info: flags as opened (share mode, implied write, detached),
 * dirtiness, path and idle timeout; bound like every handle call. */
START_TEST(test_handle_info)
{
	tu_core t;
	tu_core_prepare(&t);
	t.conf.handle_idle_timeout = 7000;
	tu_core_reopen(&t, 0);
	sd_session *a = tu_user(&t, "alice");
	sd_session *b = tu_user(&t, "bob");
	tu_put(&t, a, "/f", "0123456789", 10);
	sd_handle h, hn, hs;
	sd_handle_info hi;
	ck_assert_int_eq(t.api->handle_open(a, "/./f", SD_O_READ | SD_O_DETACHED, 0, &h, NULL), 0);
	ck_assert_int_eq(t.api->handle_info(a, h, &hi), 0);
	ck_assert_uint_eq(hi.flags, SD_O_READ | SD_O_SHARE_WRITE | SD_O_DETACHED);
	ck_assert_int_eq(hi.dirty, 0);
	ck_assert_int_eq(hi.idle_timeout, 7000);
	ck_assert_str_eq(hi.path, "/f");
	ck_assert_int_eq(t.api->handle_info(b, h, &hi), -EBADF); /* not bob's */
	/* a create is dirty until its commit; truncate implies write */
	ck_assert_int_eq(t.api->handle_open(a, "/n", SD_O_CREAT | SD_O_TRUNC | SD_O_EXCLUSIVE |
					    SD_O_DETACHED, 0600, &hn, NULL), 0);
	ck_assert_int_eq(t.api->handle_info(a, hn, &hi), 0);
	ck_assert_uint_eq(hi.flags, SD_O_CREAT | SD_O_TRUNC | SD_O_WRITE | SD_O_EXCLUSIVE |
					SD_O_DETACHED);
	ck_assert_int_eq(hi.dirty, 1);
	ck_assert_int_eq(t.api->handle_sync(a, hn), 0);
	ck_assert_int_eq(t.api->handle_info(a, hn, &hi), 0);
	ck_assert_int_eq(hi.dirty, 0);
	ck_assert_int_eq(t.api->handle_pwrite(a, hn, "x", 1, 5), 1);
	ck_assert_int_eq(t.api->handle_info(a, hn, &hi), 0);
	ck_assert_int_eq(hi.dirty, 1);
	/* a session's handle has no idle timeout */
	ck_assert_int_eq(t.api->handle_open(a, "/f", SD_O_READ | SD_O_SHARE_READ, 0, &hs, NULL), 0);
	ck_assert_int_eq(t.api->handle_info(a, hs, &hi), 0);
	ck_assert_uint_eq(hi.flags, SD_O_READ | SD_O_SHARE_READ);
	ck_assert_int_eq(hi.idle_timeout, 0);
	ck_assert_int_eq(t.api->handle_close(a, hs), 0);
	ck_assert_int_eq(t.api->handle_info(a, hs, &hi), -EBADF); /* stale */
	ck_assert_int_eq(t.api->handle_close(a, hn), 0);
	ck_assert_int_eq(t.api->handle_close(a, h), 0);
	tu_core_close(&t);
}
END_TEST

/* Two requests using one detached handle at once are serialised. */
/* handle_sync_if: a commit on a condition. Two writers of one file: the
 * second commits only on the version it started from; a failed condition
 * keeps its unsaved writes (a later sync on the new version goes through),
 * a gone file fails it, and a bad address is refused. */
START_TEST(test_sync_if)
{
	tu_core t;
	tu_core_open(&t, 0);
	sd_session *a = tu_user(&t, "alice");
	tu_put(&t, a, "/c", "base", 4);
	char base[SD_SHA256_HEX];
	sd_stat st = must_stat(&t, a, "/c");
	memcpy(base, st.sha256, sizeof base);
	sd_handle h1, h2;
	unsigned fl = SD_O_READ | SD_O_WRITE | SD_O_SHARE_WRITE;
	ck_assert_int_eq(t.api->handle_open(a, "/c", fl, 0, &h1, NULL), 0);
	ck_assert_int_eq(t.api->handle_open(a, "/c", fl, 0, &h2, NULL), 0);
	ck_assert_int_eq(t.api->handle_pwrite(a, h1, "ONE!", 4, 0), 4);
	ck_assert_int_eq(t.api->handle_pwrite(a, h2, "TWO!", 4, 0), 4);
	/* a clean check and a matching one pass; h1 commits */
	ck_assert_int_eq(t.api->handle_sync_if(a, h1, base), 0);
	st = must_stat(&t, a, "/c");
	ck_assert_int_eq(st.versions, 2);
	char one[SD_SHA256_HEX];
	memcpy(one, st.sha256, sizeof one);
	ck_assert_str_ne(one, base);
	/* h2 started from base: refused, nothing committed, writes kept */
	ck_assert_int_eq(t.api->handle_sync_if(a, h2, base), -SD_ECHANGED);
	st = must_stat(&t, a, "/c");
	ck_assert_int_eq(st.versions, 2);
	ck_assert_str_eq(st.sha256, one);
	sd_handle_info hi;
	ck_assert_int_eq(t.api->handle_info(a, h2, &hi), 0);
	ck_assert_int_eq(hi.dirty, 1);
	char buf[8] = {0};
	ck_assert_int_eq(t.api->handle_pread(a, h2, buf, 4, 0), 4);
	ck_assert_str_eq(buf, "TWO!");
	/* on the version there now it goes through */
	ck_assert_int_eq(t.api->handle_sync_if(a, h2, one), 0);
	st = must_stat(&t, a, "/c");
	ck_assert_int_eq(st.versions, 3);
	/* a clean handle is checked too */
	ck_assert_int_eq(t.api->handle_sync_if(a, h1, one), -SD_ECHANGED);
	ck_assert_int_eq(t.api->handle_sync_if(a, h1, st.sha256), 0);
	/* bad addresses */
	ck_assert_int_eq(t.api->handle_sync_if(a, h1, "abc"), -EINVAL);
	ck_assert_int_eq(t.api->handle_sync_if(a, h1, NULL), -EINVAL);
	/* the file gone: refused */
	ck_assert_int_eq(t.api->handle_pwrite(a, h1, "x", 1, 0), 1);
	ck_assert_int_eq(t.api->unlink(a, "/c", 0), 0);
	ck_assert_int_eq(t.api->handle_sync_if(a, h1, st.sha256), -SD_ECHANGED);
	ck_assert_int_eq(t.api->stat(a, "/c", &st), -ENOENT);
	ck_assert_int_eq(t.api->handle_abandon(a, h1), 0);
	ck_assert_int_eq(t.api->handle_abandon(a, h2), 0);
	tu_core_close(&t);
}
END_TEST

START_TEST(test_detached_concurrent)
{
	tu_core t;
	tu_core_open(&t, 0);
	sd_session *a = tu_user(&t, "alice");
	sd_handle h;
	ck_assert_int_eq(t.api->handle_open(a, "/c", SD_O_READ | SD_O_WRITE | SD_O_CREAT |
					    SD_O_DETACHED, 0644, &h, NULL), 0);
	pthread_t th[2];
	writer_arg wa[2] = {{&t, h, 0}, {&t, h, 1}};
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, writer_main, &wa[i]), 0);
	for (int i = 0; i < 2; i++) {
		void *rv;
		pthread_join(th[i], &rv);
		ck_assert_ptr_null(rv);
	}
	ck_assert_int_eq(t.api->handle_close(a, h), 0);
	size_t len;
	char *got = tu_get(&t, a, "/c", &len);
	ck_assert_uint_eq(len, 400 * 512);
	for (size_t i = 0; i < len; i++)
		ck_assert_int_eq(got[i], 'a' + (int)((i / 512) % 2));
	free(got);
	tu_core_close(&t);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("handle");
	TCase *tc = tcase_create("handle");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_ids);
	tcase_add_test(tc, test_table_full);
	tcase_add_test(tc, test_open_modes);
	tcase_add_test(tc, test_create_visible_at_commit);
	tcase_add_test(tc, test_abandon);
	tcase_add_test(tc, test_setattr);
	tcase_add_test(tc, test_recheck);
	tcase_add_test(tc, test_readonly_session);
	tcase_add_test(tc, test_detached);
	tcase_add_test(tc, test_detached_concurrent);
	tcase_add_test(tc, test_handle_info);
	tcase_add_test(tc, test_sync_if);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
