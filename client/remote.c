/*
 * remote.c - the HTTP handle API (docs/handle-api.md) as the cache uses it:
 *
 *   POST   /api/v1/open                       sdc__r_open
 *   GET    /api/v1/handles/{id}/data + Range  sdc__r_read (one or many ranges)
 *   PUT    /api/v1/handles/{id}/data?offset=  sdc__r_write (one run)
 *   PUT    ... multipart/byteranges           sdc__r_write (several runs)
 *   POST   /api/v1/handles/{id}/truncate      sdc__r_truncate
 *   POST   /api/v1/handles/{id}/sync|close    sdc__r_sync
 *   DELETE /api/v1/handles/{id}               sdc__r_abandon
 *   GET    /api/v1/handles/{id}               sdc__r_hstat
 *
 * A 404 on a handle (code handle_gone; not_found from servers before it)
 * means the server no longer has it (restart, idle timeout): those calls
 * answer -ESTALE and file.c decides what that costs. Every call on a handle
 * resets its idle clock on the server; sdc_keepalive() relies on that.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "internal.h"

static void info_from_json(json_t *j, sdc_rinfo *out)
{
	const char *sha = json_string_value(json_object_get(j, "sha256"));
	snprintf(out->sha, sizeof out->sha, "%s", sha ? sha : "");
	out->size = (uint64_t)json_integer_value(json_object_get(j, "size"));
	const char *mode = json_string_value(json_object_get(j, "mode"));
	out->mode = mode ? (uint32_t)strtoul(mode, NULL, 8) : 0;
	out->mtime = json_integer_value(json_object_get(j, "mtime"));
	out->dirty = json_is_true(json_object_get(j, "dirty"));
	out->idle_s = (int)json_integer_value(json_object_get(j, "idle_timeout"));
}

/* Status to error for calls on a handle: 404 is "handle gone". */
static int handle_err(sdc_req *r)
{
	int rc = sdc__http_err(r);
	if (r->status == 404)
		return -ESTALE;
	return rc;
}

static void handle_url(sdc_req *r, sdc_srv *s, const char *hid, const char *tail)
{
	sdc__buf_printf(&r->url, "%s/api/v1/handles/", s->base);
	sdc__buf_urlenc(&r->url, hid, 0);
	sdc__buf_puts(&r->url, tail);
}

/* A JSON body request on a handle; the answer's stat in *out (may be NULL). */
static int handle_call(sdc_client *c, int srv, const char *hid, const char *method,
		       const char *tail, json_t *body, const char *if_match, sdc_rinfo *out)
{
	sdc_req r = {.method = method};
	handle_url(&r, &c->srv[srv], hid, tail);
	if (if_match)
		sdc__req_header(&r, "If-Match: \"%s\"", if_match);
	char *txt = NULL;
	if (body) {
		txt = json_dumps(body, JSON_COMPACT);
		r.body = txt;
		r.body_len = strlen(txt);
		r.has_body = 1;
		sdc__req_header(&r, "Content-Type: application/json");
	}
	int rc = sdc__http(c, &c->srv[srv], &r);
	if (rc == 0 && if_match && r.status == 412) {
		sdc__http_err(&r); /* the server's words */
		rc = -SDC_ECONFLICT;
	}
	if (rc == 0 && (r.status < 200 || r.status > 299))
		rc = handle_err(&r);
	if (rc == 0 && out) {
		json_t *j = sdc__json(&r);
		if (j) {
			info_from_json(j, out);
			json_decref(j);
		} else if (r.status != 204) {
			rc = -SDC_EPROTO;
		}
	}
	free(txt);
	sdc__req_free(&r);
	return rc;
}

