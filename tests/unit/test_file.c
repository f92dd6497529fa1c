/*
 * test_file.c - core/file.c (random-access files, DESIGN path 4) through
 * api->handle_*: sequential create (visible at its first commit),
 * patching an existing file, truncate, TRUNC/APPEND/EXCL, sync as a
 * version, abandon, two writers (last close wins), Cage's open modes,
 * read-only logins, directories, a write failure injected through the
 * sys.c seam (the previous version survives), and handles as a session's
 * own: refused to other sessions, abandoned when the session closes or
 * ends.
 */
#include <openssl/evp.h>
#include <stdint.h>

#include "testutil.h"
#include "util/sys.h"

/* ---------------------------------------------------------------- helpers */

static tu_core T;
static sd_session *U;

static void setup(void)
{
	tu_core_open(&T, 0);
	U = tu_user(&T, "alice");
}

static void teardown(void)
{
	sd__sys_fail_clear();
	tu_core_close(&T);
}

static void sha_hex(const void *buf, size_t len, char out[SD_SHA256_HEX])
{
	unsigned char h[32];
	unsigned int hl = 0;
	ck_assert_int_eq(EVP_Digest(buf, len, h, &hl, EVP_sha256(), NULL), 1);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
}

static char *pattern(size_t len, unsigned seed)
{
	char *b = malloc(len ? len : 1);
	uint32_t x = seed * 2654435761u + 12345u;
	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		b[i] = (char)(x >> 16);
	}
	return b;
}

/* The file's current content equals data, and stat's sha256 matches it. */
static void expect_content(const char *path, const void *data, size_t len)
{
	size_t got = 0;
	char *b = tu_get(&T, U, path, &got);
	ck_assert_msg(got == len, "%s: %zu bytes, expected %zu", path, got, len);
	ck_assert_msg(len == 0 || memcmp(b, data, len) == 0, "%s: content differs", path);
	free(b);
	char h[SD_SHA256_HEX];
	sha_hex(data, len, h);
	sd_stat st;
	ck_assert_int_eq(T.api->stat(U, path, &st), 0);
	ck_assert_str_eq(st.sha256, h);
	ck_assert_uint_eq(st.size, len);
}

static int64_t versions(const char *path)
{
	sd_stat st;
	int r = T.api->stat(U, path, &st);
	ck_assert_msg(r == 0, "stat %s: %d", path, r);
	return st.versions;
}

static void expect_stat_err(const char *path, int err)
{
	sd_stat st;
	int r = T.api->stat(U, path, &st);
	ck_assert_msg(r == err, "stat %s: got %d, expected %d", path, r, err);
}

/* A read-only login of alice (a read-only token), closed with the core. */
static sd_session *ro_session(void)
{
	char tok[SD_TOKEN_MAX];
	ck_assert_int_eq(T.api->token_create(T.c, "alice", SD_SCOPE_RO, 0, tok, NULL), 0);
	sd_session *s = NULL;
	ck_assert_int_eq(T.api->auth_token(T.c, tok, "127.0.0.1", "test", &s), 0);
	return tu_keep(&T, s);
}

/* A handle of U (0 is never a handle). */
static sd_handle xopen(const char *path, unsigned flags)
{
	sd_handle h = 0;
	int r = T.api->handle_open(U, path, flags, 0644, &h, NULL);
	ck_assert_msg(r == 0, "handle_open %s 0x%x: %s", path, flags, T.api->strerror(r));
	ck_assert_uint_ne(h, 0);
	return h;
}

/* An open that may fail: then *h stays 0 (the out-pointer is not set). */
static int try_open(sd_session *s, const char *path, unsigned flags, sd_handle *h)
{
	*h = 0;
	int r = T.api->handle_open(s, path, flags, 0644, h, NULL);
	if (r < 0)
		ck_assert_uint_eq(*h, 0);
	return r;
}

static void xwrite(sd_handle h, const void *buf, size_t len, uint64_t off)
{
	ssize_t n = T.api->handle_pwrite(U, h, buf, len, off);
	ck_assert_msg(n == (ssize_t)len, "pwrite %zu@%llu: %zd", len, (unsigned long long)off, n);
}

/* Writes data sequentially in uneven pieces. */
static void write_seq(sd_handle f, const char *data, size_t len)
{
	size_t off = 0, chunk = 777;
	while (off < len) {
		size_t n = len - off < chunk ? len - off : chunk;
		xwrite(f, data + off, n, off);
		off += n;
		chunk = chunk * 2 + 13;
	}
}

/* ---------------------------------------------------------------- writing */

