/*
 * storfs.c - a storaged tree as a local file system (FUSE 3), on libstoraged.
 *
 *   storfs SERVER_URL MOUNTPOINT [-o user=,password_file=,token_file=,cache_pages=,
 *          page_size=,timeout=,conflict=,writeback_cache,ro,allow_other,...] [-f] [-d]
 *
 * Design notes (docs/storfs.md says it for users):
 *
 *  - One libstoraged client is the mount's only way to the server, and its
 *    page cache is the mount's cache. Every FUSE open is one sdc_open; opens
 *    of one file share the library's file object (one server handle, one
 *    set of pages). The daemon is multithreaded (fuse_loop_mt); the library
 *    is safe from any thread and runs calls on different files in parallel.
 *  - Close-to-open. flush (every close(2)) commits the file's writes as a
 *    new version (sdc_commit) and, when it was the file's only descriptor,
 *    releases the server handle, so a close is seen whole by the next open
 *    anywhere. open asks the server (the handle's open answer carries the
 *    version): the kernel's page cache of the file is kept (keep_cache) only
 *    when the version is the one this mount last saw; else it is dropped,
 *    and the kernel's attributes of the file are invalidated too.
 *  - The kernel's page cache is always used for reads. Its writeback cache
 *    (-o writeback_cache) is opt-in: with it the kernel trusts its own idea
 *    of a file's size, so another client's change of a file's size is not
 *    seen while the kernel keeps the inode: safe when this mount is the
 *    tree's only writer.
 *  - Conditional commits (-o conflict=fail, the default): a commit of
 *    writes based on a version happens only if the server still has that
 *    version (If-Match); else close(2)/fsync(2) fail with EIO, the file's
 *    writes are not saved, and the other version stays (a line in the log).
 *    -o conflict=overwrite: the last close wins (as NFS or SFTP).
 *  - unlink of an open file: the descriptors read on from the handle's
 *    version; nothing of the file is committed again (hard_remove, and the
 *    library marks the file unlinked). rename of an open file: committed,
 *    then it follows its new name.
 *  - A server that does not answer: calls fail with EIO after timeout= (the
 *    library's timeout); the mount stays up and works again when the server
 *    is back. No call waits longer than that, so no process stays in D
 *    state.
 *  - Unmount (fusermount3 -u, umount, SIGTERM, SIGINT): every dirty page is
 *    pushed first (the kernel's with syncfs while the loop still serves,
 *    then the library's with sdc_push_all), then the client is freed.
 *  - Open handles are kept alive past the server's handle_idle_timeout by a
 *    thread calling sdc_keepalive every few seconds.
 */
#define FUSE_USE_VERSION 35

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "storaged-client.h"

#define STORFS_VERSION SDC_VERSION
#define XATTR_SHA "user.storaged.sha256"
#define DIR_PAGE 1000

/* ------------------------------------------------------------ options */

struct opts {
	char *url;
	char *user;
	char *password_file;
	char *token_file;
	char *page_size;
	unsigned long cache_pages;
	unsigned timeout;
	char *conflict;
	int writeback;
	unsigned keepalive;
	int show_version;
	int show_help;
	int nonopts;
};

static struct opts O = {.cache_pages = 1024, .timeout = 30, .keepalive = 5};

#define OPT(t, p, v) {t, offsetof(struct opts, p), v}
static const struct fuse_opt opt_spec[] = {
    OPT("user=%s", user, 0),
    OPT("password_file=%s", password_file, 0),
    OPT("token_file=%s", token_file, 0),
    OPT("page_size=%s", page_size, 0),
    OPT("cache_pages=%lu", cache_pages, 0),
    OPT("timeout=%u", timeout, 0),
    OPT("conflict=%s", conflict, 0),
    OPT("keepalive=%u", keepalive, 0),
    OPT("writeback_cache", writeback, 1),
    OPT("-V", show_version, 1),
    OPT("--version", show_version, 1),
    OPT("-h", show_help, 1),
    OPT("--help", show_help, 1),
    FUSE_OPT_END,
};

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *out)
{
	(void)data;
	(void)out;
	if (key == FUSE_OPT_KEY_NONOPT && O.nonopts++ == 0) {
		O.url = strdup(arg);
		return 0; /* SERVER_URL: ours */
	}
	return 1;
}

