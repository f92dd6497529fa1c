/*
 * test_lock.c - core/lock.c (write locks) through the function table:
 * a lock refuses every kind of change without its token (uploads, handle
 * opens for writing, unlink, rename, chmod, mtime, copy onto, properties)
 * and allows them with it; reads are never refused; open_state shows it;
 * exclusive and shared conflicts; depth 0 and infinity on folders; a lock
 * refused while the file is open for writing; an upload begun before a
 * lock fails at its commit; expiry and refresh on the engine clock;
 * unlock; locks of an unmapped name; delete and move drop locks; virtual
 * folders and read-only logins refused.
 */
#include <time.h>

#include "testutil.h"

static tu_core T;
static sd_session *U;

static int64_t fake_ms;
static int64_t fake_clock(void *arg)
{
	(void)arg;
	return fake_ms;
}

static void setup(void)
{
	tu_core_open(&T, 0);
	U = tu_user(&T, "alice");
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	fake_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	sd__core_set_clock(T.c, fake_clock, NULL);
}

static void teardown(void)
{
	tu_core_close(&T);
}

/* Take a lock; returns its token (static buffer per call site copy). */
static void xlock(sd_session *s, const char *path, unsigned flags, char tok[SD_LOCKTOKEN_MAX])
{
	sd_lock_info li;
	int r = T.api->lock(s, path, flags, 60, "<D:href>alice</D:href>", &li);
	ck_assert_msg(r == 0, "lock %s: %s", path, T.api->strerror(r));
	ck_assert_int_eq(strncmp(li.token, "urn:storaged:", 13), 0);
	ck_assert_uint_eq(strlen(li.token), 35);
	ck_assert_str_eq(li.root, path);
	ck_assert_str_eq(li.owner, "<D:href>alice</D:href>");
	ck_assert_str_eq(li.user, "alice");
	ck_assert_int_eq(li.timeout, 60);
	snprintf(tok, SD_LOCKTOKEN_MAX, "%s", li.token);
}

static void submit(sd_session *s, const char *tok)
{
	const char *t[1] = {tok};
	ck_assert_int_eq(T.api->lock_submit(s, t, tok ? 1 : 0), 0);
}

/* Every change of a file refused with -EBUSY, reads allowed. */
static void expect_file_locked(sd_session *s, const char *path)
{
	sd_upload *up = NULL;
	ck_assert_int_eq(T.api->upload_begin(s, path, 0, 0, 0644, &up), -EBUSY);
	sd_handle h = 0;
	ck_assert_int_eq(T.api->handle_open(s, path, SD_O_WRITE, 0, &h, NULL), -EBUSY);
	ck_assert_int_eq(T.api->handle_open(s, path, SD_O_WRITE | SD_O_TRUNC, 0, &h, NULL), -EBUSY);
	ck_assert_uint_eq(h, 0);
	ck_assert_int_eq(T.api->unlink(s, path, 0), -EBUSY);
	ck_assert_int_eq(T.api->rename(s, path, "/moved", 0), -EBUSY);
	ck_assert_int_eq(T.api->chmod(s, path, 0600), -EBUSY);
	ck_assert_int_eq(T.api->set_mtime(s, path, 1000), -EBUSY);
	ck_assert_int_eq(T.api->copy(s, "/other", path), -EBUSY);
	sd_prop p = {"urn:x", "color", "red", 3};
	ck_assert_int_eq(T.api->props_patch(s, path, &p, 1), -EBUSY);
	/* reads: a reader, a read handle, stat */
	size_t n;
	free(tu_get(&T, s, path, &n));
	ck_assert_int_eq(T.api->handle_open(s, path, SD_O_READ, 0, &h, NULL), 0);
	ck_assert_int_eq(T.api->handle_close(s, h), 0);
	unsigned state = 0;
	ck_assert_int_eq(T.api->open_state(s, path, &state), 0);
	ck_assert(state & SD_OPEN_LOCKED);
}

