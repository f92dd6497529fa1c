/*
 * zip.c - a ZIP archive written as a stream (the folder of a share link,
 * links.c): headers are produced as the entries come, file bytes pass
 * through untouched (method 0, "stored": no temp copy, no second read, and
 * most files worth sharing are compressed already), and the sizes and CRC
 * of each file follow it in a data descriptor, so nothing needs to be
 * known before the bytes are sent. A leaf: no engine, no hreq.
 *
 * Format (APPNOTE 6.3.x): per entry a local header (flag bit 3: sizes in
 * the data descriptor; bit 11: UTF-8 names), the data, a data descriptor;
 * then the central directory and the end record. ZIP64 (extra field 1,
 * 8-byte sizes in the descriptor, the ZIP64 end record and locator) is
 * used for an entry of 4 GiB or more, an offset past 4 GiB, or more than
 * 65534 entries, and for everything when force_zip64 is set (tests).
 * Folders are entries "name/" of size 0 with no descriptor, so empty
 * folders survive. Times are the DOS form of the mtime in UTC.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "teams.h"

#define U32MAX 0xffffffffu

typedef struct zent {
	char *name;
	int dir, z64;
	uint32_t crc;
	uint64_t size, offset;
	uint16_t dtime, ddate;
	uint32_t mode;
} zent;

struct http_zip {
	zent *e;
	size_t n, cap;
	uint64_t off; /* bytes of the archive so far */
	int force64;
	int open; /* the last entry is a file whose data is being written */
};

http_zip *sd__http_zip_new(int force_zip64)
{
	http_zip *z = sd_xcalloc(1, sizeof *z);
	z->force64 = force_zip64;
	return z;
}

void sd__http_zip_free(http_zip *z)
{
	if (!z)
		return;
	for (size_t i = 0; i < z->n; i++)
		free(z->e[i].name);
	free(z->e);
	free(z);
}

