/*
 * history.c - history users can reach: a tree as it was at a past moment
 * (views), versions restored, the trash, point-in-time rollback, and the
 * virtual folders /.snapshots/ and /.trash/ through which every protocol
 * reaches them with the calls it already makes.
 *
 * Design notes
 * ------------
 * The present is `nodes` (tree.c). The past is rebuilt from three kinds of
 * rows, each written in the transaction of the change it records:
 *   - versions (versions.c): every content a file had, from the ms of its
 *     commit on, with who made it (user, protocol, address) and how (op);
 *   - placements (placements.c): every STAY of a node at a (parent, name),
 *     during [t_from, t_to) in ms. Made or moved in: a stay opens; moved
 *     away or deleted: it closes; brought back: a new one opens. Nodes are
 *     still renamed in place, so nodes alone only know the present;
 *   - tree_changes: the moments (ms) each user's tree changed, the
 *     entries of /.snapshots/.
 *
 * THE TREE AT T (a view): its root is the user's root; the entries of
 * folder F at T are the nodes with a stay under F that covers T
 * (t_from <= T < t_to); a file's content at T is its newest version with
 * ts <= T. A change committed at ms t is in every view of T >= t. A view
 * shows files and folders read-only (mode without write bits); a file
 * shows the mtime its version gave it, a folder its mtime now, capped at T.
 * Modes are not history (a chmod is not recorded): views show today's.
 *
 * Invariants
 *  H1. A node has exactly one open stay while it is live and none once it
 *      is deleted; a user's root has none. The open stay names the node's
 *      current (parent, name).
 *  H2. Stays at one (parent, name) never overlap in time (at most one live
 *      node holds a name: nodes_live_name), so a view finds at most one
 *      node per name.
 *  H3. Every transaction that changes a user's tree, its shape or a
 *      file's content, marks its moment in tree_changes with the ms it
 *      writes into placements and versions.
 *  H4. Views only read. Restore, trash restore and rollback only add rows
 *      and change the live state: no version is edited and no closed stay
 *      reopened, so what happened stays what happened (and can itself be
 *      viewed and rolled back).
 *  H5. Nothing is copied: restore and rollback add versions that name
 *      blobs already stored (refs + 1, I3), and a blob a kept version
 *      names is never removed (refs > 0).
 *  H6. The horizon: a view of T is complete when T >= now -
 *      min(deleted_retention, version_retention): a deleted node is purged
 *      only deleted_retention after its deletion, and a version is dropped
 *      only version_retention after a newer one REPLACED it (gc.c). Older
 *      moments give -SD_EHISTORY, everywhere.
 *  H7. The cleaner removes only history nothing can reach: stays that
 *      ended more than deleted_retention ago (a trash item's view needs
 *      those after its deletion), moments before the horizon.
 *  H8. A rollback is one write transaction with one moment R: its
 *      versions, stays, deletes, tree change and journal rows all carry R,
 *      so the view of R - 1 is the tree just before it, and rolling back
 *      to R - 1 undoes it.
 *
 * The trash: a deleted node whose parent was not deleted in the same
 * moment is a trash ITEM; whatever was deleted with it (same deleted_at,
 * below it) is inside it. Items within deleted_retention are listed, with
 * the path they had just before their deletion (rebuilt from stays).
 * Restoring one clears deleted_at on it and on what was deleted with it,
 * opens their stays, and puts it back at its path (missing folders are
 * made) or where asked. Emptying purges like the cleaner does (gc.c).
 *
 * Virtual folders (api.c sends every path under them here):
 *   /.snapshots/                          days with changes, "YYYY-MM-DD"
 *   /.snapshots/YYYY-MM-DD/               seconds with changes, "HH-MM-SS"
 *   /.snapshots/YYYY-MM-DD/HH-MM-SS/...   the tree at the end of that second
 *   /.snapshots/YYYY-MM-DD/HH-MM-SS.mmm/  the tree at that very ms
 *   /.snapshots/YYYY-MM-DDTHH-MM-SS[.mmm][Z]/...   the same, one component
 *   /.trash/                              items, "YYYY-MM-DDTHH-MM-SS.mmmZ_<id>_<name>"
 *   /.trash/<item>/...                    an item as it was when deleted
 * All times are UTC. No name has a ':' (Windows and macOS clients), and
 * bytewise order is time order. Only moments since the horizon are listed;
 * any moment since then can be named, listed or not (at_path builds the
 * name). Everything there is read-only: writes answer -EROFS (snapshots)
 * or -EACCES (trash), except that renaming an item out of /.trash/
 * restores it. Neither folder is listed in "/" unless show_history_folders
 * says so; a user cannot make a real entry so named at the root
 * (migration 0003 renamed any old one to "<name>.<id>").
 *
 * Rollback of path P to moment T, in one transaction at moment R:
 *   1. S = P's subtree in the view of T (BFS, parents first), L = P's live
 *      subtree now. A node is KEPT when it is in both.
 *   2. Every node of L that is not kept goes to the trash, one node at a
 *      time (what was below it stays below it, deleted in the same moment,
 *      so the trash shows it inside its folder).
 *   3. Every kept node not at its place of T is detached (parent NULL, stay
 *      closed), which frees every place S needs.
 *   4. Each node of S, parents first, is put at its place of T: a kept one
 *      re-attached, a deleted one brought back, and one that is live
 *      OUTSIDE P now (it moved out after T) left alone, a new node with its
 *      content of T taking its place; a file whose content differs from
 *      its content at T gets a new version naming it.
 *   5. Usage and quota, one journal row per change and one for the whole.
 * Nothing outside P changes, and the moment R makes H8 hold.
 *
 * The journal and copies: every change here writes journal rows with what
 * a replay needs (journal.c, replica.c): a version restore is a "restore"
 * commit of stored content; a trash restore ("untrash") and a purge
 * ("trash_empty") name the item by the path it was deleted from and its
 * deleted_at, since node ids differ between a server and its copy; a
 * rollback is one "rollback" row with the moment `at`, after which a copy
 * holding the same history at the same times makes the same changes; the
 * "rollback_item" rows before it list those changes for people. A burst's
 * stamp travels in the delete's args, so a copy's trash groups alike.
 *
 * Data made before migration 0003 has the best history available: every
 * node is where it is now since it was made (renames before the
 * migration are unknown), and who made older versions is unknown.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "log.h"

#define SNAPS ".snapshots"
#define TRASH ".trash"
#define DAY_MS 86400000LL
#define PAGE 512

/* Ids of virtual folders in sd_stat.id (FTP MLSD "unique"): far from any
 * row id. */
#define VID(x) ((int64_t)((UINT64_C(1) << 62) | ((uint64_t)(x) & ((UINT64_C(1) << 62) - 1))))

/* ------------------------------------------------------------ names */

static int digits(const char *p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	*out = v;
	return 0;
}

/* "YYYY-MM-DD" -> ms of its 00:00 UTC. */
static int parse_day(const char *p, size_t n, int64_t *day_ms)
{
	int y, mo, d;
	if (n != 10 || p[4] != '-' || p[7] != '-' || digits(p, 4, &y) || digits(p + 5, 2, &mo) ||
	    digits(p + 8, 2, &d))
		return -1;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31)
		return -1;
	struct tm tm, back;
	memset(&tm, 0, sizeof tm);
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	time_t t = timegm(&tm);
	if (t == (time_t)-1 || !gmtime_r(&t, &back) || back.tm_mday != d || back.tm_mon != mo - 1)
		return -1; /* 2026-02-30 */
	*day_ms = (int64_t)t * 1000;
	return 0;
}

/* "HH-MM-SS" or "HH-MM-SS.mmm", optionally with "Z" -> ms into the day.
 * Without ms it names the end of that second (.999): the tree after every
 * change made in it. */
static int parse_time(const char *p, size_t n, int64_t *ms)
{
	if (n > 0 && p[n - 1] == 'Z')
		n--;
	int h, mi, s, f = 999;
	if (n != 8 && n != 12)
		return -1;
	if (p[2] != '-' || p[5] != '-' || digits(p, 2, &h) || digits(p + 3, 2, &mi) ||
	    digits(p + 6, 2, &s))
		return -1;
	if (n == 12 && (p[8] != '.' || digits(p + 9, 3, &f)))
		return -1;
	if (h > 23 || mi > 59 || s > 59)
		return -1;
	*ms = ((int64_t)h * 3600 + mi * 60 + s) * 1000 + f;
	return 0;
}

static void fmt(int64_t ms, const char *f, char *out, size_t outlen)
{
	time_t t = (time_t)((ms < 0 ? 0 : ms) / 1000);
	struct tm tm;
	if (!gmtime_r(&t, &tm) || !strftime(out, outlen, f, &tm))
		snprintf(out, outlen, "?");
}

