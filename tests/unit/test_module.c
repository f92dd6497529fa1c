/*
 * test_module.c - core/module.c: loading, checking and driving front-end
 * modules through their lifecycle.
 *
 * The modules are built from tests/unit/testmod/ into the directory named by
 * $SD_TEST_MODDIR, else "build/tests" (tests run from the repository root):
 *   testmod.so  a valid module that records its calls (testmod.c)
 *   badabi.so   declares another ABI version (badabi.c)
 *   badsig.so   declares another signature (badsig.c)
 * Fallback: when badabi.so / badsig.so are missing (no Makefile rule yet),
 * they are compiled here with $CC (default cc) into that directory.
 */
#include <dlfcn.h>
#include <ini.h>
#include <sys/stat.h>

#include "testutil.h"
#include "core/module.h"

typedef struct testmod_seen {
	char mode[64];
	int64_t count;
	int loud;
	char section[64];
	char host[64];
	int port;
	char config_dir[512];
	int api_version;
	int state_ok;
} testmod_seen;

static const char *moddir(void)
{
	const char *d = getenv("SD_TEST_MODDIR");
	return d && *d ? d : "build/tests";
}

static char *tdir;
static void *pin;             /* our own handle on testmod.so: keeps it mapped */
static char *trace;           /* testmod_trace inside it */
static testmod_seen *seen;    /* testmod_seen_conf inside it */
static sd_core_api fake_api;  /* no engine needed: modules here call nothing */

static void setup(void)
{
	char *d = tu_tempdir();
	tdir = realpath(d, NULL);
	free(d);
	char p[1024];
	snprintf(p, sizeof p, "%s/testmod.so", moddir());
	pin = dlopen(p, RTLD_NOW | RTLD_LOCAL);
	ck_assert_msg(pin != NULL, "cannot load %s (run `make unit` to build it): %s", p, dlerror());
	trace = dlsym(pin, "testmod_trace");
	seen = dlsym(pin, "testmod_seen_conf");
	ck_assert_ptr_nonnull(trace);
	ck_assert_ptr_nonnull(seen);
	memset(&fake_api, 0, sizeof fake_api);
	fake_api.version = SD_CORE_API_VERSION;
	fake_api.size = sizeof fake_api;
}

static void teardown(void)
{
	dlclose(pin);
	tu_rmrf(tdir);
	free(tdir);
}

/* Builds moddir/NAME.so from tests/unit/testmod/NAME.c when it is missing
 * (documented fallback until the Makefile builds it). */
static void ensure_module(const char *name)
{
	char so[1024], cmd[8192];
	snprintf(so, sizeof so, "%s/%s.so", moddir(), name);
	if (access(so, R_OK) == 0)
		return;
	const char *cc = getenv("CC");
	if (cc && strlen(cc) > 1000)
		cc = NULL;
	snprintf(cmd, sizeof cmd,
		 "%s -std=c11 -D_GNU_SOURCE -fPIC -shared -I. -Icore -o '%s.tmp' tests/unit/testmod/%s.c"
		 " && mv '%s.tmp' '%s'",
		 cc && *cc ? cc : "cc", so, name, so, so);
	ck_assert_msg(system(cmd) == 0, "cannot build %s: %s", so, cmd);
}

/* Loads a config file holding text; the sections are the test's. */
static void load_conf(const char *text, sd_conf *c)
{
	char err[1024];
	char *p = tu_write_file(tdir, "m.conf", text);
	int rc = sd_conf_load(p, c, err, sizeof err);
	free(p);
	ck_assert_msg(rc == 0, "config: %s", err);
}

START_TEST(t_load_ok)
{
	sd_loaded_module m;
	char err[512] = "";
	ck_assert_msg(sd_module_load(moddir(), "testmod", &m, err, sizeof err) == 0, "%s", err);
	ck_assert_ptr_nonnull(m.dl);
	ck_assert_ptr_nonnull(m.mod);
	ck_assert_str_eq(m.mod->name, "testmod");
	ck_assert_int_eq(m.inited, 0);
	ck_assert_int_eq(m.started, 0);
	sd_module_unload(&m);
	ck_assert_ptr_null(m.dl);
	ck_assert_str_eq(trace, ""); /* loading calls nothing */
	sd_module_unload(&m);        /* twice is harmless */
}
END_TEST

