/*
 * test_tree.c - core/tree.c (the per-user tree) through the sd_core_api
 * table: mkdir/rmdir, stat, readdir order and paging, rename, logical
 * unlink, copy by reference, attributes, quota, user isolation, the path
 * table as seen through mutating calls, and journal rows.
 *
 * Every test opens its own core on a fresh data directory (fork mode
 * isolates them). Database facts (refs, journal rows) are read with the
 * sqlite3 CLI (tu_sql_int), so the checks do not trust the engine's own
 * view of itself.
 */
#include <openssl/evp.h>
#include <stdint.h>

#include "testutil.h"

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
	tu_core_close(&T);
}

/* Lowercase hex SHA-256 of buf. */
static void sha_hex(const void *buf, size_t len, char out[SD_SHA256_HEX])
{
	unsigned char h[32];
	unsigned int hl = 0;
	ck_assert_int_eq(EVP_Digest(buf, len, h, &hl, EVP_sha256(), NULL), 1);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
}

/* Deterministic filler of len bytes, seeded. Caller frees. */
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

static int64_t used_now(sd_session *u)
{
	sd_fsinfo fi;
	ck_assert_int_eq(T.api->fsinfo(u, &fi), 0);
	return fi.used;
}

/* Names collected by a readdir callback. */
typedef struct names {
	char **v;
	int n, cap;
	int stop_after; /* > 0: the callback returns 1 at the stop_after-th entry */
	int files, dirs;
} names;

static int collect(void *arg, const sd_dirent *e)
{
	names *ns = arg;
	if (ns->n == ns->cap) {
		ns->cap = ns->cap ? ns->cap * 2 : 64;
		ns->v = realloc(ns->v, (size_t)ns->cap * sizeof *ns->v);
	}
	ns->v[ns->n++] = strdup(e->name);
	if (e->st.kind == SD_KIND_FILE)
		ns->files++;
	else if (e->st.kind == SD_KIND_DIR)
		ns->dirs++;
	return ns->stop_after > 0 && ns->n >= ns->stop_after;
}

static void names_free(names *ns)
{
	for (int i = 0; i < ns->n; i++)
		free(ns->v[i]);
	free(ns->v);
	memset(ns, 0, sizeof *ns);
}

/* readdir into ns (cleared first); returns the call's result. */
static int list(sd_session *u, const char *path, const char *after, int limit, names *ns,
		int *more)
{
	names_free(ns);
	return T.api->readdir(u, path, after, limit, collect, ns, more);
}

/* Number of live entries of path (all). */
static int count_entries(sd_session *u, const char *path)
{
	names ns = {0};
	int more = -1;
	int r = list(u, path, NULL, 0, &ns, &more);
	ck_assert_msg(r >= 0, "readdir %s: %d", path, r);
	ck_assert_int_eq(r, ns.n);
	ck_assert_int_eq(more, 0);
	names_free(&ns);
	return r;
}

static long long journal_count(const char *op, const char *path)
{
	char q[600];
	if (path)
		snprintf(q, sizeof q, "SELECT count(*) FROM journal WHERE op='%s' AND path='%s'", op, path);
	else
		snprintf(q, sizeof q, "SELECT count(*) FROM journal WHERE op='%s'", op);
	return tu_sql_int(&T, q);
}

static long long blob_refs(const char *hex)
{
	char q[300];
	snprintf(q, sizeof q, "SELECT coalesce((SELECT refs FROM blobs WHERE sha256='%s'), -1)", hex);
	return tu_sql_int(&T, q);
}

static void expect_content(sd_session *u, const char *path, const void *data, size_t len)
{
	size_t got = 0;
	char *b = tu_get(&T, u, path, &got);
	ck_assert_msg(got == len, "%s: %zu bytes, expected %zu", path, got, len);
	ck_assert_msg(len == 0 || memcmp(b, data, len) == 0, "%s: content differs", path);
	free(b);
}

static void expect_kind(sd_session *u, const char *path, int kind)
{
	sd_stat st;
	int r = T.api->stat(u, path, &st);
	ck_assert_msg(r == 0, "stat %s: %s", path, T.api->strerror(r));
	ck_assert_int_eq(st.kind, kind);
}

static void expect_stat_err(sd_session *u, const char *path, int err)
{
	sd_stat st;
	int r = T.api->stat(u, path, &st);
	ck_assert_msg(r == err, "stat %s: got %d, expected %d", path, r, err);
}

/* ---------------------------------------------------------------- mkdir / rmdir */

START_TEST(test_mkdir)
{
	const sd_core_api *a = T.api;
	ck_assert_int_eq(a->mkdir(U, "/a", 0755, 0), 0);
	expect_kind(U, "/a", SD_KIND_DIR);
	ck_assert_int_eq(a->mkdir(U, "/a", 0755, 0), -EEXIST);
	ck_assert_int_eq(a->mkdir(U, "/a", 0755, 1), 0); /* -p on an existing dir */
	/* missing parents */
	ck_assert_int_eq(a->mkdir(U, "/x/y/z", 0755, 0), -ENOENT);
	expect_stat_err(U, "/x", -ENOENT);
	ck_assert_int_eq(a->mkdir(U, "/x/y/z", 0755, 1), 0);
	expect_kind(U, "/x", SD_KIND_DIR);
	expect_kind(U, "/x/y", SD_KIND_DIR);
	expect_kind(U, "/x/y/z", SD_KIND_DIR);
	/* the mode given is kept */
	ck_assert_int_eq(a->mkdir(U, "/priv", 0700, 0), 0);
	sd_stat st;
	ck_assert_int_eq(a->stat(U, "/priv", &st), 0);
	ck_assert_uint_eq(st.mode, 0700);
	/* under a file, and over a file */
	tu_put(&T, U, "/f", "data", 4);
	ck_assert_int_eq(a->mkdir(U, "/f/sub", 0755, 0), -ENOTDIR);
	ck_assert_int_eq(a->mkdir(U, "/f/sub/deeper", 0755, 1), -ENOTDIR);
	ck_assert_int_eq(a->mkdir(U, "/f", 0755, 0), -EEXIST);
	ck_assert_int_eq(a->mkdir(U, "/f", 0755, 1), -EEXIST);
	expect_kind(U, "/f", SD_KIND_FILE);
	/* the root exists */
	ck_assert_int_eq(a->mkdir(U, "/", 0755, 0), -EEXIST);
	/* "/", a, f, priv, x */
	ck_assert_int_eq(count_entries(U, "/"), 4);
	ck_assert_int_eq(count_entries(U, "/x/y"), 1);
}
END_TEST