START_TEST(test_create_sequential)
{
	size_t n = 300000; /* several 64 KiB pipeline buffers */
	char *d = pattern(n, 1);
	sd_handle f = 0;
	sd_stat st;
	ck_assert_int_eq(T.api->handle_open(U, "/new.bin", SD_O_CREAT | SD_O_WRITE, 0644, &f, &st), 0);
	ck_assert_uint_ne(f, 0);
	ck_assert_uint_eq(st.size, 0); /* a new file: empty, no content address */
	ck_assert_str_eq(st.sha256, "");
	write_seq(f, d, n);
	ck_assert_int_eq(T.api->handle_fstat(U, f, &st), 0);
	ck_assert_uint_eq(st.size, n);
	ck_assert_str_eq(st.sha256, ""); /* unsaved writes */
	/* a create is invisible until its first commit */
	expect_stat_err("/new.bin", -ENOENT);
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM nodes WHERE name='new.bin'"), 0);
	ck_assert_int_eq(T.api->handle_close(U, f), 0);
	expect_content("/new.bin", d, n);
	ck_assert_int_eq(versions("/new.bin"), 1); /* no empty version before it */
	ck_assert_int_eq(tu_temp_files(&T), 0);
	ck_assert_int_eq(tu_sql_int(&T, "SELECT used_bytes FROM users WHERE name='alice'"), (long long)n);
	ck_assert_int_ge(tu_sql_int(&T, "SELECT count(*) FROM journal WHERE op='write' AND path='/new.bin'"), 1);
	/* the default mode of a created file, or the one given */
	ck_assert_int_eq(T.api->stat(U, "/new.bin", &st), 0);
	ck_assert_uint_eq(st.mode, 0644);
	sd_handle g = 0;
	ck_assert_int_eq(T.api->handle_open(U, "/m600", SD_O_CREAT | SD_O_WRITE, 0600, &g, NULL), 0);
	xwrite(g, "x", 1, 0);
	ck_assert_int_eq(T.api->handle_close(U, g), 0);
	ck_assert_int_eq(T.api->stat(U, "/m600", &st), 0);
	ck_assert_uint_eq(st.mode, 0600);
	expect_content("/m600", "x", 1);
	/* open without CREAT on a missing path; CREAT under a missing dir */
	ck_assert_int_eq(try_open(U, "/missing", SD_O_READ, &g), -ENOENT);
	ck_assert_int_eq(try_open(U, "/missing", SD_O_WRITE, &g), -ENOENT);
	ck_assert_int_eq(try_open(U, "/nodir/x", SD_O_CREAT | SD_O_WRITE, &g), -ENOENT);
	ck_assert_uint_eq(g, 0);
	free(d);
}
END_TEST

START_TEST(test_patch_middle)
{
	size_t n = 200000;
	char *d = pattern(n, 2);
	tu_put(&T, U, "/p.bin", d, n);
	char patch[1500];
	memset(patch, 'P', sizeof patch);
	uint64_t at = 100000;

	sd_handle f = 0;
	sd_stat st;
	ck_assert_int_eq(T.api->handle_open(U, "/p.bin", SD_O_READ | SD_O_WRITE, 0, &f, &st), 0);
	char hd[SD_SHA256_HEX];
	sha_hex(d, n, hd);
	ck_assert_uint_eq(st.size, n); /* the file as opened: its base */
	ck_assert_str_eq(st.sha256, hd);
	/* reads before any write come from the stored version */
	char buf[2000];
	ck_assert_int_eq(T.api->handle_pread(U, f, buf, 100, 5), 100);
	ck_assert_int_eq(memcmp(buf, d + 5, 100), 0);
	xwrite(f, patch, sizeof patch, at);
	/* reads through the handle see the new bytes before close */
	ck_assert_int_eq(T.api->handle_pread(U, f, buf, 2000, at - 250), 2000);
	ck_assert_int_eq(memcmp(buf, d + at - 250, 250), 0);
	ck_assert_int_eq(memcmp(buf + 250, patch, sizeof patch), 0);
	ck_assert_int_eq(memcmp(buf + 250 + sizeof patch, d + at + sizeof patch, 250), 0);
	/* reads past the end are short / empty */
	ck_assert_int_eq(T.api->handle_pread(U, f, buf, 100, n - 10), 10);
	ck_assert_int_eq(T.api->handle_pread(U, f, buf, 100, n), 0);
	ck_assert_int_eq(T.api->handle_pread(U, f, buf, 100, n + 100), 0);
	/* others still see the old version until the commit */
	expect_content("/p.bin", d, n);
	ck_assert_int_eq(T.api->handle_close(U, f), 0);

	memcpy(d + at, patch, sizeof patch);
	expect_content("/p.bin", d, n);
	ck_assert_int_eq(versions("/p.bin"), 2);
	ck_assert_int_eq(tu_temp_files(&T), 0);

	/* a write past the end leaves a zero-filled hole */
	f = xopen("/p.bin", SD_O_WRITE);
	xwrite(f, "END", 3, n + 1000);
	ck_assert_int_eq(T.api->handle_close(U, f), 0);
	char *e = calloc(1, n + 1003);
	memcpy(e, d, n);
	memcpy(e + n + 1000, "END", 3);
	expect_content("/p.bin", e, n + 1003);
	ck_assert_int_eq(versions("/p.bin"), 3);
	/* opening and closing without writing adds no version */
	f = xopen("/p.bin", SD_O_READ | SD_O_WRITE);
	ck_assert_int_eq(T.api->handle_pread(U, f, buf, 10, 0), 10);
	ck_assert_int_eq(T.api->handle_close(U, f), 0);
	ck_assert_int_eq(versions("/p.bin"), 3);
	/* a read-only handle cannot write */
	f = xopen("/p.bin", SD_O_READ);
	ck_assert_int_lt(T.api->handle_pwrite(U, f, "x", 1, 0), 0);
	ck_assert_int_lt(T.api->handle_truncate(U, f, 1), 0);
	ck_assert_int_eq(T.api->handle_close(U, f), 0);
	expect_content("/p.bin", e, n + 1003);
	free(e);
	free(d);
}
END_TEST

