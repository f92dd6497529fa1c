/*
 * team.c - teams: groups and their members, shared folders, and the rights
 * rules that say who may do what in them; the administration of all four,
 * and the per-user snapshot of them that every lookup consults (tree.c's
 * views).
 *
 * Design notes
 * ------------
 * A SHARED FOLDER is a tree like a user's, owned by an account of its own:
 * a users row named "~share:<name>" without credentials (disabled, never
 * listed, never a login: '~' is never in a user name). So everything the
 * engine keeps per owner of a tree works for it unchanged: nodes.owner,
 * used_bytes and quota_bytes (the folder's own quota, I4), placements and
 * tree_changes (its history), the trash. It is MOUNTED at "/<name>" in the
 * view of every user that one of its rules names (or a group of theirs):
 * the one resolver turns "/team/a/b" of alice's view into "/a/b" of the
 * folder's tree (tree.c sd__view_*), and the same path means the same node
 * for every member.
 *
 * RULES: (node, user or group, rights). Rights are a mask of SD_RIGHT_*
 * (list, read, write, delete, rename, share). A rule is on a node of the
 * folder and covers it and what is below it, until a deeper rule. Rules
 * name nodes, not paths, so a renamed folder keeps its rules.
 *
 * Invariants
 *  T1. A shared folder's nodes are owned by its account; usage, quota,
 *      placements and tree_changes of a change in it are the account's, in
 *      the change's transaction (I4 holds per owner of a tree).
 *  T2. User U sees shared folder S (at "/<S.name>", hiding an own node of
 *      that name at U's root) iff a rule of S names U or a group U is in.
 *  T3. Every transaction that changes groups, members, shares or rules
 *      (also user_delete) bumps team_gen. A view reads team_gen in the
 *      transaction of its lookup and uses a snapshot of exactly that
 *      generation (sd__team_get), so a check never uses rules older than
 *      the rows it checks: a member removed is refused at their next call,
 *      on sessions already open too, from any process.
 *  T4. U's rights at node N of S: the rules of the deepest node on the
 *      path from S's root to N (N included) that has a rule naming U or a
 *      group of U's; there, U's own rule if it has one, else the union of
 *      its groups' rules. No such node: no rights. In U's own tree: all.
 *  T5. A node with rules never leaves its shared folder: moving a folder
 *      that holds a rule node to another tree is refused (tree.c), so
 *      rules never apply outside their folder, and no own tree holds one.
 *  T6. Seeing: a node of S is visible to U iff it is S's root, a rule on
 *      it names U (or a group of U's), U may list its folder, or U may read
 *      it. What U may not see is -ENOENT; what U sees but may not do is
 *      -EACCES.
 *  T7. Rights are checked where the change is made, in its transaction
 *      (tree.c, history.c, link.c), so every protocol, storagectl and a
 *      replica's replay get the same answer.
 *  T8. The snapshot cache holds at most TEAM_CACHE users; a snapshot is
 *      immutable and reference counted, so a lookup never sees one change
 *      under it.
 *
 * What each call needs (checked in tree.c and history.c): stat and chdir:
 * visible; readdir: list (entries whose own rule gives U nothing are left
 * out); open_read, versions, copy's source, a handle opened for reading:
 * read; an upload, mkdir, chmod, set_mtime, copy's target, a handle
 * opened for writing, version_restore: write (where the node is, or would
 * be); unlink and rmdir: delete (recursive: on every rule node below too);
 * rename: rename at the source and write at the target (delete to replace
 * a folder); rollback: write and delete at the path and every rule node in
 * it; link_create: share.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "log.h"

#define TEAM_CACHE 64
#define ACCOUNT_PREFIX "~share:"
#define USER_RULE 0x100u /* in a snapshot: the value came from the user's own rule */

struct sd_team {
	int64_t uid, gen;
	atomic_int refs;
	uint64_t stamp; /* LRU, under team_lock */
	int nm;
	sd_mount *m;    /* by name */
	size_t cap, n;  /* open addressing: rule node -> rights (| USER_RULE) */
	int64_t *keys;
	unsigned *vals;
};

struct sd_teamcache {
	pthread_mutex_t lock;
	sd_team *slot[TEAM_CACHE];
	uint64_t clock;
};

int sd__team_init(sd_core *c)
{
	c->teams = sd_xcalloc(1, sizeof *c->teams);
	pthread_mutex_init(&c->teams->lock, NULL);
	return 0;
}

static void team_free(sd_team *t)
{
	free(t->m);
	free(t->keys);
	free(t->vals);
	free(t);
}

void sd__team_put(sd_team *t)
{
	if (t && atomic_fetch_sub(&t->refs, 1) == 1)
		team_free(t);
}

void sd__team_free_all(sd_core *c)
{
	if (!c->teams)
		return;
	for (int i = 0; i < TEAM_CACHE; i++)
		sd__team_put(c->teams->slot[i]);
	pthread_mutex_destroy(&c->teams->lock);
	free(c->teams);
	c->teams = NULL;
}