START_TEST(test_rmdir)
{
	const sd_core_api *a = T.api;
	ck_assert_int_eq(a->mkdir(U, "/d/e", 0755, 1), 0);
	ck_assert_int_eq(a->rmdir(U, "/d"), -ENOTEMPTY);
	expect_kind(U, "/d/e", SD_KIND_DIR);
	ck_assert_int_eq(a->rmdir(U, "/d/e"), 0);
	expect_stat_err(U, "/d/e", -ENOENT);
	tu_put(&T, U, "/d/file", "x", 1);
	ck_assert_int_eq(a->rmdir(U, "/d"), -ENOTEMPTY); /* a file counts too */
	ck_assert_int_eq(a->rmdir(U, "/d/file"), -ENOTDIR);
	expect_kind(U, "/d/file", SD_KIND_FILE);
	ck_assert_int_eq(a->unlink(U, "/d/file", 0), 0);
	ck_assert_int_eq(a->rmdir(U, "/d"), 0);
	expect_stat_err(U, "/d", -ENOENT);
	ck_assert_int_eq(a->rmdir(U, "/d"), -ENOENT);
	/* the root cannot be removed, in any spelling */
	ck_assert_int_lt(a->rmdir(U, "/"), 0);
	ck_assert_int_lt(a->rmdir(U, "//./"), 0);
	ck_assert_int_lt(a->unlink(U, "/", 1), 0);
	expect_kind(U, "/", SD_KIND_DIR);
	/* the name is free again after rmdir */
	ck_assert_int_eq(a->mkdir(U, "/d", 0755, 0), 0);
	ck_assert_int_eq(count_entries(U, "/d"), 0);
}
END_TEST

/* ---------------------------------------------------------------- stat */

START_TEST(test_stat)
{
	const sd_core_api *a = T.api;
	sd_stat st;
	ck_assert_int_eq(a->stat(U, "/", &st), 0);
	ck_assert_int_eq(st.kind, SD_KIND_DIR);
	ck_assert_uint_eq(st.size, 0);
	ck_assert_str_eq(st.sha256, "");
	ck_assert_int_gt(st.id, 0);

	size_t n1 = 150000, n2 = 777;
	char *d1 = pattern(n1, 1), *d2 = pattern(n2, 2);
	char h1[SD_SHA256_HEX], h2[SD_SHA256_HEX];
	sha_hex(d1, n1, h1);
	sha_hex(d2, n2, h2);

	tu_put(&T, U, "/dir/f.bin", d1, n1);
	ck_assert_int_eq(a->stat(U, "/dir/f.bin", &st), 0);
	ck_assert_int_eq(st.kind, SD_KIND_FILE);
	ck_assert_uint_eq(st.size, n1);
	ck_assert_str_eq(st.sha256, h1);
	ck_assert_int_eq(st.versions, 1);
	ck_assert_int_gt(st.mtime, 0);
	ck_assert_uint_eq(st.mode, 0644);
	int64_t id = st.id;

	/* each upload of the same path is one more version of the same node */
	tu_put(&T, U, "/dir/f.bin", d2, n2);
	ck_assert_int_eq(a->stat(U, "dir//f.bin", &st), 0);
	ck_assert_uint_eq(st.size, n2);
	ck_assert_str_eq(st.sha256, h2);
	ck_assert_int_eq(st.versions, 2);
	ck_assert_int_eq(st.id, id);
	tu_put(&T, U, "/dir/f.bin", d1, n1);
	ck_assert_int_eq(a->stat(U, "/dir/./f.bin", &st), 0);
	ck_assert_str_eq(st.sha256, h1);
	ck_assert_int_eq(st.versions, 3);
	expect_content(U, "/dir/f.bin", d1, n1);

	/* empty file */
	char h0[SD_SHA256_HEX];
	sha_hex("", 0, h0);
	tu_put(&T, U, "/empty", "", 0);
	ck_assert_int_eq(a->stat(U, "/empty", &st), 0);
	ck_assert_uint_eq(st.size, 0);
	ck_assert_str_eq(st.sha256, h0);

	/* directories have no address; errors */
	ck_assert_int_eq(a->stat(U, "/dir", &st), 0);
	ck_assert_int_eq(st.kind, SD_KIND_DIR);
	ck_assert_str_eq(st.sha256, "");
	expect_stat_err(U, "/nope", -ENOENT);
	expect_stat_err(U, "/dir/nope", -ENOENT);
	expect_stat_err(U, "/dir/f.bin/x", -ENOTDIR);
	free(d1);
	free(d2);
}
END_TEST

/* ---------------------------------------------------------------- readdir */

START_TEST(test_readdir_order)
{
	const sd_core_api *a = T.api;
	/* bytewise order: uppercase before '_' before lowercase before UTF-8 */
	const char *in[] = {"b", "a", "B", "a b", "\xc3\xa9t\xc3\xa9", "Z", "aa", "_", "a.txt", "0"};
	const char *want[] = {"0", "B", "Z", "_", "a", "a b", "a.txt", "aa", "b", "\xc3\xa9t\xc3\xa9"};
	int n = (int)(sizeof in / sizeof in[0]);
	for (int i = 0; i < n; i++) {
		char p[64];
		snprintf(p, sizeof p, "/%s", in[i]);
		if (i % 2)
			ck_assert_int_eq(a->mkdir(U, p, 0755, 0), 0);
		else
			tu_put(&T, U, p, in[i], strlen(in[i]));
	}
	names ns = {0};
	int more = -1;
	ck_assert_int_eq(list(U, "/", NULL, 0, &ns, &more), n);
	ck_assert_int_eq(more, 0);
	for (int i = 0; i < n; i++)
		ck_assert_str_eq(ns.v[i], want[i]);
	ck_assert_int_eq(ns.files, 5);
	ck_assert_int_eq(ns.dirs, 5);
	/* stable: the same answer twice */
	ck_assert_int_eq(list(U, "/", NULL, 0, &ns, &more), n);
	for (int i = 0; i < n; i++)
		ck_assert_str_eq(ns.v[i], want[i]);
	/* `after` need not name an existing entry */
	ck_assert_int_eq(list(U, "/", "a c", 0, &ns, &more), 4);
	ck_assert_str_eq(ns.v[0], "a.txt");
	/* entries carry their stat */
	sd_stat st;
	ck_assert_int_eq(a->stat(U, "/a.txt", &st), 0);
	ck_assert_int_eq(st.kind, SD_KIND_FILE);
	ck_assert_uint_eq(st.size, 5);
	/* errors */
	ck_assert_int_eq(a->readdir(U, "/nope", NULL, 0, collect, &ns, &more), -ENOENT);
	ck_assert_int_eq(a->readdir(U, "/a.txt", NULL, 0, collect, &ns, &more), -ENOTDIR);
	/* an empty directory */
	ck_assert_int_eq(list(U, "/a", NULL, 0, &ns, &more), 0);
	ck_assert_int_eq(more, 0);
	names_free(&ns);
}
END_TEST

