/*
 * cmd_user.c - storagectl user ..., user key add|list|remove, user delete,
 * token ...: accounts,
 * SSH keys and API tokens (the engine's administration calls; no user
 * tree is touched).
 *
 * Passwords are read before the engine is opened (one stdin line with
 * --password-stdin, else typed twice on the terminal with echo off) and
 * wiped from memory once the engine has them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/conf.h"
#include "util/sdjson.h"

#define PASSWORD_MAX 1024 /* longest password accepted on stdin */

/* ------------------------------------------------------------ passwords */

/* Read one line from stdin into buf, newline (and a CR before it)
 * stripped. 0, -EINVAL (empty / no line), -E2BIG (too long), -EIO. */
static int read_line_stdin(char *buf, size_t buflen)
{
	if (!fgets(buf, (int)buflen, stdin))
		return ferror(stdin) ? -EIO : -EINVAL;
	size_t n = strlen(buf);
	if (n == buflen - 1 && buf[n - 1] != '\n' && !feof(stdin))
		return -E2BIG;
	if (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (n && buf[n - 1] == '\r')
		buf[--n] = '\0';
	return n ? 0 : -EINVAL;
}

/* Prompt on the terminal (stdin) with echo off. 0, -ENOTTY, -EINVAL. */
static int prompt_password(const char *prompt, char *buf, size_t buflen)
{
	if (!isatty(STDIN_FILENO))
		return -ENOTTY;
	struct termios old, quiet;
	if (tcgetattr(STDIN_FILENO, &old) < 0)
		return -ENOTTY;
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	quiet.c_lflag |= ECHONL;
	fputs(prompt, stderr);
	fflush(stderr);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	int rc = read_line_stdin(buf, buflen);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	return rc;
}

/* The new password: one stdin line, or typed twice on a tty. 0 or exit
 * status 1 after printing why. */
static int get_new_password(const char *what, int from_stdin, char *pw, size_t pwlen)
{
	int rc;
	if (from_stdin) {
		if (isatty(STDIN_FILENO)) {
			/* a terminal, not a pipe: say what we wait for (it echoes) */
			fputs("Password (one line, shown as typed; end with Enter): ", stderr);
			fflush(stderr);
		}
		rc = read_line_stdin(pw, pwlen);
		if (rc == -EINVAL)
			return cli_fail(what, "no password on stdin (empty line or end of input)");
		if (rc == -E2BIG)
			return cli_fail(what, "password longer than %d bytes", PASSWORD_MAX - 2);
		if (rc < 0)
			return cli_fail(what, "reading stdin: %s", strerror(-rc));
		return 0;
	}
	char again[PASSWORD_MAX];
	rc = prompt_password("New password: ", pw, pwlen);
	if (rc == -ENOTTY)
		return cli_fail(what, "stdin is not a terminal (use --password-stdin)");
	if (rc < 0)
		return cli_fail(what, "empty password");
	rc = prompt_password("Repeat password: ", again, sizeof again);
	int same = rc == 0 && strcmp(pw, again) == 0;
	memset(again, 0, sizeof again);
	if (!same) {
		memset(pw, 0, pwlen);
		return cli_fail(what, "passwords do not match");
	}
	return 0;
}

/* ------------------------------------------------------------ user */

static const struct option json_opts[] = {
    {"json", no_argument, NULL, 'J'},
    {NULL, 0, NULL, 0},
};

int cli_cmd_user_add(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"password-stdin", no_argument, NULL, 'P'},
	    {"quota", required_argument, NULL, 'q'},
	    {"admin", no_argument, NULL, 'a'},
	    {NULL, 0, NULL, 0},
	};
	const char *quota_s = NULL;
	int pwstdin = 0, admin = 0, c, rc;
	cli_args a;
	cli_args_init(&a, argc, argv);
	while ((c = cli_next_opt(&a, NULL, lo)) != -1) {
		if (c == CLI_OPT_ERR)
			return 2;
		if (c == 'P')
			pwstdin = 1;
		else if (c == 'q')
			quota_s = a.val;
		else
			admin = 1;
	}
	if (a.npos != 1)
		return cli_usage_err("user add needs exactly one NAME");
	const char *name = a.pos[0];
	int64_t quota = 0;
	if (quota_s && (rc = cli_parse_size(quota_s, &quota)))
		return rc;
	char pw[PASSWORD_MAX];
	if (get_new_password("user add", pwstdin, pw, sizeof pw))
		return 1;
	if (cli_open()) {
		memset(pw, 0, sizeof pw);
		return 1;
	}
	int64_t id = 0;
	rc = cli_api->user_add(cli_core, name, pw, quota, admin ? SD_USER_ADMIN : 0, &id);
	memset(pw, 0, sizeof pw);
	if (rc == -EEXIST)
		return cli_fail("user add", "user '%s' already exists", name);
	if (rc < 0)
		return cli_fail("user add", "%s: %s", name, cli_errstr(rc));
	printf("added user %s (id %" PRId64 ")\n", name, id);
	return 0;
}

