/*
 * handles.c - the HTTP handle API (docs/handle-api.md): random-access files
 * that live across requests and connections.
 *
 *   POST   /api/v1/open                  {"path","flags","share","perm"} -> 201
 *   GET    /api/v1/handles/<id>          stat          (HEAD: no body)
 *   DELETE /api/v1/handles/<id>          abandon       -> 204
 *   POST   /api/v1/handles/<id>/truncate {"size"}      -> {"size"}
 *   POST   /api/v1/handles/<id>/attrs    {"mode","mtime"} -> stat
 *   POST   /api/v1/handles/<id>/sync     commit now    -> stat
 *   POST   /api/v1/handles/<id>/close    commit, release -> stat
 *   .../data (reads and writes): hdata.c
 *
 * Every request has its own engine session (auth.c), so the handles are the
 * engine's DETACHED ones: owned by the user, usable from any of the user's
 * sessions, serialised per handle by the engine, limited per user, and
 * abandoned by the engine (journal row "handle_expired") after
 * handle_idle_timeout without use.
 *
 * Handle ids. An id is "h1_" + 16 hex digits of the engine's handle +
 * 32 hex digits of HMAC-SHA256(key, "sdh1" | uid | handle) cut to 128
 * bits, where key is 32 random bytes drawn when the module starts. So:
 *   - an id cannot be forged or guessed (2^-128 a try), nor moved to
 *     another user (the uid is in the MAC, and the engine binds its handle
 *     to the user again): such ids answer 404;
 *   - the module keeps no table: nothing to bound, nothing to clean when
 *     the engine abandons an idle handle. The engine's handle is the one
 *     state; a stale id reaches the engine, which answers -EBADF (404).
 *     An engine handle id is never reused for another open until its slot
 *     has been reused 2^32 times (handle.c's generations);
 *   - ids die with the process (a new key at start): after a restart every
 *     old id answers 404, as the handles themselves are gone.
 *
 * Invariants:
 *  1. No call reaches the engine with a handle whose id failed the MAC
 *     check for the requesting user.
 *  2. Read-only credentials never write or commit through a handle: the
 *     route table refuses their PUT/truncate/attrs; sync and close check
 *     here that there is nothing to commit; the engine refuses a writing
 *     open (-EROFS).
 *  3. Every engine handle this file opens is either answered to the client
 *     (201 with its id) or abandoned before the answer.
 */
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define ID_PREFIX "h1_"
#define ID_LEN (3 + 16 + 32)
#define ID_MAX 64 /* the contract's bound on any id */

static const struct {
	const char *word;
	unsigned flag;
} flag_words[] = {
    {"read", SD_O_READ},       {"write", SD_O_WRITE}, {"create", SD_O_CREAT},
    {"truncate", SD_O_TRUNC},  {"excl", SD_O_EXCL},   {"append", SD_O_APPEND},
};

static const struct {
	const char *word;
	unsigned flag;
} share_words[] = {
    {"exclusive", SD_O_EXCLUSIVE},
    {"shared-read", SD_O_SHARE_READ},
    {"shared-write", SD_O_SHARE_WRITE},
};

/* ---------------------------------------------------------------- ids */

int sd__http_handles_init(http_srv *s)
{
	if (sodium_init() < 0)
		return -EIO;
	return sd_random_bytes(s->hkey, sizeof s->hkey);
}

static void put_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)(v & 0xff);
}

/* The 128-bit MAC of (uid, h). */
static void id_mac(const http_srv *s, int64_t uid, sd_handle h, unsigned char out[16])
{
	unsigned char msg[4 + 8 + 8], full[crypto_auth_hmacsha256_BYTES];
	memcpy(msg, "sdh1", 4);
	put_be64(msg + 4, (uint64_t)uid);
	put_be64(msg + 12, (uint64_t)h);
	crypto_auth_hmacsha256(full, msg, sizeof msg, s->hkey);
	memcpy(out, full, 16);
	sodium_memzero(full, sizeof full);
}

static void mint_id(const http_srv *s, int64_t uid, sd_handle h, char out[ID_LEN + 1])
{
	unsigned char mac[16];
	id_mac(s, uid, h, mac);
	char machex[33];
	sd_hex(mac, sizeof mac, machex);
	snprintf(out, ID_LEN + 1, ID_PREFIX "%016" PRIx64 "%s", (uint64_t)h, machex);
}

static int id_char(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '_' || ch == '-';
}

