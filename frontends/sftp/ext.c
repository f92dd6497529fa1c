/*
 * ext.c - SSH_FXP_EXTENDED requests: posix-rename@openssh.com,
 * statvfs@openssh.com, fstatvfs@openssh.com, fsync@openssh.com,
 * limits@openssh.com, copy-data, check-file(-handle, -name),
 * expand-path@openssh.com and home-directory (so "cd ~" works in OpenSSH
 * sftp), instant@storaged (instant upload with proof of possession, the
 * same engine path as HTTP's), and the refusal of hardlink@openssh.com. The contract the request functions
 * share is in proto.h.
 */
#include <errno.h>
#include <string.h>

#include "proto.h"
#include "util.h"

/* What the VERSION reply advertises (hardlink@openssh.com is not: it is
 * refused). */
static const char *const ext_list[][2] = {
	{"posix-rename@openssh.com", "1"},
	{"statvfs@openssh.com", "2"},
	{"fstatvfs@openssh.com", "2"},
	{"fsync@openssh.com", "1"},
	{"limits@openssh.com", "1"},
	{"copy-data", "1"},
	{"check-file-handle", "sha256"},
	{"check-file-name", "sha256"},
	{"expand-path@openssh.com", "1"},
	{"home-directory", "1"},
	{"instant@storaged", "1"},
};

void sd__sftp_ext_advertise(fx_wr *w)
{
	size_t i;
	for (i = 0; i < sizeof(ext_list) / sizeof(ext_list[0]); i++) {
		sd__sftp_wr_cstr(w, ext_list[i][0]);
		sd__sftp_wr_cstr(w, ext_list[i][1]);
	}
}

/* statvfs@openssh.com's answer, so that df on an sshfs mount shows what
 * the user has:
 *  - no quota: the disk holding the content, as statvfs(2) sees it there:
 *    f_bfree counts the blocks reserved for root too, f_bavail only what
 *    the server may still write, so df's Used (blocks - bfree) and Avail
 *    (bavail) match df on the server;
 *  - a quota: Size is the quota, Used the user's bytes, Avail what is left
 *    of the quota, each capped by what the disk still has.
 * There is no inode limit: the file counts mirror the block counts. */
static int reply_statvfs(fx_sess *s, uint32_t id)
{
	sd_fsinfo fi;
	const uint64_t bs = 4096;
	uint64_t blocks, bfree, bavail;
	fx_wr w;
	int rc = s->x->api->fsinfo(s->x->sess, &fi);
	if (rc < 0)
		return sd__sftp_err(s, id, rc);
	blocks = fi.disk_total / bs;
	bfree = fi.disk_free / bs;
	bavail = fi.disk_avail / bs;
	if (bfree > blocks)
		bfree = blocks;
	if (bavail > bfree)
		bavail = bfree;
	if (fi.quota > 0) {
		uint64_t left = fi.used < fi.quota ? (uint64_t)(fi.quota - fi.used) / bs : 0;
		blocks = (uint64_t)fi.quota / bs;
		if (left < bfree)
			bfree = left;
		if (left < bavail)
			bavail = left;
	}
	sd__sftp_wr_begin(&w, s, SSH_FXP_EXTENDED_REPLY, id);
	sd__sftp_wr_u64(&w, bs);     /* f_bsize */
	sd__sftp_wr_u64(&w, bs);     /* f_frsize */
	sd__sftp_wr_u64(&w, blocks); /* f_blocks */
	sd__sftp_wr_u64(&w, bfree);  /* f_bfree */
	sd__sftp_wr_u64(&w, bavail); /* f_bavail */
	sd__sftp_wr_u64(&w, blocks); /* f_files: no inode limit; mirror the blocks */
	sd__sftp_wr_u64(&w, bfree);  /* f_ffree */
	sd__sftp_wr_u64(&w, bavail); /* f_favail */
	sd__sftp_wr_u64(&w, 0x73746f72); /* f_fsid */
	sd__sftp_wr_u64(&w, (s->x->readonly ? 1u : 0u) | 2u); /* ST_RDONLY | ST_NOSUID */
	sd__sftp_wr_u64(&w, SD_NAME_MAX);
	return sd__sftp_send(s, &w, id);
}

/* copy-data: whole committed file onto an empty target = a new reference
 * to the same content (api->copy), no data moved; anything else is copied
 * through the handles in max_read chunks. */
