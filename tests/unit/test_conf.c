/*
 * test_conf.c - core/conf.c (value parsers, the [storaged] table, file
 * loading and its error messages, sd_conf_apply, docs) and core/log.c
 * (line format, escaping, level filter, reopen).
 */
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>

#include "testutil.h"
#include "core/log.h"

#ifndef SD_MODULE_DIR
#define SD_MODULE_DIR "/usr/local/lib/storaged"
#endif

/* ---------------------------------------------------------------- helpers */

static char *tdir;  /* per-test temp dir (realpath'd) */
static char *tpath; /* tdir/s.conf */

static void setup(void)
{
	char *d = tu_tempdir();
	tdir = realpath(d, NULL);
	ck_assert_ptr_nonnull(tdir);
	free(d);
	tpath = NULL;
}

static void teardown(void)
{
	tu_rmrf(tdir);
	free(tdir);
	free(tpath);
}

/* Writes text as tdir/s.conf and loads it. */
static int load_text(const char *text, sd_conf *c, char *err, size_t errlen)
{
	free(tpath);
	tpath = tu_write_file(tdir, "s.conf", text);
	return sd_conf_load(tpath, c, err, errlen);
}

/* Loading text must fail with -SD_ECONFIG and a message containing every
 * given fragment; "@L" in a fragment stands for "s.conf:L:" */
static void expect_error(const char *text, const char *frag1, const char *frag2, const char *frag3)
{
	sd_conf c;
	char err[1024];
	int rc = load_text(text, &c, err, sizeof err);
	ck_assert_msg(rc == -SD_ECONFIG, "expected -SD_ECONFIG, got %d (err '%s') for:\n%s", rc, err,
		      text);
	const char *frags[] = {frag1, frag2, frag3};
	for (int i = 0; i < 3; i++) {
		if (!frags[i])
			continue;
		ck_assert_msg(strstr(err, frags[i]) != NULL, "error '%s' lacks '%s'", err, frags[i]);
	}
	/* *out left freed */
	ck_assert_ptr_null(c.data_dir);
	ck_assert_ptr_null(c.sections);
	ck_assert_ptr_null(c.config_path);
	ck_assert_uint_eq(c.nsections, 0);
	/* the message names the file as given */
	ck_assert_msg(strncmp(err, tpath, strlen(tpath)) == 0, "error '%s' does not start with the file", err);
}

/* ---------------------------------------------------------------- parsers */

START_TEST(t_parse_bool)
{
	static const struct {
		const char *s;
		int v;
	} ok[] = {{"yes", 1}, {"no", 0}, {"true", 1}, {"false", 0}, {"on", 1},
		  {"off", 0}, {"1", 1},  {"0", 0},      {"YES", 1},  {"Off", 0}};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		int v = -1;
		ck_assert_msg(sd_conf_parse_bool(ok[i].s, &v) == 0, "'%s' rejected", ok[i].s);
		ck_assert_int_eq(v, ok[i].v);
	}
	static const char *const bad[] = {"", "2", "yess", "y", "n", "nope", "1 ", "enable", NULL};
	for (int i = 0; bad[i]; i++) {
		int v = 7;
		ck_assert_msg(sd_conf_parse_bool(bad[i], &v) == -EINVAL, "'%s' accepted", bad[i]);
		ck_assert_int_eq(v, 7);
	}
}
END_TEST

START_TEST(t_parse_int)
{
	static const struct {
		const char *s;
		int64_t v;
	} ok[] = {{"0", 0},
		  {"42", 42},
		  {"-5", -5},
		  {"+7", 7},
		  {"007", 7},
		  {"9223372036854775807", INT64_MAX},
		  {"-9223372036854775808", INT64_MIN}};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		int64_t v = -1;
		ck_assert_msg(sd_conf_parse_int(ok[i].s, &v) == 0, "'%s' rejected", ok[i].s);
		ck_assert_msg(v == ok[i].v, "'%s' -> %lld", ok[i].s, (long long)v);
	}
	static const char *const bad[] = {"",	  "-",	   "+",	   "12a",
					  "0x10", "1 2",   "1.5",  "9223372036854775808",
					  "-9223372036854775809",  "99999999999999999999", "4K", NULL};
	for (int i = 0; bad[i]; i++) {
		int64_t v = 7;
		ck_assert_msg(sd_conf_parse_int(bad[i], &v) == -EINVAL, "'%s' accepted", bad[i]);
		ck_assert_int_eq(v, 7);
	}
}
END_TEST

START_TEST(t_parse_size)
{
	static const struct {
		const char *s;
		int64_t v;
	} ok[] = {{"0", 0},
		  {"4096", 4096},
		  {"64K", 65536},
		  {"64k", 65536},
		  {"4M", 4194304},
		  {"2G", 2147483648LL},
		  {"1T", 1099511627776LL},
		  {"4MB", 4194304},
		  {"4MiB", 4194304},
		  {"64KiB", 65536},
		  {"64KB", 65536},
		  {"512B", 512},
		  {"4 M", 4194304},
		  {"8388607T", 8388607LL << 40},
		  {"9223372036854775807", INT64_MAX}};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		int64_t v = -1;
		ck_assert_msg(sd_conf_parse_size(ok[i].s, &v) == 0, "'%s' rejected", ok[i].s);
		ck_assert_msg(v == ok[i].v, "'%s' -> %lld", ok[i].s, (long long)v);
	}
	static const char *const bad[] = {"",	   "4Q",   "-1",   "K",	   "4MBs", "4Mi",
					  "8E",	   "1.5G", "4M4",  "0x10", "+4",   "8388608T",
					  "9223372036854775807K",  "9223372036854775808", "4 M B", NULL};
	for (int i = 0; bad[i]; i++) {
		int64_t v = 7;
		ck_assert_msg(sd_conf_parse_size(bad[i], &v) == -EINVAL, "'%s' accepted", bad[i]);
		ck_assert_int_eq(v, 7);
	}
}
END_TEST

