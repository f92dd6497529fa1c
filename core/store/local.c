/*
 * store/local.c - the local blob store: <dir>/ab/cd/<64 hex> (two levels
 * of 256 shards), unchanged on disk since the first release.
 *
 * place(T, H):  rename(T, ab/cd/H) (making the shard directories only if
 *               the rename says they are missing), fsync(ab/cd) when
 *               durable. The engine fsync'd T before (store.h).
 * Locks: an OFD byte-range lock on <dir>/.lock, one byte per first address
 * byte (256 stripes). OFD locks belong to the open file description, so
 * threads sharing one descriptor would not exclude each other: each lock
 * opens its own description, and closing it releases the lock. Being
 * file locks, they also exclude storagectl running beside the daemon.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"
#include "sys.h"
#include "util.h"

typedef struct local {
	sd_store base;
	char *dir;
	char *lock_path;
	int durable;
} local;

struct sd_blobrd {
	int fd;
};

#ifdef SD_TEST_BUILD
/* Test builds check the locking contract (store.h, I3): place and remove
 * run only while this thread holds the address's stripe. */
#include <assert.h>
static __thread unsigned char held[256];
#define HOLD(stripe, v) (held[(stripe)] += (v))
#define ASSERT_HELD(hex) assert(held[stripe_of(hex)] > 0)
#else
#define HOLD(stripe, v) ((void)0)
#define ASSERT_HELD(hex) ((void)0)
#endif

static int stripe_of(const char *hex);

static void blob_path(const local *l, const char *hex, char out[PATH_MAX])
{
	snprintf(out, PATH_MAX, "%s/%.2s/%.2s/%s", l->dir, hex, hex + 2, hex);
}

/* mkdir ab and ab/cd as needed, fsyncing each new entry's parent so the
 * directories themselves survive a crash. */
static int shard_dirs(local *l, const char *hex)
{
	char d1[PATH_MAX], d2[PATH_MAX];
	snprintf(d1, sizeof d1, "%s/%.2s", l->dir, hex);
	snprintf(d2, sizeof d2, "%s/%.2s/%.2s", l->dir, hex, hex + 2);
	if (mkdir(d1, 0750) == 0) {
		int r = l->durable ? sd_sys_fsync_dir(l->dir) : 0;
		if (r < 0)
			return r;
	} else if (errno != EEXIST) {
		return -errno;
	}
	if (mkdir(d2, 0750) == 0) {
		int r = l->durable ? sd_sys_fsync_dir(d1) : 0;
		if (r < 0)
			return r;
	} else if (errno != EEXIST) {
		return -errno;
	}
	return 0;
}

static int l_stat(sd_store *s, const char *hex, uint64_t *size)
{
	local *l = (local *)s;
	char p[PATH_MAX];
	blob_path(l, hex, p);
	struct stat sb;
	if (stat(p, &sb) != 0)
		return -errno;
	if (size)
		*size = (uint64_t)sb.st_size;
	return 0;
}

/* Rename from into hex's place and make the rename durable. */
static int settle(local *l, const char *from, const char *hex)
{
	char p[PATH_MAX], dir[PATH_MAX];
	blob_path(l, hex, p);
	int r = sd_sys_rename(from, p);
	if (r == -ENOENT) {
		if ((r = shard_dirs(l, hex)) < 0)
			return r;
		r = sd_sys_rename(from, p);
	}
	if (r < 0)
		return r;
	snprintf(dir, sizeof dir, "%s/%.2s/%.2s", l->dir, hex, hex + 2);
	if (l->durable && (r = sd_sys_fsync_dir(dir)) < 0) {
		sd_sys_unlink(p);
		return r;
	}
	return 0;
}

static int l_place(sd_store *s, int fd, const char *tmppath, const char *hex, uint64_t size)
{
	(void)fd;
	(void)size;
	ASSERT_HELD(hex);
	local *l = (local *)s;
	if (l_stat(s, hex, NULL) == 0)
		return 1;
	return settle(l, tmppath, hex);
}

static int l_put(sd_store *s, const void *buf, size_t len, const char *hex)
{
	ASSERT_HELD(hex);
	local *l = (local *)s;
	if (l_stat(s, hex, NULL) == 0)
		return 1;
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof tmp, "%s/.put-%ld-%s", l->dir, (long)getpid(), hex);
	int fd = sd_sys_open(tmp, O_RDWR | O_CREAT | O_TRUNC, 0640);
	if (fd < 0)
		return fd;
	int r = sd_sys_write(fd, buf, len);
	if (r == 0 && l->durable)
		r = sd_sys_fsync(fd);
	close(fd);
	if (r == 0)
		r = settle(l, tmp, hex);
	if (r < 0)
		sd_sys_unlink(tmp);
	return r;
}

static int l_open(sd_store *s, const char *hex, sd_blobrd **out)
{
	local *l = (local *)s;
	char p[PATH_MAX];
	blob_path(l, hex, p);
	int fd = sd_sys_open(p, O_RDONLY, 0);
	if (fd < 0)
		return fd;
	sd_blobrd *r = sd_xcalloc(1, sizeof *r);
	r->fd = fd;
	*out = r;
	return 0;
}

static ssize_t l_pread(sd_blobrd *r, void *buf, size_t len, uint64_t off)
{
	return sd_sys_pread(r->fd, buf, len, off);
}

static int l_fd(sd_blobrd *r, int *fd, uint64_t *base)
{
	*fd = r->fd;
	*base = 0;
	return 0;
}

static void l_close(sd_blobrd *r)
{
	if (!r)
		return;
	close(r->fd);
	free(r);
}