/* ------------------------------------------------------------ state */

static sdc_client *C;
static struct fuse *F;
static char *Mnt;
static uid_t Uid;
static gid_t Gid;
static volatile int Stopping;
static pthread_t Main_thread;

/* The version (SHA-256) of a file whose bytes the kernel may cache, by
 * path: open keeps the kernel's cache only when the server still has it. */
#define VTAB 4093
struct vent {
	struct vent *next;
	char sha[65];
	char path[];
};
static struct vent *Vtab[VTAB];
static pthread_mutex_t Vlock = PTHREAD_MUTEX_INITIALIZER;

static unsigned vslot(const char *p)
{
	unsigned h = 2166136261u;
	for (; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return h % VTAB;
}

/* Sets path's version to sha ("" forgets it); returns whether the old one
 * was sha (and not ""). */
static int version_swap(const char *path, const char *sha)
{
	unsigned k = vslot(path);
	int same = 0;
	pthread_mutex_lock(&Vlock);
	struct vent **pp = &Vtab[k], *e;
	for (; (e = *pp); pp = &e->next)
		if (strcmp(e->path, path) == 0)
			break;
	if (e) {
		same = sha[0] && strcmp(e->sha, sha) == 0;
		if (sha[0]) {
			snprintf(e->sha, sizeof e->sha, "%s", sha);
		} else {
			*pp = e->next;
			free(e);
		}
	} else if (sha[0]) {
		size_t n = strlen(path);
		e = malloc(sizeof *e + n + 1);
		if (e) {
			memcpy(e->path, path, n + 1);
			snprintf(e->sha, sizeof e->sha, "%s", sha);
			e->next = Vtab[k];
			Vtab[k] = e;
		}
	}
	pthread_mutex_unlock(&Vlock);
	return same;
}

static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logmsg(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "storfs: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* A library error as an errno for the kernel. */
static int E(int rc)
{
	if (rc >= 0)
		return rc;
	switch (-rc) {
	case ETIMEDOUT:
	case SDC_EPROTO:
	case SDC_ELOST:
	case SDC_ECONFLICT:
	case ENXIO:
	case ESTALE:
		return -EIO;
	case SDC_EAUTH:
		return -EACCES;
	default:
		return -rc > 0 && -rc < 4096 ? rc : -EIO;
	}
}

static void fill_stat(struct stat *st, const sdc_attr *a)
{
	memset(st, 0, sizeof *st);
	if (a->kind == SDC_KIND_DIR) {
		st->st_mode = S_IFDIR | (a->mode & 07777);
		st->st_nlink = 2;
		st->st_size = 4096;
	} else {
		st->st_mode = S_IFREG | (a->mode & 07777);
		st->st_nlink = 1;
		st->st_size = (off_t)a->size;
	}
	st->st_uid = Uid;
	st->st_gid = Gid;
	st->st_blksize = 1 << 20;
	st->st_blocks = (blkcnt_t)((a->size + 511) / 512);
	st->st_mtim.tv_sec = (time_t)a->mtime;
	st->st_atim = st->st_mtim;
	st->st_ctim = st->st_mtim;
}

/* ------------------------------------------------------------ operations */

static void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	cfg->nullpath_ok = 1;  /* ops on open files use the descriptor */
	cfg->hard_remove = 1;  /* unlink is passed on; storfs keeps open files readable */
	cfg->use_ino = 0;
	cfg->readdir_ino = 0;
	cfg->kernel_cache = 0; /* keep_cache is decided per open (close-to-open) */
	cfg->direct_io = 0;
	conn->max_write = 1u << 20;
	conn->max_read = 1u << 20; /* as the max_read mount option storfs adds */
	conn->max_readahead = 1u << 20;
	if (O.writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
	else
		conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	conn->want &= ~FUSE_CAP_POSIX_LOCKS; /* the kernel locks locally */
	conn->want &= ~FUSE_CAP_FLOCK_LOCKS;
	return NULL;
}

static void fs_destroy(void *data)
{
	(void)data;
	/* every file still open: commit (the client is freed in main) */
	int rc = sdc_push_all(C);
	if (rc < 0)
		logmsg("unmount: pushing the open files: %s (%s)", sdc_strerror(rc), sdc_errmsg());
}

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	sdc_attr a;
	int rc;
	if (fi)
		rc = sdc_fstat(C, (int)fi->fh, &a);
	else if (path)
		rc = sdc_stat(C, path, &a);
	else
		return -ENOENT;
	if (rc < 0)
		return E(rc);
	fill_stat(st, &a);
	return 0;
}

/* A directory being listed: the pages fetched so far. */
struct dirh {
	char *path;
	sdc_dirent *ents;
	size_t n, cap;
	char next[256];
	int done;
	pthread_mutex_t lock;
};

static int dir_add(void *arg, const sdc_dirent *e)
{
	struct dirh *d = arg;
	if (d->n == d->cap) {
		size_t nc = d->cap ? d->cap * 2 : 256;
		sdc_dirent *v = realloc(d->ents, nc * sizeof *v);
		if (!v)
			return -ENOMEM;
		d->ents = v;
		d->cap = nc;
	}
	d->ents[d->n++] = *e;
	return 0;
}

/* The next page from the server (the directory is paged: a huge one is
 * never asked for at once). */
static int dir_more(struct dirh *d)
{
	char after[256];
	snprintf(after, sizeof after, "%s", d->next);
	int rc = sdc_readdir_page(C, d->path, after[0] ? after : NULL, DIR_PAGE, dir_add, d, d->next,
				  sizeof d->next);
	if (rc < 0)
		return rc;
	if (!d->next[0])
		d->done = 1;
	return 0;
}

static int fs_opendir(const char *path, struct fuse_file_info *fi)
{
	struct dirh *d = calloc(1, sizeof *d);
	if (!d || !(d->path = strdup(path ? path : "/"))) {
		free(d);
		return -ENOMEM;
	}
	pthread_mutex_init(&d->lock, NULL);
	int rc = dir_more(d); /* the first page now: a server that is down fails opendir */
	if (rc < 0) {
		free(d->path);
		free(d);
		return E(rc);
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	return 0;
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	(void)path;
	struct dirh *d = (struct dirh *)(uintptr_t)fi->fh;
	enum fuse_fill_dir_flags ff = (flags & FUSE_READDIR_PLUS) ? FUSE_FILL_DIR_PLUS : 0;
	struct stat st;
	int rc = 0;
	pthread_mutex_lock(&d->lock);
	/* offsets: 1 ".", 2 "..", 3 + i entry i */
	if (off < 1) {
		memset(&st, 0, sizeof st);
		st.st_mode = S_IFDIR | 0755;
		if (fill(buf, ".", &st, 1, 0))
			goto out;
	}
	if (off < 2) {
		memset(&st, 0, sizeof st);
		st.st_mode = S_IFDIR | 0755;
		if (fill(buf, "..", &st, 2, 0))
			goto out;
	}
	for (size_t i = off > 2 ? (size_t)off - 2 : 0;; i++) {
		while (i >= d->n && !d->done)
			if ((rc = dir_more(d)) < 0)
				goto out;
		if (i >= d->n)
			break;
		fill_stat(&st, &d->ents[i].st);
		if (fill(buf, d->ents[i].name, &st, (off_t)(i + 3), ff))
			break;
	}
out:
	pthread_mutex_unlock(&d->lock);
	return E(rc);
}

static int fs_releasedir(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	struct dirh *d = (struct dirh *)(uintptr_t)fi->fh;
	pthread_mutex_destroy(&d->lock);
	free(d->ents);
	free(d->path);
	free(d);
	return 0;
}

static int fs_mkdir(const char *path, mode_t mode)
{
	return E(sdc_mkdir(C, path, mode & 07777, 0));
}

static int fs_rmdir(const char *path)
{
	return E(sdc_rmdir(C, path));
}

static int fs_unlink(const char *path)
{
	version_swap(path, "");
	return E(sdc_unlink(C, path, 0));
}

static int fs_rename(const char *from, const char *to, unsigned int flags)
{
	if (flags & ~RENAME_NOREPLACE)
		return -EINVAL; /* RENAME_EXCHANGE, RENAME_WHITEOUT */
	version_swap(to, "");
	return E(sdc_rename2(C, from, to, (flags & RENAME_NOREPLACE) ? SDC_RENAME_NOREPLACE : 0));
}

static int fs_link(const char *from, const char *to)
{
	(void)from;
	(void)to;
	return -EPERM; /* storaged has no hard links (a file is one node of one tree) */
}

static int fs_symlink(const char *target, const char *path)
{
	(void)target;
	(void)path;
	return -EPERM; /* nor symbolic links */
}

static int fs_mknod(const char *path, mode_t mode, dev_t rdev)
{
	(void)rdev;
	if (!S_ISREG(mode))
		return -EPERM; /* devices, FIFOs, sockets: only regular files are stored */
	int fd = sdc_open(C, path, O_WRONLY | O_CREAT | O_EXCL, SDC_SHARE_WRITE, mode & 07777);
	if (fd < 0)
		return E(fd);
	return E(sdc_close(C, fd));
}

static int fs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	(void)fi;
	if (!path)
		return 0; /* an unlinked open file: nothing to keep */
	return E(sdc_chmod(C, path, mode & 07777));
}

static int fs_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	(void)path;
	(void)fi;
	/* files belong to the user of the mount: no other owner can be stored */
	if ((uid != (uid_t)-1 && uid != Uid) || (gid != (gid_t)-1 && gid != Gid))
		return -EPERM;
	return 0;
}

