/*
 * net.c - listening sockets and admission control. See net.h.
 *
 * Per-address counts live in a small open list (one entry per address that
 * has a live connection); with max_total bounded, so is the list. An entry
 * goes away when its count reaches zero.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net.h"
#include "util.h"

int sd_tcp_listen(const char *host, int port, int backlog, int nonblock, char *err,
		  size_t errlen)
{
	struct addrinfo hints = {0}, *res = NULL;
	char pbuf[16];
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(pbuf, sizeof pbuf, "%d", port);
	const char *h = host && *host ? host : NULL;
	int r = getaddrinfo(h, pbuf, &hints, &res);
	if (r != 0) {
		snprintf(err, errlen, "cannot resolve '%s': %s", h ? h : "", gai_strerror(r));
		return -EINVAL;
	}
	int fd = -1, e = EADDRNOTAVAIL;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int type = ai->ai_socktype | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0);
		fd = socket(ai->ai_family, type, 0);
		if (fd < 0) {
			e = errno;
			continue;
		}
		int one = 1;
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, backlog) == 0)
			break;
		e = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(err, errlen, "cannot listen on %s:%d: %s", h ? h : "*", port, strerror(e));
		return -e;
	}
	return fd;
}

void sd_addr_text(const struct sockaddr_storage *ss, char *out, size_t n)
{
	if (n == 0)
		return;
	out[0] = '\0';
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &a->sin_addr, out, (socklen_t)n);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
		if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr))
			inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], out, (socklen_t)n);
		else
			inet_ntop(AF_INET6, &a->sin6_addr, out, (socklen_t)n);
	}
}

typedef struct ipcount {
	struct ipcount *next;
	char addr[SD_ADDR_MAX];
	int n;
} ipcount;

struct sd_listener {
	int fd;
	int max_total, max_per_ip;
	pthread_mutex_t m;
	int live;
	ipcount *ips;
};

sd_listener *sd_listener_open(const char *host, int port, int max_total, int max_per_ip,
			      char *err, size_t errlen)
{
	if (max_total < 1 || max_per_ip < 1) {
		snprintf(err, errlen, "connection limits must be at least 1");
		return NULL;
	}
	int fd = sd_tcp_listen(host, port, 128, 0, err, errlen);
	if (fd < 0)
		return NULL;
	sd_listener *l = sd_xcalloc(1, sizeof *l);
	l->fd = fd;
	l->max_total = max_total;
	l->max_per_ip = max_per_ip;
	pthread_mutex_init(&l->m, NULL);
	return l;
}

int sd_listener_fd(const sd_listener *l)
{
	return l->fd;
}

/* The count entry of addr (created when create). Lock held. */
static ipcount *ip_find(sd_listener *l, const char *addr, int create)
{
	for (ipcount *e = l->ips; e; e = e->next)
		if (strcmp(e->addr, addr) == 0)
			return e;
	if (!create)
		return NULL;
	ipcount *e = sd_xcalloc(1, sizeof *e);
	snprintf(e->addr, sizeof e->addr, "%s", addr);
	e->next = l->ips;
	l->ips = e;
	return e;
}

int sd_listener_accept(sd_listener *l, int timeout_ms, int *fd, char addr[SD_ADDR_MAX],
		       int *admit)
{
	struct pollfd p = {.fd = l->fd, .events = POLLIN};
	int r = poll(&p, 1, timeout_ms);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	if (r == 0)
		return 0;
	struct sockaddr_storage peer;
	socklen_t plen = sizeof peer;
	int c = accept4(l->fd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
	if (c < 0) {
		/* the peer went away before we took it, or we are out of
		 * descriptors for a moment: nothing was accepted */
		if (errno == EMFILE || errno == ENFILE) {
			/* the connection stays queued and the socket readable:
			 * wait a little instead of spinning until a descriptor
			 * is free */
			sd_sleep_ms(50);
			return 0;
		}
		if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED || errno == EPROTO)
			return 0;
		return -errno;
	}
	sd_addr_text(&peer, addr, SD_ADDR_MAX);
	pthread_mutex_lock(&l->m);
	ipcount *e = ip_find(l, addr, 0);
	if (l->live >= l->max_total) {
		*admit = SD_ADMIT_FULL;
	} else if (e && e->n >= l->max_per_ip) {
		*admit = SD_ADMIT_PER_IP;
	} else {
		*admit = SD_ADMIT_OK;
		if (!e)
			e = ip_find(l, addr, 1);
		e->n++;
		l->live++;
	}
	pthread_mutex_unlock(&l->m);
	*fd = c;
	return 1;
}

void sd_listener_leave(sd_listener *l, const char *addr)
{
	pthread_mutex_lock(&l->m);
	for (ipcount **pp = &l->ips; *pp; pp = &(*pp)->next) {
		ipcount *e = *pp;
		if (strcmp(e->addr, addr) != 0)
			continue;
		if (--e->n <= 0) {
			*pp = e->next;
			free(e);
		}
		l->live--;
		break;
	}
	pthread_mutex_unlock(&l->m);
}

int sd_listener_live(sd_listener *l)
{
	pthread_mutex_lock(&l->m);
	int n = l->live;
	pthread_mutex_unlock(&l->m);
	return n;
}

void sd_listener_close(sd_listener *l)
{
	if (!l)
		return;
	if (l->fd >= 0)
		close(l->fd);
	ipcount *e = l->ips;
	while (e) {
		ipcount *n = e->next;
		free(e);
		e = n;
	}
	pthread_mutex_destroy(&l->m);
	free(l);
}

/* ------------------------------------------------------------ startups */

int sd_startups_parse(const char *text, sd_startups *out)
{
	long a = 0, b = 0, c = 0;
	char tail = 0;
	int k = text ? sscanf(text, "%ld:%ld:%ld%c", &a, &b, &c, &tail) : 0;
	if (k == 1 && strchr(text, ':') == NULL) {
		c = a;
		b = 100;
	} else if (k != 3) {
		return -EINVAL;
	}
	if (a < 1 || a > c || c > 1000000 || b < 0 || b > 100)
		return -EINVAL;
	out->start = (int)a;
	out->rate = (int)b;
	out->full = (int)c;
	out->n = 0;
	return 0;
}

int sd_startups_enter(sd_startups *s)
{
	int n = __atomic_load_n(&s->n, __ATOMIC_SEQ_CST);
	if (n >= s->full)
		return 0;
	if (n >= s->start) {
		/* refuse with probability rate% at start, 100% at full */
		int p = s->full > s->start
			    ? s->rate + (100 - s->rate) * (n - s->start) / (s->full - s->start)
			    : 100;
		uint32_t r = 0;
		if (sd_random_bytes(&r, sizeof r) < 0 || (int)(r % 100) < p)
			return 0;
	}
	if (__atomic_add_fetch(&s->n, 1, __ATOMIC_SEQ_CST) > s->full) {
		__atomic_sub_fetch(&s->n, 1, __ATOMIC_SEQ_CST);
		return 0;
	}
	return 1;
}

void sd_startups_leave(sd_startups *s)
{
	__atomic_sub_fetch(&s->n, 1, __ATOMIC_SEQ_CST);
}
