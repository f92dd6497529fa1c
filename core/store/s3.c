/*
 * store/s3.c - the s3 blob store module (store_s3.so): contents as objects
 * <s3_prefix><hex> in one bucket of any S3-compatible service (AWS, Ceph
 * RGW, MinIO, Backblaze B2, Wasabi), over libcurl.
 *
 * Design notes
 * ------------
 * Signing: libcurl's own AWS SigV4 (CURLOPT_AWS_SIGV4, "aws:amz:REGION:s3"),
 * no hand-rolled HMAC. libcurl 7.88 signs what it is given, so:
 *  - every request carries x-amz-content-sha256 (S3 and RGW require it):
 *    a whole-object PUT sends the content's address, which IS the SHA-256
 *    of its body, so the service itself refuses a body that does not
 *    match; parts of a multipart upload send UNSIGNED-PAYLOAD; requests
 *    without a body send the hash of nothing;
 *  - query strings are written already canonical: names sorted, values
 *    percent-encoded (curl_easy_escape encodes all but A-Z a-z 0-9 - . _ ~,
 *    as SigV4 wants), and "uploads=" with its '='.
 * Addressing: path style (ENDPOINT/BUCKET/KEY) or virtual host
 * (SCHEME://BUCKET.HOST/KEY), s3_addressing.
 *
 * Writes: a content up to s3_part_size is one PUT; a larger one is a
 * multipart upload (s3_upload_threads parts in flight, each read from the
 * temp file with pread), completed only when every part is in, aborted on
 * any failure: a content is visible whole or not at all. Each object
 * carries x-amz-meta-sha256 (info(), for fsck without reading).
 *
 * Reads: ranged GETs (Range: bytes=A-B) into the caller's buffer; the
 * engine's wrapper (store/remote.c) reads in large pieces and caches.
 *
 * Retries: a request that fails to connect or send, times out, or gets
 * 500, 502, 503, 504 or 429 is retried up to s3_retries times, after
 * 100 ms, 200 ms, 400 ms ... (at most 5 s, with jitter). 4xx answers are
 * final: 404 is -ENOENT (only on objects), 403 -EACCES, the rest -EIO.
 *
 * Connections: easy handles are pooled (a free list), so each thread's
 * request reuses a kept-alive connection.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "store_module.h"
#include "sys.h"
#include "util.h"

#define EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define MAX_PARTS 10000

typedef struct s3_conf {
	char *endpoint;
	char *bucket;
	char *region;
	char *access_key;
	char *secret_key;
	char *secret_key_file;
	char *prefix;
	char *addressing;
	int tls_verify;
	char *ca_file;
	int64_t part_size;
	int64_t upload_threads;
	int64_t retries;
	int64_t timeout;
} s3_conf;

#define F(x) offsetof(s3_conf, x)
static const sd_conf_item s3_table[] = {
	{"s3_endpoint", SD_CONF_STR, F(endpoint), "",
	 "URL of the S3 service: https://s3.eu-west-1.amazonaws.com, http://127.0.0.1:7480 (Ceph RGW), https://s3.us-west-004.backblazeb2.com ... Required."},
	{"s3_bucket", SD_CONF_STR, F(bucket), "", "The bucket holding the contents; it must exist. Required."},
	{"s3_region", SD_CONF_STR, F(region), "us-east-1",
	 "Region used in the SigV4 signature (RGW: its zonegroup name, often 'default'; MinIO: us-east-1)."},
	{"s3_access_key", SD_CONF_STR, F(access_key), "", "Access key id. Required."},
	{"s3_secret_key", SD_CONF_STR, F(secret_key), "",
	 "Secret key; prefer s3_secret_key_file, which keeps it out of the config file."},
	{"s3_secret_key_file", SD_CONF_PATH, F(secret_key_file), "",
	 "File whose first line is the secret key (relative to the config file's directory)."},
	{"s3_prefix", SD_CONF_STR, F(prefix), "",
	 "Prefix of every object key, e.g. storaged/ (letters, digits, / . _ -): one data directory per bucket and prefix."},
	{"s3_addressing", SD_CONF_STR, F(addressing), "path",
	 "path: ENDPOINT/BUCKET/KEY (RGW, MinIO); virtual: SCHEME://BUCKET.HOST/KEY (AWS's preferred form)."},
	{"s3_tls_verify", SD_CONF_BOOL, F(tls_verify), "yes",
	 "Verify the service's TLS certificate and host name (https endpoints). Turn off only for a test service."},
	{"s3_ca_file", SD_CONF_PATH, F(ca_file), "",
	 "PEM file of the certificate authorities to trust instead of the system's."},
	{"s3_part_size", SD_CONF_SIZE, F(part_size), "16M",
	 "Contents larger than this are sent as a multipart upload in parts of this size (5M..5G)."},
	{"s3_upload_threads", SD_CONF_INT, F(upload_threads), "4",
	 "Parts of one multipart upload sent at once (1..32)."},
	{"s3_retries", SD_CONF_INT, F(retries), "5",
	 "Retries of a request that failed to connect, timed out, or got 500, 502, 503, 504 or 429 (backoff from 100 ms, doubling, at most 5 s)."},
	{"s3_timeout", SD_CONF_DURATION, F(timeout), "30s",
	 "Connect timeout, and how long a transfer may go without progress, before the request fails (and is retried)."},
	{NULL, 0, 0, NULL, NULL},
};
#undef F

typedef struct hpool {
	CURL *h;
	struct hpool *next;
} hpool;

typedef struct s3 {
	sd_store base;
	const sd_store_host *host;
	const s3_conf *cf;
	char *secret;
	char *scheme, *hostport, *path; /* endpoint parts; path: its path prefix ("" or "/x") */
	int virt;
	char *userpwd, *sigv4;
	pthread_mutex_t pm;
	hpool *free;
} s3;

