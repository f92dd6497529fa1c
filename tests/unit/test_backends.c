/*
 * test_backends.c - the blob store contract (core/store.h), one shared
 * suite run against every back end:
 *
 *   local      the sharded directory (store/local.c);
 *   wrapped    an in-memory store behind the remote wrapper
 *              (store/remote.c: stripe locks, read cache, read-ahead), with
 *              a failure switch on every call of the inner store;
 *   env        when SD_CONTRACT_CONF names a config file: the store its
 *              blob_store selects (s3, rados), opened as the daemon opens
 *              it (make test-backends, against a real Ceph cluster). With
 *              SD_CONTRACT_BREAK and SD_CONTRACT_MEND (shell commands that
 *              stop and restart the service), its failure test runs too.
 *
 * The contract: place/put of a content, stat, readers at any offset (short
 * only at the end), the already-stored answer, walk listing every address,
 * remove, -ENOENT for "not stored" and for nothing else: while the service
 * fails, no call answers -ENOENT and none pretends to succeed.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "testutil.h"
#include "memstore.h"
#include "core/conf.h"
#include "core/core.h"
#include "core/internal.h"
#include "util/sys.h"

enum { K_LOCAL, K_WRAPPED, K_ENV, K_N };
static const char *kind_name[K_N] = {"local", "wrapped", "env"};

/* ---------------------------------------------------------- a failing store */

/* An in-memory store whose every call fails with -EIO while fail_on is
 * set: the outage of a remote service, for the wrapper above it. */
static atomic_int fail_on;

typedef struct flaky {
	sd_store base;
	memstore *ms;
} flaky;

typedef struct flakyrd {
	sd_blobrd *in;
} flakyrd;

static sd_store *fl_in(sd_store *s)
{
	return &((flaky *)s)->ms->base;
}

static int fl_place(sd_store *s, int fd, const char *tmppath, const char *hex, uint64_t size)
{
	return fail_on ? -EIO : ms_place(fl_in(s), fd, tmppath, hex, size);
}

static int fl_put(sd_store *s, const void *buf, size_t len, const char *hex)
{
	return fail_on ? -EIO : ms_put(fl_in(s), buf, len, hex);
}

static int fl_stat(sd_store *s, const char *hex, uint64_t *size)
{
	return fail_on ? -EIO : ms_stat(fl_in(s), hex, size);
}

static int fl_open(sd_store *s, const char *hex, sd_blobrd **out)
{
	if (fail_on)
		return -EIO;
	sd_blobrd *in;
	int r = ms_open(fl_in(s), hex, &in);
	if (r < 0)
		return r;
	flakyrd *f = calloc(1, sizeof *f);
	f->in = in;
	*out = (sd_blobrd *)f;
	return 0;
}

static ssize_t fl_pread(sd_blobrd *b, void *buf, size_t len, uint64_t off)
{
	return fail_on ? -EIO : ms_pread(((flakyrd *)b)->in, buf, len, off);
}

static int fl_fd(sd_blobrd *b, int *fd, uint64_t *base)
{
	(void)b, (void)fd, (void)base;
	return -ENOTSUP;
}

static void fl_close(sd_blobrd *b)
{
	ms_close(((flakyrd *)b)->in);
	free(b);
}

static int fl_remove(sd_store *s, const char *hex)
{
	return fail_on ? -EIO : ms_remove(fl_in(s), hex);
}

static int fl_discard(sd_store *s, const char *name)
{
	return fail_on ? -EIO : ms_discard(fl_in(s), name);
}

static int fl_walk(sd_store *s, sd_store_walk_cb cb, void *arg)
{
	return fail_on ? -EIO : ms_walk(fl_in(s), cb, arg);
}

/* What the service recorded when the content was stored: its address
 * (as S3 metadata or a RADOS xattr would), or a wrong one when lie_on. */
static atomic_int lie_on;

static int fl_info(sd_store *s, const char *hex, uint64_t *size, char sha[65])
{
	if (fail_on)
		return -EIO;
	int r = ms_stat(fl_in(s), hex, size);
	if (r == 0)
		snprintf(sha, 65, "%s", lie_on ? "00000000000000000000000000000000"
						 "00000000000000000000000000000000"
					       : hex);
	return r;
}

static void fl_destroy(sd_store *s)
{
	ms_destroy(fl_in(s));
	free(s);
}

