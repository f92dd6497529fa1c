/*
 * wire.c - HTTP text formats of the front end: percent decoding, path
 * checks, HTTP dates, ETag lists, Range parsing, multipart/byteranges
 * bodies, MIME types, base64. A leaf: none of it touches the engine or a
 * request.
 *
 * Invariants:
 *  1. Decoded output goes into an sd_buf and is bounded by the caller's
 *     maximum; a result that does not fit is an error, never a truncation.
 *  2. Range parsing never yields a range outside [0, size), and never
 *     ranges that overlap or touch: they are sorted and coalesced, so a
 *     download never sends more than the file (the "Apache Killer" of 2011
 *     asked for the whole file many times over).
 *  3. A multipart boundary comes from sd_random_bytes or not at all.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http.h"

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int sd__http_pct_decode(const char *in, size_t max, sd_buf *out)
{
	size_t o = 0;
	sd_buf_reserve(out, strlen(in) < max ? strlen(in) : max);
	for (const char *p = in; *p; p++) {
		int ch = (unsigned char)*p;
		if (ch == '%') {
			int h = hexval((unsigned char)p[1]);
			int l = h < 0 ? -1 : hexval((unsigned char)p[2]);
			if (h < 0 || l < 0)
				return -EINVAL;
			ch = h * 16 + l;
			p += 2;
		}
		if (ch == 0 || ch == '\\')
			return -EINVAL;
		if (o++ >= max)
			return -ENAMETOOLONG;
		char b = (char)ch;
		sd_buf_append(out, &b, 1);
	}
	return 0;
}

int sd__http_double_encoded(const char *s)
{
	for (; *s; s++) {
		if (s[0] != '%' || hexval((unsigned char)s[1]) < 0 || hexval((unsigned char)s[2]) < 0)
			continue;
		int v = hexval((unsigned char)s[1]) * 16 + hexval((unsigned char)s[2]);
		if (v == '.' || v == '/' || v == '\\' || v == 0 || v == '%')
			return 1;
	}
	return 0;
}

static const char *const wday[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
				  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void sd__http_date(int64_t t, char *out, size_t outlen)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&tt, &tm)) {
		snprintf(out, outlen, "Thu, 01 Jan 1970 00:00:00 GMT");
		return;
	}
	snprintf(out, outlen, "%s, %02d %s %04d %02d:%02d:%02d GMT", wday[tm.tm_wday % 7],
		 tm.tm_mday, mon[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
		 tm.tm_sec);
}

/* Accepts IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), RFC 850
 * ("Sunday, 06-Nov-94 08:49:37 GMT") and asctime ("Sun Nov  6 08:49:37 1994"). */
int64_t sd__http_parse_date(const char *s)
{
	char mname[4] = "";
	int d = 0, y = 0, hh = 0, mm = 0, ss = 0;
	const char *p = strchr(s, ' ');
	if (!p)
		return -1;
	if (sscanf(p, " %2d %3s %4d %2d:%2d:%2d GMT", &d, mname, &y, &hh, &mm, &ss) == 6 ||
	    sscanf(p, " %2d-%3s-%4d %2d:%2d:%2d GMT", &d, mname, &y, &hh, &mm, &ss) == 6 ||
	    sscanf(p, " %3s %2d %2d:%2d:%2d %4d", mname, &d, &hh, &mm, &ss, &y) == 6) {
		if (y < 100)
			y += y < 70 ? 2000 : 1900;
	} else {
		return -1;
	}
	int m = -1;
	for (int i = 0; i < 12; i++)
		if (strcasecmp(mname, mon[i]) == 0)
			m = i;
	if (m < 0 || d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60 || y < 1970)
		return -1;
	struct tm tm = {0};
	tm.tm_year = y - 1900;
	tm.tm_mon = m;
	tm.tm_mday = d;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	return (int64_t)timegm(&tm);
}

/* n decimal digits at *p into *v; advances *p. 0 or -1. */
static int digits(const char **p, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++, (*p)++) {
		if (**p < '0' || **p > '9')
			return -1;
		*v = *v * 10 + (**p - '0');
	}
	return 0;
}

int64_t sd__http_parse_rfc3339(const char *s)
{
	int y, mo, d, hh, mm, ss, oh = 0, om = 0, sign = 0;
	const char *p = s;
	if (digits(&p, 4, &y) < 0 || *p++ != '-' || digits(&p, 2, &mo) < 0 || *p++ != '-' ||
	    digits(&p, 2, &d) < 0)
		return -1;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return -1;
	p++;
	if (digits(&p, 2, &hh) < 0 || *p++ != ':' || digits(&p, 2, &mm) < 0 || *p++ != ':' ||
	    digits(&p, 2, &ss) < 0)
		return -1;
	if (*p == '.') { /* fraction of a second: dropped */
		p++;
		if (*p < '0' || *p > '9')
			return -1;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p++ == '-' ? -1 : 1;
		if (digits(&p, 2, &oh) < 0 || *p++ != ':' || digits(&p, 2, &om) < 0 || oh > 23 ||
		    om > 59)
			return -1;
	} else {
		return -1;
	}
	if (*p || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60)
		return -1;
	struct tm tm = {0};
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	int64_t t = (int64_t)timegm(&tm);
	if (tm.tm_mday != d) /* 2026-02-31 normalised to March: refuse */
		return -1;
	return t - sign * (oh * 3600 + om * 60);
}