static int fs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	(void)fi;
	if (!path)
		return 0;
	if (tv && tv[1].tv_nsec == UTIME_OMIT)
		return 0; /* atime only: not stored */
	int64_t t = tv && tv[1].tv_nsec != UTIME_NOW ? (int64_t)tv[1].tv_sec : (int64_t)time(NULL);
	return E(sdc_utimens(C, path, t));
}

/* After an open: the kernel keeps its cached bytes only if the version is
 * the one it cached; else they go, and its attributes are refreshed. */
static void cache_decide(const char *path, int fd, struct fuse_file_info *fi, int trunc)
{
	sdc_attr a;
	fi->keep_cache = 0;
	if (!path || sdc_fstat(C, fd, &a) < 0)
		return;
	if (trunc)
		a.sha256[0] = '\0';
	if (version_swap(path, a.sha256))
		fi->keep_cache = 1;
	else if (F)
		fuse_invalidate_path(F, path);
}

static int fs_open(const char *path, struct fuse_file_info *fi)
{
	int flags = fi->flags & (O_ACCMODE | O_APPEND | O_TRUNC);
	int fd = sdc_open(C, path, flags, SDC_SHARE_WRITE, 0);
	if (fd < 0)
		return E(fd);
	fi->fh = (uint64_t)fd;
	cache_decide(path, fd, fi, (flags & O_TRUNC) != 0);
	return 0;
}