static const sd_store_ops flaky_ops = {
	.name = "flaky",
	.place = fl_place,
	.put = fl_put,
	.stat = fl_stat,
	.open = fl_open,
	.pread = fl_pread,
	.fd = fl_fd,
	.close = fl_close,
	.remove = fl_remove,
	.discard = fl_discard,
	.walk = fl_walk,
	.destroy = fl_destroy,
	.info = fl_info,
	.flags = SD_STORE_REMOTE,
};

/* The flaky in-memory store behind the remote wrapper, with its blob_dir,
 * cache and tmp under dir. */
static sd_store *wrapped_store(const char *dir, const char *tmp, memstore **ms, char *err,
			       size_t errlen)
{
	flaky *fl = calloc(1, sizeof *fl);
	fl->base.ops = &flaky_ops;
	fl->ms = memstore_new();
	if (ms)
		*ms = fl->ms;
	char *bd = sd_xasprintf("%s/blobs", dir), *cd = sd_xasprintf("%s/cache", dir);
	sd_remote_opts o = {.blob_dir = bd, .cache_dir = cd, .cache_size = 8 << 20,
			    .tmp_dir = tmp, .fill = 1, .durable = 1};
	sd_store *s = sd_store_remote_wrap(&fl->base, &o, NULL, NULL, err, errlen);
	free(cd);
	free(bd);
	return s;
}

/* ---------------------------------------------------------- fixtures */

typedef struct fx {
	int kind;
	char *dir;  /* temp dir: tmp/ for temp files, blobs/, cache/ */
	char *tmp;
	sd_store *s;
	sd_conf conf;
	int have_conf;
} fx;

static void fx_open(fx *f, int kind)
{
	memset(f, 0, sizeof *f);
	if (!getenv("SD_TEST_VERBOSE"))
		sd_log_set_level(SD_LOG_ERROR);
	f->kind = kind;
	f->dir = tu_tempdir();
	f->tmp = sd_xasprintf("%s/tmp", f->dir);
	ck_assert_int_eq(mkdir(f->tmp, 0700), 0);
	char err[512] = "";
	char *bd = sd_xasprintf("%s/blobs", f->dir);
	if (kind == K_LOCAL) {
		f->s = sd_store_local_open(bd, 1, err, sizeof err);
	} else if (kind == K_WRAPPED) {
		f->s = wrapped_store(f->dir, f->tmp, NULL, err, sizeof err);
	} else {
		const char *path = getenv("SD_CONTRACT_CONF");
		ck_assert_msg(sd_conf_load(path, &f->conf, err, sizeof err) == 0, "%s: %s", path, err);
		f->have_conf = 1;
		/* the store's own dirs in this test's temp dir, not data_dir */
		free(f->conf.cache_dir);
		f->conf.cache_dir = sd_xasprintf("%s/cache", f->dir);
		f->s = sd_core_store_open(&f->conf, f->conf.blob_store, f->dir, f->tmp, 1, err,
					  sizeof err);
	}
	free(bd);
	ck_assert_msg(f->s != NULL, "%s: %s", kind_name[kind], err);
	fail_on = 0;
}

static void fx_close(fx *f)
{
	fail_on = 0;
	f->s->ops->destroy(f->s);
	if (f->have_conf)
		sd_conf_free(&f->conf);
	tu_rmrf(f->dir);
	free(f->dir);
	free(f->tmp);
}

/* Content unique to this run (so a shared bucket or pool from an earlier
 * run never answers "already stored"), and its address. */
static char *content(size_t len, char hex[65])
{
	static atomic_uint seq;
	unsigned char seed[16];
	sd_random_bytes(seed, sizeof seed);
	unsigned n = atomic_fetch_add(&seq, 1);
	char *p = malloc(len ? len : 1);
	uint32_t x = (uint32_t)seed[0] | (uint32_t)seed[1] << 8 | (uint32_t)seed[2] << 16 |
		     (uint32_t)seed[3] << 24;
	x ^= n * 2654435761u;
	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		p[i] = (char)(x >> 16);
	}
	if (len >= sizeof seed)
		memcpy(p, seed, sizeof seed);
	tu_sha_hex(p, len, hex);
	return p;
}

