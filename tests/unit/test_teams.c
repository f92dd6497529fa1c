/*
 * test_teams.c - core/team.c and core/link.c through the sd_core_api table:
 * groups and members, shared folders mounted in members' views, rights
 * (read-only, drop box, inheritance and override, rules that hide), the
 * rights of every kind of call (tree, uploads, instant upload, readers,
 * handles, history and the virtual folders), who made and changed a node,
 * a member removed on a session already open, a shared folder's own quota
 * (charged in the commit's transaction, also with members writing at
 * once), moves between a shared folder and a private one by reference,
 * trash and versions shared, share links (expiry, password, download
 * limit, upload only, revocation, wrong tokens limited), replication of
 * all of it, dedup across users and groups, and fsck after it all.
 */
#include <pthread.h>
#include <stdint.h>

#include "testutil.h"
#include "core/internal.h"

static tu_core T;
static sd_session *A, *B, *C; /* alice, bob (group eng), carol (outside) */
static int64_t now_ms;

static int64_t clk(void *a)
{
	(void)a;
	return now_ms;
}

#define T0 1800000000000LL
#define SEC 1000LL

static void setup(void)
{
	tu_core_open(&T, 0);
	now_ms = T0;
	sd__core_set_clock(T.c, clk, NULL);
	A = tu_user(&T, "alice");
	B = tu_user(&T, "bob");
	C = tu_user(&T, "carol");
	ck_assert_int_eq(T.api->group_add(T.c, "eng"), 0);
	ck_assert_int_eq(T.api->group_member_add(T.c, "eng", "alice"), 0);
	ck_assert_int_eq(T.api->group_member_add(T.c, "eng", "bob"), 0);
	ck_assert_int_eq(T.api->share_create(T.c, "team", 0, NULL), 0);
	ck_assert_int_eq(T.api->share_grant(T.c, "team", "/", NULL, "eng",
					    SD_RIGHT_LIST | SD_RIGHT_READ | SD_RIGHT_WRITE |
						SD_RIGHT_DELETE | SD_RIGHT_RENAME | SD_RIGHT_SHARE),
			 0);
}

static void teardown(void)
{
	tu_core_close(&T);
}

static void put_s(sd_session *u, const char *path, const char *text)
{
	tu_put(&T, u, path, text, strlen(text));
}

static int put_r(sd_session *u, const char *path, const char *text)
{
	return tu_put_r(&T, u, path, text, strlen(text), NULL, NULL);
}

static void assert_text(sd_session *u, const char *path, const char *want)
{
	size_t n;
	char *got = tu_get(&T, u, path, &n);
	got[n] = '\0';
	ck_assert_msg(strcmp(got, want) == 0, "%s: want '%s', got '%s'", path, want, got);
	free(got);
}

typedef struct names {
	char s[4096];
	int n;
} names;

static int names_cb(void *arg, const sd_dirent *e)
{
	names *l = arg;
	size_t o = strlen(l->s);
	snprintf(l->s + o, sizeof l->s - o, "%s%s", l->n++ ? " " : "", e->name);
	return 0;
}

/* The names of a listing, space-separated, or the error as "E<errno>". */
static const char *ls(sd_session *u, const char *path)
{
	static names l;
	memset(&l, 0, sizeof l);
	int r = T.api->readdir(u, path, NULL, 0, names_cb, &l, NULL);
	if (r < 0)
		snprintf(l.s, sizeof l.s, "E%d", -r);
	return l.s;
}

static sd_user row_of(const char *name)
{
	sd_user u;
	ck_assert_int_eq(T.api->user_get(T.c, name, &u), 0);
	return u;
}

static int64_t share_used(const char *name)
{
	return tu_sql_int(&T, "SELECT u.used_bytes FROM users u JOIN shares s ON s.account = u.id "
			      "WHERE s.name = 'team'") +
	       0 * (long long)strlen(name);
}

/* ------------------------------------------------------------ the model */