static int l_remove(sd_store *s, const char *hex)
{
	ASSERT_HELD(hex);
	local *l = (local *)s;
	char p[PATH_MAX];
	blob_path(l, hex, p);
	return sd_sys_unlink(p);
}

static int l_discard(sd_store *s, const char *name)
{
	local *l = (local *)s;
	/* only ever a path walk() produced under our directory */
	size_t n = strlen(l->dir);
	if (strncmp(name, l->dir, n) != 0 || name[n] != '/' || strstr(name, "/../"))
		return -EINVAL;
	return sd_sys_unlink(name);
}

/* out = a "/" b; 0, or -1 when it does not fit. */
static int pjoin(char out[PATH_MAX], const char *a, const char *b)
{
	int n = snprintf(out, PATH_MAX, "%s/%s", a, b);
	return n < 0 || n >= PATH_MAX ? -1 : 0;
}

/* A shard directory name: exactly two lowercase hex digits. */
static int shard_name(const char *n)
{
	static const char hx[] = "0123456789abcdef";
	return n[0] && n[1] && !n[2] && strchr(hx, n[0]) && strchr(hx, n[1]);
}

static int l_walk(sd_store *s, sd_store_walk_cb cb, void *arg)
{
	local *l = (local *)s;
	DIR *d1 = opendir(l->dir);
	if (!d1)
		return -errno;
	int stop = 0;
	struct dirent *e1;
	while (!stop && (e1 = readdir(d1))) {
		char p1[PATH_MAX];
		if (!shard_name(e1->d_name) || pjoin(p1, l->dir, e1->d_name) < 0)
			continue;
		DIR *d2 = opendir(p1);
		if (!d2)
			continue;
		struct dirent *e2;
		while (!stop && (e2 = readdir(d2))) {
			char p2[PATH_MAX];
			if (!shard_name(e2->d_name) || pjoin(p2, p1, e2->d_name) < 0)
				continue;
			DIR *d3 = opendir(p2);
			if (!d3)
				continue;
			struct dirent *e3;
			while (!stop && (e3 = readdir(d3))) {
				char p3[PATH_MAX];
				if (e3->d_name[0] == '.' || pjoin(p3, p2, e3->d_name) < 0)
					continue;
				int ok = sd_is_sha256_hex(e3->d_name) &&
					 strncmp(e3->d_name, e1->d_name, 2) == 0 &&
					 strncmp(e3->d_name + 2, e2->d_name, 2) == 0;
				/* addresses are lowercase: an uppercase name is a stray */
				for (int i = 0; ok && i < 64; i++)
					ok = !(e3->d_name[i] >= 'A' && e3->d_name[i] <= 'F');
				stop = cb(arg, ok ? e3->d_name : NULL, p3);
			}
			closedir(d3);
		}
		closedir(d2);
	}
	closedir(d1);
	return 0;
}

static int stripe_of(const char *hex)
{
	unsigned char b;
	char two[3] = {hex[0], hex[1], 0};
	return sd_unhex(two, &b, 1) < 0 ? 0 : b;
}

static int l_lock(sd_store *s, const char *hex)
{
	local *l = (local *)s;
	int fd = sd_sys_open(l->lock_path, O_RDWR | O_CREAT, 0640);
	if (fd < 0)
		return fd;
	struct flock fl = {0};
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = stripe_of(hex);
	fl.l_len = 1;
	while (fcntl(fd, F_OFD_SETLKW, &fl) != 0) {
		if (errno == EINTR)
			continue;
		int e = -errno;
		close(fd);
		return e;
	}
	/* the token carries the descriptor and the stripe */
	int stripe = stripe_of(hex);
	HOLD(stripe, 1);
	return fd << 8 | stripe;
}

static void l_unlock(sd_store *s, int token)
{
	(void)s;
	if (token < 0)
		return;
	HOLD(token & 0xff, -1);
	close(token >> 8);
}

static int l_space(sd_store *s, int *pct, uint64_t *total, uint64_t *avail, uint64_t *bfree)
{
	local *l = (local *)s;
	return sd_sys_disk_usage(l->dir, pct, total, avail, bfree);
}

static void l_destroy(sd_store *s)
{
	local *l = (local *)s;
	if (!l)
		return;
	free(l->dir);
	free(l->lock_path);
	free(l);
}

static const sd_store_ops local_ops = {
	.name = "local",
	.place = l_place,
	.put = l_put,
	.stat = l_stat,
	.open = l_open,
	.pread = l_pread,
	.fd = l_fd,
	.close = l_close,
	.remove = l_remove,
	.discard = l_discard,
	.walk = l_walk,
	.lock = l_lock,
	.unlock = l_unlock,
	.space = l_space,
	.destroy = l_destroy,
};

sd_store *sd_store_local_open(const char *dir, int durable, char *err, size_t errlen)
{
	int r = sd_sys_mkdirs(dir);
	if (r < 0) {
		snprintf(err, errlen, "cannot create blob directory %s: %s", dir, strerror(-r));
		return NULL;
	}
	local *l = sd_xcalloc(1, sizeof *l);
	l->base.ops = &local_ops;
	l->dir = sd_xstrdup(dir);
	l->lock_path = sd_xasprintf("%s/.lock", dir);
	l->durable = durable;
	int fd = sd_sys_open(l->lock_path, O_RDWR | O_CREAT, 0640);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", l->lock_path, strerror(-fd));
		l_destroy(&l->base);
		return NULL;
	}
	close(fd);
	return &l->base;
}
