/*
 * fsx.c - random file operations through libstoraged, checked against the
 * same operations on a local file (in the style of fsx).
 *
 *   client-fsx URL USER PASSWORD [-n OPS] [-s SEED] [-P PAGESIZE] [-c NPAGES]
 *              [-m MAXLEN] [-f REMOTE_PATH] [-d LOCAL_DIR]
 *
 * Each operation is one of: pwrite, pread (checked), ftruncate, fsync,
 * flush, close + reopen, page_write, page_read (checked), drop the clean
 * pages, and a full compare; after every operation the file's size (fstat)
 * and its whole content (pread) are compared with the local file. With a
 * cache of a few pages, nearly every operation evicts and writes back.
 * On a mismatch it prints the seed, the operation number and the last
 * operations, and exits 1. The last line on success is
 * "fsx: N operations, seed S: ok".
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "storaged-client.h"

static uint64_t rng_state;
static uint64_t rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}
static uint64_t rnd_below(uint64_t n)
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
	fprintf(stderr, "fsx: FAILED at operation %ld (seed %" PRIu64 "): ", nop, seed);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " [server says: %s]\nfsx: last operations:\n", sdc_errmsg());
	long first = nop - HIST + 1 < 0 ? 0 : nop - HIST + 1;
	for (long i = first; i <= nop; i++)
		fprintf(stderr, "  %6ld %s\n", i, hist[i % HIST]);
	fprintf(stderr, "fsx: rerun with -s %" PRIu64 "\n", seed);
	exit(1);
}

static int lfd;             /* the local model */
static sdc_client *c;
static int rfd = -1;
static char *remote;
static size_t psize;

static uint64_t lsize(void)
{
	off_t e = lseek(lfd, 0, SEEK_END);
	return (uint64_t)e;
}

