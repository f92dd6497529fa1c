/*
 * web.c - the web client (docs/web-client.md): its static assets at `/`
 * and `/web/<name>`, and browser sessions (a cookie) on top of the engine's
 * own credentials.
 *
 *   GET    /                  index.html of web_root
 *   GET    /web/<name>        one asset of web_root (flat; loaded at start)
 *   POST   /api/v1/session    {"user","password"} or {"token"} -> cookie
 *   GET    /api/v1/session    the cookie's user and its CSRF token
 *   DELETE /api/v1/session    logout: the cookie is dead at once
 *
 * A browser session is not a back door: logging in with a password calls
 * auth_password (the login limiter, the journal and the metrics apply) and
 * then makes an ordinary API token for the user with self_token_create,
 * expiring after session_max; the cookie is a random id naming that token
 * in a table in this module's memory. Every cookie request then logs in
 * with the token through auth_token, exactly as a Bearer request does, so a
 * disabled user, a revoked token (the user sees it in /api/v1/me/tokens)
 * or a deleted user ends the session at the next request. Logging in with
 * a token keeps that token (it is the user's, and is not revoked at
 * logout). Logout, idle expiry (session_idle) and a full table revoke the
 * session's own token; so does the module's stop.
 *
 * Invariants:
 *  1. The cookie's id is never stored: the table holds its SHA-256, so the
 *     table's memory does not give sessions away, and lookups compare
 *     hashes.
 *  2. A cookie-authenticated request with a method other than GET, HEAD
 *     or OPTIONS needs the session's CSRF token in X-CSRF-Token (a
 *     cross-site form post carries the cookie at most, never the header):
 *     403 csrf otherwise, before anything is touched.
 *  3. Assets are read once at init and served from memory with a strict
 *     Content-Security-Policy (scripts and styles from this origin only,
 *     no inline code); a request never opens a file of web_root.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "http.h"
#include "sys.h"

#define WEB_COOKIE "sd_session"
#define WEB_ASSET_MAX (4u << 20) /* bytes of one asset */
#define WEB_ASSETS_MAX 64
#define WEB_SESSIONS_MAX 4096

/* The policy of the pages: nothing inline, nothing from elsewhere. */
#define WEB_CSP                                                                            \
	"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; " \
	"media-src 'self' blob:; connect-src 'self'; frame-src 'self' blob:; form-action 'self'; " \
	"base-uri 'none'; frame-ancestors 'none'; object-src 'none'"

typedef struct web_asset {
	char name[64];
	char *data;
	size_t len;
	const char *ctype;
	char etag[SD_SHA256_HEX + 2];
} web_asset;

typedef struct web_sess {
	int used;
	unsigned char idh[32];       /* SHA-256 of the cookie's id */
	char csrf[65];
	char token[SD_TOKEN_MAX];
	int64_t token_id;            /* the session's own token; 0: the user's */
	int64_t created, last;       /* sd_mono_ms */
} web_sess;

struct http_web {
	web_asset assets[WEB_ASSETS_MAX];
	int nassets;
	pthread_mutex_t mu;
	web_sess *sess; /* WEB_SESSIONS_MAX */
};

/* ------------------------------------------------------------ assets */

static const char *asset_type(const char *name)
{
	const char *dot = strrchr(name, '.');
	if (!dot)
		return NULL;
	if (strcmp(dot, ".html") == 0)
		return "text/html; charset=utf-8";
	if (strcmp(dot, ".js") == 0)
		return "text/javascript; charset=utf-8";
	if (strcmp(dot, ".css") == 0)
		return "text/css; charset=utf-8";
	if (strcmp(dot, ".svg") == 0)
		return "image/svg+xml";
	if (strcmp(dot, ".png") == 0)
		return "image/png";
	if (strcmp(dot, ".ico") == 0)
		return "image/x-icon";
	return NULL;
}

