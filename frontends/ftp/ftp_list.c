/*
 * ftp_list.c - directory listings: LIST (ls -l form), NLST (names), MLSD
 * and MLST (RFC 3659 facts), and STAT <path> (a listing on the control
 * connection).
 *
 * The argument is resolved once by the engine (ftp_name_resolve, i.e.
 * api->resolve) because a listing shows it: the single file's name, the
 * "Listing /path" of MLST, the directory a wildcard lives in. The
 * canonical path then goes to api->stat / api->readdir, which resolve it
 * to itself.
 *
 * Listings are produced page by page (PAGE entries per api->readdir call,
 * resuming after the last name), so a huge directory never sits in memory
 * and a slow client only holds one page.
 *
 * Wildcards: "NLST *.txt" (mget in classic clients) names nothing, but its
 * last component holds a wildcard: the directory it is in is listed
 * through fnmatch(3), and NLST names keep the client's directory part
 * ("NLST dir/X.txt" with X a star gives "dir/a.txt") so mget can fetch them.
 */
#include "ftp.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAGE 1000
#define STAT_MAX_ENTRIES 10000 /* STAT <dir> on the control connection */

/* ------------------------------------------------------------ formats */

static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
				     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* One `ls -l` line (UTC times; the year instead of the time for entries
 * more than six months away from now). */
static void ls_line(ftp_session *s, const char *name, const sd_stat *st, int64_t now, sd_buf *b)
{
	char perm[11];
	uint32_t m = st->mode; /* as stored: 0000 shows as 0000, as over SFTP and HTTP */
	perm[0] = st->kind == SD_KIND_DIR ? 'd' : '-';
	static const char rwx[] = "rwx";
	for (int i = 0; i < 9; i++)
		perm[1 + i] = (m & (1u << (8 - i))) ? rwx[i % 3] : '-';
	perm[10] = '\0';
	struct tm tm;
	time_t t = (time_t)st->mtime;
	gmtime_r(&t, &tm);
	char when[32];
	int64_t age = now - st->mtime;
	if (age < 0)
		age = -age;
	if (age < 180LL * 86400)
		snprintf(when, sizeof when, "%s %2d %02d:%02d", months[tm.tm_mon % 12], tm.tm_mday,
			 tm.tm_hour, tm.tm_min);
	else
		snprintf(when, sizeof when, "%s %2d  %4d", months[tm.tm_mon % 12], tm.tm_mday,
			 tm.tm_year + 1900);
	char *tofree;
	const char *on = ftp_name_out(s, name, &tofree);
	const char *owner = s->uname[0] ? s->uname : "ftp";
	sd_buf_printf(b, "%s    1 %-8s %-8s %12llu %s %s\r\n", perm, owner, owner,
		      (unsigned long long)(st->kind == SD_KIND_DIR ? 4096 : st->size), when, on);
	free(tofree);
}

/* The MLSx fact string for st (without the name). */
static void mlsx_facts(ftp_session *s, const sd_stat *st, sd_buf *b)
{
	char tb[32];
	struct tm tm;
	time_t t = (time_t)st->mtime;
	gmtime_r(&t, &tm);
	strftime(tb, sizeof tb, "%Y%m%d%H%M%S", &tm);
	if (st->kind == SD_KIND_DIR)
		sd_buf_printf(b, "type=dir;modify=%s;perm=%s;unique=%llx;", tb,
			      s->readonly ? "el" : "flcdmpe", (unsigned long long)st->id);
	else
		sd_buf_printf(b, "type=file;size=%llu;modify=%s;perm=%s;unique=%llx;",
			      (unsigned long long)st->size, tb, s->readonly ? "r" : "adfrw",
			      (unsigned long long)st->id);
}

/* ------------------------------------------------------------ producing */

struct list_ctx {
	ftp_session *s;
	int kind;            /* 'L' LIST, 'N' NLST, 'M' MLSD, 'T' STAT */
	const char *pattern; /* wildcard on names ("*.txt"), or NULL */
	const char *prefix;  /* NLST: client's own directory part ("dir/"), or NULL */
	int64_t now;
	sd_buf out;
	char last[SD_NAME_MAX + 1]; /* resume point of the next page */
};

