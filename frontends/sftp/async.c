/*
 * async.c - requests that commit run off the session thread, so that an
 * SFTP session keeps serving its other requests (reads, stats, other
 * handles) while one CLOSE commits (issue 14).
 *
 * Who does what:
 *   - the module owns one elastic pool of commit threads (fx_pool): a job
 *     gets an idle thread, or a new one up to POOL_MAX; a thread with no
 *     work for POOL_IDLE_MS exits. An idle server has no commit thread, so
 *     idle sessions pay nothing for this;
 *   - the session thread starts a job (sd__sftp_async_close) and goes on
 *     reading requests; the pool thread runs the engine call
 *     (api->handle_close: the commit) and puts the finished job on the
 *     session's done list, then wakes the session through an eventfd the
 *     session polls together with its socket (wire.c);
 *   - the session thread sends the reply (sd__sftp_async_reap). libssh is
 *     never touched by a pool thread: one session, one thread for SSH.
 *
 * Invariants
 *  A1. A reply is sent only after the engine call has returned: a CLOSE is
 *      acknowledged only once its commit is durable, as before.
 *  A2. Exactly one reply per request: the job's reply is sent by the
 *      session thread when it reaps the job, or never if the channel is
 *      gone (the commit still completes).
 *  A3. Requests about the same file are served in order: a request naming
 *      a path equal to, above or below the path of a pending job waits for
 *      that job first (sd__sftp_async_settle, called for every path a
 *      request reads and for READDIR's directory); the slot of a handle
 *      being closed answers INVALID_HANDLE to any later use (the client
 *      gave it up with the CLOSE). Replies to other requests may overtake a
 *      pending CLOSE: SFTP v3 matches replies by id.
 *  A4. Serving ends only after every job of the session has finished
 *      (sd__sftp_async_drain), so no pool thread touches a session, a core
 *      session or a handle slot after sd__sftp_serve returns; the pool is
 *      freed after every session has ended (module stop).
 *  A5. At most ASYNC_MAX jobs per session: a client pipelining more CLOSEs
 *      waits for the oldest.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "proto.h"
#include "util.h"

#define POOL_MAX 64          /* commit threads at most (module-wide) */
#define POOL_IDLE_MS 5000    /* an idle commit thread exits after this */
#define ASYNC_MAX 32         /* jobs in flight per session (A5) */

struct fx_job {
	struct fx_job *next;
	fx_sess *s;
	uint32_t id;
	int idx;          /* the handle slot being closed */
	sd_handle fh;
	int rc;
};

/* One commit thread; on the pool's exited list once it has returned (or
 * is about to), to be joined by the next submit or by pool_free. */
typedef struct fx_thr {
	struct fx_thr *next;
	pthread_t t;
	struct fx_pool *p;
} fx_thr;

struct fx_pool {
	pthread_mutex_t m;
	pthread_cond_t cv;    /* work queued, or stop */
	fx_job *head, *tail;
	int threads, idle, stop;
	int queued;           /* jobs in the queue */
	fx_thr *exited;       /* threads that ended, not joined yet */
};

/* ------------------------------------------------------------ the pool */

static void job_done(fx_job *j)
{
	fx_sess *s = j->s;
	uint64_t one = 1;
	pthread_mutex_lock(&s->jm);
	j->next = s->jdone;
	s->jdone = j;
	pthread_cond_broadcast(&s->jcv);
	pthread_mutex_unlock(&s->jm);
	/* wake the session thread if it waits in poll (wire.c) */
	if (write(s->efd, &one, sizeof(one)) < 0) {
		/* the counter is full or the fd is gone: the session also
		 * re-checks its done list every second */
	}
}

static void *pool_main(void *arg)
{
	fx_thr *me = arg;
	fx_pool *p = me->p;
	pthread_mutex_lock(&p->m);
	for (;;) {
		fx_job *j;
		while (p->head == NULL && !p->stop) {
			struct timespec ts;
			int rc;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += POOL_IDLE_MS / 1000;
			p->idle++;
			rc = pthread_cond_timedwait(&p->cv, &p->m, &ts);
			p->idle--;
			if (rc == ETIMEDOUT && p->head == NULL)
				goto out;
		}
		if (p->head == NULL)
			break; /* stop, nothing left */
		j = p->head;
		p->queued--;
		p->head = j->next;
		if (p->head == NULL)
			p->tail = NULL;
		pthread_mutex_unlock(&p->m);
		j->rc = j->s->x->api->handle_close(j->s->x->sess, j->fh);
		job_done(j);
		pthread_mutex_lock(&p->m);
	}
out:
	p->threads--;
	me->next = p->exited;
	p->exited = me;
	pthread_mutex_unlock(&p->m);
	return NULL;
}

/* Join the threads that ended (p->m held: they released it before). */
static void join_exited(fx_pool *p)
{
	while (p->exited) {
		fx_thr *t = p->exited;
		p->exited = t->next;
		pthread_join(t->t, NULL);
		free(t);
	}
}

fx_pool *sd__sftp_pool_new(void)
{
	fx_pool *p = sd_xcalloc(1, sizeof(*p));
	pthread_mutex_init(&p->m, NULL);
	pthread_cond_init(&p->cv, NULL);
	return p;
}

void sd__sftp_pool_free(fx_pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->m);
	p->stop = 1;
	pthread_cond_broadcast(&p->cv);
	while (p->threads > 0 || p->exited) {
		join_exited(p);
		if (p->threads > 0) {
			pthread_mutex_unlock(&p->m);
			sd_sleep_ms(5);
			pthread_mutex_lock(&p->m);
		}
	}
	pthread_mutex_unlock(&p->m);
	pthread_mutex_destroy(&p->m);
	pthread_cond_destroy(&p->cv);
	free(p);
}

