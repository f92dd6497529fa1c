/*
 * sys.h - every raw system call the core makes on data (CONVENTIONS 4).
 *
 * The wrappers retry on EINTR, loop over short reads and writes, and return
 * 0 / a byte count on success or -errno on failure. Nothing else in the core
 * calls read(), write(), fsync() or rename() on data directly.
 *
 * Fault seam (for tests): sd__sys_fail(op, nth, err) makes the nth next
 * call of op fail with -err, so tests can prove nothing is lost on ENOSPC or
 * EIO.
 */
#ifndef SD_SYS_H
#define SD_SYS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Reads up to n bytes at off (loops until n or EOF). Returns bytes read. */
ssize_t sd_sys_pread(int fd, void *buf, size_t n, uint64_t off);
/* Writes all n bytes at off. Returns 0 or -errno. */
int sd_sys_pwrite(int fd, const void *buf, size_t n, uint64_t off);
/* Writes all n bytes at the file position. Returns 0 or -errno. */
int sd_sys_write(int fd, const void *buf, size_t n);
/* Reads up to n bytes (one loop until n or EOF). Returns bytes read. */
ssize_t sd_sys_read(int fd, void *buf, size_t n);
int sd_sys_fsync(int fd);
/* Start writing [off, off+len) back to disk without waiting, so a later
 * fsync has little left to do. Advisory: errors are ignored (the fsync
 * that follows reports any). */
void sd_sys_writeback(int fd, uint64_t off, uint64_t len);
int sd_sys_fdatasync(int fd);
/* fsync the directory at path. */
int sd_sys_fsync_dir(const char *path);
int sd_sys_rename(const char *from, const char *to);
int sd_sys_link(const char *from, const char *to);
int sd_sys_unlink(const char *path);
/* open(2) with O_CLOEXEC added; returns fd or -errno. */
int sd_sys_open(const char *path, int flags, mode_t mode);
int sd_sys_close(int fd);
int sd_sys_ftruncate(int fd, uint64_t size);
/* mkdir -p, mode 0750. 0 if it exists as a directory. */
int sd_sys_mkdirs(const char *path);
/* Copies [0,n) of in to out at offset 0 (copy_file_range, falling back to
 * read/write). 0 or -errno. */
int sd_sys_copy_range(int in, int out, uint64_t n);
/* Disk usage of the file system holding path, in percent (0-100, as df
 * shows it), and totals in bytes: size, available to unprivileged writers
 * (f_bavail) and free including the reserved blocks (f_bfree). Each out
 * pointer may be NULL. 0 or -errno. */
int sd_sys_disk_usage(const char *path, int *pct, uint64_t *total, uint64_t *avail,
		      uint64_t *bfree);

/* Anonymous private memory of len bytes (mmap): its pages cost nothing
 * until written, and sd_sys_discard gives written ones back. NULL when
 * the kernel refuses. Free with sd_sys_unmap(p, len). */
void *sd_sys_map(size_t len);
void sd_sys_unmap(void *p, size_t len);
/* The whole pages of [p, p + len) are no longer needed: they go back to
 * the kernel and read as zeros when used again (MADV_DONTNEED). */
void sd_sys_discard(void *p, size_t len);

enum sd_sys_op {
	SD_SYS_WRITE = 0, /* sd_sys_write and sd_sys_pwrite */
	SD_SYS_FSYNC,     /* sd_sys_fsync, fdatasync, fsync_dir */
	SD_SYS_RENAME,    /* sd_sys_rename and sd_sys_link */
	SD_SYS_OPEN,
	SD_SYS_READ,
	SD_SYS_NOPS
};
void sd__sys_fail(int op, int nth, int err);
void sd__sys_fail_clear(void);

#endif
