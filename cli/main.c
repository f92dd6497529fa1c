/*
 * main.c - storagectl, the administration tool of storaged: global
 * options, the command table, dispatch, and the engine's lifetime.
 *
 * Design notes
 * ------------
 * storagectl opens the engine in-process on the same data directory as a
 * running daemon (SQLite in WAL mode makes concurrent processes safe; blob
 * files are immutable once renamed into place). It never touches SQLite or
 * the blob directory itself: every operation goes through the same function
 * table the front ends use (sd_core_api_table()), plus sd_core_fsck and
 * sd_core_session from core.h. So a file put here is the same stored object
 * the FTP, SFTP and HTTP front ends serve.
 *
 * The engine is opened with flags 0: no start-up recovery sweep (the daemon
 * may be running and own the temp files in flight) and no cleaner thread.
 *
 * The command table (cli_commands below) is the one list of commands: the
 * dispatcher matches the words of a command line against it (longest name
 * first, so "user key add" before "user") and the usage text is printed
 * from it. Each handler lives in the file of its group (see cli/cli.h).
 *
 * Invariants
 *  1. Usage errors are detected before the engine is opened, so a wrong
 *     command line exits 2 even when the configuration is missing: a
 *     handler parses and checks its whole command line, then calls
 *     cli_open().
 *  2. Exit status: 0 success, 1 failure (one line "storagectl: WHAT:
 *     REASON" on stderr per failure), 2 usage error (message + usage).
 *  3. The engine is opened at most once per process (cli_open) and closed
 *     here after the command, whatever it returned.
 *  4. Sizes chosen by the operator (quota, SIZE, DUR) go through the
 *     config parsers, so they accept exactly what storaged.conf accepts.
 *  5. --json output is built by util/sdjson, the same functions the HTTP
 *     admin API uses, so an object has the same fields in both.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/conf.h"
#include "core/core.h"
#include "core/log.h"
#include "util/util.h"

#ifndef SD_VERSION
#define SD_VERSION "unknown"
#endif

/* ------------------------------------------------------------ the table */

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);

#define G_USERS "users"
#define G_TOKENS "tokens"
#define G_FILES "files (as user USER)"
#define G_HISTORY "history (as user USER)"
#define G_MAINT "maintenance"
#define G_TEAMS "teams: groups and shared folders (docs/teams.md)"
#define G_LINKS "share links"

