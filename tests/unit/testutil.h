/*
 * testutil.h - shared helpers for the check suites: a fresh data directory
 * per test and a core opened on it.
 */
#ifndef SD_TESTUTIL_H
#define SD_TESTUTIL_H

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/conf.h"
#include "core/core.h"
#include "core/storaged.h"

/* mkdtemp under /tmp; returns a malloc'd path. */
static inline char *tu_tempdir(void)
{
	char tmpl[] = "/tmp/sdunit.XXXXXX";
	char *d = mkdtemp(tmpl);
	ck_assert_ptr_nonnull(d);
	return strdup(d);
}

static inline void tu_rmrf(const char *dir)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Write text to dir/name; returns malloc'd full path. */
static inline char *tu_write_file(const char *dir, const char *name, const char *text)
{
	char *p = malloc(strlen(dir) + strlen(name) + 2);
	sprintf(p, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	return p;
}

#endif
