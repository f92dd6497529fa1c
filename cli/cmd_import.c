/*
 * cmd_import.c - storagectl import USER LOCALDIR [REMOTEDIR] [-j N]: copy
 * a local tree into a user's tree with parallel uploads.
 *
 * Pipeline
 *
 *     walk (main thread, no symlink following)
 *        |  entries: dirs in pre-order, regular files
 *        v
 *     mkdir every dir (main thread, parents first)
 *        |
 *        v
 *     queue of files --> N workers: open, upload_begin, upload_write x k,
 *        |               upload_commit, chmod, print line
 *        v
 *     set_mtime on dirs, deepest first; summary
 *
 * Invariant: "imported PATH SIZE SHA256 [dedup]" is printed for a file
 * only after upload_commit() returned 0 for it, and stdout is flushed at
 * once: a line on stdout is a promise that the file is durably stored.
 * Lines from worker threads are written under one mutex, whole.
 *
 * The workers share one cli_tree (the user they act as; engine sessions
 * may be used by several threads at once).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/conf.h"
#include "util/sys.h"
#include "util/util.h"

#define IMPORT_JOBS 4 /* default worker threads */
#define IMPORT_JOBS_MAX 64

typedef struct imp_entry {
	char *rel; /* path relative to LOCALDIR, no leading '/' */
	int dir;
	uint32_t mode;
	int64_t mtime;
	uint64_t size;
} imp_entry;

typedef struct imp_ctx {
	cli_tree *t;
	const char *localroot;
	char remoteroot[SD_PATH_MAX + 1]; /* normalised, "/" or "/a/b" */
	imp_entry *v;
	size_t n, cap;
	size_t *files; /* indexes of file entries in v */
	size_t nfiles;

	pthread_mutex_t mu; /* guards next, counters and stdout lines */
	size_t next;
	int64_t ok, bytes, dedups, errors, skipped;
} imp_ctx;

static void imp_push(imp_ctx *ic, const char *rel, int dir, const struct stat *st)
{
	if (ic->n == ic->cap) {
		ic->cap = ic->cap ? ic->cap * 2 : 256;
		ic->v = sd_xrealloc(ic->v, ic->cap * sizeof *ic->v);
	}
	imp_entry *e = &ic->v[ic->n++];
	e->rel = sd_xstrdup(rel);
	e->dir = dir;
	e->mode = st->st_mode & 07777;
	e->mtime = (int64_t)st->st_mtime;
	e->size = (uint64_t)st->st_size;
}

/* Recursive walk of localroot/rel (rel "" = the root). Symlinks and special
 * files are skipped with a warning; nothing is followed. */
static void imp_walk(imp_ctx *ic, const char *rel, int depth)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof path, "%s%s%s", ic->localroot, *rel ? "/" : "", rel) >=
	    (int)sizeof path) {
		cli_fail("import", "%s/%s: path too long", ic->localroot, rel);
		ic->errors++;
		return;
	}
	if (depth > 256) {
		cli_fail("import", "%s: too deep", path);
		ic->errors++;
		return;
	}
	DIR *d = opendir(path);
	if (!d) {
		cli_fail("import", "%s: %s", path, strerror(errno));
		ic->errors++;
		return;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		char crel[PATH_MAX], cpath[PATH_MAX];
		if (snprintf(crel, sizeof crel, "%s%s%s", rel, *rel ? "/" : "", de->d_name) >=
			(int)sizeof crel ||
		    snprintf(cpath, sizeof cpath, "%s/%s", path, de->d_name) >= (int)sizeof cpath) {
			cli_fail("import", "%s/%s: path too long", path, de->d_name);
			ic->errors++;
			continue;
		}
		struct stat st;
		if (lstat(cpath, &st) < 0) {
			cli_fail("import", "%s: %s", cpath, strerror(errno));
			ic->errors++;
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			imp_push(ic, crel, 1, &st);
			imp_walk(ic, crel, depth + 1);
		} else if (S_ISREG(st.st_mode)) {
			imp_push(ic, crel, 0, &st);
		} else {
			cli_warn("skipping %s: %s", cpath,
				 S_ISLNK(st.st_mode) ? "symbolic link" : "not a regular file");
			ic->skipped++;
		}
	}
	closedir(d);
}

