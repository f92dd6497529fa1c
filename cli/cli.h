/*
 * cli.h - what the files of storagectl share.
 *
 *   main.c        global options, the command table, dispatch, usage text,
 *                 opening and closing the engine
 *   common.c      messages, per-command option parsing (getopt_long),
 *                 JSON output, small text helpers
 *   tree.c        acting as a user: the one place that turns a user name
 *                 into what the engine's tree calls take
 *   cmd_user.c    user ..., user key add|list|remove, user delete, token ...
 *   cmd_files.c   put, get, ls, rm, mkdir
 *   cmd_import.c  import
 *   cmd_admin.c   stats, gc, fsck, journal
 *   cmd_journal.c journal verify, journal export, replicate
 *   cmd_history.c versions, restore, trash, rollback
 *   cmd_team.c    group ..., share folder ..., link ... (teams, share links)
 *
 * A command handler gets the arguments after its own name (argv[0] is the
 * last word of the name, as getopt expects) and returns the exit status:
 * 0 success, 1 failure (after cli_fail() lines), 2 usage error (after
 * cli_usage_err()). It checks its whole command line before it calls
 * cli_open(), so a wrong command line exits 2 even without a usable
 * configuration.
 *
 * storagectl is a program, not a library: its shared symbols carry a cli_
 * prefix, apart from the sd_ / sd__ names of the engine it links.
 */
#ifndef SD_CLI_H
#define SD_CLI_H

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <jansson.h>

#include "core/storaged.h"

#define CLI_DEFAULT_CONF "/etc/storaged/storaged.conf"
#define CLI_CHUNK (1u << 20) /* upload/download copy chunk */
#define CLI_MAX_POS 8        /* positional arguments per command */

/* ------------------------------------------------------------ engine */

/* The engine and its function table, valid after cli_open() returned 0
 * (NULL before). */
extern sd_core *cli_core;
extern const sd_core_api *cli_api;

/* Load the configuration and open the engine (flags 0: no recovery sweep,
 * no cleaner thread; the daemon may be running). Opens it at most once per
 * process; main() closes it. Returns 0, or prints the reason and returns 1. */
int cli_open(void);
/* Open a second engine (replicate's copy), after cli_open: on the data
 * directory DIR with the settings of storagectl's configuration, or, when
 * dir_or_conf is a regular file, on the configuration it holds (*conf is
 * loaded either way; free it with sd_conf_free after sd_core_close).
 * NULL after printing why. */
struct sd_conf;
sd_core *cli_open_second(const char *dir_or_conf, struct sd_conf *conf);

/* ------------------------------------------------------------ commands */

typedef struct cli_cmd {
	const char *name;  /* its words: "put", "user key add" */
	const char *group; /* heading of its part of the usage text */
	const char *usage; /* line in the usage text; NULL: not listed */
	const char *note;  /* right-hand note in the usage text, or NULL */
	int (*run)(int argc, char **argv);
} cli_cmd;

/* The table (main.c), ended by a row whose name is NULL. */
extern const cli_cmd cli_commands[];

/* The usage text: from the table, so it lists exactly what dispatches. */
void cli_print_usage(FILE *f);

