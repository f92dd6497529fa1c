/*
 * writer.c - the buffered write pipeline (DESIGN path 1, seed 000) and
 * streamed uploads built on it.
 *
 * A pipe (sd_wpipe) owns one temp file, a running SHA-256 and two buffers.
 * The caller fills the current buffer with chunks of any size; when it is
 * full (write_buffer bytes) the pipe hands it to a pool thread, which
 * hashes it and writes it at its offset, and the caller goes on filling
 * the other buffer. Before handing over the next buffer the caller waits for
 * the previous job, so jobs of one pipe run strictly in order and the hash
 * sees the bytes in file order. Pipes are independent: N uploads keep up to
 * N pool jobs queued.
 *
 * Buffers start at 64 KiB and double up to write_buffer, so a 4 KiB upload
 * never allocates megabytes; a pipe whose content fits in one buffer is
 * hashed and written inline at finish, without a thread hand-off.
 *
 * The temp file is made only when a buffer first has to go to disk: a
 * content that fits in the first buffer and is finished without ever
 * needing a file (finish() hashes it in memory, MEM) can be committed
 * without one (inline in the database, commit.c); sd__wpipe_fd() makes the
 * file and writes the buffer into it when one is needed after all.
 *
 * Pipe states:  FILLING --(buffer full)--> FILLING+JOB --(job done)--> FILLING
 *               FILLING, no file --(finish)--> MEM (hashed in memory)
 *               any --(drain)--> DRAINED (everything in the file, hash valid)
 *               any --(invalidate: random write)--> hash invalid: finish()
 *               re-reads the file to compute the address.
 * A write error (ENOSPC, EIO) is sticky: every later call returns it.
 *
 * Streamed uploads on top of pipes are upload.c; working copies of handles
 * are file.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "log.h"
#include "sys.h"
#include "util.h"

#define SD_WPIPE_MIN_BUF (64 * 1024)

struct sd_wpipe {
	sd_core *c;
	int fd;          /* -1 until a buffer goes to disk */
	int mem;         /* finished with the content only in buf[cur] (MEM) */
	int finishing;   /* the last buffer is being written: no writeback */
	char path[PATH_MAX];
	EVP_MD_CTX *md;
	int hash_valid;
	char *buf[2];
	size_t cap[2];
	int cur;
	size_t fill;
	uint64_t size;    /* bytes given */
	uint64_t flushed; /* bytes handed to jobs or written */
	pthread_mutex_t m;
	pthread_cond_t cv;
	int busy;
	int err;
	/* the job in flight */
	const char *jbuf;
	size_t jlen;
	uint64_t joff;
	sd_wpipe *jnext;
};

struct sd_pool {
	pthread_mutex_t m;
	pthread_cond_t cv;
	sd_wpipe *head, *tail;
	int stop;
	int nthreads;
	pthread_t *threads;
};

/* Make the temp file if there is none yet. Called by the thread that owns
 * the pipe, or by the pool thread running its only job. */
static int ensure_file(sd_wpipe *p)
{
	if (p->fd >= 0)
		return 0;
	int fd = sd__temp_create(p->c, p->path);
	if (fd < 0)
		return fd;
	p->fd = fd;
	return 0;
}

/* Hash then write one buffer; returns 0 or -errno. */
static int run_job(sd_wpipe *p, const char *buf, size_t len, uint64_t off)
{
	if (p->hash_valid && EVP_DigestUpdate(p->md, buf, len) != 1)
		return -EIO;
	int r = ensure_file(p);
	if (r == 0)
		r = sd_sys_pwrite(p->fd, buf, len, off);
	/* Durable mode fsyncs at commit: start the disk on this buffer now,
	 * overlapping it with the transfer, instead of all at the end (not for
	 * the last buffer: the fsync follows at once). */
	if (r == 0 && p->c->conf->durability_full && !p->finishing)
		sd_sys_writeback(p->fd, off, len);
	return r;
}

static void *pool_main(void *arg)
{
	sd_pool *pool = arg;
	pthread_mutex_lock(&pool->m);
	for (;;) {
		while (!pool->head && !pool->stop)
			pthread_cond_wait(&pool->cv, &pool->m);
		if (!pool->head && pool->stop)
			break;
		sd_wpipe *p = pool->head;
		pool->head = p->jnext;
		if (!pool->head)
			pool->tail = NULL;
		pthread_mutex_unlock(&pool->m);

		int r = run_job(p, p->jbuf, p->jlen, p->joff);

		pthread_mutex_lock(&p->m);
		if (r < 0 && !p->err)
			p->err = r;
		p->busy = 0;
		pthread_cond_signal(&p->cv);
		pthread_mutex_unlock(&p->m);
		pthread_mutex_lock(&pool->m);
	}
	pthread_mutex_unlock(&pool->m);
	return NULL;
}