START_TEST(t_parse_duration)
{
	static const struct {
		const char *s;
		int64_t v;
	} ok[] = {{"500ms", 500},
		  {"30s", 30000},
		  {"10m", 600000},
		  {"2h", 7200000},
		  {"7d", 604800000},
		  {"1w", 604800000},
		  {"45", 45000},
		  {"0", 0},
		  {"0s", 0},
		  {"1h30m", 5400000},
		  {"1h 30m", 5400000},
		  {"1m30s250ms", 90250},
		  {"50ms", 50}};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		int64_t v = -1;
		ck_assert_msg(sd_conf_parse_duration(ok[i].s, &v) == 0, "'%s' rejected", ok[i].s);
		ck_assert_msg(v == ok[i].v, "'%s' -> %lld", ok[i].s, (long long)v);
	}
	static const char *const bad[] = {"",	      "-1s",   "-1",   "10x",  "10min", "5sec",
					  "1h30",     "ms",    "s",    "1.5h", "10 mins", "1S",
					  "9223372036854775807s",  "9223372036854775807", "2h-1m", NULL};
	for (int i = 0; bad[i]; i++) {
		int64_t v = 7;
		ck_assert_msg(sd_conf_parse_duration(bad[i], &v) == -EINVAL, "'%s' accepted", bad[i]);
		ck_assert_int_eq(v, 7);
	}
}
END_TEST

START_TEST(t_parse_percent)
{
	static const struct {
		const char *s;
		int v;
	} ok[] = {{"80%", 80}, {"80", 80}, {"0", 0}, {"100", 100}, {"100%", 100}, {"5 %", 5}};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		int v = -1;
		ck_assert_msg(sd_conf_parse_percent(ok[i].s, &v) == 0, "'%s' rejected", ok[i].s);
		ck_assert_int_eq(v, ok[i].v);
	}
	static const char *const bad[] = {"", "101", "-1", "80%%", "abc", "%", "50.5", "1000%", NULL};
	for (int i = 0; bad[i]; i++) {
		int v = 7;
		ck_assert_msg(sd_conf_parse_percent(bad[i], &v) == -EINVAL, "'%s' accepted", bad[i]);
		ck_assert_int_eq(v, 7);
	}
}
END_TEST

START_TEST(t_parse_listen)
{
	static const struct {
		const char *s, *host;
		int port;
	} ok[] = {{"127.0.0.1:2121", "127.0.0.1", 2121},
		  {"[::1]:21", "::1", 21},
		  {"[::]:443", "::", 443},
		  {"[2001:db8::7]:8080", "2001:db8::7", 8080},
		  {":8080", "0.0.0.0", 8080},
		  {"8080", "0.0.0.0", 8080},
		  {"*:21", "0.0.0.0", 21},
		  {"localhost:21", "127.0.0.1", 21},
		  {"0.0.0.0:65535", "0.0.0.0", 65535},
		  {"10.1.2.3:1", "10.1.2.3", 1}};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		char *host = NULL;
		int port = -1;
		ck_assert_msg(sd_conf_parse_listen(ok[i].s, &host, &port) == 0, "'%s' rejected", ok[i].s);
		ck_assert_str_eq(host, ok[i].host);
		ck_assert_int_eq(port, ok[i].port);
		free(host);
	}
	static const char *const bad[] = {
	    "",		    "::1:21",	      "127.0.0.1",   "127.0.0.1:0", "127.0.0.1:65536",
	    "host.example:21", "[::1]21",     "[::1]:",	    "[]:21",	   "1.2.3.4:21x",
	    "[zz]:21",	    "1.2.3:21",	      "[127.0.0.1]:21", "127.0.0.1:-1", "::1",
	    "[::1",	    "127.0.0.1:2121:1", " 127.0.0.1:21", "0", NULL};
	for (int i = 0; bad[i]; i++) {
		char *host = NULL;
		int port = -1;
		ck_assert_msg(sd_conf_parse_listen(bad[i], &host, &port) == -EINVAL, "'%s' accepted",
			      bad[i]);
		ck_assert_ptr_null(host);
		ck_assert_int_eq(port, -1);
	}
}
END_TEST

/* ---------------------------------------------------------------- defaults */

