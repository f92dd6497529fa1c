/*
 * store.h - the blob store interface: where content lives, by address.
 *
 * The engine names content by its SHA-256 (64 lowercase hex digits, "hex"
 * below) and keeps every fact about it (size, references, last use) in
 * SQLite. A store only keeps bytes under addresses. The first
 * implementation is the sharded local directory (store/local.c); S3 and
 * RADOS come later behind the same table.
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
} sd_store_ops;

/* Every implementation starts its state with this. */
struct sd_store {
	const sd_store_ops *ops;
};

/* The sharded local directory blobs/ab/cd/<hex> under dir (created if
 * missing), with its lock file blobs/.lock. durable: fsync renames and new
 * directories. NULL with a reason in err. */
sd_store *sd_store_local_open(const char *dir, int durable, char *err, size_t errlen);

#endif
