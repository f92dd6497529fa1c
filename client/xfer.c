/*
 * xfer.c - whole-file transfers: upload (instant upload with proof of
 * possession, resumable handle upload, plain PUT), download (resumable),
 * copy (server-side on one server; instant or streamed between two), cat.
 *
 * Resumable upload (files of RESUME_MIN bytes and more, when the server has
 * the handle API):
 *   1. open the target with write+create+truncate, share exclusive, and
 *      write a state file <state_dir>/put-<key>.json naming the handle, the
 *      server, the path and the local content's SHA-256 and size (key: a
 *      hash of server, user, path and the local SHA-256);
 *   2. send the file in PUT_CHUNK pieces at their offsets;
 *   3. close (the commit) and check the answer's SHA-256 against the local
 *      one; remove the state file.
 * A later call for the same local content and target finds the state file,
 * asks the server for the handle (GET /api/v1/handles/{id}): if it is still
 * there, for the same path, its size says how much arrived; the last bytes
 * before that are read back and compared with the local file, and sending
 * goes on from there. Otherwise it starts over. The server keeps an unused
 * handle for handle_idle_timeout (5 min by default): that is how long an
 * interrupted upload can be resumed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "internal.h"

#define RESUME_MIN (8ull << 20)
#define PUT_CHUNK (64ull << 20)
#define VERIFY_TAIL (64u << 10)

static void hexify(const unsigned char *d, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[d[i] >> 4];
		out[2 * i + 1] = hx[d[i] & 15];
	}
	out[2 * n] = '\0';
}

int sdc_sha256_fd(int fd, char hex[65], sdc_progress_cb cb, void *arg)
{
	struct stat sb;
	if (fstat(fd, &sb) < 0)
		return -errno;
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	size_t bs = 1u << 20;
	char *buf = sdc__xmalloc(bs);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	uint64_t done = 0;
	int rc = 0;
	off_t off = 0;
	for (;;) {
		ssize_t n = pread(fd, buf, bs, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		if (n == 0)
			break;
		EVP_DigestUpdate(md, buf, (size_t)n);
		off += n;
		done += (uint64_t)n;
		if (cb)
			cb(arg, done, (uint64_t)sb.st_size);
	}
	unsigned char dg[32];
	unsigned dl = 0;
	EVP_DigestFinal_ex(md, dg, &dl);
	EVP_MD_CTX_free(md);
	free(buf);
	if (rc == 0)
		hexify(dg, 32, hex);
	return rc;
}

/* ------------------------------------------------------------ instant */

static int post_json(sdc_client *c, int srv, const char *api, json_t *body, sdc_req *r)
{
	char *txt = json_dumps(body, JSON_COMPACT);
	r->method = "POST";
	r->body = txt;
	r->body_len = strlen(txt);
	r->has_body = 1;
	sdc__buf_printf(&r->url, "%s/api/v1/%s", c->srv[srv].base, api);
	sdc__req_header(r, "Content-Type: application/json");
	int rc = sdc__http(c, &c->srv[srv], r);
	free(txt);
	return rc;
}

/* Reads n bytes at off of the content being proved (a local fd or a
 * remote source). */
typedef int (*range_reader)(void *arg, uint64_t off, uint64_t n, EVP_MD_CTX *md);

