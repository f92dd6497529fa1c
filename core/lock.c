/*
 * lock.c - write locks held by the engine (WebDAV's LOCK; contract in
 * storaged.h, "write locks").
 *
 * Design notes
 * ------------
 * A lock is a row of a small table in memory: (user, root path, shared or
 * exclusive, depth 0 or infinity, token, owner text, expiry). It names a
 * PATH of its user's view, not a node: a client may lock a name that does
 * not exist yet, and RFC 4918 ties a lock to its URL (a moved resource
 * leaves its lock behind). Paths stay true because every change that
 * would move a locked path needs the lock's token (SD_LK_TREE), and a
 * change made with it drops the locks it moved or deleted
 * (sd__locks_drop).
 *
 * The table is guarded by the core's open_lock, the mutex of the
 * open-mode table (file.c), because a lock IS an open mode to everyone
 * else: a write open of a covered path checks the locks under the same
 * mutex it takes its open-mode entry with (file.c open_acquire), and a
 * lock checks the open-mode entry of its path under it too. So an SFTP
 * write open and a WebDAV LOCK of one file never both succeed.
 *
 * Coverage: lock L covers path P when P is L's root, or L is of depth
 * infinity and P lies below its root. A change to P, as the caller says
 * with SD_LK_* (internal.h), meets the locks covering P (SELF), those
 * covering P's folder (PARENT: creating or removing a member changes the
 * folder, whatever the depth of its lock), and those rooted below P
 * (TREE). Each lock it meets must have its token among those the session
 * submitted, or the change is refused with -EBUSY. Locks of other users
 * are never met: a user's tree is that user's alone.
 *
 * Conflicts between locks: an exclusive lock overlaps no other lock
 * (either covers the other's root); shared locks overlap each other.
 *
 * Invariants:
 *  L1. Expired locks are dropped (prune) before the table is read, so no
 *      answer depends on a lock past its expiry.
 *  L2. Tokens are unique: 128 random bits each.
 *  L3. nlocks <= caplocks, and a user holds at most LOCKS_PER_USER locks.
 */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define LOCKS_PER_USER 1000
#define TIMEOUT_MAX ((int64_t)7 * 86400)

struct sd_lockent {
	int64_t uid;
	char *root;
	unsigned flags; /* SD_LOCK_SHARED, SD_LOCK_INFINITE */
	char token[SD_LOCKTOKEN_MAX];
	char *owner;
	char user[SD_USERNAME_MAX + 1];
	int64_t timeout; /* s */
	int64_t expires; /* ms */
};

/* ------------------------------------------------------------ paths */

/* Is p strictly below root? */
static int below(const char *p, const char *root)
{
	size_t n = strlen(root);
	if (n == 1) /* "/" */
		return p[0] == '/' && p[1] != '\0';
	return strncmp(p, root, n) == 0 && p[n] == '/';
}

static int covers(const sd_lockent *l, const char *p)
{
	return strcmp(l->root, p) == 0 || ((l->flags & SD_LOCK_INFINITE) && below(p, l->root));
}

/* The folder of npath into out ("/" for "/a"); 0, or -1 for "/". */
static int parent_of(const char *npath, char out[SD_PATH_MAX + 1])
{
	if (strcmp(npath, "/") == 0)
		return -1;
	snprintf(out, SD_PATH_MAX + 1, "%s", npath);
	char *slash = strrchr(out, '/');
	if (slash == out)
		slash[1] = '\0';
	else
		*slash = '\0';
	return 0;
}

/* ------------------------------------------------------------ the table */

static void ent_free(sd_lockent *l)
{
	free(l->root);
	free(l->owner);
}

/* Remove entry i (lock held). */
static void remove_at(sd_core *c, int i)
{
	ent_free(&c->locks[i]);
	c->locks[i] = c->locks[--c->nlocks];
}

/* L1 (lock held). */
static void prune(sd_core *c)
{
	int64_t now = sd__now_ms(c);
	for (int i = 0; i < c->nlocks;)
		if (c->locks[i].expires <= now)
			remove_at(c, i);
		else
			i++;
}

static void info_of(const sd_lockent *l, sd_lock_info *out)
{
	memset(out, 0, sizeof *out);
	snprintf(out->token, sizeof out->token, "%s", l->token);
	snprintf(out->root, sizeof out->root, "%s", l->root);
	out->flags = l->flags;
	out->timeout = l->timeout;
	out->expires = l->expires;
	snprintf(out->owner, sizeof out->owner, "%s", l->owner ? l->owner : "");
	snprintf(out->user, sizeof out->user, "%s", l->user);
}