/* Queue j; start a thread when none is idle. 0, or -errno when no thread
 * could run it (then the caller runs it itself). */
static int pool_submit(fx_pool *p, fx_job *j)
{
	int rc = 0;
	pthread_mutex_lock(&p->m);
	join_exited(p);
	if (p->queued >= p->idle && p->threads < POOL_MAX) {
		fx_thr *t = sd_xcalloc(1, sizeof(*t));
		t->p = p;
		if (pthread_create(&t->t, NULL, pool_main, t) == 0) {
			p->threads++;
		} else {
			free(t);
			if (p->threads == 0)
				rc = -EAGAIN;
		}
	}
	if (rc == 0) {
		j->next = NULL;
		if (p->tail)
			p->tail->next = j;
		else
			p->head = j;
		p->tail = j;
		p->queued++;
		pthread_cond_signal(&p->cv);
	}
	pthread_mutex_unlock(&p->m);
	return rc;
}

/* ------------------------------------------------------------ sessions */

void sd__sftp_async_init(fx_sess *s)
{
	pthread_mutex_init(&s->jm, NULL);
	pthread_cond_init(&s->jcv, NULL);
	s->efd = -1;
}

/* Send the reply of one finished job and free its slot (session thread). */
static int reply_job(fx_sess *s, fx_job *j)
{
	fx_handle *h = &s->h[j->idx];
	int rc;
	sd__sftp_xfer_line(s, h, j->rc, 0);
	free(h->path);
	free(h->last);
	h->path = NULL;
	h->last = NULL;
	h->fh = 0;
	h->state = H_FREE;
	s->pending--;
	rc = sd__sftp_err(s, j->id, j->rc);
	free(j);
	return rc;
}

int sd__sftp_async_reap(fx_sess *s)
{
	fx_job *list, *next;
	int rc = 0;
	uint64_t v;
	if (s->pending == 0)
		return 0;
	pthread_mutex_lock(&s->jm);
	list = s->jdone;
	s->jdone = NULL;
	pthread_mutex_unlock(&s->jm);
	if (s->efd >= 0 && read(s->efd, &v, sizeof(v)) < 0) {
		/* nothing counted yet (EAGAIN): the list is what matters */
	}
	/* the list is newest first: answer in completion order */
	{
		fx_job *rev = NULL;
		for (; list; list = next) {
			next = list->next;
			list->next = rev;
			rev = list;
		}
		list = rev;
	}
	for (; list; list = next) {
		next = list->next;
		if (reply_job(s, list) < 0)
			rc = -EIO;
	}
	return rc;
}

/* Block until at least one job has finished, then reap. Replies already
 * queued go out first: the client must not wait for answers we hold while
 * we wait (wire.c invariant 2). */
static int wait_one(fx_sess *s)
{
	if (sd__sftp_flush(s) < 0)
		return -EIO;
	pthread_mutex_lock(&s->jm);
	while (s->jdone == NULL)
		pthread_cond_wait(&s->jcv, &s->jm);
	pthread_mutex_unlock(&s->jm);
	return sd__sftp_async_reap(s);
}

int sd__sftp_async_close(fx_sess *s, uint32_t id, int idx)
{
	fx_handle *h = &s->h[idx];
	fx_job *j;
	if (s->x->pool == NULL)
		return 1;
	if (s->efd < 0) {
		s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (s->efd < 0)
			return 1; /* run it here */
	}
	while (s->pending >= ASYNC_MAX) /* A5 */
		if (wait_one(s) < 0)
			return -EIO;
	j = sd_xcalloc(1, sizeof(*j));
	j->s = s;
	j->id = id;
	j->idx = idx;
	j->fh = h->fh;
	if (pool_submit(s->x->pool, j) < 0) {
		free(j);
		return 1;
	}
	h->state = H_CLOSING; /* A3: the slot answers INVALID_HANDLE now */
	s->pending++;
	return 0;
}

/* Do paths a and b (canonical) name the same node, or one a folder
 * holding the other? */
static int related(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	const char *shorter = la <= lb ? a : b, *longer = la <= lb ? b : a;
	size_t n = la <= lb ? la : lb;
	if (strncmp(shorter, longer, n) != 0)
		return 0;
	return longer[n] == '\0' || longer[n] == '/' || (n == 1 && shorter[0] == '/');
}

int sd__sftp_async_settle(fx_sess *s, const char *path)
{
	char canon[SD_PATH_MAX + 1];
	if (s->pending == 0)
		return 0;
	if (s->x->api->resolve(s->x->sess, path, strlen(path), canon, sizeof(canon)) < 0)
		return 0; /* the request itself will answer the bad path */
	for (;;) {
		int i, hit = 0;
		for (i = 0; i < s->nh && !hit; i++)
			hit = s->h[i].state == H_CLOSING && s->h[i].path && related(s->h[i].path, canon);
		if (!hit)
			return 0;
		if (wait_one(s) < 0)
			return -EIO;
	}
}

int sd__sftp_async_drain(fx_sess *s)
{
	int rc = 0;
	while (s->pending > 0)
		if (wait_one(s) < 0)
			rc = -EIO;
	return rc;
}

void sd__sftp_async_end(fx_sess *s)
{
	sd__sftp_async_drain(s);
	if (s->efd >= 0)
		close(s->efd);
	s->efd = -1;
	pthread_mutex_destroy(&s->jm);
	pthread_cond_destroy(&s->jcv);
}