/* ------------------------------------------------------------ snapshots */

static size_t slot_of(const sd_team *t, int64_t node)
{
	return (size_t)((uint64_t)node * 0x9E3779B97F4A7C15ull) & (t->cap - 1);
}

static void rule_put(sd_team *t, int64_t node, unsigned rights, int user)
{
	if ((t->n + 1) * 2 > t->cap) {
		sd_team old = *t;
		t->cap = t->cap ? t->cap * 2 : 16;
		t->keys = sd_xcalloc(t->cap, sizeof *t->keys);
		t->vals = sd_xcalloc(t->cap, sizeof *t->vals);
		t->n = 0;
		for (size_t i = 0; i < old.cap; i++)
			if (old.keys[i]) {
				size_t j = slot_of(t, old.keys[i]);
				while (t->keys[j])
					j = (j + 1) & (t->cap - 1);
				t->keys[j] = old.keys[i];
				t->vals[j] = old.vals[i];
				t->n++;
			}
		free(old.keys);
		free(old.vals);
	}
	size_t i = slot_of(t, node);
	while (t->keys[i] && t->keys[i] != node)
		i = (i + 1) & (t->cap - 1);
	unsigned v = (rights & SD_RIGHTS_ALL) | (user ? USER_RULE : 0);
	if (!t->keys[i]) {
		t->keys[i] = node;
		t->vals[i] = v;
		t->n++;
	} else if (user) {
		t->vals[i] = v; /* T4: the user's own rule wins */
	} else if (!(t->vals[i] & USER_RULE)) {
		t->vals[i] |= v; /* groups add up */
	}
}

int sd__team_rule(const sd_team *t, int64_t node, unsigned *rights)
{
	if (!t || !t->cap)
		return 0;
	size_t i = slot_of(t, node);
	while (t->keys[i]) {
		if (t->keys[i] == node) {
			*rights = t->vals[i] & SD_RIGHTS_ALL;
			return 1;
		}
		i = (i + 1) & (t->cap - 1);
	}
	return 0;
}

int sd__team_rule_iter(const sd_team *t, size_t *i, int64_t *node, unsigned *rights)
{
	if (!t)
		return 0;
	while (*i < t->cap) {
		size_t k = (*i)++;
		if (t->keys[k]) {
			*node = t->keys[k];
			*rights = t->vals[k] & SD_RIGHTS_ALL;
			return 1;
		}
	}
	return 0;
}

const sd_mount *sd__team_mount(const sd_team *t, const char *name, size_t len)
{
	if (!t)
		return NULL;
	for (int i = 0; i < t->nm; i++)
		if (strlen(t->m[i].name) == len && memcmp(t->m[i].name, name, len) == 0)
			return &t->m[i];
	return NULL;
}

const sd_mount *sd__team_mount_root(const sd_team *t, int64_t root)
{
	if (!t)
		return NULL;
	for (int i = 0; i < t->nm; i++)
		if (t->m[i].root == root)
			return &t->m[i];
	return NULL;
}

int sd__team_mounts(const sd_team *t, const sd_mount **out)
{
	if (!t) {
		*out = NULL;
		return 0;
	}
	*out = t->m;
	return t->nm;
}

SD_SQL(q_mounts, "SELECT s.id, s.account, u.root, s.name, s.created FROM shares s "
		 "JOIN users u ON u.id = s.account WHERE s.id IN (SELECT r.share FROM share_rules r "
		 "WHERE r.user = ?1 UNION SELECT r.share FROM share_rules r JOIN members m "
		 "ON m.grp = r.grp WHERE m.user = ?1) ORDER BY s.name");
SD_SQL(q_rules_of, "SELECT r.node, r.rights, 1, r.share FROM share_rules r WHERE r.user = ?1 "
		   "UNION ALL SELECT r.node, r.rights, 0, r.share FROM share_rules r JOIN members m "
		   "ON m.grp = r.grp WHERE m.user = ?1");