int sdc__r_open(sdc_client *c, int srv, const char *path, int flags, unsigned share,
		uint32_t mode, sdc_rinfo *out)
{
	json_t *fl = json_array();
	json_array_append_new(fl, json_string("read"));
	if ((flags & O_ACCMODE) != O_RDONLY)
		json_array_append_new(fl, json_string("write"));
	if (flags & O_CREAT)
		json_array_append_new(fl, json_string("create"));
	if (flags & O_TRUNC)
		json_array_append_new(fl, json_string("truncate"));
	if (flags & O_EXCL)
		json_array_append_new(fl, json_string("excl"));
	const char *sh = share == SDC_SHARE_EXCLUSIVE ? "exclusive"
			 : share == SDC_SHARE_READ    ? "shared-read"
						      : "shared-write";
	char perm[16];
	snprintf(perm, sizeof perm, "%04o", mode & 07777);
	json_t *body = json_pack("{s:s, s:o, s:s, s:s}", "path", path, "flags", fl, "share", sh,
				 "perm", perm);
	char *txt = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	sdc_req r = {.method = "POST", .body = txt, .body_len = strlen(txt), .has_body = 1};
	sdc__buf_printf(&r.url, "%s/api/v1/open", c->srv[srv].base);
	sdc__req_header(&r, "Content-Type: application/json");
	int rc = sdc__http(c, &c->srv[srv], &r);
	if (rc == 0 && (r.status < 200 || r.status > 299))
		rc = sdc__http_err(&r);
	if (rc == 0) {
		json_t *j = sdc__json(&r);
		const char *hid = j ? json_string_value(json_object_get(j, "handle")) : NULL;
		if (!hid || strlen(hid) >= sizeof out->hid) {
			sdc__set_errmsg("open: no handle in the answer");
			rc = -SDC_EPROTO;
		} else {
			memset(out, 0, sizeof *out);
			snprintf(out->hid, sizeof out->hid, "%s", hid);
			info_from_json(j, out);
		}
		json_decref(j);
	}
	free(txt);
	sdc__req_free(&r);
	return rc;
}

/* ------------------------------------------------------------ read */

typedef struct rd {
	const sdc_range *rv;
	int n;
	void (*put)(void *arg, uint64_t off, const char *p, size_t n);
	void *arg;
	int mode;      /* 0 unknown, 1 stream at pos, 2 multipart (buffered) */
	uint64_t pos;
	sdc_buf mp;
	sdc_req *r;
	uint64_t want; /* total bytes asked */
} rd;

/* Hand [off, off + n) to put, clipped to the ranges asked for. */
static void deliver(rd *d, uint64_t off, const char *p, size_t n)
{
	for (int i = 0; i < d->n; i++) {
		uint64_t a = d->rv[i].off, b = a + d->rv[i].len;
		uint64_t lo = off > a ? off : a, hi = off + n < b ? off + n : b;
		if (lo < hi)
			d->put(d->arg, lo, p + (lo - off), (size_t)(hi - lo));
	}
}

static int parse_crange(const char *s, uint64_t *a, uint64_t *b)
{
	unsigned long long x, y;
	if (strncasecmp(s, "bytes ", 6) != 0 || sscanf(s + 6, "%llu-%llu", &x, &y) != 2 || y < x)
		return -1;
	*a = x;
	*b = y;
	return 0;
}

static size_t rd_sink(const char *p, size_t n, void *arg)
{
	rd *d = arg;
	sdc_req *r = d->r;
	if (d->mode == 0) {
		if (r->status == 206 && strncasecmp(r->ctype, "multipart/byteranges", 20) == 0) {
			d->mode = 2;
		} else if (r->status == 206) {
			uint64_t a, b;
			if (parse_crange(r->crange, &a, &b) < 0) {
				r->sink_err = -SDC_EPROTO;
				return 0;
			}
			d->mode = 1;
			d->pos = a;
		} else {
			d->mode = 1; /* 200: the whole file */
			d->pos = 0;
		}
	}
	if (d->mode == 1) {
		deliver(d, d->pos, p, n);
		d->pos += n;
	} else {
		if (d->mp.len + n > d->want * 2 + (1u << 20)) {
			r->sink_err = -SDC_EPROTO;
			return 0;
		}
		sdc__buf_add(&d->mp, p, n);
	}
	return n;
}

static const char *memfind(const char *h, size_t hl, const char *nd, size_t nl)
{
	if (nl == 0 || hl < nl)
		return NULL;
	for (const char *p = h; p + nl <= h + hl; p++) {
		p = memchr(p, nd[0], (size_t)(h + hl - p));
		if (!p || p + nl > h + hl)
			return NULL;
		if (memcmp(p, nd, nl) == 0)
			return p;
	}
	return NULL;
}

