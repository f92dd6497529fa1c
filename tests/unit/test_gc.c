/*
 * test_gc.c - the cleaner's FSTS policy (retention, N = unreferenced_min_age,
 * M = disk_high_water) with an injected clock and disk-usage source, and
 * start-up recovery from each crash point of the commit step.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

#include "testutil.h"
#include "core/internal.h"

static int64_t now_ms;
static int disk_pct;
static int64_t clk(void *a)
{
	(void)a;
	return now_ms;
}
static int disk(void *a, int *pct)
{
	(void)a;
	*pct = disk_pct;
	return 0;
}

static void seams(tu_core *t)
{
	now_ms = 1800000000000;
	disk_pct = 50;
	sd__core_set_clock(t->c, clk, NULL);
	sd__core_set_disk_usage(t->c, disk, NULL);
}

#define DAY 86400000LL

START_TEST(test_policy)
{
	tu_core t;
	tu_core_open(&t, 0);
	seams(&t);
	sd_session *u = tu_user(&t, "alice");
	tu_put(&t, u, "/keep", "kept content", 12);
	tu_put(&t, u, "/gone", "deleted content", 15);
	ck_assert_int_eq(t.api->unlink(u, "/gone", 0), 0);
	sd_gc_report rep;

	/* within deleted_retention (7d): nothing happens */
	now_ms += 6 * DAY;
	ck_assert_int_eq(t.api->gc_run(t.c, 0, &rep), 0);
	ck_assert_int_eq(rep.nodes_purged, 0);
	ck_assert_int_eq(tu_sql_int(&t, "SELECT count(*) FROM nodes WHERE deleted_at IS NOT NULL"), 1);

	/* past retention: the node is purged, its blob becomes unreferenced */
	now_ms += 2 * DAY;
	ck_assert_int_eq(t.api->gc_run(t.c, 0, &rep), 0);
	ck_assert_int_eq(rep.nodes_purged, 1);
	ck_assert_int_eq(tu_sql_int(&t, "SELECT count(*) FROM nodes WHERE deleted_at IS NOT NULL"), 0);
	ck_assert_int_eq(tu_sql_int(&t, "SELECT count(*) FROM blobs WHERE refs = 0"), 1);
	ck_assert_int_eq(rep.blobs_removed, 0);
	ck_assert_int_eq(tu_blob_files(&t), 2);

	/* older than N (1d) but disk below M (80%): kept for instant uploads */
	now_ms += 2 * DAY;
	ck_assert_int_eq(t.api->gc_run(t.c, 0, &rep), 0);
	ck_assert_int_eq(rep.blobs_removed, 0);
	ck_assert_int_eq(rep.disk_used_pct, 50);

	/* disk above M but the blob was used recently (< N): kept */
	ck_assert_int_eq(t.api->upload_begin != NULL, 1);
	disk_pct = 85;
	sd_session *v = tu_user(&t, "victor"); /* re-reference then drop it: last use = now */
	tu_put(&t, v, "/x", "deleted content", 15);
	ck_assert_int_eq(t.api->unlink(v, "/x", 0), 0);
	now_ms += 8 * DAY; /* purge victor's node: refs 0 again, last_access = now */
	ck_assert_int_eq(t.api->gc_run(t.c, 0, &rep), 0);
	ck_assert_int_eq(rep.nodes_purged, 1);
	ck_assert_int_eq(rep.blobs_removed, 0);

	/* disk above M and unused for longer than N: removed, file and row */
	now_ms += DAY + 1000;
	ck_assert_int_eq(t.api->gc_run(t.c, 0, &rep), 0);
	ck_assert_int_eq(rep.blobs_removed, 1);
	ck_assert_int_eq(rep.bytes_freed, 15);
	ck_assert_int_eq(tu_blob_files(&t), 1);
	ck_assert_int_eq(tu_sql_int(&t, "SELECT count(*) FROM blobs"), 1);
	/* the live file is untouched */
	size_t len;
	char *b = tu_get(&t, u, "/keep", &len);
	ck_assert(len == 12 && memcmp(b, "kept content", 12) == 0);
	free(b);
	sd_fsck_report fr;
	ck_assert_int_eq(sd_core_fsck(t.c, 0, &fr, NULL, NULL), 0);
	ck_assert_int_eq(fr.missing + fr.orphans + fr.bad_refs + fr.bad_used + fr.bad_hash, 0);
	tu_core_close(&t);
}
END_TEST