static sd_team *team_load(sd_dbc *d, int64_t uid, int64_t gen)
{
	sd_team *t = sd_xcalloc(1, sizeof *t);
	t->uid = uid;
	t->gen = gen;
	atomic_init(&t->refs, 1);
	sqlite3_stmt *st = sd_db_stmt(d, &q_mounts);
	sqlite3_bind_int64(st, 1, uid);
	int cap = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (t->nm == cap) {
			cap = cap ? cap * 2 : 4;
			t->m = sd_xrealloc(t->m, (size_t)cap * sizeof *t->m);
		}
		sd_mount *m = &t->m[t->nm++];
		memset(m, 0, sizeof *m);
		m->share = sqlite3_column_int64(st, 0);
		m->account = sqlite3_column_int64(st, 1);
		m->root = sqlite3_column_int64(st, 2);
		snprintf(m->name, sizeof m->name, "%s", (const char *)sqlite3_column_text(st, 3));
		m->created = sqlite3_column_int64(st, 4);
	}
	sqlite3_reset(st);
	if (t->nm == 0)
		return t; /* no rule names the user: nothing else to load */
	struct {
		int64_t node, share;
	} *rows = NULL;
	size_t nr = 0, rcap = 0;
	st = sd_db_stmt(d, &q_rules_of);
	sqlite3_bind_int64(st, 1, uid);
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (nr == rcap) {
			rcap = rcap ? rcap * 2 : 16;
			rows = sd_xrealloc(rows, rcap * sizeof *rows);
		}
		rows[nr].node = sqlite3_column_int64(st, 0);
		rows[nr].share = sqlite3_column_int64(st, 3);
		nr++;
		rule_put(t, sqlite3_column_int64(st, 0), (unsigned)sqlite3_column_int(st, 1),
			 sqlite3_column_int(st, 2));
	}
	sqlite3_reset(st);
	/* T2: mounted where some node gives the user something (a user's own
	 * "none" over a group's rule leaves the folder out) */
	int keep = 0;
	for (int i = 0; i < t->nm; i++) {
		int any = 0;
		for (size_t k = 0; k < nr && !any; k++) {
			unsigned rr;
			any = rows[k].share == t->m[i].share && sd__team_rule(t, rows[k].node, &rr) && rr;
		}
		if (any)
			t->m[keep++] = t->m[i];
	}
	t->nm = keep;
	free(rows);
	return t;
}

int sd__team_get(sd_core *c, sd_dbc *d, int64_t uid, int64_t gen, sd_team **out)
{
	struct sd_teamcache *tc = c->teams;
	pthread_mutex_lock(&tc->lock);
	for (int i = 0; i < TEAM_CACHE; i++) {
		sd_team *t = tc->slot[i];
		if (t && t->uid == uid && t->gen == gen) {
			atomic_fetch_add(&t->refs, 1);
			t->stamp = ++tc->clock;
			pthread_mutex_unlock(&tc->lock);
			*out = t;
			return 0;
		}
	}
	pthread_mutex_unlock(&tc->lock);
	sd_team *t = team_load(d, uid, gen);
	pthread_mutex_lock(&tc->lock);
	int victim = 0;
	for (int i = 0; i < TEAM_CACHE; i++) {
		sd_team *o = tc->slot[i];
		if (!o || o->uid == uid) { /* a free slot, or this user's older one */
			victim = i;
			break;
		}
		if (o->stamp < tc->slot[victim]->stamp)
			victim = i;
	}
	sd_team *old = tc->slot[victim];
	if (old && old->uid == uid && old->gen > gen) {
		/* another thread installed a newer one meanwhile: keep it */
		pthread_mutex_unlock(&tc->lock);
		*out = t;
		return 0;
	}
	tc->slot[victim] = t;
	t->stamp = ++tc->clock;
	atomic_fetch_add(&t->refs, 1); /* the cache's and the caller's */
	pthread_mutex_unlock(&tc->lock);
	sd__team_put(old);
	*out = t;
	return 0;
}

/* ------------------------------------------------------------ names */

int sd__team_valid_name(const char *n)
{
	size_t len = n ? strlen(n) : 0;
	if (len == 0 || len > SD_USERNAME_MAX || n[0] == '.' || n[0] == '-')
		return 0;
	for (size_t i = 0; i < len; i++) {
		char ch = n[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '.' || ch == '_' || ch == '-' || ch == '@'))
			return 0;
	}
	return 1;
}

void sd__team_rights_text(unsigned r, char *out, size_t outlen)
{
	static const char *names[] = {"list", "read", "write", "delete", "rename", "share"};
	size_t o = 0;
	out[0] = '\0';
	for (int i = 0; i < 6; i++)
		if (r & (1u << i)) {
			int w = snprintf(out + o, outlen - o, "%s%s", o ? "," : "", names[i]);
			if (w < 0 || (size_t)w >= outlen - o)
				break;
			o += (size_t)w;
		}
	if (!o)
		snprintf(out, outlen, "none");
}

/* ------------------------------------------------------------ administration */

SD_SQL(q_gen_bump, "UPDATE team_gen SET gen = gen + 1 WHERE id = 1");
SD_SQL(q_group_id, "SELECT id FROM groups WHERE name = ?1");
SD_SQL(q_person_id, "SELECT id FROM users WHERE name = ?1 AND substr(name, 1, 1) != '~'");
SD_SQL(q_share_by_name, "SELECT s.id, s.account, u.root FROM shares s JOIN users u "
			"ON u.id = s.account WHERE s.name = ?1");

/* Bump team_gen in the caller's transaction (T3). */
static int gen_bump(sd_core *c, sd_dbc *d)
{
	(void)c;
	return sd_db_exec_stmt(sd_db_stmt(d, &q_gen_bump));
}

/* After a committed change: views of this process look again at once
 * (handles use it; lookups read team_gen themselves). */
