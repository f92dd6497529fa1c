/*
 * storemod.c - the blob store loader: blob_store = local | NAME.
 *
 * local is built in (store/local.c). Any other NAME is the module
 * <module_dir>/store_NAME.so (store_module.h), loaded like a front end
 * (module.c): dlopen, then the descriptor's ABI version, its signature and
 * its name are checked, in that order, before anything else is read. The
 * module's keys ([storaged] NAME_key, set aside by conf.c) go through its
 * table with file:line errors; then open() connects and checks the store,
 * and the result is wrapped by store/remote.c (locks, cache, readers).
 *
 * Every failure is one line naming what to fix: the key, the module file,
 * or the module's own reason ("s3_endpoint: ...").
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "log.h"
#include "store_module.h"

typedef struct loaded {
	void *dl;
	const sd_store_module *mod;
	void *conf;
	sd_store_host host;
	char *data_dir, *tmp_dir, *config_dir;
} loaded;

static void host_log(int level, const char *src, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sd_vlog(level, src, fmt, ap);
	va_end(ap);
}

static void unload(void *arg)
{
	loaded *l = arg;
	if (!l)
		return;
	if (l->conf) {
		sd_conf_release(l->mod->conf_table, l->conf);
		free(l->conf);
	}
	if (l->dl)
		dlclose(l->dl);
	free(l->data_dir);
	free(l->tmp_dir);
	free(l->config_dir);
	free(l);
}

/* dlopen store_NAME.so and check its descriptor. NULL with err set. */
static loaded *load(const char *module_dir, const char *name, char *err, size_t errlen)
{
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))) {
			snprintf(err, errlen, "bad blob_store '%s' (use local, s3, rados or a module name)", name);
			return NULL;
		}
	char *path = sd_xasprintf("%s/store_%s.so", module_dir, name);
	void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!dl) {
		const char *why = dlerror();
		snprintf(err, errlen, "blob_store = %s: cannot load %s: %s (is its package installed?)",
			 name, path, why ? why : "unknown error");
		free(path);
		return NULL;
	}
	const sd_store_module *mod = dlsym(dl, SD_STORE_SYMBOL);
	const char *bad = NULL;
	char why[256];
	if (!mod) {
		bad = "does not export '" SD_STORE_SYMBOL "' (not a storaged store module)";
	} else if (mod->abi != SD_STORE_ABI) {
		snprintf(why, sizeof why, "ABI version %u, this storaged needs %u (rebuild the module)",
			 (unsigned)mod->abi, (unsigned)SD_STORE_ABI);
		bad = why;
	} else if (!mod->signature || strcmp(mod->signature, SD_STORE_SIGNATURE) != 0) {
		snprintf(why, sizeof why, "signature '%.80s' does not match '%s' (rebuild the module)",
			 mod->signature ? mod->signature : "(none)", SD_STORE_SIGNATURE);
		bad = why;
	} else if (!mod->name || strcmp(mod->name, name) != 0) {
		snprintf(why, sizeof why, "declares the name '%.64s'", mod->name ? mod->name : "(none)");
		bad = why;
	} else if (!mod->open || (mod->conf_size && !mod->conf_table)) {
		bad = "descriptor lacks open, or has conf_size without conf_table";
	}
	if (bad) {
		snprintf(err, errlen, "blob_store = %s: %s %s", name, path, bad);
		free(path);
		dlclose(dl);
		return NULL;
	}
	free(path);
	loaded *l = sd_xcalloc(1, sizeof *l);
	l->dl = dl;
	l->mod = mod;
	return l;
}

/* Fill l->conf from the keys NAME_* of conf->store_keys. */
static int apply_keys(loaded *l, const sd_conf *conf, const char *name, char *err, size_t errlen)
{
	sd_conf_section sec = {0};
	sec.name = "storaged";
	size_t n = conf->store_keys ? conf->store_keys->nentries : 0;
	sec.entries = n ? sd_xcalloc(n, sizeof *sec.entries) : NULL;
	size_t plen = strlen(name);
	for (size_t i = 0; i < n; i++) {
		const sd_conf_entry *e = &conf->store_keys->entries[i];
		if (strncmp(e->key, name, plen) == 0 && e->key[plen] == '_')
			sec.entries[sec.nentries++] = *e;
	}
	l->conf = sd_xcalloc(1, l->mod->conf_size ? l->mod->conf_size : 1);
	int r = 0;
	if (l->mod->conf_table)
		r = sd_conf_apply(l->mod->conf_table, l->conf, &sec, conf->config_path,
				  conf->config_dir, err, errlen);
	free(sec.entries);
	if (r < 0) {
		free(l->conf);
		l->conf = NULL;
	}
	return r;
}

