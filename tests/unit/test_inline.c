/* test_inline.c - small contents inside the database (inline_max) and
 * group commit: round trips and ranges through readers and handles, the
 * threshold edge, dedup between inline and file blobs, instant upload with
 * a proof of an inline blob, the cleaner and fsck with both kinds, and
 * concurrent commits sharing one COMMIT, each acknowledged only when
 * durable. */
#include <pthread.h>

#include "testutil.h"
#include "db/db.h"
#include "util/util.h"

#define IMAX 4096

static char *pattern(size_t n, unsigned seed)
{
	char *p = malloc(n ? n : 1);
	for (size_t i = 0; i < n; i++)
		p[i] = (char)((i * 37 + seed * 11 + (i >> 7)) & 0xff);
	return p;
}

static void open_inline(tu_core *t)
{
	tu_core_prepare(t);
	t->conf.inline_max = IMAX;
	tu_core_reopen(t, 0);
}

static long long inline_rows(tu_core *t)
{
	return tu_sql_int(t, "SELECT count(*) FROM blob_inline");
}

START_TEST(test_threshold_and_reads)
{
	tu_core t;
	open_inline(&t);
	sd_session *u = tu_user(&t, "alice");
	size_t sizes[] = {0, 1, IMAX - 1, IMAX, IMAX + 1, 3 * IMAX};
	int want_inline = 0;
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		size_t n = sizes[i];
		char *src = pattern(n, (unsigned)i);
		char path[32];
		snprintf(path, sizeof path, "/f%zu", i);
		tu_put(&t, u, path, src, n);
		want_inline += n <= IMAX;
		ck_assert_int_eq(inline_rows(&t), want_inline);
		size_t len;
		char *back = tu_get(&t, u, path, &len);
		ck_assert_uint_eq(len, n);
		ck_assert(n == 0 || memcmp(back, src, n) == 0);
		free(back);
		/* ranges, and no descriptor for an inline blob */
		sd_reader *rd;
		sd_stat st;
		ck_assert_int_eq(t.api->open_read(u, path, &rd, &st), 0);
		int fd;
		uint64_t base;
		ck_assert_int_eq(t.api->reader_fd(rd, &fd, &base), n <= IMAX ? -ENOTSUP : 0);
		char buf[100];
		if (n > 10) {
			ck_assert_int_eq(t.api->reader_pread(rd, buf, 100, n - 10), 10);
			ck_assert(memcmp(buf, src + n - 10, 10) == 0);
		}
		ck_assert_int_eq(t.api->reader_pread(rd, buf, 100, n), 0);
		t.api->reader_close(rd);
		free(src);
	}
	ck_assert_int_eq(tu_blob_files(&t), 2); /* IMAX + 1 and 3 * IMAX */
	ck_assert_int_eq(tu_temp_files(&t), 0);
	tu_core_close(&t);
}
END_TEST

/* Handles: random writes on an inline base, commits inline again; a file
 * that grows past inline_max becomes a file blob and back. */
START_TEST(test_handles)
{
	tu_core t;
	open_inline(&t);
	sd_session *u = tu_user(&t, "alice");
	tu_put(&t, u, "/h", "0123456789", 10);
	sd_handle h;
	ck_assert_int_eq(t.api->handle_open(u, "/h", SD_O_READ | SD_O_WRITE, 0, &h, NULL), 0);
	char buf[16];
	ck_assert_int_eq(t.api->handle_pread(u, h, buf, 16, 0), 10);
	ck_assert_int_eq(t.api->handle_pwrite(u, h, "ab", 2, 4), 2);
	ck_assert_int_eq(t.api->handle_sync(u, h), 0);
	size_t len;
	char *back = tu_get(&t, u, "/h", &len);
	ck_assert(len == 10 && memcmp(back, "0123ab6789", 10) == 0);
	free(back);
	char *big = pattern(IMAX * 2, 5);
	ck_assert_int_eq(t.api->handle_pwrite(u, h, big, IMAX * 2, 10), IMAX * 2);
	ck_assert_int_eq(t.api->handle_sync(u, h), 0);
	ck_assert_int_eq(tu_blob_files(&t), 1);
	ck_assert_int_eq(t.api->handle_truncate(u, h, 3), 0);
	ck_assert_int_eq(t.api->handle_close(u, h), 0);
	back = tu_get(&t, u, "/h", &len);
	ck_assert(len == 3 && memcmp(back, "012", 3) == 0);
	free(back);
	ck_assert_int_eq(tu_temp_files(&t), 0);
	free(big);
	tu_core_close(&t);
}
END_TEST

