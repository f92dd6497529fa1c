/*
 * api.c - the function table handed to front ends (storaged.h), and the
 * thin layer that makes every call on a user's files go the same way:
 *
 *   1. the session's credentials are checked (session.c): a session whose
 *      user was disabled, password changed, token revoked or key removed
 *      gets -SD_EAUTH;
 *   2. each path argument goes through the one resolver (path.c) against
 *      the session's working directory;
 *   3. the engine call runs with the session's principal; a path under
 *      the virtual folders /.snapshots/ and /.trash/ goes to history.c
 *      (reads there) or is refused (writes), so every protocol gets them
 *      the same way (VIRT below);
 *   4. a change meets the write locks covering what it changes (lock.c):
 *      it needs their tokens among those the session submitted
 *      (lock_submit), or it answers -EBUSY, over every protocol alike
 *      (LOCKS below; handle opens check inside file.c, uploads again at
 *      commit).
 * No protocol ever gets a path or a user into the engine another way.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Steps 1 and 2 for calls with one path. */
#define ENTER(s, u)                                                         \
	sd_principal u##_;                                                  \
	const sd_principal *u = &u##_;                                      \
	do {                                                                \
		int er_ = sd__session_principal((s), &u##_);                \
		if (er_ < 0)                                                \
			return er_;                                         \
	} while (0);                                                        \
	sd_core *c = sd__session_core(s)

/* A call refused by the quota fires quota_exceeded (events.c). */
static int quota_event(sd_core *c, const sd_principal *u, const char *np, int r)
{
	if (r == -EDQUOT)
		sd__event(c, SD_EV_QUOTA, u, np, NULL, -1, NULL, "quota exceeded");
	return r;
}

static int res(sd_session *s, const char *path, char np[SD_PATH_MAX + 1])
{
	if (!path)
		return -EINVAL;
	size_t n = strnlen(path, SD_PATH_MAX + 1);
	if (n > SD_PATH_MAX)
		return -ENAMETOOLONG;
	return sd__session_resolve(s, path, n, np, SD_PATH_MAX + 1);
}

#define RESOLVE(s, path, np)                                                \
	char np[SD_PATH_MAX + 1];                                           \
	do {                                                                \
		int rr_ = res((s), (path), np);                             \
		if (rr_ < 0)                                                \
			return rr_;                                         \
	} while (0)

/* Is the resolved path under a virtual folder (history.c)? */
#define VIRT(np) (sd__virt_kind(np) != SD_VIRT_NONE)
/* A write there is refused. */
#define NO_VIRT_WRITE(np)                                                   \
	do {                                                                \
		if (VIRT(np))                                               \
			return sd__virt_refuse(np);                         \
	} while (0)

/* An anonymous session (FTP anonymous_user) sees an account's live files
 * only: what its owner deleted or replaced is not published with them, so
 * its history does not exist for it (-ENOENT). */
static int anonymous(sd_session *s)
{
	sd_cred cred;
	sd__session_cred(s, &cred);
	return cred.method == SD_METHOD_ANONYMOUS;
}

/* A read under a virtual folder that an anonymous session may not make
 * (it gets -ENOENT, as for a path that does not exist). */
#define VIRT_READ(s, np)                                                    \
	(VIRT(np) && anonymous(s))

/* Step 4: 0 when the session may change np as `how` (SD_LK_*) says. */
static int lock_check(sd_session *s, sd_core *c, int64_t uid, const char *np, unsigned how)
{
	if (!sd__lock_any(c, uid))
		return 0;
	sd_locktoks tk;
	sd__session_tokens(s, &tk);
	return sd__lock_allow(c, uid, np, how, &tk);
}

#define LOCKS(s, np, how)                                                   \
	do {                                                                \
		int lr_ = lock_check((s), c, u->id, (np), (how));           \
		if (lr_ < 0)                                                \
			return lr_;                                         \
	} while (0)

/* A write of the file at np, made when missing: its folder changes too
 * then. The SD_LK_* it needs into *how. */
static int lock_put(sd_session *s, sd_core *c, const sd_principal *u, const char *np,
		    unsigned *how)
{
	*how = SD_LK_SELF;
	if (!sd__lock_any(c, u->id))
		return 0;
	sd_stat st;
	if (sd__tree_stat(c, u, np, &st) == -ENOENT)
		*how |= SD_LK_PARENT;
	return lock_check(s, c, u->id, np, *how);
}

/* ------------------------------------------------------------ sessions */

static void a_session_close(sd_session *s)
{
	sd__session_close(s);
}

static int a_session_info(sd_session *s, sd_session_info *out)
{
	ENTER(s, u);
	(void)u;
	(void)c;
	/* no database read: front ends call this per request (HTTP), and the
	 * figures of the last credential check are at most a second old */
	sd__session_info(s, out);
	return 0;
}

static int a_session_check(sd_session *s)
{
	ENTER(s, u);
	(void)u;
	(void)c;
	return 0;
}

static int a_resolve(sd_session *s, const char *arg, size_t len, char *out, size_t outlen)
{
	ENTER(s, u);
	(void)u;
	(void)c;
	return sd__session_resolve(s, arg, len, out, outlen);
}

static int a_chdir(sd_session *s, const char *path)
{
	ENTER(s, u);
	RESOLVE(s, path, np);
	sd_stat st;
	if (VIRT_READ(s, np))
		return -ENOENT;
	int r = VIRT(np) ? sd__virt_stat(c, u, np, &st) : sd__tree_stat(c, u, np, &st);
	if (r < 0)
		return r;
	if (st.kind != SD_KIND_DIR)
		return -ENOTDIR;
	return sd__session_set_cwd(s, np);
}

/* ------------------------------------------------------------ the tree */

static int a_stat(sd_session *s, const char *path, sd_stat *st)
{
	ENTER(s, u);
	RESOLVE(s, path, np);
	if (VIRT_READ(s, np))
		return -ENOENT;
	if (VIRT(np))
		return sd__virt_stat(c, u, np, st);
	return sd__tree_stat(c, u, np, st);
}

static int a_readdir(sd_session *s, const char *path, const char *after, int limit,
		     sd_readdir_cb cb, void *arg, int *more)
{
	ENTER(s, u);
	RESOLVE(s, path, np);
	if (VIRT_READ(s, np))
		return -ENOENT;
	if (VIRT(np))
		return sd__virt_readdir(c, u, np, after, limit, cb, arg, more);
	if (np[1] == '\0' && c->conf->show_history_folders && !anonymous(s))
		return sd__hist_readdir_root(c, u, after, limit, cb, arg, more);
	return sd__tree_readdir(c, u, np, after, limit, cb, arg, more);
}

static int a_mkdir(sd_session *s, const char *path, uint32_t mode, int parents)
{
	ENTER(s, u);
	RESOLVE(s, path, np);
	NO_VIRT_WRITE(np);
	LOCKS(s, np, SD_LK_SELF | SD_LK_PARENT);
	int r = sd__tree_mkdir(c, u, np, mode, parents);
	if (r == 0)
		sd__event(c, SD_EV_MKDIR, u, np, NULL, -1, NULL, NULL);
	return r;
}

static int a_rmdir(sd_session *s, const char *path)
{
	ENTER(s, u);
	RESOLVE(s, path, np);
	NO_VIRT_WRITE(np);
	LOCKS(s, np, SD_LK_SELF | SD_LK_PARENT | SD_LK_TREE);
	int r = sd__tree_remove(c, u, np, 1, 0, sd__session_delete_stamp(s, sd__now_ms(c)));
	if (r == 0) {
		sd__locks_drop(c, u->id, np);
		sd__event(c, SD_EV_DELETE, u, np, NULL, -1, NULL, NULL);
	}
	return r;
}

static int a_unlink(sd_session *s, const char *path, int recursive)
{
	ENTER(s, u);
	RESOLVE(s, path, np);
	NO_VIRT_WRITE(np);
	LOCKS(s, np, SD_LK_SELF | SD_LK_PARENT | SD_LK_TREE);
	int r = sd__tree_remove(c, u, np, 0, recursive,
				sd__session_delete_stamp(s, sd__now_ms(c)));
	if (r == 0) {
		sd__locks_drop(c, u->id, np);
		sd__event(c, SD_EV_DELETE, u, np, NULL, -1, NULL, NULL);
	}
	return r;
}

static int a_rename(sd_session *s, const char *from, const char *to, unsigned flags)
{
	ENTER(s, u);
	if (flags & ~SD_RENAME_NOREPLACE)
		return -EINVAL;
	RESOLVE(s, from, nf);
	RESOLVE(s, to, nt);
	NO_VIRT_WRITE(nt);
	LOCKS(s, nt, SD_LK_SELF | SD_LK_PARENT | SD_LK_TREE);
	int r;
	if (VIRT(nf)) {
		r = sd__virt_rename(c, u, nf, nt, flags);
	} else {
		LOCKS(s, nf, SD_LK_SELF | SD_LK_PARENT | SD_LK_TREE);
		r = sd__tree_rename(c, u, nf, nt, flags);
		if (r == 0 && strcmp(nf, nt) != 0) {
			sd__locks_drop(c, u->id, nf);
			sd__locks_drop(c, u->id, nt);
		}
	}
	if (r == 0)
		sd__event(c, SD_EV_RENAME, u, nf, nt, -1, NULL, NULL);
	return r;
}

static int a_chmod(sd_session *s, const char *path, uint32_t mode)
{
	ENTER(s, u);
	RESOLVE(s, path, np);
	NO_VIRT_WRITE(np);
	LOCKS(s, np, SD_LK_SELF);
	return sd__tree_chmod(c, u, np, mode);
}

static int a_set_mtime(sd_session *s, const char *path, int64_t mtime)
{
	ENTER(s, u);
	RESOLVE(s, path, np);
	NO_VIRT_WRITE(np);
	LOCKS(s, np, SD_LK_SELF);
	return sd__tree_set_mtime(c, u, np, mtime);
}

static int a_copy(sd_session *s, const char *from, const char *to)
{
	ENTER(s, u);
	RESOLVE(s, from, nf);
	RESOLVE(s, to, nt);
	NO_VIRT_WRITE(nt);
	LOCKS(s, nt, SD_LK_SELF | SD_LK_PARENT);
	if (VIRT_READ(s, nf))
		return -ENOENT;
	int r = VIRT(nf) ? sd__virt_copy(c, u, nf, nt) : sd__tree_copy(c, u, nf, nt);
	return quota_event(c, u, nt, r);
}

static int a_fsinfo(sd_session *s, sd_fsinfo *out)
{
	ENTER(s, u);
	return sd__tree_fsinfo(c, u, out);
}

static int a_versions(sd_session *s, const char *path, sd_version_cb cb, void *arg)
{
	ENTER(s, u);
	RESOLVE(s, path, np);
	if (VIRT(np))
		return -ENOTSUP; /* the versions of a file are those of its live path */
	if (anonymous(s))
		return -ENOENT;
	return sd__versions_list(c, u, np, cb, arg);
}

/* ------------------------------------------------------------ uploads */

static int a_upload_begin(sd_session *s, const char *path, unsigned flags, uint64_t offset,
			  uint32_t mode, sd_upload **out)
{
	ENTER(s, u);
	RESOLVE(s, path, np);
	NO_VIRT_WRITE(np);
	unsigned how;
	int r = lock_put(s, c, u, np, &how);
	if (r < 0)
		return r;
	sd_cred cred;
	sd__session_cred(s, &cred);
	if ((r = sd__upload_begin(c, u, &cred, np, flags, offset, mode, out)) < 0)
		return r;
	sd_locktoks tk;
	sd__session_tokens(s, &tk);
	sd__upload_set_locks(*out, how, &tk);
	return 0;
}

static int a_instant_begin(sd_session *s, const char *path, unsigned flags, const char *sha256,
			   uint64_t size, sd_challenge *ch, sd_stat *st)
{
	ENTER(s, u);
	RESOLVE(s, path, np);
	NO_VIRT_WRITE(np);
	unsigned how;
	int r = lock_put(s, c, u, np, &how);
	if (r < 0)
		return r;
	return sd__instant_begin(c, u, np, flags, sha256, size, ch, st);
}

static int a_instant_prove(sd_session *s, const char *path, unsigned flags, const char *sha256,
			   uint64_t size, const char *nonce, const char *proof, sd_stat *st)
{
	ENTER(s, u);
	RESOLVE(s, path, np);
	NO_VIRT_WRITE(np);
	unsigned how;
	int r = lock_put(s, c, u, np, &how);
	if (r < 0)
		return r;
	return sd__instant_prove(c, u, np, flags, sha256, size, nonce, proof, st);
}

/* ------------------------------------------------------ resumable uploads */

static int a_rup_create(sd_session *s, const char *path, unsigned flags, uint64_t length,
			uint32_t mode, const char *meta, sd_rupload_info *out)
{
	ENTER(s, u);
	RESOLVE(s, path, np);
	NO_VIRT_WRITE(np);
	return quota_event(c, u, np, sd__rup_create(c, u, np, flags, length, mode, meta, out));
}

static int a_rup_info(sd_session *s, const char *id, sd_rupload_info *out)
{
	ENTER(s, u);
	sd_cred cred;
	sd__session_cred(s, &cred);
	return sd__rup_info(c, u, &cred, id, out);
}

static int a_rup_open(sd_session *s, const char *id, uint64_t offset, const char *expect,
		      sd_rupload **out)
{
	ENTER(s, u);
	sd_cred cred;
	sd__session_cred(s, &cred);
	return sd__rup_open(c, u, &cred, id, offset, expect, out);
}

static int a_rup_delete(sd_session *s, const char *id)
{
	ENTER(s, u);
	return sd__rup_delete(c, u, id);
}

/* ------------------------------------------------------------ readers */

static int a_open_read(sd_session *s, const char *path, sd_reader **out, sd_stat *st)
{
	ENTER(s, u);
	RESOLVE(s, path, np);
	if (VIRT_READ(s, np))
		return -ENOENT;
	sd_stat own;
	if (!st)
		st = &own;
	int r = VIRT(np) ? sd__virt_open_read(c, u, np, out, st)
			 : sd__reader_open(c, u, np, SD_RIGHT_READ, out, st);
	if (r == 0)
		sd__event(c, SD_EV_DOWNLOAD, u, np, NULL, (int64_t)st->size, st->sha256, NULL);
	return r;
}

static int a_open_read_public(sd_core *c, int64_t owner, const char *path, sd_reader **out,
			      sd_stat *st)
{
	sd_user o;
	if (sd__user_get_id(c, owner, &o) < 0 || (o.flags & SD_USER_DISABLED))
		return -ENOENT;
	char np[SD_PATH_MAX + 1];
	int r = sd__path_norm(path, np, sizeof np);
	if (r < 0)
		return r;
	/* the owner's own files only: a file id never reaches a shared folder */
	sd_principal p;
	memset(&p, 0, sizeof p);
	sd__principal_set_user(&p, &o);
	p.flags |= SD_USER_READONLY | SD_P_OWN_TREE;
	return sd__reader_open(c, &p, np, SD_RIGHT_READ, out, st);
}

/* ------------------------------------------------------------ handles */

static int a_handle_open(sd_session *s, const char *path, unsigned flags, uint32_t mode,
			 sd_handle *out, sd_stat *st)
{
	ENTER(s, u);
	RESOLVE(s, path, np);
	int detached = (flags & SD_O_DETACHED) != 0;
	sd_file *f;
	sd_stat own;
	if (!st)
		st = &own;
	if (VIRT_READ(s, np))
		return -ENOENT;
	sd_locktoks tk;
	sd__session_tokens(s, &tk);
	int r = VIRT(np) ? sd__virt_open_file(c, u, np, flags & ~SD_O_DETACHED, &f, st)
			 : sd__file_open(c, u, np, flags & ~SD_O_DETACHED, mode, &tk, &f, st);
	if (r < 0)
		return r;
	if ((r = sd__handle_add(c, s, u->id, detached, f, out)) < 0)
		sd__file_abandon(f);
	else if (!(flags & (SD_O_WRITE | SD_O_TRUNC | SD_O_APPEND | SD_O_CREAT)))
		sd__event(c, SD_EV_DOWNLOAD, u, np, NULL, (int64_t)st->size, st->sha256, NULL);
	return r;
}

/* Run stmt with f, the file of handle h, marked busy meanwhile. */
/* A file in a shared folder is refused once the rights its open needed
 * are gone (file.c sd__file_recheck). */
#define WITH_HANDLE(s, h, f, stmt)                                          \
	ENTER(s, u);                                                        \
	sd_file *f;                                                         \
	int hr_ = sd__handle_get(c, (s), u->id, (h), &f);                   \
	if (hr_ < 0)                                                        \
		return hr_;                                                 \
	if ((hr_ = sd__file_recheck(f)) < 0) {                              \
		sd__handle_put(c, (h));                                     \
		return hr_;                                                 \
	}                                                                   \
	stmt;                                                               \
	sd__handle_put(c, (h))

static ssize_t a_handle_pread(sd_session *s, sd_handle h, void *buf, size_t len, uint64_t off)
{
	ssize_t n;
	WITH_HANDLE(s, h, f, n = sd__file_pread(f, buf, len, off));
	return n;
}

static ssize_t a_handle_pwrite(sd_session *s, sd_handle h, const void *buf, size_t len,
			       uint64_t off)
{
	ssize_t n;
	WITH_HANDLE(s, h, f, n = sd__file_pwrite(f, buf, len, off));
	return n;
}

static int a_handle_truncate(sd_session *s, sd_handle h, uint64_t size)
{
	int r;
	WITH_HANDLE(s, h, f, r = sd__file_truncate(f, size));
	return r;
}

static int a_handle_fstat(sd_session *s, sd_handle h, sd_stat *st)
{
	int r;
	WITH_HANDLE(s, h, f, r = sd__file_fstat(f, st));
	return r;
}

static int a_handle_setattr(sd_session *s, sd_handle h, unsigned mask, uint32_t mode,
			    int64_t mtime)
{
	int r;
	/* a clean handle applies them at once, as chmod and set_mtime do */
	WITH_HANDLE(s, h, f, r = lock_check(s, c, u->id, sd__file_path(f), SD_LK_SELF);
		    if (r == 0) r = sd__file_setattr(f, mask, mode, mtime));
	return r;
}

static int a_handle_sync(sd_session *s, sd_handle h)
{
	int r;
	WITH_HANDLE(s, h, f, r = sd__file_sync(f));
	return r;
}

static int a_handle_sync_if(sd_session *s, sd_handle h, const char *expect)
{
	if (!expect || strlen(expect) != 64 || strspn(expect, "0123456789abcdef") != 64)
		return -EINVAL;
	int r;
	WITH_HANDLE(s, h, f, r = sd__file_sync_if(f, expect));
	return r;
}

/* Close and abandon work on dead sessions too: the handle is released
 * either way, and a dead session's close commits nothing. */
static int a_handle_close(sd_session *s, sd_handle h)
{
	sd_principal u;
	int alive = sd__session_principal(s, &u);
	if (alive < 0)
		u.id = sd__session_uid(s);
	sd_file *f;
	int r = sd__handle_take(sd__session_core(s), s, u.id, h, &f);
	if (r < 0)
		return r;
	if (alive < 0) {
		sd__file_abandon(f);
		return alive;
	}
	return sd__file_close(f);
}

static int a_handle_abandon(sd_session *s, sd_handle h)
{
	sd_file *f;
	int r = sd__handle_take(sd__session_core(s), s, sd__session_uid(s), h, &f);
	if (r == 0)
		sd__file_abandon(f);
	return r;
}

static int a_handle_info(sd_session *s, sd_handle h, sd_handle_info *out)
{
	int detached = 0;
	WITH_HANDLE(s, h, f, (sd__file_info(f, out), detached = sd__handle_detached(c, h)));
	out->flags |= detached ? SD_O_DETACHED : 0;
	out->idle_timeout = detached ? c->conf->handle_idle_timeout : 0;
	return 0;
}

static int a_open_state(sd_session *s, const char *path, unsigned *state)
{
	ENTER(s, u);
	RESOLVE(s, path, np);
	if (VIRT(np)) { /* nothing there is ever open in a mode that conflicts */
		*state = 0;
		return 0;
	}
	return sd__open_state(c, u, np, state);
}

/* ------------------------------------------------------------ history */

static int a_version_restore(sd_session *s, const char *path, int64_t version, sd_stat *st)
{
	ENTER(s, u);
	RESOLVE(s, path, np);
	NO_VIRT_WRITE(np);
	LOCKS(s, np, SD_LK_SELF);
	return sd__hist_version_restore(c, u, np, version, st);
}

static int a_trash_list(sd_session *s, sd_trash_cb cb, void *arg)
{
	ENTER(s, u);
	if (anonymous(s))
		return 0; /* nothing of it is published */
	return sd__hist_trash_list(c, u, cb, arg);
}

static int a_trash_restore(sd_session *s, int64_t item, const char *to, sd_stat *st)
{
	ENTER(s, u);
	if (!to)
		return sd__hist_trash_restore(c, u, item, NULL, 0, st);
	RESOLVE(s, to, nt);
	LOCKS(s, nt, SD_LK_SELF | SD_LK_PARENT | SD_LK_TREE);
	return sd__hist_trash_restore(c, u, item, nt, 0, st);
}

static int a_trash_empty(sd_session *s, int64_t item)
{
	ENTER(s, u);
	if (item < 0)
		return -EINVAL;
	return sd__hist_trash_empty(c, u, item);
}

static int a_rollback(sd_session *s, const char *path, int64_t at_ms, sd_rollback_report *out)
{
	ENTER(s, u);
	RESOLVE(s, path, np);
	NO_VIRT_WRITE(np);
	LOCKS(s, np, SD_LK_SELF | SD_LK_TREE);
	return sd__hist_rollback(c, u, np, at_ms, out);
}

static int a_at_path(sd_session *s, const char *path, int64_t at_ms, char *out, size_t outlen)
{
	ENTER(s, u);
	RESOLVE(s, path, np);
	if (anonymous(s))
		return -ENOENT;
	return sd__hist_at_path(c, u, np, at_ms, out, outlen);
}

/* ------------------------------------------------------------ locks */

static int a_lock(sd_session *s, const char *path, unsigned flags, int64_t timeout,
		  const char *owner, sd_lock_info *out)
{
	ENTER(s, u);
	RESOLVE(s, path, np);
	NO_VIRT_WRITE(np);
	char *key; /* the node's open-mode key, or a name's whose folder is there */
	int node;
	int r = sd__open_key(c, u, np, &key, &node);
	if (r < 0)
		return r;
	r = sd__lock_take(c, u, np, key, flags, timeout, owner, out);
	free(key);
	return r;
}

static int a_lock_refresh(sd_session *s, const char *path, const char *token, int64_t timeout,
			  sd_lock_info *out)
{
	ENTER(s, u);
	RESOLVE(s, path, np);
	return sd__lock_refresh(c, u, np, token, timeout, out);
}

static int a_unlock(sd_session *s, const char *path, const char *token)
{
	ENTER(s, u);
	RESOLVE(s, path, np);
	return sd__lock_release(c, u, np, token);
}

static int a_lock_discover(sd_session *s, const char *path, unsigned flags, sd_lock_cb cb,
			   void *arg)
{
	ENTER(s, u);
	RESOLVE(s, path, np);
	if (flags & ~SD_LOCK_BELOW)
		return -EINVAL;
	return sd__lock_discover(c, u, np, flags, cb, arg);
}

static int a_lock_submit(sd_session *s, const char *const *tokens, int n)
{
	ENTER(s, u);
	(void)u;
	(void)c;
	if (n < 0 || n > SD_LOCK_SUBMIT_MAX || (n > 0 && !tokens))
		return -EINVAL;
	sd_locktoks tk;
	tk.n = n;
	for (int i = 0; i < n; i++) {
		if (!tokens[i] || strlen(tokens[i]) >= SD_LOCKTOKEN_MAX)
			return -EINVAL;
		snprintf(tk.tok[i], sizeof tk.tok[i], "%s", tokens[i]);
	}
	sd__session_set_tokens(s, &tk);
	return 0;
}

/* ------------------------------------------------------------ properties */

static int a_props_get(sd_session *s, const char *path, sd_prop_cb cb, void *arg)
{
	ENTER(s, u);
	RESOLVE(s, path, np);
	if (VIRT_READ(s, np))
		return -ENOENT;
	if (VIRT(np)) { /* a view's nodes show no properties; but they exist */
		sd_stat st;
		int r = sd__virt_stat(c, u, np, &st);
		return r < 0 ? r : 0;
	}
	return sd__props_get(c, u, np, cb, arg);
}

static int a_props_patch(sd_session *s, const char *path, const sd_prop *ops, int n)
{
	ENTER(s, u);
	RESOLVE(s, path, np);
	NO_VIRT_WRITE(np);
	LOCKS(s, np, SD_LK_SELF);
	return sd__props_patch(c, u, np, ops, n);
}

/* ------------------------------------------------------------ self-service */

static int a_self_password(sd_session *s, const char *old, const char *new_pw)
{
	ENTER(s, u);
	sd_cred cred;
	sd__session_cred(s, &cred);
	sd_session_info si;
	sd__session_info(s, &si);
	return sd__self_password(c, u, &cred, si.addr, old, new_pw);
}

static int a_self_token_create(sd_session *s, int scope, int64_t expires,
			       char out[SD_TOKEN_MAX], int64_t *id)
{
	ENTER(s, u);
	sd_cred cred;
	sd__session_cred(s, &cred);
	return sd__self_token_create(c, u, &cred, scope, expires, out, id);
}

static int a_self_token_revoke(sd_session *s, int64_t id)
{
	ENTER(s, u);
	return sd__self_token_revoke(c, u, id);
}

static int a_self_key_add(sd_session *s, const char *line)
{
	ENTER(s, u);
	if (!line)
		return -EINVAL;
	sd_cred cred;
	sd__session_cred(s, &cred);
	return sd__self_key_add(c, u, &cred, line);
}

static int a_self_key_remove(sd_session *s, const char *key)
{
	ENTER(s, u);
	return sd__self_key_remove(c, u, key);
}

/* ------------------------------------------------------------ teams */

static int a_access(sd_session *s, const char *path, unsigned *rights)
{
	ENTER(s, u);
	RESOLVE(s, path, np);
	if (!rights)
		return -EINVAL;
	if (VIRT(np)) { /* views and the trash are read-only */
		sd_stat st;
		int r = anonymous(s) ? -ENOENT : sd__virt_stat(c, u, np, &st);
		if (r == 0)
			*rights = SD_RIGHT_LIST | SD_RIGHT_READ;
		return r;
	}
	int r = sd__tree_access(c, u, np, rights);
	if (r == 0 && (u->flags & SD_USER_READONLY))
		*rights &= SD_RIGHT_LIST | SD_RIGHT_READ;
	return r;
}

/* ------------------------------------------------------------ links */

static int a_link_create(sd_session *s, const char *path, const sd_link_opts *o,
			 char token[SD_LINK_TOKEN_MAX], sd_link_info *out)
{
	ENTER(s, u);
	RESOLVE(s, path, np);
	if (VIRT(np))
		return sd__virt_refuse(np);
	if (anonymous(s))
		return -EACCES;
	return sd__link_create(c, u, np, o, 1, token, out);
}

static int a_link_list(sd_session *s, sd_link_cb cb, void *arg)
{
	ENTER(s, u);
	if (anonymous(s))
		return 0;
	return sd__link_list(c, u->name, cb, arg);
}

static int a_link_revoke(sd_session *s, int64_t id)
{
	ENTER(s, u);
	int r = sd__check_writable(u);
	if (r < 0)
		return r;
	if (anonymous(s))
		return -ENOENT;
	return sd__link_revoke(c, u->id, id);
}

static int a_link_create_as(sd_core *c, const char *user, const char *path, const sd_link_opts *o,
			    char token[SD_LINK_TOKEN_MAX], sd_link_info *out)
{
	sd_user su;
	int r = sd__user_get(c, user ? user : "", &su);
	if (r < 0)
		return r;
	char np[SD_PATH_MAX + 1];
	if ((r = sd__path_norm(path, np, sizeof np)) < 0)
		return r;
	if (VIRT(np))
		return sd__virt_refuse(np);
	sd_principal p;
	memset(&p, 0, sizeof p);
	sd__principal_set_user(&p, &su);
	snprintf(p.proto, sizeof p.proto, "admin");
	return sd__link_create(c, &p, np, o, 0, token, out);
}

static int a_link_revoke_any(sd_core *c, int64_t id)
{
	return sd__link_revoke(c, 0, id);
}

/* ------------------------------------------------------------ the rest */

static int a_journal(sd_core *c, int64_t since_ms, const char *user, int64_t after,
		     sd_journal_cb cb, void *arg)
{
	return sd__journal_list(c, since_ms, user, after, cb, arg);
}

static ssize_t a_reader_pread(sd_reader *r, void *buf, size_t len, uint64_t off)
{
	return sd__reader_pread(r, buf, len, off);
}

const sd_core_api sd__api = {
	.version = SD_CORE_API_VERSION,
	.size = sizeof(sd_core_api),
	.log = sd__log,
	.strerror = sd__strerror,
	.metric_add = sd__metric_add,
	.metric_set = sd__metric_set,
	.metrics_render = sd__metrics_render,
	.free = free,
	.now = sd__now_s,
	.state_dir = sd__state_dir,
	.auth_password = sd__auth_password,
	.auth_token = sd__auth_token,
	.auth_pubkey = sd__auth_pubkey,
	.auth_anonymous = sd__auth_anonymous,
	.auth_allowed = sd__auth_allowed,
	.session_close = a_session_close,
	.session_info = a_session_info,
	.session_check = a_session_check,
	.resolve = a_resolve,
	.chdir = a_chdir,
	.stat = a_stat,
	.readdir = a_readdir,
	.mkdir = a_mkdir,
	.rmdir = a_rmdir,
	.unlink = a_unlink,
	.rename = a_rename,
	.chmod = a_chmod,
	.set_mtime = a_set_mtime,
	.copy = a_copy,
	.fsinfo = a_fsinfo,
	.versions = a_versions,
	.upload_begin = a_upload_begin,
	.upload_write = sd__upload_write,
	.upload_size = sd__upload_size,
	.upload_set_mtime = sd__upload_set_mtime,
	.upload_commit = sd__upload_commit,
	.upload_abort = sd__upload_abort,
	.instant_begin = a_instant_begin,
	.instant_prove = a_instant_prove,
	.open_read = a_open_read,
	.open_read_public = a_open_read_public,
	.reader_pread = a_reader_pread,
	.reader_fd = sd__reader_fd,
	.reader_close = sd__reader_close,
	.handle_open = a_handle_open,
	.handle_pread = a_handle_pread,
	.handle_pwrite = a_handle_pwrite,
	.handle_truncate = a_handle_truncate,
	.handle_fstat = a_handle_fstat,
	.handle_setattr = a_handle_setattr,
	.handle_sync = a_handle_sync,
	.handle_sync_if = a_handle_sync_if,
	.handle_close = a_handle_close,
	.handle_abandon = a_handle_abandon,
	.open_state = a_open_state,
	.user_add = sd__user_add,
	.user_get = sd__user_get,
	.user_get_id = sd__user_get_id,
	.user_list = sd__user_list,
	.user_set_password = sd__user_set_password,
	.user_set_disabled = sd__user_set_disabled,
	.user_set_quota = sd__user_set_quota,
	.user_set_admin = sd__user_set_admin,
	.key_add = sd__key_add,
	.token_create = sd__token_create,
	.token_revoke = sd__token_revoke,
	.token_list = sd__token_list,
	.stats = sd__stats,
	.gc_run = sd__gc_run,
	.journal = a_journal,
	.handle_info = a_handle_info,
	.auth_blocked_for = sd__auth_blocked_for,
	.user_delete = sd__user_delete,
	.key_list = sd__key_list,
	.key_remove = sd__key_remove,
	.self_password = a_self_password,
	.self_token_create = a_self_token_create,
	.self_token_revoke = a_self_token_revoke,
	.self_key_add = a_self_key_add,
	.self_key_remove = a_self_key_remove,
	.version_restore = a_version_restore,
	.trash_list = a_trash_list,
	.trash_restore = a_trash_restore,
	.trash_empty = a_trash_empty,
	.rollback = a_rollback,
	.at_path = a_at_path,
	.lock = a_lock,
	.lock_refresh = a_lock_refresh,
	.unlock = a_unlock,
	.lock_discover = a_lock_discover,
	.lock_submit = a_lock_submit,
	.props_get = a_props_get,
	.props_patch = a_props_patch,
	.group_add = sd__group_add,
	.group_delete = sd__group_delete,
	.group_member_add = sd__group_member_add,
	.group_member_remove = sd__group_member_remove,
	.group_list = sd__group_list,
	.share_create = sd__share_create,
	.share_delete = sd__share_delete,
	.share_set_quota = sd__share_set_quota,
	.share_grant = sd__share_grant,
	.share_revoke = sd__share_revoke,
	.share_list = sd__share_list,
	.share_rules = sd__share_rules,
	.access = a_access,
	.link_create = a_link_create,
	.link_list = a_link_list,
	.link_revoke = a_link_revoke,
	.link_create_as = a_link_create_as,
	.link_list_all = sd__link_list,
	.link_revoke_any = a_link_revoke_any,
	.link_open = sd__link_open,
	.link_stat = sd__link_stat,
	.link_readdir = sd__link_readdir,
	.link_open_read = sd__link_open_read,
	.link_use = sd__link_use,
	.link_upload_begin = sd__link_upload_begin,
	.link_close = sd__link_close,
	.upload_room = sd__upload_room,
	.log_access = sd__log_access,
	.log_transfer = sd__log_transfer,
	.rup_create = a_rup_create,
	.rup_info = a_rup_info,
	.rup_open = a_rup_open,
	.rup_write = sd__rup_write,
	.rup_close = sd__rup_close,
	.rup_delete = a_rup_delete,
};