static int load_asset(http_srv *s, const char *dir, const char *name, web_asset *a)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = sd_sys_open(path, O_RDONLY, 0);
	if (fd < 0)
		return fd;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > WEB_ASSET_MAX) {
		sd_sys_close(fd);
		return -EINVAL;
	}
	sd_buf b = SD_BUF_INIT;
	int rc = sd_buf_read_fd(&b, fd, WEB_ASSET_MAX);
	sd_sys_close(fd);
	if (rc < 0) {
		sd_buf_free(&b);
		s->api->log(s->core, SD_LOG_WARN, HTTP_SRC, "event=web_asset_error file=%s err=\"%s\"",
			    path, s->api->strerror(rc));
		return rc;
	}
	snprintf(a->name, sizeof a->name, "%s", name);
	a->len = b.len;
	a->data = sd_buf_steal(&b);
	a->ctype = asset_type(name);
	unsigned char h[32];
	crypto_hash_sha256(h, (const unsigned char *)a->data, a->len);
	char hex[SD_SHA256_HEX];
	sd_hex(h, 16, hex);
	snprintf(a->etag, sizeof a->etag, "\"%s\"", hex);
	return 0;
}

int sd__http_web_init(http_srv *s)
{
	struct http_web *w = sd_xcalloc(1, sizeof *w);
	pthread_mutex_init(&w->mu, NULL);
	w->sess = sd_xcalloc(WEB_SESSIONS_MAX, sizeof *w->sess);
	s->web = w;
	const char *dir = s->conf->web_root;
	if (!s->conf->web_client || !dir || !*dir)
		return 0;
	DIR *d = opendir(dir);
	if (!d) {
		s->api->log(s->core, SD_LOG_WARN, HTTP_SRC,
			    "event=web_disabled section=%s web_root=%s err=\"%s\"", s->mc->section, dir,
			    s->api->strerror(-errno));
		return 0;
	}
	struct dirent *e;
	while ((e = readdir(d)) && w->nassets < WEB_ASSETS_MAX) {
		if (e->d_name[0] == '.' || strlen(e->d_name) >= sizeof w->assets[0].name ||
		    !asset_type(e->d_name))
			continue;
		if (load_asset(s, dir, e->d_name, &w->assets[w->nassets]) == 0)
			w->nassets++;
	}
	closedir(d);
	s->api->log(s->core, SD_LOG_INFO, HTTP_SRC, "event=web_client section=%s web_root=%s assets=%d",
		    s->mc->section, dir, w->nassets);
	return 0;
}

/* Revoke a session's own token (logout, expiry, eviction, stop). */
static void drop(http_srv *s, web_sess *e)
{
	if (e->token_id > 0)
		s->api->token_revoke(s->core, e->token_id);
	sodium_memzero(e, sizeof *e);
}

void sd__http_web_free(http_srv *s)
{
	struct http_web *w = s->web;
	if (!w)
		return;
	for (int i = 0; i < WEB_SESSIONS_MAX; i++)
		if (w->sess[i].used)
			drop(s, &w->sess[i]);
	for (int i = 0; i < w->nassets; i++)
		free(w->assets[i].data);
	pthread_mutex_destroy(&w->mu);
	free(w->sess);
	free(w);
	s->web = NULL;
}

static void page_headers(struct MHD_Response *resp)
{
	MHD_add_response_header(resp, "Content-Security-Policy", WEB_CSP);
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, "Cross-Origin-Opener-Policy", "same-origin");
}

static enum MHD_Result serve_asset(struct MHD_Connection *c, hreq *r, const char *name)
{
	struct http_web *w = r->srv->web;
	web_asset *a = NULL;
	for (int i = 0; i < w->nassets && !a; i++)
		if (strcmp(w->assets[i].name, name) == 0)
			a = &w->assets[i];
	if (!a)
		return sd__http_reply_error(c, r, 404, "not_found",
					    w->nassets ? "no such asset" : "the web client is not installed");
	const char *inm = sd__http_hdr(c, MHD_HTTP_HEADER_IF_NONE_MATCH);
	int same = inm && strstr(inm, a->etag);
	int head = strcmp(r->method, "HEAD") == 0;
	struct MHD_Response *resp =
	    same || head ? MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT)
			 : MHD_create_response_from_buffer(a->len, a->data, MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", a->ctype);
	MHD_add_response_header(resp, "ETag", a->etag);
	MHD_add_response_header(resp, "Cache-Control", "no-cache");
	page_headers(resp);
	return sd__http_queue(c, r, same ? 304 : 200, resp, same || head ? 0 : a->len);
}

