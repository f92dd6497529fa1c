/*
 * test_history.c - core/history.c through the sd_core_api table: version
 * lists and restore, past views across renames and deletes, the virtual
 * folders /.snapshots/ and /.trash/ (listing, reading, handles, refused
 * writes), the trash (list, restore, conflicts, empty), rollback and the
 * rollback of a rollback, the horizon, what the cleaner keeps, and a data
 * directory made before migration 0003.
 *
 * The clock is the engine's test seam, so every moment is exact. Database
 * facts are read with the sqlite3 CLI (tu_sql_int).
 */
#include <stdint.h>

#include "testutil.h"
#include "core/internal.h"

static tu_core T;
static sd_session *U;
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

#define T0 1800000000000LL /* 2027-01-15T08:00:00Z */
#define SEC 1000LL
#define DAY 86400000LL

static void setup(void)
{
	tu_core_open(&T, 0);
	now_ms = T0;
	disk_pct = 50;
	sd__core_set_clock(T.c, clk, NULL);
	sd__core_set_disk_usage(T.c, disk, NULL);
	U = tu_user(&T, "alice");
}

static void teardown(void)
{
	tu_core_close(&T);
}

static void put_s(const char *path, const char *text)
{
	tu_put(&T, U, path, text, strlen(text));
}

/* The file's bytes as a NUL-terminated string (caller frees). */
static char *get_s(sd_session *u, const char *path)
{
	size_t n;
	char *b = tu_get(&T, u, path, &n);
	b[n] = '\0';
	return b;
}

static void assert_text(sd_session *u, const char *path, const char *want)
{
	char *got = get_s(u, path);
	ck_assert_msg(strcmp(got, want) == 0, "%s: want '%s', got '%s'", path, want, got);
	free(got);
}

/* The path of `path` at `at` in /.snapshots/. */
static const char *at(const char *path, int64_t when)
{
	static char buf[4][SD_PATH_MAX + 1];
	static int k;
	char *o = buf[k++ % 4];
	int r = T.api->at_path(U, path, when, o, SD_PATH_MAX + 1);
	ck_assert_msg(r == 0, "at_path %s: %s", path, T.api->strerror(r));
	return o;
}

typedef struct vlist {
	sd_version v[32];
	int n;
} vlist;

static int vcb(void *arg, const sd_version *v)
{
	vlist *l = arg;
	if (l->n < 32)
		l->v[l->n++] = *v;
	return 0;
}

static vlist versions_of(const char *path)
{
	vlist l = {.n = 0};
	int r = T.api->versions(U, path, vcb, &l);
	ck_assert_msg(r == l.n, "versions %s: %d", path, r);
	return l;
}

/* Names of a listing joined with ',' (kind marker '/' for folders). */
typedef struct ls_ctx {
	char out[8192];
} ls_ctx;

static int lscb(void *arg, const sd_dirent *e)
{
	ls_ctx *l = arg;
	size_t n = strlen(l->out);
	snprintf(l->out + n, sizeof l->out - n, "%s%s%s", n ? "," : "", e->name,
		 e->st.kind == SD_KIND_DIR ? "/" : "");
	return 0;
}

static char *ls(sd_session *u, const char *path)
{
	static ls_ctx l;
	l.out[0] = '\0';
	int more = 0;
	int r = T.api->readdir(u, path, NULL, 0, lscb, &l, &more);
	ck_assert_msg(r >= 0, "readdir %s: %s", path, T.api->strerror(r));
	return l.out;
}

/* Two trees hold the same names, kinds and contents (recursively). */
typedef struct ent {
	char name[SD_NAME_MAX + 1];
	int kind;
	char sha[SD_SHA256_HEX];
} ent;
typedef struct ents {
	ent e[256];
	int n;
} ents;

static int entcb(void *arg, const sd_dirent *d)
{
	ents *l = arg;
	ck_assert_int_lt(l->n, 256);
	ent *x = &l->e[l->n++];
	snprintf(x->name, sizeof x->name, "%s", d->name);
	x->kind = d->st.kind;
	snprintf(x->sha, sizeof x->sha, "%s", d->st.sha256);
	return 0;
}

static void same_tree(const char *a, const char *b)
{
	ents *la = calloc(1, sizeof *la), *lb = calloc(1, sizeof *lb);
	int more;
	ck_assert_int_ge(T.api->readdir(U, a, NULL, 0, entcb, la, &more), 0);
	ck_assert_int_ge(T.api->readdir(U, b, NULL, 0, entcb, lb, &more), 0);
	ck_assert_msg(la->n == lb->n, "%s has %d entries, %s has %d", a, la->n, b, lb->n);
	for (int i = 0; i < la->n; i++) {
		ck_assert_msg(strcmp(la->e[i].name, lb->e[i].name) == 0, "%s: %s vs %s", a,
			      la->e[i].name, lb->e[i].name);
		ck_assert_int_eq(la->e[i].kind, lb->e[i].kind);
		ck_assert_msg(strcmp(la->e[i].sha, lb->e[i].sha) == 0, "%s/%s content differs", a,
			      la->e[i].name);
		if (la->e[i].kind == SD_KIND_DIR) {
			char ca[SD_PATH_MAX + 1], cb[SD_PATH_MAX + 1];
			snprintf(ca, sizeof ca, "%s/%s", strcmp(a, "/") ? a : "", la->e[i].name);
			snprintf(cb, sizeof cb, "%s/%s", b, lb->e[i].name);
			same_tree(ca, cb);
		}
	}
	free(la);
	free(lb);
}

/* ---------------------------------------------------------------- versions */

START_TEST(test_versions_restore)
{
	put_s("/doc.txt", "one");
	now_ms += SEC;
	put_s("/doc.txt", "two!");
	now_ms += SEC;
	put_s("/doc.txt", "three");
	int blobs = tu_blob_files(&T);
	vlist l = versions_of("/doc.txt");
	ck_assert_int_eq(l.n, 3);
	ck_assert_int_eq(l.v[0].current, 1);
	ck_assert_int_eq(l.v[0].size, 5);
	ck_assert_int_eq(l.v[2].size, 3);
	ck_assert_int_eq(l.v[2].ts, T0);
	ck_assert_str_eq(l.v[2].user, "alice");
	ck_assert_str_eq(l.v[2].proto, "cli");
	ck_assert_str_eq(l.v[2].addr, "local");
	ck_assert_str_eq(l.v[2].op, "write");
	ck_assert_int_eq(l.v[2].mtime, T0 / 1000);

	/* restore the first: a new version naming the old content */
	now_ms += SEC;
	sd_stat st;
	ck_assert_int_eq(T.api->version_restore(U, "/doc.txt", l.v[2].id, &st), 0);
	ck_assert_int_eq(st.size, 3);
	ck_assert_int_eq(st.versions, 4);
	assert_text(U, "/doc.txt", "one");
	vlist m = versions_of("/doc.txt");
	ck_assert_int_eq(m.n, 4);
	ck_assert_str_eq(m.v[0].op, "restore");
	ck_assert_str_eq(m.v[0].sha256, l.v[2].sha256);
	ck_assert_int_eq(tu_blob_files(&T), blobs); /* nothing copied */
	ck_assert_int_eq(tu_sql_int(&T, "SELECT refs FROM blobs WHERE size = 3"), 2);

	/* undone the same way */
	now_ms += SEC;
	ck_assert_int_eq(T.api->version_restore(U, "/doc.txt", m.v[1].id, NULL), 0);
	assert_text(U, "/doc.txt", "three");

	/* a version of another file, unknown ids, folders */
	put_s("/other", "x");
	vlist o = versions_of("/other");
	ck_assert_int_eq(T.api->version_restore(U, "/doc.txt", o.v[0].id, NULL), -ENOENT);
	ck_assert_int_eq(T.api->version_restore(U, "/doc.txt", 999999, NULL), -ENOENT);
	ck_assert_int_eq(T.api->mkdir(U, "/dir", 0755, 0), 0);
	ck_assert_int_eq(T.api->version_restore(U, "/dir", 1, NULL), -EISDIR);
	assert_text(U, "/doc.txt", "three");
	ck_assert_int_eq(T.api->versions(U, at("/doc.txt", now_ms), vcb, &o), -ENOTSUP);

	/* another user cannot name alice's versions */
	sd_session *b = tu_user(&T, "bob");
	put_s("/shared-name", "alice's");
	tu_put(&T, b, "/shared-name", "bob's", 5);
	vlist a = versions_of("/shared-name");
	ck_assert_int_eq(T.api->version_restore(b, "/shared-name", a.v[0].id, NULL), -ENOENT);
	assert_text(b, "/shared-name", "bob's");
}
END_TEST

