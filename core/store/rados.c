/*
 * store/rados.c - the rados blob store module (store_rados.so): contents as
 * objects in one Ceph pool (and namespace), through librados directly.
 *
 * Design notes
 * ------------
 * Layout. The head object "<hex>" says that a content is stored: it is
 * written last, in one atomic write op, with the xattrs sd.size (bytes,
 * decimal), sd.sha256 (the address, for fsck without reading) and
 * sd.stripe (0: the bytes are the head's own data; S > 0: the bytes are in
 * the stripe objects "<hex>.0", "<hex>.1" ... of S bytes each, the last
 * shorter). Contents up to rados_inline_max (at most one OSD write) live in
 * the head: one object, one write. Larger ones are striped, so that no
 * object exceeds osd_max_object_size and no write osd_max_write_size
 * (stripes are written in pieces of WRITE_CHUNK).
 *
 * Durability: librados acknowledges a write when every replica has
 * committed it, so place() returns only when the stripes and then the head
 * are durable; a crash before the head leaves stripes without a head,
 * which are not "stored" (stat answers -ENOENT) and which walk() reports
 * as strays for fsck --repair to discard.
 *
 * Remove: the head first (from then on the content is not stored), then
 * its stripes; a stripe left by a crash in between is a stray as above.
 *
 * Errors: librados answers -ENOENT only for a missing object; an OSD or
 * monitor that does not answer within rados_timeout gives -ETIMEDOUT,
 * never -ENOENT (store.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <rados/librados.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store_module.h"
#include "sys.h"
#include "util.h"

#define WRITE_CHUNK (4u << 20)

typedef struct rados_conf {
	char *pool;
	char *ns;
	char *user;
	char *conf;
	char *keyring;
	int64_t stripe_size;
	int64_t inline_max;
	int64_t timeout;
} rados_conf;

#define F(x) offsetof(rados_conf, x)
static const sd_conf_item rados_table[] = {
	{"rados_pool", SD_CONF_STR, F(pool), "", "The pool holding the contents; it must exist. Required."},
	{"rados_namespace", SD_CONF_STR, F(ns), "",
	 "Namespace inside the pool (one data directory per pool and namespace); empty: the default namespace."},
	{"rados_user", SD_CONF_STR, F(user), "admin",
	 "Ceph user (the id, without 'client.'); it needs 'mon allow r' and 'osd allow rwx pool=POOL'."},
	{"rados_conf", SD_CONF_PATH, F(conf), "/etc/ceph/ceph.conf",
	 "ceph.conf naming the monitors (mon_host) and other client settings."},
	{"rados_keyring", SD_CONF_PATH, F(keyring), "",
	 "Keyring holding the user's key; empty: whatever rados_conf says (default /etc/ceph/ceph.client.USER.keyring)."},
	{"rados_stripe_size", SD_CONF_SIZE, F(stripe_size), "64M",
	 "Contents larger than rados_inline_max are split into objects of this size (4M..128M; at most the cluster's osd_max_object_size)."},
	{"rados_inline_max", SD_CONF_SIZE, F(inline_max), "4M",
	 "Contents up to this size are one object, written in one operation (at most 64M, and below the cluster's osd_max_write_size)."},
	{"rados_timeout", SD_CONF_DURATION, F(timeout), "30s",
	 "How long an operation may wait for the monitors or an OSD before it fails (rados_osd_op_timeout, rados_mon_op_timeout, client_mount_timeout)."},
	{NULL, 0, 0, NULL, NULL},
};
#undef F

typedef struct rs {
	sd_store base;
	const sd_store_host *host;
	const rados_conf *cf;
	rados_t cl;
	rados_ioctx_t io;
	int connected, have_io;
} rs;

typedef struct rsrd {
	rs *s;
	char hex[65];
	uint64_t size, stripe;
} rsrd;

static void stripe_name(const char *hex, uint64_t n, char out[96])
{
	snprintf(out, 96, "%s.%" PRIu64, hex, n);
}

/* A decimal xattr of oid: 0, or -errno (-ENOENT: no such object). */
static int xattr_u64(rs *s, const char *oid, const char *name, uint64_t *v)
{
	char buf[32];
	int n = rados_getxattr(s->io, oid, name, buf, sizeof buf - 1);
	if (n < 0)
		return n == -ENODATA ? -EIO : n;
	buf[n] = '\0';
	char *end;
	errno = 0;
	unsigned long long x = strtoull(buf, &end, 10);
	if (errno || end == buf || *end)
		return -EIO;
	*v = x;
	return 0;
}