enum MHD_Result sd__http_web_index(struct MHD_Connection *c, hreq *r, const char *tail)
{
	(void)tail;
	return serve_asset(c, r, "index.html");
}

enum MHD_Result sd__http_web_asset(struct MHD_Connection *c, hreq *r, const char *tail)
{
	return serve_asset(c, r, tail);
}

/* ---------------------------------------------------------- sessions */

static void hash_id(const char *id, unsigned char out[32])
{
	crypto_hash_sha256(out, (const unsigned char *)id, strlen(id));
}

static int expired(http_srv *s, const web_sess *e, int64_t now)
{
	return now - e->last >= s->conf->session_idle || now - e->created >= s->conf->session_max;
}

/* The live entry of the request's cookie (mutex held), or NULL; an expired
 * one is dropped on the way. */
static web_sess *find(http_srv *s, struct MHD_Connection *c, int64_t now)
{
	const char *id = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, WEB_COOKIE);
	if (!id || strlen(id) != 64)
		return NULL;
	unsigned char h[32];
	hash_id(id, h);
	web_sess *tab = s->web->sess;
	for (int i = 0; i < WEB_SESSIONS_MAX; i++) {
		if (!tab[i].used || memcmp(tab[i].idh, h, 32) != 0)
			continue;
		if (expired(s, &tab[i], now)) {
			s->api->log(s->core, SD_LOG_INFO, HTTP_SRC, "event=web_session_expired");
			drop(s, &tab[i]);
			return NULL;
		}
		return &tab[i];
	}
	return NULL;
}

int sd__http_web_has_cookie(struct MHD_Connection *c)
{
	return MHD_lookup_connection_value(c, MHD_COOKIE_KIND, WEB_COOKIE) != NULL;
}

static int is_write(const char *m)
{
	return strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0 && strcmp(m, "OPTIONS") != 0;
}

int sd__http_web_authenticate(struct MHD_Connection *c, hreq *r, enum MHD_Result *ret)
{
	http_srv *s = r->srv;
	int64_t now = sd_mono_ms();
	char token[SD_TOKEN_MAX];
	pthread_mutex_lock(&s->web->mu);
	web_sess *e = find(s, c, now);
	if (!e) {
		pthread_mutex_unlock(&s->web->mu);
		*ret = sd__http_reply_error(c, r, 401, "unauthorized",
					    "not logged in, or the session has expired");
		return -1;
	}
	if (is_write(r->method)) {
		const char *t = sd__http_hdr(c, "X-CSRF-Token");
		if (!t || strlen(t) != 64 || sodium_memcmp(t, e->csrf, 64) != 0) {
			pthread_mutex_unlock(&s->web->mu);
			s->api->log(s->core, SD_LOG_INFO, HTTP_SRC,
				    "event=csrf_refused method=%s addr=%s", r->method, r->addr);
			*ret = sd__http_reply_error(c, r, 403, "csrf",
						    "missing or wrong X-CSRF-Token for a session cookie");
			return -1;
		}
	}
	e->last = now;
	memcpy(token, e->token, sizeof token);
	pthread_mutex_unlock(&s->web->mu);
	sd_session *sess = NULL;
	int rc = s->api->auth_token(s->core, token, r->addr, "http", &sess);
	sodium_memzero(token, sizeof token);
	if (rc == -SD_EBLOCKED) {
		int64_t secs = s->api->auth_blocked_for(s->core, r->addr);
		*ret = sd__http_reply_error(c, r, 429, "blocked",
					    "too many failed logins from this address; try again in %lld s",
					    (long long)(secs > 0 ? secs : 1));
		return -1;
	}
	if (rc < 0 || s->api->session_info(sess, &r->who) < 0) {
		s->api->session_close(sess);
		/* the token was revoked or the user disabled: the session is over */
		pthread_mutex_lock(&s->web->mu);
		if ((e = find(s, c, now)))
			drop(s, e);
		pthread_mutex_unlock(&s->web->mu);
		*ret = sd__http_reply_error(c, r, 401, "unauthorized", "the session has ended");
		return -1;
	}
	r->sess = sess;
	r->authed = 1;
	return 0;
}

