/*
 * metrics.c - a small registry of named counters and gauges, rendered in
 * Prometheus text format. Front ends add their own series through the API
 * (requests, bytes, connections); the engine adds dedup, GC and login
 * counters and, at render time, gauges read from the database.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "util.h"

typedef struct series {
	char *name;
	char *labels; /* "" when none */
	int64_t value;
	int gauge;
} series;

struct sd_metrics {
	pthread_mutex_t m;
	series *s;
	size_t n, cap;
};

sd_metrics *sd__metrics_new(void)
{
	sd_metrics *m = sd_xcalloc(1, sizeof *m);
	pthread_mutex_init(&m->m, NULL);
	return m;
}

void sd__metrics_free(sd_metrics *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++) {
		free(m->s[i].name);
		free(m->s[i].labels);
	}
	free(m->s);
	pthread_mutex_destroy(&m->m);
	free(m);
}

static int valid_name(const char *n)
{
	if (!n || !*n)
		return 0;
	for (const char *p = n; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '_' || *p == ':'))
			return 0;
	return 1;
}

static void update(sd_core *c, const char *name, const char *labels, int64_t v, int gauge)
{
	sd_metrics *m = c->metrics;
	if (!m || !valid_name(name))
		return;
	if (!labels)
		labels = "";
	pthread_mutex_lock(&m->m);
	series *s = NULL;
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->s[i].name, name) == 0 && strcmp(m->s[i].labels, labels) == 0) {
			s = &m->s[i];
			break;
		}
	if (!s && m->n < 4096) {
		if (m->n == m->cap) {
			m->cap = m->cap ? m->cap * 2 : 32;
			m->s = sd_xrealloc(m->s, m->cap * sizeof *m->s);
		}
		s = &m->s[m->n++];
		s->name = sd_xstrdup(name);
		s->labels = sd_xstrdup(labels);
		s->value = 0;
		s->gauge = gauge;
	}
	if (s) {
		if (gauge)
			s->value = v;
		else
			s->value += v;
	}
	pthread_mutex_unlock(&m->m);
}

void sd__metric_add(sd_core *c, const char *name, const char *labels, int64_t delta)
{
	update(c, name, labels, delta, 0);
}

void sd__metric_set(sd_core *c, const char *name, const char *labels, int64_t value)
{
	update(c, name, labels, value, 1);
}

static int cmp_series(const void *a, const void *b)
{
	const series *x = a, *y = b;
	int r = strcmp(x->name, y->name);
	return r ? r : strcmp(x->labels, y->labels);
}

char *sd__metrics_render(sd_core *c)
{
	sd_buf b = SD_BUF_INIT;
	sd_stats st;
	if (sd__stats(c, &st) == 0) {
		sd_buf_printf(&b, "# TYPE storaged_blobs gauge\nstoraged_blobs %lld\n", (long long)st.blobs);
		sd_buf_printf(&b, "# TYPE storaged_stored_bytes gauge\nstoraged_stored_bytes %lld\n",
			      (long long)st.stored_bytes);
		sd_buf_printf(&b, "# TYPE storaged_logical_bytes gauge\nstoraged_logical_bytes %lld\n",
			      (long long)st.logical_bytes);
		sd_buf_printf(&b, "# TYPE storaged_files gauge\nstoraged_files %lld\n", (long long)st.files);
		sd_buf_printf(&b, "# TYPE storaged_users gauge\nstoraged_users %lld\n", (long long)st.users);
	}
	sd_metrics *m = c->metrics;
	pthread_mutex_lock(&m->m);
	series *copy = m->n ? sd_xcalloc(m->n, sizeof *copy) : NULL;
	size_t n = m->n;
	for (size_t i = 0; i < n; i++)
		copy[i] = m->s[i];
	if (n)
		qsort(copy, n, sizeof *copy, cmp_series);
	const char *last = "";
	for (size_t i = 0; i < n; i++) {
		if (strcmp(copy[i].name, last) != 0) {
			sd_buf_printf(&b, "# TYPE %s %s\n", copy[i].name, copy[i].gauge ? "gauge" : "counter");
			last = copy[i].name;
		}
		if (copy[i].labels[0])
			sd_buf_printf(&b, "%s{%s} %lld\n", copy[i].name, copy[i].labels,
				      (long long)copy[i].value);
		else
			sd_buf_printf(&b, "%s %lld\n", copy[i].name, (long long)copy[i].value);
	}
	pthread_mutex_unlock(&m->m);
	free(copy);
	return sd_buf_steal(&b);
}