typedef struct s3rd {
	s3 *s;
	char hex[65];
	uint64_t size;
} s3rd;

/* ------------------------------------------------------------ requests */

typedef struct req {
	s3 *s;
	const char *method;    /* GET HEAD PUT POST DELETE */
	const char *key;       /* object key (escaped as needed), NULL: the bucket */
	const char *query;     /* canonical query, or NULL */
	const char *payload;   /* x-amz-content-sha256 value */
	struct curl_slist *hdrs; /* extra headers (owned by the caller) */
	/* body: from memory or from an fd at an offset */
	const char *body;
	int body_fd;
	uint64_t body_off, body_len, sent;
	/* response */
	char *out; /* ranged GET: the caller's buffer */
	size_t out_cap, out_len;
	sd_buf resp; /* small bodies (XML) */
	long status;
	uint64_t clen;
	int have_clen;
	char etag[128];
	char meta_sha[65];
	char curl_err[CURL_ERROR_SIZE];
	CURLcode cc;
	int no_retry;
} req;

static size_t on_read(char *dst, size_t size, size_t n, void *arg)
{
	req *q = arg;
	size_t want = size * n;
	uint64_t left = q->body_len - q->sent;
	if (want > left)
		want = (size_t)left;
	if (want == 0)
		return 0;
	if (q->body) {
		memcpy(dst, q->body + q->sent, want);
	} else {
		ssize_t got = sd_sys_pread(q->body_fd, dst, want, q->body_off + q->sent);
		if (got <= 0)
			return CURL_READFUNC_ABORT;
		want = (size_t)got;
	}
	q->sent += want;
	return want;
}

static size_t on_write(char *src, size_t size, size_t n, void *arg)
{
	req *q = arg;
	size_t len = size * n;
	if (q->out) {
		if (q->out_len + len > q->out_cap)
			return 0; /* more than asked for: abort */
		memcpy(q->out + q->out_len, src, len);
		q->out_len += len;
		return len;
	}
	if (q->resp.len + len > (64u << 20))
		return 0;
	sd_buf_append(&q->resp, src, len);
	return len;
}

static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
	req *q = arg;
	size_t len = size * n;
	char h[512];
	size_t k = len < sizeof h - 1 ? len : sizeof h - 1;
	memcpy(h, line, k);
	h[k] = '\0';
	while (k && (h[k - 1] == '\r' || h[k - 1] == '\n'))
		h[--k] = '\0';
	if (strncasecmp(h, "HTTP/", 5) == 0) { /* a new response (after 100, or a retry) */
		q->have_clen = 0;
		q->etag[0] = q->meta_sha[0] = '\0';
		return len;
	}
	char *colon = strchr(h, ':');
	if (!colon)
		return len;
	*colon = '\0';
	char *v = colon + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	if (strcasecmp(h, "content-length") == 0) {
		q->clen = strtoull(v, NULL, 10);
		q->have_clen = 1;
	} else if (strcasecmp(h, "etag") == 0) {
		snprintf(q->etag, sizeof q->etag, "%s", v);
	} else if (strcasecmp(h, "x-amz-meta-sha256") == 0) {
		snprintf(q->meta_sha, sizeof q->meta_sha, "%s", v);
	}
	return len;
}

static CURL *take(s3 *s)
{
	pthread_mutex_lock(&s->pm);
	hpool *p = s->free;
	if (p)
		s->free = p->next;
	pthread_mutex_unlock(&s->pm);
	if (!p)
		return curl_easy_init();
	CURL *h = p->h;
	free(p);
	curl_easy_reset(h);
	return h;
}

static void give(s3 *s, CURL *h)
{
	hpool *p = malloc(sizeof *p);
	if (!p) {
		curl_easy_cleanup(h);
		return;
	}
	p->h = h;
	pthread_mutex_lock(&s->pm);
	p->next = s->free;
	s->free = p;
	pthread_mutex_unlock(&s->pm);
}