int sd__pool_start(sd_core *c, int threads)
{
	sd_pool *pool = sd_xcalloc(1, sizeof *pool);
	pthread_mutex_init(&pool->m, NULL);
	pthread_cond_init(&pool->cv, NULL);
	pool->threads = sd_xcalloc((size_t)(threads > 0 ? threads : 1), sizeof(pthread_t));
	for (int i = 0; i < threads; i++) {
		int e = pthread_create(&pool->threads[i], NULL, pool_main, pool);
		if (e) {
			c->pool = pool;
			sd__pool_stop(c);
			return -e;
		}
		pool->nthreads++;
	}
	c->pool = pool;
	return 0;
}

void sd__pool_stop(sd_core *c)
{
	sd_pool *pool = c->pool;
	if (!pool)
		return;
	pthread_mutex_lock(&pool->m);
	pool->stop = 1;
	pthread_cond_broadcast(&pool->cv);
	pthread_mutex_unlock(&pool->m);
	for (int i = 0; i < pool->nthreads; i++)
		pthread_join(pool->threads[i], NULL);
	pthread_mutex_destroy(&pool->m);
	pthread_cond_destroy(&pool->cv);
	free(pool->threads);
	free(pool);
	c->pool = NULL;
}

int sd__temp_create(sd_core *c, char path[PATH_MAX])
{
	uint64_t seq = atomic_fetch_add(&c->temp_seq, 1);
	snprintf(path, PATH_MAX, "%s/%ld-%llu.tmp", c->tmp_dir, (long)getpid(),
		 (unsigned long long)seq);
	return sd_sys_open(path, O_RDWR | O_CREAT | O_EXCL, 0640);
}

int sd__wpipe_open(sd_core *c, sd_wpipe **out)
{
	sd_wpipe *p = sd_xcalloc(1, sizeof *p);
	p->c = c;
	p->fd = -1;
	p->md = EVP_MD_CTX_new();
	if (!p->md || EVP_DigestInit_ex(p->md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(p->md);
		free(p);
		return -ENOMEM;
	}
	p->hash_valid = 1;
	pthread_mutex_init(&p->m, NULL);
	pthread_cond_init(&p->cv, NULL);
	*out = p;
	return 0;
}

int sd__wpipe_open_file(sd_core *c, int fd, const char *path, uint64_t offset,
			const struct evp_md_ctx_st *state, sd_wpipe **out)
{
	sd_wpipe *p;
	int r = sd__wpipe_open(c, &p);
	if (r < 0)
		return r;
	if (state && EVP_MD_CTX_copy_ex(p->md, state) != 1) {
		sd__wpipe_free(p, 0);
		return -ENOMEM;
	}
	p->hash_valid = state != NULL;
	p->fd = fd;
	snprintf(p->path, sizeof p->path, "%s", path);
	p->size = p->flushed = offset;
	*out = p;
	return 0;
}

static int wait_idle(sd_wpipe *p)
{
	pthread_mutex_lock(&p->m);
	while (p->busy)
		pthread_cond_wait(&p->cv, &p->m);
	int e = p->err;
	pthread_mutex_unlock(&p->m);
	return e;
}

/* Hash and write the current buffer in the calling thread (no job may be
 * in flight). Errors are sticky. */
static int write_inline(sd_wpipe *p)
{
	int e = run_job(p, p->buf[p->cur], p->fill, p->flushed);
	if (e) {
		p->err = e;
		return e;
	}
	p->flushed += p->fill;
	p->fill = 0;
	return 0;
}

/* Hand the current buffer to the pool (or run it inline without one). */
static int submit(sd_wpipe *p)
{
	int e = wait_idle(p);
	if (e)
		return e;
	sd_pool *pool = p->c->pool;
	if (!pool || pool->nthreads == 0)
		return write_inline(p);
	p->jbuf = p->buf[p->cur];
	p->jlen = p->fill;
	p->joff = p->flushed;
	p->jnext = NULL;
	p->busy = 1;
	pthread_mutex_lock(&pool->m);
	if (pool->tail)
		pool->tail->jnext = p;
	else
		pool->head = p;
	pool->tail = p;
	pthread_cond_signal(&pool->cv);
	pthread_mutex_unlock(&pool->m);
	p->flushed += p->fill;
	p->fill = 0;
	p->cur ^= 1;
	return 0;
}

int sd__wpipe_write(sd_wpipe *p, const void *data, size_t len)
{
	if (p->err)
		return p->err;
	size_t max = (size_t)p->c->conf->write_buffer;
	const char *src = data;
	while (len > 0) {
		int i = p->cur;
		if (p->cap[i] < max && p->fill + len > p->cap[i]) {
			size_t want = p->cap[i] ? p->cap[i] * 2 : SD_WPIPE_MIN_BUF;
			while (want < p->fill + len && want < max)
				want *= 2;
			if (want > max)
				want = max;
			/* buffers are many (one pair per upload in flight) and up to
			 * write_buffer each: running out fails this upload, not the
			 * server */
			char *nb = sd_tryrealloc(p->buf[i], want);
			if (!nb) {
				p->err = -ENOMEM;
				return p->err;
			}
			p->buf[i] = nb;
			p->cap[i] = want;
		}
		size_t room = p->cap[i] - p->fill;
		size_t n = len < room ? len : room;
		memcpy(p->buf[i] + p->fill, src, n);
		p->fill += n;
		p->size += n;
		src += n;
		len -= n;
		if (p->fill == max) {
			int e = submit(p);
			if (e)
				return e;
		}
	}
	return 0;
}

int sd__wpipe_drain(sd_wpipe *p)
{
	int e = wait_idle(p);
	if (e)
		return e;
	return p->fill > 0 ? write_inline(p) : 0;
}

uint64_t sd__wpipe_size(const sd_wpipe *p)
{
	return p->size;
}

int sd__wpipe_fd(sd_wpipe *p)
{
	int r = ensure_file(p);
	if (r < 0)
		return r;
	if (p->mem) {
		/* hashed in memory at finish: the bytes go to the file now */
		if ((r = sd_sys_pwrite(p->fd, p->buf[p->cur], p->fill, 0)) < 0)
			return r;
		p->flushed = p->fill;
		p->fill = 0;
		p->mem = 0;
	}
	return p->fd;
}

ssize_t sd__wpipe_mem(const sd_wpipe *p, const void **data)
{
	if (!p->mem)
		return -1;
	*data = p->buf[p->cur];
	return (ssize_t)p->fill;
}

const char *sd__wpipe_path(const sd_wpipe *p)
{
	return p->path;
}

int sd__wpipe_hash_state(sd_wpipe *p, struct evp_md_ctx_st *out)
{
	int e = sd__wpipe_drain(p);
	if (e)
		return e;
	if (!p->hash_valid)
		return -ENOENT;
	return EVP_MD_CTX_copy_ex(out, p->md) == 1 ? 0 : -ENOMEM;
}

void sd__wpipe_invalidate(sd_wpipe *p, uint64_t size)
{
	p->hash_valid = 0;
	p->size = p->flushed = size;
}

int sd__hash_source(ssize_t (*rd)(void *src, void *buf, size_t len, uint64_t off), void *src,
		   uint64_t size, char hex[SD_SHA256_HEX])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(md);
		return -ENOMEM;
	}
	size_t bufsz = 1 << 20;
	char *buf = sd_xmalloc(bufsz);
	uint64_t off = 0;
	int r = 0;
	while (off < size) {
		size_t want = size - off < bufsz ? (size_t)(size - off) : bufsz;
		ssize_t n = rd(src, buf, want, off);
		if (n < 0) {
			r = (int)n;
			break;
		}
		if (n == 0) {
			r = -EIO; /* shorter than promised */
			break;
		}
		EVP_DigestUpdate(md, buf, (size_t)n);
		off += (uint64_t)n;
	}
	if (r == 0) {
		unsigned char dg[32];
		unsigned int dl = 0;
		EVP_DigestFinal_ex(md, dg, &dl);
		sd_hex(dg, 32, hex);
	}
	free(buf);
	EVP_MD_CTX_free(md);
	return r;
}

