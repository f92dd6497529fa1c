/*
 * ftp_conf.c - the [ftp] section: its key table (which the core parses and
 * docs/configuration.md is generated from) and the checks of its values.
 *
 * A bad value stops start-up with a message naming [ftp] and the reason
 * (CONVENTIONS 8); nothing is corrected silently.
 */
#include "ftp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

const sd_conf_item ftp_conf_table[] = {
	{"max_clients", SD_CONF_INT, offsetof(ftp_conf, max_clients), "200",
	 "Most simultaneous FTP sessions; more are answered 421 and closed."},
	{"max_startups", SD_CONF_STR, offsetof(ftp_conf, max_startups), "10:30:100",
	 "Connections not logged in yet, as OpenSSH's MaxStartups start:rate:full: from start on a new one is refused (421) with probability rate%, rising to 100% at full; keep full below max_clients so that clients that never log in cannot take every slot."},
	{"login_grace_time", SD_CONF_DURATION, offsetof(ftp_conf, login_grace_time), "30s",
	 "A connection not logged in this long after it was accepted is closed (421)."},
	{"max_per_ip", SD_CONF_INT, offsetof(ftp_conf, max_per_ip), "20",
	 "Most simultaneous sessions from one client address."},
	{"idle_timeout", SD_CONF_DURATION, offsetof(ftp_conf, idle_timeout), "5m",
	 "Close a control connection idle this long (421)."},
	{"data_timeout", SD_CONF_DURATION, offsetof(ftp_conf, data_timeout), "60s",
	 "Give up a data connection that makes no progress this long."},
	{"pasv_min_port", SD_CONF_INT, offsetof(ftp_conf, pasv_min_port), "0",
	 "Lowest passive data port (0 with pasv_max_port 0: any free port)."},
	{"pasv_max_port", SD_CONF_INT, offsetof(ftp_conf, pasv_max_port), "0",
	 "Highest passive data port."},
	{"pasv_address", SD_CONF_STR, offsetof(ftp_conf, pasv_address), "",
	 "IPv4 address (or host name) advertised in PASV replies, for NAT; empty: the control connection's local address."},
	{"active_enabled", SD_CONF_BOOL, offsetof(ftp_conf, active_enabled), "yes",
	 "Allow active mode (PORT/EPRT)."},
	{"allow_foreign_data", SD_CONF_BOOL, offsetof(ftp_conf, allow_foreign_data), "no",
	 "Allow data connections to/from an address other than the control peer (FXP); off prevents bounce attacks."},
	{"tls_cert", SD_CONF_PATH, offsetof(ftp_conf, tls_cert), "",
	 "PEM certificate (chain) for FTPS; empty disables AUTH TLS."},
	{"tls_key", SD_CONF_PATH, offsetof(ftp_conf, tls_key), "",
	 "PEM private key for tls_cert."},
	{"implicit_tls_listen", SD_CONF_STR, offsetof(ftp_conf, implicit_tls_listen), "",
	 "ADDR:PORT of an implicit FTPS listener (TLS from the first byte, e.g. 127.0.0.1:990); empty: none."},
	{"require_tls_login", SD_CONF_BOOL, offsetof(ftp_conf, require_tls_login), "no",
	 "Refuse USER/PASS before AUTH TLS."},
	{"require_tls_data", SD_CONF_BOOL, offsetof(ftp_conf, require_tls_data), "no",
	 "Refuse data transfers without PROT P."},
	{"tls_require_reuse", SD_CONF_BOOL, offsetof(ftp_conf, tls_require_reuse), "no",
	 "Refuse TLS data connections that do not resume a known TLS session."},
	{"anonymous", SD_CONF_BOOL, offsetof(ftp_conf, anonymous), "no",
	 "Allow USER anonymous/ftp (any password), read-only, in anonymous_user's tree."},
	{"anonymous_user", SD_CONF_STR, offsetof(ftp_conf, anonymous_user), "",
	 "Account whose tree anonymous sessions see (read-only)."},
	{"fallback_charset", SD_CONF_STR, offsetof(ftp_conf, fallback_charset), "",
	 "iconv charset (e.g. GB18030) for clients sending names that are not UTF-8; empty: refuse such names."},
	{"bandwidth_limit", SD_CONF_SIZE, offsetof(ftp_conf, bandwidth_limit), "0",
	 "Bytes per second per user over all the user's FTP transfers; 0 = unlimited."},
	{"max_line", SD_CONF_INT, offsetof(ftp_conf, max_line), "4096",
	 "Longest accepted command line in bytes (longer lines get 500)."},
	{"max_login_failures", SD_CONF_INT, offsetof(ftp_conf, max_login_failures), "3",
	 "Failed PASS attempts before the session is closed."},
	{"banner", SD_CONF_STR, offsetof(ftp_conf, banner), "storaged FTP server ready.",
	 "Text of the 220 greeting."},
	{NULL, 0, 0, NULL, NULL},
};