static int local_ranges(void *arg, uint64_t off, uint64_t n, EVP_MD_CTX *md)
{
	int fd = *(int *)arg;
	char buf[65536];
	while (n > 0) {
		size_t k = n < sizeof buf ? (size_t)n : sizeof buf;
		ssize_t got = pread(fd, buf, k, (off_t)off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return got < 0 ? -errno : -EIO;
		EVP_DigestUpdate(md, buf, (size_t)got);
		off += (uint64_t)got;
		n -= (uint64_t)got;
	}
	return 0;
}

/* Instant upload of (sha, size) to path: 1 done (instant), 0 the server
 * wants the data, <0 error. */
static int try_instant(sdc_client *c, int srv, const char *path, const char *sha, uint64_t size,
		       int parents, range_reader rr, void *rarg)
{
	json_t *body = json_pack("{s:s, s:s, s:I, s:b}", "path", path, "sha256", sha, "size",
				 (json_int_t)size, "parents", parents);
	sdc_req r = {0};
	int rc = post_json(c, srv, "instant", body, &r);
	if (rc == 0 && r.status == 200) {
		/* a challenge: prove possession */
		json_t *j = sdc__json(&r);
		const char *nonce = j ? json_string_value(json_object_get(j, "nonce")) : NULL;
		json_t *ranges = j ? json_object_get(j, "ranges") : NULL;
		if (!nonce || !json_is_array(ranges)) {
			json_decref(j);
			rc = -SDC_EPROTO;
		} else {
			EVP_MD_CTX *md = EVP_MD_CTX_new();
			EVP_DigestInit_ex(md, EVP_sha256(), NULL);
			EVP_DigestUpdate(md, nonce, strlen(nonce));
			size_t i;
			json_t *rg;
			json_array_foreach(ranges, i, rg) {
				uint64_t off = (uint64_t)json_integer_value(json_array_get(rg, 0));
				uint64_t len = (uint64_t)json_integer_value(json_array_get(rg, 1));
				if (off > size || len > size - off) {
					rc = -SDC_EPROTO;
					break;
				}
				if ((rc = rr(rarg, off, len, md)) < 0)
					break;
			}
			unsigned char dg[32];
			unsigned dl = 0;
			EVP_DigestFinal_ex(md, dg, &dl);
			EVP_MD_CTX_free(md);
			if (rc == 0) {
				char proof[65];
				hexify(dg, 32, proof);
				json_object_set_new(body, "nonce", json_string(nonce));
				json_object_set_new(body, "proof", json_string(proof));
				sdc__req_free(&r);
				memset(&r, 0, sizeof r);
				rc = post_json(c, srv, "instant", body, &r);
			}
			json_decref(j);
		}
	}
	if (rc == 0) {
		if (r.status == 201 || r.status == 200)
			rc = 1;
		else if (r.status == 404) {
			json_t *j = sdc__json(&r);
			const char *code = j ? json_string_value(json_object_get(j, "error")) : NULL;
			rc = code && strcmp(code, "send_data") == 0 ? 0 : sdc__http_err(&r);
			json_decref(j);
		} else
			rc = sdc__http_err(&r);
	}
	sdc__req_free(&r);
	json_decref(body);
	return rc;
}

/* ------------------------------------------------------------ sending */

typedef struct fsrc {
	int fd;
	uint64_t off, end, done0, total;
	sdc_progress_cb cb;
	void *arg;
	uint64_t sent;
} fsrc;

static size_t fsrc_read(char *p, size_t sz, size_t n, void *arg)
{
	fsrc *s = arg;
	size_t want = sz * n;
	if (want > s->end - s->off)
		want = (size_t)(s->end - s->off);
	if (want == 0)
		return 0;
	ssize_t k;
	do
		k = pread(s->fd, p, want, (off_t)s->off);
	while (k < 0 && errno == EINTR);
	if (k <= 0)
		return CURL_READFUNC_ABORT;
	s->off += (uint64_t)k;
	s->sent += (uint64_t)k;
	if (s->cb)
		s->cb(s->arg, s->done0 + s->sent, s->total);
	return (size_t)k;
}

/* Plain PUT of the whole file, checked by X-Checksum-SHA256. */
static int put_plain(sdc_client *c, int srv, const char *path, int fd, uint64_t size,
		     const char *sha, int parents, sdc_progress_cb cb, void *arg, uint64_t *sent)
{
	fsrc s = {fd, 0, size, 0, size, cb, arg, 0};
	sdc_req r = {.method = "PUT", .read_cb = fsrc_read, .read_arg = &s, .upload_len = size};
	sdc__url_path(&r, &c->srv[srv], "fs", path);
	if (parents)
		sdc__buf_puts(&r.url, "?parents=1");
	sdc__req_header(&r, "X-Checksum-SHA256: %s", sha);
	sdc__req_header(&r, "Content-Type: application/octet-stream");
	int rc = sdc__http(c, &c->srv[srv], &r);
	if (rc == 0 && (r.status < 200 || r.status > 299))
		rc = sdc__http_err(&r);
	*sent = s.sent;
	sdc__req_free(&r);
	return rc;
}

static char *state_path(sdc_client *c, int srv, const char *path, const char *sha)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	sdc_srv *s = &c->srv[srv];
	const char *who = s->user ? s->user : "";
	EVP_DigestUpdate(md, s->base, strlen(s->base) + 1);
	EVP_DigestUpdate(md, who, strlen(who) + 1);
	EVP_DigestUpdate(md, path, strlen(path) + 1);
	EVP_DigestUpdate(md, sha, strlen(sha));
	unsigned char dg[32];
	unsigned dl = 0;
	EVP_DigestFinal_ex(md, dg, &dl);
	EVP_MD_CTX_free(md);
	char hx[65];
	hexify(dg, 16, hx);
	sdc_buf b = {0};
	sdc__buf_printf(&b, "%s/put-%s.json", c->state_dir, hx);
	return b.p;
}

