/*
 * cmd_journal.c - storagectl journal verify, journal export, replicate:
 * the journal as evidence and as a feed (issue 20). The chain, the export
 * rows and the replay are the engine's (core.h, journal.c, replica.c);
 * this file parses command lines and prints.
 *
 *   journal verify [--json]          exit 0 when the chain is intact,
 *                                    1 naming the first row that breaks it
 *   journal export [--since SEQ]     one JSON object per line per row
 *                                    with seq > SEQ
 *   replicate --to DIR|CONF          bring a second data directory up to
 *                                    date (the engine opened on it too)
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "core/conf.h"
#include "core/core.h"
#include "util/sdjson.h"

/* A non-negative decimal integer argument; 0 or 2 after a usage error. */
static int parse_seq(const char *what, const char *s, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (!*s || *end || errno || v < 0)
		return cli_usage_err("bad %s '%s' (a number >= 0)", what, s);
	*out = v;
	return 0;
}

/* ------------------------------------------------------------ verify */

int cli_cmd_journal_verify(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"json", no_argument, NULL, 'J'},
	    {NULL, 0, NULL, 0},
	};
	int json = 0, c;
	cli_args a;
	cli_args_init(&a, argc, argv);
	while ((c = cli_next_opt(&a, NULL, lo)) != -1) {
		if (c == CLI_OPT_ERR)
			return 2;
		json = 1;
	}
	if (a.npos)
		return cli_usage_err("journal verify takes no arguments");
	if (cli_open())
		return 1;
	sd_journal_verify v;
	int rc = sd_core_journal_verify(cli_core, &v);
	if (rc < 0)
		return cli_fail("journal verify", "%s", cli_errstr(rc));
	if (json) {
		json_t *o = json_object();
		if (o) {
			json_object_set_new(o, "intact", json_boolean(v.bad_seq == 0));
			json_object_set_new(o, "anchor_seq", json_integer(v.anchor_seq));
			json_object_set_new(o, "anchor_hash", json_string(v.anchor_hash));
			json_object_set_new(o, "first", json_integer(v.first));
			json_object_set_new(o, "last", json_integer(v.last));
			json_object_set_new(o, "rows", json_integer(v.rows));
			json_object_set_new(o, "head_hash", json_string(v.head_hash));
			json_object_set_new(o, "bad_seq", v.bad_seq ? json_integer(v.bad_seq) : json_null());
			json_object_set_new(o, "reason", v.bad_seq ? json_string(v.reason) : json_null());
		}
		if (cli_json_print(o, "journal verify"))
			return 1;
	} else if (v.bad_seq == 0) {
		if (v.rows)
			printf("journal: intact: %" PRId64 " rows, seq %" PRId64 "..%" PRId64
			       " (chained from seq %" PRId64 ")\n",
			       v.rows, v.first, v.last, v.anchor_seq);
		else
			printf("journal: intact: no rows after seq %" PRId64 "\n", v.anchor_seq);
		printf("head: seq %" PRId64 " hash %s\n", v.rows ? v.last : v.anchor_seq, v.head_hash);
	} else {
		printf("journal: broken at seq %" PRId64 ": %s\n", v.bad_seq, v.reason);
		if (v.rows)
			printf("intact before it: %" PRId64 " rows, seq %" PRId64 "..%" PRId64 "\n", v.rows,
			       v.first, v.last);
	}
	if (v.bad_seq)
		return cli_fail("journal verify", "the chain breaks at seq %" PRId64, v.bad_seq);
	return 0;
}

/* ------------------------------------------------------------ export */

typedef struct export_ctx {
	int err;
} export_ctx;