/* "YYYY-MM-DDTHH-MM-SS.mmmZ" */
static void fmt_stamp(int64_t ms, char out[32])
{
	char s[24];
	fmt(ms, "%Y-%m-%dT%H-%M-%S", s, sizeof s);
	snprintf(out, 32, "%s.%03dZ", s, (int)((ms < 0 ? 0 : ms) % 1000));
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" (RFC 3339, for the journal) */
static void fmt_iso(int64_t ms, char out[32])
{
	char s[24];
	fmt(ms, "%Y-%m-%dT%H:%M:%S", s, sizeof s);
	snprintf(out, 32, "%s.%03dZ", s, (int)((ms < 0 ? 0 : ms) % 1000));
}

/* The entry of a trash item in /.trash/: "<stamp>_<id>_<name>", the name
 * cut (at a character boundary) so that the whole fits SD_NAME_MAX. */
static void trash_entry(int64_t deleted, int64_t id, const char *name, char out[SD_NAME_MAX + 1])
{
	char stamp[32];
	fmt_stamp(deleted, stamp);
	int n = snprintf(out, SD_NAME_MAX + 1, "%s_%lld_", stamp, (long long)id);
	size_t room = SD_NAME_MAX - (size_t)n, len = strlen(name);
	if (len > room) {
		len = room;
		while (len > 0 && ((unsigned char)name[len] & 0xc0) == 0x80)
			len--; /* do not split a UTF-8 sequence */
	}
	memcpy(out + n, name, len);
	out[n + len] = '\0';
}

int sd__virt_kind(const char *np)
{
	size_t ls = sizeof SNAPS - 1, lt = sizeof TRASH - 1;
	if (np[0] != '/')
		return SD_VIRT_NONE;
	if (strncmp(np + 1, SNAPS, ls) == 0 && (np[1 + ls] == '\0' || np[1 + ls] == '/'))
		return SD_VIRT_SNAP;
	if (strncmp(np + 1, TRASH, lt) == 0 && (np[1 + lt] == '\0' || np[1 + lt] == '/'))
		return SD_VIRT_TRASH;
	return SD_VIRT_NONE;
}

int sd__virt_refuse(const char *np)
{
	return sd__virt_kind(np) == SD_VIRT_SNAP ? -EROFS : -EACCES;
}

/* A path under a virtual folder, taken apart. */
enum { VK_SNAPS = 1, VK_DAY, VK_AT, VK_TRASH, VK_ITEM };
typedef struct vpath {
	int kind;
	int64_t day;       /* VK_DAY: ms of its 00:00 */
	int64_t at;        /* VK_AT: the moment */
	int64_t item;      /* VK_ITEM: the node id its entry names */
	char entry[SD_NAME_MAX + 1]; /* VK_ITEM: the entry as given */
	const char *rest;  /* VK_AT, VK_ITEM: the path inside, "" or "/a/b" */
} vpath;

static int next_comp(const char **p, const char **s, size_t *n)
{
	while (**p == '/')
		(*p)++;
	if (!**p)
		return 0;
	*s = *p;
	while (**p && **p != '/')
		(*p)++;
	*n = (size_t)(*p - *s);
	return 1;
}

/* Take np (under a virtual folder) apart: 0, or -ENOENT for a name that
 * is not one of ours. */
static int vparse(const char *np, vpath *v)
{
	memset(v, 0, sizeof *v);
	v->rest = "";
	const char *p = np, *s;
	size_t n;
	next_comp(&p, &s, &n); /* the folder itself */
	int snaps = sd__virt_kind(np) == SD_VIRT_SNAP;
	if (!next_comp(&p, &s, &n)) {
		v->kind = snaps ? VK_SNAPS : VK_TRASH;
		return 0;
	}
	if (!snaps) {
		/* "<stamp>_<id>_<name>": the stamp has no '_' */
		const char *u1 = memchr(s, '_', n);
		if (!u1)
			return -ENOENT;
		const char *idp = u1 + 1, *end = s + n;
		const char *u2 = memchr(idp, '_', (size_t)(end - idp));
		if (!u2 || u2 == idp || u2 - idp > 18)
			return -ENOENT;
		int64_t id = 0;
		for (const char *q = idp; q < u2; q++) {
			if (*q < '0' || *q > '9')
				return -ENOENT;
			id = id * 10 + (*q - '0');
		}
		v->kind = VK_ITEM;
		v->item = id;
		memcpy(v->entry, s, n);
		v->entry[n] = '\0';
		v->rest = p;
		return 0;
	}
	int64_t t;
	if (n == 10) {
		if (parse_day(s, n, &v->day) < 0)
			return -ENOENT;
		if (!next_comp(&p, &s, &n)) {
			v->kind = VK_DAY;
			return 0;
		}
		if (parse_time(s, n, &t) < 0)
			return -ENOENT;
		v->at = v->day + t;
	} else if (n > 11 && s[10] == 'T') {
		if (parse_day(s, 10, &v->day) < 0 || parse_time(s + 11, n - 11, &t) < 0)
			return -ENOENT;
		v->at = v->day + t;
	} else {
		return -ENOENT;
	}
	v->kind = VK_AT;
	v->rest = p;
	return 0;
}

/* ------------------------------------------------------------ views */

SD_SQL(q_child_at, "SELECT node FROM placements WHERE parent = ?1 AND name = ?2 AND t_from <= ?3 "
		   "AND (t_to IS NULL OR t_to > ?3) ORDER BY t_from DESC LIMIT 1");
SD_SQL(q_version_at, "SELECT v.blob, v.size, b.sha256, coalesce(v.mtime, v.ts / 1000) "
		     "FROM versions v JOIN blobs b ON b.id = v.blob WHERE v.node = ?1 AND v.ts <= ?2 "
		     "ORDER BY v.ts DESC, v.id DESC LIMIT 1");
SD_SQL(q_versions_at, "SELECT count(*) FROM versions WHERE node = ?1 AND ts <= ?2");

/* Node id as it was at `at` (read-only mode; a file with its content then):
 * -ENOENT when a file had no content yet. */
SD_SQL(q_node_vts, "SELECT vts FROM nodes WHERE id = ?1");

static int node_at(sd_dbc *d, int64_t id, int64_t at, sd_node *n)
{
	int r = sd__tree_node(d, id, n);
	if (r < 0)
		return r;
	n->mode &= ~0222u;
	if (n->kind != SD_KIND_FILE) {
		if (n->mtime * 1000 > at)
			n->mtime = at / 1000;
		return 0;
	}
	sqlite3_stmt *q = sd_db_stmt(d, &q_node_vts);
	sqlite3_bind_int64(q, 1, id);
	int newest_then = sqlite3_step(q) == SQLITE_ROW && sqlite3_column_type(q, 0) != SQLITE_NULL &&
			  sqlite3_column_int64(q, 0) <= at;
	sqlite3_reset(q);
	if (newest_then)
		return 0; /* its content now is its content then */
	sqlite3_stmt *st = sd_db_stmt(d, &q_version_at);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, at);
	r = -ENOENT;
	if (sqlite3_step(st) == SQLITE_ROW) {
		n->blob = sqlite3_column_int64(st, 0);
		n->size = (uint64_t)sqlite3_column_int64(st, 1);
		snprintf(n->sha256, sizeof n->sha256, "%s", (const char *)sqlite3_column_text(st, 2));
		n->mtime = sqlite3_column_int64(st, 3);
		r = 0;
	}
	sqlite3_reset(st);
	return r;
}

static int child_at(sd_dbc *d, int64_t parent, const char *name, size_t len, int64_t at,
		    int64_t *id)
{
	sqlite3_stmt *st = sd_db_stmt(d, &q_child_at);
	sqlite3_bind_int64(st, 1, parent);
	sqlite3_bind_text(st, 2, name, (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, at);
	int r = -ENOENT;
	if (sqlite3_step(st) == SQLITE_ROW) {
		*id = sqlite3_column_int64(st, 0);
		r = 0;
	}
	sqlite3_reset(st);
	return r;
}

/* Where a walk of a view of the past starts: node top, with the
 * principal's rights there (the user's root: all; a trash item: what the
 * rules give on it now). */
typedef struct past_top {
	int64_t id;
	unsigned rights;
	int64_t share;
} past_top;

/* rel ("" or "/a/b") from top in the view of `at`, through v: shared
 * folders mounted at the user's root (those made by then), and the rights
 * of today's rules on the nodes walked (team.c T4, T6: a view never shows
 * what the rules hide now). */
static int past_lookup(sd_view *v, const past_top *top, int64_t at, const char *rel,
		       sd_node *out)
{
	int r = node_at(v->d, top->id, at, out);
	if (r < 0)
		return r;
	out->rights = top->rights;
	out->share = top->share;
	out->top = top->id;
	out->vis = 1;
	const char *p = rel, *s;
	size_t n;
	while (r == 0 && next_comp(&p, &s, &n)) {
		int64_t id;
		if (out->kind != SD_KIND_DIR)
			return -ENOTDIR;
		sd_node dir = *out;
		const sd_mount *m = dir.id == v->root && !dir.share ? sd__team_mount(v->t, s, n) : NULL;
		if (m && m->created <= at) {
			if ((r = node_at(v->d, m->root, at, out)) == 0) {
				unsigned rr = 0;
				out->share = m->share;
				out->top = m->root;
				out->mount = 1;
				out->rights = sd__team_rule(v->t, m->root, &rr) ? rr : 0;
				out->vis = 1;
			}
			continue;
		}
		if ((r = child_at(v->d, dir.id, s, n, at, &id)) == 0 &&
		    (r = node_at(v->d, id, at, out)) == 0)
			sd__view_inherit(v, &dir, out);
	}
	return r;
}

/* The node at the tree root of a view (the user's root, all rights). */
static past_top root_top(const sd_view *v)
{
	past_top t = {v->root, SD_RIGHTS_ALL, 0};
	return t;
}

static void view_stat(sd_dbc *d, const sd_node *n, int64_t at, sd_stat *st)
{
	sd__node_to_stat(n, st);
	if (n->kind != SD_KIND_FILE)
		return;
	sqlite3_stmt *q = sd_db_stmt(d, &q_versions_at);
	sqlite3_bind_int64(q, 1, n->id);
	sqlite3_bind_int64(q, 2, at);
	if (sqlite3_step(q) == SQLITE_ROW)
		st->versions = sqlite3_column_int64(q, 0);
	sqlite3_reset(q);
}

/* A synthetic read-only folder. */
static void vdir_stat(int64_t id, int64_t mtime_s, sd_stat *st)
{
	memset(st, 0, sizeof *st);
	st->id = id;
	st->kind = SD_KIND_DIR;
	st->mode = 0555;
	st->mtime = st->ctime = mtime_s;
}

/* ------------------------------------------------------------ paging */

typedef struct hent {
	char *name;
	sd_stat st;
} hent;

/* Up to want entries named after `after`, in bytewise name order, into
 * ents (names malloc'd). Returns how many, or -errno. */
typedef int (*fetch_fn)(void *ctx, const char *after, int want, hent *ents);

/* The readdir contract (storaged.h) over a fetcher, a page at a time so
 * that no transaction stays open while the callback runs. */
static int paged_readdir(fetch_fn fetch, void *ctx, const char *after, int limit,
			 sd_readdir_cb cb, void *arg, int *more)
{
	int r = 0;
	if (more)
		*more = 0;
	char *cursor = sd_xstrdup(after ? after : "");
	int delivered = 0, stop = 0;
	hent *ents = sd_xcalloc((size_t)PAGE + 1, sizeof *ents);
	while (!stop) {
		int want = PAGE;
		if (limit > 0 && limit - delivered + 1 < want)
			want = limit - delivered + 1; /* one extra tells "more" */
		int n = fetch(ctx, cursor, want, ents);
		if (n < 0) {
			r = n;
			break;
		}
		int deliver = n, last_page = 0;
		if (limit > 0 && delivered + deliver > limit) {
			deliver = limit - delivered;
			if (more)
				*more = 1;
			last_page = 1;
		}
		for (int i = 0; i < deliver && !stop; i++) {
			sd_dirent e = {ents[i].name, ents[i].st};
			delivered++;
			if (cb && cb(arg, &e)) {
				stop = 1;
				if (more)
					*more = i + 1 < n || n == want;
			}
		}
		if (last_page)
			stop = 1;
		if (n > 0) {
			free(cursor);
			cursor = sd_xstrdup(ents[n - 1].name);
		}
		for (int i = 0; i < n; i++)
			free(ents[i].name);
		if (n < want)
			stop = 1;
		if (limit > 0 && delivered >= limit && !stop) {
			stop = 1;
			if (more)
				*more = 1;
		}
	}
	free(ents);
	free(cursor);
	return r < 0 ? r : delivered;
}

/* A whole listing made in memory (days, seconds, trash items), sorted. */
typedef struct hlist {
	hent *e;
	int n, cap;
} hlist;

static void hlist_add(hlist *l, const char *name, const sd_stat *st)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->e = sd_xrealloc(l->e, (size_t)l->cap * sizeof *l->e);
	}
	l->e[l->n].name = sd_xstrdup(name);
	l->e[l->n].st = *st;
	l->n++;
}

static void hlist_free(hlist *l)
{
	for (int i = 0; i < l->n; i++)
		free(l->e[i].name);
	free(l->e);
}

static int hent_cmp(const void *a, const void *b)
{
	return strcmp(((const hent *)a)->name, ((const hent *)b)->name);
}