START_TEST(test_truncate)
{
	size_t n = 100000;
	char *d = pattern(n, 3);
	tu_put(&T, U, "/t", d, n);
	/* shorter */
	sd_handle f = xopen("/t", SD_O_WRITE);
	ck_assert_int_eq(T.api->handle_truncate(U, f, 1000), 0);
	sd_stat st;
	ck_assert_int_eq(T.api->handle_fstat(U, f, &st), 0);
	ck_assert_uint_eq(st.size, 1000);
	char buf[64];
	ck_assert_int_eq(T.api->handle_pread(U, f, buf, 64, 990), 10);
	ck_assert_int_eq(T.api->handle_close(U, f), 0);
	expect_content("/t", d, 1000);
	/* longer: zero fill */
	f = xopen("/t", SD_O_WRITE);
	ck_assert_int_eq(T.api->handle_truncate(U, f, 5000), 0);
	ck_assert_int_eq(T.api->handle_pread(U, f, buf, 64, 4000), 64);
	for (int i = 0; i < 64; i++)
		ck_assert_int_eq(buf[i], 0);
	ck_assert_int_eq(T.api->handle_close(U, f), 0);
	char *z = calloc(1, 5000);
	memcpy(z, d, 1000);
	expect_content("/t", z, 5000);
	/* to zero, then write */
	f = xopen("/t", SD_O_WRITE);
	ck_assert_int_eq(T.api->handle_truncate(U, f, 0), 0);
	xwrite(f, "fresh", 5, 0);
	ck_assert_int_eq(T.api->handle_close(U, f), 0);
	expect_content("/t", "fresh", 5);
	/* write, then truncate inside what was written */
	f = xopen("/t", SD_O_WRITE);
	xwrite(f, "0123456789", 10, 5);
	ck_assert_int_eq(T.api->handle_truncate(U, f, 8), 0);
	ck_assert_int_eq(T.api->handle_close(U, f), 0);
	expect_content("/t", "fresh012", 8);
	ck_assert_int_eq(versions("/t"), 5);
	free(z);
	free(d);
}
END_TEST

START_TEST(test_flags)
{
	tu_put(&T, U, "/a", "hello", 5);
	/* TRUNC: empty at once, content replaced on close */
	sd_handle f = xopen("/a", SD_O_WRITE | SD_O_TRUNC);
	sd_stat st;
	ck_assert_int_eq(T.api->handle_fstat(U, f, &st), 0);
	ck_assert_uint_eq(st.size, 0);
	char buf[16];
	ck_assert_int_eq(T.api->handle_pread(U, f, buf, sizeof buf, 0), 0);
	xwrite(f, "new", 3, 0);
	ck_assert_int_eq(T.api->handle_close(U, f), 0);
	expect_content("/a", "new", 3);
	/* TRUNC alone, nothing written: an empty file */
	f = xopen("/a", SD_O_WRITE | SD_O_TRUNC);
	ck_assert_int_eq(T.api->handle_close(U, f), 0);
	expect_content("/a", "", 0);
	/* APPEND: every write lands at the end, whatever the offset */
	tu_put(&T, U, "/b", "hello", 5);
	f = xopen("/b", SD_O_WRITE | SD_O_APPEND);
	xwrite(f, " world", 6, 0);
	xwrite(f, "!", 1, 2);
	ck_assert_int_eq(T.api->handle_close(U, f), 0);
	expect_content("/b", "hello world!", 12);
	/* CREAT|APPEND on a new path */
	f = xopen("/c", SD_O_CREAT | SD_O_APPEND);
	xwrite(f, "ab", 2, 100);
	xwrite(f, "cd", 2, 0);
	ck_assert_int_eq(T.api->handle_close(U, f), 0);
	expect_content("/c", "abcd", 4);
	/* EXCL */
	sd_handle g = 0;
	ck_assert_int_eq(try_open(U, "/b", SD_O_CREAT | SD_O_EXCL | SD_O_WRITE, &g), -EEXIST);
	ck_assert_uint_eq(g, 0);
	expect_content("/b", "hello world!", 12);
	f = xopen("/d", SD_O_CREAT | SD_O_EXCL | SD_O_WRITE);
	xwrite(f, "d", 1, 0);
	ck_assert_int_eq(T.api->handle_close(U, f), 0);
	expect_content("/d", "d", 1);
	/* CREAT on an existing file opens it, content kept */
	f = xopen("/d", SD_O_CREAT | SD_O_WRITE | SD_O_READ);
	ck_assert_int_eq(T.api->handle_pread(U, f, buf, sizeof buf, 0), 1);
	ck_assert_int_eq(T.api->handle_close(U, f), 0);
	expect_content("/d", "d", 1);
	ck_assert_int_eq(tu_temp_files(&T), 0);
}
END_TEST