const cli_cmd cli_commands[] = {
    {"user add", G_USERS, "user add NAME [--password-stdin] [--quota SIZE] [--admin]", NULL,
     cli_cmd_user_add},
    {"user passwd", G_USERS, "user passwd NAME [--password-stdin]", NULL, cli_cmd_user_passwd},
    {"user disable", G_USERS, "user disable NAME | user enable NAME", NULL, cli_cmd_user_set},
    {"user enable", G_USERS, NULL, NULL, cli_cmd_user_set},
    {"user quota", G_USERS, "user quota NAME SIZE", "(0 = unlimited)", cli_cmd_user_set},
    {"user admin", G_USERS, "user admin NAME yes|no", NULL, cli_cmd_user_set},
    {"user list", G_USERS, "user list [--json]", NULL, cli_cmd_user_list},
    {"user key add", G_USERS, "user key add NAME PUBKEYFILE",
     "(OpenSSH .pub / authorized_keys; - = stdin)", cli_cmd_user_key_add},
    {"user key list", G_USERS, "user key list NAME [--json]", NULL, cli_cmd_user_key_list},
    {"user key remove", G_USERS, "user key remove NAME KEYID|FINGERPRINT", NULL,
     cli_cmd_user_key_remove},
    {"user delete", G_USERS, "user delete NAME",
     "(files: logical delete, purged by the cleaner)", cli_cmd_user_delete},
    {"token create", G_TOKENS, "token create NAME [--expires DUR] [--scope ro|rw]", NULL,
     cli_cmd_token_create},
    {"token revoke", G_TOKENS, "token revoke ID", NULL, cli_cmd_token_revoke},
    {"token list", G_TOKENS, "token list [NAME] [--json]", NULL, cli_cmd_token_list},
    {"group add", G_TEAMS, "group add NAME | group del NAME", NULL, cli_cmd_group_add},
    {"group del", G_TEAMS, NULL, NULL, cli_cmd_group_add},
    {"group member add", G_TEAMS, "group member add GROUP USER | group member rm GROUP USER",
     NULL, cli_cmd_group_member},
    {"group member rm", G_TEAMS, NULL, NULL, cli_cmd_group_member},
    {"group ls", G_TEAMS, "group ls [GROUP] [--json]", NULL, cli_cmd_group_list},
    {"share folder create", G_TEAMS, "share folder create NAME [--quota SIZE]",
     "(mounted at /NAME for those granted)", cli_cmd_share_create},
    {"share folder grant", G_TEAMS,
     "share folder grant NAME PATH --user USER|--group GROUP RIGHTS",
     "(RIGHTS: ro, rw, full, dropbox, none, or list,read,write,delete,rename,share)",
     cli_cmd_share_rule},
    {"share folder revoke", G_TEAMS, "share folder revoke NAME PATH --user USER|--group GROUP",
     NULL, cli_cmd_share_rule},
    {"share folder ls", G_TEAMS, "share folder ls [NAME] [--json]", NULL, cli_cmd_share_list},
    {"share folder quota", G_TEAMS, "share folder quota NAME SIZE", "(0 = unlimited)",
     cli_cmd_share_quota},
    {"share folder delete", G_TEAMS, "share folder delete NAME",
     "(files: logical delete, purged by the cleaner)", cli_cmd_share_delete},
    {"link create", G_LINKS,
     "link create USER PATH [--expires DUR] [--password-stdin] [--max-downloads N] [--upload] "
     "[--json]",
     "(prints the token once)", cli_cmd_link_create},
    {"link ls", G_LINKS, "link ls [USER] [--json]", NULL, cli_cmd_link_list},
    {"link revoke", G_LINKS, "link revoke ID", NULL, cli_cmd_link_revoke},
    {"put", G_FILES, "put USER LOCAL REMOTE", NULL, cli_cmd_put},
    {"get", G_FILES, "get USER REMOTE LOCAL", "(LOCAL - = stdout)", cli_cmd_get},
    {"ls", G_FILES, "ls USER [PATH] [--json]", NULL, cli_cmd_ls},
    {"rm", G_FILES, "rm USER PATH [-r]", NULL, cli_cmd_rm},
    {"mkdir", G_FILES, "mkdir USER PATH [-p]", NULL, cli_cmd_mkdir},
    {"import", G_FILES, "import USER LOCALDIR [REMOTEDIR] [-j N]", NULL, cli_cmd_import},
    {"versions", G_HISTORY, "versions USER PATH [--json]", NULL, cli_cmd_versions},
    {"restore", G_HISTORY, "restore USER PATH --version V [--json]", "(V: an id from versions)",
     cli_cmd_restore},
    {"trash", G_HISTORY, "trash USER [--json] [--restore ITEM [--to PATH] | --purge ITEM | --empty]",
     "(ITEM: id, /.trash entry or original path)", cli_cmd_trash},
    {"rollback", G_HISTORY, "rollback USER PATH --at TIME [--json]",
     "(TIME: 2026-11-21T10:00:00Z, or 10m ago)", cli_cmd_rollback},
    {"stats", G_MAINT, "stats [--json]", NULL, cli_cmd_stats},
    {"gc", G_MAINT, "gc [--now] [--json]", NULL, cli_cmd_gc},
    {"fsck", G_MAINT, "fsck [--repair] [--deep]", NULL, cli_cmd_fsck},
    {"journal", G_MAINT, "journal [--since TIME] [--user NAME] [--json]",
     "(TIME: 2026-11-21T10:00:00 UTC, or 10m ago)", cli_cmd_journal},
    {"journal verify", G_MAINT, "journal verify [--json]", "(check the hash chain)",
     cli_cmd_journal_verify},
    {"journal export", G_MAINT, "journal export [--since SEQ]", "(JSON lines, rows after SEQ)",
     cli_cmd_journal_export},
    {"replicate", G_MAINT, "replicate --to DIR|CONF [--max-rows N] [-q]",
     "(bring a copy up to date)", cli_cmd_replicate},
    {"version", G_MAINT, "version", NULL, cmd_version},
    {"help", NULL, NULL, NULL, cmd_help},
    {NULL, NULL, NULL, NULL, NULL},
};