START_TEST(test_lock_refuses_without_token)
{
	tu_put(&T, U, "/f.txt", "hello", 5);
	tu_put(&T, U, "/other", "other", 5);
	char tok[SD_LOCKTOKEN_MAX];
	xlock(U, "/f.txt", 0, tok);
	expect_file_locked(U, "/f.txt");
	/* another session of the same user, e.g. over SFTP: the same */
	sd_session *s2 = tu_session(&T, "alice");
	expect_file_locked(s2, "/f.txt");
	/* a wrong token is no token */
	submit(s2, "urn:uuid:00000000-0000-4000-8000-000000000000");
	expect_file_locked(s2, "/f.txt");
	size_t n;
	char *b = tu_get(&T, U, "/f.txt", &n);
	ck_assert_int_eq(n, 5);
	ck_assert_int_eq(memcmp(b, "hello", 5), 0);
	free(b);
	/* other files are not locked */
	tu_put(&T, U, "/g.txt", "g", 1);
	/* with the token: writes go through */
	submit(U, tok);
	tu_put(&T, U, "/f.txt", "world", 5);
	sd_handle h = 0;
	ck_assert_int_eq(T.api->handle_open(U, "/f.txt", SD_O_WRITE, 0, &h, NULL), 0);
	ck_assert_int_eq(T.api->handle_pwrite(U, h, "W", 1, 0), 1);
	ck_assert_int_eq(T.api->handle_close(U, h), 0);
	ck_assert_int_eq(T.api->chmod(U, "/f.txt", 0600), 0);
	sd_prop p = {"urn:x", "color", "red", 3};
	ck_assert_int_eq(T.api->props_patch(U, "/f.txt", &p, 1), 0);
	b = tu_get(&T, U, "/f.txt", &n);
	ck_assert_int_eq(memcmp(b, "World", 5), 0);
	free(b);
}
END_TEST

static int count_cb(void *arg, const sd_lock_info *l)
{
	int *n = arg;
	(*n)++;
	ck_assert_ptr_nonnull(l->token);
	return 0;
}

START_TEST(test_unlock_and_discover)
{
	tu_put(&T, U, "/f", "x", 1);
	char tok[SD_LOCKTOKEN_MAX];
	xlock(U, "/f", 0, tok);
	int n = 0;
	ck_assert_int_eq(T.api->lock_discover(U, "/f", 0, count_cb, &n), 1);
	ck_assert_int_eq(n, 1);
	n = 0;
	ck_assert_int_eq(T.api->lock_discover(U, "/", 0, count_cb, &n), 0);
	ck_assert_int_eq(T.api->lock_discover(U, "/", SD_LOCK_BELOW, count_cb, &n), 1);
	/* unlock needs the token and a path it covers */
	ck_assert_int_eq(T.api->unlock(U, "/f", "urn:uuid:bogus"), -ENOENT);
	ck_assert_int_eq(T.api->unlock(U, "/other", tok), -ENOENT);
	/* another user's token: not theirs to remove */
	sd_session *b = tu_user(&T, "bob");
	tu_put(&T, b, "/f", "b", 1);
	ck_assert_int_eq(T.api->unlock(b, "/f", tok), -EACCES);
	ck_assert_int_eq(T.api->lock_discover(b, "/f", 0, count_cb, &n), 0); /* bob's /f is not alice's */
	tu_put(&T, b, "/f", "bb", 2); /* and it is not locked */
	ck_assert_int_eq(T.api->unlock(U, "/f", tok), 0);
	ck_assert_int_eq(T.api->unlock(U, "/f", tok), -ENOENT);
	tu_put(&T, U, "/f", "y", 1);
	unsigned st = 0;
	ck_assert_int_eq(T.api->open_state(U, "/f", &st), 0);
	ck_assert_uint_eq(st & SD_OPEN_LOCKED, 0);
}
END_TEST