START_TEST(test_sync)
{
	sd_handle f = xopen("/s", SD_O_CREAT | SD_O_WRITE | SD_O_READ);
	/* a created file has no version (and no name) before its first
	 * commit: the sync below creates it */
	expect_stat_err("/s", -ENOENT);
	int64_t v0 = 0;
	xwrite(f, "version one", 11, 0);
	ck_assert_int_eq(T.api->handle_sync(U, f), 0);
	ck_assert_int_eq(versions("/s"), v0 + 1);
	expect_content("/s", "version one", 11);
	/* the handle stays usable: read, write, sync again */
	char buf[32];
	ck_assert_int_eq(T.api->handle_pread(U, f, buf, sizeof buf, 0), 11);
	ck_assert_int_eq(memcmp(buf, "version one", 11), 0);
	xwrite(f, "TWO", 3, 8);
	ck_assert_int_eq(T.api->handle_pread(U, f, buf, sizeof buf, 0), 11);
	ck_assert_int_eq(memcmp(buf, "version TWO", 11), 0);
	ck_assert_int_eq(T.api->handle_sync(U, f), 0);
	ck_assert_int_eq(versions("/s"), v0 + 2);
	expect_content("/s", "version TWO", 11);
	/* a clean sync is a no-op */
	ck_assert_int_eq(T.api->handle_sync(U, f), 0);
	ck_assert_int_eq(versions("/s"), v0 + 2);
	xwrite(f, " and three", 10, 11);
	ck_assert_int_eq(T.api->handle_close(U, f), 0);
	ck_assert_int_eq(versions("/s"), v0 + 3);
	expect_content("/s", "version TWO and three", 21);
	ck_assert_int_eq(tu_temp_files(&T), 0);
}
END_TEST

START_TEST(test_abandon)
{
	tu_put(&T, U, "/a", "original", 8);
	int blobs = tu_blob_files(&T);
	sd_handle f = xopen("/a", SD_O_WRITE);
	size_t n = 150000;
	char *d = pattern(n, 5);
	write_seq(f, d, n); /* random mode: the base was copied first */
	ck_assert_int_ge(tu_temp_files(&T), 1);
	ck_assert_int_eq(T.api->handle_abandon(U, f), 0);
	expect_content("/a", "original", 8);
	ck_assert_int_eq(versions("/a"), 1);
	ck_assert_int_eq(tu_temp_files(&T), 0);
	ck_assert_int_eq(tu_blob_files(&T), blobs);
	/* sequential mode (truncated first) */
	f = xopen("/a", SD_O_WRITE | SD_O_TRUNC);
	write_seq(f, d, n);
	ck_assert_int_eq(T.api->handle_abandon(U, f), 0);
	expect_content("/a", "original", 8);
	ck_assert_int_eq(versions("/a"), 1);
	ck_assert_int_eq(tu_temp_files(&T), 0);
	ck_assert_int_eq(tu_blob_files(&T), blobs);
	/* after a sync, abandon keeps what was synced */
	f = xopen("/a", SD_O_WRITE);
	xwrite(f, "SYNCED", 6, 0);
	ck_assert_int_eq(T.api->handle_sync(U, f), 0);
	xwrite(f, "lost", 4, 0);
	ck_assert_int_eq(T.api->handle_abandon(U, f), 0);
	expect_content("/a", "SYNCEDal", 8);
	ck_assert_int_eq(versions("/a"), 2);
	ck_assert_int_eq(tu_temp_files(&T), 0);
	/* the open mode was released: an exclusive open works */
	f = xopen("/a", SD_O_READ | SD_O_EXCLUSIVE);
	ck_assert_int_eq(T.api->handle_abandon(U, f), 0);
	/* an abandoned create leaves nothing, not even an empty file; while
	 * it is pending, a second exclusive create of the path is refused */
	blobs = tu_blob_files(&T);
	f = xopen("/fresh", SD_O_CREAT | SD_O_EXCL | SD_O_WRITE);
	write_seq(f, d, n);
	sd_handle g = 0;
	ck_assert_int_eq(try_open(U, "/fresh", SD_O_CREAT | SD_O_EXCL | SD_O_WRITE, &g), -EEXIST);
	ck_assert_int_eq(T.api->handle_abandon(U, f), 0);
	expect_stat_err("/fresh", -ENOENT);
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM nodes WHERE name='fresh'"), 0);
	ck_assert_int_eq(tu_temp_files(&T), 0);
	ck_assert_int_eq(tu_blob_files(&T), blobs);
	/* and the path is free for an exclusive create again */
	f = xopen("/fresh", SD_O_CREAT | SD_O_EXCL | SD_O_WRITE);
	ck_assert_int_eq(T.api->handle_close(U, f), 0); /* open + close: an empty file */
	expect_content("/fresh", "", 0);
	free(d);
}
END_TEST

START_TEST(test_two_writers)
{
	tu_put(&T, U, "/w", "base", 4);
	sd_handle f1 = xopen("/w", SD_O_WRITE | SD_O_TRUNC | SD_O_SHARE_WRITE);
	sd_handle f2 = xopen("/w", SD_O_WRITE | SD_O_TRUNC); /* default: SHARE_WRITE */
	xwrite(f1, "first writer", 12, 0);
	xwrite(f2, "second writer!", 14, 0);
	/* each handle sees its own bytes */
	char buf[32];
	ck_assert_int_eq(T.api->handle_pread(U, f1, buf, sizeof buf, 0), 12);
	ck_assert_int_eq(memcmp(buf, "first writer", 12), 0);
	ck_assert_int_eq(T.api->handle_pread(U, f2, buf, sizeof buf, 0), 14);
	ck_assert_int_eq(memcmp(buf, "second writer!", 14), 0);
	ck_assert_int_eq(T.api->handle_close(U, f1), 0);
	expect_content("/w", "first writer", 12);
	ck_assert_int_eq(T.api->handle_close(U, f2), 0);
	expect_content("/w", "second writer!", 14); /* the later close wins */
	ck_assert_int_eq(versions("/w"), 3);
	/* both versions are in the history of the node */
	char h1[SD_SHA256_HEX], q[300];
	sha_hex("first writer", 12, h1);
	snprintf(q, sizeof q,
		 "SELECT count(*) FROM versions v JOIN blobs b ON b.id = v.blob JOIN nodes n ON n.id = v.node "
		 "WHERE n.name = 'w' AND b.sha256 = '%s'", h1);
	ck_assert_int_eq(tu_sql_int(&T, q), 1);
	ck_assert_int_eq(tu_sql_int(&T, "SELECT used_bytes FROM users WHERE name='alice'"), 14);
}
END_TEST

