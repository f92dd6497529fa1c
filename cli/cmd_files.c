/*
 * cmd_files.c - storagectl put, get, ls, rm, mkdir: one user's tree, as
 * that user (through cli/tree.c), with the user's quota.
 *
 * Invariant: `get` never leaves a partial LOCAL: it writes a temp file
 * beside it, fsyncs it and renames it into place.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "util/sys.h"
#include "util/util.h"
#include "util/sdjson.h"

/* ------------------------------------------------------------ put */

int cli_upload_fd(cli_tree *t, int fd, const char *remote, uint32_t mode, int64_t mtime,
		  char *buf, sd_stat *st, int *dedup, const char **where)
{
	sd_upload *up = NULL;
	*where = "upload";
	int rc = cli_tree_upload_begin(t, remote, SD_UP_PARENTS, mode, &up);
	if (rc < 0)
		return rc;
	for (;;) {
		ssize_t n = sd_sys_read(fd, buf, CLI_CHUNK);
		if (n < 0) {
			*where = "read";
			cli_api->upload_abort(up);
			return (int)n;
		}
		if (n == 0)
			break;
		rc = cli_api->upload_write(up, buf, (size_t)n);
		if (rc < 0) {
			cli_api->upload_abort(up);
			return rc;
		}
		if ((size_t)n < CLI_CHUNK)
			break; /* sd_sys_read loops until CLI_CHUNK or EOF */
	}
	*dedup = 0;
	if (mtime > 0)
		cli_api->upload_set_mtime(up, mtime); /* in the commit itself */
	return cli_api->upload_commit(up, NULL, st, dedup);
}

int cli_cmd_put(int argc, char **argv)
{
	cli_args a;
	cli_args_init(&a, argc, argv);
	if (cli_next_opt(&a, NULL, NULL) != -1)
		return 2;
	if (a.npos != 3)
		return cli_usage_err("put needs USER LOCAL REMOTE");
	const char *local = a.pos[1], *remote = a.pos[2];
	int fd = strcmp(local, "-") == 0 ? STDIN_FILENO : sd_sys_open(local, O_RDONLY, 0);
	if (fd < 0)
		return cli_fail("put", "%s: %s", local, strerror(-fd));
	uint32_t mode = 0644;
	struct stat lst;
	if (fd != STDIN_FILENO) {
		if (fstat(fd, &lst) < 0 || !S_ISREG(lst.st_mode)) {
			sd_sys_close(fd);
			return cli_fail("put", "%s: not a regular file", local);
		}
		mode = lst.st_mode & 07777;
	}
	cli_tree *t = NULL;
	if (cli_open() || !(t = cli_tree_open(a.pos[0]))) {
		if (fd != STDIN_FILENO)
			sd_sys_close(fd);
		return 1;
	}
	char *buf = sd_xmalloc(CLI_CHUNK);
	sd_stat st;
	int dedup = 0;
	const char *where;
	int rc = cli_upload_fd(t, fd, remote, mode, 0, buf, &st, &dedup, &where);
	free(buf);
	char norm[SD_PATH_MAX + 1];
	if (cli_tree_resolve(t, remote, norm, sizeof norm) < 0)
		snprintf(norm, sizeof norm, "%s", remote);
	cli_tree_close(t);
	if (fd != STDIN_FILENO)
		sd_sys_close(fd);
	if (rc < 0)
		return cli_fail("put", "%s: %s", strcmp(where, "read") == 0 ? local : remote,
				strcmp(where, "read") == 0 ? strerror(-rc) : cli_errstr(rc));
	fputs("stored ", stdout);
	cli_human_str(stdout, norm);
	printf(" %" PRIu64 " %s%s\n", st.size, st.sha256, dedup ? " dedup" : "");
	return 0;
}

/* ------------------------------------------------------------ get */

/* Copy [0,size) of a reader to out with write (works for pipes); into a
 * file with copy_file_range when the content is a local file. */
static int copy_to_fd(sd_reader *in, int out, uint64_t size, int seekable)
{
	int lfd;
	uint64_t base;
	if (seekable && cli_api->reader_fd(in, &lfd, &base) == 0 && base == 0)
		return sd_sys_copy_range(lfd, out, size);
	char *buf = sd_xmalloc(CLI_CHUNK);
	uint64_t off = 0;
	int rc = 0;
	while (off < size) {
		size_t want = size - off < CLI_CHUNK ? (size_t)(size - off) : CLI_CHUNK;
		ssize_t n = cli_api->reader_pread(in, buf, want, off);
		if (n < 0) {
			rc = (int)n;
			break;
		}
		if (n == 0) {
			rc = -SD_ECORRUPT; /* blob shorter than its row says */
			break;
		}
		if ((rc = sd_sys_write(out, buf, (size_t)n)) < 0)
			break;
		off += (uint64_t)n;
	}
	free(buf);
	return rc;
}

