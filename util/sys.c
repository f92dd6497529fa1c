/*
 * sys.c - the system-call wrappers of sys.h, with the fault seam.
 *
 * Every wrapper retries EINTR and finishes short transfers, so callers see
 * only "all done" or "-errno". The fault seam is a per-operation countdown:
 * sd__sys_fail(SD_SYS_FSYNC, 2, EIO) makes the second next fsync fail with
 * EIO, once. It costs one atomic load per call when unused.
 */
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

static atomic_int fail_countdown[SD_SYS_NOPS];
static atomic_int fail_errno[SD_SYS_NOPS];

void sd__sys_fail(int op, int nth, int err)
{
	atomic_store(&fail_errno[op], err);
	atomic_store(&fail_countdown[op], nth);
}

void sd__sys_fail_clear(void)
{
	for (int i = 0; i < SD_SYS_NOPS; i++)
		atomic_store(&fail_countdown[i], 0);
}

/* Returns -err when the seam says this call must fail, else 0. */
static int injected(int op)
{
	if (atomic_load_explicit(&fail_countdown[op], memory_order_relaxed) <= 0)
		return 0;
	if (atomic_fetch_sub(&fail_countdown[op], 1) == 1)
		return -atomic_load(&fail_errno[op]);
	return 0;
}

ssize_t sd_sys_pread(int fd, void *buf, size_t n, uint64_t off)
{
	int e = injected(SD_SYS_READ);
	if (e)
		return e;
	size_t done = 0;
	while (done < n) {
		ssize_t r = pread(fd, (char *)buf + done, n - done, (off_t)(off + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

ssize_t sd_sys_read(int fd, void *buf, size_t n)
{
	int e = injected(SD_SYS_READ);
	if (e)
		return e;
	size_t done = 0;
	while (done < n) {
		ssize_t r = read(fd, (char *)buf + done, n - done);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

int sd_sys_pwrite(int fd, const void *buf, size_t n, uint64_t off)
{
	int e = injected(SD_SYS_WRITE);
	if (e)
		return e;
	size_t done = 0;
	while (done < n) {
		ssize_t r = pwrite(fd, (const char *)buf + done, n - done, (off_t)(off + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)r;
	}
	return 0;
}

int sd_sys_write(int fd, const void *buf, size_t n)
{
	int e = injected(SD_SYS_WRITE);
	if (e)
		return e;
	size_t done = 0;
	while (done < n) {
		ssize_t r = write(fd, (const char *)buf + done, n - done);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)r;
	}
	return 0;
}

int sd_sys_fsync(int fd)
{
	int e = injected(SD_SYS_FSYNC);
	if (e)
		return e;
	return fsync(fd) == 0 ? 0 : -errno;
}

void sd_sys_writeback(int fd, uint64_t off, uint64_t len)
{
	while (sync_file_range(fd, (off_t)off, (off_t)len, SYNC_FILE_RANGE_WRITE) != 0 && errno == EINTR)
		;
}

int sd_sys_fdatasync(int fd)
{
	int e = injected(SD_SYS_FSYNC);
	if (e)
		return e;
	return fdatasync(fd) == 0 ? 0 : -errno;
}

int sd_sys_fsync_dir(const char *path)
{
	int e = injected(SD_SYS_FSYNC);
	if (e)
		return e;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = fsync(fd) == 0 ? 0 : -errno;
	close(fd);
	return r;
}

int sd_sys_rename(const char *from, const char *to)
{
	int e = injected(SD_SYS_RENAME);
	if (e)
		return e;
	return rename(from, to) == 0 ? 0 : -errno;
}

int sd_sys_link(const char *from, const char *to)
{
	int e = injected(SD_SYS_RENAME);
	if (e)
		return e;
	return link(from, to) == 0 ? 0 : -errno;
}

int sd_sys_unlink(const char *path)
{
	return unlink(path) == 0 ? 0 : -errno;
}

int sd_sys_open(const char *path, int flags, mode_t mode)
{
	int e = injected(SD_SYS_OPEN);
	if (e)
		return e;
	int fd;
	do
		fd = open(path, flags | O_CLOEXEC, mode);
	while (fd < 0 && errno == EINTR);
	return fd < 0 ? -errno : fd;
}

int sd_sys_close(int fd)
{
	/* Linux closes the descriptor even when close() reports EINTR. */
	return close(fd) == 0 || errno == EINTR ? 0 : -errno;
}

int sd_sys_ftruncate(int fd, uint64_t size)
{
	int e = injected(SD_SYS_WRITE);
	if (e)
		return e;
	int r;
	do
		r = ftruncate(fd, (off_t)size);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

int sd_sys_mkdirs(const char *path)
{
	char tmp[PATH_MAX];
	size_t len = strlen(path);
	if (len == 0 || len >= sizeof tmp)
		return -ENAMETOOLONG;
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
		return -errno;
	struct stat st;
	if (stat(tmp, &st) != 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int sd_sys_copy_range(int in, int out, uint64_t n)
{
	loff_t ioff = 0, ooff = 0;
	uint64_t left = n;
	while (left > 0) {
		size_t chunk = left > (1u << 30) ? (1u << 30) : (size_t)left;
		ssize_t r = copy_file_range(in, &ioff, out, &ooff, chunk, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)
				goto fallback;
			return -errno;
		}
		if (r == 0)
			return -EIO; /* source shorter than promised */
		left -= (uint64_t)r;
	}
	return 0;
fallback:;
	char local[1 << 16];
	while (left > 0) {
		size_t chunk = left > sizeof local ? sizeof local : (size_t)left;
		ssize_t r = sd_sys_pread(in, local, chunk, (uint64_t)ioff);
		if (r < 0)
			return (int)r;
		if (r == 0)
			return -EIO;
		int w = sd_sys_pwrite(out, local, (size_t)r, (uint64_t)ooff);
		if (w < 0)
			return w;
		ioff += r;
		ooff += r;
		left -= (uint64_t)r;
	}
	return 0;
}

int sd_sys_disk_usage(const char *path, int *pct, uint64_t *total, uint64_t *avail,
		      uint64_t *bfree)
{
	struct statvfs sv;
	if (statvfs(path, &sv) != 0)
		return -errno;
	uint64_t t = (uint64_t)sv.f_blocks * sv.f_frsize;
	uint64_t a = (uint64_t)sv.f_bavail * sv.f_frsize;
	uint64_t f = (uint64_t)sv.f_bfree * sv.f_frsize;
	if (total)
		*total = t;
	if (avail)
		*avail = a;
	if (bfree)
		*bfree = f;
	if (pct) {
		/* like df: used / (used + available to users) */
		uint64_t used = t - f;
		uint64_t denom = used + a;
		*pct = denom ? (int)((used * 100 + denom - 1) / denom) : 0;
	}
	return 0;
}

void *sd_sys_map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void sd_sys_unmap(void *p, size_t len)
{
	if (p)
		munmap(p, len);
}

void sd_sys_discard(void *p, size_t len)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t a = ((uintptr_t)p + page - 1) & ~(page - 1);
	uintptr_t b = ((uintptr_t)p + len) & ~(page - 1);
	if (b > a)
		madvise((void *)a, b - a, MADV_DONTNEED);
}