static void check_defaults(const sd_conf *c, const char *dir)
{
	char want[1024];
	snprintf(want, sizeof want, "%s/var", dir);
	ck_assert_str_eq(c->data_dir, want);
	ck_assert_str_eq(c->module_dir, SD_MODULE_DIR);
	ck_assert_str_eq(c->log_level_name, "info");
	ck_assert_int_eq(c->log_level, SD_LOG_INFO);
	ck_assert_str_eq(c->log_file, "");
	ck_assert_str_eq(c->durability_name, "full");
	ck_assert_int_eq(c->durability_full, 1);
	ck_assert_int_eq(c->write_buffer, 4 << 20);
	ck_assert_int_eq(c->writer_threads, 2);
	ck_assert_int_eq(c->db_readers, 8);
	ck_assert_int_eq(c->busy_timeout, 10000);
	ck_assert_int_eq(c->checkpoint_interval, 60000);
	ck_assert_int_eq(c->deleted_retention, 7LL * 86400000);
	ck_assert_int_eq(c->version_retention, 30LL * 86400000);
	ck_assert_int_eq(c->journal_retention, 365LL * 86400000);
	ck_assert_int_eq(c->unreferenced_min_age, 86400000);
	ck_assert_int_eq(c->disk_high_water, 80);
	ck_assert_int_eq(c->cleaner_interval, 600000);
	ck_assert_int_eq(c->temp_max_age, 86400000);
	ck_assert_int_eq(c->auth_fail_delay, 1000);
	ck_assert_int_eq(c->auth_max_failures, 10);
	ck_assert_int_eq(c->auth_block_time, 900000);
	ck_assert_int_eq(c->auth_max_concurrent, 2);
	ck_assert_int_eq(c->challenge_ranges, 4);
	ck_assert_int_eq(c->challenge_range_size, 65536);
	ck_assert_int_eq(c->challenge_ttl, 300000);
	ck_assert_str_eq(c->config_dir, dir);
}

START_TEST(t_defaults)
{
	sd_conf c;
	char err[512];
	ck_assert_int_eq(sd_conf_defaults(&c, tdir, err, sizeof err), 0);
	check_defaults(&c, tdir);
	ck_assert_uint_eq(c.nsections, 0);
	sd_conf_free(&c);
	ck_assert_ptr_null(c.data_dir);

	/* an empty file and a file with an empty [storaged] give the same */
	ck_assert_int_eq(load_text("", &c, err, sizeof err), 0);
	check_defaults(&c, tdir);
	sd_conf_free(&c);
	ck_assert_int_eq(load_text("# nothing\n[storaged]\n", &c, err, sizeof err), 0);
	check_defaults(&c, tdir);
	ck_assert_str_eq(c.config_path, tpath);
	sd_conf_free(&c);
	sd_conf_free(&c); /* twice is harmless */
}
END_TEST

START_TEST(t_every_key)
{
	sd_conf c;
	char err[512];
	const char *text = "[storaged]\n"
			   "data_dir = /srv/storaged\n"
			   "module_dir = mods\n"
			   "log_level = debug\n"
			   "log_file = logs/storaged.log\n"
			   "durability = normal\n"
			   "write_buffer = 8M\n"
			   "writer_threads = 4\n"
			   "db_readers = 16\n"
			   "busy_timeout = 2s\n"
			   "checkpoint_interval = 30s\n"
			   "deleted_retention = 0\n"
			   "unreferenced_min_age = 1h\n"
			   "disk_high_water = 95%\n"
			   "cleaner_interval = 100ms\n"
			   "temp_max_age = 2h\n"
			   "auth_fail_delay = 50ms\n"
			   "auth_max_failures = 20\n"
			   "auth_block_time = 2s\n"
			   "auth_max_concurrent = 4\n"
			   "challenge_ranges = 8\n"
			   "challenge_range_size = 4K\n"
			   "challenge_ttl = 1m\n";
	ck_assert_msg(load_text(text, &c, err, sizeof err) == 0, "%s", err);
	char want[1024];
	ck_assert_str_eq(c.data_dir, "/srv/storaged");
	snprintf(want, sizeof want, "%s/mods", tdir);
	ck_assert_str_eq(c.module_dir, want);
	ck_assert_int_eq(c.log_level, SD_LOG_DEBUG);
	snprintf(want, sizeof want, "%s/logs/storaged.log", tdir);
	ck_assert_str_eq(c.log_file, want);
	ck_assert_int_eq(c.durability_full, 0);
	ck_assert_int_eq(c.write_buffer, 8 << 20);
	ck_assert_int_eq(c.writer_threads, 4);
	ck_assert_int_eq(c.db_readers, 16);
	ck_assert_int_eq(c.busy_timeout, 2000);
	ck_assert_int_eq(c.checkpoint_interval, 30000);
	ck_assert_int_eq(c.deleted_retention, 0);
	ck_assert_int_eq(c.unreferenced_min_age, 3600000);
	ck_assert_int_eq(c.disk_high_water, 95);
	ck_assert_int_eq(c.cleaner_interval, 100);
	ck_assert_int_eq(c.temp_max_age, 7200000);
	ck_assert_int_eq(c.auth_fail_delay, 50);
	ck_assert_int_eq(c.auth_max_failures, 20);
	ck_assert_int_eq(c.auth_block_time, 2000);
	ck_assert_int_eq(c.auth_max_concurrent, 4);
	ck_assert_int_eq(c.challenge_ranges, 8);
	ck_assert_int_eq(c.challenge_range_size, 4096);
	ck_assert_int_eq(c.challenge_ttl, 60000);
	sd_conf_free(&c);
}
END_TEST

