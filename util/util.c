/*
 * util.c - allocation that cannot fail silently, the sd_buf type, hex and
 * clocks. See util.h for the contracts.
 */
#include "util.h"
#include "sys.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void oom(size_t n)
{
	fprintf(stderr, "storaged: out of memory allocating %zu bytes\n", n);
	abort();
}

void *sd_xmalloc(size_t n)
{
	if (n == 0)
		oom(n);
	void *p = malloc(n);
	if (!p)
		oom(n);
	return p;
}

void *sd_xcalloc(size_t n, size_t size)
{
	if (n == 0 || size == 0 || n > SIZE_MAX / size)
		oom(n * size);
	void *p = calloc(n, size);
	if (!p)
		oom(n * size);
	return p;
}

void *sd_xrealloc(void *p, size_t n)
{
	if (n == 0)
		oom(n);
	void *q = realloc(p, n);
	if (!q)
		oom(n);
	return q;
}

char *sd_xstrdup(const char *s)
{
	return sd_xstrndup(s, strlen(s));
}

char *sd_xstrndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = sd_xmalloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *sd_xasprintf(const char *fmt, ...)
{
	sd_buf b = SD_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	sd_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	return sd_buf_steal(&b);
}

static atomic_int alloc_fail_countdown;

void sd__alloc_fail_after(int nth)
{
	atomic_store(&alloc_fail_countdown, nth);
}

/* 1 when the fault seam says this allocation fails. */
static int seam_fails(void)
{
	int c = atomic_load(&alloc_fail_countdown);
	return c > 0 && atomic_fetch_sub(&alloc_fail_countdown, 1) == 1;
}

void *sd_trymalloc(size_t n)
{
	if (seam_fails() || n == 0)
		return NULL;
	return malloc(n);
}

void *sd_tryrealloc(void *p, size_t n)
{
	if (seam_fails() || n == 0)
		return NULL;
	return realloc(p, n);
}

/* ------------------------------------------------------------- sd_buf */

void sd_buf_reserve(sd_buf *b, size_t extra)
{
	if (extra > SIZE_MAX - b->len - 1)
		oom(SIZE_MAX);
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	b->data = sd_xrealloc(b->data, cap);
	b->cap = cap;
}

void sd_buf_append(sd_buf *b, const void *p, size_t n)
{
	sd_buf_reserve(b, n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void sd_buf_puts(sd_buf *b, const char *s)
{
	sd_buf_append(b, s, strlen(s));
}

void sd_buf_vprintf(sd_buf *b, const char *fmt, va_list ap)
{
	/* Without this, GCC with -fsanitize=undefined at -O1 and above sees a
	 * path where fmt is NULL and fails the build (-Wformat-truncation). */
	if (!fmt)
		return;
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return;
	sd_buf_reserve(b, (size_t)n);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void sd_buf_printf(sd_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sd_buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void sd_buf_reset(sd_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void sd_buf_free(sd_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

char *sd_buf_steal(sd_buf *b)
{
	if (!b->data)
		sd_buf_reserve(b, 0), b->data[0] = '\0';
	char *p = b->data;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

int sd_buf_read_fd(sd_buf *b, int fd, size_t max)
{
	for (;;) {
		sd_buf_reserve(b, 64 * 1024);
		ssize_t n = sd_sys_read(fd, b->data + b->len, 64 * 1024);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return 0;
		b->len += (size_t)n;
		b->data[b->len] = '\0';
		if (b->len > max)
			return -EFBIG;
	}
}

/* ------------------------------------------------------------- hex */

void sd_hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int sd_unhex(const char *in, unsigned char *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(in[2 * i]);
		if (hi < 0)
			return -EINVAL;
		int lo = hexval(in[2 * i + 1]);
		if (lo < 0)
			return -EINVAL;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return in[2 * n] == '\0' ? 0 : -EINVAL;
}

int sd_is_sha256_hex(const char *s)
{
	if (!s)
		return 0;
	for (int i = 0; i < 64; i++)
		if (hexval(s[i]) < 0)
			return 0;
	return s[64] == '\0';
}

/* ------------------------------------------------------------- time */

int64_t sd_time_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sd_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sd_sleep_ms(int64_t ms)
{
	if (ms <= 0)
		return;
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

const char *sd_kv_quote(const char *in, char *out, size_t n)
{
	size_t o = 0;
	for (; in && *in; in++) {
		int esc = *in == '"' || *in == '\\';
		if (o + (size_t)esc + 1 >= n)
			break;
		if (esc)
			out[o++] = '\\';
		out[o++] = *in;
	}
	out[o] = '\0';
	return out;
}
