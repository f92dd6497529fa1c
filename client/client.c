/*
 * client.c - the client object: options, server table, remote names,
 * error words, counters.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int name_ok(const char *n)
{
	if (!*n || strlen(n) >= 64)
		return 0;
	for (; *n; n++)
		if (!((*n >= 'a' && *n <= 'z') || (*n >= 'A' && *n <= 'Z') || (*n >= '0' && *n <= '9') ||
		      *n == '.' || *n == '_' || *n == '-'))
			return 0;
	return 1;
}

sdc_client *sdc_client_new(const sdc_options *o, int *err)
{
	int e = -EINVAL;
	if (err)
		*err = 0;
	if (!o || o->nservers < 1 || !o->servers)
		goto fail;
	size_t ps = o->page_size ? o->page_size : (1u << 20);
	size_t np = o->npages ? o->npages : 64;
	if (ps < 512 || ps > (64u << 20) || np < 2 || np > (1u << 26))
		goto fail;
	for (int i = 0; i < o->nservers; i++) {
		const sdc_server_opts *so = &o->servers[i];
		if (!so->url || (strncmp(so->url, "http://", 7) != 0 && strncmp(so->url, "https://", 8) != 0))
			goto fail;
		if (so->name && !name_ok(so->name))
			goto fail;
		for (int k = 0; k < i; k++)
			if (so->name && o->servers[k].name && strcmp(so->name, o->servers[k].name) == 0)
				goto fail;
	}
	pthread_once(&curl_once, curl_init_once);
	sdc_client *c = sdc__xcalloc(1, sizeof *c);
	pthread_mutex_init(&c->lock, NULL);
	c->psize = ps;
	c->maxpages = np;
	c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 30000;
	c->cacert = o->cacert ? sdc__xstrdup(o->cacert) : NULL;
	c->insecure = o->insecure;
	c->max_send_rate = o->max_send_rate;
	c->conditional = o->conditional_commit != 0;
	if (o->state_dir) {
		c->state_dir = sdc__xstrdup(o->state_dir);
	} else {
		sdc_buf b = {0};
		const char *x = getenv("XDG_CACHE_HOME");
		const char *home = getenv("HOME");
		if (x && *x)
			sdc__buf_printf(&b, "%s/stor", x);
		else
			sdc__buf_printf(&b, "%s/.cache/stor", home && *home ? home : "/tmp");
		c->state_dir = b.p;
	}
	c->nsrv = o->nservers;
	c->srv = sdc__xcalloc((size_t)c->nsrv, sizeof *c->srv);
	for (int i = 0; i < c->nsrv; i++) {
		const sdc_server_opts *so = &o->servers[i];
		sdc_srv *s = &c->srv[i];
		if (so->name)
			snprintf(s->name, sizeof s->name, "%s", so->name);
		else if (i == 0)
			snprintf(s->name, sizeof s->name, "default");
		else
			snprintf(s->name, sizeof s->name, "s%d", i);
		s->base = sdc__xstrdup(so->url);
		size_t n = strlen(s->base);
		while (n > 0 && s->base[n - 1] == '/')
			s->base[--n] = '\0';
		if (so->token && *so->token) {
			s->bearer = sdc__xstrdup(so->token);
		} else {
			s->user = sdc__xstrdup(so->user ? so->user : "");
			s->secret = sdc__xstrdup(so->password ? so->password : "");
		}
		pthread_mutex_init(&s->pool_m, NULL);
	}
	if (sdc__cache_init(c) < 0) {
		e = -ENOMEM;
		sdc_client_free(c);
		goto fail;
	}
	return c;
fail:
	if (err)
		*err = e;
	return NULL;
}

int sdc_client_free(sdc_client *c)
{
	if (!c)
		return 0;
	int first = 0;
	for (int fd = 0; fd < c->nfds; fd++) {
		if (!c->fds[fd].f)
			continue;
		int rc = sdc_close(c, fd);
		if (rc < 0 && !first)
			first = rc;
	}
	sdc__cache_free(c);
	for (int i = 0; i < c->nsrv; i++) {
		sdc_srv *s = &c->srv[i];
		for (int k = 0; k < s->npool; k++)
			curl_easy_cleanup(s->pool[k]);
		pthread_mutex_destroy(&s->pool_m);
		free(s->base);
		free(s->user);
		free(s->secret);
		free(s->bearer);
	}
	free(c->srv);
	free(c->fds);
	free(c->cacert);
	free(c->state_dir);
	pthread_mutex_destroy(&c->lock);
	free(c);
	return first;
}

size_t sdc_page_size(const sdc_client *c)
{
	return c->psize;
}

int sdc__where(sdc_client *c, const char *where, int *srv, const char **path)
{
	if (!where || !*where)
		return -EINVAL;
	const char *colon = strchr(where, ':');
	if (where[0] != '/' && colon) {
		size_t n = (size_t)(colon - where);
		for (int i = 0; i < c->nsrv; i++) {
			if (strlen(c->srv[i].name) == n && strncmp(c->srv[i].name, where, n) == 0) {
				*srv = i;
				*path = colon[1] ? colon + 1 : "/";
				return 0;
			}
		}
		sdc__set_errmsg("no server named '%.*s' is configured", (int)n, where);
		return -ENXIO;
	}
	*srv = 0;
	*path = where;
	return 0;
}

const char *sdc_strerror(int err)
{
	if (err < 0)
		err = -err;
	switch (err) {
	case SDC_ECONFLICT:
		return "Conflict: the file changed on the server since these writes were made";
	case SDC_ELOST:
		return "Unsaved writes lost: the server dropped the open file";
	case SDC_EPROTO:
		return "Unexpected answer from the server";
	case SDC_EAUTH:
		return "Authentication failed";
	case ENXIO:
		return "No such server configured";
	default:
		return strerror(err);
	}
}

void sdc_cache_stats_get(sdc_client *c, sdc_cache_stats *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->st;
	out->pages_used = c->used;
	size_t d = 0;
	for (sdc_file *f = c->files; f; f = f->next)
		d += f->ndirty;
	out->pages_dirty = d;
	pthread_mutex_unlock(&c->lock);
}