/* Every table row parses its own default and has a help line. */
START_TEST(t_table_sane)
{
	int n = 0;
	for (const sd_conf_item *it = sd_conf_table; it->name; it++, n++) {
		ck_assert_msg(it->help && strlen(it->help) > 10, "key %s lacks help", it->name);
		ck_assert_msg(it->def != NULL, "key %s lacks a default", it->name);
		for (const sd_conf_item *jt = it + 1; jt->name; jt++)
			ck_assert_msg(strcmp(it->name, jt->name) != 0, "key %s twice", it->name);
	}
	/* 29, + blob_store, cache_dir, cache_size, store_capacity, + upload_expiry,
	 * max_uploads_per_user, log_format, access_log, xferlog and 10 hook_ and
	 * webhook_ keys, + max_file_size, max_hole, user, disk_reserve */
	ck_assert_int_eq(n, 52);
}
END_TEST

/* ---------------------------------------------------------------- paths */

START_TEST(t_relative_paths)
{
	sd_conf c;
	char err[512], want[1024];
	ck_assert_int_eq(load_text("[storaged]\ndata_dir = ./data\nmodule_dir = .\nlog_file =\n", &c,
				   err, sizeof err),
			 0);
	snprintf(want, sizeof want, "%s/data", tdir);
	ck_assert_str_eq(c.data_dir, want);
	ck_assert_str_eq(c.module_dir, tdir);
	ck_assert_str_eq(c.log_file, "");
	sd_conf_free(&c);

	/* config given by a relative path: config_dir is still absolute */
	snprintf(want, sizeof want, "%s/etc", tdir);
	ck_assert_int_eq(mkdir(want, 0755), 0);
	char *p = tu_write_file(want, "x.conf", "[storaged]\ndata_dir = ../var\n");
	free(p);
	ck_assert_int_eq(chdir(tdir), 0);
	ck_assert_msg(sd_conf_load("etc/x.conf", &c, err, sizeof err) == 0, "%s", err);
	ck_assert_str_eq(c.config_dir, want);
	ck_assert_str_eq(c.config_path, "etc/x.conf");
	char var[1100];
	snprintf(var, sizeof var, "%s/../var", want);
	ck_assert_str_eq(c.data_dir, var);
	sd_conf_free(&c);

	/* a bare file name in the current directory */
	ck_assert_int_eq(chdir(want), 0);
	ck_assert_msg(sd_conf_load("x.conf", &c, err, sizeof err) == 0, "%s", err);
	ck_assert_str_eq(c.config_dir, want);
	sd_conf_free(&c);
}
END_TEST

/* ---------------------------------------------------------------- sections */

START_TEST(t_sections)
{
	sd_conf c;
	char err[512];
	const char *text = "[storaged]\n"
			   "data_dir = var\n"
			   "\n"
			   "[ftp]\n"
			   "enabled = yes\n"
			   "listen = 127.0.0.1:2121\n"
			   "passive_ports = 30000-30100\n"
			   "banner = Welcome; no # comment here\n"
			   "\n"
			   "[sftp6]\n"
			   "enabled = on\n"
			   "module = sftp\n"
			   "listen = [::1]:2222\n"
			   "\n"
			   "[http]\n"
			   "enabled = no\n"
			   "[empty]\n";
	ck_assert_msg(load_text(text, &c, err, sizeof err) == 0, "%s", err);
	ck_assert_uint_eq(c.nsections, 4);
	sd_conf_section *s = &c.sections[0];
	ck_assert_str_eq(s->name, "ftp");
	ck_assert_int_eq(s->line, 4);
	ck_assert_int_eq(s->enabled, 1);
	ck_assert_str_eq(s->module, "ftp");
	ck_assert_str_eq(s->listen_host, "127.0.0.1");
	ck_assert_int_eq(s->listen_port, 2121);
	ck_assert_uint_eq(s->nentries, 2);
	ck_assert_str_eq(s->entries[0].key, "passive_ports");
	ck_assert_str_eq(s->entries[0].value, "30000-30100");
	ck_assert_int_eq(s->entries[0].line, 7);
	ck_assert_str_eq(s->entries[1].key, "banner");
	ck_assert_str_eq(s->entries[1].value, "Welcome; no # comment here");
	ck_assert_int_eq(s->entries[1].line, 8);

	s = &c.sections[1];
	ck_assert_str_eq(s->name, "sftp6");
	ck_assert_str_eq(s->module, "sftp");
	ck_assert_str_eq(s->listen_host, "::1");
	ck_assert_int_eq(s->listen_port, 2222);
	ck_assert_uint_eq(s->nentries, 0);

	s = &c.sections[2];
	ck_assert_str_eq(s->name, "http");
	ck_assert_int_eq(s->enabled, 0);
	ck_assert_str_eq(s->module, "http");
	ck_assert_ptr_null(s->listen_host);
	ck_assert_int_eq(s->listen_port, 0);

	s = &c.sections[3];
	ck_assert_str_eq(s->name, "empty");
	ck_assert_int_eq(s->line, 17);
	ck_assert_int_eq(s->enabled, 0);
	sd_conf_free(&c);
}
END_TEST