START_TEST(test_conflicts)
{
	tu_put(&T, U, "/d/f", "x", 1);
	char t1[SD_LOCKTOKEN_MAX], t2[SD_LOCKTOKEN_MAX], t3[SD_LOCKTOKEN_MAX];
	sd_lock_info li;
	xlock(U, "/d/f", 0, t1);
	/* exclusive on exclusive, shared on exclusive, an infinite lock above */
	ck_assert_int_eq(T.api->lock(U, "/d/f", 0, 60, NULL, &li), -EBUSY);
	ck_assert_int_eq(T.api->lock(U, "/d/f", SD_LOCK_SHARED, 60, NULL, &li), -EBUSY);
	ck_assert_int_eq(T.api->lock(U, "/d", SD_LOCK_INFINITE, 60, NULL, &li), -EBUSY);
	ck_assert_int_eq(T.api->lock(U, "/", SD_LOCK_INFINITE | SD_LOCK_SHARED, 60, NULL, &li), -EBUSY);
	/* a depth-0 lock of the folder does not overlap its member */
	xlock(U, "/d", 0, t2);
	ck_assert_int_eq(T.api->unlock(U, "/d", t2), 0);
	ck_assert_int_eq(T.api->unlock(U, "/d/f", t1), 0);
	/* shared locks share */
	xlock(U, "/d/f", SD_LOCK_SHARED, t1);
	xlock(U, "/d/f", SD_LOCK_SHARED, t2);
	ck_assert_str_ne(t1, t2);
	ck_assert_int_eq(T.api->lock(U, "/d/f", 0, 60, NULL, &li), -EBUSY);
	/* a change needs every token that covers it */
	submit(U, t1);
	sd_upload *up = NULL;
	ck_assert_int_eq(T.api->upload_begin(U, "/d/f", 0, 0, 0644, &up), -EBUSY);
	const char *both[2] = {t1, t2};
	ck_assert_int_eq(T.api->lock_submit(U, both, 2), 0);
	tu_put(&T, U, "/d/f", "two", 3);
	ck_assert_int_eq(T.api->unlock(U, "/d/f", t1), 0);
	ck_assert_int_eq(T.api->unlock(U, "/d/f", t2), 0);
	/* an infinite lock on a folder conflicts with a lock below it */
	xlock(U, "/d", SD_LOCK_INFINITE, t3);
	ck_assert_int_eq(T.api->lock(U, "/d/f", SD_LOCK_SHARED, 60, NULL, &li), -EBUSY);
	ck_assert_int_eq(T.api->lock(U, "/d/new", 0, 60, NULL, &li), -EBUSY);
	/* bad arguments */
	ck_assert_int_eq(T.api->lock(U, "/x", 0, 0, NULL, &li), -EINVAL);
	ck_assert_int_eq(T.api->lock(U, "/x", 0, 8 * 86400, NULL, &li), -EINVAL);
	ck_assert_int_eq(T.api->lock(U, "/x", 0x80, 60, NULL, &li), -EINVAL);
	ck_assert_int_eq(T.api->lock(U, "/nodir/x", 0, 60, NULL, &li), -ENOENT);
	const char *many[SD_LOCK_SUBMIT_MAX + 1];
	for (int i = 0; i <= SD_LOCK_SUBMIT_MAX; i++)
		many[i] = t1;
	ck_assert_int_eq(T.api->lock_submit(U, many, SD_LOCK_SUBMIT_MAX + 1), -EINVAL);
}
END_TEST