int sd__http_take_handle(struct MHD_Connection *c, hreq *r, const char *id,
			 enum MHD_Result *ret)
{
	size_t n = strlen(id);
	int ok = n >= 1 && n <= ID_MAX;
	for (size_t i = 0; ok && i < n; i++)
		ok = id_char((unsigned char)id[i]);
	if (!ok) {
		*ret = sd__http_reply_error(c, r, 400, "bad_handle",
					    "a handle id is 1-64 letters, digits, '_' or '-'");
		return -1;
	}
	unsigned char raw[8 + 16], want[16];
	if (n != ID_LEN || strncmp(id, ID_PREFIX, 3) != 0 ||
	    sd_unhex(id + 3, raw, sizeof raw) < 0)
		goto unknown;
	uint64_t h = 0;
	for (int i = 0; i < 8; i++)
		h = (h << 8) | raw[i];
	id_mac(r->srv, r->who.uid, h, want);
	if (crypto_verify_16(want, raw + 8) != 0)
		goto unknown;
	r->hid = h;
	snprintf(r->hname, sizeof r->hname, "%s", id);
	return 0;
unknown:
	*ret = sd__http_reply_error(c, r, 404, "handle_gone", "no such handle");
	return -1;
}

enum MHD_Result sd__http_handle_errno(struct MHD_Connection *c, hreq *r, int err)
{
	if (err == -EBADF)
		return sd__http_reply_error(c, r, 404, "handle_gone",
					    "no such handle (closed, abandoned or expired)");
	return sd__http_reply_errno(c, r, err);
}

/* --------------------------------------------------------------- stat */

static const char *share_word(unsigned flags)
{
	for (size_t i = 0; i < sizeof share_words / sizeof share_words[0]; i++)
		if (flags & share_words[i].flag)
			return share_words[i].word;
	return "shared-write";
}

static json_t *flags_json(unsigned flags)
{
	json_t *a = json_array();
	for (size_t i = 0; i < sizeof flag_words / sizeof flag_words[0]; i++)
		if (flags & flag_words[i].flag)
			json_array_append_new(a, json_string(flag_words[i].word));
	return a;
}

/* The stat object of r->hid into *out. 0 or an engine error. */
static int handle_stat(hreq *r, json_t **out)
{
	http_srv *s = r->srv;
	sd_stat st;
	sd_handle_info hi;
	int rc = s->api->handle_fstat(r->sess, r->hid, &st);
	if (rc == 0)
		rc = s->api->handle_info(r->sess, r->hid, &hi);
	if (rc < 0)
		return rc;
	char mode[8];
	snprintf(mode, sizeof mode, "%04o", (unsigned)(st.mode & 07777));
	*out = json_pack("{s:s, s:s, s:I, s:s, s:b, s:s, s:I, s:s, s:o, s:I}", "handle", r->hname,
			 "path", hi.path, "size", (json_int_t)st.size, "sha256", st.sha256, "dirty",
			 hi.dirty, "mode", mode, "mtime", (json_int_t)st.mtime, "share",
			 share_word(hi.flags), "flags", flags_json(hi.flags), "idle_timeout",
			 (json_int_t)(hi.idle_timeout / 1000));
	return 0;
}

static enum MHD_Result reply_stat(struct MHD_Connection *c, hreq *r)
{
	json_t *o;
	int rc = handle_stat(r, &o);
	if (rc < 0)
		return sd__http_handle_errno(c, r, rc);
	return sd__http_reply_json(c, r, 200, o);
}

/* Read-only credentials may sync or close only a handle with nothing to
 * commit (invariant 2). 0, or an answer queued (*ret) and -1. */
static int ro_commit_check(struct MHD_Connection *c, hreq *r, enum MHD_Result *ret)
{
	if (!(r->who.flags & SD_USER_READONLY))
		return 0;
	sd_handle_info hi;
	int rc = r->srv->api->handle_info(r->sess, r->hid, &hi);
	if (rc < 0) {
		*ret = sd__http_handle_errno(c, r, rc);
		return -1;
	}
	if (hi.dirty) {
		*ret = sd__http_reply_error(c, r, 403, "read_only",
					    "this credential is read-only and the handle has "
					    "unsaved writes");
		return -1;
	}
	return 0;
}

/* --------------------------------------------------------------- JSON */

/* The JSON object body of r: *j, or an answer queued (*ret) and -1.
 * `keys` lists the keys allowed, space-separated. */
