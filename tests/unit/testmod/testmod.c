/*
 * testmod.c - a minimal front-end module for tests/unit/test_module.c.
 *
 * Exports a valid descriptor with a three-key config table and records
 * what the loader does to it, for the test to inspect through dlsym():
 *   testmod_trace  "init,start,stop,destroy," - every entry point called
 *   testmod_seen   the parsed config and sd_module_conf that init received
 * Key `mode` makes init or start fail on purpose:
 *   mode = fail_init   init returns -EADDRINUSE (after setting a state)
 *   mode = fail_start  start returns -EACCES
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storaged.h"

typedef struct testmod_conf {
	char *mode;    /* SD_CONF_STR */
	int64_t count; /* SD_CONF_INT */
	int loud;      /* SD_CONF_BOOL */
} testmod_conf;

typedef struct testmod_seen {
	char mode[64];
	int64_t count;
	int loud;
	char section[64];
	char host[64];
	int port;
	char config_dir[512];
	int api_version;
	int state_ok; /* destroy received the state init set */
} testmod_seen;

char testmod_trace[256];
testmod_seen testmod_seen_conf;

static void trace(const char *what)
{
	size_t n = strlen(testmod_trace);
	snprintf(testmod_trace + n, sizeof testmod_trace - n, "%s,", what);
}

typedef struct tm_state {
	uint32_t magic;
	testmod_conf *conf;
} tm_state;

#define TM_MAGIC 0x7e57u

static int tm_init(const sd_core_api *api, sd_core *core, const sd_module_conf *mc, void *conf,
		   void **state)
{
	(void)core;
	testmod_conf *c = conf;
	trace("init");
	testmod_seen *s = &testmod_seen_conf;
	snprintf(s->mode, sizeof s->mode, "%s", c->mode ? c->mode : "(null)");
	s->count = c->count;
	s->loud = c->loud;
	snprintf(s->section, sizeof s->section, "%s", mc->section ? mc->section : "(null)");
	snprintf(s->host, sizeof s->host, "%s", mc->listen_host ? mc->listen_host : "(null)");
	s->port = mc->listen_port;
	snprintf(s->config_dir, sizeof s->config_dir, "%s", mc->config_dir ? mc->config_dir : "(null)");
	s->api_version = api ? (int)api->version : -1;

	tm_state *st = malloc(sizeof *st);
	if (!st)
		return -ENOMEM;
	st->magic = TM_MAGIC;
	st->conf = c;
	*state = st;
	if (c->mode && strcmp(c->mode, "fail_init") == 0)
		return -EADDRINUSE;
	return 0;
}

static int tm_start(void *state)
{
	tm_state *st = state;
	trace("start");
	if (st->conf->mode && strcmp(st->conf->mode, "fail_start") == 0)
		return -EACCES;
	return 0;
}

static void tm_stop(void *state)
{
	(void)state;
	trace("stop");
}

static void tm_destroy(void *state)
{
	tm_state *st = state;
	trace("destroy");
	testmod_seen_conf.state_ok = st && st->magic == TM_MAGIC;
	free(st);
}

static const sd_conf_item tm_table[] = {
	{"mode", SD_CONF_STR, offsetof(testmod_conf, mode), "ok", "ok, fail_init or fail_start."},
	{"count", SD_CONF_INT, offsetof(testmod_conf, count), "3", "A number."},
	{"loud", SD_CONF_BOOL, offsetof(testmod_conf, loud), "no", "A flag."},
	{NULL, 0, 0, NULL, NULL},
};

const sd_module storaged_module = {
	.abi = SD_MODULE_ABI,
	.signature = SD_MODULE_SIGNATURE,
	.name = "testmod",
	.description = "Test module for the loader's unit tests.",
	.conf_table = tm_table,
	.conf_size = sizeof(testmod_conf),
	.init = tm_init,
	.start = tm_start,
	.stop = tm_stop,
	.destroy = tm_destroy,
};