static const struct {
	const char *ext, *type;
} mimes[] = {
    {"txt", "text/plain; charset=utf-8"}, {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},  {"css", "text/css"},
    {"js", "text/javascript"},            {"json", "application/json"},
    {"xml", "application/xml"},           {"csv", "text/csv"},
    {"md", "text/markdown; charset=utf-8"},
    {"jpg", "image/jpeg"},                {"jpeg", "image/jpeg"},
    {"png", "image/png"},                 {"gif", "image/gif"},
    {"webp", "image/webp"},               {"svg", "image/svg+xml"},
    {"ico", "image/vnd.microsoft.icon"},  {"bmp", "image/bmp"},
    {"pdf", "application/pdf"},           {"zip", "application/zip"},
    {"gz", "application/gzip"},           {"tgz", "application/gzip"},
    {"tar", "application/x-tar"},         {"xz", "application/x-xz"},
    {"zst", "application/zstd"},          {"mp3", "audio/mpeg"},
    {"ogg", "audio/ogg"},                 {"wav", "audio/wav"},
    {"mp4", "video/mp4"},                 {"webm", "video/webm"},
    {"mkv", "video/x-matroska"},          {"wasm", "application/wasm"},
    {"woff", "font/woff"},                {"woff2", "font/woff2"},
};

const char *sd__http_mime(const char *name)
{
	const char *slash = strrchr(name, '/');
	const char *base = slash ? slash + 1 : name;
	const char *dot = strrchr(base, '.');
	if (dot && dot != base)
		for (size_t i = 0; i < sizeof mimes / sizeof mimes[0]; i++)
			if (strcasecmp(dot + 1, mimes[i].ext) == 0)
				return mimes[i].type;
	return "application/octet-stream";
}

static int b64val(int ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+' || ch == '-')
		return 62;
	if (ch == '/' || ch == '_')
		return 63;
	return -1;
}

int sd__http_b64decode(const char *in, sd_buf *out)
{
	unsigned acc = 0;
	int bits = 0;
	sd_buf_reserve(out, strlen(in) / 4 * 3 + 3);
	for (const char *p = in; *p && *p != '='; p++) {
		int v = b64val((unsigned char)*p);
		if (v < 0)
			return -EINVAL;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			char b = (char)((acc >> bits) & 0xff);
			sd_buf_append(out, &b, 1);
		}
	}
	return 0;
}

int sd__http_etag_match(const char *list, const char *sha)
{
	const char *p = list;
	while (*p) {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		if (*p == '*')
			return 1;
		if (p[0] == 'W' && p[1] == '/')
			p += 2;
		if (*p == '"') {
			const char *e = strchr(p + 1, '"');
			if (!e)
				return 0;
			size_t n = (size_t)(e - p - 1);
			if (n == strlen(sha) && strncasecmp(p + 1, sha, n) == 0)
				return 1;
			p = e + 1;
		} else {
			while (*p && *p != ',')
				p++;
		}
	}
	return 0;
}

/* Parse decimal digits at *p into *v; advances *p. 0 if none/overflow. */
static int parse_u64(const char **p, uint64_t *v)
{
	const char *s = *p;
	uint64_t x = 0;
	int n = 0;
	while (*s >= '0' && *s <= '9') {
		if (x > (UINT64_MAX - 9) / 10)
			return 0;
		x = x * 10 + (uint64_t)(*s - '0');
		s++;
		n++;
	}
	if (!n)
		return 0;
	*p = s;
	*v = x;
	return 1;
}

