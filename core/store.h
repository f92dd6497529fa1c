/*
 * store.h - the blob store interface: where content lives, by address.
 *
 * The engine names content by its SHA-256 (64 lowercase hex digits, "hex"
 * below) and keeps every fact about it (size, references, last use) in
 * SQLite. A store only keeps bytes under addresses. The first
 * implementation is the sharded local directory (store/local.c); remote
 * back ends (S3, RADOS) are loadable modules (store_module.h) that the
 * engine always sees through store/remote.c, which adds the stripe lock,
 * the local read cache and the readers' read-ahead.
 *
 * Durability contract: place() and put() return success only when the
 * content is durable in the store (for the local store: file fsync'd,
 * renamed into its shard, shard directory fsync'd, when the engine runs
 * with durability = full). The engine writes the SQLite row that names an
 * address only after that (internal.h I2), and removes the row before it
 * removes the content (I3).
 *
 * Locking contract (I3): lock(hex) excludes, for one stripe of addresses,
 * the engine's commit of that address from the cleaner's removal of it,
 * also across processes sharing the store (storagectl beside the daemon).
 * place(), put() and remove() are called with the lock held.
 *
 * Readers: open() gives a reader of one stored content; pread() reads at
 * any offset from any thread; fd() gives a descriptor for sendfile only
 * when the content is a plain local file (else -ENOTSUP).
 *
 * Errors: -ENOENT means "not stored" and nothing else; a back end that
 * cannot tell (service unreachable, access refused) returns another
 * -errno (-EIO, -EACCES, -ETIMEDOUT ...), never -ENOENT, so that the
 * engine never takes an outage for a missing content.
 */
#ifndef SD_STORE_H
#define SD_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct sd_store sd_store;
typedef struct sd_blobrd sd_blobrd;

/* walk() reports every object: hex is its address, or NULL for something
 * in the store that is not a well-formed address (a stray), with name
 * saying where it is (for messages and for discard()). Nonzero stops. */
typedef int (*sd_store_walk_cb)(void *arg, const char *hex, const char *name);

typedef struct sd_store_ops {
	const char *name; /* "local" */
	/* Make the finished temp file (fd, O_RDWR, already fsync'd when the
	 * engine is durable; tmppath in the engine's tmp dir) the content of
	 * hex. 0: placed, the temp file is consumed; 1: hex was already
	 * stored, the temp file is untouched (the caller drops it); -errno. */
	int (*place)(sd_store *s, int fd, const char *tmppath, const char *hex, uint64_t size);
	/* Store len bytes whose address is hex. 0 placed, 1 already stored,
	 * -errno. */
	int (*put)(sd_store *s, const void *buf, size_t len, const char *hex);
	/* 0 when hex is stored (*size set if size), -ENOENT when not, -errno. */
	int (*stat)(sd_store *s, const char *hex, uint64_t *size);
	/* A reader of hex: 0 and *out, -ENOENT when not stored, -errno. */
	int (*open)(sd_store *s, const char *hex, sd_blobrd **out);
	/* Up to len bytes at off; fewer only at the end. -errno on failure. */
	ssize_t (*pread)(sd_blobrd *r, void *buf, size_t len, uint64_t off);
	/* The content as a local file: *fd (owned by the reader) at *base.
	 * -ENOTSUP when the store cannot offer one. */
	int (*fd)(sd_blobrd *r, int *fd, uint64_t *base);
	void (*close)(sd_blobrd *r);
	/* Remove hex (lock held). 0, or -ENOENT when it was not there. */
	int (*remove)(sd_store *s, const char *hex);
	/* Remove a stray that walk() reported by name. */
	int (*discard)(sd_store *s, const char *name);
	int (*walk)(sd_store *s, sd_store_walk_cb cb, void *arg);
	/* The stripe lock for hex: a token >= 0 for unlock, or -errno. */
	int (*lock)(sd_store *s, const char *hex);
	void (*unlock)(sd_store *s, int token);
	/* Space of the medium: used percent (0-100), total bytes, bytes
	 * still writable (avail), and free bytes including any reserve
	 * (bfree, >= avail). Each may be NULL. 0 or -errno. */
	int (*space)(sd_store *s, int *pct, uint64_t *total, uint64_t *avail, uint64_t *bfree);
	void (*destroy)(sd_store *s);
	/* Optional (NULL when the back end keeps no checksums): the size and
	 * SHA-256 (64 hex + NUL) that the back end recorded when hex was
	 * stored (S3 object metadata, a RADOS xattr), so that fsck can check
	 * a content without reading it. 0, -ENOENT, or -errno. */
	int (*info)(sd_store *s, const char *hex, uint64_t *size, char sha[65]);
	unsigned flags; /* SD_STORE_* */
} sd_store_ops;

/* The contents are not local files (S3, RADOS): readers have no fd, the
 * cleaner's disk usage is the cache's and store_capacity's (core.c). */
#define SD_STORE_REMOTE 0x1u

/* Every implementation starts its state with this. */
struct sd_store {
	const sd_store_ops *ops;
};

/* The sharded local directory blobs/ab/cd/<hex> under dir (created if
 * missing), with its lock file blobs/.lock. durable: fsync renames and new
 * directories. NULL with a reason in err. */
sd_store *sd_store_local_open(const char *dir, int durable, char *err, size_t errlen);

/* What the engine tells the remote wrapper (store/remote.c). */
typedef struct sd_remote_opts {
	const char *blob_dir;   /* data_dir/blobs: the stripe lock file, and
				 * contents left there before a migration */
	const char *cache_dir;  /* the read cache (created if missing) */
	uint64_t cache_size;    /* 0: no cache */
	const char *tmp_dir;    /* spool of reads too large to cache */
	int fill;               /* 1: reads fill the cache (the daemon); 0:
				 * hits only (storagectl beside it) */
	int durable;
} sd_remote_opts;

/* Wrap a remote back end (a module's store; lock and unlock unused) into
 * the store the engine uses: stripe locks on blob_dir/.lock (the local
 * store's, so storagectl and the daemon exclude each other whatever back
 * end each has open), the read cache, read-ahead readers, and contents
 * still in blob_dir found and removed there too. release(arg) runs after
 * inner's destroy (the module's unload). NULL with a reason in err; then
 * inner has been destroyed and release called. */
sd_store *sd_store_remote_wrap(sd_store *inner, const sd_remote_opts *o,
			       void (*release)(void *arg), void *arg, char *err, size_t errlen);

#endif
