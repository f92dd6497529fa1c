/*
 * bench/history.c - figures for history (issue 20), through the engine's
 * function table (the calls every front end makes), run by bench/history.sh:
 *
 *   history CONF NFILES FOLDER
 *
 * The tree of user "bench":
 *   /big/fNNNNNNN    NFILES files in one folder (the listing case)
 *   /w/dNN/fNNNN     FOLDER files, 1,000 per folder (the rollback case)
 *   /t/dNN/fNNNN     FOLDER files (the trash case)
 * Files are copies by reference of a stored seed (one transaction each, no
 * content I/O), so the figures are those of the metadata path. After the
 * moment T, /big changes (every 10th file rewritten, 1,000 renamed, 1,000
 * deleted, 1,000 new) and every file of /w is rewritten, so the views
 * and the rollback work through real history, not a quiet tree.
 *
 * Prints key=value lines (times in seconds; listings: the best of REPS
 * runs, wall clock and the thread's CPU time, since the machine this runs
 * on is shared and the wall clock of one run is noisy):
 *   build_s files
 *   list_live_s list_at_s list_ratio list_entries_at (and *_cpu_s, cpu_ratio)
 *   walk_live_s walk_at_s walk_ratio walk_files_at (and *_cpu_s, cpu_ratio)
 *   rollback_s rollback_restored rollback_undo_s
 *   trash_restore_s trash_files copy_s copy_files copy_ratio
 * Exit 1 on any engine error.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "core/log.h"
#include "util/util.h"

#define REPS 7

static const sd_core_api *api;
static sd_core *core;
static sd_session *S;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void check(int rc, const char *call, const char *arg)
{
	if (rc < 0) {
		fprintf(stderr, "history: %s(%s): %s\n", call, arg, api->strerror(rc));
		exit(1);
	}
}

static void put(const char *path, const char *text)
{
	sd_upload *up;
	check(api->upload_begin(S, path, SD_UP_PARENTS, 0, 0644, &up), "upload_begin", path);
	check(api->upload_write(up, text, strlen(text)), "upload_write", path);
	check(api->upload_commit(up, NULL, NULL, NULL), "upload_commit", path);
}

static void folder(const char *top, long n)
{
	char p[128];
	check(api->mkdir(S, top, 0755, 0), "mkdir", top);
	for (long i = 0; i < n; i++) {
		if (i % 1000 == 0) {
			snprintf(p, sizeof p, "%s/d%02ld", top, i / 1000);
			check(api->mkdir(S, p, 0755, 0), "mkdir", p);
		}
		snprintf(p, sizeof p, "%s/d%02ld/f%04ld", top, i / 1000, i % 1000);
		check(api->copy(S, "/seed1", p), "copy", p);
	}
}

static int count_cb(void *arg, const sd_dirent *e)
{
	(void)e;
	(*(long *)arg)++;
	return 0;
}

static long list(const char *path)
{
	long n = 0;
	int more;
	check(api->readdir(S, path, NULL, 0, count_cb, &n, &more), "readdir", path);
	return n;
}

/* Every file below path (readdir of every folder). */
typedef struct walk_ctx {
	char (*dirs)[512];
	int ndirs;
	long files;
} walk_ctx;

static int walk_cb(void *arg, const sd_dirent *e)
{
	walk_ctx *w = arg;
	if (e->st.kind == SD_KIND_DIR) {
		w->dirs = realloc(w->dirs, (size_t)(w->ndirs + 1) * sizeof *w->dirs);
		snprintf(w->dirs[w->ndirs++], 512, "%s", e->name);
	} else {
		w->files++;
	}
	return 0;
}

static long walk(const char *path)
{
	walk_ctx w = {NULL, 0, 0};
	int more;
	check(api->readdir(S, path, NULL, 0, walk_cb, &w, &more), "readdir", path);
	long files = w.files;
	for (int i = 0; i < w.ndirs; i++) {
		char sub[1024];
		snprintf(sub, sizeof sub, "%s/%s", strcmp(path, "/") ? path : "", w.dirs[i]);
		files += walk(sub);
	}
	free(w.dirs);
	return files;
}