int cli_cmd_user_passwd(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"password-stdin", no_argument, NULL, 'P'},
	    {NULL, 0, NULL, 0},
	};
	int pwstdin = 0, c;
	cli_args a;
	cli_args_init(&a, argc, argv);
	while ((c = cli_next_opt(&a, NULL, lo)) != -1) {
		if (c == CLI_OPT_ERR)
			return 2;
		pwstdin = 1;
	}
	if (a.npos != 1)
		return cli_usage_err("user passwd needs exactly one NAME");
	const char *name = a.pos[0];
	char pw[PASSWORD_MAX];
	if (get_new_password("user passwd", pwstdin, pw, sizeof pw))
		return 1;
	if (cli_open()) {
		memset(pw, 0, sizeof pw);
		return 1;
	}
	int rc = cli_api->user_set_password(cli_core, name, pw);
	memset(pw, 0, sizeof pw);
	if (rc < 0)
		return cli_fail("user passwd", "%s: %s", name,
				rc == -ENOENT ? "no such user" : cli_errstr(rc));
	printf("password changed for %s\n", name);
	return 0;
}

/* user disable|enable|quota|admin NAME [VALUE]; argv[0] says which. */
int cli_cmd_user_set(int argc, char **argv)
{
	const char *sub = argv[0];
	int is_quota = strcmp(sub, "quota") == 0, is_admin = strcmp(sub, "admin") == 0;
	int rc;
	cli_args a;
	cli_args_init(&a, argc, argv);
	if (cli_next_opt(&a, NULL, NULL) != -1) /* no options: only an error */
		return 2;
	int want = is_quota || is_admin ? 2 : 1;
	if (a.npos != want)
		return cli_usage_err("user %s needs %s", sub, want == 2 ? "NAME and a value" : "one NAME");
	const char *name = a.pos[0];
	int64_t quota = 0;
	int admin = 0;
	if (is_quota && (rc = cli_parse_size(a.pos[1], &quota)))
		return rc;
	if (is_admin && sd_conf_parse_bool(a.pos[1], &admin) < 0)
		return cli_usage_err("user admin NAME yes|no");
	if (cli_open())
		return 1;
	if (strcmp(sub, "disable") == 0)
		rc = cli_api->user_set_disabled(cli_core, name, 1);
	else if (strcmp(sub, "enable") == 0)
		rc = cli_api->user_set_disabled(cli_core, name, 0);
	else if (is_quota)
		rc = cli_api->user_set_quota(cli_core, name, quota);
	else
		rc = cli_api->user_set_admin(cli_core, name, admin);
	if (rc < 0) {
		char what[64];
		snprintf(what, sizeof what, "user %s", sub);
		return cli_fail(what, "%s: %s", name, rc == -ENOENT ? "no such user" : cli_errstr(rc));
	}
	if (is_quota) {
		if (quota)
			printf("quota of %s set to %" PRId64 " bytes\n", name, quota);
		else
			printf("quota of %s set to unlimited\n", name);
	} else if (is_admin) {
		printf("%s is %s an admin\n", name, admin ? "now" : "no longer");
	} else {
		printf("user %s %sd\n", name, sub);
	}
	return 0;
}

