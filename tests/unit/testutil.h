/*
 * testutil.h - shared helpers for the check suites: a fresh data directory
 * per test and a core opened on it.
 */
#ifndef SD_TESTUTIL_H
#define SD_TESTUTIL_H

#include <check.h>
#include <openssl/evp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/types.h>

#include "core/conf.h"
#include "core/core.h"
#include "core/log.h"
#include "core/storaged.h"
#include "core/store.h"

/* Run one suite (fork mode, as check defaults); exit status for main. */
static inline int tu_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

/* mkdtemp under /tmp; returns a malloc'd path. */
static inline char *tu_tempdir(void)
{
	char tmpl[] = "/tmp/sdunit.XXXXXX";
	char *d = mkdtemp(tmpl);
	ck_assert_ptr_nonnull(d);
	return strdup(d);
}

static inline void tu_rmrf(const char *dir)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Write text to dir/name; returns malloc'd full path. */
static inline char *tu_write_file(const char *dir, const char *name, const char *text)
{
	char *p = malloc(strlen(dir) + strlen(name) + 2);
	sprintf(p, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	return p;
}

/* ------------------------------------------------------------------
 * A core opened on a fresh temp data directory with default settings.
 *
 *   tu_core t;
 *   tu_core_open(&t, 0);             // flags: SD_CORE_RECOVER etc.
 *   sd_session *u = tu_user(&t, "alice");
 *   tu_put(&t, u, "/a.txt", "hello", 5);
 *   ...
 *   tu_core_close(&t);               // closes sessions, the core, removes the directory
 *
 * Sessions made by tu_user/tu_session are closed by tu_core_close and
 * tu_core_shut (before the core), so LSan sees no leak.
 */
#define TU_SESSIONS 32
typedef struct tu_core {
	char *dir;
	sd_conf conf;
	sd_core *c;
	const sd_core_api *api;
	sd_session *sess[TU_SESSIONS];
	int nsess;
	struct sd_store *store; /* tu_core_open_store: the store to reopen with */
} tu_core;

/* Remember a session to close with the core. */
static inline sd_session *tu_keep(tu_core *t, sd_session *s)
{
	ck_assert_int_lt(t->nsess, TU_SESSIONS);
	t->sess[t->nsess++] = s;
	return s;
}

/* Close every remembered session (handles still open are abandoned). */
static inline void tu_sessions_close(tu_core *t)
{
	for (int i = 0; i < t->nsess; i++)
		t->api->session_close(t->sess[i]);
	t->nsess = 0;
}

/* Open (or reopen, keeping t->dir and t->conf) the core. */
static inline void tu_core_reopen(tu_core *t, unsigned flags)
{
	char err[512] = "";
	t->c = sd_core_open(&t->conf, flags, err, sizeof err);
	ck_assert_msg(t->c != NULL, "sd_core_open: %s", err);
	t->api = sd_core_api_table();
}

/* Close sessions and the core, keeping the directory (for a reopen). */
static inline void tu_core_shut(tu_core *t)
{
	tu_sessions_close(t);
	sd_core_close(t->c);
	t->c = NULL;
}

/* Fresh directory and default settings, core not opened yet (a test may
 * change t->conf first, then call tu_core_reopen or tu_core_open_store). */
static inline void tu_core_prepare(tu_core *t)
{
	memset(t, 0, sizeof *t);
	if (!getenv("SD_TEST_VERBOSE"))
		sd_log_set_level(SD_LOG_ERROR);
	t->dir = tu_tempdir();
	char err[512] = "";
	ck_assert_msg(sd_conf_defaults(&t->conf, t->dir, err, sizeof err) == 0, "defaults: %s", err);
	free(t->conf.data_dir);
	t->conf.data_dir = strdup(t->dir);
	/* small buffers so multi-buffer paths run on small test data */
	t->conf.write_buffer = 64 * 1024;
	t->conf.auth_fail_delay = 0;
	/* contents are files in blobs/ unless a suite turns inline storage
	 * on (test_inline.c does; the daemon's default is inline) */
	t->conf.inline_max = 0;
}

static inline void tu_core_open(tu_core *t, unsigned flags)
{
	tu_core_prepare(t);
	tu_core_reopen(t, flags);
}

/* Open the core of a prepared t on a store the test made (owned by the
 * core from here on). */
static inline void tu_core_open_store(tu_core *t, unsigned flags, struct sd_store *store)
{
	char err[512] = "";
	t->c = sd_core_open_store(&t->conf, flags, store, err, sizeof err);
	ck_assert_msg(t->c != NULL, "sd_core_open_store: %s", err);
	t->api = sd_core_api_table();
}

static inline void tu_core_close(tu_core *t)
{
	tu_sessions_close(t);
	sd_core_close(t->c);
	t->c = NULL;
	tu_rmrf(t->dir);
	free(t->dir);
	sd_conf_free(&t->conf);
}

/* An admin-tool session for an existing user (closed with the core). */
static inline sd_session *tu_session(tu_core *t, const char *name)
{
	sd_session *s = NULL;
	int r = sd_core_session(t->c, name, &s);
	ck_assert_msg(r == 0, "session %s: %s", name, t->api->strerror(r));
	return tu_keep(t, s);
}

/* A user without a password (no Argon2id cost); returns a session acting
 * as it (closed with the core). */
static inline sd_session *tu_user(tu_core *t, const char *name)
{
	int64_t id = 0;
	int r = t->api->user_add(t->c, name, NULL, 0, 0, &id);
	ck_assert_msg(r == 0, "user_add %s: %s", name, t->api->strerror(r));
	return tu_session(t, name);
}

/* The user row of a session's user. */
static inline sd_user tu_row(tu_core *t, sd_session *s)
{
	sd_session_info si;
	ck_assert_int_eq(t->api->session_info(s, &si), 0);
	sd_user u;
	ck_assert_int_eq(t->api->user_get_id(t->c, si.uid, &u), 0);
	return u;
}

/* Upload len bytes to path (parents created); returns the commit result. */
static inline int tu_put_r(tu_core *t, sd_session *u, const char *path, const void *data,
			   size_t len, sd_stat *st, int *dedup)
{
	(void)t;
	sd_upload *up = NULL;
	int r = t->api->upload_begin(u, path, SD_UP_PARENTS, 0, 0644, &up);
	if (r < 0)
		return r;
	/* feed in uneven chunks to exercise the buffering */
	size_t off = 0, chunk = 1000;
	while (off < len) {
		size_t n = len - off < chunk ? len - off : chunk;
		r = t->api->upload_write(up, (const char *)data + off, n);
		if (r < 0) {
			t->api->upload_abort(up);
			return r;
		}
		off += n;
		chunk = chunk * 3 + 7;
	}
	return t->api->upload_commit(up, NULL, st, dedup);
}

static inline void tu_put(tu_core *t, sd_session *u, const char *path, const void *data, size_t len)
{
	int r = tu_put_r(t, u, path, data, len, NULL, NULL);
	ck_assert_msg(r == 0, "put %s: %s", path, t->api->strerror(r));
}

/* Read a whole file through a reader; returns malloc'd bytes, *len set.
 * Reads in uneven pieces, and checks that reading past the end gives 0. */
static inline char *tu_get(tu_core *t, sd_session *u, const char *path, size_t *len)
{
	sd_reader *rd = NULL;
	sd_stat st;
	int r = t->api->open_read(u, path, &rd, &st);
	ck_assert_msg(r == 0, "open_read %s: %s", path, t->api->strerror(r));
	char *buf = malloc(st.size + 1);
	size_t got = 0, piece = 777;
	while (got < st.size) {
		size_t want = st.size - got < piece ? st.size - got : piece;
		ssize_t n = t->api->reader_pread(rd, buf + got, want, got);
		ck_assert_int_gt(n, 0);
		got += (size_t)n;
		piece = piece * 2 + 1;
	}
	char extra;
	ck_assert_int_eq(t->api->reader_pread(rd, &extra, 1, st.size), 0);
	t->api->reader_close(rd);
	*len = got;
	return buf;
}

/* Lowercase hex SHA-256 of a buffer. */
static inline void tu_sha_hex(const void *data, size_t len, char out[65])
{
	unsigned char d[32];
	unsigned int n;
	EVP_Digest(data, len, d, &n, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* Number of 64-hex-named files under the store. */
static inline int tu_blob_files(tu_core *t)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd,
		 "find '%s/blobs' -type f -regextype posix-extended -regex '.*/[0-9a-f]{64}' 2>/dev/null | wc -l",
		 t->dir);
	FILE *f = popen(cmd, "r");
	int n = -1;
	ck_assert_int_eq(fscanf(f, "%d", &n), 1);
	pclose(f);
	return n;
}

/* Number of files in tmp/. */
static inline int tu_temp_files(tu_core *t)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "find '%s/tmp' -type f -name '*.tmp' | wc -l", t->dir);
	FILE *f = popen(cmd, "r");
	int n = -1;
	ck_assert_int_eq(fscanf(f, "%d", &n), 1);
	pclose(f);
	return n;
}

/* Run one SQL query returning one integer, on the data dir's database. */
static inline long long tu_sql_int(tu_core *t, const char *sql)
{
	char cmd[1200];
	snprintf(cmd, sizeof cmd, "sqlite3 '%s/storaged.db' \"%s\"", t->dir, sql);
	FILE *f = popen(cmd, "r");
	long long v = -1;
	ck_assert_msg(fscanf(f, "%lld", &v) == 1, "sql: %s", sql);
	pclose(f);
	return v;
}

#endif