static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Best of REPS runs of fn(arg): wall clock (returned) and CPU time (*cpu);
 * *result = its last return. */
static double timed(long (*fn)(const char *), const char *arg, long *result, double *cpu)
{
	double best = 1e30;
	*cpu = 1e30;
	for (int i = 0; i < REPS; i++) {
		double a = now_s(), c = cpu_s();
		*result = fn(arg);
		double w = now_s() - a;
		c = cpu_s() - c;
		if (w < best)
			best = w;
		if (c < *cpu)
			*cpu = c;
	}
	return best;
}

typedef struct titem {
	int64_t id;
	int64_t files;
} titem;

static int trash_cb(void *arg, const sd_trash_item *it)
{
	titem *t = arg;
	if (strcmp(it->path, "/t") == 0) {
		t->id = it->id;
		t->files = it->files;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: history CONF NFILES FOLDER\n");
		return 2;
	}
	long nfiles = atol(argv[2]), nfolder = atol(argv[3]);
	if (nfiles < 10000 || nfolder < 1000 || nfolder > 99000) {
		fprintf(stderr, "history: NFILES >= 10000, 1000 <= FOLDER <= 99000\n");
		return 2;
	}
	char err[512], p[128], q[128], vp[SD_PATH_MAX + 1];
	sd_conf conf;
	if (sd_conf_load(argv[1], &conf, err, sizeof err) != 0) {
		fprintf(stderr, "history: %s\n", err);
		return 1;
	}
	sd_log_set_level(conf.log_level);
	core = sd_core_open(&conf, 0, err, sizeof err);
	if (!core) {
		fprintf(stderr, "history: %s\n", err);
		return 1;
	}
	api = sd_core_api_table();
	int64_t uid;
	check(api->user_add(core, "bench", NULL, 0, 0, &uid), "user_add", "bench");
	check(sd_core_session(core, "bench", &S), "session", "bench");

	double t0 = now_s();
	put("/seed1", "the content at T\n");
	put("/seed2", "the content after T\n");
	check(api->mkdir(S, "/big", 0755, 0), "mkdir", "/big");
	for (long i = 0; i < nfiles; i++) {
		snprintf(p, sizeof p, "/big/f%07ld", i);
		check(api->copy(S, "/seed1", p), "copy", p);
	}
	folder("/w", nfolder);
	folder("/t", nfolder);
	printf("build_s=%.1f\nfiles=%ld\n", now_s() - t0, nfiles + 2 * nfolder + 2);
	fflush(stdout);

	/* T: a moment with quiet on both sides (the engine's clock is
	 * sd_time_ms unless a test replaces it) */
	struct timespec pause = {0, 20 * 1000000};
	nanosleep(&pause, NULL);
	int64_t T = sd_time_ms();
	nanosleep(&pause, NULL);

	/* history after T */
	for (long i = 0; i < nfiles; i += 10) {
		snprintf(p, sizeof p, "/big/f%07ld", i);
		check(api->copy(S, "/seed2", p), "copy", p);
	}
	for (long i = 1; i < 2000 && i < nfiles; i += 2) {
		snprintf(p, sizeof p, "/big/f%07ld", i);
		snprintf(q, sizeof q, "/big/renamed%07ld", i);
		check(api->rename(S, p, q, 0), "rename", p);
	}
	for (long i = 2; i < 4000 && i < nfiles; i += 4) {
		snprintf(p, sizeof p, "/big/f%07ld", i);
		check(api->unlink(S, p, 0), "unlink", p);
	}
	for (long i = 0; i < 1000; i++) {
		snprintf(p, sizeof p, "/big/new%07ld", i);
		check(api->copy(S, "/seed2", p), "copy", p);
	}
	for (long i = 0; i < nfolder; i++) {
		snprintf(p, sizeof p, "/w/d%02ld/f%04ld", i / 1000, i % 1000);
		check(api->copy(S, "/seed2", p), "copy", p);
	}

	/* listing one folder of NFILES entries: now, and at T */
	long n_live, n_at;
	double lc, pc;
	double live = timed(list, "/big", &n_live, &lc);
	check(api->at_path(S, "/big", T, vp, sizeof vp), "at_path", "/big");
	double past = timed(list, vp, &n_at, &pc);
	printf("list_live_s=%.3f\nlist_live_entries=%ld\nlist_at_s=%.3f\nlist_entries_at=%ld\n"
	       "list_ratio=%.2f\nlist_live_cpu_s=%.3f\nlist_at_cpu_s=%.3f\nlist_cpu_ratio=%.2f\n",
	       live, n_live, past, n_at, past / live, lc, pc, pc / lc);
	if (n_at != nfiles) {
		fprintf(stderr, "history: the view of T lists %ld entries, not %ld\n", n_at, nfiles);
		return 1;
	}
	/* every folder of the whole tree */
	live = timed(walk, "/", &n_live, &lc);
	check(api->at_path(S, "/", T, vp, sizeof vp), "at_path", "/");
	past = timed(walk, vp, &n_at, &pc);
	printf("walk_live_s=%.3f\nwalk_files_live=%ld\nwalk_at_s=%.3f\nwalk_files_at=%ld\n"
	       "walk_ratio=%.2f\nwalk_live_cpu_s=%.3f\nwalk_at_cpu_s=%.3f\nwalk_cpu_ratio=%.2f\n",
	       live, n_live, past, n_at, past / live, lc, pc, pc / lc);
	fflush(stdout);

	/* rollback of a FOLDER-file folder whose every file changed since T */
	sd_rollback_report rep;
	double a = now_s();
	check(api->rollback(S, "/w", T, &rep), "rollback", "/w");
	double rb = now_s() - a;
	a = now_s();
	sd_rollback_report undo;
	check(api->rollback(S, "/w", rep.ts - 1, &undo), "rollback", "/w (undo)");
	printf("rollback_s=%.3f\nrollback_restored=%" PRId64 "\nrollback_undo_s=%.3f\n"
	       "rollback_undo_restored=%" PRId64 "\n",
	       rb, rep.restored, now_s() - a, undo.restored);
	fflush(stdout);

	/* a FOLDER-file folder through the trash, against copying it */
	check(api->unlink(S, "/t", 1), "unlink", "/t");
	titem it = {0, 0};
	check(api->trash_list(S, trash_cb, &it), "trash_list", "/t");
	a = now_s();
	check(api->trash_restore(S, it.id, NULL, NULL), "trash_restore", "/t");
	double tr = now_s() - a;
	a = now_s();
	check(api->mkdir(S, "/t-copy", 0755, 0), "mkdir", "/t-copy");
	long copied = 0;
	for (long i = 0; i < nfolder; i++) {
		if (i % 1000 == 0) {
			snprintf(p, sizeof p, "/t-copy/d%02ld", i / 1000);
			check(api->mkdir(S, p, 0755, 0), "mkdir", p);
		}
		snprintf(p, sizeof p, "/t/d%02ld/f%04ld", i / 1000, i % 1000);
		snprintf(q, sizeof q, "/t-copy/d%02ld/f%04ld", i / 1000, i % 1000);
		check(api->copy(S, p, q), "copy", p);
		copied++;
	}
	double cp = now_s() - a;
	printf("trash_restore_s=%.3f\ntrash_files=%" PRId64 "\ncopy_s=%.3f\ncopy_files=%ld\n"
	       "copy_ratio=%.4f\n",
	       tr, it.files, cp, copied, tr / cp);
	api->session_close(S);
	sd_core_close(core);
	sd_conf_free(&conf);
	return 0;
}
