/*
 * test_journal.c - the journal's hash chain (journal.c) and replication
 * (replica.c): rows chain as the design notes define them (checked against
 * an independent implementation of the canonical form), verify names the
 * first row an edit or a removal breaks, pruning moves the anchor so the
 * rest still verifies, rows from before migration 0002 are sealed, a row
 * that cannot be journalled fails its change (I5); replicate copies trees,
 * users, keys and tokens through the engine, resumes exactly where it
 * stopped, applies nothing twice, and refuses a source it cannot trust.
 * Tampering is done as an operator would: with the sqlite3 shell.
 */
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include "testutil.h"
#include "memstore.h"
#include "core/internal.h"

#define DAY 86400000LL

static int64_t now_ms;
static int64_t clk(void *a)
{
	(void)a;
	return now_ms;
}

/* The sqlite3 shell on the data dir's database (as an operator would). */
static void sql(tu_core *t, const char *q)
{
	char cmd[2048];
	snprintf(cmd, sizeof cmd, "sqlite3 '%s/storaged.db' \"%s\"", t->dir, q);
	ck_assert_msg(system(cmd) == 0, "sqlite3: %s", q);
}

/* ------------------------------------------------------------ the chain */

/* The canonical form of journal.c's design notes, written again here from
 * the text (not from the code) as the cross-check. */
static void spec_hash(const unsigned char prev[32], int64_t seq, int64_t ts, const char *f[5],
		      unsigned char out[32])
{
	EVP_MD_CTX *x = EVP_MD_CTX_new();
	EVP_DigestInit_ex(x, EVP_sha256(), NULL);
	EVP_DigestUpdate(x, "storaged-journal-1\n", 19);
	EVP_DigestUpdate(x, prev, 32);
	unsigned char b[8];
	for (int k = 0; k < 2; k++) {
		uint64_t v = (uint64_t)(k == 0 ? seq : ts);
		for (int i = 7; i >= 0; i--, v >>= 8)
			b[i] = (unsigned char)v;
		EVP_DigestUpdate(x, b, 8);
	}
	for (int i = 0; i < 5; i++) {
		if (!f[i]) {
			EVP_DigestUpdate(x, "\0", 1);
			continue;
		}
		uint32_t n = (uint32_t)strlen(f[i]);
		unsigned char h[5] = {1, (unsigned char)(n >> 24), (unsigned char)(n >> 16),
				      (unsigned char)(n >> 8), (unsigned char)n};
		EVP_DigestUpdate(x, h, 5);
		EVP_DigestUpdate(x, f[i], n);
	}
	unsigned int len = 32;
	EVP_DigestFinal_ex(x, out, &len);
	EVP_MD_CTX_free(x);
}

typedef struct chk {
	unsigned char prev[32];
	int64_t seq;
	int n, bad;
	char ops[1024];
} chk;

static int chk_cb(void *arg, const sd_journal_rec *r)
{
	chk *c = arg;
	unsigned char h[32], rp[32], rh[32];
	ck_assert_int_eq(sd_unhex(r->prev, rp, 32), 0);
	ck_assert_int_eq(sd_unhex(r->hash, rh, 32), 0);
	const char *f[5] = {r->user, r->op, r->path, r->detail, r->args};
	spec_hash(rp, r->seq, r->ts, f, h);
	if (r->seq != c->seq + 1 || memcmp(rp, c->prev, 32) != 0 || memcmp(h, rh, 32) != 0)
		c->bad++;
	memcpy(c->prev, rh, 32);
	c->seq = r->seq;
	c->n++;
	snprintf(c->ops + strlen(c->ops), sizeof c->ops - strlen(c->ops), "%s ", r->op);
	return 0;
}

/* A few changes of every kind on user alice of t (clock at now_ms). */
static void some_changes(tu_core *t, sd_session *u)
{
	tu_put(t, u, "/docs/a.txt", "alpha", 5);
	ck_assert_int_eq(t->api->mkdir(u, "/docs/sub", 0700, 0), 0);
	tu_put(t, u, "/docs/a.txt", "alpha two", 9);
	ck_assert_int_eq(t->api->chmod(u, "/docs/a.txt", 0600), 0);
	ck_assert_int_eq(t->api->set_mtime(u, "/docs/a.txt", 1234567890), 0);
	ck_assert_int_eq(t->api->rename(u, "/docs/a.txt", "/docs/sub/b.txt", 0), 0);
	ck_assert_int_eq(t->api->copy(u, "/docs/sub/b.txt", "/c.txt"), 0);
	tu_put(t, u, "/gone.txt", "bye", 3);
	ck_assert_int_eq(t->api->unlink(u, "/gone.txt", 0), 0);
}