/* The cookie header for id ("" clears it). */
static void set_cookie(http_srv *s, struct MHD_Response *resp, const char *id)
{
	char v[256];
	snprintf(v, sizeof v, "%s=%s; Path=/; HttpOnly; SameSite=Strict%s%s", WEB_COOKIE, id,
		 s->tls_cert_pem ? "; Secure" : "", *id ? "" : "; Max-Age=0");
	MHD_add_response_header(resp, "Set-Cookie", v);
}

static json_t *session_json(hreq *r, const char *csrf)
{
	http_srv *s = r->srv;
	return json_pack("{s:s, s:b, s:b, s:s, s:I, s:I}", "user", r->who.user, "admin",
			 (r->who.flags & SD_USER_ADMIN) != 0, "readonly",
			 (r->who.flags & SD_USER_READONLY) != 0, "csrf", csrf, "idle_timeout",
			 (json_int_t)(s->conf->session_idle / 1000), "max_age",
			 (json_int_t)(s->conf->session_max / 1000));
}

static enum MHD_Result login_failed(struct MHD_Connection *c, hreq *r, int rc, const char *user)
{
	http_srv *s = r->srv;
	if (rc == -SD_EBLOCKED) {
		s->api->metric_add(s->core, "storaged_logins_total",
				   "frontend=\"http\",result=\"blocked\"", 1);
		int64_t secs = s->api->auth_blocked_for(s->core, r->addr);
		return sd__http_reply_error(c, r, 429, "blocked",
					    "too many failed logins from this address; try again in %lld s",
					    (long long)(secs > 0 ? secs : 1));
	}
	s->api->metric_add(s->core, "storaged_logins_total", "frontend=\"http\",result=\"failed\"", 1);
	s->api->log(s->core, SD_LOG_INFO, HTTP_SRC, "event=auth_failed user=%s addr=%s via=web",
		    user ? user : "(token)", r->addr);
	if (rc == -SD_EAUTH || rc == -ENOENT || rc == -EACCES || rc == -EPERM)
		return sd__http_reply_error(c, r, 401, "unauthorized", "bad credentials");
	return sd__http_reply_errno(c, r, rc);
}

static int good_name(const char *u)
{
	size_t n = strlen(u);
	if (n == 0 || n > SD_USERNAME_MAX || !sd_utf8_valid(u, n))
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)u[i] < 0x20 || u[i] == 0x7f)
			return 0;
	return 1;
}

static enum MHD_Result finish_login(struct MHD_Connection *c, hreq *r)
{
	http_srv *s = r->srv;
	json_error_t jerr;
	json_t *j = r->json.len ? json_loadb(r->json.data, r->json.len, 0, &jerr) : NULL;
	if (r->json.data)
		sodium_memzero(r->json.data, r->json.len);
	const char *user = json_string_value(json_object_get(j, "user"));
	const char *pw = json_string_value(json_object_get(j, "password"));
	const char *tok = json_string_value(json_object_get(j, "token"));
	if (!j || !json_is_object(j) || (!tok && (!user || !pw)) || (tok && (user || pw)) ||
	    (user && !good_name(user)) || (tok && strlen(tok) >= SD_TOKEN_MAX)) {
		json_decref(j);
		return sd__http_reply_error(c, r, 400, "bad_json",
					    "body must be {\"user\",\"password\"} or {\"token\"}");
	}
	char secret[SD_TOKEN_MAX];
	int64_t token_id = 0;
	sd_session *sess = NULL;
	int rc = tok ? s->api->auth_token(s->core, tok, r->addr, "http", &sess)
		     : s->api->auth_password(s->core, user, pw, r->addr, "http", &sess);
	if (rc < 0) {
		enum MHD_Result ret = login_failed(c, r, rc, user);
		json_decref(j);
		return ret;
	}
	r->sess = sess;
	if (s->api->session_info(sess, &r->who) < 0) {
		json_decref(j);
		return sd__http_reply_error(c, r, 401, "unauthorized", "bad credentials");
	}
	r->authed = 1;
	if (tok) {
		snprintf(secret, sizeof secret, "%s", tok);
	} else {
		rc = s->api->self_token_create(sess, SD_SCOPE_RW, s->conf->session_max / 1000, secret,
					       &token_id);
		if (rc < 0) {
			json_decref(j);
			return sd__http_reply_errno(c, r, rc);
		}
	}
	if (j) { /* wipe the secrets in the parsed body */
		json_t *v;
		if ((v = json_object_get(j, "password")))
			json_string_set(v, "");
		if ((v = json_object_get(j, "token")))
			json_string_set(v, "");
	}
	json_decref(j);
	s->api->metric_add(s->core, "storaged_logins_total", "frontend=\"http\",result=\"ok\"", 1);