/* The same address is stored once, whichever kind came first; an instant
 * upload of an inline blob needs a proof read from the database. */
START_TEST(test_dedup_and_instant)
{
	tu_core t;
	open_inline(&t);
	sd_session *a = tu_user(&t, "alice"), *b = tu_user(&t, "bob");
	char *src = pattern(3000, 7);
	int dedup = -1;
	ck_assert_int_eq(tu_put_r(&t, a, "/one", src, 3000, NULL, &dedup), 0);
	ck_assert_int_eq(dedup, 0);
	ck_assert_int_eq(tu_put_r(&t, b, "/two", src, 3000, NULL, &dedup), 0);
	ck_assert_int_eq(dedup, 1);
	ck_assert_int_eq(inline_rows(&t), 1);
	ck_assert_int_eq(tu_sql_int(&t, "SELECT count(*) FROM blobs"), 1);
	ck_assert_int_eq(tu_sql_int(&t, "SELECT refs FROM blobs"), 2);

	/* a file blob stored when inline storage was off is dedup'd to, not
	 * stored again inline */
	tu_core_shut(&t);
	t.conf.inline_max = 0;
	tu_core_reopen(&t, 0);
	a = tu_session(&t, "alice");
	char *src2 = pattern(2000, 9);
	tu_put(&t, a, "/file", src2, 2000);
	tu_core_shut(&t);
	t.conf.inline_max = IMAX;
	tu_core_reopen(&t, 0);
	a = tu_session(&t, "alice");
	b = tu_session(&t, "bob");
	ck_assert_int_eq(tu_put_r(&t, b, "/file-again", src2, 2000, NULL, &dedup), 0);
	ck_assert_int_eq(dedup, 1);
	ck_assert_int_eq(inline_rows(&t), 1);
	ck_assert_int_eq(tu_blob_files(&t), 1);

	/* and the other way: an inline blob is dedup'd to when inline_max is
	 * now below its size, not placed in the store a second time */
	tu_core_shut(&t);
	t.conf.inline_max = 1000;
	tu_core_reopen(&t, 0);
	b = tu_session(&t, "bob");
	ck_assert_int_eq(tu_put_r(&t, b, "/one-again", src, 3000, NULL, &dedup), 0);
	ck_assert_int_eq(dedup, 1);
	ck_assert_int_eq(inline_rows(&t), 1);
	ck_assert_int_eq(tu_blob_files(&t), 1);
	ck_assert_int_eq(tu_temp_files(&t), 0);
	ck_assert_int_eq(tu_sql_int(&t, "SELECT count(*) FROM blobs"), 2);
	{
		size_t n1;
		char *b1 = tu_get(&t, b, "/one-again", &n1);
		ck_assert(n1 == 3000 && memcmp(b1, src, 3000) == 0);
		free(b1);
	}
	tu_core_shut(&t);
	t.conf.inline_max = IMAX;
	tu_core_reopen(&t, 0);
	a = tu_session(&t, "alice");
	b = tu_session(&t, "bob");

	/* instant upload of the inline blob by someone who does not hold it */
	sd_session *c = tu_user(&t, "carol");
	char hex[65];
	tu_sha_hex(src, 3000, hex);
	sd_challenge ch;
	sd_stat st;
	ck_assert_int_eq(t.api->instant_begin(c, "/inst", 0, hex, 3000, &ch, &st), -SD_ECHALLENGE);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	EVP_DigestUpdate(md, ch.nonce, 64);
	for (int i = 0; i < ch.nranges; i++)
		EVP_DigestUpdate(md, src + ch.off[i], ch.len[i]);
	unsigned char dg[32];
	unsigned int dl;
	EVP_DigestFinal_ex(md, dg, &dl);
	EVP_MD_CTX_free(md);
	char proof[65];
	for (int i = 0; i < 32; i++)
		snprintf(proof + 2 * i, 3, "%02x", dg[i]);
	ck_assert_int_eq(t.api->instant_prove(c, "/inst", 0, hex, 3000, ch.nonce, proof, &st), 0);
	size_t len;
	char *back = tu_get(&t, c, "/inst", &len);
	ck_assert(len == 3000 && memcmp(back, src, 3000) == 0);
	free(back);
	free(src);
	free(src2);
	tu_core_close(&t);
}
END_TEST