static int submitted(const sd_locktoks *tk, const char *token)
{
	if (!tk)
		return 0;
	for (int i = 0; i < tk->n; i++)
		if (strcmp(tk->tok[i], token) == 0)
			return 1;
	return 0;
}

int sd__lock_allow_locked(sd_core *c, int64_t uid, const char *npath, unsigned how,
			  const sd_locktoks *tk)
{
	if (c->nlocks == 0)
		return 0;
	prune(c);
	char parent[SD_PATH_MAX + 1];
	int has_parent = (how & SD_LK_PARENT) && parent_of(npath, parent) == 0;
	for (int i = 0; i < c->nlocks; i++) {
		const sd_lockent *l = &c->locks[i];
		if (l->uid != uid)
			continue;
		int met = ((how & SD_LK_SELF) && covers(l, npath)) ||
			  (has_parent && covers(l, parent)) ||
			  ((how & SD_LK_TREE) && below(l->root, npath));
		if (met && !submitted(tk, l->token))
			return -EBUSY;
	}
	return 0;
}

int sd__lock_allow(sd_core *c, int64_t uid, const char *npath, unsigned how,
		   const sd_locktoks *tk)
{
	pthread_mutex_lock(&c->open_lock);
	int r = sd__lock_allow_locked(c, uid, npath, how, tk);
	pthread_mutex_unlock(&c->open_lock);
	return r;
}

int sd__lock_any(sd_core *c, int64_t uid)
{
	pthread_mutex_lock(&c->open_lock);
	prune(c);
	int any = 0;
	for (int i = 0; i < c->nlocks && !any; i++)
		any = c->locks[i].uid == uid;
	pthread_mutex_unlock(&c->open_lock);
	return any;
}

int sd__lock_covers_locked(sd_core *c, int64_t uid, const char *npath)
{
	prune(c);
	for (int i = 0; i < c->nlocks; i++)
		if (c->locks[i].uid == uid && covers(&c->locks[i], npath))
			return 1;
	return 0;
}

/* A token (L2): "urn:storaged:" + 22 base64url characters of 16 random
 * bytes. Shorter than a urn:uuid on purpose: clients echo tokens inside
 * If headers next to our 66-character ETags (the quoted SHA-256), and some
 * build that header in a fixed buffer (litmus: 200 bytes, which a
 * urn:uuid token overflows in its complex_cond_put test). */