/* Write the reader (st from open_read) to LOCAL (a file, or an existing
 * directory: then under the remote name) through a temp file beside it:
 * fsync, rename. Closes the reader. 0 or 1 after printing why. */
static int save_local(sd_reader *fd, const sd_stat *st, const char *remote, const char *local)
{
	char target[PATH_MAX];
	struct stat lst;
	if (stat(local, &lst) == 0 && S_ISDIR(lst.st_mode)) {
		const char *base = strrchr(remote, '/');
		base = base ? base + 1 : remote;
		if (!*base)
			base = "download";
		if (snprintf(target, sizeof target, "%s/%s", local, base) >= (int)sizeof target) {
			cli_api->reader_close(fd);
			return cli_fail("get", "%s: path too long", local);
		}
	} else if (snprintf(target, sizeof target, "%s", local) >= (int)sizeof target) {
		cli_api->reader_close(fd);
		return cli_fail("get", "%s: path too long", local);
	}
	char dir[PATH_MAX], tmp[PATH_MAX];
	const char *slash = strrchr(target, '/');
	const char *name = slash ? slash + 1 : target;
	if (slash)
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - target + (slash == target)), target);
	else
		snprintf(dir, sizeof dir, ".");
	if (snprintf(tmp, sizeof tmp, "%s/.%s.storagectl.XXXXXX", dir, name) >= (int)sizeof tmp) {
		cli_api->reader_close(fd);
		return cli_fail("get", "%s: path too long", target);
	}
	int out = mkstemp(tmp);
	if (out < 0) {
		int e = errno;
		cli_api->reader_close(fd);
		return cli_fail("get", "%s: %s", dir, strerror(e));
	}
	int rc = copy_to_fd(fd, out, st->size, 1);
	cli_api->reader_close(fd);
	if (rc < 0) {
		unlink(tmp);
		close(out);
		return cli_fail("get", "%s: %s", remote, cli_errstr(rc));
	}
	mode_t um = umask(0);
	umask(um);
	if (fchmod(out, (st->mode & 0777 ? st->mode & 0777 : 0644) & ~um) < 0 ||
	    (rc = sd_sys_fsync(out)) < 0) {
		int e = rc < 0 ? -rc : errno;
		unlink(tmp);
		close(out);
		return cli_fail("get", "%s: %s", tmp, strerror(e));
	}
	struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_sec = st->mtime, .tv_nsec = 0}};
	futimens(out, ts);
	close(out);
	if ((rc = sd_sys_rename(tmp, target)) < 0) {
		unlink(tmp);
		return cli_fail("get", "%s: %s", target, strerror(-rc));
	}
	return 0;
}

int cli_cmd_get(int argc, char **argv)
{
	cli_args a;
	cli_args_init(&a, argc, argv);
	if (cli_next_opt(&a, NULL, NULL) != -1)
		return 2;
	if (a.npos != 3)
		return cli_usage_err("get needs USER REMOTE LOCAL");
	const char *remote = a.pos[1], *local = a.pos[2];
	cli_tree *t = NULL;
	if (cli_open() || !(t = cli_tree_open(a.pos[0])))
		return 1;
	sd_reader *fd = NULL;
	sd_stat st;
	int rc = cli_tree_open_read(t, remote, &fd, &st);
	cli_tree_close(t);
	if (rc < 0)
		return cli_fail("get", "%s: %s", remote, cli_errstr(rc));
	if (strcmp(local, "-") != 0)
		return save_local(fd, &st, remote, local);
	rc = copy_to_fd(fd, STDOUT_FILENO, st.size, 0);
	cli_api->reader_close(fd);
	if (rc < 0)
		return cli_fail("get", "%s: %s", remote, cli_errstr(rc));
	return 0;
}

/* ------------------------------------------------------------ ls */

static void mode_string(int kind, uint32_t mode, char out[11])
{
	static const char rwx[] = "rwxrwxrwx";
	out[0] = kind == SD_KIND_DIR ? 'd' : '-';
	for (int i = 0; i < 9; i++)
		out[1 + i] = (mode & (0400u >> i)) ? rwx[i] : '-';
	out[10] = '\0';
}

typedef struct ls_ctx {
	int json;
	cli_jlist jl;
} ls_ctx;