static int hlist_fetch(void *ctx, const char *after, int want, hent *ents)
{
	hlist *l = ctx;
	int lo = 0, hi = l->n; /* first entry > after */
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (strcmp(l->e[mid].name, after) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	int n = 0;
	for (int i = lo; i < l->n && n < want; i++, n++) {
		ents[n].name = sd_xstrdup(l->e[i].name);
		ents[n].st = l->e[i].st;
	}
	return n;
}

static int hlist_readdir(hlist *l, const char *after, int limit, sd_readdir_cb cb, void *arg,
			 int *more)
{
	if (l->n > 1)
		qsort(l->e, (size_t)l->n, sizeof *l->e, hent_cmp);
	return paged_readdir(hlist_fetch, l, after, limit, cb, arg, more);
}

/* The folder at rel in the view of `at` below node top, a page at a time.
 * A file whose newest version is not newer than the moment (nodes.vts <=
 * at: most files, usually) has its content of then in its node, so the
 * page costs what a live listing costs; for the others the query names
 * the version of then (NULL: no content yet then), read by its id. */
SD_SQL(q_list_at,
       "SELECT p.node, p.name, n.kind, n.mode, n.mtime, n.ctime, n.blob, n.size, b.sha256, "
       "n.vts > ?2, CASE WHEN n.vts > ?2 THEN (SELECT w.id FROM versions w WHERE w.node = p.node "
       "AND w.ts <= ?2 ORDER BY w.ts DESC, w.id DESC LIMIT 1) END, n.created_by, n.changed_by "
       "FROM placements p JOIN nodes n ON n.id = p.node LEFT JOIN blobs b ON b.id = n.blob "
       "WHERE p.parent = ?1 AND p.t_from <= ?2 AND (p.t_to IS NULL OR p.t_to > ?2) "
       "AND p.name > ?3 ORDER BY p.name LIMIT ?4");
SD_SQL(q_version_id, "SELECT v.blob, v.size, b.sha256, coalesce(v.mtime, v.ts / 1000) "
		     "FROM versions v JOIN blobs b ON b.id = v.blob WHERE v.id = ?1");

/* The content of version vid into n (blob, size, sha256, mtime). */
static int version_into(sd_dbc *d, int64_t vid, sd_node *n)
{
	sqlite3_stmt *st = sd_db_stmt(d, &q_version_id);
	sqlite3_bind_int64(st, 1, vid);
	int r = -ENOENT;
	if (sqlite3_step(st) == SQLITE_ROW) {
		n->blob = sqlite3_column_int64(st, 0);
		n->size = (uint64_t)sqlite3_column_int64(st, 1);
		snprintf(n->sha256, sizeof n->sha256, "%s", (const char *)sqlite3_column_text(st, 2));
		n->mtime = sqlite3_column_int64(st, 3);
		r = 0;
	}
	sqlite3_reset(st);
	return r;
}

typedef struct view_ctx {
	sd_core *c;
	const sd_principal *u;
	past_top top;
	int64_t at;
	const char *rel;
} view_ctx;

/* One entry of q_list_at into nd (as it was at `at`): 0, or -1 for a file
 * that had no content yet then. */
static int list_at_row(sd_dbc *d, sqlite3_stmt *st, int64_t at, sd_node *nd)
{
	memset(nd, 0, sizeof *nd);
	nd->id = sqlite3_column_int64(st, 0);
	nd->kind = sqlite3_column_int(st, 2);
	nd->mode = (uint32_t)sqlite3_column_int(st, 3) & ~0222u;
	nd->mtime = sqlite3_column_int64(st, 4);
	nd->ctime = sqlite3_column_int64(st, 5);
	const unsigned char *cb = sqlite3_column_text(st, 11), *mb = sqlite3_column_text(st, 12);
	snprintf(nd->created_by, sizeof nd->created_by, "%s", cb ? (const char *)cb : "");
	snprintf(nd->changed_by, sizeof nd->changed_by, "%s", mb ? (const char *)mb : "");
	if (nd->kind == SD_KIND_FILE && sqlite3_column_int(st, 9)) {
		/* changed since: its version of then */
		if (sqlite3_column_type(st, 10) == SQLITE_NULL ||
		    version_into(d, sqlite3_column_int64(st, 10), nd) < 0)
			return -1; /* no content yet at that moment */
	} else if (nd->kind == SD_KIND_FILE) {
		nd->blob = sqlite3_column_int64(st, 6);
		nd->size = (uint64_t)sqlite3_column_int64(st, 7);
		snprintf(nd->sha256, sizeof nd->sha256, "%s", (const char *)sqlite3_column_text(st, 8));
	} else if (nd->mtime * 1000 > at) {
		nd->mtime = at / 1000;
	}
	return 0;
}

static int view_fetch(void *ctx, const char *after, int want, hent *ents)
{
	view_ctx *x = ctx;
	sd_dbc *d = sd_db_read_begin(x->c->db);
	sd_view v;
	sd_node dir;
	int r = sd__view_open(x->c, d, x->u, &v);
	if (r == 0)
		r = past_lookup(&v, &x->top, x->at, x->rel, &dir);
	if (r == 0 && !dir.vis)
		r = -ENOENT;
	if (r == 0 && dir.kind != SD_KIND_DIR)
		r = -ENOTDIR;
	if (r == 0 && !(dir.rights & SD_RIGHT_LIST))
		r = -EACCES;
	int n = 0, end = 0;
	/* the view's root shows the shared folders mounted then (PAGE + the
	 * mounts is what the caller's array holds: hlist callers pass PAGE) */
	const sd_mount *mounts = NULL;
	int nm = r == 0 && dir.id == v.root && !dir.share ? sd__team_mounts(v.t, &mounts) : 0;
	if (nm > PAGE / 2)
		nm = PAGE / 2;
	int room = want - nm > 1 ? want - nm : 1;
	char *cur = sd_xstrdup(after);
	while (r == 0 && n < room && !end) {
		int ask = room - n, raw = 0;
		sqlite3_stmt *st = sd_db_stmt(d, &q_list_at);
		sqlite3_bind_int64(st, 1, dir.id);
		sqlite3_bind_int64(st, 2, x->at);
		sqlite3_bind_text(st, 3, cur, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 4, ask);
		while (sqlite3_step(st) == SQLITE_ROW) {
			raw++;
			const char *name = (const char *)sqlite3_column_text(st, 1);
			free(cur);
			cur = sd_xstrdup(name);
			if (nm && sd__team_mount(v.t, name, strlen(name)))
				continue;
			sd_node nd;
			if (list_at_row(d, st, x->at, &nd) < 0)
				continue;
			sd__view_inherit(&v, &dir, &nd);
			if (dir.share && !nd.vis)
				continue;
			sd__node_to_stat(&nd, &ents[n].st);
			ents[n].name = sd_xstrdup(name);
			n++;
		}
		sqlite3_reset(st);
		end = raw < ask;
	}
	for (int i = 0; r == 0 && i < nm; i++) {
		const sd_mount *m = &mounts[i];
		if (m->created > x->at || strcmp(m->name, after) <= 0 ||
		    (!end && strcmp(m->name, cur) > 0))
			continue;
		sd_node mn;
		if (node_at(d, m->root, x->at, &mn) < 0)
			continue;
		sd__node_to_stat(&mn, &ents[n].st);
		ents[n].name = sd_xstrdup(m->name);
		n++;
	}
	free(cur);
	sd__view_close(&v);
	sd_db_read_end(x->c->db, d);
	if (r < 0) {
		for (int i = 0; i < n; i++)
			free(ents[i].name);
		return r;
	}
	if (nm && n > 1)
		qsort(ents, (size_t)n, sizeof *ents, hent_cmp);
	if (n > want) {
		for (int i = want; i < n; i++)
			free(ents[i].name);
		n = want;
	}
	/* fewer than want only at the end: top up from the next names */
	if (!end && n < want && n > 0) {
		hent *more = sd_xcalloc((size_t)PAGE + 1, sizeof *more);
		int k = view_fetch(ctx, ents[n - 1].name, want - n, more);
		for (int i = 0; i < k; i++)
			ents[n + i] = more[i];
		free(more);
		if (k > 0)
			n += k;
	}
	return n;
}

/* ------------------------------------------------------------ moments */

SD_SQL(q_next_change, "SELECT min(ts) FROM tree_changes WHERE owner = ?1 AND ts >= ?2 AND ts < ?3");
SD_SQL(q_last_change, "SELECT max(ts) FROM tree_changes WHERE owner = ?1 AND ts >= ?2 AND ts < ?3");

/* The trees a user's view holds: theirs and the shared folders mounted. */
#define OWNERS_MAX 33
typedef struct owners {
	int64_t id[OWNERS_MAX];
	int n;
} owners;

static void owners_of(const sd_view *v, owners *o)
{
	const sd_mount *m;
	int nm = sd__team_mounts(v->t, &m);
	o->id[0] = v->u->id;
	o->n = 1;
	for (int i = 0; i < nm && o->n < OWNERS_MAX; i++)
		o->id[o->n++] = m[i].account;
}

/* The first (last: the last) moment in [from, to) any of the trees changed,
 * or -1. */
static int64_t next_change(sd_dbc *d, const owners *o, int64_t from, int64_t to, int last)
{
	int64_t best = -1;
	for (int i = 0; i < o->n; i++) {
		sqlite3_stmt *st = sd_db_stmt(d, last ? &q_last_change : &q_next_change);
		sqlite3_bind_int64(st, 1, o->id[i]);
		sqlite3_bind_int64(st, 2, from);
		sqlite3_bind_int64(st, 3, to);
		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
			int64_t t = sqlite3_column_int64(st, 0);
			if (best < 0 || (last ? t > best : t < best))
				best = t;
		}
		sqlite3_reset(st);
	}
	return best;
}

/* Days (from the horizon on) in which the view changed. Each changed-moment
 * lookup is one index seek per tree; days without changes cost nothing. */
static void list_days(sd_core *c, const sd_principal *u, hlist *l)
{
	int64_t now = sd__now_ms(c), from = sd__history_horizon(c, now);
	if (from < 0)
		from = 0;
	sd_dbc *d = sd_db_read_begin(c->db);
	sd_view v;
	owners o;
	if (sd__view_open(c, d, u, &v) == 0) {
		owners_of(&v, &o);
		for (int guard = 0; guard < 100000; guard++) {
			int64_t t = next_change(d, &o, from, INT64_MAX, 0);
			if (t < 0)
				break;
			int64_t day = t - t % DAY_MS;
			int64_t last = next_change(d, &o, t, day + DAY_MS, 1);
			char name[16];
			fmt(day, "%Y-%m-%d", name, sizeof name);
			sd_stat st;
			vdir_stat(VID(day * 2), (last < 0 ? t : last) / 1000, &st);
			hlist_add(l, name, &st);
			from = day + DAY_MS;
		}
	}
	sd__view_close(&v);
	sd_db_read_end(c->db, d);
}

/* Seconds of one day (from the horizon on) in which the view changed. */
static void list_seconds(sd_core *c, const sd_principal *u, int64_t day, hlist *l)
{
	int64_t now = sd__now_ms(c), from = sd__history_horizon(c, now), end = day + DAY_MS;
	if (from < day)
		from = day;
	sd_dbc *d = sd_db_read_begin(c->db);
	sd_view v;
	owners o;
	if (sd__view_open(c, d, u, &v) == 0) {
		owners_of(&v, &o);
		while (from < end) {
			int64_t t = next_change(d, &o, from, end, 0);
			if (t < 0)
				break;
			int64_t sec = t - t % 1000;
			char name[16];
			fmt(sec, "%H-%M-%S", name, sizeof name);
			sd_stat st;
			vdir_stat(VID((sec + 999) * 2 + 1), sec / 1000, &st);
			hlist_add(l, name, &st);
			from = sec + 1000;
		}
	}
	sd__view_close(&v);
	sd_db_read_end(c->db, d);
}