typedef struct list_ctx {
	int json;
	cli_jlist jl;
} list_ctx;

static int user_list_cb(void *arg, const sd_user *u)
{
	list_ctx *lc = arg;
	if (lc->json) {
		cli_jlist_add(&lc->jl, sd_json_user(u));
		return 0;
	}
	char q[32];
	if (u->quota)
		snprintf(q, sizeof q, "%" PRId64, u->quota);
	else
		snprintf(q, sizeof q, "unlimited");
	printf("%-20s %-5s %-8s %14s %14" PRId64 "\n", u->name,
	       (u->flags & SD_USER_ADMIN) ? "yes" : "no",
	       (u->flags & SD_USER_DISABLED) ? "yes" : "no", q, u->used);
	return 0;
}

int cli_cmd_user_list(int argc, char **argv)
{
	list_ctx lc = {0, {0, 0}};
	int c;
	cli_args a;
	cli_args_init(&a, argc, argv);
	while ((c = cli_next_opt(&a, NULL, json_opts)) != -1) {
		if (c == CLI_OPT_ERR)
			return 2;
		lc.json = 1;
	}
	if (a.npos)
		return cli_usage_err("user list takes no arguments");
	if (cli_open())
		return 1;
	if (lc.json)
		cli_jlist_begin(&lc.jl);
	else
		printf("%-20s %-5s %-8s %14s %14s\n", "NAME", "ADMIN", "DISABLED", "QUOTA", "USED");
	int rc = cli_api->user_list(cli_core, user_list_cb, &lc);
	if (lc.json && cli_jlist_end(&lc.jl, "user list"))
		return 1;
	if (rc < 0)
		return cli_fail("user list", "%s", cli_errstr(rc));
	return 0;
}

int cli_cmd_user_key_add(int argc, char **argv)
{
	int rc;
	cli_args a;
	cli_args_init(&a, argc, argv);
	if (cli_next_opt(&a, NULL, NULL) != -1)
		return 2;
	if (a.npos != 2)
		return cli_usage_err("user key add NAME PUBKEYFILE");
	const char *name = a.pos[0], *file = a.pos[1];
	FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
	if (!f)
		return cli_fail("user key add", "%s: %s", file, strerror(errno));
	if (cli_open()) {
		if (f != stdin)
			fclose(f);
		return 1;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int added = 0, bad = 0, dups = 0, lineno = 0;
	while ((len = getline(&line, &cap, f)) >= 0) {
		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		char *p = line;
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p || *p == '#')
			continue;
		if (len > 16384) {
			cli_fail("user key add", "%s:%d: line too long", file, lineno);
			bad++;
			continue;
		}
		rc = cli_api->key_add(cli_core, name, p);
		if (rc == -EEXIST) {
			cli_warn("%s:%d: key already registered for %s", file, lineno, name);
			dups++;
			continue;
		}
		if (rc < 0) {
			cli_fail("user key add", "%s:%d: %s", file, lineno,
				 rc == -ENOENT ? "no such user" : cli_errstr(rc));
			bad++;
			if (rc == -ENOENT)
				break;
			continue;
		}
		added++;
	}
	free(line);
	if (f != stdin)
		fclose(f);
	if (added == 0 && bad == 0 && dups == 0)
		return cli_fail("user key add", "%s: no keys in file", file);
	printf("added %d key%s for %s", added, added == 1 ? "" : "s", name);
	if (dups)
		printf(" (%d already registered, skipped)", dups);
	printf("\n");
	return bad ? 1 : 0;
}

typedef struct key_ctx {
	int json;
	cli_jlist jl;
} key_ctx;

static int key_list_cb(void *arg, const sd_key_info *k)
{
	key_ctx *kc = arg;
	if (kc->json) {
		cli_jlist_add(&kc->jl, sd_json_key(k));
		return 0;
	}
	char created[40];
	sd_json_time_text(k->created * 1000, 0, created, sizeof created);
	printf("%6" PRId64 " %-20s %-51s %-20s %s\n", k->id, k->type, k->fingerprint, created,
	       k->comment);
	return 0;
}

