/*
 * ranges.c - byte ranges for the handle API (handles.c): the strict Range
 * parser of handle reads, and the streaming parser of multipart/byteranges
 * request bodies (several pieces written in one PUT). A leaf, like wire.c:
 * no engine, no request.
 *
 * Invariants:
 *  1. sd__http_ranges_strict yields ranges inside [0, size), sorted,
 *     disjoint and not adjacent, whose lengths add up to at most size: a
 *     request can never make the server send more than the file.
 *  2. The body parser keeps at most HTTP_MPW_HEAD_MAX bytes of a part's
 *     head; piece bytes go to the callback as they arrive and are never
 *     buffered, whatever the body's size.
 *  3. Every number taken from the client is checked against 2^63-1 before
 *     any arithmetic on it.
 *
 * Body parser states (one part = delimiter, headers, blank line, bytes):
 *
 *   HEAD --head complete, Content-Range A-B--> DATA --B-A+1 bytes--> HEAD
 *     |                                                                 
 *     +--close delimiter "--B--"--> DONE (the epilogue is ignored)
 *   any state --malformed--> ERROR (sticky)
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"

#define I63 ((uint64_t)INT64_MAX)

/* Decimal digits at *p into *v (at most 2^63-1); advances *p. 1 ok, 0 no
 * digits, -1 past 2^63-1. */
static int parse_num(const char **p, uint64_t *v)
{
	const char *s = *p;
	uint64_t x = 0;
	int n = 0;
	while (*s >= '0' && *s <= '9') {
		unsigned d = (unsigned)(*s - '0');
		if (x > (I63 - d) / 10)
			return -1;
		x = x * 10 + d;
		s++;
		n++;
	}
	if (!n)
		return 0;
	*p = s;
	*v = x;
	return 1;
}

static int cmp_range(const void *a, const void *b)
{
	const http_range *x = a, *y = b;
	return x->first < y->first ? -1 : x->first > y->first;
}

int sd__http_ranges_strict(const char *h, uint64_t size, http_range *out, int max, int *n)
{
	while (*h == ' ' || *h == '\t')
		h++;
	if (strncasecmp(h, "bytes=", 6) != 0)
		return -EINVAL;
	const char *p = h + 6;
	int k = 0, unsat = 0;
	uint64_t total = 0;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		uint64_t a = 0, b = 0;
		int ha = 0, hb;
		if (*p != '-' && (ha = parse_num(&p, &a)) <= 0)
			return -EINVAL;
		if (*p++ != '-')
			return -EINVAL;
		if ((hb = parse_num(&p, &b)) < 0)
			return -EINVAL;
		if (!ha && !hb)
			return -EINVAL;
		if (ha && hb && b < a)
			return -EINVAL;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != ',' && *p != '\0')
			return -EINVAL;
		if (k >= max)
			return -EINVAL;
		http_range rg = {0, 0};
		if (!ha) { /* the last b bytes */
			if (b == 0 || size == 0)
				unsat = 1;
			else
				rg = (http_range){b >= size ? 0 : size - b, size - 1};
		} else if (a >= size) {
			unsat = 1;
		} else {
			rg = (http_range){a, (!hb || b >= size) ? size - 1 : b};
		}
		if (!unsat) {
			out[k++] = rg;
			total += rg.last - rg.first + 1; /* each <= size <= 2^63-1: no overflow */
			if (total > size)
				unsat = 1;
		}
		if (*p == '\0')
			break;
		p++;
	}
	if (unsat)
		return -ERANGE;
	qsort(out, (size_t)k, sizeof *out, cmp_range);
	int m = 0;
	for (int i = 0; i < k; i++) {
		if (m > 0 && out[i].first <= out[m - 1].last + 1) {
			if (out[i].last > out[m - 1].last)
				out[m - 1].last = out[i].last;
		} else {
			out[m++] = out[i];
		}
	}
	*n = m;
	return 0;
}

/* ------------------------------------------- multipart/byteranges bodies */