static int fs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	int flags = fi->flags & (O_ACCMODE | O_APPEND | O_TRUNC | O_EXCL | O_CREAT);
	int fd = sdc_open(C, path, flags | O_CREAT, SDC_SHARE_WRITE, mode & 07777);
	if (fd < 0)
		return E(fd);
	fi->fh = (uint64_t)fd;
	version_swap(path, "");
	return 0;
}

static int fs_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)path;
	return (int)E((int)sdc_pread(C, (int)fi->fh, buf, size, (uint64_t)off));
}

static int fs_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)path;
	ssize_t n = sdc_pwrite(C, (int)fi->fh, buf, size, (uint64_t)off);
	return n < 0 ? E((int)n) : (int)n;
}

static int fs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	if (fi)
		return E(sdc_ftruncate(C, (int)fi->fh, (uint64_t)size));
	if (!path)
		return -ENOENT;
	int fd = sdc_open(C, path, O_WRONLY, SDC_SHARE_WRITE, 0);
	if (fd < 0)
		return E(fd);
	int rc = sdc_ftruncate(C, fd, (uint64_t)size);
	int rc2 = sdc_close(C, fd);
	version_swap(path, "");
	return E(rc < 0 ? rc : rc2);
}

/* close(2): commit, so the next open anywhere sees the file whole. */
static int fs_flush(const char *path, struct fuse_file_info *fi)
{
	int rc = sdc_commit(C, (int)fi->fh, SDC_COMMIT_RELEASE);
	if (rc == -SDC_ECONFLICT)
		logmsg("%s: another client committed a newer version since this file was opened: "
		       "these writes are not saved (conflict=fail)", path ? path : "(unlinked file)");
	else if (rc < 0)
		logmsg("%s: commit at close: %s (%s)", path ? path : "(unlinked file)", sdc_strerror(rc),
		       sdc_errmsg());
	if (rc == 0 && path) {
		sdc_attr a;
		if (sdc_fstat(C, (int)fi->fh, &a) == 0 && a.sha256[0])
			version_swap(path, a.sha256); /* what the kernel holds now */
	}
	return E(rc);
}