int sd_core_store_check(const sd_conf *conf, char *err, size_t errlen)
{
	size_t n = conf->store_keys ? conf->store_keys->nentries : 0;
	for (size_t i = 0; i < n; i++) {
		const char *key = conf->store_keys->entries[i].key;
		char name[40];
		size_t k = strcspn(key, "_");
		snprintf(name, sizeof name, "%.*s", (int)k, key);
		int seen = 0; /* a prefix checked already */
		for (size_t j = 0; j < i && !seen; j++)
			seen = strncmp(conf->store_keys->entries[j].key, name, k) == 0 &&
			       conf->store_keys->entries[j].key[k] == '_';
		if (seen)
			continue;
		loaded *l = load(conf->module_dir, name, err, errlen);
		if (!l)
			return -SD_ECONFIG;
		int r = apply_keys(l, conf, name, err, errlen);
		unload(l);
		if (r < 0)
			return r;
	}
	return 0;
}

sd_store *sd_core_store_open(const sd_conf *conf, const char *name, const char *data_dir,
			 const char *tmp_dir, int fill, char *err, size_t errlen)
{
	char *bd = sd_xasprintf("%s/blobs", data_dir);
	if (strcmp(name, "local") == 0) {
		sd_store *s = sd_store_local_open(bd, conf->durability_full, err, errlen);
		free(bd);
		return s;
	}
	loaded *l = load(conf->module_dir, name, err, errlen);
	if (!l || apply_keys(l, conf, name, err, errlen) < 0) {
		unload(l);
		free(bd);
		return NULL;
	}
	l->data_dir = sd_xstrdup(data_dir);
	l->tmp_dir = sd_xstrdup(tmp_dir);
	l->config_dir = sd_xstrdup(conf->config_dir ? conf->config_dir : ".");
	l->host.version = SD_STORE_ABI;
	l->host.log = host_log;
	l->host.data_dir = l->data_dir;
	l->host.tmp_dir = l->tmp_dir;
	l->host.config_dir = l->config_dir;
	l->host.durable = conf->durability_full;
	err[0] = '\0';
	sd_store *inner = l->mod->open(&l->host, l->conf, err, errlen);
	if (!inner) {
		if (!err[0])
			snprintf(err, errlen, "blob_store = %s: the store cannot be opened", name);
		unload(l);
		free(bd);
		return NULL;
	}
	char *cd = conf->cache_dir && *conf->cache_dir ? sd_xstrdup(conf->cache_dir)
						       : sd_xasprintf("%s/cache", data_dir);
	sd_remote_opts o = {
	    .blob_dir = bd,
	    .cache_dir = cd,
	    .cache_size = (uint64_t)conf->cache_size,
	    .tmp_dir = tmp_dir,
	    .fill = fill,
	    .durable = conf->durability_full,
	};
	sd_store *s = sd_store_remote_wrap(inner, &o, unload, l, err, errlen);
	free(cd);
	free(bd);
	return s;
}

char *sd_core_store_doc(const char *module_dir)
{
	sd_buf b = SD_BUF_INIT;
	DIR *d = module_dir ? opendir(module_dir) : NULL;
	if (!d)
		return sd_buf_steal(&b);
	char *names[32];
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < 32) {
		size_t len = strlen(e->d_name);
		if (strncmp(e->d_name, "store_", 6) == 0 && len > 9 &&
		    strcmp(e->d_name + len - 3, ".so") == 0)
			names[n++] = sd_xstrndup(e->d_name + 6, len - 9);
	}
	closedir(d);
	/* sorted, so the reference does not depend on the directory order */
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
			char *t = names[j];
			names[j] = names[j - 1];
			names[j - 1] = t;
		}
	for (int i = 0; i < n; i++) {
		char err[512];
		loaded *l = load(module_dir, names[i], err, sizeof err);
		if (l) {
			sd_buf_printf(&b, "## [storaged] keys of blob_store = %s (module store_%s.so)\n\n",
				      names[i], names[i]);
			if (l->mod->description)
				sd_buf_printf(&b, "%s\n\n", l->mod->description);
			if (l->mod->conf_table) {
				char *doc = sd_conf_doc(NULL, l->mod->conf_table);
				sd_buf_puts(&b, doc);
				free(doc);
			}
			unload(l);
		}
		free(names[i]);
	}
	return sd_buf_steal(&b);
}