/* ---------------------------------------------------------------- open modes */

START_TEST(test_open_modes)
{
	tu_put(&T, U, "/m", "mode test", 9);
	sd_handle f, g, h;
	/* EXCLUSIVE blocks any second open */
	f = xopen("/m", SD_O_READ | SD_O_EXCLUSIVE);
	ck_assert_int_eq(try_open(U, "/m", SD_O_READ, &g), -EBUSY);
	ck_assert_int_eq(try_open(U, "/m", SD_O_WRITE, &g), -EBUSY);
	ck_assert_int_eq(try_open(U, "/m", SD_O_READ | SD_O_SHARE_READ, &g), -EBUSY);
	ck_assert_int_eq(try_open(U, "/m", SD_O_READ | SD_O_EXCLUSIVE, &g), -EBUSY);
	ck_assert_uint_eq(g, 0);
	ck_assert_int_eq(T.api->handle_close(U, f), 0);
	/* EXCLUSIVE needs no other open */
	f = xopen("/m", SD_O_READ);
	ck_assert_int_eq(try_open(U, "/m", SD_O_WRITE | SD_O_EXCLUSIVE, &g), -EBUSY);
	ck_assert_int_eq(T.api->handle_close(U, f), 0);
	f = xopen("/m", SD_O_WRITE | SD_O_EXCLUSIVE);
	ck_assert_int_eq(try_open(U, "/m", SD_O_READ, &g), -EBUSY);
	ck_assert_int_eq(T.api->handle_abandon(U, f), 0);
	/* SHARE_READ: other readers yes, writers no */
	f = xopen("/m", SD_O_READ | SD_O_SHARE_READ);
	g = xopen("/m", SD_O_READ | SD_O_SHARE_READ);
	h = xopen("/m", SD_O_READ);
	ck_assert_int_eq(T.api->handle_close(U, h), 0);
	ck_assert_int_eq(try_open(U, "/m", SD_O_WRITE, &h), -EBUSY);
	ck_assert_int_eq(try_open(U, "/m", SD_O_WRITE | SD_O_SHARE_WRITE, &h), -EBUSY);
	ck_assert_int_eq(try_open(U, "/m", SD_O_WRITE | SD_O_TRUNC, &h), -EBUSY);
	ck_assert_int_eq(try_open(U, "/m", SD_O_APPEND, &h), -EBUSY);
	ck_assert_int_eq(T.api->handle_close(U, f), 0);
	ck_assert_int_eq(try_open(U, "/m", SD_O_WRITE, &h), -EBUSY); /* g still open */
	ck_assert_int_eq(T.api->handle_close(U, g), 0);
	h = xopen("/m", SD_O_WRITE); /* released */
	/* a write open blocks SHARE_READ */
	ck_assert_int_eq(try_open(U, "/m", SD_O_READ | SD_O_SHARE_READ, &g), -EBUSY);
	g = xopen("/m", SD_O_READ); /* plain readers are fine beside a writer */
	ck_assert_int_eq(T.api->handle_close(U, g), 0);
	ck_assert_int_eq(T.api->handle_abandon(U, h), 0);
	g = xopen("/m", SD_O_READ | SD_O_SHARE_READ); /* released by abandon */
	ck_assert_int_eq(T.api->handle_close(U, g), 0);
	/* SHARE_READ with a write flag, and contradictory modes */
	ck_assert_int_eq(try_open(U, "/m", SD_O_WRITE | SD_O_SHARE_READ, &g), -EINVAL);
	ck_assert_int_eq(try_open(U, "/m", SD_O_TRUNC | SD_O_SHARE_READ, &g), -EINVAL);
	ck_assert_int_eq(try_open(U, "/m", SD_O_READ | SD_O_SHARE_READ | SD_O_EXCLUSIVE, &g), -EINVAL);
	ck_assert_uint_eq(g, 0);
	/* modes are per node: another file is unaffected */
	tu_put(&T, U, "/other", "o", 1);
	f = xopen("/m", SD_O_READ | SD_O_EXCLUSIVE);
	g = xopen("/other", SD_O_WRITE);
	ck_assert_int_eq(T.api->handle_abandon(U, g), 0);
	ck_assert_int_eq(T.api->handle_close(U, f), 0);
	/* nothing was written by any of this */
	expect_content("/m", "mode test", 9);
	ck_assert_int_eq(versions("/m"), 1);
	/* everything released: EXCLUSIVE write works */
	f = xopen("/m", SD_O_WRITE | SD_O_EXCLUSIVE);
	xwrite(f, "M", 1, 0);
	ck_assert_int_eq(T.api->handle_close(U, f), 0);
	expect_content("/m", "Mode test", 9);
}
END_TEST