/* How comments, blanks and line ends are read (docs/configuration.md). */
START_TEST(t_syntax_details)
{
	sd_conf c;
	char err[512];
	const char *text = "\xEF\xBB\xBF# a comment\r\n"
			   "; another\r\n"
			   "[storaged]   ; trailing comment\r\n"
			   "   log_level = warn   ; inline comment\r\n"
			   "\tdurability: normal\r\n"
			   "[ftp] # comment\n"
			   "  enabled = yes\n"
			   "  listen = :2121\n"
			   "  password = a#b;c\n"
			   "  quoted = \"x y\"\n"
			   "  empty =\n";
	ck_assert_msg(load_text(text, &c, err, sizeof err) == 0, "%s", err);
	ck_assert_int_eq(c.log_level, SD_LOG_WARN);
	ck_assert_int_eq(c.durability_full, 0);
	ck_assert_uint_eq(c.nsections, 1);
	sd_conf_section *s = &c.sections[0];
	ck_assert_int_eq(s->line, 6);
	ck_assert_str_eq(s->listen_host, "0.0.0.0");
	ck_assert_uint_eq(s->nentries, 3);
	ck_assert_str_eq(s->entries[0].value, "a#b;c");
	ck_assert_str_eq(s->entries[1].value, "\"x y\"");
	ck_assert_str_eq(s->entries[2].key, "empty");
	ck_assert_str_eq(s->entries[2].value, "");
	ck_assert_int_eq(s->entries[2].line, 11);
	sd_conf_free(&c);
}
END_TEST

/* ---------------------------------------------------------------- errors */

START_TEST(t_err_unknown_storaged_key)
{
	expect_error("[storaged]\ndata_dir = var\ndta_dir = x\n", "s.conf:3: [storaged] unknown key 'dta_dir'",
		     NULL, NULL);
}
END_TEST

START_TEST(t_err_bad_value)
{
	expect_error("[storaged]\n\nwrite_buffer = 4Q\n",
		     "s.conf:3: [storaged] bad size '4Q' for key 'write_buffer'", NULL, NULL);
	expect_error("[storaged]\nbusy_timeout = 10 minutes\n",
		     "s.conf:2: [storaged] bad duration '10 minutes' for key 'busy_timeout'", NULL, NULL);
	expect_error("[storaged]\ndisk_high_water = 120%\n",
		     "s.conf:2: [storaged] bad percentage '120%' for key 'disk_high_water'", NULL, NULL);
	expect_error("[storaged]\nwriter_threads = two\n",
		     "s.conf:2: [storaged] bad integer 'two' for key 'writer_threads'", NULL, NULL);
	expect_error("[storaged]\nlog_level = loud\n", "s.conf:2:", "'loud'", "key 'log_level'");
	expect_error("[storaged]\n\n\ndurability = maybe\n", "s.conf:4:", "'maybe'", "key 'durability'");
	expect_error("[storaged]\ndata_dir =\n", "s.conf:2:", "data_dir", "empty");
	expect_error("[ftp]\nenabled = perhaps\nlisten = :21\n", "s.conf:2: [ftp]", "'perhaps'",
		     "key 'enabled'");
	expect_error("[ftp]\nenabled = yes\nlisten = ::1:21\n", "s.conf:3: [ftp]", "'::1:21'",
		     "key 'listen'");
	expect_error("[ftp]\nmodule = ../evil\n", "s.conf:2: [ftp]", "'../evil'", "key 'module'");
}
END_TEST

START_TEST(t_err_out_of_range)
{
	expect_error("[storaged]\nwrite_buffer = 1K\n",
		     "s.conf:2: [storaged] value '1K' for key 'write_buffer' out of range (64K..256M)",
		     NULL, NULL);
	expect_error("[storaged]\nwrite_buffer = 512M\n", "s.conf:2:", "'write_buffer' out of range",
		     NULL);
	expect_error("[storaged]\nwriter_threads = 0\n", "s.conf:2:", "'writer_threads' out of range (1..64)",
		     NULL);
	expect_error("[storaged]\nwriter_threads = 65\n", "s.conf:2:", "'writer_threads' out of range",
		     NULL);
	expect_error("[storaged]\ndb_readers = 257\n", "s.conf:2:", "'db_readers' out of range (1..256)",
		     NULL);
	expect_error("[storaged]\nchallenge_ranges = 9\n", "s.conf:2:", "'challenge_ranges' out of range (1..8)",
		     NULL);
	expect_error("[storaged]\ncleaner_interval = 0\n", "s.conf:2:", "'cleaner_interval' out of range (10ms..30d)",
		     NULL);
	expect_error("[storaged]\nbusy_timeout = 0\n", "s.conf:2:", "'busy_timeout' out of range", NULL);
	expect_error("[storaged]\nauth_max_failures = -1\n", "s.conf:2:", "'auth_max_failures' out of range",
		     NULL);
	/* the limits themselves are fine */
	sd_conf c;
	char err[512];
	ck_assert_msg(load_text("[storaged]\nwrite_buffer = 64K\nwriter_threads = 64\n"
				"db_readers = 1\nchallenge_ranges = 1\n",
				&c, err, sizeof err) == 0,
		      "%s", err);
	sd_conf_free(&c);
	ck_assert_msg(load_text("[storaged]\nwrite_buffer = 256M\n", &c, err, sizeof err) == 0, "%s", err);
	sd_conf_free(&c);
}
END_TEST

START_TEST(t_err_duplicate_section)
{
	expect_error("[ftp]\nlisten = :21\n\n[http]\n[ftp]\nenabled = no\n",
		     "s.conf:5: duplicate section [ftp] (first at line 1)", NULL, NULL);
	/* an empty duplicate is still a duplicate */
	expect_error("[storaged]\n[storaged]\n", "s.conf:2: duplicate section [storaged]", NULL, NULL);
}
END_TEST

START_TEST(t_err_key_before_section)
{
	expect_error("# config\ndata_dir = var\n[storaged]\n", "s.conf:2:", "'data_dir'", "outside any section");
}
END_TEST

