/*
 * store_module.h - blob store back ends as loadable modules (S3, RADOS).
 *
 * A store module is a shared object store_NAME.so in module_dir exporting
 * one `sd_store_module` descriptor named `storaged_store_module`, with the
 * front ends' discipline (storaged.h, module.c): the loader checks the ABI
 * version first, then the signature, then that the descriptor names the
 * module asked for, and refuses a mismatch with one clear line.
 *
 * The module sees the engine only through the narrow `sd_store_host` table
 * below (a log function and a few paths): no SQLite, no sessions, no core
 * symbols (it links util/ privately, like a front end). It implements
 * store.h's sd_store_ops except lock/unlock, which the engine's remote
 * wrapper (store/remote.c) provides, with the read cache and read-ahead.
 *
 * Keys: the module's keys are [storaged] keys named NAME_key (s3_bucket,
 * rados_pool), converted through its conf_table by the core (file:line on
 * any bad value) before open() is called. Every row's name must start
 * with "NAME_".
 */
#ifndef SD_STORE_MODULE_H
#define SD_STORE_MODULE_H

#include <stdint.h>

#include "store.h"
#include "storaged.h"

#define SD_STORE_ABI 1
/* Changes whenever sd_store_module, sd_store_host or sd_store_ops changes
 * shape. */
#define SD_STORE_SIGNATURE "storaged-store/1:ops2:host1:conf1"
#define SD_STORE_SYMBOL "storaged_store_module"

/* What the engine gives a store module: valid until destroy returns. */
typedef struct sd_store_host {
	uint32_t version; /* SD_STORE_ABI */
	/* One log line of key=value pairs at level (enum sd_log_level). */
	void (*log)(int level, const char *src, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
	const char *data_dir;
	const char *tmp_dir;    /* the engine's temp directory (same file system) */
	const char *config_dir; /* directory of the config file */
	int durable;            /* durability = full */
	void *spare[8];
} sd_store_host;

/* open: connect and check that the store is usable (the endpoint answers,
 * the credentials are accepted, the bucket or pool exists), so that a bad
 * config fails start-up. On failure NULL and one line in err that names
 * the key to fix ("s3_bucket: bucket 'x' does not exist"). conf is the
 * module's config struct (conf_size bytes, filled from conf_table), valid
 * until the store is destroyed. The store's ops must leave lock and unlock
 * NULL and set SD_STORE_REMOTE in flags. */
typedef struct sd_store_module {
	uint32_t abi;          /* SD_STORE_ABI */
	const char *signature; /* SD_STORE_SIGNATURE */
	const char *name;      /* "s3": matches blob_store = s3 */
	const char *description;
	const sd_conf_item *conf_table;
	size_t conf_size;
	sd_store *(*open)(const sd_store_host *host, const void *conf, char *err, size_t errlen);
	void *spare[8];
} sd_store_module;

#endif