START_TEST(test_readonly_and_dirs)
{
	tu_put(&T, U, "/f", "ro", 2);
	ck_assert_int_eq(T.api->mkdir(U, "/d", 0755, 0), 0);
	sd_session *ro = ro_session();
	sd_handle f;
	ck_assert_int_eq(try_open(ro, "/f", SD_O_WRITE, &f), -EROFS);
	ck_assert_int_eq(try_open(ro, "/f", SD_O_READ | SD_O_WRITE, &f), -EROFS);
	ck_assert_int_eq(try_open(ro, "/f", SD_O_APPEND, &f), -EROFS);
	ck_assert_int_eq(try_open(ro, "/f", SD_O_TRUNC, &f), -EROFS);
	ck_assert_int_eq(try_open(ro, "/new", SD_O_CREAT | SD_O_WRITE, &f), -EROFS);
	ck_assert_uint_eq(f, 0);
	expect_content("/f", "ro", 2);
	sd_stat st;
	ck_assert_int_eq(T.api->stat(U, "/new", &st), -ENOENT);
	/* reading is allowed */
	ck_assert_int_eq(try_open(ro, "/f", SD_O_READ, &f), 0);
	char buf[4];
	ck_assert_int_eq(T.api->handle_pread(ro, f, buf, 4, 0), 2);
	/* ... but not changing attributes through the handle */
	ck_assert_int_eq(T.api->handle_setattr(ro, f, SD_ATTR_MODE, 0600, 0), -EROFS);
	ck_assert_int_eq(T.api->handle_close(ro, f), 0);
	/* directories cannot be opened */
	ck_assert_int_eq(try_open(U, "/d", SD_O_READ, &f), -EISDIR);
	ck_assert_int_eq(try_open(U, "/d", SD_O_WRITE, &f), -EISDIR);
	ck_assert_int_eq(try_open(U, "/d", SD_O_CREAT | SD_O_WRITE, &f), -EISDIR);
	ck_assert_int_eq(try_open(U, "/", SD_O_READ, &f), -EISDIR);
	ck_assert_uint_eq(f, 0);
	/* paths: ".." stops at the root (API v2), so "../f" is "/f" */
	ck_assert_int_eq(try_open(U, "../f", SD_O_READ, &f), 0);
	ck_assert_int_eq(T.api->handle_pread(U, f, buf, 4, 0), 2);
	ck_assert_int_eq(memcmp(buf, "ro", 2), 0);
	ck_assert_int_eq(T.api->handle_close(U, f), 0);
	ck_assert_int_eq(try_open(U, "a\\b", SD_O_CREAT | SD_O_WRITE, &f), -EINVAL);
	ck_assert_int_eq(try_open(U, "/f/x", SD_O_CREAT | SD_O_WRITE, &f), -ENOTDIR);
	ck_assert_int_eq(tu_temp_files(&T), 0);
}
END_TEST

/* ---------------------------------------------------------------- sessions */

/* A handle belongs to the session that opened it: any other session, of
 * the same user or not, gets -EBADF, as does a closed or forged id. */
START_TEST(test_handles_belong_to_session)
{
	tu_put(&T, U, "/f", "mine", 4);
	sd_handle h = xopen("/f", SD_O_READ | SD_O_WRITE);
	sd_session_info si;
	ck_assert_int_eq(T.api->session_info(U, &si), 0);
	ck_assert_int_eq(si.handles, 1);
	sd_session *others[2] = {tu_session(&T, "alice"), tu_user(&T, "bob")};
	char buf[8];
	sd_stat st;
	for (int i = 0; i < 2; i++) {
		sd_session *o = others[i];
		ck_assert_int_eq(T.api->handle_pread(o, h, buf, sizeof buf, 0), -EBADF);
		ck_assert_int_eq(T.api->handle_pwrite(o, h, "X", 1, 0), -EBADF);
		ck_assert_int_eq(T.api->handle_truncate(o, h, 0), -EBADF);
		ck_assert_int_eq(T.api->handle_fstat(o, h, &st), -EBADF);
		ck_assert_int_eq(T.api->handle_setattr(o, h, SD_ATTR_MODE, 0600, 0), -EBADF);
		ck_assert_int_eq(T.api->handle_sync(o, h), -EBADF);
		ck_assert_int_eq(T.api->handle_close(o, h), -EBADF);
		ck_assert_int_eq(T.api->handle_abandon(o, h), -EBADF);
		ck_assert_int_eq(T.api->session_info(o, &si), 0);
		ck_assert_int_eq(si.handles, 0);
	}
	/* the owner's handle is untouched by all that */
	ck_assert_int_eq(T.api->handle_pread(U, h, buf, sizeof buf, 0), 4);
	ck_assert_int_eq(memcmp(buf, "mine", 4), 0);
	xwrite(h, "M", 1, 0);
	ck_assert_int_eq(T.api->handle_close(U, h), 0);
	expect_content("/f", "Mine", 4);
	ck_assert_int_eq(versions("/f"), 2);
	ck_assert_int_eq(T.api->session_info(U, &si), 0);
	ck_assert_int_eq(si.handles, 0);
	/* a closed id is stale, also once its slot is used again */
	sd_handle h2 = xopen("/f", SD_O_READ);
	ck_assert_uint_ne(h2, h);
	ck_assert_int_eq(T.api->handle_pread(U, h, buf, sizeof buf, 0), -EBADF);
	ck_assert_int_eq(T.api->handle_close(U, h), -EBADF);
	ck_assert_int_eq(T.api->handle_abandon(U, h), -EBADF);
	ck_assert_int_eq(T.api->handle_pread(U, 0, buf, sizeof buf, 0), -EBADF);
	ck_assert_int_eq(T.api->handle_pread(U, h2 ^ (1ULL << 32), buf, sizeof buf, 0), -EBADF);
	ck_assert_int_eq(T.api->handle_pread(U, h2, buf, sizeof buf, 0), 4);
	ck_assert_int_eq(T.api->handle_close(U, h2), 0);
}
END_TEST