/* ---------------------------------------------------------------- views */

START_TEST(test_views_across_renames)
{
	ck_assert_int_eq(T.api->mkdir(U, "/a", 0755, 0), 0);
	put_s("/a/f", "v1");
	int64_t t1 = now_ms;
	now_ms += SEC;
	ck_assert_int_eq(T.api->rename(U, "/a", "/b", 0), 0);
	int64_t t2 = now_ms;
	now_ms += SEC;
	put_s("/b/f", "v2");
	int64_t t3 = now_ms;
	now_ms += SEC;
	ck_assert_int_eq(T.api->rename(U, "/b/f", "/b/g", 0), 0);
	int64_t t4 = now_ms;
	now_ms += SEC;
	ck_assert_int_eq(T.api->unlink(U, "/b/g", 0), 0);
	int64_t t5 = now_ms;

	assert_text(U, at("/a/f", t1), "v1");
	ck_assert_str_eq(ls(U, at("/", t1)), "a/");
	ck_assert_str_eq(ls(U, at("/", t2)), "b/");
	assert_text(U, at("/b/f", t2), "v1");
	assert_text(U, at("/b/f", t3), "v2");
	assert_text(U, at("/b/g", t4), "v2");
	ck_assert_str_eq(ls(U, at("/b", t4)), "g");
	ck_assert_str_eq(ls(U, at("/b", t5)), "");
	/* just before a change, the change is not there */
	assert_text(U, at("/a/f", t2 - 1), "v1");
	sd_stat st;
	ck_assert_int_eq(T.api->stat(U, at("/a", t2), &st), -ENOENT);
	ck_assert_int_eq(T.api->stat(U, at("/b/f", t4), &st), -ENOENT);
	ck_assert_int_eq(T.api->stat(U, at("/a/f", t1 - 1), &st), -ENOENT); /* not made yet */

	/* a view's files are read-only, with their content of then */
	ck_assert_int_eq(T.api->stat(U, at("/b/g", t4), &st), 0);
	ck_assert_int_eq(st.kind, SD_KIND_FILE);
	ck_assert_int_eq(st.mode, 0444);
	ck_assert_int_eq(st.size, 2);
	ck_assert_int_eq(st.versions, 2);

	/* chdir into a view, relative names, handles (what SFTP uses) */
	ck_assert_int_eq(T.api->chdir(U, at("/b", t3)), 0);
	assert_text(U, "f", "v2");
	ck_assert_int_eq(T.api->chdir(U, "/"), 0);
	sd_handle h;
	ck_assert_int_eq(T.api->handle_open(U, at("/b/f", t2), SD_O_READ, 0, &h, &st), 0);
	char buf[8] = "";
	ck_assert_int_eq(T.api->handle_pread(U, h, buf, sizeof buf, 0), 2);
	ck_assert_int_eq(memcmp(buf, "v1", 2), 0);
	ck_assert_int_eq(T.api->handle_fstat(U, h, &st), 0);
	ck_assert_int_eq(st.size, 2);
	ck_assert_int_eq(T.api->handle_pwrite(U, h, "x", 1, 0), -EBADF);
	ck_assert_int_eq(T.api->handle_setattr(U, h, SD_ATTR_MTIME, 0, 5), -EROFS);
	ck_assert_int_eq(T.api->handle_close(U, h), 0);

	/* copy out of a view: the old content as a new file, nothing copied */
	int blobs = tu_blob_files(&T);
	ck_assert_int_eq(T.api->copy(U, at("/a/f", t1), "/restored"), 0);
	assert_text(U, "/restored", "v1");
	ck_assert_int_eq(tu_blob_files(&T), blobs);
	ck_assert_int_eq(T.api->copy(U, at("/b", t3), "/x"), -EISDIR);
}
END_TEST

START_TEST(test_snapshot_folders)
{
	put_s("/one", "1");
	now_ms += 2 * SEC + 345;
	put_s("/two", "2");
	now_ms += DAY;
	put_s("/three", "3");
	/* hidden from "/" but reachable by name */
	ck_assert_str_eq(ls(U, "/"), "one,three,two");
	ck_assert_str_eq(ls(U, "/.snapshots"), "2027-01-15/,2027-01-16/");
	ck_assert_str_eq(ls(U, "/.snapshots/2027-01-15"), "08-00-00/,08-00-02/");
	ck_assert_str_eq(ls(U, "/.snapshots/2027-01-15/08-00-00"), "one");
	ck_assert_str_eq(ls(U, "/.snapshots/2027-01-15/08-00-02"), "one,two");
	ck_assert_str_eq(ls(U, "/.snapshots/2027-01-15/08-00-02.344"), "one");
	ck_assert_str_eq(ls(U, "/.snapshots/2027-01-15/08-00-02.345"), "one,two");
	ck_assert_str_eq(ls(U, "/.snapshots/2027-01-15T08-00-02.345Z"), "one,two");
	ck_assert_str_eq(ls(U, "/.snapshots/2027-01-16/12-00-00Z"), "one,three,two");
	ck_assert_str_eq(at("/two", T0 + 2345), "/.snapshots/2027-01-15/08-00-02.345/two");
	ck_assert_str_eq(at("/", T0), "/.snapshots/2027-01-15/08-00-00.000");
	sd_stat st;
	ck_assert_int_eq(T.api->stat(U, "/.snapshots", &st), 0);
	ck_assert_int_eq(st.kind, SD_KIND_DIR);
	ck_assert_int_eq(st.mode, 0555);
	ck_assert_int_eq(T.api->stat(U, "/.snapshots/2027-01-15/08-00-02", &st), 0);
	ck_assert_int_eq(st.mtime, (T0 + 2345) / 1000);
	/* names that are not ours */
	const char *bad[] = {"/.snapshots/2027-02-30", "/.snapshots/today", "/.snapshots/2027-01-15/8-00",
			     "/.snapshots/2027-01-15/25-00-00", "/.snapshots/2027-01-15T08:00:00",
			     "/.trash/nothing", "/.trash/2027-01-15T08-00-00.000Z_1_x", NULL};
	for (int i = 0; bad[i]; i++)
		ck_assert_msg(T.api->stat(U, bad[i], &st) == -ENOENT, "%s", bad[i]);
	/* the horizon: min(deleted_retention 7d, version_retention 30d) */
	now_ms += 8 * DAY;
	ck_assert_int_eq(T.api->stat(U, "/.snapshots/2027-01-15/08-00-02", &st), -SD_EHISTORY);
	char p[SD_PATH_MAX + 1];
	ck_assert_int_eq(T.api->at_path(U, "/one", T0, p, sizeof p), -SD_EHISTORY);
	ck_assert_str_eq(ls(U, "/.snapshots"), "");
	sd_rollback_report rep;
	ck_assert_int_eq(T.api->rollback(U, "/", T0, &rep), -SD_EHISTORY);
	ck_assert_int_eq(T.api->at_path(U, "/.trash", now_ms, p, sizeof p), -EINVAL);
}
END_TEST