static int list_cb(void *arg, const sd_dirent *e)
{
	struct list_ctx *lc = arg;
	ftp_session *s = lc->s;
	snprintf(lc->last, sizeof lc->last, "%s", e->name);
	if (lc->pattern && fnmatch(lc->pattern, e->name, FNM_PERIOD) != 0)
		return 0;
	if (lc->kind == 'L' || lc->kind == 'T') {
		ls_line(s, e->name, &e->st, lc->now, &lc->out);
		return 0;
	}
	char *tofree;
	const char *on = ftp_name_out(s, e->name, &tofree);
	if (lc->kind == 'M') {
		mlsx_facts(s, &e->st, &lc->out);
		sd_buf_printf(&lc->out, " %s\r\n", on);
	} else {
		sd_buf_printf(&lc->out, "%s%s\r\n", lc->prefix ? lc->prefix : "", on);
	}
	free(tofree);
	return 0;
}

typedef int (*emit_fn)(ftp_session *s, sd_buf *b, void *arg);

/* Produce the listing of path (a directory, or a single file described by
 * st) page by page, handing each page to emit. At most cap_entries
 * entries (0: all). 0, an engine error, or emit's error. */
static int list_run(ftp_session *s, const char *path, const sd_stat *st, int kind,
		    const char *pattern, const char *prefix, emit_fn emit, void *earg,
		    size_t cap_entries)
{
	struct list_ctx lc = {.s = s, .kind = kind, .now = s->api->now(s->core), .pattern = pattern,
			      .prefix = prefix, .out = SD_BUF_INIT};
	int r = 0;
	if (st->kind != SD_KIND_DIR) {
		sd_dirent e = {.name = strrchr(path, '/') + 1, .st = *st};
		if (kind == 'N') /* NLST of a file: the argument as the client sent it */
			sd_buf_printf(&lc.out, "%s\r\n", prefix);
		else
			list_cb(&lc, &e);
		r = emit(s, &lc.out, earg);
		sd_buf_free(&lc.out);
		return r;
	}
	size_t total = 0;
	int more = 1, first = 1;
	while (more) {
		more = 0;
		int n = s->api->readdir(s->sess, path, first ? NULL : lc.last, PAGE, list_cb, &lc, &more);
		first = 0;
		if (n < 0) {
			r = n;
			break;
		}
		r = emit(s, &lc.out, earg);
		sd_buf_reset(&lc.out);
		if (r < 0)
			break;
		total += (size_t)n;
		if (n == 0 || (cap_entries && total >= cap_entries))
			break;
	}
	sd_buf_free(&lc.out);
	return r;
}

/* Strip ls-style options ("-la", "-R") some clients put before the path. */
static const char *skip_ls_opts(const char *arg)
{
	while (arg[0] == '-' && arg[1] && arg[1] != ' ') {
		const char *sp = strchr(arg, ' ');
		if (!sp)
			return "";
		arg = sp + 1;
		while (*arg == ' ')
			arg++;
	}
	return arg;
}

/* Resolve and stat the argument of a listing command ("" = the working
 * directory) into path and st. 0 or an engine error. */
static int stat_arg(ftp_session *s, const char *arg, char *path, size_t pathlen, sd_stat *st)
{
	int r = ftp_name_resolve(s, *arg ? arg : ".", path, pathlen);
	if (r == 0)
		r = s->api->stat(s->sess, path, st);
	return r;
}

/* ------------------------------------------------------------ commands */

static int emit_data(ftp_session *s, sd_buf *b, void *arg)
{
	int *ctrl_state = arg;
	int abor = 0;
	if (b->len == 0)
		return 0;
	int r = ftp_data_send(s, b->data, b->len, ctrl_state, &abor);
	if (r == 0)
		sd_bw_take(s->srv->bw, s->bw, b->len);
	return r;
}

/* The wildcard fallback (see the top of the file): when path does not
 * exist and its last component holds a wildcard, move that component to
 * pattern, cut path to its directory and stat that. 0, or the error. */
static int wildcard(ftp_session *s, char *path, char *pattern, size_t plen, sd_stat *st)
{
	char *slash = strrchr(path, '/');
	if (!strpbrk(slash + 1, "*?["))
		return -ENOENT;
	snprintf(pattern, plen, "%s", slash + 1);
	if (slash == path)
		slash[1] = '\0';
	else
		*slash = '\0';
	int r = s->api->stat(s->sess, path, st);
	if (r == 0 && st->kind != SD_KIND_DIR)
		r = -ENOENT;
	return r;
}

