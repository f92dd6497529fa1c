/*
 * tree.c - storagectl acting as a user: the one place that turns a user
 * name into what the engine's tree calls take, and the only caller of
 * those calls (stat, readdir, mkdir, unlink, chmod, set_mtime,
 * upload_begin, open_read).
 *
 * Today a tree call takes (sd_core *, const sd_user *), and a cli_tree
 * holds the sd_user read by name with user_get. When the tree calls take
 * an opaque sd_session * obtained for a named user through core.h, this
 * file changes (cli_tree holds the session; open gets it, close releases
 * it, the wrappers pass it) and no command file does.
 */
#include <errno.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "core/util.h"

struct cli_tree {
	sd_user user;
};

cli_tree *cli_tree_open(const char *name)
{
	cli_tree *t = sd_xcalloc(1, sizeof *t);
	int rc = cli_api->user_get(cli_core, name, &t->user);
	if (rc < 0) {
		free(t);
		cli_fail(name, "%s", rc == -ENOENT ? "no such user" : cli_errstr(rc));
		return NULL;
	}
	return t;
}

void cli_tree_close(cli_tree *t)
{
	free(t);
}

int cli_tree_stat(cli_tree *t, const char *path, sd_stat *st)
{
	return cli_api->stat(cli_core, &t->user, path, st);
}

int cli_tree_readdir(cli_tree *t, const char *path, sd_readdir_cb cb, void *arg)
{
	int more = 0;
	return cli_api->readdir(cli_core, &t->user, path, NULL, 0, cb, arg, &more);
}

int cli_tree_mkdir(cli_tree *t, const char *path, uint32_t mode, int parents)
{
	return cli_api->mkdir(cli_core, &t->user, path, mode, parents);
}

int cli_tree_unlink(cli_tree *t, const char *path, int recursive)
{
	return cli_api->unlink(cli_core, &t->user, path, recursive);
}

int cli_tree_chmod(cli_tree *t, const char *path, uint32_t mode)
{
	return cli_api->chmod(cli_core, &t->user, path, mode);
}

int cli_tree_set_mtime(cli_tree *t, const char *path, int64_t mtime)
{
	return cli_api->set_mtime(cli_core, &t->user, path, mtime);
}

int cli_tree_upload_begin(cli_tree *t, const char *path, unsigned flags, uint32_t mode,
			  sd_upload **out)
{
	return cli_api->upload_begin(cli_core, &t->user, path, flags, 0, mode, out);
}

int cli_tree_open_read(cli_tree *t, const char *path, int *fd, sd_stat *st)
{
	return cli_api->open_read(cli_core, &t->user, path, fd, st);
}