START_TEST(test_virtual_writes_refused)
{
	put_s("/f", "content");
	now_ms += SEC;
	ck_assert_int_eq(T.api->unlink(U, "/f", 0), 0);
	char snap[SD_PATH_MAX + 1], item[SD_PATH_MAX + 1];
	snprintf(snap, sizeof snap, "%s", at("/f", now_ms - 1));
	snprintf(item, sizeof item, "/.trash/%s", ls(U, "/.trash"));
	const char *dirs[] = {"/.snapshots", "/.trash"};
	int errs[] = {-EROFS, -EACCES};
	for (int k = 0; k < 2; k++) {
		const char *in = k ? item : snap;
		char sub[SD_PATH_MAX + 1];
		snprintf(sub, sizeof sub, "%s/new", dirs[k]);
		int e = errs[k];
		sd_upload *up;
		sd_handle h;
		sd_challenge ch;
		sd_stat st;
		ck_assert_int_eq(T.api->mkdir(U, sub, 0755, 0), e);
		ck_assert_int_eq(T.api->mkdir(U, dirs[k], 0755, 0), e);
		ck_assert_int_eq(T.api->upload_begin(U, in, 0, 0, 0644, &up), e);
		ck_assert_int_eq(T.api->upload_begin(U, sub, SD_UP_PARENTS, 0, 0644, &up), e);
		ck_assert_int_eq(T.api->unlink(U, in, 0), e);
		ck_assert_int_eq(T.api->unlink(U, dirs[k], 1), e);
		ck_assert_int_eq(T.api->rmdir(U, dirs[k]), e);
		ck_assert_int_eq(T.api->chmod(U, in, 0600), e);
		ck_assert_int_eq(T.api->set_mtime(U, in, 5), e);
		ck_assert_int_eq(T.api->handle_open(U, in, SD_O_WRITE, 0644, &h, NULL), e);
		ck_assert_int_eq(T.api->handle_open(U, sub, SD_O_WRITE | SD_O_CREAT, 0644, &h, NULL), e);
		ck_assert_int_eq(T.api->rename(U, "/nothing", sub, 0), e);
		ck_assert_int_eq(T.api->copy(U, in, sub), e);
		ck_assert_int_eq(T.api->instant_begin(U, sub, 0, st.sha256, 1, &ch, &st), e);
		ck_assert_int_eq(T.api->rollback(U, in, T0, NULL), e);
		ck_assert_int_eq(T.api->version_restore(U, in, 1, NULL), e);
		ck_assert_int_eq(T.api->trash_restore(U, 1, sub, NULL), e);
	}
	/* renames inside the trash, or from a snapshot, are refused too */
	char to[SD_PATH_MAX + 1];
	snprintf(to, sizeof to, "/.trash/renamed");
	ck_assert_int_eq(T.api->rename(U, item, to, 0), -EACCES);
	ck_assert_int_eq(T.api->rename(U, snap, "/back", 0), -EROFS);
	ck_assert_int_eq(T.api->rename(U, "/.snapshots", "/s", 0), -EROFS);
	ck_assert_int_eq(T.api->rename(U, "/.trash", "/t", 0), -EACCES);
	/* nothing changed: the item is still there, and nothing named so */
	sd_stat st;
	ck_assert_int_eq(T.api->stat(U, item, &st), 0);
	ck_assert_str_eq(ls(U, "/"), "");
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM nodes WHERE name LIKE '.%'"), 0);
	/* a read-only login reads there and writes nowhere */
	unsigned state = 7;
	ck_assert_int_eq(T.api->open_state(U, snap, &state), 0);
	ck_assert_int_eq(state, 0);
}
END_TEST

START_TEST(test_show_history_folders)
{
	tu_core_close(&T);
	tu_core_prepare(&T);
	T.conf.show_history_folders = 1;
	tu_core_reopen(&T, 0);
	now_ms = T0;
	sd__core_set_clock(T.c, clk, NULL);
	U = tu_user(&T, "alice");
	put_s("/-first", "a");
	put_s("/.config", "b");
	put_s("/zeta", "c");
	ck_assert_str_eq(ls(U, "/"), "-first,.config,.snapshots/,.trash/,zeta");
	/* pages keep the order and say when more is left */
	ls_ctx l;
	int more = 0;
	l.out[0] = '\0';
	ck_assert_int_eq(T.api->readdir(U, "/", NULL, 3, lscb, &l, &more), 3);
	ck_assert_str_eq(l.out, "-first,.config,.snapshots/");
	ck_assert_int_eq(more, 1);
	l.out[0] = '\0';
	ck_assert_int_eq(T.api->readdir(U, "/", ".snapshots", 3, lscb, &l, &more), 2);
	ck_assert_str_eq(l.out, ".trash/,zeta");
	ck_assert_int_eq(more, 0);
	l.out[0] = '\0';
	ck_assert_int_eq(T.api->readdir(U, "/", ".config", 1, lscb, &l, &more), 1);
	ck_assert_str_eq(l.out, ".snapshots/");
	ck_assert_int_eq(more, 1);
}
END_TEST

/* ---------------------------------------------------------------- trash */

typedef struct tlist {
	int64_t id[16];
	char path[16][256], name[16][256];
	int64_t deleted[16], files[16];
	uint64_t size[16];
	int kind[16];
	int n;
} tlist;

static int tcb(void *arg, const sd_trash_item *t)
{
	tlist *l = arg;
	if (l->n < 16) {
		l->id[l->n] = t->id;
		snprintf(l->path[l->n], 256, "%s", t->path);
		snprintf(l->name[l->n], 256, "%s", t->name);
		l->deleted[l->n] = t->deleted;
		l->files[l->n] = t->files;
		l->size[l->n] = t->size;
		l->kind[l->n] = t->kind;
		l->n++;
	}
	return 0;
}

static tlist trash(sd_session *u)
{
	tlist l = {.n = 0};
	int r = T.api->trash_list(u, tcb, &l);
	ck_assert_int_eq(r, l.n);
	return l;
}