static char *url_of(s3 *s, const char *key, const char *query)
{
	sd_buf b = SD_BUF_INIT;
	if (s->virt)
		sd_buf_printf(&b, "%s://%s.%s%s/", s->scheme, s->cf->bucket, s->hostport, s->path);
	else
		sd_buf_printf(&b, "%s://%s%s/%s%s", s->scheme, s->hostport, s->path, s->cf->bucket,
			      key ? "/" : "");
	if (key)
		sd_buf_puts(&b, key);
	if (query)
		sd_buf_printf(&b, "?%s", query);
	return sd_buf_steal(&b);
}

/* One attempt. */
static void perform(req *q)
{
	s3 *s = q->s;
	CURL *h = take(s);
	if (!h) {
		q->cc = CURLE_OUT_OF_MEMORY;
		return;
	}
	char *url = url_of(s, q->key, q->query);
	struct curl_slist *hd = NULL;
	char line[160];
	snprintf(line, sizeof line, "x-amz-content-sha256: %s", q->payload ? q->payload : EMPTY_SHA);
	hd = curl_slist_append(hd, line);
	for (struct curl_slist *x = q->hdrs; x; x = x->next)
		hd = curl_slist_append(hd, x->data);
	q->sent = 0;
	q->out_len = 0;
	sd_buf_free(&q->resp);
	q->status = 0;
	q->curl_err[0] = '\0';
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
	curl_easy_setopt(h, CURLOPT_AWS_SIGV4, s->sigv4);
	curl_easy_setopt(h, CURLOPT_USERPWD, s->userpwd);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	/* No "Expect:" header to turn 100-continue off: libcurl 7.88 signs
	 * that empty header as "expect;" and the service refuses the
	 * signature. A bounded wait for the 100 instead. */
	curl_easy_setopt(h, CURLOPT_EXPECT_100_TIMEOUT_MS, 300L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, q->curl_err);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)s->cf->timeout);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)((s->cf->timeout + 999) / 1000));
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, s->cf->tls_verify ? 1L : 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, s->cf->tls_verify ? 2L : 0L);
	if (s->cf->ca_file && *s->cf->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, s->cf->ca_file);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, q);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, q);
	if (strcmp(q->method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(q->method, "PUT") == 0 || strcmp(q->method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, q);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)q->body_len);
		if (strcmp(q->method, "POST") == 0)
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "POST");
	} else if (strcmp(q->method, "GET") != 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q->method);
	}
	if (getenv("SD_S3_VERBOSE"))
		curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
	q->cc = curl_easy_perform(h);
	if (q->cc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &q->status);
	curl_slist_free_all(hd);
	free(url);
	/* a handle whose transfer broke may hold a dead connection: drop it */
	if (q->cc == CURLE_OK)
		give(s, h);
	else
		curl_easy_cleanup(h);
}

static int transient(const req *q)
{
	if (q->cc != CURLE_OK)
		return q->cc != CURLE_WRITE_ERROR && q->cc != CURLE_ABORTED_BY_CALLBACK &&
		       q->cc != CURLE_READ_ERROR && q->cc != CURLE_OUT_OF_MEMORY &&
		       q->cc != CURLE_SSL_CACERT && q->cc != CURLE_PEER_FAILED_VERIFICATION &&
		       q->cc != CURLE_UNSUPPORTED_PROTOCOL && q->cc != CURLE_URL_MALFORMAT;
	return q->status == 500 || q->status == 502 || q->status == 503 || q->status == 504 ||
	       q->status == 429;
}

/* Retries with backoff. 0 when an answer came (look at q->status), or the
 * -errno of the last transport failure. */
static int run(req *q)
{
	int64_t delay = 100;
	for (int attempt = 0;; attempt++) {
		perform(q);
		if (!transient(q) || attempt >= q->s->cf->retries || q->no_retry)
			break;
		q->s->host->log(SD_LOG_WARN, "s3", "event=retry method=%s key=%s attempt=%d %s%s status=%ld",
				q->method, q->key ? q->key : "(bucket)", attempt + 1,
				q->cc ? "curl=" : "", q->cc ? curl_easy_strerror(q->cc) : "", q->status);
		unsigned jitter = (unsigned)rand() % (unsigned)(delay / 2 + 1);
		usleep((useconds_t)((delay + jitter) * 1000));
		delay = delay * 2 > 5000 ? 5000 : delay * 2;
	}
	if (q->cc == CURLE_OK)
		return 0;
	q->s->host->log(SD_LOG_ERROR, "s3", "event=request_failed method=%s key=%s err=\"%s\"",
			q->method, q->key ? q->key : "(bucket)",
			q->curl_err[0] ? q->curl_err : curl_easy_strerror(q->cc));
	switch (q->cc) {
	case CURLE_OPERATION_TIMEDOUT: return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT: return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST: return -EHOSTUNREACH;
	default: return -EIO;
	}
}

/* The text of <tag>...</tag> at or after from in xml, XML entities decoded
 * (malloc'd), and where it ends in *next. NULL when absent. */
