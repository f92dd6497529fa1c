/*
 * xlog.c - the logs operators feed to tools (docs/logs.md): the access
 * log of request-per-line front ends and the transfer log of every front
 * end (log_access, log_transfer in storaged.h), written through log.c so
 * they follow log_format and are reopened on SIGHUP.
 *
 * Access line (into access_log when it is set, else the main log at info):
 *   event=access proto=http addr=A user=U method=M path="P" status=S
 *   bytes=OUT bytes_in=IN ms=D agent="UA"
 * Transfer line (main log, info):
 *   event=transfer user=U addr=A proto=P cmd=C path="P" bytes=N seconds=S
 *   result=ok|failed|aborted dedup=0|1 [reason="..."]
 * xferlog line (the wu-ftpd format vsftpd writes with xferlog_std_format):
 *   Wed Dec  3 17:30:50 2026 1 127.0.0.1 1024 /a_b.txt b _ i r alice sftp 0 * c
 *   (local time, seconds, host, bytes, path with blanks as '_', binary,
 *   no action, in/out, real/anonymous user, user, service, no RFC 931, *,
 *   complete/incomplete)
 * Client-chosen strings are quoted (sd_kv_quote) in kv lines, so a path or
 * a user agent cannot forge a key; the logger escapes control characters.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "log.h"

#define Q_MAX (SD_PATH_MAX * 2 + 1)

static const char *or_dash(const char *s)
{
	return s && *s ? s : "-";
}

void sd__log_access(sd_core *c, const sd_access_rec *a)
{
	(void)c;
	char qp[Q_MAX], qa[1024], qu[2 * SD_USERNAME_MAX + 1];
	sd_kv_quote(or_dash(a->target), qp, sizeof qp);
	sd_kv_quote(or_dash(a->agent), qa, sizeof qa);
	sd_kv_quote(or_dash(a->user), qu, sizeof qu);
	const char *proto = or_dash(a->proto);
	char ms[32];
	snprintf(ms, sizeof ms, "%.3f", (double)a->us / 1000.0);
#define ACCESS_FMT "event=access proto=%s addr=%s user=\"%s\" method=%s path=\"%s\" status=%u " \
		   "bytes=%llu bytes_in=%llu ms=%s agent=\"%s\""
#define ACCESS_ARGS proto, or_dash(a->addr), qu, or_dash(a->method), qp, a->status, \
		    (unsigned long long)a->bytes_out, (unsigned long long)a->bytes_in, ms, qa
	if (sd_log_file_is_open(SD_LOGF_ACCESS))
		sd_log_to(SD_LOGF_ACCESS, SD_LOG_INFO, proto, ACCESS_FMT, ACCESS_ARGS);
	else
		sd_log(SD_LOG_INFO, proto, ACCESS_FMT, ACCESS_ARGS);
#undef ACCESS_FMT
#undef ACCESS_ARGS
}

/* The path of an xferlog line: one field, so blanks become '_' (as
 * wu-ftpd and vsftpd write it). */
static void xfer_name(const char *in, char *out, size_t n)
{
	size_t o = 0;
	for (; in && *in && o + 1 < n; in++) {
		unsigned char ch = (unsigned char)*in;
		out[o++] = (ch <= 0x20 || ch == 0x7f) ? '_' : (char)ch;
	}
	out[o] = '\0';
	if (!o)
		snprintf(out, n, "-");
}

void sd__log_transfer(sd_core *c, const sd_xfer_rec *x)
{
	(void)c;
	char qp[Q_MAX], qr[512];
	sd_kv_quote(or_dash(x->path), qp, sizeof qp);
	const char *result = or_dash(x->result);
	int ok = strcmp(result, "ok") == 0;
	if (x->reason && *x->reason)
		sd_kv_quote(x->reason, qr, sizeof qr);
	sd_log(SD_LOG_INFO, or_dash(x->proto),
	       "event=transfer user=%s addr=%s proto=%s cmd=%s path=\"%s\" bytes=%llu "
	       "seconds=%.3f result=%s dedup=%d%s%s%s",
	       or_dash(x->user), or_dash(x->addr), or_dash(x->proto), or_dash(x->cmd), qp,
	       (unsigned long long)x->bytes, (double)x->ms / 1000.0, result, x->dedup ? 1 : 0,
	       x->reason && *x->reason ? " reason=\"" : "", x->reason && *x->reason ? qr : "",
	       x->reason && *x->reason ? "\"" : "");
	if (!sd_log_file_is_open(SD_LOGF_XFER))
		return;
	char when[64], name[SD_PATH_MAX + 1], line[SD_PATH_MAX + 256];
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	strftime(when, sizeof when, "%a %b %e %H:%M:%S %Y", &tm);
	xfer_name(x->path, name, sizeof name);
	char user[SD_USERNAME_MAX + 1];
	xfer_name(x->user, user, sizeof user);
	snprintf(line, sizeof line, "%s %lld %s %llu %s b _ %c %c %s %s 0 * %c", when,
		 (long long)((x->ms + 500) / 1000), or_dash(x->addr),
		 (unsigned long long)x->bytes, name, x->incoming ? 'i' : 'o',
		 x->anonymous ? 'a' : 'r', user, or_dash(x->proto), ok ? 'c' : 'i');
	sd_log_raw(SD_LOGF_XFER, line);
}