static void mkdirs(const char *dir)
{
	char *d = sdc__xstrdup(dir);
	for (char *p = d + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			mkdir(d, 0700);
			*p = '/';
		}
	mkdir(d, 0700);
	free(d);
}

static void state_write(const char *file, const char *dir, const char *hid, const char *path,
			const char *sha, uint64_t size)
{
	mkdirs(dir);
	json_t *j = json_pack("{s:s, s:s, s:s, s:I}", "handle", hid, "path", path, "sha256", sha,
			      "size", (json_int_t)size);
	sdc_buf tmp = {0};
	sdc__buf_printf(&tmp, "%s.tmp", file);
	if (json_dump_file(j, tmp.p, JSON_COMPACT) == 0)
		rename(tmp.p, file);
	chmod(file, 0600);
	sdc__buf_free(&tmp);
	json_decref(j);
}

typedef struct membuf {
	char *buf;
	uint64_t off;
} membuf;

static void copy_into(void *arg, uint64_t off, const char *p, size_t n)
{
	membuf *d = arg;
	memcpy(d->buf + (off - d->off), p, n);
}

/* Bytes [off, off + n) of the handle equal the local file's? */
static int tail_matches(sdc_client *c, int srv, const char *hid, int fd, uint64_t off, size_t n)
{
	sdc_file tmp = {0};
	tmp.c = c;
	tmp.srv = srv;
	snprintf(tmp.hid, sizeof tmp.hid, "%s", hid);
	char *a = sdc__xcalloc(1, n), *b = sdc__xcalloc(1, n);
	membuf d = {a, off};
	sdc_range rg = {off, n};
	int ok = sdc__r_read(&tmp, &rg, 1, copy_into, &d) == 0 &&
		 pread(fd, b, n, (off_t)off) == (ssize_t)n && memcmp(a, b, n) == 0;
	free(a);
	free(b);
	return ok;
}

/* Resumable upload through a handle (see the top of the file). 1 when the
 * server has no handle API (use a plain PUT), 0 done, <0 error. */