START_TEST(test_groups_admin)
{
	ck_assert_int_eq(T.api->group_add(T.c, "eng"), -EEXIST);
	ck_assert_int_eq(T.api->group_add(T.c, "bad/name"), -EINVAL);
	ck_assert_int_eq(T.api->group_member_add(T.c, "eng", "alice"), -EEXIST);
	ck_assert_int_eq(T.api->group_member_add(T.c, "eng", "nobody"), -ENOENT);
	ck_assert_int_eq(T.api->group_member_add(T.c, "nogroup", "alice"), -ENOENT);
	ck_assert_int_eq(T.api->group_member_remove(T.c, "eng", "carol"), -ENOENT);
	/* a shared folder's account is nobody's name */
	ck_assert_int_eq(T.api->group_member_add(T.c, "eng", "~share:team"), -ENOENT);
	ck_assert_int_eq(T.api->user_get(T.c, "~share:team", &(sd_user){0}), -ENOENT);
	ck_assert_int_eq(T.api->share_create(T.c, "team", 0, NULL), -EEXIST);
	ck_assert_int_eq(T.api->share_grant(T.c, "team", "/", "alice", "eng", 1), -EINVAL);
	ck_assert_int_eq(T.api->share_grant(T.c, "nope", "/", "alice", NULL, 1), -ENOENT);
	ck_assert_int_eq(T.api->share_revoke(T.c, "team", "/", "alice", NULL), -ENOENT);
	/* users are listed without the folder's account */
	int users = 0;
	sd_stats st;
	ck_assert_int_eq(T.api->stats(T.c, &st), 0);
	users = (int)st.users;
	ck_assert_int_eq(users, 3);
	ck_assert_int_eq(T.api->group_add(T.c, "ops"), 0);
	ck_assert_int_eq(T.api->group_delete(T.c, "ops"), 0);
	ck_assert_int_eq(T.api->group_delete(T.c, "ops"), -ENOENT);
	/* every change is journaled */
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM journal WHERE op IN "
				       "('group_add','member_add','share_create','share_grant','group_del')"),
			 7);
}
END_TEST

START_TEST(test_mount_and_members)
{
	/* alice and bob see /team; carol does not, whatever she tries */
	ck_assert_str_eq(ls(A, "/"), "team");
	ck_assert_str_eq(ls(C, "/"), "");
	sd_stat st;
	ck_assert_int_eq(T.api->stat(C, "/team", &st), -ENOENT);
	ck_assert_int_eq(T.api->chdir(C, "/team"), -ENOENT);
	put_s(A, "/team/a.txt", "from alice");
	ck_assert_int_eq(T.api->stat(C, "/team/a.txt", &st), -ENOENT);
	ck_assert_int_eq(T.api->stat(C, "/../team/a.txt", &st), -ENOENT);
	sd_reader *rd;
	ck_assert_int_eq(T.api->open_read(C, "/team/a.txt", &rd, &st), -ENOENT);
	/* carol's own /team is hers, and separate */
	put_s(C, "/team/a.txt", "carol's own");
	assert_text(C, "/team/a.txt", "carol's own");
	assert_text(A, "/team/a.txt", "from alice");
	/* bob reads alice's file, overwrites it: a new version both see */
	assert_text(B, "/team/a.txt", "from alice");
	put_s(B, "/team/a.txt", "bob was here");
	ck_assert_int_eq(T.api->stat(A, "/team/a.txt", &st), 0);
	ck_assert_int_eq(st.versions, 2);
	ck_assert_str_eq(st.created_by, "alice");
	ck_assert_str_eq(st.changed_by, "bob");
	assert_text(A, "/team/a.txt", "bob was here");
	/* the journal names the user, with the path as they see it */
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM journal WHERE op='write' AND "
				       "user='bob' AND path='/team/a.txt'"),
			 1);
	/* the mount itself stays */
	ck_assert_int_eq(T.api->rmdir(A, "/team"), -EACCES);
	ck_assert_int_eq(T.api->unlink(A, "/team", 1), -EACCES);
	ck_assert_int_eq(T.api->rename(A, "/team", "/t2", 0), -EBUSY);
	ck_assert_int_eq(T.api->mkdir(A, "/team", 0755, 0), -EEXIST);
	/* a member removed loses it on the next call of an open session */
	ck_assert_int_eq(T.api->chdir(B, "/team"), 0);
	ck_assert_int_eq(T.api->group_member_remove(T.c, "eng", "bob"), 0);
	ck_assert_int_eq(T.api->stat(B, "a.txt", &st), -ENOENT);
	ck_assert_str_eq(ls(B, "/"), "");
	ck_assert_int_eq(put_r(B, "/team/b.txt", "x"), 0); /* his own tree now */
	ck_assert_int_eq(T.api->stat(A, "/team/b.txt", &st), -ENOENT);
}
END_TEST