START_TEST(test_trash)
{
	ck_assert_int_eq(T.api->mkdir(U, "/proj/sub", 0755, 1), 0);
	put_s("/proj/a.txt", "aaa");
	put_s("/proj/sub/b.txt", "bb");
	put_s("/loose", "l");
	now_ms += SEC;
	ck_assert_int_eq(T.api->unlink(U, "/proj/sub/b.txt", 0), 0); /* its own item */
	now_ms += SD_DELETE_BURST_MS + SEC; /* another burst of deletes */
	ck_assert_int_eq(T.api->unlink(U, "/proj", 1), 0);
	int64_t t_del = now_ms;
	tlist l = trash(U);
	ck_assert_int_eq(l.n, 2);
	ck_assert_str_eq(l.path[0], "/proj"); /* newest first */
	ck_assert_int_eq(l.kind[0], SD_KIND_DIR);
	ck_assert_int_eq(l.deleted[0], t_del);
	ck_assert_int_eq(l.files[0], 1);
	ck_assert_int_eq(l.size[0], 3);
	ck_assert_str_eq(l.path[1], "/proj/sub/b.txt");
	char want[64];
	snprintf(want, sizeof want, "2027-01-15T08-00-12.000Z_%lld_proj", (long long)l.id[0]);
	ck_assert_str_eq(l.name[0], want);
	/* /.trash lists the same items, oldest first (name order), and shows
	 * each as it was when deleted */
	char expect[600];
	snprintf(expect, sizeof expect, "%s,%s/", l.name[1], l.name[0]);
	ck_assert_str_eq(ls(U, "/.trash"), expect);
	char p[600];
	snprintf(p, sizeof p, "/.trash/%s", l.name[0]);
	ck_assert_str_eq(ls(U, p), "a.txt,sub/");
	snprintf(p, sizeof p, "/.trash/%s/a.txt", l.name[0]);
	assert_text(U, p, "aaa");
	snprintf(p, sizeof p, "/.trash/%s/sub", l.name[0]);
	ck_assert_str_eq(ls(U, p), ""); /* b.txt was deleted before: its own item */

	/* restore to its place, with what was deleted with it */
	int64_t used = tu_row(&T, U).used;
	sd_stat st;
	now_ms += SEC;
	ck_assert_int_eq(T.api->trash_restore(U, l.id[0], NULL, &st), 0);
	ck_assert_int_eq(st.kind, SD_KIND_DIR);
	assert_text(U, "/proj/a.txt", "aaa");
	ck_assert_str_eq(ls(U, "/proj"), "a.txt,sub/");
	ck_assert_str_eq(ls(U, "/proj/sub"), "");
	ck_assert_int_eq(tu_row(&T, U).used, used + 3);
	ck_assert_int_eq(trash(U).n, 1);
	ck_assert_int_eq(T.api->trash_restore(U, l.id[0], NULL, NULL), -ENOENT); /* once */

	/* the place is taken: -EEXIST, then to another path */
	put_s("/proj/sub/b.txt", "new b");
	ck_assert_int_eq(T.api->trash_restore(U, l.id[1], NULL, NULL), -EEXIST);
	ck_assert_int_eq(T.api->trash_restore(U, l.id[1], "/proj/sub/old-b.txt", NULL), 0);
	assert_text(U, "/proj/sub/old-b.txt", "bb");
	assert_text(U, "/proj/sub/b.txt", "new b");

	/* its folder gone: restoring makes the missing folders again */
	now_ms += SD_DELETE_BURST_MS + SEC;
	ck_assert_int_eq(T.api->unlink(U, "/proj/sub/old-b.txt", 0), 0);
	now_ms += SD_DELETE_BURST_MS + SEC;
	ck_assert_int_eq(T.api->unlink(U, "/proj", 1), 0);
	l = trash(U);
	ck_assert_int_eq(l.n, 2);
	ck_assert_str_eq(l.path[1], "/proj/sub/old-b.txt");
	ck_assert_int_eq(T.api->trash_restore(U, l.id[1], NULL, NULL), 0);
	assert_text(U, "/proj/sub/old-b.txt", "bb");

	/* rename out of /.trash restores; never over something */
	snprintf(p, sizeof p, "/.trash/%s", l.name[0]);
	ck_assert_int_eq(T.api->rename(U, p, "/proj", 0), -EEXIST);
	ck_assert_int_eq(T.api->rename(U, p, "/proj-again", 0), 0);
	ck_assert_str_eq(ls(U, "/proj-again"), "a.txt,sub/");
	assert_text(U, "/proj-again/sub/b.txt", "new b");
	ck_assert_str_eq(ls(U, "/proj/sub"), "old-b.txt"); /* the folders made for it */
	ck_assert_int_eq(T.api->stat(U, p, &st), -ENOENT);

	/* another user sees none of it */
	sd_session *b = tu_user(&T, "bob");
	ck_assert_int_eq(trash(b).n, 0);
	ck_assert_str_eq(ls(b, "/.trash"), "");
	ck_assert_int_eq(T.api->stat(b, p, &st), -ENOENT);
	now_ms += SD_DELETE_BURST_MS + SEC;
	ck_assert_int_eq(T.api->unlink(U, "/loose", 0), 0);
	l = trash(U);
	ck_assert_int_eq(l.n, 1);
	ck_assert_int_eq(T.api->trash_restore(b, l.id[0], NULL, NULL), -ENOENT);
	ck_assert_int_eq(T.api->trash_empty(b, l.id[0]), -ENOENT);
	ck_assert_int_eq(trash(U).n, 1);

	/* empty: purged now, the content freed by the cleaner */
	ck_assert_int_eq(T.api->trash_empty(U, 0), 1);
	ck_assert_int_eq(trash(U).n, 0);
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM nodes WHERE deleted_at IS NOT NULL"), 0);
	ck_assert_int_eq(tu_sql_int(&T, "SELECT refs FROM blobs WHERE size = 1"), 0);
	ck_assert_int_eq(T.api->trash_empty(U, 0), 0);

	/* items past deleted_retention are not listed, and the cleaner purges them */
	put_s("/old", "o");
	ck_assert_int_eq(T.api->unlink(U, "/old", 0), 0);
	now_ms += 8 * DAY;
	ck_assert_int_eq(trash(U).n, 0);
	sd_gc_report rep;
	ck_assert_int_eq(T.api->gc_run(T.c, 0, &rep), 0);
	ck_assert_int_eq(rep.nodes_purged, 1);
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM placements WHERE node NOT IN "
				       "(SELECT id FROM nodes)"), 0);
}
END_TEST

/* A folder deleted file by file (what SFTP and FTP clients do) is one
 * item: deletes of a session less than SD_DELETE_BURST_MS apart share the
 * stamp of the first. */