START_TEST(t_lifecycle)
{
	sd_conf c;
	load_conf("[storaged]\ndata_dir = d\n"
		  "[t1]\nenabled = yes\nmodule = testmod\nlisten = [::1]:2121\ncount = 42\nloud = yes\n",
		  &c);
	sd_loaded_module m;
	char err[512] = "";
	ck_assert_msg(sd_module_load(moddir(), c.sections[0].module, &m, err, sizeof err) == 0, "%s", err);
	ck_assert_msg(sd_module_init(&m, &fake_api, NULL, &c, &c.sections[0], err, sizeof err) == 0, "%s",
		      err);
	ck_assert_str_eq(trace, "init,");
	ck_assert_int_eq(m.inited, 1);
	/* init received the parsed section */
	ck_assert_str_eq(seen->mode, "ok");
	ck_assert_int_eq(seen->count, 42);
	ck_assert_int_eq(seen->loud, 1);
	ck_assert_str_eq(seen->section, "t1");
	ck_assert_str_eq(seen->host, "::1");
	ck_assert_int_eq(seen->port, 2121);
	ck_assert_str_eq(seen->config_dir, tdir);
	ck_assert_int_eq(seen->api_version, SD_CORE_API_VERSION);

	ck_assert_msg(sd_module_start(&m, err, sizeof err) == 0, "%s", err);
	ck_assert_int_eq(m.started, 1);
	ck_assert_str_eq(trace, "init,start,");
	/* starting twice is refused */
	ck_assert_int_eq(sd_module_start(&m, err, sizeof err), -EINVAL);
	sd_module_stop(&m);
	ck_assert_str_eq(trace, "init,start,stop,");
	sd_module_stop(&m); /* no second stop */
	ck_assert_str_eq(trace, "init,start,stop,");
	sd_module_unload(&m);
	ck_assert_str_eq(trace, "init,start,stop,destroy,");
	ck_assert_int_eq(seen->state_ok, 1);
	sd_conf_free(&c);
}
END_TEST

/* unload of a started module stops it first */
START_TEST(t_unload_started)
{
	sd_conf c;
	load_conf("[t]\nenabled = yes\nmodule = testmod\nlisten = :1\n", &c);
	sd_loaded_module m;
	char err[512] = "";
	ck_assert_int_eq(sd_module_load(moddir(), "testmod", &m, err, sizeof err), 0);
	ck_assert_int_eq(sd_module_init(&m, &fake_api, NULL, &c, &c.sections[0], err, sizeof err), 0);
	/* defaults of the module's table */
	ck_assert_int_eq(seen->count, 3);
	ck_assert_int_eq(seen->loud, 0);
	ck_assert_str_eq(seen->host, "0.0.0.0");
	ck_assert_int_eq(sd_module_start(&m, err, sizeof err), 0);
	sd_module_unload(&m);
	ck_assert_str_eq(trace, "init,start,stop,destroy,");
	sd_conf_free(&c);
}
END_TEST