static int put_handle(sdc_client *c, int srv, const char *path, int fd, uint64_t size,
		      const char *sha, unsigned flags, sdc_progress_cb cb, void *arg,
		      sdc_put_result *res)
{
	int resume = !(flags & SDC_PUT_NORESUME);
	char *sf = resume ? state_path(c, srv, path, sha) : NULL;
	sdc_file f = {0};
	f.c = c;
	f.srv = srv;
	uint64_t pos = 0;
	int rc;
	if (sf) {
		json_t *j = json_load_file(sf, 0, NULL);
		const char *hid = j ? json_string_value(json_object_get(j, "handle")) : NULL;
		const char *jp = j ? json_string_value(json_object_get(j, "path")) : NULL;
		const char *js = j ? json_string_value(json_object_get(j, "sha256")) : NULL;
		sdc_rinfo ri;
		if (hid && jp && js && strcmp(js, sha) == 0 && strcmp(jp, path) == 0 &&
		    strlen(hid) < sizeof f.hid && sdc__r_hstat(c, srv, hid, &ri) == 0 &&
		    ri.size <= size) {
			size_t tail = ri.size < VERIFY_TAIL ? (size_t)ri.size : VERIFY_TAIL;
			snprintf(f.hid, sizeof f.hid, "%s", hid);
			if (tail == 0 || tail_matches(c, srv, hid, fd, ri.size - tail, tail)) {
				pos = ri.size;
				res->resumed = pos > 0;
			} else {
				sdc__r_abandon(&f);
				f.hid[0] = '\0';
			}
		}
		json_decref(j);
	}
	if (!f.hid[0]) {
		if (flags & SDC_PUT_PARENTS) {
			char *dir = sdc__xstrdup(path);
			char *sl = strrchr(dir, '/');
			if (sl && sl != dir) {
				*sl = '\0';
				sdc_buf w = {0};
				sdc__buf_printf(&w, "%s:%s", c->srv[srv].name, dir);
				sdc_mkdir(c, w.p, 0, 1);
				sdc__buf_free(&w);
			}
			free(dir);
		}
		sdc_rinfo ri;
		rc = sdc__r_open(c, srv, path, O_RDWR | O_CREAT | O_TRUNC, SDC_SHARE_EXCLUSIVE, 0644,
				 &ri);
		if (rc == -EOPNOTSUPP || (rc == -ENOENT && strstr(sdc_errmsg(), "endpoint"))) {
			free(sf);
			return 1; /* no handle API on this server */
		}
		if (rc < 0) {
			free(sf);
			return rc;
		}
		snprintf(f.hid, sizeof f.hid, "%s", ri.hid);
		if (sf)
			state_write(sf, c->state_dir, f.hid, path, sha, size);
	}
	rc = 0;
	while (pos < size) {
		uint64_t end = pos + PUT_CHUNK < size ? pos + PUT_CHUNK : size;
		fsrc s = {fd, pos, end, pos, size, cb, arg, 0};
		sdc_req r = {.method = "PUT", .read_cb = fsrc_read, .read_arg = &s,
			     .upload_len = end - pos};
		sdc__buf_printf(&r.url, "%s/api/v1/handles/", c->srv[srv].base);
		sdc__buf_urlenc(&r.url, f.hid, 0);
		sdc__buf_printf(&r.url, "/data?offset=%llu", (unsigned long long)pos);
		sdc__req_header(&r, "Content-Type: application/octet-stream");
		rc = sdc__http(c, &c->srv[srv], &r);
		if (rc == 0 && (r.status < 200 || r.status > 299))
			rc = sdc__http_err(&r);
		res->sent += s.sent;
		sdc__req_free(&r);
		if (rc < 0)
			break;
		pos = end;
	}
	if (rc == 0) {
		sdc_rinfo ri;
		rc = sdc__r_sync(&f, 1, NULL, &ri);
		if (rc == 0 && strcmp(ri.sha, sha) != 0) {
			sdc__set_errmsg("the server stored content %s, expected %s", ri.sha, sha);
			rc = -EIO;
		}
		if (sf)
			unlink(sf);
	}
	free(sf);
	return rc;
}

int sdc_put_file(sdc_client *c, const char *local, const char *where, unsigned flags,
		 sdc_progress_cb cb, void *arg, sdc_put_result *out)
{
	sdc_put_result res = {0};
	int srv;
	const char *path;
	int rc = sdc__where(c, where, &srv, &path);
	if (rc < 0)
		return rc;
	int fd = open(local, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat sb;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		rc = S_ISDIR(sb.st_mode) ? -EISDIR : -EINVAL;
		close(fd);
		return rc;
	}
	res.size = (uint64_t)sb.st_size;
	double t0 = sdc__now();
	rc = sdc_sha256_fd(fd, res.sha256, NULL, NULL);
	double t1 = sdc__now();
	res.hash_seconds = t1 - t0;
	if (rc == 0) {
		rc = try_instant(c, srv, path, res.sha256, res.size, (flags & SDC_PUT_PARENTS) != 0,
				 local_ranges, &fd);
		if (rc == 1) {
			res.instant = 1;
			rc = 0;
		} else if (rc == 0) {
			rc = 1;
			if (res.size >= RESUME_MIN)
				rc = put_handle(c, srv, path, fd, res.size, res.sha256, flags, cb, arg,
						&res);
			if (rc == 1)
				rc = put_plain(c, srv, path, fd, res.size, res.sha256,
					       (flags & SDC_PUT_PARENTS) != 0, cb, arg, &res.sent);
		}
	}
	res.net_seconds = sdc__now() - t1;
	close(fd);
	if (out)
		*out = res;
	return rc;
}

/* ------------------------------------------------------------ download */

typedef struct fdst {
	int fd;
	uint64_t at, total;
	sdc_progress_cb cb;
	void *arg;
	EVP_MD_CTX *md;
	int reset; /* 200 instead of 206: start the file over */
	sdc_req *r;
} fdst;