static int json_body(struct MHD_Connection *c, hreq *r, const char *keys, json_t **j,
		     enum MHD_Result *ret)
{
	json_error_t jerr;
	*j = r->json.len ? json_loadb(r->json.data, r->json.len, 0, &jerr) : NULL;
	if (!*j || !json_is_object(*j)) {
		*ret = *j ? sd__http_reply_error(c, r, 400, "bad_json", "body must be a JSON object")
			  : r->json.len ? sd__http_reply_error(c, r, 400, "bad_json", "bad JSON: %s",
							       jerr.text)
					: sd__http_reply_error(c, r, 400, "bad_json",
							       "body must be a JSON object");
		json_decref(*j);
		*j = NULL;
		return -1;
	}
	const char *k;
	json_t *v;
	json_object_foreach(*j, k, v) {
		size_t n = strlen(k);
		const char *p = keys;
		int found = 0;
		while (*p && !found) {
			const char *e = strchr(p, ' ');
			size_t m = e ? (size_t)(e - p) : strlen(p);
			found = m == n && strncmp(p, k, n) == 0;
			p += m;
			while (*p == ' ')
				p++;
		}
		if (!found) {
			*ret = sd__http_reply_error(c, r, 400, "bad_request",
						    "unknown key '%.64s' (allowed: %s)", k, keys);
			json_decref(*j);
			*j = NULL;
			return -1;
		}
	}
	return 0;
}

/* An octal mode string up to 07777. 0 or -1. */
static int parse_mode(json_t *v, uint32_t *mode)
{
	const char *t = json_string_value(v);
	if (!t || !*t || strlen(t) > 5)
		return -1;
	uint32_t m = 0;
	for (; *t; t++) {
		if (*t < '0' || *t > '7')
			return -1;
		m = m * 8 + (uint32_t)(*t - '0');
	}
	if (m > 07777)
		return -1;
	*mode = m;
	return 0;
}

/* --------------------------------------------------------------- open */

/* What an -EBUSY open ran into, from the file's open state: NULL when
 * nothing that conflicts with this open is there (any more). */
static const char *conflict_word(unsigned want, unsigned st)
{
	unsigned omode = want & (SD_O_EXCLUSIVE | SD_O_SHARE_READ | SD_O_SHARE_WRITE);
	int writes = (want & (SD_O_WRITE | SD_O_CREAT | SD_O_TRUNC | SD_O_APPEND)) != 0;
	if ((st & SD_OPEN_LOCKED) && writes) /* a WebDAV lock (docs/webdav.md) */
		return "locked";
	if (st & SD_OPEN_EXCLUSIVE)
		return "exclusive";
	if ((st & SD_OPEN_SHARE_READ) && (writes || omode == SD_O_EXCLUSIVE))
		return "shared-read";
	if ((st & SD_OPEN_WRITERS) && (omode == SD_O_SHARE_READ || omode == SD_O_EXCLUSIVE))
		return "writers";
	if ((st & SD_OPEN_READERS) && omode == SD_O_EXCLUSIVE)
		return "readers";
	return NULL;
}

/* The open's flags from the JSON body. 0, or an answer queued and -1. */
static int open_flags(struct MHD_Connection *c, hreq *r, json_t *j, unsigned *flags,
		      uint32_t *perm, enum MHD_Result *ret)
{
	unsigned fl = 0;
	json_t *jf = json_object_get(j, "flags");
	if (jf && !json_is_array(jf)) {
		*ret = sd__http_reply_error(c, r, 400, "bad_request",
					    "flags must be a list of words (read, write, create, "
					    "truncate, excl, append)");
		return -1;
	}
	size_t i;
	json_t *v;
	json_array_foreach(jf, i, v) {
		const char *w = json_string_value(v);
		unsigned f = 0;
		for (size_t k = 0; w && k < sizeof flag_words / sizeof flag_words[0]; k++)
			if (strcmp(w, flag_words[k].word) == 0)
				f = flag_words[k].flag;
		if (!f) {
			*ret = sd__http_reply_error(c, r, 400, "bad_request",
						    "unknown flag '%.32s' (read, write, create, "
						    "truncate, excl, append)", w ? w : "(not a string)");
			return -1;
		}
		fl |= f;
	}
	if (!fl)
		fl = SD_O_READ;
	if ((fl & SD_O_EXCL) && !(fl & SD_O_CREAT)) {
		*ret = sd__http_reply_error(c, r, 400, "bad_request", "excl needs create");
		return -1;
	}
	json_t *js = json_object_get(j, "share");
	unsigned share = SD_O_SHARE_WRITE;
	if (js) {
		const char *w = json_string_value(js);
		share = 0;
		for (size_t k = 0; w && k < sizeof share_words / sizeof share_words[0]; k++)
			if (strcmp(w, share_words[k].word) == 0)
				share = share_words[k].flag;
		if (!share) {
			*ret = sd__http_reply_error(c, r, 400, "bad_request",
						    "share is exclusive, shared-read or shared-write");
			return -1;
		}
	}
	if (share == SD_O_SHARE_READ && (fl & (SD_O_WRITE | SD_O_CREAT | SD_O_TRUNC | SD_O_APPEND))) {
		*ret = sd__http_reply_error(c, r, 400, "bad_request",
					    "a shared-read open reads only (no write, create, "
					    "truncate or append)");
		return -1;
	}
	*perm = 0644;
	json_t *jp = json_object_get(j, "perm");
	if (jp && parse_mode(jp, perm) < 0) {
		*ret = sd__http_reply_error(c, r, 400, "bad_request",
					    "perm is an octal string up to \"07777\", e.g. \"0644\"");
		return -1;
	}
	*flags = fl | share;
	return 0;
}

