/*
 * http.c - every request libstoraged makes goes through sdc__http().
 *
 * Connections: each server keeps a small stack of idle curl easy handles;
 * a request takes one (or makes one), runs, and puts it back, so the
 * keep-alive connection each handle holds is reused by the next request on
 * that server, from whichever thread. No handle is used by two threads.
 *
 * Timeouts: connect within timeout_ms, then the transfer is aborted when
 * less than one byte per second moved for timeout_ms (rounded up to whole
 * seconds, curl's granularity): a server that dies or stops answering
 * gives -EIO or -ETIMEDOUT, and a long transfer that moves is never cut.
 *
 * Errors: transport failures become -EIO / -ETIMEDOUT; an HTTP error status
 * becomes -errno through the JSON "error" code the server sends
 * (docs/rest-api.md's table), and the server's "message" becomes this
 * thread's sdc_errmsg().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "internal.h"

static __thread char errmsg[512];

const char *sdc_errmsg(void)
{
	return errmsg;
}

void sdc__set_errmsg(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errmsg, sizeof errmsg, fmt, ap);
	va_end(ap);
}

double sdc__now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ buffers */

void *sdc__xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		abort();
	return p;
}

void *sdc__xcalloc(size_t n, size_t m)
{
	void *p = calloc(n ? n : 1, m ? m : 1);
	if (!p)
		abort();
	return p;
}

char *sdc__xstrdup(const char *s)
{
	char *p = strdup(s ? s : "");
	if (!p)
		abort();
	return p;
}

static void buf_grow(sdc_buf *b, size_t add)
{
	if (b->len + add + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + add + 1)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p)
		abort();
	b->p = p;
	b->cap = cap;
}

void sdc__buf_add(sdc_buf *b, const void *p, size_t n)
{
	buf_grow(b, n);
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void sdc__buf_puts(sdc_buf *b, const char *s)
{
	sdc__buf_add(b, s, strlen(s));
}

void sdc__buf_printf(sdc_buf *b, const char *fmt, ...)
{
	if (!fmt) /* see sd_buf_vprintf: GCC -O1 -fsanitize=undefined */
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	buf_grow(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void sdc__buf_free(sdc_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

void sdc__buf_urlenc(sdc_buf *b, const char *s, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		unsigned char ch = *p;
		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '_' || ch == '.' || ch == '~' || (keep_slash && ch == '/')) {
			char c1 = (char)ch;
			sdc__buf_add(b, &c1, 1);
		} else {
			char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};
			sdc__buf_add(b, e, 3);
		}
	}
}

void sdc__url_path(sdc_req *r, sdc_srv *s, const char *api, const char *path)
{
	sdc__buf_printf(&r->url, "%s/api/v1/%s", s->base, api);
	if (path) {
		if (path[0] != '/')
			sdc__buf_puts(&r->url, "/");
		sdc__buf_urlenc(&r->url, path, 1);
	}
}

/* ------------------------------------------------------------ requests */

void sdc__req_header(sdc_req *r, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	struct curl_slist *n = curl_slist_append(r->hdrs, line);
	if (!n)
		abort();
	r->hdrs = n;
}

void sdc__req_free(sdc_req *r)
{
	sdc__buf_free(&r->url);
	sdc__buf_free(&r->resp);
	curl_slist_free_all(r->hdrs);
	r->hdrs = NULL;
}

static CURL *pool_get(sdc_srv *s)
{
	CURL *h = NULL;
	pthread_mutex_lock(&s->pool_m);
	if (s->npool > 0)
		h = s->pool[--s->npool];
	pthread_mutex_unlock(&s->pool_m);
	if (h)
		curl_easy_reset(h);
	else
		h = curl_easy_init();
	return h;
}

static void pool_put(sdc_srv *s, CURL *h, int keep)
{
	if (keep) {
		pthread_mutex_lock(&s->pool_m);
		if (s->npool < SDC_POOL) {
			s->pool[s->npool++] = h;
			h = NULL;
		}
		pthread_mutex_unlock(&s->pool_m);
	}
	if (h)
		curl_easy_cleanup(h);
}

/* Response bodies kept in memory (JSON, error texts) are capped. */
#define RESP_CAP (64u << 20)

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
	sdc_req *r = arg;
	size_t len = sz * n;
	r->got += len;
	if (r->sink && r->status >= 200 && r->status < 300) {
		size_t k = r->sink(p, len, r->sink_arg);
		if (k != len && !r->sink_err)
			r->sink_err = -EIO;
		return k;
	}
	if (r->resp.len + len > RESP_CAP)
		return 0;
	sdc__buf_add(&r->resp, p, len);
	return len;
}