/* Size and stripe size of a stored content: 0, -ENOENT, -errno. */
static int head(rs *s, const char *hex, uint64_t *size, uint64_t *stripe)
{
	uint64_t sz, st;
	int r = xattr_u64(s, hex, "sd.size", &sz);
	if (r == 0)
		r = xattr_u64(s, hex, "sd.stripe", &st);
	if (r < 0)
		return r;
	if (size)
		*size = sz;
	if (stripe)
		*stripe = st;
	return 0;
}

static int write_head(rs *s, const char *hex, const char *data, size_t len, uint64_t size,
		      uint64_t stripe)
{
	char sz[32], st[32];
	snprintf(sz, sizeof sz, "%" PRIu64, size);
	snprintf(st, sizeof st, "%" PRIu64, stripe);
	rados_write_op_t op = rados_create_write_op();
	if (!op)
		return -ENOMEM;
	rados_write_op_write_full(op, data, len);
	rados_write_op_setxattr(op, "sd.size", sz, strlen(sz));
	rados_write_op_setxattr(op, "sd.stripe", st, strlen(st));
	rados_write_op_setxattr(op, "sd.sha256", hex, 64);
	int r = rados_write_op_operate(op, s->io, hex, NULL, 0);
	rados_release_write_op(op);
	return r;
}

static void remove_stripes(rs *s, const char *hex, uint64_t size, uint64_t stripe)
{
	uint64_t n = stripe ? (size + stripe - 1) / stripe : 0;
	for (uint64_t i = 0; i < n; i++) {
		char name[96];
		stripe_name(hex, i, name);
		int r = rados_remove(s->io, name);
		if (r < 0 && r != -ENOENT)
			s->host->log(SD_LOG_WARN, "rados", "event=stripe_remove_failed object=%s err=\"%s\"",
				     name, strerror(-r));
	}
}

/* Store size bytes from fd (fd >= 0) or buf under hex. */
static int store(rs *s, int fd, const char *buf, uint64_t size, const char *hex)
{
	if (size <= (uint64_t)s->cf->inline_max) {
		char *tmp = NULL;
		if (fd >= 0) {
			tmp = malloc(size ? size : 1);
			if (!tmp)
				return -ENOMEM;
			ssize_t n = sd_sys_pread(fd, tmp, size, 0);
			if (n < 0 || (uint64_t)n != size) {
				free(tmp);
				return n < 0 ? (int)n : -EIO;
			}
			buf = tmp;
		}
		int r = write_head(s, hex, buf, size, size, 0);
		free(tmp);
		return r;
	}
	uint64_t stripe = (uint64_t)s->cf->stripe_size;
	char *chunk = fd >= 0 ? malloc(WRITE_CHUNK) : NULL;
	if (fd >= 0 && !chunk)
		return -ENOMEM;
	int r = 0;
	for (uint64_t off = 0; off < size && r == 0;) {
		uint64_t idx = off / stripe, in = off % stripe;
		uint64_t len = stripe - in;
		if (len > WRITE_CHUNK)
			len = WRITE_CHUNK;
		if (len > size - off)
			len = size - off;
		const char *p = buf ? buf + off : chunk;
		if (fd >= 0) {
			ssize_t n = sd_sys_pread(fd, chunk, len, off);
			if (n < 0 || (uint64_t)n != len) {
				r = n < 0 ? (int)n : -EIO;
				break;
			}
		}
		char name[96];
		stripe_name(hex, idx, name);
		r = in == 0 ? rados_write_full(s->io, name, p, len) : rados_write(s->io, name, p, len, in);
		off += len;
	}
	free(chunk);
	if (r == 0)
		r = write_head(s, hex, "", 0, size, stripe);
	if (r < 0) {
		s->host->log(SD_LOG_ERROR, "rados", "event=put_failed object=%s size=%" PRIu64 " err=\"%s\"",
			     hex, size, strerror(-r));
		remove_stripes(s, hex, size, stripe); /* best effort; else strays for fsck */
		return r == -ENOENT ? -EIO : r;
	}
	return 0;
}