/* Closing a session abandons its open handles: no unsaved write is
 * committed, a pending create leaves nothing, open modes are released. */
START_TEST(test_session_close_abandons)
{
	tu_put(&T, U, "/f", "original", 8);
	int blobs = tu_blob_files(&T);
	sd_session *s = NULL;
	ck_assert_int_eq(sd_core_session(T.c, "alice", &s), 0); /* closed below */
	sd_handle h1 = 0, h2 = 0;
	ck_assert_int_eq(T.api->handle_open(s, "/f", SD_O_WRITE | SD_O_EXCLUSIVE, 0, &h1, NULL), 0);
	ck_assert_int_eq(T.api->handle_pwrite(s, h1, "CHANGED!", 8, 0), 8);
	ck_assert_int_eq(T.api->handle_open(s, "/new", SD_O_CREAT | SD_O_EXCL | SD_O_WRITE, 0, &h2, NULL), 0);
	ck_assert_int_eq(T.api->handle_pwrite(s, h2, "new", 3, 0), 3);
	sd_session_info si;
	ck_assert_int_eq(T.api->session_info(s, &si), 0);
	ck_assert_int_eq(si.handles, 2);
	/* while they are open, another session meets their open modes */
	sd_handle g = 0;
	ck_assert_int_eq(try_open(U, "/f", SD_O_READ, &g), -EBUSY);
	ck_assert_int_eq(try_open(U, "/new", SD_O_CREAT | SD_O_EXCL | SD_O_WRITE, &g), -EEXIST);
	T.api->session_close(s);
	expect_content("/f", "original", 8);
	ck_assert_int_eq(versions("/f"), 1);
	expect_stat_err("/new", -ENOENT);
	ck_assert_int_eq(tu_temp_files(&T), 0);
	ck_assert_int_eq(tu_blob_files(&T), blobs);
	/* released: exclusive opens and an exclusive create work again */
	g = xopen("/f", SD_O_WRITE | SD_O_EXCLUSIVE);
	ck_assert_int_eq(T.api->handle_close(U, g), 0);
	g = xopen("/new", SD_O_CREAT | SD_O_EXCL | SD_O_WRITE);
	xwrite(g, "mine", 4, 0);
	ck_assert_int_eq(T.api->handle_close(U, g), 0);
	expect_content("/new", "mine", 4);
	expect_content("/f", "original", 8);
}
END_TEST

/* A session whose credentials no longer hold (its user was disabled) can
 * neither use nor commit its handles; closing releases them unsaved. */
START_TEST(test_ended_session_handles)
{
	tu_put(&T, U, "/f", "before", 6);
	char tok[SD_TOKEN_MAX];
	ck_assert_int_eq(T.api->token_create(T.c, "alice", SD_SCOPE_RW, 0, tok, NULL), 0);
	sd_session *s = NULL;
	ck_assert_int_eq(T.api->auth_token(T.c, tok, "127.0.0.1", "test", &s), 0);
	tu_keep(&T, s);
	sd_handle h = 0;
	ck_assert_int_eq(T.api->handle_open(s, "/f", SD_O_READ | SD_O_WRITE | SD_O_EXCLUSIVE, 0, &h, NULL), 0);
	ck_assert_int_eq(T.api->handle_pwrite(s, h, "after!", 6, 0), 6);
	ck_assert_int_eq(T.api->user_set_disabled(T.c, "alice", 1), 0);
	char buf[8];
	ck_assert_int_eq(T.api->handle_pread(s, h, buf, sizeof buf, 0), -SD_EAUTH);
	ck_assert_int_eq(T.api->handle_pwrite(s, h, "x", 1, 0), -SD_EAUTH);
	ck_assert_int_eq(T.api->handle_sync(s, h), -SD_EAUTH);
	ck_assert_int_eq(T.api->handle_close(s, h), -SD_EAUTH);
	/* close released it all the same, without committing */
	ck_assert_int_eq(T.api->handle_abandon(s, h), -EBADF);
	ck_assert_int_eq(T.api->user_set_disabled(T.c, "alice", 0), 0);
	expect_content("/f", "before", 6); /* U is the admin tool's session */
	ck_assert_int_eq(versions("/f"), 1);
	ck_assert_int_eq(tu_temp_files(&T), 0);
	sd_handle g = xopen("/f", SD_O_WRITE | SD_O_EXCLUSIVE);
	ck_assert_int_eq(T.api->handle_abandon(U, g), 0);
	/* the ended session stays ended */
	ck_assert_int_eq(T.api->handle_open(s, "/f", SD_O_READ, 0, &g, NULL), -SD_EAUTH);
}
END_TEST

/* ---------------------------------------------------------------- faults */