int sd__http_mp_boundary(const char *ctype, char *out, size_t outlen)
{
	while (*ctype == ' ')
		ctype++;
	static const char mt[] = "multipart/byteranges";
	if (strncasecmp(ctype, mt, sizeof mt - 1) != 0)
		return 0;
	const char *p = ctype + sizeof mt - 1;
	if (*p != '\0' && *p != ';' && *p != ' ')
		return 0; /* another type that starts the same */
	/* parameters: ; name=value or ; name="value" */
	while (*p) {
		while (*p == ' ' || *p == ';' || *p == '\t')
			p++;
		const char *name = p;
		while (*p && *p != '=' && *p != ';')
			p++;
		size_t nlen = (size_t)(p - name);
		while (nlen && (name[nlen - 1] == ' ' || name[nlen - 1] == '\t'))
			nlen--;
		if (*p != '=')
			continue;
		p++;
		char val[HTTP_MPW_BOUNDARY_MAX + 1];
		size_t vlen = 0;
		if (*p == '"') {
			p++;
			while (*p && *p != '"') {
				if (vlen >= HTTP_MPW_BOUNDARY_MAX)
					return -EINVAL;
				val[vlen++] = *p++;
			}
			if (*p != '"')
				return -EINVAL;
			p++;
		} else {
			while (*p && *p != ';' && *p != ' ' && *p != '\t') {
				if (vlen >= HTTP_MPW_BOUNDARY_MAX)
					return -EINVAL;
				val[vlen++] = *p++;
			}
		}
		val[vlen] = '\0';
		if (nlen == 8 && strncasecmp(name, "boundary", 8) == 0) {
			if (vlen == 0 || vlen >= outlen)
				return -EINVAL;
			for (size_t i = 0; i < vlen; i++)
				if ((unsigned char)val[i] < 0x20 || (unsigned char)val[i] > 0x7e)
					return -EINVAL;
			memcpy(out, val, vlen + 1);
			return 1;
		}
	}
	return -EINVAL; /* multipart/byteranges without a boundary */
}

enum mpw_state { MPW_HEAD = 0, MPW_DATA, MPW_DONE, MPW_ERROR };

struct http_mpw {
	int state;
	int first;          /* no part seen yet: a preamble may come first */
	char bnd[HTTP_MPW_BOUNDARY_MAX + 3]; /* "--" + boundary */
	size_t blen;
	sd_buf head;        /* the head of the part being read (HEAD) */
	uint64_t off, left; /* DATA: where the next byte goes, bytes still due */
	int parts;
	const char *why;    /* ERROR: what was wrong */
};

http_mpw *sd__http_mpw_new(const char *boundary)
{
	http_mpw *p = sd_xcalloc(1, sizeof *p);
	p->blen = strlen(boundary) + 2;
	if (p->blen > sizeof p->bnd - 1) {
		free(p);
		return NULL;
	}
	p->bnd[0] = p->bnd[1] = '-';
	memcpy(p->bnd + 2, boundary, p->blen - 2 + 1);
	p->first = 1;
	return p;
}

void sd__http_mpw_free(http_mpw *p)
{
	if (!p)
		return;
	sd_buf_free(&p->head);
	free(p);
}

static ssize_t fail(http_mpw *p, const char *why)
{
	p->state = MPW_ERROR;
	p->why = why;
	return -EINVAL;
}

static const char *memfind(const char *h, size_t hn, const char *n, size_t nn)
{
	if (nn > hn)
		return NULL;
	return memmem(h, hn, n, nn);
}

/* The Content-Range ("bytes A-B/" and "*" or a total) of the header lines in
 * [s, e). 0 and *a, *b; -1 when missing or malformed. */
static int part_range(const char *s, const char *e, uint64_t *a, uint64_t *b)
{
	static const char name[] = "content-range:";
	while (s < e) {
		const char *eol = memfind(s, (size_t)(e - s), "\r\n", 2);
		if (!eol)
			eol = e;
		size_t n = (size_t)(eol - s);
		if (n > sizeof name - 1 && strncasecmp(s, name, sizeof name - 1) == 0) {
			char v[128];
			size_t vn = n - (sizeof name - 1);
			if (vn >= sizeof v)
				return -1;
			memcpy(v, s + sizeof name - 1, vn);
			v[vn] = '\0';
			const char *q = v;
			while (*q == ' ' || *q == '\t')
				q++;
			if (strncasecmp(q, "bytes", 5) != 0 || (q[5] != ' ' && q[5] != '\t'))
				return -1;
			q += 5;
			while (*q == ' ' || *q == '\t')
				q++;
			if (parse_num(&q, a) != 1 || *q++ != '-' || parse_num(&q, b) != 1 || *b < *a ||
			    *q++ != '/')
				return -1;
			uint64_t total;
			if (*q == '*')
				q++;
			else if (parse_num(&q, &total) != 1)
				return -1;
			while (*q == ' ' || *q == '\t')
				q++;
			return *q ? -1 : 0;
		}
		s = eol + 2;
	}
	return -1;
}

