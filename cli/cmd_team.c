/*
 * cmd_team.c - storagectl group ..., share folder ..., link ...: teams
 * (groups and members, shared folders and their rules) and share links,
 * through the engine's calls (core/team.c, core/link.c). docs/teams.md
 * explains the model.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/conf.h"
#include "util/sdjson.h"

static const struct option json_opts[] = {
    {"json", no_argument, NULL, 'J'},
    {NULL, 0, NULL, 0},
};

/* "no such X" for -ENOENT, else the engine's words. */
static int fail_obj(const char *what, int rc, const char *obj, const char *name)
{
	if (rc == -ENOENT)
		return cli_fail(what, "no such %s: %s", obj, name);
	if (rc == -EEXIST)
		return cli_fail(what, "%s %s exists already", obj, name);
	if (rc == -EINVAL)
		return cli_fail(what, "bad %s name '%s' (letters, digits, . _ - @; 1-64)", obj, name);
	return cli_fail(what, "%s: %s", name, cli_errstr(rc));
}

/* ------------------------------------------------------------ groups */

int cli_cmd_group_add(int argc, char **argv)
{
	cli_args a;
	cli_args_init(&a, argc, argv);
	int c;
	while ((c = cli_next_opt(&a, NULL, NULL)) != -1)
		if (c == CLI_OPT_ERR)
			return 2;
	if (a.npos != 1)
		return cli_usage_err("group %s needs exactly one NAME", argv[0]);
	if (cli_open())
		return 1;
	int del = strcmp(argv[0], "del") == 0;
	int rc = del ? cli_api->group_delete(cli_core, a.pos[0]) : cli_api->group_add(cli_core, a.pos[0]);
	if (rc < 0)
		return fail_obj(del ? "group del" : "group add", rc, "group", a.pos[0]);
	return 0;
}

int cli_cmd_group_member(int argc, char **argv)
{
	cli_args a;
	cli_args_init(&a, argc, argv);
	int c;
	while ((c = cli_next_opt(&a, NULL, NULL)) != -1)
		if (c == CLI_OPT_ERR)
			return 2;
	int add = strcmp(argv[0], "add") == 0;
	if (a.npos != 2)
		return cli_usage_err("group member %s needs GROUP and USER", argv[0]);
	if (cli_open())
		return 1;
	int rc = add ? cli_api->group_member_add(cli_core, a.pos[0], a.pos[1])
		     : cli_api->group_member_remove(cli_core, a.pos[0], a.pos[1]);
	if (rc == -ENOENT)
		return cli_fail(add ? "group member add" : "group member rm",
				"no such group or user, or %s is not in %s", a.pos[1], a.pos[0]);
	if (rc == -EEXIST)
		return cli_fail("group member add", "%s is in %s already", a.pos[1], a.pos[0]);
	if (rc < 0)
		return cli_fail("group member", "%s", cli_errstr(rc));
	return 0;
}

typedef struct list_ctx {
	int json;
	cli_jlist jl;
	int64_t now;
} list_ctx;

static int group_cb(void *arg, const sd_group *g)
{
	list_ctx *x = arg;
	if (x->json) {
		cli_jlist_add(&x->jl, sd_json_group(g));
		return 0;
	}
	cli_human_str(stdout, g->name);
	fputs(":", stdout);
	for (int i = 0; i < g->nmembers; i++) {
		fputs(" ", stdout);
		cli_human_str(stdout, g->members[i]);
	}
	fputs("\n", stdout);
	return 0;
}

int cli_cmd_group_list(int argc, char **argv)
{
	list_ctx x = {0};
	cli_args a;
	cli_args_init(&a, argc, argv);
	int c;
	while ((c = cli_next_opt(&a, NULL, json_opts)) != -1) {
		if (c == CLI_OPT_ERR)
			return 2;
		x.json = 1;
	}
	if (a.npos > 1)
		return cli_usage_err("group ls takes at most one GROUP");
	if (cli_open())
		return 1;
	if (x.json)
		cli_jlist_begin(&x.jl);
	int rc = cli_api->group_list(cli_core, a.npos ? a.pos[0] : NULL, group_cb, &x);
	if (x.json && cli_jlist_end(&x.jl, "group ls"))
		return 1;
	if (rc < 0)
		return fail_obj("group ls", rc, "group", a.npos ? a.pos[0] : "");
	return 0;
}

/* ------------------------------------------------------------ shared folders */