int ftp_cmd_list(ftp_session *s, const char *arg, int kind)
{
	char path[SD_PATH_MAX + 1], pattern[SD_NAME_MAX + 1];
	const char *pat = NULL;
	sd_stat st;
	s->have_rest = 0;
	if (kind != 'M')
		arg = skip_ls_opts(arg);
	int r = stat_arg(s, arg, path, sizeof path, &st);
	if (r == -ENOENT && kind != 'M') {
		r = wildcard(s, path, pattern, sizeof pattern, &st);
		pat = r == 0 ? pattern : NULL;
	}
	if (r < 0) {
		/* NLST/LIST of something missing: an empty listing is what
		 * most servers send, but a clear 550 helps scripts more. */
		ftp_data_reset(s);
		return ftp_reply_err(s, r, "Could not list");
	}
	if (kind == 'M' && st.kind != SD_KIND_DIR) {
		ftp_data_reset(s);
		return ftp_reply(s, 501, "MLSD needs a directory; use MLST for a file.");
	}
	if (ftp_data_precheck(s) < 0)
		return 0;
	ftp_reply(s, 150, "Here comes the directory listing.");
	if (ftp_data_open(s) < 0)
		return 0;
	s->xfer = FTP_XFER_RUNNING;
	int ctrl_state = 0;
	char prefix[SD_PATH_MAX + 1];
	const char *pfx = NULL;
	if (kind == 'N' && st.kind != SD_KIND_DIR) {
		pfx = arg;
	} else if (kind == 'N' && pat) {
		const char *cs = strrchr(arg, '/');
		if (cs && (size_t)(cs - arg + 1) < sizeof prefix) {
			memcpy(prefix, arg, (size_t)(cs - arg + 1));
			prefix[cs - arg + 1] = '\0';
			pfx = prefix;
		}
	}
	r = list_run(s, path, &st, kind, pat, pfx, emit_data, &ctrl_state, 0);
	s->xfer = FTP_XFER_IDLE;
	if (r < 0) {
		ftp_data_reset(s);
		if (r == -ECANCELED) {
			ftp_reply_aborted(s, 1, NULL);
			return 0;
		}
		if (r == -ETIMEDOUT || r == -EPIPE || r == -ECONNRESET || r == -EPROTO)
			return ftp_reply(s, 426, "Connection closed; listing aborted.");
		return ftp_reply_err(s, r, "Listing failed");
	}
	ftp_data_close(s);
	return ftp_reply(s, 226, "Directory send OK.");
}

int ftp_cmd_mlst(ftp_session *s, const char *arg)
{
	char path[SD_PATH_MAX + 1];
	sd_stat st;
	int r = stat_arg(s, arg, path, sizeof path, &st);
	if (r < 0)
		return ftp_reply_err(s, r, "Could not list");
	sd_buf b = SD_BUF_INIT;
	char *tofree;
	const char *on = ftp_name_out(s, path, &tofree);
	sd_buf_printf(&b, "Listing %s\n ", on);
	mlsx_facts(s, &st, &b);
	sd_buf_printf(&b, " %s\nEnd", on);
	free(tofree);
	r = ftp_reply(s, 250, "%s", b.data);
	sd_buf_free(&b);
	return r;
}

/* Control replies: LF-separated lines for ftp_reply. */
static int emit_ctrl(ftp_session *s, sd_buf *b, void *arg)
{
	sd_buf *acc = arg;
	(void)s;
	for (size_t i = 0; i < b->len; i++)
		if (b->data[i] != '\r')
			sd_buf_append(acc, &b->data[i], 1);
	return 0;
}

int ftp_cmd_stat_path(ftp_session *s, const char *arg)
{
	char path[SD_PATH_MAX + 1];
	sd_stat st;
	int r = stat_arg(s, skip_ls_opts(arg), path, sizeof path, &st);
	if (r < 0)
		return ftp_reply_err(s, r, "Could not stat");
	sd_buf acc = SD_BUF_INIT;
	r = list_run(s, path, &st, 'T', NULL, NULL, emit_ctrl, &acc, STAT_MAX_ENTRIES);
	if (r < 0) {
		sd_buf_free(&acc);
		return ftp_reply_err(s, r, "Could not stat");
	}
	char *tofree;
	const char *on = ftp_name_out(s, path, &tofree);
	r = ftp_reply(s, 213, "Status of %s:\n%sEnd of status", on, acc.data ? acc.data : "");
	free(tofree);
	sd_buf_free(&acc);
	return r;
}
