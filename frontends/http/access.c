/*
 * access.c - the HTTP front end's lines for operators (docs/logs.md): one
 * access line per request (api->log_access: time, address, user, method,
 * target, status, bytes, duration, user agent) and one transfer line per
 * file moved (api->log_transfer: downloads, uploads, partial PUTs, tus
 * PATCHes), written when libmicrohttpd reports the request complete, so
 * an upload cut short or a download the client dropped is logged too
 * (status 0 / result=aborted).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "http.h"

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The target as logged: a share link's token (/s/<token>...) is a
 * credential, so only its first 4 characters are kept ("/s/AbCd.../a.txt"):
 * enough to tell links apart in a log, not enough to use one (SECURITY.md). */
static void log_target(char *out, size_t outlen, const char *url)
{
	if (strncmp(url, "/s/", 3) != 0) {
		snprintf(out, outlen, "%s", url);
		return;
	}
	const char *tok = url + 3;
	size_t n = strcspn(tok, "/?");
	snprintf(out, outlen, "/s/%.*s%s%s", (int)(n < 4 ? n : 4), tok, n > 4 ? "..." : "",
		 tok + n);
}

void sd__http_access_begin(hreq *r, const char *url, const char *method)
{
	r->t0_us = mono_us();
	log_target(r->target, sizeof r->target, url ? url : "");
	if (!r->method[0])
		snprintf(r->method, sizeof r->method, "%s", method ? method : "");
}

void sd__http_access_end(struct MHD_Connection *c, hreq *r, int completed)
{
	http_srv *s = r->srv;
	int64_t us = mono_us() - r->t0_us;
	const char *agent = c ? MHD_lookup_connection_value(c, MHD_HEADER_KIND, "User-Agent") : NULL;
	const char *user = r->who.user[0] ? r->who.user : NULL;
	sd_access_rec a = {.proto = "http", .addr = r->addr, .user = user, .method = r->method,
			   .target = r->target, .status = (unsigned)(r->status > 0 ? r->status : 0),
			   .bytes_in = r->bytes_in, .bytes_out = completed ? r->bytes_out : 0,
			   .us = us, .agent = agent};
	s->api->log_access(s->core, &a);
	if (!r->xfer)
		return;
	int ok = completed && r->status >= 200 && r->status < 300;
	char why[64] = "";
	if (!ok && r->status >= 300)
		snprintf(why, sizeof why, "status %d", r->status);
	sd_xfer_rec x = {.proto = "http", .user = user, .addr = r->addr, .cmd = r->method,
			 .path = r->shown[0] ? r->shown : r->target, .incoming = r->xfer == 1,
			 .bytes = r->xfer == 1 ? r->bytes_in : (ok ? r->bytes_out : 0),
			 .ms = us / 1000, .result = ok ? "ok" : completed ? "failed" : "aborted",
			 .dedup = r->xfer_dedup, .reason = ok ? NULL : why[0] ? why : "connection lost"};
	s->api->log_transfer(s->core, &x);
}