START_TEST(test_open_modes_meet_locks)
{
	tu_put(&T, U, "/f", "x", 1);
	sd_session *sftp = tu_session(&T, "alice");
	sd_handle h = 0;
	ck_assert_int_eq(T.api->handle_open(sftp, "/f", SD_O_WRITE, 0, &h, NULL), 0);
	sd_lock_info li;
	/* a file open for writing cannot be locked */
	ck_assert_int_eq(T.api->lock(U, "/f", 0, 60, NULL, &li), -EBUSY);
	ck_assert_int_eq(T.api->lock(U, "/f", SD_LOCK_SHARED, 60, NULL, &li), -EBUSY);
	ck_assert_int_eq(T.api->handle_close(sftp, h), 0);
	/* nor one open exclusively, even for reading */
	ck_assert_int_eq(T.api->handle_open(sftp, "/f", SD_O_READ | SD_O_EXCLUSIVE, 0, &h, NULL), 0);
	ck_assert_int_eq(T.api->lock(U, "/f", 0, 60, NULL, &li), -EBUSY);
	ck_assert_int_eq(T.api->handle_close(sftp, h), 0);
	/* a pending create holds its name too */
	ck_assert_int_eq(T.api->handle_open(sftp, "/new", SD_O_CREAT | SD_O_WRITE, 0644, &h, NULL), 0);
	ck_assert_int_eq(T.api->lock(U, "/new", 0, 60, NULL, &li), -EBUSY);
	ck_assert_int_eq(T.api->handle_close(sftp, h), 0);
	/* readers do not stop a write lock */
	ck_assert_int_eq(T.api->handle_open(sftp, "/f", SD_O_READ, 0, &h, NULL), 0);
	char tok[SD_LOCKTOKEN_MAX];
	xlock(U, "/f", 0, tok);
	ck_assert_int_eq(T.api->handle_close(sftp, h), 0);
	/* and a locked file refuses the SFTP write open */
	ck_assert_int_eq(T.api->handle_open(sftp, "/f", SD_O_WRITE, 0, &h, NULL), -EBUSY);
	ck_assert_int_eq(T.api->handle_open(sftp, "/f", SD_O_READ | SD_O_SHARE_READ, 0, &h, NULL), 0);
	ck_assert_int_eq(T.api->handle_close(sftp, h), 0);
}
END_TEST

START_TEST(test_folder_locks)
{
	tu_put(&T, U, "/d/old", "o", 1);
	tu_put(&T, U, "/d/sub/deep", "d", 1);
	char t0[SD_LOCKTOKEN_MAX], ti[SD_LOCKTOKEN_MAX];
	/* depth 0: membership of /d is locked, its members' content is not */
	xlock(U, "/d", 0, t0);
	tu_put(&T, U, "/d/old", "changed", 7);
	tu_put(&T, U, "/d/sub/deep", "changed", 7);
	sd_upload *up = NULL;
	ck_assert_int_eq(T.api->upload_begin(U, "/d/new", 0, 0, 0644, &up), -EBUSY);
	sd_handle h = 0;
	ck_assert_int_eq(T.api->handle_open(U, "/d/new", SD_O_CREAT | SD_O_WRITE, 0644, &h, NULL), -EBUSY);
	ck_assert_int_eq(T.api->mkdir(U, "/d/dir", 0755, 0), -EBUSY);
	ck_assert_int_eq(T.api->unlink(U, "/d/old", 0), -EBUSY);
	ck_assert_int_eq(T.api->rename(U, "/d/old", "/elsewhere", 0), -EBUSY);
	ck_assert_int_eq(T.api->rename(U, "/d/old", "/d/renamed", 0), -EBUSY);
	ck_assert_int_eq(T.api->unlink(U, "/d", 1), -EBUSY);
	/* but deeper folders' membership is theirs */
	tu_put(&T, U, "/d/sub/new", "n", 1);
	submit(U, t0);
	tu_put(&T, U, "/d/new", "n", 1);
	ck_assert_int_eq(T.api->unlock(U, "/d", t0), 0);
	submit(U, NULL);
	/* infinity: everything below */
	xlock(U, "/d", SD_LOCK_INFINITE, ti);
	ck_assert_int_eq(T.api->upload_begin(U, "/d/sub/deep", 0, 0, 0644, &up), -EBUSY);
	ck_assert_int_eq(T.api->mkdir(U, "/d/sub/x", 0755, 0), -EBUSY);
	ck_assert_int_eq(T.api->handle_open(U, "/d/old", SD_O_WRITE, 0, &h, NULL), -EBUSY);
	ck_assert_int_eq(T.api->rename(U, "/d", "/e", 0), -EBUSY);
	/* nor can its parent be moved or deleted: that moves /d too */
	tu_put(&T, U, "/top/x", "x", 1);
	ck_assert_int_eq(T.api->rename(U, "/top", "/top2", 0), 0);
	ck_assert_int_eq(T.api->unlink(U, "/d/sub", 1), -EBUSY);
	/* a lock below a folder stops moving the folder */
	char tf[SD_LOCKTOKEN_MAX];
	tu_put(&T, U, "/p/q/f", "f", 1);
	xlock(U, "/p/q/f", 0, tf);
	ck_assert_int_eq(T.api->rename(U, "/p", "/p2", 0), -EBUSY);
	ck_assert_int_eq(T.api->unlink(U, "/p", 1), -EBUSY);
	sd_rollback_report rep;
	ck_assert_int_eq(T.api->rollback(U, "/p", fake_ms - 1000, &rep), -EBUSY);
	submit(U, tf);
	ck_assert_int_eq(T.api->rename(U, "/p", "/p2", 0), 0);
	/* moving with the token drops the locks that stayed behind */
	int n = 0;
	ck_assert_int_eq(T.api->lock_discover(U, "/", SD_LOCK_BELOW, count_cb, &n), 1); /* /d only */
	ck_assert_int_eq(T.api->unlink(U, "/p2/q/f", 0), 0);
}
END_TEST