static void ls_print(ls_ctx *lc, const char *name, const sd_stat *st)
{
	if (lc->json) {
		cli_jlist_add(&lc->jl, sd_json_stat(NULL, name, st));
		return;
	}
	char m[11], when[32];
	mode_string(st->kind, st->mode, m);
	time_t t = (time_t)st->mtime;
	struct tm tm;
	if (gmtime_r(&t, &tm))
		strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
	else
		snprintf(when, sizeof when, "?");
	printf("%s %12" PRIu64 " %s ", m, st->size, when);
	cli_human_str(stdout, name);
	fputs(st->kind == SD_KIND_DIR ? "/\n" : "\n", stdout);
}

static int ls_cb(void *arg, const sd_dirent *e)
{
	ls_print(arg, e->name, &e->st);
	return 0;
}

int cli_cmd_ls(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"json", no_argument, NULL, 'J'},
	    {NULL, 0, NULL, 0},
	};
	ls_ctx lc = {0, {0, 0}};
	int c;
	cli_args a;
	cli_args_init(&a, argc, argv);
	while ((c = cli_next_opt(&a, NULL, lo)) != -1) {
		if (c == CLI_OPT_ERR)
			return 2;
		lc.json = 1;
	}
	if (a.npos < 1 || a.npos > 2)
		return cli_usage_err("ls needs USER [PATH]");
	const char *path = a.npos == 2 ? a.pos[1] : "/";
	cli_tree *t = NULL;
	if (cli_open() || !(t = cli_tree_open(a.pos[0])))
		return 1;
	sd_stat st;
	int rc = cli_tree_stat(t, path, &st);
	if (rc < 0) {
		cli_tree_close(t);
		return cli_fail("ls", "%s: %s", path, cli_errstr(rc));
	}
	if (lc.json)
		cli_jlist_begin(&lc.jl);
	if (st.kind == SD_KIND_DIR) {
		rc = cli_tree_readdir(t, path, ls_cb, &lc);
	} else {
		char norm[SD_PATH_MAX + 1];
		const char *base = path;
		if (cli_tree_resolve(t, path, norm, sizeof norm) == 0) {
			base = strrchr(norm, '/');
			base = base ? base + 1 : norm;
		}
		ls_print(&lc, base, &st);
	}
	cli_tree_close(t);
	if (lc.json && cli_jlist_end(&lc.jl, "ls"))
		return 1;
	if (rc < 0)
		return cli_fail("ls", "%s: %s", path, cli_errstr(rc));
	return 0;
}

/* ------------------------------------------------------------ rm, mkdir */

int cli_cmd_rm(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"recursive", no_argument, NULL, 'r'},
	    {NULL, 0, NULL, 0},
	};
	int rec = 0, c;
	cli_args a;
	cli_args_init(&a, argc, argv);
	while ((c = cli_next_opt(&a, "rR", lo)) != -1) {
		if (c == CLI_OPT_ERR)
			return 2;
		rec = 1; /* -r, -R, --recursive */
	}
	if (a.npos != 2)
		return cli_usage_err("rm needs USER PATH");
	const char *path = a.pos[1];
	cli_tree *t = NULL;
	if (cli_open() || !(t = cli_tree_open(a.pos[0])))
		return 1;
	sd_stat st;
	int rc = cli_tree_stat(t, path, &st);
	if (rc == 0 && st.kind == SD_KIND_DIR && !rec) {
		cli_tree_close(t);
		return cli_fail("rm", "%s: is a directory (use -r)", path);
	}
	if (rc == 0)
		rc = cli_tree_unlink(t, path, rec);
	cli_tree_close(t);
	if (rc < 0)
		return cli_fail("rm", "%s: %s", path, cli_errstr(rc));
	return 0;
}

int cli_cmd_mkdir(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"parents", no_argument, NULL, 'p'},
	    {NULL, 0, NULL, 0},
	};
	int parents = 0, c;
	cli_args a;
	cli_args_init(&a, argc, argv);
	while ((c = cli_next_opt(&a, "p", lo)) != -1) {
		if (c == CLI_OPT_ERR)
			return 2;
		parents = 1;
	}
	if (a.npos != 2)
		return cli_usage_err("mkdir needs USER PATH");
	const char *path = a.pos[1];
	cli_tree *t = NULL;
	if (cli_open() || !(t = cli_tree_open(a.pos[0])))
		return 1;
	int rc = cli_tree_mkdir(t, path, 0755, parents);
	if (rc == -EEXIST && parents) {
		sd_stat st;
		if (cli_tree_stat(t, path, &st) == 0 && st.kind == SD_KIND_DIR)
			rc = 0;
	}
	cli_tree_close(t);
	if (rc < 0)
		return cli_fail("mkdir", "%s: %s", path, cli_errstr(rc));
	return 0;
}