#define NBIG 1300

static void make_big_dir(void)
{
	ck_assert_int_eq(T.api->mkdir(U, "/big", 0755, 0), 0);
	for (int i = NBIG - 1; i >= 0; i--) { /* reverse insertion order */
		char p[32];
		snprintf(p, sizeof p, "/big/e%04d", i);
		ck_assert_int_eq(T.api->mkdir(U, p, 0755, 0), 0);
	}
}

/* One page: expect `count` entries starting at e<first>, and `more`. */
static void expect_page(const char *after, int limit, int first, int count, int more_want)
{
	names ns = {0};
	int more = -1;
	int r = list(U, "/big", after, limit, &ns, &more);
	ck_assert_msg(r == count, "after=%s limit=%d: returned %d, expected %d", after ? after : "(null)",
		      limit, r, count);
	ck_assert_msg(ns.n == count, "after=%s limit=%d: callback saw %d, expected %d",
		      after ? after : "(null)", limit, ns.n, count);
	ck_assert_msg(more == more_want, "after=%s limit=%d: more=%d, expected %d",
		      after ? after : "(null)", limit, more, more_want);
	for (int i = 0; i < count; i++) {
		char w[16];
		snprintf(w, sizeof w, "e%04d", first + i);
		ck_assert_str_eq(ns.v[i], w);
	}
	names_free(&ns);
}

START_TEST(test_readdir_paging)
{
	make_big_dir();
	/* limit 0 = all, across the engine's internal 512-row pages */
	expect_page(NULL, 0, 0, NBIG, 0);
	/* 500-entry pages. Regression: an earlier sd__readdir dropped the last
	 * fetched batch whenever entries remained beyond `limit` (limit=500
	 * gave 0 entries, limit=600 gave 512). */
	expect_page(NULL, 500, 0, 500, 1);
	expect_page("e0499", 500, 500, 500, 1);
	expect_page("e0999", 500, 1000, 300, 0);
	expect_page("e1299", 500, 0, 0, 0);
	/* limits around the internal page size */
	expect_page(NULL, 511, 0, 511, 1);
	expect_page(NULL, 512, 0, 512, 1);
	expect_page(NULL, 513, 0, 513, 1);
	expect_page(NULL, 600, 0, 600, 1);
	expect_page(NULL, 1024, 0, 1024, 1);
	expect_page(NULL, 1025, 0, 1025, 1);
	/* a limit that ends exactly at the last entry: nothing remains */
	expect_page(NULL, NBIG, 0, NBIG, 0);
	expect_page(NULL, NBIG - 1, 0, NBIG - 1, 1);
	expect_page("e0799", 500, 800, 500, 0);
	expect_page("e0798", 500, 799, 500, 1);
	expect_page(NULL, NBIG + 1, 0, NBIG, 0);
	expect_page("e0100", 0, 101, NBIG - 101, 0);
	expect_page("e1298", 1, 1299, 1, 0);
	expect_page("e1297", 1, 1298, 1, 1);
	/* walk the whole directory with limit 500, following `more` */
	char after[16] = "";
	int total = 0, pages = 0, more = 1;
	while (more) {
		names ns = {0};
		int r = list(U, "/big", total ? after : NULL, 500, &ns, &more);
		ck_assert_int_ge(r, 0);
		for (int i = 0; i < ns.n; i++) {
			char w[16];
			snprintf(w, sizeof w, "e%04d", total + i);
			ck_assert_str_eq(ns.v[i], w);
		}
		total += ns.n;
		if (ns.n)
			snprintf(after, sizeof after, "%s", ns.v[ns.n - 1]);
		names_free(&ns);
		ck_assert_int_lt(++pages, 10);
	}
	ck_assert_int_eq(total, NBIG);
	ck_assert_int_eq(pages, 3);
}
END_TEST

START_TEST(test_readdir_stop)
{
	make_big_dir();
	/* the callback stops at the 3rd entry: 3 delivered, more remain */
	names ns = {.stop_after = 3};
	int more = -1;
	int r = T.api->readdir(U, "/big", NULL, 0, collect, &ns, &more);
	ck_assert_int_eq(r, 3);
	ck_assert_int_eq(ns.n, 3);
	ck_assert_int_eq(more, 1);
	ck_assert_str_eq(ns.v[2], "e0002");
	names_free(&ns);
	/* stop in the second internal page */
	ns.stop_after = 700;
	more = -1;
	r = T.api->readdir(U, "/big", NULL, 0, collect, &ns, &more);
	ck_assert_int_eq(r, 700);
	ck_assert_int_eq(ns.n, 700);
	ck_assert_int_eq(more, 1);
	ck_assert_str_eq(ns.v[699], "e0699");
	names_free(&ns);
	/* a NULL `more` is allowed (and the paging regression above: this
	 * once returned 0) */
	ns.stop_after = 0;
	ck_assert_int_eq(T.api->readdir(U, "/big", "e1200", 50, collect, &ns, NULL), 50);
	names_free(&ns);
	/* stopping at the very last entry: nothing remains, so more = 0
	 * (regression: a callback stop once always set *more = 1) */
	ns.stop_after = 2;
	more = -1;
	ck_assert_int_eq(T.api->readdir(U, "/big", "e1297", 0, collect, &ns, &more), 2);
	ck_assert_str_eq(ns.v[1], "e1299");
	ck_assert_int_eq(more, 0);
	names_free(&ns);
}
END_TEST

/* ---------------------------------------------------------------- rename */