/* ------------------------------------------------------------ the trash */

SD_SQL(q_item, "SELECT n.owner, n.deleted_at, n.name, "
	       "(SELECT p.deleted_at FROM nodes p WHERE p.id = n.parent) FROM nodes n WHERE n.id = ?1");
SD_SQL(q_items, "SELECT n.id, n.kind, n.name, n.deleted_at, n.size, n.mode, n.mtime, n.ctime "
		"FROM nodes n WHERE n.owner = ?1 AND n.deleted_at >= ?2 AND NOT EXISTS (SELECT 1 "
		"FROM nodes p WHERE p.id = n.parent AND p.deleted_at = n.deleted_at) "
		"ORDER BY n.deleted_at DESC, n.id DESC");
SD_SQL(q_item_size,
       "WITH RECURSIVE sub(id) AS (SELECT ?1 UNION ALL SELECT k.id FROM nodes k JOIN sub "
       "ON k.parent = sub.id WHERE k.deleted_at = ?2) "
       "SELECT coalesce(sum(size), 0), count(*) FROM nodes WHERE id IN sub AND kind = 1");
SD_SQL(q_place_at, "SELECT parent, name FROM placements WHERE node = ?1 AND t_from <= ?2 "
		   "AND (t_to IS NULL OR t_to > ?2) ORDER BY t_from DESC LIMIT 1");
SD_SQL(q_node_place, "SELECT parent, name FROM nodes WHERE id = ?1");

/* The path node had at `at`, into out ("/a/b"): climbs its stays, or, where
 * none covers that moment (data older than migration 0003), its row. */
static int path_at(sd_dbc *d, int64_t root, int64_t node, int64_t at, sd_buf *out)
{
	char *parts[512];
	int np = 0, r = 0;
	int64_t x = node;
	while (x != root) {
		if (np == 512) {
			r = -ENAMETOOLONG;
			break;
		}
		sqlite3_stmt *st = sd_db_stmt(d, &q_place_at);
		sqlite3_bind_int64(st, 1, x);
		sqlite3_bind_int64(st, 2, at);
		int rc = sqlite3_step(st);
		if (rc != SQLITE_ROW) {
			sqlite3_reset(st);
			st = sd_db_stmt(d, &q_node_place);
			sqlite3_bind_int64(st, 1, x);
			rc = sqlite3_step(st);
		}
		if (rc != SQLITE_ROW || sqlite3_column_type(st, 0) == SQLITE_NULL) {
			sqlite3_reset(st);
			r = -ENOENT;
			break;
		}
		x = sqlite3_column_int64(st, 0);
		parts[np++] = sd_xstrdup((const char *)sqlite3_column_text(st, 1));
		sqlite3_reset(st);
	}
	sd_buf_reset(out);
	for (int i = np - 1; i >= 0; i--) {
		if (r == 0) {
			sd_buf_puts(out, "/");
			sd_buf_puts(out, parts[i]);
		}
		free(parts[i]);
	}
	if (r == 0 && out->len == 0)
		sd_buf_puts(out, "/");
	return r;
}

/* Where a trash item is in a user's view: the root of its tree (the
 * user's, or a shared folder's seen at "/<prefix>"), and the user's rights
 * on it now (team.c T4). */
typedef struct iplace {
	unsigned rights;
	int64_t top;
	int64_t owner;
	int64_t share; /* 0: the user's own tree */
	char prefix[SD_USERNAME_MAX + 2]; /* "" or "/<mount>" */
} iplace;

/* Where the deleted node id (owned by owner) is in the view v, if the
 * user may see it: 0 or -ENOENT. */
static int item_place(sd_view *v, int64_t id, int64_t owner, iplace *ip)
{
	memset(ip, 0, sizeof *ip);
	ip->owner = owner;
	if (owner == v->u->id) {
		ip->rights = SD_RIGHTS_ALL;
		ip->top = v->root;
		return 0;
	}
	int r = sd__view_node_rights(v, id, &ip->rights, &ip->top, &ip->share);
	const sd_mount *m = r == 0 && ip->share ? sd__team_mount_root(v->t, ip->top) : NULL;
	if (!m || !(ip->rights & (SD_RIGHT_READ | SD_RIGHT_LIST)))
		return -ENOENT;
	snprintf(ip->prefix, sizeof ip->prefix, "/%s", m->name);
	return 0;
}

/* The trash item `id` in the view v, in any transaction: its node (as it
 * was when deleted), deletion moment and place. An item of a shared folder
 * is the user's to see when the rules let them list or read it. When
 * entry is given it must be the item's entry name. -ENOENT otherwise. */
static int item_get(sd_core *c, sd_view *v, int64_t id, const char *entry, sd_node *n,
		    int64_t *deleted, iplace *ip)
{
	sqlite3_stmt *st = sd_db_stmt(v->d, &q_item);
	sqlite3_bind_int64(st, 1, id);
	int r = -ENOENT;
	int64_t del = 0, owner = 0;
	char name[SD_NAME_MAX + 1] = "";
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 1) != SQLITE_NULL) {
		owner = sqlite3_column_int64(st, 0);
		del = sqlite3_column_int64(st, 1);
		snprintf(name, sizeof name, "%s", (const char *)sqlite3_column_text(st, 2));
		int inside = sqlite3_column_type(st, 3) != SQLITE_NULL &&
			     sqlite3_column_int64(st, 3) == del; /* deleted with its folder */
		int kept = del >= sd__now_ms(c) - c->conf->deleted_retention;
		r = !inside && kept ? 0 : -ENOENT;
	}
	sqlite3_reset(st);
	if (r == 0)
		r = item_place(v, id, owner, ip);
	if (r == 0 && entry) {
		char want[SD_NAME_MAX + 1];
		trash_entry(del, id, name, want);
		if (strcmp(want, entry) != 0)
			r = -ENOENT;
	}
	if (r == 0) {
		r = node_at(v->d, id, del - 1, n);
		if (r == -ENOENT) /* a file made in the moment it was deleted */
			r = node_at(v->d, id, del, n);
	}
	if (r == 0)
		*deleted = del;
	return r;
}

/* The path item id had just before its deletion, in the view (its place
 * ip), into out. */
static void item_path(sd_dbc *d, const iplace *ip, int64_t id, int64_t del, const char *name,
		      sd_buf *out)
{
	sd_buf p = SD_BUF_INIT;
	if (path_at(d, ip->top, id, del - 1, &p) < 0) {
		sd_buf_reset(&p);
		sd_buf_printf(&p, "/%s", name); /* its folder is gone for good */
	}
	sd_buf_reset(out);
	sd_buf_printf(out, "%s%s", ip->prefix, p.data);
	sd_buf_free(&p);
}

typedef struct titem {
	sd_trash_item t;
	char *path, *name;
	sd_stat st;
} titem;

static int titem_cmp(const void *a, const void *b)
{
	const titem *x = a, *y = b;
	if (x->t.deleted != y->t.deleted)
		return x->t.deleted > y->t.deleted ? -1 : 1;
	return x->t.id > y->t.id ? -1 : x->t.id < y->t.id;
}

/* Every item of u's trash (within deleted_retention), newest first: those
 * of the user's tree, and those of the shared folders they see that the
 * rules let them list or read. */
static int items_load(sd_core *c, const sd_principal *u, titem **out, int *count)
{
	titem *v = NULL;
	int n = 0, cap = 0;
	sd_dbc *d = sd_db_read_begin(c->db);
	sd_view vw;
	int r = sd__view_open(c, d, u, &vw);
	owners o = {{0}, 0};
	if (r == 0)
		owners_of(&vw, &o);
	int64_t *owner_of = NULL;
	for (int k = 0; r == 0 && k < o.n; k++) {
		sqlite3_stmt *st = sd_db_stmt(d, &q_items);
		sqlite3_bind_int64(st, 1, o.id[k]);
		sqlite3_bind_int64(st, 2, sd__now_ms(c) - c->conf->deleted_retention);
		while (sqlite3_step(st) == SQLITE_ROW) {
			if (n == cap) {
				cap = cap ? cap * 2 : 32;
				v = sd_xrealloc(v, (size_t)cap * sizeof *v);
				owner_of = sd_xrealloc(owner_of, (size_t)cap * sizeof *owner_of);
			}
			owner_of[n] = o.id[k];
			titem *it = &v[n++];
			memset(it, 0, sizeof *it);
			it->t.id = sqlite3_column_int64(st, 0);
			it->t.kind = sqlite3_column_int(st, 1);
			it->name = sd_xstrdup((const char *)sqlite3_column_text(st, 2));
			it->t.deleted = sqlite3_column_int64(st, 3);
			it->t.size = (uint64_t)sqlite3_column_int64(st, 4);
			it->t.files = it->t.kind == SD_KIND_FILE;
		}
		sqlite3_reset(st);
	}
	sd_buf p = SD_BUF_INIT;
	int keep = 0;
	for (int i = 0; r == 0 && i < n; i++) {
		titem *it = &v[i];
		iplace ip;
		if (item_place(&vw, it->t.id, owner_of[i], &ip) < 0) {
			free(it->name); /* not the user's to see */
			continue;
		}
		if (it->t.kind == SD_KIND_DIR) {
			sqlite3_stmt *st = sd_db_stmt(d, &q_item_size);
			sqlite3_bind_int64(st, 1, it->t.id);
			sqlite3_bind_int64(st, 2, it->t.deleted);
			if (sqlite3_step(st) == SQLITE_ROW) {
				it->t.size = (uint64_t)sqlite3_column_int64(st, 0);
				it->t.files = sqlite3_column_int64(st, 1);
			}
			sqlite3_reset(st);
		}
		item_path(d, &ip, it->t.id, it->t.deleted, it->name, &p);
		it->path = sd_xstrdup(p.data);
		sd_node nd;
		if (node_at(d, it->t.id, it->t.deleted - 1, &nd) == 0)
			sd__node_to_stat(&nd, &it->st);
		else
			vdir_stat(it->t.id, it->t.deleted / 1000, &it->st);
		char entry[SD_NAME_MAX + 1];
		trash_entry(it->t.deleted, it->t.id, it->name, entry);
		free(it->name);
		it->name = sd_xstrdup(entry);
		it->t.path = it->path;
		it->t.name = it->name;
		v[keep++] = *it;
	}
	n = keep;
	free(owner_of);
	sd_buf_free(&p);
	sd__view_close(&vw);
	sd_db_read_end(c->db, d);
	if (n > 1) /* the trees' items merged, most recently deleted first */
		qsort(v, (size_t)n, sizeof *v, titem_cmp);
	*out = v;
	*count = n;
	if (r < 0) {
		for (int i = 0; i < n; i++) {
			free(v[i].path);
			free(v[i].name);
		}
		free(v);
		*out = NULL;
		*count = 0;
	}
	return r;
}

static void items_free(titem *v, int n)
{
	for (int i = 0; i < n; i++) {
		free(v[i].path);
		free(v[i].name);
	}
	free(v);
}

