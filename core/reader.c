/*
 * reader.c - readers (DESIGN path 3): one version of a file, open for
 * reading through the store, whatever the store is.
 *
 * A reader is opened inside a read transaction that sees the node: while
 * that snapshot sees it, its versions hold the blob (refs > 0), so the
 * cleaner cannot have removed the content (I3), and once open the store's
 * reader keeps it readable (an open local file survives an unlink).
 *
 * A reader reads exactly the version's size: bytes past it are never
 * returned, and content that ends early is reported as -SD_ECORRUPT, not
 * as a short file.
 *
 * An inline blob (at most inline_max bytes, in blob_inline) is copied into
 * the reader when it opens, inside the same read transaction: no store, no
 * descriptor (reader_fd says -ENOTSUP and front ends use pread).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "log.h"
#include "sys.h"

struct sd_reader {
	sd_core *c;
	sd_blobrd *b;   /* NULL for an inline blob */
	char *mem;      /* an inline blob's bytes */
	size_t mlen;
	uint64_t size;
	char hex[SD_SHA256_HEX];
};

SD_SQL(q_inline_by_id, "SELECT data FROM blob_inline WHERE blob = ?1");
SD_SQL(q_inline_by_hex, "SELECT i.data FROM blobs b JOIN blob_inline i ON i.blob = b.id "
			"WHERE b.sha256 = ?1");

/* An inline blob's reader from the current row of st (column 0), or -ENOENT
 * when the statement gives no row. Resets st. */
static int open_inline(sd_core *c, sqlite3_stmt *st, const char *hex, uint64_t size,
		       sd_reader **out)
{
	int r = -ENOENT;
	if (sqlite3_step(st) == SQLITE_ROW) {
		const void *data = sqlite3_column_blob(st, 0);
		size_t n = (size_t)sqlite3_column_bytes(st, 0);
		sd_reader *rd = sd_xcalloc(1, sizeof *rd);
		rd->c = c;
		rd->mem = sd_xmalloc(n ? n : 1);
		if (n)
			memcpy(rd->mem, data, n);
		/* stored bytes shorter than the row's size read as damaged */
		rd->size = size;
		rd->mlen = n;
		snprintf(rd->hex, sizeof rd->hex, "%s", hex);
		*out = rd;
		r = 0;
	}
	sqlite3_reset(st);
	return r;
}

static int open_store(sd_core *c, const char *hex, uint64_t size, sd_reader **out)
{
	sd_blobrd *b;
	int r = c->store->ops->open(c->store, hex, &b);
	if (r < 0) {
		sd_log(SD_LOG_ERROR, "reader", "event=blob_missing sha256=%s err=\"%s\"", hex,
		       sd__strerror(r));
		return r == -ENOENT ? -SD_ECORRUPT : r;
	}
	sd_reader *rd = sd_xcalloc(1, sizeof *rd);
	rd->c = c;
	rd->b = b;
	rd->size = size;
	snprintf(rd->hex, sizeof rd->hex, "%s", hex);
	*out = rd;
	return 0;
}

int sd__reader_open_hex(sd_core *c, const char *hex, uint64_t size, sd_reader **out)
{
	sd_dbc *d = sd_db_read_begin(c->db);
	sqlite3_stmt *st = sd_db_stmt(d, &q_inline_by_hex);
	sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
	int r = open_inline(c, st, hex, size, out);
	sd_db_read_end(c->db, d);
	if (r != -ENOENT)
		return r;
	return open_store(c, hex, size, out);
}

int sd__reader_open(sd_core *c, const sd_principal *u, const char *npath, unsigned need,
		    sd_reader **out, sd_stat *st)
{
	sd_node n;
	sd_dbc *d = sd_db_read_begin(c->db);
	int r = sd__tree_lookup(c, d, u, npath, &n);
	if (r == 0 && (n.rights & need) != need)
		r = n.vis ? -EACCES : -ENOENT; /* team.c T6, T7 */
	if (r == 0 && n.kind != SD_KIND_FILE)
		r = -EISDIR;
	if (r == 0 && st) {
		sd__node_to_stat(&n, st);
		st->versions = sd__version_count(d, n.id);
	}
	if (r == 0) {
		sqlite3_stmt *st = sd_db_stmt(d, &q_inline_by_id);
		sqlite3_bind_int64(st, 1, n.blob);
		r = open_inline(c, st, n.sha256, n.size, out);
		if (r == -ENOENT)
			r = open_store(c, n.sha256, n.size, out);
	}
	sd_db_read_end(c->db, d);
	if (r == 0)
		sd__blob_touch(c, n.blob);
	return r;
}

ssize_t sd__reader_pread(sd_reader *r, void *buf, size_t len, uint64_t off)
{
	if (off >= r->size || len == 0)
		return 0;
	size_t want = r->size - off < len ? (size_t)(r->size - off) : len;
	ssize_t got;
	if (r->b) {
		got = r->c->store->ops->pread(r->b, buf, want, off);
	} else {
		got = off >= r->mlen ? 0 : (ssize_t)(r->mlen - off < want ? r->mlen - off : want);
		if (got > 0)
			memcpy(buf, r->mem + off, (size_t)got);
	}
	if (got >= 0 && (size_t)got < want) {
		sd_log(SD_LOG_ERROR, "reader", "event=blob_short sha256=%s size=%llu got_to=%llu",
		       r->hex, (unsigned long long)r->size, (unsigned long long)(off + (uint64_t)got));
		return -SD_ECORRUPT;
	}
	return got;
}

int sd__reader_fd(sd_reader *r, int *fd, uint64_t *base)
{
	if (!r->b)
		return -ENOTSUP;
	return r->c->store->ops->fd(r->b, fd, base);
}

const char *sd__reader_hex(const sd_reader *r)
{
	return r->hex;
}

void sd__empty_hex(char out[SD_SHA256_HEX])
{
	/* SHA-256 of nothing */
	snprintf(out, SD_SHA256_HEX, "%s",
		 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

void sd__reader_close(sd_reader *r)
{
	if (!r)
		return;
	if (r->b)
		r->c->store->ops->close(r->b);
	free(r->mem);
	free(r);
}

int sd__reader_copy_to_fd(sd_reader *r, int fd, uint64_t n)
{
	if (n > r->size)
		return -EINVAL;
	int in;
	uint64_t base;
	if (sd__reader_fd(r, &in, &base) == 0 && base == 0)
		return sd_sys_copy_range(in, fd, n);
	size_t bufsz = 1 << 20;
	char *buf = sd_xmalloc(bufsz);
	uint64_t off = 0;
	int rc = 0;
	while (off < n) {
		size_t want = n - off < bufsz ? (size_t)(n - off) : bufsz;
		ssize_t got = sd__reader_pread(r, buf, want, off);
		if (got <= 0) {
			rc = got < 0 ? (int)got : -SD_ECORRUPT;
			break;
		}
		if ((rc = sd_sys_pwrite(fd, buf, (size_t)got, off)) < 0)
			break;
		off += (uint64_t)got;
	}
	free(buf);
	return rc;
}