static int fs_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	sdc_close(C, (int)fi->fh); /* nothing left to commit after flush, but an mmap's writes */
	return 0;
}

static int fs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path;
	(void)datasync;
	return E(sdc_fsync(C, (int)fi->fh));
}

static int fs_statfs(const char *path, struct statvfs *sv)
{
	(void)path;
	sdc_fsstat s;
	int rc = sdc_statfs(C, "/", &s);
	if (rc < 0)
		return E(rc);
	memset(sv, 0, sizeof *sv);
	uint64_t bs = 4096;
	uint64_t total = s.disk_total, avail = s.disk_free;
	if (s.quota) {
		/* the quota is what this user has: free is what is left of it,
		 * and never more than the disk has */
		total = s.quota;
		avail = s.quota > s.used ? s.quota - s.used : 0;
		if (s.disk_free && avail > s.disk_free)
			avail = s.disk_free;
	} else if (!total) {
		total = s.used + s.disk_free;
	}
	sv->f_bsize = (unsigned long)bs;
	sv->f_frsize = (unsigned long)bs;
	sv->f_blocks = (fsblkcnt_t)(total / bs);
	sv->f_bfree = (fsblkcnt_t)(avail / bs);
	sv->f_bavail = sv->f_bfree;
	sv->f_files = 1u << 30;
	sv->f_ffree = 1u << 29;
	sv->f_favail = sv->f_ffree;
	sv->f_namemax = 255;
	if (s.readonly)
		sv->f_flag |= ST_RDONLY;
	return 0;
}

static int fs_getxattr(const char *path, const char *name, char *value, size_t size)
{
	if (strcmp(name, XATTR_SHA) != 0)
		return -ENODATA;
	if (!path)
		return -ENODATA;
	sdc_attr a;
	int rc = sdc_stat(C, path, &a);
	if (rc < 0)
		return E(rc);
	if (a.kind != SDC_KIND_FILE || !a.sha256[0])
		return -ENODATA; /* a directory; a file with unsaved writes (known at close) */
	if (size == 0)
		return 64;
	if (size < 64)
		return -ERANGE;
	memcpy(value, a.sha256, 64);
	return 64;
}

