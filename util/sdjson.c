/*
 * sdjson.c - the JSON form of the engine's public types (see sdjson.h for
 * the field lists, which are the contract).
 *
 * Built with json_object_set_new() one field at a time rather than
 * json_pack(): a field list reads top to bottom like the documentation,
 * and a string the engine hands us is always passed through
 * sd_json_string(), which json_pack("s") would not do.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/sdjson.h"

/* Length of the valid UTF-8 sequence at p (1-4), or 0 when p does not
 * start one. Same rules as jansson's own check: no overlong forms, no
 * surrogates, nothing above U+10FFFF. */
static size_t utf8_seq(const unsigned char *p)
{
	unsigned c = p[0];
	size_t n;
	unsigned v;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		v = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		v = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		v = c & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80) /* also stops at the NUL */
			return 0;
		v = (v << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && v < 0x800) || (n == 4 && v < 0x10000) || v > 0x10ffff ||
	    (v >= 0xd800 && v <= 0xdfff))
		return 0;
	return n;
}

json_t *sd_json_string(const char *s)
{
	if (!s)
		return json_null();
	const unsigned char *p = (const unsigned char *)s;
	size_t bad = 0, len = 0;
	while (p[len]) {
		size_t n = utf8_seq(p + len);
		bad += n == 0;
		len += n ? n : 1;
	}
	if (!bad)
		return json_stringn(s, len);
	/* each bad byte becomes the 3 bytes of U+FFFD */
	char *clean = malloc(len + 2 * bad + 1);
	if (!clean)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		size_t n = utf8_seq(p + i);
		if (n) {
			memcpy(clean + o, p + i, n);
			o += n;
			i += n;
		} else {
			memcpy(clean + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	json_t *j = json_stringn(clean, o);
	free(clean);
	return j;
}

void sd_json_time_text(int64_t ms, int with_ms, char *out, size_t outlen)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char base[32];
	if (!gmtime_r(&t, &tm) || !strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm)) {
		snprintf(out, outlen, "?");
		return;
	}
	if (with_ms)
		snprintf(out, outlen, "%s.%03dZ", base, (int)(ms % 1000));
	else
		snprintf(out, outlen, "%sZ", base);
}

/* Add key: value (stolen) to o; a NULL value (out of memory) marks *ok. */
static void put(json_t *o, const char *key, json_t *v, int *ok)
{
	if (!v || json_object_set_new(o, key, v) < 0)
		*ok = 0;
}

/* o when every put() succeeded, else NULL (o released). */
static json_t *done(json_t *o, int ok)
{
	if (ok)
		return o;
	json_decref(o);
	return NULL;
}

json_t *sd_json_user(const sd_user *u)
{
	json_t *o = json_object();
	int ok = o != NULL;
	if (!ok)
		return NULL;
	put(o, "id", json_integer(u->id), &ok);
	put(o, "name", sd_json_string(u->name), &ok);
	put(o, "admin", json_boolean(u->flags & SD_USER_ADMIN), &ok);
	put(o, "disabled", json_boolean(u->flags & SD_USER_DISABLED), &ok);
	put(o, "quota", json_integer(u->quota), &ok);
	put(o, "used", json_integer(u->used), &ok);
	return done(o, ok);
}

double sd_json_dedup_ratio(const sd_stats *s)
{
	return s->stored_bytes > 0 ? (double)s->logical_bytes / (double)s->stored_bytes : 1.0;
}

json_t *sd_json_stats(const sd_stats *s)
{
	/* 4 decimals, rounded half up (the ratio is never negative); no
	 * round(): front-end modules do not link libm */
	double ratio = (double)(int64_t)(sd_json_dedup_ratio(s) * 10000.0 + 0.5) / 10000.0;
	json_t *o = json_object();
	int ok = o != NULL;
	if (!ok)
		return NULL;
	put(o, "users", json_integer(s->users), &ok);
	put(o, "files", json_integer(s->files), &ok);
	put(o, "dirs", json_integer(s->dirs), &ok);
	put(o, "deleted", json_integer(s->deleted), &ok);
	put(o, "logical_bytes", json_integer(s->logical_bytes), &ok);
	put(o, "stored_bytes", json_integer(s->stored_bytes), &ok);
	put(o, "dedup_ratio", json_real(ratio), &ok);
	put(o, "blobs", json_integer(s->blobs), &ok);
	put(o, "unreferenced_blobs", json_integer(s->unreferenced_blobs), &ok);
	put(o, "versions", json_integer(s->versions), &ok);
	put(o, "journal_rows", json_integer(s->journal_rows), &ok);
	return done(o, ok);
}