int cli_cmd_user_key_list(int argc, char **argv)
{
	key_ctx kc = {0, {0, 0}};
	int c;
	cli_args a;
	cli_args_init(&a, argc, argv);
	while ((c = cli_next_opt(&a, NULL, json_opts)) != -1) {
		if (c == CLI_OPT_ERR)
			return 2;
		kc.json = 1;
	}
	if (a.npos != 1)
		return cli_usage_err("user key list needs exactly one NAME");
	if (cli_open())
		return 1;
	if (kc.json)
		cli_jlist_begin(&kc.jl);
	else
		printf("%6s %-20s %-51s %-20s %s\n", "ID", "TYPE", "FINGERPRINT", "CREATED", "COMMENT");
	int rc = cli_api->key_list(cli_core, a.pos[0], key_list_cb, &kc);
	if (kc.json && cli_jlist_end(&kc.jl, "user key list"))
		return 1;
	if (rc < 0)
		return cli_fail("user key list", "%s: %s", a.pos[0],
				rc == -ENOENT ? "no such user" : cli_errstr(rc));
	return 0;
}

int cli_cmd_user_key_remove(int argc, char **argv)
{
	cli_args a;
	cli_args_init(&a, argc, argv);
	if (cli_next_opt(&a, NULL, NULL) != -1)
		return 2;
	if (a.npos != 2)
		return cli_usage_err("user key remove NAME KEYID|FINGERPRINT");
	const char *name = a.pos[0], *key = a.pos[1];
	if (cli_open())
		return 1;
	sd_user u;
	int rc = cli_api->user_get(cli_core, name, &u);
	if (rc == 0)
		rc = cli_api->key_remove(cli_core, name, key);
	else if (rc == -ENOENT)
		return cli_fail("user key remove", "%s: no such user", name);
	if (rc == -ENOENT)
		return cli_fail("user key remove", "%s: no such key for %s (see user key list %s)", key,
				name, name);
	if (rc < 0)
		return cli_fail("user key remove", "%s: %s", key, cli_errstr(rc));
	printf("removed key %s of %s\n", key, name);
	return 0;
}

int cli_cmd_user_delete(int argc, char **argv)
{
	cli_args a;
	cli_args_init(&a, argc, argv);
	if (cli_next_opt(&a, NULL, NULL) != -1)
		return 2;
	if (a.npos != 1)
		return cli_usage_err("user delete needs exactly one NAME");
	const char *name = a.pos[0];
	if (cli_open())
		return 1;
	int rc = cli_api->user_delete(cli_core, name);
	if (rc < 0)
		return cli_fail("user delete", "%s: %s", name,
				rc == -ENOENT ? "no such user" : cli_errstr(rc));
	printf("user %s deleted: sessions ended, tokens and keys removed; its files are deleted "
	       "and purged by the cleaner after deleted_retention\n", name);
	return 0;
}

/* ------------------------------------------------------------ token */

