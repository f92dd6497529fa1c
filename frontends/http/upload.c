/*
 * upload.c - storing files over HTTP (DESIGN paths 1 and 2):
 *   streamed uploads  PUT /api/v1/fs/<path>, POST /api/v1/upload (ids.c):
 *                     the body goes chunk by chunk into api->upload_write
 *                     (module.c feeds it), committed at its end;
 *   instant upload    by header (X-Checksum-SHA256 + Content-Length on an
 *                     upload) and by POST /api/v1/instant (JSON, with a
 *                     proof of possession when the engine asks for one).
 *
 * Invariants:
 *  1. An upload is visible only after upload_commit succeeds; every other
 *     ending (error, client gone, checksum mismatch) ends in upload_abort,
 *     in module.c's body intake or request completion.
 *  2. A request carrying Content-Range is never stored as the whole file
 *     (that loses the rest of it): it is a partial PUT (partial.c), or
 *     refused (ID uploads).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"

static void lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'F')
			*s = (char)(*s - 'A' + 'a');
}

/* Per-front-end upload counter. Deduplication and bytes saved are counted
 * by the engine (storaged_uploads_deduplicated_total, ..._bytes_saved_total)
 * for every front end; counting them here too would double them in sums. */
static void count_upload(hreq *r, const char *kind)
{
	http_srv *s = r->srv;
	char labels[64];
	snprintf(labels, sizeof labels, "frontend=\"http\",kind=\"%s\"", kind);
	s->api->metric_add(s->core, "storaged_frontend_uploads_total", labels, 1);
}

/* JSON answer for a stored file: an ID upload's, or the file's metadata. */
static json_t *stored_json(hreq *r, const sd_stat *st, int dedup, int instant)
{
	if (r->file_id[0]) {
		char url[200];
		snprintf(url, sizeof url, "/f/%s", r->file_id);
		return json_pack("{s:s, s:s, s:I, s:s, s:b}", "file_id", r->file_id, "url", url,
				 "size", (json_int_t)st->size, "sha256", st->sha256, "dedup", dedup);
	}
	json_t *o = sd_json_stat(r->shown, NULL, st);
	json_object_set_new(o, "dedup", json_boolean(dedup));
	json_object_set_new(o, "instant", json_boolean(instant));
	return o;
}

/* Answer for a stored file (PUT, instant, ID upload). */
static enum MHD_Result reply_stored(struct MHD_Connection *c, hreq *r, unsigned status,
				    const sd_stat *st, int dedup, int instant)
{
	uint64_t len = 0;
	struct MHD_Response *resp = sd__http_json_response(stored_json(r, st, dedup, instant), &len);
	if (!resp)
		return MHD_NO;
	char etag[SD_SHA256_HEX + 2];
	snprintf(etag, sizeof etag, "\"%s\"", st->sha256);
	MHD_add_response_header(resp, "ETag", etag);
	if (instant)
		MHD_add_response_header(resp, "X-Instant-Upload", "1");
	if (r->file_id[0]) {
		char loc[200];
		snprintf(loc, sizeof loc, "/f/%s", r->file_id);
		MHD_add_response_header(resp, "Location", loc);
	}
	return sd__http_queue(c, r, status, resp, len);
}

/* The end of the body an instant hit reads and drops: the answer an
 * instant hit gets at once with Expect: 100-continue, headers included
 * (http_finish_fn). */
static enum MHD_Result finish_instant_discarded(struct MHD_Connection *c, hreq *r)
{
	return reply_stored(c, r, (unsigned)r->ans_status, &r->inst_st, 1, 1);
}

/* The end of a streamed upload's body: commit (http_finish_fn). */
static enum MHD_Result finish_upload(struct MHD_Connection *c, hreq *r)
{
	http_srv *s = r->srv;
	if (!r->up)
		return sd__http_reply_error(c, r, 500, "internal", "upload lost");
	sd_stat st;
	int dedup = 0;
	sd_upload *up = r->up;
	r->up = NULL;
	int rc = s->api->upload_commit(up, r->expect_sha[0] ? r->expect_sha : NULL, &st, &dedup);
	if (rc < 0) {
		if (rc == -SD_ECHECKSUM)
			return sd__http_reply_error(c, r, 400, "checksum_mismatch",
						    "the content does not match X-Checksum-SHA256");
		return sd__http_reply_errno(c, r, rc);
	}
	count_upload(r, "stream");
	r->xfer_dedup = dedup;
	return reply_stored(c, r, r->existed ? 200 : 201, &st, dedup, 0);
}