int ftp_conf_error(ftp_server *srv, const char *fmt, ...)
{
	sd_buf b = SD_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	sd_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	srv->api->log(srv->core, SD_LOG_ERROR, FTP_SRC, "event=config_error section=ftp msg=\"%s\"",
		      b.data ? b.data : "");
	sd_buf_free(&b);
	return -SD_ECONFIG;
}

int ftp_conf_check(ftp_server *srv)
{
	const ftp_conf *conf = srv->conf;
	if (conf->max_clients < 1 || conf->max_clients > 100000)
		return ftp_conf_error(srv, "max_clients must be 1..100000");
	if (conf->max_per_ip < 1)
		return ftp_conf_error(srv, "max_per_ip must be at least 1");
	if (sd_startups_parse(conf->max_startups, &srv->startups) < 0)
		return ftp_conf_error(srv, "max_startups must be start:rate:full (1 <= start <= full, "
					   "rate 0..100) or one number");
	if (conf->login_grace_time < 1000 || conf->login_grace_time > INT32_MAX)
		return ftp_conf_error(srv, "login_grace_time must be 1s..24 days");
	if (conf->max_line < 512 || conf->max_line > 65536)
		return ftp_conf_error(srv, "max_line must be 512..65536");
	if (conf->idle_timeout < 1000 || conf->data_timeout < 1000)
		return ftp_conf_error(srv, "idle_timeout and data_timeout must be at least 1s");
	if (conf->idle_timeout > INT32_MAX || conf->data_timeout > INT32_MAX)
		return ftp_conf_error(srv, "idle_timeout and data_timeout must be under 24 days");
	if (conf->max_login_failures < 1)
		return ftp_conf_error(srv, "max_login_failures must be at least 1");
	if (conf->pasv_min_port < 0 || conf->pasv_max_port > 65535 ||
	    conf->pasv_min_port > conf->pasv_max_port ||
	    (conf->pasv_max_port > 0 && conf->pasv_min_port < 1024))
		return ftp_conf_error(srv, "pasv_min_port..pasv_max_port must be a range within 1024..65535");
	if (conf->bandwidth_limit < 0)
		return ftp_conf_error(srv, "bandwidth_limit must not be negative");
	if (conf->pasv_address && *conf->pasv_address) {
		struct addrinfo hints = {0}, *res = NULL;
		hints.ai_family = AF_INET;
		hints.ai_socktype = SOCK_STREAM;
		if (getaddrinfo(conf->pasv_address, NULL, &hints, &res) != 0 || !res)
			return ftp_conf_error(srv, "pasv_address '%s' is not an IPv4 address or resolvable name",
					      conf->pasv_address);
		inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, srv->pasv_ip,
			  sizeof srv->pasv_ip);
		freeaddrinfo(res);
	}
	if (conf->fallback_charset && *conf->fallback_charset) {
		iconv_t cd = iconv_open("UTF-8", conf->fallback_charset);
		if (cd == (iconv_t)-1)
			return ftp_conf_error(srv, "fallback_charset '%s' is not known to iconv",
					      conf->fallback_charset);
		iconv_close(cd);
	}
	if (conf->anonymous && (!conf->anonymous_user || !*conf->anonymous_user))
		return ftp_conf_error(srv, "anonymous = yes needs anonymous_user");
	int have_cert = conf->tls_cert && *conf->tls_cert;
	int have_key = conf->tls_key && *conf->tls_key;
	if (have_cert != have_key)
		return ftp_conf_error(srv, "tls_cert and tls_key go together");
	int implicit = conf->implicit_tls_listen && *conf->implicit_tls_listen;
	if ((implicit || conf->require_tls_login || conf->require_tls_data) && !have_cert)
		return ftp_conf_error(srv, "implicit_tls_listen / require_tls_* need tls_cert and tls_key");
	return 0;
}