int sd__http_parse_range(const char *h, uint64_t size, http_range *out)
{
	while (*h == ' ')
		h++;
	if (strncasecmp(h, "bytes=", 6) != 0)
		return 0;
	const char *p = h + 6;
	int n = 0, specs = 0;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		uint64_t a = 0, b = 0;
		int has_a = 0, has_b = 0;
		if (*p != '-')
			has_a = parse_u64(&p, &a);
		if (*p != '-')
			return 0;
		p++;
		has_b = parse_u64(&p, &b);
		if (!has_a && !has_b)
			return 0;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != ',' && *p != '\0')
			return 0;
		if (++specs > HTTP_MAX_RANGES * 4)
			return 0; /* absurd header: ignore it */
		if (has_a && has_b && b < a)
			return -1; /* invalid spec */
		http_range rg;
		int ok = 1;
		if (!has_a) { /* suffix: last b bytes */
			if (b == 0 || size == 0)
				ok = 0;
			else {
				rg.first = b >= size ? 0 : size - b;
				rg.last = size - 1;
			}
		} else {
			if (a >= size)
				ok = 0;
			else {
				rg.first = a;
				rg.last = (!has_b || b >= size) ? size - 1 : b;
			}
		}
		if (ok) {
			if (n >= HTTP_MAX_RANGES)
				return 0; /* too many: serve the whole file */
			out[n++] = rg;
		}
		if (*p == '\0')
			break;
		p++;
	}
	if (!n)
		return -1;
	/* sort (insertion: n <= HTTP_MAX_RANGES) and coalesce */
	for (int i = 1; i < n; i++) {
		http_range t = out[i];
		int j = i;
		for (; j > 0 && out[j - 1].first > t.first; j--)
			out[j] = out[j - 1];
		out[j] = t;
	}
	int m = 0;
	for (int i = 1; i < n; i++) {
		if (out[i].first <= out[m].last + 1) {
			if (out[i].last > out[m].last)
				out[m].last = out[i].last;
		} else {
			out[++m] = out[i];
		}
	}
	return m + 1;
}

/* ------------------------------------------------- multipart/byteranges */

/* The body is: for each part, its head (boundary line and part headers)
 * then its bytes of the content; then the closing boundary. Heads and the
 * tail are text in one sd_buf; the content is read through pread. */
typedef struct mp_part {
	size_t head_off, head_len; /* in mp_body.text */
	uint64_t first, len;
} mp_part;

typedef struct mp_body {
	http_pread_fn pread;
	void *arg;
	int n;
	sd_buf text;
	size_t tail_off, tail_len;
	mp_part parts[]; /* n of them */
} mp_body;

static ssize_t mp_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	mp_body *b = cls;
	uint64_t at = 0;
	for (int i = 0; i <= b->n; i++) {
		size_t moff = i < b->n ? b->parts[i].head_off : b->tail_off;
		size_t mlen = i < b->n ? b->parts[i].head_len : b->tail_len;
		if (pos < at + mlen) {
			size_t off = (size_t)(pos - at), k = mlen - off;
			if (k > max)
				k = max;
			memcpy(buf, b->text.data + moff + off, k);
			return (ssize_t)k;
		}
		at += mlen;
		if (i == b->n)
			break;
		if (pos < at + b->parts[i].len) {
			uint64_t off = pos - at, k = b->parts[i].len - off;
			if (k > max)
				k = max;
			ssize_t got = b->pread(b->arg, buf, (size_t)k, b->parts[i].first + off);
			if (got <= 0)
				return MHD_CONTENT_READER_END_WITH_ERROR;
			return got;
		}
		at += b->parts[i].len;
	}
	return MHD_CONTENT_READER_END_OF_STREAM;
}

static void mp_free(void *cls)
{
	mp_body *b = cls;
	sd_buf_free(&b->text);
	free(b);
}

struct MHD_Response *sd__http_multipart(http_pread_fn pread, void *arg, uint64_t size,
					const char *type, const http_range *rg, int n,
					uint64_t *len, char **ctype, int *err)
{
	*err = -EINVAL;
	if (n < 1 || n > HTTP_MAX_PARTS)
		return NULL;
	char bnd[25];
	if ((*err = sd_random_hex(bnd, 12)) < 0)
		return NULL;
	mp_body *b = sd_xcalloc(1, sizeof *b + (size_t)n * sizeof b->parts[0]);
	b->pread = pread;
	b->arg = arg;
	b->n = n;
	uint64_t total = 0;
	for (int i = 0; i < n; i++) {
		mp_part *p = &b->parts[i];
		p->head_off = b->text.len;
		sd_buf_printf(&b->text,
			      "%s--%s\r\nContent-Type: %s\r\nContent-Range: bytes %llu-%llu/%llu\r\n\r\n",
			      i ? "\r\n" : "", bnd, type, (unsigned long long)rg[i].first,
			      (unsigned long long)rg[i].last, (unsigned long long)size);
		p->head_len = b->text.len - p->head_off;
		p->first = rg[i].first;
		p->len = rg[i].last - rg[i].first + 1;
		total += p->head_len + p->len;
	}
	b->tail_off = b->text.len;
	sd_buf_printf(&b->text, "\r\n--%s--\r\n", bnd);
	b->tail_len = b->text.len - b->tail_off;
	total += b->tail_len;
	struct MHD_Response *resp =
	    MHD_create_response_from_callback(total, 64 * 1024, mp_read, b, mp_free);
	if (!resp) {
		mp_free(b);
		*err = -ENOMEM;
		return NULL;
	}
	*ctype = sd_xasprintf("multipart/byteranges; boundary=%s", bnd);
	*len = total;
	*err = 0;
	return resp;
}