#define NOTE_COL 32 /* usage lines are "  USAGE<pad to 32>NOTE" */

void cli_print_usage(FILE *f)
{
	fputs("usage: storagectl [-c FILE] [-v] COMMAND [ARGS...]\n"
	      "\n"
	      "  -c FILE   configuration (default: $STORAGED_CONF, else " CLI_DEFAULT_CONF ")\n"
	      "  -v        engine log messages (info and above) on stderr\n"
	      "\n",
	      f);
	const char *group = NULL;
	for (const cli_cmd *c = cli_commands; c->name; c++) {
		if (!c->usage)
			continue;
		if (!group || strcmp(group, c->group) != 0)
			fprintf(f, "%s:\n", group = c->group);
		if (!c->note)
			fprintf(f, "  %s\n", c->usage);
		else if (strlen(c->usage) < NOTE_COL)
			fprintf(f, "  %-*s%s\n", NOTE_COL, c->usage, c->note);
		else
			fprintf(f, "  %s\n  %*s%s\n", c->usage, NOTE_COL, "", c->note);
	}
}

static int cmd_help(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	cli_print_usage(stdout);
	return 0;
}

static int cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("storagectl %s\n", SD_VERSION);
	return 0;
}

/* How many leading words of `name` argv[0..argc) spells (*matched), and
 * how many words name has (*words). */
static void match_words(const char *name, int argc, char **argv, int *matched, int *words)
{
	*matched = *words = 0;
	int prefix_ok = 1;
	for (const char *p = name; *p;) {
		size_t n = strcspn(p, " ");
		if (prefix_ok && *words < argc && strlen(argv[*words]) == n &&
		    strncmp(argv[*words], p, n) == 0)
			(*matched)++;
		else
			prefix_ok = 0;
		(*words)++;
		p += n;
		p += *p == ' ';
	}
}

/* Run the command spelled by argv[0..] (argc >= 1). */
static int dispatch(int argc, char **argv)
{
	const cli_cmd *best = NULL;
	int best_words = 0, group_words = 0;
	for (const cli_cmd *c = cli_commands; c->name; c++) {
		int m, w;
		match_words(c->name, argc, argv, &m, &w);
		if (m == w && w > best_words) {
			best = c;
			best_words = w;
		} else if (m < w && m > group_words) {
			group_words = m;
		}
	}
	if (best) /* the handler's argv[0] is the last word of its name */
		return best->run(argc - best_words + 1, argv + best_words - 1);
	if (group_words == 0)
		return cli_usage_err("unknown command '%s'", argv[0]);

	/* the first words name a group ("user", "token", "user key") but no
	 * command in it */
	char group[64] = "";
	for (int i = 0; i < group_words; i++)
		snprintf(group + strlen(group), sizeof group - strlen(group), "%s%s", i ? " " : "",
			 argv[i]);
	const cli_cmd *only = NULL;
	int n = 0;
	for (const cli_cmd *c = cli_commands; c->name; c++) {
		int m, w;
		match_words(c->name, group_words, argv, &m, &w);
		if (m == group_words && w > group_words) {
			only = c;
			n++;
		}
	}
	if (n == 1 && only->usage)
		return cli_usage_err("%s", only->usage);
	if (group_words >= argc)
		return cli_usage_err("%s: missing subcommand", group);
	return cli_usage_err("%s: unknown subcommand '%s'", group, argv[group_words]);
}

/* ------------------------------------------------------------ the engine */

static const char *g_conf_path;
static int g_verbose;
static sd_conf g_conf;
static int g_conf_loaded;
sd_core *cli_core;
const sd_core_api *cli_api;

/* The configuration file cli_open loads. */
static const char *conf_path(void)
{
	const char *path = g_conf_path;
	if (!path)
		path = getenv("STORAGED_CONF");
	if (!path || !*path)
		path = CLI_DEFAULT_CONF;
	return path;
}

/* Run as root on a data directory owned by another user (the packaged
 * `storaged` user), become that user first: files storagectl creates (the
 * database's WAL, blobs, temp files) must stay writable by the daemon.
 * Returns 0, or 1 after printing why the switch failed. */
