/*
 * sdjson.h - the JSON form of the engine's public types, shared by
 * storagectl --json and the HTTP front end (admin API and file metadata).
 *
 * One function per type, so an object has the same field names and value
 * types wherever it is printed. The field lists below are the contract;
 * docs/rest-api.md and docs/storagectl.md describe the same lists and must
 * change with them.
 *
 *   sd_user        {"id","name","admin","disabled","quota","used"}
 *   sd_stats       {"users","files","dirs","deleted","logical_bytes",
 *                   "stored_bytes","dedup_ratio","blobs",
 *                   "unreferenced_blobs","versions","journal_rows"}
 *   sd_token_info  {"id","user","scope","created","expires","revoked","state"}
 *   sd_key_info    {"id","user","type","fingerprint","comment","created"}
 *   sd_gc_report   {"nodes_purged","versions_dropped","journal_pruned",
 *                   "blobs_removed","bytes_freed","temps_removed",
 *                   "disk_used_pct"}
 *   sd_stat        {"path","kind","size","mode","mtime","sha256",
 *                   "versions","ctime","created_by","changed_by"}, or as a
 *                   listing entry
 *                  {"name","kind","size","mode","mtime","sha256"}
 *   sd_version     {"id","ts","size","sha256","current","mtime","user",
 *                   "proto","addr","op"}
 *   sd_trash_item  {"id","name","path","kind","deleted","size","files"}
 *   sd_rollback_report {"path","at","ts","undo_at","restored","revived",
 *                   "moved","created","trashed"}
 *   sd_group       {"name","members","created"}
 *   sd_share       {"name","mount","quota","used","rules","created"}
 *   sd_share_rule  {"share","path","user","group","rights","deleted"}
 *   sd_link_info   {"id","user","path","kind","mode","password","created",
 *                   "expires","max_downloads","downloads","revoked","state"}
 *
 * This file sees only core/storaged.h and jansson (plus the C library):
 * it is linked into front-end modules, which must not link core code.
 *
 * Ownership: every sd_json_* constructor returns a new reference owned by
 * the caller (json_decref it, or hand it to a call that steals it), or
 * NULL when jansson could not allocate. Strings from the engine that are
 * not valid UTF-8 (jansson refuses those) have each bad byte replaced by
 * U+FFFD, so a stray byte in a name never drops a field or fails a whole
 * answer.
 */
#ifndef SD_SDJSON_H
#define SD_SDJSON_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "core/storaged.h"

/* Flags every writer of these objects adds to its json_dump* flags: reals
 * (only dedup_ratio today) print as the short decimal they were rounded
 * to ("1.4825"), not with 17 significant digits ("1.4824999999999999"). */
#define SD_JSON_DUMP_FLAGS JSON_REAL_PRECISION(15)

/* A JSON string for s (invalid UTF-8 bytes become U+FFFD); JSON null when
 * s is NULL. */
json_t *sd_json_string(const char *s);

/* The text of a time in these objects and in storagectl's tables: ISO 8601
 * UTC, "2026-11-21T10:00:00Z", with with_ms "2026-11-21T10:00:00.123Z".
 * ms is milliseconds since the epoch. "?" for a time gmtime cannot
 * represent. 32 bytes of out are enough; the text is cut to outlen. */
void sd_json_time_text(int64_t ms, int with_ms, char *out, size_t outlen);

/* User: quota 0 = unlimited; used = logical bytes of live files. */
json_t *sd_json_user(const sd_user *u);

/* logical_bytes / stored_bytes, 1.0 when nothing is stored. */
double sd_json_dedup_ratio(const sd_stats *s);
/* Engine counters plus "dedup_ratio" (sd_json_dedup_ratio rounded to 4
 * decimals). */
json_t *sd_json_stats(const sd_stats *s);

/* "revoked", "expired" (expires set and <= now, in seconds) or "active". */
const char *sd_json_token_state(const sd_token_info *t, int64_t now);
/* Token: scope "ro"|"rw"; created and expires as time text (expires null
 * = never); revoked bool; state as sd_json_token_state(). now is seconds
 * since the epoch (api->now). */
json_t *sd_json_token(const sd_token_info *t, int64_t now);

/* SSH key: fingerprint "SHA256:..." as ssh-keygen -l prints it; comment
 * "" when none; created as time text. */
json_t *sd_json_key(const sd_key_info *k);

/* Cleaner report. */
json_t *sd_json_gc_report(const sd_gc_report *r);

/* Metadata of one node, in two forms:
 *  - name != NULL: a listing entry {"name","kind","size","mode","mtime",
 *    "sha256"};
 *  - name == NULL: the full form (stat, upload and move answers)
 *    {"path","kind","size","mode","mtime","sha256","versions","ctime",
 *    "created_by","changed_by"}, with "path" only when path != NULL
 *    (created_by and changed_by: user names, null when not known).
 * kind is "file"|"dir"; mode the permission bits as 4 octal digits
 * ("0644"); mtime and ctime are seconds since the epoch; sha256 and
 * versions are present for files only. */
json_t *sd_json_stat(const char *path, const char *name, const sd_stat *st);

/* A version of a file: ts as time text with ms; mtime in seconds; user,
 * proto, addr and op null when not recorded (versions made before the
 * engine kept them). */
json_t *sd_json_version(const sd_version *v);

/* A trash item: kind "file"|"dir"; deleted as time text with ms; size and
 * files count what was deleted with it. */
json_t *sd_json_trash_item(const sd_trash_item *t);

/* What a rollback of path to the moment at (ms) did: at, ts (the
 * rollback's own moment) and undo_at (ts - 1, the moment to roll back to
 * to undo it) as time text with ms, and the counts. */
json_t *sd_json_rollback(const char *path, int64_t at, const sd_rollback_report *r);

/* Rights (SD_RIGHT_*) as words: "list,read,write", "none" for 0. */
void sd_json_rights_text(unsigned r, char *out, size_t outlen);
/* The other way: words separated by ',', '+' or ' ': list, read, write,
 * delete, rename, share, and the sets ro (list,read), rw (ro + write,
 * delete, rename), full or all (every right), dropbox (write), none.
 * *ok = 0 for an empty text or an unknown word. */
unsigned sd_json_rights_parse(const char *s, int *ok);
/* A group: members as an array of names; created as time text. */
json_t *sd_json_group(const sd_group *g);
/* A shared folder: mount "/<name>"; quota 0 = unlimited; used in bytes. */
json_t *sd_json_share(const sd_share *sh);
/* A rule: user or group (the other null); rights as sd_json_rights_text;
 * deleted: its folder is in the trash. */
json_t *sd_json_share_rule(const sd_share_rule *r);
/* "revoked", "gone" (its target was deleted), "expired", "used_up" or
 * "active"; now in seconds. */
const char *sd_json_link_state(const sd_link_info *l, int64_t now);
/* A share link (never its token): mode "read"|"upload"; created and
 * expires as time text (expires null = never); max_downloads null = no
 * limit; state as sd_json_link_state. */
json_t *sd_json_link(const sd_link_info *l, int64_t now);

#endif