/* remoteroot + "/" + rel into out. 0 or -ENAMETOOLONG. */
static int imp_remote(const imp_ctx *ic, const char *rel, char *out, size_t outlen)
{
	int n = strcmp(ic->remoteroot, "/") == 0
		    ? snprintf(out, outlen, "/%s", rel)
		    : snprintf(out, outlen, "%s/%s", ic->remoteroot, rel);
	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

/* mkdir -p of remote, fine if it is a directory already. 0 or -errno. */
static int imp_mkdir(imp_ctx *ic, const char *remote, uint32_t mode)
{
	int rc = cli_tree_mkdir(ic->t, remote, mode, 1);
	sd_stat st;
	if (rc == -EEXIST && cli_tree_stat(ic->t, remote, &st) == 0 && st.kind == SD_KIND_DIR)
		rc = 0;
	return rc;
}

/* Upload one file entry; prints the "imported" line after the commit. */
static void imp_file(imp_ctx *ic, const imp_entry *e, char *buf)
{
	char local[PATH_MAX], remote[SD_PATH_MAX + 1];
	if (snprintf(local, sizeof local, "%s/%s", ic->localroot, e->rel) >= (int)sizeof local ||
	    imp_remote(ic, e->rel, remote, sizeof remote) < 0) {
		pthread_mutex_lock(&ic->mu);
		cli_fail("import", "%s: path too long", e->rel);
		ic->errors++;
		pthread_mutex_unlock(&ic->mu);
		return;
	}
	int fd = sd_sys_open(local, O_RDONLY | O_NOFOLLOW, 0);
	struct stat st;
	if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
		sd_sys_close(fd);
		fd = -EINVAL;
	}
	if (fd < 0) {
		pthread_mutex_lock(&ic->mu);
		cli_fail("import", "%s: %s", local,
			 fd == -EINVAL ? "no longer a regular file" : strerror(-fd));
		ic->errors++;
		pthread_mutex_unlock(&ic->mu);
		return;
	}
	sd_stat rs;
	int dedup = 0;
	const char *where;
	int rc = cli_upload_fd(ic->t, fd, remote, st.st_mode & 07777, (int64_t)st.st_mtime, buf,
			       &rs, &dedup, &where);
	sd_sys_close(fd);
	if (rc == 0) {
		/* The mtime went in with the commit. The mode was given to
		 * upload_begin, which applies to new files only: re-apply it if
		 * the file existed before with another mode. */
		int r2 = 0;
		if ((rs.mode & 07777) != (st.st_mode & 07777))
			r2 = cli_tree_chmod(ic->t, remote, st.st_mode & 07777);
		if (r2 < 0) {
			pthread_mutex_lock(&ic->mu);
			cli_warn("%s: stored, but setting mode/mtime failed: %s", remote,
				 cli_errstr(r2));
			pthread_mutex_unlock(&ic->mu);
		}
	}
	pthread_mutex_lock(&ic->mu);
	if (rc < 0) {
		cli_fail("import", "%s: %s", strcmp(where, "read") == 0 ? local : remote,
			 strcmp(where, "read") == 0 ? strerror(-rc) : cli_errstr(rc));
		ic->errors++;
	} else {
		fputs("imported ", stdout);
		cli_human_str(stdout, remote);
		printf(" %" PRIu64 " %s%s\n", rs.size, rs.sha256, dedup ? " dedup" : "");
		fflush(stdout);
		ic->ok++;
		ic->bytes += (int64_t)rs.size;
		ic->dedups += dedup != 0;
	}
	pthread_mutex_unlock(&ic->mu);
}

static void *imp_worker(void *arg)
{
	imp_ctx *ic = arg;
	char *buf = sd_xmalloc(CLI_CHUNK);
	for (;;) {
		pthread_mutex_lock(&ic->mu);
		size_t i = ic->next < ic->nfiles ? ic->files[ic->next++] : (size_t)-1;
		pthread_mutex_unlock(&ic->mu);
		if (i == (size_t)-1)
			break;
		imp_file(ic, &ic->v[i], buf);
	}
	free(buf);
	return NULL;
}

/* Create every directory entry (parents first: the walk is pre-order) and
 * queue the files. */
static void imp_dirs(imp_ctx *ic)
{
	ic->files = sd_xcalloc(ic->n ? ic->n : 1, sizeof *ic->files);
	for (size_t i = 0; i < ic->n; i++) {
		imp_entry *e = &ic->v[i];
		if (!e->dir) {
			ic->files[ic->nfiles++] = i;
			continue;
		}
		char remote[SD_PATH_MAX + 1];
		if (imp_remote(ic, e->rel, remote, sizeof remote) < 0) {
			cli_fail("import", "%s: path too long", e->rel);
			ic->errors++;
			continue;
		}
		int rc = imp_mkdir(ic, remote, e->mode);
		if (rc < 0) {
			cli_fail("import", "%s: %s", remote, cli_errstr(rc));
			ic->errors++;
		}
	}
}