const char *sd_json_token_state(const sd_token_info *t, int64_t now)
{
	if (t->revoked)
		return "revoked";
	if (t->expires && t->expires <= now)
		return "expired";
	return "active";
}

/* seconds -> time text JSON string */
static json_t *time_json(int64_t secs)
{
	char text[40];
	sd_json_time_text(secs * 1000, 0, text, sizeof text);
	return json_string(text);
}

json_t *sd_json_token(const sd_token_info *t, int64_t now)
{
	json_t *o = json_object();
	int ok = o != NULL;
	if (!ok)
		return NULL;
	put(o, "id", json_integer(t->id), &ok);
	put(o, "user", sd_json_string(t->user), &ok);
	put(o, "scope", json_string(t->readonly ? "ro" : "rw"), &ok);
	put(o, "created", time_json(t->created), &ok);
	put(o, "expires", t->expires ? time_json(t->expires) : json_null(), &ok);
	put(o, "revoked", json_boolean(t->revoked), &ok);
	put(o, "state", json_string(sd_json_token_state(t, now)), &ok);
	return done(o, ok);
}

json_t *sd_json_gc_report(const sd_gc_report *r)
{
	json_t *o = json_object();
	int ok = o != NULL;
	if (!ok)
		return NULL;
	put(o, "nodes_purged", json_integer(r->nodes_purged), &ok);
	put(o, "versions_dropped", json_integer(r->versions_dropped), &ok);
	put(o, "journal_pruned", json_integer(r->journal_pruned), &ok);
	put(o, "blobs_removed", json_integer(r->blobs_removed), &ok);
	put(o, "bytes_freed", json_integer(r->bytes_freed), &ok);
	put(o, "temps_removed", json_integer(r->temps_removed), &ok);
	put(o, "disk_used_pct", json_integer(r->disk_used_pct), &ok);
	return done(o, ok);
}

json_t *sd_json_stat(const char *path, const char *name, const sd_stat *st)
{
	char mode[8];
	snprintf(mode, sizeof mode, "%04o", (unsigned)(st->mode & 07777));
	json_t *o = json_object();
	int ok = o != NULL;
	if (!ok)
		return NULL;
	if (path)
		put(o, "path", sd_json_string(path), &ok);
	if (name)
		put(o, "name", sd_json_string(name), &ok);
	put(o, "kind", json_string(st->kind == SD_KIND_DIR ? "dir" : "file"), &ok);
	put(o, "size", json_integer((json_int_t)st->size), &ok);
	put(o, "mode", json_string(mode), &ok);
	put(o, "mtime", json_integer(st->mtime), &ok);
	if (st->kind == SD_KIND_FILE) {
		put(o, "sha256", json_string(st->sha256), &ok);
		if (!name)
			put(o, "versions", json_integer(st->versions), &ok);
	}
	if (!name) {
		put(o, "ctime", json_integer(st->ctime), &ok);
		put(o, "created_by", st->created_by[0] ? sd_json_string(st->created_by) : json_null(),
		    &ok);
		put(o, "changed_by", st->changed_by[0] ? sd_json_string(st->changed_by) : json_null(),
		    &ok);
	}
	return done(o, ok);
}

json_t *sd_json_key(const sd_key_info *k)
{
	char created[40];
	sd_json_time_text(k->created * 1000, 0, created, sizeof created);
	json_t *o = json_object();
	int ok = o != NULL;
	if (!ok)
		return NULL;
	put(o, "id", json_integer(k->id), &ok);
	put(o, "user", sd_json_string(k->user), &ok);
	put(o, "type", sd_json_string(k->type), &ok);
	put(o, "fingerprint", json_string(k->fingerprint), &ok);
	put(o, "comment", sd_json_string(k->comment), &ok);
	put(o, "created", json_string(created), &ok);
	return done(o, ok);
}