int cli_cmd_share_create(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"quota", required_argument, NULL, 'q'},
	    {NULL, 0, NULL, 0},
	};
	const char *quota_s = NULL;
	cli_args a;
	cli_args_init(&a, argc, argv);
	int c, rc;
	while ((c = cli_next_opt(&a, NULL, lo)) != -1) {
		if (c == CLI_OPT_ERR)
			return 2;
		quota_s = a.val;
	}
	if (a.npos != 1)
		return cli_usage_err("share folder create needs exactly one NAME");
	int64_t quota = 0;
	if (quota_s && (rc = cli_parse_size(quota_s, &quota)))
		return rc;
	if (cli_open())
		return 1;
	if ((rc = cli_api->share_create(cli_core, a.pos[0], quota, NULL)) < 0)
		return fail_obj("share folder create", rc, "shared folder", a.pos[0]);
	fprintf(stderr, "storagectl: shared folder %s made; it appears at /%s for the users and "
		"groups you grant rights to (share folder grant)\n", a.pos[0], a.pos[0]);
	return 0;
}

int cli_cmd_share_delete(int argc, char **argv)
{
	cli_args a;
	cli_args_init(&a, argc, argv);
	int c;
	while ((c = cli_next_opt(&a, NULL, NULL)) != -1)
		if (c == CLI_OPT_ERR)
			return 2;
	if (a.npos != 1)
		return cli_usage_err("share folder delete needs exactly one NAME");
	if (cli_open())
		return 1;
	int rc = cli_api->share_delete(cli_core, a.pos[0]);
	if (rc < 0)
		return fail_obj("share folder delete", rc, "shared folder", a.pos[0]);
	return 0;
}

int cli_cmd_share_quota(int argc, char **argv)
{
	cli_args a;
	cli_args_init(&a, argc, argv);
	int c, rc;
	while ((c = cli_next_opt(&a, NULL, NULL)) != -1)
		if (c == CLI_OPT_ERR)
			return 2;
	if (a.npos != 2)
		return cli_usage_err("share folder quota needs NAME and SIZE");
	int64_t quota = 0;
	if ((rc = cli_parse_size(a.pos[1], &quota)))
		return rc;
	if (cli_open())
		return 1;
	if ((rc = cli_api->share_set_quota(cli_core, a.pos[0], quota)) < 0)
		return fail_obj("share folder quota", rc, "shared folder", a.pos[0]);
	return 0;
}

/* share folder grant NAME PATH (--user U | --group G) RIGHTS, and revoke
 * without RIGHTS: argv[0] says which. */
int cli_cmd_share_rule(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"user", required_argument, NULL, 'u'},
	    {"group", required_argument, NULL, 'g'},
	    {NULL, 0, NULL, 0},
	};
	const char *user = NULL, *group = NULL;
	int grant = strcmp(argv[0], "grant") == 0;
	cli_args a;
	cli_args_init(&a, argc, argv);
	int c;
	while ((c = cli_next_opt(&a, NULL, lo)) != -1) {
		if (c == CLI_OPT_ERR)
			return 2;
		if (c == 'u')
			user = a.val;
		else
			group = a.val;
	}
	if (!user == !group)
		return cli_usage_err("share folder %s needs exactly one of --user USER, --group GROUP",
				     argv[0]);
	if (a.npos != (grant ? 3 : 2))
		return cli_usage_err(grant ? "share folder grant needs NAME, PATH and RIGHTS"
					   : "share folder revoke needs NAME and PATH");
	unsigned rights = 0;
	if (grant) {
		int ok = 0;
		rights = sd_json_rights_parse(a.pos[2], &ok);
		if (!ok)
			return cli_usage_err("bad rights '%s' (list,read,write,delete,rename,share, "
					     "or ro, rw, full, dropbox, none)", a.pos[2]);
	}
	if (cli_open())
		return 1;
	int rc = grant ? cli_api->share_grant(cli_core, a.pos[0], a.pos[1], user, group, rights)
		       : cli_api->share_revoke(cli_core, a.pos[0], a.pos[1], user, group);
	const char *what = grant ? "share folder grant" : "share folder revoke";
	if (rc == -ENOENT)
		return cli_fail(what, grant ? "no such shared folder, %s or path" : "no such rule: "
					      "shared folder, %s or path unknown, or no rule there",
				user ? "user" : "group");
	if (rc < 0)
		return cli_fail(what, "%s: %s", a.pos[1], cli_errstr(rc));
	return 0;
}

typedef struct share_ctx {
	int json;
	cli_jlist jl;
	const char *name;
	int with_rules;
} share_ctx;

