/*
 * util.h - the small library linked into the core and into every front-end
 * module (util/, no SQLite, no core state): allocation, the sd_buf byte
 * buffer, hex, clocks, UTF-8 validation and randomness. Syscall loops are
 * in sys.h, listening sockets with connection limits in net.h.
 *
 * Allocation contract (CONVENTIONS 3): sd_xmalloc and friends abort the
 * process on OOM and on a zero or overflowing size: use them for sizes the
 * server chooses. sd_trymalloc returns NULL instead: use it where a client
 * chooses the size, after capping it.
 */
#ifndef SD_UTIL_H
#define SD_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

void *sd_xmalloc(size_t n);
void *sd_xcalloc(size_t n, size_t size);
void *sd_xrealloc(void *p, size_t n);
char *sd_xstrdup(const char *s);
char *sd_xstrndup(const char *s, size_t n);
/* malloc'd printf result; aborts on OOM. */
char *sd_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void *sd_trymalloc(size_t n);
/* realloc that returns NULL (p untouched) instead of aborting. */
void *sd_tryrealloc(void *p, size_t n);

/* A growable byte buffer. Invariant: data[len] == '\0' whenever data is
 * non-NULL, so the content can be used as a C string when it holds text. */
typedef struct sd_buf {
	char *data;
	size_t len;
	size_t cap;
} sd_buf;

#define SD_BUF_INIT {NULL, 0, 0}
void sd_buf_reserve(sd_buf *b, size_t extra);
void sd_buf_append(sd_buf *b, const void *p, size_t n);
void sd_buf_puts(sd_buf *b, const char *s);
void sd_buf_printf(sd_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sd_buf_vprintf(sd_buf *b, const char *fmt, va_list ap);
void sd_buf_reset(sd_buf *b);   /* len = 0, keeps memory */
void sd_buf_free(sd_buf *b);    /* releases memory, back to SD_BUF_INIT */
char *sd_buf_steal(sd_buf *b);  /* returns data (never NULL), buffer reset */
/* Append what is left to read of fd (to EOF) to b, NUL-terminated: 0,
 * -EFBIG once b would hold more than max bytes, or -errno (sd_sys_read).
 * On an error b holds what was read; the caller frees it. */
int sd_buf_read_fd(sd_buf *b, int fd, size_t max);

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void sd_hex(const unsigned char *in, size_t n, char *out);
/* Parse exactly 2n hex digits; 0 or -EINVAL. */
int sd_unhex(const char *in, unsigned char *out, size_t n);
/* 1 if s is exactly 64 lowercase-or-uppercase hex digits. */
int sd_is_sha256_hex(const char *s);

/* Wall clock in ms / s, and a monotonic clock in ms. */
int64_t sd_time_ms(void);
int64_t sd_mono_ms(void);
void sd_sleep_ms(int64_t ms);

/* Fault seam: make the nth next sd_trymalloc/sd_tryrealloc return NULL
 * (1 = next). */
void sd__alloc_fail_after(int nth);

/* 1 if s[0..n) is well-formed UTF-8 (no overlong forms, no surrogates,
 * nothing above U+10FFFF; NUL bytes are valid UTF-8 and callers that care
 * check for them), else 0. */
int sd_utf8_valid(const char *s, size_t n);

/* A value for a key=value log message, to be written between double
 * quotes: '"' and '\\' get a backslash before them (the logger escapes
 * control characters itself), so a client-chosen string cannot end the
 * value early and forge a key. Cut to fit out (n bytes, n > 0), never
 * inside an escape. Returns out. */
const char *sd_kv_quote(const char *in, char *out, size_t n);

/* n cryptographically random bytes from the kernel (getrandom(2), looping
 * over short reads and EINTR). 0, or -errno when the kernel cannot give
 * them: callers fail closed (refuse the login, the token, the session),
 * never fall back to a weaker source. */
int sd_random_bytes(void *buf, size_t n);
/* nbytes random bytes as 2*nbytes lowercase hex digits plus NUL in out.
 * 0 or -errno, as sd_random_bytes. */
int sd_random_hex(char *out, size_t nbytes);

#endif
