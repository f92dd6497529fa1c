/*
 * ftp_io.c - socket and TLS I/O, the TLS session cache, buffers, charsets.
 *
 * Every read and write on a control or data socket goes through
 * ftp_io_recv/ftp_io_send, which hide whether the socket is TLS-wrapped,
 * retry on EINTR/partial writes. The control socket is blocking with
 * SO_RCVTIMEO/SO_SNDTIMEO (data_timeout) after a poll() bounded by
 * idle_timeout; data sockets are non-blocking once open, and the transfer
 * loops in ftp_data.c poll them together with the control socket (for ABOR)
 * under data_timeout. Either way no client can hold a thread forever.
 *
 * TLS (GnuTLS): one certificate credential and priority cache for the whole
 * module. Data connections must be able to resume the control connection's
 * TLS session (FileZilla insists): TLS 1.3 and 1.2 session tickets are
 * enabled with a ticket key generated at start-up, and TLS 1.2 session IDs
 * are served from a small in-memory cache (ftp_tls.cache, LRU by age).
 */
#include "ftp.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ buffers */

static void buf_reserve(ftp_buf *b, size_t extra)
{
	if (b->len + extra + 1 <= b->cap)
		return;
	size_t ncap = b->cap ? b->cap : 256;
	while (ncap < b->len + extra + 1) {
		if (ncap > SIZE_MAX / 2)
			abort();
		ncap *= 2;
	}
	char *p = realloc(b->data, ncap);
	if (!p)
		abort();
	b->data = p;
	b->cap = ncap;
}

