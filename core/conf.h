/*
 * conf.h - configuration: an INI file parsed with libinih through tables.
 *
 * The [storaged] section fills `sd_conf` through `sd_conf_table` (below, in
 * conf.c). Every other section is a front end: its common keys (enabled,
 * module, listen) are parsed here; the rest are kept as raw entries with
 * their line numbers until the module's own table (sd_module.conf_table)
 * converts them with sd_conf_apply().
 *
 * Errors name the file, the line and the key:
 *   "storaged.conf:12: [storaged] unknown key 'dta_dir'"
 *   "storaged.conf:7: [ftp] bad size '4Q' for key 'write_buffer'"
 * An unknown key, a bad value, a duplicate section, or a key outside any
 * section are all fatal.
 */
#ifndef SD_CONF_H
#define SD_CONF_H

#include <stddef.h>
#include <stdint.h>
#include "storaged.h"

/* The largest inline_max: no content above it is ever stored inline. */
#define SD_INLINE_LIMIT (1 << 20)

typedef struct sd_conf_entry {
	char *key;
	char *value;
	int line;
} sd_conf_entry;

/* A front-end section as read from the file. */
typedef struct sd_conf_section {
	char *name;       /* section name, e.g. "ftp" */
	int line;         /* line of the [name] header */
	int enabled;      /* enabled = yes|no (default no) */
	char *module;     /* module = NAME (default: the section name) */
	char *listen_host;/* listen = ADDR:PORT, "[::1]:21" for IPv6 */
	int listen_port;  /* 0 if no listen key */
	sd_conf_entry *entries; /* every other key, in file order */
	size_t nentries;
} sd_conf_section;

/* The [storaged] section. Durations in ms, sizes in bytes. */
typedef struct sd_conf {
	char *data_dir;            /* absolute after load */
	char *module_dir;          /* absolute after load */
	char *log_level_name;
	int log_level;             /* derived from log_level_name */
	char *log_file;            /* "" = stderr */
	char *log_format_name;     /* "kv" | "json" */
	int log_format;            /* derived: SD_LOG_FMT_* */
	char *access_log;          /* "" = access lines go to the main log */
	char *xferlog;             /* "" = none */
	char *durability_name;
	int durability_full;       /* derived: 1 = full, 0 = normal */
	int64_t write_buffer;
	int64_t writer_threads;
	int64_t db_readers;
	int64_t busy_timeout;
	int64_t checkpoint_interval;
	int64_t deleted_retention;
	int64_t version_retention;   /* 0 = keep all versions */
	int64_t journal_retention;   /* 0 = keep the journal forever */
	int64_t unreferenced_min_age;
	int disk_high_water;
	int64_t cleaner_interval;
	int64_t temp_max_age;
	int64_t auth_fail_delay;
	int64_t auth_max_failures;
	int64_t auth_block_time;
	int64_t auth_max_concurrent; /* concurrent Argon2id verifications */
	int64_t challenge_ranges;
	int64_t challenge_range_size;
	int64_t challenge_ttl;
	int64_t inline_max;   /* contents up to this are stored in the database (<= SD_INLINE_LIMIT) */
	int64_t max_handles;
	int64_t max_handles_per_user;
	int64_t handle_idle_timeout;
	int show_history_folders;  /* list /.snapshots and /.trash in "/" */
	char *blob_store;          /* "local", or a store module's name */
	char *cache_dir;           /* "" = data_dir/cache */
	int64_t cache_size;
	int64_t store_capacity;    /* 0 = unknown */
	/* [storaged] keys of store modules (NAME_key, store_NAME.so present in
	 * module_dir), unparsed: the module's table converts them when the
	 * store is opened (store_module.c). NULL when there are none. */
	sd_conf_section *store_keys;
	char *hook_command;          /* "" = none */
	char *hook_events;           /* "all" or a list */
	int64_t hook_concurrency;
	int64_t hook_timeout;        /* ms */
	int64_t hook_queue;          /* events waiting per sink */
	char *webhook_url;           /* "" = none */
	char *webhook_secret;
	char *webhook_events;
	int64_t webhook_timeout;     /* ms */
	int64_t webhook_retries;
	int64_t upload_expiry;       /* ms a resumable upload lives unused */
	int64_t max_uploads_per_user;
	int64_t max_file_size;     /* 0 = no limit */
	int64_t max_hole;          /* 0 = no limit */
	int64_t disk_reserve;      /* bytes kept free: not offered to uploads */
	char *user;                /* started as root: serve as this user ("" = stay) */

	char *config_path;         /* as given */
	char *config_dir;          /* absolute directory of the file */
	sd_conf_section *sections; /* front-end sections, file order */
	size_t nsections;
} sd_conf;

/* The [storaged] key table (for docs and tests). */
extern const sd_conf_item sd_conf_table[];

/* Parse path into *out (zeroed first). On error returns -SD_ECONFIG (or
 * -errno when the file cannot be read) with the message in err, and leaves
 * *out freed. */
int sd_conf_load(const char *path, sd_conf *out, char *err, size_t errlen);
/* Apply defaults only, as if the file had an empty [storaged] section;
 * config_dir is dir. For tests and tools. */
int sd_conf_defaults(sd_conf *out, const char *dir, char *err, size_t errlen);
void sd_conf_free(sd_conf *c);

/* Fill dst (zeroed by the caller, size of the table's struct) from a
 * section's raw entries through table: defaults first, then entries. An
 * entry whose key is not in the table is an error naming file:line.
 * file is the config path for messages; dir resolves SD_CONF_PATH values. */
int sd_conf_apply(const sd_conf_item *table, void *dst, const sd_conf_section *s,
		  const char *file, const char *dir, char *err, size_t errlen);
/* Free the SD_CONF_STR / SD_CONF_PATH strings that sd_conf_apply set. */
void sd_conf_release(const sd_conf_item *table, void *dst);

/* Value parsers; 0 or -EINVAL. */
int sd_conf_parse_bool(const char *s, int *out);
int sd_conf_parse_int(const char *s, int64_t *out);
int sd_conf_parse_size(const char *s, int64_t *out);
int sd_conf_parse_duration(const char *s, int64_t *out_ms);
int sd_conf_parse_percent(const char *s, int *out);
/* "ADDR:PORT", "[v6]:PORT" or ":PORT"/"PORT" (host 0.0.0.0). host malloc'd. */
int sd_conf_parse_listen(const char *s, char **host, int *port);

/* Markdown reference of a table (### key, type, default, help), for
 * docs/configuration.md. Returns malloc'd text. */
char *sd_conf_doc(const char *section, const sd_conf_item *table);

#endif