START_TEST(t_err_enabled_without_listen)
{
	expect_error("[storaged]\n\n[ftp]\nenabled = yes\nbanner = hi\n",
		     "s.conf:3: [ftp] enabled section needs a 'listen' key", NULL, NULL);
}
END_TEST

START_TEST(t_err_syntax)
{
	expect_error("[storaged]\n= value\n", "s.conf:2: empty key name", NULL, NULL);
	expect_error("[storaged]\nlog_level = info\n[ftp\n", "s.conf:3: syntax error", NULL, NULL);
	expect_error("[storaged]\nnovalue\n", "s.conf:2: syntax error", NULL, NULL);
	expect_error("[]\n", "s.conf:1: empty section name", NULL, NULL);
	expect_error("[FTP]\n", "s.conf:1: bad section name", NULL, NULL);
	expect_error("[ftp] x\n", "s.conf:1: unexpected text after section header", NULL, NULL);
	expect_error("[storaged]\nlog_level = info\nlog_level = debug\n",
		     "s.conf:3: [storaged] duplicate key 'log_level' (first at line 2)", NULL, NULL);
	expect_error("[ftp]\nlisten = :21\nlisten = :22\n", "s.conf:3: [ftp] duplicate key 'listen'", NULL, NULL);
	expect_error("[ftp]\nx = 1\nx = 2\n", "s.conf:3: [ftp] duplicate key 'x'", NULL, NULL);
	expect_error("[my-ftp]\nenabled = yes\nlisten = :21\n", "s.conf:1: [my-ftp]", "module", NULL);

	/* a line longer than inih's buffer is refused, not cut */
	char text[600];
	snprintf(text, sizeof text, "[storaged]\ndata_dir = /%0300d\n", 0);
	expect_error(text, "s.conf:2: line too long", NULL, NULL);
	/* the first error wins */
	expect_error("[storaged]\nbad key line\nx = 1\n", "s.conf:2: syntax error", NULL, NULL);
	expect_error("[storaged]\nzz = 1\nbad key line\n", "s.conf:2: [storaged] unknown key 'zz'", NULL, NULL);
}
END_TEST

START_TEST(t_err_missing_file)
{
	sd_conf c;
	char err[512], p[1024];
	snprintf(p, sizeof p, "%s/nope.conf", tdir);
	ck_assert_int_eq(sd_conf_load(p, &c, err, sizeof err), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "nope.conf"));
	ck_assert_ptr_nonnull(strstr(err, "No such file"));
	ck_assert_ptr_null(c.config_path);
}
END_TEST

/* ---------------------------------------------------------------- apply */

typedef struct small_conf {
	char *name;
	char *dir;
	int flag;
	int64_t n;
	int64_t size;
	int64_t timeout;
	int pct;
	char *nodef;
	int64_t zero;
} small_conf;

static const sd_conf_item small_table[] = {
	{"name", SD_CONF_STR, offsetof(small_conf, name), "anon", "A name."},
	{"dir", SD_CONF_PATH, offsetof(small_conf, dir), "keys", "A directory."},
	{"flag", SD_CONF_BOOL, offsetof(small_conf, flag), "yes", "A flag."},
	{"n", SD_CONF_INT, offsetof(small_conf, n), "5", "A number."},
	{"size", SD_CONF_SIZE, offsetof(small_conf, size), "1M", "A size."},
	{"timeout", SD_CONF_DURATION, offsetof(small_conf, timeout), "30s", "A timeout."},
	{"pct", SD_CONF_PERCENT, offsetof(small_conf, pct), "50%", "A share."},
	{"nodef", SD_CONF_STR, offsetof(small_conf, nodef), NULL, "No default."},
	{"zero", SD_CONF_INT, offsetof(small_conf, zero), NULL, "No default."},
	{NULL, 0, 0, NULL, NULL},
};

static sd_conf_section mk_section(sd_conf_entry *e, size_t n)
{
	sd_conf_section s;
	memset(&s, 0, sizeof s);
	s.name = (char *)"small";
	s.line = 1;
	s.entries = e;
	s.nentries = n;
	return s;
}

START_TEST(t_apply_defaults)
{
	small_conf sc;
	memset(&sc, 0, sizeof sc);
	char err[512];
	sd_conf_section s = mk_section(NULL, 0);
	ck_assert_int_eq(sd_conf_apply(small_table, &sc, &s, "f.conf", "/etc/x", err, sizeof err), 0);
	ck_assert_str_eq(sc.name, "anon");
	ck_assert_str_eq(sc.dir, "/etc/x/keys");
	ck_assert_int_eq(sc.flag, 1);
	ck_assert_int_eq(sc.n, 5);
	ck_assert_int_eq(sc.size, 1 << 20);
	ck_assert_int_eq(sc.timeout, 30000);
	ck_assert_int_eq(sc.pct, 50);
	ck_assert_str_eq(sc.nodef, "");
	ck_assert_int_eq(sc.zero, 0);
	sd_conf_release(small_table, &sc);
	ck_assert_ptr_null(sc.name);
	ck_assert_ptr_null(sc.dir);
	sd_conf_release(small_table, &sc); /* twice is harmless */
	/* NULL section = defaults only */
	ck_assert_int_eq(sd_conf_apply(small_table, &sc, NULL, NULL, NULL, err, sizeof err), 0);
	ck_assert_str_eq(sc.dir, "keys");
	sd_conf_release(small_table, &sc);
}
END_TEST

