/*
 * random.c - randomness from the kernel, failing closed. See util.h.
 *
 * Everything secret or unguessable (nonces, handle ids, session tokens,
 * PASV port choice) comes from here. There is deliberately no fallback to
 * rand() or the clock: a caller that gets an error refuses what it was
 * about to do.
 */
#include <errno.h>
#include <sys/random.h>

#include "util.h"

int sd_random_bytes(void *buf, size_t n)
{
	unsigned char *p = buf;
	while (n > 0) {
		ssize_t got = getrandom(p, n, 0);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += got;
		n -= (size_t)got;
	}
	return 0;
}

int sd_random_hex(char *out, size_t nbytes)
{
	unsigned char raw[64];
	if (nbytes > sizeof raw)
		return -EINVAL;
	int r = sd_random_bytes(raw, nbytes);
	if (r < 0)
		return r;
	sd_hex(raw, nbytes, out);
	return 0;
}
