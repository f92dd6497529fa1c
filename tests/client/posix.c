/*
 * posix.c - a POSIX behaviour suite for a directory, organised by the
 * syscall families pjdfstest covers (open, create, truncate, rename, unlink,
 * mkdir, rmdir, chmod, utimens, link, symlink) plus what programs rely on
 * besides (O_APPEND, sparse writes, an unlinked open file, large
 * directories, xattrs, statfs).
 *
 *   client-posix DIR
 *
 * Runs every case in a fresh subdirectory of DIR and prints one line per
 * case: "family/case <TAB> want <TAB> got", where want is what POSIX (and
 * Linux on a local file system, as root) answers: "0", an errno name, or a
 * value ("size=100"). The last line is "posix: N cases, M differ from POSIX".
 * Exit status 0 always (the caller compares runs: tests/integration/
 * test_storfs.py runs it on a tmpfs and on a storfs mount, and the
 * differences must be exactly the ones docs/storfs.md lists).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <unistd.h>

static char base[PATH_MAX];
static int ncases, ndiff;
static char got[256];

static const char *ename(int e)
{
	switch (e) {
	case 0: return "0";
	case ENOENT: return "ENOENT";
	case EEXIST: return "EEXIST";
	case EISDIR: return "EISDIR";
	case ENOTDIR: return "ENOTDIR";
	case ENOTEMPTY: return "ENOTEMPTY";
	case EINVAL: return "EINVAL";
	case EPERM: return "EPERM";
	case EACCES: return "EACCES";
	case EBADF: return "EBADF";
	case ENAMETOOLONG: return "ENAMETOOLONG";
	case ENOTSUP: return "ENOTSUP";
	case ENODATA: return "ENODATA";
	case EXDEV: return "EXDEV";
	case EBUSY: return "EBUSY";
	case EIO: return "EIO";
	case ENOSYS: return "ENOSYS";
	case ERANGE: return "ERANGE";
	default: {
		static char b[32];
		snprintf(b, sizeof b, "errno%d", e);
		return b;
	}
	}
}

/* The result of a call: "0" or its errno's name. */
static const char *R(int rc)
{
	snprintf(got, sizeof got, "%s", rc < 0 ? ename(errno) : "0");
	return got;
}

static const char *V(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *V(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(got, sizeof got, fmt, ap);
	va_end(ap);
	return got;
}

static void check(const char *name, const char *want, const char *g)
{
	ncases++;
	if (strcmp(want, g) != 0)
		ndiff++;
	printf("%s\t%s\t%s\n", name, want, g);
	fflush(stdout);
}

static char *P(const char *rel)
{
	static char b[4][PATH_MAX + 300];
	static int k;
	k = (k + 1) % 4;
	snprintf(b[k], sizeof b[k], "%s/%.290s", base, rel);
	return b[k];
}

static void put(const char *rel, const char *data)
{
	int fd = open(P(rel), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, data, strlen(data)) != (ssize_t)strlen(data) || close(fd) < 0) {
		fprintf(stderr, "posix: setup %s: %s\n", rel, strerror(errno));
		exit(2);
	}
}

static const char *content(const char *rel)
{
	int fd = open(P(rel), O_RDONLY);
	if (fd < 0)
		return R(-1);
	char b[200];
	ssize_t n = read(fd, b, sizeof b - 1);
	close(fd);
	if (n < 0)
		return R(-1);
	b[n] = '\0';
	return V("data=%s", b);
}