static int fs_listxattr(const char *path, char *list, size_t size)
{
	sdc_attr a;
	if (!path || sdc_stat(C, path, &a) < 0 || a.kind != SDC_KIND_FILE)
		return 0;
	size_t n = sizeof XATTR_SHA;
	if (size == 0)
		return (int)n;
	if (size < n)
		return -ERANGE;
	memcpy(list, XATTR_SHA, n);
	return (int)n;
}

static int fs_setxattr(const char *path, const char *name, const char *value, size_t size,
		       int flags)
{
	(void)path;
	(void)value;
	(void)size;
	(void)flags;
	return strcmp(name, XATTR_SHA) == 0 ? -EPERM : -ENOTSUP;
}

static int fs_removexattr(const char *path, const char *name)
{
	(void)path;
	return strcmp(name, XATTR_SHA) == 0 ? -EPERM : -ENOTSUP;
}

static int fs_readlink(const char *path, char *buf, size_t size)
{
	(void)path;
	(void)buf;
	(void)size;
	return -EINVAL; /* nothing here is a symbolic link */
}

static const struct fuse_operations ops = {
    .init = fs_init,
    .destroy = fs_destroy,
    .getattr = fs_getattr,
    .readlink = fs_readlink,
    .mknod = fs_mknod,
    .mkdir = fs_mkdir,
    .unlink = fs_unlink,
    .rmdir = fs_rmdir,
    .symlink = fs_symlink,
    .rename = fs_rename,
    .link = fs_link,
    .chmod = fs_chmod,
    .chown = fs_chown,
    .truncate = fs_truncate,
    .open = fs_open,
    .read = fs_read,
    .write = fs_write,
    .statfs = fs_statfs,
    .flush = fs_flush,
    .release = fs_release,
    .fsync = fs_fsync,
    .setxattr = fs_setxattr,
    .getxattr = fs_getxattr,
    .listxattr = fs_listxattr,
    .removexattr = fs_removexattr,
    .opendir = fs_opendir,
    .readdir = fs_readdir,
    .releasedir = fs_releasedir,
    .create = fs_create,
    .utimens = fs_utimens,
};

/* ------------------------------------------------------------ threads */

/* The kernel reads ahead at most 128 KiB on a FUSE mount whatever
 * max_readahead says; as root, raise the mount's read_ahead_kb to 1 MiB so
 * sequential reads reach storfs as 1 MiB requests (the mount's st_dev names
 * its bdi). Best effort: nothing happens without the permission. */
static void raise_readahead(void)
{
	struct stat st;
	if (geteuid() != 0 || stat(Mnt, &st) < 0)
		return;
	char p[96];
	snprintf(p, sizeof p, "/sys/class/bdi/%u:%u/read_ahead_kb", major(st.st_dev),
		 minor(st.st_dev));
	FILE *f = fopen(p, "w");
	if (f) {
		fputs("1024\n", f);
		fclose(f);
	}
}

static void *keepalive_thread(void *arg)
{
	(void)arg;
	raise_readahead(); /* the loop serves the stat by now, or soon */
	while (!Stopping) {
		for (unsigned i = 0; i < O.keepalive * 10 && !Stopping; i++)
			usleep(100000);
		if (!Stopping)
			sdc_keepalive(C);
	}
	return NULL;
}

static void wake(int sig)
{
	(void)sig;
}

/* SIGTERM, SIGINT, SIGHUP: push everything while the loop still serves
 * the kernel's write-back, then end the loop (the main thread unmounts). */
