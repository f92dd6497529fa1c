/*
 * cmd_history.c - storagectl versions, restore, trash, rollback: the
 * history of one user's tree (core/history.c), as that user (cli/tree.c).
 *
 * Times are printed as RFC 3339 UTC with milliseconds, the form --at
 * accepts back, so a time copied from `versions`, `trash` or `journal`
 * names exactly that moment. --json prints the objects of util/sdjson.h,
 * the same the HTTP API answers with.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/conf.h"
#include "util/sdjson.h"
#include "util/timefmt.h"
#include "util/util.h"

/* A moment given on the command line: RFC 3339 (timefmt.h: also a
 * /.snapshots name, or a date), or a duration meaning that long ago
 * ("10m", "2h", "1d"). 0, or 2 after a usage error. The engine must be
 * open for a duration (its clock). */
static int parse_at(const char *s, int64_t *ms, int64_t *ago)
{
	*ago = -1;
	if (sd_time_parse(s, ms) == 0)
		return 0;
	if (sd_conf_parse_duration(s, ago) == 0 && *ago >= 0)
		return 0;
	return cli_usage_err("bad time '%s' (2026-11-21T10:00:00Z, 2026-11-21T10:00:00.123+02:00, "
			     "or a duration like 10m meaning ago)",
			     s);
}

/* ------------------------------------------------------------ versions */

typedef struct ver_ctx {
	int json;
	cli_jlist jl;
} ver_ctx;

static const char *dash(const char *s)
{
	return s && *s ? s : "-";
}

static int ver_cb(void *arg, const sd_version *v)
{
	ver_ctx *x = arg;
	if (x->json) {
		cli_jlist_add(&x->jl, sd_json_version(v));
		return 0;
	}
	char when[40];
	sd_json_time_text(v->ts, 1, when, sizeof when);
	printf("%-8" PRId64 " %s %12" PRIu64 " %s %s %s %s %s%s\n", v->id, when, v->size, v->sha256,
	       dash(v->user), dash(v->proto), dash(v->addr), dash(v->op), v->current ? " current" : "");
	return 0;
}

int cli_cmd_versions(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"json", no_argument, NULL, 'J'},
	    {NULL, 0, NULL, 0},
	};
	ver_ctx x = {0, {0, 0}};
	int c;
	cli_args a;
	cli_args_init(&a, argc, argv);
	while ((c = cli_next_opt(&a, NULL, lo)) != -1) {
		if (c == CLI_OPT_ERR)
			return 2;
		x.json = 1;
	}
	if (a.npos != 2)
		return cli_usage_err("versions needs USER PATH");
	cli_tree *t = NULL;
	if (cli_open() || !(t = cli_tree_open(a.pos[0])))
		return 1;
	if (x.json)
		cli_jlist_begin(&x.jl);
	int rc = cli_tree_versions(t, a.pos[1], ver_cb, &x);
	cli_tree_close(t);
	if (x.json && cli_jlist_end(&x.jl, "versions"))
		return 1;
	if (rc < 0)
		return cli_fail("versions", "%s: %s", a.pos[1], cli_errstr(rc));
	return 0;
}

/* ------------------------------------------------------------ restore */

static int parse_id(const char *s, int64_t *id)
{
	char *end;
	long long v = strtoll(s, &end, 10);
	if (!*s || *end || v <= 0)
		return -1;
	*id = v;
	return 0;
}