static int export_cb(void *arg, const sd_journal_rec *r)
{
	export_ctx *x = arg;
	char iso[40];
	sd_json_time_text(r->ts, 1, iso, sizeof iso);
	json_t *o = json_object();
	if (!o) {
		x->err = 1;
		return 1;
	}
	json_t *args = json_null();
	if (r->args) {
		json_t *p = json_loads(r->args, JSON_REJECT_DUPLICATES, NULL);
		if (json_is_object(p))
			args = p;
		else {
			json_decref(p);
			args = sd_json_string(r->args); /* not an object: as stored */
		}
	}
	int bad = json_object_set_new(o, "seq", json_integer(r->seq)) < 0;
	bad |= json_object_set_new(o, "ts", json_string(iso)) < 0;
	bad |= json_object_set_new(o, "ts_ms", json_integer(r->ts)) < 0;
	bad |= json_object_set_new(o, "user", sd_json_string(r->user)) < 0;
	bad |= json_object_set_new(o, "op", sd_json_string(r->op)) < 0;
	bad |= json_object_set_new(o, "path", sd_json_string(r->path)) < 0;
	bad |= json_object_set_new(o, "detail", sd_json_string(r->detail)) < 0;
	bad |= json_object_set_new(o, "args", args) < 0;
	bad |= json_object_set_new(o, "prev", r->prev[0] ? json_string(r->prev) : json_null()) < 0;
	bad |= json_object_set_new(o, "hash", r->hash[0] ? json_string(r->hash) : json_null()) < 0;
	if (bad || json_dumpf(o, stdout, JSON_COMPACT | SD_JSON_DUMP_FLAGS) < 0) {
		json_decref(o);
		x->err = 1;
		return 1;
	}
	json_decref(o);
	fputc('\n', stdout);
	return 0;
}

int cli_cmd_journal_export(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"since", required_argument, NULL, 's'},
	    {NULL, 0, NULL, 0},
	};
	int64_t since = 0;
	int c;
	cli_args a;
	cli_args_init(&a, argc, argv);
	while ((c = cli_next_opt(&a, NULL, lo)) != -1) {
		if (c == CLI_OPT_ERR)
			return 2;
		if (parse_seq("SEQ", a.val, &since))
			return 2;
	}
	if (a.npos)
		return cli_usage_err("journal export takes no positional arguments");
	if (cli_open())
		return 1;
	export_ctx x = {0};
	int rc = sd_core_journal_export(cli_core, since, export_cb, &x);
	if (rc < 0)
		return cli_fail("journal export", "%s", cli_errstr(rc));
	if (x.err)
		return cli_fail("journal export", "cannot write a row as JSON");
	return 0;
}

/* ------------------------------------------------------------ replicate */

static void progress(void *arg, const sd_replicate_report *r)
{
	(void)arg;
	printf("replicate: at seq %" PRId64 " of %" PRId64 ": %" PRId64 " rows applied, %" PRId64
	       " files, %" PRId64 " contents copied (%" PRId64 " bytes)\n",
	       r->to_seq, r->target_seq, r->rows, r->files, r->blobs_copied, r->bytes_copied);
	fflush(stdout);
}

int cli_cmd_replicate(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"to", required_argument, NULL, 't'},
	    {"max-rows", required_argument, NULL, 'm'},
	    {"quiet", no_argument, NULL, 'q'},
	    {NULL, 0, NULL, 0},
	};
	const char *to = NULL;
	int64_t max_rows = 0;
	int quiet = 0, c;
	cli_args a;
	cli_args_init(&a, argc, argv);
	while ((c = cli_next_opt(&a, "q", lo)) != -1) {
		if (c == CLI_OPT_ERR)
			return 2;
		if (c == 't')
			to = a.val;
		else if (c == 'm' && parse_seq("N", a.val, &max_rows))
			return 2;
		else if (c == 'q')
			quiet = 1;
	}
	if (a.npos)
		return cli_usage_err("replicate takes no positional arguments (the copy is --to)");
	if (!to || !*to)
		return cli_usage_err("replicate needs --to DIR (a data directory) or --to CONF "
				     "(a storaged.conf naming one)");
	if (cli_open())
		return 1;
	sd_conf tconf;
	sd_core *dst = cli_open_second(to, &tconf);
	if (!dst)
		return 1;
	sd_replicate_report r;
	char err[512] = "";
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int rc = sd_core_replicate(cli_core, dst, max_rows, &r, quiet ? NULL : progress, NULL, err,
				   sizeof err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	sd_core_close(dst);
	if (rc < 0) {
		sd_conf_free(&tconf);
		return cli_fail("replicate", "%s", err[0] ? err : cli_errstr(rc));
	}
	if (r.rows == 0)
		printf("replicate: %s is up to date with source %s at seq %" PRId64 "\n",
		       tconf.data_dir, r.source, r.to_seq);
	else
		printf("replicate: %s now at seq %" PRId64 " of source %s (was %" PRId64
		       "): %" PRId64 " rows, %" PRId64 " files, %" PRId64 " contents copied (%" PRId64
		       " bytes) in %.2f s\n",
		       tconf.data_dir, r.to_seq, r.source, r.from_seq, r.rows, r.files, r.blobs_copied,
		       r.bytes_copied, secs);
	sd_conf_free(&tconf);
	return 0;
}