enum MHD_Result sd__http_upload_start(struct MHD_Connection *c, hreq *r)
{
	http_srv *s = r->srv;
	/* A body with Content-Range is a piece of the file (curl -C N -T sends
	 * the tail): a partial PUT (partial.c), never the whole file. An ID
	 * upload makes a new file, which has no pieces to apply a range to. */
	const char *crange = sd__http_hdr(c, MHD_HTTP_HEADER_CONTENT_RANGE);
	if (crange && r->file_id[0])
		return sd__http_reply_error(c, r, 400, "partial_put",
					    "Content-Range on an ID upload: send the whole file");
	if (crange)
		return sd__http_partial_put(c, r, crange);
	const char *sum = sd__http_hdr(c, "X-Checksum-SHA256");
	if (sum) {
		if (!sd_is_sha256_hex(sum))
			return sd__http_reply_error(c, r, 400, "bad_checksum",
						    "X-Checksum-SHA256 must be 64 hex digits");
		snprintf(r->expect_sha, sizeof r->expect_sha, "%s", sum);
		lower(r->expect_sha);
	}
	const char *cl = sd__http_hdr(c, MHD_HTTP_HEADER_CONTENT_LENGTH);
	int64_t clen = -1;
	if (cl) {
		char *end;
		long long v = strtoll(cl, &end, 10);
		if (*end || v < 0)
			return sd__http_reply_error(c, r, 400, "bad_request", "bad Content-Length");
		clen = v;
	}
	sd_stat old;
	int rc = s->api->stat(r->sess, r->path.data, &old);
	if (rc == 0 && old.kind == SD_KIND_DIR)
		return sd__http_reply_error(c, r, 409, "is_a_directory", "the path is a directory");
	r->existed = rc == 0;

	if (r->expect_sha[0] && clen >= 0) {
		sd_challenge ch;
		sd_stat st;
		rc = s->api->instant_begin(r->sess, r->path.data, r->up_flags, r->expect_sha,
					   (uint64_t)clen, &ch, &st);
		if (rc == 0) {
			count_upload(r, "instant");
			s->api->log(s->core, SD_LOG_INFO, HTTP_SRC,
				    "event=instant_upload user=%s path=%s size=%llu via=header",
				    r->who.user, r->shown, (unsigned long long)st.size);
			const char *expect = sd__http_hdr(c, "Expect");
			if (clen == 0 || (expect && strcasecmp(expect, "100-continue") == 0))
				return reply_stored(c, r, r->existed ? 200 : 201, &st, 1, 1);
			/* The body is on its way: read and drop it, then answer,
			 * so the connection stays usable. */
			r->state = RQ_BODY;
			r->body = BODY_DISCARD;
			r->finish = finish_instant_discarded;
			r->ans_status = r->existed ? 200 : 201;
			r->inst_st = st;
			return MHD_YES;
		}
		if (rc != -SD_ECHALLENGE && rc != -SD_ESENDDATA)
			return sd__http_reply_errno(c, r, rc);
	}
	/* Before "100 Continue": a body the disk cannot hold (less the
	 * engine's disk_reserve) is refused now, not after gigabytes. */
	if (clen > 0) {
		sd_fsinfo fi;
		if (s->api->fsinfo(r->sess, &fi) == 0 && (uint64_t)clen > fi.disk_avail)
			return sd__http_reply_error(c, r, 507, "disk_full",
						    "the upload (%lld bytes) is larger than the space "
						    "left on the server (%llu bytes)",
						    (long long)clen, (unsigned long long)fi.disk_avail);
	}
	rc = s->api->upload_begin(r->sess, r->path.data, r->up_flags, 0, 0644, &r->up);
	if (rc < 0) {
		r->up = NULL;
		return sd__http_reply_errno(c, r, rc);
	}
	/* refused before the body when it cannot fit: the quota of the tree
	 * it goes to (the user's, or a shared folder's) */
	int64_t room = s->api->upload_room(r->up);
	if (room >= 0 && clen > room) {
		s->api->upload_abort(r->up);
		r->up = NULL;
		return sd__http_reply_error(c, r, 507, "quota_exceeded",
					    "the upload would exceed the quota (%lld bytes left for it)",
					    (long long)room);
	}
	r->state = RQ_BODY;
	r->body = BODY_UPLOAD;
	r->finish = finish_upload;
	r->xfer = 1;
	return MHD_YES;
}