static int ext_copy_data(fx_sess *s, uint32_t id, fx_rd *r)
{
	const sd_core_api *api = s->x->api;
	fx_handle *rh = sd__sftp_handle_get(s, r);
	uint64_t roff = sd__sftp_rd_u64(r), rlen = sd__sftp_rd_u64(r);
	fx_handle *wh = sd__sftp_handle_get(s, r);
	uint64_t woff = sd__sftp_rd_u64(r), done = 0;
	sd_stat rst, wst, cur;
	int rc;

	if (r->bad)
		return sd__sftp_status(s, id, SSH_FX_BAD_MESSAGE, "malformed copy-data");
	if (rh == NULL || wh == NULL || rh->state != H_FILE || wh->state != H_FILE)
		return sd__sftp_status(s, id, SSH_FX_INVALID_HANDLE, "invalid handle");
	if (!rh->readable || !wh->writable)
		return sd__sftp_status(s, id, SSH_FX_PERMISSION_DENIED,
				   "copy-data needs a read handle and a write handle");
	if ((rc = sd__sftp_handle_file(s, rh)) < 0 || (rc = sd__sftp_handle_file(s, wh)) < 0)
		return sd__sftp_err(s, id, rc);
	if (rh == wh && (rlen == 0 || (roff < woff + rlen && woff < roff + rlen)))
		return sd__sftp_status(s, id, SSH_FX_FAILURE, "overlapping ranges");

	/* The reference is taken from the path's current content, so it must
	 * still be the version the read handle opened. The target's (empty)
	 * core handle is dropped; sd__sftp_handle_file() reopens it on its next use. */
	if (rh != wh && !rh->writable && roff == 0 && woff == 0 && !(wh->oflags & SD_O_APPEND) &&
	    api->handle_fstat(s->x->sess, rh->fh, &rst) == 0 && rst.sha256[0] != '\0' &&
	    (rlen == 0 || rlen >= rst.size) && api->handle_fstat(s->x->sess, wh->fh, &wst) == 0 &&
	    wst.size == 0 && api->stat(s->x->sess, rh->path, &cur) == 0 &&
	    strcmp(cur.sha256, rst.sha256) == 0) {
		char l1[256], l2[256];
		api->handle_abandon(s->x->sess, wh->fh);
		wh->fh = 0;
		rc = api->copy(s->x->sess, rh->path, wh->path);
		api->log(s->x->core, SD_LOG_DEBUG, "sftp",
			 "event=copy user=%s from=\"%s\" to=\"%s\" mode=reference err=%d", s->x->user,
			 sd__sftp_lp(l1, sizeof(l1), rh->path), sd__sftp_lp(l2, sizeof(l2), wh->path), rc);
		return sd__sftp_err(s, id, rc);
	}

	if (s->scratch == NULL)
		s->scratch = sd_xmalloc(s->x->max_read);
	while (rlen == 0 || done < rlen) {
		size_t chunk = s->x->max_read;
		ssize_t n, m;
		if (rlen != 0 && rlen - done < chunk)
			chunk = (size_t)(rlen - done);
		n = api->handle_pread(s->x->sess, rh->fh, s->scratch, chunk, roff + done);
		if (n < 0)
			return sd__sftp_err(s, id, (int)n);
		if (n == 0)
			break;
		m = api->handle_pwrite(s->x->sess, wh->fh, s->scratch, (size_t)n, woff + done);
		if (m < 0)
			return sd__sftp_err(s, id, (int)m);
		if (m != n)
			return sd__sftp_status(s, id, SSH_FX_FAILURE, "short write");
		done += (uint64_t)n;
	}
	return sd__sftp_ok(s, id);
}

/* check-file (paramiko), check-file-handle, check-file-name: SHA-256 of a
 * whole file, from its stored content address (no hashing here). */