static void changed(sd_core *c)
{
	atomic_fetch_add(&c->team_mem_gen, 1);
}

static int id_by(sd_dbc *d, sd_sql *q, const char *name, int64_t *id)
{
	sqlite3_stmt *st = sd_db_stmt(d, q);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int r = -ENOENT;
	if (sqlite3_step(st) == SQLITE_ROW) {
		*id = sqlite3_column_int64(st, 0);
		r = 0;
	}
	sqlite3_reset(st);
	return r;
}

typedef struct share_row {
	int64_t id, account, root;
} share_row;

static int share_by_name(sd_dbc *d, const char *name, share_row *s)
{
	sqlite3_stmt *st = sd_db_stmt(d, &q_share_by_name);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int r = -ENOENT;
	if (sqlite3_step(st) == SQLITE_ROW) {
		s->id = sqlite3_column_int64(st, 0);
		s->account = sqlite3_column_int64(st, 1);
		s->root = sqlite3_column_int64(st, 2);
		r = 0;
	}
	sqlite3_reset(st);
	return r;
}

/* End a write transaction; on success bump the in-process generation. */
static int wend(sd_core *c, sd_dbc *d, int r)
{
	int cr = sd_db_write_end(c->db, d, r == 0);
	if (r == 0 && cr == 0)
		changed(c);
	return r ? r : cr;
}

SD_SQL(q_group_insert, "INSERT INTO groups(name, created) VALUES (?1, ?2)");

int sd__group_add(sd_core *c, const char *name)
{
	if (!sd__team_valid_name(name))
		return -EINVAL;
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	int64_t now = sd__now_ms(c), id;
	int r = id_by(d, &q_group_id, name, &id) == 0 ? -EEXIST : 0;
	if (r == 0) {
		sqlite3_stmt *st = sd_db_stmt(d, &q_group_insert);
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, now);
		r = sd_db_exec_stmt(st);
	}
	if (r == 0)
		r = gen_bump(c, d);
	if (r == 0) {
		sd_buf args = SD_BUF_INIT, det = SD_BUF_INIT;
		sd__jargs_str(&args, "group", name);
		sd_buf_printf(&det, "group=%s", name);
		r = sd__journal_args(d, now, NULL, "group_add", NULL, det.data, &args);
		sd_buf_free(&det);
	}
	return wend(c, d, r);
}

SD_SQL(q_group_rules_del, "DELETE FROM share_rules WHERE grp = ?1");
SD_SQL(q_group_members_del, "DELETE FROM members WHERE grp = ?1");
SD_SQL(q_group_del, "DELETE FROM groups WHERE id = ?1");

static int exec_id(sd_dbc *d, sd_sql *q, int64_t id)
{
	sqlite3_stmt *st = sd_db_stmt(d, q);
	sqlite3_bind_int64(st, 1, id);
	return sd_db_exec_stmt(st);
}

int sd__group_delete(sd_core *c, const char *name)
{
	if (!name)
		return -EINVAL;
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	int64_t id = 0;
	int r = id_by(d, &q_group_id, name, &id);
	if (r == 0)
		r = exec_id(d, &q_group_rules_del, id);
	if (r == 0)
		r = exec_id(d, &q_group_members_del, id);
	if (r == 0)
		r = exec_id(d, &q_group_del, id);
	if (r == 0)
		r = gen_bump(c, d);
	if (r == 0) {
		sd_buf args = SD_BUF_INIT, det = SD_BUF_INIT;
		sd__jargs_str(&args, "group", name);
		sd_buf_printf(&det, "group=%s", name);
		r = sd__journal_args(d, sd__now_ms(c), NULL, "group_del", NULL, det.data, &args);
		sd_buf_free(&det);
	}
	return wend(c, d, r);
}

SD_SQL(q_member_insert, "INSERT OR IGNORE INTO members(grp, user) VALUES (?1, ?2)");
SD_SQL(q_member_delete, "DELETE FROM members WHERE grp = ?1 AND user = ?2");

static int member_change(sd_core *c, const char *group, const char *user, int add)
{
	if (!group || !user)
		return -EINVAL;
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	int64_t gid = 0, uid = 0;
	int r = id_by(d, &q_group_id, group, &gid);
	if (r == 0)
		r = id_by(d, &q_person_id, user, &uid);
	if (r == 0) {
		sqlite3_stmt *st = sd_db_stmt(d, add ? &q_member_insert : &q_member_delete);
		sqlite3_bind_int64(st, 1, gid);
		sqlite3_bind_int64(st, 2, uid);
		r = sd_db_exec_stmt(st);
		if (r == 0 && sqlite3_changes(sd_db_handle(d)) == 0)
			r = add ? -EEXIST : -ENOENT;
	}
	if (r == 0)
		r = gen_bump(c, d);
	if (r == 0) {
		sd_buf args = SD_BUF_INIT, det = SD_BUF_INIT;
		sd__jargs_str(&args, "group", group);
		sd__jargs_str(&args, "user", user);
		sd_buf_printf(&det, "group=%s user=%s", group, user);
		r = sd__journal_args(d, sd__now_ms(c), NULL, add ? "member_add" : "member_rm", NULL,
				     det.data, &args);
		sd_buf_free(&det);
	}
	return wend(c, d, r);
}