static enum MHD_Result open_finish(struct MHD_Connection *c, hreq *r)
{
	http_srv *s = r->srv;
	enum MHD_Result ret;
	json_t *j;
	if (json_body(c, r, "path flags share perm", &j, &ret) < 0)
		return ret;
	unsigned flags;
	uint32_t perm;
	const char *path = json_string_value(json_object_get(j, "path"));
	if (!path || !*path) {
		ret = sd__http_reply_error(c, r, 400, "bad_request", "need path (a string)");
		goto out;
	}
	if (open_flags(c, r, j, &flags, &perm, &ret) < 0)
		goto out;
	if (strlen(path) > SD_PATH_MAX) {
		ret = sd__http_reply_error(c, r, 400, "name_too_long", "path too long");
		goto out;
	}
	sd_buf_reset(&r->path);
	sd_buf_printf(&r->path, "%s%s", path[0] == '/' ? "" : "/", path);
	if (sd__http_show_path(c, r, &ret) < 0)
		goto out;
	sd_handle h;
	sd_stat st;
	int rc = s->api->handle_open(r->sess, r->path.data, flags | SD_O_DETACHED, perm, &h, &st);
	const char *conflict = NULL;
	for (int tries = 0; rc == -EBUSY && tries < 2; tries++) {
		unsigned state = 0;
		if (s->api->open_state(r->sess, r->path.data, &state) == 0 &&
		    (conflict = conflict_word(flags, state)) != NULL)
			break;
		/* the conflicting open went away meanwhile: try again */
		rc = s->api->handle_open(r->sess, r->path.data, flags | SD_O_DETACHED, perm, &h, &st);
	}
	if (rc == -EBUSY) {
		if (!conflict)
			conflict = "readers";
		ret = sd__http_reply_json(
		    c, r, 409,
		    json_pack("{s:s, s:s, s:s}", "error", "open_conflict", "message",
			      "the file is open elsewhere in a mode that conflicts with this open",
			      "conflict", conflict));
		goto out;
	}
	if (rc == -EMFILE) {
		ret = sd__http_reply_error(c, r, 429, "too_many_handles",
					   "too many open handles (max_handles_per_user or "
					   "max_handles reached): close some");
		goto out;
	}
	if (rc < 0) {
		ret = sd__http_reply_errno(c, r, rc);
		goto out;
	}
	sd_handle_info hi;
	if ((rc = s->api->handle_info(r->sess, h, &hi)) < 0) {
		s->api->handle_abandon(r->sess, h); /* invariant 3 */
		ret = sd__http_reply_errno(c, r, rc);
		goto out;
	}
	mint_id(s, r->who.uid, h, r->hname);
	r->hid = h;
	s->api->log(s->core, SD_LOG_INFO, HTTP_SRC,
		    "event=handle_open user=%s path=\"%s\" share=%s flags=0x%x handle=%016" PRIx64,
		    r->who.user, r->shown, share_word(hi.flags), hi.flags, (uint64_t)h);
	uint64_t len = 0;
	char mode[8];
	snprintf(mode, sizeof mode, "%04o", (unsigned)((st.mode ? st.mode : perm) & 07777));
	struct MHD_Response *resp = sd__http_json_response(
	    json_pack("{s:s, s:s, s:I, s:s, s:I, s:s, s:o, s:s, s:I}", "handle", r->hname, "path",
		      hi.path, "size", (json_int_t)st.size, "sha256", st.sha256, "idle_timeout",
		      (json_int_t)(hi.idle_timeout / 1000), "share", share_word(hi.flags),
		      "flags", flags_json(hi.flags), "mode", mode, "mtime",
		      (json_int_t)(st.mtime ? st.mtime : s->api->now(s->core))),
	    &len);
	if (!resp) {
		s->api->handle_abandon(r->sess, h); /* invariant 3 */
		ret = MHD_NO;
		goto out;
	}
	char loc[sizeof r->hname + 32];
	snprintf(loc, sizeof loc, "/api/v1/handles/%s", r->hname);
	MHD_add_response_header(resp, "Location", loc);
	ret = sd__http_queue(c, r, 201, resp, len);
out:
	json_decref(j);
	return ret;
}