/* A finished temp file holding data, for place(). */
static int temp_file(fx *f, const void *data, size_t len, char **path)
{
	*path = sd_xasprintf("%s/up.XXXXXX", f->tmp);
	int fd = mkstemp(*path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(sd_sys_pwrite(fd, data, len, 0), 0);
	ck_assert_int_eq(fsync(fd), 0);
	return fd;
}

static void place(fx *f, const void *data, size_t len, const char *hex, int want)
{
	char *tp;
	int fd = temp_file(f, data, len, &tp);
	int tok = f->s->ops->lock(f->s, hex);
	ck_assert_int_ge(tok, 0);
	int r = f->s->ops->place(f->s, fd, tp, hex, len);
	f->s->ops->unlock(f->s, tok);
	ck_assert_msg(r == want, "place: %d, wanted %d", r, want);
	/* consumed when placed, untouched when already stored */
	ck_assert_int_eq(access(tp, F_OK) == 0, r == 1);
	close(fd);
	unlink(tp);
	free(tp);
}

static int rm(fx *f, const char *hex)
{
	int tok = f->s->ops->lock(f->s, hex);
	ck_assert_int_ge(tok, 0);
	int r = f->s->ops->remove(f->s, hex);
	f->s->ops->unlock(f->s, tok);
	return r;
}

/* Read all of hex through one reader at the given offsets and check every
 * byte against data; reads past the end give 0, across it a short read. */
static void check_reads(fx *f, const char *hex, const char *data, size_t len)
{
	sd_blobrd *r;
	ck_assert_int_eq(f->s->ops->open(f->s, hex, &r), 0);
	size_t offs[] = {0, 1, len / 3, len / 2, len > 4096 ? len - 4096 : 0, len ? len - 1 : 0};
	char *buf = malloc(len + 100);
	for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
		size_t off = offs[i] < len ? offs[i] : 0;
		size_t want = len - off < 70000 ? len - off : 70000;
		ssize_t n = f->s->ops->pread(r, buf, want, off);
		ck_assert_msg(n == (ssize_t)want, "pread(%zu, %zu) = %zd", want, off, n);
		ck_assert(memcmp(buf, data + off, want) == 0);
	}
	/* across the end: short; at and past it: 0 */
	if (len >= 10) {
		ssize_t n = f->s->ops->pread(r, buf, 100, len - 10);
		ck_assert_int_eq(n, 10);
		ck_assert(memcmp(buf, data + len - 10, 10) == 0);
	}
	ck_assert_int_eq(f->s->ops->pread(r, buf, 100, len), 0);
	ck_assert_int_eq(f->s->ops->pread(r, buf, 100, len + 12345), 0);
	/* the whole content, in pieces, in order */
	size_t at = 0;
	while (at < len) {
		ssize_t n = f->s->ops->pread(r, buf, len - at < 1000003 ? len - at : 1000003, at);
		ck_assert_int_gt(n, 0);
		ck_assert(memcmp(buf, data + at, (size_t)n) == 0);
		at += (size_t)n;
	}
	free(buf);
	f->s->ops->close(r);
}

/* ---------------------------------------------------------- the contract */

START_TEST(test_place_read_remove)
{
	fx f;
	fx_open(&f, _i);
	/* across the S3 part size of the test config (5M) and the wrapper's
	 * fill chunk (8M) */
	size_t sizes[] = {1, 4096, 1000003, 12 * 1048576 + 5};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		char hex[65];
		char *data = content(sizes[i], hex);
		uint64_t sz = 0;
		ck_assert_int_eq(f.s->ops->stat(f.s, hex, &sz), -ENOENT);
		place(&f, data, sizes[i], hex, 0);
		ck_assert_int_eq(f.s->ops->stat(f.s, hex, &sz), 0);
		ck_assert_uint_eq(sz, sizes[i]);
		check_reads(&f, hex, data, sizes[i]);
		check_reads(&f, hex, data, sizes[i]); /* again: a cache hit where there is one */
		place(&f, data, sizes[i], hex, 1);      /* already stored */
		if (f.s->ops->info) {
			char sha[65] = "";
			int r = f.s->ops->info(f.s, hex, &sz, sha);
			if (r != -ENOTSUP) {
				ck_assert_int_eq(r, 0);
				ck_assert_uint_eq(sz, sizes[i]);
				ck_assert_str_eq(sha, hex);
			}
		}
		ck_assert_int_eq(rm(&f, hex), 0);
		ck_assert_int_eq(f.s->ops->stat(f.s, hex, &sz), -ENOENT);
		sd_blobrd *r;
		ck_assert_int_eq(f.s->ops->open(f.s, hex, &r), -ENOENT);
		ck_assert_int_eq(rm(&f, hex), -ENOENT);
		free(data);
	}
	fx_close(&f);
}
END_TEST