static void *signal_thread(void *arg)
{
	sigset_t *set = arg;
	int sig = 0;
	while (sigwait(set, &sig) != 0)
		;
	logmsg("signal %d: pushing dirty pages, then unmounting %s", sig, Mnt);
	int fd = open(Mnt, O_RDONLY | O_DIRECTORY);
	if (fd >= 0) {
		syncfs(fd); /* the kernel's dirty pages (writeback_cache) reach us now */
		close(fd);
	}
	int rc = sdc_push_all(C);
	if (rc < 0)
		logmsg("pushing the open files: %s (%s)", sdc_strerror(rc), sdc_errmsg());
	Stopping = 1;
	fuse_exit(F);
	pthread_kill(Main_thread, SIGUSR2); /* out of the loop's wait */
	return NULL;
}

/* ------------------------------------------------------------ main */

static char *read_secret(const char *file)
{
	FILE *f = fopen(file, "r");
	if (!f) {
		logmsg("%s: %s", file, strerror(errno));
		return NULL;
	}
	char buf[4096];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	return strdup(buf);
}

static int parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s)
		return -1;
	if (*end == 'k' || *end == 'K')
		v <<= 10, end++;
	else if (*end == 'm' || *end == 'M')
		v <<= 20, end++;
	if (*end)
		return -1;
	*out = (size_t)v;
	return 0;
}