static ssize_t fd_source(void *src, void *buf, size_t len, uint64_t off)
{
	return sd_sys_pread(*(int *)src, buf, len, off);
}

int sd__hash_fd(int fd, uint64_t size, char hex[SD_SHA256_HEX])
{
	return sd__hash_source(fd_source, &fd, size, hex);
}

int sd__wpipe_finish(sd_wpipe *p, char hex[SD_SHA256_HEX], uint64_t *size)
{
	int e = wait_idle(p);
	if (e)
		return e;
	*size = p->size;
	if (p->fd < 0 && p->hash_valid && p->flushed == 0) {
		/* everything is in this buffer and no file exists: hash it here
		 * and keep it in memory (MEM) */
		if (p->fill > 0 && EVP_DigestUpdate(p->md, p->buf[p->cur], p->fill) != 1)
			return -EIO;
		p->mem = 1;
	} else {
		p->finishing = 1;
		if (p->fill > 0 && (e = write_inline(p)) < 0)
			return e;
	}
	if (!p->hash_valid)
		return p->fd < 0 ? sd__hash_fd(-1, 0, hex) : sd__hash_fd(p->fd, p->size, hex);
	unsigned char dg[32];
	unsigned int dl = 0;
	if (EVP_DigestFinal_ex(p->md, dg, &dl) != 1)
		return -EIO;
	p->hash_valid = 0; /* the context is spent */
	sd_hex(dg, 32, hex);
	return 0;
}

void sd__wpipe_free(sd_wpipe *p, int unlink_temp)
{
	if (!p)
		return;
	wait_idle(p);
	if (unlink_temp && p->fd >= 0)
		sd_sys_unlink(p->path);
	if (p->fd >= 0)
		close(p->fd);
	free(p->buf[0]);
	free(p->buf[1]);
	EVP_MD_CTX_free(p->md);
	pthread_mutex_destroy(&p->m);
	pthread_cond_destroy(&p->cv);
	free(p);
}