START_TEST(test_chain_matches_spec)
{
	tu_core t;
	tu_core_open(&t, 0);
	sd_session *u = tu_user(&t, "alice");
	some_changes(&t, u);
	chk c;
	memset(&c, 0, sizeof c);
	int n = sd_core_journal_export(t.c, 0, chk_cb, &c);
	ck_assert_int_eq(n, 10);
	ck_assert_int_eq(c.bad, 0);
	ck_assert_str_eq(c.ops, "user_add write mkdir write chmod mtime rename copy write delete ");
	/* what a replay needs is in args */
	ck_assert_int_eq(tu_sql_int(&t, "SELECT json_extract(args,'$.size') FROM journal WHERE seq=4"), 9);
	ck_assert_int_eq(tu_sql_int(&t, "SELECT count(*) FROM journal WHERE seq=4 AND "
				    "json_extract(args,'$.sha256') = (SELECT sha256 FROM blobs WHERE size=9)"), 1);
	ck_assert_int_eq(tu_sql_int(&t, "SELECT count(*) FROM journal WHERE op='mkdir' AND "
				    "json_extract(args,'$.mode') = '0700'"), 1);
	ck_assert_int_eq(tu_sql_int(&t, "SELECT count(*) FROM journal WHERE op='rename' AND "
				    "json_extract(args,'$.to') = '/docs/sub/b.txt'"), 1);
	ck_assert_int_eq(tu_sql_int(&t, "SELECT count(*) FROM journal WHERE op='chmod' AND "
				    "json_extract(args,'$.mode') = '0600'"), 1);
	/* the overwrite kept the file's mode: the journalled mode is the file's */
	ck_assert_int_eq(tu_sql_int(&t, "SELECT count(*) FROM journal WHERE op='copy' AND "
				    "json_extract(args,'$.mode') = '0600'"), 1);
	sd_journal_verify v;
	ck_assert_int_eq(sd_core_journal_verify(t.c, &v), 0);
	ck_assert_int_eq(v.bad_seq, 0);
	ck_assert_int_eq(v.rows, 10);
	ck_assert_int_eq(v.first, 1);
	ck_assert_int_eq(v.last, 10);
	char hex[65];
	sd_hex(c.prev, 32, hex);
	ck_assert_str_eq(v.head_hash, hex);
	tu_core_close(&t);
}
END_TEST

/* verify on a journal of 10 rows (some_changes) after the tampering q. */
static sd_journal_verify verify_after(const char *q)
{
	tu_core t;
	tu_core_open(&t, 0);
	sd_session *u = tu_user(&t, "alice");
	some_changes(&t, u);
	sql(&t, q);
	sd_journal_verify v;
	ck_assert_int_eq(sd_core_journal_verify(t.c, &v), 0);
	tu_core_close(&t);
	return v;
}

START_TEST(test_verify_names_the_tampered_row)
{
	/* an edited field */
	sd_journal_verify v = verify_after("UPDATE journal SET path='/elsewhere' WHERE seq=5");
	ck_assert_int_eq(v.bad_seq, 5);
	ck_assert_msg(strstr(v.reason, "edited"), "%s", v.reason);
	ck_assert_int_eq(v.last, 4);
	/* an edited time, args, user: every field is covered */
	ck_assert_int_eq(verify_after("UPDATE journal SET ts=ts+1 WHERE seq=3").bad_seq, 3);
	ck_assert_int_eq(verify_after("UPDATE journal SET args=NULL WHERE seq=2").bad_seq, 2);
	ck_assert_int_eq(verify_after("UPDATE journal SET user='mallory' WHERE seq=7").bad_seq, 7);
	ck_assert_int_eq(verify_after("UPDATE journal SET detail='x' WHERE seq=10").bad_seq, 10);
	/* a removed row: the break is at the row after it */
	v = verify_after("DELETE FROM journal WHERE seq=6");
	ck_assert_int_eq(v.bad_seq, 7);
	ck_assert_msg(strstr(v.reason, "6..6 are missing"), "%s", v.reason);
	/* an edit whose own hash was recomputed is caught by the next row */
	v = verify_after("UPDATE journal SET hash=randomblob(32) WHERE seq=4");
	ck_assert_int_eq(v.bad_seq, 4);
	v = verify_after("UPDATE journal SET prev=randomblob(32) WHERE seq=8");
	ck_assert_int_eq(v.bad_seq, 8);
	/* a row added by hand has no hash */
	v = verify_after("INSERT INTO journal(seq, ts, op) VALUES (11, 1, 'forged')");
	ck_assert_int_eq(v.bad_seq, 11);
	ck_assert_msg(strstr(v.reason, "no hash"), "%s", v.reason);
	/* renumbering is an edit too */
	ck_assert_int_eq(verify_after("UPDATE journal SET seq=seq+100 WHERE seq=10").bad_seq, 110);
	/* the chain alone cannot tell a removed newest row (SECURITY.md):
	 * verify passes, and the head it reports goes back */
	v = verify_after("DELETE FROM journal WHERE seq=10");
	ck_assert_int_eq(v.bad_seq, 0);
	ck_assert_int_eq(v.last, 9);
}
END_TEST

/* Rows appended after tampering chain on what is there: the tampering
 * stays evident and new writes never fail because of it. */
START_TEST(test_writes_go_on_after_tampering)
{
	tu_core t;
	tu_core_open(&t, 0);
	sd_session *u = tu_user(&t, "alice");
	some_changes(&t, u);
	sql(&t, "UPDATE journal SET op='delete' WHERE seq=9");
	tu_put(&t, u, "/after", "later", 5);
	sd_journal_verify v;
	ck_assert_int_eq(sd_core_journal_verify(t.c, &v), 0);
	ck_assert_int_eq(v.bad_seq, 9);
	ck_assert_int_eq(tu_sql_int(&t, "SELECT max(seq) FROM journal"), 11);
	tu_core_close(&t);
}
END_TEST