static size_t fdst_write(const char *p, size_t n, void *arg)
{
	fdst *d = arg;
	if (d->r->status == 200 && !d->reset) {
		d->reset = 1;
		if (d->at != 0) {
			if (ftruncate(d->fd, 0) < 0)
				return 0;
			d->at = 0;
			EVP_DigestInit_ex(d->md, EVP_sha256(), NULL);
		}
	}
	size_t left = n;
	while (left > 0) {
		ssize_t k = pwrite(d->fd, p, left, (off_t)d->at);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			d->r->sink_err = -errno;
			return 0;
		}
		EVP_DigestUpdate(d->md, p, (size_t)k);
		d->at += (uint64_t)k;
		p += k;
		left -= (size_t)k;
	}
	if (d->cb)
		d->cb(d->arg, d->at, d->total);
	return n;
}

int sdc_get_file(sdc_client *c, const char *where, const char *local, sdc_progress_cb cb,
		 void *arg)
{
	int srv;
	const char *path;
	int rc = sdc__where(c, where, &srv, &path);
	if (rc < 0)
		return rc;
	sdc_attr st;
	if ((rc = sdc_stat(c, where, &st)) < 0)
		return rc;
	if (st.kind == SDC_KIND_DIR)
		return -EISDIR;
	sdc_buf part = {0};
	sdc__buf_printf(&part, "%s.stor-part", local);
	int fd = open(part.p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = -errno;
		sdc__buf_free(&part);
		return rc;
	}
	struct stat sb;
	fstat(fd, &sb);
	uint64_t have = (uint64_t)sb.st_size;
	if (have > st.size) {
		if (ftruncate(fd, 0) < 0) {
			rc = -errno;
			goto out;
		}
		have = 0;
	}
	for (int attempt = 0; attempt < 2; attempt++) {
		fdst d = {fd, 0, st.size, cb, arg, EVP_MD_CTX_new(), 0, NULL};
		EVP_DigestInit_ex(d.md, EVP_sha256(), NULL);
		/* what is there already goes into the hash */
		if (have > 0) {
			rc = local_ranges(&fd, 0, have, d.md);
			if (rc < 0) {
				EVP_MD_CTX_free(d.md);
				goto out;
			}
			d.at = have;
		}
		sdc_req r = {.method = "GET", .sink = fdst_write, .sink_arg = &d};
		d.r = &r;
		sdc__url_path(&r, &c->srv[srv], "fs", path);
		if (have > 0) {
			sdc__req_header(&r, "Range: bytes=%llu-", (unsigned long long)have);
			sdc__req_header(&r, "If-Range: \"%s\"", st.sha256);
		}
		if (have < st.size || have == 0)
			rc = sdc__http(c, &c->srv[srv], &r);
		else
			r.status = 206;
		if (rc == 0 && r.status != 200 && r.status != 206)
			rc = sdc__http_err(&r);
		sdc__req_free(&r);
		unsigned char dg[32];
		unsigned dl = 0;
		char hx[65];
		EVP_DigestFinal_ex(d.md, dg, &dl);
		EVP_MD_CTX_free(d.md);
		hexify(dg, 32, hx);
		if (rc < 0)
			goto out;
		if (d.at == st.size && strcmp(hx, st.sha256) == 0) {
			rc = 0;
			break;
		}
		/* the file changed between stat and GET, or the part was from an
		 * older version: once more, from the start */
		if (attempt == 0 && (rc = sdc_stat(c, where, &st)) == 0) {
			if (ftruncate(fd, 0) < 0) {
				rc = -errno;
				goto out;
			}
			have = 0;
			continue;
		}
		sdc__set_errmsg("downloaded content does not match the server's SHA-256");
		rc = rc < 0 ? rc : -EIO;
	}
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (rc == 0 && rename(part.p, local) < 0)
		rc = -errno;
out:
	close(fd);
	sdc__buf_free(&part);
	return rc;
}

/* ------------------------------------------------------------ cat */

typedef struct catd {
	int (*cb)(void *arg, const void *p, size_t n);
	void *arg;
	sdc_req *r;
} catd;

static size_t cat_sink(const char *p, size_t n, void *arg)
{
	catd *d = arg;
	if (d->cb(d->arg, p, n) != 0) {
		d->r->sink_err = -EPIPE;
		return 0;
	}
	return n;
}