START_TEST(test_rename_files)
{
	const sd_core_api *a = T.api;
	size_t na = 3000, nb = 1234;
	char *da = pattern(na, 10), *db = pattern(nb, 11);
	char hb[SD_SHA256_HEX];
	sha_hex(db, nb, hb);
	tu_put(&T, U, "/a", da, na);
	tu_put(&T, U, "/b", db, nb);
	ck_assert_int_eq(used_now(U), (int64_t)(na + nb));

	/* file over file: the target is replaced and its bytes leave `used` */
	ck_assert_int_eq(a->rename(U, "/a", "/b", 0), 0);
	expect_stat_err(U, "/a", -ENOENT);
	expect_content(U, "/b", da, na);
	ck_assert_int_eq(used_now(U), (int64_t)na);
	ck_assert_int_eq(count_entries(U, "/"), 1);
	/* the replaced content is kept for the cleaner (logical delete) */
	ck_assert_int_eq(blob_refs(hb), 1);
	ck_assert_int_eq(journal_count("rename", "/a"), 1);

	/* into another directory, keeping identity */
	sd_stat st1, st2;
	ck_assert_int_eq(a->stat(U, "/b", &st1), 0);
	ck_assert_int_eq(a->mkdir(U, "/sub", 0755, 0), 0);
	ck_assert_int_eq(a->rename(U, "/b", "/sub/c", 0), 0);
	ck_assert_int_eq(a->stat(U, "/sub/c", &st2), 0);
	ck_assert_int_eq(st2.id, st1.id);
	ck_assert_str_eq(st2.sha256, st1.sha256);
	ck_assert_int_eq(st2.versions, st1.versions);
	ck_assert_int_eq(used_now(U), (int64_t)na);

	/* rename to the same name (any spelling) is a no-op */
	ck_assert_int_eq(a->rename(U, "/sub/c", "/sub/c", 0), 0);
	ck_assert_int_eq(a->rename(U, "/sub/c", "sub//c/", 0), 0);
	expect_content(U, "/sub/c", da, na);
	ck_assert_int_eq(used_now(U), (int64_t)na);

	/* errors */
	ck_assert_int_eq(a->rename(U, "/nope", "/x", 0), -ENOENT);
	ck_assert_int_eq(a->rename(U, "/sub/c", "/missing/c", 0), -ENOENT);
	ck_assert_int_lt(a->rename(U, "/", "/x", 0), 0);
	ck_assert_int_lt(a->rename(U, "/sub", "/", 0), 0);
	expect_content(U, "/sub/c", da, na);
	ck_assert_int_eq(count_entries(U, "/"), 1);

	/* a same-name rename of a path that does not exist is not a success:
	 * POSIX rename(2) (the documented model) says ENOENT (regression: the
	 * same-name shortcut once ran before the source lookup) */
	ck_assert_int_eq(a->rename(U, "/ghost", "/ghost", 0), -ENOENT);
	free(da);
	free(db);
}
END_TEST

START_TEST(test_rename_noreplace)
{
	tu_core t;
	tu_core_open(&t, 0);
	sd_session *U = tu_user(&t, "nora");
	/* no-replace: refused when the target exists, in the same transaction */
	tu_put(&t, U, "/nr1", "one", 3);
	tu_put(&t, U, "/nr2", "two", 3);
	ck_assert_int_eq(t.api->rename(U, "/nr1", "/nr2", SD_RENAME_NOREPLACE), -EEXIST);
	ck_assert_int_eq(t.api->rename(U, "/nr1", "/nr1", SD_RENAME_NOREPLACE), 0);
	ck_assert_int_eq(t.api->rename(U, "/nr1", "/nr3", SD_RENAME_NOREPLACE), 0);
	ck_assert_int_eq(t.api->rename(U, "/nr3", "/nr2", 0x80), -EINVAL);
	{
		size_t l;
		char *b = tu_get(&t, U, "/nr2", &l);
		ck_assert(l == 3 && memcmp(b, "two", 3) == 0);
		free(b);
	}
	tu_core_close(&t);
}
END_TEST

START_TEST(test_rename_dirs)
{
	const sd_core_api *a = T.api;
	tu_put(&T, U, "/d1/inner/f", "content", 7);
	ck_assert_int_eq(a->mkdir(U, "/d2", 0755, 0), 0);
	/* dir over an empty dir */
	ck_assert_int_eq(a->rename(U, "/d1", "/d2", 0), 0);
	expect_stat_err(U, "/d1", -ENOENT);
	expect_content(U, "/d2/inner/f", "content", 7);
	ck_assert_int_eq(used_now(U), 7);
	/* dir over a non-empty dir */
	tu_put(&T, U, "/d3/g", "gg", 2);
	ck_assert_int_eq(a->rename(U, "/d2", "/d3", 0), -ENOTEMPTY);
	expect_content(U, "/d2/inner/f", "content", 7);
	expect_content(U, "/d3/g", "gg", 2);
	/* file over dir, dir over file */
	tu_put(&T, U, "/file", "f", 1);
	ck_assert_int_eq(a->mkdir(U, "/empty", 0755, 0), 0);
	ck_assert_int_eq(a->rename(U, "/file", "/empty", 0), -EISDIR);
	ck_assert_int_eq(a->rename(U, "/empty", "/file", 0), -ENOTDIR);
	expect_kind(U, "/file", SD_KIND_FILE);
	expect_kind(U, "/empty", SD_KIND_DIR);
	/* a directory into its own subtree */
	ck_assert_int_eq(a->mkdir(U, "/p/q/r", 0755, 1), 0);
	ck_assert_int_eq(a->rename(U, "/p", "/p/x", 0), -EINVAL);
	ck_assert_int_eq(a->rename(U, "/p", "/p/q/x", 0), -EINVAL);
	ck_assert_int_eq(a->rename(U, "/p", "/p/q/r/x", 0), -EINVAL);
	expect_kind(U, "/p/q/r", SD_KIND_DIR);
	/* but a sibling with a common prefix is fine */
	ck_assert_int_eq(a->rename(U, "/p", "/pp", 0), 0);
	expect_kind(U, "/pp/q/r", SD_KIND_DIR);
	/* moving a directory into a deeper place */
	ck_assert_int_eq(a->rename(U, "/d2", "/pp/q/r/d2", 0), 0);
	expect_content(U, "/pp/q/r/d2/inner/f", "content", 7);
	ck_assert_int_eq(used_now(U), 7 + 2 + 1);
}
END_TEST

/* ---------------------------------------------------------------- unlink */