START_TEST(test_fault_random_write)
{
	size_t n = 120000;
	char *d = pattern(n, 7);
	tu_put(&T, U, "/f", d, n);
	sd_handle f = xopen("/f", SD_O_WRITE | SD_O_READ);
	sd__sys_fail(SD_SYS_WRITE, 1, ENOSPC);
	ssize_t r = T.api->handle_pwrite(U, f, "XXXX", 4, 5000);
	sd__sys_fail_clear();
	ck_assert_int_eq(r, -ENOSPC);
	/* the stored version is intact, whatever happens to the handle */
	expect_content("/f", d, n);
	int cr = T.api->handle_close(U, f);
	ck_assert_msg(cr == 0 || cr == -ENOSPC, "close after ENOSPC: %d", cr);
	expect_content("/f", d, n);
	ck_assert_int_eq(tu_temp_files(&T), 0);
	/* and the file is writable again */
	f = xopen("/f", SD_O_WRITE);
	xwrite(f, "XXXX", 4, 5000);
	ck_assert_int_eq(T.api->handle_close(U, f), 0);
	memcpy(d + 5000, "XXXX", 4);
	expect_content("/f", d, n);
	free(d);
}
END_TEST

START_TEST(test_fault_sequential_write)
{
	tu_put(&T, U, "/g", "previous version", 16);
	size_t n = 400000; /* several pipeline buffers: the failure hits a pool write */
	char *d = pattern(n, 8);
	sd_handle f = xopen("/g", SD_O_WRITE | SD_O_TRUNC);
	sd__sys_fail(SD_SYS_WRITE, 2, ENOSPC);
	int saw = 0;
	size_t off = 0;
	while (off < n) {
		size_t k = n - off < 10000 ? n - off : 10000;
		ssize_t w = T.api->handle_pwrite(U, f, d + off, k, off);
		if (w < 0) {
			ck_assert_int_eq(w, -ENOSPC);
			saw = 1;
			break;
		}
		ck_assert_int_eq(w, (ssize_t)k);
		off += k;
	}
	int cr = T.api->handle_close(U, f);
	sd__sys_fail_clear();
	if (cr < 0) {
		ck_assert_int_eq(cr, -ENOSPC);
		saw = 1;
	}
	ck_assert_msg(saw, "an injected ENOSPC was not reported by pwrite or close");
	expect_content("/g", "previous version", 16);
	ck_assert_int_eq(versions("/g"), 1);
	ck_assert_int_eq(tu_temp_files(&T), 0);
	ck_assert_int_eq(tu_sql_int(&T, "SELECT used_bytes FROM users WHERE name='alice'"), 16);
	free(d);
}
END_TEST

START_TEST(test_quota)
{
	tu_put(&T, U, "/q", "abc", 3);
	ck_assert_int_eq(T.api->user_set_quota(T.c, "alice", 1000), 0);
	size_t n = 5000;
	char *d = pattern(n, 9);
	/* growing past the quota: refused at the write that would pass it,
	 * before anything is stored or hashed (issue 18); nothing was written,
	 * so there is nothing to commit */
	sd_handle f = xopen("/q", SD_O_WRITE);
	ck_assert_int_eq(T.api->handle_pwrite(U, f, d, n, 0), -EDQUOT);
	ck_assert_int_eq(T.api->handle_sync(U, f), 0);
	ck_assert_int_eq(T.api->handle_abandon(U, f), 0);
	expect_content("/q", "abc", 3);
	/* with unsaved writes before it, those are dead: the commit fails and
	 * the old version stays */
	f = xopen("/q", SD_O_WRITE | SD_O_TRUNC);
	size_t off = 0, chunk = 777;
	ssize_t w = 0;
	while (off < n && (w = T.api->handle_pwrite(U, f, d + off, chunk, off)) > 0)
		off += chunk;
	ck_assert_int_eq(w, -EDQUOT);
	ck_assert_uint_le(off, 1000); /* refused when it would pass 1000 bytes */
	ck_assert_int_eq(T.api->handle_close(U, f), -EDQUOT);
	expect_content("/q", "abc", 3);
	ck_assert_int_eq(versions("/q"), 1);
	ck_assert_int_eq(tu_temp_files(&T), 0);
	ck_assert_int_eq(tu_sql_int(&T, "SELECT used_bytes FROM users WHERE name='alice'"), 3);
	/* within the quota it works */
	f = xopen("/q", SD_O_WRITE);
	xwrite(f, d, 997, 3);
	ck_assert_int_eq(T.api->handle_close(U, f), 0);
	ck_assert_int_eq(tu_sql_int(&T, "SELECT used_bytes FROM users WHERE name='alice'"), 1000);
	free(d);
}
END_TEST

static Suite *file_suite(void)
{
	Suite *s = suite_create("file");
	TCase *tc;

	tc = tcase_create("write");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_create_sequential);
	tcase_add_test(tc, test_patch_middle);
	tcase_add_test(tc, test_truncate);
	tcase_add_test(tc, test_flags);
	suite_add_tcase(s, tc);

	tc = tcase_create("commit");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_sync);
	tcase_add_test(tc, test_abandon);
	tcase_add_test(tc, test_two_writers);
	tcase_add_test(tc, test_quota);
	suite_add_tcase(s, tc);

	tc = tcase_create("modes");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_open_modes);
	tcase_add_test(tc, test_readonly_and_dirs);
	suite_add_tcase(s, tc);

	tc = tcase_create("sessions");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_handles_belong_to_session);
	tcase_add_test(tc, test_session_close_abandons);
	tcase_add_test(tc, test_ended_session_handles);
	suite_add_tcase(s, tc);

	tc = tcase_create("faults");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_fault_random_write);
	tcase_add_test(tc, test_fault_sequential_write);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(file_suite());
}
