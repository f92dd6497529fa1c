/*
 * cmd_admin.c - storagectl stats, gc, fsck, journal: maintenance of the
 * whole store.
 *
 * stats and gc print the engine's sd_stats / sd_gc_report, whose JSON form
 * (util/sdjson) is the admin API's. fsck reports and journal rows are
 * core.h types the HTTP API never prints: journal's JSON is built here,
 * with jansson.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "core/conf.h"
#include "core/core.h"
#include "util/sdjson.h"

static const struct option json_opts[] = {
    {"json", no_argument, NULL, 'J'},
    {NULL, 0, NULL, 0},
};

/* ------------------------------------------------------------ stats, gc */

int cli_cmd_stats(int argc, char **argv)
{
	int json = 0, c;
	cli_args a;
	cli_args_init(&a, argc, argv);
	while ((c = cli_next_opt(&a, NULL, json_opts)) != -1) {
		if (c == CLI_OPT_ERR)
			return 2;
		json = 1;
	}
	if (a.npos)
		return cli_usage_err("stats takes no arguments");
	if (cli_open())
		return 1;
	sd_stats s;
	memset(&s, 0, sizeof s);
	int rc = cli_api->stats(cli_core, &s);
	if (rc < 0)
		return cli_fail("stats", "%s", cli_errstr(rc));
	if (json)
		return cli_json_print(sd_json_stats(&s), "stats");
	printf("users               %" PRId64 "\n", s.users);
	printf("files               %" PRId64 "\n", s.files);
	printf("directories         %" PRId64 "\n", s.dirs);
	printf("deleted (pending)   %" PRId64 "\n", s.deleted);
	printf("logical bytes       %" PRId64 "\n", s.logical_bytes);
	printf("stored bytes        %" PRId64 "\n", s.stored_bytes);
	printf("dedup ratio         %.2f\n", sd_json_dedup_ratio(&s));
	printf("blobs               %" PRId64 "\n", s.blobs);
	printf("unreferenced blobs  %" PRId64 "\n", s.unreferenced_blobs);
	printf("versions            %" PRId64 "\n", s.versions);
	printf("journal rows        %" PRId64 "\n", s.journal_rows);
	return 0;
}

int cli_cmd_gc(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"now", no_argument, NULL, 'n'},
	    {"json", no_argument, NULL, 'J'},
	    {NULL, 0, NULL, 0},
	};
	int now = 0, json = 0, c;
	cli_args a;
	cli_args_init(&a, argc, argv);
	while ((c = cli_next_opt(&a, NULL, lo)) != -1) {
		if (c == CLI_OPT_ERR)
			return 2;
		if (c == 'n')
			now = 1;
		else
			json = 1;
	}
	if (a.npos)
		return cli_usage_err("gc takes no arguments");
	if (cli_open())
		return 1;
	sd_gc_report r;
	memset(&r, 0, sizeof r);
	int rc = cli_api->gc_run(cli_core, now, &r);
	if (rc < 0)
		return cli_fail("gc", "%s", cli_errstr(rc));
	if (json)
		return cli_json_print(sd_json_gc_report(&r), "gc");
	printf("gc%s: %" PRId64 " nodes purged, %" PRId64 " old versions dropped, %" PRId64
	       " journal rows pruned, %" PRId64 " blobs removed, %" PRId64
	       " bytes freed, %" PRId64 " temp files removed, disk %d%% used\n",
	       now ? " --now" : "", r.nodes_purged, r.versions_dropped, r.journal_pruned,
	       r.blobs_removed, r.bytes_freed, r.temps_removed, r.disk_used_pct);
	return 0;
}

/* ------------------------------------------------------------ fsck */

static void fsck_line(void *arg, const char *line)
{
	(void)arg;
	printf("%s\n", line);
	fflush(stdout);
}

int cli_cmd_fsck(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"repair", no_argument, NULL, 'r'},
	    {"deep", no_argument, NULL, 'd'},
	    {NULL, 0, NULL, 0},
	};
	int repair = 0, flags = 0, c;
	cli_args a;
	cli_args_init(&a, argc, argv);
	while ((c = cli_next_opt(&a, NULL, lo)) != -1) {
		if (c == CLI_OPT_ERR)
			return 2;
		if (c == 'r')
			repair = 1;
		else
			flags |= SD_FSCK_DEEP;
	}
	if (a.npos)
		return cli_usage_err("fsck takes no arguments");
	if (repair)
		flags |= SD_FSCK_REPAIR;
	if (cli_open())
		return 1;
	sd_fsck_report r;
	memset(&r, 0, sizeof r);
	int rc = sd_core_fsck(cli_core, flags, &r, fsck_line, NULL);
	if (rc < 0)
		return cli_fail("fsck", "%s", cli_errstr(rc));
	int64_t problems = r.bad_hash + r.missing + r.orphans + r.bad_refs + r.bad_used;
	printf("fsck: %" PRId64 " blobs checked, %" PRId64 " bad hash, %" PRId64 " missing, %" PRId64
	       " orphan files, %" PRId64 " bad refs, %" PRId64 " bad usage, %" PRId64
	       " crash leftovers, %" PRId64 " repaired\n",
	       r.blobs_checked, r.bad_hash, r.missing, r.orphans, r.bad_refs, r.bad_used,
	       r.adoptable, r.repaired);
	if (problems == 0) {
		printf("fsck: clean\n");
		return 0;
	}
	/* repaired also counts adopted crash leftovers, which are no problem */
	if (repair && r.repaired >= problems + r.adoptable) {
		printf("fsck: all %" PRId64 " problems repaired\n", problems);
		return 0;
	}
	if (repair)
		return cli_fail("fsck", "%" PRId64 " problems found, %" PRId64 " not repaired",
				problems, problems - r.repaired);
	return cli_fail("fsck", "%" PRId64 " problems found (run fsck --repair)", problems);
}