int sd__group_member_add(sd_core *c, const char *group, const char *user)
{
	return member_change(c, group, user, 1);
}

int sd__group_member_remove(sd_core *c, const char *group, const char *user)
{
	return member_change(c, group, user, 0);
}

SD_SQL(q_groups, "SELECT id, name, created FROM groups WHERE ?1 IS NULL OR name = ?1 ORDER BY name");
SD_SQL(q_group_members, "SELECT u.name FROM members m JOIN users u ON u.id = m.user "
			"WHERE m.grp = ?1 ORDER BY u.name");

int sd__group_list(sd_core *c, const char *name, sd_group_cb cb, void *arg)
{
	/* collect first: the callback may call the engine */
	typedef struct gent {
		sd_group g;
		char **names;
	} gent;
	gent *v = NULL;
	int n = 0, cap = 0;
	sd_dbc *d = sd_db_read_begin(c->db);
	sqlite3_stmt *st = sd_db_stmt(d, &q_groups);
	if (name)
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			v = sd_xrealloc(v, (size_t)cap * sizeof *v);
		}
		gent *e = &v[n++];
		memset(e, 0, sizeof *e);
		e->g.id = sqlite3_column_int64(st, 0);
		snprintf(e->g.name, sizeof e->g.name, "%s", (const char *)sqlite3_column_text(st, 1));
		e->g.created = sqlite3_column_int64(st, 2) / 1000;
	}
	sqlite3_reset(st);
	for (int i = 0; i < n; i++) {
		int mc = 0;
		st = sd_db_stmt(d, &q_group_members);
		sqlite3_bind_int64(st, 1, v[i].g.id);
		while (sqlite3_step(st) == SQLITE_ROW) {
			if (v[i].g.nmembers == mc) {
				mc = mc ? mc * 2 : 8;
				v[i].names = sd_xrealloc(v[i].names, (size_t)mc * sizeof *v[i].names);
			}
			v[i].names[v[i].g.nmembers++] = sd_xstrdup((const char *)sqlite3_column_text(st, 0));
		}
		sqlite3_reset(st);
		v[i].g.members = (const char *const *)v[i].names;
	}
	sd_db_read_end(c->db, d);
	int delivered = 0, stop = 0;
	for (int i = 0; i < n; i++) {
		if (!stop) {
			delivered++;
			if (cb && cb(arg, &v[i].g))
				stop = 1;
		}
		for (int k = 0; k < v[i].g.nmembers; k++)
			free(v[i].names[k]);
		free(v[i].names);
	}
	free(v);
	if (name && n == 0)
		return -ENOENT;
	return delivered;
}

/* ------------------------------------------------------------ shared folders */

SD_SQL(q_share_id, "SELECT id FROM shares WHERE name = ?1");
SD_SQL(q_account_insert, "INSERT INTO users(name, pwhash, quota_bytes, admin, disabled, created) "
			 "VALUES (?1, NULL, ?2, 0, 1, ?3)");
SD_SQL(q_account_root, "INSERT INTO nodes(owner, parent, name, kind, size, mode, mtime, ctime) "
		       "VALUES (?1, NULL, '', 2, 0, 493, ?2, ?2)");
SD_SQL(q_account_set_root, "UPDATE users SET root = ?2 WHERE id = ?1");
SD_SQL(q_share_insert, "INSERT INTO shares(name, account, created) VALUES (?1, ?2, ?3)");
SD_SQL(q_name_taken, "SELECT 1 FROM users WHERE name = ?1");