int sdc_cat(sdc_client *c, const char *where, int (*cb)(void *arg, const void *p, size_t n),
	    void *arg)
{
	int srv;
	const char *path;
	int rc = sdc__where(c, where, &srv, &path);
	if (rc < 0)
		return rc;
	sdc_attr st;
	if ((rc = sdc_stat(c, where, &st)) < 0)
		return rc;
	if (st.kind == SDC_KIND_DIR)
		return -EISDIR;
	sdc_req r = {.method = "GET"};
	catd d = {cb, arg, &r};
	r.sink = cat_sink;
	r.sink_arg = &d;
	sdc__url_path(&r, &c->srv[srv], "fs", path);
	rc = sdc__http(c, &c->srv[srv], &r);
	if (rc == 0 && r.status != 200)
		rc = sdc__http_err(&r);
	sdc__req_free(&r);
	return rc;
}

/* ------------------------------------------------------------ copy */

typedef struct remsrc {
	sdc_client *c;
	int srv;
	const char *path;
} remsrc;

static int remote_ranges(void *arg, uint64_t off, uint64_t n, EVP_MD_CTX *md)
{
	remsrc *s = arg;
	if (n == 0)
		return 0;
	char *buf = sdc__xmalloc((size_t)n);
	sdc_req r = {.method = "GET"};
	sdc__url_path(&r, &s->c->srv[s->srv], "fs", s->path);
	sdc__req_header(&r, "Range: bytes=%llu-%llu", (unsigned long long)off,
			(unsigned long long)(off + n - 1));
	int rc = sdc__http(s->c, &s->c->srv[s->srv], &r);
	if (rc == 0 && r.status != 206)
		rc = r.status >= 400 ? sdc__http_err(&r) : -SDC_EPROTO;
	if (rc == 0 && r.resp.len != n)
		rc = -SDC_EPROTO;
	if (rc == 0)
		EVP_DigestUpdate(md, r.resp.p, n);
	sdc__req_free(&r);
	free(buf);
	return rc;
}

/* The bytes from one server to the other through a bounded ring, both
 * transfers driven by one curl multi handle (pause/unpause). */
#define RING (8u << 20)

typedef struct xpipe {
	char *ring;
	size_t head, len; /* read position, bytes held */
	int get_done, get_paused, put_paused;
	uint64_t moved, total;
	sdc_progress_cb cb;
	void *arg;
	sdc_req *gr;
} xpipe;

static size_t pipe_in(const char *p, size_t n, void *arg)
{
	xpipe *q = arg;
	if (RING - q->len < n) {
		q->get_paused = 1;
		return CURL_WRITEFUNC_PAUSE;
	}
	size_t tail = (q->head + q->len) % RING;
	size_t k = RING - tail < n ? RING - tail : n;
	memcpy(q->ring + tail, p, k);
	memcpy(q->ring, p + k, n - k);
	q->len += n;
	return n;
}

static size_t pipe_out(char *p, size_t sz, size_t nm, void *arg)
{
	xpipe *q = arg;
	size_t want = sz * nm;
	if (q->len == 0) {
		if (q->get_done)
			return 0;
		q->put_paused = 1;
		return CURL_READFUNC_PAUSE;
	}
	if (want > q->len)
		want = q->len;
	size_t k = RING - q->head < want ? RING - q->head : want;
	memcpy(p, q->ring + q->head, k);
	memcpy(p + k, q->ring, want - k);
	q->head = (q->head + want) % RING;
	q->len -= want;
	q->moved += want;
	if (q->cb)
		q->cb(q->arg, q->moved, q->total);
	return want;
}

