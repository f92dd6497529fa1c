/*
 * fsxp.c - the fsx-style random test of tests/client/fsx.c, with ordinary
 * system calls on any path (a storfs mount): pread, pwrite, ftruncate,
 * fsync, close + reopen (sometimes with O_TRUNC), a second descriptor's
 * read, a sparse write far out, each checked against the same operations on
 * a local file; after every operation the size (fstat) and the whole
 * content are compared.
 *
 *   client-fsxp FILE LOCAL_DIR [-n OPS] [-s SEED] [-m MAXLEN]
 *
 * On a mismatch it prints the seed, the operation and the last operations,
 * and exits 1. The last line on success is "fsxp: N operations, seed S: ok".
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static uint64_t rs;
static uint64_t rnd(void)
{
	rs ^= rs >> 12;
	rs ^= rs << 25;
	rs ^= rs >> 27;
	return rs * 2685821657736338717ull;
}
static uint64_t below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

#define HIST 24
static char hist[HIST][160];
static long nop;
static uint64_t seed;

static void logop(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logop(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(hist[nop % HIST], sizeof hist[0], fmt, ap);
	va_end(ap);
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
	va_list ap;
	int e = errno;
	fprintf(stderr, "fsxp: FAILED at operation %ld (seed %" PRIu64 "): ", nop, seed);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (errno %d %s)\nfsxp: last operations:\n", e, strerror(e));
	long first = nop - HIST + 1 < 0 ? 0 : nop - HIST + 1;
	for (long i = first; i <= nop; i++)
		fprintf(stderr, "  %6ld %s\n", i, hist[i % HIST]);
	fprintf(stderr, "fsxp: rerun with -s %" PRIu64 "\n", seed);
	exit(1);
}

static int lfd, rfd = -1;
static const char *rpath;

static uint64_t lsize(void)
{
	return (uint64_t)lseek(lfd, 0, SEEK_END);
}

static void compare_all(int fd, const char *why)
{
	uint64_t n = lsize();
	struct stat st;
	if (fstat(fd, &st) < 0)
		fail("fstat (%s)", why);
	if ((uint64_t)st.st_size != n)
		fail("size (%s): mount %lld, local %" PRIu64, why, (long long)st.st_size, n);
	char *a = malloc(n + 1), *b = malloc(n + 1);
	ssize_t k = pread(fd, a, n + 1, 0);
	if (k != (ssize_t)n)
		fail("pread all (%s): %zd bytes, expected %" PRIu64, why, k, n);
	if (pread(lfd, b, n, 0) != (ssize_t)n)
		fail("local pread");
	for (uint64_t i = 0; i < n; i++)
		if (a[i] != b[i])
			fail("content (%s): byte %" PRIu64 " is %02x, expected %02x", why, i,
			     (unsigned char)a[i], (unsigned char)b[i]);
	free(a);
	free(b);
}

static void do_open(int trunc)
{
	rfd = open(rpath, O_RDWR | O_CREAT | (trunc ? O_TRUNC : 0), 0644);
	if (rfd < 0)
		fail("open %s", rpath);
	if (trunc && ftruncate(lfd, 0) < 0)
		fail("local truncate");
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s FILE LOCAL_DIR [-n OPS] [-s SEED] [-m MAXLEN]\n", argv[0]);
		return 2;
	}
	rpath = argv[1];
	long ops = 3000;
	uint64_t maxlen = 256 * 1024;
	seed = (uint64_t)getpid() ^ (uint64_t)time(NULL);
	int opt;
	optind = 3;
	while ((opt = getopt(argc, argv, "n:s:m:")) != -1) {
		switch (opt) {
		case 'n': ops = atol(optarg); break;
		case 's': seed = strtoull(optarg, NULL, 10); break;
		case 'm': maxlen = strtoull(optarg, NULL, 10); break;
		default: return 2;
		}
	}
	rs = seed ? seed : 1;
	printf("fsxp: seed %" PRIu64 ", %ld operations, files up to %" PRIu64 " bytes\n", seed, ops,
	       maxlen);
	fflush(stdout);
	char lpath[4096];
	snprintf(lpath, sizeof lpath, "%s/fsxp-local.%d", argv[2], (int)getpid());
	lfd = open(lpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (lfd < 0) {
		perror(lpath);
		return 2;
	}
	unlink(lpath);
	do_open(1);
	char *buf = malloc(maxlen + 65536), *lbuf = malloc(maxlen + 65536);
	for (nop = 0; nop < ops; nop++) {
		uint64_t r = below(100);
		uint64_t size = lsize();
		if (r < 40) {
			uint64_t off = below(maxlen);
			uint64_t len = 1 + below(r < 10 ? maxlen - off : (65536 < maxlen - off ? 65536 : maxlen - off));
			for (uint64_t i = 0; i < len; i++)
				buf[i] = (char)(rnd() >> 56);
			logop("pwrite off=%" PRIu64 " len=%" PRIu64 " (size %" PRIu64 ")", off, len, size);
			if (pwrite(rfd, buf, len, (off_t)off) != (ssize_t)len)
				fail("pwrite");
			if (pwrite(lfd, buf, len, (off_t)off) != (ssize_t)len)
				fail("local pwrite");
		} else if (r < 62) {
			uint64_t off = below(size + 4096);
			uint64_t len = below(65536);
			logop("pread off=%" PRIu64 " len=%" PRIu64 " (size %" PRIu64 ")", off, len, size);
			ssize_t k = pread(rfd, buf, len, (off_t)off);
			ssize_t lk = pread(lfd, lbuf, len, (off_t)off);
			if (k != lk)
				fail("pread returned %zd, local %zd", k, lk);
			if (k > 0 && memcmp(buf, lbuf, (size_t)k) != 0)
				fail("pread content differs");
		} else if (r < 72) {
			uint64_t n = below(maxlen);
			if (below(4) == 0)
				n = below(size + 1);
			logop("ftruncate %" PRIu64 " (size %" PRIu64 ")", n, size);
			if (ftruncate(rfd, (off_t)n) < 0)
				fail("ftruncate");
			if (ftruncate(lfd, (off_t)n) < 0)
				fail("local ftruncate");
		} else if (r < 78) {
			logop("fsync");
			if (fsync(rfd) < 0)
				fail("fsync");
		} else if (r < 86) {
			int trunc = below(8) == 0;
			logop("close + reopen%s", trunc ? " O_TRUNC" : "");
			if (close(rfd) < 0)
				fail("close");
			struct stat st;
			if (stat(rpath, &st) < 0 || (uint64_t)st.st_size != size)
				fail("stat after close: size %lld expected %" PRIu64, (long long)st.st_size, size);
			do_open(trunc);
		} else if (r < 94) {
			logop("a second descriptor reads it all");
			int fd2 = open(rpath, O_RDONLY);
			if (fd2 < 0)
				fail("second open");
			compare_all(fd2, "second descriptor");
			close(fd2);
		} else {
			uint64_t off = maxlen - 1 - below(4096);
			char b1 = (char)(rnd() >> 56);
			logop("pwrite far (sparse) off=%" PRIu64, off);
			if (pwrite(rfd, &b1, 1, (off_t)off) != 1 || pwrite(lfd, &b1, 1, (off_t)off) != 1)
				fail("sparse pwrite");
		}
		compare_all(rfd, "after the operation");
	}
	if (close(rfd) < 0)
		fail("last close");
	int fd = open(rpath, O_RDONLY);
	if (fd < 0)
		fail("last open");
	compare_all(fd, "after the last close");
	close(fd);
	printf("fsxp: %ld operations, seed %" PRIu64 ": ok\n", ops, seed);
	free(buf);
	free(lbuf);
	return 0;
}