int sd__share_create(sd_core *c, const char *name, int64_t quota, int64_t *id)
{
	if (!sd__team_valid_name(name) || quota < 0)
		return -EINVAL;
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	int64_t now = sd__now_ms(c), sid = 0, account = 0, root = 0;
	char acct[SD_USERNAME_MAX + sizeof ACCOUNT_PREFIX];
	snprintf(acct, sizeof acct, ACCOUNT_PREFIX "%s", name);
	int r = id_by(d, &q_share_id, name, &sid) == 0 || id_by(d, &q_name_taken, acct, &sid) == 0
		    ? -EEXIST
		    : 0;
	sqlite3_stmt *st;
	if (r == 0) {
		st = sd_db_stmt(d, &q_account_insert);
		sqlite3_bind_text(st, 1, acct, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, quota);
		sqlite3_bind_int64(st, 3, now);
		r = sd_db_exec_stmt(st);
		account = sqlite3_last_insert_rowid(sd_db_handle(d));
	}
	if (r == 0) {
		st = sd_db_stmt(d, &q_account_root);
		sqlite3_bind_int64(st, 1, account);
		sqlite3_bind_int64(st, 2, now / 1000);
		r = sd_db_exec_stmt(st);
		root = sqlite3_last_insert_rowid(sd_db_handle(d));
	}
	if (r == 0) {
		st = sd_db_stmt(d, &q_account_set_root);
		sqlite3_bind_int64(st, 1, account);
		sqlite3_bind_int64(st, 2, root);
		r = sd_db_exec_stmt(st);
	}
	if (r == 0) {
		st = sd_db_stmt(d, &q_share_insert);
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, account);
		sqlite3_bind_int64(st, 3, now);
		r = sd_db_exec_stmt(st);
		sid = sqlite3_last_insert_rowid(sd_db_handle(d));
	}
	if (r == 0)
		r = sd__tree_changed(d, account, now);
	if (r == 0)
		r = gen_bump(c, d);
	if (r == 0) {
		sd_buf args = SD_BUF_INIT, det = SD_BUF_INIT;
		sd__jargs_str(&args, "share", name);
		sd__jargs_int(&args, "quota", quota);
		sd_buf_printf(&det, "share=%s quota=%lld", name, (long long)quota);
		r = sd__journal_args(d, now, NULL, "share_create", "/", det.data, &args);
		sd_buf_free(&det);
	}
	r = wend(c, d, r);
	if (r == 0 && id)
		*id = sid;
	return r;
}

SD_SQL(q_share_nodes_del, "UPDATE nodes SET deleted_at = ?2 WHERE owner = ?1 AND deleted_at IS NULL");
SD_SQL(q_share_places_del, "UPDATE placements SET t_to = max(t_from, ?2) WHERE owner = ?1 "
			   "AND t_to IS NULL");
SD_SQL(q_share_rules_del, "DELETE FROM share_rules WHERE share = ?1");
SD_SQL(q_share_links_del, "DELETE FROM links WHERE node IN (SELECT id FROM nodes WHERE owner = ?1)");
SD_SQL(q_share_row_del, "DELETE FROM shares WHERE id = ?1");
SD_SQL(q_account_retire, "UPDATE users SET name = '~deleted-' || id, used_bytes = 0 WHERE id = ?1");

int sd__share_delete(sd_core *c, const char *name)
{
	if (!name)
		return -EINVAL;
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	int64_t now = sd__now_ms(c);
	share_row s;
	int r = share_by_name(d, name, &s);
	sqlite3_stmt *st;
	if (r == 0) {
		st = sd_db_stmt(d, &q_share_nodes_del);
		sqlite3_bind_int64(st, 1, s.account);
		sqlite3_bind_int64(st, 2, now);
		r = sd_db_exec_stmt(st);
	}
	if (r == 0) {
		st = sd_db_stmt(d, &q_share_places_del);
		sqlite3_bind_int64(st, 1, s.account);
		sqlite3_bind_int64(st, 2, now);
		r = sd_db_exec_stmt(st);
	}
	if (r == 0)
		r = exec_id(d, &q_share_rules_del, s.id);
	if (r == 0)
		r = exec_id(d, &q_share_links_del, s.account);
	if (r == 0)
		r = exec_id(d, &q_share_row_del, s.id);
	if (r == 0) /* the cleaner removes the row once its files are purged */
		r = exec_id(d, &q_account_retire, s.account);
	if (r == 0)
		r = gen_bump(c, d);
	if (r == 0) {
		sd_buf args = SD_BUF_INIT, det = SD_BUF_INIT;
		sd__jargs_str(&args, "share", name);
		sd_buf_printf(&det, "share=%s", name);
		r = sd__journal_args(d, now, NULL, "share_delete", NULL, det.data, &args);
		sd_buf_free(&det);
	}
	return wend(c, d, r);
}

SD_SQL(q_share_quota, "UPDATE users SET quota_bytes = ?2 WHERE id = ?1");

int sd__share_set_quota(sd_core *c, const char *name, int64_t quota)
{
	if (!name || quota < 0)
		return -EINVAL;
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	share_row s;
	int r = share_by_name(d, name, &s);
	if (r == 0) {
		sqlite3_stmt *st = sd_db_stmt(d, &q_share_quota);
		sqlite3_bind_int64(st, 1, s.account);
		sqlite3_bind_int64(st, 2, quota);
		r = sd_db_exec_stmt(st);
	}
	if (r == 0) {
		sd_buf args = SD_BUF_INIT, det = SD_BUF_INIT;
		sd__jargs_str(&args, "share", name);
		sd__jargs_int(&args, "quota", quota);
		sd_buf_printf(&det, "share=%s quota=%lld", name, (long long)quota);
		r = sd__journal_args(d, sd__now_ms(c), NULL, "share_quota", NULL, det.data, &args);
		sd_buf_free(&det);
	}
	return wend(c, d, r);
}

/* The principal a rule names: -ENOENT for an unknown user or group,
 * -EINVAL unless exactly one is given. */