/* ms -> time text with ms, as a JSON string */
static json_t *ms_json(int64_t ms)
{
	char text[40];
	sd_json_time_text(ms, 1, text, sizeof text);
	return json_string(text);
}

/* "" -> null */
static json_t *opt_string(const char *s)
{
	return s && *s ? sd_json_string(s) : json_null();
}

json_t *sd_json_version(const sd_version *v)
{
	json_t *o = json_object();
	int ok = o != NULL;
	if (!ok)
		return NULL;
	put(o, "id", json_integer(v->id), &ok);
	put(o, "ts", ms_json(v->ts), &ok);
	put(o, "size", json_integer((json_int_t)v->size), &ok);
	put(o, "sha256", json_string(v->sha256), &ok);
	put(o, "current", json_boolean(v->current), &ok);
	put(o, "mtime", json_integer(v->mtime), &ok);
	put(o, "user", opt_string(v->user), &ok);
	put(o, "proto", opt_string(v->proto), &ok);
	put(o, "addr", opt_string(v->addr), &ok);
	put(o, "op", opt_string(v->op), &ok);
	return done(o, ok);
}

json_t *sd_json_trash_item(const sd_trash_item *t)
{
	json_t *o = json_object();
	int ok = o != NULL;
	if (!ok)
		return NULL;
	put(o, "id", json_integer(t->id), &ok);
	put(o, "name", sd_json_string(t->name), &ok);
	put(o, "path", sd_json_string(t->path), &ok);
	put(o, "kind", json_string(t->kind == SD_KIND_DIR ? "dir" : "file"), &ok);
	put(o, "deleted", ms_json(t->deleted), &ok);
	put(o, "size", json_integer((json_int_t)t->size), &ok);
	put(o, "files", json_integer(t->files), &ok);
	return done(o, ok);
}

json_t *sd_json_rollback(const char *path, int64_t at, const sd_rollback_report *r)
{
	json_t *o = json_object();
	int ok = o != NULL;
	if (!ok)
		return NULL;
	put(o, "path", sd_json_string(path), &ok);
	put(o, "at", ms_json(at), &ok);
	put(o, "ts", ms_json(r->ts), &ok);
	put(o, "undo_at", ms_json(r->ts - 1), &ok);
	put(o, "restored", json_integer(r->restored), &ok);
	put(o, "revived", json_integer(r->revived), &ok);
	put(o, "moved", json_integer(r->moved), &ok);
	put(o, "created", json_integer(r->created), &ok);
	put(o, "trashed", json_integer(r->trashed), &ok);
	return done(o, ok);
}

/* ------------------------------------------------------------ teams */

void sd_json_rights_text(unsigned r, char *out, size_t outlen)
{
	static const char *names[] = {"list", "read", "write", "delete", "rename", "share"};
	size_t o = 0;
	out[0] = '\0';
	for (int i = 0; i < 6; i++)
		if (r & (1u << i)) {
			int w = snprintf(out + o, outlen - o, "%s%s", o ? "," : "", names[i]);
			if (w < 0 || (size_t)w >= outlen - o)
				break;
			o += (size_t)w;
		}
	if (!o)
		snprintf(out, outlen, "none");
}