START_TEST(test_trash_burst)
{
	ck_assert_int_eq(T.api->mkdir(U, "/site/img", 0755, 1), 0);
	put_s("/site/index.html", "<html>");
	put_s("/site/img/logo.png", "png");
	put_s("/site/img/bg.png", "bg");
	put_s("/other.txt", "o");
	now_ms += 60 * SEC;
	int64_t t0 = now_ms;
	const char *order[] = {"/site/img/logo.png", "/site/img/bg.png", "/site/img", "/site/index.html",
			       "/site", NULL};
	for (int i = 0; order[i]; i++) {
		now_ms += 3 * SEC; /* 12 s in all, each step under the burst gap */
		int r = i == 2 || i == 4 ? T.api->rmdir(U, order[i]) : T.api->unlink(U, order[i], 0);
		ck_assert_msg(r == 0, "%s: %s", order[i], T.api->strerror(r));
	}
	tlist l = trash(U);
	ck_assert_int_eq(l.n, 1);
	ck_assert_str_eq(l.path[0], "/site");
	ck_assert_int_eq(l.deleted[0], t0 + 3 * SEC);
	ck_assert_int_eq(l.files[0], 3);
	char p[600];
	snprintf(p, sizeof p, "/.trash/%s/img", l.name[0]);
	ck_assert_str_eq(ls(U, p), "bg.png,logo.png"); /* as before the burst */
	/* the snapshots keep each delete's own moment */
	ck_assert_str_eq(ls(U, at("/site/img", t0 + 4 * SEC)), "bg.png");
	ck_assert_int_eq(T.api->trash_restore(U, l.id[0], NULL, NULL), 0);
	assert_text(U, "/site/img/logo.png", "png");
	assert_text(U, "/site/img/bg.png", "bg");
	assert_text(U, "/site/index.html", "<html>");
	/* a pause longer than the gap starts a new burst: two items */
	now_ms += 60 * SEC;
	ck_assert_int_eq(T.api->unlink(U, "/other.txt", 0), 0);
	now_ms += SD_DELETE_BURST_MS + 1;
	ck_assert_int_eq(T.api->unlink(U, "/site", 1), 0);
	ck_assert_int_eq(trash(U).n, 2);
	/* deleted, made again, deleted again in one burst, then its folder:
	 * the folder's item holds the first, the second is an item of its own,
	 * and both come back */
	put_s("/f/x", "first x");
	now_ms += 60 * SEC;
	ck_assert_int_eq(T.api->unlink(U, "/f/x", 0), 0);
	now_ms += SEC;
	put_s("/f/x", "second x");
	now_ms += SEC;
	ck_assert_int_eq(T.api->unlink(U, "/f/x", 0), 0);
	now_ms += SEC;
	ck_assert_int_eq(T.api->rmdir(U, "/f"), 0);
	l = trash(U);
	ck_assert_int_eq(l.n, 4);
	ck_assert_str_eq(l.path[0], "/f/x");
	ck_assert_str_eq(l.path[1], "/f");
	ck_assert_int_eq(T.api->trash_restore(U, l.id[1], NULL, NULL), 0);
	assert_text(U, "/f/x", "first x");
	ck_assert_int_eq(T.api->trash_restore(U, l.id[0], "/f/x2", NULL), 0);
	assert_text(U, "/f/x2", "second x");
	ck_assert_int_eq(T.api->unlink(U, "/f", 1), 0);
	ck_assert_int_eq(T.api->trash_empty(U, 0), 3);
	/* another session's deletes are their own burst */
	sd_session *u2 = tu_session(&T, "alice");
	put_s("/a", "a");
	put_s("/b", "b");
	now_ms += 60 * SEC;
	ck_assert_int_eq(T.api->unlink(U, "/a", 0), 0);
	now_ms += SEC;
	ck_assert_int_eq(T.api->unlink(u2, "/b", 0), 0);
	l = trash(U);
	ck_assert_int_eq(l.n, 2);
	ck_assert_int_eq(l.deleted[0], now_ms);
	ck_assert_int_eq(l.deleted[1], now_ms - SEC);
}
END_TEST

/* ---------------------------------------------------------------- rollback */