int sd__hist_trash_list(sd_core *c, const sd_principal *u, sd_trash_cb cb, void *arg)
{
	titem *v;
	int n, r = items_load(c, u, &v, &n);
	if (r < 0)
		return r;
	int delivered = 0;
	for (int i = 0; i < n; i++) {
		delivered++;
		if (cb && cb(arg, &v[i].t))
			break;
	}
	items_free(v, n);
	return delivered;
}

/* ------------------------------------------------------------ virtual reads */

/* Resolve a path under a virtual folder to a node of a view: the view's
 * top node and moment go into *top and *at. -EISDIR-free: folders of our
 * own making (VK_SNAPS, VK_DAY, VK_TRASH) answer *synthetic = 1 with st. */
typedef struct vres {
	int synthetic;      /* one of our own folders: st says what */
	sd_stat st;
	past_top top;       /* otherwise: the view */
	int64_t at;
	const char *rel;
	sd_node node;       /* ... and the node found in it */
} vres;

static int vresolve(sd_core *c, sd_view *vw, const vpath *v, vres *out)
{
	memset(out, 0, sizeof *out);
	sd_dbc *d = vw->d;
	int64_t now = sd__now_ms(c), horizon = sd__history_horizon(c, now);
	owners o;
	owners_of(vw, &o);
	switch (v->kind) {
	case VK_SNAPS: {
		int64_t last = next_change(d, &o, 0, INT64_MAX, 1);
		out->synthetic = 1;
		vdir_stat(VID(1), (last < 0 ? now : last) / 1000, &out->st);
		return 0;
	}
	case VK_DAY: {
		if (v->day + DAY_MS <= horizon)
			return -SD_EHISTORY;
		int64_t last = next_change(d, &o, v->day, v->day + DAY_MS, 1);
		out->synthetic = 1;
		vdir_stat(VID(v->day * 2), (last < 0 ? v->day : last) / 1000, &out->st);
		return 0;
	}
	case VK_TRASH:
		out->synthetic = 1;
		vdir_stat(VID(2), now / 1000, &out->st);
		return 0;
	case VK_AT: {
		if (v->at < horizon)
			return -SD_EHISTORY;
		out->top = root_top(vw);
		out->at = v->at;
		out->rel = v->rest;
		int r = past_lookup(vw, &out->top, out->at, out->rel, &out->node);
		if (r == 0 && !out->node.vis)
			r = -ENOENT; /* team.c T6, in the past too */
		if (r < 0)
			return r;
		if (!*v->rest) { /* the view's root: named after its moment */
			vdir_stat(VID(v->at * 2 + 1), v->at / 1000, &out->st);
			out->st.ctime = out->node.ctime;
			return 0;
		}
		view_stat(d, &out->node, out->at, &out->st);
		return 0;
	}
	case VK_ITEM: {
		int64_t del;
		iplace ip;
		int r = item_get(c, vw, v->item, v->entry, &out->node, &del, &ip);
		if (r < 0)
			return r;
		out->top.id = v->item;
		out->top.rights = ip.rights;
		out->top.share = ip.share;
		out->at = del - 1;
		out->rel = v->rest;
		r = past_lookup(vw, &out->top, out->at, out->rel, &out->node);
		if (r == 0 && !out->node.vis)
			r = -ENOENT;
		if (r < 0)
			return r;
		view_stat(d, &out->node, out->at, &out->st);
		return 0;
	}
	}
	return -ENOENT;
}

/* vresolve in a read transaction and a view of its own. */
static int vresolve_read(sd_core *c, const sd_principal *u, const vpath *v, vres *out)
{
	sd_dbc *d = sd_db_read_begin(c->db);
	sd_view vw;
	int r = sd__view_open(c, d, u, &vw);
	if (r == 0)
		r = vresolve(c, &vw, v, out);
	sd__view_close(&vw);
	sd_db_read_end(c->db, d);
	return r;
}

int sd__virt_stat(sd_core *c, const sd_principal *u, const char *np, sd_stat *st)
{
	vpath v;
	int r = vparse(np, &v);
	if (r < 0)
		return r;
	vres x;
	r = vresolve_read(c, u, &v, &x);
	if (r == 0)
		*st = x.st;
	return r;
}

static int trash_root_readdir(sd_core *c, const sd_principal *u, const char *after, int limit,
			      sd_readdir_cb cb, void *arg, int *more)
{
	titem *v;
	int n, r = items_load(c, u, &v, &n);
	if (r < 0)
		return r;
	hlist l = {0};
	for (int i = 0; i < n; i++)
		hlist_add(&l, v[i].name, &v[i].st);
	items_free(v, n);
	r = hlist_readdir(&l, after, limit, cb, arg, more);
	hlist_free(&l);
	return r;
}

int sd__virt_readdir(sd_core *c, const sd_principal *u, const char *np, const char *after,
		     int limit, sd_readdir_cb cb, void *arg, int *more)
{
	if (more)
		*more = 0;
	vpath v;
	int r = vparse(np, &v);
	if (r < 0)
		return r;
	vres x;
	r = vresolve_read(c, u, &v, &x);
	if (r < 0)
		return r;
	if (!x.synthetic && x.node.kind != SD_KIND_DIR)
		return -ENOTDIR;
	if (!x.synthetic && !(x.node.rights & SD_RIGHT_LIST))
		return -EACCES;
	hlist l = {0};
	switch (v.kind) {
	case VK_SNAPS:
		list_days(c, u, &l);
		break;
	case VK_DAY:
		list_seconds(c, u, v.day, &l);
		break;
	case VK_TRASH:
		return trash_root_readdir(c, u, after, limit, cb, arg, more);
	default: {
		view_ctx vc = {c, u, x.top, x.at, x.rel};
		return paged_readdir(view_fetch, &vc, after, limit, cb, arg, more);
	}
	}
	r = hlist_readdir(&l, after, limit, cb, arg, more);
	hlist_free(&l);
	return r;
}

/* The content of a file of a view: a reader opened inside the read
 * transaction that found its version, so the blob is still referenced
 * (I3, as reader.c). */
static int virt_reader(sd_core *c, const sd_principal *u, const char *np, sd_reader **out,
		       sd_stat *st, int64_t *blob)
{
	vpath v;
	int r = vparse(np, &v);
	if (r < 0)
		return r;
	vres x;
	sd_dbc *d = sd_db_read_begin(c->db);
	sd_view vw;
	r = sd__view_open(c, d, u, &vw);
	if (r == 0)
		r = vresolve(c, &vw, &v, &x);
	sd__view_close(&vw);
	if (r == 0 && (x.synthetic || x.node.kind != SD_KIND_FILE))
		r = -EISDIR;
	if (r == 0 && !(x.node.rights & SD_RIGHT_READ))
		r = -EACCES;
	if (r == 0)
		r = sd__reader_open_hex(c, x.node.sha256, x.node.size, out);
	sd_db_read_end(c->db, d);
	if (r == 0) {
		if (st)
			*st = x.st;
		if (blob)
			*blob = x.node.blob;
		sd__blob_touch(c, x.node.blob);
	}
	return r;
}

int sd__virt_open_read(sd_core *c, const sd_principal *u, const char *np, sd_reader **out,
		       sd_stat *st)
{
	return virt_reader(c, u, np, out, st, NULL);
}

int sd__virt_open_file(sd_core *c, const sd_principal *u, const char *np, unsigned flags,
		       sd_file **out, sd_stat *st)
{
	if (flags & (SD_O_WRITE | SD_O_APPEND | SD_O_TRUNC | SD_O_CREAT | SD_O_EXCL))
		return sd__virt_refuse(np);
	sd_reader *rd;
	sd_stat vst;
	int r = virt_reader(c, u, np, &rd, &vst, NULL);
	if (r < 0)
		return r;
	if ((r = sd__file_open_view(c, u, np, rd, &vst, out)) < 0) {
		sd__reader_close(rd);
		return r;
	}
	if (st)
		*st = vst;
	return 0;
}

/* copy with a source in a view: the content of then becomes a new
 * version at nt (nothing copied). */
int sd__virt_copy(sd_core *c, const sd_principal *u, const char *nf, const char *nt)
{
	int r = sd__check_writable(u);
	if (r < 0)
		return r;
	if (strcmp(nt, "/") == 0)
		return -EISDIR;
	vpath v;
	if ((r = vparse(nf, &v)) < 0)
		return r;
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	vres x;
	sd_view vw;
	r = sd__view_open(c, d, u, &vw);
	if (r == 0)
		r = vresolve(c, &vw, &v, &x);
	sd__view_close(&vw);
	if (r == 0 && (x.synthetic || x.node.kind != SD_KIND_FILE))
		r = -EISDIR;
	if (r == 0 && !(x.node.rights & SD_RIGHT_READ))
		r = -EACCES;
	if (r == 0) {
		sd_put put = {.u = u, .npath = nt, .mode = x.node.mode | 0200, .size = x.node.size,
			      .op = "copy"};
		r = sd__tree_put(c, d, x.node.blob, &put);
	}
	int cr = sd_db_write_end(c->db, d, r == 0);
	return r ? r : cr;
}

/* ------------------------------------------------------------ "/" listed */

/* The readdir of "/" with /.snapshots and /.trash among its entries
 * (show_history_folders): the tree's entries and ours merged in name
 * order, with the limit and "more" of the contract. */
typedef struct merge_ctx {
	sd_core *c;
	const sd_principal *u;
	const char *vnames[2];
	sd_stat vst[2];
	int nv, vi;
	int limit, delivered, stopped, more;
	sd_readdir_cb cb;
	void *arg;
} merge_ctx;

/* Deliver one entry; nonzero stops. */
static int merge_one(merge_ctx *m, const sd_dirent *e)
{
	if (m->limit > 0 && m->delivered >= m->limit) {
		m->more = 1;
		return 1;
	}
	m->delivered++;
	if (m->cb && m->cb(m->arg, e)) {
		m->stopped = 1;
		return 1;
	}
	return 0;
}

static int merge_cb(void *arg, const sd_dirent *e)
{
	merge_ctx *m = arg;
	while (m->vi < m->nv && strcmp(m->vnames[m->vi], e->name) < 0) {
		sd_dirent ve = {m->vnames[m->vi], m->vst[m->vi]};
		m->vi++;
		if (merge_one(m, &ve)) {
			m->more = 1; /* e is still to come */
			return 1;
		}
	}
	return merge_one(m, e);
}

int sd__hist_readdir_root(sd_core *c, const sd_principal *u, const char *after, int limit,
			  sd_readdir_cb cb, void *arg, int *more)
{
	merge_ctx m = {.c = c, .u = u, .limit = limit, .cb = cb, .arg = arg};
	static const char *names[2] = {"/" SNAPS, "/" TRASH};
	for (int i = 0; i < 2; i++) {
		const char *nm = names[i] + 1;
		if (after && strcmp(nm, after) <= 0)
			continue;
		if (sd__virt_stat(c, u, names[i], &m.vst[m.nv]) == 0)
			m.vnames[m.nv++] = nm;
	}
	int tmore = 0;
	int r = sd__tree_readdir(c, u, "/", after, 0, merge_cb, &m, &tmore);
	if (r < 0)
		return r;
	if (!m.stopped && !(m.limit > 0 && m.more)) {
		while (m.vi < m.nv) {
			sd_dirent ve = {m.vnames[m.vi], m.vst[m.vi]};
			m.vi++;
			if (merge_one(&m, &ve))
				break;
		}
	}
	if (more)
		*more = m.more || (m.stopped && (tmore || m.vi < m.nv));
	return m.delivered;
}