int cli_cmd_restore(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"version", required_argument, NULL, 'V'},
	    {"json", no_argument, NULL, 'J'},
	    {NULL, 0, NULL, 0},
	};
	const char *vs = NULL;
	int json = 0, c;
	cli_args a;
	cli_args_init(&a, argc, argv);
	while ((c = cli_next_opt(&a, NULL, lo)) != -1) {
		if (c == CLI_OPT_ERR)
			return 2;
		if (c == 'V')
			vs = a.val;
		else
			json = 1;
	}
	if (a.npos != 2 || !vs)
		return cli_usage_err("restore needs USER PATH --version V");
	int64_t vid;
	if (parse_id(vs, &vid) < 0)
		return cli_usage_err("bad version '%s' (a number from `storagectl versions`)", vs);
	cli_tree *t = NULL;
	if (cli_open() || !(t = cli_tree_open(a.pos[0])))
		return 1;
	sd_stat st;
	char norm[SD_PATH_MAX + 1];
	int rc = cli_tree_version_restore(t, a.pos[1], vid, &st);
	if (cli_tree_resolve(t, a.pos[1], norm, sizeof norm) < 0)
		snprintf(norm, sizeof norm, "%s", a.pos[1]);
	cli_tree_close(t);
	if (rc < 0)
		return cli_fail("restore", "%s: %s", a.pos[1],
				rc == -ENOENT ? "no such file, or it has no such version" : cli_errstr(rc));
	if (json)
		return cli_json_print(sd_json_stat(norm, NULL, &st), "restore");
	fputs("restored ", stdout);
	cli_human_str(stdout, norm);
	printf(" version %" PRId64 ": %" PRIu64 " %s (now %" PRId64 " versions)\n", vid, st.size,
	       st.sha256, st.versions);
	return 0;
}

/* ------------------------------------------------------------ trash */

typedef struct trash_ctx {
	int json;
	cli_jlist jl;
	/* --restore/--purge ITEM: find it */
	const char *want;
	int64_t found;
	int64_t found_deleted;
} trash_ctx;

static int trash_print(void *arg, const sd_trash_item *it)
{
	trash_ctx *x = arg;
	if (x->json) {
		cli_jlist_add(&x->jl, sd_json_trash_item(it));
		return 0;
	}
	char when[40];
	sd_json_time_text(it->deleted, 1, when, sizeof when);
	printf("%-8" PRId64 " %s %-4s %12" PRIu64 " %6" PRId64 " ", it->id, when,
	       it->kind == SD_KIND_DIR ? "dir" : "file", it->size, it->files);
	cli_human_str(stdout, it->path);
	fputc('\n', stdout);
	return 0;
}

/* ITEM: an id, an entry name of /.trash ("<stamp>_<id>_<name>", with or
 * without "/.trash/"), or the path it was deleted from (the most recent). */
static int trash_find(void *arg, const sd_trash_item *it)
{
	trash_ctx *x = arg;
	const char *w = x->want;
	if (strncmp(w, "/.trash/", 8) == 0)
		w += 8;
	int64_t id;
	int hit = (parse_id(w, &id) == 0 && id == it->id) || strcmp(w, it->name) == 0 ||
		  (w[0] == '/' && strcmp(w, it->path) == 0);
	if (hit && (!x->found || it->deleted > x->found_deleted)) {
		x->found = it->id;
		x->found_deleted = it->deleted;
	}
	return 0;
}