START_TEST(test_unlink_logical)
{
	const sd_core_api *a = T.api;
	size_t n = 5000;
	char *d = pattern(n, 20);
	char h[SD_SHA256_HEX];
	sha_hex(d, n, h);
	tu_put(&T, U, "/f", d, n);
	ck_assert_int_eq(blob_refs(h), 1);
	int files = tu_blob_files(&T);
	ck_assert_int_eq(used_now(U), (int64_t)n);

	ck_assert_int_eq(a->unlink(U, "/f", 0), 0);
	expect_stat_err(U, "/f", -ENOENT);
	ck_assert_int_eq(used_now(U), 0);
	ck_assert_int_eq(count_entries(U, "/"), 0);
	/* logical: row, version, reference and file stay until the cleaner */
	ck_assert_int_eq(blob_refs(h), 1);
	ck_assert_int_eq(tu_blob_files(&T), files);
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM nodes WHERE name='f' AND deleted_at IS NOT NULL"), 1);
	ck_assert_int_eq(journal_count("delete", "/f"), 1);
	/* the name is free again: a new node, the same blob */
	tu_put(&T, U, "/f", d, n);
	ck_assert_int_eq(blob_refs(h), 2);
	ck_assert_int_eq(tu_blob_files(&T), files);
	sd_stat st;
	ck_assert_int_eq(a->stat(U, "/f", &st), 0);
	ck_assert_int_eq(st.versions, 1);

	/* errors */
	ck_assert_int_eq(a->unlink(U, "/nope", 0), -ENOENT);
	ck_assert_int_eq(a->mkdir(U, "/dir", 0755, 0), 0);
	ck_assert_int_eq(a->unlink(U, "/dir", 0), -EISDIR);
	expect_kind(U, "/dir", SD_KIND_DIR);
	free(d);
}
END_TEST

START_TEST(test_unlink_recursive)
{
	const sd_core_api *a = T.api;
	tu_put(&T, U, "/t/a", "0123456789", 10);
	tu_put(&T, U, "/t/s/b", "01234567890123456789", 20);
	tu_put(&T, U, "/t/s/deep/c", "012345678901234567890123456789", 30);
	ck_assert_int_eq(a->mkdir(U, "/t/s/emptydir", 0755, 0), 0);
	tu_put(&T, U, "/other", "12345", 5);
	ck_assert_int_eq(used_now(U), 65);

	ck_assert_int_eq(a->unlink(U, "/t", 1), 0);
	ck_assert_int_eq(used_now(U), 5);
	expect_stat_err(U, "/t", -ENOENT);
	expect_stat_err(U, "/t/s/b", -ENOENT);
	expect_stat_err(U, "/t/s/deep/c", -ENOENT);
	names ns = {0};
	int more;
	ck_assert_int_eq(list(U, "/", NULL, 0, &ns, &more), 1);
	ck_assert_str_eq(ns.v[0], "other");
	names_free(&ns);
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM nodes WHERE deleted_at IS NOT NULL"), 7);
	/* the name can be reused and starts empty */
	ck_assert_int_eq(a->mkdir(U, "/t", 0755, 0), 0);
	ck_assert_int_eq(count_entries(U, "/t"), 0);
	/* recursive on a file is a plain unlink */
	ck_assert_int_eq(a->unlink(U, "/other", 1), 0);
	ck_assert_int_eq(used_now(U), 0);
}
END_TEST

/* ---------------------------------------------------------------- copy, attributes */

START_TEST(test_copy)
{
	const sd_core_api *a = T.api;
	size_t n = 70000;
	char *d = pattern(n, 30);
	char h[SD_SHA256_HEX];
	sha_hex(d, n, h);
	tu_put(&T, U, "/a", d, n);
	int files = tu_blob_files(&T);
	ck_assert_int_eq(blob_refs(h), 1);

	ck_assert_int_eq(a->copy(U, "/a", "/dir/b"), -ENOENT); /* no parents */
	ck_assert_int_eq(a->copy(U, "/a", "/b"), 0);
	ck_assert_int_eq(tu_blob_files(&T), files); /* no data copied */
	ck_assert_int_eq(blob_refs(h), 2);
	expect_content(U, "/b", d, n);
	sd_stat sa, sb;
	ck_assert_int_eq(a->stat(U, "/a", &sa), 0);
	ck_assert_int_eq(a->stat(U, "/b", &sb), 0);
	ck_assert_int_ne(sa.id, sb.id);
	ck_assert_str_eq(sb.sha256, h);
	ck_assert_int_eq(used_now(U), (int64_t)(2 * n)); /* logical bytes */
	ck_assert_int_eq(journal_count("copy", "/b"), 1);

	/* replaces an existing target file */
	tu_put(&T, U, "/c", "small", 5);
	ck_assert_int_eq(a->copy(U, "/a", "/c"), 0);
	expect_content(U, "/c", d, n);
	ck_assert_int_eq(blob_refs(h), 3);
	ck_assert_int_eq(used_now(U), (int64_t)(3 * n));
	/* the copy is independent of the source */
	ck_assert_int_eq(a->unlink(U, "/a", 0), 0);
	expect_content(U, "/b", d, n);

	/* directories are not copied; missing source */
	ck_assert_int_eq(a->mkdir(U, "/dir", 0755, 0), 0);
	ck_assert_int_eq(a->copy(U, "/dir", "/dir2"), -EISDIR);
	ck_assert_int_eq(a->copy(U, "/b", "/dir"), -EISDIR);
	ck_assert_int_eq(a->copy(U, "/nope", "/x"), -ENOENT);
	expect_stat_err(U, "/dir2", -ENOENT);
	expect_stat_err(U, "/x", -ENOENT);
	free(d);
}
END_TEST

START_TEST(test_attrs)
{
	const sd_core_api *a = T.api;
	tu_put(&T, U, "/f", "abc", 3);
	ck_assert_int_eq(a->mkdir(U, "/d", 0755, 0), 0);
	sd_stat st;
	ck_assert_int_eq(a->chmod(U, "/f", 0600), 0);
	ck_assert_int_eq(a->stat(U, "/f", &st), 0);
	ck_assert_uint_eq(st.mode, 0600);
	ck_assert_int_eq(a->chmod(U, "/d", 0711), 0);
	ck_assert_int_eq(a->stat(U, "/d", &st), 0);
	ck_assert_uint_eq(st.mode, 0711);
	ck_assert_int_eq(a->set_mtime(U, "/f", 1000000000), 0);
	ck_assert_int_eq(a->stat(U, "/f", &st), 0);
	ck_assert_int_eq(st.mtime, 1000000000);
	ck_assert_uint_eq(st.mode, 0600);
	ck_assert_int_eq(st.versions, 1); /* attributes are not versions */
	ck_assert_int_eq(a->set_mtime(U, "/d", 1234567890), 0);
	ck_assert_int_eq(a->stat(U, "/d", &st), 0);
	ck_assert_int_eq(st.mtime, 1234567890);
	/* visible in readdir too */
	names ns = {0};
	int more;
	ck_assert_int_eq(list(U, "/", "e", 0, &ns, &more), 1);
	ck_assert_str_eq(ns.v[0], "f");
	names_free(&ns);
	ck_assert_int_eq(a->chmod(U, "/nope", 0600), -ENOENT);
	ck_assert_int_eq(a->set_mtime(U, "/nope", 1), -ENOENT);
	ck_assert_int_eq(journal_count("chmod", "/f"), 1);
	ck_assert_int_eq(journal_count("mtime", "/f"), 1);
}
END_TEST

