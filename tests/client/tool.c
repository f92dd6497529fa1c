/*
 * tool.c - small scenarios on libstoraged for the integration tests
 * (tests/integration/test_client.py). Each prints what it saw and exits 0
 * when it went as expected, 1 otherwise.
 *
 *   client-tool URL USER PASSWORD hibernate DUMP PATH EXPECT
 *       open PATH, write over several pages with a 4-page cache (some pages
 *       get written back, some stay dirty), hibernate into DUMP; EXPECT gets
 *       the content the file should have once the work is finished.
 *   client-tool URL USER PASSWORD restore DUMP PATH EXPECT
 *       restore DUMP; if a conflict is listed, print it and exit 3 (nothing
 *       written); else finish the work (one more write), close, and write
 *       the final expected content into EXPECT.
 *   client-tool URL USER PASSWORD modes PATH
 *       open-mode conflicts between two clients (two client objects, two
 *       HTTP sessions): exclusive vs anything, shared-read vs a writer.
 *   client-tool URL USER PASSWORD names DIR
 *       what a FUSE mount needs of the library, in DIR: a create seen by
 *       sdc_stat before its commit, utimens/chmod of a file with unsaved
 *       writes kept by its commit, unlink of an open file (reads go on,
 *       nothing committed), rename of an open file (its writes follow),
 *       rmdir (ENOTEMPTY, ENOTDIR, then gone), readdir_page paging, 200
 *       files open at once, and conditional commits between two clients
 *       (the second commit a conflict, the first version kept). Prints
 *       "ok: ..." per check, "FAIL: ..." otherwise.
 *   client-tool URL USER PASSWORD dirty PATH
 *       write 10 pages with a 4-page cache (write-back to the server handle,
 *       dirty pages left), print READY, wait for a line on stdin, then fsync
 *       and print "fsync: <code> <words>"; then close and print the same.
 *   client-tool URL USER PASSWORD keepalive PATH SECONDS EVERY_MS EXPECT
 *       write 10 pages of a new file with a 4-page cache (most of it written
 *       back to the server handle, not committed), then stay idle for
 *       SECONDS, calling sdc_keepalive every EVERY_MS ms (0: never), then
 *       close; prints "touched N" and "close: <code> <words>"; EXPECT gets
 *       the content written. Exits 0 when the close succeeded.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "storaged-client.h"

#define PS 4096

static sdc_options opts(sdc_server_opts *so, const char *url, const char *user, const char *pw)
{
	*so = (sdc_server_opts){.name = "srv", .url = url, .user = user, .password = pw};
	return (sdc_options){.servers = so, .nservers = 1, .page_size = PS, .npages = 4,
			     .timeout_ms = 5000};
}

static void fill(char *b, size_t n, int seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (char)('a' + (i * 7 + (size_t)seed) % 26);
}

static int save(const char *file, const char *p, size_t n)
{
	FILE *f = fopen(file, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0)
		return -1;
	return 0;
}

static void print_conflict(void *arg, const sdc_conflict *k)
{
	(void)arg;
	printf("conflict fd=%d where=%s reason=%d base=%s current=%s dirty=%llu\n", k->fd, k->where,
	       k->reason, k->base, k->current, (unsigned long long)k->dirty_bytes);
}

static void print_open(void *arg, int fd, const char *where, int flags)
{
	(void)arg;
	printf("open fd=%d where=%s flags=%d\n", fd, where, flags);
}

static int nfail;
#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (cond) {                                                                        \
			printf("ok: ");                                                            \
		} else {                                                                           \
			printf("FAIL: ");                                                          \
			nfail++;                                                                   \
		}                                                                                  \
		printf(__VA_ARGS__);                                                               \
		printf(" [%s]\n", sdc_errmsg());                                                   \
	} while (0)

static int count_cb(void *arg, const sdc_dirent *e)
{
	(void)e;
	(*(int *)arg)++;
	return 0;
}

static int names(sdc_options *o, const char *dir)
{
	int err;
	o->conditional_commit = 1;
	o->npages = 64;
	sdc_client *c = sdc_client_new(o, &err), *c2 = sdc_client_new(o, &err);
	char p[4300], q[4300];
	sdc_attr st;
	snprintf(p, sizeof p, "srv:%s", dir);
	CHECK(sdc_mkdir(c, p, 0755, 1) == 0, "mkdir -p %s", dir);
	/* a create, seen before its commit */
	snprintf(p, sizeof p, "srv:%s/new.txt", dir);
	int fd = sdc_open(c, p, O_WRONLY | O_CREAT | O_EXCL, 0, 0640);
	CHECK(fd >= 0 && sdc_pwrite(c, fd, "hello", 5, 0) == 5, "create and write");
	CHECK(sdc_stat(c, p, &st) == 0 && st.size == 5 && st.mode == 0640, "stat of a pending create");
	CHECK(sdc_stat(c2, p, &st) == -ENOENT, "another client does not see it yet");
	CHECK(sdc_utimens(c, p, 1500000000) == 0 && sdc_chmod(c, p, 0600) == 0, "utimens, chmod");
	CHECK(sdc_close(c, fd) == 0, "close");
	CHECK(sdc_stat(c2, p, &st) == 0 && st.mtime == 1500000000 && st.mode == 0600 && st.size == 5,
	      "kept by the commit: mtime %lld mode %o size %llu", (long long)st.mtime, st.mode,
	      (unsigned long long)st.size);
	/* unlink of an open file */
	fd = sdc_open(c, p, O_RDWR, 0, 0);
	CHECK(sdc_unlink(c, p, 0) == 0, "unlink while open");
	char b[64] = {0};
	CHECK(sdc_pread(c, fd, b, sizeof b, 0) == 5 && memcmp(b, "hello", 5) == 0, "reads go on");
	CHECK(sdc_pwrite(c, fd, "XX", 2, 0) == 2 && sdc_close(c, fd) == 0, "write, close");
	CHECK(sdc_stat(c2, p, &st) == -ENOENT, "not brought back by the close");
	/* rename of an open file */
	snprintf(q, sizeof q, "srv:%s/moved.txt", dir);
	fd = sdc_open(c, p, O_RDWR | O_CREAT, 0, 0644);
	CHECK(sdc_pwrite(c, fd, "before ", 7, 0) == 7, "write");
	CHECK(sdc_rename(c, p, q) == 0, "rename while open (and never committed)");
	CHECK(sdc_pwrite(c, fd, "after", 5, 7) == 5 && sdc_close(c, fd) == 0, "write on, close");
	memset(b, 0, sizeof b);
	int fd2 = sdc_open(c2, q, O_RDONLY, 0, 0);
	CHECK(fd2 >= 0 && sdc_pread(c2, fd2, b, sizeof b, 0) == 12 && strcmp(b, "before after") == 0,
	      "the new name has every write: '%s'", b);
	sdc_close(c2, fd2);
	CHECK(sdc_stat(c2, p, &st) == -ENOENT, "the old name is gone");
	/* rmdir */
	snprintf(p, sizeof p, "srv:%s/sub", dir);
	sdc_mkdir(c, p, 0755, 0);
	snprintf(q, sizeof q, "srv:%s/sub/f", dir);
	fd = sdc_open(c, q, O_WRONLY | O_CREAT, 0, 0644);
	sdc_close(c, fd);
	CHECK(sdc_rmdir(c, p) == -ENOTEMPTY, "rmdir of a full directory: ENOTEMPTY");
	CHECK(sdc_rmdir(c, q) == -ENOTDIR, "rmdir of a file: ENOTDIR");
	CHECK(sdc_stat(c, q, &st) == 0, "and the file stays");
	sdc_unlink(c, q, 0);
	CHECK(sdc_rmdir(c, p) == 0 && sdc_stat(c, p, &st) == -ENOENT, "rmdir of the empty one");
	/* 200 files open at once (the server allows 256 per user), readdir in pages of 100 */
	static int fds[200];
	for (int i = 0; i < 200; i++) {
		snprintf(p, sizeof p, "srv:%s/many/f%03d", dir, i);
		if (i == 0) {
			snprintf(q, sizeof q, "srv:%s/many", dir);
			sdc_mkdir(c, q, 0755, 0);
		}
		fds[i] = sdc_open(c, p, O_RDWR | O_CREAT, 0, 0644);
		sdc_pwrite(c, fds[i], &i, sizeof i, 0);
	}
	int bad = 0;
	for (int i = 0; i < 200; i++) {
		int v = -1;
		if (sdc_pread(c, fds[i], &v, sizeof v, 0) != sizeof v || v != i)
			bad++;
		if (sdc_close(c, fds[i]) < 0)
			bad++;
	}
	CHECK(bad == 0, "200 files open at once: each its own bytes");
	char next[256] = "";
	int total = 0, pages = 0, n;
	snprintf(q, sizeof q, "srv:%s/many", dir);
	do {
		char after[256];
		snprintf(after, sizeof after, "%s", next);
		n = sdc_readdir_page(c, q, after, 100, count_cb, &total, next, sizeof next);
		pages++;
	} while (n > 0 && next[0]);
	CHECK(total == 200 && pages == 2, "readdir_page: %d entries in %d pages", total, pages);
	/* conditional commits: c2 writes on the version it opened; c commits first */
	snprintf(p, sizeof p, "srv:%s/shared.txt", dir);
	fd = sdc_open(c, p, O_RDWR | O_CREAT, 0, 0644);
	sdc_pwrite(c, fd, "v1", 2, 0);
	sdc_close(c, fd);
	fd = sdc_open(c, p, O_RDWR, 0, 0);
	fd2 = sdc_open(c2, p, O_RDWR, 0, 0);
	sdc_pwrite(c, fd, "c1", 2, 0);
	sdc_pwrite(c2, fd2, "c2", 2, 0);
	CHECK(sdc_close(c, fd) == 0, "the first close commits");
	int rc = sdc_close(c2, fd2);
	CHECK(rc == -SDC_ECONFLICT, "the second, on the old version: SDC_ECONFLICT (%d)", rc);
	memset(b, 0, sizeof b);
	fd = sdc_open(c2, p, O_RDONLY, 0, 0);
	CHECK(sdc_pread(c2, fd, b, 2, 0) == 2 && strcmp(b, "c1") == 0,
	      "the first client's version is kept: '%s'", b);
	sdc_close(c2, fd);
	/* keep-alive of an open file with nothing to touch yet: 0 touched */
	CHECK(sdc_keepalive(c) == 0, "keepalive with no open file");
	sdc_client_free(c);
	sdc_client_free(c2);
	printf("names: %d failed\n", nfail);
	return nfail ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc < 6) {
		fprintf(stderr, "usage: see tests/client/tool.c\n");
		return 2;
	}
	sdc_server_opts so;
	sdc_options o = opts(&so, argv[1], argv[2], argv[3]);
	const char *mode = argv[4];
	int err;
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (strcmp(mode, "names") == 0)
		return names(&o, argv[5]);
	if (strcmp(mode, "hibernate") == 0 && argc == 8) {
		char where[4200];
		snprintf(where, sizeof where, "srv:%s", argv[6]);
		sdc_client *c = sdc_client_new(&o, &err);
		int fd = sdc_open(c, where, O_RDWR | O_CREAT, SDC_SHARE_EXCLUSIVE, 0644);
		if (fd < 0) {
			printf("open: %s\n", sdc_strerror(fd));
			return 1;
		}
		/* the file as it is on the server, then 8 pages written over it */
		sdc_attr st;
		sdc_fstat(c, fd, &st);
		size_t n = 10 * PS;
		char *b = calloc(1, n);
		sdc_pread(c, fd, b, n, 0);
		size_t size = st.size;
		for (int pg = 0; pg < 8; pg++) {
			char w[PS];
			fill(w, PS, pg + 100);
			if (sdc_pwrite(c, fd, w, PS - 10, (uint64_t)pg * PS + 5) != PS - 10) {
				printf("pwrite: %s\n", sdc_errmsg());
				return 1;
			}
			memcpy(b + pg * PS + 5, w, PS - 10);
			if ((size_t)pg * PS + PS - 5 > size)
				size = (size_t)pg * PS + PS - 5;
		}
		sdc_cache_stats cs;
		sdc_cache_stats_get(c, &cs);
		printf("before hibernate: %zu pages, %zu dirty, %llu written back\n", cs.pages_used,
		       cs.pages_dirty, (unsigned long long)cs.writebacks);
		int rc = sdc_hibernate(c, argv[5]);
		printf("hibernate: %d %s\n", rc, rc ? sdc_strerror(rc) : "ok");
		if (rc < 0)
			return 1;
		return save(argv[7], b, size) == 0 ? 0 : 1;
	}
	if (strcmp(mode, "restore") == 0 && argc == 8) {
		sdc_client *c = sdc_client_restore(&o, argv[5], &err);
		if (!c) {
			printf("restore: %s\n", sdc_strerror(err));
			return 1;
		}
		sdc_open_files(c, print_open, NULL);
		int nk = sdc_conflicts(c, print_conflict, NULL);
		if (nk > 0) {
			/* nothing may be written: close answers the conflict */
			for (int fd = 0; fd < 4; fd++) {
				int rc = sdc_close(c, fd);
				if (rc != -EBADF)
					printf("close fd=%d: %d %s\n", fd, rc, sdc_strerror(rc));
			}
			sdc_client_free(c);
			return 3;
		}
		/* the descriptor of the file: the only one */
		int fd = 0;
		sdc_attr st;
		if (sdc_fstat(c, fd, &st) < 0) {
			printf("no descriptor 0 after restore\n");
			return 1;
		}
		size_t size = st.size;
		char *b = calloc(1, size + PS);
		if (sdc_pread(c, fd, b, size, 0) != (ssize_t)size) {
			printf("pread after restore: %s\n", sdc_errmsg());
			return 1;
		}
		/* finish the work: one more write */
		char w[100];
		fill(w, sizeof w, 7);
		sdc_pwrite(c, fd, w, sizeof w, 3 * PS + 50);
		memcpy(b + 3 * PS + 50, w, sizeof w);
		if (3 * PS + 150 > size)
			size = 3 * PS + 150;
		int rc = sdc_close(c, fd);
		printf("close after restore: %d %s\n", rc, rc ? sdc_strerror(rc) : "ok");
		sdc_client_free(c);
		if (rc < 0)
			return 1;
		return save(argv[7], b, size) == 0 ? 0 : 1;
	}
	if (strcmp(mode, "modes") == 0) {
		const char *w = argv[5];
		sdc_client *a = sdc_client_new(&o, &err), *b = sdc_client_new(&o, &err);
		int bad = 0;
#define EXPECT(cond, what)                                                                         \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			printf("FAIL: %s\n", what);                                                \
			bad = 1;                                                                   \
		} else                                                                             \
			printf("ok: %s\n", what);                                                  \
	} while (0)
		int fa = sdc_open(a, w, O_RDWR | O_CREAT, SDC_SHARE_WRITE, 0644);
		EXPECT(fa >= 0 && sdc_close(a, fa) == 0, "client A creates the file");
		fa = sdc_open(a, w, O_RDWR, SDC_SHARE_EXCLUSIVE, 0644);
		EXPECT(fa >= 0, "client A opens exclusive");
		int fb = sdc_open(b, w, O_RDONLY, SDC_SHARE_WRITE, 0);
		EXPECT(fb == -EBUSY, "client B cannot open for reading while A holds it exclusively");
		printf("  (B got %d: %s; server: %s)\n", fb, sdc_strerror(fb), sdc_errmsg());
		fb = sdc_open(b, w, O_RDWR, SDC_SHARE_EXCLUSIVE, 0);
		EXPECT(fb == -EBUSY, "client B cannot open exclusive either");
		int fa2 = sdc_open(a, w, O_RDONLY, SDC_SHARE_WRITE, 0);
		EXPECT(fa2 == -EBUSY, "A's own second open conflicts with its exclusive open");
		EXPECT(sdc_pwrite(a, fa, "hello", 5, 0) == 5 && sdc_close(a, fa) == 0,
		       "A writes and closes");
		fa = sdc_open(a, w, O_RDONLY, SDC_SHARE_READ, 0);
		EXPECT(fa >= 0, "A opens shared-read");
		fb = sdc_open(b, w, O_RDONLY, SDC_SHARE_WRITE, 0);
		EXPECT(fb >= 0, "B may read alongside a shared-read open");
		int fw = sdc_open(b, w, O_RDWR, SDC_SHARE_WRITE, 0);
		EXPECT(fw == -EBUSY, "B cannot write while A holds it shared-read");
		EXPECT(sdc_open(a, w, O_RDWR, SDC_SHARE_WRITE, 0) == -EINVAL ||
			   sdc_open(a, w, O_RDWR, SDC_SHARE_WRITE, 0) == -EBUSY,
		       "A cannot write through its shared-read open");
		sdc_close(b, fb);
		sdc_close(a, fa);
		fa = sdc_open(a, w, O_RDWR, SDC_SHARE_WRITE, 0);
		fb = sdc_open(b, w, O_RDWR, SDC_SHARE_WRITE, 0);
		EXPECT(fa >= 0 && fb >= 0, "two shared-write opens coexist");
		EXPECT(sdc_open(b, w, O_RDONLY, SDC_SHARE_READ, 0) == -EBUSY,
		       "shared-read refused while writers are open");
		char buf[8] = {0};
		EXPECT(sdc_pread(b, fb, buf, 5, 0) == 5 && memcmp(buf, "hello", 5) == 0,
		       "B reads what A committed");
		sdc_close(a, fa);
		sdc_close(b, fb);
		sdc_client_free(a);
		sdc_client_free(b);
		return bad;
	}
	if (strcmp(mode, "dirty") == 0) {
		char where[4200];
		snprintf(where, sizeof where, "srv:%s", argv[5]);
		sdc_client *c = sdc_client_new(&o, &err);
		int fd = sdc_open(c, where, O_RDWR, SDC_SHARE_EXCLUSIVE, 0);
		if (fd < 0) {
			printf("open: %s\n", sdc_strerror(fd));
			return 1;
		}
		char w[PS];
		for (int pg = 0; pg < 10; pg++) {
			fill(w, PS, pg);
			if (sdc_pwrite(c, fd, w, PS, (uint64_t)pg * PS) != PS) {
				printf("pwrite: %s\n", sdc_errmsg());
				return 1;
			}
		}
		sdc_cache_stats cs;
		sdc_cache_stats_get(c, &cs);
		printf("READY dirty=%zu writebacks=%llu\n", cs.pages_dirty,
		       (unsigned long long)cs.writebacks);
		char line[64];
		if (!fgets(line, sizeof line, stdin))
			return 1;
		int rc = sdc_fsync(c, fd);
		printf("fsync: %d %s\n", rc, rc ? sdc_strerror(rc) : "ok");
		int rc2 = sdc_close(c, fd);
		printf("close: %d %s\n", rc2, rc2 ? sdc_strerror(rc2) : "ok");
		sdc_client_free(c);
		return rc < 0 ? 0 : 1;
	}
	if (strcmp(mode, "keepalive") == 0 && argc == 9) {
		char where[4200];
		snprintf(where, sizeof where, "srv:%s", argv[5]);
		double secs = atof(argv[6]);
		long every_ms = atol(argv[7]);
		sdc_client *c = sdc_client_new(&o, &err);
		if (!c) {
			printf("client: %s\n", sdc_strerror(err));
			return 1;
		}
		int fd = sdc_open(c, where, O_RDWR | O_CREAT | O_TRUNC, SDC_SHARE_WRITE, 0644);
		if (fd < 0) {
			printf("open: %s\n", sdc_strerror(fd));
			return 1;
		}
		char *b = malloc(10 * PS);
		for (int pg = 0; pg < 10; pg++) {
			fill(b + pg * PS, PS, pg + 40);
			if (sdc_pwrite(c, fd, b + pg * PS, PS, (uint64_t)pg * PS) != PS) {
				printf("pwrite: %s\n", sdc_errmsg());
				return 1;
			}
		}
		sdc_cache_stats cs;
		sdc_cache_stats_get(c, &cs);
		printf("written back %llu, dirty %zu\n", (unsigned long long)cs.writebacks,
		       cs.pages_dirty);
		int touched = 0;
		struct timespec t0, t;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (;;) {
			clock_gettime(CLOCK_MONOTONIC, &t);
			double el = (double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9;
			if (el >= secs)
				break;
			long ms = every_ms > 0 ? every_ms : 100;
			struct timespec nap = {ms / 1000, (ms % 1000) * 1000000L};
			nanosleep(&nap, NULL);
			if (every_ms > 0)
				touched += sdc_keepalive(c);
		}
		printf("touched %d\n", touched);
		int rc = sdc_close(c, fd);
		printf("close: %d %s\n", rc, rc ? sdc_strerror(rc) : "ok");
		sdc_client_free(c);
		if (save(argv[8], b, 10 * PS) != 0)
			return 1;
		free(b);
		return rc == 0 ? 0 : 1;
	}
	fprintf(stderr, "client-tool: unknown scenario %s\n", mode);
	return 2;
}