/* Handlers, one per row of the table. */
int cli_cmd_user_add(int argc, char **argv);
int cli_cmd_user_passwd(int argc, char **argv);
/* user disable|enable|quota|admin: argv[0] says which */
int cli_cmd_user_set(int argc, char **argv);
int cli_cmd_user_list(int argc, char **argv);
int cli_cmd_user_key_add(int argc, char **argv);
int cli_cmd_user_key_list(int argc, char **argv);
int cli_cmd_user_key_remove(int argc, char **argv);
int cli_cmd_user_delete(int argc, char **argv);
int cli_cmd_token_create(int argc, char **argv);
int cli_cmd_token_revoke(int argc, char **argv);
int cli_cmd_token_list(int argc, char **argv);
int cli_cmd_put(int argc, char **argv);
int cli_cmd_get(int argc, char **argv);
int cli_cmd_ls(int argc, char **argv);
int cli_cmd_rm(int argc, char **argv);
int cli_cmd_mkdir(int argc, char **argv);
int cli_cmd_import(int argc, char **argv);
int cli_cmd_stats(int argc, char **argv);
int cli_cmd_gc(int argc, char **argv);
int cli_cmd_fsck(int argc, char **argv);
int cli_cmd_journal(int argc, char **argv);
int cli_cmd_journal_verify(int argc, char **argv);
int cli_cmd_journal_export(int argc, char **argv);
int cli_cmd_replicate(int argc, char **argv);
int cli_cmd_versions(int argc, char **argv);
int cli_cmd_restore(int argc, char **argv);
int cli_cmd_trash(int argc, char **argv);
int cli_cmd_rollback(int argc, char **argv);
/* cmd_team.c: group add|del (argv[0]), group member add|rm (argv[0]),
 * group ls; share folder create|delete|quota|grant|revoke|ls; link
 * create|ls|revoke */
int cli_cmd_group_add(int argc, char **argv);
int cli_cmd_group_member(int argc, char **argv);
int cli_cmd_group_list(int argc, char **argv);
int cli_cmd_share_create(int argc, char **argv);
int cli_cmd_share_delete(int argc, char **argv);
int cli_cmd_share_quota(int argc, char **argv);
int cli_cmd_share_rule(int argc, char **argv);
int cli_cmd_share_list(int argc, char **argv);
int cli_cmd_link_create(int argc, char **argv);
int cli_cmd_link_list(int argc, char **argv);
int cli_cmd_link_revoke(int argc, char **argv);

/* ------------------------------------------------------------ messages */

