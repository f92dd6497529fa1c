/*
 * auth.c - the Authorization header of a request becomes an engine session.
 *
 * HTTP Basic (password, or an API token in the password field) and Bearer
 * tokens. Every request logs in afresh: the engine reads the user, token
 * or key rows each time (a disabled user, a changed password, a revoked
 * token is refused on the very next request) and remembers verified
 * passwords against the stored hash, so a keep-alive request costs a row
 * read, not an Argon2id verification. The session lives for the request
 * and is closed when it completes (module.c). Without an Authorization
 * header, the web client's session cookie is asked of web.c.
 *
 * Invariants:
 *  1. Secrets are wiped from this module's buffers once the engine has
 *     them.
 *  2. A user name reaches the engine only as valid UTF-8 without control
 *     characters (it also goes into log lines).
 */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "http.h"

#define MAX_CREDENTIALS 1500 /* bytes of the base64 text or the token */

static void wipe(sd_buf *b)
{
	if (b->data)
		memset(b->data, 0, b->cap);
	sd_buf_free(b);
}

static int good_name(const char *s, size_t n)
{
	if (n == 0 || n > SD_USERNAME_MAX || !sd_utf8_valid(s, n))
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

static int refuse(struct MHD_Connection *c, hreq *r, enum MHD_Result *ret, const char *msg)
{
	*ret = sd__http_reply_error(c, r, 401, "unauthorized", "%s", msg);
	return -1;
}

int sd__http_authenticate(struct MHD_Connection *c, hreq *r, enum MHD_Result *ret)
{
	http_srv *s = r->srv;
	const char *h = sd__http_hdr(c, MHD_HTTP_HEADER_AUTHORIZATION);
	if (!h && sd__http_web_has_cookie(c)) /* a browser session (web.c) */
		return sd__http_web_authenticate(c, r, ret);
	if (!h)
		return refuse(c, r, ret, "authentication required");
	while (*h == ' ')
		h++;
	/* user '\0' secret '\0' for Basic; secret '\0' for Bearer */
	sd_buf cred = SD_BUF_INIT;
	const char *user = NULL, *secret;
	if (strncasecmp(h, "Basic ", 6) == 0) {
		const char *b = h + 6;
		while (*b == ' ')
			b++;
		if (strlen(b) > MAX_CREDENTIALS || sd__http_b64decode(b, &cred) < 0 || !cred.len ||
		    memchr(cred.data, '\0', cred.len)) {
			wipe(&cred);
			return refuse(c, r, ret, "malformed Basic credentials");
		}
		char *colon = memchr(cred.data, ':', cred.len);
		if (!colon) {
			wipe(&cred);
			return refuse(c, r, ret, "malformed Basic credentials");
		}
		*colon = '\0';
		if (!good_name(cred.data, (size_t)(colon - cred.data))) {
			wipe(&cred);
			return refuse(c, r, ret, "bad credentials");
		}
		user = cred.data;
		secret = colon + 1;
	} else if (strncasecmp(h, "Bearer ", 7) == 0) {
		const char *t = h + 7;
		while (*t == ' ')
			t++;
		if (!*t || strlen(t) > MAX_CREDENTIALS)
			return refuse(c, r, ret, "bad credentials");
		sd_buf_puts(&cred, t);
		secret = cred.data;
	} else {
		return refuse(c, r, ret, "unsupported authorization scheme (use Basic or Bearer)");
	}
	sd_session *sess = NULL;
	int rc = user ? s->api->auth_password(s->core, user, secret, r->addr, "http", &sess)
		      : s->api->auth_token(s->core, secret, r->addr, "http", &sess);
	if (rc == -SD_EBLOCKED) {
		wipe(&cred);
		s->api->metric_add(s->core, "storaged_logins_total",
				   "frontend=\"http\",result=\"blocked\"", 1);
		int64_t secs = s->api->auth_blocked_for(s->core, r->addr);
		*ret = sd__http_reply_error(c, r, 429, "blocked",
					    "too many failed logins from this address; try again in %lld s",
					    (long long)(secs > 0 ? secs : 1));
		return -1;
	}
	if (rc != 0) {
		s->api->metric_add(s->core, "storaged_logins_total",
				   "frontend=\"http\",result=\"failed\"", 1);
		s->api->log(s->core, SD_LOG_INFO, HTTP_SRC, "event=auth_failed user=%s addr=%s",
			    user ? user : "(token)", r->addr);
		wipe(&cred);
		if (rc == -SD_EAUTH || rc == -ENOENT || rc == -EACCES || rc == -EPERM)
			return refuse(c, r, ret, "bad credentials");
		*ret = sd__http_reply_errno(c, r, rc);
		return -1;
	}
	wipe(&cred);
	s->api->metric_add(s->core, "storaged_logins_total", "frontend=\"http\",result=\"ok\"", 1);
	r->sess = sess;
	/* the session's user now: name for logs, flags, quota and usage */
	if (s->api->session_info(sess, &r->who) < 0)
		return refuse(c, r, ret, "bad credentials");
	r->authed = 1;
	return 0;
}