/* ---------------------------------------------------------------- quota, isolation */

START_TEST(test_quota)
{
	const sd_core_api *a = T.api;
	ck_assert_int_eq(a->user_set_quota(T.c, "alice", 100000), 0);
	/* the session sees the new quota at once */
	sd_session_info si;
	ck_assert_int_eq(a->session_info(U, &si), 0);
	ck_assert_int_eq(si.quota, 100000);
	sd_fsinfo fi;
	ck_assert_int_eq(a->fsinfo(U, &fi), 0);
	ck_assert_int_eq(fi.quota, 100000);
	size_t n = 60000;
	char *d1 = pattern(100000, 40), *d2 = pattern(100000, 41);
	tu_put(&T, U, "/one", d1, n);
	ck_assert_int_eq(used_now(U), (int64_t)n);
	int files = tu_blob_files(&T);
	long long blobs = tu_sql_int(&T, "SELECT count(*) FROM blobs");

	/* a second 60000 bytes exceeds 100000: refused at write or commit */
	int r = tu_put_r(&T, U, "/two", d2, n, NULL, NULL);
	ck_assert_int_eq(r, -EDQUOT);
	expect_stat_err(U, "/two", -ENOENT);
	ck_assert_int_eq(used_now(U), (int64_t)n);
	ck_assert_int_eq(tu_blob_files(&T), files);
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM blobs"), blobs);
	ck_assert_int_eq(tu_temp_files(&T), 0);
	ck_assert_int_eq(count_entries(U, "/"), 1);

	/* replacing a file counts only the difference */
	tu_put(&T, U, "/one", d2, 90000);
	ck_assert_int_eq(used_now(U), 90000);
	/* a copy needs room too (logical bytes) */
	ck_assert_int_eq(a->copy(U, "/one", "/copy"), -EDQUOT);
	expect_stat_err(U, "/copy", -ENOENT);
	ck_assert_int_eq(used_now(U), 90000);
	/* exactly up to the quota is allowed */
	tu_put(&T, U, "/rest", d1, 10000);
	ck_assert_int_eq(used_now(U), 100000);
	ck_assert_int_eq(tu_put_r(&T, U, "/one-more", "x", 1, NULL, NULL), -EDQUOT);
	/* deleting frees room */
	ck_assert_int_eq(a->unlink(U, "/rest", 0), 0);
	tu_put(&T, U, "/one-more", "x", 1);
	ck_assert_int_eq(used_now(U), 90001);
	/* quota 0 = unlimited */
	ck_assert_int_eq(a->user_set_quota(T.c, "alice", 0), 0);
	tu_put(&T, U, "/two", d2, n);
	ck_assert_int_eq(used_now(U), (int64_t)(90001 + n));
	free(d1);
	free(d2);
}
END_TEST

START_TEST(test_isolation)
{
	const sd_core_api *a = T.api;
	sd_session *bob = tu_user(&T, "bob");
	tu_put(&T, U, "/same.txt", "alice's", 7);
	tu_put(&T, bob, "/same.txt", "bob's data", 10);
	tu_put(&T, U, "/dir/secret", "alice secret", 12);
	expect_content(U, "/same.txt", "alice's", 7);
	expect_content(bob, "/same.txt", "bob's data", 10);
	expect_stat_err(bob, "/dir", -ENOENT);
	expect_stat_err(bob, "/dir/secret", -ENOENT);
	ck_assert_int_eq(count_entries(bob, "/"), 1);
	ck_assert_int_eq(count_entries(U, "/"), 2);
	/* bob's mutations never reach alice's tree */
	ck_assert_int_eq(a->unlink(bob, "/dir/secret", 0), -ENOENT);
	ck_assert_int_eq(a->rename(bob, "/dir", "/mine", 0), -ENOENT);
	ck_assert_int_eq(a->copy(bob, "/dir/secret", "/stolen"), -ENOENT);
	ck_assert_int_eq(a->chmod(bob, "/dir/secret", 0777), -ENOENT);
	ck_assert_int_eq(a->unlink(bob, "/same.txt", 0), 0);
	expect_content(U, "/same.txt", "alice's", 7);
	ck_assert_int_eq(a->mkdir(bob, "/dir", 0755, 0), 0);
	ck_assert_int_eq(count_entries(bob, "/dir"), 0);
	expect_content(U, "/dir/secret", "alice secret", 12);
	/* used bytes are per user */
	ck_assert_int_eq(used_now(U), 19);
	ck_assert_int_eq(used_now(bob), 0);
	/* the same content is one blob for both users */
	tu_put(&T, bob, "/copy-of-alice", "alice secret", 12);
	char h[SD_SHA256_HEX];
	sha_hex("alice secret", 12, h);
	ck_assert_int_eq(blob_refs(h), 2);
	expect_content(U, "/dir/secret", "alice secret", 12);
}
END_TEST

/* ---------------------------------------------------------------- paths */

typedef struct prow {
	const char *in;
	int err;         /* 0 or -errno */
	const char *out; /* normalised form when err == 0 */
} prow;

