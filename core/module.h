/*
 * module.h - the front-end module loader (nginx's ngx_module_t idea).
 *
 * sd_module_load() dlopen()s "<module_dir>/<name>.so", finds the exported
 * `storaged_module` descriptor and refuses, with a clear message, a missing
 * symbol, an ABI version or signature that differs from this binary's, or a
 * descriptor whose name is not the one asked for. sd_module_init() fills the
 * module's config struct from its section through the module's table and
 * calls its init. Lifecycle: load -> init -> start -> stop -> destroy ->
 * unload; each step may fail, and unload() undoes whatever was done.
 */
#ifndef SD_MODULE_H
#define SD_MODULE_H

#include "conf.h"
#include "storaged.h"

typedef struct sd_loaded_module {
	void *dl;
	const sd_module *mod;
	const sd_conf_section *section;
	sd_module_conf mc;
	void *conf;   /* module config struct, mod->conf_size bytes */
	void *state;  /* from init */
	int inited, started;
} sd_loaded_module;

/* 0, or -SD_ECONFIG with err set. */
int sd_module_load(const char *dir, const char *name, sd_loaded_module *m,
		   char *err, size_t errlen);
/* Parse the section into m->conf and call init. 0 or negative with err. */
int sd_module_init(sd_loaded_module *m, const sd_core_api *api, sd_core *core,
		   const sd_conf *conf, const sd_conf_section *section,
		   char *err, size_t errlen);
int sd_module_start(sd_loaded_module *m, char *err, size_t errlen);
void sd_module_stop(sd_loaded_module *m);
/* destroy (if inited), free conf, dlclose. Safe on a partly loaded m. */
void sd_module_unload(sd_loaded_module *m);

#endif