static int ext_check_file(fx_sess *s, uint32_t id, fx_rd *r, int by_name)
{
	char path[SD_PATH_MAX + 1];
	const unsigned char *algs;
	uint32_t alen, bsize, i;
	uint64_t start, length;
	unsigned char digest[32];
	fx_handle *h = NULL;
	sd_stat st;
	fx_wr w;
	int rc, ok = 0;

	if (by_name) {
		if ((rc = sd__sftp_get_path(s, r, id, path, sizeof(path))) != 0)
			return rc < 0 ? rc : 0;
	} else {
		h = sd__sftp_handle_get(s, r);
	}
	algs = sd__sftp_rd_str(r, &alen);
	start = sd__sftp_rd_u64(r);
	length = sd__sftp_rd_u64(r);
	bsize = sd__sftp_rd_u32(r);
	if (r->bad)
		return sd__sftp_status(s, id, SSH_FX_BAD_MESSAGE, "malformed check-file");
	if (by_name) {
		rc = s->x->api->stat(s->x->sess, path, &st);
	} else {
		if (h == NULL || h->state != H_FILE)
			return sd__sftp_status(s, id, SSH_FX_INVALID_HANDLE, "invalid handle");
		if ((rc = sd__sftp_handle_file(s, h)) == 0)
			rc = s->x->api->handle_fstat(s->x->sess, h->fh, &st);
	}
	if (rc < 0)
		return sd__sftp_err(s, id, rc);
	for (i = 0; i < alen;) {
		uint32_t j = i;
		while (j < alen && algs[j] != ',')
			j++;
		if (j - i == 6 && memcmp(algs + i, "sha256", 6) == 0)
			ok = 1;
		i = j + 1;
	}
	if (!ok)
		return sd__sftp_status(s, id, SSH_FX_OP_UNSUPPORTED, "only sha256 is available");
	if (st.kind != SD_KIND_FILE)
		return sd__sftp_status(s, id, SSH_FX_FAILURE, "not a regular file");
	if (start != 0 || (length != 0 && length != st.size) || (bsize != 0 && bsize < st.size))
		return sd__sftp_status(s, id, SSH_FX_OP_UNSUPPORTED,
				   "only the hash of the whole file is available");
	if (st.sha256[0] == '\0')
		return sd__sftp_status(s, id, SSH_FX_FAILURE,
				   "file has uncommitted changes: close or fsync it first");
	if (sd_unhex(st.sha256, digest, sizeof(digest)) < 0)
		return sd__sftp_status(s, id, SSH_FX_FAILURE, "bad stored hash");
	sd__sftp_wr_begin(&w, s, SSH_FXP_EXTENDED_REPLY, id);
	sd__sftp_wr_cstr(&w, "check-file");
	sd__sftp_wr_cstr(&w, "sha256");
	sd__sftp_wr_bytes(&w, digest, sizeof(digest));
	return sd__sftp_send(s, &w, id);
}

/* A NAME reply with one path (v3: long name = name, no attributes), as
 * REALPATH answers. */
static int reply_one_name(fx_sess *s, uint32_t id, const char *path)
{
	fx_wr w;
	sd__sftp_wr_begin(&w, s, SSH_FXP_NAME, id);
	sd__sftp_wr_u32(&w, 1);
	sd__sftp_wr_cstr(&w, path);
	sd__sftp_wr_cstr(&w, path);
	sd__sftp_wr_u32(&w, 0);
	return sd__sftp_send(s, &w, id);
}

/* Is the user part of "~user..." (n bytes at p; 0 = "~" alone) this
 * session's own user? */
static int own_user(fx_sess *s, const char *p, size_t n)
{
	return n == 0 || (strlen(s->x->user) == n && memcmp(p, s->x->user, n) == 0);
}

/* expand-path@openssh.com (scp -s host:~user/x): REALPATH, where
 * sd__sftp_get_path has expanded "~", "~/x" and "~<own name>/x" already;
 * "~<another user>" is nobody's to name: no such user. Every user's home
 * is the root of their own tree, "/". */
static int ext_expand_path(fx_sess *s, uint32_t id, fx_rd *r)
{
	char path[SD_PATH_MAX + 1], canon[SD_PATH_MAX + 1];
	const char *p = path;
	int rc;
	if ((rc = sd__sftp_get_path(s, r, id, path, sizeof(path))) != 0)
		return rc < 0 ? rc : 0;
	if (path[0] == '~') {
		const char *slash = strchr(path, '/');
		size_t ulen = slash ? (size_t)(slash - path - 1) : strlen(path) - 1;
		if (!own_user(s, path + 1, ulen))
			return sd__sftp_status(s, id, SSH_FX_NO_SUCH_FILE, "no such user");
		p = slash ? slash : "/";
	}
	if ((rc = s->x->api->session_check(s->x->sess)) < 0 ||
	    (rc = s->x->api->resolve(s->x->sess, p, strlen(p), canon, sizeof(canon))) < 0)
		return sd__sftp_err(s, id, rc);
	return reply_one_name(s, id, canon);
}

