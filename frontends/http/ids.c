/*
 * ids.c - FastDFS-style file IDs:
 *   POST /api/v1/upload[?ext=]   body = the file  -> {"file_id","url",...}
 *   GET  /f/<file_id>            the file (public with public_ids = yes)
 *
 * An ID is "g1/M00/<ab>/<cd>/<name>[.<ext>]" where <name> is 32 hex digits:
 * 8 for the owner's user id, 8 for the upload time, 16 random. The file
 * lives at /uploads/<ab>/<cd>/<name>[.<ext>] in the owner's tree, so the ID
 * alone finds owner and path.
 *
 * Invariants:
 *  1. <ab>, <cd> and the 16 random digits come from sd_random_bytes; when
 *     the kernel cannot give randomness the upload is refused (503), never
 *     named from a weaker source (a guessable ID is a readable file under
 *     public_ids).
 *  2. GET /f/ reads through api->open_read_public: the engine, not this
 *     module, opens another user's file, read-only.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

enum MHD_Result sd__http_idupload(struct MHD_Connection *c, hreq *r, const char *tail)
{
	(void)tail;
	http_srv *s = r->srv;
	char ext[24] = "";
	int rc = sd__http_arg(c, "ext", ext, sizeof ext);
	if (rc < 0 || strlen(ext) > 16)
		return sd__http_reply_error(c, r, 400, "bad_request", "ext: 1-16 letters or digits");
	for (char *p = ext; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'Z')))
			return sd__http_reply_error(c, r, 400, "bad_request",
						    "ext: 1-16 letters or digits");
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	}
	if (r->who.uid < 0 || r->who.uid > 0xffffffffLL)
		return sd__http_reply_error(c, r, 500, "internal", "user id out of range for file ids");
	unsigned char rnd[10];
	if ((rc = sd_random_bytes(rnd, sizeof rnd)) < 0)
		return sd__http_reply_error(c, r, 503, "unavailable",
					    "no randomness to name the file: %s",
					    s->api->strerror(rc));
	char hex[2 * sizeof rnd + 1];
	sd_hex(rnd, sizeof rnd, hex);
	uint32_t now = (uint32_t)s->api->now(s->core);
	/* hex: <ab><cd><16 random> */
	snprintf(r->file_id, sizeof r->file_id, "g1/M00/%.2s/%.2s/%08" PRIx32 "%08" PRIx32 "%s%s%s",
		 hex, hex + 2, (uint32_t)r->who.uid, now, hex + 4, ext[0] ? "." : "", ext);
	sd_buf_reset(&r->path);
	sd_buf_printf(&r->path, "/uploads/%s", r->file_id + 7);
	snprintf(r->shown, sizeof r->shown, "%s", r->path.data);
	r->up_flags = SD_UP_PARENTS | SD_UP_EXCL;
	return sd__http_upload_start(c, r);
}

static int hexn(const char *s, int n)
{
	for (int i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
			return 0;
	}
	return 1;
}

enum MHD_Result sd__http_fileid_get(struct MHD_Connection *c, hreq *r, const char *id)
{
	http_srv *s = r->srv;
	/* g1/M00/ab/cd/<32 hex>[.ext] */
	size_t n = strlen(id);
	const char *name = id + 13;
	if (n < 13 + 32 || n > 13 + 32 + 17 || strncmp(id, "g1/M00/", 7) != 0 || !hexn(id + 7, 2) ||
	    id[9] != '/' || !hexn(id + 10, 2) || id[12] != '/' || !hexn(name, 32))
		return sd__http_reply_error(c, r, 404, "not_found", "no such file id");
	const char *ext = name + 32;
	if (*ext) {
		if (*ext != '.' || !ext[1])
			return sd__http_reply_error(c, r, 404, "not_found", "no such file id");
		for (const char *p = ext + 1; *p; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
				return sd__http_reply_error(c, r, 404, "not_found", "no such file id");
	}
	char uidhex[9];
	memcpy(uidhex, name, 8);
	uidhex[8] = '\0';
	int64_t uid = (int64_t)strtoull(uidhex, NULL, 16);
	/* without public_ids the route authenticated the request: only the
	 * owner and admins may read it */
	if (!s->conf->public_ids &&
	    (!r->authed || (r->who.uid != uid && !(r->who.flags & SD_USER_ADMIN))))
		return sd__http_reply_error(c, r, 404, "not_found", "no such file id");
	sd_buf_reset(&r->path);
	sd_buf_printf(&r->path, "/uploads/%s", id + 7);
	snprintf(r->shown, sizeof r->shown, "%s", r->path.data);
	return sd__http_serve_file(c, r, r->path.data, uid);
}