static char *xml_tag(const char *xml, const char *tag, const char *from, const char **next)
{
	char open[64], close[64];
	snprintf(open, sizeof open, "<%s>", tag);
	snprintf(close, sizeof close, "</%s>", tag);
	const char *a = strstr(from ? from : xml, open);
	if (!a)
		return NULL;
	a += strlen(open);
	const char *b = strstr(a, close);
	if (!b)
		return NULL;
	if (next)
		*next = b + strlen(close);
	sd_buf o = SD_BUF_INIT;
	for (const char *p = a; p < b; p++) {
		static const struct { const char *e; char c; } ents[] = {
		    {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
		int done = 0;
		for (size_t i = 0; i < 5 && !done; i++) {
			size_t n = strlen(ents[i].e);
			if ((size_t)(b - p) >= n && strncmp(p, ents[i].e, n) == 0) {
				sd_buf_append(&o, &ents[i].c, 1);
				p += n - 1;
				done = 1;
			}
		}
		if (!done)
			sd_buf_append(&o, p, 1);
	}
	return sd_buf_steal(&o);
}

/* The S3 error code of a response body ("NoSuchBucket"), or "". */
static void err_code(const req *q, char *out, size_t len)
{
	out[0] = '\0';
	if (!q->resp.data)
		return;
	char *c = xml_tag(q->resp.data, "Code", NULL, NULL);
	if (c) {
		snprintf(out, len, "%s", c);
		free(c);
	}
}

static int status_err(const req *q)
{
	if (q->status == 404)
		return -ENOENT;
	if (q->status == 403)
		return -EACCES;
	if (q->status == 416)
		return -ERANGE;
	return -EIO;
}

static void req_init(req *q, s3 *s, const char *method, const char *key)
{
	memset(q, 0, sizeof *q);
	q->s = s;
	q->method = method;
	q->key = key;
	q->body_fd = -1;
}

static void req_free(req *q)
{
	sd_buf_free(&q->resp);
	curl_slist_free_all(q->hdrs);
	q->hdrs = NULL;
}

static void key_of(s3 *s, const char *hex, char *out, size_t len)
{
	snprintf(out, len, "%s%s", s->cf->prefix, hex);
}

static void log_status(s3 *s, const char *what, const char *key, const req *q)
{
	char code[64];
	err_code(q, code, sizeof code);
	s->host->log(SD_LOG_ERROR, "s3", "event=%s_failed key=%s status=%ld code=%s", what, key,
		     q->status, code[0] ? code : "-");
}

/* ------------------------------------------------------------ the ops */

static int head(s3 *s, const char *hex, uint64_t *size, char *sha)
{
	char key[512];
	key_of(s, hex, key, sizeof key);
	req q;
	req_init(&q, s, "HEAD", key);
	int r = run(&q);
	if (r == 0) {
		if (q.status == 200) {
			if (size)
				*size = q.have_clen ? q.clen : 0;
			if (sha)
				snprintf(sha, 65, "%s", q.meta_sha);
		} else {
			r = status_err(&q);
			if (r != -ENOENT)
				log_status(s, "head", key, &q);
		}
	}
	req_free(&q);
	return r;
}

static int s3_stat(sd_store *st, const char *hex, uint64_t *size)
{
	return head((s3 *)st, hex, size, NULL);
}

static int s3_info(sd_store *st, const char *hex, uint64_t *size, char sha[65])
{
	return head((s3 *)st, hex, size, sha);
}

/* One PUT of [off, off + len) of fd (or of buf), with payload hash pay. */
static int put_one(s3 *s, const char *key, const char *query, const char *buf, int fd, uint64_t off,
		   uint64_t len, const char *pay, const char *meta_sha, char *etag, size_t etaglen)
{
	req q;
	req_init(&q, s, "PUT", key);
	q.query = query;
	q.body = buf;
	q.body_fd = fd;
	q.body_off = off;
	q.body_len = len;
	q.payload = pay;
	char h[128];
	if (meta_sha) {
		snprintf(h, sizeof h, "x-amz-meta-sha256: %s", meta_sha);
		q.hdrs = curl_slist_append(q.hdrs, h);
	}
	q.hdrs = curl_slist_append(q.hdrs, "Content-Type: application/octet-stream");
	int r = run(&q);
	if (r == 0 && q.status != 200) {
		log_status(s, "put", key, &q);
		r = status_err(&q);
		if (r == -ENOENT)
			r = -EIO; /* the bucket went away: not "content missing" */
	}
	if (r == 0 && etag)
		snprintf(etag, etaglen, "%s", q.etag);
	req_free(&q);
	return r;
}

typedef struct mpu {
	s3 *s;
	const char *key;
	char *upload_id_q; /* escaped upload id */
	int fd;
	uint64_t size, part;
	int nparts, next;
	char (*etags)[128];
	int err;
	pthread_mutex_t m;
} mpu;

static void *mpu_worker(void *arg)
{
	mpu *u = arg;
	for (;;) {
		pthread_mutex_lock(&u->m);
		int i = u->err ? u->nparts : u->next++;
		pthread_mutex_unlock(&u->m);
		if (i >= u->nparts)
			return NULL;
		uint64_t off = (uint64_t)i * u->part;
		uint64_t len = u->size - off < u->part ? u->size - off : u->part;
		char query[512];
		snprintf(query, sizeof query, "partNumber=%d&uploadId=%s", i + 1, u->upload_id_q);
		int r = put_one(u->s, u->key, query, NULL, u->fd, off, len, "UNSIGNED-PAYLOAD", NULL,
				u->etags[i], sizeof u->etags[i]);
		if (r == 0 && !u->etags[i][0])
			r = -EIO;
		if (r < 0) {
			pthread_mutex_lock(&u->m);
			if (!u->err)
				u->err = r;
			pthread_mutex_unlock(&u->m);
			return NULL;
		}
	}
}

static int multipart(s3 *s, const char *key, int fd, uint64_t size, const char *hex)
{
	uint64_t part = (uint64_t)s->cf->part_size;
	while ((size + part - 1) / part > MAX_PARTS)
		part *= 2;
	req q;
	req_init(&q, s, "POST", key);
	q.query = "uploads=";
	char h[128];
	snprintf(h, sizeof h, "x-amz-meta-sha256: %s", hex);
	q.hdrs = curl_slist_append(q.hdrs, h);
	q.hdrs = curl_slist_append(q.hdrs, "Content-Type: application/octet-stream");
	q.body = "";
	int r = run(&q);
	char *uid = NULL;
	if (r == 0 && (q.status != 200 || !q.resp.data ||
		       !(uid = xml_tag(q.resp.data, "UploadId", NULL, NULL)))) {
		log_status(s, "create_multipart", key, &q);
		r = q.status == 403 ? -EACCES : -EIO;
	}
	req_free(&q);
	if (r < 0)
		return r;
	CURL *esc = curl_easy_init();
	char *e = esc ? curl_easy_escape(esc, uid, 0) : NULL;
	mpu u = {.s = s, .key = key, .fd = fd, .size = size, .part = part};
	u.upload_id_q = sd_xstrdup(e ? e : uid);
	curl_free(e);
	if (esc)
		curl_easy_cleanup(esc);
	u.nparts = (int)((size + part - 1) / part);
	u.etags = sd_xcalloc((size_t)u.nparts, sizeof *u.etags);
	pthread_mutex_init(&u.m, NULL);
	int nth = (int)s->cf->upload_threads < u.nparts ? (int)s->cf->upload_threads : u.nparts;
	pthread_t th[32];
	int started = 0;
	for (int i = 0; i < nth; i++)
		if (pthread_create(&th[i], NULL, mpu_worker, &u) == 0)
			started++;
		else
			break;
	if (started == 0)
		mpu_worker(&u);
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	r = u.err;
	char query[512];
	snprintf(query, sizeof query, "uploadId=%s", u.upload_id_q);
	if (r == 0) {
		sd_buf x = SD_BUF_INIT;
		sd_buf_puts(&x, "<CompleteMultipartUpload>");
		for (int i = 0; i < u.nparts; i++)
			sd_buf_printf(&x, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", i + 1,
				      u.etags[i]);
		sd_buf_puts(&x, "</CompleteMultipartUpload>");
		req_init(&q, s, "POST", key);
		q.query = query;
		q.body = x.data;
		q.body_len = x.len;
		q.payload = "UNSIGNED-PAYLOAD";
		q.hdrs = curl_slist_append(q.hdrs, "Content-Type: application/xml");
		r = run(&q);
		/* a 200 may still carry an <Error> (S3 reports late failures so) */
		if (r == 0 && (q.status != 200 || !q.resp.data || strstr(q.resp.data, "<Error>"))) {
			log_status(s, "complete_multipart", key, &q);
			r = -EIO;
		}
		req_free(&q);
		sd_buf_free(&x);
	}
	if (r < 0) {
		/* abort, so that no part lingers (best effort: a lifecycle rule
		 * for incomplete uploads catches the rest, docs/backends.md) */
		req_init(&q, s, "DELETE", key);
		q.query = query;
		run(&q);
		req_free(&q);
	}
	pthread_mutex_destroy(&u.m);
	free(u.etags);
	free(u.upload_id_q);
	free(uid);
	return r;
}

static int s3_place(sd_store *st, int fd, const char *tmppath, const char *hex, uint64_t size)
{
	(void)tmppath;
	s3 *s = (s3 *)st;
	char key[512];
	key_of(s, hex, key, sizeof key);
	if (size > (uint64_t)s->cf->part_size)
		return multipart(s, key, fd, size, hex);
	return put_one(s, key, NULL, NULL, fd, 0, size, hex, hex, NULL, 0);
}

static int s3_put(sd_store *st, const void *buf, size_t len, const char *hex)
{
	s3 *s = (s3 *)st;
	char key[512];
	key_of(s, hex, key, sizeof key);
	return put_one(s, key, NULL, len ? buf : "", -1, 0, len, hex, hex, NULL, 0);
}

static int s3_open(sd_store *st, const char *hex, sd_blobrd **out)
{
	s3 *s = (s3 *)st;
	uint64_t size;
	int r = head(s, hex, &size, NULL);
	if (r < 0)
		return r;
	s3rd *rd = sd_xcalloc(1, sizeof *rd);
	rd->s = s;
	rd->size = size;
	snprintf(rd->hex, sizeof rd->hex, "%s", hex);
	*out = (sd_blobrd *)rd;
	return 0;
}

static ssize_t s3_pread(sd_blobrd *b, void *buf, size_t len, uint64_t off)
{
	s3rd *rd = (s3rd *)b;
	if (off >= rd->size || len == 0)
		return 0;
	if (len > rd->size - off)
		len = (size_t)(rd->size - off);
	char key[512], range[96];
	key_of(rd->s, rd->hex, key, sizeof key);
	snprintf(range, sizeof range, "Range: bytes=%" PRIu64 "-%" PRIu64, off, off + len - 1);
	req q;
	req_init(&q, rd->s, "GET", key);
	q.hdrs = curl_slist_append(q.hdrs, range);
	q.out = buf;
	q.out_cap = len;
	int r = run(&q);
	ssize_t got = r;
	if (r == 0) {
		if (q.status == 206 || (q.status == 200 && off == 0)) {
			got = (ssize_t)q.out_len;
		} else if (q.status == 416) {
			got = 0; /* shorter than its size: the engine calls it damaged */
		} else {
			log_status(rd->s, "get", key, &q);
			got = q.status == 404 ? -EIO : status_err(&q);
		}
	}
	req_free(&q);
	return got;
}

static int s3_fd(sd_blobrd *b, int *fd, uint64_t *base)
{
	(void)b;
	(void)fd;
	(void)base;
	return -ENOTSUP;
}

static void s3_close(sd_blobrd *b)
{
	free(b);
}

static int delete_key(s3 *s, const char *key)
{
	req q;
	req_init(&q, s, "DELETE", key);
	int r = run(&q);
	if (r == 0 && q.status != 204 && q.status != 200) {
		log_status(s, "delete", key, &q);
		r = status_err(&q);
	}
	req_free(&q);
	return r;
}

static int s3_remove(sd_store *st, const char *hex)
{
	s3 *s = (s3 *)st;
	/* S3 answers 204 whether or not the key existed: look first, so that
	 * -ENOENT keeps its meaning */
	int r = head(s, hex, NULL, NULL);
	if (r < 0)
		return r;
	char key[512];
	key_of(s, hex, key, sizeof key);
	return delete_key(s, key);
}

static int s3_discard(sd_store *st, const char *name)
{
	s3 *s = (s3 *)st;
	size_t pl = strlen(s->cf->prefix);
	if (strncmp(name, s->cf->prefix, pl) != 0)
		return -EINVAL;
	CURL *h = curl_easy_init();
	if (!h)
		return -ENOMEM;
	/* escape each segment, keep the slashes */
	sd_buf k = SD_BUF_INIT;
	const char *p = name;
	for (;;) {
		size_t n = strcspn(p, "/");
		char *e = curl_easy_escape(h, p, (int)n);
		sd_buf_puts(&k, e ? e : "");
		curl_free(e);
		if (!p[n])
			break;
		sd_buf_puts(&k, "/");
		p += n + 1;
	}
	curl_easy_cleanup(h);
	char *key = sd_buf_steal(&k);
	int r = delete_key(s, key);
	free(key);
	return r;
}

static int s3_walk(sd_store *st, sd_store_walk_cb cb, void *arg)
{
	s3 *s = (s3 *)st;
	CURL *h = curl_easy_init();
	if (!h)
		return -ENOMEM;
	char *token = NULL;
	char *pfx = curl_easy_escape(h, s->cf->prefix, 0);
	int r = 0, stop = 0;
	size_t pl = strlen(s->cf->prefix);
	while (!stop) {
		sd_buf qs = SD_BUF_INIT;
		if (token) {
			char *t = curl_easy_escape(h, token, 0);
			sd_buf_printf(&qs, "continuation-token=%s&", t ? t : "");
			curl_free(t);
		}
		sd_buf_printf(&qs, "list-type=2&max-keys=1000&prefix=%s", pfx ? pfx : "");
		req q;
		req_init(&q, s, "GET", NULL);
		q.query = qs.data;
		r = run(&q);
		if (r == 0 && (q.status != 200 || !q.resp.data)) {
			log_status(s, "list", "(bucket)", &q);
			r = q.status == 403 ? -EACCES : -EIO;
		}
		if (r < 0) {
			req_free(&q);
			sd_buf_free(&qs);
			break;
		}
		const char *at = q.resp.data, *next;
		char *c;
		while (!stop && (c = xml_tag(q.resp.data, "Contents", at, &next))) {
			at = next;
			char *key = xml_tag(c, "Key", NULL, NULL);
			if (key) {
				const char *rest = strncmp(key, s->cf->prefix, pl) == 0 ? key + pl : NULL;
				int ok = rest && sd_is_sha256_hex(rest);
				for (int i = 0; ok && i < 64; i++)
					ok = !(rest[i] >= 'A' && rest[i] <= 'F');
				stop = cb(arg, ok ? rest : NULL, key);
				free(key);
			}
			free(c);
		}
		char *trunc = xml_tag(q.resp.data, "IsTruncated", NULL, NULL);
		free(token);
		token = trunc && strcmp(trunc, "true") == 0
			    ? xml_tag(q.resp.data, "NextContinuationToken", NULL, NULL)
			    : NULL;
		free(trunc);
		req_free(&q);
		sd_buf_free(&qs);
		if (!token)
			break;
	}
	free(token);
	curl_free(pfx);
	curl_easy_cleanup(h);
	return r;
}

static void s3_destroy(sd_store *st)
{
	s3 *s = (s3 *)st;
	if (!s)
		return;
	while (s->free) {
		hpool *p = s->free;
		s->free = p->next;
		curl_easy_cleanup(p->h);
		free(p);
	}
	pthread_mutex_destroy(&s->pm);
	if (s->secret) {
		explicit_bzero(s->secret, strlen(s->secret));
		free(s->secret);
	}
	if (s->userpwd) {
		explicit_bzero(s->userpwd, strlen(s->userpwd));
		free(s->userpwd);
	}
	free(s->sigv4);
	free(s->scheme);
	free(s->hostport);
	free(s->path);
	free(s);
}

static const sd_store_ops s3_ops = {
	.name = "s3",
	.place = s3_place,
	.put = s3_put,
	.stat = s3_stat,
	.open = s3_open,
	.pread = s3_pread,
	.fd = s3_fd,
	.close = s3_close,
	.remove = s3_remove,
	.discard = s3_discard,
	.walk = s3_walk,
	.destroy = s3_destroy,
	.info = s3_info,
	.flags = SD_STORE_REMOTE,
};

/* ------------------------------------------------------------ open */

static int valid_prefix(const char *p)
{
	for (; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '/' || *p == '.' || *p == '_' || *p == '-'))
			return 0;
	return 1;
}

static int split_endpoint(s3 *s, const char *ep, char *err, size_t errlen)
{
	const char *sep = strstr(ep, "://");
	if (!sep || (strncmp(ep, "http", 4) != 0) ||
	    !(sep - ep == 4 || (sep - ep == 5 && ep[4] == 's'))) {
		snprintf(err, errlen, "s3_endpoint: '%s' is not an http:// or https:// URL", ep);
		return -1;
	}
	s->scheme = sd_xstrndup(ep, (size_t)(sep - ep));
	const char *hp = sep + 3;
	size_t n = strcspn(hp, "/?#");
	if (n == 0 || hp[n] == '?' || hp[n] == '#') {
		snprintf(err, errlen, "s3_endpoint: '%s' has no host, or has a query", ep);
		return -1;
	}
	s->hostport = sd_xstrndup(hp, n);
	const char *path = hp + n;
	size_t pl = strlen(path);
	while (pl && path[pl - 1] == '/')
		pl--;
	s->path = sd_xstrndup(path, pl);
	return 0;
}

static char *read_secret(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		snprintf(err, errlen, "s3_secret_key_file: cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	char line[512];
	char *r = NULL;
	if (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0])
			r = sd_xstrdup(line);
	}
	explicit_bzero(line, sizeof line);
	fclose(f);
	if (!r)
		snprintf(err, errlen, "s3_secret_key_file: %s is empty", path);
	return r;
}