START_TEST(t_apply_entries)
{
	sd_conf_entry e[] = {
	    {(char *)"name", (char *)"bob", 3},  {(char *)"dir", (char *)"/abs", 4},
	    {(char *)"flag", (char *)"off", 5},	 {(char *)"n", (char *)"-2", 6},
	    {(char *)"size", (char *)"2G", 7},	 {(char *)"timeout", (char *)"250ms", 8},
	    {(char *)"pct", (char *)"7", 9},	 {(char *)"nodef", (char *)"set", 10},
	    {(char *)"name", (char *)"carol", 11},
	};
	small_conf sc;
	memset(&sc, 0, sizeof sc);
	char err[512];
	sd_conf_section s = mk_section(e, sizeof e / sizeof e[0]);
	ck_assert_int_eq(sd_conf_apply(small_table, &sc, &s, "f.conf", "/etc/x", err, sizeof err), 0);
	ck_assert_str_eq(sc.name, "carol"); /* later entry wins (the loader forbids duplicates) */
	ck_assert_str_eq(sc.dir, "/abs");
	ck_assert_int_eq(sc.flag, 0);
	ck_assert_int_eq(sc.n, -2);
	ck_assert_int_eq(sc.size, 2LL << 30);
	ck_assert_int_eq(sc.timeout, 250);
	ck_assert_int_eq(sc.pct, 7);
	ck_assert_str_eq(sc.nodef, "set");
	sd_conf_release(small_table, &sc);
}
END_TEST

START_TEST(t_apply_errors)
{
	char err[512];
	small_conf sc;
	sd_conf_entry unknown[] = {{(char *)"name", (char *)"x", 2}, {(char *)"colour", (char *)"red", 9}};
	sd_conf_section s = mk_section(unknown, 2);
	memset(&sc, 0, sizeof sc);
	ck_assert_int_eq(sd_conf_apply(small_table, &sc, &s, "f.conf", "/d", err, sizeof err), -SD_ECONFIG);
	ck_assert_str_eq(err, "f.conf:9: [small] unknown key 'colour'");
	ck_assert_ptr_null(sc.name); /* released on error */
	ck_assert_ptr_null(sc.dir);

	sd_conf_entry badsize[] = {{(char *)"size", (char *)"4Q", 7}};
	s = mk_section(badsize, 1);
	memset(&sc, 0, sizeof sc);
	ck_assert_int_eq(sd_conf_apply(small_table, &sc, &s, "f.conf", "/d", err, sizeof err), -SD_ECONFIG);
	ck_assert_msg(strncmp(err, "f.conf:7: [small] bad size '4Q' for key 'size'", 46) == 0, "%s", err);
	ck_assert_ptr_null(sc.name);

	sd_conf_entry badbool[] = {{(char *)"flag", (char *)"maybe", 4}};
	s = mk_section(badbool, 1);
	ck_assert_int_eq(sd_conf_apply(small_table, &sc, &s, "f.conf", "/d", err, sizeof err), -SD_ECONFIG);
	ck_assert_ptr_nonnull(strstr(err, "f.conf:4: [small] bad boolean 'maybe' for key 'flag'"));

	/* a module section loaded from a file: unknown key names file:line */
	sd_conf c;
	ck_assert_int_eq(load_text("[small]\nenabled = yes\nlisten = :99\nname = x\ncolor = blue\n", &c, err,
				   sizeof err),
			 0);
	memset(&sc, 0, sizeof sc);
	ck_assert_int_eq(sd_conf_apply(small_table, &sc, &c.sections[0], c.config_path, c.config_dir, err,
				       sizeof err),
			 -SD_ECONFIG);
	char want[1024];
	snprintf(want, sizeof want, "%s:5: [small] unknown key 'color'", tpath);
	ck_assert_str_eq(err, want);
	sd_conf_free(&c);
}
END_TEST

/* ---------------------------------------------------------------- docs */

START_TEST(t_doc)
{
	char *d = sd_conf_doc("storaged", sd_conf_table);
	ck_assert_ptr_nonnull(strstr(d, "## [storaged]"));
	for (const sd_conf_item *it = sd_conf_table; it->name; it++) {
		char h[128];
		snprintf(h, sizeof h, "### `%s`\n", it->name);
		ck_assert_msg(strstr(d, h) != NULL, "doc lacks %s", it->name);
		ck_assert_ptr_nonnull(strstr(d, it->help));
	}
	ck_assert_ptr_nonnull(strstr(d, "- default: `4M`"));
	ck_assert_ptr_nonnull(strstr(d, "- range: 64K..256M"));
	ck_assert_ptr_nonnull(strstr(d, "- type: duration"));
	free(d);
	d = sd_conf_doc(NULL, small_table);
	ck_assert_ptr_null(strstr(d, "##  ["));
	ck_assert_ptr_nonnull(strstr(d, "### `nodef`\n\n- type: string\n- default: empty\n"));
	ck_assert_ptr_null(strstr(d, "range"));
	free(d);
}
END_TEST

