/*
 * bench/scale.c - engine-level scale figures for bench/run.sh: a tree of N
 * files imported through the sd_core_api (the same calls the front ends
 * make), then stat latency, a listing of one large directory and the
 * database size per file.
 *
 *   scale CONF NFILES BIGDIR THREADS
 *
 * CONF is a storaged config whose data_dir is a fresh directory (run.sh
 * writes it with durability = normal). The tree is:
 *   /big/f0000000 .. : BIGDIR files in one directory (the listing test)
 *   /d0000/f0000 ..  : the remaining files, 1,000 per directory
 * Every file is a streamed upload (upload_begin/write/commit) of 64 bytes;
 * the content is one of 1,000 distinct payloads, so the figures measure
 * the metadata path (one node and one version row and one commit per file)
 * with 1,000 blobs, not 1,000,000 tiny blob files. THREADS threads upload
 * in parallel (each its own range).
 *
 * Prints key=value lines on stdout:
 *   import_s files_per_s stat_p50_us stat_p99_us stat_n
 *   list_s list_entries list_pages_s db_bytes db_per_file
 * Exit 1 on any engine error (the message names the call).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core.h"

static const sd_core_api *api;
static sd_core *core;
static sd_session *user; /* acts as the user "scale" (sd_core_session) */
static long nfiles, bigdir;
static int nthreads;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The path of file number i (0-based) into buf; 0 or -ENAMETOOLONG. */
static int file_path(long i, char *buf, size_t len)
{
	int n;
	if (i < bigdir)
		n = snprintf(buf, len, "/big/f%07ld", i);
	else
		n = snprintf(buf, len, "/d%04ld/f%04ld", (i - bigdir) / 1000, (i - bigdir) % 1000);
	return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

static void die(const char *call, const char *arg, int rc)
{
	fprintf(stderr, "scale: %s(%s): %s\n", call, arg, api->strerror(rc));
	exit(1);
}

/* Uploads files [first, last) of the tree. */
struct range {
	long first, last;
};

static void *import_range(void *arg)
{
	const struct range *r = arg;
	char path[64], payload[64];
	for (long i = r->first; i < r->last; i++) {
		if (file_path(i, path, sizeof path) != 0)
			die("file_path", "", -ENAMETOOLONG);
		memset(payload, 'x', sizeof payload);
		int n = snprintf(payload, sizeof payload, "payload %ld\n", i % 1000);
		if (n < 0 || (size_t)n >= sizeof payload)
			die("snprintf", "payload", -EINVAL);
		sd_upload *up = NULL;
		int rc = api->upload_begin(user, path, 0, 0, 0644, &up);
		if (rc < 0)
			die("upload_begin", path, rc);
		rc = api->upload_write(up, payload, sizeof payload);
		if (rc < 0) {
			api->upload_abort(up);
			die("upload_write", path, rc);
		}
		rc = api->upload_commit(up, NULL, NULL, NULL);
		if (rc < 0)
			die("upload_commit", path, rc);
	}
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static int count_cb(void *arg, const sd_dirent *e)
{
	(void)e;
	(*(long *)arg)++;
	return 0;
}

struct page_state {
	long count;
	char last[SD_NAME_MAX + 1];
};

static int page_cb(void *arg, const sd_dirent *e)
{
	struct page_state *p = arg;
	p->count++;
	snprintf(p->last, sizeof p->last, "%s", e->name);
	return 0;
}

static long long file_size(const char *dir, const char *name)
{
	char p[4096];
	struct stat st;
	int n = snprintf(p, sizeof p, "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof p || stat(p, &st) != 0)
		return 0;
	return (long long)st.st_size;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: scale CONF NFILES BIGDIR THREADS\n");
		return 2;
	}
	nfiles = atol(argv[2]);
	bigdir = atol(argv[3]);
	nthreads = atoi(argv[4]);
	if (nfiles < 1 || bigdir < 0 || bigdir > nfiles || nthreads < 1 || nthreads > 64) {
		fprintf(stderr, "scale: bad arguments\n");
		return 2;
	}
	char err[512];
	sd_conf conf;
	if (sd_conf_load(argv[1], &conf, err, sizeof err) != 0) {
		fprintf(stderr, "scale: %s\n", err);
		return 1;
	}
	core = sd_core_open(&conf, 0, err, sizeof err);
	if (!core) {
		fprintf(stderr, "scale: %s\n", err);
		return 1;
	}
	api = sd_core_api_table();
	int64_t uid;
	int rc = api->user_add(core, "scale", "scale-password", 0, 0, &uid);
	if (rc < 0)
		die("user_add", "scale", rc);
	if ((rc = sd_core_session(core, "scale", &user)) < 0)
		die("sd_core_session", "scale", rc);

	/* directories first (not timed separately: part of the import) */
	double t0 = now_s();
	char path[64];
	if (bigdir > 0 && (rc = api->mkdir(user, "/big", 0755, 0)) < 0)
		die("mkdir", "/big", rc);
	for (long d = 0; d * 1000 < nfiles - bigdir; d++) {
		snprintf(path, sizeof path, "/d%04ld", d);
		if ((rc = api->mkdir(user, path, 0755, 0)) < 0)
			die("mkdir", path, rc);
	}
	pthread_t th[64];
	struct range rg[64];
	for (int t = 0; t < nthreads; t++) {
		rg[t].first = nfiles * t / nthreads;
		rg[t].last = nfiles * (t + 1) / nthreads;
		if (pthread_create(&th[t], NULL, import_range, &rg[t]) != 0) {
			fprintf(stderr, "scale: pthread_create failed\n");
			return 1;
		}
	}
	for (int t = 0; t < nthreads; t++)
		pthread_join(th[t], NULL);
	double import_s = now_s() - t0;
	printf("import_s=%.3f\nfiles_per_s=%.0f\n", import_s, (double)nfiles / import_s);
	fflush(stdout);

	/* stat of 20,000 random existing paths, one at a time */
	enum { NSTAT = 20000 };
	static double lat[NSTAT];
	unsigned seed = 12345;
	for (int k = 0; k < NSTAT; k++) {
		long i = (long)(rand_r(&seed) % (unsigned)nfiles);
		file_path(i, path, sizeof path);
		sd_stat st;
		double a = now_s();
		rc = api->stat(user, path, &st);
		lat[k] = (now_s() - a) * 1e6;
		if (rc < 0)
			die("stat", path, rc);
		if (st.size != 64)
			die("stat size", path, -EIO);
	}
	qsort(lat, NSTAT, sizeof lat[0], cmp_double);
	printf("stat_n=%d\nstat_p50_us=%.1f\nstat_p99_us=%.1f\n", NSTAT, lat[NSTAT / 2],
	       lat[NSTAT * 99 / 100]);

	/* listing the big directory: one call for all entries, then in pages
	 * of 1,000 (what the HTTP listing and the FTP/SFTP readers do) */
	if (bigdir > 0) {
		long count = 0;
		int more = 0;
		double a = now_s();
		rc = api->readdir(user, "/big", NULL, 0, count_cb, &count, &more);
		double list_s = now_s() - a;
		if (rc < 0)
			die("readdir", "/big", rc);
		if (count != bigdir)
			die("readdir count", "/big", -EIO);
		struct page_state ps = {0, ""};
		a = now_s();
		do {
			long before = ps.count;
			rc = api->readdir(user, "/big", ps.count ? ps.last : NULL, 1000, page_cb,
					  &ps, &more);
			if (rc < 0)
				die("readdir page", "/big", rc);
			if (ps.count == before)
				break;
		} while (more);
		double pages_s = now_s() - a;
		if (ps.count != bigdir)
			die("readdir pages count", "/big", -EIO);
		printf("list_entries=%ld\nlist_s=%.3f\nlist_pages_s=%.3f\n", count, list_s, pages_s);
	}

	api->session_close(user);
	sd_core_close(core); /* checkpoints the WAL into the database file */
	long long db = file_size(conf.data_dir, "storaged.db") +
		       file_size(conf.data_dir, "storaged.db-wal");
	printf("db_bytes=%lld\ndb_per_file=%.0f\n", db, (double)db / (double)nfiles);
	sd_conf_free(&conf);
	return 0;
}