/* The cleaner removes unreferenced inline blobs with their rows; fsck
 * checks both kinds and reports a damaged inline blob. */
START_TEST(test_gc_and_fsck)
{
	tu_core t;
	open_inline(&t);
	sd_session *u = tu_user(&t, "alice");
	tu_put(&t, u, "/small", "small", 5);
	char *big = pattern(IMAX + 100, 3);
	tu_put(&t, u, "/big", big, IMAX + 100);
	tu_put(&t, u, "/gone", "gone soon", 9);
	ck_assert_int_eq(t.api->unlink(u, "/gone", 0), 0);
	sd_gc_report g;
	ck_assert_int_eq(t.api->gc_run(t.c, 1, &g), 0);
	ck_assert_int_eq(g.blobs_removed, 1);
	ck_assert_int_eq(inline_rows(&t), 1);
	sd_fsck_report rep;
	ck_assert_int_eq(sd_core_fsck(t.c, 0, &rep, NULL, NULL), 0);
	ck_assert_int_eq(rep.blobs_checked, 2);
	ck_assert_int_eq(rep.bad_hash + rep.missing + rep.orphans + rep.bad_refs + rep.adoptable, 0);
	/* damage the inline bytes behind the engine's back */
	char cmd[600];
	snprintf(cmd, sizeof cmd, "sqlite3 '%s/storaged.db' \"UPDATE blob_inline SET data = x'736d616c4c'\"",
		 t.dir);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(sd_core_fsck(t.c, 0, &rep, NULL, NULL), 0);
	ck_assert_int_eq(rep.bad_hash, 1);
	free(big);
	tu_core_close(&t);
}
END_TEST

/* ------------------------------------------------------------ group commit */

typedef struct hook_state {
	pthread_mutex_t m;
	int commits;      /* COMMITs finished */
	int members;      /* writers in all batches */
	int max_members;
} hook_state;

static hook_state HS = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0};

/* A slow sync: every COMMIT takes 30 ms, so writers pile up behind it. */
static void slow_commit(void *arg, int after, int members)
{
	(void)arg;
	if (!after) {
		sd_sleep_ms(30);
		return;
	}
	pthread_mutex_lock(&HS.m);
	HS.commits++;
	HS.members += members;
	if (members > HS.max_members)
		HS.max_members = members;
	pthread_mutex_unlock(&HS.m);
}

typedef struct worker {
	tu_core *t;
	int id;
	int bad;
} worker;