START_TEST(test_rollback)
{
	sd_session *other = tu_user(&T, "bob");
	tu_put(&T, other, "/bobs", "untouched", 9);
	ck_assert_int_eq(T.api->mkdir(U, "/w/docs", 0755, 1), 0);
	put_s("/w/keep.txt", "same");
	put_s("/w/edit.txt", "old text");
	put_s("/w/gone.txt", "deleted later");
	put_s("/w/docs/moved.txt", "moves away");
	put_s("/w/docs/renamed.txt", "gets a new name");
	put_s("/w/docs/outside.txt", "leaves /w");
	put_s("/elsewhere.txt", "outside the rollback");
	now_ms += SEC;
	int64_t t1 = now_ms - 1;

	/* changes over the following seconds */
	put_s("/w/edit.txt", "new text");
	now_ms += SEC;
	ck_assert_int_eq(T.api->unlink(U, "/w/gone.txt", 0), 0);
	put_s("/w/created.txt", "made after");
	ck_assert_int_eq(T.api->mkdir(U, "/w/newdir/deep", 0755, 1), 0);
	put_s("/w/newdir/deep/x", "x");
	now_ms += SEC;
	ck_assert_int_eq(T.api->rename(U, "/w/docs/moved.txt", "/w/moved-up.txt", 0), 0);
	ck_assert_int_eq(T.api->rename(U, "/w/docs/renamed.txt", "/w/docs/other-name.txt", 0), 0);
	ck_assert_int_eq(T.api->rename(U, "/w/docs/outside.txt", "/outside.txt", 0), 0);
	put_s("/elsewhere.txt", "changed too");
	now_ms += SEC;
	/* a swap: a -> tmp, b -> a, tmp -> b */
	int64_t used0 = tu_row(&T, U).used;
	int blobs = tu_blob_files(&T);
	char before[SD_PATH_MAX + 1];
	snprintf(before, sizeof before, "%s", at("/w", t1));

	sd_rollback_report rep;
	now_ms += SEC;
	ck_assert_int_eq(T.api->rollback(U, "/w", t1, &rep), 0);
	int64_t R = rep.ts;
	ck_assert_int_eq(R, now_ms);
	same_tree("/w", before);
	assert_text(U, "/w/edit.txt", "old text");
	assert_text(U, "/w/gone.txt", "deleted later");
	assert_text(U, "/w/docs/moved.txt", "moves away");
	assert_text(U, "/w/docs/outside.txt", "leaves /w");
	assert_text(U, "/outside.txt", "leaves /w"); /* outside /w: not touched */
	assert_text(U, "/elsewhere.txt", "changed too");
	assert_text(other, "/bobs", "untouched");
	ck_assert_int_eq(rep.restored, 1); /* edit.txt */
	ck_assert_int_eq(rep.revived, 1);  /* gone.txt */
	ck_assert_int_eq(rep.moved, 2);    /* moved.txt, renamed.txt */
	ck_assert_int_eq(rep.created, 1);  /* outside.txt's place */
	ck_assert_int_eq(rep.trashed, 4);  /* created.txt, newdir, deep, x */
	ck_assert_int_eq(tu_blob_files(&T), blobs); /* no blob copied */
	/* what was made after t1 is in the trash, restorable */
	tlist l = trash(U);
	ck_assert_int_eq(l.n, 2);
	int seen = 0;
	for (int i = 0; i < l.n; i++) {
		seen += strcmp(l.path[i], "/w/created.txt") == 0;
		seen += strcmp(l.path[i], "/w/newdir") == 0 && l.files[i] == 1;
	}
	ck_assert_int_eq(seen, 2);
	/* usage follows: + gone (13) + outside copy (9) + edit diff (0) - created (10) - x (1) */
	ck_assert_int_eq(tu_row(&T, U).used, used0 + 13 + 9 - 10 - 1);
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM journal WHERE op = 'rollback' AND "
				       "path = '/w'"), 1);

	/* the rollback of the rollback: back to just before it */
	char after_edits[SD_PATH_MAX + 1];
	snprintf(after_edits, sizeof after_edits, "%s", at("/w", R - 1));
	now_ms += SEC;
	ck_assert_int_eq(T.api->rollback(U, "/w", R - 1, &rep), 0);
	same_tree("/w", after_edits);
	assert_text(U, "/w/edit.txt", "new text");
	assert_text(U, "/w/created.txt", "made after");
	assert_text(U, "/w/newdir/deep/x", "x");
	assert_text(U, "/w/moved-up.txt", "moves away");
	assert_text(U, "/w/docs/other-name.txt", "gets a new name");
	sd_stat st;
	ck_assert_int_eq(T.api->stat(U, "/w/gone.txt", &st), -ENOENT);
	ck_assert_int_eq(T.api->stat(U, "/w/docs/outside.txt", &st), -ENOENT);
	ck_assert_int_eq(tu_row(&T, U).used, used0);
	ck_assert_int_eq(tu_blob_files(&T), blobs);
	/* and again forward: the first rollback's result */
	now_ms += SEC;
	ck_assert_int_eq(T.api->rollback(U, "/w", R, &rep), 0);
	same_tree("/w", before);

	/* the whole tree, and a file alone */
	now_ms += SEC;
	ck_assert_int_eq(T.api->rollback(U, "/", t1, &rep), 0);
	same_tree("/", at("/", t1));
	assert_text(U, "/elsewhere.txt", "outside the rollback");
	ck_assert_int_eq(T.api->stat(U, "/outside.txt", &st), -ENOENT);
	now_ms += SEC;
	put_s("/elsewhere.txt", "third");
	now_ms += SEC;
	ck_assert_int_eq(T.api->rollback(U, "/elsewhere.txt", t1, &rep), 0);
	ck_assert_int_eq(rep.restored, 1);
	assert_text(U, "/elsewhere.txt", "outside the rollback");
	/* a path that did not exist then and does not now */
	ck_assert_int_eq(T.api->rollback(U, "/never", t1, &rep), -ENOENT);
	/* a path made after t1 goes to the trash */
	put_s("/later/f", "f");
	now_ms += SEC;
	ck_assert_int_eq(T.api->rollback(U, "/later", t1, &rep), 0);
	ck_assert_int_eq(rep.trashed, 2);
	ck_assert_int_eq(T.api->stat(U, "/later", &st), -ENOENT);
	/* the invariants: one open stay per live node, none for deleted ones */
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM nodes n WHERE n.parent IS NOT NULL AND "
				       "(n.deleted_at IS NULL) != ((SELECT count(*) FROM placements p "
				       "WHERE p.node = n.id AND p.t_to IS NULL) = 1)"), 0);
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM nodes n JOIN placements p ON "
				       "p.node = n.id AND p.t_to IS NULL WHERE p.parent != n.parent "
				       "OR p.name != n.name"), 0);
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM nodes WHERE parent IS NULL AND id NOT IN "
				       "(SELECT root FROM users)"), 0);
	/* refs == versions naming each blob (I3) */
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM blobs b WHERE refs != (SELECT count(*) "
				       "FROM versions v WHERE v.blob = b.id)"), 0);
}
END_TEST

START_TEST(test_rollback_swap_and_quota)
{
	put_s("/s/a", "A");
	put_s("/s/b", "BB");
	now_ms += SEC;
	int64_t t1 = now_ms - 1;
	ck_assert_int_eq(T.api->rename(U, "/s/a", "/s/tmp", 0), 0);
	ck_assert_int_eq(T.api->rename(U, "/s/b", "/s/a", 0), 0);
	ck_assert_int_eq(T.api->rename(U, "/s/tmp", "/s/b", 0), 0);
	assert_text(U, "/s/a", "BB");
	now_ms += SEC;
	sd_rollback_report rep;
	ck_assert_int_eq(T.api->rollback(U, "/s", t1, &rep), 0);
	assert_text(U, "/s/a", "A");
	assert_text(U, "/s/b", "BB");
	ck_assert_int_eq(rep.moved, 2);
	ck_assert_int_eq(rep.restored, 0);

	/* over quota: nothing changes */
	put_s("/big", "0123456789");
	now_ms += SEC;
	int64_t t2 = now_ms - 1;
	ck_assert_int_eq(T.api->unlink(U, "/big", 0), 0);
	ck_assert_int_eq(T.api->user_set_quota(T.c, "alice", tu_row(&T, U).used + 5), 0);
	now_ms += SEC;
	ck_assert_int_eq(T.api->rollback(U, "/", t2, &rep), -EDQUOT);
	sd_stat st;
	ck_assert_int_eq(T.api->stat(U, "/big", &st), -ENOENT);
	ck_assert_int_eq(trash(U).n, 1);
	/* a read-only login may look, not roll back */
	ck_assert_int_eq(T.api->user_set_quota(T.c, "alice", 0), 0);
}
END_TEST

/* ---------------------------------------------------------------- cleaner */

START_TEST(test_cleaner_keeps_history)
{
	put_s("/f", "first content");
	now_ms += 20 * DAY;
	put_s("/f", "second content");
	int64_t t_second = now_ms;
	/* 25 days later the first version (replaced 5 days ago) stays: a view
	 * of day 10 needs it, though it was made 25 days ago */
	now_ms += 5 * DAY;
	sd_gc_report rep;
	ck_assert_int_eq(T.api->gc_run(T.c, 0, &rep), 0);
	ck_assert_int_eq(rep.versions_dropped, 0);
	ck_assert_int_eq(versions_of("/f").n, 2);
	/* force (gc --now) ignores age and high water, never a kept version */
	disk_pct = 99;
	ck_assert_int_eq(T.api->gc_run(T.c, 1, &rep), 0);
	ck_assert_int_eq(rep.blobs_removed, 0);
	assert_text(U, at("/f", t_second - 1), "first content");
	/* once replaced longer ago than version_retention (30d), it goes */
	now_ms += 26 * DAY;
	ck_assert_int_eq(T.api->gc_run(T.c, 0, &rep), 0);
	ck_assert_int_eq(rep.versions_dropped, 1);
	ck_assert_int_eq(T.api->gc_run(T.c, 1, &rep), 0);
	ck_assert_int_eq(rep.blobs_removed, 1);
	assert_text(U, "/f", "second content");
	/* history nothing can reach is pruned */
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM tree_changes WHERE ts < " "1800000000000 + 40 * 86400000"), 0);
}
END_TEST

/* ---------------------------------------------------------------- migration */

extern const char *const sd__migrations[];