/* ------------------------------------------------------------ at_path */

int sd__hist_at_path(sd_core *c, const sd_principal *u, const char *np, int64_t at, char *out,
		     size_t outlen)
{
	(void)u;
	if (sd__virt_kind(np) != SD_VIRT_NONE)
		return -EINVAL;
	if (at < sd__history_horizon(c, sd__now_ms(c)) || at < 0)
		return -SD_EHISTORY;
	char day[16], sec[16];
	fmt(at, "%Y-%m-%d", day, sizeof day);
	fmt(at, "%H-%M-%S", sec, sizeof sec);
	int n = snprintf(out, outlen, "/" SNAPS "/%s/%s.%03d%s", day, sec, (int)(at % 1000),
			 strcmp(np, "/") == 0 ? "" : np);
	if (n < 0 || (size_t)n >= outlen || n > SD_PATH_MAX)
		return -ENAMETOOLONG;
	return 0;
}

/* ------------------------------------------------------------ version restore */

SD_SQL(q_version_of, "SELECT blob, size FROM versions WHERE id = ?1 AND node = ?2");

int sd__hist_version_restore(sd_core *c, const sd_principal *u, const char *np, int64_t vid,
			     sd_stat *st)
{
	int r = sd__check_writable(u);
	if (r < 0)
		return r;
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	sd_node n;
	r = sd__tree_lookup(c, d, u, np, &n);
	if (r == 0 && !n.vis)
		r = -ENOENT;
	if (r == 0 && n.kind != SD_KIND_FILE)
		r = -EISDIR;
	int64_t blob = 0, size = 0;
	if (r == 0) {
		sqlite3_stmt *q = sd_db_stmt(d, &q_version_of);
		sqlite3_bind_int64(q, 1, vid);
		sqlite3_bind_int64(q, 2, n.id);
		r = -ENOENT;
		if (sqlite3_step(q) == SQLITE_ROW) {
			blob = sqlite3_column_int64(q, 0);
			size = sqlite3_column_int64(q, 1);
			r = 0;
		}
		sqlite3_reset(q);
	}
	if (r == 0) {
		/* a new version, even when it names the current content: the
		 * restore is in the file's history either way */
		sd_put put = {.u = u, .npath = np, .size = (uint64_t)size, .op = "restore",
			      .expect_node = n.id, .st = st};
		r = sd__tree_put(c, d, blob, &put);
	}
	int cr = sd_db_write_end(c->db, d, r == 0);
	return r ? r : cr;
}

/* ------------------------------------------------------------ trash restore, empty */

SD_SQL(q_sub_clear, "DELETE FROM temp.hist_sub");
SD_SQL(q_sub_deleted_with,
       "INSERT INTO temp.hist_sub(id) WITH RECURSIVE sub(id) AS (SELECT ?1 UNION ALL "
       "SELECT k.id FROM nodes k JOIN sub ON k.parent = sub.id WHERE k.deleted_at = ?2) "
       "SELECT id FROM sub");
SD_SQL(q_sub_bytes, "SELECT coalesce(sum(size), 0) FROM nodes WHERE kind = 1 AND id IN "
		    "(SELECT id FROM temp.hist_sub)");
SD_SQL(q_sub_revive, "UPDATE nodes SET deleted_at = NULL WHERE id IN (SELECT id FROM temp.hist_sub)");
SD_SQL(q_sub_places, "INSERT INTO placements(node, owner, parent, name, t_from) "
		     "SELECT id, owner, parent, name, ?2 FROM nodes WHERE id IN "
		     "(SELECT id FROM temp.hist_sub) AND id != ?1");
SD_SQL(q_attach, "UPDATE nodes SET parent = ?2, name = ?3 WHERE id = ?1");
SD_SQL(q_purge_roots_of, "SELECT n.id FROM nodes n WHERE n.owner = ?1 AND n.deleted_at IS NOT NULL "
			 "AND NOT EXISTS (SELECT 1 FROM nodes p WHERE p.id = n.parent AND "
			 "p.deleted_at IS NOT NULL)");
SD_SQL(q_items_count, "SELECT count(*) FROM nodes n WHERE n.owner = ?1 AND n.deleted_at IS NOT NULL "
		      "AND NOT EXISTS (SELECT 1 FROM nodes p WHERE p.id = n.parent AND "
		      "p.deleted_at = n.deleted_at)");

static int sub_table(sd_dbc *d)
{
	char *err = NULL;
	int rc = sqlite3_exec(sd_db_handle(d),
			      "CREATE TEMP TABLE IF NOT EXISTS hist_sub(id INTEGER PRIMARY KEY)", NULL,
			      NULL, &err);
	sqlite3_free(err);
	if (rc != SQLITE_OK)
		return sd_db_errno(rc);
	return sd_db_exec_stmt(sd_db_stmt(d, &q_sub_clear));
}

int sd__hist_trash_restore(sd_core *c, const sd_principal *u, int64_t id, const char *to,
			   int parents, sd_stat *st)
{
	int r = sd__check_writable(u);
	if (r < 0)
		return r;
	if (to && sd__virt_kind(to) != SD_VIRT_NONE)
		return sd__virt_refuse(to);
	if (to && strcmp(to, "/") == 0)
		return -EEXIST;
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	int64_t now = sd__now_ms(c), del = 0;
	sd_node n, dir;
	sd_buf orig = SD_BUF_INIT;
	const char *leaf = NULL, *target = to;
	sd_view vw;
	iplace ip;
	memset(&ip, 0, sizeof ip);
	r = sd__view_open(c, d, u, &vw);
	if (r == 0)
		r = item_get(c, &vw, id, NULL, &n, &del, &ip);
	if (r == 0 && !to) {
		sd_buf p = SD_BUF_INIT;
		if (path_at(d, ip.top, id, del - 1, &p) < 0) {
			/* its folder is gone for good: at the root of its tree */
			sqlite3_stmt *q = sd_db_stmt(d, &q_node_place);
			sqlite3_bind_int64(q, 1, id);
			sd_buf_reset(&p);
			if (sqlite3_step(q) == SQLITE_ROW)
				sd_buf_printf(&p, "/%s", (const char *)sqlite3_column_text(q, 1));
			else
				r = -ENOENT;
			sqlite3_reset(q);
		}
		sd_buf_printf(&orig, "%s%s", ip.prefix, p.data ? p.data : "");
		sd_buf_free(&p);
		target = orig.data;
		if (r == 0 && sd__virt_kind(target) != SD_VIRT_NONE)
			r = -EACCES;
	}
	parents = parents || to == NULL; /* to its place: missing folders are made */
	if (r == 0)
		r = sd__view_parent(&vw, target, parents, now, &dir, &leaf);
	if (r == 0 && dir.owner != n.owner)
		r = -EXDEV; /* back into the tree it was deleted from only */
	if (r == 0 && !(dir.rights & SD_RIGHT_WRITE))
		r = -EACCES; /* team.c T7 */
	if (r == 0) {
		sd_node other;
		r = sd__view_child(&vw, &dir, leaf, strlen(leaf), &other);
		r = r == 0 ? -EEXIST : r == -ENOENT ? 0 : r;
	}
	int64_t bytes = 0;
	if (r == 0 && (r = sub_table(d)) == 0) {
		sqlite3_stmt *q = sd_db_stmt(d, &q_sub_deleted_with);
		sqlite3_bind_int64(q, 1, id);
		sqlite3_bind_int64(q, 2, del);
		r = sd_db_exec_stmt(q);
	}
	if (r == 0) { /* at its new place first: its old name may be taken */
		sqlite3_stmt *q = sd_db_stmt(d, &q_attach);
		sqlite3_bind_int64(q, 1, id);
		sqlite3_bind_int64(q, 2, dir.id);
		sqlite3_bind_text(q, 3, leaf, -1, SQLITE_STATIC);
		r = sd_db_exec_stmt(q);
	}
	if (r == 0) {
		sqlite3_stmt *q = sd_db_stmt(d, &q_sub_bytes);
		if (sqlite3_step(q) == SQLITE_ROW)
			bytes = sqlite3_column_int64(q, 0);
		sqlite3_reset(q);
		r = sd_db_exec_stmt(sd_db_stmt(d, &q_sub_revive));
	}
	if (r == 0) { /* H1: every node brought back begins a stay */
		sqlite3_stmt *q = sd_db_stmt(d, &q_sub_places);
		sqlite3_bind_int64(q, 1, id);
		sqlite3_bind_int64(q, 2, now);
		r = sd_db_exec_stmt(q);
	}
	if (r == 0)
		r = sd__place_open(d, id, n.owner, dir.id, leaf, strlen(leaf), now);
	if (r == 0 && bytes)
		r = sd__tree_used_add(d, n.owner, bytes, 1);
	if (r == 0)
		r = sd__tree_changed(d, n.owner, now);
	if (r == 0) {
		/* args: what finds the item on a copy (replica.c), where node ids
		 * differ: the path it was deleted from and its stamp */
		sd_buf det = SD_BUF_INIT, args = SD_BUF_INIT, from = SD_BUF_INIT;
		char stamp[32];
		fmt_iso(del, stamp);
		sd_buf p = SD_BUF_INIT;
		if (path_at(d, ip.top, id, del - 1, &p) < 0)
			sd_buf_puts(&from, target);
		else
			sd_buf_printf(&from, "%s%s", ip.prefix, p.data);
		sd_buf_free(&p);
		sd_buf_printf(&det, "item=%lld deleted=%s from=%s", (long long)id, stamp, from.data);
		sd__jargs_str(&args, "from", from.data);
		sd__jargs_int(&args, "deleted_at", del);
		if (parents)
			sd__jargs_int(&args, "parents", 1);
		r = sd__journal_args(d, now, u->name, "untrash", target, det.data, &args);
		sd_buf_free(&det);
		sd_buf_free(&from);
	}
	if (r == 0 && st) {
		sd_node back;
		if ((r = sd__tree_node(d, id, &back)) == 0) {
			sd__node_to_stat(&back, st);
			if (back.kind == SD_KIND_FILE)
				st->versions = sd__version_count(d, id);
		}
	}
	sd__view_close(&vw);
	int cr = sd_db_write_end(c->db, d, r == 0);
	sd_buf_free(&orig);
	return r ? r : cr;
}

