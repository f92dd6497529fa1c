/*
 * test_store.c - blob commit, dedup and reference counts (I1-I4), the write
 * pipeline across buffer boundaries, and failure injection: nothing
 * acknowledged is lost and nothing torn becomes visible.
 */
#include <pthread.h>

#include "testutil.h"
#include "core/internal.h"
#include "util/sys.h"

/* Deterministic content: seed picks one of a few patterns. */
static char *make_data(int seed, size_t len)
{
	char *p = malloc(len ? len : 1);
	uint32_t x = (uint32_t)seed * 2654435761u + 1;
	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		p[i] = (char)(x >> 16);
	}
	return p;
}

START_TEST(test_roundtrip_sizes)
{
	tu_core t;
	tu_core_open(&t, 0);
	sd_session *u = tu_user(&t, "alice");
	/* around the 64 KiB test buffer: empty, tiny, exact, +-1, many buffers */
	size_t sizes[] = {0, 1, 4096, 65535, 65536, 65537, 3 * 65536 + 17, 1000000};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		char path[64];
		snprintf(path, sizeof path, "/d/f%zu", i);
		char *data = make_data((int)i, sizes[i]);
		sd_stat st;
		int dedup = -1;
		ck_assert_int_eq(tu_put_r(&t, u, path, data, sizes[i], &st, &dedup), 0);
		char want[65];
		tu_sha_hex(data, sizes[i], want);
		ck_assert_str_eq(st.sha256, want);
		ck_assert_uint_eq(st.size, sizes[i]);
		ck_assert_int_eq(dedup, 0);
		size_t len;
		char *back = tu_get(&t, u, path, &len);
		ck_assert_uint_eq(len, sizes[i]);
		ck_assert(memcmp(back, data, len) == 0);
		free(back);
		free(data);
	}
	ck_assert_int_eq(tu_temp_files(&t), 0);
	tu_core_close(&t);
}
END_TEST

START_TEST(test_dedup_refs)
{
	tu_core t;
	tu_core_open(&t, 0);
	sd_session *a = tu_user(&t, "alice"), *b = tu_user(&t, "bob");
	char *data = make_data(7, 200000);
	int dedup;
	ck_assert_int_eq(tu_put_r(&t, a, "/x", data, 200000, NULL, &dedup), 0);
	ck_assert_int_eq(dedup, 0);
	ck_assert_int_eq(tu_put_r(&t, b, "/y", data, 200000, NULL, &dedup), 0);
	ck_assert_int_eq(dedup, 1);
	ck_assert_int_eq(tu_put_r(&t, a, "/x", data, 200000, NULL, &dedup), 0); /* same again */
	ck_assert_int_eq(dedup, 1);
	ck_assert_int_eq(tu_blob_files(&t), 1);
	ck_assert_int_eq(tu_sql_int(&t, "SELECT count(*) FROM blobs"), 1);
	ck_assert_int_eq(tu_sql_int(&t, "SELECT refs FROM blobs"), 3); /* three versions */
	ck_assert_int_eq(tu_sql_int(&t, "SELECT used_bytes FROM users WHERE name='alice'"), 200000);
	ck_assert_int_eq(tu_temp_files(&t), 0);
	free(data);
	tu_core_close(&t);
}
END_TEST

typedef struct thr_arg {
	tu_core *t;
	sd_session *u; /* used by this thread only */
	int idx;
	int fails;
} thr_arg;

/* Each thread uploads 24 files whose contents come from 6 shared
 * patterns, so every pattern is committed concurrently by several
 * threads. */
static void *writer_thread(void *p)
{
	thr_arg *a = p;
	for (int i = 0; i < 24; i++) {
		int pattern = (a->idx + i) % 6;
		size_t len = 50000 + (size_t)pattern * 40000;
		char *data = make_data(100 + pattern, len);
		char path[64];
		snprintf(path, sizeof path, "/t%d/f%d", a->idx, i);
		if (tu_put_r(a->t, a->u, path, data, len, NULL, NULL) != 0)
			a->fails++;
		free(data);
	}
	return NULL;
}