START_TEST(test_shared_blob_and_force)
{
	tu_core t;
	tu_core_open(&t, 0);
	seams(&t);
	sd_session *a = tu_user(&t, "alice"), *b = tu_user(&t, "bob");
	tu_put(&t, a, "/f", "same bytes", 10);
	tu_put(&t, b, "/f", "same bytes", 10);
	tu_put(&t, a, "/dir/sub/g", "other", 5);
	ck_assert_int_eq(t.api->unlink(a, "/f", 0), 0);
	ck_assert_int_eq(t.api->unlink(a, "/dir", 1), 0);
	sd_gc_report rep;
	/* force ignores retention, age and high water */
	ck_assert_int_eq(t.api->gc_run(t.c, 1, &rep), 0);
	ck_assert_int_eq(rep.nodes_purged, 4); /* f, dir, sub, g */
	ck_assert_int_eq(rep.blobs_removed, 1); /* "other"; "same bytes" is bob's */
	size_t len;
	char *x = tu_get(&t, b, "/f", &len);
	ck_assert(len == 10 && memcmp(x, "same bytes", 10) == 0);
	free(x);
	ck_assert_int_eq(tu_sql_int(&t, "SELECT refs FROM blobs"), 1);
	ck_assert_int_eq(tu_sql_int(&t, "SELECT used_bytes FROM users WHERE name='alice'"), 0);
	tu_core_close(&t);
}
END_TEST

START_TEST(test_version_and_journal_retention)
{
	tu_core t;
	tu_core_open(&t, 0);
	seams(&t);
	sd_session *u = tu_user(&t, "alice");
	tu_put(&t, u, "/doc", "version one", 11);
	now_ms += 10 * DAY;
	tu_put(&t, u, "/doc", "version two", 11);
	now_ms += 10 * DAY;
	tu_put(&t, u, "/doc", "version three", 13);
	tu_put(&t, u, "/other", "alone", 5); /* a single, current version */
	ck_assert_int_eq(tu_sql_int(&t, "SELECT count(*) FROM versions"), 4);
	sd_gc_report rep;

	/* 20 days after v1: nothing past the 30-day version retention */
	ck_assert_int_eq(t.api->gc_run(t.c, 0, &rep), 0);
	ck_assert_int_eq(rep.versions_dropped, 0);

	/* v1 is 31 days old but was replaced only 21 days ago: kept (a view
	 * of day 5 still needs it) */
	now_ms += 11 * DAY;
	ck_assert_int_eq(t.api->gc_run(t.c, 0, &rep), 0);
	ck_assert_int_eq(rep.versions_dropped, 0);
	/* replaced 31 days ago: dropped, its blob unreferenced */
	now_ms += 10 * DAY;
	ck_assert_int_eq(t.api->gc_run(t.c, 0, &rep), 0);
	ck_assert_int_eq(rep.versions_dropped, 1);
	ck_assert_int_eq(tu_sql_int(&t, "SELECT count(*) FROM versions"), 3);
	ck_assert_int_eq(tu_sql_int(&t, "SELECT refs FROM blobs WHERE size = 11 ORDER BY id LIMIT 1"), 0);

	/* much later: v2 goes too; the current versions never do */
	now_ms += 400 * DAY;
	disk_pct = 95;
	ck_assert_int_eq(t.api->gc_run(t.c, 0, &rep), 0);
	ck_assert_int_eq(rep.versions_dropped, 1);
	ck_assert_int_gt(rep.journal_pruned, 0);
	ck_assert_int_eq(tu_sql_int(&t, "SELECT count(*) FROM versions"), 2);
	/* v1's content, unused for 400 days, is removed (disk above M); v2's
	 * became unreferenced just now, so N keeps it until later */
	ck_assert_int_eq(tu_blob_files(&t), 3);
	now_ms += 2 * DAY;
	ck_assert_int_eq(t.api->gc_run(t.c, 0, &rep), 0);
	ck_assert_int_eq(rep.blobs_removed, 1);
	ck_assert_int_eq(tu_blob_files(&t), 2);
	size_t len;
	char *b = tu_get(&t, u, "/doc", &len);
	ck_assert(len == 13 && memcmp(b, "version three", 13) == 0);
	free(b);
	/* journal rows older than a year were pruned, newer ones kept */
	ck_assert_int_eq(tu_sql_int(&t, "SELECT count(*) FROM journal WHERE ts < 1800000000000 + 400 * 86400000"), 0);
	sd_fsck_report fr;
	ck_assert_int_eq(sd_core_fsck(t.c, 0, &fr, NULL, NULL), 0);
	ck_assert_int_eq(fr.bad_refs + fr.bad_used + fr.missing, 0);
	tu_core_close(&t);
}
END_TEST

