/*
 * module.c - the front-end module loader.
 *
 * Lifecycle of one sd_loaded_module (one per enabled section):
 *
 *     (zeroed) --load--> LOADED --init--> INITED --start--> STARTED
 *        ^                 |  init fails:     |                |
 *        |                 |  destroy(state)  | start fails    | stop
 *        |                 v  called at once  v                v
 *        +--------------- unload <------- INITED <--------- INITED
 *
 * unload() undoes whatever was done: stop if started, destroy if inited,
 * release the config struct, dlclose. It is safe on a zeroed struct, after
 * a failed load and twice in a row.
 *
 * Error messages are one line. sd_module_load() does not know the section,
 * so its messages start with "module 'NAME': "; the caller prefixes the
 * section ("[ftp] "). sd_module_init() and sd_module_start() know it and
 * write "[ftp] module 'ftp': init failed: Address already in use"; config
 * errors in the section pass through as "FILE:LINE: [ftp] unknown key 'x'".
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "module.h"
#include "util.h"

static void seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	if (n < 0)
		err[0] = '\0';
}

/* [a-z0-9_]+, at most 64 bytes: never a path. */
static int valid_name(const char *s)
{
	size_t n = 0;
	for (; s && *s; s++, n++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return 0;
	return n > 0 && n <= 64;
}

/* Words for an error returned by a module's init/start. */
static const char *errtext(const sd_core_api *api, int rc)
{
	if (api && api->strerror)
		return api->strerror(rc);
	int e = rc < 0 ? -rc : rc;
	if (e == SD_ECONFIG)
		return "configuration error (see the log)";
	if (e < SD_EBASE)
		return strerror(e);
	return "engine error";
}

int sd_module_load(const char *dir, const char *name, sd_loaded_module *m,
		   char *err, size_t errlen)
{
	memset(m, 0, sizeof *m);
	if (!valid_name(name)) {
		seterr(err, errlen, "bad module name '%s' (use a-z, 0-9 and _)", name ? name : "");
		return -SD_ECONFIG;
	}
	if (!dir || !*dir)
		dir = ".";
	char *path = sd_xasprintf("%s/%s.so", dir, name);
	struct stat st;
	if (stat(path, &st) < 0) {
		int e = errno;
		seterr(err, errlen, "module '%s': %s: %s", name, path, strerror(e));
		free(path);
		return -SD_ECONFIG;
	}
	/* dlopen() treats a name without '/' as a library search: never the
	 * case here, path always holds dir + '/'. */
	void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!dl) {
		const char *why = dlerror();
		seterr(err, errlen, "module '%s': cannot load: %s", name, why ? why : path);
		free(path);
		return -SD_ECONFIG;
	}
	dlerror();
	const sd_module *mod = dlsym(dl, SD_MODULE_SYMBOL);
	if (!mod) {
		seterr(err, errlen, "module '%s': %s does not export '%s' (not a storaged module)",
		       name, path, SD_MODULE_SYMBOL);
		goto bad;
	}
	/* Check the ABI first: with another ABI the rest of the layout is
	 * unknown, so nothing else may be read. */
	if (mod->abi != SD_MODULE_ABI) {
		seterr(err, errlen,
		       "module '%s': ABI version %u, this storaged needs %u (rebuild the module)",
		       name, (unsigned)mod->abi, (unsigned)SD_MODULE_ABI);
		goto bad;
	}
	if (!mod->signature || strcmp(mod->signature, SD_MODULE_SIGNATURE) != 0) {
		seterr(err, errlen,
		       "module '%s': signature '%.80s' does not match '%s' (rebuild the module)",
		       name, mod->signature ? mod->signature : "(none)", SD_MODULE_SIGNATURE);
		goto bad;
	}
	if (!mod->name || strcmp(mod->name, name) != 0) {
		seterr(err, errlen, "module '%s': %s declares the name '%.64s'", name, path,
		       mod->name ? mod->name : "(none)");
		goto bad;
	}
	if (!mod->init || !mod->start || !mod->stop || !mod->destroy) {
		seterr(err, errlen, "module '%s': descriptor lacks init, start, stop or destroy", name);
		goto bad;
	}
	if (mod->conf_size > 0 && !mod->conf_table) {
		seterr(err, errlen, "module '%s': descriptor has conf_size but no conf_table", name);
		goto bad;
	}
	free(path);
	m->dl = dl;
	m->mod = mod;
	return 0;
bad:
	free(path);
	dlclose(dl);
	return -SD_ECONFIG;
}

int sd_module_init(sd_loaded_module *m, const sd_core_api *api, sd_core *core,
		   const sd_conf *conf, const sd_conf_section *section,
		   char *err, size_t errlen)
{
	if (!m->mod || m->inited) {
		seterr(err, errlen, "[%s] module not loaded or already initialised",
		       section ? section->name : "?");
		return -EINVAL;
	}
	const sd_module *mod = m->mod;
	m->section = section;
	/* a 1-byte block when the module has no config, so conf is never NULL */
	m->conf = sd_xcalloc(1, mod->conf_size ? mod->conf_size : 1);
	if (mod->conf_table) {
		int rc = sd_conf_apply(mod->conf_table, m->conf, section, conf->config_path,
				       conf->config_dir, err, errlen);
		if (rc < 0)
			return rc;
	}
	m->mc.section = section->name;
	m->mc.listen_host = section->listen_host;
	m->mc.listen_port = section->listen_port;
	m->mc.config_dir = conf->config_dir;

	m->state = NULL;
	int rc = mod->init(api, core, &m->mc, m->conf, &m->state);
	if (rc != 0) {
		seterr(err, errlen, "[%s] module '%s': init failed: %s", section->name, mod->name,
		       errtext(api, rc));
		/* storaged.h: destroy follows a failed init with whatever state
		 * init set */
		mod->destroy(m->state);
		m->state = NULL;
		return rc < 0 ? rc : -EIO;
	}
	m->inited = 1;
	return 0;
}

int sd_module_start(sd_loaded_module *m, char *err, size_t errlen)
{
	if (!m->inited || m->started) {
		seterr(err, errlen, "[%s] module not initialised or already started",
		       m->section ? m->section->name : "?");
		return -EINVAL;
	}
	int rc = m->mod->start(m->state);
	if (rc != 0) {
		seterr(err, errlen, "[%s] module '%s': start failed: %s", m->section->name,
		       m->mod->name, errtext(NULL, rc));
		return rc < 0 ? rc : -EIO;
	}
	m->started = 1;
	return 0;
}

void sd_module_stop(sd_loaded_module *m)
{
	if (m->started) {
		m->mod->stop(m->state);
		m->started = 0;
	}
}

void sd_module_unload(sd_loaded_module *m)
{
	sd_module_stop(m);
	if (m->inited) {
		m->mod->destroy(m->state);
		m->inited = 0;
		m->state = NULL;
	}
	if (m->conf) {
		if (m->mod && m->mod->conf_table)
			sd_conf_release(m->mod->conf_table, m->conf);
		free(m->conf);
	}
	if (m->dl)
		dlclose(m->dl);
	memset(m, 0, sizeof *m);
}