/* Parse a multipart/byteranges body into deliver() calls. */
static int parse_multipart(rd *d)
{
	const char *bp = strcasestr(d->r->ctype, "boundary=");
	if (!bp)
		return -SDC_EPROTO;
	char bnd[128];
	bp += 9;
	size_t bl = strcspn(bp, ";");
	if (bl && bp[0] == '"') {
		bp++;
		bl = strcspn(bp, "\"");
	}
	if (bl == 0 || bl + 3 > sizeof bnd)
		return -SDC_EPROTO;
	bnd[0] = '-';
	bnd[1] = '-';
	memcpy(bnd + 2, bp, bl);
	bl += 2;
	const char *s = d->mp.p, *end = d->mp.p + d->mp.len;
	const char *q = memfind(s, d->mp.len, bnd, bl);
	while (q) {
		q += bl;
		if (q + 2 <= end && q[0] == '-' && q[1] == '-')
			return 0; /* closing delimiter */
		/* headers up to an empty line */
		const char *he = memfind(q, (size_t)(end - q), "\r\n\r\n", 4);
		if (!he)
			return -SDC_EPROTO;
		uint64_t a = 0, b = 0;
		int have = 0;
		for (const char *l = q; l < he;) {
			const char *le = memfind(l, (size_t)(he + 2 - l), "\r\n", 2);
			if (!le)
				break;
			if ((size_t)(le - l) > 14 && strncasecmp(l, "Content-Range:", 14) == 0) {
				char tmp[96];
				const char *v = l + 14;
				while (*v == ' ')
					v++;
				size_t vl = (size_t)(le - v) < sizeof tmp - 1 ? (size_t)(le - v) : sizeof tmp - 1;
				memcpy(tmp, v, vl);
				tmp[vl] = '\0';
				have = parse_crange(tmp, &a, &b) == 0;
			}
			l = le + 2;
		}
		if (!have)
			return -SDC_EPROTO;
		const char *data = he + 4;
		uint64_t len = b - a + 1;
		if ((uint64_t)(end - data) < len)
			return -SDC_EPROTO;
		deliver(d, a, data, (size_t)len);
		q = memfind(data + len, (size_t)(end - data - len), bnd, bl);
	}
	return -SDC_EPROTO;
}

int sdc__r_read(sdc_file *f, const sdc_range *rv, int n,
		void (*put)(void *arg, uint64_t off, const char *p, size_t n), void *arg)
{
	sdc_client *c = f->c;
	if (n <= 0)
		return 0;
	sdc_req r = {.method = "GET"};
	f->last_use = sdc__now();
	handle_url(&r, &c->srv[f->srv], f->hid, "/data");
	sdc_buf h = {0};
	sdc__buf_puts(&h, "Range: bytes=");
	rd d = {.rv = rv, .n = n, .put = put, .arg = arg, .r = &r};
	for (int i = 0; i < n; i++) {
		sdc__buf_printf(&h, "%s%llu-%llu", i ? "," : "", (unsigned long long)rv[i].off,
				(unsigned long long)(rv[i].off + rv[i].len - 1));
		d.want += rv[i].len;
	}
	r.hdrs = curl_slist_append(r.hdrs, h.p);
	sdc__buf_free(&h);
	r.sink = rd_sink;
	r.sink_arg = &d;
	int rc = sdc__http(c, &c->srv[f->srv], &r);
	if (rc == 0 && r.status != 200 && r.status != 206)
		rc = handle_err(&r);
	if (rc == 0 && d.mode == 2)
		rc = parse_multipart(&d);
	if (rc == 0 && d.mode == 1 && r.status == 206 && d.pos == 0)
		rc = -SDC_EPROTO;
	sdc__buf_free(&d.mp);
	sdc__req_free(&r);
	return rc;
}

/* ------------------------------------------------------------ write */

/* The body as a list of segments read in order. */
typedef struct seg {
	const char *p;
	size_t len;
} seg;

typedef struct wr {
	seg *sv;
	int n, i;
	size_t at;
} wr;

static size_t wr_read(char *out, size_t sz, size_t nm, void *arg)
{
	wr *w = arg;
	size_t want = sz * nm, done = 0;
	while (done < want && w->i < w->n) {
		seg *s = &w->sv[w->i];
		size_t k = s->len - w->at;
		if (k > want - done)
			k = want - done;
		memcpy(out + done, s->p + w->at, k);
		done += k;
		w->at += k;
		if (w->at == s->len) {
			w->i++;
			w->at = 0;
		}
	}
	return done;
}