static int rule_who(sd_dbc *d, const char *user, const char *group, int64_t *uid, int64_t *gid)
{
	*uid = *gid = 0;
	if ((user && *user) == (group && *group))
		return -EINVAL;
	return user && *user ? id_by(d, &q_person_id, user, uid) : id_by(d, &q_group_id, group, gid);
}

SD_SQL(q_rule_del_user, "DELETE FROM share_rules WHERE node = ?1 AND user = ?2");
SD_SQL(q_rule_del_group, "DELETE FROM share_rules WHERE node = ?1 AND grp = ?2");
SD_SQL(q_rule_insert, "INSERT INTO share_rules(share, node, user, grp, rights) VALUES (?1, ?2, ?3, ?4, ?5)");

static int rule_change(sd_core *c, const char *share, const char *path, const char *user,
		       const char *group, unsigned rights, int grant)
{
	if (!share || !path || (rights & ~SD_RIGHTS_ALL))
		return -EINVAL;
	char np[SD_PATH_MAX + 1];
	int r = sd__path_norm(path, np, sizeof np);
	if (r < 0)
		return r;
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	int64_t now = sd__now_ms(c), uid = 0, gid = 0;
	share_row s;
	sd_node n;
	r = share_by_name(d, share, &s);
	if (r == 0)
		r = rule_who(d, user, group, &uid, &gid);
	if (r == 0)
		r = grant ? sd__tree_walk_from(d, s.root, np, 1, now, NULL, &n)
			  : sd__tree_walk_from(d, s.root, np, 0, now, NULL, &n);
	if (r == 0) {
		sqlite3_stmt *st = sd_db_stmt(d, uid ? &q_rule_del_user : &q_rule_del_group);
		sqlite3_bind_int64(st, 1, n.id);
		sqlite3_bind_int64(st, 2, uid ? uid : gid);
		r = sd_db_exec_stmt(st);
		if (r == 0 && !grant && sqlite3_changes(sd_db_handle(d)) == 0)
			r = -ENOENT;
	}
	if (r == 0 && grant) {
		sqlite3_stmt *st = sd_db_stmt(d, &q_rule_insert);
		sqlite3_bind_int64(st, 1, s.id);
		sqlite3_bind_int64(st, 2, n.id);
		if (uid)
			sqlite3_bind_int64(st, 3, uid);
		else
			sqlite3_bind_null(st, 3);
		if (gid)
			sqlite3_bind_int64(st, 4, gid);
		else
			sqlite3_bind_null(st, 4);
		sqlite3_bind_int(st, 5, (int)rights);
		r = sd_db_exec_stmt(st);
	}
	if (r == 0)
		r = gen_bump(c, d);
	if (r == 0) {
		char rt[64];
		sd__team_rights_text(rights, rt, sizeof rt);
		sd_buf args = SD_BUF_INIT, det = SD_BUF_INIT;
		sd__jargs_str(&args, "share", share);
		sd__jargs_str(&args, "path", np);
		sd__jargs_str(&args, uid ? "user" : "group", uid ? user : group);
		if (grant)
			sd__jargs_int(&args, "rights", rights);
		sd_buf_printf(&det, "share=%s %s=%s", share, uid ? "user" : "group", uid ? user : group);
		if (grant)
			sd_buf_printf(&det, " rights=%s", rt);
		r = sd__journal_args(d, now, NULL, grant ? "share_grant" : "share_revoke", np, det.data,
				     &args);
		sd_buf_free(&det);
	}
	return wend(c, d, r);
}

int sd__share_grant(sd_core *c, const char *share, const char *path, const char *user,
		    const char *group, unsigned rights)
{
	return rule_change(c, share, path, user, group, rights, 1);
}

int sd__share_revoke(sd_core *c, const char *share, const char *path, const char *user,
		     const char *group)
{
	return rule_change(c, share, path, user, group, 0, 0);
}

SD_SQL(q_shares, "SELECT s.id, s.name, u.quota_bytes, u.used_bytes, s.created, "
		 "(SELECT count(*) FROM share_rules r WHERE r.share = s.id) FROM shares s "
		 "JOIN users u ON u.id = s.account WHERE ?1 IS NULL OR s.name = ?1 ORDER BY s.name");

int sd__share_list(sd_core *c, const char *name, sd_share_cb cb, void *arg)
{
	sd_share *v = NULL;
	int n = 0, cap = 0;
	sd_dbc *d = sd_db_read_begin(c->db);
	sqlite3_stmt *st = sd_db_stmt(d, &q_shares);
	if (name)
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			v = sd_xrealloc(v, (size_t)cap * sizeof *v);
		}
		sd_share *e = &v[n++];
		memset(e, 0, sizeof *e);
		e->id = sqlite3_column_int64(st, 0);
		snprintf(e->name, sizeof e->name, "%s", (const char *)sqlite3_column_text(st, 1));
		e->quota = sqlite3_column_int64(st, 2);
		e->used = sqlite3_column_int64(st, 3);
		e->created = sqlite3_column_int64(st, 4) / 1000;
		e->rules = sqlite3_column_int(st, 5);
	}
	sqlite3_reset(st);
	sd_db_read_end(c->db, d);
	int delivered = 0;
	for (int i = 0; i < n; i++) {
		delivered++;
		if (cb && cb(arg, &v[i]))
			break;
	}
	free(v);
	if (name && n == 0)
		return -ENOENT;
	return delivered;
}