/* I5: a change whose journal row cannot be written does not happen. */
START_TEST(test_journal_failure_fails_the_change)
{
	tu_core t;
	tu_core_open(&t, 0);
	sd_session *u = tu_user(&t, "alice");
	tu_put(&t, u, "/kept", "kept", 4);
	sql(&t, "CREATE TRIGGER nojournal BEFORE INSERT ON journal BEGIN SELECT RAISE(ABORT, 'no'); END");
	ck_assert_int_lt(t.api->mkdir(u, "/d", 0755, 0), 0);
	ck_assert_int_lt(tu_put_r(&t, u, "/new", "new", 3, NULL, NULL), 0);
	ck_assert_int_lt(t.api->rename(u, "/kept", "/moved", 0), 0);
	ck_assert_int_lt(t.api->unlink(u, "/kept", 0), 0);
	sd_stat st;
	ck_assert_int_eq(t.api->stat(u, "/d", &st), -ENOENT);
	ck_assert_int_eq(t.api->stat(u, "/new", &st), -ENOENT);
	ck_assert_int_eq(t.api->stat(u, "/kept", &st), 0);
	ck_assert_int_eq(tu_sql_int(&t, "SELECT count(*) FROM versions"), 1);
	sql(&t, "DROP TRIGGER nojournal");
	sd_journal_verify v;
	ck_assert_int_eq(sd_core_journal_verify(t.c, &v), 0);
	ck_assert_int_eq(v.bad_seq, 0);
	ck_assert_int_eq(v.rows, 2);
	tu_core_close(&t);
}
END_TEST

START_TEST(test_pruning_moves_the_anchor)
{
	tu_core t;
	tu_core_open(&t, 0);
	now_ms = 1800000000000;
	sd__core_set_clock(t.c, clk, NULL);
	sd_session *u = tu_user(&t, "alice");                    /* seq 1 */
	for (int i = 0; i < 5; i++)                               /* seq 2..6 */
		ck_assert_int_eq(t.api->set_mtime(u, "/", i), 0);
	now_ms += 200 * DAY;
	ck_assert_int_eq(t.api->set_mtime(u, "/", 7), 0);       /* seq 7: 200 days later */
	now_ms -= 300 * DAY;                                      /* the clock goes back */
	ck_assert_int_eq(t.api->set_mtime(u, "/", 8), 0);       /* seq 8: older than 7 */
	now_ms += 300 * DAY;
	ck_assert_int_eq(t.api->set_mtime(u, "/", 9), 0);       /* seq 9 */
	unsigned char h6[32];
	{
		sd_jrow w;
		ck_assert_int_eq(sd__journal_page(t.c, 5, 1, &w), 1);
		memcpy(h6, w.hash, 32);
		sd__jrows_free(&w, 1);
	}
	/* a year after seq 1..6: only the prefix up to 6 goes (8 is old too,
	 * but pruning never makes a hole) */
	now_ms += 200 * DAY;
	sd_gc_report rep;
	ck_assert_int_eq(t.api->gc_run(t.c, 0, &rep), 0);
	ck_assert_int_eq(rep.journal_pruned, 6);
	ck_assert_int_eq(tu_sql_int(&t, "SELECT min(seq) FROM journal"), 7);
	int64_t aseq, head;
	unsigned char ah[32];
	sd__journal_anchor(t.c, &aseq, ah, &head);
	ck_assert_int_eq(aseq, 6);
	ck_assert_int_eq(head, 9);
	ck_assert(memcmp(ah, h6, 32) == 0);
	sd_journal_verify v;
	ck_assert_int_eq(sd_core_journal_verify(t.c, &v), 0);
	ck_assert_int_eq(v.bad_seq, 0);
	ck_assert_int_eq(v.first, 7);
	ck_assert_int_eq(v.anchor_seq, 6);
	/* everything pruned: the next row goes on from the anchor */
	now_ms += 2000 * DAY;
	ck_assert_int_eq(t.api->gc_run(t.c, 0, &rep), 0);
	ck_assert_int_eq(rep.journal_pruned, 3);
	ck_assert_int_eq(tu_sql_int(&t, "SELECT count(*) FROM journal"), 0);
	ck_assert_int_eq(sd_core_journal_verify(t.c, &v), 0);
	ck_assert_int_eq(v.bad_seq, 0);
	ck_assert_int_eq(v.anchor_seq, 9);
	ck_assert_int_eq(t.api->mkdir(u, "/x", 0755, 0), 0);
	ck_assert_int_eq(tu_sql_int(&t, "SELECT seq FROM journal"), 10);
	ck_assert_int_eq(sd_core_journal_verify(t.c, &v), 0);
	ck_assert_int_eq(v.bad_seq, 0);
	ck_assert_int_eq(v.rows, 1);
	/* removing rows at the start by hand without moving the anchor shows */
	ck_assert_int_eq(t.api->mkdir(u, "/y", 0755, 0), 0);
	sql(&t, "DELETE FROM journal WHERE seq=10");
	ck_assert_int_eq(sd_core_journal_verify(t.c, &v), 0);
	ck_assert_int_eq(v.bad_seq, 11);
	tu_core_close(&t);
}
END_TEST

/* A database from before migration 0002: rows without args, prev, hash.
 * The first open chains them, with args from their detail. */