START_TEST(test_upload_in_flight)
{
	tu_put(&T, U, "/f", "old", 3);
	sd_session *ftp = tu_session(&T, "alice");
	sd_upload *up = NULL;
	ck_assert_int_eq(T.api->upload_begin(ftp, "/f", 0, 0, 0644, &up), 0);
	ck_assert_int_eq(T.api->upload_write(up, "new content", 11), 0);
	char tok[SD_LOCKTOKEN_MAX];
	xlock(U, "/f", 0, tok);
	/* the lock came first: the upload's commit is refused, nothing changes */
	ck_assert_int_eq(T.api->upload_commit(up, NULL, NULL, NULL), -EBUSY);
	size_t n;
	char *b = tu_get(&T, U, "/f", &n);
	ck_assert_int_eq(n, 3);
	ck_assert_int_eq(memcmp(b, "old", 3), 0);
	free(b);
	ck_assert_int_eq(tu_temp_files(&T), 0);
	/* an upload by the holder with its token commits */
	submit(U, tok);
	ck_assert_int_eq(T.api->upload_begin(U, "/f", 0, 0, 0644, &up), 0);
	submit(U, NULL); /* what the session submits later does not matter */
	ck_assert_int_eq(T.api->upload_write(up, "mine", 4), 0);
	ck_assert_int_eq(T.api->upload_commit(up, NULL, NULL, NULL), 0);
	b = tu_get(&T, U, "/f", &n);
	ck_assert_int_eq(n, 4);
	free(b);
}
END_TEST

START_TEST(test_expiry_and_refresh)
{
	tu_put(&T, U, "/f", "x", 1);
	char tok[SD_LOCKTOKEN_MAX];
	xlock(U, "/f", 0, tok);
	fake_ms += 59 * 1000;
	sd_lock_info li;
	ck_assert_int_eq(T.api->lock_refresh(U, "/f", "urn:uuid:nope", 60, &li), -ENOENT);
	ck_assert_int_eq(T.api->lock_refresh(U, "/f", tok, 120, &li), 0);
	ck_assert_int_eq(li.timeout, 120);
	ck_assert_int_eq(li.expires, fake_ms + 120000);
	fake_ms += 100 * 1000; /* past the first timeout, inside the refreshed one */
	sd_upload *up = NULL;
	ck_assert_int_eq(T.api->upload_begin(U, "/f", 0, 0, 0644, &up), -EBUSY);
	fake_ms += 21 * 1000; /* expired */
	tu_put(&T, U, "/f", "free", 4);
	ck_assert_int_eq(T.api->lock_refresh(U, "/f", tok, 60, &li), -ENOENT);
	int n = 0;
	ck_assert_int_eq(T.api->lock_discover(U, "/f", 0, count_cb, &n), 0);
	/* a refresh through a path the lock covers (a member of a locked folder) */
	tu_put(&T, U, "/d/m", "m", 1);
	xlock(U, "/d", SD_LOCK_INFINITE, tok);
	ck_assert_int_eq(T.api->lock_refresh(U, "/d/m", tok, 30, &li), 0);
	ck_assert_str_eq(li.root, "/d");
	ck_assert_int_eq(T.api->lock_refresh(U, "/f", tok, 30, &li), -ENOENT);
}
END_TEST