/* home-directory: the home of a user name ("" = the session's user). */
static int ext_home_directory(fx_sess *s, uint32_t id, fx_rd *r)
{
	uint32_t n;
	const unsigned char *name = sd__sftp_rd_str(r, &n);
	int rc;
	if (r->bad)
		return sd__sftp_status(s, id, SSH_FX_BAD_MESSAGE, "malformed home-directory");
	if (!own_user(s, (const char *)name, n))
		return sd__sftp_status(s, id, SSH_FX_NO_SUCH_FILE, "no such user");
	if ((rc = s->x->api->session_check(s->x->sess)) < 0)
		return sd__sftp_err(s, id, rc);
	return reply_one_name(s, id, "/");
}

/* instant@storaged (docs/sftp.md): "I have content sha256 of size bytes
 * for path", optionally with the answer to a challenge:
 *   string path, string sha256 (64 hex), uint64 size [, string nonce,
 *   string proof]
 * Answered with SSH_FXP_EXTENDED_REPLY and a word:
 *   "stored", ATTRS                        the file is made (no data sent)
 *   "challenge", string nonce, uint32 n, n x (uint64 offset, uint64 length)
 *                                          prove possession: send the
 *                                          request again with nonce and
 *                                          proof = hex SHA-256(nonce text ||
 *                                          bytes of each range)
 *   "send-data"                            the server does not hold the
 *                                          content: upload it normally
 * and errors with a STATUS (a wrong or stale proof: PERMISSION_DENIED). */
static int ext_instant(fx_sess *s, uint32_t id, fx_rd *r)
{
	const sd_core_api *api = s->x->api;
	char path[SD_PATH_MAX + 1], sha[SD_SHA256_HEX], nonce[65], proof[SD_SHA256_HEX], lb[256];
	const unsigned char *p, *np = NULL, *pp = NULL;
	uint32_t n, nn = 0, pn = 0;
	uint64_t size;
	sd_challenge ch;
	sd_stat st;
	fx_wr w;
	int rc, i, prove;

	if ((rc = sd__sftp_get_path(s, r, id, path, sizeof(path))) != 0)
		return rc < 0 ? rc : 0;
	p = sd__sftp_rd_str(r, &n);
	size = sd__sftp_rd_u64(r);
	prove = !r->bad && r->off < r->n;
	if (prove) {
		np = sd__sftp_rd_str(r, &nn);
		pp = sd__sftp_rd_str(r, &pn);
	}
	if (r->bad || n != 64 || memchr(p, '\0', n) != NULL)
		return sd__sftp_status(s, id, SSH_FX_BAD_MESSAGE,
				   "malformed instant@storaged: path, sha256 (64 hex), uint64 size"
				   " [, nonce, proof]");
	memcpy(sha, p, 64);
	sha[64] = '\0';
	if (!sd_is_sha256_hex(sha))
		return sd__sftp_status(s, id, SSH_FX_BAD_MESSAGE, "sha256 must be 64 hex digits");
	if (prove) {
		if (nn != 64 || pn != 64) /* the engine refuses them as stale */
			nn = pn = 0;
		memcpy(nonce, np, nn);
		nonce[nn] = '\0';
		memcpy(proof, pp, pn);
		proof[pn] = '\0';
		rc = api->instant_prove(s->x->sess, path, 0, sha, size, nonce, proof, &st);
	} else {
		rc = api->instant_begin(s->x->sess, path, 0, sha, size, &ch, &st);
	}
	api->log(s->x->core, SD_LOG_DEBUG, "sftp",
		 "event=instant user=%s path=\"%s\" size=%llu proof=%d err=%d", s->x->user,
		 sd__sftp_lp(lb, sizeof(lb), path), (unsigned long long)size, prove, rc);
	if (rc == -SD_EPROOF)
		return sd__sftp_status(s, id, SSH_FX_PERMISSION_DENIED,
				   "wrong or stale proof of possession");
	if (rc == -SD_ESENDDATA || rc == -SD_ECHALLENGE || rc == 0) {
		sd__sftp_wr_begin(&w, s, SSH_FXP_EXTENDED_REPLY, id);
		if (rc == -SD_ESENDDATA) {
			sd__sftp_wr_cstr(&w, "send-data");
		} else if (rc == -SD_ECHALLENGE) {
			sd__sftp_wr_cstr(&w, "challenge");
			sd__sftp_wr_cstr(&w, ch.nonce);
			sd__sftp_wr_u32(&w, (uint32_t)ch.nranges);
			for (i = 0; i < ch.nranges && i < SD_CHALLENGE_MAX; i++) {
				sd__sftp_wr_u64(&w, ch.off[i]);
				sd__sftp_wr_u64(&w, ch.len[i]);
			}
		} else {
			api->log(s->x->core, SD_LOG_INFO, "sftp",
				 "event=instant_upload user=%s path=\"%s\" size=%llu via=%s", s->x->user,
				 lb, (unsigned long long)st.size, prove ? "proof" : "held");
			api->metric_add(s->x->core, "storaged_frontend_uploads_total",
					"frontend=\"sftp\",kind=\"instant\"", 1);
			sd__sftp_wr_cstr(&w, "stored");
			sd__sftp_wr_attrs(&w, &st);
		}
		return sd__sftp_send(s, &w, id);
	}
	return sd__sftp_err(s, id, rc);
}