/* ------------------------------------------------------------ journal */

/* Parse an absolute UTC time "YYYY-MM-DDTHH:MM[:SS][Z]", "YYYY-MM-DD
 * HH:MM[:SS]" or "YYYY-MM-DD" into ms. 0 or -EINVAL. */
static int parse_iso(const char *s, int64_t *out_ms)
{
	static const char *fmts[] = {"%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S",
				     "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d", NULL};
	for (int i = 0; fmts[i]; i++) {
		struct tm tm;
		memset(&tm, 0, sizeof tm);
		const char *end = strptime(s, fmts[i], &tm);
		if (!end)
			continue;
		if (*end == 'Z')
			end++;
		if (*end)
			continue;
		time_t t = timegm(&tm);
		if (t == (time_t)-1)
			return -EINVAL;
		*out_ms = (int64_t)t * 1000;
		return 0;
	}
	return -EINVAL;
}

typedef struct journal_ctx {
	int json;
	cli_jlist jl;
} journal_ctx;

/* {"seq","ts","user","op","path","detail"}: ts as time text with ms,
 * absent strings as null. */
static json_t *journal_json(const sd_journal_entry *r, const char *ts)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	int bad = json_object_set_new(o, "seq", json_integer(r->seq)) < 0;
	bad |= json_object_set_new(o, "ts", json_string(ts)) < 0;
	bad |= json_object_set_new(o, "user", sd_json_string(r->user)) < 0;
	bad |= json_object_set_new(o, "op", sd_json_string(r->op)) < 0;
	bad |= json_object_set_new(o, "path", sd_json_string(r->path)) < 0;
	bad |= json_object_set_new(o, "detail", sd_json_string(r->detail)) < 0;
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int journal_cb(void *arg, const sd_journal_entry *r)
{
	journal_ctx *jc = arg;
	char iso[40];
	sd_json_time_text(r->ts, 1, iso, sizeof iso);
	if (jc->json) {
		cli_jlist_add(&jc->jl, journal_json(r, iso));
		return 0;
	}
	printf("%s %s %s ", iso, r->user && *r->user ? r->user : "-", r->op ? r->op : "-");
	cli_human_str(stdout, r->path && *r->path ? r->path : "-");
	if (r->detail && *r->detail) {
		fputc(' ', stdout);
		cli_human_str(stdout, r->detail);
	}
	fputc('\n', stdout);
	return 0;
}

int cli_cmd_journal(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"json", no_argument, NULL, 'J'},
	    {"since", required_argument, NULL, 's'},
	    {"user", required_argument, NULL, 'u'},
	    {NULL, 0, NULL, 0},
	};
	const char *since_s = NULL, *user = NULL;
	journal_ctx jc = {0, {0, 0}};
	int c;
	cli_args a;
	cli_args_init(&a, argc, argv);
	while ((c = cli_next_opt(&a, NULL, lo)) != -1) {
		if (c == CLI_OPT_ERR)
			return 2;
		if (c == 'J')
			jc.json = 1;
		else if (c == 's')
			since_s = a.val;
		else
			user = a.val;
	}
	if (a.npos)
		return cli_usage_err("journal takes no positional arguments");
	int64_t since = 0, ago = 0;
	int relative = 0;
	if (since_s) {
		if (parse_iso(since_s, &since) == 0)
			;
		else if (sd_conf_parse_duration(since_s, &ago) == 0 && ago >= 0)
			relative = 1;
		else
			return cli_usage_err("bad time '%s' (2026-11-21T10:00:00 UTC, or a duration "
					     "like 10m meaning ago)",
					     since_s);
	}
	if (cli_open())
		return 1;
	if (relative) {
		since = cli_api->now(cli_core) * 1000 - ago;
		if (since <= 0)
			since = 1;
	}
	if (jc.json)
		cli_jlist_begin(&jc.jl);
	int rc = cli_api->journal(cli_core, since, user, 0, journal_cb, &jc);
	if (jc.json && cli_jlist_end(&jc.jl, "journal"))
		return 1;
	if (rc < 0)
		return cli_fail("journal", "%s", cli_errstr(rc));
	return 0;
}