static void hdr_value(char *dst, size_t cap, const char *v, size_t n)
{
	while (n && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
		n--;
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

static size_t on_header(char *p, size_t sz, size_t n, void *arg)
{
	sdc_req *r = arg;
	size_t len = sz * n;
	if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		/* a new answer (after 100 Continue): forget the last one's */
		r->ctype[0] = r->crange[0] = r->etag[0] = '\0';
		r->instant_hdr = 0;
		r->clen = 0;
		long st = 0;
		const char *sp = memchr(p, ' ', len);
		if (sp)
			st = strtol(sp + 1, NULL, 10);
		r->status = st;
		return len;
	}
	const char *colon = memchr(p, ':', len);
	if (!colon)
		return len;
	size_t kl = (size_t)(colon - p);
	const char *v = colon + 1;
	size_t vl = len - kl - 1;
	char tmp[32];
	if (kl == 12 && strncasecmp(p, "Content-Type", 12) == 0)
		hdr_value(r->ctype, sizeof r->ctype, v, vl);
	else if (kl == 13 && strncasecmp(p, "Content-Range", 13) == 0)
		hdr_value(r->crange, sizeof r->crange, v, vl);
	else if (kl == 4 && strncasecmp(p, "ETag", 4) == 0)
		hdr_value(r->etag, sizeof r->etag, v, vl);
	else if (kl == 16 && strncasecmp(p, "X-Instant-Upload", 16) == 0)
		r->instant_hdr = 1;
	else if (kl == 14 && strncasecmp(p, "Content-Length", 14) == 0) {
		hdr_value(tmp, sizeof tmp, v, vl);
		r->clen = strtoull(tmp, NULL, 10);
	}
	return len;
}

static size_t on_read_mem(char *p, size_t sz, size_t n, void *arg)
{
	sdc_req *r = arg;
	size_t want = sz * n;
	size_t left = r->body_len - (size_t)r->sent;
	if (want > left)
		want = left;
	memcpy(p, (const char *)r->body + r->sent, want);
	r->sent += want;
	return want;
}

static size_t on_read_cb(char *p, size_t sz, size_t n, void *arg)
{
	sdc_req *r = arg;
	size_t k = r->read_cb(p, sz, n, r->read_arg);
	if (k != CURL_READFUNC_ABORT && k != CURL_READFUNC_PAUSE)
		r->sent += k;
	return k;
}

CURL *sdc__easy_get(sdc_srv *s)
{
	return pool_get(s);
}

void sdc__easy_setup(sdc_client *c, sdc_srv *s, CURL *h, sdc_req *r)
{
	r->status = 0;
	r->got = 0;
	r->sent = 0;
	sdc__buf_free(&r->resp);
	curl_easy_setopt(h, CURLOPT_URL, r->url.p);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->timeout_ms);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)((c->timeout_ms + 999) / 1000));
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 512L * 1024);
	curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 2L * 1024 * 1024);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "libstoraged/" SDC_VERSION);
	if (c->cacert)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->cacert);
	if (c->max_send_rate)
		curl_easy_setopt(h, CURLOPT_MAX_SEND_SPEED_LARGE, (curl_off_t)c->max_send_rate);
	if (c->insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (s->bearer) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
		curl_easy_setopt(h, CURLOPT_XOAUTH2_BEARER, s->bearer);
	} else if (s->user) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(h, CURLOPT_USERNAME, s->user);
		curl_easy_setopt(h, CURLOPT_PASSWORD, s->secret ? s->secret : "");
	}
	if (!r->expect100)
		sdc__req_header(r, "Expect:");
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, r->hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	const char *m = r->method ? r->method : "GET";
	if (strcmp(m, "GET") == 0) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(m, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(m, "PUT") == 0 || r->has_body || r->read_cb) {
		/* PUT or POST with a body: streamed through a read callback with
		 * the length known (Content-Length, no chunking). */
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		if (r->read_cb) {
			curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read_cb);
			curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->upload_len);
		} else {
			curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read_mem);
			curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body_len);
		}
		curl_easy_setopt(h, CURLOPT_READDATA, r);
		if (strcmp(m, "PUT") != 0)
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
	} else if (strcmp(m, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
	} else {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
	}
}