START_TEST(test_rights)
{
	put_s(A, "/team/docs/spec.txt", "spec");
	put_s(A, "/team/secret/plan.txt", "plan");
	put_s(A, "/team/x.txt", "x");
	/* carol: read-only on the whole folder */
	ck_assert_int_eq(T.api->share_grant(T.c, "team", "/", "carol", NULL,
					    SD_RIGHT_LIST | SD_RIGHT_READ),
			 0);
	ck_assert_str_eq(ls(C, "/team"), "docs secret x.txt");
	assert_text(C, "/team/x.txt", "x");
	sd_stat st;
	ck_assert_int_eq(T.api->stat(C, "/team/x.txt", &st), 0);
	ck_assert_int_eq(st.mode & 0222, 0); /* shown without write bits */
	ck_assert_int_eq(put_r(C, "/team/x.txt", "no"), -EACCES);
	ck_assert_int_eq(put_r(C, "/team/new.txt", "no"), -EACCES);
	ck_assert_int_eq(T.api->unlink(C, "/team/x.txt", 0), -EACCES);
	ck_assert_int_eq(T.api->rename(C, "/team/x.txt", "/team/y.txt", 0), -EACCES);
	ck_assert_int_eq(T.api->rename(C, "/team/x.txt", "/mine.txt", 0), -EACCES);
	ck_assert_int_eq(T.api->mkdir(C, "/team/d", 0755, 0), -EACCES);
	ck_assert_int_eq(T.api->chmod(C, "/team/x.txt", 0600), -EACCES);
	ck_assert_int_eq(T.api->copy(C, "/team/x.txt", "/team/x2.txt"), -EACCES);
	ck_assert_int_eq(T.api->copy(C, "/team/x.txt", "/x-copy.txt"), 0); /* into her tree */
	sd_handle h;
	ck_assert_int_eq(T.api->handle_open(C, "/team/x.txt", SD_O_WRITE, 0, &h, NULL), -EACCES);
	ck_assert_int_eq(T.api->handle_open(C, "/team/n.txt", SD_O_WRITE | SD_O_CREAT, 0644, &h, NULL),
			 -EACCES);
	ck_assert_int_eq(T.api->handle_open(C, "/team/x.txt", SD_O_READ, 0, &h, NULL), 0);
	ck_assert_int_eq(T.api->handle_close(C, h), 0);
	sd_challenge ch;
	char sha[65];
	tu_sha_hex("x", 1, sha);
	ck_assert_int_eq(T.api->instant_begin(C, "/team/inst.txt", 0, sha, 1, &ch, &st), -EACCES);
	unsigned rights = 0;
	ck_assert_int_eq(T.api->access(C, "/team/x.txt", &rights), 0);
	ck_assert_uint_eq(rights, SD_RIGHT_LIST | SD_RIGHT_READ);
	ck_assert_int_eq(T.api->access(A, "/mine-anything", &rights), 0);
	ck_assert_uint_eq(rights, SD_RIGHTS_ALL);

	/* inheritance and override: eng read-only in /docs, nothing in /secret */
	ck_assert_int_eq(T.api->share_grant(T.c, "team", "/docs", NULL, "eng",
					    SD_RIGHT_LIST | SD_RIGHT_READ),
			 0);
	ck_assert_int_eq(T.api->share_grant(T.c, "team", "/secret", NULL, "eng", 0), 0);
	ck_assert_int_eq(put_r(B, "/team/docs/spec.txt", "changed"), -EACCES);
	ck_assert_int_eq(put_r(B, "/team/docs/sub/new.txt", "new"), -EACCES);
	assert_text(B, "/team/docs/spec.txt", "spec");
	ck_assert_int_eq(put_r(B, "/team/other.txt", "fine"), 0);
	ck_assert_str_eq(ls(B, "/team"), "docs other.txt x.txt"); /* secret is hidden */
	ck_assert_int_eq(T.api->stat(B, "/team/secret", &st), -ENOENT);
	ck_assert_int_eq(T.api->stat(B, "/team/secret/plan.txt", &st), -ENOENT);
	ck_assert_str_eq(ls(B, "/team/secret"), "E2");
	/* a user's own rule wins over their groups' rules at the same node */
	ck_assert_int_eq(T.api->share_grant(T.c, "team", "/secret", "alice", NULL,
					    SD_RIGHT_LIST | SD_RIGHT_READ | SD_RIGHT_WRITE |
						SD_RIGHT_DELETE),
			 0);
	assert_text(A, "/team/secret/plan.txt", "plan");
	/* deleting a folder needs delete on every rule node below it */
	ck_assert_int_eq(T.api->unlink(B, "/team/x.txt", 0), 0);
	put_s(A, "/team/outer/keep/k.txt", "k");
	ck_assert_int_eq(T.api->share_grant(T.c, "team", "/outer/keep", NULL, "eng",
					    SD_RIGHT_LIST | SD_RIGHT_READ),
			 0);
	ck_assert_int_eq(T.api->unlink(B, "/team/outer", 1), -EACCES);
	assert_text(B, "/team/outer/keep/k.txt", "k");
	/* a folder with rules never leaves its shared folder */
	ck_assert_int_eq(T.api->rename(A, "/team/outer", "/outer", 0), -EACCES);
	/* revoking brings the inherited rights back */
	ck_assert_int_eq(T.api->share_revoke(T.c, "team", "/docs", NULL, "eng"), 0);
	ck_assert_int_eq(put_r(B, "/team/docs/spec.txt", "changed"), 0);
}
END_TEST

