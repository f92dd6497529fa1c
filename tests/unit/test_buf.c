/*
 * test_buf.c - util/util.c's sd_buf_read_fd: a whole file into a buffer,
 * NUL-terminated, refused past a bound, errors passed up (the TLS key and
 * the web client's assets are read with it).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "util/sys.h"
#include "util/util.h"

/* A pipe holding n bytes of pattern, write end closed: a reader meets EOF. */
static int pipe_of(size_t n)
{
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(fcntl(p[1], F_SETPIPE_SZ, 1 << 20) > 0, 1);
	char *data = malloc(n ? n : 1);
	for (size_t i = 0; i < n; i++)
		data[i] = (char)('a' + i % 26);
	ck_assert_int_eq(sd_sys_write(p[1], data, n), 0);
	free(data);
	close(p[1]);
	return p[0];
}

START_TEST(test_reads_to_eof)
{
	size_t sizes[] = {0, 1, 65535, 65536, 65537, 200000};
	for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
		int fd = pipe_of(sizes[k]);
		sd_buf b = SD_BUF_INIT;
		sd_buf_puts(&b, "head:");
		ck_assert_int_eq(sd_buf_read_fd(&b, fd, 1 << 20), 0);
		ck_assert_uint_eq(b.len, 5 + sizes[k]);
		ck_assert_int_eq(memcmp(b.data, "head:", 5), 0);
		for (size_t i = 0; i < sizes[k]; i++)
			ck_assert_int_eq(b.data[5 + i], 'a' + (int)(i % 26));
		ck_assert_int_eq(b.data[b.len], '\0');
		sd_buf_free(&b);
		close(fd);
	}
}
END_TEST

START_TEST(test_bound_and_errors)
{
	int fd = pipe_of(100001);
	sd_buf b = SD_BUF_INIT;
	ck_assert_int_eq(sd_buf_read_fd(&b, fd, 100000), -EFBIG);
	sd_buf_free(&b);
	close(fd);
	fd = pipe_of(100000); /* exactly the bound: fine */
	ck_assert_int_eq(sd_buf_read_fd(&b, fd, 100000), 0);
	ck_assert_uint_eq(b.len, 100000);
	sd_buf_free(&b);
	close(fd);
	ck_assert_int_eq(sd_buf_read_fd(&b, -1, 10), -EBADF);
	sd_buf_free(&b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("buf");
	TCase *tc = tcase_create("read_fd");
	tcase_add_test(tc, test_reads_to_eof);
	tcase_add_test(tc, test_bound_and_errors);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