START_TEST(test_retention_zero_keeps_everything)
{
	tu_core t;
	tu_core_open(&t, 0);
	tu_core_shut(&t);
	t.conf.version_retention = 0;
	t.conf.journal_retention = 0;
	tu_core_reopen(&t, 0);
	seams(&t);
	sd_session *u = tu_user(&t, "alice");
	tu_put(&t, u, "/doc", "a", 1);
	tu_put(&t, u, "/doc", "b", 1);
	now_ms += 5000 * DAY;
	sd_gc_report rep;
	ck_assert_int_eq(t.api->gc_run(t.c, 1, &rep), 0);
	ck_assert_int_eq(rep.versions_dropped, 0);
	ck_assert_int_eq(rep.journal_pruned, 0);
	ck_assert_int_eq(tu_sql_int(&t, "SELECT count(*) FROM versions"), 2);
	tu_core_close(&t);
}
END_TEST

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* A pid that is not running now. */
static long dead_pid(void)
{
	for (long p = 4000000; p > 100000; p -= 7919)
		if (kill((pid_t)p, 0) != 0 && errno == ESRCH)
			return p;
	return 4194301;
}

START_TEST(test_recovery_crash_points)
{
	tu_core t;
	tu_core_open(&t, 0);
	sd_session *u = tu_user(&t, "alice");
	tu_put(&t, u, "/ok", "fine", 4);
	tu_put(&t, u, "/lost", "will lose its file", 18);
	tu_core_shut(&t);

	char p[PATH_MAX], hex[65];
	/* crash point 1: a temp file left by a process that died mid-upload */
	snprintf(p, sizeof p, "%s/tmp/%ld-7.tmp", t.dir, dead_pid());
	write_file(p, "half an upload", 14);
	/* ... and one of a live process (our parent) that must survive */
	char live[PATH_MAX];
	snprintf(live, sizeof live, "%s/tmp/%ld-1.tmp", t.dir, (long)getppid());
	write_file(live, "in progress", 11);
	/* crash point 2: blob renamed into place, row never written */
	const char *orphan = "orphaned content";
	tu_sha_hex(orphan, strlen(orphan), hex);
	char dir[PATH_MAX - 100];
	snprintf(dir, sizeof dir, "%s/blobs/%.2s", t.dir, hex);
	mkdir(dir, 0750);
	snprintf(dir, sizeof dir, "%s/blobs/%.2s/%.2s", t.dir, hex, hex + 2);
	mkdir(dir, 0750);
	ck_assert_int_lt(snprintf(p, sizeof p, "%s/%s", dir, hex), (int)sizeof p);
	write_file(p, orphan, strlen(orphan));
	/* a damaged orphan (content does not match its name) */
	char badhex[65];
	tu_sha_hex("x", 1, badhex);
	snprintf(dir, sizeof dir, "%s/blobs/%.2s", t.dir, badhex);
	mkdir(dir, 0750);
	snprintf(dir, sizeof dir, "%s/blobs/%.2s/%.2s", t.dir, badhex, badhex + 2);
	mkdir(dir, 0750);
	char badp[PATH_MAX];
	ck_assert_int_lt(snprintf(badp, sizeof badp, "%s/%s", dir, badhex), (int)sizeof badp);
	write_file(badp, "not x", 5);
	/* crash point 3 (external damage): a row whose file is gone */
	char losthex[65], lostp[PATH_MAX];
	tu_sha_hex("will lose its file", 18, losthex);
	snprintf(lostp, sizeof lostp, "%s/blobs/%.2s/%.2s/%s", t.dir, losthex, losthex + 2, losthex);
	ck_assert_int_eq(unlink(lostp), 0);

	tu_core_reopen(&t, SD_CORE_RECOVER);
	u = tu_session(&t, "alice");
	ck_assert_int_eq(tu_temp_files(&t), 1); /* only the live one */
	ck_assert_int_eq(access(live, F_OK), 0);
	unlink(live);
	/* the valid orphan is adopted as an unreferenced blob */
	char q[200];
	snprintf(q, sizeof q, "SELECT refs FROM blobs WHERE sha256='%s'", hex);
	ck_assert_int_eq(tu_sql_int(&t, q), 0);
	/* the damaged one is removed */
	ck_assert_int_ne(access(badp, F_OK), 0);
	/* the missing file is reported, and reading it is a clear error */
	sd_reader *rd = NULL;
	sd_stat st;
	ck_assert_int_eq(t.api->open_read(u, "/lost", &rd, &st), -SD_ECORRUPT);
	ck_assert_ptr_null(rd);
	size_t len;
	char *b = tu_get(&t, u, "/ok", &len);
	ck_assert(len == 4 && memcmp(b, "fine", 4) == 0);
	free(b);
	sd_fsck_report fr;
	ck_assert_int_eq(sd_core_fsck(t.c, 0, &fr, NULL, NULL), 0);
	ck_assert_int_eq(fr.missing, 1);
	ck_assert_int_eq(fr.orphans, 0);
	ck_assert_int_eq(fr.bad_hash, 0);
	/* the adopted content is usable: an instant upload links it (proof
	 * needed: nobody references it) */
	sd_challenge ch;
	ck_assert_int_eq(t.api->instant_begin(u, "/again", 0, hex, strlen(orphan), &ch, &st),
			 -SD_ECHALLENGE);
	tu_core_close(&t);
}
END_TEST