int sdc__r_write(sdc_file *f, const sdc_piece *pv, int n)
{
	sdc_client *c = f->c;
	if (n <= 0)
		return 0;
	/* runs of consecutive pieces */
	int runs = 1;
	for (int i = 1; i < n; i++)
		if (pv[i].off != pv[i - 1].off + pv[i - 1].len)
			runs++;
	sdc_req r = {.method = "PUT"};
	f->last_use = sdc__now();
	handle_url(&r, &c->srv[f->srv], f->hid, "/data");
	seg *sv = sdc__xcalloc((size_t)n + (size_t)runs * 2 + 2, sizeof *sv);
	int ns = 0;
	uint64_t total = 0;
	sdc_buf hb = {0}; /* part headers, referenced by offset until built */
	size_t *hoff = NULL;
	if (runs == 1) {
		sdc__buf_printf(&r.url, "?offset=%llu", (unsigned long long)pv[0].off);
		sdc__req_header(&r, "Content-Type: application/octet-stream");
		for (int i = 0; i < n; i++) {
			sv[ns++] = (seg){pv[i].p, pv[i].len};
			total += pv[i].len;
		}
	} else {
		unsigned char rnd[12];
		if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
			memset(rnd, 0x5a, sizeof rnd);
		char bnd[40];
		int k = snprintf(bnd, sizeof bnd, "sdc");
		for (size_t i = 0; i < sizeof rnd; i++)
			k += snprintf(bnd + k, sizeof bnd - (size_t)k, "%02x", rnd[i]);
		sdc__req_header(&r, "Content-Type: multipart/byteranges; boundary=%s", bnd);
		hoff = sdc__xcalloc((size_t)runs + 1, sizeof *hoff);
		int hr = 0;
		int i = 0;
		/* segment slots: header text (resolved later, p = NULL) or data */
		while (i < n) {
			int j = i;
			uint64_t len = pv[i].len;
			while (j + 1 < n && pv[j + 1].off == pv[j].off + pv[j].len) {
				j++;
				len += pv[j].len;
			}
			size_t before = hb.len;
			sdc__buf_printf(&hb, "%s--%s\r\nContent-Type: application/octet-stream\r\n"
					     "Content-Range: bytes %llu-%llu/*\r\n\r\n",
					hr ? "\r\n" : "", bnd, (unsigned long long)pv[i].off,
					(unsigned long long)(pv[i].off + len - 1));
			hoff[hr++] = before;
			sv[ns++] = (seg){NULL, hb.len - before};
			for (int k2 = i; k2 <= j; k2++)
				sv[ns++] = (seg){pv[k2].p, pv[k2].len};
			i = j + 1;
		}
		size_t before = hb.len;
		sdc__buf_printf(&hb, "\r\n--%s--\r\n", bnd);
		hoff[hr++] = before;
		sv[ns++] = (seg){NULL, hb.len - before};
		/* resolve header pointers now that hb no longer moves */
		int h = 0;
		for (int s = 0; s < ns; s++) {
			if (!sv[s].p)
				sv[s].p = hb.p + hoff[h++];
			total += sv[s].len;
		}
	}
	wr w = {sv, ns, 0, 0};
	r.read_cb = wr_read;
	r.read_arg = &w;
	r.upload_len = total;
	int rc = sdc__http(c, &c->srv[f->srv], &r);
	if (rc == 0 && (r.status < 200 || r.status > 299))
		rc = handle_err(&r);
	if (rc == 0) {
		json_t *j = sdc__json(&r);
		json_t *sz = j ? json_object_get(j, "size") : NULL;
		if (json_is_integer(sz))
			f->rsize = (uint64_t)json_integer_value(sz);
		else {
			uint64_t end = pv[n - 1].off + pv[n - 1].len;
			if (end > f->rsize)
				f->rsize = end;
		}
		json_decref(j);
	}
	free(sv);
	free(hoff);
	sdc__buf_free(&hb);
	sdc__req_free(&r);
	return rc;
}

int sdc__r_truncate(sdc_file *f, uint64_t size)
{
	json_t *b = json_pack("{s:I}", "size", (json_int_t)size);
	f->last_use = sdc__now();
	int rc = handle_call(f->c, f->srv, f->hid, "POST", "/truncate", b, NULL, NULL);
	json_decref(b);
	if (rc == 0)
		f->rsize = size;
	return rc;
}

int sdc__r_sync(sdc_file *f, int close, const char *if_match, sdc_rinfo *out)
{
	json_t *b = json_object();
	f->last_use = sdc__now();
	int rc = handle_call(f->c, f->srv, f->hid, "POST", close ? "/close" : "/sync", b, if_match,
			     out);
	json_decref(b);
	return rc;
}

int sdc__r_attrs(sdc_file *f, int has_mode, uint32_t mode, int has_mtime, int64_t mtime)
{
	json_t *b = json_object();
	if (has_mode) {
		char m[16];
		snprintf(m, sizeof m, "%04o", mode & 07777);
		json_object_set_new(b, "mode", json_string(m));
	}
	if (has_mtime)
		json_object_set_new(b, "mtime", json_integer((json_int_t)mtime));
	f->last_use = sdc__now();
	int rc = handle_call(f->c, f->srv, f->hid, "POST", "/attrs", b, NULL, NULL);
	json_decref(b);
	return rc;
}

int sdc__r_abandon(sdc_file *f)
{
	return handle_call(f->c, f->srv, f->hid, "DELETE", "", NULL, NULL, NULL);
}

int sdc__r_hstat(sdc_client *c, int srv, const char *hid, sdc_rinfo *out)
{
	return handle_call(c, srv, hid, "GET", "", NULL, NULL, out);
}