int cli_cmd_trash(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"json", no_argument, NULL, 'J'},
	    {"restore", required_argument, NULL, 'r'},
	    {"to", required_argument, NULL, 't'},
	    {"purge", required_argument, NULL, 'p'},
	    {"empty", no_argument, NULL, 'e'},
	    {NULL, 0, NULL, 0},
	};
	trash_ctx x = {0, {0, 0}, NULL, 0, 0};
	const char *restore = NULL, *to = NULL, *purge = NULL;
	int empty = 0, c;
	cli_args a;
	cli_args_init(&a, argc, argv);
	while ((c = cli_next_opt(&a, NULL, lo)) != -1) {
		if (c == CLI_OPT_ERR)
			return 2;
		if (c == 'J')
			x.json = 1;
		else if (c == 'r')
			restore = a.val;
		else if (c == 't')
			to = a.val;
		else if (c == 'p')
			purge = a.val;
		else
			empty = 1;
	}
	if (a.npos != 1)
		return cli_usage_err("trash needs USER");
	if (!!restore + !!purge + empty > 1)
		return cli_usage_err("trash: one of --restore, --purge, --empty");
	if (to && !restore)
		return cli_usage_err("trash: --to goes with --restore");
	cli_tree *t = NULL;
	if (cli_open() || !(t = cli_tree_open(a.pos[0])))
		return 1;
	int rc;
	if (empty) {
		rc = cli_tree_trash_empty(t, 0);
		cli_tree_close(t);
		if (rc < 0)
			return cli_fail("trash", "%s", cli_errstr(rc));
		printf("emptied the trash of %s: %d items deleted for good\n", a.pos[0], rc);
		return 0;
	}
	if (!restore && !purge) {
		if (x.json)
			cli_jlist_begin(&x.jl);
		rc = cli_tree_trash_list(t, trash_print, &x);
		cli_tree_close(t);
		if (x.json && cli_jlist_end(&x.jl, "trash"))
			return 1;
		if (rc < 0)
			return cli_fail("trash", "%s", cli_errstr(rc));
		return 0;
	}
	x.want = restore ? restore : purge;
	rc = cli_tree_trash_list(t, trash_find, &x);
	if (rc >= 0 && !x.found)
		rc = -ENOENT;
	if (rc >= 0 && purge)
		rc = cli_tree_trash_empty(t, x.found);
	sd_stat st;
	if (rc >= 0 && restore)
		rc = cli_tree_trash_restore(t, x.found, to, &st);
	char norm[SD_PATH_MAX + 1] = "";
	if (rc >= 0 && restore && to && cli_tree_resolve(t, to, norm, sizeof norm) < 0)
		snprintf(norm, sizeof norm, "%s", to);
	cli_tree_close(t);
	if (rc < 0)
		return cli_fail("trash", "%s: %s", x.want,
				rc == -ENOENT  ? "no such item in the trash"
				: rc == -EEXIST ? "its place is taken (use --to PATH)"
						: cli_errstr(rc));
	if (purge) {
		printf("deleted item %" PRId64 " for good\n", x.found);
		return 0;
	}
	if (x.json)
		return cli_json_print(sd_json_stat(to ? norm : NULL, NULL, &st), "trash");
	printf("restored item %" PRId64 "%s", x.found, to ? " to " : "\n");
	if (to) {
		cli_human_str(stdout, norm);
		fputc('\n', stdout);
	}
	return 0;
}

/* ------------------------------------------------------------ rollback */

int cli_cmd_rollback(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"at", required_argument, NULL, 'a'},
	    {"json", no_argument, NULL, 'J'},
	    {NULL, 0, NULL, 0},
	};
	const char *at_s = NULL;
	int json = 0, c;
	cli_args a;
	cli_args_init(&a, argc, argv);
	while ((c = cli_next_opt(&a, NULL, lo)) != -1) {
		if (c == CLI_OPT_ERR)
			return 2;
		if (c == 'a')
			at_s = a.val;
		else
			json = 1;
	}
	if (a.npos != 2 || !at_s)
		return cli_usage_err("rollback needs USER PATH --at TIME");
	int64_t at = 0, ago;
	if (parse_at(at_s, &at, &ago))
		return 2;
	cli_tree *t = NULL;
	if (cli_open() || !(t = cli_tree_open(a.pos[0])))
		return 1;
	if (ago >= 0)
		at = cli_api->now(cli_core) * 1000 - ago;
	sd_rollback_report rep;
	char norm[SD_PATH_MAX + 1];
	int rc = cli_tree_rollback(t, a.pos[1], at, &rep);
	if (cli_tree_resolve(t, a.pos[1], norm, sizeof norm) < 0)
		snprintf(norm, sizeof norm, "%s", a.pos[1]);
	cli_tree_close(t);
	if (rc < 0)
		return cli_fail("rollback", "%s: %s", a.pos[1], cli_errstr(rc));
	if (json)
		return cli_json_print(sd_json_rollback(norm, at, &rep), "rollback");
	char when[40], undo[40];
	sd_json_time_text(at, 1, when, sizeof when);
	sd_json_time_text(rep.ts - 1, 1, undo, sizeof undo);
	fputs("rolled back ", stdout);
	cli_human_str(stdout, norm);
	printf(" to %s: %" PRId64 " restored, %" PRId64 " brought back, %" PRId64 " moved back, %" PRId64
	       " made anew, %" PRId64 " to the trash\n",
	       when, rep.restored, rep.revived, rep.moved, rep.created, rep.trashed);
	printf("undo with: storagectl rollback %s ", a.pos[0]);
	cli_human_str(stdout, norm);
	printf(" --at %s\n", undo);
	return 0;
}
