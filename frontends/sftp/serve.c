/*
 * serve.c - one SFTP session: INIT/VERSION, then read a packet, dispatch
 * it, until the client leaves. The requests themselves are in ops.c and
 * ext.c, the byte stream in wire.c, the handle table in handles.c.
 *
 * Invariants
 *  1. Every request with a readable id gets exactly one reply, in order,
 *     except that the reply to a CLOSE committing on the module's pool
 *     (async.c) comes when the commit is done, and other replies may
 *     overtake it (v3 matches replies by id; requests about the same file
 *     still wait for it, async.c A3).
 *     A packet too short for an id gets BAD_MESSAGE with id 0; framing is
 *     kept, so the session goes on. Unknown types get OP_UNSUPPORTED.
 *  2. A call that answers -SD_EAUTH (user disabled or removed, password
 *     changed, token revoked, key removed) gets PERMISSION_DENIED
 *     "authentication no longer valid", and the session then ends
 *     (-EKEYREVOKED to the SSH side, which closes the channel).
 *  3. However serving ends, every file still open is abandoned and every
 *     buffer freed before sd__sftp_serve returns.
 *
 * Session states: INIT (waiting for SSH_FXP_INIT) --VERSION sent--> SERVING
 *   --client EOF / idle / stop / protocol error / credentials gone--> END
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "sys.h"
#include "util.h"

#define SFTP_V3 3u

/* One request. Returns 0 to go on, -errno to end the session. */
static int dispatch(fx_sess *s, uint8_t type, uint32_t id, fx_rd *r)
{
	switch (type) {
	case SSH_FXP_OPEN: return sd__sftp_op_open(s, id, r);
	case SSH_FXP_CLOSE: return sd__sftp_op_close(s, id, r);
	case SSH_FXP_READ: return sd__sftp_op_read(s, id, r);
	case SSH_FXP_WRITE: return sd__sftp_op_write(s, id, r);
	case SSH_FXP_LSTAT:
	case SSH_FXP_STAT: return sd__sftp_op_stat(s, id, r);
	case SSH_FXP_FSTAT: return sd__sftp_op_fstat(s, id, r);
	case SSH_FXP_SETSTAT: return sd__sftp_op_setstat(s, id, r);
	case SSH_FXP_FSETSTAT: return sd__sftp_op_fsetstat(s, id, r);
	case SSH_FXP_OPENDIR: return sd__sftp_op_opendir(s, id, r);
	case SSH_FXP_READDIR: return sd__sftp_op_readdir(s, id, r);
	case SSH_FXP_REMOVE: return sd__sftp_op_remove(s, id, r);
	case SSH_FXP_MKDIR: return sd__sftp_op_mkdir(s, id, r);
	case SSH_FXP_RMDIR: return sd__sftp_op_rmdir(s, id, r);
	case SSH_FXP_REALPATH: return sd__sftp_op_realpath(s, id, r);
	case SSH_FXP_RENAME: return sd__sftp_op_rename(s, id, r, 0);
	case SSH_FXP_READLINK:
	case SSH_FXP_SYMLINK:
		return sd__sftp_status(s, id, SSH_FX_OP_UNSUPPORTED, "symbolic links are not supported");
	case SSH_FXP_EXTENDED: return sd__sftp_extended(s, id, r);
	default:
		return sd__sftp_status(s, id, SSH_FX_OP_UNSUPPORTED, "unknown request type");
	}
}

/* INIT -> SERVING: SSH_FXP_INIT, answered with VERSION 3 and the extension
 * list. 0, -EPROTO (anything else came first) or an I/O error. */
static int begin(fx_sess *s)
{
	uint8_t type;
	fx_rd r;
	uint32_t ver;
	fx_wr w;
	int rc = sd__sftp_next_packet(s, &type, &r);
	if (rc != 0)
		return rc < 0 ? rc : -EPROTO;
	ver = sd__sftp_rd_u32(&r);
	if (type != SSH_FXP_INIT || r.bad)
		return -EPROTO;
	sd__sftp_consume(s);
	sd__sftp_wr_begin_noid(&w, s, SSH_FXP_VERSION);
	sd__sftp_wr_u32(&w, SFTP_V3);
	sd__sftp_ext_advertise(&w);
	s->x->api->log(s->x->core, SD_LOG_DEBUG, "sftp",
		       "event=sftp_init user=%s client_version=%" PRIu32, s->x->user, ver);
	if ((rc = sd__sftp_send(s, &w, 0)) < 0)
		return rc;
	return sd__sftp_flush(s);
}

/* The debug lines at the end: totals, and the three request types that
 * took longest (for profiling). */