static void *put_loop(void *arg)
{
	worker *w = arg;
	sd_session *s = NULL, *other = NULL;
	char name[16];
	snprintf(name, sizeof name, "u%d", w->id);
	if (sd_core_session(w->t->c, name, &s) || sd_core_session(w->t->c, "reader", &other)) {
		w->bad = 1;
		return NULL;
	}
	for (int i = 0; i < 10; i++) {
		char path[32], body[64];
		snprintf(path, sizeof path, "/f%d", i);
		int n = snprintf(body, sizeof body, "thread %d file %d", w->id, i);
		if (tu_put_r(w->t, s, path, body, (size_t)n, NULL, NULL) != 0) {
			w->bad = 1;
			continue;
		}
		/* acknowledged means committed: visible at once to another
		 * connection */
		sd_reader *rd;
		sd_stat st;
		if (w->t->api->open_read(s, path, &rd, &st) != 0 || st.size != (uint64_t)n) {
			w->bad = 1;
			continue;
		}
		w->t->api->reader_close(rd);
	}
	w->t->api->session_close(s);
	w->t->api->session_close(other);
	return NULL;
}

START_TEST(test_group_commit)
{
	tu_core t;
	open_inline(&t);
	tu_user(&t, "reader");
	enum { N = 16 };
	for (int i = 0; i < N; i++) {
		char name[16];
		snprintf(name, sizeof name, "u%d", i);
		tu_user(&t, name);
	}
	sd__db_set_commit_hook(sd__core_db(t.c), slow_commit, NULL);
	pthread_t th[N];
	worker w[N];
	for (int i = 0; i < N; i++) {
		w[i] = (worker){&t, i, 0};
		ck_assert_int_eq(pthread_create(&th[i], NULL, put_loop, &w[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(w[i].bad, 0);
	}
	sd__db_set_commit_hook(sd__core_db(t.c), NULL, NULL);
	/* 160 uploads, fewer COMMITs: batches formed */
	ck_assert_int_eq(HS.members, N * 10);
	ck_assert_int_lt(HS.commits, N * 10);
	ck_assert_int_gt(HS.max_members, 1);
	/* nothing lost or doubled */
	ck_assert_int_eq(tu_sql_int(&t, "SELECT count(*) FROM nodes WHERE kind = 1"), N * 10);
	ck_assert_int_eq(tu_sql_int(&t, "SELECT count(*) FROM versions"), N * 10);
	ck_assert_int_eq(tu_sql_int(&t, "SELECT count(*) FROM journal WHERE op = 'write'"), N * 10);
	sd_fsck_report rep;
	ck_assert_int_eq(sd_core_fsck(t.c, 0, &rep, NULL, NULL), 0);
	ck_assert_int_eq(rep.bad_refs + rep.bad_used + rep.bad_hash + rep.missing, 0);
	tu_core_close(&t);
}
END_TEST

/* A failing writer in a batch undoes only its own work. */
START_TEST(test_group_commit_failure_isolated)
{
	tu_core t;
	open_inline(&t);
	sd_session *u = tu_user(&t, "alice");
	tu_put(&t, u, "/exists", "x", 1);
	/* an exclusive create of an existing path fails inside its savepoint;
	 * the next commit still lands */
	sd_upload *up;
	ck_assert_int_eq(t.api->upload_begin(u, "/race", SD_UP_EXCL, 0, 0644, &up), 0);
	tu_put(&t, u, "/race", "first", 5);
	ck_assert_int_eq(t.api->upload_write(up, "second", 6), 0);
	ck_assert_int_eq(t.api->upload_commit(up, NULL, NULL, NULL), -EEXIST);
	tu_put(&t, u, "/after", "ok", 2);
	size_t len;
	char *b = tu_get(&t, u, "/race", &len);
	ck_assert(len == 5 && memcmp(b, "first", 5) == 0);
	free(b);
	tu_core_close(&t);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("inline");
	TCase *tc = tcase_create("inline");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_threshold_and_reads);
	tcase_add_test(tc, test_handles);
	tcase_add_test(tc, test_dedup_and_instant);
	tcase_add_test(tc, test_gc_and_fsck);
	tcase_add_test(tc, test_group_commit);
	tcase_add_test(tc, test_group_commit_failure_isolated);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