int sdc__easy_done(sdc_client *c, sdc_srv *s, CURL *h, sdc_req *r, CURLcode rc)
{
	pthread_mutex_lock(&c->lock);
	c->st.requests++;
	c->st.bytes_in += r->got;
	c->st.bytes_out += r->sent;
	pthread_mutex_unlock(&c->lock);
	int ret = 0;
	if (rc != CURLE_OK) {
		if (r->sink_err)
			ret = r->sink_err;
		else if (rc == CURLE_OPERATION_TIMEDOUT)
			ret = -ETIMEDOUT;
		else if (rc == CURLE_OUT_OF_MEMORY)
			ret = -ENOMEM;
		else
			ret = -EIO;
		if (!r->sink_err)
			sdc__set_errmsg("%s %s: %s", s->name, s->base, curl_easy_strerror(rc));
	}
	pool_put(s, h, rc == CURLE_OK);
	return ret;
}

int sdc__http(sdc_client *c, sdc_srv *s, sdc_req *r)
{
	CURL *h = pool_get(s);
	if (!h)
		return -ENOMEM;
	sdc__easy_setup(c, s, h, r);
	return sdc__easy_done(c, s, h, r, curl_easy_perform(h));
}

json_t *sdc__json(sdc_req *r)
{
	if (!r->resp.len)
		return NULL;
	json_t *j = json_loadb(r->resp.p, r->resp.len, 0, NULL);
	if (j && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static const struct {
	const char *code;
	int err;
} codes[] = {
    {"not_found", ENOENT},       {"send_data", ENOENT},        {"exists", EEXIST},
    {"not_a_directory", ENOTDIR}, {"is_a_directory", EISDIR},  {"not_empty", ENOTEMPTY},
    {"open_conflict", EBUSY},    {"locked", EBUSY},            {"read_only", EROFS},
    {"forbidden", EACCES},       {"bad_proof", EACCES},        {"unauthorized", SDC_EAUTH},
    {"name_too_long", ENAMETOOLONG}, {"too_large", EFBIG},     {"quota_exceeded", EDQUOT},
    {"disk_full", ENOSPC},       {"too_many_handles", EMFILE}, {"blocked", EAGAIN},
    {"unavailable", EAGAIN},     {"io_error", EIO},            {"corrupt", EIO},
    {"range_not_satisfiable", EINVAL}, {"checksum_mismatch", EILSEQ},
    {"handle_gone", ESTALE},
};

int sdc__http_err(sdc_req *r)
{
	long st = r->status;
	json_t *j = sdc__json(r);
	const char *code = j ? json_string_value(json_object_get(j, "error")) : NULL;
	const char *msg = j ? json_string_value(json_object_get(j, "message")) : NULL;
	const char *conf = j ? json_string_value(json_object_get(j, "conflict")) : NULL;
	if (msg && conf)
		sdc__set_errmsg("%s (open as %s)", msg, conf);
	else if (msg)
		sdc__set_errmsg("%s", msg);
	else
		sdc__set_errmsg("HTTP %ld", st);
	int err = 0;
	for (size_t i = 0; code && i < sizeof codes / sizeof codes[0]; i++)
		if (strcmp(codes[i].code, code) == 0)
			err = codes[i].err;
	json_decref(j);
	if (err)
		return -err;
	switch (st) {
	case 400: return -EINVAL;
	case 401: return -SDC_EAUTH;
	case 403: return -EACCES;
	case 404: return -ENOENT;
	case 405: return -EOPNOTSUPP;
	case 409: return -EEXIST;
	case 413: return -EFBIG;
	case 416: return -EINVAL;
	case 423: return -EBUSY;
	case 429: return -EAGAIN;
	case 507: return -ENOSPC;
	default: return st >= 500 ? -EIO : -SDC_EPROTO;
	}
}