int sd__hist_trash_empty(sd_core *c, const sd_principal *u, int64_t id)
{
	int r = sd__check_writable(u);
	if (r < 0)
		return r;
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	int64_t items = 0, now = sd__now_ms(c), del = 0;
	sd_buf from = SD_BUF_INIT;
	if (id > 0) {
		/* one item: the user's own, or one of a shared folder they may
		 * delete (team.c T7) */
		sd_node n;
		sd_view vw;
		iplace ip;
		r = sd__view_open(c, d, u, &vw);
		if (r == 0)
			r = item_get(c, &vw, id, NULL, &n, &del, &ip);
		if (r == 0 && !(ip.rights & SD_RIGHT_DELETE))
			r = -EACCES;
		sd_buf p = SD_BUF_INIT;
		if (r == 0 && path_at(d, ip.top, id, del - 1, &p) == 0)
			sd_buf_printf(&from, "%s%s", ip.prefix, p.data);
		sd_buf_free(&p);
		sd__view_close(&vw);
		if (r == 0)
			r = sd__purge_subtree(c, d, id, NULL);
		items = 1;
	} else { /* all: the user's own trash (a shared folder's, item by item) */
		sqlite3_stmt *q = sd_db_stmt(d, &q_items_count);
		sqlite3_bind_int64(q, 1, u->id);
		if (sqlite3_step(q) == SQLITE_ROW)
			items = sqlite3_column_int64(q, 0);
		sqlite3_reset(q);
		int64_t *ids = NULL;
		size_t n = 0, cap = 0;
		q = sd_db_stmt(d, &q_purge_roots_of);
		sqlite3_bind_int64(q, 1, u->id);
		while (sqlite3_step(q) == SQLITE_ROW) {
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				ids = sd_xrealloc(ids, cap * sizeof *ids);
			}
			ids[n++] = sqlite3_column_int64(q, 0);
		}
		sqlite3_reset(q);
		for (size_t i = 0; r == 0 && i < n; i++)
			r = sd__purge_subtree(c, d, ids[i], NULL);
		free(ids);
	}
	if (r == 0 && items > 0) {
		/* args: what finds the item on a copy (replica.c) */
		sd_buf args = SD_BUF_INIT;
		char det[48];
		snprintf(det, sizeof det, "items=%lld", (long long)items);
		if (id > 0) {
			sd__jargs_str(&args, "from", from.data ? from.data : "");
			sd__jargs_int(&args, "deleted_at", del);
		} else {
			sd__jargs_int(&args, "all", 1);
		}
		r = sd__journal_args(d, now, u->name, "trash_empty", NULL, id > 0 ? det : "all", &args);
	}
	sd_buf_free(&from);
	int cr = sd_db_write_end(c->db, d, r == 0);
	if (r || cr)
		return r ? r : cr;
	return (int)(items > INT32_MAX ? INT32_MAX : items);
}

/* rename out of /.trash/: restore the item there. */
int sd__virt_rename(sd_core *c, const sd_principal *u, const char *nf, const char *nt,
		    unsigned flags)
{
	(void)flags; /* a restore never replaces: -EEXIST when nt is taken */
	vpath v;
	int r = vparse(nf, &v);
	if (r < 0)
		return r;
	if (v.kind != VK_ITEM || *v.rest)
		return sd__virt_refuse(nf);
	if (sd__virt_kind(nt) != SD_VIRT_NONE)
		return sd__virt_refuse(nt);
	sd_dbc *d = sd_db_read_begin(c->db);
	sd_node n;
	int64_t del;
	sd_view vw;
	iplace ip;
	r = sd__view_open(c, d, u, &vw);
	if (r == 0)
		r = item_get(c, &vw, v.item, v.entry, &n, &del, &ip);
	sd__view_close(&vw);
	sd_db_read_end(c->db, d);
	if (r < 0)
		return r;
	return sd__hist_trash_restore(c, u, v.item, nt, 0, NULL);
}

SD_SQL(q_items_at, "SELECT n.id FROM nodes n WHERE n.owner = ?1 AND n.deleted_at = ?2 AND NOT "
		   "EXISTS (SELECT 1 FROM nodes p WHERE p.id = n.parent AND p.deleted_at = n.deleted_at)");

int sd__hist_find_item(sd_core *c, const sd_principal *u, const char *from, int64_t deleted_at,
		       int64_t *id)
{
	sd_dbc *d = sd_db_read_begin(c->db);
	sd_view vw;
	int64_t ids[64], owner = u->id, top = 0;
	const char *rel = from;
	int n = 0;
	int r = sd__view_open(c, d, u, &vw);
	if (r == 0) {
		top = vw.root;
		/* "/<mount>/..." is in a shared folder */
		const char *p = from + (from[0] == '/'), *e = strchr(p, '/');
		const sd_mount *m = e ? sd__team_mount(vw.t, p, (size_t)(e - p)) : NULL;
		if (m) {
			owner = m->account;
			top = m->root;
			rel = e;
		}
		sqlite3_stmt *st = sd_db_stmt(d, &q_items_at);
		sqlite3_bind_int64(st, 1, owner);
		sqlite3_bind_int64(st, 2, deleted_at);
		while (n < 64 && sqlite3_step(st) == SQLITE_ROW)
			ids[n++] = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		r = -ENOENT;
	}
	sd_buf p = SD_BUF_INIT;
	for (int i = 0; i < n && r == -ENOENT; i++) {
		if (path_at(d, top, ids[i], deleted_at - 1, &p) == 0 && strcmp(p.data, rel) == 0) {
			*id = ids[i];
			r = 0;
		}
	}
	sd_buf_free(&p);
	sd__view_close(&vw);
	sd_db_read_end(c->db, d);
	return r;
}

/* ------------------------------------------------------------ rollback */

/* An id -> index map (open addressing), for the node sets of a rollback. */
typedef struct idmap {
	int64_t *keys;
	int *vals;
	size_t cap, n;
} idmap;

static void idmap_put(idmap *m, int64_t k, int v)
{
	if ((m->n + 1) * 2 > m->cap) {
		idmap old = *m;
		m->cap = m->cap ? m->cap * 2 : 256;
		m->keys = sd_xcalloc(m->cap, sizeof *m->keys);
		m->vals = sd_xcalloc(m->cap, sizeof *m->vals);
		m->n = 0;
		for (size_t i = 0; i < old.cap; i++)
			if (old.keys[i])
				idmap_put(m, old.keys[i], old.vals[i]);
		free(old.keys);
		free(old.vals);
	}
	size_t i = (size_t)((uint64_t)k * 0x9E3779B97F4A7C15ull) & (m->cap - 1);
	while (m->keys[i] && m->keys[i] != k)
		i = (i + 1) & (m->cap - 1);
	if (!m->keys[i])
		m->n++;
	m->keys[i] = k;
	m->vals[i] = v;
}

/* The index stored for k, or -1. */
static int idmap_get(const idmap *m, int64_t k)
{
	if (!m->cap)
		return -1;
	size_t i = (size_t)((uint64_t)k * 0x9E3779B97F4A7C15ull) & (m->cap - 1);
	while (m->keys[i]) {
		if (m->keys[i] == k)
			return m->vals[i];
		i = (i + 1) & (m->cap - 1);
	}
	return -1;
}

static void idmap_free(idmap *m)
{
	free(m->keys);
	free(m->vals);
}

/* One node of a subtree (S: at T; L: now), parents before children. */
typedef struct rbn {
	sd_node n;        /* S: as at T (blob, size of then); L: as now */
	int parent;       /* index of its parent in the same array, -1 for P */
	char *name;
	int64_t live_id;  /* S: the node that holds its place after the rollback */
	int detached;     /* L: taken from its place in step 3 */
} rbn;

typedef struct rbset {
	rbn *v;
	int n, cap;
	idmap ix; /* node id -> index */
} rbset;

static int rb_add(rbset *s, const sd_node *n, int parent, const char *name)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 256;
		s->v = sd_xrealloc(s->v, (size_t)s->cap * sizeof *s->v);
	}
	rbn *e = &s->v[s->n];
	memset(e, 0, sizeof *e);
	e->n = *n;
	e->parent = parent;
	e->name = sd_xstrdup(name);
	idmap_put(&s->ix, n->id, s->n);
	return s->n++;
}

static void rb_free(rbset *s)
{
	for (int i = 0; i < s->n; i++)
		free(s->v[i].name);
	free(s->v);
	idmap_free(&s->ix);
}

/* "<P>/<relative path of entry i>" into b. */
static void rb_path(const rbset *s, int i, const char *np, sd_buf *b)
{
	const char *parts[1024];
	int k = 0;
	for (int j = i; j >= 0 && s->v[j].parent >= 0 && k < 1024; j = s->v[j].parent)
		parts[k++] = s->v[j].name;
	sd_buf_reset(b);
	sd_buf_puts(b, strcmp(np, "/") == 0 ? "" : np);
	while (k > 0) {
		sd_buf_puts(b, "/");
		sd_buf_puts(b, parts[--k]);
	}
	if (b->len == 0)
		sd_buf_puts(b, "/");
}

SD_SQL(q_live_children, "SELECT n.id, n.parent, n.owner, n.blob, n.kind, n.size, n.mode, n.mtime, "
			"n.ctime, NULL, n.name FROM nodes n WHERE n.parent = ?1 AND n.deleted_at IS NULL");
SD_SQL(q_children_at,
       "SELECT p.node, p.name FROM placements p WHERE p.parent = ?1 AND p.t_from <= ?2 "
       "AND (p.t_to IS NULL OR p.t_to > ?2)");
SD_SQL(q_node_live, "SELECT deleted_at IS NULL FROM nodes WHERE id = ?1");
SD_SQL(q_delete_one, "UPDATE nodes SET deleted_at = ?2 WHERE id = ?1");
SD_SQL(q_detach, "UPDATE nodes SET parent = NULL WHERE id = ?1");
SD_SQL(q_revive_one, "UPDATE nodes SET deleted_at = NULL, parent = ?2, name = ?3 WHERE id = ?1");
SD_SQL(q_set_content, "UPDATE nodes SET blob = ?2, size = ?3, mtime = ?4 WHERE id = ?1");

/* S: P's subtree at `at`, from node top (BFS). */
static int rb_load_past(sd_dbc *d, int64_t top, int64_t at, const char *leaf, rbset *s)
{
	sd_node n;
	int r = node_at(d, top, at, &n);
	if (r < 0)
		return r;
	rb_add(s, &n, -1, leaf);
	for (int i = 0; i < s->n; i++) {
		if (s->v[i].n.kind != SD_KIND_DIR)
			continue;
		int64_t dir = s->v[i].n.id;
		/* collect first: node_at uses other statements */
		struct kid {
			int64_t id;
			char *name;
		} *kids = NULL;
		int nk = 0, ck = 0;
		sqlite3_stmt *st = sd_db_stmt(d, &q_children_at);
		sqlite3_bind_int64(st, 1, dir);
		sqlite3_bind_int64(st, 2, at);
		while (sqlite3_step(st) == SQLITE_ROW) {
			if (nk == ck) {
				ck = ck ? ck * 2 : 64;
				kids = sd_xrealloc(kids, (size_t)ck * sizeof *kids);
			}
			kids[nk].id = sqlite3_column_int64(st, 0);
			kids[nk].name = sd_xstrdup((const char *)sqlite3_column_text(st, 1));
			nk++;
		}
		sqlite3_reset(st);
		for (int k = 0; k < nk; k++) {
			if (node_at(d, kids[k].id, at, &n) == 0) /* a file without content then: none */
				rb_add(s, &n, i, kids[k].name);
			free(kids[k].name);
		}
		free(kids);
	}
	return 0;
}

/* L: P's live subtree now, from node top (BFS). */
static void rb_load_live(sd_dbc *d, const sd_node *top, const char *leaf, rbset *s)
{
	rb_add(s, top, -1, leaf);
	for (int i = 0; i < s->n; i++) {
		if (s->v[i].n.kind != SD_KIND_DIR)
			continue;
		sqlite3_stmt *st = sd_db_stmt(d, &q_live_children);
		sqlite3_bind_int64(st, 1, s->v[i].n.id);
		while (sqlite3_step(st) == SQLITE_ROW) {
			sd_node n;
			sd__tree_read_node(st, &n);
			rb_add(s, &n, i, (const char *)sqlite3_column_text(st, 10));
		}
		sqlite3_reset(st);
	}
}