void ftp_buf_append(ftp_buf *b, const void *p, size_t n)
{
	buf_reserve(b, n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void ftp_buf_puts(ftp_buf *b, const char *s)
{
	ftp_buf_append(b, s, strlen(s));
}

void ftp_buf_printf(ftp_buf *b, const char *fmt, ...)
{
	va_list ap;
	char probe[1];
	va_start(ap, fmt);
	int n = vsnprintf(probe, sizeof probe, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	buf_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void ftp_buf_free(ftp_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

/* ------------------------------------------------------------ sockets */

void ftp_sock_timeouts(int fd, int64_t ms)
{
	struct timeval tv;
	if (ms <= 0)
		ms = 0;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

int ftp_wait_fd(int fd, short events, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = events};
	for (;;) {
		int r = poll(&p, 1, timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		return r > 0 ? 1 : 0;
	}
}

ssize_t ftp_io_recv(ftp_io *io, void *buf, size_t n)
{
	for (;;) {
		if (io->tls) {
			ssize_t r = gnutls_record_recv(io->tls, buf, n);
			if (r >= 0)
				return r;
			if (r == GNUTLS_E_INTERRUPTED)
				continue;
			if (r == GNUTLS_E_AGAIN)
				return -EAGAIN;
			/* A peer closing TCP without close_notify: treat as
			 * EOF like vsftpd's default (strict_ssl_read_eof=NO). */
			if (r == GNUTLS_E_PREMATURE_TERMINATION)
				return 0;
			if (r == GNUTLS_E_REHANDSHAKE)
				continue;
			io->tls_err = (int)r;
			return -EPROTO;
		}
		ssize_t r = recv(io->fd, buf, n, 0);
		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return -EAGAIN;
		return -errno;
	}
}

ssize_t ftp_io_send1(ftp_io *io, const void *buf, size_t n)
{
	for (;;) {
		if (io->tls) {
			ssize_t r = gnutls_record_send(io->tls, buf, n);
			if (r >= 0)
				return r;
			if (r == GNUTLS_E_INTERRUPTED)
				continue;
			if (r == GNUTLS_E_AGAIN)
				return -EAGAIN;
			io->tls_err = (int)r;
			return -EPROTO;
		}
		ssize_t r = send(io->fd, buf, n, MSG_NOSIGNAL);
		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return -EAGAIN;
		return -errno;
	}
}

int ftp_io_send(ftp_io *io, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t r = ftp_io_send1(io, p, n);
		if (r == -EAGAIN)
			return -ETIMEDOUT; /* blocking socket: SO_SNDTIMEO fired */
		if (r < 0)
			return (int)r;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int ftp_io_pending(ftp_io *io)
{
	return io->tls && gnutls_record_check_pending(io->tls) > 0;
}

void ftp_io_tls_end(ftp_io *io)
{
	if (!io->tls)
		return;
	int fl = fcntl(io->fd, F_GETFL);
	if (fl >= 0 && (fl & O_NONBLOCK))
		(void)fcntl(io->fd, F_SETFL, fl & ~O_NONBLOCK);
	int r;
	do
		r = gnutls_bye(io->tls, GNUTLS_SHUT_WR);
	while (r == GNUTLS_E_INTERRUPTED);
	gnutls_deinit(io->tls);
	io->tls = NULL;
}

/* ------------------------------------------------------------ TLS */

#define CACHE_SLOTS 256
#define CACHE_TTL 3600

struct cache_ent {
	unsigned char key[64];
	size_t klen;
	gnutls_datum_t data;
	time_t at;
};

struct ftp_tls {
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t prio;
	gnutls_datum_t ticket_key;
	pthread_mutex_t lock;
	struct cache_ent cache[CACHE_SLOTS];
};

static int db_store(void *ptr, gnutls_datum_t key, gnutls_datum_t data)
{
	ftp_tls *t = ptr;
	if (key.size > sizeof t->cache[0].key || data.size > 64 * 1024)
		return -1;
	void *copy = malloc(data.size);
	if (!copy)
		return -1;
	memcpy(copy, data.data, data.size);
	time_t now = time(NULL);
	pthread_mutex_lock(&t->lock);
	struct cache_ent *victim = &t->cache[0];
	for (int i = 0; i < CACHE_SLOTS; i++) {
		struct cache_ent *e = &t->cache[i];
		if (!e->data.data) {
			victim = e;
			break;
		}
		if (e->at < victim->at)
			victim = e;
	}
	free(victim->data.data);
	memcpy(victim->key, key.data, key.size);
	victim->klen = key.size;
	victim->data.data = copy;
	victim->data.size = data.size;
	victim->at = now;
	pthread_mutex_unlock(&t->lock);
	return 0;
}

static gnutls_datum_t db_fetch(void *ptr, gnutls_datum_t key)
{
	ftp_tls *t = ptr;
	gnutls_datum_t out = {NULL, 0};
	time_t now = time(NULL);
	pthread_mutex_lock(&t->lock);
	for (int i = 0; i < CACHE_SLOTS; i++) {
		struct cache_ent *e = &t->cache[i];
		if (!e->data.data || e->klen != key.size || memcmp(e->key, key.data, key.size))
			continue;
		if (now - e->at > CACHE_TTL)
			break;
		out.data = gnutls_malloc(e->data.size);
		if (out.data) {
			memcpy(out.data, e->data.data, e->data.size);
			out.size = e->data.size;
		}
		break;
	}
	pthread_mutex_unlock(&t->lock);
	return out;
}

static int db_remove(void *ptr, gnutls_datum_t key)
{
	ftp_tls *t = ptr;
	pthread_mutex_lock(&t->lock);
	for (int i = 0; i < CACHE_SLOTS; i++) {
		struct cache_ent *e = &t->cache[i];
		if (e->data.data && e->klen == key.size && !memcmp(e->key, key.data, key.size)) {
			free(e->data.data);
			e->data.data = NULL;
			e->klen = 0;
		}
	}
	pthread_mutex_unlock(&t->lock);
	return 0;
}

ftp_tls *ftp_tls_new(const char *cert, const char *key, char *err, size_t errlen)
{
	ftp_tls *t = calloc(1, sizeof *t);
	if (!t) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&t->lock, NULL);
	int r = gnutls_certificate_allocate_credentials(&t->cred);
	if (r < 0)
		goto fail;
	r = gnutls_certificate_set_x509_key_file(t->cred, cert, key, GNUTLS_X509_FMT_PEM);
	if (r < 0)
		goto fail;
	r = gnutls_priority_init(&t->prio, "NORMAL", NULL);
	if (r < 0)
		goto fail;
	r = gnutls_session_ticket_key_generate(&t->ticket_key);
	if (r < 0)
		goto fail;
	return t;
fail:
	snprintf(err, errlen, "%s", gnutls_strerror(r));
	ftp_tls_free(t);
	return NULL;
}

void ftp_tls_free(ftp_tls *t)
{
	if (!t)
		return;
	if (t->cred)
		gnutls_certificate_free_credentials(t->cred);
	if (t->prio)
		gnutls_priority_deinit(t->prio);
	if (t->ticket_key.data) {
		gnutls_memset(t->ticket_key.data, 0, t->ticket_key.size);
		gnutls_free(t->ticket_key.data);
	}
	for (int i = 0; i < CACHE_SLOTS; i++)
		free(t->cache[i].data.data);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

int ftp_tls_accept(ftp_tls *t, int fd, int data, int64_t timeout_ms, gnutls_session_t *out,
		   char *err, size_t errlen)
{
	gnutls_session_t s;
	/* Data connections issue no TLS 1.3 tickets of their own: a ticket
	 * arriving on an upload's data socket makes some clients (lftp) read
	 * it as unexpected data and drop the transfer; clients resume the
	 * control connection's session anyway. */
	unsigned flags = GNUTLS_SERVER | GNUTLS_NO_SIGNAL | (data ? GNUTLS_NO_AUTO_SEND_TICKET : 0);
	int r = gnutls_init(&s, flags);
	if (r < 0) {
		snprintf(err, errlen, "%s", gnutls_strerror(r));
		return -EPROTO;
	}
	gnutls_priority_set(s, t->prio);
	gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, t->cred);
	gnutls_certificate_server_set_request(s, GNUTLS_CERT_IGNORE);
	gnutls_session_ticket_enable_server(s, &t->ticket_key);
	gnutls_db_set_ptr(s, t);
	gnutls_db_set_store_function(s, db_store);
	gnutls_db_set_retrieve_function(s, db_fetch);
	gnutls_db_set_remove_function(s, db_remove);
	gnutls_db_set_cache_expiration(s, CACHE_TTL);
	gnutls_transport_set_int(s, fd);
	gnutls_handshake_set_timeout(s, timeout_ms > 0 ? (unsigned)timeout_ms : GNUTLS_DEFAULT_HANDSHAKE_TIMEOUT);
	do
		r = gnutls_handshake(s);
	while (r < 0 && !gnutls_error_is_fatal(r) && r != GNUTLS_E_AGAIN);
	if (r < 0) {
		snprintf(err, errlen, "%s", gnutls_strerror(r));
		gnutls_deinit(s);
		return r == GNUTLS_E_AGAIN || r == GNUTLS_E_TIMEDOUT ? -ETIMEDOUT : -EPROTO;
	}
	*out = s;
	return 0;
}

/* ------------------------------------------------------------ charsets */

int ftp_utf8_valid(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		size_t k;
		unsigned min;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xE0) == 0xC0) {
			k = 1, min = 0x80, c &= 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			k = 2, min = 0x800, c &= 0x0F;
		} else if ((c & 0xF8) == 0xF0) {
			k = 3, min = 0x10000, c &= 0x07;
		} else {
			return 0;
		}
		if (i + k >= n)
			return 0;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xC0) != 0x80)
				return 0;
			c = (c << 6) | (s[i + j] & 0x3F);
		}
		if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
			return 0;
		i += k + 1;
	}
	return 1;
}

char *ftp_iconv(iconv_t cd, const char *in, size_t n)
{
	size_t cap = n * 4 + 16;
	char *out = malloc(cap);
	if (!out)
		return NULL;
	(void)iconv(cd, NULL, NULL, NULL, NULL);
	char *ip = (char *)in, *op = out;
	size_t il = n, ol = cap - 1;
	if (iconv(cd, &ip, &il, &op, &ol) == (size_t)-1 ||
	    iconv(cd, NULL, NULL, &op, &ol) == (size_t)-1) {
		free(out);
		return NULL;
	}
	*op = '\0';
	return out;
}