/* Try to read a whole head out of p->head. Returns its length in bytes
 * (the state moves to DATA or DONE), 0 when more bytes are needed, -1 on
 * a malformed head (state ERROR). */
static ssize_t parse_head(http_mpw *p)
{
	const char *h = p->head.data;
	size_t n = p->head.len, at = 0;
	if (p->first) {
		/* "--B" at the very start, or after a preamble line break */
		if (n < p->blen)
			return 0;
		if (memcmp(h, p->bnd, p->blen) != 0) {
			const char *d = NULL;
			for (size_t i = 0; i + 2 + p->blen <= n && !d; i++)
				if (h[i] == '\r' && h[i + 1] == '\n' && memcmp(h + i + 2, p->bnd, p->blen) == 0)
					d = h + i + 2;
			if (!d)
				return 0;
			at = (size_t)(d - h);
		}
	} else {
		if (n < 2 + p->blen)
			return 0;
		if (h[0] != '\r' || h[1] != '\n' || memcmp(h + 2, p->bnd, p->blen) != 0)
			return fail(p, "a part's bytes are not followed by the boundary (does its Content-Range match its length?)");
		at = 2;
	}
	at += p->blen;
	if (n < at + 2)
		return 0;
	if (h[at] == '-' && h[at + 1] == '-') {
		p->state = MPW_DONE;
		return (ssize_t)(at + 2);
	}
	while (at < n && (h[at] == ' ' || h[at] == '\t'))
		at++;
	if (n < at + 2)
		return 0;
	if (h[at] != '\r' || h[at + 1] != '\n')
		return fail(p, "junk after a boundary");
	const char *hs = h + at; /* "\r\n" then header lines, then "\r\n" */
	const char *end = memfind(hs, n - at, "\r\n\r\n", 4);
	if (!end)
		return 0;
	uint64_t a, b;
	if (part_range(hs + 2, end + 2, &a, &b) < 0)
		return fail(p, "each part needs Content-Range: bytes A-B/* with A <= B <= 2^63-1");
	if (b - a + 1 > I63 - a) /* the piece ends past 2^63-1 */
		return fail(p, "a part ends past 2^63-1");
	p->off = a;
	p->left = b - a + 1;
	p->parts++;
	p->first = 0;
	p->state = MPW_DATA;
	return (ssize_t)(end + 4 - h);
}

int sd__http_mpw_feed(http_mpw *p, const char *data, size_t len, http_piece_fn fn, void *arg)
{
	while (len > 0) {
		switch (p->state) {
		case MPW_DATA: {
			size_t k = p->left < len ? (size_t)p->left : len;
			int r = fn(arg, data, k, p->off);
			if (r < 0)
				return r;
			p->off += k;
			p->left -= k;
			data += k;
			len -= k;
			if (p->left == 0) {
				p->state = MPW_HEAD;
				sd_buf_reset(&p->head);
			}
			break;
		}
		case MPW_HEAD: {
			size_t before = p->head.len;
			size_t room = HTTP_MPW_HEAD_MAX - before;
			size_t take = len < room ? len : room;
			sd_buf_append(&p->head, data, take);
			ssize_t got = parse_head(p);
			if (got < 0)
				return -EINVAL;
			if (got == 0) {
				if (p->head.len >= HTTP_MPW_HEAD_MAX) {
					fail(p, p->first ? "no boundary where the body starts"
							 : "part headers too long");
					return -EINVAL;
				}
				data += take;
				len -= take;
				break;
			}
			/* the head ended inside what was just added */
			size_t used = (size_t)got - before;
			data += used;
			len -= used;
			sd_buf_reset(&p->head);
			break;
		}
		case MPW_DONE:
			return 0; /* the epilogue */
		default:
			return -EINVAL;
		}
	}
	return 0;
}

int sd__http_mpw_end(http_mpw *p, const char **why)
{
	if (p->state == MPW_DONE)
		return 0;
	if (p->state != MPW_ERROR)
		p->why = p->state == MPW_DATA ? "the body ends inside a part"
					      : "the body ends before its closing boundary";
	*why = p->why;
	return -EINVAL;
}

const char *sd__http_mpw_error(const http_mpw *p)
{
	return p->why ? p->why : "malformed multipart body";
}

int sd__http_mpw_parts(const http_mpw *p)
{
	return p->parts;
}