static void le16(sd_buf *b, unsigned v)
{
	unsigned char p[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
	sd_buf_append(b, p, 2);
}

static void le32(sd_buf *b, uint32_t v)
{
	unsigned char p[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
			      (unsigned char)(v >> 24)};
	sd_buf_append(b, p, 4);
}

static void le64(sd_buf *b, uint64_t v)
{
	le32(b, (uint32_t)v);
	le32(b, (uint32_t)(v >> 32));
}

static void dos_time(int64_t mtime, uint16_t *t, uint16_t *d)
{
	time_t tt = (time_t)(mtime > 315532800 ? mtime : 315532800); /* DOS time starts in 1980 */
	struct tm tm;
	if (!gmtime_r(&tt, &tm) || tm.tm_year + 1900 > 2107) {
		*t = 0;
		*d = (1 << 5) | 1; /* 1980-01-01 */
		return;
	}
	*t = (uint16_t)((tm.tm_hour << 11) | (tm.tm_min << 5) | (tm.tm_sec / 2));
	*d = (uint16_t)(((tm.tm_year - 80) << 9) | ((tm.tm_mon + 1) << 5) | tm.tm_mday);
}

uint64_t sd__http_zip_entry(http_zip *z, const char *name, int dir, uint64_t size, int64_t mtime,
			    uint32_t mode, sd_buf *out)
{
	size_t start = out->len;
	if (z->n == z->cap) {
		z->cap = z->cap ? z->cap * 2 : 64;
		z->e = sd_xrealloc(z->e, z->cap * sizeof *z->e);
	}
	zent *e = &z->e[z->n++];
	memset(e, 0, sizeof *e);
	size_t nl = strlen(name);
	e->name = sd_xmalloc(nl + 2);
	memcpy(e->name, name, nl + 1);
	if (dir && (nl == 0 || name[nl - 1] != '/')) {
		e->name[nl++] = '/';
		e->name[nl] = '\0';
	}
	e->dir = dir;
	e->size = dir ? 0 : size;
	e->offset = z->off;
	e->mode = mode & 07777;
	e->z64 = !dir && (z->force64 || size >= U32MAX);
	dos_time(mtime, &e->dtime, &e->ddate);
	le32(out, 0x04034b50);
	le16(out, e->z64 ? 45 : 20);
	le16(out, dir ? 0x0800 : 0x0808); /* UTF-8 names; sizes after the data */
	le16(out, 0);                     /* stored */
	le16(out, e->dtime);
	le16(out, e->ddate);
	le32(out, 0); /* crc: in the descriptor */
	le32(out, e->z64 ? U32MAX : 0);
	le32(out, e->z64 ? U32MAX : 0);
	le16(out, (unsigned)nl);
	le16(out, e->z64 ? 20 : 0);
	sd_buf_append(out, e->name, nl);
	if (e->z64) {
		le16(out, 0x0001);
		le16(out, 16);
		le64(out, 0);
		le64(out, 0);
	}
	z->off += out->len - start;
	z->open = !dir;
	return e->z64;
}

void sd__http_zip_data_end(http_zip *z, uint32_t crc, uint64_t size, sd_buf *out)
{
	if (!z->open || z->n == 0)
		return;
	zent *e = &z->e[z->n - 1];
	size_t start = out->len;
	e->crc = crc;
	e->size = size;
	z->off += size; /* the data itself, written by the caller */
	le32(out, 0x08074b50);
	le32(out, crc);
	if (e->z64) {
		le64(out, size);
		le64(out, size);
	} else {
		le32(out, (uint32_t)size);
		le32(out, (uint32_t)size);
	}
	z->off += out->len - start;
	z->open = 0;
}

void sd__http_zip_finish(http_zip *z, sd_buf *out)
{
	uint64_t cd_start = z->off;
	size_t start = out->len;
	for (size_t i = 0; i < z->n; i++) {
		zent *e = &z->e[i];
		int big_size = e->z64 || e->size >= U32MAX;
		int big_off = z->force64 || e->offset >= U32MAX;
		unsigned extra = (big_size ? 16 : 0) + (big_off ? 8 : 0);
		size_t nl = strlen(e->name);
		le32(out, 0x02014b50);
		le16(out, (3 << 8) | 45); /* made by: Unix, 4.5 */
		le16(out, e->z64 || big_off ? 45 : 20);
		le16(out, e->dir ? 0x0800 : 0x0808);
		le16(out, 0);
		le16(out, e->dtime);
		le16(out, e->ddate);
		le32(out, e->crc);
		le32(out, big_size ? U32MAX : (uint32_t)e->size);
		le32(out, big_size ? U32MAX : (uint32_t)e->size);
		le16(out, (unsigned)nl);
		le16(out, extra ? extra + 4 : 0);
		le16(out, 0); /* comment */
		le16(out, 0); /* disk */
		le16(out, 0); /* internal attributes */
		uint32_t unix_mode = (e->dir ? 040000u : 0100000u) | (e->mode ? e->mode : 0644);
		le32(out, (unix_mode << 16) | (e->dir ? 0x10 : 0));
		le32(out, big_off ? U32MAX : (uint32_t)e->offset);
		sd_buf_append(out, e->name, nl);
		if (extra) {
			le16(out, 0x0001);
			le16(out, extra);
			if (big_size) {
				le64(out, e->size);
				le64(out, e->size);
			}
			if (big_off)
				le64(out, e->offset);
		}
	}
	uint64_t cd_size = out->len - start;
	uint64_t end_off = cd_start + cd_size;
	int z64 = z->force64 || z->n >= 0xffff || cd_start >= U32MAX || cd_size >= U32MAX;
	if (z64) {
		le32(out, 0x06064b50);
		le64(out, 44);
		le16(out, (3 << 8) | 45);
		le16(out, 45);
		le32(out, 0);
		le32(out, 0);
		le64(out, z->n);
		le64(out, z->n);
		le64(out, cd_size);
		le64(out, cd_start);
		le32(out, 0x07064b50);
		le32(out, 0);
		le64(out, end_off);
		le32(out, 1);
	}
	le32(out, 0x06054b50);
	le16(out, 0);
	le16(out, 0);
	le16(out, z64 ? 0xffff : (unsigned)z->n);
	le16(out, z64 ? 0xffff : (unsigned)z->n);
	le32(out, z64 ? U32MAX : (uint32_t)cd_size);
	le32(out, z64 ? U32MAX : (uint32_t)cd_start);
	le16(out, 0);
	z->off += out->len - start;
}

uint32_t sd__http_zip_crc(uint32_t crc, const void *data, size_t len)
{
	while (len > 0) {
		uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;
		crc = (uint32_t)crc32((uLong)crc, data, n);
		data = (const char *)data + n;
		len -= n;
	}
	return crc;
}