START_TEST(test_put_buffer)
{
	fx f;
	fx_open(&f, _i);
	char hex[65];
	char *data = content(70001, hex);
	int tok = f.s->ops->lock(f.s, hex);
	ck_assert_int_ge(tok, 0);
	ck_assert_int_eq(f.s->ops->put(f.s, data, 70001, hex), 0);
	ck_assert_int_eq(f.s->ops->put(f.s, data, 70001, hex), 1);
	f.s->ops->unlock(f.s, tok);
	check_reads(&f, hex, data, 70001);
	ck_assert_int_eq(rm(&f, hex), 0);
	free(data);
	fx_close(&f);
}
END_TEST

START_TEST(test_missing)
{
	fx f;
	fx_open(&f, _i);
	char hex[65];
	char *data = content(100, hex);
	uint64_t sz;
	sd_blobrd *r;
	ck_assert_int_eq(f.s->ops->stat(f.s, hex, &sz), -ENOENT);
	ck_assert_int_eq(f.s->ops->open(f.s, hex, &r), -ENOENT);
	ck_assert_int_eq(rm(&f, hex), -ENOENT);
	if (f.s->ops->info) {
		char sha[65];
		int rc = f.s->ops->info(f.s, hex, &sz, sha);
		ck_assert(rc == -ENOENT || rc == -ENOTSUP);
	}
	free(data);
	fx_close(&f);
}
END_TEST

typedef struct seen {
	char want[3][65];
	int found[3];
	int strays;
} seen;

static int on_obj(void *arg, const char *hex, const char *name)
{
	seen *s = arg;
	ck_assert_ptr_nonnull(name);
	if (!hex) {
		s->strays++;
		return 0;
	}
	ck_assert(sd_is_sha256_hex(hex));
	for (int i = 0; i < 3; i++)
		if (strcmp(hex, s->want[i]) == 0)
			s->found[i]++;
	return 0;
}