static int rule_cb(void *arg, const sd_share_rule *r)
{
	share_ctx *x = arg;
	if (x->json) {
		cli_jlist_add(&x->jl, sd_json_share_rule(r));
		return 0;
	}
	char rt[64];
	sd_json_rights_text(r->rights, rt, sizeof rt);
	fputs("  ", stdout);
	cli_human_str(stdout, r->path);
	printf("  %s ", r->user[0] ? "user" : "group");
	cli_human_str(stdout, r->user[0] ? r->user : r->group);
	printf("  %s%s\n", rt, r->deleted ? "  (folder in the trash)" : "");
	return 0;
}

static int share_cb(void *arg, const sd_share *sh)
{
	share_ctx *x = arg;
	if (x->json) {
		cli_jlist_add(&x->jl, sd_json_share(sh));
		return 0;
	}
	char q[32];
	if (sh->quota)
		snprintf(q, sizeof q, "%" PRId64, sh->quota);
	else
		snprintf(q, sizeof q, "unlimited");
	cli_human_str(stdout, sh->name);
	printf("  mounted at /");
	cli_human_str(stdout, sh->name);
	printf("  used %" PRId64 " of %s bytes, %d rules\n", sh->used, q, sh->rules);
	if (x->with_rules)
		cli_api->share_rules(cli_core, sh->name, rule_cb, x);
	return 0;
}

int cli_cmd_share_list(int argc, char **argv)
{
	share_ctx x = {0};
	cli_args a;
	cli_args_init(&a, argc, argv);
	int c;
	while ((c = cli_next_opt(&a, NULL, json_opts)) != -1) {
		if (c == CLI_OPT_ERR)
			return 2;
		x.json = 1;
	}
	if (a.npos > 1)
		return cli_usage_err("share folder ls takes at most one NAME");
	if (cli_open())
		return 1;
	x.name = a.npos ? a.pos[0] : NULL;
	int rc;
	if (x.json) {
		/* one object: the folders and, for one folder, its rules */
		cli_jlist_begin(&x.jl);
		rc = x.name ? cli_api->share_rules(cli_core, x.name, rule_cb, &x)
			    : cli_api->share_list(cli_core, NULL, share_cb, &x);
		if (cli_jlist_end(&x.jl, "share folder ls"))
			return 1;
	} else {
		x.with_rules = 1;
		rc = cli_api->share_list(cli_core, x.name, share_cb, &x);
	}
	if (rc < 0)
		return fail_obj("share folder ls", rc, "shared folder", x.name ? x.name : "");
	return 0;
}

/* ------------------------------------------------------------ links */

/* One line of stdin, newline stripped: 0, or exit status 1 after why. */
static int read_password(char *buf, size_t len)
{
	if (!fgets(buf, (int)len, stdin))
		return cli_fail("link create", "no password on stdin");
	size_t n = strlen(buf);
	if (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (n && buf[n - 1] == '\r')
		buf[--n] = '\0';
	if (!n)
		return cli_fail("link create", "empty password on stdin");
	return 0;
}

int cli_cmd_link_create(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"expires", required_argument, NULL, 'e'},
	    {"password-stdin", no_argument, NULL, 'P'},
	    {"max-downloads", required_argument, NULL, 'm'},
	    {"upload", no_argument, NULL, 'U'},
	    {"json", no_argument, NULL, 'J'},
	    {NULL, 0, NULL, 0},
	};
	const char *exp_s = NULL, *max_s = NULL;
	int pwstdin = 0, upload = 0, json = 0;
	cli_args a;
	cli_args_init(&a, argc, argv);
	int c;
	while ((c = cli_next_opt(&a, NULL, lo)) != -1) {
		if (c == CLI_OPT_ERR)
			return 2;
		if (c == 'e')
			exp_s = a.val;
		else if (c == 'P')
			pwstdin = 1;
		else if (c == 'm')
			max_s = a.val;
		else if (c == 'U')
			upload = 1;
		else
			json = 1;
	}
	if (a.npos != 2)
		return cli_usage_err("link create needs USER and PATH");
	sd_link_opts o = {.mode = upload ? SD_LINK_UPLOAD : SD_LINK_READ};
	int64_t exp_ms = 0;
	if (exp_s && (sd_conf_parse_duration(exp_s, &exp_ms) < 0 || exp_ms < 0))
		return cli_usage_err("bad duration '%s' (e.g. 7d, 12h, 0 = never)", exp_s);
	o.expires = exp_ms ? (exp_ms + 999) / 1000 : 0;
	if (max_s) {
		char *end;
		long long v = strtoll(max_s, &end, 10);
		if (!*max_s || *end || v < 0)
			return cli_usage_err("bad --max-downloads '%s' (a number, 0 = no limit)", max_s);
		o.max_downloads = v;
	}
	char pw[1024] = "";
	if (pwstdin && read_password(pw, sizeof pw))
		return 1;
	o.password = pw;
	if (cli_open())
		return 1;
	char tok[SD_LINK_TOKEN_MAX];
	sd_link_info li;
	int rc = cli_api->link_create_as(cli_core, a.pos[0], a.pos[1], &o, tok, &li);
	memset(pw, 0, sizeof pw);
	if (rc == -ENOENT)
		return cli_fail("link create", "no such user or path (in %s's view): %s", a.pos[0],
				a.pos[1]);
	if (rc == -EACCES)
		return cli_fail("link create", "%s may not %s %s", a.pos[0],
				upload ? "write into" : "read", a.pos[1]);
	if (rc < 0)
		return cli_fail("link create", "%s: %s", a.pos[1], cli_errstr(rc));
	if (json) {
		json_t *j = sd_json_link(&li, cli_api->now(cli_core));
		if (j)
			json_object_set_new(j, "token", json_string(tok));
		memset(tok, 0, sizeof tok);
		return cli_json_print(j, "link create");
	}
	printf("%s\n", tok);
	fflush(stdout);
	fprintf(stderr, "storagectl: link %" PRId64 " (%s) to %s as %s: serve it at /s/<token>; the "
		"token is shown once\n", li.id, upload ? "upload" : "read", li.path, li.user);
	memset(tok, 0, sizeof tok);
	return 0;
}