static int r_place(sd_store *st, int fd, const char *tmppath, const char *hex, uint64_t size)
{
	(void)tmppath;
	return store((rs *)st, fd, NULL, size, hex);
}

static int r_put(sd_store *st, const void *buf, size_t len, const char *hex)
{
	return store((rs *)st, -1, len ? buf : "", len, hex);
}

static int r_stat(sd_store *st, const char *hex, uint64_t *size)
{
	return head((rs *)st, hex, size, NULL);
}

static int r_info(sd_store *st, const char *hex, uint64_t *size, char sha[65])
{
	rs *s = (rs *)st;
	int r = head(s, hex, size, NULL);
	if (r < 0)
		return r;
	int n = rados_getxattr(s->io, hex, "sd.sha256", sha, 64);
	if (n < 0)
		return n == -ENOENT ? -ENOENT : -EIO;
	sha[n] = '\0';
	return 0;
}

static int r_open(sd_store *st, const char *hex, sd_blobrd **out)
{
	rs *s = (rs *)st;
	uint64_t size, stripe;
	int r = head(s, hex, &size, &stripe);
	if (r < 0)
		return r;
	rsrd *rd = sd_xcalloc(1, sizeof *rd);
	rd->s = s;
	rd->size = size;
	rd->stripe = stripe;
	snprintf(rd->hex, sizeof rd->hex, "%s", hex);
	*out = (sd_blobrd *)rd;
	return 0;
}

static ssize_t r_pread(sd_blobrd *b, void *buf, size_t len, uint64_t off)
{
	rsrd *rd = (rsrd *)b;
	if (off >= rd->size || len == 0)
		return 0;
	if (len > rd->size - off)
		len = (size_t)(rd->size - off);
	size_t done = 0;
	while (done < len) {
		uint64_t at = off + done;
		char name[96];
		const char *oid = rd->hex;
		uint64_t in = at;
		size_t want = len - done;
		if (rd->stripe) {
			stripe_name(rd->hex, at / rd->stripe, name);
			oid = name;
			in = at % rd->stripe;
			if (want > rd->stripe - in)
				want = (size_t)(rd->stripe - in);
		}
		if (want > WRITE_CHUNK * 4)
			want = WRITE_CHUNK * 4;
		int n = rados_read(rd->s->io, oid, (char *)buf + done, want, in);
		if (n < 0) {
			rd->s->host->log(SD_LOG_ERROR, "rados", "event=read_failed object=%s err=\"%s\"", oid,
					 strerror(-n));
			/* the content was stat'ed: a missing part is damage, not "not stored" */
			return n == -ENOENT ? -EIO : n;
		}
		done += (size_t)n;
		if ((size_t)n < want)
			break; /* shorter than its size: the engine calls it damaged */
	}
	return (ssize_t)done;
}

static int r_fd(sd_blobrd *b, int *fd, uint64_t *base)
{
	(void)b, (void)fd, (void)base;
	return -ENOTSUP;
}

static void r_close(sd_blobrd *b)
{
	free(b);
}