START_TEST(t_unknown_key)
{
	sd_conf c;
	load_conf("[storaged]\n\n[ftp]\nenabled = yes\nmodule = testmod\nlisten = :2121\ncolour = red\n",
		  &c);
	sd_loaded_module m;
	char err[512] = "", want[1024];
	ck_assert_int_eq(sd_module_load(moddir(), "testmod", &m, err, sizeof err), 0);
	ck_assert_int_eq(sd_module_init(&m, &fake_api, NULL, &c, &c.sections[0], err, sizeof err),
			 -SD_ECONFIG);
	snprintf(want, sizeof want, "%s/m.conf:7: [ftp] unknown key 'colour'", tdir);
	ck_assert_str_eq(err, want);
	ck_assert_str_eq(trace, ""); /* init never ran */
	ck_assert_int_eq(m.inited, 0);
	sd_module_unload(&m);
	ck_assert_str_eq(trace, "");
	sd_conf_free(&c);

	load_conf("[ftp]\nenabled = yes\nmodule = testmod\nlisten = :2121\ncount = many\n", &c);
	ck_assert_int_eq(sd_module_load(moddir(), "testmod", &m, err, sizeof err), 0);
	ck_assert_int_eq(sd_module_init(&m, &fake_api, NULL, &c, &c.sections[0], err, sizeof err),
			 -SD_ECONFIG);
	ck_assert_msg(strstr(err, "m.conf:5: [ftp] bad integer 'many' for key 'count'") != NULL, "%s", err);
	sd_module_unload(&m);
	sd_conf_free(&c);
}
END_TEST

START_TEST(t_init_fails)
{
	sd_conf c;
	load_conf("[ftp]\nenabled = yes\nmodule = testmod\nlisten = :2121\nmode = fail_init\n", &c);
	sd_loaded_module m;
	char err[512] = "";
	ck_assert_int_eq(sd_module_load(moddir(), "testmod", &m, err, sizeof err), 0);
	ck_assert_int_eq(sd_module_init(&m, &fake_api, NULL, &c, &c.sections[0], err, sizeof err),
			 -EADDRINUSE);
	ck_assert_str_eq(err, "[ftp] module 'testmod': init failed: Address already in use");
	/* destroy follows a failed init, with the state init set */
	ck_assert_str_eq(trace, "init,destroy,");
	ck_assert_int_eq(seen->state_ok, 1);
	ck_assert_int_eq(m.inited, 0);
	ck_assert_int_eq(sd_module_start(&m, err, sizeof err), -EINVAL);
	sd_module_unload(&m);
	ck_assert_str_eq(trace, "init,destroy,"); /* not destroyed twice */
	sd_conf_free(&c);
}
END_TEST

START_TEST(t_start_fails)
{
	sd_conf c;
	load_conf("[web]\nenabled = yes\nmodule = testmod\nlisten = 127.0.0.1:80\nmode = fail_start\n", &c);
	sd_loaded_module m;
	char err[512] = "";
	ck_assert_int_eq(sd_module_load(moddir(), "testmod", &m, err, sizeof err), 0);
	ck_assert_int_eq(sd_module_init(&m, &fake_api, NULL, &c, &c.sections[0], err, sizeof err), 0);
	ck_assert_int_eq(sd_module_start(&m, err, sizeof err), -EACCES);
	ck_assert_str_eq(err, "[web] module 'testmod': start failed: Permission denied");
	ck_assert_int_eq(m.started, 0);
	sd_module_unload(&m);
	ck_assert_str_eq(trace, "init,start,destroy,"); /* no stop: it never started */
	sd_conf_free(&c);
}
END_TEST

START_TEST(t_missing_file)
{
	sd_loaded_module m;
	char err[512] = "";
	ck_assert_int_eq(sd_module_load(moddir(), "nosuchmod", &m, err, sizeof err), -SD_ECONFIG);
	ck_assert_msg(strstr(err, "module 'nosuchmod'") && strstr(err, "nosuchmod.so") &&
			  strstr(err, "No such file"),
		      "%s", err);
	ck_assert_ptr_null(m.dl);
	sd_module_unload(&m);
	ck_assert_int_eq(sd_module_load("/nonexistent/dir", "testmod", &m, err, sizeof err), -SD_ECONFIG);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/dir/testmod.so"));
}
END_TEST

START_TEST(t_bad_name)
{
	static const char *const bad[] = {"../x", "", "a/b", "FTP", "x.so", "/etc/passwd", "a-b", "..", NULL};
	for (int i = 0; bad[i]; i++) {
		sd_loaded_module m;
		char err[512] = "";
		ck_assert_int_eq(sd_module_load(moddir(), bad[i], &m, err, sizeof err), -SD_ECONFIG);
		ck_assert_msg(strstr(err, "bad module name") != NULL, "'%s': %s", bad[i], err);
		ck_assert_ptr_null(m.dl);
	}
	sd_loaded_module m;
	char err[512] = "";
	ck_assert_int_eq(sd_module_load(moddir(), NULL, &m, err, sizeof err), -SD_ECONFIG);
}
END_TEST