/* ------------------------------------------------------ instant upload */

/* The JSON body of POST /api/v1/instant has arrived (http_finish_fn). */
static enum MHD_Result instant_finish(struct MHD_Connection *c, hreq *r)
{
	http_srv *s = r->srv;
	json_error_t jerr;
	json_t *j = r->json.len ? json_loadb(r->json.data, r->json.len, 0, &jerr) : NULL;
	if (!j || !json_is_object(j)) {
		json_decref(j);
		return sd__http_reply_error(c, r, 400, "bad_json", "body must be a JSON object");
	}
	const char *path = json_string_value(json_object_get(j, "path"));
	const char *sha = json_string_value(json_object_get(j, "sha256"));
	json_t *jsize = json_object_get(j, "size");
	const char *nonce = json_string_value(json_object_get(j, "nonce"));
	const char *proof = json_string_value(json_object_get(j, "proof"));
	int parents = json_is_true(json_object_get(j, "parents"));
	enum MHD_Result ret;
	if (!path || !sha || !sd_is_sha256_hex(sha) || !json_is_integer(jsize) ||
	    json_integer_value(jsize) < 0) {
		ret = sd__http_reply_error(c, r, 400, "bad_request",
					   "need path (string), sha256 (64 hex) and size (integer >= 0)");
		goto out;
	}
	if (strchr(path, '\\') || strlen(path) > SD_PATH_MAX) {
		ret = sd__http_reply_error(c, r, 400, "bad_path", "bad path");
		goto out;
	}
	sd_buf_reset(&r->path);
	sd_buf_printf(&r->path, "%s%s", path[0] == '/' ? "" : "/", path);
	if (sd__http_show_path(c, r, &ret) < 0)
		goto out;
	char sum[SD_SHA256_HEX];
	snprintf(sum, sizeof sum, "%s", sha);
	lower(sum);
	uint64_t size = (uint64_t)json_integer_value(jsize);
	unsigned flags = parents ? SD_UP_PARENTS : 0;
	sd_stat st;
	int rc;
	if (nonce || proof) {
		if (!nonce || !proof) {
			ret = sd__http_reply_error(c, r, 400, "bad_request",
						   "a proof needs both nonce and proof");
			goto out;
		}
		rc = s->api->instant_prove(r->sess, r->path.data, flags, sum, size, nonce, proof,
					   &st);
	} else {
		sd_challenge ch;
		rc = s->api->instant_begin(r->sess, r->path.data, flags, sum, size, &ch, &st);
		if (rc == -SD_ECHALLENGE) {
			json_t *ranges = json_array();
			for (int i = 0; i < ch.nranges && i < SD_CHALLENGE_MAX; i++)
				json_array_append_new(ranges, json_pack("[I,I]", (json_int_t)ch.off[i],
									(json_int_t)ch.len[i]));
			ret = sd__http_reply_json(c, r, 200,
						  json_pack("{s:s, s:o}", "nonce", ch.nonce,
							    "ranges", ranges));
			goto out;
		}
	}
	if (rc == -SD_ESENDDATA)
		ret = sd__http_reply_error(c, r, 404, "send_data",
					   "content unknown here: send the data");
	else if (rc == -SD_EPROOF)
		ret = sd__http_reply_error(c, r, 403, "bad_proof",
					   "wrong or stale proof of possession");
	else if (rc < 0)
		ret = sd__http_reply_errno(c, r, rc);
	else {
		count_upload(r, "instant");
		s->api->log(s->core, SD_LOG_INFO, HTTP_SRC,
			    "event=instant_upload user=%s path=%s size=%llu via=%s", r->who.user,
			    r->shown, (unsigned long long)st.size, nonce ? "proof" : "api");
		ret = reply_stored(c, r, 201, &st, 1, 1);
	}
out:
	json_decref(j);
	return ret;
}

enum MHD_Result sd__http_instant(struct MHD_Connection *c, hreq *r, const char *tail)
{
	(void)c;
	(void)tail;
	return sd__http_want_json(r, instant_finish);
}