START_TEST(test_dropbox)
{
	put_s(A, "/team/inbox/old.txt", "someone else's");
	ck_assert_int_eq(T.api->share_grant(T.c, "team", "/inbox", "carol", NULL, SD_RIGHT_WRITE), 0);
	/* carol sees the folder she may drop into, and nothing else */
	ck_assert_str_eq(ls(C, "/"), "team");
	ck_assert_str_eq(ls(C, "/team"), "E13");
	sd_stat st;
	ck_assert_int_eq(T.api->stat(C, "/team/inbox", &st), 0);
	ck_assert_int_eq(T.api->chdir(C, "/team/inbox"), 0);
	ck_assert_str_eq(ls(C, "/team/inbox"), "E13");
	ck_assert_int_eq(put_r(C, "report.pdf", "carol's report"), 0);
	ck_assert_int_eq(T.api->stat(C, "report.pdf", &st), -ENOENT);
	sd_reader *rd;
	ck_assert_int_eq(T.api->open_read(C, "old.txt", &rd, &st), -ENOENT);
	ck_assert_int_eq(T.api->open_read(C, "report.pdf", &rd, &st), -ENOENT);
	sd_handle h;
	ck_assert_int_eq(T.api->handle_open(C, "old.txt", SD_O_READ | SD_O_WRITE, 0, &h, NULL),
			 -ENOENT);
	/* writing a handle whose old content it could read back: refused */
	ck_assert_int_eq(T.api->handle_open(C, "old.txt", SD_O_WRITE, 0, &h, NULL), -EACCES);
	ck_assert_int_eq(T.api->unlink(C, "old.txt", 0), -ENOENT);
	ck_assert_int_eq(T.api->rename(C, "report.pdf", "r.pdf", 0), -ENOENT);
	/* alice sees what carol dropped */
	assert_text(A, "/team/inbox/report.pdf", "carol's report");
	ck_assert_int_eq(T.api->stat(A, "/team/inbox/report.pdf", &st), 0);
	ck_assert_str_eq(st.created_by, "carol");
}
END_TEST

/* ------------------------------------------------------------ quota */

typedef struct pctx {
	sd_session *u;
	const char *path;
	int ok, quota;
} pctx;

static void *put_many(void *arg)
{
	pctx *p = arg;
	char data[1000];
	memset(data, 'q', sizeof data);
	for (int i = 0; i < 20; i++) {
		char path[64];
		snprintf(path, sizeof path, "%s-%d", p->path, i);
		data[0] = (char)('a' + i); /* distinct contents */
		int r = tu_put_r(&T, p->u, path, data, sizeof data, NULL, NULL);
		if (r == 0)
			p->ok++;
		else if (r == -EDQUOT)
			p->quota++;
	}
	return NULL;
}

START_TEST(test_quota)
{
	ck_assert_int_eq(T.api->share_set_quota(T.c, "team", 25000), 0);
	/* the folder's own quota, charged in the commit's transaction: two
	 * members writing at once never get past it together */
	pctx pa = {A, "/team/a", 0, 0}, pb = {B, "/team/b", 0, 0};
	pthread_t ta, tb;
	pthread_create(&ta, NULL, put_many, &pa);
	pthread_create(&tb, NULL, put_many, &pb);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	ck_assert_int_eq(pa.ok + pb.ok, 25);
	ck_assert_int_eq(pa.quota + pb.quota, 15);
	ck_assert_int_eq(share_used("team"), 25000);
	/* the members pay nothing */
	ck_assert_int_eq(row_of("alice").used, 0);
	ck_assert_int_eq(row_of("bob").used, 0);
	/* a move to a private tree carries the bytes, by reference */
	int blobs = tu_blob_files(&T);
	ck_assert_int_eq(T.api->rename(A, "/team/a-0", "/mine", 0), 0);
	ck_assert_int_eq(share_used("team"), 24000);
	ck_assert_int_eq(row_of("alice").used, 1000);
	ck_assert_int_eq(tu_blob_files(&T), blobs);
	/* and into a shared folder that is full: refused, nothing moves */
	put_s(A, "/big", "0123456789012345678901234567890123456789");
	ck_assert_int_eq(T.api->rename(A, "/mine", "/team/back", 0), 0);
	ck_assert_int_eq(T.api->rename(A, "/big", "/team/big", 0), -EDQUOT);
	sd_stat st;
	ck_assert_int_eq(T.api->stat(A, "/big", &st), 0);
	ck_assert_int_eq(share_used("team"), 25000);
	sd_fsck_report fr;
	ck_assert_int_eq(sd_core_fsck(T.c, 0, &fr, NULL, NULL), 0);
	ck_assert_int_eq(fr.bad_used + fr.bad_refs + fr.missing + fr.bad_hash, 0);
}
END_TEST