static int r_remove(sd_store *st, const char *hex)
{
	rs *s = (rs *)st;
	uint64_t size, stripe;
	int r = head(s, hex, &size, &stripe);
	if (r < 0)
		return r;
	r = rados_remove(s->io, hex);
	if (r < 0)
		return r;
	remove_stripes(s, hex, size, stripe);
	return 0;
}

static int r_discard(sd_store *st, const char *name)
{
	int r = rados_remove(((rs *)st)->io, name);
	return r == -ENOENT ? 0 : r;
}

static int r_walk(sd_store *st, sd_store_walk_cb cb, void *arg)
{
	rs *s = (rs *)st;
	rados_list_ctx_t ls;
	int r = rados_nobjects_list_open(s->io, &ls);
	if (r < 0)
		return r;
	const char *oid;
	int stop = 0;
	while (!stop && (r = rados_nobjects_list_next(ls, &oid, NULL, NULL)) == 0) {
		size_t n = strlen(oid);
		int lower = 1;
		for (size_t i = 0; i < 64 && i < n; i++)
			lower = lower && !(oid[i] >= 'A' && oid[i] <= 'F');
		if (n == 64 && lower && sd_is_sha256_hex(oid)) {
			stop = cb(arg, oid, oid);
			continue;
		}
		/* a stripe: part of its head's content, or a stray without one */
		if (n > 65 && oid[64] == '.' && lower && strspn(oid + 65, "0123456789") == n - 65) {
			char hex[65];
			memcpy(hex, oid, 64);
			hex[64] = '\0';
			if (sd_is_sha256_hex(hex)) {
				int h = head(s, hex, NULL, NULL);
				if (h == 0)
					continue;
				if (h != -ENOENT) {
					r = h;
					break;
				}
			}
		}
		stop = cb(arg, NULL, oid);
	}
	rados_nobjects_list_close(ls);
	return r == -ENOENT || stop ? 0 : r;
}

static int r_space(sd_store *st, int *pct, uint64_t *total, uint64_t *avail, uint64_t *bfree)
{
	rs *s = (rs *)st;
	struct rados_cluster_stat_t cs;
	int r = rados_cluster_stat(s->cl, &cs);
	if (r < 0)
		return r;
	if (pct)
		*pct = cs.kb ? (int)((cs.kb - cs.kb_avail) * 100 / cs.kb) : 0;
	if (total)
		*total = cs.kb * 1024;
	if (avail)
		*avail = cs.kb_avail * 1024;
	if (bfree)
		*bfree = cs.kb_avail * 1024;
	return 0;
}

static void r_destroy(sd_store *st)
{
	rs *s = (rs *)st;
	if (!s)
		return;
	if (s->have_io)
		rados_ioctx_destroy(s->io);
	if (s->cl)
		rados_shutdown(s->cl);
	free(s);
}

static const sd_store_ops rados_ops = {
	.name = "rados",
	.place = r_place,
	.put = r_put,
	.stat = r_stat,
	.open = r_open,
	.pread = r_pread,
	.fd = r_fd,
	.close = r_close,
	.remove = r_remove,
	.discard = r_discard,
	.walk = r_walk,
	.space = r_space,
	.destroy = r_destroy,
	.info = r_info,
	.flags = SD_STORE_REMOTE,
};