static void usage(const char *prog)
{
	printf("usage: %s SERVER_URL MOUNTPOINT [options]\n\n"
	       "Mounts the storaged tree of a user at MOUNTPOINT (see storfs(1)).\n\n"
	       "storfs options (-o name=value,...):\n"
	       "    user=NAME            user to log in as (default: $STORFS_USER, then $USER)\n"
	       "    password_file=FILE   the password, first line of FILE (or $STORFS_PASSWORD)\n"
	       "    token_file=FILE      an API token (Bearer) instead of a password\n"
	       "    cache_pages=N        pages in the cache (default 1024)\n"
	       "    page_size=SIZE       bytes per page: 4K .. 64M (default 1M)\n"
	       "    timeout=SECONDS      a silent server fails calls with EIO after this (30)\n"
	       "    conflict=fail|overwrite  a close over another client's newer version:\n"
	       "                         fail with EIO, nothing written (default), or overwrite\n"
	       "    writeback_cache      the kernel's writeback cache (only writer of the tree)\n"
	       "    keepalive=SECONDS    how often open handles are kept alive (5)\n"
	       "    ro, allow_other, attr_timeout=, entry_timeout=, ...  FUSE's own\n"
	       "    -f (foreground), -d (debug), -s (one thread)\n\n",
	       prog);
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	if (fuse_opt_parse(&args, &O, opt_spec, opt_proc) < 0)
		return 2;
	if (O.show_version) {
		printf("storfs %s (libfuse %s)\n", STORFS_VERSION, fuse_pkgversion());
		return 0;
	}
	if (O.show_help) {
		usage(argv[0]);
		fuse_lib_help(&args);
		return 0;
	}
	if (!O.url || O.nonopts < 2) {
		usage(argv[0]);
		return 2;
	}
	size_t psize = 1u << 20;
	if (O.page_size && parse_size(O.page_size, &psize) < 0) {
		logmsg("page_size=%s: a size (4096, 64K, 1M)", O.page_size);
		return 2;
	}
	if (psize < 4096 || psize > (64u << 20) || O.cache_pages < 4) {
		logmsg("page_size is 4K .. 64M, cache_pages at least 4");
		return 2;
	}
	int conditional = 1;
	if (O.conflict && strcmp(O.conflict, "overwrite") == 0)
		conditional = 0;
	else if (O.conflict && strcmp(O.conflict, "fail") != 0) {
		logmsg("conflict=%s: fail or overwrite", O.conflict);
		return 2;
	}
	const char *user = O.user ? O.user : getenv("STORFS_USER");
	if (!user)
		user = getenv("USER");
	char *password = NULL, *token = NULL;
	if (O.token_file && !(token = read_secret(O.token_file)))
		return 2;
	if (O.password_file && !(password = read_secret(O.password_file)))
		return 2;
	if (!token && !password) {
		const char *p = getenv("STORFS_PASSWORD");
		const char *t = getenv("STORFS_TOKEN");
		if (t)
			token = strdup(t);
		else if (p)
			password = strdup(p);
	}
	if (!token && (!user || !password)) {
		logmsg("no credentials: -o user=NAME with password_file=FILE (or $STORFS_PASSWORD), "
		       "or token_file=FILE (or $STORFS_TOKEN)");
		return 2;
	}
	/* add the FUSE options this needs (large reads, a name in mtab), and
	 * attribute and name caching for 5 s unless the command line says
	 * otherwise (inserted first: a later -o wins). An open always asks the
	 * server, so this delays only what stat(2) shows of another client's
	 * change (as NFS's attribute cache does). */
	fuse_opt_insert_arg(&args, 1, "-oattr_timeout=5,entry_timeout=5");
	fuse_opt_add_arg(&args, "-omax_read=1048576");
	char fsname[1100];
	snprintf(fsname, sizeof fsname, "-ofsname=storfs#%.1000s,subtype=storfs", O.url);
	fuse_opt_add_arg(&args, fsname);

	struct fuse_cmdline_opts co;
	if (fuse_parse_cmdline(&args, &co) != 0)
		return 2;
	if (!co.mountpoint) {
		usage(argv[0]);
		return 2;
	}
	Mnt = co.mountpoint;
	Uid = getuid();
	Gid = getgid();

	sdc_server_opts so = {.name = "mnt", .url = O.url, .user = user, .password = password,
			      .token = token};
	sdc_options o = {.servers = &so, .nservers = 1, .page_size = psize,
			 .npages = O.cache_pages, .timeout_ms = (int)O.timeout * 1000,
			 .conditional_commit = conditional};
	int err;
	C = sdc_client_new(&o, &err);
	if (!C) {
		logmsg("%s: %s", O.url, sdc_strerror(err));
		return 2;
	}
	/* log in now: a wrong password or URL fails the mount, not the first ls */
	sdc_fsstat fs;
	int rc = sdc_statfs(C, "/", &fs);
	if (rc < 0) {
		logmsg("%s: %s (%s)", O.url, sdc_strerror(rc), sdc_errmsg());
		sdc_client_free(C);
		return 1;
	}

	F = fuse_new(&args, &ops, sizeof ops, NULL);
	if (!F) {
		sdc_client_free(C);
		return 2;
	}
	if (fuse_mount(F, Mnt) != 0) {
		fuse_destroy(F);
		sdc_client_free(C);
		return 1;
	}
	if (fuse_daemonize(co.foreground) != 0) {
		fuse_unmount(F);
		fuse_destroy(F);
		return 1;
	}
	/* signals go to the signal thread; SIGUSR2 interrupts the loop's wait */
	Main_thread = pthread_self();
	struct sigaction sa = {0};
	sa.sa_handler = wake;
	sigaction(SIGUSR2, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	static sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	pthread_t st, kt;
	pthread_create(&st, NULL, signal_thread, &set);
	pthread_create(&kt, NULL, keepalive_thread, NULL);

	if (co.singlethread) {
		rc = fuse_loop(F);
	} else {
		struct fuse_loop_config *lc = fuse_loop_cfg_create();
		fuse_loop_cfg_set_clone_fd(lc, co.clone_fd);
		fuse_loop_cfg_set_idle_threads(lc, co.max_idle_threads ? co.max_idle_threads : 10);
		rc = fuse_loop_mt(F, lc);
		fuse_loop_cfg_destroy(lc);
	}
	Stopping = 1;
	fuse_unmount(F);
	fuse_destroy(F); /* fs_destroy: sdc_push_all */
	pthread_join(kt, NULL);
	rc = sdc_client_free(C); /* the last commits, every handle released */
	if (rc < 0)
		logmsg("unmount: %s", sdc_strerror(rc));
	free(co.mountpoint);
	fuse_opt_free_args(&args);
	free(password);
	free(token);
	return rc < 0 ? 1 : 0;
}
