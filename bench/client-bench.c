/*
 * client-bench.c - libstoraged timings for bench/client.sh.
 *
 *   client-bench URL USER PASSWORD seqwrite PATH MIB     sequential write, 1 MiB calls
 *   client-bench URL USER PASSWORD seqread PATH          sequential read, 1 MiB calls
 *   client-bench URL USER PASSWORD randread PATH N warm|cold
 *       N random 4 KiB preads; warm: a cache holding the whole file, read
 *       once before timing; cold: 2 pages of 4 KiB (every read goes to the
 *       server).
 * Prints one line "RESULT <mode> <seconds> <bytes-or-ops>".
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storaged-client.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 6)
		return 2;
	sdc_server_opts so = {.url = argv[1], .user = argv[2], .password = argv[3]};
	const char *mode = argv[4], *path = argv[5];
	sdc_options o = {.servers = &so, .nservers = 1, .page_size = 1 << 20, .npages = 64};
	if (strcmp(mode, "randread") == 0) {
		int warm = argc > 7 && strcmp(argv[7], "warm") == 0;
		o.page_size = warm ? 1 << 20 : 4096;
		o.npages = warm ? 1100 : 2;
	}
	int err;
	sdc_client *c = sdc_client_new(&o, &err);
	char *buf = malloc(1 << 20);
	memset(buf, 'x', 1 << 20);
	double t0, t1;
	if (strcmp(mode, "seqwrite") == 0) {
		long mib = atol(argv[6]);
		for (long i = 0; i < (1 << 20); i++)
			buf[i] = (char)(i * 31 + 7);
		t0 = now();
		int fd = sdc_open(c, path, O_WRONLY | O_CREAT | O_TRUNC, 0, 0644);
		for (long i = 0; i < mib && fd >= 0; i++) {
			buf[0] = (char)i;
			if (sdc_pwrite(c, fd, buf, 1 << 20, (uint64_t)i << 20) != 1 << 20)
				return fprintf(stderr, "write: %s\n", sdc_errmsg()), 1;
		}
		int rc = fd < 0 ? fd : sdc_close(c, fd);
		t1 = now();
		if (rc < 0)
			return fprintf(stderr, "seqwrite: %s %s\n", sdc_strerror(rc), sdc_errmsg()), 1;
		printf("RESULT seqwrite %.3f %ld\n", t1 - t0, mib << 20);
	} else if (strcmp(mode, "seqread") == 0) {
		t0 = now();
		int fd = sdc_open(c, path, O_RDONLY, 0, 0);
		uint64_t off = 0;
		ssize_t n;
		while (fd >= 0 && (n = sdc_pread(c, fd, buf, 1 << 20, off)) > 0)
			off += (uint64_t)n;
		t1 = now();
		sdc_close(c, fd);
		printf("RESULT seqread %.3f %llu\n", t1 - t0, (unsigned long long)off);
	} else if (strcmp(mode, "randread") == 0) {
		long n = atol(argv[6]);
		int fd = sdc_open(c, path, O_RDONLY, 0, 0);
		sdc_attr st;
		sdc_fstat(c, fd, &st);
		if (o.npages > 2) {
			for (uint64_t off = 0; off < st.size; off += 1 << 20)
				sdc_pread(c, fd, buf, 1 << 20, off);
		}
		srand(42);
		uint64_t blocks = st.size / 4096;
		t0 = now();
		for (long i = 0; i < n; i++) {
			uint64_t b = ((uint64_t)rand() << 16 ^ (uint64_t)rand()) % blocks;
			if (sdc_pread(c, fd, buf, 4096, b * 4096) != 4096)
				return fprintf(stderr, "pread: %s\n", sdc_errmsg()), 1;
		}
		t1 = now();
		sdc_close(c, fd);
		printf("RESULT randread-%s %.3f %ld\n", argv[7], t1 - t0, n);
	}
	sdc_client_free(c);
	return 0;
}