static int become_data_owner(const char *data_dir)
{
	struct stat st;
	if (geteuid() != 0 || stat(data_dir, &st) != 0 || st.st_uid == 0)
		return 0;
	if (setgroups(0, NULL) != 0 || setgid(st.st_gid) != 0 || setuid(st.st_uid) != 0)
		return cli_fail("open", "cannot switch to the owner (uid %u) of %s: %s",
				(unsigned)st.st_uid, data_dir, strerror(errno));
	return 0;
}

int cli_open(void)
{
	if (cli_core)
		return 0;
	char err[512];
	int rc = sd_conf_load(conf_path(), &g_conf, err, sizeof err);
	if (rc < 0)
		return cli_fail("config", "%s", err);
	g_conf_loaded = 1;
	if (g_verbose)
		sd_log_set_level(g_conf.log_level < SD_LOG_INFO ? g_conf.log_level : SD_LOG_INFO);
	if (become_data_owner(g_conf.data_dir))
		return 1;
	cli_core = sd_core_open(&g_conf, 0, err, sizeof err);
	if (!cli_core)
		return cli_fail("open", "%s", err);
	cli_api = sd_core_api_table();
	return 0;
}

sd_core *cli_open_second(const char *dir_or_conf, sd_conf *conf)
{
	char err[512];
	struct stat st;
	int is_conf = stat(dir_or_conf, &st) == 0 && S_ISREG(st.st_mode);
	if (sd_conf_load(is_conf ? dir_or_conf : conf_path(), conf, err, sizeof err) < 0) {
		cli_fail("config", "%s", err);
		return NULL;
	}
	if (!is_conf) {
		char *abs = NULL;
		if (dir_or_conf[0] == '/') {
			abs = sd_xstrdup(dir_or_conf);
		} else {
			char cwd[4096];
			if (!getcwd(cwd, sizeof cwd)) {
				sd_conf_free(conf);
				cli_fail("open", "cannot find the current directory: %s", strerror(errno));
				return NULL;
			}
			abs = sd_xasprintf("%s/%s", cwd, dir_or_conf);
		}
		free(conf->data_dir);
		conf->data_dir = abs;
	}
	sd_core *c = sd_core_open(conf, 0, err, sizeof err);
	if (!c) {
		cli_fail("open", "%s", err);
		sd_conf_free(conf);
	}
	return c;
}

static void cli_close(void)
{
	if (cli_core)
		sd_core_close(cli_core);
	cli_core = NULL;
	if (g_conf_loaded)
		sd_conf_free(&g_conf);
	g_conf_loaded = 0;
}

/* jansson allocates like the rest of storagectl: out of memory aborts
 * (CONVENTIONS 3), so a NULL from jansson means bad input, never OOM. */
static void *json_xmalloc(size_t n)
{
	return sd_xmalloc(n ? n : 1);
}

/* ------------------------------------------------------------ main */

int main(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	json_set_alloc_funcs(json_xmalloc, free);
	opterr = 0;
	for (;;) {
		/* '+': the first non-option is the command; ':': a missing
		 * value is reported as ':' */
		int at = optind;
		int c = getopt_long(argc, argv, "+:c:vh", lo, NULL);
		if (c == -1)
			break;
		switch (c) {
		case 'c':
			g_conf_path = optarg;
			break;
		case 'v':
			g_verbose = 1;
			break;
		case 'h':
			cli_print_usage(stdout);
			return 0;
		case 'V':
			printf("storagectl %s\n", SD_VERSION);
			return 0;
		case ':':
			return cli_usage_err("%s needs a FILE", argv[optind - 1]);
		default:
			if (strncmp(argv[at], "--", 2) == 0)
				return cli_usage_err("unknown option '%s'", argv[at]);
			return cli_usage_err("unknown option '-%c'", optopt);
		}
	}
	if (optind >= argc)
		return cli_usage_err("missing command");
	if (strcmp(argv[optind], "-") == 0 && strcmp(argv[optind - 1], "--") != 0)
		return cli_usage_err("unknown option '-'"); /* getopt calls "-" an operand */

	/* Engine log lines go to stderr; only warnings unless -v. */
	sd_log_open(NULL, g_verbose ? SD_LOG_INFO : SD_LOG_WARN);
	int rc = dispatch(argc - optind, argv + optind);
	fflush(stdout);
	cli_close();
	sd_log_close();
	if (ferror(stdout))
		rc = rc ? rc : cli_fail("output", "write error on stdout");
	return rc;
}
