/*
 * badsig.c - a module whose binary-compatibility signature is not this
 * storaged's (same ABI number, other API shape); the loader must refuse it
 * (tests/unit/test_module.c).
 */
#include <stddef.h>

#include "storaged.h"

static int bad_init(const sd_core_api *api, sd_core *core, const sd_module_conf *mc, void *conf,
		    void **state)
{
	(void)api, (void)core, (void)mc, (void)conf, (void)state;
	return 0;
}
static int bad_start(void *state)
{
	(void)state;
	return 0;
}
static void bad_void(void *state)
{
	(void)state;
}

const sd_module storaged_module = {
	.abi = SD_MODULE_ABI,
	.signature = "storaged-module/1:api0:conf0",
	.name = "badsig",
	.init = bad_init,
	.start = bad_start,
	.stop = bad_void,
	.destroy = bad_void,
};