unsigned sd_json_rights_parse(const char *s, int *ok)
{
	static const struct {
		const char *name;
		unsigned bits;
	} words[] = {
	    {"list", SD_RIGHT_LIST},     {"read", SD_RIGHT_READ},
	    {"write", SD_RIGHT_WRITE},   {"delete", SD_RIGHT_DELETE},
	    {"rename", SD_RIGHT_RENAME}, {"share", SD_RIGHT_SHARE},
	    {"ro", SD_RIGHT_LIST | SD_RIGHT_READ},
	    {"rw", SD_RIGHT_LIST | SD_RIGHT_READ | SD_RIGHT_WRITE | SD_RIGHT_DELETE | SD_RIGHT_RENAME},
	    {"full", SD_RIGHTS_ALL},     {"all", SD_RIGHTS_ALL},
	    {"dropbox", SD_RIGHT_WRITE}, {"none", 0},
	};
	unsigned bits = 0;
	*ok = s && *s;
	const char *p = s;
	while (*ok && *p) {
		size_t n = strcspn(p, ",+ ");
		int found = 0;
		for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
			if (strlen(words[i].name) == n && strncmp(words[i].name, p, n) == 0) {
				bits |= words[i].bits;
				found = 1;
			}
		*ok = found;
		p += n;
		while (*p == ',' || *p == '+' || *p == ' ')
			p++;
	}
	return bits;
}

json_t *sd_json_group(const sd_group *g)
{
	json_t *o = json_object(), *m = json_array();
	int ok = o != NULL && m != NULL;
	if (!ok) {
		json_decref(o);
		json_decref(m);
		return NULL;
	}
	for (int i = 0; i < g->nmembers; i++)
		if (json_array_append_new(m, sd_json_string(g->members[i])) < 0)
			ok = 0;
	put(o, "name", sd_json_string(g->name), &ok);
	put(o, "members", m, &ok);
	put(o, "created", time_json(g->created), &ok);
	return done(o, ok);
}

json_t *sd_json_share(const sd_share *sh)
{
	char mount[SD_USERNAME_MAX + 2];
	snprintf(mount, sizeof mount, "/%s", sh->name);
	json_t *o = json_object();
	int ok = o != NULL;
	if (!ok)
		return NULL;
	put(o, "name", sd_json_string(sh->name), &ok);
	put(o, "mount", sd_json_string(mount), &ok);
	put(o, "quota", json_integer(sh->quota), &ok);
	put(o, "used", json_integer(sh->used), &ok);
	put(o, "rules", json_integer(sh->rules), &ok);
	put(o, "created", time_json(sh->created), &ok);
	return done(o, ok);
}

json_t *sd_json_share_rule(const sd_share_rule *r)
{
	char rt[64];
	sd_json_rights_text(r->rights, rt, sizeof rt);
	json_t *o = json_object();
	int ok = o != NULL;
	if (!ok)
		return NULL;
	put(o, "share", sd_json_string(r->share), &ok);
	put(o, "path", sd_json_string(r->path), &ok);
	put(o, "user", opt_string(r->user), &ok);
	put(o, "group", opt_string(r->group), &ok);
	put(o, "rights", json_string(rt), &ok);
	put(o, "deleted", json_boolean(r->deleted), &ok);
	return done(o, ok);
}

const char *sd_json_link_state(const sd_link_info *l, int64_t now)
{
	if (l->revoked)
		return "revoked";
	if (l->gone)
		return "gone";
	if (l->expires && l->expires <= now)
		return "expired";
	if (l->max_downloads && l->downloads >= l->max_downloads)
		return "used_up";
	return "active";
}

json_t *sd_json_link(const sd_link_info *l, int64_t now)
{
	json_t *o = json_object();
	int ok = o != NULL;
	if (!ok)
		return NULL;
	put(o, "id", json_integer(l->id), &ok);
	put(o, "user", sd_json_string(l->user), &ok);
	put(o, "path", sd_json_string(l->path), &ok);
	put(o, "kind", json_string(l->kind == SD_KIND_DIR ? "dir" : "file"), &ok);
	put(o, "mode", json_string(l->mode == SD_LINK_UPLOAD ? "upload" : "read"), &ok);
	put(o, "password", json_boolean(l->password), &ok);
	put(o, "created", time_json(l->created), &ok);
	put(o, "expires", l->expires ? time_json(l->expires) : json_null(), &ok);
	put(o, "max_downloads", l->max_downloads ? json_integer(l->max_downloads) : json_null(), &ok);
	put(o, "downloads", json_integer(l->downloads), &ok);
	put(o, "revoked", json_boolean(l->revoked), &ok);
	put(o, "state", json_string(sd_json_link_state(l, now)), &ok);
	return done(o, ok);
}