enum MHD_Result sd__http_h_open(struct MHD_Connection *c, hreq *r, const char *tail)
{
	(void)c;
	(void)tail;
	return sd__http_want_json(r, open_finish);
}

/* ------------------------------------------------- calls on a handle */

/* GET/HEAD: stat. DELETE: abandon. */
enum MHD_Result sd__http_h_handle(struct MHD_Connection *c, hreq *r, const char *id)
{
	http_srv *s = r->srv;
	enum MHD_Result ret;
	if (sd__http_take_handle(c, r, id, &ret) < 0)
		return ret;
	if (strcmp(r->method, "DELETE") != 0)
		return reply_stat(c, r);
	int rc = s->api->handle_abandon(r->sess, r->hid);
	if (rc < 0)
		return sd__http_handle_errno(c, r, rc);
	s->api->log(s->core, SD_LOG_INFO, HTTP_SRC, "event=handle_abandon user=%s handle=%016" PRIx64,
		    r->who.user, (uint64_t)r->hid);
	return sd__http_reply_empty(c, r, 204);
}

/* An engine error of a call that needs a writable handle: -EBADF is also
 * what the engine says for a handle opened without write. */
static enum MHD_Result write_errno(struct MHD_Connection *c, hreq *r, int rc)
{
	sd_handle_info hi;
	if (rc == -EBADF && r->srv->api->handle_info(r->sess, r->hid, &hi) == 0)
		return sd__http_reply_error(c, r, 403, "not_writable",
					    "the handle was not opened for writing");
	if (rc == -EFBIG)
		return sd__http_reply_error(c, r, 400, "bad_request", "size past 2^63-1");
	return sd__http_handle_errno(c, r, rc);
}

static enum MHD_Result truncate_finish(struct MHD_Connection *c, hreq *r)
{
	enum MHD_Result ret;
	json_t *j;
	if (json_body(c, r, "size", &j, &ret) < 0)
		return ret;
	json_t *v = json_object_get(j, "size");
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		json_decref(j);
		return sd__http_reply_error(c, r, 400, "bad_request",
					    "size must be an integer 0..2^63-1");
	}
	uint64_t size = (uint64_t)json_integer_value(v);
	json_decref(j);
	int rc = r->srv->api->handle_truncate(r->sess, r->hid, size);
	if (rc < 0)
		return write_errno(c, r, rc);
	return sd__http_reply_json(c, r, 200, json_pack("{s:I}", "size", (json_int_t)size));
}

enum MHD_Result sd__http_h_truncate(struct MHD_Connection *c, hreq *r, const char *id)
{
	enum MHD_Result ret;
	if (sd__http_take_handle(c, r, id, &ret) < 0)
		return ret;
	return sd__http_want_json(r, truncate_finish);
}

static enum MHD_Result attrs_finish(struct MHD_Connection *c, hreq *r)
{
	enum MHD_Result ret;
	json_t *j;
	if (json_body(c, r, "mode mtime", &j, &ret) < 0)
		return ret;
	unsigned mask = 0;
	uint32_t mode = 0;
	int64_t mtime = 0;
	json_t *jm = json_object_get(j, "mode"), *jt = json_object_get(j, "mtime");
	if (jm) {
		if (parse_mode(jm, &mode) < 0) {
			json_decref(j);
			return sd__http_reply_error(c, r, 400, "bad_request",
						    "mode is an octal string up to \"07777\"");
		}
		mask |= SD_ATTR_MODE;
	}
	if (jt) {
		if (!json_is_integer(jt)) {
			json_decref(j);
			return sd__http_reply_error(c, r, 400, "bad_request",
						    "mtime is an integer (seconds since the epoch)");
		}
		mtime = (int64_t)json_integer_value(jt);
		mask |= SD_ATTR_MTIME;
	}
	json_decref(j);
	if (!mask)
		return sd__http_reply_error(c, r, 400, "bad_request", "give mode and/or mtime");
	int rc = r->srv->api->handle_setattr(r->sess, r->hid, mask, mode, mtime);
	if (rc < 0)
		return sd__http_handle_errno(c, r, rc);
	return reply_stat(c, r);
}