START_TEST(test_rows_before_the_migration_are_sealed)
{
	tu_core t;
	tu_core_open(&t, 0);
	sd_session *u = tu_user(&t, "alice");
	some_changes(&t, u);
	tu_core_shut(&t);
	sql(&t, "UPDATE journal SET args=NULL, prev=NULL, hash=NULL; "
		"UPDATE meta SET value='0' WHERE key='journal_sealed'");
	tu_core_reopen(&t, 0);
	sd_journal_verify v;
	ck_assert_int_eq(sd_core_journal_verify(t.c, &v), 0);
	ck_assert_int_eq(v.bad_seq, 0);
	ck_assert_int_eq(v.rows, 10);
	/* args derived from the old detail text */
	ck_assert_int_eq(tu_sql_int(&t, "SELECT count(*) FROM journal WHERE op='write' AND "
				    "json_extract(args,'$.sha256') IN (SELECT sha256 FROM blobs)"), 3);
	ck_assert_int_eq(tu_sql_int(&t, "SELECT count(*) FROM journal WHERE op='rename' AND "
				    "json_extract(args,'$.to') = '/docs/sub/b.txt'"), 1);
	ck_assert_int_eq(tu_sql_int(&t, "SELECT count(*) FROM journal WHERE op='chmod' AND "
				    "json_extract(args,'$.mode') = '0600'"), 1);
	ck_assert_int_eq(tu_sql_int(&t, "SELECT value FROM meta WHERE key='journal_sealed'"), 1);
	/* sealing happens once: a later edit is not sealed over */
	tu_core_shut(&t);
	sql(&t, "UPDATE journal SET path='/x' WHERE seq=3");
	tu_core_reopen(&t, 0);
	ck_assert_int_eq(sd_core_journal_verify(t.c, &v), 0);
	ck_assert_int_eq(v.bad_seq, 3);
	tu_core_close(&t);
}
END_TEST

/* ------------------------------------------------------------ replication */

/* A second core on its own directory (optionally a memstore). */
static void open_copy(tu_core *d, memstore *ms)
{
	tu_core_prepare(d);
	if (ms)
		tu_core_open_store(d, 0, &ms->base);
	else
		tu_core_reopen(d, 0);
}

/* Every node of name's tree on t, one line each, in name order. */
typedef struct dump {
	tu_core *t;
	sd_session *s;
	sd_buf out;
	char dir[SD_PATH_MAX];
	int attrs; /* also modes and mtimes */
} dump;

static void dump_dir(dump *x, const char *dir);

static int dump_cb(void *arg, const sd_dirent *e)
{
	dump *x = arg;
	char p[SD_PATH_MAX + 1];
	snprintf(p, sizeof p, "%s/%s", strcmp(x->dir, "/") ? x->dir : "", e->name);
	sd_stat st;
	ck_assert_int_eq(x->t->api->stat(x->s, p, &st), 0);
	sd_buf_printf(&x->out, "%s kind=%d size=%llu ctime=%lld sha=%s v=%lld", p, st.kind,
		      (unsigned long long)st.size, (long long)st.ctime, st.sha256,
		      (long long)st.versions);
	if (x->attrs)
		sd_buf_printf(&x->out, " mode=%o mtime=%lld", st.mode, (long long)st.mtime);
	sd_buf_puts(&x->out, "\n");
	if (st.kind == SD_KIND_DIR) {
		char saved[SD_PATH_MAX];
		snprintf(saved, sizeof saved, "%s", x->dir);
		dump_dir(x, p);
		snprintf(x->dir, sizeof x->dir, "%s", saved);
	}
	return 0;
}

static void dump_dir(dump *x, const char *dir)
{
	snprintf(x->dir, sizeof x->dir, "%s", dir);
	int more;
	ck_assert_int_ge(x->t->api->readdir(x->s, dir, NULL, 0, dump_cb, x, &more), 0);
}

static char *tree_of(tu_core *t, const char *user, int attrs)
{
	dump x = {t, NULL, SD_BUF_INIT, "", attrs};
	ck_assert_int_eq(sd_core_session(t->c, user, &x.s), 0);
	sd_stat st;
	ck_assert_int_eq(t->api->stat(x.s, "/", &st), 0);
	sd_buf_printf(&x.out, "/ mode=%o ctime=%lld\n", st.mode, (long long)st.ctime);
	dump_dir(&x, "/");
	t->api->session_close(x.s);
	sd_user row;
	ck_assert_int_eq(t->api->user_get(t->c, user, &row), 0);
	sd_buf_printf(&x.out, "user flags=%u quota=%lld used=%lld\n", row.flags, (long long)row.quota,
		      (long long)row.used);
	return sd_buf_steal(&x.out);
}

static void same_trees_as(tu_core *a, tu_core *b, const char *user, int attrs)
{
	char *ta = tree_of(a, user, attrs), *tb = tree_of(b, user, attrs);
	ck_assert_msg(strcmp(ta, tb) == 0, "source:\n%s\ncopy:\n%s", ta, tb);
	free(ta);
	free(tb);
}

static void same_trees(tu_core *a, tu_core *b, const char *user)
{
	same_trees_as(a, b, user, 1);
}

static void fsck_clean(tu_core *t)
{
	sd_fsck_report fr;
	ck_assert_int_eq(sd_core_fsck(t->c, 0, &fr, NULL, NULL), 0);
	ck_assert_int_eq(fr.bad_hash + fr.missing + fr.orphans + fr.bad_refs + fr.bad_used, 0);
}

/* Change the store behind the engine's back, under the stripe lock as the
 * store's contract wants: put (data) or remove (data NULL) content sha. */
static void store_poke(tu_core *t, const char *sha, const char *data, size_t len)
{
	const sd_store_ops *ops = t->c->store->ops;
	int lk = ops->lock(t->c->store, sha);
	ck_assert_int_ge(lk, 0);
	if (data)
		ck_assert_int_eq(ops->put(t->c->store, data, len, sha), 0);
	else
		ck_assert_int_eq(ops->remove(t->c->store, sha), 0);
	ops->unlock(t->c->store, lk);
}

