/*
 * net.h - listening sockets and admission control shared by the front ends.
 *
 * A front end that accepts connections itself (FTP, SFTP) uses one
 * sd_listener: it binds, accepts, and counts live connections in total and
 * per client address, so max_clients / max_per_ip mean the same thing in
 * every module. A front end whose library accepts (libmicrohttpd) only
 * binds with sd_tcp_listen and hands the descriptor over.
 *
 * Contract: sd_listener_accept() admits a connection by taking one slot
 * for its address; the caller gives the slot back with sd_listener_leave()
 * exactly once, when the connection ends. A refused connection takes no
 * slot: the caller answers it in its protocol's words and closes it.
 * Thread-safe: one thread accepts, any thread leaves.
 */
#ifndef SD_NET_H
#define SD_NET_H

#include <stddef.h>
#include <sys/socket.h>

#define SD_ADDR_MAX 64 /* text of an IPv4/IPv6 address plus NUL */

/* Bind and listen on host:port ("" or NULL host = every address; names are
 * resolved). Close-on-exec, SO_REUSEADDR; nonblock sets O_NONBLOCK.
 * Returns the descriptor or -errno with a one-line reason in err. */
int sd_tcp_listen(const char *host, int port, int backlog, int nonblock, char *err,
		  size_t errlen);

/* The numeric address of a socket address ("127.0.0.1", "::1"; IPv4-mapped
 * IPv6 shown as IPv4) into out. */
void sd_addr_text(const struct sockaddr_storage *ss, char *out, size_t n);

typedef struct sd_listener sd_listener;

enum sd_admit {
	SD_ADMIT_OK = 0,     /* counted: call sd_listener_leave at the end */
	SD_ADMIT_FULL = 1,   /* max_total live connections already */
	SD_ADMIT_PER_IP = 2, /* max_per_ip live connections from this address */
};

/* Listen on host:port; max_total and max_per_ip >= 1. NULL with a reason
 * in err when the address cannot be bound. */
sd_listener *sd_listener_open(const char *host, int port, int max_total, int max_per_ip,
			      char *err, size_t errlen);
/* The listening descriptor (to poll on it beside others). */
int sd_listener_fd(const sd_listener *l);
/* Wait up to timeout_ms (-1: forever) for one connection. Returns 0 when
 * none came, 1 with *fd (close-on-exec, owned by the caller), addr (the
 * peer's address text) and *admit (enum sd_admit) set, or -errno. */
int sd_listener_accept(sd_listener *l, int timeout_ms, int *fd, char addr[SD_ADDR_MAX],
		       int *admit);
/* Give back the slot of an admitted connection from addr. */
void sd_listener_leave(sd_listener *l, const char *addr);
/* Live admitted connections now. */
int sd_listener_live(sd_listener *l);
/* Close the socket and free. Call it after every admitted connection has
 * left (sd_listener_leave on a closed listener is a use after free).
 * Limits are per listener: two listeners count separately. */
void sd_listener_close(sd_listener *l);

/* The pre-login budget of a front end (OpenSSH's MaxStartups model):
 * connections not logged in yet. Below `start` every connection is let in;
 * from `start` on a new one is refused with probability rate% rising
 * linearly to 100% at `full`; at `full` every new one is refused. A
 * connection let in counts until sd_startups_leave (at login, or at its
 * end if it never logged in), so never more than `full` are waiting to log
 * in and the rest of the connection slots stay for logged-in sessions.
 * Thread-safe. */
typedef struct sd_startups {
	int start, rate, full;
	int n; /* counted now (atomic) */
} sd_startups;
/* Parse "start:rate:full" or a single "full" (start = full, no random
 * drop): 1 <= start <= full <= 1000000, 0 <= rate <= 100. 0 or -EINVAL. */
int sd_startups_parse(const char *text, sd_startups *out);
/* Count one more connection waiting to log in: 1, or 0 when refused (and
 * not counted). */
int sd_startups_enter(sd_startups *s);
void sd_startups_leave(sd_startups *s);

#endif