/* ---------------------------------------------------------------- log */

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	char *buf = calloc(1, 65536);
	size_t n = fread(buf, 1, 65535, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

START_TEST(t_log_lines)
{
	char p[1024];
	snprintf(p, sizeof p, "%s/l.log", tdir);
	ck_assert_int_eq(sd_log_open(p, SD_LOG_INFO), 0);
	sd_log(SD_LOG_DEBUG, "core", "event=hidden");
	sd_log(SD_LOG_INFO, "core", "event=one n=%d", 1);
	sd_log(SD_LOG_WARN, "ftp", "event=two user=%s", "evil\nfake level=error\r\x01\x7f");
	sd_log_set_level(SD_LOG_DEBUG);
	ck_assert_int_eq(sd_log_get_level(), SD_LOG_DEBUG);
	sd_log(SD_LOG_DEBUG, "core", "event=shown");
	char big[20000];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	sd_log(SD_LOG_ERROR, "core", "event=big data=%s", big);
	sd_log_close();

	char *text = read_all(p);
	int lines = 0;
	for (char *q = text; *q; q++)
		lines += *q == '\n';
	ck_assert_int_eq(lines, 4);
	ck_assert_ptr_null(strstr(text, "hidden"));
	/* "2026-11-21T15:46:33.123Z level=info src=core event=one n=1" */
	ck_assert_int_eq(strlen(text) > 25, 1);
	ck_assert_int_eq(text[4], '-');
	ck_assert_int_eq(text[10], 'T');
	ck_assert_int_eq(text[19], '.');
	ck_assert_int_eq(text[23], 'Z');
	ck_assert_int_eq(strncmp(text + 24, " level=info src=core event=one n=1\n", 35), 0);
	ck_assert_ptr_nonnull(strstr(text, "level=warn src=ftp event=two user=evil\\nfake level=error\\r\\x01\\x7f\n"));
	ck_assert_ptr_nonnull(strstr(text, "level=debug src=core event=shown\n"));
	char *bigline = strstr(text, "level=error src=core event=big");
	ck_assert_ptr_nonnull(bigline);
	char *nl = strchr(bigline, '\n');
	ck_assert_ptr_nonnull(nl);
	ck_assert_int_le(nl - bigline, 8192);
	ck_assert_int_eq(strncmp(nl - 3, "...", 3), 0);
	free(text);

	ck_assert_int_eq(sd_log_level_parse("debug"), SD_LOG_DEBUG);
	ck_assert_int_eq(sd_log_level_parse("error"), SD_LOG_ERROR);
	ck_assert_int_eq(sd_log_level_parse("loud"), -1);
	ck_assert_str_eq(sd_log_level_name(SD_LOG_WARN), "warn");
}
END_TEST

START_TEST(t_log_reopen)
{
	char p[1024], rotated[1024];
	snprintf(p, sizeof p, "%s/r.log", tdir);
	snprintf(rotated, sizeof rotated, "%s/r.log.1", tdir);
	ck_assert_int_eq(sd_log_open(p, SD_LOG_INFO), 0);
	sd_log(SD_LOG_INFO, "core", "event=before");
	ck_assert_int_eq(rename(p, rotated), 0);
	sd_log(SD_LOG_INFO, "core", "event=after_rename");
	sd_log_reopen();
	sd_log(SD_LOG_INFO, "core", "event=after_reopen");
	sd_log_close();
	char *a = read_all(rotated), *b = read_all(p);
	ck_assert_ptr_nonnull(strstr(a, "event=before"));
	ck_assert_ptr_nonnull(strstr(a, "event=after_rename"));
	ck_assert_ptr_null(strstr(a, "event=after_reopen"));
	ck_assert_ptr_nonnull(strstr(b, "event=after_reopen"));
	ck_assert_ptr_null(strstr(b, "event=before"));
	free(a);
	free(b);

	snprintf(p, sizeof p, "%s/no/such/dir/x.log", tdir);
	ck_assert_int_eq(sd_log_open(p, SD_LOG_INFO), -ENOENT);
}
END_TEST

/* ---------------------------------------------------------------- suite */

static Suite *conf_suite(void)
{
	Suite *s = suite_create("conf");
	TCase *tc = tcase_create("parsers");
	tcase_add_test(tc, t_parse_bool);
	tcase_add_test(tc, t_parse_int);
	tcase_add_test(tc, t_parse_size);
	tcase_add_test(tc, t_parse_duration);
	tcase_add_test(tc, t_parse_percent);
	tcase_add_test(tc, t_parse_listen);
	suite_add_tcase(s, tc);

	tc = tcase_create("load");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, t_defaults);
	tcase_add_test(tc, t_every_key);
	tcase_add_test(tc, t_table_sane);
	tcase_add_test(tc, t_relative_paths);
	tcase_add_test(tc, t_sections);
	tcase_add_test(tc, t_syntax_details);
	tcase_add_test(tc, t_err_unknown_storaged_key);
	tcase_add_test(tc, t_err_bad_value);
	tcase_add_test(tc, t_err_out_of_range);
	tcase_add_test(tc, t_err_duplicate_section);
	tcase_add_test(tc, t_err_key_before_section);
	tcase_add_test(tc, t_err_enabled_without_listen);
	tcase_add_test(tc, t_err_syntax);
	tcase_add_test(tc, t_err_missing_file);
	suite_add_tcase(s, tc);

	tc = tcase_create("apply");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, t_apply_defaults);
	tcase_add_test(tc, t_apply_entries);
	tcase_add_test(tc, t_apply_errors);
	tcase_add_test(tc, t_doc);
	suite_add_tcase(s, tc);

	tc = tcase_create("log");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, t_log_lines);
	tcase_add_test(tc, t_log_reopen);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(conf_suite());
}