static void compare_all(const char *why)
{
	uint64_t n = lsize();
	sdc_attr st;
	int rc = sdc_fstat(c, rfd, &st);
	if (rc < 0)
		fail("fstat (%s): %s", why, sdc_strerror(rc));
	if (st.size != n)
		fail("size (%s): libstoraged %" PRIu64 ", local %" PRIu64, why, st.size, n);
	char *a = malloc(n + 1), *b = malloc(n + 1);
	ssize_t k = sdc_pread(c, rfd, a, n + 1, 0);
	if (k < 0)
		fail("pread all (%s): %s", why, sdc_strerror((int)k));
	if ((uint64_t)k != n)
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
	int flags = O_RDWR | O_CREAT | (trunc ? O_TRUNC : 0);
	rfd = sdc_open(c, remote, flags, SDC_SHARE_EXCLUSIVE, 0644);
	if (rfd < 0)
		fail("open %s: %s", remote, sdc_strerror(rfd));
	if (trunc && ftruncate(lfd, 0) < 0)
		fail("local truncate");
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s URL USER PASSWORD [-n OPS] [-s SEED] [-P PAGESIZE] "
				"[-c NPAGES] [-m MAXLEN] [-f PATH] [-d DIR]\n", argv[0]);
		return 2;
	}
	long ops = 10000;
	seed = (uint64_t)getpid() ^ (uint64_t)time(NULL);
	size_t npages = 4;
	uint64_t maxlen = 64 * 1024;
	psize = 4096;
	remote = "/fsx.bin";
	const char *dir = "/tmp";
	int opt;
	optind = 4;
	while ((opt = getopt(argc, argv, "n:s:P:c:m:f:d:")) != -1) {
		switch (opt) {
		case 'n': ops = atol(optarg); break;
		case 's': seed = strtoull(optarg, NULL, 10); break;
		case 'P': psize = (size_t)atol(optarg); break;
		case 'c': npages = (size_t)atol(optarg); break;
		case 'm': maxlen = strtoull(optarg, NULL, 10); break;
		case 'f': remote = optarg; break;
		case 'd': dir = optarg; break;
		default: return 2;
		}
	}
	rng_state = seed ? seed : 1;
	printf("fsx: seed %" PRIu64 ", %ld operations, %zu pages of %zu bytes, files up to %" PRIu64
	       " bytes\n", seed, ops, npages, psize, maxlen);
	fflush(stdout);
	char lpath[4096];
	snprintf(lpath, sizeof lpath, "%s/fsx-local.%d", dir, (int)getpid());
	lfd = open(lpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (lfd < 0) {
		perror(lpath);
		return 2;
	}
	unlink(lpath);
	sdc_server_opts so = {.url = argv[1], .user = argv[2], .password = argv[3]};
	sdc_options o = {.servers = &so, .nservers = 1, .page_size = psize, .npages = npages,
			 .timeout_ms = 20000};
	int err;
	c = sdc_client_new(&o, &err);
	if (!c) {
		fprintf(stderr, "fsx: client: %s\n", sdc_strerror(err));
		return 2;
	}
	do_open(1);
	char *buf = malloc(maxlen + psize), *lbuf = malloc(maxlen + psize);
	for (nop = 0; nop < ops; nop++) {
		uint64_t r = rnd_below(100);
		uint64_t size = lsize();
		if (r < 34) {
			uint64_t off = rnd_below(maxlen);
			uint64_t len = 1 + rnd_below(r < 10 ? maxlen - off : (psize * 3 < maxlen - off ? psize * 3 : maxlen - off));
			for (uint64_t i = 0; i < len; i++)
				buf[i] = (char)(rnd() >> 56);
			logop("pwrite off=%" PRIu64 " len=%" PRIu64 " (size %" PRIu64 ")", off, len, size);
			ssize_t k = sdc_pwrite(c, rfd, buf, len, off);
			if (k != (ssize_t)len)
				fail("pwrite: %s", k < 0 ? sdc_strerror((int)k) : "short");
			if (pwrite(lfd, buf, len, (off_t)off) != (ssize_t)len)
				fail("local pwrite");
		} else if (r < 54) {
			uint64_t off = rnd_below(size + psize);
			uint64_t len = rnd_below(psize * 4);
			logop("pread off=%" PRIu64 " len=%" PRIu64 " (size %" PRIu64 ")", off, len, size);
			ssize_t k = sdc_pread(c, rfd, buf, len, off);
			ssize_t lk = pread(lfd, lbuf, len, (off_t)off);
			if (k != lk)
				fail("pread returned %zd, local %zd (%s)", k, lk, k < 0 ? sdc_strerror((int)k) : "");
			if (k > 0 && memcmp(buf, lbuf, (size_t)k) != 0)
				fail("pread content differs");
		} else if (r < 62) {
			uint64_t n = rnd_below(maxlen);
			if (rnd_below(4) == 0)
				n = rnd_below(size + 1);
			logop("ftruncate %" PRIu64 " (size %" PRIu64 ")", n, size);
			int rc = sdc_ftruncate(c, rfd, n);
			if (rc < 0)
				fail("ftruncate: %s", sdc_strerror(rc));
			if (ftruncate(lfd, (off_t)n) < 0)
				fail("local ftruncate");
		} else if (r < 67) {
			logop("fsync");
			int rc = sdc_fsync(c, rfd);
			if (rc < 0)
				fail("fsync: %s", sdc_strerror(rc));
		} else if (r < 70) {
			logop("flush");
			int rc = sdc_flush(c, rfd);
			if (rc < 0)
				fail("flush: %s", sdc_strerror(rc));
		} else if (r < 76) {
			int trunc = rnd_below(8) == 0;
			logop("close + reopen%s", trunc ? " O_TRUNC" : "");
			int rc = sdc_close(c, rfd);
			if (rc < 0)
				fail("close: %s", sdc_strerror(rc));
			/* the committed file, seen by a fresh stat */
			sdc_attr st;
			rc = sdc_stat(c, remote, &st);
			if (rc < 0 || st.size != size)
				fail("stat after close: %s, size %" PRIu64 " expected %" PRIu64,
				     sdc_strerror(rc), st.size, size);
			do_open(trunc);
		} else if (r < 82) {
			uint64_t no = rnd_below(maxlen / psize + 1);
			size_t len = 1 + (size_t)rnd_below(psize);
			for (size_t i = 0; i < len; i++)
				buf[i] = (char)(rnd() >> 56);
			logop("page_write %" PRIu64 " len=%zu (size %" PRIu64 ")", no, len, size);
			ssize_t k = sdc_page_write(c, rfd, no, buf, len);
			if (k != (ssize_t)len)
				fail("page_write: %s", k < 0 ? sdc_strerror((int)k) : "short");
			if (pwrite(lfd, buf, len, (off_t)(no * psize)) != (ssize_t)len)
				fail("local pwrite");
		} else if (r < 90) {
			uint64_t no = rnd_below(size / psize + 2);
			logop("page_read %" PRIu64 " (size %" PRIu64 ")", no, size);
			ssize_t k = sdc_page_read(c, rfd, no, buf);
			ssize_t lk = pread(lfd, lbuf, psize, (off_t)(no * psize));
			if (k != lk)
				fail("page_read returned %zd, local %zd", k, lk);
			if (k > 0 && memcmp(buf, lbuf, (size_t)k) != 0)
				fail("page_read content differs");
		} else if (r < 93) {
			logop("drop clean pages");
			sdc_cache_drop_clean(c);
		} else {
			logop("pwrite far (sparse) + read back");
			uint64_t off = maxlen - 1 - rnd_below(psize);
			char b1 = (char)(rnd() >> 56);
			if (sdc_pwrite(c, rfd, &b1, 1, off) != 1 || pwrite(lfd, &b1, 1, (off_t)off) != 1)
				fail("sparse pwrite");
		}
		compare_all("after the operation");
	}
	int rc = sdc_close(c, rfd);
	if (rc < 0)
		fail("last close: %s", sdc_strerror(rc));
	/* a second client, no cache in common: the server's bytes */
	sdc_client *c2 = sdc_client_new(&o, &err);
	sdc_client *keep = c;
	c = c2;
	rfd = sdc_open(c, remote, O_RDONLY, 0, 0);
	if (rfd < 0)
		fail("reopen in a new client: %s", sdc_strerror(rfd));
	compare_all("a new client after the last close");
	sdc_close(c, rfd);
	sdc_client_free(c2);
	sdc_cache_stats st;
	sdc_cache_stats_get(keep, &st);
	printf("fsx: cache hits %" PRIu64 ", misses %" PRIu64 ", evictions %" PRIu64
	       ", pages written back %" PRIu64 ", requests %" PRIu64 "\n",
	       st.hits, st.misses, st.evictions, st.writebacks, st.requests);
	sdc_client_free(keep);
	printf("fsx: %ld operations, seed %" PRIu64 ": ok\n", ops, seed);
	free(buf);
	free(lbuf);
	return 0;
}