START_TEST(test_paths)
{
	const sd_core_api *a = T.api;
	char c255[260], c256[260], long_ok[320], long_bad[320];
	memset(c255, 'n', 255);
	c255[255] = '\0';
	memset(c256, 'n', 256);
	c256[256] = '\0';
	snprintf(long_ok, sizeof long_ok, "/%s", c255);
	snprintf(long_bad, sizeof long_bad, "a/%s", c256);
	const prow rows[] = {
		/* ".." drops the previous component and stops at the root */
		{"../x", 0, "/x"},
		{"a/../../b", 0, "/b"},
		{"a/../b", 0, "/b"},
		{"/..", 0, "/"},
		{"a/./b", 0, "/a/b"},
		{"a//b", 0, "/a/b"},
		{"/a/b/", 0, "/a/b"},
		{"./c", 0, "/c"},
		{"", 0, "/"},
		{"/", 0, "/"},
		{"//.//", 0, "/"},
		{c255, 0, long_ok},
		{c256, -ENAMETOOLONG, NULL},
		{long_bad, -ENAMETOOLONG, NULL},
		{"\xff", -EINVAL, NULL},
		{"\xc0\xaf", -EINVAL, NULL},
		{"x\xc0\xae\xc0\xae/y", -EINVAL, NULL},
		{"\xe0\x80\xaf", -EINVAL, NULL},
		{"\xed\xa0\x80", -EINVAL, NULL},
		{"a\x01" "b", -EINVAL, NULL},
		{"a\nb", -EINVAL, NULL},
		{"a\rb", -EINVAL, NULL},
		{"\x1b[31m", -EINVAL, NULL},
		{"a\x7f", -EINVAL, NULL},
		{"a\\b", -EINVAL, NULL},
		{"..\\x", -EINVAL, NULL},
		{"\xc3\xa9t\xc3\xa9", 0, "/\xc3\xa9t\xc3\xa9"},
		{"\xe6\x97\xa5\xe6\x9c\xac/\xf0\x9f\x98\x80", 0, "/\xe6\x97\xa5\xe6\x9c\xac/\xf0\x9f\x98\x80"},
		{"...", 0, "/..."},
		{"a b", 0, "/a b"},
	};
	int nrows = (int)(sizeof rows / sizeof rows[0]);

	/* api->resolve directly (the session's working directory is "/") */
	for (int i = 0; i < nrows; i++) {
		char out[SD_PATH_MAX + 1];
		int r = a->resolve(U, rows[i].in, strlen(rows[i].in), out, sizeof out);
		ck_assert_msg(r == rows[i].err, "resolve row %d: got %d, expected %d", i, r, rows[i].err);
		if (r == 0)
			ck_assert_msg(strcmp(out, rows[i].out) == 0, "resolve row %d: '%s'", i, out);
	}
	/* an argument holding a NUL is refused, not cut short */
	char nulout[SD_PATH_MAX + 1];
	ck_assert_int_eq(a->resolve(U, "a\0b", 3, nulout, sizeof nulout), -EINVAL);
	/* a whole path longer than SD_PATH_MAX */
	char *huge = malloc(SD_PATH_MAX + 64);
	size_t o = 0;
	while (o < SD_PATH_MAX + 10) {
		memcpy(huge + o, "/abcdefgh", 9);
		o += 9;
	}
	huge[o] = '\0';
	char out[SD_PATH_MAX + 1];
	ck_assert_int_eq(a->resolve(U, huge, strlen(huge), out, sizeof out), -ENAMETOOLONG);
	ck_assert_int_eq(a->mkdir(U, huge, 0755, 1), -ENAMETOOLONG);
	free(huge);
	/* an output buffer too small is an error, never an overflow */
	char small[4];
	ck_assert_int_lt(a->resolve(U, "/abcdef", 7, small, sizeof small), 0);

	/* through the API: refused paths create nothing */
	for (int i = 0; i < nrows; i++) {
		if (rows[i].err == 0)
			continue;
		int r = a->mkdir(U, rows[i].in, 0755, 1);
		ck_assert_msg(r == rows[i].err, "mkdir row %d: got %d, expected %d", i, r, rows[i].err);
		sd_upload *up = NULL;
		r = a->upload_begin(U, rows[i].in, SD_UP_PARENTS, 0, 0644, &up);
		ck_assert_msg(r == rows[i].err, "upload_begin row %d: got %d, expected %d", i, r,
			      rows[i].err);
		ck_assert_ptr_null(up);
		sd_stat st;
		r = a->stat(U, rows[i].in, &st);
		ck_assert_msg(r == rows[i].err, "stat row %d: got %d", i, r);
		r = a->rename(U, rows[i].in, "/target", 0);
		ck_assert_msg(r < 0, "rename from row %d: got %d", i, r);
	}
	ck_assert_int_eq(count_entries(U, "/"), 0);
	tu_put(&T, U, "/src", "s", 1);
	for (int i = 0; i < nrows; i++) {
		if (rows[i].err == 0)
			continue;
		ck_assert_msg(a->rename(U, "/src", rows[i].in, 0) == rows[i].err, "rename to row %d", i);
		ck_assert_msg(a->copy(U, "/src", rows[i].in) == rows[i].err, "copy to row %d", i);
	}
	ck_assert_int_eq(count_entries(U, "/"), 1);
	ck_assert_int_eq(a->unlink(U, "/src", 0), 0);

	/* accepted paths land at their normalised form */
	for (int i = 0; i < nrows; i++) {
		if (rows[i].err != 0 || strcmp(rows[i].out, "/") == 0)
			continue;
		int r = a->mkdir(U, rows[i].in, 0755, 1);
		ck_assert_msg(r == 0, "mkdir row %d: %d", i, r);
		expect_kind(U, rows[i].out, SD_KIND_DIR);
	}
	/* a, b, c, x, nnn..., été, 日本, ..., "a b" */
	names ns = {0};
	int more;
	ck_assert_int_eq(list(U, "/", NULL, 0, &ns, &more), 9);
	for (int i = 0; i < ns.n; i++) {
		ck_assert_msg(strcmp(ns.v[i], "..") != 0 && strcmp(ns.v[i], ".") != 0 &&
				  strchr(ns.v[i], '/') == NULL,
			      "bad stored name '%s'", ns.v[i]);
	}
	names_free(&ns);
	ck_assert_int_eq(count_entries(U, "/a"), 1); /* just "b" */

	/* relative paths start at the session's working directory */
	ck_assert_int_eq(a->chdir(U, "/a"), 0);
	ck_assert_int_eq(a->mkdir(U, "rel", 0755, 0), 0);
	ck_assert_int_eq(a->mkdir(U, "../../top", 0755, 0), 0);
	ck_assert_int_eq(a->chdir(U, "/"), 0);
	expect_kind(U, "/a/rel", SD_KIND_DIR);
	expect_kind(U, "/top", SD_KIND_DIR);
}
END_TEST

/* ---------------------------------------------------------------- journal */

/* Journal rows collected by api->journal's callback. */
typedef struct jrows {
	char ops[16][16];
	char paths[16][64];
	int64_t last_seq;
	int n;
} jrows;

static int collect_journal(void *arg, const sd_journal_entry *e)
{
	jrows *j = arg;
	if (j->n < 16) {
		snprintf(j->ops[j->n], sizeof j->ops[0], "%s", e->op);
		snprintf(j->paths[j->n], sizeof j->paths[0], "%s", e->path ? e->path : "");
	}
	ck_assert_int_gt(e->seq, j->last_seq); /* oldest first */
	ck_assert_str_eq(e->user, "alice");
	j->last_seq = e->seq;
	j->n++;
	return 0;
}