static int stream_copy(sdc_client *c, int s1, const char *p1, int s2, const char *p2,
		       const sdc_attr *st, sdc_progress_cb cb, void *arg)
{
	xpipe q = {0};
	q.ring = sdc__xmalloc(RING);
	q.total = st->size;
	q.cb = cb;
	q.arg = arg;
	sdc_req gr = {.method = "GET", .sink = pipe_in, .sink_arg = &q};
	q.gr = &gr;
	sdc__url_path(&gr, &c->srv[s1], "fs", p1);
	sdc__req_header(&gr, "If-Match: \"%s\"", st->sha256);
	sdc_req pr = {.method = "PUT", .read_cb = pipe_out, .read_arg = &q, .upload_len = st->size};
	sdc__url_path(&pr, &c->srv[s2], "fs", p2);
	sdc__req_header(&pr, "X-Checksum-SHA256: %s", st->sha256);
	sdc__req_header(&pr, "Content-Type: application/octet-stream");
	CURL *gh = sdc__easy_get(&c->srv[s1]), *ph = sdc__easy_get(&c->srv[s2]);
	CURLM *m = curl_multi_init();
	int rc = 0;
	if (!gh || !ph || !m) {
		rc = -ENOMEM;
		goto out;
	}
	sdc__easy_setup(c, &c->srv[s1], gh, &gr);
	sdc__easy_setup(c, &c->srv[s2], ph, &pr);
	curl_multi_add_handle(m, gh);
	curl_multi_add_handle(m, ph);
	CURLcode grc = CURLE_OK, prc = CURLE_OK;
	int gdone = 0, pdone = 0, running = 1;
	while (!pdone) {
		curl_multi_perform(m, &running);
		CURLMsg *msg;
		int left;
		while ((msg = curl_multi_info_read(m, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			if (msg->easy_handle == gh) {
				gdone = 1;
				grc = msg->data.result;
				q.get_done = 1;
				if (grc != CURLE_OK || gr.status != 200) {
					/* no more bytes will come: stop the upload */
					pdone = 1;
					prc = CURLE_ABORTED_BY_CALLBACK;
				}
			} else if (msg->easy_handle == ph) {
				pdone = 1;
				prc = msg->data.result;
			}
		}
		if (q.get_paused && RING - q.len >= (1u << 20) && !gdone) {
			q.get_paused = 0;
			curl_easy_pause(gh, CURLPAUSE_CONT);
		}
		if (q.put_paused && (q.len > 0 || q.get_done)) {
			q.put_paused = 0;
			curl_easy_pause(ph, CURLPAUSE_CONT);
		}
		if (!pdone)
			curl_multi_poll(m, NULL, 0, 100, NULL);
	}
	curl_multi_remove_handle(m, gh);
	curl_multi_remove_handle(m, ph);
	int g = sdc__easy_done(c, &c->srv[s1], gh, &gr, gdone ? grc : CURLE_ABORTED_BY_CALLBACK);
	int p = sdc__easy_done(c, &c->srv[s2], ph, &pr, prc);
	gh = ph = NULL;
	if (gdone && g == 0 && gr.status != 200)
		rc = gr.status == 412 ? -EAGAIN : sdc__http_err(&gr);
	else if (gdone && g < 0)
		rc = g;
	else if (p < 0)
		rc = p;
	else if (pr.status < 200 || pr.status > 299)
		rc = sdc__http_err(&pr);
out:
	if (gh)
		curl_easy_cleanup(gh);
	if (ph)
		curl_easy_cleanup(ph);
	if (m)
		curl_multi_cleanup(m);
	free(q.ring);
	sdc__req_free(&gr);
	sdc__req_free(&pr);
	return rc;
}

int sdc_copy(sdc_client *c, const char *from, const char *to, sdc_progress_cb cb, void *arg,
	     int *instant)
{
	int s1, s2;
	const char *p1, *p2;
	int rc = sdc__where(c, from, &s1, &p1);
	if (rc < 0 || (rc = sdc__where(c, to, &s2, &p2)) < 0)
		return rc;
	if (instant)
		*instant = 0;
	if (s1 == s2 && strcmp(c->srv[s1].base, c->srv[s2].base) == 0) {
		sdc_req r = {.method = "POST"};
		sdc__url_path(&r, &c->srv[s1], "fs", p1);
		sdc__buf_puts(&r.url, "?op=copy&to=");
		sdc__buf_urlenc(&r.url, p2, 0);
		rc = sdc__http(c, &c->srv[s1], &r);
		if (rc == 0 && (r.status < 200 || r.status > 299))
			rc = sdc__http_err(&r);
		sdc__req_free(&r);
		if (rc == 0 && instant)
			*instant = 1;
		return rc;
	}
	sdc_attr st;
	if ((rc = sdc_stat(c, from, &st)) < 0)
		return rc;
	if (st.kind == SDC_KIND_DIR)
		return -EISDIR;
	remsrc src = {c, s1, p1};
	rc = try_instant(c, s2, p2, st.sha256, st.size, 0, remote_ranges, &src);
	if (rc == 1) {
		if (instant)
			*instant = 1;
		return 0;
	}
	if (rc < 0)
		return rc;
	return stream_copy(c, s1, p1, s2, p2, &st, cb, arg);
}
