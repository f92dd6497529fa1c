/*
 * tree.c - storagectl acting as a user: the one place that turns a user
 * name into what the engine's tree calls take (a session made with
 * sd_core_session: the admin tool acts with the data directory owner's
 * rights), and the only caller of those calls.
 *
 * Import's worker threads share one cli_tree: engine sessions may be used
 * by several threads at once for everything but chdir (storaged.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/core.h"
#include "util/util.h"

struct cli_tree {
	sd_session *s;
};

cli_tree *cli_tree_open(const char *name)
{
	cli_tree *t = sd_xcalloc(1, sizeof *t);
	int rc = sd_core_session(cli_core, name, &t->s);
	if (rc < 0) {
		free(t);
		cli_fail(name, "%s", rc == -ENOENT ? "no such user" : cli_errstr(rc));
		return NULL;
	}
	return t;
}

void cli_tree_close(cli_tree *t)
{
	if (!t)
		return;
	cli_api->session_close(t->s);
	free(t);
}

int cli_tree_resolve(cli_tree *t, const char *path, char *out, size_t outlen)
{
	return cli_api->resolve(t->s, path, strlen(path), out, outlen);
}

int cli_tree_stat(cli_tree *t, const char *path, sd_stat *st)
{
	return cli_api->stat(t->s, path, st);
}

int cli_tree_readdir(cli_tree *t, const char *path, sd_readdir_cb cb, void *arg)
{
	int more = 0;
	return cli_api->readdir(t->s, path, NULL, 0, cb, arg, &more);
}

int cli_tree_mkdir(cli_tree *t, const char *path, uint32_t mode, int parents)
{
	return cli_api->mkdir(t->s, path, mode, parents);
}

int cli_tree_unlink(cli_tree *t, const char *path, int recursive)
{
	return cli_api->unlink(t->s, path, recursive);
}

int cli_tree_chmod(cli_tree *t, const char *path, uint32_t mode)
{
	return cli_api->chmod(t->s, path, mode);
}

int cli_tree_set_mtime(cli_tree *t, const char *path, int64_t mtime)
{
	return cli_api->set_mtime(t->s, path, mtime);
}

int cli_tree_upload_begin(cli_tree *t, const char *path, unsigned flags, uint32_t mode,
			  sd_upload **out)
{
	return cli_api->upload_begin(t->s, path, flags, 0, mode, out);
}

int cli_tree_open_read(cli_tree *t, const char *path, sd_reader **rd, sd_stat *st)
{
	return cli_api->open_read(t->s, path, rd, st);
}

int cli_tree_versions(cli_tree *t, const char *path, sd_version_cb cb, void *arg)
{
	return cli_api->versions(t->s, path, cb, arg);
}

int cli_tree_version_restore(cli_tree *t, const char *path, int64_t version, sd_stat *st)
{
	return cli_api->version_restore(t->s, path, version, st);
}

int cli_tree_trash_list(cli_tree *t, sd_trash_cb cb, void *arg)
{
	return cli_api->trash_list(t->s, cb, arg);
}

int cli_tree_trash_restore(cli_tree *t, int64_t item, const char *to, sd_stat *st)
{
	return cli_api->trash_restore(t->s, item, to, st);
}

int cli_tree_trash_empty(cli_tree *t, int64_t item)
{
	return cli_api->trash_empty(t->s, item);
}

int cli_tree_rollback(cli_tree *t, const char *path, int64_t at_ms, sd_rollback_report *out)
{
	return cli_api->rollback(t->s, path, at_ms, out);
}