static int link_cb(void *arg, const sd_link_info *l)
{
	list_ctx *x = arg;
	if (x->json) {
		cli_jlist_add(&x->jl, sd_json_link(l, x->now));
		return 0;
	}
	char dl[48];
	if (l->max_downloads)
		snprintf(dl, sizeof dl, "%" PRId64 "/%" PRId64, l->downloads, l->max_downloads);
	else
		snprintf(dl, sizeof dl, "%" PRId64, l->downloads);
	printf("%6" PRId64 " %-16s %-6s %-8s %-9s %s ", l->id, l->user,
	       l->mode == SD_LINK_UPLOAD ? "upload" : "read", sd_json_link_state(l, x->now), dl,
	       l->password ? "pw" : "--");
	cli_human_str(stdout, l->path);
	fputs("\n", stdout);
	return 0;
}

int cli_cmd_link_list(int argc, char **argv)
{
	list_ctx x = {0};
	cli_args a;
	cli_args_init(&a, argc, argv);
	int c;
	while ((c = cli_next_opt(&a, NULL, json_opts)) != -1) {
		if (c == CLI_OPT_ERR)
			return 2;
		x.json = 1;
	}
	if (a.npos > 1)
		return cli_usage_err("link ls takes at most one USER");
	if (cli_open())
		return 1;
	x.now = cli_api->now(cli_core);
	if (x.json)
		cli_jlist_begin(&x.jl);
	else
		printf("%6s %-16s %-6s %-8s %-9s %s %s\n", "ID", "USER", "MODE", "STATE", "DOWNLOADS",
		       "PW", "PATH");
	int rc = cli_api->link_list_all(cli_core, a.npos ? a.pos[0] : NULL, link_cb, &x);
	if (x.json && cli_jlist_end(&x.jl, "link ls"))
		return 1;
	if (rc < 0)
		return cli_fail("link ls", "%s", cli_errstr(rc));
	return 0;
}

int cli_cmd_link_revoke(int argc, char **argv)
{
	cli_args a;
	cli_args_init(&a, argc, argv);
	int c;
	while ((c = cli_next_opt(&a, NULL, NULL)) != -1)
		if (c == CLI_OPT_ERR)
			return 2;
	if (a.npos != 1)
		return cli_usage_err("link revoke needs exactly one ID");
	char *end;
	long long id = strtoll(a.pos[0], &end, 10);
	if (!*a.pos[0] || *end || id <= 0)
		return cli_usage_err("link id must be a number: %s", a.pos[0]);
	if (cli_open())
		return 1;
	int rc = cli_api->link_revoke_any(cli_core, id);
	if (rc < 0)
		return fail_obj("link revoke", rc, "link", a.pos[0]);
	return 0;
}