	char id[65], csrf[65];
	if ((rc = sd_random_hex(id, 32)) < 0 || (rc = sd_random_hex(csrf, 32)) < 0) {
		if (token_id > 0)
			s->api->token_revoke(s->core, token_id);
		sodium_memzero(secret, sizeof secret);
		return sd__http_reply_error(c, r, 503, "unavailable", "no randomness for a session");
	}
	int64_t now = sd_mono_ms();
	struct http_web *w = s->web;
	pthread_mutex_lock(&w->mu);
	web_sess *slot = NULL, *oldest = NULL;
	for (int i = 0; i < WEB_SESSIONS_MAX; i++) {
		web_sess *e = &w->sess[i];
		if (e->used && expired(s, e, now))
			drop(s, e);
		if (!e->used && !slot)
			slot = e;
		if (e->used && (!oldest || e->last < oldest->last))
			oldest = e;
	}
	if (!slot) { /* full: the session idle longest goes */
		drop(s, oldest);
		slot = oldest;
	}
	slot->used = 1;
	hash_id(id, slot->idh);
	memcpy(slot->csrf, csrf, sizeof slot->csrf);
	memcpy(slot->token, secret, sizeof slot->token);
	slot->token_id = token_id;
	slot->created = slot->last = now;
	pthread_mutex_unlock(&w->mu);
	sodium_memzero(secret, sizeof secret);

	s->api->log(s->core, SD_LOG_INFO, HTTP_SRC, "event=web_login user=%s addr=%s by=%s",
		    r->who.user, r->addr, tok ? "token" : "password");
	uint64_t len = 0;
	struct MHD_Response *resp = sd__http_json_response(session_json(r, csrf), &len);
	if (resp)
		set_cookie(s, resp, id);
	sodium_memzero(id, sizeof id);
	return sd__http_queue(c, r, 201, resp, len);
}

enum MHD_Result sd__http_web_session(struct MHD_Connection *c, hreq *r, const char *tail)
{
	(void)tail;
	http_srv *s = r->srv;
	enum MHD_Result ret;
	r->web = 1;
	if (strcmp(r->method, "POST") == 0) {
		const char *ct = sd__http_hdr(c, MHD_HTTP_HEADER_CONTENT_TYPE);
		/* a cross-site form cannot send this type without a preflight */
		if (!ct || strncasecmp(ct, "application/json", 16) != 0)
			return sd__http_reply_error(c, r, 415, "bad_request",
						    "send the login as Content-Type: application/json");
		return sd__http_want_json(r, finish_login);
	}
	/* GET, HEAD, DELETE: the cookie's session (DELETE also checks CSRF) */
	if (sd__http_web_authenticate(c, r, &ret) < 0)
		return ret;
	if (strcmp(r->method, "DELETE") == 0) {
		int64_t now = sd_mono_ms();
		pthread_mutex_lock(&s->web->mu);
		web_sess *e = find(s, c, now);
		if (e)
			drop(s, e);
		pthread_mutex_unlock(&s->web->mu);
		s->api->log(s->core, SD_LOG_INFO, HTTP_SRC, "event=web_logout user=%s addr=%s",
			    r->who.user, r->addr);
		struct MHD_Response *resp =
		    MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
		if (resp)
			set_cookie(s, resp, "");
		return sd__http_queue(c, r, 204, resp, 0);
	}
	char csrf[65] = "";
	pthread_mutex_lock(&s->web->mu);
	web_sess *e = find(s, c, sd_mono_ms());
	if (e)
		memcpy(csrf, e->csrf, sizeof csrf);
	pthread_mutex_unlock(&s->web->mu);
	if (!csrf[0])
		return sd__http_reply_error(c, r, 401, "unauthorized", "the session has ended");
	return sd__http_reply_json(c, r, 200, session_json(r, csrf));
}