static int exec_id(sd_dbc *d, sd_sql *q, int64_t id, int64_t v)
{
	sqlite3_stmt *st = sd_db_stmt(d, q);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, v);
	return sd_db_exec_stmt(st);
}

int sd__hist_rollback(sd_core *c, const sd_principal *u, const char *np, int64_t at,
		      sd_rollback_report *rep)
{
	int r = sd__check_writable(u);
	if (r < 0)
		return r;
	sd_rollback_report rp;
	memset(&rp, 0, sizeof rp);
	sd_dbc *d = sd_db_write_begin(c->db);
	if (!d)
		return -EIO;
	int64_t R = sd__now_ms(c), root = 0, net = 0, owner = u->id;
	rp.ts = R;
	rbset S = {0}, L = {0};
	sd_buf path = SD_BUF_INIT, det = SD_BUF_INIT;
	sd_node pdir, pL, pT;
	int haveL = 0, haveT = 0;
	memset(&pdir, 0, sizeof pdir);
	sd_view vw;
	const char *rel = np; /* P in the tree that holds it */
	int in_share = 0;
	unsigned prights = SD_RIGHTS_ALL;

	if ((r = sd__view_open(c, d, u, &vw)) < 0)
		goto out;
	if (at < sd__history_horizon(c, R)) {
		r = -SD_EHISTORY;
		goto out;
	}
	root = vw.root;
	{
		/* P in a shared folder: its tree is the folder's (team.c T1) */
		const char *p1 = np + 1, *e = strchr(p1, '/');
		size_t n1 = e ? (size_t)(e - p1) : strlen(p1);
		const sd_mount *m = n1 ? sd__team_mount(vw.t, p1, n1) : NULL;
		if (m) {
			in_share = 1;
			root = m->root;
			owner = m->account;
			rel = e ? e : "/";
			unsigned rr = 0;
			prights = sd__team_rule(vw.t, m->root, &rr) ? rr : 0;
		}
	}
	int is_root = strcmp(rel, "/") == 0;
	const char *leaf = is_root ? "" : strrchr(np, '/') + 1;
	/* 1. P now and at T, and the folder that holds it now */
	r = sd__view_lookup(&vw, np, &pL);
	if (r < 0 && r != -ENOENT)
		goto out;
	haveL = r == 0 && pL.vis;
	if (haveL)
		prights = pL.rights;
	{
		past_top top = {root, SD_RIGHTS_ALL, 0};
		r = past_lookup(&vw, &top, at, rel, &pT);
	}
	if (r < 0 && r != -ENOENT && r != -ENOTDIR)
		goto out;
	haveT = r == 0;
	r = 0;
	if (!haveL && !haveT) {
		r = -ENOENT;
		goto out;
	}
	if (in_share && !haveL && haveT)
		sd__view_node_rights(&vw, pT.id, &prights, NULL, NULL);
	if (!is_root) {
		const char *lf;
		if ((r = sd__view_parent(&vw, np, 0, R, &pdir, &lf)) < 0)
			goto out;
	}
	if (haveT && (r = rb_load_past(d, pT.id, at, leaf, &S)) < 0)
		goto out;
	if (haveL)
		rb_load_live(d, &pL, leaf, &L);
	if (in_share) {
		/* team.c T7: write and delete at P and on every rule node of
		 * what it holds, then or now (a rule that hides a folder from the
		 * user keeps it out of their rollback, and out of their sight) */
		const unsigned need = SD_RIGHT_WRITE | SD_RIGHT_DELETE;
		int ok = (prights & need) == need;
		for (int k = 0; ok && k < 2; k++) {
			rbset *set = k ? &L : &S;
			for (int i = 0; ok && i < set->n; i++) {
				unsigned rr;
				if (sd__team_rule(vw.t, set->v[i].n.id, &rr) && (rr & need) != need)
					ok = 0;
			}
		}
		if (!ok) {
			r = -EACCES;
			goto out;
		}
	}

	/* 2. what was not there at T goes to the trash, one node at a time */
	for (int i = 0; i < L.n && r == 0; i++) {
		rbn *e = &L.v[i];
		if (idmap_get(&S.ix, e->n.id) >= 0)
			continue;
		if (e->n.id == root)
			continue; /* never: the root is in every view */
		r = sd__place_close(d, e->n.id, R);
		if (r == 0)
			r = exec_id(d, &q_delete_one, e->n.id, R);
		if (e->n.kind == SD_KIND_FILE)
			net -= (int64_t)e->n.size;
		rp.trashed++;
		if (r == 0) {
			rb_path(&L, i, np, &path);
			r = sd__journal(d, R, u->name, "rollback_item", path.data,
					e->n.kind == SD_KIND_DIR ? "trash folder" : "trash");
		}
	}
	/* 3. kept nodes not at their place of T leave their place */
	for (int i = 0; i < L.n && r == 0; i++) {
		rbn *e = &L.v[i];
		int si = idmap_get(&S.ix, e->n.id);
		if (si < 0 || e->n.id == root)
			continue;
		const rbn *p = &S.v[si];
		/* in place: under the node that held its parent then (which, being
		 * its parent now, is live and kept), with the same name */
		int64_t want_parent = p->parent < 0 ? pdir.id : S.v[p->parent].n.id;
		if (e->n.parent == want_parent && strcmp(e->name, p->name) == 0)
			continue;
		e->detached = 1;
		r = sd__place_close(d, e->n.id, R);
		if (r == 0)
			r = exec_id(d, &q_detach, e->n.id, 0);
	}
	/* 4. every node of T at its place, parents first */
	for (int i = 0; i < S.n && r == 0; i++) {
		rbn *e = &S.v[i];
		int64_t parent = e->parent < 0 ? pdir.id : S.v[e->parent].live_id;
		int li = idmap_get(&L.ix, e->n.id);
		int64_t id = e->n.id, cur_blob = 0;
		uint64_t cur_size = 0;
		const char *op = NULL;
		if (id == root) {
			e->live_id = root;
			continue;
		}
		if (li >= 0) { /* kept */
			rbn *l = &L.v[li];
			cur_blob = l->n.blob;
			cur_size = l->n.size;
			if (l->detached) {
				sqlite3_stmt *st = sd_db_stmt(d, &q_attach);
				sqlite3_bind_int64(st, 1, id);
				sqlite3_bind_int64(st, 2, parent);
				sqlite3_bind_text(st, 3, e->name, -1, SQLITE_STATIC);
				r = sd_db_exec_stmt(st);
				if (r == 0)
					r = sd__place_open(d, id, owner, parent, e->name, strlen(e->name), R);
				rp.moved++;
				op = "move";
			}
		} else {
			sqlite3_stmt *st = sd_db_stmt(d, &q_node_live);
			sqlite3_bind_int64(st, 1, id);
			int live = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0);
			sqlite3_reset(st);
			if (!live) { /* deleted after T: back */
				sd_node now;
				if ((r = sd__tree_node(d, id, &now)) < 0)
					break;
				cur_blob = now.blob;
				cur_size = now.size;
				st = sd_db_stmt(d, &q_revive_one);
				sqlite3_bind_int64(st, 1, id);
				sqlite3_bind_int64(st, 2, parent);
				sqlite3_bind_text(st, 3, e->name, -1, SQLITE_STATIC);
				r = sd_db_exec_stmt(st);
				if (r == 0)
					r = sd__place_open(d, id, owner, parent, e->name, strlen(e->name), R);
				if (e->n.kind == SD_KIND_FILE)
					net += (int64_t)now.size;
				rp.revived++;
				op = "revive";
			} else { /* it lives outside P now: a new node takes its place */
				sd_node now;
				if ((r = sd__tree_node(d, id, &now)) < 0)
					break;
				r = sd__tree_insert(d, owner, parent, e->name, strlen(e->name), e->n.kind,
						    e->n.kind == SD_KIND_FILE ? e->n.blob : 0,
						    e->n.kind == SD_KIND_FILE ? e->n.size : 0, now.mode, R,
						    u->name, &id);
				if (r == 0 && e->n.kind == SD_KIND_FILE) {
					sd_vmeta vm = {.mtime = e->n.mtime, .u = u, .op = "rollback"};
					r = sd__version_add(d, id, e->n.blob, e->n.size, R, &vm);
					cur_blob = e->n.blob;
					cur_size = e->n.size;
					net += (int64_t)e->n.size;
				}
				rp.created++;
				op = "create";
			}
		}
		e->live_id = id;
		if (r == 0 && e->n.kind == SD_KIND_FILE && cur_blob != e->n.blob) {
			/* its content at T, as a new version (H5) */
			sqlite3_stmt *st = sd_db_stmt(d, &q_set_content);
			sqlite3_bind_int64(st, 1, id);
			sqlite3_bind_int64(st, 2, e->n.blob);
			sqlite3_bind_int64(st, 3, (int64_t)e->n.size);
			sqlite3_bind_int64(st, 4, R / 1000);
			r = sd_db_exec_stmt(st);
			sd_vmeta vm = {.mtime = R / 1000, .u = u, .op = "rollback"};
			if (r == 0)
				r = sd__version_add(d, id, e->n.blob, e->n.size, R, &vm);
			net += (int64_t)e->n.size - (int64_t)cur_size;
			rp.restored++;
			op = op ? op : "restore";
		}
		if (r == 0 && op) {
			rb_path(&S, i, np, &path);
			r = sd__journal(d, R, u->name, "rollback_item", path.data, op);
		}
	}
	/* 5. usage (I4), the moment (H3, H8), the whole in the journal */
	if (r == 0 && net)
		r = sd__tree_used_add(d, owner, net, net > 0);
	if (r == 0)
		r = sd__tree_changed(d, owner, R);
	if (r == 0) {
		char stamp[32];
		fmt_iso(at, stamp);
		sd_buf_reset(&det);
		sd_buf_printf(&det, "at=%s restored=%lld revived=%lld moved=%lld created=%lld "
			      "trashed=%lld", stamp, (long long)rp.restored, (long long)rp.revived,
			      (long long)rp.moved, (long long)rp.created, (long long)rp.trashed);
		/* the whole rollback replays from this row (replica.c): the
		 * rollback_item rows before it are its parts, for people */
		sd_buf args = SD_BUF_INIT;
		sd__jargs_int(&args, "at", at);
		r = sd__journal_args(d, R, u->name, "rollback", np, det.data, &args);
	}
out:;
	sd__view_close(&vw);
	int cr = sd_db_write_end(c->db, d, r == 0);
	rb_free(&S);
	rb_free(&L);
	sd_buf_free(&path);
	sd_buf_free(&det);
	if (r == 0 && cr == 0) {
		sd_log(SD_LOG_INFO, "history", "event=rollback user=%s path=\"%s\" at=%lld restored=%lld "
		       "revived=%lld moved=%lld created=%lld trashed=%lld", u->name, np, (long long)at,
		       (long long)rp.restored, (long long)rp.revived, (long long)rp.moved,
		       (long long)rp.created, (long long)rp.trashed);
		if (rep)
			*rep = rp;
	}
	return r ? r : cr;
}