START_TEST(test_walk)
{
	fx f;
	fx_open(&f, _i);
	seen s = {0};
	char *data[3];
	for (int i = 0; i < 3; i++) {
		data[i] = content(5000 + (size_t)i, s.want[i]);
		place(&f, data[i], 5000 + (size_t)i, s.want[i], 0);
	}
	ck_assert_int_eq(f.s->ops->walk(f.s, on_obj, &s), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(s.found[i], 1);
	ck_assert_int_eq(rm(&f, s.want[1]), 0);
	memset(s.found, 0, sizeof s.found);
	ck_assert_int_eq(f.s->ops->walk(f.s, on_obj, &s), 0);
	ck_assert_int_eq(s.found[0], 1);
	ck_assert_int_eq(s.found[1], 0);
	ck_assert_int_eq(s.found[2], 1);
	ck_assert_int_eq(rm(&f, s.want[0]), 0);
	ck_assert_int_eq(rm(&f, s.want[2]), 0);
	for (int i = 0; i < 3; i++)
		free(data[i]);
	fx_close(&f);
}
END_TEST

typedef struct par {
	fx *f;
	int n;
	int bad;
} par;

static void *par_main(void *arg)
{
	par *p = arg;
	for (int i = 0; i < 4; i++) {
		char hex[65];
		size_t len = 30000 + (size_t)(p->n * 7 + i);
		char *data = content(len, hex);
		char *tp;
		int fd = temp_file(p->f, data, len, &tp);
		int tok = p->f->s->ops->lock(p->f->s, hex);
		if (p->f->s->ops->place(p->f->s, fd, tp, hex, len) != 0)
			p->bad++;
		p->f->s->ops->unlock(p->f->s, tok);
		close(fd);
		unlink(tp);
		free(tp);
		sd_blobrd *r;
		char *back = malloc(len);
		if (p->f->s->ops->open(p->f->s, hex, &r) == 0) {
			if (p->f->s->ops->pread(r, back, len, 0) != (ssize_t)len || memcmp(back, data, len))
				p->bad++;
			p->f->s->ops->close(r);
		} else {
			p->bad++;
		}
		tok = p->f->s->ops->lock(p->f->s, hex);
		if (p->f->s->ops->remove(p->f->s, hex) != 0)
			p->bad++;
		p->f->s->ops->unlock(p->f->s, tok);
		free(back);
		free(data);
	}
	return NULL;
}

START_TEST(test_threads)
{
	fx f;
	fx_open(&f, _i);
	pthread_t th[6];
	par p[6];
	for (int i = 0; i < 6; i++) {
		p[i] = (par){&f, i, 0};
		ck_assert_int_eq(pthread_create(&th[i], NULL, par_main, &p[i]), 0);
	}
	for (int i = 0; i < 6; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(p[i].bad, 0);
	}
	fx_close(&f);
}
END_TEST

/* ---------------------------------------------------------- failures */

static void run_cmd(const char *what, const char *cmd)
{
	int r = system(cmd);
	ck_assert_msg(r == 0, "%s (%s) failed: %d", what, cmd, r);
}

static int count_cb(void *arg, const char *hex, const char *name)
{
	(void)hex, (void)name;
	(*(int *)arg)++;
	return 0;
}

/* While the service fails: every call fails, none with -ENOENT; a content
 * not yet read is not readable, one in the cache still is; afterwards
 * everything works again and nothing was lost. */
START_TEST(test_outage)
{
	fx f;
	fx_open(&f, _i);
	const char *brk = getenv("SD_CONTRACT_BREAK"), *mend = getenv("SD_CONTRACT_MEND");
	if (_i == K_ENV)
		ck_assert_msg(brk && mend, "SD_CONTRACT_BREAK and SD_CONTRACT_MEND must be set");
	char stored[65], cached[65], fresh[65];
	char *ds = content(200000, stored), *dc = content(3000, cached), *dn = content(4000, fresh);
	place(&f, ds, 200000, stored, 0);
	place(&f, dc, 3000, cached, 0);
	check_reads(&f, cached, dc, 3000); /* now in the cache */

	if (_i == K_ENV)
		run_cmd("SD_CONTRACT_BREAK", brk);
	else
		fail_on = 1;
	uint64_t sz;
	sd_blobrd *r;
	int rc = f.s->ops->stat(f.s, stored, &sz);
	ck_assert_msg(rc < 0 && rc != -ENOENT, "stat during outage: %d", rc);
	rc = f.s->ops->stat(f.s, fresh, &sz);
	ck_assert_msg(rc < 0 && rc != -ENOENT, "stat of a missing one during outage: %d", rc);
	rc = f.s->ops->open(f.s, stored, &r);
	if (rc == 0) { /* a reader may open; its reads must fail */
		char b[100];
		ssize_t n = f.s->ops->pread(r, b, sizeof b, 0);
		ck_assert_msg(n < 0, "pread during outage: %zd", n);
		f.s->ops->close(r);
	} else {
		ck_assert_msg(rc != -ENOENT, "open during outage: -ENOENT");
	}
	char *tp;
	int fd = temp_file(&f, dn, 4000, &tp);
	int tok = f.s->ops->lock(f.s, fresh);
	rc = f.s->ops->place(f.s, fd, tp, fresh, 4000);
	f.s->ops->unlock(f.s, tok);
	ck_assert_msg(rc < 0, "place during outage: %d", rc);
	ck_assert_int_eq(access(tp, F_OK), 0); /* the temp file is still the caller's */
	rc = f.s->ops->put(f.s, dn, 4000, fresh);
	ck_assert_msg(rc < 0, "put during outage: %d", rc);
	rc = rm(&f, stored);
	ck_assert_msg(rc < 0 && rc != -ENOENT, "remove during outage: %d", rc);
	int n = 0;
	rc = f.s->ops->walk(f.s, count_cb, &n);
	ck_assert_msg(rc < 0, "walk during outage: %d", rc);
	/* the cached content still reads, with nothing from the service */
	check_reads(&f, cached, dc, 3000);

	if (_i == K_ENV)
		run_cmd("SD_CONTRACT_MEND", mend);
	else
		fail_on = 0;
	ck_assert_int_eq(f.s->ops->stat(f.s, stored, &sz), 0);
	ck_assert_uint_eq(sz, 200000);
	check_reads(&f, stored, ds, 200000);
	tok = f.s->ops->lock(f.s, fresh);
	ck_assert_int_eq(f.s->ops->place(f.s, fd, tp, fresh, 4000), 0);
	f.s->ops->unlock(f.s, tok);
	check_reads(&f, fresh, dn, 4000);
	close(fd);
	free(tp);
	ck_assert_int_eq(rm(&f, stored), 0);
	ck_assert_int_eq(rm(&f, cached), 0);
	ck_assert_int_eq(rm(&f, fresh), 0);
	free(ds), free(dc), free(dn);
	fx_close(&f);
}
END_TEST

/* The wrapper's cache: a second read of a content is a local file (fd for
 * sendfile) with nothing read from the inner store; remove drops it. */
START_TEST(test_cache_hit)
{
	fx f;
	fx_open(&f, K_WRAPPED);
	char hex[65];
	char *data = content(300000, hex);
	place(&f, data, 300000, hex, 0);
	check_reads(&f, hex, data, 300000);
	fail_on = 1; /* the inner store is gone: only the cache can answer */
	sd_blobrd *r;
	ck_assert_int_eq(f.s->ops->open(f.s, hex, &r), 0);
	int fd;
	uint64_t base;
	ck_assert_int_eq(f.s->ops->fd(r, &fd, &base), 0);
	f.s->ops->close(r);
	check_reads(&f, hex, data, 300000);
	fail_on = 0;
	ck_assert_int_eq(rm(&f, hex), 0);
	char *cp = sd_xasprintf("%s/cache/%.2s/%s", f.dir, hex, hex);
	ck_assert_int_ne(access(cp, F_OK), 0);
	free(cp);
	ck_assert_int_eq(f.s->ops->open(f.s, hex, &r), -ENOENT);
	free(data);
	fx_close(&f);
}
END_TEST

/* fsck on a remote store: the recorded checksum is checked without reading
 * (damage behind it goes unseen), --deep re-reads and finds the damage; a
 * recorded checksum that is not the address is damage either way. */
START_TEST(test_fsck_checksums)
{
	tu_core t;
	tu_core_prepare(&t);
	char *wd = sd_xasprintf("%s/w", t.dir), *wt = sd_xasprintf("%s/w/tmp", t.dir);
	ck_assert_int_eq(sd_sys_mkdirs(wt), 0);
	memstore *ms;
	char err[512] = "";
	sd_store *s = wrapped_store(wd, wt, &ms, err, sizeof err);
	ck_assert_msg(s != NULL, "%s", err);
	tu_core_open_store(&t, 0, s);
	sd_session *u = tu_user(&t, "alice");
	char hex[65];
	char *data = content(100000, hex);
	tu_put(&t, u, "/f", data, 100000);
	sd_fsck_report r;
	ck_assert_int_eq(sd_core_fsck(t.c, 0, &r, NULL, NULL), 0);
	ck_assert_int_eq(r.blobs_checked, 1);
	ck_assert_int_eq(r.bad_hash, 0);
	int opens = ms->opens;
	ck_assert_int_eq(ms_damage(ms, hex, 500), 0);
	ck_assert_int_eq(sd_core_fsck(t.c, 0, &r, NULL, NULL), 0);
	ck_assert_int_eq(r.bad_hash, 0);       /* trusted the record ... */
	ck_assert_int_eq(ms->opens, opens);    /* ... without reading */
	ck_assert_int_eq(sd_core_fsck(t.c, SD_FSCK_DEEP, &r, NULL, NULL), 0);
	ck_assert_int_eq(r.bad_hash, 1);       /* --deep reads and finds it */
	ck_assert_int_eq(ms_damage(ms, hex, 500), 0); /* undone */
	lie_on = 1;
	ck_assert_int_eq(sd_core_fsck(t.c, 0, &r, NULL, NULL), 0);
	ck_assert_int_eq(r.bad_hash, 1);       /* a wrong record is damage */
	ck_assert_int_eq(sd_core_fsck(t.c, SD_FSCK_DEEP, &r, NULL, NULL), 0);
	ck_assert_int_eq(r.bad_hash, 0);       /* the bytes themselves are right */
	lie_on = 0;
	free(data);
	free(wd);
	free(wt);
	tu_core_close(&t);
}
END_TEST

int main(void)
{
	int first = K_LOCAL, end = K_WRAPPED + 1;
	if (getenv("SD_CONTRACT_CONF")) { /* make test-backends: that store only */
		first = K_ENV;
		end = K_ENV + 1;
	}
	Suite *s = suite_create("backends");
	TCase *tc = tcase_create("contract");
	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, test_place_read_remove, first, end);
	tcase_add_loop_test(tc, test_put_buffer, first, end);
	tcase_add_loop_test(tc, test_missing, first, end);
	tcase_add_loop_test(tc, test_walk, first, end);
	tcase_add_loop_test(tc, test_threads, first, end);
	/* the local store has no outage to inject (a directory is there or
	 * the data directory is gone); the wrapped and real ones do */
	tcase_add_loop_test(tc, test_outage, first > K_WRAPPED ? first : K_WRAPPED, end);
	if (first != K_ENV) {
		tcase_add_test(tc, test_cache_hit);
		tcase_add_test(tc, test_fsck_checksums);
	}
	suite_add_tcase(s, tc);
	return tu_run(s);
}