int sd__sftp_extended(fx_sess *s, uint32_t id, fx_rd *r)
{
	uint32_t n;
	const unsigned char *name = sd__sftp_rd_str(r, &n);
	if (r->bad)
		return sd__sftp_status(s, id, SSH_FX_BAD_MESSAGE, "malformed EXTENDED");
	if (sd__sftp_str_is(name, n, "posix-rename@openssh.com"))
		return sd__sftp_op_rename(s, id, r, 1);
	if (sd__sftp_str_is(name, n, "statvfs@openssh.com")) {
		char path[SD_PATH_MAX + 1];
		sd_stat st;
		int rc;
		if ((rc = sd__sftp_get_path(s, r, id, path, sizeof(path))) != 0)
			return rc < 0 ? rc : 0;
		rc = s->x->api->stat(s->x->sess, path, &st);
		if (rc < 0)
			return sd__sftp_err(s, id, rc);
		return reply_statvfs(s, id);
	}
	if (sd__sftp_str_is(name, n, "fstatvfs@openssh.com")) {
		if (sd__sftp_handle_get(s, r) == NULL)
			return sd__sftp_status(s, id, SSH_FX_INVALID_HANDLE, "invalid handle");
		return reply_statvfs(s, id);
	}
	if (sd__sftp_str_is(name, n, "fsync@openssh.com")) {
		fx_handle *h = sd__sftp_handle_get(s, r);
		if (h == NULL || h->state != H_FILE)
			return sd__sftp_status(s, id, SSH_FX_INVALID_HANDLE, "invalid handle");
		if (h->fh == 0 || !h->writable)
			return sd__sftp_ok(s, id); /* nothing uncommitted */
		return sd__sftp_err(s, id, s->x->api->handle_sync(s->x->sess, h->fh));
	}
	if (sd__sftp_str_is(name, n, "limits@openssh.com")) {
		fx_wr w;
		int rc = s->x->api->session_check(s->x->sess);
		if (rc < 0)
			return sd__sftp_err(s, id, rc);
		sd__sftp_wr_begin(&w, s, SSH_FXP_EXTENDED_REPLY, id);
		sd__sftp_wr_u64(&w, (uint64_t)s->x->max_read + PKT_SLACK); /* max packet */
		sd__sftp_wr_u64(&w, s->x->max_read);                        /* max read */
		sd__sftp_wr_u64(&w, s->x->max_read);                        /* max write */
		sd__sftp_wr_u64(&w, (uint64_t)s->x->max_handles);           /* max open handles */
		return sd__sftp_send(s, &w, id);
	}
	if (sd__sftp_str_is(name, n, "copy-data"))
		return ext_copy_data(s, id, r);
	if (sd__sftp_str_is(name, n, "check-file") || sd__sftp_str_is(name, n, "check-file-handle"))
		return ext_check_file(s, id, r, 0);
	if (sd__sftp_str_is(name, n, "check-file-name"))
		return ext_check_file(s, id, r, 1);
	if (sd__sftp_str_is(name, n, "expand-path@openssh.com"))
		return ext_expand_path(s, id, r);
	if (sd__sftp_str_is(name, n, "home-directory"))
		return ext_home_directory(s, id, r);
	if (sd__sftp_str_is(name, n, "instant@storaged"))
		return ext_instant(s, id, r);
	if (sd__sftp_str_is(name, n, "hardlink@openssh.com"))
		return sd__sftp_status(s, id, SSH_FX_OP_UNSUPPORTED,
				   "hard links are not supported by this server");
	return sd__sftp_status(s, id, SSH_FX_OP_UNSUPPORTED, "unsupported extended request");
}