START_TEST(t_bad_abi)
{
	ensure_module("badabi");
	sd_loaded_module m;
	char err[512] = "";
	ck_assert_int_eq(sd_module_load(moddir(), "badabi", &m, err, sizeof err), -SD_ECONFIG);
	char want[256];
	snprintf(want, sizeof want, "module 'badabi': ABI version %d, this storaged needs %d",
		 SD_MODULE_ABI + 1, SD_MODULE_ABI);
	ck_assert_msg(strstr(err, want) != NULL, "%s", err);
	ck_assert_ptr_null(m.dl);
}
END_TEST

START_TEST(t_bad_signature)
{
	ensure_module("badsig");
	sd_loaded_module m;
	char err[512] = "";
	ck_assert_int_eq(sd_module_load(moddir(), "badsig", &m, err, sizeof err), -SD_ECONFIG);
	ck_assert_msg(strstr(err, "module 'badsig': signature 'storaged-module/1:api0:conf0' does not match") != NULL,
		      "%s", err);
	ck_assert_ptr_nonnull(strstr(err, SD_MODULE_SIGNATURE));
	ck_assert_ptr_null(m.dl);
}
END_TEST

/* A file whose descriptor names another module, and a shared object that is
 * not a module at all. */
START_TEST(t_wrong_name_and_not_module)
{
	char real[1024], link[1024];
	char *abs = realpath(moddir(), NULL);
	ck_assert_ptr_nonnull(abs);
	snprintf(real, sizeof real, "%s/testmod.so", abs);
	free(abs);
	snprintf(link, sizeof link, "%s/other.so", tdir);
	ck_assert_int_eq(symlink(real, link), 0);
	sd_loaded_module m;
	char err[512] = "";
	ck_assert_int_eq(sd_module_load(tdir, "other", &m, err, sizeof err), -SD_ECONFIG);
	ck_assert_msg(strstr(err, "declares the name 'testmod'") != NULL, "%s", err);

	/* libinih: a real shared object without the descriptor */
	Dl_info info;
	ck_assert_int_ne(dladdr((void *)ini_parse, &info), 0);
	snprintf(link, sizeof link, "%s/notmod.so", tdir);
	ck_assert_int_eq(symlink(info.dli_fname, link), 0);
	ck_assert_int_eq(sd_module_load(tdir, "notmod", &m, err, sizeof err), -SD_ECONFIG);
	ck_assert_msg(strstr(err, "does not export 'storaged_module'") != NULL, "%s", err);

	/* garbage that is no shared object */
	char *p = tu_write_file(tdir, "junk.so", "not an ELF file\n");
	free(p);
	ck_assert_int_eq(sd_module_load(tdir, "junk", &m, err, sizeof err), -SD_ECONFIG);
	ck_assert_msg(strstr(err, "module 'junk': cannot load") != NULL, "%s", err);
}
END_TEST

static Suite *module_suite(void)
{
	Suite *s = suite_create("module");
	TCase *tc = tcase_create("load");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, t_load_ok);
	tcase_add_test(tc, t_missing_file);
	tcase_add_test(tc, t_bad_name);
	tcase_add_test(tc, t_bad_abi);
	tcase_add_test(tc, t_bad_signature);
	tcase_add_test(tc, t_wrong_name_and_not_module);
	suite_add_tcase(s, tc);

	tc = tcase_create("lifecycle");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, t_lifecycle);
	tcase_add_test(tc, t_unload_started);
	tcase_add_test(tc, t_unknown_key);
	tcase_add_test(tc, t_init_fails);
	tcase_add_test(tc, t_start_fails);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(module_suite());
}