START_TEST(test_eight_threads_overlap)
{
	tu_core t;
	tu_core_open(&t, 0);
	thr_arg args[8];
	pthread_t th[8];
	for (int i = 0; i < 8; i++) {
		char name[16];
		snprintf(name, sizeof name, "u%d", i);
		args[i] = (thr_arg){&t, tu_user(&t, name), i, 0};
	}
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, writer_thread, &args[i]), 0);
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(args[i].fails, 0);
	}
	/* 6 distinct contents, one file and one row each */
	ck_assert_int_eq(tu_blob_files(&t), 6);
	ck_assert_int_eq(tu_sql_int(&t, "SELECT count(*) FROM blobs"), 6);
	/* refs == versions naming the blob (I3), total 8 x 24 */
	ck_assert_int_eq(tu_sql_int(&t, "SELECT count(*) FROM blobs b WHERE refs != "
					"(SELECT count(*) FROM versions v WHERE v.blob = b.id)"), 0);
	ck_assert_int_eq(tu_sql_int(&t, "SELECT sum(refs) FROM blobs"), 8 * 24);
	ck_assert_int_eq(tu_temp_files(&t), 0);
	/* every file reads back right */
	for (int i = 0; i < 8; i++) {
		for (int k = 0; k < 24; k += 5) {
			int pattern = (i + k) % 6;
			size_t len = 50000 + (size_t)pattern * 40000, got;
			char *data = make_data(100 + pattern, len);
			char path[64];
			snprintf(path, sizeof path, "/t%d/f%d", i, k);
			char *back = tu_get(&t, args[i].u, path, &got);
			ck_assert_uint_eq(got, len);
			ck_assert(memcmp(back, data, len) == 0);
			free(back);
			free(data);
		}
	}
	sd_fsck_report rep;
	ck_assert_int_eq(sd_core_fsck(t.c, 0, &rep, NULL, NULL), 0);
	ck_assert_int_eq(rep.bad_hash + rep.missing + rep.orphans + rep.bad_refs + rep.bad_used, 0);
	tu_core_close(&t);
}
END_TEST

START_TEST(test_checksum_and_abort)
{
	tu_core t;
	tu_core_open(&t, 0);
	sd_session *u = tu_user(&t, "alice");
	sd_upload *up;
	ck_assert_int_eq(t.api->upload_begin(u, "/f", 0, 0, 0, &up), 0);
	ck_assert_int_eq(t.api->upload_write(up, "hello", 5), 0);
	char wrong[65];
	memset(wrong, 'a', 64);
	wrong[64] = 0;
	ck_assert_int_eq(t.api->upload_commit(up, wrong, NULL, NULL), -SD_ECHECKSUM);
	sd_stat st;
	ck_assert_int_eq(t.api->stat(u, "/f", &st), -ENOENT);
	ck_assert_int_eq(tu_blob_files(&t), 0);

	ck_assert_int_eq(t.api->upload_begin(u, "/g", 0, 0, 0, &up), 0);
	char *data = make_data(1, 300000);
	ck_assert_int_eq(t.api->upload_write(up, data, 300000), 0);
	t.api->upload_abort(up);
	ck_assert_int_eq(t.api->stat(u, "/g", &st), -ENOENT);
	ck_assert_int_eq(tu_temp_files(&t), 0);
	ck_assert_int_eq(tu_blob_files(&t), 0);

	char right[65];
	tu_sha_hex(data, 300000, right);
	ck_assert_int_eq(t.api->upload_begin(u, "/g", 0, 0, 0, &up), 0);
	ck_assert_int_eq(t.api->upload_write(up, data, 300000), 0);
	ck_assert_int_eq(t.api->upload_commit(up, right, &st, NULL), 0);
	ck_assert_str_eq(st.sha256, right);

	/* an upload does not need its session after upload_begin: it commits
	 * after the session is closed */
	sd_session *s2 = NULL;
	ck_assert_int_eq(sd_core_session(t.c, "alice", &s2), 0);
	ck_assert_int_eq(t.api->upload_begin(s2, "/late", 0, 0, 0, &up), 0);
	t.api->session_close(s2);
	ck_assert_int_eq(t.api->upload_write(up, "late", 4), 0);
	ck_assert_int_eq(t.api->upload_commit(up, NULL, &st, NULL), 0);
	ck_assert_uint_eq(st.size, 4);
	size_t len;
	char *back = tu_get(&t, u, "/late", &len);
	ck_assert(len == 4 && memcmp(back, "late", 4) == 0);
	free(back);
	free(data);
	tu_core_close(&t);
}
END_TEST

START_TEST(test_resume_offset)
{
	tu_core t;
	tu_core_open(&t, 0);
	sd_session *u = tu_user(&t, "alice");
	char *data = make_data(3, 250000);
	tu_put(&t, u, "/part", data, 100000); /* an interrupted upload kept */
	sd_upload *up;
	ck_assert_int_eq(t.api->upload_begin(u, "/part", 0, 200000, 0, &up), -EINVAL);
	ck_assert_int_eq(t.api->upload_begin(u, "/part", 0, 100000, 0, &up), 0);
	ck_assert_uint_eq(t.api->upload_size(up), 100000);
	ck_assert_int_eq(t.api->upload_write(up, data + 100000, 150000), 0);
	ck_assert_int_eq(t.api->upload_commit(up, NULL, NULL, NULL), 0);
	size_t len;
	char *back = tu_get(&t, u, "/part", &len);
	ck_assert_uint_eq(len, 250000);
	ck_assert(memcmp(back, data, len) == 0);
	free(back);
	free(data);
	/* offset on a missing file */
	ck_assert_int_eq(t.api->upload_begin(u, "/nope", 0, 10, 0, &up), -EINVAL);
	tu_core_close(&t);
}
END_TEST