/* ------------------------------------------------------------ moves, dedup */

START_TEST(test_moves_and_dedup)
{
	put_s(A, "/own/dir/f.txt", "same content");
	put_s(B, "/team/f.txt", "same content");
	put_s(C, "/c.txt", "same content");
	ck_assert_int_eq(tu_blob_files(&T), 1); /* one blob across users and groups */
	/* a folder moved into the shared folder and back, by reference */
	ck_assert_int_eq(T.api->rename(A, "/own/dir", "/team/dir", 0), 0);
	assert_text(B, "/team/dir/f.txt", "same content");
	sd_stat st;
	ck_assert_int_eq(T.api->stat(A, "/own/dir", &st), -ENOENT);
	ck_assert_int_eq(row_of("alice").used, 0);
	ck_assert_int_eq(T.api->rename(B, "/team/dir", "/bobs", 0), 0);
	assert_text(B, "/bobs/f.txt", "same content");
	ck_assert_int_eq(row_of("bob").used, 12);
	ck_assert_int_eq(tu_blob_files(&T), 1);
	/* alice cannot see bob's tree */
	ck_assert_int_eq(T.api->stat(A, "/bobs", &st), -ENOENT);
	sd_fsck_report fr;
	ck_assert_int_eq(sd_core_fsck(T.c, 0, &fr, NULL, NULL), 0);
	ck_assert_int_eq(fr.bad_used + fr.bad_refs + fr.missing + fr.bad_hash, 0);
}
END_TEST

/* ------------------------------------------------------------ history */

typedef struct tl {
	int n;
	int64_t id[16];
	char path[16][256];
} tl;

static int trash_cb(void *arg, const sd_trash_item *t)
{
	tl *l = arg;
	if (l->n < 16) {
		l->id[l->n] = t->id;
		snprintf(l->path[l->n], sizeof l->path[0], "%s", t->path);
		l->n++;
	}
	return 0;
}

static tl trash(sd_session *u)
{
	tl l;
	memset(&l, 0, sizeof l);
	ck_assert_int_ge(T.api->trash_list(u, trash_cb, &l), 0);
	return l;
}

START_TEST(test_history_shared)
{
	put_s(A, "/team/v.txt", "one");
	now_ms += SEC;
	int64_t t1 = now_ms;
	now_ms += SEC;
	put_s(B, "/team/v.txt", "two");
	put_s(A, "/team/secret/s.txt", "hidden");
	now_ms += SEC;
	int64_t t2 = now_ms;
	now_ms += SEC;
	/* versions are the folder's: both see both, with who made them */
	int n = T.api->versions(B, "/team/v.txt", NULL, NULL);
	ck_assert_int_eq(n, 2);
	/* the trash is shared: what alice deletes, bob finds and restores */
	ck_assert_int_eq(T.api->unlink(A, "/team/v.txt", 0), 0);
	tl l = trash(B);
	ck_assert_int_eq(l.n, 1);
	ck_assert_str_eq(l.path[0], "/team/v.txt");
	ck_assert_int_eq(trash(C).n, 0);
	now_ms += SEC;
	ck_assert_int_eq(T.api->trash_restore(B, l.id[0], NULL, NULL), 0);
	assert_text(A, "/team/v.txt", "two");
	/* a past view shows the folder as it was, through the mount */
	char p[SD_PATH_MAX + 1];
	ck_assert_int_eq(T.api->at_path(A, "/team/v.txt", t1, p, sizeof p), 0);
	assert_text(A, p, "one");
	/* and hides what the rules hide now (from eng, not from alice) */
	ck_assert_int_eq(T.api->share_grant(T.c, "team", "/secret", NULL, "eng", 0), 0);
	ck_assert_int_eq(T.api->share_grant(T.c, "team", "/secret", "alice", NULL, SD_RIGHTS_ALL), 0);
	ck_assert_int_eq(T.api->at_path(B, "/team/secret/s.txt", t2, p, sizeof p), 0);
	sd_stat st;
	ck_assert_int_eq(T.api->stat(B, p, &st), -ENOENT);
	ck_assert_int_eq(T.api->at_path(B, "/team", t2, p, sizeof p), 0);
	ck_assert_str_eq(ls(B, p), "v.txt");
	ck_assert_int_eq(T.api->at_path(C, "/team/v.txt", t1, p, sizeof p), 0);
	ck_assert_int_eq(T.api->stat(C, p, &st), -ENOENT); /* carol never saw it */
	/* a rollback may not undo what the user may not change */
	sd_rollback_report rep;
	ck_assert_int_eq(T.api->rollback(B, "/team", t1, &rep), -EACCES);
	ck_assert_int_eq(T.api->rollback(B, "/team/v.txt", t1, &rep), 0);
	assert_text(A, "/team/v.txt", "one");
	assert_text(A, "/team/secret/s.txt", "hidden");
	/* a deleted secret is in the trash of those who may see it only */
	ck_assert_int_eq(T.api->unlink(A, "/team/secret", 1), 0);
	ck_assert_int_eq(trash(B).n, 0);
	ck_assert_int_ge(trash(A).n, 1);
}
END_TEST