START_TEST(test_journal)
{
	const sd_core_api *a = T.api;
	long long before = tu_sql_int(&T, "SELECT count(*) FROM journal");
	long long seq0 = tu_sql_int(&T, "SELECT coalesce(max(seq), 0) FROM journal");
	ck_assert_int_eq(a->mkdir(U, "/j", 0755, 0), 0);
	tu_put(&T, U, "/j/f", "abc", 3);
	tu_put(&T, U, "/j/f", "abcd", 4);
	ck_assert_int_eq(a->copy(U, "/j/f", "/j/g"), 0);
	ck_assert_int_eq(a->rename(U, "/j/g", "/j/h", 0), 0);
	ck_assert_int_eq(a->chmod(U, "/j/h", 0600), 0);
	ck_assert_int_eq(a->set_mtime(U, "/j/h", 42), 0);
	ck_assert_int_eq(a->unlink(U, "/j/h", 0), 0);
	ck_assert_int_eq(a->mkdir(U, "/k", 0755, 0), 0);
	ck_assert_int_eq(a->rmdir(U, "/k"), 0);
	ck_assert_int_eq(a->unlink(U, "/j", 1), 0);

	ck_assert_int_eq(journal_count("mkdir", "/j"), 1);
	ck_assert_int_eq(journal_count("write", "/j/f"), 2);
	ck_assert_int_eq(journal_count("copy", "/j/g"), 1);
	ck_assert_int_eq(journal_count("rename", "/j/g"), 1);
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM journal WHERE op='rename' AND detail LIKE '%/j/h%'"), 1);
	ck_assert_int_eq(journal_count("chmod", "/j/h"), 1);
	ck_assert_int_eq(journal_count("mtime", "/j/h"), 1);
	ck_assert_int_eq(journal_count("delete", "/j/h"), 1);
	ck_assert_int_eq(journal_count("mkdir", "/k"), 1);
	ck_assert_int_eq(journal_count("rmdir", "/k"), 1);
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM journal WHERE path='/j' AND op IN ('rmdir','delete')"), 1);
	char q[200];
	snprintf(q, sizeof q, "SELECT count(*) FROM journal WHERE user='alice' AND seq > %lld", seq0);
	ck_assert_int_eq(tu_sql_int(&T, q), tu_sql_int(&T, "SELECT count(*) FROM journal") - before);
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM journal") - before, 11);
	/* the same rows through api->journal, oldest first */
	jrows j = {.last_seq = seq0};
	ck_assert_int_eq(a->journal(T.c, 0, "alice", seq0, collect_journal, &j), 11);
	ck_assert_int_eq(j.n, 11);
	ck_assert_str_eq(j.ops[0], "mkdir");
	ck_assert_str_eq(j.paths[0], "/j");
	ck_assert(strcmp(j.ops[10], "rmdir") == 0 || strcmp(j.ops[10], "delete") == 0);
	ck_assert_str_eq(j.paths[10], "/j");
	memset(&j, 0, sizeof j);
	j.last_seq = seq0;
	ck_assert_int_eq(a->journal(T.c, 0, "bob", seq0, collect_journal, &j), 0);
	/* refused calls write nothing */
	long long n = tu_sql_int(&T, "SELECT count(*) FROM journal");
	ck_assert_int_eq(a->mkdir(U, "/nope/x", 0755, 0), -ENOENT);
	ck_assert_int_eq(a->unlink(U, "/nope", 0), -ENOENT);
	ck_assert_int_eq(a->rename(U, "/nope", "/x", 0), -ENOENT);
	ck_assert_int_eq(a->mkdir(U, "..\\x", 0755, 0), -EINVAL);
	ck_assert_int_eq(a->mkdir(U, "../nope/x", 0755, 0), -ENOENT); /* ".." stops at "/" */
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM journal"), n);
}
END_TEST

/* ---------------------------------------------------------------- read-only */

START_TEST(test_readonly_user)
{
	const sd_core_api *a = T.api;
	tu_put(&T, U, "/f", "abc", 3);
	ck_assert_int_eq(a->mkdir(U, "/d", 0755, 0), 0);
	/* a read-only login: a session made from a read-only token */
	char tok[SD_TOKEN_MAX];
	ck_assert_int_eq(a->token_create(T.c, "alice", SD_SCOPE_RO, 0, tok, NULL), 0);
	sd_session *ro = NULL;
	ck_assert_int_eq(a->auth_token(T.c, tok, "127.0.0.1", "test", &ro), 0);
	tu_keep(&T, ro);
	ck_assert_int_eq(a->mkdir(ro, "/x", 0755, 0), -EROFS);
	ck_assert_int_eq(a->rmdir(ro, "/d"), -EROFS);
	ck_assert_int_eq(a->unlink(ro, "/f", 0), -EROFS);
	ck_assert_int_eq(a->rename(ro, "/f", "/g", 0), -EROFS);
	ck_assert_int_eq(a->copy(ro, "/f", "/g"), -EROFS);
	ck_assert_int_eq(a->chmod(ro, "/f", 0600), -EROFS);
	ck_assert_int_eq(a->set_mtime(ro, "/f", 5), -EROFS);
	ck_assert_int_eq(tu_put_r(&T, ro, "/g", "x", 1, NULL, NULL), -EROFS);
	/* reading is fine */
	expect_content(ro, "/f", "abc", 3);
	ck_assert_int_eq(count_entries(ro, "/"), 2);
	expect_stat_err(U, "/g", -ENOENT);
	expect_stat_err(U, "/x", -ENOENT);
}
END_TEST

static Suite *tree_suite(void)
{
	Suite *s = suite_create("tree");
	TCase *tc;

	tc = tcase_create("mkdir");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_mkdir);
	tcase_add_test(tc, test_rmdir);
	tcase_add_test(tc, test_stat);
	suite_add_tcase(s, tc);

	tc = tcase_create("readdir");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_readdir_order);
	tcase_add_test(tc, test_readdir_paging);
	tcase_add_test(tc, test_readdir_stop);
	suite_add_tcase(s, tc);

	tc = tcase_create("rename");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_rename_files);
	tcase_add_test(tc, test_rename_dirs);
	tcase_add_test(tc, test_rename_noreplace);
	suite_add_tcase(s, tc);

	tc = tcase_create("delete_copy");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_unlink_logical);
	tcase_add_test(tc, test_unlink_recursive);
	tcase_add_test(tc, test_copy);
	tcase_add_test(tc, test_attrs);
	suite_add_tcase(s, tc);

	tc = tcase_create("users");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_quota);
	tcase_add_test(tc, test_isolation);
	tcase_add_test(tc, test_readonly_user);
	suite_add_tcase(s, tc);

	tc = tcase_create("paths");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_paths);
	tcase_add_test(tc, test_journal);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(tree_suite());
}