static sd_store *rados_module_open(const sd_store_host *host, const void *conf, char *err,
				   size_t errlen)
{
	const rados_conf *cf = conf;
	if (!*cf->pool) {
		snprintf(err, errlen, "rados_pool: required with blob_store = rados");
		return NULL;
	}
	if (cf->stripe_size < (4 << 20) || cf->stripe_size > (128 << 20)) {
		snprintf(err, errlen, "rados_stripe_size: out of range (4M..128M)");
		return NULL;
	}
	if (cf->inline_max < 0 || cf->inline_max > (64 << 20)) {
		snprintf(err, errlen, "rados_inline_max: out of range (0..64M)");
		return NULL;
	}
	if (cf->timeout < 1000) {
		snprintf(err, errlen, "rados_timeout: at least 1s");
		return NULL;
	}
	if (access(cf->conf, R_OK) != 0) {
		snprintf(err, errlen, "rados_conf: cannot read %s: %s", cf->conf, strerror(errno));
		return NULL;
	}
	if (*cf->keyring && access(cf->keyring, R_OK) != 0) {
		snprintf(err, errlen, "rados_keyring: cannot read %s: %s", cf->keyring, strerror(errno));
		return NULL;
	}
	rs *s = sd_xcalloc(1, sizeof *s);
	s->base.ops = &rados_ops;
	s->host = host;
	s->cf = cf;
	char *name = sd_xasprintf("client.%s", cf->user);
	int r = rados_create2(&s->cl, "ceph", name, 0);
	free(name);
	if (r < 0) {
		s->cl = NULL;
		snprintf(err, errlen, "rados_user: cannot create a cluster handle for '%s': %s", cf->user,
			 strerror(-r));
		goto fail;
	}
	r = rados_conf_read_file(s->cl, cf->conf);
	if (r < 0) {
		snprintf(err, errlen, "rados_conf: cannot use %s: %s", cf->conf, strerror(-r));
		goto fail;
	}
	if (*cf->keyring)
		rados_conf_set(s->cl, "keyring", cf->keyring);
	char secs[32];
	snprintf(secs, sizeof secs, "%" PRId64, (cf->timeout + 999) / 1000);
	rados_conf_set(s->cl, "rados_osd_op_timeout", secs);
	rados_conf_set(s->cl, "rados_mon_op_timeout", secs);
	rados_conf_set(s->cl, "client_mount_timeout", secs);
	/* the daemon's own log, not the client's default log file */
	rados_conf_set(s->cl, "log_file", "");
	rados_conf_set(s->cl, "log_to_stderr", "false");
	rados_conf_set(s->cl, "err_to_stderr", "false");
	r = rados_connect(s->cl);
	if (r < 0) {
		if (r == -EACCES || r == -EPERM || r == -ENOENT || r == -EINVAL)
			snprintf(err, errlen,
				 "rados_keyring: the monitors refused user '%s' (%s): check rados_user and its key",
				 cf->user, strerror(-r));
		else
			snprintf(err, errlen, "rados_conf: cannot reach the monitors named in %s: %s", cf->conf,
				 strerror(-r));
		goto fail;
	}
	s->connected = 1;
	r = rados_ioctx_create(s->cl, cf->pool, &s->io);
	if (r < 0) {
		snprintf(err, errlen, r == -ENOENT ? "rados_pool: pool '%s' does not exist"
						   : "rados_pool: cannot open pool '%s': %s",
			 cf->pool, strerror(-r));
		goto fail;
	}
	s->have_io = 1;
	if (*cf->ns)
		rados_ioctx_set_namespace(s->io, cf->ns);
	/* access: a stat of an object that is not there answers -ENOENT
	 * only when the user may read the pool */
	uint64_t psize;
	time_t pm;
	r = rados_stat(s->io, "storaged-probe", &psize, &pm);
	if (r < 0 && r != -ENOENT) {
		snprintf(err, errlen, "rados_user: '%s' cannot read pool '%s': %s", cf->user, cf->pool,
			 strerror(-r));
		goto fail;
	}
	host->log(SD_LOG_INFO, "rados", "event=open pool=%s namespace=\"%s\" user=%s", cf->pool, cf->ns,
		  cf->user);
	return &s->base;
fail:
	r_destroy(&s->base);
	return NULL;
}

const sd_store_module storaged_store_module = {
	.abi = SD_STORE_ABI,
	.signature = SD_STORE_SIGNATURE,
	.name = "rados",
	.description = "Contents as objects <sha256> (striped above rados_inline_max as <sha256>.N) in one "
		       "pool of a Ceph cluster, through librados. See docs/backends.md.",
	.conf_table = rados_table,
	.conf_size = sizeof(rados_conf),
	.open = rados_module_open,
};