START_TEST(test_handle_rights_change)
{
	put_s(A, "/team/h.txt", "handle content");
	sd_handle h;
	ck_assert_int_eq(T.api->handle_open(B, "/team/h.txt", SD_O_READ, 0, &h, NULL), 0);
	char buf[16];
	ck_assert_int_eq(T.api->handle_pread(B, h, buf, 6, 0), 6);
	ck_assert_int_eq(T.api->group_member_remove(T.c, "eng", "bob"), 0);
	ck_assert_int_eq(T.api->handle_pread(B, h, buf, 6, 0), -EACCES);
	ck_assert_int_eq(T.api->handle_close(B, h), 0);
}
END_TEST

/* ------------------------------------------------------------ links */

static sd_link *open_link(const char *tok, const char *pw, int *err)
{
	sd_link *l = NULL;
	*err = T.api->link_open(T.c, tok, pw, "192.0.2.9", &l, NULL);
	return l;
}

START_TEST(test_links)
{
	T.conf.auth_max_failures = 5;
	put_s(A, "/team/pub/a.txt", "public a");
	put_s(A, "/team/pub/sub/b.txt", "public b");
	put_s(A, "/private.txt", "mine");
	char tok[SD_LINK_TOKEN_MAX], tok2[SD_LINK_TOKEN_MAX];
	sd_link_info li;
	sd_link_opts o = {.mode = SD_LINK_READ, .max_downloads = 2};
	ck_assert_int_eq(T.api->link_create(A, "/team/pub", &o, tok, &li), 0);
	ck_assert_int_eq(strlen(tok), 43);
	ck_assert_int_eq(T.api->link_create(A, "/team/pub", &o, tok2, NULL), 0);
	ck_assert_str_ne(tok, tok2);
	/* carol, read-only, lacks the share right */
	ck_assert_int_eq(T.api->share_grant(T.c, "team", "/", "carol", NULL,
					    SD_RIGHT_LIST | SD_RIGHT_READ),
			 0);
	ck_assert_int_eq(T.api->link_create(C, "/team/pub", &o, tok2, NULL), -EACCES);
	int err;
	sd_link *l = open_link(tok, NULL, &err);
	ck_assert_int_eq(err, 0);
	names nm;
	memset(&nm, 0, sizeof nm);
	ck_assert_int_eq(T.api->link_readdir(l, "/", NULL, 0, names_cb, &nm, NULL), 2);
	ck_assert_str_eq(nm.s, "a.txt sub");
	sd_stat st;
	ck_assert_int_eq(T.api->link_stat(l, "/../../private.txt", &st), -ENOENT); /* confined */
	sd_reader *rd;
	ck_assert_int_eq(T.api->link_open_read(l, "/sub/b.txt", &rd, &st), 0);
	T.api->reader_close(rd);
	ck_assert_int_eq(T.api->link_use(l, SD_LINK_USE_GET, "/sub/b.txt"), 0);
	ck_assert_int_eq(T.api->link_use(l, SD_LINK_USE_ZIP, "/"), 0);
	ck_assert_int_eq(T.api->link_use(l, SD_LINK_USE_GET, "/a.txt"), -ENOENT); /* used up */
	sd_upload *up;
	ck_assert_int_eq(T.api->link_upload_begin(l, "x", &up), -EACCES);
	T.api->link_close(l);
	ck_assert_ptr_null(open_link(tok, NULL, &err));
	ck_assert_int_eq(err, -ENOENT);
	ck_assert_int_eq(tu_sql_int(&T, "SELECT count(*) FROM journal WHERE op IN ('link_get','link_zip')"),
			 2);

	/* expiry and password */
	sd_link_opts o2 = {.mode = SD_LINK_READ, .expires = 60, .password = "s3cret"};
	ck_assert_int_eq(T.api->link_create(A, "/private.txt", &o2, tok, NULL), 0);
	ck_assert_ptr_null(open_link(tok, NULL, &err));
	ck_assert_int_eq(err, -EACCES);
	ck_assert_ptr_null(open_link(tok, "wrong", &err));
	ck_assert_int_eq(err, -EACCES);
	l = open_link(tok, "s3cret", &err);
	ck_assert_int_eq(err, 0);
	ck_assert_int_eq(T.api->link_open_read(l, "/", &rd, &st), 0);
	T.api->reader_close(rd);
	T.api->link_close(l);
	now_ms += 61 * SEC;
	ck_assert_ptr_null(open_link(tok, "s3cret", &err));
	ck_assert_int_eq(err, -ENOENT);

	/* an upload link: new files only, never a listing */
	sd_link_opts o3 = {.mode = SD_LINK_UPLOAD};
	ck_assert_int_eq(T.api->link_create(A, "/team/pub/sub/b.txt", &o3, tok, NULL), -ENOTDIR);
	ck_assert_int_eq(T.api->link_create(A, "/team/drop", &o3, tok, NULL), -ENOENT);
	ck_assert_int_eq(T.api->mkdir(A, "/team/drop", 0755, 0), 0);
	ck_assert_int_eq(T.api->link_create(A, "/team/drop", &o3, tok, &li), 0);
	l = open_link(tok, NULL, &err);
	ck_assert_int_eq(err, 0);
	ck_assert_int_eq(T.api->link_readdir(l, "/", NULL, 0, names_cb, &nm, NULL), -EACCES);
	ck_assert_int_eq(T.api->link_upload_begin(l, "../escape", &up), -EINVAL);
	ck_assert_int_eq(T.api->link_upload_begin(l, "up.txt", &up), 0);
	ck_assert_int_eq(T.api->upload_write(up, "uploaded", 8), 0);
	ck_assert_int_eq(T.api->upload_commit(up, NULL, NULL, NULL), 0);
	ck_assert_int_eq(T.api->link_upload_begin(l, "up.txt", &up), -EEXIST);
	T.api->link_close(l);
	assert_text(B, "/team/drop/up.txt", "uploaded");
	ck_assert_int_eq(T.api->stat(B, "/team/drop/up.txt", &st), 0);
	ck_assert_str_eq(st.created_by, "alice");
	/* revoked */
	ck_assert_int_eq(T.api->link_revoke(B, li.id), -ENOENT); /* not bob's */
	ck_assert_int_eq(T.api->link_revoke(A, li.id), 0);
	ck_assert_ptr_null(open_link(tok, NULL, &err));
	ck_assert_int_eq(err, -ENOENT);
	/* the maker removed from the team: the link stops working */
	sd_link_opts o4 = {0};
	ck_assert_int_eq(T.api->link_create(B, "/team/pub/a.txt", &o4, tok, NULL), 0);
	l = open_link(tok, NULL, &err);
	ck_assert_int_eq(err, 0);
	T.api->link_close(l);
	ck_assert_int_eq(T.api->group_member_remove(T.c, "eng", "bob"), 0);
	ck_assert_ptr_null(open_link(tok, NULL, &err));
	ck_assert_int_eq(err, -ENOENT);
	/* a link on one's own root never reaches a shared folder */
	ck_assert_int_eq(T.api->link_create(A, "/", &o4, tok, NULL), 0);
	l = open_link(tok, NULL, &err);
	ck_assert_int_eq(err, 0);
	memset(&nm, 0, sizeof nm);
	T.api->link_readdir(l, "/", NULL, 0, names_cb, &nm, NULL);
	ck_assert_str_eq(nm.s, "private.txt");
	ck_assert_int_eq(T.api->link_stat(l, "/team/pub/a.txt", &st), -ENOENT);
	T.api->link_close(l);
	int count = 0;
	ck_assert_int_ge(T.api->link_list(A, NULL, NULL), 4);
	count = T.api->link_list_all(T.c, NULL, NULL, NULL);
	ck_assert_int_ge(count, 6);
	/* wrong tokens: the login limiter locks the address out */
	int blocked = 0;
	for (int i = 0; i < 8 && !blocked; i++) {
		open_link("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL, &err);
		blocked = err == -SD_EBLOCKED;
	}
	ck_assert_int_eq(blocked, 1);
	ck_assert_ptr_null(open_link(tok, NULL, &err)); /* a good one too, while blocked */
	ck_assert_int_eq(err, -SD_EBLOCKED);
}
END_TEST

/* ------------------------------------------------------------ replication */

static int rule_line(void *arg, const sd_share_rule *r)
{
	sd_buf *b = arg;
	sd_buf_printf(b, "%s %s %s%s %u\n", r->share, r->path, r->user, r->group, r->rights);
	return 0;
}

static int group_line(void *arg, const sd_group *g)
{
	sd_buf *b = arg;
	sd_buf_printf(b, "%s:", g->name);
	for (int i = 0; i < g->nmembers; i++)
		sd_buf_printf(b, " %s", g->members[i]);
	sd_buf_puts(b, "\n");
	return 0;
}

static int link_line(void *arg, const sd_link_info *l)
{
	sd_buf *b = arg;
	sd_buf_printf(b, "%s %s %d %d %lld %d\n", l->user, l->path, l->mode, l->password,
		      (long long)l->downloads, l->revoked);
	return 0;
}

static char *team_state(tu_core *t)
{
	sd_buf b = SD_BUF_INIT;
	t->api->group_list(t->c, NULL, group_line, &b);
	t->api->share_rules(t->c, NULL, rule_line, &b);
	t->api->link_list_all(t->c, NULL, link_line, &b);
	return sd_buf_steal(&b);
}

START_TEST(test_replicate)
{
	put_s(A, "/team/r.txt", "replicated");
	ck_assert_int_eq(T.api->share_grant(T.c, "team", "/in", "carol", NULL, SD_RIGHT_WRITE), 0);
	put_s(C, "/team/in/c.txt", "dropped");
	ck_assert_int_eq(T.api->rename(A, "/team/r.txt", "/team/in/r.txt", 0), 0);
	char tok[SD_LINK_TOKEN_MAX];
	sd_link_opts o = {.password = "pw", .max_downloads = 3};
	ck_assert_int_eq(T.api->link_create(A, "/team/in", &o, tok, NULL), 0);
	int err;
	sd_link *l = open_link(tok, "pw", &err);
	ck_assert_int_eq(err, 0);
	ck_assert_int_eq(T.api->link_use(l, SD_LINK_USE_ZIP, "/"), 0);
	T.api->link_close(l);
	ck_assert_int_eq(T.api->share_set_quota(T.c, "team", 1 << 20), 0);
	ck_assert_int_eq(T.api->group_add(T.c, "ops"), 0);
	ck_assert_int_eq(T.api->group_member_add(T.c, "ops", "carol"), 0);
	ck_assert_int_eq(T.api->group_member_remove(T.c, "eng", "bob"), 0);

	tu_core d;
	tu_core_prepare(&d);
	tu_core_reopen(&d, 0);
	sd_replicate_report rr;
	char e[512] = "";
	int r = sd_core_replicate(T.c, d.c, 0, &rr, NULL, NULL, e, sizeof e);
	ck_assert_msg(r == 0, "replicate: %s (%s)", T.api->strerror(r), e);
	char *a = team_state(&T), *b = team_state(&d);
	ck_assert_msg(strcmp(a, b) == 0, "source:\n%s\ncopy:\n%s", a, b);
	free(a);
	free(b);
	sd_session *da = tu_session(&d, "alice");
	size_t n;
	char *got = tu_get(&d, da, "/team/in/r.txt", &n);
	ck_assert_int_eq(n, 10);
	free(got);
	/* the link works on the copy, with its password and the uses counted */
	l = NULL;
	ck_assert_int_eq(d.api->link_open(d.c, tok, "pw", "192.0.2.1", &l, NULL), 0);
	d.api->link_close(l);
	ck_assert_int_eq(tu_sql_int(&d, "SELECT downloads FROM links"), 1);
	ck_assert_int_eq(tu_sql_int(&d, "SELECT u.used_bytes FROM users u JOIN shares s "
				       "ON s.account = u.id"),
			 17);
	tu_core_close(&d);
}
END_TEST

Suite *teams_suite(void)
{
	Suite *s = suite_create("teams");
	TCase *tc = tcase_create("teams");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_groups_admin);
	tcase_add_test(tc, test_mount_and_members);
	tcase_add_test(tc, test_rights);
	tcase_add_test(tc, test_dropbox);
	tcase_add_test(tc, test_quota);
	tcase_add_test(tc, test_moves_and_dedup);
	tcase_add_test(tc, test_history_shared);
	tcase_add_test(tc, test_handle_rights_change);
	tcase_add_test(tc, test_links);
	tcase_add_test(tc, test_replicate);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(teams_suite());
}
