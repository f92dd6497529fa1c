/* test_db.c - connection setup, migrations, and refusing a newer schema. */
#include "testutil.h"
#include <pthread.h>

#include "db/db.h"

START_TEST(test_migrates_and_reopens)
{
	char *dir = tu_tempdir();
	char path[512], err[300] = "";
	snprintf(path, sizeof path, "%s/t.db", dir);
	sd_db *db = sd_db_open(path, 1, 2, 1000, err, sizeof err);
	ck_assert_msg(db != NULL, "%s", err);
	sd_db_close(db);
	/* reopening applies nothing and succeeds */
	db = sd_db_open(path, 1, 2, 1000, err, sizeof err);
	ck_assert_msg(db != NULL, "%s", err);
	sd_dbc *c = sd_db_read_begin(db);
	sqlite3_stmt *st;
	ck_assert_int_eq(sqlite3_prepare_v2(sd_db_handle(c), "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	ck_assert_int_eq(sqlite3_prepare_v2(sd_db_handle(c), "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_int_eq(sqlite3_column_int(st, 0), sd_db_schema_version());
	sqlite3_finalize(st);
	ck_assert_int_eq(sqlite3_prepare_v2(sd_db_handle(c), "PRAGMA synchronous", -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_int_eq(sqlite3_column_int(st, 0), 2); /* FULL */
	sqlite3_finalize(st);
	sd_db_read_end(db, c);
	sd_db_close(db);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(test_newer_schema_refused)
{
	char *dir = tu_tempdir();
	char path[512], err[300] = "", cmd[700];
	snprintf(path, sizeof path, "%s/t.db", dir);
	sd_db *db = sd_db_open(path, 1, 1, 1000, err, sizeof err);
	ck_assert_ptr_nonnull(db);
	sd_db_close(db);
	snprintf(cmd, sizeof cmd, "sqlite3 '%s' 'PRAGMA user_version=%d'", path, sd_db_schema_version() + 1);
	ck_assert_int_eq(system(cmd), 0);
	db = sd_db_open(path, 1, 1, 1000, err, sizeof err);
	ck_assert_ptr_null(db);
	ck_assert_msg(strstr(err, "newer than this storaged") != NULL, "message: %s", err);
	/* the file is untouched */
	snprintf(cmd, sizeof cmd, "test \"$(sqlite3 '%s' 'PRAGMA user_version')\" = %d", path,
		 sd_db_schema_version() + 1);
	ck_assert_int_eq(system(cmd), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(test_core_open_errors)
{
	tu_core t;
	tu_core_open(&t, 0);
	sd_core_close(t.c);
	t.c = NULL;
	/* a data dir that cannot be created: a path below a regular file */
	char *file = tu_write_file(t.dir, "plain", "x");
	char *saved = t.conf.data_dir;
	t.conf.data_dir = file;
	char err[300] = "";
	sd_core *c = sd_core_open(&t.conf, 0, err, sizeof err);
	ck_assert_ptr_null(c);
	ck_assert_msg(strstr(err, "cannot create data directory") != NULL, "message: %s", err);
	t.conf.data_dir = saved;
	free(file);
	tu_core_reopen(&t, 0);
	tu_core_close(&t);
}
END_TEST

static void *writer(void *arg)
{
	sd_db *db = arg;
	for (int i = 0; i < 200; i++) {
		sd_dbc *c = sd_db_write_begin(db);
		sqlite3_exec(sd_db_handle(c), "INSERT INTO journal(ts, op) VALUES (1, 't')", NULL, NULL, NULL);
		ck_assert_int_eq(sd_db_write_end(db, c, 1), 0);
	}
	return NULL;
}

START_TEST(test_concurrent_writers_readers)
{
	char *dir = tu_tempdir();
	char path[512], err[300] = "";
	snprintf(path, sizeof path, "%s/t.db", dir);
	sd_db *db = sd_db_open(path, 0, 2, 5000, err, sizeof err);
	ck_assert_ptr_nonnull(db);
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, writer, db);
	for (int k = 0; k < 100; k++) {
		sd_dbc *c = sd_db_read_begin(db);
		sd_db_read_end(db, c);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	sd_dbc *c = sd_db_read_begin(db);
	sqlite3_stmt *st;
	sqlite3_prepare_v2(sd_db_handle(c), "SELECT count(*) FROM journal", -1, &st, NULL);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_int_eq(sqlite3_column_int(st, 0), 800);
	sqlite3_finalize(st);
	sd_db_read_end(db, c);
	sd_db_close(db);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("db");
	TCase *tc = tcase_create("db");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_migrates_and_reopens);
	tcase_add_test(tc, test_newer_schema_refused);
	tcase_add_test(tc, test_core_open_errors);
	tcase_add_test(tc, test_concurrent_writers_readers);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