int cli_cmd_token_create(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"expires", required_argument, NULL, 'e'},
	    {"scope", required_argument, NULL, 's'},
	    {NULL, 0, NULL, 0},
	};
	const char *exp_s = NULL, *scope_s = NULL;
	int c;
	cli_args a;
	cli_args_init(&a, argc, argv);
	while ((c = cli_next_opt(&a, NULL, lo)) != -1) {
		if (c == CLI_OPT_ERR)
			return 2;
		if (c == 'e')
			exp_s = a.val;
		else
			scope_s = a.val;
	}
	if (a.npos != 1)
		return cli_usage_err("token create needs exactly one NAME");
	const char *name = a.pos[0];
	int64_t exp_ms = 0;
	if (exp_s && (sd_conf_parse_duration(exp_s, &exp_ms) < 0 || exp_ms < 0))
		return cli_usage_err("bad duration '%s' (e.g. 30d, 12h, 0 = never)", exp_s);
	int scope = SD_SCOPE_RW;
	if (scope_s) {
		if (strcmp(scope_s, "ro") == 0)
			scope = SD_SCOPE_RO;
		else if (strcmp(scope_s, "rw") != 0)
			return cli_usage_err("bad scope '%s' (ro or rw)", scope_s);
	}
	if (cli_open())
		return 1;
	char tok[SD_TOKEN_MAX];
	int64_t id = 0;
	int64_t exp_secs = exp_ms ? (exp_ms + 999) / 1000 : 0;
	int rc = cli_api->token_create(cli_core, name, scope, exp_secs, tok, &id);
	if (rc < 0)
		return cli_fail("token create", "%s: %s", name,
				rc == -ENOENT ? "no such user" : cli_errstr(rc));
	printf("%s\n", tok);
	fflush(stdout);
	char when[48];
	if (exp_secs) {
		char iso[40];
		sd_json_time_text((cli_api->now(cli_core) + exp_secs) * 1000, 0, iso, sizeof iso);
		snprintf(when, sizeof when, "expires %s", iso);
	} else {
		snprintf(when, sizeof when, "never expires");
	}
	fprintf(stderr, "storagectl: token %" PRId64 " for %s (%s, %s): shown once, store it now\n",
		id, name, scope == SD_SCOPE_RO ? "read-only" : "read-write", when);
	memset(tok, 0, sizeof tok);
	return 0;
}

int cli_cmd_token_revoke(int argc, char **argv)
{
	cli_args a;
	cli_args_init(&a, argc, argv);
	if (cli_next_opt(&a, NULL, NULL) != -1)
		return 2;
	if (a.npos != 1)
		return cli_usage_err("token revoke needs exactly one ID");
	int64_t id;
	if (sd_conf_parse_int(a.pos[0], &id) < 0 || id <= 0)
		return cli_usage_err("bad token id '%s'", a.pos[0]);
	if (cli_open())
		return 1;
	int rc = cli_api->token_revoke(cli_core, id);
	if (rc < 0)
		return cli_fail("token revoke", "%" PRId64 ": %s", id,
				rc == -ENOENT ? "no such token" : cli_errstr(rc));
	printf("token %" PRId64 " revoked\n", id);
	return 0;
}

typedef struct token_ctx {
	int json;
	cli_jlist jl;
	int64_t now;
} token_ctx;

static int token_list_cb(void *arg, const sd_token_info *t)
{
	token_ctx *tc = arg;
	if (tc->json) {
		cli_jlist_add(&tc->jl, sd_json_token(t, tc->now));
		return 0;
	}
	char created[40], expires[40];
	sd_json_time_text(t->created * 1000, 0, created, sizeof created);
	if (t->expires)
		sd_json_time_text(t->expires * 1000, 0, expires, sizeof expires);
	else
		snprintf(expires, sizeof expires, "never");
	printf("%6" PRId64 " %-20s %-5s %-20s %-20s %s\n", t->id, t->user,
	       t->readonly ? "ro" : "rw", created, expires, sd_json_token_state(t, tc->now));
	return 0;
}

int cli_cmd_token_list(int argc, char **argv)
{
	token_ctx tc = {0, {0, 0}, 0};
	int c;
	cli_args a;
	cli_args_init(&a, argc, argv);
	while ((c = cli_next_opt(&a, NULL, json_opts)) != -1) {
		if (c == CLI_OPT_ERR)
			return 2;
		tc.json = 1;
	}
	if (a.npos > 1)
		return cli_usage_err("token list takes at most one NAME");
	if (cli_open())
		return 1;
	tc.now = cli_api->now(cli_core);
	if (tc.json)
		cli_jlist_begin(&tc.jl);
	else
		printf("%6s %-20s %-5s %-20s %-20s %s\n", "ID", "USER", "SCOPE", "CREATED",
		       "EXPIRES", "STATE");
	int rc = cli_api->token_list(cli_core, a.npos ? a.pos[0] : NULL, token_list_cb, &tc);
	if (tc.json && cli_jlist_end(&tc.jl, "token list"))
		return 1;
	if (rc < 0)
		return cli_fail("token list", "%s", rc == -ENOENT ? "no such user" : cli_errstr(rc));
	return 0;
}