START_TEST(test_before_migration)
{
	/* a data directory at schema 1, with rows as the old engine wrote them */
	tu_core_close(&T);
	tu_core_prepare(&T);
	char db[600];
	snprintf(db, sizeof db, "%s/storaged.db", T.dir);
	sqlite3 *h;
	ck_assert_int_eq(sqlite3_open(db, &h), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(h, sd__migrations[0], NULL, NULL, NULL), SQLITE_OK);
	const char *rows =
	    "PRAGMA user_version = 1;"
	    "INSERT INTO users(id, name, root, created) VALUES (1, 'old', 1, 1700000000000);"
	    "INSERT INTO nodes(id, owner, parent, name, kind, mode, mtime, ctime) VALUES "
	    " (1, 1, NULL, '', 2, 493, 1700000000, 1700000000),"
	    " (2, 1, 1, 'dir', 2, 493, 1700000100, 1700000100),"
	    " (4, 1, 1, '.trash', 2, 493, 1700000100, 1700000100);"
	    "INSERT INTO blobs(id, sha256, size, refs, created, last_access) VALUES "
	    " (1, 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 5, 1, 0, 0),"
	    " (2, 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', 6, 1, 0, 0);"
	    "INSERT INTO nodes(id, owner, parent, name, kind, blob, size, mode, mtime, ctime, deleted_at) "
	    " VALUES (3, 1, 2, 'f', 1, 2, 6, 420, 1700000300, 1700000200, NULL),"
	    " (5, 1, 2, 'g', 1, 1, 5, 420, 1700000250, 1700000250, 1700000400000);"
	    "INSERT INTO versions(node, blob, size, ts) VALUES (3, 1, 5, 1700000200123),"
	    " (3, 2, 6, 1700000300456), (5, 1, 5, 1700000250000);";
	ck_assert_int_eq(sqlite3_exec(h, rows, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
	T.conf.deleted_retention = 3650 * DAY;
	T.conf.version_retention = 0;
	tu_core_reopen(&T, 0);
	now_ms = 1700000500000;
	sd__core_set_clock(T.c, clk, NULL);
	U = tu_session(&T, "old");
	/* the old root entry named like a virtual folder is kept, renamed */
	ck_assert_str_eq(ls(U, "/"), ".trash.4/,dir/");
	/* the past of old rows: where they are now, since they were made */
	ck_assert_str_eq(ls(U, at("/dir", 1700000200123)), "f");
	ck_assert_str_eq(ls(U, at("/dir", 1700000299999)), "f,g");
	ck_assert_str_eq(ls(U, at("/dir", 1700000400000)), "f");
	sd_stat st;
	ck_assert_int_eq(T.api->stat(U, at("/dir/f", 1700000250000), &st), 0);
	ck_assert_int_eq(st.size, 5);
	ck_assert_int_eq(T.api->stat(U, at("/dir/f", 1700000300456), &st), 0);
	ck_assert_int_eq(st.size, 6);
	ck_assert_int_eq(st.mtime, 1700000300);
	vlist l = versions_of("/dir/f");
	ck_assert_int_eq(l.n, 2);
	ck_assert_str_eq(l.v[0].user, "");
	ck_assert_str_eq(l.v[0].op, "");
	/* the old deleted file is a trash item with its path */
	tlist t = trash(U);
	ck_assert_int_eq(t.n, 1);
	ck_assert_str_eq(t.path[0], "/dir/g");
	ck_assert_str_eq(ls(U, "/.snapshots"), "2023-11-14/");
}
END_TEST

/* An anonymous session (FTP anonymous_user) sees the account's live files
 * only: none of its history. */
START_TEST(test_anonymous_sees_no_history)
{
	put_s("/public.txt", "v1");
	now_ms += SEC;
	put_s("/public.txt", "v2");
	put_s("/secret.txt", "deleted");
	now_ms += SEC;
	ck_assert_int_eq(T.api->unlink(U, "/secret.txt", 0), 0);
	char snap[SD_PATH_MAX + 1], item[SD_PATH_MAX + 1];
	snprintf(snap, sizeof snap, "%s", at("/", now_ms - 1));
	snprintf(item, sizeof item, "/.trash/%s", ls(U, "/.trash"));
	sd_session *a = NULL;
	ck_assert_int_eq(T.api->auth_anonymous(T.c, "alice", "192.0.2.1", "ftp", &a), 0);
	tu_keep(&T, a);
	assert_text(a, "/public.txt", "v2");
	sd_stat st;
	sd_reader *rd;
	sd_handle h;
	int more;
	char p[SD_PATH_MAX + 16];
	snprintf(p, sizeof p, "%.4000s/secret.txt", snap);
	const char *paths[] = {"/.snapshots", "/.trash", snap, item, p, NULL};
	for (int i = 0; paths[i]; i++) {
		ck_assert_msg(T.api->stat(a, paths[i], &st) == -ENOENT, "stat %s", paths[i]);
		ck_assert_int_eq(T.api->readdir(a, paths[i], NULL, 0, NULL, NULL, &more), -ENOENT);
		ck_assert_int_eq(T.api->chdir(a, paths[i]), -ENOENT);
	}
	ck_assert_int_eq(T.api->open_read(a, p, &rd, &st), -ENOENT);
	ck_assert_int_eq(T.api->handle_open(a, p, SD_O_READ, 0, &h, &st), -ENOENT);
	ck_assert_int_eq(T.api->open_read(a, item, &rd, &st), -ENOENT);
	ck_assert_int_eq(T.api->versions(a, "/public.txt", vcb, NULL), -ENOENT);
	ck_assert_int_eq(T.api->at_path(a, "/", now_ms, p, sizeof p), -ENOENT);
	ck_assert_int_eq(T.api->trash_list(a, tcb, NULL), 0);
	ck_assert_int_eq(T.api->trash_empty(a, 0), -EROFS);
	ck_assert_int_eq(trash(U).n, 1); /* the owner still has it all */
	assert_text(U, item, "deleted");
}
END_TEST

/* ---------------------------------------------------------------- replication */

/* A user's tree, its trash and one file's versions as text, for comparing
 * a source and its copy (node ids differ; nothing else may). */
typedef struct dumpx {
	const sd_core_api *api;
	sd_session *s;
	sd_buf out;
} dumpx;

static void dump_tree(dumpx *x, const char *dir);

static int dump_cb(void *arg, const sd_dirent *e)
{
	dumpx *x = arg;
	sd_buf_printf(&x->out, "%s/%s kind=%d size=%llu sha=%s mode=%o mtime=%lld\n", "", e->name,
		      e->st.kind, (unsigned long long)e->st.size, e->st.sha256, e->st.mode,
		      (long long)e->st.mtime);
	return 0;
}

static void dump_tree(dumpx *x, const char *dir)
{
	ls_ctx *l = calloc(1, sizeof *l);
	int more;
	ck_assert_int_ge(x->api->readdir(x->s, dir, NULL, 0, lscb, l, &more), 0);
	sd_buf_printf(&x->out, "[%s]\n", dir);
	ck_assert_int_ge(x->api->readdir(x->s, dir, NULL, 0, dump_cb, x, &more), 0);
	char *names = strdup(l->out), *save = NULL;
	for (char *n = strtok_r(names, ",", &save); n; n = strtok_r(NULL, ",", &save)) {
		size_t k = strlen(n);
		if (k && n[k - 1] == '/') {
			n[k - 1] = '\0';
			char sub[SD_PATH_MAX + 1];
			snprintf(sub, sizeof sub, "%s/%s", strcmp(dir, "/") ? dir : "", n);
			dump_tree(x, sub);
		}
	}
	free(names);
	free(l);
}

static int dump_trash(void *arg, const sd_trash_item *t)
{
	dumpx *x = arg;
	sd_buf_printf(&x->out, "trash %s kind=%d deleted=%lld size=%llu files=%lld\n", t->path,
		      t->kind, (long long)t->deleted, (unsigned long long)t->size, (long long)t->files);
	return 0;
}

static int dump_version(void *arg, const sd_version *v)
{
	dumpx *x = arg;
	sd_buf_printf(&x->out, "version ts=%lld size=%llu sha=%s op=%s user=%s\n", (long long)v->ts,
		      (unsigned long long)v->size, v->sha256, v->op, v->user);
	return 0;
}

static char *history_of(tu_core *t, const char *past)
{
	dumpx x = {t->api, NULL, SD_BUF_INIT};
	ck_assert_int_eq(sd_core_session(t->c, "alice", &x.s), 0);
	dump_tree(&x, "/");
	dump_tree(&x, past);
	ck_assert_int_ge(t->api->trash_list(x.s, dump_trash, &x), 0);
	ck_assert_int_ge(t->api->versions(x.s, "/w/doc.txt", dump_version, &x), 0);
	t->api->session_close(x.s);
	sd_user row;
	ck_assert_int_eq(t->api->user_get(t->c, "alice", &row), 0);
	sd_buf_printf(&x.out, "used=%lld\n", (long long)row.used);
	return sd_buf_steal(&x.out);
}

/* Every history call replays on a copy (storagectl replicate): restores,
 * a burst of deletes, a restore out of /.trash, a purge, a rollback and
 * its undo. The copy then has the same tree, trash, versions and past. */
START_TEST(test_replicate_history)
{
	ck_assert_int_eq(T.api->mkdir(U, "/w/sub", 0755, 1), 0);
	put_s("/w/doc.txt", "one");
	put_s("/w/sub/a", "a");
	put_s("/w/sub/b", "b");
	put_s("/w/gone", "gone");
	now_ms += SEC;
	int64_t t1 = now_ms - 1;
	put_s("/w/doc.txt", "two");
	now_ms += SEC;
	vlist v = versions_of("/w/doc.txt");
	ck_assert_int_eq(T.api->version_restore(U, "/w/doc.txt", v.v[1].id, NULL), 0);
	now_ms += 30 * SEC; /* a folder deleted file by file */
	ck_assert_int_eq(T.api->unlink(U, "/w/sub/a", 0), 0);
	now_ms += SEC;
	ck_assert_int_eq(T.api->unlink(U, "/w/sub/b", 0), 0);
	now_ms += SEC;
	ck_assert_int_eq(T.api->rmdir(U, "/w/sub"), 0);
	now_ms += 30 * SEC;
	ck_assert_int_eq(T.api->unlink(U, "/w/gone", 0), 0);
	tlist l = trash(U);
	ck_assert_int_eq(l.n, 2);
	/* a copy made now has the same trash (the burst's stamp went along) */
	tu_core d;
	tu_core_prepare(&d);
	tu_core_reopen(&d, 0);
	sd_replicate_report rr;
	char err[512] = "";
	int r = sd_core_replicate(T.c, d.c, 0, &rr, NULL, NULL, err, sizeof err);
	ck_assert_msg(r == 0, "replicate: %s (%s)", T.api->strerror(r), err);
	char past[SD_PATH_MAX + 1];
	snprintf(past, sizeof past, "%s", at("/w", t1));
	char *a = history_of(&T, past), *b = history_of(&d, past);
	ck_assert_msg(strcmp(a, b) == 0, "source:\n%s\ncopy:\n%s", a, b);
	ck_assert_msg(strstr(a, "trash /w/sub kind=2") && strstr(a, "files=2"), "%s", a);
	free(a);
	free(b);
	char p[600];
	snprintf(p, sizeof p, "/.trash/%s", l.name[1]); /* the folder */
	now_ms += SEC;
	ck_assert_int_eq(T.api->rename(U, p, "/w/sub-back", 0), 0);
	now_ms += SEC;
	ck_assert_int_eq(T.api->trash_empty(U, l.id[0]), 1);
	now_ms += SEC;
	put_s("/w/new", "new");
	put_s("/w/sub-back/c", "c");
	now_ms += SEC;
	sd_rollback_report rep;
	ck_assert_int_eq(T.api->rollback(U, "/w", t1, &rep), 0);
	int64_t R = rep.ts;
	now_ms += SEC;
	ck_assert_int_eq(T.api->rollback(U, "/", R - 1, &rep), 0);
	now_ms += SEC;
	put_s("/w/x", "x");
	ck_assert_int_eq(T.api->unlink(U, "/w/x", 0), 0);
	now_ms += SEC;
	put_s("/w/y", "y");
	ck_assert_int_eq(T.api->unlink(U, "/w/y", 0), 0);
	ck_assert_int_eq(trash(U).n, 2); /* one burst, two items: their folder is live */
	ck_assert_int_eq(T.api->trash_empty(U, 0), 2);

	r = sd_core_replicate(T.c, d.c, 0, &rr, NULL, NULL, err, sizeof err);
	ck_assert_msg(r == 0, "replicate: %s (%s)", T.api->strerror(r), err);
	a = history_of(&T, past);
	b = history_of(&d, past);
	ck_assert_msg(strcmp(a, b) == 0, "source:\n%s\ncopy:\n%s", a, b);
	free(a);
	free(b);
	/* replicating again changes nothing */
	ck_assert_int_eq(sd_core_replicate(T.c, d.c, 0, &rr, NULL, NULL, err, sizeof err), 0);
	ck_assert_int_eq(rr.rows, 0);
	sd_fsck_report fr;
	ck_assert_int_eq(sd_core_fsck(d.c, 0, &fr, NULL, NULL), 0);
	ck_assert_int_eq(fr.bad_hash + fr.missing + fr.orphans + fr.bad_refs + fr.bad_used, 0);
	tu_core_close(&d);
}
END_TEST

static Suite *history_suite(void)
{
	Suite *s = suite_create("history");
	TCase *tc = tcase_create("versions_views");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_versions_restore);
	tcase_add_test(tc, test_views_across_renames);
	tcase_add_test(tc, test_snapshot_folders);
	tcase_add_test(tc, test_virtual_writes_refused);
	tcase_add_test(tc, test_show_history_folders);
	tcase_add_test(tc, test_anonymous_sees_no_history);
	suite_add_tcase(s, tc);

	tc = tcase_create("trash_rollback");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_trash);
	tcase_add_test(tc, test_trash_burst);
	tcase_add_test(tc, test_rollback);
	tcase_add_test(tc, test_rollback_swap_and_quota);
	tcase_add_test(tc, test_cleaner_keeps_history);
	tcase_add_test(tc, test_before_migration);
	tcase_add_test(tc, test_replicate_history);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(history_suite());
}