/* List one key of the bucket: proves the endpoint answers, the keys are
 * accepted and the bucket exists, and names the key to fix if not. */
static int probe(s3 *s, char *err, size_t errlen)
{
	req q;
	req_init(&q, s, "GET", NULL);
	q.query = "list-type=2&max-keys=1";
	q.no_retry = 1; /* an unreachable endpoint fails start-up at once */
	int r = run(&q);
	if (r < 0) {
		snprintf(err, errlen, "s3_endpoint: cannot reach %s://%s%s: %s", s->scheme, s->hostport,
			 s->path, q.curl_err[0] ? q.curl_err : curl_easy_strerror(q.cc));
		req_free(&q);
		return -1;
	}
	char code[64];
	err_code(&q, code, sizeof code);
	int ok = q.status == 200;
	if (!ok) {
		if (strcmp(code, "NoSuchBucket") == 0 || (q.status == 404 && !code[0]))
			snprintf(err, errlen, "s3_bucket: bucket '%s' does not exist at %s://%s%s",
				 s->cf->bucket, s->scheme, s->hostport, s->path);
		else if (strcmp(code, "InvalidAccessKeyId") == 0)
			snprintf(err, errlen, "s3_access_key: the service does not know access key '%s'",
				 s->cf->access_key);
		else if (strcmp(code, "SignatureDoesNotMatch") == 0)
			snprintf(err, errlen,
				 "s3_secret_key: the service refused the signature (wrong secret key, or s3_region '%s')",
				 s->cf->region);
		else if (q.status == 403)
			snprintf(err, errlen, "s3_access_key: access to bucket '%s' denied (%s)", s->cf->bucket,
				 code[0] ? code : "403");
		else
			snprintf(err, errlen, "s3_endpoint: %s://%s%s answered %ld %s to a listing of bucket '%s'",
				 s->scheme, s->hostport, s->path, q.status, code, s->cf->bucket);
	}
	req_free(&q);
	return ok ? 0 : -1;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_ok;

static void curl_init(void)
{
	curl_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

static sd_store *s3_module_open(const sd_store_host *host, const void *conf, char *err,
				size_t errlen)
{
	const s3_conf *cf = conf;
	if (!*cf->endpoint) {
		snprintf(err, errlen, "s3_endpoint: required with blob_store = s3");
		return NULL;
	}
	if (!*cf->bucket) {
		snprintf(err, errlen, "s3_bucket: required with blob_store = s3");
		return NULL;
	}
	if (!*cf->access_key) {
		snprintf(err, errlen, "s3_access_key: required with blob_store = s3");
		return NULL;
	}
	if (!*cf->secret_key && !*cf->secret_key_file) {
		snprintf(err, errlen, "s3_secret_key_file: required with blob_store = s3 (or s3_secret_key)");
		return NULL;
	}
	if (strcmp(cf->addressing, "path") != 0 && strcmp(cf->addressing, "virtual") != 0) {
		snprintf(err, errlen, "s3_addressing: '%s' (use path or virtual)", cf->addressing);
		return NULL;
	}
	if (!valid_prefix(cf->prefix) || cf->prefix[0] == '/') {
		snprintf(err, errlen, "s3_prefix: '%s' (use letters, digits, / . _ -, not starting with /)",
			 cf->prefix);
		return NULL;
	}
	if (cf->part_size < (5 << 20) || cf->part_size > (5LL << 30)) {
		snprintf(err, errlen, "s3_part_size: out of range (5M..5G)");
		return NULL;
	}
	if (cf->upload_threads < 1 || cf->upload_threads > 32) {
		snprintf(err, errlen, "s3_upload_threads: out of range (1..32)");
		return NULL;
	}
	if (cf->retries < 0 || cf->retries > 20) {
		snprintf(err, errlen, "s3_retries: out of range (0..20)");
		return NULL;
	}
	if (cf->timeout < 100) {
		snprintf(err, errlen, "s3_timeout: at least 100ms");
		return NULL;
	}
	pthread_once(&curl_once, curl_init);
	if (!curl_ok) {
		snprintf(err, errlen, "blob_store = s3: libcurl cannot initialise");
		return NULL;
	}
	s3 *s = sd_xcalloc(1, sizeof *s);
	s->base.ops = &s3_ops;
	s->host = host;
	s->cf = cf;
	pthread_mutex_init(&s->pm, NULL);
	if (split_endpoint(s, cf->endpoint, err, errlen) < 0)
		goto fail;
	s->virt = strcmp(cf->addressing, "virtual") == 0;
	s->secret = *cf->secret_key_file ? read_secret(cf->secret_key_file, err, errlen)
					 : sd_xstrdup(cf->secret_key);
	if (!s->secret)
		goto fail;
	s->userpwd = sd_xasprintf("%s:%s", cf->access_key, s->secret);
	s->sigv4 = sd_xasprintf("aws:amz:%s:s3", cf->region);
	if (probe(s, err, errlen) < 0)
		goto fail;
	host->log(SD_LOG_INFO, "s3", "event=open endpoint=%s://%s%s bucket=%s prefix=\"%s\" addressing=%s",
		  s->scheme, s->hostport, s->path, cf->bucket, cf->prefix, cf->addressing);
	return &s->base;
fail:
	s3_destroy(&s->base);
	return NULL;
}

const sd_store_module storaged_store_module = {
	.abi = SD_STORE_ABI,
	.signature = SD_STORE_SIGNATURE,
	.name = "s3",
	.description = "Contents as objects PREFIX<sha256> in one bucket of an S3-compatible service "
		       "(AWS S3, Ceph RGW, MinIO, Backblaze B2, Wasabi), signed with AWS SigV4 by libcurl. "
		       "See docs/backends.md.",
	.conf_table = s3_table,
	.conf_size = sizeof(s3_conf),
	.open = s3_module_open,
};