/* Every failure point of the commit step: the old content stays, nothing
 * new is visible, no temp file or orphan is left behind. */
START_TEST(test_fault_injection)
{
	struct {
		int op, nth, err;
	} faults[] = {
		{SD_SYS_WRITE, 1, ENOSPC}, /* first buffer write */
		{SD_SYS_WRITE, 3, EIO},    /* a later one */
		{SD_SYS_FSYNC, 1, EIO},    /* fsync of the temp file */
		{SD_SYS_RENAME, 1, ENOSPC},/* rename into the store */
		{SD_SYS_FSYNC, 2, EIO},    /* fsync of the shard directory */
		{SD_SYS_OPEN, 1, EMFILE},  /* temp file creation */
	};
	for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) {
		tu_core t;
		tu_core_open(&t, 0);
		sd_session *u = tu_user(&t, "alice");
		char *old = make_data(11, 70000), *neu = make_data(12, 300000);
		tu_put(&t, u, "/f", old, 70000);
		int blobs_before = tu_blob_files(&t);
		sd__sys_fail(faults[i].op, faults[i].nth, faults[i].err);
		int r = tu_put_r(&t, u, "/f", neu, 300000, NULL, NULL);
		sd__sys_fail_clear();
		ck_assert_msg(r == -faults[i].err, "fault %zu: got %d want %d", i, r, -faults[i].err);
		size_t len;
		char *back = tu_get(&t, u, "/f", &len);
		ck_assert_msg(len == 70000 && memcmp(back, old, len) == 0, "fault %zu: old content lost", i);
		free(back);
		ck_assert_int_eq(tu_temp_files(&t), 0);
		ck_assert_int_eq(tu_blob_files(&t), blobs_before);
		ck_assert_int_eq(tu_sql_int(&t, "SELECT count(*) FROM versions"), 1);
		/* and the same upload succeeds afterwards */
		ck_assert_int_eq(tu_put_r(&t, u, "/f", neu, 300000, NULL, NULL), 0);
		free(old);
		free(neu);
		tu_core_close(&t);
	}
}
END_TEST

START_TEST(test_set_mtime_at_commit)
{
	tu_core t;
	tu_core_open(&t, 0);
	sd_session *u = tu_user(&t, "alice");
	sd_upload *up;
	sd_stat st;
	ck_assert_int_eq(t.api->upload_begin(u, "/old", 0, 0, 0, &up), 0);
	ck_assert_int_eq(t.api->upload_write(up, "x", 1), 0);
	t.api->upload_set_mtime(up, 1234567890);
	ck_assert_int_eq(t.api->upload_commit(up, NULL, &st, NULL), 0);
	ck_assert_int_eq(st.mtime, 1234567890);
	/* replacing an existing file keeps the given time too, in one commit */
	long long before = tu_sql_int(&t, "SELECT count(*) FROM journal");
	ck_assert_int_eq(t.api->upload_begin(u, "/old", 0, 0, 0, &up), 0);
	t.api->upload_set_mtime(up, 1000000000);
	ck_assert_int_eq(t.api->upload_commit(up, NULL, &st, NULL), 0);
	ck_assert_int_eq(st.mtime, 1000000000);
	ck_assert_int_eq(tu_sql_int(&t, "SELECT count(*) FROM journal"), before + 1);
	ck_assert_int_eq(t.api->stat(u, "/old", &st), 0);
	ck_assert_int_eq(st.mtime, 1000000000);
	tu_core_close(&t);
}
END_TEST

START_TEST(test_durability_normal)
{
	tu_core t;
	tu_core_open(&t, 0);
	tu_core_shut(&t);
	t.conf.durability_full = 0;
	tu_core_reopen(&t, 0);
	sd_session *u = tu_user(&t, "alice");
	/* no fsync at all in normal mode: a failing fsync is never reached */
	sd__sys_fail(SD_SYS_FSYNC, 1, EIO);
	tu_put(&t, u, "/f", "abc", 3);
	sd__sys_fail_clear();
	size_t len;
	char *b = tu_get(&t, u, "/f", &len);
	ck_assert(len == 3 && memcmp(b, "abc", 3) == 0);
	free(b);
	tu_core_close(&t);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("store");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_roundtrip_sizes);
	tcase_add_test(tc, test_dedup_refs);
	tcase_add_test(tc, test_eight_threads_overlap);
	tcase_add_test(tc, test_checksum_and_abort);
	tcase_add_test(tc, test_resume_offset);
	tcase_add_test(tc, test_fault_injection);
	tcase_add_test(tc, test_set_mtime_at_commit);
	tcase_add_test(tc, test_durability_normal);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