enum MHD_Result sd__http_h_attrs(struct MHD_Connection *c, hreq *r, const char *id)
{
	enum MHD_Result ret;
	if (sd__http_take_handle(c, r, id, &ret) < 0)
		return ret;
	return sd__http_want_json(r, attrs_finish);
}

/* If-Match: "<sha256>" on sync and close (a conditional commit). 0: none
 * (or "*"), 1: the address in want, -1: malformed (answer queued). */
static int if_match(struct MHD_Connection *c, hreq *r, char want[SD_SHA256_HEX],
		    enum MHD_Result *ret)
{
	const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-Match");
	if (!v)
		return 0;
	while (*v == ' ')
		v++;
	if (strcmp(v, "*") == 0)
		return 0;
	size_t n = strlen(v);
	while (n > 0 && v[n - 1] == ' ')
		n--;
	if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
		v++;
		n -= 2;
	}
	int ok = n == 64;
	for (size_t i = 0; ok && i < n; i++)
		ok = (v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f');
	if (!ok) {
		*ret = sd__http_reply_error(c, r, 400, "bad_request",
					    "If-Match takes one \"<sha256>\" (64 lowercase hex digits)");
		return -1;
	}
	memcpy(want, v, 64);
	want[64] = '\0';
	return 1;
}

/* Commit r->hid: plainly, or on the If-Match condition (412 when it fails;
 * the handle keeps its writes). The engine's result, or *answered = 1 with
 * the answer queued in *ret. */
static int commit_maybe_if(struct MHD_Connection *c, hreq *r, int *answered,
			   enum MHD_Result *ret)
{
	char want[SD_SHA256_HEX];
	*answered = 0;
	int m = if_match(c, r, want, ret);
	if (m < 0) {
		*answered = 1;
		return 0;
	}
	int rc = m ? r->srv->api->handle_sync_if(r->sess, r->hid, want)
		   : r->srv->api->handle_sync(r->sess, r->hid);
	if (rc == -SD_ECHANGED) {
		*ret = sd__http_reply_error(c, r, 412, "precondition_failed",
					    "the file no longer holds the version named by If-Match; "
					    "nothing was committed");
		*answered = 1;
	}
	return rc;
}

enum MHD_Result sd__http_h_sync(struct MHD_Connection *c, hreq *r, const char *id)
{
	enum MHD_Result ret;
	if (sd__http_take_handle(c, r, id, &ret) < 0 || ro_commit_check(c, r, &ret) < 0)
		return ret;
	int answered;
	int rc = commit_maybe_if(c, r, &answered, &ret);
	if (answered)
		return ret;
	if (rc < 0)
		return sd__http_handle_errno(c, r, rc);
	return reply_stat(c, r);
}

/* Commit (as sync does, so the answer can name the committed version),
 * then release; a failed commit releases the handle too. */
enum MHD_Result sd__http_h_close(struct MHD_Connection *c, hreq *r, const char *id)
{
	http_srv *s = r->srv;
	enum MHD_Result ret;
	if (sd__http_take_handle(c, r, id, &ret) < 0 || ro_commit_check(c, r, &ret) < 0)
		return ret;
	json_t *o = NULL;
	int answered;
	int rc = commit_maybe_if(c, r, &answered, &ret);
	if (answered)
		return ret; /* a failed If-Match keeps the handle open */
	if (rc == 0)
		rc = handle_stat(r, &o);
	int crc = rc == -EBADF ? 0 : s->api->handle_close(r->sess, r->hid);
	if (rc == 0)
		rc = crc;
	if (rc < 0) {
		json_decref(o);
		return sd__http_handle_errno(c, r, rc);
	}
	s->api->log(s->core, SD_LOG_INFO, HTTP_SRC, "event=handle_close user=%s handle=%016" PRIx64,
		    r->who.user, (uint64_t)r->hid);
	return sd__http_reply_json(c, r, 200, o);
}