static const char *size_of(const char *rel)
{
	struct stat st;
	if (stat(P(rel), &st) < 0)
		return R(-1);
	return V("size=%lld", (long long)st.st_size);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	umask(0);
	snprintf(base, sizeof base, "%s/posix.%d", argv[1], (int)getpid());
	if (mkdir(base, 0755) < 0) {
		perror(base);
		return 2;
	}
	int fd, fd2;
	struct stat st;
	char buf[4096];

	/* ---------------------------------------------------------- open */
	check("open/creat-excl-new", "0", R(fd = open(P("o1"), O_RDWR | O_CREAT | O_EXCL, 0644)));
	close(fd);
	check("open/creat-excl-exists", "EEXIST", R(open(P("o1"), O_RDWR | O_CREAT | O_EXCL, 0644)));
	check("open/missing", "ENOENT", R(open(P("nothing"), O_RDONLY)));
	mkdir(P("od"), 0755);
	check("open/dir-for-write", "EISDIR", R(open(P("od"), O_WRONLY)));
	check("open/under-a-file", "ENOTDIR", R(open(P("o1/x"), O_RDONLY)));
	check("open/o_directory-on-file", "ENOTDIR", R(open(P("o1"), O_RDONLY | O_DIRECTORY)));
	memset(buf, 'n', 256);
	buf[256] = '\0';
	check("open/name-too-long", "ENAMETOOLONG", R(open(P(buf), O_RDWR | O_CREAT, 0644)));
	put("ot", "0123456789");
	fd = open(P("ot"), O_WRONLY | O_TRUNC);
	close(fd);
	check("open/o_trunc", "size=0", size_of("ot"));
	put("oa", "abc");
	fd = open(P("oa"), O_WRONLY | O_APPEND);
	if (write(fd, "de", 2) != 2)
		perror("write");
	lseek(fd, 0, SEEK_SET);
	if (write(fd, "fg", 2) != 2) /* O_APPEND: at the end whatever the offset */
		perror("write");
	close(fd);
	check("open/o_append", "data=abcdefg", content("oa"));
	fd = open(P("oa"), O_WRONLY | O_APPEND);
	fd2 = open(P("oa"), O_WRONLY | O_APPEND);
	if (write(fd, "1", 1) != 1 || write(fd2, "2", 1) != 1 || write(fd, "3", 1) != 1)
		perror("write");
	close(fd);
	close(fd2);
	check("open/o_append-two-descriptors", "data=abcdefg123", content("oa"));
	put("orw", "hello");
	fd = open(P("orw"), O_RDONLY);
	check("open/write-on-rdonly", "EBADF", R((int)write(fd, "x", 1)));
	close(fd);

	/* ---------------------------------------------------------- create */
	check("create/mode", "0", R(fd = open(P("c1"), O_WRONLY | O_CREAT, 0640)));
	if (write(fd, "abc", 3) != 3)
		perror("write");
	check("create/stat-while-open", "size=3", size_of("c1")); /* before the close */
	close(fd);
	stat(P("c1"), &st);
	check("create/mode-kept", "mode=0640", V("mode=0%o", (unsigned)(st.st_mode & 07777)));
	check("create/missing-parent", "ENOENT", R(open(P("nodir/c"), O_WRONLY | O_CREAT, 0644)));
	check("create/mkfifo", "0", R(mkfifo(P("fifo"), 0644)));

	/* ---------------------------------------------------------- truncate */
	put("t1", "0123456789");
	check("truncate/grow", "0", R(truncate(P("t1"), 100)));
	fd = open(P("t1"), O_RDONLY);
	ssize_t n = pread(fd, buf, sizeof buf, 0);
	close(fd);
	int zeros = n == 100;
	for (int i = 10; i < 100 && zeros; i++)
		zeros = buf[i] == 0;
	check("truncate/grow-reads-zeros", "size=100 zeros=1", V("size=%zd zeros=%d", n, zeros));
	fd = open(P("t1"), O_RDWR);
	check("truncate/ftruncate-shrink", "0", R(ftruncate(fd, 4)));
	close(fd);
	check("truncate/shrunk", "data=0123", content("t1"));
	check("truncate/dir", "EISDIR", R(truncate(P("od"), 0)));
	check("truncate/missing", "ENOENT", R(truncate(P("nothing"), 0)));
	fd = open(P("t1"), O_RDONLY);
	check("truncate/ftruncate-rdonly", "EINVAL", R(ftruncate(fd, 0)));
	close(fd);
	fd = open(P("sparse"), O_RDWR | O_CREAT, 0644);
	if (pwrite(fd, "X", 1, (1 << 20) + 5) != 1)
		perror("pwrite");
	close(fd);
	fd = open(P("sparse"), O_RDONLY);
	n = pread(fd, buf, 4096, 4096);
	int hole = n == 4096;
	for (int i = 0; i < 4096 && hole; i++)
		hole = buf[i] == 0;
	fstat(fd, &st);
	char last = 0;
	if (pread(fd, &last, 1, (1 << 20) + 5) != 1)
		last = '?';
	close(fd);
	check("truncate/sparse-write", "size=1048582 hole=1 last=X",
	      V("size=%lld hole=%d last=%c", (long long)st.st_size, hole, last));

	/* ---------------------------------------------------------- rename */
	put("r1", "one");
	check("rename/file", "0", R(rename(P("r1"), P("r2"))));
	check("rename/old-name-gone", "ENOENT", R(stat(P("r1"), &st)));
	check("rename/new-name", "data=one", content("r2"));
	put("r3", "three");
	check("rename/over-existing-file", "0", R(rename(P("r3"), P("r2"))));
	check("rename/target-replaced", "data=three", content("r2"));
	check("rename/missing", "ENOENT", R(rename(P("nothing"), P("r9"))));
	mkdir(P("rd1"), 0755);
	mkdir(P("rd2"), 0755);
	put("rd2/f", "x");
	check("rename/dir-over-nonempty-dir", "ENOTEMPTY", R(rename(P("rd1"), P("rd2"))));
	check("rename/dir-over-file", "ENOTDIR", R(rename(P("rd1"), P("r2"))));
	check("rename/file-over-dir", "EISDIR", R(rename(P("r2"), P("rd1"))));
	check("rename/dir-into-itself", "EINVAL", R(rename(P("rd2"), P("rd2/sub"))));
	mkdir(P("rd3"), 0755);
	check("rename/dir-over-empty-dir", "0", R(rename(P("rd2"), P("rd3"))));
	check("rename/dir-moved-with-content", "data=x", content("rd3/f"));
	put("rnr", "a");
	put("rnr2", "b");
	check("rename/noreplace-existing", "EEXIST",
	      R((int)syscall(SYS_renameat2, AT_FDCWD, P("rnr"), AT_FDCWD, P("rnr2"), 1 /* NOREPLACE */)));
	fd = open(P("ro1"), O_RDWR | O_CREAT, 0644);
	if (write(fd, "before ", 7) != 7)
		perror("write");
	rename(P("ro1"), P("ro2"));
	if (write(fd, "after", 5) != 5)
		perror("write");
	close(fd);
	check("rename/open-file-follows", "data=before after", content("ro2"));
	check("rename/open-file-old-name", "ENOENT", R(stat(P("ro1"), &st)));

	/* ---------------------------------------------------------- unlink */
	put("u1", "x");
	check("unlink/file", "0", R(unlink(P("u1"))));
	check("unlink/gone", "ENOENT", R(stat(P("u1"), &st)));
	check("unlink/dir", "EISDIR", R(unlink(P("od"))));
	check("unlink/missing", "ENOENT", R(unlink(P("nothing"))));
	put("u2", "still readable");
	fd = open(P("u2"), O_RDONLY);
	check("unlink/open-file", "0", R(unlink(P("u2"))));
	memset(buf, 0, sizeof buf);
	n = pread(fd, buf, 100, 0);
	check("unlink/open-file-reads", "still readable", n > 0 ? buf : R(-1));
	check("unlink/open-file-fstat", "0", R(fstat(fd, &st)));
	close(fd);
	check("unlink/open-file-gone-after-close", "ENOENT", R(stat(P("u2"), &st)));
	put("u3", "old");
	fd = open(P("u3"), O_RDWR);
	unlink(P("u3"));
	if (pwrite(fd, "NEW", 3, 0) != 3)
		perror("pwrite");
	close(fd);
	check("unlink/open-file-not-resurrected", "ENOENT", R(stat(P("u3"), &st)));
	put("u4", "replaced while open");
	fd = open(P("u4"), O_RDONLY);
	put("u5", "new one");
	rename(P("u5"), P("u4"));
	memset(buf, 0, sizeof buf);
	n = pread(fd, buf, 100, 0);
	close(fd);
	check("unlink/renamed-over-open-file-reads", "replaced while open", n > 0 ? buf : R(-1));
	check("unlink/renamed-over-target", "data=new one", content("u4"));

	/* ---------------------------------------------------------- mkdir */
	check("mkdir/new", "0", R(mkdir(P("m1"), 0750)));
	stat(P("m1"), &st);
	check("mkdir/mode", "mode=0750", V("mode=0%o", (unsigned)(st.st_mode & 07777)));
	check("mkdir/exists", "EEXIST", R(mkdir(P("m1"), 0755)));
	check("mkdir/missing-parent", "ENOENT", R(mkdir(P("nodir/m"), 0755)));
	check("mkdir/under-a-file", "ENOTDIR", R(mkdir(P("c1/m"), 0755)));

	/* ---------------------------------------------------------- rmdir */
	mkdir(P("e1"), 0755);
	check("rmdir/empty", "0", R(rmdir(P("e1"))));
	mkdir(P("e2"), 0755);
	put("e2/f", "x");
	check("rmdir/not-empty", "ENOTEMPTY", R(rmdir(P("e2"))));
	check("rmdir/not-empty-kept", "data=x", content("e2/f"));
	check("rmdir/file", "ENOTDIR", R(rmdir(P("c1"))));
	check("rmdir/missing", "ENOENT", R(rmdir(P("nothing"))));

	/* ---------------------------------------------------------- chmod */
	put("h1", "x");
	check("chmod/file", "0", R(chmod(P("h1"), 0600)));
	stat(P("h1"), &st);
	check("chmod/mode", "mode=0600", V("mode=0%o", (unsigned)(st.st_mode & 07777)));
	check("chmod/dir", "0", R(chmod(P("m1"), 0700)));
	stat(P("m1"), &st);
	check("chmod/dir-mode", "mode=0700", V("mode=0%o", (unsigned)(st.st_mode & 07777)));
	check("chmod/missing", "ENOENT", R(chmod(P("nothing"), 0600)));
	fd = open(P("h2"), O_WRONLY | O_CREAT, 0644);
	if (write(fd, "x", 1) != 1)
		perror("write");
	fchmod(fd, 0604);
	close(fd);
	stat(P("h2"), &st);
	check("chmod/fchmod-while-writing", "mode=0604", V("mode=0%o", (unsigned)(st.st_mode & 07777)));
	check("chmod/chown-other-user", "0", R(chown(P("h1"), 1234, 1234)));

	/* ---------------------------------------------------------- utimens */
	put("i1", "x");
	struct timespec ts[2] = {{1600000000, 0}, {1700000000, 500000000}};
	check("utimens/set", "0", R(utimensat(AT_FDCWD, P("i1"), ts, 0)));
	stat(P("i1"), &st);
	check("utimens/mtime-seconds", "mtime=1700000000", V("mtime=%lld", (long long)st.st_mtime));
	check("utimens/mtime-nanoseconds", "nsec=500000000", V("nsec=%ld", st.st_mtim.tv_nsec));
	fd = open(P("i2"), O_WRONLY | O_CREAT, 0644);
	if (write(fd, "data", 4) != 4)
		perror("write");
	struct timespec t2[2] = {{1500000000, 0}, {1500000000, 0}};
	futimens(fd, t2); /* cp -a, tar: times set before the close */
	close(fd);
	stat(P("i2"), &st);
	check("utimens/futimens-before-close", "mtime=1500000000", V("mtime=%lld", (long long)st.st_mtime));
	check("utimens/missing", "ENOENT", R(utimensat(AT_FDCWD, P("nothing"), ts, 0)));

	/* ---------------------------------------------------------- link, symlink */
	put("l1", "x");
	check("link/hard-link", "0", R(link(P("l1"), P("l2"))));
	check("symlink/create", "0", R(symlink("l1", P("s1"))));
	check("symlink/readlink-on-a-file", "EINVAL", R((int)readlink(P("l1"), buf, sizeof buf)));

	/* ---------------------------------------------------------- others */
	mkdir(P("big"), 0755);
	for (int i = 0; i < 1500; i++) {
		char nm[64];
		snprintf(nm, sizeof nm, "big/entry-%04d", i);
		fd = open(P(nm), O_WRONLY | O_CREAT, 0644);
		close(fd);
	}
	DIR *d = opendir(P("big"));
	int cnt = 0;
	struct dirent *de;
	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.')
			cnt++;
	if (d)
		closedir(d);
	check("readdir/1500-entries", "entries=1500", V("entries=%d", cnt));
	put("x1", "x");
	n = getxattr(P("x1"), "user.storaged.sha256", buf, sizeof buf);
	check("xattr/user.storaged.sha256", "ENODATA", n < 0 ? R(-1) : V("len=%zd", n));
	check("xattr/set-user-attr", "0", R(setxattr(P("x1"), "user.other", "v", 1, 0)));
	struct statvfs sv;
	check("statfs/call", "0", R(statvfs(base, &sv)));
	check("statfs/namemax", "namemax=255", V("namemax=%lu", sv.f_namemax));

	printf("posix: %d cases, %d differ from POSIX\n", ncases, ndiff);
	return 0;
}