static int replicate(tu_core *src, tu_core *dst, int64_t max, sd_replicate_report *rep,
		     char *err, size_t errlen)
{
	return sd_core_replicate(src->c, dst->c, max, rep, NULL, NULL, err, errlen);
}

/* Everything a user can change, over the engine calls every protocol
 * uses: streamed uploads, handles, instant upload, copies, renames,
 * deletes, modes, times; users, keys, tokens. */
static void busy_source(tu_core *s, char token[SD_TOKEN_MAX])
{
	sd_session *u = tu_user(s, "alice");
	some_changes(s, u);
	int64_t id;
	ck_assert_int_eq(s->api->user_add(s->c, "bob", "bob's password", 1 << 20, SD_USER_ADMIN, &id), 0);
	sd_session *b = tu_session(s, "bob");
	tu_put(s, b, "/same.txt", "alpha two", 9); /* content alice has: dedup */
	ck_assert_int_eq(s->api->key_add(s->c, "bob", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl bob@laptop"), 0);
	ck_assert_int_eq(s->api->token_create(s->c, "bob", SD_SCOPE_RO, 0, token, &id), 0);
	char t2[SD_TOKEN_MAX];
	int64_t id2;
	ck_assert_int_eq(s->api->token_create(s->c, "bob", SD_SCOPE_RW, 3600, t2, &id2), 0);
	ck_assert_int_eq(s->api->token_revoke(s->c, id2), 0);
	ck_assert_int_eq(s->api->user_set_quota(s->c, "bob", 2 << 20), 0);
	/* a handle: random writes, a mode and an mtime set while dirty */
	sd_handle h;
	ck_assert_int_eq(s->api->handle_open(b, "/h.bin", SD_O_WRITE | SD_O_CREAT, 0640, &h, NULL), 0);
	ck_assert_int_eq(s->api->handle_pwrite(b, h, "0123456789", 10, 0), 10);
	ck_assert_int_eq(s->api->handle_pwrite(b, h, "xx", 2, 3), 2);
	ck_assert_int_eq(s->api->handle_setattr(b, h, SD_ATTR_MTIME, 0, 1500000000), 0);
	ck_assert_int_eq(s->api->handle_close(b, h), 0);
	/* instant upload of content bob already holds */
	char sha[65];
	tu_sha_hex("alpha two", 9, sha);
	sd_challenge ch;
	sd_stat st;
	ck_assert_int_eq(s->api->instant_begin(b, "/inst.txt", 0, sha, 9, &ch, &st), 0);
	ck_assert_int_eq(s->api->mkdir(b, "/tree/deep/er", 0755, 1), 0);
	tu_put(s, b, "/tree/deep/er/f", "deep", 4);
	ck_assert_int_eq(s->api->unlink(b, "/tree", 1), 0);
	ck_assert_int_eq(s->api->user_set_disabled(s->c, "alice", 1), 0);
	ck_assert_int_eq(s->api->user_set_disabled(s->c, "alice", 0), 0);
	ck_assert_int_eq(s->api->user_set_password(s->c, "alice", "alice's new password"), 0);
	/* a failed login is journalled (and copied as a row) */
	sd_session *no = NULL;
	ck_assert_int_eq(s->api->auth_password(s->c, "bob", "wrong", "10.0.0.9", "ftp", &no), -SD_EAUTH);
}

START_TEST(test_replicate_copies_everything)
{
	tu_core s, d;
	tu_core_open(&s, 0);
	s.conf.auth_fail_delay = 0;
	char token[SD_TOKEN_MAX];
	busy_source(&s, token);
	memstore *ms = memstore_new();
	open_copy(&d, ms); /* the copy's contents go through store.h only */
	sd_replicate_report rep;
	char err[512];
	int r = replicate(&s, &d, 0, &rep, err, sizeof err);
	ck_assert_msg(r == 0, "replicate: %s", err);
	int64_t head = tu_sql_int(&s, "SELECT max(seq) FROM journal");
	ck_assert_int_eq(rep.rows, head);
	ck_assert_int_eq(rep.to_seq, head);
	ck_assert_int_eq(rep.from_seq, 0);
	ck_assert_int_eq(rep.files, 8);
	ck_assert_int_eq(rep.blobs_copied, tu_sql_int(&s, "SELECT count(*) FROM blobs"));
	same_trees(&s, &d, "alice");
	same_trees(&s, &d, "bob");
	/* versions and deletion times came along */
	ck_assert_int_eq(tu_sql_int(&d, "SELECT count(*) FROM versions"),
			 tu_sql_int(&s, "SELECT count(*) FROM versions"));
	ck_assert_int_eq(tu_sql_int(&d, "SELECT sum(deleted_at) FROM nodes"),
			 tu_sql_int(&s, "SELECT sum(deleted_at) FROM nodes"));
	ck_assert_int_eq(tu_sql_int(&d, "SELECT sum(ts) FROM versions"),
			 tu_sql_int(&s, "SELECT sum(ts) FROM versions"));
	/* credentials: the same password, key, tokens (one revoked) */
	sd_session *x = NULL;
	ck_assert_int_eq(d.api->auth_password(d.c, "bob", "bob's password", "::1", "ftp", &x), 0);
	d.api->session_close(x);
	ck_assert_int_eq(d.api->auth_password(d.c, "alice", "alice's new password", "::1", "ftp", &x), 0);
	d.api->session_close(x);
	ck_assert_int_eq(d.api->auth_token(d.c, token, "::1", "http", &x), 0);
	sd_session_info si;
	ck_assert_int_eq(d.api->session_info(x, &si), 0);
	ck_assert_uint_eq(si.flags & SD_USER_READONLY, SD_USER_READONLY);
	d.api->session_close(x);
	ck_assert_int_eq(d.api->auth_pubkey(d.c, "bob", "ssh-ed25519",
					    "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
					    "::1", "sftp", SD_AUTH_PROBE, NULL), 0);
	ck_assert_int_eq(tu_sql_int(&d, "SELECT count(*) FROM tokens WHERE revoked = 1"), 1);
	ck_assert_int_eq(tu_sql_int(&d, "SELECT count(*) FROM tokens"), 2);
	ck_assert_int_eq(tu_sql_int(&d, "SELECT admin FROM users WHERE name='bob'"), 1);
	ck_assert_int_eq(tu_sql_int(&d, "SELECT count(*) FROM journal WHERE op='login_failed' AND "
				    "detail LIKE '%10.0.0.9%'"), 1);
	/* the copy's own journal is a chain of its own, intact */
	sd_journal_verify v;
	ck_assert_int_eq(sd_core_journal_verify(d.c, &v), 0);
	ck_assert_int_eq(v.bad_seq, 0);
	fsck_clean(&d);
	/* the position is the source's newest row */
	ck_assert_int_eq(tu_sql_int(&d, "SELECT seq FROM replica"), head);
	ck_assert_int_eq(tu_sql_int(&d, "SELECT count(*) FROM replica r, meta m WHERE "
				    "m.key='store_id' AND r.source = m.value"), 0);

	/* twice: nothing changes */
	long long rows = tu_sql_int(&d, "SELECT count(*) FROM journal");
	int places = ms->places;
	ck_assert_int_eq(replicate(&s, &d, 0, &rep, err, sizeof err), 0);
	ck_assert_int_eq(rep.rows, 0);
	ck_assert_int_eq(rep.to_seq, head);
	ck_assert_int_eq(tu_sql_int(&d, "SELECT count(*) FROM journal"), rows);
	ck_assert_int_eq(ms->places, places);

	/* incremental: only what changed */
	sd_session *b = tu_session(&s, "bob");
	tu_put(&s, b, "/later.txt", "later", 5);
	ck_assert_int_eq(s.api->rename(b, "/same.txt", "/renamed.txt", 0), 0);
	ck_assert_int_eq(replicate(&s, &d, 0, &rep, err, sizeof err), 0);
	ck_assert_int_eq(rep.rows, 2);
	ck_assert_int_eq(rep.from_seq, head);
	ck_assert_int_eq(rep.blobs_copied, 1);
	same_trees(&s, &d, "bob");
	fsck_clean(&d);
	tu_core_close(&d);
	tu_core_close(&s);
}
END_TEST

/* A run stopped after any number of rows resumes exactly there: each row's
 * change and the new position are one transaction. */
START_TEST(test_replicate_resumes_row_by_row)
{
	tu_core s, d;
	tu_core_open(&s, 0);
	s.conf.auth_fail_delay = 0;
	char token[SD_TOKEN_MAX];
	busy_source(&s, token);
	open_copy(&d, NULL);
	int64_t head = tu_sql_int(&s, "SELECT max(seq) FROM journal");
	sd_replicate_report rep;
	char err[512];
	for (int64_t at = 0; at < head;) {
		int r = replicate(&s, &d, 1 + at % 3, &rep, err, sizeof err);
		ck_assert_msg(r == 0, "replicate: %s", err);
		ck_assert_int_eq(rep.from_seq, at);
		ck_assert_int_eq(rep.to_seq, at + rep.rows);
		at = rep.to_seq;
		ck_assert_int_eq(tu_sql_int(&d, "SELECT seq FROM replica"), at);
		fsck_clean(&d);
	}
	same_trees(&s, &d, "alice");
	same_trees(&s, &d, "bob");
	tu_core_close(&d);
	tu_core_close(&s);
}
END_TEST

/* A run killed between placing a content and its commit leaves a blob
 * without a row on the copy; the next run completes and fsck is clean. */
START_TEST(test_replicate_after_a_crash_leftover)
{
	tu_core s, d;
	tu_core_open(&s, 0);
	sd_session *u = tu_user(&s, "alice");
	tu_put(&s, u, "/a", "content A", 9);
	open_copy(&d, NULL);
	/* the crash leftover: the content is in the copy's store, no row */
	char sha[65];
	tu_sha_hex("content A", 9, sha);
	store_poke(&d, sha, "content A", 9);
	sd_replicate_report rep;
	char err[512];
	ck_assert_int_eq(replicate(&s, &d, 0, &rep, err, sizeof err), 0);
	same_trees(&s, &d, "alice");
	fsck_clean(&d);
	tu_core_close(&d);
	tu_core_close(&s);
}
END_TEST

START_TEST(test_replicate_refuses_what_it_cannot_trust)
{
	tu_core s, d;
	tu_core_open(&s, 0);
	sd_session *u = tu_user(&s, "alice");
	some_changes(&s, u);
	open_copy(&d, NULL);
	sd_replicate_report rep;
	char err[512];

	/* the same directory twice */
	ck_assert_int_eq(sd_core_replicate(s.c, s.c, 0, &rep, NULL, NULL, err, sizeof err), -EINVAL);

	/* an edited row stops the run before it; rows before it are applied */
	sql(&s, "UPDATE journal SET path='/docs/evil' WHERE seq=6");
	int r = replicate(&s, &d, 0, &rep, err, sizeof err);
	ck_assert_int_eq(r, -EBADMSG);
	ck_assert_msg(strstr(err, "seq 6"), "%s", err);
	ck_assert_int_eq(rep.to_seq, 5);
	ck_assert_int_eq(tu_sql_int(&d, "SELECT seq FROM replica"), 5);
	sd_stat st;
	sd_session *cu = tu_session(&d, "alice");
	ck_assert_int_eq(d.api->stat(cu, "/docs/a.txt", &st), 0);
	ck_assert_uint_eq(st.mode, 0600);

	/* the source's history at the copy's position rewritten (hashes and
	 * all, as a forger would): refused */
	sql(&s, "UPDATE journal SET detail='rewritten', hash=randomblob(32) WHERE seq=5");
	r = replicate(&s, &d, 0, &rep, err, sizeof err);
	ck_assert_int_eq(r, -ESTALE);
	ck_assert_msg(strstr(err, "row 5"), "%s", err);

	/* rows removed from the end of the source: refused */
	sql(&s, "DELETE FROM journal WHERE seq >= 5");
	r = replicate(&s, &d, 0, &rep, err, sizeof err);
	ck_assert_int_eq(r, -ESTALE);
	ck_assert_msg(strstr(err, "ends at seq 4"), "%s", err);

	/* a copy with users of its own that follows nobody: refused */
	tu_core e;
	open_copy(&e, NULL);
	tu_user(&e, "someone");
	r = replicate(&s, &e, 0, &rep, err, sizeof err);
	ck_assert_int_eq(r, -ENOTEMPTY);
	tu_core_close(&e);

	/* a copy that follows another server: refused */
	tu_core o;
	tu_core_open(&o, 0);
	tu_user(&o, "other");
	r = sd_core_replicate(o.c, d.c, 0, &rep, NULL, NULL, err, sizeof err);
	ck_assert_int_eq(r, -EXDEV);
	tu_core_close(&o);
	tu_core_close(&d);
	tu_core_close(&s);
}
END_TEST

START_TEST(test_replicate_stops_at_what_it_cannot_apply)
{
	tu_core s, d;
	tu_core_open(&s, 0);
	sd_session *u = tu_user(&s, "alice");
	tu_put(&s, u, "/a", "aaa", 3);
	tu_put(&s, u, "/b", "bbb", 3);
	open_copy(&d, NULL);
	sd_replicate_report rep;
	char err[512];
	/* content the source lost (its store damaged): the run stops there */
	char sha[65];
	tu_sha_hex("bbb", 3, sha);
	store_poke(&s, sha, NULL, 0);
	int r = replicate(&s, &d, 0, &rep, err, sizeof err);
	ck_assert_int_lt(r, 0);
	ck_assert_int_eq(rep.fail_seq, 3);
	ck_assert_int_eq(rep.to_seq, 2);
	ck_assert_msg(strstr(err, "missing or damaged on the source"), "%s", err);
	/* back in place: the run goes on from there */
	store_poke(&s, sha, "bbb", 3);
	ck_assert_int_eq(replicate(&s, &d, 0, &rep, err, sizeof err), 0);
	ck_assert_int_eq(rep.rows, 1);
	same_trees(&s, &d, "alice");

	/* an op this engine cannot replay stops the run, naming it; the
	 * chain is intact (written through the engine's own append) */
	sd_dbc *w = sd_db_write_begin(s.c->db);
	ck_assert_int_eq(sd__journal_row(w, 5, "alice", "teleport", "/a", NULL, NULL), 0);
	ck_assert_int_eq(sd_db_write_end(s.c->db, w, 1), 0);
	r = replicate(&s, &d, 0, &rep, err, sizeof err);
	ck_assert_int_eq(r, -ENOTSUP);
	ck_assert_msg(strstr(err, "'teleport' cannot be replayed"), "%s", err);
	ck_assert_int_eq(rep.fail_seq, 4);
	ck_assert_int_eq(tu_sql_int(&d, "SELECT seq FROM replica"), 3);
	tu_core_close(&d);
	tu_core_close(&s);
}
END_TEST

/* A copy changed by something else than replicate: the first row that
 * no longer applies stops the run, named. */
START_TEST(test_replicate_stops_on_a_diverged_copy)
{
	tu_core s, d;
	tu_core_open(&s, 0);
	sd_session *u = tu_user(&s, "alice");
	tu_put(&s, u, "/a", "aaa", 3);
	open_copy(&d, NULL);
	sd_replicate_report rep;
	char err[512];
	ck_assert_int_eq(replicate(&s, &d, 0, &rep, err, sizeof err), 0);
	sd_session *du = tu_session(&d, "alice");
	tu_put(&d, du, "/c", "a file where the source makes a folder", 38);
	ck_assert_int_eq(s.api->mkdir(u, "/c", 0755, 0), 0);
	ck_assert_int_eq(s.api->rename(u, "/a", "/c/a", 0), 0);
	int r = replicate(&s, &d, 0, &rep, err, sizeof err);
	ck_assert_int_lt(r, 0);
	ck_assert_int_eq(rep.fail_seq, 3);
	ck_assert_msg(strstr(err, "seq 3 (mkdir alice /c)"), "%s", err);
	ck_assert_int_eq(tu_sql_int(&d, "SELECT seq FROM replica"), 2);
	tu_core_close(&d);
	tu_core_close(&s);
}
END_TEST

/* A source upgraded from before migration 0002: its old rows, sealed with
 * args from their detail, replay too (modes and mtimes those rows never
 * held are the defaults; keys and tokens are copied from the source). */
START_TEST(test_replicate_rows_from_before_the_migration)
{
	tu_core s, d;
	tu_core_open(&s, 0);
	char token[SD_TOKEN_MAX];
	busy_source(&s, token);
	tu_core_shut(&s);
	sql(&s, "UPDATE journal SET args=NULL, prev=NULL, hash=NULL; "
		"UPDATE meta SET value='0' WHERE key='journal_sealed'");
	tu_core_reopen(&s, 0);
	open_copy(&d, NULL);
	sd_replicate_report rep;
	char err[512];
	int r = replicate(&s, &d, 0, &rep, err, sizeof err);
	ck_assert_msg(r == 0, "replicate: %s", err);
	same_trees_as(&s, &d, "alice", 0);
	same_trees_as(&s, &d, "bob", 0);
	sd_session *x = NULL;
	ck_assert_int_eq(d.api->auth_token(d.c, token, "::1", "http", &x), 0);
	d.api->session_close(x);
	ck_assert_int_eq(tu_sql_int(&d, "SELECT count(*) FROM tokens WHERE revoked = 1"), 1);
	ck_assert_int_eq(tu_sql_int(&d, "SELECT count(*) FROM keys"), 1);
	ck_assert_int_eq(tu_sql_int(&d, "SELECT quota_bytes FROM users WHERE name='bob'"), 2 << 20);
	fsck_clean(&d);
	tu_core_close(&d);
	tu_core_close(&s);
}
END_TEST

/* A copy of the source's data directory (taken while it was stopped)
 * follows it from there, also when the source pruned its journal. */
START_TEST(test_replicate_from_a_copy_of_the_directory)
{
	tu_core s, d;
	tu_core_open(&s, 0);
	now_ms = 1800000000000;
	sd__core_set_clock(s.c, clk, NULL);
	sd_session *u = tu_user(&s, "alice");
	some_changes(&s, u);
	now_ms += 400 * DAY;
	tu_put(&s, u, "/new", "new", 3);
	sd_gc_report g;
	ck_assert_int_eq(s.api->gc_run(s.c, 0, &g), 0);
	ck_assert_int_eq(g.journal_pruned, 10);
	/* a new, empty copy cannot start from a pruned journal */
	open_copy(&d, NULL);
	sd_replicate_report rep;
	char err[512];
	ck_assert_int_eq(replicate(&s, &d, 0, &rep, err, sizeof err), -ESTALE);
	ck_assert_msg(strstr(err, "pruned rows 1..10"), "%s", err);
	tu_core_close(&d);
	/* seeded with a copy of the directory, it follows */
	tu_core_shut(&s);
	tu_core_prepare(&d);
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "cp -a '%s/.' '%s/'", s.dir, d.dir);
	ck_assert_int_eq(system(cmd), 0);
	tu_core_reopen(&s, 0);
	tu_core_reopen(&d, 0);
	sd__core_set_clock(s.c, clk, NULL);
	u = tu_session(&s, "alice");
	tu_put(&s, u, "/newer", "newer", 5);
	ck_assert_int_eq(s.api->unlink(u, "/c.txt", 0), 0);
	int r = replicate(&s, &d, 0, &rep, err, sizeof err);
	ck_assert_msg(r == 0, "replicate: %s", err);
	ck_assert_int_eq(rep.from_seq, 11);
	ck_assert_int_eq(rep.rows, 2);
	same_trees(&s, &d, "alice");
	/* the copy has a store id of its own now */
	char a[SD_STORE_ID_MAX], b[SD_STORE_ID_MAX];
	ck_assert_int_eq(sd_core_store_id(s.c, a), 0);
	ck_assert_int_eq(sd_core_store_id(d.c, b), 0);
	ck_assert_str_ne(a, b);
	ck_assert_int_eq(replicate(&s, &d, 0, &rep, err, sizeof err), 0);
	ck_assert_int_eq(rep.rows, 0);
	tu_core_close(&d);
	tu_core_close(&s);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("journal");
	TCase *tc = tcase_create("chain");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_chain_matches_spec);
	tcase_add_test(tc, test_verify_names_the_tampered_row);
	tcase_add_test(tc, test_writes_go_on_after_tampering);
	tcase_add_test(tc, test_journal_failure_fails_the_change);
	tcase_add_test(tc, test_pruning_moves_the_anchor);
	tcase_add_test(tc, test_rows_before_the_migration_are_sealed);
	suite_add_tcase(s, tc);
	tc = tcase_create("replicate");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_replicate_copies_everything);
	tcase_add_test(tc, test_replicate_resumes_row_by_row);
	tcase_add_test(tc, test_replicate_after_a_crash_leftover);
	tcase_add_test(tc, test_replicate_refuses_what_it_cannot_trust);
	tcase_add_test(tc, test_replicate_stops_at_what_it_cannot_apply);
	tcase_add_test(tc, test_replicate_stops_on_a_diverged_copy);
	tcase_add_test(tc, test_replicate_from_a_copy_of_the_directory);
	tcase_add_test(tc, test_replicate_rows_from_before_the_migration);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
