/*
 * fuzz_sftp_packet.c - libFuzzer harness for the SFTP request decoder
 * (frontends/sftp/wire.c): a packet body is read the way each request
 * type reads it (ids, strings, 64-bit offsets, the attribute block with its
 * extended pairs), and the reader must never go past the body, whatever
 * the lengths inside claim.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

/* wire.c settles a path's pending CLOSE jobs (async.c) before it hands the
 * path on; the harness runs no session and no pool, so nothing is pending. */
int sd__sftp_async_settle(fx_sess *s, const char *path)
{
	(void)s;
	(void)path;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	fx_rd r = {.p = data + 1, .n = size - 1, .off = 0, .bad = 0};
	fx_attr a;
	uint32_t n;
	switch (data[0] % 8) {
	case 0: /* OPEN: id, path, pflags, attrs */
		(void)sd__sftp_rd_u32(&r);
		(void)sd__sftp_rd_str(&r, &n);
		(void)sd__sftp_rd_u32(&r);
		sd__sftp_rd_attrs(&r, &a);
		break;
	case 1: /* SETSTAT / FSETSTAT: id, path or handle, attrs */
		(void)sd__sftp_rd_u32(&r);
		(void)sd__sftp_rd_str(&r, &n);
		sd__sftp_rd_attrs(&r, &a);
		break;
	case 2: /* READ / WRITE: id, handle, offset, length or data */
		(void)sd__sftp_rd_u32(&r);
		(void)sd__sftp_rd_str(&r, &n);
		(void)sd__sftp_rd_u64(&r);
		(void)sd__sftp_rd_str(&r, &n);
		break;
	case 3: /* RENAME / SYMLINK: id, two paths */
		(void)sd__sftp_rd_u32(&r);
		(void)sd__sftp_rd_str(&r, &n);
		(void)sd__sftp_rd_str(&r, &n);
		break;
	case 4: { /* EXTENDED: id, name, then strings and numbers */
		(void)sd__sftp_rd_u32(&r);
		const unsigned char *nm = sd__sftp_rd_str(&r, &n);
		if (nm)
			(void)sd__sftp_str_is(nm, n, "check-file-handle");
		while (!r.bad && r.off < r.n)
			(void)sd__sftp_rd_str(&r, &n);
		break;
	}
	case 5: /* INIT: version, then extension pairs */
		(void)sd__sftp_rd_u32(&r);
		while (!r.bad && r.off < r.n) {
			(void)sd__sftp_rd_str(&r, &n);
			(void)sd__sftp_rd_str(&r, &n);
		}
		break;
	default: /* attribute blocks back to back */
		while (!r.bad && r.off < r.n)
			sd__sftp_rd_attrs(&r, &a);
		break;
	}
	if (r.off > r.n)
		abort();
	return 0;
}