START_TEST(test_unmapped_and_delete)
{
	char tok[SD_LOCKTOKEN_MAX];
	/* a name not there yet: locked, then made by the holder */
	xlock(U, "/later.txt", 0, tok);
	sd_upload *up = NULL;
	ck_assert_int_eq(T.api->upload_begin(U, "/later.txt", 0, 0, 0644, &up), -EBUSY);
	sd_handle h = 0;
	ck_assert_int_eq(T.api->handle_open(U, "/later.txt", SD_O_CREAT | SD_O_WRITE, 0644, &h, NULL),
			 -EBUSY);
	ck_assert_int_eq(T.api->mkdir(U, "/later.txt", 0755, 0), -EBUSY);
	submit(U, tok);
	tu_put(&T, U, "/later.txt", "", 0);
	sd_stat st;
	ck_assert_int_eq(T.api->stat(U, "/later.txt", &st), 0);
	/* deleting it with the token drops the lock */
	ck_assert_int_eq(T.api->unlink(U, "/later.txt", 0), 0);
	int n = 0;
	ck_assert_int_eq(T.api->lock_discover(U, "/later.txt", 0, count_cb, &n), 0);
	submit(U, NULL);
	tu_put(&T, U, "/later.txt", "again", 5);
}
END_TEST

START_TEST(test_refused_places)
{
	tu_put(&T, U, "/f", "x", 1);
	sd_lock_info li;
	ck_assert_int_eq(T.api->lock(U, "/.snapshots/x", 0, 60, NULL, &li), -EROFS);
	ck_assert_int_eq(T.api->lock(U, "/.trash/x", 0, 60, NULL, &li), -EACCES);
	char tok[SD_TOKEN_MAX];
	ck_assert_int_eq(T.api->token_create(T.c, "alice", SD_SCOPE_RO, 0, tok, NULL), 0);
	sd_session *ro = NULL;
	ck_assert_int_eq(T.api->auth_token(T.c, tok, "127.0.0.1", "test", &ro), 0);
	tu_keep(&T, ro);
	ck_assert_int_eq(T.api->lock(ro, "/f", 0, 60, NULL, &li), -EROFS);
	char big[SD_LOCKOWNER_MAX + 1];
	memset(big, 'o', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	ck_assert_int_eq(T.api->lock(U, "/f", 0, 60, big, &li), -EINVAL);
	/* the per-user limit */
	int got = 0, r = 0;
	for (int i = 0; i < 1100 && r == 0; i++) {
		char p[32];
		snprintf(p, sizeof p, "/n%d", i);
		r = T.api->lock(U, p, 0, 60, NULL, &li);
		got += r == 0;
	}
	ck_assert_int_eq(r, -ENOLCK);
	ck_assert_int_eq(got, 1000);
}
END_TEST

static Suite *lock_suite(void)
{
	Suite *s = suite_create("lock");
	TCase *tc = tcase_create("locks");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_lock_refuses_without_token);
	tcase_add_test(tc, test_unlock_and_discover);
	tcase_add_test(tc, test_conflicts);
	tcase_add_test(tc, test_open_modes_meet_locks);
	tcase_add_test(tc, test_folder_locks);
	tcase_add_test(tc, test_upload_in_flight);
	tcase_add_test(tc, test_expiry_and_refresh);
	tcase_add_test(tc, test_unmapped_and_delete);
	tcase_add_test(tc, test_refused_places);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(lock_suite());
}