START_TEST(test_fsck_finds_and_repairs)
{
	tu_core t;
	tu_core_open(&t, 0);
	sd_session *u = tu_user(&t, "alice");
	tu_put(&t, u, "/a", "alpha", 5);
	tu_put(&t, u, "/b", "bravo", 5);
	tu_core_shut(&t);
	/* damage: wrong refcount, wrong usage, flipped content */
	char cmd[600];
	snprintf(cmd, sizeof cmd, "sqlite3 '%s/storaged.db' \"UPDATE blobs SET refs = 5 WHERE size = 5 "
		 "AND rowid = 1; UPDATE users SET used_bytes = 3\"", t.dir);
	ck_assert_int_eq(system(cmd), 0);
	char hex[65], p[PATH_MAX];
	tu_sha_hex("bravo", 5, hex);
	snprintf(p, sizeof p, "%s/blobs/%.2s/%.2s/%s", t.dir, hex, hex + 2, hex);
	write_file(p, "BRAVO", 5);
	tu_core_reopen(&t, 0);
	sd_fsck_report fr;
	ck_assert_int_eq(sd_core_fsck(t.c, 0, &fr, NULL, NULL), 0);
	ck_assert_int_eq(fr.bad_refs, 1);
	ck_assert_int_eq(fr.bad_used, 1);
	ck_assert_int_eq(fr.bad_hash, 1);
	ck_assert_int_eq(sd_core_fsck(t.c, 1, &fr, NULL, NULL), 0);
	ck_assert_int_eq(fr.repaired, 2);
	ck_assert_int_eq(sd_core_fsck(t.c, 0, &fr, NULL, NULL), 0);
	ck_assert_int_eq(fr.bad_refs + fr.bad_used, 0);
	ck_assert_int_eq(fr.bad_hash, 1); /* damage cannot be repaired, only reported */
	tu_core_close(&t);
}
END_TEST

START_TEST(test_cleaner_thread_sweeps_temps)
{
	tu_core t;
	tu_core_open(&t, 0);
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s/tmp/%ld-3.tmp", t.dir, dead_pid());
	write_file(p, "x", 1);
	tu_core_shut(&t);
	t.conf.cleaner_interval = 100; /* ms */
	tu_core_reopen(&t, SD_CORE_THREADS);
	for (int i = 0; i < 100 && access(p, F_OK) == 0; i++)
		usleep(20000);
	ck_assert_int_ne(access(p, F_OK), 0);
	tu_core_close(&t);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("gc");
	TCase *tc = tcase_create("gc");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_policy);
	tcase_add_test(tc, test_shared_blob_and_force);
	tcase_add_test(tc, test_version_and_journal_retention);
	tcase_add_test(tc, test_retention_zero_keeps_everything);
	tcase_add_test(tc, test_recovery_crash_points);
	tcase_add_test(tc, test_fsck_finds_and_repairs);
	tcase_add_test(tc, test_cleaner_thread_sweeps_temps);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