SD_SQL(q_rules, "SELECT s.name, r.node, u.name, g.name, r.rights, u2.root, n.deleted_at IS NOT NULL "
		"FROM share_rules r JOIN shares s ON s.id = r.share JOIN users u2 ON u2.id = s.account "
		"JOIN nodes n ON n.id = r.node LEFT JOIN users u ON u.id = r.user "
		"LEFT JOIN groups g ON g.id = r.grp WHERE ?1 IS NULL OR s.name = ?1 ORDER BY s.name");

typedef struct rent {
	char *share, *path, *user, *group;
	unsigned rights;
	int deleted;
} rent;

static int rent_cmp(const void *a, const void *b)
{
	const rent *x = a, *y = b;
	int k = strcmp(x->share, y->share);
	if (!k)
		k = strcmp(x->path, y->path);
	if (!k)
		k = strcmp(x->group, y->group);
	if (!k)
		k = strcmp(x->user, y->user);
	return k;
}

int sd__share_rules(sd_core *c, const char *name, sd_share_rule_cb cb, void *arg)
{
	rent *v = NULL;
	int n = 0, cap = 0, found = 0;
	sd_dbc *d = sd_db_read_begin(c->db);
	if (name) {
		share_row s;
		found = share_by_name(d, name, &s) == 0;
	}
	sqlite3_stmt *st = sd_db_stmt(d, &q_rules);
	if (name)
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	typedef struct raw {
		char *share, *user, *group;
		int64_t node, root;
		unsigned rights;
		int deleted;
	} raw;
	raw *rv = NULL;
	int rn = 0, rc = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (rn == rc) {
			rc = rc ? rc * 2 : 16;
			rv = sd_xrealloc(rv, (size_t)rc * sizeof *rv);
		}
		raw *x = &rv[rn++];
		const unsigned char *un = sqlite3_column_text(st, 2), *gn = sqlite3_column_text(st, 3);
		x->share = sd_xstrdup((const char *)sqlite3_column_text(st, 0));
		x->node = sqlite3_column_int64(st, 1);
		x->user = sd_xstrdup(un ? (const char *)un : "");
		x->group = sd_xstrdup(gn ? (const char *)gn : "");
		x->rights = (unsigned)sqlite3_column_int(st, 4);
		x->root = sqlite3_column_int64(st, 5);
		x->deleted = sqlite3_column_int(st, 6);
	}
	sqlite3_reset(st);
	sd_buf p = SD_BUF_INIT;
	for (int i = 0; i < rn; i++) {
		if (sd__tree_path_of(d, rv[i].node, rv[i].root, &p) < 0) {
			sd_buf_reset(&p);
			sd_buf_puts(&p, "?");
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			v = sd_xrealloc(v, (size_t)cap * sizeof *v);
		}
		v[n++] = (rent){rv[i].share, sd_xstrdup(p.data), rv[i].user, rv[i].group, rv[i].rights,
				rv[i].deleted};
	}
	free(rv);
	sd_buf_free(&p);
	sd_db_read_end(c->db, d);
	if (n > 1)
		qsort(v, (size_t)n, sizeof *v, rent_cmp);
	int delivered = 0, stop = 0;
	for (int i = 0; i < n; i++) {
		if (!stop) {
			sd_share_rule r = {v[i].share, v[i].path, v[i].user, v[i].group, v[i].rights,
					   v[i].deleted};
			delivered++;
			if (cb && cb(arg, &r))
				stop = 1;
		}
		free(v[i].share);
		free(v[i].path);
		free(v[i].user);
		free(v[i].group);
	}
	free(v);
	if (name && !found)
		return -ENOENT;
	return delivered;
}

/* ------------------------------------------------------------ users going */

SD_SQL(q_user_members_del, "DELETE FROM members WHERE user = ?1");
SD_SQL(q_user_rules_del, "DELETE FROM share_rules WHERE user = ?1");
SD_SQL(q_user_links_del, "DELETE FROM links WHERE user = ?1");

int sd__team_user_gone(sd_dbc *d, int64_t uid)
{
	int r = exec_id(d, &q_user_members_del, uid);
	if (r == 0)
		r = exec_id(d, &q_user_rules_del, uid);
	if (r == 0)
		r = exec_id(d, &q_user_links_del, uid);
	if (r == 0)
		r = sd_db_exec_stmt(sd_db_stmt(d, &q_gen_bump));
	return r;
}

void sd__team_changed(sd_core *c)
{
	changed(c);
}