static void log_stats(fx_sess *s)
{
	const sftp_ctx *x = s->x;
	char b[160];
	int k, i, len = 0;
	x->api->log(x->core, SD_LOG_DEBUG, "sftp",
		    "event=sftp_stats user=%s requests=%" PRIu64 " bytes_in=%" PRIu64
		    " bytes_out=%" PRIu64 " engine_ms=%" PRId64 " wait_ms=%" PRId64,
		    x->user, s->reqs, s->bytes_in, s->bytes_out, s->us_engine / 1000,
		    s->us_wait / 1000);
	b[0] = '\0';
	for (k = 0; k < 3 && len < (int)sizeof(b); k++) {
		int best = -1;
		for (i = 0; i < TYPE_SLOTS; i++)
			if (s->n_type[i] && (best < 0 || s->us_type[i] > s->us_type[best]))
				best = i;
		if (best < 0)
			break;
		len += snprintf(b + len, sizeof(b) - (size_t)len, " type%d=%u/%" PRId64 "ms",
				best == TYPE_SLOTS - 1 ? SSH_FXP_EXTENDED : best, s->n_type[best],
				s->us_type[best] / 1000);
		s->n_type[best] = 0;
	}
	x->api->log(x->core, SD_LOG_DEBUG, "sftp", "event=sftp_profile user=%s%s", x->user, b);
}

int sd__sftp_serve(sftp_ctx *x)
{
	fx_sess s;
	int rc;
	memset(&s, 0, sizeof(s));
	s.x = x;
	sd__sftp_async_init(&s);
	s.in_max = (size_t)x->max_read + PKT_SLACK + 4;
	s.out_max = 2 * ((size_t)x->max_read + PKT_SLACK);
	/* the whole capacity, once, as mappings of their own: pages cost only
	 * once written, and an idle session gives them back (wire.c
	 * invariant 5) */
	s.in.cap = s.in_max + 1;
	s.out.cap = s.out_max + 1;
	s.in.data = sd_sys_map(s.in.cap);
	s.out.data = sd_sys_map(s.out.cap);
	if (s.in.data == NULL || s.out.data == NULL) {
		/* no memory: refuse the session like any allocation failure would */
		sd_sys_unmap(s.in.data, s.in.cap);
		sd_sys_unmap(s.out.data, s.out.cap);
		sd__sftp_async_end(&s);
		return -ENOMEM;
	}
	s.last_io = sd_mono_ms();
	rc = sd__sftp_handles_init(&s, x->max_handles);
	if (rc < 0) /* no randomness for the handle generations: fail closed */
		x->api->log(x->core, SD_LOG_ERROR, "sftp", "event=session_refused user=%s addr=%s "
			    "reason=\"no random bytes: %s\"", x->user, x->addr, x->api->strerror(rc));
	else
		rc = begin(&s);
	while (rc == 0) {
		uint8_t type;
		fx_rd r;
		uint32_t id;
		rc = sd__sftp_next_packet(&s, &type, &r);
		if (rc == 2) {
			/* a CLOSE committing on the pool may have finished */
			rc = sd__sftp_async_reap(&s);
			if (rc == 0)
				rc = sd__sftp_flush(&s);
			if (rc == 0 && s.auth_dead)
				rc = -EKEYREVOKED;
			continue;
		}
		if (rc == 1) {
			rc = -EPROTO;
			break;
		}
		if (rc < 0)
			break;
		id = sd__sftp_rd_u32(&r);
		if (r.bad) {
			/* no room for an id: answer with id 0, keep framing */
			rc = sd__sftp_status(&s, 0, SSH_FX_BAD_MESSAGE, "packet too short");
			sd__sftp_consume(&s);
			continue;
		}
		s.reqs++;
		{
			int64_t t0 = sd__sftp_mono_us();
			rc = dispatch(&s, type, id, &r);
			int slot = type < TYPE_SLOTS - 1 ? type : TYPE_SLOTS - 1;
			s.us_type[slot] += sd__sftp_mono_us() - t0;
			s.n_type[slot]++;
		}
		sd__sftp_consume(&s);
		s.last_io = sd_mono_ms(); /* a long commit is not idleness */
		if (rc == 0 && s.pending > 0)
			rc = sd__sftp_async_reap(&s);
		if (rc == 0 && s.auth_dead)
			rc = -EKEYREVOKED; /* invariant 2: answered, now end */
	}
	/* invariant 3 and async.c A4: every commit started has finished (its
	 * reply sent if the channel still works) before the slots go */
	if (sd__sftp_async_drain(&s) < 0 && rc == 0)
		rc = -EIO;
	sd__sftp_flush(&s); /* e.g. the answer to a packet that was too long */
	/* the same series as FTP and HTTP (docs/metrics.md): file bytes moved */
	if (s.bytes_in)
		x->api->metric_add(x->core, "storaged_bytes_received_total", "frontend=\"sftp\"",
				   (int64_t)s.bytes_in);
	if (s.bytes_out)
		x->api->metric_add(x->core, "storaged_bytes_sent_total", "frontend=\"sftp\"",
				   (int64_t)s.bytes_out);
	if (rc == -EKEYREVOKED)
		x->api->metric_add(x->core, "storaged_sessions_ended_total",
				   "frontend=\"sftp\",reason=\"credentials\"", 1);
	log_stats(&s);
	sd__sftp_handles_drop(&s);
	sd__sftp_async_end(&s);
	sd_sys_unmap(s.in.data, s.in.cap);
	sd_sys_unmap(s.out.data, s.out.cap);
	free(s.scratch);
	if (rc == -EPIPE)
		rc = 0;
	return rc;
}