static int new_token(char out[SD_LOCKTOKEN_MAX])
{
	unsigned char b[16];
	int r = sd_random_bytes(b, sizeof b);
	if (r < 0)
		return r;
	char b64[32];
	sodium_bin2base64(b64, sizeof b64, b, sizeof b, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	snprintf(out, SD_LOCKTOKEN_MAX, "urn:storaged:%s", b64);
	return 0;
}

int sd__lock_take(sd_core *c, const sd_principal *u, const char *npath, const char *okey,
		  unsigned flags, int64_t timeout, const char *owner, sd_lock_info *out)
{
	if (flags & ~(SD_LOCK_SHARED | SD_LOCK_INFINITE))
		return -EINVAL;
	if (timeout < 1 || timeout > TIMEOUT_MAX)
		return -EINVAL;
	if (owner && strlen(owner) >= SD_LOCKOWNER_MAX)
		return -EINVAL;
	int r = sd__check_writable(u);
	if (r < 0)
		return r;
	sd_lockent l = {.uid = u->id, .flags = flags, .timeout = timeout};
	if ((r = new_token(l.token)) < 0)
		return r;
	pthread_mutex_lock(&c->open_lock);
	prune(c);
	int mine = 0;
	r = 0;
	for (int i = 0; i < c->nlocks && r == 0; i++) {
		const sd_lockent *o = &c->locks[i];
		if (o->uid != u->id)
			continue;
		mine++;
		int overlap = covers(o, npath) ||
			      strcmp(o->root, npath) == 0 ||
			      ((flags & SD_LOCK_INFINITE) && below(o->root, npath));
		if (overlap && (!(flags & SD_LOCK_SHARED) || !(o->flags & SD_LOCK_SHARED)))
			r = -EBUSY;
	}
	if (r == 0 && mine >= LOCKS_PER_USER)
		r = -ENOLCK;
	/* the file open for writing (or exclusively) by anyone: a conflict */
	if (r == 0 && sd__open_writers_locked(c, okey))
		r = -EBUSY;
	if (r == 0) {
		if (c->nlocks == c->caplocks) {
			c->caplocks = c->caplocks ? c->caplocks * 2 : 16;
			c->locks = sd_xrealloc(c->locks, (size_t)c->caplocks * sizeof *c->locks);
		}
		l.root = sd_xstrdup(npath);
		l.owner = owner && *owner ? sd_xstrdup(owner) : NULL;
		snprintf(l.user, sizeof l.user, "%s", u->name);
		l.expires = sd__now_ms(c) + timeout * 1000;
		c->locks[c->nlocks++] = l;
		SD_ASSERT(c->nlocks <= c->caplocks); /* L3 */
		if (out)
			info_of(&l, out);
	}
	pthread_mutex_unlock(&c->open_lock);
	return r;
}

/* The index of uid's lock `token` covering npath (lock held, pruned), or
 * -1; *other set when the token is another user's lock. */
static int find(sd_core *c, int64_t uid, const char *npath, const char *token, int *other)
{
	*other = 0;
	for (int i = 0; i < c->nlocks; i++) {
		const sd_lockent *l = &c->locks[i];
		if (strcmp(l->token, token) != 0)
			continue;
		if (l->uid != uid) {
			*other = 1;
			return -1;
		}
		return covers(l, npath) ? i : -1;
	}
	return -1;
}

int sd__lock_refresh(sd_core *c, const sd_principal *u, const char *npath, const char *token,
		     int64_t timeout, sd_lock_info *out)
{
	if (!token || timeout < 1 || timeout > TIMEOUT_MAX)
		return -EINVAL;
	pthread_mutex_lock(&c->open_lock);
	prune(c);
	int other, i = find(c, u->id, npath, token, &other);
	if (i >= 0) {
		sd_lockent *l = &c->locks[i];
		l->timeout = timeout;
		l->expires = sd__now_ms(c) + timeout * 1000;
		if (out)
			info_of(l, out);
	}
	pthread_mutex_unlock(&c->open_lock);
	return i >= 0 ? 0 : -ENOENT;
}

int sd__lock_release(sd_core *c, const sd_principal *u, const char *npath, const char *token)
{
	if (!token)
		return -EINVAL;
	pthread_mutex_lock(&c->open_lock);
	prune(c);
	int other, i = find(c, u->id, npath, token, &other);
	if (i >= 0)
		remove_at(c, i);
	pthread_mutex_unlock(&c->open_lock);
	return i >= 0 ? 0 : other ? -EACCES : -ENOENT;
}

int sd__lock_discover(sd_core *c, const sd_principal *u, const char *npath, unsigned flags,
		      sd_lock_cb cb, void *arg)
{
	/* copies, so that cb runs without the mutex */
	sd_lock_info *found = NULL;
	int n = 0, cap = 0;
	pthread_mutex_lock(&c->open_lock);
	prune(c);
	for (int i = 0; i < c->nlocks; i++) {
		const sd_lockent *l = &c->locks[i];
		if (l->uid != u->id)
			continue;
		if (!covers(l, npath) && !((flags & SD_LOCK_BELOW) && below(l->root, npath)))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 4;
			found = sd_xrealloc(found, (size_t)cap * sizeof *found);
		}
		info_of(l, &found[n++]);
	}
	pthread_mutex_unlock(&c->open_lock);
	int delivered = 0;
	for (int i = 0; i < n; i++) {
		delivered++;
		if (cb(arg, &found[i]))
			break;
	}
	free(found);
	return delivered;
}

void sd__locks_drop(sd_core *c, int64_t uid, const char *npath)
{
	pthread_mutex_lock(&c->open_lock);
	for (int i = 0; i < c->nlocks;) {
		const sd_lockent *l = &c->locks[i];
		if (l->uid == uid && (strcmp(l->root, npath) == 0 || below(l->root, npath)))
			remove_at(c, i);
		else
			i++;
	}
	pthread_mutex_unlock(&c->open_lock);
}

void sd__locks_free_all(sd_core *c)
{
	for (int i = 0; i < c->nlocks; i++)
		ent_free(&c->locks[i]);
	free(c->locks);
	c->locks = NULL;
	c->nlocks = c->caplocks = 0;
}