/* Upload the queued files with up to `jobs` threads. */
static void imp_files(imp_ctx *ic, int jobs)
{
	int nthreads = jobs;
	if ((size_t)nthreads > ic->nfiles)
		nthreads = ic->nfiles ? (int)ic->nfiles : 1;
	pthread_t *th = sd_xcalloc((size_t)nthreads, sizeof *th);
	int started = 0;
	for (int i = 0; i < nthreads; i++) {
		if (pthread_create(&th[i], NULL, imp_worker, ic) != 0)
			break;
		started++;
	}
	if (started == 0)
		imp_worker(ic);
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	free(th);
}

/* Directory mtimes last (uploads touched them), deepest first. */
static void imp_dir_mtimes(imp_ctx *ic)
{
	for (size_t i = ic->n; i-- > 0;) {
		imp_entry *e = &ic->v[i];
		char remote[SD_PATH_MAX + 1];
		if (!e->dir || imp_remote(ic, e->rel, remote, sizeof remote) < 0)
			continue;
		int r2 = cli_tree_set_mtime(ic->t, remote, e->mtime);
		if (r2 < 0 && r2 != -ENOENT)
			cli_warn("%s: setting mtime failed: %s", remote, cli_errstr(r2));
	}
}

static void imp_free(imp_ctx *ic)
{
	for (size_t i = 0; i < ic->n; i++)
		free(ic->v[i].rel);
	free(ic->v);
	free(ic->files);
	if (ic->t)
		cli_tree_close(ic->t);
	pthread_mutex_destroy(&ic->mu);
}

int cli_cmd_import(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"jobs", required_argument, NULL, 'j'},
	    {NULL, 0, NULL, 0},
	};
	const char *jobs_s = NULL;
	int c, rc;
	cli_args a;
	cli_args_init(&a, argc, argv);
	while ((c = cli_next_opt(&a, "j:", lo)) != -1) {
		if (c == CLI_OPT_ERR)
			return 2;
		jobs_s = a.val;
	}
	if (a.npos < 2 || a.npos > 3)
		return cli_usage_err("import needs USER LOCALDIR [REMOTEDIR]");
	int64_t jobs = IMPORT_JOBS;
	if (jobs_s && (sd_conf_parse_int(jobs_s, &jobs) < 0 || jobs < 1 || jobs > IMPORT_JOBS_MAX))
		return cli_usage_err("bad job count '%s' (1-%d)", jobs_s, IMPORT_JOBS_MAX);

	/* Strip trailing slashes of LOCALDIR (but keep "/"). */
	char root[PATH_MAX];
	if (snprintf(root, sizeof root, "%s", a.pos[1]) >= (int)sizeof root)
		return cli_fail("import", "%s: path too long", a.pos[1]);
	for (size_t l = strlen(root); l > 1 && root[l - 1] == '/'; l--)
		root[l - 1] = '\0';
	struct stat rst;
	if (stat(root, &rst) < 0)
		return cli_fail("import", "%s: %s", root, strerror(errno));
	if (!S_ISDIR(rst.st_mode))
		return cli_fail("import", "%s: not a directory", root);

	imp_ctx ic;
	memset(&ic, 0, sizeof ic);
	pthread_mutex_init(&ic.mu, NULL);
	ic.localroot = root;
	if (cli_open() || !(ic.t = cli_tree_open(a.pos[0]))) {
		imp_free(&ic);
		return 1;
	}
	const char *rroot = a.npos == 3 ? a.pos[2] : "/";
	rc = cli_tree_resolve(ic.t, rroot, ic.remoteroot, sizeof ic.remoteroot);
	if (rc < 0) {
		cli_fail("import", "%s: %s", rroot, cli_errstr(rc));
		imp_free(&ic);
		return 1;
	}

	int64_t t0 = sd_mono_ms();
	if (strcmp(ic.remoteroot, "/") != 0 && (rc = imp_mkdir(&ic, ic.remoteroot, 0755)) < 0) {
		cli_fail("import", "%s: %s", ic.remoteroot, cli_errstr(rc));
		imp_free(&ic);
		return 1;
	}
	imp_walk(&ic, "", 0);
	imp_dirs(&ic);
	imp_files(&ic, (int)jobs);
	imp_dir_mtimes(&ic);

	double secs = (double)(sd_mono_ms() - t0) / 1000.0;
	if (secs <= 0)
		secs = 0.001;
	printf("import: %" PRId64 " files, %" PRId64 " bytes, %" PRId64 " dedup hits, %" PRId64
	       " skipped, %" PRId64 " errors in %.2f s: %.1f MB/s, %.1f files/s\n",
	       ic.ok, ic.bytes, ic.dedups, ic.skipped, ic.errors, secs,
	       (double)ic.bytes / 1e6 / secs, (double)ic.ok / secs);
	rc = ic.errors ? 1 : 0;
	imp_free(&ic);
	return rc;
}
