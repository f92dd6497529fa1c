/*
 * ftp_tls.c - FTPS with GnuTLS: one certificate credential and priority
 * cache for the whole module, server handshakes, and session resumption.
 *
 * Data connections must be able to resume the control connection's TLS
 * session (FileZilla insists; tls_require_reuse demands it): TLS 1.3 and
 * 1.2 session tickets are enabled with a ticket key generated at start-up,
 * and TLS 1.2 session IDs are served from a small in-memory cache
 * (ftp_tls.cache, the oldest entry replaced first, entries expire after
 * CACHE_TTL seconds).
 */
#include "ftp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* GnuTLS session-ID cache callbacks (TLS 1.2 resumption). */
static int db_store(void *ptr, gnutls_datum_t key, gnutls_datum_t data)
{
	ftp_tls *t = ptr;
	if (key.size > sizeof t->cache[0].key || data.size > 64 * 1024)
		return -1;
	if (data.size == 0)
		return -1;
	void *copy = sd_xmalloc(data.size);
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
	ftp_tls *t = sd_xcalloc(1, sizeof *t);
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