/* "storagectl: WHAT: REASON" on stderr; returns 1 (the exit status). */
int cli_fail(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "storagectl: warning: ..." on stderr. */
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "storagectl: MESSAGE", a blank line and the usage text on stderr;
 * returns 2 (the exit status of a usage error). */
int cli_usage_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Words for an engine error (negative SD_E* or -errno); safe before the
 * engine is open. */
const char *cli_errstr(int err);

/* ------------------------------------------------------------ options */

/* Per-command option parsing over getopt_long. Options may come before,
 * between or after the positional arguments; "--" ends the options; "-"
 * is a positional argument; "--name=value" and unambiguous abbreviations
 * of long names work. Usage:
 *
 *     cli_args a;
 *     cli_args_init(&a, argc, argv);
 *     int c;
 *     while ((c = cli_next_opt(&a, "p", longopts)) != -1) {
 *             if (c == CLI_OPT_ERR)
 *                     return 2;
 *             ... c is the option's val, its value in a.val ...
 *     }
 *     ... a.pos[0 .. a.npos) are the positional arguments ...
 */
#define CLI_OPT_ERR (-2)

typedef struct cli_args {
	int argc;
	char **argv;
	const char *val;         /* value of the option just returned */
	char *pos[CLI_MAX_POS];  /* positional arguments, in order */
	int npos;
	int started;
} cli_args;

void cli_args_init(cli_args *a, int argc, char **argv);
/* The next option's val (value in a->val); -1 when the command line is
 * done; CLI_OPT_ERR after printing a usage error (unknown option, a
 * missing or unexpected value, more than CLI_MAX_POS positionals).
 * shortopts lists the short options as for getopt ("j:" etc., without a
 * leading '+', '-' or ':'); longopts ends with a zero row and may be NULL. */
int cli_next_opt(cli_args *a, const char *shortopts, const struct option *longopts);

/* A SIZE argument ("500M", "0", "none", "unlimited" = 0). 0, or 2 after a
 * usage error. */
int cli_parse_size(const char *s, int64_t *out);

/* ------------------------------------------------------------ output */

/* Print a name for humans on one line: control characters and backslash
 * become C escapes (\n, \\, \xHH), so one name is always one line. */
void cli_human_str(FILE *f, const char *s);

/* JSON output of objects built by util/sdjson (the objects of the HTTP
 * API) or, for types the HTTP API never prints, with jansson here.
 *
 * cli_json_print() writes one object and a newline. A list is streamed,
 * one element per line: "[", "\n  {...}", ",\n  {...}", "\n]\n" ("[]\n"
 * when empty). Commands print rows as the engine delivers them, so a long
 * journal or a huge directory is never held in memory; jansson serialises
 * every element, only the brackets and commas between them are written
 * here. The calls steal the reference; an element that is NULL or that
 * jansson cannot write fails the command (exit 1, "storagectl: WHAT:
 * ..."), after "null" in its place keeps the list valid JSON. */
typedef struct cli_jlist {
	int n;
	int err;
} cli_jlist;

/* 0, or 1 after printing why the object could not be written. */
int cli_json_print(json_t *o, const char *what);
void cli_jlist_begin(cli_jlist *l);
void cli_jlist_add(cli_jlist *l, json_t *o);
/* Closes the list; 0, or 1 after printing that an element failed. */
int cli_jlist_end(cli_jlist *l, const char *what);

/* ------------------------------------------------------------ tree.c */

/* A user's tree as storagectl acts on it. Every tree call of storagectl
 * goes through the cli_tree_* wrappers below, so the principal they act
 * as lives in one place (tree.c): today the sd_user the engine's tree
 * calls take; when those calls take an sd_session obtained for the user,
 * only tree.c changes. One cli_tree may be used by several threads at once
 * (import's workers share one). */
typedef struct cli_tree cli_tree;

/* Act as user NAME (the engine must be open). NULL after printing
 * "storagectl: NAME: no such user" (or the engine's reason). */
cli_tree *cli_tree_open(const char *name);
void cli_tree_close(cli_tree *t);

int cli_tree_stat(cli_tree *t, const char *path, sd_stat *st);
/* Every entry of a directory, in name order. */
int cli_tree_readdir(cli_tree *t, const char *path, sd_readdir_cb cb, void *arg);
int cli_tree_mkdir(cli_tree *t, const char *path, uint32_t mode, int parents);
int cli_tree_unlink(cli_tree *t, const char *path, int recursive);
int cli_tree_chmod(cli_tree *t, const char *path, uint32_t mode);
int cli_tree_set_mtime(cli_tree *t, const char *path, int64_t mtime);
int cli_tree_upload_begin(cli_tree *t, const char *path, unsigned flags, uint32_t mode,
			  sd_upload **out);
int cli_tree_open_read(cli_tree *t, const char *path, sd_reader **rd, sd_stat *st);
/* The path as the engine resolves it for this user (for messages). */
int cli_tree_resolve(cli_tree *t, const char *path, char *out, size_t outlen);
/* History (core/history.c): the storaged.h calls of the same names. */
int cli_tree_versions(cli_tree *t, const char *path, sd_version_cb cb, void *arg);
int cli_tree_version_restore(cli_tree *t, const char *path, int64_t version, sd_stat *st);
int cli_tree_trash_list(cli_tree *t, sd_trash_cb cb, void *arg);
int cli_tree_trash_restore(cli_tree *t, int64_t item, const char *to, sd_stat *st);
int cli_tree_trash_empty(cli_tree *t, int64_t item);
int cli_tree_rollback(cli_tree *t, const char *path, int64_t at_ms, sd_rollback_report *out);

/* ------------------------------------------------------------ uploads */

/* Stream the open local descriptor fd into REMOTE: upload_begin with
 * SD_UP_PARENTS, writes of CLI_CHUNK (buf holds that many bytes), the
 * mtime (if > 0) set in the commit itself, commit. On success fills st and
 * *dedup and returns 0; on failure returns the negative error and sets
 * *where to "read" (the local file) or "upload" (the engine). */
int cli_upload_fd(cli_tree *t, int fd, const char *remote, uint32_t mode, int64_t mtime,
		  char *buf, sd_stat *st, int *dedup, const char **where);

#endif
